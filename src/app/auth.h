/* SPDX-License-Identifier: MIT */
/*
 * auth: users, their credentials and the audit log, for the web server and the `vetpacs user`
 * and `vetpacs audit` commands. Storage is the index (idx_user_*, idx_token_*, idx_session_*,
 * idx_audit_*); this module holds the policy: names and roles, argon2id password hashes
 * (libsodium crypto_pwhash_str), API tokens and browser sessions kept only as BLAKE2b digests,
 * session expiry (idle timeout and absolute lifetime), throttling of failed logins, what each
 * role may do, and an audit log cheap enough to write on every request.
 *
 * Credentials on the wire: an API token is sent as "Authorization: Bearer vpt_..." (RFC 6750
 * 2.1), a session id as the cookie AUTH_SESSION_COOKIE (RFC 6265). The parsers of those
 * header values are here too (auth_bearer_parse, auth_cookie_find: no I/O, fuzzed).
 *
 * An auth is shared by every thread of the server: every call is thread-safe. It uses
 * connections of its own to the index (SQLite in WAL mode), so it neither waits for nor holds
 * the ingest's writer lock longer than its own short transactions. See docs/users.md.
 */
#ifndef VP_APP_AUTH_H
#define VP_APP_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include "idx/idx.h"

typedef struct auth auth;

/* Roles, weakest last. Stored by name (auth_role_name). */
typedef enum auth_role {
    AUTH_ROLE_ADMIN,       /* everything, users and the audit log included */
    AUTH_ROLE_RADIOLOGIST, /* reads and reports studies */
    AUTH_ROLE_VET,         /* the practice's vet: reads, uploads, reports, schedules */
    AUTH_ROLE_TECHNICIAN,  /* acquires: uploads, schedules, views */
    AUTH_ROLE_READONLY,    /* views and downloads */
    AUTH_ROLE_COUNT
} auth_role;

/* What a request does, as the web layer asks auth_can. */
typedef enum auth_action {
    AUTH_VIEW,     /* search, metadata, rendered images, thumbnails */
    AUTH_DOWNLOAD, /* original objects (WADO-RS instances, bulk data, WADO-URI) */
    AUTH_UPLOAD,   /* STOW-RS */
    AUTH_REPORT,   /* write or sign a report */
    AUTH_WORKLIST, /* create or cancel worklist items */
    AUTH_DELETE,   /* remove studies, series or instances */
    AUTH_ADMIN,    /* users, tokens, the audit log, system settings */
    AUTH_ACTION_COUNT
} auth_action;

/* "admin", "radiologist", "vet", "technician", "read-only". */
const char *auth_role_name(auth_role r);
/* The role of a name (ignoring ASCII case); false when there is none. */
bool auth_role_parse(const char *name, auth_role *out);
/* "view", "download", "upload", "report", "worklist", "delete", "admin". */
const char *auth_action_name(auth_action a);
/* Whether role r may do a (the table in docs/users.md). False for values out of range. */
bool auth_can(auth_role r, auth_action a);

/* Who a credential belongs to. */
typedef struct auth_user {
    int64_t id;                       /* row id of the user */
    char name[IDX_USER_NAME_MAX + 1]; /* as stored */
    auth_role role;                   /* its role */
} auth_user;

/* A user as listed (never its password hash). */
typedef struct auth_user_info {
    int64_t id;
    char name[IDX_USER_NAME_MAX + 1];
    auth_role role;
    int64_t created_ms, updated_ms; /* Unix milliseconds */
    bool disabled;
} auth_user_info;

/* Where a request comes from, for sessions, throttling and the audit log. Both may be NULL. */
typedef struct auth_client {
    const char *address;    /* the peer's IP address, without port */
    const char *user_agent; /* the User-Agent header */
} auth_client;

typedef struct auth_opts {
    /* The clock, Unix milliseconds (tests inject one); NULL = the real clock. */
    int64_t (*now)(void *ctx);
    void *now_ctx;
    int64_t session_idle_ms;     /* a session unused this long ends; 0 = 30 minutes */
    int64_t session_lifetime_ms; /* a session ends this long after login; 0 = 12 hours */
    /* argon2id cost of new hashes; 0 = crypto_pwhash_OPSLIMIT/MEMLIMIT_INTERACTIVE. A stored
     * hash made with other parameters is rehashed at the next successful login. */
    unsigned long long pw_opslimit;
    size_t pw_memlimit;
    int64_t audit_flush_ms; /* batched audit rows are committed within this; 0 = 1000 */
} auth_opts;

/* Prefixes of the credentials handed out: the rest is 32 random bytes in unpadded base64url
 * (43 characters). The prefix makes a leaked token recognisable (secret scanners, logs) and
 * keeps an API token and a session id apart: the digest covers it. */
#define AUTH_TOKEN_PREFIX "vpt_"
#define AUTH_SESSION_PREFIX "vps_"
#define AUTH_CRED_LEN (4 + 43)
/* The session cookie's name. */
#define AUTH_SESSION_COOKIE "vetpacs_session"
/* Passwords: at least this many bytes, at most AUTH_PASSWORD_MAX. */
#define AUTH_PASSWORD_MIN 8
#define AUTH_PASSWORD_MAX 1024
/* Length of a generated password (auth_first_admin): 18 random bytes in base64url. */
#define AUTH_PASSWORD_GEN_LEN 24

/*
 * Opens the users of the archive in data_dir (its index.db, created and migrated when
 * missing; the folder must exist). opts may be NULL (defaults). auth_close commits the audit
 * rows still batched.
 */
vp_status auth_open(const char *data_dir, const auth_opts *opts, auth **out, vp_error *err);
void auth_close(auth *a);

/* A user name is 1-IDX_USER_NAME_MAX printable ASCII characters without spaces. */
bool auth_name_valid(const char *name);
/* NULL when acceptable, else why not ("shorter than 8 characters", ...). */
const char *auth_password_problem(const char *password);

/* ---------------------------------------------------------------------------------------- */
/* Users (the command line and the admin API)                                               */

/* VP_EINVAL (bad name, weak password), VP_ECONFLICT (name taken, ignoring case). */
vp_status auth_user_add(auth *a, const char *name, auth_role role, const char *password,
                        vp_error *err);
/* New password; the user's sessions end (its tokens stay). VP_ENOTFOUND, VP_EINVAL. */
vp_status auth_user_passwd(auth *a, const char *name, const char *password, vp_error *err);
/* Changes role (when role is not NULL) and disabled (when disabled is not NULL); disabling
 * ends the user's sessions. VP_ENOTFOUND. */
vp_status auth_user_set(auth *a, const char *name, const auth_role *role, const bool *disabled,
                        vp_error *err);
/* Removes the user with its tokens and sessions. VP_ENOTFOUND. */
vp_status auth_user_remove(auth *a, const char *name, vp_error *err);
vp_status auth_user_get(auth *a, const char *name, auth_user_info *out, vp_error *err);
/* Calls fn for each user by name; a non-OK return from fn stops the walk and is returned. */
typedef vp_status (*auth_user_fn)(void *ctx, const auth_user_info *user);
vp_status auth_user_each(auth *a, auth_user_fn fn, void *ctx, vp_error *err);

/*
 * First start: when there is no user at all, creates "admin" (role admin) with a random
 * password written to password (AUTH_PASSWORD_GEN_LEN + 1 bytes) and sets *created; the
 * caller shows it once. Otherwise *created is false and password "".
 */
vp_status auth_first_admin(auth *a, char password[AUTH_PASSWORD_GEN_LEN + 1], bool *created,
                           vp_error *err);

/* ---------------------------------------------------------------------------------------- */
/* API tokens                                                                               */

/* A new token for the user, written to token (AUTH_CRED_LEN + 1 bytes): shown once, only its
 * digest is kept. label may be NULL. *id (may be NULL) is its row id, for revocation. */
vp_status auth_token_create(auth *a, const char *name, const char *label,
                            char token[AUTH_CRED_LEN + 1], int64_t *id, vp_error *err);
/* Revokes the user's token with row id id (> 0), else those labelled label (not NULL), else
 * all of them. *n (may be NULL) how many. VP_ENOTFOUND when no user or no such token. */
vp_status auth_token_revoke(auth *a, const char *name, int64_t id, const char *label, uint64_t *n,
                            vp_error *err);
vp_status auth_token_each(auth *a, const char *name, idx_token_fn fn, void *ctx, vp_error *err);

/* ---------------------------------------------------------------------------------------- */
/* Requests (the web layer)                                                                 */

/*
 * Checks a name and password and opens a session: its id (the cookie value) is written to
 * session (AUTH_CRED_LEN + 1 bytes) and its user to *user. Failures say nothing about which
 * part was wrong: VP_ENOTFOUND "invalid user name or password" for an unknown name, a wrong
 * password and a disabled user alike, taking as long. When this name or this client address
 * failed too often lately: VP_EAGAIN with *retry_after_ms > 0 (may be NULL) saying when to try
 * again, and the password was not checked (VP_EAGAIN with 0 is a busy index). Successes and
 * failures go to the audit log (action "login").
 */
vp_status auth_login(auth *a, const char *name, const char *password, const auth_client *client,
                     char session[AUTH_CRED_LEN + 1], auth_user *user, int64_t *retry_after_ms,
                     vp_error *err);
/* Ends a session (cookie value). VP_ENOTFOUND when it is not one. Audited ("logout"). */
vp_status auth_logout(auth *a, const char *session, size_t len, const auth_client *client,
                      vp_error *err);
/* The user of a session id (the cookie value, len bytes) that is neither idle past the
 * timeout nor past its lifetime, whose user is enabled; VP_ENOTFOUND otherwise ("invalid or
 * expired session"). */
vp_status auth_check_session(auth *a, const char *session, size_t len, auth_user *user,
                             vp_error *err);
/* The user of an API token (the Bearer credential, len bytes); VP_ENOTFOUND otherwise. */
vp_status auth_check_bearer(auth *a, const char *token, size_t len, auth_user *user, vp_error *err);
/* Removes expired sessions now (the server does it every minute anyway); *n may be NULL. */
vp_status auth_purge(auth *a, uint64_t *n, vp_error *err);

/*
 * Header values. auth_bearer_parse finds the token of an Authorization value "Bearer TOKEN"
 * (RFC 7235 2.1: scheme case-insensitive; RFC 6750 2.1: b64token): VP_OK with *token and
 * *token_len pointing into value, VP_ENOTFOUND for another scheme, VP_EPARSE when malformed.
 * auth_cookie_find finds the first cookie called name in a Cookie value (RFC 6265 4.2.1:
 * cookie-pair *( ";" SP cookie-pair ), a cookie-value may be in DQUOTEs, 4.1.1), read
 * leniently: pairs split at ';', blanks around names and values trimmed, pairs without '='
 * skipped, surrounding DQUOTEs removed.
 * VP_OK with *val and *val_len pointing into header, VP_ENOTFOUND when absent.
 */
vp_status auth_bearer_parse(const char *value, size_t len, const char **token, size_t *token_len);
vp_status auth_cookie_find(const char *header, size_t len, const char *name, const char **val,
                           size_t *val_len);
/* A Set-Cookie value for a session (RFC 6265 4.1): HttpOnly, SameSite=Strict, Path=/,
 * Max-Age the session lifetime, Secure when secure. An empty session clears the cookie
 * (Max-Age=0, for logout). VP_ELIMIT when size is too small (256 bytes is enough). */
vp_status auth_session_cookie(const auth *a, const char *session, bool secure, char *buf,
                              size_t size);

/* ---------------------------------------------------------------------------------------- */
/* Audit log                                                                                */

/*
 * Appends a row. time_ms 0 means now. auth_audit is cheap: the row is queued and committed
 * with the others queued within auth_opts.audit_flush_ms (one transaction: one WAL sync per
 * batch, and request threads never wait for the index's writer lock); a crash may lose the
 * rows of that last interval. auth_audit_now commits the queue and this row before
 * returning: for what must not be lost (deletions, user changes). Order is kept across both.
 */
vp_status auth_audit(auth *a, const idx_audit *row, vp_error *err);
vp_status auth_audit_now(auth *a, const idx_audit *row, vp_error *err);
/* Commits the queued rows now. */
vp_status auth_audit_flush(auth *a, vp_error *err);
/* Rows passing the filter, newest first; the queued rows are committed first, so the answer
 * holds every row appended before the call. */
vp_status auth_audit_query(auth *a, const idx_audit_filter *f, idx_audit_fn fn, void *ctx,
                           vp_error *err);

#endif
