/* SPDX-License-Identifier: MIT */
/*
 * idx: the index of the archive. Patient (the animal) / study / series / instance, with the
 * veterinary attributes of DICOM CP-643 as columns, every usual matching key indexed, and the
 * computed study attributes (modalities, counts) kept up to date on ingest, so no query ever
 * scans instance files.
 *
 * The interface names no database: SQLite (WAL, synchronous=FULL) is the embedded backend; a
 * PostgreSQL backend can follow behind the same calls. Schema changes are versioned migrations
 * applied at open.
 */
#ifndef VP_IDX_H
#define VP_IDX_H

#include <stdbool.h>
#include <stdint.h>

#include "base/base.h"
#include "dcm/dcm.h"

typedef struct idx idx;

/* Index attributes of one instance, as UTF-8 text (empty string = absent). Filled from a data
 * set by idx_record_from_dataset; the caller adds where the object is stored. A code is the
 * first item of its sequence (Code Sequence Macro, PS3.3 Table 8.8-1); its scheme, version and
 * meaning are empty when its Code Value is, and idx_instance_put keeps the four together. */
typedef struct idx_record {
    /* patient: the animal, keyed on Patient ID + Issuer of Patient ID */
    char patient_id[65];       /* (0010,0020) */
    char issuer[65];           /* (0010,0021) */
    char patient_name[325];    /* (0010,0010), all component groups */
    char pet_name[65];         /* given-name component, or the whole name when it has none */
    char owner_name[325];      /* Responsible Person (0010,2297); else family name of Owner^Pet */
    char owner_role[17];       /* Responsible Person Role (0010,2298) */
    char clinic[65];           /* Responsible Organization (0010,2299) */
    char species[65];          /* Patient Species Description (0010,2201) */
    char species_code[17];     /* Patient Species Code Sequence (0010,2202): Code Value */
    char species_scheme[65];   /*   Coding Scheme Designator (0008,0102) SH, in UTF-8 */
    char species_version[65];  /*   Coding Scheme Version (0008,0103) SH */
    char species_meaning[257]; /*   Code Meaning (0008,0104) LO */
    char breed[65];            /* Patient Breed Description (0010,2292) */
    char breed_code[17];       /* Patient Breed Code Sequence (0010,2293): Code Value */
    char breed_scheme[65];     /*   Coding Scheme Designator */
    char breed_version[65];    /*   Coding Scheme Version */
    char breed_meaning[257];   /*   Code Meaning */
    char sex[17];              /* Patient's Sex (0010,0040) */
    char birth_date[9];        /* Patient's Birth Date (0010,0030) */
    /* study */
    char study_uid[65];         /* (0020,000D) */
    char study_date[9];         /* (0008,0020) */
    char study_time[17];        /* (0008,0030) */
    char accession[17];         /* (0008,0050) */
    char study_id[17];          /* (0020,0010) */
    char study_description[65]; /* (0008,1030) */
    char referring[325];        /* Referring Physician's Name (0008,0090) */
    char sex_neutered[17];      /* Patient's Sex Neutered (0010,2203): ALTERED/UNALTERED */
    char weight[17];            /* Patient's Weight (0010,1030), kg */
    /* series */
    char series_uid[65];         /* (0020,000E) */
    char modality[17];           /* (0008,0060) */
    char series_number[13];      /* (0020,0011) */
    char series_description[65]; /* (0008,103E) */
    char body_part[17];          /* (0018,0015) */
    /* instance */
    char sop_class_uid[65];    /* (0008,0016) */
    char sop_instance_uid[65]; /* (0008,0018) */
    char instance_number[13];  /* (0020,0013) */
    char transfer_syntax[65];  /* of the stored object */
    uint32_t frames;           /* Number of Frames, 1 when absent */
    /* storage, set by the caller */
    char path[256];       /* relative to the data folder */
    uint64_t size;        /* bytes */
    uint8_t checksum[16]; /* XXH3-128 of the file */
    bool pending;         /* the file's sync had not completed when the row was put */
    /* WADO-RS metadata (migration 6): the zlib stream (RFC 1950) of the instance's DICOM JSON
     * object as idx_metadata_build writes it, owned by the record: idx_record_set_metadata
     * fills it (after idx_record_from_dataset, which clears the record), idx_record_fini
     * frees it. NULL: the row gets no metadata (a stored one is removed) and readers build it
     * from the file. */
    uint8_t *metadata;
    size_t metadata_len;     /* bytes of the zlib stream */
    size_t metadata_raw_len; /* bytes of the JSON object */
} idx_record;

/* What the index holds for an instance (for duplicate checks and retrieval). */
typedef struct idx_stored {
    char path[256];       /* relative path of the object */
    uint64_t size;        /* bytes */
    uint8_t checksum[16]; /* XXH3-128 of the file */
} idx_stored;

typedef struct idx_counts {
    uint64_t patients, studies, series, instances;
} idx_counts;

/* Opens (creating) the index file and applies pending migrations. */
vp_status idx_open(const char *path, idx **out, vp_error *err);
void idx_close(idx *x);
/* Schema version after migrations. */
int idx_schema_version(idx *x);

/* Extracts the index attributes of ds (text converted to UTF-8). VP_EINVAL with a message
 * when a required UID (study, series, SOP instance, SOP class) is missing or invalid. */
vp_status idx_record_from_dataset(const dcm_dataset *ds, idx_record *rec, vp_error *err);

/* ------------------------------------------------------------------------------------------ */
/* WADO-RS metadata (PS3.18 10.4.1.1.2, DICOM JSON of Annex F), kept per instance (migration  */
/* 6; src/idx/metadata.c). Written by idx_instance_put* with the instance row, from the        */
/* record's metadata; removed with the row.                                                    */

/* Binary values longer than this (VR OB OD OF OL OV OW UN, and encapsulated pixel data) are
 * not inlined but referenced by a BulkDataURI (PS3.18 F.2.6); Pixel Data always is, since
 * the ingest reads the header only. */
#define IDX_METADATA_BULK_THRESHOLD 1024
/* Stored BulkDataURI values are relative: "bulkdata/" + the attribute's path ("7FE00010",
 * "00540016/0/00281201"), relative to the instance's URL; the web layer makes them absolute
 * (src/web/metadata.h). */
#define IDX_METADATA_BULK_PREFIX "bulkdata"
/* Largest JSON object kept (a bigger one is not stored: readers build it from the file). */
#define IDX_METADATA_MAX (64u << 20)

/* Appends the metadata object of ds (the data set after the meta group, up to Pixel Data
 * or whole) to out: compact DICOM JSON (dcm_json_write), bulk data as above. */
vp_status idx_metadata_build(const dcm_dataset *ds, vp_buf *out, vp_error *err);
/* Builds and compresses the metadata of ds into rec (replacing what it held). */
vp_status idx_record_set_metadata(idx_record *rec, const dcm_dataset *ds, vp_error *err);
/* Frees what the record owns (its metadata); the record stays usable, without metadata. */
void idx_record_fini(idx_record *rec);

/* One instance as idx_metadata_each gives it (valid during the call). */
typedef struct idx_metadata {
    const char *study_uid, *series_uid, *sop_instance_uid;
    const char *path;     /* of the object, relative to the data folder */
    uint8_t checksum[16]; /* of the object, as the row says (for idx_metadata_backfill) */
    const char *json;     /* the JSON object inflated (NUL-terminated); NULL when the row has
                           * none (indexed before migration 6, or unreadable) */
    size_t json_len;
} idx_metadata;
typedef vp_status (*idx_metadata_fn)(void *ctx, const idx_metadata *m);
/*
 * Calls fn for the instances of a study (series_uid and sop_instance_uid NULL), of one of its
 * series (sop_instance_uid NULL) or for one instance, in one read snapshot: series by Series
 * Number then UID, instances by Instance Number then UID (empty numbers last). VP_ENOTFOUND
 * (no message) when no instance matches: unknown study, series or instance, or one not in
 * the study or series named. A non-OK return from fn stops the walk and is returned.
 */
vp_status idx_metadata_each(idx *x, const char *study_uid, const char *series_uid,
                            const char *sop_instance_uid, idx_metadata_fn fn, void *ctx,
                            vp_error *err);
/* Metadata built from an object indexed before migration 6, to be kept. */
typedef struct idx_metadata_fill {
    const char *sop_instance_uid;
    uint8_t checksum[16]; /* of the object it was built from (idx_metadata.checksum) */
    const char *json;     /* as idx_metadata_build writes it */
    size_t json_len;
} idx_metadata_fill;
/* Stores, in one transaction, the metadata of instances that have none, each only if its row
 * still has that checksum (a replaced object brought its own); others are left alone. */
vp_status idx_metadata_backfill(idx *x, const idx_metadata_fill *f, size_t n, vp_error *err);

/* Adds or replaces an instance and upserts its patient, study and series in one durable
 * transaction, updating the computed study and series attributes. Stored values are kept where
 * the record leaves an attribute empty; a species or breed code is kept whole: the same code
 * (Code Value, and scheme when given) fills in what the record adds, another code replaces
 * the stored one with its scheme, version and meaning, empty ones included. The record's
 * metadata (or its absence) replaces the instance's stored one in the same transaction. */
vp_status idx_instance_put(idx *x, const idx_record *rec, vp_error *err);
/*
 * Group commit: puts n records in one transaction, so concurrent senders share one WAL sync.
 * Each record is applied under its own savepoint: results[i] and errs[i] say how it went,
 * and a failing record does not undo the others. The same transaction clears the pending
 * mark of the n_settled instances named in settled (their files are now known durable).
 * Returns VP_OK when the transaction committed (then results[] hold), else the commit's
 * error (then nothing was stored).
 */
vp_status idx_instance_put_batch(idx *x, const idx_record *const *r, size_t n,
                                 const char *const *settled, size_t n_settled, vp_status *results,
                                 vp_error *errs, vp_error *err);
/* Removes an instance row (its file is the caller's business) and updates the computed
 * series and study attributes. VP_ENOTFOUND when absent. */
vp_status idx_instance_delete(idx *x, const char *sop_instance_uid, vp_error *err);
/* Storage facts of an instance: VP_ENOTFOUND when absent. */
vp_status idx_instance_get(idx *x, const char *sop_instance_uid, idx_stored *out, vp_error *err);
vp_status idx_count(idx *x, idx_counts *out, vp_error *err);

/* Calls fn for every instance (SOP Instance UID and storage facts) in index order; a non-OK
 * return from fn stops the walk and is returned. */
typedef vp_status (*idx_instance_fn)(void *ctx, const char *sop_instance_uid,
                                     const idx_stored *stored);
vp_status idx_instance_each(idx *x, idx_instance_fn fn, void *ctx, vp_error *err);
/* Runs a read-only SELECT built by the query compiler (src/qry) with text parameters bound to
 * ?1..?n, calling fn with each row's columns as text (NULL for SQL NULL; at most 64). A
 * non-OK return from fn stops the walk and is returned. */
typedef vp_status (*idx_row_fn)(void *ctx, const char *const *cols, size_t ncols);
vp_status idx_select(idx *x, const char *sql, const char *const *params, size_t n, idx_row_fn fn,
                     void *ctx, vp_error *err);
/* The same SELECT stepped by the caller (a cursor), for answers sent as rows are read. The
 * params must outlive the cursor. idx_cursor_next gives the next row's columns as text (valid
 * until the next call; NULL for SQL NULL), VP_ENOTFOUND after the last row. A cursor holds a
 * read snapshot of the index (WAL: writers go on); close it soon. */
typedef struct idx_cursor idx_cursor;
vp_status idx_cursor_open(idx *x, const char *sql, const char *const *params, size_t n,
                          idx_cursor **out, vp_error *err);
vp_status idx_cursor_next(idx_cursor *c, const char *const **cols, size_t *ncols, vp_error *err);
void idx_cursor_close(idx_cursor *c);
/* The same for instances still marked pending (their file's sync was not confirmed). */
vp_status idx_pending_each(idx *x, idx_instance_fn fn, void *ctx, vp_error *err);

/* ------------------------------------------------------------------------------------------ */
/* Modality Worklist (PS3.4 K.6.1): one row per Scheduled Procedure Step                      */

/* Values of Scheduled Procedure Step Status (0040,0020) kept by the index (defined terms of
 * PS3.3 C.4.10). Only SCHEDULED items are offered to modalities by default. */
#define IDX_WL_SCHEDULED "SCHEDULED"
#define IDX_WL_COMPLETED "COMPLETED"
#define IDX_WL_DISCONTINUED "DISCONTINUED"

/* One Scheduled Procedure Step with the attributes of its Requested Procedure, Imaging Service
 * Request and patient (the animal, with the veterinary attributes CP-643 added to the
 * worklist), as UTF-8 text ("" = unknown). Sizes hold the VR's maximum in UTF-8 (PN: as in
 * idx_record). */
typedef struct idx_worklist_item {
    int64_t id;      /* row id, set by idx_worklist_add */
    char sps_id[65]; /* Scheduled Procedure Step ID (0040,0009) SH; generated when empty */
    char status[17]; /* Scheduled Procedure Step Status (0040,0020): IDX_WL_* */
    /* patient */
    char patient_id[257];         /* Patient ID (0010,0020) LO */
    char issuer[257];             /* Issuer of Patient ID (0010,0021) LO */
    char patient_name[325];       /* Patient's Name (0010,0010) PN */
    char birth_date[9];           /* Patient's Birth Date (0010,0030) DA */
    char sex[17];                 /* Patient's Sex (0010,0040) CS */
    char weight[17];              /* Patient's Weight (0010,1030) DS, kg */
    char species[257];            /* Patient Species Description (0010,2201) LO */
    char species_code[65];        /* Patient Species Code Sequence (0010,2202): Code Value */
    char species_scheme[65];      /*   Coding Scheme Designator */
    char species_meaning[257];    /*   Code Meaning */
    char breed[257];              /* Patient Breed Description (0010,2292) LO */
    char breed_code[65];          /* Patient Breed Code Sequence (0010,2293): Code Value */
    char breed_scheme[65];        /*   Coding Scheme Designator */
    char breed_meaning[257];      /*   Code Meaning */
    char breed_registration[257]; /* Breed Registration Sequence (0010,2294): Breed
                                   * Registration Number (0010,2295) LO */
    char registry_code[65];       /*   Breed Registry Code Sequence (0010,2296): Code Value */
    char registry_scheme[65];     /*     Coding Scheme Designator */
    char registry_meaning[257];   /*     Code Meaning */
    char owner_name[325];         /* Responsible Person (0010,2297) PN */
    char owner_role[17];          /* Responsible Person Role (0010,2298) CS */
    char clinic[257];             /* Responsible Organization (0010,2299) LO */
    char sex_neutered[17];        /* Patient's Sex Neutered (0010,2203) CS */
    /* imaging service request and requested procedure */
    char accession[65];              /* Accession Number (0008,0050) SH */
    char requested_id[65];           /* Requested Procedure ID (0040,1001) SH; the SPS ID when
                                      * empty */
    char requested_description[257]; /* Requested Procedure Description (0032,1060) LO */
    char study_uid[65];              /* Study Instance UID (0020,000D); generated when empty */
    char referring[325];             /* Referring Physician's Name (0008,0090) PN */
    /* scheduled procedure step: the Scheduled Procedure Step Sequence (0040,0100) item */
    char station_ae[17];       /* Scheduled Station AE Title (0040,0001) AE; "" = any */
    char start_date[9];        /* Scheduled Procedure Step Start Date (0040,0002) DA */
    char start_time[17];       /* Scheduled Procedure Step Start Time (0040,0003) TM */
    char modality[17];         /* Modality (0008,0060) CS */
    char performing[325];      /* Scheduled Performing Physician's Name (0040,0006) PN */
    char sps_description[257]; /* Scheduled Procedure Step Description (0040,0007) LO */
    char station_name[65];     /* Scheduled Station Name (0040,0010) SH */
    char location[65];         /* Scheduled Procedure Step Location (0040,0011) SH */
    /* kept by the index */
    char created_at[32]; /* when added, "YYYY-MM-DDTHH:MM:SS.SSSZ" */
    char ended_at[32];   /* when the status left SCHEDULED, "" while scheduled */
} idx_worklist_item;

/*
 * Adds a Scheduled Procedure Step. Empty sps_id gets the row id in decimal (another number
 * when that one is taken), empty study_uid a new 2.25 UID, empty requested_id the SPS ID,
 * empty status SCHEDULED; item->id, those and created_at are written back. VP_ECONFLICT when
 * sps_id is given and taken; VP_EINVAL for a status other than IDX_WL_* or a study_uid that
 * is not a UID.
 */
vp_status idx_worklist_add(idx *x, idx_worklist_item *item, vp_error *err);
/* Removes the step with this SPS ID; VP_ENOTFOUND when there is none. */
vp_status idx_worklist_remove(idx *x, const char *sps_id, vp_error *err);
/* Removes every step of an accession number (non-empty); *removed says how many (may be
 * NULL); VP_ENOTFOUND when there was none. */
vp_status idx_worklist_remove_accession(idx *x, const char *accession, uint64_t *removed,
                                        vp_error *err);
/* Sets the status of the step with this SPS ID (IDX_WL_*; VP_EINVAL otherwise);
 * VP_ENOTFOUND when there is none. */
vp_status idx_worklist_set_status(idx *x, const char *sps_id, const char *status, vp_error *err);
/*
 * Marks COMPLETED the SCHEDULED steps of a study that arrived: those whose Accession Number
 * equals accession (ignored when empty) or whose Study Instance UID equals study_uid (ignored
 * when empty or NULL). *changed (may be NULL) says how many. idx_instance_put and
 * idx_instance_put_batch do this themselves, in their transaction, when they add a study or
 * change its row.
 */
vp_status idx_worklist_complete(idx *x, const char *accession, const char *study_uid,
                                uint64_t *changed, vp_error *err);
/* Calls fn for each step in start date and time order (SCHEDULED ones only unless all); a
 * non-OK return from fn stops the walk and is returned. The item is valid during the call. */
typedef vp_status (*idx_worklist_fn)(void *ctx, const idx_worklist_item *item);
vp_status idx_worklist_each(idx *x, bool all, idx_worklist_fn fn, void *ctx, vp_error *err);

/* ------------------------------------------------------------------------------------------ */
/* Users, credentials and the audit log (migration 5; src/idx/sqlite_users.c). Policy (names,  */
/* password hashing, expiry, throttling, roles) lives in src/app/auth.c: these calls store.    */

/* Bytes of a user name; of a password hash string, NUL included (libsodium's
 * crypto_pwhash_STRBYTES); of the digest an API token or session id is kept as. */
#define IDX_USER_NAME_MAX 64
#define IDX_PW_HASH_MAX 128
#define IDX_CRED_HASH 32

/* The prepared statements of the user tables on one idx connection. Same thread rule as the
 * idx it was opened on (one thread at a time); close it before that idx. */
typedef struct idx_users idx_users;
vp_status idx_users_open(idx *x, idx_users **out, vp_error *err);
void idx_users_close(idx_users *u);

/* One user. Times are Unix milliseconds. */
typedef struct idx_user {
    int64_t id;                       /* row id, set by idx_user_add */
    char name[IDX_USER_NAME_MAX + 1]; /* unique ignoring ASCII case */
    char role[16];                    /* admin, radiologist, vet, technician, read-only */
    char pw_hash[IDX_PW_HASH_MAX];    /* crypto_pwhash_str output */
    int64_t created_ms, updated_ms;   /* set by the caller */
    bool disabled;                    /* may not log in nor use its tokens */
} idx_user;

/* An API token (its secret is never stored, only IDX_CRED_HASH bytes of digest). */
typedef struct idx_token {
    int64_t id, user_id; /* row id (set by idx_token_add), owner */
    char label[65];      /* what it is for, "" when none */
    int64_t created_ms;  /* set by the caller */
    int64_t used_ms;     /* last use, 0 = never */
} idx_token;

/* A browser session. */
typedef struct idx_session {
    int64_t id, user_id;  /* row id (set by idx_session_add), owner */
    int64_t created_ms;   /* login time */
    int64_t seen_ms;      /* last request (idle timeout counts from here) */
    int64_t expires_ms;   /* end of the absolute lifetime */
    char client[65];      /* client address at login */
    char user_agent[257]; /* User-Agent at login, truncated */
} idx_session;

/* Adds a user: VP_ECONFLICT when the name is taken (ignoring case), VP_EINVAL for an unknown
 * role; user->id is set. */
vp_status idx_user_add(idx_users *u, idx_user *user, vp_error *err);
/* The user of this name (ignoring case), VP_ENOTFOUND when none. */
vp_status idx_user_get(idx_users *u, const char *name, idx_user *out, vp_error *err);
/* Writes role, pw_hash, updated_ms and disabled of the user with user->id; VP_ENOTFOUND. */
vp_status idx_user_update(idx_users *u, const idx_user *user, vp_error *err);
/* Removes a user with its tokens and sessions (not its audit rows); VP_ENOTFOUND. */
vp_status idx_user_remove(idx_users *u, const char *name, vp_error *err);
vp_status idx_user_count(idx_users *u, uint64_t *n, vp_error *err);
/* Calls fn for each user by name; a non-OK return from fn stops the walk and is returned. */
typedef vp_status (*idx_user_fn)(void *ctx, const idx_user *user);
vp_status idx_user_each(idx_users *u, idx_user_fn fn, void *ctx, vp_error *err);

/* Adds a token with the digest of its secret; t->id is set. */
vp_status idx_token_add(idx_users *u, idx_token *t, const uint8_t hash[IDX_CRED_HASH],
                        vp_error *err);
/* The token with this digest and its user (one index probe); VP_ENOTFOUND. */
vp_status idx_token_find(idx_users *u, const uint8_t hash[IDX_CRED_HASH], idx_token *t,
                         idx_user *user, vp_error *err);
vp_status idx_token_touch(idx_users *u, int64_t id, int64_t used_ms, vp_error *err);
/* Removes tokens of a user: the one with row id id (when > 0), else those labelled label
 * (when not NULL), else all. *n (may be NULL) says how many; none is VP_ENOTFOUND. */
vp_status idx_token_revoke(idx_users *u, int64_t user_id, int64_t id, const char *label,
                           uint64_t *n, vp_error *err);
typedef vp_status (*idx_token_fn)(void *ctx, const idx_token *t);
vp_status idx_token_each(idx_users *u, int64_t user_id, idx_token_fn fn, void *ctx, vp_error *err);

/* Adds a session with the digest of its id; s->id is set. */
vp_status idx_session_add(idx_users *u, idx_session *s, const uint8_t hash[IDX_CRED_HASH],
                          vp_error *err);
/* The session with this digest and its user; VP_ENOTFOUND. */
vp_status idx_session_find(idx_users *u, const uint8_t hash[IDX_CRED_HASH], idx_session *s,
                           idx_user *user, vp_error *err);
vp_status idx_session_touch(idx_users *u, int64_t id, int64_t seen_ms, vp_error *err);
/* Removes the session with this digest; VP_ENOTFOUND. */
vp_status idx_session_remove(idx_users *u, const uint8_t hash[IDX_CRED_HASH], vp_error *err);
/* Removes every session of a user; *n (may be NULL) says how many. */
vp_status idx_session_remove_user(idx_users *u, int64_t user_id, uint64_t *n, vp_error *err);
/* Removes sessions past expires_ms or not seen since seen_before_ms; *n may be NULL. */
vp_status idx_session_purge(idx_users *u, int64_t now_ms, int64_t seen_before_ms, uint64_t *n,
                            vp_error *err);

/* One audit log row: who did what to which resource, from where, and how it went. Text is
 * UTF-8 and truncated to the field. */
typedef struct idx_audit {
    int64_t id;             /* row id (set when read) */
    int64_t time_ms;        /* Unix milliseconds */
    int64_t user_id;        /* 0 = no user (anonymous, failed login, command line) */
    char user[65];          /* user name as given */
    char action[33];        /* e.g. view, download, upload, delete, login, user.add */
    char resource_type[33]; /* e.g. study, series, instance, user, token; "" = none */
    char resource_id[129];  /* e.g. a Study Instance UID, a user name */
    char client[65];        /* client address, "cli" for the command line */
    char outcome[17];       /* success, failure, denied, throttled */
    int status;             /* protocol status (HTTP), 0 = none */
    char detail[257];       /* free text */
} idx_audit;

/* Which rows idx_audit_query returns, newest first. Zero/NULL/"" fields do not filter. */
typedef struct idx_audit_filter {
    int64_t since_ms, until_ms; /* time_ms >= since_ms and < until_ms */
    const char *user;           /* name, ignoring case */
    const char *action;         /* exact */
    const char *resource_id;    /* exact */
    int64_t before_id;          /* paging by key: rows with id < before_id */
    uint64_t offset;            /* paging by count: rows skipped */
    uint64_t limit;             /* at most this many rows; 0 = no limit */
} idx_audit_filter;

/* Appends n rows in one transaction (one WAL sync for the batch). */
vp_status idx_audit_append(idx_users *u, const idx_audit *rows, size_t n, vp_error *err);
typedef vp_status (*idx_audit_fn)(void *ctx, const idx_audit *row);
/* Calls fn for each row that passes the filter, newest first; a non-OK return from fn stops
 * the walk and is returned. */
vp_status idx_audit_query(idx_users *u, const idx_audit_filter *f, idx_audit_fn fn, void *ctx,
                          vp_error *err);

#endif
