/* SPDX-License-Identifier: MIT */
/*
 * Attribute matching of PS3.4 C.2.2.2 as SQL conditions over the index columns.
 *
 * Wild cards (C.2.2.2.4) become SQLite GLOB patterns: GLOB is case-sensitive as DICOM
 * requires, does not depend on PRAGMA case_sensitive_like as LIKE does, and has only three
 * metacharacters. DICOM gives "*" and "?" no literal form, so they map one to one; "[" is the
 * only character to escape ("[[]"), so "%", "_" and "\" in a value are plain characters.
 * Person names may match ignoring ASCII case (C.2.2.2.1 leaves PN case to the implementation):
 * "= ? COLLATE NOCASE" for single values (the patient name indexes are NOCASE) and
 * "lower(col) GLOB ?" with a pattern lowered the same way for wild cards. Both fold ASCII only,
 * as SQLite does without ICU.
 *
 * Dates and times are stored as their DICOM text (DA "YYYYMMDD", TM "HHMMSS.FFFFFF" with
 * possibly fewer components), so ranges (C.2.2.2.5) compare text. An upper time bound gets a
 * "~" appended (after every digit and "."), so "-1015" includes 10:15:59.9: a bound of reduced
 * precision covers its whole minute or hour. A stored time of reduced precision is its first
 * instant ("0930" is 09:30:00): it is padded to HHMMSS in the SQL (TM_NORM), else "0930" would
 * sort before the bound "093000" it equals.
 */
#include <stdio.h>
#include <string.h>

#include "qry/internal.h"

void qry__cond_fini(qry_cond *c)
{
    for (size_t i = 0; i < c->n_params; i++)
        vp_free(c->params[i]);
    vp_free(c->params);
    c->params = NULL;
    c->n_params = c->cap_params = 0;
}

vp_status qry__param_add(qry_cond *c, const char *s, size_t n)
{
    if (c->n_params == c->cap_params) {
        size_t cap = c->cap_params ? c->cap_params * 2 : 8, bytes;
        if (vp_mul_size(cap, sizeof *c->params, &bytes))
            return VP_ENOMEM;
        char **p = vp_realloc(c->params, bytes);
        if (!p)
            return VP_ENOMEM;
        c->params = p;
        c->cap_params = cap;
    }
    char *copy = vp_malloc(n + 1);
    if (!copy)
        return VP_ENOMEM;
    memcpy(copy, s, n);
    copy[n] = 0;
    c->params[c->n_params++] = copy;
    return VP_OK;
}

static bool has_wild(const char *v, size_t n)
{
    return memchr(v, '*', n) || memchr(v, '?', n);
}

static bool is_digits(const char *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] < '0' || v[i] > '9')
            return false;
    return true;
}

static unsigned two(const char *v)
{
    return (unsigned)(v[0] - '0') * 10 + (unsigned)(v[1] - '0');
}

/* PS3.5 Table 6.2-1 DA: YYYYMMDD. */
static bool da_valid(const char *v, size_t n)
{
    if (n != 8 || !is_digits(v, n))
        return false;
    unsigned mm = two(v + 4), dd = two(v + 6);
    return mm >= 1 && mm <= 12 && dd >= 1 && dd <= 31;
}

/* PS3.5 Table 6.2-1 TM: HH[MM[SS[.F{1,6}]]]. */
static bool tm_valid(const char *v, size_t n)
{
    const char *dot = memchr(v, '.', n);
    size_t whole = dot ? (size_t)(dot - v) : n;
    if (whole < 2 || whole > 6 || whole % 2 || !is_digits(v, whole))
        return false;
    if (two(v) > 23 || (whole >= 4 && two(v + 2) > 59) || (whole == 6 && two(v + 4) > 60))
        return false;
    if (dot) {
        size_t frac = n - whole - 1;
        if (whole != 6 || frac < 1 || frac > 6 || !is_digits(dot + 1, frac))
            return false;
    }
    return true;
}

/* PS3.5 Table 6.2-1 IS (and DS when real): an optional sign and digits, a "." and exponent
 * for DS. Checked so that CAST cannot silently turn nonsense into 0. */
static bool number_valid(const char *v, size_t n, bool real)
{
    size_t i = 0, digits = 0;
    if (i < n && (v[i] == '+' || v[i] == '-'))
        i++;
    for (; i < n && v[i] >= '0' && v[i] <= '9'; i++)
        digits++;
    if (real && i < n && v[i] == '.')
        for (i++; i < n && v[i] >= '0' && v[i] <= '9'; i++)
            digits++;
    if (real && digits && i < n && (v[i] == 'e' || v[i] == 'E')) {
        i++;
        if (i < n && (v[i] == '+' || v[i] == '-'))
            i++;
        size_t exp = 0;
        for (; i < n && v[i] >= '0' && v[i] <= '9'; i++)
            exp++;
        if (!exp)
            return false;
    }
    return digits > 0 && i == n && n <= 16;
}

/* Characters of a UID (PS3.5 9.1); full validity is the index's business at ingest. */
static bool uid_chars_valid(const char *v, size_t n)
{
    if (n == 0 || n > DCM_UID_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(v[i] == '.' || (v[i] >= '0' && v[i] <= '9')))
            return false;
    return true;
}

static vp_status put(qry_cond *c, const char *s)
{
    return vp_buf_puts(c->sql, s);
}

/* Appends a GLOB pattern for a DICOM wild card value as the next parameter. */
static vp_status glob_param(qry_cond *c, const char *v, size_t n, bool lower)
{
    vp_buf b;
    vp_buf_init(&b, 0);
    vp_status st = VP_OK;
    for (size_t i = 0; i < n && !st; i++) {
        char ch = v[i];
        if (ch == '[')
            st = vp_buf_puts(&b, "[[]");
        else
            st = vp_buf_putc(&b, (uint8_t)(lower && ch >= 'A' && ch <= 'Z' ? ch + 32 : ch));
    }
    if (!st)
        st = qry__param_add(c, b.data ? (const char *)b.data : "", b.len);
    vp_buf_fini(&b);
    return st;
}

/* The range [lo, hi) of the values starting with the wild-card-free prefix of v, lowered as
 * NOCASE folds (ASCII): lo is the prefix, hi the prefix with its last byte one higher. false
 * when there is no prefix (a leading wild card) or its last byte cannot be raised. */
static bool prefix_range(const char *v, size_t n, char *lo, char *hi, size_t cap)
{
    size_t k = 0;
    while (k < n && k + 1 < cap && v[k] != '*' && v[k] != '?') {
        char ch = v[k];
        lo[k] = ch >= 'A' && ch <= 'Z' ? (char)(ch + 32) : ch;
        k++;
    }
    if (k == 0 || (uint8_t)lo[k - 1] == 0xFF)
        return false;
    lo[k] = 0;
    memcpy(hi, lo, k + 1);
    hi[k - 1] = (char)((uint8_t)hi[k - 1] + 1);
    return true;
}

/* Single value or wild card matching of a text value (C.2.2.2.1, C.2.2.2.4). */
static vp_status text_cond(qry_cond *c, const char *col, const char *v, size_t n, bool nocase)
{
    vp_status st;
    if (has_wild(v, n)) {
        if (!nocase) {
            st = vp_buf_printf(c->sql, "%s GLOB ?", col);
            return st ? st : glob_param(c, v, n, false);
        }
        /* lower(col) cannot use the NOCASE index of a name column; the range of the pattern's
         * prefix can, and narrows the rows the GLOB then decides on ("SMITH*": an index range
         * instead of a scan of every animal). */
        char lo[QRY_VALUE_BYTES_MAX + 1], hi[QRY_VALUE_BYTES_MAX + 1];
        if (prefix_range(v, n, lo, hi, sizeof lo)) {
            st = vp_buf_printf(c->sql,
                               "(%s >= ? COLLATE NOCASE AND %s < ? COLLATE NOCASE AND "
                               "lower(%s) GLOB ?)",
                               col, col, col);
            if (!st)
                st = qry__param_add(c, lo, strlen(lo));
            if (!st)
                st = qry__param_add(c, hi, strlen(hi));
            return st ? st : glob_param(c, v, n, true);
        }
        st = vp_buf_printf(c->sql, "lower(%s) GLOB ?", col);
        return st ? st : glob_param(c, v, n, true);
    }
    st = vp_buf_printf(c->sql, nocase ? "%s = ? COLLATE NOCASE" : "%s = ?", col);
    return st ? st : qry__param_add(c, v, n);
}

static bool unconstrained(const char *s, size_t n)
{
    return n == 0 || (n == 1 && s[0] == '*');
}

/* Whether every part of s between delimiters delim is "" or "*". */
static bool parts_unconstrained(const char *s, size_t n, char delim)
{
    const char *end = s + n;
    for (;;) {
        const char *d = memchr(s, delim, (size_t)(end - s));
        if (!unconstrained(s, (size_t)((d ? d : end) - s)))
            return false;
        if (!d)
            return true;
        s = d + 1;
    }
}

/* The pet's name a Patient's Name key asks for alone: "^G" or "*^G" (G neither "" nor "*"),
 * any later component and component group "" or "*". The index keeps the pet's name apart
 * (the given name of "Owner^Pet", or the whole name when written alone, src/idx/record.c). */
static bool pet_component(const char *v, size_t n, const char **pet, size_t *pet_len)
{
    const char *grp = memchr(v, '=', n);
    size_t alpha = grp ? (size_t)(grp - v) : n;
    if (grp && !parts_unconstrained(grp + 1, n - alpha - 1, '='))
        return false;
    const char *c1 = memchr(v, '^', alpha);
    if (!c1 || !unconstrained(v, (size_t)(c1 - v)))
        return false;
    const char *g = c1 + 1, *end = v + alpha;
    const char *c2 = memchr(g, '^', (size_t)(end - g));
    size_t glen = (size_t)((c2 ? c2 : end) - g);
    if (unconstrained(g, glen) || (c2 && !parts_unconstrained(c2 + 1, (size_t)(end - c2 - 1), '^')))
        return false;
    *pet = g;
    *pet_len = glen;
    return true;
}

typedef struct range {
    const char *lo, *hi; /* bounds, NULL when open */
    size_t lo_len, hi_len;
    bool is_range; /* a "-" was present */
} range;

/* Splits "A-B", "-B", "A-" or "A" and validates both sides with valid(). */
static vp_status range_parse(const char *v, size_t n, bool (*valid)(const char *, size_t),
                             const char *what, range *r, vp_error *err)
{
    memset(r, 0, sizeof *r);
    const char *dash = memchr(v, '-', n);
    if (!dash) {
        r->lo = r->hi = v;
        r->lo_len = r->hi_len = n;
    } else {
        r->is_range = true;
        size_t a = (size_t)(dash - v), b = n - a - 1;
        if (memchr(dash + 1, '-', b) || (a == 0 && b == 0))
            return vp_error_set(err, VP_EINVAL, "%s range \"%.*s\" is not A-B, -B or A-", what,
                                (int)(n > 40 ? 40 : n), v);
        if (a)
            r->lo = v, r->lo_len = a;
        if (b)
            r->hi = dash + 1, r->hi_len = b;
        /* PS3.5 6.2: a query range may carry spaces around its parts. */
        while (r->lo && r->lo_len && r->lo[r->lo_len - 1] == ' ')
            r->lo_len--;
        while (r->hi && r->hi_len && r->hi[0] == ' ')
            r->hi++, r->hi_len--;
    }
    if ((r->lo && !valid(r->lo, r->lo_len)) || (r->hi && !valid(r->hi, r->hi_len)))
        return vp_error_set(err, VP_EINVAL, "%s value \"%.*s\" is not valid", what,
                            (int)(n > 40 ? 40 : n), v);
    return VP_OK;
}

/* A stored TM (%s: the column) padded to at least HHMMSS: "10" -> "100000", "1015.5" stays. */
#define TM_NORM "(substr(%s || '0000', 1, 6) || substr(%s, 7))"
#define TM_NORM_STUDY "(substr(study.study_time || '0000', 1, 6) || substr(study.study_time, 7))"

/* Text bound: the value, with "~" appended to upper time bounds (see the file comment). */
static void bound(char *out, size_t size, const char *v, size_t n, bool upper_tm)
{
    size_t k = n < size - 2 ? n : size - 2;
    memcpy(out, v, k);
    if (upper_tm)
        out[k++] = '~';
    out[k] = 0;
}

/* Range matching of DA and TM (C.2.2.2.5.1, C.2.2.2.5.2); single values are the range
 * [v, v], which for a time of reduced precision matches every time within it. */
static vp_status date_time_cond(qry_cond *c, const char *col, const char *v, size_t n, bool tm,
                                vp_error *err)
{
    range r;
    vp_status st = range_parse(v, n, tm ? tm_valid : da_valid, tm ? "time" : "date", &r, err);
    if (st)
        return st;
    char lo[24], hi[24];
    if (r.lo)
        bound(lo, sizeof lo, r.lo, r.lo_len, false);
    if (r.hi)
        bound(hi, sizeof hi, r.hi, r.hi_len, tm);
    /* "<date1> - <date2>, where <date1> is less or equal to <date2>" (C.2.2.2.5.1): a
     * reversed range is no key the standard defines, so it is refused rather than run. */
    if (r.lo && r.hi && strcmp(lo, hi) > 0)
        return vp_error_set(err, VP_EINVAL, "%s range \"%.*s\" ends before it starts",
                            tm ? "time" : "date", (int)n, v);
    if (!tm && !r.is_range) {
        st = vp_buf_printf(c->sql, "%s = ?", col);
        return st ? st : qry__param_add(c, lo, strlen(lo));
    }
    char val[160];
    if (tm)
        snprintf(val, sizeof val, TM_NORM, col, col);
    else
        snprintf(val, sizeof val, "%s", col);
    if (r.lo && r.hi)
        st = vp_buf_printf(c->sql, "%s BETWEEN ? AND ?", val);
    else if (r.lo)
        st = vp_buf_printf(c->sql, "%s >= ?", val);
    else /* an unknown (empty) value is no date before anything */
        st = vp_buf_printf(c->sql, "(%s <> '' AND %s <= ?)", col, val);
    if (!st && r.lo)
        st = qry__param_add(c, lo, strlen(lo));
    if (!st && r.hi)
        st = qry__param_add(c, hi, strlen(hi));
    return st;
}

/* The condition for one value of a key. */
static vp_status value_cond(qry_cond *c, const qry_key_def *def, const char *col, const char *v,
                            size_t n, const qry_opts *opts, vp_error *err)
{
    uint32_t t = def->tag;
    vp_status st;
    switch ((enum qry_kind)def->kind) {
    case QRY_KIND_PN: return text_cond(c, col, v, n, opts->pn_case_insensitive);
    case QRY_KIND_PATIENT_NAME: {
        bool nocase = opts->pn_case_insensitive;
        const char *pet;
        size_t pet_len;
        if (!pet_component(v, n, &pet, &pet_len))
            return text_cond(c, col, v, n, nocase);
        st = put(c, "(");
        if (!st)
            st = text_cond(c, col, v, n, nocase);
        if (!st)
            st = put(c, " OR ");
        if (!st)
            st = text_cond(c, "patient.pet_name", pet, pet_len, nocase);
        return st ? st : put(c, ")");
    }
    case QRY_KIND_TEXT:
    case QRY_KIND_CODE_SEQ:
    case QRY_KIND_MODALITIES: return text_cond(c, col, v, n, false);
    case QRY_KIND_UID:
    case QRY_KIND_SOP_CLASSES: /* qry__match makes it a list */
        if (!uid_chars_valid(v, n))
            return vp_error_set(err, VP_EINVAL, "(%04X,%04X) value \"%.*s\" is not a UID",
                                DCM_GROUP(t), DCM_ELEMENT(t), (int)(n > 70 ? 70 : n), v);
        st = vp_buf_printf(c->sql, "%s = ?", col);
        return st ? st : qry__param_add(c, v, n);
    case QRY_KIND_DA:
    case QRY_KIND_TM:
        if (has_wild(v, n))
            break;
        return date_time_cond(c, col, v, n, def->kind == QRY_KIND_TM, err);
    case QRY_KIND_IS:
    case QRY_KIND_DS: {
        bool real = def->kind == QRY_KIND_DS;
        if (has_wild(v, n))
            break;
        if (!number_valid(v, n, real))
            return vp_error_set(err, VP_EINVAL, "(%04X,%04X) value \"%.*s\" is not a number",
                                DCM_GROUP(t), DCM_ELEMENT(t), (int)(n > 40 ? 40 : n), v);
        const char *type = real ? "REAL" : "INTEGER";
        st = vp_buf_printf(c->sql, "CAST(%s AS %s) = CAST(? AS %s)", col, type, type);
        return st ? st : qry__param_add(c, v, n);
    }
    case QRY_KIND_RETURN: return VP_OK;
    }
    /* C.2.2.2.4 defines wild cards for AE CS LO LT PN SH ST UC UR UT only. */
    return vp_error_set(err, VP_EINVAL, "(%04X,%04X) %s does not allow wild cards", DCM_GROUP(t),
                        DCM_ELEMENT(t), dcm_vr_name((enum dcm_vr)def->vr));
}

static bool unknown_matches(const qry_key_def *def, const qry_opts *opts)
{
    /* UIDs are Type 1 unique keys and never stored empty; the modality test runs per series. */
    return !opts->unknown_fails && def->kind != QRY_KIND_UID && def->kind != QRY_KIND_MODALITIES;
}

/* List of UID Matching (C.2.2.2.2): "col IN (?, ...)". */
static vp_status uid_list_cond(qry_cond *c, const qry_key_def *def, const char *col,
                               const qry_values *vals, vp_error *err)
{
    vp_status st = vp_buf_printf(c->sql, "%s IN (", col);
    for (size_t i = 0; i < vals->n && !st; i++) {
        const char *v = vals->v[i];
        size_t n = vals->len[i];
        if (!uid_chars_valid(v, n))
            return vp_error_set(err, VP_EINVAL, "(%04X,%04X) value %zu \"%.*s\" is not a UID",
                                DCM_GROUP(def->tag), DCM_ELEMENT(def->tag), i + 1,
                                (int)(n > 70 ? 70 : n), v);
        st = put(c, i ? ", ?" : "?");
        if (!st)
            st = qry__param_add(c, v, n);
    }
    return st ? st : put(c, ")");
}

/* The instances of the study, for SOP Classes in Study. */
#define STUDY_INSTANCES                                                                            \
    "EXISTS (SELECT 1 FROM series s JOIN instance i ON i.series = s.id WHERE s.study = study.id"

vp_status qry__match(qry_cond *c, const qry_key_def *def, const char *col, const qry_values *vals,
                     const qry_opts *opts, vp_error *err)
{
    vp_status st = VP_OK;
    uint32_t t = def->tag;
    if (def->kind == QRY_KIND_RETURN)
        return put(c, "1");
    if (vals->empty_only) {
        /* Empty Value Matching: a key of "" matches entities whose value is empty. */
        if (def->kind == QRY_KIND_MODALITIES)
            return put(c, "study.modalities = ''");
        if (def->kind == QRY_KIND_SOP_CLASSES)
            return put(c, "NOT " STUDY_INSTANCES ")");
        return vp_buf_printf(c->sql, "%s = ''", col);
    }
    if (def->kind == QRY_KIND_UID && vals->n > 1)
        return uid_list_cond(c, def, col, vals, err);
    if (def->kind == QRY_KIND_SOP_CLASSES) {
        st = put(c, STUDY_INSTANCES " AND ");
        if (!st)
            st = uid_list_cond(c, def, "i.sop_class", vals, err);
        return st ? st : put(c, ")");
    }
    /* Several values are an extension for other VRs than UI; each is an OR term of the SQL,
     * whose parser takes at most 1,000 nested terms. */
    if (vals->n > QRY_TEXT_VALUES_MAX)
        return vp_error_set(err, VP_ELIMIT, "(%04X,%04X) has %zu values, at most %u accepted",
                            DCM_GROUP(t), DCM_ELEMENT(t), vals->n, QRY_TEXT_VALUES_MAX);
    for (size_t i = 0; i < vals->n; i++)
        if (vals->len[i] > QRY_VALUE_BYTES_MAX)
            return vp_error_set(err, VP_ELIMIT, "(%04X,%04X) value %zu is %zu bytes, at most %u",
                                DCM_GROUP(t), DCM_ELEMENT(t), i + 1, vals->len[i],
                                QRY_VALUE_BYTES_MAX);
    const char *inner = col;
    if (def->kind == QRY_KIND_MODALITIES) {
        /* Modalities in Study matches when any of its values matches (its note in the Study
         * level keys of PS3.4 C.6): tested against the series of the study, so "C*" cannot match
         * across the joined "CT\MR" text. */
        st = put(c, "EXISTS (SELECT 1 FROM series m WHERE m.study = study.id"
                    " AND m.n_instances > 0 AND ");
        inner = "m.modality";
    }
    bool unknown = unknown_matches(def, opts);
    /* For names matched ignoring case, the empty test is a NOCASE one too, so that both sides
     * of the OR can use the NOCASE index (SQLite's multi-index OR). */
    bool nocase = opts->pn_case_insensitive &&
                  (def->kind == QRY_KIND_PN || def->kind == QRY_KIND_PATIENT_NAME);
    if (!st && unknown)
        st = vp_buf_printf(c->sql, nocase ? "(%s = '' COLLATE NOCASE OR " : "(%s = '' OR ", col);
    /* A key with several values matches when any value does (as for Modalities in Study). */
    if (!st && vals->n > 1)
        st = put(c, "(");
    for (size_t i = 0; i < vals->n && !st; i++) {
        if (i)
            st = put(c, " OR ");
        if (!st)
            st = value_cond(c, def, inner, vals->v[i], vals->len[i], opts, err);
    }
    if (!st && vals->n > 1)
        st = put(c, ")");
    if (!st && unknown)
        st = put(c, ")");
    if (!st && def->kind == QRY_KIND_MODALITIES)
        st = put(c, ")");
    return st;
}

static bool same_form(const range *a, const range *b)
{
    return a->is_range && b->is_range && !a->lo == !b->lo && !a->hi == !b->hi;
}

vp_status qry__match_datetime(qry_cond *c, const char *date, size_t dlen, const char *time,
                              size_t tlen, const qry_opts *opts, vp_error *err)
{
    range d, t;
    vp_status st = range_parse(date, dlen, da_valid, "date", &d, err);
    if (!st)
        st = range_parse(time, tlen, tm_valid, "time", &t, err);
    if (st)
        return st;
    if (!same_form(&d, &t))
        return VP_ENOTFOUND;
    /* C.2.2.2.5.4: the concatenated values match as one DT range. */
    char lo[40], hi[40];
    if (d.lo) {
        bound(lo, sizeof lo, d.lo, d.lo_len, false);
        bound(lo + 8, sizeof lo - 8, t.lo, t.lo_len, false);
    }
    if (d.hi) {
        bound(hi, sizeof hi, d.hi, d.hi_len, false);
        bound(hi + 8, sizeof hi - 8, t.hi, t.hi_len, true);
    }
    if (d.lo && d.hi && strcmp(lo, hi) > 0)
        return vp_error_set(err, VP_EINVAL, "date-time range ends before it starts");
    const char *dt = "(study.study_date || " TM_NORM_STUDY ")";
    if (!opts->unknown_fails)
        st = put(c, "(study.study_date = '' OR ");
    if (!st && d.lo && d.hi)
        st = vp_buf_printf(c->sql, "%s BETWEEN ? AND ?", dt);
    else if (!st && d.lo)
        st = vp_buf_printf(c->sql, "%s >= ?", dt);
    else if (!st)
        st = vp_buf_printf(c->sql, "(study.study_date <> '' AND %s <= ?)", dt);
    if (!st && d.lo)
        st = qry__param_add(c, lo, strlen(lo));
    if (!st && d.hi)
        st = qry__param_add(c, hi, strlen(hi));
    if (!st && !opts->unknown_fails)
        st = put(c, ")");
    return st;
}
