/* SPDX-License-Identifier: MIT */
/*
 * WADO-RS metadata resources (PS3.18 10.4.1.1.2, Table 10.4.1-2: /studies/{study}/metadata,
 * /studies/{study}/series/{series}/metadata, .../instances/{instance}/metadata), without HTTP:
 * the application/dicom+json array of the instances' DICOM JSON objects (PS3.18 Annex F), read
 * from the metadata the index keeps per instance (src/idx/metadata.c) and written as the index
 * gives them, never parsing an object file except for instances indexed before that existed.
 *
 * Bulk data (Pixel Data, binary values over 1 KiB) is given as a BulkDataURI (F.2.6) naming
 * the instance's bulkdata resource: base_url + "/studies/{study}/series/{series}/instances/
 * {instance}/bulkdata/{path}", path being the tag ("7FE00010") or, inside a sequence, the tags
 * and item indexes from the top ("00540016/0/00281201"). Viewers take frames from the frames
 * resource (.../instances/{instance}/frames/{n}) built from the UIDs in the metadata; the
 * Pixel Data BulkDataURI serves those that fetch the whole value (video, documents).
 */
#ifndef VP_WEB_METADATA_H
#define VP_WEB_METADATA_H

#include <stdbool.h>
#include <stddef.h>

#include "base/base.h"
#include "dcm/dcm.h"
#include "idx/idx.h"

typedef struct web_metadata_opts {
    const char *base_url; /* {+SERVICE}, e.g. "https://pacs.example/dicom-web", no trailing
                           * "/"; "" allowed (URIs are then relative to the host) */
    const char *data_dir; /* the data folder (object paths of the index are relative to it):
                           * read for instances without stored metadata */
    bool backfill;        /* keep the metadata built from such files in the index (a write
                           * transaction on reader, after the body is written) */
} web_metadata_opts;

/* Bytes buffered before each write to the sink. */
#define WEB_METADATA_CHUNK (64u << 10)

/*
 * Writes the metadata of a study (series_uid and sop_instance_uid NULL), a series
 * (sop_instance_uid NULL) or an instance as one JSON array to sink, in pieces of about
 * WEB_METADATA_CHUNK bytes, instances in series then instance order (Series Number, Instance
 * Number, then UIDs). reader is a read connection of the index. Returns the HTTP status:
 *  - 200: the whole array was written;
 *  - 400: a UID of the path is no UID (err says which); nothing written;
 *  - 404: no such study, series in the study or instance in the series; nothing written;
 *  - 500 (index or file failure, sink error) or 503 (out of memory), err says why: when
 *    something was already written the response is cut short (the caller aborts it).
 */
int web_metadata_write(idx *reader, const char *study_uid, const char *series_uid,
                       const char *sop_instance_uid, const web_metadata_opts *opts, dcm_sink *sink,
                       vp_error *err);
/* The same into body (reset first; empty unless 200). */
int web_metadata_get(idx *reader, const char *study_uid, const char *series_uid,
                     const char *sop_instance_uid, const web_metadata_opts *opts, vp_buf *body,
                     vp_error *err);

#endif /* VP_WEB_METADATA_H */
