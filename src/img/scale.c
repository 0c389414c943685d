/* SPDX-License-Identifier: MIT */
/*
 * Resampling of rendered images, one axis at a time. Down-scaling averages each output pixel's
 * exact footprint in the source (a box filter whose edge pixels count by the fraction they
 * overlap), so that a thumbnail neither aliases nor loses thin bright lines; up-scaling
 * interpolates bilinearly between pixel centres. Source rows are pulled in ascending order
 * and filtered horizontally once each; a small ring of filtered rows feeds the vertical pass,
 * so a large frame never needs a second full-size buffer.
 */
#include <math.h>
#include <string.h>

/* GCC's -O2 vectorizes only loops that need no run-time checks (the "very cheap" cost
 * model); the per-pixel loops here pay for such checks many times over. Clang vectorizes at
 * -O2 anyway. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("vect-cost-model=dynamic")
#endif

#include "img/render.h"

/* The taps of one axis: output i averages src[start[i] .. start[i]+count[i]) with weights
 * w[off[i] ..]. */
struct axis {
    uint32_t *start, *count, *off;
    float *w;
    uint32_t max_taps;
    bool box; /* down-scaling: inner taps of a footprint weigh the same */
};

static void axis_free(struct axis *a)
{
    vp_free(a->start);
    vp_free(a->count);
    vp_free(a->off);
    vp_free(a->w);
}

static vp_status axis_init(struct axis *a, uint32_t sn, uint32_t dn, vp_error *err)
{
    memset(a, 0, sizeof *a);
    double s = (double)sn / dn; /* source pixels per output pixel */
    a->box = s > 1;
    size_t taps = s > 1 ? (size_t)ceil(s) + 1 : 2;
    size_t total;
    a->start = vp_malloc(dn * sizeof *a->start);
    a->count = vp_malloc(dn * sizeof *a->count);
    a->off = vp_malloc(dn * sizeof *a->off);
    if (vp_mul_size(taps, dn, &total) || !a->start || !a->count || !a->off ||
        !(a->w = vp_malloc(total * sizeof *a->w))) {
        axis_free(a);
        return vp_error_set(err, VP_ENOMEM, "out of memory");
    }
    uint32_t off = 0;
    for (uint32_t i = 0; i < dn; i++) {
        a->off[i] = off;
        if (sn == dn) {
            a->start[i] = i;
            a->count[i] = 1;
            a->w[off++] = 1;
        } else if (s > 1) {
            /* Footprint [i s, (i+1) s): each source pixel k weighs its overlap / s. */
            double lo = i * s, hi = (i + 1) * s;
            if (hi > sn)
                hi = sn;
            uint32_t k0 = (uint32_t)floor(lo), k1 = (uint32_t)ceil(hi);
            if (k1 > sn)
                k1 = sn;
            if (k1 <= k0)
                k1 = k0 + 1;
            a->start[i] = k0;
            a->count[i] = k1 - k0;
            double sum = 0;
            for (uint32_t k = k0; k < k1; k++) {
                double l = k > lo ? k : lo, h = k + 1 < hi ? k + 1 : hi;
                a->w[off + (k - k0)] = (float)(h > l ? h - l : 0);
                sum += h > l ? h - l : 0;
            }
            for (uint32_t k = 0; k < a->count[i]; k++)
                a->w[off + k] = sum > 0 ? (float)(a->w[off + k] / sum) : 1.0f / a->count[i];
            off += a->count[i];
        } else {
            /* Bilinear between centres: output centre i + 0.5 sits at source (i + 0.5) s. */
            double x = (i + 0.5) * s - 0.5;
            if (x < 0)
                x = 0;
            if (x > sn - 1)
                x = sn - 1;
            uint32_t k0 = (uint32_t)floor(x);
            double f = x - k0;
            a->start[i] = k0;
            if (k0 + 1 < sn && f > 0) {
                a->count[i] = 2;
                a->w[off] = (float)(1 - f);
                a->w[off + 1] = (float)f;
            } else {
                a->count[i] = 1;
                a->w[off] = 1;
            }
            off += a->count[i];
        }
        if (a->count[i] > a->max_taps)
            a->max_taps = a->count[i];
    }
    return VP_OK;
}

/* Horizontal pass of one source row into dw x ch floats. A box footprint's inner pixels all
 * weigh the same (they overlap it wholly), so they are summed in integers and weighed once:
 * the pass then costs about one integer add per source sample. Defined per sample type and
 * inlined so that the common one-channel call gets a constant stride. */
#define DEFINE_HPASS(NAME, T)                                                                      \
    static inline __attribute__((always_inline)) void NAME(                                        \
        const T *r, unsigned ch, const struct axis *ax, uint32_t dw, float *out)                   \
    {                                                                                              \
        for (uint32_t i = 0; i < dw; i++) {                                                        \
            const float *w = ax->w + ax->off[i];                                                   \
            const T *p = r + (size_t)ax->start[i] * ch;                                            \
            uint32_t n = ax->count[i];                                                             \
            for (unsigned c = 0; c < ch; c++) {                                                    \
                float acc = 0;                                                                     \
                if (n <= 2 || !ax->box) {                                                          \
                    for (uint32_t k = 0; k < n; k++)                                               \
                        acc += w[k] * p[(size_t)k * ch + c];                                       \
                } else {                                                                           \
                    uint32_t sum = 0; /* < 65536 taps of < 65536 fit */                            \
                    for (uint32_t k = 1; k + 1 < n; k++)                                           \
                        sum += p[(size_t)k * ch + c];                                              \
                    acc =                                                                          \
                        w[0] * p[c] + w[n - 1] * p[(size_t)(n - 1) * ch + c] + w[1] * (float)sum;  \
                }                                                                                  \
                out[(size_t)i * ch + c] = acc;                                                     \
            }                                                                                      \
        }                                                                                          \
    }
DEFINE_HPASS(hpass8, uint8_t)
DEFINE_HPASS(hpass16, uint16_t)
#undef DEFINE_HPASS

static void hpass(const void *row, unsigned bytes, unsigned ch, const struct axis *ax, uint32_t dw,
                  float *out)
{
    if (bytes == 1 && ch == 1)
        hpass8(row, 1, ax, dw, out);
    else if (bytes == 1)
        hpass8(row, ch, ax, dw, out);
    else
        hpass16(row, ch, ax, dw, out);
}

vp_status img_scale_rows(img_row_source *src, void *ctx, uint32_t sw, uint32_t sh,
                         unsigned channels, unsigned bytes, uint32_t dw, uint32_t dh, void *dst,
                         vp_error *err)
{
    if (!sw || !sh || !dw || !dh || (channels != 1 && channels != 3) || (bytes != 1 && bytes != 2))
        return vp_error_set(err, VP_EINVAL, "cannot scale %ux%u to %ux%u", sw, sh, dw, dh);
    struct axis ax, ay;
    vp_status st = axis_init(&ax, sw, dw, err);
    if (st)
        return st;
    if ((st = axis_init(&ay, sh, dh, err))) {
        axis_free(&ax);
        return st;
    }
    size_t rowlen = (size_t)dw * channels, ring = ay.max_taps;
    void *raw = vp_malloc((size_t)sw * channels * bytes);
    float *rows = vp_malloc(ring * rowlen * sizeof *rows);
    float *acc = vp_malloc(rowlen * sizeof *acc);
    if (!raw || !rows || !acc) {
        st = vp_error_set(err, VP_ENOMEM, "out of memory");
        goto done;
    }
    uint32_t next = 0; /* next source row to pull */
    float top = bytes == 1 ? 255.0f : 65535.0f;
    for (uint32_t j = 0; j < dh; j++) {
        uint32_t y0 = ay.start[j], n = ay.count[j];
        /* Taps start no earlier than the previous row's, so rows below y0 are done with and
         * their ring slots free; rows are pulled in order, each once. */
        if (next < y0)
            next = y0; /* (only when upscaling clamps; rows in between are not needed) */
        while (next < y0 + n) {
            if ((st = src(ctx, next, raw, err)))
                goto done;
            hpass(raw, bytes, channels, &ax, dw, rows + (next % ring) * rowlen);
            next++;
        }
        const float *w = ay.w + ay.off[j];
        memset(acc, 0, rowlen * sizeof *acc);
        for (uint32_t k = 0; k < n; k++) {
            const float *r = rows + ((y0 + k) % ring) * rowlen;
            for (size_t i = 0; i < rowlen; i++)
                acc[i] += w[k] * r[i];
        }
        for (size_t i = 0; i < rowlen; i++) {
            float v = acc[i] < 0 ? 0 : acc[i] > top ? top : acc[i];
            if (bytes == 1)
                ((uint8_t *)dst)[(size_t)j * rowlen + i] = (uint8_t)(v + 0.5f);
            else
                ((uint16_t *)dst)[(size_t)j * rowlen + i] = (uint16_t)(v + 0.5f);
        }
    }
done:
    vp_free(raw);
    vp_free(rows);
    vp_free(acc);
    axis_free(&ax);
    axis_free(&ay);
    return st;
}

struct mem_src {
    const img_image *im;
    size_t row_bytes;
};

static vp_status mem_row(void *ctx, uint32_t y, void *row, vp_error *err)
{
    (void)err;
    const struct mem_src *m = ctx;
    memcpy(row, m->im->data + (size_t)y * m->row_bytes, m->row_bytes);
    return VP_OK;
}

vp_status img_scale(const img_image *in, uint32_t dw, uint32_t dh, img_image *out, vp_error *err)
{
    unsigned bytes = in->depth / 8;
    size_t size;
    if (!dw || !dh || vp_mul_size((size_t)dw * dh, (size_t)in->channels * bytes, &size))
        return vp_error_set(err, VP_ELIMIT, "output of %ux%u is too large", dw, dh);
    uint8_t *data = vp_malloc(size);
    if (!data)
        return vp_error_set(err, VP_ENOMEM, "out of memory");
    struct mem_src m = {in, (size_t)in->width * in->channels * bytes};
    vp_status st =
        img_scale_rows(mem_row, &m, in->width, in->height, in->channels, bytes, dw, dh, data, err);
    if (st) {
        vp_free(data);
        return st;
    }
    *out = (img_image){dw, dh, in->channels, in->depth, data};
    return VP_OK;
}
