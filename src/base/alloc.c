/* SPDX-License-Identifier: MIT */
/*
 * Allocation wrappers with a fault-injection hook, the capped byte buffer and the bump arena.
 * The hook is a test aid: production code never sets it, so the only cost is one load.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

/* Countdown to the first injected failure; 0 = off. Only tests touch it (single thread). */
static long fail_after;

void vp_alloc_fail_after(long n)
{
    fail_after = n;
}

static int should_fail(void)
{
    if (fail_after <= 0)
        return 0;
    if (fail_after == 1)
        return 1; /* stays at 1: every later allocation fails too */
    fail_after--;
    return 0;
}

void *vp_malloc(size_t n)
{
    if (should_fail())
        return NULL;
    return malloc(n ? n : 1);
}

void *vp_calloc(size_t n, size_t size)
{
    if (should_fail())
        return NULL;
    if (n == 0 || size == 0)
        n = size = 1;
    return calloc(n, size);
}

void *vp_realloc(void *p, size_t n)
{
    if (should_fail())
        return NULL;
    return realloc(p, n ? n : 1);
}

void vp_free(void *p)
{
    free(p);
}

/* ---- vp_buf ---- */

void vp_buf_init(vp_buf *b, size_t max)
{
    b->data = NULL;
    b->len = b->cap = 0;
    b->max = max ? max : SIZE_MAX / 2;
}

void vp_buf_fini(vp_buf *b)
{
    vp_free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void vp_buf_reset(vp_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = 0;
}

vp_status vp_buf_reserve(vp_buf *b, size_t extra)
{
    size_t need;
    if (vp_add_size(b->len, extra, &need) || need > b->max)
        return VP_ELIMIT;
    if (need + 1 <= b->cap)
        return VP_OK;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need + 1)
        cap = cap > SIZE_MAX / 2 ? need + 1 : cap * 2;
    uint8_t *p = vp_realloc(b->data, cap);
    if (!p)
        return VP_ENOMEM;
    b->data = p;
    b->cap = cap;
    return VP_OK;
}

vp_status vp_buf_append(vp_buf *b, const void *p, size_t n)
{
    vp_status st = vp_buf_reserve(b, n);
    if (st)
        return st;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
    return VP_OK;
}

vp_status vp_buf_putc(vp_buf *b, uint8_t c)
{
    if (b->len + 1 < b->cap) {
        b->data[b->len++] = c;
        b->data[b->len] = 0;
        return VP_OK;
    }
    return vp_buf_append(b, &c, 1);
}

vp_status vp_buf_puts(vp_buf *b, const char *s)
{
    return vp_buf_append(b, s, strlen(s));
}

vp_status vp_buf_printf(vp_buf *b, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return VP_EINVAL;
    if ((size_t)n < sizeof small)
        return vp_buf_append(b, small, (size_t)n);
    vp_status st = vp_buf_reserve(b, (size_t)n);
    if (st)
        return st;
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return VP_OK;
}

uint8_t *vp_buf_take(vp_buf *b, size_t *len)
{
    uint8_t *p = b->data;
    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}

/* ---- vp_arena ---- */

struct block {
    struct block *next; /* older block */
    size_t used;        /* bytes handed out from data */
    size_t size;        /* bytes available in data */
    _Alignas(16) uint8_t data[];
};

struct vp_arena {
    struct block *head;  /* current small-allocation block */
    struct block *large; /* dedicated blocks for big requests */
    size_t block_size;   /* size of each small-allocation block */
    size_t used;         /* total bytes handed out */
};

vp_arena *vp_arena_new(size_t block_size)
{
    vp_arena *a = vp_calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->block_size = block_size ? block_size : 16384;
    return a;
}

static void free_chain(struct block *b)
{
    while (b) {
        struct block *next = b->next;
        vp_free(b);
        b = next;
    }
}

void vp_arena_free(vp_arena *a)
{
    if (!a)
        return;
    free_chain(a->head);
    free_chain(a->large);
    vp_free(a);
}

void *vp_arena_alloc(vp_arena *a, size_t n)
{
    size_t need = (n + 15) & ~(size_t)15;
    if (need < n)
        return NULL;
    if (need > a->block_size / 4) {
        size_t total;
        if (vp_add_size(sizeof(struct block), need, &total))
            return NULL;
        struct block *b = vp_malloc(total);
        if (!b)
            return NULL;
        b->size = b->used = need;
        b->next = a->large;
        a->large = b;
        a->used += need;
        return b->data;
    }
    struct block *b = a->head;
    if (!b || b->size - b->used < need) {
        b = vp_malloc(sizeof(struct block) + a->block_size);
        if (!b)
            return NULL;
        b->size = a->block_size;
        b->used = 0;
        b->next = a->head;
        a->head = b;
    }
    void *p = b->data + b->used;
    b->used += need;
    a->used += need;
    return p;
}

void *vp_arena_dup(vp_arena *a, const void *p, size_t n)
{
    void *q = vp_arena_alloc(a, n);
    if (q && n)
        memcpy(q, p, n);
    return q;
}

size_t vp_arena_used(const vp_arena *a)
{
    return a->used;
}
