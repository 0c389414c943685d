/* SPDX-License-Identifier: MIT */
/*
 * `vetpacs user add|passwd|set|list|remove|token|tokens|revoke-token` and `vetpacs audit`:
 * the archive's users, their API tokens and the audit log, kept in the index (src/app/auth.c,
 * docs/users.md).
 *
 * As `vetpacs worklist` does, the index is opened directly, not through the ingest pipeline:
 * `vetpacs serve` may be running on the same data folder, and the index (SQLite in WAL mode)
 * takes a second writer in turn. A running server sees a change at the next request (it reads
 * users, tokens and sessions from the index every time). Each change made here is written to
 * the audit log before the command returns, with client "cli".
 *
 * Exit statuses: 0 success, 1 a failure (no such user, name taken, no archive), 2 bad use or
 * a bad value (unknown role, weak password, bad name).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "app/app.h"
#include "app/auth.h"
#include "app/files.h"

static int usage(void)
{
    fprintf(stderr,
            "usage: vetpacs user add NAME --role ROLE (--password PW | --password-stdin) "
            "[--data DIR]\n"
            "       vetpacs user passwd NAME (--password PW | --password-stdin) [--data DIR]\n"
            "       vetpacs user set NAME [--role ROLE] [--disable | --enable] [--data DIR]\n"
            "       vetpacs user list [--data DIR]\n"
            "       vetpacs user remove NAME [--data DIR]\n"
            "       vetpacs user token NAME [--label LABEL] [--data DIR]\n"
            "       vetpacs user tokens NAME [--data DIR]\n"
            "       vetpacs user revoke-token NAME (ID | --label LABEL | --all) [--data DIR]\n"
            "roles: admin, radiologist, vet, technician, read-only\n");
    return 2;
}

/* Opens the users of data; create makes the folder when missing. Prints why not. */
static auth *open_auth(const char *data, bool create, const char *verb)
{
    struct stat sb;
    if (stat(data, &sb) != 0) {
        if (!create || errno != ENOENT || mkdir(data, 0777) != 0) {
            fprintf(stderr, "vetpacs %s: %s: %s\n", verb, data,
                    create ? strerror(errno) : "no archive there");
            return NULL;
        }
    } else if (!S_ISDIR(sb.st_mode)) {
        fprintf(stderr, "vetpacs %s: %s: not a folder\n", verb, data);
        return NULL;
    }
    auth *a = NULL;
    vp_error err;
    vp_error_clear(&err);
    if (auth_open(data, NULL, &a, &err) != VP_OK)
        fprintf(stderr, "vetpacs %s: %s: %s\n", verb, data, err.msg);
    return a;
}

/* Exit status of a failed call: a bad value is bad use. */
static int fail(const char *verb, const vp_error *err)
{
    fprintf(stderr, "vetpacs %s: %s\n", verb, err->msg);
    return err->status == VP_EINVAL ? 2 : 1;
}

/* The command's change, in the audit log before the command returns. */
static void audit_cli(auth *a, const char *action, const char *user, const char *detail)
{
    idx_audit r;
    memset(&r, 0, sizeof r);
    const char *who = getenv("USER");
    snprintf(r.user, sizeof r.user, "%s", who && *who ? who : "");
    snprintf(r.action, sizeof r.action, "%s", action);
    snprintf(r.resource_type, sizeof r.resource_type, "user");
    snprintf(r.resource_id, sizeof r.resource_id, "%s", user);
    snprintf(r.client, sizeof r.client, "cli");
    snprintf(r.outcome, sizeof r.outcome, "success");
    snprintf(r.detail, sizeof r.detail, "%s", detail ? detail : "");
    vp_error err;
    vp_error_clear(&err);
    if (auth_audit_now(a, &r, &err) != VP_OK)
        fprintf(stderr, "vetpacs user: warning: not in the audit log: %s\n", err.msg);
}

/* One line of standard input, without its line end, into buf (AUTH_PASSWORD_MAX + 1 bytes);
 * NULL (with a message) when too long or absent. */
static const char *read_password(char *buf, size_t size, const char *verb)
{
    if (!fgets(buf, (int)size, stdin)) {
        fprintf(stderr, "vetpacs %s: no password on standard input\n", verb);
        return NULL;
    }
    size_t n = strlen(buf);
    if (n && buf[n - 1] == '\n')
        buf[--n] = 0;
    else if (n == size - 1 && !feof(stdin)) {
        fprintf(stderr, "vetpacs %s: password is longer than %d bytes\n", verb, AUTH_PASSWORD_MAX);
        return NULL;
    }
    if (n && buf[n - 1] == '\r')
        buf[--n] = 0;
    return buf;
}

/* The options every subcommand may take. */
struct opts {
    const char *data, *name, *role, *password, *label, *id;
    bool password_stdin, disable, enable, all;
};

/* Parses argv: one positional NAME (or ID for revoke-token: the second positional). Returns
 * false (usage printed) on anything unknown. */
static bool parse(int argc, char **argv, struct opts *o, const char *allowed)
{
    memset(o, 0, sizeof *o);
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        bool value = i + 1 < argc;
#define OPT(flag, key, field)                                                                      \
    if (!strcmp(a, flag) && strchr(allowed, key)) {                                                \
        if (!value) {                                                                              \
            fprintf(stderr, "vetpacs user: %s needs a value\n", flag);                             \
            return false;                                                                          \
        }                                                                                          \
        o->field = argv[++i];                                                                      \
        continue;                                                                                  \
    }
#define FLAG(flag, key, field)                                                                     \
    if (!strcmp(a, flag) && strchr(allowed, key)) {                                                \
        o->field = true;                                                                           \
        continue;                                                                                  \
    }
        OPT("--data", 'd', data)
        OPT("--role", 'r', role)
        OPT("--password", 'p', password)
        OPT("--label", 'l', label)
        FLAG("--password-stdin", 'p', password_stdin)
        FLAG("--disable", 'e', disable)
        FLAG("--enable", 'e', enable)
        FLAG("--all", 'a', all)
#undef OPT
#undef FLAG
        if (a[0] == '-' && a[1]) {
            fprintf(stderr, "vetpacs user: unknown or incomplete option %s\n", a);
            return false;
        }
        if (!o->name && strchr(allowed, 'n')) {
            o->name = a;
            continue;
        }
        if (!o->id && strchr(allowed, 'i')) {
            o->id = a;
            continue;
        }
        fprintf(stderr, "vetpacs user: unexpected argument %s\n", a);
        return false;
    }
    if (strchr(allowed, 'n') && !o->name) {
        fprintf(stderr, "vetpacs user: NAME is required\n");
        return false;
    }
    return true;
}

/* The password of add and passwd: --password or --password-stdin, exactly one. */
static const char *password_of(const struct opts *o, char *buf, size_t size, const char *verb)
{
    if (!!o->password == o->password_stdin) {
        fprintf(stderr, "vetpacs %s: give --password PW or --password-stdin\n", verb);
        return NULL;
    }
    return o->password ? o->password : read_password(buf, size, verb);
}

static bool role_of(const char *s, auth_role *r, const char *verb)
{
    if (auth_role_parse(s, r))
        return true;
    fprintf(stderr,
            "vetpacs %s: unknown role \"%s\" (admin, radiologist, vet, technician, read-only)\n",
            verb, s);
    return false;
}

static void iso_time(int64_t ms, char *buf, size_t size)
{
    if (ms <= 0) {
        snprintf(buf, size, "-");
        return;
    }
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    size_t n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, size - n, ".%03dZ", (int)(ms % 1000));
}

/* A value as one cell: tabs and line ends become spaces, so every row stays one line. */
static void cell(const char *v, char sep)
{
    for (; *v; v++)
        putchar(*v == '\t' || *v == '\n' || *v == '\r' ? ' ' : *v);
    putchar(sep);
}

static int cmd_add(int argc, char **argv)
{
    struct opts o;
    char buf[AUTH_PASSWORD_MAX + 2];
    auth_role role;
    if (!parse(argc, argv, &o, "ndrp"))
        return usage();
    if (!o.role) {
        fprintf(stderr, "vetpacs user add: --role is required\n");
        return 2;
    }
    if (!role_of(o.role, &role, "user add"))
        return 2;
    const char *pw = password_of(&o, buf, sizeof buf, "user add");
    if (!pw)
        return 2;
    auth *a = open_auth(app_data_dir(o.data), true, "user add");
    if (!a)
        return 1;
    vp_error err;
    vp_error_clear(&err);
    int rc = 0;
    if (auth_user_add(a, o.name, role, pw, &err) != VP_OK) {
        rc = fail("user add", &err);
    } else {
        audit_cli(a, "user.add", o.name, auth_role_name(role));
        printf("user %s added (%s)\n", o.name, auth_role_name(role));
    }
    auth_close(a);
    memset(buf, 0, sizeof buf);
    return rc;
}

static int cmd_passwd(int argc, char **argv)
{
    struct opts o;
    char buf[AUTH_PASSWORD_MAX + 2];
    if (!parse(argc, argv, &o, "ndp"))
        return usage();
    const char *pw = password_of(&o, buf, sizeof buf, "user passwd");
    if (!pw)
        return 2;
    auth *a = open_auth(app_data_dir(o.data), false, "user passwd");
    if (!a)
        return 1;
    vp_error err;
    vp_error_clear(&err);
    int rc = 0;
    if (auth_user_passwd(a, o.name, pw, &err) != VP_OK)
        rc = fail("user passwd", &err);
    else
        audit_cli(a, "user.passwd", o.name, NULL);
    auth_close(a);
    memset(buf, 0, sizeof buf);
    return rc;
}

static int cmd_set(int argc, char **argv)
{
    struct opts o;
    auth_role role;
    if (!parse(argc, argv, &o, "ndre"))
        return usage();
    if (o.disable && o.enable) {
        fprintf(stderr, "vetpacs user set: --disable and --enable together\n");
        return 2;
    }
    if (!o.role && !o.disable && !o.enable) {
        fprintf(stderr, "vetpacs user set: nothing to set (--role, --disable, --enable)\n");
        return 2;
    }
    if (o.role && !role_of(o.role, &role, "user set"))
        return 2;
    bool disabled = o.disable;
    auth *a = open_auth(app_data_dir(o.data), false, "user set");
    if (!a)
        return 1;
    vp_error err;
    vp_error_clear(&err);
    int rc = 0;
    if (auth_user_set(a, o.name, o.role ? &role : NULL, o.disable || o.enable ? &disabled : NULL,
                      &err) != VP_OK) {
        rc = fail("user set", &err);
    } else {
        char detail[64];
        snprintf(detail, sizeof detail, "%s%s%s", o.role ? auth_role_name(role) : "",
                 o.role && (o.disable || o.enable) ? " " : "",
                 o.disable  ? "disabled"
                 : o.enable ? "enabled"
                            : "");
        audit_cli(a, "user.set", o.name, detail);
    }
    auth_close(a);
    return rc;
}

static vp_status list_one(void *ctx, const auth_user_info *u)
{
    (void)ctx;
    char created[40], updated[40];
    iso_time(u->created_ms, created, sizeof created);
    iso_time(u->updated_ms, updated, sizeof updated);
    cell(u->name, '\t');
    cell(auth_role_name(u->role), '\t');
    cell(u->disabled ? "disabled" : "enabled", '\t');
    cell(created, '\t');
    cell(updated, '\n');
    return VP_OK;
}

static int cmd_list(int argc, char **argv)
{
    struct opts o;
    if (!parse(argc, argv, &o, "d"))
        return usage();
    auth *a = open_auth(app_data_dir(o.data), false, "user list");
    if (!a)
        return 1;
    vp_error err;
    vp_error_clear(&err);
    printf("Name\tRole\tStatus\tCreated\tUpdated\n");
    int rc = auth_user_each(a, list_one, NULL, &err) != VP_OK ? fail("user list", &err) : 0;
    auth_close(a);
    return rc;
}

static int cmd_remove(int argc, char **argv)
{
    struct opts o;
    if (!parse(argc, argv, &o, "nd"))
        return usage();
    auth *a = open_auth(app_data_dir(o.data), false, "user remove");
    if (!a)
        return 1;
    vp_error err;
    vp_error_clear(&err);
    int rc = 0;
    if (auth_user_remove(a, o.name, &err) != VP_OK)
        rc = fail("user remove", &err);
    else
        audit_cli(a, "user.remove", o.name, NULL);
    auth_close(a);
    return rc;
}

static int cmd_token(int argc, char **argv)
{
    struct opts o;
    if (!parse(argc, argv, &o, "ndl"))
        return usage();
    auth *a = open_auth(app_data_dir(o.data), false, "user token");
    if (!a)
        return 1;
    vp_error err;
    vp_error_clear(&err);
    char token[AUTH_CRED_LEN + 1];
    int64_t id = 0;
    int rc = 0;
    if (auth_token_create(a, o.name, o.label, token, &id, &err) != VP_OK) {
        rc = fail("user token", &err);
    } else {
        char detail[96];
        snprintf(detail, sizeof detail, "token %lld%s%.64s", (long long)id, o.label ? " " : "",
                 o.label ? o.label : "");
        audit_cli(a, "token.create", o.name, detail);
        /* The token alone on stdout, for scripts; it is never shown again. */
        printf("%s\n", token);
        fprintf(stderr, "vetpacs user token: token %lld for %s (shown once; keep it secret)\n",
                (long long)id, o.name);
    }
    memset(token, 0, sizeof token);
    auth_close(a);
    return rc;
}

static vp_status token_one(void *ctx, const idx_token *t)
{
    (void)ctx;
    char id[24], created[40], used[40];
    snprintf(id, sizeof id, "%lld", (long long)t->id);
    iso_time(t->created_ms, created, sizeof created);
    iso_time(t->used_ms, used, sizeof used);
    cell(id, '\t');
    cell(t->label, '\t');
    cell(created, '\t');
    cell(used, '\n');
    return VP_OK;
}

static int cmd_tokens(int argc, char **argv)
{
    struct opts o;
    if (!parse(argc, argv, &o, "nd"))
        return usage();
    auth *a = open_auth(app_data_dir(o.data), false, "user tokens");
    if (!a)
        return 1;
    vp_error err;
    vp_error_clear(&err);
    printf("ID\tLabel\tCreated\tLastUsed\n");
    int rc =
        auth_token_each(a, o.name, token_one, NULL, &err) != VP_OK ? fail("user tokens", &err) : 0;
    auth_close(a);
    return rc;
}

static int cmd_revoke(int argc, char **argv)
{
    struct opts o;
    if (!parse(argc, argv, &o, "ndlai"))
        return usage();
    int64_t id = 0;
    if (!!o.id + !!o.label + o.all != 1) {
        fprintf(stderr, "vetpacs user revoke-token: give one of ID, --label LABEL, --all\n");
        return 2;
    }
    if (o.id) {
        char *end;
        errno = 0;
        long long v = strtoll(o.id, &end, 10);
        if (errno || *end || end == o.id || v <= 0) {
            fprintf(stderr, "vetpacs user revoke-token: %s: not a token ID\n", o.id);
            return 2;
        }
        id = v;
    }
    auth *a = open_auth(app_data_dir(o.data), false, "user revoke-token");
    if (!a)
        return 1;
    vp_error err;
    vp_error_clear(&err);
    uint64_t n = 0;
    int rc = 0;
    if (auth_token_revoke(a, o.name, id, o.label, &n, &err) != VP_OK) {
        rc = fail("user revoke-token", &err);
    } else {
        char detail[96];
        snprintf(detail, sizeof detail, "%llu token%s", (unsigned long long)n, n == 1 ? "" : "s");
        audit_cli(a, "token.revoke", o.name, detail);
        printf("%llu token%s revoked\n", (unsigned long long)n, n == 1 ? "" : "s");
    }
    auth_close(a);
    return rc;
}

int app_cmd_user(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*run)(int, char **);
    } subs[] = {
        {"add", cmd_add},       {"passwd", cmd_passwd},       {"set", cmd_set},
        {"list", cmd_list},     {"remove", cmd_remove},       {"token", cmd_token},
        {"tokens", cmd_tokens}, {"revoke-token", cmd_revoke},
    };
    if (argc < 1)
        return usage();
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++)
        if (!strcmp(argv[0], subs[i].name))
            return subs[i].run(argc - 1, argv + 1);
    if (!strcmp(argv[0], "--help") || !strcmp(argv[0], "-h")) {
        usage();
        return 0;
    }
    fprintf(stderr, "vetpacs user: unknown subcommand %s\n", argv[0]);
    return usage();
}

/* ---------------------------------------------------------------------------------------- */
/* vetpacs audit                                                                            */

static int audit_usage(void)
{
    fprintf(stderr, "usage: vetpacs audit [--user U] [--action A] [--resource ID] [--since T] "
                    "[--until T] [--limit N] [--data DIR]\n"
                    "T: YYYY-MM-DD, YYYY-MM-DDTHH:MM[:SS] (UTC), or N followed by s, m, h or d "
                    "(that long ago)\n");
    return 2;
}

/* A time given on the command line, in Unix milliseconds; false when unreadable. */
static bool parse_time(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!errno && end != s && v >= 0 && end[0] && !end[1] && strchr("smhd", end[0])) {
        long long unit = end[0] == 's' ? 1 : end[0] == 'm' ? 60 : end[0] == 'h' ? 3600 : 86400;
        if (v > (long long)(INT64_MAX / 1000 / unit))
            return false;
        *out = (int64_t)time(NULL) * 1000 - (int64_t)v * unit * 1000;
        return true;
    }
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int n = 0, len = (int)strlen(s);
    if (sscanf(s, "%4d-%2d-%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &n) != 3 || n != 10)
        return false;
    if (n < len) {
        int m = 0;
        if (s[n] != 'T' && s[n] != ' ')
            return false;
        if (sscanf(s + n + 1, "%2d:%2d%n", &tm.tm_hour, &tm.tm_min, &m) != 2 || m != 5)
            return false;
        n += 1 + m;
        if (s[n] == ':') {
            if (sscanf(s + n + 1, "%2d%n", &tm.tm_sec, &m) != 1 || m != 2)
                return false;
            n += 3;
        }
        if (s[n] == 'Z')
            n++;
        if (n != len)
            return false;
    }
    if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
        tm.tm_min > 59 || tm.tm_sec > 60 || tm.tm_year < 1970)
        return false;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return false;
    *out = (int64_t)t * 1000;
    return true;
}

static vp_status audit_one(void *ctx, const idx_audit *r)
{
    (void)ctx;
    char t[40], status[16];
    iso_time(r->time_ms, t, sizeof t);
    snprintf(status, sizeof status, "%d", r->status);
    cell(t, '\t');
    cell(r->user, '\t');
    cell(r->action, '\t');
    cell(r->resource_type, '\t');
    cell(r->resource_id, '\t');
    cell(r->client, '\t');
    cell(r->outcome, '\t');
    cell(r->status ? status : "", '\t');
    cell(r->detail, '\n');
    return VP_OK;
}

int app_cmd_audit(int argc, char **argv)
{
    const char *data = NULL;
    idx_audit_filter f;
    memset(&f, 0, sizeof f);
    f.limit = 100;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            audit_usage();
            return 0;
        }
        if (!v) {
            fprintf(stderr, "vetpacs audit: %s: %s\n", a,
                    a[0] == '-' ? "needs a value" : "unexpected argument");
            return audit_usage();
        }
        i++;
        if (!strcmp(a, "--data")) {
            data = v;
        } else if (!strcmp(a, "--user")) {
            f.user = v;
        } else if (!strcmp(a, "--action")) {
            f.action = v;
        } else if (!strcmp(a, "--resource")) {
            f.resource_id = v;
        } else if (!strcmp(a, "--since") || !strcmp(a, "--until")) {
            int64_t t;
            if (!parse_time(v, &t)) {
                fprintf(stderr, "vetpacs audit: %s %s: not a time\n", a, v);
                return audit_usage();
            }
            *(!strcmp(a, "--since") ? &f.since_ms : &f.until_ms) = t;
        } else if (!strcmp(a, "--limit")) {
            char *end;
            errno = 0;
            long long n = strtoll(v, &end, 10);
            if (errno || *end || end == v || n < 0) {
                fprintf(stderr, "vetpacs audit: --limit %s: not a count\n", v);
                return audit_usage();
            }
            f.limit = (uint64_t)n; /* 0: all */
        } else {
            fprintf(stderr, "vetpacs audit: unknown option %s\n", a);
            return audit_usage();
        }
    }
    auth *au = open_auth(app_data_dir(data), false, "audit");
    if (!au)
        return 1;
    vp_error err;
    vp_error_clear(&err);
    printf("Time\tUser\tAction\tResourceType\tResource\tClient\tOutcome\tStatus\tDetail\n");
    int rc = auth_audit_query(au, &f, audit_one, NULL, &err) != VP_OK ? fail("audit", &err) : 0;
    auth_close(au);
    return rc;
}
