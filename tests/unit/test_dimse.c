/* SPDX-License-Identifier: MIT */
/* Unit tests for src/dimse: command set encoding and decoding (PS3.7 6.3, 9.3, E.1), the
 * status map (PS3.7 Annex C), message reassembly and fragmentation (PS3.8 9.3.5, Annex E). */
#include <stdlib.h>

#include "dimse/dimse.h"
#include "harness.h"

#define STORAGE_CR "1.2.840.10008.5.1.4.1.1.1"
#define STUDY_ROOT_FIND "1.2.840.10008.5.1.4.1.2.2.1"
#define STUDY_ROOT_MOVE "1.2.840.10008.5.1.4.1.2.2.2"
#define STUDY_ROOT_GET "1.2.840.10008.5.1.4.1.2.2.3"

/* ---- hand-built Implicit VR Little Endian elements (test input only) ---- */

static void put_el(vp_buf *b, uint16_t elem, const void *v, uint32_t len)
{
    uint8_t h[8];
    vp_put_le16(h, 0x0000);
    vp_put_le16(h + 2, elem);
    vp_put_le32(h + 4, len);
    vp_buf_append(b, h, 8);
    if (len)
        vp_buf_append(b, v, len);
}

static void put_us(vp_buf *b, uint16_t elem, uint16_t v)
{
    uint8_t x[2];
    vp_put_le16(x, v);
    put_el(b, elem, x, 2);
}

static void put_ul(vp_buf *b, uint16_t elem, uint32_t v)
{
    uint8_t x[4];
    vp_put_le32(x, v);
    put_el(b, elem, x, 4);
}

static void put_s(vp_buf *b, uint16_t elem, const char *s)
{
    put_el(b, elem, s, (uint32_t)strlen(s));
}

/* A C-STORE-RQ body without group length; each element can be left out (skip = element). */
static void store_rq_body(vp_buf *b, uint16_t skip)
{
    if (skip != 0x0002)
        put_s(b, 0x0002, STORAGE_CR "\0"); /* 26 chars incl. NUL pad */
    if (skip != 0x0100)
        put_us(b, 0x0100, 0x0001);
    if (skip != 0x0110)
        put_us(b, 0x0110, 7);
    if (skip != 0x0700)
        put_us(b, 0x0700, 0);
    if (skip != 0x0800)
        put_us(b, 0x0800, 0x0000); /* "anything but 0101H": a data set follows */
    if (skip != 0x1000)
        put_s(b, 0x1000, "1.2.3.4.5.6");
}

/* Group length element + body. */
static void with_group_length(vp_buf *out, const vp_buf *body)
{
    put_ul(out, 0x0000, (uint32_t)body->len);
    vp_buf_append(out, body->data, body->len);
}

static void full_msgs(dimse_msg *m, size_t *n)
{
    size_t k = 0;
    dimse_msg_echo_rq(&m[k++], 1);
    dimse_msg_response(&m[k], &m[k - 1], 0x0000);
    k++;
    dimse_msg_store_rq(&m[k], 2, DIMSE_PRIORITY_HIGH, STORAGE_CR, "2.25.1234567890");
    dimse_msg_set_move_originator(&m[k], "MOVESCU", 77);
    k++;
    dimse_msg_response(&m[k], &m[k - 1], 0xB000);
    m[k].offending_element[0] = DCM_TAG(0x0010, 0x0010);
    m[k].offending_element[1] = DCM_TAG(0x0008, 0x0018);
    m[k].offending_count = 2;
    m[k].present |= DIMSE_F_OFFENDING_ELEMENT;
    dimse_msg_set_error_comment(&m[k], "coerced Patient's Name");
    m[k].error_id = 42;
    m[k].present |= DIMSE_F_ERROR_ID;
    k++;
    dimse_msg_find_rq(&m[k++], 3, DIMSE_PRIORITY_LOW, STUDY_ROOT_FIND);
    dimse_msg_response(&m[k], &m[k - 1], DIMSE_STATUS_PENDING);
    m[k].has_dataset = true;
    k++;
    dimse_msg_move_rq(&m[k++], 4, DIMSE_PRIORITY_MEDIUM, STUDY_ROOT_MOVE, "STORESCP");
    dimse_msg_response(&m[k], &m[k - 1], DIMSE_STATUS_PENDING);
    dimse_msg_set_suboperations(&m[k], 10, 5, 1, 2);
    k++;
    dimse_msg_get_rq(&m[k++], 5, DIMSE_PRIORITY_MEDIUM, STUDY_ROOT_GET);
    dimse_msg_response(&m[k], &m[k - 1], DIMSE_STATUS_SUBOPS_WARNING);
    dimse_msg_set_suboperations(&m[k], 0, 3, 1, 0);
    m[k].has_dataset = true; /* Failed SOP Instance UID List */
    k++;
    dimse_msg_cancel_rq(&m[k++], 3);
    *n = k;
}

/* ---- command sets ---- */

TEST(echo_rq_bytes)
{
    /* PS3.7 9.3.5.1 and E.1, Implicit VR LE: tag (group, element), 4-byte length, value. */
    static const uint8_t expected[] = {
        0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x38, 0x00, 0x00, 0x00, /* GL = 56 */
        0x00, 0x00, 0x02, 0x00, 0x12, 0x00, 0x00, 0x00, '1',  '.',  '2',  '.',  '8',
        '4',  '0',  '.',  '1',  '0',  '0',  '0',  '8',  '.',  '1',  '.',  '1',  0x00, /* UI */
        0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x30, 0x00, /* Command Field 0030H */
        0x00, 0x00, 0x10, 0x01, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00, /* Message ID 1 */
        0x00, 0x00, 0x00, 0x08, 0x02, 0x00, 0x00, 0x00, 0x01, 0x01, /* no data set */
    };
    dimse_msg m;
    dimse_msg_echo_rq(&m, 1);
    vp_buf b;
    vp_buf_init(&b, 0);
    vp_error err;
    vp_error_clear(&err);
    CHECK_OK(dimse_msg_encode(&m, &b, &err));
    CHECK_INT(b.len, sizeof expected);
    CHECK(b.len == sizeof expected && memcmp(b.data, expected, b.len) == 0);
    dimse_msg d;
    CHECK_OK(dimse_msg_decode(b.data, b.len, &d, &err));
    CHECK(dimse_msg_equal(&m, &d));
    CHECK_INT(d.quirks, 0);
    CHECK_STR(dimse_command_name(d.command_field), "C-ECHO-RQ");
    vp_buf_fini(&b);
}

TEST(round_trip_every_message)
{
    dimse_msg m[16];
    size_t n;
    full_msgs(m, &n);
    CHECK_INT(n, 11);
    for (size_t i = 0; i < n; i++) {
        vp_buf b;
        vp_buf_init(&b, 0);
        vp_error err;
        vp_error_clear(&err);
        CHECK_OK(dimse_msg_encode(&m[i], &b, &err));
        if (err.status)
            FAIL_AT("%s: %s", dimse_command_name(m[i].command_field), err.msg);
        /* Group length first, counting the rest (PS3.7 E.1). */
        CHECK(b.len > 12);
        CHECK_INT(vp_le32(b.data), 0);
        CHECK_INT(vp_le32(b.data + 8), b.len - 12);
        dimse_msg d;
        CHECK_OK(dimse_msg_decode(b.data, b.len, &d, &err));
        if (!dimse_msg_equal(&m[i], &d))
            FAIL_AT("%s does not round trip", dimse_command_name(m[i].command_field));
        CHECK_INT(d.quirks, 0);
        vp_buf_fini(&b);
    }
    /* Spot checks of decoded values. */
    CHECK_STR(m[2].move_originator_ae, "MOVESCU");
    CHECK_INT(m[3].message_id_responded, 2);
    CHECK_STR(m[3].affected_sop_instance_uid, "2.25.1234567890");
    CHECK_INT(m[7].remaining, 10);
    CHECK_INT(m[10].command_field, DIMSE_C_CANCEL_RQ);
}

TEST(decode_real_world_variations)
{
    vp_error err;
    dimse_msg d;
    vp_buf body, b;
    vp_buf_init(&body, 0);
    vp_buf_init(&b, 0);
    store_rq_body(&body, 0);

    /* No group length at all. */
    vp_error_clear(&err);
    CHECK_OK(dimse_msg_decode(body.data, body.len, &d, &err));
    CHECK(d.quirks & DIMSE_QUIRK_NO_GROUP_LENGTH);
    CHECK_INT(d.command_field, DIMSE_C_STORE_RQ);
    CHECK(d.has_dataset);
    CHECK_STR(d.affected_sop_class_uid, STORAGE_CR);

    /* Wrong group length. */
    put_ul(&b, 0x0000, 1234);
    vp_buf_append(&b, body.data, body.len);
    vp_error_clear(&err);
    CHECK_OK(dimse_msg_decode(b.data, b.len, &d, &err));
    CHECK(d.quirks & DIMSE_QUIRK_BAD_GROUP_LENGTH);

    /* Unknown and retired group 0000 elements, and a field of another command. */
    vp_buf_reset(&body);
    put_ul(&body, 0x0001, 99); /* retired Command Length to End */
    store_rq_body(&body, 0);
    put_s(&body, 0x4000, "RETIRED "); /* retired Command Comments */
    put_us(&body, 0x1020, 5);         /* Remaining Sub-operations: not a C-STORE-RQ field */
    put_us(&body, 0x5555, 1);         /* unknown */
    vp_buf_reset(&b);
    with_group_length(&b, &body);
    vp_error_clear(&err);
    CHECK_OK(dimse_msg_decode(b.data, b.len, &d, &err));
    CHECK(d.quirks & DIMSE_QUIRK_UNKNOWN_ELEMENT);
    CHECK(d.quirks & DIMSE_QUIRK_FOREIGN_FIELD);
    CHECK(!(d.present & DIMSE_F_REMAINING));
    CHECK(!(d.quirks & DIMSE_QUIRK_BAD_GROUP_LENGTH));

    /* Odd padding: odd-length UID without pad, UID padded with a space, AE with spaces. */
    vp_buf_reset(&body);
    put_s(&body, 0x0002, STORAGE_CR " ");
    put_us(&body, 0x0100, 0x0001);
    put_us(&body, 0x0110, 9);
    put_us(&body, 0x0700, 2);
    put_us(&body, 0x0800, 0x0102);
    put_s(&body, 0x1000, "1.2.3"); /* 5 bytes: odd, unpadded */
    put_s(&body, 0x1030, " MOVER   ");
    put_us(&body, 0x1031, 3);
    vp_buf_reset(&b);
    with_group_length(&b, &body);
    vp_error_clear(&err);
    CHECK_OK(dimse_msg_decode(b.data, b.len, &d, &err));
    if (err.status)
        FAIL_AT("%s", err.msg);
    CHECK_STR(d.affected_sop_class_uid, STORAGE_CR);
    CHECK_STR(d.affected_sop_instance_uid, "1.2.3");
    CHECK_STR(d.move_originator_ae, "MOVER");
    CHECK_INT(d.move_originator_id, 3);
    CHECK_INT(d.priority, DIMSE_PRIORITY_LOW);

    /* A UID component with a leading zero, as modalities send: accepted. */
    vp_buf_reset(&body);
    store_rq_body(&body, 0x1000);
    put_s(&body, 0x1000, "1.2.840.01.5\0");
    vp_error_clear(&err);
    CHECK_OK(dimse_msg_decode(body.data, body.len, &d, &err));
    CHECK_STR(d.affected_sop_instance_uid, "1.2.840.01.5");

    /* Error Comment longer than LO allows: cut to 64. */
    vp_buf_reset(&body);
    put_s(&body, 0x0002, STORAGE_CR "\0");
    put_us(&body, 0x0100, 0x8001);
    put_us(&body, 0x0120, 7);
    put_us(&body, 0x0800, 0x0101);
    put_us(&body, 0x0900, 0xC000);
    char longc[101];
    memset(longc, 'x', 100);
    longc[100] = 0;
    longc[3] = '\\';
    put_s(&body, 0x0902, longc);
    vp_error_clear(&err);
    CHECK_OK(dimse_msg_decode(body.data, body.len, &d, &err));
    CHECK_INT(strlen(d.error_comment), 64);
    CHECK(d.error_comment[3] == '?');
    CHECK(d.quirks & DIMSE_QUIRK_LONG_TEXT);
    vp_buf_fini(&body);
    vp_buf_fini(&b);
}

TEST(decode_truncated_at_every_offset)
{
    dimse_msg m, d;
    CHECK_OK(dimse_msg_store_rq(&m, 2, 0, STORAGE_CR, "2.25.99"));
    vp_buf b;
    vp_buf_init(&b, 0);
    vp_error err;
    vp_error_clear(&err);
    CHECK_OK(dimse_msg_encode(&m, &b, &err));
    for (size_t n = 0; n < b.len; n++) {
        vp_error_clear(&err);
        vp_status st = dimse_msg_decode(b.data, n, &d, &err);
        if (st == VP_OK)
            FAIL_AT("prefix of %zu bytes decoded", n);
        if (st != VP_EPARSE && st != VP_ETRUNC)
            FAIL_AT("prefix of %zu bytes: %s", n, vp_status_name(st));
        CHECK(err.msg[0] != 0);
    }
    vp_buf_fini(&b);
}

static vp_status decode_body(const vp_buf *body, dimse_msg *d, vp_error *err)
{
    vp_buf b;
    vp_buf_init(&b, 0);
    with_group_length(&b, body);
    vp_error_clear(err);
    vp_status st = dimse_msg_decode(b.data, b.len, d, err);
    vp_buf_fini(&b);
    return st;
}

TEST(decode_malformed)
{
    vp_error err;
    dimse_msg d;
    vp_buf body;
    vp_buf_init(&body, 0);

    /* Every mandatory C-STORE-RQ field missing in turn (PS3.7 9.3.1.1). */
    static const uint16_t mandatory[] = {0x0002, 0x0110, 0x0700, 0x1000};
    for (size_t i = 0; i < sizeof mandatory / sizeof mandatory[0]; i++) {
        vp_buf_reset(&body);
        store_rq_body(&body, mandatory[i]);
        CHECK_INT(decode_body(&body, &d, &err), VP_EPARSE);
        CHECK(strstr(err.msg, "missing") != NULL);
        /* What could be read is there, to answer with a failure status. */
        if (mandatory[i] != 0x0110)
            CHECK(d.present & DIMSE_F_MESSAGE_ID);
    }
    vp_buf_reset(&body);
    store_rq_body(&body, 0x0100);
    CHECK_INT(decode_body(&body, &d, &err), VP_EPARSE);
    CHECK_STR(err.msg, "Command Field (0000,0100) missing");
    vp_buf_reset(&body);
    store_rq_body(&body, 0x0800);
    CHECK_INT(decode_body(&body, &d, &err), VP_EPARSE);

    /* Wrong VRs: lengths that do not fit the dictionary VR. */
    vp_buf_reset(&body);
    store_rq_body(&body, 0x0110);
    put_ul(&body, 0x0110, 7); /* Message ID as UL */
    CHECK_INT(decode_body(&body, &d, &err), VP_EPARSE);
    CHECK_STR(err.msg, "element (0000,0110) Message ID length 4, expected 2");
    vp_buf_reset(&body);
    store_rq_body(&body, 0x0100);
    put_el(&body, 0x0100, "\x01", 1);
    CHECK_INT(decode_body(&body, &d, &err), VP_EPARSE);
    vp_buf_reset(&body);
    store_rq_body(&body, 0x1000);
    put_s(&body, 0x1000, "1.2.abc");
    CHECK_INT(decode_body(&body, &d, &err), VP_EPARSE);
    CHECK(d.present & DIMSE_F_MESSAGE_ID);
    CHECK_INT(d.message_id, 7);
    vp_buf_reset(&body);
    store_rq_body(&body, 0);
    put_s(&body, 0x1030, "AN_AE_TITLE_TOO_LONG");
    CHECK_INT(decode_body(&body, &d, &err), VP_EPARSE);
    vp_buf_reset(&body);
    store_rq_body(&body, 0x1000);
    put_s(&body, 0x1000, "1..2");
    CHECK_INT(decode_body(&body, &d, &err), VP_EPARSE);

    /* Unknown command field; an N- message we do not do. */
    vp_buf_reset(&body);
    store_rq_body(&body, 0x0100);
    put_us(&body, 0x0100, 0x0055);
    CHECK_INT(decode_body(&body, &d, &err), VP_EUNSUPPORTED);
    vp_buf_reset(&body);
    store_rq_body(&body, 0x0100);
    put_us(&body, 0x0100, 0x0110);
    CHECK_INT(decode_body(&body, &d, &err), VP_EUNSUPPORTED);
    CHECK(strstr(err.msg, "N-GET-RQ") != NULL);

    /* Data set rules: a C-STORE-RQ without one, a C-ECHO-RQ with one. */
    vp_buf_reset(&body);
    store_rq_body(&body, 0x0800);
    put_us(&body, 0x0800, 0x0101);
    CHECK_INT(decode_body(&body, &d, &err), VP_EPARSE);
    vp_buf_reset(&body);
    put_s(&body, 0x0002, "1.2.840.10008.1.1\0");
    put_us(&body, 0x0100, 0x0030);
    put_us(&body, 0x0110, 1);
    put_us(&body, 0x0800, 0x0001);
    CHECK_INT(decode_body(&body, &d, &err), VP_EPARSE);

    /* An element outside group 0000. */
    vp_buf_reset(&body);
    store_rq_body(&body, 0);
    uint8_t foreign[] = {0x08, 0x00, 0x18, 0x00, 0x02, 0x00, 0x00, 0x00, '1', 0};
    vp_buf_append(&body, foreign, sizeof foreign);
    CHECK_INT(decode_body(&body, &d, &err), VP_EPARSE);

    /* Undefined lengths (a sequence or "encapsulated" value where none may be). */
    vp_buf_reset(&body);
    store_rq_body(&body, 0x0110);
    uint8_t undef[] = {0x00, 0x00, 0x10, 0x01, 0xFF, 0xFF, 0xFF, 0xFF,
                       0xFE, 0xFF, 0xDD, 0xE0, 0x00, 0x00, 0x00, 0x00};
    vp_buf_append(&body, undef, sizeof undef);
    CHECK(decode_body(&body, &d, &err) != VP_OK);

    /* Empty, oversize. */
    vp_error_clear(&err);
    CHECK_INT(dimse_msg_decode("", 0, &d, &err), VP_ETRUNC);
    uint8_t *big = calloc(1, DIMSE_COMMAND_MAX_DEFAULT + 1);
    vp_error_clear(&err);
    CHECK_INT(dimse_msg_decode(big, DIMSE_COMMAND_MAX_DEFAULT + 1, &d, &err), VP_ELIMIT);
    free(big);
    vp_buf_fini(&body);
}

TEST(encode_checks)
{
    dimse_msg m;
    vp_buf b;
    vp_buf_init(&b, 0);
    vp_error err;

    CHECK_INT(dimse_msg_store_rq(&m, 1, 0, "1.2.x", "1.2.3"), VP_EINVAL);
    CHECK_INT(dimse_msg_move_rq(&m, 1, 0, STUDY_ROOT_MOVE, "THIS_AE_IS_TOO_LONG"), VP_EINVAL);
    CHECK_INT(dimse_msg_move_rq(&m, 1, 0, STUDY_ROOT_MOVE, ""), VP_EINVAL);

    dimse_msg_echo_rq(&m, 1);
    m.present &= ~DIMSE_F_MESSAGE_ID;
    vp_error_clear(&err);
    CHECK_INT(dimse_msg_encode(&m, &b, &err), VP_EINVAL);
    CHECK_STR(err.msg, "C-ECHO-RQ: Message ID (0000,0110) missing");

    dimse_msg_echo_rq(&m, 1);
    m.present |= DIMSE_F_MOVE_DESTINATION;
    strcpy(m.move_destination, "X");
    vp_error_clear(&err);
    CHECK_INT(dimse_msg_encode(&m, &b, &err), VP_EINVAL);

    dimse_msg_echo_rq(&m, 1);
    m.has_dataset = true;
    vp_error_clear(&err);
    CHECK_INT(dimse_msg_encode(&m, &b, &err), VP_EINVAL);

    dimse_msg_init(&m, DIMSE_N_GET_RQ);
    vp_error_clear(&err);
    CHECK_INT(dimse_msg_encode(&m, &b, &err), VP_EINVAL);

    dimse_msg_echo_rq(&m, 1);
    strcpy(m.affected_sop_class_uid, "not a uid");
    vp_error_clear(&err);
    CHECK_INT(dimse_msg_encode(&m, &b, &err), VP_EINVAL);

    /* A response to a cancel or to a response does not exist. */
    dimse_msg rq, rsp;
    dimse_msg_cancel_rq(&rq, 1);
    CHECK_INT(dimse_msg_response(&rsp, &rq, 0), VP_EINVAL);

    /* Error Comment normalised and cut. */
    dimse_msg_echo_rq(&rq, 5);
    CHECK_OK(dimse_msg_response(&rsp, &rq, 0x0110));
    dimse_msg_set_error_comment(&rsp, "  disk\tfull\\ on /var, and a very long tail that goes on "
                                      "and on past sixty-four characters   ");
    CHECK_STR(rsp.error_comment,
              "disk?full? on /var, and a very long tail that goes on and on pas");
    vp_buf_reset(&b);
    vp_error_clear(&err);
    CHECK_OK(dimse_msg_encode(&rsp, &b, &err));
    dimse_msg d;
    CHECK_OK(dimse_msg_decode(b.data, b.len, &d, &err));
    CHECK(dimse_msg_equal(&rsp, &d));
    CHECK_INT(d.message_id_responded, 5);
    CHECK_STR(d.affected_sop_class_uid, "1.2.840.10008.1.1");
    vp_buf_fini(&b);
}

/* ---- status ---- */

TEST(status_classes_and_names)
{
    CHECK_INT(dimse_status_class(0x0000), DIMSE_CLASS_SUCCESS);
    CHECK_INT(dimse_status_class(0x0001), DIMSE_CLASS_WARNING);
    CHECK_INT(dimse_status_class(0xB000), DIMSE_CLASS_WARNING);
    CHECK_INT(dimse_status_class(0xB007), DIMSE_CLASS_WARNING);
    CHECK_INT(dimse_status_class(0x0107), DIMSE_CLASS_WARNING);
    CHECK_INT(dimse_status_class(0x0116), DIMSE_CLASS_WARNING);
    CHECK_INT(dimse_status_class(0x0122), DIMSE_CLASS_FAILURE);
    CHECK_INT(dimse_status_class(0x0211), DIMSE_CLASS_FAILURE);
    CHECK_INT(dimse_status_class(0xA700), DIMSE_CLASS_FAILURE);
    CHECK_INT(dimse_status_class(0xC123), DIMSE_CLASS_FAILURE);
    CHECK_INT(dimse_status_class(0xFE00), DIMSE_CLASS_CANCEL);
    CHECK_INT(dimse_status_class(0xFF00), DIMSE_CLASS_PENDING);
    CHECK_INT(dimse_status_class(0xFF01), DIMSE_CLASS_PENDING);
    CHECK_INT(dimse_status_class(0x5000), DIMSE_CLASS_FAILURE); /* not allowed by Annex C */
    CHECK_INT(dimse_status_class(0xFF02), DIMSE_CLASS_FAILURE);
    CHECK_STR(dimse_status_class_name(DIMSE_CLASS_PENDING), "Pending");

    CHECK_STR(dimse_status_name(DIMSE_SVC_STORE, 0xA7FF), "Refused: Out of Resources");
    CHECK_STR(dimse_status_name(DIMSE_SVC_STORE, 0xC0FE), "Error: Cannot understand");
    CHECK_STR(dimse_status_name(DIMSE_SVC_STORE, 0xB006), "Warning: Elements Discarded");
    CHECK_STR(dimse_status_name(DIMSE_SVC_FIND, 0xC001), "Failed: Unable to process");
    CHECK_STR(dimse_status_name(DIMSE_SVC_MOVE, 0xA801), "Refused: Move Destination unknown");
    CHECK_STR(dimse_status_name(DIMSE_SVC_GET, 0xB000),
              "Warning: Sub-operations Complete - One or more Failures");
    CHECK_STR(dimse_status_name(DIMSE_SVC_ECHO, 0x0211), "Failure: Unrecognized operation");
    CHECK_STR(dimse_status_name(DIMSE_SVC_ECHO, 0x0000), "Success");
    CHECK(dimse_status_name(DIMSE_SVC_ECHO, 0x9999) != NULL);

    CHECK_INT(dimse_service_of(DIMSE_C_STORE_RSP), DIMSE_SVC_STORE);
    CHECK_INT(dimse_service_of(DIMSE_C_GET_RQ), DIMSE_SVC_GET);
    CHECK_INT(dimse_service_of(DIMSE_C_CANCEL_RQ), DIMSE_SVC_COUNT);
}

TEST(status_map)
{
    CHECK_INT(dimse_status_from_vp(DIMSE_SVC_STORE, VP_OK), 0x0000);
    CHECK_INT(dimse_status_from_vp(DIMSE_SVC_STORE, VP_ENOMEM), 0xA700);
    CHECK_INT(dimse_status_from_vp(DIMSE_SVC_STORE, VP_EIO), 0xA700);
    CHECK_INT(dimse_status_from_vp(DIMSE_SVC_STORE, VP_EPARSE), 0xC000);
    CHECK_INT(dimse_status_from_vp(DIMSE_SVC_STORE, VP_EINVAL), 0xA900);
    CHECK_INT(dimse_status_from_vp(DIMSE_SVC_STORE, VP_ECONFLICT), 0x0111);
    CHECK_INT(dimse_status_from_vp(DIMSE_SVC_STORE, VP_EUNSUPPORTED), 0x0122);
    CHECK_INT(dimse_status_from_vp(DIMSE_SVC_FIND, VP_ELIMIT), 0xA700);
    CHECK_INT(dimse_status_from_vp(DIMSE_SVC_FIND, VP_EIO), 0xC001);
    CHECK_INT(dimse_status_from_vp(DIMSE_SVC_MOVE, VP_ENOTFOUND), 0xA801);
    CHECK_INT(dimse_status_from_vp(DIMSE_SVC_MOVE, VP_ENOMEM), 0xA701);
    CHECK_INT(dimse_status_from_vp(DIMSE_SVC_GET, VP_ENOTFOUND), 0xC000);
    CHECK_INT(dimse_status_from_vp(DIMSE_SVC_ECHO, VP_EUNSUPPORTED), 0x0211);
    CHECK_INT(dimse_status_from_vp(DIMSE_SVC_COUNT, VP_ENOMEM), 0x0213);
    CHECK_INT(dimse_status_from_vp(DIMSE_SVC_STORE, (vp_status)99), 0x0110);
    /* Every failure maps to a failure for every service, success only to success. */
    for (int svc = 0; svc < DIMSE_SVC_COUNT; svc++)
        for (int st = 0; st <= VP_ETRUNC; st++) {
            uint16_t s = dimse_status_from_vp((enum dimse_service)svc, (vp_status)st);
            enum dimse_status_class c = dimse_status_class(s);
            if ((st == VP_OK) != (c == DIMSE_CLASS_SUCCESS) ||
                (st != VP_OK && c != DIMSE_CLASS_FAILURE))
                FAIL_AT("service %d, %s -> 0x%04X", svc, vp_status_name((vp_status)st), s);
        }
    CHECK_INT(dimse_status_suboperations(5, 0, 0), 0x0000);
    CHECK_INT(dimse_status_suboperations(0, 0, 0), 0x0000);
    CHECK_INT(dimse_status_suboperations(4, 1, 0), 0xB000);
    CHECK_INT(dimse_status_suboperations(0, 1, 1), 0xB000);
    CHECK_INT(dimse_status_suboperations(0, 3, 0), 0xA702);
}

/* ---- reassembly ---- */

struct pdvs {
    dimse_pdv v[4096]; /* fragments, data pointing into buf */
    size_t n;
    uint8_t buf[1 << 20];
    size_t used;
};

static vp_status collect_pdv(void *ctx, const dimse_pdv *p)
{
    struct pdvs *c = ctx;
    if (c->n == 4096 || c->used + p->len > sizeof c->buf)
        return VP_ELIMIT;
    c->v[c->n] = *p;
    if (p->len)
        memcpy(c->buf + c->used, p->data, p->len);
    c->v[c->n].data = c->buf + c->used;
    c->used += p->len;
    c->n++;
    return VP_OK;
}

static struct pdvs *pdvs_new(void)
{
    struct pdvs *c = calloc(1, sizeof *c);
    return c;
}

/* Command + data set of a C-STORE as PDVs of max_pdu. */
static void store_pdvs(struct pdvs *c, uint8_t ctx, uint32_t max_pdu, size_t data_len)
{
    dimse_msg m;
    dimse_msg_store_rq(&m, 11, 0, STORAGE_CR, "2.25.5");
    vp_buf b;
    vp_buf_init(&b, 0);
    vp_error err;
    vp_error_clear(&err);
    dimse_msg_encode(&m, &b, &err);
    dimse_fragment(ctx, true, b.data, b.len, max_pdu, collect_pdv, c);
    uint8_t *data = malloc(data_len ? data_len : 1);
    for (size_t i = 0; i < data_len; i++)
        data[i] = (uint8_t)(i * 7);
    dimse_fragment(ctx, false, data, data_len, max_pdu, collect_pdv, c);
    free(data);
    vp_buf_fini(&b);
}

TEST(reassemble_streaming_many_fragments)
{
    struct pdvs *c = pdvs_new();
    store_pdvs(c, 3, 7 + 6, 1000); /* 7-byte fragments */
    CHECK(c->n > 100);
    dimse_assembler *a = dimse_assembler_new(0);
    vp_error err;
    vp_error_clear(&err);
    size_t got = 0, commands = 0;
    bool last = false, ok = true;
    for (size_t i = 0; i < c->n; i++) {
        dimse_event ev;
        CHECK_OK(dimse_assembler_feed(a, &c->v[i], &ev, &err));
        if (ev.type == DIMSE_EV_COMMAND) {
            commands++;
            CHECK_INT(ev.msg->command_field, DIMSE_C_STORE_RQ);
            CHECK_INT(ev.context_id, 3);
            CHECK(ev.msg->has_dataset);
        } else if (ev.type == DIMSE_EV_DATA) {
            for (size_t k = 0; k < ev.len; k++)
                ok = ok && ev.data[k] == (uint8_t)((got + k) * 7);
            got += ev.len;
            last = ev.is_last;
        }
    }
    CHECK_INT(commands, 1);
    CHECK_INT(got, 1000);
    CHECK(ok);
    CHECK(last);
    CHECK(dimse_assembler_idle(a));
    dimse_assembler_free(a);
    free(c);
}

TEST(reassemble_collect)
{
    struct pdvs *c = pdvs_new();
    store_pdvs(c, 1, 100, 5000);
    store_pdvs(c, 1, 100, 10); /* a second message on the same association */
    dimse_assembler *a = dimse_assembler_new(0);
    vp_error err;
    vp_error_clear(&err);
    int messages = 0;
    for (size_t i = 0; i < c->n; i++) {
        dimse_event ev;
        CHECK_OK(dimse_assembler_feed(a, &c->v[i], &ev, &err));
        if (ev.type == DIMSE_EV_COMMAND)
            CHECK_OK(dimse_assembler_collect(a, 5000));
        if (ev.type == DIMSE_EV_DATA)
            FAIL_AT("data event while collecting");
        if (ev.type == DIMSE_EV_MESSAGE) {
            messages++;
            CHECK_INT(ev.len, messages == 1 ? 5000 : 10);
            CHECK_INT(ev.data[9], (uint8_t)63);
            if (messages == 2) {
                size_t n;
                uint8_t *p = dimse_assembler_take_dataset(a, &n);
                CHECK_INT(n, 10);
                vp_free(p);
            }
        }
    }
    CHECK_INT(messages, 2);
    /* collect is only valid right after a command announcing a data set */
    CHECK_INT(dimse_assembler_collect(a, 10), VP_EINVAL);
    dimse_assembler_free(a);

    /* Over the cap: the first message is skipped and reported as overflowing, the second
     * (under the cap) collected as usual: the association can go on. */
    a = dimse_assembler_new(0);
    int overflows = 0;
    messages = 0;
    for (size_t i = 0; i < c->n; i++) {
        dimse_event ev;
        vp_error_clear(&err);
        CHECK_OK(dimse_assembler_feed(a, &c->v[i], &ev, &err));
        if (ev.type == DIMSE_EV_COMMAND)
            CHECK_OK(dimse_assembler_collect(a, 4999));
        if (ev.type == DIMSE_EV_MESSAGE) {
            messages++;
            if (ev.overflow) {
                overflows++;
                CHECK(ev.data == NULL && ev.len == 0);
            } else {
                CHECK_INT(ev.len, 10);
            }
        }
    }
    CHECK_INT(messages, 2);
    CHECK_INT(overflows, 1);
    dimse_assembler_free(a);
    free(c);
}

/* Feeds PDVs until one fails; returns its status and leaves the message in err. */
static vp_status feed_all(dimse_assembler *a, const dimse_pdv *v, size_t n, vp_error *err,
                          int *bad_commands)
{
    for (size_t i = 0; i < n; i++) {
        dimse_event ev;
        vp_error_clear(err);
        vp_status st = dimse_assembler_feed(a, &v[i], &ev, err);
        if (st)
            return st;
        if (ev.type == DIMSE_EV_BAD_COMMAND && bad_commands)
            (*bad_commands)++;
    }
    return VP_OK;
}

TEST(reassemble_protocol_errors)
{
    struct pdvs *c = pdvs_new();
    store_pdvs(c, 1, 30, 50); /* several command and data fragments */
    size_t ncmd = 0;
    while (c->v[ncmd].is_command)
        ncmd++;
    CHECK(ncmd > 2 && c->n > ncmd + 2);
    vp_error err;
    dimse_assembler *a;

    /* Data without command. */
    a = dimse_assembler_new(0);
    CHECK_INT(feed_all(a, &c->v[ncmd], 1, &err, NULL), VP_EPARSE);
    CHECK(strstr(err.msg, "without a command") != NULL);
    dimse_assembler_free(a);

    /* Data before the command set is complete. */
    a = dimse_assembler_new(0);
    dimse_pdv v[3] = {c->v[0], c->v[ncmd], c->v[1]};
    CHECK_INT(feed_all(a, v, 3, &err, NULL), VP_EPARSE);
    dimse_assembler_free(a);

    /* A new command while the data set is due. */
    a = dimse_assembler_new(0);
    CHECK_OK(feed_all(a, c->v, ncmd + 1, &err, NULL));
    CHECK(!dimse_assembler_idle(a));
    CHECK_INT(feed_all(a, c->v, 1, &err, NULL), VP_EPARSE);
    CHECK(strstr(err.msg, "still due") != NULL);
    dimse_assembler_free(a);

    /* Presentation context changes inside the command and between command and data. */
    a = dimse_assembler_new(0);
    dimse_pdv w[2] = {c->v[0], c->v[1]};
    w[1].context_id = 3;
    CHECK_INT(feed_all(a, w, 2, &err, NULL), VP_EPARSE);
    dimse_assembler_free(a);
    a = dimse_assembler_new(0);
    CHECK_OK(feed_all(a, c->v, ncmd, &err, NULL));
    dimse_pdv d = c->v[ncmd];
    d.context_id = 5;
    CHECK_INT(feed_all(a, &d, 1, &err, NULL), VP_EPARSE);
    dimse_assembler_free(a);

    /* Even presentation context ID. */
    a = dimse_assembler_new(0);
    d = c->v[0];
    d.context_id = 2;
    CHECK_INT(feed_all(a, &d, 1, &err, NULL), VP_EPARSE);
    dimse_assembler_free(a);

    /* Oversize command set. */
    a = dimse_assembler_new(40);
    CHECK_INT(feed_all(a, c->v, ncmd, &err, NULL), VP_ELIMIT);
    dimse_assembler_free(a);

    /* Data after a command without data set. */
    struct pdvs *e = pdvs_new();
    dimse_msg m;
    dimse_msg_echo_rq(&m, 1);
    vp_buf b;
    vp_buf_init(&b, 0);
    vp_error_clear(&err);
    dimse_msg_encode(&m, &b, &err);
    dimse_fragment(1, true, b.data, b.len, 0, collect_pdv, e);
    collect_pdv(e, &c->v[ncmd]);
    a = dimse_assembler_new(0);
    CHECK_INT(feed_all(a, e->v, e->n, &err, NULL), VP_EPARSE);
    dimse_assembler_free(a);

    /* A command that does not decode but says a data set follows: answerable, data skipped,
     * and the next message is received normally. */
    vp_buf body;
    vp_buf_init(&body, 0);
    store_rq_body(&body, 0x1000);
    e->n = e->used = 0;
    dimse_fragment(1, true, body.data, body.len, 0, collect_pdv, e);
    dimse_fragment(1, false, "abcd", 4, 8, collect_pdv, e); /* 2-byte fragments */
    dimse_fragment(1, true, b.data, b.len, 0, collect_pdv, e);
    a = dimse_assembler_new(0);
    int bad = 0;
    dimse_event ev;
    vp_error_clear(&err);
    CHECK_OK(dimse_assembler_feed(a, &e->v[0], &ev, &err));
    CHECK_INT(ev.type, DIMSE_EV_BAD_COMMAND);
    CHECK_INT(ev.decode_status, VP_EPARSE);
    CHECK_INT(ev.msg->message_id, 7);
    CHECK_INT(dimse_status_from_vp(dimse_service_of(ev.msg->command_field), ev.decode_status),
              0xC000);
    CHECK(strstr(err.msg, "Affected SOP Instance UID") != NULL);
    CHECK_OK(feed_all(a, &e->v[1], e->n - 2, &err, &bad));
    CHECK(dimse_assembler_idle(a));
    vp_error_clear(&err);
    CHECK_OK(dimse_assembler_feed(a, &e->v[e->n - 1], &ev, &err));
    CHECK_INT(ev.type, DIMSE_EV_COMMAND);
    CHECK_INT(ev.msg->command_field, DIMSE_C_ECHO_RQ);

    /* A command that cannot say whether a data set follows: abort. */
    a = (dimse_assembler_free(a), dimse_assembler_new(0));
    e->n = e->used = 0;
    dimse_fragment(1, true, "\x00\x00\x00\x01\x02\x00", 6, 0, collect_pdv, e);
    CHECK_INT(feed_all(a, e->v, e->n, &err, NULL), VP_ETRUNC);
    dimse_assembler_free(a);
    vp_buf_fini(&body);
    vp_buf_fini(&b);
    free(e);
    free(c);
}

/* ---- fragmentation ---- */

TEST(fragment_sizes)
{
    CHECK_INT(dimse_pdv_max_fragment(0), DIMSE_FRAGMENT_CAP);
    CHECK_INT(dimse_pdv_max_fragment(6), 0);
    CHECK_INT(dimse_pdv_max_fragment(7), 1);
    CHECK_INT(dimse_pdv_max_fragment(16384), 16378);
    CHECK_INT(dimse_pdv_max_fragment(0xFFFFFFFFu), DIMSE_FRAGMENT_CAP);

    struct pdvs *c = pdvs_new();
    uint8_t data[10000];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)i;
    CHECK_OK(dimse_fragment(1, false, data, sizeof data, 1006, collect_pdv, c));
    CHECK_INT(c->n, 10);
    for (size_t i = 0; i < c->n; i++) {
        CHECK_INT(c->v[i].len, 1000);
        CHECK_INT(c->v[i].is_last, i == 9);
    }
    CHECK_INT(dimse_fragment(1, false, data, 1, 6, collect_pdv, c), VP_EINVAL);
    CHECK_INT(dimse_fragment(4, false, data, 1, 100, collect_pdv, c), VP_EINVAL);
    c->n = c->used = 0;
    CHECK_OK(dimse_fragment(1, true, NULL, 0, 100, collect_pdv, c));
    CHECK_INT(c->n, 1);
    CHECK(c->v[0].is_last && c->v[0].len == 0);
    free(c);
}

TEST(fragmenter_streams)
{
    uint8_t data[5000];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 13);
    static const size_t chunks[] = {1, 7, 99, 100, 101, 250, 5000};
    for (size_t ci = 0; ci < sizeof chunks / sizeof chunks[0]; ci++) {
        struct pdvs *c = pdvs_new();
        dimse_fragmenter *f = dimse_fragmenter_new(5, false, 106); /* 100-byte fragments */
        CHECK(f != NULL);
        size_t off = 0;
        while (off < sizeof data) {
            size_t n = sizeof data - off < chunks[ci] ? sizeof data - off : chunks[ci];
            CHECK_OK(dimse_fragmenter_push(f, data + off, n, false, collect_pdv, c));
            off += n;
        }
        CHECK_OK(dimse_fragmenter_push(f, NULL, 0, true, collect_pdv, c));
        CHECK_INT(dimse_fragmenter_push(f, data, 1, true, collect_pdv, c), VP_EINVAL);
        CHECK_INT(c->n, 50);
        CHECK_INT(c->used, sizeof data);
        CHECK(memcmp(c->buf, data, sizeof data) == 0);
        int lasts = 0;
        for (size_t i = 0; i < c->n; i++) {
            lasts += c->v[i].is_last;
            if (c->v[i].len != 100 || c->v[i].context_id != 5 || c->v[i].is_command)
                FAIL_AT("chunk %zu: fragment %zu has %zu bytes", chunks[ci], i, c->v[i].len);
        }
        CHECK_INT(lasts, 1);
        CHECK(c->v[c->n - 1].is_last);
        dimse_fragmenter_free(f);
        free(c);
    }
    /* Final push with data, after a partial hold. */
    struct pdvs *c = pdvs_new();
    dimse_fragmenter *f = dimse_fragmenter_new(1, true, 16);
    CHECK_OK(dimse_fragmenter_push(f, data, 5, false, collect_pdv, c));
    CHECK_OK(dimse_fragmenter_push(f, data + 5, 20, true, collect_pdv, c));
    CHECK_INT(c->n, 3);
    CHECK_INT(c->v[2].len, 5);
    CHECK(c->v[2].is_last && !c->v[1].is_last);
    dimse_fragmenter_free(f);
    dimse_fragmenter_free(NULL);
    CHECK(dimse_fragmenter_new(2, true, 100) == NULL);
    CHECK(dimse_fragmenter_new(1, true, 5) == NULL);
    free(c);
}

/* ---- allocation failures ---- */

TEST(alloc_failures)
{
    dimse_msg m[16];
    size_t n;
    full_msgs(m, &n);
    int ok = 0, nomem = 0;
    for (size_t i = 0; i < n; i++) {
        vp_buf enc;
        vp_buf_init(&enc, 0);
        vp_error err;
        vp_error_clear(&err);
        CHECK_OK(dimse_msg_encode(&m[i], &enc, &err));
        for (long k = 1; k < 64; k++) {
            dimse_msg d;
            vp_buf out;
            vp_buf_init(&out, 0);
            vp_error_clear(&err);
            vp_alloc_fail_after(k);
            vp_status st = dimse_msg_decode(enc.data, enc.len, &d, &err);
            vp_status st2 = dimse_msg_encode(&m[i], &out, &err);
            vp_alloc_fail_after(0);
            if (st == VP_OK)
                CHECK(dimse_msg_equal(&m[i], &d));
            else if (st != VP_ENOMEM)
                FAIL_AT("decode with allocation %ld failing: %s", k, vp_status_name(st));
            if (st2 != VP_OK && st2 != VP_ENOMEM && st2 != VP_ELIMIT)
                FAIL_AT("encode with allocation %ld failing: %s", k, vp_status_name(st2));
            ok += st == VP_OK;
            nomem += st == VP_ENOMEM;
            vp_buf_fini(&out);
        }
        vp_buf_fini(&enc);
    }
    CHECK(ok > 0 && nomem > 0);

    /* Reassembly, collecting, with every allocation failing in turn. */
    struct pdvs *c = pdvs_new();
    store_pdvs(c, 1, 50, 3000);
    for (long k = 1; k < 40; k++) {
        vp_alloc_fail_after(k);
        dimse_assembler *a = dimse_assembler_new(0);
        vp_status st = a ? VP_OK : VP_ENOMEM;
        bool done = false;
        for (size_t i = 0; a && i < c->n && !st; i++) {
            dimse_event ev;
            vp_error err;
            vp_error_clear(&err);
            st = dimse_assembler_feed(a, &c->v[i], &ev, &err);
            if (ev.type == DIMSE_EV_COMMAND)
                st = dimse_assembler_collect(a, 1 << 20);
            if (ev.type == DIMSE_EV_BAD_COMMAND)
                st = ev.decode_status;
            done = done || ev.type == DIMSE_EV_MESSAGE;
        }
        vp_alloc_fail_after(0);
        if (st != VP_OK && st != VP_ENOMEM)
            FAIL_AT("reassembly with allocation %ld failing: %s", k, vp_status_name(st));
        if (st == VP_OK && !done)
            FAIL_AT("reassembly with allocation %ld failing: no message", k);
        dimse_assembler_free(a);
    }
    free(c);
}

int main(void)
{
    RUN(echo_rq_bytes);
    RUN(round_trip_every_message);
    RUN(decode_real_world_variations);
    RUN(decode_truncated_at_every_offset);
    RUN(decode_malformed);
    RUN(encode_checks);
    RUN(status_classes_and_names);
    RUN(status_map);
    RUN(reassemble_streaming_many_fragments);
    RUN(reassemble_collect);
    RUN(reassemble_protocol_errors);
    RUN(fragment_sizes);
    RUN(fragmenter_streams);
    RUN(alloc_failures);
    DONE();
}
