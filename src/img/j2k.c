/* SPDX-License-Identifier: MIT */
/*
 * JPEG 2000 (PS3.5 A.4.4, 8.2.4; ISO 15444-1) and High-Throughput JPEG 2000 (PS3.5 A.4.11,
 * 8.2.15; ISO 15444-15) frames, decoded by OpenJPEG from memory. DICOM stores a bare
 * codestream (SOC marker FF4F); a JP2 file (ISO 15444-1 Annex I), met in practice, is
 * recognised by its signature box and its contiguous codestream box decoded.
 *
 * OpenJPEG allocates from the SIZ marker when it reads the header, so SIZ is parsed here
 * first (ISO 15444-1 A.5.1) and must agree with the data set: size, components, precision,
 * no subsampling, a bounded tile count. Messages from OpenJPEG go to vp_error, never to a
 * terminal; strict mode makes a truncated codestream an error rather than a partial image.
 *
 * Colour (PS3.5 8.2.4): with YBR_RCT / YBR_ICT the codestream's multiple component
 * transform (COD SGcod) is undone by OpenJPEG, so the output is RGB and the photometric
 * interpretation becomes RGB whenever that transform was applied.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openjpeg.h>

#include "img/img.h"

/* Tiles allowed in one frame: OpenJPEG keeps a structure of several KB per tile, allocated
 * when it reads SIZ. DICOM encoders use one tile or a few hundred. */
#define J2K_MAX_TILES 16384
/* Decoding threads per frame (opj_codec_set_threads): measured on a 3000x2500 16-bit
 * lossless frame, 2 threads took 0.6 of the time of 1. */
#define J2K_THREADS 2

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint16_t be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

/*
 * The contiguous codestream box of a JP2 file (ISO 15444-1 I.5.4): boxes are LBox (4, 1 =
 * an 8-byte XLBox follows, 0 = to the end), TBox (4), contents. Sets *off and *n to the
 * codestream, or returns false.
 */
static bool jp2_codestream(const uint8_t *p, size_t len, size_t *off, size_t *n)
{
    size_t i = 0;
    while (len - i >= 8) {
        uint64_t box = be32(p + i), hdr = 8;
        if (box == 1) {
            if (len - i < 16)
                return false;
            box = (uint64_t)be32(p + i + 8) << 32 | be32(p + i + 12);
            hdr = 16;
        } else if (box == 0) {
            box = len - i;
        }
        if (box < hdr || box > len - i)
            return false;
        if (!memcmp(p + i + 4, "jp2c", 4)) {
            *off = i + (size_t)hdr;
            *n = (size_t)(box - hdr);
            return true;
        }
        i += (size_t)box;
    }
    return false;
}

/* Checks the SIZ marker segment (ISO 15444-1 A.5.1), which must follow SOC, against info. */
static vp_status check_siz(const uint8_t *p, size_t len, const img_info *info, vp_error *err)
{
    if (len < 4 || be16(p) != 0xFF4F || be16(p + 2) != 0xFF51)
        return vp_error_set(err, VP_EPARSE, "JPEG 2000 codestream without SOC and SIZ markers");
    if (len < 6 + 38)
        return vp_error_set(err, VP_EPARSE, "JPEG 2000 SIZ marker truncated");
    const uint8_t *s = p + 4;
    uint32_t lsiz = be16(s), csiz = be16(s + 36);
    if (lsiz != 38 + 3 * csiz || len - 4 < lsiz)
        return vp_error_set(err, VP_EPARSE, "JPEG 2000 SIZ length %u for %u components", lsiz,
                            csiz);
    uint32_t xsiz = be32(s + 4), ysiz = be32(s + 8), x0 = be32(s + 12), y0 = be32(s + 16);
    uint32_t xt = be32(s + 20), yt = be32(s + 24), xt0 = be32(s + 28), yt0 = be32(s + 32);
    if (x0 >= xsiz || y0 >= ysiz || xt == 0 || yt == 0 || xt0 > x0 || yt0 > y0)
        return vp_error_set(err, VP_EPARSE, "JPEG 2000 SIZ with an empty image or bad tiling");
    if (xsiz - x0 != info->columns || ysiz - y0 != info->rows)
        return vp_error_set(err, VP_EPARSE, "JPEG 2000 image is %ux%u, the data set says %ux%u",
                            xsiz - x0, ysiz - y0, info->columns, info->rows);
    if (csiz != info->samples_per_pixel)
        return vp_error_set(err, VP_EPARSE,
                            "JPEG 2000 image has %u components, Samples per Pixel is %u", csiz,
                            info->samples_per_pixel);
    uint64_t tx = ((uint64_t)xsiz - xt0 + xt - 1) / xt, ty = ((uint64_t)ysiz - yt0 + yt - 1) / yt;
    if (tx * ty > J2K_MAX_TILES)
        return vp_error_set(err, VP_ELIMIT, "JPEG 2000 image of %llu tiles (limit %d)",
                            (unsigned long long)(tx * ty), J2K_MAX_TILES);
    for (uint32_t c = 0; c < csiz; c++) {
        const uint8_t *q = s + 38 + 3 * c;
        unsigned prec = (q[0] & 0x7F) + 1u;
        if (prec > 16 || prec > info->bits_allocated)
            return vp_error_set(err, VP_EPARSE,
                                "JPEG 2000 component %u precision %u, Bits Allocated is %u", c,
                                prec, info->bits_allocated);
        if (q[1] != 1 || q[2] != 1)
            return vp_error_set(err, VP_EUNSUPPORTED, "JPEG 2000 component %u subsampled %ux%u", c,
                                q[1], q[2]);
    }
    return VP_OK;
}

/* The stream OpenJPEG reads: a window on the caller's bytes. */
struct mem {
    const uint8_t *p;
    size_t len, pos;
};

static OPJ_SIZE_T mem_read(void *buf, OPJ_SIZE_T n, void *user)
{
    struct mem *m = user;
    if (m->pos >= m->len)
        return (OPJ_SIZE_T)-1; /* end of stream */
    if (n > m->len - m->pos)
        n = m->len - m->pos;
    memcpy(buf, m->p + m->pos, n);
    m->pos += n;
    return n;
}

static OPJ_OFF_T mem_skip(OPJ_OFF_T n, void *user)
{
    struct mem *m = user;
    if (n < 0) {
        if ((uint64_t)-n > m->pos)
            return -1;
    } else if ((uint64_t)n > m->len - m->pos) {
        n = (OPJ_OFF_T)(m->len - m->pos);
    }
    m->pos = (size_t)((OPJ_OFF_T)m->pos + n);
    return n;
}

static OPJ_BOOL mem_seek(OPJ_OFF_T to, void *user)
{
    struct mem *m = user;
    if (to < 0 || (uint64_t)to > m->len)
        return OPJ_FALSE;
    m->pos = (size_t)to;
    return OPJ_TRUE;
}

/* The first error message OpenJPEG gives, without its trailing newline. */
static void on_error(const char *msg, void *user)
{
    char *buf = user;
    if (buf[0])
        return;
    snprintf(buf, VP_ERROR_MAX, "%s", msg);
    size_t n = strlen(buf);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = 0;
}

static void on_quiet(const char *msg, void *user)
{
    (void)msg, (void)user;
}

static vp_status decode_direct(const uint8_t *in, size_t len, const img_info *info, uint8_t *out,
                               size_t out_size, img_info *out_info, vp_error *err)
{
    static const uint8_t jp2_sig[12] = {0, 0, 0, 12, 'j', 'P', ' ', ' ', 13, 10, 0x87, 10};
    *out_info = *info;
    OPJ_CODEC_FORMAT fmt = OPJ_CODEC_J2K;
    const uint8_t *cs = in;
    size_t cs_len = len;
    if (len >= 12 && !memcmp(in, jp2_sig, 12)) {
        fmt = OPJ_CODEC_JP2;
        size_t off, n;
        if (!jp2_codestream(in, len, &off, &n))
            return vp_error_set(err, VP_EPARSE, "JP2 file without a codestream box");
        cs = in + off;
        cs_len = n;
    }
    vp_status st = check_siz(cs, cs_len, info, err);
    if (st)
        return st;
    size_t spp = info->samples_per_pixel, bytes = info->bits_allocated / 8;
    size_t pixels = (size_t)info->rows * info->columns;
    if (bytes != 1 && bytes != 2)
        return vp_error_set(err, VP_EUNSUPPORTED, "JPEG 2000 into Bits Allocated %u",
                            info->bits_allocated);
    if (out_size < pixels * spp * bytes)
        return vp_error_set(err, VP_EINVAL, "output of %zu bytes for a %zu-byte frame", out_size,
                            pixels * spp * bytes);

    char msg[VP_ERROR_MAX] = "";
    struct mem m = {in, len, 0};
    opj_image_t *image = NULL;
    opj_codestream_info_v2_t *cinfo = NULL;
    opj_codec_t *codec = opj_create_decompress(fmt);
    opj_stream_t *stream = opj_stream_create(OPJ_J2K_STREAM_CHUNK_SIZE, OPJ_TRUE);
    if (!codec || !stream) {
        st = vp_error_set(err, VP_ENOMEM, "out of memory");
        goto done;
    }
    opj_stream_set_user_data(stream, &m, NULL);
    opj_stream_set_user_data_length(stream, len);
    opj_stream_set_read_function(stream, mem_read);
    opj_stream_set_skip_function(stream, mem_skip);
    opj_stream_set_seek_function(stream, mem_seek);
    opj_set_error_handler(codec, on_error, msg);
    opj_set_warning_handler(codec, on_quiet, NULL);
    opj_set_info_handler(codec, on_quiet, NULL);
    opj_dparameters_t params;
    opj_set_default_decoder_parameters(&params);
    if (!opj_setup_decoder(codec, &params) || !opj_decoder_set_strict_mode(codec, OPJ_TRUE)) {
        st = vp_error_set(err, VP_EPARSE, "JPEG 2000 decoder setup: %s", msg);
        goto done;
    }
    if (opj_has_thread_support())
        opj_codec_set_threads(codec, J2K_THREADS);
    if (!opj_read_header(stream, codec, &image)) {
        st = vp_error_set(err, VP_EPARSE, "JPEG 2000 header: %s", msg[0] ? msg : "unreadable");
        goto done;
    }
    if (!opj_decode(codec, stream, image) || !opj_end_decompress(codec, stream)) {
        st = vp_error_set(err, VP_EPARSE, "JPEG 2000 data: %s", msg[0] ? msg : "undecodable");
        goto done;
    }
    /* What OpenJPEG produced, against what SIZ promised (a JP2 header may differ). */
    if (image->numcomps != spp) {
        st = vp_error_set(err, VP_EPARSE, "JPEG 2000 decoded %u components, expected %zu",
                          image->numcomps, spp);
        goto done;
    }
    for (size_t c = 0; c < spp; c++) {
        const opj_image_comp_t *k = &image->comps[c];
        if (!k->data || k->w != info->columns || k->h != info->rows || k->dx != 1 || k->dy != 1 ||
            k->prec > bytes * 8 || k->prec == 0) {
            st = vp_error_set(err, VP_EPARSE,
                              "JPEG 2000 component %zu decoded as %ux%u, %u bits, "
                              "expected %ux%u",
                              c, k->w, k->h, k->prec, info->columns, info->rows);
            goto done;
        }
    }
    /* Samples are ints within the component's range (OpenJPEG clips after the DC level
     * shift); signed ones keep their sign extension when cut to 8 or 16 bits. */
    for (size_t c = 0; c < spp; c++) {
        const OPJ_INT32 *d = image->comps[c].data;
        if (bytes == 1) {
            uint8_t *o = out + c;
            for (size_t i = 0; i < pixels; i++, o += spp)
                *o = (uint8_t)d[i];
        } else {
            uint8_t *o = out + 2 * c;
            for (size_t i = 0; i < pixels; i++, o += 2 * spp) {
                uint32_t v = (uint32_t)d[i];
                o[0] = (uint8_t)v;
                o[1] = (uint8_t)(v >> 8);
            }
        }
    }
    if (spp == 3 && (cinfo = opj_get_cstr_info(codec)) && cinfo->m_default_tile_info.mct)
        snprintf(out_info->photometric, sizeof out_info->photometric, "RGB");
    out_info->planar_configuration = 0;
done:
    if (cinfo)
        opj_destroy_cstr_info(&cinfo);
    if (image)
        opj_image_destroy(image);
    if (stream)
        opj_stream_destroy(stream);
    if (codec)
        opj_destroy_codec(codec);
    return st;
}

/*
 * Debian's OpenJPEG 2.5.0 is built with assert() on, and its HTJ2K block decoder asserts on
 * some damaged code-blocks (ht_dec.c mel_init; later releases return an error there), which
 * would abort the whole server. So the decode runs in a child process: the frame is written
 * into a shared mapping, and a child that dies is a damaged stream, not our death. fork()
 * costs a few milliseconds against a JPEG 2000 decode of tens to hundreds; the child only
 * decodes into memory and leaves with _exit(), taking no lock the parent's other threads
 * could hold besides malloc's, which glibc makes fork-safe.
 */
struct shared_result {
    volatile int done; /* set by the child last: it finished, whatever waitpid says */
    vp_status st;
    img_info info;
    char msg[VP_ERROR_MAX];
};

vp_status img_j2k_decode(const uint8_t *in, size_t len, const img_info *info, uint8_t *out,
                         size_t out_size, img_info *out_info, vp_error *err)
{
    size_t map_len = sizeof(struct shared_result) + out_size;
    void *map = mmap(NULL, map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED)
        return vp_error_set(err, VP_ENOMEM, "JPEG 2000: no memory for a %zu-byte frame", out_size);
    struct shared_result *r = map;
    uint8_t *frame = (uint8_t *)map + sizeof *r;
    r->done = 0;
    fflush(NULL); /* nothing buffered is written twice by the child */
    pid_t pid = fork();
    if (pid < 0) {
        munmap(map, map_len);
        return vp_error_set(err, VP_ENOMEM, "JPEG 2000: cannot start the decoder: %s",
                            strerror(errno));
    }
    if (pid == 0) {
        /* The library's assertion text would land in the server's log: its meaning is in
         * the message the parent gives. */
        int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
        if (null >= 0)
            dup2(null, STDERR_FILENO);
        vp_error cerr = {0};
        r->st = decode_direct(in, len, info, frame, out_size, &r->info, &cerr);
        memcpy(r->msg, cerr.msg, sizeof r->msg);
        __atomic_store_n(&r->done, 1, __ATOMIC_SEQ_CST);
        _exit(0);
    }
    int ws = 0;
    pid_t w;
    while ((w = waitpid(pid, &ws, 0)) < 0 && errno == EINTR)
        ;
    vp_status st;
    if (__atomic_load_n(&r->done, __ATOMIC_SEQ_CST)) {
        st = r->st;
        if (st == VP_OK) {
            memcpy(out, frame, out_size);
            *out_info = r->info;
        } else {
            vp_error_set(err, st, "%s", r->msg);
        }
    } else {
        st = vp_error_set(err, VP_EPARSE,
                          "JPEG 2000 data: the decoder failed on a damaged stream (%s %d)",
                          w == pid && WIFSIGNALED(ws) ? "signal" : "exit",
                          w == pid && WIFSIGNALED(ws) ? WTERMSIG(ws) : WEXITSTATUS(ws));
    }
    munmap(map, map_len);
    return st;
}
