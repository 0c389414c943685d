/* SPDX-License-Identifier: MIT */
/*
 * `vetpacs echo` and `vetpacs send`: the Verification (PS3.4 A) and Storage (PS3.4 B) service
 * class user on the command line. `send` reads every file's header first, proposes one
 * presentation context per (SOP class, transfer syntax) found plus an Explicit/Implicit VR
 * Little Endian fallback per SOP class with native files, and sends as many files per
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
 * -1 after printing a usage error. */
static int parse_client(const char *cmd, const char *usage, int argc, char **argv, struct client *c)
{
    *c = (struct client){DEFAULT_CALLING_AE, DEFAULT_CALLED_AE, DEFAULT_TIMEOUT_S, NULL, 0};
    int i = 0;
    for (; i < argc && argv[i][0] == '-' && argv[i][1] == '-'; i++) {
        if (!strcmp(argv[i], "--aet") && i + 1 < argc) {
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
    const scu_context ctx = {SCU_VERIFICATION_SOP_CLASS, 2, ts};
    scu_opts o;
    client_opts(&c, &o);
    o.contexts = &ctx;
    o.context_count = 1;
    vp_error err;
    vp_error_clear(&err);
    scu *s;
    if (scu_open(c.host, c.port, &o, &s, &err) != VP_OK) {
        fprintf(stderr, "vetpacs echo: %s\n", err.msg);
        return 1;
    }
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
    g->native = scu_file_native(f);
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
        ctx[n] = (scu_context){gr->sop_class, 1, &own_ts[n]};
        n++;
        if (gr->native && !fallback_counted(p, b, g, gr->sop_class)) {
            own_ts[n] = NULL;
            ctx[n++] = (scu_context){gr->sop_class, 2, fallback};
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
    /* The identifier from KEYWORD[=VALUE] (PS3.4 C.4.1.1.3.1): a key without a value is a
     * return key (universal matching). Values are UTF-8 (Specific Character Set ISO_IR 192). */
    dcm_dataset *id = dcm_dataset_new();
    int rc = 2;
    if (!id || dcm_dataset_set_str(id, DCM_TAG_SPECIFIC_CHARACTER_SET, DCM_VR_CS, "ISO_IR 192"))
        goto done;
    for (; i < argc; i++) {
        char kw[80];
        const char *eq = strchr(argv[i], '=');
        size_t n = eq ? (size_t)(eq - argv[i]) : strlen(argv[i]);
        snprintf(kw, sizeof kw, "%.*s", (int)(n < sizeof kw ? n : sizeof kw - 1), argv[i]);
        const dcm_dict_entry *e = dcm_dict_by_keyword(kw);
        if (!e || e->mask != 0xFFFFFFFFu) {
            fprintf(stderr, "vetpacs find: '%s' is not a DICOM keyword\n", kw);
            goto done;
        }
        enum dcm_vr vr = dcm_dict_vr(e->tag);
        vp_status st = vr == DCM_VR_SQ ? dcm_dataset_set_sequence(id, e->tag, NULL)
                       : eq && eq[1]   ? dcm_dataset_set_str(id, e->tag, vr, eq + 1)
                                       : dcm_dataset_set(id, e->tag, vr, NULL, 0, NULL);
        if (st) {
            fprintf(stderr, "vetpacs find: cannot set %s\n", kw);
            goto done;
        }
    }
    const char *level;
    size_t level_len;
    if (dcm_dataset_get_str(id, DCM_TAG(0x0008, 0x0052), 0, &level, &level_len) != VP_OK) {
        dcm_dataset_set_str(id, DCM_TAG(0x0008, 0x0052), DCM_VR_CS, "STUDY");
        dcm_dataset_get_str(id, DCM_TAG(0x0008, 0x0052), 0, &level, &level_len);
    }
    /* PATIENT level exists only in the Patient Root model (PS3.4 C.6.1). */
    bool patient_root = level_len >= 7 && memcmp(level, "PATIENT", 7) == 0;
    const char *sop_class = patient_root ? PATIENT_ROOT_FIND : STUDY_ROOT_FIND;
    static const char *const ts[] = {DCM_TS_EXPLICIT_LE, DCM_TS_IMPLICIT_LE};
    const scu_context ctx = {sop_class, 2, ts};
    scu_opts o;
    client_opts(&c, &o);
    o.contexts = &ctx;
    o.context_count = 1;
    vp_error err = {0};
    scu *s;
    rc = 1;
    if (scu_open(c.host, c.port, &o, &s, &err) != VP_OK) {
        fprintf(stderr, "vetpacs find: %s\n", err.msg);
        goto done;
    }
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
