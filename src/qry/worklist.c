/* SPDX-License-Identifier: MIT */
/*
 * The Modality Worklist Information Model - FIND (PS3.4 K.6.1, SOP Class 1.2.840.10008.5.1.4.31):
 * a C-FIND Identifier compiled to one SELECT over the worklist table (src/idx/schema.c, one row
 * per Scheduled Procedure Step), and the answer Identifier of each row.
 *
 * The model has one level and no Query/Retrieve Level (K.2.1). The keys of the Scheduled
 * Procedure Step are nested in the single item of the Scheduled Procedure Step Sequence
 * (0040,0100), the patient, Requested Procedure and Imaging Service Request keys are at the
 * top (Table K.6-1, with the veterinary attributes CP-643 added to it). Matching is that of
 * C.2.2.2 (K.2.2.2) through match.c, with the worklist's rule for unknown values: an item
 * whose attribute is zero length fails to match any value of it (K.2.2.1.1.1). Two local
 * rules, stated in the conformance statement:
 *  - only SCHEDULED steps are answered unless the request gives Scheduled Procedure Step
 *    Status (0040,0020) a value, so performed steps leave the modality's list;
 *  - a step without a Scheduled Station AE Title is scheduled for any station and matches
 *    every value of that key: a clinic books "the X-ray room", rarely an AE title.
 */
#include <stdio.h>
#include <string.h>

#include "qry/internal.h"

#define TAG_SPS_SEQUENCE DCM_TAG(0x0040, 0x0100)
#define TAG_SPS_STATUS DCM_TAG(0x0040, 0x0020)
#define TAG_STATION_AE DCM_TAG(0x0040, 0x0001)
#define TAG_BREED_REGISTRATION DCM_TAG(0x0010, 0x2294)
#define TAG_BREED_REGISTRATION_NUMBER DCM_TAG(0x0010, 0x2295)
#define TAG_BREED_REGISTRY_CODE DCM_TAG(0x0010, 0x2296)
#define VALUE_BYTES_MAX (8u << 20) /* one key value after conversion to UTF-8 */

/* The item keys of the worklist's codes (Code Sequence Macro, PS3.3 Table 8.8-1) in enum
 * qry_code_attr order. The table keeps no Coding Scheme Version: asked for, it is answered
 * zero length and not matched. */
#define C(e, vr_, col)                                                                             \
    {                                                                                              \
        .tag = DCM_TAG(0x0008, e), .kind = QRY_KIND_TEXT, .vr = DCM_VR_##vr_, .column = col        \
    }
#define CODE_KEYS(p)                                                                               \
    {                                                                                              \
        C(0x0100, SH, p "_code"), C(0x0102, SH, p "_scheme"), C(0x0103, SH, NULL),                 \
            C(0x0104, LO, p "_meaning")                                                            \
    }
static const qry_key_def species_code[QRY_CODE_N] = CODE_KEYS("species");
static const qry_key_def breed_code[QRY_CODE_N] = CODE_KEYS("breed");
static const qry_key_def registry_code[QRY_CODE_N] = CODE_KEYS("registry");

/* A key of Table K.6-1 that the worklist table holds. */
typedef struct wl_key {
    qry_key_def def;         /* tag, kind, VR and column (level and table unused) */
    bool in_sps;             /* in the Scheduled Procedure Step Sequence item */
    const qry_key_def *code; /* the item keys of a code sequence; for the Breed Registration
                                Sequence, those of its Breed Registry Code Sequence */
} wl_key;

#define W(g, e, kind_, vr_, col, sps, code_)                                                       \
    {                                                                                              \
        .def = {.tag = DCM_TAG(g, e),                                                              \
                .kind = QRY_KIND_##kind_,                                                          \
                .vr = DCM_VR_##vr_,                                                                \
                .column = col},                                                                    \
        .in_sps = sps, .code = code_                                                               \
    }

static const wl_key keys[] = {
    /* Imaging Service Request, Requested Procedure and Patient: top-level keys */
    W(0x0008, 0x0050, TEXT, SH, "accession", false, NULL),
    W(0x0008, 0x0090, PN, PN, "referring", false, NULL),
    W(0x0010, 0x0010, PN, PN, "patient_name", false, NULL),
    W(0x0010, 0x0020, TEXT, LO, "patient_id", false, NULL),
    W(0x0010, 0x0021, TEXT, LO, "issuer", false, NULL),
    W(0x0010, 0x0030, DA, DA, "birth_date", false, NULL),
    W(0x0010, 0x0040, TEXT, CS, "sex", false, NULL),
    W(0x0010, 0x1030, DS, DS, "weight", false, NULL),
    W(0x0010, 0x2201, TEXT, LO, "species", false, NULL),
    W(0x0010, 0x2202, CODE_SEQ, SQ, "species_code", false, species_code),
    W(0x0010, 0x2203, TEXT, CS, "sex_neutered", false, NULL),
    W(0x0010, 0x2292, TEXT, LO, "breed", false, NULL),
    W(0x0010, 0x2293, CODE_SEQ, SQ, "breed_code", false, breed_code),
    W(0x0010, 0x2294, RETURN, SQ, "breed_registration", false, registry_code),
    W(0x0010, 0x2297, PN, PN, "owner_name", false, NULL),
    W(0x0010, 0x2298, TEXT, CS, "owner_role", false, NULL),
    W(0x0010, 0x2299, TEXT, LO, "clinic", false, NULL),
    W(0x0020, 0x000D, UID, UI, "study_uid", false, NULL),
    W(0x0032, 0x1060, TEXT, LO, "requested_description", false, NULL),
    W(0x0040, 0x1001, TEXT, SH, "requested_id", false, NULL),
    /* Scheduled Procedure Step: keys of the (0040,0100) item */
    W(0x0008, 0x0060, TEXT, CS, "modality", true, NULL),
    W(0x0040, 0x0001, TEXT, AE, "station_ae", true, NULL),
    W(0x0040, 0x0002, DA, DA, "start_date", true, NULL),
    W(0x0040, 0x0003, TM, TM, "start_time", true, NULL),
    W(0x0040, 0x0006, PN, PN, "performing", true, NULL),
    W(0x0040, 0x0007, TEXT, LO, "sps_description", true, NULL),
    W(0x0040, 0x0009, TEXT, SH, "sps_id", true, NULL),
    W(0x0040, 0x0010, TEXT, SH, "station_name", true, NULL),
    W(0x0040, 0x0011, TEXT, SH, "location", true, NULL),
    W(0x0040, 0x0020, TEXT, CS, "status", true, NULL),
};

#define N_KEYS (sizeof keys / sizeof keys[0])

static const wl_key *key_find(uint32_t tag, bool in_sps)
{
    for (size_t i = 0; i < N_KEYS; i++)
        if (keys[i].def.tag == tag && keys[i].in_sps == in_sps)
            return &keys[i];
    return NULL;
}

/* One return key of the answer. */
typedef struct slot {
    uint32_t tag;      /* attribute */
    bool in_sps;       /* in the Scheduled Procedure Step Sequence item */
    const wl_key *key; /* NULL when the table has no column: answered zero length */
    int col;           /* SELECT column of key->def.column, -1 */
    qry_code code;     /* how the code of key->code is answered, with its columns */
} slot;

/* How qry_answer fills an answer: the return keys in request order. */
struct qry_wl {
    slot *slots;
    size_t n;
    bool sps; /* the request named the Scheduled Procedure Step Sequence */
};

/* Work state of one compilation; build_fini frees what it still owns. */
typedef struct build {
    const qry_opts *opts;   /* resolved options (unknown values fail) */
    vp_buf where;           /* conditions joined by AND */
    vp_buf cols;            /* ", worklist.column" for each column after the row id */
    qry_cond cond;          /* parameters (sql points at where) */
    const char **col_names; /* column name of each SELECT column after the row id */
    uint32_t *col_tags;     /* the tag each holds */
    size_t n_cols;          /* columns after the row id */
    qry_key *keys;          /* top-level return keys (qry_return_key) */
    size_t n_keys;          /* used */
    struct qry_wl *wl;      /* answer plan under construction */
    bool status_matched;    /* the request matches Scheduled Procedure Step Status itself */
} build;

static void build_fini(build *b)
{
    vp_buf_fini(&b->where);
    vp_buf_fini(&b->cols);
    qry__cond_fini(&b->cond);
    vp_free(b->col_names);
    vp_free(b->col_tags);
    vp_free(b->keys);
    qry__worklist_free(b->wl);
}

void qry__worklist_free(struct qry_wl *wl)
{
    if (!wl)
        return;
    vp_free(wl->slots);
    vp_free(wl);
}

static vp_status grow(void **p, size_t n, size_t size)
{
    size_t bytes;
    if (vp_mul_size(n, size, &bytes))
        return VP_ENOMEM;
    void *q = vp_realloc(*p, bytes ? bytes : 1);
    if (!q)
        return VP_ENOMEM;
    *p = q;
    return VP_OK;
}

/* The SELECT column holding name (added once), 1-based after the row id. */
static vp_status column(build *b, const char *name, uint32_t tag, int *out)
{
    for (size_t i = 0; i < b->n_cols; i++)
        if (!strcmp(b->col_names[i], name)) {
            *out = (int)i + 1;
            return VP_OK;
        }
    if (grow((void **)&b->col_names, b->n_cols + 1, sizeof *b->col_names) ||
        grow((void **)&b->col_tags, b->n_cols + 1, sizeof *b->col_tags) ||
        vp_buf_printf(&b->cols, ", worklist.%s", name))
        return VP_ENOMEM;
    b->col_names[b->n_cols] = name;
    b->col_tags[b->n_cols] = tag;
    *out = (int)++b->n_cols;
    return VP_OK;
}

/*
 * Records a return key of the answer (and its columns); *col is the main one or -1. plan says
 * which item keys of a code sequence are answered (from qry__code_request); the Breed
 * Registration Sequence, a return key only, gets its whole registry code (plan NULL).
 */
static vp_status add_slot(build *b, uint32_t tag, bool in_sps, const wl_key *k,
                          const qry_code *plan, int *col)
{
    struct qry_wl *wl = b->wl;
    if (grow((void **)&wl->slots, wl->n + 1, sizeof *wl->slots))
        return VP_ENOMEM;
    slot *s = &wl->slots[wl->n];
    *s = (slot){.tag = tag, .in_sps = in_sps, .key = k, .col = -1};
    s->code =
        plan ? *plan
             : (qry_code){.tag = TAG_BREED_REGISTRY_CODE, .all = true, .col = {-1, -1, -1, -1}};
    vp_status st = k ? column(b, k->def.column, tag, &s->col) : VP_OK;
    for (int a = 0; !st && k && k->code && a < QRY_CODE_N; a++) {
        const qry_code *c = &s->code;
        if (k->code[a].column && (a == QRY_CODE_VALUE || c->all || ((c->asked >> a) & 1)))
            st = column(b, k->code[a].column, tag, &s->code.col[a]);
    }
    if (st)
        return st;
    wl->n++;
    *col = s->col;
    return VP_OK;
}

/* A top-level key for qry_return_key. */
static vp_status add_key(build *b, uint32_t tag, int col)
{
    if (grow((void **)&b->keys, b->n_keys + 1, sizeof *b->keys))
        return VP_ENOMEM;
    b->keys[b->n_keys++] = (qry_key){tag, col};
    return VP_OK;
}

/* Appends " AND <condition>" for one key (def: of keys[] or of a code's item keys). */
static vp_status add_condition(build *b, const qry_key_def *def, const qry_values *vals,
                               vp_error *err)
{
    char col[64];
    snprintf(col, sizeof col, "worklist.%s", def->column);
    qry_opts o = *b->opts;
    /* A step for any station (no AE title) matches every AE title asked for: match.c's
     * "(col = '' OR ...)" of the Query/Retrieve rule gives exactly that. */
    if (def->tag == TAG_STATION_AE)
        o.unknown_fails = false;
    /* An unknown weight must not match "0": CAST('' AS REAL) is 0. */
    bool numeric = (def->kind == QRY_KIND_DS || def->kind == QRY_KIND_IS) && !vals->empty_only;
    vp_status st = vp_buf_puts(&b->where, b->where.len ? " AND " : "");
    if (!st && numeric)
        st = vp_buf_printf(&b->where, "(%s <> '' AND ", col);
    if (!st)
        st = qry__match(&b->cond, def, col, vals, &o, err);
    if (!st && numeric)
        st = vp_buf_puts(&b->where, ")");
    if (!st && def->tag == TAG_SPS_STATUS)
        b->status_matched = true;
    return st;
}

/* A code sequence key (C.2.2.2.6): answered with the item keys its request item names, and
 * matched on each of them that has a value and a column (all must match). */
static vp_status compile_code(build *b, const wl_key *k, const dcm_element *el, vp_buf *text,
                              vp_error *err)
{
    const dcm_dataset *item;
    qry_code plan;
    int col;
    vp_status st = qry__code_request(k->def.tag, el, &item, &plan, err);
    if (!st)
        st = add_slot(b, k->def.tag, false, k, &plan, &col);
    if (!st)
        st = add_key(b, k->def.tag, col);
    for (size_t i = 0; !st && item && i < dcm_dataset_count(item); i++) {
        const dcm_element *e = dcm_dataset_at(item, i);
        int a = qry__code_attr(dcm_element_tag(e));
        if (a < 0 || !k->code[a].column)
            continue; /* returned, never matched */
        qry_values vals;
        st = qry__key_values(&k->code[a], item, e, b->opts->max_values, text, &vals, err);
        if (!st && (vals.n || vals.empty_only))
            st = add_condition(b, &k->code[a], &vals, err);
        qry__values_fini(&vals);
    }
    return st;
}

/* One key of the Identifier (in_sps: of the Scheduled Procedure Step Sequence item ds). */
static vp_status compile_key(build *b, const dcm_dataset *ds, const dcm_element *el, bool in_sps,
                             vp_buf *text, vp_error *err)
{
    uint32_t tag = dcm_element_tag(el);
    const wl_key *k = key_find(tag, in_sps);
    if (k && k->def.kind == QRY_KIND_CODE_SEQ)
        return compile_code(b, k, el, text, err);
    int col;
    vp_status st = add_slot(b, tag, in_sps, k, NULL, &col);
    if (!st && !in_sps)
        st = add_key(b, tag, col);
    if (st || !k || k->def.kind == QRY_KIND_RETURN)
        return st;
    qry_values vals;
    st = qry__key_values(&k->def, ds, el, b->opts->max_values, text, &vals, err);
    if (!st && (vals.n || vals.empty_only))
        st = add_condition(b, &k->def, &vals, err);
    qry__values_fini(&vals);
    return st;
}

static bool is_skipped(uint32_t tag)
{
    /* Specific Character Set is never matched (C.2.2.2); there is no level in this model
     * (K.2.1), so a Query/Retrieve Level sent anyway is neither key nor answer; group
     * lengths carry nothing. */
    return tag == DCM_TAG_SPECIFIC_CHARACTER_SET || tag == QRY_TAG_QUERY_RETRIEVE_LEVEL ||
           DCM_ELEMENT(tag) == 0;
}

/* The Scheduled Procedure Step Sequence (0040,0100): its single item holds the step's keys
 * (sequence matching, C.2.2.2.6); without an item, or with an empty one, it is a return key
 * for the whole step (K.2.2.1.2 note: a sequence return key may be zero length or hold an
 * empty item). */
static vp_status compile_sps(build *b, const dcm_element *el, vp_buf *text, vp_error *err)
{
    b->wl->sps = true;
    vp_status st = add_key(b, TAG_SPS_SEQUENCE, -1);
    if (st)
        return st;
    const dcm_dataset *item = NULL;
    if (!dcm_element_is_sequence(el)) {
        if (dcm_element_length(el) != 0)
            return vp_error_set(err, VP_EINVAL,
                                "Scheduled Procedure Step Sequence (0040,0100) is not a sequence");
    } else if (dcm_element_item_count(el) > 1) {
        return vp_error_set(err, VP_EINVAL,
                            "Scheduled Procedure Step Sequence (0040,0100) has %zu items, "
                            "sequence matching takes one (PS3.4 C.2.2.2.6)",
                            dcm_element_item_count(el));
    } else if (dcm_element_item_count(el) == 1) {
        item = dcm_element_item(el, 0);
    }
    size_t named = 0;
    for (size_t i = 0; !st && item && i < dcm_dataset_count(item); i++) {
        const dcm_element *e = dcm_dataset_at(item, i);
        if (is_skipped(dcm_element_tag(e)))
            continue;
        named++;
        st = compile_key(b, item, e, true, text, err);
    }
    for (size_t i = 0; !st && !named && i < N_KEYS; i++) {
        int col;
        if (keys[i].in_sps)
            st = add_slot(b, keys[i].def.tag, true, &keys[i], NULL, &col);
    }
    return st;
}

vp_status qry__worklist_compile(const dcm_dataset *identifier, const qry_opts *opts, qry **out,
                                vp_error *err)
{
    *out = NULL;
    qry_opts o = *opts;
    o.unknown_fails = true; /* K.2.2.1.1.1: "the unknown value shall fail to match" */
    build b = {.opts = &o};
    vp_buf_init(&b.where, 0);
    vp_buf_init(&b.cols, 0);
    b.cond.sql = &b.where;
    vp_buf sql, text;
    vp_buf_init(&sql, 0);
    vp_buf_init(&text, VALUE_BYTES_MAX);
    qry *q = NULL;
    vp_status st = (b.wl = vp_calloc(1, sizeof *b.wl)) ? VP_OK : VP_ENOMEM;
    for (size_t i = 0; !st && i < dcm_dataset_count(identifier); i++) {
        const dcm_element *el = dcm_dataset_at(identifier, i);
        uint32_t tag = dcm_element_tag(el);
        if (is_skipped(tag))
            continue;
        if (tag == TAG_SPS_SEQUENCE)
            st = compile_sps(&b, el, &text, err);
        else
            st = compile_key(&b, identifier, el, false, &text, err);
    }
    if (!st && !b.status_matched) /* performed steps leave the list (file comment) */
        st = vp_buf_printf(&b.where, "%sworklist.status = 'SCHEDULED'", b.where.len ? " AND " : "");
    if (!st)
        st = vp_buf_printf(&sql,
                           "SELECT worklist.id%s FROM worklist WHERE %s"
                           " ORDER BY worklist.start_date, worklist.start_time, worklist.id",
                           b.cols.data ? (char *)b.cols.data : "", (char *)b.where.data);
    if (!st && o.limit)
        st = vp_buf_printf(&sql, " LIMIT %u", o.limit);
    if (!st && !(q = vp_calloc(1, sizeof *q)))
        st = VP_ENOMEM;
    if (!st && !(q->col_tags = vp_calloc(b.n_cols + 1, sizeof *q->col_tags)))
        st = VP_ENOMEM;
    if (!st && !(q->sql = (char *)vp_buf_take(&sql, NULL)))
        st = VP_ENOMEM;
    if (!st) {
        q->level = QRY_LEVEL_PATIENT;
        q->params = b.cond.params, q->n_params = b.cond.n_params;
        b.cond.params = NULL, b.cond.n_params = 0;
        q->keys = b.keys, q->n_keys = b.n_keys;
        b.keys = NULL;
        q->wl = b.wl;
        b.wl = NULL;
        q->n_cols = b.n_cols + 1;
        for (size_t i = 0; i < b.n_cols; i++)
            q->col_tags[i + 1] = b.col_tags[i];
        *out = q;
        q = NULL;
    }
    if (st == VP_ENOMEM)
        vp_error_set(err, st, "out of memory compiling the query");
    qry_free(q);
    build_fini(&b);
    vp_buf_fini(&sql);
    vp_buf_fini(&text);
    return st;
}

static const char *col_text(const char *const *cols, size_t ncols, int col)
{
    return col >= 0 && (size_t)col < ncols && cols[col] ? cols[col] : "";
}

static vp_status answer_slot(dcm_dataset *ds, const slot *s, const char *const *cols, size_t ncols)
{
    if (!s->key)
        return qry__answer_value(ds, s->tag, NULL);
    const char *v = col_text(cols, ncols, s->col);
    if (s->key->def.kind == QRY_KIND_CODE_SEQ)
        return qry__answer_code(ds, &s->code, cols, ncols);
    if (s->tag == TAG_BREED_REGISTRATION) {
        /* Breed Registration Sequence (PS3.3 C.7.1.1): the number and its registry. */
        dcm_element *seq;
        dcm_dataset *item;
        vp_status st = dcm_dataset_set_sequence(ds, s->tag, &seq);
        if (st || !*v)
            return st;
        if ((st = dcm_element_add_item(seq, &item)) ||
            (st = dcm_dataset_set_str(item, TAG_BREED_REGISTRATION_NUMBER, DCM_VR_LO, v)))
            return st;
        return qry__answer_code(item, &s->code, cols, ncols);
    }
    return qry__answer_value(ds, s->tag, v);
}

vp_status qry__worklist_answer(const qry *q, const char *const *cols, size_t ncols,
                               dcm_dataset *out)
{
    const struct qry_wl *wl = q->wl;
    /* K.4.1.1.3.2: the keys asked for and the Specific Character Set of their values (the
     * index holds UTF-8); no Query/Retrieve Level in this model. */
    vp_status st =
        dcm_dataset_set_str(out, DCM_TAG_SPECIFIC_CHARACTER_SET, DCM_VR_CS, "ISO_IR 192");
    for (size_t i = 0; !st && i < wl->n; i++)
        if (!wl->slots[i].in_sps)
            st = answer_slot(out, &wl->slots[i], cols, ncols);
    if (st || !wl->sps)
        return st;
    /* One step per row: the sequence has one item with the step's keys. */
    dcm_element *seq;
    dcm_dataset *item;
    if ((st = dcm_dataset_set_sequence(out, TAG_SPS_SEQUENCE, &seq)) ||
        (st = dcm_element_add_item(seq, &item)))
        return st;
    for (size_t i = 0; !st && i < wl->n; i++)
        if (wl->slots[i].in_sps)
            st = answer_slot(item, &wl->slots[i], cols, ncols);
    return st;
}
