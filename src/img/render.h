/* SPDX-License-Identifier: MIT */
/*
 * img rendering: a decoded frame to display pixels and then to PNG or JPEG. The grayscale
 * pipeline of PS3.3 C.11 (Modality LUT C.11.1, VOI LUT C.11.2, Presentation LUT C.11.6),
 * photometric conversions of PS3.3 C.7.6.3.1.2 (YBR_* to RGB, PALETTE COLOR through the
 * Palette Color LUTs of C.7.6.3.1.5-6 and the segmented ones of C.7.9.2), resampling, and
 * the PNG (libspng) and JPEG (libjpeg-turbo) encoders.
 *
 * No I/O, no logging and no globals: every call is safe from any thread on its own data.
 */
#ifndef VP_IMG_RENDER_H
#define VP_IMG_RENDER_H

#include <stdbool.h>
#include <stdint.h>

#include "img/img.h"

/* Which VOI transformation (PS3.3 C.11.2) the grayscale pipeline applies. */
typedef enum img_voi_mode {
    IMG_VOI_DEFAULT = 0, /* the data set's first window, else its first VOI LUT, else min-max */
    IMG_VOI_WINDOW,      /* center / width given in the options */
    IMG_VOI_FILE_WINDOW, /* the data set's window number voi_index */
    IMG_VOI_FILE_LUT,    /* the data set's VOI LUT Sequence item voi_index */
    IMG_VOI_MINMAX,      /* min..max of the frame's modality values */
    IMG_VOI_NONE,        /* none: the whole range the modality values can take (dcmj2pnm -W) */
} img_voi_mode;

/* VOI LUT Function (0028,1056), PS3.3 C.11.2.1.3. */
typedef enum img_voi_function {
    IMG_VOI_FN_AUTO = 0, /* as the data set says, LINEAR when it says nothing */
    IMG_VOI_FN_LINEAR,
    IMG_VOI_FN_LINEAR_EXACT,
    IMG_VOI_FN_SIGMOID,
} img_voi_function;

typedef enum img_format { IMG_OUT_PNG, IMG_OUT_JPEG } img_format;

typedef struct img_render_opts {
    uint32_t frame;            /* 0-based */
    img_voi_mode voi;          /* IMG_VOI_DEFAULT when zeroed */
    uint32_t voi_index;        /* IMG_VOI_FILE_WINDOW / IMG_VOI_FILE_LUT: 0-based */
    double center, width;      /* IMG_VOI_WINDOW */
    img_voi_function function; /* overrides the data set's VOI LUT Function */
    uint32_t width_px;         /* output size; 0 keeps the aspect ratio (or the source size) */
    uint32_t height_px;
    uint32_t size;       /* when not 0: the longer side becomes this many pixels (aspect kept) */
    img_format format;   /* PNG when zeroed */
    int quality;         /* JPEG 1..100; 0 = 90 */
    int depth;           /* 8 or 16 (grayscale PNG only: VOI output over 0..65535); 0 = 8 */
    bool fast;           /* JPEG: fast integer DCT; PNG: Huffman-only zlib */
    uint64_t max_pixels; /* largest output (width x height); 0 = IMG_RENDER_MAX_PIXELS */
} img_render_opts;

#define IMG_RENDER_MAX_SIDE 32768u
#define IMG_RENDER_MAX_PIXELS (1ull << 27)

/* A rendered image: 8-bit gray, 8-bit RGB or 16-bit gray (host-endian uint16). */
typedef struct img_image {
    uint32_t width, height;
    uint16_t channels; /* 1 gray, 3 RGB */
    uint16_t depth;    /* bits per sample: 8 or 16 */
    uint8_t *data;     /* owned (vp_malloc), width x height x channels x depth/8 bytes */
} img_image;

void img_image_fini(img_image *im);

/*
 * Renders frame opts->frame of ds (transfer syntax ts) and encodes it as PNG or JPEG into out
 * (reset first). Errors: those of img_decode_frame, VP_EINVAL for a bad option or attribute
 * (message names it), VP_ELIMIT for an output over opts->max_pixels, VP_EUNSUPPORTED for what
 * is valid but not handled (e.g. 16-bit JPEG).
 */
vp_status img_render(const dcm_dataset *ds, const char *ts, const img_render_opts *opts,
                     vp_buf *out, vp_error *err);

/* Decodes and renders one frame to display pixels (no encoding). *im is owned by the caller
 * on success (img_image_fini), untouched on failure. */
vp_status img_render_frame(const dcm_dataset *ds, const char *ts, const img_render_opts *opts,
                           img_image *im, vp_error *err);

/* Same from a frame the caller decoded already: px holds info->frame_size bytes as
 * img_decode_frame writes them, info is its out info (photometric after decoding). ds gives
 * the LUTs, windows and palettes. */
vp_status img_render_pixels(const dcm_dataset *ds, const uint8_t *px, const img_info *info,
                            const img_render_opts *opts, img_image *im, vp_error *err);

/* Encodes a rendered image as opts->format says (quality, fast) into out (reset first). */
vp_status img_render_encode(const img_image *im, const img_render_opts *opts, vp_buf *out,
                            vp_error *err);

/* Output size for a source of sw x sh under opts (width_px, height_px, size), checked
 * against the limits. */
vp_status img_render_size(uint32_t sw, uint32_t sh, const img_render_opts *opts, uint32_t *dw,
                          uint32_t *dh, vp_error *err);

/* ------------------------------------------------------------------------------------------ */
/* LUTs (lut.c)                                                                               */

/* A lookup table from a LUT Descriptor (PS3.3 C.11.1.1, C.11.2.1.1, C.7.6.3.1.5): inputs
 * first..first+entries-1 map to data[0..entries-1]; inputs outside clamp to the ends. */
typedef struct img_lut {
    uint32_t entries; /* 1..65536 */
    int32_t first;    /* first input value mapped */
    uint16_t bits;    /* bits per entry (descriptor value 3), 1..16 */
    uint16_t *data;   /* owned, entries values */
} img_lut;

void img_lut_fini(img_lut *lut);

/* Entry for input x (clamped). */
static inline uint16_t img_lut_at(const img_lut *lut, int64_t x)
{
    int64_t i = x - lut->first;
    if (i < 0)
        i = 0;
    if (i >= (int64_t)lut->entries)
        i = (int64_t)lut->entries - 1;
    return lut->data[i];
}

/*
 * Reads a LUT from item: the descriptor desc_tag (3 values: entries, 0 meaning 65536; first
 * value mapped, signed when signed_first; bits per entry) and the data data_tag, whose entries
 * are 16-bit words, or bytes when the value holds fewer than 2 x entries bytes (PS3.3
 * C.7.6.3.1.6: 8-bit palette entries). VP_EINVAL naming the attribute for a missing or
 * inconsistent descriptor or too little data.
 */
vp_status img_lut_read(const dcm_dataset *item, uint32_t desc_tag, uint32_t data_tag,
                       bool signed_first, img_lut *lut, vp_error *err);

/*
 * Expands Segmented Palette Color LUT Data (PS3.3 C.7.9.2): units are the segment words (16-bit
 * entries) or bytes (8-bit entries) as n values; out receives at most max entries, *count how
 * many. Discrete (0), linear (1) and indirect (2) segments; an indirect segment's offset counts
 * units from the start of the data (as GDCM and pydicom read it) and may not point at another
 * indirect segment. Unknown opcodes, a linear or indirect segment first, data ending inside a
 * segment or more than max entries give VP_EINVAL; nothing is read or written out of bounds.
 */
vp_status img_segmented_lut_expand(const uint16_t *units, size_t n, bool byte_units, uint16_t *out,
                                   uint32_t max, uint32_t *count, vp_error *err);

/* VOI LUT functions of PS3.3 C.11.2.1.2.1 (LINEAR), C.11.2.1.3.2 (LINEAR_EXACT) and
 * C.11.2.1.3.1 (SIGMOID): x mapped into [ymin, ymax]. Width must be >= 1 for LINEAR and > 0
 * otherwise (the caller checks). */
double img_voi_value(img_voi_function fn, double center, double width, double x, double ymin,
                     double ymax);

/* Grayscale pipeline parameters for one frame: Modality, VOI and Presentation LUT stages. */
typedef struct img_gray {
    uint16_t bits_stored;
    bool is_signed;
    /* Modality LUT (C.11.1): the sequence's LUT when has_mlut, else slope x SV + intercept. */
    bool has_mlut;
    img_lut mlut;
    double slope, intercept;
    /* VOI (C.11.2). */
    enum { IMG_GRAY_VOI_RANGE, IMG_GRAY_VOI_WINDOW, IMG_GRAY_VOI_LUT } voi_kind;
    img_voi_function function; /* never AUTO here */
    double center, width;      /* WINDOW */
    bool minmax_pending;       /* WINDOW from the frame's range: img_gray_set_range fills it */
    double range_lo, range_hi; /* RANGE: modality values mapped linearly onto the output */
    img_lut vlut;              /* LUT */
    bool invert;               /* MONOCHROME1 or Presentation LUT Shape INVERSE (C.11.6.1) */
    uint32_t out_max;          /* 255 or 65535 */
} img_gray;

void img_gray_fini(img_gray *g);
/* Modality value of stored value sv. */
double img_gray_modality(const img_gray *g, int64_t sv);
/* Display value of stored value sv, in [0, out_max], rounded. */
uint32_t img_gray_value(const img_gray *g, int64_t sv);
/* Reads the Modality LUT, VOI and Presentation LUT attributes of ds for frame n (top-level
 * attributes, else the frame's Per-frame or the Shared Functional Groups: Pixel Value
 * Transformation and Frame VOI LUT, PS3.3 C.7.6.16.2.9-10) under opts. When the choice is
 * the frame's own range, g->minmax_pending is set and the caller passes the range of the
 * frame's stored values to img_gray_set_range. g is to be freed with img_gray_fini even on
 * failure. */
vp_status img_gray_setup(const dcm_dataset *ds, const img_info *info, uint32_t frame,
                         const img_render_opts *opts, img_gray *g, vp_error *err);
/* Min-max window over the modality values of stored values smin..smax (as dcmtk's: center
 * (min + max + 1) / 2, width max - min + 1, LINEAR). */
void img_gray_set_range(img_gray *g, int64_t smin, int64_t smax);

/* ------------------------------------------------------------------------------------------ */
/* Colour (color.c)                                                                           */

/* Palette Color LUTs (PS3.3 C.7.6.3.1.5-6, C.7.9) expanded to 8-bit RGB per stored value. */
typedef struct img_palette {
    uint32_t entries; /* 1..65536 */
    int32_t first;    /* first stored value mapped */
    uint8_t *rgb;     /* owned, entries x 3 */
} img_palette;

void img_palette_fini(img_palette *p);
/* Reads the red, green and blue descriptors and (segmented) data of ds. */
vp_status img_palette_read(const dcm_dataset *ds, bool is_signed, img_palette *p, vp_error *err);

/* Converts one row of w decoded pixels (colour-by-pixel samples of info's geometry) of
 * photometric interpretation pi to 8-bit RGB. pal is needed for PALETTE COLOR. */
void img_color_row(const uint8_t *src, uint32_t w, const img_info *info, const char *pi,
                   const img_palette *pal, uint8_t *rgb);
/* Whether pi is a colour interpretation img_color_row handles. */
bool img_color_supported(const char *pi);

/* ------------------------------------------------------------------------------------------ */
/* Scaling (scale.c)                                                                          */

/* Produces source row y (width x channels samples of 1 or 2 bytes) into row. */
typedef vp_status img_row_source(void *ctx, uint32_t y, void *row, vp_error *err);

/*
 * Resamples a sw x sh image, pulled row by row from src in ascending order, to dw x dh into
 * dst (dw x dh x channels samples of bytes 1 or 2). Down-scaling averages each output pixel's
 * exact source footprint (box filter with fractional edge weights); up-scaling is bilinear
 * between pixel centres; each axis on its own.
 */
vp_status img_scale_rows(img_row_source *src, void *ctx, uint32_t sw, uint32_t sh,
                         unsigned channels, unsigned bytes, uint32_t dw, uint32_t dh, void *dst,
                         vp_error *err);

/* img_scale_rows over an image in memory; out is a new image. */
vp_status img_scale(const img_image *in, uint32_t dw, uint32_t dh, img_image *out, vp_error *err);

/* ------------------------------------------------------------------------------------------ */
/* Encoders (encode_png.c, encode_jpeg.c)                                                     */

/* PNG (ISO/IEC 15948) of im: SUB filter, zlib level 0..9 (-1 = 1), run-length strategy or,
 * when fast, Huffman-only. */
vp_status img_encode_png(const img_image *im, int level, bool fast, vp_buf *out, vp_error *err);
/* Baseline JPEG (ISO 10918-1) of an 8-bit image, quality 1..100, fast = integer fast DCT. */
vp_status img_encode_jpeg(const img_image *im, int quality, bool fast, vp_buf *out, vp_error *err);

#endif /* VP_IMG_RENDER_H */
