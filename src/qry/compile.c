/* SPDX-License-Identifier: MIT */
/*
 * Compiles a C-FIND request Identifier (PS3.4 C.4.1.1.3) into one SELECT over the index: the
 * level's table joined up to patient, one condition per matching key (match.c), the columns
 * of the return keys the index holds, a stable order and an optional limit.
 */
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "qry/internal.h"

#define VALUE_BYTES_MAX (8u << 20) /* one key value after conversion to UTF-8 */

/* Work state of one compilation; everything it owns is freed by build_fini. */
typedef struct build {
    const qry_opts *opts;         /* resolved options */
    qry_level level;              /* query level */
    vp_buf where;                 /* conditions joined by AND */
    vp_buf cols;                  /* ", table.column" for each return column */
    qry_cond cond;                /* parameters (sql points at where) */
    const qry_key_def **col_defs; /* key of each column after the row id */
    uint32_t *col_tags;           /* tags of those columns */
    size_t n_cols;                /* columns after the row id */
    qry_key *keys;                /* return keys */
    size_t n_keys;                /* used */
    qry_code *codes;              /* how each code sequence key is answered */
    size_t n_codes;               /* used */
    bool skip_date_time;          /* Study Date and Time matched together already */
} build;

static void build_fini(build *b)
{
    vp_buf_fini(&b->where);
    vp_buf_fini(&b->cols);
    qry__cond_fini(&b->cond);
    vp_free(b->col_defs);
    vp_free(b->col_tags);
    vp_free(b->keys);
    vp_free(b->codes);
}

const char *qry_level_name(qry_level level)
{
    static const char *const names[] = {"PATIENT", "STUDY", "SERIES", "IMAGE"};
    return (unsigned)level < 4 ? names[level] : "?";
}

/* Reads Query/Retrieve Level (0008,0052); missing or unknown is an invalid Identifier, which
 * C-FIND answers with A900 (PS3.4 C.4.1.1.4). */
static vp_status read_level(const dcm_dataset *id, qry_level *level, vp_error *err)
{
    const dcm_element *el = dcm_dataset_find(id, QRY_TAG_QUERY_RETRIEVE_LEVEL);
    const char *s = NULL;
    size_t n = 0;
    if (!el || dcm_element_is_sequence(el) || dcm_element_get_str(el, 0, &s, &n) != VP_OK || n == 0)
        return vp_error_set(err, VP_EINVAL, "Query/Retrieve Level (0008,0052) missing");
    for (int l = QRY_LEVEL_PATIENT; l <= QRY_LEVEL_IMAGE; l++) {
        const char *name = qry_level_name((qry_level)l);
        if (dcm_element_vm(el) == 1 && n == strlen(name) && memcmp(s, name, n) == 0) {
            *level = (qry_level)l;
            return VP_OK;
        }
    }
    return vp_error_set(err, VP_EINVAL, "Query/Retrieve Level (0008,0052) \"%.*s\" unknown",
                        (int)(n > 16 ? 16 : n), s);
}

/* The value of a key as trimmed UTF-8 in out (text VRs converted from the Specific Character
 * Set in effect for ds). */
static vp_status key_text(const dcm_dataset *ds, const dcm_element *el, enum dcm_vr vr, vp_buf *out)
{
    const uint8_t *v = dcm_element_value(el);
    size_t n = dcm_element_length(el);
    vp_buf_reset(out);
    if (!v || n == 0)
        return VP_OK;
    if (n > VALUE_BYTES_MAX)
        return VP_ELIMIT;
    if (dcm_vr_is_text(vr)) {
        const char *cs;
        size_t cslen;
        dcm_dataset_charset(ds, &cs, &cslen);
        return dcm_text_to_utf8(cs, cslen, vr, v, n, out);
    }
    return vp_buf_append(out, v, n);
}

static void trim(const char **s, size_t *n)
{
    while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == 0))
        (*n)--;
    while (*n && **s == ' ')
        (*s)++, (*n)--;
}

/* Splits text at "\" into vals (arrays allocated here, values borrowed from text). Sets
 * vals->n = 0 for universal matching (C.2.2.2.3: zero length; C.2.2.2.4 note: "*"). */
static vp_status split_values(const char *text, size_t len, uint32_t max_values, uint32_t tag,
                              qry_values *vals, vp_error *err)
{
    memset(vals, 0, sizeof *vals);
    trim(&text, &len);
    if (len == 0 || (len == 1 && text[0] == '*'))
        return VP_OK;
    if (len == 2 && text[0] == '"' && text[1] == '"') {
        vals->empty_only = true;
        return VP_OK;
    }
    size_t count = 1;
    for (size_t i = 0; i < len; i++)
        count += text[i] == '\\';
    if (count > max_values)
        return vp_error_set(err, VP_ELIMIT, "(%04X,%04X) has %zu values, at most %u accepted",
                            DCM_GROUP(tag), DCM_ELEMENT(tag), count, max_values);
    vals->v = vp_calloc(count, sizeof *vals->v);
    vals->len = vp_calloc(count, sizeof *vals->len);
    if (!vals->v || !vals->len)
        return VP_ENOMEM;
    const char *p = text, *end = text + len;
    while (p <= end) {
        const char *sep = memchr(p, '\\', (size_t)(end - p));
        const char *stop = sep ? sep : end;
        const char *s = p;
        size_t n = (size_t)(stop - p);
        trim(&s, &n);
        if (n) { /* empty values of a list add nothing */
            vals->v[vals->n] = s;
            vals->len[vals->n] = n;
            vals->n++;
        }
        p = stop + 1;
    }
    return VP_OK;
}

static void values_fini(qry_values *vals)
{
    vp_free(vals->v);
    vp_free(vals->len);
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

/* Longest SQL value of a key: a column, an expression of keys.c or the latest of value_sql. */
#define VALUE_SQL_MAX 512

/*
 * The SQL value of key def at the query level, in out: its column, or the expression
 * computing it (keys.c). Patient's Sex Neutered, a patient key kept per study since it changes
 * over the animal's life, is at PATIENT level the animal's latest known value: that of its
 * most recent study that has one, for matching and answer alike (so a neutered dog is not
 * also found as UNALTERED by its early studies). False when the key has no value at this level.
 */
static bool value_sql(const build *b, const qry_key_def *def, char *out, size_t size)
{
    const char *t = qry__table_name(def->table), *expr = qry__key_expr(def->tag);
    if (expr)
        snprintf(out, size, "%s", expr);
    else if (def->table <= b->level)
        snprintf(out, size, "%s.%s", t, def->column);
    else if (def->table == QRY_T_STUDY && b->level == QRY_LEVEL_PATIENT)
        snprintf(out, size,
                 "coalesce((SELECT x.%s FROM study x WHERE x.patient = patient.id AND x.%s <> ''"
                 " ORDER BY x.study_date DESC, x.study_time DESC, x.id DESC LIMIT 1), '')",
                 def->column, def->column);
    else
        return false;
    return true;
}

/* The SELECT column holding the value of def (def must outlive the build) at the query level,
 * added once for tag; -1 when the index has no value for it at this level. */
static vp_status select_column(build *b, uint32_t tag, const qry_key_def *def, int *column)
{
    char sql[VALUE_SQL_MAX], other[VALUE_SQL_MAX];
    *column = -1;
    if (!def || !value_sql(b, def, sql, sizeof sql))
        return VP_OK;
    for (size_t i = 0; i < b->n_cols; i++)
        if (value_sql(b, b->col_defs[i], other, sizeof other) && !strcmp(sql, other)) {
            *column = (int)i + 1;
            return VP_OK;
        }
    if (grow((void **)&b->col_defs, b->n_cols + 1, sizeof *b->col_defs) ||
        grow((void **)&b->col_tags, b->n_cols + 1, sizeof *b->col_tags))
        return VP_ENOMEM;
    b->col_defs[b->n_cols] = def;
    b->col_tags[b->n_cols] = tag;
    b->n_cols++;
    *column = (int)b->n_cols;
    return vp_buf_printf(&b->cols, ", %s", sql) ? VP_ENOMEM : VP_OK;
}

/* Records a return key and, when the index has its value at this level, a SELECT column. */
static vp_status add_return_key(build *b, uint32_t tag, const qry_key_def *def)
{
    int column;
    vp_status st = select_column(b, tag, def, &column);
    if (st)
        return st;
    if (grow((void **)&b->keys, b->n_keys + 1, sizeof *b->keys))
        return VP_ENOMEM;
    b->keys[b->n_keys++] = (qry_key){tag, column};
    return VP_OK;
}

/* Checks that key el has the VR of its definition (or UN, as from an implicit VR peer). */
static vp_status check_vr(const qry_key_def *def, const dcm_element *el, vp_error *err)
{
    uint32_t t = def->tag;
    enum dcm_vr vr = dcm_element_vr(el);
    if (dcm_element_is_sequence(el) || (vr != def->vr && vr != DCM_VR_UN))
        return vp_error_set(err, VP_EINVAL, "key (%04X,%04X) has VR %s, expected %s", DCM_GROUP(t),
                            DCM_ELEMENT(t), dcm_vr_name(vr), dcm_vr_name((enum dcm_vr)def->vr));
    return VP_OK;
}

vp_status qry__code_request(uint32_t tag, const dcm_element *el, const dcm_dataset **item,
                            qry_code *plan, vp_error *err)
{
    *item = NULL;
    *plan = (qry_code){.tag = tag, .col = {-1, -1, -1, -1}};
    if (!dcm_element_is_sequence(el)) {
        plan->all = true;
        if (dcm_element_length(el) == 0)
            return VP_OK; /* a zero-length SQ read as such: the whole sequence (K.2.2.1.2) */
        return vp_error_set(err, VP_EINVAL, "key (%04X,%04X) is not a sequence", DCM_GROUP(tag),
                            DCM_ELEMENT(tag));
    }
    size_t items = dcm_element_item_count(el);
    if (items > 1)
        return vp_error_set(err, VP_EINVAL,
                            "key (%04X,%04X) has %zu items, sequence matching takes one "
                            "(PS3.4 C.2.2.2.6)",
                            DCM_GROUP(tag), DCM_ELEMENT(tag), items);
    if (items == 1)
        *item = dcm_element_item(el, 0);
    for (size_t i = 0; *item && i < dcm_dataset_count(*item); i++) {
        uint32_t t = dcm_element_tag(dcm_dataset_at(*item, i));
        /* as at the top level, the character set and group lengths are not keys */
        if (t == DCM_TAG_SPECIFIC_CHARACTER_SET || DCM_ELEMENT(t) == 0)
            continue;
        int a = qry__code_attr(t);
        if (a >= 0)
            plan->asked |= (uint8_t)(1u << a);
        else if (plan->n_other < QRY_CODE_OTHER_MAX)
            plan->other[plan->n_other++] = t;
    }
    /* C.2.2.2.6: no Item Key Attribute asks for the entire Sequence of Items */
    plan->all = !plan->asked && !plan->n_other;
    return VP_OK;
}

/* Appends " AND <condition>" for one key. */
static vp_status add_condition(build *b, const qry_key_def *def, const qry_values *vals,
                               vp_error *err)
{
    char col[VALUE_SQL_MAX];
    if (!value_sql(b, def, col, sizeof col))
        return VP_OK;
    vp_status st = vp_buf_puts(&b->where, b->where.len ? " AND " : "");
    return st ? st : qry__match(&b->cond, def, col, vals, b->opts, err);
}

/* C.2.2.2.5.4 combined datetime matching of Study Date and Study Time, when negotiated. */
static vp_status combined_datetime(build *b, const dcm_dataset *id, vp_error *err)
{
    const dcm_element *de = dcm_dataset_find(id, DCM_TAG(0x0008, 0x0020));
    const dcm_element *te = dcm_dataset_find(id, DCM_TAG(0x0008, 0x0030));
    if (!b->opts->combined_datetime || !de || !te || b->level < QRY_LEVEL_STUDY ||
        dcm_element_is_sequence(de) || dcm_element_is_sequence(te))
        return VP_OK;
    vp_buf d, t;
    vp_buf_init(&d, 0);
    vp_buf_init(&t, 0);
    vp_status st = key_text(id, de, DCM_VR_DA, &d);
    if (!st)
        st = key_text(id, te, DCM_VR_TM, &t);
    const char *ds = d.data ? (const char *)d.data : "", *ts = t.data ? (const char *)t.data : "";
    size_t dn = d.len, tn = t.len;
    trim(&ds, &dn);
    trim(&ts, &tn);
    if (!st && memchr(ds, '-', dn) && memchr(ts, '-', tn)) {
        size_t mark = b->where.len;
        st = vp_buf_puts(&b->where, b->where.len ? " AND " : "");
        if (!st)
            st = qry__match_datetime(&b->cond, ds, dn, ts, tn, b->opts, err);
        if (st == VP_ENOTFOUND) { /* not the same form: each matches alone */
            b->where.len = mark;
            if (b->where.data)
                b->where.data[mark] = 0;
            st = VP_OK;
        } else if (!st) {
            b->skip_date_time = true;
        }
    }
    vp_buf_fini(&d);
    vp_buf_fini(&t);
    return st;
}

/*
 * A code sequence key (C.2.2.2.6): the columns of the item keys its request item names (of all
 * four when it names none) for the answer, and a condition for each item key with a value:
 * "if all the Item Key Attributes match", the entity matches. Unknown (empty) values match as
 * at the top level (C.2.2.1.1), so codes stored before the scheme and meaning were kept still
 * match a key on them.
 */
static vp_status compile_code(build *b, const qry_key_def *def, const dcm_element *el, vp_buf *text,
                              vp_error *err)
{
    const qry_key_def *items = qry__code_keys(def->tag);
    const dcm_dataset *item;
    qry_code plan;
    vp_status st = qry__code_request(def->tag, el, &item, &plan, err);
    for (int a = 0; !st && a < QRY_CODE_N; a++)
        if (a == QRY_CODE_VALUE || plan.all || ((plan.asked >> a) & 1))
            st = select_column(b, def->tag, &items[a], &plan.col[a]);
    if (!st && grow((void **)&b->codes, b->n_codes + 1, sizeof *b->codes))
        st = VP_ENOMEM;
    if (st)
        return st;
    b->codes[b->n_codes++] = plan;
    for (size_t i = 0; !st && item && i < dcm_dataset_count(item); i++) {
        const dcm_element *e = dcm_dataset_at(item, i);
        int a = qry__code_attr(dcm_element_tag(e));
        if (a < 0)
            continue; /* other item keys: returned, never matched */
        qry_values vals;
        st = qry__key_values(&items[a], item, e, b->opts->max_values, text, &vals, err);
        if (!st && (vals.n || vals.empty_only))
            st = add_condition(b, &items[a], &vals, err);
        qry__values_fini(&vals);
    }
    return st;
}

static vp_status compile_key(build *b, const dcm_dataset *id, const dcm_element *el, vp_buf *text,
                             vp_error *err)
{
    uint32_t tag = dcm_element_tag(el);
    const qry_key_def *def = qry__key_find(tag);
    if (def && def->level > b->level) {
        if (b->opts->ignore_lower_keys)
            return VP_OK;
        const char *kw = dcm_dict_keyword(tag);
        return vp_error_set(err, VP_EINVAL,
                            "key (%04X,%04X) %s is below the query level %s (PS3.4 C.4.1.2.1)",
                            DCM_GROUP(tag), DCM_ELEMENT(tag), kw, qry_level_name(b->level));
    }
    vp_status st = add_return_key(b, tag, def);
    if (st || !def || def->kind == QRY_KIND_RETURN)
        return st;
    if (def->kind == QRY_KIND_CODE_SEQ)
        return compile_code(b, def, el, text, err);
    if (b->skip_date_time && (tag == DCM_TAG(0x0008, 0x0020) || tag == DCM_TAG(0x0008, 0x0030)))
        return VP_OK;
    qry_values vals;
    st = qry__key_values(def, id, el, b->opts->max_values, text, &vals, err);
    if (!st && (vals.n || vals.empty_only))
        st = add_condition(b, def, &vals, err);
    qry__values_fini(&vals);
    return st;
}

/* C.4.1.2.1: "a single value in the Unique Key Attribute for each level above the
 * Query/Retrieve level", checked with require_unique_keys. */
static vp_status unique_keys_above(const build *b, const dcm_dataset *id, vp_error *err)
{
    static const struct {
        uint32_t tag;
        const char *name;
    } unique[] = {{DCM_TAG(0x0010, 0x0020), "Patient ID"},
                  {DCM_TAG(0x0020, 0x000D), "Study Instance UID"},
                  {DCM_TAG(0x0020, 0x000E), "Series Instance UID"}};
    int top = b->opts->model == QRY_MODEL_STUDY_ROOT ? QRY_LEVEL_STUDY : QRY_LEVEL_PATIENT;
    for (int l = top; l < (int)b->level; l++) {
        const dcm_element *el = dcm_dataset_find(id, unique[l].tag);
        const char *s = NULL;
        size_t n = 0;
        if (el && !dcm_element_is_sequence(el) && dcm_element_vm(el) == 1 &&
            dcm_element_get_str(el, 0, &s, &n) == VP_OK)
            trim(&s, &n);
        if (!n || memchr(s, '*', n) || memchr(s, '?', n))
            return vp_error_set(err, VP_EINVAL, "%s (%04X,%04X) needs one value at %s level",
                                unique[l].name, DCM_GROUP(unique[l].tag),
                                DCM_ELEMENT(unique[l].tag), qry_level_name(b->level));
    }
    return VP_OK;
}

static const char *const from_clause[] = {
    [QRY_LEVEL_PATIENT] = " FROM patient",
    [QRY_LEVEL_STUDY] = " FROM study JOIN patient ON patient.id = study.patient",
    [QRY_LEVEL_SERIES] = " FROM series JOIN study ON study.id = series.study"
                         " JOIN patient ON patient.id = study.patient",
    [QRY_LEVEL_IMAGE] = " FROM instance JOIN series ON series.id = instance.series"
                        " JOIN study ON study.id = series.study"
                        " JOIN patient ON patient.id = study.patient",
};

static const char *const level_table[] = {"patient", "study", "series", "instance"};

vp_status qry_compile(const dcm_dataset *identifier, const qry_opts *opts, qry **out, vp_error *err)
{
    *out = NULL;
    qry_opts o = opts ? *opts : (qry_opts){0};
    if (o.max_values == 0)
        o.max_values = QRY_DEFAULT_MAX_VALUES;
    if (o.model == QRY_MODEL_WORKLIST) /* one level, keys nested: worklist.c */
        return qry__worklist_compile(identifier, &o, out, err);
    build b = {.opts = &o};
    vp_buf_init(&b.where, 0);
    vp_buf_init(&b.cols, 0);
    b.cond.sql = &b.where;
    vp_buf sql, text;
    vp_buf_init(&sql, 0);
    vp_buf_init(&text, VALUE_BYTES_MAX);
    qry *q = NULL;
    vp_status st = read_level(identifier, &b.level, err);
    if (!st && o.model == QRY_MODEL_STUDY_ROOT && b.level == QRY_LEVEL_PATIENT)
        st = vp_error_set(err, VP_EINVAL,
                          "Query/Retrieve Level PATIENT is not in the Study Root "
                          "model (PS3.4 C.6.2)");
    if (!st && o.require_unique_keys)
        st = unique_keys_above(&b, identifier, err);
    if (!st)
        st = combined_datetime(&b, identifier, err);
    for (size_t i = 0; !st && i < dcm_dataset_count(identifier); i++) {
        const dcm_element *el = dcm_dataset_at(identifier, i);
        uint32_t tag = dcm_element_tag(el);
        /* Specific Character Set is never matched (C.2.2.2); the level is not a key; group
         * lengths carry nothing. */
        if (tag == DCM_TAG_SPECIFIC_CHARACTER_SET || tag == QRY_TAG_QUERY_RETRIEVE_LEVEL ||
            DCM_ELEMENT(tag) == 0)
            continue;
        st = compile_key(&b, identifier, el, &text, err);
    }
    const char *lt = level_table[b.level];
    if (!st)
        st = vp_buf_printf(&sql, "SELECT %s.id%s%s", lt, b.cols.data ? (char *)b.cols.data : "",
                           from_clause[b.level]);
    if (!st && b.where.len)
        st = vp_buf_printf(&sql, " WHERE %s", (char *)b.where.data);
    if (!st)
        st = vp_buf_printf(&sql, " ORDER BY %s.id", lt);
    if (!st && o.limit)
        st = vp_buf_printf(&sql, " LIMIT %u", o.limit);
    if (!st && !(q = vp_calloc(1, sizeof *q)))
        st = VP_ENOMEM;
    if (!st) {
        q->level = b.level;
        q->sql = (char *)vp_buf_take(&sql, NULL);
        q->params = b.cond.params, q->n_params = b.cond.n_params;
        b.cond.params = NULL, b.cond.n_params = 0;
        q->keys = b.keys, q->n_keys = b.n_keys;
        b.keys = NULL;
        q->codes = b.codes, q->n_codes = b.n_codes;
        b.codes = NULL;
        q->n_cols = b.n_cols + 1;
        q->col_tags = vp_calloc(q->n_cols, sizeof *q->col_tags);
        if (!q->sql || !q->col_tags) {
            st = VP_ENOMEM;
        } else {
            for (size_t i = 0; i < b.n_cols; i++)
                q->col_tags[i + 1] = b.col_tags[i];
            *out = q;
            q = NULL;
        }
    }
    if (st == VP_ENOMEM)
        vp_error_set(err, st, "out of memory compiling the query");
    qry_free(q);
    build_fini(&b);
    vp_buf_fini(&sql);
    vp_buf_fini(&text);
    return st;
}

void qry_free(qry *q)
{
    if (!q)
        return;
    vp_free(q->sql);
    for (size_t i = 0; i < q->n_params; i++)
        vp_free(q->params[i]);
    vp_free(q->params);
    vp_free(q->col_tags);
    vp_free(q->keys);
    vp_free(q->codes);
    qry__worklist_free(q->wl);
    vp_free(q);
}

qry_level qry_get_level(const qry *q)
{
    return q->level;
}

const char *qry_sql(const qry *q)
{
    return q->sql;
}

size_t qry_param_count(const qry *q)
{
    return q->n_params;
}

const char *qry_param(const qry *q, size_t i)
{
    return i < q->n_params ? q->params[i] : NULL;
}

size_t qry_column_count(const qry *q)
{
    return q->n_cols;
}

uint32_t qry_column_tag(const qry *q, size_t i)
{
    return i < q->n_cols ? q->col_tags[i] : 0;
}

size_t qry_return_key_count(const qry *q)
{
    return q->n_keys;
}

const qry_key *qry_return_key(const qry *q, size_t i)
{
    return i < q->n_keys ? &q->keys[i] : NULL;
}

vp_status qry__key_values(const qry_key_def *def, const dcm_dataset *ds, const dcm_element *el,
                          uint32_t max_values, vp_buf *text, qry_values *vals, vp_error *err)
{
    memset(vals, 0, sizeof *vals);
    assert(def->kind != QRY_KIND_CODE_SEQ); /* qry__code_request reads those */
    vp_status st = check_vr(def, el, err);
    if (st)
        return st;
    st = key_text(ds, el, (enum dcm_vr)def->vr, text);
    if (st == VP_ELIMIT)
        return vp_error_set(err, st, "key (%04X,%04X) value too long", DCM_GROUP(def->tag),
                            DCM_ELEMENT(def->tag));
    if (st)
        return vp_error_set(err, st, "out of memory compiling the query");
    return split_values(text->data ? (const char *)text->data : "", text->len, max_values, def->tag,
                        vals, err);
}

void qry__values_fini(qry_values *vals)
{
    values_fini(vals);
}
