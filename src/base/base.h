/* SPDX-License-Identifier: MIT */
/*
 * base: the few things every vetpacs module shares. One status type passed up unchanged, a
 * caller-owned error buffer that never allocates, checked size arithmetic, a growable byte
 * buffer with a hard cap, and a bump arena for short-lived parse products.
 */
#ifndef VP_BASE_H
#define VP_BASE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* One status enum for the whole project. Each protocol edge maps these to its own terms. */
typedef enum vp_status {
    VP_OK = 0,
    VP_ENOMEM,       /* allocation failed */
    VP_EIO,          /* read, write, fsync or rename failed */
    VP_EPARSE,       /* input does not follow its encoding */
    VP_EINVAL,       /* caller passed a bad argument */
    VP_ENOTFOUND,    /* asked-for item does not exist */
    VP_ECONFLICT,    /* exists already, differently */
    VP_ELIMIT,       /* a configured limit was exceeded */
    VP_EUNSUPPORTED, /* understood but not implemented */
    VP_EAGAIN,       /* need more input; call again */
    VP_ETRUNC,       /* input ended early */
    VP_ETIMEOUT,     /* a deadline passed */
    VP_ECLOSED,      /* the peer closed the connection */
} vp_status;

/* Short constant name of a status, e.g. "VP_EPARSE". */
const char *vp_status_name(vp_status st);

/*
 * Caller-owned error report. The first error set wins so the root cause survives while the
 * stack unwinds; setting it never allocates. Messages are written for the peer:
 * "element (0028,0010) length 3, expected 2".
 */
#define VP_ERROR_MAX 256
typedef struct vp_error {
    vp_status status;       /* VP_OK until something is set */
    char msg[VP_ERROR_MAX]; /* NUL-terminated message, "" when none */
} vp_error;

void vp_error_clear(vp_error *err);
/* Records st and the formatted message if err is not NULL and holds nothing yet. Returns st. */
vp_status vp_error_set(vp_error *err, vp_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
vp_status vp_error_vset(vp_error *err, vp_status st, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* Checked size arithmetic: return 0 on success, non-zero when the result would overflow. */
static inline int vp_add_size(size_t a, size_t b, size_t *out)
{
    return __builtin_add_overflow(a, b, out);
}
static inline int vp_mul_size(size_t a, size_t b, size_t *out)
{
    return __builtin_mul_overflow(a, b, out);
}
static inline int vp_add_u64(uint64_t a, uint64_t b, uint64_t *out)
{
    return __builtin_add_overflow(a, b, out);
}
static inline int vp_mul_u64(uint64_t a, uint64_t b, uint64_t *out)
{
    return __builtin_mul_overflow(a, b, out);
}

/*
 * Allocation goes through these so tests can fail the Nth allocation (fault injection).
 * vp_malloc(0) returns a valid unique pointer.
 */
void *vp_malloc(size_t n);
void *vp_calloc(size_t n, size_t size);
void *vp_realloc(void *p, size_t n);
void vp_free(void *p);
/* Test hook: make the nth allocation from now (1-based) and every later one fail; 0 disables. */
void vp_alloc_fail_after(long n);

/*
 * File system calls that make data durable go through these, so tests can fail the nth write,
 * fsync or rename (fault injection) and prove that a failure is reported and nothing
 * half-written is acknowledged. They behave as the libc calls (-1 and errno on failure).
 */
enum vp_io_op { VP_IO_WRITE, VP_IO_FSYNC, VP_IO_RENAME, VP_IO_OPS };
ssize_t vp_io_write(int fd, const void *p, size_t n);
int vp_io_fsync(int fd);
int vp_io_rename(const char *from, const char *to);
/* Test hook: the nth call (1-based) of op from now, and every later one, fails with EIO;
 * 0 disables. */
void vp_io_fail_after(enum vp_io_op op, long n);

/*
 * Growable byte buffer with a hard cap, after curl's dynbuf. Contents are always followed by a
 * NUL byte that is not counted in len, so text can be used as a C string.
 */
typedef struct vp_buf {
    uint8_t *data; /* owned; NULL until the first append */
    size_t len;    /* bytes in use */
    size_t cap;    /* bytes allocated */
    size_t max;    /* hard limit on len; 0 means SIZE_MAX/2 */
} vp_buf;

void vp_buf_init(vp_buf *b, size_t max);
void vp_buf_fini(vp_buf *b);
void vp_buf_reset(vp_buf *b);
vp_status vp_buf_reserve(vp_buf *b, size_t extra);
vp_status vp_buf_append(vp_buf *b, const void *p, size_t n);
vp_status vp_buf_putc(vp_buf *b, uint8_t c);
vp_status vp_buf_puts(vp_buf *b, const char *s);
vp_status vp_buf_printf(vp_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Hands the contents to the caller (who frees with vp_free) and leaves the buffer empty. */
uint8_t *vp_buf_take(vp_buf *b, size_t *len);

/*
 * Bump arena: many small allocations freed together. Large requests get their own block.
 * Memory is 16-byte aligned. vp_arena_free releases everything and accepts NULL.
 */
typedef struct vp_arena vp_arena;

vp_arena *vp_arena_new(size_t block_size);
void vp_arena_free(vp_arena *a);
void *vp_arena_alloc(vp_arena *a, size_t n);
void *vp_arena_dup(vp_arena *a, const void *p, size_t n);
/* Bytes handed out so far (for limits and statistics). */
size_t vp_arena_used(const vp_arena *a);

/* Little- and big-endian loads and stores that never rely on alignment. */
static inline uint16_t vp_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}
static inline uint32_t vp_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline uint16_t vp_be16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}
static inline uint32_t vp_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}
static inline void vp_put_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static inline void vp_put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}
static inline void vp_put_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static inline void vp_put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

#endif /* VP_BASE_H */
