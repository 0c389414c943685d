/* SPDX-License-Identifier: MIT */
/*
 * `vetpacs import` and `vetpacs check`: put files into the archive through the ingest
 * pipeline, and re-verify every object against its index row and checksum.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app/app.h"
#include "app/files.h"
#include "app/ingest.h"

/* Files are imported by several threads: each object costs a few fsyncs, which overlap, and
 * the index rows of concurrent objects share one commit (ingest's group commit). */
#define IMPORT_THREADS 8

struct import_run {
    ingest *g;
    const app_files *list;
    atomic_size_t next;   /* next file to take */
    pthread_mutex_t lock; /* guards what follows, and stderr */
    size_t counts[INGEST_OUTCOME_COUNT], failed, done;
    bool tty;
};

static void *import_worker(void *arg)
{
    struct import_run *r = arg;
    for (;;) {
        size_t k = atomic_fetch_add(&r->next, 1);
        if (k >= r->list->n)
            return NULL;
        ingest_outcome oc;
        vp_error err;
        vp_error_clear(&err);
        vp_status st = ingest_file(r->g, r->list->path[k], &oc, &err);
        pthread_mutex_lock(&r->lock);
        if (st == VP_OK) {
            r->counts[oc]++;
        } else {
            r->failed++;
            if (r->tty)
                fputc('\n', stderr);
            fprintf(stderr, "vetpacs import: %s: %s\n", r->list->path[k], err.msg);
        }
        r->done++;
        if (r->tty && (r->done % 16 == 0 || r->done == r->list->n))
            app_progress(r->done, r->list->n, r->failed > 0);
        pthread_mutex_unlock(&r->lock);
    }
}

int app_cmd_import(int argc, char **argv)
{
    const char *data = NULL;
    int i = 0;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "--data") && i + 1 < argc) {
            data = argv[++i];
        } else {
            fprintf(stderr, "vetpacs import: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (i >= argc) {
        fprintf(stderr, "usage: vetpacs import [--data DIR] FILE|DIR...\n");
        return 2;
    }
    /* Files collected first so the progress bar knows the total. */
    app_files list = {0};
    const char *bad;
    if (app_files_collect(&list, argv + i, argc - i, &bad) != 0) {
        fprintf(stderr, "vetpacs import: %s: %s\n", bad ? bad : "file list",
                bad ? "cannot read" : "out of memory");
        app_files_free(&list);
        return 1;
    }
    ingest *g;
    vp_error err;
    vp_error_clear(&err);
    if (ingest_open(app_data_dir(data), NULL, &g, &err) != VP_OK) {
        fprintf(stderr, "vetpacs import: %s: %s\n", app_data_dir(data), err.msg);
        app_files_free(&list);
        return 1;
    }
    struct import_run r = {.g = g, .list = &list, .tty = isatty(2)};
    pthread_mutex_init(&r.lock, NULL);
    pthread_t th[IMPORT_THREADS];
    size_t nth = 0;
    while (nth < IMPORT_THREADS && nth < list.n &&
           pthread_create(&th[nth], NULL, import_worker, &r) == 0)
        nth++;
    import_worker(&r); /* this thread too (alone when none could start) */
    for (size_t t = 0; t < nth; t++)
        pthread_join(th[t], NULL);
    pthread_mutex_destroy(&r.lock);
    size_t *counts = r.counts, failed = r.failed;
    app_files_free(&list);
    ingest_close(g);
    printf("%zu stored, %zu identical, %zu replaced, %zu failed\n", counts[INGEST_STORED],
           counts[INGEST_IDENTICAL], counts[INGEST_REPLACED], failed);
    return failed ? 1 : 0;
}

static void report(void *ctx, const char *msg)
{
    (void)ctx;
    fprintf(stderr, "vetpacs check: %s\n", msg);
}

int app_cmd_check(int argc, char **argv)
{
    const char *data = NULL;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--data") && i + 1 < argc) {
            data = argv[++i];
        } else {
            fprintf(stderr, "usage: vetpacs check [--data DIR]\n");
            return 2;
        }
    }
    struct stat sb;
    if (stat(app_data_dir(data), &sb) != 0) {
        fprintf(stderr, "vetpacs check: %s: no archive there\n", app_data_dir(data));
        return 1;
    }
    ingest *g;
    vp_error err;
    vp_error_clear(&err);
    if (ingest_open(app_data_dir(data), NULL, &g, &err) != VP_OK) {
        fprintf(stderr, "vetpacs check: %s: %s\n", app_data_dir(data), err.msg);
        return 1;
    }
    ingest_check c;
    vp_status st = ingest_verify(g, report, NULL, &c, &err);
    ingest_close(g);
    if (st) {
        fprintf(stderr, "vetpacs check: %s\n", err.msg);
        return 1;
    }
    printf("%llu patients, %llu studies, %llu series, %llu instances, %llu errors\n",
           (unsigned long long)c.patients, (unsigned long long)c.studies,
           (unsigned long long)c.series, (unsigned long long)c.instances,
           (unsigned long long)c.errors);
    return c.errors ? 1 : 0;
}
