/* SPDX-License-Identifier: MIT */
/*
 * WADO-RS metadata kept in the index (migration 6): per instance, the DICOM JSON object (PS3.18
 * Annex F) that the Retrieve Transaction's metadata resources answer (PS3.18 10.4.1.1.2:
 * "the Metadata Resources are used to retrieve the DICOM instances without retrieving
 * Bulkdata"), computed once at ingest instead of parsing every file on every viewer request.
 *
 * The object is the data set without the File Meta Information (it is no attribute of the
 * instance), compact (no whitespace, so the web layer can find each "BulkDataURI" key by its
 * bytes), with binary values over IDX_METADATA_BULK_THRESHOLD and Pixel Data replaced by a
 * relative BulkDataURI (F.2.6) "bulkdata/<attribute path>" that the web layer prefixes with the
 * instance's URL: the request's base URL is not known at ingest and may change.
 *
 * Elements after Pixel Data (only Data Set Trailing Padding and Digital Signatures may follow
 * it, PS3.5 7.1 ordering) are not read by the ingest's header parse and are not in the object.
 *
 * Kept zlib-compressed (RFC 1950; DICOM JSON shrinks 5-10x), in its own table so that instance
 * rows stay small for the queries that scan them.
 */
#include <sqlite3.h>
#include <string.h>
#include <zlib.h>

#include "idx/internal.h"

vp_status idx_metadata_build(const dcm_dataset *ds, vp_buf *out, vp_error *err)
{
    dcm_json_opts o = {.bulk_threshold = IDX_METADATA_BULK_THRESHOLD,
                       .bulk_uri_prefix = IDX_METADATA_BULK_PREFIX};
    return dcm_json_write(ds, &o, out, err);
}

/* Deflates json into a new zlib stream (level 6: the default, a few hundred microseconds for
 * a typical object, most of the ratio of level 9). */
static vp_status compress_json(const uint8_t *json, size_t len, uint8_t **out, size_t *out_len,
                               vp_error *err)
{
    uLong bound = compressBound((uLong)len);
    uint8_t *z = vp_malloc(bound ? bound : 1);
    if (!z)
        return vp_error_set(err, VP_ENOMEM, "out of memory");
    uLongf zlen = bound;
    if (compress2(z, &zlen, json, (uLong)len, Z_DEFAULT_COMPRESSION) != Z_OK) {
        vp_free(z);
        return vp_error_set(err, VP_ENOMEM, "metadata: compression failed");
    }
    *out = z;
    *out_len = zlen;
    return VP_OK;
}

vp_status idx_record_set_metadata(idx_record *rec, const dcm_dataset *ds, vp_error *err)
{
    idx_record_fini(rec);
    vp_buf json;
    vp_buf_init(&json, IDX_METADATA_MAX);
    vp_status st = idx_metadata_build(ds, &json, err);
    if (st == VP_OK)
        st = compress_json(json.data, json.len, &rec->metadata, &rec->metadata_len, err);
    if (st == VP_OK)
        rec->metadata_raw_len = json.len;
    vp_buf_fini(&json);
    return st;
}

void idx_record_fini(idx_record *rec)
{
    if (!rec)
        return;
    vp_free(rec->metadata);
    rec->metadata = NULL;
    rec->metadata_len = rec->metadata_raw_len = 0;
}

/* The instances of the resource asked for, with their metadata row when there is one. The
 * order is the one viewers show: series by number, instances by number (as integers; empty
 * ones after), UIDs breaking ties so that the order is stable. */
#define META_SELECT                                                                                \
    "SELECT st.study_uid, se.series_uid, i.sop_uid, i.path, i.checksum, m.raw_len, m.json"         \
    " FROM instance i JOIN series se ON se.id = i.series JOIN study st ON st.id = se.study"        \
    " LEFT JOIN instance_meta m ON m.instance = i.id WHERE st.study_uid = ?1"
#define INSTANCE_ORDER " i.instance_number = '', CAST(i.instance_number AS INTEGER), i.sop_uid"

static const char meta_study[] = META_SELECT " ORDER BY se.series_number = '',"
                                             " CAST(se.series_number AS INTEGER), se.series_uid,"
                                             " se.id," INSTANCE_ORDER;
static const char meta_series[] = META_SELECT " AND se.series_uid = ?2 ORDER BY" INSTANCE_ORDER;
static const char meta_instance[] = META_SELECT " AND se.series_uid = ?2 AND i.sop_uid = ?3";

/* Inflates a stored object into out (reset first). false when it is not what the row says
 * (a damaged row): the caller then treats the instance as one without metadata. */
static bool inflate_json(const void *z, int zlen, int64_t raw_len, vp_buf *out)
{
    vp_buf_reset(out);
    if (!z || zlen <= 0 || raw_len <= 0 || raw_len > (int64_t)IDX_METADATA_MAX ||
        vp_buf_reserve(out, (size_t)raw_len + 1) != VP_OK)
        return false;
    uLongf n = (uLongf)raw_len;
    if (uncompress(out->data, &n, z, (uLong)zlen) != Z_OK || n != (uLongf)raw_len)
        return false;
    out->len = (size_t)raw_len;
    out->data[out->len] = 0;
    return true;
}

vp_status idx_metadata_each(idx *x, const char *study_uid, const char *series_uid,
                            const char *sop_instance_uid, idx_metadata_fn fn, void *ctx,
                            vp_error *err)
{
    const char *q = sop_instance_uid ? meta_instance : series_uid ? meta_series : meta_study;
    if (sop_instance_uid && !series_uid)
        return vp_error_set(err, VP_EINVAL, "an instance is named with its series");
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(idx__db(x), q, -1, &s, NULL) != SQLITE_OK)
        return idx__db_error(x, err, "metadata query");
    sqlite3_bind_text(s, 1, study_uid, -1, SQLITE_STATIC);
    if (series_uid)
        sqlite3_bind_text(s, 2, series_uid, -1, SQLITE_STATIC);
    if (sop_instance_uid)
        sqlite3_bind_text(s, 3, sop_instance_uid, -1, SQLITE_STATIC);
    /* One read transaction: the instances and their metadata come from one snapshot even
     * while the ingest commits (WAL). */
    vp_buf json;
    vp_buf_init(&json, 0);
    vp_status st = VP_OK;
    size_t rows = 0;
    int rc = SQLITE_DONE;
    while (st == VP_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        idx_metadata m = {
            .study_uid = (const char *)sqlite3_column_text(s, 0),
            .series_uid = (const char *)sqlite3_column_text(s, 1),
            .sop_instance_uid = (const char *)sqlite3_column_text(s, 2),
            .path = (const char *)sqlite3_column_text(s, 3),
        };
        if (sqlite3_column_bytes(s, 4) == (int)sizeof m.checksum)
            memcpy(m.checksum, sqlite3_column_blob(s, 4), sizeof m.checksum);
        if (sqlite3_column_type(s, 6) == SQLITE_BLOB) {
            const void *z = sqlite3_column_blob(s, 6);
            int zlen = sqlite3_column_bytes(s, 6);
            if (inflate_json(z, zlen, sqlite3_column_int64(s, 5), &json)) {
                m.json = (const char *)json.data;
                m.json_len = json.len;
            }
        }
        if (!m.study_uid || !m.series_uid || !m.sop_instance_uid || !m.path) {
            st = vp_error_set(err, VP_ENOMEM, "out of memory");
            break;
        }
        rows++;
        st = fn(ctx, &m);
    }
    if (st == VP_OK && rc != SQLITE_DONE)
        st = idx__db_error(x, err, "metadata query");
    sqlite3_finalize(s);
    vp_buf_fini(&json);
    if (st == VP_OK && rows == 0)
        st = VP_ENOTFOUND;
    return st;
}

vp_status idx_metadata_backfill(idx *x, const idx_metadata_fill *f, size_t n, vp_error *err)
{
    if (!n)
        return VP_OK;
    /* OR IGNORE: a row that appeared meanwhile came with a newer object, in its ingest. */
    static const char q[] = "INSERT OR IGNORE INTO instance_meta (instance, raw_len, json)"
                            " SELECT id, ?1, ?2 FROM instance WHERE sop_uid = ?3 AND checksum = ?4";
    sqlite3 *db = idx__db(x);
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(db, q, -1, &s, NULL) != SQLITE_OK)
        return idx__db_error(x, err, "metadata backfill");
    /* One transaction, one WAL sync for the lot (synchronous=FULL syncs every commit). */
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        vp_status st = idx__db_error(x, err, "metadata backfill");
        sqlite3_finalize(s);
        return st;
    }
    vp_status st = VP_OK;
    for (size_t i = 0; i < n && st == VP_OK; i++) {
        if (!f[i].json_len || f[i].json_len > IDX_METADATA_MAX)
            continue;
        uint8_t *z = NULL;
        size_t zlen = 0;
        if ((st = compress_json((const uint8_t *)f[i].json, f[i].json_len, &z, &zlen, err)))
            break;
        sqlite3_bind_int64(s, 1, (sqlite3_int64)f[i].json_len);
        sqlite3_bind_blob64(s, 2, z, zlen, SQLITE_STATIC);
        sqlite3_bind_text(s, 3, f[i].sop_instance_uid, -1, SQLITE_STATIC);
        sqlite3_bind_blob(s, 4, f[i].checksum, sizeof f[i].checksum, SQLITE_STATIC);
        if (sqlite3_step(s) != SQLITE_DONE)
            st = idx__db_error(x, err, "metadata backfill");
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
        vp_free(z);
    }
    sqlite3_finalize(s);
    if (st == VP_OK && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        st = idx__db_error(x, err, "metadata backfill");
    if (st != VP_OK)
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return st;
}
