/* SPDX-License-Identifier: MIT */
/*
 * The DICOM service provider: one function runs one association on a connected socket, from
 * the A-ASSOCIATE-RQ to the release or abort, answering C-ECHO (Verification, PS3.4 A) and
 * C-STORE (Storage, PS3.4 B) through the ingest pipeline. The server (server.c) calls it on a
 * thread per connection.
 */
#ifndef VP_APP_SCP_H
#define VP_APP_SCP_H

#include <stdatomic.h>

#include "app/config.h"
#include "app/ingest.h"

/* What all associations share. */
typedef struct scp_shared {
    const config *cfg;
    ingest *ingest;
    atomic_uint established; /* associations accepted and not yet ended */
    atomic_bool stopping;    /* the server is shutting down: refuse new associations */
} scp_shared;

/* How an association ended, for the log and the tests. */
typedef struct scp_report {
    char peer[64];                      /* "address:port" */
    char calling_ae[CONFIG_AE_MAX + 1]; /* "" before the A-ASSOCIATE-RQ */
    char called_ae[CONFIG_AE_MAX + 1];
    uint64_t objects;  /* C-STORE successes */
    uint64_t failures; /* C-STORE failures */
    uint64_t echoes;   /* C-ECHO answered */
    uint64_t finds;    /* C-FIND answered */
    uint64_t moves;    /* C-MOVE answered */
    uint64_t gets;     /* C-GET answered */
    uint64_t sent;     /* objects sent by C-MOVE and C-GET sub-operations */
    uint64_t bytes;    /* data set bytes received */
    int64_t duration_ms;
    char result[160]; /* "released", "rejected: ...", "aborted: ..." */
} scp_report;

/* Runs one association on fd (connected, non-blocking, TCP_NODELAY) and closes fd. */
void scp_run(scp_shared *sh, int fd, const char *peer, scp_report *report);

/* Whether uid is a SOP class we accept: Verification or a Storage SOP Class of the registry
 * (PS3.4 Annex B.5, the registry's "... Storage" SOP classes). */
bool scp_abstract_syntax_supported(const char *uid);

#endif
