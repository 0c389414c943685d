/* SPDX-License-Identifier: MIT */
/* Fuzz target: DICOM JSON (PS3.18 Annex F). Whatever dcm_json_read accepts must be written by
 * dcm_json_write as JSON that reads back, and from then on writing and reading must be stable:
 * JSON2 (written from the re-read data set) equals JSON3 (written after reading JSON2). */
#include <stdlib.h>
#include <string.h>

#include "dcm/dcm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Writes ds and reads the result back; aborts (a finding) when either fails. */
static dcm_dataset *write_and_read(const dcm_dataset *ds, const dcm_json_opts *jo,
                                   const dcm_read_opts *ro, vp_buf *out)
{
    vp_error err;
    vp_error_clear(&err);
    if (dcm_json_write(ds, jo, out, &err) != VP_OK)
        abort();
    dcm_dataset *back = NULL;
    vp_error_clear(&err);
    if (dcm_json_read((const char *)out->data, out->len, ro, &back, &err) != VP_OK)
        abort();
    return back;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dcm_read_opts ro = {.max_length = 1 << 20, .max_elements = 20000};
    dcm_dataset *ds = NULL;
    vp_error err;
    vp_error_clear(&err);
    if (dcm_json_read((const char *)data, size, &ro, &ds, &err) != VP_OK)
        return 0;
    /* Bulk threshold and URI vary with the input so both paths are covered. */
    dcm_json_opts jo = {.pretty = size & 1,
                        .bulk_threshold = (size & 2) ? 8 : 0,
                        .bulk_uri_prefix = (size & 4) ? "http://x/bulk" : NULL};
    vp_buf j1, j2, j3;
    vp_buf_init(&j1, 0);
    vp_buf_init(&j2, 0);
    vp_buf_init(&j3, 0);
    dcm_dataset *d1 = write_and_read(ds, &jo, &ro, &j1);
    dcm_dataset *d2 = write_and_read(d1, &jo, &ro, &j2);
    dcm_dataset *d3 = write_and_read(d2, &jo, &ro, &j3);
    if (j2.len != j3.len || memcmp(j2.data, j3.data, j2.len) != 0)
        abort();
    dcm_dataset_free(d3);
    dcm_dataset_free(d2);
    dcm_dataset_free(d1);
    dcm_dataset_free(ds);
    vp_buf_fini(&j1);
    vp_buf_fini(&j2);
    vp_buf_fini(&j3);
    return 0;
}
