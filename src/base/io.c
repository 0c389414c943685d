/* SPDX-License-Identifier: MIT */
/*
 * Durable-write system calls with a fault-injection hook. Production code never sets the
 * hook; tests use it to fail a write, fsync or rename and check what the caller reports.
 */
#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include "base/base.h"

/* Countdown per operation to the first injected failure; 0 = off. Only tests set it. */
static long fail_after[VP_IO_OPS];

void vp_io_fail_after(enum vp_io_op op, long n)
{
    if ((unsigned)op < VP_IO_OPS)
        fail_after[op] = n;
}

static int should_fail(enum vp_io_op op)
{
    if (fail_after[op] <= 0)
        return 0;
    if (fail_after[op] == 1) {
        errno = EIO;
        return 1;
    }
    fail_after[op]--;
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
