/* SPDX-License-Identifier: MIT */
/*
 * JPEG output: baseline sequential DCT (ISO 10918-1 process 1, SOF0) of 8-bit gray or RGB
 * images by libjpeg-turbo's compressor, into a vp_buf. RGB is stored as YCbCr 4:2:0 with a JFIF
 * header, what browsers and viewers expect of a thumbnail or a WADO rendered image.
 *
 * libjpeg reports errors by calling error_exit, which must not return: it longjmps back here
 * and the message becomes the error. Nothing is printed.
 */
#include <setjmp.h>
#include <stdio.h> /* jpeglib.h needs FILE and size_t */
#include <stdlib.h>
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>

#include "img/render.h"

struct jerr {
    struct jpeg_error_mgr pub; /* first: libjpeg sees only this */
    jmp_buf jump;
};

/* A destination writing straight into the caller's vp_buf: no second copy, and nothing to
 * free when libjpeg gives up half way. */
struct dest {
    struct jpeg_destination_mgr pub; /* first: libjpeg sees only this */
    vp_buf *out;
    size_t given; /* bytes of space handed to libjpeg at out->data + out->len */
};

static void on_error_exit(j_common_ptr c)
{
    longjmp(((struct jerr *)c->err)->jump, 1);
}

static void on_output_message(j_common_ptr c)
{
    (void)c;
}

/* Hands libjpeg the free space after out->len, at least 64 KiB of it. */
static boolean give_space(j_compress_ptr c)
{
    struct dest *d = (struct dest *)c->dest;
    if (vp_buf_reserve(d->out, 65536) != VP_OK)
        ERREXIT1(c, JERR_OUT_OF_MEMORY, 0);
    d->given = d->out->cap - 1 - d->out->len; /* vp_buf keeps one byte for its NUL */
    d->pub.next_output_byte = d->out->data + d->out->len;
    d->pub.free_in_buffer = d->given;
    return TRUE;
}

static void dest_init(j_compress_ptr c)
{
    give_space(c);
}

/* libjpeg filled all the space given. */
static boolean dest_empty(j_compress_ptr c)
{
    struct dest *d = (struct dest *)c->dest;
    d->out->len += d->given;
    return give_space(c);
}

static void dest_term(j_compress_ptr c)
{
    struct dest *d = (struct dest *)c->dest;
    d->out->len += d->given - d->pub.free_in_buffer;
    d->out->data[d->out->len] = 0;
    d->given = 0;
}

vp_status img_encode_jpeg(const img_image *im, int quality, bool fast, vp_buf *out, vp_error *err)
{
    vp_buf_reset(out);
    if (im->depth != 8)
        return vp_error_set(err, VP_EUNSUPPORTED, "JPEG output is 8-bit only (asked for %u bits)",
                            im->depth);
    if (!im->width || !im->height || im->width > 65500 || im->height > 65500 ||
        (im->channels != 1 && im->channels != 3))
        return vp_error_set(err, VP_EINVAL, "cannot write a %ux%u image of %u samples as JPEG",
                            im->width, im->height, im->channels);
    struct jpeg_compress_struct cinfo;
    struct jerr jerr;
    struct dest dest = {.pub = {.init_destination = dest_init,
                                .empty_output_buffer = dest_empty,
                                .term_destination = dest_term},
                        .out = out};
    cinfo.err = jpeg_std_error(&jerr.pub);
    jerr.pub.error_exit = on_error_exit;
    jerr.pub.output_message = on_output_message;
    if (setjmp(jerr.jump)) {
        char msg[JMSG_LENGTH_MAX];
        jerr.pub.format_message((j_common_ptr)&cinfo, msg);
        jpeg_destroy_compress(&cinfo);
        vp_buf_reset(out);
        return vp_error_set(err, jerr.pub.msg_code == JERR_OUT_OF_MEMORY ? VP_ENOMEM : VP_EINVAL,
                            "JPEG encoding: %s", msg);
    }
    jpeg_create_compress(&cinfo);
    cinfo.dest = &dest.pub;
    cinfo.image_width = im->width;
    cinfo.image_height = im->height;
    cinfo.input_components = im->channels;
    cinfo.in_color_space = im->channels == 3 ? JCS_RGB : JCS_GRAYSCALE;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality < 1 ? 1 : quality > 100 ? 100 : quality, TRUE);
    cinfo.dct_method = fast ? JDCT_IFAST : JDCT_ISLOW;
    jpeg_start_compress(&cinfo, TRUE);
    size_t stride = (size_t)im->width * im->channels;
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW row = im->data + (size_t)cinfo.next_scanline * stride;
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    return VP_OK;
}
