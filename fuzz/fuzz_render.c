/* SPDX-License-Identifier: MIT */
/* Fuzz target: the rendering pipeline (src/img/render.c) on Part 10 bytes as a peer would send
 * them: LUT Descriptors and LUT Data of the Modality, VOI and Palette Color LUTs (PS3.3
 * C.11.1.1, C.11.2.1.1, C.7.6.3.1.5), Segmented Palette Color LUTs (C.7.9.2), windows and
 * functional groups, photometric conversions and scaling, on small images. Input starting
 * with "SEG" goes to the segmented LUT expansion alone: byte 3 picks 8- or 16-bit units (bit
 * 0) and a 256-entry limit (bit 1), the rest is the segment data. In other inputs the first byte of
 * the Part 10 preamble, which the reader ignores, picks the VOI choice, the output size and depth.
 */
#include <string.h>

#include "dcm/dcm.h"
#include "img/render.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_segments(const uint8_t *data, size_t size)
{
    bool bytes = data[3] & 1, small = data[3] & 2;
    data += 4;
    size -= 4;
    size_t n = bytes ? size : size / 2;
    uint16_t units[4096], out[65536];
    if (n > 4096)
        n = 4096;
    for (size_t i = 0; i < n; i++)
        units[i] = bytes ? data[i] : vp_le16(data + 2 * i);
    uint32_t count;
    vp_error err;
    vp_error_clear(&err);
    img_segmented_lut_expand(units, n, bytes, out, small ? 256 : 65536, &count, &err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size >= 4 && !memcmp(data, "SEG", 3)) {
        fuzz_segments(data, size);
        return 0;
    }
    uint8_t sel = size > 132 && !memcmp(data + 128, "DICM", 4) ? data[0] : 0;
    dcm_read_opts ro = {.max_length = 1 << 24, .max_elements = 100000, .max_inflated = 1 << 24};
    dcm_file *f;
    vp_error err;
    vp_error_clear(&err);
    if (dcm_file_read_mem(data, size, &ro, &f, &err) != VP_OK)
        return 0;
    /* A decoded frame is allocated whole: keep claimed geometries small. */
    img_info info;
    if (img_info_get(dcm_file_dataset(f), &info, &err) != VP_OK || info.frame_size > (1u << 22)) {
        dcm_file_free(f);
        return 0;
    }
    img_render_opts o = {0};
    o.voi = (img_voi_mode)(sel % 6);
    o.voi_index = (sel >> 3) & 1;
    o.center = 100;
    o.width = (sel & 0x10) ? 0.5 : 300;
    o.function = (img_voi_function)((sel >> 5) & 3);
    o.max_pixels = 1 << 16; /* keep each run small whatever the geometry claims */
    if (sel & 0x40)
        o.size = 9;
    if (sel & 0x80)
        o.depth = 16;
    img_image im;
    vp_error_clear(&err);
    if (img_render_frame(dcm_file_dataset(f), dcm_file_transfer_syntax(f), &o, &im, &err) ==
        VP_OK) {
        vp_buf out;
        vp_buf_init(&out, 1 << 24);
        img_encode_png(&im, 1, false, &out, &err);
        if (im.depth == 8)
            img_encode_jpeg(&im, 50, true, &out, &err);
        vp_buf_fini(&out);
        img_image_fini(&im);
    }
    dcm_file_free(f);
    return 0;
}
