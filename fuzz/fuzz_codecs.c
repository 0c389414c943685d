/* SPDX-License-Identifier: MIT */
/* Fuzz target: the library-backed decoders (JPEG by libjpeg-turbo, JPEG-LS by CharLS, JPEG
 * 2000 / HTJ2K by OpenJPEG; PS3.5 A.4.1, A.4.3, A.4.4). Byte 0 picks the decoder (mod 3),
 * bytes 1-2 rows and columns (1..256), byte 3 the layout (bit 0: 3 samples, bit 1: 16-bit
 * container, bits 2-3: photometric interpretation, bit 4: signed), byte 4 Bits Stored; the
 * rest is the stream. The output buffer is exactly the frame's size, so ASan catches any
 * write past it. fuzz/make_codec_seeds.py made the seeds from real streams. */
#include <stdio.h>

#include "img/img.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static img_decoder *const decoders[] = {img_jpeg_decode, img_jls_decode, img_j2k_decode};
    static const char *const photometric[] = {"MONOCHROME2", "RGB", "YBR_FULL_422", "YBR_RCT"};
    if (size < 5)
        return 0;
    img_info info = {.rows = (uint32_t)data[1] + 1,
                     .columns = (uint32_t)data[2] + 1,
                     .samples_per_pixel = (data[3] & 1) ? 3 : 1,
                     .bits_allocated = (data[3] & 2) ? 16 : 8,
                     .pixel_representation = (data[3] >> 4) & 1,
                     .frames = 1};
    info.bits_stored = (uint16_t)(data[4] % info.bits_allocated + 1);
    info.high_bit = (uint16_t)(info.bits_stored - 1);
    snprintf(info.photometric, sizeof info.photometric, "%s",
             info.samples_per_pixel == 1 ? "MONOCHROME2" : photometric[(data[3] >> 2) & 3]);
    info.frame_size =
        (size_t)info.rows * info.columns * info.samples_per_pixel * (info.bits_allocated / 8);
    uint8_t *out = vp_malloc(info.frame_size);
    if (!out)
        return 0;
    img_info oi;
    vp_error err;
    vp_error_clear(&err);
    decoders[data[0] % 3](data + 5, size - 5, &info, out, info.frame_size, &oi, &err);
    vp_free(out);
    return 0;
}
