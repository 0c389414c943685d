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
    dcm_dataset_set_str(item, DCM_TAG(0x0008, 0x0104), DCM_VR_LO, "Canis lupus familiaris");
    /* a local code whose meaning is in the data set's character set (Latin-1) */
    dcm_dataset_set_sequence(ds, DCM_TAG(0x0010, 0x2293), &sq);
    dcm_element_add_item(sq, &item);
    dcm_dataset_set_str(item, DCM_TAG(0x0008, 0x0100), DCM_VR_SH, "VP-B-GM");
    dcm_dataset_set_str(item, DCM_TAG(0x0008, 0x0102), DCM_VR_SH, "99VP");
    dcm_dataset_set_str(item, DCM_TAG(0x0008, 0x0103), DCM_VR_SH, "2024");
    dcm_dataset_set_str(item, DCM_TAG(0x0008, 0x0104), DCM_VR_LO,
                        "Gro\xdf"
                        "er M\xfcnsterl\xe4nder");
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
    CHECK_STR(r.species_scheme, "SCT");
    CHECK_STR(r.species_version, ""); /* Type 1C, absent */
    CHECK_STR(r.species_meaning, "Canis lupus familiaris");
    CHECK_STR(r.breed_code, "VP-B-GM");
    CHECK_STR(r.breed_scheme, "99VP");
    CHECK_STR(r.breed_version, "2024");
    CHECK_STR(r.breed_meaning, "Gro\xc3\x9f"
                               "er M\xc3\xbcnsterl\xc3\xa4nder"); /* in UTF-8 */
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
    /* a code item without a Code Value (a Long Code Value, say) gives no code at all */
    ds = pet("X", "P3", "1.2.3", "1.2.3.1", "1.2.3.1.1", "CT");
    dcm_dataset *species = dcm_element_item(dcm_dataset_find(ds, DCM_TAG(0x0010, 0x2202)), 0);
    dcm_dataset_remove(species, DCM_TAG(0x0008, 0x0100));
    vp_error_clear(&err);
    CHECK_OK(idx_record_from_dataset(ds, &r, &err));
    CHECK_STR(r.species_code, "");
    CHECK_STR(r.species_scheme, "");
    CHECK_STR(r.species_meaning, "");
    CHECK_STR(r.breed_code, "VP-B-GM");
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

/* The stored species (or breed) code of patient P1 as "value|scheme|version|meaning", and how
 * many times the patient row was written since the trigger of code_kept_whole was made. */
static char code_buf[512];
static const char *stored_code(const char *p)
{
    sqlite3 *db;
    sqlite3_stmt *st = NULL;
    char q[256];
    snprintf(q, sizeof q,
             "SELECT %s_code || '|' || %s_scheme || '|' || %s_version || '|' || %s_meaning,"
             " (SELECT n FROM patient_writes) FROM patient WHERE patient_id = 'P1'",
             p, p, p, p);
    snprintf(code_buf, sizeof code_buf, "(none)");
    if (sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, q, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        snprintf(code_buf, sizeof code_buf, "%s #%d", (const char *)sqlite3_column_text(st, 0),
                 sqlite3_column_int(st, 1));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return code_buf;
}

/* An instance of patient P1 (study 1.2.1) with this species code. */
static void put_code(idx *x, const char *sop, const char *value, const char *scheme,
                     const char *version, const char *meaning)
{
    idx_record r;
    record(&r, "Smith^Rex", "P1", "1.2.1", "1.2.1.1", sop, "DX");
    snprintf(r.species_code, sizeof r.species_code, "%s", value);
    snprintf(r.species_scheme, sizeof r.species_scheme, "%s", scheme);
    snprintf(r.species_version, sizeof r.species_version, "%s", version);
    snprintf(r.species_meaning, sizeof r.species_meaning, "%s", meaning);
    vp_error err;
    vp_error_clear(&err);
    CHECK_OK(idx_instance_put(x, &r, &err));
}

/* A code is stored as one unit (src/idx/sqlite.c): the same code fills in, another code
 * replaces all four attributes, no code keeps the stored one; and an object that changes
 * nothing writes no patient row (a trigger counts the writes). */
TEST(code_kept_whole)
{
    snprintf(dbpath, sizeof dbpath, "/tmp/vp-idx-%d-c.db", (int)getpid());
    remove_db();
    idx *x = open_db();
    if (!x)
        return;
    put_code(x, "1.2.1.1.1", "448771007", "SCT", "", "Canis lupus familiaris");
    idx_close(x);
    sqlite3 *db;
    CHECK_INT(sqlite3_open(dbpath, &db), SQLITE_OK);
    CHECK_INT(sqlite3_exec(db,
                           "CREATE TABLE patient_writes (n INTEGER);"
                           "INSERT INTO patient_writes VALUES (0);"
                           "CREATE TRIGGER patient_written AFTER UPDATE ON patient"
                           " BEGIN UPDATE patient_writes SET n = n + 1; END;",
                           NULL, NULL, NULL),
              SQLITE_OK);
    sqlite3_close(db);
    x = open_db();
    if (!x)
        return;
    CHECK_STR(stored_code("species"), "448771007|SCT||Canis lupus familiaris #0");
    /* the same code, copied without its scheme and meaning: kept, nothing written */
    put_code(x, "1.2.1.1.2", "448771007", "", "", "");
    CHECK_STR(stored_code("species"), "448771007|SCT||Canis lupus familiaris #0");
    /* the same code again in full: nothing written */
    put_code(x, "1.2.1.1.3", "448771007", "SCT", "", "Canis lupus familiaris");
    CHECK_STR(stored_code("species"), "448771007|SCT||Canis lupus familiaris #0");
    /* no code: the stored one stays */
    put_code(x, "1.2.1.1.4", "", "", "", "");
    CHECK_STR(stored_code("species"), "448771007|SCT||Canis lupus familiaris #0");
    /* the same code with more said: filled in */
    put_code(x, "1.2.1.1.5", "448771007", "SCT", "2024", "Dog");
    CHECK_STR(stored_code("species"), "448771007|SCT|2024|Dog #1");
    /* another code: all four replaced, the empty ones too */
    put_code(x, "1.2.1.1.6", "448169003", "", "", "Felis catus");
    CHECK_STR(stored_code("species"), "448169003|||Felis catus #2");
    /* the same value in another scheme is another code */
    put_code(x, "1.2.1.1.7", "448169003", "99VP", "", "");
    CHECK_STR(stored_code("species"), "448169003|99VP|| #3");
    /* a scheme where none was known: the same value, so taken whole */
    put_code(x, "1.2.1.1.8", "448169003", "99VP", "", "Cat");
    CHECK_STR(stored_code("species"), "448169003|99VP||Cat #4");
    /* the breed code (Latin-1 in the record's data set) went its own way */
    CHECK_STR(stored_code("breed"), "VP-B-GM|99VP|2024|Gro\xc3\x9f"
                                    "er M\xc3\xbcnsterl\xc3\xa4nder #4");
    idx_close(x);
    remove_db();
}

/* An index made at schema version 3 (before the codes' scheme, version and meaning were kept)
 * opens, is migrated in place, keeps its rows with those attributes unknown, and gets them
 * when an object of the animal is indexed again. */
TEST(migration_from_version_3)
{
    snprintf(dbpath, sizeof dbpath, "/tmp/vp-idx-%d-m.db", (int)getpid());
    remove_db();
    idx *x = open_db();
    if (!x)
        return;
    vp_error err;
    vp_error_clear(&err);
    idx_record r;
    record(&r, "Smith^Rex", "P1", "1.2.1", "1.2.1.1", "1.2.1.1.1", "DX");
    CHECK_OK(idx_instance_put(x, &r, &err));
    idx_close(x);
    /* back to version 3: migration 4 only added these columns */
    sqlite3 *db;
    CHECK_INT(sqlite3_open(dbpath, &db), SQLITE_OK);
    CHECK_INT(sqlite3_exec(db,
                           "ALTER TABLE patient DROP COLUMN species_scheme;"
                           "ALTER TABLE patient DROP COLUMN species_version;"
                           "ALTER TABLE patient DROP COLUMN species_meaning;"
                           "ALTER TABLE patient DROP COLUMN breed_scheme;"
                           "ALTER TABLE patient DROP COLUMN breed_version;"
                           "ALTER TABLE patient DROP COLUMN breed_meaning;"
                           "CREATE TABLE patient_writes (n INTEGER);"
                           "INSERT INTO patient_writes VALUES (0);"
                           "PRAGMA user_version = 3",
                           NULL, NULL, NULL),
              SQLITE_OK);
    sqlite3_close(db);
    x = open_db();
    CHECK(x != NULL);
    if (!x)
        return;
    CHECK_INT(idx_schema_version(x), 6);
    CHECK_STR(stored_code("species"), "448771007||| #0");
    CHECK_STR(stored_code("breed"), "VP-B-GM||| #0");
    idx_counts c;
    CHECK_OK(idx_count(x, &c, &err));
    CHECK_INT(c.instances, 1);
    /* the animal's object indexed again (as an import into a new data folder does) fills them */
    CHECK_OK(idx_instance_put(x, &r, &err));
    CHECK_STR(stored_code("species"), "448771007|SCT||Canis lupus familiaris #0");
    CHECK_STR(stored_code("breed"), "VP-B-GM|99VP|2024|Gro\xc3\x9f"
                                    "er M\xc3\xbcnsterl\xc3\xa4nder #0");
    idx_close(x);
    remove_db();
}

int main(void)
{
    RUN(record_extraction);
    RUN(put_counts_and_computed_attributes);
    RUN(reopen_keeps_data);
    RUN(code_kept_whole);
    RUN(migration_from_version_3);
    DONE();
}
