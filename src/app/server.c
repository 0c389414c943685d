/* SPDX-License-Identifier: MIT */
/*
 * `vetpacs serve`: the DICOM listener. The accept loop only accepts: every connection gets its
 * own thread at once, and the A-ASSOCIATE-RQ is read there under ARTIM, so a client that sends
 * half a request (or nothing) delays nobody else. Associations beyond max_associations are
 * still read and answered with A-ASSOCIATE-RJ "local limit exceeded" (PS3.8 9.3.4, transient),
 * which tells a modality to retry later; only past a hard cap on threads is a connection
 * closed unanswered. SIGINT/SIGTERM stop accepting and let running associations finish.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "app/app.h"
#include "app/config.h"
#include "app/ingest.h"
#include "app/log.h"
#include "app/scp.h"
#include "net/net.h"

#define VETPACS_CONNECTION_SLACK 16 /* connections over max_associations that still get an RJ */

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
    stop_signal = sig;
}

struct server {
    scp_shared shared;
    atomic_uint connections; /* connection threads running */
    pthread_mutex_t lock;
    pthread_cond_t idle; /* signalled when connections drops to 0 */
};

struct conn {
    struct server *srv;
    int fd;
    char peer[64];
};

static void *conn_main(void *arg)
{
    struct conn *c = arg;
    struct server *srv = c->srv;
    scp_report r;
    scp_run(&srv->shared, c->fd, c->peer, &r);
    /* One line per association: who, what, how much, how long, how it ended. */
    double secs = (double)r.duration_ms / 1000.0;
    if (r.calling_ae[0]) {
        char finds[128] = "";
        int k = 0;
        if (r.finds)
            k += snprintf(finds + k, sizeof finds - (size_t)k, ", %llu find",
                          (unsigned long long)r.finds);
        if (r.moves)
            k += snprintf(finds + k, sizeof finds - (size_t)k, ", %llu move",
                          (unsigned long long)r.moves);
        if (r.gets)
            k += snprintf(finds + k, sizeof finds - (size_t)k, ", %llu get",
                          (unsigned long long)r.gets);
        if (r.moves || r.gets)
            snprintf(finds + k, sizeof finds - (size_t)k, " (%llu sent)",
                     (unsigned long long)r.sent);
        log_info("association %s %s -> %s: %llu stored, %llu failed, %llu echo%s, %.1f MB in "
                 "%.2f s: %s",
                 r.peer, r.calling_ae, r.called_ae, (unsigned long long)r.objects,
                 (unsigned long long)r.failures, (unsigned long long)r.echoes, finds,
                 (double)r.bytes / 1e6, secs, r.result);
    } else
        log_warn("connection %s: no association (%.2f s): %s", r.peer, secs, r.result);
    vp_free(c);
    pthread_mutex_lock(&srv->lock);
    if (atomic_fetch_sub(&srv->connections, 1) == 1)
        pthread_cond_broadcast(&srv->idle);
    pthread_mutex_unlock(&srv->lock);
    return NULL;
}

static void on_duplicate(void *ctx, const char *uid, ingest_outcome oc, bool rejected)
{
    (void)ctx;
    if (rejected)
        log_warn("duplicate SOP Instance %s with other content: rejected (policy reject)", uid);
    else if (oc == INGEST_KEPT)
        log_warn("duplicate SOP Instance %s with other content: kept the archived one (policy "
                 "keep)",
                 uid);
    else
        log_warn("duplicate SOP Instance %s with other content: replaced (policy replace)", uid);
}

static void usage(FILE *out)
{
    fprintf(out, "usage: vetpacs serve [--config FILE] [--data DIR] [--dicom-port N] "
                 "[--http-port N] [--aet AET] [--bind ADDR] [--peer AE@HOST:PORT]...\n"
                 "See docs/configuration.md for the config file and VETPACS_* variables.\n");
}

static bool parse_port(const char *s, uint16_t *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < 1 || v > 65535)
        return false;
    *out = (uint16_t)v;
    return true;
}

/* Defaults < config file < environment < options (docs/configuration.md). */
static int load_config(int argc, char **argv, config *cfg)
{
    config_defaults(cfg);
    vp_error err = {0};
    const char *file = getenv("VETPACS_CONFIG");
    for (int i = 0; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--config"))
            file = argv[i + 1];
    if (file && *file && config_load_file(cfg, file, &err) != VP_OK) {
        fprintf(stderr, "vetpacs serve: %s\n", err.msg);
        return 2;
    }
    if (config_apply_env(cfg, &err) != VP_OK) {
        fprintf(stderr, "vetpacs serve: %s\n", err.msg);
        return 2;
    }
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 1;
        }
        if (!v || strncmp(a, "--", 2) != 0) {
            fprintf(stderr, "vetpacs serve: unexpected argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
        i++;
        bool ok = true;
        if (!strcmp(a, "--config"))
            continue;
        else if (!strcmp(a, "--data"))
            ok = snprintf(cfg->data_dir, sizeof cfg->data_dir, "%s", v) < (int)sizeof cfg->data_dir;
        else if (!strcmp(a, "--aet"))
            ok = snprintf(cfg->ae_title, sizeof cfg->ae_title, "%s", v) < (int)sizeof cfg->ae_title;
        else if (!strcmp(a, "--bind"))
            ok = snprintf(cfg->bind, sizeof cfg->bind, "%s", v) < (int)sizeof cfg->bind;
        else if (!strcmp(a, "--peer")) {
            vp_error perr = {0};
            if (config_add_peer(cfg, v, &perr) != VP_OK) {
                fprintf(stderr, "vetpacs serve: %s\n", perr.msg);
                return 2;
            }
        } else if (!strcmp(a, "--dicom-port"))
            ok = parse_port(v, &cfg->dicom_port);
        else if (!strcmp(a, "--http-port"))
            ok = parse_port(v, &cfg->http_port);
        else {
            fprintf(stderr, "vetpacs serve: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
        if (!ok) {
            fprintf(stderr, "vetpacs serve: bad value for %s: '%s'\n", a, v);
            return 2;
        }
    }
    if (config_validate(cfg, &err) != VP_OK) {
        fprintf(stderr, "vetpacs serve: %s\n", err.msg);
        return 2;
    }
    return 0;
}

int app_cmd_serve(int argc, char **argv)
{
    config *cfg = vp_calloc(1, sizeof *cfg);
    if (!cfg) {
        fprintf(stderr, "vetpacs serve: out of memory\n");
        return 1;
    }
    int rc = load_config(argc, argv, cfg);
    if (rc) {
        vp_free(cfg);
        return rc == 1 ? 0 : rc;
    }
    vp_error err = {0};
    ingest_opts io = {.duplicates = (ingest_duplicates)cfg->duplicates,
                      .on_duplicate = on_duplicate,
                      .compress_ts = config_compression_ts(cfg->compression)};
    struct server srv = {0};
    srv.shared.cfg = cfg;
    if (ingest_open(cfg->data_dir, &io, &srv.shared.ingest, &err) != VP_OK) {
        fprintf(stderr, "vetpacs serve: %s: %s\n", cfg->data_dir, err.msg);
        vp_free(cfg);
        return 1;
    }
    uint64_t kept, removed;
    ingest_recovered(srv.shared.ingest, &kept, &removed);
    if (kept || removed)
        log_warn("recovery: %llu objects whose sync was unconfirmed are complete and kept, %llu "
                 "incomplete ones (never acknowledged) removed",
                 (unsigned long long)kept, (unsigned long long)removed);
    int lfd;
    uint16_t port;
    if (net_listen(cfg->bind, cfg->dicom_port, 128, &lfd, &port, &err) != VP_OK) {
        fprintf(stderr, "vetpacs serve: %s\n", err.msg);
        ingest_close(srv.shared.ingest);
        vp_free(cfg);
        return 1;
    }
    pthread_mutex_init(&srv.lock, NULL);
    pthread_cond_init(&srv.idle, NULL);
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN); /* a peer resetting mid-write is an EPIPE, not our death */
    signal(SIGXFSZ, SIG_IGN); /* over a file size limit: an EFBIG write error, answered A700 */

    printf("vetpacs listening: DICOM AE %s on %s:%u, data in %s\n", cfg->ae_title,
           cfg->bind[0] ? cfg->bind : "*", port, cfg->data_dir);
    printf("  point modalities at AE title %s, port %u; check with: vetpacs echo --call %s "
           "localhost %u\n",
           cfg->ae_title, port, cfg->ae_title, port);
    fflush(stdout);
    log_info("DICOM listener %s:%u AE %s, max %u associations, max PDU %u, duplicates %s, "
             "compression %s",
             cfg->bind[0] ? cfg->bind : "*", port, cfg->ae_title, cfg->max_associations,
             cfg->max_pdu_length, config_duplicates_name(cfg->duplicates),
             config_compression_name(cfg->compression));

    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    unsigned hard_cap = cfg->max_associations + VETPACS_CONNECTION_SLACK;
    while (!stop_signal) {
        int fd;
        char peer[64];
        vp_error aerr = {0};
        vp_status st = net_accept(lfd, net_deadline(250), &fd, peer, sizeof peer, &aerr);
        if (st == VP_ETIMEOUT)
            continue;
        if (st == VP_EAGAIN) {
            if (strstr(aerr.msg, "descriptors") || strstr(aerr.msg, "files"))
                usleep(50 * 1000); /* out of descriptors: let connections finish */
            continue;
        }
        if (st) {
            log_error("accept: %s", aerr.msg);
            break;
        }
        if (atomic_load(&srv.connections) >= hard_cap) {
            log_warn("connection %s closed: %u connections open", peer, hard_cap);
            close(fd);
            continue;
        }
        struct conn *c = vp_malloc(sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        c->srv = &srv;
        c->fd = fd;
        snprintf(c->peer, sizeof c->peer, "%s", peer);
        atomic_fetch_add(&srv.connections, 1);
        pthread_t t;
        if (pthread_create(&t, &attr, conn_main, c) != 0) {
            atomic_fetch_sub(&srv.connections, 1);
            log_warn("connection %s closed: cannot start a thread", peer);
            close(fd);
            vp_free(c);
        }
    }
    pthread_attr_destroy(&attr);
    close(lfd);
    atomic_store(&srv.shared.stopping, true);
    log_info("stopping (signal %d): waiting for %u connections", (int)stop_signal,
             atomic_load(&srv.connections));
    /* Running associations end by themselves (release, abort or their timeouts); after 30 s
     * the process exits under them: what they acknowledged is durable already. */
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 30;
    pthread_mutex_lock(&srv.lock);
    while (atomic_load(&srv.connections) > 0)
        if (pthread_cond_timedwait(&srv.idle, &srv.lock, &until) == ETIMEDOUT)
            break;
    unsigned left = atomic_load(&srv.connections);
    pthread_mutex_unlock(&srv.lock);
    if (left) {
        log_warn("stopped with %u connections still open", left);
        return 0;
    }
    ingest_close(srv.shared.ingest);
    pthread_mutex_destroy(&srv.lock);
    pthread_cond_destroy(&srv.idle);
    log_info("stopped");
    vp_free(cfg);
    return 0;
}
