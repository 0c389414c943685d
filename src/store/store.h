/* SPDX-License-Identifier: MIT */
/*
 * store: the object files under the data directory. An object is streamed into a temporary
 * file while it arrives (a 2 GB clip never sits in memory), hashed on the way, then made
 * durable: the file is fsync'd, renamed to its final name and the directory fsync'd, so the
 * name survives a power cut, not only a crash. Only after store_writer_commit returns VP_OK
 * may a caller acknowledge the object (with its index row, which is the index's job).
 *
 * Layout under the root:
 *   tmp/                      temporary files (cleared at open: they were never acknowledged)
 *   objects/XX/<study>/<uid>.dcm   XX = first byte of XXH3-128(study UID), 256 folders evenly
 *                                  filled; a study's objects share one folder (one folder to
 *                                  create per study, neighbours on disk when read together)
 */
#ifndef VP_STORE_H
#define VP_STORE_H

#include <stdint.h>

#include "base/base.h"

#define STORE_CHECKSUM_SIZE 16 /* XXH3-128, canonical (big-endian) bytes */
#define STORE_PATH_MAX 256     /* relative path of an object, NUL included */

typedef struct store store;
typedef struct store_writer store_writer;

/* What a committed object is: where it lives and what it holds. */
typedef struct store_object {
    char path[STORE_PATH_MAX];             /* relative to the store root */
    uint64_t size;                         /* bytes */
    uint8_t checksum[STORE_CHECKSUM_SIZE]; /* XXH3-128 of the bytes */
    bool replaced;                         /* an object had that name already */
} store_object;

/* Opens (creating when needed) the store at root and empties its tmp folder. */
vp_status store_open(const char *root, store **out, vp_error *err);
void store_close(store *s);
/* Root folder, borrowed. */
const char *store_root(const store *s);

/* Starts a new object in a temporary file. */
vp_status store_writer_new(store *s, store_writer **out, vp_error *err);
/* Appends bytes (hashed as they pass). */
vp_status store_writer_write(store_writer *w, const void *p, size_t n, vp_error *err);
/* Starts writing the bytes so far to the disk without waiting (a hint: the commit's fsync
 * then has less left to do, and the disk works while the caller parses and checks). */
void store_writer_start_sync(store_writer *w);
/* Bytes written so far. */
uint64_t store_writer_size(const store_writer *w);
/* Checksum of the bytes written so far (the writer can go on). */
void store_writer_checksum(const store_writer *w, uint8_t out[STORE_CHECKSUM_SIZE]);
/* Absolute path of the temporary file, so the object can be parsed before it is committed.
 * VP_ELIMIT when it does not fit size. */
vp_status store_writer_tmp_path(const store_writer *w, char *buf, size_t size);
/* Makes the object durable under the name derived from group and key (Study and SOP Instance
 * UIDs: digits and dots only), replacing any object already there atomically. On failure the new
 * bytes are not left under the final name (a failure after the rename removes them, so an object
 * replaced at that moment is gone too: the caller reports the failure and the sender retries). The
 * writer is spent either way. */
vp_status store_writer_commit(store_writer *w, const char *group, const char *key,
                              store_object *out, vp_error *err);
/*
 * The commit in two steps, so a caller can do other work (commit the index row) while the
 * disk syncs. place: folders, then the rename to the final name (for a replacement after an
 * fsync, see out->replaced: the name never holds a partial object). finish: fsync of the file
 * and of its folder; on failure the name is removed. The writer is spent after finish; free
 * (after a failed place, or to abandon a placed object) removes whatever it had written.
 */
vp_status store_writer_place(store_writer *w, const char *group, const char *key, store_object *out,
                             vp_error *err);
vp_status store_writer_finish(store_writer *w, vp_error *err);
/* finish without the folder's fsync, for a caller that runs store_sync_folder at the same
 * time (both must succeed before the object is durable; if the folder's fails, the caller
 * removes the object). */
vp_status store_writer_finish_file(store_writer *w, vp_error *err);
/* fsync of the folder holding the object at relative path (its directory entry). */
vp_status store_sync_folder(const store *s, const char *path, vp_error *err);
/* Discards an uncommitted object (the temporary file is removed). Accepts NULL. */
void store_writer_free(store_writer *w);

/* Relative path of the object key (a SOP Instance UID) in group (its Study Instance UID).
 * VP_EINVAL when either is not a UID. */
vp_status store_path_for(const char *group, const char *key, char path[STORE_PATH_MAX]);
/* Reads len bytes at offset of the object at relative path into buf. */
vp_status store_read(const store *s, const char *path, uint64_t offset, void *buf, size_t len,
                     vp_error *err);
/* Re-reads an object and compares its size and checksum: VP_ECONFLICT when they differ. */
vp_status store_verify(const store *s, const store_object *expect, vp_error *err);
/* Removes an object (durably). VP_ENOTFOUND when absent. */
vp_status store_remove(const store *s, const char *path, vp_error *err);

#endif
