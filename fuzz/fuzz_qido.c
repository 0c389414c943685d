/* SPDX-License-Identifier: MIT */
/* Fuzz target: QIDO-RS query parameters (PS3.18 8.3.4) parsed into a C-FIND Identifier and
 * compiled (src/web/qido.c, src/qry), then the DICOM JSON answer (PS3.18 F.2) of a made-up
 * row. The first byte picks the resource; the rest is a query string already percent-decoded,
 * split at "&" into key=value pairs. Whatever parses must compile to SQL with one "?" per
 * parameter, and every answer must be valid JSON. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "web/qido.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_PARAMS (WEB_QIDO_MAX_PARAMS + 8)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static web_qido_param params[MAX_PARAMS];
    web_qido_resource res = (web_qido_resource)(data[0] % 6);
    const char *p = (const char *)data + 1, *end = (const char *)data + size;
    size_t n = 0;
    while (p < end && n < MAX_PARAMS) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        params[n].key = p;
        params[n].key_len = (size_t)((eq ? eq : stop) - p);
        params[n].value = eq ? eq + 1 : stop;
        params[n].value_len = eq ? (size_t)(stop - eq - 1) : 0;
        n++;
        p = stop + 1;
    }
    web_qido_request rq = {res, NULL, NULL, params, n};
    if (res == WEB_QIDO_STUDY_SERIES || res == WEB_QIDO_STUDY_INSTANCES ||
        res == WEB_QIDO_STUDY_SERIES_INSTANCES)
        rq.study_uid = (data[0] & 0x80) ? "1.2.3" : "x";
    if (res == WEB_QIDO_STUDY_SERIES_INSTANCES)
        rq.series_uid = "1.2.3.4";
    web_qido_query *wq = NULL;
    vp_error err;
    vp_error_clear(&err);
    vp_status st = web_qido_parse(&rq, &wq, &err);
    if (st != VP_OK) {
        if (wq || !err.msg[0])
            abort(); /* a failure leaves nothing and always says why */
        return 0;
    }
    const qry *q = web_qido_query_compiled(wq);
    size_t marks = 0;
    for (const char *s = qry_sql(q); *s; s++)
        marks += *s == '?';
    if (marks != qry_param_count(q))
        abort();
    /* a made-up row: UIDs, numbers and text in turn, one NULL */
    static const char *const samples[] = {"1.2.3", "12", "Smith^Rex", "20240105", NULL, "CT\\DX"};
    const char *cols[64];
    size_t ncols = qry_column_count(q);
    if (ncols > 64)
        abort();
    for (size_t i = 0; i < ncols; i++)
        cols[i] = samples[i % 6];
    vp_buf out;
    vp_buf_init(&out, 0);
    st = web_qido_answer(wq, cols, ncols, "http://h/dicom-web", &out, &err);
    if (st == VP_OK) {
        json_error_t je;
        json_t *j = json_loadb((const char *)out.data, out.len, 0, &je);
        if (!j || !json_is_object(j))
            abort();
        json_decref(j);
    }
    uint32_t tags[8];
    (void)web_qido_query_return_tags(wq, tags, 8);
    vp_buf_fini(&out);
    web_qido_query_free(wq);
    return 0;
}
