/* SPDX-License-Identifier: MIT */
/*
 * Image geometry and frame access. The Image Pixel module's attributes are read and checked
 * against each other (PS3.3 C.7.6.3.1), native frames are sliced out of Pixel Data (PS3.5
 * 8.1.1, 8.2) and encapsulated frames are found through the Extended or Basic Offset Table or
 * the fragment count (PS3.5 A.4).
 */
#include <string.h>

#include "img/img.h"

#define TAG_SAMPLES_PER_PIXEL DCM_TAG(0x0028, 0x0002)
#define TAG_PHOTOMETRIC DCM_TAG(0x0028, 0x0004)
#define TAG_PLANAR_CONFIGURATION DCM_TAG(0x0028, 0x0006)
#define TAG_NUMBER_OF_FRAMES DCM_TAG(0x0028, 0x0008)
#define TAG_ROWS DCM_TAG(0x0028, 0x0010)
#define TAG_COLUMNS DCM_TAG(0x0028, 0x0011)
#define TAG_BITS_ALLOCATED DCM_TAG(0x0028, 0x0100)
#define TAG_BITS_STORED DCM_TAG(0x0028, 0x0101)
#define TAG_HIGH_BIT DCM_TAG(0x0028, 0x0102)
#define TAG_PIXEL_REPRESENTATION DCM_TAG(0x0028, 0x0103)

/* Where one frame is in the fragments. */
struct frame_loc {
    uint32_t first;  /* fragment index as dcm_element_fragment counts (1 = after the BOT) */
    uint32_t count;  /* fragments in the frame */
    uint64_t length; /* Extended Offset Table length, or UINT64_MAX to take whole fragments */
};

struct img_frames {
    const dcm_dataset *ds;    /* borrowed */
    const dcm_element *pixel; /* (7FE0,0010) of ds */
    img_info info;            /* checked geometry */
    bool encapsulated;        /* fragments rather than one value */
    size_t stored_size;       /* native: bytes of one stored frame (422 and 1-bit differ) */
    struct frame_loc *loc;    /* encapsulated: info.frames entries */
};

/* An attribute as an integer in [lo, hi]; def when absent and def >= 0, else an error. */
static vp_status get_uint(const dcm_dataset *ds, uint32_t tag, const char *name, int64_t lo,
                          int64_t hi, int64_t def, int64_t *v, vp_error *err)
{
    vp_status st = dcm_dataset_get_int(ds, tag, 0, v);
    if (st == VP_ENOTFOUND && def >= 0) {
        *v = def;
        return VP_OK;
    }
    if (st == VP_ENOTFOUND)
        return vp_error_set(err, VP_EINVAL, "%s (%04X,%04X) missing", name, DCM_GROUP(tag),
                            DCM_ELEMENT(tag));
    if (st != VP_OK)
        return vp_error_set(err, VP_EINVAL, "%s (%04X,%04X) has no integer value", name,
                            DCM_GROUP(tag), DCM_ELEMENT(tag));
    if (*v < lo || *v > hi)
        return vp_error_set(err, VP_EINVAL, "%s (%04X,%04X) is %lld, expected %lld..%lld", name,
                            DCM_GROUP(tag), DCM_ELEMENT(tag), (long long)*v, (long long)lo,
                            (long long)hi);
    return VP_OK;
}

vp_status img_info_get(const dcm_dataset *ds, img_info *info, vp_error *err)
{
    memset(info, 0, sizeof *info);
    int64_t rows, cols, spp, ba, bs, hb, pr, pc, nf;
    vp_status st;
    /* Rows, Columns, Samples per Pixel, Bits Allocated and Photometric Interpretation are
     * Type 1 (PS3.3 C.7.6.3); Bits Stored and High Bit default to what every encoder writes
     * so that a sloppy header still shows. */
    if ((st = get_uint(ds, TAG_ROWS, "Rows", 1, 65535, -1, &rows, err)) ||
        (st = get_uint(ds, TAG_COLUMNS, "Columns", 1, 65535, -1, &cols, err)) ||
        (st = get_uint(ds, TAG_SAMPLES_PER_PIXEL, "Samples per Pixel", 1, 65535, -1, &spp, err)) ||
        (st = get_uint(ds, TAG_BITS_ALLOCATED, "Bits Allocated", 1, 65535, -1, &ba, err)))
        return st;
    if ((st = get_uint(ds, TAG_BITS_STORED, "Bits Stored", 1, ba, ba, &bs, err)) ||
        (st = get_uint(ds, TAG_HIGH_BIT, "High Bit", 0, 65535, bs - 1, &hb, err)) ||
        (st = get_uint(ds, TAG_PIXEL_REPRESENTATION, "Pixel Representation", 0, 1, 0, &pr, err)) ||
        (st = get_uint(ds, TAG_PLANAR_CONFIGURATION, "Planar Configuration", 0, 1, 0, &pc, err)) ||
        (st = get_uint(ds, TAG_NUMBER_OF_FRAMES, "Number of Frames", 1, UINT32_MAX, 1, &nf, err)))
        return st;
    /* PS3.5 8.1.1: High Bit is one less than Bits Stored (the samples are low-aligned). */
    if (hb != bs - 1)
        return vp_error_set(err, VP_EINVAL, "High Bit (0028,0102) is %lld, expected %lld",
                            (long long)hb, (long long)(bs - 1));
    /* PS3.5 8.1.1 allows Bits Allocated 1 or a multiple of 8. 1 is bit-packed (segmentation
     * and some old CR/ultrasound masks): frames are given unpacked, one byte per pixel. 24
     * and 64 are valid but nobody writes them for images. */
    if (ba % 8 != 0 && ba != 1)
        return vp_error_set(err, VP_EINVAL,
                            "Bits Allocated (0028,0100) is %lld, expected 1 or "
                            "a multiple of 8",
                            (long long)ba);
    if (ba != 1 && ba != 8 && ba != 16 && ba != 32)
        return vp_error_set(err, VP_EUNSUPPORTED, "Bits Allocated %lld not supported",
                            (long long)ba);
    if (dcm_dataset_copy_str(ds, TAG_PHOTOMETRIC, info->photometric, sizeof info->photometric))
        return vp_error_set(err, VP_EINVAL, "Photometric Interpretation (0028,0004) missing");
    /* PS3.3 C.7.6.3.1.2: monochrome and palette images have one sample, the colour spaces
     * three; four-sample ARGB/CMYK are retired. */
    const char *pi = info->photometric;
    bool one =
        !strcmp(pi, "MONOCHROME1") || !strcmp(pi, "MONOCHROME2") || !strcmp(pi, "PALETTE COLOR");
    bool three = !strcmp(pi, "RGB") || !strncmp(pi, "YBR_", 4);
    if ((one && spp != 1) || (three && spp != 3))
        return vp_error_set(err, VP_EINVAL,
                            "Samples per Pixel (0028,0002) is %lld, Photometric Interpretation "
                            "%s needs %d",
                            (long long)spp, pi, one ? 1 : 3);
    if (spp != 1 && spp != 3 && spp != 4)
        return vp_error_set(err, VP_EUNSUPPORTED, "Samples per Pixel %lld not supported",
                            (long long)spp);
    size_t frame, total;
    if (vp_mul_size((size_t)rows, (size_t)cols, &frame) ||
        vp_mul_size(frame, (size_t)spp * (size_t)(ba == 1 ? 1 : ba / 8), &frame) ||
        vp_mul_size(frame, (size_t)nf, &total) || total > UINT32_MAX)
        return vp_error_set(err, VP_ELIMIT,
                            "pixel data of %lld x %lld x %lld samples x %lld bits x %lld frames "
                            "is too large",
                            (long long)rows, (long long)cols, (long long)spp, (long long)ba,
                            (long long)nf);
    info->rows = (uint32_t)rows;
    info->columns = (uint32_t)cols;
    info->samples_per_pixel = (uint16_t)spp;
    info->bits_allocated = (uint16_t)ba;
    info->bits_stored = (uint16_t)bs;
    info->high_bit = (uint16_t)hb;
    info->pixel_representation = (uint16_t)pr;
    info->planar_configuration = spp > 1 ? (uint16_t)pc : 0;
    info->frames = (uint32_t)nf;
    info->frame_size = frame;
    return VP_OK;
}

/* Start of each fragment's item tag counted from the first item after the Basic Offset Table
 * (the origin of both offset tables, PS3.5 A.4), for fragments 1..n; pos[n+1] is the end. */
static vp_status fragment_positions(const dcm_element *px, uint64_t **out, vp_error *err)
{
    size_t n = dcm_element_fragment_count(px);
    uint64_t *pos = vp_calloc(n + 1, sizeof *pos);
    if (!pos)
        return vp_error_set(err, VP_ENOMEM, "out of memory");
    for (size_t i = 1; i < n; i++) {
        uint32_t len;
        dcm_element_fragment(px, i, &len, NULL);
        pos[i + 1] = pos[i] + 8 + (uint64_t)len;
    }
    *out = pos;
    return VP_OK;
}

/* Index i in [1, n) of the fragment whose item starts at off, or 0. Positions ascend. */
static uint32_t fragment_at(const uint64_t *pos, size_t n, uint64_t off)
{
    size_t lo = 1, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (pos[mid] < off)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && pos[lo] == off ? (uint32_t)lo : 0;
}

/* Whether a fragment begins a JPEG / JPEG-LS stream (SOI, ISO 10918-1 B.2.1) or a JPEG 2000
 * codestream (SOC then SIZ, ISO 15444-1 A.4.1) or JP2 file (signature box). */
static bool starts_stream(const uint8_t *p, uint32_t len)
{
    static const uint8_t jp2[] = {0, 0, 0, 0x0C, 'j', 'P', ' ', ' '};
    return (len >= 2 && p[0] == 0xFF && p[1] == 0xD8) ||
           (len >= 4 && p[0] == 0xFF && p[1] == 0x4F && p[2] == 0xFF && p[3] == 0x51) ||
           (len >= 8 && !memcmp(p, jp2, 8));
}

/* Transfer syntaxes whose frames can be found by their first bytes (PS3.5 A.4.1, A.4.3,
 * A.4.4, A.4.11): JPEG, JPEG-LS, JPEG 2000, HTJ2K. */
static bool self_delimiting(const char *ts)
{
    static const char *const suffix[] = {"50", "51", "57", "70",  "80",  "81", "90",
                                         "91", "92", "93", "201", "202", "203"};
    if (!ts || strncmp(ts, "1.2.840.10008.1.2.4.", 20))
        return false;
    for (size_t i = 0; i < sizeof suffix / sizeof suffix[0]; i++)
        if (!strcmp(ts + 20, suffix[i]))
            return true;
    return false;
}

/* Frames without a usable offset table (PS3.5 A.4): one frame takes every fragment, or one
 * fragment per frame, or, for the JPEG family's self-delimiting streams, each fragment that
 * begins a stream begins a frame. */
static vp_status by_fragments(img_frames *f, const char *ts, size_t n, vp_error *err)
{
    const dcm_element *px = f->pixel;
    uint32_t frames = f->info.frames;
    if (frames == 1) {
        f->loc[0] = (struct frame_loc){1, (uint32_t)(n - 1), UINT64_MAX};
        return VP_OK;
    }
    if (n - 1 == frames) {
        for (uint32_t i = 0; i < frames; i++)
            f->loc[i] = (struct frame_loc){i + 1, 1, UINT64_MAX};
        return VP_OK;
    }
    if (!self_delimiting(ts))
        return vp_error_set(err, VP_EPARSE,
                            "%u frames in %zu fragments without an offset table: cannot tell "
                            "where frames start",
                            frames, n - 1);
    /* PS3.5 A.4 lets a frame span fragments, and the JPEG family's streams announce their
     * own start, so each fragment that begins a stream begins a frame (what dcmtk and GDCM
     * do). */
    uint32_t k = 0;
    for (uint32_t i = 1; i < n; i++) {
        uint32_t len;
        const uint8_t *p = dcm_element_fragment(px, i, &len, NULL);
        bool start = p && starts_stream(p, len);
        if (i == 1 && !start)
            break;
        if (start) {
            if (k == frames) {
                k++;
                break;
            }
            f->loc[k++] = (struct frame_loc){i, 1, UINT64_MAX};
        } else {
            f->loc[k - 1].count++;
        }
    }
    if (k != frames)
        return vp_error_set(err, VP_EPARSE,
                            "%u frames in %zu fragments without an offset table, and the "
                            "fragments do not begin exactly %u streams",
                            frames, n - 1, frames);
    return VP_OK;
}

static vp_status locate_frames(img_frames *f, const char *ts, vp_error *err)
{
    const dcm_element *px = f->pixel;
    size_t n = dcm_element_fragment_count(px); /* including the Basic Offset Table */
    uint32_t frames = f->info.frames;
    if (n < 2)
        return vp_error_set(err, VP_EPARSE, "encapsulated pixel data has no fragments");
    if (n - 1 > UINT32_MAX)
        return vp_error_set(err, VP_ELIMIT, "too many fragments");
    f->loc = vp_calloc(frames, sizeof *f->loc);
    if (!f->loc)
        return vp_error_set(err, VP_ENOMEM, "out of memory");
    uint32_t bot_len;
    const uint8_t *bot = dcm_element_fragment(px, 0, &bot_len, NULL);
    const dcm_element *eot = dcm_dataset_find(f->ds, DCM_TAG_EXTENDED_OFFSET_TABLE);
    const dcm_element *eotl = dcm_dataset_find(f->ds, DCM_TAG_EXTENDED_OFFSET_TABLE_LENGTHS);
    uint64_t *pos = NULL;
    vp_status st = VP_OK;

    if (eot && dcm_element_length(eot)) {
        /* PS3.5 A.4: with an Extended Offset Table every frame is one fragment, the table
         * holds 64-bit offsets of each frame's item and the Lengths table its byte count. */
        const uint8_t *ov = dcm_element_value(eot), *lv = eotl ? dcm_element_value(eotl) : NULL;
        uint64_t want = (uint64_t)frames * 8;
        if (!ov || dcm_element_length(eot) != want || !lv || dcm_element_length(eotl) != want) {
            st = vp_error_set(err, VP_EPARSE,
                              "Extended Offset Table (7FE0,0001) and its Lengths (7FE0,0002) "
                              "need %llu bytes each for %u frames",
                              (unsigned long long)want, frames);
            goto done;
        }
        if ((st = fragment_positions(px, &pos, err)))
            goto done;
        for (uint32_t i = 0; i < frames; i++) {
            uint64_t off = (uint64_t)vp_le32(ov + 8 * i) | (uint64_t)vp_le32(ov + 8 * i + 4) << 32;
            uint64_t len = (uint64_t)vp_le32(lv + 8 * i) | (uint64_t)vp_le32(lv + 8 * i + 4) << 32;
            uint32_t k = fragment_at(pos, n, off);
            uint32_t flen = 0;
            if (k)
                dcm_element_fragment(px, k, &flen, NULL);
            if (!k || len > flen) {
                st = vp_error_set(err, VP_EPARSE,
                                  "Extended Offset Table frame %u (offset %llu, length %llu) "
                                  "is not one fragment",
                                  i, (unsigned long long)off, (unsigned long long)len);
                goto done;
            }
            f->loc[i] = (struct frame_loc){k, 1, len};
        }
    } else if (bot_len) {
        /* PS3.5 A.4: one 32-bit offset per frame, the first 0, each the start of the item of
         * the frame's first fragment; a frame runs up to the next frame's first fragment. */
        if (!bot || bot_len % 4 || bot_len / 4 != frames) {
            st = vp_error_set(err, VP_EPARSE,
                              "Basic Offset Table length %u, expected %llu for %u frames", bot_len,
                              (unsigned long long)frames * 4, frames);
            goto bad_table;
        }
        if ((st = fragment_positions(px, &pos, err)))
            goto done;
        for (uint32_t i = 0; i < frames; i++) {
            uint32_t k = fragment_at(pos, n, vp_le32(bot + 4 * i));
            if (!k || (i == 0 && k != 1) || (i > 0 && k <= f->loc[i - 1].first)) {
                st = vp_error_set(err, VP_EPARSE,
                                  "Basic Offset Table entry %u (%u) is not the start of a "
                                  "fragment after the previous frame's",
                                  i, vp_le32(bot + 4 * i));
                goto bad_table;
            }
            f->loc[i] = (struct frame_loc){k, 0, UINT64_MAX};
            if (i > 0)
                f->loc[i - 1].count = k - f->loc[i - 1].first;
        }
        f->loc[frames - 1].count = (uint32_t)n - f->loc[frames - 1].first;
    } else {
        st = by_fragments(f, ts, n, err);
    }
    goto done;
bad_table:
    /* A table that contradicts the fragments is a writer's bug (some GDCM versions wrote one
     * entry too many, each off by one); when the fragments themselves show the frames, use
     * them, as dcmtk does, and keep the table's error otherwise. */
    {
        vp_error alt = {0};
        if (by_fragments(f, ts, n, &alt) == VP_OK)
            st = VP_OK;
    }
done:
    vp_free(pos);
    return st;
}

vp_status img_frames_open(const dcm_dataset *ds, const char *ts, img_frames **out, vp_error *err)
{
    *out = NULL;
    const dcm_element *px = dcm_dataset_find(ds, DCM_TAG_PIXEL_DATA);
    if (!px)
        return vp_error_set(err, VP_EINVAL, "no Pixel Data (7FE0,0010)");
    if (dcm_element_is_skipped(px))
        return vp_error_set(err, VP_EINVAL, "Pixel Data (7FE0,0010) was not loaded");
    img_frames *f = vp_calloc(1, sizeof *f);
    if (!f)
        return vp_error_set(err, VP_ENOMEM, "out of memory");
    f->ds = ds;
    f->pixel = px;
    f->encapsulated = dcm_element_is_encapsulated(px);
    dcm_ts_info ti = dcm_ts_lookup(ts ? ts : DCM_TS_EXPLICIT_LE);
    vp_status st = img_info_get(ds, &f->info, err);
    if (st)
        goto fail;
    if (f->encapsulated != ti.encapsulated) {
        st = vp_error_set(err, VP_EPARSE, "Pixel Data is %s but transfer syntax %s is %s",
                          f->encapsulated ? "encapsulated" : "native", ts ? ts : "",
                          ti.encapsulated ? "encapsulated" : "native");
        goto fail;
    }
    if (f->encapsulated) {
        if (f->info.bits_allocated == 1) {
            st = vp_error_set(err, VP_EUNSUPPORTED,
                              "Bits Allocated 1 in encapsulated pixel data not supported");
            goto fail;
        }
        if ((st = locate_frames(f, ts, err)))
            goto fail;
    } else {
        /* PS3.5 8.1.1: frames follow one another with no padding; one trailing pad byte may
         * make the value even, so the value may be longer but never shorter. Bit-packed
         * frames (Bits Allocated 1) follow one another bit by bit, so one may start inside
         * a byte. YBR_FULL_422 stores two luminance and one pair of chrominance samples per
         * two pixels (PS3.3 C.7.6.3.1.2), two thirds of the decoded size. */
        const img_info *gi = &f->info;
        uint64_t need;
        if (gi->bits_allocated == 1) {
            f->stored_size = 0;
            need = ((uint64_t)gi->rows * gi->columns * gi->samples_per_pixel * gi->frames + 7) / 8;
        } else if (!strcmp(gi->photometric, "YBR_FULL_422")) {
            if (gi->columns % 2) {
                st = vp_error_set(err, VP_EPARSE,
                                  "YBR_FULL_422 needs an even number of Columns, not %u",
                                  gi->columns);
                goto fail;
            }
            f->stored_size = gi->frame_size / 3 * 2;
            need = (uint64_t)f->stored_size * gi->frames;
        } else {
            f->stored_size = gi->frame_size;
            need = (uint64_t)f->stored_size * gi->frames;
        }
        if (!dcm_element_value(px) || dcm_element_length(px) < need) {
            st = vp_error_set(err, VP_EPARSE,
                              "Pixel Data (7FE0,0010) has %u bytes, %u frames need %llu",
                              dcm_element_length(px), f->info.frames, (unsigned long long)need);
            goto fail;
        }
    }
    *out = f;
    return VP_OK;
fail:
    img_frames_free(f);
    return st;
}

void img_frames_free(img_frames *f)
{
    if (!f)
        return;
    vp_free(f->loc);
    vp_free(f);
}

const img_info *img_frames_info(const img_frames *f)
{
    return &f->info;
}

bool img_frames_encapsulated(const img_frames *f)
{
    return f->encapsulated;
}

vp_status img_frames_get(const img_frames *f, uint32_t n, vp_buf *out, vp_error *err)
{
    vp_buf_reset(out);
    if (n >= f->info.frames)
        return vp_error_set(err, VP_EINVAL, "frame %u out of range (%u frames)", n, f->info.frames);
    vp_status st;
    if (!f->encapsulated && f->info.bits_allocated == 1) {
        /* PS3.5 D.2: the first pixel in the least significant bit of the first byte. */
        size_t sz = f->info.frame_size;
        uint64_t bit = (uint64_t)n * sz;
        const uint8_t *p = dcm_element_value(f->pixel);
        if ((st = vp_buf_reserve(out, sz)))
            return vp_error_set(err, st, "frame of %zu bytes: %s", sz, vp_status_name(st));
        for (size_t i = 0; i < sz; i++, bit++)
            out->data[i] = (uint8_t)(p[bit >> 3] >> (bit & 7) & 1);
        out->len = sz;
        out->data[sz] = 0;
        return VP_OK;
    }
    if (!f->encapsulated) {
        size_t sz = f->stored_size;
        const uint8_t *p = dcm_element_value(f->pixel) + (size_t)n * sz;
        /* Big endian needs nothing more: the codec already swapped OW by 16-bit words and
         * left OB as bytes (PS3.5 7.3, A.3), as dcmtk does. A 32-bit sample in OW thus keeps
         * its words in little-endian order; files that reverse all four bytes (pydicom's
         * rtdose_expb.dcm) read differently, in dcmtk as here. */
        if ((st = vp_buf_append(out, p, sz)))
            return vp_error_set(err, st, "frame of %zu bytes: %s", sz, vp_status_name(st));
        return VP_OK;
    }
    const struct frame_loc *l = &f->loc[n];
    for (uint32_t i = 0; i < l->count; i++) {
        uint32_t len;
        const uint8_t *p = dcm_element_fragment(f->pixel, l->first + i, &len, NULL);
        if (!p && len)
            return vp_error_set(err, VP_EINVAL, "fragment %u of Pixel Data was not loaded",
                                l->first + i);
        size_t take = l->length < len ? (size_t)l->length : len;
        if (take && (st = vp_buf_append(out, p, take)))
            return vp_error_set(err, st, "frame %u: %s", n, vp_status_name(st));
    }
    return VP_OK;
}
