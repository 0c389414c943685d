/* SPDX-License-Identifier: MIT */
/*
 * DICOM JSON writer (PS3.18 Annex F, the DICOM JSON Model): one JSON object per data set, keys
 * the eight upper-case hex digits of each tag in ascending order (F.2.2), each attribute an
 * object with "vr" and at most one of "Value", "InlineBinary" or "BulkDataURI". Streams into a
 * vp_buf without building a tree; text is converted to UTF-8 (RFC 8259 8.1) and any byte that
 * would not be well-formed UTF-8 becomes U+FFFD.
 *
 * Choices where the standard leaves room, each also noted where it is made:
 * - Group Length (gggg,0000) elements are left out (F.2.2 "shall not be included").
 * - IS and DS values are JSON numbers when they are numbers, with the original digits kept;
 *   text that is no number stays a JSON string, which F.2.3 allows "to preserve the original
 *   format". SV and UV are JSON numbers with all their digits (F.2.3 allows either).
 * - FL/FD NaN and infinities have no JSON number form (RFC 8259 6): they are written as the
 *   strings "NaN", "Infinity" and "-Infinity", which dcm_json_read accepts back.
 * - Encapsulated pixel data is one InlineBinary holding the items of its Value Field (PS3.5
 *   A.4: Basic Offset Table item and fragment items, without the sequence delimiter), the
 *   same bytes pydicom exposes.
 * - Empty sequences and elements whose only value is empty carry only "vr" (F.2.5).
 * - Values are split at every 0x5C byte of the encoded value (F.2.4), then each is converted.
 * - opts->bulk_threshold applies to the InlineBinary VRs (OB OD OF OL OV OW UN) and to
 *   encapsulated pixel data; longer values, and values that were not loaded, become a
 *   BulkDataURI (F.2.6) when opts->bulk_uri_prefix is set, else are left out (only "vr").
 * - A UN element read as a sequence (PS3.5 6.2.2) is written as the SQ it holds.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dcm/internal.h"

struct jw {
    vp_buf *out;               /* destination */
    const dcm_json_opts *opts; /* never NULL */
    vp_buf text;               /* one value converted to UTF-8 */
    vp_buf num;                /* one IS/DS value rewritten as a JSON number */
    vp_buf path;               /* BulkDataURI path of the enclosing items: "SSSSSSSS/i/" */
    unsigned depth;            /* indentation level for opts->pretty */
    vp_status st;              /* first failure; output after it is dropped */
};

/* ---- output ---- */

static void put(struct jw *w, const void *p, size_t n)
{
    if (w->st == VP_OK)
        w->st = vp_buf_append(w->out, p, n);
}

static void put_str(struct jw *w, const char *s)
{
    put(w, s, strlen(s));
}

static void put_ch(struct jw *w, char c)
{
    if (w->st == VP_OK)
        w->st = vp_buf_putc(w->out, (uint8_t)c);
}

static void newline(struct jw *w)
{
    if (!w->opts->pretty)
        return;
    put_ch(w, '\n');
    for (unsigned i = 0; i < w->depth; i++)
        put(w, "  ", 2);
}

/* Opens an object or array: the caller writes members, each preceded by member(). */
static void jbegin(struct jw *w, char c)
{
    put_ch(w, c);
    w->depth++;
}

static void jend(struct jw *w, char c, bool empty)
{
    w->depth--;
    if (!empty)
        newline(w);
    put_ch(w, c);
}

static void member(struct jw *w, size_t index)
{
    if (index)
        put_ch(w, ',');
    newline(w);
}

/* A member name; the names used here need no escaping. */
static void key(struct jw *w, const char *k)
{
    put_ch(w, '"');
    put_str(w, k);
    put_str(w, w->opts->pretty ? "\": " : "\":");
}

/* A JSON string (RFC 8259 7): quote, backslash and control characters escaped; bytes that are
 * not well-formed UTF-8 each become U+FFFD so the output is always valid UTF-8 (8.1). */
static void put_jstring(struct jw *w, const uint8_t *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    put_ch(w, '"');
    size_t i = 0, run = 0; /* run: start of bytes to copy unchanged */
    while (i < n) {
        uint8_t c = p[i];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            i++;
            continue;
        }
        size_t len = c >= 0x80 ? dcm__utf8_len(p + i, n - i, NULL) : 0;
        if (len) {
            i += len;
            continue;
        }
        put(w, p + run, i - run);
        switch (c) {
        case '"': put_str(w, "\\\""); break;
        case '\\': put_str(w, "\\\\"); break;
        case '\b': put_str(w, "\\b"); break;
        case '\f': put_str(w, "\\f"); break;
        case '\n': put_str(w, "\\n"); break;
        case '\r': put_str(w, "\\r"); break;
        case '\t': put_str(w, "\\t"); break;
        default:
            if (c < 0x20) {
                char u[7] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15], 0};
                put_str(w, u);
            } else {
                put_str(w, "\xEF\xBF\xBD");
            }
        }
        run = ++i;
    }
    put(w, p + run, n - run);
    put_ch(w, '"');
}

static void put_base64(struct jw *w, const uint8_t *p, size_t n)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char q[4];
    size_t i = 0;
    for (; i + 3 <= n && w->st == VP_OK; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        q[0] = b64[v >> 18];
        q[1] = b64[(v >> 12) & 63];
        q[2] = b64[(v >> 6) & 63];
        q[3] = b64[v & 63];
        put(w, q, 4);
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        q[0] = b64[v >> 18];
        q[1] = b64[(v >> 12) & 63];
        q[2] = q[3] = '=';
        put(w, q, 4);
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        q[0] = b64[v >> 18];
        q[1] = b64[(v >> 12) & 63];
        q[2] = b64[(v >> 6) & 63];
        q[3] = '=';
        put(w, q, 4);
    }
}

/* ---- values ---- */

static bool is_single_valued(enum dcm_vr vr)
{
    /* PS3.5 6.4: LT, ST, UT and UR always have VM 1; a backslash is part of the text. */
    return vr == DCM_VR_LT || vr == DCM_VR_ST || vr == DCM_VR_UT || vr == DCM_VR_UR;
}

/*
 * End of the raw value starting at p: the next 0x5C byte. F.2.4: "the bit combination 05/12
 * (0x5C) is used to separate Values", whatever character it shows in the character set; the
 * split is made on the encoded bytes, as dcm_element_vm and the value accessors make it, and
 * each value is converted to UTF-8 on its own (PS3.5 6.1.2.5.3 makes the initial character
 * sets active again before every delimiter).
 */
static size_t value_end(const uint8_t *p, size_t n)
{
    const uint8_t *bs = n ? memchr(p, '\\', n) : NULL;
    return bs ? (size_t)(bs - p) : n;
}

/* Converts one raw value to UTF-8 in w->text, trimmed as PS3.5 6.2 makes insignificant:
 * trailing spaces (and NULs, the UI padding) always, leading spaces except in LT, ST, UT. */
static void value_utf8(struct jw *w, const dcm_dataset *ds, enum dcm_vr vr, const uint8_t *p,
                       size_t n)
{
    vp_buf_reset(&w->text);
    if (vr != DCM_VR_LT && vr != DCM_VR_ST && vr != DCM_VR_UT)
        while (n && p[0] == ' ') {
            p++;
            n--;
        }
    while (n && (p[n - 1] == ' ' || p[n - 1] == 0))
        n--;
    if (!n || w->st)
        return;
    if (dcm_vr_is_text(vr)) {
        const char *cs;
        size_t cs_len;
        dcm_dataset_charset(ds, &cs, &cs_len);
        w->st = dcm_text_to_utf8(cs, cs_len, vr, p, n, &w->text);
        return;
    }
    /* The other string VRs have the default repertoire only (PS3.5 6.1.2.3) and no code
     * extensions: a byte outside it is read as ISO 8859-1 (as pydicom does), which
     * dcm_json_read inverts exactly. */
    vp_status st = vp_buf_reserve(&w->text, 2 * n);
    for (size_t i = 0; i < n && st == VP_OK; i++) {
        if (p[i] < 0x80) {
            st = vp_buf_putc(&w->text, p[i]);
        } else {
            uint8_t u[2] = {(uint8_t)(0xC0 | p[i] >> 6), (uint8_t)(0x80 | (p[i] & 0x3F))};
            st = vp_buf_append(&w->text, u, 2);
        }
    }
    w->st = st;
}

/*
 * Rewrites a DICOM IS or DS value (PS3.5 6.2: optional sign, digits with an optional '.' and
 * fraction, optional exponent) as a JSON number (RFC 8259 6) into w->num: a '+' sign and
 * leading zeros dropped, "0" supplied before a bare fraction (".5" -> 0.5) and a bare trailing
 * '.' dropped ("1." -> 1). The digits are otherwise kept as written, so no precision is lost.
 * Returns false when the text is no number.
 */
static bool number_to_json(struct jw *w, const uint8_t *s, size_t n)
{
    vp_buf_reset(&w->num);
    size_t i = 0;
    bool neg = false;
    if (i < n && (s[i] == '+' || s[i] == '-'))
        neg = s[i++] == '-';
    size_t int_at = i;
    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++;
    size_t int_end = i, frac_at = i, frac_end = i;
    if (i < n && s[i] == '.') {
        frac_at = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        frac_end = i;
    }
    if (int_end == int_at && frac_end == frac_at)
        return false; /* no digits */
    size_t exp_at = i, exp_end = i;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        size_t d = i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == d)
            return false;
        exp_end = i;
    }
    if (i != n)
        return false;
    while (int_at + 1 < int_end && s[int_at] == '0')
        int_at++;
    vp_status st = VP_OK;
    if (neg)
        st = vp_buf_putc(&w->num, '-');
    if (!st)
        st = int_end > int_at ? vp_buf_append(&w->num, s + int_at, int_end - int_at)
                              : vp_buf_putc(&w->num, '0');
    if (!st && frac_end > frac_at) {
        st = vp_buf_putc(&w->num, '.');
        if (!st)
            st = vp_buf_append(&w->num, s + frac_at, frac_end - frac_at);
    }
    if (!st && exp_end > exp_at)
        st = vp_buf_append(&w->num, s + exp_at, exp_end - exp_at);
    if (st && !w->st)
        w->st = st;
    return st == VP_OK;
}

/* Shortest decimal that reads back to the same value (FL as float, FD as double). NaN and
 * infinities have no JSON number (RFC 8259 6): written as strings, see the file comment. */
static void put_float(struct jw *w, double d, bool single)
{
    if (isnan(d)) {
        put_str(w, "\"NaN\"");
        return;
    }
    if (isinf(d)) {
        put_str(w, d < 0 ? "\"-Infinity\"" : "\"Infinity\"");
        return;
    }
    char buf[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, d);
        if (single ? strtof(buf, NULL) == (float)d : strtod(buf, NULL) == d)
            break;
    }
    put_str(w, buf);
}

/* The string VRs: one JSON string per value, null for an empty value (F.2.5); PN values as
 * objects of their non-empty component groups (F.2.2, PS3.5 6.2.1.1); IS and DS as numbers
 * (F.2.3). */
static void put_string_values(struct jw *w, const dcm_dataset *ds, const dcm_element *el)
{
    enum dcm_vr vr = (enum dcm_vr)el->vr;
    const uint8_t *p = el->u.value;
    size_t n = el->length;
    /* A single empty value (only padding) counts as no value: only "vr" is written. */
    bool single = is_single_valued(vr);
    size_t first_end = single ? n : value_end(p, n);
    bool converted = false; /* w->text already holds the first value */
    if (first_end == n) {
        value_utf8(w, ds, vr, p, n);
        if (w->text.len == 0)
            return;
        converted = true;
    }
    member(w, 1);
    key(w, "Value");
    jbegin(w, '[');
    size_t index = 0, at = 0;
    for (;;) {
        size_t end = single ? n : at + value_end(p + at, n - at);
        if (!converted)
            value_utf8(w, ds, vr, p + at, end - at);
        converted = false;
        member(w, index++);
        const uint8_t *t = w->text.data;
        size_t tn = w->text.len;
        if (tn == 0) {
            put_str(w, "null");
        } else if (vr == DCM_VR_PN) {
            /* PS3.5 6.2.1.1: up to three component groups separated by '='; a further '='
             * stays inside the Phonetic group so nothing is lost. */
            static const char *const names[3] = {"Alphabetic", "Ideographic", "Phonetic"};
            size_t g0 = 0;
            while (g0 < tn && t[g0] != '=')
                g0++;
            size_t g1 = g0 < tn ? g0 + 1 : tn;
            while (g1 < tn && t[g1] != '=')
                g1++;
            size_t start[3] = {0, g0 + 1, g1 + 1}, stop[3] = {g0, g1, tn};
            size_t k = 0;
            for (int g = 0; g < 3; g++) {
                /* spaces around a group are padding (PS3.5 6.2: PN trailing spaces) */
                while (start[g] < stop[g] && stop[g] <= tn && t[start[g]] == ' ')
                    start[g]++;
                while (start[g] < stop[g] && stop[g] <= tn && t[stop[g] - 1] == ' ')
                    stop[g]--;
                if (start[g] < stop[g] && stop[g] <= tn)
                    k++;
            }
            if (!k) {
                put_str(w, "null");
            } else {
                jbegin(w, '{');
                size_t written = 0;
                for (int g = 0; g < 3; g++) {
                    if (start[g] >= stop[g] || stop[g] > tn)
                        continue;
                    member(w, written++);
                    key(w, names[g]);
                    put_jstring(w, t + start[g], stop[g] - start[g]);
                }
                jend(w, '}', false);
            }
        } else if ((vr == DCM_VR_IS || vr == DCM_VR_DS) && number_to_json(w, t, tn)) {
            put(w, w->num.data, w->num.len);
        } else {
            put_jstring(w, t, tn);
        }
        if (end >= n || w->st)
            break;
        at = end + 1;
    }
    jend(w, ']', false);
}

/* FL FD SL SS UL US SV UV AT: one JSON number (AT: string) per value (F.2.3). A trailing
 * partial value (a length that is no multiple of the value size) cannot be shown and is left
 * out. */
static void put_binary_values(struct jw *w, const dcm_element *el)
{
    enum dcm_vr vr = (enum dcm_vr)el->vr;
    unsigned unit = dcm_vr_unit(vr);
    size_t count = unit ? el->length / unit : 0;
    if (!count)
        return;
    member(w, 1);
    key(w, "Value");
    jbegin(w, '[');
    char buf[32];
    for (size_t i = 0; i < count && w->st == VP_OK; i++) {
        const uint8_t *p = el->u.value + i * unit;
        member(w, i);
        uint64_t u64 = unit == 8 ? vp_le32(p) | (uint64_t)vp_le32(p + 4) << 32 : 0;
        switch (vr) {
        case DCM_VR_US: snprintf(buf, sizeof buf, "%u", (unsigned)vp_le16(p)); break;
        case DCM_VR_SS: snprintf(buf, sizeof buf, "%d", (int)(int16_t)vp_le16(p)); break;
        case DCM_VR_UL: snprintf(buf, sizeof buf, "%" PRIu32, vp_le32(p)); break;
        case DCM_VR_SL: snprintf(buf, sizeof buf, "%" PRId32, (int32_t)vp_le32(p)); break;
        case DCM_VR_UV: snprintf(buf, sizeof buf, "%" PRIu64, u64); break;
        case DCM_VR_SV: snprintf(buf, sizeof buf, "%" PRId64, (int64_t)u64); break;
        case DCM_VR_AT:
            /* F.2.3 (2015 and later): eight upper-case hex digits, group then element. */
            snprintf(buf, sizeof buf, "\"%04X%04X\"", vp_le16(p), vp_le16(p + 2));
            break;
        case DCM_VR_FL: {
            float f;
            uint32_t u = vp_le32(p);
            memcpy(&f, &u, 4);
            put_float(w, f, true);
            continue;
        }
        case DCM_VR_FD: {
            double d;
            memcpy(&d, &u64, 8);
            put_float(w, d, false);
            continue;
        }
        default: snprintf(buf, sizeof buf, "null"); break;
        }
        put_str(w, buf);
    }
    jend(w, ']', false);
}

/* "BulkDataURI": prefix "/" path (F.2.6) when a prefix is set; otherwise nothing, so the
 * attribute has only "vr". The path names the element from the root: "7FE00010" at the top,
 * "00082112/0/7FE00010" for the first item of a sequence. */
static void put_bulk(struct jw *w, uint32_t tag)
{
    const char *prefix = w->opts->bulk_uri_prefix;
    if (!prefix || !*prefix)
        return;
    char t[9];
    snprintf(t, sizeof t, "%08X", tag);
    member(w, 1);
    key(w, "BulkDataURI");
    vp_buf_reset(&w->text);
    vp_status st = vp_buf_puts(&w->text, prefix);
    if (!st)
        st = vp_buf_putc(&w->text, '/');
    if (!st)
        st = vp_buf_append(&w->text, w->path.data, w->path.len);
    if (!st)
        st = vp_buf_puts(&w->text, t);
    if (st && !w->st)
        w->st = st;
    put_jstring(w, w->text.data, w->text.len);
}

static bool over_threshold(const struct jw *w, uint64_t len)
{
    return w->opts->bulk_threshold && len > w->opts->bulk_threshold;
}

/* Encapsulated pixel data (PS3.5 A.4): the items of the Value Field, each an item tag, a
 * 32-bit length and the fragment, as one InlineBinary (F.2.7). */
static void put_encapsulated(struct jw *w, const dcm_element *el)
{
    uint64_t total = 0;
    bool loaded = true;
    for (uint32_t i = 0; i < el->u.frags.n; i++) {
        total += 8 + (uint64_t)el->u.frags.v[i].len;
        if (el->u.frags.v[i].len && !el->u.frags.v[i].data)
            loaded = false;
    }
    if (!loaded || over_threshold(w, total) || total > SIZE_MAX / 2) {
        put_bulk(w, el->tag);
        return;
    }
    if (!total)
        return;
    uint8_t *raw = vp_malloc((size_t)total);
    if (!raw) {
        if (!w->st)
            w->st = VP_ENOMEM;
        return;
    }
    size_t at = 0;
    for (uint32_t i = 0; i < el->u.frags.n; i++) {
        const struct frag *f = &el->u.frags.v[i];
        vp_put_le16(raw + at, 0xFFFE);
        vp_put_le16(raw + at + 2, 0xE000);
        vp_put_le32(raw + at + 4, f->len);
        if (f->len)
            memcpy(raw + at + 8, f->data, f->len);
        at += 8 + (size_t)f->len;
    }
    member(w, 1);
    key(w, "InlineBinary");
    put_ch(w, '"');
    put_base64(w, raw, at);
    put_ch(w, '"');
    vp_free(raw);
}

static void put_dataset(struct jw *w, const dcm_dataset *ds);

static void put_items(struct jw *w, const dcm_element *el)
{
    if (!el->u.items.n)
        return; /* an empty sequence has no value (F.2.5) */
    member(w, 1);
    key(w, "Value");
    jbegin(w, '[');
    size_t path_len = w->path.len;
    for (uint32_t i = 0; i < el->u.items.n && w->st == VP_OK; i++) {
        member(w, i);
        w->path.len = path_len;
        vp_status st = vp_buf_printf(&w->path, "%08X/%u/", el->tag, i);
        if (st) {
            w->st = st;
            break;
        }
        put_dataset(w, el->u.items.v[i]);
    }
    w->path.len = path_len;
    jend(w, ']', false);
}

static void put_element(struct jw *w, const dcm_dataset *ds, const dcm_element *el)
{
    enum dcm_vr vr = (enum dcm_vr)el->vr;
    if (vr == DCM_VR_NONE || vr >= DCM_VR_COUNT_REAL)
        vr = DCM_VR_UN;
    /* A UN element read as a sequence (PS3.5 6.2.2) is written as the SQ it holds. */
    if (el->flags & EL_SEQ)
        vr = DCM_VR_SQ;
    jbegin(w, '{');
    member(w, 0);
    key(w, "vr");
    put_ch(w, '"');
    put_str(w, dcm_vr_name(vr));
    put_ch(w, '"');
    if (el->flags & EL_SEQ)
        put_items(w, el);
    else if (el->flags & EL_ENCAPS)
        put_encapsulated(w, el);
    else if (el->flags & EL_SKIPPED)
        put_bulk(w, el->tag); /* not loaded: only a reference can be given */
    else if (el->length == 0)
        ; /* F.2.5: an empty attribute has only "vr" */
    else if (dcm_vr_is_string(vr))
        put_string_values(w, ds, el);
    else if (vr == DCM_VR_OB || vr == DCM_VR_OD || vr == DCM_VR_OF || vr == DCM_VR_OL ||
             vr == DCM_VR_OV || vr == DCM_VR_OW || vr == DCM_VR_UN) {
        if (over_threshold(w, el->length)) {
            put_bulk(w, el->tag);
        } else {
            /* F.2.7: one base64 string for the whole Value Field, little endian. */
            member(w, 1);
            key(w, "InlineBinary");
            put_ch(w, '"');
            put_base64(w, el->u.value, el->length);
            put_ch(w, '"');
        }
    } else {
        put_binary_values(w, el);
    }
    jend(w, '}', false);
}

static void put_dataset(struct jw *w, const dcm_dataset *ds)
{
    jbegin(w, '{');
    size_t written = 0;
    char k[12];
    for (uint32_t i = 0; i < ds->n && w->st == VP_OK; i++) {
        const dcm_element *el = &ds->el[i];
        if (DCM_ELEMENT(el->tag) == 0x0000)
            continue; /* F.2.2: Group Length attributes shall not be included */
        member(w, written++);
        snprintf(k, sizeof k, "%08X", el->tag);
        key(w, k);
        put_element(w, ds, el);
    }
    jend(w, '}', written == 0);
}

vp_status dcm_json_write(const dcm_dataset *ds, const dcm_json_opts *opts, vp_buf *out,
                         vp_error *err)
{
    static const dcm_json_opts defaults = {0};
    if (!ds || !out)
        return vp_error_set(err, VP_EINVAL, "dcm_json_write: no data set or buffer");
    struct jw w = {.out = out, .opts = opts ? opts : &defaults};
    vp_buf_init(&w.text, 0);
    vp_buf_init(&w.num, 0);
    vp_buf_init(&w.path, 0);
    size_t start = out->len;
    put_dataset(&w, ds);
    vp_buf_fini(&w.text);
    vp_buf_fini(&w.num);
    vp_buf_fini(&w.path);
    if (w.st != VP_OK) {
        out->len = start; /* no half-written object */
        if (out->data)
            out->data[start] = 0;
        if (w.st == VP_ELIMIT)
            return vp_error_set(err, w.st, "JSON output exceeds the buffer limit of %zu bytes",
                                out->max);
        return vp_error_set(err, w.st, "writing JSON: %s", vp_status_name(w.st));
    }
    return VP_OK;
}
