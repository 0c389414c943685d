/* SPDX-License-Identifier: MIT */
/*
 * The keys of the Patient Root and Study Root Query/Retrieve Information Models (PS3.4 C.6.1.1,
 * C.6.2.1) that the index holds as columns or computes from its rows (the attributes of PS3.4
 * C.3.4: counts, Modalities and SOP Classes in Study), with the veterinary attributes of CP-643
 * (PS3.3 C.7.1.1). Keys not listed here are return keys only. The level is the attribute's level in
 * the model; the table is where idx stores it (Patient's Sex Neutered and Patient's Weight
 * are kept per study since they change over the animal's life). The species and breed code
 * sequences have their item keys in tables of their own (C.2.2.2.6 sequence matching).
 */
#include "qry/internal.h"

#define K(g, e, lvl, tbl, kind, vr, col)                                                           \
    {                                                                                              \
        DCM_TAG(g, e), QRY_LEVEL_##lvl, QRY_T_##tbl, QRY_KIND_##kind, DCM_VR_##vr, col             \
    }

/* Sorted by tag. */
static const qry_key_def keys[] = {
    K(0x0008, 0x0016, IMAGE, INSTANCE, UID, UI, "sop_class"),
    K(0x0008, 0x0018, IMAGE, INSTANCE, UID, UI, "sop_uid"),
    K(0x0008, 0x0020, STUDY, STUDY, DA, DA, "study_date"),
    K(0x0008, 0x0030, STUDY, STUDY, TM, TM, "study_time"),
    K(0x0008, 0x0050, STUDY, STUDY, TEXT, SH, "accession"),
    K(0x0008, 0x0060, SERIES, SERIES, TEXT, CS, "modality"),
    K(0x0008, 0x0061, STUDY, STUDY, MODALITIES, CS, "modalities"),
    K(0x0008, 0x0062, STUDY, STUDY, SOP_CLASSES, UI, ""), /* computed: SOP Classes in Study */
    K(0x0008, 0x0090, STUDY, STUDY, PN, PN, "referring"),
    K(0x0008, 0x1030, STUDY, STUDY, TEXT, LO, "description"),
    K(0x0008, 0x103E, SERIES, SERIES, TEXT, LO, "description"),
    K(0x0010, 0x0010, PATIENT, PATIENT, PATIENT_NAME, PN, "patient_name"),
    K(0x0010, 0x0020, PATIENT, PATIENT, TEXT, LO, "patient_id"),
    K(0x0010, 0x0021, PATIENT, PATIENT, TEXT, LO, "issuer"),
    K(0x0010, 0x0030, PATIENT, PATIENT, DA, DA, "birth_date"),
    K(0x0010, 0x0040, PATIENT, PATIENT, TEXT, CS, "sex"),
    K(0x0010, 0x1030, STUDY, STUDY, DS, DS, "weight"),
    K(0x0010, 0x2201, PATIENT, PATIENT, TEXT, LO, "species"),
    K(0x0010, 0x2202, PATIENT, PATIENT, CODE_SEQ, SQ, "species_code"),
    K(0x0010, 0x2203, PATIENT, STUDY, TEXT, CS, "sex_neutered"),
    K(0x0010, 0x2292, PATIENT, PATIENT, TEXT, LO, "breed"),
    K(0x0010, 0x2293, PATIENT, PATIENT, CODE_SEQ, SQ, "breed_code"),
    K(0x0010, 0x2297, PATIENT, PATIENT, PN, PN, "owner_name"),
    K(0x0010, 0x2298, PATIENT, PATIENT, TEXT, CS, "owner_role"),
    K(0x0010, 0x2299, PATIENT, PATIENT, TEXT, LO, "clinic"),
    K(0x0018, 0x0015, SERIES, SERIES, TEXT, CS, "body_part"),
    K(0x0020, 0x000D, STUDY, STUDY, UID, UI, "study_uid"),
    K(0x0020, 0x000E, SERIES, SERIES, UID, UI, "series_uid"),
    K(0x0020, 0x0010, STUDY, STUDY, TEXT, SH, "study_id"),
    K(0x0020, 0x0011, SERIES, SERIES, IS, IS, "series_number"),
    K(0x0020, 0x0013, IMAGE, INSTANCE, IS, IS, "instance_number"),
    /* computed: Number of Patient Related Studies, Series, Instances */
    K(0x0020, 0x1200, PATIENT, PATIENT, RETURN, IS, ""),
    K(0x0020, 0x1202, PATIENT, PATIENT, RETURN, IS, ""),
    K(0x0020, 0x1204, PATIENT, PATIENT, RETURN, IS, ""),
    K(0x0020, 0x1206, STUDY, STUDY, RETURN, IS, "n_series"),    /* Number of Study Related Series */
    K(0x0020, 0x1208, STUDY, STUDY, RETURN, IS, "n_instances"), /* ... Study Related Instances */
    K(0x0020, 0x1209, SERIES, SERIES, RETURN, IS, "n_instances"), /* ... Series Related ... */
    K(0x0028, 0x0008, IMAGE, INSTANCE, IS, IS, "frames"),
};

const qry_key_def *qry__key_find(uint32_t tag)
{
    size_t lo = 0, hi = sizeof keys / sizeof keys[0];
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (keys[mid].tag == tag)
            return &keys[mid];
        if (keys[mid].tag < tag)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* The item keys of the code sequences (Code Sequence Macro, PS3.3 Table 8.8-1), in enum
 * qry_code_attr order: the first item of each is kept in the patient table (idx migration 4). */
#define C(e, vr, col) K(0x0008, e, PATIENT, PATIENT, TEXT, vr, col)
static const qry_key_def species_code[QRY_CODE_N] = {
    C(0x0100, SH, "species_code"),
    C(0x0102, SH, "species_scheme"),
    C(0x0103, SH, "species_version"),
    C(0x0104, LO, "species_meaning"),
};
static const qry_key_def breed_code[QRY_CODE_N] = {
    C(0x0100, SH, "breed_code"),
    C(0x0102, SH, "breed_scheme"),
    C(0x0103, SH, "breed_version"),
    C(0x0104, LO, "breed_meaning"),
};

const qry_key_def *qry__code_keys(uint32_t tag)
{
    return tag == DCM_TAG(0x0010, 0x2202)   ? species_code
           : tag == DCM_TAG(0x0010, 0x2293) ? breed_code
                                            : NULL;
}

int qry__code_attr(uint32_t tag)
{
    for (int a = 0; a < QRY_CODE_N; a++)
        if (species_code[a].tag == tag)
            return a;
    return -1;
}

uint32_t qry__code_tag(enum qry_code_attr attr)
{
    return species_code[attr].tag;
}

/* The computed keys (PS3.4 C.3.4), from the index rows of the entity's children; the aliases
 * s, i and x never name a table of the outer SELECT. */
static const struct {
    uint32_t tag;
    const char *sql;
} computed[] = {
    /* SOP Classes in Study, sorted */
    {DCM_TAG(0x0008, 0x0062),
     "(SELECT coalesce(group_concat(c, '\\'), '') FROM (SELECT DISTINCT i.sop_class AS c"
     " FROM series s JOIN instance i ON i.series = s.id WHERE s.study = study.id ORDER BY c))"},
    /* Number of Patient Related Studies, Series, Instances: the animal's */
    {DCM_TAG(0x0020, 0x1200), "(SELECT count(*) FROM study x WHERE x.patient = patient.id)"},
    {DCM_TAG(0x0020, 0x1202),
     "(SELECT coalesce(sum(x.n_series), 0) FROM study x WHERE x.patient = patient.id)"},
    {DCM_TAG(0x0020, 0x1204),
     "(SELECT coalesce(sum(x.n_instances), 0) FROM study x WHERE x.patient = patient.id)"},
};

const char *qry__key_expr(uint32_t tag)
{
    for (size_t i = 0; i < sizeof computed / sizeof computed[0]; i++)
        if (computed[i].tag == tag)
            return computed[i].sql;
    return NULL;
}

const char *qry__table_name(unsigned table)
{
    static const char *const names[] = {"patient", "study", "series", "instance"};
    return table < 4 ? names[table] : "?";
}
