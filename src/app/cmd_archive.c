/* SPDX-License-Identifier: MIT */
/*
 * `vetpacs import` and `vetpacs check`: put files into the archive through the ingest
 * pipeline, and re-verify every object against its index row and checksum.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app/app.h"
#include "app/files.h"
#include "app/ingest.h"

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
    bool tty = isatty(2);
    size_t counts[INGEST_OUTCOME_COUNT] = {0}, failed = 0;
    for (size_t k = 0; k < list.n; k++) {
        ingest_outcome oc;
        vp_error_clear(&err);
        if (ingest_file(g, list.path[k], &oc, &err) == VP_OK) {
            counts[oc]++;
        } else {
            failed++;
            if (tty)
                fputc('\n', stderr);
            fprintf(stderr, "vetpacs import: %s: %s\n", list.path[k], err.msg);
        }
        if (tty && (k % 16 == 0 || k + 1 == list.n))
            app_progress(k + 1, list.n, failed > 0);
    }
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
