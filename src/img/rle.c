/* SPDX-License-Identifier: MIT */
/*
 * RLE Lossless decoder (PS3.5 Annex G). A frame is a 64-byte header, the segment count and 15
 * segment offsets as little-endian uint32 (G.5), followed by the segments. Each segment is one
 * byte plane, PackBits-compressed (G.3.1): for 8-bit samples one segment per colour component,
 * for wider samples one per byte of each component, most significant byte first (G.2). The
 * planes are recombined here into little-endian samples, colour-by-pixel.
 */
#include <string.h>

#include "img/img.h"

#define RLE_HEADER 64
#define RLE_MAX_SEGMENTS 15

/* Decodes one PackBits segment into every stride-th byte of out, exactly n bytes. Bytes left
 * in the segment after n outputs are ignored: encoders pad segments to an even length. */
static vp_status unpack_segment(const uint8_t *in, size_t len, uint8_t *out, size_t n,
                                size_t stride, unsigned seg, vp_error *err)
{
    size_t i = 0, o = 0;
    while (o < n) {
        if (i >= len)
            return vp_error_set(err, VP_EPARSE, "RLE segment %u ends after %zu of %zu bytes", seg,
                                o, n);
        int8_t h = (int8_t)in[i++];
        if (h >= 0) {
            /* G.3.1: n in 0..127 copies the next n + 1 bytes literally. */
            size_t k = (size_t)h + 1;
            if (k > len - i)
                return vp_error_set(err, VP_EPARSE,
                                    "RLE segment %u literal run of %zu bytes "
                                    "passes its end",
                                    seg, k);
            if (k > n - o)
                return vp_error_set(err, VP_EPARSE,
                                    "RLE segment %u literal run of %zu bytes overflows the "
                                    "frame (%zu left)",
                                    seg, k, n - o);
            for (size_t j = 0; j < k; j++, o++)
                out[o * stride] = in[i + j];
            i += k;
        } else if (h != -128) {
            /* -1..-127 repeats the next byte -n + 1 times; -128 is a no-op. */
            size_t k = (size_t)(1 - h);
            if (i >= len)
                return vp_error_set(err, VP_EPARSE, "RLE segment %u replicate run has no byte",
                                    seg);
            if (k > n - o)
                return vp_error_set(err, VP_EPARSE,
                                    "RLE segment %u replicate run of %zu bytes overflows the "
                                    "frame (%zu left)",
                                    seg, k, n - o);
            uint8_t b = in[i++];
            for (size_t j = 0; j < k; j++, o++)
                out[o * stride] = b;
        }
    }
    return VP_OK;
}

vp_status img_rle_decode(const uint8_t *in, size_t len, const img_info *info, uint8_t *out,
                         size_t out_size, vp_error *err)
{
    unsigned bytes = info->bits_allocated / 8, spp = info->samples_per_pixel;
    size_t pixels;
    if (bytes == 0 || spp == 0 || vp_mul_size(info->rows, info->columns, &pixels))
        return vp_error_set(err, VP_EINVAL, "RLE: bad geometry");
    unsigned want = bytes * spp;
    size_t need;
    if (vp_mul_size(pixels, want, &need) || need > out_size)
        return vp_error_set(err, VP_EINVAL, "RLE: output of %zu bytes too small", out_size);
    if (want > RLE_MAX_SEGMENTS)
        return vp_error_set(err, VP_EUNSUPPORTED,
                            "RLE: %u samples of %u bytes need %u segments, at most 15", spp, bytes,
                            want);
    if (len < RLE_HEADER)
        return vp_error_set(err, VP_EPARSE, "RLE frame of %zu bytes is shorter than its header",
                            len);
    uint32_t count = vp_le32(in);
    if (count != want)
        return vp_error_set(err, VP_EPARSE, "RLE header has %u segments, expected %u", count, want);
    uint32_t off[RLE_MAX_SEGMENTS + 1];
    for (unsigned s = 0; s < count; s++) {
        off[s] = vp_le32(in + 4 + 4 * s);
        /* G.5: the first segment follows the header; each starts after the previous one
         * and within the frame. */
        if ((s == 0 && off[s] != RLE_HEADER) || (s > 0 && off[s] < off[s - 1]) || off[s] > len)
            return vp_error_set(err, VP_EPARSE,
                                "RLE segment %u offset %u out of order or past "
                                "the frame's %zu bytes",
                                s + 1, off[s], len);
    }
    off[count] = len > UINT32_MAX ? UINT32_MAX : (uint32_t)len;
    /* Segment s holds byte (bytes - 1 - s % bytes) of sample s / bytes: most significant
     * first (G.2). Writing with a stride puts it straight into its little-endian place. */
    for (unsigned s = 0; s < count; s++) {
        unsigned sample = s / bytes, byte = bytes - 1 - s % bytes;
        vp_status st =
            unpack_segment(in + off[s], off[s + 1] - off[s], out + (size_t)sample * bytes + byte,
                           pixels, want, s + 1, err);
        if (st)
            return st;
    }
    return VP_OK;
}

/*
 * RLE Lossless encoder (PS3.5 G.3.1, G.4, G.5). Worst case per row: one header byte per 128
 * literal bytes, so the output is bounded before encoding and written without checks.
 */

/* PackBits of n bytes taken every stride-th from in; returns bytes written to out. Runs of
 * two or more equal bytes replicate (a two-byte run costs the same as a literal pair but
 * ends a literal run, which most encoders only do at three; two is as small and simpler).
 * G.3.1: each row is encoded separately, so a run never crosses a row's end. */
static size_t pack_row(const uint8_t *in, size_t n, size_t stride, uint8_t *out)
{
    size_t o = 0, i = 0;
    while (i < n) {
        size_t run = 1;
        uint8_t b = in[i * stride];
        while (i + run < n && run < 128 && in[(i + run) * stride] == b)
            run++;
        if (run >= 2) {
            out[o++] = (uint8_t)(int8_t)(1 - (int)run); /* -1..-127: repeat 1 - h times */
            out[o++] = b;
            i += run;
            continue;
        }
        /* literal: up to the next pair of equal bytes, at most 128 (at least one: the byte
         * at i differs from the next, or the run above would have been two) */
        size_t start = i, k = 0;
        while (i < n && k < 128 && !(i + 1 < n && in[i * stride] == in[(i + 1) * stride])) {
            i++;
            k++;
        }
        out[o++] = (uint8_t)(k - 1);
        for (size_t j = 0; j < k; j++)
            out[o++] = in[(start + j) * stride];
    }
    return o;
}

vp_status img_rle_encode(const uint8_t *px, size_t len, const img_info *info, vp_buf *out,
                         vp_error *err)
{
    vp_buf_reset(out);
    size_t bytes = info->bits_allocated / 8, spp = info->samples_per_pixel;
    size_t nseg = bytes * spp, rows = info->rows, cols = info->columns;
    if ((info->bits_allocated != 8 && info->bits_allocated != 16 && info->bits_allocated != 32) ||
        nseg > RLE_MAX_SEGMENTS)
        return vp_error_set(err, VP_EUNSUPPORTED,
                            "RLE Lossless cannot hold %zu samples of %u bits (15 segments at most)",
                            spp, info->bits_allocated);
    if (len != info->frame_size)
        return vp_error_set(err, VP_EINVAL, "frame has %zu bytes, geometry needs %zu", len,
                            info->frame_size);
    /* Bound: header + per segment (rows x (cols + cols/128 + 1) + 1 pad). */
    size_t per_row = cols + cols / 128 + 1, bound;
    if (vp_mul_size(per_row, rows, &bound) || vp_add_size(bound, 1, &bound) ||
        vp_mul_size(bound, nseg, &bound) || vp_add_size(bound, RLE_HEADER, &bound))
        return vp_error_set(err, VP_ELIMIT, "frame too large");
    vp_status st = vp_buf_reserve(out, bound);
    if (st)
        return vp_error_set(err, st, "RLE frame of up to %zu bytes: %s", bound, vp_status_name(st));
    uint8_t *o = out->data;
    memset(o, 0, RLE_HEADER);
    vp_put_le32(o, (uint32_t)nseg);
    size_t pos = RLE_HEADER, stride = nseg;
    for (size_t s = 0; s < spp; s++) {
        /* G.2: per sample, the most significant byte's segment first. Little-endian
         * colour-by-pixel input: byte b of sample s of pixel p is at (p * spp + s) * bytes + b. */
        for (size_t b = bytes; b-- > 0;) {
            size_t seg = s * bytes + (bytes - 1 - b);
            if (pos > UINT32_MAX)
                return vp_error_set(err, VP_ELIMIT, "RLE frame over 4 GiB");
            vp_put_le32(o + 4 + 4 * seg, (uint32_t)pos);
            const uint8_t *base = px + s * bytes + b;
            for (size_t r = 0; r < rows; r++)
                pos += pack_row(base + r * cols * stride, cols, stride, o + pos);
            if (pos % 2) /* G.4: each segment even in length */
                o[pos++] = 0;
        }
    }
    out->len = pos;
    out->data[pos] = 0;
    return VP_OK;
}
