/* SPDX-License-Identifier: MIT */
/*
 * PDU encoding, PS3.8 9.3 (PDU structure), Annex D and PS3.7 D.3.3 (user information
 * sub-items). Each item is written with a zero length that is patched once its content is
 * written, so every length comes from the content; nothing is counted by hand.
 */
#include <stdio.h>
#include <string.h>

#include "dcm/dcm.h"
#include "ul/ul.h"

/* Encoding state. */
typedef struct enc {
    vp_buf *out;     /* destination */
    vp_error *err;   /* caller's error report */
    vp_status st;    /* sticky: first failure */
    const char *pdu; /* PDU name for messages */
} enc;

static void put(enc *e, const void *p, size_t n)
{
    if (e->st != VP_OK || n == 0)
        return;
    e->st = vp_buf_append(e->out, p, n);
    if (e->st != VP_OK)
        vp_error_set(e->err, e->st, "%s: output buffer: %s", e->pdu, vp_status_name(e->st));
}

static void put8(enc *e, uint8_t v)
{
    put(e, &v, 1);
}

static void put16(enc *e, uint16_t v)
{
    uint8_t b[2];
    vp_put_be16(b, v);
    put(e, b, 2);
}

static void put32(enc *e, uint32_t v)
{
    uint8_t b[4];
    vp_put_be32(b, v);
    put(e, b, 4);
}

static void invalid(enc *e, const char *what, const char *detail)
{
    if (e->st == VP_OK)
        e->st = vp_error_set(e->err, VP_EINVAL, "%s: %s%s", e->pdu, what, detail);
}

/* Starts an item of the given type with a 2-byte length (PS3.8 9.3.2); returns where its
 * value begins, for end_item. */
static size_t begin_item(enc *e, uint8_t type)
{
    put8(e, type);
    put8(e, 0);
    put16(e, 0);
    return e->out->len;
}

static void end_item(enc *e, size_t mark, uint8_t type)
{
    if (e->st != VP_OK)
        return;
    size_t n = e->out->len - mark;
    if (n > UINT16_MAX) {
        char what[64];
        snprintf(what, sizeof what, "item %02XH value of %zu bytes", type, n);
        invalid(e, what, " exceeds 65535");
        return;
    }
    vp_put_be16(e->out->data + mark - 2, (uint16_t)n);
}

static void put_uid(enc *e, uint8_t type, const char *uid)
{
    if (!uid || !dcm_uid_valid(uid, strlen(uid))) {
        invalid(e, "invalid UID ", uid ? uid : "(null)");
        return;
    }
    size_t m = begin_item(e, type);
    put(e, uid, strlen(uid));
    end_item(e, m, type);
}

/* A 16-byte AE title field, space padded (PS3.8 9.3.2). */
static void put_ae(enc *e, const char *ae, bool check)
{
    size_t n = strnlen(ae, UL_AE_TITLE_MAX + 1);
    if (check && !ul_ae_title_valid(ae, n)) {
        invalid(e, "invalid AE title ", n > UL_AE_TITLE_MAX ? "(too long)" : ae);
        return;
    }
    uint8_t field[UL_AE_TITLE_MAX];
    memset(field, ' ', sizeof field);
    memcpy(field, ae, n > UL_AE_TITLE_MAX ? UL_AE_TITLE_MAX : n);
    put(e, field, sizeof field);
}

static void put_field16(enc *e, const uint8_t *p, size_t n)
{
    if (n > UINT16_MAX) {
        invalid(e, "user identity field", " longer than 65535 bytes");
        return;
    }
    put16(e, (uint16_t)n);
    put(e, p, n);
}

/* User Information item (50H), sub-items in increasing type order (PS3.7 D.3.3). */
static void put_user_info(enc *e, const ul_user_info *ui, bool rq)
{
    size_t m = begin_item(e, UL_ITEM_USER_INFORMATION);
    if (ui->has_max_length) {
        size_t s = begin_item(e, UL_ITEM_MAX_LENGTH);
        put32(e, ui->max_pdu_length);
        end_item(e, s, UL_ITEM_MAX_LENGTH);
    }
    if (ui->implementation_class_uid)
        put_uid(e, UL_ITEM_IMPLEMENTATION_CLASS_UID, ui->implementation_class_uid);
    if (ui->has_async_window) {
        size_t s = begin_item(e, UL_ITEM_ASYNC_OPERATIONS_WINDOW);
        put16(e, ui->max_ops_invoked);
        put16(e, ui->max_ops_performed);
        end_item(e, s, UL_ITEM_ASYNC_OPERATIONS_WINDOW);
    }
    for (size_t i = 0; i < ui->role_count; i++) {
        const ul_role *r = &ui->roles[i];
        if (!r->sop_class_uid || !dcm_uid_valid(r->sop_class_uid, strlen(r->sop_class_uid))) {
            invalid(e, "role selection: invalid UID ", r->sop_class_uid ? r->sop_class_uid : "");
            break;
        }
        size_t s = begin_item(e, UL_ITEM_ROLE_SELECTION);
        put16(e, (uint16_t)strlen(r->sop_class_uid));
        put(e, r->sop_class_uid, strlen(r->sop_class_uid));
        put8(e, r->scu ? 1 : 0);
        put8(e, r->scp ? 1 : 0);
        end_item(e, s, UL_ITEM_ROLE_SELECTION);
    }
    if (ui->implementation_version_name) {
        const char *v = ui->implementation_version_name;
        size_t n = strlen(v);
        bool ok = n >= 1 && n <= 16;
        for (size_t i = 0; ok && i < n; i++)
            ok = v[i] >= 0x20 && v[i] < 0x7F && v[i] != '\\';
        if (!ok)
            invalid(e, "invalid implementation version name ", v);
        size_t s = begin_item(e, UL_ITEM_IMPLEMENTATION_VERSION_NAME);
        put(e, v, n);
        end_item(e, s, UL_ITEM_IMPLEMENTATION_VERSION_NAME);
    }
    for (size_t i = 0; i < ui->ext_neg_count; i++) {
        const ul_ext_neg *x = &ui->ext_neg[i];
        if (!x->sop_class_uid || !dcm_uid_valid(x->sop_class_uid, strlen(x->sop_class_uid))) {
            invalid(e, "extended negotiation: invalid UID ",
                    x->sop_class_uid ? x->sop_class_uid : "");
            break;
        }
        size_t s = begin_item(e, UL_ITEM_SOP_CLASS_EXTENDED);
        put16(e, (uint16_t)strlen(x->sop_class_uid));
        put(e, x->sop_class_uid, strlen(x->sop_class_uid));
        put(e, x->info, x->info_len);
        end_item(e, s, UL_ITEM_SOP_CLASS_EXTENDED);
    }
    for (size_t i = 0; i < ui->common_ext_neg_count; i++) {
        size_t s = begin_item(e, UL_ITEM_SOP_CLASS_COMMON_EXTENDED);
        put(e, ui->common_ext_neg[i].data, ui->common_ext_neg[i].len);
        end_item(e, s, UL_ITEM_SOP_CLASS_COMMON_EXTENDED);
    }
    if (ui->has_user_identity) {
        const ul_user_identity *u = &ui->user_identity;
        uint8_t type = rq ? UL_ITEM_USER_IDENTITY_RQ : UL_ITEM_USER_IDENTITY_AC;
        if (rq && u->type == 0)
            invalid(e, "user identity type 0", "");
        size_t s = begin_item(e, type);
        if (rq) {
            put8(e, u->type);
            put8(e, u->positive_response_requested ? 1 : 0);
            put_field16(e, u->primary, u->primary_len);
            put_field16(e, u->secondary, u->secondary_len);
        } else {
            put_field16(e, u->server_response, u->server_response_len);
        }
        end_item(e, s, type);
    }
    end_item(e, m, UL_ITEM_USER_INFORMATION);
}

/* A-ASSOCIATE-RQ (PS3.8 Table 9-11) or -AC (Table 9-17). */
static void put_associate(enc *e, const ul_associate *a, bool rq)
{
    put16(e, a->protocol_version);
    put16(e, 0);
    /* AC: the AE fields are reserved, sent back as received and not checked (9.3.3.2). */
    put_ae(e, a->called_ae, rq);
    put_ae(e, a->calling_ae, rq);
    uint8_t reserved[32] = {0};
    put(e, reserved, sizeof reserved);
    put_uid(e, UL_ITEM_APPLICATION_CONTEXT, a->application_context);
    size_t count = rq ? a->rq_pc_count : a->ac_pc_count;
    if (count == 0)
        invalid(e, "no presentation context", "");
    for (size_t i = 0; i < count && e->st == VP_OK; i++) {
        uint8_t id = rq ? a->rq_pcs[i].id : a->ac_pcs[i].id;
        if (id % 2 == 0) {
            invalid(e, "presentation context ID is not odd", "");
            break;
        }
        uint8_t type = rq ? UL_ITEM_PRESENTATION_CONTEXT_RQ : UL_ITEM_PRESENTATION_CONTEXT_AC;
        size_t m = begin_item(e, type);
        put8(e, id);
        put8(e, 0);
        if (rq) {
            const ul_pc_rq *pc = &a->rq_pcs[i];
            put8(e, 0);
            put8(e, 0);
            put_uid(e, UL_ITEM_ABSTRACT_SYNTAX, pc->abstract_syntax);
            if (pc->ts_count == 0)
                invalid(e, "presentation context without transfer syntax", "");
            for (size_t k = 0; k < pc->ts_count; k++)
                put_uid(e, UL_ITEM_TRANSFER_SYNTAX, pc->transfer_syntaxes[k]);
        } else {
            const ul_pc_ac *pc = &a->ac_pcs[i];
            if (pc->result > UL_PC_TRANSFER_SYNTAXES_NOT_SUPPORTED)
                invalid(e, "invalid presentation context result", "");
            put8(e, pc->result);
            put8(e, 0);
            if (pc->result == UL_PC_ACCEPTANCE) {
                put_uid(e, UL_ITEM_TRANSFER_SYNTAX, pc->transfer_syntax);
            } else {
                /* Present but not significant when not accepted (9.3.3.2): sent empty. */
                size_t s = begin_item(e, UL_ITEM_TRANSFER_SYNTAX);
                end_item(e, s, UL_ITEM_TRANSFER_SYNTAX);
            }
        }
        end_item(e, m, type);
    }
    put_user_info(e, &a->user_info, rq);
}

vp_status ul_pdu_encode(const ul_pdu *pdu, vp_buf *out, vp_error *err)
{
    enc e = {out, err, VP_OK, ul_pdu_type_name(pdu->type)};
    size_t start = out->len;
    put8(&e, pdu->type);
    put8(&e, 0);
    put32(&e, 0);
    size_t body = out->len;
    switch (pdu->type) {
    case UL_PDU_ASSOCIATE_RQ:
    case UL_PDU_ASSOCIATE_AC:
        put_associate(&e, &pdu->assoc, pdu->type == UL_PDU_ASSOCIATE_RQ);
        break;
    case UL_PDU_ASSOCIATE_RJ:
        if ((pdu->reject.result != UL_RJ_PERMANENT && pdu->reject.result != UL_RJ_TRANSIENT) ||
            pdu->reject.source < UL_RJ_SOURCE_USER ||
            pdu->reject.source > UL_RJ_SOURCE_PROVIDER_PRESENTATION)
            invalid(&e, "invalid result or source", "");
        put8(&e, 0);
        put8(&e, pdu->reject.result);
        put8(&e, pdu->reject.source);
        put8(&e, pdu->reject.reason);
        break;
    case UL_PDU_P_DATA_TF:
        if (pdu->pdv_count == 0)
            invalid(&e, "no PDV", "");
        for (size_t i = 0; i < pdu->pdv_count && e.st == VP_OK; i++) {
            const ul_pdv *v = &pdu->pdvs[i];
            if (v->pc_id % 2 == 0 || v->control > (UL_PDV_COMMAND | UL_PDV_LAST) ||
                v->len > UINT32_MAX - 2) {
                invalid(&e, "invalid PDV", "");
                break;
            }
            put32(&e, (uint32_t)(v->len + 2));
            put8(&e, v->pc_id);
            put8(&e, v->control);
            put(&e, v->data, v->len);
        }
        break;
    case UL_PDU_RELEASE_RQ:
    case UL_PDU_RELEASE_RP: put32(&e, 0); break;
    case UL_PDU_ABORT:
        if (pdu->abort.source > UL_ABORT_SOURCE_PROVIDER)
            invalid(&e, "invalid source", "");
        put16(&e, 0);
        put8(&e, pdu->abort.source);
        put8(&e, pdu->abort.reason);
        break;
    default: invalid(&e, "unknown PDU type", ""); break;
    }
    if (e.st == VP_OK) {
        size_t n = out->len - body;
        if (n > UINT32_MAX)
            invalid(&e, "PDU longer than 4 GiB", "");
        else
            vp_put_be32(out->data + body - 4, (uint32_t)n);
    }
    if (e.st != VP_OK) {
        /* Nothing is appended on failure. */
        out->len = start;
        if (out->data)
            out->data[start] = 0;
    }
    return e.st;
}
