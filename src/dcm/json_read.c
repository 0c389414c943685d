/* SPDX-License-Identifier: MIT */
/* DICOM JSON reader (PS3.18 Annex F). Work in progress. */
#include "dcm/internal.h"

vp_status dcm_json_read(const char *json, size_t len, const dcm_read_opts *opts,
                        dcm_dataset **out, vp_error *err)
{
    (void)json;
    (void)len;
    (void)opts;
    *out = NULL;
    return vp_error_set(err, VP_EUNSUPPORTED, "DICOM JSON reading not implemented yet");
}
