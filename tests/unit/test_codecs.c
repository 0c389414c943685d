/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the library-backed codecs of src/img: the JPEG-LS encoder round trip through
 * img_jls_decode (ISO 14495-1; PS3.5 A.4.3) on synthetic frames (8, 5, 12 and 16 bits,
 * signed, RGB, near-lossless, odd sizes giving an even stream), and hostile or mismatched
 * streams for the JPEG, JPEG-LS and JPEG 2000 decoders (truncations, flipped bytes, headers
 * claiming other sizes, subsampling, tile bombs) which must fail with a message.
 *
 * With "--write DIR" the encoded streams are also written there as NAME.jls with NAME.raw
 * (the input frame) and NAME.txt (rows columns samples bits_allocated bits_stored
 * pixel_representation near), so tests/integration/test_codecs.py can have dcmdjpls decode
 * them.
 */
#include <stdio.h>
#include <stdlib.h>

#include "harness.h"
#include "img/img.h"

static const char *write_dir;

static img_info geometry(uint32_t rows, uint32_t cols, uint16_t spp, uint16_t alloc,
                         uint16_t stored, uint16_t signd)
{
    img_info i = {.rows = rows,
                  .columns = cols,
                  .samples_per_pixel = spp,
                  .bits_allocated = alloc,
                  .bits_stored = stored,
                  .high_bit = (uint16_t)(stored - 1),
                  .pixel_representation = signd,
                  .frames = 1};
    snprintf(i.photometric, sizeof i.photometric, "%s", spp == 3 ? "RGB" : "MONOCHROME2");
    i.frame_size = (size_t)rows * cols * spp * (alloc / 8);
    return i;
}

/* A smooth ramp with noise and both extremes, sign-extended when signed, little endian. */
static uint8_t *synth(const img_info *in, unsigned seed)
{
    uint8_t *p = malloc(in->frame_size);
    size_t n = in->frame_size / (in->bits_allocated / 8);
    long lo = in->pixel_representation ? -(1L << (in->bits_stored - 1)) : 0;
    long hi =
        in->pixel_representation ? (1L << (in->bits_stored - 1)) - 1 : (1L << in->bits_stored) - 1;
    srand(seed);
    for (size_t i = 0; i < n; i++) {
        long v = lo + (long)((hi - lo) * (double)(i % (in->columns * in->samples_per_pixel)) /
                             (in->columns * in->samples_per_pixel));
        v += rand() % 7 - 3;
        if (i == 0)
            v = lo;
        if (i == 1)
            v = hi;
        v = v < lo ? lo : v > hi ? hi : v;
        if (in->bits_allocated == 8) {
            p[i] = (uint8_t)v;
        } else {
            p[2 * i] = (uint8_t)v;
            p[2 * i + 1] = (uint8_t)((uint16_t)v >> 8);
        }
    }
    return p;
}

static long sample(const uint8_t *p, const img_info *in, size_t i)
{
    long v = in->bits_allocated == 8 ? p[i] : (p[2 * i] | p[2 * i + 1] << 8);
    return v & ((1L << in->bits_stored) - 1);
}

static void write_case(const char *name, const img_info *in, int near, const uint8_t *px,
                       const vp_buf *jls)
{
    if (!write_dir)
        return;
    char path[4200];
    const struct {
        const char *ext;
        const void *p;
        size_t n;
    } files[] = {{"jls", jls->data, jls->len}, {"raw", px, in->frame_size}};
    for (size_t i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s.%s", write_dir, name, files[i].ext);
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(files[i].p, 1, files[i].n, f) != files[i].n || fclose(f))
            FAIL_AT("cannot write %s", path);
    }
    snprintf(path, sizeof path, "%s/%s.txt", write_dir, name);
    FILE *f = fopen(path, "w");
    if (!f) {
        FAIL_AT("cannot write %s", path);
        return;
    }
    fprintf(f, "%u %u %u %u %u %u %d\n", in->rows, in->columns, in->samples_per_pixel,
            in->bits_allocated, in->bits_stored, in->pixel_representation, near);
    fclose(f);
}

/* Encodes, checks the stream's shape, decodes and compares the low Bits Stored bits. */
static void round_trip(const char *name, img_info in, int near)
{
    uint8_t *px = synth(&in, 7);
    vp_buf jls;
    vp_buf_init(&jls, 0);
    vp_error err;
    vp_error_clear(&err);
    vp_status st = img_jls_encode(px, in.frame_size, &in, near, &jls, &err);
    if (st) {
        FAIL_AT("%s: encode: %s", name, err.msg);
        goto done;
    }
    CHECK(jls.len % 2 == 0);
    CHECK(jls.len >= 4 && jls.data[0] == 0xFF && jls.data[1] == 0xD8);
    CHECK(jls.data[jls.len - 2] == 0xFF && jls.data[jls.len - 1] == 0xD9);
    write_case(name, &in, near, px, &jls);
    uint8_t *out = malloc(in.frame_size);
    img_info oi;
    st = img_jls_decode(jls.data, jls.len, &in, out, in.frame_size, &oi, &err);
    if (st) {
        FAIL_AT("%s: decode: %s", name, err.msg);
    } else {
        size_t n = in.frame_size / (in.bits_allocated / 8), bad = 0;
        for (size_t i = 0; i < n; i++) {
            long d = sample(out, &in, i) - sample(px, &in, i);
            if (d < -near || d > near)
                bad++;
        }
        if (bad)
            FAIL_AT("%s: %zu of %zu samples off by more than %d", name, bad, n, near);
        CHECK_STR(oi.photometric, in.photometric);
    }
    free(out);
done:
    free(px);
    vp_buf_fini(&jls);
}

TEST(jls_round_trip)
{
    round_trip("mono8", geometry(37, 41, 1, 8, 8, 0), 0);
    round_trip("mono5", geometry(16, 9, 1, 8, 5, 0), 0);
    round_trip("mono12", geometry(40, 33, 1, 16, 12, 0), 0);
    round_trip("mono16", geometry(31, 64, 1, 16, 16, 0), 0);
    round_trip("signed12", geometry(40, 33, 1, 16, 12, 1), 0);
    round_trip("signed16", geometry(20, 21, 1, 16, 16, 1), 0);
    round_trip("signed8", geometry(20, 21, 1, 8, 8, 1), 0);
    round_trip("rgb8", geometry(17, 19, 3, 8, 8, 0), 0);
    round_trip("rgb16", geometry(17, 19, 3, 16, 16, 0), 0);
    round_trip("rgb12", geometry(9, 11, 3, 16, 12, 0), 0);
    round_trip("near3_mono12", geometry(40, 33, 1, 16, 12, 0), 3);
    round_trip("near2_rgb8", geometry(17, 19, 3, 8, 8, 0), 2);
    round_trip("mono7in16", geometry(12, 13, 1, 16, 7, 0), 0);
    round_trip("near1_mono7in16", geometry(12, 13, 1, 16, 7, 0), 1);
    round_trip("tiny", geometry(1, 1, 1, 8, 8, 0), 0);
}

TEST(jls_encode_refuses)
{
    vp_buf out;
    vp_buf_init(&out, 0);
    vp_error err;
    uint8_t px[64] = {0};
    img_info in = geometry(4, 4, 1, 8, 8, 0);
    vp_error_clear(&err);
    CHECK_INT(img_jls_encode(px, 15, &in, 0, &out, &err), VP_EINVAL);
    vp_error_clear(&err);
    CHECK_INT(img_jls_encode(px, 16, &in, 200, &out, &err), VP_EINVAL);
    CHECK_STR(err.msg, "JPEG-LS NEAR 200 outside 0..127");
    in = geometry(2, 2, 4, 8, 8, 0);
    vp_error_clear(&err);
    CHECK_INT(img_jls_encode(px, 16, &in, 0, &out, &err), VP_EUNSUPPORTED);
    in = geometry(2, 2, 1, 32, 32, 0);
    vp_error_clear(&err);
    CHECK_INT(img_jls_encode(px, 16, &in, 0, &out, &err), VP_EUNSUPPORTED);
    CHECK_INT(out.len, 0);
    vp_buf_fini(&out);
}

/* Runs a decoder on in[0..len) into an exact-size heap buffer (so ASan sees overruns) and
 * returns its status; the message must be set on failure. */
static vp_status run(img_decoder *dec, const uint8_t *in, size_t len, const img_info *info,
                     vp_error *err)
{
    uint8_t *out = malloc(info->frame_size);
    uint8_t *copy = malloc(len ? len : 1); /* exact size, so over-reads are caught too */
    memcpy(copy, in, len);
    img_info oi;
    vp_error_clear(err);
    vp_status st = dec(copy, len, info, out, info->frame_size, &oi, err);
    if (st && !err->msg[0])
        FAIL_AT("status %s without a message", vp_status_name(st));
    free(copy);
    free(out);
    return st;
}

TEST(jls_hostile)
{
    img_info in = geometry(40, 33, 1, 16, 12, 0);
    uint8_t *px = synth(&in, 3);
    vp_buf jls;
    vp_buf_init(&jls, 0);
    vp_error err;
    vp_error_clear(&err);
    CHECK_OK(img_jls_encode(px, in.frame_size, &in, 0, &jls, &err));
    CHECK_OK(run(img_jls_decode, jls.data, jls.len, &in, &err));
    /* Truncated anywhere: an error, never a crash. */
    for (size_t cut = 0; cut + 4 < jls.len; cut += 1 + cut / 3)
        CHECK(run(img_jls_decode, jls.data, cut, &in, &err) != VP_OK);
    /* Flipped bytes: any status, but a message with a failure. */
    uint8_t *bad = malloc(jls.len);
    srand(11);
    for (int k = 0; k < 200; k++) {
        memcpy(bad, jls.data, jls.len);
        for (int j = 0; j < 3; j++)
            bad[rand() % jls.len] ^= (uint8_t)(1 + rand() % 255);
        run(img_jls_decode, bad, jls.len, &in, &err);
    }
    free(bad);
    /* The header against the data set. */
    img_info other = geometry(40, 34, 1, 16, 12, 0);
    CHECK_INT(run(img_jls_decode, jls.data, jls.len, &other, &err), VP_EPARSE);
    CHECK_STR(err.msg, "JPEG-LS frame is 33x40, the data set says 34x40");
    other = geometry(40, 33, 3, 16, 12, 0);
    CHECK_INT(run(img_jls_decode, jls.data, jls.len, &other, &err), VP_EPARSE);
    other = geometry(40, 33, 1, 8, 8, 0);
    CHECK_INT(run(img_jls_decode, jls.data, jls.len, &other, &err), VP_EPARSE);
    CHECK_STR(err.msg, "JPEG-LS precision 12, the data set says Bits Allocated 8");
    free(px);
    vp_buf_fini(&jls);
}

/* SOC + SIZ (ISO 15444-1 A.5.1) for one tile of w x h, n components of prec bits. */
static size_t j2k_siz(uint8_t *p, uint32_t w, uint32_t h, uint32_t tw, unsigned n, unsigned prec,
                      unsigned sub)
{
    size_t i = 0;
    p[i++] = 0xFF, p[i++] = 0x4F, p[i++] = 0xFF, p[i++] = 0x51;
    unsigned lsiz = 38 + 3 * n;
    p[i++] = (uint8_t)(lsiz >> 8), p[i++] = (uint8_t)lsiz, p[i++] = 0, p[i++] = 0;
    uint32_t v[8] = {w, h, 0, 0, tw, tw, 0, 0};
    for (int k = 0; k < 8; k++)
        p[i++] = (uint8_t)(v[k] >> 24), p[i++] = (uint8_t)(v[k] >> 16),
        p[i++] = (uint8_t)(v[k] >> 8), p[i++] = (uint8_t)v[k];
    p[i++] = 0, p[i++] = (uint8_t)n;
    for (unsigned c = 0; c < n; c++)
        p[i++] = (uint8_t)(prec - 1), p[i++] = (uint8_t)sub, p[i++] = 1;
    p[i++] = 0xFF, p[i++] = 0xD9; /* EOI: OpenJPEG must not get this far */
    return i;
}

TEST(j2k_header_checks)
{
    uint8_t s[128];
    vp_error err;
    img_info in = geometry(64, 64, 1, 16, 16, 0);
    CHECK_INT(run(img_j2k_decode, s, j2k_siz(s, 65535, 65535, 65535, 1, 16, 1), &in, &err),
              VP_EPARSE);
    CHECK_STR(err.msg, "JPEG 2000 image is 65535x65535, the data set says 64x64");
    CHECK_INT(run(img_j2k_decode, s, j2k_siz(s, 64, 64, 64, 3, 16, 1), &in, &err), VP_EPARSE);
    CHECK_INT(run(img_j2k_decode, s, j2k_siz(s, 64, 64, 64, 1, 16, 2), &in, &err), VP_EUNSUPPORTED);
    CHECK_STR(err.msg, "JPEG 2000 component 0 subsampled 2x1");
    img_info big = geometry(4096, 4096, 1, 8, 8, 0);
    CHECK_INT(run(img_j2k_decode, s, j2k_siz(s, 4096, 4096, 1, 1, 8, 1), &big, &err), VP_ELIMIT);
    CHECK_INT(run(img_j2k_decode, s, j2k_siz(s, 64, 64, 64, 1, 16, 1), &in, &err), VP_EPARSE);
    in = geometry(64, 64, 1, 8, 8, 0);
    CHECK_INT(run(img_j2k_decode, s, j2k_siz(s, 64, 64, 64, 1, 12, 1), &in, &err), VP_EPARSE);
    CHECK_STR(err.msg, "JPEG 2000 component 0 precision 12, Bits Allocated is 8");
    for (size_t cut = 0; cut < 20; cut += 3)
        CHECK_INT(run(img_j2k_decode, s, cut, &in, &err), VP_EPARSE);
    /* A JP2 signature box with no codestream box after it. */
    static const uint8_t jp2[] = {0,  0, 0, 12, 'j', 'P', ' ', ' ', 13,  10, 0x87,
                                  10, 0, 0, 0,  9,   'f', 't', 'y', 'p', 0};
    CHECK_INT(run(img_j2k_decode, jp2, sizeof jp2, &in, &err), VP_EPARSE);
    CHECK_STR(err.msg, "JP2 file without a codestream box");
}

TEST(jpeg_hostile)
{
    vp_error err;
    img_info in = geometry(8, 8, 1, 8, 8, 0);
    static const uint8_t junk[] = {0xFF, 0xD8, 0xFF, 0xD9};
    CHECK_INT(run(img_jpeg_decode, junk, sizeof junk, &in, &err), VP_EPARSE);
    CHECK_INT(run(img_jpeg_decode, junk, 0, &in, &err), VP_EPARSE);
    /* SOI, SOF1 with 12-bit precision: refused as unsupported, not as corrupt. */
    static const uint8_t sof12[] = {0xFF, 0xD8, 0xFF, 0xC1, 0, 11, 12, 0, 8, 0, 8, 1, 1, 0x11, 0};
    CHECK_INT(run(img_jpeg_decode, sof12, sizeof sof12, &in, &err), VP_EUNSUPPORTED);
    CHECK_STR(err.msg, "unsupported transfer syntax: JPEG Extended with 12-bit samples");
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--write"))
        write_dir = argv[2];
    RUN(jls_round_trip);
    RUN(jls_encode_refuses);
    RUN(jls_hostile);
    RUN(j2k_header_checks);
    RUN(jpeg_hostile);
    DONE();
}
