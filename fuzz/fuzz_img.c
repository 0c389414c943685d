/* SPDX-License-Identifier: MIT */
/* Fuzz target: Part 10 bytes to decoded frames. Covers the geometry checks (PS3.3 C.7.6.3.1),
 * the offset tables and fragment rules (PS3.5 A.4) and RLE (PS3.5 Annex G) together, as a
 * file received from a peer would reach them. */
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
    vp_buf_fini(&out);
    dcm_file_free(f);
    return 0;
}
