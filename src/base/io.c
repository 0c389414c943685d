/* SPDX-License-Identifier: MIT */
/*
 * Durable-write system calls with a fault-injection hook. Production code never sets the
 * hook; tests use it to fail a write, fsync or rename and check what the caller reports.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>

#include "base/base.h"

/* Countdown per operation to the first injected failure; 0 = off. Only tests set it, but the
 * calls it counts happen on several threads (the ingest syncs files on a helper thread), so
 * the counters are atomic: the production cost is one relaxed load. */
static _Atomic long fail_after[VP_IO_OPS];

void vp_io_fail_after(enum vp_io_op op, long n)
{
    if ((unsigned)op < VP_IO_OPS)
        atomic_store(&fail_after[op], n);
}

static int should_fail(enum vp_io_op op)
{
    long n = atomic_load_explicit(&fail_after[op], memory_order_relaxed);
    while (n > 0) {
        if (n == 1) {
            errno = EIO;
            return 1;
        }
        if (atomic_compare_exchange_weak(&fail_after[op], &n, n - 1))
            return 0;
    }
    return 0;
}

ssize_t vp_io_write(int fd, const void *p, size_t n)
{
    if (should_fail(VP_IO_WRITE))
        return -1;
    return write(fd, p, n);
}

int vp_io_fsync(int fd)
{
    if (should_fail(VP_IO_FSYNC))
        return -1;
    return fsync(fd);
}

int vp_io_rename(const char *from, const char *to)
{
    if (should_fail(VP_IO_RENAME))
        return -1;
    return rename(from, to);
}
