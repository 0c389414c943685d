/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the WADO-RS metadata kept in the index (src/idx/metadata.c, migration 6) and
 * served by src/web/metadata.c (PS3.18 10.4.1.1.2, DICOM JSON of Annex F), on a real archive:
 * Part 10 files go through the ingest pipeline into a real SQLite index, and the answers are
 * parsed with jansson. Checked: values, no meta group, Pixel Data and large binary values as
 * absolute BulkDataURIs (top level and inside a sequence, F.2.6), small ones inline, study /
 * series / instance resources and their order (Series Number, Instance Number, UIDs), 400 and
 * 404, the streamed form equal to the buffered one, replacement and deletion of an instance,
 * and instances indexed before migration 6 (built from their file, then backfilled). Ends with
 * a micro-benchmark: series metadata of 1,000 instances, printed.
 */
#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app/ingest.h"
#include "dcm/dcm.h"
#include "harness.h"
#include "idx/idx.h"
#include "web/metadata.h"

#define CT_STORAGE "1.2.840.10008.5.1.4.1.1.2"
#define STUDY "1.2.826.0.1.3680043.10.9"
#define SERIES_A STUDY ".1"
#define SERIES_B STUDY ".2"
#define BASE "http://pacs.example:8042/dicom-web"

static char root[64];

/* A CT image data set with 8x8 16-bit native Pixel Data, a small and a large OW value at the
 * top level, and a large one inside a sequence item. */
static dcm_dataset *image(const char *series, const char *series_number, const char *sop,
                          const char *number, const char *name)
{
    dcm_dataset *ds = dcm_dataset_new();
    dcm_dataset_set_str(ds, DCM_TAG(0x0008, 0x0005), DCM_VR_CS, "ISO_IR 100");
    dcm_dataset_set_str(ds, DCM_TAG_SOP_CLASS_UID, DCM_VR_UI, CT_STORAGE);
    dcm_dataset_set_str(ds, DCM_TAG_SOP_INSTANCE_UID, DCM_VR_UI, sop);
    dcm_dataset_set_str(ds, DCM_TAG(0x0008, 0x0060), DCM_VR_CS, "CT");
    dcm_dataset_set_str(ds, DCM_TAG(0x0010, 0x0010), DCM_VR_PN, name);
    dcm_dataset_set_str(ds, DCM_TAG(0x0010, 0x0020), DCM_VR_LO, "PET-7");
    dcm_dataset_set_str(ds, DCM_TAG(0x0010, 0x2201), DCM_VR_LO, "Canine");
    dcm_dataset_set_str(ds, DCM_TAG(0x0020, 0x000D), DCM_VR_UI, STUDY);
    dcm_dataset_set_str(ds, DCM_TAG(0x0020, 0x000E), DCM_VR_UI, series);
    dcm_dataset_set_str(ds, DCM_TAG(0x0020, 0x0011), DCM_VR_IS, series_number);
    if (number)
        dcm_dataset_set_str(ds, DCM_TAG(0x0020, 0x0013), DCM_VR_IS, number);
    dcm_dataset_set_u16(ds, DCM_TAG(0x0028, 0x0002), 1);
    dcm_dataset_set_str(ds, DCM_TAG(0x0028, 0x0004), DCM_VR_CS, "MONOCHROME2");
    dcm_dataset_set_u16(ds, DCM_TAG(0x0028, 0x0010), 8);
    dcm_dataset_set_u16(ds, DCM_TAG(0x0028, 0x0011), 8);
    dcm_dataset_set_u16(ds, DCM_TAG(0x0028, 0x0100), 16);
    dcm_dataset_set_u16(ds, DCM_TAG(0x0028, 0x0101), 12);
    dcm_dataset_set_u16(ds, DCM_TAG(0x0028, 0x0102), 11);
    dcm_dataset_set_u16(ds, DCM_TAG(0x0028, 0x0103), 0);
    uint8_t small[16], big[2048];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (uint8_t)(i * 7);
    memcpy(small, big, sizeof small);
    /* Red Palette Color LUT Data: 16 bytes inline, Blue: 2 KiB by reference */
    dcm_dataset_set(ds, DCM_TAG(0x0028, 0x1201), DCM_VR_OW, small, sizeof small, NULL);
    dcm_dataset_set(ds, DCM_TAG(0x0028, 0x1203), DCM_VR_OW, big, sizeof big, NULL);
    dcm_element *seq;
    dcm_dataset *item;
    dcm_dataset_set_sequence(ds, DCM_TAG(0x0028, 0x3000), &seq); /* Modality LUT Sequence */
    dcm_element_add_item(seq, &item);
    dcm_dataset_set_str(item, DCM_TAG(0x0028, 0x3003), DCM_VR_LO, "lut");
    dcm_dataset_set(item, DCM_TAG(0x0028, 0x3006), DCM_VR_OW, big, sizeof big, NULL);
    uint8_t px[8 * 8 * 2];
    for (size_t i = 0; i < sizeof px; i++)
        px[i] = (uint8_t)i;
    dcm_dataset_set(ds, DCM_TAG_PIXEL_DATA, DCM_VR_OW, px, sizeof px, NULL);
    return ds;
}

/* Writes the image as a Part 10 file and ingests it; returns the outcome (-1 on failure). */
static int ingest_image(ingest *g, const char *series, const char *series_number, const char *sop,
                        const char *number, const char *name)
{
    dcm_dataset *ds = image(series, series_number, sop, number, name);
    dcm_dataset *meta = dcm_dataset_new();
    char path[128];
    snprintf(path, sizeof path, "%s/in.dcm", root);
    vp_error err = {0};
    ingest_outcome oc = INGEST_KEPT;
    int out = -1;
    if (dcm_file_write(path, meta, ds, DCM_TS_EXPLICIT_LE, NULL, false, &err) != VP_OK)
        fprintf(stderr, "write: %s\n", err.msg);
    else if (ingest_file(g, path, &oc, &err) != VP_OK)
        fprintf(stderr, "ingest: %s\n", err.msg);
    else
        out = (int)oc;
    dcm_dataset_free(meta);
    dcm_dataset_free(ds);
    return out;
}

static const char *sop_of(json_t *obj)
{
    return json_string_value(
        json_array_get(json_object_get(json_object_get(obj, "00080018"), "Value"), 0));
}

static const char *str_at(json_t *obj, const char *tag, const char *key)
{
    return json_string_value(json_object_get(json_object_get(obj, tag), key));
}

/* The metadata of a resource, parsed (NULL unless 200; *code gets the status). */
static json_t *get(idx *reader, const char *st, const char *se, const char *sop, bool backfill,
                   int *code, vp_buf *raw)
{
    web_metadata_opts o = {.base_url = BASE, .data_dir = root, .backfill = backfill};
    vp_buf body;
    vp_buf_init(&body, 0);
    vp_error err = {0};
    *code = web_metadata_get(reader, st, se, sop, &o, &body, &err);
    json_t *j = NULL;
    if (*code == 200) {
        json_error_t je;
        j = json_loadb((const char *)body.data, body.len, 0, &je);
        if (!j)
            fprintf(stderr, "bad JSON: %s at %d\n", je.text, je.position);
    } else if (*code != 404 && *code != 400) {
        fprintf(stderr, "metadata: %d %s\n", *code, err.msg);
    }
    if (raw) {
        vp_buf_reset(raw);
        if (body.len)
            vp_buf_append(raw, body.data, body.len);
    }
    vp_buf_fini(&body);
    return j;
}

static long long count_meta(const char *db_path)
{
    sqlite3 *db;
    long long n = -1;
    if (sqlite3_open(db_path, &db) == SQLITE_OK) {
        sqlite3_stmt *s;
        if (sqlite3_prepare_v2(db, "SELECT count(*) FROM instance_meta", -1, &s, NULL) ==
            SQLITE_OK) {
            if (sqlite3_step(s) == SQLITE_ROW)
                n = sqlite3_column_int64(s, 0);
            sqlite3_finalize(s);
        }
    }
    sqlite3_close(db);
    return n;
}

static bool exec_sql(const char *db_path, const char *q)
{
    sqlite3 *db;
    bool ok = sqlite3_open(db_path, &db) == SQLITE_OK &&
              sqlite3_exec(db, q, NULL, NULL, NULL) == SQLITE_OK;
    sqlite3_close(db);
    return ok;
}

/* A sink that appends to a vp_buf and counts its calls. */
struct counting {
    vp_buf b;
    int calls;
};
static vp_status counting_write(void *ctx, const void *p, size_t n)
{
    struct counting *c = ctx;
    c->calls++;
    return vp_buf_append(&c->b, p, n);
}

TEST(archive_metadata)
{
    t_mkdtemp(root, sizeof root, "metadata");
    ingest *g = NULL;
    vp_error err = {0};
    CHECK_OK(ingest_open(root, NULL, &g, &err));
    if (!g)
        return;
    /* series A (number 2): instances numbered 10, 2, none, 1 (sent in that order); series B
     * (number 1): one instance */
    CHECK_INT(ingest_image(g, SERIES_A, "2", SERIES_A ".10", "10", "Smith^Rex"), INGEST_STORED);
    CHECK_INT(ingest_image(g, SERIES_A, "2", SERIES_A ".2", "2", "Smith^Rex"), INGEST_STORED);
    CHECK_INT(ingest_image(g, SERIES_A, "2", SERIES_A ".0", NULL, "Smith^Rex"), INGEST_STORED);
    CHECK_INT(ingest_image(g, SERIES_A, "2", SERIES_A ".1", "1", "Smith^Rex"), INGEST_STORED);
    CHECK_INT(ingest_image(g, SERIES_B, "1", SERIES_B ".1", "1", "Smith^Rex"), INGEST_STORED);
    char db_path[128];
    snprintf(db_path, sizeof db_path, "%s/index.db", root);
    CHECK_INT(count_meta(db_path), 5);

    idx *reader = NULL;
    CHECK_OK(ingest_reader_take(g, &reader, &err));
    if (!reader)
        goto out;
    int code = 0;
    vp_buf first;
    vp_buf_init(&first, 0);

    /* series: instance order 1, 2, 10, then the one without a number */
    json_t *j = get(reader, STUDY, SERIES_A, NULL, false, &code, &first);
    CHECK_INT(code, 200);
    CHECK_INT(json_array_size(j), 4);
    CHECK_STR(sop_of(json_array_get(j, 0)), SERIES_A ".1");
    CHECK_STR(sop_of(json_array_get(j, 1)), SERIES_A ".2");
    CHECK_STR(sop_of(json_array_get(j, 2)), SERIES_A ".10");
    CHECK_STR(sop_of(json_array_get(j, 3)), SERIES_A ".0");
    json_t *o = json_array_get(j, 0);
    /* values: PN as Alphabetic, IS as number, US as number */
    CHECK_STR(json_string_value(json_object_get(
                  json_array_get(json_object_get(json_object_get(o, "00100010"), "Value"), 0),
                  "Alphabetic")),
              "Smith^Rex");
    CHECK_INT(json_integer_value(
                  json_array_get(json_object_get(json_object_get(o, "00200013"), "Value"), 0)),
              1);
    CHECK_INT(json_integer_value(
                  json_array_get(json_object_get(json_object_get(o, "00280010"), "Value"), 0)),
              8);
    CHECK_STR(str_at(o, "00100010", "vr"), "PN");
    /* no File Meta Information: it is no attribute of the instance */
    const char *key;
    json_t *v;
    int meta_keys = 0;
    json_object_foreach(o, key, v)
    {
        if (!strncmp(key, "0002", 4))
            meta_keys++;
    }
    CHECK_INT(meta_keys, 0);
    /* bulk data: Pixel Data and the 2 KiB LUT by absolute BulkDataURI, the 16-byte one inline */
    const char *inst = BASE "/studies/" STUDY "/series/" SERIES_A "/instances/" SERIES_A ".1/";
    char want[512];
    snprintf(want, sizeof want, "%sbulkdata/7FE00010", inst);
    CHECK_STR(str_at(o, "7FE00010", "BulkDataURI"), want);
    CHECK_STR(str_at(o, "7FE00010", "vr"), "OW");
    CHECK(json_object_get(json_object_get(o, "7FE00010"), "InlineBinary") == NULL);
    snprintf(want, sizeof want, "%sbulkdata/00281203", inst);
    CHECK_STR(str_at(o, "00281203", "BulkDataURI"), want);
    CHECK(str_at(o, "00281201", "InlineBinary") != NULL);
    CHECK(str_at(o, "00281201", "BulkDataURI") == NULL);
    json_t *item = json_array_get(json_object_get(json_object_get(o, "00283000"), "Value"), 0);
    snprintf(want, sizeof want, "%sbulkdata/00283000/0/00283006", inst);
    CHECK_STR(str_at(item, "00283006", "BulkDataURI"), want);
    json_decref(j);

    /* study: series B (number 1) first, then A */
    j = get(reader, STUDY, NULL, NULL, false, &code, NULL);
    CHECK_INT(code, 200);
    CHECK_INT(json_array_size(j), 5);
    CHECK_STR(sop_of(json_array_get(j, 0)), SERIES_B ".1");
    CHECK_STR(sop_of(json_array_get(j, 1)), SERIES_A ".1");
    CHECK_STR(sop_of(json_array_get(j, 4)), SERIES_A ".0");
    json_decref(j);

    /* one instance */
    j = get(reader, STUDY, SERIES_A, SERIES_A ".2", false, &code, NULL);
    CHECK_INT(code, 200);
    CHECK_INT(json_array_size(j), 1);
    CHECK_STR(sop_of(json_array_get(j, 0)), SERIES_A ".2");
    json_decref(j);

    /* unknown resources, resources in the wrong parent, bad UIDs */
    CHECK(get(reader, "1.2.3.999", NULL, NULL, false, &code, NULL) == NULL);
    CHECK_INT(code, 404);
    CHECK(get(reader, STUDY, "1.2.3.999", NULL, false, &code, NULL) == NULL);
    CHECK_INT(code, 404);
    CHECK(get(reader, STUDY, SERIES_B, SERIES_A ".2", false, &code, NULL) == NULL);
    CHECK_INT(code, 404);
    CHECK(get(reader, "1.2.3.999", SERIES_A, NULL, false, &code, NULL) == NULL);
    CHECK_INT(code, 404);
    CHECK(get(reader, "1.2.x", NULL, NULL, false, &code, NULL) == NULL);
    CHECK_INT(code, 400);
    CHECK(get(reader, STUDY, "01.2", NULL, false, &code, NULL) == NULL);
    CHECK_INT(code, 400);

    /* streamed to a sink: the same bytes; nothing written for a 404 */
    struct counting c = {.calls = 0};
    vp_buf_init(&c.b, 0);
    dcm_sink sink = {counting_write, &c};
    web_metadata_opts wo = {.base_url = BASE, .data_dir = root};
    CHECK_INT(web_metadata_write(reader, STUDY, SERIES_A, NULL, &wo, &sink, &err), 200);
    CHECK_MEM(c.b.data, c.b.len, first.data, first.len);
    c.calls = 0;
    CHECK_INT(web_metadata_write(reader, STUDY, "1.2.3.4", NULL, &wo, &sink, &err), 404);
    CHECK_INT(c.calls, 0);
    vp_buf_fini(&c.b);

    /* a base URL with characters JSON must escape stays valid JSON */
    {
        web_metadata_opts qo = {.base_url = "http://a\"b\\c", .data_dir = root};
        vp_buf body;
        vp_buf_init(&body, 0);
        CHECK_INT(web_metadata_get(reader, STUDY, SERIES_B, NULL, &qo, &body, &err), 200);
        json_t *q = json_loadb((const char *)body.data, body.len, 0, NULL);
        CHECK(q != NULL);
        const char *u = str_at(json_array_get(q, 0), "7FE00010", "BulkDataURI");
        CHECK(u && !strncmp(u, "http://a\"b\\c/studies/", 21));
        json_decref(q);
        vp_buf_fini(&body);
    }

    /* objects indexed before migration 6: built from their files, the same answer; with
     * backfill, their rows come back */
    CHECK(exec_sql(db_path, "DELETE FROM instance_meta"));
    CHECK_INT(count_meta(db_path), 0);
    vp_buf again;
    vp_buf_init(&again, 0);
    j = get(reader, STUDY, SERIES_A, NULL, false, &code, &again);
    CHECK_INT(code, 200);
    CHECK_MEM(again.data, again.len, first.data, first.len);
    json_decref(j);
    CHECK_INT(count_meta(db_path), 0);
    j = get(reader, STUDY, SERIES_A, NULL, true, &code, &again);
    CHECK_INT(code, 200);
    CHECK_MEM(again.data, again.len, first.data, first.len);
    json_decref(j);
    CHECK_INT(count_meta(db_path), 4);
    j = get(reader, STUDY, SERIES_A, NULL, false, &code, &again);
    CHECK_MEM(again.data, again.len, first.data, first.len);
    json_decref(j);
    /* a damaged row reads as none: built from the file */
    CHECK(exec_sql(db_path, "UPDATE instance_meta SET json = x'00112233'"));
    j = get(reader, STUDY, SERIES_A, NULL, false, &code, &again);
    CHECK_INT(code, 200);
    CHECK_MEM(again.data, again.len, first.data, first.len);
    json_decref(j);
    CHECK(exec_sql(db_path, "DELETE FROM instance_meta"));
    /* a missing file without metadata: 500 with a message, never a crash */
    {
        char p[256];
        snprintf(p, sizeof p, "%s/x", root);
        web_metadata_opts bo = {.base_url = BASE, .data_dir = p};
        vp_buf body;
        vp_buf_init(&body, 0);
        vp_error_clear(&err);
        CHECK_INT(web_metadata_get(reader, STUDY, SERIES_B, NULL, &bo, &body, &err), 500);
        CHECK(strstr(err.msg, SERIES_B ".1") != NULL);
        CHECK(strstr(err.msg, "stored object") != NULL);
        CHECK_INT(body.len, 0);
        vp_buf_fini(&body);
    }
    j = get(reader, STUDY, SERIES_A, NULL, true, &code, NULL); /* backfill again */
    json_decref(j);
    j = get(reader, STUDY, SERIES_B, NULL, true, &code, NULL);
    json_decref(j);
    CHECK_INT(count_meta(db_path), 5);

    /* replacement: the new object's metadata, in the same row */
    CHECK_INT(ingest_image(g, SERIES_A, "2", SERIES_A ".2", "2", "Smith^Max"), INGEST_REPLACED);
    j = get(reader, STUDY, SERIES_A, SERIES_A ".2", false, &code, NULL);
    CHECK_STR(
        json_string_value(json_object_get(
            json_array_get(
                json_object_get(json_object_get(json_array_get(j, 0), "00100010"), "Value"), 0),
            "Alphabetic")),
        "Smith^Max");
    json_decref(j);
    CHECK_INT(count_meta(db_path), 5);

    /* deletion takes the metadata with the row */
    CHECK_OK(idx_instance_delete(reader, SERIES_A ".2", &err));
    CHECK_INT(count_meta(db_path), 4);
    CHECK(get(reader, STUDY, SERIES_A, SERIES_A ".2", false, &code, NULL) == NULL);
    CHECK_INT(code, 404);
    j = get(reader, STUDY, SERIES_A, NULL, false, &code, NULL);
    CHECK_INT(json_array_size(j), 3);
    json_decref(j);
    CHECK_OK(idx_instance_delete(reader, SERIES_B ".1", &err));
    CHECK(get(reader, STUDY, SERIES_B, NULL, false, &code, NULL) == NULL);
    CHECK_INT(code, 404);

    vp_buf_fini(&again);
    vp_buf_fini(&first);
    ingest_reader_give(g, reader);
out:
    ingest_close(g);
    t_rmtree(root);
}

static vp_status note_json(void *ctx, const idx_metadata *m)
{
    *(int *)ctx += m->json ? 100 : 1;
    return VP_OK;
}

/* An index of schema version 5 gets the table at open; its instances have no metadata (the
 * readers' fallback), new ones have. */
TEST(migration_from_version_5)
{
    t_mkdtemp(root, sizeof root, "metamig");
    char db_path[128];
    snprintf(db_path, sizeof db_path, "%s/index.db", root);
    idx *x = NULL;
    vp_error err = {0};
    CHECK_OK(idx_open(db_path, &x, &err));
    if (!x)
        return;
    CHECK_INT(idx_schema_version(x), 6);
    dcm_dataset *ds = image(SERIES_A, "1", SERIES_A ".1", "1", "Smith^Rex");
    idx_record r;
    CHECK_OK(idx_record_from_dataset(ds, &r, &err));
    snprintf(r.path, sizeof r.path, "objects/1.dcm");
    CHECK_OK(idx_instance_put(x, &r, &err)); /* no metadata, as before migration 6 */
    idx_close(x);
    CHECK(exec_sql(db_path, "DROP TABLE instance_meta; PRAGMA user_version = 5"));
    x = NULL;
    CHECK_OK(idx_open(db_path, &x, &err));
    if (!x)
        goto out;
    CHECK_INT(idx_schema_version(x), 6);
    CHECK_INT(count_meta(db_path), 0);
    int seen = 0;
    CHECK_OK(idx_metadata_each(x, STUDY, SERIES_A, NULL, note_json, &seen, &err));
    CHECK_INT(seen, 1);
    dcm_dataset_set_str(ds, DCM_TAG_SOP_INSTANCE_UID, DCM_VR_UI, SERIES_A ".2");
    dcm_dataset_set_str(ds, DCM_TAG(0x0020, 0x0013), DCM_VR_IS, "2");
    CHECK_OK(idx_record_from_dataset(ds, &r, &err));
    CHECK_OK(idx_record_set_metadata(&r, ds, &err));
    CHECK(r.metadata != NULL && r.metadata_len < r.metadata_raw_len);
    CHECK_OK(idx_instance_put(x, &r, &err));
    idx_record_fini(&r);
    seen = 0;
    CHECK_OK(idx_metadata_each(x, STUDY, SERIES_A, NULL, note_json, &seen, &err));
    CHECK_INT(seen, 101);
    CHECK_INT(idx_metadata_each(x, STUDY, SERIES_B, NULL, note_json, &seen, &err), VP_ENOTFOUND);
    idx_close(x);
out:
    dcm_dataset_free(ds);
    t_rmtree(root);
}

/* Compression at rest (RLE Lossless) encapsulates Pixel Data: the stored metadata says OB,
 * as the stored object does, and equals what its file gives. */
TEST(compressed_at_rest)
{
    t_mkdtemp(root, sizeof root, "metarle");
    ingest_opts io = {.compress_ts = "1.2.840.10008.1.2.5"};
    ingest *g = NULL;
    vp_error err = {0};
    CHECK_OK(ingest_open(root, &io, &g, &err));
    if (!g)
        return;
    dcm_dataset *ds = image(SERIES_A, "1", SERIES_A ".1", "1", "Smith^Rex");
    dcm_dataset_set_u16(ds, DCM_TAG(0x0028, 0x0010), 64);
    dcm_dataset_set_u16(ds, DCM_TAG(0x0028, 0x0011), 64);
    static uint8_t px[64 * 64 * 2];
    dcm_dataset_set(ds, DCM_TAG_PIXEL_DATA, DCM_VR_OW, px, sizeof px, NULL);
    dcm_dataset *meta = dcm_dataset_new();
    char path[128], db_path[128];
    snprintf(path, sizeof path, "%s/in.dcm", root);
    snprintf(db_path, sizeof db_path, "%s/index.db", root);
    ingest_outcome oc = INGEST_KEPT;
    CHECK_OK(dcm_file_write(path, meta, ds, DCM_TS_EXPLICIT_LE, NULL, false, &err));
    CHECK_OK(ingest_file(g, path, &oc, &err));
    CHECK_INT(oc, INGEST_STORED);
    dcm_dataset_free(meta);
    dcm_dataset_free(ds);
    idx *reader = NULL;
    CHECK_OK(ingest_reader_take(g, &reader, &err));
    if (reader) {
        int code = 0;
        vp_buf a, b;
        vp_buf_init(&a, 0);
        vp_buf_init(&b, 0);
        json_t *j = get(reader, STUDY, SERIES_A, NULL, false, &code, &a);
        CHECK_INT(code, 200);
        CHECK_STR(str_at(json_array_get(j, 0), "7FE00010", "vr"), "OB");
        json_decref(j);
        CHECK_INT(count_meta(db_path), 1);
        CHECK(exec_sql(db_path, "DELETE FROM instance_meta"));
        j = get(reader, STUDY, SERIES_A, NULL, false, &code, &b);
        CHECK_MEM(a.data, a.len, b.data, b.len);
        json_decref(j);
        vp_buf_fini(&a);
        vp_buf_fini(&b);
        ingest_reader_give(g, reader);
    }
    ingest_close(g);
    t_rmtree(root);
}

/* A CT header of the usual size (about 90 attributes, a few sequences) for the benchmark. */
static dcm_dataset *ct_header(const char *series, const char *sop, int number)
{
    char num[16];
    snprintf(num, sizeof num, "%d", number);
    dcm_dataset *ds = image(series, "3", sop, num, "Brown^Bella");
    static const struct {
        uint16_t g, e;
        enum dcm_vr vr;
        const char *v;
    } a[] = {
        {0x0008, 0x0008, DCM_VR_CS, "ORIGINAL\\PRIMARY\\AXIAL"},
        {0x0008, 0x0012, DCM_VR_DA, "20260101"},
        {0x0008, 0x0013, DCM_VR_TM, "101010.123"},
        {0x0008, 0x0020, DCM_VR_DA, "20260101"},
        {0x0008, 0x0021, DCM_VR_DA, "20260101"},
        {0x0008, 0x0022, DCM_VR_DA, "20260101"},
        {0x0008, 0x0023, DCM_VR_DA, "20260101"},
        {0x0008, 0x0030, DCM_VR_TM, "100000"},
        {0x0008, 0x0031, DCM_VR_TM, "100500"},
        {0x0008, 0x0032, DCM_VR_TM, "100501.5"},
        {0x0008, 0x0033, DCM_VR_TM, "100502"},
        {0x0008, 0x0050, DCM_VR_SH, "ACC12345"},
        {0x0008, 0x0070, DCM_VR_LO, "Acme Medical Systems"},
        {0x0008, 0x0080, DCM_VR_LO, "Riverside Veterinary Hospital"},
        {0x0008, 0x0081, DCM_VR_ST, "1 Main Street, Springfield"},
        {0x0008, 0x0090, DCM_VR_PN, "Doe^Jane^^Dr."},
        {0x0008, 0x1010, DCM_VR_SH, "CTSTATION1"},
        {0x0008, 0x1030, DCM_VR_LO, "CT THORAX ABDOMEN"},
        {0x0008, 0x103E, DCM_VR_LO, "Thorax 1.0 B30f"},
        {0x0008, 0x1040, DCM_VR_LO, "Imaging"},
        {0x0008, 0x1090, DCM_VR_LO, "Scanner 64"},
        {0x0010, 0x0030, DCM_VR_DA, "20190405"},
        {0x0010, 0x0040, DCM_VR_CS, "F"},
        {0x0010, 0x1030, DCM_VR_DS, "23.5"},
        {0x0010, 0x2292, DCM_VR_LO, "Labrador Retriever"},
        {0x0010, 0x2297, DCM_VR_PN, "Brown^Alice"},
        {0x0010, 0x2299, DCM_VR_LO, "Riverside Vets"},
        {0x0018, 0x0015, DCM_VR_CS, "CHEST"},
        {0x0018, 0x0022, DCM_VR_CS, "HELICAL MODE"},
        {0x0018, 0x0050, DCM_VR_DS, "1.0"},
        {0x0018, 0x0060, DCM_VR_DS, "120"},
        {0x0018, 0x0088, DCM_VR_DS, "1.0"},
        {0x0018, 0x0090, DCM_VR_DS, "500.0"},
        {0x0018, 0x1000, DCM_VR_LO, "SN123456"},
        {0x0018, 0x1020, DCM_VR_LO, "VA48A\\SOMATOM"},
        {0x0018, 0x1030, DCM_VR_LO, "Thorax routine"},
        {0x0018, 0x1100, DCM_VR_DS, "350.0"},
        {0x0018, 0x1110, DCM_VR_DS, "1085.6"},
        {0x0018, 0x1111, DCM_VR_DS, "595.0"},
        {0x0018, 0x1120, DCM_VR_DS, "0.0"},
        {0x0018, 0x1130, DCM_VR_DS, "150.0"},
        {0x0018, 0x1140, DCM_VR_CS, "CW"},
        {0x0018, 0x1150, DCM_VR_IS, "500"},
        {0x0018, 0x1151, DCM_VR_IS, "200"},
        {0x0018, 0x1152, DCM_VR_IS, "100"},
        {0x0018, 0x1160, DCM_VR_SH, "BODY"},
        {0x0018, 0x1170, DCM_VR_IS, "24"},
        {0x0018, 0x1190, DCM_VR_DS, "1.2"},
        {0x0018, 0x1210, DCM_VR_SH, "B30f"},
        {0x0018, 0x5100, DCM_VR_CS, "FFS"},
        {0x0018, 0x9345, DCM_VR_FD, NULL},
        {0x0020, 0x0010, DCM_VR_SH, "1"},
        {0x0020, 0x0012, DCM_VR_IS, "1"},
        {0x0020, 0x0032, DCM_VR_DS, "-175.5\\-180.25\\-1012.5"},
        {0x0020, 0x0037, DCM_VR_DS, "1\\0\\0\\0\\1\\0"},
        {0x0020, 0x0052, DCM_VR_UI, "1.2.826.0.1.3680043.10.9.77"},
        {0x0020, 0x1040, DCM_VR_LO, ""},
        {0x0020, 0x1041, DCM_VR_DS, "-1012.5"},
        {0x0020, 0x4000, DCM_VR_LT, "Contrast given at 10:02"},
        {0x0028, 0x0030, DCM_VR_DS, "0.683594\\0.683594"},
        {0x0028, 0x1050, DCM_VR_DS, "40\\400"},
        {0x0028, 0x1051, DCM_VR_DS, "400\\1500"},
        {0x0028, 0x1052, DCM_VR_DS, "-1024"},
        {0x0028, 0x1053, DCM_VR_DS, "1"},
        {0x0028, 0x1055, DCM_VR_LO, "WINDOW1\\WINDOW2"},
    };
    for (size_t i = 0; i < sizeof a / sizeof a[0]; i++)
        if (a[i].v)
            dcm_dataset_set_str(ds, DCM_TAG(a[i].g, a[i].e), a[i].vr, a[i].v);
    dcm_element *seq;
    dcm_dataset *item;
    dcm_dataset_set_sequence(ds, DCM_TAG(0x0008, 0x1140), &seq); /* Referenced Image Sequence */
    for (int k = 0; k < 3; k++) {
        dcm_element_add_item(seq, &item);
        dcm_dataset_set_str(item, DCM_TAG(0x0008, 0x1150), DCM_VR_UI, CT_STORAGE);
        dcm_dataset_set_str(item, DCM_TAG(0x0008, 0x1155), DCM_VR_UI,
                            "1.2.826.0.1.3680043.10.9.0.5");
    }
    return ds;
}

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Series metadata of 1,000 instances: rows put as the ingest puts them (metadata built and
 * compressed per data set, one batch), then answered 9 times; min and median printed. */
TEST(bench_series_1000)
{
    enum { N = 1000 };
    t_mkdtemp(root, sizeof root, "metabench");
    char db_path[128];
    snprintf(db_path, sizeof db_path, "%s/index.db", root);
    idx *x = NULL;
    vp_error err = {0};
    CHECK_OK(idx_open(db_path, &x, &err));
    if (!x)
        return;
    idx_record *recs = vp_calloc(N, sizeof *recs);
    const idx_record **rp = vp_malloc(N * sizeof *rp);
    vp_status *res = vp_malloc(N * sizeof *res);
    vp_error *errs = vp_malloc(N * sizeof *errs);
    size_t raw = 0, packed = 0;
    double t0 = now_ms();
    for (int i = 0; i < N && recs && rp && res && errs; i++) {
        char sop[64];
        snprintf(sop, sizeof sop, SERIES_A ".%d", i + 1);
        dcm_dataset *ds = ct_header(SERIES_A, sop, N - i);
        CHECK_OK(idx_record_from_dataset(ds, &recs[i], &err));
        CHECK_OK(idx_record_set_metadata(&recs[i], ds, &err));
        snprintf(recs[i].path, sizeof recs[i].path, "objects/%d.dcm", i);
        recs[i].size = 1000;
        raw += recs[i].metadata_raw_len;
        packed += recs[i].metadata_len;
        rp[i] = &recs[i];
        dcm_dataset_free(ds);
    }
    double t_build = now_ms() - t0;
    if (recs && rp && res && errs)
        CHECK_OK(idx_instance_put_batch(x, rp, N, NULL, 0, res, errs, &err));
    for (int i = 0; recs && i < N; i++)
        idx_record_fini(&recs[i]);
    vp_free(recs);
    vp_free(rp);
    vp_free(res);
    vp_free(errs);

    web_metadata_opts o = {.base_url = BASE, .data_dir = root};
    vp_buf body;
    vp_buf_init(&body, 0);
    double t[9];
    for (int r = 0; r < 9; r++) {
        double a = now_ms();
        CHECK_INT(web_metadata_get(x, STUDY, SERIES_A, NULL, &o, &body, &err), 200);
        t[r] = now_ms() - a;
    }
    qsort(t, 9, sizeof t[0], cmp_double);
    /* of which reading the rows and inflating */
    double ti[9];
    for (int r = 0; r < 9; r++) {
        int seen = 0;
        double a = now_ms();
        CHECK_OK(idx_metadata_each(x, STUDY, SERIES_A, NULL, note_json, &seen, &err));
        ti[r] = now_ms() - a;
        CHECK_INT(seen, 100 * N);
    }
    qsort(ti, 9, sizeof ti[0], cmp_double);
    json_t *j = json_loadb((const char *)body.data, body.len, 0, NULL);
    CHECK_INT(json_array_size(j), N);
    CHECK_STR(sop_of(json_array_get(j, 0)), SERIES_A ".1000"); /* Instance Number 1 */
    json_decref(j);
    printf("bench: series metadata of %d instances: %.2f ms (min), %.2f ms (median); "
           "index read + inflate %.2f ms (median); %zu bytes of JSON, stored %zu -> %zu bytes "
           "(%.1fx); build+compress %.3f ms each\n",
           N, t[0], t[4], ti[4], body.len, raw, packed, packed ? (double)raw / (double)packed : 0.0,
           t_build / N);
    vp_buf_fini(&body);
    idx_close(x);
    t_rmtree(root);
}

int main(void)
{
    RUN(archive_metadata);
    RUN(compressed_at_rest);
    RUN(migration_from_version_5);
    RUN(bench_series_1000);
    DONE();
}
