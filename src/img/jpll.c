/* SPDX-License-Identifier: MIT */
/*
 * JPEG Lossless decoder: ISO/IEC 10918-1 (ITU-T T.81) lossless, non-hierarchical, Huffman
 * coded (SOF3, processes 14 and 14 SV1), the DICOM transfer syntaxes 1.2.840.10008.1.2.4.57
 * and .70 (PS3.5 8.2.1, A.4.1). libjpeg-turbo as packaged cannot decode it, so it is ours.
 *
 * Markers (Annex B): SOI, SOF3 (B.2.2), DHT (B.2.4.2), DRI (B.2.4.4), SOS (B.2.3), RSTn,
 * APPn / COM / DQT skipped, EOI. Huffman tables are built as in Annex C and decoded as in
 * F.2.2.3, with a first-level lookup table that also resolves the difference's extra bits
 * when they fit. Prediction and differences follow Annex H: H.1.2.1 (Table H.1 predictors,
 * Ra on the first line of a scan or restart interval, Rb at the start of other lines,
 * 2^(P-Pt-1) for the first sample), H.1.2.2 (Table H.2 categories, SSSS 16 is 32768 with no
 * extra bits, arithmetic modulo 2^16). The output is sample << Pt.
 *
 * Reconstructed samples are written straight into the caller's buffer and the previous line
 * is read back from it, so nothing is allocated beyond a fixed-size decoder state. Every
 * read of the stream is bounds-checked; entropy-coded data that ends early, codes not in
 * the table and out-of-place markers give VP_EPARSE.
 */
#include <stdbool.h>
#include <string.h>

#include "img/img.h"

/* Bits resolved by one lookup; codes (plus extra bits) longer than this take the slow path. */
#define FAST_BITS 11
#define MAX_COMPONENTS 4

#if defined(__GNUC__)
#define ALWAYS_INLINE inline __attribute__((always_inline))
#define NOINLINE __attribute__((noinline))
#define LIKELY(x) __builtin_expect(!!(x), 1)
#else
#define ALWAYS_INLINE inline
#define NOINLINE
#define LIKELY(x) (x)
#endif

/*
 * One Huffman table (Tc 0, Th 0..3) in decoding form. fast[] is indexed by the next
 * FAST_BITS bits of the stream; an entry is 0 when the code is longer (slow path), else
 * bits 0-4 are the bits it consumes and bit 5 says whether bits 8+ hold the finished
 * difference (clear: code and extra bits both fit) or only the category SSSS (set: the extra
 * bits are read after). maxcode / valoff are F.2.2.3's MAXCODE and VALPTR - MINCODE.
 */
typedef struct htab {
    int32_t fast[1 << FAST_BITS];
    int32_t maxcode[17]; /* largest code of each length, -1 when none */
    int32_t valoff[17];  /* index in vals of code c of length l: valoff[l] + c */
    uint8_t counts[17];  /* BITS: number of codes of each length 1..16 */
    uint8_t vals[256];   /* HUFFVAL */
    unsigned nvals;      /* symbols in vals */
    bool defined;        /* a DHT set this table */
    bool built;          /* fast / maxcode / valoff are up to date */
} htab;

/* A frame component (B.2.2). */
typedef struct component {
    uint8_t id;   /* Ci */
    uint8_t h, v; /* sampling factors */
    bool done;    /* decoded by a scan already */
} component;

/*
 * The bit reader. acc holds nbits valid bits, most significant first; the bits below are
 * zero. At a marker or the end of the data it stops reading and feeds zeros, counting them
 * in pad; consuming any of them means the entropy-coded segment ended early.
 */
typedef struct bitreader {
    uint64_t acc;
    int nbits;
    int pad;            /* zero bits fed past the data (the lowest pad bits of acc) */
    const uint8_t *p;   /* next byte to load */
    const uint8_t *end; /* end of the whole stream */
    bool stopped;       /* reached a marker or the end: only zeros from now */
    bool overrun;       /* consumed bits past the data */
    bool bad_code;      /* met a code that is not in the table */
} bitreader;

typedef struct decoder {
    const uint8_t *in, *end; /* the stream */
    const img_info *info;
    uint8_t *out;
    unsigned bps; /* bytes per output sample: 1 or 2 */
    bool have_sof;
    unsigned precision; /* P */
    unsigned nf;        /* Nf */
    component comp[MAX_COMPONENTS];
    uint32_t restart_interval; /* Ri in MCUs, 0: none */
    htab tab[4];
    vp_error *err;
} decoder;

/* The scan being decoded (B.2.3). */
typedef struct scan {
    unsigned ns;                 /* Ns */
    unsigned ci[MAX_COMPONENTS]; /* frame index of each scan component */
    const htab *tab[MAX_COMPONENTS];
    unsigned predictor; /* Ss: 1..7 */
    unsigned pt;        /* Al: point transform */
} scan;

static size_t offset_of(const decoder *d, const uint8_t *p)
{
    return (size_t)(p - d->in);
}

/* ---- Huffman tables (B.2.4.2, Annex C, F.2.2.3) -------------------------------------- */

/* EXTEND (F.2.2.1): v holds s bits; values below 2^(s-1) are negative. */
static ALWAYS_INLINE int32_t extend(uint32_t v, unsigned s)
{
    return v < (1u << (s - 1)) ? (int32_t)v - (int32_t)(1u << s) + 1 : (int32_t)v;
}

/* Annex C code assignment; the lookup table is built when a scan first uses the table, so
 * a stream of many redefinitions costs nothing but its parsing. Returns false when the
 * lengths overflow the code space (C.2 would assign a code longer than its length). */
static bool htab_build(htab *t)
{
    uint32_t code = 0;
    unsigned k = 0;
    memset(t->fast, 0, sizeof t->fast);
    for (unsigned len = 1; len <= 16; len++) {
        t->valoff[len] = (int32_t)k - (int32_t)code;
        t->maxcode[len] = t->counts[len] ? (int32_t)(code + t->counts[len] - 1) : -1;
        for (unsigned i = 0; i < t->counts[len]; i++, k++, code++) {
            if (code >= (1u << len))
                return false;
            if (len > FAST_BITS)
                continue;
            unsigned s = t->vals[k], rest = FAST_BITS - len;
            uint32_t first = code << rest;
            for (uint32_t j = 0; j < (1u << rest); j++) {
                int32_t e;
                if (s == 0 || s == 16)
                    e = (s ? 32768 : 0) * 256 + (int32_t)len;
                else if (len + s <= FAST_BITS)
                    e = extend((j >> (rest - s)) & ((1u << s) - 1), s) * 256 + (int32_t)(len + s);
                else
                    e = (int32_t)(s << 8 | 0x20 | len);
                t->fast[first + j] = e;
            }
        }
        code <<= 1;
    }
    t->built = true;
    return true;
}

/* B.2.4.2: one DHT segment, possibly several tables. Tc 1 (AC) tables are checked but not
 * used: lossless scans only name Td. */
static vp_status parse_dht(decoder *d, const uint8_t *p, size_t n)
{
    while (n > 0) {
        if (n < 17)
            return vp_error_set(d->err, VP_EPARSE,
                                "JPEG lossless: DHT table at offset %zu needs 17 bytes, %zu left",
                                offset_of(d, p), n);
        unsigned tc = p[0] >> 4, th = p[0] & 15, total = 0;
        if (tc > 1 || th > 3)
            return vp_error_set(d->err, VP_EPARSE,
                                "JPEG lossless: DHT table class %u destination %u (0..1, 0..3)", tc,
                                th);
        for (unsigned i = 1; i <= 16; i++)
            total += p[i];
        if (total > 256)
            return vp_error_set(d->err, VP_EPARSE,
                                "JPEG lossless: DHT table has %u symbols (256 at most)", total);
        if (total > n - 17)
            return vp_error_set(d->err, VP_EPARSE,
                                "JPEG lossless: DHT table of %u symbols passes its segment (%zu "
                                "bytes left)",
                                total, n - 17);
        if (tc == 0) {
            htab *t = &d->tab[th];
            t->counts[0] = 0;
            memcpy(t->counts + 1, p + 1, 16);
            memcpy(t->vals, p + 17, total);
            for (unsigned i = 0; i < total; i++)
                if (t->vals[i] > 16)
                    return vp_error_set(d->err, VP_EPARSE,
                                        "JPEG lossless: DHT table %u symbol %u is not a "
                                        "difference category (0..16)",
                                        th, t->vals[i]);
            t->nvals = total;
            t->defined = true;
            t->built = false;
            /* Check the lengths now so the error points at the DHT. */
            uint32_t code = 0;
            for (unsigned len = 1; len <= 16; len++) {
                code += t->counts[len];
                if (code > (1u << len))
                    return vp_error_set(d->err, VP_EPARSE,
                                        "JPEG lossless: DHT table %u has more codes of %u bits "
                                        "than fit (%u)",
                                        th, len, code);
                code <<= 1;
            }
        }
        p += 17 + total;
        n -= 17 + total;
    }
    return VP_OK;
}

/* ---- Bit reader ---------------------------------------------------------------------- */

static void br_init(bitreader *b, const uint8_t *p, const uint8_t *end)
{
    memset(b, 0, sizeof *b);
    b->p = p;
    b->end = end;
}

/* Byte at a time, undoing FF00 stuffing (F.1.2.3) and stopping at a marker. */
static NOINLINE void br_refill_slow(bitreader *b)
{
    while (b->nbits <= 56) {
        if (b->stopped) {
            /* Feed zeros; remember how many so overruns are seen. */
            int real = b->nbits - b->pad;
            if (real < 0) {
                b->overrun = true;
                real = 0;
            }
            b->pad = 64 - real;
            b->nbits = 64;
            return;
        }
        if (b->p >= b->end) {
            b->stopped = true;
            continue;
        }
        uint8_t c = *b->p;
        if (c == 0xFF) {
            if (b->end - b->p >= 2 && b->p[1] == 0x00) {
                b->p += 2;
            } else {
                b->stopped = true; /* a marker (or fill bytes before one): the segment ends */
                continue;
            }
        } else {
            b->p++;
        }
        b->acc |= (uint64_t)c << (56 - b->nbits);
        b->nbits += 8;
    }
}

/*
 * The hot loops keep the accumulator in a local window so that it stays in registers; only
 * the slow paths (noinline) see the reader, synchronised around the call.
 */
typedef struct bitwin {
    uint64_t acc;
    int nbits;
} bitwin;

static ALWAYS_INLINE bitwin win_get(const bitreader *b)
{
    return (bitwin){b->acc, b->nbits};
}

static ALWAYS_INLINE void win_put(bitreader *b, bitwin w)
{
    b->acc = w.acc;
    b->nbits = w.nbits;
}

/* Makes at least 32 bits available: eight bytes at once when none of them is FF. */
static ALWAYS_INLINE void win_refill(bitreader *b, bitwin *w)
{
    if (LIKELY(b->end - b->p >= 8)) {
        const uint8_t *q = b->p;
        uint64_t x = (uint64_t)q[0] << 56 | (uint64_t)q[1] << 48 | (uint64_t)q[2] << 40 |
                     (uint64_t)q[3] << 32 | (uint64_t)q[4] << 24 | (uint64_t)q[5] << 16 |
                     (uint64_t)q[6] << 8 | (uint64_t)q[7];
        uint64_t v = ~x; /* a zero byte in v is an FF byte in x */
        if (LIKELY(!((v - 0x0101010101010101ull) & ~v & 0x8080808080808080ull))) {
            int nb = (64 - w->nbits) >> 3;
            w->acc |= (x >> (64 - 8 * nb)) << (64 - w->nbits - 8 * nb);
            w->nbits += 8 * nb;
            b->p += nb;
            return;
        }
    }
    win_put(b, *w);
    br_refill_slow(b);
    *w = win_get(b);
}

/* Codes longer than FAST_BITS (F.2.2.3 DECODE from there on). */
static NOINLINE int32_t diff_slow(bitreader *b, const htab *t)
{
    unsigned len, s;
    uint32_t bits16 = (uint32_t)(b->acc >> 48);
    int32_t code = 0;
    for (len = FAST_BITS + 1; len <= 16; len++) {
        code = (int32_t)(bits16 >> (16 - len));
        if (code <= t->maxcode[len])
            break;
    }
    int32_t k = len <= 16 ? t->valoff[len] + code : -1;
    if (k < 0 || k >= (int32_t)t->nvals) {
        b->bad_code = true;
        return 0;
    }
    s = t->vals[k];
    b->acc <<= len;
    b->nbits -= (int)len;
    if (s == 0)
        return 0;
    if (s == 16) /* H.1.2.2: 32768, no extra bits */
        return 32768;
    uint32_t v = (uint32_t)(b->acc >> (64 - s));
    b->acc <<= s;
    b->nbits -= (int)s;
    return extend(v, s);
}

/* The next difference (H.1.2.2, Table H.2). */
static ALWAYS_INLINE int32_t decode_diff(bitreader *b, bitwin *w, const htab *t)
{
    if (w->nbits < 32)
        win_refill(b, w);
    int32_t e = t->fast[w->acc >> (64 - FAST_BITS)];
    int n = e & 31;
    if (LIKELY((e & 0x20) == 0 && e != 0)) {
        w->acc <<= n;
        w->nbits -= n;
        return e >> 8; /* arithmetic shift: the difference's sign */
    }
    if (LIKELY(e != 0)) {
        /* Code known, extra bits (1..15 of them) read here: common with 12-16 bit data. */
        unsigned s = (unsigned)e >> 8;
        uint64_t acc = w->acc << n;
        uint32_t v = (uint32_t)(acc >> (64 - s));
        w->acc = acc << s;
        w->nbits -= n + (int)s;
        return extend(v, s);
    }
    win_put(b, *w);
    int32_t d = diff_slow(b, t);
    *w = win_get(b);
    return d;
}

/* True when decoding used bits past the end of the entropy-coded data. */
static bool br_overrun(const bitreader *b)
{
    return b->overrun || (b->stopped && b->nbits < b->pad);
}

/* The next marker at or after p, skipping entropy-coded bytes (stuffed FF00) and fill bytes;
 * end when there is none. */
static const uint8_t *next_marker(const uint8_t *p, const uint8_t *end)
{
    while (end - p >= 2) {
        if (p[0] != 0xFF) {
            p++;
        } else if (p[1] == 0x00) {
            p += 2;
        } else if (p[1] == 0xFF) {
            p++;
        } else {
            return p;
        }
    }
    return end;
}

/* ---- Prediction (H.1.2.1, Table H.1) ------------------------------------------------- */

static ALWAYS_INLINE int32_t predict(unsigned k, int32_t ra, int32_t rb, int32_t rc)
{
    switch (k) {
    case 1: return ra;
    case 2: return rb;
    case 3: return rc;
    case 4: return ra + rb - rc;
    case 5: return ra + ((rb - rc) >> 1);
    case 6: return rb + ((ra - rc) >> 1);
    default: return (ra + rb) >> 1;
    }
}

static ALWAYS_INLINE int32_t load(const uint8_t *p, unsigned bps, unsigned pt)
{
    return (bps == 2 ? (int32_t)(p[0] | p[1] << 8) : (int32_t)p[0]) >> pt;
}

static ALWAYS_INLINE void store(uint8_t *p, unsigned bps, int32_t v, unsigned pt)
{
    uint32_t s = (uint32_t)v << pt;
    p[0] = (uint8_t)s;
    if (bps == 2)
        p[1] = (uint8_t)(s >> 8);
}

/*
 * Samples x0 + 1 .. x1 - 1 of one component of a non-interleaved scan, the sample at x0
 * being ra already. prev is the line above (k is 1 on a first line, where it is NULL). k,
 * bps and stride are constants in each instance below, so the loop has no branches but the
 * Huffman slow path.
 */
static ALWAYS_INLINE void run_line(bitreader *b, const htab *t, uint8_t *line, const uint8_t *prev,
                                   uint32_t x0, uint32_t x1, int32_t ra, unsigned k, unsigned bps,
                                   size_t stride, unsigned pt)
{
    bitwin w = win_get(b);
    int32_t rc = k >= 2 ? load(prev + x0 * stride, bps, pt) : 0;
    for (uint32_t x = x0 + 1; x < x1; x++) {
        int32_t rb = k >= 2 ? load(prev + x * stride, bps, pt) : 0;
        int32_t px = predict(k, ra, rb, rc);
        ra = (px + decode_diff(b, &w, t)) & 0xFFFF;
        store(line + x * stride, bps, ra, pt);
        rc = rb;
    }
    win_put(b, w);
}

#define RUN_LINE_CASE(K, BPS)                                                                      \
    case (K)*2 + (BPS)-1:                                                                          \
        if (stride == (BPS))                                                                       \
            run_line(b, t, line, prev, x0, x1, ra, K, BPS, BPS, pt);                               \
        else                                                                                       \
            run_line(b, t, line, prev, x0, x1, ra, K, BPS, stride, pt);                            \
        break;

static void run_line_any(bitreader *b, const htab *t, uint8_t *line, const uint8_t *prev,
                         uint32_t x0, uint32_t x1, int32_t ra, unsigned k, unsigned bps,
                         size_t stride, unsigned pt)
{
    switch (k * 2 + bps - 1) {
        RUN_LINE_CASE(1, 1)
        RUN_LINE_CASE(1, 2)
        RUN_LINE_CASE(2, 1)
        RUN_LINE_CASE(2, 2)
        RUN_LINE_CASE(3, 1)
        RUN_LINE_CASE(3, 2)
        RUN_LINE_CASE(4, 1)
        RUN_LINE_CASE(4, 2)
        RUN_LINE_CASE(5, 1)
        RUN_LINE_CASE(5, 2)
        RUN_LINE_CASE(6, 1)
        RUN_LINE_CASE(6, 2)
        RUN_LINE_CASE(7, 1)
        RUN_LINE_CASE(7, 2)
    default: break;
    }
}

/*
 * MCUs x0..x1-1 of line y (an MCU is one sample of each scan component, all sampled 1x1).
 * first_line: the line is the first of the scan or of a restart interval from x0 on, so
 * predictor 1 (Ra) is used; reset: the sample at x0 starts the scan or a restart interval
 * and is predicted by 2^(P-Pt-1).
 */
static void decode_segment(decoder *d, const scan *sc, bitreader *b, uint32_t y, uint32_t x0,
                           uint32_t x1, bool first_line, bool reset)
{
    unsigned bps = d->bps, pt = sc->pt;
    size_t stride = (size_t)d->nf * bps, line_bytes = (size_t)d->info->columns * stride;
    unsigned k = first_line || y == 0 ? 1 : sc->predictor;
    int32_t init = (int32_t)1 << (d->precision - pt - 1);
    uint8_t *lines[MAX_COMPONENTS];
    const uint8_t *prevs[MAX_COMPONENTS];
    int32_t ra[MAX_COMPONENTS];
    for (unsigned j = 0; j < sc->ns; j++) {
        lines[j] = d->out + (size_t)y * line_bytes + (size_t)sc->ci[j] * bps;
        prevs[j] = y > 0 ? lines[j] - line_bytes : NULL;
    }
    /* The first MCU: its predictor depends on where it is (H.1.2.1). */
    for (unsigned j = 0; j < sc->ns; j++) {
        const uint8_t *cur = lines[j] + x0 * stride;
        int32_t px;
        if (reset || (first_line && x0 == 0) || (!first_line && !prevs[j]))
            px = init;
        else if (first_line)
            px = load(cur - stride, bps, pt);
        else if (x0 == 0)
            px = load(prevs[j], bps, pt);
        else
            px = predict(sc->predictor, load(cur - stride, bps, pt),
                         load(prevs[j] + x0 * stride, bps, pt),
                         load(prevs[j] + (x0 - 1) * stride, bps, pt));
        bitwin w = win_get(b);
        ra[j] = (px + decode_diff(b, &w, sc->tab[j])) & 0xFFFF;
        win_put(b, w);
        store(lines[j] + x0 * stride, bps, ra[j], pt);
    }
    if (x1 - x0 < 2)
        return;
    if (sc->ns == 1) {
        run_line_any(b, sc->tab[0], lines[0], prevs[0], x0, x1, ra[0], k, bps, stride, pt);
        return;
    }
    /* Interleaved: one sample of each component per MCU, in scan order (A.2.3). */
    bitwin w = win_get(b);
    for (uint32_t x = x0 + 1; x < x1; x++) {
        for (unsigned j = 0; j < sc->ns; j++) {
            int32_t rb = 0, rc = 0;
            if (k >= 2) {
                rb = load(prevs[j] + x * stride, bps, pt);
                rc = load(prevs[j] + (x - 1) * stride, bps, pt);
            }
            ra[j] = (predict(k, ra[j], rb, rc) + decode_diff(b, &w, sc->tab[j])) & 0xFFFF;
            store(lines[j] + x * stride, bps, ra[j], pt);
        }
    }
    win_put(b, w);
}

/* After a restart interval: the RSTn marker with the expected n (B.2.1, E.2.4). */
static vp_status restart(decoder *d, bitreader *b, unsigned *next_rst, uint32_t y)
{
    const uint8_t *m = next_marker(b->p, d->end);
    if (m == d->end)
        return vp_error_set(d->err, VP_EPARSE,
                            "JPEG lossless: data ends where marker RST%u was expected (line %u)",
                            *next_rst, y);
    if (m[1] != 0xD0 + *next_rst)
        return vp_error_set(d->err, VP_EPARSE,
                            "JPEG lossless: marker FF%02X at offset %zu where RST%u was expected",
                            m[1], offset_of(d, m), *next_rst);
    *next_rst = (*next_rst + 1) & 7;
    br_init(b, m + 2, d->end);
    return VP_OK;
}

/* The entropy-coded data of one scan from *pp; *pp is left at the marker that follows it. */
static vp_status decode_scan(decoder *d, const scan *sc, const uint8_t **pp)
{
    uint32_t cols = d->info->columns, rows = d->info->rows, ri = d->restart_interval;
    uint32_t left = ri ? ri : UINT32_MAX; /* MCUs before the next restart */
    unsigned next_rst = 0;
    bitreader b;
    br_init(&b, *pp, d->end);
    bool first_line = true, reset = true;
    for (uint32_t y = 0; y < rows; y++) {
        uint32_t x = 0;
        while (x < cols) {
            uint32_t n = cols - x < left ? cols - x : left;
            decode_segment(d, sc, &b, y, x, x + n, first_line, reset);
            if (b.bad_code)
                return vp_error_set(d->err, VP_EPARSE,
                                    "JPEG lossless: Huffman code not in the table (line %u)", y);
            if (br_overrun(&b))
                return vp_error_set(d->err, VP_EPARSE,
                                    "JPEG lossless: entropy-coded data ends early (line %u of %u)",
                                    y, rows);
            x += n;
            reset = false;
            if (x == cols)
                first_line = false;
            if (ri && (left -= n) == 0 && (x < cols || y + 1 < rows)) {
                vp_status st = restart(d, &b, &next_rst, y);
                if (st)
                    return st;
                left = ri;
                /* H.1.2.1: a restart interval starts like a scan. One starting inside a line
                 * (not met in practice) predicts from Ra up to that line's end. */
                reset = first_line = true;
            }
        }
    }
    *pp = next_marker(b.p, d->end);
    return VP_OK;
}

/* ---- Marker segments ----------------------------------------------------------------- */

/* B.2.2 frame header of SOF3, checked against the data set's geometry. */
static vp_status parse_sof(decoder *d, const uint8_t *p, size_t n)
{
    const img_info *info = d->info;
    if (d->have_sof)
        return vp_error_set(d->err, VP_EPARSE, "JPEG lossless: second SOF marker");
    if (n < 6)
        return vp_error_set(d->err, VP_EPARSE, "JPEG lossless: SOF3 segment of %zu bytes", n + 2);
    unsigned precision = p[0], y = vp_be16(p + 1), x = vp_be16(p + 3), nf = p[5];
    if (n != 6 + 3 * (size_t)nf)
        return vp_error_set(d->err, VP_EPARSE,
                            "JPEG lossless: SOF3 length %zu, expected %u for %u components", n + 2,
                            8 + 3 * nf, nf);
    if (precision < 2 || precision > 16)
        return vp_error_set(d->err, VP_EPARSE, "JPEG lossless: sample precision %u (2..16)",
                            precision);
    if (y == 0)
        return vp_error_set(d->err, VP_EUNSUPPORTED,
                            "JPEG lossless: number of lines 0 (defined by a DNL marker) is not "
                            "supported");
    if (x == 0)
        return vp_error_set(d->err, VP_EPARSE, "JPEG lossless: number of samples per line 0");
    if (x != info->columns)
        return vp_error_set(d->err, VP_EPARSE, "JPEG lossless: SOF3 has %u columns, data set %u", x,
                            info->columns);
    if (y != info->rows)
        return vp_error_set(d->err, VP_EPARSE, "JPEG lossless: SOF3 has %u rows, data set %u", y,
                            info->rows);
    if (nf != info->samples_per_pixel)
        return vp_error_set(d->err, VP_EPARSE,
                            "JPEG lossless: SOF3 has %u components, data set %u samples per pixel",
                            nf, info->samples_per_pixel);
    if (nf == 0 || nf > MAX_COMPONENTS)
        return vp_error_set(d->err, VP_EUNSUPPORTED, "JPEG lossless: %u components (1..4)", nf);
    if (precision > info->bits_allocated)
        return vp_error_set(d->err, VP_EPARSE,
                            "JPEG lossless: SOF3 precision %u exceeds bits allocated %u", precision,
                            info->bits_allocated);
    for (unsigned i = 0; i < nf; i++) {
        const uint8_t *c = p + 6 + 3 * i;
        d->comp[i] = (component){.id = c[0], .h = c[1] >> 4, .v = c[1] & 15};
        for (unsigned j = 0; j < i; j++)
            if (d->comp[j].id == c[0])
                return vp_error_set(d->err, VP_EPARSE, "JPEG lossless: component id %u twice",
                                    c[0]);
        if (d->comp[i].h < 1 || d->comp[i].h > 4 || d->comp[i].v < 1 || d->comp[i].v > 4)
            return vp_error_set(d->err, VP_EPARSE,
                                "JPEG lossless: component %u sampling factors %ux%u (1..4)", c[0],
                                d->comp[i].h, d->comp[i].v);
        /* All components must be sampled alike: no subsampling. (A single component's
         * factors do not matter, A.2.2.) */
        if (nf > 1 && (d->comp[i].h != d->comp[0].h || d->comp[i].v != d->comp[0].v))
            return vp_error_set(d->err, VP_EUNSUPPORTED,
                                "JPEG lossless: subsampled components (%ux%u and %ux%u)",
                                d->comp[0].h, d->comp[0].v, d->comp[i].h, d->comp[i].v);
    }
    d->precision = precision;
    d->nf = nf;
    d->have_sof = true;
    return VP_OK;
}

/* B.2.3 scan header. */
static vp_status parse_sos(decoder *d, const uint8_t *p, size_t n, scan *sc)
{
    if (!d->have_sof)
        return vp_error_set(d->err, VP_EPARSE, "JPEG lossless: SOS before SOF");
    if (n < 1 || n != 4 + 2 * (size_t)p[0])
        return vp_error_set(d->err, VP_EPARSE, "JPEG lossless: SOS length %zu for %u components",
                            n + 2, n ? p[0] : 0);
    unsigned ns = p[0];
    if (ns < 1 || ns > d->nf)
        return vp_error_set(d->err, VP_EPARSE, "JPEG lossless: scan of %u components (1..%u)", ns,
                            d->nf);
    memset(sc, 0, sizeof *sc);
    sc->ns = ns;
    for (unsigned j = 0; j < ns; j++) {
        unsigned id = p[1 + 2 * j], td = p[2 + 2 * j] >> 4, i;
        for (i = 0; i < d->nf && d->comp[i].id != id; i++)
            ;
        if (i == d->nf)
            return vp_error_set(d->err, VP_EPARSE,
                                "JPEG lossless: scan names component %u, not in the frame", id);
        if (d->comp[i].done)
            return vp_error_set(d->err, VP_EPARSE, "JPEG lossless: component %u is in two scans",
                                id);
        if (td > 3 || !d->tab[td].defined)
            return vp_error_set(d->err, VP_EPARSE,
                                "JPEG lossless: scan uses Huffman table %u, which is not defined",
                                td);
        if (!d->tab[td].built && !htab_build(&d->tab[td]))
            return vp_error_set(d->err, VP_EPARSE, "JPEG lossless: Huffman table %u is invalid",
                                td);
        if (ns > 1 && (d->comp[i].h != 1 || d->comp[i].v != 1))
            return vp_error_set(d->err, VP_EUNSUPPORTED,
                                "JPEG lossless: interleaved scan with sampling factors %ux%u",
                                d->comp[i].h, d->comp[i].v);
        d->comp[i].done = true;
        sc->ci[j] = i;
        sc->tab[j] = &d->tab[td];
    }
    const uint8_t *q = p + 1 + 2 * ns;
    unsigned ss = q[0], se = q[1], ah = q[2] >> 4, al = q[2] & 15;
    if (ss == 0)
        return vp_error_set(d->err, VP_EUNSUPPORTED,
                            "JPEG lossless: predictor 0 (hierarchical mode only) is not supported");
    if (ss > 7)
        return vp_error_set(d->err, VP_EPARSE, "JPEG lossless: predictor %u (1..7)", ss);
    if (se != 0 || ah != 0)
        return vp_error_set(d->err, VP_EPARSE, "JPEG lossless: scan Se %u Ah %u, must be 0", se,
                            ah);
    if (al >= d->precision)
        return vp_error_set(d->err, VP_EPARSE, "JPEG lossless: point transform %u for precision %u",
                            al, d->precision);
    sc->predictor = ss;
    sc->pt = al;
    return VP_OK;
}

vp_status img_jpll_decode(const uint8_t *in, size_t len, const img_info *info, uint8_t *out,
                          size_t out_size, img_info *out_info, vp_error *err)
{
    if (info->bits_allocated != 8 && info->bits_allocated != 16)
        return vp_error_set(err, VP_EUNSUPPORTED,
                            "JPEG lossless: bits allocated %u (8 or 16 expected)",
                            info->bits_allocated);
    unsigned bps = info->bits_allocated / 8;
    size_t need;
    if (vp_mul_size(info->rows, info->columns, &need) ||
        vp_mul_size(need, (size_t)info->samples_per_pixel * bps, &need) || need > out_size)
        return vp_error_set(err, VP_EINVAL, "JPEG lossless: output of %zu bytes too small",
                            out_size);
    if (len < 2 || in[0] != 0xFF || in[1] != 0xD8)
        return vp_error_set(err, VP_EPARSE, "JPEG lossless: stream does not start with SOI");
    decoder *d = vp_calloc(1, sizeof *d);
    if (!d)
        return vp_error_set(err, VP_ENOMEM, "out of memory");
    *d = (decoder){.in = in, .end = in + len, .info = info, .out = out, .bps = bps, .err = err};
    vp_status st = VP_OK;
    const uint8_t *p = in + 2;
    bool eoi = false;
    while (!eoi) {
        if (p >= d->end)
            break; /* no EOI: fine if every component was decoded (checked below) */
        if (p[0] != 0xFF) {
            st = vp_error_set(err, VP_EPARSE,
                              "JPEG lossless: expected a marker at offset %zu, found 0x%02X",
                              offset_of(d, p), p[0]);
            goto done;
        }
        while (p < d->end && p[0] == 0xFF)
            p++; /* fill bytes (B.1.1.2) */
        if (p >= d->end)
            break;
        unsigned m = *p++;
        if (m == 0xD9) {
            eoi = true;
            continue;
        }
        if (m == 0x01 || (m >= 0xD0 && m <= 0xD7))
            continue; /* TEM, stray RSTn: no segment */
        if (m == 0x00 || m == 0xD8) {
            st = vp_error_set(err, VP_EPARSE, "JPEG lossless: unexpected FF%02X at offset %zu", m,
                              offset_of(d, p - 2));
            goto done;
        }
        if (d->end - p < 2) {
            st = vp_error_set(err, VP_EPARSE,
                              "JPEG lossless: marker FF%02X at offset %zu has no length", m,
                              offset_of(d, p - 2));
            goto done;
        }
        size_t seglen = vp_be16(p);
        if (seglen < 2 || seglen > (size_t)(d->end - p)) {
            st = vp_error_set(err, VP_EPARSE,
                              "JPEG lossless: marker FF%02X at offset %zu length %zu, %zu bytes "
                              "left",
                              m, offset_of(d, p - 2), seglen, (size_t)(d->end - p));
            goto done;
        }
        const uint8_t *body = p + 2;
        size_t n = seglen - 2;
        p += seglen;
        if (m == 0xC3) {
            st = parse_sof(d, body, n);
        } else if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) {
            st = vp_error_set(err, VP_EUNSUPPORTED,
                              "JPEG lossless: SOF%u (FF%02X) is not lossless Huffman (SOF3)",
                              m - 0xC0, m);
        } else if (m == 0xC4) {
            st = parse_dht(d, body, n);
        } else if (m == 0xCC) {
            st = vp_error_set(err, VP_EUNSUPPORTED, "JPEG lossless: arithmetic coding (DAC)");
        } else if (m == 0xDD) {
            if (n != 2)
                st = vp_error_set(err, VP_EPARSE, "JPEG lossless: DRI length %zu, expected 4",
                                  seglen);
            else
                d->restart_interval = vp_be16(body);
        } else if (m == 0xDE || m == 0xDF) {
            st = vp_error_set(err, VP_EUNSUPPORTED,
                              "JPEG lossless: hierarchical mode (FF%02X) is not supported", m);
        } else if (m == 0xDA) {
            scan sc;
            if (!(st = parse_sos(d, body, n, &sc)))
                st = decode_scan(d, &sc, &p);
        }
        /* Anything else (APPn, COM, DQT, DNL, JPGn) carries nothing for us. */
        if (st)
            goto done;
    }
    if (!d->have_sof) {
        st = vp_error_set(err, VP_EPARSE, "JPEG lossless: no SOF3 frame header before %s",
                          eoi ? "EOI" : "the end");
        goto done;
    }
    for (unsigned i = 0; i < d->nf; i++)
        if (!d->comp[i].done) {
            st = vp_error_set(err, VP_EPARSE, "JPEG lossless: component %u has no scan (%s)",
                              d->comp[i].id, eoi ? "EOI reached" : "data ends");
            goto done;
        }
    if (out_info) {
        *out_info = *info;
        out_info->planar_configuration = 0;
    }
done:
    vp_free(d);
    return st;
}
