/* SPDX-License-Identifier: MIT */
/*
 * Photometric interpretations to 8-bit RGB (PS3.3 C.7.6.3.1.2): RGB as is, YBR_FULL (and
 * YBR_FULL_422 once decoded to three samples per pixel) and YBR_ICT by the YCbCr equations of
 * C.7.6.3.1.2, YBR_PARTIAL_422/420 by their ITU-R BT.601 head- and footroom, YBR_RCT by the
 * reversible transform of ISO 15444-1 G.2, and PALETTE COLOR through the Palette Color LUTs
 * (C.7.6.3.1.5-6, Segmented ones C.7.9.2). Samples wider than 8 bits are scaled from their
 * Bits Stored range.
 */
#include <math.h>
#include <string.h>

#include "img/render.h"

#define TAG_RED_DESC DCM_TAG(0x0028, 0x1101)
#define TAG_RED_DATA DCM_TAG(0x0028, 0x1201)
#define TAG_RED_SEGMENTED DCM_TAG(0x0028, 0x1221)

void img_palette_fini(img_palette *p)
{
    if (!p)
        return;
    vp_free(p->rgb);
    memset(p, 0, sizeof *p);
}

/* Segmented data of one channel (C.7.9.2) expanded into a LUT of the descriptor's entries. */
static vp_status read_segmented(const dcm_dataset *ds, uint32_t desc_tag, uint32_t seg_tag,
                                bool is_signed, img_lut *lut, vp_error *err)
{
    memset(lut, 0, sizeof *lut);
    int64_t d[3];
    for (unsigned i = 0; i < 3; i++)
        if (dcm_dataset_get_int(ds, desc_tag, i, &d[i]) != VP_OK)
            return vp_error_set(err, VP_EINVAL,
                                "Palette Color LUT Descriptor (%04X,%04X) needs "
                                "3 values",
                                DCM_GROUP(desc_tag), DCM_ELEMENT(desc_tag));
    if (d[0] < 0 || d[0] > 65535 || (d[2] != 8 && d[2] != 16))
        return vp_error_set(err, VP_EINVAL,
                            "Palette Color LUT Descriptor (%04X,%04X) is %lld\\%lld\\%lld: "
                            "expected up to 65535 entries of 8 or 16 bits",
                            DCM_GROUP(desc_tag), DCM_ELEMENT(desc_tag), (long long)d[0],
                            (long long)d[1], (long long)d[2]);
    uint32_t entries = d[0] ? (uint32_t)d[0] : 65536u;
    const dcm_element *el = dcm_dataset_find(ds, seg_tag);
    const uint8_t *v = el ? dcm_element_value(el) : NULL;
    size_t len = v ? dcm_element_length(el) : 0;
    if (!v)
        return vp_error_set(err, VP_EINVAL, "Segmented Palette Color LUT Data (%04X,%04X) missing",
                            DCM_GROUP(seg_tag), DCM_ELEMENT(seg_tag));
    bool bytes = d[2] == 8;
    size_t n = bytes ? len : len / 2;
    uint16_t *units = vp_malloc(n * sizeof *units + 1);
    lut->data = vp_malloc((size_t)entries * sizeof *lut->data);
    vp_status st = VP_OK;
    if (!units || !lut->data) {
        st = vp_error_set(err, VP_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        units[i] = bytes ? v[i] : vp_le16(v + 2 * i);
    uint32_t count;
    if ((st = img_segmented_lut_expand(units, n, bytes, lut->data, entries, &count, err)))
        goto done;
    if (count == 0) {
        st = vp_error_set(err, VP_EINVAL, "Segmented Palette Color LUT Data (%04X,%04X) is empty",
                          DCM_GROUP(seg_tag), DCM_ELEMENT(seg_tag));
        goto done;
    }
    /* Fewer entries than the descriptor says: the last one holds (as for inputs past the
     * end of any LUT, C.7.6.3.1.5). */
    for (uint32_t i = count; i < entries; i++)
        lut->data[i] = lut->data[count - 1];
    lut->entries = entries;
    lut->first = is_signed ? (int16_t)(uint16_t)d[1] : (int32_t)(uint16_t)d[1];
    lut->bits = (uint16_t)d[2];
done:
    vp_free(units);
    if (st)
        img_lut_fini(lut);
    return st;
}

vp_status img_palette_read(const dcm_dataset *ds, bool is_signed, img_palette *p, vp_error *err)
{
    memset(p, 0, sizeof *p);
    img_lut ch[3];
    memset(ch, 0, sizeof ch);
    vp_status st = VP_OK;
    for (unsigned c = 0; c < 3; c++) {
        uint32_t desc = TAG_RED_DESC + c, data = TAG_RED_DATA + c, seg = TAG_RED_SEGMENTED + c;
        if (!dcm_dataset_find(ds, desc)) {
            st = vp_error_set(err, VP_EINVAL,
                              "PALETTE COLOR without Palette Color LUT "
                              "Descriptor (%04X,%04X)",
                              DCM_GROUP(desc), DCM_ELEMENT(desc));
            goto done;
        }
        if (dcm_dataset_find(ds, data))
            st = img_lut_read(ds, desc, data, is_signed, &ch[c], err);
        else if (dcm_dataset_find(ds, seg))
            st = read_segmented(ds, desc, seg, is_signed, &ch[c], err);
        else
            st = vp_error_set(err, VP_EINVAL,
                              "PALETTE COLOR without Palette Color LUT Data "
                              "(%04X,%04X) or its segmented form",
                              DCM_GROUP(data), DCM_ELEMENT(data));
        if (st)
            goto done;
    }
    /* C.7.6.3.1.5: the three descriptors are the same. */
    if (ch[1].entries != ch[0].entries || ch[2].entries != ch[0].entries ||
        ch[1].first != ch[0].first || ch[2].first != ch[0].first) {
        st = vp_error_set(err, VP_EINVAL,
                          "Palette Color LUT Descriptors differ between red, "
                          "green and blue");
        goto done;
    }
    p->rgb = vp_malloc((size_t)ch[0].entries * 3);
    if (!p->rgb) {
        st = vp_error_set(err, VP_ENOMEM, "out of memory");
        goto done;
    }
    for (unsigned c = 0; c < 3; c++) {
        /* 16-bit entries show their upper 8 bits. Some writers declare 16 bits but fill
         * only 8: when no entry exceeds 255, use them as they are. */
        uint32_t maxv = 0;
        for (uint32_t i = 0; i < ch[c].entries; i++)
            maxv = ch[c].data[i] > maxv ? ch[c].data[i] : maxv;
        unsigned shift = ch[c].bits > 8 && maxv > 255 ? ch[c].bits - 8 : 0;
        for (uint32_t i = 0; i < ch[c].entries; i++) {
            uint32_t x = ch[c].data[i] >> shift;
            p->rgb[3 * (size_t)i + c] = (uint8_t)(x > 255 ? 255 : x);
        }
    }
    p->entries = ch[0].entries;
    p->first = ch[0].first;
done:
    for (unsigned c = 0; c < 3; c++)
        img_lut_fini(&ch[c]);
    return st;
}

bool img_color_supported(const char *pi)
{
    static const char *const names[] = {
        "RGB",     "YBR_FULL",        "YBR_FULL_422",    "YBR_ICT",
        "YBR_RCT", "YBR_PARTIAL_422", "YBR_PARTIAL_420", "PALETTE COLOR"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(pi, names[i]))
            return true;
    return false;
}

/* Sample i of a row as a signed or unsigned value of bits_stored bits. */
static inline int64_t sample(const uint8_t *src, size_t i, const img_info *info)
{
    uint32_t raw;
    if (info->bits_allocated == 8)
        raw = src[i];
    else if (info->bits_allocated == 16)
        raw = vp_le16(src + 2 * i);
    else
        raw = vp_le32(src + 4 * i);
    unsigned bs = info->bits_stored;
    uint32_t mask = bs >= 32 ? 0xFFFFFFFFu : (1u << bs) - 1;
    raw &= mask;
    if (info->pixel_representation && bs < 64 && (raw >> (bs - 1)) & 1)
        return (int64_t)raw - ((int64_t)1 << bs);
    return raw;
}

static inline uint8_t clamp8(double v)
{
    return v <= 0 ? 0 : v >= 255 ? 255 : (uint8_t)(v + 0.5);
}

void img_color_row(const uint8_t *src, uint32_t w, const img_info *info, const char *pi,
                   const img_palette *pal, uint8_t *rgb)
{
    unsigned bs = info->bits_stored;
    if (!strcmp(pi, "PALETTE COLOR")) {
        for (uint32_t x = 0; x < w; x++) {
            int64_t i = sample(src, x, info) - pal->first;
            i = i < 0 ? 0 : i >= pal->entries ? pal->entries - 1 : i;
            memcpy(rgb + 3 * (size_t)x, pal->rgb + 3 * (size_t)i, 3);
        }
        return;
    }
    /* Scale of a bs-bit sample to 8 bits, and the chroma zero point 2^(bs-1). Signed colour
     * samples are unusual; they are taken as offset by half the range like unsigned ones. */
    double maxv = bs >= 32 ? 4294967295.0 : (double)((1ull << bs) - 1), k = 255.0 / maxv;
    double half = bs >= 32 ? 2147483648.0 : (double)(1ull << (bs - 1));
    int64_t off = info->pixel_representation ? (int64_t)half : 0;
    bool fast8 = bs == 8 && info->bits_allocated == 8 && !info->pixel_representation;
    if (!strcmp(pi, "RGB")) {
        if (fast8) {
            memcpy(rgb, src, (size_t)w * 3);
            return;
        }
        for (size_t i = 0; i < (size_t)w * 3; i++)
            rgb[i] = clamp8((double)(sample(src, i, info) + off) * k);
        return;
    }
    bool partial = !strncmp(pi, "YBR_PARTIAL", 11), rct = !strcmp(pi, "YBR_RCT");
    for (uint32_t x = 0; x < w; x++) {
        double y = (double)(sample(src, 3 * (size_t)x, info) + off);
        double cb = (double)(sample(src, 3 * (size_t)x + 1, info) + off) - half;
        double cr = (double)(sample(src, 3 * (size_t)x + 2, info) + off) - half;
        double r, g, b;
        if (rct) {
            /* ISO 15444-1 G.2 inverse RCT: G = Y - floor((Cb + Cr) / 4), R = Cr + G,
             * B = Cb + G. */
            g = y - floor((cb + cr) / 4);
            r = cr + g;
            b = cb + g;
        } else if (partial) {
            /* C.7.6.3.1.2 YBR_PARTIAL: Y in 16..235, Cb/Cr in 16..240 (8-bit), ITU-R BT.601. */
            double s = maxv / 255.0, yy = (y - 16 * s) * 255.0 / 219.0;
            r = yy + 1.402 * 255.0 / 224.0 * cr;
            g = yy - 0.344136 * 255.0 / 224.0 * cb - 0.714136 * 255.0 / 224.0 * cr;
            b = yy + 1.772 * 255.0 / 224.0 * cb;
        } else {
            /* C.7.6.3.1.2 YBR_FULL (and YBR_ICT): the inverse of Y = .2990R + .5870G + .1140B,
             * CB = -.1687R - .3313G + .5000B + 2^(bs-1), CR = .5000R - .4187G - .0813B + 2^(bs-1).
             */
            r = y + 1.402 * cr;
            g = y - 0.344136 * cb - 0.714136 * cr;
            b = y + 1.772 * cb;
        }
        rgb[3 * (size_t)x] = clamp8(r * k);
        rgb[3 * (size_t)x + 1] = clamp8(g * k);
        rgb[3 * (size_t)x + 2] = clamp8(b * k);
    }
}
