/* SPDX-License-Identifier: MIT */
/*
 * `vetpacs convert`: read DICOM files and write them back as Part 10 in a chosen transfer
 * syntax (or the one they had): any native one, RLE Lossless or JPEG-LS, compressed pixel
 * data decoded first when needed (img_transcode). Several inputs go into an output folder,
 * so one process can rewrite a whole corpus.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "app/app.h"
#include "dcm/dcm.h"
#include "img/img.h"

static const char *ts_from_name(const char *name)
{
    if (!strcmp(name, "keep"))
        return NULL;
    if (!strcmp(name, "implicit"))
        return DCM_TS_IMPLICIT_LE;
    if (!strcmp(name, "explicit"))
        return DCM_TS_EXPLICIT_LE;
    if (!strcmp(name, "big"))
        return DCM_TS_EXPLICIT_BE;
    if (!strcmp(name, "deflated"))
        return DCM_TS_DEFLATED_LE;
    if (!strcmp(name, "rle"))
        return IMG_RLE_LOSSLESS;
    if (!strcmp(name, "jpeg-ls"))
        return "1.2.840.10008.1.2.4.80";
    if (!strcmp(name, "jpeg-ls-near"))
        return "1.2.840.10008.1.2.4.81";
    return name; /* a UID */
}

static int convert_one(const char *in, const char *out, const char *ts, const dcm_write_opts *wo,
                       const img_transcode_opts *to, bool sync)
{
    dcm_file *f;
    vp_error err;
    vp_error_clear(&err);
    if (dcm_file_read(in, NULL, &f, &err) != VP_OK) {
        fprintf(stderr, "vetpacs convert: %s: %s\n", in, err.msg);
        return 1;
    }
    const char *target = ts ? ts : dcm_file_transfer_syntax(f);
    vp_error_clear(&err);
    int rc = 0;
    if (img_transcode(dcm_file_dataset(f), dcm_file_transfer_syntax(f), target, to, &err)) {
        fprintf(stderr, "vetpacs convert: %s: %s\n", in, err.msg);
        rc = 1;
    } else if (dcm_file_write(out, dcm_file_meta(f), dcm_file_dataset(f), target, wo, sync, &err)) {
        fprintf(stderr, "vetpacs convert: %s: %s\n", in, err.msg);
        rc = 1;
    }
    dcm_file_free(f);
    return rc;
}

int app_cmd_convert(int argc, char **argv)
{
    const char *ts = NULL;
    dcm_write_opts wo = {0};
    img_transcode_opts to = {0};
    bool sync = false;
    int i = 0;
    for (; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
        if (!strcmp(argv[i], "--ts") && i + 1 < argc) {
            ts = ts_from_name(argv[++i]);
        } else if (!strcmp(argv[i], "--defined-lengths")) {
            wo.defined_lengths = true;
        } else if (!strcmp(argv[i], "--undefined-lengths")) {
            wo.undefined_lengths = true;
        } else if (!strcmp(argv[i], "--near") && i + 1 < argc) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 1 || v > 255) {
                fprintf(stderr, "vetpacs convert: --near takes 1..255, not %s\n", argv[i]);
                return 2;
            }
            to.near = (int)v;
        } else if (!strcmp(argv[i], "--sync")) {
            sync = true;
        } else {
            fprintf(stderr, "vetpacs convert: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    int n = argc - i;
    if (n < 2) {
        fprintf(stderr, "usage: vetpacs convert [--ts keep|implicit|explicit|big|deflated|rle|"
                        "jpeg-ls|jpeg-ls-near|UID] [--near N] "
                        "[--defined-lengths|--undefined-lengths] [--sync] IN OUT | IN... DIR\n");
        return 2;
    }
    const char *out = argv[argc - 1];
    struct stat sb;
    bool to_dir = stat(out, &sb) == 0 && S_ISDIR(sb.st_mode);
    if (n > 2 && !to_dir) {
        fprintf(stderr, "vetpacs convert: %s: not a folder (needed for several inputs)\n", out);
        return 2;
    }
    int rc = 0;
    for (int k = i; k < argc - 1; k++) {
        if (!to_dir) {
            rc |= convert_one(argv[k], out, ts, &wo, &to, sync);
            continue;
        }
        const char *base = strrchr(argv[k], '/');
        base = base ? base + 1 : argv[k];
        size_t len = strlen(out) + strlen(base) + 2;
        char *path = malloc(len);
        if (!path) {
            fprintf(stderr, "vetpacs convert: out of memory\n");
            return 1;
        }
        snprintf(path, len, "%s/%s", out, base);
        rc |= convert_one(argv[k], path, ts, &wo, &to, sync);
        free(path);
    }
    return rc;
}
