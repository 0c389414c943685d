/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for users, credentials and the audit log (src/app/auth.c over
 * src/idx/sqlite_users.c) against a real index file: password hashing and rehashing, the
 * token and session lifecycle, expiry and throttling under an injected clock, the audit log
 * (batched and immediate appends, filters, paging, append-only), migration 5 from a version-4
 * index, the role table, and the Authorization / Cookie value parsers.
 */
#include <pthread.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "app/auth.h"
#include "harness.h"
#include "idx/idx.h"

static char dir[64];
static int64_t clock_ms = 1700000000000LL; /* the injected clock */

static int64_t fake_now(void *ctx)
{
    (void)ctx;
    return __atomic_load_n(&clock_ms, __ATOMIC_SEQ_CST);
}

/* Cheap hashes for tests: argon2id at its minimum cost. */
static auth_opts test_opts(void)
{
    auth_opts o;
    memset(&o, 0, sizeof o);
    o.now = fake_now;
    o.pw_opslimit = crypto_pwhash_OPSLIMIT_MIN;
    o.pw_memlimit = crypto_pwhash_MEMLIMIT_MIN;
    o.session_idle_ms = 30 * 60 * 1000;
    o.session_lifetime_ms = 12 * 3600 * 1000LL;
    o.audit_flush_ms = 50;
    return o;
}

static auth *open_auth_opts(const auth_opts *o)
{
    auth *a = NULL;
    vp_error err;
    vp_error_clear(&err);
    if (auth_open(dir, o, &a, &err) != VP_OK)
        fprintf(stderr, "auth_open: %s\n", err.msg);
    return a;
}

static auth *setup(const char *name)
{
    t_mkdtemp(dir, sizeof dir, name);
    auth_opts o = test_opts();
    return open_auth_opts(&o);
}

static vp_status login(auth *a, const char *name, const char *pw, const char *addr,
                       char sid[AUTH_CRED_LEN + 1], int64_t *retry)
{
    auth_client c = {addr, "test-agent/1.0"};
    auth_user u;
    vp_error err;
    vp_error_clear(&err);
    return auth_login(a, name, pw, &c, sid, &u, retry, &err);
}

static vp_status check(auth *a, const char *sid, auth_user *u)
{
    return auth_check_session(a, sid, strlen(sid), u, NULL);
}

/* The stored hash of a user, read through a connection of the test's own. */
static void stored_hash(const char *name, char out[IDX_PW_HASH_MAX])
{
    char path[128];
    snprintf(path, sizeof path, "%s/index.db", dir);
    idx *x = NULL;
    idx_users *u = NULL;
    idx_user user;
    out[0] = 0;
    if (idx_open(path, &x, NULL) == VP_OK && idx_users_open(x, &u, NULL) == VP_OK &&
        idx_user_get(u, name, &user, NULL) == VP_OK)
        memcpy(out, user.pw_hash, IDX_PW_HASH_MAX);
    idx_users_close(u);
    idx_close(x);
}

TEST(roles_and_actions)
{
    auth_role r;
    CHECK(auth_role_parse("admin", &r) && r == AUTH_ROLE_ADMIN);
    CHECK(auth_role_parse("Read-Only", &r) && r == AUTH_ROLE_READONLY);
    CHECK(auth_role_parse("VET", &r) && r == AUTH_ROLE_VET);
    CHECK(!auth_role_parse("root", &r));
    CHECK(!auth_role_parse("", &r));
    for (int i = 0; i < AUTH_ROLE_COUNT; i++) {
        CHECK(auth_role_parse(auth_role_name((auth_role)i), &r) && r == (auth_role)i);
        CHECK(auth_can((auth_role)i, AUTH_VIEW)); /* every role views */
    }
    for (int i = 0; i < AUTH_ACTION_COUNT; i++)
        CHECK(auth_can(AUTH_ROLE_ADMIN, (auth_action)i));
    CHECK(!auth_can(AUTH_ROLE_READONLY, AUTH_UPLOAD));
    CHECK(auth_can(AUTH_ROLE_READONLY, AUTH_DOWNLOAD));
    CHECK(!auth_can(AUTH_ROLE_RADIOLOGIST, AUTH_DELETE));
    CHECK(auth_can(AUTH_ROLE_RADIOLOGIST, AUTH_REPORT));
    CHECK(!auth_can(AUTH_ROLE_TECHNICIAN, AUTH_REPORT));
    CHECK(auth_can(AUTH_ROLE_TECHNICIAN, AUTH_WORKLIST));
    CHECK(!auth_can(AUTH_ROLE_VET, AUTH_ADMIN));
    CHECK(!auth_can(AUTH_ROLE_VET, AUTH_DELETE));
    CHECK(!auth_can(AUTH_ROLE_COUNT, AUTH_VIEW));
    CHECK(!auth_can(AUTH_ROLE_ADMIN, AUTH_ACTION_COUNT));
    CHECK_STR(auth_action_name(AUTH_DELETE), "delete");
}

TEST(names_and_passwords)
{
    CHECK(auth_name_valid("dr.smith@clinic"));
    CHECK(auth_name_valid("a"));
    CHECK(!auth_name_valid(""));
    CHECK(!auth_name_valid("two words"));
    CHECK(!auth_name_valid("tab\there"));
    CHECK(!auth_name_valid("caf\xc3\xa9"));
    char long_name[80];
    memset(long_name, 'x', sizeof long_name);
    long_name[64] = 0;
    CHECK(auth_name_valid(long_name));
    long_name[65] = 0;
    long_name[64] = 'x';
    CHECK(!auth_name_valid(long_name));
    CHECK(auth_password_problem("") != NULL);
    CHECK(auth_password_problem("1234567") != NULL);
    CHECK(auth_password_problem("12345678") == NULL);
}

TEST(user_lifecycle)
{
    auth *a = setup("auth-users");
    CHECK(a != NULL);
    if (!a)
        return;
    vp_error err;
    vp_error_clear(&err);
    CHECK_OK(auth_user_add(a, "Alice", AUTH_ROLE_VET, "correct horse", &err));
    vp_error_clear(&err);
    CHECK_INT(auth_user_add(a, "alice", AUTH_ROLE_ADMIN, "another one", &err), VP_ECONFLICT);
    CHECK(strstr(err.msg, "exists") != NULL);
    CHECK_INT(auth_user_add(a, "bob", AUTH_ROLE_VET, "short", NULL), VP_EINVAL);
    CHECK_INT(auth_user_add(a, "bob", AUTH_ROLE_VET, "", NULL), VP_EINVAL);
    CHECK_INT(auth_user_add(a, "bob", AUTH_ROLE_VET, "BOB_BOB_", NULL), VP_OK);
    CHECK_INT(auth_user_add(a, "carol", AUTH_ROLE_VET, "CAROL", NULL), VP_EINVAL);
    CHECK_INT(auth_user_add(a, "dave", AUTH_ROLE_VET, "Dave", NULL), VP_EINVAL);
    CHECK_INT(auth_user_add(a, "eve", AUTH_ROLE_VET, "eveEVE", NULL), VP_EINVAL);
    CHECK_INT(auth_user_add(a, "frank", AUTH_ROLE_VET, "frank", NULL), VP_EINVAL);
    CHECK_INT(auth_user_add(a, "gina", AUTH_ROLE_VET, "Gina", NULL), VP_EINVAL);
    CHECK_INT(auth_user_add(a, "has space", AUTH_ROLE_VET, "long enough", NULL), VP_EINVAL);
    CHECK_INT(auth_user_add(a, "hank", AUTH_ROLE_COUNT, "long enough", NULL), VP_EINVAL);

    auth_user_info info;
    CHECK_OK(auth_user_get(a, "ALICE", &info, NULL));
    CHECK_STR(info.name, "Alice");
    CHECK_INT(info.role, AUTH_ROLE_VET);
    CHECK_INT(info.created_ms, clock_ms);
    CHECK(!info.disabled);

    char h1[IDX_PW_HASH_MAX], h2[IDX_PW_HASH_MAX];
    stored_hash("alice", h1);
    CHECK(strncmp(h1, "$argon2id$", 10) == 0);
    CHECK(strstr(h1, "correct") == NULL);
    CHECK_INT(crypto_pwhash_str_verify(h1, "correct horse", 13), 0);
    CHECK(crypto_pwhash_str_verify(h1, "correct horsE", 13) != 0);

    clock_ms += 1000;
    CHECK_OK(auth_user_passwd(a, "alice", "battery staple", NULL));
    CHECK_INT(auth_user_passwd(a, "nobody", "battery staple", NULL), VP_ENOTFOUND);
    CHECK_INT(auth_user_passwd(a, "alice", "1", NULL), VP_EINVAL);
    stored_hash("alice", h2);
    CHECK(strcmp(h1, h2) != 0);
    CHECK_OK(auth_user_get(a, "alice", &info, NULL));
    CHECK_INT(info.updated_ms, clock_ms);

    auth_role admin = AUTH_ROLE_ADMIN;
    bool yes = true;
    CHECK_OK(auth_user_set(a, "alice", &admin, NULL, NULL));
    CHECK_OK(auth_user_set(a, "bob", NULL, &yes, NULL));
    CHECK_INT(auth_user_set(a, "nobody", &admin, NULL, NULL), VP_ENOTFOUND);
    CHECK_OK(auth_user_get(a, "alice", &info, NULL));
    CHECK_INT(info.role, AUTH_ROLE_ADMIN);
    CHECK_OK(auth_user_get(a, "bob", &info, NULL));
    CHECK(info.disabled);

    CHECK_OK(auth_user_remove(a, "BOB", NULL));
    CHECK_INT(auth_user_remove(a, "bob", NULL), VP_ENOTFOUND);
    CHECK_INT(auth_user_get(a, "bob", &info, NULL), VP_ENOTFOUND);
    auth_close(a);
    t_rmtree(dir);
}

TEST(login_and_sessions)
{
    auth *a = setup("auth-sessions");
    if (!a)
        return;
    CHECK_OK(auth_user_add(a, "rad", AUTH_ROLE_RADIOLOGIST, "s3cret-pass", NULL));
    char sid[AUTH_CRED_LEN + 1], sid2[AUTH_CRED_LEN + 1];
    vp_error e1, e2;
    auth_user u;
    auth_client c = {"10.0.0.1", "curl/8"};
    vp_error_clear(&e1);
    CHECK_OK(auth_login(a, "RAD", "s3cret-pass", &c, sid, &u, NULL, &e1));
    CHECK_INT(strlen(sid), AUTH_CRED_LEN);
    CHECK(strncmp(sid, AUTH_SESSION_PREFIX, 4) == 0);
    CHECK_STR(u.name, "rad");
    CHECK_INT(u.role, AUTH_ROLE_RADIOLOGIST);

    /* a wrong password and an unknown user fail alike */
    vp_error_clear(&e1);
    vp_error_clear(&e2);
    CHECK_INT(auth_login(a, "rad", "wrong-pass", &c, sid2, &u, NULL, &e1), VP_ENOTFOUND);
    CHECK_INT(auth_login(a, "nosuchuser", "wrong-pass", &c, sid2, &u, NULL, &e2), VP_ENOTFOUND);
    CHECK_STR(e1.msg, e2.msg);
    CHECK_STR(sid2, "");
    CHECK_INT(u.id, 0);
    CHECK_INT(login(a, "", "", "10.0.0.1", sid2, NULL), VP_ENOTFOUND);
    CHECK_INT(login(a, "bad name", "x", "10.0.0.1", sid2, NULL), VP_ENOTFOUND);

    /* the session */
    CHECK_OK(check(a, sid, &u));
    CHECK_STR(u.name, "rad");
    CHECK_INT(auth_check_session(a, sid, AUTH_CRED_LEN - 1, &u, NULL), VP_ENOTFOUND);
    char other[AUTH_CRED_LEN + 1];
    memcpy(other, sid, sizeof other);
    other[10] = other[10] == 'A' ? 'B' : 'A';
    CHECK_INT(check(a, other, &u), VP_ENOTFOUND);
    CHECK_INT(check(a, "garbage", &u), VP_ENOTFOUND);
    /* a session id is not an API token */
    CHECK_INT(auth_check_bearer(a, sid, strlen(sid), &u, NULL), VP_ENOTFOUND);

    /* idle timeout: used every 20 minutes it lives; 30 minutes unused it ends */
    for (int i = 0; i < 3; i++) {
        clock_ms += 20 * 60 * 1000;
        CHECK_OK(check(a, sid, &u));
    }
    clock_ms += 30 * 60 * 1000;
    CHECK_INT(check(a, sid, &u), VP_ENOTFOUND);
    CHECK_INT(check(a, sid, &u), VP_ENOTFOUND);

    /* absolute lifetime: 12 hours even when used all along */
    CHECK_OK(login(a, "rad", "s3cret-pass", "10.0.0.1", sid, NULL));
    for (int i = 0; i < 35; i++) {
        clock_ms += 20 * 60 * 1000; /* 11 h 40 min */
        CHECK_OK(check(a, sid, &u));
    }
    clock_ms += 20 * 60 * 1000;
    CHECK_INT(check(a, sid, &u), VP_ENOTFOUND);

    /* logout */
    CHECK_OK(login(a, "rad", "s3cret-pass", "10.0.0.1", sid, NULL));
    CHECK_OK(auth_logout(a, sid, strlen(sid), &c, NULL));
    CHECK_INT(check(a, sid, &u), VP_ENOTFOUND);
    CHECK_INT(auth_logout(a, sid, strlen(sid), &c, NULL), VP_ENOTFOUND);

    /* a new password, a disabled user, a removed user: their sessions end */
    CHECK_OK(login(a, "rad", "s3cret-pass", "10.0.0.1", sid, NULL));
    CHECK_OK(auth_user_passwd(a, "rad", "new-s3cret", NULL));
    CHECK_INT(check(a, sid, &u), VP_ENOTFOUND);
    CHECK_INT(login(a, "rad", "s3cret-pass", "10.0.0.1", sid, NULL), VP_ENOTFOUND);
    CHECK_OK(login(a, "rad", "new-s3cret", "10.0.0.1", sid, NULL));
    bool yes = true, no = false;
    CHECK_OK(auth_user_set(a, "rad", NULL, &yes, NULL));
    CHECK_INT(check(a, sid, &u), VP_ENOTFOUND);
    vp_error_clear(&e2);
    CHECK_INT(auth_login(a, "rad", "new-s3cret", &c, sid, &u, NULL, &e2), VP_ENOTFOUND);
    CHECK_STR(e2.msg, e1.msg); /* disabled: the same failure as a wrong password */
    CHECK_OK(auth_user_set(a, "rad", NULL, &no, NULL));
    CHECK_OK(login(a, "rad", "new-s3cret", "10.0.0.1", sid, NULL));
    CHECK_OK(auth_user_remove(a, "rad", NULL));
    CHECK_INT(check(a, sid, &u), VP_ENOTFOUND);
    auth_close(a);
    t_rmtree(dir);
}

TEST(purge)
{
    auth *a = setup("auth-purge");
    if (!a)
        return;
    CHECK_OK(auth_user_add(a, "vet1", AUTH_ROLE_VET, "vet1-password", NULL));
    char sid[AUTH_CRED_LEN + 1], keep[AUTH_CRED_LEN + 1];
    for (int i = 0; i < 3; i++)
        CHECK_OK(login(a, "vet1", "vet1-password", "10.0.0.2", sid, NULL));
    clock_ms += 25 * 60 * 1000;
    CHECK_OK(login(a, "vet1", "vet1-password", "10.0.0.2", keep, NULL));
    clock_ms += 10 * 60 * 1000; /* the first three are idle past 30 minutes */
    uint64_t n = 0;
    CHECK_OK(auth_purge(a, &n, NULL));
    CHECK_INT(n, 3);
    auth_user u;
    CHECK_OK(check(a, keep, &u));
    CHECK_OK(auth_purge(a, &n, NULL));
    CHECK_INT(n, 0);
    auth_close(a);
    t_rmtree(dir);
}

TEST(tokens)
{
    auth *a = setup("auth-tokens");
    if (!a)
        return;
    CHECK_OK(auth_user_add(a, "pms", AUTH_ROLE_TECHNICIAN, "pms-password", NULL));
    char t1[AUTH_CRED_LEN + 1], t2[AUTH_CRED_LEN + 1], t3[AUTH_CRED_LEN + 1];
    int64_t id1 = 0, id2 = 0;
    CHECK_OK(auth_token_create(a, "pms", "practice system", t1, &id1, NULL));
    CHECK_OK(auth_token_create(a, "PMS", NULL, t2, &id2, NULL));
    CHECK_OK(auth_token_create(a, "pms", "practice system", t3, NULL, NULL));
    CHECK_INT(auth_token_create(a, "nobody", NULL, t3, NULL, NULL), VP_ENOTFOUND);
    CHECK_STR(t3, "");
    CHECK_OK(auth_token_create(a, "pms", "practice system", t3, NULL, NULL));
    CHECK(strncmp(t1, AUTH_TOKEN_PREFIX, 4) == 0);
    CHECK_INT(strlen(t1), AUTH_CRED_LEN);
    CHECK(strcmp(t1, t2) != 0);
    CHECK(id2 > id1);
    auth_user u;
    CHECK_OK(auth_check_bearer(a, t1, strlen(t1), &u, NULL));
    CHECK_STR(u.name, "pms");
    CHECK_INT(u.role, AUTH_ROLE_TECHNICIAN);
    CHECK_OK(auth_check_bearer(a, t2, strlen(t2), &u, NULL));
    CHECK_INT(auth_check_bearer(a, t1, strlen(t1) - 1, &u, NULL), VP_ENOTFOUND);
    CHECK_INT(check(a, t1, &u), VP_ENOTFOUND); /* a token is not a session id */
    char forged[AUTH_CRED_LEN + 1];
    memcpy(forged, t1, sizeof forged);
    forged[20] = forged[20] == 'x' ? 'y' : 'x';
    CHECK_INT(auth_check_bearer(a, forged, strlen(forged), &u, NULL), VP_ENOTFOUND);

    /* nothing of the secret is stored: the table holds 32-byte digests */
    char path[128];
    snprintf(path, sizeof path, "%s/index.db", dir);
    sqlite3 *db;
    sqlite3_stmt *s;
    CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
    CHECK_INT(
        sqlite3_prepare_v2(db, "SELECT length(hash), instr(hash, ?1) FROM api_token", -1, &s, NULL),
        SQLITE_OK);
    sqlite3_bind_text(s, 1, t1 + 4, 16, SQLITE_STATIC);
    int rows = 0;
    while (sqlite3_step(s) == SQLITE_ROW) {
        CHECK_INT(sqlite3_column_int(s, 0), 32);
        CHECK_INT(sqlite3_column_int(s, 1), 0);
        rows++;
    }
    CHECK_INT(rows, 4);
    sqlite3_finalize(s);
    sqlite3_close(db);

    /* revoke by id, by label, all */
    uint64_t n = 0;
    CHECK_OK(auth_token_revoke(a, "pms", id1, NULL, &n, NULL));
    CHECK_INT(n, 1);
    CHECK_INT(auth_check_bearer(a, t1, strlen(t1), &u, NULL), VP_ENOTFOUND);
    CHECK_OK(auth_check_bearer(a, t2, strlen(t2), &u, NULL));
    CHECK_INT(auth_token_revoke(a, "pms", id1, NULL, &n, NULL), VP_ENOTFOUND);
    CHECK_OK(auth_token_revoke(a, "pms", 0, "practice system", &n, NULL));
    CHECK_INT(n, 2);
    CHECK_INT(auth_check_bearer(a, t3, strlen(t3), &u, NULL), VP_ENOTFOUND);
    CHECK_OK(auth_check_bearer(a, t2, strlen(t2), &u, NULL));
    /* a disabled user's tokens do not work, and work again when enabled */
    bool yes = true, no = false;
    CHECK_OK(auth_user_set(a, "pms", NULL, &yes, NULL));
    CHECK_INT(auth_check_bearer(a, t2, strlen(t2), &u, NULL), VP_ENOTFOUND);
    CHECK_OK(auth_user_set(a, "pms", NULL, &no, NULL));
    CHECK_OK(auth_check_bearer(a, t2, strlen(t2), &u, NULL));
    CHECK_OK(auth_token_revoke(a, "pms", 0, NULL, &n, NULL));
    CHECK_INT(n, 1);
    CHECK_INT(auth_check_bearer(a, t2, strlen(t2), &u, NULL), VP_ENOTFOUND);
    CHECK_INT(auth_token_revoke(a, "nobody", 0, NULL, &n, NULL), VP_ENOTFOUND);
    /* removing the user removes its tokens */
    CHECK_OK(auth_token_create(a, "pms", NULL, t1, NULL, NULL));
    CHECK_OK(auth_user_remove(a, "pms", NULL));
    CHECK_OK(auth_user_add(a, "pms", AUTH_ROLE_TECHNICIAN, "pms-password", NULL));
    CHECK_INT(auth_check_bearer(a, t1, strlen(t1), &u, NULL), VP_ENOTFOUND);
    auth_close(a);
    t_rmtree(dir);
}

static vp_status token_used(void *ctx, const idx_token *t)
{
    *(int64_t *)ctx = t->used_ms;
    return VP_OK;
}

TEST(token_last_use)
{
    auth *a = setup("auth-token-use");
    if (!a)
        return;
    CHECK_OK(auth_user_add(a, "pms", AUTH_ROLE_TECHNICIAN, "pms-password", NULL));
    char t[AUTH_CRED_LEN + 1];
    CHECK_OK(auth_token_create(a, "pms", "x", t, NULL, NULL));
    int64_t used = -1;
    CHECK_OK(auth_token_each(a, "pms", token_used, &used, NULL));
    CHECK_INT(used, 0);
    auth_user u;
    int64_t first = clock_ms;
    CHECK_OK(auth_check_bearer(a, t, strlen(t), &u, NULL));
    CHECK_OK(auth_token_each(a, "pms", token_used, &used, NULL));
    CHECK_INT(used, first);
    clock_ms += 1000; /* within the minute: not written again */
    CHECK_OK(auth_check_bearer(a, t, strlen(t), &u, NULL));
    CHECK_OK(auth_token_each(a, "pms", token_used, &used, NULL));
    CHECK_INT(used, first);
    clock_ms += 60 * 1000;
    CHECK_OK(auth_check_bearer(a, t, strlen(t), &u, NULL));
    CHECK_OK(auth_token_each(a, "pms", token_used, &used, NULL));
    CHECK_INT(used, clock_ms);
    auth_close(a);
    t_rmtree(dir);
}

TEST(throttling)
{
    auth *a = setup("auth-throttle");
    if (!a)
        return;
    CHECK_OK(auth_user_add(a, "vet", AUTH_ROLE_VET, "the-right-one", NULL));
    char sid[AUTH_CRED_LEN + 1];
    int64_t retry = 0;
    /* per name: five failures are free, then 1 s, 2 s, 4 s ... */
    for (int i = 0; i < 5; i++)
        CHECK_INT(login(a, "vet", "wrong-one", "10.0.0.1", sid, &retry), VP_ENOTFOUND);
    CHECK_INT(retry, 0);
    CHECK_OK(login(a, "vet", "the-right-one", "10.0.0.9", sid, &retry)); /* clears the name */
    for (int i = 0; i < 6; i++)
        CHECK_INT(login(a, "vet", "wrong-one", "10.0.0.1", sid, &retry), VP_ENOTFOUND);
    /* locked for 1 s: even the right password is not checked, from any address, any case */
    CHECK_INT(login(a, "VET", "the-right-one", "10.0.0.7", sid, &retry), VP_EAGAIN);
    CHECK_INT(retry, 1000);
    CHECK_STR(sid, "");
    clock_ms += 1000;
    CHECK_INT(login(a, "vet", "wrong-one", "10.0.0.1", sid, &retry), VP_ENOTFOUND);
    CHECK_INT(login(a, "vet", "the-right-one", "10.0.0.1", sid, &retry), VP_EAGAIN);
    CHECK_INT(retry, 2000);
    clock_ms += 2000;
    CHECK_INT(login(a, "vet", "wrong-one", "10.0.0.1", sid, &retry), VP_ENOTFOUND);
    CHECK_INT(login(a, "vet", "x", "10.0.0.1", sid, &retry), VP_EAGAIN);
    CHECK_INT(retry, 4000);
    /* unknown names are throttled the same way (nothing tells them apart) */
    for (int i = 0; i < 6; i++)
        CHECK_INT(login(a, "ghost", "wrong-one", "10.0.1.1", sid, &retry), VP_ENOTFOUND);
    CHECK_INT(login(a, "ghost", "wrong-one", "10.0.1.1", sid, &retry), VP_EAGAIN);
    /* capped at 15 minutes; forgotten after an hour without failures */
    for (int i = 0; i < 30; i++) {
        clock_ms += 16 * 60 * 1000;
        login(a, "vet", "wrong-one", "10.0.0.1", sid, &retry);
    }
    CHECK_INT(login(a, "vet", "x", "10.0.0.1", sid, &retry), VP_EAGAIN);
    CHECK_INT(retry, 15 * 60 * 1000);
    clock_ms += 61 * 60 * 1000;
    CHECK_OK(login(a, "vet", "the-right-one", "10.0.0.1", sid, &retry));

    /* per address: twenty failures over any names are free, then the address waits */
    clock_ms += 2 * 3600 * 1000;
    char name[32], addr[32];
    for (int i = 0; i < 21; i++) {
        snprintf(name, sizeof name, "user%d", i);
        CHECK_INT(login(a, name, "wrong-one", "192.0.2.1", sid, &retry), VP_ENOTFOUND);
    }
    CHECK_INT(login(a, "vet", "the-right-one", "192.0.2.1", sid, &retry), VP_EAGAIN);
    CHECK_INT(retry, 1000);
    CHECK_OK(login(a, "vet", "the-right-one", "192.0.2.2", sid, &retry)); /* another address */
    /* a flood of new names and addresses (more than the table holds) does not erase a lock */
    for (int i = 0; i < 3000; i++) {
        snprintf(name, sizeof name, "flood%d", i);
        snprintf(addr, sizeof addr, "198.51.%d.%d", i / 250, i % 250);
        CHECK_INT(login(a, name, "x", addr, sid, &retry), VP_ENOTFOUND);
    }
    CHECK_INT(login(a, "vet", "the-right-one", "192.0.2.1", sid, &retry), VP_EAGAIN);
    auth_close(a);
    t_rmtree(dir);
}

TEST(rehash_when_cost_changes)
{
    auth *a = setup("auth-rehash");
    if (!a)
        return;
    CHECK_OK(auth_user_add(a, "old", AUTH_ROLE_VET, "old-password", NULL));
    auth_close(a);
    char before[IDX_PW_HASH_MAX], after[IDX_PW_HASH_MAX];
    stored_hash("old", before);
    auth_opts o = test_opts();
    o.pw_opslimit = crypto_pwhash_OPSLIMIT_MIN + 1;
    a = open_auth_opts(&o);
    if (!a)
        return;
    CHECK(crypto_pwhash_str_needs_rehash(before, o.pw_opslimit, o.pw_memlimit) != 0);
    char sid[AUTH_CRED_LEN + 1];
    CHECK_INT(login(a, "old", "wrong-password", "10.0.0.1", sid, NULL), VP_ENOTFOUND);
    stored_hash("old", after);
    CHECK_STR(after, before); /* no rehash without the right password */
    CHECK_OK(login(a, "old", "old-password", "10.0.0.1", sid, NULL));
    stored_hash("old", after);
    CHECK(strcmp(after, before) != 0);
    CHECK_INT(crypto_pwhash_str_needs_rehash(after, o.pw_opslimit, o.pw_memlimit), 0);
    CHECK_INT(crypto_pwhash_str_verify(after, "old-password", 12), 0);
    CHECK_OK(login(a, "old", "old-password", "10.0.0.1", sid, NULL));
    stored_hash("old", before);
    CHECK_STR(before, after); /* done once */
    auth_close(a);
    t_rmtree(dir);
}

TEST(default_cost_is_interactive)
{
    t_mkdtemp(dir, sizeof dir, "auth-cost");
    auth_opts o = test_opts();
    o.pw_opslimit = 0;
    o.pw_memlimit = 0;
    auth *a = open_auth_opts(&o);
    if (!a)
        return;
    CHECK_OK(auth_user_add(a, "u", AUTH_ROLE_VET, "password-1", NULL));
    char h[IDX_PW_HASH_MAX];
    stored_hash("u", h);
    CHECK_INT(crypto_pwhash_str_needs_rehash(h, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                                             crypto_pwhash_MEMLIMIT_INTERACTIVE),
              0);
    CHECK(strncmp(h, "$argon2id$v=19$m=65536,t=2,p=1$", 31) == 0);
    auth_close(a);
    t_rmtree(dir);
}

TEST(first_admin)
{
    auth *a = setup("auth-first");
    if (!a)
        return;
    char pw[AUTH_PASSWORD_GEN_LEN + 1];
    bool created = false;
    CHECK_OK(auth_first_admin(a, pw, &created, NULL));
    CHECK(created);
    CHECK_INT(strlen(pw), AUTH_PASSWORD_GEN_LEN);
    char sid[AUTH_CRED_LEN + 1];
    auth_user u;
    auth_client c = {"127.0.0.1", NULL};
    CHECK_OK(auth_login(a, "admin", pw, &c, sid, &u, NULL, NULL));
    CHECK_INT(u.role, AUTH_ROLE_ADMIN);
    CHECK_OK(auth_first_admin(a, pw, &created, NULL));
    CHECK(!created);
    CHECK_STR(pw, "");
    auth_close(a);
    t_rmtree(dir);
}

/* ---------------------------------------------------------------------------------------- */
/* Audit log                                                                                */

struct rows {
    int n;
    idx_audit r[64];
};

static vp_status collect(void *ctx, const idx_audit *r)
{
    struct rows *rs = ctx;
    if (rs->n < 64)
        rs->r[rs->n] = *r;
    rs->n++;
    return VP_OK;
}

static idx_audit row(const char *user, const char *action, const char *res)
{
    idx_audit r;
    memset(&r, 0, sizeof r);
    snprintf(r.user, sizeof r.user, "%s", user);
    snprintf(r.action, sizeof r.action, "%s", action);
    snprintf(r.resource_type, sizeof r.resource_type, "study");
    snprintf(r.resource_id, sizeof r.resource_id, "%s", res);
    snprintf(r.client, sizeof r.client, "10.1.1.1");
    snprintf(r.outcome, sizeof r.outcome, "success");
    r.status = 200;
    return r;
}

static int query(auth *a, idx_audit_filter f, struct rows *rs)
{
    memset(rs, 0, sizeof *rs);
    CHECK_OK(auth_audit_query(a, &f, collect, rs, NULL));
    return rs->n;
}

TEST(audit_append_and_query)
{
    auth *a = setup("auth-audit");
    if (!a)
        return;
    int64_t t0 = clock_ms;
    for (int i = 0; i < 10; i++) {
        idx_audit r = row(i % 2 ? "alice" : "bob", i % 3 ? "view" : "download", "1.2.3");
        if (i == 9)
            snprintf(r.resource_id, sizeof r.resource_id, "1.2.4");
        r.time_ms = t0 + i * 1000;
        CHECK_OK(auth_audit(a, &r, NULL));
    }
    idx_audit del = row("alice", "delete", "1.2.4");
    del.time_ms = t0 + 10000;
    snprintf(del.detail, sizeof del.detail, "tab\there");
    CHECK_OK(auth_audit_now(a, &del, NULL)); /* commits the queue before it, in order */

    struct rows rs;
    idx_audit_filter f;
    memset(&f, 0, sizeof f);
    CHECK_INT(query(a, f, &rs), 11);
    CHECK_STR(rs.r[0].action, "delete"); /* newest first */
    CHECK_STR(rs.r[0].detail, "tab\there");
    CHECK_INT(rs.r[0].status, 200);
    CHECK_INT(rs.r[10].time_ms, t0);
    for (int i = 1; i < 11; i++)
        CHECK(rs.r[i].id < rs.r[i - 1].id);
    f.user = "ALICE";
    CHECK_INT(query(a, f, &rs), 6);
    f.action = "view";
    CHECK_INT(query(a, f, &rs), 3); /* alice (odd i) viewing (i % 3 != 0): 1, 5, 7 */
    f.user = NULL;
    f.action = NULL;
    f.resource_id = "1.2.4";
    CHECK_INT(query(a, f, &rs), 2);
    f.resource_id = NULL;
    f.since_ms = t0 + 3000;
    f.until_ms = t0 + 6000;
    CHECK_INT(query(a, f, &rs), 3);
    CHECK_INT(rs.r[0].time_ms, t0 + 5000);
    /* paging: by count and by key */
    memset(&f, 0, sizeof f);
    f.limit = 4;
    CHECK_INT(query(a, f, &rs), 4);
    int64_t last = rs.r[3].id;
    f.offset = 4;
    CHECK_INT(query(a, f, &rs), 4);
    CHECK_INT(rs.r[0].id, last - 1);
    f.offset = 0;
    f.before_id = last;
    CHECK_INT(query(a, f, &rs), 4);
    CHECK_INT(rs.r[0].id, last - 1);
    f.offset = 100;
    CHECK_INT(query(a, f, &rs), 0);

    /* append-only */
    char path[128];
    snprintf(path, sizeof path, "%s/index.db", dir);
    sqlite3 *db;
    CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
    CHECK(sqlite3_exec(db, "UPDATE audit SET user = 'x'", NULL, NULL, NULL) != SQLITE_OK);
    CHECK(strstr(sqlite3_errmsg(db), "append-only") != NULL);
    CHECK(sqlite3_exec(db, "DELETE FROM audit", NULL, NULL, NULL) != SQLITE_OK);
    sqlite3_close(db);
    auth_close(a);
    t_rmtree(dir);
}

TEST(audit_batches_reach_the_index)
{
    auth *a = setup("auth-audit-batch");
    if (!a)
        return;
    /* more rows than the backlog: callers commit themselves rather than drop rows */
    for (int i = 0; i < 6000; i++) {
        idx_audit r = row("u", "view", "1.2.3");
        CHECK_OK(auth_audit(a, &r, NULL));
    }
    /* the flusher commits without being asked (audit_flush_ms is 50 ms here) */
    struct rows rs;
    idx_audit_filter f;
    memset(&f, 0, sizeof f);
    char path[128];
    snprintf(path, sizeof path, "%s/index.db", dir);
    int n = 0;
    for (int i = 0; i < 200 && n < 6000; i++) {
        usleep(20000);
        sqlite3 *db;
        sqlite3_stmt *s;
        if (sqlite3_open(path, &db) == SQLITE_OK &&
            sqlite3_prepare_v2(db, "SELECT count(*) FROM audit", -1, &s, NULL) == SQLITE_OK) {
            if (sqlite3_step(s) == SQLITE_ROW)
                n = sqlite3_column_int(s, 0);
            sqlite3_finalize(s);
        }
        sqlite3_close(db);
    }
    CHECK_INT(n, 6000);
    /* login rows are written by auth itself */
    CHECK_OK(auth_user_add(a, "vet", AUTH_ROLE_VET, "the-right-one", NULL));
    char sid[AUTH_CRED_LEN + 1];
    CHECK_INT(login(a, "vet", "nope-nope", "10.9.9.9", sid, NULL), VP_ENOTFOUND);
    CHECK_OK(login(a, "vet", "the-right-one", "10.9.9.9", sid, NULL));
    auth_close(a); /* commits what is queued */
    auth_opts o = test_opts();
    a = open_auth_opts(&o);
    if (!a)
        return;
    f.action = "login";
    CHECK_INT(query(a, f, &rs), 2);
    CHECK_STR(rs.r[0].outcome, "success");
    CHECK_STR(rs.r[0].user, "vet");
    CHECK_STR(rs.r[0].client, "10.9.9.9");
    CHECK_STR(rs.r[1].outcome, "failure");
    auth_close(a);
    t_rmtree(dir);
}

/* Request threads checking sessions and writing audit rows while another connection writes
 * to the index as the ingest does. */
struct worker {
    auth *a;
    const char *sid;
    int ok;
};

static void *work(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < 300; i++) {
        auth_user u;
        if (auth_check_session(w->a, w->sid, strlen(w->sid), &u, NULL) == VP_OK)
            w->ok++;
        idx_audit r = row(u.name, "view", "1.2.3");
        auth_audit(w->a, &r, NULL);
    }
    return NULL;
}

TEST(concurrent_requests)
{
    auth *a = setup("auth-threads");
    if (!a)
        return;
    CHECK_OK(auth_user_add(a, "vet", AUTH_ROLE_VET, "the-right-one", NULL));
    char sid[AUTH_CRED_LEN + 1];
    CHECK_OK(login(a, "vet", "the-right-one", "10.0.0.1", sid, NULL));
    char path[128];
    snprintf(path, sizeof path, "%s/index.db", dir);
    idx *x = NULL;
    CHECK_OK(idx_open(path, &x, NULL));
    struct worker w[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (struct worker){a, sid, 0};
        pthread_create(&th[i], NULL, work, &w[i]);
    }
    /* the other writer: worklist rows, one transaction each */
    for (int i = 0; x && i < 50; i++) {
        idx_worklist_item it;
        memset(&it, 0, sizeof it);
        snprintf(it.patient_id, sizeof it.patient_id, "P%d", i);
        snprintf(it.modality, sizeof it.modality, "DX");
        CHECK_OK(idx_worklist_add(x, &it, NULL));
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK_INT(w[i].ok, 300);
    }
    idx_close(x);
    struct rows rs;
    idx_audit_filter f;
    memset(&f, 0, sizeof f);
    f.action = "view";
    f.limit = 1;
    query(a, f, &rs);
    f.limit = 0;
    CHECK_INT(query(a, f, &rs), 1200);
    auth_close(a);
    t_rmtree(dir);
}

TEST(migration_from_version_4)
{
    auth *a = setup("auth-migrate");
    if (!a)
        return;
    auth_close(a);
    char path[128];
    snprintf(path, sizeof path, "%s/index.db", dir);
    sqlite3 *db;
    CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
    CHECK_INT(sqlite3_exec(db,
                           "DROP TABLE audit; DROP TABLE session; DROP TABLE api_token;"
                           " DROP TABLE users;"
                           "INSERT INTO patient (patient_id, patient_name) VALUES ('P1', 'Rex');"
                           "PRAGMA user_version = 4",
                           NULL, NULL, NULL),
              SQLITE_OK);
    sqlite3_close(db);
    idx *x = NULL;
    CHECK_OK(idx_open(path, &x, NULL));
    if (!x)
        return;
    CHECK(idx_schema_version(x) >= 5); /* and any later migration */
    idx_counts c;
    CHECK_OK(idx_count(x, &c, NULL));
    CHECK_INT(c.patients, 1); /* the archive survives */
    idx_close(x);
    auth_opts o = test_opts();
    a = open_auth_opts(&o);
    if (!a)
        return;
    CHECK_OK(auth_user_add(a, "vet", AUTH_ROLE_VET, "the-right-one", NULL));
    char sid[AUTH_CRED_LEN + 1];
    CHECK_OK(login(a, "vet", "the-right-one", "10.0.0.1", sid, NULL));
    auth_close(a);
    t_rmtree(dir);
}

/* ---------------------------------------------------------------------------------------- */
/* Header values                                                                            */

static int bearer(const char *v, const char *want)
{
    const char *t;
    size_t n;
    vp_status st = auth_bearer_parse(v, strlen(v), &t, &n);
    if (st == VP_OK && want && (n != strlen(want) || memcmp(t, want, n) != 0)) {
        fprintf(stderr, "bearer(%s) = %.*s, expected %s\n", v, (int)n, t, want);
        return -1;
    }
    return (int)st;
}

TEST(bearer_values)
{
    CHECK_INT(bearer("Bearer vpt_abc", "vpt_abc"), VP_OK);
    CHECK_INT(bearer("bearer   vpt_abc  ", "vpt_abc"), VP_OK);
    CHECK_INT(bearer("  BEARER mF_9.B5f-4.1JqM/+~==", "mF_9.B5f-4.1JqM/+~=="), VP_OK);
    CHECK_INT(bearer("Basic dXNlcjpwdw==", NULL), VP_ENOTFOUND);
    CHECK_INT(bearer("Bearerx abc", NULL), VP_ENOTFOUND);
    CHECK_INT(bearer("Bearer", NULL), VP_EPARSE);
    CHECK_INT(bearer("Bearer ", NULL), VP_EPARSE);
    CHECK_INT(bearer("", NULL), VP_EPARSE);
    CHECK_INT(bearer("Bearer a b", NULL), VP_EPARSE);
    CHECK_INT(bearer("Bearer a=b", NULL), VP_EPARSE);
    CHECK_INT(bearer("Bearer ==", NULL), VP_EPARSE);
    CHECK_INT(bearer("Bearer\tabc", NULL), VP_EPARSE);
    CHECK_INT(bearer("Bea rer abc", NULL), VP_ENOTFOUND);
    CHECK_INT(bearer("Bearer a\"b", NULL), VP_EPARSE);
    const char nul[] = "Bearer ab\0c";
    const char *t;
    size_t n;
    CHECK_INT(auth_bearer_parse(nul, sizeof nul - 1, &t, &n), VP_EPARSE);
}

static int cookie(const char *h, const char *name, const char *want)
{
    const char *v;
    size_t n;
    vp_status st = auth_cookie_find(h, strlen(h), name, &v, &n);
    if (st == VP_OK && (n != strlen(want) || memcmp(v, want, n) != 0)) {
        fprintf(stderr, "cookie(%s) = %.*s, expected %s\n", h, (int)n, v, want);
        return -1;
    }
    return (int)st;
}

TEST(cookie_values)
{
    CHECK_INT(cookie("vetpacs_session=vps_x", "vetpacs_session", "vps_x"), VP_OK);
    CHECK_INT(cookie("a=1; vetpacs_session=vps_x; b=2", "vetpacs_session", "vps_x"), VP_OK);
    CHECK_INT(cookie("a=1;vetpacs_session = \"vps_x\" ;b", "vetpacs_session", "vps_x"), VP_OK);
    CHECK_INT(cookie("vetpacs_session=first; vetpacs_session=second", "vetpacs_session", "first"),
              VP_OK);
    CHECK_INT(cookie("vetpacs_session=", "vetpacs_session", ""), VP_OK);
    CHECK_INT(cookie("xvetpacs_session=1; vetpacs_sessionx=2", "vetpacs_session", ""),
              VP_ENOTFOUND);
    CHECK_INT(cookie("VETPACS_SESSION=1", "vetpacs_session", ""), VP_ENOTFOUND);
    CHECK_INT(cookie("", "vetpacs_session", ""), VP_ENOTFOUND);
    CHECK_INT(cookie(";;;", "vetpacs_session", ""), VP_ENOTFOUND);
    CHECK_INT(cookie("vetpacs_session", "vetpacs_session", ""), VP_ENOTFOUND);
    CHECK_INT(cookie("a=\"", "a", "\""), VP_OK);

    auth *a = setup("auth-cookie");
    if (!a)
        return;
    char buf[256];
    CHECK_OK(auth_session_cookie(a, "vps_abc", true, buf, sizeof buf));
    CHECK_STR(buf, "vetpacs_session=vps_abc; Path=/; Max-Age=43200; HttpOnly; SameSite=Strict; "
                   "Secure");
    CHECK_OK(auth_session_cookie(a, "", false, buf, sizeof buf));
    CHECK_STR(buf, "vetpacs_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict");
    CHECK_INT(auth_session_cookie(a, "vps_abc", true, buf, 20), VP_ELIMIT);
    CHECK_STR(buf, "");
    auth_close(a);
    t_rmtree(dir);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    RUN(roles_and_actions);
    RUN(names_and_passwords);
    RUN(user_lifecycle);
    RUN(login_and_sessions);
    RUN(purge);
    RUN(tokens);
    RUN(token_last_use);
    RUN(throttling);
    RUN(rehash_when_cost_changes);
    RUN(default_cost_is_interactive);
    RUN(first_admin);
    RUN(audit_append_and_query);
    RUN(audit_batches_reach_the_index);
    RUN(concurrent_requests);
    RUN(migration_from_version_4);
    RUN(bearer_values);
    RUN(cookie_values);
    DONE();
}
