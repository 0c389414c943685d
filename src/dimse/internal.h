/* SPDX-License-Identifier: MIT */
/* dimse: declarations shared by the module's own files only (PS3.7 6.3). */
#ifndef VP_DIMSE_INTERNAL_H
#define VP_DIMSE_INTERNAL_H

#include "dimse/dimse.h"

/* dimse_msg_decode with a size cap, also telling whether Command Data Set Type could be read
 * (so a command that fails to decode can still have its data set skipped). */
vp_status dimse__msg_decode(const void *data, size_t len, size_t max, dimse_msg *out,
                            bool *dataset_known, vp_error *err);

#endif /* VP_DIMSE_INTERNAL_H */
