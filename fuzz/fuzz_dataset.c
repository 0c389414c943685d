/* SPDX-License-Identifier: MIT */
/* Fuzz target: bare data set parsing (as DIMSE delivers them). The first byte picks the
 * transfer syntax so one corpus covers implicit, explicit, big endian and deflated. */
#include "dcm/dcm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const ts[] = {DCM_TS_IMPLICIT_LE, DCM_TS_EXPLICIT_LE, DCM_TS_EXPLICIT_BE,
                                     DCM_TS_DEFLATED_LE};
    if (size < 1)
        return 0;
    dcm_read_opts o = {.max_length = 1 << 24, .max_elements = 100000, .max_inflated = 1 << 24};
    dcm_dataset *ds = NULL;
    vp_error err;
    vp_error_clear(&err);
    if (dcm_dataset_read_mem(data + 1, size - 1, ts[data[0] & 3], &o, &ds, &err) == VP_OK) {
        vp_buf out;
        vp_buf_init(&out, 0);
        dcm_json_opts jo = {.bulk_threshold = 256};
        dcm_json_write(ds, &jo, &out, &err);
        vp_buf_reset(&out);
        dcm_dump(ds, NULL, &out);
        vp_buf_fini(&out);
        dcm_dataset_free(ds);
    }
    return 0;
}
