/* SPDX-License-Identifier: MIT */
/*
 * The SQLite backend of the index. WAL mode with synchronous=FULL: a commit is on disk when
 * it returns, power cut included (NORMAL may lose the last commits on power loss). One
 * connection per idx; statements are prepared once and reused.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "idx/internal.h"

enum stmt {
    S_BEGIN,
    S_COMMIT,
    S_ROLLBACK,
    S_PATIENT_UPSERT,
    S_STUDY_UPSERT,
    S_SERIES_UPSERT,
    S_PATIENT_ID,
    S_STUDY_ID,
    S_SERIES_ID,
    S_INSTANCE_OLD_SERIES,
    S_INSTANCE_UPSERT,
    S_SERIES_COUNT,
    S_STUDY_COUNT,
    S_INSTANCE_GET,
    S_SETTLE,
    S_SERIES_PRUNE,
    S_STUDY_PRUNE,
    S_PATIENT_PRUNE,
    S_PENDING,
    S_INSTANCE_DELETE,
    S_COUNT,
    S_EACH,
    S_WL_COMPLETE,
    S_META_PUT,
    S_META_DROP,
    S_N
};

/* Upserts keep existing values when the new object leaves an attribute empty: a later
 * instance without Responsible Person must not erase the owner.
 *
 * A code (Patient Species / Breed Code Sequence, first item) is kept as one unit: Code Value,
 * Coding Scheme Designator, Coding Scheme Version and Code Meaning (PS3.3 Table 8.8-1), in the
 * columns <p>_code, _scheme, _version, _meaning. An object without a code keeps the stored one,
 * as for other attributes. An object with the same code (same Code Value, and the same Coding
 * Scheme Designator or none) fills in what it says and keeps the rest: a copy of the code that
 * lost its meaning on the way does not erase it, and objects alternating between such copies
 * do not rewrite the row. An object with another code (another value, or another non-empty
 * scheme) replaces the whole item, empty attributes included: a stored meaning or scheme never
 * goes with a code it does not describe. CODE_CHANGED is true exactly when CODE_SET changes
 * the row, for the WHERE that keeps an upsert without changes write-free.
 */
/* clang-format off */
#define CODE_OTHER(p)                                                                              \
    "(excluded." p "_code IS NOT " p "_code"                                                       \
    " OR (excluded." p "_scheme <> '' AND excluded." p "_scheme IS NOT " p "_scheme))"
#define CODE_ATTR_SET(p, a)                                                                        \
    " " p "_" a " = CASE WHEN excluded." p "_code = '' THEN " p "_" a                              \
    " WHEN " CODE_OTHER(p) " THEN excluded." p "_" a                                               \
    " ELSE coalesce(nullif(excluded." p "_" a ", ''), " p "_" a ") END,"
#define CODE_SET(p)                                                                                \
    " " p "_code = coalesce(nullif(excluded." p "_code, ''), " p "_code),"                         \
    CODE_ATTR_SET(p, "scheme") CODE_ATTR_SET(p, "version") CODE_ATTR_SET(p, "meaning")
#define CODE_CHANGED(p)                                                                            \
    " (excluded." p "_code <> '' AND (" CODE_OTHER(p)                                             \
    " OR (excluded." p "_version <> '' AND excluded." p "_version IS NOT " p "_version)"          \
    " OR (excluded." p "_meaning <> '' AND excluded." p "_meaning IS NOT " p "_meaning))) OR "

static const char patient_upsert[] =
    "INSERT INTO patient (patient_id, issuer, patient_name, pet_name, owner_name,"
    " owner_role, clinic, species, species_code, species_scheme, species_version,"
    " species_meaning, breed, breed_code, breed_scheme, breed_version, breed_meaning,"
    " sex, birth_date)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,"
    " ?17, ?18, ?19)"
    " ON CONFLICT (patient_id, issuer) DO UPDATE SET"
    " patient_name = coalesce(nullif(excluded.patient_name, ''), patient_name),"
    " pet_name = coalesce(nullif(excluded.pet_name, ''), pet_name),"
    " owner_name = coalesce(nullif(excluded.owner_name, ''), owner_name),"
    " owner_role = coalesce(nullif(excluded.owner_role, ''), owner_role),"
    " clinic = coalesce(nullif(excluded.clinic, ''), clinic),"
    " species = coalesce(nullif(excluded.species, ''), species),"
    CODE_SET("species")
    " breed = coalesce(nullif(excluded.breed, ''), breed),"
    CODE_SET("breed")
    " sex = coalesce(nullif(excluded.sex, ''), sex),"
    " birth_date = coalesce(nullif(excluded.birth_date, ''), birth_date)"
    " WHERE "
    " (excluded.patient_name <> '' AND excluded.patient_name IS NOT patient_name) OR "
    " (excluded.pet_name <> '' AND excluded.pet_name IS NOT pet_name) OR "
    " (excluded.owner_name <> '' AND excluded.owner_name IS NOT owner_name) OR "
    " (excluded.owner_role <> '' AND excluded.owner_role IS NOT owner_role) OR "
    " (excluded.clinic <> '' AND excluded.clinic IS NOT clinic) OR "
    " (excluded.species <> '' AND excluded.species IS NOT species) OR "
    CODE_CHANGED("species")
    " (excluded.breed <> '' AND excluded.breed IS NOT breed) OR "
    CODE_CHANGED("breed")
    " (excluded.sex <> '' AND excluded.sex IS NOT sex) OR "
    " (excluded.birth_date <> '' AND excluded.birth_date IS NOT birth_date)"
    " RETURNING id";
/* clang-format on */

static const char *const sql[S_N] = {
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_PATIENT_UPSERT] = patient_upsert,
    [S_STUDY_UPSERT] =
        "INSERT INTO study (patient, study_uid, study_date, study_time, accession, study_id,"
        " description, referring, sex_neutered, weight)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
        " ON CONFLICT (study_uid) DO UPDATE SET patient = excluded.patient,"
        " study_date = coalesce(nullif(excluded.study_date, ''), study_date),"
        " study_time = coalesce(nullif(excluded.study_time, ''), study_time),"
        " accession = coalesce(nullif(excluded.accession, ''), accession),"
        " study_id = coalesce(nullif(excluded.study_id, ''), study_id),"
        " description = coalesce(nullif(excluded.description, ''), description),"
        " referring = coalesce(nullif(excluded.referring, ''), referring),"
        " sex_neutered = coalesce(nullif(excluded.sex_neutered, ''), sex_neutered),"
        " weight = coalesce(nullif(excluded.weight, ''), weight)"
        " WHERE excluded.patient IS NOT patient OR "
        " (excluded.study_date <> '' AND excluded.study_date IS NOT study_date) OR "
        " (excluded.study_time <> '' AND excluded.study_time IS NOT study_time) OR "
        " (excluded.accession <> '' AND excluded.accession IS NOT accession) OR "
        " (excluded.study_id <> '' AND excluded.study_id IS NOT study_id) OR "
        " (excluded.description <> '' AND excluded.description IS NOT description) OR "
        " (excluded.referring <> '' AND excluded.referring IS NOT referring) OR "
        " (excluded.sex_neutered <> '' AND excluded.sex_neutered IS NOT sex_neutered) OR "
        " (excluded.weight <> '' AND excluded.weight IS NOT weight)"
        " RETURNING id",
    [S_SERIES_UPSERT] =
        "INSERT INTO series (study, series_uid, modality, series_number, description,"
        " body_part) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
        " ON CONFLICT (series_uid) DO UPDATE SET study = excluded.study,"
        " modality = coalesce(nullif(excluded.modality, ''), modality),"
        " series_number = coalesce(nullif(excluded.series_number, ''), series_number),"
        " description = coalesce(nullif(excluded.description, ''), description),"
        " body_part = coalesce(nullif(excluded.body_part, ''), body_part)"
        " WHERE excluded.study IS NOT study OR "
        " (excluded.modality <> '' AND excluded.modality IS NOT modality) OR "
        " (excluded.series_number <> '' AND excluded.series_number IS NOT series_number) OR "
        " (excluded.description <> '' AND excluded.description IS NOT description) OR "
        " (excluded.body_part <> '' AND excluded.body_part IS NOT body_part)"
        " RETURNING id",
    /* When the upsert changed nothing (its WHERE was false) it returns no row: the id is
     * looked up. Rewriting unchanged rows would dirty every index page of the table. */
    [S_PATIENT_ID] = "SELECT id FROM patient WHERE patient_id = ?1 AND issuer = ?2",
    [S_STUDY_ID] = "SELECT id FROM study WHERE study_uid = ?1",
    [S_SERIES_ID] = "SELECT id FROM series WHERE series_uid = ?1",
    [S_INSTANCE_OLD_SERIES] = "SELECT i.series, s.study FROM instance i JOIN series s"
                              " ON s.id = i.series WHERE i.sop_uid = ?1",
    [S_INSTANCE_UPSERT] =
        "INSERT INTO instance (series, sop_uid, sop_class, instance_number, transfer_syntax,"
        " frames, path, size, checksum, pending)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
        " ON CONFLICT (sop_uid) DO UPDATE SET series = excluded.series, pending = excluded.pending,"
        " sop_class = excluded.sop_class, instance_number = excluded.instance_number,"
        " transfer_syntax = excluded.transfer_syntax, frames = excluded.frames,"
        " path = excluded.path, size = excluded.size, checksum = excluded.checksum,"
        " received_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
        " RETURNING id",
    /* Computed attributes from the indexed child rows: a range scan of one series or study,
     * never of instance files. */
    [S_SERIES_COUNT] = "UPDATE series SET n_instances ="
                       " (SELECT count(*) FROM instance WHERE series = ?1) WHERE id = ?1",
    [S_STUDY_COUNT] =
        "UPDATE study SET"
        " n_series = (SELECT count(*) FROM series WHERE study = ?1 AND n_instances > 0),"
        " n_instances = (SELECT coalesce(sum(n_instances), 0) FROM series WHERE study = ?1),"
        " modalities = (SELECT coalesce(group_concat(modality, '\\'), '') FROM"
        "   (SELECT DISTINCT modality FROM series WHERE study = ?1 AND modality <> ''"
        "    AND n_instances > 0"
        "    ORDER BY modality))"
        " WHERE id = ?1",
    [S_INSTANCE_GET] = "SELECT path, size, checksum FROM instance WHERE sop_uid = ?1",
    /* A series, study or patient left without children when an instance moved or was
     * removed goes too: queries must not list empty studies. */
    [S_SERIES_PRUNE] = "DELETE FROM series WHERE id = ?1"
                       " AND NOT EXISTS (SELECT 1 FROM instance WHERE series = ?1)",
    [S_STUDY_PRUNE] = "DELETE FROM study WHERE id = ?1"
                      " AND NOT EXISTS (SELECT 1 FROM series WHERE study = ?1) RETURNING patient",
    [S_PATIENT_PRUNE] = "DELETE FROM patient WHERE id = ?1"
                        " AND NOT EXISTS (SELECT 1 FROM study WHERE patient = ?1)",
    [S_SETTLE] = "UPDATE instance SET pending = 0 WHERE sop_uid = ?1 AND pending <> 0",
    [S_PENDING] = "SELECT sop_uid, path, size, checksum FROM instance WHERE pending <> 0",
    [S_INSTANCE_DELETE] = "DELETE FROM instance WHERE sop_uid = ?1 RETURNING series",
    [S_EACH] = "SELECT sop_uid, path, size, checksum FROM instance ORDER BY id",
    [S_COUNT] = "SELECT (SELECT count(*) FROM patient), (SELECT count(*) FROM study),"
                " (SELECT count(*) FROM series), (SELECT count(*) FROM instance)",
    /* A study arrived: its scheduled worklist steps are done (two index probes; NULL for an
     * empty key, which then matches nothing). */
    [S_WL_COMPLETE] = "UPDATE worklist SET status = 'COMPLETED',"
                      " ended_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
                      " WHERE status = 'SCHEDULED' AND (accession = ?1 OR study_uid = ?2)",
    /* The instance's WADO-RS metadata (migration 6), in the transaction of its row: a
     * replaced instance gets the new object's, or none (readers then use the file). */
    [S_META_PUT] = "INSERT INTO instance_meta (instance, raw_len, json) VALUES (?1, ?2, ?3)"
                   " ON CONFLICT (instance) DO UPDATE SET raw_len = excluded.raw_len,"
                   " json = excluded.json",
    [S_META_DROP] = "DELETE FROM instance_meta WHERE instance = ?1",
};

struct idx {
    sqlite3 *db;           /* the connection */
    sqlite3_stmt *st[S_N]; /* prepared statements, by enum stmt */
    int version;           /* schema version after migrations */
};

static vp_status db_error(idx *x, vp_error *err, const char *what)
{
    int code = sqlite3_errcode(x->db);
    vp_status st = code == SQLITE_NOMEM                             ? VP_ENOMEM
                   : (code == SQLITE_BUSY || code == SQLITE_LOCKED) ? VP_EAGAIN
                   : code == SQLITE_FULL || code == SQLITE_IOERR    ? VP_EIO
                   : code == SQLITE_CONSTRAINT                      ? VP_ECONFLICT
                                                                    : VP_EIO;
    return vp_error_set(err, st, "index: %s: %s", what, sqlite3_errmsg(x->db));
}

static vp_status exec(idx *x, const char *q, vp_error *err)
{
    char *msg = NULL;
    if (sqlite3_exec(x->db, q, NULL, NULL, &msg) != SQLITE_OK) {
        vp_status st = vp_error_set(err, VP_EIO, "index: %s", msg ? msg : "error");
        sqlite3_free(msg);
        return st;
    }
    return VP_OK;
}

static vp_status migrate(idx *x, vp_error *err)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(x->db, "PRAGMA user_version", -1, &s, NULL) != SQLITE_OK)
        return db_error(x, err, "read schema version");
    int v = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int(s, 0) : 0;
    sqlite3_finalize(s);
    if (v > idx__migration_count())
        return vp_error_set(err, VP_EUNSUPPORTED,
                            "index schema version %d is newer than this vetpacs (%d)", v,
                            idx__migration_count());
    for (v++; v <= idx__migration_count(); v++) {
        char pragma[48];
        snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", v);
        vp_status st;
        if ((st = exec(x, "BEGIN IMMEDIATE", err)))
            return st;
        if ((st = exec(x, idx__migration(v), err)) || (st = exec(x, pragma, err))) {
            exec(x, "ROLLBACK", NULL);
            return st;
        }
        if ((st = exec(x, "COMMIT", err)))
            return st;
    }
    x->version = idx__migration_count();
    return VP_OK;
}

vp_status idx_open(const char *path, idx **out, vp_error *err)
{
    *out = NULL;
    idx *x = vp_calloc(1, sizeof *x);
    if (!x)
        return vp_error_set(err, VP_ENOMEM, "out of memory");
    vp_status st;
    if (sqlite3_open_v2(path, &x->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        st = x->db ? db_error(x, err, path) : vp_error_set(err, VP_ENOMEM, "out of memory");
        goto fail;
    }
    sqlite3_busy_timeout(x->db, 10000);
    if ((st = exec(x,
                   "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
                   " PRAGMA foreign_keys = ON;",
                   err)) ||
        (st = migrate(x, err)))
        goto fail;
    for (int i = 0; i < S_N; i++) {
        if (sqlite3_prepare_v3(x->db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, &x->st[i], NULL) !=
            SQLITE_OK) {
            st = db_error(x, err, "prepare");
            goto fail;
        }
    }
    *out = x;
    return VP_OK;
fail:
    idx_close(x);
    return st;
}

void idx_close(idx *x)
{
    if (!x)
        return;
    for (int i = 0; i < S_N; i++)
        sqlite3_finalize(x->st[i]);
    sqlite3_close(x->db);
    vp_free(x);
}

int idx_schema_version(idx *x)
{
    return x->version;
}

sqlite3 *idx__db(idx *x)
{
    return x->db;
}

vp_status idx__db_error(idx *x, vp_error *err, const char *what)
{
    return db_error(x, err, what);
}

static void bind_texts(sqlite3_stmt *s, int first, const char *const *v, int n)
{
    for (int i = 0; i < n; i++)
        sqlite3_bind_text(s, first + i, v[i], -1, SQLITE_STATIC);
}

/* Runs a statement that returns one id. */
static vp_status step_id(idx *x, sqlite3_stmt *s, int64_t *id, vp_error *err, const char *what)
{
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *id = sqlite3_column_int64(s, 0);
    while (rc == SQLITE_ROW)
        rc = sqlite3_step(s);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc == SQLITE_DONE ? VP_OK : db_error(x, err, what);
}

static vp_status step_done(idx *x, sqlite3_stmt *s, vp_error *err, const char *what)
{
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc == SQLITE_DONE ? VP_OK : db_error(x, err, what);
}

/* Scheduled worklist steps of an arriving study are completed (PS3.4 K.6.1: a step the
 * modality performed leaves the worklist); see idx_worklist_complete. */
static vp_status worklist_complete(idx *x, const char *accession, const char *study_uid,
                                   uint64_t *changed, vp_error *err)
{
    sqlite3_stmt *s = x->st[S_WL_COMPLETE];
    if (accession && *accession)
        sqlite3_bind_text(s, 1, accession, -1, SQLITE_STATIC);
    if (study_uid && *study_uid)
        sqlite3_bind_text(s, 2, study_uid, -1, SQLITE_STATIC);
    vp_status st = step_done(x, s, err, "worklist completion");
    if (changed)
        *changed = st == VP_OK ? (uint64_t)sqlite3_changes(x->db) : 0;
    return st;
}

vp_status idx_worklist_complete(idx *x, const char *accession, const char *study_uid,
                                uint64_t *changed, vp_error *err)
{
    return worklist_complete(x, accession, study_uid, changed, err);
}

/* Removes series (and then its study, and then the study's patient) when left empty. */
static vp_status prune(idx *x, int64_t series, int64_t study, vp_error *err)
{
    vp_status st;
    sqlite3_bind_int64(x->st[S_SERIES_PRUNE], 1, series);
    if ((st = step_done(x, x->st[S_SERIES_PRUNE], err, "prune series")) || !study)
        return st;
    int64_t patient = 0;
    sqlite3_bind_int64(x->st[S_STUDY_PRUNE], 1, study);
    if ((st = step_id(x, x->st[S_STUDY_PRUNE], &patient, err, "prune study")) || !patient)
        return st;
    sqlite3_bind_int64(x->st[S_PATIENT_PRUNE], 1, patient);
    return step_done(x, x->st[S_PATIENT_PRUNE], err, "prune patient");
}

/* The upserts and recounts for one instance, inside the caller's transaction. */
static vp_status put_one(idx *x, const idx_record *r, vp_error *err)
{
    vp_status st;
    int64_t patient = 0, study = 0, series = 0, old_series = 0, old_study = 0;
    const char *pv[] = {
        r->patient_id,      r->issuer,          r->patient_name, r->pet_name,     r->owner_name,
        r->owner_role,      r->clinic,          r->species,      r->species_code, r->species_scheme,
        r->species_version, r->species_meaning, r->breed,        r->breed_code,   r->breed_scheme,
        r->breed_version,   r->breed_meaning,   r->sex,          r->birth_date};
    bind_texts(x->st[S_PATIENT_UPSERT], 1, pv, (int)(sizeof pv / sizeof pv[0]));
    if ((st = step_id(x, x->st[S_PATIENT_UPSERT], &patient, err, "patient")))
        goto fail;
    if (!patient) {
        bind_texts(x->st[S_PATIENT_ID], 1, pv, 2);
        if ((st = step_id(x, x->st[S_PATIENT_ID], &patient, err, "patient")))
            goto fail;
    }
    sqlite3_bind_int64(x->st[S_STUDY_UPSERT], 1, patient);
    const char *sv[] = {r->study_uid, r->study_date,   r->study_time,
                        r->accession, r->study_id,     r->study_description,
                        r->referring, r->sex_neutered, r->weight};
    bind_texts(x->st[S_STUDY_UPSERT], 2, sv, 9);
    if ((st = step_id(x, x->st[S_STUDY_UPSERT], &study, err, "study")))
        goto fail;
    /* A study row added or changed completes its scheduled worklist steps; the later
     * instances of a study, which change nothing, cost nothing here. */
    if (!study) {
        bind_texts(x->st[S_STUDY_ID], 1, sv, 1);
        if ((st = step_id(x, x->st[S_STUDY_ID], &study, err, "study")))
            goto fail;
    } else if ((st = worklist_complete(x, r->accession, r->study_uid, NULL, err))) {
        goto fail;
    }
    sqlite3_bind_int64(x->st[S_SERIES_UPSERT], 1, study);
    const char *rv[] = {r->series_uid, r->modality, r->series_number, r->series_description,
                        r->body_part};
    bind_texts(x->st[S_SERIES_UPSERT], 2, rv, 5);
    if ((st = step_id(x, x->st[S_SERIES_UPSERT], &series, err, "series")))
        goto fail;
    if (!series) {
        bind_texts(x->st[S_SERIES_ID], 1, rv, 1);
        if ((st = step_id(x, x->st[S_SERIES_ID], &series, err, "series")))
            goto fail;
    }
    /* Where the instance was before (a resend may move it to another series or study). */
    sqlite3_stmt *o = x->st[S_INSTANCE_OLD_SERIES];
    sqlite3_bind_text(o, 1, r->sop_instance_uid, -1, SQLITE_STATIC);
    int rc = sqlite3_step(o);
    if (rc == SQLITE_ROW) {
        old_series = sqlite3_column_int64(o, 0);
        old_study = sqlite3_column_int64(o, 1);
    }
    sqlite3_reset(o);
    sqlite3_clear_bindings(o);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        st = db_error(x, err, "instance");
        goto fail;
    }
    sqlite3_stmt *s = x->st[S_INSTANCE_UPSERT];
    sqlite3_bind_int64(s, 1, series);
    const char *iv[] = {r->sop_instance_uid, r->sop_class_uid, r->instance_number,
                        r->transfer_syntax};
    bind_texts(s, 2, iv, 4);
    sqlite3_bind_int64(s, 6, r->frames);
    sqlite3_bind_text(s, 7, r->path, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 8, (sqlite3_int64)r->size);
    sqlite3_bind_blob(s, 9, r->checksum, sizeof r->checksum, SQLITE_STATIC);
    sqlite3_bind_int(s, 10, r->pending ? 1 : 0);
    int64_t instance = 0;
    if ((st = step_id(x, s, &instance, err, "instance")))
        goto fail;
    sqlite3_stmt *m = x->st[r->metadata ? S_META_PUT : S_META_DROP];
    sqlite3_bind_int64(m, 1, instance);
    if (r->metadata) {
        sqlite3_bind_int64(m, 2, (sqlite3_int64)r->metadata_raw_len);
        sqlite3_bind_blob64(m, 3, r->metadata, r->metadata_len, SQLITE_STATIC);
    }
    if ((st = step_done(x, m, err, "instance metadata")))
        goto fail;
    /* Counts of the series and study touched (and of the old ones, if the instance moved). */
    int64_t touched[2] = {series, old_series && old_series != series ? old_series : 0};
    for (int k = 0; k < 2; k++) {
        if (!touched[k])
            continue;
        sqlite3_bind_int64(x->st[S_SERIES_COUNT], 1, touched[k]);
        if ((st = step_done(x, x->st[S_SERIES_COUNT], err, "series counts")))
            goto fail;
    }
    int64_t studies[2] = {study, old_study && old_study != study ? old_study : 0};
    for (int k = 0; k < 2; k++) {
        if (!studies[k])
            continue;
        sqlite3_bind_int64(x->st[S_STUDY_COUNT], 1, studies[k]);
        if ((st = step_done(x, x->st[S_STUDY_COUNT], err, "study counts")))
            goto fail;
    }
    if (touched[1])
        st = prune(x, touched[1], studies[1], err);
fail:
    return st;
}

vp_status idx_instance_put(idx *x, const idx_record *r, vp_error *err)
{
    vp_status st;
    if ((st = step_done(x, x->st[S_BEGIN], err, "begin")))
        return st;
    if ((st = put_one(x, r, err)) == VP_OK &&
        (st = step_done(x, x->st[S_COMMIT], err, "commit")) == VP_OK)
        return VP_OK;
    step_done(x, x->st[S_ROLLBACK], NULL, "rollback");
    return st;
}

vp_status idx_instance_put_batch(idx *x, const idx_record *const *r, size_t n,
                                 const char *const *settled, size_t n_settled, vp_status *results,
                                 vp_error *errs, vp_error *err)
{
    vp_status st;
    if ((st = step_done(x, x->st[S_BEGIN], err, "begin")))
        return st;
    for (size_t i = 0; i < n_settled; i++) {
        sqlite3_bind_text(x->st[S_SETTLE], 1, settled[i], -1, SQLITE_STATIC);
        if ((st = step_done(x, x->st[S_SETTLE], err, "settle"))) {
            step_done(x, x->st[S_ROLLBACK], NULL, "rollback");
            return st;
        }
    }
    for (size_t i = 0; i < n; i++) {
        /* A savepoint per record: one bad record is undone alone, the batch goes on. */
        errs[i] = (vp_error){0};
        if ((results[i] = exec(x, "SAVEPOINT one", &errs[i])) == VP_OK) {
            results[i] = put_one(x, r[i], &errs[i]);
            if (results[i] != VP_OK)
                exec(x, "ROLLBACK TO one", NULL);
            exec(x, "RELEASE one", NULL);
        }
    }
    if ((st = step_done(x, x->st[S_COMMIT], err, "commit")) == VP_OK)
        return VP_OK;
    step_done(x, x->st[S_ROLLBACK], NULL, "rollback");
    return st;
}

vp_status idx_instance_get(idx *x, const char *sop_instance_uid, idx_stored *out, vp_error *err)
{
    sqlite3_stmt *s = x->st[S_INSTANCE_GET];
    sqlite3_bind_text(s, 1, sop_instance_uid, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    vp_status st = VP_OK;
    if (rc == SQLITE_ROW) {
        snprintf(out->path, sizeof out->path, "%s", (const char *)sqlite3_column_text(s, 0));
        out->size = (uint64_t)sqlite3_column_int64(s, 1);
        const void *sum = sqlite3_column_blob(s, 2);
        memset(out->checksum, 0, sizeof out->checksum);
        if (sum && sqlite3_column_bytes(s, 2) == (int)sizeof out->checksum)
            memcpy(out->checksum, sum, sizeof out->checksum);
    } else if (rc == SQLITE_DONE) {
        st = VP_ENOTFOUND;
    } else {
        st = db_error(x, err, "instance lookup");
    }
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return st;
}

vp_status idx_count(idx *x, idx_counts *out, vp_error *err)
{
    sqlite3_stmt *s = x->st[S_COUNT];
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        out->patients = (uint64_t)sqlite3_column_int64(s, 0);
        out->studies = (uint64_t)sqlite3_column_int64(s, 1);
        out->series = (uint64_t)sqlite3_column_int64(s, 2);
        out->instances = (uint64_t)sqlite3_column_int64(s, 3);
    }
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? VP_OK : db_error(x, err, "count");
}

vp_status idx_instance_delete(idx *x, const char *sop_instance_uid, vp_error *err)
{
    vp_status st;
    if ((st = step_done(x, x->st[S_BEGIN], err, "begin")))
        return st;
    int64_t series = 0, study = 0;
    sqlite3_stmt *o = x->st[S_INSTANCE_OLD_SERIES];
    sqlite3_bind_text(o, 1, sop_instance_uid, -1, SQLITE_STATIC);
    if (sqlite3_step(o) == SQLITE_ROW) {
        series = sqlite3_column_int64(o, 0);
        study = sqlite3_column_int64(o, 1);
    }
    sqlite3_reset(o);
    sqlite3_clear_bindings(o);
    if (!series) {
        step_done(x, x->st[S_ROLLBACK], NULL, "rollback");
        return vp_error_set(err, VP_ENOTFOUND, "no instance %s", sop_instance_uid);
    }
    int64_t gone = 0;
    sqlite3_bind_text(x->st[S_INSTANCE_DELETE], 1, sop_instance_uid, -1, SQLITE_STATIC);
    if ((st = step_id(x, x->st[S_INSTANCE_DELETE], &gone, err, "delete")))
        goto fail;
    sqlite3_bind_int64(x->st[S_SERIES_COUNT], 1, series);
    if ((st = step_done(x, x->st[S_SERIES_COUNT], err, "series counts")))
        goto fail;
    sqlite3_bind_int64(x->st[S_STUDY_COUNT], 1, study);
    if ((st = step_done(x, x->st[S_STUDY_COUNT], err, "study counts")) ||
        (st = prune(x, series, study, err)))
        goto fail;
    if ((st = step_done(x, x->st[S_COMMIT], err, "commit")) == VP_OK)
        return VP_OK;
fail:
    step_done(x, x->st[S_ROLLBACK], NULL, "rollback");
    return st;
}

/* Rows of one SELECT sop_uid, path, size, checksum statement, to fn. */
static vp_status walk(idx *x, sqlite3_stmt *s, idx_instance_fn fn, void *ctx, vp_error *err)
{
    vp_status st = VP_OK;
    int rc;
    while (st == VP_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        idx_stored row;
        snprintf(row.path, sizeof row.path, "%s", (const char *)sqlite3_column_text(s, 1));
        row.size = (uint64_t)sqlite3_column_int64(s, 2);
        memset(row.checksum, 0, sizeof row.checksum);
        if (sqlite3_column_bytes(s, 3) == (int)sizeof row.checksum)
            memcpy(row.checksum, sqlite3_column_blob(s, 3), sizeof row.checksum);
        st = fn(ctx, (const char *)sqlite3_column_text(s, 0), &row);
    }
    if (st == VP_OK && rc != SQLITE_DONE)
        st = db_error(x, err, "instance walk");
    sqlite3_reset(s);
    return st;
}

vp_status idx_pending_each(idx *x, idx_instance_fn fn, void *ctx, vp_error *err)
{
    return walk(x, x->st[S_PENDING], fn, ctx, err);
}

vp_status idx_instance_each(idx *x, idx_instance_fn fn, void *ctx, vp_error *err)
{
    return walk(x, x->st[S_EACH], fn, ctx, err);
}

vp_status idx_select(idx *x, const char *query, const char *const *params, size_t n, idx_row_fn fn,
                     void *ctx, vp_error *err)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(x->db, query, -1, &s, NULL) != SQLITE_OK)
        return db_error(x, err, "query");
    for (size_t i = 0; i < n; i++)
        sqlite3_bind_text(s, (int)i + 1, params[i], -1, SQLITE_STATIC);
    int ncol = sqlite3_column_count(s);
    const char *cols[64];
    if (ncol > 64)
        ncol = 64;
    vp_status st = VP_OK;
    int rc;
    while (st == VP_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        for (int i = 0; i < ncol; i++)
            cols[i] = (const char *)sqlite3_column_text(s, i);
        st = fn(ctx, cols, (size_t)ncol);
    }
    if (st == VP_OK && rc != SQLITE_DONE)
        st = db_error(x, err, "query");
    sqlite3_finalize(s);
    return st;
}

/* A prepared SELECT stepped by the caller: rows are read as they are answered, so a query
 * matching 10,000 studies never sits in memory. */
struct idx_cursor {
    idx *x;
    sqlite3_stmt *s;
    const char *cols[64];
};

vp_status idx_cursor_open(idx *x, const char *query, const char *const *params, size_t n,
                          idx_cursor **out, vp_error *err)
{
    *out = NULL;
    idx_cursor *c = vp_calloc(1, sizeof *c);
    if (!c)
        return vp_error_set(err, VP_ENOMEM, "out of memory");
    c->x = x;
    if (sqlite3_prepare_v2(x->db, query, -1, &c->s, NULL) != SQLITE_OK) {
        vp_free(c);
        return db_error(x, err, "query");
    }
    for (size_t i = 0; i < n; i++)
        sqlite3_bind_text(c->s, (int)i + 1, params[i], -1, SQLITE_STATIC);
    *out = c;
    return VP_OK;
}

vp_status idx_cursor_next(idx_cursor *c, const char *const **cols, size_t *ncols, vp_error *err)
{
    int rc = sqlite3_step(c->s);
    if (rc == SQLITE_DONE)
        return VP_ENOTFOUND;
    if (rc != SQLITE_ROW)
        return db_error(c->x, err, "query");
    int n = sqlite3_column_count(c->s);
    if (n > 64)
        n = 64;
    for (int i = 0; i < n; i++)
        c->cols[i] = (const char *)sqlite3_column_text(c->s, i);
    *cols = c->cols;
    *ncols = (size_t)n;
    return VP_OK;
}

void idx_cursor_close(idx_cursor *c)
{
    if (!c)
        return;
    sqlite3_finalize(c->s);
    vp_free(c);
}
