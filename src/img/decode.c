/* SPDX-License-Identifier: MIT */
/*
 * Frame decoding: one frame of a data set to native little-endian samples, colour-by-pixel.
 * Native transfer syntaxes (PS3.5 8.2, A.1-A.3) are sliced and, for Planar Configuration 1,
 * interleaved (PS3.3 C.7.6.3.1.3); RLE Lossless (PS3.5 A.4.2, Annex G) is decoded here. The
 * other encapsulated syntaxes are left to later decoders.
 */
#include <string.h>

#include "img/img.h"

/* Colour-by-plane to colour-by-pixel (PS3.3 C.7.6.3.1.3). */
static vp_status interleave(vp_buf *buf, const img_info *info, vp_error *err)
{
    size_t bytes = info->bits_allocated / 8, spp = info->samples_per_pixel;
    size_t pixels = (size_t)info->rows * info->columns, plane = pixels * bytes;
    uint8_t *tmp = vp_malloc(buf->len);
    if (!tmp)
        return vp_error_set(err, VP_ENOMEM, "out of memory");
    for (size_t s = 0; s < spp; s++)
        for (size_t p = 0; p < pixels; p++)
            memcpy(tmp + (p * spp + s) * bytes, buf->data + s * plane + p * bytes, bytes);
    memcpy(buf->data, tmp, buf->len);
    vp_free(tmp);
    return VP_OK;
}

vp_status img_decode_frame(const dcm_dataset *ds, const char *ts, uint32_t n, vp_buf *out,
                           img_info *info, vp_error *err)
{
    vp_buf_reset(out);
    if (!ts)
        return vp_error_set(err, VP_EINVAL, "no transfer syntax");
    dcm_ts_info ti = dcm_ts_lookup(ts);
    bool rle = !strcmp(ts, IMG_RLE_LOSSLESS);
    if (ti.encapsulated && !rle) {
        const dcm_uid_entry *u = dcm_uid_lookup(ts);
        return vp_error_set(err, VP_EUNSUPPORTED, "unsupported transfer syntax: %s",
                            u ? u->name : ts);
    }
    img_frames *f;
    vp_status st = img_frames_open(ds, ts, &f, err);
    if (st)
        return st;
    img_info gi = *img_frames_info(f);
    vp_buf enc;
    vp_buf_init(&enc, 0);
    if (rle) {
        if ((st = img_frames_get(f, n, &enc, err)))
            goto done;
        if ((st = vp_buf_reserve(out, gi.frame_size))) {
            vp_error_set(err, st, "frame of %zu bytes: %s", gi.frame_size, vp_status_name(st));
            goto done;
        }
        if ((st = img_rle_decode(enc.data, enc.len, &gi, out->data, gi.frame_size, err)))
            goto done;
        out->len = gi.frame_size;
        out->data[out->len] = 0; /* vp_buf keeps a NUL after its contents */
    } else {
        if ((st = img_frames_get(f, n, out, err)))
            goto done;
        if (gi.planar_configuration == 1 && (st = interleave(out, &gi, err)))
            goto done;
    }
    gi.planar_configuration = 0;
    if (info)
        *info = gi;
done:
    if (st)
        vp_buf_reset(out);
    vp_buf_fini(&enc);
    img_frames_free(f);
    return st;
}
