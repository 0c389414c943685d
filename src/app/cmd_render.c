/* SPDX-License-Identifier: MIT */
/*
 * `vetpacs render`: one frame of a file to PNG or JPEG (format from the output's extension)
 * through the grayscale display pipeline of PS3.3 C.11 or the colour conversions of
 * C.7.6.3.1.2 (src/img/render.c). Exit status 1 for a file that cannot be rendered, 2 for a
 * bad command line.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app/app.h"
#include "dcm/dcm.h"
#include "img/render.h"

#define USAGE                                                                                      \
    "usage: vetpacs render FILE [--frame N] [--window C,W | --voi N | --voi-lut N | --minmax |"    \
    " --no-voi]\n"                                                                                 \
    "         [--function linear|linear_exact|sigmoid] [--size PX | --width W --height H]\n"       \
    "         [--quality Q] [--fast] [--depth 8|16] -o OUT.png|OUT.jpg\n"

static bool parse_u32(const char *s, uint32_t lo, uint32_t hi, uint32_t *v)
{
    char *end;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 10);
    if (!*s || *end || errno || s[0] == '-' || x < lo || x > hi)
        return false;
    *v = (uint32_t)x;
    return true;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcasecmp(s + n - m, suffix);
}

/*
 * The quick path for native one-sample frames (radiographs, CT, MR): only the header is
 * parsed, and the frame is mapped from the file rather than read, so a thumbnail of a 15 MB
 * radiograph touches the page cache once instead of copying it twice. VP_EAGAIN when the
 * object needs the general path (encapsulated, big endian, deflated, colour, bit-packed).
 */
static vp_status render_mapped(const char *path, const img_render_opts *o, vp_buf *enc,
                               vp_error *err)
{
    dcm_read_opts ro = {.stop_at_tag = DCM_TAG_PIXEL_DATA};
    dcm_file *f;
    vp_status st = dcm_file_read(path, &ro, &f, err);
    if (st)
        return st;
    const dcm_dataset *ds = dcm_file_dataset(f);
    const dcm_pixel_info *pi = dcm_file_pixel_info(f);
    dcm_ts_info ti = dcm_ts_lookup(dcm_file_transfer_syntax(f));
    img_info info;
    vp_error e2;
    vp_error_clear(&e2);
    st = VP_EAGAIN;
    if (!pi->present || pi->encapsulated || !pi->offsets_in_file || ti.big_endian ||
        ti.encapsulated || img_info_get(ds, &info, &e2) != VP_OK || info.samples_per_pixel != 1 ||
        info.bits_allocated < 8 || pi->frame_count != info.frames)
        goto done;
    if (o->frame >= info.frames) {
        st = vp_error_set(err, VP_EINVAL, "frame %u out of range (%u frames)", o->frame,
                          info.frames);
        goto done;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0) {
        if (fd >= 0)
            close(fd);
        goto done;
    }
    const dcm_frame_ref *fr = &pi->frames[o->frame];
    uint64_t size = (uint64_t)sb.st_size;
    if (fr->length < info.frame_size || fr->offset > size || info.frame_size > size - fr->offset) {
        close(fd);
        st = vp_error_set(err, VP_EPARSE, "Pixel Data frame %u runs past the end of the file",
                          o->frame);
        goto done;
    }
    /* Map from the page holding the frame's first byte. */
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE), start = fr->offset / page * page;
    size_t len = (size_t)(fr->offset - start) + info.frame_size;
    void *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, (off_t)start);
    close(fd);
    if (map == MAP_FAILED)
        goto done;
    img_image im;
    st = img_render_pixels(ds, (const uint8_t *)map + (fr->offset - start), &info, o, &im, err);
    munmap(map, len);
    if (st == VP_OK) {
        st = img_render_encode(&im, o, enc, err);
        img_image_fini(&im);
    }
done:
    dcm_file_free(f);
    return st;
}

int app_cmd_render(int argc, char **argv)
{
    const char *in = NULL, *out = NULL, *bad = NULL;
    img_render_opts o = {0};
    uint32_t v;
    for (int i = 0; i < argc && !bad; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        bool takes = true;
        if (!strcmp(a, "--frame") && val) {
            if (!parse_u32(val, 0, UINT32_MAX, &o.frame))
                bad = a;
        } else if (!strcmp(a, "--window") && val) {
            char *end;
            o.voi = IMG_VOI_WINDOW;
            o.center = strtod(val, &end);
            if (*end != ',' || (o.width = strtod(end + 1, &end), *end) || !isfinite(o.center) ||
                !isfinite(o.width) || end == val)
                bad = a;
            else if (o.width <= 0) {
                fprintf(stderr, "vetpacs render: window width %g must be positive\n", o.width);
                return 2;
            }
        } else if (!strcmp(a, "--voi") && val) {
            o.voi = IMG_VOI_FILE_WINDOW;
            if (!parse_u32(val, 0, 65535, &o.voi_index))
                bad = a;
        } else if (!strcmp(a, "--voi-lut") && val) {
            o.voi = IMG_VOI_FILE_LUT;
            if (!parse_u32(val, 0, 65535, &o.voi_index))
                bad = a;
        } else if (!strcmp(a, "--function") && val) {
            o.function = !strcasecmp(val, "linear")         ? IMG_VOI_FN_LINEAR
                         : !strcasecmp(val, "linear_exact") ? IMG_VOI_FN_LINEAR_EXACT
                         : !strcasecmp(val, "sigmoid")      ? IMG_VOI_FN_SIGMOID
                                                            : IMG_VOI_FN_AUTO;
            if (o.function == IMG_VOI_FN_AUTO)
                bad = a;
        } else if (!strcmp(a, "--size") && val) {
            if (!parse_u32(val, 1, IMG_RENDER_MAX_SIDE, &o.size))
                bad = a;
        } else if (!strcmp(a, "--width") && val) {
            if (!parse_u32(val, 1, IMG_RENDER_MAX_SIDE, &o.width_px))
                bad = a;
        } else if (!strcmp(a, "--height") && val) {
            if (!parse_u32(val, 1, IMG_RENDER_MAX_SIDE, &o.height_px))
                bad = a;
        } else if (!strcmp(a, "--quality") && val) {
            if (!parse_u32(val, 1, 100, &v))
                bad = a;
            o.quality = (int)v;
        } else if (!strcmp(a, "--depth") && val) {
            if (!parse_u32(val, 8, 16, &v) || (v != 8 && v != 16))
                bad = a;
            o.depth = (int)v;
        } else if (!strcmp(a, "-o") && val) {
            out = val;
        } else {
            takes = false;
            if (!strcmp(a, "--minmax"))
                o.voi = IMG_VOI_MINMAX;
            else if (!strcmp(a, "--no-voi"))
                o.voi = IMG_VOI_NONE;
            else if (!strcmp(a, "--fast"))
                o.fast = true;
            else if (a[0] == '-' && a[1]) {
                fprintf(stderr, "vetpacs render: unknown option or missing value: %s\n", a);
                return 2;
            } else if (!in)
                in = a;
            else {
                fprintf(stderr, "vetpacs render: more than one input file\n" USAGE);
                return 2;
            }
        }
        if (takes)
            i++;
    }
    if (bad) {
        fprintf(stderr, "vetpacs render: bad value for %s\n", bad);
        return 2;
    }
    if (!in || !out) {
        fprintf(stderr, USAGE);
        return 2;
    }
    if (ends_with(out, ".png"))
        o.format = IMG_OUT_PNG;
    else if (ends_with(out, ".jpg") || ends_with(out, ".jpeg"))
        o.format = IMG_OUT_JPEG;
    else {
        fprintf(stderr, "vetpacs render: output %s must end in .png, .jpg or .jpeg\n", out);
        return 2;
    }
    if (o.format == IMG_OUT_JPEG && o.depth == 16) {
        fprintf(stderr, "vetpacs render: --depth 16 needs PNG output\n");
        return 2;
    }

    vp_error err;
    vp_error_clear(&err);
    vp_buf enc;
    vp_buf_init(&enc, 0);
    int rc = 1;
    dcm_file *f = NULL;
    vp_status st = render_mapped(in, &o, &enc, &err);
    if (st == VP_EAGAIN) {
        /* Not a native one-sample frame: read the whole file and let img_render decode. */
        vp_error_clear(&err);
        if ((st = dcm_file_read(in, NULL, &f, &err)) == VP_OK)
            st = img_render(dcm_file_dataset(f), dcm_file_transfer_syntax(f), &o, &enc, &err);
    }
    if (st != VP_OK) {
        fprintf(stderr, "vetpacs render: %s: %s\n", in, err.msg);
        goto done;
    }
    FILE *fp = fopen(out, "wb");
    bool ok = fp && fwrite(enc.data, 1, enc.len, fp) == enc.len;
    if (fp && fclose(fp) != 0)
        ok = false;
    if (!ok) {
        fprintf(stderr, "vetpacs render: %s: %s\n", out, strerror(errno));
        goto done;
    }
    rc = 0;
done:
    vp_buf_fini(&enc);
    dcm_file_free(f);
    return rc;
}
