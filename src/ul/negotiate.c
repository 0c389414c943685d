/* SPDX-License-Identifier: MIT */
/*
 * The acceptor's answer to an A-ASSOCIATE-RQ: rejection with the result, source and reason of
 * PS3.8 9.3.4 (Table 9-21), or an A-ASSOCIATE-AC with a result per presentation context
 * (PS3.8 9.3.3.2, Table 9-18), the transfer syntax choice, the Asynchronous Operations Window
 * and SCP/SCU Role Selection answers (PS3.7 D.3.3.3, D.3.3.4) and our implementation
 * identification (PS3.7 D.3.3.2).
 */
#include <string.h>

#include "dcm/dcm.h"
#include "ul/ul.h"

/* Whether two AE titles are equal; leading and trailing spaces are insignificant (PS3.5). */
static bool ae_equal(const char *x, const char *y)
{
    while (*x == ' ')
        x++;
    while (*y == ' ')
        y++;
    size_t nx = strlen(x), ny = strlen(y);
    while (nx > 0 && x[nx - 1] == ' ')
        nx--;
    while (ny > 0 && y[ny - 1] == ' ')
        ny--;
    return nx == ny && memcmp(x, y, nx) == 0;
}

static bool in_list(const char *const *list, const char *s)
{
    for (; *list; list++)
        if (strcmp(*list, s) == 0)
            return true;
    return false;
}

/* Whether we take transfer syntax ts: from the list, or any the registry knows. */
static bool ts_acceptable(const char *const *acceptable, const char *ts)
{
    if (acceptable)
        return in_list(acceptable, ts);
    return dcm_ts_lookup(ts).known;
}

const char *ul_negotiate_transfer_syntax(const ul_pc_rq *pc, const char *const *acceptable)
{
    const char *implicit = NULL;
    for (size_t i = 0; i < pc->ts_count; i++) {
        const char *ts = pc->transfer_syntaxes[i];
        if (!ts || !ts_acceptable(acceptable, ts))
            continue;
        /* Keep what the modality offers (compressed data stored as it comes), and prefer
         * Explicit VR over Implicit VR Little Endian, which loses the VRs. */
        if (strcmp(ts, DCM_TS_IMPLICIT_LE) == 0) {
            implicit = ts;
            continue;
        }
        return ts;
    }
    return implicit;
}

static const ul_syntax_policy *find_syntax(const ul_policy *policy, const char *abstract_syntax)
{
    for (size_t i = 0; i < policy->syntax_count; i++)
        if (strcmp(policy->syntaxes[i].abstract_syntax, abstract_syntax) == 0)
            return &policy->syntaxes[i];
    if (policy->lookup)
        return policy->lookup(policy->lookup_ctx, abstract_syntax);
    return NULL;
}

static void reject(ul_reject *rj, uint8_t result, uint8_t source, uint8_t reason)
{
    rj->result = result;
    rj->source = source;
    rj->reason = reason;
}

vp_status ul_negotiate(const ul_associate *rq, const ul_policy *policy, vp_arena *arena,
                       bool *accepted, ul_associate *ac, ul_reject *rj, vp_error *err)
{
    *accepted = false;
    memset(ac, 0, sizeof *ac);
    memset(rj, 0, sizeof *rj);

    /* PS3.8 9.3.4: the reasons in the order we test them. */
    if (!(rq->protocol_version & UL_PROTOCOL_VERSION)) {
        reject(rj, UL_RJ_PERMANENT, UL_RJ_SOURCE_PROVIDER_ACSE,
               UL_RJ_ACSE_PROTOCOL_VERSION_NOT_SUPPORTED);
        return VP_OK;
    }
    if (policy->limit_reached) {
        /* Too many associations: rejected-transient, service-provider (presentation related
         * function), local-limit-exceeded. */
        reject(rj, UL_RJ_TRANSIENT, UL_RJ_SOURCE_PROVIDER_PRESENTATION,
               UL_RJ_PRESENTATION_LOCAL_LIMIT_EXCEEDED);
        return VP_OK;
    }
    if (!rq->application_context || strcmp(rq->application_context, UL_APPLICATION_CONTEXT)) {
        reject(rj, UL_RJ_PERMANENT, UL_RJ_SOURCE_USER,
               UL_RJ_USER_APPLICATION_CONTEXT_NOT_SUPPORTED);
        return VP_OK;
    }
    if (policy->require_called_ae &&
        (!policy->ae_title || !ae_equal(rq->called_ae, policy->ae_title))) {
        reject(rj, UL_RJ_PERMANENT, UL_RJ_SOURCE_USER, UL_RJ_USER_CALLED_AE_NOT_RECOGNIZED);
        return VP_OK;
    }
    if (policy->calling_aes) {
        bool known = false;
        for (const char *const *c = policy->calling_aes; *c && !known; c++)
            known = ae_equal(rq->calling_ae, *c);
        if (!known) {
            reject(rj, UL_RJ_PERMANENT, UL_RJ_SOURCE_USER, UL_RJ_USER_CALLING_AE_NOT_RECOGNIZED);
            return VP_OK;
        }
    }

    ac->protocol_version = UL_PROTOCOL_VERSION;
    /* Reserved in the AC, sent as received (PS3.8 9.3.3.2). */
    memcpy(ac->called_ae, rq->called_ae, sizeof ac->called_ae);
    memcpy(ac->calling_ae, rq->calling_ae, sizeof ac->calling_ae);
    ac->application_context = UL_APPLICATION_CONTEXT;
    size_t pcs_size, roles_size;
    if (vp_mul_size(rq->rq_pc_count + 1, sizeof *ac->ac_pcs, &pcs_size) ||
        vp_mul_size(rq->user_info.role_count + 1, sizeof *ac->user_info.roles, &roles_size))
        return vp_error_set(err, VP_EINVAL, "too many presentation contexts or roles");
    ac->ac_pcs = vp_arena_alloc(arena, pcs_size);
    ac->user_info.roles = vp_arena_alloc(arena, roles_size);
    if (!ac->ac_pcs || !ac->user_info.roles)
        return vp_error_set(err, VP_ENOMEM, "out of memory negotiating an association");
    for (size_t i = 0; i < rq->rq_pc_count; i++) {
        const ul_pc_rq *pc = &rq->rq_pcs[i];
        ul_pc_ac *out = &ac->ac_pcs[ac->ac_pc_count++];
        memset(out, 0, sizeof *out);
        out->id = pc->id;
        const ul_syntax_policy *sp = find_syntax(policy, pc->abstract_syntax);
        if (!sp) {
            out->result = UL_PC_ABSTRACT_SYNTAX_NOT_SUPPORTED;
            continue;
        }
        out->transfer_syntax = ul_negotiate_transfer_syntax(pc, sp->transfer_syntaxes);
        out->result =
            out->transfer_syntax ? UL_PC_ACCEPTANCE : UL_PC_TRANSFER_SYNTAXES_NOT_SUPPORTED;
    }
    /* SCP/SCU Role Selection (PS3.7 D.3.3.4): the AC's SCU bit accepts the requestor as SCU,
     * which makes us SCP, and its SCP bit accepts the requestor as SCP, making us SCU. */
    for (size_t i = 0; i < rq->user_info.role_count; i++) {
        const ul_role *r = &rq->user_info.roles[i];
        const ul_syntax_policy *sp = find_syntax(policy, r->sop_class_uid);
        if (!sp)
            continue; /* no answer: default roles (requestor SCU, acceptor SCP) */
        ul_role *out = &ac->user_info.roles[ac->user_info.role_count++];
        out->sop_class_uid = r->sop_class_uid;
        out->scu = r->scu && sp->scp_role;
        out->scp = r->scp && sp->scu_role;
    }
    /* Asynchronous Operations Window (PS3.7 D.3.3.3): we perform one operation at a time,
     * answered as 1,1 (the default, non-asynchronous mode). */
    if (rq->user_info.has_async_window) {
        ac->user_info.has_async_window = true;
        ac->user_info.max_ops_invoked = 1;
        ac->user_info.max_ops_performed = 1;
    }
    /* 56H/57H/58H get no answer: not supported means absent (PS3.7 D.3.3.5-7). */
    ac->user_info.has_max_length = true;
    ac->user_info.max_pdu_length = UL_DEFAULT_MAX_PDU_LENGTH; /* the association sets its own */
    ac->user_info.implementation_class_uid = DCM_IMPLEMENTATION_CLASS_UID;
    ac->user_info.implementation_version_name = DCM_IMPLEMENTATION_VERSION_NAME;
    *accepted = true;
    return VP_OK;
}
