/* SPDX-License-Identifier: MIT */
/*
 * DICOM JSON reader (PS3.18 Annex F, the DICOM JSON Model) with its own strict JSON parser
 * (RFC 8259): the input must be one UTF-8 JSON object, exactly as the grammar says (no
 * comments, trailing commas, NaN literals or lone surrogates). The parser follows the model
 * instead of building a generic JSON tree, so nesting is bounded by the sequence depth limit
 * and nothing but data set values is allocated.
 *
 * Mapping back to the data set (F.2.3): strings are stored as UTF-8 with values joined by '\'
 * (F.2.4) and null as an empty value (F.2.5); PN objects become "Alphabetic=Ideographic=
 * Phonetic" (PS3.5 6.2.1.1); IS and DS keep the exact text of the JSON number or string; the
 * binary numbers become little-endian values; "InlineBinary" is decoded from base64 (F.2.7);
 * "BulkDataURI" (F.2.6) gives a skipped element without value (the URI is not kept). When any
 * stored text (SH LO ST LT UT PN UC) is not ASCII, Specific Character Set (0008,0005) becomes
 * "ISO_IR 192" wherever the tree has it (and at the root), because the bytes now are UTF-8.
 * The other string VRs have the default repertoire only: U+0080-U+00FF is stored as one byte
 * (the inverse of the writer's ISO 8859-1 reading), anything above is refused.
 *
 * Limits (dcm_read_opts): sequence nesting (max_depth), elements plus items (max_elements) and
 * the length of one value (max_length). Errors are VP_EPARSE or VP_ELIMIT with "offset N:" and
 * the element in the message; on any failure *out is NULL and nothing is leaked.
 *
 * Accepted beyond the letter of Annex F, each the inverse of a dcm_json_write choice or a
 * common variant: keys in any order and lower-case hex, "Value": [] for an empty element, the
 * strings "NaN", "Infinity" and "-Infinity" for FL/FD, JSON strings for IS/DS/SV/UV (F.2.3), a
 * plain string for a PN value, and an InlineBinary Pixel Data (7FE0,0010) made of PS3.5 A.4
 * items, which becomes encapsulated pixel data again.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dcm/internal.h"

struct jr {
    const uint8_t *p; /* the input */
    size_t len;       /* bytes of input */
    size_t pos;       /* next byte to read */
    dcm_read_opts o;  /* limits, defaults applied */
    vp_error *err;
    vp_buf str;     /* the last JSON string decoded */
    vp_buf val;     /* the value of the element being built */
    bool non_ascii; /* some stored string is not plain ASCII */
    uint32_t items; /* items created, counted with elements against max_elements */
};

/* Where the value of an element comes from (F.2.2: at most one of these). */
enum value_kind { KIND_NONE, KIND_VALUE, KIND_INLINE, KIND_BULK };

static vp_status fail_at(struct jr *r, size_t at, vp_status st, uint32_t tag, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Records "offset N: [element (gggg,eeee): ]message" (first error wins) and returns st. */
static vp_status fail_at(struct jr *r, size_t at, vp_status st, uint32_t tag, const char *fmt, ...)
{
    char m[VP_ERROR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    if (tag)
        return vp_error_set(r->err, st, "offset %zu: element (%04X,%04X): %s", at, DCM_GROUP(tag),
                            DCM_ELEMENT(tag), m);
    return vp_error_set(r->err, st, "offset %zu: %s", at, m);
}

/* A failed append: the limit (VP_ELIMIT) or out of memory. */
static vp_status fail_buf(struct jr *r, vp_status st, uint32_t tag)
{
    if (st == VP_ELIMIT)
        return fail_at(r, r->pos, st, tag, "value longer than the limit of %llu bytes",
                       (unsigned long long)r->o.max_length);
    return fail_at(r, r->pos, st, tag, "out of memory");
}

/* ---- JSON lexing (RFC 8259) ---- */

static void skip_ws(struct jr *r)
{
    while (r->pos < r->len) {
        uint8_t c = r->p[r->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        r->pos++;
    }
}

/* Next significant byte without consuming it; -1 at the end. */
static int peek(struct jr *r)
{
    skip_ws(r);
    return r->pos < r->len ? r->p[r->pos] : -1;
}

static const char *describe(int c)
{
    switch (c) {
    case -1: return "end of input";
    case '{': return "an object";
    case '[': return "an array";
    case '"': return "a string";
    case 'n': return "null";
    case 't':
    case 'f': return "a boolean";
    default: return (c == '-' || (c >= '0' && c <= '9')) ? "a number" : "an invalid character";
    }
}

static vp_status expect(struct jr *r, char c, uint32_t tag, const char *what)
{
    int got = peek(r);
    if (got != c)
        return fail_at(r, r->pos, VP_EPARSE, tag, "expected %s, found %s", what, describe(got));
    r->pos++;
    return VP_OK;
}

static int hex4(const uint8_t *p)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        uint8_t c = p[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            return -1;
        v = v << 4 | d;
    }
    return v;
}

static vp_status put_utf8(vp_buf *b, uint32_t cp)
{
    uint8_t u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (uint8_t)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (uint8_t)(0xC0 | cp >> 6);
        u[1] = (uint8_t)(0x80 | (cp & 63));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (uint8_t)(0xE0 | cp >> 12);
        u[1] = (uint8_t)(0x80 | ((cp >> 6) & 63));
        u[2] = (uint8_t)(0x80 | (cp & 63));
        n = 3;
    } else {
        u[0] = (uint8_t)(0xF0 | cp >> 18);
        u[1] = (uint8_t)(0x80 | ((cp >> 12) & 63));
        u[2] = (uint8_t)(0x80 | ((cp >> 6) & 63));
        u[3] = (uint8_t)(0x80 | (cp & 63));
        n = 4;
    }
    return vp_buf_append(b, u, n);
}

/* Decodes the JSON string at r->pos (RFC 8259 7) into out, replacing its contents. */
static vp_status parse_string(struct jr *r, vp_buf *out, uint32_t tag)
{
    vp_status st = expect(r, '"', tag, "a string");
    if (st)
        return st;
    vp_buf_reset(out);
    size_t start = r->pos - 1;
    for (;;) {
        size_t run = r->pos;
        while (r->pos < r->len) {
            uint8_t c = r->p[r->pos];
            if (c == '"' || c == '\\' || c < 0x20 || c >= 0x80)
                break;
            r->pos++;
        }
        if ((st = vp_buf_append(out, r->p + run, r->pos - run)))
            return fail_buf(r, st, tag);
        if (r->pos >= r->len)
            return fail_at(r, start, VP_EPARSE, tag, "unterminated string");
        uint8_t c = r->p[r->pos];
        if (c == '"') {
            r->pos++;
            return VP_OK;
        }
        if (c < 0x20)
            return fail_at(r, r->pos, VP_EPARSE, tag,
                           "control character 0x%02X in a string must be escaped", c);
        if (c >= 0x80) {
            size_t n = dcm__utf8_len(r->p + r->pos, r->len - r->pos, NULL);
            if (!n)
                return fail_at(r, r->pos, VP_EPARSE, tag, "invalid UTF-8 byte 0x%02X", c);
            if ((st = vp_buf_append(out, r->p + r->pos, n)))
                return fail_buf(r, st, tag);
            r->pos += n;
            continue;
        }
        /* an escape */
        if (r->pos + 1 >= r->len)
            return fail_at(r, start, VP_EPARSE, tag, "unterminated string");
        uint8_t e = r->p[r->pos + 1];
        const char *simple = strchr("\"\\/bfnrt", e);
        if (e && simple) {
            static const char map[] = "\"\\/\b\f\n\r\t";
            st = vp_buf_putc(out, (uint8_t)map[simple - "\"\\/bfnrt"]);
            r->pos += 2;
        } else if (e == 'u') {
            int hi = r->pos + 6 <= r->len ? hex4(r->p + r->pos + 2) : -1;
            if (hi < 0)
                return fail_at(r, r->pos, VP_EPARSE, tag, "expected 4 hex digits after \\u");
            uint32_t cp = (uint32_t)hi;
            size_t at = r->pos;
            r->pos += 6;
            if (cp >= 0xDC00 && cp <= 0xDFFF)
                return fail_at(r, at, VP_EPARSE, tag, "unpaired surrogate \\u%04X", cp);
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                int lo = -1;
                if (r->pos + 6 <= r->len && r->p[r->pos] == '\\' && r->p[r->pos + 1] == 'u')
                    lo = hex4(r->p + r->pos + 2);
                if (lo < 0xDC00 || lo > 0xDFFF)
                    return fail_at(r, at, VP_EPARSE, tag, "unpaired surrogate \\u%04X", cp);
                cp = 0x10000 + ((cp - 0xD800) << 10) + ((uint32_t)lo - 0xDC00);
                r->pos += 6;
            }
            st = put_utf8(out, cp);
        } else {
            return fail_at(r, r->pos, VP_EPARSE, tag, "invalid escape in a string");
        }
        if (st)
            return fail_buf(r, st, tag);
    }
}

/* Checks the JSON number at r->pos (RFC 8259 6) and returns its text span. */
static vp_status parse_number(struct jr *r, size_t *at, size_t *n, uint32_t tag)
{
    skip_ws(r);
    size_t s = r->pos, i = s;
    const uint8_t *p = r->p;
    if (i < r->len && p[i] == '-')
        i++;
    if (i < r->len && p[i] == '0') {
        i++;
    } else if (i < r->len && p[i] >= '1' && p[i] <= '9') {
        while (i < r->len && p[i] >= '0' && p[i] <= '9')
            i++;
    } else {
        return fail_at(r, i, VP_EPARSE, tag, "expected a digit in a number");
    }
    if (i < r->len && p[i] == '.') {
        size_t d = ++i;
        while (i < r->len && p[i] >= '0' && p[i] <= '9')
            i++;
        if (i == d)
            return fail_at(r, i, VP_EPARSE, tag, "expected a digit after '.'");
    }
    if (i < r->len && (p[i] == 'e' || p[i] == 'E')) {
        i++;
        if (i < r->len && (p[i] == '+' || p[i] == '-'))
            i++;
        size_t d = i;
        while (i < r->len && p[i] >= '0' && p[i] <= '9')
            i++;
        if (i == d)
            return fail_at(r, i, VP_EPARSE, tag, "expected a digit in the exponent");
    }
    *at = s;
    *n = i - s;
    r->pos = i;
    return VP_OK;
}

static vp_status parse_literal(struct jr *r, const char *word, uint32_t tag)
{
    size_t n = strlen(word);
    skip_ws(r);
    if (r->len - r->pos < n || memcmp(r->p + r->pos, word, n) != 0)
        return fail_at(r, r->pos, VP_EPARSE, tag, "expected %s", word);
    r->pos += n;
    return VP_OK;
}

/* Checks and skips any JSON value (for a value that must wait until "vr" is known). */
static vp_status skip_value(struct jr *r, uint32_t tag, unsigned depth)
{
    if (depth > 4 * r->o.max_depth + 8)
        return fail_at(r, r->pos, VP_ELIMIT, tag, "JSON nested deeper than the limit");
    int c = peek(r);
    vp_status st;
    size_t at, n;
    switch (c) {
    case '"': return parse_string(r, &r->str, tag);
    case 'n': return parse_literal(r, "null", tag);
    case 't': return parse_literal(r, "true", tag);
    case 'f': return parse_literal(r, "false", tag);
    case '[':
    case '{': {
        char closer = c == '[' ? ']' : '}';
        r->pos++;
        if (peek(r) == closer) {
            r->pos++;
            return VP_OK;
        }
        for (;;) {
            if (closer == '}') {
                if ((st = parse_string(r, &r->str, tag)) || (st = expect(r, ':', tag, "':'")))
                    return st;
            }
            if ((st = skip_value(r, tag, depth + 1)))
                return st;
            int d = peek(r);
            r->pos++;
            if (d == closer)
                return VP_OK;
            if (d != ',') {
                r->pos--;
                return fail_at(r, r->pos, VP_EPARSE, tag, "expected ',' or '%c', found %s", closer,
                               describe(d));
            }
        }
    }
    default:
        if (c == '-' || (c >= '0' && c <= '9'))
            return parse_number(r, &at, &n, tag);
        return fail_at(r, r->pos, VP_EPARSE, tag, "expected a value, found %s", describe(c));
    }
}

/* Steps over ',' (true: another entry follows) or the closing bracket (false). */
static vp_status next_entry(struct jr *r, char closer, bool *more, uint32_t tag)
{
    int c = peek(r);
    if (c == ',') {
        r->pos++;
        *more = true;
        return VP_OK;
    }
    if (c == closer) {
        r->pos++;
        *more = false;
        return VP_OK;
    }
    return fail_at(r, r->pos, VP_EPARSE, tag, "expected ',' or '%c', found %s", closer,
                   describe(c));
}

/* Opens an array or object; *empty when it closes at once. */
static vp_status open_container(struct jr *r, char open, uint32_t tag, const char *what,
                                bool *empty)
{
    vp_status st = expect(r, open, tag, what);
    if (st)
        return st;
    *empty = peek(r) == (open == '[' ? ']' : '}');
    if (*empty)
        r->pos++;
    return VP_OK;
}

/* ---- values ---- */

static bool is_binary_vr(enum dcm_vr vr)
{
    return vr == DCM_VR_OB || vr == DCM_VR_OD || vr == DCM_VR_OF || vr == DCM_VR_OL ||
           vr == DCM_VR_OV || vr == DCM_VR_OW || vr == DCM_VR_UN;
}

static vp_status count_element(struct jr *r, dcm_dataset *ds, uint32_t tag)
{
    if ((uint64_t)ds->root->element_count + r->items >= r->o.max_elements)
        return fail_at(r, r->pos, VP_ELIMIT, tag, "more than %u elements",
                       (unsigned)r->o.max_elements);
    return VP_OK;
}

static vp_status store(struct jr *r, dcm_dataset *ds, uint32_t tag, enum dcm_vr vr, const void *p,
                       size_t n)
{
    vp_status st = count_element(r, ds, tag);
    if (st)
        return st;
    if (n > r->o.max_length || n > 0xFFFFFFFEu)
        return fail_buf(r, VP_ELIMIT, tag);
    if ((st = dcm_dataset_set(ds, tag, vr, p, n, NULL)))
        return fail_buf(r, st, tag);
    return VP_OK;
}

/* Marks text that is not plain ASCII (or holds ISO 2022 escapes): stored as UTF-8, it needs
 * Specific Character Set ISO_IR 192 (PS3.3 C.12.1.1.2). */
static void note_text(struct jr *r, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n && !r->non_ascii; i++)
        if (p[i] >= 0x80 || p[i] == 0x1B)
            r->non_ascii = true;
}

/*
 * The VRs outside dcm_vr_is_text have the default repertoire only (PS3.5 6.1.2.3), and
 * dcm_json_write reads any other byte in them as ISO 8859-1, as pydicom does. The inverse keeps
 * that stable: characters up to U+00FF become single bytes, anything above is refused.
 */
static vp_status to_latin1(struct jr *r, size_t at, uint32_t tag, enum dcm_vr vr)
{
    uint8_t *p = r->val.data;
    size_t n = r->val.len, o = 0;
    for (size_t i = 0; i < n;) {
        if (p[i] < 0x80) {
            p[o++] = p[i++];
            continue;
        }
        /* valid UTF-8 (checked by parse_string): U+0080-U+00FF is C2 or C3 and one byte */
        if ((p[i] != 0xC2 && p[i] != 0xC3) || i + 1 >= n)
            return fail_at(r, at, VP_EPARSE, tag,
                           "VR %s allows only the default character repertoire", dcm_vr_name(vr));
        p[o++] = (uint8_t)((p[i] & 0x03) << 6 | (p[i + 1] & 0x3F));
        i += 2;
    }
    r->val.len = o;
    if (p)
        p[o] = 0;
    return VP_OK;
}

/* null (an empty value, F.2.5) or a JSON string appended to r->val as is. c is peek(r). */
static vp_status parse_null_or_string(struct jr *r, int c, uint32_t tag)
{
    if (c == 'n')
        return parse_literal(r, "null", tag);
    vp_status st = parse_string(r, &r->str, tag);
    if (st == VP_OK && (st = vp_buf_append(&r->val, r->str.data, r->str.len)))
        return fail_buf(r, st, tag);
    return st;
}

/* A PN value: an object of component groups (F.2.2), null, or (leniently) a plain string. */
static vp_status parse_pn(struct jr *r, uint32_t tag)
{
    static const char *const names[3] = {"Alphabetic", "Ideographic", "Phonetic"};
    vp_status st;
    int c = peek(r);
    if (c == 'n' || c == '"')
        return parse_null_or_string(r, c, tag);
    bool empty, more = true;
    if ((st = open_container(r, '{', tag, "a PN object or null", &empty)))
        return st;
    size_t at[3] = {0, 0, 0}, len[3] = {0, 0, 0};
    bool seen[3] = {false, false, false};
    /* Members may come in any order: collect them in parts, join them in order at the end. */
    vp_buf parts;
    vp_buf_init(&parts, r->val.max);
    while (!empty && more) {
        size_t key_at = r->pos;
        if ((st = parse_string(r, &r->str, tag)))
            goto done;
        int g = -1;
        for (int k = 0; k < 3; k++)
            if (r->str.len == strlen(names[k]) && memcmp(r->str.data, names[k], r->str.len) == 0)
                g = k;
        if (g < 0) {
            st = fail_at(r, key_at, VP_EPARSE, tag,
                         "PN member must be Alphabetic, Ideographic or Phonetic");
            goto done;
        }
        if (seen[g]) {
            st = fail_at(r, key_at, VP_EPARSE, tag, "duplicate PN member %s", names[g]);
            goto done;
        }
        seen[g] = true;
        if ((st = expect(r, ':', tag, "':'")))
            goto done;
        if (peek(r) == 'n') {
            if ((st = parse_literal(r, "null", tag)))
                goto done;
        } else {
            if ((st = parse_string(r, &r->str, tag)))
                goto done;
            at[g] = parts.len;
            len[g] = r->str.len;
            if ((st = vp_buf_append(&parts, r->str.data, r->str.len))) {
                st = fail_buf(r, st, tag);
                goto done;
            }
        }
        if ((st = next_entry(r, '}', &more, tag)))
            goto done;
    }
    /* PS3.5 6.2.1.1: groups separated by '=', trailing empty groups left out. */
    int last = len[2] ? 2 : len[1] ? 1 : 0;
    for (int g = 0; g <= last && !st; g++) {
        if (g)
            st = vp_buf_putc(&r->val, '=');
        if (!st && len[g])
            st = vp_buf_append(&r->val, parts.data + at[g], len[g]);
    }
    if (st)
        st = fail_buf(r, st, tag);
done:
    vp_buf_fini(&parts);
    return st;
}

/* Integer syntax only (no fraction or exponent) within [min, max] as 64-bit magnitudes. */
static vp_status int_value(struct jr *r, size_t at, const uint8_t *s, size_t n, bool neg_ok,
                           uint64_t max_pos, uint64_t max_neg, uint64_t *mag, bool *neg,
                           uint32_t tag)
{
    size_t i = 0;
    *neg = false;
    if (i < n && s[i] == '-') {
        *neg = true;
        i++;
    }
    if (i >= n)
        return fail_at(r, at, VP_EPARSE, tag, "expected an integer");
    uint64_t v = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return fail_at(r, at, VP_EPARSE, tag, "expected an integer, found \"%.*s\"",
                           (int)(n > 40 ? 40 : n), (const char *)s);
        if (v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
            return fail_at(r, at, VP_EPARSE, tag, "integer %.*s out of range",
                           (int)(n > 40 ? 40 : n), (const char *)s);
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if ((*neg && v && (!neg_ok || v > max_neg)) || (!*neg && v > max_pos))
        return fail_at(r, at, VP_EPARSE, tag, "integer %.*s out of range for the VR",
                       (int)(n > 40 ? 40 : n), (const char *)s);
    *mag = v;
    return VP_OK;
}

/* FL / FD values appended to r->val in little endian. */
static vp_status append_fl(struct jr *r, float f, uint32_t tag)
{
    uint8_t b[4];
    uint32_t u;
    memcpy(&u, &f, 4);
    vp_put_le32(b, u);
    vp_status st = vp_buf_append(&r->val, b, 4);
    return st ? fail_buf(r, st, tag) : VP_OK;
}

static vp_status append_fd(struct jr *r, double d, uint32_t tag)
{
    uint8_t b[8];
    uint64_t u;
    memcpy(&u, &d, 8);
    vp_put_le32(b, (uint32_t)u);
    vp_put_le32(b + 4, (uint32_t)(u >> 32));
    vp_status st = vp_buf_append(&r->val, b, 8);
    return st ? fail_buf(r, st, tag) : VP_OK;
}

/* One value of a binary number VR (US SS UL SL UV SV FL FD AT) appended to r->val. */
static vp_status parse_binary_value(struct jr *r, enum dcm_vr vr, uint32_t tag)
{
    vp_status st;
    int c = peek(r);
    size_t at = r->pos, n = 0;
    const uint8_t *s;
    uint8_t b[8];
    if (vr == DCM_VR_AT) {
        /* F.2.3: eight hex digits, group then element */
        if (c != '"')
            return fail_at(r, at, VP_EPARSE, tag, "expected an AT string \"GGGGEEEE\", found %s",
                           describe(c));
        if ((st = parse_string(r, &r->str, tag)))
            return st;
        int g = r->str.len == 8 ? hex4(r->str.data) : -1;
        int e = r->str.len == 8 ? hex4(r->str.data + 4) : -1;
        if (g < 0 || e < 0)
            return fail_at(r, at, VP_EPARSE, tag, "AT value must be 8 hex digits");
        vp_put_le16(b, (uint16_t)g);
        vp_put_le16(b + 2, (uint16_t)e);
        st = vp_buf_append(&r->val, b, 4);
        return st ? fail_buf(r, st, tag) : VP_OK;
    }
    if (c == '"') {
        /* Strings: the FL/FD specials this writer emits, and SV/UV (F.2.3 allows strings). */
        if ((st = parse_string(r, &r->str, tag)))
            return st;
        s = r->str.data;
        n = r->str.len;
        if (vr == DCM_VR_FL || vr == DCM_VR_FD) {
            double d;
            if (n == 3 && memcmp(s, "NaN", 3) == 0)
                d = NAN;
            else if (n == 8 && memcmp(s, "Infinity", 8) == 0)
                d = INFINITY;
            else if (n == 9 && memcmp(s, "-Infinity", 9) == 0)
                d = -INFINITY;
            else
                return fail_at(r, at, VP_EPARSE, tag,
                               "expected a number (or \"NaN\", \"Infinity\", \"-Infinity\")");
            return vr == DCM_VR_FL ? append_fl(r, (float)d, tag) : append_fd(r, d, tag);
        }
        if (vr != DCM_VR_SV && vr != DCM_VR_UV)
            return fail_at(r, at, VP_EPARSE, tag, "expected a number for VR %s, found a string",
                           dcm_vr_name(vr));
    } else if (c == '-' || (c >= '0' && c <= '9')) {
        if ((st = parse_number(r, &at, &n, tag)))
            return st;
        s = r->p + at;
    } else {
        return fail_at(r, at, VP_EPARSE, tag, "expected a number for VR %s, found %s",
                       dcm_vr_name(vr), describe(c));
    }
    if (vr == DCM_VR_FL || vr == DCM_VR_FD) {
        /* strtod needs a terminated copy; the number text is valid JSON, which it accepts */
        vp_buf_reset(&r->str);
        if ((st = vp_buf_append(&r->str, s, n)))
            return fail_buf(r, st, tag);
        errno = 0;
        if (vr == DCM_VR_FL) {
            float f = strtof((const char *)r->str.data, NULL);
            if (errno == ERANGE && isinf(f))
                return fail_at(r, at, VP_EPARSE, tag, "number %.40s out of range for FL",
                               (const char *)r->str.data);
            return append_fl(r, f, tag);
        } else {
            double d = strtod((const char *)r->str.data, NULL);
            if (errno == ERANGE && isinf(d))
                return fail_at(r, at, VP_EPARSE, tag, "number %.40s out of range for FD",
                               (const char *)r->str.data);
            return append_fd(r, d, tag);
        }
    }
    uint64_t mag = 0;
    bool neg = false;
    switch (vr) {
    case DCM_VR_US:
        st = int_value(r, at, s, n, false, 0xFFFF, 0, &mag, &neg, tag);
        vp_put_le16(b, (uint16_t)mag);
        n = 2;
        break;
    case DCM_VR_SS:
        st = int_value(r, at, s, n, true, 0x7FFF, 0x8000, &mag, &neg, tag);
        vp_put_le16(b, (uint16_t)(neg ? (uint16_t)(0u - mag) : mag));
        n = 2;
        break;
    case DCM_VR_UL:
        st = int_value(r, at, s, n, false, 0xFFFFFFFFu, 0, &mag, &neg, tag);
        vp_put_le32(b, (uint32_t)mag);
        n = 4;
        break;
    case DCM_VR_SL:
        st = int_value(r, at, s, n, true, 0x7FFFFFFF, 0x80000000u, &mag, &neg, tag);
        vp_put_le32(b, neg ? (uint32_t)(0u - mag) : (uint32_t)mag);
        n = 4;
        break;
    case DCM_VR_UV:
    case DCM_VR_SV: {
        bool sv = vr == DCM_VR_SV;
        st = int_value(r, at, s, n, sv, sv ? (uint64_t)INT64_MAX : UINT64_MAX,
                       (uint64_t)INT64_MAX + 1, &mag, &neg, tag);
        uint64_t u = neg ? 0 - mag : mag;
        vp_put_le32(b, (uint32_t)u);
        vp_put_le32(b + 4, (uint32_t)(u >> 32));
        n = 8;
        break;
    }
    default: return fail_at(r, at, VP_EPARSE, tag, "unexpected VR");
    }
    if (st)
        return st;
    st = vp_buf_append(&r->val, b, n);
    return st ? fail_buf(r, st, tag) : VP_OK;
}

/* One value of a string VR appended to r->val; null is an empty value (F.2.5). */
static vp_status parse_string_value(struct jr *r, enum dcm_vr vr, uint32_t tag)
{
    vp_status st;
    int c = peek(r);
    if (vr == DCM_VR_PN)
        return parse_pn(r, tag);
    if (c == 'n' || c == '"')
        return parse_null_or_string(r, c, tag);
    if ((vr == DCM_VR_IS || vr == DCM_VR_DS) && (c == '-' || (c >= '0' && c <= '9'))) {
        /* F.2.3: the number's text is the value, digits as written */
        size_t at, n;
        if ((st = parse_number(r, &at, &n, tag)))
            return st;
        if ((st = vp_buf_append(&r->val, r->p + at, n)))
            return fail_buf(r, st, tag);
        return VP_OK;
    }
    return fail_at(r, r->pos, VP_EPARSE, tag, "expected a string or null for VR %s, found %s",
                   dcm_vr_name(vr), describe(c));
}

static int b64_digit(uint8_t c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Decodes base64 (RFC 4648 4, with padding, no line breaks) from r->str into r->val. */
static vp_status decode_base64(struct jr *r, size_t at, uint32_t tag)
{
    const uint8_t *s = r->str.data;
    size_t n = r->str.len;
    vp_buf_reset(&r->val);
    if (n % 4)
        return fail_at(r, at, VP_EPARSE, tag, "InlineBinary length %zu is not a multiple of 4", n);
    vp_status st = vp_buf_reserve(&r->val, n / 4 * 3);
    if (st)
        return fail_buf(r, st, tag);
    for (size_t i = 0; i < n; i += 4) {
        int d[4];
        size_t pad = 0;
        for (int k = 0; k < 4; k++) {
            d[k] = b64_digit(s[i + k]);
            if (s[i + k] == '=' && i + 4 == n && k >= 2) {
                d[k] = 0;
                pad++;
            } else if (d[k] < 0 || pad) {
                return fail_at(r, at, VP_EPARSE, tag, "InlineBinary is not base64 (character %zu)",
                               i + (size_t)k);
            }
        }
        uint32_t v =
            (uint32_t)d[0] << 18 | (uint32_t)d[1] << 12 | (uint32_t)d[2] << 6 | (uint32_t)d[3];
        uint8_t o[3] = {(uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
        if ((st = vp_buf_append(&r->val, o, 3 - pad)))
            return fail_buf(r, st, tag);
    }
    return VP_OK;
}

/* Whether a decoded value is the item encoding of encapsulated pixel data (PS3.5 A.4): items
 * (FFFE,E000) with defined lengths filling it exactly, optionally ending with a sequence
 * delimiter. */
static bool is_item_stream(const uint8_t *p, size_t n)
{
    size_t i = 0;
    if (n < 8)
        return false;
    while (i < n) {
        if (n - i < 8)
            return false;
        uint16_t g = vp_le16(p + i), e = vp_le16(p + i + 2);
        uint32_t len = vp_le32(p + i + 4);
        if (g == 0xFFFE && e == 0xE0DD && len == 0 && i + 8 == n && i > 0)
            return true;
        if (g != 0xFFFE || e != 0xE000 || len > n - i - 8)
            return false;
        i += 8 + (size_t)len;
    }
    return true;
}

static vp_status store_encapsulated(struct jr *r, dcm_dataset *ds, uint32_t tag, enum dcm_vr vr)
{
    vp_status st = count_element(r, ds, tag);
    if (st)
        return st;
    dcm_element *el;
    if ((st = dcm_dataset_set_encapsulated(ds, tag, vr, &el)))
        return fail_buf(r, st, tag);
    const uint8_t *p = r->val.data;
    size_t n = r->val.len, i = 0;
    while (i + 8 <= n && vp_le16(p + i + 2) == 0xE000) {
        uint32_t len = vp_le32(p + i + 4);
        if ((st = dcm_element_add_fragment(el, p + i + 8, len)))
            return fail_buf(r, st, tag);
        i += 8 + (size_t)len;
    }
    return VP_OK;
}

static vp_status parse_dataset(struct jr *r, dcm_dataset *ds, unsigned depth);

static vp_status parse_items(struct jr *r, dcm_dataset *ds, uint32_t tag, unsigned depth)
{
    vp_status st = count_element(r, ds, tag);
    if (st)
        return st;
    dcm_element *el;
    bool empty, more = true;
    if ((st = open_container(r, '[', tag, "a Value array", &empty)))
        return st;
    if ((st = dcm_dataset_set_sequence(ds, tag, &el)))
        return fail_buf(r, st, tag);
    while (!empty && more) {
        if (peek(r) != '{')
            return fail_at(r, r->pos, VP_EPARSE, tag, "expected an item object, found %s",
                           describe(peek(r)));
        if (depth + 1 > r->o.max_depth)
            return fail_at(r, r->pos, VP_ELIMIT, tag, "sequences nested deeper than %u",
                           (unsigned)r->o.max_depth);
        if ((st = count_element(r, ds, tag)))
            return st;
        dcm_dataset *item;
        if ((st = dcm_element_add_item(el, &item)))
            return fail_buf(r, st, tag);
        r->items++;
        if ((st = parse_dataset(r, item, depth + 1)))
            return st;
        if ((st = next_entry(r, ']', &more, tag)))
            return st;
    }
    return VP_OK;
}

/* The value of one element, now that its VR is known. */
static vp_status parse_value(struct jr *r, dcm_dataset *ds, uint32_t tag, enum dcm_vr vr,
                             enum value_kind kind, unsigned depth)
{
    vp_status st;
    size_t at = r->pos;
    if (kind == KIND_BULK) {
        /* F.2.6: the value lives elsewhere; keep an element marked as not loaded. */
        if ((st = parse_string(r, &r->str, tag)))
            return st;
        if (vr == DCM_VR_SQ)
            return fail_at(r, at, VP_EPARSE, tag, "BulkDataURI is not allowed for SQ");
        if ((st = count_element(r, ds, tag)))
            return st;
        dcm_element *el = dcm__slot(ds, tag, vr);
        if (!el)
            return fail_buf(r, VP_ENOMEM, tag);
        el->flags = EL_SKIPPED;
        return VP_OK;
    }
    if (kind == KIND_INLINE) {
        if (!is_binary_vr(vr))
            return fail_at(r, at, VP_EPARSE, tag,
                           "InlineBinary is only for OB, OD, OF, OL, OV, OW and UN, not %s",
                           dcm_vr_name(vr));
        if ((st = parse_string(r, &r->str, tag)) || (st = decode_base64(r, at, tag)))
            return st;
        if (tag == DCM_TAG_PIXEL_DATA && (vr == DCM_VR_OB || vr == DCM_VR_OW) &&
            is_item_stream(r->val.data, r->val.len))
            return store_encapsulated(r, ds, tag, vr);
        return store(r, ds, tag, vr, r->val.data, r->val.len);
    }
    /* "Value" */
    if (vr == DCM_VR_SQ)
        return parse_items(r, ds, tag, depth);
    if (is_binary_vr(vr))
        return fail_at(r, at, VP_EPARSE, tag, "VR %s takes InlineBinary or BulkDataURI, not Value",
                       dcm_vr_name(vr));
    bool empty, more = true;
    if ((st = open_container(r, '[', tag, "a Value array", &empty)))
        return st;
    vp_buf_reset(&r->val);
    bool string = dcm_vr_is_string(vr);
    bool single = vr == DCM_VR_LT || vr == DCM_VR_ST || vr == DCM_VR_UT || vr == DCM_VR_UR;
    size_t count = 0;
    while (!empty && more) {
        if (string) {
            if (count && single)
                return fail_at(r, r->pos, VP_EPARSE, tag, "VR %s takes a single value",
                               dcm_vr_name(vr));
            if (count && (st = vp_buf_putc(&r->val, '\\')))
                return fail_buf(r, st, tag);
            if ((st = parse_string_value(r, vr, tag)))
                return st;
        } else if (peek(r) == 'n') {
            return fail_at(r, r->pos, VP_EPARSE, tag, "null is not a value of VR %s",
                           dcm_vr_name(vr));
        } else if ((st = parse_binary_value(r, vr, tag))) {
            return st;
        }
        count++;
        if ((st = next_entry(r, ']', &more, tag)))
            return st;
    }
    if (string && dcm_vr_is_text(vr))
        note_text(r, r->val.data, r->val.len);
    else if (string && (st = to_latin1(r, at, tag, vr)))
        return st;
    return store(r, ds, tag, vr, r->val.data, r->val.len);
}

/* One attribute object: "vr" and at most one of Value, InlineBinary, BulkDataURI (F.2.2).
 * Members may come in any order; a value before "vr" is checked, then parsed once the VR is
 * known. */
static vp_status parse_element(struct jr *r, dcm_dataset *ds, uint32_t tag, unsigned depth)
{
    static const char *const kinds[] = {"", "Value", "InlineBinary", "BulkDataURI"};
    vp_status st;
    size_t obj_at;
    bool empty, more = true;
    skip_ws(r);
    obj_at = r->pos;
    if ((st = open_container(r, '{', tag, "an attribute object", &empty)))
        return st;
    enum dcm_vr vr = DCM_VR_NONE;
    enum value_kind kind = KIND_NONE;
    size_t value_at = 0;
    bool done = false;
    while (!empty && more) {
        size_t key_at = r->pos;
        if ((st = parse_string(r, &r->str, tag)) || (st = expect(r, ':', tag, "':'")))
            return st;
        enum value_kind k = KIND_NONE;
        for (int i = 1; i <= 3; i++)
            if (r->str.len == strlen(kinds[i]) && memcmp(r->str.data, kinds[i], r->str.len) == 0)
                k = (enum value_kind)i;
        if (r->str.len == 2 && memcmp(r->str.data, "vr", 2) == 0) {
            if (vr != DCM_VR_NONE)
                return fail_at(r, key_at, VP_EPARSE, tag, "duplicate \"vr\"");
            size_t vr_at = r->pos;
            if ((st = parse_string(r, &r->str, tag)))
                return st;
            if (r->str.len == 2)
                vr = dcm_vr_from_chars((char)r->str.data[0], (char)r->str.data[1]);
            if (vr == DCM_VR_NONE || vr >= DCM_VR_COUNT_REAL)
                return fail_at(r, vr_at, VP_EPARSE, tag, "\"%.8s\" is not a VR",
                               (const char *)r->str.data);
        } else if (k != KIND_NONE) {
            if (kind != KIND_NONE)
                return fail_at(r, key_at, VP_EPARSE, tag, "both %s and %s", kinds[kind], kinds[k]);
            kind = k;
            skip_ws(r);
            value_at = r->pos;
            if (vr != DCM_VR_NONE) {
                if ((st = parse_value(r, ds, tag, vr, kind, depth)))
                    return st;
                done = true;
            } else if ((st = skip_value(r, tag, 0))) {
                return st;
            }
        } else {
            return fail_at(r, key_at, VP_EPARSE, tag,
                           "unknown member (expected vr, Value, InlineBinary or BulkDataURI)");
        }
        if ((st = next_entry(r, '}', &more, tag)))
            return st;
    }
    if (vr == DCM_VR_NONE)
        return fail_at(r, obj_at, VP_EPARSE, tag, "attribute has no \"vr\"");
    if (kind != KIND_NONE && !done) {
        size_t end = r->pos;
        r->pos = value_at;
        if ((st = parse_value(r, ds, tag, vr, kind, depth)))
            return st;
        r->pos = end;
    } else if (kind == KIND_NONE) {
        /* F.2.5: an attribute without a value */
        if ((st = count_element(r, ds, tag)))
            return st;
        st = vr == DCM_VR_SQ ? dcm_dataset_set_sequence(ds, tag, NULL)
                             : dcm_dataset_set(ds, tag, vr, NULL, 0, NULL);
        if (st)
            return fail_buf(r, st, tag);
    }
    return VP_OK;
}

/* A DICOM JSON Model object (F.2.2): members named by tags, each an attribute object. */
static vp_status parse_dataset(struct jr *r, dcm_dataset *ds, unsigned depth)
{
    vp_status st;
    bool empty, more = true;
    if ((st = open_container(r, '{', 0, "a DICOM JSON object", &empty)))
        return st;
    while (!empty && more) {
        size_t key_at = r->pos;
        if (peek(r) != '"')
            return fail_at(r, r->pos, VP_EPARSE, 0, "expected a tag string, found %s",
                           describe(peek(r)));
        key_at = r->pos;
        if ((st = parse_string(r, &r->str, 0)))
            return st;
        int g = r->str.len == 8 ? hex4(r->str.data) : -1;
        int e = r->str.len == 8 ? hex4(r->str.data + 4) : -1;
        if (g < 0 || e < 0)
            return fail_at(r, key_at, VP_EPARSE, 0, "attribute name \"%.16s\" is not 8 hex digits",
                           (const char *)r->str.data);
        uint32_t tag = DCM_TAG(g, e);
        if (g == 0xFFFE)
            return fail_at(r, key_at, VP_EPARSE, tag, "item and delimiter tags are no attributes");
        if (dcm_dataset_find(ds, tag))
            return fail_at(r, key_at, VP_EPARSE, tag, "duplicate attribute");
        if ((st = expect(r, ':', tag, "':'")) || (st = parse_element(r, ds, tag, depth)) ||
            (st = next_entry(r, '}', &more, 0)))
            return st;
    }
    return VP_OK;
}

/* Specific Character Set for UTF-8 text wherever the tree declares one, and at the root. */
static vp_status set_utf8(dcm_dataset *ds)
{
    static const char utf8[] = "ISO_IR 192";
    vp_status st = VP_OK;
    if (!ds->parent || dcm_dataset_find(ds, DCM_TAG_SPECIFIC_CHARACTER_SET))
        st = dcm_dataset_set(ds, DCM_TAG_SPECIFIC_CHARACTER_SET, DCM_VR_CS, utf8, sizeof utf8 - 1,
                             NULL);
    for (uint32_t i = 0; i < ds->n && !st; i++) {
        const dcm_element *el = &ds->el[i];
        if (el->flags & EL_SEQ)
            for (uint32_t k = 0; k < el->u.items.n && !st; k++)
                st = set_utf8(el->u.items.v[k]);
    }
    return st;
}

vp_status dcm_json_read(const char *json, size_t len, const dcm_read_opts *opts, dcm_dataset **out,
                        vp_error *err)
{
    *out = NULL;
    if (!json && len)
        return vp_error_set(err, VP_EINVAL, "dcm_json_read: no input");
    struct jr r = {.p = (const uint8_t *)json, .len = len, .err = err};
    dcm__read_opts_defaults(&r.o, opts);
    uint64_t max = r.o.max_length < 0xFFFFFFFEu ? r.o.max_length : 0xFFFFFFFEu;
    vp_buf_init(&r.val, (size_t)max);
    /* a base64 string is 4/3 of the value it holds; member names need a little room too */
    vp_buf_init(&r.str, (size_t)(max / 3 * 4 + 4 + 256));
    vp_status st;
    dcm_dataset *ds = dcm_dataset_new();
    if (!ds) {
        st = vp_error_set(err, VP_ENOMEM, "out of memory");
        goto done;
    }
    /* RFC 8259 8.1: a byte order mark may be ignored */
    if (len >= 3 && memcmp(json, "\xEF\xBB\xBF", 3) == 0)
        r.pos = 3;
    if ((st = parse_dataset(&r, ds, 0)))
        goto done;
    if (peek(&r) != -1) {
        st = fail_at(&r, r.pos, VP_EPARSE, 0, "expected end of input after the object, found %s",
                     describe(peek(&r)));
        goto done;
    }
    if (r.non_ascii && (st = set_utf8(ds))) {
        st = vp_error_set(err, st, "out of memory");
        goto done;
    }
done:
    vp_buf_fini(&r.val);
    vp_buf_fini(&r.str);
    if (st) {
        dcm_dataset_free(ds);
        return st;
    }
    *out = ds;
    return VP_OK;
}
