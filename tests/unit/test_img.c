/* SPDX-License-Identifier: MIT */
/* Unit tests for src/img: geometry checks (PS3.3 C.7.6.3.1), frame location in encapsulated
 * pixel data with an Extended Offset Table, a Basic Offset Table or neither (PS3.5 A.4), the
 * RLE Lossless decoder on hand-made streams, hostile ones included (PS3.5 Annex G), native
 * frames (planar, big endian) and allocation failures. */
#include <stdio.h>
#include <stdlib.h>

#include "harness.h"
#include "img/img.h"

#define T(g, e) DCM_TAG(g, e)

/* A data set with the Image Pixel module; photometric NULL leaves it out. */
static dcm_dataset *image(unsigned rows, unsigned cols, unsigned spp, unsigned bits,
                          const char *photometric, const char *frames)
{
    dcm_dataset *ds = dcm_dataset_new();
    dcm_dataset_set_u16(ds, T(0x0028, 0x0010), (uint16_t)rows);
    dcm_dataset_set_u16(ds, T(0x0028, 0x0011), (uint16_t)cols);
    dcm_dataset_set_u16(ds, T(0x0028, 0x0002), (uint16_t)spp);
    dcm_dataset_set_u16(ds, T(0x0028, 0x0100), (uint16_t)bits);
    dcm_dataset_set_u16(ds, T(0x0028, 0x0101), (uint16_t)bits);
    dcm_dataset_set_u16(ds, T(0x0028, 0x0102), (uint16_t)(bits - 1));
    dcm_dataset_set_u16(ds, T(0x0028, 0x0103), 0);
    if (spp > 1)
        dcm_dataset_set_u16(ds, T(0x0028, 0x0006), 0);
    if (photometric)
        dcm_dataset_set_str(ds, T(0x0028, 0x0004), DCM_VR_CS, photometric);
    if (frames)
        dcm_dataset_set_str(ds, T(0x0028, 0x0008), DCM_VR_IS, frames);
    return ds;
}

/* An RLE frame whose segments are the given planes, each as literal runs (G.3.1). */
static size_t rle_encode(uint8_t *out, const uint8_t *const *planes, unsigned nseg, size_t n)
{
    memset(out, 0, 64);
    vp_put_le32(out, nseg);
    size_t o = 64;
    for (unsigned s = 0; s < nseg; s++) {
        vp_put_le32(out + 4 + 4 * s, (uint32_t)o);
        for (size_t i = 0; i < n; i += 128) {
            size_t k = n - i < 128 ? n - i : 128;
            out[o++] = (uint8_t)(k - 1);
            memcpy(out + o, planes[s] + i, k);
            o += k;
        }
        if (o & 1)
            out[o++] = 0; /* segments are padded to even length */
    }
    return o;
}

static vp_status decode(const uint8_t *in, size_t len, unsigned rows, unsigned cols, unsigned spp,
                        unsigned bits, uint8_t *out, size_t out_size, vp_error *err)
{
    img_info info = {.rows = rows,
                     .columns = cols,
                     .samples_per_pixel = (uint16_t)spp,
                     .bits_allocated = (uint16_t)bits};
    vp_error_clear(err);
    return img_rle_decode(in, len, &info, out, out_size, err);
}

TEST(rle_packbits_runs)
{
    /* 1 x 12, 8-bit: literal 3, replicate 5 x 7, a -128 no-op, literal 1, replicate 3 x 9. */
    uint8_t in[64 + 12] = {0};
    vp_put_le32(in, 1);
    vp_put_le32(in + 4, 64);
    const uint8_t seg[] = {2, 1, 2, 3, (uint8_t)-4, 7, 0x80, 0, 4, (uint8_t)-2, 9, 0};
    memcpy(in + 64, seg, sizeof seg);
    uint8_t out[12];
    vp_error err;
    CHECK_OK(decode(in, sizeof in, 1, 12, 1, 8, out, sizeof out, &err));
    const uint8_t want[] = {1, 2, 3, 7, 7, 7, 7, 7, 4, 9, 9, 9};
    CHECK_MEM(out, sizeof out, want, sizeof want);
}

TEST(rle_16bit_msb_first)
{
    /* G.2: segment 1 is the most significant byte, segment 2 the least; output is LE. */
    const uint8_t msb[] = {0x12, 0xAB, 0x00}, lsb[] = {0x34, 0xCD, 0xFF};
    const uint8_t *planes[] = {msb, lsb};
    uint8_t in[256], out[6];
    size_t n = rle_encode(in, planes, 2, 3);
    vp_error err;
    CHECK_OK(decode(in, n, 1, 3, 1, 16, out, sizeof out, &err));
    const uint8_t want[] = {0x34, 0x12, 0xCD, 0xAB, 0xFF, 0x00};
    CHECK_MEM(out, sizeof out, want, sizeof want);
}

TEST(rle_rgb_interleaved)
{
    /* 2 x 2 RGB 16-bit: six segments R msb, R lsb, G msb, G lsb, B msb, B lsb. */
    uint8_t p[6][4];
    for (int s = 0; s < 6; s++)
        for (int i = 0; i < 4; i++)
            p[s][i] = (uint8_t)(s * 16 + i);
    const uint8_t *planes[] = {p[0], p[1], p[2], p[3], p[4], p[5]};
    uint8_t in[512], out[24];
    size_t n = rle_encode(in, planes, 6, 4);
    vp_error err;
    CHECK_OK(decode(in, n, 2, 2, 3, 16, out, sizeof out, &err));
    for (int px = 0; px < 4; px++)
        for (int c = 0; c < 3; c++) {
            CHECK_INT(out[(px * 3 + c) * 2 + 1], p[c * 2][px]);
            CHECK_INT(out[(px * 3 + c) * 2], p[c * 2 + 1][px]);
        }
    /* a 32-bit sample takes four segments in the same order */
    const uint8_t b3[] = {1}, b2[] = {2}, b1[] = {3}, b0[] = {4};
    const uint8_t *p32[] = {b3, b2, b1, b0};
    n = rle_encode(in, p32, 4, 1);
    CHECK_OK(decode(in, n, 1, 1, 1, 32, out, 4, &err));
    const uint8_t want[] = {4, 3, 2, 1};
    CHECK_MEM(out, 4, want, 4);
}

/* Expects VP_EPARSE whose message contains what. */
#define CHECK_PARSE(call, what)                                                                    \
    do {                                                                                           \
        CHECK_INT(call, VP_EPARSE);                                                                \
        if (!strstr(err.msg, what))                                                                \
            FAIL_AT("message \"%s\" lacks \"%s\"", err.msg, what);                                 \
    } while (0)

TEST(rle_hostile)
{
    const uint8_t plane[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    const uint8_t *planes[] = {plane, plane, plane};
    uint8_t good[256], in[256], out[16];
    size_t n = rle_encode(good, planes, 1, 8);
    vp_error err;

    CHECK_PARSE(decode(good, 63, 1, 8, 1, 8, out, 8, &err), "shorter than its header");
    memcpy(in, good, n);
    vp_put_le32(in, 2);
    CHECK_PARSE(decode(in, n, 1, 8, 1, 8, out, 8, &err), "2 segments, expected 1");
    vp_put_le32(in, 0xFFFFFFFF);
    CHECK_PARSE(decode(in, n, 1, 8, 1, 8, out, 8, &err), "expected 1");
    memcpy(in, good, n);
    vp_put_le32(in + 4, 60);
    CHECK_PARSE(decode(in, n, 1, 8, 1, 8, out, 8, &err), "offset 60");
    vp_put_le32(in + 4, 64);
    /* segment 2 before segment 1, and past the end */
    size_t n3 = rle_encode(in, planes, 3, 8);
    vp_put_le32(in + 8, 10);
    CHECK_PARSE(decode(in, n3, 1, 8, 3, 8, out, 24, &err), "segment 2 offset 10");
    n3 = rle_encode(in, planes, 3, 8);
    vp_put_le32(in + 12, 5000);
    CHECK_PARSE(decode(in, n3, 1, 8, 3, 8, out, 24, &err), "segment 3 offset 5000");
    /* a segment that ends early (truncated frame) */
    CHECK_PARSE(decode(good, 64 + 5, 1, 8, 1, 8, out, 8, &err), "literal run of 8 bytes passes");
    /* a literal run larger than the frame */
    CHECK_PARSE(decode(good, n, 1, 4, 1, 8, out, 4, &err), "overflows the frame");
    /* a replicate run larger than the frame, and one missing its byte */
    memcpy(in, good, 64);
    in[64] = (uint8_t)-100;
    in[65] = 7;
    CHECK_PARSE(decode(in, 66, 1, 8, 1, 8, out, 8, &err), "replicate run of 101 bytes");
    CHECK_PARSE(decode(in, 65, 1, 8, 1, 8, out, 8, &err), "has no byte");
    /* too few bytes: the segment runs out before the frame is full */
    in[64] = 1;
    in[65] = 1;
    in[66] = 2;
    CHECK_PARSE(decode(in, 67, 1, 8, 1, 8, out, 8, &err), "ends after 2 of 8 bytes");
    /* only no-ops: every loop turn still consumes a byte */
    memset(in + 64, 0x80, 100);
    CHECK_PARSE(decode(in, 164, 1, 8, 1, 8, out, 8, &err), "ends after 0 of 8");
    /* more segments than RLE allows (4 samples x 4 bytes = 16) */
    vp_error_clear(&err);
    CHECK_INT(decode(good, n, 1, 1, 4, 32, out, 16, &err), VP_EUNSUPPORTED);
    /* caller's buffer too small is a programming error, reported not written */
    CHECK_INT(decode(good, n, 1, 8, 1, 8, out, 7, &err), VP_EINVAL);
}

/* Expects status st whose message contains what. */
static void expect_info(dcm_dataset *ds, vp_status st, const char *what)
{
    img_info info;
    vp_error err;
    vp_error_clear(&err);
    CHECK_INT(img_info_get(ds, &info, &err), st);
    if (!strstr(err.msg, what))
        FAIL_AT("message \"%s\" lacks \"%s\"", err.msg, what);
    dcm_dataset_free(ds);
}

TEST(info_checks)
{
    img_info info;
    vp_error err;
    vp_error_clear(&err);
    dcm_dataset *ds = image(4, 5, 3, 16, "RGB", "7");
    CHECK_OK(img_info_get(ds, &info, &err));
    CHECK_INT(info.rows, 4);
    CHECK_INT(info.columns, 5);
    CHECK_INT(info.frames, 7);
    CHECK_INT(info.frame_size, 4 * 5 * 3 * 2);
    CHECK_STR(info.photometric, "RGB");
    dcm_dataset_free(ds);

    expect_info(image(0, 5, 1, 8, "MONOCHROME2", NULL), VP_EINVAL, "Rows (0028,0010) is 0");
    expect_info(image(5, 0, 1, 8, "MONOCHROME2", NULL), VP_EINVAL, "Columns (0028,0011) is 0");
    expect_info(image(5, 5, 1, 8, "MONOCHROME2", "0"), VP_EINVAL, "Number of Frames");
    expect_info(image(5, 5, 1, 8, NULL, NULL), VP_EINVAL, "Photometric Interpretation");
    expect_info(image(5, 5, 3, 8, "MONOCHROME2", NULL), VP_EINVAL, "needs 1");
    expect_info(image(5, 5, 1, 8, "RGB", NULL), VP_EINVAL, "needs 3");
    expect_info(image(5, 5, 1, 12, "MONOCHROME2", NULL), VP_EINVAL, "multiple of 8");
    expect_info(image(5, 5, 1, 24, "MONOCHROME2", NULL), VP_EUNSUPPORTED, "Bits Allocated 24");
    ds = image(5, 5, 1, 8, "MONOCHROME2", NULL);
    dcm_dataset_set_u16(ds, T(0x0028, 0x0101), 12);
    expect_info(ds, VP_EINVAL, "Bits Stored (0028,0101) is 12, expected 1..8");
    ds = image(5, 5, 1, 16, "MONOCHROME2", NULL);
    dcm_dataset_set_u16(ds, T(0x0028, 0x0101), 12);
    expect_info(ds, VP_EINVAL, "High Bit (0028,0102) is 15, expected 11");
    ds = image(5, 5, 1, 16, "MONOCHROME2", NULL);
    dcm_dataset_remove(ds, T(0x0028, 0x0010));
    expect_info(ds, VP_EINVAL, "Rows (0028,0010) missing");
    /* 65535 x 65535 x 3 x 4 bytes x 2^31 frames overflows even 64 bits */
    expect_info(image(65535, 65535, 3, 32, "RGB", "2147483647"), VP_ELIMIT, "too large");
    expect_info(image(65535, 65535, 3, 32, "RGB", "1"), VP_ELIMIT, "too large");
}

/* A 2 x 2 8-bit monochrome RLE frame whose pixels are v, v+1, v+2, v+3. */
static size_t small_frame(uint8_t *out, uint8_t v)
{
    const uint8_t plane[4] = {v, (uint8_t)(v + 1), (uint8_t)(v + 2), (uint8_t)(v + 3)};
    const uint8_t *planes[] = {plane};
    return rle_encode(out, planes, 1, 4);
}

/* An RLE data set of frames 2 x 2 frames; pixel element through px. */
static dcm_dataset *rle_image(const char *frames, dcm_element **px)
{
    dcm_dataset *ds = image(2, 2, 1, 8, "MONOCHROME2", frames);
    dcm_dataset_set_encapsulated(ds, DCM_TAG_PIXEL_DATA, DCM_VR_OB, px);
    return ds;
}

static void check_frame(const dcm_dataset *ds, uint32_t n, uint8_t v)
{
    vp_buf out;
    vp_buf_init(&out, 0);
    vp_error err;
    vp_error_clear(&err);
    img_info info;
    vp_status st = img_decode_frame(ds, IMG_RLE_LOSSLESS, n, &out, &info, &err);
    if (st != VP_OK)
        FAIL_AT("frame %u: %s %s", n, vp_status_name(st), err.msg);
    const uint8_t want[4] = {v, (uint8_t)(v + 1), (uint8_t)(v + 2), (uint8_t)(v + 3)};
    CHECK_MEM(out.data, out.len, want, 4);
    vp_buf_fini(&out);
}

static void check_frame_fails(const dcm_dataset *ds, uint32_t n, vp_status want, const char *what)
{
    vp_buf out;
    vp_buf_init(&out, 0);
    vp_error err;
    vp_error_clear(&err);
    CHECK_INT(img_decode_frame(ds, IMG_RLE_LOSSLESS, n, &out, NULL, &err), want);
    CHECK_INT(out.len, 0);
    if (!strstr(err.msg, what))
        FAIL_AT("message \"%s\" lacks \"%s\"", err.msg, what);
    vp_buf_fini(&out);
}

TEST(frames_one_per_fragment_no_bot)
{
    dcm_element *px;
    dcm_dataset *ds = rle_image("3", &px);
    uint8_t f[128];
    dcm_element_add_fragment(px, NULL, 0);
    for (int i = 0; i < 3; i++) {
        size_t n = small_frame(f, (uint8_t)(10 * i));
        dcm_element_add_fragment(px, f, n);
    }
    for (int i = 0; i < 3; i++)
        check_frame(ds, (uint32_t)i, (uint8_t)(10 * i));
    check_frame_fails(ds, 3, VP_EINVAL, "frame 3 out of range");
    dcm_dataset_free(ds);

    /* more fragments than frames, no table: where frame 2 starts is unknown */
    ds = rle_image("2", &px);
    dcm_element_add_fragment(px, NULL, 0);
    size_t n = small_frame(f, 0);
    dcm_element_add_fragment(px, f, 40);
    dcm_element_add_fragment(px, f + 40, n - 40);
    dcm_element_add_fragment(px, f, n);
    check_frame_fails(ds, 0, VP_EPARSE, "2 frames in 3 fragments");
    dcm_dataset_free(ds);
}

TEST(frames_single_frame_many_fragments)
{
    dcm_element *px;
    dcm_dataset *ds = rle_image(NULL, &px);
    uint8_t f[128];
    size_t n = small_frame(f, 50);
    dcm_element_add_fragment(px, NULL, 0);
    dcm_element_add_fragment(px, f, 30);
    dcm_element_add_fragment(px, f + 30, 30);
    dcm_element_add_fragment(px, f + 60, n - 60);
    check_frame(ds, 0, 50);
    dcm_dataset_free(ds);
}

TEST(frames_basic_offset_table)
{
    /* frame 0 in two fragments (40 + rest), frame 1 in one */
    dcm_element *px;
    dcm_dataset *ds = rle_image("2", &px);
    uint8_t f0[128], f1[128], bot[8];
    size_t n0 = small_frame(f0, 1), n1 = small_frame(f1, 100);
    vp_put_le32(bot, 0);
    vp_put_le32(bot + 4, (uint32_t)(8 + 40 + 8 + (n0 - 40)));
    dcm_element_add_fragment(px, bot, 8);
    dcm_element_add_fragment(px, f0, 40);
    dcm_element_add_fragment(px, f0 + 40, n0 - 40);
    dcm_element_add_fragment(px, f1, n1);
    check_frame(ds, 0, 1);
    check_frame(ds, 1, 100);
    dcm_dataset_free(ds);

    /* an offset that is not a fragment start: with one fragment per frame the fragments
     * show the frames (as dcmtk reads such files); with more, the table's error stands */
    ds = rle_image("2", &px);
    vp_put_le32(bot + 4, 12);
    dcm_element_add_fragment(px, bot, 8);
    dcm_element_add_fragment(px, f0, n0);
    dcm_element_add_fragment(px, f1, n1);
    check_frame(ds, 0, 1);
    check_frame(ds, 1, 100);
    dcm_dataset_free(ds);
    ds = rle_image("2", &px);
    dcm_element_add_fragment(px, bot, 8);
    dcm_element_add_fragment(px, f0, 40);
    dcm_element_add_fragment(px, f0 + 40, n0 - 40);
    dcm_element_add_fragment(px, f1, n1);
    check_frame_fails(ds, 1, VP_EPARSE, "Basic Offset Table entry 1 (12)");
    dcm_dataset_free(ds);

    /* entries not matching Number of Frames, and going backwards */
    ds = rle_image("3", &px);
    vp_put_le32(bot + 4, (uint32_t)(8 + n0));
    dcm_element_add_fragment(px, bot, 8);
    dcm_element_add_fragment(px, f0, n0);
    dcm_element_add_fragment(px, f1, n1);
    check_frame_fails(ds, 0, VP_EPARSE, "Basic Offset Table length 8, expected 12");
    dcm_dataset_free(ds);
    ds = rle_image("2", &px);
    vp_put_le32(bot, (uint32_t)(8 + n0));
    vp_put_le32(bot + 4, 0);
    dcm_element_add_fragment(px, bot, 8);
    dcm_element_add_fragment(px, f0, n0);
    dcm_element_add_fragment(px, f1, 40);
    dcm_element_add_fragment(px, f1 + 40, n1 - 40);
    check_frame_fails(ds, 0, VP_EPARSE, "entry 0");
    dcm_dataset_free(ds);
}

static void put_le64(uint8_t *p, uint64_t v)
{
    vp_put_le32(p, (uint32_t)v);
    vp_put_le32(p + 4, (uint32_t)(v >> 32));
}

TEST(frames_extended_offset_table)
{
    dcm_element *px;
    dcm_dataset *ds = rle_image("2", &px);
    uint8_t f0[130], f1[128], eot[16], eotl[16];
    size_t n0 = small_frame(f0, 7), n1 = small_frame(f1, 77);
    f0[n0] = 0xEE; /* padding beyond the frame's length in the table */
    f0[n0 + 1] = 0xEE;
    put_le64(eot, 0);
    put_le64(eot + 8, 8 + n0 + 2);
    put_le64(eotl, n0);
    put_le64(eotl + 8, n1);
    dcm_dataset_set(ds, DCM_TAG_EXTENDED_OFFSET_TABLE, DCM_VR_OV, eot, 16, NULL);
    dcm_dataset_set(ds, DCM_TAG_EXTENDED_OFFSET_TABLE_LENGTHS, DCM_VR_OV, eotl, 16, NULL);
    px = dcm_dataset_find(ds, DCM_TAG_PIXEL_DATA); /* adding elements moved it */
    dcm_element_add_fragment(px, NULL, 0);
    dcm_element_add_fragment(px, f0, n0 + 2);
    dcm_element_add_fragment(px, f1, n1);
    check_frame(ds, 0, 7);
    check_frame(ds, 1, 77);

    img_frames *fr;
    vp_error err;
    vp_error_clear(&err);
    vp_buf b;
    vp_buf_init(&b, 0);
    CHECK_OK(img_frames_open(ds, IMG_RLE_LOSSLESS, &fr, &err));
    if (fr) {
        CHECK(img_frames_encapsulated(fr));
        CHECK_OK(img_frames_get(fr, 0, &b, &err));
        CHECK_INT(b.len, n0); /* the table's length, not the fragment's */
        img_frames_free(fr);
    }
    vp_buf_fini(&b);

    /* a length larger than the fragment */
    put_le64(eotl + 8, n1 + 10);
    dcm_dataset_set(ds, DCM_TAG_EXTENDED_OFFSET_TABLE_LENGTHS, DCM_VR_OV, eotl, 16, NULL);
    check_frame_fails(ds, 0, VP_EPARSE, "Extended Offset Table frame 1");
    /* a table of the wrong size */
    dcm_dataset_set(ds, DCM_TAG_EXTENDED_OFFSET_TABLE_LENGTHS, DCM_VR_OV, eotl, 8, NULL);
    check_frame_fails(ds, 0, VP_EPARSE, "need 16 bytes");
    dcm_dataset_free(ds);
}

TEST(decode_rle_corrupt_frame_in_dataset)
{
    dcm_element *px;
    dcm_dataset *ds = rle_image(NULL, &px);
    uint8_t f[128];
    size_t n = small_frame(f, 0);
    vp_put_le32(f + 4, 0xFFFF);
    dcm_element_add_fragment(px, NULL, 0);
    dcm_element_add_fragment(px, f, n);
    check_frame_fails(ds, 0, VP_EPARSE, "segment 1 offset 65535");
    dcm_dataset_free(ds);
}

TEST(decode_unsupported_and_mismatch)
{
    dcm_element *px;
    dcm_dataset *ds = rle_image(NULL, &px);
    vp_buf out;
    vp_buf_init(&out, 0);
    vp_error err;
    vp_error_clear(&err);
    CHECK_INT(img_decode_frame(ds, "1.2.840.10008.1.2.4.100", 0, &out, NULL, &err),
              VP_EUNSUPPORTED);
    CHECK_STR(err.msg, "unsupported transfer syntax: MPEG2 Main Profile / Main Level");
    /* encapsulated data under a native syntax */
    vp_error_clear(&err);
    dcm_element_add_fragment(px, NULL, 0);
    CHECK_INT(img_decode_frame(ds, DCM_TS_EXPLICIT_LE, 0, &out, NULL, &err), VP_EPARSE);
    /* no fragments after the table */
    vp_error_clear(&err);
    CHECK_INT(img_decode_frame(ds, IMG_RLE_LOSSLESS, 0, &out, NULL, &err), VP_EPARSE);
    CHECK_STR(err.msg, "encapsulated pixel data has no fragments");
    dcm_dataset_remove(ds, DCM_TAG_PIXEL_DATA);
    vp_error_clear(&err);
    CHECK_INT(img_decode_frame(ds, IMG_RLE_LOSSLESS, 0, &out, NULL, &err), VP_EINVAL);
    CHECK_STR(err.msg, "no Pixel Data (7FE0,0010)");
    vp_buf_fini(&out);
    dcm_dataset_free(ds);
}

TEST(native_frames)
{
    /* 2 frames of 1 x 2 RGB, planar: R R G G B B per frame */
    dcm_dataset *ds = image(1, 2, 3, 8, "RGB", "2");
    dcm_dataset_set_u16(ds, T(0x0028, 0x0006), 1);
    const uint8_t px[] = {1, 2, 3, 4, 5, 6, 11, 12, 13, 14, 15, 16};
    dcm_dataset_set(ds, DCM_TAG_PIXEL_DATA, DCM_VR_OB, px, sizeof px, NULL);
    vp_buf out;
    vp_buf_init(&out, 0);
    vp_error err;
    vp_error_clear(&err);
    img_info info;
    CHECK_OK(img_decode_frame(ds, DCM_TS_EXPLICIT_LE, 1, &out, &info, &err));
    const uint8_t want[] = {11, 13, 15, 12, 14, 16};
    CHECK_MEM(out.data, out.len, want, sizeof want);
    CHECK_INT(info.planar_configuration, 0);
    /* too short for its frames */
    dcm_dataset_set(ds, DCM_TAG_PIXEL_DATA, DCM_VR_OB, px, 11, NULL);
    vp_error_clear(&err);
    CHECK_INT(img_decode_frame(ds, DCM_TS_EXPLICIT_LE, 0, &out, NULL, &err), VP_EPARSE);
    CHECK_STR(err.msg, "Pixel Data (7FE0,0010) has 11 bytes, 2 frames need 12");
    dcm_dataset_free(ds);

    /* big endian: the codec already swapped OW by 16-bit words (as dcmtk), so the frame is
     * the value as held, 32-bit samples included */
    ds = image(1, 1, 1, 32, "MONOCHROME2", NULL);
    const uint8_t w32[] = {0x04, 0x03, 0x02, 0x01};
    dcm_dataset_set(ds, DCM_TAG_PIXEL_DATA, DCM_VR_OW, w32, 4, NULL);
    vp_error_clear(&err);
    CHECK_OK(img_decode_frame(ds, DCM_TS_EXPLICIT_BE, 0, &out, NULL, &err));
    CHECK_MEM(out.data, out.len, w32, 4);
    dcm_dataset_free(ds);

    /* Bits Allocated 1: 3 frames of 2 x 2 packed bit by bit, first pixel in bit 0 (PS3.5
     * D.2); frame 1 starts at bit 4 and frame 2 in the second byte. */
    ds = image(2, 2, 1, 1, "MONOCHROME2", "3");
    const uint8_t bits[] = {0x9A, 0x0C};
    dcm_dataset_set(ds, DCM_TAG_PIXEL_DATA, DCM_VR_OB, bits, 2, NULL);
    const uint8_t f0[] = {0, 1, 0, 1}, f1[] = {1, 0, 0, 1}, f2[] = {0, 0, 1, 1};
    const uint8_t *fw[] = {f0, f1, f2};
    for (uint32_t i = 0; i < 3; i++) {
        vp_error_clear(&err);
        CHECK_OK(img_decode_frame(ds, DCM_TS_EXPLICIT_LE, i, &out, &info, &err));
        CHECK_MEM(out.data, out.len, fw[i], 4);
        CHECK_INT(info.bits_allocated, 8);
        CHECK_INT(info.bits_stored, 1);
    }
    dcm_dataset_set(ds, DCM_TAG_PIXEL_DATA, DCM_VR_OB, bits, 1, NULL);
    vp_error_clear(&err);
    CHECK_INT(img_decode_frame(ds, DCM_TS_EXPLICIT_LE, 0, &out, NULL, &err), VP_EPARSE);
    dcm_dataset_free(ds);

    /* YBR_FULL_422 (PS3.3 C.7.6.3.1.2): Y1 Y2 Cb Cr per pair of pixels, decoded to
     * YBR_FULL with the pair's chrominance on both */
    ds = image(1, 4, 3, 8, "YBR_FULL_422", NULL);
    const uint8_t ybr[] = {10, 20, 100, 200, 30, 40, 101, 201};
    dcm_dataset_set(ds, DCM_TAG_PIXEL_DATA, DCM_VR_OB, ybr, sizeof ybr, NULL);
    vp_error_clear(&err);
    CHECK_OK(img_decode_frame(ds, DCM_TS_EXPLICIT_LE, 0, &out, &info, &err));
    const uint8_t full[] = {10, 100, 200, 20, 100, 200, 30, 101, 201, 40, 101, 201};
    CHECK_MEM(out.data, out.len, full, sizeof full);
    CHECK_STR(info.photometric, "YBR_FULL");
    dcm_dataset_free(ds);
    ds = image(1, 3, 3, 8, "YBR_FULL_422", NULL);
    dcm_dataset_set(ds, DCM_TAG_PIXEL_DATA, DCM_VR_OB, ybr, 6, NULL);
    vp_error_clear(&err);
    CHECK_INT(img_decode_frame(ds, DCM_TS_EXPLICIT_LE, 0, &out, NULL, &err), VP_EPARSE);
    CHECK_STR(err.msg, "YBR_FULL_422 needs an even number of Columns, not 3");
    vp_buf_fini(&out);
    dcm_dataset_free(ds);
}

/* img_rle_encode then img_rle_decode gives the frame back, for every sample width, 1 and 3
 * samples, rows of 1..300 columns (runs over the 128-byte limit), noise and flat areas. */
TEST(rle_round_trip)
{
    static const unsigned widths[] = {1, 2, 127, 128, 129, 257, 300};
    static const unsigned bits[] = {8, 16, 32};
    uint32_t seed = 12345;
    vp_buf enc;
    vp_buf_init(&enc, 0);
    vp_error err;
    for (size_t w = 0; w < sizeof widths / sizeof widths[0]; w++)
        for (size_t b = 0; b < 3; b++)
            for (unsigned spp = 1; spp <= 3; spp += 2) {
                img_info info = {.rows = 3,
                                 .columns = widths[w],
                                 .samples_per_pixel = spp,
                                 .bits_allocated = bits[b],
                                 .bits_stored = bits[b]};
                info.frame_size = (size_t)info.rows * info.columns * spp * bits[b] / 8;
                uint8_t *px = malloc(info.frame_size), *back = malloc(info.frame_size);
                for (size_t i = 0; i < info.frame_size; i++) {
                    seed = seed * 1103515245u + 12345u;
                    /* a third flat, the rest noise */
                    px[i] = (i / 7) % 3 == 0 ? 0x55 : (uint8_t)(seed >> 16);
                }
                vp_error_clear(&err);
                CHECK_OK(img_rle_encode(px, info.frame_size, &info, &enc, &err));
                CHECK(enc.len % 2 == 0);
                CHECK_OK(img_rle_decode(enc.data, enc.len, &info, back, info.frame_size, &err));
                CHECK_MEM(back, info.frame_size, px, info.frame_size);
                free(px);
                free(back);
            }
    /* flat rows: two bytes per 128 pixels per segment */
    img_info info = {.rows = 2,
                     .columns = 256,
                     .samples_per_pixel = 1,
                     .bits_allocated = 8,
                     .bits_stored = 8,
                     .frame_size = 512};
    uint8_t flat[512];
    memset(flat, 9, sizeof flat);
    CHECK_OK(img_rle_encode(flat, sizeof flat, &info, &enc, &err));
    CHECK_INT(enc.len, 64 + 2 * 2 * 2);
    /* too many segments, wrong length */
    info.samples_per_pixel = 4;
    info.bits_allocated = 32;
    CHECK_INT(img_rle_encode(flat, sizeof flat, &info, &enc, &err), VP_EUNSUPPORTED);
    info.samples_per_pixel = 1;
    info.bits_allocated = 8;
    CHECK_INT(img_rle_encode(flat, 511, &info, &enc, &err), VP_EINVAL);
    vp_buf_fini(&enc);
}

TEST(allocation_failures)
{
    /* Every allocation failing in turn gives VP_ENOMEM (or success), never a leak or crash. */
    dcm_element *px;
    dcm_dataset *ds = rle_image("2", &px);
    uint8_t f0[128], f1[128], bot[8];
    size_t n0 = small_frame(f0, 1), n1 = small_frame(f1, 2);
    vp_put_le32(bot, 0);
    vp_put_le32(bot + 4, (uint32_t)(8 + n0));
    dcm_element_add_fragment(px, bot, 8);
    dcm_element_add_fragment(px, f0, n0);
    dcm_element_add_fragment(px, f1, n1);
    int ok = 0;
    for (long i = 1; i < 20 && !ok; i++) {
        vp_buf out;
        vp_buf_init(&out, 0);
        vp_error err;
        vp_error_clear(&err);
        vp_alloc_fail_after(i);
        vp_status st = img_decode_frame(ds, IMG_RLE_LOSSLESS, 1, &out, NULL, &err);
        vp_alloc_fail_after(0);
        if (st == VP_OK)
            ok = 1;
        else
            CHECK_INT(st, VP_ENOMEM);
        vp_buf_fini(&out);
    }
    CHECK(ok);
    dcm_dataset_free(ds);
}

int main(void)
{
    RUN(rle_packbits_runs);
    RUN(rle_16bit_msb_first);
    RUN(rle_rgb_interleaved);
    RUN(rle_hostile);
    RUN(info_checks);
    RUN(frames_one_per_fragment_no_bot);
    RUN(frames_single_frame_many_fragments);
    RUN(frames_basic_offset_table);
    RUN(frames_extended_offset_table);
    RUN(decode_rle_corrupt_frame_in_dataset);
    RUN(decode_unsupported_and_mismatch);
    RUN(native_frames);
    RUN(rle_round_trip);
    RUN(allocation_failures);
    DONE();
}
