/* SPDX-License-Identifier: MIT */
/* File lists for import and send, and their progress bar. */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "app/files.h"

static app_files *walking; /* nftw has no context argument */
static bool walk_oom;

static int collect(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    if (type != FTW_F)
        return 0;
    app_files *f = walking;
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 256;
        char **v = realloc(f->path, cap * sizeof *v);
        if (!v) {
            walk_oom = true;
            return -1;
        }
        f->path = v;
        f->cap = cap;
    }
    if (!(f->path[f->n] = strdup(path))) {
        walk_oom = true;
        return -1;
    }
    f->n++;
    return 0;
}

int app_files_collect(app_files *f, char *const *paths, int count, const char **bad)
{
    walking = f;
    walk_oom = false;
    for (int i = 0; i < count; i++) {
        if (nftw(paths[i], collect, 32, FTW_PHYS) != 0) {
            *bad = walk_oom ? NULL : paths[i];
            walking = NULL;
            return -1;
        }
    }
    walking = NULL;
    return 0;
}

void app_files_free(app_files *f)
{
    for (size_t k = 0; k < f->n; k++)
        free(f->path[k]);
    free(f->path);
    memset(f, 0, sizeof *f);
}

void app_progress(size_t done, size_t total, bool errors)
{
    int width = 40, fill = total ? (int)((double)done / (double)total * width) : width;
    fprintf(stderr, "\r[%.*s%*s] %zu/%zu%s", fill, "########################################",
            width - fill, "", done, total, errors ? " (errors)" : "");
    if (done == total)
        fputc('\n', stderr);
}

const char *app_data_dir(const char *given)
{
    if (given)
        return given;
    const char *env = getenv("VETPACS_DATA");
    return env && *env ? env : "./vetpacs-data";
}
