/* SPDX-License-Identifier: MIT */
/*
 * Dictionary, UID registry and transfer syntax lookups over the generated tables (PS3.6
 * tables 6-1, 7-1, 8-1, 9-1, A-1; PS3.7 E.1). Lookups are binary searches: no start-up cost,
 * no allocation, safe from any thread.
 */
#include <stdlib.h>
#include <string.h>

#include "dcm/dict_gen.h"
#include "dcm/internal.h"

const dcm_dict_entry *dcm_dict_lookup(uint32_t tag)
{
    size_t lo = 0, hi = dcm__dict_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint32_t t = dcm__dict[mid].tag;
        if (t == tag)
            return &dcm__dict[mid];
        if (t < tag)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = 0; i < dcm__dict_masked_count; i++) {
        const dcm_dict_entry *e = &dcm__dict_masked[i];
        if ((tag & e->mask) == e->tag)
            return e;
    }
    return NULL;
}

enum dcm_vr dcm_dict_vr(uint32_t tag)
{
    uint16_t group = DCM_GROUP(tag), elem = DCM_ELEMENT(tag);
    if (elem == 0x0000)
        return DCM_VR_UL; /* group length, PS3.5 7.2 */
    if (group & 1) {
        /* Private creator elements are LO (PS3.5 7.8.1); other private data is unknown. */
        if (elem >= 0x0010 && elem <= 0x00FF)
            return DCM_VR_LO;
        return DCM_VR_UN;
    }
    const dcm_dict_entry *e = dcm_dict_lookup(tag);
    return e ? (enum dcm_vr)e->vr : DCM_VR_UN;
}

const char *dcm_dict_keyword(uint32_t tag)
{
    if ((DCM_GROUP(tag) & 1) == 0 || DCM_GROUP(tag) <= 0x0007) {
        const dcm_dict_entry *e = dcm_dict_lookup(tag);
        if (e)
            return e->keyword;
    }
    return "";
}

static int kw_cmp(const void *key, const void *elem)
{
    return strcmp(key, ((const dcm__kw_ref *)elem)->keyword);
}

const dcm_dict_entry *dcm_dict_by_keyword(const char *keyword)
{
    const dcm__kw_ref *r =
        bsearch(keyword, dcm__dict_keywords, dcm__dict_keywords_count, sizeof *r, kw_cmp);
    if (!r)
        return NULL;
    return r->table ? &dcm__dict_masked[r->index] : &dcm__dict[r->index];
}

static int uid_cmp(const void *key, const void *elem)
{
    return strcmp(key, ((const dcm_uid_entry *)elem)->uid);
}

const dcm_uid_entry *dcm_uid_lookup(const char *uid)
{
    return bsearch(uid, dcm__uids, dcm__uids_count, sizeof(dcm_uid_entry), uid_cmp);
}

size_t dcm_uid_count(void)
{
    return dcm__uids_count;
}

const dcm_uid_entry *dcm_uid_at(size_t i)
{
    return i < dcm__uids_count ? &dcm__uids[i] : NULL;
}

dcm_ts_info dcm_ts_lookup(const char *uid)
{
    dcm_ts_info ti = {.explicit_vr = true};
    const dcm_uid_entry *e = dcm_uid_lookup(uid);
    ti.known = e && e->type == DCM_UID_TRANSFER_SYNTAX;
    if (strcmp(uid, DCM_TS_IMPLICIT_LE) == 0) {
        ti.explicit_vr = false;
    } else if (strcmp(uid, DCM_TS_EXPLICIT_LE) == 0) {
        /* native */
    } else if (strcmp(uid, DCM_TS_EXPLICIT_BE) == 0) {
        ti.big_endian = true;
    } else if (strcmp(uid, DCM_TS_DEFLATED_LE) == 0) {
        ti.deflated = true;
    } else if (strcmp(uid, "1.2.840.10008.1.2.8.1") == 0) {
        /* Deflated Image Frame Compression: the frames, not the data set, are deflated. */
        ti.encapsulated = true;
    } else if (strncmp(uid, "1.2.840.10008.1.2.4.", 20) == 0 ||
               strncmp(uid, "1.2.840.10008.1.2.5", 19) == 0 ||
               strncmp(uid, "1.2.840.10008.1.2.1.98", 22) == 0 || !ti.known) {
        /* JPEG family, RLE, encapsulated uncompressed, MPEG/HEVC (1.2.840.10008.1.2.4.1xx),
         * and any unknown syntax: Explicit VR LE with encapsulated pixel data (PS3.5 A.4). */
        ti.encapsulated = true;
    } else {
        ti.encapsulated = true;
    }
    return ti;
}
