/* SPDX-License-Identifier: MIT */
/*
 * The grayscale pipeline's lookup tables and functions (PS3.3 C.11): the Modality LUT
 * (C.11.1: Rescale Slope / Intercept or the Modality LUT Sequence), the VOI LUT (C.11.2:
 * Window Center / Width with the VOI LUT Functions of C.11.2.1.2-3, or the VOI LUT Sequence)
 * and the Presentation LUT Shape (C.11.6). LUT Descriptors and LUT Data are read here for all
 * LUT kinds, the Palette Color LUTs' too (C.7.6.3.1.5-6), and Segmented Palette Color LUT
 * Data is expanded (C.7.9.2). Enhanced multi-frame objects carry rescale and window per frame
 * in their Functional Groups (C.7.6.16.2.9 Pixel Value Transformation, C.7.6.16.2.10 Frame
 * VOI LUT), read when the top-level attributes are absent.
 */
#include <math.h>
#include <string.h>

#include "img/render.h"

#define TAG_WINDOW_CENTER DCM_TAG(0x0028, 0x1050)
#define TAG_WINDOW_WIDTH DCM_TAG(0x0028, 0x1051)
#define TAG_RESCALE_INTERCEPT DCM_TAG(0x0028, 0x1052)
#define TAG_RESCALE_SLOPE DCM_TAG(0x0028, 0x1053)
#define TAG_VOI_LUT_FUNCTION DCM_TAG(0x0028, 0x1056)
#define TAG_MODALITY_LUT_SEQ DCM_TAG(0x0028, 0x3000)
#define TAG_LUT_DESCRIPTOR DCM_TAG(0x0028, 0x3002)
#define TAG_LUT_DATA DCM_TAG(0x0028, 0x3006)
#define TAG_VOI_LUT_SEQ DCM_TAG(0x0028, 0x3010)
#define TAG_FRAME_VOI_LUT_SEQ DCM_TAG(0x0028, 0x9132)
#define TAG_PIXEL_VALUE_TRANSFORMATION_SEQ DCM_TAG(0x0028, 0x9145)
#define TAG_PRESENTATION_LUT_SHAPE DCM_TAG(0x2050, 0x0020)
#define TAG_SHARED_FG_SEQ DCM_TAG(0x5200, 0x9229)
#define TAG_PER_FRAME_FG_SEQ DCM_TAG(0x5200, 0x9230)

void img_lut_fini(img_lut *lut)
{
    if (!lut)
        return;
    vp_free(lut->data);
    memset(lut, 0, sizeof *lut);
}

vp_status img_lut_read(const dcm_dataset *item, uint32_t desc_tag, uint32_t data_tag,
                       bool signed_first, img_lut *lut, vp_error *err)
{
    memset(lut, 0, sizeof *lut);
    int64_t d[3];
    for (unsigned i = 0; i < 3; i++)
        if (dcm_dataset_get_int(item, desc_tag, i, &d[i]) != VP_OK)
            return vp_error_set(err, VP_EINVAL, "LUT Descriptor (%04X,%04X) needs 3 values",
                                DCM_GROUP(desc_tag), DCM_ELEMENT(desc_tag));
    /* C.11.1.1.1, C.7.6.3.1.5: 0 entries means 2^16; the first value mapped is US or SS
     * following Pixel Representation, whatever VR the encoder chose. */
    uint32_t entries = (uint16_t)d[0] ? (uint16_t)d[0] : 65536u;
    int32_t first = signed_first ? (int16_t)(uint16_t)d[1] : (int32_t)(uint16_t)d[1];
    if (d[0] < 0 || d[0] > 65535 || d[2] < 1 || d[2] > 16)
        return vp_error_set(err, VP_EINVAL,
                            "LUT Descriptor (%04X,%04X) is %lld\\%lld\\%lld: expected up to "
                            "65535 entries of 1..16 bits",
                            DCM_GROUP(desc_tag), DCM_ELEMENT(desc_tag), (long long)d[0],
                            (long long)d[1], (long long)d[2]);
    const dcm_element *el = dcm_dataset_find(item, data_tag);
    const uint8_t *v = el ? dcm_element_value(el) : NULL;
    size_t len = v ? dcm_element_length(el) : 0;
    /* C.7.6.3.1.6: 8-bit entries are stored as 8 bits allocated (two per OW word); older
     * writers put them one per word, which the length tells apart. */
    bool words = len >= (size_t)entries * 2;
    if (!v || (!words && len < entries))
        return vp_error_set(err, VP_EINVAL,
                            "LUT Data (%04X,%04X) has %zu bytes, descriptor needs %u entries",
                            DCM_GROUP(data_tag), DCM_ELEMENT(data_tag), len, entries);
    lut->data = vp_malloc((size_t)entries * sizeof *lut->data);
    if (!lut->data)
        return vp_error_set(err, VP_ENOMEM, "out of memory");
    uint32_t max = (1u << d[2]) - 1;
    for (uint32_t i = 0; i < entries; i++) {
        uint32_t x = words ? vp_le16(v + 2 * (size_t)i) : v[i];
        lut->data[i] = (uint16_t)(x > max ? max : x);
    }
    lut->entries = entries;
    lut->first = first;
    lut->bits = (uint16_t)d[2];
    return VP_OK;
}

/* One segment list (C.7.9.2) from units[pos]; indirect segments allowed unless nested. At most
 * nseg segments when nseg > 0. */
static vp_status expand(const uint16_t *units, size_t n, size_t pos, bool byte_units, uint32_t nseg,
                        bool nested, uint16_t *out, uint32_t max, uint32_t *count, vp_error *err)
{
    for (uint32_t seg = 0; nseg == 0 || seg < nseg; seg++) {
        /* A trailing pad unit (odd count of 8-bit units) is not a segment. */
        if (nseg == 0 && pos + 1 >= n)
            return VP_OK;
        if (pos + 2 > n)
            return vp_error_set(err, VP_EINVAL, "segmented LUT ends inside segment %u", seg);
        uint16_t op = units[pos], len = units[pos + 1];
        pos += 2;
        if (op == 0) {
            /* C.7.9.2.1 discrete: len values follow. */
            if (len > n - pos)
                return vp_error_set(err, VP_EINVAL, "discrete segment of %u values past the end",
                                    len);
            if (len > max - *count)
                return vp_error_set(err, VP_EINVAL, "segmented LUT has more than %u entries", max);
            memcpy(out + *count, units + pos, (size_t)len * sizeof *out);
            *count += len;
            pos += len;
        } else if (op == 1) {
            /* C.7.9.2.2 linear: len values from the previous entry (excluded) to y1. */
            if (*count == 0)
                return vp_error_set(err, VP_EINVAL, "linear segment without a previous value");
            if (pos + 1 > n)
                return vp_error_set(err, VP_EINVAL, "linear segment past the end");
            if (len > max - *count)
                return vp_error_set(err, VP_EINVAL, "segmented LUT has more than %u entries", max);
            int64_t y0 = out[*count - 1], y1 = units[pos++];
            for (uint32_t i = 1; i <= len; i++) {
                /* Rounded y0 + (y1 - y0) i / len, in integers. */
                int64_t num = y0 * (len - i) + y1 * i;
                out[(*count)++] = (uint16_t)((2 * num + len) / (2 * (int64_t)len));
            }
        } else if (op == 2 && !nested) {
            /* C.7.9.2.3 indirect: copy len segments found at a 32-bit offset (least
             * significant 16 bits first; four bytes for 8-bit units). */
            if (*count == 0)
                return vp_error_set(err, VP_EINVAL, "indirect segment first");
            size_t need = byte_units ? 4 : 2;
            if (need > n - pos)
                return vp_error_set(err, VP_EINVAL, "indirect segment past the end");
            uint32_t off = byte_units
                               ? (uint32_t)(units[pos] | units[pos + 1] << 8 |
                                            units[pos + 2] << 16 | (uint32_t)units[pos + 3] << 24)
                               : (uint32_t)(units[pos] | (uint32_t)units[pos + 1] << 16);
            pos += need;
            if (off >= n)
                return vp_error_set(err, VP_EINVAL, "indirect segment offset %u past the end", off);
            if (len == 0)
                continue;
            vp_status st = expand(units, n, off, byte_units, len, true, out, max, count, err);
            if (st)
                return st;
        } else {
            return vp_error_set(err, VP_EINVAL, "segmented LUT segment type %u %s", op,
                                op == 2 ? "nested in an indirect segment" : "unknown");
        }
    }
    return VP_OK;
}

vp_status img_segmented_lut_expand(const uint16_t *units, size_t n, bool byte_units, uint16_t *out,
                                   uint32_t max, uint32_t *count, vp_error *err)
{
    *count = 0;
    return expand(units, n, 0, byte_units, 0, false, out, max, count, err);
}

double img_voi_value(img_voi_function fn, double c, double w, double x, double ymin, double ymax)
{
    if (fn == IMG_VOI_FN_SIGMOID) /* C.11.2.1.3.1 */
        return (ymax - ymin) / (1 + exp(-4 * (x - c) / w)) + ymin;
    if (fn == IMG_VOI_FN_LINEAR_EXACT) { /* C.11.2.1.3.2 */
        if (x <= c - w / 2)
            return ymin;
        if (x > c + w / 2)
            return ymax;
        return ((x - c) / w + 0.5) * (ymax - ymin) + ymin;
    }
    /* C.11.2.1.2.1: the window is shifted by half a value and one narrower, so that a width
     * of 2^n at center 2^(n-1) maps 0..2^n-1 exactly onto the output range. */
    if (x <= c - 0.5 - (w - 1) / 2)
        return ymin;
    if (x > c - 0.5 + (w - 1) / 2)
        return ymax;
    return ((x - (c - 0.5)) / (w - 1) + 0.5) * (ymax - ymin) + ymin;
}

void img_gray_fini(img_gray *g)
{
    if (!g)
        return;
    img_lut_fini(&g->mlut);
    img_lut_fini(&g->vlut);
}

double img_gray_modality(const img_gray *g, int64_t sv)
{
    if (g->has_mlut)
        return img_lut_at(&g->mlut, sv);
    return g->slope * (double)sv + g->intercept;
}

uint32_t img_gray_value(const img_gray *g, int64_t sv)
{
    double m = img_gray_modality(g, sv), y, top = g->out_max;
    if (g->voi_kind == IMG_GRAY_VOI_WINDOW) {
        y = img_voi_value(g->function, g->center, g->width, m, 0, top);
    } else if (g->voi_kind == IMG_GRAY_VOI_LUT) {
        y = img_lut_at(&g->vlut, (int64_t)floor(m + 0.5)) * top / ((1u << g->vlut.bits) - 1);
    } else {
        double span = g->range_hi - g->range_lo;
        y = span > 0 ? (m - g->range_lo) / span * top : 0;
    }
    if (y < 0)
        y = 0;
    if (y > top)
        y = top;
    if (g->invert) /* C.11.6.1: INVERSE output is max minus the value */
        y = top - y;
    return (uint32_t)(y + 0.5);
}

/* The frame's functional group item holding sequence seq (Per-frame first, then Shared),
 * PS3.3 C.7.6.16.1; NULL when neither has it. */
static const dcm_dataset *fg_item(const dcm_dataset *ds, uint32_t frame, uint32_t seq)
{
    const dcm_element *pf = dcm_dataset_find(ds, TAG_PER_FRAME_FG_SEQ);
    if (pf && frame < dcm_element_item_count(pf)) {
        const dcm_element *s = dcm_dataset_find(dcm_element_item(pf, frame), seq);
        if (s && dcm_element_item_count(s))
            return dcm_element_item(s, 0);
    }
    const dcm_element *sh = dcm_dataset_find(ds, TAG_SHARED_FG_SEQ);
    if (sh && dcm_element_item_count(sh)) {
        const dcm_element *s = dcm_dataset_find(dcm_element_item(sh, 0), seq);
        if (s && dcm_element_item_count(s))
            return dcm_element_item(s, 0);
    }
    return NULL;
}

/* Where the windows are: the top level when it has Window Center, else the frame's Frame VOI
 * LUT functional group item. */
static const dcm_dataset *window_source(const dcm_dataset *ds, uint32_t frame)
{
    if (dcm_dataset_find(ds, TAG_WINDOW_CENTER))
        return ds;
    const dcm_dataset *it = fg_item(ds, frame, TAG_FRAME_VOI_LUT_SEQ);
    return it && dcm_dataset_find(it, TAG_WINDOW_CENTER) ? it : NULL;
}

static img_voi_function function_of(const dcm_dataset *src)
{
    char f[20];
    if (!src || dcm_dataset_copy_str(src, TAG_VOI_LUT_FUNCTION, f, sizeof f) != VP_OK)
        return IMG_VOI_FN_LINEAR;
    if (!strcmp(f, "LINEAR_EXACT"))
        return IMG_VOI_FN_LINEAR_EXACT;
    if (!strcmp(f, "SIGMOID"))
        return IMG_VOI_FN_SIGMOID;
    return IMG_VOI_FN_LINEAR; /* C.11.2.1.3: LINEAR when absent; unknown terms alike */
}

/* Whether width is allowed for fn (C.11.2.1.2.1: >= 1 for LINEAR; > 0 for the others). */
static bool width_ok(img_voi_function fn, double c, double w)
{
    return isfinite(c) && isfinite(w) && (fn == IMG_VOI_FN_LINEAR ? w >= 1 : w > 0);
}

static const char *fn_name(img_voi_function fn)
{
    return fn == IMG_VOI_FN_SIGMOID        ? "SIGMOID"
           : fn == IMG_VOI_FN_LINEAR_EXACT ? "LINEAR_EXACT"
                                           : "LINEAR";
}

/* Window idx of src into g; VP_ENOTFOUND when there is none. */
static vp_status file_window(const dcm_dataset *src, uint32_t idx, img_gray *g, vp_error *err)
{
    const dcm_element *c = src ? dcm_dataset_find(src, TAG_WINDOW_CENTER) : NULL;
    const dcm_element *w = src ? dcm_dataset_find(src, TAG_WINDOW_WIDTH) : NULL;
    unsigned n =
        c && w ? (dcm_element_vm(c) < dcm_element_vm(w) ? dcm_element_vm(c) : dcm_element_vm(w))
               : 0;
    if (idx >= n)
        return vp_error_set(err, VP_ENOTFOUND,
                            "no window %u: the data set has %u Window Center/Width pairs", idx, n);
    if (dcm_element_get_double(c, idx, &g->center) != VP_OK ||
        dcm_element_get_double(w, idx, &g->width) != VP_OK)
        return vp_error_set(err, VP_EINVAL, "Window Center/Width value %u is not a number", idx);
    return VP_OK;
}

/* Modality values of stored values lo..hi: the lowest and highest. */
static void modality_range(const img_gray *g, int64_t lo, int64_t hi, double *a, double *b)
{
    if (g->has_mlut) {
        /* The LUT's own values over the stored range (it need not be monotonic). */
        int64_t n = g->mlut.entries, i0 = lo - g->mlut.first, i1 = hi - g->mlut.first;
        i0 = i0 < 0 ? 0 : i0 >= n ? n - 1 : i0;
        i1 = i1 < 0 ? 0 : i1 >= n ? n - 1 : i1;
        *a = *b = g->mlut.data[i0];
        for (int64_t i = i0; i <= i1; i++) {
            *a = g->mlut.data[i] < *a ? g->mlut.data[i] : *a;
            *b = g->mlut.data[i] > *b ? g->mlut.data[i] : *b;
        }
        return;
    }
    /* Rescale is linear: its ends, which swap for a negative slope. */
    *a = img_gray_modality(g, lo);
    *b = img_gray_modality(g, hi);
    if (*a > *b) {
        double t = *a;
        *a = *b;
        *b = t;
    }
}

void img_gray_set_range(img_gray *g, int64_t smin, int64_t smax)
{
    double a, b;
    modality_range(g, smin, smax, &a, &b);
    /* center (min + max + 1) / 2 and width max - min + 1 make LINEAR map min to the bottom
     * and max to the top exactly (C.11.2.1.2.1, as dcmtk's min-max window). */
    g->voi_kind = IMG_GRAY_VOI_WINDOW;
    g->function = IMG_VOI_FN_LINEAR;
    g->center = (a + b + 1) / 2;
    g->width = b - a + 1;
    g->minmax_pending = false;
}

vp_status img_gray_setup(const dcm_dataset *ds, const img_info *info, uint32_t frame,
                         const img_render_opts *opts, img_gray *g, vp_error *err)
{
    memset(g, 0, sizeof *g);
    g->bits_stored = info->bits_stored;
    g->is_signed = info->pixel_representation == 1;
    g->out_max = opts->depth == 16 ? 65535 : 255;
    g->slope = 1;
    vp_status st;

    /* Modality LUT (C.11.1): the sequence or rescale, never both (C.11.1.1). */
    const dcm_element *mls = dcm_dataset_find(ds, TAG_MODALITY_LUT_SEQ);
    if (mls && dcm_element_item_count(mls)) {
        if ((st = img_lut_read(dcm_element_item(mls, 0), TAG_LUT_DESCRIPTOR, TAG_LUT_DATA,
                               g->is_signed, &g->mlut, err)))
            return st;
        g->has_mlut = true;
    } else {
        const dcm_dataset *src = ds;
        if (!dcm_dataset_find(ds, TAG_RESCALE_SLOPE) &&
            !dcm_dataset_find(ds, TAG_RESCALE_INTERCEPT))
            src = fg_item(ds, frame, TAG_PIXEL_VALUE_TRANSFORMATION_SEQ);
        if (src) {
            if (dcm_dataset_find(src, TAG_RESCALE_SLOPE) &&
                dcm_dataset_get_double(src, TAG_RESCALE_SLOPE, 0, &g->slope) != VP_OK)
                return vp_error_set(err, VP_EINVAL, "Rescale Slope (0028,1053) is not a number");
            if (dcm_dataset_find(src, TAG_RESCALE_INTERCEPT) &&
                dcm_dataset_get_double(src, TAG_RESCALE_INTERCEPT, 0, &g->intercept) != VP_OK)
                return vp_error_set(err, VP_EINVAL,
                                    "Rescale Intercept (0028,1052) is not a number");
        }
        if (!isfinite(g->slope) || !isfinite(g->intercept) || fabs(g->slope) > 1e12 ||
            fabs(g->intercept) > 1e15)
            return vp_error_set(err, VP_EINVAL, "Rescale Slope/Intercept %g/%g out of range",
                                g->slope, g->intercept);
    }

    /* Presentation LUT Shape (C.11.6.1): INVERSE inverts. MONOCHROME1 (low values bright)
     * is inverted by the shape its IODs prescribe with it, INVERSE (e.g. DX, C.8.11.6.1.2),
     * so it counts once; absent, MONOCHROME1 implies it. An explicit IDENTITY on MONOCHROME1
     * is taken at its word, as dcmtk does. */
    char shape[20] = "";
    if (dcm_dataset_copy_str(ds, TAG_PRESENTATION_LUT_SHAPE, shape, sizeof shape) == VP_OK &&
        (!strcmp(shape, "INVERSE") || !strcmp(shape, "IDENTITY")))
        g->invert = !strcmp(shape, "INVERSE");
    else
        g->invert = !strcmp(info->photometric, "MONOCHROME1");

    /* VOI (C.11.2). */
    const dcm_dataset *wsrc = window_source(ds, frame);
    const dcm_element *vls = dcm_dataset_find(ds, TAG_VOI_LUT_SEQ);
    size_t nvl = vls ? dcm_element_item_count(vls) : 0;
    img_voi_mode mode = opts->voi;
    img_voi_function fn = opts->function != IMG_VOI_FN_AUTO ? opts->function : function_of(wsrc);
    if (mode == IMG_VOI_DEFAULT) {
        /* The first window the creator chose, when valid; else its first VOI LUT; else the
         * frame's own range. */
        vp_error e2;
        vp_error_clear(&e2);
        if (file_window(wsrc, 0, g, &e2) == VP_OK && width_ok(fn, g->center, g->width))
            mode = IMG_VOI_FILE_WINDOW;
        else if (nvl)
            mode = IMG_VOI_FILE_LUT;
        else
            mode = IMG_VOI_MINMAX;
    }
    switch (mode) {
    case IMG_VOI_WINDOW:
        g->center = opts->center;
        g->width = opts->width;
        /* fall through */
    case IMG_VOI_FILE_WINDOW:
        if (mode == IMG_VOI_FILE_WINDOW &&
            (st = file_window(wsrc, opts->voi == IMG_VOI_DEFAULT ? 0 : opts->voi_index, g, err)))
            return st == VP_ENOTFOUND ? VP_EINVAL : st;
        if (!width_ok(fn, g->center, g->width))
            return vp_error_set(err, VP_EINVAL,
                                "window width %g not allowed for VOI LUT Function %s (needs %s)",
                                g->width, fn_name(fn), fn == IMG_VOI_FN_LINEAR ? ">= 1" : "> 0");
        g->voi_kind = IMG_GRAY_VOI_WINDOW;
        g->function = fn;
        return VP_OK;
    case IMG_VOI_FILE_LUT: {
        uint32_t idx = opts->voi == IMG_VOI_DEFAULT ? 0 : opts->voi_index;
        if (idx >= nvl)
            return vp_error_set(err, VP_EINVAL,
                                "no VOI LUT %u: the VOI LUT Sequence (0028,3010) has %zu items",
                                idx, nvl);
        if ((st = img_lut_read(dcm_element_item(vls, idx), TAG_LUT_DESCRIPTOR, TAG_LUT_DATA,
                               g->is_signed, &g->vlut, err)))
            return st;
        g->voi_kind = IMG_GRAY_VOI_LUT;
        return VP_OK;
    }
    case IMG_VOI_NONE: {
        /* All values the stored bits can give, linearly (dcmj2pnm without VOI). */
        unsigned bs = g->bits_stored > 32 ? 32 : g->bits_stored;
        int64_t lo = g->is_signed ? -((int64_t)1 << (bs - 1)) : 0;
        int64_t hi = g->is_signed ? ((int64_t)1 << (bs - 1)) - 1 : ((int64_t)1 << bs) - 1;
        g->voi_kind = IMG_GRAY_VOI_RANGE;
        modality_range(g, lo, hi, &g->range_lo, &g->range_hi);
        return VP_OK;
    }
    case IMG_VOI_MINMAX:
    default:
        g->voi_kind = IMG_GRAY_VOI_WINDOW;
        g->function = IMG_VOI_FN_LINEAR;
        g->minmax_pending = true;
        return VP_OK;
    }
}
