/* SPDX-License-Identifier: MIT */
/*
 * JPEG baseline, extended (8-bit) and progressive Huffman DCT frames (PS3.5 A.4.1, 8.2.1; ISO
 * 10918-1 processes 1, 2 and 10 via SOF0, SOF1, SOF2) decoded by libjpeg-turbo from memory.
 *
 * libjpeg reports errors by calling error_exit, which must not return: it longjmps back here
 * and the message becomes VP_EPARSE. Warnings are counted; "Premature end of JPEG file" (the
 * source ran dry and libjpeg made up the rest of the image) is an error, other corrupt-data
 * warnings are accepted with the pixels libjpeg produces, as dcmtk does.
 *
 * Colour (PS3.5 8.2.1; dcmdjpeg's default "+cp", convert when the photometric interpretation
 * is YCbCr): for YBR_FULL, YBR_FULL_422 and YBR_PARTIAL_422 the components are converted from
 * YCbCr to RGB and the photometric interpretation becomes RGB. For RGB the components are
 * returned as stored, unless the stream itself says YCbCr (a JFIF APP0, or an Adobe APP14 with
 * transform 1): then it is converted too, the label being wrong rather than the stream. Other
 * photometric interpretations are returned as stored.
 */
#include <setjmp.h>
#include <stdio.h> /* jpeglib.h needs FILE and size_t */
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>

#include "img/img.h"

/* A progressive stream can hold any number of scans, each costing a pass over the whole
 * coefficient buffer: real encoders write about ten. The cap keeps a small hostile stream
 * from taking minutes. */
#define JPEG_MAX_SCANS 1000

struct jerr {
    struct jpeg_error_mgr pub; /* first: libjpeg sees only this */
    jmp_buf jump;              /* where error_exit returns to */
    int eof;                   /* the source ran out (JWRN_JPEG_EOF) */
    int scans;                 /* the jump came from the scan cap, not from libjpeg */
};

static void on_error_exit(j_common_ptr c)
{
    longjmp(((struct jerr *)c->err)->jump, 1);
}

/* Level -1 is a warning; higher levels are trace messages. Nothing is printed. */
static void on_emit_message(j_common_ptr c, int level)
{
    struct jerr *e = (struct jerr *)c->err;
    if (level < 0) {
        e->pub.num_warnings++;
        if (e->pub.msg_code == JWRN_JPEG_EOF)
            e->eof = 1;
    }
}

static void on_output_message(j_common_ptr c)
{
    (void)c;
}

/* Called by libjpeg between passes and scans. */
static void on_progress(j_common_ptr c)
{
    j_decompress_ptr d = (j_decompress_ptr)c;
    if (c->is_decompressor && d->input_scan_number > JPEG_MAX_SCANS) {
        ((struct jerr *)c->err)->scans = 1;
        longjmp(((struct jerr *)c->err)->jump, 1);
    }
}

/*
 * Sample precision P of the first frame header (ISO 10918-1 B.2.2), 0 when none comes before
 * the first scan. libjpeg refuses P 12 only once it reaches a scan; looking first gives the
 * same answer for a truncated 12-bit stream.
 */
static int sof_precision(const uint8_t *p, size_t len)
{
    size_t i = 2;
    while (i + 4 < len && p[i] == 0xFF) {
        int m = p[i + 1];
        if (m == 0xFF) {
            i++;
            continue;
        }
        if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC)
            return p[i + 4];
        if (m == 0xDA || m == 0xD9)
            return 0;
        i += 2 + ((size_t)p[i + 2] << 8 | p[i + 3]);
    }
    return 0;
}

static bool is_ybr(const char *pi)
{
    return !strcmp(pi, "YBR_FULL") || !strcmp(pi, "YBR_FULL_422") || !strcmp(pi, "YBR_PARTIAL_422");
}

/* Row pointers handed to jpeg_read_scanlines per call; libjpeg returns at most
 * rec_outbuf_height (1..4) rows, so a few more only save calls. */
#define ROWS_PER_CALL 16

vp_status img_jpeg_decode(const uint8_t *in, size_t len, const img_info *info, uint8_t *out,
                          size_t out_size, img_info *out_info, vp_error *err)
{
    struct jpeg_decompress_struct cinfo;
    struct jerr jerr;
    struct jpeg_progress_mgr prog;
    /* Modified after setjmp and read after longjmp: must not live in a register. */
    uint8_t *volatile row = NULL;
    volatile vp_status st = VP_OK;
    *out_info = *info;

    if (len > (unsigned long)-1)
        return vp_error_set(err, VP_ELIMIT, "JPEG stream of %zu bytes", len);
    if (sof_precision(in, len) == 12)
        return vp_error_set(err, VP_EUNSUPPORTED,
                            "unsupported transfer syntax: JPEG Extended with 12-bit samples");
    memset(&cinfo, 0, sizeof cinfo);
    cinfo.err = jpeg_std_error(&jerr.pub);
    jerr.pub.error_exit = on_error_exit;
    jerr.pub.emit_message = on_emit_message;
    jerr.pub.output_message = on_output_message;
    jerr.eof = jerr.scans = 0;
    if (setjmp(jerr.jump)) {
        if (jerr.scans) {
            st =
                vp_error_set(err, VP_ELIMIT, "JPEG stream with more than %d scans", JPEG_MAX_SCANS);
        } else if (jerr.pub.msg_code == JERR_BAD_PRECISION && jerr.pub.msg_parm.i[0] == 12) {
            /* An 8-bit libjpeg refuses the frame header itself (ISO 10918-1 process 4). */
            st = vp_error_set(err, VP_EUNSUPPORTED,
                              "unsupported transfer syntax: JPEG Extended with 12-bit samples");
        } else {
            char msg[JMSG_LENGTH_MAX];
            jerr.pub.format_message((j_common_ptr)&cinfo, msg);
            st = vp_error_set(err, VP_EPARSE, "JPEG: %s", msg);
        }
        jpeg_destroy_decompress(&cinfo);
        vp_free(row);
        return st;
    }
    jpeg_create_decompress(&cinfo);
    memset(&prog, 0, sizeof prog);
    prog.progress_monitor = on_progress;
    cinfo.progress = &prog;
    jpeg_mem_src(&cinfo, in, (unsigned long)len);
    jpeg_read_header(&cinfo, TRUE);

    /* The frame header against the data set (PS3.5 8.2.1: they must agree). */
    if (cinfo.data_precision == 12) {
        st = vp_error_set(err, VP_EUNSUPPORTED,
                          "unsupported transfer syntax: JPEG Extended with 12-bit samples");
        goto done;
    }
    if (cinfo.data_precision != 8) {
        st = vp_error_set(err, VP_EPARSE, "JPEG sample precision %d", cinfo.data_precision);
        goto done;
    }
    if (cinfo.image_width != info->columns || cinfo.image_height != info->rows) {
        st = vp_error_set(err, VP_EPARSE, "JPEG frame is %ux%u, the data set says %ux%u",
                          cinfo.image_width, cinfo.image_height, info->columns, info->rows);
        goto done;
    }
    if (cinfo.num_components != info->samples_per_pixel) {
        st = vp_error_set(err, VP_EPARSE, "JPEG frame has %d components, Samples per Pixel is %u",
                          cinfo.num_components, info->samples_per_pixel);
        goto done;
    }
    if (info->bits_stored > 8 || (info->bits_allocated != 8 && info->bits_allocated != 16)) {
        st = vp_error_set(err, VP_EPARSE,
                          "JPEG precision 8, the data set says Bits Stored %u, Allocated %u",
                          info->bits_stored, info->bits_allocated);
        goto done;
    }
    size_t bytes = info->bits_allocated / 8, spp = info->samples_per_pixel;
    size_t line = (size_t)info->columns * spp; /* samples per row */
    if (out_size < line * bytes * info->rows) {
        st = vp_error_set(err, VP_EINVAL, "output of %zu bytes for a %zu-byte frame", out_size,
                          line * bytes * info->rows);
        goto done;
    }

    bool convert = false;
    if (spp == 3) {
        if (is_ybr(info->photometric))
            convert = true;
        else if (!strcmp(info->photometric, "RGB"))
            convert =
                cinfo.saw_JFIF_marker || (cinfo.saw_Adobe_marker && cinfo.Adobe_transform == 1);
    }
    if (convert) {
        cinfo.jpeg_color_space = JCS_YCbCr;
        cinfo.out_color_space = JCS_RGB;
        snprintf(out_info->photometric, sizeof out_info->photometric, "RGB");
    } else {
        /* The components as stored, whatever libjpeg guessed from markers and ids. */
        cinfo.jpeg_color_space = JCS_UNKNOWN;
        cinfo.out_color_space = JCS_UNKNOWN;
    }
    /* libjpeg's default IDCT (JDCT_ISLOW) and fancy upsampling are dcmtk's too: its IJG 6b
     * based decoder leaves both at their defaults, and the islow results are bit-exact. */
    cinfo.dct_method = JDCT_ISLOW;
    cinfo.do_fancy_upsampling = TRUE;
    jpeg_start_decompress(&cinfo);
    if (cinfo.output_width != info->columns || cinfo.output_height != info->rows ||
        (size_t)cinfo.output_components != spp) {
        st = vp_error_set(err, VP_EPARSE, "JPEG output is %ux%u with %d components",
                          cinfo.output_width, cinfo.output_height, cinfo.output_components);
        goto done;
    }

    JSAMPROW rows[ROWS_PER_CALL];
    if (bytes == 1) {
        while (cinfo.output_scanline < cinfo.output_height) {
            JDIMENSION y = cinfo.output_scanline, n = cinfo.output_height - y;
            if (n > ROWS_PER_CALL)
                n = ROWS_PER_CALL;
            for (JDIMENSION i = 0; i < n; i++)
                rows[i] = out + (size_t)(y + i) * line;
            if (jpeg_read_scanlines(&cinfo, rows, n) == 0)
                break; /* cannot happen with a memory source; do not spin */
        }
    } else {
        /* 8-bit JPEG in a 16-bit container (Bits Allocated 16, Stored <= 8): widen each row. */
        uint8_t *r = vp_malloc(line);
        row = r;
        if (!r) {
            st = vp_error_set(err, VP_ENOMEM, "out of memory");
            goto done;
        }
        rows[0] = r;
        while (cinfo.output_scanline < cinfo.output_height) {
            uint8_t *o = out + (size_t)cinfo.output_scanline * line * 2;
            if (jpeg_read_scanlines(&cinfo, rows, 1) == 0)
                break;
            for (size_t i = 0; i < line; i++) {
                o[2 * i] = r[i];
                o[2 * i + 1] = 0;
            }
        }
    }
    if (cinfo.output_scanline < cinfo.output_height) {
        st = vp_error_set(err, VP_EPARSE, "JPEG decoding stopped at row %u of %u",
                          cinfo.output_scanline, cinfo.output_height);
        goto done;
    }
    if (jerr.eof) {
        st = vp_error_set(err, VP_EPARSE, "JPEG stream truncated: premature end of data");
        goto done;
    }
    /* The EOI marker may be missing (libjpeg would then warn): already decoded rows are kept
     * only when the stream had all of its data, which the eof check above established. */
    jpeg_abort_decompress(&cinfo);
done:
    jpeg_destroy_decompress(&cinfo);
    vp_free(row);
    if (st == VP_OK)
        out_info->planar_configuration = 0;
    return st;
}
