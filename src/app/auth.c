/* SPDX-License-Identifier: MIT */
/*
 * Users, credentials and the audit log: the policy over the index's user tables (see auth.h
 * and docs/users.md).
 *
 * Secrets: passwords are kept as argon2id strings (libsodium crypto_pwhash_str_alg, RFC 9106
 * Argon2id), verified with crypto_pwhash_str_verify (its comparison is constant-time) and rehashed
 * at login when the configured cost changed. API tokens and session ids are 32 random bytes
 * (randombytes_buf), kept as the BLAKE2b-256 digest (crypto_generichash, RFC 7693) of the
 * whole credential string, prefix included. A fast unkeyed hash is enough: with 256 bits of
 * entropy nobody inverts or guesses it, and a key (pepper) would live beside the index it is
 * meant to protect. The lookup is an equality probe on the digest's UNIQUE index; its timing
 * could tell an attacker something about the digest of a guess they chose, never about a
 * stored secret.
 *
 * Threads: the server's request threads share one auth. Reads of a request (session, token)
 * go through a read connection of their own (rlock, one lookup at a time: microseconds),
 * writes through a write connection (wlock): in WAL mode the reads never wait for a writer,
 * the ingest's included. Audit rows are queued (qlock) and committed in batches by a flusher
 * thread, so a request never waits for the index's single writer lock to log a view.
 */
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "app/auth.h"

_Static_assert(IDX_PW_HASH_MAX >= crypto_pwhash_STRBYTES, "idx_user.pw_hash holds a hash");
_Static_assert(IDX_CRED_HASH <= crypto_generichash_BYTES_MAX, "a BLAKE2b digest size");

#define CRED_RANDOM 32 /* bytes of randomness in a token or session id */
#define MINUTE_MS (60 * 1000LL)

/* Failed logins (kept in memory: a restart forgets them, which an attacker cannot cause,
 * and counting them in the index would let a password-guessing flood write to it). Counted
 * per user name and per client address in a fixed table (an attacker's flood of names cannot
 * grow memory; slots are placed by a keyed hash so they cannot aim at a victim's slot). After
 * the free failures, each failure locks the key for twice as long as the last, from 1 s up to
 * 15 minutes; a key not failing for an hour is forgotten, a success clears the name and the
 * address. The address allows more failures than a name: a clinic's users share one. */
#define THROTTLE_SLOTS 1024
#define THROTTLE_PROBE 8
#define THROTTLE_FORGET_MS (60 * MINUTE_MS)
#define THROTTLE_NAME_FREE 5
#define THROTTLE_ADDR_FREE 20
#define THROTTLE_BASE_MS 1000LL
#define THROTTLE_MAX_MS (15 * MINUTE_MS)

/* At most this many password hashes are computed at once: each takes the memlimit (64 MiB
 * at INTERACTIVE), and a login flood must not take the server's memory. */
#define HASHING_MAX 2

/* Audit queue: the flusher is woken early at AUDIT_SOON rows; past AUDIT_BACKLOG a caller
 * commits the queue itself (back-pressure instead of dropping rows); past AUDIT_HARD (the
 * index failing for a long time) auth_audit refuses with VP_ELIMIT. */
#define AUDIT_SOON 256
#define AUDIT_BACKLOG 4096
#define AUDIT_HARD 65536

/* Expired sessions are purged this often by the flusher thread. */
#define PURGE_EVERY_MS MINUTE_MS

struct throttle {
    uint8_t kind;      /* 0 empty, T_NAME, T_ADDR */
    char key[65];      /* lower-cased user name, or client address */
    uint32_t failures; /* since the last success or forgetting */
    int64_t last_ms;   /* last failure */
    int64_t until_ms;  /* locked until */
};
enum { T_NAME = 1, T_ADDR = 2 };

struct auth {
    auth_opts o;
    int64_t touch_ms; /* granularity of last-use times (session seen, token used) */
    /* write connection: users, tokens, sessions, audit commits */
    idx *wx;
    idx_users *w;
    pthread_mutex_t wlock;
    /* read connection: the lookups of every request */
    idx *rx;
    idx_users *r;
    pthread_mutex_t rlock;
    /* audit queue, guarded by qlock */
    pthread_mutex_t qlock;
    pthread_cond_t qcond; /* wakes the flusher (CLOCK_MONOTONIC) */
    idx_audit *q;
    size_t qn, qcap;
    bool flusher, stopping; /* flusher thread running; asked to stop */
    pthread_t thread;
    /* failed logins, guarded by tlock */
    pthread_mutex_t tlock;
    uint8_t tkey[crypto_shorthash_KEYBYTES];
    struct throttle slot[THROTTLE_SLOTS];
    /* password hashing, guarded by hlock */
    pthread_mutex_t hlock;
    pthread_cond_t hcond;
    int hashing;                        /* hashes running */
    char dummy[crypto_pwhash_STRBYTES]; /* verified for unknown names ("" until made) */
};

static const char *const role_names[AUTH_ROLE_COUNT] = {
    [AUTH_ROLE_ADMIN] = "admin",
    [AUTH_ROLE_RADIOLOGIST] = "radiologist",
    [AUTH_ROLE_VET] = "vet",
    [AUTH_ROLE_TECHNICIAN] = "technician",
    [AUTH_ROLE_READONLY] = "read-only",
};

static const char *const action_names[AUTH_ACTION_COUNT] = {
    [AUTH_VIEW] = "view",     [AUTH_DOWNLOAD] = "download", [AUTH_UPLOAD] = "upload",
    [AUTH_REPORT] = "report", [AUTH_WORKLIST] = "worklist", [AUTH_DELETE] = "delete",
    [AUTH_ADMIN] = "admin",
};

#define A(x) (1u << (x))
/* What each role may do (docs/users.md has the same table). */
static const unsigned role_actions[AUTH_ROLE_COUNT] = {
    [AUTH_ROLE_ADMIN] = A(AUTH_VIEW) | A(AUTH_DOWNLOAD) | A(AUTH_UPLOAD) | A(AUTH_REPORT) |
                        A(AUTH_WORKLIST) | A(AUTH_DELETE) | A(AUTH_ADMIN),
    [AUTH_ROLE_RADIOLOGIST] = A(AUTH_VIEW) | A(AUTH_DOWNLOAD) | A(AUTH_UPLOAD) | A(AUTH_REPORT),
    [AUTH_ROLE_VET] =
        A(AUTH_VIEW) | A(AUTH_DOWNLOAD) | A(AUTH_UPLOAD) | A(AUTH_REPORT) | A(AUTH_WORKLIST),
    [AUTH_ROLE_TECHNICIAN] = A(AUTH_VIEW) | A(AUTH_DOWNLOAD) | A(AUTH_UPLOAD) | A(AUTH_WORKLIST),
    [AUTH_ROLE_READONLY] = A(AUTH_VIEW) | A(AUTH_DOWNLOAD),
};
#undef A

const char *auth_role_name(auth_role r)
{
    return (unsigned)r < AUTH_ROLE_COUNT ? role_names[r] : "?";
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool eq_nocase(const char *a, size_t alen, const char *b)
{
    size_t blen = strlen(b);
    if (alen != blen)
        return false;
    for (size_t i = 0; i < alen; i++)
        if (lower(a[i]) != lower(b[i]))
            return false;
    return true;
}

bool auth_role_parse(const char *name, auth_role *out)
{
    for (int i = 0; name && i < AUTH_ROLE_COUNT; i++) {
        if (eq_nocase(name, strlen(name), role_names[i])) {
            *out = (auth_role)i;
            return true;
        }
    }
    return false;
}

const char *auth_action_name(auth_action a)
{
    return (unsigned)a < AUTH_ACTION_COUNT ? action_names[a] : "?";
}

bool auth_can(auth_role r, auth_action a)
{
    return (unsigned)r < AUTH_ROLE_COUNT && (unsigned)a < AUTH_ACTION_COUNT &&
           (role_actions[r] >> a & 1u);
}

bool auth_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n < 1 || n > IDX_USER_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)name[i] < 0x21 || (unsigned char)name[i] > 0x7E)
            return false;
    return true;
}

const char *auth_password_problem(const char *password)
{
    size_t n = password ? strlen(password) : 0;
    if (n == 0)
        return "empty";
    if (n < AUTH_PASSWORD_MIN)
        return "shorter than 8 characters";
    if (n > AUTH_PASSWORD_MAX)
        return "longer than 1024 bytes";
    return NULL;
}

/* ---------------------------------------------------------------------------------------- */
/* Clock, credentials                                                                       */

static int64_t real_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t now(const auth *a)
{
    return a->o.now ? a->o.now(a->o.now_ctx) : real_now();
}

/* A new credential: prefix + 32 random bytes in unpadded base64url. */
static void cred_new(const char *prefix, char out[AUTH_CRED_LEN + 1])
{
    unsigned char raw[CRED_RANDOM];
    randombytes_buf(raw, sizeof raw);
    memcpy(out, prefix, 4);
    sodium_bin2base64(out + 4, AUTH_CRED_LEN + 1 - 4, raw, sizeof raw,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof raw);
}

static bool b64url(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

/* Whether s (len bytes) has the shape of a credential with this prefix: a cheap refusal of
 * garbage before any hashing or index probe. */
static bool cred_shape(const char *s, size_t len, const char *prefix)
{
    if (!s || len != AUTH_CRED_LEN || memcmp(s, prefix, 4) != 0)
        return false;
    for (size_t i = 4; i < len; i++)
        if (!b64url(s[i]))
            return false;
    return true;
}

static void cred_digest(const char *s, size_t len, uint8_t out[IDX_CRED_HASH])
{
    crypto_generichash(out, IDX_CRED_HASH, (const unsigned char *)s, len, NULL, 0);
}

static unsigned long long opslimit(const auth *a)
{
    return a->o.pw_opslimit ? a->o.pw_opslimit : crypto_pwhash_OPSLIMIT_INTERACTIVE;
}

static size_t memlimit(const auth *a)
{
    return a->o.pw_memlimit ? a->o.pw_memlimit : crypto_pwhash_MEMLIMIT_INTERACTIVE;
}

static void hashing_enter(auth *a)
{
    pthread_mutex_lock(&a->hlock);
    while (a->hashing >= HASHING_MAX)
        pthread_cond_wait(&a->hcond, &a->hlock);
    a->hashing++;
    pthread_mutex_unlock(&a->hlock);
}

static void hashing_leave(auth *a)
{
    pthread_mutex_lock(&a->hlock);
    a->hashing--;
    pthread_cond_signal(&a->hcond);
    pthread_mutex_unlock(&a->hlock);
}

/* An argon2id string of password (inside hashing_enter/leave). */
static vp_status pw_hash(auth *a, const char *password, char out[crypto_pwhash_STRBYTES],
                         vp_error *err)
{
    if (crypto_pwhash_str_alg(out, password, strlen(password), opslimit(a), memlimit(a),
                              crypto_pwhash_ALG_ARGON2ID13) != 0)
        return vp_error_set(err, VP_ENOMEM, "cannot hash the password (out of memory)");
    return VP_OK;
}

/* A hash verified when the name is unknown, so that an unknown name takes as long as a
 * wrong password (inside hashing_enter/leave; made once, of a random password). */
static const char *dummy_hash(auth *a)
{
    pthread_mutex_lock(&a->hlock);
    bool have = a->dummy[0] != 0;
    pthread_mutex_unlock(&a->hlock);
    if (have)
        return a->dummy;
    char pw[AUTH_CRED_LEN + 1], h[crypto_pwhash_STRBYTES];
    cred_new("none", pw);
    if (pw_hash(a, pw, h, NULL) != VP_OK)
        return NULL;
    pthread_mutex_lock(&a->hlock);
    if (!a->dummy[0])
        memcpy(a->dummy, h, sizeof h);
    pthread_mutex_unlock(&a->hlock);
    return a->dummy;
}

/* ---------------------------------------------------------------------------------------- */
/* Throttling of failed logins                                                              */

/* Which slot gives way to a new key, lowest first: an empty or forgotten one, else the one
 * least recently failing that is not locked, else a locked one (a flood of new keys must not
 * erase the lock of the keys that earned one). */
static int rank(const struct throttle *s, int64_t t)
{
    if (!s->kind || (t - s->last_ms > THROTTLE_FORGET_MS && s->until_ms <= t))
        return 0;
    return s->until_ms <= t ? 1 : 2;
}

static struct throttle *throttle_slot(auth *a, int kind, const char *key, bool create, int64_t t)
{
    uint8_t in[1 + 64], h[crypto_shorthash_BYTES];
    size_t n = strnlen(key, 64);
    in[0] = (uint8_t)kind;
    memcpy(in + 1, key, n);
    crypto_shorthash(h, in, n + 1, a->tkey);
    size_t first = (size_t)vp_le32(h) % THROTTLE_SLOTS;
    struct throttle *victim = NULL;
    for (size_t i = 0; i < THROTTLE_PROBE; i++) {
        struct throttle *s = &a->slot[(first + i) % THROTTLE_SLOTS];
        if (s->kind == kind && rank(s, t) && strncmp(s->key, key, 64) == 0)
            return s;
        if (!victim || rank(s, t) < rank(victim, t) ||
            (rank(s, t) == rank(victim, t) && s->last_ms < victim->last_ms))
            victim = s;
    }
    if (!create)
        return NULL;
    memset(victim, 0, sizeof *victim);
    victim->kind = (uint8_t)kind;
    snprintf(victim->key, sizeof victim->key, "%s", key);
    return victim;
}

/* Milliseconds until name or address may try again (0 = now). */
static int64_t throttle_wait(auth *a, const char *name, const char *addr, int64_t t)
{
    int64_t wait = 0;
    pthread_mutex_lock(&a->tlock);
    struct throttle *s = throttle_slot(a, T_NAME, name, false, t);
    if (s && s->until_ms - t > wait)
        wait = s->until_ms - t;
    s = *addr ? throttle_slot(a, T_ADDR, addr, false, t) : NULL;
    if (s && s->until_ms - t > wait)
        wait = s->until_ms - t;
    pthread_mutex_unlock(&a->tlock);
    return wait;
}

static void throttle_count(struct throttle *s, uint32_t free, int64_t t)
{
    s->failures++;
    s->last_ms = t;
    if (s->failures > free) {
        uint32_t k = s->failures - free - 1;
        int64_t d = k >= 20 ? THROTTLE_MAX_MS : THROTTLE_BASE_MS << k;
        s->until_ms = t + (d < THROTTLE_MAX_MS ? d : THROTTLE_MAX_MS);
    }
}

static void throttle_fail(auth *a, const char *name, const char *addr, int64_t t)
{
    pthread_mutex_lock(&a->tlock);
    throttle_count(throttle_slot(a, T_NAME, name, true, t), THROTTLE_NAME_FREE, t);
    if (*addr)
        throttle_count(throttle_slot(a, T_ADDR, addr, true, t), THROTTLE_ADDR_FREE, t);
    pthread_mutex_unlock(&a->tlock);
}

static void throttle_clear(auth *a, const char *name, const char *addr, int64_t t)
{
    pthread_mutex_lock(&a->tlock);
    struct throttle *s = throttle_slot(a, T_NAME, name, false, t);
    if (s)
        memset(s, 0, sizeof *s);
    s = *addr ? throttle_slot(a, T_ADDR, addr, false, t) : NULL;
    if (s)
        memset(s, 0, sizeof *s);
    pthread_mutex_unlock(&a->tlock);
}

/* ---------------------------------------------------------------------------------------- */
/* Audit queue                                                                              */

/* Copies row with its time set and every text field terminated. */
static void audit_copy(const auth *a, idx_audit *dst, const idx_audit *row)
{
    *dst = *row;
    if (!dst->time_ms)
        dst->time_ms = now(a);
    dst->user[sizeof dst->user - 1] = 0;
    dst->action[sizeof dst->action - 1] = 0;
    dst->resource_type[sizeof dst->resource_type - 1] = 0;
    dst->resource_id[sizeof dst->resource_id - 1] = 0;
    dst->client[sizeof dst->client - 1] = 0;
    dst->outcome[sizeof dst->outcome - 1] = 0;
    dst->detail[sizeof dst->detail - 1] = 0;
}

/* Appends to the queue (under qlock). */
static vp_status queue_push(auth *a, const idx_audit *row, vp_error *err)
{
    if (a->qn >= AUDIT_HARD)
        return vp_error_set(err, VP_ELIMIT, "audit log: %d rows wait for the index", AUDIT_HARD);
    if (a->qn == a->qcap) {
        size_t cap = a->qcap ? a->qcap * 2 : 64;
        idx_audit *q = vp_realloc(a->q, cap * sizeof *q);
        if (!q)
            return vp_error_set(err, VP_ENOMEM, "out of memory");
        a->q = q;
        a->qcap = cap;
    }
    audit_copy(a, &a->q[a->qn++], row);
    return VP_OK;
}

/* Puts rows whose commit failed back at the front of the queue (under qlock), taking batch. */
static void give_back(auth *a, idx_audit *batch, size_t n, size_t cap)
{
    pthread_mutex_lock(&a->qlock);
    if (!n) {
        vp_free(batch);
    } else if (!a->qn) {
        vp_free(a->q);
        a->q = batch;
        a->qn = n;
        a->qcap = cap;
    } else {
        /* rows queued meanwhile go after the ones given back */
        idx_audit *m = vp_realloc(batch, (n + a->qn) * sizeof *m);
        if (m) {
            memcpy(m + n, a->q, a->qn * sizeof *m);
            vp_free(a->q);
            a->q = m;
            a->qn += n;
            a->qcap = a->qn;
        } else {
            vp_free(batch); /* out of memory: lost, and the commit's error was reported */
        }
    }
    pthread_mutex_unlock(&a->qlock);
}

/* Commits the queue, with row appended last when not NULL. The write lock is held from
 * taking the queue to committing it, so batches commit in queue order. On failure the
 * queued rows go back to the front of the queue (row, whose caller is told, does not). */
static vp_status flush(auth *a, const idx_audit *row, vp_error *err)
{
    pthread_mutex_lock(&a->wlock);
    pthread_mutex_lock(&a->qlock);
    vp_status st = row ? queue_push(a, row, err) : VP_OK;
    idx_audit *batch = NULL;
    size_t n = 0, cap = 0;
    if (st == VP_OK) {
        batch = a->q;
        n = a->qn;
        cap = a->qcap;
        a->q = NULL;
        a->qn = a->qcap = 0;
    }
    pthread_mutex_unlock(&a->qlock);
    if (st == VP_OK && n)
        st = idx_audit_append(a->w, batch, n, err);
    if (st != VP_OK && n) {
        give_back(a, batch, row ? n - 1 : n, cap);
        batch = NULL;
    }
    pthread_mutex_unlock(&a->wlock);
    vp_free(batch);
    return st;
}

static struct timespec deadline_in(int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

/* The flusher: commits the queue every audit_flush_ms (sooner when AUDIT_SOON rows wait) and
 * purges expired sessions every minute. A failed commit leaves the rows queued for the next
 * round. */
static void *flusher(void *arg)
{
    auth *a = arg;
    struct timespec next_purge = deadline_in(0);
    pthread_mutex_lock(&a->qlock);
    while (!a->stopping) {
        struct timespec dl = deadline_in(a->o.audit_flush_ms);
        while (!a->stopping && a->qn < AUDIT_SOON &&
               pthread_cond_timedwait(&a->qcond, &a->qlock, &dl) == 0) {
        }
        pthread_mutex_unlock(&a->qlock);
        flush(a, NULL, NULL);
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        if (t.tv_sec > next_purge.tv_sec ||
            (t.tv_sec == next_purge.tv_sec && t.tv_nsec >= next_purge.tv_nsec)) {
            auth_purge(a, NULL, NULL);
            next_purge = deadline_in(PURGE_EVERY_MS);
        }
        pthread_mutex_lock(&a->qlock);
    }
    pthread_mutex_unlock(&a->qlock);
    return NULL;
}

vp_status auth_audit(auth *a, const idx_audit *row, vp_error *err)
{
    pthread_mutex_lock(&a->qlock);
    if (!a->flusher && !a->stopping &&
        pthread_create(&a->thread, NULL, flusher, a) == 0) /* started by the first row */
        a->flusher = true;
    bool backlog = a->qn >= AUDIT_BACKLOG || !a->flusher;
    vp_status st = backlog ? VP_OK : queue_push(a, row, err);
    if (st == VP_OK && a->qn >= AUDIT_SOON)
        pthread_cond_signal(&a->qcond);
    pthread_mutex_unlock(&a->qlock);
    /* The flusher is behind (or could not start): this caller commits, the row included. */
    return backlog ? flush(a, row, err) : st;
}

vp_status auth_audit_now(auth *a, const idx_audit *row, vp_error *err)
{
    return flush(a, row, err);
}

vp_status auth_audit_flush(auth *a, vp_error *err)
{
    return flush(a, NULL, err);
}

vp_status auth_audit_query(auth *a, const idx_audit_filter *f, idx_audit_fn fn, void *ctx,
                           vp_error *err)
{
    vp_status st = flush(a, NULL, err);
    if (st)
        return st;
    pthread_mutex_lock(&a->rlock);
    st = idx_audit_query(a->r, f, fn, ctx, err);
    pthread_mutex_unlock(&a->rlock);
    return st;
}

/* An audit row of this module's own (logins, logouts). */
static void audit_self(auth *a, const char *action, const char *user, int64_t user_id,
                       const auth_client *client, const char *outcome, const char *detail)
{
    idx_audit r;
    memset(&r, 0, sizeof r);
    r.user_id = user_id;
    snprintf(r.user, sizeof r.user, "%s", user ? user : "");
    snprintf(r.action, sizeof r.action, "%s", action);
    snprintf(r.resource_type, sizeof r.resource_type, "user");
    snprintf(r.resource_id, sizeof r.resource_id, "%s", user ? user : "");
    snprintf(r.client, sizeof r.client, "%s", client && client->address ? client->address : "");
    snprintf(r.outcome, sizeof r.outcome, "%s", outcome);
    snprintf(r.detail, sizeof r.detail, "%s", detail ? detail : "");
    auth_audit(a, &r, NULL); /* a row the index cannot take stays queued for the next round */
}

/* ---------------------------------------------------------------------------------------- */
/* Open, close                                                                              */

static vp_status open_conn(const char *path, idx **x, idx_users **u, vp_error *err)
{
    vp_status st = idx_open(path, x, err);
    if (st == VP_OK)
        st = idx_users_open(*x, u, err);
    return st;
}

vp_status auth_open(const char *data_dir, const auth_opts *opts, auth **out, vp_error *err)
{
    *out = NULL;
    if (sodium_init() < 0)
        return vp_error_set(err, VP_EIO, "libsodium cannot start (no random source)");
    auth *a = vp_calloc(1, sizeof *a);
    if (!a)
        return vp_error_set(err, VP_ENOMEM, "out of memory");
    if (opts)
        a->o = *opts;
    if (a->o.session_idle_ms <= 0)
        a->o.session_idle_ms = 30 * MINUTE_MS;
    if (a->o.session_lifetime_ms <= 0)
        a->o.session_lifetime_ms = 12 * 60 * MINUTE_MS;
    if (a->o.audit_flush_ms <= 0)
        a->o.audit_flush_ms = 1000;
    /* Last-use times are written at most once a minute per credential (a write per request
     * would be a write per request), finer when the idle timeout is short. */
    a->touch_ms = a->o.session_idle_ms / 4 < MINUTE_MS ? a->o.session_idle_ms / 4 : MINUTE_MS;
    pthread_mutex_init(&a->wlock, NULL);
    pthread_mutex_init(&a->rlock, NULL);
    pthread_mutex_init(&a->qlock, NULL);
    pthread_mutex_init(&a->tlock, NULL);
    pthread_mutex_init(&a->hlock, NULL);
    pthread_cond_init(&a->hcond, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&a->qcond, &ca);
    pthread_condattr_destroy(&ca);
    crypto_shorthash_keygen(a->tkey);
    char path[4096];
    vp_status st = VP_OK;
    if ((size_t)snprintf(path, sizeof path, "%s/index.db", data_dir) >= sizeof path)
        st = vp_error_set(err, VP_EINVAL, "%s: path too long", data_dir);
    if (st == VP_OK)
        st = open_conn(path, &a->wx, &a->w, err);
    if (st == VP_OK)
        st = open_conn(path, &a->rx, &a->r, err);
    if (st) {
        auth_close(a);
        return st;
    }
    *out = a;
    return VP_OK;
}

void auth_close(auth *a)
{
    if (!a)
        return;
    pthread_mutex_lock(&a->qlock);
    a->stopping = true;
    pthread_cond_signal(&a->qcond);
    bool joined = a->flusher;
    pthread_mutex_unlock(&a->qlock);
    if (joined)
        pthread_join(a->thread, NULL);
    if (a->w)
        flush(a, NULL, NULL);
    vp_free(a->q);
    idx_users_close(a->r);
    idx_close(a->rx);
    idx_users_close(a->w);
    idx_close(a->wx);
    pthread_mutex_destroy(&a->wlock);
    pthread_mutex_destroy(&a->rlock);
    pthread_mutex_destroy(&a->qlock);
    pthread_mutex_destroy(&a->tlock);
    pthread_mutex_destroy(&a->hlock);
    pthread_cond_destroy(&a->hcond);
    pthread_cond_destroy(&a->qcond);
    sodium_memzero(a->tkey, sizeof a->tkey);
    vp_free(a);
}

/* ---------------------------------------------------------------------------------------- */
/* Users                                                                                    */

static vp_status check_password(const char *name, const char *password, vp_error *err)
{
    const char *why = auth_password_problem(password);
    if (why)
        return vp_error_set(err, VP_EINVAL, "password is %s", why);
    if (eq_nocase(password, strlen(password), name))
        return vp_error_set(err, VP_EINVAL, "password is the user name");
    return VP_OK;
}

static vp_status check_name(const char *name, vp_error *err)
{
    if (!name || !auth_name_valid(name))
        return vp_error_set(err, VP_EINVAL,
                            "user name must be 1-%d printable ASCII characters without spaces",
                            IDX_USER_NAME_MAX);
    return VP_OK;
}

vp_status auth_user_add(auth *a, const char *name, auth_role role, const char *password,
                        vp_error *err)
{
    vp_status st;
    if ((st = check_name(name, err)) || (st = check_password(name, password, err)))
        return st;
    if ((unsigned)role >= AUTH_ROLE_COUNT)
        return vp_error_set(err, VP_EINVAL, "unknown role");
    idx_user u;
    memset(&u, 0, sizeof u);
    snprintf(u.name, sizeof u.name, "%s", name);
    snprintf(u.role, sizeof u.role, "%s", role_names[role]);
    hashing_enter(a);
    st = pw_hash(a, password, u.pw_hash, err);
    hashing_leave(a);
    if (st)
        return st;
    u.created_ms = u.updated_ms = now(a);
    pthread_mutex_lock(&a->wlock);
    st = idx_user_add(a->w, &u, err);
    pthread_mutex_unlock(&a->wlock);
    sodium_memzero(u.pw_hash, sizeof u.pw_hash);
    return st;
}

static void user_info(const idx_user *u, auth_user_info *out)
{
    memset(out, 0, sizeof *out);
    out->id = u->id;
    snprintf(out->name, sizeof out->name, "%s", u->name);
    if (!auth_role_parse(u->role, &out->role))
        out->role = AUTH_ROLE_READONLY; /* cannot happen: the table checks the role */
    out->created_ms = u->created_ms;
    out->updated_ms = u->updated_ms;
    out->disabled = u->disabled;
}

vp_status auth_user_passwd(auth *a, const char *name, const char *password, vp_error *err)
{
    idx_user u;
    vp_status st = check_password(name, password, err);
    if (st)
        return st;
    char h[crypto_pwhash_STRBYTES];
    hashing_enter(a);
    st = pw_hash(a, password, h, err);
    hashing_leave(a);
    if (st)
        return st;
    pthread_mutex_lock(&a->wlock);
    st = idx_user_get(a->w, name, &u, err);
    if (st == VP_OK) {
        memcpy(u.pw_hash, h, sizeof h);
        u.updated_ms = now(a);
        st = idx_user_update(a->w, &u, err);
    }
    /* Whoever knew the old password is logged out; tokens are separate credentials. */
    if (st == VP_OK)
        st = idx_session_remove_user(a->w, u.id, NULL, err);
    pthread_mutex_unlock(&a->wlock);
    sodium_memzero(h, sizeof h);
    return st;
}

vp_status auth_user_set(auth *a, const char *name, const auth_role *role, const bool *disabled,
                        vp_error *err)
{
    if (role && (unsigned)*role >= AUTH_ROLE_COUNT)
        return vp_error_set(err, VP_EINVAL, "unknown role");
    idx_user u;
    pthread_mutex_lock(&a->wlock);
    vp_status st = idx_user_get(a->w, name, &u, err);
    if (st == VP_OK) {
        if (role)
            snprintf(u.role, sizeof u.role, "%s", role_names[*role]);
        if (disabled)
            u.disabled = *disabled;
        u.updated_ms = now(a);
        st = idx_user_update(a->w, &u, err);
    }
    if (st == VP_OK && u.disabled)
        st = idx_session_remove_user(a->w, u.id, NULL, err);
    pthread_mutex_unlock(&a->wlock);
    return st;
}

vp_status auth_user_remove(auth *a, const char *name, vp_error *err)
{
    pthread_mutex_lock(&a->wlock);
    vp_status st = idx_user_remove(a->w, name, err);
    pthread_mutex_unlock(&a->wlock);
    return st;
}

vp_status auth_user_get(auth *a, const char *name, auth_user_info *out, vp_error *err)
{
    idx_user u;
    pthread_mutex_lock(&a->wlock);
    vp_status st = idx_user_get(a->w, name, &u, err);
    pthread_mutex_unlock(&a->wlock);
    if (st == VP_OK)
        user_info(&u, out);
    return st;
}

struct each_ctx {
    auth_user_fn fn;
    void *ctx;
};

static vp_status each_one(void *ctx, const idx_user *u)
{
    struct each_ctx *e = ctx;
    auth_user_info info;
    user_info(u, &info);
    return e->fn(e->ctx, &info);
}

vp_status auth_user_each(auth *a, auth_user_fn fn, void *ctx, vp_error *err)
{
    struct each_ctx e = {fn, ctx};
    pthread_mutex_lock(&a->wlock);
    vp_status st = idx_user_each(a->w, each_one, &e, err);
    pthread_mutex_unlock(&a->wlock);
    return st;
}

vp_status auth_first_admin(auth *a, char password[AUTH_PASSWORD_GEN_LEN + 1], bool *created,
                           vp_error *err)
{
    *created = false;
    password[0] = 0;
    uint64_t n = 0;
    pthread_mutex_lock(&a->wlock);
    vp_status st = idx_user_count(a->w, &n, err);
    pthread_mutex_unlock(&a->wlock);
    if (st || n)
        return st;
    unsigned char raw[18];
    randombytes_buf(raw, sizeof raw);
    sodium_bin2base64(password, AUTH_PASSWORD_GEN_LEN + 1, raw, sizeof raw,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof raw);
    vp_error e = {0};
    st = auth_user_add(a, "admin", AUTH_ROLE_ADMIN, password, &e);
    if (st == VP_ECONFLICT) /* another process made it first: not ours to show */
        st = VP_OK;
    else if (st == VP_OK)
        *created = true;
    else
        vp_error_set(err, st, "%s", e.msg);
    if (!*created)
        sodium_memzero(password, AUTH_PASSWORD_GEN_LEN + 1);
    return st;
}

/* ---------------------------------------------------------------------------------------- */
/* Tokens                                                                                   */

vp_status auth_token_create(auth *a, const char *name, const char *label,
                            char token[AUTH_CRED_LEN + 1], int64_t *id, vp_error *err)
{
    token[0] = 0;
    if (label && strlen(label) >= sizeof((idx_token *)0)->label)
        return vp_error_set(err, VP_EINVAL, "token label longer than %zu bytes",
                            sizeof((idx_token *)0)->label - 1);
    idx_user u;
    idx_token t;
    memset(&t, 0, sizeof t);
    snprintf(t.label, sizeof t.label, "%s", label ? label : "");
    char tok[AUTH_CRED_LEN + 1];
    uint8_t h[IDX_CRED_HASH];
    cred_new(AUTH_TOKEN_PREFIX, tok);
    cred_digest(tok, AUTH_CRED_LEN, h);
    pthread_mutex_lock(&a->wlock);
    vp_status st = idx_user_get(a->w, name, &u, err);
    if (st == VP_OK) {
        t.user_id = u.id;
        t.created_ms = now(a);
        st = idx_token_add(a->w, &t, h, err);
    }
    pthread_mutex_unlock(&a->wlock);
    if (st == VP_OK) {
        memcpy(token, tok, sizeof tok);
        if (id)
            *id = t.id;
    }
    sodium_memzero(tok, sizeof tok);
    return st;
}

vp_status auth_token_revoke(auth *a, const char *name, int64_t id, const char *label, uint64_t *n,
                            vp_error *err)
{
    if (n)
        *n = 0;
    idx_user u;
    pthread_mutex_lock(&a->wlock);
    vp_status st = idx_user_get(a->w, name, &u, err);
    if (st == VP_OK)
        st = idx_token_revoke(a->w, u.id, id, label, n, err);
    pthread_mutex_unlock(&a->wlock);
    return st;
}

vp_status auth_token_each(auth *a, const char *name, idx_token_fn fn, void *ctx, vp_error *err)
{
    idx_user u;
    pthread_mutex_lock(&a->wlock);
    vp_status st = idx_user_get(a->w, name, &u, err);
    if (st == VP_OK)
        st = idx_token_each(a->w, u.id, fn, ctx, err);
    pthread_mutex_unlock(&a->wlock);
    return st;
}

/* ---------------------------------------------------------------------------------------- */
/* Requests                                                                                 */

static const char bad_login[] = "invalid user name or password";
static const char bad_session[] = "invalid or expired session";
static const char bad_token[] = "invalid API token";

static bool to_user(const idx_user *u, auth_user *out)
{
    memset(out, 0, sizeof *out);
    out->id = u->id;
    snprintf(out->name, sizeof out->name, "%s", u->name);
    return auth_role_parse(u->role, &out->role);
}

vp_status auth_login(auth *a, const char *name, const char *password, const auth_client *client,
                     char session[AUTH_CRED_LEN + 1], auth_user *user, int64_t *retry_after_ms,
                     vp_error *err)
{
    session[0] = 0;
    memset(user, 0, sizeof *user);
    if (retry_after_ms)
        *retry_after_ms = 0;
    if (!name)
        name = "";
    if (!password)
        password = "";
    const char *addr = client && client->address ? client->address : "";
    /* The throttling key: the name as the index compares it (ASCII case ignored). */
    char key[IDX_USER_NAME_MAX + 1];
    size_t kn = strnlen(name, IDX_USER_NAME_MAX);
    for (size_t i = 0; i < kn; i++)
        key[i] = lower(name[i]);
    key[kn] = 0;
    int64_t t = now(a);
    int64_t wait = throttle_wait(a, key, addr, t);
    if (wait > 0) {
        if (retry_after_ms)
            *retry_after_ms = wait;
        return vp_error_set(err, VP_EAGAIN, "too many failed logins; try again in %lld s",
                            (long long)((wait + 999) / 1000));
    }
    idx_user u;
    vp_status st = VP_ENOTFOUND;
    if (auth_name_valid(name)) {
        vp_error e = {0};
        pthread_mutex_lock(&a->rlock);
        st = idx_user_get(a->r, name, &u, &e);
        pthread_mutex_unlock(&a->rlock);
        if (st != VP_OK && st != VP_ENOTFOUND)
            return vp_error_set(err, st, "%s", e.msg);
    }
    bool found = st == VP_OK;
    /* Same work whether or not the name exists: a hash is verified either way. */
    size_t pn = strnlen(password, AUTH_PASSWORD_MAX + 1);
    bool rehash = false, ok = false;
    char fresh[crypto_pwhash_STRBYTES];
    hashing_enter(a);
    /* made before either branch: the first login, whatever the name, pays for it */
    const char *dummy = dummy_hash(a);
    const char *h = found ? u.pw_hash : dummy;
    if (h)
        ok = crypto_pwhash_str_verify(h, password,
                                      pn > AUTH_PASSWORD_MAX ? AUTH_PASSWORD_MAX : pn) == 0;
    ok = ok && found && !u.disabled && pn <= AUTH_PASSWORD_MAX;
    if (ok && crypto_pwhash_str_needs_rehash(u.pw_hash, opslimit(a), memlimit(a)) != 0)
        rehash = pw_hash(a, password, fresh, NULL) == VP_OK;
    hashing_leave(a);
    if (!ok || !to_user(&u, user)) {
        throttle_fail(a, key, addr, t);
        audit_self(a, "login", name, found ? u.id : 0, client, "failure",
                   found && u.disabled ? "user disabled" : NULL);
        memset(user, 0, sizeof *user);
        return vp_error_set(err, VP_ENOTFOUND, "%s", bad_login);
    }
    throttle_clear(a, key, addr, t);
    idx_session s;
    memset(&s, 0, sizeof s);
    s.user_id = u.id;
    s.created_ms = s.seen_ms = t;
    s.expires_ms = t + a->o.session_lifetime_ms;
    snprintf(s.client, sizeof s.client, "%s", addr);
    snprintf(s.user_agent, sizeof s.user_agent, "%s",
             client && client->user_agent ? client->user_agent : "");
    char sid[AUTH_CRED_LEN + 1];
    uint8_t dig[IDX_CRED_HASH];
    cred_new(AUTH_SESSION_PREFIX, sid);
    cred_digest(sid, AUTH_CRED_LEN, dig);
    pthread_mutex_lock(&a->wlock);
    if (rehash) {
        /* The cost changed since this hash was made: the password is at hand, keep it at the
         * current cost (a failure only postpones that to the next login). */
        memcpy(u.pw_hash, fresh, sizeof fresh);
        u.updated_ms = t;
        idx_user_update(a->w, &u, NULL);
    }
    st = idx_session_add(a->w, &s, dig, err);
    pthread_mutex_unlock(&a->wlock);
    sodium_memzero(fresh, sizeof fresh);
    if (st) {
        memset(user, 0, sizeof *user);
        sodium_memzero(sid, sizeof sid);
        return st;
    }
    audit_self(a, "login", u.name, u.id, client, "success", NULL);
    memcpy(session, sid, sizeof sid);
    sodium_memzero(sid, sizeof sid);
    return VP_OK;
}

vp_status auth_logout(auth *a, const char *session, size_t len, const auth_client *client,
                      vp_error *err)
{
    auth_user user;
    vp_status st = auth_check_session(a, session, len, &user, err);
    if (st)
        return st;
    uint8_t dig[IDX_CRED_HASH];
    cred_digest(session, len, dig);
    pthread_mutex_lock(&a->wlock);
    st = idx_session_remove(a->w, dig, err);
    pthread_mutex_unlock(&a->wlock);
    if (st == VP_ENOTFOUND) /* ended meanwhile (another logout, a purge) */
        return vp_error_set(err, st, "%s", bad_session);
    if (st == VP_OK)
        audit_self(a, "logout", user.name, user.id, client, "success", NULL);
    return st;
}

vp_status auth_check_session(auth *a, const char *session, size_t len, auth_user *user,
                             vp_error *err)
{
    memset(user, 0, sizeof *user);
    if (!cred_shape(session, len, AUTH_SESSION_PREFIX))
        return vp_error_set(err, VP_ENOTFOUND, "%s", bad_session);
    uint8_t dig[IDX_CRED_HASH];
    cred_digest(session, len, dig);
    idx_session s;
    idx_user u;
    vp_error e = {0};
    pthread_mutex_lock(&a->rlock);
    vp_status st = idx_session_find(a->r, dig, &s, &u, &e);
    pthread_mutex_unlock(&a->rlock);
    if (st == VP_ENOTFOUND)
        return vp_error_set(err, st, "%s", bad_session);
    if (st)
        return vp_error_set(err, st, "%s", e.msg);
    int64_t t = now(a);
    bool expired = t >= s.expires_ms || t - s.seen_ms >= a->o.session_idle_ms;
    if (expired || u.disabled || !to_user(&u, user)) {
        memset(user, 0, sizeof *user);
        if (expired) {
            pthread_mutex_lock(&a->wlock);
            idx_session_remove(a->w, dig, NULL);
            pthread_mutex_unlock(&a->wlock);
        }
        return vp_error_set(err, VP_ENOTFOUND, "%s", bad_session);
    }
    if (t - s.seen_ms >= a->touch_ms) {
        /* Best effort: a busy index must not fail the request; the session may then end a
         * little early. */
        pthread_mutex_lock(&a->wlock);
        idx_session_touch(a->w, s.id, t, NULL);
        pthread_mutex_unlock(&a->wlock);
    }
    return VP_OK;
}

vp_status auth_check_bearer(auth *a, const char *token, size_t len, auth_user *user, vp_error *err)
{
    memset(user, 0, sizeof *user);
    if (!cred_shape(token, len, AUTH_TOKEN_PREFIX))
        return vp_error_set(err, VP_ENOTFOUND, "%s", bad_token);
    uint8_t dig[IDX_CRED_HASH];
    cred_digest(token, len, dig);
    idx_token tk;
    idx_user u;
    vp_error e = {0};
    pthread_mutex_lock(&a->rlock);
    vp_status st = idx_token_find(a->r, dig, &tk, &u, &e);
    pthread_mutex_unlock(&a->rlock);
    if (st == VP_ENOTFOUND)
        return vp_error_set(err, st, "%s", bad_token);
    if (st)
        return vp_error_set(err, st, "%s", e.msg);
    if (u.disabled || !to_user(&u, user)) {
        memset(user, 0, sizeof *user);
        return vp_error_set(err, VP_ENOTFOUND, "%s", bad_token);
    }
    int64_t t = now(a);
    if (t - tk.used_ms >= MINUTE_MS) {
        pthread_mutex_lock(&a->wlock);
        idx_token_touch(a->w, tk.id, t, NULL);
        pthread_mutex_unlock(&a->wlock);
    }
    return VP_OK;
}

vp_status auth_purge(auth *a, uint64_t *n, vp_error *err)
{
    int64_t t = now(a);
    pthread_mutex_lock(&a->wlock);
    vp_status st = idx_session_purge(a->w, t, t - a->o.session_idle_ms, n, err);
    pthread_mutex_unlock(&a->wlock);
    return st;
}

/* ---------------------------------------------------------------------------------------- */
/* Header values                                                                            */

static bool ows(char c)
{
    return c == ' ' || c == '\t';
}

/* tchar of RFC 7230 3.2.6. */
static bool tchar(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* b64token of RFC 6750 2.1, without its trailing "=". */
static bool b64token(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~' || c == '+' || c == '/';
}

vp_status auth_bearer_parse(const char *value, size_t len, const char **token, size_t *token_len)
{
    *token = NULL;
    *token_len = 0;
    size_t i = 0, end = len;
    while (i < end && ows(value[i]))
        i++;
    while (end > i && ows(value[end - 1]))
        end--;
    size_t s = i;
    while (i < end && tchar(value[i]))
        i++;
    if (i == s || (i < end && value[i] != ' '))
        return VP_EPARSE; /* no scheme, or a character no scheme has */
    if (!eq_nocase(value + s, i - s, "Bearer"))
        return VP_ENOTFOUND;
    if (i == end)
        return VP_EPARSE; /* "Bearer" without its token */
    while (i < end && value[i] == ' ')
        i++;
    size_t t = i;
    while (i < end && b64token(value[i]))
        i++;
    if (i == t)
        return VP_EPARSE;
    while (i < end && value[i] == '=')
        i++;
    if (i != end)
        return VP_EPARSE;
    *token = value + t;
    *token_len = end - t;
    return VP_OK;
}

vp_status auth_cookie_find(const char *header, size_t len, const char *name, const char **val,
                           size_t *val_len)
{
    *val = NULL;
    *val_len = 0;
    size_t nlen = strlen(name), i = 0;
    while (i < len) {
        size_t start = i;
        while (i < len && header[i] != ';')
            i++;
        size_t pair_end = i;
        i++; /* past the ';' */
        size_t ns = start;
        while (ns < pair_end && ows(header[ns]))
            ns++;
        size_t eq = ns;
        while (eq < pair_end && header[eq] != '=')
            eq++;
        if (eq == pair_end)
            continue; /* no '=': not a cookie-pair (RFC 6265 4.2.1), skipped */
        size_t ne = eq;
        while (ne > ns && ows(header[ne - 1]))
            ne--;
        if (ne - ns != nlen || memcmp(header + ns, name, nlen) != 0)
            continue;
        size_t vs = eq + 1, ve = pair_end;
        while (vs < ve && ows(header[vs]))
            vs++;
        while (ve > vs && ows(header[ve - 1]))
            ve--;
        if (ve - vs >= 2 && header[vs] == '"' && header[ve - 1] == '"') {
            vs++;
            ve--;
        }
        *val = header + vs;
        *val_len = ve - vs;
        return VP_OK;
    }
    return VP_ENOTFOUND;
}

vp_status auth_session_cookie(const auth *a, const char *session, bool secure, char *buf,
                              size_t size)
{
    long long age = session && *session ? (long long)(a->o.session_lifetime_ms / 1000) : 0;
    int n = snprintf(buf, size, "%s=%s; Path=/; Max-Age=%lld; HttpOnly; SameSite=Strict%s",
                     AUTH_SESSION_COOKIE, session ? session : "", age, secure ? "; Secure" : "");
    if (n < 0 || (size_t)n >= size) {
        if (size)
            buf[0] = 0;
        return VP_ELIMIT;
    }
    return VP_OK;
}
