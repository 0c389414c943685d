/* SPDX-License-Identifier: MIT */
/*
 * Index attributes of an instance from its data set: the PS3.3 C.7.1.1 patient module with the
 * CP-643 veterinary attributes (C.7.1.1, C.7.2.2; species and breed codes read as the Code
 * Sequence Macro, Table 8.8-1), study, series and SOP common keys.
 */
#include <stdio.h>
#include <string.h>

#include "idx/idx.h"

/* Copies value idx of tag as UTF-8 (text VRs through the character set), trimmed, cut to fit
 * on a character boundary. Absent or empty gives "". */
static void text(const dcm_dataset *ds, uint32_t tag, char *out, size_t size)
{
    out[0] = 0;
    const dcm_element *el = dcm_dataset_find(ds, tag);
    if (!el || !dcm_element_value(el))
        return;
    enum dcm_vr vr = dcm_element_vr(el);
    const uint8_t *v = dcm_element_value(el);
    size_t n = dcm_element_length(el);
    vp_buf b;
    vp_buf_init(&b, 4096);
    if (dcm_vr_is_text(vr)) {
        const char *cs;
        size_t cslen;
        dcm_dataset_charset(ds, &cs, &cslen);
        if (dcm_text_to_utf8(cs, cslen, vr, v, n, &b) != VP_OK)
            vp_buf_reset(&b);
    } else if (dcm_vr_is_string(vr)) {
        vp_buf_append(&b, v, n);
    }
    const char *s = b.data ? (const char *)b.data : "";
    size_t len = b.len;
    while (len && (s[len - 1] == ' ' || s[len - 1] == 0))
        len--;
    while (len && *s == ' ')
        s++, len--;
    if (len >= size) {
        len = size - 1;
        while (len && ((uint8_t)s[len] & 0xC0) == 0x80)
            len--; /* do not cut a UTF-8 sequence */
    }
    memcpy(out, s, len);
    out[len] = 0;
    vp_buf_fini(&b);
}

/* Where code() puts the attributes of a code. */
typedef struct code_out {
    char *value, *scheme, *version, *meaning;                   /* the fields of idx_record */
    size_t value_size, scheme_size, version_size, meaning_size; /* and their sizes */
} code_out;

/* The first item of a code sequence (the Code Sequence Macro, PS3.3 Table 8.8-1): Code Value,
 * Coding Scheme Designator, Coding Scheme Version and Code Meaning, converted to UTF-8 under
 * the character set the item inherits. The index keeps a code by its value, so an item
 * without one (a Long Code Value or URN Code Value only) gives four empty fields. */
static void code(const dcm_dataset *ds, uint32_t seq_tag, const code_out *o)
{
    o->value[0] = o->scheme[0] = o->version[0] = o->meaning[0] = 0;
    const dcm_element *el = dcm_dataset_find(ds, seq_tag);
    const dcm_dataset *item = el ? dcm_element_item(el, 0) : NULL;
    if (!item)
        return;
    text(item, DCM_TAG(0x0008, 0x0100), o->value, o->value_size);
    if (!o->value[0])
        return;
    text(item, DCM_TAG(0x0008, 0x0102), o->scheme, o->scheme_size);
    text(item, DCM_TAG(0x0008, 0x0103), o->version, o->version_size);
    text(item, DCM_TAG(0x0008, 0x0104), o->meaning, o->meaning_size);
}

#define CODE_OUT(r, f)                                                                             \
    (&(const code_out){r->f##_code, r->f##_scheme, r->f##_version, r->f##_meaning,                 \
                       sizeof r->f##_code, sizeof r->f##_scheme, sizeof r->f##_version,            \
                       sizeof r->f##_meaning})

static void copy_component(const char *s, size_t n, char *out, size_t size)
{
    while (n && s[n - 1] == ' ')
        n--;
    if (n >= size)
        n = size - 1;
    memcpy(out, s, n);
    out[n] = 0;
}

/* Pet and owner from Patient's Name. Clinics write "Owner^Pet" or the pet's name alone
 * (DESIGN.md): the given-name component is the pet when present, else the whole name is. */
static void split_name(idx_record *r)
{
    const char *alpha = r->patient_name;
    size_t n = strcspn(alpha, "=");
    const char *caret = memchr(alpha, '^', n);
    if (!caret) {
        copy_component(alpha, n, r->pet_name, sizeof r->pet_name);
        return;
    }
    const char *given = caret + 1;
    size_t glen = strcspn(given, "^=");
    if (glen == 0) {
        copy_component(alpha, (size_t)(caret - alpha), r->pet_name, sizeof r->pet_name);
        return;
    }
    copy_component(given, glen, r->pet_name, sizeof r->pet_name);
    if (!r->owner_name[0])
        copy_component(alpha, (size_t)(caret - alpha), r->owner_name, sizeof r->owner_name);
}

vp_status idx_record_from_dataset(const dcm_dataset *ds, idx_record *r, vp_error *err)
{
    memset(r, 0, sizeof *r);
    text(ds, DCM_TAG(0x0010, 0x0020), r->patient_id, sizeof r->patient_id);
    text(ds, DCM_TAG(0x0010, 0x0021), r->issuer, sizeof r->issuer);
    text(ds, DCM_TAG(0x0010, 0x0010), r->patient_name, sizeof r->patient_name);
    text(ds, DCM_TAG(0x0010, 0x2297), r->owner_name, sizeof r->owner_name);
    text(ds, DCM_TAG(0x0010, 0x2298), r->owner_role, sizeof r->owner_role);
    text(ds, DCM_TAG(0x0010, 0x2299), r->clinic, sizeof r->clinic);
    text(ds, DCM_TAG(0x0010, 0x2201), r->species, sizeof r->species);
    code(ds, DCM_TAG(0x0010, 0x2202), CODE_OUT(r, species));
    text(ds, DCM_TAG(0x0010, 0x2292), r->breed, sizeof r->breed);
    code(ds, DCM_TAG(0x0010, 0x2293), CODE_OUT(r, breed));
    text(ds, DCM_TAG(0x0010, 0x0040), r->sex, sizeof r->sex);
    text(ds, DCM_TAG(0x0010, 0x0030), r->birth_date, sizeof r->birth_date);
    split_name(r);
    text(ds, DCM_TAG(0x0020, 0x000D), r->study_uid, sizeof r->study_uid);
    text(ds, DCM_TAG(0x0008, 0x0020), r->study_date, sizeof r->study_date);
    text(ds, DCM_TAG(0x0008, 0x0030), r->study_time, sizeof r->study_time);
    text(ds, DCM_TAG(0x0008, 0x0050), r->accession, sizeof r->accession);
    text(ds, DCM_TAG(0x0020, 0x0010), r->study_id, sizeof r->study_id);
    text(ds, DCM_TAG(0x0008, 0x1030), r->study_description, sizeof r->study_description);
    text(ds, DCM_TAG(0x0008, 0x0090), r->referring, sizeof r->referring);
    text(ds, DCM_TAG(0x0010, 0x2203), r->sex_neutered, sizeof r->sex_neutered);
    text(ds, DCM_TAG(0x0010, 0x1030), r->weight, sizeof r->weight);
    text(ds, DCM_TAG(0x0020, 0x000E), r->series_uid, sizeof r->series_uid);
    text(ds, DCM_TAG(0x0008, 0x0060), r->modality, sizeof r->modality);
    text(ds, DCM_TAG(0x0020, 0x0011), r->series_number, sizeof r->series_number);
    text(ds, DCM_TAG(0x0008, 0x103E), r->series_description, sizeof r->series_description);
    text(ds, DCM_TAG(0x0018, 0x0015), r->body_part, sizeof r->body_part);
    text(ds, DCM_TAG_SOP_CLASS_UID, r->sop_class_uid, sizeof r->sop_class_uid);
    text(ds, DCM_TAG_SOP_INSTANCE_UID, r->sop_instance_uid, sizeof r->sop_instance_uid);
    text(ds, DCM_TAG(0x0020, 0x0013), r->instance_number, sizeof r->instance_number);
    int64_t frames = 1;
    dcm_dataset_get_int(ds, DCM_TAG(0x0028, 0x0008), 0, &frames);
    r->frames = frames > 0 && frames < 0x7FFFFFFF ? (uint32_t)frames : 1;
    static const struct {
        uint32_t tag;
        const char *name;
        size_t off;
    } required[] = {
        {DCM_TAG(0x0020, 0x000D), "Study Instance UID", offsetof(idx_record, study_uid)},
        {DCM_TAG(0x0020, 0x000E), "Series Instance UID", offsetof(idx_record, series_uid)},
        {DCM_TAG_SOP_CLASS_UID, "SOP Class UID", offsetof(idx_record, sop_class_uid)},
        {DCM_TAG_SOP_INSTANCE_UID, "SOP Instance UID", offsetof(idx_record, sop_instance_uid)},
    };
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
        const char *uid = (const char *)r + required[i].off;
        if (!dcm_uid_valid(uid, strlen(uid)))
            return vp_error_set(err, VP_EINVAL, "%s (%04X,%04X) %s", required[i].name,
                                DCM_GROUP(required[i].tag), DCM_ELEMENT(required[i].tag),
                                uid[0] ? "is not a valid UID" : "is missing");
    }
    return VP_OK;
}
