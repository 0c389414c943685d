/* SPDX-License-Identifier: MIT */
/*
 * The ingest pipeline: the one path every object takes into the archive, whatever brought it
 * (a file import, a C-STORE, later STOW-RS). Bytes stream into a temporary file (a 2 GB clip
 * never sits in memory), the header is parsed from it, the SOP Instance is checked against
 * what the sender announced, the object is made durable in the store and then in the index;
 * only after both may the sender be told it succeeded.
 *
 * An ingest is shared by every thread of the server. Index rows of concurrent objects are
 * committed together (group commit): one transaction and one WAL sync for all the objects
 * that became durable while the previous commit was running.
 */
#ifndef VP_APP_INGEST_H
#define VP_APP_INGEST_H

#include <stdbool.h>
#include <stdint.h>

#include "base/base.h"
#include "idx/idx.h"

typedef struct ingest ingest;
typedef struct ingest_stream ingest_stream;

/* What happened to an object. */
typedef enum ingest_outcome {
    INGEST_STORED,    /* new instance */
    INGEST_IDENTICAL, /* the same SOP Instance with the same bytes was there: nothing written */
    INGEST_REPLACED,  /* the same SOP Instance with other bytes: replaced (policy "replace") */
    INGEST_KEPT,      /* the same SOP Instance with other bytes: old one kept (policy "keep") */
    INGEST_OUTCOME_COUNT
} ingest_outcome;

/* Same SOP Instance UID with other bytes (see config_duplicates, same order). */
typedef enum ingest_duplicates {
    INGEST_DUP_REPLACE,
    INGEST_DUP_KEEP,
    INGEST_DUP_REJECT,
} ingest_duplicates;

typedef struct ingest_opts {
    ingest_duplicates duplicates;
    /* Called for every duplicate with other bytes (replaced, kept or rejected), for the log.
     * May be called from any thread. NULL = not logged. */
    void (*on_duplicate)(void *ctx, const char *sop_instance_uid, ingest_outcome outcome,
                         bool rejected);
    void *ctx;
    /* Lossless compression at rest: native images are stored in this transfer syntax (RLE
     * Lossless or JPEG-LS Lossless) when that makes them smaller; NULL stores every object as
     * received. The object's content is unchanged (PS3.5 8.2: only its encoding), so it is
     * still the object that was acknowledged. */
    const char *compress_ts;
} ingest_opts;

/* Opens the archive in data_dir (objects under it, index.db beside them). opts may be NULL
 * (replace duplicates, no log). */
vp_status ingest_open(const char *data_dir, const ingest_opts *opts, ingest **out, vp_error *err);
void ingest_close(ingest *g);
/* Rows found pending at open (crash recovery): kept because their file was complete, and
 * removed with their incomplete file. */
void ingest_recovered(const ingest *g, uint64_t *kept, uint64_t *removed);

/* Imports one Part 10 file through the pipeline. */
vp_status ingest_file(ingest *g, const char *path, ingest_outcome *outcome, vp_error *err);

/* What a network sender announced with the data set (C-STORE-RQ, PS3.7 9.1.1). */
typedef struct ingest_origin {
    const char *sop_class_uid;    /* Affected SOP Class UID */
    const char *sop_instance_uid; /* Affected SOP Instance UID */
    const char *transfer_syntax;  /* of the data set bytes (the presentation context's) */
    const char *source_ae;        /* the sender's AE title: (0002,0016); may be NULL */
    const char *receiving_ae;     /* ours: (0002,0018); may be NULL */
} ingest_origin;

/*
 * A data set arriving in pieces: begin writes the Part 10 preamble and meta group (PS3.10 7.1)
 * to a temporary file, write appends data set bytes as they come, end checks and commits.
 * The statuses of end say what went wrong in terms each protocol maps to its own:
 *   VP_EPARSE, VP_ETRUNC  the data set cannot be decoded        (C-STORE C000)
 *   VP_EINVAL             it does not match what was announced,
 *                         or lacks the UIDs an archive needs     (A900)
 *   VP_ECONFLICT          duplicate rejected by policy           (0111)
 *   VP_EIO, VP_ENOMEM, VP_ELIMIT  the archive could not keep it (A700)
 * end and cancel free the stream.
 */
vp_status ingest_stream_begin(ingest *g, const ingest_origin *origin, ingest_stream **out,
                              vp_error *err);
vp_status ingest_stream_write(ingest_stream *s, const void *p, size_t n, vp_error *err);
vp_status ingest_stream_end(ingest_stream *s, ingest_outcome *outcome, vp_error *err);
void ingest_stream_cancel(ingest_stream *s);
/* Bytes written so far (meta group included). */
uint64_t ingest_stream_size(const ingest_stream *s);

/* Re-verifies every indexed object against its checksum; counts what the index holds. */
typedef struct ingest_check {
    uint64_t patients, studies, series, instances; /* index counts */
    uint64_t errors;                               /* objects missing or differing */
} ingest_check;
/* report is called for each object in error (may be NULL). */
vp_status ingest_verify(ingest *g, void (*report)(void *ctx, const char *msg), void *ctx,
                        ingest_check *out, vp_error *err);

/* Runs a query of the index (idx_select) on a read connection of its own (one query at a
 * time; commits go on meanwhile). fn runs with that connection locked: it must only copy
 * what it needs, never wait on a peer. */
vp_status ingest_select(ingest *g, const char *sql, const char *const *params, size_t n,
                        idx_row_fn fn, void *ctx, vp_error *err);

/* Lends a read connection of the index for the caller's own use: an association serving
 * C-FIND, C-MOVE or C-GET steps its cursors there while answering, without holding the
 * shared one of ingest_select. Give it back (with no cursor open) with ingest_reader_give,
 * which keeps a few for the next borrower. */
vp_status ingest_reader_take(ingest *g, idx **out, vp_error *err);
/* The data folder: object paths of the index are relative to it. */
const char *ingest_data_dir(const ingest *g);
void ingest_reader_give(ingest *g, idx *x);

#endif
