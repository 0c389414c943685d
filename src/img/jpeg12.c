/* SPDX-License-Identifier: MIT */
/*
 * JPEG extended sequential DCT with 12-bit samples: ISO/IEC 10918-1 (ITU-T T.81) process 4,
 * Huffman coded (SOF1, or SOF0 carrying P 12), the 12-bit case of DICOM transfer syntax
 * 1.2.840.10008.1.2.4.51 "JPEG Extended (Process 2 & 4)" (PS3.5 A.4.1, 8.2.1). Debian's
 * libjpeg-turbo is built for 8-bit samples only, so this one is ours.
 *
 * Markers (Annex B): SOI, SOF0/SOF1 with P 12 (B.2.2), DQT with 8- or 16-bit entries
 * (B.2.4.1), DHT (B.2.4.2; tables may be redefined between scans), DRI (B.2.4.4), SOS (B.2.3:
 * interleaved MCUs with sampling factors 1..4, A.2.3, or one component per scan, A.2.2),
 * RSTn, APPn / COM skipped, fill bytes, EOI. Entropy decoding as in F.2.2 (DC difference,
 * AC run/size with EOB and ZRL) with a first-level lookup table that also resolves a
 * coefficient's extra bits when they fit; dequantisation (A.3.4) and zigzag (A.3.6, Figure A.6).
 *
 * The output must equal dcmtk's dcmdjpeg, which decodes with its copy of the IJG library
 * (JDCT_ISLOW, fancy upsampling, both defaults). So the inverse DCT is the LL&M integer one
 * of IJG's "islow" method with its 12-bit scaling (13 fraction bits in the constants, one
 * extra bit kept between the passes), the same rounding, the same wrap-around range limit and
 * level shift of 2048; chroma upsampling is IJG's (triangle filter for 2:1 horizontal and
 * 2:1 both ways when the component is wider than 2 samples, replication otherwise); YCbCr to
 * RGB uses IJG's 16-bit fixed-point coefficients. Intermediate sums are 64-bit (IJG's INT32
 * is a C long), so hostile coefficients cannot overflow.
 *
 * Colour (as src/img/jpeg.c and dcmdjpeg's default +cp): three components are converted from
 * YCbCr to RGB when the data set says YBR_FULL, YBR_FULL_422 or YBR_PARTIAL_422, or says RGB
 * while the stream carries a JFIF APP0 or an Adobe APP14 with transform 1; the photometric
 * interpretation then becomes RGB. Otherwise components are returned as stored.
 *
 * Stricter than IJG, which warns and makes something up: entropy-coded data that ends early,
 * a Huffman code not in its table, a coefficient placed past index 63, a missing or wrong
 * RSTn marker and a component without a scan are errors (VP_EPARSE). Like IJG, a scan's
 * Ss/Se/Ah/Al are ignored (real files have Se 0), a ZRL that runs past index 63 ends the block,
 * and AC symbols with a zero size and a run below 15 are read as EOB.
 */
#include <stdbool.h>
#include <string.h>

#include "img/img.h"

/* Bits resolved by one lookup; longer codes take the slow path. */
#define FAST_BITS 10
#define MAX_COMPONENTS 4
#define MAX_BLOCKS_IN_MCU 10 /* B.2.3: the sum of Hi x Vi over an interleaved scan */
#define PREC 12
#define MAXSAMPLE 4095
#define CENTER 2048

#if defined(__GNUC__)
#define ALWAYS_INLINE inline __attribute__((always_inline))
#define NOINLINE __attribute__((noinline))
#define LIKELY(x) __builtin_expect(!!(x), 1)
#else
#define ALWAYS_INLINE inline
#define NOINLINE
#define LIKELY(x) (x)
#endif

/* Zigzag index to natural (row-major) index (Figure A.6). */
static const uint8_t natural_order[64] = {
    0,  1,  8,  16, 9,  2,  3,  10, 17, 24, 32, 25, 18, 11, 4,  5,  12, 19, 26, 33, 40, 48,
    41, 34, 27, 20, 13, 6,  7,  14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23,
    30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
};

/*
 * One Huffman table in decoding form. fast[] is indexed by the next FAST_BITS bits; 0 means
 * the code is longer (slow path). Otherwise bits 0-4 are the bits consumed, bits 8-15 the
 * symbol, and bit 5 (RESOLVED) says that the extra bits fitted too and bits 16-31 hold the
 * extended value (DC: the difference; AC: the coefficient, the run being in the symbol).
 */
#define RESOLVED 0x20
typedef struct htab {
    int32_t fast[1 << FAST_BITS];
    int32_t maxcode[17]; /* largest code of each length, -1 when none */
    int32_t valoff[17];  /* index in vals of code c of length l: valoff[l] + c */
    uint8_t counts[17];  /* BITS: number of codes of each length 1..16 */
    uint8_t vals[256];   /* HUFFVAL */
    unsigned nvals;
    bool defined; /* a DHT set this table */
    bool built;   /* fast / maxcode / valoff are up to date */
} htab;

/* A frame component (B.2.2) and its decoded samples. */
typedef struct component {
    uint8_t id;      /* Ci */
    uint8_t h, v;    /* sampling factors */
    uint8_t tq;      /* quantisation table selector */
    bool done;       /* decoded by a scan already */
    uint32_t w, hgt; /* samples per line and lines: ceil(X * h / Hmax) etc. (A.1.1) */
    uint32_t bw, bh; /* blocks per line and rows of blocks in the plane (MCU-padded) */
    size_t stride;   /* samples per plane row: bw * 8 */
    uint16_t *plane; /* bw*8 x bh*8 samples */
} component;

/* Bit reader as in jpll.c: acc holds nbits valid bits, most significant first; at a marker or
 * the end of the data it feeds zeros and counts them in pad. */
typedef struct bitreader {
    uint64_t acc;
    int nbits;
    int pad;
    const uint8_t *p;
    const uint8_t *end;
    bool stopped;
    bool overrun;
    bool bad_code;
} bitreader;

typedef struct decoder {
    const uint8_t *in, *end;
    const img_info *info;
    bool have_sof;
    unsigned nf;
    unsigned hmax, vmax;
    uint32_t mcux, mcuy; /* MCUs per line and lines of MCUs of an interleaved scan */
    component comp[MAX_COMPONENTS];
    uint32_t restart_interval;
    uint16_t qt[4][64]; /* natural order */
    bool qt_defined[4];
    htab dc[4], ac[4];
    bool jfif, adobe;
    int adobe_transform;
    vp_error *err;
} decoder;

typedef struct scan {
    unsigned ns;
    unsigned ci[MAX_COMPONENTS];
    const htab *dc[MAX_COMPONENTS], *ac[MAX_COMPONENTS];
    const uint16_t *qt[MAX_COMPONENTS];
} scan;

static size_t offset_of(const decoder *d, const uint8_t *p)
{
    return (size_t)(p - d->in);
}

static inline uint32_t ceil_div(uint32_t a, uint32_t b)
{
    return (uint32_t)(((uint64_t)a + b - 1) / b);
}

/* ---- Huffman tables (B.2.4.2, Annex C, F.2.2.3) -------------------------------------- */

/* EXTEND (F.2.2.1). */
static ALWAYS_INLINE int32_t extend(uint32_t v, unsigned s)
{
    return v < (1u << (s - 1)) ? (int32_t)v - (int32_t)(1u << s) + 1 : (int32_t)v;
}

/* Annex C code assignment and the lookup table, when a scan first uses the table. DC
 * symbols must be sizes 0..15 (F.1.2.1.1; IJG refuses the table too); AC symbols are any
 * byte, read as run << 4 | size. Returns false when the table is unusable. */
static bool htab_build(htab *t, bool dc)
{
    uint32_t code = 0;
    unsigned k = 0;
    if (dc)
        for (unsigned i = 0; i < t->nvals; i++)
            if (t->vals[i] > 15)
                return false;
    memset(t->fast, 0, sizeof t->fast);
    for (unsigned len = 1; len <= 16; len++) {
        t->valoff[len] = (int32_t)k - (int32_t)code;
        t->maxcode[len] = t->counts[len] ? (int32_t)(code + t->counts[len] - 1) : -1;
        for (unsigned i = 0; i < t->counts[len]; i++, k++, code++) {
            if (code >= (1u << len))
                return false;
            if (len > FAST_BITS)
                continue;
            unsigned sym = t->vals[k], s = dc ? sym : sym & 15, rest = FAST_BITS - len;
            uint32_t first = code << rest;
            for (uint32_t j = 0; j < (1u << rest); j++) {
                int32_t e = (int32_t)(sym << 8 | len);
                if (s == 0) {
                    if (dc)
                        e |= RESOLVED; /* difference 0, nothing more to read */
                } else if (len + s <= FAST_BITS) {
                    int32_t v = extend((j >> (rest - s)) & ((1u << s) - 1), s);
                    e = (int32_t)((uint32_t)v << 16 | sym << 8 | RESOLVED | (len + s));
                }
                t->fast[first + j] = e;
            }
        }
        code <<= 1;
    }
    t->built = true;
    return true;
}

/* B.2.4.2: one DHT segment, possibly several tables. */
static vp_status parse_dht(decoder *d, const uint8_t *p, size_t n)
{
    while (n > 0) {
        if (n < 17)
            return vp_error_set(d->err, VP_EPARSE,
                                "JPEG 12-bit: DHT table at offset %zu needs 17 bytes, %zu left",
                                offset_of(d, p), n);
        unsigned tc = p[0] >> 4, th = p[0] & 15, total = 0;
        if (tc > 1 || th > 3)
            return vp_error_set(d->err, VP_EPARSE,
                                "JPEG 12-bit: DHT table class %u destination %u (0..1, 0..3)", tc,
                                th);
        for (unsigned i = 1; i <= 16; i++)
            total += p[i];
        if (total > 256)
            return vp_error_set(d->err, VP_EPARSE,
                                "JPEG 12-bit: DHT table has %u symbols (256 at most)", total);
        if (total > n - 17)
            return vp_error_set(d->err, VP_EPARSE,
                                "JPEG 12-bit: DHT table of %u symbols passes its segment (%zu "
                                "bytes left)",
                                total, n - 17);
        htab *t = tc ? &d->ac[th] : &d->dc[th];
        t->counts[0] = 0;
        memcpy(t->counts + 1, p + 1, 16);
        memcpy(t->vals, p + 17, total);
        t->nvals = total;
        t->defined = true;
        t->built = false;
        uint32_t code = 0;
        for (unsigned len = 1; len <= 16; len++) {
            code += t->counts[len];
            if (code > (1u << len))
                return vp_error_set(d->err, VP_EPARSE,
                                    "JPEG 12-bit: DHT %s table %u has more codes of %u bits "
                                    "than fit (%u)",
                                    tc ? "AC" : "DC", th, len, code);
            code <<= 1;
        }
        p += 17 + total;
        n -= 17 + total;
    }
    return VP_OK;
}

/* B.2.4.1: one DQT segment, possibly several tables, stored in natural order. */
static vp_status parse_dqt(decoder *d, const uint8_t *p, size_t n)
{
    while (n > 0) {
        unsigned pq = p[0] >> 4, tq = p[0] & 15;
        size_t need = 1 + (pq ? 128 : 64);
        if (pq > 1 || tq > 3)
            return vp_error_set(d->err, VP_EPARSE,
                                "JPEG 12-bit: DQT precision %u destination %u (0..1, 0..3)", pq,
                                tq);
        if (n < need)
            return vp_error_set(d->err, VP_EPARSE,
                                "JPEG 12-bit: DQT table %u at offset %zu needs %zu bytes, %zu left",
                                tq, offset_of(d, p), need, n);
        for (unsigned i = 0; i < 64; i++)
            d->qt[tq][natural_order[i]] = pq ? vp_be16(p + 1 + 2 * i) : p[1 + i];
        d->qt_defined[tq] = true;
        p += need;
        n -= need;
    }
    return VP_OK;
}

/* ---- Bit reader (F.2.2.5, with F.1.2.3 byte stuffing); as in jpll.c ------------------- */

static void br_init(bitreader *b, const uint8_t *p, const uint8_t *end)
{
    memset(b, 0, sizeof *b);
    b->p = p;
    b->end = end;
}

static NOINLINE void br_refill_slow(bitreader *b)
{
    while (b->nbits <= 56) {
        if (b->stopped) {
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
        uint64_t v = ~x;
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

static bool br_overrun(const bitreader *b)
{
    return b->overrun || (b->stopped && b->nbits < b->pad);
}

/* A code longer than FAST_BITS (F.2.2.3 DECODE); consumes it and returns its symbol, or
 * flags a bad code and returns 0 (a zero difference / EOB, so decoding stops soon). At least
 * 16 bits are in the window. */
static NOINLINE unsigned huff_slow(bitwin *w, bitreader *b, const htab *t)
{
    uint32_t bits16 = (uint32_t)(w->acc >> 48);
    unsigned len;
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
    w->acc <<= len;
    w->nbits -= (int)len;
    return t->vals[k];
}

/* s extra bits (F.2.2.1 RECEIVE + EXTEND); s is 1..15, the window holds them. */
static ALWAYS_INLINE int32_t receive_extend(bitwin *w, unsigned s)
{
    uint32_t v = (uint32_t)(w->acc >> (64 - s));
    w->acc <<= s;
    w->nbits -= (int)s;
    return extend(v, s);
}

static const uint8_t *next_marker(const uint8_t *p, const uint8_t *end)
{
    while (end - p >= 2) {
        if (p[0] != 0xFF)
            p++;
        else if (p[1] == 0x00)
            p += 2;
        else if (p[1] == 0xFF)
            p++;
        else
            return p;
    }
    return end;
}

/* ---- One block (F.2.2.1, F.2.2.2) ------------------------------------------------------ */

/*
 * Decodes one 8x8 block into coef (natural order, zeroed by the caller); *pred is the
 * component's DC predictor. Returns false when a coefficient would be placed past index 63.
 * *dc_only tells whether any AC coefficient was coded. Coefficients are kept as 16-bit values
 * like IJG's JCOEF; the predictor is not truncated (IJG's is an int) and wraps modulo 2^32.
 * A bad code is flagged in the reader and read as 0 / EOB; the caller checks after the MCU.
 */
static ALWAYS_INLINE bool decode_block(bitreader *b, bitwin *w, const htab *dc, const htab *ac,
                                       int32_t *pred, int16_t *coef, bool *dc_only)
{
    if (w->nbits < 32)
        win_refill(b, w);
    int32_t e = dc->fast[w->acc >> (64 - FAST_BITS)];
    int32_t diff;
    if (LIKELY(e & RESOLVED)) {
        w->acc <<= e & 31;
        w->nbits -= e & 31;
        diff = e >> 16;
    } else {
        unsigned s;
        if (LIKELY(e != 0)) {
            w->acc <<= e & 31;
            w->nbits -= e & 31;
            s = ((uint32_t)e >> 8) & 255;
        } else {
            s = huff_slow(w, b, dc);
        }
        diff = s ? receive_extend(w, s) : 0;
    }
    *pred = (int32_t)((uint32_t)*pred + (uint32_t)diff);
    coef[0] = (int16_t)(uint16_t)(uint32_t)*pred;
    bool only = true;
    for (unsigned k = 1; k < 64; k++) {
        if (w->nbits < 32)
            win_refill(b, w);
        e = ac->fast[w->acc >> (64 - FAST_BITS)];
        unsigned rs, r, s;
        if (LIKELY(e & RESOLVED)) {
            w->acc <<= e & 31;
            w->nbits -= e & 31;
            k += ((uint32_t)e >> 12) & 15;
            if (k > 63)
                return false;
            coef[natural_order[k]] = (int16_t)(e >> 16);
            only = false;
            continue;
        }
        if (LIKELY(e != 0)) {
            w->acc <<= e & 31;
            w->nbits -= e & 31;
            rs = ((uint32_t)e >> 8) & 255;
        } else {
            rs = huff_slow(w, b, ac);
        }
        r = rs >> 4;
        s = rs & 15;
        if (s) {
            k += r;
            if (k > 63)
                return false;
            coef[natural_order[k]] = (int16_t)receive_extend(w, s);
            only = false;
        } else {
            if (r != 15)
                break; /* EOB (IJG reads any zero-size symbol below ZRL as EOB) */
            k += 15;   /* ZRL; one past 63 ends the block, as in IJG */
        }
    }
    *dc_only = only;
    return true;
}

/* ---- Inverse DCT: IJG islow (LL&M) with 12-bit scaling --------------------------------- */

#define CONST_BITS 13
#define PASS1_BITS 1
#define FIX(x) ((int64_t)((x) * (1 << CONST_BITS) + 0.5))
#define F_0_298631336 FIX(0.298631336)
#define F_0_390180644 FIX(0.390180644)
#define F_0_541196100 FIX(0.541196100)
#define F_0_765366865 FIX(0.765366865)
#define F_0_899976223 FIX(0.899976223)
#define F_1_175875602 FIX(1.175875602)
#define F_1_501321110 FIX(1.501321110)
#define F_1_847759065 FIX(1.847759065)
#define F_1_961570560 FIX(1.961570560)
#define F_2_053119869 FIX(2.053119869)
#define F_2_562915447 FIX(2.562915447)
#define F_3_072711026 FIX(3.072711026)

/* x / 2^n rounded (IJG DESCALE), arithmetic shift. */
static ALWAYS_INLINE int64_t descale(int64_t x, int n)
{
    return (x + ((int64_t)1 << (n - 1))) >> n;
}

/* The workspace between the passes is a C int in IJG: keep the low 32 bits. */
static ALWAYS_INLINE int32_t to_int(int64_t x)
{
    return (int32_t)(uint32_t)(uint64_t)x;
}

/*
 * IJG's post-IDCT range limit: the low 14 bits of the descaled value, read as a signed
 * number, plus the level shift of 2^(P-1), clamped to 0..4095. (IJG indexes a table with
 * the value masked by 4*4096-1; the table is exactly this.)
 */
static ALWAYS_INLINE uint16_t limit(int64_t x)
{
    int32_t v = (int32_t)((uint32_t)(uint64_t)x << 18) >> 18;
    v += CENTER;
    return (uint16_t)(v < 0 ? 0 : v > MAXSAMPLE ? MAXSAMPLE : v);
}

/*
 * The even and odd halves of the 8-point LL&M IDCT on in[0..7] (already dequantised, 64-bit).
 * out[i] are the eight results before descaling, scaled by 2^CONST_BITS.
 */
static ALWAYS_INLINE void idct8(const int64_t *in, int64_t *out)
{
    int64_t z2 = in[2], z3 = in[6];
    int64_t z1 = (z2 + z3) * F_0_541196100;
    int64_t tmp2 = z1 + z3 * -F_1_847759065;
    int64_t tmp3 = z1 + z2 * F_0_765366865;
    int64_t tmp0 = (in[0] + in[4]) * (1 << CONST_BITS);
    int64_t tmp1 = (in[0] - in[4]) * (1 << CONST_BITS);
    int64_t tmp10 = tmp0 + tmp3, tmp13 = tmp0 - tmp3, tmp11 = tmp1 + tmp2, tmp12 = tmp1 - tmp2;

    tmp0 = in[7], tmp1 = in[5], tmp2 = in[3], tmp3 = in[1];
    z1 = tmp0 + tmp3;
    z2 = tmp1 + tmp2;
    z3 = tmp0 + tmp2;
    int64_t z4 = tmp1 + tmp3;
    int64_t z5 = (z3 + z4) * F_1_175875602;
    tmp0 *= F_0_298631336;
    tmp1 *= F_2_053119869;
    tmp2 *= F_3_072711026;
    tmp3 *= F_1_501321110;
    z1 *= -F_0_899976223;
    z2 *= -F_2_562915447;
    z3 = z3 * -F_1_961570560 + z5;
    z4 = z4 * -F_0_390180644 + z5;
    tmp0 += z1 + z3;
    tmp1 += z2 + z4;
    tmp2 += z2 + z3;
    tmp3 += z1 + z4;

    out[0] = tmp10 + tmp3;
    out[7] = tmp10 - tmp3;
    out[1] = tmp11 + tmp2;
    out[6] = tmp11 - tmp2;
    out[2] = tmp12 + tmp1;
    out[5] = tmp12 - tmp1;
    out[3] = tmp13 + tmp0;
    out[4] = tmp13 - tmp0;
}

/* Dequantises coef with q and writes the 8x8 samples at dst (stride samples per row).
 * Columns first, then rows, as IJG; a column or row whose AC terms are all zero gives the
 * same result as the full computation, so it is short-cut. */
static void idct_block(const int16_t *coef, const uint16_t *q, uint16_t *dst, size_t stride)
{
    int32_t ws[64];
    for (int c = 0; c < 8; c++) {
        if (!(coef[8 + c] | coef[16 + c] | coef[24 + c] | coef[32 + c] | coef[40 + c] |
              coef[48 + c] | coef[56 + c])) {
            int32_t dc = to_int((int64_t)coef[c] * q[c] * (1 << PASS1_BITS));
            for (int r = 0; r < 8; r++)
                ws[r * 8 + c] = dc;
            continue;
        }
        int64_t in[8], out[8];
        for (int r = 0; r < 8; r++)
            in[r] = (int64_t)coef[r * 8 + c] * q[r * 8 + c];
        idct8(in, out);
        for (int r = 0; r < 8; r++)
            ws[r * 8 + c] = to_int(descale(out[r], CONST_BITS - PASS1_BITS));
    }
    for (int r = 0; r < 8; r++) {
        const int32_t *row = ws + r * 8;
        uint16_t *o = dst + (size_t)r * stride;
        if (!(row[1] | row[2] | row[3] | row[4] | row[5] | row[6] | row[7])) {
            uint16_t v = limit(descale(row[0], PASS1_BITS + 3));
            for (int c = 0; c < 8; c++)
                o[c] = v;
            continue;
        }
        int64_t in[8], out[8];
        for (int c = 0; c < 8; c++)
            in[c] = row[c];
        idct8(in, out);
        for (int c = 0; c < 8; c++)
            o[c] = limit(descale(out[c], CONST_BITS + PASS1_BITS + 3));
    }
}

/* A block with only a DC term: all 64 samples are equal (the two passes above reduce to
 * this exactly). */
static ALWAYS_INLINE void idct_dc(int16_t dc, uint16_t q, uint16_t *dst, size_t stride)
{
    int32_t w = to_int((int64_t)dc * q * (1 << PASS1_BITS));
    uint16_t v = limit(descale(w, PASS1_BITS + 3));
    for (int r = 0; r < 8; r++)
        for (int c = 0; c < 8; c++)
            dst[(size_t)r * stride + c] = v;
}

/* ---- Scans ----------------------------------------------------------------------------- */

/* After a restart interval: the RSTn marker with the expected n (B.2.1, E.2.4). */
static vp_status restart(decoder *d, bitreader *b, unsigned *next_rst, uint64_t mcu)
{
    const uint8_t *m = next_marker(b->p, d->end);
    if (m == d->end)
        return vp_error_set(d->err, VP_EPARSE,
                            "JPEG 12-bit: data ends where marker RST%u was expected (MCU %llu)",
                            *next_rst, (unsigned long long)mcu);
    if (m[1] != 0xD0 + *next_rst)
        return vp_error_set(d->err, VP_EPARSE,
                            "JPEG 12-bit: marker FF%02X at offset %zu where RST%u was expected",
                            m[1], offset_of(d, m), *next_rst);
    *next_rst = (*next_rst + 1) & 7;
    br_init(b, m + 2, d->end);
    return VP_OK;
}

/* The entropy-coded data of one scan from *pp; *pp is left at the marker that follows it. */
static vp_status decode_scan(decoder *d, const scan *sc, const uint8_t **pp)
{
    uint32_t mcux, mcuy;
    if (sc->ns == 1) {
        /* A.2.2: non-interleaved, one block per MCU, only the component's own blocks. */
        const component *c = &d->comp[sc->ci[0]];
        mcux = ceil_div(c->w, 8);
        mcuy = ceil_div(c->hgt, 8);
    } else {
        mcux = d->mcux;
        mcuy = d->mcuy;
    }
    uint32_t ri = d->restart_interval, left = ri;
    unsigned next_rst = 0;
    int32_t pred[MAX_COMPONENTS] = {0};
    int16_t coef[64];
    bitreader b;
    br_init(&b, *pp, d->end);
    uint64_t mcu = 0;
    for (uint32_t my = 0; my < mcuy; my++) {
        for (uint32_t mx = 0; mx < mcux; mx++, mcu++) {
            if (ri && left == 0) {
                vp_status st = restart(d, &b, &next_rst, mcu);
                if (st)
                    return st;
                left = ri;
                memset(pred, 0, sizeof pred);
            }
            bitwin w = win_get(&b);
            for (unsigned j = 0; j < sc->ns; j++) {
                component *c = &d->comp[sc->ci[j]];
                unsigned nh = sc->ns == 1 ? 1 : c->h, nv = sc->ns == 1 ? 1 : c->v;
                for (unsigned by = 0; by < nv; by++) {
                    for (unsigned bx = 0; bx < nh; bx++) {
                        memset(coef, 0, sizeof coef);
                        bool dc_only;
                        if (!decode_block(&b, &w, sc->dc[j], sc->ac[j], &pred[j], coef, &dc_only)) {
                            return vp_error_set(d->err, VP_EPARSE,
                                                "JPEG 12-bit: AC coefficient index past 63 "
                                                "(component %u, MCU %llu)",
                                                c->id, (unsigned long long)mcu);
                        }
                        size_t col = (size_t)mx * nh + bx, row = (size_t)my * nv + by;
                        uint16_t *dst = c->plane + row * 8 * c->stride + col * 8;
                        if (dc_only)
                            idct_dc(coef[0], sc->qt[j][0], dst, c->stride);
                        else
                            idct_block(coef, sc->qt[j], dst, c->stride);
                    }
                }
            }
            win_put(&b, w);
            if (b.bad_code)
                return vp_error_set(d->err, VP_EPARSE,
                                    "JPEG 12-bit: Huffman code not in the table (MCU %llu of "
                                    "%llu)",
                                    (unsigned long long)mcu, (unsigned long long)mcux * mcuy);
            if (br_overrun(&b))
                return vp_error_set(d->err, VP_EPARSE,
                                    "JPEG 12-bit: entropy-coded data ends early (MCU %llu of "
                                    "%llu)",
                                    (unsigned long long)mcu, (unsigned long long)mcux * mcuy);
            left--;
        }
    }
    *pp = next_marker(b.p, d->end);
    return VP_OK;
}

/* ---- Marker segments ----------------------------------------------------------------- */

/* B.2.2 frame header, checked against the data set; allocates the component planes. */
static vp_status parse_sof(decoder *d, unsigned m, const uint8_t *p, size_t n)
{
    const img_info *info = d->info;
    if (d->have_sof)
        return vp_error_set(d->err, VP_EPARSE, "JPEG 12-bit: second SOF marker");
    if (n < 6)
        return vp_error_set(d->err, VP_EPARSE, "JPEG 12-bit: SOF%u segment of %zu bytes", m - 0xC0,
                            n + 2);
    unsigned precision = p[0], y = vp_be16(p + 1), x = vp_be16(p + 3), nf = p[5];
    if (precision != PREC)
        return vp_error_set(d->err, VP_EUNSUPPORTED,
                            "JPEG 12-bit: SOF%u sample precision %u (only 12 handled here)",
                            m - 0xC0, precision);
    if (n != 6 + 3 * (size_t)nf)
        return vp_error_set(d->err, VP_EPARSE,
                            "JPEG 12-bit: SOF%u length %zu, expected %u for %u components",
                            m - 0xC0, n + 2, 8 + 3 * nf, nf);
    if (y == 0)
        return vp_error_set(d->err, VP_EUNSUPPORTED,
                            "JPEG 12-bit: number of lines 0 (defined by a DNL marker) is not "
                            "supported");
    if (x == 0)
        return vp_error_set(d->err, VP_EPARSE, "JPEG 12-bit: number of samples per line 0");
    if (x != info->columns || y != info->rows)
        return vp_error_set(d->err, VP_EPARSE,
                            "JPEG 12-bit: frame is %ux%u (columns x rows), the data set says "
                            "%ux%u",
                            x, y, info->columns, info->rows);
    if (nf != info->samples_per_pixel)
        return vp_error_set(d->err, VP_EPARSE,
                            "JPEG 12-bit: frame has %u components, Samples per Pixel is %u", nf,
                            info->samples_per_pixel);
    if (nf == 0 || nf > MAX_COMPONENTS)
        return vp_error_set(d->err, VP_EUNSUPPORTED, "JPEG 12-bit: %u components (1..4)", nf);
    d->hmax = d->vmax = 1;
    for (unsigned i = 0; i < nf; i++) {
        const uint8_t *c = p + 6 + 3 * i;
        component *cp = &d->comp[i];
        *cp = (component){.id = c[0], .h = c[1] >> 4, .v = c[1] & 15, .tq = c[2]};
        for (unsigned j = 0; j < i; j++)
            if (d->comp[j].id == c[0])
                return vp_error_set(d->err, VP_EPARSE, "JPEG 12-bit: component id %u twice", c[0]);
        if (cp->h < 1 || cp->h > 4 || cp->v < 1 || cp->v > 4)
            return vp_error_set(d->err, VP_EPARSE,
                                "JPEG 12-bit: component %u sampling factors %ux%u (1..4)", c[0],
                                cp->h, cp->v);
        if (cp->tq > 3)
            return vp_error_set(d->err, VP_EPARSE,
                                "JPEG 12-bit: component %u quantisation table %u (0..3)", c[0],
                                cp->tq);
        if (cp->h > d->hmax)
            d->hmax = cp->h;
        if (cp->v > d->vmax)
            d->vmax = cp->v;
    }
    d->nf = nf;
    d->mcux = ceil_div(x, 8 * d->hmax);
    d->mcuy = ceil_div(y, 8 * d->vmax);
    for (unsigned i = 0; i < nf; i++) {
        component *cp = &d->comp[i];
        /* Upsampling by an integer factor only (IJG refuses the rest, so does dcmtk). */
        if (d->hmax % cp->h || d->vmax % cp->v)
            return vp_error_set(d->err, VP_EUNSUPPORTED,
                                "JPEG 12-bit: component %u sampled %ux%u against %ux%u "
                                "(fractional ratio)",
                                cp->id, cp->h, cp->v, d->hmax, d->vmax);
        cp->w = ceil_div(x * cp->h, d->hmax);
        cp->hgt = ceil_div(y * cp->v, d->vmax);
        cp->bw = d->mcux * cp->h;
        cp->bh = d->mcuy * cp->v;
        cp->stride = (size_t)cp->bw * 8;
        size_t samples;
        if (vp_mul_size(cp->stride, (size_t)cp->bh * 8, &samples) ||
            vp_mul_size(samples, sizeof(uint16_t), &samples))
            return vp_error_set(d->err, VP_ELIMIT, "JPEG 12-bit: component plane too large");
        cp->plane = vp_malloc(samples);
        if (!cp->plane)
            return vp_error_set(d->err, VP_ENOMEM,
                                "JPEG 12-bit: out of memory for a %zu-byte component plane",
                                samples);
        /* Blocks a hostile stream never codes stay zero rather than uninitialised. */
        memset(cp->plane, 0, samples);
    }
    d->have_sof = true;
    return VP_OK;
}

/* B.2.3 scan header. */
static vp_status parse_sos(decoder *d, const uint8_t *p, size_t n, scan *sc)
{
    if (!d->have_sof)
        return vp_error_set(d->err, VP_EPARSE, "JPEG 12-bit: SOS before SOF");
    if (n < 1 || n != 4 + 2 * (size_t)p[0])
        return vp_error_set(d->err, VP_EPARSE, "JPEG 12-bit: SOS length %zu for %u components",
                            n + 2, n ? p[0] : 0);
    unsigned ns = p[0];
    if (ns < 1 || ns > d->nf)
        return vp_error_set(d->err, VP_EPARSE, "JPEG 12-bit: scan of %u components (1..%u)", ns,
                            d->nf);
    memset(sc, 0, sizeof *sc);
    sc->ns = ns;
    unsigned blocks = 0;
    for (unsigned j = 0; j < ns; j++) {
        unsigned id = p[1 + 2 * j], td = p[2 + 2 * j] >> 4, ta = p[2 + 2 * j] & 15, i;
        for (i = 0; i < d->nf && d->comp[i].id != id; i++)
            ;
        if (i == d->nf)
            return vp_error_set(d->err, VP_EPARSE,
                                "JPEG 12-bit: scan names component %u, not in the frame", id);
        component *c = &d->comp[i];
        if (c->done)
            return vp_error_set(d->err, VP_EPARSE, "JPEG 12-bit: component %u is in two scans", id);
        if (td > 3 || !d->dc[td].defined)
            return vp_error_set(d->err, VP_EPARSE,
                                "JPEG 12-bit: scan uses DC Huffman table %u, which is not "
                                "defined",
                                td);
        if (ta > 3 || !d->ac[ta].defined)
            return vp_error_set(d->err, VP_EPARSE,
                                "JPEG 12-bit: scan uses AC Huffman table %u, which is not "
                                "defined",
                                ta);
        if (!d->dc[td].built && !htab_build(&d->dc[td], true))
            return vp_error_set(d->err, VP_EPARSE,
                                "JPEG 12-bit: DC Huffman table %u is invalid (symbols above 15 "
                                "or too many codes)",
                                td);
        if (!d->ac[ta].built && !htab_build(&d->ac[ta], false))
            return vp_error_set(d->err, VP_EPARSE, "JPEG 12-bit: AC Huffman table %u is invalid",
                                ta);
        if (!d->qt_defined[c->tq])
            return vp_error_set(d->err, VP_EPARSE,
                                "JPEG 12-bit: component %u uses quantisation table %u, which is "
                                "not defined",
                                id, c->tq);
        blocks += ns == 1 ? 1 : (unsigned)c->h * c->v;
        sc->ci[j] = i;
        sc->dc[j] = &d->dc[td];
        sc->ac[j] = &d->ac[ta];
        sc->qt[j] = d->qt[c->tq]; /* IJG latches the table at the component's first scan */
    }
    for (unsigned j = 0; j < ns; j++)
        for (unsigned k = 0; k < j; k++)
            if (sc->ci[j] == sc->ci[k])
                return vp_error_set(d->err, VP_EPARSE, "JPEG 12-bit: component %u twice in a scan",
                                    d->comp[sc->ci[j]].id);
    if (blocks > MAX_BLOCKS_IN_MCU)
        return vp_error_set(d->err, VP_EPARSE,
                            "JPEG 12-bit: %u blocks in an MCU (at most %u, B.2.3)", blocks,
                            MAX_BLOCKS_IN_MCU);
    /* Ss, Se, Ah, Al (p[1 + 2 * ns]...) are 0, 63, 0, 0 in a sequential scan. They are not
     * checked: IJG only warns and decodes the whole block, and files with Se 0 exist
     * (pydicom's JPEG-lossy.dcm), which dcmdjpeg decodes. */
    for (unsigned j = 0; j < ns; j++)
        d->comp[sc->ci[j]].done = true;
    return VP_OK;
}

/* ---- Upsampling and output ------------------------------------------------------------- */

/*
 * Component c to full size (X x Y) in dst, as IJG's default upsampler: 2:1 horizontal
 * ("h2v1") and 2:1 both ways ("h2v2") by its triangle filter when the component is more than
 * 2 samples wide, other integer ratios (and those when narrow) by replication. The filters
 * see only the component's real samples (c->w x c->hgt), its last column and row repeated
 * past the edge, and its first row above the top.
 */
static void upsample(const decoder *d, const component *c, uint16_t *dst)
{
    uint32_t X = d->info->columns, Y = d->info->rows;
    unsigned hr = d->hmax / c->h, vr = d->vmax / c->v;
    uint32_t cw = c->w, ch = c->hgt;
    const uint16_t *pl = c->plane;
    size_t st = c->stride;
    if (hr == 2 && (vr == 1 || vr == 2) && cw > 2) {
        for (uint32_t y = 0; y < Y; y++) {
            uint16_t *o = dst + (size_t)y * X;
            uint32_t iy = y / vr;
            if (vr == 1) {
                const uint16_t *in = pl + (size_t)iy * st;
                for (uint32_t x = 0; x < X; x++) {
                    uint32_t i = x >> 1;
                    int32_t v = in[i];
                    if (x & 1)
                        v = i + 1 < cw ? (v * 3 + in[i + 1] + 2) >> 2 : v;
                    else
                        v = i > 0 ? (v * 3 + in[i - 1] + 1) >> 2 : v;
                    o[x] = (uint16_t)v;
                }
            } else {
                /* The nearer row and the next nearer: above for even output rows. */
                uint32_t iy1 = (y & 1) ? (iy + 1 < ch ? iy + 1 : iy) : (iy > 0 ? iy - 1 : 0);
                const uint16_t *in0 = pl + (size_t)iy * st, *in1 = pl + (size_t)iy1 * st;
                for (uint32_t x = 0; x < X; x++) {
                    uint32_t i = x >> 1;
                    int32_t this_sum = in0[i] * 3 + in1[i];
                    int32_t v;
                    if (x & 1)
                        v = i + 1 < cw ? (this_sum * 3 + in0[i + 1] * 3 + in1[i + 1] + 7) >> 4
                                       : (this_sum * 4 + 7) >> 4;
                    else
                        v = i > 0 ? (this_sum * 3 + in0[i - 1] * 3 + in1[i - 1] + 8) >> 4
                                  : (this_sum * 4 + 8) >> 4;
                    o[x] = (uint16_t)v;
                }
            }
        }
        return;
    }
    for (uint32_t y = 0; y < Y; y++) {
        const uint16_t *in = pl + (size_t)(y / vr) * st;
        uint16_t *o = dst + (size_t)y * X;
        for (uint32_t x = 0; x < X; x++)
            o[x] = in[x / hr];
    }
}

static bool is_ybr(const char *pi)
{
    return !strcmp(pi, "YBR_FULL") || !strcmp(pi, "YBR_FULL_422") || !strcmp(pi, "YBR_PARTIAL_422");
}

static ALWAYS_INLINE void put_le16(uint8_t *o, int32_t v)
{
    uint16_t u = (uint16_t)(v < 0 ? 0 : v > MAXSAMPLE ? MAXSAMPLE : v);
    o[0] = (uint8_t)u;
    o[1] = (uint8_t)(u >> 8);
}

/* IJG's YCbCr to RGB (jdcolor.c's method, JFIF / ITU-R BT.601 full range, 16-bit fixed point). */
#define SCALEBITS 16
#define CFIX(x) ((int64_t)((x) * (1L << SCALEBITS) + 0.5))
#define ONE_HALF ((int64_t)1 << (SCALEBITS - 1))

/* The decoded planes, upsampled, (converted,) interleaved into out as little-endian. */
static vp_status write_output(decoder *d, uint8_t *out, bool convert)
{
    uint32_t X = d->info->columns, Y = d->info->rows;
    unsigned nf = d->nf;
    const uint16_t *src[MAX_COMPONENTS];
    size_t sst[MAX_COMPONENTS];
    uint16_t *tmp[MAX_COMPONENTS] = {0};
    vp_status st = VP_OK;
    for (unsigned i = 0; i < nf; i++) {
        component *c = &d->comp[i];
        if (c->h == d->hmax && c->v == d->vmax) {
            src[i] = c->plane;
            sst[i] = c->stride;
            continue;
        }
        size_t n;
        if (vp_mul_size((size_t)X * Y, sizeof(uint16_t), &n)) {
            st = vp_error_set(d->err, VP_ELIMIT, "JPEG 12-bit: upsampled plane too large");
            goto done;
        }
        tmp[i] = vp_malloc(n);
        if (!tmp[i]) {
            st = vp_error_set(d->err, VP_ENOMEM, "out of memory");
            goto done;
        }
        upsample(d, c, tmp[i]);
        src[i] = tmp[i];
        sst[i] = X;
    }
    for (uint32_t y = 0; y < Y; y++) {
        uint8_t *o = out + (size_t)y * X * nf * 2;
        if (convert) {
            const uint16_t *py = src[0] + y * sst[0], *pb = src[1] + y * sst[1],
                           *pr = src[2] + y * sst[2];
            for (uint32_t x = 0; x < X; x++, o += 6) {
                int64_t yy = py[x], cb = (int64_t)pb[x] - CENTER, cr = (int64_t)pr[x] - CENTER;
                int64_t r = yy + ((CFIX(1.40200) * cr + ONE_HALF) >> SCALEBITS);
                int64_t g =
                    yy + ((-CFIX(0.34414) * cb - CFIX(0.71414) * cr + ONE_HALF) >> SCALEBITS);
                int64_t b = yy + ((CFIX(1.77200) * cb + ONE_HALF) >> SCALEBITS);
                put_le16(o, (int32_t)r);
                put_le16(o + 2, (int32_t)g);
                put_le16(o + 4, (int32_t)b);
            }
        } else if (nf == 1) {
            const uint16_t *p = src[0] + y * sst[0];
            for (uint32_t x = 0; x < X; x++) {
                o[2 * x] = (uint8_t)p[x];
                o[2 * x + 1] = (uint8_t)(p[x] >> 8);
            }
        } else {
            for (uint32_t x = 0; x < X; x++)
                for (unsigned i = 0; i < nf; i++, o += 2) {
                    uint16_t v = src[i][y * sst[i] + x];
                    o[0] = (uint8_t)v;
                    o[1] = (uint8_t)(v >> 8);
                }
        }
    }
done:
    for (unsigned i = 0; i < nf; i++)
        vp_free(tmp[i]);
    return st;
}

/* APP0 "JFIF\0" and APP14 "Adobe" (its transform byte): they tell whether an RGB-labelled
 * stream is really YCbCr, as libjpeg reads them. */
static void parse_app(decoder *d, unsigned m, const uint8_t *p, size_t n)
{
    if (m == 0xE0 && n >= 5 && !memcmp(p, "JFIF\0", 5))
        d->jfif = true;
    if (m == 0xEE && n >= 12 && !memcmp(p, "Adobe", 5)) {
        d->adobe = true;
        d->adobe_transform = p[11];
    }
}

vp_status img_jpeg12_decode(const uint8_t *in, size_t len, const img_info *info, uint8_t *out,
                            size_t out_size, img_info *out_info, vp_error *err)
{
    if (info->bits_allocated != 16)
        return vp_error_set(err, VP_EPARSE,
                            "JPEG 12-bit: stream precision 12, the data set says Bits Allocated "
                            "%u (16 expected)",
                            info->bits_allocated);
    size_t need;
    if (vp_mul_size(info->rows, info->columns, &need) ||
        vp_mul_size(need, (size_t)info->samples_per_pixel * 2, &need) || need > out_size)
        return vp_error_set(err, VP_EINVAL, "JPEG 12-bit: output of %zu bytes too small", out_size);
    if (len < 2 || in[0] != 0xFF || in[1] != 0xD8)
        return vp_error_set(err, VP_EPARSE, "JPEG 12-bit: stream does not start with SOI");
    decoder *d = vp_calloc(1, sizeof *d);
    if (!d)
        return vp_error_set(err, VP_ENOMEM, "out of memory");
    d->in = in;
    d->end = in + len;
    d->info = info;
    d->err = err;
    vp_status st = VP_OK;
    const uint8_t *p = in + 2;
    bool eoi = false;
    while (!eoi) {
        if (p >= d->end)
            break; /* no EOI: fine if every component was decoded (checked below) */
        if (p[0] != 0xFF) {
            st = vp_error_set(err, VP_EPARSE,
                              "JPEG 12-bit: expected a marker at offset %zu, found 0x%02X",
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
            st = vp_error_set(err, VP_EPARSE, "JPEG 12-bit: unexpected FF%02X at offset %zu", m,
                              offset_of(d, p - 2));
            goto done;
        }
        if (d->end - p < 2) {
            st = vp_error_set(err, VP_EPARSE,
                              "JPEG 12-bit: marker FF%02X at offset %zu has no length", m,
                              offset_of(d, p - 2));
            goto done;
        }
        size_t seglen = vp_be16(p);
        if (seglen < 2 || seglen > (size_t)(d->end - p)) {
            st = vp_error_set(err, VP_EPARSE,
                              "JPEG 12-bit: marker FF%02X at offset %zu length %zu, %zu bytes "
                              "left",
                              m, offset_of(d, p - 2), seglen, (size_t)(d->end - p));
            goto done;
        }
        const uint8_t *body = p + 2;
        size_t n = seglen - 2;
        p += seglen;
        if (m == 0xC0 || m == 0xC1) {
            st = parse_sof(d, m, body, n);
        } else if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) {
            st = vp_error_set(err, VP_EUNSUPPORTED,
                              "JPEG 12-bit: SOF%u (FF%02X) is not sequential Huffman DCT "
                              "(progressive, lossless, hierarchical or arithmetic)",
                              m - 0xC0, m);
        } else if (m == 0xC4) {
            st = parse_dht(d, body, n);
        } else if (m == 0xDB) {
            st = parse_dqt(d, body, n);
        } else if (m == 0xCC) {
            st = vp_error_set(err, VP_EUNSUPPORTED, "JPEG 12-bit: arithmetic coding (DAC)");
        } else if (m == 0xDD) {
            if (n != 2)
                st =
                    vp_error_set(err, VP_EPARSE, "JPEG 12-bit: DRI length %zu, expected 4", seglen);
            else
                d->restart_interval = vp_be16(body);
        } else if (m == 0xDE || m == 0xDF) {
            st = vp_error_set(err, VP_EUNSUPPORTED,
                              "JPEG 12-bit: hierarchical mode (FF%02X) is not supported", m);
        } else if (m == 0xDA) {
            scan sc;
            if (!(st = parse_sos(d, body, n, &sc)))
                st = decode_scan(d, &sc, &p);
        } else if (m >= 0xE0 && m <= 0xEF) {
            parse_app(d, m, body, n);
        }
        /* Anything else (COM, DNL, JPGn) carries nothing for us. */
        if (st)
            goto done;
    }
    if (!d->have_sof) {
        st = vp_error_set(err, VP_EPARSE, "JPEG 12-bit: no SOF frame header before %s",
                          eoi ? "EOI" : "the end");
        goto done;
    }
    for (unsigned i = 0; i < d->nf; i++)
        if (!d->comp[i].done) {
            st = vp_error_set(err, VP_EPARSE, "JPEG 12-bit: component %u has no scan (%s)",
                              d->comp[i].id, eoi ? "EOI reached" : "data ends");
            goto done;
        }
    bool convert = false;
    if (d->nf == 3) {
        if (is_ybr(info->photometric))
            convert = true;
        else if (!strcmp(info->photometric, "RGB"))
            convert = d->jfif || (d->adobe && d->adobe_transform == 1);
    }
    if ((st = write_output(d, out, convert)))
        goto done;
    if (out_info) {
        *out_info = *info;
        out_info->planar_configuration = 0;
        if (convert)
            strcpy(out_info->photometric, "RGB");
    }
done:
    for (unsigned i = 0; i < MAX_COMPONENTS; i++)
        vp_free(d->comp[i].plane);
    vp_free(d);
    return st;
}
