/* SPDX-License-Identifier: MIT */
/* Unit tests of the rendering pieces (src/img/render.h): VOI LUT functions against values
 * worked out by hand from PS3.3 C.11.2.1.2.1 and C.11.2.1.3, LUT Descriptors, Segmented
 * Palette Color LUT expansion (C.7.9.2) with hostile segments, the grayscale pipeline, the
 * area-averaging scaler, output sizes, and the encoders' signatures. */
#include <math.h>
#include <string.h>

#include "dcm/dcm.h"
#include "harness.h"
#include "img/render.h"

#define CHECK_NEAR(a, b, eps)                                                                      \
    do {                                                                                           \
        double xa_ = (a), xb_ = (b);                                                               \
        if (!(fabs(xa_ - xb_) <= (eps)))                                                           \
            FAIL_AT("%s == %s: %.9g != %.9g", #a, #b, xa_, xb_);                                   \
    } while (0)

TEST(voi_linear)
{
    /* C.11.2.1.2.1: center 2048, width 4096 maps 0..4095 onto 0..255 exactly. */
    CHECK_NEAR(img_voi_value(IMG_VOI_FN_LINEAR, 2048, 4096, 0, 0, 255), 0, 1e-9);
    CHECK_NEAR(img_voi_value(IMG_VOI_FN_LINEAR, 2048, 4096, 4095, 0, 255), 255, 1e-9);
    CHECK_NEAR(img_voi_value(IMG_VOI_FN_LINEAR, 2048, 4096, 2048, 0, 255), (0.5 / 4095 + 0.5) * 255,
               1e-9);
    /* c = 40, w = 400: x = 40 gives ((40 - 39.5) / 399 + 0.5) * 255 = 127.819548... */
    CHECK_NEAR(img_voi_value(IMG_VOI_FN_LINEAR, 40, 400, 40, 0, 255), 127.8195488721804, 1e-9);
    CHECK_NEAR(img_voi_value(IMG_VOI_FN_LINEAR, 40, 400, -160, 0, 255), 0, 1e-9);
    CHECK_NEAR(img_voi_value(IMG_VOI_FN_LINEAR, 40, 400, 239, 0, 255), 255, 1e-9);
    /* Width 1 is a threshold at center - 0.5, with no division by width - 1 = 0. */
    CHECK_NEAR(img_voi_value(IMG_VOI_FN_LINEAR, 10, 1, 9, 0, 255), 0, 0);
    CHECK_NEAR(img_voi_value(IMG_VOI_FN_LINEAR, 10, 1, 10, 0, 255), 255, 0);
}

TEST(voi_linear_exact)
{
    /* C.11.2.1.3.2: no half-value shift: x = c is the middle exactly. */
    CHECK_NEAR(img_voi_value(IMG_VOI_FN_LINEAR_EXACT, 40, 400, 40, 0, 255), 127.5, 1e-9);
    CHECK_NEAR(img_voi_value(IMG_VOI_FN_LINEAR_EXACT, 2048, 4096, 4096, 0, 255), 255, 1e-9);
    CHECK_NEAR(img_voi_value(IMG_VOI_FN_LINEAR_EXACT, 2048, 4096, 0, 0, 255), 0, 1e-9);
    CHECK_NEAR(img_voi_value(IMG_VOI_FN_LINEAR_EXACT, 40, 400, 140, 0, 255), 191.25, 1e-9);
    /* Widths below 1 are allowed: 0.5 around 10. */
    CHECK_NEAR(img_voi_value(IMG_VOI_FN_LINEAR_EXACT, 10, 0.5, 10.125, 0, 100), 75, 1e-9);
}

TEST(voi_sigmoid)
{
    /* C.11.2.1.3.1: y = ymax / (1 + exp(-4 (x - c) / w)). */
    CHECK_NEAR(img_voi_value(IMG_VOI_FN_SIGMOID, 40, 400, 40, 0, 255), 127.5, 1e-9);
    CHECK_NEAR(img_voi_value(IMG_VOI_FN_SIGMOID, 40, 400, 140, 0, 255), 255 / (1 + exp(-1.0)),
               1e-9);
    CHECK_NEAR(img_voi_value(IMG_VOI_FN_SIGMOID, 40, 400, 140, 0, 255), 186.4199377, 1e-6);
    CHECK_NEAR(img_voi_value(IMG_VOI_FN_SIGMOID, 40, 400, -60, 0, 255), 68.58006230, 1e-6);
}

TEST(segmented_expand)
{
    /* Discrete 10 20 30; linear to 70 in 4 steps; indirect: one segment at unit 0 again. */
    uint16_t seg[] = {0, 3, 10, 20, 30, 1, 4, 70, 2, 1, 0, 0};
    uint16_t out[32];
    uint32_t n;
    vp_error err;
    vp_error_clear(&err);
    CHECK_OK(img_segmented_lut_expand(seg, 12, false, out, 32, &n, &err));
    uint16_t want[] = {10, 20, 30, 40, 50, 60, 70, 10, 20, 30};
    CHECK_MEM(out, n * 2, want, sizeof want);
    /* 8-bit units: the indirect offset takes four bytes, least significant first. */
    uint16_t seg8[] = {0, 2, 5, 9, 1, 2, 1, 2, 1, 0, 0, 0, 0};
    CHECK_OK(img_segmented_lut_expand(seg8, 13, true, out, 32, &n, &err));
    uint16_t want8[] = {5, 9, 5, 1, 5, 9};
    CHECK_MEM(out, n * 2, want8, sizeof want8);
    /* Linear rounding: 0 to 255 in 3 steps gives 85, 170, 255. */
    uint16_t lin[] = {0, 1, 0, 1, 3, 255};
    CHECK_OK(img_segmented_lut_expand(lin, 6, false, out, 32, &n, &err));
    CHECK_INT(n, 4);
    CHECK_INT(out[1], 85);
    CHECK_INT(out[2], 170);
    CHECK_INT(out[3], 255);
}

TEST(segmented_hostile)
{
    uint16_t out[8];
    uint32_t n;
    struct {
        uint16_t u[8];
        size_t n;
        const char *why;
    } bad[] = {
        {{1, 2, 5}, 3, "linear segment without a previous value"},
        {{2, 1, 0, 0}, 4, "indirect segment first"},
        {{0, 5, 1, 2}, 4, "discrete segment of 5 values past the end"},
        {{0, 1, 7, 2, 1, 99, 0}, 7, "indirect segment offset 99 past the end"},
        {{0, 1, 7, 2, 1, 3, 0}, 7, "nested"}, /* points at itself */
        {{0, 1, 7, 9, 1, 1}, 6, "unknown"},   /* opcode 9 */
        {{0, 1, 7, 1, 2}, 5, "linear segment past the end"},
        {{0, 6, 1, 2, 3, 4, 5, 6}, 8, "more than 4 entries"},
        {{0, 1, 7, 2, 1}, 5, "indirect segment past the end"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        vp_error err;
        vp_error_clear(&err);
        CHECK_INT(img_segmented_lut_expand(bad[i].u, bad[i].n, false, out, 4, &n, &err), VP_EINVAL);
        if (!strstr(err.msg, bad[i].why))
            FAIL_AT("case %zu: \"%s\" lacks \"%s\"", i, err.msg, bad[i].why);
    }
}

/* A data set with a LUT Descriptor d0\d1\d2 and len bytes of LUT Data. */
static dcm_dataset *lut_ds(uint16_t d0, uint16_t d1, uint16_t d2, size_t len)
{
    dcm_dataset *ds = dcm_dataset_new();
    uint8_t desc[6];
    vp_put_le16(desc, d0);
    vp_put_le16(desc + 2, d1);
    vp_put_le16(desc + 4, d2);
    dcm_dataset_set(ds, DCM_TAG(0x0028, 0x3002), DCM_VR_US, desc, 6, NULL);
    uint8_t *data = vp_calloc(len + 1, 1);
    for (size_t i = 0; i + 1 < len; i += 2)
        vp_put_le16(data + i, (uint16_t)(i / 2 * 3));
    if (len)
        dcm_dataset_set(ds, DCM_TAG(0x0028, 0x3006), DCM_VR_OW, data, len, NULL);
    vp_free(data);
    return ds;
}

TEST(lut_read)
{
    vp_error err;
    vp_error_clear(&err);
    img_lut lut;
    dcm_dataset *ds = lut_ds(0, 0, 16, 131072); /* 0 entries = 65536 */
    CHECK_OK(img_lut_read(ds, DCM_TAG(0x0028, 0x3002), DCM_TAG(0x0028, 0x3006), false, &lut, &err));
    CHECK_INT(lut.entries, 65536);
    CHECK_INT(img_lut_at(&lut, 2), 6);
    CHECK_INT(img_lut_at(&lut, -5), 0);
    img_lut_fini(&lut);
    dcm_dataset_free(ds);
    /* First value mapped 0xFF38 is -200 for signed pixel data; inputs clamp at the ends. */
    ds = lut_ds(4, 0xFF38, 12, 8);
    CHECK_OK(img_lut_read(ds, DCM_TAG(0x0028, 0x3002), DCM_TAG(0x0028, 0x3006), true, &lut, &err));
    CHECK_INT(lut.first, -200);
    CHECK_INT(img_lut_at(&lut, -199), 3);
    CHECK_INT(img_lut_at(&lut, 1000), 9);
    img_lut_fini(&lut);
    dcm_dataset_free(ds);
    /* Too little data, bad bits, missing data: errors naming the attribute. */
    ds = lut_ds(100, 0, 16, 20);
    CHECK_INT(img_lut_read(ds, DCM_TAG(0x0028, 0x3002), DCM_TAG(0x0028, 0x3006), false, &lut, &err),
              VP_EINVAL);
    CHECK(strstr(err.msg, "(0028,3006)") != NULL);
    dcm_dataset_free(ds);
    vp_error_clear(&err);
    ds = lut_ds(4, 0, 17, 8);
    CHECK_INT(img_lut_read(ds, DCM_TAG(0x0028, 0x3002), DCM_TAG(0x0028, 0x3006), false, &lut, &err),
              VP_EINVAL);
    dcm_dataset_free(ds);
    ds = lut_ds(4, 0, 16, 0);
    CHECK_INT(img_lut_read(ds, DCM_TAG(0x0028, 0x3002), DCM_TAG(0x0028, 0x3006), false, &lut, &err),
              VP_EINVAL);
    dcm_dataset_free(ds);
}

TEST(gray_pipeline)
{
    dcm_dataset *ds = dcm_dataset_new();
    dcm_dataset_set_str(ds, DCM_TAG(0x0028, 0x1052), DCM_VR_DS, "-1024");
    dcm_dataset_set_str(ds, DCM_TAG(0x0028, 0x1053), DCM_VR_DS, "2");
    dcm_dataset_set_str(ds, DCM_TAG(0x0028, 0x1050), DCM_VR_DS, "40\\500");
    dcm_dataset_set_str(ds, DCM_TAG(0x0028, 0x1051), DCM_VR_DS, "400\\0");
    img_info info = {.rows = 1,
                     .columns = 1,
                     .samples_per_pixel = 1,
                     .bits_allocated = 16,
                     .bits_stored = 12,
                     .high_bit = 11,
                     .photometric = "MONOCHROME2"};
    img_render_opts o = {0};
    img_gray g;
    vp_error err;
    vp_error_clear(&err);
    CHECK_OK(img_gray_setup(ds, &info, 0, &o, &g, &err));
    CHECK_INT(g.voi_kind, IMG_GRAY_VOI_WINDOW);
    CHECK_NEAR(g.center, 40, 0);
    CHECK_NEAR(img_gray_modality(&g, 532), 40, 0);
    CHECK_INT(img_gray_value(&g, 532), 128); /* 127.82 rounded */
    CHECK_INT(img_gray_value(&g, 0), 0);
    CHECK_INT(img_gray_value(&g, 4095), 255);
    img_gray_fini(&g);
    /* The second window has width 0: asked for, it is an error. */
    o.voi = IMG_VOI_FILE_WINDOW;
    o.voi_index = 1;
    CHECK_INT(img_gray_setup(ds, &info, 0, &o, &g, &err), VP_EINVAL);
    CHECK(strstr(err.msg, "width 0") != NULL);
    img_gray_fini(&g);
    vp_error_clear(&err);
    o.voi_index = 2;
    CHECK_INT(img_gray_setup(ds, &info, 0, &o, &g, &err), VP_EINVAL);
    img_gray_fini(&g);
    /* MONOCHROME1 inverts; 16-bit output spans 0..65535; min-max window over 100..300. */
    memcpy(info.photometric, "MONOCHROME1", 12);
    o = (img_render_opts){.voi = IMG_VOI_MINMAX, .depth = 16};
    vp_error_clear(&err);
    CHECK_OK(img_gray_setup(ds, &info, 0, &o, &g, &err));
    CHECK(g.minmax_pending);
    img_gray_set_range(&g, 100, 300);
    CHECK_INT(img_gray_value(&g, 100), 65535);
    CHECK_INT(img_gray_value(&g, 300), 0);
    img_gray_fini(&g);
    dcm_dataset_free(ds);
}

TEST(scale_area_average)
{
    /* 10 x 1 ramp 0, 10, ..., 90 to 3 x 1: footprints of 3 1/3 pixels. */
    img_image in = {10, 1, 1, 8, vp_malloc(10)}, out;
    for (int i = 0; i < 10; i++)
        in.data[i] = (uint8_t)(10 * i);
    vp_error err;
    vp_error_clear(&err);
    CHECK_OK(img_scale(&in, 3, 1, &out, &err));
    /* [0, 3.33): (0 + 10 + 20 + 30/3) / 3.33 = 12; then 45; then 78. */
    CHECK_INT(out.data[0], 12);
    CHECK_INT(out.data[1], 45);
    CHECK_INT(out.data[2], 78);
    img_image_fini(&out);
    /* Up: 10 -> 20 columns is bilinear between centres, ends clamped. */
    CHECK_OK(img_scale(&in, 20, 2, &out, &err));
    CHECK_INT(out.data[0], 0);
    CHECK_INT(out.data[1], 3);  /* 0.25 of the way from 0 to 10: 2.5 rounds to 3 */
    CHECK_INT(out.data[20], 0); /* second row equals the first */
    CHECK_INT(out.data[19], 90);
    img_image_fini(&out);
    img_image_fini(&in);
    /* A uniform 16-bit image stays uniform at any size. */
    img_image u = {37, 23, 1, 16, vp_malloc(37 * 23 * 2)};
    for (int i = 0; i < 37 * 23; i++)
        ((uint16_t *)u.data)[i] = 40000;
    CHECK_OK(img_scale(&u, 5, 4, &out, &err));
    for (int i = 0; i < 20; i++)
        CHECK_INT(((uint16_t *)out.data)[i], 40000);
    img_image_fini(&out);
    img_image_fini(&u);
}

TEST(render_size)
{
    uint32_t w, h;
    vp_error err;
    vp_error_clear(&err);
    img_render_opts o = {.size = 256};
    CHECK_OK(img_render_size(3000, 2500, &o, &w, &h, &err));
    CHECK_INT(w, 256);
    CHECK_INT(h, 213);
    CHECK_OK(img_render_size(2500, 3000, &o, &w, &h, &err));
    CHECK_INT(w, 213);
    CHECK_INT(h, 256);
    o = (img_render_opts){.width_px = 100};
    CHECK_OK(img_render_size(3000, 2500, &o, &w, &h, &err));
    CHECK_INT(h, 83);
    o = (img_render_opts){.size = 30000};
    CHECK_INT(img_render_size(3000, 2500, &o, &w, &h, &err), VP_ELIMIT);
    o = (img_render_opts){.size = 1};
    CHECK_OK(img_render_size(3000, 2, &o, &w, &h, &err));
    CHECK_INT(h, 1);
}

TEST(encoders)
{
    img_image im = {17, 9, 3, 8, vp_calloc(17 * 9 * 3, 1)};
    vp_buf out;
    vp_buf_init(&out, 0);
    vp_error err;
    vp_error_clear(&err);
    CHECK_OK(img_encode_png(&im, 1, false, &out, &err));
    CHECK(out.len > 8 && !memcmp(out.data, "\x89PNG\r\n\x1a\n", 8));
    CHECK_INT(vp_be32(out.data + 16), 17); /* IHDR width */
    CHECK_OK(img_encode_jpeg(&im, 90, false, &out, &err));
    CHECK(out.len > 4 && out.data[0] == 0xFF && out.data[1] == 0xD8);
    CHECK(out.data[out.len - 2] == 0xFF && out.data[out.len - 1] == 0xD9);
    im.depth = 16;
    CHECK_INT(img_encode_jpeg(&im, 90, false, &out, &err), VP_EUNSUPPORTED);
    img_image_fini(&im);
    vp_buf_fini(&out);
}

TEST(palette_hostile)
{
    /* PALETTE COLOR with a descriptor but no data, then with mismatched descriptors. */
    dcm_dataset *ds = dcm_dataset_new();
    uint8_t d[6] = {0, 1, 0, 0, 16, 0}; /* 256 entries, first 0, 16 bits */
    for (uint32_t t = 0; t < 3; t++)
        dcm_dataset_set(ds, DCM_TAG(0x0028, 0x1101 + t), DCM_VR_US, d, 6, NULL);
    img_palette p;
    vp_error err;
    vp_error_clear(&err);
    CHECK_INT(img_palette_read(ds, false, &p, &err), VP_EINVAL);
    CHECK(strstr(err.msg, "LUT Data") != NULL);
    uint8_t data[512] = {0};
    for (uint32_t t = 0; t < 3; t++)
        dcm_dataset_set(ds, DCM_TAG(0x0028, 0x1201 + t), DCM_VR_OW, data, 512, NULL);
    vp_error_clear(&err);
    CHECK_OK(img_palette_read(ds, false, &p, &err));
    img_palette_fini(&p);
    d[0] = 255; /* green: 255 entries */
    dcm_dataset_set(ds, DCM_TAG(0x0028, 0x1102), DCM_VR_US, d, 6, NULL);
    CHECK_INT(img_palette_read(ds, false, &p, &err), VP_EINVAL);
    dcm_dataset_free(ds);
}

int main(void)
{
    RUN(voi_linear);
    RUN(voi_linear_exact);
    RUN(voi_sigmoid);
    RUN(segmented_expand);
    RUN(segmented_hostile);
    RUN(lut_read);
    RUN(gray_pipeline);
    RUN(scale_area_average);
    RUN(render_size);
    RUN(encoders);
    RUN(palette_hostile);
    DONE();
}
