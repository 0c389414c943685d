/* SPDX-License-Identifier: MIT */
/*
 * Ingest: stream to a temporary file, parse the header from it (never the pixel data), check,
 * commit to the store (fsync, rename, folder fsync), then to the index (one FULL-synchronous
 * transaction shared with concurrent objects). The order matters: an index row never points at
 * bytes that are not durable, and no success is reported before the row is committed.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app/ingest.h"
#include "dcm/dcm.h"
#include "idx/idx.h"
#include "img/img.h"
#include "store/store.h"

/* One index row waiting for the next group commit. */
struct pending {
    const idx_record *rec;
    vp_status st;
    vp_error err;
    bool done;
    struct pending *next;
};

/* Objects with the same SOP Instance UID are serialised from the duplicate check to the index
 * commit (the file on disk and the row must describe the same bytes); different UIDs hash to
 * one of these locks and go on in parallel. */
#define UID_LOCKS 64
/* Idle read connections kept for reuse. */
#define READERS_KEPT 8

struct ingest {
    store *store; /* object files */
    idx *idx;     /* the index; one connection, used under idx_lock */
    ingest_opts opts;
    pthread_mutex_t idx_lock;
    pthread_mutex_t queue_lock; /* guards queue and committing */
    pthread_cond_t queue_cond;
    struct pending *queue, **queue_tail;
    bool committing; /* a thread is running a group commit */
    /* Instances whose files became durable after their pending row was committed: their
     * mark is cleared in the next commit (guarded by queue_lock). */
    char (*settle)[DCM_UID_MAX + 1];
    size_t n_settle, cap_settle;
    pthread_mutex_t uid_locks[UID_LOCKS];
    uint64_t recovered_ok, recovered_removed; /* pending rows found at open */
    /* Queries read through a connection of their own, opened at the first one: in WAL mode
     * a reader sees a consistent snapshot and neither waits for nor delays the commits. */
    idx *qidx;
    pthread_mutex_t qidx_lock;
    /* Read connections lent to associations (C-FIND, C-MOVE, C-GET step cursors on them
     * while answering), kept for the next one: opening one prepares every statement. */
    idx *readers[READERS_KEPT];
    size_t n_readers; /* guarded by qidx_lock */
};

struct ingest_stream {
    ingest *g;
    store_writer *w;
    bool network; /* announced SOP Class/Instance to check */
    char sop_class[DCM_UID_MAX + 1];
    char sop_instance[DCM_UID_MAX + 1];
    uint64_t meta_len; /* bytes of preamble and meta group we wrote before the data set */
};

/* Pending rows found at open: their UIDs, collected before acting (no writes mid-walk). */
struct pending_rows {
    char (*uid)[DCM_UID_MAX + 1];
    store_object *obj;
    size_t n, cap;
};

static vp_status collect_pending(void *ctx, const char *uid, const idx_stored *row)
{
    struct pending_rows *p = ctx;
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 16;
        void *u = vp_realloc(p->uid, cap * sizeof *p->uid);
        if (u)
            p->uid = u;
        void *o = u ? vp_realloc(p->obj, cap * sizeof *p->obj) : NULL;
        if (o)
            p->obj = o;
        if (!u || !o)
            return VP_ENOMEM;
        p->cap = cap;
    }
    snprintf(p->uid[p->n], sizeof p->uid[0], "%s", uid);
    store_object *o = &p->obj[p->n++];
    memset(o, 0, sizeof *o);
    snprintf(o->path, sizeof o->path, "%s", row->path);
    o->size = row->size;
    memcpy(o->checksum, row->checksum, sizeof o->checksum);
    return VP_OK;
}

/*
 * Crash recovery. A new object's row is committed while its file is being synced (see
 * ingest_stream_end) and marked pending until the sync is confirmed. Rows still pending at
 * open belong to objects whose sync may not have completed before a crash; none of them was
 * acknowledged unless its file was durable. Each is checked against its file: a complete file
 * settles the row, anything else removes row and file (the sender, never told of success,
 * sends again).
 */
static vp_status recover(ingest *g, vp_error *err)
{
    struct pending_rows p = {0};
    vp_status st = idx_pending_each(g->idx, collect_pending, &p, err);
    if (st == VP_ENOMEM)
        vp_error_set(err, st, "out of memory");
    const char **ok = st == VP_OK ? vp_malloc((p.n + 1) * sizeof *ok) : NULL;
    if (st == VP_OK && !ok)
        st = vp_error_set(err, VP_ENOMEM, "out of memory");
    size_t n_ok = 0;
    for (size_t i = 0; st == VP_OK && i < p.n; i++) {
        vp_error e = {0};
        if (store_verify(g->store, &p.obj[i], &e) == VP_OK) {
            ok[n_ok++] = p.uid[i];
            continue;
        }
        if ((st = idx_instance_delete(g->idx, p.uid[i], err)) == VP_ENOTFOUND)
            st = VP_OK;
        store_remove(g->store, p.obj[i].path, NULL);
        g->recovered_removed++;
    }
    if (st == VP_OK && n_ok)
        st = idx_instance_put_batch(g->idx, NULL, 0, ok, n_ok, NULL, NULL, err);
    if (st == VP_OK)
        g->recovered_ok = n_ok;
    vp_free(ok);
    vp_free(p.uid);
    vp_free(p.obj);
    return st;
}

vp_status ingest_open(const char *data_dir, const ingest_opts *opts, ingest **out, vp_error *err)
{
    *out = NULL;
    ingest *g = vp_calloc(1, sizeof *g);
    if (!g)
        return vp_error_set(err, VP_ENOMEM, "out of memory");
    if (opts)
        g->opts = *opts;
    pthread_mutex_init(&g->idx_lock, NULL);
    pthread_mutex_init(&g->queue_lock, NULL);
    pthread_mutex_init(&g->qidx_lock, NULL);
    pthread_cond_init(&g->queue_cond, NULL);
    for (int i = 0; i < UID_LOCKS; i++)
        pthread_mutex_init(&g->uid_locks[i], NULL);
    g->queue_tail = &g->queue;
    vp_status st = store_open(data_dir, &g->store, err);
    if (st == VP_OK) {
        char path[4096];
        snprintf(path, sizeof path, "%s/index.db", store_root(g->store));
        st = idx_open(path, &g->idx, err);
    }
    if (st == VP_OK)
        st = recover(g, err);
    if (st) {
        ingest_close(g);
        return st;
    }
    *out = g;
    return VP_OK;
}

void ingest_recovered(const ingest *g, uint64_t *kept, uint64_t *removed)
{
    *kept = g->recovered_ok;
    *removed = g->recovered_removed;
}

void ingest_close(ingest *g)
{
    if (!g)
        return;
    if (g->idx && g->n_settle) {
        const char **settled = vp_malloc(g->n_settle * sizeof *settled);
        for (size_t i = 0; settled && i < g->n_settle; i++)
            settled[i] = g->settle[i];
        if (settled)
            idx_instance_put_batch(g->idx, NULL, 0, settled, g->n_settle, NULL, NULL, NULL);
        vp_free(settled);
    }
    vp_free(g->settle);
    idx_close(g->qidx);
    for (size_t i = 0; i < g->n_readers; i++)
        idx_close(g->readers[i]);
    pthread_mutex_destroy(&g->qidx_lock);
    idx_close(g->idx);
    store_close(g->store);
    pthread_mutex_destroy(&g->idx_lock);
    pthread_mutex_destroy(&g->queue_lock);
    pthread_cond_destroy(&g->queue_cond);
    for (int i = 0; i < UID_LOCKS; i++)
        pthread_mutex_destroy(&g->uid_locks[i]);
    vp_free(g);
}

/*
 * Group commit (the leader/follower scheme of database logs): a thread queues its row; if no
 * commit is running it becomes the leader and commits everything queued in one transaction,
 * else it waits. Rows queued while a commit runs go together in the next one, so N concurrent
 * senders cost about one WAL sync per round instead of N.
 */
static vp_status index_commit(ingest *g, const idx_record *rec, vp_error *err)
{
    struct pending me = {.rec = rec};
    pthread_mutex_lock(&g->queue_lock);
    *g->queue_tail = &me;
    g->queue_tail = &me.next;
    while (!me.done) {
        if (g->committing) {
            pthread_cond_wait(&g->queue_cond, &g->queue_lock);
            continue;
        }
        g->committing = true;
        struct pending *batch = g->queue;
        g->queue = NULL;
        g->queue_tail = &g->queue;
        char(*settle)[DCM_UID_MAX + 1] = g->settle;
        size_t n_settle = g->n_settle;
        g->settle = NULL;
        g->n_settle = g->cap_settle = 0;
        pthread_mutex_unlock(&g->queue_lock);

        size_t n = 0;
        for (struct pending *p = batch; p; p = p->next)
            n++;
        const idx_record **recs = vp_malloc(n * sizeof *recs);
        vp_status *res = vp_malloc(n * sizeof *res);
        vp_error *errs = vp_malloc(n * sizeof *errs);
        const char **settled = vp_malloc((n_settle + 1) * sizeof *settled);
        vp_error cerr = {0};
        vp_status cst;
        if (!recs || !res || !errs || !settled) {
            cst = vp_error_set(&cerr, VP_ENOMEM, "out of memory");
        } else {
            size_t k = 0;
            for (struct pending *p = batch; p; p = p->next)
                recs[k++] = p->rec;
            for (size_t i = 0; i < n_settle; i++)
                settled[i] = settle[i];
            pthread_mutex_lock(&g->idx_lock);
            cst = idx_instance_put_batch(g->idx, recs, n, settled, n_settle, res, errs, &cerr);
            pthread_mutex_unlock(&g->idx_lock);
        }
        /* Settles that did not commit stay pending rows: the next open checks their files,
         * which are durable, and clears them. Nothing is lost by dropping them here. */
        vp_free(settle);
        vp_free(settled);
        size_t k = 0;
        pthread_mutex_lock(&g->queue_lock);
        for (struct pending *p = batch, *next; p; p = next, k++) {
            next = p->next; /* p may be gone as soon as done is set */
            p->st = cst ? cst : res[k];
            p->err = cst ? cerr : errs[k];
            p->done = true;
        }
        g->committing = false;
        pthread_cond_broadcast(&g->queue_cond);
        vp_free(recs);
        vp_free(res);
        vp_free(errs);
    }
    pthread_mutex_unlock(&g->queue_lock);
    if (me.st)
        vp_error_set(err, me.st, "index: %s", me.err.msg);
    return me.st;
}

/* Clears the instance's pending mark with the next commit (no wait: until then, and after a
 * crash, the row is only "to be checked"). */
static void queue_settle(ingest *g, const char *uid)
{
    pthread_mutex_lock(&g->queue_lock);
    if (g->n_settle == g->cap_settle) {
        size_t cap = g->cap_settle ? g->cap_settle * 2 : 16;
        void *v = vp_realloc(g->settle, cap * sizeof *g->settle);
        if (v) {
            g->settle = v;
            g->cap_settle = cap;
        }
    }
    if (g->n_settle < g->cap_settle)
        snprintf(g->settle[g->n_settle++], sizeof g->settle[0], "%s", uid);
    pthread_mutex_unlock(&g->queue_lock);
}

static unsigned uid_lock_of(const char *uid)
{
    unsigned h = 2166136261u; /* FNV-1a */
    for (const char *c = uid; *c; c++)
        h = (h ^ (unsigned char)*c) * 16777619u;
    return h % UID_LOCKS;
}

vp_status ingest_stream_begin(ingest *g, const ingest_origin *origin, ingest_stream **out,
                              vp_error *err)
{
    *out = NULL;
    ingest_stream *s = vp_calloc(1, sizeof *s);
    if (!s)
        return vp_error_set(err, VP_ENOMEM, "out of memory");
    s->g = g;
    vp_status st = store_writer_new(g->store, &s->w, err);
    if (st == VP_OK && origin) {
        s->network = true;
        snprintf(s->sop_class, sizeof s->sop_class, "%s", origin->sop_class_uid);
        snprintf(s->sop_instance, sizeof s->sop_instance, "%s", origin->sop_instance_uid);
        dcm_dataset *meta = dcm_dataset_new();
        if (!meta)
            st = vp_error_set(err, VP_ENOMEM, "out of memory");
        if (st == VP_OK &&
            ((st = dcm_dataset_set_str(meta, DCM_TAG(0x0002, 0x0002), DCM_VR_UI,
                                       origin->sop_class_uid)) ||
             (st = dcm_dataset_set_str(meta, DCM_TAG(0x0002, 0x0003), DCM_VR_UI,
                                       origin->sop_instance_uid)) ||
             (origin->source_ae && (st = dcm_dataset_set_str(meta, DCM_TAG(0x0002, 0x0016),
                                                             DCM_VR_AE, origin->source_ae))) ||
             (origin->receiving_ae && (st = dcm_dataset_set_str(meta, DCM_TAG(0x0002, 0x0018),
                                                                DCM_VR_AE, origin->receiving_ae)))))
            vp_error_set(err, st, "out of memory");
        if (st == VP_OK) {
            /* The meta group goes through a small buffer: one write for the whole header. */
            vp_buf b;
            vp_buf_init(&b, 0);
            dcm_sink sink = dcm_sink_buf(&b);
            if ((st = dcm_part10_write_header(meta, origin->transfer_syntax, &sink, err)) == VP_OK)
                st = store_writer_write(s->w, b.data, b.len, err);
            s->meta_len = b.len;
            vp_buf_fini(&b);
        }
        dcm_dataset_free(meta);
    }
    if (st) {
        ingest_stream_cancel(s);
        return st;
    }
    *out = s;
    return VP_OK;
}

vp_status ingest_stream_write(ingest_stream *s, const void *p, size_t n, vp_error *err)
{
    return store_writer_write(s->w, p, n, err);
}

uint64_t ingest_stream_size(const ingest_stream *s)
{
    return store_writer_size(s->w);
}

void ingest_stream_cancel(ingest_stream *s)
{
    if (!s)
        return;
    store_writer_free(s->w);
    vp_free(s);
}

/* Whether the data set's UID at tag equals want (PS3.4 B.2.3: the data set must be what the
 * request announced). */
static vp_status check_uid(const dcm_dataset *ds, uint32_t tag, const char *what, const char *want,
                           vp_error *err)
{
    const char *v;
    size_t n;
    if (dcm_dataset_get_str(ds, tag, 0, &v, &n) != VP_OK)
        return vp_error_set(err, VP_EINVAL, "data set has no %s", what);
    /* The verdict first: an Error Comment keeps only 64 characters. */
    if (n != strlen(want) || memcmp(v, want, n) != 0)
        return vp_error_set(err, VP_EINVAL,
                            "%s differs from the request's: data set \"%.*s\", request \"%s\"",
                            what, (int)(n > 64 ? 64 : n), v, want);
    return VP_OK;
}

/* Largest tail after the pixel data that is parsed (padding, digital signatures): more is
 * not something a modality sends. */
#define TAIL_MAX (16u << 20)

/*
 * The header read stops at Pixel Data so a 2 GB clip is never loaded; what it does not see is
 * checked here, so that a truncated or corrupt object is refused rather than archived: the
 * pixel data must fit the file (the reader checks a native value's length and walks the
 * fragment items of encapsulated data) and whatever follows it must parse. A deflated data
 * set has no file offsets to check against, so it is parsed whole (bounded by max_inflated).
 */
static vp_status check_after_pixel_data(const char *path, const dcm_file *f, uint64_t size,
                                        const dcm_read_opts *ro, vp_error *err)
{
    const dcm_pixel_info *pi = dcm_file_pixel_info(f);
    if (!pi->present)
        return VP_OK; /* the read went to the end */
    if (!pi->offsets_in_file) {
        dcm_read_opts all = *ro;
        all.stop_at_tag = 0;
        dcm_file *whole = NULL;
        vp_status st = dcm_file_read(path, &all, &whole, err);
        dcm_file_free(whole);
        return st;
    }
    if (pi->value_offset > size || pi->value_length > size - pi->value_offset)
        return vp_error_set(err, VP_ETRUNC,
                            "pixel data (7FE0,0010) at offset %llu: length %llu exceeds the "
                            "%llu bytes remaining",
                            (unsigned long long)(pi->header_offset - ro->message_origin),
                            (unsigned long long)pi->value_length,
                            (unsigned long long)(size - pi->value_offset));
    uint64_t end = pi->value_offset + pi->value_length;
    if (end >= size || size - end > TAIL_MAX)
        return VP_OK;
    size_t n = (size_t)(size - end);
    uint8_t *tail = vp_malloc(n);
    if (!tail)
        return vp_error_set(err, VP_ENOMEM, "out of memory");
    vp_status st = VP_OK;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || pread(fd, tail, n, (off_t)end) != (ssize_t)n)
        st = vp_error_set(err, VP_EIO, "re-read: %s", strerror(errno));
    if (fd >= 0)
        close(fd);
    dcm_dataset *ds = NULL;
    vp_error terr = {0};
    if (st == VP_OK &&
        (st = dcm_dataset_read_mem(tail, n, dcm_file_transfer_syntax(f), ro, &ds, &terr)))
        vp_error_set(err, st, "after the pixel data (offset %llu): %s",
                     (unsigned long long)(end - ro->message_origin), terr.msg);
    dcm_dataset_free(ds);
    vp_free(tail);
    return st;
}

struct sync_job {
    store_writer *w;
    vp_status st;
    vp_error err;
};

static void *sync_main(void *arg)
{
    struct sync_job *j = arg;
    j->st = store_writer_finish_file(j->w, &j->err);
    return NULL;
}

/*
 * A new instance: its file's fsync (on a thread), the commit of its index row and then its
 * folder's fsync (here) run at the same time, so the sender waits for the slower of the two
 * paths instead of all three in a row. The
 * row is committed pending; the success is answered only after both completed, and the mark
 * is cleared with a later commit. After a crash in between, recover() checks pending rows
 * against their files. A failed sync removes the row again before the failure is answered.
 */
static vp_status commit_overlapped(ingest *g, ingest_stream *s, idx_record *rec, vp_error *err)
{
    struct sync_job job = {.w = s->w};
    s->w = NULL; /* finish owns it */
    pthread_t t;
    bool threaded = pthread_create(&t, NULL, sync_main, &job) == 0;
    if (!threaded)
        sync_main(&job); /* no thread to be had: one after the other */
    rec->pending = true;
    vp_status ist = index_commit(g, rec, err);
    vp_error ferr = {0};
    vp_status fst = store_sync_folder(g->store, rec->path, &ferr);
    if (threaded)
        pthread_join(t, NULL);
    if (job.st != VP_OK || fst != VP_OK) {
        if (job.st == VP_OK)
            store_remove(g->store, rec->path, NULL); /* its directory entry is not durable */
        if (ist == VP_OK) {
            /* The file is gone: so must the row be. Should this fail too, the row stays
             * pending and the next open removes it. */
            pthread_mutex_lock(&g->idx_lock);
            idx_instance_delete(g->idx, rec->sop_instance_uid, NULL);
            pthread_mutex_unlock(&g->idx_lock);
        }
        return job.st ? vp_error_set(err, job.st, "%s", job.err.msg)
                      : vp_error_set(err, fst, "%s", ferr.msg);
    }
    if (ist != VP_OK) {
        store_remove(g->store, rec->path, NULL); /* durable but never indexed */
        return ist;
    }
    queue_settle(g, rec->sop_instance_uid);
    return VP_OK;
}

/* A store writer as a codec sink. */
struct writer_sink {
    store_writer *w;
    vp_error err;
};

static vp_status writer_sink_write(void *ctx, const void *p, size_t n)
{
    struct writer_sink *k = ctx;
    return store_writer_write(k->w, p, n, &k->err);
}

/*
 * Compression at rest: the native image just written to tmp is read whole, its pixel data
 * encoded in g->opts.compress_ts (img_transcode, lossless only) and written to a new store
 * writer, which replaces the stream's when it is smaller. Any failure (an image the encoder
 * cannot hold, a read or write error) keeps the object as received: compression is a saving,
 * never a reason to refuse an object. Returns whether the stream now holds the compressed one.
 */
static bool compress_at_rest(ingest *g, ingest_stream *s, const char *tmp, idx_record *rec)
{
    vp_error err = {0};
    dcm_file *f = NULL;
    store_writer *w = NULL;
    bool done = false;
    const char *ts = g->opts.compress_ts;
    if (dcm_file_read(tmp, NULL, &f, &err) != VP_OK ||
        img_transcode(dcm_file_dataset(f), rec->transfer_syntax, ts, NULL, &err) != VP_OK ||
        store_writer_new(g->store, &w, &err) != VP_OK)
        goto out;
    struct writer_sink k = {.w = w};
    dcm_sink sink = {writer_sink_write, &k};
    if (dcm_part10_write(dcm_file_meta(f), dcm_file_dataset(f), ts, NULL, &sink, &err) != VP_OK ||
        store_writer_size(w) >= store_writer_size(s->w))
        goto out;
    store_writer_start_sync(w);
    store_writer_free(s->w);
    s->w = w;
    w = NULL;
    snprintf(rec->transfer_syntax, sizeof rec->transfer_syntax, "%s", ts);
    done = true;
out:
    store_writer_free(w);
    dcm_file_free(f);
    return done;
}

/* Statuses of the header parse as end documents them: a file that cannot be decoded is
 * EPARSE/ETRUNC, anything else (EIO reading the temp file, ENOMEM, ELIMIT) stays. */
vp_status ingest_stream_end(ingest_stream *s, ingest_outcome *outcome, vp_error *err)
{
    ingest *g = s->g;
    dcm_file *f = NULL;
    idx_record *rec = vp_calloc(1, sizeof *rec); /* zeroed: no metadata yet */
    bool locked = false;
    unsigned lk = 0;
    vp_status st = rec ? VP_OK : vp_error_set(err, VP_ENOMEM, "out of memory");
    if (st)
        goto done;
    store_writer_start_sync(s->w);
    /* Parse what was written, not the source: the archive indexes exactly its own bytes. */
    char tmp[4352];
    if ((st = store_writer_tmp_path(s->w, tmp, sizeof tmp))) {
        vp_error_set(err, st, "data folder path too long");
        goto done;
    }
    /* Error messages give offsets in the sender's data set, not in our file. */
    dcm_read_opts ro = {.stop_at_tag = DCM_TAG_PIXEL_DATA, .message_origin = s->meta_len};
    if ((st = dcm_file_read(tmp, &ro, &f, err)) ||
        (st = check_after_pixel_data(tmp, f, store_writer_size(s->w), &ro, err)))
        goto done;
    const dcm_dataset *ds = dcm_file_dataset(f);
    if (s->network &&
        ((st = check_uid(ds, DCM_TAG_SOP_CLASS_UID, "SOP Class UID", s->sop_class, err)) ||
         (st = check_uid(ds, DCM_TAG_SOP_INSTANCE_UID, "SOP Instance UID (0008,0018)",
                         s->sop_instance, err))))
        goto done;
    if ((st = idx_record_from_dataset(ds, rec, err)))
        goto done;
    /* The WADO-RS metadata, stored with the row (PS3.18 10.4.1.1.2): from this header read,
     * since it leaves Pixel Data out anyway. Compression at rest below changes only the
     * encoding (PS3.5 8.2), not the attributes. Failing to build it refuses nothing: the
     * row then has none and readers build it from the file. */
    idx_record_set_metadata(rec, ds, NULL);
    snprintf(rec->transfer_syntax, sizeof rec->transfer_syntax, "%s", dcm_file_transfer_syntax(f));
    /* The meta group must name the same SOP Instance as the data set (PS3.10 7.1). */
    const char *ms;
    size_t mlen;
    if (dcm_dataset_get_str(dcm_file_meta(f), DCM_TAG(0x0002, 0x0003), 0, &ms, &mlen) == VP_OK &&
        (mlen != strlen(rec->sop_instance_uid) || memcmp(ms, rec->sop_instance_uid, mlen))) {
        st = vp_error_set(err, VP_EINVAL,
                          "Media Storage SOP Instance UID (0002,0003) \"%.*s\" differs from "
                          "SOP Instance UID (0008,0018) \"%s\"",
                          (int)(mlen > 64 ? 64 : mlen), ms, rec->sop_instance_uid);
        goto done;
    }
    bool compress = g->opts.compress_ts && dcm_file_pixel_info(f)->present &&
                    !dcm_ts_lookup(rec->transfer_syntax).encapsulated;
    dcm_file_free(f);
    f = NULL;
    if (compress && compress_at_rest(g, s, tmp, rec)) {
        /* Pixel Data is now encapsulated (OB): the metadata describes the stored object, so
         * it is read again from its header; without it, readers use the file. */
        dcm_read_opts ho = {.stop_at_tag = DCM_TAG_PIXEL_DATA};
        if (store_writer_tmp_path(s->w, tmp, sizeof tmp) != VP_OK ||
            dcm_file_read(tmp, &ho, &f, NULL) != VP_OK ||
            idx_record_set_metadata(rec, dcm_file_dataset(f), NULL) != VP_OK)
            idx_record_fini(rec);
        dcm_file_free(f);
        f = NULL;
    }

    lk = uid_lock_of(rec->sop_instance_uid);
    pthread_mutex_lock(&g->uid_locks[lk]);
    locked = true;
    idx_stored old;
    pthread_mutex_lock(&g->idx_lock);
    vp_status found = idx_instance_get(g->idx, rec->sop_instance_uid, &old, err);
    pthread_mutex_unlock(&g->idx_lock);
    if (found != VP_OK && found != VP_ENOTFOUND) {
        st = found;
        goto done;
    }
    if (found == VP_OK) {
        uint8_t sum[STORE_CHECKSUM_SIZE];
        store_writer_checksum(s->w, sum);
        if (old.size == store_writer_size(s->w) && memcmp(old.checksum, sum, sizeof sum) == 0) {
            *outcome = INGEST_IDENTICAL; /* same bytes already durable: nothing rewritten */
            goto done;
        }
        if (g->opts.duplicates != INGEST_DUP_REPLACE) {
            bool reject = g->opts.duplicates == INGEST_DUP_REJECT;
            if (g->opts.on_duplicate)
                g->opts.on_duplicate(g->opts.ctx, rec->sop_instance_uid, INGEST_KEPT, reject);
            if (reject) {
                st = vp_error_set(err, VP_ECONFLICT,
                                  "SOP Instance %s is archived with other content",
                                  rec->sop_instance_uid);
                goto done;
            }
            *outcome = INGEST_KEPT;
            goto done;
        }
    }
    store_object obj;
    if ((st = store_writer_place(s->w, rec->study_uid, rec->sop_instance_uid, &obj, err)))
        goto done;
    snprintf(rec->path, sizeof rec->path, "%s", obj.path);
    rec->size = obj.size;
    memcpy(rec->checksum, obj.checksum, sizeof rec->checksum);
    if (found == VP_OK || obj.replaced) {
        /* A replacement: file durable first, then the row, one after the other (a pending
         * row that recovery removed would take the archived object's row with it). */
        st = store_writer_finish(s->w, err);
        s->w = NULL;
        if (st || (st = index_commit(g, rec, err)))
            goto done;
    } else if ((st = commit_overlapped(g, s, rec, err))) {
        goto done;
    }
    *outcome = found == VP_OK ? INGEST_REPLACED : INGEST_STORED;
    /* An instance that moved to another study has a new name: the old file goes once the
     * index no longer points to it (a failure only leaves an unreferenced file). */
    if (found == VP_OK && strcmp(old.path, obj.path) != 0)
        store_remove(g->store, old.path, NULL);
    if (found == VP_OK && g->opts.on_duplicate)
        g->opts.on_duplicate(g->opts.ctx, rec->sop_instance_uid, INGEST_REPLACED, false);
done:
    if (locked)
        pthread_mutex_unlock(&g->uid_locks[lk]);
    store_writer_free(s->w);
    vp_free(s);
    dcm_file_free(f);
    idx_record_fini(rec);
    vp_free(rec);
    return st;
}

vp_status ingest_file(ingest *g, const char *path, ingest_outcome *outcome, vp_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return vp_error_set(err, VP_EIO, "cannot open: %s", strerror(errno));
    ingest_stream *s = NULL;
    size_t cap = 1 << 20;
    uint8_t *buf = vp_malloc(cap);
    vp_status st =
        buf ? ingest_stream_begin(g, NULL, &s, err) : vp_error_set(err, VP_ENOMEM, "out of memory");
    while (st == VP_OK) {
        ssize_t k = read(fd, buf, cap);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            st = vp_error_set(err, VP_EIO, "read: %s", strerror(errno));
        if (k <= 0)
            break;
        st = ingest_stream_write(s, buf, (size_t)k, err);
    }
    vp_free(buf);
    close(fd);
    if (st) {
        ingest_stream_cancel(s);
        return st;
    }
    return ingest_stream_end(s, outcome, err);
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
    pthread_mutex_lock(&g->idx_lock);
    vp_status st = idx_count(g->idx, &c, err);
    pthread_mutex_unlock(&g->idx_lock);
    if (st)
        return st;
    struct verify_ctx v = {g, report, ctx, 0};
    pthread_mutex_lock(&g->idx_lock);
    st = idx_instance_each(g->idx, verify_one, &v, err);
    pthread_mutex_unlock(&g->idx_lock);
    if (st)
        return st;
    out->patients = c.patients;
    out->studies = c.studies;
    out->series = c.series;
    out->instances = c.instances;
    out->errors = v.errors;
    return VP_OK;
}

vp_status ingest_select(ingest *g, const char *sql, const char *const *params, size_t n,
                        idx_row_fn fn, void *ctx, vp_error *err)
{
    pthread_mutex_lock(&g->qidx_lock);
    vp_status st = VP_OK;
    if (!g->qidx) {
        char path[4096];
        snprintf(path, sizeof path, "%s/index.db", store_root(g->store));
        st = idx_open(path, &g->qidx, err);
    }
    if (st == VP_OK)
        st = idx_select(g->qidx, sql, params, n, fn, ctx, err);
    pthread_mutex_unlock(&g->qidx_lock);
    return st;
}

const char *ingest_data_dir(const ingest *g)
{
    return store_root(g->store);
}

vp_status ingest_reader_take(ingest *g, idx **out, vp_error *err)
{
    pthread_mutex_lock(&g->qidx_lock);
    *out = g->n_readers ? g->readers[--g->n_readers] : NULL;
    pthread_mutex_unlock(&g->qidx_lock);
    if (*out)
        return VP_OK;
    char path[4096];
    snprintf(path, sizeof path, "%s/index.db", store_root(g->store));
    return idx_open(path, out, err);
}

void ingest_reader_give(ingest *g, idx *x)
{
    if (!x)
        return;
    pthread_mutex_lock(&g->qidx_lock);
    if (g->n_readers < READERS_KEPT) {
        g->readers[g->n_readers++] = x;
        x = NULL;
    }
    pthread_mutex_unlock(&g->qidx_lock);
    idx_close(x);
}
