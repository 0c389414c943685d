/* SPDX-License-Identifier: MIT */
/*
 * The SQLite backend of the Modality Worklist calls of idx.h: Scheduled Procedure Steps
 * (PS3.4 K.6.1, the attributes of Table K.6-1 with the veterinary ones of CP-643) added,
 * listed, removed and given a status (Scheduled Procedure Step Status (0040,0020), PS3.3
 * C.4.10). Completion when a study arrives runs in sqlite.c, inside the instance put.
 *
 * These are rare calls (a command, a clinic's scheduling), so each prepares its statement
 * when called; the connection's other statements stay untouched.
 */
#include <sqlite3.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "idx/internal.h"

/* The text columns of the worklist table, named as the fields of idx_worklist_item, in one
 * list from which the statements and the field table are both made. */
#define WL_COLUMNS(X)                                                                              \
    X(sps_id)                                                                                      \
    X(status)                                                                                      \
    X(patient_id)                                                                                  \
    X(issuer)                                                                                      \
    X(patient_name)                                                                                \
    X(birth_date)                                                                                  \
    X(sex)                                                                                         \
    X(weight)                                                                                      \
    X(species)                                                                                     \
    X(species_code)                                                                                \
    X(species_scheme)                                                                              \
    X(species_meaning)                                                                             \
    X(breed)                                                                                       \
    X(breed_code)                                                                                  \
    X(breed_scheme)                                                                                \
    X(breed_meaning)                                                                               \
    X(breed_registration)                                                                          \
    X(registry_code)                                                                               \
    X(registry_scheme)                                                                             \
    X(registry_meaning)                                                                            \
    X(owner_name)                                                                                  \
    X(owner_role)                                                                                  \
    X(clinic)                                                                                      \
    X(sex_neutered)                                                                                \
    X(accession)                                                                                   \
    X(requested_id)                                                                                \
    X(requested_description)                                                                       \
    X(study_uid)                                                                                   \
    X(referring)                                                                                   \
    X(station_ae)                                                                                  \
    X(start_date)                                                                                  \
    X(start_time)                                                                                  \
    X(modality)                                                                                    \
    X(performing)                                                                                  \
    X(sps_description)                                                                             \
    X(station_name)                                                                                \
    X(location)

#define NAME(f) #f ", "
#define MARK(f) "?, "
#define FIELD(f) {offsetof(idx_worklist_item, f), sizeof(((idx_worklist_item *)0)->f)},

static const struct field {
    size_t off;  /* offset in idx_worklist_item */
    size_t size; /* bytes of its char array */
} fields[] = {WL_COLUMNS(FIELD)};

#define N_FIELDS ((int)(sizeof fields / sizeof fields[0]))

/* The text columns bound to ?1..?N_FIELDS, the row id to the last one. */
static const char insert_sql[] = "INSERT INTO worklist (" WL_COLUMNS(
    NAME) "id) VALUES (" WL_COLUMNS(MARK) "?) RETURNING created_at";
/* Columns 0..N_FIELDS-1 the text fields, then id, created_at, ended_at. */
static const char each_sql[] = "SELECT " WL_COLUMNS(NAME) "id, created_at, ended_at FROM worklist"
                                                          " WHERE ?1 OR status = 'SCHEDULED'"
                                                          " ORDER BY start_date, start_time, id";

static bool status_valid(const char *s)
{
    return !strcmp(s, IDX_WL_SCHEDULED) || !strcmp(s, IDX_WL_COMPLETED) ||
           !strcmp(s, IDX_WL_DISCONTINUED);
}

static vp_status prepare(idx *x, const char *sql, sqlite3_stmt **s, vp_error *err)
{
    if (sqlite3_prepare_v2(idx__db(x), sql, -1, s, NULL) != SQLITE_OK)
        return idx__db_error(x, err, "worklist");
    return VP_OK;
}

static vp_status exec(idx *x, const char *sql, vp_error *err)
{
    if (sqlite3_exec(idx__db(x), sql, NULL, NULL, NULL) != SQLITE_OK)
        return idx__db_error(x, err, "worklist");
    return VP_OK;
}

/* Runs a statement of text parameters that returns no row; *changed rows. */
static vp_status run(idx *x, const char *sql, const char *const *params, int n, uint64_t *changed,
                     vp_error *err)
{
    sqlite3_stmt *s;
    vp_status st = prepare(x, sql, &s, err);
    if (st)
        return st;
    for (int i = 0; i < n; i++)
        sqlite3_bind_text(s, i + 1, params[i], -1, SQLITE_STATIC);
    if (sqlite3_step(s) == SQLITE_DONE)
        *changed = (uint64_t)sqlite3_changes(idx__db(x));
    else
        st = idx__db_error(x, err, "worklist");
    sqlite3_finalize(s);
    return st;
}

/* One insert attempt; VP_ECONFLICT when the SPS ID is taken. */
static vp_status insert(idx *x, sqlite3_stmt *s, int64_t id, idx_worklist_item *it, vp_error *err)
{
    for (int i = 0; i < N_FIELDS; i++)
        sqlite3_bind_text(s, i + 1, (const char *)it + fields[i].off, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, N_FIELDS + 1, id);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        snprintf(it->created_at, sizeof it->created_at, "%s",
                 (const char *)sqlite3_column_text(s, 0));
        rc = sqlite3_step(s);
    }
    vp_status st = VP_OK;
    if (rc != SQLITE_DONE)
        st = sqlite3_extended_errcode(idx__db(x)) == SQLITE_CONSTRAINT_UNIQUE
                 ? vp_error_set(err, VP_ECONFLICT, "Scheduled Procedure Step ID \"%s\" exists",
                                it->sps_id)
                 : idx__db_error(x, err, "worklist");
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return st;
}

vp_status idx_worklist_add(idx *x, idx_worklist_item *it, vp_error *err)
{
    if (!it->status[0])
        snprintf(it->status, sizeof it->status, "%s", IDX_WL_SCHEDULED);
    if (!status_valid(it->status))
        return vp_error_set(err, VP_EINVAL,
                            "Scheduled Procedure Step Status \"%s\" is not SCHEDULED, COMPLETED "
                            "or DISCONTINUED",
                            it->status);
    if (!it->study_uid[0]) {
        char uid[DCM_UID_MAX + 1];
        vp_status st = dcm_uid_generate(uid);
        if (st)
            return vp_error_set(err, st, "cannot generate a Study Instance UID");
        snprintf(it->study_uid, sizeof it->study_uid, "%s", uid);
    } else if (!dcm_uid_valid(it->study_uid, strlen(it->study_uid))) {
        return vp_error_set(err, VP_EINVAL, "Study Instance UID \"%s\" is not a valid UID",
                            it->study_uid);
    }
    bool gen_sps = !it->sps_id[0], gen_requested = !it->requested_id[0];
    sqlite3_stmt *next = NULL, *ins = NULL;
    vp_status st = exec(x, "BEGIN IMMEDIATE", err);
    if (st)
        return st;
    /* The row id the insert will get (max + 1, inside this write transaction): a generated
     * SPS ID is that number, short enough to type in `vetpacs worklist remove`. */
    int64_t id = 0;
    if (!(st = prepare(x, "SELECT coalesce(max(id), 0) + 1 FROM worklist", &next, err))) {
        if (sqlite3_step(next) == SQLITE_ROW)
            id = sqlite3_column_int64(next, 0);
        else
            st = idx__db_error(x, err, "worklist");
    }
    if (!st)
        st = prepare(x, insert_sql, &ins, err);
    /* A generated number someone already gave by hand: the next free "<id>-<n>". */
    for (int attempt = 0; !st; attempt++) {
        if (gen_sps)
            snprintf(it->sps_id, sizeof it->sps_id, attempt ? "%lld-%d" : "%lld", (long long)id,
                     attempt);
        if (gen_requested)
            snprintf(it->requested_id, sizeof it->requested_id, "%s", it->sps_id);
        vp_error e = {0};
        st = insert(x, ins, id, it, &e);
        if (st == VP_ECONFLICT && gen_sps && attempt < 100) {
            st = VP_OK;
            continue;
        }
        if (st)
            vp_error_set(err, st, "%s", e.msg);
        break;
    }
    sqlite3_finalize(next);
    sqlite3_finalize(ins);
    if (!st)
        st = exec(x, "COMMIT", err);
    if (st) {
        sqlite3_exec(idx__db(x), "ROLLBACK", NULL, NULL, NULL);
        if (gen_sps)
            it->sps_id[0] = 0;
        if (gen_requested)
            it->requested_id[0] = 0;
        return st;
    }
    it->id = id;
    return VP_OK;
}

vp_status idx_worklist_remove(idx *x, const char *sps_id, vp_error *err)
{
    uint64_t n = 0;
    vp_status st = run(x, "DELETE FROM worklist WHERE sps_id = ?1", &sps_id, 1, &n, err);
    if (!st && n == 0)
        st = vp_error_set(err, VP_ENOTFOUND, "no Scheduled Procedure Step \"%s\"", sps_id);
    return st;
}

vp_status idx_worklist_remove_accession(idx *x, const char *accession, uint64_t *removed,
                                        vp_error *err)
{
    uint64_t n = 0;
    if (removed)
        *removed = 0;
    if (!*accession)
        return vp_error_set(err, VP_EINVAL, "empty Accession Number");
    vp_status st = run(x, "DELETE FROM worklist WHERE accession = ?1", &accession, 1, &n, err);
    if (!st && n == 0)
        st = vp_error_set(err, VP_ENOTFOUND, "no Scheduled Procedure Step of accession \"%s\"",
                          accession);
    if (!st && removed)
        *removed = n;
    return st;
}

vp_status idx_worklist_set_status(idx *x, const char *sps_id, const char *status, vp_error *err)
{
    if (!status_valid(status))
        return vp_error_set(err, VP_EINVAL,
                            "Scheduled Procedure Step Status \"%s\" is not SCHEDULED, COMPLETED "
                            "or DISCONTINUED",
                            status);
    const char *p[] = {sps_id, status};
    uint64_t n = 0;
    vp_status st = run(x,
                       "UPDATE worklist SET status = ?2, ended_at = CASE"
                       " WHEN ?2 = 'SCHEDULED' THEN '' WHEN status = ?2 THEN ended_at"
                       " ELSE strftime('%Y-%m-%dT%H:%M:%fZ', 'now') END WHERE sps_id = ?1",
                       p, 2, &n, err);
    if (!st && n == 0)
        st = vp_error_set(err, VP_ENOTFOUND, "no Scheduled Procedure Step \"%s\"", sps_id);
    return st;
}

static void copy_column(sqlite3_stmt *s, int col, char *out, size_t size)
{
    const char *v = (const char *)sqlite3_column_text(s, col);
    snprintf(out, size, "%s", v ? v : "");
}

vp_status idx_worklist_each(idx *x, bool all, idx_worklist_fn fn, void *ctx, vp_error *err)
{
    idx_worklist_item *it = vp_malloc(sizeof *it);
    if (!it)
        return vp_error_set(err, VP_ENOMEM, "out of memory");
    sqlite3_stmt *s;
    vp_status st = prepare(x, each_sql, &s, err);
    if (st) {
        vp_free(it);
        return st;
    }
    sqlite3_bind_int(s, 1, all ? 1 : 0);
    int rc;
    while (st == VP_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        memset(it, 0, sizeof *it);
        for (int i = 0; i < N_FIELDS; i++)
            copy_column(s, i, (char *)it + fields[i].off, fields[i].size);
        it->id = sqlite3_column_int64(s, N_FIELDS);
        copy_column(s, N_FIELDS + 1, it->created_at, sizeof it->created_at);
        copy_column(s, N_FIELDS + 2, it->ended_at, sizeof it->ended_at);
        st = fn(ctx, it);
    }
    if (st == VP_OK && rc != SQLITE_DONE)
        st = idx__db_error(x, err, "worklist");
    sqlite3_finalize(s);
    vp_free(it);
    return st;
}
