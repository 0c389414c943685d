/* SPDX-License-Identifier: MIT */
/*
 * Frame decoding: one frame of a data set to native little-endian samples, colour-by-pixel.
 * Native transfer syntaxes (PS3.5 8.2, A.1-A.3) are sliced and, for Planar Configuration 1,
 * interleaved (PS3.3 C.7.6.3.1.3). Encapsulated frames (PS3.5 A.4) go to the decoder of their
 * transfer syntax; for the JPEG family the stream's own SOF marker decides, because objects
 * labelled baseline but holding a lossless stream (and the reverse) are met in practice and
 * each decoder only knows its own process.
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

/*
 * Native YBR_FULL_422 to YBR_FULL (PS3.3 C.7.6.3.1.2): each pair of pixels is stored as
 * Y1 Y2 Cb Cr; both pixels take the pair's chrominance. buf holds the stored frame and has
 * room for the decoded one; the expansion runs from the end so it can be done in place.
 */
static void expand_422(vp_buf *buf, const img_info *info)
{
    size_t b = info->bits_allocated / 8, pairs = (size_t)info->rows * info->columns / 2;
    uint8_t *d = buf->data;
    for (size_t i = pairs; i-- > 0;) {
        uint8_t q[16]; /* Y1 Y2 Cb Cr, b bytes each */
        memcpy(q, d + i * 4 * b, 4 * b);
        const uint8_t *y1 = q, *y2 = q + b, *cb = q + 2 * b, *cr = q + 3 * b;
        uint8_t *o = d + i * 6 * b;
        memcpy(o, y1, b), memcpy(o + b, cb, b), memcpy(o + 2 * b, cr, b);
        memcpy(o + 3 * b, y2, b), memcpy(o + 4 * b, cb, b), memcpy(o + 5 * b, cr, b);
    }
    buf->len = info->frame_size;
    buf->data[buf->len] = 0;
}

/* Encapsulated transfer syntaxes and their decoders (PS3.5 A.4, PS3.6 Annex A). */
enum family { FAM_NONE, FAM_RLE, FAM_JPEG, FAM_JLS, FAM_J2K };
static const struct {
    const char *uid;
    enum family fam;
} codecs[] = {
    {"1.2.840.10008.1.2.5", FAM_RLE},     {"1.2.840.10008.1.2.4.50", FAM_JPEG},
    {"1.2.840.10008.1.2.4.51", FAM_JPEG}, {"1.2.840.10008.1.2.4.57", FAM_JPEG},
    {"1.2.840.10008.1.2.4.70", FAM_JPEG}, {"1.2.840.10008.1.2.4.80", FAM_JLS},
    {"1.2.840.10008.1.2.4.81", FAM_JLS},  {"1.2.840.10008.1.2.4.90", FAM_J2K},
    {"1.2.840.10008.1.2.4.91", FAM_J2K},  {"1.2.840.10008.1.2.4.92", FAM_J2K},
    {"1.2.840.10008.1.2.4.93", FAM_J2K},  {"1.2.840.10008.1.2.4.201", FAM_J2K},
    {"1.2.840.10008.1.2.4.202", FAM_J2K}, {"1.2.840.10008.1.2.4.203", FAM_J2K},
};

static enum family family_of(const char *ts)
{
    for (size_t i = 0; i < sizeof codecs / sizeof codecs[0]; i++)
        if (!strcmp(ts, codecs[i].uid))
            return codecs[i].fam;
    return FAM_NONE;
}

bool img_can_decode(const char *ts)
{
    if (!ts)
        return false;
    dcm_ts_info ti = dcm_ts_lookup(ts);
    return ti.known && (!ti.encapsulated || family_of(ts) != FAM_NONE);
}

/*
 * The first start-of-frame marker of a JPEG or JPEG-LS stream (ISO 10918-1 B.1.1.3, Table
 * B.1; ISO 14495-1 SOF55 = FFF7), or 0 when none is found before the first scan. Markers
 * with a length are skipped by it; fill bytes (FF FF) are allowed between markers. *precision
 * receives the frame header's sample precision P (B.2.2), 0 when the header is cut short.
 */
static int jpeg_sof(const uint8_t *p, size_t len, int *precision)
{
    *precision = 0;
    if (len < 4 || p[0] != 0xFF || p[1] != 0xD8)
        return 0;
    size_t i = 2;
    while (i + 4 <= len) {
        if (p[i] != 0xFF)
            return 0;
        int m = p[i + 1];
        if (m == 0xFF) {
            i++;
            continue;
        }
        if ((m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) || m == 0xF7) {
            if (i + 4 < len)
                *precision = p[i + 4];
            return m;
        }
        if (m == 0xDA || m == 0xD9)
            return 0;
        i += 2 + ((size_t)p[i + 2] << 8 | p[i + 3]);
    }
    return 0;
}

static vp_status decode_encapsulated(enum family fam, const char *ts, const vp_buf *enc,
                                     const img_info *gi, uint8_t *out, img_info *oi, vp_error *err)
{
    img_decoder *dec = NULL;
    if (fam == FAM_JPEG || fam == FAM_JLS) {
        int precision;
        int sof = jpeg_sof(enc->data, enc->len, &precision);
        if ((sof == 0xC1 || sof == 0xC0) && precision == 12)
            dec = img_jpeg12_decode; /* extended 12-bit: Debian's libjpeg-turbo is 8-bit only */
        else if (sof == 0xC0 || sof == 0xC1 || sof == 0xC2)
            dec = img_jpeg_decode; /* baseline, extended, progressive Huffman DCT */
        else if (sof == 0xC3)
            dec = img_jpll_decode; /* lossless Huffman */
        else if (sof == 0xF7)
            dec = img_jls_decode;
        else if (sof)
            return vp_error_set(err, VP_EUNSUPPORTED,
                                "unsupported JPEG process (SOF marker FF%02X) in %s", sof,
                                dcm_uid_lookup(ts) ? dcm_uid_lookup(ts)->name : ts);
        else
            return vp_error_set(err, VP_EPARSE, "no JPEG start of frame in a frame of %zu bytes",
                                enc->len);
    } else if (fam == FAM_J2K) {
        dec = img_j2k_decode;
    } else {
        *oi = *gi;
        return img_rle_decode(enc->data, enc->len, gi, out, gi->frame_size, err);
    }
    return dec(enc->data, enc->len, gi, out, gi->frame_size, oi, err);
}

vp_status img_decode_frame(const dcm_dataset *ds, const char *ts, uint32_t n, vp_buf *out,
                           img_info *info, vp_error *err)
{
    vp_buf_reset(out);
    if (!ts)
        return vp_error_set(err, VP_EINVAL, "no transfer syntax");
    dcm_ts_info ti = dcm_ts_lookup(ts);
    enum family fam = ti.encapsulated ? family_of(ts) : FAM_NONE;
    if (ti.encapsulated && fam == FAM_NONE) {
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
    if (fam != FAM_NONE) {
        if ((st = img_frames_get(f, n, &enc, err)))
            goto done;
        if ((st = vp_buf_reserve(out, gi.frame_size))) {
            vp_error_set(err, st, "frame of %zu bytes: %s", gi.frame_size, vp_status_name(st));
            goto done;
        }
        img_info oi = gi;
        if ((st = decode_encapsulated(fam, ts, &enc, &gi, out->data, &oi, err)))
            goto done;
        oi.frames = gi.frames;
        oi.frame_size = gi.frame_size;
        gi = oi;
        out->len = gi.frame_size;
        out->data[out->len] = 0; /* vp_buf keeps a NUL after its contents */
    } else {
        if ((st = img_frames_get(f, n, out, err)))
            goto done;
        if (gi.bits_allocated == 1) {
            gi.bits_allocated = 8; /* unpacked by img_frames_get, one byte per pixel */
        } else if (!strcmp(gi.photometric, "YBR_FULL_422")) {
            if ((st = vp_buf_reserve(out, gi.frame_size - out->len))) {
                vp_error_set(err, st, "frame of %zu bytes: %s", gi.frame_size, vp_status_name(st));
                goto done;
            }
            expand_422(out, &gi);
            strcpy(gi.photometric, "YBR_FULL");
        } else if (gi.planar_configuration == 1 && (st = interleave(out, &gi, err))) {
            goto done;
        }
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
