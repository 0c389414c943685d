/* SPDX-License-Identifier: MIT */
/*
 * img: pixel data. Image geometry from the Image Pixel module (PS3.3 C.7.6.3), frames of native
 * and encapsulated pixel data (PS3.5 8.2, A.4), the RLE Lossless decoder (PS3.5 Annex G) and
 * one call that turns frame N of a data set into native little-endian, colour-by-pixel samples.
 *
 * No I/O and no logging: data sets in, bytes out. Errors come back as a vp_status with the
 * reason in the caller's vp_error.
 */
#ifndef VP_IMG_H
#define VP_IMG_H

#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include "dcm/dcm.h"

#define IMG_RLE_LOSSLESS "1.2.840.10008.1.2.5"

/* Geometry of the pixel data, validated (PS3.3 C.7.6.3.1). */
typedef struct img_info {
    uint32_t rows;                 /* (0028,0010), > 0 */
    uint32_t columns;              /* (0028,0011), > 0 */
    uint16_t samples_per_pixel;    /* (0028,0002): 1, 3 or 4 */
    uint16_t bits_allocated;       /* (0028,0100): 8, 16 or 32 */
    uint16_t bits_stored;          /* (0028,0101): 1..bits_allocated */
    uint16_t high_bit;             /* (0028,0102): bits_stored - 1 */
    uint16_t pixel_representation; /* (0028,0103): 0 unsigned, 1 two's complement */
    uint16_t planar_configuration; /* (0028,0006) as in the data set: 0 by pixel, 1 by plane */
    uint32_t frames;               /* (0028,0008) Number of Frames, 1 when absent */
    char photometric[17];          /* (0028,0004), e.g. "MONOCHROME2", "RGB" */
    size_t frame_size;             /* bytes of one native frame: rows x columns x samples x bytes */
} img_info;

/*
 * Reads and checks the geometry of ds. VP_EINVAL with a message naming the attribute when a
 * value is missing or inconsistent (zero rows, bits stored > bits allocated, high bit not
 * bits stored - 1, MONOCHROME with 3 samples...), VP_EUNSUPPORTED for what is valid but not
 * handled (Bits Allocated 1 or 64), VP_ELIMIT when the frame or total size overflows.
 */
vp_status img_info_get(const dcm_dataset *ds, img_info *info, vp_error *err);

/*
 * The frames of one data set's Pixel Data. Borrows ds, which must outlive it and stay
 * unmodified. Frame numbers are 0-based.
 *
 * Encapsulated pixel data (PS3.5 A.4) is split into frames by, in this order:
 *  1. the Extended Offset Table (7FE0,0001) with its Lengths (7FE0,0002): one offset per
 *     frame from the first fragment's item tag; each frame is one fragment (A.4: the Basic
 *     Offset Table is then empty);
 *  2. a non-empty Basic Offset Table: one offset per frame, each the start of a fragment's
 *     item tag counted from the first item after the table; a frame is its fragments up to
 *     the next frame's;
 *  3. neither: one frame takes all fragments; otherwise there must be exactly one fragment
 *     per frame. Any other layout gives VP_EPARSE (frames would have to be found by parsing
 *     the compressed stream, which depends on the transfer syntax).
 */
typedef struct img_frames img_frames;

vp_status img_frames_open(const dcm_dataset *ds, const char *ts, img_frames **out, vp_error *err);
void img_frames_free(img_frames *f);
const img_info *img_frames_info(const img_frames *f);
bool img_frames_encapsulated(const img_frames *f);
/* Bytes of frame n as stored: the compressed stream for encapsulated data (its fragments
 * concatenated), info->frame_size native bytes otherwise (little endian, as the codec holds
 * them; planar when the data set says so). out is reset first. VP_EINVAL for n >= frames. */
vp_status img_frames_get(const img_frames *f, uint32_t n, vp_buf *out, vp_error *err);

/*
 * Decodes one RLE Lossless frame (PS3.5 G.3, G.5) of geometry info into out, which holds
 * info->frame_size bytes: little-endian samples, colour-by-pixel whatever the data set's
 * Planar Configuration (RLE always stores one segment per byte plane). Hostile streams
 * (segment count or offsets out of range, runs past a segment's end, too short segments)
 * give VP_EPARSE and never write outside out.
 */
vp_status img_rle_decode(const uint8_t *in, size_t len, const img_info *info, uint8_t *out,
                         size_t out_size, vp_error *err);

/*
 * Encodes one native frame (little-endian, colour-by-pixel, info->frame_size bytes, as
 * img_decode_frame gives it) as an RLE Lossless frame (PS3.5 Annex G): one segment per byte
 * of each sample, each row packed on its own (G.3.1), each segment of even length. out is
 * reset first. VP_EUNSUPPORTED when the frame needs more than 15 segments.
 */
vp_status img_rle_encode(const uint8_t *px, size_t len, const img_info *info, vp_buf *out,
                         vp_error *err);

/*
 * Encodes one native frame as a complete JPEG-LS stream (ISO 14495-1; PS3.5 A.4.3, 8.2.3), by
 * CharLS. px holds info->frame_size bytes as img_decode_frame gives them: little-endian
 * samples of info->bits_allocated (8 or 16) bits, colour-by-pixel, 1 or 3 samples; only the
 * low info->bits_stored (2..16) bits are coded, so signed samples (Pixel Representation 1)
 * are stored as their two's complement bit pattern, unsigned to JPEG-LS, and decode to it
 * zero-extended. The sample precision P is Bits Stored, or 8 for 8-bit frames (what dcmtk
 * expects there). near 0 is lossless, above it near-lossless with that maximum error (ISO
 * 14495-1 NEAR). out is reset first and holds an even number of bytes: an odd stream gets a
 * fill byte FF before its EOI marker, which PS3.5 A.4 allows in place of a pad after it.
 * VP_EINVAL for a len or geometry that does not fit, VP_EUNSUPPORTED for what JPEG-LS cannot
 * code (1 bit, 32 bits, 4 samples).
 */
vp_status img_jls_encode(const uint8_t *px, size_t len, const img_info *info, int near, vp_buf *out,
                         vp_error *err);

/*
 * Decoders of encapsulated frames. Each takes one frame's compressed stream (its fragments
 * concatenated) and the geometry the data set declares, checks that the stream's own header
 * agrees (size, components, precision: VP_EPARSE naming both values otherwise), and writes
 * info->frame_size bytes to out: little-endian samples of info->bits_allocated bits,
 * colour-by-pixel, the low info->bits_stored bits significant (bits above may be zero or a
 * sign extension). out_info receives *info with what changed in decoding: planar
 * configuration 0 and, when the decoder converted colour, the new photometric interpretation
 * (e.g. YBR_FULL_422 to RGB). Hostile streams give VP_EPARSE (or VP_ELIMIT), never a write
 * outside out. VP_EUNSUPPORTED names what is valid but not handled (e.g. 12-bit DCT).
 */
typedef vp_status img_decoder(const uint8_t *in, size_t len, const img_info *info, uint8_t *out,
                              size_t out_size, img_info *out_info, vp_error *err);

/* JPEG baseline and extended DCT, 8-bit (PS3.5 A.4.1; ISO 10918-1 processes 1, 2/4), by
 * libjpeg-turbo. 12-bit samples give VP_EUNSUPPORTED. */
img_decoder img_jpeg_decode;
/* JPEG extended sequential DCT with 12-bit samples (ISO 10918-1 process 4, Huffman), own
 * code: 1-4 components, sampling factors, restart intervals; the integer IDCT of the IJG
 * library, so the output equals dcmtk's. */
img_decoder img_jpeg12_decode;
/* JPEG lossless, non-hierarchical (ISO 10918-1 processes 14 and 14 SV1, Annex H), own code:
 * predictors 1-7, point transform, 2-16 bits, restart intervals. */
img_decoder img_jpll_decode;
/* JPEG-LS lossless and near-lossless (PS3.5 A.4.3; ISO 14495-1), by CharLS. */
img_decoder img_jls_decode;
/* JPEG 2000 and High-Throughput JPEG 2000 (PS3.5 A.4.4, A.4.11), by OpenJPEG. */
img_decoder img_j2k_decode;

/* Whether img_decode_frame handles transfer syntax ts (native ones and the encapsulated ones
 * with a decoder; a JPEG stream may still turn out to be of an unsupported process). */
bool img_can_decode(const char *ts);

/*
 * Frame n (0-based) of ds, encoded in transfer syntax ts, as native little-endian samples,
 * colour-by-pixel (Planar Configuration 0), into out (reset first). Handles Implicit and
 * Explicit VR Little Endian, Deflated (the codec inflated it), Explicit VR Big Endian and RLE
 * Lossless; other encapsulated syntaxes give VP_EUNSUPPORTED "unsupported transfer syntax:
 * NAME". info (optional) receives the geometry of what was written, planar_configuration 0.
 */
vp_status img_decode_frame(const dcm_dataset *ds, const char *ts, uint32_t n, vp_buf *out,
                           img_info *info, vp_error *err);

/* Options of img_transcode. */
typedef struct img_transcode_opts {
    int near; /* JPEG-LS Near-Lossless (1.2.840.10008.1.2.4.81): error bound, > 0 */
} img_transcode_opts;

/* Whether img_transcode can write transfer syntax ts: every native one, RLE Lossless,
 * JPEG-LS Lossless and Near-Lossless. */
bool img_transcode_can_write(const char *ts);

/*
 * Re-encodes the Pixel Data of ds, held in transfer syntax from, for transfer syntax to, in
 * place; the caller then writes ds in `to`. Native to native changes nothing (the writer
 * handles byte order). Otherwise every frame is decoded and written native, RLE or JPEG-LS
 * (one fragment per frame, with a Basic Offset Table when there are several), the Extended
 * Offset Table is dropped, Photometric Interpretation becomes the decoded one (RGB after a
 * JPEG YCbCr stream, YBR_FULL after native YBR_FULL_422) with Planar Configuration 0, bits
 * above High Bit are cleared or sign-extended, and Lossy Image Compression is set with its
 * method when the source or the target is lossy (PS3.3 C.7.6.1.1.5). ds is unchanged when a
 * frame cannot be decoded or encoded.
 */
vp_status img_transcode(dcm_dataset *ds, const char *from, const char *to,
                        const img_transcode_opts *opts, vp_error *err);

#endif /* VP_IMG_H */
