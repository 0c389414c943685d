/* SPDX-License-Identifier: MIT */
/* Fuzz target: Part 10 bytes to decoded frames, then transcoded. Covers the geometry checks
 * (PS3.3 C.7.6.3.1), the offset tables and fragment rules (PS3.5 A.4), the dispatch to every
 * decoder and the RLE encoder and transcoder (PS3.5 Annex G) together, as a file received
 * from a peer would reach them. */
#include <string.h>

#include "dcm/dcm.h"
#include "img/img.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dcm_read_opts o = {.max_length = 1 << 24, .max_elements = 100000, .max_inflated = 1 << 24};
    dcm_file *f;
    vp_error err;
    vp_error_clear(&err);
    if (dcm_file_read_mem(data, size, &o, &f, &err) != VP_OK)
        return 0;
    vp_buf out;
    vp_buf_init(&out, 1 << 26); /* geometry may claim 4 GiB: cap what one frame may take */
    for (uint32_t n = 0; n < 4; n++) {
        vp_error_clear(&err);
        img_info info;
        if (img_decode_frame(dcm_file_dataset(f), dcm_file_transfer_syntax(f), n, &out, &info,
                             &err) != VP_OK)
            break;
    }
    /* A small image that decodes is transcoded to native, then to RLE and back: once native,
     * every step must succeed and the frame must survive the round trip unchanged (what the
     * encoder writes, the decoder reads). */
    img_info info;
    vp_error_clear(&err);
    dcm_dataset *ds = dcm_file_dataset(f);
    const char *ts = dcm_file_transfer_syntax(f);
    if (img_decode_frame(ds, ts, 0, &out, &info, &err) == VP_OK &&
        (uint64_t)info.frame_size * info.frames <= (1u << 20) &&
        img_transcode(ds, ts, DCM_TS_EXPLICIT_LE, NULL, &err) == VP_OK) {
        vp_status st = img_transcode(ds, DCM_TS_EXPLICIT_LE, IMG_RLE_LOSSLESS, NULL, &err);
        if (st == VP_OK) {
            vp_buf rle;
            vp_buf_init(&rle, 0);
            if (img_decode_frame(ds, IMG_RLE_LOSSLESS, 0, &rle, NULL, &err) != VP_OK ||
                img_transcode(ds, IMG_RLE_LOSSLESS, DCM_TS_EXPLICIT_LE, NULL, &err) != VP_OK ||
                img_decode_frame(ds, DCM_TS_EXPLICIT_LE, 0, &out, NULL, &err) != VP_OK ||
                out.len != rle.len || memcmp(out.data, rle.data, out.len) != 0)
                __builtin_trap();
            vp_buf_fini(&rle);
        } else if (st != VP_EUNSUPPORTED && st != VP_ENOMEM && st != VP_ELIMIT) {
            __builtin_trap(); /* a native frame that decodes always encodes */
        }
    }
    vp_buf_fini(&out);
    dcm_file_free(f);
    return 0;
}
