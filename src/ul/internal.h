/* SPDX-License-Identifier: MIT */
/*
 * Private to src/ul: the bounds-checked reader every PDU byte goes through (PS3.8 9.3.1:
 * big-endian lengths, each item inside its parent). A sub-reader covers exactly the bytes an
 * item declares and cannot pass its parent's end; reads past the end are sticky failures that
 * return zeros, so no length is ever subtracted by hand.
 */
#ifndef VP_UL_INTERNAL_H
#define VP_UL_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

typedef struct ul_reader {
    const uint8_t *p; /* first byte of this reader's span */
    size_t len;       /* bytes in the span */
    size_t pos;       /* next byte to read, relative to p */
    size_t base;      /* offset of p within the PDU, for messages */
    bool failed;      /* sticky: a read asked for more than remained */
} ul_reader;

static inline ul_reader ul_reader_make(const uint8_t *p, size_t len, size_t base)
{
    ul_reader r = {p, len, 0, base, false};
    return r;
}

static inline size_t ul_reader_left(const ul_reader *r)
{
    return r->len - r->pos;
}

/* Offset of the next byte within the PDU. */
static inline size_t ul_reader_offset(const ul_reader *r)
{
    return r->base + r->pos;
}

/* Returns a pointer to the next n bytes and moves past them, or NULL (and fails) when fewer
 * remain. */
static inline const uint8_t *ul_reader_bytes(ul_reader *r, size_t n)
{
    if (r->failed || n > r->len - r->pos) {
        r->failed = true;
        return NULL;
    }
    const uint8_t *q = r->p + r->pos;
    r->pos += n;
    return q;
}

static inline uint8_t ul_reader_u8(ul_reader *r)
{
    const uint8_t *q = ul_reader_bytes(r, 1);
    return q ? q[0] : 0;
}

static inline uint16_t ul_reader_be16(ul_reader *r)
{
    const uint8_t *q = ul_reader_bytes(r, 2);
    return q ? vp_be16(q) : 0;
}

static inline uint32_t ul_reader_be32(ul_reader *r)
{
    const uint8_t *q = ul_reader_bytes(r, 4);
    return q ? vp_be32(q) : 0;
}

/* Carves the next n bytes off r as a sub-reader. False (r failed, *sub empty) when fewer than
 * n remain. */
static inline bool ul_reader_sub(ul_reader *r, size_t n, ul_reader *sub)
{
    size_t at = ul_reader_offset(r);
    const uint8_t *q = ul_reader_bytes(r, n);
    *sub = ul_reader_make(q, q ? n : 0, at);
    return q != NULL;
}

#endif /* VP_UL_INTERNAL_H */
