/* SPDX-License-Identifier: MIT */
/* Unit tests for src/dcm: dictionary, data set model, reading, writing, limits, faults. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "dcm/dcm.h"
#include "harness.h"

static const char *const native_ts[] = {DCM_TS_IMPLICIT_LE, DCM_TS_EXPLICIT_LE, DCM_TS_EXPLICIT_BE,
                                        DCM_TS_DEFLATED_LE};

TEST(dictionary_lookups)
{
    const dcm_dict_entry *e = dcm_dict_lookup(DCM_TAG(0x0010, 0x0010));
    CHECK(e != NULL);
    if (e) {
        CHECK_STR(e->keyword, "PatientName");
        CHECK_INT(e->vr, DCM_VR_PN);
        CHECK_STR(e->vm, "1");
    }
    e = dcm_dict_by_keyword("PatientSpeciesDescription");
    CHECK(e && e->tag == DCM_TAG(0x0010, 0x2201));
    e = dcm_dict_by_keyword("ResponsiblePerson");
    CHECK(e && e->tag == DCM_TAG(0x0010, 0x2297) && e->vr == DCM_VR_PN);
    /* repeating groups */
    e = dcm_dict_lookup(DCM_TAG(0x6002, 0x3000));
    CHECK(e && !strcmp(e->keyword, "OverlayData"));
    e = dcm_dict_lookup(DCM_TAG(0x0028, 0x0410));
    CHECK(e && e->retired);
    /* command group */
    CHECK_STR(dcm_dict_keyword(DCM_TAG(0x0000, 0x0100)), "CommandField");
    /* implicit VR rules */
    CHECK_INT(dcm_dict_vr(DCM_TAG(0x0009, 0x0010)), DCM_VR_LO);
    CHECK_INT(dcm_dict_vr(DCM_TAG(0x0009, 0x1001)), DCM_VR_UN);
    CHECK_INT(dcm_dict_vr(DCM_TAG(0x0018, 0x0000)), DCM_VR_UL);
    CHECK_INT(dcm_dict_vr(DCM_TAG(0x7FE0, 0x0010)), DCM_VR_OB_OW);
    CHECK(dcm_dict_lookup(DCM_TAG(0x0011, 0x1234)) == NULL);
    CHECK(dcm_dict_by_keyword("NoSuchKeyword") == NULL);
}

TEST(uid_registry_and_ts)
{
    const dcm_uid_entry *u = dcm_uid_lookup("1.2.840.10008.5.1.4.1.1.1.1");
    CHECK(u && u->type == DCM_UID_SOP_CLASS);
    u = dcm_uid_lookup(DCM_TS_EXPLICIT_BE);
    CHECK(u && u->type == DCM_UID_TRANSFER_SYNTAX && u->retired);
    CHECK(dcm_uid_lookup("1.2.3.4") == NULL);
    size_t ts = 0;
    for (size_t i = 0; i < dcm_uid_count(); i++)
        ts += dcm_uid_at(i)->type == DCM_UID_TRANSFER_SYNTAX;
    CHECK(ts > 40);
    dcm_ts_info ti = dcm_ts_lookup(DCM_TS_IMPLICIT_LE);
    CHECK(!ti.explicit_vr && !ti.encapsulated);
    ti = dcm_ts_lookup(DCM_TS_DEFLATED_LE);
    CHECK(ti.deflated && ti.explicit_vr);
    ti = dcm_ts_lookup("1.2.840.10008.1.2.4.50");
    CHECK(ti.encapsulated && ti.known);
    ti = dcm_ts_lookup("1.2.840.10008.1.2.5");
    CHECK(ti.encapsulated);
}

TEST(vr_properties)
{
    CHECK_INT(dcm_vr_from_chars('O', 'V'), DCM_VR_OV);
    CHECK_INT(dcm_vr_from_chars('Z', 'Z'), DCM_VR_NONE);
    CHECK(dcm_vr_is_long(DCM_VR_UC) && dcm_vr_is_long(DCM_VR_UR) && dcm_vr_is_long(DCM_VR_SV));
    CHECK(!dcm_vr_is_long(DCM_VR_LO));
    CHECK(dcm_vr_is_text(DCM_VR_PN) && !dcm_vr_is_text(DCM_VR_CS));
    CHECK_INT(dcm_vr_unit(DCM_VR_FD), 8);
    CHECK_STR(dcm_vr_name(DCM_VR_UV), "UV");
}

TEST(uid_generation)
{
    char a[DCM_UID_MAX + 1], b[DCM_UID_MAX + 1];
    CHECK_OK(dcm_uid_generate(a));
    CHECK_OK(dcm_uid_generate(b));
    CHECK(strncmp(a, "2.25.", 5) == 0);
    CHECK(strlen(a) <= 64);
    CHECK(strcmp(a, b) != 0);
    CHECK(dcm_uid_valid(a, strlen(a)));
    CHECK(dcm_uid_valid("1.2.840.10008.1.2", 17));
    CHECK(!dcm_uid_valid("1.02.3", 6));
    CHECK(!dcm_uid_valid("1..2", 4));
    CHECK(!dcm_uid_valid("1.2.", 4));
    CHECK(!dcm_uid_valid("1.2a", 4));
    CHECK(dcm_uid_valid("0.1", 3));
}

/* A data set with every VR, nested sequences, private tags, odd lengths and pixel data. */
static dcm_dataset *sample(bool encapsulated)
{
    dcm_dataset *ds = dcm_dataset_new();
    dcm_dataset_set_str(ds, DCM_TAG(0x0008, 0x0005), DCM_VR_CS, "ISO_IR 100");
    dcm_dataset_set_str(ds, DCM_TAG(0x0008, 0x0016), DCM_VR_UI, "1.2.840.10008.5.1.4.1.1.1.1");
    dcm_dataset_set_str(ds, DCM_TAG(0x0008, 0x0018), DCM_VR_UI, "2.25.1234567");
    dcm_dataset_set_str(ds, DCM_TAG(0x0008, 0x0020), DCM_VR_DA, "20261127");
    dcm_dataset_set_str(ds, DCM_TAG(0x0008, 0x0030), DCM_VR_TM, "101500.123");
    dcm_dataset_set_str(ds, DCM_TAG(0x0008, 0x002A), DCM_VR_DT, "20261127101500");
    dcm_dataset_set_str(ds, DCM_TAG(0x0008, 0x0054), DCM_VR_AE, "VETPACS");
    dcm_dataset_set_str(ds, DCM_TAG(0x0008, 0x0060), DCM_VR_CS, "DX");
    dcm_dataset_set_str(ds, DCM_TAG(0x0008, 0x0090), DCM_VR_PN, "Vet^Anna");
    dcm_dataset_set_str(ds, DCM_TAG(0x0008, 0x1030), DCM_VR_LO, "Thorax\\Abdomen");
    dcm_dataset_set_str(ds, DCM_TAG(0x0008, 0x0119), DCM_VR_UC, "a long code value");
    dcm_dataset_set_str(ds, DCM_TAG(0x0008, 0x0120), DCM_VR_UR, "http://example.org/x");
    dcm_dataset_set_str(ds, DCM_TAG(0x0010, 0x0010), DCM_VR_PN, "M\xfcller^Rex");
    dcm_dataset_set_str(ds, DCM_TAG(0x0010, 0x0020), DCM_VR_LO, "PET-0001");
    dcm_dataset_set_str(ds, DCM_TAG(0x0010, 0x1010), DCM_VR_AS, "004Y");
    dcm_dataset_set_str(ds, DCM_TAG(0x0010, 0x1030), DCM_VR_DS, "32.5");
    dcm_dataset_set_str(ds, DCM_TAG(0x0010, 0x2201), DCM_VR_LO, "Canine");
    dcm_dataset_set_str(ds, DCM_TAG(0x0010, 0x2203), DCM_VR_CS, "ALTERED");
    dcm_dataset_set_str(ds, DCM_TAG(0x0010, 0x2292), DCM_VR_LO, "Labrador Retriever");
    dcm_dataset_set_str(ds, DCM_TAG(0x0010, 0x2297), DCM_VR_PN, "M\xfcller^Hans");
    dcm_dataset_set_str(ds, DCM_TAG(0x0010, 0x2298), DCM_VR_CS, "OWNER");
    dcm_dataset_set_str(ds, DCM_TAG(0x0010, 0x2299), DCM_VR_LO, "Happy Paws Clinic");
    dcm_dataset_set_str(ds, DCM_TAG(0x0010, 0x4000), DCM_VR_LT, "line one\r\nline two\\x");
    dcm_dataset_set_str(ds, DCM_TAG(0x0018, 0x1030), DCM_VR_LO, "odd");
    dcm_dataset_set_str(ds, DCM_TAG(0x0020, 0x0013), DCM_VR_IS, "7");
    dcm_dataset_set_str(ds, DCM_TAG(0x0020, 0x4000), DCM_VR_LT, "");
    dcm_dataset_set_str(ds, DCM_TAG(0x0008, 0x0081), DCM_VR_ST, "clinic address");
    dcm_dataset_set_str(ds, DCM_TAG(0x0040, 0xA160), DCM_VR_UT, "unlimited text");
    dcm_dataset_set_str(ds, DCM_TAG(0x0009, 0x0010), DCM_VR_LO, "VETPACS PRIVATE");
    uint8_t unk[5] = {1, 2, 3, 4, 5};
    dcm_dataset_set(ds, DCM_TAG(0x0009, 0x1001), DCM_VR_UN, unk, 5, NULL);
    uint8_t at[4];
    vp_put_le16(at, 0x0010);
    vp_put_le16(at + 2, 0x0020);
    dcm_dataset_set(ds, DCM_TAG(0x0020, 0x5000), DCM_VR_AT, at, 4, NULL);
    float fl[2] = {1.5f, -2.25f};
    dcm_dataset_set(ds, DCM_TAG(0x0018, 0x6060), DCM_VR_FL, fl, 8, NULL); /* host LE */
    double fd = 3.25;
    dcm_dataset_set(ds, DCM_TAG(0x0018, 0x9087), DCM_VR_FD, &fd, 8, NULL);
    uint8_t sl[4];
    vp_put_le32(sl, (uint32_t)-5);
    dcm_dataset_set(ds, DCM_TAG(0x0018, 0x6020), DCM_VR_SL, sl, 4, NULL);
    uint8_t ss[2];
    vp_put_le16(ss, (uint16_t)-3);
    dcm_dataset_set(ds, DCM_TAG(0x0018, 0x9219), DCM_VR_SS, ss, 2, NULL);
    dcm_dataset_set_u32(ds, DCM_TAG(0x0018, 0x6018), 123456);
    uint64_t uv = 0x0102030405060708ull;
    dcm_dataset_set(ds, DCM_TAG(0x0008, 0x040C), DCM_VR_UV, &uv, 8, NULL);
    int64_t sv = -42;
    dcm_dataset_set(ds, DCM_TAG(0x0072, 0x0082), DCM_VR_SV, &sv, 8, NULL);
    double od[2] = {1.0, 2.0};
    dcm_dataset_set(ds, DCM_TAG(0x0066, 0x0022), DCM_VR_OD, od, 16, NULL);
    float of[1] = {0.5f};
    dcm_dataset_set(ds, DCM_TAG(0x0066, 0x0016), DCM_VR_OF, of, 4, NULL);
    uint32_t ol[1] = {7};
    dcm_dataset_set(ds, DCM_TAG(0x0066, 0x0040), DCM_VR_OL, ol, 4, NULL);
    uint64_t ov[1] = {9};
    dcm_dataset_set(ds, DCM_TAG(0x0072, 0x0081), DCM_VR_OV, ov, 8, NULL);

    /* Species code sequence (defined length) with a nested sequence (undefined length). */
    dcm_element *sq;
    dcm_dataset_set_sequence(ds, DCM_TAG(0x0010, 0x2202), &sq);
    dcm_element_set_undefined_length(sq, false);
    dcm_dataset *item;
    dcm_element_add_item(sq, &item);
    dcm_dataset_set_undefined_length(item, false);
    dcm_dataset_set_str(item, DCM_TAG(0x0008, 0x0100), DCM_VR_SH, "448771007");
    dcm_dataset_set_str(item, DCM_TAG(0x0008, 0x0102), DCM_VR_SH, "SCT");
    dcm_dataset_set_str(item, DCM_TAG(0x0008, 0x0104), DCM_VR_LO, "Canis lupus familiaris");
    dcm_element *inner;
    dcm_dataset_set_sequence(item, DCM_TAG(0x0008, 0x0121), &inner);
    dcm_dataset *deep;
    dcm_element_add_item(inner, &deep);
    dcm_dataset_set_str(deep, DCM_TAG(0x0008, 0x0100), DCM_VR_SH, "X");
    dcm_element_add_item(inner, &deep); /* empty item */
    dcm_element *empty;
    dcm_dataset_set_sequence(ds, DCM_TAG(0x0008, 0x1140), &empty); /* empty sequence */

    dcm_dataset_set_u16(ds, DCM_TAG(0x0028, 0x0002), 1);
    dcm_dataset_set_str(ds, DCM_TAG(0x0028, 0x0004), DCM_VR_CS, "MONOCHROME2");
    dcm_dataset_set_str(ds, DCM_TAG(0x0028, 0x0008), DCM_VR_IS, "2");
    dcm_dataset_set_u16(ds, DCM_TAG(0x0028, 0x0010), 4);
    dcm_dataset_set_u16(ds, DCM_TAG(0x0028, 0x0011), 4);
    dcm_dataset_set_u16(ds, DCM_TAG(0x0028, 0x0100), 16);
    dcm_dataset_set_u16(ds, DCM_TAG(0x0028, 0x0101), 12);
    dcm_dataset_set_u16(ds, DCM_TAG(0x0028, 0x0103), 0);
    if (encapsulated) {
        dcm_element *px;
        dcm_dataset_set_encapsulated(ds, DCM_TAG_PIXEL_DATA, DCM_VR_OB, &px);
        uint8_t bot[8];
        vp_put_le32(bot, 0);
        vp_put_le32(bot + 4, 24); /* frame 2 starts after fragment 1 (8 + 16 bytes) */
        dcm_element_add_fragment(px, bot, 8);
        dcm_element_add_fragment(px, "frame-one-data!!", 16);
        dcm_element_add_fragment(px, "frame-two", 9); /* odd: padded on write */
    } else {
        uint16_t px[32];
        for (int i = 0; i < 32; i++)
            px[i] = (uint16_t)(i * 100);
        dcm_dataset_set(ds, DCM_TAG_PIXEL_DATA, DCM_VR_OW, px, sizeof px, NULL);
    }
    return ds;
}

static vp_status encode(const dcm_dataset *ds, const char *ts, vp_buf *out)
{
    vp_buf_init(out, 0);
    dcm_sink s = dcm_sink_buf(out);
    vp_error err;
    vp_error_clear(&err);
    vp_status st = dcm_part10_write(NULL, ds, ts, NULL, &s, &err);
    if (st)
        fprintf(stderr, "encode: %s\n", err.msg);
    return st;
}

TEST(round_trip_every_native_syntax)
{
    dcm_dataset *ds = sample(false);
    for (int k = 0; k < 4; k++) {
        vp_buf b;
        CHECK_OK(encode(ds, native_ts[k], &b));
        dcm_file *f = NULL;
        vp_error err;
        vp_error_clear(&err);
        if (dcm_file_read_mem(b.data, b.len, NULL, &f, &err))
            FAIL_AT("%s: %s", native_ts[k], err.msg);
        if (f) {
            CHECK_STR(dcm_file_transfer_syntax(f), native_ts[k]);
            CHECK(dcm_file_has_preamble(f));
            /* the written file is byte-identical when written again */
            vp_buf b2;
            CHECK_OK(encode(dcm_file_dataset(f), native_ts[k], &b2));
            if (b2.len != b.len || memcmp(b2.data, b.data, b.len) != 0)
                FAIL_AT("%s: second write differs", native_ts[k]);
            vp_buf_fini(&b2);
            char why[256] = "";
            bool implicit = k == 0;
            /* Implicit VR loses the VR of private and unknown elements: compare values on a
             * copy without them. */
            dcm_dataset *want = dcm_dataset_dup(ds);
            if (implicit) {
                dcm_dataset_remove(want, DCM_TAG(0x0009, 0x1001));
                dcm_dataset_remove(dcm_file_dataset(f), DCM_TAG(0x0009, 0x1001));
            }
            if (!dcm_dataset_equal(want, dcm_file_dataset(f), why, sizeof why))
                FAIL_AT("%s: %s", native_ts[k], why);
            dcm_dataset_free(want);
            const char *s;
            size_t n;
            CHECK_OK(dcm_dataset_get_str(dcm_file_meta(f), DCM_TAG(0x0002, 0x0012), 0, &s, &n));
            CHECK_MEM(s, n, DCM_IMPLEMENTATION_CLASS_UID, strlen(DCM_IMPLEMENTATION_CLASS_UID));
            CHECK_OK(dcm_dataset_get_str(dcm_file_meta(f), DCM_TAG(0x0002, 0x0002), 0, &s, &n));
            CHECK_MEM(s, n, "1.2.840.10008.5.1.4.1.1.1.1", 27);
            double d;
            CHECK_OK(dcm_dataset_get_double(dcm_file_dataset(f), DCM_TAG(0x0018, 0x6060), 1, &d));
            CHECK(d == -2.25);
            int64_t v;
            CHECK_OK(dcm_dataset_get_int(dcm_file_dataset(f), DCM_TAG(0x0018, 0x6020), 0, &v));
            CHECK_INT(v, -5);
            CHECK_OK(dcm_dataset_get_int(dcm_file_dataset(f), DCM_TAG(0x0028, 0x0010), 0, &v));
            CHECK_INT(v, 4);
            const dcm_pixel_info *pi = dcm_file_pixel_info(f);
            CHECK(pi->present && !pi->encapsulated);
            CHECK_INT(pi->frame_count, 2);
            if (pi->frame_count == 2 && k != 3)
                CHECK_INT(pi->frames[1].offset, pi->value_offset + 32);
            dcm_file_free(f);
        }
        vp_buf_fini(&b);
    }
    dcm_dataset_free(ds);
}

TEST(big_endian_swaps_values)
{
    dcm_dataset *ds = sample(false);
    vp_buf b;
    CHECK_OK(encode(ds, DCM_TS_EXPLICIT_BE, &b));
    /* Rows (0028,0010) US 4 must appear as 00 28 00 10 'U' 'S' 00 02 00 04. */
    static const uint8_t want[] = {0x00, 0x28, 0x00, 0x10, 'U', 'S', 0x00, 0x02, 0x00, 0x04};
    bool found = false;
    for (size_t i = 0; i + sizeof want <= b.len; i++)
        found = found || memcmp(b.data + i, want, sizeof want) == 0;
    CHECK(found);
    vp_buf_fini(&b);
    dcm_dataset_free(ds);
}

TEST(encapsulated_round_trip_and_frames)
{
    dcm_dataset *ds = sample(true);
    vp_buf b;
    const char *jpeg_ls = "1.2.840.10008.1.2.4.80";
    CHECK_OK(encode(ds, jpeg_ls, &b));
    dcm_file *f = NULL;
    vp_error err;
    vp_error_clear(&err);
    CHECK_OK(dcm_file_read_mem(b.data, b.len, NULL, &f, &err));
    if (f) {
        char why[256];
        if (!dcm_dataset_equal(ds, dcm_file_dataset(f), why, sizeof why))
            FAIL_AT("%s", why);
        const dcm_pixel_info *pi = dcm_file_pixel_info(f);
        CHECK(pi->present && pi->encapsulated);
        CHECK_INT(pi->fragment_count, 2);
        CHECK_INT(pi->frame_count, 2);
        if (pi->frame_count == 2) {
            CHECK_INT(pi->frames[0].length, 16);
            CHECK_MEM(b.data + pi->frames[0].offset, 16, "frame-one-data!!", 16);
            CHECK_MEM(b.data + pi->frames[1].offset, 9, "frame-two", 9);
        }
        dcm_file_free(f);
    }
    /* Encapsulated data cannot be written in a native syntax, nor native in encapsulated. */
    vp_buf b2;
    vp_buf_init(&b2, 0);
    dcm_sink s = dcm_sink_buf(&b2);
    vp_error_clear(&err);
    CHECK_INT(dcm_part10_write(NULL, ds, DCM_TS_EXPLICIT_LE, NULL, &s, &err), VP_EINVAL);
    CHECK(strstr(err.msg, "encapsulated") != NULL);
    dcm_dataset *nat = sample(false);
    vp_error_clear(&err);
    CHECK_INT(dcm_part10_write(NULL, nat, jpeg_ls, NULL, &s, &err), VP_EINVAL);
    dcm_dataset_free(nat);
    vp_buf_fini(&b2);
    vp_buf_fini(&b);
    dcm_dataset_free(ds);
}

TEST(lengths_defined_and_undefined)
{
    dcm_dataset *ds = sample(false);
    dcm_write_opts def = {.defined_lengths = true}, undef = {.undefined_lengths = true};
    const dcm_write_opts *opts[] = {&def, &undef};
    for (int k = 0; k < 2; k++) {
        vp_buf b;
        vp_buf_init(&b, 0);
        dcm_sink s = dcm_sink_buf(&b);
        vp_error err;
        vp_error_clear(&err);
        CHECK_OK(dcm_part10_write(NULL, ds, DCM_TS_EXPLICIT_LE, opts[k], &s, &err));
        dcm_file *f = NULL;
        CHECK_OK(dcm_file_read_mem(b.data, b.len, NULL, &f, &err));
        if (f) {
            char why[256];
            CHECK(dcm_dataset_equal(ds, dcm_file_dataset(f), why, sizeof why));
            dcm_element *sq = dcm_dataset_find(dcm_file_dataset(f), DCM_TAG(0x0010, 0x2202));
            CHECK(sq && dcm_element_undefined_length(sq) == (k == 1));
            dcm_file_free(f);
        }
        vp_buf_fini(&b);
    }
    dcm_dataset_free(ds);
}

TEST(model_order_replace_remove)
{
    dcm_dataset *ds = dcm_dataset_new();
    dcm_dataset_set_str(ds, DCM_TAG(0x0020, 0x000D), DCM_VR_UI, "1.2");
    dcm_dataset_set_str(ds, DCM_TAG(0x0008, 0x0060), DCM_VR_CS, "US");
    dcm_dataset_set_str(ds, DCM_TAG(0x0010, 0x0010), DCM_VR_PN, "Rex");
    dcm_dataset_set_str(ds, DCM_TAG(0x0008, 0x0060), DCM_VR_CS, "DX");
    CHECK_INT(dcm_dataset_count(ds), 3);
    CHECK_INT(dcm_element_tag(dcm_dataset_at(ds, 0)), DCM_TAG(0x0008, 0x0060));
    CHECK_INT(dcm_element_tag(dcm_dataset_at(ds, 2)), DCM_TAG(0x0020, 0x000D));
    char buf[16];
    CHECK_OK(dcm_dataset_copy_str(ds, DCM_TAG(0x0008, 0x0060), buf, sizeof buf));
    CHECK_STR(buf, "DX");
    CHECK_OK(dcm_dataset_remove(ds, DCM_TAG(0x0010, 0x0010)));
    CHECK_INT(dcm_dataset_remove(ds, DCM_TAG(0x0010, 0x0010)), VP_ENOTFOUND);
    CHECK_INT(dcm_dataset_count(ds), 2);
    dcm_dataset_set_str(ds, DCM_TAG(0x0008, 0x0008), DCM_VR_CS, " ORIGINAL \\PRIMARY");
    const char *s;
    size_t n;
    CHECK_OK(dcm_dataset_get_str(ds, DCM_TAG(0x0008, 0x0008), 0, &s, &n));
    CHECK_MEM(s, n, "ORIGINAL", 8);
    CHECK_OK(dcm_dataset_get_str(ds, DCM_TAG(0x0008, 0x0008), 1, &s, &n));
    CHECK_MEM(s, n, "PRIMARY", 7);
    CHECK_INT(dcm_dataset_get_str(ds, DCM_TAG(0x0008, 0x0008), 2, &s, &n), VP_ENOTFOUND);
    CHECK_INT(dcm_element_vm(dcm_dataset_find(ds, DCM_TAG(0x0008, 0x0008))), 2);
    CHECK_INT(dcm_dataset_set(ds, DCM_TAG(0x0008, 0x0008), DCM_VR_SQ, "x", 1, NULL), VP_EINVAL);
    dcm_dataset_free(ds);
    dcm_dataset_free(NULL);
}

/* Every prefix of a valid file must give a clean error (or a valid shorter data set), never a
 * crash: run under ASan this proves the bounds checks. */
TEST(truncated_at_every_offset)
{
    for (int k = 0; k < 2; k++) {
        dcm_dataset *ds = sample(k == 1);
        vp_buf b;
        CHECK_OK(encode(ds, k ? "1.2.840.10008.1.2.5" : DCM_TS_DEFLATED_LE, &b));
        size_t errors = 0;
        for (size_t cut = 0; cut < b.len; cut++) {
            dcm_file *f = NULL;
            vp_error err;
            vp_error_clear(&err);
            vp_status st = dcm_file_read_mem(b.data, cut, NULL, &f, &err);
            if (st != VP_OK) {
                errors++;
                if (err.msg[0] == 0)
                    FAIL_AT("cut %zu: status %s without a message", cut, vp_status_name(st));
            }
            dcm_file_free(f);
        }
        CHECK(errors > b.len / 2);
        vp_buf_fini(&b);
        dcm_dataset_free(ds);
    }
}

static void put_el(vp_buf *b, uint16_t g, uint16_t e, const char *vr, uint32_t len)
{
    uint8_t h[12];
    vp_put_le16(h, g);
    vp_put_le16(h + 2, e);
    if (!vr) {
        vp_put_le32(h + 4, len);
        vp_buf_append(b, h, 8);
        return;
    }
    memcpy(h + 4, vr, 2);
    if (dcm_vr_is_long(dcm_vr_from_chars(vr[0], vr[1]))) {
        vp_put_le16(h + 6, 0);
        vp_put_le32(h + 8, len);
        vp_buf_append(b, h, 12);
    } else {
        vp_put_le16(h + 6, (uint16_t)len);
        vp_buf_append(b, h, 8);
    }
}

static vp_status read_bare(const vp_buf *b, const char *ts, vp_error *err)
{
    dcm_dataset *ds = NULL;
    vp_error_clear(err);
    vp_status st = dcm_dataset_read_mem(b->data, b->len, ts, NULL, &ds, err);
    dcm_dataset_free(ds);
    return st;
}

TEST(deep_nesting_is_bounded)
{
    for (int undefined = 0; undefined < 2; undefined++) {
        vp_buf b;
        vp_buf_init(&b, 0);
        /* 1,000 nested sequences, each with one item. Defined lengths are patched below. */
        size_t starts[1000];
        for (int i = 0; i < 1000; i++) {
            starts[i] = b.len;
            put_el(&b, 0x0040, 0xA730, "SQ", DCM_UNDEFINED_LENGTH);
            put_el(&b, 0xFFFE, 0xE000, NULL, DCM_UNDEFINED_LENGTH);
        }
        for (int i = 0; i < 1000; i++) {
            put_el(&b, 0xFFFE, 0xE00D, NULL, 0);
            put_el(&b, 0xFFFE, 0xE0DD, NULL, 0);
        }
        if (!undefined) {
            /* rewrite with defined lengths: simpler to rebuild without delimiters */
            vp_buf_reset(&b);
            size_t total = 1000 * 20;
            for (int i = 0; i < 1000; i++) {
                size_t inner = total - (size_t)i * 20;
                put_el(&b, 0x0040, 0xA730, "SQ", (uint32_t)(inner - 12));
                put_el(&b, 0xFFFE, 0xE000, NULL, (uint32_t)(inner - 20));
            }
        }
        (void)starts;
        vp_error err;
        CHECK_INT(read_bare(&b, DCM_TS_EXPLICIT_LE, &err), VP_ELIMIT);
        CHECK(strstr(err.msg, "nested") != NULL);
        vp_buf_fini(&b);
    }
}

TEST(bad_lengths_give_clear_errors)
{
    vp_buf b;
    vp_buf_init(&b, 0);
    vp_error err;
    /* value length past the end */
    put_el(&b, 0x0010, 0x0010, "PN", 100);
    vp_buf_append(&b, "Rex ", 4);
    CHECK_INT(read_bare(&b, DCM_TS_EXPLICIT_LE, &err), VP_ETRUNC);
    CHECK(strstr(err.msg, "(0010,0010)") && strstr(err.msg, "offset 0"));
    /* huge declared length */
    vp_buf_reset(&b);
    put_el(&b, 0x7FE0, 0x0010, "OB", 0xFFFFFFF0u);
    CHECK(read_bare(&b, DCM_TS_EXPLICIT_LE, &err) != VP_OK);
    /* undefined length on a non-sequence element that is not followed by fragments */
    vp_buf_reset(&b);
    put_el(&b, 0x0010, 0x0020, "UT", DCM_UNDEFINED_LENGTH);
    vp_buf_append(&b, "ABCDEFGH", 8);
    CHECK_INT(read_bare(&b, DCM_TS_EXPLICIT_LE, &err), VP_EPARSE);
    /* item longer than its sequence */
    vp_buf_reset(&b);
    put_el(&b, 0x0040, 0xA730, "SQ", 8);
    put_el(&b, 0xFFFE, 0xE000, NULL, 16);
    put_el(&b, 0x0008, 0x0100, "SH", 8);
    vp_buf_append(&b, "12345678", 8);
    CHECK(read_bare(&b, DCM_TS_EXPLICIT_LE, &err) != VP_OK);
    /* garbage VR bytes in the middle of a data set */
    vp_buf_reset(&b);
    put_el(&b, 0x0008, 0x0060, "CS", 2);
    vp_buf_append(&b, "DX", 2);
    put_el(&b, 0x0010, 0x0010, "\x01\x02", 2);
    vp_buf_append(&b, "xx", 2);
    CHECK_INT(read_bare(&b, DCM_TS_EXPLICIT_LE, &err), VP_EPARSE);
    CHECK(strstr(err.msg, "invalid VR") != NULL);
    /* an unknown VR of two letters reads as UN with a 4-byte length */
    vp_buf_reset(&b);
    put_el(&b, 0x0011, 0x0010, "ZZ", 0);
    vp_buf_append(&b,
                  "\x04\x00\x00\x00"
                  "abcd",
                  8);
    CHECK_OK(read_bare(&b, DCM_TS_EXPLICIT_LE, &err));
    /* odd length values are accepted */
    vp_buf_reset(&b);
    put_el(&b, 0x0010, 0x0010, "PN", 3);
    vp_buf_append(&b, "Rex", 3);
    put_el(&b, 0x0010, 0x0020, "LO", 1);
    vp_buf_append(&b, "1", 1);
    CHECK_OK(read_bare(&b, DCM_TS_EXPLICIT_LE, &err));
    /* an item tag outside a sequence */
    vp_buf_reset(&b);
    put_el(&b, 0xFFFE, 0xE000, NULL, 0);
    CHECK_INT(read_bare(&b, DCM_TS_EXPLICIT_LE, &err), VP_EPARSE);
    /* corrupt deflate stream */
    vp_buf_reset(&b);
    vp_buf_append(&b, "\xff\xff\xff\xff garbage that is no deflate stream", 36);
    CHECK(read_bare(&b, DCM_TS_DEFLATED_LE, &err) != VP_OK);
    vp_buf_fini(&b);
}

TEST(element_count_limit)
{
    vp_buf b;
    vp_buf_init(&b, 0);
    for (int i = 0; i < 100; i++) {
        put_el(&b, 0x0011, (uint16_t)(0x1000 + i), "LO", 2);
        vp_buf_append(&b, "ab", 2);
    }
    dcm_read_opts o = {.max_elements = 50};
    dcm_dataset *ds = NULL;
    vp_error err;
    vp_error_clear(&err);
    CHECK_INT(dcm_dataset_read_mem(b.data, b.len, DCM_TS_EXPLICIT_LE, &o, &ds, &err), VP_ELIMIT);
    CHECK(ds == NULL);
    vp_buf_fini(&b);
}

TEST(missing_meta_and_implicit_body)
{
    /* A bare implicit data set in a "file" with no preamble and no meta group. */
    dcm_dataset *ds = sample(false);
    vp_buf b;
    vp_buf_init(&b, 0);
    dcm_sink s = dcm_sink_buf(&b);
    vp_error err;
    vp_error_clear(&err);
    CHECK_OK(dcm_dataset_write(ds, DCM_TS_IMPLICIT_LE, NULL, &s, &err));
    dcm_file *f = NULL;
    CHECK_OK(dcm_file_read_mem(b.data, b.len, NULL, &f, &err));
    if (f) {
        CHECK_STR(dcm_file_transfer_syntax(f), DCM_TS_IMPLICIT_LE);
        CHECK(!dcm_file_has_preamble(f));
        CHECK_INT(dcm_dataset_count(dcm_file_meta(f)), 0);
        char buf[64];
        CHECK_OK(
            dcm_dataset_copy_str(dcm_file_dataset(f), DCM_TAG(0x0010, 0x2201), buf, sizeof buf));
        CHECK_STR(buf, "Canine");
        dcm_file_free(f);
    }
    /* Same as explicit big endian: sniffed. */
    vp_buf_reset(&b);
    CHECK_OK(dcm_dataset_write(ds, DCM_TS_EXPLICIT_BE, NULL, &s, &err));
    CHECK_OK(dcm_file_read_mem(b.data, b.len, NULL, &f, &err));
    if (f) {
        CHECK_STR(dcm_file_transfer_syntax(f), DCM_TS_EXPLICIT_BE);
        int64_t rows = 0;
        CHECK_OK(dcm_dataset_get_int(dcm_file_dataset(f), DCM_TAG(0x0028, 0x0010), 0, &rows));
        CHECK_INT(rows, 4);
        dcm_file_free(f);
    }
    vp_buf_fini(&b);
    dcm_dataset_free(ds);
}

/* Header reads stop before Pixel Data and never read it: a file whose pixel data is cut off
 * still reads, and reports the declared size. */
TEST(header_only_read_from_file)
{
    char path[] = "/tmp/vp-test-hdr-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    close(fd);
    dcm_dataset *ds = sample(false);
    /* 13 MB of pixel data: 2560 x 2560 x 16 bit */
    size_t n = (size_t)2560 * 2560 * 2;
    uint8_t *px = calloc(1, n);
    dcm_dataset_set_u16(ds, DCM_TAG(0x0028, 0x0010), 2560);
    dcm_dataset_set_u16(ds, DCM_TAG(0x0028, 0x0011), 2560);
    dcm_dataset_set_str(ds, DCM_TAG(0x0028, 0x0008), DCM_VR_IS, "1");
    dcm_dataset_set(ds, DCM_TAG_PIXEL_DATA, DCM_VR_OW, px, n, NULL);
    free(px);
    vp_error err;
    vp_error_clear(&err);
    CHECK_OK(dcm_file_write(path, NULL, ds, DCM_TS_EXPLICIT_LE, NULL, false, &err));
    CHECK_INT(truncate(path, 100000), 0); /* pixel data now mostly missing */
    dcm_read_opts o = {.stop_at_tag = DCM_TAG_PIXEL_DATA};
    dcm_file *f = NULL;
    CHECK_OK(dcm_file_read(path, &o, &f, &err));
    if (f) {
        const dcm_pixel_info *pi = dcm_file_pixel_info(f);
        CHECK(pi->present && !pi->encapsulated);
        CHECK_INT(pi->value_length, n);
        CHECK_INT(pi->frame_count, 1);
        dcm_element *el = dcm_dataset_find(dcm_file_dataset(f), DCM_TAG_PIXEL_DATA);
        CHECK(el && dcm_element_is_skipped(el));
        char buf[64];
        CHECK_OK(
            dcm_dataset_copy_str(dcm_file_dataset(f), DCM_TAG(0x0010, 0x2297), buf, sizeof buf));
        CHECK_STR(buf, "M\xfcller^Hans");
        dcm_file_free(f);
    }
    /* A full read of the cut file is an error naming Pixel Data. */
    vp_error_clear(&err);
    CHECK_INT(dcm_file_read(path, NULL, &f, &err), VP_ETRUNC);
    CHECK(strstr(err.msg, "(7FE0,0010)") != NULL);
    /* Encapsulated: fragments are found with item headers only. */
    dcm_dataset *enc = sample(true);
    vp_error_clear(&err);
    CHECK_OK(dcm_file_write(path, NULL, enc, "1.2.840.10008.1.2.4.80", NULL, true, &err));
    CHECK_OK(dcm_file_read(path, &o, &f, &err));
    if (f) {
        const dcm_pixel_info *pi = dcm_file_pixel_info(f);
        CHECK(pi->present && pi->encapsulated);
        CHECK_INT(pi->fragment_count, 2);
        CHECK_INT(pi->frame_count, 2);
        if (pi->frame_count == 2)
            CHECK_INT(pi->frames[1].length, 10); /* padded to even */
        dcm_file_free(f);
    }
    dcm_dataset_free(enc);
    unlink(path);
    dcm_dataset_free(ds);
}

/* Fail each allocation of a read and a write in turn: every failure must come back as
 * VP_ENOMEM with everything freed (ASan checks the leaks). */
TEST(allocation_failures_are_clean)
{
    dcm_dataset *ds = sample(true);
    vp_buf b;
    CHECK_OK(encode(ds, "1.2.840.10008.1.2.4.80", &b));
    int failures = 0;
    for (long nth = 1; nth < 400; nth++) {
        dcm_file *f = NULL;
        vp_error err;
        vp_error_clear(&err);
        vp_alloc_fail_after(nth);
        vp_status st = dcm_file_read_mem(b.data, b.len, NULL, &f, &err);
        vp_alloc_fail_after(0);
        if (st == VP_OK) {
            dcm_file_free(f);
            break;
        }
        failures++;
        if (st != VP_ENOMEM)
            FAIL_AT("allocation %ld: %s (%s)", nth, vp_status_name(st), err.msg);
    }
    CHECK(failures > 3);
    for (long nth = 1; nth < 400; nth++) {
        vp_buf o;
        vp_buf_init(&o, 0);
        dcm_sink s = dcm_sink_buf(&o);
        vp_error err;
        vp_error_clear(&err);
        vp_alloc_fail_after(nth);
        vp_status st = dcm_part10_write(NULL, ds, "1.2.840.10008.1.2.4.80", NULL, &s, &err);
        vp_alloc_fail_after(0);
        vp_buf_fini(&o);
        if (st == VP_OK)
            break;
        if (st != VP_ENOMEM && st != VP_ELIMIT)
            FAIL_AT("write allocation %ld: %s", nth, vp_status_name(st));
    }
    vp_buf_fini(&b);
    dcm_dataset_free(ds);
}

TEST(dump_format)
{
    dcm_dataset *ds = sample(true);
    vp_buf out;
    vp_buf_init(&out, 0);
    CHECK_OK(dcm_dump(ds, NULL, &out));
    const char *s = (const char *)out.data;
    CHECK(strstr(s, "(0010,2201) LO 6 [Canine] PatientSpeciesDescription\n") != NULL);
    CHECK(strstr(s, "(0010,0010) PN 10 [M\xc3\xbcller^Rex] PatientName\n") != NULL);
    CHECK(strstr(s, "(0010,2202) SQ d/l 1 items PatientSpeciesCodeSequence\n") != NULL);
    CHECK(strstr(s, "  (FFFE,E000) na Item #1\n    (0008,0100) SH 9 [448771007] CodeValue") !=
          NULL);
    CHECK(strstr(s, "(0028,0010) US 2 4 Rows\n") != NULL);
    CHECK(strstr(s, "(7FE0,0010) OB u/l 3 fragments PixelData\n") != NULL);
    vp_buf_fini(&out);
    dcm_dataset_free(ds);
}

int main(void)
{
    RUN(dictionary_lookups);
    RUN(uid_registry_and_ts);
    RUN(vr_properties);
    RUN(uid_generation);
    RUN(round_trip_every_native_syntax);
    RUN(big_endian_swaps_values);
    RUN(encapsulated_round_trip_and_frames);
    RUN(lengths_defined_and_undefined);
    RUN(model_order_replace_remove);
    RUN(truncated_at_every_offset);
    RUN(deep_nesting_is_bounded);
    RUN(bad_lengths_give_clear_errors);
    RUN(element_count_limit);
    RUN(missing_meta_and_implicit_body);
    RUN(header_only_read_from_file);
    RUN(allocation_failures_are_clean);
    RUN(dump_format);
    DONE();
}
