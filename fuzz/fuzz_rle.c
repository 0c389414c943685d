/* SPDX-License-Identifier: MIT */
/* Fuzz target: the RLE Lossless decoder (PS3.5 Annex G). The first four bytes give the
 * geometry (rows and columns 1..64, 1 or 3 samples, 1, 2 or 4 bytes per sample) so one corpus
 * covers every segment layout; the rest is the RLE frame. The output buffer is exactly the
 * frame's size, so ASan catches any write past it. */
#include "img/img.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint16_t bits[] = {8, 16, 32, 32};
    if (size < 4)
        return 0;
    img_info info = {.rows = (uint32_t)(data[0] & 63) + 1,
                     .columns = (uint32_t)(data[1] & 63) + 1,
                     .samples_per_pixel = (data[2] & 1) ? 3 : 1,
                     .bits_allocated = bits[data[3] & 3]};
    size_t n =
        (size_t)info.rows * info.columns * info.samples_per_pixel * (info.bits_allocated / 8);
    uint8_t *out = vp_malloc(n);
    if (!out)
        return 0;
    vp_error err;
    vp_error_clear(&err);
    img_rle_decode(data + 4, size - 4, &info, out, n, &err);
    vp_free(out);
    return 0;
}
