/* SPDX-License-Identifier: MIT */
/*
 * Specific Character Set (0008,0005) to UTF-8: PS3.5 6.1 (character repertoires and the ISO/IEC
 * 2022 code extension techniques of 6.1.2.4 and 6.1.2.5) with the Defined Terms of PS3.3
 * C.12.1.1.2 (Tables C.12-2 to C.12-5).
 *
 * Three decoders, chosen by value 1 of the attribute:
 *  - ISO_IR 192: UTF-8 checked by hand; ill-formed sequences become U+FFFD, one per maximal
 *    subpart (Unicode 15, 3.9 "U+FFFD Substitution of Maximal Subparts").
 *  - GB18030 and GBK: stateless variable-length codes through iconv, value by value.
 *  - every other term: an ISO 2022 8-bit decoder (G0 invoked in GL, G1 in GR, PS3.5 6.1.2.5.1)
 *    whose escape sequences are parsed here, by hand, a bounded scan over any bytes. The
 *    characters of each graphic set are collected in runs and converted through iconv, or by
 *    arithmetic for ASCII, Latin-1 and the JIS X 0201 halves.
 *
 * Nothing fails except allocation: bytes that cannot be decoded become U+FFFD.
 *
 * iconv descriptors are cached per thread (a pthread key whose destructor closes them): with
 * glibc 2.36 an iconv_open/iconv_close pair costs about 3,000 instructions (350 ns), more than
 * the whole conversion of a short name (a Greek PN: 2,700 instructions cached, 5,900 not; the
 * Japanese PN of PS3.5 H.3.2: 6,700 against 9,800). Values made only of ASCII never reach
 * iconv, and ASCII between the characters of one set joins their run: one iconv call per value.
 */
#include <assert.h>
#include <errno.h>
#include <iconv.h>
#include <pthread.h>
#include <string.h>

#include "dcm/internal.h"

#define ESC 0x1B

/* ------------------------------------------------------------------------------------------ */
/* iconv descriptors                                                                          */

/* Codes converted through iconv (glibc names). */
enum conv {
    CV_EUC_JP,   /* JIS X 0208 (ISO-IR 87) as EUC-JP code set 1, JIS X 0212 (159) as set 3 */
    CV_EUC_KR,   /* KS X 1001 (ISO-IR 149) */
    CV_GB2312,   /* GB 2312 (ISO-IR 58), EUC-CN */
    CV_LATIN2,   /* ISO 8859-2, ISO-IR 101 */
    CV_LATIN3,   /* ISO 8859-3, ISO-IR 109 */
    CV_LATIN4,   /* ISO 8859-4, ISO-IR 110 */
    CV_CYRILLIC, /* ISO 8859-5, ISO-IR 144 */
    CV_ARABIC,   /* ISO 8859-6, ISO-IR 127 */
    CV_GREEK,    /* ISO 8859-7, ISO-IR 126 */
    CV_HEBREW,   /* ISO 8859-8, ISO-IR 138 */
    CV_LATIN5,   /* ISO 8859-9, ISO-IR 148 */
    CV_LATIN9,   /* ISO 8859-15, ISO-IR 203 */
    CV_THAI,     /* TIS 620-2533, ISO-IR 166 */
    CV_GBK,
    CV_GB18030,
    CV_COUNT
};

static const char *const conv_names[CV_COUNT] = {
    [CV_EUC_JP] = "EUC-JP",       [CV_EUC_KR] = "EUC-KR",     [CV_GB2312] = "GB2312",
    [CV_LATIN2] = "ISO-8859-2",   [CV_LATIN3] = "ISO-8859-3", [CV_LATIN4] = "ISO-8859-4",
    [CV_CYRILLIC] = "ISO-8859-5", [CV_ARABIC] = "ISO-8859-6", [CV_GREEK] = "ISO-8859-7",
    [CV_HEBREW] = "ISO-8859-8",   [CV_LATIN5] = "ISO-8859-9", [CV_LATIN9] = "ISO-8859-15",
    [CV_THAI] = "TIS-620",        [CV_GBK] = "GBK",           [CV_GB18030] = "GB18030",
};

enum cd_state { CD_UNOPENED = 0, CD_OPEN, CD_UNAVAILABLE };

/* One thread's descriptors, opened on first use. */
struct cd_cache {
    iconv_t cd[CV_COUNT];    /* valid where state is CD_OPEN */
    uint8_t state[CV_COUNT]; /* enum cd_state */
};

static pthread_once_t cache_once = PTHREAD_ONCE_INIT;
static pthread_key_t cache_key; /* written once under cache_once */
static bool cache_key_ok;       /* written once under cache_once */

static void cache_free(void *p)
{
    struct cd_cache *c = p;
    for (int i = 0; i < CV_COUNT; i++)
        if (c->state[i] == CD_OPEN)
            iconv_close(c->cd[i]);
    vp_free(c);
}

static void cache_key_init(void)
{
    cache_key_ok = pthread_key_create(&cache_key, cache_free) == 0;
}

/*
 * A descriptor converting conv to UTF-8: this thread's cached one, or, when no cache could be
 * allocated, a new one that *owned tells the caller to close. (iconv_t)-1 when the C library
 * lacks the conversion (the caller then substitutes U+FFFD). VP_ENOMEM only when iconv_open
 * ran out of memory.
 */
static vp_status cd_get(enum conv conv, iconv_t *cd, bool *owned)
{
    *owned = false;
    pthread_once(&cache_once, cache_key_init);
    struct cd_cache *c = cache_key_ok ? pthread_getspecific(cache_key) : NULL;
    if (!c && cache_key_ok) {
        c = vp_malloc(sizeof *c);
        if (c) {
            memset(c, 0, sizeof *c);
            if (pthread_setspecific(cache_key, c) != 0) {
                vp_free(c);
                c = NULL;
            }
        }
    }
    if (c && c->state[conv] == CD_OPEN) {
        *cd = c->cd[conv];
        return VP_OK;
    }
    if (c && c->state[conv] == CD_UNAVAILABLE) {
        *cd = (iconv_t)-1;
        return VP_OK;
    }
    iconv_t d = iconv_open("UTF-8", conv_names[conv]);
    if (d == (iconv_t)-1) {
        if (errno == ENOMEM)
            return VP_ENOMEM;
        if (c)
            c->state[conv] = CD_UNAVAILABLE;
    } else if (c) {
        c->cd[conv] = d;
        c->state[conv] = CD_OPEN;
    } else {
        *owned = true;
    }
    *cd = d;
    return VP_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Output helpers                                                                             */

static vp_status put_fffd(vp_buf *out)
{
    return vp_buf_append(out, "\xEF\xBF\xBD", 3);
}

/* Appends code point cp (at most U+FFFF here) as UTF-8. */
static vp_status put_cp(vp_buf *out, uint32_t cp)
{
    uint8_t b[3];
    if (cp < 0x80)
        return vp_buf_putc(out, (uint8_t)cp);
    if (cp < 0x800) {
        b[0] = (uint8_t)(0xC0 | (cp >> 6));
        b[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return vp_buf_append(out, b, 2);
    }
    b[0] = (uint8_t)(0xE0 | (cp >> 12));
    b[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    b[2] = (uint8_t)(0x80 | (cp & 0x3F));
    return vp_buf_append(out, b, 3);
}

/*
 * Bytes to skip when iconv rejects the character starting with byte b in conv: ASCII is one
 * byte in every code here (runs hold ASCII too), the EUC codes take two GR bytes (three after
 * EUC-JP's SS3, 08/15), and GBK and GB18030 resume at the next byte, which may start a
 * character (as Python's "replace" does).
 */
static size_t char_len(enum conv conv, uint8_t b)
{
    if (b < 0x80)
        return 1;
    switch (conv) {
    case CV_EUC_JP: return b == 0x8F ? 3 : 2;
    case CV_EUC_KR:
    case CV_GB2312: return 2;
    default: return 1;
    }
}

/*
 * Converts n bytes of conv through cd, appending UTF-8. A character iconv rejects becomes one
 * U+FFFD; an incomplete one at the end too. Every round consumes input or stops. Without a
 * descriptor (the C library lacks the code) ASCII is kept and every other character is U+FFFD.
 */
static vp_status feed_iconv(iconv_t cd, enum conv conv, const uint8_t *in, size_t n, vp_buf *out)
{
    if (cd == (iconv_t)-1) {
        for (size_t i = 0; i < n; i += char_len(conv, in[i])) {
            vp_status st = in[i] < 0x80 ? vp_buf_putc(out, in[i]) : put_fffd(out);
            if (st)
                return st;
        }
        return VP_OK;
    }
    iconv(cd, NULL, NULL, NULL, NULL); /* initial shift state */
    char *ip = (char *)(uintptr_t)in;
    size_t il = n;
    while (il > 0) {
        /* 4 output bytes per input byte covers every code here (and U+FFFD per byte). */
        vp_status st = vp_buf_reserve(out, il * 4 + 16);
        if (st)
            return st;
        char *op = (char *)out->data + out->len;
        size_t room = out->cap - out->len - 1, ol = room;
        char *before = ip;
        size_t r = iconv(cd, &ip, &il, &op, &ol);
        int e = errno;
        out->len += room - ol;
        out->data[out->len] = 0;
        if (r != (size_t)-1 || il == 0)
            break;
        if (e == E2BIG && ip != before)
            continue;
        if ((st = put_fffd(out)))
            return st;
        if (e == EINVAL)
            break; /* incomplete character at the end of the input */
        size_t skip = char_len(conv, (uint8_t)*ip);
        skip = skip < il ? skip : il;
        ip += skip;
        il -= skip;
    }
    return VP_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Graphic character sets and Defined Terms (PS3.3 C.12.1.1.2)                                */

/* Graphic character sets that can be designated to G0 or G1. */
enum gset {
    GS_NONE = 0,  /* nothing designated (G1 when value 1 is the default repertoire) */
    GS_ASCII,     /* ISO-IR 6, G0 */
    GS_JIS_ROMAN, /* ISO-IR 14, JIS X 0201 romaji, G0 */
    GS_JIS_KANA,  /* ISO-IR 13, JIS X 0201 katakana, G1 */
    GS_JIS_X0208, /* ISO-IR 87, kanji, two bytes in G0 */
    GS_JIS_X0212, /* ISO-IR 159, supplementary kanji, two bytes in G0 */
    GS_KS_X1001,  /* ISO-IR 149, Hangul and Hanja, two bytes in G1 */
    GS_GB2312,    /* ISO-IR 58, simplified Chinese, two bytes in G1 */
    GS_LATIN1,    /* ISO-IR 100, ISO 8859-1 right half, G1 */
    GS_LATIN2,    /* ISO-IR 101 */
    GS_LATIN3,    /* ISO-IR 109 */
    GS_LATIN4,    /* ISO-IR 110 */
    GS_CYRILLIC,  /* ISO-IR 144 */
    GS_ARABIC,    /* ISO-IR 127 */
    GS_GREEK,     /* ISO-IR 126 */
    GS_HEBREW,    /* ISO-IR 138 */
    GS_LATIN5,    /* ISO-IR 148 */
    GS_LATIN9,    /* ISO-IR 203 */
    GS_THAI,      /* ISO-IR 166 */
    GS_COUNT
};

/* The iconv code each set's characters are converted with; -1 for those decoded here. */
static const int8_t gset_conv[GS_COUNT] = {
    [GS_NONE] = -1,
    [GS_ASCII] = -1,
    [GS_JIS_ROMAN] = -1,
    [GS_JIS_KANA] = -1,
    [GS_JIS_X0208] = CV_EUC_JP,
    [GS_JIS_X0212] = CV_EUC_JP,
    [GS_KS_X1001] = CV_EUC_KR,
    [GS_GB2312] = CV_GB2312,
    [GS_LATIN1] = -1,
    [GS_LATIN2] = CV_LATIN2,
    [GS_LATIN3] = CV_LATIN3,
    [GS_LATIN4] = CV_LATIN4,
    [GS_CYRILLIC] = CV_CYRILLIC,
    [GS_ARABIC] = CV_ARABIC,
    [GS_GREEK] = CV_GREEK,
    [GS_HEBREW] = CV_HEBREW,
    [GS_LATIN5] = CV_LATIN5,
    [GS_LATIN9] = CV_LATIN9,
    [GS_THAI] = CV_THAI,
};

/*
 * Escape sequences designating a set (the bytes after ESC), from PS3.3 Table C.12-3
 * (single-byte sets with code extensions) and Table C.12-4 (multi-byte sets with code
 * extensions). 02/08 designates G0, 02/09 and 02/13 G1 (ISO/IEC 2022 13.3).
 */
static const struct {
    char seq[4]; /* intermediate and final bytes, NUL-padded */
    uint8_t g;   /* 0 for G0, 1 for G1 */
    uint8_t set; /* enum gset */
} escapes[] = {
    {"(B", 0, GS_ASCII},      /* ISO 2022 IR 6 */
    {"(J", 0, GS_JIS_ROMAN},  /* ISO 2022 IR 13, romaji */
    {")I", 1, GS_JIS_KANA},   /* ISO 2022 IR 13, katakana */
    {"$B", 0, GS_JIS_X0208},  /* ISO 2022 IR 87 */
    {"$(D", 0, GS_JIS_X0212}, /* ISO 2022 IR 159 */
    {"$)C", 1, GS_KS_X1001},  /* ISO 2022 IR 149 */
    {"$)A", 1, GS_GB2312},    /* ISO 2022 IR 58 */
    {"-A", 1, GS_LATIN1},     /* ISO 2022 IR 100 */
    {"-B", 1, GS_LATIN2},     /* ISO 2022 IR 101 */
    {"-C", 1, GS_LATIN3},     /* ISO 2022 IR 109 */
    {"-D", 1, GS_LATIN4},     /* ISO 2022 IR 110 */
    {"-L", 1, GS_CYRILLIC},   /* ISO 2022 IR 144 */
    {"-G", 1, GS_ARABIC},     /* ISO 2022 IR 127 */
    {"-F", 1, GS_GREEK},      /* ISO 2022 IR 126 */
    {"-H", 1, GS_HEBREW},     /* ISO 2022 IR 138 */
    {"-M", 1, GS_LATIN5},     /* ISO 2022 IR 148 */
    {"-b", 1, GS_LATIN9},     /* ISO 2022 IR 203 */
    {"-T", 1, GS_THAI},       /* ISO 2022 IR 166 */
};

enum kind {
    K_ISO2022, /* ISO 2022 compatible: every term but the three below */
    K_UTF8,    /* ISO_IR 192 */
    K_GB18030,
    K_GBK,
};

/*
 * Defined Terms. The single-byte sets (Tables C.12-2, C.12-3) initially designate their GL half
 * to G0 and their GR half to G1 (PS3.5 6.1.2.5.4 b, c). Table C.12-4 lists the multi-byte sets
 * for values 2 to n only; as value 1 (seen in the wild, e.g. a lone "ISO 2022 IR 149") the G1
 * sets are taken as initially designated, which decodes escape-less EUC-KR and EUC-CN text.
 */
#define T(name) name, sizeof(name) - 1

static const struct term {
    const char *name;
    uint8_t len;  /* strlen(name) */
    uint8_t kind; /* enum kind */
    uint8_t g0;   /* initial G0 (K_ISO2022) */
    uint8_t g1;   /* initial G1 (K_ISO2022) */
} terms[] = {
    {T("ISO_IR 6"), K_ISO2022, GS_ASCII, GS_NONE},
    {T("ISO_IR 100"), K_ISO2022, GS_ASCII, GS_LATIN1},
    {T("ISO_IR 101"), K_ISO2022, GS_ASCII, GS_LATIN2},
    {T("ISO_IR 109"), K_ISO2022, GS_ASCII, GS_LATIN3},
    {T("ISO_IR 110"), K_ISO2022, GS_ASCII, GS_LATIN4},
    {T("ISO_IR 144"), K_ISO2022, GS_ASCII, GS_CYRILLIC},
    {T("ISO_IR 127"), K_ISO2022, GS_ASCII, GS_ARABIC},
    {T("ISO_IR 126"), K_ISO2022, GS_ASCII, GS_GREEK},
    {T("ISO_IR 138"), K_ISO2022, GS_ASCII, GS_HEBREW},
    {T("ISO_IR 148"), K_ISO2022, GS_ASCII, GS_LATIN5},
    {T("ISO_IR 203"), K_ISO2022, GS_ASCII, GS_LATIN9},
    {T("ISO_IR 13"), K_ISO2022, GS_JIS_ROMAN, GS_JIS_KANA},
    {T("ISO_IR 166"), K_ISO2022, GS_ASCII, GS_THAI},
    {T("ISO 2022 IR 6"), K_ISO2022, GS_ASCII, GS_NONE},
    {T("ISO 2022 IR 100"), K_ISO2022, GS_ASCII, GS_LATIN1},
    {T("ISO 2022 IR 101"), K_ISO2022, GS_ASCII, GS_LATIN2},
    {T("ISO 2022 IR 109"), K_ISO2022, GS_ASCII, GS_LATIN3},
    {T("ISO 2022 IR 110"), K_ISO2022, GS_ASCII, GS_LATIN4},
    {T("ISO 2022 IR 144"), K_ISO2022, GS_ASCII, GS_CYRILLIC},
    {T("ISO 2022 IR 127"), K_ISO2022, GS_ASCII, GS_ARABIC},
    {T("ISO 2022 IR 126"), K_ISO2022, GS_ASCII, GS_GREEK},
    {T("ISO 2022 IR 138"), K_ISO2022, GS_ASCII, GS_HEBREW},
    {T("ISO 2022 IR 148"), K_ISO2022, GS_ASCII, GS_LATIN5},
    {T("ISO 2022 IR 203"), K_ISO2022, GS_ASCII, GS_LATIN9},
    {T("ISO 2022 IR 13"), K_ISO2022, GS_JIS_ROMAN, GS_JIS_KANA},
    {T("ISO 2022 IR 166"), K_ISO2022, GS_ASCII, GS_THAI},
    {T("ISO 2022 IR 87"), K_ISO2022, GS_ASCII, GS_NONE},
    {T("ISO 2022 IR 159"), K_ISO2022, GS_ASCII, GS_NONE},
    {T("ISO 2022 IR 149"), K_ISO2022, GS_ASCII, GS_KS_X1001},
    {T("ISO 2022 IR 58"), K_ISO2022, GS_ASCII, GS_GB2312},
    {T("ISO_IR 192"), K_UTF8, GS_NONE, GS_NONE},
    {T("GB18030"), K_GB18030, GS_NONE, GS_NONE},
    {T("GBK"), K_GBK, GS_NONE, GS_NONE},
};

#undef T

/* Upper case, with '_' and '-' read as space: common misspellings ("ISO IR 100",
 * "ISO_2022_IR_87", "iso_ir 192") still name their term. */
static char term_fold(char c)
{
    if (c == '_' || c == '-')
        return ' ';
    if (c >= 'a' && c <= 'z')
        return (char)(c - 'a' + 'A');
    return c;
}

static const struct term *term_lookup(const char *s, size_t n)
{
    for (size_t t = 0; t < sizeof terms / sizeof terms[0]; t++) {
        const char *name = terms[t].name;
        /* Terms differ mostly in their last digits: compare backwards. */
        if (terms[t].len != n)
            continue;
        size_t i = n;
        while (i > 0 && term_fold(s[i - 1]) == term_fold(name[i - 1]))
            i--;
        if (i == 0)
            return &terms[t];
    }
    return NULL;
}

/* What a Specific Character Set value asks for. */
struct spec {
    uint8_t kind;       /* enum kind */
    uint8_t g0;         /* G0 at the start of the value and after each delimiter */
    uint8_t g1;         /* G1 likewise; GS_NONE when nothing is designated */
    uint8_t gr_of_none; /* set decoding GR bytes while G1 has nothing designated */
};

/*
 * Reads the (0008,0005) value: backslash-separated terms, each trimmed of spaces (and NULs,
 * which some writers pad with). An empty or unknown value 1 means the default repertoire
 * (PS3.5 6.1.2.5.4 c: "If value 1 ... is empty, ISO-IR 6 (ASCII) is assumed as G0, and G1 is
 * undefined"). ISO_IR 192, GB18030 and GBK take no code extensions (6.1.2.5.4 d), so the values
 * after them, and they as values 2 to n, are ignored.
 *
 * GR bytes while G1 has nothing designated break 6.1.2.5.3; they are read leniently as
 * ISO 8859-1 (as pydicom and most readers do, since unlabelled Latin-1 is the commonest fault),
 * except when values 2 to n name KS X 1001 or GB 2312: then as that set, since files that
 * declare "\ISO 2022 IR 149" but omit the escape sequences are common.
 */
static void spec_parse(const char *cs, size_t len, struct spec *sp)
{
    *sp = (struct spec){K_ISO2022, GS_ASCII, GS_NONE, GS_LATIN1};
    if (!cs)
        len = 0;
    size_t pos = 0;
    for (unsigned k = 0; pos <= len; k++) {
        size_t end = pos;
        while (end < len && cs[end] != '\\')
            end++;
        size_t a = pos, b = end;
        while (a < b && (cs[a] == ' ' || cs[a] == 0))
            a++;
        while (b > a && (cs[b - 1] == ' ' || cs[b - 1] == 0))
            b--;
        const struct term *t = a < b ? term_lookup(cs + a, b - a) : NULL;
        if (k == 0) {
            if (t) {
                sp->kind = t->kind;
                sp->g0 = t->g0;
                sp->g1 = t->g1;
            }
            if (sp->kind != K_ISO2022)
                return;
        } else if (t && (t->g1 == GS_KS_X1001 || t->g1 == GS_GB2312) &&
                   sp->gr_of_none == GS_LATIN1) {
            sp->gr_of_none = t->g1;
        }
        pos = end + 1;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* ISO 2022 decoder (PS3.5 6.1.2.5)                                                           */

#define RUN_BYTES 256

/*
 * State of one conversion: characters waiting to go through iconv together, and the output.
 * Every iconv code used here keeps ASCII (and the C0 controls) as they are, so ASCII between
 * characters of a run joins the run rather than ending it: a value usually costs one iconv call.
 */
struct dec {
    vp_buf *out;
    vp_status st;           /* first error; later output calls do nothing */
    int8_t run_conv;        /* enum conv of the run's bytes (valid when run_n > 0) */
    size_t run_n;           /* bytes in run */
    uint8_t run[RUN_BYTES]; /* whole characters in run_conv's code */
};

static void flush(struct dec *d)
{
    if (d->run_n == 0 || d->st)
        return;
    iconv_t cd;
    bool owned;
    d->st = cd_get((enum conv)d->run_conv, &cd, &owned);
    if (d->st == VP_OK)
        d->st = feed_iconv(cd, (enum conv)d->run_conv, d->run, d->run_n, d->out);
    if (owned)
        iconv_close(cd);
    d->run_n = 0;
}

/* Queues one character of an iconv-converted set: k bytes in the set's iconv code. */
static void push(struct dec *d, uint8_t set, const uint8_t *b, size_t k)
{
    int8_t conv = gset_conv[set];
    assert(conv >= 0);
    if (d->run_n && (d->run_conv != conv || d->run_n + k > RUN_BYTES))
        flush(d);
    d->run_conv = conv;
    memcpy(d->run + d->run_n, b, k);
    d->run_n += k;
}

/* Appends an ASCII byte (graphic or control), to the pending run if there is one. */
static void emit_byte(struct dec *d, uint8_t c)
{
    if (d->run_n && d->run_n < RUN_BYTES) {
        d->run[d->run_n++] = c;
        return;
    }
    flush(d);
    if (d->st == VP_OK)
        d->st = vp_buf_putc(d->out, c);
}

static void emit_cp(struct dec *d, uint32_t cp)
{
    flush(d);
    if (d->st == VP_OK)
        d->st = put_cp(d->out, cp);
}

static void emit_fffd(struct dec *d)
{
    emit_cp(d, 0xFFFD);
}

/*
 * Parses the escape sequence at p[0] == ESC, n >= 1 bytes available. ISO/IEC 2022 13.1: ESC,
 * any number of intermediate bytes 02/00-02/15, one final byte 03/00-07/14. Sets *len to the
 * bytes consumed (at least 1) and returns the index into escapes, or -1 when the sequence is
 * unknown, malformed or truncated. A malformed sequence consumes ESC and its intermediates; the
 * byte that broke it is left to be read as data (it may be CR). A value delimiter (05/12, and
 * 05/14 or 03/13 in PN) is a final byte by syntax but is taken as breaking the sequence, so
 * that a stray ESC never hides a delimiter.
 */
static int parse_escape(const uint8_t *p, size_t n, size_t *len, const bool delim[128])
{
    size_t i = 1;
    while (i < n && p[i] >= 0x20 && p[i] <= 0x2F)
        i++;
    if (i >= n || p[i] < 0x30 || p[i] > 0x7E || delim[p[i]]) {
        *len = i;
        return -1;
    }
    *len = ++i;
    size_t k = i - 1; /* bytes after ESC */
    for (size_t e = 0; e < sizeof escapes / sizeof escapes[0]; e++)
        if (escapes[e].seq[0] == p[1] && strlen(escapes[e].seq) == k &&
            memcmp(escapes[e].seq, p + 1, k) == 0)
            return (int)e;
    return -1;
}

static bool is_94(uint8_t c)
{
    return c >= 0x21 && c <= 0x7E;
}

static bool is_94_gr(uint8_t c)
{
    return c >= 0xA1 && c <= 0xFE;
}

/*
 * Decodes text under ISO 2022 8-bit code with redesignation (PS3.5 6.1.2.5.4 c; single-valued
 * terms are level 1 of the same code, so the same decoder serves them). Escape sequences are
 * honoured in single-valued terms too: ESC is no graphic character, and files that label
 * extended text with a lone single-byte term are better read than shown as escapes.
 *
 * PS3.5 6.1.2.5.3 requires value 1's sets to be active before CR, LF, FF and any other control
 * character but ESC, before the 05/12 separating values, and before '^' and '=' in PN; the
 * escape sequences must be repeated after them. So designations return to the initial ones
 * after each of these delimiters.
 *
 * The bytes of a two-byte G0 set (JIS X 0208) include 05/14 and 03/13: '^' and '=' only
 * delimit when read as single-byte GL characters (the hiragana 02/04 05/14 of PS3.5 H.3.1 is
 * no delimiter). 05/12 delimits wherever it is: the repertoire of SH, LO, PN and UC excludes
 * "character code 5CH" (PS3.5 Table 6.2-1), and reading it at byte level, as the value count
 * and the value accessors do, keeps decoding a whole value the same as decoding each value.
 */
static vp_status iso2022_decode(const struct spec *sp, enum dcm_vr vr, const uint8_t *in, size_t n,
                                vp_buf *out)
{
    /* '\' separates values except in LT, ST and UT, where it is a character (PS3.5 6.2). */
    bool backslash_delim = vr != DCM_VR_LT && vr != DCM_VR_ST && vr != DCM_VR_UT;
    bool pn = vr == DCM_VR_PN;
    bool delim[128] = {false};
    delim['\\'] = backslash_delim;
    delim['^'] = delim['='] = pn;
    uint8_t g0 = sp->g0, g1 = sp->g1;
    struct dec d = {.out = out, .st = VP_OK, .run_conv = -1, .run_n = 0};
    size_t i = 0;
    while (i < n && d.st == VP_OK) {
        uint8_t c = in[i];
        if (c == ESC) {
            size_t len;
            int e = parse_escape(in + i, n - i, &len, delim);
            if (e < 0) {
                emit_fffd(&d);
            } else if (escapes[e].g == 0) {
                g0 = escapes[e].set;
            } else {
                g1 = escapes[e].set;
            }
            i += len;
            continue;
        }
        if (c < 0x20 || c == 0x7F) {
            /* C0 control characters (and DEL) are the same in every set. */
            emit_byte(&d, c);
            if (c != 0x7F) {
                g0 = sp->g0;
                g1 = sp->g1;
            }
            i++;
            continue;
        }
        if (c < 0x80) {
            /* GL: G0. SPACE 02/00 is SPACE whatever the set (ISO/IEC 2022 6.3.3). */
            if ((g0 == GS_JIS_X0208 || g0 == GS_JIS_X0212) && c != 0x20 &&
                !(c == '\\' && backslash_delim)) {
                uint8_t c2 = i + 1 < n ? in[i + 1] : 0;
                if (is_94(c2) && !(c2 == '\\' && backslash_delim)) {
                    uint8_t b[3] = {0x8F, (uint8_t)(c | 0x80), (uint8_t)(c2 | 0x80)};
                    if (g0 == GS_JIS_X0212)
                        push(&d, g0, b, 3); /* EUC-JP code set 3: SS3 and two bytes */
                    else
                        push(&d, g0, b + 1, 2); /* EUC-JP code set 1 */
                    i += 2;
                } else {
                    emit_fffd(&d); /* truncated two-byte character */
                    i++;
                }
                continue;
            }
            if (delim[c]) {
                emit_byte(&d, c);
                g0 = sp->g0;
                g1 = sp->g1;
            } else if (g0 == GS_JIS_ROMAN && c == 0x5C) {
                emit_cp(&d, 0x00A5); /* YEN SIGN (PS3.5 6.1.2.3 note 3) */
            } else if (g0 == GS_JIS_ROMAN && c == 0x7E) {
                emit_cp(&d, 0x203E); /* OVERLINE */
            } else {
                emit_byte(&d, c);
            }
            i++;
            continue;
        }
        /* GR: G1. */
        uint8_t set = g1 == GS_NONE ? sp->gr_of_none : g1;
        if (set == GS_KS_X1001 || set == GS_GB2312) {
            if (is_94_gr(c) && i + 1 < n && is_94_gr(in[i + 1])) {
                push(&d, set, in + i, 2); /* EUC code set 1: the GR bytes as they are */
                i += 2;
            } else {
                emit_fffd(&d);
                i++;
            }
        } else if (set == GS_JIS_KANA) {
            if (c >= 0xA1 && c <= 0xDF)
                emit_cp(&d, 0xFF61 + (uint32_t)(c - 0xA1)); /* halfwidth katakana block */
            else
                emit_fffd(&d);
            i++;
        } else if (set == GS_LATIN1) {
            emit_cp(&d, c); /* ISO 8859-1 is the first 256 code points */
            i++;
        } else {
            push(&d, set, &c, 1);
            i++;
        }
    }
    flush(&d);
    return d.st;
}

/* ------------------------------------------------------------------------------------------ */
/* ISO_IR 192, GB18030, GBK                                                                   */

size_t dcm__utf8_len(const uint8_t *p, size_t n, size_t *subpart)
{
    uint8_t c = p[0], lo = 0x80, hi = 0xBF;
    size_t need, sub;
    if (!subpart)
        subpart = &sub;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        need = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        if (c == 0xE0)
            lo = 0xA0; /* no overlong forms */
        if (c == 0xED)
            hi = 0x9F; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        if (c == 0xF0)
            lo = 0x90;
        if (c == 0xF4)
            hi = 0x8F; /* nothing above U+10FFFF */
    } else {
        *subpart = 1;
        return 0;
    }
    size_t k = 1;
    while (k < need && k < n && p[k] >= (k == 1 ? lo : 0x80) && p[k] <= (k == 1 ? hi : 0xBF))
        k++;
    if (k == need)
        return need;
    *subpart = k;
    return 0;
}

static vp_status utf8_decode(const uint8_t *in, size_t n, vp_buf *out)
{
    size_t start = 0, i = 0;
    while (i < n) {
        if (in[i] < 0x80) {
            i++;
            continue;
        }
        size_t sub, len = dcm__utf8_len(in + i, n - i, &sub);
        if (len) {
            i += len;
            continue;
        }
        vp_status st = vp_buf_append(out, in + start, i - start);
        if (st || (st = put_fffd(out)))
            return st;
        i += sub;
        start = i;
    }
    return vp_buf_append(out, in + start, n - start);
}

/*
 * GB18030 and GBK. Their trail bytes include 05/12, but the repertoire of SH, LO, PN and UC
 * excludes character code 5CH (PS3.5 Table 6.2-1), so there every 05/12 separates values and
 * each value is decoded alone, as the value accessors see it.
 */
static vp_status gb_decode(enum conv conv, enum dcm_vr vr, const uint8_t *in, size_t n, vp_buf *out)
{
    bool split = vr != DCM_VR_LT && vr != DCM_VR_ST && vr != DCM_VR_UT;
    iconv_t cd;
    bool owned;
    vp_status st = cd_get(conv, &cd, &owned);
    size_t pos = 0;
    while (st == VP_OK) {
        const uint8_t *bs = split ? memchr(in + pos, '\\', n - pos) : NULL;
        size_t end = bs ? (size_t)(bs - in) : n;
        st = feed_iconv(cd, conv, in + pos, end - pos, out);
        if (st || !bs)
            break;
        st = vp_buf_putc(out, '\\');
        pos = end + 1;
    }
    if (owned)
        iconv_close(cd);
    return st;
}

/* ------------------------------------------------------------------------------------------ */

vp_status dcm_text_to_utf8(const char *charset, size_t charset_len, enum dcm_vr vr,
                           const uint8_t *in, size_t n, vp_buf *out)
{
    if (n == 0)
        return VP_OK;
    struct spec sp;
    spec_parse(charset, charset_len, &sp);

    /* ASCII is ASCII in every term but JIS X 0201's romaji: copy it without decoding. ESC
     * only starts a sequence in the ISO 2022 terms. */
    bool iso2022 = sp.kind == K_ISO2022;
    if (!iso2022 || sp.g0 == GS_ASCII) {
        size_t i = 0;
        while (i < n && in[i] < 0x80 && !(iso2022 && in[i] == ESC))
            i++;
        if (i == n)
            return vp_buf_append(out, in, n);
    }
    switch ((enum kind)sp.kind) {
    case K_UTF8: return utf8_decode(in, n, out);
    case K_GB18030: return gb_decode(CV_GB18030, vr, in, n, out);
    case K_GBK: return gb_decode(CV_GBK, vr, in, n, out);
    case K_ISO2022: break;
    }
    return iso2022_decode(&sp, vr, in, n, out);
}
