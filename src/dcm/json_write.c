/* SPDX-License-Identifier: MIT */
/* DICOM JSON writer (PS3.18 Annex F). Work in progress. */
#include "dcm/internal.h"

vp_status dcm_json_write(const dcm_dataset *ds, const dcm_json_opts *opts, vp_buf *out,
                         vp_error *err)
{
    (void)ds;
    (void)opts;
    (void)err;
    return vp_buf_puts(out, "{}");
}
