/* SPDX-License-Identifier: MIT */
/* Fuzz target: Part 10 file parsing (preamble, meta group, every native encoding, deflate),
 * then a write of what was read and a read back: the writer must accept anything the reader
 * produced, and the read back must be equal. */
#include <stdio.h>
#include <stdlib.h>

#include "dcm/dcm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dcm_read_opts o = {.max_length = 1 << 24, .max_elements = 100000, .max_inflated = 1 << 24};
    dcm_file *f = NULL;
    vp_error err;
    vp_error_clear(&err);
    if (dcm_file_read_mem(data, size, &o, &f, &err) != VP_OK)
        return 0;
    const char *ts = dcm_file_transfer_syntax(f);
    vp_buf out;
    vp_buf_init(&out, 0);
    dcm_sink sink = dcm_sink_buf(&out);
    vp_error_clear(&err);
    if (dcm_part10_write(dcm_file_meta(f), dcm_file_dataset(f), ts, NULL, &sink, &err) == VP_OK) {
        dcm_file *g = NULL;
        vp_error_clear(&err);
        if (dcm_file_read_mem(out.data, out.len, &o, &g, &err) != VP_OK) {
            fprintf(stderr, "re-read of written data failed: %s\n", err.msg);
            abort();
        }
        /* Group 0002 belongs in the meta header only: the writer drops stray copies from the
         * data set (PS3.10 7.1), so the original is compared without them. */
        dcm_dataset *ds = dcm_file_dataset(f);
        for (size_t i = dcm_dataset_count(ds); i-- > 0;) {
            uint32_t tag = dcm_element_tag(dcm_dataset_at(ds, i));
            if (DCM_GROUP(tag) == 0x0002)
                dcm_dataset_remove(ds, tag);
        }
        char why[256];
        if (!dcm_dataset_equal(dcm_file_dataset(f), dcm_file_dataset(g), why, sizeof why)) {
            fprintf(stderr, "round trip differs: %s\n", why);
            abort();
        }
        dcm_file_free(g);
    }
    vp_buf out2;
    vp_buf_init(&out2, 0);
    dcm_dump(dcm_file_dataset(f), NULL, &out2);
    vp_buf_fini(&out2);
    vp_buf_fini(&out);
    dcm_file_free(f);
    return 0;
}
