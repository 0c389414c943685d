/* SPDX-License-Identifier: MIT */
/*
 * Typed access to element values (PS3.5 6.2: multi-valued strings separated by '\', binary
 * values little endian), deep copy and deep equality of data sets.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dcm/internal.h"

static bool is_pad(uint8_t c)
{
    return c == ' ' || c == 0;
}

unsigned dcm_element_vm(const dcm_element *el)
{
    if (el->flags & (EL_SEQ | EL_ENCAPS))
        return el->flags & EL_SEQ ? (el->u.items.n ? 1 : 0) : 1;
    if (el->length == 0 || (el->flags & EL_SKIPPED))
        return el->flags & EL_SKIPPED ? 1 : 0;
    enum dcm_vr vr = (enum dcm_vr)el->vr;
    if (dcm_vr_is_string(vr)) {
        /* LT, ST, UT, UR are single-valued: a backslash is part of the text (PS3.5 6.2). */
        if (vr == DCM_VR_LT || vr == DCM_VR_ST || vr == DCM_VR_UT || vr == DCM_VR_UR)
            return 1;
        unsigned n = 1;
        for (uint32_t i = 0; i < el->length; i++)
            n += el->u.value[i] == '\\';
        return n;
    }
    unsigned unit = dcm_vr_unit(vr);
    if (unit == 0 || vr == DCM_VR_OB || vr == DCM_VR_OW || vr == DCM_VR_OF || vr == DCM_VR_OD ||
        vr == DCM_VR_OL || vr == DCM_VR_OV || vr == DCM_VR_UN)
        return 1;
    return el->length / unit;
}

vp_status dcm_element_get_str(const dcm_element *el, unsigned idx, const char **s, size_t *len)
{
    enum dcm_vr vr = (enum dcm_vr)el->vr;
    if (!dcm_vr_is_string(vr) || (el->flags & (EL_SEQ | EL_ENCAPS | EL_SKIPPED)))
        return VP_EINVAL;
    if (el->length == 0)
        return VP_ENOTFOUND;
    const uint8_t *p = el->u.value, *end = p + el->length;
    bool single = vr == DCM_VR_LT || vr == DCM_VR_ST || vr == DCM_VR_UT || vr == DCM_VR_UR;
    const uint8_t *start = p;
    unsigned k = 0;
    for (;;) {
        const uint8_t *q = start;
        if (!single)
            while (q < end && *q != '\\')
                q++;
        else
            q = end;
        if (k == idx) {
            const uint8_t *a = start, *b = q;
            /* Leading spaces are insignificant except in the free-text VRs (PS3.5 6.2). */
            if (vr != DCM_VR_LT && vr != DCM_VR_ST && vr != DCM_VR_UT)
                while (a < b && *a == ' ')
                    a++;
            while (b > a && is_pad(b[-1]))
                b--;
            *s = (const char *)a;
            *len = (size_t)(b - a);
            return VP_OK;
        }
        if (q >= end)
            return VP_ENOTFOUND;
        start = q + 1;
        k++;
    }
}

vp_status dcm_element_get_int(const dcm_element *el, unsigned idx, int64_t *v)
{
    enum dcm_vr vr = (enum dcm_vr)el->vr;
    if (el->flags & (EL_SEQ | EL_ENCAPS | EL_SKIPPED))
        return VP_EINVAL;
    if (vr == DCM_VR_IS || vr == DCM_VR_DS) {
        const char *s;
        size_t n;
        vp_status st = dcm_element_get_str(el, idx, &s, &n);
        if (st)
            return st;
        char tmp[32];
        if (n == 0 || n >= sizeof tmp)
            return VP_EPARSE;
        memcpy(tmp, s, n);
        tmp[n] = 0;
        char *endp;
        errno = 0;
        long long x = strtoll(tmp, &endp, 10);
        if (*endp || errno)
            return VP_EPARSE;
        *v = x;
        return VP_OK;
    }
    unsigned unit = dcm_vr_unit(vr);
    if (unit == 0 || vr == DCM_VR_FL || vr == DCM_VR_FD || vr == DCM_VR_OF || vr == DCM_VR_OD)
        return VP_EINVAL;
    size_t off = (size_t)idx * unit;
    if (off + unit > el->length)
        return VP_ENOTFOUND;
    const uint8_t *p = el->u.value + off;
    switch (vr) {
    case DCM_VR_US:
    case DCM_VR_OW: *v = vp_le16(p); break;
    case DCM_VR_SS: *v = (int16_t)vp_le16(p); break;
    case DCM_VR_UL:
    case DCM_VR_OL: *v = vp_le32(p); break;
    case DCM_VR_SL: *v = (int32_t)vp_le32(p); break;
    case DCM_VR_AT: *v = ((int64_t)vp_le16(p) << 16) | vp_le16(p + 2); break;
    case DCM_VR_UV:
    case DCM_VR_OV:
    case DCM_VR_SV: {
        uint64_t x = vp_le32(p) | ((uint64_t)vp_le32(p + 4) << 32);
        *v = (int64_t)x;
        break;
    }
    default: return VP_EINVAL;
    }
    return VP_OK;
}

vp_status dcm_element_get_double(const dcm_element *el, unsigned idx, double *v)
{
    enum dcm_vr vr = (enum dcm_vr)el->vr;
    if (el->flags & (EL_SEQ | EL_ENCAPS | EL_SKIPPED))
        return VP_EINVAL;
    if (vr == DCM_VR_DS || vr == DCM_VR_IS) {
        const char *s;
        size_t n;
        vp_status st = dcm_element_get_str(el, idx, &s, &n);
        if (st)
            return st;
        char tmp[40];
        if (n == 0 || n >= sizeof tmp)
            return VP_EPARSE;
        memcpy(tmp, s, n);
        tmp[n] = 0;
        char *endp;
        double x = strtod(tmp, &endp);
        if (*endp)
            return VP_EPARSE;
        *v = x;
        return VP_OK;
    }
    if (vr == DCM_VR_FL || vr == DCM_VR_OF) {
        if ((size_t)idx * 4 + 4 > el->length)
            return VP_ENOTFOUND;
        uint32_t u = vp_le32(el->u.value + (size_t)idx * 4);
        float f;
        memcpy(&f, &u, 4);
        *v = f;
        return VP_OK;
    }
    if (vr == DCM_VR_FD || vr == DCM_VR_OD) {
        if ((size_t)idx * 8 + 8 > el->length)
            return VP_ENOTFOUND;
        const uint8_t *p = el->u.value + (size_t)idx * 8;
        uint64_t u = vp_le32(p) | ((uint64_t)vp_le32(p + 4) << 32);
        double d;
        memcpy(&d, &u, 8);
        *v = d;
        return VP_OK;
    }
    int64_t i;
    vp_status st = dcm_element_get_int(el, idx, &i);
    if (st)
        return st;
    *v = (vr == DCM_VR_UV || vr == DCM_VR_OV) ? (double)(uint64_t)i : (double)i;
    return VP_OK;
}

vp_status dcm_dataset_get_str(const dcm_dataset *ds, uint32_t tag, unsigned idx, const char **s,
                              size_t *len)
{
    const dcm_element *el = dcm_dataset_find(ds, tag);
    return el ? dcm_element_get_str(el, idx, s, len) : VP_ENOTFOUND;
}

vp_status dcm_dataset_get_int(const dcm_dataset *ds, uint32_t tag, unsigned idx, int64_t *v)
{
    const dcm_element *el = dcm_dataset_find(ds, tag);
    return el ? dcm_element_get_int(el, idx, v) : VP_ENOTFOUND;
}

vp_status dcm_dataset_get_double(const dcm_dataset *ds, uint32_t tag, unsigned idx, double *v)
{
    const dcm_element *el = dcm_dataset_find(ds, tag);
    return el ? dcm_element_get_double(el, idx, v) : VP_ENOTFOUND;
}

vp_status dcm_dataset_copy_str(const dcm_dataset *ds, uint32_t tag, char *buf, size_t size)
{
    const char *s;
    size_t n;
    if (size == 0)
        return VP_EINVAL;
    buf[0] = 0;
    const dcm_element *el = dcm_dataset_find(ds, tag);
    if (!el)
        return VP_ENOTFOUND;
    vp_status st = dcm_element_get_str(el, 0, &s, &n);
    if (st)
        return st;
    /* For multi-valued strings keep the whole value, trimmed at the ends. */
    if (dcm_element_vm(el) > 1) {
        s = (const char *)el->u.value;
        n = el->length;
        while (n && is_pad((uint8_t)s[n - 1]))
            n--;
    }
    if (n >= size)
        n = size - 1;
    memcpy(buf, s, n);
    buf[n] = 0;
    return VP_OK;
}

void dcm_dataset_charset(const dcm_dataset *ds, const char **charset, size_t *len)
{
    for (; ds; ds = ds->parent) {
        const dcm_element *el = dcm_dataset_find(ds, DCM_TAG_SPECIFIC_CHARACTER_SET);
        if (el && !(el->flags & (EL_SEQ | EL_ENCAPS | EL_SKIPPED))) {
            *charset = (const char *)el->u.value;
            *len = el->length;
            return;
        }
    }
    *charset = NULL;
    *len = 0;
}

/* ---- deep copy ---- */

static vp_status copy_into(dcm_dataset *dst, const dcm_dataset *src)
{
    dst->undef_len = src->undef_len;
    dst->offset = src->offset;
    for (uint32_t i = 0; i < src->n; i++) {
        const dcm_element *s = &src->el[i];
        dcm_element *d = dcm__slot(dst, s->tag, (enum dcm_vr)s->vr);
        if (!d)
            return VP_ENOMEM;
        d->flags = s->flags;
        d->length = s->length;
        d->offset = s->offset;
        if (s->flags & EL_SEQ) {
            for (uint32_t k = 0; k < s->u.items.n; k++) {
                dcm_dataset *item;
                vp_status st = dcm_element_add_item(d, &item);
                if (st)
                    return st;
                if ((st = copy_into(item, s->u.items.v[k])))
                    return st;
            }
        } else if (s->flags & EL_ENCAPS) {
            for (uint32_t k = 0; k < s->u.frags.n; k++) {
                const struct frag *f = &s->u.frags.v[k];
                vp_status st = dcm_element_add_fragment(d, f->data, f->data ? f->len : 0);
                if (st)
                    return st;
                d->u.frags.v[d->u.frags.n - 1].len = f->len;
                d->u.frags.v[d->u.frags.n - 1].offset = f->offset;
            }
        } else if (s->length && !(s->flags & EL_SKIPPED)) {
            d->u.value = vp_arena_dup(dst->root->arena, s->u.value, s->length);
            if (!d->u.value)
                return VP_ENOMEM;
        }
    }
    return VP_OK;
}

dcm_dataset *dcm_dataset_dup(const dcm_dataset *ds)
{
    dcm_dataset *d = dcm_dataset_new();
    if (!d)
        return NULL;
    if (copy_into(d, ds)) {
        dcm_dataset_free(d);
        return NULL;
    }
    d->undef_len = false;
    return d;
}

/* ---- equality ---- */

static size_t trimmed_len(const dcm_element *e)
{
    size_t n = e->length;
    if (n && (n & 1) == 0 && e->u.value && e->u.value[n - 1] == dcm_vr_pad((enum dcm_vr)e->vr))
        n--;
    /* Text padded with a space on write may have had a trailing NUL or space already. */
    if (dcm_vr_is_string((enum dcm_vr)e->vr))
        while (n && is_pad(e->u.value[n - 1]))
            n--;
    return n;
}

static void why_set(char *why, size_t size, const char *path, uint32_t tag, const char *what)
{
    if (why && size)
        snprintf(why, size, "%s(%04X,%04X): %s", path, DCM_GROUP(tag), DCM_ELEMENT(tag), what);
}

static bool equal_rec(const dcm_dataset *a, const dcm_dataset *b, char *why, size_t size,
                      const char *path)
{
    uint32_t i = 0, j = 0;
    while (i < a->n || j < b->n) {
        if (i >= a->n || (j < b->n && b->el[j].tag < a->el[i].tag)) {
            why_set(why, size, path, b->el[j].tag, "only in second");
            return false;
        }
        if (j >= b->n || a->el[i].tag < b->el[j].tag) {
            why_set(why, size, path, a->el[i].tag, "only in first");
            return false;
        }
        const dcm_element *x = &a->el[i++], *y = &b->el[j++];
        if (x->vr != y->vr) {
            char m[64];
            snprintf(m, sizeof m, "VR %s vs %s", dcm_vr_name((enum dcm_vr)x->vr),
                     dcm_vr_name((enum dcm_vr)y->vr));
            why_set(why, size, path, x->tag, m);
            return false;
        }
        uint8_t fx = x->flags & (EL_SEQ | EL_ENCAPS), fy = y->flags & (EL_SEQ | EL_ENCAPS);
        if (fx != fy) {
            why_set(why, size, path, x->tag, "sequence/encapsulation differs");
            return false;
        }
        if (fx & EL_SEQ) {
            if (x->u.items.n != y->u.items.n) {
                why_set(why, size, path, x->tag, "item count differs");
                return false;
            }
            for (uint32_t k = 0; k < x->u.items.n; k++) {
                char sub[256];
                snprintf(sub, sizeof sub, "%s(%04X,%04X)[%u].", path, DCM_GROUP(x->tag),
                         DCM_ELEMENT(x->tag), k);
                if (!equal_rec(x->u.items.v[k], y->u.items.v[k], why, size, sub))
                    return false;
            }
        } else if (fx & EL_ENCAPS) {
            if (x->u.frags.n != y->u.frags.n) {
                why_set(why, size, path, x->tag, "fragment count differs");
                return false;
            }
            for (uint32_t k = 0; k < x->u.frags.n; k++) {
                const struct frag *p = &x->u.frags.v[k], *q = &y->u.frags.v[k];
                /* Odd fragments are padded with one zero byte on write (PS3.5 A.4). */
                uint32_t n = p->len < q->len ? p->len : q->len;
                const struct frag *longer = p->len > q->len ? p : q;
                bool pad_only = p->len == q->len || (longer->len == n + 1 && (n & 1) &&
                                                     (!longer->data || longer->data[n] == 0));
                if (!pad_only || (p->data && q->data && memcmp(p->data, q->data, n))) {
                    why_set(why, size, path, x->tag, "fragment differs");
                    return false;
                }
            }
        } else {
            if ((x->flags & EL_SKIPPED) || (y->flags & EL_SKIPPED)) {
                if (x->length != y->length) {
                    why_set(why, size, path, x->tag, "skipped value length differs");
                    return false;
                }
                continue;
            }
            if (DCM_ELEMENT(x->tag) == 0x0000)
                continue; /* group lengths are recomputed on write: compare presence only */
            size_t nx = trimmed_len(x), ny = trimmed_len(y);
            if (nx != ny || (nx && memcmp(x->u.value, y->u.value, nx))) {
                why_set(why, size, path, x->tag, "value differs");
                return false;
            }
        }
    }
    return true;
}

bool dcm_dataset_equal(const dcm_dataset *a, const dcm_dataset *b, char *why, size_t why_size)
{
    if (why && why_size)
        why[0] = 0;
    return equal_rec(a, b, why, why_size, "");
}
