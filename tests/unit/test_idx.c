/* SPDX-License-Identifier: MIT */
/* Unit tests for src/idx: record extraction with the veterinary attributes, upserts, computed
 * study attributes, migrations, against a real SQLite file. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "harness.h"
#include "idx/idx.h"

static dcm_dataset *pet(const char *name, const char *pid, const char *study, const char *series,
                        const char *sop, const char *modality)
{
    dcm_dataset *ds = dcm_dataset_new();
    dcm_dataset_set_str(ds, DCM_TAG(0x0008, 0x0005), DCM_VR_CS, "ISO_IR 100");
    dcm_dataset_set_str(ds, DCM_TAG(0x0008, 0x0016), DCM_VR_UI, "1.2.840.10008.5.1.4.1.1.1.1");
    dcm_dataset_set_str(ds, DCM_TAG(0x0008, 0x0018), DCM_VR_UI, sop);
    dcm_dataset_set_str(ds, DCM_TAG(0x0008, 0x0020), DCM_VR_DA, "20261127");
    dcm_dataset_set_str(ds, DCM_TAG(0x0008, 0x0050), DCM_VR_SH, "ACC42");
    dcm_dataset_set_str(ds, DCM_TAG(0x0008, 0x0060), DCM_VR_CS, modality);
    dcm_dataset_set_str(ds, DCM_TAG(0x0010, 0x0010), DCM_VR_PN, name);
    dcm_dataset_set_str(ds, DCM_TAG(0x0010, 0x0020), DCM_VR_LO, pid);
    dcm_dataset_set_str(ds, DCM_TAG(0x0010, 0x2201), DCM_VR_LO, "Canine");
    dcm_element *sq;
    dcm_dataset_set_sequence(ds, DCM_TAG(0x0010, 0x2202), &sq);
    dcm_dataset *item;
    dcm_element_add_item(sq, &item);
    dcm_dataset_set_str(item, DCM_TAG(0x0008, 0x0100), DCM_VR_SH, "448771007");
    dcm_dataset_set_str(item, DCM_TAG(0x0008, 0x0102), DCM_VR_SH, "SCT");
    dcm_dataset_set_str(ds, DCM_TAG(0x0010, 0x2203), DCM_VR_CS, "ALTERED");
    dcm_dataset_set_str(ds, DCM_TAG(0x0010, 0x2292), DCM_VR_LO, "Border Collie");
    dcm_dataset_set_str(ds, DCM_TAG(0x0010, 0x2299), DCM_VR_LO, "Tierklinik M\xfcnchen");
    dcm_dataset_set_str(ds, DCM_TAG(0x0020, 0x000D), DCM_VR_UI, study);
    dcm_dataset_set_str(ds, DCM_TAG(0x0020, 0x000E), DCM_VR_UI, series);
    return ds;
}

static void record(idx_record *r, const char *name, const char *pid, const char *study,
                   const char *series, const char *sop, const char *modality)
{
    dcm_dataset *ds = pet(name, pid, study, series, sop, modality);
    vp_error err;
    vp_error_clear(&err);
    if (idx_record_from_dataset(ds, r, &err) != VP_OK)
        fprintf(stderr, "record: %s\n", err.msg);
    snprintf(r->path, sizeof r->path, "objects/00/00/%s.dcm", sop);
    r->size = 1234;
    memset(r->checksum, 0xAB, sizeof r->checksum);
    dcm_dataset_free(ds);
}

TEST(record_extraction)
{
    idx_record r;
    record(&r, "Smith^Rex", "P1", "1.2.1", "1.2.1.1", "1.2.1.1.1", "DX");
    CHECK_STR(r.pet_name, "Rex");
    CHECK_STR(r.owner_name, "Smith");
    CHECK_STR(r.species, "Canine");
    CHECK_STR(r.species_code, "448771007");
    CHECK_STR(r.breed, "Border Collie");
    CHECK_STR(r.sex_neutered, "ALTERED");
    CHECK_STR(r.clinic, "Tierklinik M\xc3\xbcnchen"); /* Latin-1 converted to UTF-8 */
    CHECK_INT(r.frames, 1);
    /* the pet's name alone */
    record(&r, "Bella", "P2", "1.2.2", "1.2.2.1", "1.2.2.1.1", "US");
    CHECK_STR(r.pet_name, "Bella");
    CHECK_STR(r.owner_name, "");
    /* missing UIDs are refused */
    dcm_dataset *ds = pet("X", "P3", "1.2.3", "1.2.3.1", "1.2.3.1.1", "CT");
    dcm_dataset_remove(ds, DCM_TAG(0x0020, 0x000E));
    vp_error err;
    vp_error_clear(&err);
    CHECK_INT(idx_record_from_dataset(ds, &r, &err), VP_EINVAL);
    CHECK(strstr(err.msg, "Series Instance UID") != NULL);
    dcm_dataset_set_str(ds, DCM_TAG(0x0020, 0x000E), DCM_VR_UI, "1.02.x");
    vp_error_clear(&err);
    CHECK_INT(idx_record_from_dataset(ds, &r, &err), VP_EINVAL);
    dcm_dataset_free(ds);
}

static char dbpath[64];

static idx *open_db(void)
{
    idx *x = NULL;
    vp_error err;
    vp_error_clear(&err);
    if (idx_open(dbpath, &x, &err) != VP_OK)
        fprintf(stderr, "idx_open: %s\n", err.msg);
    return x;
}

static void remove_db(void)
{
    char p[80];
    unlink(dbpath);
    snprintf(p, sizeof p, "%s-wal", dbpath);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", dbpath);
    unlink(p);
}

TEST(put_counts_and_computed_attributes)
{
    snprintf(dbpath, sizeof dbpath, "/tmp/vp-idx-%d.db", (int)getpid());
    remove_db();
    idx *x = open_db();
    CHECK(x != NULL);
    if (!x)
        return;
    CHECK(idx_schema_version(x) >= 1);
    vp_error err;
    vp_error_clear(&err);
    idx_record r;
    /* one study, two series (DX, US), three instances; a second patient */
    record(&r, "Smith^Rex", "P1", "1.2.1", "1.2.1.1", "1.2.1.1.1", "DX");
    CHECK_OK(idx_instance_put(x, &r, &err));
    record(&r, "Smith^Rex", "P1", "1.2.1", "1.2.1.1", "1.2.1.1.2", "DX");
    CHECK_OK(idx_instance_put(x, &r, &err));
    record(&r, "Smith^Rex", "P1", "1.2.1", "1.2.1.2", "1.2.1.2.1", "US");
    r.clinic[0] = 0; /* a later object without the clinic keeps the stored one */
    CHECK_OK(idx_instance_put(x, &r, &err));
    record(&r, "Bella", "P2", "1.2.2", "1.2.2.1", "1.2.2.1.1", "CT");
    CHECK_OK(idx_instance_put(x, &r, &err));
    /* the same instance again: replaced, not duplicated */
    record(&r, "Bella", "P2", "1.2.2", "1.2.2.1", "1.2.2.1.1", "CT");
    r.size = 999;
    CHECK_OK(idx_instance_put(x, &r, &err));
    /* an instance resent under another series of another study: both studies recounted */
    record(&r, "Smith^Rex", "P1", "1.2.9", "1.2.9.1", "1.2.1.1.2", "CR");
    CHECK_OK(idx_instance_put(x, &r, &err));
    record(&r, "Smith^Rex", "P1", "1.2.1", "1.2.1.1", "1.2.1.1.2", "DX");
    CHECK_OK(idx_instance_put(x, &r, &err)); /* and back */
    idx_counts c;
    CHECK_OK(idx_count(x, &c, &err));
    CHECK_INT(c.patients, 2);
    CHECK_INT(c.studies, 2); /* 1.2.9, emptied, is gone with its series */
    CHECK_INT(c.series, 3);
    CHECK_INT(c.instances, 4);
    idx_stored s;
    CHECK_OK(idx_instance_get(x, "1.2.2.1.1", &s, &err));
    CHECK_INT(s.size, 999);
    CHECK_STR(s.path, "objects/00/00/1.2.2.1.1.dcm");
    CHECK_INT(s.checksum[15], 0xAB);
    CHECK_INT(idx_instance_get(x, "9.9.9", &s, &err), VP_ENOTFOUND);
    idx_close(x);

    /* computed study attributes and kept values, read straight from the file */
    sqlite3 *db;
    CHECK_INT(sqlite3_open(dbpath, &db), SQLITE_OK);
    sqlite3_stmt *st;
    CHECK_INT(sqlite3_prepare_v2(db,
                                 "SELECT s.modalities, s.n_series, s.n_instances, p.clinic,"
                                 " p.species_code, s.sex_neutered FROM study s JOIN patient p"
                                 " ON p.id = s.patient WHERE s.study_uid = '1.2.1'",
                                 -1, &st, NULL),
              SQLITE_OK);
    CHECK_INT(sqlite3_step(st), SQLITE_ROW);
    CHECK_STR((const char *)sqlite3_column_text(st, 0), "DX\\US");
    CHECK_INT(sqlite3_column_int(st, 1), 2);
    CHECK_INT(sqlite3_column_int(st, 2), 3);
    CHECK_STR((const char *)sqlite3_column_text(st, 3), "Tierklinik M\xc3\xbcnchen");
    CHECK_STR((const char *)sqlite3_column_text(st, 4), "448771007");
    CHECK_STR((const char *)sqlite3_column_text(st, 5), "ALTERED");
    sqlite3_finalize(st);
    CHECK_INT(sqlite3_prepare_v2(db,
                                 "SELECT n_series, n_instances, modalities FROM study"
                                 " WHERE study_uid = '1.2.9'",
                                 -1, &st, NULL),
              SQLITE_OK);
    /* the instance moved back out: the emptied study (and its series) are gone */
    CHECK_INT(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    /* WAL mode is on */
    CHECK_INT(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    CHECK_INT(sqlite3_step(st), SQLITE_ROW);
    CHECK_STR((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    /* a newer schema than this build knows is refused, not damaged */
    CHECK_INT(sqlite3_exec(db, "PRAGMA user_version = 999", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    idx *y = NULL;
    vp_error_clear(&err);
    CHECK_INT(idx_open(dbpath, &y, &err), VP_EUNSUPPORTED);
    CHECK(strstr(err.msg, "999") != NULL);
    CHECK(y == NULL);
    remove_db();
}

TEST(reopen_keeps_data)
{
    snprintf(dbpath, sizeof dbpath, "/tmp/vp-idx-%d-b.db", (int)getpid());
    remove_db();
    idx *x = open_db();
    vp_error err;
    vp_error_clear(&err);
    idx_record r;
    record(&r, "Jones^Tom", "P9", "1.9", "1.9.1", "1.9.1.1", "MR");
    CHECK_OK(idx_instance_put(x, &r, &err));
    idx_close(x);
    x = open_db();
    idx_counts c;
    CHECK_OK(idx_count(x, &c, &err));
    CHECK_INT(c.instances, 1);
    idx_close(x);
    idx_close(NULL);
    remove_db();
}

int main(void)
{
    RUN(record_extraction);
    RUN(put_counts_and_computed_attributes);
    RUN(reopen_keeps_data);
    DONE();
}
