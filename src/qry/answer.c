/* SPDX-License-Identifier: MIT */
/*
 * Answer Identifiers of C-FIND (and later QIDO-RS) from the rows of a compiled query: the C-FIND
 * response Identifier of PS3.4 C.4.1.1.3.2 for the Query/Retrieve models, K.4.1.1.3.2 for the
 * worklist (worklist.c). Every key of the request is a return key (C.2.2.1, K.2.2.1.2): it is
 * answered with the index's value, or with zero length when the index holds none, so the
 * requester always gets back the attributes it named.
 */
#include "qry/internal.h"

#define TAG_RETRIEVE_AE_TITLE DCM_TAG(0x0008, 0x0054)
#define TAG_CODE_VALUE DCM_TAG(0x0008, 0x0100)

vp_status qry__answer_value(dcm_dataset *ds, uint32_t tag, const char *text)
{
    enum dcm_vr vr = dcm_dict_vr(tag);
    if (vr == DCM_VR_SQ) {
        dcm_element *seq;
        vp_status st = dcm_dataset_set_sequence(ds, tag, &seq);
        if (st || !text || !*text)
            return st;
        /* Code sequences (species, breed): one item with the Code Value. */
        dcm_dataset *item;
        if ((st = dcm_element_add_item(seq, &item)))
            return st;
        return dcm_dataset_set_str(item, TAG_CODE_VALUE, DCM_VR_SH, text);
    }
    if (!dcm_vr_is_string(vr) || !text || !*text)
        return dcm_dataset_set(ds, tag, vr < DCM_VR_COUNT_REAL ? vr : DCM_VR_UN, NULL, 0, NULL);
    return dcm_dataset_set_str(ds, tag, vr, text);
}

vp_status qry_answer(const qry *q, const char *const *cols, size_t ncols, dcm_dataset *out,
                     vp_error *err)
{
    vp_status st;
    if (q->wl) {
        st = qry__worklist_answer(q, cols, ncols, out);
    } else {
        /* The Specific Character Set of the values (the index holds UTF-8) and the level
         * (C.4.1.1.3.2). */
        st = dcm_dataset_set_str(out, DCM_TAG_SPECIFIC_CHARACTER_SET, DCM_VR_CS, "ISO_IR 192");
        if (st == VP_OK)
            st = dcm_dataset_set_str(out, QRY_TAG_QUERY_RETRIEVE_LEVEL, DCM_VR_CS,
                                     qry_level_name(q->level));
        for (size_t i = 0; st == VP_OK && i < q->n_keys; i++) {
            const qry_key *k = &q->keys[i];
            if (k->tag == TAG_RETRIEVE_AE_TITLE)
                continue; /* the SCP's own AE title: the caller's to set */
            const char *text = k->column >= 0 && (size_t)k->column < ncols ? cols[k->column] : NULL;
            st = qry__answer_value(out, k->tag, text);
        }
    }
    if (st)
        return vp_error_set(err, st, "cannot build the answer: %s", vp_status_name(st));
    return VP_OK;
}
