/* SPDX-License-Identifier: MIT */
/*
 * `vetpacs pixels`: decode one frame of a file's Pixel Data to raw native little-endian,
 * colour-by-pixel samples (PS3.5 8.2 native, Annex G RLE), for tests and scripts. The
 * geometry goes to standard output as one line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/app.h"
#include "dcm/dcm.h"
#include "img/img.h"

int app_cmd_pixels(int argc, char **argv)
{
    const char *in = NULL, *out = NULL;
    unsigned long frame = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--frame") && i + 1 < argc) {
            char *end;
            frame = strtoul(argv[++i], &end, 10);
            if (*end || frame > UINT32_MAX) {
                fprintf(stderr, "vetpacs pixels: bad frame number %s\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(argv[i], "-o") && i + 1 < argc) {
            out = argv[++i];
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "vetpacs pixels: unknown option %s\n", argv[i]);
            return 2;
        } else if (!in) {
            in = argv[i];
        } else {
            in = NULL;
            break;
        }
    }
    if (!in || !out) {
        fprintf(stderr, "usage: vetpacs pixels FILE [--frame N] -o OUT.raw\n");
        return 2;
    }
    dcm_file *f;
    vp_error err;
    vp_error_clear(&err);
    if (dcm_file_read(in, NULL, &f, &err) != VP_OK) {
        fprintf(stderr, "vetpacs pixels: %s: %s\n", in, err.msg);
        return 1;
    }
    vp_buf px;
    vp_buf_init(&px, 0);
    img_info info;
    int rc = 1;
    if (img_decode_frame(dcm_file_dataset(f), dcm_file_transfer_syntax(f), (uint32_t)frame, &px,
                         &info, &err) != VP_OK) {
        fprintf(stderr, "vetpacs pixels: %s: %s\n", in, err.msg);
        goto done;
    }
    FILE *o = fopen(out, "wb");
    if (!o || fwrite(px.data, 1, px.len, o) != px.len || fclose(o) != 0) {
        perror(out);
        goto done;
    }
    printf("rows=%u columns=%u samples=%u bits_allocated=%u bits_stored=%u "
           "pixel_representation=%u photometric=%s frames=%u bytes=%zu\n",
           info.rows, info.columns, info.samples_per_pixel, info.bits_allocated, info.bits_stored,
           info.pixel_representation, info.photometric, info.frames, px.len);
    rc = 0;
done:
    vp_buf_fini(&px);
    dcm_file_free(f);
    return rc;
}
