/* SPDX-License-Identifier: MIT */
/* Fuzz target: the 12-bit JPEG extended DCT decoder (ISO 10918-1 process 4, PS3.5 A.4.1).
 * The input is a JPEG stream; the geometry is taken from its first SOF0/SOF1 header when that
 * is small (at most 2^18 samples, 1-4 components), so mutated streams get past the header
 * checks and reach the entropy decoder, IDCT and upsampling. The low bit of the last byte
 * labels three-component frames YBR_FULL_422 (converted to RGB) rather than RGB. The output
 * buffer is exactly the frame's size, so ASan catches any write past it. */
#include <string.h>

#include "img/img.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    img_info info = {.rows = 8, .columns = 8, .samples_per_pixel = 1, .bits_allocated = 16};
    for (size_t i = 0; i + 10 <= size; i++) {
        if (data[i] != 0xFF || (data[i + 1] != 0xC1 && data[i + 1] != 0xC0))
            continue;
        unsigned y = vp_be16(data + i + 5), x = vp_be16(data + i + 7), nf = data[i + 9];
        if (y && x && nf >= 1 && nf <= 4 && (size_t)x * y * nf <= (1u << 18)) {
            info.rows = y;
            info.columns = x;
            info.samples_per_pixel = (uint16_t)nf;
        }
        break;
    }
    info.bits_stored = 12;
    info.high_bit = 11;
    info.frames = 1;
    strcpy(info.photometric, info.samples_per_pixel == 1 ? "MONOCHROME2"
                             : info.samples_per_pixel == 3 && size && (data[size - 1] & 1)
                                 ? "YBR_FULL_422"
                                 : "RGB");
    size_t n = (size_t)info.rows * info.columns * info.samples_per_pixel * 2;
    info.frame_size = n;
    uint8_t *out = vp_malloc(n);
    if (!out)
        return 0;
    vp_error err;
    vp_error_clear(&err);
    img_info oi;
    img_jpeg12_decode(data, size, &info, out, n, &oi, &err);
    vp_free(out);
    return 0;
}
