/* SPDX-License-Identifier: MIT */
/* Fuzz target: C-FIND Identifiers (PS3.4 C.4.1.1.3, K.4.1.1.3 for the Modality Worklist)
 * compiled to SQL (src/qry), and the answer of a made-up row built from what compiled. The
 * input is a data set in Explicit VR Little Endian; the first byte, when the data set reads,
 * picks the options (its top bit the worklist model). Whatever compiles must give SQL with
 * exactly as many "?" as parameters. */
#include <stdlib.h>
#include <string.h>

#include "qry/qry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t flags = data[0];
    dcm_read_opts ropts = {.max_depth = 16, .max_elements = 100000, .max_length = 1u << 20};
    dcm_dataset *ds = NULL;
    vp_error err;
    vp_error_clear(&err);
    if (dcm_dataset_read_mem(data + 1, size - 1, DCM_TS_EXPLICIT_LE, &ropts, &ds, &err) != VP_OK)
        return 0;
    qry_opts opts = {
        .model = (flags & 128) ? QRY_MODEL_WORKLIST
                 : (flags & 1) ? QRY_MODEL_STUDY_ROOT
                               : QRY_MODEL_PATIENT_ROOT,
        .pn_case_insensitive = flags & 2,
        .unknown_fails = flags & 4,
        .combined_datetime = flags & 8,
        .ignore_lower_keys = flags & 16,
        .limit = (flags & 32) ? 10 : 0,
        .max_values = (flags & 64) ? 3 : 0,
    };
    qry *q = NULL;
    vp_error_clear(&err);
    vp_status st = qry_compile(ds, &opts, &q, &err);
    if (st == VP_OK) {
        /* parameters are never spliced into the SQL: only placeholders, quotes balanced */
        size_t marks = 0, quotes = 0;
        for (const char *p = qry_sql(q); *p; p++) {
            marks += *p == '?';
            quotes += *p == '\'';
        }
        if (marks != qry_param_count(q) || quotes % 2)
            abort();
        for (size_t i = 0; i < qry_param_count(q); i++)
            if (!qry_param(q, i))
                abort();
        if (qry_column_count(q) < 1)
            abort();
        /* An answer from a row of text, empty and NULL columns (NULL is what SQL NULL gives). */
        const char *cols[64];
        size_t n = qry_column_count(q) < 64 ? qry_column_count(q) : 64;
        for (size_t i = 0; i < n; i++)
            cols[i] = (i + flags) % 3 == 0 ? NULL : (i % 3 == 1 ? "" : "Rex^1.2.3");
        dcm_dataset *a = dcm_dataset_new();
        vp_error_clear(&err);
        if (a && qry_answer(q, cols, n, a, &err) != VP_OK && err.msg[0] == 0)
            abort(); /* a failure always says why */
        dcm_dataset_free(a);
    } else if (q || err.msg[0] == 0) {
        abort(); /* a failure leaves no query and always says why */
    }
    qry_free(q);
    dcm_dataset_free(ds);
    return 0;
}
