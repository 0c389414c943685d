/* SPDX-License-Identifier: MIT */
/* Unit tests for the 12-bit JPEG extended DCT decoder (src/img/jpeg12.c; ISO 10918-1 process
 * 4, PS3.5 A.4.1). Streams come from a small encoder written here, which takes quantised
 * coefficients directly: the inverse DCT is checked against a straightforward
 * double-precision evaluation of A.3.3's IDCT formula (within +-1; bit-exactness with dcmtk is
 * the integration test's job), DC-only blocks exactly, 8- and 16-bit quantisation tables,
 * Huffman codes short and 16 bits long, restart intervals, fill bytes. Hostile streams check
 * each error path and its message; every truncation and many single-byte changes of a stream
 * must fail cleanly (ASan builds catch any out-of-bounds access). */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "harness.h"
#include "img/img.h"

static const uint8_t ZZ[64] = {
    0,  1,  8,  16, 9,  2,  3,  10, 17, 24, 32, 25, 18, 11, 4,  5,  12, 19, 26, 33, 40, 48,
    41, 34, 27, 20, 13, 6,  7,  14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23,
    30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
};

/* ---- A small encoder of given coefficients --------------------------------------------- */

typedef struct bw {
    uint8_t *out;
    size_t n;
    uint32_t acc;
    int bits;
} bw;

static void put_byte(bw *w, uint8_t b)
{
    w->out[w->n++] = b;
}

static void put_bits(bw *w, uint32_t v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        w->acc = w->acc << 1 | ((v >> i) & 1);
        if (++w->bits == 8) {
            put_byte(w, (uint8_t)w->acc);
            if ((uint8_t)w->acc == 0xFF)
                put_byte(w, 0); /* F.1.2.3 stuffing */
            w->acc = 0;
            w->bits = 0;
        }
    }
}

static void flush_bits(bw *w)
{
    if (w->bits)
        put_bits(w, (1u << (8 - w->bits)) - 1, 8 - w->bits);
}

static void put16(bw *w, unsigned v)
{
    put_byte(w, (uint8_t)(v >> 8));
    put_byte(w, (uint8_t)v);
}

typedef struct enc_opts {
    unsigned width, height;
    const uint16_t *q;   /* natural order; NULL: all 1 */
    bool q16;            /* DQT with 16-bit entries (Pq 1) */
    bool long_codes;     /* every code 16 bits long */
    unsigned restart;    /* Ri in MCUs, 0: none */
    bool no_dqt, no_dht; /* leave a table out */
} enc_opts;

/* Code of a symbol: all symbols of a table have one length (DC 5 or 16 bits, AC 9 or 16), so
 * the canonical code (Annex C) of symbol s is s. */
static void put_symbol(bw *w, const enc_opts *o, bool dc, unsigned s)
{
    put_bits(w, s, o->long_codes ? 16 : dc ? 5 : 9);
}

static unsigned category(int v)
{
    unsigned a = (unsigned)(v < 0 ? -v : v), s = 0;
    while (a)
        a >>= 1, s++;
    return s;
}

static void put_value(bw *w, int v, unsigned s)
{
    if (s)
        put_bits(w, (uint32_t)(v < 0 ? v + (1 << s) - 1 : v), (int)s);
}

/* One stream of width x height, one component; coefs holds the blocks in raster order, 64
 * zigzag-ordered coefficients each (DC absolute). Returns its length. */
static size_t encode(uint8_t *out, const enc_opts *o, const int *coefs)
{
    bw w = {.out = out};
    put16(&w, 0xFFD8);
    if (!o->no_dqt) {
        put16(&w, 0xFFDB);
        put16(&w, o->q16 ? 2 + 1 + 128 : 2 + 1 + 64);
        put_byte(&w, o->q16 ? 0x10 : 0x00);
        for (unsigned i = 0; i < 64; i++) {
            unsigned q = o->q ? o->q[ZZ[i]] : 1;
            if (o->q16)
                put16(&w, q);
            else
                put_byte(&w, (uint8_t)q);
        }
    }
    put16(&w, 0xFFC1);
    put16(&w, 11);
    put_byte(&w, 12);
    put16(&w, o->height);
    put16(&w, o->width);
    put_byte(&w, 1);
    put_byte(&w, 1), put_byte(&w, 0x11), put_byte(&w, 0);
    if (!o->no_dht) {
        /* DC: the 16 sizes; AC: 255 symbols (all but 0xFF, run 15 size 15, not used here:
         * BITS counts are bytes). */
        unsigned dl = o->long_codes ? 16 : 5, al = o->long_codes ? 16 : 9;
        put16(&w, 0xFFC4);
        put16(&w, 2 + 17 + 16 + 17 + 255);
        put_byte(&w, 0x00);
        for (unsigned l = 1; l <= 16; l++)
            put_byte(&w, l == dl ? 16 : 0);
        for (unsigned s = 0; s < 16; s++)
            put_byte(&w, (uint8_t)s);
        put_byte(&w, 0x10);
        for (unsigned l = 1; l <= 16; l++)
            put_byte(&w, l == al ? 255 : 0);
        for (unsigned s = 0; s < 255; s++)
            put_byte(&w, (uint8_t)s);
    }
    if (o->restart) {
        put16(&w, 0xFFDD);
        put16(&w, 4);
        put16(&w, o->restart);
    }
    put16(&w, 0xFFDA);
    put16(&w, 8);
    put_byte(&w, 1);
    put_byte(&w, 1), put_byte(&w, 0x00);
    put_byte(&w, 0), put_byte(&w, 63), put_byte(&w, 0);
    unsigned bx = (o->width + 7) / 8, by = (o->height + 7) / 8, rst = 0;
    int pred = 0;
    for (unsigned b = 0; b < bx * by; b++) {
        if (o->restart && b && b % o->restart == 0) {
            flush_bits(&w);
            put16(&w, 0xFFD0 + rst);
            rst = (rst + 1) & 7;
            pred = 0;
        }
        const int *c = coefs + 64 * b;
        int diff = c[0] - pred;
        pred = c[0];
        unsigned s = category(diff);
        put_symbol(&w, o, true, s);
        put_value(&w, diff, s);
        int last = 0;
        for (int k = 1; k < 64; k++)
            if (c[k])
                last = k;
        unsigned run = 0;
        for (int k = 1; k <= last; k++) {
            if (!c[k]) {
                run++;
                continue;
            }
            for (; run > 15; run -= 16)
                put_symbol(&w, o, false, 0xF0);
            s = category(c[k]);
            put_symbol(&w, o, false, run << 4 | s);
            put_value(&w, c[k], s);
            run = 0;
        }
        if (last < 63)
            put_symbol(&w, o, false, 0x00);
    }
    flush_bits(&w);
    put16(&w, 0xFFD9);
    return w.n;
}

static img_info geometry(unsigned w, unsigned h)
{
    img_info info = {.rows = h,
                     .columns = w,
                     .samples_per_pixel = 1,
                     .bits_allocated = 16,
                     .bits_stored = 12,
                     .high_bit = 11,
                     .frames = 1};
    strcpy(info.photometric, "MONOCHROME2");
    info.frame_size = (size_t)w * h * 2;
    return info;
}

static vp_status decode(const uint8_t *s, size_t n, unsigned w, unsigned h, uint16_t *px,
                        vp_error *err)
{
    img_info info = geometry(w, h), oi;
    uint8_t *out = malloc(info.frame_size);
    vp_error_clear(err);
    vp_status st = img_jpeg12_decode(s, n, &info, out, info.frame_size, &oi, err);
    if (!st && px)
        for (size_t i = 0; i < (size_t)w * h; i++)
            px[i] = (uint16_t)(out[2 * i] | out[2 * i + 1] << 8);
    free(out);
    return st;
}

/* A.3.3 IDCT of one block of dequantised coefficients (natural order), level-shifted. */
static void reference_idct(const double *f, double *out)
{
    for (int y = 0; y < 8; y++)
        for (int x = 0; x < 8; x++) {
            double sum = 0;
            for (int v = 0; v < 8; v++)
                for (int u = 0; u < 8; u++) {
                    double cu = u ? 1 : M_SQRT1_2, cv = v ? 1 : M_SQRT1_2;
                    sum += cu * cv * f[v * 8 + u] * cos((2 * x + 1) * u * M_PI / 16) *
                           cos((2 * y + 1) * v * M_PI / 16);
                }
            out[y * 8 + x] = sum / 4 + 2048;
        }
}

/* ---- Tests ------------------------------------------------------------------------------ */

TEST(idct_against_formula)
{
    static uint8_t s[1 << 16];
    srand(7);
    uint16_t q[64];
    for (int i = 0; i < 64; i++)
        q[i] = (uint16_t)(1 + i % 5);
    for (int round = 0; round < 40; round++) {
        int c[64] = {0};
        c[0] = rand() % 2001 - 1000;
        int nz = round % 8 == 0 ? 63 : rand() % 20;
        for (int i = 0; i < nz; i++)
            c[1 + rand() % 63] = rand() % 161 - 80;
        enc_opts o = {
            .width = 8, .height = 8, .q = q, .q16 = round & 1, .long_codes = round % 3 == 0};
        size_t n = encode(s, &o, c);
        uint16_t px[64];
        vp_error err;
        CHECK_OK(decode(s, n, 8, 8, px, &err));
        double f[64], want[64];
        for (int i = 0; i < 64; i++)
            f[ZZ[i]] = (double)c[i] * q[ZZ[i]];
        reference_idct(f, want);
        int worst = 0;
        for (int i = 0; i < 64; i++) {
            double e = want[i] < 0 ? 0 : want[i] > 4095 ? 4095 : want[i];
            int d = abs((int)px[i] - (int)lround(e));
            if (d > worst)
                worst = d;
        }
        if (worst > 1)
            FAIL_AT("round %d: off by %d from the formula", round, worst);
    }
}

TEST(dc_only_exact)
{
    static uint8_t s[4096];
    /* DC 80 with q 1: 80 / 8 = 10 above the level shift everywhere. */
    int c[64] = {80};
    enc_opts o = {.width = 8, .height = 8};
    size_t n = encode(s, &o, c);
    uint16_t px[64];
    vp_error err;
    CHECK_OK(decode(s, n, 8, 8, px, &err));
    for (int i = 0; i < 64; i++)
        CHECK_INT(px[i], 2058);
    /* Out of range both ways: clamped (16-bit quantisers). */
    uint16_t q[64];
    for (int i = 0; i < 64; i++)
        q[i] = 100;
    o.q = q;
    o.q16 = true;
    c[0] = 400; /* 40000 / 8 = 5000 above the level shift */
    n = encode(s, &o, c);
    CHECK_OK(decode(s, n, 8, 8, px, &err));
    CHECK_INT(px[0], 4095);
    c[0] = -400;
    n = encode(s, &o, c);
    CHECK_OK(decode(s, n, 8, 8, px, &err));
    CHECK_INT(px[63], 0);
    /* IJG's range limit looks at the low 14 bits only: 500 x 1000 / 8 = 62500 wraps to -3036,
     * so the block is 0, not 4095. dcmtk gives the same. */
    for (int i = 0; i < 64; i++)
        q[i] = 1000;
    c[0] = 500;
    n = encode(s, &o, c);
    CHECK_OK(decode(s, n, 8, 8, px, &err));
    CHECK_INT(px[0], 0);
}

/* A 21x13 image (3x2 blocks, partial at the edges) with several DC levels. */
static void pattern_blocks(int *c)
{
    memset(c, 0, sizeof(int) * 64 * 6);
    for (int b = 0; b < 6; b++) {
        c[64 * b] = b * 300 - 700;
        c[64 * b + 1 + b] = 40 - 10 * b;
        c[64 * b + 63] = b == 3 ? 5 : 0; /* a ZRL run or three before the last index */
    }
}

TEST(blocks_restarts_and_codes)
{
    static uint8_t s[1 << 16];
    int c[64 * 6];
    pattern_blocks(c);
    uint16_t ref[21 * 13], px[21 * 13];
    vp_error err;
    enc_opts o = {.width = 21, .height = 13};
    CHECK_OK(decode(s, encode(s, &o, c), 21, 13, ref, &err));
    /* The top-left block is DC -700 / 8 around 2048 (its AC term moves samples a little). */
    CHECK(ref[0] > 2048 - 100 && ref[0] < 2048 - 75);
    for (unsigned ri = 1; ri <= 4; ri++) {
        for (int lc = 0; lc < 2; lc++) {
            o = (enc_opts){.width = 21, .height = 13, .restart = ri, .long_codes = lc};
            CHECK_OK(decode(s, encode(s, &o, c), 21, 13, px, &err));
            CHECK(!memcmp(px, ref, sizeof px));
        }
    }
}

TEST(geometry_checks)
{
    static uint8_t s[4096];
    int c[64 * 6];
    pattern_blocks(c);
    enc_opts o = {.width = 21, .height = 13};
    size_t n = encode(s, &o, c);
    vp_error err;
    CHECK_INT(decode(s, n, 20, 13, NULL, &err), VP_EPARSE);
    CHECK_STR(err.msg, "JPEG 12-bit: frame is 21x13 (columns x rows), the data set says 20x13");
    img_info info = geometry(21, 13), oi;
    info.samples_per_pixel = 3;
    info.frame_size *= 3;
    uint8_t *out = malloc(info.frame_size);
    vp_error_clear(&err);
    CHECK_INT(img_jpeg12_decode(s, n, &info, out, info.frame_size, &oi, &err), VP_EPARSE);
    CHECK_STR(err.msg, "JPEG 12-bit: frame has 1 components, Samples per Pixel is 3");
    info = geometry(21, 13);
    info.bits_allocated = 8;
    vp_error_clear(&err);
    CHECK_INT(img_jpeg12_decode(s, n, &info, out, info.frame_size, &oi, &err), VP_EPARSE);
    CHECK_STR(err.msg, "JPEG 12-bit: stream precision 12, the data set says Bits Allocated 8 "
                       "(16 expected)");
    info = geometry(21, 13);
    vp_error_clear(&err);
    CHECK_INT(img_jpeg12_decode(s, n, &info, out, info.frame_size - 1, &oi, &err), VP_EINVAL);
    free(out);
}

/* Offset of the first marker m in s. */
static size_t find_marker(const uint8_t *s, size_t n, uint8_t m)
{
    for (size_t i = 0; i + 1 < n; i++)
        if (s[i] == 0xFF && s[i + 1] == m)
            return i;
    return n;
}

static void expect(const uint8_t *s, size_t n, unsigned w, unsigned h, vp_status want,
                   const char *msg_part, const char *what)
{
    vp_error err;
    vp_status st = decode(s, n, w, h, NULL, &err);
    if (st != want)
        FAIL_AT("%s: %s, expected %s (%s)", what, vp_status_name(st), vp_status_name(want),
                err.msg);
    else if (msg_part && !strstr(err.msg, msg_part))
        FAIL_AT("%s: message \"%s\" lacks \"%s\"", what, err.msg, msg_part);
}

TEST(hostile_headers)
{
    static uint8_t s[1 << 16], t[1 << 16];
    int c[64 * 6];
    pattern_blocks(c);
    enc_opts o = {.width = 21, .height = 13};
    size_t n = encode(s, &o, c);
    size_t sof = find_marker(s, n, 0xC1), sos = find_marker(s, n, 0xDA),
           dht = find_marker(s, n, 0xC4);
#define PATCH(at, val, want, part, what)                                                           \
    do {                                                                                           \
        memcpy(t, s, n);                                                                           \
        t[at] = (uint8_t)(val);                                                                    \
        expect(t, n, 21, 13, want, part, what);                                                    \
    } while (0)
    PATCH(sof + 4, 8, VP_EUNSUPPORTED, "sample precision 8", "precision 8");
    PATCH(sof + 1, 0xC2, VP_EUNSUPPORTED, "SOF2 (FFC2) is not sequential", "progressive");
    PATCH(sof + 1, 0xC9, VP_EUNSUPPORTED, "SOF9", "arithmetic");
    PATCH(sof + 6, 0, VP_EUNSUPPORTED, "number of lines 0", "DNL");
    PATCH(sof + 11, 0x00, VP_EPARSE, "sampling factors 0x0", "sampling 0");
    PATCH(sof + 12, 2, VP_EPARSE, "quantisation table 2, which is not defined", "Tq 2");
    PATCH(sof + 12, 7, VP_EPARSE, "quantisation table 7 (0..3)", "Tq 7");
    PATCH(sos + 6, 0x10, VP_EPARSE, "DC Huffman table 1, which is not defined", "Td 1");
    PATCH(sos + 6, 0x05, VP_EPARSE, "AC Huffman table 5", "Ta 5");
    PATCH(sos + 5, 9, VP_EPARSE, "scan names component 9", "Cs 9");
    PATCH(dht + 4, 0x20, VP_EPARSE, "DHT table class 2", "Tc 2");
    PATCH(dht + 9, 40, VP_EPARSE, "more codes of 5 bits than fit", "DHT overflow");
    PATCH(dht + 21 + 15, 16, VP_EPARSE, "DC Huffman table 0 is invalid", "DC symbol 16");
    PATCH(2 + 4, 0x20, VP_EPARSE, "DQT precision 2", "Pq 2");
    PATCH(sof + 3, 200, VP_EPARSE, "length", "SOF length");
    PATCH(0, 0x00, VP_EPARSE, "does not start with SOI", "SOI");
#undef PATCH
    o.no_dqt = true;
    size_t m = encode(t, &o, c);
    expect(t, m, 21, 13, VP_EPARSE, "quantisation table 0, which is not defined", "no DQT");
    o = (enc_opts){.width = 21, .height = 13, .no_dht = true};
    m = encode(t, &o, c);
    expect(t, m, 21, 13, VP_EPARSE, "DC Huffman table 0, which is not defined", "no DHT");
    /* SOS before SOF; a second SOF; the scan cut off before EOI with no scan at all. */
    memcpy(t, s, sof);
    memcpy(t + sof, s + sos, n - sos);
    expect(t, sof + n - sos, 21, 13, VP_EPARSE, "SOS before SOF", "SOS first");
    memcpy(t, s, sos);
    memcpy(t + sos, s + sof, 13);
    memcpy(t + sos + 13, s + sos, n - sos);
    expect(t, n + 13, 21, 13, VP_EPARSE, "second SOF", "two SOF");
    memcpy(t, s, sos);
    t[sos] = 0xFF, t[sos + 1] = 0xD9;
    expect(t, sos + 2, 21, 13, VP_EPARSE, "component 1 has no scan (EOI reached)", "no scan");

    /* Sampling 4x4 on one of two components: 16 + 1 blocks in an MCU (B.2.3: 10 at most). */
    uint8_t two[1024];
    memcpy(two, s, sof); /* SOI, DQT */
    size_t k = sof;
    memcpy(two + k, s + dht, 309); /* DHT */
    k += 309;
    const uint8_t sof2[] = {0xFF, 0xC1, 0x00, 0x0E, 12,   0x00, 0x08, 0x00,
                            0x08, 2,    1,    0x44, 0x00, 2,    0x11, 0x00};
    memcpy(two + k, sof2, sizeof sof2);
    size_t sofk = k + 11; /* component 1's sampling byte */
    k += sizeof sof2;
    const uint8_t sos2[] = {0xFF, 0xDA, 0x00, 0x0A, 2, 1, 0x00, 2, 0x00, 0, 63, 0, 0xFF, 0xD9};
    memcpy(two + k, sos2, sizeof sos2);
    k += sizeof sos2;
    img_info info = geometry(8, 8), oi;
    info.samples_per_pixel = 2; /* not a DICOM geometry, but the decoder only counts */
    info.frame_size *= 2;
    uint8_t out[256];
    vp_error err;
    vp_error_clear(&err);
    CHECK_INT(img_jpeg12_decode(two, k, &info, out, sizeof out, &oi, &err), VP_EPARSE);
    CHECK_STR(err.msg, "JPEG 12-bit: 17 blocks in an MCU (at most 10, B.2.3)");
    /* Fractional ratio 3:2. */
    two[sofk] = 0x33, two[sofk + 3] = 0x22;
    vp_error_clear(&err);
    CHECK_INT(img_jpeg12_decode(two, k, &info, out, sizeof out, &oi, &err), VP_EUNSUPPORTED);
    CHECK(strstr(err.msg, "fractional") != NULL);
}

TEST(hostile_entropy_data)
{
    static uint8_t s[1 << 16], t[1 << 16];
    int c[64 * 6];
    pattern_blocks(c);
    enc_opts o = {.width = 21, .height = 13, .restart = 2};
    size_t n = encode(s, &o, c);
    vp_error err;

    /* A coefficient past index 63: four "run 15, size 1" symbols from k = 1 reach 65. */
    {
        bw w = {.out = t};
        size_t sos = find_marker(s, n, 0xDA);
        memcpy(t, s, sos + 10);
        w.n = sos + 10;
        enc_opts lo = {.width = 21, .height = 13};
        put_symbol(&w, &lo, true, 0);
        for (int i = 0; i < 4; i++) {
            put_symbol(&w, &lo, false, 0xF1);
            put_bits(&w, 1, 1);
        }
        flush_bits(&w);
        put16(&w, 0xFFD9);
        expect(t, w.n, 21, 13, VP_EPARSE, "AC coefficient index past 63", "k > 63");
    }
    /* Codes not in the table: all-ones 16-bit codes with the long tables. */
    {
        enc_opts lo = {.width = 21, .height = 13, .long_codes = true};
        size_t m = encode(t, &lo, c);
        size_t ent = find_marker(t, m, 0xDA) + 10;
        for (size_t i = 0; i < 8; i++)
            t[ent + 2 * i] = 0xFF, t[ent + 2 * i + 1] = 0x00;
        expect(t, m, 21, 13, VP_EPARSE, "Huffman code not in the table", "bad code");
    }
    /* A wrong restart marker, and none. */
    size_t rst = find_marker(s, n, 0xD0);
    memcpy(t, s, n);
    t[rst + 1] = 0xD3;
    expect(t, n, 21, 13, VP_EPARSE, "FFD3 at offset", "wrong RST");
    memcpy(t, s, rst);
    memcpy(t + rst, s + rst + 2, n - rst - 2);
    expect(t, n - 2, 21, 13, VP_EPARSE, NULL, "missing RST");
    /* Fill bytes before a restart marker and before EOI are fine. */
    memcpy(t, s, rst);
    t[rst] = 0xFF;
    memcpy(t + rst + 1, s + rst, n - rst);
    CHECK_OK(decode(t, n + 1, 21, 13, NULL, &err));

    /* Every truncation fails cleanly; so does any cut of the entropy data. */
    for (size_t len = 0; len + 2 < n; len++) {
        vp_status st = decode(s, len, 21, 13, NULL, &err);
        if (st == VP_OK)
            FAIL_AT("truncated to %zu of %zu bytes: decoded", len, n);
    }
    /* Single-byte changes: anything but a crash (the sanitizers watch). */
    srand(3);
    for (int i = 0; i < 3000; i++) {
        memcpy(t, s, n);
        t[2 + (size_t)rand() % (n - 2)] = (uint8_t)rand();
        decode(t, n, 21, 13, NULL, &err);
    }
}

int main(void)
{
    RUN(idct_against_formula);
    RUN(dc_only_exact);
    RUN(blocks_restarts_and_codes);
    RUN(geometry_checks);
    RUN(hostile_headers);
    RUN(hostile_entropy_data);
    DONE();
}
