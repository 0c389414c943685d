/* SPDX-License-Identifier: MIT */
/* `vetpacs dump` and `vetpacs tojson`: look inside a DICOM file. Errors are one line naming
 * the file, the element and the offset; the exit status is 1 for a bad file, 2 for bad use. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/app.h"
#include "dcm/dcm.h"

static int write_out(const vp_buf *b)
{
    if (b->len && fwrite(b->data, 1, b->len, stdout) != b->len)
        return 1;
    return fflush(stdout) != 0;
}

int app_cmd_dump(int argc, char **argv)
{
    dcm_dump_opts dopts = {0};
    dcm_read_opts ropts = {0};
    int first = 0;
    while (first < argc && argv[first][0] == '-' && argv[first][1]) {
        if (!strcmp(argv[first], "--width") && first + 1 < argc) {
            dopts.max_value_chars = (uint32_t)strtoul(argv[first + 1], NULL, 10);
            first += 2;
        } else if (!strcmp(argv[first], "--header-only")) {
            /* Stop before Pixel Data: the cost no longer depends on the pixel size. */
            ropts.stop_at_tag = DCM_TAG_PIXEL_DATA;
            first++;
        } else {
            fprintf(stderr, "vetpacs dump: unknown option %s\n", argv[first]);
            return 2;
        }
    }
    if (first >= argc) {
        fprintf(stderr, "usage: vetpacs dump [--width N] [--header-only] FILE...\n");
        return 2;
    }
    int rc = 0;
    for (int i = first; i < argc; i++) {
        dcm_file *f;
        vp_error err;
        vp_error_clear(&err);
        if (dcm_file_read(argv[i], &ropts, &f, &err) != VP_OK) {
            fprintf(stderr, "vetpacs dump: %s: %s\n", argv[i], err.msg);
            rc = 1;
            continue;
        }
        vp_buf out;
        vp_buf_init(&out, 0);
        if (argc - first > 1)
            vp_buf_printf(&out, "# %s\n", argv[i]);
        vp_buf_printf(&out, "# transfer syntax %s%s\n", dcm_file_transfer_syntax(f),
                      dcm_file_has_preamble(f) ? "" : " (no preamble)");
        vp_status st = dcm_dump(dcm_file_meta(f), &dopts, &out);
        if (st == VP_OK)
            st = dcm_dump(dcm_file_dataset(f), &dopts, &out);
        const dcm_pixel_info *pi = dcm_file_pixel_info(f);
        if (st == VP_OK && pi->present) {
            st = vp_buf_printf(&out, "# pixel data at offset %llu, %llu bytes, %u frames%s\n",
                               (unsigned long long)pi->value_offset,
                               (unsigned long long)pi->value_length, pi->frame_count,
                               pi->offsets_in_file ? "" : " (offsets in the inflated stream)");
            for (uint32_t k = 0; st == VP_OK && k < pi->frame_count; k++)
                st = vp_buf_printf(&out, "# frame %u at offset %llu, %llu bytes\n", k + 1,
                                   (unsigned long long)pi->frames[k].offset,
                                   (unsigned long long)pi->frames[k].length);
        }
        if (st != VP_OK) {
            fprintf(stderr, "vetpacs dump: %s: out of memory\n", argv[i]);
            rc = 1;
        } else if (write_out(&out)) {
            rc = 1;
        }
        vp_buf_fini(&out);
        dcm_file_free(f);
    }
    return rc;
}

int app_cmd_tojson(int argc, char **argv)
{
    dcm_json_opts jopts = {.bulk_threshold = 1024};
    const char *path = NULL;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--bulk-threshold") && i + 1 < argc) {
            jopts.bulk_threshold = (uint32_t)strtoul(argv[++i], NULL, 10);
        } else if (!strcmp(argv[i], "--bulk-uri") && i + 1 < argc) {
            jopts.bulk_uri_prefix = argv[++i];
        } else if (!strcmp(argv[i], "--pretty")) {
            jopts.pretty = true;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "vetpacs tojson: unknown option %s\n", argv[i]);
            return 2;
        } else if (!path) {
            path = argv[i];
        } else {
            fprintf(stderr, "vetpacs tojson: one file at a time\n");
            return 2;
        }
    }
    if (!path) {
        fprintf(stderr, "usage: vetpacs tojson [--bulk-threshold BYTES] [--bulk-uri PREFIX] "
                        "[--pretty] FILE\n");
        return 2;
    }
    dcm_file *f;
    vp_error err;
    vp_error_clear(&err);
    if (dcm_file_read(path, NULL, &f, &err) != VP_OK) {
        fprintf(stderr, "vetpacs tojson: %s: %s\n", path, err.msg);
        return 1;
    }
    vp_buf out;
    vp_buf_init(&out, 0);
    vp_error_clear(&err);
    int rc = 0;
    if (dcm_json_write(dcm_file_dataset(f), &jopts, &out, &err) != VP_OK) {
        fprintf(stderr, "vetpacs tojson: %s: %s\n", path, err.msg);
        rc = 1;
    } else {
        vp_buf_putc(&out, '\n');
        rc = write_out(&out);
    }
    vp_buf_fini(&out);
    dcm_file_free(f);
    return rc;
}
