/* SPDX-License-Identifier: MIT */
/*
 * Answer Identifiers of C-FIND (and later QIDO-RS) from the rows of a compiled query: the C-FIND
 * response Identifier of PS3.4 C.4.1.1.3.2 for the Query/Retrieve models, K.4.1.1.3.2 for the
 * worklist (worklist.c). Every key of the request is a return key (C.2.2.1, K.2.2.1.2): it is
 * answered with the index's value, or with zero length when the index holds none, so the
 * requester always gets back the attributes it named. A code sequence gets one item with the
 * item keys its request item named (sequence matching, C.2.2.2.6).
 */
#include "qry/internal.h"

#define TAG_RETRIEVE_AE_TITLE DCM_TAG(0x0008, 0x0054)

vp_status qry__answer_value(dcm_dataset *ds, uint32_t tag, const char *text)
{
    enum dcm_vr vr = dcm_dict_vr(tag);
    if (vr == DCM_VR_SQ) {
        dcm_element *seq; /* a sequence the index does not hold: no item */
        return dcm_dataset_set_sequence(ds, tag, &seq);
    }
    if (!dcm_vr_is_string(vr) || !text || !*text)
        return dcm_dataset_set(ds, tag, vr < DCM_VR_COUNT_REAL ? vr : DCM_VR_UN, NULL, 0, NULL);
    return dcm_dataset_set_str(ds, tag, vr, text);
}

static const char *col_text(const char *const *cols, size_t ncols, int col)
{
    return col >= 0 && (size_t)col < ncols && cols[col] ? cols[col] : "";
}

/* C.2.2.2.6: "a sequence of matching Items containing only the requested Attributes". */
vp_status qry__answer_code(dcm_dataset *ds, const qry_code *plan, const char *const *cols,
                           size_t ncols)
{
    dcm_element *seq;
    dcm_dataset *item;
    vp_status st = dcm_dataset_set_sequence(ds, plan->tag, &seq);
    if (st || !*col_text(cols, ncols, plan->col[QRY_CODE_VALUE]))
        return st; /* no code known: an empty sequence */
    if ((st = dcm_element_add_item(seq, &item)))
        return st;
    for (int a = 0; !st && a < QRY_CODE_N; a++) {
        const char *v = col_text(cols, ncols, plan->col[a]);
        /* The whole item is what is stored: Coding Scheme Version is Type 1C (PS3.3 Table
         * 8.8-1), absent from most codes, and an unknown scheme or meaning is left out rather
         * than sent empty. An item key asked for is always answered (C.4.1.1.3.2). */
        if (plan->all ? *v != 0 : ((plan->asked >> a) & 1) != 0)
            st = qry__answer_value(item, qry__code_tag((enum qry_code_attr)a), v);
    }
    for (size_t i = 0; !st && i < plan->n_other; i++)
        st = qry__answer_value(item, plan->other[i], NULL);
    return st;
}

/* How code sequence key tag is answered, NULL for other keys. */
static const qry_code *code_plan(const qry *q, uint32_t tag)
{
    for (size_t i = 0; i < q->n_codes; i++)
        if (q->codes[i].tag == tag)
            return &q->codes[i];
    return NULL;
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
            const qry_code *code = code_plan(q, k->tag);
            const char *text = k->column >= 0 && (size_t)k->column < ncols ? cols[k->column] : NULL;
            st = code ? qry__answer_code(out, code, cols, ncols)
                      : qry__answer_value(out, k->tag, text);
        }
    }
    if (st)
        return vp_error_set(err, st, "cannot build the answer: %s", vp_status_name(st));
    return VP_OK;
}
