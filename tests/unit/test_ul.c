/* SPDX-License-Identifier: MIT */
/* Unit tests for src/ul: the PDU codec (PS3.8 9.3, PS3.7 D.3.3), the state table (PS3.8
 * Table 9-10), associations wired to each other in memory, and the acceptor's negotiation. */
#include <stdlib.h>

#include "dcm/dcm.h"
#include "harness.h"
#include "ul/ul.h"

#define VERIFICATION "1.2.840.10008.1.1"
#define CT_STORAGE "1.2.840.10008.5.1.4.1.1.2"
#define CR_STORAGE "1.2.840.10008.5.1.4.1.1.1"
#define JPEG_LOSSLESS "1.2.840.10008.1.2.4.70"

/* ------------------------------------------------------------------------------------------ */
/* Sample PDUs                                                                                */

static const char *ts_ct[] = {DCM_TS_IMPLICIT_LE, JPEG_LOSSLESS, DCM_TS_EXPLICIT_LE};
static const char *ts_echo[] = {DCM_TS_IMPLICIT_LE};
static const uint8_t ext_info[] = {1, 0, 1};
static const uint8_t common_raw[] = {0x00, 0x05, '1', '.', '2', '.',  '3',
                                     0x00, 0x03, '4', '.', '5', 0x00, 0x00};
static const uint8_t user_name[] = "vet";
static const uint8_t pass_code[] = "s3cret";
static const uint8_t server_rsp[] = "ok";

static ul_pc_rq sample_pcs[] = {
    {1, VERIFICATION, 1, ts_echo},
    {3, CT_STORAGE, 3, ts_ct},
};
static ul_role sample_roles[] = {{CT_STORAGE, true, true}};
static ul_ext_neg sample_ext[] = {{CT_STORAGE, ext_info, sizeof ext_info}};
static ul_raw sample_common[] = {{common_raw, sizeof common_raw}};

/* An A-ASSOCIATE-RQ using every item and sub-item the codec knows. */
static ul_pdu sample_rq(void)
{
    ul_pdu p = {.type = UL_PDU_ASSOCIATE_RQ};
    p.assoc.protocol_version = 1;
    strcpy(p.assoc.called_ae, "VETPACS");
    strcpy(p.assoc.calling_ae, "XRAY_ROOM_1");
    p.assoc.application_context = UL_APPLICATION_CONTEXT;
    p.assoc.rq_pc_count = 2;
    p.assoc.rq_pcs = sample_pcs;
    ul_user_info *ui = &p.assoc.user_info;
    ui->has_max_length = true;
    ui->max_pdu_length = 32768;
    ui->implementation_class_uid = "1.2.3.4";
    ui->implementation_version_name = "MODALITY_1";
    ui->has_async_window = true;
    ui->max_ops_invoked = 5;
    ui->max_ops_performed = 7;
    ui->role_count = 1;
    ui->roles = sample_roles;
    ui->ext_neg_count = 1;
    ui->ext_neg = sample_ext;
    ui->common_ext_neg_count = 1;
    ui->common_ext_neg = sample_common;
    ui->has_user_identity = true;
    ui->user_identity.type = 2;
    ui->user_identity.positive_response_requested = true;
    ui->user_identity.primary = user_name;
    ui->user_identity.primary_len = 3;
    ui->user_identity.secondary = pass_code;
    ui->user_identity.secondary_len = 6;
    return p;
}

static ul_pc_ac sample_ac_pcs[] = {
    {1, UL_PC_ACCEPTANCE, DCM_TS_IMPLICIT_LE},
    {3, UL_PC_TRANSFER_SYNTAXES_NOT_SUPPORTED, NULL},
    {5, UL_PC_ABSTRACT_SYNTAX_NOT_SUPPORTED, NULL},
};

static ul_pdu sample_ac(void)
{
    ul_pdu p = {.type = UL_PDU_ASSOCIATE_AC};
    p.assoc.protocol_version = 1;
    strcpy(p.assoc.called_ae, "VETPACS");
    strcpy(p.assoc.calling_ae, "XRAY_ROOM_1");
    p.assoc.application_context = UL_APPLICATION_CONTEXT;
    p.assoc.ac_pc_count = 3;
    p.assoc.ac_pcs = sample_ac_pcs;
    ul_user_info *ui = &p.assoc.user_info;
    ui->has_max_length = true;
    ui->max_pdu_length = 0;
    ui->implementation_class_uid = DCM_IMPLEMENTATION_CLASS_UID;
    ui->implementation_version_name = DCM_IMPLEMENTATION_VERSION_NAME;
    ui->has_async_window = true;
    ui->max_ops_invoked = 1;
    ui->max_ops_performed = 1;
    ui->role_count = 1;
    ui->roles = sample_roles;
    ui->has_user_identity = true;
    ui->user_identity.server_response = server_rsp;
    ui->user_identity.server_response_len = 2;
    return p;
}

static const uint8_t pdv_a[] = {1, 2, 3, 4, 5};
static const uint8_t pdv_b[] = {9};
static ul_pdv sample_pdvs[] = {
    {1, UL_PDV_COMMAND | UL_PDV_LAST, pdv_a, sizeof pdv_a},
    {3, 0, pdv_b, sizeof pdv_b},
    {3, UL_PDV_LAST, NULL, 0},
};

/* Every kind of PDU, encoded into b (each appended), with their sizes. */
static size_t encode_all(vp_buf *b, size_t sizes[7])
{
    ul_pdu pdus[7];
    pdus[0] = sample_rq();
    pdus[1] = sample_ac();
    pdus[2] = (ul_pdu){.type = UL_PDU_ASSOCIATE_RJ, .reject = {1, 1, 7}};
    pdus[3] = (ul_pdu){.type = UL_PDU_P_DATA_TF, .pdv_count = 3, .pdvs = sample_pdvs};
    pdus[4] = (ul_pdu){.type = UL_PDU_RELEASE_RQ};
    pdus[5] = (ul_pdu){.type = UL_PDU_RELEASE_RP};
    pdus[6] = (ul_pdu){.type = UL_PDU_ABORT, .abort = {2, 6}};
    for (int i = 0; i < 7; i++) {
        size_t before = b->len;
        vp_error err = {0};
        if (ul_pdu_encode(&pdus[i], b, &err) != VP_OK)
            fprintf(stderr, "encode %d: %s\n", i, err.msg);
        sizes[i] = b->len - before;
    }
    return 7;
}

/* ------------------------------------------------------------------------------------------ */
/* Codec                                                                                      */

TEST(test_ae_title)
{
    CHECK(ul_ae_title_valid("STORESCP", 8));
    CHECK(ul_ae_title_valid("  PACS  ", 8));
    CHECK(ul_ae_title_valid("ABCDEFGHIJKLMNOP", 16));
    CHECK(ul_ae_title_valid("AE\0\0", 4)); /* trailing NUL padding tolerated */
    CHECK(!ul_ae_title_valid("ABCDEFGHIJKLMNOPQ", 17));
    CHECK(!ul_ae_title_valid("                ", 16));
    CHECK(!ul_ae_title_valid("A\\B", 3));
    CHECK(!ul_ae_title_valid("A\tB", 3));
    CHECK(!ul_ae_title_valid("A\0B", 3));
    CHECK(!ul_ae_title_valid("\xc3\xa9", 2));
    CHECK(!ul_ae_title_valid("", 0));
}

/* A-ASSOCIATE-RQ built byte by byte from PS3.8 Table 9-11, 9-12, 9-13, 9-14, 9-15, 9-16 and
 * D.1-1, D.3-1, D.3-3 (lengths counted by hand). */
TEST(test_rq_bytes_exact)
{
    static const uint8_t expected[] = {
        0x01, 0x00, 0x00, 0x00, 0x00, 0xAC, /* PDU type 1, reserved, length 172 */
        0x00, 0x01, 0x00, 0x00,             /* protocol version 1, reserved */
        'S', 'T', 'O', 'R', 'E', 'S', 'C', 'P', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', 'E', 'C',
        'H', 'O', 'S', 'C', 'U', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, /* 32 reserved bytes */
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        /* Application Context item: 10H, reserved, length 21 */
        0x10, 0x00, 0x00, 0x15, '1', '.', '2', '.', '8', '4', '0', '.', '1', '0', '0', '0', '8',
        '.', '3', '.', '1', '.', '1', '.', '1',
        /* Presentation Context item: 20H, reserved, length 46, ID 1, 3 reserved */
        0x20, 0x00, 0x00, 0x2E, 0x01, 0x00, 0x00, 0x00,
        /* Abstract Syntax sub-item: 30H, length 17 */
        0x30, 0x00, 0x00, 0x11, '1', '.', '2', '.', '8', '4', '0', '.', '1', '0', '0', '0', '8',
        '.', '1', '.', '1',
        /* Transfer Syntax sub-item: 40H, length 17 */
        0x40, 0x00, 0x00, 0x11, '1', '.', '2', '.', '8', '4', '0', '.', '1', '0', '0', '0', '8',
        '.', '1', '.', '2',
        /* User Information item: 50H, length 25 */
        0x50, 0x00, 0x00, 0x19, 0x51, 0x00, 0x00, 0x04, 0x00, 0x00, 0x40,
        0x00,                                            /* Maximum Length 16384 */
        0x52, 0x00, 0x00, 0x05, '1', '.', '2', '.', '3', /* Implementation Class UID */
        0x55, 0x00, 0x00, 0x04, 'T', 'E', 'S', 'T',      /* Implementation Version Name */
    };
    CHECK_INT(sizeof expected, 178);
    static const char *ts[] = {DCM_TS_IMPLICIT_LE};
    ul_pc_rq pc = {1, VERIFICATION, 1, ts};
    ul_pdu p = {.type = UL_PDU_ASSOCIATE_RQ};
    p.assoc.protocol_version = 1;
    strcpy(p.assoc.called_ae, "STORESCP");
    strcpy(p.assoc.calling_ae, "ECHOSCU");
    p.assoc.application_context = UL_APPLICATION_CONTEXT;
    p.assoc.rq_pc_count = 1;
    p.assoc.rq_pcs = &pc;
    p.assoc.user_info.has_max_length = true;
    p.assoc.user_info.max_pdu_length = 16384;
    p.assoc.user_info.implementation_class_uid = "1.2.3";
    p.assoc.user_info.implementation_version_name = "TEST";
    vp_buf b;
    vp_buf_init(&b, 0);
    vp_error err = {0};
    CHECK_OK(ul_pdu_encode(&p, &b, &err));
    CHECK_INT(b.len, sizeof expected);
    CHECK(b.len == sizeof expected && memcmp(b.data, expected, b.len) == 0);

    /* And it parses back to the same values. */
    vp_arena *arena = vp_arena_new(0);
    ul_pdu q;
    CHECK_OK(ul_pdu_parse(expected, sizeof expected, arena, &q, NULL, &err));
    CHECK_INT(q.type, UL_PDU_ASSOCIATE_RQ);
    CHECK_STR(q.assoc.called_ae, "STORESCP");
    CHECK_STR(q.assoc.calling_ae, "ECHOSCU");
    CHECK_STR(q.assoc.application_context, UL_APPLICATION_CONTEXT);
    CHECK_INT(q.assoc.rq_pc_count, 1);
    CHECK_INT(q.assoc.rq_pcs[0].id, 1);
    CHECK_STR(q.assoc.rq_pcs[0].abstract_syntax, VERIFICATION);
    CHECK_INT(q.assoc.rq_pcs[0].ts_count, 1);
    CHECK_STR(q.assoc.rq_pcs[0].transfer_syntaxes[0], DCM_TS_IMPLICIT_LE);
    CHECK_INT(q.assoc.user_info.max_pdu_length, 16384);
    CHECK_STR(q.assoc.user_info.implementation_class_uid, "1.2.3");
    CHECK_STR(q.assoc.user_info.implementation_version_name, "TEST");
    size_t size;
    CHECK_INT(ul_pdu_frame(expected, sizeof expected, NULL, &size, NULL, &err), VP_OK);
    CHECK_INT(size, sizeof expected);
    vp_arena_free(arena);
    vp_buf_fini(&b);
}

/* Encode -> parse -> encode gives the same bytes, for every PDU type. */
TEST(test_round_trip_all)
{
    vp_buf b;
    vp_buf_init(&b, 0);
    size_t sizes[7];
    encode_all(&b, sizes);
    vp_arena *arena = vp_arena_new(0);
    size_t off = 0;
    for (int i = 0; i < 7; i++) {
        ul_pdu q;
        vp_error err = {0};
        uint8_t reason = 0;
        CHECK_OK(ul_pdu_parse(b.data + off, sizes[i], arena, &q, &reason, &err));
        if (err.status)
            fprintf(stderr, "  %s\n", err.msg);
        CHECK_INT(q.type, i + 1);
        vp_buf again;
        vp_buf_init(&again, 0);
        CHECK_OK(ul_pdu_encode(&q, &again, &err));
        CHECK(again.len == sizes[i] && memcmp(again.data, b.data + off, sizes[i]) == 0);
        vp_buf_fini(&again);
        off += sizes[i];
    }
    vp_arena_free(arena);
    vp_buf_fini(&b);
}

TEST(test_parse_values)
{
    vp_buf b;
    vp_buf_init(&b, 0);
    size_t sizes[7];
    encode_all(&b, sizes);
    vp_arena *arena = vp_arena_new(0);
    vp_error err = {0};
    ul_pdu q;
    CHECK_OK(ul_pdu_parse(b.data, sizes[0], arena, &q, NULL, &err));
    const ul_associate *a = &q.assoc;
    CHECK_STR(a->calling_ae, "XRAY_ROOM_1");
    CHECK_INT(a->rq_pc_count, 2);
    CHECK_INT(a->rq_pcs[1].id, 3);
    CHECK_STR(a->rq_pcs[1].abstract_syntax, CT_STORAGE);
    CHECK_INT(a->rq_pcs[1].ts_count, 3);
    CHECK_STR(a->rq_pcs[1].transfer_syntaxes[1], JPEG_LOSSLESS);
    const ul_user_info *ui = &a->user_info;
    CHECK_INT(ui->max_pdu_length, 32768);
    CHECK_STR(ui->implementation_class_uid, "1.2.3.4");
    CHECK_STR(ui->implementation_version_name, "MODALITY_1");
    CHECK(ui->has_async_window);
    CHECK_INT(ui->max_ops_invoked, 5);
    CHECK_INT(ui->max_ops_performed, 7);
    CHECK_INT(ui->role_count, 1);
    CHECK_STR(ui->roles[0].sop_class_uid, CT_STORAGE);
    CHECK(ui->roles[0].scu && ui->roles[0].scp);
    CHECK_INT(ui->ext_neg_count, 1);
    CHECK_STR(ui->ext_neg[0].sop_class_uid, CT_STORAGE);
    CHECK(ui->ext_neg[0].info_len == sizeof ext_info &&
          memcmp(ui->ext_neg[0].info, ext_info, sizeof ext_info) == 0);
    CHECK_INT(ui->common_ext_neg_count, 1);
    CHECK(ui->common_ext_neg[0].len == sizeof common_raw &&
          memcmp(ui->common_ext_neg[0].data, common_raw, sizeof common_raw) == 0);
    CHECK(ui->has_user_identity);
    CHECK_INT(ui->user_identity.type, 2);
    CHECK(ui->user_identity.positive_response_requested);
    CHECK_MEM(ui->user_identity.primary, ui->user_identity.primary_len, "vet", 3);
    CHECK_MEM(ui->user_identity.secondary, ui->user_identity.secondary_len, "s3cret", 6);

    size_t off = sizes[0];
    CHECK_OK(ul_pdu_parse(b.data + off, sizes[1], arena, &q, NULL, &err));
    CHECK_INT(q.assoc.ac_pc_count, 3);
    CHECK_INT(q.assoc.ac_pcs[0].result, UL_PC_ACCEPTANCE);
    CHECK_STR(q.assoc.ac_pcs[0].transfer_syntax, DCM_TS_IMPLICIT_LE);
    CHECK_INT(q.assoc.ac_pcs[1].result, UL_PC_TRANSFER_SYNTAXES_NOT_SUPPORTED);
    CHECK(q.assoc.ac_pcs[1].transfer_syntax == NULL);
    CHECK_INT(q.assoc.ac_pcs[2].result, UL_PC_ABSTRACT_SYNTAX_NOT_SUPPORTED);
    CHECK(q.assoc.user_info.has_max_length);
    CHECK_INT(q.assoc.user_info.max_pdu_length, 0);
    CHECK_MEM(q.assoc.user_info.user_identity.server_response,
              q.assoc.user_info.user_identity.server_response_len, "ok", 2);

    off += sizes[1];
    CHECK_OK(ul_pdu_parse(b.data + off, sizes[2], arena, &q, NULL, &err));
    CHECK_INT(q.reject.result, 1);
    CHECK_INT(q.reject.source, 1);
    CHECK_INT(q.reject.reason, 7);

    off += sizes[2];
    CHECK_OK(ul_pdu_parse(b.data + off, sizes[3], arena, &q, NULL, &err));
    CHECK_INT(q.pdv_count, 3);
    CHECK_INT(q.pdvs[0].pc_id, 1);
    CHECK_INT(q.pdvs[0].control, UL_PDV_COMMAND | UL_PDV_LAST);
    CHECK(q.pdvs[0].len == sizeof pdv_a && memcmp(q.pdvs[0].data, pdv_a, sizeof pdv_a) == 0);
    CHECK_INT(q.pdvs[1].control, 0);
    CHECK_INT(q.pdvs[2].len, 0);
    CHECK_INT(q.pdvs[2].control, UL_PDV_LAST);

    off += sizes[3] + sizes[4] + sizes[5];
    CHECK_OK(ul_pdu_parse(b.data + off, sizes[6], arena, &q, NULL, &err));
    CHECK_INT(q.abort.source, 2);
    CHECK_INT(q.abort.reason, 6);
    vp_arena_free(arena);
    vp_buf_fini(&b);
}

/* Every prefix of every PDU: VP_EAGAIN (or VP_EPARSE), never a crash; and the same PDU with
 * its length field shortened to each prefix: VP_EPARSE or VP_OK, never a read past the end. */
TEST(test_truncation)
{
    vp_buf b;
    vp_buf_init(&b, 0);
    size_t sizes[7];
    encode_all(&b, sizes);
    size_t off = 0;
    for (int i = 0; i < 7; i++) {
        for (size_t k = 0; k < sizes[i]; k++) {
            uint8_t *copy = malloc(k ? k : 1);
            memcpy(copy, b.data + off, k);
            vp_arena *arena = vp_arena_new(0);
            ul_pdu q;
            vp_error err = {0};
            uint8_t reason = 0;
            vp_status st = ul_pdu_parse(copy, k, arena, &q, &reason, &err);
            if (st != VP_EAGAIN)
                FAIL_AT("PDU %d cut at %zu: %s", i, k, vp_status_name(st));
            size_t need = 0;
            st = ul_pdu_frame(copy, k, NULL, &need, &reason, &err);
            if (st != VP_EAGAIN || need != (k < 6 ? 6 - k : sizes[i] - k))
                FAIL_AT("frame PDU %d cut at %zu: %s need %zu", i, k, vp_status_name(st), need);
            if (k >= 6) {
                /* Lie about the length: body shortened to what is there. */
                vp_put_be32(copy + 2, (uint32_t)(k - 6));
                vp_error_clear(&err);
                st = ul_pdu_parse(copy, k, arena, &q, &reason, &err);
                if (st != VP_OK && st != VP_EPARSE)
                    FAIL_AT("PDU %d relabelled at %zu: %s", i, k, vp_status_name(st));
                if (st == VP_EPARSE && reason == 0)
                    FAIL_AT("PDU %d relabelled at %zu: no abort reason (%s)", i, k, err.msg);
            }
            vp_arena_free(arena);
            free(copy);
        }
        off += sizes[i];
    }
    vp_buf_fini(&b);
}

/* Parses bytes expecting failure with status st and abort reason; the message must name
 * what. */
static void expect_fail(const uint8_t *p, size_t n, vp_status want, uint8_t want_reason,
                        const char *what)
{
    vp_arena *arena = vp_arena_new(0);
    ul_pdu q;
    vp_error err = {0};
    uint8_t reason = 0;
    vp_status st = ul_pdu_parse(p, n, arena, &q, &reason, &err);
    if (st != want || reason != want_reason || !strstr(err.msg, what))
        FAIL_AT("expected %s reason %u \"%s\", got %s reason %u \"%s\"", vp_status_name(want),
                want_reason, what, vp_status_name(st), reason, err.msg);
    vp_arena_free(arena);
}

/* The RQ of test_rq_bytes_exact, as a mutable copy in b. */
static void small_rq(vp_buf *b)
{
    static const char *ts[] = {DCM_TS_IMPLICIT_LE};
    ul_pc_rq pc = {1, VERIFICATION, 1, ts};
    ul_pdu p = {.type = UL_PDU_ASSOCIATE_RQ};
    p.assoc.protocol_version = 1;
    strcpy(p.assoc.called_ae, "STORESCP");
    strcpy(p.assoc.calling_ae, "ECHOSCU");
    p.assoc.application_context = UL_APPLICATION_CONTEXT;
    p.assoc.rq_pc_count = 1;
    p.assoc.rq_pcs = &pc;
    p.assoc.user_info.has_max_length = true;
    p.assoc.user_info.max_pdu_length = 16384;
    p.assoc.user_info.implementation_class_uid = "1.2.3";
    p.assoc.user_info.implementation_version_name = "TEST";
    vp_buf_reset(b);
    ul_pdu_encode(&p, b, NULL);
}

TEST(test_lying_lengths)
{
    vp_buf b;
    vp_buf_init(&b, 0);
    /* Offsets in small_rq: 74 Application Context, 99 Presentation Context, 149 User Info. */
    small_rq(&b);
    CHECK_INT(b.data[74], 0x10);
    CHECK_INT(b.data[99], 0x20);
    CHECK_INT(b.data[149], 0x50);

    /* Item length beyond the parent. */
    vp_put_be16(b.data + 101, 0xFFFF);
    expect_fail(b.data, b.len, VP_EPARSE, UL_ABORT_REASON_INVALID_PARAMETER,
                "item 20H (Presentation Context) length 65535 exceeds");
    small_rq(&b);
    vp_put_be16(b.data + 151, 26); /* user info one byte longer than the PDU */
    expect_fail(b.data, b.len, VP_EPARSE, UL_ABORT_REASON_INVALID_PARAMETER, "offset 149");
    /* Sub-item beyond its item: abstract syntax claims 40 of the 46. */
    small_rq(&b);
    vp_put_be16(b.data + 109, 40);
    expect_fail(b.data, b.len, VP_EPARSE, UL_ABORT_REASON_INVALID_PARAMETER, "item 30H");
    /* Zero-length application context name. */
    small_rq(&b);
    vp_put_be16(b.data + 76, 0);
    expect_fail(b.data, b.len, VP_EPARSE, UL_ABORT_REASON_INVALID_PARAMETER, "");
    /* Maximum Length of 3 bytes: the next sub-item header lands inside the UID. */
    small_rq(&b);
    vp_put_be16(b.data + 155, 3);
    expect_fail(b.data, b.len, VP_EPARSE, UL_ABORT_REASON_INVALID_PARAMETER, "exceeds");
    /* Maximum Length of 3 bytes followed by a well-framed filler item. */
    {
        static const uint8_t ui[] = {0x50, 0x00, 0x00, 0x0B, 0x51, 0x00, 0x00, 0x03,
                                     0x00, 0x40, 0x00, 0x52, 0x00, 0x00, 0x00};
        vp_buf c;
        vp_buf_init(&c, 0);
        small_rq(&b);
        vp_buf_append(&c, b.data, 149);
        vp_buf_append(&c, ui, sizeof ui);
        vp_put_be32(c.data + 2, (uint32_t)(c.len - 6));
        expect_fail(c.data, c.len, VP_EPARSE, UL_ABORT_REASON_INVALID_PARAMETER,
                    "item 51H (Maximum Length) length 3, expected 4");
        vp_buf_fini(&c);
    }
    /* PDU length larger than the bytes: need more. */
    small_rq(&b);
    vp_put_be32(b.data + 2, 0x7FFFFFFF);
    expect_fail(b.data, b.len, VP_EAGAIN, 0, "");
    /* ... and against the limit, before anything is buffered. */
    size_t need;
    uint8_t reason = 0;
    vp_error err = {0};
    ul_limits lim = {16384, 4096};
    CHECK_INT(ul_pdu_frame(b.data, 6, &lim, &need, &reason, &err), VP_ELIMIT);
    CHECK_INT(reason, UL_ABORT_REASON_INVALID_PARAMETER);
    CHECK(strstr(err.msg, "A-ASSOCIATE-RQ") != NULL);
    uint8_t big_pdata[6] = {0x04, 0, 0, 0, 0x40, 0x01}; /* 16385 */
    vp_error_clear(&err);
    CHECK_INT(ul_pdu_frame(big_pdata, 6, &lim, &need, &reason, &err), VP_ELIMIT);
    big_pdata[5] = 0x00;
    CHECK_INT(ul_pdu_frame(big_pdata, 6, &lim, &need, &reason, &err), VP_EAGAIN);
    CHECK_INT(need, 16384);
    /* Trailing bytes after the PDU. */
    small_rq(&b);
    vp_buf_putc(&b, 0);
    expect_fail(b.data, b.len, VP_EPARSE, UL_ABORT_REASON_INVALID_PARAMETER, "bytes follow");

    /* Unknown PDU type. */
    static const uint8_t unknown[] = {0x09, 0, 0, 0, 0, 0};
    expect_fail(unknown, sizeof unknown, VP_EPARSE, UL_ABORT_REASON_UNRECOGNIZED_PDU, "09H");
    vp_error_clear(&err);
    CHECK_INT(ul_pdu_frame(unknown, 6, NULL, &need, &reason, &err), VP_EPARSE);
    CHECK_INT(reason, UL_ABORT_REASON_UNRECOGNIZED_PDU);
    /* Fixed-size PDUs with another length. */
    static const uint8_t rj5[] = {0x03, 0, 0, 0, 0, 5, 0, 1, 1, 1, 0};
    expect_fail(rj5, sizeof rj5, VP_EPARSE, UL_ABORT_REASON_INVALID_PARAMETER, "expected 4");
    vp_error_clear(&err);
    CHECK_INT(ul_pdu_frame(rj5, sizeof rj5, NULL, &need, &reason, &err), VP_EPARSE);
    static const uint8_t rj_result[] = {0x03, 0, 0, 0, 0, 4, 0, 3, 1, 1};
    expect_fail(rj_result, sizeof rj_result, VP_EPARSE, UL_ABORT_REASON_INVALID_PARAMETER,
                "result 3");
    static const uint8_t abort_src[] = {0x07, 0, 0, 0, 0, 4, 0, 0, 5, 0};
    expect_fail(abort_src, sizeof abort_src, VP_EPARSE, UL_ABORT_REASON_INVALID_PARAMETER,
                "source 5");
    /* PDV item lengths 0, 1 and beyond the PDU; an empty P-DATA-TF; an even context ID. */
    static const uint8_t pdv0[] = {0x04, 0, 0, 0, 0, 4, 0, 0, 0, 0};
    expect_fail(pdv0, sizeof pdv0, VP_EPARSE, UL_ABORT_REASON_INVALID_PARAMETER,
                "PDV item length 0");
    static const uint8_t pdv1[] = {0x04, 0, 0, 0, 0, 5, 0, 0, 0, 1, 1};
    expect_fail(pdv1, sizeof pdv1, VP_EPARSE, UL_ABORT_REASON_INVALID_PARAMETER,
                "PDV item length 1");
    static const uint8_t pdv_far[] = {0x04, 0, 0, 0, 0, 7, 0, 0, 0, 9, 1, 3, 0xAA};
    expect_fail(pdv_far, sizeof pdv_far, VP_EPARSE, UL_ABORT_REASON_INVALID_PARAMETER,
                "exceeds the 3 bytes");
    static const uint8_t pdv_none[] = {0x04, 0, 0, 0, 0, 0};
    expect_fail(pdv_none, sizeof pdv_none, VP_EPARSE, UL_ABORT_REASON_INVALID_PARAMETER,
                "without a PDV");
    static const uint8_t pdv_even[] = {0x04, 0, 0, 0, 0, 6, 0, 0, 0, 2, 2, 3};
    expect_fail(pdv_even, sizeof pdv_even, VP_EPARSE, UL_ABORT_REASON_INVALID_PARAMETER, "not odd");
    static const uint8_t pdv_stray[] = {0x04, 0, 0, 0, 0, 9, 0, 0, 0, 2, 1, 3, 0, 0, 0};
    expect_fail(pdv_stray, sizeof pdv_stray, VP_EPARSE, UL_ABORT_REASON_INVALID_PARAMETER, "stray");
    vp_buf_fini(&b);
}

TEST(test_invalid_values)
{
    vp_buf b;
    vp_buf_init(&b, 0);
    /* Even presentation context ID. */
    small_rq(&b);
    b.data[103] = 2;
    expect_fail(b.data, b.len, VP_EPARSE, UL_ABORT_REASON_INVALID_PARAMETER, "ID 2 is not odd");
    /* Backslash in the called AE title. */
    small_rq(&b);
    b.data[12] = '\\';
    expect_fail(b.data, b.len, VP_EPARSE, UL_ABORT_REASON_INVALID_PARAMETER, "called AE");
    /* Calling AE title of spaces only. */
    small_rq(&b);
    memset(b.data + 26, ' ', 16);
    expect_fail(b.data, b.len, VP_EPARSE, UL_ABORT_REASON_INVALID_PARAMETER, "calling AE");
    /* A letter in a UID. */
    small_rq(&b);
    b.data[80] = 'x';
    expect_fail(b.data, b.len, VP_EPARSE, UL_ABORT_REASON_INVALID_PARAMETER, "invalid UID");
    /* 21H in an RQ: unexpected parameter. */
    small_rq(&b);
    b.data[99] = 0x21;
    expect_fail(b.data, b.len, VP_EPARSE, UL_ABORT_REASON_UNEXPECTED_PARAMETER, "21H");
    /* A second Application Context item: the PC item relabelled 10H. */
    small_rq(&b);
    b.data[99] = 0x10;
    expect_fail(b.data, b.len, VP_EPARSE, UL_ABORT_REASON_UNEXPECTED_PARAMETER, "second item 10H");
    /* An unknown sub-item inside a presentation context. */
    small_rq(&b);
    b.data[128] = 0x41;
    expect_fail(b.data, b.len, VP_EPARSE, UL_ABORT_REASON_UNRECOGNIZED_PARAMETER, "41H");
    /* An unknown top-level item type is skipped (PS3.8 9.3.1). */
    small_rq(&b);
    {
        vp_buf c;
        vp_buf_init(&c, 0);
        vp_buf_append(&c, b.data, b.len);
        static const uint8_t junk[] = {0x77, 0x00, 0x00, 0x02, 0xAB, 0xCD};
        vp_buf_append(&c, junk, sizeof junk);
        vp_put_be32(c.data + 2, (uint32_t)(c.len - 6));
        vp_arena *arena = vp_arena_new(0);
        ul_pdu q;
        vp_error err = {0};
        CHECK_OK(ul_pdu_parse(c.data, c.len, arena, &q, NULL, &err));
        vp_arena_free(arena);
        vp_buf_fini(&c);
    }
    /* A UID padded with a trailing NUL is accepted (PS3.5 9.1). */
    {
        small_rq(&b);
        /* Turn the abstract syntax "1.2.840.10008.1.1" into "1.2.840.10008.1" + NUL. */
        b.data[128 - 2] = '\0';
        b.data[128 - 1] = '\0';
        vp_arena *arena = vp_arena_new(0);
        ul_pdu q;
        vp_error err = {0};
        CHECK_OK(ul_pdu_parse(b.data, b.len, arena, &q, NULL, &err));
        CHECK_STR(q.assoc.rq_pcs[0].abstract_syntax, "1.2.840.10008.1");
        vp_arena_free(arena);
    }
    /* Missing user information. */
    small_rq(&b);
    b.len = 149;
    vp_put_be32(b.data + 2, 149 - 6);
    expect_fail(b.data, b.len, VP_EPARSE, UL_ABORT_REASON_INVALID_PARAMETER, "no User Information");
    vp_buf_fini(&b);
}

TEST(test_encode_refuses)
{
    vp_buf b;
    vp_buf_init(&b, 0);
    vp_error err = {0};
    ul_pdu p = sample_rq();
    strcpy(p.assoc.called_ae, "BAD\\AE");
    CHECK_INT(ul_pdu_encode(&p, &b, &err), VP_EINVAL);
    CHECK_INT(b.len, 0);
    p = sample_rq();
    ul_pc_rq even[] = {{2, VERIFICATION, 1, ts_echo}};
    p.assoc.rq_pcs = even;
    p.assoc.rq_pc_count = 1;
    vp_error_clear(&err);
    CHECK_INT(ul_pdu_encode(&p, &b, &err), VP_EINVAL);
    p = sample_rq();
    p.assoc.application_context = "1.2.x";
    vp_error_clear(&err);
    CHECK_INT(ul_pdu_encode(&p, &b, &err), VP_EINVAL);
    CHECK(strstr(err.msg, "1.2.x") != NULL);
    ul_pdu pd = {.type = UL_PDU_P_DATA_TF};
    vp_error_clear(&err);
    CHECK_INT(ul_pdu_encode(&pd, &b, &err), VP_EINVAL);
    CHECK_INT(b.len, 0);
    vp_buf_fini(&b);
}

/* ------------------------------------------------------------------------------------------ */
/* State table, checked cell by cell against PS3.8 Table 9-10                                 */

static void expect_cell(enum ul_state s, enum ul_fsm_event e, enum ul_action act,
                        enum ul_state next)
{
    ul_transition t;
    bool ok = ul_fsm_next(s, e, &t);
    if (!ok || t.action != act || t.next != next)
        FAIL_AT("%s + %s: got %s -> %s, expected %s -> %s", ul_state_name(s), ul_event_name(e),
                ul_action_name(t.action), ul_state_name(t.next), ul_action_name(act),
                ul_state_name(next));
}

static void expect_empty(enum ul_state s, enum ul_fsm_event e)
{
    ul_transition t;
    if (ul_fsm_next(s, e, &t))
        FAIL_AT("%s + %s: expected an empty cell, got %s", ul_state_name(s), ul_event_name(e),
                ul_action_name(t.action));
}

TEST(test_fsm_table)
{
    /* Association establishment. */
    expect_cell(UL_STA1, UL_EVT1, UL_AE_1, UL_STA4);
    expect_cell(UL_STA4, UL_EVT2, UL_AE_2, UL_STA5);
    expect_cell(UL_STA5, UL_EVT3, UL_AE_3, UL_STA6);
    expect_cell(UL_STA5, UL_EVT4, UL_AE_4, UL_STA1);
    expect_cell(UL_STA1, UL_EVT5, UL_AE_5, UL_STA2);
    expect_cell(UL_STA2, UL_EVT6, UL_AE_6, UL_STA3);
    expect_cell(UL_STA3, UL_EVT7, UL_AE_7, UL_STA6);
    expect_cell(UL_STA3, UL_EVT8, UL_AE_8, UL_STA13);
    /* Data transfer. */
    expect_cell(UL_STA6, UL_EVT9, UL_DT_1, UL_STA6);
    expect_cell(UL_STA6, UL_EVT10, UL_DT_2, UL_STA6);
    expect_cell(UL_STA8, UL_EVT9, UL_AR_7, UL_STA8);
    expect_cell(UL_STA7, UL_EVT10, UL_AR_6, UL_STA7);
    /* Release, including collisions. */
    expect_cell(UL_STA6, UL_EVT11, UL_AR_1, UL_STA7);
    expect_cell(UL_STA6, UL_EVT12, UL_AR_2, UL_STA8);
    expect_cell(UL_STA7, UL_EVT13, UL_AR_3, UL_STA1);
    expect_cell(UL_STA8, UL_EVT14, UL_AR_4, UL_STA13);
    expect_cell(UL_STA13, UL_EVT17, UL_AR_5, UL_STA1);
    expect_cell(UL_STA7, UL_EVT12, UL_AR_8, UL_STA9);
    expect_cell(UL_STA9, UL_EVT14, UL_AR_9, UL_STA11);
    expect_cell(UL_STA10, UL_EVT13, UL_AR_10, UL_STA12);
    expect_cell(UL_STA11, UL_EVT13, UL_AR_3, UL_STA1);
    expect_cell(UL_STA12, UL_EVT14, UL_AR_4, UL_STA13);
    /* Abort. */
    expect_cell(UL_STA2, UL_EVT3, UL_AA_1, UL_STA13);
    expect_cell(UL_STA2, UL_EVT10, UL_AA_1, UL_STA13);
    expect_cell(UL_STA2, UL_EVT19, UL_AA_1, UL_STA13);
    expect_cell(UL_STA3, UL_EVT15, UL_AA_1, UL_STA13);
    expect_cell(UL_STA6, UL_EVT15, UL_AA_1, UL_STA13);
    expect_cell(UL_STA4, UL_EVT15, UL_AA_2, UL_STA1);
    expect_cell(UL_STA2, UL_EVT16, UL_AA_2, UL_STA1);
    expect_cell(UL_STA13, UL_EVT16, UL_AA_2, UL_STA1);
    expect_cell(UL_STA2, UL_EVT18, UL_AA_2, UL_STA1);
    expect_cell(UL_STA13, UL_EVT18, UL_AA_2, UL_STA1);
    expect_cell(UL_STA6, UL_EVT16, UL_AA_3, UL_STA1);
    expect_cell(UL_STA12, UL_EVT16, UL_AA_3, UL_STA1);
    expect_cell(UL_STA4, UL_EVT17, UL_AA_4, UL_STA1);
    expect_cell(UL_STA6, UL_EVT17, UL_AA_4, UL_STA1);
    expect_cell(UL_STA2, UL_EVT17, UL_AA_5, UL_STA1);
    expect_cell(UL_STA13, UL_EVT3, UL_AA_6, UL_STA13);
    expect_cell(UL_STA13, UL_EVT10, UL_AA_6, UL_STA13);
    expect_cell(UL_STA13, UL_EVT12, UL_AA_6, UL_STA13);
    expect_cell(UL_STA13, UL_EVT6, UL_AA_7, UL_STA13);
    expect_cell(UL_STA13, UL_EVT19, UL_AA_7, UL_STA13);
    expect_cell(UL_STA3, UL_EVT3, UL_AA_8, UL_STA13);
    expect_cell(UL_STA5, UL_EVT6, UL_AA_8, UL_STA13);
    expect_cell(UL_STA6, UL_EVT3, UL_AA_8, UL_STA13);
    expect_cell(UL_STA6, UL_EVT13, UL_AA_8, UL_STA13);
    expect_cell(UL_STA8, UL_EVT10, UL_AA_8, UL_STA13);
    expect_cell(UL_STA10, UL_EVT12, UL_AA_8, UL_STA13);
    expect_cell(UL_STA6, UL_EVT19, UL_AA_8, UL_STA13);
    /* Empty cells. */
    expect_empty(UL_STA1, UL_EVT3);
    expect_empty(UL_STA2, UL_EVT1);
    expect_empty(UL_STA2, UL_EVT15);
    expect_empty(UL_STA13, UL_EVT15);
    expect_empty(UL_STA5, UL_EVT9);
    expect_empty(UL_STA7, UL_EVT9);
    expect_empty(UL_STA7, UL_EVT11);
    expect_empty(UL_STA3, UL_EVT18);
    expect_empty(UL_STA6, UL_EVT14);
    expect_empty(UL_STA4, UL_EVT10);
    expect_empty((enum ul_state)0, UL_EVT1);
    expect_empty(UL_STA1, (enum ul_fsm_event)20);
    /* The two conditional actions carry both next states. */
    ul_transition t;
    CHECK(ul_fsm_next(UL_STA2, UL_EVT6, &t));
    CHECK_INT(t.next_alt, UL_STA13);
    CHECK(ul_fsm_next(UL_STA7, UL_EVT12, &t));
    CHECK_INT(t.next_alt, UL_STA10);
    /* Every PDU event is defined in Sta2..Sta13 except Sta4 (no transport yet). */
    static const enum ul_fsm_event pdu_events[] = {UL_EVT3,  UL_EVT4,  UL_EVT6,  UL_EVT10,
                                                   UL_EVT12, UL_EVT13, UL_EVT16, UL_EVT19};
    for (size_t i = 0; i < sizeof pdu_events / sizeof *pdu_events; i++)
        for (int s = UL_STA2; s <= UL_STA13; s++)
            if (s != UL_STA4 && !ul_fsm_next((enum ul_state)s, pdu_events[i], &t))
                FAIL_AT("%s + %s is empty", ul_state_name((enum ul_state)s),
                        ul_event_name(pdu_events[i]));
    CHECK_STR(ul_action_name(UL_AR_10), "AR-10");
    CHECK_STR(ul_state_name(UL_STA13), "Sta13");
    CHECK_STR(ul_event_name(UL_EVT19), "Evt19");
}

/* ------------------------------------------------------------------------------------------ */
/* Associations wired to each other                                                           */

#define EVLOG_MAX 64

typedef struct peer {
    ul_assoc *a;             /* the association */
    const ul_policy *policy; /* acceptor: answer RQs with this (NULL: leave in Sta3) */
    vp_arena *arena;         /* negotiation products */
    uint8_t log[EVLOG_MAX];  /* event types seen, in order */
    size_t nlog;             /* entries in log */
    bool close;              /* asked to close the transport */
    bool artim;              /* ARTIM running */
    bool accepted;           /* requestor: got the AC */
    ul_reject rj;            /* last RJ received */
    uint8_t abort_source;    /* last abort indication */
    uint8_t abort_reason;    /* last abort indication */
    bool abort_provider;     /* last abort indication was A-P-ABORT */
    vp_buf data;             /* P-DATA bytes received */
    size_t pdvs;             /* PDVs received */
    bool command_last;       /* a PDV with command + last seen */
    bool data_last;          /* a PDV with data + last seen */
    uint8_t last_control;    /* control byte of the last PDV */
} peer;

static bool seen(const peer *p, uint8_t type)
{
    for (size_t i = 0; i < p->nlog; i++)
        if (p->log[i] == type)
            return true;
    return false;
}

/* Takes the events of the last call; answers an association indication per policy. */
static vp_status drain(peer *p)
{
    ul_event evs[16];
    size_t n = 0;
    while (n < 16 && ul_assoc_event_next(p->a, &evs[n]))
        n++;
    for (size_t i = 0; i < n; i++) {
        const ul_event *ev = &evs[i];
        if (p->nlog < EVLOG_MAX)
            p->log[p->nlog++] = ev->type;
        switch (ev->type) {
        case UL_EV_TRANSPORT_CLOSE: p->close = true; break;
        case UL_EV_ARTIM_START: p->artim = true; break;
        case UL_EV_ARTIM_STOP: p->artim = false; break;
        case UL_EV_ASSOCIATE_ACCEPTED: p->accepted = true; break;
        case UL_EV_ASSOCIATE_REJECTED: p->rj = ev->pdu->reject; break;
        case UL_EV_ABORT:
            p->abort_provider = ev->provider;
            p->abort_source = ev->source;
            p->abort_reason = ev->reason;
            break;
        case UL_EV_P_DATA:
            for (size_t k = 0; k < ev->pdu->pdv_count; k++) {
                const ul_pdv *v = &ev->pdu->pdvs[k];
                vp_status st = vp_buf_append(&p->data, v->data, v->len);
                if (st != VP_OK)
                    return st;
                p->pdvs++;
                p->last_control = v->control;
                if (v->control == (UL_PDV_COMMAND | UL_PDV_LAST))
                    p->command_last = true;
                if (v->control == UL_PDV_LAST)
                    p->data_last = true;
            }
            break;
        case UL_EV_ASSOCIATE_INDICATION:
            if (p->policy) {
                bool ok;
                ul_associate ac;
                ul_reject rj;
                vp_status st =
                    ul_negotiate(&ev->pdu->assoc, p->policy, p->arena, &ok, &ac, &rj, NULL);
                if (st != VP_OK)
                    return st;
                st = ok ? ul_assoc_accept(p->a, &ac, NULL) : ul_assoc_reject(p->a, &rj, NULL);
                if (st != VP_OK)
                    return st;
                vp_status st2 = drain(p);
                if (st2 != VP_OK)
                    return st2;
            }
            break;
        default: break;
        }
    }
    return VP_OK;
}

/* Moves from's output into to, chunk bytes per feed call (0 = all at once). */
static vp_status pump(peer *from, peer *to, size_t chunk)
{
    vp_buf *out = ul_assoc_output(from->a);
    size_t off = 0;
    vp_status st = VP_OK;
    while (off < out->len) {
        size_t n = out->len - off;
        if (chunk && n > chunk)
            n = chunk;
        size_t used;
        vp_error err = {0};
        st = ul_assoc_feed(to->a, out->data + off, n, &used, &err);
        if (st != VP_OK)
            break;
        if (used == 0 && n > 0) {
            st = VP_EINVAL;
            break;
        }
        off += used;
        if ((st = drain(to)) != VP_OK)
            break;
    }
    ul_assoc_output_consume(from->a, off);
    return st;
}

static const char *const store_ts[] = {DCM_TS_EXPLICIT_LE, DCM_TS_IMPLICIT_LE, JPEG_LOSSLESS, NULL};
static const ul_syntax_policy syntaxes[] = {
    {VERIFICATION, NULL, false, true},
    {CT_STORAGE, store_ts, true, true},
};
static const ul_policy default_policy = {
    .ae_title = "VETPACS",
    .require_called_ae = true,
    .syntaxes = syntaxes,
    .syntax_count = 2,
};

static vp_status peer_init(peer *p, bool requestor, uint32_t max_pdu, const ul_policy *policy)
{
    memset(p, 0, sizeof *p);
    vp_buf_init(&p->data, 0);
    p->policy = policy;
    ul_assoc_opts o = {requestor, max_pdu, 0};
    vp_status st = ul_assoc_new(&o, &p->a, NULL);
    if (st != VP_OK)
        return st;
    p->arena = vp_arena_new(0);
    return p->arena ? VP_OK : VP_ENOMEM;
}

static void peer_fini(peer *p)
{
    ul_assoc_free(p->a);
    vp_arena_free(p->arena);
    vp_buf_fini(&p->data);
}

#define TRY(expr)                                                                                  \
    do {                                                                                           \
        vp_status st_ = (expr);                                                                    \
        if (st_ != VP_OK)                                                                          \
            return st_;                                                                            \
    } while (0)

/* Requestor proposes; acceptor answers by policy. Leaves both after the exchange. */
static vp_status associate(peer *scu, peer *scp, size_t chunk)
{
    ul_pdu rq = sample_rq();
    TRY(ul_assoc_request(scu->a, &rq.assoc, NULL));
    TRY(drain(scu));
    TRY(ul_assoc_transport_accepted(scp->a, NULL));
    TRY(drain(scp));
    TRY(ul_assoc_transport_connected(scu->a, NULL));
    TRY(drain(scu));
    TRY(pump(scu, scp, chunk));
    TRY(pump(scp, scu, chunk));
    return VP_OK;
}

/* The whole happy path; returns the first failure (for allocation-failure injection). */
static vp_status full_flow(peer *scu, peer *scp, size_t chunk)
{
    TRY(associate(scu, scp, chunk));
    if (ul_assoc_state(scu->a) != UL_STA6 || ul_assoc_state(scp->a) != UL_STA6)
        return VP_EINVAL;
    /* A command and a 5000-byte data set each way, cut to the peer's 1024-byte maximum. */
    uint8_t cmd[40], ds[5000];
    for (size_t i = 0; i < sizeof ds; i++)
        ds[i] = (uint8_t)(i * 7);
    memset(cmd, 0xC0, sizeof cmd);
    TRY(ul_assoc_send_pdata(scu->a, 3, true, cmd, sizeof cmd, true, NULL));
    TRY(ul_assoc_send_pdata(scu->a, 3, false, ds, 2000, false, NULL));
    TRY(ul_assoc_send_pdata(scu->a, 3, false, ds + 2000, 3000, true, NULL));
    TRY(pump(scu, scp, chunk));
    TRY(ul_assoc_send_pdata(scp->a, 1, true, cmd, sizeof cmd, true, NULL));
    TRY(ul_assoc_send_pdata(scp->a, 1, false, ds, sizeof ds, true, NULL));
    /* Whole messages: command and data set in one PDU when they fit together, else cut. */
    size_t before = ul_assoc_output(scp->a)->len;
    TRY(ul_assoc_send_message(scp->a, 1, cmd, sizeof cmd, ds, 500, NULL));
    if (ul_assoc_output(scp->a)->len - before != 6 + 6 + sizeof cmd + 6 + 500)
        return VP_EINVAL; /* one PDU header, two PDV items */
    TRY(ul_assoc_send_message(scp->a, 1, cmd, sizeof cmd, ds, sizeof ds, NULL));
    TRY(pump(scp, scu, chunk));
    /* Release. */
    TRY(ul_assoc_release_request(scu->a, NULL));
    TRY(drain(scu));
    TRY(pump(scu, scp, chunk));
    TRY(ul_assoc_release_response(scp->a, NULL));
    TRY(drain(scp));
    TRY(pump(scp, scu, chunk));
    TRY(ul_assoc_transport_closed(scp->a, NULL));
    TRY(drain(scp));
    return VP_OK;
}

TEST(test_flow_full)
{
    size_t chunks[] = {0, 1, 7, 1000};
    for (size_t c = 0; c < sizeof chunks / sizeof *chunks; c++) {
        peer scu, scp;
        CHECK_OK(peer_init(&scu, true, 1024, NULL));
        CHECK_OK(peer_init(&scp, false, 1024, &default_policy));
        CHECK_OK(full_flow(&scu, &scp, chunks[c]));
        CHECK(scu.accepted);
        CHECK(seen(&scp, UL_EV_ASSOCIATE_INDICATION));
        /* Data both ways, fragmented: 40 + 5000 bytes, at most 1018 bytes per PDV. */
        CHECK_INT(scp.data.len, 5040);
        CHECK_INT(scu.data.len, 5040 + 540 + 5040);
        CHECK_INT(scp.pdvs, 1 + 2 + 3); /* 40 | 2000 = 1018+982 | 3000 = 1018+1018+964 */
        /* 5000 = 4 x 1018 + 928; then 40 + 500 in one PDU; then 40 | 5000 cut */
        CHECK_INT(scu.pdvs, 1 + 5 + 2 + 1 + 5);
        CHECK(scp.command_last && scp.data_last);
        CHECK(scu.command_last && scu.data_last);
        CHECK_INT(scp.data.data[40 + 4999], (uint8_t)(4999 * 7));
        /* The acceptor saw the RQ's 32768 and each side the other's 1024. */
        CHECK(seen(&scp, UL_EV_RELEASE_INDICATION));
        CHECK(seen(&scu, UL_EV_RELEASE_CONFIRMATION));
        CHECK(scu.close);
        CHECK_INT(ul_assoc_state(scu.a), UL_STA1);
        CHECK_INT(ul_assoc_state(scp.a), UL_STA1);
        CHECK(!scp.artim); /* AR-4 started it, AR-5 stopped it */
        peer_fini(&scu);
        peer_fini(&scp);
    }
}

TEST(test_flow_negotiated_values)
{
    peer scu, scp;
    CHECK_OK(peer_init(&scu, true, 1024, NULL));
    CHECK_OK(peer_init(&scp, false, 2048, &default_policy));
    CHECK_OK(associate(&scu, &scp, 0));
    CHECK_INT(ul_assoc_state(scu.a), UL_STA6);
    CHECK_INT(ul_assoc_peer_max_pdu_length(scu.a), 2048);
    CHECK_INT(ul_assoc_peer_max_pdu_length(scp.a), 1024);
    CHECK(ul_assoc_pc_accepted(scu.a, 1));
    CHECK(ul_assoc_pc_accepted(scu.a, 3));
    CHECK(!ul_assoc_pc_accepted(scu.a, 5));
    CHECK(ul_assoc_pc_accepted(scp.a, 3));
    vp_error err = {0};
    CHECK_INT(ul_assoc_send_pdata(scu.a, 5, true, pdv_a, 1, true, &err), VP_EINVAL);
    CHECK(strstr(err.msg, "not accepted") != NULL);
    /* Service requests whose cell is empty are refused without a change. */
    vp_error_clear(&err);
    CHECK_INT(ul_assoc_release_response(scu.a, &err), VP_EINVAL);
    CHECK(strstr(err.msg, "Evt14 is not valid in Sta6") != NULL);
    CHECK_INT(ul_assoc_state(scu.a), UL_STA6);
    peer_fini(&scu);
    peer_fini(&scp);
}

/* An AC that accepts a context with a transfer syntax the requestor never proposed is not an
 * acceptance of that context (PS3.8 9.3.3.2): nothing may be sent on it. */
TEST(test_ac_with_unproposed_ts)
{
    peer scu;
    CHECK_OK(peer_init(&scu, true, 1024, NULL));
    ul_pdu rq = sample_rq();
    CHECK_OK(ul_assoc_request(scu.a, &rq.assoc, NULL));
    CHECK_OK(drain(&scu));
    CHECK_OK(ul_assoc_transport_connected(scu.a, NULL));
    CHECK_OK(drain(&scu));
    CHECK_INT(ul_assoc_state(scu.a), UL_STA5);
    ul_pc_ac answers[] = {
        {1, UL_PC_ACCEPTANCE, DCM_TS_IMPLICIT_LE},       /* proposed */
        {3, UL_PC_ACCEPTANCE, "1.2.840.10008.1.2.4.50"}, /* JPEG Baseline: never proposed */
    };
    ul_pdu ac = sample_ac();
    ac.assoc.ac_pcs = answers;
    ac.assoc.ac_pc_count = 2;
    vp_buf bytes;
    vp_buf_init(&bytes, 0);
    CHECK_OK(ul_pdu_encode(&ac, &bytes, NULL));
    size_t used = 0;
    CHECK_OK(ul_assoc_feed(scu.a, bytes.data, bytes.len, &used, NULL));
    CHECK_INT(used, bytes.len);
    CHECK_OK(drain(&scu));
    CHECK_INT(ul_assoc_state(scu.a), UL_STA6);
    CHECK(ul_assoc_pc_accepted(scu.a, 1));
    CHECK(!ul_assoc_pc_accepted(scu.a, 3));
    vp_buf_fini(&bytes);
    peer_fini(&scu);
}

TEST(test_flow_abort)
{
    peer scu, scp;
    CHECK_OK(peer_init(&scu, true, 0, NULL));
    CHECK_OK(peer_init(&scp, false, 0, &default_policy));
    CHECK_OK(associate(&scu, &scp, 0));
    CHECK_OK(ul_assoc_abort(scu.a, NULL));
    CHECK_OK(drain(&scu));
    CHECK_INT(ul_assoc_state(scu.a), UL_STA13);
    CHECK(scu.artim);
    CHECK_OK(pump(&scu, &scp, 0));
    CHECK(seen(&scp, UL_EV_ABORT));
    CHECK(!scp.abort_provider);
    CHECK_INT(scp.abort_source, UL_ABORT_SOURCE_USER);
    CHECK(scp.close);
    CHECK_INT(ul_assoc_state(scp.a), UL_STA1);
    /* The requestor sees the connection close: AR-5, Sta1. */
    CHECK_OK(ul_assoc_transport_closed(scu.a, NULL));
    CHECK_OK(drain(&scu));
    CHECK(!scu.artim);
    CHECK_INT(ul_assoc_state(scu.a), UL_STA1);
    peer_fini(&scu);
    peer_fini(&scp);
}

TEST(test_flow_reject)
{
    static const char *const callers[] = {"MODALITY", NULL};
    ul_policy wrong_called = default_policy;
    wrong_called.ae_title = "OTHER";
    ul_policy wrong_calling = default_policy;
    wrong_calling.calling_aes = callers;
    ul_policy busy = default_policy;
    busy.limit_reached = true;
    struct {
        const ul_policy *policy;
        uint8_t result, source, reason;
    } cases[] = {
        {&wrong_called, 1, 1, 7},
        {&wrong_calling, 1, 1, 3},
        {&busy, 2, 3, 2},
    };
    for (size_t i = 0; i < 3; i++) {
        peer scu, scp;
        CHECK_OK(peer_init(&scu, true, 0, NULL));
        CHECK_OK(peer_init(&scp, false, 0, cases[i].policy));
        CHECK_OK(associate(&scu, &scp, 3));
        CHECK(seen(&scu, UL_EV_ASSOCIATE_REJECTED));
        CHECK_INT(scu.rj.result, cases[i].result);
        CHECK_INT(scu.rj.source, cases[i].source);
        CHECK_INT(scu.rj.reason, cases[i].reason);
        CHECK(scu.close);
        CHECK_INT(ul_assoc_state(scu.a), UL_STA1);
        /* The acceptor waits in Sta13 with ARTIM running; expiry closes (AA-2). */
        CHECK_INT(ul_assoc_state(scp.a), UL_STA13);
        CHECK(scp.artim);
        CHECK_OK(ul_assoc_artim_expired(scp.a, NULL));
        CHECK_OK(drain(&scp));
        CHECK(!scp.artim);
        CHECK(scp.close);
        CHECK_INT(ul_assoc_state(scp.a), UL_STA1);
        peer_fini(&scu);
        peer_fini(&scp);
    }
}

TEST(test_artim_sta2)
{
    peer scp;
    CHECK_OK(peer_init(&scp, false, 0, &default_policy));
    CHECK_OK(ul_assoc_transport_accepted(scp.a, NULL));
    CHECK_OK(drain(&scp));
    CHECK_INT(ul_assoc_state(scp.a), UL_STA2);
    CHECK(scp.artim);
    /* Half a header, then silence: ARTIM expires, AA-2 closes. */
    static const uint8_t half[] = {0x01, 0x00, 0x00};
    size_t used;
    CHECK_OK(ul_assoc_feed(scp.a, half, sizeof half, &used, NULL));
    CHECK_INT(used, 3);
    CHECK_OK(ul_assoc_artim_expired(scp.a, NULL));
    CHECK_OK(drain(&scp));
    CHECK(scp.close);
    CHECK(!scp.artim);
    CHECK_INT(ul_assoc_state(scp.a), UL_STA1);
    /* Nothing more is accepted from the transport in Sta1. */
    CHECK_INT(ul_assoc_feed(scp.a, half, sizeof half, &used, NULL), VP_EINVAL);
    peer_fini(&scp);
}

/* An acceptor in Sta2 fed bytes; returns it for inspection. */
static void feed_sta2(peer *scp, const uint8_t *p, size_t n)
{
    CHECK_OK(peer_init(scp, false, 0, &default_policy));
    CHECK_OK(ul_assoc_transport_accepted(scp->a, NULL));
    CHECK_OK(drain(scp));
    size_t off = 0;
    while (off < n) {
        size_t used;
        vp_status st = ul_assoc_feed(scp->a, p + off, n - off, &used, NULL);
        if (st != VP_OK) {
            FAIL_AT("feed: %s", vp_status_name(st));
            break;
        }
        CHECK_OK(drain(scp));
        off += used;
    }
}

/* The A-ABORT PDU at the start of the acceptor's output. */
static void expect_abort_out(peer *p, uint8_t source, uint8_t reason)
{
    vp_buf *out = ul_assoc_output(p->a);
    if (out->len < 10 || out->data[0] != UL_PDU_ABORT) {
        FAIL_AT("no A-ABORT PDU sent (%zu bytes, type %02X)", out->len,
                out->len ? out->data[0] : 0);
        return;
    }
    CHECK_INT(out->data[8], source);
    CHECK_INT(out->data[9], reason);
}

TEST(test_unexpected_pdus)
{
    /* P-DATA in Sta2: AA-1, A-ABORT (provider, unexpected PDU), ARTIM, Sta13. */
    static const uint8_t pdata[] = {0x04, 0, 0, 0, 0, 7, 0, 0, 0, 3, 1, 3, 0xAA};
    peer scp;
    feed_sta2(&scp, pdata, sizeof pdata);
    CHECK_INT(ul_assoc_state(scp.a), UL_STA13);
    expect_abort_out(&scp, UL_ABORT_SOURCE_PROVIDER, UL_ABORT_REASON_UNEXPECTED_PDU);
    CHECK(scp.artim);
    /* In Sta13 further PDUs are ignored (AA-6), the close ends it (AR-5). */
    ul_assoc_output_consume(scp.a, SIZE_MAX);
    size_t used;
    CHECK_OK(ul_assoc_feed(scp.a, pdata, sizeof pdata, &used, NULL));
    CHECK_OK(drain(&scp));
    CHECK_INT(ul_assoc_output(scp.a)->len, 0);
    CHECK_OK(ul_assoc_transport_closed(scp.a, NULL));
    CHECK_INT(ul_assoc_state(scp.a), UL_STA1);
    peer_fini(&scp);

    /* Unknown PDU type in Sta2: AA-1 with reason 1; the stream is dropped from there. */
    static const uint8_t junk[] = {0x42, 0, 0, 0, 0, 2, 'h', 'i', 'x', 'y'};
    feed_sta2(&scp, junk, sizeof junk);
    expect_abort_out(&scp, UL_ABORT_SOURCE_PROVIDER, UL_ABORT_REASON_UNRECOGNIZED_PDU);
    CHECK_INT(ul_assoc_state(scp.a), UL_STA13);
    peer_fini(&scp);

    /* An A-ABORT in Sta2: AA-2, close, no indication. */
    static const uint8_t abort_pdu[] = {0x07, 0, 0, 0, 0, 4, 0, 0, 0, 0};
    feed_sta2(&scp, abort_pdu, sizeof abort_pdu);
    CHECK(scp.close);
    CHECK(!seen(&scp, UL_EV_ABORT));
    CHECK_INT(ul_assoc_state(scp.a), UL_STA1);
    peer_fini(&scp);

    /* An RQ larger than the cap: refused from its header (nothing buffered), AA-1. */
    static const uint8_t huge_rq[] = {0x01, 0, 0x10, 0, 0, 0, 0, 1};
    feed_sta2(&scp, huge_rq, sizeof huge_rq);
    expect_abort_out(&scp, UL_ABORT_SOURCE_PROVIDER, UL_ABORT_REASON_INVALID_PARAMETER);
    peer_fini(&scp);

    /* A malformed RQ: Evt19 -> AA-1 with the parser's reason. */
    vp_buf b;
    vp_buf_init(&b, 0);
    small_rq(&b);
    b.data[99] = 0x21;
    feed_sta2(&scp, b.data, b.len);
    expect_abort_out(&scp, UL_ABORT_SOURCE_PROVIDER, UL_ABORT_REASON_UNEXPECTED_PARAMETER);
    peer_fini(&scp);

    /* An RQ with protocol version 2 only: AE-6 rejects (permanent, source 2, reason 2). */
    small_rq(&b);
    b.data[7] = 2;
    feed_sta2(&scp, b.data, b.len);
    CHECK_INT(ul_assoc_state(scp.a), UL_STA13);
    CHECK(!seen(&scp, UL_EV_ASSOCIATE_INDICATION));
    {
        vp_buf *out = ul_assoc_output(scp.a);
        CHECK_INT(out->len, 10);
        CHECK_INT(out->data[0], UL_PDU_ASSOCIATE_RJ);
        CHECK_INT(out->data[7], 1);
        CHECK_INT(out->data[8], 2);
        CHECK_INT(out->data[9], 2);
    }
    CHECK(scp.artim);
    peer_fini(&scp);
    vp_buf_fini(&b);
}

TEST(test_unexpected_in_sta6)
{
    peer scu, scp;
    CHECK_OK(peer_init(&scu, true, 1024, NULL));
    CHECK_OK(peer_init(&scp, false, 1024, &default_policy));
    CHECK_OK(associate(&scu, &scp, 0));
    /* A-RELEASE-RP in Sta6: AA-8 (A-ABORT reason 2, A-P-ABORT indication, ARTIM). */
    static const uint8_t rp[] = {0x06, 0, 0, 0, 0, 4, 0, 0, 0, 0};
    size_t used;
    CHECK_OK(ul_assoc_feed(scp.a, rp, sizeof rp, &used, NULL));
    CHECK_OK(drain(&scp));
    CHECK_INT(ul_assoc_state(scp.a), UL_STA13);
    CHECK(scp.abort_provider);
    CHECK_INT(scp.abort_reason, UL_ABORT_REASON_UNEXPECTED_PDU);
    expect_abort_out(&scp, UL_ABORT_SOURCE_PROVIDER, UL_ABORT_REASON_UNEXPECTED_PDU);
    CHECK(scp.artim);
    /* The requestor gets the A-ABORT: AA-3, A-P-ABORT indication (provider source). */
    CHECK_OK(pump(&scp, &scu, 0));
    CHECK(scu.abort_provider);
    CHECK_INT(scu.abort_reason, UL_ABORT_REASON_UNEXPECTED_PDU);
    CHECK(scu.close);
    CHECK_INT(ul_assoc_state(scu.a), UL_STA1);
    peer_fini(&scu);
    peer_fini(&scp);

    /* P-DATA larger than our 1024 advertised: Evt19, abort reason 6. */
    CHECK_OK(peer_init(&scu, true, 1024, NULL));
    CHECK_OK(peer_init(&scp, false, 1024, &default_policy));
    CHECK_OK(associate(&scu, &scp, 0));
    uint8_t big[6] = {0x04, 0, 0, 0, 0x04, 0x01};
    CHECK_OK(ul_assoc_feed(scp.a, big, sizeof big, &used, NULL));
    CHECK_OK(drain(&scp));
    CHECK_INT(ul_assoc_state(scp.a), UL_STA13);
    CHECK_INT(scp.abort_reason, UL_ABORT_REASON_INVALID_PARAMETER);
    expect_abort_out(&scp, UL_ABORT_SOURCE_PROVIDER, UL_ABORT_REASON_INVALID_PARAMETER);
    /* The rest of that PDU is dropped. */
    uint8_t rest[100] = {0};
    CHECK_OK(ul_assoc_feed(scp.a, rest, sizeof rest, &used, NULL));
    CHECK_INT(used, sizeof rest);
    peer_fini(&scu);
    peer_fini(&scp);

    /* A PDV on a context that was not accepted: Evt19, reason 6. */
    CHECK_OK(peer_init(&scu, true, 1024, NULL));
    CHECK_OK(peer_init(&scp, false, 1024, &default_policy));
    CHECK_OK(associate(&scu, &scp, 0));
    static const uint8_t pc7[] = {0x04, 0, 0, 0, 0, 7, 0, 0, 0, 3, 7, 3, 0xAA};
    CHECK_OK(ul_assoc_feed(scp.a, pc7, sizeof pc7, &used, NULL));
    CHECK_OK(drain(&scp));
    CHECK_INT(ul_assoc_state(scp.a), UL_STA13);
    CHECK_INT(scp.abort_reason, UL_ABORT_REASON_INVALID_PARAMETER);
    CHECK(!seen(&scp, UL_EV_P_DATA));
    peer_fini(&scu);
    peer_fini(&scp);
}

TEST(test_release_collision)
{
    peer scu, scp;
    CHECK_OK(peer_init(&scu, true, 0, NULL));
    CHECK_OK(peer_init(&scp, false, 0, &default_policy));
    CHECK_OK(associate(&scu, &scp, 0));
    /* Both ask at once (PS3.8 9.2.2 release collision). */
    CHECK_OK(ul_assoc_release_request(scu.a, NULL));
    CHECK_OK(ul_assoc_release_request(scp.a, NULL));
    CHECK_OK(pump(&scu, &scp, 0)); /* acceptor: Sta7 + Evt12 -> AR-8 -> Sta10 */
    CHECK_INT(ul_assoc_state(scp.a), UL_STA10);
    CHECK_OK(pump(&scp, &scu, 0)); /* requestor: Sta7 + Evt12 -> AR-8 -> Sta9 */
    CHECK_INT(ul_assoc_state(scu.a), UL_STA9);
    CHECK_OK(ul_assoc_release_response(scu.a, NULL)); /* AR-9 -> Sta11 */
    CHECK_INT(ul_assoc_state(scu.a), UL_STA11);
    CHECK_OK(pump(&scu, &scp, 0)); /* acceptor: Sta10 + Evt13 -> AR-10 -> Sta12 */
    CHECK_INT(ul_assoc_state(scp.a), UL_STA12);
    CHECK(seen(&scp, UL_EV_RELEASE_CONFIRMATION));
    CHECK_OK(ul_assoc_release_response(scp.a, NULL)); /* AR-4 -> Sta13 */
    CHECK_INT(ul_assoc_state(scp.a), UL_STA13);
    CHECK_OK(pump(&scp, &scu, 0)); /* requestor: Sta11 + Evt13 -> AR-3 -> Sta1 */
    CHECK_INT(ul_assoc_state(scu.a), UL_STA1);
    CHECK(scu.close);
    peer_fini(&scu);
    peer_fini(&scp);
}

/* ------------------------------------------------------------------------------------------ */
/* Negotiation                                                                                */

TEST(test_negotiate_ts)
{
    static const char *proposed1[] = {DCM_TS_IMPLICIT_LE, DCM_TS_EXPLICIT_LE, JPEG_LOSSLESS};
    ul_pc_rq pc = {1, CT_STORAGE, 3, proposed1};
    CHECK_STR(ul_negotiate_transfer_syntax(&pc, NULL), DCM_TS_EXPLICIT_LE);
    static const char *proposed2[] = {JPEG_LOSSLESS, DCM_TS_EXPLICIT_LE, DCM_TS_IMPLICIT_LE};
    pc.transfer_syntaxes = proposed2;
    CHECK_STR(ul_negotiate_transfer_syntax(&pc, NULL), JPEG_LOSSLESS);
    static const char *const only_native[] = {DCM_TS_IMPLICIT_LE, DCM_TS_EXPLICIT_LE, NULL};
    CHECK_STR(ul_negotiate_transfer_syntax(&pc, only_native), DCM_TS_EXPLICIT_LE);
    static const char *const only_implicit[] = {DCM_TS_IMPLICIT_LE, NULL};
    CHECK_STR(ul_negotiate_transfer_syntax(&pc, only_implicit), DCM_TS_IMPLICIT_LE);
    static const char *proposed3[] = {"1.2.3.4.5.6"}; /* unknown private syntax */
    pc.transfer_syntaxes = proposed3;
    pc.ts_count = 1;
    CHECK(ul_negotiate_transfer_syntax(&pc, NULL) == NULL);
}

TEST(test_negotiate)
{
    vp_arena *arena = vp_arena_new(0);
    ul_pdu rq = sample_rq();
    static const char *ts_mr[] = {DCM_TS_EXPLICIT_LE};
    static const char *ts_cr[] = {"1.2.840.10008.1.2.4.50"};
    ul_pc_rq pcs[] = {sample_pcs[0],
                      sample_pcs[1],
                      {5, "1.2.840.10008.5.1.4.1.1.4", 1, ts_mr},
                      {7, CR_STORAGE, 1, ts_cr}};
    rq.assoc.rq_pcs = pcs;
    rq.assoc.rq_pc_count = 4;
    static const char *const cr_ts[] = {DCM_TS_EXPLICIT_LE, NULL};
    ul_syntax_policy syn[] = {{VERIFICATION, NULL, false, true},
                              {CT_STORAGE, NULL, false, true},
                              {CR_STORAGE, cr_ts, false, true}};
    ul_policy pol = {
        .ae_title = " VETPACS ", .require_called_ae = true, .syntaxes = syn, .syntax_count = 3};
    bool ok;
    ul_associate ac;
    ul_reject rj;
    CHECK_OK(ul_negotiate(&rq.assoc, &pol, arena, &ok, &ac, &rj, NULL));
    CHECK(ok);
    CHECK_INT(ac.ac_pc_count, 4);
    CHECK_INT(ac.ac_pcs[0].result, UL_PC_ACCEPTANCE);
    CHECK_STR(ac.ac_pcs[0].transfer_syntax, DCM_TS_IMPLICIT_LE);
    CHECK_INT(ac.ac_pcs[1].result, UL_PC_ACCEPTANCE);
    CHECK_STR(ac.ac_pcs[1].transfer_syntax, JPEG_LOSSLESS);
    CHECK_INT(ac.ac_pcs[2].result, UL_PC_ABSTRACT_SYNTAX_NOT_SUPPORTED);
    CHECK_INT(ac.ac_pcs[3].result, UL_PC_TRANSFER_SYNTAXES_NOT_SUPPORTED);
    CHECK(ac.user_info.has_async_window);
    CHECK_INT(ac.user_info.max_ops_invoked, 1);
    CHECK_INT(ac.user_info.max_ops_performed, 1);
    /* Role selection: requestor proposes SCU and SCP for CT; we only act as SCP. */
    CHECK_INT(ac.user_info.role_count, 1);
    CHECK(ac.user_info.roles[0].scu);
    CHECK(!ac.user_info.roles[0].scp);
    CHECK_STR(ac.user_info.implementation_class_uid, DCM_IMPLEMENTATION_CLASS_UID);
    CHECK_STR(ac.user_info.implementation_version_name, DCM_IMPLEMENTATION_VERSION_NAME);
    CHECK_STR(ac.called_ae, "VETPACS");
    /* The AC encodes. */
    ul_pdu acp = {.type = UL_PDU_ASSOCIATE_AC, .assoc = ac};
    vp_buf b;
    vp_buf_init(&b, 0);
    CHECK_OK(ul_pdu_encode(&acp, &b, NULL));
    vp_buf_fini(&b);

    /* Rejections, PS3.8 9.3.4. */
    ul_pdu v2 = sample_rq();
    v2.assoc.protocol_version = 2;
    CHECK_OK(ul_negotiate(&v2.assoc, &pol, arena, &ok, &ac, &rj, NULL));
    CHECK(!ok);
    CHECK_INT(rj.result, 1);
    CHECK_INT(rj.source, 2);
    CHECK_INT(rj.reason, 2);
    ul_pdu ctx = sample_rq();
    ctx.assoc.application_context = "1.2.3";
    CHECK_OK(ul_negotiate(&ctx.assoc, &pol, arena, &ok, &ac, &rj, NULL));
    CHECK(!ok);
    CHECK_INT(rj.result, 1);
    CHECK_INT(rj.source, 1);
    CHECK_INT(rj.reason, 2);
    pol.require_called_ae = false;
    pol.ae_title = "OTHER";
    CHECK_OK(ul_negotiate(&rq.assoc, &pol, arena, &ok, &ac, &rj, NULL));
    CHECK(ok);
    vp_arena_free(arena);
}

/* ------------------------------------------------------------------------------------------ */
/* Allocation failures                                                                        */

TEST(test_alloc_fail_parse)
{
    vp_buf b;
    vp_buf_init(&b, 0);
    size_t sizes[7];
    encode_all(&b, sizes);
    bool done = false;
    for (long n = 1; n < 1000 && !done; n++) {
        vp_arena *arena = vp_arena_new(64); /* small blocks: many allocations */
        if (!arena) {
            CHECK(0);
            break;
        }
        vp_alloc_fail_after(n);
        ul_pdu q;
        vp_error err = {0};
        vp_status st = ul_pdu_parse(b.data, sizes[0], arena, &q, NULL, &err);
        vp_buf again;
        vp_buf_init(&again, 0);
        if (st == VP_OK)
            st = ul_pdu_encode(&q, &again, &err);
        vp_alloc_fail_after(0);
        if (st == VP_OK)
            done = true;
        else if (st != VP_ENOMEM)
            FAIL_AT("allocation %ld: %s (%s)", n, vp_status_name(st), err.msg);
        vp_buf_fini(&again);
        vp_arena_free(arena);
    }
    CHECK(done);
    vp_buf_fini(&b);
}

TEST(test_alloc_fail_flow)
{
    bool done = false;
    long n;
    for (n = 1; n < 5000 && !done; n++) {
        peer scu, scp;
        memset(&scu, 0, sizeof scu);
        memset(&scp, 0, sizeof scp);
        vp_alloc_fail_after(n);
        vp_status st = peer_init(&scu, true, 1024, NULL);
        if (st == VP_OK)
            st = peer_init(&scp, false, 1024, &default_policy);
        if (st == VP_OK)
            st = full_flow(&scu, &scp, 500);
        vp_alloc_fail_after(0);
        if (st == VP_OK)
            done = true;
        else if (st != VP_ENOMEM)
            FAIL_AT("allocation %ld: %s", n, vp_status_name(st));
        peer_fini(&scu);
        peer_fini(&scp);
    }
    CHECK(done);
    CHECK(n > 10);
}

int main(void)
{
    RUN(test_ae_title);
    RUN(test_rq_bytes_exact);
    RUN(test_round_trip_all);
    RUN(test_parse_values);
    RUN(test_truncation);
    RUN(test_lying_lengths);
    RUN(test_invalid_values);
    RUN(test_encode_refuses);
    RUN(test_fsm_table);
    RUN(test_flow_full);
    RUN(test_flow_negotiated_values);
    RUN(test_ac_with_unproposed_ts);
    RUN(test_flow_abort);
    RUN(test_flow_reject);
    RUN(test_artim_sta2);
    RUN(test_unexpected_pdus);
    RUN(test_unexpected_in_sta6);
    RUN(test_release_collision);
    RUN(test_negotiate_ts);
    RUN(test_negotiate);
    RUN(test_alloc_fail_parse);
    RUN(test_alloc_fail_flow);
    DONE();
}
