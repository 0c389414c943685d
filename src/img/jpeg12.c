/* SPDX-License-Identifier: MIT */
/* Placeholder until the decoder lands. */
#include "img/img.h"

vp_status img_jpeg12_decode(const uint8_t *in, size_t len, const img_info *info, uint8_t *out,
                            size_t out_size, img_info *out_info, vp_error *err)
{
    (void)in, (void)len, (void)info, (void)out, (void)out_size, (void)out_info;
    return vp_error_set(err, VP_EUNSUPPORTED,
                        "unsupported transfer syntax: JPEG Extended with 12-bit samples");
}
