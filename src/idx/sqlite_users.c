/* SPDX-License-Identifier: MIT */
/*
 * The SQLite backend of the user calls of idx.h: users, API tokens and sessions (stored as
 * digests) and the append-only audit log, in the tables of migration 5 (src/idx/schema.c).
 *
 * Unlike the worklist calls, these run on every request of the web server (a session or
 * token lookup, an audit row per view or download), so their statements are prepared once per
 * connection in an idx_users and reused. The policy (hashing, expiry, throttling) is the
 * caller's: src/app/auth.c.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "idx/internal.h"

enum stmt {
    U_BEGIN,
    U_COMMIT,
    U_ROLLBACK,
    U_USER_ADD,
    U_USER_GET,
    U_USER_UPDATE,
    U_USER_REMOVE,
    U_USER_COUNT,
    U_USER_EACH,
    U_TOKEN_ADD,
    U_TOKEN_FIND,
    U_TOKEN_TOUCH,
    U_TOKEN_REVOKE,
    U_TOKEN_EACH,
    U_SESSION_ADD,
    U_SESSION_FIND,
    U_SESSION_TOUCH,
    U_SESSION_REMOVE,
    U_SESSION_REMOVE_USER,
    U_SESSION_PURGE,
    U_AUDIT_ADD,
    U_N
};

#define USER_COLS "u.id, u.name, u.role, u.pw_hash, u.created_ms, u.updated_ms, u.disabled"

static const char *const sql[U_N] = {
    [U_BEGIN] = "BEGIN IMMEDIATE",
    [U_COMMIT] = "COMMIT",
    [U_ROLLBACK] = "ROLLBACK",
    [U_USER_ADD] = "INSERT INTO users (name, role, pw_hash, created_ms, updated_ms, disabled)"
                   " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [U_USER_GET] = "SELECT " USER_COLS " FROM users u WHERE u.name = ?1",
    [U_USER_UPDATE] = "UPDATE users SET role = ?2, pw_hash = ?3, updated_ms = ?4, disabled = ?5"
                      " WHERE id = ?1",
    [U_USER_REMOVE] = "DELETE FROM users WHERE name = ?1",
    [U_USER_COUNT] = "SELECT count(*) FROM users",
    [U_USER_EACH] = "SELECT " USER_COLS " FROM users u ORDER BY u.name",
    [U_TOKEN_ADD] = "INSERT INTO api_token (user, hash, label, created_ms) VALUES (?1, ?2, ?3, ?4)",
    /* Columns 0-6 the user, then the token. */
    [U_TOKEN_FIND] = "SELECT " USER_COLS ", t.id, t.label, t.created_ms, t.used_ms"
                     " FROM api_token t JOIN users u ON u.id = t.user WHERE t.hash = ?1",
    [U_TOKEN_TOUCH] = "UPDATE api_token SET used_ms = ?2 WHERE id = ?1",
    [U_TOKEN_REVOKE] = "DELETE FROM api_token WHERE user = ?1"
                       " AND (?2 <= 0 OR id = ?2) AND (?3 IS NULL OR label = ?3)",
    [U_TOKEN_EACH] = "SELECT id, user, label, created_ms, used_ms FROM api_token WHERE user = ?1"
                     " ORDER BY id",
    [U_SESSION_ADD] = "INSERT INTO session (hash, user, created_ms, seen_ms, expires_ms, client,"
                      " user_agent) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    /* Columns 0-6 the user, then the session. */
    [U_SESSION_FIND] = "SELECT " USER_COLS ", s.id, s.created_ms, s.seen_ms, s.expires_ms,"
                       " s.client, s.user_agent"
                       " FROM session s JOIN users u ON u.id = s.user WHERE s.hash = ?1",
    [U_SESSION_TOUCH] = "UPDATE session SET seen_ms = ?2 WHERE id = ?1 AND seen_ms < ?2",
    [U_SESSION_REMOVE] = "DELETE FROM session WHERE hash = ?1",
    [U_SESSION_REMOVE_USER] = "DELETE FROM session WHERE user = ?1",
    /* Two index ranges (session_expires_i, session_seen_i). */
    [U_SESSION_PURGE] = "DELETE FROM session WHERE expires_ms <= ?1 OR seen_ms < ?2",
    [U_AUDIT_ADD] = "INSERT INTO audit (time_ms, user_id, user, action, resource_type,"
                    " resource_id, client, outcome, status, detail)"
                    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
};

struct idx_users {
    idx *x;                /* the connection's idx (for its error mapping) */
    sqlite3 *db;           /* its connection */
    sqlite3_stmt *st[U_N]; /* prepared statements, by enum stmt */
};

vp_status idx_users_open(idx *x, idx_users **out, vp_error *err)
{
    *out = NULL;
    idx_users *u = vp_calloc(1, sizeof *u);
    if (!u)
        return vp_error_set(err, VP_ENOMEM, "out of memory");
    u->x = x;
    u->db = idx__db(x);
    for (int i = 0; i < U_N; i++) {
        if (sqlite3_prepare_v3(u->db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, &u->st[i], NULL) !=
            SQLITE_OK) {
            vp_status st = idx__db_error(x, err, "prepare users");
            idx_users_close(u);
            return st;
        }
    }
    *out = u;
    return VP_OK;
}

void idx_users_close(idx_users *u)
{
    if (!u)
        return;
    for (int i = 0; i < U_N; i++)
        sqlite3_finalize(u->st[i]);
    vp_free(u);
}

/* Resets a statement for its next use (bindings too: text is bound SQLITE_STATIC). */
static void done(sqlite3_stmt *s)
{
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
}

static vp_status fail(idx_users *u, sqlite3_stmt *s, vp_error *err, const char *what)
{
    vp_status st = idx__db_error(u->x, err, what);
    done(s);
    return st;
}

/* Runs a statement that returns no row. */
static vp_status step_done(idx_users *u, sqlite3_stmt *s, vp_error *err, const char *what)
{
    if (sqlite3_step(s) != SQLITE_DONE)
        return fail(u, s, err, what);
    done(s);
    return VP_OK;
}

static void text(char *dst, size_t size, sqlite3_stmt *s, int col)
{
    const unsigned char *v = sqlite3_column_text(s, col);
    snprintf(dst, size, "%s", v ? (const char *)v : "");
}

static void bind_text(sqlite3_stmt *s, int i, const char *v)
{
    sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
}

static void bind_hash(sqlite3_stmt *s, int i, const uint8_t hash[IDX_CRED_HASH])
{
    sqlite3_bind_blob(s, i, hash, IDX_CRED_HASH, SQLITE_STATIC);
}

/* The user in columns 0-6 (USER_COLS). */
static void user_row(sqlite3_stmt *s, idx_user *out)
{
    memset(out, 0, sizeof *out);
    out->id = sqlite3_column_int64(s, 0);
    text(out->name, sizeof out->name, s, 1);
    text(out->role, sizeof out->role, s, 2);
    text(out->pw_hash, sizeof out->pw_hash, s, 3);
    out->created_ms = sqlite3_column_int64(s, 4);
    out->updated_ms = sqlite3_column_int64(s, 5);
    out->disabled = sqlite3_column_int(s, 6) != 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Users                                                                                    */

vp_status idx_user_add(idx_users *u, idx_user *user, vp_error *err)
{
    sqlite3_stmt *s = u->st[U_USER_ADD];
    bind_text(s, 1, user->name);
    bind_text(s, 2, user->role);
    bind_text(s, 3, user->pw_hash);
    sqlite3_bind_int64(s, 4, user->created_ms);
    sqlite3_bind_int64(s, 5, user->updated_ms);
    sqlite3_bind_int(s, 6, user->disabled);
    if (sqlite3_step(s) != SQLITE_DONE) {
        int ext = sqlite3_extended_errcode(u->db);
        done(s);
        if (ext == SQLITE_CONSTRAINT_UNIQUE)
            return vp_error_set(err, VP_ECONFLICT, "user \"%s\" exists", user->name);
        if (ext == SQLITE_CONSTRAINT_CHECK)
            return vp_error_set(err, VP_EINVAL, "unknown role \"%s\"", user->role);
        return idx__db_error(u->x, err, "add user");
    }
    user->id = sqlite3_last_insert_rowid(u->db);
    done(s);
    return VP_OK;
}

vp_status idx_user_get(idx_users *u, const char *name, idx_user *out, vp_error *err)
{
    sqlite3_stmt *s = u->st[U_USER_GET];
    bind_text(s, 1, name);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        user_row(s, out);
    else if (rc != SQLITE_DONE)
        return fail(u, s, err, "read user");
    done(s);
    return rc == SQLITE_ROW ? VP_OK : vp_error_set(err, VP_ENOTFOUND, "no user \"%s\"", name);
}

vp_status idx_user_update(idx_users *u, const idx_user *user, vp_error *err)
{
    sqlite3_stmt *s = u->st[U_USER_UPDATE];
    sqlite3_bind_int64(s, 1, user->id);
    bind_text(s, 2, user->role);
    bind_text(s, 3, user->pw_hash);
    sqlite3_bind_int64(s, 4, user->updated_ms);
    sqlite3_bind_int(s, 5, user->disabled);
    if (sqlite3_step(s) != SQLITE_DONE) {
        int ext = sqlite3_extended_errcode(u->db);
        done(s);
        if (ext == SQLITE_CONSTRAINT_CHECK)
            return vp_error_set(err, VP_EINVAL, "unknown role \"%s\"", user->role);
        return idx__db_error(u->x, err, "update user");
    }
    done(s);
    if (sqlite3_changes(u->db) == 0)
        return vp_error_set(err, VP_ENOTFOUND, "no user \"%s\"", user->name);
    return VP_OK;
}

vp_status idx_user_remove(idx_users *u, const char *name, vp_error *err)
{
    sqlite3_stmt *s = u->st[U_USER_REMOVE];
    bind_text(s, 1, name);
    vp_status st = step_done(u, s, err, "remove user");
    if (st == VP_OK && sqlite3_changes(u->db) == 0)
        st = vp_error_set(err, VP_ENOTFOUND, "no user \"%s\"", name);
    return st;
}

vp_status idx_user_count(idx_users *u, uint64_t *n, vp_error *err)
{
    sqlite3_stmt *s = u->st[U_USER_COUNT];
    if (sqlite3_step(s) != SQLITE_ROW)
        return fail(u, s, err, "count users");
    *n = (uint64_t)sqlite3_column_int64(s, 0);
    done(s);
    return VP_OK;
}

vp_status idx_user_each(idx_users *u, idx_user_fn fn, void *ctx, vp_error *err)
{
    sqlite3_stmt *s = u->st[U_USER_EACH];
    vp_status st = VP_OK;
    int rc = SQLITE_DONE;
    idx_user user;
    while (st == VP_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        user_row(s, &user);
        st = fn(ctx, &user);
    }
    if (st == VP_OK && rc != SQLITE_DONE)
        return fail(u, s, err, "list users");
    done(s);
    return st;
}

/* ---------------------------------------------------------------------------------------- */
/* API tokens                                                                               */

vp_status idx_token_add(idx_users *u, idx_token *t, const uint8_t hash[IDX_CRED_HASH],
                        vp_error *err)
{
    sqlite3_stmt *s = u->st[U_TOKEN_ADD];
    sqlite3_bind_int64(s, 1, t->user_id);
    bind_hash(s, 2, hash);
    bind_text(s, 3, t->label);
    sqlite3_bind_int64(s, 4, t->created_ms);
    vp_status st = step_done(u, s, err, "add token");
    if (st == VP_OK)
        t->id = sqlite3_last_insert_rowid(u->db);
    return st;
}

vp_status idx_token_find(idx_users *u, const uint8_t hash[IDX_CRED_HASH], idx_token *t,
                         idx_user *user, vp_error *err)
{
    sqlite3_stmt *s = u->st[U_TOKEN_FIND];
    bind_hash(s, 1, hash);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        user_row(s, user);
        memset(t, 0, sizeof *t);
        t->user_id = user->id;
        t->id = sqlite3_column_int64(s, 7);
        text(t->label, sizeof t->label, s, 8);
        t->created_ms = sqlite3_column_int64(s, 9);
        t->used_ms = sqlite3_column_int64(s, 10);
    } else if (rc != SQLITE_DONE) {
        return fail(u, s, err, "read token");
    }
    done(s);
    return rc == SQLITE_ROW ? VP_OK : vp_error_set(err, VP_ENOTFOUND, "unknown token");
}

vp_status idx_token_touch(idx_users *u, int64_t id, int64_t used_ms, vp_error *err)
{
    sqlite3_stmt *s = u->st[U_TOKEN_TOUCH];
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int64(s, 2, used_ms);
    return step_done(u, s, err, "token use");
}

vp_status idx_token_revoke(idx_users *u, int64_t user_id, int64_t id, const char *label,
                           uint64_t *n, vp_error *err)
{
    sqlite3_stmt *s = u->st[U_TOKEN_REVOKE];
    sqlite3_bind_int64(s, 1, user_id);
    sqlite3_bind_int64(s, 2, id);
    if (id <= 0 && label)
        bind_text(s, 3, label);
    vp_status st = step_done(u, s, err, "revoke token");
    uint64_t changed = st == VP_OK ? (uint64_t)sqlite3_changes(u->db) : 0;
    if (n)
        *n = changed;
    if (st == VP_OK && !changed)
        st = vp_error_set(err, VP_ENOTFOUND, "no such token");
    return st;
}

vp_status idx_token_each(idx_users *u, int64_t user_id, idx_token_fn fn, void *ctx, vp_error *err)
{
    sqlite3_stmt *s = u->st[U_TOKEN_EACH];
    sqlite3_bind_int64(s, 1, user_id);
    vp_status st = VP_OK;
    int rc = SQLITE_DONE;
    idx_token t;
    while (st == VP_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        memset(&t, 0, sizeof t);
        t.id = sqlite3_column_int64(s, 0);
        t.user_id = sqlite3_column_int64(s, 1);
        text(t.label, sizeof t.label, s, 2);
        t.created_ms = sqlite3_column_int64(s, 3);
        t.used_ms = sqlite3_column_int64(s, 4);
        st = fn(ctx, &t);
    }
    if (st == VP_OK && rc != SQLITE_DONE)
        return fail(u, s, err, "list tokens");
    done(s);
    return st;
}

/* ---------------------------------------------------------------------------------------- */
/* Sessions                                                                                 */

vp_status idx_session_add(idx_users *u, idx_session *ses, const uint8_t hash[IDX_CRED_HASH],
                          vp_error *err)
{
    sqlite3_stmt *s = u->st[U_SESSION_ADD];
    bind_hash(s, 1, hash);
    sqlite3_bind_int64(s, 2, ses->user_id);
    sqlite3_bind_int64(s, 3, ses->created_ms);
    sqlite3_bind_int64(s, 4, ses->seen_ms);
    sqlite3_bind_int64(s, 5, ses->expires_ms);
    bind_text(s, 6, ses->client);
    bind_text(s, 7, ses->user_agent);
    vp_status st = step_done(u, s, err, "add session");
    if (st == VP_OK)
        ses->id = sqlite3_last_insert_rowid(u->db);
    return st;
}

vp_status idx_session_find(idx_users *u, const uint8_t hash[IDX_CRED_HASH], idx_session *ses,
                           idx_user *user, vp_error *err)
{
    sqlite3_stmt *s = u->st[U_SESSION_FIND];
    bind_hash(s, 1, hash);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        user_row(s, user);
        memset(ses, 0, sizeof *ses);
        ses->user_id = user->id;
        ses->id = sqlite3_column_int64(s, 7);
        ses->created_ms = sqlite3_column_int64(s, 8);
        ses->seen_ms = sqlite3_column_int64(s, 9);
        ses->expires_ms = sqlite3_column_int64(s, 10);
        text(ses->client, sizeof ses->client, s, 11);
        text(ses->user_agent, sizeof ses->user_agent, s, 12);
    } else if (rc != SQLITE_DONE) {
        return fail(u, s, err, "read session");
    }
    done(s);
    return rc == SQLITE_ROW ? VP_OK : vp_error_set(err, VP_ENOTFOUND, "unknown session");
}

vp_status idx_session_touch(idx_users *u, int64_t id, int64_t seen_ms, vp_error *err)
{
    sqlite3_stmt *s = u->st[U_SESSION_TOUCH];
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int64(s, 2, seen_ms);
    return step_done(u, s, err, "session use");
}

vp_status idx_session_remove(idx_users *u, const uint8_t hash[IDX_CRED_HASH], vp_error *err)
{
    sqlite3_stmt *s = u->st[U_SESSION_REMOVE];
    bind_hash(s, 1, hash);
    vp_status st = step_done(u, s, err, "remove session");
    if (st == VP_OK && sqlite3_changes(u->db) == 0)
        st = vp_error_set(err, VP_ENOTFOUND, "unknown session");
    return st;
}

vp_status idx_session_remove_user(idx_users *u, int64_t user_id, uint64_t *n, vp_error *err)
{
    sqlite3_stmt *s = u->st[U_SESSION_REMOVE_USER];
    sqlite3_bind_int64(s, 1, user_id);
    vp_status st = step_done(u, s, err, "remove sessions");
    if (n)
        *n = st == VP_OK ? (uint64_t)sqlite3_changes(u->db) : 0;
    return st;
}

vp_status idx_session_purge(idx_users *u, int64_t now_ms, int64_t seen_before_ms, uint64_t *n,
                            vp_error *err)
{
    sqlite3_stmt *s = u->st[U_SESSION_PURGE];
    sqlite3_bind_int64(s, 1, now_ms);
    sqlite3_bind_int64(s, 2, seen_before_ms);
    vp_status st = step_done(u, s, err, "purge sessions");
    if (n)
        *n = st == VP_OK ? (uint64_t)sqlite3_changes(u->db) : 0;
    return st;
}

/* ---------------------------------------------------------------------------------------- */
/* Audit log                                                                                */

vp_status idx_audit_append(idx_users *u, const idx_audit *rows, size_t n, vp_error *err)
{
    if (!n)
        return VP_OK;
    vp_status st = step_done(u, u->st[U_BEGIN], err, "audit");
    if (st)
        return st;
    sqlite3_stmt *s = u->st[U_AUDIT_ADD];
    for (size_t i = 0; i < n && st == VP_OK; i++) {
        const idx_audit *r = &rows[i];
        sqlite3_bind_int64(s, 1, r->time_ms);
        sqlite3_bind_int64(s, 2, r->user_id);
        bind_text(s, 3, r->user);
        bind_text(s, 4, r->action);
        bind_text(s, 5, r->resource_type);
        bind_text(s, 6, r->resource_id);
        bind_text(s, 7, r->client);
        bind_text(s, 8, r->outcome);
        sqlite3_bind_int(s, 9, r->status);
        bind_text(s, 10, r->detail);
        st = step_done(u, s, err, "audit");
    }
    if (st == VP_OK)
        st = step_done(u, u->st[U_COMMIT], err, "audit commit");
    if (st)
        step_done(u, u->st[U_ROLLBACK], NULL, "audit rollback");
    return st;
}

/* The query is written for the filters given (a rare call, prepared each time): a filter
 * spelt "?n IS NULL OR ..." would keep SQLite from using its index. Rowid order is the order
 * rows were appended, and each filter's index holds its entries in rowid order within a key,
 * so newest first with a limit reads about the rows returned. */
vp_status idx_audit_query(idx_users *u, const idx_audit_filter *f, idx_audit_fn fn, void *ctx,
                          vp_error *err)
{
    char q[768];
    size_t n = (size_t)snprintf(q, sizeof q,
                                "SELECT id, time_ms, user_id, user, action, resource_type,"
                                " resource_id, client, outcome, status, detail FROM audit"
                                " WHERE 1");
#define ADD(cond) n += (size_t)snprintf(q + n, sizeof q - n, " AND %s", cond)
    if (f->since_ms)
        ADD("time_ms >= ?1");
    if (f->until_ms)
        ADD("time_ms < ?2");
    if (f->user && *f->user)
        ADD("user = ?3 COLLATE NOCASE");
    if (f->action && *f->action)
        ADD("action = ?4");
    if (f->resource_id && *f->resource_id)
        ADD("resource_id = ?5");
    if (f->before_id > 0)
        ADD("id < ?6");
#undef ADD
    snprintf(q + n, sizeof q - n, " ORDER BY id DESC LIMIT ?7 OFFSET ?8");
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(u->db, q, -1, &s, NULL) != SQLITE_OK)
        return idx__db_error(u->x, err, "audit query");
    sqlite3_bind_int64(s, 1, f->since_ms);
    sqlite3_bind_int64(s, 2, f->until_ms);
    bind_text(s, 3, f->user ? f->user : "");
    bind_text(s, 4, f->action ? f->action : "");
    bind_text(s, 5, f->resource_id ? f->resource_id : "");
    sqlite3_bind_int64(s, 6, f->before_id);
    /* LIMIT -1 is no limit in SQLite; a limit past INT64_MAX is none either. */
    sqlite3_bind_int64(s, 7, f->limit && f->limit <= INT64_MAX ? (int64_t)f->limit : -1);
    sqlite3_bind_int64(s, 8, f->offset <= INT64_MAX ? (int64_t)f->offset : INT64_MAX);
    vp_status st = VP_OK;
    int rc = SQLITE_DONE;
    idx_audit r;
    while (st == VP_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        memset(&r, 0, sizeof r);
        r.id = sqlite3_column_int64(s, 0);
        r.time_ms = sqlite3_column_int64(s, 1);
        r.user_id = sqlite3_column_int64(s, 2);
        text(r.user, sizeof r.user, s, 3);
        text(r.action, sizeof r.action, s, 4);
        text(r.resource_type, sizeof r.resource_type, s, 5);
        text(r.resource_id, sizeof r.resource_id, s, 6);
        text(r.client, sizeof r.client, s, 7);
        text(r.outcome, sizeof r.outcome, s, 8);
        r.status = sqlite3_column_int(s, 9);
        text(r.detail, sizeof r.detail, s, 10);
        st = fn(ctx, &r);
    }
    if (st == VP_OK && rc != SQLITE_DONE)
        st = idx__db_error(u->x, err, "audit query");
    sqlite3_finalize(s);
    return st;
}
