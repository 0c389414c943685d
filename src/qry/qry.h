/* SPDX-License-Identifier: MIT */
/*
 * qry: the query compiler used by C-FIND (PS3.4 C.4.1, and K.4.1 for the Modality Worklist)
 * and later QIDO-RS (PS3.18 10.6). It turns a request Identifier into one parameterised SQL
 * SELECT over the index schema (src/idx/schema.c), applying the attribute matching rules of
 * PS3.4 C.2.2.2: single value, list of UID, universal, wild card, range and sequence matching,
 * plus empty value matching; and it builds the answer Identifier of each row (qry_answer).
 *
 * The compiler does no I/O and opens no database: the caller (who owns the idx connection)
 * prepares qry_sql(), binds qry_param(i) as text to placeholder i + 1 and reads the rows.
 */
#ifndef VP_QRY_H
#define VP_QRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include "dcm/dcm.h"

#define QRY_TAG_QUERY_RETRIEVE_LEVEL DCM_TAG(0x0008, 0x0052)

/* Query/Retrieve Level (0008,0052) values, top to bottom (PS3.4 C.6). */
typedef enum qry_level {
    QRY_LEVEL_PATIENT = 0, /* "PATIENT" */
    QRY_LEVEL_STUDY,       /* "STUDY" */
    QRY_LEVEL_SERIES,      /* "SERIES" */
    QRY_LEVEL_IMAGE,       /* "IMAGE" */
} qry_level;

/* Query/Retrieve Information Model of the negotiated SOP class (PS3.4 C.6.1, C.6.2). */
typedef enum qry_model {
    QRY_MODEL_PATIENT_ROOT = 0, /* levels PATIENT, STUDY, SERIES, IMAGE */
    QRY_MODEL_STUDY_ROOT,       /* levels STUDY, SERIES, IMAGE; patient keys are study keys */
    /* Modality Worklist Information Model - FIND (PS3.4 K.6.1, SOP Class
     * 1.2.840.10008.5.1.4.31): one level, no Query/Retrieve Level; the Scheduled Procedure
     * Step keys nested in the Scheduled Procedure Step Sequence (0040,0100) item. */
    QRY_MODEL_WORKLIST,
} qry_model;

#define QRY_DEFAULT_MAX_VALUES 10000

/* Choices and limits; a zeroed struct (or NULL) gives the defaults. */
typedef struct qry_opts {
    qry_model model;          /* information model; PATIENT level is refused in Study Root */
    bool pn_case_insensitive; /* PN keys match ignoring ASCII case (PS3.4 C.2.2.2.1 allows it) */
    /* An entity whose key attribute is zero length normally matches any key value (PS3.4
     * C.2.2.1.1 and C.2.2.1.3: "the value is considered unknown"). Set to make unknown values
     * fail to match instead, as the worklist rule of PS3.4 K.2.2.1.1.1 does (always applied
     * in QRY_MODEL_WORKLIST). */
    bool unknown_fails;
    /* Combined datetime matching of Study Date and Study Time, only when negotiated by
     * Extended Negotiation (PS3.4 C.2.2.2.5.4, C.5.1.1.1). */
    bool combined_datetime;
    /* Keys of levels below the query level are an error (PS3.4 C.4.1.2.1: the Identifier
     * holds keys of the query level and above). Set to drop them silently instead. */
    bool ignore_lower_keys;
    /* Hierarchical queries only (PS3.4 C.4.1.2.1, C.4.1.3.1.1): the Identifier must hold one
     * value, without wild cards, of the unique key of each level above the query level
     * (Patient ID in the Patient Root model, Study and Series Instance UID), else VP_EINVAL.
     * Off by default: keys of the query level and above all match as in a relational query
     * (C.4.1.2.2), which is what SCUs that skip the levels above expect. */
    bool require_unique_keys;
    uint32_t limit;      /* LIMIT of the SELECT; 0 = none */
    uint32_t max_values; /* values in one key (UID list); 0 = QRY_DEFAULT_MAX_VALUES */
} qry_opts;

typedef struct qry qry;

/* A key of the Identifier returned to the requester (every key is a return key, PS3.4
 * C.2.2.1). column is the index of the SELECT column holding its value, -1 when the index
 * has no column for it (the SCP fills those from elsewhere). For code sequences (species,
 * breed) the column holds the Code Value of the first item; qry_answer reads the columns of
 * the other item keys itself. */
typedef struct qry_key {
    uint32_t tag; /* top-level tag of the Identifier */
    int column;   /* SELECT column, or -1 */
} qry_key;

/*
 * Compiles a C-FIND Identifier. Reads Query/Retrieve Level (0008,0052) and builds a SELECT of
 * the entities of that level matching every key. Text keys are converted from the
 * Identifier's Specific Character Set to UTF-8, as the index stores them.
 *
 * QRY_MODEL_WORKLIST (PS3.4 K.6.1.2, Table K.6-1) reads no level and selects rows of the
 * worklist table, one per Scheduled Procedure Step, in start date and time order. Unknown
 * values fail to match (K.2.2.1.1.1). Only SCHEDULED steps match unless the Identifier gives
 * Scheduled Procedure Step Status (0040,0020) a value; a step without Scheduled Station AE
 * Title is for any station and matches every value of that key.
 *
 * Errors (*out stays NULL, err says why in words for the peer's Error Comment):
 * VP_EINVAL for a missing or unknown level, a key below the level, a malformed key value
 * (bad date, time or UID, wild card in a key that has none, reversed range, sequence with more
 * than one item, a Scheduled Procedure Step Sequence that is not one); VP_ELIMIT when a key has
 * more than opts->max_values values; VP_ENOMEM.
 */
vp_status qry_compile(const dcm_dataset *identifier, const qry_opts *opts, qry **out,
                      vp_error *err);
/* Frees a compiled query; accepts NULL. */
void qry_free(qry *q);

/* Query/Retrieve Level of the query (QRY_LEVEL_PATIENT, meaning nothing, for the worklist). */
qry_level qry_get_level(const qry *q);
/* "PATIENT", "STUDY", "SERIES", "IMAGE"; "?" for other values. */
const char *qry_level_name(qry_level level);

/* The SELECT, with "?" placeholders, ordered by the level's row id (stable across calls).
 * Column 0 is the row id of the level's table; the others are described by qry_column_tag. */
const char *qry_sql(const qry *q);
/* Text parameters, to bind in order to placeholders 1..n. Borrowed from q. */
size_t qry_param_count(const qry *q);
const char *qry_param(const qry *q, size_t i);
/* Number of SELECT columns and the tag whose value column i holds (0 for column 0; a code
 * sequence's tag for the columns of its item keys). */
size_t qry_column_count(const qry *q);
uint32_t qry_column_tag(const qry *q, size_t i);
/* Keys of the Identifier in tag order, without (0008,0005) and (0008,0052). For the worklist
 * these are the top-level keys: the Scheduled Procedure Step Sequence has column -1 and the
 * keys of its item are answered by qry_answer. */
size_t qry_return_key_count(const qry *q);
const qry_key *qry_return_key(const qry *q, size_t i);

/*
 * Fills out (normally a new, empty data set) with the answer Identifier of one row of
 * qry_sql() (cols[0..ncols), as idx_select gives them): every key of the request Identifier,
 * as a return key (PS3.4 C.4.1.1.3.2, K.4.1.1.3.2), with its value from the row or zero length
 * when the index has none; Specific Character Set (0008,0005) "ISO_IR 192" (the index holds
 * UTF-8); Query/Retrieve Level (0008,0052) for the Query/Retrieve models. Code sequences
 * (species, breed) get one item when the row has a code, none otherwise, holding the item keys
 * the request's item named, or the whole stored code when it named none (PS3.4 C.2.2.2.6).
 * For the worklist the Scheduled Procedure Step Sequence gets one item holding the keys its
 * request item named, or all the step's attributes when the request item was empty or absent.
 * Retrieve AE Title (0008,0054) is left to the caller (it names the SCP's own AE).
 * Errors: VP_ENOMEM (err says so); out then holds a partial answer, to be freed.
 */
vp_status qry_answer(const qry *q, const char *const *cols, size_t ncols, dcm_dataset *out,
                     vp_error *err);

#endif /* VP_QRY_H */
