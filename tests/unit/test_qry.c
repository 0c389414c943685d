/* SPDX-License-Identifier: MIT */
/* Unit tests for src/qry: identifiers compiled to SQL and run for real against an index built
 * with idx_instance_put, one test per matching type of PS3.4 C.2.2.2, the veterinary keys, the
 * level rules, errors and allocation failures. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "harness.h"
#include "idx/idx.h"
#include "qry/qry.h"

#define T(g, e) DCM_TAG(g, e)
#define STUDY_UID T(0x0020, 0x000D)
#define SERIES_UID T(0x0020, 0x000E)
#define SOP_UID T(0x0008, 0x0018)

static char db_path[64];
static sqlite3 *db;

typedef struct rec_spec {
    const char *pid, *name, *species, *species_code, *breed, *breed_code, *clinic, *neutered;
    const char *study, *date, *time, *accession, *series, *modality, *series_number, *sop;
} rec_spec;

static void record_of(const rec_spec *s, idx_record *out);

static void put_record(idx *x, const idx_record *r)
{
    vp_error err;
    vp_error_clear(&err);
    if (idx_instance_put(x, r, &err) != VP_OK) {
        fprintf(stderr, "idx_instance_put: %s\n", err.msg);
        exit(2);
    }
}

static void put(idx *x, const rec_spec *s)
{
    idx_record r;
    record_of(s, &r);
    put_record(x, &r);
}

static void record_of(const rec_spec *s, idx_record *out)
{
    idx_record r;
    memset(&r, 0, sizeof r);
#define SET(field, v) snprintf(r.field, sizeof r.field, "%s", (v) ? (v) : "")
    SET(patient_id, s->pid);
    SET(patient_name, s->name);
    SET(species, s->species);
    SET(species_code, s->species_code);
    SET(breed, s->breed);
    SET(breed_code, s->breed_code);
    /* codes come with their scheme and, as meaning, the description */
    if (r.species_code[0]) {
        SET(species_scheme, "SCT");
        SET(species_meaning, s->species);
    }
    if (r.breed_code[0]) {
        SET(breed_scheme, "SCT");
        SET(breed_meaning, s->breed);
    }
    SET(clinic, s->clinic);
    SET(sex_neutered, s->neutered);
    SET(study_uid, s->study);
    SET(study_date, s->date);
    SET(study_time, s->time);
    SET(accession, s->accession);
    SET(series_uid, s->series);
    SET(modality, s->modality);
    SET(series_number, s->series_number);
    SET(sop_instance_uid, s->sop);
    SET(sop_class_uid, "1.2.840.10008.5.1.4.1.1.1.1");
    snprintf(r.path, sizeof r.path, "objects/%s.dcm", s->sop);
#undef SET
    r.frames = 1;
    r.size = 10;
    *out = r;
}

/* Four studies of three animals; unknown (empty) values on purpose. */
static void setup(void)
{
    snprintf(db_path, sizeof db_path, "/tmp/vp_test_qry_%d.db", (int)getpid());
    unlink(db_path);
    idx *x;
    vp_error err;
    vp_error_clear(&err);
    if (idx_open(db_path, &x, &err) != VP_OK) {
        fprintf(stderr, "idx_open: %s\n", err.msg);
        exit(2);
    }
    static const rec_spec recs[] = {
        {"P1", "Smith^Rex", "Canine", "448771007", "Border Collie", "", "Tierklinik", "ALTERED",
         "1.1", "20240105", "101500", "A%1", "1.1.1", "DX", "1", "1.1.1.1"},
        {"P1", "Smith^Rex", "Canine", "448771007", "Border Collie", "", "Tierklinik", "ALTERED",
         "1.1", "20240105", "101500", "A%1", "1.1.2", "CT", "2", "1.1.2.1"},
        {"P_2", "jones^bella", "Feline", "448169003", "", "", "", "UNALTERED", "1.2", "20240220",
         "083000", "A11", "1.2.1", "MR", "1", "1.2.1.1"},
        {"P3", "O'Neil^Max[1]", "Canine", "", "Labrador", "2789006", "Vet%Clinic", "", "1.3", "",
         "", "AX1", "1.3.1", "US", "1", "1.3.1.1"},
        {"P3", "O'Neil^Max[1]", "Canine", "", "Labrador", "2789006", "Vet%Clinic", "", "1.4",
         "20231231", "235959.5", "", "1.4.1", "CT", "01", "1.4.1.1"},
        {"P4", "M\xc3\xbcller^Luna", "Equine", "", "", "", "Pferdeklinik", "", "1.5", "20220101",
         "", "", "1.5.1", "DX", "3", "1.5.1.1"},
    };
    for (size_t i = 0; i < sizeof recs / sizeof recs[0]; i++)
        put(x, &recs[i]);
    idx_close(x);
    if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        fprintf(stderr, "sqlite3_open_v2 failed\n");
        exit(2);
    }
}

static dcm_dataset *ident(const char *level)
{
    dcm_dataset *ds = dcm_dataset_new();
    if (level)
        dcm_dataset_set_str(ds, QRY_TAG_QUERY_RETRIEVE_LEVEL, DCM_VR_CS, level);
    return ds;
}

static void key(dcm_dataset *ds, uint32_t tag, enum dcm_vr vr, const char *v)
{
    dcm_dataset_set_str(ds, tag, vr, v);
}

/*
 * Compiles ds (freed here), runs the SQL and returns the values of the return key `out_tag`
 * of the matches joined by ",", or "ERR:<status>" when compiling failed.
 */
static char result[8192];
static const char *run(dcm_dataset *ds, const qry_opts *opts, uint32_t out_tag)
{
    if (!dcm_dataset_find(ds, out_tag))
        dcm_dataset_set_str(ds, out_tag, dcm_dict_vr(out_tag), "");
    qry *q;
    vp_error err;
    vp_error_clear(&err);
    vp_status st = qry_compile(ds, opts, &q, &err);
    dcm_dataset_free(ds);
    if (st) {
        snprintf(result, sizeof result, "ERR:%s", vp_status_name(st));
        if (err.msg[0] == 0)
            strcat(result, " (no message)");
        return result;
    }
    int col = -1;
    for (size_t i = 0; i < qry_return_key_count(q); i++)
        if (qry_return_key(q, i)->tag == out_tag)
            col = qry_return_key(q, i)->column;
    sqlite3_stmt *stmt = NULL;
    result[0] = 0;
    if (col < 0 || sqlite3_prepare_v2(db, qry_sql(q), -1, &stmt, NULL) != SQLITE_OK) {
        snprintf(result, sizeof result, "SQL:%s: %s", qry_sql(q), sqlite3_errmsg(db));
        qry_free(q);
        return result;
    }
    CHECK_INT(sqlite3_bind_parameter_count(stmt), qry_param_count(q));
    for (size_t i = 0; i < qry_param_count(q); i++)
        sqlite3_bind_text(stmt, (int)i + 1, qry_param(q, i), -1, SQLITE_STATIC);
    CHECK_INT(sqlite3_column_count(stmt), qry_column_count(q));
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (result[0])
            strncat(result, ",", sizeof result - strlen(result) - 1);
        const char *v = (const char *)sqlite3_column_text(stmt, col);
        strncat(result, v ? v : "(null)", sizeof result - strlen(result) - 1);
    }
    if (rc != SQLITE_DONE)
        snprintf(result, sizeof result, "STEP:%s", sqlite3_errmsg(db));
    sqlite3_finalize(stmt);
    qry_free(q);
    return result;
}

/* One key at STUDY level, returning the Study Instance UIDs. */
static const char *study1(uint32_t tag, enum dcm_vr vr, const char *v, const qry_opts *o)
{
    dcm_dataset *ds = ident("STUDY");
    key(ds, tag, vr, v);
    return run(ds, o, STUDY_UID);
}

static const qry_opts strict = {.unknown_fails = true};

/* PATIENT level, a code sequence key with an item holding the Code Value, Coding Scheme
 * Designator and Code Meaning given (NULL: not in the item), returning the Patient IDs. */
static const char *code_key(uint32_t seq, const char *value, const char *scheme,
                            const char *meaning, const qry_opts *o)
{
    dcm_dataset *ds = ident("PATIENT");
    dcm_element *sq;
    dcm_dataset *item;
    dcm_dataset_set_sequence(ds, seq, &sq);
    dcm_element_add_item(sq, &item);
    if (value)
        key(item, T(0x0008, 0x0100), DCM_VR_SH, value);
    if (scheme)
        key(item, T(0x0008, 0x0102), DCM_VR_SH, scheme);
    if (meaning)
        key(item, T(0x0008, 0x0104), DCM_VR_LO, meaning);
    return run(ds, o, T(0x0010, 0x0020));
}

/* QRY_TEXT_VALUES_MAX of src/qry/internal.h: values of a key other than a list of UIDs. */
#define QRY_TEXT_VALUES_MAX_FOR_TEST 256

TEST(universal_matching)
{
    /* C.2.2.2.3: zero length matches all; "*" is the same (C.2.2.2.4 note). */
    CHECK_STR(run(ident("STUDY"), NULL, STUDY_UID), "1.1,1.2,1.3,1.4,1.5");
    CHECK_STR(study1(T(0x0010, 0x0010), DCM_VR_PN, "", NULL), "1.1,1.2,1.3,1.4,1.5");
    CHECK_STR(study1(T(0x0010, 0x0010), DCM_VR_PN, "*", NULL), "1.1,1.2,1.3,1.4,1.5");
    CHECK_STR(study1(T(0x0008, 0x0020), DCM_VR_DA, "*", NULL), "1.1,1.2,1.3,1.4,1.5");
    CHECK_STR(run(ident("PATIENT"), NULL, T(0x0010, 0x0020)), "P1,P_2,P3,P4");
}

TEST(single_value_matching)
{
    CHECK_STR(study1(T(0x0010, 0x0020), DCM_VR_LO, "P1", NULL), "1.1");
    CHECK_STR(study1(T(0x0010, 0x0020), DCM_VR_LO, "p1", NULL), "");          /* case-sensitive */
    CHECK_STR(study1(T(0x0010, 0x0020), DCM_VR_LO, " P3 ", NULL), "1.3,1.4"); /* padding */
    CHECK_STR(study1(STUDY_UID, DCM_VR_UI, "1.2", NULL), "1.2");
    CHECK_STR(study1(T(0x0008, 0x0020), DCM_VR_DA, "20240105", &strict), "1.1");
    /* a time of reduced precision matches the whole hour */
    CHECK_STR(study1(T(0x0008, 0x0030), DCM_VR_TM, "10", &strict), "1.1");
    /* IS compares as numbers: "01" stored, "1" asked */
    dcm_dataset *ds = ident("SERIES");
    key(ds, STUDY_UID, DCM_VR_UI, "1.4");
    key(ds, T(0x0020, 0x0011), DCM_VR_IS, "1");
    CHECK_STR(run(ds, NULL, SERIES_UID), "1.4.1");
}

TEST(person_name_case)
{
    uint32_t pn = T(0x0010, 0x0010);
    qry_opts ci = {.pn_case_insensitive = true};
    CHECK_STR(study1(pn, DCM_VR_PN, "SMITH^REX", NULL), "");
    CHECK_STR(study1(pn, DCM_VR_PN, "SMITH^REX", &ci), "1.1");
    CHECK_STR(study1(pn, DCM_VR_PN, "Jones*", NULL), "");
    CHECK_STR(study1(pn, DCM_VR_PN, "Jones*", &ci), "1.2");
    CHECK_STR(study1(pn, DCM_VR_PN, "*^BELLA", &ci), "1.2");
    /* case-insensitive names do not make other keys case-insensitive */
    CHECK_STR(study1(T(0x0010, 0x0020), DCM_VR_LO, "p*", &ci), "");
}

/* A name prefix ignoring case is an index range on the NOCASE name index, not a scan of every
 * animal: the plan of the compiled query names patient_name_i. */
TEST(person_name_prefix_uses_index)
{
    uint32_t pn = T(0x0010, 0x0010);
    qry_opts ci = {.pn_case_insensitive = true};
    CHECK_STR(study1(pn, DCM_VR_PN, "sMiTh*", &ci), "1.1");
    CHECK_STR(study1(pn, DCM_VR_PN, "SMITH^R?X", &ci), "1.1");
    dcm_dataset *ds = ident("STUDY");
    key(ds, pn, DCM_VR_PN, "SMITH*");
    qry *q;
    vp_error err;
    vp_error_clear(&err);
    CHECK_OK(qry_compile(ds, &ci, &q, &err));
    dcm_dataset_free(ds);
    char sql[4096];
    snprintf(sql, sizeof sql, "EXPLAIN QUERY PLAN %s", qry_sql(q));
    sqlite3_stmt *stmt;
    CHECK(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) == SQLITE_OK);
    for (size_t i = 0; i < qry_param_count(q); i++)
        sqlite3_bind_text(stmt, (int)i + 1, qry_param(q, i), -1, SQLITE_STATIC);
    bool indexed = false;
    while (sqlite3_step(stmt) == SQLITE_ROW) {
        const char *detail = (const char *)sqlite3_column_text(stmt, 3);
        if (detail && strstr(detail, "patient_name_i"))
            indexed = true;
    }
    sqlite3_finalize(stmt);
    qry_free(q);
    CHECK(indexed);
}

TEST(wild_card_matching)
{
    uint32_t pn = T(0x0010, 0x0010), pid = T(0x0010, 0x0020), acc = T(0x0008, 0x0050);
    CHECK_STR(study1(pn, DCM_VR_PN, "Smith*", NULL), "1.1");
    CHECK_STR(study1(pn, DCM_VR_PN, "?mith^R?x", NULL), "1.1");
    CHECK_STR(study1(pn, DCM_VR_PN, "*i*", NULL), "1.1,1.3,1.4");
    /* "?" is one character, also a multi-byte one */
    CHECK_STR(study1(pn, DCM_VR_PN, "M?ller*", NULL), "1.5");
    /* SQL metacharacters in a value are plain characters */
    CHECK_STR(study1(acc, DCM_VR_SH, "A%1", &strict), "1.1");
    CHECK_STR(study1(acc, DCM_VR_SH, "A%*", &strict), "1.1");
    CHECK_STR(study1(acc, DCM_VR_SH, "A_1", &strict), "");
    CHECK_STR(study1(pid, DCM_VR_LO, "P_*", NULL), "1.2");
    CHECK_STR(study1(pid, DCM_VR_LO, "P3\\P_?", NULL), "1.2,1.3,1.4"); /* any value matches */
    /* GLOB's own "[" */
    CHECK_STR(study1(pn, DCM_VR_PN, "O'Neil^Max[1]", NULL), "1.3,1.4");
    CHECK_STR(study1(pn, DCM_VR_PN, "*[1*", NULL), "1.3,1.4");
    CHECK_STR(study1(pn, DCM_VR_PN, "*[a-z]*", NULL), "");
    CHECK_STR(study1(T(0x0010, 0x2299), DCM_VR_LO, "Vet%*", &strict), "1.3,1.4");
}

TEST(list_of_uid_matching)
{
    CHECK_STR(study1(STUDY_UID, DCM_VR_UI, "1.1\\1.3\\9.9", NULL), "1.1,1.3");
    CHECK_STR(study1(STUDY_UID, DCM_VR_UI, "1.2.abc", NULL), "ERR:VP_EINVAL");
    CHECK_STR(study1(STUDY_UID, DCM_VR_UI, "1.1\\1.*", NULL), "ERR:VP_EINVAL");
    /* a list of 10,000 passes, one more is refused before anything is allocated */
    vp_buf b;
    vp_buf_init(&b, 0);
    for (int i = 0; i < 10000; i++)
        if (i)
            vp_buf_printf(&b, "\\1.2.%d", i);
        else
            vp_buf_puts(&b, "1.2");
    CHECK_STR(study1(STUDY_UID, DCM_VR_UI, (char *)b.data, NULL), "1.2");
    vp_buf_puts(&b, "\\1.3");
    CHECK_STR(study1(STUDY_UID, DCM_VR_UI, (char *)b.data, NULL), "ERR:VP_ELIMIT");
    qry_opts small = {.max_values = 2};
    CHECK_STR(study1(STUDY_UID, DCM_VR_UI, "1.1\\1.2\\1.3", &small), "ERR:VP_ELIMIT");
    vp_buf_fini(&b);
}

TEST(range_matching)
{
    uint32_t da = T(0x0008, 0x0020), tm = T(0x0008, 0x0030);
    CHECK_STR(study1(da, DCM_VR_DA, "20240101-20240131", &strict), "1.1");
    CHECK_STR(study1(da, DCM_VR_DA, "20240105-20240220", &strict), "1.1,1.2");
    CHECK_STR(study1(da, DCM_VR_DA, "-20231231", &strict), "1.4,1.5");
    CHECK_STR(study1(da, DCM_VR_DA, "20240201-", &strict), "1.2");
    CHECK_STR(study1(da, DCM_VR_DA, "20240101 - 20240131", &strict), "1.1");
    /* C.2.2.1.1: an unknown (empty) value matches any key */
    CHECK_STR(study1(da, DCM_VR_DA, "20240101-20240131", NULL), "1.1,1.3");
    CHECK_STR(study1(da, DCM_VR_DA, "-20231231", NULL), "1.3,1.4,1.5");
    CHECK_STR(study1(tm, DCM_VR_TM, "0800-0900", &strict), "1.2");
    CHECK_STR(study1(tm, DCM_VR_TM, "-1015", &strict), "1.1,1.2");
    CHECK_STR(study1(tm, DCM_VR_TM, "2359-", &strict), "1.4");
    CHECK_STR(study1(tm, DCM_VR_TM, "235959.5-235959.6", &strict), "1.4");
    /* malformed or reversed ranges are refused (C.2.2.2.5.1: date1 <= date2) */
    CHECK_STR(study1(da, DCM_VR_DA, "20240131-20240101", NULL), "ERR:VP_EINVAL");
    CHECK_STR(study1(tm, DCM_VR_TM, "1200-1100", NULL), "ERR:VP_EINVAL");
    CHECK_STR(study1(da, DCM_VR_DA, "-", NULL), "ERR:VP_EINVAL");
    CHECK_STR(study1(da, DCM_VR_DA, "2024-01-01", NULL), "ERR:VP_EINVAL");
    CHECK_STR(study1(da, DCM_VR_DA, "20241301", NULL), "ERR:VP_EINVAL");
    CHECK_STR(study1(da, DCM_VR_DA, "2024*", NULL), "ERR:VP_EINVAL");
    CHECK_STR(study1(tm, DCM_VR_TM, "25", NULL), "ERR:VP_EINVAL");
    CHECK_STR(study1(tm, DCM_VR_TM, "1015.5", NULL), "ERR:VP_EINVAL");
}

TEST(combined_datetime_matching)
{
    qry_opts dt = {.combined_datetime = true, .unknown_fails = true};
    dcm_dataset *ds = ident("STUDY");
    key(ds, T(0x0008, 0x0020), DCM_VR_DA, "20231231-20240105");
    key(ds, T(0x0008, 0x0030), DCM_VR_TM, "2359-1015");
    CHECK_STR(run(ds, &dt, STUDY_UID), "1.1,1.4");
    ds = ident("STUDY");
    key(ds, T(0x0008, 0x0020), DCM_VR_DA, "20231231-20240105");
    key(ds, T(0x0008, 0x0030), DCM_VR_TM, "2359-1000");
    CHECK_STR(run(ds, &dt, STUDY_UID), "1.4");
    /* without the option each range applies alone: no time is in 23:59-10:00 */
    ds = ident("STUDY");
    key(ds, T(0x0008, 0x0020), DCM_VR_DA, "20231231-20240105");
    key(ds, T(0x0008, 0x0030), DCM_VR_TM, "2359-1000");
    CHECK_STR(run(ds, &strict, STUDY_UID), "ERR:VP_EINVAL");
    /* different forms: matched separately */
    ds = ident("STUDY");
    key(ds, T(0x0008, 0x0020), DCM_VR_DA, "20231231-");
    key(ds, T(0x0008, 0x0030), DCM_VR_TM, "0800-1100");
    CHECK_STR(run(ds, &dt, STUDY_UID), "1.1,1.2");
}

TEST(veterinary_keys)
{
    CHECK_STR(study1(T(0x0010, 0x2201), DCM_VR_LO, "Canine", &strict), "1.1,1.3,1.4");
    CHECK_STR(study1(T(0x0010, 0x2292), DCM_VR_LO, "Lab*", &strict), "1.3,1.4");
    CHECK_STR(study1(T(0x0010, 0x2299), DCM_VR_LO, "Tierklinik", &strict), "1.1");
    /* the unknown clinic of P_2 matches unless unknown values fail */
    CHECK_STR(study1(T(0x0010, 0x2299), DCM_VR_LO, "Tierklinik", NULL), "1.1,1.2");
    /* Empty Value Matching: "" asks for entities without a value */
    CHECK_STR(study1(T(0x0010, 0x2299), DCM_VR_LO, "\"\"", NULL), "1.2");
    CHECK_STR(study1(T(0x0008, 0x0050), DCM_VR_SH, "\"\"", NULL), "1.4,1.5");
    /* sequence matching on the Code Value of the single item (C.2.2.2.6) */
    dcm_dataset *ds = ident("STUDY");
    dcm_element *sq;
    dcm_dataset *item;
    dcm_dataset_set_sequence(ds, T(0x0010, 0x2202), &sq);
    dcm_element_add_item(sq, &item);
    key(item, T(0x0008, 0x0100), DCM_VR_SH, "448169003");
    key(item, T(0x0008, 0x0102), DCM_VR_SH, "SCT");
    CHECK_STR(run(ds, &strict, STUDY_UID), "1.2");
    /* every item key matches: another scheme, the same value is another code */
    CHECK_STR(code_key(T(0x0010, 0x2202), "448169003", "99VP", NULL, &strict), "");
    CHECK_STR(code_key(T(0x0010, 0x2202), NULL, "S?T", NULL, &strict), "P1,P_2");
    CHECK_STR(code_key(T(0x0010, 0x2202), NULL, "SCT", "Fel*", &strict), "P_2");
    CHECK_STR(code_key(T(0x0010, 0x2293), NULL, NULL, "Labrador", &strict), "P3");
    /* an unknown scheme or meaning matches unless unknown values fail (C.2.2.1.1) */
    CHECK_STR(code_key(T(0x0010, 0x2202), NULL, "SCT", NULL, NULL), "P1,P_2,P3,P4");
    CHECK_STR(code_key(T(0x0010, 0x2202), NULL, "\"\"", NULL, NULL), "P3,P4");
    /* wild cards are those of the VR; a key with the wrong VR is refused */
    CHECK_STR(code_key(T(0x0010, 0x2202), "4481*", NULL, "*", &strict), "P_2");
    ds = ident("PATIENT");
    dcm_dataset_set_sequence(ds, T(0x0010, 0x2202), &sq);
    dcm_element_add_item(sq, &item);
    key(item, T(0x0008, 0x0104), DCM_VR_DA, "20240101");
    CHECK_STR(run(ds, NULL, T(0x0010, 0x0020)), "ERR:VP_EINVAL");
    ds = ident("PATIENT");
    dcm_dataset_set_sequence(ds, T(0x0010, 0x2293), &sq);
    dcm_element_add_item(sq, &item);
    key(item, T(0x0008, 0x0100), DCM_VR_SH, "2789*");
    CHECK_STR(run(ds, &strict, T(0x0010, 0x0020)), "P3");
    /* an empty item or no item: universal, a return key */
    ds = ident("PATIENT");
    dcm_dataset_set_sequence(ds, T(0x0010, 0x2202), &sq);
    dcm_element_add_item(sq, &item);
    CHECK_STR(run(ds, &strict, T(0x0010, 0x2202)), "448771007,448169003,,");
    /* two items: not a matching key the standard defines */
    ds = ident("PATIENT");
    dcm_dataset_set_sequence(ds, T(0x0010, 0x2202), &sq);
    dcm_element_add_item(sq, &item);
    dcm_element_add_item(sq, &item);
    CHECK_STR(run(ds, NULL, T(0x0010, 0x0020)), "ERR:VP_EINVAL");
    /* Patient's Sex Neutered is kept per study: at PATIENT level, any study matches */
    ds = ident("PATIENT");
    key(ds, T(0x0010, 0x2203), DCM_VR_CS, "ALTERED");
    CHECK_STR(run(ds, &strict, T(0x0010, 0x0020)), "P1");
    CHECK_STR(study1(T(0x0010, 0x2203), DCM_VR_CS, "UNALTERED", &strict), "1.2");
}

TEST(modalities_in_study)
{
    uint32_t mods = T(0x0008, 0x0061);
    CHECK_STR(study1(mods, DCM_VR_CS, "CT", NULL), "1.1,1.4");
    CHECK_STR(study1(mods, DCM_VR_CS, "C*", NULL), "1.1,1.4");
    CHECK_STR(study1(mods, DCM_VR_CS, "MR\\US", NULL), "1.2,1.3");
    CHECK_STR(study1(mods, DCM_VR_CS, "D*T", NULL), ""); /* not across "CT\DX" */
    CHECK_STR(study1(mods, DCM_VR_CS, "", NULL), "1.1,1.2,1.3,1.4,1.5");
    dcm_dataset *ds = ident("STUDY");
    key(ds, STUDY_UID, DCM_VR_UI, "1.1");
    CHECK_STR(run(ds, NULL, mods), "CT\\DX");
}

TEST(levels)
{
    dcm_dataset *ds = ident("SERIES");
    key(ds, T(0x0008, 0x0060), DCM_VR_CS, "CT");
    CHECK_STR(run(ds, NULL, SERIES_UID), "1.1.2,1.4.1");
    ds = ident("IMAGE");
    key(ds, SERIES_UID, DCM_VR_UI, "1.1.1");
    CHECK_STR(run(ds, NULL, SOP_UID), "1.1.1.1");
    ds = ident("IMAGE");
    key(ds, T(0x0010, 0x2201), DCM_VR_LO, "Feline");
    CHECK_STR(run(ds, &strict, SOP_UID), "1.2.1.1");
    /* missing or unknown level: A900 at the DIMSE edge */
    CHECK_STR(run(ident(NULL), NULL, STUDY_UID), "ERR:VP_EINVAL");
    CHECK_STR(run(ident("FOO"), NULL, STUDY_UID), "ERR:VP_EINVAL");
    CHECK_STR(run(ident("study"), NULL, STUDY_UID), "ERR:VP_EINVAL");
    CHECK_STR(run(ident("STUDY\\SERIES"), NULL, STUDY_UID), "ERR:VP_EINVAL");
    /* keys below the level (C.4.1.2.1) */
    ds = ident("STUDY");
    key(ds, SERIES_UID, DCM_VR_UI, "");
    CHECK_STR(run(ds, NULL, STUDY_UID), "ERR:VP_EINVAL");
    ds = ident("STUDY");
    key(ds, T(0x0008, 0x0060), DCM_VR_CS, "CT");
    qry_opts lenient = {.ignore_lower_keys = true};
    CHECK_STR(run(ds, &lenient, STUDY_UID), "1.1,1.2,1.3,1.4,1.5");
    ds = ident("PATIENT");
    key(ds, STUDY_UID, DCM_VR_UI, "1.1");
    CHECK_STR(run(ds, NULL, T(0x0010, 0x0020)), "ERR:VP_EINVAL");
    qry_opts study_root = {.model = QRY_MODEL_STUDY_ROOT};
    CHECK_STR(run(ident("PATIENT"), &study_root, T(0x0010, 0x0020)), "ERR:VP_EINVAL");
    CHECK_STR(run(ident("STUDY"), &study_root, T(0x0010, 0x0020)), "P1,P_2,P3,P3,P4");
}

TEST(bad_values)
{
    /* a key whose VR is not the attribute's */
    CHECK_STR(study1(T(0x0010, 0x0020), DCM_VR_DA, "P1", NULL), "ERR:VP_EINVAL");
    /* UN (e.g. from an implicit VR peer without the dictionary) is read as the attribute */
    CHECK_STR(study1(T(0x0010, 0x0020), DCM_VR_UN, "P1", NULL), "1.1");
    CHECK_STR(study1(T(0x0020, 0x0010), DCM_VR_SH, "", NULL), "1.1,1.2,1.3,1.4,1.5");
    dcm_dataset *ds = ident("SERIES");
    key(ds, T(0x0020, 0x0011), DCM_VR_IS, "one");
    CHECK_STR(run(ds, NULL, SERIES_UID), "ERR:VP_EINVAL");
    ds = ident("SERIES");
    key(ds, T(0x0020, 0x0011), DCM_VR_IS, "1*");
    CHECK_STR(run(ds, NULL, SERIES_UID), "ERR:VP_EINVAL");
    ds = ident("STUDY");
    dcm_element *sq;
    dcm_dataset_set_sequence(ds, T(0x0010, 0x0020), &sq);
    CHECK_STR(run(ds, NULL, STUDY_UID), "ERR:VP_EINVAL");
}

TEST(character_set)
{
    /* a Latin-1 key matches the UTF-8 index value */
    dcm_dataset *ds = ident("STUDY");
    key(ds, DCM_TAG_SPECIFIC_CHARACTER_SET, DCM_VR_CS, "ISO_IR 100");
    key(ds, T(0x0010, 0x0010), DCM_VR_PN, "M\xfcller^*");
    CHECK_STR(run(ds, NULL, STUDY_UID), "1.5");
}

TEST(return_keys_and_sql)
{
    dcm_dataset *ds = ident("STUDY");
    key(ds, DCM_TAG_SPECIFIC_CHARACTER_SET, DCM_VR_CS, "ISO_IR 192");
    key(ds, T(0x0008, 0x1060), DCM_VR_PN, "");       /* Physicians Reading Study: no column */
    key(ds, T(0x0010, 0x0010), DCM_VR_PN, "Smith*"); /* matching and return key */
    key(ds, T(0x0020, 0x1206), DCM_VR_IS, "5");      /* computed: returned, never matched */
    key(ds, T(0x0009, 0x1001), DCM_VR_LO, "x");      /* private: return key only */
    qry *q;
    vp_error err;
    vp_error_clear(&err);
    qry_opts o = {.limit = 7};
    CHECK_OK(qry_compile(ds, &o, &q, &err));
    dcm_dataset_free(ds);
    if (!q)
        return;
    CHECK_INT(qry_get_level(q), QRY_LEVEL_STUDY);
    CHECK_INT(qry_return_key_count(q), 4);
    CHECK_INT(qry_return_key(q, 0)->tag, T(0x0008, 0x1060));
    CHECK_INT(qry_return_key(q, 0)->column, -1);
    CHECK_INT(qry_return_key(q, 1)->tag, T(0x0009, 0x1001));
    CHECK_INT(qry_return_key(q, 1)->column, -1);
    CHECK_INT(qry_return_key(q, 2)->column, 1);
    CHECK_INT(qry_column_tag(q, 1), T(0x0010, 0x0010));
    CHECK_INT(qry_return_key(q, 3)->column, 2);
    CHECK_INT(qry_column_tag(q, 2), T(0x0020, 0x1206));
    CHECK_INT(qry_column_count(q), 3);
    CHECK_INT(qry_param_count(q), 1);
    CHECK_STR(qry_param(q, 0), "Smith*");
    CHECK(qry_param(q, 1) == NULL);
    CHECK_STR(qry_sql(q), "SELECT study.id, patient.patient_name, study.n_series"
                          " FROM study JOIN patient ON patient.id = study.patient"
                          " WHERE (patient.patient_name = '' OR patient.patient_name GLOB ?)"
                          " ORDER BY study.id LIMIT 7");
    qry_free(q);
    qry_free(NULL);
    CHECK_STR(qry_level_name(QRY_LEVEL_IMAGE), "IMAGE");
    /* LIMIT applies to the run */
    o.limit = 2;
    CHECK_STR(run(ident("STUDY"), &o, STUDY_UID), "1.1,1.2");
}

/* Text of a string element of an answer: "(absent)" when missing, "" when zero length. */
static const char *answer_text(const dcm_dataset *ds, uint32_t tag)
{
    static char buf[256];
    const dcm_element *el = ds ? dcm_dataset_find(ds, tag) : NULL;
    if (!el)
        return "(absent)";
    size_t n = dcm_element_length(el);
    const uint8_t *v = dcm_element_value(el);
    while (n && v && (v[n - 1] == ' ' || v[n - 1] == 0))
        n--;
    snprintf(buf, sizeof buf, "%.*s", (int)n, v ? (const char *)v : "");
    return buf;
}

/* qry_answer: every key of the request comes back (C.4.1.1.3.2), valued from the row. */
TEST(answers)
{
    dcm_dataset *ds = ident("STUDY");
    key(ds, DCM_TAG_SPECIFIC_CHARACTER_SET, DCM_VR_CS, "ISO_IR 100");
    key(ds, T(0x0008, 0x0054), DCM_VR_AE, ""); /* Retrieve AE Title: the caller's */
    key(ds, T(0x0008, 0x1060), DCM_VR_PN, ""); /* Physicians Reading Study: no column */
    key(ds, T(0x0010, 0x0010), DCM_VR_PN, "M\xfcller*");
    key(ds, T(0x0010, 0x2292), DCM_VR_LO, ""); /* Breed: unknown for this animal */
    key(ds, T(0x0020, 0x1208), DCM_VR_IS, ""); /* computed */
    key(ds, STUDY_UID, DCM_VR_UI, "");
    dcm_element *sq;
    dcm_dataset_set_sequence(ds, T(0x0010, 0x2202), &sq);
    dcm_dataset_set_sequence(ds, T(0x0010, 0x2293), &sq);
    qry *q = NULL;
    vp_error err;
    vp_error_clear(&err);
    CHECK_OK(qry_compile(ds, NULL, &q, &err));
    dcm_dataset_free(ds);
    if (!q)
        return;
    sqlite3_stmt *stmt = NULL;
    CHECK_INT(sqlite3_prepare_v2(db, qry_sql(q), -1, &stmt, NULL), SQLITE_OK);
    for (size_t i = 0; i < qry_param_count(q); i++)
        sqlite3_bind_text(stmt, (int)i + 1, qry_param(q, i), -1, SQLITE_STATIC);
    CHECK_INT(sqlite3_step(stmt), SQLITE_ROW);
    const char *cols[16];
    size_t n = (size_t)sqlite3_column_count(stmt);
    for (size_t i = 0; i < n && i < 16; i++)
        cols[i] = (const char *)sqlite3_column_text(stmt, (int)i);
    dcm_dataset *a = dcm_dataset_new();
    CHECK_OK(qry_answer(q, cols, n, a, &err));
    sqlite3_finalize(stmt);
    CHECK_STR(answer_text(a, DCM_TAG_SPECIFIC_CHARACTER_SET), "ISO_IR 192");
    CHECK_STR(answer_text(a, QRY_TAG_QUERY_RETRIEVE_LEVEL), "STUDY");
    CHECK_STR(answer_text(a, T(0x0008, 0x0054)), "(absent)");
    CHECK_STR(answer_text(a, T(0x0008, 0x1060)), "");
    CHECK_STR(answer_text(a, T(0x0010, 0x0010)), "M\xc3\xbcller^Luna");
    CHECK_STR(answer_text(a, T(0x0010, 0x2292)), "");
    CHECK_STR(answer_text(a, T(0x0020, 0x1208)), "1");
    CHECK_STR(answer_text(a, STUDY_UID), "1.5");
    CHECK_STR(answer_text(a, T(0x0010, 0x0020)), "(absent)"); /* not asked for */
    /* code sequences: empty when the animal has no code */
    CHECK_INT(dcm_element_item_count(dcm_dataset_find(a, T(0x0010, 0x2202))), 0);
    CHECK_INT(dcm_element_item_count(dcm_dataset_find(a, T(0x0010, 0x2293))), 0);
    dcm_dataset_free(a);
    /* a code: one item with its Code Value; NULL and short rows give zero length */
    a = dcm_dataset_new();
    int code_col = -1;
    for (size_t i = 0; i < qry_return_key_count(q); i++)
        if (qry_return_key(q, i)->tag == T(0x0010, 0x2202))
            code_col = qry_return_key(q, i)->column;
    CHECK(code_col > 0);
    const char *row[16] = {"9"};
    if (code_col > 0 && code_col < 16)
        row[code_col] = "448771007";
    CHECK_OK(qry_answer(q, row, 16, a, &err));
    const dcm_element *sp = dcm_dataset_find(a, T(0x0010, 0x2202));
    CHECK_INT(dcm_element_item_count(sp), 1);
    CHECK_STR(answer_text(dcm_element_item(sp, 0), T(0x0008, 0x0100)), "448771007");
    CHECK_STR(answer_text(a, T(0x0010, 0x0010)), "");
    dcm_dataset_free(a);
    a = dcm_dataset_new();
    CHECK_OK(qry_answer(q, row, 1, a, &err));
    CHECK_STR(answer_text(a, STUDY_UID), "");
    dcm_dataset_free(a);
    qry_free(q);
}

/* The compiled query of ds (freed here) and the columns of its first row on db, for
 * qry_answer; NULL when it does not compile or matches nothing. Release with first_row_fini. */
static sqlite3_stmt *first_stmt;
static qry *first_row(dcm_dataset *ds, const qry_opts *opts, const char **cols, size_t *n)
{
    qry *q = NULL;
    vp_error err;
    vp_error_clear(&err);
    vp_status st = qry_compile(ds, opts, &q, &err);
    dcm_dataset_free(ds);
    if (st)
        return NULL;
    first_stmt = NULL;
    if (sqlite3_prepare_v2(db, qry_sql(q), -1, &first_stmt, NULL) != SQLITE_OK) {
        qry_free(q);
        return NULL;
    }
    for (size_t i = 0; i < qry_param_count(q); i++)
        sqlite3_bind_text(first_stmt, (int)i + 1, qry_param(q, i), -1, SQLITE_STATIC);
    if (sqlite3_step(first_stmt) != SQLITE_ROW) {
        sqlite3_finalize(first_stmt);
        qry_free(q);
        return NULL;
    }
    *n = (size_t)sqlite3_column_count(first_stmt);
    for (size_t i = 0; i < *n && i < 16; i++)
        cols[i] = (const char *)sqlite3_column_text(first_stmt, (int)i);
    return q;
}

static void first_row_fini(qry *q)
{
    sqlite3_finalize(first_stmt);
    qry_free(q);
}

/* The answer to ds (freed here) for its first match; NULL when there is none. */
static dcm_dataset *first_answer(dcm_dataset *ds, const qry_opts *opts)
{
    const char *cols[16];
    size_t n = 0;
    qry *q = first_row(ds, opts, cols, &n);
    if (!q)
        return NULL;
    dcm_dataset *a = dcm_dataset_new();
    vp_error err;
    vp_error_clear(&err);
    CHECK_OK(qry_answer(q, cols, n, a, &err));
    first_row_fini(q);
    return a;
}

/* A PATIENT level identifier for Patient ID pid with the code sequence seq holding one item
 * (returned, for the caller's keys). */
static dcm_dataset *code_ident(const char *pid, uint32_t seq, dcm_dataset **item)
{
    dcm_dataset *ds = ident("PATIENT");
    key(ds, T(0x0010, 0x0020), DCM_VR_LO, pid);
    dcm_element *sq;
    dcm_dataset_set_sequence(ds, seq, &sq);
    dcm_element_add_item(sq, item);
    return ds;
}

/* Code sequences are answered as sequence matching says (C.2.2.2.6): the item holds exactly
 * the item keys asked for; an empty request item (or none) gets the whole stored item. */
TEST(code_answers)
{
    uint32_t sp = T(0x0010, 0x2202), cv = T(0x0008, 0x0100), cs = T(0x0008, 0x0102);
    uint32_t ver = T(0x0008, 0x0103), cm = T(0x0008, 0x0104), ctx = T(0x0008, 0x010F);
    /* some item keys: those, zero length when unknown; keys the index lacks too */
    dcm_dataset *item;
    dcm_dataset *ds = code_ident("P1", sp, &item);
    key(item, cm, DCM_VR_LO, "");
    key(item, ver, DCM_VR_SH, "");
    key(item, ctx, DCM_VR_CS, "");
    dcm_dataset *a = first_answer(ds, NULL);
    CHECK(a != NULL);
    const dcm_element *seq = a ? dcm_dataset_find(a, sp) : NULL;
    CHECK_INT(seq ? dcm_element_item_count(seq) : 9, 1);
    const dcm_dataset *got = seq ? dcm_element_item(seq, 0) : NULL;
    CHECK_STR(answer_text(got, cm), "Canine");
    CHECK_STR(answer_text(got, ver), "");
    CHECK_STR(answer_text(got, ctx), "");
    CHECK_STR(answer_text(got, cv), "(absent)");
    CHECK_STR(answer_text(got, cs), "(absent)");
    CHECK_INT(got ? dcm_dataset_count(got) : 0, 3);
    dcm_dataset_free(a);
    /* the Code Value alone */
    ds = code_ident("P1", sp, &item);
    key(item, cv, DCM_VR_SH, "");
    a = first_answer(ds, NULL);
    got = a ? dcm_element_item(dcm_dataset_find(a, sp), 0) : NULL;
    CHECK_STR(answer_text(got, cv), "448771007");
    CHECK_INT(got ? dcm_dataset_count(got) : 0, 1);
    dcm_dataset_free(a);
    /* an empty item: the whole stored code, without the version it does not have */
    ds = code_ident("P1", sp, &item);
    a = first_answer(ds, NULL);
    got = a ? dcm_element_item(dcm_dataset_find(a, sp), 0) : NULL;
    CHECK_STR(answer_text(got, cv), "448771007");
    CHECK_STR(answer_text(got, cs), "SCT");
    CHECK_STR(answer_text(got, cm), "Canine");
    CHECK_STR(answer_text(got, ver), "(absent)");
    dcm_dataset_free(a);
    /* a zero-length value read as no sequence: the same (K.2.2.1.2 note) */
    ds = ident("PATIENT");
    key(ds, T(0x0010, 0x0020), DCM_VR_LO, "P_2");
    dcm_dataset_set(ds, sp, DCM_VR_UN, NULL, 0, NULL);
    a = first_answer(ds, NULL);
    got = a ? dcm_element_item(dcm_dataset_find(a, sp), 0) : NULL;
    CHECK_STR(answer_text(got, cv), "448169003");
    CHECK_STR(answer_text(got, cm), "Feline");
    dcm_dataset_free(a);
    /* an animal without a code: no item, whatever was asked */
    ds = code_ident("P4", sp, &item);
    key(item, cm, DCM_VR_LO, "");
    a = first_answer(ds, NULL);
    CHECK_INT(a ? dcm_element_item_count(dcm_dataset_find(a, sp)) : 9, 0);
    dcm_dataset_free(a);
    /* Study Root, STUDY level: the patient's code, the breed's own item keys */
    ds = ident("STUDY");
    key(ds, STUDY_UID, DCM_VR_UI, "1.3");
    dcm_element *sq;
    dcm_dataset_set_sequence(ds, T(0x0010, 0x2293), &sq);
    dcm_element_add_item(sq, &item);
    key(item, cs, DCM_VR_SH, "");
    key(item, cm, DCM_VR_LO, "Lab*");
    qry_opts study_root = {.model = QRY_MODEL_STUDY_ROOT};
    a = first_answer(ds, &study_root);
    got = a ? dcm_element_item(dcm_dataset_find(a, T(0x0010, 0x2293)), 0) : NULL;
    CHECK_STR(answer_text(got, cs), "SCT");
    CHECK_STR(answer_text(got, cm), "Labrador");
    CHECK_STR(answer_text(got, cv), "(absent)");
    dcm_dataset_free(a);
    /* only the columns answered are selected */
    ds = code_ident("P1", sp, &item);
    key(item, cv, DCM_VR_SH, "4487*");
    qry *q = NULL;
    vp_error err;
    vp_error_clear(&err);
    CHECK_OK(qry_compile(ds, NULL, &q, &err));
    dcm_dataset_free(ds);
    if (q)
        CHECK_STR(qry_sql(q), "SELECT patient.id, patient.patient_id, patient.species_code"
                              " FROM patient WHERE (patient.patient_id = '' OR"
                              " patient.patient_id = ?) AND (patient.species_code = '' OR"
                              " patient.species_code GLOB ?) ORDER BY patient.id");
    qry_free(q);
    /* every allocation failure of the answer reports VP_ENOMEM */
    ds = code_ident("P1", sp, &item);
    key(item, cm, DCM_VR_LO, "");
    key(item, ctx, DCM_VR_CS, "");
    const char *cols[16];
    size_t n = 0;
    q = first_row(ds, NULL, cols, &n);
    CHECK(q != NULL);
    int ok = 0;
    for (long k = 1; q && k < 100 && !ok; k++) {
        a = dcm_dataset_new();
        vp_error_clear(&err);
        vp_alloc_fail_after(k);
        vp_status st = a ? qry_answer(q, cols, n, a, &err) : VP_ENOMEM;
        vp_alloc_fail_after(0);
        if (st == VP_OK)
            ok = 1;
        else if (st != VP_ENOMEM || !err.msg[0])
            FAIL_AT("allocation %ld: %s %s", k, vp_status_name(st), err.msg);
        dcm_dataset_free(a);
    }
    CHECK(ok);
    if (q)
        first_row_fini(q);
}

/* Every allocation failure reports VP_ENOMEM and leaks nothing (ASan checks the leaks). */
TEST(allocation_failures)
{
    int ok = 0;
    for (long n = 1; n < 400 && !ok; n++) {
        dcm_dataset *ds = ident("STUDY");
        key(ds, T(0x0010, 0x0010), DCM_VR_PN, "Sm[ith*\\Jones");
        key(ds, STUDY_UID, DCM_VR_UI, "1.1\\1.2");
        key(ds, T(0x0008, 0x0061), DCM_VR_CS, "CT");
        key(ds, T(0x0008, 0x0020), DCM_VR_DA, "20240101-");
        key(ds, T(0x0008, 0x0030), DCM_VR_TM, "1000-");
        key(ds, T(0x0010, 0x0021), DCM_VR_LO, "");
        qry_opts o = {.combined_datetime = true};
        qry *q = NULL;
        vp_error err;
        vp_error_clear(&err);
        vp_alloc_fail_after(n);
        vp_status st = qry_compile(ds, &o, &q, &err);
        vp_alloc_fail_after(0);
        if (st == VP_OK)
            ok = 1;
        else if (st != VP_ENOMEM)
            FAIL_AT("allocation %ld: %s %s", n, vp_status_name(st), err.msg);
        qry_free(q);
        dcm_dataset_free(ds);
    }
    CHECK(ok);
}

/* A second index for the tests below, swapped in for db while they run: pets written alone or
 * as "Owner^Pet", times of reduced precision, a neuter status that changed. */
static sqlite3 *pets_db;
static char pets_path[64];

static void pets_open(void)
{
    snprintf(pets_path, sizeof pets_path, "/tmp/vp_test_qry_pets_%d.db", (int)getpid());
    unlink(pets_path);
    idx *x;
    vp_error err;
    vp_error_clear(&err);
    if (idx_open(pets_path, &x, &err) != VP_OK) {
        fprintf(stderr, "idx_open: %s\n", err.msg);
        exit(2);
    }
    static const rec_spec recs[] = {
        {"Q1", "Rex", "Canine", "", "", "", "", "UNALTERED", "2.1", "20240105", "0930", "", "2.1.1",
         "DX", "1", "2.1.1.1"},
        {"Q2", "Brown^Rex", "Canine", "", "", "", "", "", "2.2", "20240105", "101530.5", "",
         "2.2.1", "DX", "1", "2.2.1.1"},
        {"Q3", "Rexford^Max", "Feline", "", "", "", "", "", "2.3", "20240105", "10", "", "2.3.1",
         "US", "1", "2.3.1.1"},
        {"Q4", "Spike^", "Lizard", "", "", "", "", "", "2.4", "20240105", "", "", "2.4.1", "OT",
         "1", "2.4.1.1"},
        /* Rex neutered since */
        {"Q1", "Rex", "Canine", "", "", "", "", "ALTERED", "2.5", "20240301", "1200", "", "2.5.1",
         "DX", "1", "2.5.1.1"},
        {"Q1", "Rex", "Canine", "", "", "", "", "", "2.5", "20240301", "1200", "", "2.5.1", "DX",
         "1", "2.5.1.2"},
    };
    /* the pet's name as idx_record_from_dataset reads Patient's Name */
    static const char *const pets[] = {"Rex", "Rex", "Max", "Spike", "Rex", "Rex"};
    for (size_t i = 0; i < sizeof recs / sizeof recs[0]; i++) {
        idx_record r;
        record_of(&recs[i], &r);
        snprintf(r.pet_name, sizeof r.pet_name, "%s", pets[i]);
        put_record(x, &r);
    }
    idx_close(x);
    if (sqlite3_open_v2(pets_path, &pets_db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        fprintf(stderr, "sqlite3_open_v2 failed\n");
        exit(2);
    }
}

static void pets_close(void)
{
    sqlite3_close(pets_db);
    char p[80];
    const char *const suffix[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s%s", pets_path, suffix[i]);
        unlink(p);
    }
}

/* run() on the pets index. */
static const char *run_pets(dcm_dataset *ds, const qry_opts *opts, uint32_t out_tag)
{
    sqlite3 *main_db = db;
    db = pets_db;
    const char *r = run(ds, opts, out_tag);
    db = main_db;
    return r;
}

static const char *pets_study(uint32_t tag, enum dcm_vr vr, const char *v, const qry_opts *o)
{
    dcm_dataset *ds = ident("STUDY");
    key(ds, tag, vr, v);
    return run_pets(ds, o, STUDY_UID);
}

/* The pet's name alone is findable: "^Rex" and "*^Rex*" also match the pet-name component the
 * index keeps (the given name of "Owner^Pet", the whole name when written alone). */
TEST(pet_name_matching)
{
    uint32_t pn = T(0x0010, 0x0010);
    qry_opts ci = {.pn_case_insensitive = true};
    CHECK_STR(pets_study(pn, DCM_VR_PN, "*^Rex*", NULL), "2.1,2.2,2.5");
    CHECK_STR(pets_study(pn, DCM_VR_PN, "^Rex", NULL), "2.1,2.2,2.5");
    CHECK_STR(pets_study(pn, DCM_VR_PN, "^rex", NULL), ""); /* case-sensitive unless asked */
    CHECK_STR(pets_study(pn, DCM_VR_PN, "^rex", &ci), "2.1,2.2,2.5");
    CHECK_STR(pets_study(pn, DCM_VR_PN, "*^R?x^*=*=", NULL), "2.1,2.2,2.5");
    CHECK_STR(pets_study(pn, DCM_VR_PN, "^Spike", NULL), "2.4"); /* "Spike^": no given name */
    /* a family name, a later component or another group constrained: no pet rule */
    CHECK_STR(pets_study(pn, DCM_VR_PN, "Rex*", NULL), "2.1,2.3,2.5");
    CHECK_STR(pets_study(pn, DCM_VR_PN, "Brown^Rex", NULL), "2.2");
    CHECK_STR(pets_study(pn, DCM_VR_PN, "^Rex^Jr", NULL), "");
    CHECK_STR(pets_study(pn, DCM_VR_PN, "^Rex=R", NULL), "");
    CHECK_STR(pets_study(pn, DCM_VR_PN, "*^*", NULL), "2.2,2.3,2.4");
    /* other person names have no pet component */
    CHECK_STR(pets_study(T(0x0008, 0x0090), DCM_VR_PN, "^Rex", NULL), "2.1,2.2,2.3,2.4,2.5");
    qry_opts strict_ci = {.pn_case_insensitive = true, .unknown_fails = true};
    CHECK_STR(pets_study(T(0x0008, 0x0090), DCM_VR_PN, "^Rex", &strict_ci), "");
    /* a list: any value */
    CHECK_STR(pets_study(pn, DCM_VR_PN, "^Max\\^Spike", NULL), "2.3,2.4");
}

/* A stored time of reduced precision is its first instant ("0930" is 09:30:00, "10" is
 * 10:00:00), compared with bounds of any precision (C.2.2.2.5.2). */
TEST(time_of_reduced_precision)
{
    uint32_t tm = T(0x0008, 0x0030);
    CHECK_STR(pets_study(tm, DCM_VR_TM, "093000-100000", &strict), "2.1,2.3");
    CHECK_STR(pets_study(tm, DCM_VR_TM, "093000", &strict), "2.1");
    CHECK_STR(pets_study(tm, DCM_VR_TM, "0930", &strict), "2.1");
    CHECK_STR(pets_study(tm, DCM_VR_TM, "-092959", &strict), "");
    CHECK_STR(pets_study(tm, DCM_VR_TM, "100000.000001-", &strict), "2.2,2.5");
    CHECK_STR(pets_study(tm, DCM_VR_TM, "-1015", &strict), "2.1,2.2,2.3");
    CHECK_STR(pets_study(tm, DCM_VR_TM, "101530.5", &strict), "2.2");
    CHECK_STR(pets_study(tm, DCM_VR_TM, "-1000", NULL), "2.1,2.3,2.4"); /* 2.4: unknown */
    /* combined with the date (C.2.2.2.5.4) */
    qry_opts dt = {.combined_datetime = true, .unknown_fails = true};
    dcm_dataset *ds = ident("STUDY");
    key(ds, T(0x0008, 0x0020), DCM_VR_DA, "20240105-20240105");
    key(ds, tm, DCM_VR_TM, "093000-100000");
    CHECK_STR(run_pets(ds, &dt, STUDY_UID), "2.1,2.3");
}

/* Patient's Sex Neutered at PATIENT level is the animal's latest known value, for matching
 * and answer alike; at STUDY level each study's own. */
TEST(sex_neutered_latest)
{
    uint32_t sn = T(0x0010, 0x2203), pid = T(0x0010, 0x0020);
    dcm_dataset *ds = ident("PATIENT");
    key(ds, sn, DCM_VR_CS, "");
    CHECK_STR(run_pets(ds, NULL, sn), "ALTERED,,,");
    ds = ident("PATIENT");
    key(ds, sn, DCM_VR_CS, "UNALTERED");
    CHECK_STR(run_pets(ds, &strict, pid), "");
    ds = ident("PATIENT");
    key(ds, sn, DCM_VR_CS, "ALTERED");
    CHECK_STR(run_pets(ds, &strict, pid), "Q1");
    ds = ident("PATIENT");
    key(ds, sn, DCM_VR_CS, "UNALTERED");
    CHECK_STR(run_pets(ds, NULL, pid), "Q2,Q3,Q4"); /* unknown values match */
    CHECK_STR(pets_study(sn, DCM_VR_CS, "UNALTERED", &strict), "2.1");
}

/* Computed keys (PS3.4 C.3.4): counts of the animal's studies, series and instances, and SOP
 * Classes in Study, returned and (SOP classes) matched. */
TEST(computed_keys)
{
    uint32_t n_st = T(0x0020, 0x1200), n_se = T(0x0020, 0x1202), n_in = T(0x0020, 0x1204);
    uint32_t classes = T(0x0008, 0x0062);
    CHECK_STR(run(ident("PATIENT"), NULL, n_st), "1,1,2,1");
    CHECK_STR(run(ident("PATIENT"), NULL, n_se), "2,1,2,1");
    CHECK_STR(run(ident("PATIENT"), NULL, n_in), "2,1,2,1");
    CHECK_STR(run_pets(ident("PATIENT"), NULL, n_in), "3,1,1,1");
    qry_opts study_root = {.model = QRY_MODEL_STUDY_ROOT};
    CHECK_STR(run(ident("STUDY"), &study_root, n_st), "1,1,2,2,1");
    CHECK_STR(run(ident("IMAGE"), NULL, n_se), "2,2,1,2,2,1");
    /* return keys only: a value sent is not matched */
    CHECK_STR(study1(n_st, DCM_VR_IS, "7", NULL), "1.1,1.2,1.3,1.4,1.5");
    const char *dx = "1.2.840.10008.5.1.4.1.1.1.1";
    CHECK_STR(run(ident("STUDY"), NULL, classes), "1.2.840.10008.5.1.4.1.1.1.1,"
                                                  "1.2.840.10008.5.1.4.1.1.1.1,"
                                                  "1.2.840.10008.5.1.4.1.1.1.1,"
                                                  "1.2.840.10008.5.1.4.1.1.1.1,"
                                                  "1.2.840.10008.5.1.4.1.1.1.1");
    CHECK_STR(study1(classes, DCM_VR_UI, dx, NULL), "1.1,1.2,1.3,1.4,1.5");
    CHECK_STR(study1(classes, DCM_VR_UI, "1.2.840.10008.5.1.4.1.1.2", NULL), "");
    CHECK_STR(
        study1(classes, DCM_VR_UI, "1.2.840.10008.5.1.4.1.1.2\\1.2.840.10008.5.1.4.1.1.1.1", NULL),
        "1.1,1.2,1.3,1.4,1.5");
    CHECK_STR(study1(classes, DCM_VR_UI, "\"\"", NULL), ""); /* no study without instances */
    CHECK_STR(study1(classes, DCM_VR_UI, "1.2.840.*", NULL), "ERR:VP_EINVAL");
    /* the same column once, asked twice (at two levels of the same key) */
    dcm_dataset *ds = ident("STUDY");
    key(ds, classes, DCM_VR_UI, dx);
    key(ds, n_st, DCM_VR_IS, "");
    key(ds, n_in, DCM_VR_IS, "");
    CHECK_STR(run(ds, NULL, n_in), "2,1,2,2,1");
}

/* Limits before any SQL: SQLite takes GLOB patterns up to 50,000 bytes and 1,000 nested terms. */
TEST(value_limits)
{
    uint32_t pn = T(0x0010, 0x0010);
    vp_buf b;
    vp_buf_init(&b, 0);
    for (int i = 0; i < QRY_TEXT_VALUES_MAX_FOR_TEST; i++)
        vp_buf_printf(&b, "%sN%04d*", i ? "\\" : "", i);
    CHECK_STR(study1(pn, DCM_VR_PN, (char *)b.data, &strict), "");
    vp_buf_puts(&b, "\\Smith*");
    CHECK_STR(study1(pn, DCM_VR_PN, (char *)b.data, &strict), "ERR:VP_ELIMIT");
    vp_buf_reset(&b);
    for (int i = 0; i < 1023; i++)
        vp_buf_putc(&b, '*');
    vp_buf_putc(&b, 'q'); /* no name ends with q */
    CHECK_STR(study1(pn, DCM_VR_PN, (char *)b.data, &strict), "");
    vp_buf_putc(&b, '*');
    CHECK_STR(study1(pn, DCM_VR_PN, (char *)b.data, &strict), "ERR:VP_ELIMIT");
    vp_buf_fini(&b);
}

/* require_unique_keys: hierarchical queries only (C.4.1.2.1). */
TEST(unique_keys_above)
{
    qry_opts pr = {.require_unique_keys = true};
    qry_opts sr = {.require_unique_keys = true, .model = QRY_MODEL_STUDY_ROOT};
    dcm_dataset *ds = ident("SERIES");
    CHECK_STR(run(ds, &sr, SERIES_UID), "ERR:VP_EINVAL");
    ds = ident("SERIES");
    key(ds, STUDY_UID, DCM_VR_UI, "1.1");
    CHECK_STR(run(ds, &sr, SERIES_UID), "1.1.1,1.1.2");
    ds = ident("SERIES");
    key(ds, STUDY_UID, DCM_VR_UI, "1.1");
    CHECK_STR(run(ds, &pr, SERIES_UID), "ERR:VP_EINVAL"); /* Patient ID too in Patient Root */
    ds = ident("SERIES");
    key(ds, STUDY_UID, DCM_VR_UI, "1.1");
    key(ds, T(0x0010, 0x0020), DCM_VR_LO, "P1");
    CHECK_STR(run(ds, &pr, SERIES_UID), "1.1.1,1.1.2");
    ds = ident("SERIES");
    key(ds, STUDY_UID, DCM_VR_UI, "1.1\\1.2"); /* one value, not a list */
    CHECK_STR(run(ds, &sr, SERIES_UID), "ERR:VP_EINVAL");
    ds = ident("STUDY");
    key(ds, T(0x0010, 0x0020), DCM_VR_LO, "P*"); /* no wild card */
    CHECK_STR(run(ds, &pr, STUDY_UID), "ERR:VP_EINVAL");
    ds = ident("IMAGE");
    key(ds, STUDY_UID, DCM_VR_UI, "1.1");
    key(ds, SERIES_UID, DCM_VR_UI, "  ");
    CHECK_STR(run(ds, &sr, SOP_UID), "ERR:VP_EINVAL");
    ds = ident("IMAGE");
    key(ds, STUDY_UID, DCM_VR_UI, "1.1");
    key(ds, SERIES_UID, DCM_VR_UI, "1.1.2");
    CHECK_STR(run(ds, &sr, SOP_UID), "1.1.2.1");
    CHECK_STR(run(ident("STUDY"), &sr, STUDY_UID), "1.1,1.2,1.3,1.4,1.5");
    CHECK_STR(run(ident("PATIENT"), &pr, T(0x0010, 0x0020)), "P1,P_2,P3,P4");
    /* off by default: relational */
    CHECK_STR(run(ident("IMAGE"), NULL, SOP_UID), "1.1.1.1,1.1.2.1,1.2.1.1,1.3.1.1,1.4.1.1,"
                                                  "1.5.1.1");
}

/* The new paths fail cleanly on every allocation failure too. */
TEST(allocation_failures_new_keys)
{
    int ok = 0;
    for (long n = 1; n < 400 && !ok; n++) {
        dcm_dataset *ds = ident("SERIES");
        key(ds, T(0x0008, 0x0062), DCM_VR_UI, "1.2.3\\1.2.4");
        key(ds, T(0x0008, 0x0030), DCM_VR_TM, "0930-");
        key(ds, T(0x0010, 0x0010), DCM_VR_PN, "*^Rex*\\^Max");
        key(ds, T(0x0010, 0x0020), DCM_VR_LO, "P1");
        key(ds, T(0x0010, 0x2203), DCM_VR_CS, "ALTERED");
        key(ds, T(0x0020, 0x1204), DCM_VR_IS, "");
        key(ds, STUDY_UID, DCM_VR_UI, "1.1");
        dcm_element *sq;
        dcm_dataset *item;
        dcm_dataset_set_sequence(ds, T(0x0010, 0x2202), &sq);
        dcm_element_add_item(sq, &item);
        key(item, T(0x0008, 0x0102), DCM_VR_SH, "SC*");
        key(item, T(0x0008, 0x0104), DCM_VR_LO, "");
        key(item, T(0x0008, 0x010F), DCM_VR_CS, "");
        qry_opts o = {.require_unique_keys = true};
        qry *q = NULL;
        vp_error err;
        vp_error_clear(&err);
        vp_alloc_fail_after(n);
        vp_status st = qry_compile(ds, &o, &q, &err);
        vp_alloc_fail_after(0);
        if (st == VP_OK)
            ok = 1;
        else if (st != VP_ENOMEM)
            FAIL_AT("allocation %ld: %s %s", n, vp_status_name(st), err.msg);
        qry_free(q);
        dcm_dataset_free(ds);
    }
    CHECK(ok);
}

int main(void)
{
    setup();
    RUN(universal_matching);
    RUN(single_value_matching);
    RUN(person_name_case);
    RUN(person_name_prefix_uses_index);
    RUN(wild_card_matching);
    RUN(list_of_uid_matching);
    RUN(range_matching);
    RUN(combined_datetime_matching);
    RUN(veterinary_keys);
    RUN(modalities_in_study);
    RUN(levels);
    RUN(bad_values);
    RUN(character_set);
    RUN(return_keys_and_sql);
    RUN(answers);
    RUN(code_answers);
    RUN(allocation_failures);
    pets_open();
    RUN(pet_name_matching);
    RUN(time_of_reduced_precision);
    RUN(sex_neutered_latest);
    RUN(computed_keys);
    RUN(value_limits);
    RUN(unique_keys_above);
    RUN(allocation_failures_new_keys);
    pets_close();
    sqlite3_close(db);
    unlink(db_path);
    char wal[80];
    snprintf(wal, sizeof wal, "%s-wal", db_path);
    unlink(wal);
    snprintf(wal, sizeof wal, "%s-shm", db_path);
    unlink(wal);
    DONE();
}
