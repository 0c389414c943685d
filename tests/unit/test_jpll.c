/* SPDX-License-Identifier: MIT */
/* Unit tests for the JPEG Lossless decoder (src/img/jpll.c; ISO 10918-1 Annex H, PS3.5
 * A.4.1). Streams come from a small encoder written here: every predictor (Table H.1), 2 to
 * 16 bits, point transforms, restart intervals of whole lines, parts of a line and single
 * samples (H.1.2.1), one to four components interleaved or one scan each, Huffman codes
 * longer than the decoder's lookup, SSSS 16 (H.1.2.2). Hostile streams check each error path
 * and its message; every truncation and many single-byte changes of a stream must fail
 * cleanly (ASan builds catch any out-of-bounds access). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "harness.h"
#include "img/img.h"

/* ---- A small lossless JPEG encoder ----------------------------------------------------- */

typedef struct enc_opts {
    unsigned precision;      /* P */
    unsigned predictor;      /* Ss, 1..7 */
    unsigned pt;             /* Al */
    unsigned restart;        /* Ri in MCUs, 0: none */
    bool planes;             /* one scan per component instead of one interleaved scan */
    const uint8_t *lengths;  /* code length per category 0..16, NULL: SHORT */
    const uint8_t *lengths2; /* table 1 for components 1.. (NULL: all use table 0) */
    const uint8_t *extra;    /* bytes inserted after SOI (APPn, COM, fill) */
    size_t extra_len;
} enc_opts;

static const uint8_t SHORT[17] = {2, 3, 3, 3, 4, 5, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
static const uint8_t LONG[17] = {16, 16, 16, 16, 16, 16, 16, 16, 16,
                                 16, 16, 16, 16, 16, 16, 16, 16};

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
        put_bits(w, (1u << (8 - w->bits)) - 1, 8 - w->bits); /* pad with 1-bits */
}

static void put16(bw *w, unsigned v)
{
    put_byte(w, (uint8_t)(v >> 8));
    put_byte(w, (uint8_t)v);
}

/* Canonical codes (Annex C) for lengths per symbol; writes the DHT segment. */
static void huff_table(bw *w, unsigned th, const uint8_t *lengths, uint16_t *code, uint8_t *len)
{
    uint8_t counts[17] = {0}, order[17];
    unsigned n = 0;
    for (unsigned l = 1; l <= 16; l++)
        for (unsigned s = 0; s < 17; s++)
            if (lengths[s] == l)
                order[n++] = (uint8_t)s, counts[l]++;
    put16(w, 0xFFC4);
    put16(w, 2 + 17 + n);
    put_byte(w, (uint8_t)th);
    for (unsigned l = 1; l <= 16; l++)
        put_byte(w, counts[l]);
    for (unsigned i = 0; i < n; i++)
        put_byte(w, order[i]);
    unsigned c = 0, k = 0;
    for (unsigned l = 1; l <= 16; l++) {
        for (unsigned i = 0; i < counts[l]; i++, k++) {
            code[order[k]] = (uint16_t)c++;
            len[order[k]] = (uint8_t)l;
        }
        c <<= 1;
    }
}

/* Prediction of sample i (MCU index) of component c, following H.1.2.1 with restart
 * intervals: the interval's first sample gets 2^(P-Pt-1), the rest of the line it starts in
 * (and the whole first line) Ra, the first sample of other lines Rb. */
static int32_t predict_at(const int32_t *s, unsigned cols, unsigned nc, unsigned c, size_t i,
                          const enc_opts *o)
{
    size_t y = i / cols, x = i % cols;
    size_t start = o->restart ? i / o->restart * o->restart : 0;
#define S(yy, xx) s[((yy)*cols + (xx)) * nc + c]
    if (i == start)
        return 1 << (o->precision - o->pt - 1);
    if (y == start / cols)
        return S(y, x - 1);
    if (x == 0)
        return S(y - 1, 0);
    int32_t ra = S(y, x - 1), rb = S(y - 1, x), rc = S(y - 1, x - 1);
#undef S
    switch (o->predictor) {
    case 1: return ra;
    case 2: return rb;
    case 3: return rc;
    case 4: return ra + rb - rc;
    case 5: return ra + ((rb - rc) >> 1);
    case 6: return rb + ((ra - rc) >> 1);
    default: return (ra + rb) >> 1;
    }
}

/* Encodes rows x cols x nc samples (colour-by-pixel); returns the stream length. */
static size_t encode(const uint16_t *px, unsigned rows, unsigned cols, unsigned nc,
                     const enc_opts *o, uint8_t *out)
{
    size_t total = (size_t)rows * cols;
    int32_t *s = malloc(total * nc * sizeof *s);
    for (size_t i = 0; i < total * nc; i++)
        s[i] = px[i] >> o->pt;
    bw w = {.out = out};
    put16(&w, 0xFFD8);
    for (size_t i = 0; i < o->extra_len; i++)
        put_byte(&w, o->extra[i]);
    uint16_t code[2][17];
    uint8_t len[2][17];
    huff_table(&w, 0, o->lengths ? o->lengths : SHORT, code[0], len[0]);
    if (o->lengths2)
        huff_table(&w, 1, o->lengths2, code[1], len[1]);
    put16(&w, 0xFFC3);
    put16(&w, 8 + 3 * nc);
    put_byte(&w, (uint8_t)o->precision);
    put16(&w, rows);
    put16(&w, cols);
    put_byte(&w, (uint8_t)nc);
    for (unsigned c = 0; c < nc; c++) {
        put_byte(&w, (uint8_t)(c + 1));
        put_byte(&w, 0x11);
        put_byte(&w, 0);
    }
    if (o->restart) {
        put16(&w, 0xFFDD);
        put16(&w, 4);
        put16(&w, o->restart);
    }
    unsigned nscans = o->planes ? nc : 1;
    for (unsigned sc = 0; sc < nscans; sc++) {
        unsigned c0 = o->planes ? sc : 0, c1 = o->planes ? sc + 1 : nc;
        put16(&w, 0xFFDA);
        put16(&w, 6 + 2 * (c1 - c0));
        put_byte(&w, (uint8_t)(c1 - c0));
        for (unsigned c = c0; c < c1; c++) {
            put_byte(&w, (uint8_t)(c + 1));
            put_byte(&w, (uint8_t)((o->lengths2 && c > 0) << 4));
        }
        put_byte(&w, (uint8_t)o->predictor);
        put_byte(&w, 0);
        put_byte(&w, (uint8_t)o->pt);
        unsigned rst = 0;
        for (size_t i = 0; i < total; i++) {
            if (o->restart && i && i % o->restart == 0) {
                flush_bits(&w);
                put16(&w, 0xFFD0 + rst);
                rst = (rst + 1) & 7;
            }
            for (unsigned c = c0; c < c1; c++) {
                unsigned t = o->lengths2 && c > 0;
                uint32_t d = (uint32_t)(s[i * nc + c] - predict_at(s, cols, nc, c, i, o)) & 0xFFFF;
                int32_t v = d == 32768 ? 32768 : d > 32768 ? (int32_t)d - 65536 : (int32_t)d;
                unsigned ssss = 0;
                while (ssss < 16 && (1 << ssss) <= abs(v))
                    ssss++;
                put_bits(&w, code[t][ssss], len[t][ssss]);
                if (ssss && ssss < 16)
                    put_bits(&w, (uint32_t)(v >= 0 ? v : v + (1 << ssss) - 1), (int)ssss);
            }
        }
        flush_bits(&w);
    }
    put16(&w, 0xFFD9);
    free(s);
    return w.n;
}

/* ---- Helpers -------------------------------------------------------------------------- */

/* Smooth pattern plus noise in 0 .. 2^bits - 1, deterministic. */
static void pattern(uint16_t *px, size_t n, unsigned bits, unsigned seed)
{
    uint32_t r = seed * 2654435761u + 1;
    uint32_t max = (1u << bits) - 1;
    for (size_t i = 0; i < n; i++) {
        r = r * 1103515245u + 12345u;
        uint32_t base = (uint32_t)((i * 37u) % (max + 1u));
        uint32_t noise = (r >> 16) % (max / 16 + 2);
        px[i] = (uint16_t)((base + noise) & max);
    }
}

static img_info geometry(unsigned rows, unsigned cols, unsigned nc, unsigned bits_allocated,
                         unsigned bits_stored)
{
    img_info info = {.rows = rows,
                     .columns = cols,
                     .samples_per_pixel = (uint16_t)nc,
                     .bits_allocated = (uint16_t)bits_allocated,
                     .bits_stored = (uint16_t)bits_stored,
                     .high_bit = (uint16_t)(bits_stored - 1),
                     .planar_configuration = nc > 1,
                     .frames = 1};
    snprintf(info.photometric, sizeof info.photometric, "%s", nc == 1 ? "MONOCHROME2" : "RGB");
    info.frame_size = (size_t)rows * cols * nc * (bits_allocated / 8);
    return info;
}

#define MAXS (64 * 64 * 4)
static uint8_t stream[1 << 20];

/* Encodes px with o, decodes it and checks the output is (px >> pt) << pt. */
static void roundtrip(const uint16_t *px, unsigned rows, unsigned cols, unsigned nc,
                      unsigned bits_allocated, const enc_opts *o, const char *what)
{
    size_t n = encode(px, rows, cols, nc, o, stream);
    img_info info = geometry(rows, cols, nc, bits_allocated, o->precision), oi;
    size_t size = info.frame_size;
    uint8_t *out = malloc(size);
    vp_error err;
    vp_error_clear(&err);
    vp_status st = img_jpll_decode(stream, n, &info, out, size, &oi, &err);
    if (st != VP_OK) {
        FAIL_AT("%s: %s %s", what, vp_status_name(st), err.msg);
        free(out);
        return;
    }
    size_t bps = bits_allocated / 8, bad = 0, first = 0;
    for (size_t i = 0; i < (size_t)rows * cols * nc; i++) {
        uint32_t want = (uint32_t)(px[i] >> o->pt) << o->pt;
        uint32_t got = bps == 2 ? vp_le16(out + 2 * i) : out[i];
        if ((want & (bps == 2 ? 0xFFFF : 0xFF)) != got && !bad++)
            first = i;
    }
    if (bad)
        FAIL_AT("%s: %zu samples differ, first %zu: %u != %u", what, bad, first,
                bps == 2 ? vp_le16(out + 2 * first) : out[first],
                (unsigned)(px[first] >> o->pt) << o->pt);
    CHECK_INT(oi.planar_configuration, 0);
    CHECK_STR(oi.photometric, info.photometric);
    CHECK_INT(oi.rows, rows);
    free(out);
}

/* Decodes in with geometry info into a right-sized buffer; err receives the message. */
static vp_status decode(const uint8_t *in, size_t len, img_info info, vp_error *err)
{
    uint8_t *out = malloc(info.frame_size);
    img_info oi;
    vp_error_clear(err);
    vp_status st = img_jpll_decode(in, len, &info, out, info.frame_size, &oi, err);
    free(out);
    return st;
}

#define CHECK_FAIL(in, len, info, want_st, want_msg)                                               \
    do {                                                                                           \
        vp_error e_;                                                                               \
        vp_status s_ = decode(in, len, info, &e_);                                                 \
        CHECK_STR(vp_status_name(s_), vp_status_name(want_st));                                    \
        if (!strstr(e_.msg, want_msg))                                                             \
            FAIL_AT("message \"%s\" lacks \"%s\"", e_.msg, want_msg);                              \
    } while (0)

/* Offset of marker FF m in a stream we wrote (markers are unique outside entropy data for
 * the first occurrence of header markers). */
static size_t find_marker(const uint8_t *s, size_t n, uint8_t m)
{
    for (size_t i = 0; i + 1 < n; i++)
        if (s[i] == 0xFF && s[i + 1] == m)
            return i;
    return n;
}

/* ---- Tests ---------------------------------------------------------------------------- */

TEST(every_predictor_and_precision)
{
    static uint16_t px[MAXS];
    static const unsigned bits[] = {2, 8, 12, 16};
    for (unsigned b = 0; b < 4; b++) {
        pattern(px, 13 * 11, bits[b], b);
        for (unsigned k = 1; k <= 7; k++) {
            enc_opts o = {.precision = bits[b], .predictor = k};
            char what[64];
            snprintf(what, sizeof what, "P=%u predictor %u", bits[b], k);
            roundtrip(px, 13, 11, 1, bits[b] <= 8 ? 8 : 16, &o, what);
            if (bits[b] <= 8) /* 8-bit data held in 16 bits */
                roundtrip(px, 13, 11, 1, 16, &o, what);
        }
    }
}

TEST(point_transform)
{
    static uint16_t px[MAXS];
    pattern(px, 20 * 9, 12, 3);
    for (unsigned pt = 1; pt <= 4; pt++)
        for (unsigned k = 1; k <= 7; k += 3) {
            enc_opts o = {.precision = 12, .predictor = k, .pt = pt};
            roundtrip(px, 20, 9, 1, 16, &o, "12-bit point transform");
        }
    pattern(px, 20 * 9, 8, 4);
    enc_opts o8 = {.precision = 8, .predictor = 6, .pt = 2};
    roundtrip(px, 20, 9, 1, 8, &o8, "8-bit point transform");
    enc_opts o7 = {.precision = 8, .predictor = 1, .pt = 7}; /* 1-bit samples, init 1 */
    roundtrip(px, 20, 9, 1, 8, &o7, "point transform P-1");
}

TEST(restart_intervals)
{
    static uint16_t px[MAXS];
    pattern(px, 17 * 19 * 3, 16, 5);
    /* whole lines, several lines, part of a line, single samples, longer than the image */
    static const unsigned ri[] = {19, 38, 57, 5, 1, 7, 400};
    for (unsigned i = 0; i < sizeof ri / sizeof ri[0]; i++)
        for (unsigned k = 1; k <= 7; k += 2) {
            char what[64];
            snprintf(what, sizeof what, "restart %u predictor %u", ri[i], k);
            enc_opts o = {.precision = 16, .predictor = k, .restart = ri[i]};
            roundtrip(px, 17, 19, 1, 16, &o, what);
            enc_opts o3 = {.precision = 16, .predictor = k, .restart = ri[i]};
            roundtrip(px, 17, 19, 3, 16, &o3, what);
            o3.planes = true;
            roundtrip(px, 17, 19, 3, 16, &o3, what);
        }
    /* more than 8 restarts: RST0..RST7 wrap */
    enc_opts o = {.precision = 16, .predictor = 4, .restart = 3};
    roundtrip(px, 17, 19, 1, 16, &o, "RSTn wraps");
}

TEST(components)
{
    static uint16_t px[MAXS];
    pattern(px, 15 * 14 * 4, 8, 6);
    for (unsigned nc = 1; nc <= 4; nc++)
        for (unsigned k = 1; k <= 7; k++) {
            enc_opts o = {.precision = 8, .predictor = k};
            roundtrip(px, 15, 14, nc, 8, &o, "interleaved");
            o.planes = true;
            roundtrip(px, 15, 14, nc, 8, &o, "one scan per component");
            o.lengths2 = LONG;
            roundtrip(px, 15, 14, nc, 8, &o, "two tables");
            o.planes = false;
            roundtrip(px, 15, 14, nc, 8, &o, "two tables interleaved");
        }
}

TEST(long_codes_and_extremes)
{
    static uint16_t px[MAXS];
    pattern(px, 9 * 31, 16, 7);
    enc_opts o = {.precision = 16, .predictor = 1, .lengths = LONG};
    roundtrip(px, 9, 31, 1, 16, &o, "16-bit codes");
    /* Differences of +-32767 and 32768 (SSSS 15 and 16, H.1.2.2), modulo 2^16 wrap */
    for (size_t i = 0; i < 9 * 31; i++)
        px[i] = (uint16_t)((i % 3 == 0) ? 0 : (i % 3 == 1) ? 32768 : 65535);
    for (unsigned k = 1; k <= 7; k++) {
        enc_opts e = {.precision = 16, .predictor = k};
        roundtrip(px, 9, 31, 1, 16, &e, "extreme differences");
        e.lengths = LONG;
        roundtrip(px, 9, 31, 1, 16, &e, "extreme differences, long codes");
    }
    /* Tiny images */
    enc_opts t = {.precision = 16, .predictor = 7, .restart = 1};
    roundtrip(px, 1, 1, 1, 16, &t, "1x1");
    roundtrip(px, 1, 31, 1, 16, &t, "1xN");
    roundtrip(px, 9, 1, 1, 16, &t, "Nx1");
    roundtrip(px, 9, 1, 3, 16, &t, "Nx1 RGB");
}

TEST(extra_segments)
{
    static uint16_t px[MAXS];
    pattern(px, 8 * 8, 8, 8);
    static const uint8_t extra[] = {0xFF, 0xE0, 0x00, 0x06, 'J', 'F', 'I', 'F', /* APP0 */
                                    0xFF, 0xFF, 0xFF,                           /* fill */
                                    0xFE, 0x00, 0x03, 'x',                      /* COM */
                                    0xFF, 0xDB, 0x00, 0x02,                     /* empty DQT */
                                    0xFF, 0x01};                                /* TEM */
    enc_opts o = {.precision = 8, .predictor = 2, .extra = extra, .extra_len = sizeof extra};
    roundtrip(px, 8, 8, 1, 8, &o, "APP0, fill, COM, DQT, TEM");
    /* No EOI, trailing padding after EOI: both fine */
    enc_opts p = {.precision = 8, .predictor = 2};
    size_t n = encode(px, 8, 8, 1, &p, stream);
    vp_error err;
    CHECK_OK(decode(stream, n - 2, geometry(8, 8, 1, 8, 8), &err));
    stream[n] = 0;
    CHECK_OK(decode(stream, n + 1, geometry(8, 8, 1, 8, 8), &err));
    /* P below bits stored and above it, within bits allocated */
    CHECK_OK(decode(stream, n, geometry(8, 8, 1, 16, 12), &err));
    img_info g = geometry(8, 8, 1, 16, 6);
    CHECK_OK(decode(stream, n, g, &err));
}

TEST(geometry_mismatch)
{
    static uint16_t px[MAXS];
    pattern(px, 6 * 5 * 3, 12, 9);
    enc_opts o = {.precision = 12, .predictor = 1};
    size_t n = encode(px, 6, 5, 3, &o, stream);
    CHECK_FAIL(stream, n, geometry(6, 4, 3, 16, 12), VP_EPARSE, "SOF3 has 5 columns, data set 4");
    CHECK_FAIL(stream, n, geometry(7, 5, 3, 16, 12), VP_EPARSE, "SOF3 has 6 rows, data set 7");
    CHECK_FAIL(stream, n, geometry(6, 5, 1, 16, 12), VP_EPARSE,
               "SOF3 has 3 components, data set 1 samples per pixel");
    CHECK_FAIL(stream, n, geometry(6, 5, 3, 8, 8), VP_EPARSE,
               "SOF3 precision 12 exceeds bits allocated 8");
    CHECK_FAIL(stream, n, geometry(6, 5, 3, 32, 32), VP_EUNSUPPORTED, "bits allocated 32");
    vp_error err;
    img_info g = geometry(6, 5, 3, 16, 12);
    uint8_t out[6 * 5 * 3 * 2];
    CHECK_INT(img_jpll_decode(stream, n, &g, out, sizeof out - 1, NULL, &err), VP_EINVAL);
    CHECK_OK(img_jpll_decode(stream, n, &g, out, sizeof out, NULL, &err));
}

TEST(hostile_headers)
{
    static uint16_t px[MAXS];
    pattern(px, 6 * 5, 16, 10);
    enc_opts o = {.precision = 16, .predictor = 1};
    size_t n = encode(px, 6, 5, 1, &o, stream);
    img_info g = geometry(6, 5, 1, 16, 16);
    size_t sof = find_marker(stream, n, 0xC3), sos = find_marker(stream, n, 0xDA),
           dht = find_marker(stream, n, 0xC4);
    static uint8_t s[1 << 16];
#define MUT(at, val) (memcpy(s, stream, n), s[at] = (uint8_t)(val), s)
    CHECK_FAIL(stream + 1, n - 1, g, VP_EPARSE, "does not start with SOI");
    CHECK_FAIL(MUT(sof + 4, 1), n, g, VP_EPARSE, "sample precision 1 (2..16)");
    CHECK_FAIL(MUT(sof + 4, 17), n, g, VP_EPARSE, "sample precision 17");
    memcpy(s, stream, n);
    s[sof + 5] = s[sof + 6] = 0;
    CHECK_FAIL(s, n, g, VP_EUNSUPPORTED, "number of lines 0 (defined by a DNL marker)");
    memcpy(s, stream, n);
    s[sof + 7] = s[sof + 8] = 0;
    CHECK_FAIL(s, n, g, VP_EPARSE, "number of samples per line 0");
    CHECK_FAIL(MUT(sof + 3, 12), n, g, VP_EPARSE, "SOF3 length 12, expected 11 for 1 components");
    CHECK_FAIL(MUT(sof + 11, 0x01), n, g, VP_EPARSE, "sampling factors 0x1");
    CHECK_FAIL(MUT(sof + 1, 0xC1), n, g, VP_EUNSUPPORTED, "SOF1 (FFC1) is not lossless");
    CHECK_FAIL(MUT(sof + 1, 0xCB), n, g, VP_EUNSUPPORTED, "SOF11 (FFCB)");
    CHECK_FAIL(MUT(sof + 1, 0xDE), n, g, VP_EUNSUPPORTED, "hierarchical mode (FFDE)");
    CHECK_FAIL(MUT(sof + 1, 0xCC), n, g, VP_EUNSUPPORTED, "arithmetic coding");
    CHECK_FAIL(MUT(sof + 1, 0xDD), n, g, VP_EPARSE, "DRI length 11, expected 4");
    CHECK_FAIL(MUT(sof + 2, 0xFF), n, g, VP_EPARSE, "marker FFC3 at offset");
    CHECK_FAIL(MUT(sof, 0x12), n, g, VP_EPARSE, "expected a marker at offset");
    CHECK_FAIL(MUT(sof + 1, 0x00), n, g, VP_EPARSE, "unexpected FF00");
    CHECK_FAIL(stream, sof + 3, g, VP_EPARSE, "has no length");
    CHECK_FAIL(stream, sof + 8, g, VP_EPARSE, "length 11, 6 bytes left");
    /* DHT */
    CHECK_FAIL(MUT(dht + 4, 0x20), n, g, VP_EPARSE, "DHT table class 2");
    CHECK_FAIL(MUT(dht + 4, 0x04), n, g, VP_EPARSE, "destination 4");
    CHECK_FAIL(MUT(dht + 5, 3), n, g, VP_EPARSE, "passes its segment");
    memcpy(s, stream, n);
    for (unsigned i = 0; i < 16; i++)
        s[dht + 5 + i] = 17; /* 272 symbols */
    CHECK_FAIL(s, n, g, VP_EPARSE, "DHT table has 272 symbols (256 at most)");
    memcpy(s, stream, n);
    s[dht + 6] += 1; /* one more 2-bit code, one fewer 15-bit code */
    s[dht + 19] -= 1;
    CHECK_FAIL(s, n, g, VP_EPARSE, "has more codes of 6 bits than fit");
    CHECK_FAIL(MUT(dht + 21, 17), n, g, VP_EPARSE, "symbol 17 is not a difference category");
    CHECK_FAIL(MUT(dht + 3, 10), n, g, VP_EPARSE, "needs 17 bytes, 8 left");
    /* SOS */
    CHECK_FAIL(MUT(sos + 7, 0), n, g, VP_EUNSUPPORTED, "predictor 0 (hierarchical mode only)");
    CHECK_FAIL(MUT(sos + 7, 8), n, g, VP_EPARSE, "predictor 8 (1..7)");
    CHECK_FAIL(MUT(sos + 8, 1), n, g, VP_EPARSE, "scan Se 1 Ah 0, must be 0");
    CHECK_FAIL(MUT(sos + 9, 0x10), n, g, VP_EPARSE, "scan Se 0 Ah 1");
    CHECK_FAIL(MUT(sos + 5, 9), n, g, VP_EPARSE, "scan names component 9, not in the frame");
    CHECK_FAIL(MUT(sos + 6, 0x10), n, g, VP_EPARSE, "Huffman table 1, which is not defined");
    CHECK_FAIL(MUT(sos + 4, 2), n, g, VP_EPARSE, "SOS length 8 for 2 components");
    CHECK_FAIL(MUT(sos + 3, 9), n, g, VP_EPARSE, "SOS length 9");
    /* point transform >= P */
    enc_opts p8 = {.precision = 8, .predictor = 1};
    size_t n8 = encode(px, 6, 5, 1, &p8, s);
    size_t sos8 = find_marker(s, n8, 0xDA);
    s[sos8 + 9] = 8;
    CHECK_FAIL(s, n8, geometry(6, 5, 1, 8, 8), VP_EPARSE, "point transform 8 for precision 8");
    /* SOS before SOF: drop the SOF segment */
    memcpy(s, stream, sof);
    memcpy(s + sof, stream + sof + 13, n - sof - 13);
    CHECK_FAIL(s, n - 13, g, VP_EPARSE, "SOS before SOF");
    /* EOI straight after SOI */
    static const uint8_t empty[] = {0xFF, 0xD8, 0xFF, 0xD9};
    CHECK_FAIL(empty, sizeof empty, g, VP_EPARSE, "no SOF3 frame header before EOI");
    CHECK_FAIL(empty, 2, g, VP_EPARSE, "no SOF3 frame header before the end");
    /* a second SOF */
    memcpy(s, stream, sos);
    memcpy(s + sos, stream + sof, 13);
    memcpy(s + sos + 13, stream + sos, n - sos);
    CHECK_FAIL(s, n + 13, g, VP_EPARSE, "second SOF marker");
    /* no scan: EOI where SOS was */
    memcpy(s, stream, sos);
    s[sos] = 0xFF, s[sos + 1] = 0xD9;
    CHECK_FAIL(s, sos + 2, g, VP_EPARSE, "component 1 has no scan (EOI reached)");
#undef MUT
}

TEST(hostile_components)
{
    static uint16_t px[MAXS];
    static uint8_t s[1 << 16];
    pattern(px, 6 * 5 * 3, 8, 11);
    enc_opts o = {.precision = 8, .predictor = 1, .planes = true};
    size_t n = encode(px, 6, 5, 3, &o, stream);
    img_info g = geometry(6, 5, 3, 8, 8);
    size_t sof = find_marker(stream, n, 0xC3);
    memcpy(s, stream, n);
    s[sof + 14] = 0x22; /* component 2 sampled 2x2, others 1x1 */
    CHECK_FAIL(s, n, g, VP_EUNSUPPORTED, "subsampled components (1x1 and 2x2)");
    memcpy(s, stream, n);
    s[sof + 13] = 1; /* component 2 has the id of component 1 */
    CHECK_FAIL(s, n, g, VP_EPARSE, "component id 1 twice");
    memcpy(s, stream, n);
    s[sof + 11] = s[sof + 14] = s[sof + 17] = 0x22; /* all 2x2: fine in separate scans */
    vp_error err;
    CHECK_OK(decode(s, n, g, &err));
    /* ... but not interleaved */
    enc_opts oi = {.precision = 8, .predictor = 1};
    size_t ni = encode(px, 6, 5, 3, &oi, s);
    s[sof + 11] = s[sof + 14] = s[sof + 17] = 0x22;
    CHECK_FAIL(s, ni, g, VP_EUNSUPPORTED, "interleaved scan with sampling factors 2x2");
    /* one component in two scans: replace scan 2's component id with 1 */
    memcpy(s, stream, n);
    size_t sos1 = find_marker(s, n, 0xDA);
    size_t sos2 = sos1 + 2 + find_marker(s + sos1 + 2, n - sos1 - 2, 0xDA);
    s[sos2 + 5] = 1;
    CHECK_FAIL(s, n, g, VP_EPARSE, "component 1 is in two scans");
    /* data ends after the first scan */
    CHECK_FAIL(stream, sos2, g, VP_EPARSE, "component 2 has no scan (data ends)");
}

TEST(hostile_entropy_data)
{
    static uint16_t px[MAXS];
    static uint8_t s[1 << 16];
    pattern(px, 12 * 10, 16, 12);
    img_info g = geometry(12, 10, 1, 16, 16);
    vp_error err;
    /* every truncation before EOI fails, never reads past the end (ASan) */
    enc_opts o = {.precision = 16, .predictor = 4, .restart = 7};
    size_t n = encode(px, 12, 10, 1, &o, stream);
    for (size_t cut = 0; cut + 2 < n; cut++) {
        uint8_t *c = malloc(cut ? cut : 1); /* exactly cut bytes, so ASan sees the end */
        memcpy(c, stream, cut);
        if (decode(c, cut, g, &err) == VP_OK)
            FAIL_AT("prefix of %zu of %zu bytes decoded", cut, n);
        free(c);
    }
    enc_opts o1 = {.precision = 16, .predictor = 1};
    n = encode(px, 12, 10, 1, &o1, stream);
    size_t sos = find_marker(stream, n, 0xDA);
    CHECK_FAIL(stream, n - 40, g, VP_EPARSE, "entropy-coded data ends early (line");
    /* a marker in the middle of the data ends it early too */
    memcpy(s, stream, n);
    s[sos + 30] = 0xFF, s[sos + 31] = 0xD9;
    CHECK_FAIL(s, n, g, VP_EPARSE, "entropy-coded data ends early");
    /* codes not in the table: all codes are 16 bits, 0x0000..0x0010 */
    enc_opts ol = {.precision = 16, .predictor = 1, .lengths = LONG};
    n = encode(px, 12, 10, 1, &ol, stream);
    sos = find_marker(stream, n, 0xDA);
    memcpy(s, stream, n);
    memset(s + sos + 10, 0x7F, 8);
    CHECK_FAIL(s, n, g, VP_EPARSE, "Huffman code not in the table (line 0)");
    /* restart markers: wrong number, missing */
    enc_opts orst = {.precision = 16, .predictor = 1, .restart = 10};
    n = encode(px, 12, 10, 1, &orst, stream);
    size_t rst1 = find_marker(stream, n, 0xD1);
    memcpy(s, stream, n);
    s[rst1 + 1] = 0xD2;
    CHECK_FAIL(s, n, g, VP_EPARSE, "marker FFD2 at offset");
    CHECK_FAIL(s, n, g, VP_EPARSE, "where RST1 was expected");
    memcpy(s, stream, n);
    s[rst1 + 1] = 0xD9; /* EOI in place of RST1 */
    CHECK_FAIL(s, n, g, VP_EPARSE, "marker FFD9");
    size_t rst0 = find_marker(stream, n, 0xD0);
    CHECK_FAIL(stream, rst0, g, VP_EPARSE, "data ends where marker RST0 was expected");
    /* bytes changed one at a time: an error or some image, never a crash */
    enc_opts om = {.precision = 12, .predictor = 6, .restart = 13, .lengths2 = LONG};
    n = encode(px, 12, 10, 1, &om, stream);
    img_info g12 = geometry(12, 10, 1, 16, 12);
    static const uint8_t vals[] = {0x00, 0x01, 0x7F, 0x80, 0xD0, 0xD9, 0xFE, 0xFF};
    for (size_t i = 2; i < n; i++)
        for (unsigned v = 0; v < sizeof vals; v++) {
            uint8_t *c = malloc(n);
            memcpy(c, stream, n);
            c[i] = vals[v];
            decode(c, n, g12, &err);
            free(c);
        }
}

TEST(lengths_of_tables)
{
    /* A table of one code; a class 1 (AC, unused) table of 256 symbols is skipped */
    static uint16_t px[MAXS];
    memset(px, 0, sizeof px);
    static const uint8_t lens[17] = {1}; /* only SSSS 0: a constant image at 2^(P-1) */
    enc_opts o = {.precision = 8, .predictor = 1, .lengths = lens};
    for (size_t i = 0; i < 30; i++)
        px[i] = 128;
    roundtrip(px, 6, 5, 1, 8, &o, "one code");
    static uint8_t ac[2 + 2 + 1 + 16 + 256];
    ac[0] = 0xFF, ac[1] = 0xC4, ac[2] = (uint8_t)((sizeof ac - 2) >> 8),
    ac[3] = (uint8_t)(sizeof ac - 2), ac[4] = 0x10;
    for (unsigned i = 0; i < 16; i++)
        ac[5 + i] = 16;
    enc_opts oa = {.precision = 8, .predictor = 1, .extra = ac, .extra_len = sizeof ac};
    roundtrip(px, 6, 5, 1, 8, &oa, "AC table of 256 symbols");
}

int main(void)
{
    RUN(every_predictor_and_precision);
    RUN(point_transform);
    RUN(restart_intervals);
    RUN(components);
    RUN(long_codes_and_extremes);
    RUN(extra_segments);
    RUN(geometry_mismatch);
    RUN(hostile_headers);
    RUN(hostile_components);
    RUN(hostile_entropy_data);
    RUN(lengths_of_tables);
    DONE();
}
