/* SPDX-License-Identifier: MIT */
/*
 * QIDO-RS (PS3.18 10.6, the Search transaction): query parameters (PS3.18 8.3.4) to a C-FIND
 * Identifier of the Study Root model (the model of PS3.18 10.6.1.2: Patient attributes are
 * Study attributes), compiled by src/qry and run on an index cursor; each match written as a
 * DICOM JSON object (PS3.18 F.2) of the attributes of Tables 10.6.3-3/-4/-5 the index holds,
 * those named by includefield (8.3.4.3) and those matched.
 *
 * Choices, each also noted where it is made:
 * - Attributes the index cannot answer (Timezone Offset From UTC, Rows, Columns, Request
 *   Attribute Sequence, ...) are left out of answers, as 10.6.3.3 allows ("that are supported
 *   by the origin server"; "shall be present if known"); an includefield naming one is
 *   accepted and has no effect; a match on one is refused (400), since ignoring it would
 *   answer matches that do not match.
 * - includefield=all beside other includefield values (8.3.4.3 says they "shall not be
 *   present") is accepted: "all" already holds them.
 * - fuzzymatching=true: a person name value without wild cards matches any name one of whose
 *   components starts with it, ignoring case ("rex" finds "Smith^Rex"); PS3.4 C.2.2.2.1.1
 *   leaves fuzzy matching to the implementation. Person names always match ignoring ASCII
 *   case, as C-FIND does here (PS3.4 C.2.2.2.4 allows it).
 * - Values are lists split at "," (8.3.4.1) and also at "\" (the C-FIND separator), so a
 *   text value cannot hold either; for UIDs this is List of UID Matching (PS3.4 C.2.2.2.2),
 *   for other keys any value matching is enough (the compiler's rule).
 * - limit=0 is refused: a request for no match is no request.
 * - An unknown (empty) value does not match a value asked for (qry's unknown_fails), unlike
 *   C-FIND here; emptyvaluematching=true with an empty value finds exactly those.
 */
#include <stdio.h>
#include <string.h>

#include "web/qido.h"

#define T(g, e) DCM_TAG(g, e)
#define TAG_STUDY_UID T(0x0020, 0x000D)
#define TAG_SERIES_UID T(0x0020, 0x000E)
#define TAG_SOP_UID T(0x0008, 0x0018)
#define TAG_RETRIEVE_URL T(0x0008, 0x1190)
#define TAG_AVAILABILITY T(0x0008, 0x0056)

/* How an attribute takes part in a search. */
enum {
    A_DEF = 1,   /* returned by default at its level (PS3.18 Tables 10.6.3-3, -4, -5) */
    A_MATCH = 2, /* the index can match it (src/qry/keys.c) */
    A_SEQ = 4,   /* a code sequence: matched by its item keys (PS3.4 C.2.2.2.6) */
    A_WEB = 8,   /* computed here, not a key of the Identifier */
};

typedef struct qido_attr {
    uint32_t tag;
    uint8_t level; /* qry_level; patient attributes are STUDY (Study Root model) */
    uint8_t flags;
} qido_attr;

#define STUDY QRY_LEVEL_STUDY
#define SERIES QRY_LEVEL_SERIES
#define IMAGE QRY_LEVEL_IMAGE

/* The attributes the archive answers, sorted by tag: what the index holds (src/qry/keys.c)
 * and the two this file computes. "all" (8.3.4.3) is every one of them at the levels
 * answered. The counts are return keys only (PS3.4 C.3.4). */
static const qido_attr attrs[] = {
    {T(0x0008, 0x0016), IMAGE, A_DEF | A_MATCH},  /* SOP Class UID */
    {T(0x0008, 0x0018), IMAGE, A_DEF | A_MATCH},  /* SOP Instance UID */
    {T(0x0008, 0x0020), STUDY, A_DEF | A_MATCH},  /* Study Date */
    {T(0x0008, 0x0030), STUDY, A_DEF | A_MATCH},  /* Study Time */
    {T(0x0008, 0x0050), STUDY, A_DEF | A_MATCH},  /* Accession Number */
    {T(0x0008, 0x0056), STUDY, A_DEF | A_WEB},    /* Instance Availability (study, instance) */
    {T(0x0008, 0x0060), SERIES, A_DEF | A_MATCH}, /* Modality */
    {T(0x0008, 0x0061), STUDY, A_DEF | A_MATCH},  /* Modalities in Study */
    {T(0x0008, 0x0062), STUDY, A_MATCH},          /* SOP Classes in Study */
    {T(0x0008, 0x0090), STUDY, A_DEF | A_MATCH},  /* Referring Physician's Name */
    {T(0x0008, 0x1030), STUDY, A_MATCH},          /* Study Description */
    {T(0x0008, 0x103E), SERIES, A_DEF | A_MATCH}, /* Series Description */
    {T(0x0008, 0x1190), STUDY, A_DEF | A_WEB},    /* Retrieve URL (every level) */
    {T(0x0010, 0x0010), STUDY, A_DEF | A_MATCH},  /* Patient's Name */
    {T(0x0010, 0x0020), STUDY, A_DEF | A_MATCH},  /* Patient ID */
    {T(0x0010, 0x0021), STUDY, A_MATCH},          /* Issuer of Patient ID */
    {T(0x0010, 0x0030), STUDY, A_DEF | A_MATCH},  /* Patient's Birth Date */
    {T(0x0010, 0x0040), STUDY, A_DEF | A_MATCH},  /* Patient's Sex */
    {T(0x0010, 0x1030), STUDY, A_MATCH},          /* Patient's Weight */
    {T(0x0010, 0x2201), STUDY, A_MATCH},          /* Patient Species Description */
    {T(0x0010, 0x2202), STUDY, A_MATCH | A_SEQ},  /* Patient Species Code Sequence */
    {T(0x0010, 0x2203), STUDY, A_MATCH},          /* Patient's Sex Neutered */
    {T(0x0010, 0x2292), STUDY, A_MATCH},          /* Patient Breed Description */
    {T(0x0010, 0x2293), STUDY, A_MATCH | A_SEQ},  /* Patient Breed Code Sequence */
    {T(0x0010, 0x2297), STUDY, A_MATCH},          /* Responsible Person */
    {T(0x0010, 0x2298), STUDY, A_MATCH},          /* Responsible Person Role */
    {T(0x0010, 0x2299), STUDY, A_MATCH},          /* Responsible Organization */
    {T(0x0018, 0x0015), SERIES, A_MATCH},         /* Body Part Examined */
    {T(0x0020, 0x000D), STUDY, A_DEF | A_MATCH},  /* Study Instance UID */
    {T(0x0020, 0x000E), SERIES, A_DEF | A_MATCH}, /* Series Instance UID */
    {T(0x0020, 0x0010), STUDY, A_DEF | A_MATCH},  /* Study ID */
    {T(0x0020, 0x0011), SERIES, A_DEF | A_MATCH}, /* Series Number */
    {T(0x0020, 0x0013), IMAGE, A_DEF | A_MATCH},  /* Instance Number */
    {T(0x0020, 0x1200), STUDY, 0},                /* Number of Patient Related Studies */
    {T(0x0020, 0x1202), STUDY, 0},                /* ... Patient Related Series */
    {T(0x0020, 0x1204), STUDY, 0},                /* ... Patient Related Instances */
    {T(0x0020, 0x1206), STUDY, A_DEF},            /* Number of Study Related Series */
    {T(0x0020, 0x1208), STUDY, A_DEF},            /* Number of Study Related Instances */
    {T(0x0020, 0x1209), SERIES, A_DEF},           /* Number of Series Related Instances */
    {T(0x0028, 0x0008), IMAGE, A_DEF | A_MATCH},  /* Number of Frames */
};

/* Item keys of the code sequences the index keeps (Code Sequence Macro, PS3.3 Table 8.8-1). */
static const uint32_t code_item_keys[] = {
    T(0x0008, 0x0100), /* Code Value */
    T(0x0008, 0x0102), /* Coding Scheme Designator */
    T(0x0008, 0x0103), /* Coding Scheme Version */
    T(0x0008, 0x0104), /* Code Meaning */
};

static const qido_attr *attr_find(uint32_t tag)
{
    size_t lo = 0, hi = sizeof attrs / sizeof attrs[0];
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (attrs[mid].tag == tag)
            return &attrs[mid];
        if (attrs[mid].tag < tag)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static bool is_code_item_key(uint32_t tag)
{
    for (size_t i = 0; i < sizeof code_item_keys / sizeof code_item_keys[0]; i++)
        if (code_item_keys[i] == tag)
            return true;
    return false;
}

struct web_qido_query {
    web_qido_resource resource; /* target resource */
    qry_level level;            /* Query/Retrieve Level of the resource */
    dcm_dataset *id;            /* the Identifier */
    qry *q;                     /* compiled from id */
    bool fuzzy;                 /* fuzzymatching=true */
    bool availability;          /* Instance Availability answered */
    uint32_t limit;             /* 0 = none given */
    uint32_t offset;            /* matches skipped */
};

/* Levels whose attributes a resource answers by default and with "all": its own, and those
 * above when the path does not fix them (PS3.18 10.6.3.3.2: "If the Target Resource is All
 * Series, then include all Study Level Attributes"; 10.6.3.3.3 likewise for instances). */
static unsigned answered_levels(web_qido_resource r)
{
    switch (r) {
    case WEB_QIDO_STUDIES: return 1u << STUDY;
    case WEB_QIDO_STUDY_SERIES: return 1u << SERIES;
    case WEB_QIDO_SERIES: return 1u << STUDY | 1u << SERIES;
    case WEB_QIDO_STUDY_SERIES_INSTANCES: return 1u << IMAGE;
    case WEB_QIDO_STUDY_INSTANCES: return 1u << SERIES | 1u << IMAGE;
    case WEB_QIDO_INSTANCES: return 1u << STUDY | 1u << SERIES | 1u << IMAGE;
    }
    return 0;
}

/* Whether the path of the resource holds {StudyInstanceUID}. */
static bool path_has_study(web_qido_resource r)
{
    return r == WEB_QIDO_STUDY_SERIES || r == WEB_QIDO_STUDY_INSTANCES ||
           r == WEB_QIDO_STUDY_SERIES_INSTANCES;
}

static qry_level resource_level(web_qido_resource r)
{
    return r == WEB_QIDO_STUDIES                                ? QRY_LEVEL_STUDY
           : r == WEB_QIDO_STUDY_SERIES || r == WEB_QIDO_SERIES ? QRY_LEVEL_SERIES
                                                                : QRY_LEVEL_IMAGE;
}

/* Hostile bytes shown in a message: printable ASCII only, at most 48 characters. */
typedef struct shown {
    char s[56];
} shown;

static shown show(const char *p, size_t n)
{
    shown r;
    size_t k = 0;
    for (size_t i = 0; i < n && k < 48; i++)
        r.s[k++] = (p[i] >= 0x20 && p[i] < 0x7F && p[i] != '"') ? p[i] : '?';
    if (n > 48) {
        memcpy(r.s + k, "...", 3);
        k += 3;
    }
    r.s[k] = 0;
    return r;
}

static bool key_is(const web_qido_param *p, const char *name)
{
    size_t n = strlen(name);
    return p->key_len == n && memcmp(p->key, name, n) == 0;
}

static bool value_is(const web_qido_param *p, const char *v)
{
    size_t n = strlen(v);
    return p->value_len == n && memcmp(p->value, v, n) == 0;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/*
 * One component of an attribute path (PS3.18 8.3.4.1): a tag as eight hexadecimal digits
 * ("0020000D") or a keyword of the data dictionary ("StudyInstanceUID", PS3.6).
 */
static vp_status resolve_name(const char *s, size_t n, uint32_t *tag, vp_error *err)
{
    bool all_hex = n > 0;
    for (size_t i = 0; i < n; i++)
        all_hex = all_hex && hexval(s[i]) >= 0;
    if (n > 0 && (hexval(s[0]) >= 0 && s[0] <= '9')) { /* starts with a digit: a tag */
        if (n != 8 || !all_hex)
            return vp_error_set(err, VP_EINVAL,
                                "attribute \"%s\" is neither a tag of eight hexadecimal digits "
                                "nor a keyword (PS3.18 8.3.4.1)",
                                show(s, n).s);
        uint32_t t = 0;
        for (size_t i = 0; i < 8; i++)
            t = t << 4 | (uint32_t)hexval(s[i]);
        *tag = t;
        return VP_OK;
    }
    if (n == 8 && all_hex) { /* "ABCD0010": a tag spelt with a letter first */
        uint32_t t = 0;
        for (size_t i = 0; i < 8; i++)
            t = t << 4 | (uint32_t)hexval(s[i]);
        *tag = t;
        return VP_OK;
    }
    char kw[80];
    const dcm_dict_entry *e = NULL;
    if (n > 0 && n < sizeof kw && !memchr(s, 0, n)) {
        memcpy(kw, s, n);
        kw[n] = 0;
        e = dcm_dict_by_keyword(kw);
    }
    if (!e || e->mask != 0xFFFFFFFFu)
        return vp_error_set(err, VP_EINVAL, "unknown attribute \"%s\": not a DICOM keyword",
                            show(s, n).s);
    *tag = e->tag;
    return VP_OK;
}

/* An attribute path: a top-level tag and, for "Sequence.Item", the item key (0 if none). */
typedef struct attr_path {
    uint32_t tag;
    uint32_t item; /* 0 = none */
} attr_path;

static vp_status resolve_path(const char *s, size_t n, attr_path *path, vp_error *err)
{
    const char *dot = memchr(s, '.', n);
    path->item = 0;
    if (!dot)
        return resolve_name(s, n, &path->tag, err);
    size_t n1 = (size_t)(dot - s), n2 = n - n1 - 1;
    if (memchr(dot + 1, '.', n2))
        return vp_error_set(err, VP_EINVAL,
                            "attribute \"%s\": sequence paths of more than one item level are "
                            "not supported",
                            show(s, n).s);
    vp_status st = resolve_name(s, n1, &path->tag, err);
    if (!st)
        st = resolve_name(dot + 1, n2, &path->item, err);
    return st;
}

static void tag_name(uint32_t tag, char *buf, size_t size)
{
    const char *kw = dcm_dict_keyword(tag);
    snprintf(buf, size, "%s%s(%04X,%04X)", kw, *kw ? " " : "", DCM_GROUP(tag), DCM_ELEMENT(tag));
}

/* Adds tag as a return key (zero length; a sequence without item asks for all of it, PS3.4
 * C.2.2.2.6) unless the data set has it already. */
static vp_status add_return(dcm_dataset *ds, uint32_t tag)
{
    if (dcm_dataset_find(ds, tag))
        return VP_OK;
    enum dcm_vr vr = dcm_dict_vr(tag);
    if (vr == DCM_VR_SQ)
        return dcm_dataset_set_sequence(ds, tag, NULL);
    return dcm_dataset_set(ds, tag, vr < DCM_VR_COUNT_REAL ? vr : DCM_VR_UN, NULL, 0, NULL);
}

/* The single item of code sequence key tag (created, with the sequence, when missing). */
static vp_status code_item(dcm_dataset *id, uint32_t tag, dcm_dataset **item)
{
    dcm_element *seq = dcm_dataset_find(id, tag);
    vp_status st = VP_OK;
    if (!seq || !dcm_element_is_sequence(seq))
        st = dcm_dataset_set_sequence(id, tag, &seq);
    if (st)
        return st;
    if (dcm_element_item_count(seq) > 0) {
        *item = dcm_element_item(seq, 0);
        return VP_OK;
    }
    return dcm_element_add_item(seq, item);
}

/* State of one parse; everything is owned by wq or freed by parse_fini. */
typedef struct parse {
    web_qido_query *wq;
    bool empty_matching;                    /* emptyvaluematching=true (PS3.18 8.3.4.5) */
    bool include_all;                       /* includefield=all */
    attr_path matched[WEB_QIDO_MAX_PARAMS]; /* match parameters seen */
    size_t n_matched;
    vp_buf value; /* a value rewritten for the Identifier */
} parse;

/* Parses an unsigned integer parameter (PS3.18 8.3.4.4: "uint"). */
static vp_status parse_uint(const web_qido_param *p, const char *name, uint32_t *out, vp_error *err)
{
    uint64_t v = 0;
    bool ok = p->value_len > 0 && p->value_len <= 10;
    for (size_t i = 0; ok && i < p->value_len; i++) {
        char c = p->value[i];
        ok = c >= '0' && c <= '9';
        v = v * 10 + (uint64_t)(c - '0');
    }
    if (!ok || v > UINT32_MAX)
        return vp_error_set(err, VP_EINVAL,
                            "%s \"%s\" is not an unsigned integer below 2^32 (PS3.18 8.3.4.4)",
                            name, show(p->value, p->value_len).s);
    *out = (uint32_t)v;
    return VP_OK;
}

static vp_status parse_bool(const web_qido_param *p, bool *out, vp_error *err)
{
    if (value_is(p, "true") || value_is(p, "false")) {
        *out = value_is(p, "true");
        return VP_OK;
    }
    return vp_error_set(err, VP_EINVAL, "%s must be true or false, not \"%s\"",
                        show(p->key, p->key_len).s, show(p->value, p->value_len).s);
}

/* First pass: the parameters that say how to search (PS3.18 Table 8.3.4-1), each at most once. */
static vp_status control_param(parse *ps, const web_qido_param *p, unsigned *seen, bool *handled,
                               vp_error *err)
{
    static const char *const names[] = {"fuzzymatching", "limit", "offset", "emptyvaluematching",
                                        "multiplevaluematching"};
    *handled = true;
    web_qido_query *wq = ps->wq;
    for (unsigned i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (!key_is(p, names[i]))
            continue;
        if (*seen & (1u << i))
            return vp_error_set(err, VP_EINVAL,
                                "%s is given twice (PS3.18 8.3.4: \"a single "
                                "parameter\")",
                                names[i]);
        *seen |= 1u << i;
        bool b;
        vp_status st;
        switch (i) {
        case 0: return parse_bool(p, &wq->fuzzy, err);
        case 1:
            st = parse_uint(p, "limit", &wq->limit, err);
            if (!st && wq->limit == 0)
                st = vp_error_set(err, VP_EINVAL, "limit must be at least 1");
            return st;
        case 2: return parse_uint(p, "offset", &wq->offset, err);
        case 3: return parse_bool(p, &ps->empty_matching, err);
        default:
            /* Any value matching for multi-valued keys is what the compiler does anyway
             * (PS3.4 C.2.2.2.8 rule, conformance statement item). */
            return parse_bool(p, &b, err);
        }
    }
    /* Content negotiation query parameters (PS3.18 8.3.3): the HTTP layer's business. */
    *handled = key_is(p, "includefield") || key_is(p, "accept") || key_is(p, "charset");
    return VP_OK;
}

/*
 * The value of a match parameter as an Identifier key value: "," and "\" separate values
 * (PS3.18 8.3.4.1, PS3.5 6.4); an empty value is universal matching, or empty value matching
 * ("" of PS3.4 C.2.2.2.1) with emptyvaluematching=true; with fuzzymatching, a person name
 * value without wild cards v becomes v* and *^v* (a component starting with v).
 */
static vp_status match_value(parse *ps, const web_qido_param *p, enum dcm_vr vr, vp_error *err)
{
    vp_buf *out = &ps->value;
    vp_buf_reset(out);
    if (p->value_len > WEB_QIDO_VALUE_MAX)
        return vp_error_set(err, VP_ELIMIT, "value of %s is %zu bytes, at most %u accepted",
                            show(p->key, p->key_len).s, p->value_len, WEB_QIDO_VALUE_MAX);
    if (memchr(p->value, 0, p->value_len))
        return vp_error_set(err, VP_EINVAL, "value of %s holds a NUL byte",
                            show(p->key, p->key_len).s);
    if (p->value_len == 0)
        return ps->empty_matching ? vp_buf_puts(out, "\"\"") : VP_OK;
    bool fuzzy = ps->wq->fuzzy && vr == DCM_VR_PN;
    const char *v = p->value, *end = p->value + p->value_len;
    vp_status st = VP_OK;
    bool first = true;
    while (!st && v <= end) {
        const char *stop = v;
        while (stop < end && *stop != ',' && *stop != '\\')
            stop++;
        const char *s = v;
        size_t n = (size_t)(stop - v);
        while (n && *s == ' ')
            s++, n--;
        while (n && s[n - 1] == ' ')
            n--;
        if (!first)
            st = vp_buf_putc(out, '\\');
        first = false;
        if (st)
            break;
        if (fuzzy && n && !memchr(s, '*', n) && !memchr(s, '?', n) && !memchr(s, '=', n)) {
            st = vp_buf_append(out, s, n);
            if (!st)
                st = vp_buf_putc(out, '*');
            if (!st && !memchr(s, '^', n)) {
                st = vp_buf_puts(out, "\\*^");
                if (!st)
                    st = vp_buf_append(out, s, n);
                if (!st)
                    st = vp_buf_putc(out, '*');
            }
        } else {
            st = vp_buf_append(out, s, n);
        }
        v = stop + 1;
    }
    if (st == VP_ELIMIT)
        return vp_error_set(err, st, "value of %s too long", show(p->key, p->key_len).s);
    if (st)
        return vp_error_set(err, st, "out of memory");
    return VP_OK;
}

static bool matched_before(const parse *ps, attr_path path)
{
    for (size_t i = 0; i < ps->n_matched; i++)
        if (ps->matched[i].tag == path.tag && ps->matched[i].item == path.item)
            return true;
    return false;
}

/* A match parameter {attributeID}={value} (PS3.18 8.3.4.1). */
static vp_status match_param(parse *ps, const web_qido_param *p, vp_error *err)
{
    web_qido_query *wq = ps->wq;
    attr_path path;
    char name[96];
    vp_status st = resolve_path(p->key, p->key_len, &path, err);
    if (st)
        return st;
    tag_name(path.tag, name, sizeof name);
    const qido_attr *a = attr_find(path.tag);
    if (!a || !(a->flags & A_MATCH))
        return vp_error_set(err, VP_EINVAL, "%s cannot be matched by this archive%s", name,
                            a ? " (a return attribute: ask for it with includefield)" : "");
    if (a->level > wq->level)
        return vp_error_set(err, VP_EINVAL,
                            "%s is a %s attribute, not matched in a search for %ss "
                            "(PS3.18 10.6.1.2)",
                            name, qry_level_name((qry_level)a->level),
                            wq->level == QRY_LEVEL_IMAGE ? "instance" : qry_level_name(wq->level));
    if ((path.tag == TAG_STUDY_UID && path_has_study(wq->resource)) ||
        (path.tag == TAG_SERIES_UID && wq->resource == WEB_QIDO_STUDY_SERIES_INSTANCES))
        return vp_error_set(err, VP_EINVAL, "%s is given by the path of the resource", name);
    if (matched_before(ps, path))
        return vp_error_set(err, VP_EINVAL, "%s is given twice", name);
    if (ps->n_matched == WEB_QIDO_MAX_PARAMS)
        return vp_error_set(err, VP_ELIMIT, "too many match parameters");
    ps->matched[ps->n_matched++] = path;
    if (a->flags & A_SEQ) {
        if (!path.item) {
            if (p->value_len)
                return vp_error_set(err, VP_EINVAL,
                                    "%s is a sequence: match one of its item attributes, as "
                                    "%s.CodeValue=... (PS3.18 8.3.4.1)",
                                    name, dcm_dict_keyword(path.tag));
            return add_return(wq->id, path.tag);
        }
        if (!is_code_item_key(path.item)) {
            char item[96];
            tag_name(path.item, item, sizeof item);
            return vp_error_set(err, VP_EINVAL, "%s is not an item attribute of %s matched here",
                                item, name);
        }
        dcm_dataset *it;
        if ((st = code_item(wq->id, path.tag, &it)) || (st = match_value(ps, p, DCM_VR_SH, err)))
            return st;
        enum dcm_vr vr = dcm_dict_vr(path.item);
        return dcm_dataset_set(it, path.item, vr, ps->value.data, ps->value.len, NULL);
    }
    if (path.item)
        return vp_error_set(err, VP_EINVAL, "%s is not a sequence", name);
    enum dcm_vr vr = dcm_dict_vr(path.tag);
    if ((st = match_value(ps, p, vr, err)))
        return st;
    return dcm_dataset_set(wq->id, path.tag, vr, ps->value.data, ps->value.len, NULL);
}

/* Whether Instance Availability is answered for levels (Tables 10.6.3-3 and -5 have it). */
static bool availability_at(unsigned levels)
{
    return (levels & (1u << STUDY | 1u << IMAGE)) != 0;
}

/* One includefield value (PS3.18 8.3.4.3): a return key ("equivalent to C-FIND Universal
 * matching"), dropped when the archive does not hold it or it is of a level below the
 * resource's ("Series or Instance Level Attributes ... shall not be returned"). */
static vp_status include_one(parse *ps, const char *s, size_t n, vp_error *err)
{
    web_qido_query *wq = ps->wq;
    if (n == 3 && memcmp(s, "all", 3) == 0) {
        ps->include_all = true;
        return VP_OK;
    }
    attr_path path;
    vp_status st = resolve_path(s, n, &path, err);
    if (st)
        return st;
    const qido_attr *a = attr_find(path.tag);
    if (!a)
        return VP_OK; /* not supported by this origin server (10.6.3.3.1) */
    if (path.tag == TAG_AVAILABILITY) {
        wq->availability = true;
        return VP_OK;
    }
    if ((a->flags & A_WEB) || a->level > wq->level)
        return VP_OK;
    if (path.item) {
        dcm_dataset *it;
        if (!(a->flags & A_SEQ) || !is_code_item_key(path.item))
            return VP_OK; /* the index keeps no other item attributes */
        if ((st = code_item(wq->id, path.tag, &it)))
            return st;
        return add_return(it, path.item);
    }
    return add_return(wq->id, path.tag);
}

static vp_status include_param(parse *ps, const web_qido_param *p, size_t *count, vp_error *err)
{
    if (p->value_len > WEB_QIDO_VALUE_MAX)
        return vp_error_set(err, VP_ELIMIT, "includefield value too long");
    const char *v = p->value, *end = p->value + p->value_len;
    vp_status st = VP_OK;
    while (!st && v <= end) {
        const char *stop = memchr(v, ',', (size_t)(end - v));
        if (!stop)
            stop = end;
        if (++*count > WEB_QIDO_INCLUDE_MAX)
            return vp_error_set(err, VP_ELIMIT, "more than %d includefield values",
                                WEB_QIDO_INCLUDE_MAX);
        if (stop == v)
            return vp_error_set(err, VP_EINVAL,
                                "includefield has an empty attribute (PS3.18 8.3.4.3)");
        st = include_one(ps, v, (size_t)(stop - v), err);
        v = stop + 1;
    }
    return st;
}

/* A UID of the path (PS3.18 10.6.1: "{StudyInstanceUID}"...). */
static vp_status path_uid(web_qido_query *wq, uint32_t tag, const char *uid, vp_error *err)
{
    size_t n = uid ? strnlen(uid, DCM_UID_MAX + 1) : 0;
    char name[96];
    tag_name(tag, name, sizeof name);
    if (!uid)
        return vp_error_set(err, VP_EINVAL, "%s missing from the path", name);
    if (!dcm_uid_valid(uid, n))
        return vp_error_set(err, VP_EINVAL, "%s \"%s\" of the path is not a UID", name,
                            show(uid, n).s);
    return dcm_dataset_set_str(wq->id, tag, DCM_VR_UI, uid);
}

static vp_status parse_run(parse *ps, const web_qido_request *rq, vp_error *err)
{
    web_qido_query *wq = ps->wq;
    vp_status st;
    if (rq->n_params > WEB_QIDO_MAX_PARAMS)
        return vp_error_set(err, VP_ELIMIT, "%zu query parameters, at most %d accepted",
                            rq->n_params, WEB_QIDO_MAX_PARAMS);
    if ((unsigned)rq->resource > WEB_QIDO_INSTANCES)
        return vp_error_set(err, VP_EINVAL, "unknown search resource");
    wq->resource = rq->resource;
    wq->level = resource_level(rq->resource);
    if (!(wq->id = dcm_dataset_new()))
        return VP_ENOMEM;
    /* Values arrive as UTF-8 (PS3.18 8.3.1: percent-encoded UTF-8) and so are compiled. */
    if ((st = dcm_dataset_set_str(wq->id, DCM_TAG_SPECIFIC_CHARACTER_SET, DCM_VR_CS,
                                  "ISO_IR 192")) ||
        (st = dcm_dataset_set_str(wq->id, QRY_TAG_QUERY_RETRIEVE_LEVEL, DCM_VR_CS,
                                  qry_level_name(wq->level))))
        return st;
    bool has_study = path_has_study(rq->resource);
    bool has_series = rq->resource == WEB_QIDO_STUDY_SERIES_INSTANCES;
    if ((!has_study && rq->study_uid) || (!has_series && rq->series_uid))
        return vp_error_set(err, VP_EINVAL, "this resource has no UID in its path");
    if (has_study && (st = path_uid(wq, TAG_STUDY_UID, rq->study_uid, err)))
        return st;
    if (has_series && (st = path_uid(wq, TAG_SERIES_UID, rq->series_uid, err)))
        return st;
    /* First the parameters that change how values read, then the rest in order. */
    unsigned seen = 0;
    for (size_t i = 0; i < rq->n_params; i++) {
        const web_qido_param *p = &rq->params[i];
        bool handled;
        if (p->key_len > WEB_QIDO_KEY_MAX)
            return vp_error_set(err, VP_ELIMIT, "a parameter name of %zu bytes", p->key_len);
        if ((st = control_param(ps, p, &seen, &handled, err)))
            return st;
    }
    size_t includes = 0;
    for (size_t i = 0; i < rq->n_params; i++) {
        const web_qido_param *p = &rq->params[i];
        bool handled;
        if (p->key_len == 0 && p->value_len == 0)
            continue; /* "a=1&&b=2": nothing between the separators */
        if (key_is(p, "includefield"))
            st = include_param(ps, p, &includes, err);
        else if ((st = control_param(ps, p, &(unsigned){0}, &handled, err)) == VP_OK && !handled)
            st = match_param(ps, p, err);
        if (st)
            return st;
    }
    /* Defaults of the levels answered (Tables 10.6.3-3, -4, -5), or all the archive holds. */
    unsigned levels = answered_levels(wq->resource);
    for (size_t i = 0; i < sizeof attrs / sizeof attrs[0]; i++) {
        const qido_attr *a = &attrs[i];
        if (a->flags & A_WEB || !(levels & (1u << a->level)) ||
            !(ps->include_all || (a->flags & A_DEF)))
            continue;
        if ((st = add_return(wq->id, a->tag)))
            return st;
    }
    if (availability_at(levels))
        wq->availability = true;
    /* The UIDs that make up the Retrieve URL (PS3.18 10.4.1) are always answered. */
    if ((st = add_return(wq->id, TAG_STUDY_UID)))
        return st;
    if (wq->level >= QRY_LEVEL_SERIES && (st = add_return(wq->id, TAG_SERIES_UID)))
        return st;
    if (wq->level == QRY_LEVEL_IMAGE && (st = add_return(wq->id, TAG_SOP_UID)))
        return st;
    /* An entity whose attribute is unknown (empty) does not match a value asked for: a
     * search for Labradors does not list every animal of unrecorded breed. C-FIND answers
     * those too (PS3.4 C.2.2.1.1); here K.2.2.1.1.1's rule serves people at a search box
     * better. Conformance statement item. */
    qry_opts o = {
        .model = QRY_MODEL_STUDY_ROOT, .pn_case_insensitive = true, .unknown_fails = true};
    return qry_compile(wq->id, &o, &wq->q, err);
}

vp_status web_qido_parse(const web_qido_request *rq, web_qido_query **out, vp_error *err)
{
    *out = NULL;
    parse *ps = vp_calloc(1, sizeof *ps);
    web_qido_query *wq = vp_calloc(1, sizeof *wq);
    vp_status st = VP_ENOMEM;
    if (ps && wq) {
        ps->wq = wq;
        vp_buf_init(&ps->value, (size_t)WEB_QIDO_VALUE_MAX * 4 + 64);
        st = parse_run(ps, rq, err);
        vp_buf_fini(&ps->value);
    }
    if (st == VP_ENOMEM)
        vp_error_set(err, st, "out of memory parsing the query");
    if (st == VP_OK && qry_column_count(wq->q) > 64) /* idx_cursor gives at most 64 */
        st = vp_error_set(err, VP_ELIMIT, "too many attributes asked for");
    if (st)
        web_qido_query_free(wq);
    else
        *out = wq;
    vp_free(ps);
    return st;
}

void web_qido_query_free(web_qido_query *wq)
{
    if (!wq)
        return;
    qry_free(wq->q);
    dcm_dataset_free(wq->id);
    vp_free(wq);
}

const dcm_dataset *web_qido_query_identifier(const web_qido_query *wq)
{
    return wq->id;
}

const qry *web_qido_query_compiled(const web_qido_query *wq)
{
    return wq->q;
}

qry_level web_qido_query_level(const web_qido_query *wq)
{
    return wq->level;
}

bool web_qido_query_fuzzy(const web_qido_query *wq)
{
    return wq->fuzzy;
}

uint32_t web_qido_query_limit(const web_qido_query *wq)
{
    return wq->limit;
}

uint32_t web_qido_query_offset(const web_qido_query *wq)
{
    return wq->offset;
}

size_t web_qido_query_return_tags(const web_qido_query *wq, uint32_t *tags, size_t max)
{
    size_t n = 0;
    bool url = false, avail = !wq->availability;
    for (size_t i = 0; i <= dcm_dataset_count(wq->id); i++) {
        uint32_t t =
            i < dcm_dataset_count(wq->id) ? dcm_element_tag(dcm_dataset_at(wq->id, i)) : UINT32_MAX;
        /* the two computed ones, in tag order */
        if (!avail && t > TAG_AVAILABILITY) {
            if (n < max)
                tags[n] = TAG_AVAILABILITY;
            n++, avail = true;
        }
        if (!url && t > TAG_RETRIEVE_URL) {
            if (n < max)
                tags[n] = TAG_RETRIEVE_URL;
            n++, url = true;
        }
        if (t == UINT32_MAX || t == QRY_TAG_QUERY_RETRIEVE_LEVEL)
            continue;
        if (n < max)
            tags[n] = t;
        n++;
    }
    return n;
}

vp_status web_qido_answer(const web_qido_query *wq, const char *const *cols, size_t ncols,
                          const char *base_url, vp_buf *out, vp_error *err)
{
    dcm_dataset *ds = dcm_dataset_new();
    vp_buf url;
    vp_buf_init(&url, 0);
    if (!ds)
        return vp_error_set(err, VP_ENOMEM, "out of memory");
    vp_status st = qry_answer(wq->q, cols, ncols, ds, err);
    if (!st) /* a C-FIND answer key, not an attribute of a QIDO-RS match */
        (void)dcm_dataset_remove(ds, QRY_TAG_QUERY_RETRIEVE_LEVEL);
    /* Instance Availability (PS3.4 C.4.1.1.3.2... Table C.6-5): every object is stored here */
    if (!st && wq->availability)
        st = dcm_dataset_set_str(ds, TAG_AVAILABILITY, DCM_VR_CS, "ONLINE");
    /* Retrieve URL: the resource of the match for the Retrieve transaction (PS3.18 10.4.1) */
    static const uint32_t path_tags[] = {TAG_STUDY_UID, TAG_SERIES_UID, TAG_SOP_UID};
    static const char *const path_names[] = {"/studies/", "/series/", "/instances/"};
    if (!st)
        st = vp_buf_puts(&url, base_url ? base_url : "");
    for (int l = 0; !st && l <= (int)wq->level - QRY_LEVEL_STUDY; l++) {
        const char *s = NULL;
        size_t n = 0;
        (void)dcm_dataset_get_str(ds, path_tags[l], 0, &s, &n);
        st = vp_buf_puts(&url, path_names[l]);
        if (!st && n)
            st = vp_buf_append(&url, s, n);
    }
    if (!st)
        st = dcm_dataset_set_str(ds, TAG_RETRIEVE_URL, DCM_VR_UR, (const char *)url.data);
    if (!st)
        st = dcm_json_write(ds, NULL, out, err);
    if (st)
        vp_error_set(err, st, "cannot write a match: %s", vp_status_name(st));
    vp_buf_fini(&url);
    dcm_dataset_free(ds);
    return st;
}

/* ------------------------------------------------------------------------------------------ */

int web_qido_http_status(vp_status st)
{
    switch (st) {
    case VP_OK: return 200;
    case VP_EINVAL:
    case VP_ELIMIT:
    case VP_EPARSE: return 400;
    case VP_ENOMEM: return 503;
    default: return 500;
    }
}

/* Body bytes appended per web_qido_stream_read call, roughly. */
#define STREAM_CHUNK (64u << 10)

struct web_qido_stream {
    web_qido_query *wq;      /* the parsed query */
    char *sql;               /* qry_sql with LIMIT and OFFSET */
    const char **params;     /* qry_param pointers, for the cursor */
    char *base;              /* base URL without trailing "/" */
    idx_cursor *cur;         /* the matches */
    const char *const *cols; /* the row read ahead (valid until the next step) */
    size_t ncols;            /* its columns */
    bool have_row;           /* cols holds a row not written yet */
    bool begun;              /* "[" written */
    bool done;               /* "]" written */
    uint32_t count;          /* objects written */
};

void web_qido_stream_close(web_qido_stream *s)
{
    if (!s)
        return;
    idx_cursor_close(s->cur);
    web_qido_query_free(s->wq);
    vp_free(s->sql);
    vp_free(s->params);
    vp_free(s->base);
    vp_free(s);
}

static char *dup_str(const char *s, size_t n)
{
    char *d = vp_malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

/* Whether the SELECT has a row at position pos (0-based): "remaining > 0" of 8.3.4.4.1,
 * learnt without counting every match. The subquery is flattened by SQLite, so only the
 * keys are stepped over, no answer columns computed. */
static vp_status more_after(idx *reader, const web_qido_stream *s, uint64_t pos, bool *more,
                            vp_error *err)
{
    vp_buf sql;
    vp_buf_init(&sql, 0);
    idx_cursor *c = NULL;
    const char *const *cols;
    size_t ncols;
    *more = false;
    vp_status st = vp_buf_printf(&sql, "SELECT 1 FROM (%s) LIMIT 1 OFFSET %llu", qry_sql(s->wq->q),
                                 (unsigned long long)pos);
    if (st)
        vp_error_set(err, st, "out of memory");
    if (!st)
        st = idx_cursor_open(reader, (const char *)sql.data, s->params, qry_param_count(s->wq->q),
                             &c, err);
    if (!st) {
        st = idx_cursor_next(c, &cols, &ncols, err);
        *more = st == VP_OK;
        if (st == VP_ENOTFOUND)
            st = VP_OK;
    }
    idx_cursor_close(c);
    vp_buf_fini(&sql);
    return st;
}

int web_qido_open(idx *reader, const web_qido_request *rq, const web_qido_opts *opts,
                  web_qido_stream **out, char *warning, size_t warning_size, vp_error *err)
{
    *out = NULL;
    if (warning && warning_size)
        warning[0] = 0;
    web_qido_opts o = opts ? *opts : (web_qido_opts){0};
    uint32_t max_results = o.max_results ? o.max_results : WEB_QIDO_MAX_RESULTS;
    const char *base = o.base_url ? o.base_url : "";
    size_t base_len = strlen(base);
    while (base_len && base[base_len - 1] == '/')
        base_len--;
    web_qido_stream *s = vp_calloc(1, sizeof *s);
    if (!s) {
        vp_error_set(err, VP_ENOMEM, "out of memory");
        return 503;
    }
    vp_status st = web_qido_parse(rq, &s->wq, err);
    if (st) {
        web_qido_stream_close(s);
        return web_qido_http_status(st);
    }
    web_qido_query *wq = s->wq;
    /* results = min(matches - offset, maxResults, limit) (PS3.18 8.3.4.4.1) */
    uint32_t results = wq->limit && wq->limit < max_results ? wq->limit : max_results;
    vp_buf sql;
    vp_buf_init(&sql, 0);
    size_t np = qry_param_count(wq->q);
    s->params = vp_calloc(np + 1, sizeof *s->params);
    s->base = dup_str(base, base_len);
    if (!s->params || !s->base ||
        vp_buf_printf(&sql, "%s LIMIT %u OFFSET %u", qry_sql(wq->q), results, wq->offset))
        st = vp_error_set(err, VP_ENOMEM, "out of memory");
    for (size_t i = 0; !st && i < np; i++)
        s->params[i] = qry_param(wq->q, i);
    if (!st && !(s->sql = (char *)vp_buf_take(&sql, NULL)))
        st = vp_error_set(err, VP_ENOMEM, "out of memory");
    vp_buf_fini(&sql);
    if (!st)
        st = idx_cursor_open(reader, s->sql, s->params, np, &s->cur, err);
    if (!st) {
        st = idx_cursor_next(s->cur, &s->cols, &s->ncols, err);
        s->have_row = st == VP_OK;
        if (st == VP_ENOTFOUND) { /* "results <= 0": 204 (No Content) */
            web_qido_stream_close(s);
            return 204;
        }
    }
    bool more = false;
    if (!st)
        st = more_after(reader, s, (uint64_t)wq->offset + results, &more, err);
    if (st) {
        web_qido_stream_close(s);
        return web_qido_http_status(st);
    }
    if (more && warning && warning_size) {
        /* 8.3.4.4.1: "remaining > 0": a Warning header (RFC 7234 5.5) says there is more */
        if (results == max_results && (!wq->limit || wq->limit > max_results))
            snprintf(warning, warning_size,
                     "299 %.*s: The number of results exceeded the maximum supported by the "
                     "server. Additional results can be requested.",
                     (int)(base_len > 300 ? 300 : base_len), base);
        else
            snprintf(warning, warning_size,
                     "299 %.*s: There are additional results that can be requested.",
                     (int)(base_len > 300 ? 300 : base_len), base);
    }
    *out = s;
    return 200;
}

vp_status web_qido_stream_read(web_qido_stream *s, vp_buf *out, bool *done, vp_error *err)
{
    *done = s->done;
    if (s->done)
        return VP_OK;
    size_t start = out->len;
    vp_status st = VP_OK;
    if (!s->begun) {
        if ((st = vp_buf_putc(out, '[')))
            return vp_error_set(err, st, "response too large");
        s->begun = true;
    }
    while (s->have_row && out->len - start < STREAM_CHUNK) {
        if (s->count && (st = vp_buf_putc(out, ',')))
            return vp_error_set(err, st, "response too large");
        if ((st = web_qido_answer(s->wq, s->cols, s->ncols, s->base, out, err)))
            return st;
        s->count++;
        st = idx_cursor_next(s->cur, &s->cols, &s->ncols, err);
        s->have_row = st == VP_OK;
        if (st == VP_ENOTFOUND)
            st = VP_OK;
        if (st)
            return st;
    }
    if (!s->have_row) {
        if ((st = vp_buf_putc(out, ']')))
            return vp_error_set(err, st, "response too large");
        s->done = *done = true;
        idx_cursor_close(s->cur); /* the read snapshot is not needed any more */
        s->cur = NULL;
    }
    return VP_OK;
}

uint32_t web_qido_stream_count(const web_qido_stream *s)
{
    return s->count;
}

int web_qido_search(idx *reader, const web_qido_request *rq, const web_qido_opts *opts,
                    vp_buf *body, char *warning, size_t warning_size, vp_error *err)
{
    web_qido_stream *s;
    vp_buf_reset(body);
    int status = web_qido_open(reader, rq, opts, &s, warning, warning_size, err);
    if (status != 200)
        return status;
    bool done = false;
    vp_status st = VP_OK;
    while (!st && !done)
        st = web_qido_stream_read(s, body, &done, err);
    web_qido_stream_close(s);
    if (st) {
        vp_buf_reset(body);
        return web_qido_http_status(st == VP_ELIMIT || st == VP_EINVAL ? VP_EIO : st);
    }
    return 200;
}
