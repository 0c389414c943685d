/* SPDX-License-Identifier: MIT */
/*
 * Reading data sets (PS3.5 7.1 element encodings, 7.5 sequences and items, A.4 encapsulation)
 * and Part 10 files (PS3.10 7.1 preamble, prefix and File Meta Information).
 *
 * The parser works on one contiguous buffer that the tree owns: values point into it, so a read
 * copies nothing after the file read itself. Big endian values are swapped in place. Every
 * length is checked against what remains before it is used. A header read (stop_at_tag) reads
 * the file in growing prefixes and parses each until the stop tag is reached, so its cost does
 * not depend on the size of the pixel data.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "dcm/internal.h"

struct dcm_file {
    dcm_dataset *meta;        /* group 0002, own tree */
    dcm_dataset *ds;          /* the data set, owns the source buffer */
    char ts[DCM_UID_MAX + 1]; /* transfer syntax of ds */
    bool preamble;            /* had the 128-byte preamble and "DICM" */
    dcm_pixel_info pixel;     /* pixel data location */
};

struct rd {
    uint8_t *base;        /* buffer (owned by the tree; swapped in place for big endian) */
    size_t len;           /* bytes in base */
    size_t pos;           /* next byte to parse */
    uint64_t base_offset; /* stream offset of base[0] */
    bool explicit_vr;     /* current encoding */
    bool big_endian;
    bool more;    /* base is a prefix of a longer file: running out means "read more" */
    bool copy;    /* copy values (meta group, parsed from a buffer we do not keep) */
    bool meta;    /* reading the meta group: stop at the first tag outside group 2 */
    bool stopped; /* reached opts.stop_at_tag */
    const dcm_read_opts *o;
    vp_error *err;
    uint32_t depth; /* current sequence nesting */
};

void dcm__read_opts_defaults(dcm_read_opts *o, const dcm_read_opts *in)
{
    if (in)
        *o = *in;
    else
        memset(o, 0, sizeof *o);
    if (!o->max_depth)
        o->max_depth = 64;
    if (!o->max_length)
        o->max_length = 0xFFFFFFFEull;
    if (!o->max_elements)
        o->max_elements = 1000000;
    if (!o->max_inflated)
        o->max_inflated = 1ull << 30;
}

static uint64_t at(const struct rd *r)
{
    return r->base_offset + r->pos;
}

/* An offset as error messages show it: counted from opts.message_origin. */
static uint64_t shown(const dcm_read_opts *o, uint64_t off)
{
    return off >= o->message_origin ? off - o->message_origin : off;
}

/* Running out of bytes: a real truncation, or a request for a longer prefix. */
static vp_status short_read(struct rd *r, uint32_t tag, const char *what, uint64_t need)
{
    if (r->more)
        return VP_EAGAIN;
    if (tag)
        return vp_error_set(r->err, VP_ETRUNC,
                            "element (%04X,%04X) at offset %llu: %s needs %llu bytes, "
                            "%llu remain",
                            DCM_GROUP(tag), DCM_ELEMENT(tag),
                            (unsigned long long)shown(r->o, at(r)), what, (unsigned long long)need,
                            (unsigned long long)(r->len - r->pos));
    return vp_error_set(r->err, VP_ETRUNC, "offset %llu: %s needs %llu bytes, %llu remain",
                        (unsigned long long)shown(r->o, at(r)), what, (unsigned long long)need,
                        (unsigned long long)(r->len - r->pos));
}

static uint16_t u16(const struct rd *r, const uint8_t *p)
{
    return r->big_endian ? vp_be16(p) : vp_le16(p);
}

static uint32_t u32(const struct rd *r, const uint8_t *p)
{
    return r->big_endian ? vp_be32(p) : vp_le32(p);
}

static bool is_upper(uint8_t c)
{
    return c >= 'A' && c <= 'Z';
}

enum dcm_vr dcm__resolve_vr(const dcm_dataset *ds, uint32_t tag, enum dcm_vr vr)
{
    switch ((int)vr) {
    case DCM_VR_US_SS: {
        /* Signedness follows Pixel Representation (0028,0103), PS3.3 C.7.6.3.1. */
        int64_t rep = 0;
        for (const dcm_dataset *d = ds; d; d = d->parent)
            if (dcm_dataset_get_int(d, DCM_TAG(0x0028, 0x0103), 0, &rep) == VP_OK)
                break;
        return rep == 1 ? DCM_VR_SS : DCM_VR_US;
    }
    case DCM_VR_OB_OW:
        /* PS3.5 A.1 c: in Implicit VR Little Endian, Pixel Data and Overlay Data are OW. */
        (void)tag;
        return DCM_VR_OW;
    case DCM_VR_US_SS_OW: return DCM_VR_OW;
    case DCM_VR_US_OW: return DCM_VR_US;
    case DCM_VR_NONE: return DCM_VR_UN;
    default: return vr;
    }
}

struct hdr {
    uint32_t tag;
    enum dcm_vr vr;
    uint32_t length;
    size_t size; /* header bytes */
    bool vr_from_dict;
};

/*
 * Decodes the element header at r->pos without consuming it. Item and delimiter tags have no
 * VR in any encoding (PS3.5 7.5). An Explicit VR header with bytes that are no VR is taken
 * as Implicit VR when it is the first element of the data set (files whose meta group says
 * explicit but whose body is implicit are common), else as UN if the reserved bytes are zero.
 */
static vp_status read_header(struct rd *r, const dcm_dataset *ds, struct hdr *h, bool first)
{
    if (r->len - r->pos < 8)
        return short_read(r, 0, "element header", 8);
    const uint8_t *p = r->base + r->pos;
    h->tag = DCM_TAG(u16(r, p), u16(r, p + 2));
    h->vr_from_dict = false;
    if (DCM_GROUP(h->tag) == 0xFFFE) {
        h->vr = DCM_VR_NONE;
        h->length = u32(r, p + 4);
        h->size = 8;
        return VP_OK;
    }
    if (r->explicit_vr) {
        enum dcm_vr vr = DCM_VR_NONE;
        if (is_upper(p[4]) && is_upper(p[5]))
            vr = dcm_vr_from_chars((char)p[4], (char)p[5]);
        if (vr == DCM_VR_NONE && first && !r->meta && !is_upper(p[4])) {
            r->explicit_vr = false; /* body is implicit despite the transfer syntax */
        } else if (vr == DCM_VR_NONE) {
            if (!is_upper(p[4]) || !is_upper(p[5]))
                return vp_error_set(r->err, VP_EPARSE,
                                    "element (%04X,%04X) at offset %llu: invalid VR bytes "
                                    "0x%02X 0x%02X",
                                    DCM_GROUP(h->tag), DCM_ELEMENT(h->tag),
                                    (unsigned long long)shown(r->o, at(r)), p[4], p[5]);
            /* An unknown VR of two letters: PS3.5 6.2 says future VRs use the 4-byte length
             * form, so read it as UN. */
            if (r->len - r->pos < 12)
                return short_read(r, h->tag, "element header", 12);
            h->vr = DCM_VR_UN;
            h->length = u32(r, p + 8);
            h->size = 12;
            return VP_OK;
        } else {
            h->vr = vr;
            if (dcm_vr_is_long(vr)) {
                if (r->len - r->pos < 12)
                    return short_read(r, h->tag, "element header", 12);
                h->length = u32(r, p + 8);
                h->size = 12;
            } else {
                h->length = u16(r, p + 6);
                h->size = 8;
            }
            return VP_OK;
        }
    }
    h->length = u32(r, p + 4);
    h->size = 8;
    h->vr = dcm__resolve_vr(ds, h->tag, dcm_dict_vr(h->tag));
    h->vr_from_dict = true;
    return VP_OK;
}

static vp_status parse_dataset(struct rd *r, dcm_dataset *ds, size_t end, bool top);

static vp_status count_element(struct rd *r, dcm_dataset *ds, uint32_t tag)
{
    if (ds->root->element_count >= r->o->max_elements)
        return vp_error_set(r->err, VP_ELIMIT,
                            "element (%04X,%04X) at offset %llu: more than %u elements",
                            DCM_GROUP(tag), DCM_ELEMENT(tag),
                            (unsigned long long)shown(r->o, at(r)), r->o->max_elements);
    return VP_OK;
}

/* Items of a sequence until end (defined length) or the Sequence Delimitation Item. */
static vp_status parse_items(struct rd *r, dcm_element *el, size_t end, bool undef)
{
    uint32_t tag = el->tag;
    if (r->depth >= r->o->max_depth)
        return vp_error_set(r->err, VP_ELIMIT,
                            "element (%04X,%04X) at offset %llu: sequences nested deeper "
                            "than %u",
                            DCM_GROUP(tag), DCM_ELEMENT(tag),
                            (unsigned long long)shown(r->o, at(r)), r->o->max_depth);
    r->depth++;
    for (;;) {
        if (!undef && r->pos >= end)
            break;
        if (r->len - r->pos < 8)
            return short_read(r, tag, "item header", 8);
        const uint8_t *p = r->base + r->pos;
        uint32_t itag = DCM_TAG(u16(r, p), u16(r, p + 2));
        uint32_t ilen = u32(r, p + 4);
        if (itag == DCM_TAG_SEQ_DELIM) {
            r->pos += 8;
            if (undef)
                break;
            continue; /* a stray delimiter inside a defined length: tolerated, dcmtk too */
        }
        if (itag != DCM_TAG_ITEM)
            return vp_error_set(r->err, VP_EPARSE,
                                "sequence (%04X,%04X) at offset %llu: expected an item, found "
                                "(%04X,%04X)",
                                DCM_GROUP(tag), DCM_ELEMENT(tag),
                                (unsigned long long)shown(r->o, at(r)), DCM_GROUP(itag),
                                DCM_ELEMENT(itag));
        r->pos += 8;
        dcm_dataset *item;
        vp_status st = dcm_element_add_item(el, &item);
        if (st)
            return vp_error_set(r->err, st, "out of memory");
        item->offset = at(r);
        size_t iend;
        if (ilen == DCM_UNDEFINED_LENGTH) {
            item->undef_len = true;
            iend = SIZE_MAX;
        } else {
            item->undef_len = false;
            if (ilen > r->len - r->pos) {
                if (r->more)
                    return VP_EAGAIN;
                return vp_error_set(r->err, VP_ETRUNC,
                                    "item of (%04X,%04X) at offset %llu: length %u exceeds "
                                    "the %llu bytes remaining",
                                    DCM_GROUP(tag), DCM_ELEMENT(tag),
                                    (unsigned long long)shown(r->o, at(r)) - 8, ilen,
                                    (unsigned long long)(r->len - r->pos));
            }
            iend = r->pos + ilen;
            if (!undef && iend > end)
                return vp_error_set(r->err, VP_EPARSE,
                                    "item of (%04X,%04X) at offset %llu: length %u runs past "
                                    "its sequence",
                                    DCM_GROUP(tag), DCM_ELEMENT(tag),
                                    (unsigned long long)shown(r->o, at(r)) - 8, ilen);
        }
        if ((st = parse_dataset(r, item, iend, false)))
            return st;
    }
    r->depth--;
    return VP_OK;
}

/* Encapsulated pixel data fragments until the Sequence Delimitation Item (PS3.5 A.4). */
static vp_status parse_fragments(struct rd *r, dcm_element *el)
{
    uint32_t tag = el->tag;
    for (;;) {
        if (r->len - r->pos < 8)
            return short_read(r, tag, "fragment header", 8);
        const uint8_t *p = r->base + r->pos;
        uint32_t itag = DCM_TAG(u16(r, p), u16(r, p + 2));
        uint32_t ilen = u32(r, p + 4);
        if (itag == DCM_TAG_SEQ_DELIM) {
            r->pos += 8;
            return VP_OK;
        }
        if (itag != DCM_TAG_ITEM || ilen == DCM_UNDEFINED_LENGTH)
            return vp_error_set(r->err, VP_EPARSE,
                                "pixel data (%04X,%04X) at offset %llu: expected a fragment "
                                "item, found (%04X,%04X) length 0x%08X",
                                DCM_GROUP(tag), DCM_ELEMENT(tag),
                                (unsigned long long)shown(r->o, at(r)), DCM_GROUP(itag),
                                DCM_ELEMENT(itag), ilen);
        r->pos += 8;
        if (ilen > r->len - r->pos)
            return short_read(r, tag, "fragment", ilen);
        vp_status st = count_element(r, el->owner, tag);
        if (st)
            return st;
        el->owner->root->element_count++;
        uint8_t *data = r->base + r->pos;
        if (r->copy && ilen) {
            data = vp_arena_dup(el->owner->root->arena, data, ilen);
            if (!data)
                return vp_error_set(r->err, VP_ENOMEM, "out of memory");
        }
        if (dcm__fragment_append(el, data, ilen, at(r)))
            return vp_error_set(r->err, VP_ENOMEM, "out of memory");
        r->pos += ilen;
    }
}

/* Elements out of order may have come before the Pixel Representation that decides their
 * "US or SS" VR: resolve those again once the data set is complete. */
static void resolve_again(dcm_dataset *ds)
{
    for (uint32_t i = 0; i < ds->n; i++) {
        dcm_element *el = &ds->el[i];
        if ((el->flags & EL_DICT_VR) && dcm_dict_vr(el->tag) == DCM_VR_US_SS)
            el->vr = (uint8_t)dcm__resolve_vr(ds, el->tag, DCM_VR_US_SS);
        if (el->flags & EL_SEQ) /* items look up Pixel Representation in their parents */
            for (uint32_t k = 0; k < el->u.items.n; k++)
                resolve_again(el->u.items.v[k]);
    }
}

static vp_status parse_elements(struct rd *r, dcm_dataset *ds, size_t end, bool top);

static vp_status parse_dataset(struct rd *r, dcm_dataset *ds, size_t end, bool top)
{
    vp_status st = parse_elements(r, ds, end, top);
    if (st == VP_OK && ds->unordered)
        resolve_again(ds);
    return st;
}

static vp_status parse_elements(struct rd *r, dcm_dataset *ds, size_t end, bool top)
{
    bool undef = end == SIZE_MAX;
    bool first = true;
    for (;;) {
        if (!undef && r->pos >= end) {
            if (r->pos > end)
                return vp_error_set(r->err, VP_EPARSE, "offset %llu: element runs past its item",
                                    (unsigned long long)shown(r->o, at(r)));
            return VP_OK;
        }
        if (top && r->pos == r->len)
            return r->more ? VP_EAGAIN : VP_OK; /* end of the stream or of a prefix */
        if (top && r->meta && r->len - r->pos >= 2 && u16(r, r->base + r->pos) != 0x0002)
            return VP_OK;
        if (top && r->len - r->pos < 8 && !r->more) {
            /* Trailing bytes shorter than a header: garbage after the data set, as written by
             * some devices. dcmtk and pydicom ignore it too. */
            bool zero = true;
            for (size_t i = r->pos; i < r->len; i++)
                zero = zero && r->base[i] == 0;
            if (zero)
                return VP_OK;
        }
        struct hdr h;
        vp_status st = read_header(r, ds, &h, first);
        if (st)
            return st;
        first = false;
        if (h.tag == DCM_TAG_ITEM_DELIM) {
            r->pos += h.size;
            if (undef)
                return VP_OK;
            continue; /* stray delimiter in a defined-length item: skip it */
        }
        if (h.tag == DCM_TAG_SEQ_DELIM && top) {
            r->pos += h.size; /* stray sequence delimiter at top level: skip it, as dcmtk */
            continue;
        }
        if (DCM_GROUP(h.tag) == 0xFFFE)
            return vp_error_set(
                r->err, VP_EPARSE, "offset %llu: unexpected (%04X,%04X) outside a sequence",
                (unsigned long long)shown(r->o, at(r)), DCM_GROUP(h.tag), DCM_ELEMENT(h.tag));
        if (top && r->meta && DCM_GROUP(h.tag) != 0x0002)
            return VP_OK;
        if (top && r->o->stop_at_tag && h.tag >= r->o->stop_at_tag) {
            r->stopped = true;
            return VP_OK;
        }
        if ((st = count_element(r, ds, h.tag)))
            return st;
        uint64_t value_at = at(r) + h.size;
        size_t start = r->pos;
        r->pos += h.size;
        bool seq = h.vr == DCM_VR_SQ;
        if (h.length == DCM_UNDEFINED_LENGTH) {
            if (seq || h.vr == DCM_VR_UN) {
                /* UN with undefined length holds a sequence in Implicit VR LE (PS3.5 6.2.2). */
                dcm_element *el = dcm__slot(ds, h.tag, DCM_VR_SQ);
                if (!el)
                    return vp_error_set(r->err, VP_ENOMEM, "out of memory");
                el->flags = EL_SEQ | EL_UNDEF_LEN;
                el->offset = value_at;
                bool ex = r->explicit_vr, be = r->big_endian;
                if (h.vr == DCM_VR_UN) {
                    r->explicit_vr = false;
                    r->big_endian = false;
                }
                st = parse_items(r, el, SIZE_MAX, true);
                r->explicit_vr = ex;
                r->big_endian = be;
                if (st)
                    return st;
            } else {
                /* Encapsulated data is OB whatever the header or dictionary says (PS3.5
                 * A.4); Implicit VR would otherwise give OW. */
                dcm_element *el = dcm__slot(ds, h.tag, DCM_VR_OB);
                if (!el)
                    return vp_error_set(r->err, VP_ENOMEM, "out of memory");
                el->flags = EL_ENCAPS | EL_UNDEF_LEN;
                el->offset = value_at;
                if ((st = parse_fragments(r, el)))
                    return st;
            }
            continue;
        }
        if (h.length > r->o->max_length)
            return vp_error_set(r->err, VP_ELIMIT,
                                "element (%04X,%04X) at offset %llu: length %u exceeds the "
                                "limit %llu",
                                DCM_GROUP(h.tag), DCM_ELEMENT(h.tag),
                                (unsigned long long)shown(r->o, r->base_offset + start), h.length,
                                (unsigned long long)r->o->max_length);
        if (h.length > r->len - r->pos) {
            if (r->more)
                return VP_EAGAIN;
            return vp_error_set(r->err, VP_ETRUNC,
                                "element (%04X,%04X) at offset %llu: length %u exceeds the "
                                "%llu bytes remaining",
                                DCM_GROUP(h.tag), DCM_ELEMENT(h.tag),
                                (unsigned long long)shown(r->o, r->base_offset + start), h.length,
                                (unsigned long long)(r->len - r->pos));
        }
        if (!undef && r->pos + h.length > end)
            return vp_error_set(r->err, VP_EPARSE,
                                "element (%04X,%04X) at offset %llu: length %u runs past its "
                                "item",
                                DCM_GROUP(h.tag), DCM_ELEMENT(h.tag),
                                (unsigned long long)shown(r->o, r->base_offset + start), h.length);
        if (seq) {
            dcm_element *el = dcm__slot(ds, h.tag, DCM_VR_SQ);
            if (!el)
                return vp_error_set(r->err, VP_ENOMEM, "out of memory");
            el->flags = EL_SEQ;
            el->offset = value_at;
            if ((st = parse_items(r, el, r->pos + h.length, false)))
                return st;
            continue;
        }
        dcm_element *el = dcm__slot(ds, h.tag, h.vr);
        if (!el)
            return vp_error_set(r->err, VP_ENOMEM, "out of memory");
        if (h.vr_from_dict)
            el->flags |= EL_DICT_VR;
        el->length = h.length;
        el->offset = value_at;
        uint8_t *v = r->base + r->pos;
        if (r->copy && h.length) {
            v = vp_arena_dup(ds->root->arena, v, h.length);
            if (!v)
                return vp_error_set(r->err, VP_ENOMEM, "out of memory");
        }
        if (r->big_endian)
            dcm__swap(h.vr, v, h.length);
        el->u.value = h.length ? v : NULL;
        r->pos += h.length;
    }
}

/* ---- pixel data location ---- */

static void pixel_info_fini(dcm_pixel_info *pi)
{
    vp_free(pi->frames);
    vp_free(pi->fragments);
    memset(pi, 0, sizeof *pi);
}

/* Maps fragments to frames (PS3.5 A.4): Extended Offset Table, else Basic Offset Table, else
 * one fragment per frame, else all fragments in one frame. */
static vp_status map_frames(dcm_pixel_info *pi, const dcm_dataset *ds, const uint8_t *bot,
                            uint32_t bot_len, uint32_t nframes)
{
    uint32_t nf = pi->fragment_count;
    /* Every frame starts a fragment (PS3.5 A.4), so a Number of Frames above the fragment
     * count is a lie: no table rather than an allocation sized by it. */
    if (nframes == 0 || nf == 0 || nframes > nf)
        return VP_OK;
    /* Offsets of each fragment's item tag relative to the first fragment's item tag. */
    uint64_t *rel = vp_malloc((size_t)nf * sizeof *rel);
    if (!rel)
        return VP_ENOMEM;
    for (uint32_t i = 0; i < nf; i++)
        rel[i] = pi->fragments[i].offset - 8 - (pi->fragments[0].offset - 8);
    uint64_t *starts = NULL;
    const dcm_element *eot = dcm_dataset_find(ds, DCM_TAG_EXTENDED_OFFSET_TABLE);
    if (eot && dcm_element_value(eot) && dcm_element_length(eot) / 8 == nframes) {
        starts = vp_malloc((size_t)nframes * sizeof *starts);
        if (!starts)
            goto nomem;
        for (uint32_t i = 0; i < nframes; i++) {
            const uint8_t *p = dcm_element_value(eot) + (size_t)i * 8;
            starts[i] = vp_le32(p) | ((uint64_t)vp_le32(p + 4) << 32);
        }
    } else if (bot && bot_len / 4 == nframes) {
        starts = vp_malloc((size_t)nframes * sizeof *starts);
        if (!starts)
            goto nomem;
        for (uint32_t i = 0; i < nframes; i++)
            starts[i] = vp_le32(bot + (size_t)i * 4);
    }
    pi->frames = vp_calloc(nframes, sizeof *pi->frames);
    if (!pi->frames)
        goto nomem;
    uint32_t count = 0;
    if (starts) {
        uint32_t k = 0;
        for (uint32_t f = 0; f < nframes; f++) {
            while (k < nf && rel[k] < starts[f])
                k++;
            if (k >= nf || rel[k] != starts[f])
                break; /* table does not match the fragments: give up on it */
            uint64_t next = f + 1 < nframes ? starts[f + 1] : UINT64_MAX;
            dcm_frame_ref *fr = &pi->frames[count++];
            fr->first_fragment = k;
            fr->offset = pi->fragments[k].offset;
            while (k < nf && rel[k] < next) {
                fr->fragment_count++;
                fr->length += pi->fragments[k].length;
                k++;
            }
        }
        if (count != nframes)
            count = 0, memset(pi->frames, 0, (size_t)nframes * sizeof *pi->frames);
    }
    if (count == 0 && nf == nframes) {
        for (uint32_t f = 0; f < nframes; f++)
            pi->frames[f] = (dcm_frame_ref){pi->fragments[f].offset, pi->fragments[f].length, f, 1};
        count = nframes;
    } else if (count == 0 && nframes == 1) {
        dcm_frame_ref *fr = &pi->frames[0];
        fr->offset = pi->fragments[0].offset;
        fr->fragment_count = nf;
        for (uint32_t i = 0; i < nf; i++)
            fr->length += pi->fragments[i].length;
        count = 1;
    }
    pi->frame_count = count;
    if (count == 0) {
        vp_free(pi->frames);
        pi->frames = NULL;
    }
    vp_free(starts);
    vp_free(rel);
    return VP_OK;
nomem:
    vp_free(starts);
    vp_free(rel);
    return VP_ENOMEM;
}

/* Frame tables are not built past this many frames (a 2 GB clip of 1 KB frames). */
#define DCM_MAX_FRAMES (2u << 20)

static uint32_t number_of_frames(const dcm_dataset *ds)
{
    const char *s;
    size_t n;
    if (dcm_dataset_get_str(ds, DCM_TAG(0x0028, 0x0008), 0, &s, &n) == VP_OK && n && n < 12) {
        char tmp[12];
        memcpy(tmp, s, n);
        tmp[n] = 0;
        long v = strtol(tmp, NULL, 10);
        if (v > 0 && v < 0x7FFFFFFF)
            return (uint32_t)v;
    }
    return 1;
}

/* Native frames: frame size from the image attributes when they agree with the length. */
static vp_status native_frames(dcm_pixel_info *pi, const dcm_dataset *ds)
{
    uint32_t nframes = number_of_frames(ds);
    int64_t rows = 0, cols = 0, spp = 1, bits = 0;
    dcm_dataset_get_int(ds, DCM_TAG(0x0028, 0x0010), 0, &rows);
    dcm_dataset_get_int(ds, DCM_TAG(0x0028, 0x0011), 0, &cols);
    dcm_dataset_get_int(ds, DCM_TAG(0x0028, 0x0002), 0, &spp);
    dcm_dataset_get_int(ds, DCM_TAG(0x0028, 0x0100), 0, &bits);
    uint64_t frame_bits = 0, frame = 0;
    if (rows > 0 && cols > 0 && spp > 0 && bits > 0 &&
        !vp_mul_u64((uint64_t)rows, (uint64_t)cols, &frame_bits) &&
        !vp_mul_u64(frame_bits, (uint64_t)spp, &frame_bits) &&
        !vp_mul_u64(frame_bits, (uint64_t)bits, &frame_bits))
        frame = frame_bits / 8;
    if (frame == 0 || frame_bits % 8 || frame > pi->value_length / nframes)
        frame = nframes ? pi->value_length / nframes : 0; /* fall back on an equal split */
    /* Frames must fit in the value; a lying Number of Frames gets no table, not a huge one. */
    if (frame == 0 || nframes > DCM_MAX_FRAMES)
        return VP_OK;
    pi->frames = vp_calloc(nframes, sizeof *pi->frames);
    if (!pi->frames)
        return VP_ENOMEM;
    for (uint32_t f = 0; f < nframes; f++)
        pi->frames[f] = (dcm_frame_ref){pi->value_offset + (uint64_t)f * frame, frame, 0, 0};
    pi->frame_count = nframes;
    return VP_OK;
}

static vp_status fill_pixel_info(dcm_file *f)
{
    const dcm_element *el = dcm_dataset_find(f->ds, DCM_TAG_PIXEL_DATA);
    dcm_pixel_info *pi = &f->pixel;
    if (!el)
        return VP_OK;
    pi->present = true;
    pi->vr = el->vr;
    pi->value_offset = el->offset;
    pi->offsets_in_file = !dcm_ts_lookup(f->ts).deflated;
    if (el->flags & EL_ENCAPS) {
        pi->encapsulated = true;
        uint32_t n = el->u.frags.n;
        if (n == 0)
            return VP_OK;
        pi->fragment_count = n - 1;
        if (n > 1) {
            pi->fragments = vp_malloc((size_t)(n - 1) * sizeof *pi->fragments);
            if (!pi->fragments)
                return VP_ENOMEM;
            for (uint32_t i = 1; i < n; i++)
                pi->fragments[i - 1] =
                    (dcm_fragment_ref){el->u.frags.v[i].offset, el->u.frags.v[i].len};
        }
        const struct frag *last = &el->u.frags.v[n - 1];
        pi->value_length = last->offset + last->len + 8 - pi->value_offset;
        return map_frames(pi, f->ds, el->u.frags.v[0].data, el->u.frags.v[0].len,
                          number_of_frames(f->ds));
    }
    pi->value_length = el->length;
    return native_frames(pi, f->ds);
}

/* ---- Part 10 ---- */

static vp_status inflate_rest(struct rd *r, uint8_t **out, size_t *out_len)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, -MAX_WBITS) != Z_OK)
        return vp_error_set(r->err, VP_ENOMEM, "cannot start inflate");
    size_t cap = (r->len - r->pos) * 4 + 4096, n = 0;
    uint8_t *buf = vp_malloc(cap);
    vp_status st = VP_OK;
    if (!buf) {
        st = vp_error_set(r->err, VP_ENOMEM, "out of memory");
        goto done;
    }
    z.next_in = r->base + r->pos;
    z.avail_in = (uInt)(r->len - r->pos > 0x7FFFFFFF ? 0x7FFFFFFF : r->len - r->pos);
    for (;;) {
        if (n == cap) {
            if (cap >= r->o->max_inflated) {
                st = vp_error_set(r->err, VP_ELIMIT, "deflated data set inflates past %llu bytes",
                                  (unsigned long long)r->o->max_inflated);
                goto done;
            }
            size_t ncap = cap * 2 > r->o->max_inflated ? r->o->max_inflated : cap * 2;
            uint8_t *nb = vp_realloc(buf, ncap);
            if (!nb) {
                st = vp_error_set(r->err, VP_ENOMEM, "out of memory");
                goto done;
            }
            buf = nb;
            cap = ncap;
        }
        z.next_out = buf + n;
        z.avail_out = (uInt)(cap - n > 0x7FFFFFFF ? 0x7FFFFFFF : cap - n);
        int rc = inflate(&z, Z_NO_FLUSH);
        n = (size_t)(z.next_out - buf);
        if (rc == Z_STREAM_END)
            break;
        if (rc == Z_BUF_ERROR && z.avail_in == 0) {
            /* Stream ends without its final block: keep what inflated, as dcmtk does. */
            break;
        }
        if (rc != Z_OK && rc != Z_BUF_ERROR) {
            st = vp_error_set(r->err, VP_EPARSE, "offset %llu: deflated data set is corrupt: %s",
                              (unsigned long long)shown(r->o, at(r)),
                              z.msg ? z.msg : "inflate failed");
            goto done;
        }
    }
done:
    inflateEnd(&z);
    if (st) {
        vp_free(buf);
        return st;
    }
    *out = buf;
    *out_len = n;
    return VP_OK;
}

/* Guesses the encoding of a data set with no meta group from its first element. */
static void sniff(const uint8_t *p, size_t n, char ts[DCM_UID_MAX + 1])
{
    strcpy(ts, DCM_TS_IMPLICIT_LE);
    if (n < 8)
        return;
    bool explicit_vr = is_upper(p[4]) && is_upper(p[5]) &&
                       dcm_vr_from_chars((char)p[4], (char)p[5]) != DCM_VR_NONE;
    /* Group numbers of the first element are small; in big endian the first byte is 0. */
    bool be = p[0] == 0 && p[1] != 0;
    if (explicit_vr)
        strcpy(ts, be ? DCM_TS_EXPLICIT_BE : DCM_TS_EXPLICIT_LE);
}

void dcm_file_free(dcm_file *f)
{
    if (!f)
        return;
    dcm_dataset_free(f->meta);
    dcm_dataset_free(f->ds);
    pixel_info_fini(&f->pixel);
    vp_free(f);
}

/*
 * Parses a whole Part 10 stream held in buf (ownership passes to the file on success and on
 * failure). more: buf is a prefix of a longer file (header reads); VP_EAGAIN asks for more.
 */
static vp_status parse_part10(uint8_t *buf, size_t len, bool more, const dcm_read_opts *o,
                              dcm_file **out, vp_error *err)
{
    vp_status st = VP_OK;
    dcm_file *f = vp_calloc(1, sizeof *f);
    if (!f) {
        vp_free(buf);
        return vp_error_set(err, VP_ENOMEM, "out of memory");
    }
    f->meta = dcm_dataset_new();
    f->ds = dcm_dataset_new();
    if (!f->meta || !f->ds) {
        vp_free(buf);
        st = vp_error_set(err, VP_ENOMEM, "out of memory");
        goto fail;
    }
    dcm__root_adopt_source(f->ds, buf);
    struct rd r = {.base = buf, .len = len, .more = more, .o = o, .err = err};
    if (len >= 132 && memcmp(buf + 128, "DICM", 4) == 0) {
        f->preamble = true;
        r.pos = 132;
    } else if (len >= 4 && memcmp(buf, "DICM", 4) == 0) {
        r.pos = 4;
    } else if (len < 132 && more) {
        return dcm_file_free(f), VP_EAGAIN;
    }
    /* File Meta Information: Explicit VR Little Endian (PS3.10 7.1), read while the group is
     * 0002 whatever its Group Length says (a wrong group length is a common fault). */
    if (len - r.pos >= 6 && vp_le16(buf + r.pos) == 0x0002) {
        r.explicit_vr = !(buf[r.pos + 4] < 'A' || buf[r.pos + 4] > 'Z');
        r.meta = true;
        r.copy = true;
        st = parse_dataset(&r, f->meta, SIZE_MAX, true);
        if (st)
            goto fail;
        r.meta = false;
        r.copy = false;
    }
    const char *ts;
    size_t tslen;
    if (dcm_dataset_get_str(f->meta, DCM_TAG_TRANSFER_SYNTAX_UID, 0, &ts, &tslen) == VP_OK &&
        tslen > 0 && tslen <= DCM_UID_MAX) {
        memcpy(f->ts, ts, tslen);
        f->ts[tslen] = 0;
    } else {
        sniff(buf + r.pos, len - r.pos, f->ts);
    }
    dcm_ts_info ti = dcm_ts_lookup(f->ts);
    r.explicit_vr = ti.explicit_vr;
    r.big_endian = ti.big_endian;
    if (ti.deflated) {
        if (more) {
            /* A header read cannot inflate a prefix cheaply; ask for the whole file. */
            st = VP_EAGAIN;
            goto fail;
        }
        uint8_t *inflated;
        size_t ilen;
        if ((st = inflate_rest(&r, &inflated, &ilen)))
            goto fail;
        dcm__root_adopt_source(f->ds, inflated); /* frees the compressed buffer */
        r.base = inflated;
        r.len = ilen;
        r.pos = 0;
        r.base_offset = 0;
    }
    st = parse_dataset(&r, f->ds, SIZE_MAX, true);
    if (st)
        goto fail;
    if (r.stopped && o->stop_at_tag == DCM_TAG_PIXEL_DATA) {
        /* Keep the pixel data header as a skipped element so callers see where it is. */
        struct hdr h;
        if (read_header(&r, f->ds, &h, false) == VP_OK && h.tag == DCM_TAG_PIXEL_DATA) {
            bool ow = h.vr == DCM_VR_OW && h.length != DCM_UNDEFINED_LENGTH;
            dcm_element *el = dcm__slot(f->ds, h.tag, ow ? DCM_VR_OW : DCM_VR_OB);
            if (!el) {
                st = vp_error_set(err, VP_ENOMEM, "out of memory");
                goto fail;
            }
            el->flags = EL_SKIPPED;
            el->length = h.length;
            el->offset = at(&r) + h.size;
            if (h.length == DCM_UNDEFINED_LENGTH)
                el->flags |= EL_UNDEF_LEN;
            f->pixel.present = true;
            f->pixel.vr = el->vr;
            f->pixel.header_offset = at(&r);
            f->pixel.value_offset = el->offset;
            f->pixel.offsets_in_file = !ti.deflated;
            f->pixel.encapsulated = h.length == DCM_UNDEFINED_LENGTH;
            if (!f->pixel.encapsulated) {
                f->pixel.value_length = h.length;
                if ((st = native_frames(&f->pixel, f->ds))) {
                    vp_error_set(err, st, "out of memory for the pixel data tables");
                    goto fail;
                }
            }
        }
    } else if (!r.stopped) {
        const dcm_element *pel = dcm_dataset_find(f->ds, DCM_TAG_PIXEL_DATA);
        if ((st = fill_pixel_info(f))) {
            vp_error_set(err, st, "out of memory for the pixel data tables");
            goto fail;
        }
        if (pel)
            f->pixel.header_offset = pel->offset - ((pel->flags & EL_ENCAPS) ? 12 : 0);
    }
    *out = f;
    return VP_OK;
fail:
    dcm_file_free(f);
    return st;
}

/* Header read of an encapsulated pixel data element: walks the item headers with pread,
 * skipping fragment data, so nothing of the compressed frames is read. */
static vp_status walk_fragments(int fd, uint64_t size, dcm_file *f, const dcm_read_opts *o,
                                vp_error *err)
{
    dcm_pixel_info *pi = &f->pixel;
    uint64_t pos = pi->value_offset;
    uint8_t *bot = NULL;
    uint32_t bot_len = 0, cap = 0, n = 0;
    dcm_fragment_ref *frags = NULL;
    bool first = true;
    bool be = dcm_ts_lookup(f->ts).big_endian;
    vp_status st = VP_OK;
    for (;;) {
        uint8_t h[8];
        if (pos + 8 > size || pread(fd, h, 8, (off_t)pos) != 8) {
            st = vp_error_set(err, VP_ETRUNC, "pixel data at offset %llu: fragments end early",
                              (unsigned long long)shown(o, pos));
            goto fail;
        }
        uint32_t tag =
            be ? DCM_TAG(vp_be16(h), vp_be16(h + 2)) : DCM_TAG(vp_le16(h), vp_le16(h + 2));
        uint32_t len = be ? vp_be32(h + 4) : vp_le32(h + 4);
        pos += 8;
        if (tag == DCM_TAG_SEQ_DELIM)
            break;
        if (tag != DCM_TAG_ITEM || len == DCM_UNDEFINED_LENGTH || len > size - pos) {
            st = vp_error_set(err, VP_EPARSE,
                              "pixel data at offset %llu: bad fragment item (%04X,%04X) "
                              "length %u",
                              (unsigned long long)shown(o, pos - 8), DCM_GROUP(tag),
                              DCM_ELEMENT(tag), len);
            goto fail;
        }
        if (first) {
            first = false;
            if (len) {
                if (len > 64u << 20) {
                    st = vp_error_set(err, VP_ELIMIT, "basic offset table of %u bytes", len);
                    goto fail;
                }
                bot = vp_malloc(len);
                if (!bot) {
                    st = vp_error_set(err, VP_ENOMEM, "out of memory");
                    goto fail;
                }
                if (pread(fd, bot, len, (off_t)pos) != (ssize_t)len) {
                    st = vp_error_set(err, VP_EIO, "cannot read basic offset table");
                    goto fail;
                }
                bot_len = len;
            }
        } else {
            if (n == cap) {
                cap = cap ? cap * 2 : 16;
                if (cap > 16u << 20) {
                    st = vp_error_set(err, VP_ELIMIT, "more than 16M fragments");
                    goto fail;
                }
                dcm_fragment_ref *nf = vp_realloc(frags, (size_t)cap * sizeof *nf);
                if (!nf) {
                    st = vp_error_set(err, VP_ENOMEM, "out of memory");
                    goto fail;
                }
                frags = nf;
            }
            frags[n++] = (dcm_fragment_ref){pos, len};
        }
        pos += len;
    }
    pi->fragments = frags;
    pi->fragment_count = n;
    pi->value_length = pos - pi->value_offset;
    st = map_frames(pi, f->ds, bot, bot_len, number_of_frames(f->ds));
    if (st)
        vp_error_set(err, st, "out of memory");
    vp_free(bot);
    return st;
fail:
    vp_free(bot);
    vp_free(frags);
    return st;
}

static vp_status read_fully(int fd, uint8_t *buf, size_t n, uint64_t off)
{
    size_t done = 0;
    while (done < n) {
        ssize_t k = pread(fd, buf + done, n - done, (off_t)(off + done));
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return VP_EIO;
        done += (size_t)k;
    }
    return VP_OK;
}

vp_status dcm_file_read(const char *path, const dcm_read_opts *opts, dcm_file **out, vp_error *err)
{
    dcm_read_opts o;
    dcm__read_opts_defaults(&o, opts);
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return vp_error_set(err, VP_EIO, "cannot open: %s", strerror(errno));
    vp_status st;
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        st = vp_error_set(err, VP_EIO, "not a regular file");
        goto done;
    }
    uint64_t size = (uint64_t)sb.st_size;
    if (size > o.max_length + 4096 || size > SIZE_MAX / 2) {
        st = vp_error_set(err, VP_ELIMIT, "file of %llu bytes is over the limit",
                          (unsigned long long)size);
        goto done;
    }
    size_t chunk = o.stop_at_tag ? 65536 : (size_t)size;
    for (;;) {
        if (chunk > size)
            chunk = (size_t)size;
        bool more = chunk < size;
        uint8_t *buf = vp_malloc(chunk + 1);
        if (!buf) {
            st = vp_error_set(err, VP_ENOMEM, "out of memory");
            goto done;
        }
        if (read_fully(fd, buf, chunk, 0)) {
            vp_free(buf);
            st = vp_error_set(err, VP_EIO, "read failed: %s", strerror(errno));
            goto done;
        }
        st = parse_part10(buf, chunk, more, &o, out, err);
        if (st != VP_EAGAIN)
            break;
        chunk = chunk * 4;
    }
    if (st == VP_OK && o.stop_at_tag == DCM_TAG_PIXEL_DATA && (*out)->pixel.present &&
        (*out)->pixel.encapsulated && (*out)->pixel.fragments == NULL &&
        (*out)->pixel.offsets_in_file) {
        st = walk_fragments(fd, size, *out, &o, err);
        if (st) {
            dcm_file_free(*out);
            *out = NULL;
        }
    }
done:
    close(fd);
    return st;
}

vp_status dcm_file_read_mem(const void *data, size_t len, const dcm_read_opts *opts, dcm_file **out,
                            vp_error *err)
{
    dcm_read_opts o;
    dcm__read_opts_defaults(&o, opts);
    *out = NULL;
    if (len > o.max_length + 4096)
        return vp_error_set(err, VP_ELIMIT, "input of %zu bytes is over the limit", len);
    uint8_t *buf = vp_malloc(len + 1);
    if (!buf)
        return vp_error_set(err, VP_ENOMEM, "out of memory");
    if (len)
        memcpy(buf, data, len);
    vp_status st = parse_part10(buf, len, false, &o, out, err);
    if (st == VP_OK && o.stop_at_tag == DCM_TAG_PIXEL_DATA && (*out)->pixel.present &&
        (*out)->pixel.encapsulated && !(*out)->pixel.fragments) {
        /* The bytes are here: parse the fragments from memory instead of pread. */
        dcm_file_free(*out);
        *out = NULL;
        o.stop_at_tag = 0;
        buf = vp_malloc(len + 1);
        if (!buf)
            return vp_error_set(err, VP_ENOMEM, "out of memory");
        memcpy(buf, data, len);
        st = parse_part10(buf, len, false, &o, out, err);
    }
    return st;
}

dcm_dataset *dcm_file_meta(const dcm_file *f)
{
    return f->meta;
}

dcm_dataset *dcm_file_dataset(const dcm_file *f)
{
    return f->ds;
}

dcm_dataset *dcm_file_take_dataset(dcm_file *f)
{
    dcm_dataset *ds = f->ds, *empty = dcm_dataset_new();
    if (!empty)
        return NULL;
    f->ds = empty;
    return ds;
}

const char *dcm_file_transfer_syntax(const dcm_file *f)
{
    return f->ts;
}

bool dcm_file_has_preamble(const dcm_file *f)
{
    return f->preamble;
}

const dcm_pixel_info *dcm_file_pixel_info(const dcm_file *f)
{
    return &f->pixel;
}

vp_status dcm_dataset_read_mem(const void *data, size_t len, const char *ts,
                               const dcm_read_opts *opts, dcm_dataset **out, vp_error *err)
{
    dcm_read_opts o;
    dcm__read_opts_defaults(&o, opts);
    *out = NULL;
    dcm_ts_info ti = dcm_ts_lookup(ts);
    dcm_dataset *ds = dcm_dataset_new();
    uint8_t *buf = vp_malloc(len + 1);
    if (!ds || !buf) {
        dcm_dataset_free(ds);
        vp_free(buf);
        return vp_error_set(err, VP_ENOMEM, "out of memory");
    }
    if (len)
        memcpy(buf, data, len);
    dcm__root_adopt_source(ds, buf);
    struct rd r = {.base = buf,
                   .len = len,
                   .o = &o,
                   .err = err,
                   .explicit_vr = ti.explicit_vr,
                   .big_endian = ti.big_endian};
    vp_status st = VP_OK;
    if (ti.deflated) {
        uint8_t *inflated;
        size_t ilen;
        if ((st = inflate_rest(&r, &inflated, &ilen)))
            goto fail;
        dcm__root_adopt_source(ds, inflated);
        r.base = inflated;
        r.len = ilen;
    }
    if ((st = parse_dataset(&r, ds, SIZE_MAX, true)))
        goto fail;
    *out = ds;
    return VP_OK;
fail:
    dcm_dataset_free(ds);
    return st;
}
