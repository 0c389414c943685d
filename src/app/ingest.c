/* SPDX-License-Identifier: MIT */
/*
 * Ingest: stream to a temporary file, parse the header from it (never the pixel data), check,
 * commit to the store (fsync, rename, folder fsync), then to the index (one FULL-synchronous
 * transaction). The order matters: an index row never points at bytes that are not durable.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app/ingest.h"
#include "dcm/dcm.h"
#include "idx/idx.h"
#include "store/store.h"

struct ingest {
    store *store; /* object files */
    idx *idx;     /* the index */
};

vp_status ingest_open(const char *data_dir, ingest **out, vp_error *err)
{
    *out = NULL;
    ingest *g = vp_calloc(1, sizeof *g);
    if (!g)
        return vp_error_set(err, VP_ENOMEM, "out of memory");
    vp_status st = store_open(data_dir, &g->store, err);
    if (st == VP_OK) {
        char path[4096];
        snprintf(path, sizeof path, "%s/index.db", store_root(g->store));
        st = idx_open(path, &g->idx, err);
    }
    if (st) {
        ingest_close(g);
        return st;
    }
    *out = g;
    return VP_OK;
}

void ingest_close(ingest *g)
{
    if (!g)
        return;
    idx_close(g->idx);
    store_close(g->store);
    vp_free(g);
}

/* Copies the file into a store writer in large chunks. */
static vp_status copy_in(store_writer *w, const char *path, vp_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return vp_error_set(err, VP_EIO, "cannot open: %s", strerror(errno));
    size_t cap = 1 << 20;
    uint8_t *buf = vp_malloc(cap);
    vp_status st = buf ? VP_OK : vp_error_set(err, VP_ENOMEM, "out of memory");
    while (st == VP_OK) {
        ssize_t k = read(fd, buf, cap);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            st = vp_error_set(err, VP_EIO, "read: %s", strerror(errno));
        if (k <= 0)
            break;
        st = store_writer_write(w, buf, (size_t)k, err);
    }
    vp_free(buf);
    close(fd);
    return st;
}

vp_status ingest_file(ingest *g, const char *path, ingest_outcome *outcome, vp_error *err)
{
    store_writer *w = NULL;
    dcm_file *f = NULL;
    vp_status st = store_writer_new(g->store, &w, err);
    if (st)
        return st;
    if ((st = copy_in(w, path, err)))
        goto done;
    /* Parse what was written, not the source: the archive indexes exactly its own bytes. */
    char tmp[4352];
    if ((st = store_writer_tmp_path(w, tmp, sizeof tmp))) {
        vp_error_set(err, st, "data folder path too long");
        goto done;
    }
    dcm_read_opts ro = {.stop_at_tag = DCM_TAG_PIXEL_DATA};
    if ((st = dcm_file_read(tmp, &ro, &f, err)))
        goto done;
    idx_record rec;
    if ((st = idx_record_from_dataset(dcm_file_dataset(f), &rec, err)))
        goto done;
    snprintf(rec.transfer_syntax, sizeof rec.transfer_syntax, "%s", dcm_file_transfer_syntax(f));
    /* The meta group must name the same SOP Instance as the data set (PS3.10 7.1). */
    const char *ms;
    size_t mlen;
    if (dcm_dataset_get_str(dcm_file_meta(f), DCM_TAG(0x0002, 0x0003), 0, &ms, &mlen) == VP_OK &&
        (mlen != strlen(rec.sop_instance_uid) || memcmp(ms, rec.sop_instance_uid, mlen))) {
        st = vp_error_set(err, VP_EINVAL,
                          "Media Storage SOP Instance UID (0002,0003) \"%.*s\" differs from "
                          "SOP Instance UID (0008,0018) \"%s\"",
                          (int)(mlen > 64 ? 64 : mlen), ms, rec.sop_instance_uid);
        goto done;
    }
    idx_stored old;
    vp_status found = idx_instance_get(g->idx, rec.sop_instance_uid, &old, err);
    if (found != VP_OK && found != VP_ENOTFOUND) {
        st = found;
        goto done;
    }
    if (found == VP_OK && old.size == store_writer_size(w)) {
        uint8_t sum[STORE_CHECKSUM_SIZE];
        store_writer_checksum(w, sum);
        if (memcmp(old.checksum, sum, sizeof sum) == 0) {
            *outcome = INGEST_IDENTICAL; /* same bytes already durable: nothing rewritten */
            goto done;
        }
    }
    store_object obj;
    st = store_writer_commit(w, rec.sop_instance_uid, &obj, err);
    w = NULL; /* spent either way */
    if (st)
        goto done;
    snprintf(rec.path, sizeof rec.path, "%s", obj.path);
    rec.size = obj.size;
    memcpy(rec.checksum, obj.checksum, sizeof rec.checksum);
    if ((st = idx_instance_put(g->idx, &rec, err)))
        goto done;
    *outcome = found == VP_OK ? INGEST_REPLACED : INGEST_STORED;
done:
    store_writer_free(w);
    dcm_file_free(f);
    return st;
}

struct verify_ctx {
    ingest *g;
    void (*report)(void *ctx, const char *msg);
    void *report_ctx;
    uint64_t errors;
};

static vp_status verify_one(void *ctx, const char *uid, const idx_stored *row)
{
    struct verify_ctx *v = ctx;
    store_object obj;
    snprintf(obj.path, sizeof obj.path, "%s", row->path);
    obj.size = row->size;
    memcpy(obj.checksum, row->checksum, sizeof obj.checksum);
    vp_error e;
    vp_error_clear(&e);
    vp_status st = store_verify(v->g->store, &obj, &e);
    if (st == VP_ENOMEM)
        return st;
    if (st != VP_OK) {
        v->errors++;
        if (v->report) {
            char msg[VP_ERROR_MAX + 80];
            snprintf(msg, sizeof msg, "%s: %s", uid, e.msg);
            v->report(v->report_ctx, msg);
        }
    }
    return VP_OK;
}

vp_status ingest_verify(ingest *g, void (*report)(void *ctx, const char *msg), void *ctx,
                        ingest_check *out, vp_error *err)
{
    memset(out, 0, sizeof *out);
    idx_counts c;
    vp_status st = idx_count(g->idx, &c, err);
    if (st)
        return st;
    struct verify_ctx v = {g, report, ctx, 0};
    if ((st = idx_instance_each(g->idx, verify_one, &v, err)))
        return st;
    out->patients = c.patients;
    out->studies = c.studies;
    out->series = c.series;
    out->instances = c.instances;
    out->errors = v.errors;
    return VP_OK;
}
