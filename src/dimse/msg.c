/* SPDX-License-Identifier: MIT */
/*
 * DIMSE-C command sets (PS3.7 6.3, 9.3 and the command dictionary in Annex E.1): the field
 * rules per command as one table, and one encoder and one decoder over it. Elements are
 * encoded and parsed by the dcm codec in Implicit VR Little Endian (PS3.7 6.3.1); this file
 * only maps them to dimse_msg fields and checks them.
 */
#include <stddef.h>
#include <string.h>

#include "dimse/internal.h"

#define CMD_TAG(e) DCM_TAG(0x0000, (e))
#define US(f) offsetof(dimse_msg, f), 0
#define STR(f) offsetof(dimse_msg, f), sizeof(((dimse_msg *)0)->f)

/* The command elements this module uses, PS3.7 Table E.1-1. */
static const struct field {
    uint32_t bit;     /* DIMSE_F_* */
    uint32_t tag;     /* (0000,eeee) */
    enum dcm_vr vr;   /* VR from PS3.7 E.1 */
    const char *name; /* attribute name for error messages */
    size_t off;       /* offset of the value in dimse_msg (US: uint16_t, UI/AE/LO: char[]) */
    size_t cap;       /* UI/AE/LO: size of the char array, NUL included; 0 otherwise */
} fields[] = {
    {DIMSE_F_AFFECTED_SOP_CLASS_UID, CMD_TAG(0x0002), DCM_VR_UI, "Affected SOP Class UID",
     STR(affected_sop_class_uid)},
    {DIMSE_F_MESSAGE_ID, CMD_TAG(0x0110), DCM_VR_US, "Message ID", US(message_id)},
    {DIMSE_F_MESSAGE_ID_RESPONDED, CMD_TAG(0x0120), DCM_VR_US, "Message ID Being Responded To",
     US(message_id_responded)},
    {DIMSE_F_MOVE_DESTINATION, CMD_TAG(0x0600), DCM_VR_AE, "Move Destination",
     STR(move_destination)},
    {DIMSE_F_PRIORITY, CMD_TAG(0x0700), DCM_VR_US, "Priority", US(priority)},
    {DIMSE_F_STATUS, CMD_TAG(0x0900), DCM_VR_US, "Status", US(status)},
    {DIMSE_F_OFFENDING_ELEMENT, CMD_TAG(0x0901), DCM_VR_AT, "Offending Element",
     offsetof(dimse_msg, offending_element), 0},
    {DIMSE_F_ERROR_COMMENT, CMD_TAG(0x0902), DCM_VR_LO, "Error Comment", STR(error_comment)},
    {DIMSE_F_ERROR_ID, CMD_TAG(0x0903), DCM_VR_US, "Error ID", US(error_id)},
    {DIMSE_F_AFFECTED_SOP_INSTANCE_UID, CMD_TAG(0x1000), DCM_VR_UI, "Affected SOP Instance UID",
     STR(affected_sop_instance_uid)},
    {DIMSE_F_REMAINING, CMD_TAG(0x1020), DCM_VR_US, "Number of Remaining Sub-operations",
     US(remaining)},
    {DIMSE_F_COMPLETED, CMD_TAG(0x1021), DCM_VR_US, "Number of Completed Sub-operations",
     US(completed)},
    {DIMSE_F_FAILED, CMD_TAG(0x1022), DCM_VR_US, "Number of Failed Sub-operations", US(failed)},
    {DIMSE_F_WARNING, CMD_TAG(0x1023), DCM_VR_US, "Number of Warning Sub-operations", US(warning)},
    {DIMSE_F_MOVE_ORIGINATOR_AE, CMD_TAG(0x1030), DCM_VR_AE,
     "Move Originator Application Entity Title", STR(move_originator_ae)},
    {DIMSE_F_MOVE_ORIGINATOR_ID, CMD_TAG(0x1031), DCM_VR_US, "Move Originator Message ID",
     US(move_originator_id)},
};
#define NFIELDS (sizeof fields / sizeof fields[0])

#define TAG_GROUP_LENGTH CMD_TAG(0x0000)
#define TAG_COMMAND_FIELD CMD_TAG(0x0100)
#define TAG_DATA_SET_TYPE CMD_TAG(0x0800)

/* Whether a data set follows the command set. */
enum ds_rule {
    DS_NONE,     /* Command Data Set Type shall be 0101H */
    DS_REQUIRED, /* shall not be 0101H */
    DS_EITHER,   /* C-FIND/GET/MOVE-RSP: pending responses carry an identifier */
};

#define STATUS_FIELDS (DIMSE_F_OFFENDING_ELEMENT | DIMSE_F_ERROR_COMMENT | DIMSE_F_ERROR_ID)

/*
 * Fields per command, to be checked line by line against PS3.7 9.3 (M = mandatory, U or C =
 * optional). Error ID is not in the 9.3 tables but is a status-related field of PS3.7 Annex C
 * that responses may carry. Fields outside both masks are dropped on decode (and noted as a
 * quirk) and refused on encode.
 */
static const struct rule {
    uint16_t command_field; /* enum dimse_command */
    const char *name;       /* "C-STORE-RQ" */
    uint32_t mandatory;     /* DIMSE_F_* that shall be present */
    uint32_t optional;      /* DIMSE_F_* that may be present */
    enum ds_rule ds;        /* data set rule */
} rules[] = {
    /* PS3.7 9.3.1.1 Table 9.3-1 */
    {DIMSE_C_STORE_RQ, "C-STORE-RQ",
     DIMSE_F_AFFECTED_SOP_CLASS_UID | DIMSE_F_MESSAGE_ID | DIMSE_F_PRIORITY |
         DIMSE_F_AFFECTED_SOP_INSTANCE_UID,
     DIMSE_F_MOVE_ORIGINATOR_AE | DIMSE_F_MOVE_ORIGINATOR_ID, DS_REQUIRED},
    /* PS3.7 9.3.1.2 Table 9.3-2 */
    {DIMSE_C_STORE_RSP, "C-STORE-RSP", DIMSE_F_MESSAGE_ID_RESPONDED | DIMSE_F_STATUS,
     DIMSE_F_AFFECTED_SOP_CLASS_UID | DIMSE_F_AFFECTED_SOP_INSTANCE_UID | STATUS_FIELDS, DS_NONE},
    /* PS3.7 9.3.2.1 Table 9.3-3 */
    {DIMSE_C_FIND_RQ, "C-FIND-RQ",
     DIMSE_F_AFFECTED_SOP_CLASS_UID | DIMSE_F_MESSAGE_ID | DIMSE_F_PRIORITY, 0, DS_REQUIRED},
    /* PS3.7 9.3.2.2 Table 9.3-4 */
    {DIMSE_C_FIND_RSP, "C-FIND-RSP", DIMSE_F_MESSAGE_ID_RESPONDED | DIMSE_F_STATUS,
     DIMSE_F_AFFECTED_SOP_CLASS_UID | STATUS_FIELDS, DS_EITHER},
    /* PS3.7 9.3.3.1 Table 9.3-6 */
    {DIMSE_C_GET_RQ, "C-GET-RQ",
     DIMSE_F_AFFECTED_SOP_CLASS_UID | DIMSE_F_MESSAGE_ID | DIMSE_F_PRIORITY, 0, DS_REQUIRED},
    /* PS3.7 9.3.3.2 Table 9.3-7 */
    {DIMSE_C_GET_RSP, "C-GET-RSP", DIMSE_F_MESSAGE_ID_RESPONDED | DIMSE_F_STATUS,
     DIMSE_F_AFFECTED_SOP_CLASS_UID | DIMSE_F_SUBOPERATIONS | STATUS_FIELDS, DS_EITHER},
    /* PS3.7 9.3.4.1 Table 9.3-9 */
    {DIMSE_C_MOVE_RQ, "C-MOVE-RQ",
     DIMSE_F_AFFECTED_SOP_CLASS_UID | DIMSE_F_MESSAGE_ID | DIMSE_F_PRIORITY |
         DIMSE_F_MOVE_DESTINATION,
     0, DS_REQUIRED},
    /* PS3.7 9.3.4.2 Table 9.3-10 */
    {DIMSE_C_MOVE_RSP, "C-MOVE-RSP", DIMSE_F_MESSAGE_ID_RESPONDED | DIMSE_F_STATUS,
     DIMSE_F_AFFECTED_SOP_CLASS_UID | DIMSE_F_SUBOPERATIONS | STATUS_FIELDS, DS_EITHER},
    /* PS3.7 9.3.5.1 Table 9.3-12 */
    {DIMSE_C_ECHO_RQ, "C-ECHO-RQ", DIMSE_F_AFFECTED_SOP_CLASS_UID | DIMSE_F_MESSAGE_ID, 0, DS_NONE},
    /* PS3.7 9.3.5.2 Table 9.3-13 */
    {DIMSE_C_ECHO_RSP, "C-ECHO-RSP", DIMSE_F_MESSAGE_ID_RESPONDED | DIMSE_F_STATUS,
     DIMSE_F_AFFECTED_SOP_CLASS_UID | STATUS_FIELDS, DS_NONE},
    /* PS3.7 9.3.2.3 Table 9.3-5 (and 9.3.3.3, 9.3.4.3): one C-CANCEL-RQ for FIND, GET, MOVE */
    {DIMSE_C_CANCEL_RQ, "C-CANCEL-RQ", DIMSE_F_MESSAGE_ID_RESPONDED, 0, DS_NONE},
};
#define NRULES (sizeof rules / sizeof rules[0])

static const struct rule *rule_of(uint16_t cf)
{
    for (size_t i = 0; i < NRULES; i++)
        if (rules[i].command_field == cf)
            return &rules[i];
    return NULL;
}

const char *dimse_command_name(uint16_t cf)
{
    const struct rule *r = rule_of(cf);
    if (r)
        return r->name;
    /* N- messages, PS3.7 E.1: 0100H..0150H, responses with bit 15 set. */
    static const char *n_rq[] = {"N-EVENT-REPORT-RQ", "N-GET-RQ",    "N-SET-RQ",
                                 "N-ACTION-RQ",       "N-CREATE-RQ", "N-DELETE-RQ"};
    static const char *n_rsp[] = {"N-EVENT-REPORT-RSP", "N-GET-RSP",    "N-SET-RSP",
                                  "N-ACTION-RSP",       "N-CREATE-RSP", "N-DELETE-RSP"};
    uint16_t base = cf & 0x7FFF;
    if (base >= 0x0100 && base <= 0x0150 && (base & 0x000F) == 0) {
        unsigned i = (base - 0x0100) >> 4;
        return (cf & 0x8000) ? n_rsp[i] : n_rq[i];
    }
    return "unknown";
}

bool dimse_command_known(uint16_t cf)
{
    return rule_of(cf) != NULL;
}

bool dimse_command_is_response(uint16_t cf)
{
    return (cf & 0x8000) != 0;
}

/* ---- value checks ---- */

/* A UID as this module accepts it: 1..64 characters of digits and dots, no empty component.
 * Deliberately looser than dcm_uid_valid: it allows a component with a leading zero, which
 * real modalities send in SOP Instance UIDs and dcmtk accepts; the characters still cannot
 * leave a file name or SQL literal. */
static bool uid_ok(const char *s, size_t n)
{
    if (n == 0 || n > DCM_UID_MAX || s[0] == '.' || s[n - 1] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '.') {
            if (s[i + 1] == '.')
                return false;
        } else if (s[i] < '0' || s[i] > '9') {
            return false;
        }
    }
    return true;
}

/* An AE title without its insignificant leading and trailing spaces: 1..16 characters of the
 * default repertoire, no backslash or control character (PS3.5 Table 6.2-1). */
static bool ae_ok(const char *s, size_t n)
{
    if (n == 0 || n > DIMSE_AE_MAX || s[0] == ' ' || s[n - 1] == ' ')
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7E || s[i] == '\\')
            return false;
    return true;
}

/*
 * Error Comment normal form, used by both the encoder and the decoder so that decoding what we
 * encode gives it back: trailing NUL and space padding and leading spaces dropped (both are
 * insignificant in LO), characters LO may not hold (backslash, controls, bytes of another
 * character set: command sets have no Specific Character Set) replaced by '?', cut to 64
 * characters (LO maximum), trailing spaces dropped again.
 */
static void comment_normalize(const char *s, size_t n, char out[DIMSE_ERROR_COMMENT_MAX + 1],
                              bool *cut)
{
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\0'))
        n--;
    size_t i = 0;
    while (i < n && s[i] == ' ')
        i++;
    size_t k = 0;
    *cut = false;
    for (; i < n; i++) {
        if (k == DIMSE_ERROR_COMMENT_MAX) {
            *cut = true;
            break;
        }
        unsigned char c = (unsigned char)s[i];
        out[k++] = (c < 0x20 || c > 0x7E || c == '\\') ? '?' : (char)c;
    }
    while (k && out[k - 1] == ' ')
        k--;
    out[k] = 0;
}

static vp_status copy_uid(char dst[DCM_UID_MAX + 1], const char *uid)
{
    size_t n = uid ? strlen(uid) : 0;
    if (!uid_ok(uid ? uid : "", n))
        return VP_EINVAL;
    memcpy(dst, uid, n + 1);
    return VP_OK;
}

static vp_status copy_ae(char dst[DIMSE_AE_MAX + 1], const char *ae)
{
    size_t n = ae ? strlen(ae) : 0;
    if (!ae_ok(ae ? ae : "", n))
        return VP_EINVAL;
    memcpy(dst, ae, n + 1);
    return VP_OK;
}

/* ---- builders ---- */

void dimse_msg_init(dimse_msg *m, uint16_t command_field)
{
    memset(m, 0, sizeof *m);
    m->command_field = command_field;
}

void dimse_msg_echo_rq(dimse_msg *m, uint16_t message_id)
{
    dimse_msg_init(m, DIMSE_C_ECHO_RQ);
    m->message_id = message_id;
    /* Verification SOP Class, PS3.4 A.4 */
    strcpy(m->affected_sop_class_uid, "1.2.840.10008.1.1");
    m->present = DIMSE_F_MESSAGE_ID | DIMSE_F_AFFECTED_SOP_CLASS_UID;
}

static vp_status query_rq(dimse_msg *m, uint16_t cf, uint16_t message_id, uint16_t priority,
                          const char *sop_class_uid)
{
    dimse_msg_init(m, cf);
    m->message_id = message_id;
    m->priority = priority;
    m->has_dataset = true;
    m->present = DIMSE_F_MESSAGE_ID | DIMSE_F_PRIORITY | DIMSE_F_AFFECTED_SOP_CLASS_UID;
    return copy_uid(m->affected_sop_class_uid, sop_class_uid);
}

vp_status dimse_msg_store_rq(dimse_msg *m, uint16_t message_id, uint16_t priority,
                             const char *sop_class_uid, const char *sop_instance_uid)
{
    vp_status st = query_rq(m, DIMSE_C_STORE_RQ, message_id, priority, sop_class_uid);
    if (st)
        return st;
    m->present |= DIMSE_F_AFFECTED_SOP_INSTANCE_UID;
    return copy_uid(m->affected_sop_instance_uid, sop_instance_uid);
}

vp_status dimse_msg_find_rq(dimse_msg *m, uint16_t message_id, uint16_t priority,
                            const char *sop_class_uid)
{
    return query_rq(m, DIMSE_C_FIND_RQ, message_id, priority, sop_class_uid);
}

vp_status dimse_msg_get_rq(dimse_msg *m, uint16_t message_id, uint16_t priority,
                           const char *sop_class_uid)
{
    return query_rq(m, DIMSE_C_GET_RQ, message_id, priority, sop_class_uid);
}

vp_status dimse_msg_move_rq(dimse_msg *m, uint16_t message_id, uint16_t priority,
                            const char *sop_class_uid, const char *move_destination)
{
    vp_status st = query_rq(m, DIMSE_C_MOVE_RQ, message_id, priority, sop_class_uid);
    if (st)
        return st;
    m->present |= DIMSE_F_MOVE_DESTINATION;
    return copy_ae(m->move_destination, move_destination);
}

void dimse_msg_cancel_rq(dimse_msg *m, uint16_t message_id_responded)
{
    dimse_msg_init(m, DIMSE_C_CANCEL_RQ);
    m->message_id_responded = message_id_responded;
    m->present = DIMSE_F_MESSAGE_ID_RESPONDED;
}

vp_status dimse_msg_response(dimse_msg *rsp, const dimse_msg *rq, uint16_t status)
{
    const struct rule *r = rule_of(rq->command_field);
    if (!r || dimse_command_is_response(rq->command_field) ||
        rq->command_field == DIMSE_C_CANCEL_RQ)
        return VP_EINVAL;
    uint16_t cf = (uint16_t)(rq->command_field | 0x8000);
    const struct rule *rr = rule_of(cf);
    dimse_msg_init(rsp, cf);
    rsp->message_id_responded = rq->message_id;
    rsp->status = status;
    rsp->present = DIMSE_F_MESSAGE_ID_RESPONDED | DIMSE_F_STATUS;
    /* The response may echo the request's UIDs: "U(=)" in PS3.7 9.3 tables. */
    uint32_t echo = (DIMSE_F_AFFECTED_SOP_CLASS_UID | DIMSE_F_AFFECTED_SOP_INSTANCE_UID) &
                    rq->present & rr->optional;
    if (echo & DIMSE_F_AFFECTED_SOP_CLASS_UID)
        memcpy(rsp->affected_sop_class_uid, rq->affected_sop_class_uid,
               sizeof rsp->affected_sop_class_uid);
    if (echo & DIMSE_F_AFFECTED_SOP_INSTANCE_UID)
        memcpy(rsp->affected_sop_instance_uid, rq->affected_sop_instance_uid,
               sizeof rsp->affected_sop_instance_uid);
    rsp->present |= echo;
    return VP_OK;
}

vp_status dimse_msg_set_move_originator(dimse_msg *m, const char *ae, uint16_t message_id)
{
    vp_status st = copy_ae(m->move_originator_ae, ae);
    if (st)
        return st;
    m->move_originator_id = message_id;
    m->present |= DIMSE_F_MOVE_ORIGINATOR_AE | DIMSE_F_MOVE_ORIGINATOR_ID;
    return VP_OK;
}

void dimse_msg_set_error_comment(dimse_msg *m, const char *comment)
{
    bool cut;
    comment_normalize(comment ? comment : "", comment ? strlen(comment) : 0, m->error_comment,
                      &cut);
    m->present |= DIMSE_F_ERROR_COMMENT;
}

void dimse_msg_set_suboperations(dimse_msg *m, uint16_t remaining, uint16_t completed,
                                 uint16_t failed, uint16_t warning)
{
    m->remaining = remaining;
    m->completed = completed;
    m->failed = failed;
    m->warning = warning;
    m->present |= DIMSE_F_SUBOPERATIONS;
}

/* ---- encoding ---- */

/* Value of a US field (fields[i].vr == DCM_VR_US) and of a string field (cap != 0). */
static uint16_t *us_at(dimse_msg *m, const struct field *f)
{
    return (uint16_t *)(void *)((char *)m + f->off);
}
static uint16_t us_get(const dimse_msg *m, const struct field *f)
{
    uint16_t v;
    memcpy(&v, (const char *)m + f->off, sizeof v);
    return v;
}
static char *str_at(dimse_msg *m, const struct field *f)
{
    return (char *)m + f->off;
}
static const char *str_get(const dimse_msg *m, const struct field *f)
{
    return (const char *)m + f->off;
}

/* Checks a message against its rule; the message of the first violation goes to err. */
static vp_status check_rule(const dimse_msg *m, const struct rule *r, vp_status st, vp_error *err)
{
    uint32_t missing = r->mandatory & ~m->present;
    for (size_t i = 0; i < NFIELDS; i++)
        if (missing & fields[i].bit)
            return vp_error_set(err, st, "%s: %s (0000,%04X) missing", r->name, fields[i].name,
                                DCM_ELEMENT(fields[i].tag));
    if (r->ds == DS_NONE && m->has_dataset)
        return vp_error_set(err, st,
                            "%s: Command Data Set Type (0000,0800) announces a data set, "
                            "PS3.7 9.3 allows none",
                            r->name);
    if (r->ds == DS_REQUIRED && !m->has_dataset)
        return vp_error_set(err, st,
                            "%s: Command Data Set Type (0000,0800) is 0101H, PS3.7 9.3 "
                            "requires a data set",
                            r->name);
    return VP_OK;
}

vp_status dimse_msg_encode(const dimse_msg *m, vp_buf *out, vp_error *err)
{
    const struct rule *r = rule_of(m->command_field);
    if (!r)
        return vp_error_set(err, VP_EINVAL, "command field 0x%04X is not a DIMSE-C message",
                            m->command_field);
    uint32_t extra = m->present & ~(r->mandatory | r->optional);
    for (size_t i = 0; i < NFIELDS; i++)
        if (extra & fields[i].bit)
            return vp_error_set(err, VP_EINVAL, "%s has no %s (0000,%04X)", r->name, fields[i].name,
                                DCM_ELEMENT(fields[i].tag));
    vp_status st = check_rule(m, r, VP_EINVAL, err);
    if (st)
        return st;
    for (size_t i = 0; i < NFIELDS; i++) {
        size_t cap = fields[i].cap;
        if (!(m->present & fields[i].bit) || !cap)
            continue;
        const char *s = str_get(m, &fields[i]);
        size_t n = strnlen(s, cap);
        bool ok = n < cap && (fields[i].vr == DCM_VR_UI   ? uid_ok(s, n)
                              : fields[i].vr == DCM_VR_AE ? ae_ok(s, n)
                                                          : true);
        if (!ok)
            return vp_error_set(err, VP_EINVAL, "%s: %s (0000,%04X) is not a valid %s", r->name,
                                fields[i].name, DCM_ELEMENT(fields[i].tag),
                                dcm_vr_name(fields[i].vr));
    }
    if ((m->present & DIMSE_F_OFFENDING_ELEMENT) &&
        (m->offending_count == 0 || m->offending_count > DIMSE_OFFENDING_MAX))
        return vp_error_set(err, VP_EINVAL, "%s: Offending Element holds %u tags", r->name,
                            m->offending_count);

    dcm_dataset *ds = dcm_dataset_new();
    if (!ds)
        return vp_error_set(err, VP_ENOMEM, "out of memory");
    /* A Command Group Length of 0 here: dcm_dataset_write recomputes every group length. */
    st = dcm_dataset_set_u32(ds, TAG_GROUP_LENGTH, 0);
    if (!st)
        st = dcm_dataset_set_u16(ds, TAG_COMMAND_FIELD, m->command_field);
    if (!st)
        st = dcm_dataset_set_u16(ds, TAG_DATA_SET_TYPE,
                                 m->has_dataset ? DIMSE_DATASET_PRESENT : DIMSE_DATASET_ABSENT);
    for (size_t i = 0; i < NFIELDS && !st; i++) {
        const struct field *f = &fields[i];
        if (!(m->present & f->bit))
            continue;
        if (f->vr == DCM_VR_US) {
            st = dcm_dataset_set_u16(ds, f->tag, us_get(m, f));
        } else if (f->vr == DCM_VR_LO) {
            char norm[DIMSE_ERROR_COMMENT_MAX + 1];
            bool cut;
            comment_normalize(str_get(m, f), strnlen(str_get(m, f), f->cap), norm, &cut);
            st = dcm_dataset_set_str(ds, f->tag, DCM_VR_LO, norm);
        } else if (f->cap) {
            st = dcm_dataset_set_str(ds, f->tag, f->vr, str_get(m, f));
        } else {
            uint8_t v[4 * DIMSE_OFFENDING_MAX];
            for (unsigned k = 0; k < m->offending_count; k++) {
                vp_put_le16(v + 4 * k, DCM_GROUP(m->offending_element[k]));
                vp_put_le16(v + 4 * k + 2, DCM_ELEMENT(m->offending_element[k]));
            }
            st = dcm_dataset_set(ds, f->tag, DCM_VR_AT, v, 4u * m->offending_count, NULL);
        }
    }
    if (st) {
        dcm_dataset_free(ds);
        return vp_error_set(err, st, "out of memory");
    }
    dcm_sink sink = dcm_sink_buf(out);
    st = dcm_dataset_write(ds, DCM_TS_IMPLICIT_LE, NULL, &sink, err);
    dcm_dataset_free(ds);
    return st;
}

/* ---- decoding ---- */

/* One element's value into m; VP_EPARSE with a message for the peer when it does not fit. */
static vp_status decode_field(dimse_msg *m, const struct field *f, const dcm_element *el,
                              vp_error *err)
{
    uint32_t len = dcm_element_length(el);
    const uint8_t *v = dcm_element_value(el);
    unsigned e = DCM_ELEMENT(f->tag);
    if (dcm_element_is_sequence(el) || dcm_element_is_encapsulated(el) || (len && !v))
        return vp_error_set(err, VP_EPARSE, "element (0000,%04X) %s: not a %s value", e, f->name,
                            dcm_vr_name(f->vr));
    if (f->vr == DCM_VR_US) {
        if (len != 2)
            return vp_error_set(err, VP_EPARSE, "element (0000,%04X) %s length %u, expected 2", e,
                                f->name, len);
        *us_at(m, f) = vp_le16(v);
        m->present |= f->bit;
        return VP_OK;
    }
    if (f->vr == DCM_VR_AT) {
        if (len == 0 || len % 4)
            return vp_error_set(err, VP_EPARSE,
                                "element (0000,%04X) %s length %u, expected a multiple of 4", e,
                                f->name, len);
        unsigned n = len / 4;
        if (n > DIMSE_OFFENDING_MAX) {
            n = DIMSE_OFFENDING_MAX;
            m->quirks |= DIMSE_QUIRK_LONG_TEXT;
        }
        for (unsigned k = 0; k < n; k++)
            m->offending_element[k] = DCM_TAG(vp_le16(v + 4 * k), vp_le16(v + 4 * k + 2));
        m->offending_count = (uint8_t)n;
        m->present |= f->bit;
        return VP_OK;
    }
    size_t cap = f->cap;
    char *dst = str_at(m, f);
    if (f->vr == DCM_VR_LO) {
        bool cut;
        comment_normalize((const char *)v, len, dst, &cut);
        if (cut)
            m->quirks |= DIMSE_QUIRK_LONG_TEXT;
        m->present |= f->bit;
        return VP_OK;
    }
    /* UI and AE: padding (NUL for UI, space for AE; either seen in the wild) and the
     * insignificant leading spaces of AE are dropped. */
    const char *s = (const char *)v;
    size_t n = len;
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\0'))
        n--;
    if (f->vr == DCM_VR_AE)
        while (n && s[0] == ' ') {
            s++;
            n--;
        }
    bool ok = f->vr == DCM_VR_UI ? uid_ok(s, n) : ae_ok(s, n);
    if (!ok || n >= cap)
        return vp_error_set(err, VP_EPARSE, "element (0000,%04X) %s: \"%.*s\" is not a valid %s", e,
                            f->name, (int)(n > 64 ? 64 : n), s, dcm_vr_name(f->vr));
    memcpy(dst, s, n);
    dst[n] = 0;
    m->present |= f->bit;
    return VP_OK;
}

static vp_status decode_us(const dcm_element *el, uint16_t *v, vp_error *err, const char *name)
{
    uint32_t len = dcm_element_length(el);
    const uint8_t *p = dcm_element_value(el);
    if (len != 2 || !p || dcm_element_is_sequence(el) || dcm_element_is_encapsulated(el))
        return vp_error_set(err, VP_EPARSE, "element (0000,%04X) %s length %u, expected 2",
                            DCM_ELEMENT(dcm_element_tag(el)), name, len);
    *v = vp_le16(p);
    return VP_OK;
}

vp_status dimse_msg_decode(const void *data, size_t len, dimse_msg *out, vp_error *err)
{
    bool known;
    return dimse__msg_decode(data, len, DIMSE_COMMAND_MAX_DEFAULT, out, &known, err);
}

vp_status dimse__msg_decode(const void *data, size_t len, size_t max, dimse_msg *out,
                            bool *dataset_known, vp_error *err)
{
    dimse_msg_init(out, 0);
    *dataset_known = false;
    if (len > max)
        return vp_error_set(err, VP_ELIMIT, "command set of %zu bytes exceeds %zu", len, max);
    if (len == 0)
        return vp_error_set(err, VP_ETRUNC, "empty command set");
    /* Command sets are small and flat: tight limits keep a hostile one cheap. */
    dcm_read_opts o = {.max_depth = 2, .max_length = max, .max_elements = 512};
    dcm_dataset *ds = NULL;
    vp_status st = dcm_dataset_read_mem(data, len, DCM_TS_IMPLICIT_LE, &o, &ds, err);
    if (st)
        return st;

    bool have_cf = false, have_dst = false;
    uint16_t dst_type = 0;
    size_t count = dcm_dataset_count(ds);
    for (size_t i = 0; i < count; i++) {
        const dcm_element *el = dcm_dataset_at(ds, i);
        uint32_t tag = dcm_element_tag(el);
        vp_status fst = VP_OK;
        if (DCM_GROUP(tag) != 0x0000) {
            /* PS3.7 6.3.1: a command set holds command elements (group 0000) only. */
            fst = vp_error_set(err, VP_EPARSE,
                               "element (%04X,%04X) in a command set: only "
                               "group 0000 is allowed",
                               DCM_GROUP(tag), DCM_ELEMENT(tag));
        } else if (tag == TAG_GROUP_LENGTH) {
            /* Checked after the loop. */
        } else if (tag == TAG_COMMAND_FIELD) {
            fst = decode_us(el, &out->command_field, err, "Command Field");
            have_cf = fst == VP_OK;
        } else if (tag == TAG_DATA_SET_TYPE) {
            fst = decode_us(el, &dst_type, err, "Command Data Set Type");
            have_dst = fst == VP_OK;
        } else {
            const struct field *f = NULL;
            for (size_t k = 0; k < NFIELDS && !f; k++)
                if (fields[k].tag == tag)
                    f = &fields[k];
            if (f)
                fst = decode_field(out, f, el, err);
            else
                out->quirks |= DIMSE_QUIRK_UNKNOWN_ELEMENT; /* e.g. retired (0000,0001) */
        }
        if (fst && !st)
            st = fst; /* keep reading: later fields (Message ID) help the caller answer */
    }

    /* Command Group Length (PS3.7 E.1): the first element, counting the bytes after it. We
     * hold the command set whole, so its value can only be informative: tolerated. */
    const dcm_element *gl = dcm_dataset_find(ds, TAG_GROUP_LENGTH);
    if (!gl) {
        out->quirks |= DIMSE_QUIRK_NO_GROUP_LENGTH;
    } else {
        const uint8_t *p = dcm_element_value(gl);
        if (dcm_element_length(gl) != 4 || !p || dcm_element_offset(gl) != 8 ||
            vp_le32(p) != len - 12)
            out->quirks |= DIMSE_QUIRK_BAD_GROUP_LENGTH;
    }
    dcm_dataset_free(ds);

    if (have_dst) {
        /* Known even when the rest failed, so the reassembler can skip the data set. */
        out->has_dataset = dst_type != DIMSE_DATASET_ABSENT;
        *dataset_known = true;
    }
    if (st)
        return st;
    if (!have_cf)
        return vp_error_set(err, VP_EPARSE, "Command Field (0000,0100) missing");
    const struct rule *r = rule_of(out->command_field);
    if (!r)
        return vp_error_set(err, VP_EUNSUPPORTED, "command field 0x%04X (%s) not supported",
                            out->command_field, dimse_command_name(out->command_field));
    if (!have_dst)
        return vp_error_set(err, VP_EPARSE, "%s: Command Data Set Type (0000,0800) missing",
                            r->name);
    uint32_t extra = out->present & ~(r->mandatory | r->optional);
    if (extra) {
        /* Known fields of other commands: harmless, dropped so re-encoding stays valid. */
        out->quirks |= DIMSE_QUIRK_FOREIGN_FIELD;
        out->present &= ~extra;
    }
    return check_rule(out, r, VP_EPARSE, err);
}

bool dimse_msg_equal(const dimse_msg *a, const dimse_msg *b)
{
    if (a->command_field != b->command_field || a->present != b->present ||
        a->has_dataset != b->has_dataset)
        return false;
    for (size_t i = 0; i < NFIELDS; i++) {
        const struct field *f = &fields[i];
        uint32_t bit = f->bit;
        if (!(a->present & bit))
            continue;
        if (f->vr == DCM_VR_US && us_get(a, f) != us_get(b, f))
            return false;
        if (f->cap && strncmp(str_get(a, f), str_get(b, f), f->cap) != 0)
            return false;
        if (bit == DIMSE_F_OFFENDING_ELEMENT &&
            (a->offending_count != b->offending_count ||
             memcmp(a->offending_element, b->offending_element,
                    sizeof a->offending_element[0] * a->offending_count) != 0))
            return false;
    }
    return true;
}
