/* SPDX-License-Identifier: MIT */
/*
 * The rendering pipeline: one frame to display pixels, then PNG or JPEG.
 *
 * Grayscale (MONOCHROME1/2, PS3.3 C.7.6.3.1.2) goes through Modality LUT, VOI LUT and
 * Presentation LUT (PS3.3 C.11) folded into one table over all 2^Bits Stored stored values
 * (at most 65536 entries), so a pixel costs a mask, an exclusive-or that makes signed values
 * an index, and one lookup. Colour goes through img_color_row. Scaling pulls rendered rows, so
 * a thumbnail of a large radiograph never holds a full-size 8-bit copy.
 *
 * Native frames are read in place from the Pixel Data value (img_frames gives the geometry
 * and checks the length); encapsulated ones are decoded by img_decode_frame.
 */
#include <string.h>

/* GCC's -O2 vectorizes only loops that need no run-time checks (the "very cheap" cost
 * model); the per-pixel loops here pay for such checks many times over. Clang vectorizes at
 * -O2 anyway. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("vect-cost-model=dynamic")
#endif

#include "img/render.h"

void img_image_fini(img_image *im)
{
    if (!im)
        return;
    vp_free(im->data);
    memset(im, 0, sizeof *im);
}

vp_status img_render_size(uint32_t sw, uint32_t sh, const img_render_opts *o, uint32_t *dw,
                          uint32_t *dh, vp_error *err)
{
    uint64_t w = sw, h = sh;
    if (o->size && (o->width_px || o->height_px))
        return vp_error_set(err, VP_EINVAL, "give either a size to fit or a width/height");
    if (o->size) {
        /* The longer side becomes size; the other keeps the aspect ratio, rounded. */
        if (sw >= sh) {
            w = o->size;
            h = ((uint64_t)sh * o->size + sw / 2) / sw;
        } else {
            h = o->size;
            w = ((uint64_t)sw * o->size + sh / 2) / sh;
        }
    } else if (o->width_px && o->height_px) {
        w = o->width_px;
        h = o->height_px;
    } else if (o->width_px) {
        w = o->width_px;
        h = ((uint64_t)sh * o->width_px + sw / 2) / sw;
    } else if (o->height_px) {
        h = o->height_px;
        w = ((uint64_t)sw * o->height_px + sh / 2) / sh;
    }
    w = w ? w : 1;
    h = h ? h : 1;
    uint64_t max = o->max_pixels ? o->max_pixels : IMG_RENDER_MAX_PIXELS;
    if (w > IMG_RENDER_MAX_SIDE || h > IMG_RENDER_MAX_SIDE || w * h > max)
        return vp_error_set(err, VP_ELIMIT,
                            "output of %llux%llu pixels is over the limit (%u per side, %llu in "
                            "all)",
                            (unsigned long long)w, (unsigned long long)h, IMG_RENDER_MAX_SIDE,
                            (unsigned long long)max);
    *dw = (uint32_t)w;
    *dh = (uint32_t)h;
    return VP_OK;
}

/* Host-order loads of little-endian samples from possibly unaligned memory. */
static inline uint32_t ld16(const uint8_t *p)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
#else
    return vp_le16(p);
#endif
}

static inline uint32_t ld32(const uint8_t *p)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
#else
    return vp_le32(p);
#endif
}

/* What a row source needs. */
struct src {
    const uint8_t *px; /* the frame */
    const img_info *info;
    size_t stride; /* bytes per source row */
    /* grayscale */
    const img_gray *g;
    void *lut;           /* 2^bits_stored entries of uint8 or uint16, or NULL (> 16 bits) */
    uint32_t mask, flip; /* index = (sample & mask) ^ flip */
    unsigned out_bytes;
    /* colour */
    const img_palette *pal;
};

/* Stored value of a raw sample of more than 16 bits stored. */
static inline int64_t wide_value(uint32_t raw, const img_info *info)
{
    unsigned bs = info->bits_stored;
    uint32_t mask = bs >= 32 ? 0xFFFFFFFFu : (1u << bs) - 1;
    raw &= mask;
    if (info->pixel_representation && (raw >> (bs - 1)) & 1)
        return (int64_t)raw - ((int64_t)1 << bs);
    return raw;
}

static vp_status gray_row(void *ctx, uint32_t y, void *row, vp_error *err)
{
    (void)err;
    const struct src *s = ctx;
    const uint8_t *restrict p = s->px + (size_t)y * s->stride;
    uint32_t w = s->info->columns, mask = s->mask, flip = s->flip;
    unsigned ba = s->info->bits_allocated;
    if (!s->lut) {
        for (uint32_t x = 0; x < w; x++) {
            uint32_t v = img_gray_value(s->g, wide_value(ld32(p + 4 * (size_t)x), s->info));
            if (s->out_bytes == 1)
                ((uint8_t *)row)[x] = (uint8_t)v;
            else
                ((uint16_t *)row)[x] = (uint16_t)v;
        }
        return VP_OK;
    }
    /* One loop per sample size and output size, so that each compiles to a tight gather. */
#define GRAY_LOOP(T, LOAD)                                                                         \
    do {                                                                                           \
        const T *restrict lut = s->lut;                                                            \
        T *restrict o = row;                                                                       \
        for (uint32_t x = 0; x < w; x++)                                                           \
            o[x] = lut[((LOAD)&mask) ^ flip];                                                      \
    } while (0)
    if (s->out_bytes == 1) {
        if (ba == 8)
            GRAY_LOOP(uint8_t, p[x]);
        else if (ba == 16)
            GRAY_LOOP(uint8_t, ld16(p + 2 * (size_t)x));
        else
            GRAY_LOOP(uint8_t, ld32(p + 4 * (size_t)x));
    } else {
        if (ba == 8)
            GRAY_LOOP(uint16_t, p[x]);
        else if (ba == 16)
            GRAY_LOOP(uint16_t, ld16(p + 2 * (size_t)x));
        else
            GRAY_LOOP(uint16_t, ld32(p + 4 * (size_t)x));
    }
#undef GRAY_LOOP
    return VP_OK;
}

/* LUT indices of a row ((sample & mask) ^ flip, in the order of the stored values), for
 * averaging before the LUT. */
static vp_status index_row(void *ctx, uint32_t y, void *row, vp_error *err)
{
    (void)err;
    const struct src *s = ctx;
    const uint8_t *restrict p = s->px + (size_t)y * s->stride;
    uint32_t w = s->info->columns, mask = s->mask, flip = s->flip;
    uint16_t *restrict o = row;
    if (s->info->bits_allocated == 8)
        for (uint32_t x = 0; x < w; x++)
            o[x] = (uint16_t)((p[x] & mask) ^ flip);
    else if (s->info->bits_allocated == 16)
        for (uint32_t x = 0; x < w; x++)
            o[x] = (uint16_t)((ld16(p + 2 * (size_t)x) & mask) ^ flip);
    else
        for (uint32_t x = 0; x < w; x++)
            o[x] = (uint16_t)((ld32(p + 4 * (size_t)x) & mask) ^ flip);
    return VP_OK;
}

static vp_status color_row(void *ctx, uint32_t y, void *row, vp_error *err)
{
    (void)err;
    const struct src *s = ctx;
    img_color_row(s->px + (size_t)y * s->stride, s->info->columns, s->info, s->info->photometric,
                  s->pal, row);
    return VP_OK;
}

/* Lowest and highest stored value in the frame. */
static void frame_range(const struct src *s, int64_t *lo, int64_t *hi)
{
    const img_info *in = s->info;
    size_t n = (size_t)in->rows * in->columns;
    if (in->bits_stored <= 16) {
        /* On indices, which order like the stored values they stand for. */
        uint32_t mn = UINT32_MAX, mx = 0, mask = s->mask, flip = s->flip;
        const uint8_t *p = s->px;
        if (in->bits_allocated == 8) {
            for (size_t i = 0; i < n; i++) {
                uint32_t v = (p[i] & mask) ^ flip;
                mn = v < mn ? v : mn;
                mx = v > mx ? v : mx;
            }
        } else if (in->bits_allocated == 16) {
            for (size_t i = 0; i < n; i++) {
                uint32_t v = (ld16(p + 2 * i) & mask) ^ flip;
                mn = v < mn ? v : mn;
                mx = v > mx ? v : mx;
            }
        } else {
            for (size_t i = 0; i < n; i++) {
                uint32_t v = (ld32(p + 4 * i) & mask) ^ flip;
                mn = v < mn ? v : mn;
                mx = v > mx ? v : mx;
            }
        }
        *lo = (int64_t)mn - (int64_t)flip;
        *hi = (int64_t)mx - (int64_t)flip;
        return;
    }
    int64_t mn = INT64_MAX, mx = INT64_MIN;
    for (size_t i = 0; i < n; i++) {
        int64_t v = wide_value(ld32(s->px + 4 * i), in);
        mn = v < mn ? v : mn;
        mx = v > mx ? v : mx;
    }
    *lo = mn;
    *hi = mx;
}

static bool is_mono(const char *pi)
{
    return !strcmp(pi, "MONOCHROME1") || !strcmp(pi, "MONOCHROME2");
}

vp_status img_render_pixels(const dcm_dataset *ds, const uint8_t *px, const img_info *info,
                            const img_render_opts *opts, img_image *im, vp_error *err)
{
    img_render_opts o = *opts;
    if (o.depth == 0)
        o.depth = 8;
    if (o.depth != 8 && o.depth != 16)
        return vp_error_set(err, VP_EINVAL, "output depth %d, expected 8 or 16", o.depth);
    const char *pi = info->photometric;
    bool mono = is_mono(pi);
    if (!mono && !img_color_supported(pi))
        return vp_error_set(err, VP_EUNSUPPORTED, "cannot render Photometric Interpretation %s",
                            pi);
    if ((mono || !strcmp(pi, "PALETTE COLOR")) ? info->samples_per_pixel != 1
                                               : info->samples_per_pixel != 3)
        return vp_error_set(err, VP_EINVAL, "%u samples per pixel for %s", info->samples_per_pixel,
                            pi);
    if (!mono && o.depth == 16)
        return vp_error_set(err, VP_EUNSUPPORTED, "16-bit output is for grayscale images only");
    unsigned bytes = info->bits_allocated / 8;
    if (info->bits_allocated % 8 || !bytes || bytes > 4 || bytes == 3 || !info->bits_stored ||
        info->bits_stored > info->bits_allocated ||
        info->frame_size < (size_t)info->rows * info->columns * info->samples_per_pixel * bytes)
        return vp_error_set(err, VP_EINVAL, "inconsistent frame geometry");
    uint32_t dw, dh;
    vp_status st = img_render_size(info->columns, info->rows, &o, &dw, &dh, err);
    if (st)
        return st;

    struct src s = {
        .px = px, .info = info, .stride = (size_t)info->columns * info->samples_per_pixel * bytes};
    img_gray g;
    memset(&g, 0, sizeof g);
    img_palette pal;
    memset(&pal, 0, sizeof pal);
    unsigned ch = mono ? 1 : 3, ob = o.depth / 8;
    uint8_t *data = NULL;
    img_row_source *fn = color_row;
    if (mono) {
        fn = gray_row;
        s.out_bytes = ob;
        if (info->bits_stored <= 16) {
            s.mask = (1u << info->bits_stored) - 1;
            s.flip = info->pixel_representation ? 1u << (info->bits_stored - 1) : 0;
        }
        if ((st = img_gray_setup(ds, info, o.frame, &o, &g, err)))
            goto done;
        if (g.minmax_pending) {
            int64_t lo, hi;
            frame_range(&s, &lo, &hi);
            img_gray_set_range(&g, lo, hi);
        }
        s.g = &g;
        if (info->bits_stored <= 16) {
            size_t n = (size_t)1 << info->bits_stored;
            if (!(s.lut = vp_malloc(n * ob))) {
                st = vp_error_set(err, VP_ENOMEM, "out of memory");
                goto done;
            }
            for (size_t i = 0; i < n; i++) {
                uint32_t v = img_gray_value(&g, (int64_t)i - (int64_t)s.flip);
                if (ob == 1)
                    ((uint8_t *)s.lut)[i] = (uint8_t)v;
                else
                    ((uint16_t *)s.lut)[i] = (uint16_t)v;
            }
        }
    } else if (!strcmp(pi, "PALETTE COLOR")) {
        if ((st = img_palette_read(ds, info->pixel_representation == 1, &pal, err)))
            goto done;
        s.pal = &pal;
    }
    size_t row_bytes = (size_t)dw * ch * ob;
    if (!(data = vp_malloc(row_bytes * dh))) {
        st = vp_error_set(err, VP_ENOMEM, "out of memory");
        goto done;
    }
    if (dw == info->columns && dh == info->rows) {
        for (uint32_t y = 0; y < dh; y++)
            if ((st = fn(&s, y, data + (size_t)y * row_bytes, err)))
                goto done;
    } else if (s.lut && (uint64_t)dw * 2 <= info->columns && (uint64_t)dh * 2 <= info->rows) {
        /* Reduced at least twofold: average the stored values over each footprint and look
         * the averages up, one lookup per output pixel instead of one per source pixel. The
         * same as averaging after the LUT wherever the VOI function is linear over a
         * footprint; at a window's clipped ends the average of the raw values shows. */
        uint16_t *idx = vp_malloc((size_t)dw * dh * sizeof *idx);
        if (!idx) {
            st = vp_error_set(err, VP_ENOMEM, "out of memory");
            goto done;
        }
        st = img_scale_rows(index_row, &s, info->columns, info->rows, 1, 2, dw, dh, idx, err);
        for (size_t i = 0; !st && i < (size_t)dw * dh; i++) {
            if (ob == 1)
                data[i] = ((const uint8_t *)s.lut)[idx[i]];
            else
                ((uint16_t *)data)[i] = ((const uint16_t *)s.lut)[idx[i]];
        }
        vp_free(idx);
        if (st)
            goto done;
    } else if ((st =
                    img_scale_rows(fn, &s, info->columns, info->rows, ch, ob, dw, dh, data, err))) {
        goto done;
    }
    *im = (img_image){dw, dh, (uint16_t)ch, (uint16_t)o.depth, data};
    data = NULL;
done:
    vp_free(data);
    vp_free(s.lut);
    img_gray_fini(&g);
    img_palette_fini(&pal);
    return st;
}

vp_status img_render_frame(const dcm_dataset *ds, const char *ts, const img_render_opts *opts,
                           img_image *im, vp_error *err)
{
    if (!ts)
        return vp_error_set(err, VP_EINVAL, "no transfer syntax");
    vp_status st;
    img_info info;
    if (!dcm_ts_lookup(ts).encapsulated) {
        /* Native one-sample frames are in place in the Pixel Data value, which
         * img_frames_open checked is long enough for all frames. Colour goes through
         * img_decode_frame, which interleaves planes and upsamples native YBR_FULL_422. */
        img_frames *f;
        if ((st = img_frames_open(ds, ts, &f, err)))
            return st;
        info = *img_frames_info(f);
        if (opts->frame >= info.frames) {
            img_frames_free(f);
            return vp_error_set(err, VP_EINVAL, "frame %u out of range (%u frames)", opts->frame,
                                info.frames);
        }
        if (info.samples_per_pixel == 1 && info.bits_allocated >= 8) {
            const uint8_t *px = dcm_element_value(dcm_dataset_find(ds, DCM_TAG_PIXEL_DATA)) +
                                (size_t)opts->frame * info.frame_size;
            st = img_render_pixels(ds, px, &info, opts, im, err);
            img_frames_free(f);
            return st;
        }
        img_frames_free(f);
    }
    vp_buf px;
    vp_buf_init(&px, 0);
    if ((st = img_decode_frame(ds, ts, opts->frame, &px, &info, err)) == VP_OK)
        st = img_render_pixels(ds, px.data, &info, opts, im, err);
    vp_buf_fini(&px);
    return st;
}

vp_status img_render_encode(const img_image *im, const img_render_opts *opts, vp_buf *out,
                            vp_error *err)
{
    if (opts->quality < 0 || opts->quality > 100)
        return vp_error_set(err, VP_EINVAL, "JPEG quality %d, expected 1..100", opts->quality);
    if (opts->format == IMG_OUT_JPEG)
        return img_encode_jpeg(im, opts->quality ? opts->quality : 90, opts->fast, out, err);
    return img_encode_png(im, 1, opts->fast, out, err);
}

vp_status img_render(const dcm_dataset *ds, const char *ts, const img_render_opts *opts,
                     vp_buf *out, vp_error *err)
{
    vp_buf_reset(out);
    if (opts->format == IMG_OUT_JPEG && opts->depth == 16)
        return vp_error_set(err, VP_EUNSUPPORTED, "JPEG output is 8-bit only");
    if (opts->quality < 0 || opts->quality > 100)
        return vp_error_set(err, VP_EINVAL, "JPEG quality %d, expected 1..100", opts->quality);
    img_image im;
    vp_status st = img_render_frame(ds, ts, opts, &im, err);
    if (st)
        return st;
    st = img_render_encode(&im, opts, out, err);
    img_image_fini(&im);
    return st;
}
