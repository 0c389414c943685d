/* SPDX-License-Identifier: MIT */
/*
 * The ingest pipeline: the one path every object takes into the archive, whatever brought it
 * (a file import now; C-STORE and STOW-RS later). Bytes stream into a temporary file, the
 * header is parsed from it, the SOP Instance is checked, the object is made durable in the
 * store and then in the index; only after both may the sender be told it succeeded.
 */
#ifndef VP_APP_INGEST_H
#define VP_APP_INGEST_H

#include "base/base.h"

typedef struct ingest ingest;

/* What happened to an object. */
typedef enum ingest_outcome {
    INGEST_STORED,    /* new instance */
    INGEST_IDENTICAL, /* the same SOP Instance with the same bytes was there: nothing written */
    INGEST_REPLACED,  /* the same SOP Instance with other bytes: replaced (default policy) */
} ingest_outcome;

/* Opens the archive in data_dir (objects under it, index.db beside them). */
vp_status ingest_open(const char *data_dir, ingest **out, vp_error *err);
void ingest_close(ingest *g);

/* Imports one Part 10 file through the pipeline. */
vp_status ingest_file(ingest *g, const char *path, ingest_outcome *outcome, vp_error *err);

/* Re-verifies every indexed object against its checksum; counts what the index holds. */
typedef struct ingest_check {
    uint64_t patients, studies, series, instances; /* index counts */
    uint64_t errors;                               /* objects missing or differing */
} ingest_check;
/* report is called for each object in error (may be NULL). */
vp_status ingest_verify(ingest *g, void (*report)(void *ctx, const char *msg), void *ctx,
                        ingest_check *out, vp_error *err);

#endif
