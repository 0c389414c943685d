/* SPDX-License-Identifier: MIT */
/* Unit tests for src/web/qido.c (QIDO-RS, PS3.18 10.6): searches run for real on an index built
 * with idx_instance_put, on every resource path, each matching type through query parameters
 * (PS3.18 8.3.4.1), includefield (8.3.4.3), fuzzymatching (8.3.4.2), limit/offset and the
 * Warning header (8.3.4.4), the default attributes of each level (Tables 10.6.3-3/-4/-5), the
 * DICOM JSON read back with jansson (PS3.18 F.2: PN as Alphabetic, DA/UI as strings, IS as
 * numbers), bad requests with their messages, the body read in pieces, and every allocation
 * failure. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "harness.h"
#include "idx/idx.h"
#include "web/qido.h"

#define BASE "http://pacs.test/dicom-web"

static char db_path[64];
static idx *db;

typedef struct rec_spec {
    const char *pid, *name, *species, *species_code, *breed, *owner, *clinic;
    const char *study, *date, *time, *accession, *referring, *description;
    const char *series, *modality, *series_number, *sop, *instance_number;
} rec_spec;

static void put(const rec_spec *s)
{
    idx_record r;
    memset(&r, 0, sizeof r);
#define SET(field, v) snprintf(r.field, sizeof r.field, "%s", (v) ? (v) : "")
    SET(patient_id, s->pid);
    SET(patient_name, s->name);
    SET(species, s->species);
    SET(species_code, s->species_code);
    if (r.species_code[0]) {
        SET(species_scheme, "SCT");
        SET(species_meaning, s->species);
    }
    SET(breed, s->breed);
    SET(owner_name, s->owner);
    SET(clinic, s->clinic);
    SET(sex, "F");
    SET(birth_date, "20190304");
    SET(study_uid, s->study);
    SET(study_date, s->date);
    SET(study_time, s->time);
    SET(accession, s->accession);
    SET(referring, s->referring);
    SET(study_description, s->description);
    SET(study_id, "S1");
    SET(series_uid, s->series);
    SET(modality, s->modality);
    SET(series_number, s->series_number);
    SET(series_description, "view");
    SET(sop_instance_uid, s->sop);
    SET(instance_number, s->instance_number);
    SET(sop_class_uid, "1.2.840.10008.5.1.4.1.1.1.1");
    snprintf(r.path, sizeof r.path, "objects/%s.dcm", s->sop);
#undef SET
    r.frames = 1;
    r.size = 10;
    vp_error err;
    vp_error_clear(&err);
    if (idx_instance_put(db, &r, &err) != VP_OK) {
        fprintf(stderr, "idx_instance_put: %s\n", err.msg);
        exit(2);
    }
}

#define BIG_N 400 /* instances of the big series, enough for several pieces of body */

/* Five studies of five animals; the fifth has one series of BIG_N instances. */
static void setup(void)
{
    snprintf(db_path, sizeof db_path, "/tmp/vp_test_qido_%d.db", (int)getpid());
    unlink(db_path);
    vp_error err;
    vp_error_clear(&err);
    if (idx_open(db_path, &db, &err) != VP_OK) {
        fprintf(stderr, "idx_open: %s\n", err.msg);
        exit(2);
    }
    static const rec_spec recs[] = {
        {"P1", "Smith^Rex", "Canine", "448771007", "Border Collie", "Smith^John", "Tierklinik",
         "1.1", "20240105", "101500", "A1", "Vet^Anna", "Thorax", "1.1.1", "DX", "1", "1.1.1.1",
         "1"},
        {"P1", "Smith^Rex", "Canine", "448771007", "Border Collie", "Smith^John", "Tierklinik",
         "1.1", "20240105", "101500", "A1", "Vet^Anna", "Thorax", "1.1.1", "DX", "1", "1.1.1.2",
         "2"},
        {"P1", "Smith^Rex", "Canine", "448771007", "Border Collie", "Smith^John", "Tierklinik",
         "1.1", "20240105", "101500", "A1", "Vet^Anna", "Thorax", "1.1.2", "CT", "2", "1.1.2.1",
         "1"},
        {"P2", "Jones^Bella", "Feline", "448169003", "", "Jones^Mary", "", "1.2", "20240220",
         "083000", "A2", "", "Abdomen", "1.2.1", "MR", "1", "1.2.1.1", "1"},
        {"P3", "O'Neil^Max", "Canine", "", "Labrador", "", "Vet Clinic", "1.3", "20231231",
         "235959", "A3", "", "", "1.3.1", "US", "1", "1.3.1.1", "1"},
        {"P4", "M\xc3\xbcller^Luna", "Equine", "", "", "", "Pferdeklinik", "1.5", "20220101", "",
         "", "", "", "1.5.1", "DX", "3", "1.5.1.1", "1"},
    };
    for (size_t i = 0; i < sizeof recs / sizeof recs[0]; i++)
        put(&recs[i]);
    for (int i = 1; i <= BIG_N; i++) {
        char sop[32], num[16];
        snprintf(sop, sizeof sop, "1.9.1.%d", i);
        snprintf(num, sizeof num, "%d", i);
        rec_spec s = {"P5", "Big^Data", "Ovine", "", "",      "",   "",  "1.9", "20200101",
                      "",   "A9",       "",      "", "1.9.1", "OT", "1", sop,   num};
        put(&s);
    }
}

/* ---- helpers ---- */

/* Splits "a=b&c=d" (already decoded) into params; returns how many. */
#define MAX_TEST_PARAMS 400
static web_qido_param params[MAX_TEST_PARAMS];
static size_t split_query(const char *query)
{
    size_t n = 0;
    const char *p = query;
    while (p && *p && n < MAX_TEST_PARAMS) {
        const char *amp = strchr(p, '&');
        const char *end = amp ? amp : p + strlen(p);
        const char *eq = memchr(p, '=', (size_t)(end - p));
        params[n].key = p;
        params[n].key_len = (size_t)((eq ? eq : end) - p);
        params[n].value = eq ? eq + 1 : end;
        params[n].value_len = eq ? (size_t)(end - eq - 1) : 0;
        n++;
        p = amp ? amp + 1 : NULL;
    }
    return n;
}

static int status;
static char warning[WEB_QIDO_WARNING_MAX];
static vp_error err;
static uint32_t max_results;

/* Runs a search; returns the parsed JSON array (NULL unless status 200 with valid JSON). */
static json_t *search(web_qido_resource r, const char *study, const char *series, const char *query)
{
    web_qido_request rq = {r, study, series, params, split_query(query)};
    web_qido_opts o = {.base_url = BASE "/", .max_results = max_results};
    vp_buf body;
    vp_buf_init(&body, 0);
    vp_error_clear(&err);
    status = web_qido_search(db, &rq, &o, &body, warning, sizeof warning, &err);
    json_t *j = NULL;
    if (status == 200) {
        json_error_t je;
        j = json_loadb((const char *)body.data, body.len, 0, &je);
        if (!j || !json_is_array(j))
            FAIL_AT("body is no JSON array: %s: %.200s", je.text, (const char *)body.data);
    } else if (body.len) {
        FAIL_AT("status %d with a body", status);
    }
    vp_buf_fini(&body);
    return j;
}

/* The first value of attribute tag ("0020000D") of an object, as text ("" when absent;
 * "<none>" when the attribute has no Value; PN gives the Alphabetic group). */
static char valbuf[1024];
static const char *val(json_t *obj, const char *tag)
{
    json_t *a = json_object_get(obj, tag);
    if (!a)
        return "";
    json_t *v = json_object_get(a, "Value");
    if (!v || !json_array_size(v))
        return "<none>";
    json_t *x = json_array_get(v, 0);
    if (json_is_object(x))
        x = json_object_get(x, "Alphabetic");
    if (json_is_string(x))
        snprintf(valbuf, sizeof valbuf, "%s", json_string_value(x));
    else if (json_is_integer(x))
        snprintf(valbuf, sizeof valbuf, "#%lld", (long long)json_integer_value(x));
    else
        snprintf(valbuf, sizeof valbuf, "?");
    return valbuf;
}

static const char *vr(json_t *obj, const char *tag)
{
    json_t *a = json_object_get(obj, tag);
    const char *s = a ? json_string_value(json_object_get(a, "vr")) : NULL;
    return s ? s : "";
}

/* The values of tag in every object of the array, joined by ",". */
static char listbuf[8192];
static const char *list(json_t *arr, const char *tag)
{
    listbuf[0] = 0;
    size_t i;
    json_t *o;
    json_array_foreach(arr, i, o)
    {
        if (i)
            strncat(listbuf, ",", sizeof listbuf - strlen(listbuf) - 1);
        strncat(listbuf, val(o, tag), sizeof listbuf - strlen(listbuf) - 1);
    }
    return listbuf;
}

/* Searches /studies and returns the Study Instance UIDs, "204", or "400:<message>". */
static char resbuf[8192];
static const char *studies(const char *query)
{
    json_t *j = search(WEB_QIDO_STUDIES, NULL, NULL, query);
    if (status == 200)
        snprintf(resbuf, sizeof resbuf, "%s", list(j, "0020000D"));
    else if (status == 204)
        snprintf(resbuf, sizeof resbuf, "204");
    else
        snprintf(resbuf, sizeof resbuf, "%d:%s", status, err.msg);
    json_decref(j);
    return resbuf;
}

/* The object's attribute tags, sorted, joined by ",". */
static const char *keys(json_t *obj)
{
    const char *k[128];
    size_t n = 0;
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        if (n < 128)
            k[n++] = key;
    }
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && strcmp(k[j - 1], k[j]) > 0; j--) {
            const char *t = k[j];
            k[j] = k[j - 1];
            k[j - 1] = t;
        }
    listbuf[0] = 0;
    for (size_t i = 0; i < n; i++) {
        if (i)
            strncat(listbuf, ",", sizeof listbuf - strlen(listbuf) - 1);
        strncat(listbuf, k[i], sizeof listbuf - strlen(listbuf) - 1);
    }
    return listbuf;
}

static bool contains(const char *hay, const char *needle)
{
    return strstr(hay, needle) != NULL;
}

#define CHECK_CONTAINS(hay, needle)                                                                \
    do {                                                                                           \
        const char *h_ = (hay);                                                                    \
        if (!contains(h_, (needle)))                                                               \
            FAIL_AT("\"%s\" does not contain \"%s\"", h_, (needle));                               \
    } while (0)

/* ---- resources and default attributes ---- */

TEST(studies_defaults)
{
    json_t *j = search(WEB_QIDO_STUDIES, NULL, NULL, "");
    CHECK_INT(status, 200);
    CHECK_STR(warning, "");
    CHECK_STR(list(j, "0020000D"), "1.1,1.2,1.3,1.5,1.9");
    json_t *o = json_array_get(j, 0);
    /* Table 10.6.3-3 as the index holds it, and Specific Character Set */
    CHECK_STR(keys(o), "00080005,00080020,00080030,00080050,00080056,00080061,00080090,00081190,"
                       "00100010,00100020,00100030,00100040,0020000D,00200010,00201206,00201208");
    /* F.2 encodings: PN as an object with Alphabetic, DA/TM/UI/CS as strings, IS a number */
    CHECK_STR(vr(o, "00100010"), "PN");
    CHECK_STR(val(o, "00100010"), "Smith^Rex");
    CHECK_STR(val(o, "00080090"), "Vet^Anna");
    CHECK_STR(vr(o, "00080020"), "DA");
    CHECK_STR(val(o, "00080020"), "20240105");
    CHECK_STR(val(o, "00080030"), "101500");
    CHECK_STR(vr(o, "0020000D"), "UI");
    CHECK_STR(vr(o, "00081190"), "UR");
    CHECK_STR(val(o, "00081190"), BASE "/studies/1.1");
    CHECK_STR(val(o, "00080056"), "ONLINE");
    CHECK_STR(val(o, "00080005"), "ISO_IR 192");
    CHECK_STR(vr(o, "00201206"), "IS");
    CHECK_STR(val(o, "00201206"), "#2");
    CHECK_STR(val(o, "00201208"), "#3");
    /* Modalities in Study: every value, F.2.4 */
    json_t *mods = json_object_get(json_object_get(o, "00080061"), "Value");
    CHECK_INT(json_array_size(mods), 2);
    /* UTF-8 names come back as UTF-8; unknown values as "vr" alone (F.2.5) */
    json_t *luna = json_array_get(j, 3);
    CHECK_STR(val(luna, "00100010"), "M\xc3\xbcller^Luna");
    CHECK_STR(val(luna, "00080050"), "<none>");
    CHECK_STR(val(luna, "00080090"), "<none>");
    json_decref(j);
}

TEST(study_series)
{
    json_t *j = search(WEB_QIDO_STUDY_SERIES, "1.1", NULL, "");
    CHECK_INT(status, 200);
    CHECK_STR(list(j, "0020000E"), "1.1.1,1.1.2");
    json_t *o = json_array_get(j, 0);
    /* Table 10.6.3-4 as the index holds it, plus the Study Instance UID of the path */
    CHECK_STR(keys(o), "00080005,00080060,0008103E,00081190,0020000D,0020000E,00200011,00201209");
    CHECK_STR(val(o, "00081190"), BASE "/studies/1.1/series/1.1.1");
    CHECK_STR(val(o, "00080060"), "DX");
    CHECK_STR(val(o, "00200011"), "#1");
    CHECK_STR(val(o, "00201209"), "#2");
    json_decref(j);
    /* matching inside the study */
    j = search(WEB_QIDO_STUDY_SERIES, "1.1", NULL, "Modality=CT");
    CHECK_STR(list(j, "0020000E"), "1.1.2");
    json_decref(j);
    /* a study that does not exist: no content */
    j = search(WEB_QIDO_STUDY_SERIES, "9.9", NULL, "");
    CHECK_INT(status, 204);
    CHECK(j == NULL);
}

TEST(all_series)
{
    json_t *j = search(WEB_QIDO_SERIES, NULL, NULL, "Modality=DX");
    CHECK_INT(status, 200);
    CHECK_STR(list(j, "0020000E"), "1.1.1,1.5.1");
    json_t *o = json_array_get(j, 0);
    /* "If the Target Resource is All Series, then include all Study Level Attributes" */
    CHECK_STR(keys(o), "00080005,00080020,00080030,00080050,00080056,00080060,00080061,00080090,"
                       "0008103E,00081190,00100010,00100020,00100030,00100040,0020000D,0020000E,"
                       "00200010,00200011,00201206,00201208,00201209");
    CHECK_STR(val(o, "00100010"), "Smith^Rex");
    CHECK_STR(val(o, "00081190"), BASE "/studies/1.1/series/1.1.1");
    json_decref(j);
    /* study attributes match at series level */
    j = search(WEB_QIDO_SERIES, NULL, NULL, "PatientID=P1");
    CHECK_STR(list(j, "0020000E"), "1.1.1,1.1.2");
    json_decref(j);
}

TEST(series_instances)
{
    json_t *j = search(WEB_QIDO_STUDY_SERIES_INSTANCES, "1.1", "1.1.1", "");
    CHECK_INT(status, 200);
    CHECK_STR(list(j, "00080018"), "1.1.1.1,1.1.1.2");
    json_t *o = json_array_get(j, 1);
    /* Table 10.6.3-5 as the index holds it (no Rows, Columns, Bits Allocated) */
    CHECK_STR(keys(o), "00080005,00080016,00080018,00080056,00081190,0020000D,0020000E,00200013,"
                       "00280008");
    CHECK_STR(val(o, "00081190"), BASE "/studies/1.1/series/1.1.1/instances/1.1.1.2");
    CHECK_STR(val(o, "00080016"), "1.2.840.10008.5.1.4.1.1.1.1");
    CHECK_STR(val(o, "00200013"), "#2");
    CHECK_STR(val(o, "00280008"), "#1");
    json_decref(j);
    j = search(WEB_QIDO_STUDY_SERIES_INSTANCES, "1.1", "1.1.1", "InstanceNumber=2");
    CHECK_STR(list(j, "00080018"), "1.1.1.2");
    json_decref(j);
    /* a series of another study: nothing */
    search(WEB_QIDO_STUDY_SERIES_INSTANCES, "1.2", "1.1.1", "");
    CHECK_INT(status, 204);
}

TEST(study_instances)
{
    json_t *j = search(WEB_QIDO_STUDY_INSTANCES, "1.1", NULL, "");
    CHECK_INT(status, 200);
    CHECK_STR(list(j, "00080018"), "1.1.1.1,1.1.1.2,1.1.2.1");
    /* series attributes included (10.6.3.3.3), study ones not */
    json_t *o = json_array_get(j, 2);
    CHECK_STR(val(o, "00080060"), "CT");
    CHECK_STR(val(o, "00201209"), "#1");
    CHECK_STR(val(o, "00100010"), "");
    json_decref(j);
    j = search(WEB_QIDO_STUDY_INSTANCES, "1.1", NULL, "Modality=DX&InstanceNumber=1");
    CHECK_STR(list(j, "00080018"), "1.1.1.1");
    json_decref(j);
}

TEST(all_instances)
{
    json_t *j = search(WEB_QIDO_INSTANCES, NULL, NULL, "SOPInstanceUID=1.2.1.1");
    CHECK_INT(status, 200);
    CHECK_INT(json_array_size(j), 1);
    json_t *o = json_array_get(j, 0);
    CHECK_STR(val(o, "00100010"), "Jones^Bella");
    CHECK_STR(val(o, "00080060"), "MR");
    CHECK_STR(val(o, "00081190"), BASE "/studies/1.2/series/1.2.1/instances/1.2.1.1");
    json_decref(j);
    j = search(WEB_QIDO_INSTANCES, NULL, NULL, "PatientName=jones*&Modality=MR");
    CHECK_STR(list(j, "00080018"), "1.2.1.1");
    json_decref(j);
}

/* ---- matching (PS3.18 8.3.4.1 with the rules of PS3.4 C.2.2.2) ---- */

TEST(matching)
{
    /* single value, keyword or tag */
    CHECK_STR(studies("PatientID=P2"), "1.2");
    CHECK_STR(studies("00100020=P2"), "1.2");
    CHECK_STR(studies("0020000d=1.3"), "1.3"); /* lower-case hex */
    CHECK_STR(studies("AccessionNumber=A2"), "1.2");
    /* universal */
    CHECK_STR(studies("PatientName=*"), "1.1,1.2,1.3,1.5,1.9");
    CHECK_STR(studies("PatientName="), "1.1,1.2,1.3,1.5,1.9");
    /* wild cards, person names ignoring case */
    CHECK_STR(studies("PatientName=smith*"), "1.1");
    CHECK_STR(studies("PatientName=*^Be?la"), "1.2");
    CHECK_STR(studies("PatientName=SMITH^REX"), "1.1");
    CHECK_STR(studies("PatientID=p*"), "204"); /* LO stays case-sensitive */
    /* date ranges */
    CHECK_STR(studies("StudyDate=20240101-20241231"), "1.1,1.2");
    CHECK_STR(studies("StudyDate=-20231231"), "1.3,1.5,1.9");
    CHECK_STR(studies("StudyDate=20240201-"), "1.2");
    CHECK_STR(studies("StudyDate=20240101-20241231&StudyTime=080000-090000"), "1.2");
    /* lists of UIDs: "," (PS3.18) and "\" (C-FIND) */
    CHECK_STR(studies("StudyInstanceUID=1.1,1.3"), "1.1,1.3");
    CHECK_STR(studies("StudyInstanceUID=1.5\\1.2"), "1.2,1.5");
    CHECK_STR(studies("StudyInstanceUID=1.1, 1.9"), "1.1,1.9");
    /* other multi-valued keys: any value */
    CHECK_STR(studies("AccessionNumber=A1,A3"), "1.1,1.3");
    /* computed Modalities in Study */
    CHECK_STR(studies("ModalitiesInStudy=CT"), "1.1");
    CHECK_STR(studies("ModalitiesInStudy=DX"), "1.1,1.5");
    /* series attributes of a study's instances, study attributes of all instances */
    json_t *j = search(WEB_QIDO_INSTANCES, NULL, NULL, "StudyDate=20220101&Modality=DX");
    CHECK_STR(list(j, "00080018"), "1.5.1.1");
    json_decref(j);
}

TEST(veterinary_keys)
{
    CHECK_STR(studies("PatientSpeciesDescription=Canine"), "1.1,1.3");
    CHECK_STR(studies("PatientSpeciesDescription=*ine"), "1.1,1.2,1.3,1.5,1.9");
    CHECK_STR(studies("PatientBreedDescription=Labrador"), "1.3");
    CHECK_STR(studies("ResponsiblePerson=smith^john"), "1.1");
    CHECK_STR(studies("ResponsibleOrganization=Tierklinik"), "1.1");
    CHECK_STR(studies("00102201=Feline"), "1.2");
    /* sequence matching through a dotted path (PS3.4 C.2.2.2.6) */
    CHECK_STR(studies("PatientSpeciesCodeSequence.CodeValue=448771007"), "1.1");
    CHECK_STR(studies("00102202.00080100=448169003"), "1.2");
    json_t *j = search(WEB_QIDO_STUDIES, NULL, NULL,
                       "PatientSpeciesCodeSequence.CodeValue=448169003&"
                       "includefield=PatientSpeciesCodeSequence.CodeMeaning");
    CHECK_INT(json_array_size(j), 1);
    json_t *item = json_array_get(
        json_object_get(json_object_get(json_array_get(j, 0), "00102202"), "Value"), 0);
    CHECK_STR(val(item, "00080100"), "448169003");
    CHECK_STR(val(item, "00080104"), "Feline");
    CHECK_STR(val(item, "00080102"), ""); /* not asked for */
    json_decref(j);
}

TEST(empty_value_matching)
{
    /* PS3.18 8.3.4.5: with emptyvaluematching=true an empty value finds empty values */
    CHECK_STR(studies("AccessionNumber=&emptyvaluematching=true"), "1.5");
    CHECK_STR(studies("emptyvaluematching=true&ReferringPhysicianName="), "1.2,1.3,1.5,1.9");
    CHECK_STR(studies("AccessionNumber=&emptyvaluematching=false"), "1.1,1.2,1.3,1.5,1.9");
}

TEST(fuzzy_matching)
{
    /* without: a value is the whole name */
    CHECK_STR(studies("PatientName=rex"), "204");
    CHECK_STR(studies("PatientName=smi"), "204");
    /* with: a name with a component starting with the value, any case */
    CHECK_STR(studies("PatientName=rex&fuzzymatching=true"), "1.1");
    CHECK_STR(studies("fuzzymatching=true&PatientName=SMI"), "1.1");
    CHECK_STR(studies("PatientName=b&fuzzymatching=true"), "1.2,1.9");
    CHECK_STR(studies("PatientName=bel,lu&fuzzymatching=true"), "1.2,1.5");
    CHECK_STR(studies("ResponsiblePerson=mary&fuzzymatching=true"), "1.2");
    CHECK_STR(studies("PatientName=o'neil^m&fuzzymatching=true"), "1.3");
    /* wild cards keep their meaning; other VRs are untouched */
    CHECK_STR(studies("PatientName=*ex&fuzzymatching=true"), "1.1");
    CHECK_STR(studies("PatientID=P&fuzzymatching=true"), "204");
    CHECK_STR(studies("PatientName=rex&fuzzymatching=false"), "204");
    /* the parsed flag */
    web_qido_request rq = {WEB_QIDO_STUDIES, NULL, NULL, params, split_query("fuzzymatching=true")};
    web_qido_query *wq = NULL;
    CHECK_OK(web_qido_parse(&rq, &wq, &err));
    CHECK(wq && web_qido_query_fuzzy(wq));
    web_qido_query_free(wq);
}

/* ---- includefield (PS3.18 8.3.4.3) ---- */

TEST(includefield)
{
    json_t *j = search(WEB_QIDO_STUDIES, NULL, NULL,
                       "PatientID=P1&includefield=PatientSpeciesDescription,"
                       "PatientBreedDescription&includefield=00081030&includefield=Modality,"
                       "InstitutionName,ResponsiblePerson");
    CHECK_INT(status, 200);
    json_t *o = json_array_get(j, 0);
    CHECK_STR(val(o, "00102201"), "Canine");
    CHECK_STR(val(o, "00102292"), "Border Collie");
    CHECK_STR(val(o, "00081030"), "Thorax");
    CHECK_STR(vr(o, "00102297"), "PN");
    CHECK_STR(val(o, "00102297"), "Smith^John");
    CHECK_STR(val(o, "00080060"), ""); /* a series attribute at study level: not returned */
    CHECK_STR(val(o, "00080080"), ""); /* not held by the archive: left out, no error */
    json_decref(j);
    /* the whole code sequence */
    j = search(WEB_QIDO_STUDIES, NULL, NULL, "PatientID=P2&includefield=00102202");
    json_t *item = json_array_get(
        json_object_get(json_object_get(json_array_get(j, 0), "00102202"), "Value"), 0);
    CHECK_STR(val(item, "00080100"), "448169003");
    CHECK_STR(val(item, "00080102"), "SCT");
    CHECK_STR(val(item, "00080104"), "Feline");
    json_decref(j);
    /* all: every study attribute the archive holds */
    j = search(WEB_QIDO_STUDIES, NULL, NULL, "PatientID=P1&includefield=all");
    o = json_array_get(j, 0);
    CHECK_STR(keys(o), "00080005,00080020,00080030,00080050,00080056,00080061,00080062,00080090,"
                       "00081030,00081190,00100010,00100020,00100021,00100030,00100040,00101030,"
                       "00102201,00102202,00102203,00102292,00102293,00102297,00102298,00102299,"
                       "0020000D,00200010,00201200,00201202,00201204,00201206,00201208");
    CHECK_STR(val(o, "00080062"), "1.2.840.10008.5.1.4.1.1.1.1");
    CHECK_STR(val(o, "00201204"), "#3");
    json_decref(j);
    /* all at instance level of all instances: study, series and instance attributes */
    j = search(WEB_QIDO_INSTANCES, NULL, NULL, "SOPInstanceUID=1.3.1.1&includefield=all");
    o = json_array_get(j, 0);
    CHECK_STR(val(o, "00102292"), "Labrador");
    CHECK_STR(val(o, "00180015"), "<none>");
    CHECK_STR(val(o, "00280008"), "#1");
    json_decref(j);
    /* Instance Availability asked for at series level */
    j = search(WEB_QIDO_STUDY_SERIES, "1.2", NULL, "includefield=InstanceAvailability");
    CHECK_STR(val(json_array_get(j, 0), "00080056"), "ONLINE");
    json_decref(j);
    /* the return tags of a parsed query */
    web_qido_request rq = {WEB_QIDO_STUDY_SERIES, "1.2", NULL, params,
                           split_query("includefield=PatientName")};
    web_qido_query *wq = NULL;
    CHECK_OK(web_qido_parse(&rq, &wq, &err));
    uint32_t tags[64];
    size_t n = wq ? web_qido_query_return_tags(wq, tags, 64) : 0;
    char got[512] = "";
    for (size_t i = 0; i < n && i < 64; i++)
        snprintf(got + strlen(got), sizeof got - strlen(got), "%s%08X", i ? "," : "", tags[i]);
    CHECK_STR(got, "00080005,00080060,0008103E,00081190,00100010,0020000D,0020000E,00200011,"
                   "00201209");
    CHECK_INT(web_qido_query_level(wq), QRY_LEVEL_SERIES);
    web_qido_query_free(wq);
}

/* ---- limit and offset (PS3.18 8.3.4.4) ---- */

TEST(limit_offset)
{
    CHECK_STR(studies("limit=2"), "1.1,1.2");
    CHECK_CONTAINS(warning, "299 " BASE ": There are additional results");
    CHECK_STR(studies("limit=2&offset=2"), "1.3,1.5");
    CHECK_CONTAINS(warning, "additional results");
    CHECK_STR(studies("limit=2&offset=3"), "1.5,1.9");
    CHECK_STR(warning, "");
    CHECK_STR(studies("offset=4"), "1.9");
    CHECK_STR(warning, "");
    CHECK_STR(studies("offset=5"), "204");
    CHECK_STR(studies("offset=4294967295"), "204");
    CHECK_STR(studies("limit=5"), "1.1,1.2,1.3,1.5,1.9");
    CHECK_STR(warning, "");
    /* maxResults of the server */
    max_results = 3;
    CHECK_STR(studies(""), "1.1,1.2,1.3");
    CHECK_CONTAINS(warning, "exceeded the maximum supported by the server");
    CHECK_STR(studies("limit=10&offset=1"), "1.2,1.3,1.5");
    CHECK_CONTAINS(warning, "exceeded the maximum");
    CHECK_STR(studies("limit=2"), "1.1,1.2");
    CHECK_CONTAINS(warning, "There are additional results");
    CHECK_STR(studies("offset=2"), "1.3,1.5,1.9");
    CHECK_STR(warning, "");
    max_results = 0;
    web_qido_request rq = {WEB_QIDO_STUDIES, NULL, NULL, params, split_query("limit=7&offset=9")};
    web_qido_query *wq = NULL;
    CHECK_OK(web_qido_parse(&rq, &wq, &err));
    CHECK_INT(web_qido_query_limit(wq), 7);
    CHECK_INT(web_qido_query_offset(wq), 9);
    web_qido_query_free(wq);
}

/* ---- the body in pieces ---- */

TEST(stream_pieces)
{
    web_qido_request rq = {WEB_QIDO_STUDY_SERIES_INSTANCES, "1.9", "1.9.1", params,
                           split_query("")};
    web_qido_opts o = {.base_url = BASE};
    web_qido_stream *s = NULL;
    vp_error_clear(&err);
    CHECK_INT(web_qido_open(db, &rq, &o, &s, warning, sizeof warning, &err), 200);
    vp_buf body, piece;
    vp_buf_init(&body, 0);
    vp_buf_init(&piece, 0);
    bool done = false;
    int pieces = 0;
    while (s && !done && pieces < 1000) {
        vp_buf_reset(&piece);
        CHECK_OK(web_qido_stream_read(s, &piece, &done, &err));
        CHECK(piece.len > 0);
        vp_buf_append(&body, piece.data, piece.len);
        pieces++;
    }
    CHECK(pieces > 1);
    CHECK_INT(s ? web_qido_stream_count(s) : 0, BIG_N);
    web_qido_stream_close(s);
    json_error_t je;
    json_t *j = json_loadb((const char *)body.data, body.len, 0, &je);
    CHECK_INT(json_array_size(j), BIG_N);
    CHECK_STR(val(json_array_get(j, BIG_N - 1), "00080018"), "1.9.1.400");
    json_decref(j);
    vp_buf_fini(&body);
    vp_buf_fini(&piece);
    /* paging through the big series */
    j = search(WEB_QIDO_STUDY_SERIES_INSTANCES, "1.9", "1.9.1", "offset=390&limit=20");
    CHECK_INT(json_array_size(j), 10);
    CHECK_STR(val(json_array_get(j, 0), "00080018"), "1.9.1.391");
    json_decref(j);
    /* a closed stream that was never read */
    s = NULL;
    CHECK_INT(web_qido_open(db, &rq, &o, &s, NULL, 0, &err), 200);
    web_qido_stream_close(s);
}

/* ---- bad requests: 400 and a message ---- */

static void bad(web_qido_resource r, const char *study, const char *series, const char *query,
                const char *message)
{
    json_t *j = search(r, study, series, query);
    json_decref(j);
    if (status != 400)
        FAIL_AT("%s: status %d, expected 400", query, status);
    else if (!contains(err.msg, message))
        FAIL_AT("%s: message \"%s\" lacks \"%s\"", query, err.msg, message);
}

TEST(bad_requests)
{
    bad(WEB_QIDO_STUDIES, NULL, NULL, "Foo=1", "unknown attribute \"Foo\"");
    bad(WEB_QIDO_STUDIES, NULL, NULL, "0010001=1", "eight hexadecimal digits");
    bad(WEB_QIDO_STUDIES, NULL, NULL, "0010001G=1", "eight hexadecimal digits");
    bad(WEB_QIDO_STUDIES, NULL, NULL, "includefield=Bogus", "unknown attribute \"Bogus\"");
    bad(WEB_QIDO_STUDIES, NULL, NULL, "includefield=PatientName,,StudyDate", "empty attribute");
    bad(WEB_QIDO_STUDIES, NULL, NULL, "Modality=CT", "is a SERIES attribute");
    bad(WEB_QIDO_STUDY_SERIES, "1.1", NULL, "SOPInstanceUID=1.1.1.1", "is a IMAGE attribute");
    bad(WEB_QIDO_STUDIES, NULL, NULL, "InstitutionName=X", "cannot be matched");
    bad(WEB_QIDO_STUDIES, NULL, NULL, "NumberOfStudyRelatedSeries=2", "includefield");
    bad(WEB_QIDO_STUDIES, NULL, NULL, "StudyInstanceUID=1.*", "");
    bad(WEB_QIDO_STUDIES, NULL, NULL, "StudyDate=20241231-20240101", "");
    bad(WEB_QIDO_STUDIES, NULL, NULL, "StudyDate=yesterday", "");
    bad(WEB_QIDO_STUDIES, NULL, NULL, "limit=abc", "limit \"abc\" is not an unsigned integer");
    bad(WEB_QIDO_STUDIES, NULL, NULL, "limit=-1", "not an unsigned integer");
    bad(WEB_QIDO_STUDIES, NULL, NULL, "limit=", "not an unsigned integer");
    bad(WEB_QIDO_STUDIES, NULL, NULL, "limit=0", "at least 1");
    bad(WEB_QIDO_STUDIES, NULL, NULL, "offset=4294967296", "offset");
    bad(WEB_QIDO_STUDIES, NULL, NULL, "limit=1&limit=2", "limit is given twice");
    bad(WEB_QIDO_STUDIES, NULL, NULL, "fuzzymatching=yes", "must be true or false");
    bad(WEB_QIDO_STUDIES, NULL, NULL, "PatientID=P1&PatientID=P2", "given twice");
    bad(WEB_QIDO_STUDIES, NULL, NULL, "PatientID=P1&00100020=P2", "given twice");
    bad(WEB_QIDO_STUDY_SERIES, "1.1", NULL, "StudyInstanceUID=1.2", "given by the path");
    bad(WEB_QIDO_STUDY_SERIES_INSTANCES, "1.1", "1.1.1", "SeriesInstanceUID=1.2",
        "given by the path");
    bad(WEB_QIDO_STUDY_SERIES, "abc", NULL, "", "\"abc\" of the path is not a UID");
    bad(WEB_QIDO_STUDY_SERIES, NULL, NULL, "", "missing from the path");
    bad(WEB_QIDO_STUDIES, "1.1", NULL, "", "no UID in its path");
    bad(WEB_QIDO_STUDIES, NULL, NULL, "PatientSpeciesCodeSequence=x", "is a sequence");
    bad(WEB_QIDO_STUDIES, NULL, NULL, "PatientSpeciesCodeSequence.PatientID=x", "not an item");
    bad(WEB_QIDO_STUDIES, NULL, NULL, "PatientID.CodeValue=x", "not a sequence");
    bad(WEB_QIDO_STUDIES, NULL, NULL, "a.b.c=x", "more than one item level");
    bad(WEB_QIDO_STUDIES, NULL, NULL, "00191010=x", "cannot be matched");
    /* too much of everything */
    static char big[3u << 20];
    memset(big, 0, sizeof big);
    strcpy(big, "PatientID=");
    memset(big + 10, 'x', (2u << 20));
    bad(WEB_QIDO_STUDIES, NULL, NULL, big, "at most");
    memset(big, 0, sizeof big);
    strcpy(big, "StudyInstanceUID=1");
    for (size_t i = 0, at = strlen(big); i < 20000; i++, at += 2)
        memcpy(big + at, ",1", 2);
    bad(WEB_QIDO_STUDIES, NULL, NULL, big, "at most");
    memset(big, 0, sizeof big);
    for (int i = 0; i < 300; i++)
        strcat(big, i ? "&limit=1" : "limit=1");
    bad(WEB_QIDO_STUDIES, NULL, NULL, big, "query parameters");
    /* a NUL byte in a value */
    web_qido_param p = {"PatientID", 9,
                        "P\0"
                        "1",
                        3};
    web_qido_request rq = {WEB_QIDO_STUDIES, NULL, NULL, &p, 1};
    web_qido_query *wq = NULL;
    vp_error_clear(&err);
    CHECK_INT(web_qido_parse(&rq, &wq, &err), VP_EINVAL);
    CHECK_CONTAINS(err.msg, "NUL");
    CHECK(wq == NULL);
    /* a name that is not printable comes back sanitised */
    bad(WEB_QIDO_STUDIES, NULL, NULL, "Pat\x01\xff\"=1", "unknown attribute \"Pat???\"");
    /* parameters left to the HTTP layer are accepted */
    CHECK_STR(studies("accept=application/dicom%2Bjson&charset=utf-8&PatientID=P2"), "1.2");
    CHECK_STR(studies("multiplevaluematching=true&PatientID=P2"), "1.2");
    CHECK_STR(studies("&PatientID=P2&&"), "1.2"); /* empty pairs are nothing */
    bad(WEB_QIDO_STUDIES, NULL, NULL, "=P2", "unknown attribute \"\"");
    CHECK_INT(web_qido_http_status(VP_EINVAL), 400);
    CHECK_INT(web_qido_http_status(VP_ENOMEM), 503);
    CHECK_INT(web_qido_http_status(VP_EIO), 500);
}

/* ---- allocation failures: an error status, never a crash or a leak ---- */

TEST(allocation_failures)
{
    const char *q = "PatientName=smi&fuzzymatching=true&includefield=all&"
                    "PatientSpeciesCodeSequence.CodeValue=448771007&limit=3";
    int ok = 0;
    long n = 1;
    for (; n < 5000; n++) {
        web_qido_request rq = {WEB_QIDO_SERIES, NULL, NULL, params, split_query(q)};
        web_qido_opts o = {.base_url = BASE};
        vp_buf body;
        vp_buf_init(&body, 0);
        vp_error_clear(&err);
        vp_alloc_fail_after(n);
        int st = web_qido_search(db, &rq, &o, &body, warning, sizeof warning, &err);
        vp_alloc_fail_after(0);
        vp_buf_fini(&body);
        if (st == 200) {
            ok = 1;
            break;
        }
        if (st != 503 && st != 500)
            FAIL_AT("allocation %ld failing gave status %d: %s", n, st, err.msg);
        if (!err.msg[0])
            FAIL_AT("allocation %ld failing gave no message", n);
    }
    CHECK(ok);
    CHECK(n > 50); /* the failures went through parsing, compiling and answering */
}

int main(void)
{
    setup();
    RUN(studies_defaults);
    RUN(study_series);
    RUN(all_series);
    RUN(series_instances);
    RUN(study_instances);
    RUN(all_instances);
    RUN(matching);
    RUN(veterinary_keys);
    RUN(empty_value_matching);
    RUN(fuzzy_matching);
    RUN(includefield);
    RUN(limit_offset);
    RUN(stream_pieces);
    RUN(bad_requests);
    RUN(allocation_failures);
    idx_close(db);
    unlink(db_path);
    char wal[80];
    snprintf(wal, sizeof wal, "%s-wal", db_path);
    unlink(wal);
    snprintf(wal, sizeof wal, "%s-shm", db_path);
    unlink(wal);
    DONE();
}
