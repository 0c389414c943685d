/* SPDX-License-Identifier: MIT */
/*
 * The data set model (PS3.5 7): elements ascending by tag, sequences of items, encapsulated
 * pixel data as fragments (PS3.5 A.4). One arena per tree; nothing is freed piecemeal.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dcm/internal.h"

static dcm_dataset *dataset_alloc(struct root *root, dcm_dataset *parent)
{
    dcm_dataset *ds = vp_arena_alloc(root->arena, sizeof *ds);
    if (!ds)
        return NULL;
    memset(ds, 0, sizeof *ds);
    ds->root = root;
    ds->parent = parent;
    return ds;
}

dcm_dataset *dcm_dataset_new(void)
{
    vp_arena *a = vp_arena_new(32768);
    if (!a)
        return NULL;
    struct root *root = vp_arena_alloc(a, sizeof *root);
    if (!root) {
        vp_arena_free(a);
        return NULL;
    }
    memset(root, 0, sizeof *root);
    root->arena = a;
    dcm_dataset *ds = dataset_alloc(root, NULL);
    if (!ds)
        vp_arena_free(a);
    return ds;
}

void dcm_dataset_free(dcm_dataset *ds)
{
    if (!ds)
        return;
    struct root *root = ds->root;
    vp_free(root->source);
    vp_arena_free(root->arena); /* root itself lives in the arena */
}

void *dcm__alloc(dcm_dataset *ds, size_t n)
{
    return vp_arena_alloc(ds->root->arena, n);
}

void dcm__root_adopt_source(dcm_dataset *root, uint8_t *buf)
{
    vp_free(root->root->source);
    root->root->source = buf;
}

dcm_dataset *dcm__item_new(dcm_dataset *parent)
{
    return dataset_alloc(parent->root, parent);
}

size_t dcm_dataset_count(const dcm_dataset *ds)
{
    return ds->n;
}

dcm_element *dcm_dataset_at(const dcm_dataset *ds, size_t i)
{
    return i < ds->n ? &ds->el[i] : NULL;
}

static size_t lower_bound(const dcm_dataset *ds, uint32_t tag)
{
    size_t lo = 0, hi = ds->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ds->el[mid].tag < tag)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

dcm_element *dcm_dataset_find(const dcm_dataset *ds, uint32_t tag)
{
    size_t i = lower_bound(ds, tag);
    return i < ds->n && ds->el[i].tag == tag ? &ds->el[i] : NULL;
}

dcm_dataset *dcm_dataset_parent(const dcm_dataset *ds)
{
    return ds->parent;
}

bool dcm_dataset_undefined_length(const dcm_dataset *ds)
{
    return ds->undef_len;
}

void dcm_dataset_set_undefined_length(dcm_dataset *ds, bool undefined)
{
    ds->undef_len = undefined;
}

dcm_element *dcm__slot(dcm_dataset *ds, uint32_t tag, enum dcm_vr vr)
{
    size_t i;
    if (ds->n == 0 || ds->el[ds->n - 1].tag < tag) {
        i = ds->n; /* the common case: input in order */
    } else {
        i = lower_bound(ds, tag);
        ds->unordered = true;
        if (i < ds->n && ds->el[i].tag == tag) {
            memset(&ds->el[i], 0, sizeof ds->el[i]);
            ds->el[i].tag = tag;
            ds->el[i].vr = (uint8_t)vr;
            ds->el[i].owner = ds;
            return &ds->el[i];
        }
    }
    if (ds->n == ds->cap) {
        uint32_t cap = ds->cap ? ds->cap * 2 : 16;
        dcm_element *el = dcm__alloc(ds, (size_t)cap * sizeof *el);
        if (!el)
            return NULL;
        if (ds->n)
            memcpy(el, ds->el, (size_t)ds->n * sizeof *el);
        ds->el = el; /* the old array stays in the arena until the tree is freed */
        ds->cap = cap;
    }
    if (i < ds->n)
        memmove(&ds->el[i + 1], &ds->el[i], (size_t)(ds->n - i) * sizeof *ds->el);
    ds->n++;
    ds->root->element_count++;
    dcm_element *e = &ds->el[i];
    memset(e, 0, sizeof *e);
    e->tag = tag;
    e->vr = (uint8_t)vr;
    e->owner = ds;
    return e;
}

vp_status dcm_dataset_set(dcm_dataset *ds, uint32_t tag, enum dcm_vr vr, const void *value,
                          size_t len, dcm_element **out)
{
    if ((unsigned)vr == DCM_VR_NONE || (unsigned)vr >= DCM_VR_COUNT_REAL || vr == DCM_VR_SQ ||
        len > 0xFFFFFFFEu)
        return VP_EINVAL;
    const uint8_t *copy = NULL;
    if (len) {
        copy = vp_arena_dup(ds->root->arena, value, len);
        if (!copy)
            return VP_ENOMEM;
    }
    dcm_element *e = dcm__slot(ds, tag, vr);
    if (!e)
        return VP_ENOMEM;
    e->length = (uint32_t)len;
    e->u.value = copy;
    if (out)
        *out = e;
    return VP_OK;
}

vp_status dcm_dataset_set_str(dcm_dataset *ds, uint32_t tag, enum dcm_vr vr, const char *s)
{
    return dcm_dataset_set(ds, tag, vr, s, strlen(s), NULL);
}

vp_status dcm_dataset_set_u16(dcm_dataset *ds, uint32_t tag, uint16_t v)
{
    uint8_t b[2];
    vp_put_le16(b, v);
    return dcm_dataset_set(ds, tag, DCM_VR_US, b, 2, NULL);
}

vp_status dcm_dataset_set_u32(dcm_dataset *ds, uint32_t tag, uint32_t v)
{
    uint8_t b[4];
    vp_put_le32(b, v);
    return dcm_dataset_set(ds, tag, DCM_VR_UL, b, 4, NULL);
}

vp_status dcm_dataset_set_sequence(dcm_dataset *ds, uint32_t tag, dcm_element **out)
{
    dcm_element *e = dcm__slot(ds, tag, DCM_VR_SQ);
    if (!e)
        return VP_ENOMEM;
    e->flags = EL_SEQ | EL_UNDEF_LEN;
    if (out)
        *out = e;
    return VP_OK;
}

vp_status dcm_dataset_set_encapsulated(dcm_dataset *ds, uint32_t tag, enum dcm_vr vr,
                                       dcm_element **out)
{
    if (vr != DCM_VR_OB && vr != DCM_VR_OW)
        return VP_EINVAL;
    dcm_element *e = dcm__slot(ds, tag, vr);
    if (!e)
        return VP_ENOMEM;
    e->flags = EL_ENCAPS | EL_UNDEF_LEN;
    if (out)
        *out = e;
    return VP_OK;
}

vp_status dcm_dataset_remove(dcm_dataset *ds, uint32_t tag)
{
    size_t i = lower_bound(ds, tag);
    if (i >= ds->n || ds->el[i].tag != tag)
        return VP_ENOTFOUND;
    memmove(&ds->el[i], &ds->el[i + 1], (size_t)(ds->n - i - 1) * sizeof *ds->el);
    ds->n--;
    return VP_OK;
}

/* ---- element accessors ---- */

uint32_t dcm_element_tag(const dcm_element *el)
{
    return el->tag;
}

enum dcm_vr dcm_element_vr(const dcm_element *el)
{
    return (enum dcm_vr)el->vr;
}

uint32_t dcm_element_length(const dcm_element *el)
{
    return (el->flags & (EL_SEQ | EL_ENCAPS)) ? 0 : el->length;
}

const uint8_t *dcm_element_value(const dcm_element *el)
{
    return (el->flags & (EL_SEQ | EL_ENCAPS | EL_SKIPPED)) ? NULL : el->u.value;
}

uint64_t dcm_element_offset(const dcm_element *el)
{
    return el->offset;
}

bool dcm_element_undefined_length(const dcm_element *el)
{
    return el->flags & EL_UNDEF_LEN;
}

void dcm_element_set_undefined_length(dcm_element *el, bool undefined)
{
    if (el->flags & EL_ENCAPS)
        return; /* always undefined, PS3.5 A.4 */
    if (undefined)
        el->flags |= EL_UNDEF_LEN;
    else
        el->flags &= (uint8_t)~EL_UNDEF_LEN;
}

bool dcm_element_is_skipped(const dcm_element *el)
{
    return el->flags & EL_SKIPPED;
}

bool dcm_element_is_sequence(const dcm_element *el)
{
    return el->flags & EL_SEQ;
}

size_t dcm_element_item_count(const dcm_element *el)
{
    return (el->flags & EL_SEQ) ? el->u.items.n : 0;
}

dcm_dataset *dcm_element_item(const dcm_element *el, size_t i)
{
    return (el->flags & EL_SEQ) && i < el->u.items.n ? el->u.items.v[i] : NULL;
}

/* Grows a pointer-or-struct array kept in the arena by doubling. */
static void *grow(dcm_dataset *owner, void *v, uint32_t n, uint32_t *cap, size_t size)
{
    if (n < *cap)
        return v;
    uint32_t c = *cap ? *cap * 2 : 4;
    void *nv = dcm__alloc(owner, (size_t)c * size);
    if (!nv)
        return NULL;
    if (n)
        memcpy(nv, v, (size_t)n * size);
    *cap = c;
    return nv;
}

vp_status dcm_element_add_item(dcm_element *el, dcm_dataset **out)
{
    if (!(el->flags & EL_SEQ))
        return VP_EINVAL;
    dcm_dataset *owner = el->owner;
    dcm_dataset **v = grow(owner, el->u.items.v, el->u.items.n, &el->u.items.cap, sizeof *v);
    if (!v)
        return VP_ENOMEM;
    el->u.items.v = v;
    dcm_dataset *item = dcm__item_new(owner);
    if (!item)
        return VP_ENOMEM;
    item->undef_len = true;
    v[el->u.items.n++] = item;
    if (out)
        *out = item;
    return VP_OK;
}

bool dcm_element_is_encapsulated(const dcm_element *el)
{
    return el->flags & EL_ENCAPS;
}

size_t dcm_element_fragment_count(const dcm_element *el)
{
    return (el->flags & EL_ENCAPS) ? el->u.frags.n : 0;
}

const uint8_t *dcm_element_fragment(const dcm_element *el, size_t i, uint32_t *len,
                                    uint64_t *offset)
{
    if (!(el->flags & EL_ENCAPS) || i >= el->u.frags.n) {
        if (len)
            *len = 0;
        return NULL;
    }
    const struct frag *f = &el->u.frags.v[i];
    if (len)
        *len = f->len;
    if (offset)
        *offset = f->offset;
    return f->data;
}

vp_status dcm__fragment_append(dcm_element *el, const uint8_t *data, uint32_t len, uint64_t offset)
{
    struct frag *v = grow(el->owner, el->u.frags.v, el->u.frags.n, &el->u.frags.cap, sizeof *v);
    if (!v)
        return VP_ENOMEM;
    el->u.frags.v = v;
    v[el->u.frags.n++] = (struct frag){data, len, offset};
    return VP_OK;
}

vp_status dcm_element_add_fragment(dcm_element *el, const void *data, size_t len)
{
    if (!(el->flags & EL_ENCAPS) || len > 0xFFFFFFFEu)
        return VP_EINVAL;
    const uint8_t *copy = NULL;
    if (len) {
        copy = vp_arena_dup(el->owner->root->arena, data, len);
        if (!copy)
            return VP_ENOMEM;
    }
    return dcm__fragment_append(el, copy, (uint32_t)len, 0);
}
