/* SPDX-License-Identifier: MIT */
/*
 * Transcoding: a data set's Pixel Data re-encoded for another transfer syntax, with the Image
 * Pixel attributes that change with it. Between native syntaxes nothing changes here (the
 * writer re-encodes byte order, PS3.5 A.1-A.3); otherwise every frame is decoded
 * (img_decode_frame) and written native (PS3.5 8.1.1), as RLE Lossless (Annex G) or as
 * JPEG-LS (A.4.3), one fragment per frame behind a Basic Offset Table (A.4).
 */
#include <stdio.h>
#include <string.h>

#include "img/img.h"

#define TAG_PHOTOMETRIC DCM_TAG(0x0028, 0x0004)
#define TAG_PLANAR_CONFIGURATION DCM_TAG(0x0028, 0x0006)
#define TAG_LOSSY_COMPRESSION DCM_TAG(0x0028, 0x2110)
#define TAG_LOSSY_RATIO DCM_TAG(0x0028, 0x2112)
#define TAG_LOSSY_METHOD DCM_TAG(0x0028, 0x2114)

#define TS_JLS_LOSSLESS "1.2.840.10008.1.2.4.80"
#define TS_JLS_NEAR "1.2.840.10008.1.2.4.81"

/* Lossy transfer syntaxes and the method each names in Lossy Image Compression Method
 * (PS3.3 C.7.6.1.1.5.1): decoding them does not undo the loss, so the flag must survive. */
static const struct {
    const char *ts, *method;
} lossy[] = {
    {"1.2.840.10008.1.2.4.50", "ISO_10918_1"}, {"1.2.840.10008.1.2.4.51", "ISO_10918_1"},
    {"1.2.840.10008.1.2.4.81", "ISO_14495_1"}, {"1.2.840.10008.1.2.4.91", "ISO_15444_1"},
    {"1.2.840.10008.1.2.4.93", "ISO_15444_2"}, {"1.2.840.10008.1.2.4.203", "ISO_15444_15"},
};

static const char *lossy_method(const char *ts)
{
    for (size_t i = 0; i < sizeof lossy / sizeof lossy[0]; i++)
        if (!strcmp(ts, lossy[i].ts))
            return lossy[i].method;
    return NULL;
}

bool img_transcode_can_write(const char *ts)
{
    if (!ts)
        return false;
    dcm_ts_info ti = dcm_ts_lookup(ts);
    return (ti.known && !ti.encapsulated) || !strcmp(ts, IMG_RLE_LOSSLESS) ||
           !strcmp(ts, TS_JLS_LOSSLESS) || !strcmp(ts, TS_JLS_NEAR);
}

/* PS3.3 C.7.6.1.1.5: once lossy, always flagged; the method of this step is appended unless
 * already named. */
static vp_status mark_lossy(dcm_dataset *ds, const char *method)
{
    vp_status st = dcm_dataset_set_str(ds, TAG_LOSSY_COMPRESSION, DCM_VR_CS, "01");
    if (st)
        return st;
    char methods[256] = "";
    const dcm_element *el = dcm_dataset_find(ds, TAG_LOSSY_METHOD);
    for (unsigned i = 0; el && i < dcm_element_vm(el); i++) {
        const char *v;
        size_t n;
        if (dcm_element_get_str(el, i, &v, &n) == VP_OK && n == strlen(method) &&
            !memcmp(v, method, n))
            return VP_OK;
    }
    if (el)
        dcm_dataset_copy_str(ds, TAG_LOSSY_METHOD, methods, sizeof methods);
    size_t l = strlen(methods);
    snprintf(methods + l, sizeof methods - l, "%s%s", l ? "\\" : "", method);
    return dcm_dataset_set_str(ds, TAG_LOSSY_METHOD, DCM_VR_CS, methods);
}

/* Bits above High Bit cleared, or set from the sign bit for signed samples (PS3.5 8.1.1), so
 * that readers which ignore Bits Stored still see the right values. */
static void normalise(uint8_t *p, size_t len, const img_info *info)
{
    unsigned bs = info->bits_stored, ba = info->bits_allocated;
    if (bs >= ba || (ba != 8 && ba != 16 && ba != 32))
        return;
    bool sgn = info->pixel_representation == 1;
    if (ba == 8) {
        for (size_t i = 0; i < len; i++) {
            int v = (uint8_t)(p[i] << (8 - bs));
            p[i] = (uint8_t)(sgn ? (int8_t)v >> (8 - bs) : v >> (8 - bs));
        }
    } else if (ba == 16) {
        for (size_t i = 0; i + 1 < len; i += 2) {
            uint16_t v = (uint16_t)(vp_le16(p + i) << (16 - bs));
            vp_put_le16(p + i, sgn ? (uint16_t)((int16_t)v >> (16 - bs)) : v >> (16 - bs));
        }
    } else {
        for (size_t i = 0; i + 3 < len; i += 4) {
            uint32_t v = vp_le32(p + i) << (32 - bs);
            vp_put_le32(p + i, sgn ? (uint32_t)((int32_t)v >> (32 - bs)) : v >> (32 - bs));
        }
    }
}

/* Appends one fragment, padded to even length (PS3.5 A.4: items hold an even number of
 * bytes; the pad follows the codestream's end marker, where decoders ignore it). */
static vp_status add_fragment(dcm_element *px, vp_buf *b)
{
    if (b->len % 2) {
        vp_status st = vp_buf_append(b, "", 1);
        if (st)
            return st;
    }
    return dcm_element_add_fragment(px, b->data, b->len);
}

vp_status img_transcode(dcm_dataset *ds, const char *from, const char *to,
                        const img_transcode_opts *opts, vp_error *err)
{
    if (!from || !to)
        return vp_error_set(err, VP_EINVAL, "no transfer syntax");
    dcm_ts_info fi = dcm_ts_lookup(from), ti = dcm_ts_lookup(to);
    if (!strcmp(from, to))
        return VP_OK; /* kept as it is, fragments and all */
    if (!dcm_dataset_find(ds, DCM_TAG_PIXEL_DATA))
        return VP_OK; /* no pixels: any syntax holds the data set as it is */
    if (!fi.encapsulated && !ti.encapsulated)
        return VP_OK;
    if (!img_transcode_can_write(to)) {
        const dcm_uid_entry *u = dcm_uid_lookup(to);
        return vp_error_set(err, VP_EUNSUPPORTED, "cannot encode in %s", u ? u->name : to);
    }
    int near = opts ? opts->near : 0;
    bool jls = !strcmp(to, TS_JLS_LOSSLESS) || !strcmp(to, TS_JLS_NEAR);
    if (!strcmp(to, TS_JLS_LOSSLESS))
        near = 0;
    else if (!strcmp(to, TS_JLS_NEAR) && near <= 0)
        return vp_error_set(err, VP_EINVAL, "JPEG-LS near-lossless needs an error bound > 0");

    img_frames *fr;
    vp_status st = img_frames_open(ds, from, &fr, err);
    if (st)
        return st;
    img_info gi = *img_frames_info(fr);
    img_frames_free(fr);
    if (gi.bits_allocated == 1)
        return vp_error_set(err, VP_EUNSUPPORTED,
                            "Bits Allocated 1 cannot be encapsulated (PS3.5 8.1.1)");

    vp_buf frame, enc, all;
    vp_buf_init(&frame, 0);
    vp_buf_init(&enc, 0);
    vp_buf_init(&all, 0);
    img_info oi = gi;
    /* The new Pixel Data is built aside and swapped in at the end: ds is unchanged on error. */
    dcm_dataset *tmp = dcm_dataset_new();
    dcm_element *px = NULL;
    uint8_t *bot = NULL;
    if (!tmp) {
        st = vp_error_set(err, VP_ENOMEM, "out of memory");
        goto done;
    }
    if (ti.encapsulated) {
        if ((st = dcm_dataset_set_encapsulated(tmp, DCM_TAG_PIXEL_DATA, DCM_VR_OB, &px)) ||
            (st = dcm_element_add_fragment(px, NULL, 0))) { /* BOT, filled in at the end */
            vp_error_set(err, st, "out of memory");
            goto done;
        }
        if (gi.frames > 1 && !(bot = vp_calloc(gi.frames, 4))) {
            st = vp_error_set(err, VP_ENOMEM, "out of memory");
            goto done;
        }
    }
    uint64_t offset = 0;
    for (uint32_t n = 0; n < gi.frames; n++) {
        if ((st = img_decode_frame(ds, from, n, &frame, &oi, err)))
            goto done;
        normalise(frame.data, frame.len, &oi);
        if (!ti.encapsulated) {
            if ((st = vp_buf_append(&all, frame.data, frame.len))) {
                vp_error_set(err, st, "pixel data of %u frames: %s", gi.frames, vp_status_name(st));
                goto done;
            }
            continue;
        }
        if (jls)
            st = img_jls_encode(frame.data, frame.len, &oi, near, &enc, err);
        else
            st = img_rle_encode(frame.data, frame.len, &oi, &enc, err);
        if (st)
            goto done;
        if ((st = add_fragment(px, &enc))) {
            vp_error_set(err, st, "frame %u: %s", n, vp_status_name(st));
            goto done;
        }
        /* PS3.5 A.4: offsets from the first item after the table to each frame's item. */
        if (bot) {
            if (offset > UINT32_MAX) {
                st = vp_error_set(err, VP_ELIMIT, "encapsulated pixel data over 4 GiB");
                goto done;
            }
            vp_put_le32(bot + 4 * n, (uint32_t)offset);
        }
        offset += 8 + enc.len;
    }

    /* Swap in the new Pixel Data and the attributes that describe it. */
    dcm_dataset_remove(ds, DCM_TAG_EXTENDED_OFFSET_TABLE);
    dcm_dataset_remove(ds, DCM_TAG_EXTENDED_OFFSET_TABLE_LENGTHS);
    if (ti.encapsulated) {
        dcm_element *npx;
        if ((st = dcm_dataset_set_encapsulated(ds, DCM_TAG_PIXEL_DATA, DCM_VR_OB, &npx)) ||
            (st = dcm_element_add_fragment(npx, bot, bot ? 4 * (size_t)gi.frames : 0)))
            goto oom;
        for (size_t i = 1; i < dcm_element_fragment_count(px); i++) {
            uint32_t len;
            const uint8_t *p = dcm_element_fragment(px, i, &len, NULL);
            if ((st = dcm_element_add_fragment(npx, p, len)))
                goto oom;
        }
    } else {
        if (all.len % 2 && (st = vp_buf_append(&all, "", 1)))
            goto oom;
        enum dcm_vr vr = oi.bits_allocated > 8 ? DCM_VR_OW : DCM_VR_OB;
        if ((st = dcm_dataset_set(ds, DCM_TAG_PIXEL_DATA, vr, all.data, all.len, NULL)))
            goto oom;
    }
    /* PS3.5 8.2: the decoders hand out colour-by-pixel data, in RGB when they converted. */
    if ((st = dcm_dataset_set_str(ds, TAG_PHOTOMETRIC, DCM_VR_CS, oi.photometric)))
        goto oom;
    if (oi.samples_per_pixel > 1 && (st = dcm_dataset_set_u16(ds, TAG_PLANAR_CONFIGURATION, 0)))
        goto oom;
    const char *method = lossy_method(from);
    if (method && (st = mark_lossy(ds, method)))
        goto oom;
    if (jls && near > 0 && (st = mark_lossy(ds, "ISO_14495_1")))
        goto oom;
    st = VP_OK;
    goto done;
oom:
    vp_error_set(err, st, "cannot update the data set: %s", vp_status_name(st));
done:
    vp_free(bot);
    dcm_dataset_free(tmp);
    vp_buf_fini(&frame);
    vp_buf_fini(&enc);
    vp_buf_fini(&all);
    return st;
}
