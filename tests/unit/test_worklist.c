/* SPDX-License-Identifier: MIT */
/* Unit tests for the Modality Worklist (PS3.4 K.6.1): the idx_worklist_* calls and the
 * migration against a real SQLite file, completion by arriving studies, and the worklist model
 * of src/qry (matching of Table K.6-1 keys, nested keys, answers built by qry_answer) run
 * through idx_select on that index. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "harness.h"
#include "idx/idx.h"
#include "qry/qry.h"

#define T(g, e) DCM_TAG(g, e)
#define SPS_SEQ T(0x0040, 0x0100)
#define SPS_ID T(0x0040, 0x0009)

static char dir[64], db_path[96];

static idx *open_db(void)
{
    idx *x = NULL;
    vp_error err;
    vp_error_clear(&err);
    if (idx_open(db_path, &x, &err) != VP_OK)
        fprintf(stderr, "idx_open: %s\n", err.msg);
    return x;
}

#define SET(it, field, v) snprintf((it)->field, sizeof(it)->field, "%s", v)

/* A step with the usual keys; empty strings leave a key unknown. */
static void item(idx_worklist_item *it, const char *sps, const char *pid, const char *name,
                 const char *modality, const char *date, const char *time, const char *ae)
{
    memset(it, 0, sizeof *it);
    SET(it, sps_id, sps);
    SET(it, patient_id, pid);
    SET(it, patient_name, name);
    SET(it, modality, modality);
    SET(it, start_date, date);
    SET(it, start_time, time);
    SET(it, station_ae, ae);
}

static vp_status add(idx *x, idx_worklist_item *it)
{
    vp_error err;
    vp_error_clear(&err);
    vp_status st = idx_worklist_add(x, it, &err);
    if (st && st != VP_ECONFLICT && st != VP_EINVAL)
        fprintf(stderr, "idx_worklist_add: %s\n", err.msg);
    return st;
}

/* SPS IDs (and statuses when with_status) of idx_worklist_each, joined by ",". */
static char listed[4096];
static bool list_status;

static vp_status collect(void *ctx, const idx_worklist_item *it)
{
    (void)ctx;
    size_t n = strlen(listed);
    snprintf(listed + n, sizeof listed - n, "%s%s%s%s", n ? "," : "", it->sps_id,
             list_status ? ":" : "", list_status ? it->status : "");
    return VP_OK;
}

static const char *list(idx *x, bool all, bool with_status)
{
    listed[0] = 0;
    list_status = with_status;
    vp_error err;
    vp_error_clear(&err);
    if (idx_worklist_each(x, all, collect, NULL, &err) != VP_OK)
        snprintf(listed, sizeof listed, "ERR:%s", err.msg);
    return listed;
}

static void setup_dir(const char *name)
{
    t_mkdtemp(dir, sizeof dir, name);
    snprintf(db_path, sizeof db_path, "%s/index.db", dir);
}

TEST(add_list_remove)
{
    setup_dir("wl");
    idx *x = open_db();
    CHECK(x != NULL);
    if (!x)
        return;
    CHECK(idx_schema_version(x) >= 3); /* the worklist came with migration 3 */
    idx_worklist_item a, b, c;
    item(&a, "", "P1", "Smith^Rex", "DX", "20261128", "0900", "");
    CHECK_OK(add(x, &a));
    CHECK_STR(a.sps_id, "1"); /* generated: the row id */
    CHECK_STR(a.requested_id, "1");
    CHECK_STR(a.status, "SCHEDULED");
    CHECK(strncmp(a.study_uid, "2.25.", 5) == 0);
    CHECK(dcm_uid_valid(a.study_uid, strlen(a.study_uid)));
    CHECK(a.created_at[0] != 0);
    CHECK_INT(a.id, 1);
    item(&b, "3", "P2", "Bella", "US", "20261128", "0800", "US1");
    SET(&b, requested_id, "RP7");
    SET(&b, study_uid, "1.2.3");
    CHECK_OK(add(x, &b));
    CHECK_STR(b.sps_id, "3");
    CHECK_STR(b.requested_id, "RP7");
    CHECK_STR(b.study_uid, "1.2.3");
    /* a generated number someone gave by hand already: the next free one */
    item(&c, "", "P3", "Max", "CT", "20261127", "", "");
    CHECK_OK(add(x, &c));
    CHECK_STR(c.sps_id, "3-1");
    /* given and taken: refused, nothing changed */
    item(&c, "3", "P4", "Luna", "CT", "20261127", "", "");
    CHECK_INT(add(x, &c), VP_ECONFLICT);
    item(&c, "", "P4", "Luna", "CT", "20261127", "", "");
    SET(&c, status, "DONE");
    CHECK_INT(add(x, &c), VP_EINVAL);
    CHECK_STR(c.sps_id, "");
    item(&c, "", "P4", "Luna", "CT", "20261127", "", "");
    SET(&c, study_uid, "1.02.3");
    CHECK_INT(add(x, &c), VP_EINVAL);
    /* start date and time order */
    CHECK_STR(list(x, false, false), "3-1,3,1");
    vp_error err;
    vp_error_clear(&err);
    CHECK_OK(idx_worklist_set_status(x, "3", IDX_WL_DISCONTINUED, &err));
    CHECK_INT(idx_worklist_set_status(x, "3", "GONE", &err), VP_EINVAL);
    CHECK_INT(idx_worklist_set_status(x, "77", IDX_WL_COMPLETED, &err), VP_ENOTFOUND);
    CHECK_STR(list(x, false, false), "3-1,1");
    CHECK_STR(list(x, true, true), "3-1:SCHEDULED,3:DISCONTINUED,1:SCHEDULED");
    vp_error_clear(&err);
    CHECK_OK(idx_worklist_remove(x, "3-1", &err));
    CHECK_INT(idx_worklist_remove(x, "3-1", &err), VP_ENOTFOUND);
    CHECK_STR(list(x, true, false), "3,1");
    /* by accession: every step of it */
    item(&a, "A", "P5", "Kira", "DX", "20261201", "", "");
    SET(&a, accession, "ACC9");
    CHECK_OK(add(x, &a));
    item(&a, "B", "P5", "Kira", "CR", "20261201", "", "");
    SET(&a, accession, "ACC9");
    CHECK_OK(add(x, &a));
    uint64_t n = 0;
    vp_error_clear(&err);
    CHECK_OK(idx_worklist_remove_accession(x, "ACC9", &n, &err));
    CHECK_INT(n, 2);
    CHECK_INT(idx_worklist_remove_accession(x, "ACC9", &n, &err), VP_ENOTFOUND);
    CHECK_INT(idx_worklist_remove_accession(x, "", &n, &err), VP_EINVAL);
    CHECK_STR(list(x, true, false), "3,1");
    idx_close(x);
    t_rmtree(dir);
}

static vp_status keep_item(void *ctx, const idx_worklist_item *it)
{
    memcpy(ctx, it, sizeof *it);
    return VP_OK;
}

/* Every field goes in and comes out: the column list of the backend matches the struct. */
TEST(every_field_round_trips)
{
    setup_dir("wl-fields");
    idx *x = open_db();
    if (!x)
        return;
    idx_worklist_item in, out;
    memset(&in, 0, sizeof in);
    /* Each text field a distinct value: its offset in the struct. */
#define FILL(f) snprintf(in.f, sizeof in.f, "v%zu\xc3\xa9", offsetof(idx_worklist_item, f))
    FILL(sps_id), FILL(patient_id), FILL(issuer), FILL(patient_name), FILL(birth_date);
    FILL(sex), FILL(weight), FILL(species), FILL(species_code), FILL(species_scheme);
    FILL(species_meaning), FILL(breed), FILL(breed_code), FILL(breed_scheme);
    FILL(breed_meaning), FILL(breed_registration), FILL(registry_code), FILL(registry_scheme);
    FILL(registry_meaning), FILL(owner_name), FILL(owner_role), FILL(clinic);
    FILL(sex_neutered), FILL(accession), FILL(requested_id), FILL(requested_description);
    FILL(referring), FILL(station_ae), FILL(start_date), FILL(start_time), FILL(modality);
    FILL(performing), FILL(sps_description), FILL(station_name), FILL(location);
#undef FILL
    SET(&in, study_uid, "1.2.840.99");
    SET(&in, status, "COMPLETED");
    CHECK_OK(add(x, &in));
    memset(&out, 0, sizeof out);
    vp_error err;
    vp_error_clear(&err);
    CHECK_OK(idx_worklist_each(x, true, keep_item, &out, &err));
    CHECK(out.id == in.id);
    CHECK_STR(out.created_at, in.created_at);
    CHECK_STR(out.ended_at, "");
    out.id = in.id;
    CHECK(memcmp(&in, &out, sizeof in) == 0);
    CHECK_STR(out.registry_meaning, in.registry_meaning);
    CHECK_STR(out.location, in.location);
    idx_close(x);
    t_rmtree(dir);
}

static void record(idx_record *r, const char *study, const char *accession, const char *sop)
{
    memset(r, 0, sizeof *r);
    SET(r, patient_id, "P1");
    SET(r, patient_name, "Smith^Rex");
    SET(r, study_uid, study);
    SET(r, accession, accession);
    char series[48];
    snprintf(series, sizeof series, "%s.1", study);
    SET(r, series_uid, series);
    SET(r, modality, "DX");
    SET(r, sop_class_uid, "1.2.840.10008.5.1.4.1.1.1.1");
    SET(r, sop_instance_uid, sop);
    snprintf(r->path, sizeof r->path, "objects/%s.dcm", sop);
    r->frames = 1;
    r->size = 10;
}

TEST(completion_by_arriving_study)
{
    setup_dir("wl-done");
    idx *x = open_db();
    if (!x)
        return;
    idx_worklist_item it;
    item(&it, "S1", "P1", "Smith^Rex", "DX", "20261128", "", "");
    SET(&it, accession, "ACC1");
    CHECK_OK(add(x, &it));
    item(&it, "S2", "P1", "Smith^Rex", "DX", "20261128", "", "");
    SET(&it, study_uid, "1.9.2");
    CHECK_OK(add(x, &it));
    item(&it, "S3", "P1", "Smith^Rex", "DX", "20261128", "", ""); /* no accession */
    CHECK_OK(add(x, &it));
    item(&it, "S4", "P2", "Bella", "US", "20261128", "", "");
    SET(&it, accession, "ACC4");
    CHECK_OK(add(x, &it));
    CHECK_OK(idx_worklist_set_status(x, "S4", IDX_WL_DISCONTINUED, NULL));
    vp_error err;
    vp_error_clear(&err);
    idx_record r;
    /* a study without accession completes no step that has none */
    record(&r, "1.9.1", "", "1.9.1.1.1");
    CHECK_OK(idx_instance_put(x, &r, &err));
    CHECK_STR(list(x, true, true), "S1:SCHEDULED,S2:SCHEDULED,S3:SCHEDULED,S4:DISCONTINUED");
    /* by accession number */
    record(&r, "1.9.3", "ACC1", "1.9.3.1.1");
    CHECK_OK(idx_instance_put(x, &r, &err));
    CHECK_STR(list(x, true, true), "S1:COMPLETED,S2:SCHEDULED,S3:SCHEDULED,S4:DISCONTINUED");
    /* by Study Instance UID, through the group commit */
    record(&r, "1.9.2", "OTHER", "1.9.2.1.1");
    const idx_record *rs[] = {&r};
    vp_status res[1];
    vp_error errs[1];
    CHECK_OK(idx_instance_put_batch(x, rs, 1, NULL, 0, res, errs, &err));
    CHECK_OK(res[0]);
    CHECK_STR(list(x, true, true), "S1:COMPLETED,S2:COMPLETED,S3:SCHEDULED,S4:DISCONTINUED");
    /* a discontinued step stays so */
    record(&r, "1.9.4", "ACC4", "1.9.4.1.1");
    CHECK_OK(idx_instance_put(x, &r, &err));
    CHECK_STR(list(x, true, true), "S1:COMPLETED,S2:COMPLETED,S3:SCHEDULED,S4:DISCONTINUED");
    /* the explicit call, for a study that was there before its step */
    uint64_t n = 9;
    item(&it, "S5", "P1", "Smith^Rex", "DX", "20261128", "", "");
    SET(&it, study_uid, "1.9.1");
    CHECK_OK(add(x, &it));
    CHECK_OK(idx_worklist_complete(x, "", "1.9.1", &n, &err));
    CHECK_INT(n, 1);
    CHECK_OK(idx_worklist_complete(x, "", "1.9.1", &n, &err));
    CHECK_INT(n, 0);
    CHECK_OK(idx_worklist_complete(x, "", NULL, &n, &err)); /* nothing named: nothing done */
    CHECK_INT(n, 0);
    idx_worklist_item done;
    memset(&done, 0, sizeof done);
    CHECK_OK(idx_worklist_each(x, true, keep_item, &done, &err)); /* keeps the last: S5 */
    CHECK_STR(done.sps_id, "S5");
    CHECK(done.ended_at[0] != 0);
    idx_close(x);
    t_rmtree(dir);
}

TEST(migration_from_version_2)
{
    setup_dir("wl-migrate");
    idx *x = open_db();
    if (!x)
        return;
    idx_close(x);
    /* back to a version 2 file: without the worklist (3) and the patient code columns (4) */
    sqlite3 *db;
    CHECK_INT(sqlite3_open(db_path, &db), SQLITE_OK);
    CHECK_INT(sqlite3_exec(db,
                           "DROP TABLE worklist;"
                           "ALTER TABLE patient DROP COLUMN species_scheme;"
                           "ALTER TABLE patient DROP COLUMN species_version;"
                           "ALTER TABLE patient DROP COLUMN species_meaning;"
                           "ALTER TABLE patient DROP COLUMN breed_scheme;"
                           "ALTER TABLE patient DROP COLUMN breed_version;"
                           "ALTER TABLE patient DROP COLUMN breed_meaning;"
                           "PRAGMA user_version = 2",
                           NULL, NULL, NULL),
              SQLITE_OK);
    sqlite3_close(db);
    x = open_db();
    CHECK(x != NULL);
    if (!x)
        return;
    CHECK(idx_schema_version(x) >= 3);
    idx_worklist_item it;
    item(&it, "", "P1", "Rex", "DX", "20261128", "", "");
    CHECK_OK(add(x, &it));
    CHECK_STR(list(x, false, false), "1");
    idx_close(x);
    t_rmtree(dir);
}

/* ---------------------------------------------------------------------------------------- */
/* The worklist model of src/qry against an index of steps                                  */

static char q_dir[64], q_db[96];
static idx *qx;

static void put_step(const char *sps, const char *pid, const char *name, const char *species,
                     const char *species_code, const char *modality, const char *date,
                     const char *time, const char *ae, const char *accession, const char *weight,
                     const char *status)
{
    idx_worklist_item it;
    item(&it, sps, pid, name, modality, date, time, ae);
    SET(&it, species, species);
    SET(&it, species_code, species_code);
    SET(&it, accession, accession);
    SET(&it, weight, weight);
    SET(&it, status, status);
    if (species_code[0]) {
        SET(&it, species_scheme, "SCT");
        SET(&it, species_meaning, "Canis lupus familiaris");
    }
    if (add(qx, &it) != VP_OK) {
        fprintf(stderr, "cannot add step %s\n", sps);
        exit(2);
    }
}

static void setup_query_index(void)
{
    t_mkdtemp(q_dir, sizeof q_dir, "wl-qry");
    snprintf(q_db, sizeof q_db, "%s/index.db", q_dir);
    vp_error err;
    vp_error_clear(&err);
    if (idx_open(q_db, &qx, &err) != VP_OK) {
        fprintf(stderr, "idx_open: %s\n", err.msg);
        exit(2);
    }
    put_step("W1", "P1", "Smith^Rex", "Canine", "448771007", "DX", "20261128", "090000", "DX1",
             "A1", "12.5", "");
    put_step("W2", "P2", "jones^bella", "Feline", "", "US", "20261128", "101500", "", "A2", "", "");
    put_step("W3", "P3", "O'Neil^Max", "", "", "DX", "20261129", "", "DX2", "", "0", "");
    put_step("W4", "P1", "Smith^Rex", "Canine", "448771007", "CT", "20261127", "140000", "CT1",
             "A4", "", "COMPLETED");
    put_step("W5", "P5", "M\xc3\xbcller^Luna", "Equine", "", "DX", "", "080000", "", "A5", "", "");
}

static dcm_dataset *ident(void)
{
    dcm_dataset *ds = dcm_dataset_new();
    return ds;
}

/* The Scheduled Procedure Step Sequence item of ds (created with the sequence). */
static dcm_dataset *sps_item(dcm_dataset *ds)
{
    dcm_element *el = dcm_dataset_find(ds, SPS_SEQ);
    if (el && dcm_element_item_count(el))
        return dcm_element_item(el, 0);
    dcm_dataset *it = NULL;
    dcm_dataset_set_sequence(ds, SPS_SEQ, &el);
    dcm_element_add_item(el, &it);
    return it;
}

static void key(dcm_dataset *ds, uint32_t tag, enum dcm_vr vr, const char *v)
{
    dcm_dataset_set_str(ds, tag, vr, v);
}

/* Text of a string element: "(absent)" when missing, "" when zero length. */
static char text_buf[1024];
static const char *text_of(const dcm_dataset *ds, uint32_t tag)
{
    const dcm_element *el = ds ? dcm_dataset_find(ds, tag) : NULL;
    if (!el)
        return "(absent)";
    size_t n = dcm_element_length(el);
    const uint8_t *v = dcm_element_value(el);
    while (n && v && (v[n - 1] == ' ' || v[n - 1] == 0))
        n--;
    snprintf(text_buf, sizeof text_buf, "%.*s", (int)n, v ? (const char *)v : "");
    return text_buf;
}

static const dcm_dataset *first_item(const dcm_dataset *ds, uint32_t tag)
{
    const dcm_element *el = dcm_dataset_find(ds, tag);
    return el && dcm_element_is_sequence(el) && dcm_element_item_count(el) ? dcm_element_item(el, 0)
                                                                           : NULL;
}

struct run_ctx {
    const qry *q;
    char ids[2048];
    dcm_dataset *last; /* answer of the last row */
    vp_status st;
};

static vp_status on_row(void *ctx, const char *const *cols, size_t ncols)
{
    struct run_ctx *r = ctx;
    dcm_dataset_free(r->last);
    r->last = dcm_dataset_new();
    vp_error err;
    vp_error_clear(&err);
    if ((r->st = qry_answer(r->q, cols, ncols, r->last, &err)) != VP_OK)
        return r->st;
    size_t n = strlen(r->ids);
    snprintf(r->ids + n, sizeof r->ids - n, "%s%s", n ? "," : "",
             text_of(first_item(r->last, SPS_SEQ), SPS_ID));
    return VP_OK;
}

/*
 * Compiles ds (freed here) in the worklist model, runs it and answers every row; returns the
 * SPS IDs of the answers joined by "," ("ERR:<status>" when compiling failed, "(absent)" for
 * answers without a step). *answer (when not NULL) receives the answer of the last row, to be
 * freed.
 */
static char result[2048];
static const char *run_raw(dcm_dataset *ds, const qry_opts *opts, dcm_dataset **answer)
{
    qry_opts o = opts ? *opts : (qry_opts){0};
    o.model = QRY_MODEL_WORKLIST;
    qry *q = NULL;
    vp_error err;
    vp_error_clear(&err);
    vp_status st = qry_compile(ds, &o, &q, &err);
    dcm_dataset_free(ds);
    if (answer)
        *answer = NULL;
    if (st) {
        snprintf(result, sizeof result, "ERR:%s%s", vp_status_name(st),
                 err.msg[0] ? "" : " (no message)");
        return result;
    }
    struct run_ctx r = {.q = q};
    const char *params[64];
    for (size_t i = 0; i < qry_param_count(q) && i < 64; i++)
        params[i] = qry_param(q, i);
    vp_error_clear(&err);
    st = idx_select(qx, qry_sql(q), params, qry_param_count(q), on_row, &r, &err);
    if (st)
        snprintf(result, sizeof result, "SQL:%s: %s", qry_sql(q), err.msg);
    else
        snprintf(result, sizeof result, "%s", r.ids);
    if (answer)
        *answer = r.last;
    else
        dcm_dataset_free(r.last);
    qry_free(q);
    return result;
}

/* run_raw with the SPS ID asked for in the step item when the identifier does not name it
 * (nor asks for the whole step with an empty item). */
static const char *run(dcm_dataset *ds, const qry_opts *opts, dcm_dataset **answer)
{
    bool had = dcm_dataset_find(ds, SPS_SEQ) != NULL;
    dcm_dataset *it = sps_item(ds);
    if (!dcm_dataset_find(it, SPS_ID) && (!had || dcm_dataset_count(it)))
        key(it, SPS_ID, DCM_VR_SH, "");
    return run_raw(ds, opts, answer);
}

/* One key in the step item. */
static const char *sps1(uint32_t tag, enum dcm_vr vr, const char *v, const qry_opts *o)
{
    dcm_dataset *ds = ident();
    key(sps_item(ds), tag, vr, v);
    return run(ds, o, NULL);
}

/* One top-level key. */
static const char *top1(uint32_t tag, enum dcm_vr vr, const char *v, const qry_opts *o)
{
    dcm_dataset *ds = ident();
    key(ds, tag, vr, v);
    return run(ds, o, NULL);
}

TEST(worklist_matching)
{
    qry_opts ci = {.pn_case_insensitive = true};
    /* no key: every SCHEDULED step, by start date and time (the unknown date first) */
    CHECK_STR(run(ident(), NULL, NULL), "W5,W1,W2,W3");
    /* Modality: single value; unknown fails (K.2.2.1.1.1) */
    CHECK_STR(sps1(T(0x0008, 0x0060), DCM_VR_CS, "DX", NULL), "W5,W1,W3");
    CHECK_STR(sps1(T(0x0008, 0x0060), DCM_VR_CS, "US\\CT", NULL), "W2");
    /* Scheduled Station AE Title: a step for no station is for any */
    CHECK_STR(sps1(T(0x0040, 0x0001), DCM_VR_AE, "DX1", NULL), "W5,W1,W2");
    CHECK_STR(sps1(T(0x0040, 0x0001), DCM_VR_AE, "\"\"", NULL), "W5,W2");
    /* start date: single value and ranges; the step without a date never matches */
    CHECK_STR(sps1(T(0x0040, 0x0002), DCM_VR_DA, "20261128", NULL), "W1,W2");
    CHECK_STR(sps1(T(0x0040, 0x0002), DCM_VR_DA, "20261128-", NULL), "W1,W2,W3");
    CHECK_STR(sps1(T(0x0040, 0x0002), DCM_VR_DA, "-20261128", NULL), "W1,W2");
    CHECK_STR(sps1(T(0x0040, 0x0002), DCM_VR_DA, "2026*", NULL), "ERR:VP_EINVAL");
    /* start time range: the step without a time never matches */
    CHECK_STR(sps1(T(0x0040, 0x0003), DCM_VR_TM, "0800-1000", NULL), "W5,W1");
    CHECK_STR(sps1(T(0x0040, 0x0003), DCM_VR_TM, "10-", NULL), "W2");
    /* date and time together: each range alone */
    dcm_dataset *ds = ident();
    key(sps_item(ds), T(0x0040, 0x0002), DCM_VR_DA, "20261128");
    key(sps_item(ds), T(0x0040, 0x0003), DCM_VR_TM, "1000-1100");
    CHECK_STR(run(ds, NULL, NULL), "W2");
    /* SPS ID, status: performed steps only when asked for */
    CHECK_STR(sps1(SPS_ID, DCM_VR_SH, "W4", NULL), "");
    CHECK_STR(sps1(T(0x0040, 0x0020), DCM_VR_CS, "COMPLETED", NULL), "W4");
    CHECK_STR(sps1(T(0x0040, 0x0020), DCM_VR_CS, "SCHEDULED\\COMPLETED", NULL), "W5,W4,W1,W2,W3");
    CHECK_STR(sps1(T(0x0040, 0x0020), DCM_VR_CS, "*", NULL), "W5,W1,W2,W3");
    /* patient keys at the top level */
    CHECK_STR(top1(T(0x0010, 0x0010), DCM_VR_PN, "SMITH*", NULL), "");
    CHECK_STR(top1(T(0x0010, 0x0010), DCM_VR_PN, "SMITH*", &ci), "W1");
    CHECK_STR(top1(T(0x0010, 0x0010), DCM_VR_PN, "Jones^Bella", &ci), "W2");
    CHECK_STR(top1(T(0x0010, 0x0010), DCM_VR_PN, "M?ller*", NULL), "W5");
    CHECK_STR(top1(T(0x0010, 0x0020), DCM_VR_LO, "P3", NULL), "W3");
    CHECK_STR(top1(T(0x0008, 0x0050), DCM_VR_SH, "A*", NULL), "W5,W1,W2");
    CHECK_STR(top1(T(0x0010, 0x2201), DCM_VR_LO, "*ine", NULL), "W5,W1,W2");
    CHECK_STR(top1(T(0x0010, 0x2201), DCM_VR_LO, "\"\"", NULL), "W3");
    CHECK_STR(top1(T(0x0010, 0x1030), DCM_VR_DS, "12.50", NULL), "W1");
    CHECK_STR(top1(T(0x0010, 0x1030), DCM_VR_DS, "0", NULL), "W3"); /* not the unknown ones */
    /* species code: sequence matching on the Code Value */
    ds = ident();
    dcm_element *sq;
    dcm_dataset *code;
    dcm_dataset_set_sequence(ds, T(0x0010, 0x2202), &sq);
    dcm_element_add_item(sq, &code);
    key(code, T(0x0008, 0x0100), DCM_VR_SH, "448771007");
    CHECK_STR(run(ds, NULL, NULL), "W1");
    /* a key the worklist does not hold: returned, never matched */
    CHECK_STR(top1(T(0x0010, 0x2000), DCM_VR_LO, "x", NULL), "W5,W1,W2,W3");
    /* Query/Retrieve Level means nothing here */
    CHECK_STR(top1(T(0x0008, 0x0052), DCM_VR_CS, "STUDY", NULL), "W5,W1,W2,W3");
    /* a Scheduled Procedure Step key at the top level is not one */
    CHECK_STR(top1(T(0x0008, 0x0060), DCM_VR_CS, "CT", NULL), "W5,W1,W2,W3");
    /* limit */
    qry_opts two = {.limit = 2};
    CHECK_STR(run(ident(), &two, NULL), "W5,W1");
}

TEST(worklist_bad_identifiers)
{
    /* two step items: sequence matching takes one */
    dcm_dataset *ds = ident();
    dcm_element *sq;
    dcm_dataset *it;
    dcm_dataset_set_sequence(ds, SPS_SEQ, &sq);
    dcm_element_add_item(sq, &it);
    dcm_element_add_item(sq, &it);
    CHECK_STR(run(ds, NULL, NULL), "ERR:VP_EINVAL");
    /* a step "sequence" with a value */
    ds = ident();
    dcm_dataset_set(ds, SPS_SEQ, DCM_VR_UN, "abcd", 4, NULL);
    CHECK_STR(run_raw(ds, NULL, NULL), "ERR:VP_EINVAL");
    ds = ident(); /* zero length: the whole step */
    dcm_dataset_set(ds, SPS_SEQ, DCM_VR_UN, NULL, 0, NULL);
    CHECK_STR(run_raw(ds, NULL, NULL), "W5,W1,W2,W3");
    /* a key with the wrong VR, nested or not */
    CHECK_STR(sps1(T(0x0008, 0x0060), DCM_VR_DA, "20261128", NULL), "ERR:VP_EINVAL");
    CHECK_STR(top1(T(0x0010, 0x0020), DCM_VR_DA, "20261128", NULL), "ERR:VP_EINVAL");
    CHECK_STR(sps1(T(0x0040, 0x0003), DCM_VR_TM, "2500", NULL), "ERR:VP_EINVAL");
    CHECK_STR(top1(T(0x0020, 0x000D), DCM_VR_UI, "1.2.x", NULL), "ERR:VP_EINVAL");
}

TEST(worklist_answers)
{
    /* the keys asked for, with the step's values and nested keys */
    dcm_dataset *ds = ident();
    key(ds, DCM_TAG_SPECIFIC_CHARACTER_SET, DCM_VR_CS, "ISO_IR 100");
    key(ds, T(0x0010, 0x0010), DCM_VR_PN, "M\xfcller*"); /* Latin-1 key, UTF-8 index */
    key(ds, T(0x0010, 0x0020), DCM_VR_LO, "");
    key(ds, T(0x0010, 0x2201), DCM_VR_LO, "");
    key(ds, T(0x0010, 0x2000), DCM_VR_LO, ""); /* Medical Alerts: not held */
    key(ds, T(0x0020, 0x000D), DCM_VR_UI, "");
    key(ds, T(0x0008, 0x0052), DCM_VR_CS, "STUDY");
    dcm_dataset *it = sps_item(ds);
    key(it, T(0x0008, 0x0060), DCM_VR_CS, "");
    key(it, T(0x0040, 0x0002), DCM_VR_DA, "");
    key(it, T(0x0040, 0x0012), DCM_VR_LO, ""); /* Pre-Medication: not held */
    dcm_dataset *a = NULL;
    CHECK_STR(run(ds, NULL, &a), "W5");
    CHECK(a != NULL);
    if (!a)
        return;
    CHECK_STR(text_of(a, DCM_TAG_SPECIFIC_CHARACTER_SET), "ISO_IR 192");
    CHECK_STR(text_of(a, T(0x0008, 0x0052)), "(absent)");
    CHECK_STR(text_of(a, T(0x0010, 0x0010)), "M\xc3\xbcller^Luna");
    CHECK_STR(text_of(a, T(0x0010, 0x0020)), "P5");
    CHECK_STR(text_of(a, T(0x0010, 0x2201)), "Equine");
    CHECK_STR(text_of(a, T(0x0010, 0x2000)), "");
    CHECK(strncmp(text_of(a, T(0x0020, 0x000D)), "2.25.", 5) == 0);
    CHECK_STR(text_of(a, T(0x0010, 0x0040)), "(absent)"); /* not asked for */
    const dcm_dataset *step = first_item(a, SPS_SEQ);
    CHECK(step != NULL);
    CHECK_INT(dcm_element_item_count(dcm_dataset_find(a, SPS_SEQ)), 1);
    CHECK_STR(text_of(step, T(0x0008, 0x0060)), "DX");
    CHECK_STR(text_of(step, T(0x0040, 0x0002)), "");
    CHECK_STR(text_of(step, T(0x0040, 0x0012)), "");
    CHECK_STR(text_of(step, SPS_ID), "W5");
    CHECK_STR(text_of(step, T(0x0040, 0x0001)), "(absent)");
    dcm_dataset_free(a);

    /* an empty step item (or none) asks for the whole step; code sequences get their item */
    ds = ident();
    key(ds, T(0x0010, 0x0020), DCM_VR_LO, "P1");
    dcm_element *sq;
    dcm_dataset_set_sequence(ds, SPS_SEQ, &sq);
    dcm_dataset_set_sequence(ds, T(0x0010, 0x2202), &sq);
    dcm_dataset_set_sequence(ds, T(0x0010, 0x2293), &sq);
    dcm_dataset_set_sequence(ds, T(0x0010, 0x2294), &sq);
    CHECK_STR(run(ds, NULL, &a), "W1");
    if (!a)
        return;
    step = first_item(a, SPS_SEQ);
    CHECK_STR(text_of(step, T(0x0008, 0x0060)), "DX");
    CHECK_STR(text_of(step, T(0x0040, 0x0001)), "DX1");
    CHECK_STR(text_of(step, T(0x0040, 0x0002)), "20261128");
    CHECK_STR(text_of(step, T(0x0040, 0x0003)), "090000");
    CHECK_STR(text_of(step, T(0x0040, 0x0020)), "SCHEDULED");
    CHECK_STR(text_of(step, T(0x0040, 0x0006)), "");
    const dcm_dataset *species = first_item(a, T(0x0010, 0x2202));
    CHECK_STR(text_of(species, T(0x0008, 0x0100)), "448771007");
    CHECK_STR(text_of(species, T(0x0008, 0x0102)), "SCT");
    CHECK_STR(text_of(species, T(0x0008, 0x0104)), "Canis lupus familiaris");
    /* no breed code, no registration: empty sequences */
    CHECK(dcm_dataset_find(a, T(0x0010, 0x2293)) != NULL);
    CHECK_INT(dcm_element_item_count(dcm_dataset_find(a, T(0x0010, 0x2293))), 0);
    CHECK_INT(dcm_element_item_count(dcm_dataset_find(a, T(0x0010, 0x2294))), 0);
    /* the answer encodes */
    vp_buf b;
    vp_buf_init(&b, 0);
    dcm_sink sink = dcm_sink_buf(&b);
    vp_error err;
    vp_error_clear(&err);
    CHECK_OK(dcm_dataset_write(a, DCM_TS_EXPLICIT_LE, NULL, &sink, &err));
    vp_buf_fini(&b);
    dcm_dataset_free(a);

    /* the return keys a caller sees: top level, the step sequence without a column */
    ds = ident();
    key(ds, T(0x0010, 0x0010), DCM_VR_PN, "");
    key(sps_item(ds), T(0x0008, 0x0060), DCM_VR_CS, "DX");
    qry_opts o = {.model = QRY_MODEL_WORKLIST};
    qry *q = NULL;
    vp_error_clear(&err);
    CHECK_OK(qry_compile(ds, &o, &q, &err));
    dcm_dataset_free(ds);
    if (!q)
        return;
    CHECK_INT(qry_return_key_count(q), 2);
    CHECK_INT(qry_return_key(q, 0)->tag, T(0x0010, 0x0010));
    CHECK_INT(qry_return_key(q, 0)->column, 1);
    CHECK_INT(qry_return_key(q, 1)->tag, SPS_SEQ);
    CHECK_INT(qry_return_key(q, 1)->column, -1);
    CHECK_INT(qry_column_tag(q, 2), T(0x0008, 0x0060));
    CHECK_STR(qry_sql(q), "SELECT worklist.id, worklist.patient_name, worklist.modality"
                          " FROM worklist WHERE worklist.modality = ?"
                          " AND worklist.status = 'SCHEDULED'"
                          " ORDER BY worklist.start_date, worklist.start_time, worklist.id");
    qry_free(q);
}

TEST(worklist_breed_registration_answer)
{
    idx_worklist_item it;
    item(&it, "W9", "P9", "Ace", "DX", "20261130", "", "");
    SET(&it, breed_registration, "KC-123");
    SET(&it, registry_code, "109224");
    SET(&it, registry_scheme, "DCM");
    SET(&it, registry_meaning, "The Kennel Club");
    CHECK_OK(add(qx, &it));
    dcm_dataset *ds = ident();
    key(ds, T(0x0010, 0x0020), DCM_VR_LO, "P9");
    dcm_element *sq;
    dcm_dataset_set_sequence(ds, T(0x0010, 0x2294), &sq);
    dcm_dataset *a = NULL;
    CHECK_STR(run_raw(ds, NULL, &a), "(absent)"); /* no step sequence asked for */
    if (!a)
        return;
    const dcm_dataset *reg = first_item(a, T(0x0010, 0x2294));
    CHECK_STR(text_of(reg, T(0x0010, 0x2295)), "KC-123");
    const dcm_dataset *registry = first_item(reg, T(0x0010, 0x2296));
    CHECK_STR(text_of(registry, T(0x0008, 0x0100)), "109224");
    CHECK_STR(text_of(registry, T(0x0008, 0x0102)), "DCM");
    CHECK_STR(text_of(registry, T(0x0008, 0x0104)), "The Kennel Club");
    CHECK(dcm_dataset_find(a, SPS_SEQ) == NULL);
    dcm_dataset_free(a);
    vp_error err;
    vp_error_clear(&err);
    CHECK_OK(idx_worklist_remove(qx, "W9", &err));
}

/* ds with code sequence seq holding one item, returned for the caller's keys. */
static dcm_dataset *code_item(dcm_dataset *ds, uint32_t seq)
{
    dcm_element *sq;
    dcm_dataset *it = NULL;
    dcm_dataset_set_sequence(ds, seq, &sq);
    dcm_element_add_item(sq, &it);
    return it;
}

/* The species code item keys, as in the Query/Retrieve models (C.2.2.2.6): the answer's item
 * holds those asked for, and each that has a value and a column must match. */
TEST(worklist_code_item_keys)
{
    uint32_t sp = T(0x0010, 0x2202), cv = T(0x0008, 0x0100), cs = T(0x0008, 0x0102);
    uint32_t ver = T(0x0008, 0x0103), cm = T(0x0008, 0x0104);
    dcm_dataset *ds = ident();
    key(ds, T(0x0010, 0x0020), DCM_VR_LO, "P1");
    dcm_dataset *it = code_item(ds, sp);
    key(it, cm, DCM_VR_LO, "");
    key(it, ver, DCM_VR_SH, ""); /* not kept for worklist steps: zero length */
    dcm_dataset *a = NULL;
    CHECK_STR(run(ds, NULL, &a), "W1");
    const dcm_dataset *got = a ? first_item(a, sp) : NULL;
    CHECK_STR(text_of(got, cm), "Canis lupus familiaris");
    CHECK_STR(text_of(got, ver), "");
    CHECK_STR(text_of(got, cv), "(absent)");
    CHECK_STR(text_of(got, cs), "(absent)");
    dcm_dataset_free(a);
    /* the Code Value alone */
    ds = ident();
    key(ds, T(0x0010, 0x0020), DCM_VR_LO, "P1");
    key(code_item(ds, sp), cv, DCM_VR_SH, "");
    CHECK_STR(run(ds, NULL, &a), "W1");
    got = a ? first_item(a, sp) : NULL;
    CHECK_STR(text_of(got, cv), "448771007");
    CHECK_INT(got ? dcm_dataset_count(got) : 0, 1);
    dcm_dataset_free(a);
    /* matching on the scheme and the meaning; unknown values fail (K.2.2.1.1.1) */
    ds = ident();
    it = code_item(ds, sp);
    key(it, cv, DCM_VR_SH, "448771007");
    key(it, cs, DCM_VR_SH, "SCT");
    CHECK_STR(run(ds, NULL, NULL), "W1");
    ds = ident();
    it = code_item(ds, sp);
    key(it, cv, DCM_VR_SH, "448771007");
    key(it, cs, DCM_VR_SH, "99VP");
    CHECK_STR(run(ds, NULL, NULL), "");
    ds = ident();
    key(code_item(ds, sp), cm, DCM_VR_LO, "Canis*");
    CHECK_STR(run(ds, NULL, NULL), "W1");
    /* the version is not kept: returned, never matched */
    ds = ident();
    key(code_item(ds, sp), ver, DCM_VR_SH, "2024");
    CHECK_STR(run(ds, NULL, NULL), "W5,W1,W2,W3");
}

/* Every allocation failure of compiling and answering reports VP_ENOMEM and leaks nothing
 * (ASan checks the leaks). */
TEST(worklist_allocation_failures)
{
    const char *cols[] = {"1", "Smith^Rex", "DX", "20261128", "448771007", "SCT", "Dog", "W1"};
    int ok = 0;
    for (long n = 1; n < 400 && !ok; n++) {
        dcm_dataset *ds = ident();
        key(ds, T(0x0010, 0x0010), DCM_VR_PN, "Sm[ith*\\Jones");
        key(ds, T(0x0020, 0x000D), DCM_VR_UI, "1.1\\1.2");
        key(ds, T(0x0010, 0x2000), DCM_VR_LO, "");
        dcm_element *sq;
        dcm_dataset *code;
        dcm_dataset_set_sequence(ds, T(0x0010, 0x2202), &sq);
        dcm_element_add_item(sq, &code);
        key(code, T(0x0008, 0x0100), DCM_VR_SH, "4487*");
        dcm_dataset *it = sps_item(ds);
        key(it, T(0x0008, 0x0060), DCM_VR_CS, "DX");
        key(it, T(0x0040, 0x0002), DCM_VR_DA, "20261101-20261130");
        key(it, T(0x0040, 0x0001), DCM_VR_AE, "DX1");
        key(it, SPS_ID, DCM_VR_SH, "");
        qry_opts o = {.model = QRY_MODEL_WORKLIST, .pn_case_insensitive = true};
        qry *q = NULL;
        dcm_dataset *a = dcm_dataset_new();
        vp_error err;
        vp_error_clear(&err);
        vp_alloc_fail_after(n);
        vp_status st = qry_compile(ds, &o, &q, &err);
        if (st == VP_OK)
            st = qry_answer(q, cols, sizeof cols / sizeof cols[0], a, &err);
        vp_alloc_fail_after(0);
        if (st == VP_OK)
            ok = 1;
        else if (st != VP_ENOMEM)
            FAIL_AT("allocation %ld: %s %s", n, vp_status_name(st), err.msg);
        else if (!err.msg[0])
            FAIL_AT("allocation %ld: no message", n);
        qry_free(q);
        dcm_dataset_free(a);
        dcm_dataset_free(ds);
    }
    CHECK(ok);
}

int main(void)
{
    RUN(add_list_remove);
    RUN(every_field_round_trips);
    RUN(completion_by_arriving_study);
    RUN(migration_from_version_2);
    setup_query_index();
    RUN(worklist_matching);
    RUN(worklist_bad_identifiers);
    RUN(worklist_answers);
    RUN(worklist_breed_registration_answer);
    RUN(worklist_code_item_keys);
    RUN(worklist_allocation_failures);
    idx_close(qx);
    t_rmtree(q_dir);
    DONE();
}
