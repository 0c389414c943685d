/* SPDX-License-Identifier: MIT */
/* Private interface of src/qry: the compiled query, the key table, the condition builder and
 * the worklist model (worklist.c). */
#ifndef VP_QRY_INTERNAL_H
#define VP_QRY_INTERNAL_H

#include "qry/qry.h"

/* How a key is matched against its column (PS3.4 C.2.2.2). */
enum qry_kind {
    QRY_KIND_TEXT,       /* AE CS SH LO ...: single value, wild card; case-sensitive */
    QRY_KIND_PN,         /* person name: as TEXT, optionally ignoring ASCII case */
    QRY_KIND_UID,        /* UI: single value or list of UID matching */
    QRY_KIND_DA,         /* DA: single value or range */
    QRY_KIND_TM,         /* TM: single value or range */
    QRY_KIND_IS,         /* IS: single value, compared as integers */
    QRY_KIND_DS,         /* DS: single value, compared as numbers */
    QRY_KIND_MODALITIES, /* Modalities in Study: matches when any series modality matches */
    QRY_KIND_CODE_SEQ,   /* code sequence: sequence matching on the keys of its item, each
                          * matched as TEXT on its own column (qry_code) */
    QRY_KIND_RETURN,     /* computed attribute: return key only, never matched */
    /* Patient's Name: as PN, and a key naming only the given-name component ("^Rex",
     * "*^Rex*") also matches the pet's name the index keeps apart (patient.pet_name), so a pet
     * whose name was written alone ("Rex") is found too (PS3.4 C.2.2.2.4 leaves PN wild card
     * matching to the Conformance Statement). */
    QRY_KIND_PATIENT_NAME,
    /* SOP Classes in Study: List of UID Matching against the classes of the study's
     * instances; any of them matching is enough, as for Modalities in Study. */
    QRY_KIND_SOP_CLASSES,
};

/* Limits on key values, checked before any SQL is built: SQLite refuses GLOB patterns over
 * 50,000 bytes and expressions deeper than 1,000 terms (one OR per value), and a key of
 * several values is an extension for other VRs than UI (C.2.2.2.2 defines lists of UIDs). */
#define QRY_VALUE_BYTES_MAX 1024 /* one value of a key, in UTF-8 (a PN is at most ~200 chars) */
#define QRY_TEXT_VALUES_MAX 256  /* values in a key other than a list of UIDs */

/* Tables of the index, in level order: a key's table index equals a qry_level. */
enum qry_table { QRY_T_PATIENT, QRY_T_STUDY, QRY_T_SERIES, QRY_T_INSTANCE };

typedef struct qry_key_def {
    uint32_t tag;       /* attribute */
    uint8_t level;      /* qry_level of the attribute in the information model */
    uint8_t table;      /* enum qry_table holding the column */
    uint8_t kind;       /* enum qry_kind */
    uint8_t vr;         /* enum dcm_vr of the attribute */
    const char *column; /* column name in table ("" for computed keys: qry__key_expr) */
} qry_key_def;

/* The attributes of the Code Sequence Macro (PS3.3 Table 8.8-1) the index keeps for a code
 * (Patient Species / Breed Code Sequence, and the worklist's Breed Registry Code Sequence). */
enum qry_code_attr {
    QRY_CODE_VALUE,   /* Code Value (0008,0100) SH */
    QRY_CODE_SCHEME,  /* Coding Scheme Designator (0008,0102) SH */
    QRY_CODE_VERSION, /* Coding Scheme Version (0008,0103) SH */
    QRY_CODE_MEANING, /* Code Meaning (0008,0104) LO */
    QRY_CODE_N
};

/* Other keys a request's code item may name (Context Identifier, Long Code Value, ...) that are
 * answered zero length; more than these are not answered. */
#define QRY_CODE_OTHER_MAX 8

/*
 * How a code sequence key is answered (sequence matching, PS3.4 C.2.2.2.6: "a sequence of
 * matching Items containing only the requested Attributes"): the answer's one item holds the
 * item keys the request's item named, zero length when the index has no value for them. A
 * request without item keys (no item, an empty item, or a zero-length sequence: the Universal
 * Matching like request of C.2.2.2.6, the return key forms of K.2.2.1.2 note 4) gets the whole
 * stored item: each of the four attributes that has a value. No Code Value stored: no item.
 */
typedef struct qry_code {
    uint32_t tag;                       /* the code sequence */
    bool all;                           /* no item key named: the whole stored item */
    uint8_t asked;                      /* bit 1 << enum qry_code_attr per item key named */
    int col[QRY_CODE_N];                /* SELECT column of each attribute answered, else -1;
                                         * the Code Value's is always set (it says whether
                                         * there is a code) unless the index has none */
    uint32_t other[QRY_CODE_OTHER_MAX]; /* other item keys named, answered zero length */
    uint8_t n_other;                    /* used */
} qry_code;

/* A compiled query (compile.c builds the Query/Retrieve ones, worklist.c the worklist's). */
struct qry {
    qry_level level;    /* Query/Retrieve Level */
    char *sql;          /* the SELECT, NUL-terminated */
    char **params;      /* parameter texts */
    size_t n_params;    /* their number */
    uint32_t *col_tags; /* tag of each SELECT column (0 for the row id) */
    size_t n_cols;      /* SELECT columns */
    qry_key *keys;      /* return keys in Identifier order */
    size_t n_keys;      /* their number */
    qry_code *codes;    /* Query/Retrieve: how each code sequence key is answered */
    size_t n_codes;     /* their number */
    struct qry_wl *wl;  /* worklist answer plan (worklist.c); NULL for Query/Retrieve */
};

/* Key definition of tag, NULL when the index has no column for it. */
const qry_key_def *qry__key_find(uint32_t tag);
/* For a key of qry__key_find computed from other rows (counts, SOP Classes in Study): the
 * SQL expression of its value, correlated with the tables of the SELECT; NULL otherwise. */
const char *qry__key_expr(uint32_t tag);
/* "patient", "study", "series", "instance". */
const char *qry__table_name(unsigned table);
/* The item keys of code sequence key tag of the Query/Retrieve models: QRY_CODE_N definitions
 * in enum qry_code_attr order, each a TEXT key on its own patient column; NULL when tag is no
 * code sequence key. */
const qry_key_def *qry__code_keys(uint32_t tag);
/* The attribute of the Code Sequence Macro that tag is, or -1. */
int qry__code_attr(uint32_t tag);
/* The tag of a Code Sequence Macro attribute. */
uint32_t qry__code_tag(enum qry_code_attr attr);

/* A condition under construction: SQL text and its parameters (owned). */
typedef struct qry_cond {
    vp_buf *sql;       /* where the condition text is appended */
    char **params;     /* parameter strings, vp_malloc'd */
    size_t n_params;   /* used */
    size_t cap_params; /* allocated */
} qry_cond;

/* Appends a copy of s (n bytes) as the next parameter. */
vp_status qry__param_add(qry_cond *c, const char *s, size_t n);
/* Frees the parameters (not the SQL text, which c only points at). */
void qry__cond_fini(qry_cond *c);

/* One key value, split into its values (UTF-8, trimmed), borrowed from a buffer. */
typedef struct qry_values {
    const char **v;  /* values */
    size_t *len;     /* their lengths */
    size_t n;        /* how many */
    bool empty_only; /* the value was "" (two QUOTATION MARKs): empty value matching */
} qry_values;

/*
 * Appends the condition matching column col (qualified, e.g. "patient.patient_name") of a
 * key of def against values vals; n_values >= 1 and no value is universal. Errors VP_EINVAL
 * with the reason in err, VP_ENOMEM.
 */
vp_status qry__match(qry_cond *c, const qry_key_def *def, const char *col, const qry_values *vals,
                     const qry_opts *opts, vp_error *err);
/* Combined datetime range of PS3.4 C.2.2.2.5.4 on study_date || study_time; ranges given as
 * "A-B" text (trimmed). Returns VP_ENOTFOUND when the two ranges are not of the same form
 * (then each is matched alone). */
vp_status qry__match_datetime(qry_cond *c, const char *date, size_t dlen, const char *time,
                              size_t tlen, const qry_opts *opts, vp_error *err);

/*
 * The values of key el (defined by def, not a code sequence: see qry__code_request) in data
 * set ds, for matching: trimmed UTF-8 split at backslashes into vals (arrays allocated, values
 * borrowed from text; release with qry__values_fini, also after a failure). vals->n == 0
 * without empty_only is universal matching. Errors VP_EINVAL (wrong VR, a sequence),
 * VP_ELIMIT, VP_ENOMEM, with err set.
 */
vp_status qry__key_values(const qry_key_def *def, const dcm_dataset *ds, const dcm_element *el,
                          uint32_t max_values, vp_buf *text, qry_values *vals, vp_error *err);
void qry__values_fini(qry_values *vals);

/*
 * Reads code sequence key el of a request (C.2.2.2.6): *item is its single item, NULL when it
 * has none or is a zero-length value; plan gets tag, which item keys the item names (all when
 * none) and col[] all -1, for the caller to give the columns it selects. VP_EINVAL when el is
 * neither a sequence nor zero length, or has more than one item.
 */
vp_status qry__code_request(uint32_t tag, const dcm_element *el, const dcm_dataset **item,
                            qry_code *plan, vp_error *err);

/* Sets return key tag of an answer from its column text (NULL or "" = zero length; the VR
 * from the dictionary; a sequence is answered empty). */
vp_status qry__answer_value(dcm_dataset *ds, uint32_t tag, const char *text);
/* Sets code sequence key plan->tag of an answer from a row (see qry_code). VP_ENOMEM. */
vp_status qry__answer_code(dcm_dataset *ds, const qry_code *plan, const char *const *cols,
                           size_t ncols);

/* The worklist model (worklist.c): qry_compile for QRY_MODEL_WORKLIST (opts resolved), the
 * answer of one row, and the release of the answer plan (accepts NULL). */
vp_status qry__worklist_compile(const dcm_dataset *identifier, const qry_opts *opts, qry **out,
                                vp_error *err);
vp_status qry__worklist_answer(const qry *q, const char *const *cols, size_t ncols,
                               dcm_dataset *out);
void qry__worklist_free(struct qry_wl *wl);

#endif
