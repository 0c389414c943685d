/* SPDX-License-Identifier: MIT */
/*
 * Durable object files: temporary file, XXH3-128 while writing, fsync, rename, fsync of every
 * directory whose entries changed. "Durable" means power-safe: a rename is only on disk once
 * its directory is synced, and a new fan-out folder only once its parent is.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store.h"

/* XXH3 compiled in from the header (libxxhash-dev): no library to link, and the compiler
 * inlines the hot loop. */
#define XXH_INLINE_ALL
#include <xxhash.h>

#define STORE_WRITEBACK_STEP (4u << 20)

struct store {
    char *root;  /* data folder, no trailing slash */
    int root_fd; /* open root folder, for *at calls */
};

struct store_writer {
    store *s;                    /* owner */
    int fd;                      /* temporary file, -1 once closed */
    char tmp[64];                /* temporary name relative to root */
    uint64_t size;               /* bytes written */
    uint64_t started;            /* bytes whose write-back was started */
    bool synced;                 /* fsync'd already (a replacement, before its rename) */
    char placed[STORE_PATH_MAX]; /* final name once renamed there, else "" */
    XXH3_state_t *hash;          /* running XXH3-128 */
};

static vp_status sync_dir_at(int dirfd, const char *rel, vp_error *err)
{
    int fd = openat(dirfd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return vp_error_set(err, VP_EIO, "open folder %s: %s", rel, strerror(errno));
    int rc = vp_io_fsync(fd);
    int e = errno;
    close(fd);
    if (rc != 0)
        return vp_error_set(err, VP_EIO, "fsync folder %s: %s", rel, strerror(e));
    return VP_OK;
}

/* mkdir that is durable: the new entry is synced in its parent. */
static vp_status mkdir_durable(int rootfd, const char *rel, const char *parent, vp_error *err)
{
    if (mkdirat(rootfd, rel, 0777) == 0)
        return sync_dir_at(rootfd, parent, err);
    if (errno == EEXIST)
        return VP_OK;
    return vp_error_set(err, VP_EIO, "create folder %s: %s", rel, strerror(errno));
}

vp_status store_open(const char *root, store **out, vp_error *err)
{
    *out = NULL;
    if (mkdir(root, 0777) != 0 && errno != EEXIST)
        return vp_error_set(err, VP_EIO, "create %s: %s", root, strerror(errno));
    store *s = vp_calloc(1, sizeof *s);
    if (!s)
        return vp_error_set(err, VP_ENOMEM, "out of memory");
    s->root_fd = -1;
    size_t n = strlen(root);
    while (n > 1 && root[n - 1] == '/')
        n--;
    s->root = vp_malloc(n + 1);
    vp_status st;
    if (!s->root) {
        st = vp_error_set(err, VP_ENOMEM, "out of memory");
        goto fail;
    }
    memcpy(s->root, root, n);
    s->root[n] = 0;
    s->root_fd = open(s->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->root_fd < 0) {
        st = vp_error_set(err, VP_EIO, "open %s: %s", s->root, strerror(errno));
        goto fail;
    }
    if ((st = mkdir_durable(s->root_fd, "tmp", ".", err)) ||
        (st = mkdir_durable(s->root_fd, "objects", ".", err)))
        goto fail;
    /* Anything left in tmp was never acknowledged: a crash mid-transfer. */
    int tfd = openat(s->root_fd, "tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = tfd >= 0 ? fdopendir(tfd) : NULL;
    if (!d && tfd >= 0)
        close(tfd);
    for (struct dirent *e; d && (e = readdir(d));)
        if (e->d_name[0] != '.')
            unlinkat(dirfd(d), e->d_name, 0);
    if (d)
        closedir(d);
    *out = s;
    return VP_OK;
fail:
    store_close(s);
    return st;
}

void store_close(store *s)
{
    if (!s)
        return;
    if (s->root_fd >= 0)
        close(s->root_fd);
    vp_free(s->root);
    vp_free(s);
}

const char *store_root(const store *s)
{
    return s->root;
}

vp_status store_writer_new(store *s, store_writer **out, vp_error *err)
{
    *out = NULL;
    store_writer *w = vp_calloc(1, sizeof *w);
    if (!w)
        return vp_error_set(err, VP_ENOMEM, "out of memory");
    w->s = s;
    w->fd = -1;
    for (int attempt = 0; attempt < 16 && w->fd < 0; attempt++) {
        uint64_t r;
        if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
            r = ((uint64_t)getpid() << 20) ^ (uint64_t)attempt;
        snprintf(w->tmp, sizeof w->tmp, "tmp/%016llx", (unsigned long long)r);
        w->fd = openat(s->root_fd, w->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (w->fd < 0 && errno != EEXIST)
            break;
    }
    if (w->fd < 0) {
        vp_status st = vp_error_set(err, VP_EIO, "create temporary file: %s", strerror(errno));
        vp_free(w);
        return st;
    }
    if (!(w->hash = XXH3_createState()) || XXH3_128bits_reset(w->hash) != XXH_OK) {
        store_writer_free(w);
        return vp_error_set(err, VP_ENOMEM, "out of memory");
    }
    *out = w;
    return VP_OK;
}

vp_status store_writer_write(store_writer *w, const void *p, size_t n, vp_error *err)
{
    if (w->fd < 0)
        return vp_error_set(err, VP_EINVAL, "writer already closed");
    XXH3_128bits_update(w->hash, p, n);
    const uint8_t *q = p;
    size_t left = n;
    while (left) {
        ssize_t k = vp_io_write(w->fd, q, left);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return vp_error_set(err, VP_EIO, "write: %s", k < 0 ? strerror(errno) : "no progress");
        q += k;
        left -= (size_t)k;
    }
    w->size += n;
#ifdef SYNC_FILE_RANGE_WRITE
    /* Large objects: start writing back every few MiB while the rest arrives, so the final
     * fsync finds little left to do and the disk works in parallel with the network. */
    if (w->size - w->started >= STORE_WRITEBACK_STEP) {
        sync_file_range(w->fd, (off_t)w->started, (off_t)(w->size - w->started),
                        SYNC_FILE_RANGE_WRITE);
        w->started = w->size;
    }
#endif
    return VP_OK;
}

void store_writer_start_sync(store_writer *w)
{
#ifdef SYNC_FILE_RANGE_WRITE
    if (w->fd >= 0 && w->size > w->started) {
        sync_file_range(w->fd, (off_t)w->started, (off_t)(w->size - w->started),
                        SYNC_FILE_RANGE_WRITE);
        w->started = w->size;
    }
#else
    (void)w;
#endif
}

uint64_t store_writer_size(const store_writer *w)
{
    return w->size;
}

void store_writer_checksum(const store_writer *w, uint8_t out[STORE_CHECKSUM_SIZE])
{
    XXH128_canonical_t c; /* big-endian bytes, the same on every machine */
    XXH128_canonicalFromHash(&c, XXH3_128bits_digest(w->hash));
    memcpy(out, c.digest, STORE_CHECKSUM_SIZE);
}

vp_status store_writer_tmp_path(const store_writer *w, char *buf, size_t size)
{
    int n = snprintf(buf, size, "%s/%s", w->s->root, w->tmp);
    return n < 0 || (size_t)n >= size ? VP_ELIMIT : VP_OK;
}

/* Whether s is shaped like a UID (PS3.5 9.1): at most 64 characters, digits in components
 * separated by single dots. Such a name can never be "." or "..", hold a '/', or collide
 * with our own files. */
static bool uid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64 || s[0] == '.' || s[n - 1] == '.')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] == '.' && s[i + 1] != '.')))
            return false;
    return true;
}

vp_status store_path_for(const char *group, const char *key, char path[STORE_PATH_MAX])
{
    if (!uid_name(group) || !uid_name(key))
        return VP_EINVAL;
    /* 8 bits of XXH3-128(group): 256 top folders that fill evenly whatever the UID root (the
     * UIDs of one device share long prefixes). */
    uint8_t h[16];
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits(group, strlen(group)));
    memcpy(h, c.digest, sizeof c.digest);
    snprintf(path, STORE_PATH_MAX, "objects/%02x/%s/%s.dcm", h[0], group, key);
    return VP_OK;
}

vp_status store_writer_place(store_writer *w, const char *group, const char *key, store_object *out,
                             vp_error *err)
{
    store *s = w->s;
    if (w->fd < 0 || w->placed[0])
        return vp_error_set(err, VP_EINVAL, "writer already placed or closed");
    if (store_path_for(group, key, out->path) != VP_OK)
        return vp_error_set(err, VP_EINVAL, "object name \"%.64s/%.64s\" is not made of UIDs",
                            group, key);
    store_writer_checksum(w, out->checksum);
    out->size = w->size;
    char d1[16], d2[STORE_PATH_MAX];
    memcpy(d1, out->path, 10); /* "objects/XX" */
    d1[10] = 0;
    snprintf(d2, sizeof d2, "%s", out->path);
    *strrchr(d2, '/') = 0; /* "objects/XX/<group>" */
    vp_status st;
    if ((st = mkdir_durable(s->root_fd, d1, "objects", err)) ||
        (st = mkdir_durable(s->root_fd, d2, d1, err)))
        return st;
    char from[STORE_PATH_MAX + 8], to[STORE_PATH_MAX * 2];
    snprintf(from, sizeof from, "%s/%s", s->root, w->tmp);
    snprintf(to, sizeof to, "%s/%s", s->root, out->path);
    /*
     * Order. Replacing an object: sync the new bytes before the rename, so the name never
     * holds anything but a complete object. A new object: rename first and sync after; until
     * the caller commits an index row nothing refers to the name, so a crash in between
     * leaves at worst an unreferenced file that a resend overwrites. Syncing after the
     * rename lets file systems that sync a new file's directory entry with the file (ext4)
     * find the folder clean: one device flush per object instead of two.
     */
    struct stat sb;
    out->replaced = fstatat(s->root_fd, out->path, &sb, AT_SYMLINK_NOFOLLOW) == 0;
    if (out->replaced) {
        if (vp_io_fsync(w->fd) != 0)
            return vp_error_set(err, VP_EIO, "fsync: %s", strerror(errno));
        w->synced = true;
    }
    if (vp_io_rename(from, to) != 0)
        return vp_error_set(err, VP_EIO, "rename to %s: %s", out->path, strerror(errno));
    w->tmp[0] = 0; /* the temporary name is gone */
    snprintf(w->placed, sizeof w->placed, "%s", out->path);
    return VP_OK;
}

/* The fsync of a placed object's file; its folder too unless the caller syncs it. */
static vp_status finish(store_writer *w, bool folder, vp_error *err)
{
    store *s = w->s;
    vp_status st = VP_OK;
    if (!w->placed[0] || w->fd < 0) {
        st = vp_error_set(err, VP_EINVAL, "writer not placed");
        goto done;
    }
    if (!w->synced && vp_io_fsync(w->fd) != 0) {
        st = vp_error_set(err, VP_EIO, "fsync: %s", strerror(errno));
        goto done;
    }
    int rc = close(w->fd);
    w->fd = -1;
    if (rc != 0) {
        st = vp_error_set(err, VP_EIO, "close: %s", strerror(errno));
        goto done;
    }
    if (folder)
        st = store_sync_folder(s, w->placed, err);
    if (st == VP_OK)
        w->placed[0] = 0; /* durable (or the caller's to finish): the name stays */
done:
    store_writer_free(w); /* after a failure it removes the name: not durable, never indexed */
    return st;
}

vp_status store_writer_finish(store_writer *w, vp_error *err)
{
    return finish(w, true, err);
}

vp_status store_writer_finish_file(store_writer *w, vp_error *err)
{
    return finish(w, false, err);
}

vp_status store_sync_folder(const store *s, const char *path, vp_error *err)
{
    char dir[STORE_PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        return vp_error_set(err, VP_EINVAL, "%s is not an object path", path);
    *slash = 0;
    return sync_dir_at(s->root_fd, dir, err);
}

vp_status store_writer_commit(store_writer *w, const char *group, const char *key,
                              store_object *out, vp_error *err)
{
    vp_status st = store_writer_place(w, group, key, out, err);
    if (st) {
        store_writer_free(w);
        return st;
    }
    return store_writer_finish(w, err);
}

void store_writer_free(store_writer *w)
{
    if (!w)
        return;
    if (w->fd >= 0)
        close(w->fd);
    if (w->tmp[0])
        unlinkat(w->s->root_fd, w->tmp, 0);
    if (w->placed[0]) /* placed but never made durable: the name must not stay */
        unlinkat(w->s->root_fd, w->placed, 0);
    XXH3_freeState(w->hash);
    vp_free(w);
}

vp_status store_read(const store *s, const char *path, uint64_t offset, void *buf, size_t len,
                     vp_error *err)
{
    int fd = openat(s->root_fd, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return vp_error_set(err, errno == ENOENT ? VP_ENOTFOUND : VP_EIO, "open %s: %s", path,
                            strerror(errno));
    vp_status st = VP_OK;
    size_t done = 0;
    while (done < len) {
        ssize_t k = pread(fd, (uint8_t *)buf + done, len - done, (off_t)(offset + done));
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            st = vp_error_set(err, k == 0 ? VP_ETRUNC : VP_EIO, "read %s at %llu: %s", path,
                              (unsigned long long)(offset + done),
                              k == 0 ? "end of file" : strerror(errno));
            break;
        }
        done += (size_t)k;
    }
    close(fd);
    return st;
}

vp_status store_verify(const store *s, const store_object *expect, vp_error *err)
{
    int fd = openat(s->root_fd, expect->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return vp_error_set(err, errno == ENOENT ? VP_ENOTFOUND : VP_EIO, "open %s: %s",
                            expect->path, strerror(errno));
    XXH3_state_t *h = XXH3_createState();
    uint8_t *buf = vp_malloc(1 << 16);
    vp_status st = VP_OK;
    uint64_t size = 0;
    if (!buf || !h || XXH3_128bits_reset(h) != XXH_OK) {
        st = vp_error_set(err, VP_ENOMEM, "out of memory");
        goto done;
    }
    for (;;) {
        ssize_t k = read(fd, buf, 1 << 16);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            st = vp_error_set(err, VP_EIO, "read %s: %s", expect->path, strerror(errno));
            goto done;
        }
        if (k == 0)
            break;
        XXH3_128bits_update(h, buf, (size_t)k);
        size += (uint64_t)k;
    }
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits_digest(h));
    uint8_t sum[STORE_CHECKSUM_SIZE];
    memcpy(sum, c.digest, sizeof sum);
    if (size != expect->size)
        st = vp_error_set(err, VP_ECONFLICT, "%s: %llu bytes, expected %llu", expect->path,
                          (unsigned long long)size, (unsigned long long)expect->size);
    else if (memcmp(sum, expect->checksum, sizeof sum) != 0)
        st = vp_error_set(err, VP_ECONFLICT, "%s: checksum differs", expect->path);
done:
    XXH3_freeState(h);
    vp_free(buf);
    close(fd);
    return st;
}

vp_status store_remove(const store *s, const char *path, vp_error *err)
{
    if (unlinkat(s->root_fd, path, 0) != 0)
        return vp_error_set(err, errno == ENOENT ? VP_ENOTFOUND : VP_EIO, "remove %s: %s", path,
                            strerror(errno));
    char dir[STORE_PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = 0;
    return sync_dir_at(s->root_fd, slash ? dir : ".", err);
}
