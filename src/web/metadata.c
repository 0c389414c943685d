/* SPDX-License-Identifier: MIT */
/*
 * WADO-RS metadata (PS3.18 10.4.1.1.2): the JSON array of the DICOM JSON objects (Annex F.2)
 * of a study's, a series' or one instance's instances, streamed from the metadata the index
 * keeps per instance. Each stored object is copied as is, except its BulkDataURI values: the
 * index keeps them relative ("bulkdata/7FE00010", F.2.6), and they are made absolute here
 * with the request's base URL and the instance's UIDs, so a viewer behind any host name or
 * proxy path gets URIs it can follow. The stored objects are compact JSON, where the bytes
 * "BulkDataURI":" can only be that key followed by its value (a quote inside a string is
 * always escaped), so the rewrite is a byte search, without parsing.
 *
 * Instances indexed before the index kept metadata have none: their object is built from the
 * stored file (its header, up to Pixel Data) with the same function the ingest uses, and, when
 * asked, kept in the index for the next request.
 */
#include <stdio.h>
#include <string.h>

#include "web/metadata.h"

/* The key the stored relative URIs follow, and their start. */
static const char marker[] = "\"BulkDataURI\":\"";
static const char relative[] = IDX_METADATA_BULK_PREFIX "/";
/* Bytes of built metadata kept for the backfill of one request (more waits for the next). */
#define BACKFILL_MAX (16u << 20)

struct mw {
    const web_metadata_opts *o;
    dcm_sink *sink; /* NULL: out is the destination itself */
    vp_buf *out;    /* where objects go: the chunk for the sink, or the caller's body */
    vp_buf chunk;
    vp_buf base;   /* base_url escaped for a JSON string */
    vp_buf built;  /* an object built from a file */
    vp_buf prefix; /* absolute URI of the current instance, escaped, with its "/" */
    size_t count;  /* objects written */
    bool flushed;  /* some bytes reached the sink */
    idx_metadata_fill *fill;
    size_t n_fill, cap_fill, fill_bytes;
    vp_error *err;
};

/* Appends s as the inside of a JSON string (RFC 8259 7): quote, backslash and control
 * characters escaped. The base URL comes from the request (Host header): never trusted. */
static vp_status put_escaped(vp_buf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    vp_status st = VP_OK;
    for (const unsigned char *p = (const unsigned char *)s; *p && st == VP_OK; p++) {
        if (*p == '"' || *p == '\\') {
            char e[2] = {'\\', (char)*p};
            st = vp_buf_append(b, e, 2);
        } else if (*p < 0x20) {
            char e[6] = {'\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 15]};
            st = vp_buf_append(b, e, 6);
        } else {
            st = vp_buf_putc(b, *p);
        }
    }
    return st;
}

static vp_status flush(struct mw *w, bool all)
{
    if (!w->sink || (!all && w->chunk.len < WEB_METADATA_CHUNK) || !w->chunk.len)
        return VP_OK;
    vp_status st = w->sink->write(w->sink->ctx, w->chunk.data, w->chunk.len);
    w->flushed = true;
    vp_buf_reset(&w->chunk);
    return st ? vp_error_set(w->err, st, "writing the response: %s", vp_status_name(st)) : VP_OK;
}

/* Copies one stored object to the output, its relative BulkDataURIs made absolute. */
static vp_status put_object(struct mw *w, const idx_metadata *m, const char *json, size_t len)
{
    const char *p = json, *end = json + len;
    const size_t ml = sizeof marker - 1, rl = sizeof relative - 1;
    vp_status st = VP_OK;
    bool have_prefix = false;
    while (st == VP_OK && p < end) {
        const char *hit = memmem(p, (size_t)(end - p), marker, ml);
        if (!hit) {
            st = vp_buf_append(w->out, p, (size_t)(end - p));
            break;
        }
        hit += ml;
        st = vp_buf_append(w->out, p, (size_t)(hit - p));
        p = hit;
        if (st || (size_t)(end - p) < rl || memcmp(p, relative, rl) != 0)
            continue; /* not one of ours: kept as it is */
        if (!have_prefix) {
            vp_buf_reset(&w->prefix);
            if ((st = vp_buf_append(&w->prefix, w->base.data, w->base.len)) ||
                (st = vp_buf_puts(&w->prefix, "/studies/")) ||
                (st = put_escaped(&w->prefix, m->study_uid)) ||
                (st = vp_buf_puts(&w->prefix, "/series/")) ||
                (st = put_escaped(&w->prefix, m->series_uid)) ||
                (st = vp_buf_puts(&w->prefix, "/instances/")) ||
                (st = put_escaped(&w->prefix, m->sop_instance_uid)) ||
                (st = vp_buf_putc(&w->prefix, '/')))
                break;
            have_prefix = true;
        }
        st = vp_buf_append(w->out, w->prefix.data, w->prefix.len);
    }
    return st ? vp_error_set(w->err, st, "metadata: %s", vp_status_name(st)) : VP_OK;
}

/* The object of an instance without stored metadata, from its file (header only). */
static vp_status build_from_file(struct mw *w, const idx_metadata *m)
{
    if (!w->o->data_dir)
        return vp_error_set(w->err, VP_EIO, "instance %s: no metadata and no data folder",
                            m->sop_instance_uid);
    char path[4352];
    int n = snprintf(path, sizeof path, "%s/%s", w->o->data_dir, m->path);
    if (n < 0 || (size_t)n >= sizeof path)
        return vp_error_set(w->err, VP_EIO, "instance %s: path too long", m->sop_instance_uid);
    dcm_read_opts ro = {.stop_at_tag = DCM_TAG_PIXEL_DATA};
    dcm_file *f = NULL;
    vp_error ferr = {0};
    vp_status st = dcm_file_read(path, &ro, &f, &ferr);
    if (st) {
        dcm_file_free(f);
        return vp_error_set(w->err, st == VP_ENOMEM ? VP_ENOMEM : VP_EIO,
                            "instance %s: stored object %s: %s", m->sop_instance_uid, m->path,
                            ferr.msg);
    }
    vp_buf_reset(&w->built);
    st = idx_metadata_build(dcm_file_dataset(f), &w->built, w->err);
    dcm_file_free(f);
    return st;
}

/* Keeps a copy of a built object for idx_metadata_backfill (best effort: no room, no copy). */
static void keep_for_backfill(struct mw *w, const idx_metadata *m)
{
    if (!w->o->backfill || w->fill_bytes + w->built.len > BACKFILL_MAX)
        return;
    if (w->n_fill == w->cap_fill) {
        size_t cap = w->cap_fill ? w->cap_fill * 2 : 16;
        void *v = vp_realloc(w->fill, cap * sizeof *w->fill);
        if (!v)
            return;
        w->fill = v;
        w->cap_fill = cap;
    }
    size_t ul = strlen(m->sop_instance_uid);
    char *copy = vp_malloc(ul + 1 + w->built.len);
    if (!copy)
        return;
    memcpy(copy, m->sop_instance_uid, ul + 1);
    memcpy(copy + ul + 1, w->built.data, w->built.len);
    idx_metadata_fill *f = &w->fill[w->n_fill++];
    f->sop_instance_uid = copy;
    memcpy(f->checksum, m->checksum, sizeof f->checksum);
    f->json = copy + ul + 1;
    f->json_len = w->built.len;
    w->fill_bytes += w->built.len;
}

static vp_status on_instance(void *ctx, const idx_metadata *m)
{
    struct mw *w = ctx;
    const char *json = m->json;
    size_t len = m->json_len;
    vp_status st;
    if (!json) {
        if ((st = build_from_file(w, m)))
            return st;
        json = (const char *)w->built.data;
        len = w->built.len;
        keep_for_backfill(w, m);
    }
    if ((st = vp_buf_putc(w->out, w->count ? ',' : '[')))
        return vp_error_set(w->err, st, "metadata: %s", vp_status_name(st));
    w->count++;
    if ((st = put_object(w, m, json, len)))
        return st;
    return flush(w, false);
}

static int http_status(vp_status st)
{
    return st == VP_ENOTFOUND ? 404 : st == VP_ENOMEM ? 503 : 500;
}

/* The UIDs of the path (PS3.18 10.4.1: {study}, {series}, {instance} are UIDs). */
static int check_uid(const char *uid, const char *what, vp_error *err)
{
    if (uid && !dcm_uid_valid(uid, strlen(uid))) {
        vp_error_set(err, VP_EINVAL, "%s \"%.64s\" is not a valid UID", what, uid);
        return 400;
    }
    return 200;
}

static int run(idx *reader, const char *study_uid, const char *series_uid,
               const char *sop_instance_uid, const web_metadata_opts *opts, dcm_sink *sink,
               vp_buf *body, vp_error *err)
{
    static const web_metadata_opts defaults = {.base_url = ""};
    if (!study_uid || (sop_instance_uid && !series_uid)) {
        vp_error_set(err, VP_EINVAL, "a metadata resource names its study (and series)");
        return 400;
    }
    int code;
    if ((code = check_uid(study_uid, "Study Instance UID", err)) != 200 ||
        (code = check_uid(series_uid, "Series Instance UID", err)) != 200 ||
        (code = check_uid(sop_instance_uid, "SOP Instance UID", err)) != 200)
        return code;
    struct mw w = {.o = opts ? opts : &defaults, .sink = sink, .err = err};
    vp_buf_init(&w.chunk, 0);
    vp_buf_init(&w.base, 0);
    vp_buf_init(&w.built, IDX_METADATA_MAX);
    vp_buf_init(&w.prefix, 0);
    w.out = sink ? &w.chunk : body;
    vp_status st = put_escaped(&w.base, w.o->base_url ? w.o->base_url : "");
    if (st)
        vp_error_set(err, st, "metadata: %s", vp_status_name(st));
    else
        st = idx_metadata_each(reader, study_uid, series_uid, sop_instance_uid, on_instance, &w,
                               err);
    if (st == VP_ENOTFOUND)
        vp_error_set(err, st, "no %s %s",
                     sop_instance_uid ? "instance"
                     : series_uid     ? "series"
                                      : "study",
                     sop_instance_uid ? sop_instance_uid
                     : series_uid     ? series_uid
                                      : study_uid);
    if (st == VP_OK && (st = vp_buf_putc(w.out, ']')))
        vp_error_set(err, st, "metadata: %s", vp_status_name(st));
    if (st == VP_OK)
        st = flush(&w, true);
    code = st == VP_OK ? 200 : http_status(st);
    /* The backfill comes after the answer is complete: a busy writer delays only it. A
     * failure loses nothing (the next request builds the objects again). */
    if (w.n_fill) {
        if (code == 200)
            idx_metadata_backfill(reader, w.fill, w.n_fill, NULL);
        for (size_t i = 0; i < w.n_fill; i++)
            vp_free((void *)w.fill[i].sop_instance_uid);
    }
    vp_free(w.fill);
    vp_buf_fini(&w.chunk);
    vp_buf_fini(&w.base);
    vp_buf_fini(&w.built);
    vp_buf_fini(&w.prefix);
    return code;
}

int web_metadata_write(idx *reader, const char *study_uid, const char *series_uid,
                       const char *sop_instance_uid, const web_metadata_opts *opts, dcm_sink *sink,
                       vp_error *err)
{
    return run(reader, study_uid, series_uid, sop_instance_uid, opts, sink, NULL, err);
}

int web_metadata_get(idx *reader, const char *study_uid, const char *series_uid,
                     const char *sop_instance_uid, const web_metadata_opts *opts, vp_buf *body,
                     vp_error *err)
{
    vp_buf_reset(body);
    int code = run(reader, study_uid, series_uid, sop_instance_uid, opts, NULL, body, err);
    if (code != 200)
        vp_buf_reset(body);
    return code;
}
