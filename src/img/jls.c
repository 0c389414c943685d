/* SPDX-License-Identifier: MIT */
/*
 * JPEG-LS lossless and near-lossless frames (PS3.5 A.4.3, 8.2.3; ISO 14495-1), decoded and
 * encoded by CharLS through its C API. CharLS is C++, but every C entry point is noexcept and
 * turns exceptions (bad_alloc included) into an error code, so nothing unwinds through here.
 *
 * Decoding: 2..16 bits per sample, 1 or 3 components, any interleave mode (ISO 14495-1 ILV 0
 * none, 1 line, 2 sample). CharLS writes interleave mode none as planes and the others as
 * pixels; planes are interleaved here so the result is always colour-by-pixel. HP colour
 * transforms (ISO 14495-1 via the HP APP8 marker) are undone by CharLS.
 */
#include <string.h>

#include <charls/charls.h>

#include "img/img.h"

/* CharLS reads and writes 16-bit samples in host order; the module's are little endian. */
static void to_le16(uint8_t *p, size_t n)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    for (size_t i = 0; i + 1 < n; i += 2) {
        uint8_t t = p[i];
        p[i] = p[i + 1];
        p[i + 1] = t;
    }
#else
    (void)p, (void)n;
#endif
}

/*
 * The stream's length up to and including its EOI marker (ISO 14495-1 C.1.1), skipping the
 * zero bytes a DICOM fragment may be padded with after it (PS3.5 A.4), or 0 when it does not
 * end with EOI. CharLS 2.4.1 loops forever on scan data that runs to the end of the buffer
 * without a marker, which is what a truncated frame is (upstream fixed a similar endless loop
 * on invalid data after 2.4.1, CharLS PR #334).
 */
static size_t eoi_end(const uint8_t *in, size_t len)
{
    size_t n = len;
    while (n > 2 && len - n < 16 && in[n - 1] == 0)
        n--;
    return n >= 4 && in[n - 2] == 0xFF && in[n - 1] == 0xD9 ? n : 0;
}

static vp_status charls_fail(vp_error *err, const char *what, charls_jpegls_errc rc)
{
    return vp_error_set(err, VP_EPARSE, "JPEG-LS %s: %s", what, charls_get_error_message(rc));
}

vp_status img_jls_decode(const uint8_t *in, size_t len, const img_info *info, uint8_t *out,
                         size_t out_size, img_info *out_info, vp_error *err)
{
    vp_status st = VP_OK;
    uint8_t *tmp = NULL;
    *out_info = *info;
    charls_jpegls_decoder *dec = charls_jpegls_decoder_create();
    if (!dec)
        return vp_error_set(err, VP_ENOMEM, "out of memory");
    charls_jpegls_errc rc;
    size_t n = eoi_end(in, len);
    if (!n) {
        st = vp_error_set(err, VP_EPARSE,
                          "JPEG-LS stream of %zu bytes without an EOI marker "
                          "at its end (truncated?)",
                          len);
        goto done;
    }
    if ((rc = charls_jpegls_decoder_set_source_buffer(dec, in, n)) ||
        (rc = charls_jpegls_decoder_read_header(dec))) {
        st = charls_fail(err, "header", rc);
        goto done;
    }
    charls_frame_info fi;
    charls_interleave_mode ilv;
    if ((rc = charls_jpegls_decoder_get_frame_info(dec, &fi)) ||
        (rc = charls_jpegls_decoder_get_interleave_mode(dec, &ilv))) {
        st = charls_fail(err, "header", rc);
        goto done;
    }
    /* The frame header against the data set. The sample precision P may be below Bits
     * Stored (encoders may use the actual range) but never beyond the container. */
    if (fi.width != info->columns || fi.height != info->rows) {
        st = vp_error_set(err, VP_EPARSE, "JPEG-LS frame is %ux%u, the data set says %ux%u",
                          fi.width, fi.height, info->columns, info->rows);
        goto done;
    }
    if (fi.component_count != info->samples_per_pixel ||
        (fi.component_count != 1 && fi.component_count != 3)) {
        st =
            vp_error_set(err, VP_EPARSE, "JPEG-LS frame has %d components, Samples per Pixel is %u",
                         fi.component_count, info->samples_per_pixel);
        goto done;
    }
    if (fi.bits_per_sample < 2 || fi.bits_per_sample > 16 ||
        fi.bits_per_sample > info->bits_allocated || info->bits_allocated > 16) {
        st = vp_error_set(err, VP_EPARSE,
                          "JPEG-LS precision %d, the data set says Bits Allocated %u",
                          fi.bits_per_sample, info->bits_allocated);
        goto done;
    }
    size_t spp = (size_t)fi.component_count, pixels = (size_t)fi.width * fi.height;
    size_t jbytes = fi.bits_per_sample > 8 ? 2 : 1; /* what CharLS writes per sample */
    size_t obytes = info->bits_allocated / 8;
    size_t need = pixels * spp * jbytes, frame = pixels * spp * obytes;
    size_t dsize;
    if ((rc = charls_jpegls_decoder_get_destination_size(dec, 0, &dsize))) {
        st = charls_fail(err, "header", rc);
        goto done;
    }
    if (dsize != need || out_size < frame) {
        st = vp_error_set(err, VP_EPARSE, "JPEG-LS frame of %zu bytes, expected %zu", dsize, need);
        goto done;
    }
    /* Straight into out when CharLS's layout is the output's; otherwise through tmp. */
    bool direct = jbytes == obytes && (spp == 1 || ilv != CHARLS_INTERLEAVE_MODE_NONE);
    uint8_t *dst = out;
    if (!direct) {
        if (!(dst = tmp = vp_malloc(need))) {
            st = vp_error_set(err, VP_ENOMEM, "out of memory");
            goto done;
        }
    }
    if ((rc = charls_jpegls_decoder_decode_to_buffer(dec, dst, need, 0))) {
        st = charls_fail(err, "data", rc);
        goto done;
    }
    if (jbytes == 2)
        to_le16(dst, need);
    if (!direct) {
        /* Planes to pixels (ILV 0 with 3 components) and/or 8-bit samples widened to 16. */
        bool planar = spp > 1 && ilv == CHARLS_INTERLEAVE_MODE_NONE;
        for (size_t s = 0; s < spp; s++)
            for (size_t p = 0; p < pixels; p++) {
                size_t from = (planar ? s * pixels + p : p * spp + s) * jbytes;
                uint8_t *o = out + (p * spp + s) * obytes;
                if (jbytes == obytes) {
                    memcpy(o, tmp + from, obytes);
                } else {
                    o[0] = tmp[from];
                    o[1] = 0;
                }
            }
    }
    out_info->planar_configuration = 0;
done:
    vp_free(tmp);
    charls_jpegls_decoder_destroy(dec);
    return st;
}

vp_status img_jls_encode(const uint8_t *px, size_t len, const img_info *info, int near, vp_buf *out,
                         vp_error *err)
{
    vp_buf_reset(out);
    if (info->samples_per_pixel != 1 && info->samples_per_pixel != 3)
        return vp_error_set(err, VP_EUNSUPPORTED, "JPEG-LS encoding of %u samples per pixel",
                            info->samples_per_pixel);
    if ((info->bits_allocated != 8 && info->bits_allocated != 16) || info->bits_stored < 2 ||
        info->bits_stored > info->bits_allocated)
        return vp_error_set(err, VP_EUNSUPPORTED,
                            "JPEG-LS encoding of Bits Allocated %u, Bits Stored %u",
                            info->bits_allocated, info->bits_stored);
    if (info->rows == 0 || info->columns == 0 || info->rows > 65535 || info->columns > 65535)
        return vp_error_set(err, VP_EINVAL, "JPEG-LS encoding of %ux%u", info->columns, info->rows);
    size_t spp = info->samples_per_pixel, bytes = info->bits_allocated / 8;
    size_t n = (size_t)info->rows * info->columns * spp; /* samples; no overflow: 2^32 * 3 */
    if (len != n * bytes)
        return vp_error_set(err, VP_EINVAL, "frame of %zu bytes, expected %zu", len, n * bytes);
    /* Sample precision P: Bits Stored, except that 8-bit frames are coded with P 8 (dcmtk
     * reads no other P from an 8-bit container, and dcmcjpls writes 8 there too). Only the
     * low Bits Stored bits are coded: bits above (a sign extension, overlays) would exceed
     * the precision CharLS was told. Samples of at most 8 bits go to CharLS as bytes. */
    int prec = bytes == 1 ? 8 : info->bits_stored;
    size_t jbytes = prec > 8 ? 2 : 1;
    int maxval = (1 << prec) - 1, mask = (1 << info->bits_stored) - 1;
    int near_max =
        maxval / 2 < 255 ? maxval / 2 : 255; /* ISO 14495-1: NEAR <= min(255, MAXVAL/2) */
    if (near < 0 || near > near_max)
        return vp_error_set(err, VP_EINVAL, "JPEG-LS NEAR %d outside 0..%d", near, near_max);
    vp_status st = VP_OK;
    uint8_t *copy = NULL;
    const uint8_t *src = px;
    size_t src_len = len;
    if (bytes == 2 || info->bits_stored < 8) {
        src_len = n * jbytes;
        if (!(copy = vp_malloc(src_len)))
            return vp_error_set(err, VP_ENOMEM, "out of memory");
        for (size_t i = 0; i < n; i++) {
            uint16_t v = (uint16_t)((bytes == 2 ? px[2 * i] | px[2 * i + 1] << 8 : px[i]) & mask);
            if (jbytes == 2)
                memcpy(copy + 2 * i, &v, 2); /* host order, as CharLS reads it */
            else
                copy[i] = (uint8_t)v;
        }
        src = copy;
    }
    charls_jpegls_encoder *enc = charls_jpegls_encoder_create();
    if (!enc) {
        vp_free(copy);
        return vp_error_set(err, VP_ENOMEM, "out of memory");
    }
    charls_frame_info fi = {.width = info->columns,
                            .height = info->rows,
                            .bits_per_sample = prec,
                            .component_count = (int32_t)spp};
    charls_jpegls_errc rc;
    size_t cap, written = 0;
    if ((rc = charls_jpegls_encoder_set_frame_info(enc, &fi)) ||
        (rc = charls_jpegls_encoder_set_near_lossless(enc, near)) ||
        (rc = charls_jpegls_encoder_set_interleave_mode(
             enc, spp == 3 ? CHARLS_INTERLEAVE_MODE_SAMPLE : CHARLS_INTERLEAVE_MODE_NONE)) ||
        (rc = charls_jpegls_encoder_set_encoding_options(
             enc, CHARLS_ENCODING_OPTIONS_EVEN_DESTINATION_SIZE |
                      CHARLS_ENCODING_OPTIONS_INCLUDE_PC_PARAMETERS_JAI)) ||
        (rc = charls_jpegls_encoder_get_estimated_destination_size(enc, &cap))) {
        st = vp_error_set(err, VP_EINVAL, "JPEG-LS encoder: %s", charls_get_error_message(rc));
        goto done;
    }
    if ((st = vp_buf_reserve(out, cap))) {
        vp_error_set(err, st, "JPEG-LS output of %zu bytes: %s", cap, vp_status_name(st));
        goto done;
    }
    if ((rc = charls_jpegls_encoder_set_destination_buffer(enc, out->data, cap)) ||
        (rc = charls_jpegls_encoder_encode_from_buffer(enc, src, src_len, 0)) ||
        (rc = charls_jpegls_encoder_get_bytes_written(enc, &written))) {
        st = vp_error_set(err, VP_EINVAL, "JPEG-LS encoder: %s", charls_get_error_message(rc));
        goto done;
    }
    out->len = written;
    out->data[written] = 0; /* vp_buf keeps a NUL after its contents */
done:
    charls_jpegls_encoder_destroy(enc);
    vp_free(copy);
    if (st)
        vp_buf_reset(out);
    return st;
}
