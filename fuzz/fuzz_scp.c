/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the whole DICOM service provider. The input is a client's byte stream
 * (A-ASSOCIATE-RQ, P-DATA with C-ECHO, C-STORE, C-FIND, C-MOVE, C-GET, C-CANCEL messages,
 * releases, garbage); the first byte
 * chooses the chunk size it is written in. It goes over a real socket pair into scp_run, which
 * drives the upper layer, the DIMSE reassembler and the ingest pipeline into a real archive
 * (in /dev/shm when it exists, so fsync costs little). Whatever the bytes, the association
 * must end without a crash, a leak or a hang, and the archive must stay consistent.
 */
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "app/config.h"
#include "app/ingest.h"
#include "app/scp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct feed {
    int fd;
    const uint8_t *p;
    size_t n, chunk;
};

/* Client side: writes the input in chunks, then half-closes; stops when the server is gone. */
static void *writer(void *arg)
{
    struct feed *f = arg;
    while (f->n > 0) {
        size_t k = f->n < f->chunk ? f->n : f->chunk;
        ssize_t w = send(f->fd, f->p, k, MSG_NOSIGNAL);
        if (w <= 0)
            break;
        f->p += w;
        f->n -= (size_t)w;
    }
    shutdown(f->fd, SHUT_WR);
    return NULL;
}

/* Client side: reads (and drops) whatever the server answers until it closes. */
static void *drainer(void *arg)
{
    int fd = *(int *)arg;
    char buf[65536];
    while (recv(fd, buf, sizeof buf, 0) > 0)
        ;
    return NULL;
}

static ingest *archive;
static config cfg;
static char dir[256];

static int remove_one(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb;
    (void)type;
    (void)ftw;
    remove(path);
    return 0;
}

/* The archive is scratch: removed when the process ends. */
static void cleanup(void)
{
    ingest_close(archive);
    archive = NULL;
    nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void setup(void)
{
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(dir, sizeof dir, "%s/vetpacs-fuzz-scp-%d", base, (int)getpid());
    config_defaults(&cfg);
    cfg.require_called_ae = false;
    cfg.max_pdu_length = 16384;
    cfg.artim_timeout_ms = 2000;
    cfg.idle_timeout_ms = 2000;
    vp_error err = {0};
    /* A C-MOVE destination that refuses connections: the sub-operations fail (A702). */
    if (config_add_peer(&cfg, "DEST@127.0.0.1:1", &err) != VP_OK)
        abort();
    if (ingest_open(dir, NULL, &archive, &err) != VP_OK) {
        fprintf(stderr, "fuzz_scp: %s: %s\n", dir, err.msg);
        abort();
    }
    atexit(cleanup);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!archive)
        setup();
    if (size < 1)
        return 0;
    static const size_t chunks[8] = {1, 7, 64, 1000, 4096, 16390, 65536, 1 << 20};
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        abort();
    fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK); /* as net_accept leaves it */
    struct feed f = {.fd = sv[1], .p = data + 1, .n = size - 1, .chunk = chunks[data[0] & 7]};
    pthread_t tw, td;
    pthread_create(&tw, NULL, writer, &f);
    pthread_create(&td, NULL, drainer, &sv[1]);
    scp_shared sh = {.cfg = &cfg, .ingest = archive};
    scp_report rep;
    scp_run(&sh, sv[0], "fuzz", &rep); /* closes sv[0] */
    pthread_join(tw, NULL);
    pthread_join(td, NULL);
    close(sv[1]);
    if (atomic_load(&sh.established) != 0)
        abort(); /* every association accounted for */
    return 0;
}
