/* SPDX-License-Identifier: MIT */
/* What the file commands share: the list of files named on the command line (folders
 * walked) and the progress bar they draw on a terminal. */
#ifndef VP_APP_FILES_H
#define VP_APP_FILES_H

#include <stdbool.h>
#include <stddef.h>

typedef struct app_files {
    char **path; /* n paths, owned */
    size_t n, cap;
} app_files;

/* Appends the regular files named by paths[0..count-1], walking folders (symbolic links are
 * not followed), in the order found. Returns 0, or -1 with the argument that could not be
 * read (or NULL when out of memory) in *bad. Not thread-safe (nftw has no context). */
int app_files_collect(app_files *f, char *const *paths, int count, const char **bad);
void app_files_free(app_files *f);

/* The archive's data folder for the commands that open it: given (--data), else
 * $VETPACS_DATA, else ./vetpacs-data (as `vetpacs serve` defaults). */
const char *app_data_dir(const char *given);

/* "\r[####    ] done/total" on stderr, " (errors)" when errors, a newline when done. */
void app_progress(size_t done, size_t total, bool errors);

#endif
