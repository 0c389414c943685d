/* SPDX-License-Identifier: MIT */
/* Private interface of src/qry: the key table and the condition builder. */
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
    QRY_KIND_CODE_SEQ,   /* code sequence: sequence matching on the item's Code Value */
    QRY_KIND_RETURN,     /* computed attribute: return key only, never matched */
};

/* Tables of the index, in level order: a key's table index equals a qry_level. */
enum qry_table { QRY_T_PATIENT, QRY_T_STUDY, QRY_T_SERIES, QRY_T_INSTANCE };

typedef struct qry_key_def {
    uint32_t tag;       /* attribute */
    uint8_t level;      /* qry_level of the attribute in the information model */
    uint8_t table;      /* enum qry_table holding the column */
    uint8_t kind;       /* enum qry_kind */
    uint8_t vr;         /* enum dcm_vr of the attribute */
    const char *column; /* column name in table */
} qry_key_def;

/* Key definition of tag, NULL when the index has no column for it. */
const qry_key_def *qry__key_find(uint32_t tag);
/* "patient", "study", "series", "instance". */
const char *qry__table_name(unsigned table);

/* A condition under construction: SQL text and its parameters (owned). */
typedef struct qry_cond {
    vp_buf *sql;       /* where the condition text is appended */
    char **params;     /* parameter strings, vp_malloc'd */
    size_t n_params;   /* used */
    size_t cap_params; /* allocated */
} qry_cond;

/* Appends a copy of s (n bytes) as the next parameter. */
vp_status qry__param_add(qry_cond *c, const char *s, size_t n);

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

#endif
