/* SPDX-License-Identifier: MIT */
/* Fuzz target: the JPEG Lossless decoder (ISO 10918-1 Annex H, PS3.5 A.4.1). The input is a
 * JPEG stream; the geometry is taken from its first SOF3 header when that is small (at most
 * 2^18 samples, 1-4 components), so mutated streams get past the header checks and reach the
 * entropy decoder. The low bit of the last byte picks 16-bit output for precisions up to 8.
 * The output buffer is exactly the frame's size, so ASan catches any write past it. */
#include "img/img.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    img_info info = {.rows = 8, .columns = 8, .samples_per_pixel = 1, .bits_allocated = 16};
    for (size_t i = 0; i + 10 <= size; i++) {
        if (data[i] != 0xFF || data[i + 1] != 0xC3)
            continue;
        unsigned p = data[i + 4], y = vp_be16(data + i + 5), x = vp_be16(data + i + 7),
                 nf = data[i + 9];
        if (y && x && nf >= 1 && nf <= 4 && (size_t)x * y * nf <= (1u << 18)) {
            info.rows = y;
            info.columns = x;
            info.samples_per_pixel = (uint16_t)nf;
            info.bits_allocated = p <= 8 && !(size && (data[size - 1] & 1)) ? 8 : 16;
        }
        break;
    }
    info.bits_stored = info.bits_allocated;
    info.high_bit = (uint16_t)(info.bits_stored - 1);
    info.frames = 1;
    size_t n =
        (size_t)info.rows * info.columns * info.samples_per_pixel * (info.bits_allocated / 8);
    info.frame_size = n;
    uint8_t *out = vp_malloc(n);
    if (!out)
        return 0;
    vp_error err;
    vp_error_clear(&err);
    img_info oi;
    img_jpll_decode(data, size, &info, out, n, &oi, &err);
    vp_free(out);
    return 0;
}
