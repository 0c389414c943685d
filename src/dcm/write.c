/* SPDX-License-Identifier: MIT */
/*
 * Writing data sets (PS3.5 7.1 element encodings, 7.5 sequences, A.4 encapsulation) and Part 10
 * files (PS3.10 7.1: preamble, "DICM", File Meta Information in Explicit VR Little Endian).
 * Lengths are recomputed; odd values are padded to even length (PS3.5 7.1.1).
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>
#include <zlib.h>

#include "dcm/internal.h"

struct wr {
    dcm_sink *sink;
    bool explicit_vr;
    bool big_endian;
    bool force_defined;   /* opts->defined_lengths */
    bool force_undefined; /* opts->undefined_lengths */
    vp_error *err;
    vp_status st; /* sticky */
    size_t n;     /* bytes in buf */
    uint8_t buf[65536];
};

static void flush(struct wr *w)
{
    if (w->st == VP_OK && w->n) {
        w->st = w->sink->write(w->sink->ctx, w->buf, w->n);
        if (w->st)
            vp_error_set(w->err, w->st, "write failed");
    }
    w->n = 0;
}

static void put(struct wr *w, const void *p, size_t n)
{
    if (w->st || n == 0)
        return;
    if (n >= sizeof w->buf) {
        flush(w);
        if (w->st == VP_OK) {
            w->st = w->sink->write(w->sink->ctx, p, n);
            if (w->st)
                vp_error_set(w->err, w->st, "write failed");
        }
        return;
    }
    if (sizeof w->buf - w->n < n)
        flush(w);
    memcpy(w->buf + w->n, p, n);
    w->n += n;
}

static void put16(struct wr *w, uint16_t v)
{
    uint8_t b[2];
    if (w->big_endian)
        vp_put_be16(b, v);
    else
        vp_put_le16(b, v);
    put(w, b, 2);
}

static void put32(struct wr *w, uint32_t v)
{
    uint8_t b[4];
    if (w->big_endian)
        vp_put_be32(b, v);
    else
        vp_put_le32(b, v);
    put(w, b, 4);
}

static bool seq_undefined(const struct wr *w, bool flag)
{
    return w->force_undefined || (!w->force_defined && flag);
}

/* VR written for an element: short-length VRs whose value does not fit 16 bits become UN
 * (PS3.5 6.2.2 note), and Implicit VR has no VR at all. */
static enum dcm_vr written_vr(const dcm_element *el, uint64_t padded)
{
    enum dcm_vr vr = (enum dcm_vr)el->vr;
    if (!dcm_vr_is_long(vr) && padded > 0xFFFF)
        return DCM_VR_UN;
    return vr;
}

static uint64_t header_size(const struct wr *w, enum dcm_vr vr)
{
    if (!w->explicit_vr)
        return 8;
    return dcm_vr_is_long(vr) ? 12 : 8;
}

static uint64_t dataset_size(const struct wr *w, const dcm_dataset *ds);

static uint64_t item_size(const struct wr *w, const dcm_dataset *item)
{
    uint64_t n = 8 + dataset_size(w, item);
    if (seq_undefined(w, item->undef_len))
        n += 8;
    return n;
}

static uint64_t element_size(const struct wr *w, const dcm_element *el)
{
    if (el->flags & EL_SEQ) {
        uint64_t n = header_size(w, DCM_VR_SQ);
        for (uint32_t i = 0; i < el->u.items.n; i++)
            n += item_size(w, el->u.items.v[i]);
        if (seq_undefined(w, el->flags & EL_UNDEF_LEN))
            n += 8;
        return n;
    }
    if (el->flags & EL_ENCAPS) {
        uint64_t n = header_size(w, (enum dcm_vr)el->vr) + 8;
        for (uint32_t i = 0; i < el->u.frags.n; i++)
            n += 8 + el->u.frags.v[i].len + (el->u.frags.v[i].len & 1);
        return n;
    }
    uint64_t padded = el->length + (el->length & 1);
    return header_size(w, written_vr(el, padded)) + padded;
}

static uint64_t dataset_size(const struct wr *w, const dcm_dataset *ds)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < ds->n; i++)
        if (DCM_GROUP(ds->el[i].tag) != 0x0002 || ds->parent)
            n += element_size(w, &ds->el[i]);
    return n;
}

static void put_header(struct wr *w, uint32_t tag, enum dcm_vr vr, uint32_t len)
{
    put16(w, DCM_GROUP(tag));
    put16(w, DCM_ELEMENT(tag));
    if (!w->explicit_vr) {
        put32(w, len);
        return;
    }
    const char *name = dcm_vr_name(vr);
    put(w, name, 2);
    if (dcm_vr_is_long(vr)) {
        put16(w, 0);
        put32(w, len);
    } else {
        put16(w, (uint16_t)len);
    }
}

static void put_item_tag(struct wr *w, uint32_t tag, uint32_t len)
{
    put16(w, DCM_GROUP(tag));
    put16(w, DCM_ELEMENT(tag));
    put32(w, len);
}

/* Value bytes in the output byte order for vr, then the pad byte to even length. A big endian value
 * of odd length (invalid, but read) ends in a partial unit: when the pad byte completes it, the
 * unit is swapped with the pad in it, so reading back gives the value followed by the pad. */
static void put_value(struct wr *w, enum dcm_vr vr, uint8_t pad, const uint8_t *p, uint32_t len)
{
    unsigned unit = dcm_vr_swap_unit(vr);
    if (len == 0)
        return;
    if (!w->big_endian || unit <= 1) {
        put(w, p, len);
        if (len & 1)
            put(w, &pad, 1);
        return;
    }
    uint8_t tmp[4096];
    uint32_t done = 0;
    while (len - done >= unit) {
        uint32_t k = len - done > sizeof tmp ? sizeof tmp : len - done;
        k -= k % unit;
        memcpy(tmp, p + done, k);
        dcm__swap(vr, tmp, k);
        put(w, tmp, k);
        done += k;
    }
    uint32_t rest = len - done;
    if (rest + 1 == unit) {
        memcpy(tmp, p + done, rest);
        tmp[rest] = pad;
        dcm__swap(vr, tmp, unit);
        put(w, tmp, unit);
        return;
    }
    put(w, p + done, rest);
    if (len & 1)
        put(w, &pad, 1);
}

static void write_dataset(struct wr *w, const dcm_dataset *ds);

static void write_element(struct wr *w, const dcm_element *el)
{
    if (w->st)
        return;
    if (el->flags & EL_SKIPPED) {
        w->st = vp_error_set(w->err, VP_EINVAL,
                             "element (%04X,%04X): value was not loaded and cannot be written",
                             DCM_GROUP(el->tag), DCM_ELEMENT(el->tag));
        return;
    }
    if (el->flags & EL_SEQ) {
        bool undef = seq_undefined(w, el->flags & EL_UNDEF_LEN);
        uint64_t len = 0;
        if (!undef) {
            for (uint32_t i = 0; i < el->u.items.n; i++)
                len += item_size(w, el->u.items.v[i]);
            if (len >= DCM_UNDEFINED_LENGTH) {
                undef = true; /* too large for a defined length */
            }
        }
        put_header(w, el->tag, DCM_VR_SQ, undef ? DCM_UNDEFINED_LENGTH : (uint32_t)len);
        for (uint32_t i = 0; i < el->u.items.n; i++) {
            const dcm_dataset *item = el->u.items.v[i];
            bool iundef = seq_undefined(w, item->undef_len);
            uint64_t ilen = iundef ? 0 : dataset_size(w, item);
            if (ilen >= DCM_UNDEFINED_LENGTH)
                iundef = true;
            put_item_tag(w, DCM_TAG_ITEM, iundef ? DCM_UNDEFINED_LENGTH : (uint32_t)ilen);
            write_dataset(w, item);
            if (iundef)
                put_item_tag(w, DCM_TAG_ITEM_DELIM, 0);
        }
        if (undef)
            put_item_tag(w, DCM_TAG_SEQ_DELIM, 0);
        return;
    }
    if (el->flags & EL_ENCAPS) {
        put_header(w, el->tag, (enum dcm_vr)el->vr, DCM_UNDEFINED_LENGTH);
        for (uint32_t i = 0; i < el->u.frags.n; i++) {
            const struct frag *f = &el->u.frags.v[i];
            if (f->len && !f->data) {
                w->st = vp_error_set(w->err, VP_EINVAL, "pixel data fragment %u was not loaded", i);
                return;
            }
            put_item_tag(w, DCM_TAG_ITEM, f->len + (f->len & 1));
            put(w, f->data, f->len);
            if (f->len & 1)
                put(w, "", 1);
        }
        put_item_tag(w, DCM_TAG_SEQ_DELIM, 0);
        return;
    }
    uint32_t padded = el->length + (el->length & 1);
    enum dcm_vr vr = written_vr(el, padded);
    put_header(w, el->tag, vr, padded);
    /* Swap by the VR written: a value demoted to UN keeps its little-endian bytes, since UN
     * is never swapped on reading (as dcmtk writes it too). */
    put_value(w, vr, dcm_vr_pad((enum dcm_vr)el->vr), el->u.value, el->length);
}

static void write_dataset(struct wr *w, const dcm_dataset *ds)
{
    for (uint32_t i = 0; i < ds->n && !w->st; i++) {
        /* Group 0002 belongs to the meta header, never the data set (PS3.10 7.1). Group
         * lengths (gggg,0000) other than the meta's are retired and would be stale: drop. */
        uint32_t tag = ds->el[i].tag;
        if (!ds->parent && DCM_GROUP(tag) == 0x0002)
            continue;
        if (DCM_ELEMENT(tag) == 0x0000 && ds->el[i].length == 4 && ds->el[i].vr == DCM_VR_UL) {
            /* Group lengths (retired outside groups 0000 and 0002) are kept but recomputed,
             * so they never go stale after an edit or a change of VR encoding. */
            uint64_t n = 0;
            for (uint32_t k = i + 1; k < ds->n && DCM_GROUP(ds->el[k].tag) == DCM_GROUP(tag); k++)
                n += element_size(w, &ds->el[k]);
            put_header(w, tag, DCM_VR_UL, 4);
            put32(w, n > 0xFFFFFFFFu ? 0xFFFFFFFFu : (uint32_t)n);
            continue;
        }
        write_element(w, &ds->el[i]);
    }
}

/* ---- deflate sink ---- */

struct deflater {
    dcm_sink *down;
    z_stream z;
    uint8_t out[65536];
};

static vp_status deflate_push(struct deflater *d, int flush_mode)
{
    for (;;) {
        d->z.next_out = d->out;
        d->z.avail_out = sizeof d->out;
        int rc = deflate(&d->z, flush_mode);
        if (rc == Z_STREAM_ERROR)
            return VP_EIO;
        size_t n = sizeof d->out - d->z.avail_out;
        if (n) {
            vp_status st = d->down->write(d->down->ctx, d->out, n);
            if (st)
                return st;
        }
        if (flush_mode == Z_FINISH ? rc == Z_STREAM_END : d->z.avail_out != 0)
            return VP_OK;
    }
}

static vp_status deflate_write(void *ctx, const void *p, size_t n)
{
    struct deflater *d = ctx;
    d->z.next_in = (Bytef *)(uintptr_t)p;
    d->z.avail_in = (uInt)n;
    return deflate_push(d, Z_NO_FLUSH);
}

vp_status dcm_dataset_write(const dcm_dataset *ds, const char *ts, const dcm_write_opts *opts,
                            dcm_sink *sink, vp_error *err)
{
    dcm_write_opts o = {0};
    if (opts)
        o = *opts;
    dcm_ts_info ti = dcm_ts_lookup(ts);
    struct wr *w = vp_malloc(sizeof *w);
    if (!w)
        return vp_error_set(err, VP_ENOMEM, "out of memory");
    w->explicit_vr = ti.explicit_vr;
    w->big_endian = ti.big_endian;
    w->force_defined = o.defined_lengths;
    w->force_undefined = o.undefined_lengths;
    w->err = err;
    w->st = VP_OK;
    w->n = 0;
    struct deflater *d = NULL;
    dcm_sink dsink;
    if (ti.deflated) {
        d = vp_malloc(sizeof *d);
        if (!d) {
            vp_free(w);
            return vp_error_set(err, VP_ENOMEM, "out of memory");
        }
        memset(&d->z, 0, sizeof d->z);
        d->down = sink;
        int level = o.deflate_level ? o.deflate_level : 6;
        if (deflateInit2(&d->z, level, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
            vp_free(d);
            vp_free(w);
            return vp_error_set(err, VP_ENOMEM, "cannot start deflate");
        }
        dsink = (dcm_sink){deflate_write, d};
        w->sink = &dsink;
    } else {
        w->sink = sink;
    }
    write_dataset(w, ds);
    flush(w);
    vp_status st = w->st;
    if (d) {
        if (st == VP_OK && (st = deflate_push(d, Z_FINISH)))
            vp_error_set(err, st, "write failed");
        deflateEnd(&d->z);
        vp_free(d);
    }
    vp_free(w);
    return st;
}

/* ---- Part 10 ---- */

static bool has_encapsulated(const dcm_dataset *ds, bool *native)
{
    const dcm_element *el = dcm_dataset_find(ds, DCM_TAG_PIXEL_DATA);
    *native = el && !(el->flags & EL_ENCAPS);
    return el && (el->flags & EL_ENCAPS);
}

/* ---- DICOMDIR (PS3.3 F.3, PS3.10 8) ---- */

struct offset_map {
    uint64_t *old_pos; /* file offset of each record's item tag as read, ascending */
    uint64_t *new_pos; /* where the same item tag lands in the output */
    uint32_t n;
};

static uint64_t map_offset(const struct offset_map *m, uint64_t old, bool *ok)
{
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (m->old_pos[mid] < old)
            lo = mid + 1;
        else
            hi = mid;
    }
    *ok = lo < m->n && m->old_pos[lo] == old;
    return *ok ? m->new_pos[lo] : 0;
}

static vp_status patch_offset(dcm_dataset *ds, uint32_t tag, const struct offset_map *m,
                              vp_error *err)
{
    int64_t old;
    if (dcm_dataset_get_int(ds, tag, 0, &old) != VP_OK || old == 0)
        return VP_OK; /* absent or 0: "no record" (PS3.3 F.3.2.1) */
    bool ok;
    uint64_t pos = map_offset(m, (uint64_t)old, &ok);
    if (!ok)
        return vp_error_set(err, VP_EINVAL,
                            "DICOMDIR element (%04X,%04X) offset %lld points to no directory "
                            "record",
                            DCM_GROUP(tag), DCM_ELEMENT(tag), (long long)old);
    if (pos > 0xFFFFFFFFu)
        return vp_error_set(err, VP_ELIMIT, "DICOMDIR larger than 4 GiB");
    return dcm_dataset_set_u32(ds, tag, (uint32_t)pos);
}

/*
 * Offsets of the Directory Record Sequence items point at each item's tag, counted from the
 * first byte of the file, preamble included (as dcmtk and pydicom read them). Records read
 * from a file know where their item tag was (offset - 8); the new positions follow from the
 * encoded sizes, which patching 4-byte UL values does not change.
 */
static vp_status dicomdir_fix_offsets(const dcm_dataset *ds, const char *ts,
                                      const dcm_write_opts *opts, uint64_t start, dcm_dataset **out,
                                      vp_error *err)
{
    *out = NULL;
    dcm_dataset *copy = dcm_dataset_dup(ds);
    if (!copy)
        return vp_error_set(err, VP_ENOMEM, "out of memory");
    dcm_ts_info ti = dcm_ts_lookup(ts);
    struct wr w = {0};
    w.explicit_vr = ti.explicit_vr;
    w.force_defined = opts && opts->defined_lengths;
    w.force_undefined = opts && opts->undefined_lengths;
    struct offset_map m = {0};
    vp_status st = VP_OK;
    const dcm_element *seq = dcm_dataset_find(copy, DCM_TAG_DIRECTORY_RECORD_SEQUENCE);
    if (!(seq->flags & EL_SEQ) || seq->u.items.n == 0)
        goto done;
    uint64_t pos = start;
    for (uint32_t i = 0; i < copy->n && copy->el[i].tag < DCM_TAG_DIRECTORY_RECORD_SEQUENCE; i++)
        if (DCM_GROUP(copy->el[i].tag) != 0x0002)
            pos += element_size(&w, &copy->el[i]);
    pos += header_size(&w, DCM_VR_SQ);
    m.old_pos = vp_malloc((size_t)seq->u.items.n * sizeof *m.old_pos);
    m.new_pos = vp_malloc((size_t)seq->u.items.n * sizeof *m.new_pos);
    if (!m.old_pos || !m.new_pos) {
        st = vp_error_set(err, VP_ENOMEM, "out of memory");
        goto done;
    }
    for (uint32_t i = 0; i < seq->u.items.n; i++) {
        const dcm_dataset *item = seq->u.items.v[i];
        if (item->offset < 8) {
            st = vp_error_set(err, VP_EINVAL,
                              "DICOMDIR record %u was not read from a file: its offsets are "
                              "unknown",
                              i + 1);
            goto done;
        }
        m.old_pos[i] = item->offset - 8;
        m.new_pos[i] = pos;
        pos += item_size(&w, item);
        if (i && m.old_pos[i] <= m.old_pos[i - 1]) {
            st = vp_error_set(err, VP_EINVAL, "DICOMDIR records out of file order");
            goto done;
        }
    }
    m.n = seq->u.items.n;
    if ((st = patch_offset(copy, DCM_TAG(0x0004, 0x1200), &m, err)) ||
        (st = patch_offset(copy, DCM_TAG(0x0004, 0x1202), &m, err)))
        goto done;
    for (uint32_t i = 0; i < seq->u.items.n && st == VP_OK; i++) {
        dcm_dataset *item = seq->u.items.v[i];
        if ((st = patch_offset(item, DCM_TAG(0x0004, 0x1400), &m, err)) == VP_OK)
            st = patch_offset(item, DCM_TAG(0x0004, 0x1420), &m, err);
    }
done:
    vp_free(m.old_pos);
    vp_free(m.new_pos);
    if (st)
        dcm_dataset_free(copy);
    else
        *out = copy;
    return st;
}

/* Copies one value from meta (or else from ds with tag2) into m as vr. */
static vp_status meta_copy(dcm_dataset *m, uint32_t tag, enum dcm_vr vr, const dcm_dataset *from,
                           uint32_t from_tag)
{
    if (!from)
        return VP_OK;
    const dcm_element *el = dcm_dataset_find(from, from_tag);
    if (!el || (el->flags & (EL_SEQ | EL_ENCAPS | EL_SKIPPED)))
        return VP_OK;
    return dcm_dataset_set(m, tag, vr, el->u.value, el->length, NULL);
}

/* Builds the meta group (without its group length): version, Media Storage SOP Class and
 * Instance (from ds when it has them, else from meta), Transfer Syntax ts, our Implementation
 * Class UID and Version Name; Source/Sending/Receiving AE titles and Private Information copied
 * from meta when given. */
static vp_status meta_build(const dcm_dataset *meta, const dcm_dataset *ds, const char *ts,
                            dcm_dataset **out, vp_error *err)
{
    *out = NULL;
    if (strlen(ts) > DCM_UID_MAX || !dcm_uid_valid(ts, strlen(ts)))
        return vp_error_set(err, VP_EINVAL, "invalid transfer syntax UID \"%s\"", ts);
    dcm_dataset *m = dcm_dataset_new();
    if (!m)
        return vp_error_set(err, VP_ENOMEM, "out of memory");
    vp_status st;
    static const uint8_t version[2] = {0x00, 0x01}; /* PS3.10 7.1 */
    if ((st = dcm_dataset_set(m, DCM_TAG(0x0002, 0x0001), DCM_VR_OB, version, 2, NULL)) ||
        (st = meta_copy(m, DCM_TAG(0x0002, 0x0002), DCM_VR_UI, meta, DCM_TAG(0x0002, 0x0002))) ||
        (st = meta_copy(m, DCM_TAG(0x0002, 0x0002), DCM_VR_UI, ds, DCM_TAG_SOP_CLASS_UID)) ||
        (st = meta_copy(m, DCM_TAG(0x0002, 0x0003), DCM_VR_UI, meta, DCM_TAG(0x0002, 0x0003))) ||
        (st = meta_copy(m, DCM_TAG(0x0002, 0x0003), DCM_VR_UI, ds, DCM_TAG_SOP_INSTANCE_UID)) ||
        (st = dcm_dataset_set_str(m, DCM_TAG_TRANSFER_SYNTAX_UID, DCM_VR_UI, ts)) ||
        (st = dcm_dataset_set_str(m, DCM_TAG(0x0002, 0x0012), DCM_VR_UI,
                                  DCM_IMPLEMENTATION_CLASS_UID)) ||
        (st = dcm_dataset_set_str(m, DCM_TAG(0x0002, 0x0013), DCM_VR_SH,
                                  DCM_IMPLEMENTATION_VERSION_NAME)) ||
        (st = meta_copy(m, DCM_TAG(0x0002, 0x0016), DCM_VR_AE, meta, DCM_TAG(0x0002, 0x0016))) ||
        (st = meta_copy(m, DCM_TAG(0x0002, 0x0017), DCM_VR_AE, meta, DCM_TAG(0x0002, 0x0017))) ||
        (st = meta_copy(m, DCM_TAG(0x0002, 0x0018), DCM_VR_AE, meta, DCM_TAG(0x0002, 0x0018))) ||
        (st = meta_copy(m, DCM_TAG(0x0002, 0x0100), DCM_VR_UI, meta, DCM_TAG(0x0002, 0x0100))) ||
        (st = meta_copy(m, DCM_TAG(0x0002, 0x0102), DCM_VR_OB, meta, DCM_TAG(0x0002, 0x0102)))) {
        dcm_dataset_free(m);
        return vp_error_set(err, st, "out of memory");
    }
    *out = m;
    return VP_OK;
}

/* Writes preamble (unless opts->no_preamble), group length and the elements of m; the bytes
 * written go to *len. */
static vp_status meta_emit(const dcm_dataset *m, const dcm_write_opts *opts, dcm_sink *sink,
                           uint64_t *len, vp_error *err)
{
    vp_buf body;
    vp_buf_init(&body, 0);
    dcm_sink bs = dcm_sink_buf(&body);
    struct wr *w = vp_malloc(sizeof *w);
    if (!w)
        return vp_error_set(err, VP_ENOMEM, "out of memory");
    memset(w, 0, offsetof(struct wr, buf));
    w->sink = &bs;
    w->explicit_vr = true;
    w->err = err;
    for (uint32_t i = 0; i < m->n; i++)
        write_element(w, &m->el[i]);
    flush(w);
    vp_status st = w->st;
    vp_free(w);
    if (st == VP_OK) {
        uint8_t head[132 + 12];
        size_t hn = 0;
        if (!(opts && opts->no_preamble)) {
            memset(head, 0, 128);
            memcpy(head + 128, "DICM", 4);
            hn = 132;
        }
        vp_put_le16(head + hn, 0x0002);
        vp_put_le16(head + hn + 2, 0x0000);
        memcpy(head + hn + 4, "UL", 2);
        vp_put_le16(head + hn + 6, 4);
        vp_put_le32(head + hn + 8, (uint32_t)body.len);
        hn += 12;
        if ((st = sink->write(sink->ctx, head, hn)) ||
            (st = sink->write(sink->ctx, body.data, body.len)))
            vp_error_set(err, st, "write failed");
        *len = hn + body.len;
    }
    vp_buf_fini(&body);
    return st;
}

vp_status dcm_part10_write_header(const dcm_dataset *meta, const char *ts, dcm_sink *sink,
                                  vp_error *err)
{
    const char *s;
    size_t n;
    if (!meta || dcm_dataset_get_str(meta, DCM_TAG(0x0002, 0x0002), 0, &s, &n) != VP_OK ||
        dcm_dataset_get_str(meta, DCM_TAG(0x0002, 0x0003), 0, &s, &n) != VP_OK)
        return vp_error_set(err, VP_EINVAL,
                            "the meta group needs Media Storage SOP Class and Instance UIDs");
    dcm_dataset *m;
    vp_status st = meta_build(meta, NULL, ts, &m, err);
    uint64_t len;
    if (st == VP_OK)
        st = meta_emit(m, NULL, sink, &len, err);
    dcm_dataset_free(m);
    return st;
}

vp_status dcm_part10_write(const dcm_dataset *meta, const dcm_dataset *ds, const char *ts,
                           const dcm_write_opts *opts, dcm_sink *sink, vp_error *err)
{
    dcm_ts_info ti = dcm_ts_lookup(ts);
    bool native;
    bool encaps = has_encapsulated(ds, &native);
    if (encaps && !ti.encapsulated)
        return vp_error_set(err, VP_EINVAL,
                            "pixel data is encapsulated and cannot be written as %s without "
                            "decompressing",
                            ts);
    if (native && ti.encapsulated)
        return vp_error_set(err, VP_EINVAL,
                            "native pixel data cannot be written as %s without compressing", ts);
    dcm_dataset *m;
    vp_status st = meta_build(meta, ds, ts, &m, err);
    if (st)
        return st;
    uint64_t start = 0;
    if ((st = meta_emit(m, opts, sink, &start, err)))
        goto done;
    if (dcm_dataset_find(ds, DCM_TAG_DIRECTORY_RECORD_SEQUENCE)) {
        /* A DICOMDIR: its record offsets count bytes from the start of the file, so they
         * change with the meta group and the encoding. Write a copy with them updated. */
        dcm_dataset *fixed = NULL;
        if (dcm_ts_lookup(ts).deflated)
            st = vp_error_set(err, VP_EUNSUPPORTED,
                              "a DICOMDIR cannot be deflated: its offsets count file bytes");
        else if ((st = dicomdir_fix_offsets(ds, ts, opts, start, &fixed, err)) == VP_OK)
            st = dcm_dataset_write(fixed, ts, opts, sink, err);
        dcm_dataset_free(fixed);
        goto done;
    }
    st = dcm_dataset_write(ds, ts, opts, sink, err);
done:
    dcm_dataset_free(m);
    return st;
}

static vp_status buf_write(void *ctx, const void *p, size_t n)
{
    return vp_buf_append(ctx, p, n);
}

dcm_sink dcm_sink_buf(vp_buf *b)
{
    return (dcm_sink){buf_write, b};
}

static vp_status fd_write(void *ctx, const void *p, size_t n)
{
    int fd = *(int *)ctx;
    const uint8_t *q = p;
    while (n) {
        ssize_t k = vp_io_write(fd, q, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return VP_EIO;
        q += k;
        n -= (size_t)k;
    }
    return VP_OK;
}

vp_status dcm_file_write(const char *path, const dcm_dataset *meta, const dcm_dataset *ds,
                         const char *ts, const dcm_write_opts *opts, bool sync, vp_error *err)
{
    size_t plen = strlen(path);
    char *tmp = vp_malloc(plen + 32);
    if (!tmp)
        return vp_error_set(err, VP_ENOMEM, "out of memory");
    /* Not mkstemp: it creates mode 0600, and archive files must be readable as the umask
     * allows (0666 & ~umask), like any file a tool writes. */
    int fd = -1;
    for (int attempt = 0; attempt < 16 && fd < 0; attempt++) {
        uint64_t r = 0;
        if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
            r = (uint64_t)getpid() * 2654435761u + (uint64_t)attempt;
        snprintf(tmp, plen + 32, "%s.tmp.%016llx", path, (unsigned long long)r);
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0 && errno != EEXIST)
            break;
    }
    if (fd < 0) {
        vp_status st = vp_error_set(err, VP_EIO, "%s: %s", tmp, strerror(errno));
        vp_free(tmp);
        return st;
    }
    dcm_sink s = {fd_write, &fd};
    vp_status st = dcm_part10_write(meta, ds, ts, opts, &s, err);
    if (st == VP_OK && sync && vp_io_fsync(fd) != 0)
        st = vp_error_set(err, VP_EIO, "fsync %s: %s", tmp, strerror(errno));
    if (close(fd) != 0 && st == VP_OK)
        st = vp_error_set(err, VP_EIO, "close %s: %s", tmp, strerror(errno));
    if (st == VP_OK && vp_io_rename(tmp, path) != 0)
        st = vp_error_set(err, VP_EIO, "rename to %s: %s", path, strerror(errno));
    if (st) {
        unlink(tmp);
    } else if (sync) {
        /* The new name is durable only once its directory is synced. */
        char *dir = vp_malloc(plen + 1);
        if (dir) {
            memcpy(dir, path, plen + 1);
            int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (dfd >= 0) {
                if (vp_io_fsync(dfd) != 0)
                    st = vp_error_set(err, VP_EIO, "fsync directory of %s", path);
                close(dfd);
            }
            vp_free(dir);
        }
    }
    vp_free(tmp);
    return st;
}
