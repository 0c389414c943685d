/* SPDX-License-Identifier: MIT */
/*
 * `vetpacs echo` and `vetpacs send`: the Verification (PS3.4 A) and Storage (PS3.4 B) service
 * class user on the command line. `send` reads every file's header first, proposes one
 * presentation context per (SOP class, transfer syntax) found plus an Explicit/Implicit VR
 * Little Endian fallback per SOP class with files that can be re-encoded (native ones, and
 * compressed ones the pixel module decodes), and sends as many files per
 * association as the 128 context IDs allow (PS3.8 9.3.2.2), in as few associations as that
 * permits.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "app/cmd_scu.h"
#include "app/files.h"
#include "app/scu.h"

#define DEFAULT_CALLING_AE "VETPACS-SCU"
#define DEFAULT_CALLED_AE "ANY-SCP"
#define DEFAULT_TIMEOUT_S 30.0
#define MAX_PDU_LENGTH 262144 /* our 51H, as the server announces (conformance statement) */

/* Options shared by both commands. */
struct client {
    const char *calling_ae; /* --aet */
    const char *called_ae;  /* --call */
    double timeout_s;       /* --timeout */
    const char *host;       /* HOST */
    uint16_t port;          /* PORT */
};

/* Parses the options and HOST PORT; returns the index of the first argument after them, or
 * -1 after printing a usage error. A command's own option with a value, extra (may be NULL),
 * lands in *extra_val. */
static int parse_client_x(const char *cmd, const char *usage, int argc, char **argv,
                          struct client *c, const char *extra, const char **extra_val)
{
    *c = (struct client){DEFAULT_CALLING_AE, DEFAULT_CALLED_AE, DEFAULT_TIMEOUT_S, NULL, 0};
    int i = 0;
    for (; i < argc && argv[i][0] == '-' && argv[i][1] == '-'; i++) {
        if (extra && !strcmp(argv[i], extra) && i + 1 < argc) {
            *extra_val = argv[++i];
        } else if (!strcmp(argv[i], "--aet") && i + 1 < argc) {
            c->calling_ae = argv[++i];
        } else if (!strcmp(argv[i], "--call") && i + 1 < argc) {
            c->called_ae = argv[++i];
        } else if (!strcmp(argv[i], "--timeout") && i + 1 < argc) {
            char *end;
            c->timeout_s = strtod(argv[++i], &end);
            if (*end || !(c->timeout_s > 0) || c->timeout_s > 86400) {
                fprintf(stderr, "vetpacs %s: --timeout takes seconds (0 < S <= 86400)\n", cmd);
                return -1;
            }
        } else {
            fprintf(stderr, "vetpacs %s: unknown option %s\nusage: %s\n", cmd, argv[i], usage);
            return -1;
        }
    }
    if (argc - i < 2) {
        fprintf(stderr, "usage: %s\n", usage);
        return -1;
    }
    c->host = argv[i];
    char *end;
    errno = 0;
    unsigned long port = strtoul(argv[i + 1], &end, 10);
    if (*end || errno || port == 0 || port > 65535 || argv[i + 1][0] == '-') {
        fprintf(stderr, "vetpacs %s: port '%s' is not a number from 1 to 65535\n", cmd,
                argv[i + 1]);
        return -1;
    }
    c->port = (uint16_t)port;
    const char *aes[2] = {c->calling_ae, c->called_ae};
    for (int k = 0; k < 2; k++) {
        if (!ul_ae_title_valid(aes[k], strlen(aes[k]))) {
            fprintf(stderr,
                    "vetpacs %s: AE title '%s' is not valid (1-16 characters, no backslash "
                    "or control characters)\n",
                    cmd, aes[k]);
            return -1;
        }
    }
    return i + 2;
}

static int parse_client(const char *cmd, const char *usage, int argc, char **argv, struct client *c)
{
    return parse_client_x(cmd, usage, argc, argv, c, NULL, NULL);
}

static void client_opts(const struct client *c, scu_opts *o)
{
    int64_t ms = (int64_t)(c->timeout_s * 1000.0 + 0.5);
    *o = (scu_opts){.calling_ae = c->calling_ae,
                    .called_ae = c->called_ae,
                    .connect_timeout_ms = ms,
                    .acse_timeout_ms = ms,
                    .dimse_timeout_ms = ms,
                    .max_pdu_length = MAX_PDU_LENGTH};
}

/* Opens an association proposing n contexts; NULL after printing why. */
static scu *open_client(const char *cmd, const struct client *c, const scu_context *ctx, size_t n)
{
    scu_opts o;
    client_opts(c, &o);
    o.contexts = ctx;
    o.context_count = n;
    vp_error err;
    vp_error_clear(&err);
    scu *s;
    if (scu_open(c->host, c->port, &o, &s, &err) != VP_OK) {
        fprintf(stderr, "vetpacs %s: %s\n", cmd, err.msg);
        return NULL;
    }
    return s;
}

/* ------------------------------------------------------------------------------------------ */
/* echo                                                                                       */

#define ECHO_USAGE "vetpacs echo [--aet AET] [--call AET] [--timeout S] HOST PORT"

int app_cmd_echo(int argc, char **argv)
{
    struct client c;
    int i = parse_client("echo", ECHO_USAGE, argc, argv, &c);
    if (i < 0)
        return 2;
    if (i != argc) {
        fprintf(stderr, "usage: %s\n", ECHO_USAGE);
        return 2;
    }
    /* Verification in Explicit VR Little Endian, or Implicit VR Little Endian, the default
     * transfer syntax every SCP supports (PS3.5 10.1). */
    static const char *const ts[] = {DCM_TS_EXPLICIT_LE, DCM_TS_IMPLICIT_LE};
    const scu_context ctx = {SCU_VERIFICATION_SOP_CLASS, 2, ts, false};
    scu *s = open_client("echo", &c, &ctx, 1);
    if (!s)
        return 1;
    vp_error err;
    vp_error_clear(&err);
    scu_response rsp;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    vp_status st = scu_echo(s, &rsp, &err);
    clock_gettime(CLOCK_MONOTONIC, &b);
    if (st != VP_OK) {
        fprintf(stderr, "vetpacs echo: %s\n", err.msg);
        scu_close(s);
        return 1;
    }
    double ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
    printf("C-ECHO %s (%s) %04X %s%s%s%s in %.1f ms\n", scu_peer(s), c.called_ae, rsp.status,
           dimse_status_name(DIMSE_SVC_ECHO, rsp.status), rsp.has_error_comment ? " (" : "",
           rsp.error_comment, rsp.has_error_comment ? ")" : "", ms);
    vp_error_clear(&err);
    if (scu_release(s, &err) != VP_OK)
        fprintf(stderr, "vetpacs echo: release: %s\n", err.msg);
    scu_close(s);
    return dimse_status_class(rsp.status) == DIMSE_CLASS_SUCCESS ? 0 : 1;
}

/* ------------------------------------------------------------------------------------------ */
/* send: planning                                                                             */

/* One (SOP class, transfer syntax) pair found among the files: one presentation context. */
struct group {
    char sop_class[DCM_UID_MAX + 1]; /* abstract syntax */
    char ts[DCM_UID_MAX + 1];        /* the files' transfer syntax */
    bool native;                     /* re-encodable: the LE fallback context applies */
    size_t batch;                    /* association it is proposed on */
};

/* A file to send. */
struct item {
    char *path;   /* borrowed from the file list */
    size_t group; /* index into the groups; SIZE_MAX when the header could not be read */
};

struct plan {
    struct item *items;   /* every file found, in the order found */
    size_t n, cap;        /* items used and allocated */
    struct group *groups; /* distinct (SOP class, transfer syntax) pairs, in order found */
    size_t group_count;   /* groups used */
    size_t group_cap;     /* groups allocated */
    size_t batches;       /* associations needed */
};

/* The group of (sop_class, ts), added when new. SIZE_MAX when out of memory. */
static size_t group_of(struct plan *p, const scu_file *f)
{
    for (size_t g = 0; g < p->group_count; g++)
        if (!strcmp(p->groups[g].sop_class, scu_file_sop_class(f)) &&
            !strcmp(p->groups[g].ts, scu_file_transfer_syntax(f)))
            return g;
    if (p->group_count == p->group_cap) {
        size_t cap = p->group_cap ? p->group_cap * 2 : 16;
        struct group *v = realloc(p->groups, cap * sizeof *v);
        if (!v)
            return SIZE_MAX;
        p->groups = v;
        p->group_cap = cap;
    }
    struct group *g = &p->groups[p->group_count];
    snprintf(g->sop_class, sizeof g->sop_class, "%s", scu_file_sop_class(f));
    snprintf(g->ts, sizeof g->ts, "%s", scu_file_transfer_syntax(f));
    g->native = scu_file_reencodable(f);
    g->batch = 0;
    return p->group_count++;
}

/* Whether an earlier group of batch b (before index upto) has sop_class and is native, so
 * the SOP class's LE fallback context is already counted on that association. */
static bool fallback_counted(const struct plan *p, size_t b, size_t upto, const char *sop_class)
{
    for (size_t g = 0; g < upto; g++)
        if (p->groups[g].batch == b && p->groups[g].native &&
            !strcmp(p->groups[g].sop_class, sop_class))
            return true;
    return false;
}

/* Assigns groups to associations: each group needs its own context, and a native group also
 * its SOP class's fallback context unless the association has it already. A group that does
 * not fit starts the next association (PS3.8 9.3.2.2: at most 128 contexts). */
static void plan_batches(struct plan *p)
{
    size_t batch = 0, used = 0;
    for (size_t g = 0; g < p->group_count; g++) {
        struct group *gr = &p->groups[g];
        size_t need = 1 + (gr->native && !fallback_counted(p, batch, g, gr->sop_class));
        if (used + need > SCU_MAX_CONTEXTS) {
            batch++;
            used = 0;
            need = 1 + gr->native;
        }
        gr->batch = batch;
        used += need;
    }
    p->batches = p->group_count ? batch + 1 : 0;
}

/* The presentation contexts of association b into ctx, own_ts holding the one-syntax lists
 * (both have room for SCU_MAX_CONTEXTS). Returns how many. */
static size_t batch_contexts(const struct plan *p, size_t b, scu_context *ctx, const char **own_ts)
{
    static const char *const fallback[] = {DCM_TS_EXPLICIT_LE, DCM_TS_IMPLICIT_LE};
    size_t n = 0;
    for (size_t g = 0; g < p->group_count; g++) {
        const struct group *gr = &p->groups[g];
        if (gr->batch != b)
            continue;
        /* The files' own transfer syntax alone, so that the acceptor's preference cannot make
         * us re-encode what it would take as it is. */
        own_ts[n] = gr->ts;
        ctx[n] = (scu_context){gr->sop_class, 1, &own_ts[n], false};
        n++;
        if (gr->native && !fallback_counted(p, b, g, gr->sop_class)) {
            own_ts[n] = NULL;
            ctx[n++] = (scu_context){gr->sop_class, 2, fallback, false};
        }
    }
    return n;
}

/* ------------------------------------------------------------------------------------------ */
/* send: the transfer                                                                         */

struct stats {
    size_t done, total; /* files handled, files found */
    size_t sent;        /* Success */
    size_t warnings;    /* stored with a Warning status */
    size_t failed;      /* anything else */
    uint64_t bytes;     /* data set bytes sent */
    bool tty;           /* stderr is a terminal: progress bar */
};

static void progress(const struct stats *st)
{
    app_progress(st->done, st->total, st->failed > 0);
}

/* One line about one file on stderr, clear of the progress bar. */
static void file_message(struct stats *st, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void file_message(struct stats *st, const char *path, const char *fmt, ...)
{
    if (st->tty)
        fputs("\r\033[K", stderr);
    fprintf(stderr, "vetpacs send: %s: ", path);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void tick(struct stats *st)
{
    st->done++;
    if (st->tty && (st->done % 16 == 0 || st->done == st->total))
        progress(st);
}

/* Sends one file on s; counts the outcome. */
static void send_one(scu *s, const char *path, struct stats *st)
{
    vp_error err;
    vp_error_clear(&err);
    scu_response rsp;
    scu_store_info info;
    if (scu_store_path(s, path, NULL, &rsp, &info, &err) != VP_OK) {
        st->failed++;
        file_message(st, path, "%s", err.msg);
        return;
    }
    st->bytes += info.bytes;
    const char *name = dimse_status_name(DIMSE_SVC_STORE, rsp.status);
    switch (dimse_status_class(rsp.status)) {
    case DIMSE_CLASS_SUCCESS: st->sent++; return;
    case DIMSE_CLASS_WARNING:
        st->warnings++;
        file_message(st, path, "%04X %s%s%s%s", rsp.status, name, *rsp.error_comment ? " (" : "",
                     rsp.error_comment, *rsp.error_comment ? ")" : "");
        return;
    default:
        st->failed++;
        file_message(st, path, "%04X %s%s%s%s", rsp.status, name, *rsp.error_comment ? " (" : "",
                     rsp.error_comment, *rsp.error_comment ? ")" : "");
        return;
    }
}

/* Sends the files of association b, opening it again when it ends under a file (the file
 * that ended it has failed; the next one gets a new association). */
static void send_batch(const struct client *c, const struct plan *p, size_t b, struct stats *st)
{
    scu_context ctx[SCU_MAX_CONTEXTS];
    const char *own_ts[SCU_MAX_CONTEXTS];
    size_t n = batch_contexts(p, b, ctx, own_ts);
    scu_opts o;
    client_opts(c, &o);
    o.contexts = ctx;
    o.context_count = n;
    scu *s = NULL;
    vp_error err;
    for (size_t i = 0; i < p->n; i++) {
        const struct item *it = &p->items[i];
        if (it->group == SIZE_MAX || p->groups[it->group].batch != b)
            continue;
        if (!s) {
            vp_error_clear(&err);
            if (scu_open(c->host, c->port, &o, &s, &err) != VP_OK) {
                /* Every file left for this association fails with the reason, said once. */
                size_t left = 0;
                for (size_t k = i; k < p->n; k++)
                    if (p->items[k].group != SIZE_MAX && p->groups[p->items[k].group].batch == b)
                        left++;
                if (st->tty)
                    fputs("\r\033[K", stderr);
                fprintf(stderr, "vetpacs send: %s (%zu file%s not sent)\n", err.msg, left,
                        left == 1 ? "" : "s");
                st->failed += left;
                for (size_t k = 0; k < left; k++)
                    tick(st);
                return;
            }
        }
        send_one(s, it->path, st);
        tick(st);
        if (!scu_usable(s)) {
            scu_close(s);
            s = NULL;
        }
    }
    if (s) {
        vp_error_clear(&err);
        if (scu_release(s, &err) != VP_OK) {
            if (st->tty)
                fputs("\r\033[K", stderr);
            fprintf(stderr, "vetpacs send: release: %s\n", err.msg);
        }
        scu_close(s);
    }
}

#define SEND_USAGE "vetpacs send [--aet AET] [--call AET] [--timeout S] HOST PORT FILE|DIR..."

int app_cmd_send(int argc, char **argv)
{
    struct client c;
    int i = parse_client("send", SEND_USAGE, argc, argv, &c);
    if (i < 0)
        return 2;
    if (i >= argc) {
        fprintf(stderr, "usage: %s\n", SEND_USAGE);
        return 2;
    }
    struct plan p = {0};
    app_files files = {0};
    int rc = 1;
    const char *bad;
    if (app_files_collect(&files, argv + i, argc - i, &bad) != 0) {
        fprintf(stderr, "vetpacs send: %s: %s\n", bad ? bad : "file list",
                bad ? "cannot read" : "out of memory");
        goto done;
    }
    if (files.n && !(p.items = calloc(files.n, sizeof *p.items))) {
        fprintf(stderr, "vetpacs send: out of memory\n");
        goto done;
    }
    for (size_t k = 0; k < files.n; k++)
        p.items[k] = (struct item){files.path[k], SIZE_MAX}; /* paths stay files' */
    p.n = p.cap = files.n;
    struct stats st = {.total = p.n, .tty = isatty(2)};
    /* Headers first: the presentation contexts depend on every file's SOP class and
     * transfer syntax. */
    for (size_t k = 0; k < p.n; k++) {
        vp_error err;
        vp_error_clear(&err);
        scu_file *f;
        if (scu_file_open(p.items[k].path, &f, &err) != VP_OK) {
            st.failed++;
            file_message(&st, p.items[k].path, "%s", err.msg);
            tick(&st);
            continue;
        }
        p.items[k].group = group_of(&p, f);
        scu_file_close(f);
        if (p.items[k].group == SIZE_MAX) {
            fprintf(stderr, "vetpacs send: out of memory\n");
            goto done;
        }
    }
    plan_batches(&p);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (size_t b = 0; b < p.batches; b++)
        send_batch(&c, &p, b, &st);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    size_t stored = st.sent + st.warnings;
    printf("%zu sent, %zu warnings, %zu failed (%.1f MB in %.2f s, %.1f images/s)\n", st.sent,
           st.warnings, st.failed, (double)st.bytes / 1e6, secs,
           secs > 0 ? (double)stored / secs : 0.0);
    rc = st.failed ? 1 : 0;
done:
    app_files_free(&files);
    free(p.items);
    free(p.groups);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* find                                                                                       */

#define FIND_USAGE                                                                                 \
    "vetpacs find [--aet AET] [--call AET] [--timeout S] HOST PORT KEYWORD[=VALUE]..."
#define PATIENT_ROOT_FIND "1.2.840.10008.5.1.4.1.2.1.1"
#define STUDY_ROOT_FIND "1.2.840.10008.5.1.4.1.2.2.1"

struct find_out {
    const dcm_dataset *keys; /* the identifier sent: which keys to print, in order */
    size_t matches;
};

/* One line per match: the keys asked for, Keyword=value, values in UTF-8. */
static vp_status print_match(void *ctx, const uint8_t *data, size_t len, const char *ts)
{
    struct find_out *f = ctx;
    dcm_dataset *ds;
    vp_error err = {0};
    vp_status st = dcm_dataset_read_mem(data, len, ts, NULL, &ds, &err);
    if (st) {
        fprintf(stderr, "vetpacs find: an answer does not decode: %s\n", err.msg);
        return st;
    }
    const char *cs;
    size_t cs_len;
    dcm_dataset_charset(ds, &cs, &cs_len);
    vp_buf line;
    vp_buf_init(&line, 0);
    for (size_t i = 0; i < dcm_dataset_count(f->keys); i++) {
        const dcm_element *k = dcm_dataset_at(f->keys, i);
        uint32_t tag = dcm_element_tag(k);
        if (tag == DCM_TAG_SPECIFIC_CHARACTER_SET || tag == DCM_TAG(0x0008, 0x0052))
            continue;
        const dcm_element *el = dcm_dataset_find(ds, tag);
        vp_buf_printf(&line, "%s%s=", line.len ? "  " : "", dcm_dict_keyword(tag));
        if (el && dcm_vr_is_string(dcm_element_vr(el)) && dcm_element_length(el))
            dcm_text_to_utf8(cs, cs_len, dcm_element_vr(el), dcm_element_value(el),
                             dcm_element_length(el), &line);
        while (line.len && (line.data[line.len - 1] == ' ' || line.data[line.len - 1] == 0))
            line.len--; /* padding (PS3.5 6.2) is not part of the value */
    }
    printf("%.*s\n", (int)line.len, (const char *)line.data);
    vp_buf_fini(&line);
    dcm_dataset_free(ds);
    f->matches++;
    return VP_OK;
}

/* The identifier from KEYWORD[=VALUE] (PS3.4 C.4.1.1.3.1): a key without a value is a
 * return key (universal matching). Values are UTF-8 (Specific Character Set ISO_IR 192).
 * Query/Retrieve Level is STUDY unless given; *patient_root when it is PATIENT, which only
 * the Patient Root model has (PS3.4 C.6.1). NULL after printing why. */
static dcm_dataset *identifier(const char *cmd, int argc, char **argv, int i, bool *patient_root)
{
    dcm_dataset *id = dcm_dataset_new();
    if (!id || dcm_dataset_set_str(id, DCM_TAG_SPECIFIC_CHARACTER_SET, DCM_VR_CS, "ISO_IR 192")) {
        fprintf(stderr, "vetpacs %s: out of memory\n", cmd);
        dcm_dataset_free(id);
        return NULL;
    }
    for (; i < argc; i++) {
        char kw[80];
        const char *eq = strchr(argv[i], '=');
        size_t n = eq ? (size_t)(eq - argv[i]) : strlen(argv[i]);
        snprintf(kw, sizeof kw, "%.*s", (int)(n < sizeof kw ? n : sizeof kw - 1), argv[i]);
        const dcm_dict_entry *e = dcm_dict_by_keyword(kw);
        if (!e || e->mask != 0xFFFFFFFFu) {
            fprintf(stderr, "vetpacs %s: '%s' is not a DICOM keyword\n", cmd, kw);
            dcm_dataset_free(id);
            return NULL;
        }
        enum dcm_vr vr = dcm_dict_vr(e->tag);
        vp_status st = vr == DCM_VR_SQ ? dcm_dataset_set_sequence(id, e->tag, NULL)
                       : eq && eq[1]   ? dcm_dataset_set_str(id, e->tag, vr, eq + 1)
                                       : dcm_dataset_set(id, e->tag, vr, NULL, 0, NULL);
        if (st) {
            fprintf(stderr, "vetpacs %s: cannot set %s\n", cmd, kw);
            dcm_dataset_free(id);
            return NULL;
        }
    }
    const char *level;
    size_t level_len;
    if (dcm_dataset_get_str(id, DCM_TAG(0x0008, 0x0052), 0, &level, &level_len) != VP_OK) {
        dcm_dataset_set_str(id, DCM_TAG(0x0008, 0x0052), DCM_VR_CS, "STUDY");
        dcm_dataset_get_str(id, DCM_TAG(0x0008, 0x0052), 0, &level, &level_len);
    }
    *patient_root = level_len >= 7 && memcmp(level, "PATIENT", 7) == 0;
    return id;
}

int app_cmd_find(int argc, char **argv)
{
    struct client c;
    int i = parse_client("find", FIND_USAGE, argc, argv, &c);
    if (i < 0)
        return 2;
    if (i == argc) {
        fprintf(stderr, "usage: %s\n", FIND_USAGE);
        return 2;
    }
    int rc = 2;
    bool patient_root;
    dcm_dataset *id = identifier("find", argc, argv, i, &patient_root);
    if (!id)
        goto done;
    const char *sop_class = patient_root ? PATIENT_ROOT_FIND : STUDY_ROOT_FIND;
    static const char *const ts[] = {DCM_TS_EXPLICIT_LE, DCM_TS_IMPLICIT_LE};
    const scu_context ctx = {sop_class, 2, ts, false};
    vp_error err = {0};
    rc = 1;
    scu *s = open_client("find", &c, &ctx, 1);
    if (!s)
        goto done;
    struct find_out f = {.keys = id};
    scu_response rsp;
    vp_status st = scu_find(s, sop_class, id, print_match, &f, &rsp, &err);
    if (st != VP_OK) {
        fprintf(stderr, "vetpacs find: %s\n", err.msg);
        scu_close(s);
        goto done;
    }
    fprintf(stderr, "%zu matches; %04X %s%s%s%s\n", f.matches, rsp.status,
            dimse_status_name(DIMSE_SVC_FIND, rsp.status), rsp.has_error_comment ? " (" : "",
            rsp.error_comment, rsp.has_error_comment ? ")" : "");
    vp_error_clear(&err);
    scu_release(s, &err);
    scu_close(s);
    rc = dimse_status_class(rsp.status) == DIMSE_CLASS_SUCCESS ? 0 : 1;
done:
    dcm_dataset_free(id);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* move, get                                                                                  */

#define MOVE_USAGE                                                                                 \
    "vetpacs move [--aet AET] [--call AET] [--timeout S] [--dest AE] HOST PORT "                   \
    "KEYWORD=VALUE..."
#define GET_USAGE                                                                                  \
    "vetpacs get [--aet AET] [--call AET] [--timeout S] [--out DIR] HOST PORT KEYWORD=VALUE..."
#define PATIENT_ROOT_MOVE "1.2.840.10008.5.1.4.1.2.1.2"
#define STUDY_ROOT_MOVE "1.2.840.10008.5.1.4.1.2.2.2"
#define PATIENT_ROOT_GET "1.2.840.10008.5.1.4.1.2.1.3"
#define STUDY_ROOT_GET "1.2.840.10008.5.1.4.1.2.2.3"

/* Storage SOP classes proposed for the C-STORE sub-operations of a C-GET (PS3.4 B.5): what
 * veterinary practices produce. 127 contexts at most fit beside the C-GET's own. */
static const char *const get_storage_classes[] = {
    "1.2.840.10008.5.1.4.1.1.1",        /* Computed Radiography */
    "1.2.840.10008.5.1.4.1.1.1.1",      /* Digital X-Ray - For Presentation */
    "1.2.840.10008.5.1.4.1.1.1.1.1",    /* Digital X-Ray - For Processing */
    "1.2.840.10008.5.1.4.1.1.1.2",      /* Digital Mammography - For Presentation */
    "1.2.840.10008.5.1.4.1.1.1.3",      /* Digital Intra-Oral X-Ray - For Presentation */
    "1.2.840.10008.5.1.4.1.1.1.3.1",    /* Digital Intra-Oral X-Ray - For Processing */
    "1.2.840.10008.5.1.4.1.1.2",        /* CT */
    "1.2.840.10008.5.1.4.1.1.2.1",      /* Enhanced CT */
    "1.2.840.10008.5.1.4.1.1.4",        /* MR */
    "1.2.840.10008.5.1.4.1.1.4.1",      /* Enhanced MR */
    "1.2.840.10008.5.1.4.1.1.6.1",      /* Ultrasound */
    "1.2.840.10008.5.1.4.1.1.3.1",      /* Ultrasound Multi-frame */
    "1.2.840.10008.5.1.4.1.1.6.2",      /* Enhanced US Volume */
    "1.2.840.10008.5.1.4.1.1.7",        /* Secondary Capture */
    "1.2.840.10008.5.1.4.1.1.7.1",      /* Multi-frame Single Bit SC */
    "1.2.840.10008.5.1.4.1.1.7.2",      /* Multi-frame Grayscale Byte SC */
    "1.2.840.10008.5.1.4.1.1.7.3",      /* Multi-frame Grayscale Word SC */
    "1.2.840.10008.5.1.4.1.1.7.4",      /* Multi-frame True Color SC */
    "1.2.840.10008.5.1.4.1.1.12.1",     /* X-Ray Angiographic */
    "1.2.840.10008.5.1.4.1.1.12.2",     /* X-Ray Radiofluoroscopic */
    "1.2.840.10008.5.1.4.1.1.13.1.1",   /* X-Ray 3D Angiographic */
    "1.2.840.10008.5.1.4.1.1.20",       /* Nuclear Medicine */
    "1.2.840.10008.5.1.4.1.1.128",      /* PET */
    "1.2.840.10008.5.1.4.1.1.77.1.1",   /* VL Endoscopic */
    "1.2.840.10008.5.1.4.1.1.77.1.1.1", /* Video Endoscopic */
    "1.2.840.10008.5.1.4.1.1.77.1.2",   /* VL Microscopic */
    "1.2.840.10008.5.1.4.1.1.77.1.4",   /* VL Photographic */
    "1.2.840.10008.5.1.4.1.1.77.1.4.1", /* Video Photographic */
    "1.2.840.10008.5.1.4.1.1.77.1.5.1", /* Ophthalmic Photography 8 Bit */
    "1.2.840.10008.5.1.4.1.1.88.11",    /* Basic Text SR */
    "1.2.840.10008.5.1.4.1.1.88.22",    /* Enhanced SR */
    "1.2.840.10008.5.1.4.1.1.88.33",    /* Comprehensive SR */
    "1.2.840.10008.5.1.4.1.1.88.59",    /* Key Object Selection Document */
    "1.2.840.10008.5.1.4.1.1.104.1",    /* Encapsulated PDF */
    "1.2.840.10008.5.1.4.1.1.11.1",     /* Grayscale Softcopy Presentation State */
    "1.2.840.10008.5.1.4.1.1.66.4",     /* Segmentation */
    "1.2.840.10008.5.1.4.1.1.481.1",    /* RT Image */
};

/* Transfer syntaxes taken for them: the uncompressed ones and the compressed ones a PACS
 * keeps, so objects arrive as stored (PS3.5 Annex A). */
static const char *const get_transfer_syntaxes[] = {
    DCM_TS_EXPLICIT_LE,        DCM_TS_IMPLICIT_LE,        "1.2.840.10008.1.2.1.99",
    "1.2.840.10008.1.2.4.50",  "1.2.840.10008.1.2.4.51",  "1.2.840.10008.1.2.4.57",
    "1.2.840.10008.1.2.4.70",  "1.2.840.10008.1.2.4.80",  "1.2.840.10008.1.2.4.81",
    "1.2.840.10008.1.2.4.90",  "1.2.840.10008.1.2.4.91",  "1.2.840.10008.1.2.5",
    "1.2.840.10008.1.2.4.100", "1.2.840.10008.1.2.4.102", "1.2.840.10008.1.2.4.103",
};

/* The classes most often stored compressed get one more context per compressed syntax: an
 * acceptor takes one transfer syntax per context, and an object stored compressed can only
 * come back in its own (PS3.5 8.2: no transcoding on the sending side yet). */
static const char *const get_compressed_classes[] = {
    "1.2.840.10008.5.1.4.1.1.1",   "1.2.840.10008.5.1.4.1.1.1.1",    "1.2.840.10008.5.1.4.1.1.6.1",
    "1.2.840.10008.5.1.4.1.1.3.1", "1.2.840.10008.5.1.4.1.1.2",      "1.2.840.10008.5.1.4.1.1.4",
    "1.2.840.10008.5.1.4.1.1.7",   "1.2.840.10008.5.1.4.1.1.77.1.1",
};
static const char *const get_compressed_syntaxes[] = {
    "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.80",
    "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91", "1.2.840.10008.1.2.5",
};

struct progress {
    const char *cmd;
    bool tty; /* stderr is a terminal: one status line, rewritten */
};

static void on_progress(void *ctx, const scu_response *p)
{
    struct progress *g = ctx;
    if (g->tty)
        fprintf(stderr, "\r%u remaining, %u completed, %u failed, %u warnings  ", p->remaining,
                p->completed, p->failed, p->warning);
}

/* The Failed SOP Instance UID List of the final response, one line each on stderr. */
static vp_status on_failed_list(void *ctx, const uint8_t *data, size_t len, const char *ts)
{
    struct progress *g = ctx;
    dcm_dataset *ds;
    vp_error err = {0};
    if (dcm_dataset_read_mem(data, len, ts, NULL, &ds, &err) != VP_OK)
        return VP_OK; /* the counts say enough */
    const char *v;
    size_t vlen;
    for (size_t i = 0; dcm_dataset_get_str(ds, DCM_TAG(0x0008, 0x0058), i, &v, &vlen) == VP_OK; i++)
        fprintf(stderr, "vetpacs %s: not sent: %.*s\n", g->cmd, (int)vlen, v);
    dcm_dataset_free(ds);
    return VP_OK;
}

/* Prints the final response; the exit status: 0 all sent, 1 otherwise. */
static int retrieve_report(const char *cmd, struct progress *g, const scu_response *rsp,
                           enum dimse_service svc)
{
    if (g->tty)
        fputc('\n', stderr);
    fprintf(stderr, "%u completed, %u failed, %u warnings; %04X %s%s%s%s\n", rsp->completed,
            rsp->failed, rsp->warning, rsp->status, dimse_status_name(svc, rsp->status),
            rsp->has_error_comment ? " (" : "", rsp->error_comment,
            rsp->has_error_comment ? ")" : "");
    (void)cmd;
    return dimse_status_class(rsp->status) == DIMSE_CLASS_SUCCESS ? 0 : 1;
}

int app_cmd_move(int argc, char **argv)
{
    struct client c;
    const char *dest = NULL;
    int i = parse_client_x("move", MOVE_USAGE, argc, argv, &c, "--dest", &dest);
    if (i < 0)
        return 2;
    if (i == argc) {
        fprintf(stderr, "usage: %s\n", MOVE_USAGE);
        return 2;
    }
    /* The Move Destination (PS3.7 9.1.4.1.5) is an AE the peer knows; by default ours. */
    if (!dest)
        dest = c.calling_ae;
    if (!ul_ae_title_valid(dest, strlen(dest))) {
        fprintf(stderr, "vetpacs move: --dest '%s' is not a valid AE title\n", dest);
        return 2;
    }
    bool patient_root;
    dcm_dataset *id = identifier("move", argc, argv, i, &patient_root);
    if (!id)
        return 2;
    const char *sop_class = patient_root ? PATIENT_ROOT_MOVE : STUDY_ROOT_MOVE;
    static const char *const ts[] = {DCM_TS_EXPLICIT_LE, DCM_TS_IMPLICIT_LE};
    const scu_context ctx = {sop_class, 2, ts, false};
    vp_error err = {0};
    int rc = 1;
    scu *s = open_client("move", &c, &ctx, 1);
    if (!s) {
        dcm_dataset_free(id);
        return 1;
    }
    struct progress g = {"move", isatty(2)};
    scu_retrieve_opts ro = {.on_progress = on_progress, .ctx = &g, .on_identifier = on_failed_list};
    scu_response rsp;
    if (scu_move(s, sop_class, dest, id, &ro, &rsp, &err) != VP_OK) {
        fprintf(stderr, "vetpacs move: %s\n", err.msg);
    } else {
        rc = retrieve_report("move", &g, &rsp, DIMSE_SVC_MOVE);
        vp_error_clear(&err);
        scu_release(s, &err);
    }
    scu_close(s);
    dcm_dataset_free(id);
    return rc;
}

/* Writes the objects of a C-GET as Part 10 files DIR/<SOP Instance UID>.dcm: into a
 * temporary name, fsync'd, then renamed, before the C-STORE-RSP says Success. */
struct receiver {
    const char *dir;
    FILE *f; /* the object being received */
    char tmp[4096], dst[4096];
    size_t received; /* objects written */
    uint64_t bytes;
};

static vp_status file_sink_write(void *ctx, const void *p, size_t n)
{
    return fwrite(p, 1, n, ctx) == n ? VP_OK : VP_EIO;
}

static vp_status rx_begin(void *ctx, const char *sop_class, const char *sop_instance,
                          const char *ts, vp_error *err)
{
    struct receiver *r = ctx;
    /* The UID names the file: only digits and dots may reach the path. */
    if (!dcm_uid_valid(sop_instance, strlen(sop_instance)))
        return vp_error_set(err, VP_EINVAL, "Affected SOP Instance UID is not a valid UID");
    snprintf(r->dst, sizeof r->dst, "%s/%s.dcm", r->dir, sop_instance);
    snprintf(r->tmp, sizeof r->tmp, "%s/.%s.part", r->dir, sop_instance);
    if (!(r->f = fopen(r->tmp, "wb")))
        return vp_error_set(err, VP_EIO, "%s: %s", r->tmp, strerror(errno));
    dcm_dataset *meta = dcm_dataset_new();
    vp_status st = meta ? VP_OK : VP_ENOMEM;
    if (st == VP_OK &&
        (st = dcm_dataset_set_str(meta, DCM_TAG(0x0002, 0x0002), DCM_VR_UI, sop_class)) == VP_OK &&
        (st = dcm_dataset_set_str(meta, DCM_TAG(0x0002, 0x0003), DCM_VR_UI, sop_instance)) ==
            VP_OK) {
        dcm_sink sink = {file_sink_write, r->f};
        st = dcm_part10_write_header(meta, ts, &sink, err);
    } else {
        vp_error_set(err, st, "cannot build the meta group");
    }
    dcm_dataset_free(meta);
    return st;
}

static vp_status rx_data(void *ctx, const uint8_t *p, size_t n, vp_error *err)
{
    struct receiver *r = ctx;
    if (fwrite(p, 1, n, r->f) != n)
        return vp_error_set(err, VP_EIO, "%s: %s", r->tmp, strerror(errno));
    r->bytes += n;
    return VP_OK;
}

static uint16_t rx_end(void *ctx, vp_status st, vp_error *err)
{
    struct receiver *r = ctx;
    if (r->f) {
        if (st == VP_OK && (fflush(r->f) != 0 || fsync(fileno(r->f)) != 0))
            st = vp_error_set(err, VP_EIO, "%s: %s", r->tmp, strerror(errno));
        if (fclose(r->f) != 0 && st == VP_OK)
            st = vp_error_set(err, VP_EIO, "%s: %s", r->tmp, strerror(errno));
        r->f = NULL;
        if (st == VP_OK && rename(r->tmp, r->dst) != 0)
            st = vp_error_set(err, VP_EIO, "%s: %s", r->dst, strerror(errno));
        if (st != VP_OK)
            unlink(r->tmp);
    }
    if (st == VP_OK)
        r->received++;
    return dimse_status_from_vp(DIMSE_SVC_STORE, st);
}

int app_cmd_get(int argc, char **argv)
{
    struct client c;
    const char *out = ".";
    int i = parse_client_x("get", GET_USAGE, argc, argv, &c, "--out", &out);
    if (i < 0)
        return 2;
    if (i == argc) {
        fprintf(stderr, "usage: %s\n", GET_USAGE);
        return 2;
    }
    struct stat sb;
    if (stat(out, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        fprintf(stderr, "vetpacs get: --out %s is not a folder\n", out);
        return 2;
    }
    bool patient_root;
    dcm_dataset *id = identifier("get", argc, argv, i, &patient_root);
    if (!id)
        return 2;
    const char *sop_class = patient_root ? PATIENT_ROOT_GET : STUDY_ROOT_GET;
    static const char *const ts[] = {DCM_TS_EXPLICIT_LE, DCM_TS_IMPLICIT_LE};
    size_t nclass = sizeof get_storage_classes / sizeof get_storage_classes[0];
    size_t ncomp = sizeof get_compressed_classes / sizeof get_compressed_classes[0];
    size_t nsyn = sizeof get_compressed_syntaxes / sizeof get_compressed_syntaxes[0];
    scu_context ctx[SCU_MAX_CONTEXTS];
    size_t n = 0;
    ctx[n++] = (scu_context){sop_class, 2, ts, false};
    for (size_t k = 0; k < nclass; k++)
        ctx[n++] = (scu_context){get_storage_classes[k],
                                 sizeof get_transfer_syntaxes / sizeof get_transfer_syntaxes[0],
                                 get_transfer_syntaxes, true};
    for (size_t k = 0; k < ncomp; k++)
        for (size_t t = 0; t < nsyn && n < SCU_MAX_CONTEXTS; t++)
            ctx[n++] =
                (scu_context){get_compressed_classes[k], 1, &get_compressed_syntaxes[t], true};
    vp_error err = {0};
    int rc = 1;
    scu *s = open_client("get", &c, ctx, n);
    if (!s) {
        dcm_dataset_free(id);
        return 1;
    }
    struct progress g = {"get", isatty(2)};
    struct receiver r = {.dir = out};
    scu_receiver recv = {&r, rx_begin, rx_data, rx_end};
    scu_retrieve_opts ro = {
        .on_progress = on_progress, .ctx = &g, .on_identifier = on_failed_list, .receiver = &recv};
    scu_response rsp;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (scu_get(s, sop_class, id, &ro, &rsp, &err) != VP_OK) {
        fprintf(stderr, "vetpacs get: %s\n", err.msg);
    } else {
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        rc = retrieve_report("get", &g, &rsp, DIMSE_SVC_GET);
        printf("%zu received into %s (%.1f MB in %.2f s)\n", r.received, out, (double)r.bytes / 1e6,
               secs);
        vp_error_clear(&err);
        scu_release(s, &err);
    }
    if (r.f) { /* the peer went away mid-object */
        fclose(r.f);
        unlink(r.tmp);
    }
    scu_close(s);
    dcm_dataset_free(id);
    return rc;
}
