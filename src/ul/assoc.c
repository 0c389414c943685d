/* SPDX-License-Identifier: MIT */
/*
 * One DICOM Upper Layer association, PS3.8 9.2: the actions of Tables 9-6 to 9-9 carried out
 * on the transitions of Table 9-10 (fsm.c). The caller drives it with transport bytes, service
 * requests, transport events and ARTIM expiry; it answers with bytes to send and events
 * (indications, confirmations, timer and transport instructions). No I/O, no logging.
 */
#include <stdio.h>
#include <string.h>

#include "dcm/dcm.h"
#include "ul/ul.h"

#define EVENT_MAX 8                    /* one call produces at most three events */
#define UNLIMITED_PDV_CHUNK (4u << 20) /* fragment size when the peer sets no limit */

struct ul_assoc {
    bool requestor;               /* association-requestor (else acceptor) */
    enum ul_state state;          /* current state, Table 9-1 */
    ul_limits limits;             /* our caps; limits.max_pdu_length is our 51H */
    uint32_t peer_max_pdu_length; /* peer's 51H; 0 = no limit */
    uint8_t proposed[32];         /* bit per presentation context ID in the RQ */
    uint8_t accepted[32];         /* bit per presentation context ID accepted */
    vp_buf out;                   /* bytes to send, in order */
    vp_buf pending_rq;            /* requestor: the encoded A-ASSOCIATE-RQ, kept after AE-2 to
                                     check the AC's answers against the proposals */
    vp_buf rx;                    /* the PDU being received, header included */
    bool rx_complete;             /* rx holds a processed PDU: cleared before the next one */
    bool rx_discard;              /* framing lost (bad header): drop every further byte */
    bool broken;                  /* an allocation failed mid-action: only free is valid */
    vp_arena *arena;              /* parse products of the last PDU */
    ul_pdu pdu;                   /* the last PDU parsed (events point here) */
    ul_event events[EVENT_MAX];   /* events of the last call */
    size_t ev_count;              /* events in use */
    size_t ev_next;               /* next event to hand out */
    char detail[VP_ERROR_MAX];    /* why the last local abort happened */
};

/* What an event brings along, for the action that handles it. */
typedef struct input {
    const ul_pdu *pdu;      /* Evt3/4/6/10/12/13/16: the received PDU */
    uint8_t abort_reason;   /* Evt19: the A-ABORT reason to send */
    const ul_associate *ac; /* Evt7: the A-ASSOCIATE-AC to send */
    const ul_reject *rj;    /* Evt8: the A-ASSOCIATE-RJ to send */
    uint8_t pc_id;          /* Evt9: presentation context */
    bool command;           /* Evt9: command (else data set) */
    const uint8_t *data;    /* Evt9: bytes of the message */
    size_t len;             /* Evt9: bytes at data */
    bool last;              /* Evt9: data ends the message */
    const uint8_t *data2;   /* Evt9, whole message: the data set after the command set */
    size_t len2;            /* Evt9: bytes at data2 */
} input;

static bool bit_get(const uint8_t *bits, uint8_t id)
{
    return (bits[id / 8] >> (id % 8)) & 1u;
}

static void bit_set(uint8_t *bits, uint8_t id)
{
    bits[id / 8] |= (uint8_t)(1u << (id % 8));
}

vp_status ul_assoc_new(const ul_assoc_opts *opts, ul_assoc **out, vp_error *err)
{
    *out = NULL;
    if (opts->max_pdu_length && opts->max_pdu_length < UL_MIN_MAX_PDU_LENGTH)
        return vp_error_set(err, VP_EINVAL, "max PDU length %u is below %u", opts->max_pdu_length,
                            UL_MIN_MAX_PDU_LENGTH);
    ul_assoc *a = vp_calloc(1, sizeof *a);
    if (!a)
        return vp_error_set(err, VP_ENOMEM, "out of memory for an association");
    a->requestor = opts->requestor;
    a->state = UL_STA1;
    a->limits.max_pdu_length =
        opts->max_pdu_length ? opts->max_pdu_length : UL_DEFAULT_MAX_PDU_LENGTH;
    a->limits.max_assoc_pdu_length =
        opts->max_assoc_pdu_length ? opts->max_assoc_pdu_length : UL_DEFAULT_MAX_ASSOC_PDU_LENGTH;
    vp_buf_init(&a->out, 0);
    vp_buf_init(&a->pending_rq, 0);
    vp_buf_init(&a->rx, 0);
    *out = a;
    return VP_OK;
}

void ul_assoc_free(ul_assoc *a)
{
    if (!a)
        return;
    vp_buf_fini(&a->out);
    vp_buf_fini(&a->pending_rq);
    vp_buf_fini(&a->rx);
    vp_arena_free(a->arena);
    vp_free(a);
}

enum ul_state ul_assoc_state(const ul_assoc *a)
{
    return a->state;
}

uint32_t ul_assoc_peer_max_pdu_length(const ul_assoc *a)
{
    return a->state == UL_STA6 ? a->peer_max_pdu_length : 0;
}

bool ul_assoc_pc_accepted(const ul_assoc *a, uint8_t id)
{
    return bit_get(a->accepted, id);
}

vp_buf *ul_assoc_output(ul_assoc *a)
{
    return &a->out;
}

void ul_assoc_output_consume(ul_assoc *a, size_t n)
{
    if (n >= a->out.len) {
        vp_buf_reset(&a->out);
        return;
    }
    memmove(a->out.data, a->out.data + n, a->out.len - n + 1); /* with the NUL */
    a->out.len -= n;
}

bool ul_assoc_event_next(ul_assoc *a, ul_event *ev)
{
    if (a->ev_next >= a->ev_count)
        return false;
    *ev = a->events[a->ev_next++];
    return true;
}

/* Starts a new call: the previous call's events are gone. */
static vp_status begin_call(ul_assoc *a, vp_error *err)
{
    a->ev_count = a->ev_next = 0;
    if (a->broken)
        return vp_error_set(err, VP_EINVAL, "association unusable after an earlier failure");
    return VP_OK;
}

/* Queues an event; NULL only if the queue were full, which its size rules out. */
static ul_event *emit(ul_assoc *a, uint8_t type, const ul_pdu *pdu)
{
    if (a->ev_count >= EVENT_MAX)
        return NULL;
    ul_event *ev = &a->events[a->ev_count++];
    memset(ev, 0, sizeof *ev);
    ev->type = type;
    ev->pdu = pdu;
    ev->detail = "";
    return ev;
}

static void emit_abort(ul_assoc *a, bool provider, uint8_t source, uint8_t reason,
                       const char *detail)
{
    ul_event *ev = emit(a, UL_EV_ABORT, NULL);
    if (!ev)
        return;
    ev->provider = provider;
    ev->source = source;
    ev->reason = reason;
    ev->detail = detail;
}

/* Encodes a PDU into the output. */
static vp_status send_pdu(ul_assoc *a, const ul_pdu *pdu, vp_error *err)
{
    return ul_pdu_encode(pdu, &a->out, err);
}

static vp_status send_abort(ul_assoc *a, uint8_t source, uint8_t reason, vp_error *err)
{
    ul_pdu pdu = {.type = UL_PDU_ABORT, .abort = {source, reason}};
    return send_pdu(a, &pdu, err);
}

static vp_status send_simple(ul_assoc *a, uint8_t type, vp_error *err)
{
    ul_pdu pdu = {.type = type};
    return send_pdu(a, &pdu, err);
}

/* DT-1 / AR-7: one PDV per P-DATA-TF PDU, each fitting the peer's maximum length, which
 * counts the PDU's variable field: 4 (item length) + 2 (context, control) + fragment. */
static vp_status send_pdata(ul_assoc *a, const input *in, vp_error *err)
{
    size_t chunk = UNLIMITED_PDV_CHUNK;
    if (a->peer_max_pdu_length)
        chunk = a->peer_max_pdu_length > 7 ? (a->peer_max_pdu_length - 6) & ~(size_t)1 : 1;
    if (in->data2) {
        /* A whole message: its command set and data set in one PDU when both PDV items fit
         * the peer's maximum length together (PS3.8 9.3.5: a P-DATA-TF holds one or more
         * PDV items), else each cut as usual. */
        if (in->len + in->len2 + 6 <= chunk && in->len > 0 && in->len2 > 0) {
            ul_pdv pdvs[2] = {{in->pc_id, UL_PDV_COMMAND | UL_PDV_LAST, in->data, in->len},
                              {in->pc_id, UL_PDV_LAST, in->data2, in->len2}};
            ul_pdu pdu = {.type = UL_PDU_P_DATA_TF, .pdv_count = 2, .pdvs = pdvs};
            return send_pdu(a, &pdu, err);
        }
        input c = *in, d = *in;
        c.data2 = d.data2 = NULL;
        c.command = true;
        c.last = d.last = true;
        d.command = false;
        d.data = in->data2;
        d.len = in->len2;
        vp_status st = send_pdata(a, &c, err);
        return st == VP_OK ? send_pdata(a, &d, err) : st;
    }
    /* (6 or less is refused by ul_assoc_send_pdata.) */
    /* Even fragments: a peer announcing an odd maximum would otherwise get odd fragments of
     * an even-length data set, which some toolkits refuse ("odd fragment length"). */
    const uint8_t *p = in->data;
    size_t left = in->len;
    if (left == 0 && !in->last)
        return VP_OK;
    do {
        size_t n = left < chunk ? left : chunk;
        ul_pdv pdv = {in->pc_id, in->command ? UL_PDV_COMMAND : 0, p, n};
        if (in->last && n == left)
            pdv.control |= UL_PDV_LAST;
        ul_pdu pdu = {.type = UL_PDU_P_DATA_TF, .pdv_count = 1, .pdvs = &pdv};
        vp_status st = send_pdu(a, &pdu, err);
        if (st != VP_OK)
            return st;
        p += n;
        left -= n;
    } while (left > 0);
    return VP_OK;
}

/* Fills the user information we always send: our 51H and the implementation identification
 * (PS3.7 D.3.3.1, D.3.3.2). */
static void our_user_info(const ul_assoc *a, ul_user_info *ui)
{
    ui->has_max_length = true;
    ui->max_pdu_length = a->limits.max_pdu_length;
    if (!ui->implementation_class_uid)
        ui->implementation_class_uid = DCM_IMPLEMENTATION_CLASS_UID;
    if (!ui->implementation_version_name)
        ui->implementation_version_name = DCM_IMPLEMENTATION_VERSION_NAME;
}

/* The A-ABORT reason for an abort the service-provider raises on event evt. */
static uint8_t provider_reason(enum ul_fsm_event evt, const input *in)
{
    return evt == UL_EVT19 ? in->abort_reason : UL_ABORT_REASON_UNEXPECTED_PDU;
}

/* Whether ts is one of the transfer syntaxes the requestor proposed for context id (PS3.8
 * 9.3.3.2: the acceptor picks one of them). An AC naming another is not taken as an
 * acceptance: nothing is sent on that context. The proposals are read back from the RQ as
 * sent (rq NULL when that failed for lack of memory: the peer's word is kept). */
static bool ts_was_proposed(const ul_pdu *rq, uint8_t id, const char *ts)
{
    if (!ts)
        return false;
    if (!rq)
        return true;
    for (size_t i = 0; i < rq->assoc.rq_pc_count; i++)
        if (rq->assoc.rq_pcs[i].id == id)
            for (size_t k = 0; k < rq->assoc.rq_pcs[i].ts_count; k++)
                if (strcmp(rq->assoc.rq_pcs[i].transfer_syntaxes[k], ts) == 0)
                    return true;
    return false;
}

/* Records the contexts an A-ASSOCIATE-AC accepted, reading the RQ as sent back once. */
static void note_accepted(ul_assoc *a, const ul_associate *ac)
{
    vp_arena *arena = vp_arena_new(4096);
    ul_pdu rq;
    const ul_pdu *sent = NULL;
    if (arena &&
        ul_pdu_parse(a->pending_rq.data, a->pending_rq.len, arena, &rq, NULL, NULL) == VP_OK)
        sent = &rq;
    for (size_t i = 0; i < ac->ac_pc_count; i++)
        if (ac->ac_pcs[i].result == UL_PC_ACCEPTANCE && bit_get(a->proposed, ac->ac_pcs[i].id) &&
            ts_was_proposed(sent, ac->ac_pcs[i].id, ac->ac_pcs[i].transfer_syntax))
            bit_set(a->accepted, ac->ac_pcs[i].id);
    vp_arena_free(arena);
}

/* Carries out the transition of Table 9-10 for evt in the current state. */
static vp_status fire(ul_assoc *a, enum ul_fsm_event evt, const input *in, vp_error *err)
{
    ul_transition t;
    if (!ul_fsm_next(a->state, evt, &t))
        return vp_error_set(err, VP_EINVAL, "%s is not valid in %s", ul_event_name(evt),
                            ul_state_name(a->state));
    enum ul_state next = t.next;
    vp_status st = VP_OK;
    switch (t.action) {
    case UL_AE_1: /* issue TRANSPORT CONNECT request */
        emit(a, UL_EV_TRANSPORT_CONNECT, NULL);
        break;
    case UL_AE_2: /* send A-ASSOCIATE-RQ PDU */
        st = vp_buf_append(&a->out, a->pending_rq.data, a->pending_rq.len);
        break;
    case UL_AE_3: { /* A-ASSOCIATE confirmation (accept) */
        const ul_associate *ac = &in->pdu->assoc;
        a->peer_max_pdu_length = ac->user_info.max_pdu_length;
        note_accepted(a, ac);
        emit(a, UL_EV_ASSOCIATE_ACCEPTED, in->pdu);
        break;
    }
    case UL_AE_4: /* A-ASSOCIATE confirmation (reject), close transport */
        emit(a, UL_EV_ASSOCIATE_REJECTED, in->pdu);
        emit(a, UL_EV_TRANSPORT_CLOSE, NULL);
        break;
    case UL_AE_5: /* transport connection response, start ARTIM */
        emit(a, UL_EV_ARTIM_START, NULL);
        break;
    case UL_AE_6: /* stop ARTIM; indication if acceptable to the provider, else RJ + ARTIM */
        emit(a, UL_EV_ARTIM_STOP, NULL);
        a->peer_max_pdu_length = in->pdu->assoc.user_info.max_pdu_length;
        memset(a->proposed, 0, sizeof a->proposed);
        for (size_t i = 0; i < in->pdu->assoc.rq_pc_count; i++)
            bit_set(a->proposed, in->pdu->assoc.rq_pcs[i].id);
        if (in->pdu->assoc.protocol_version & UL_PROTOCOL_VERSION) {
            emit(a, UL_EV_ASSOCIATE_INDICATION, in->pdu);
        } else {
            /* Protocol version not supported: rejected-permanent, source 2 (ACSE related
             * function), reason 2 (PS3.8 9.3.4). */
            ul_pdu rj = {.type = UL_PDU_ASSOCIATE_RJ,
                         .reject = {UL_RJ_PERMANENT, UL_RJ_SOURCE_PROVIDER_ACSE,
                                    UL_RJ_ACSE_PROTOCOL_VERSION_NOT_SUPPORTED}};
            st = send_pdu(a, &rj, err);
            emit(a, UL_EV_ARTIM_START, NULL);
            next = t.next_alt;
        }
        break;
    case UL_AE_7: { /* send A-ASSOCIATE-AC PDU */
        ul_pdu pdu = {.type = UL_PDU_ASSOCIATE_AC, .assoc = *in->ac};
        our_user_info(a, &pdu.assoc.user_info);
        st = send_pdu(a, &pdu, err);
        if (st != VP_OK)
            return st; /* nothing sent, state unchanged: the caller may answer again */
        for (size_t i = 0; i < in->ac->ac_pc_count; i++)
            if (in->ac->ac_pcs[i].result == UL_PC_ACCEPTANCE &&
                bit_get(a->proposed, in->ac->ac_pcs[i].id))
                bit_set(a->accepted, in->ac->ac_pcs[i].id);
        break;
    }
    case UL_AE_8: { /* send A-ASSOCIATE-RJ PDU, start ARTIM */
        ul_pdu pdu = {.type = UL_PDU_ASSOCIATE_RJ, .reject = *in->rj};
        st = send_pdu(a, &pdu, err);
        if (st != VP_OK)
            return st;
        emit(a, UL_EV_ARTIM_START, NULL);
        break;
    }
    case UL_DT_1: /* send P-DATA-TF PDU */
    case UL_AR_7: st = send_pdata(a, in, err); break;
    case UL_DT_2: /* P-DATA indication */
    case UL_AR_6: emit(a, UL_EV_P_DATA, in->pdu); break;
    case UL_AR_1: /* send A-RELEASE-RQ PDU */ st = send_simple(a, UL_PDU_RELEASE_RQ, err); break;
    case UL_AR_2: /* A-RELEASE indication */ emit(a, UL_EV_RELEASE_INDICATION, in->pdu); break;
    case UL_AR_3: /* A-RELEASE confirmation, close transport */
        emit(a, UL_EV_RELEASE_CONFIRMATION, in->pdu);
        emit(a, UL_EV_TRANSPORT_CLOSE, NULL);
        break;
    case UL_AR_4: /* send A-RELEASE-RP PDU, start ARTIM */
        st = send_simple(a, UL_PDU_RELEASE_RP, err);
        emit(a, UL_EV_ARTIM_START, NULL);
        break;
    case UL_AR_5: /* stop ARTIM */ emit(a, UL_EV_ARTIM_STOP, NULL); break;
    case UL_AR_8: /* A-RELEASE indication (release collision) */
        emit(a, UL_EV_RELEASE_INDICATION, in->pdu);
        next = a->requestor ? t.next : t.next_alt;
        break;
    case UL_AR_9: /* send A-RELEASE-RP PDU */ st = send_simple(a, UL_PDU_RELEASE_RP, err); break;
    case UL_AR_10: /* A-RELEASE confirmation */ emit(a, UL_EV_RELEASE_CONFIRMATION, in->pdu); break;
    case UL_AA_1: /* send A-ABORT PDU, start (or restart) ARTIM */
        /* On the user's request the source is the service-user. In Sta2 the provider raises
         * it on an unexpected or invalid PDU before any user is involved, so we say so
         * (source 2 with the reason), as AA-8 does in the other states. */
        if (evt == UL_EVT15)
            st = send_abort(a, UL_ABORT_SOURCE_USER, UL_ABORT_REASON_NOT_SPECIFIED, err);
        else
            st = send_abort(a, UL_ABORT_SOURCE_PROVIDER, provider_reason(evt, in), err);
        emit(a, UL_EV_ARTIM_START, NULL);
        break;
    case UL_AA_2: /* stop ARTIM if running, close transport */
        emit(a, UL_EV_ARTIM_STOP, NULL);
        emit(a, UL_EV_TRANSPORT_CLOSE, NULL);
        break;
    case UL_AA_3: /* A-ABORT (user) or A-P-ABORT (provider) indication, close transport */
        emit_abort(a, in->pdu->abort.source == UL_ABORT_SOURCE_PROVIDER, in->pdu->abort.source,
                   in->pdu->abort.reason, "");
        emit(a, UL_EV_TRANSPORT_CLOSE, NULL);
        break;
    case UL_AA_4: /* A-P-ABORT indication */
        emit_abort(a, true, UL_ABORT_SOURCE_PROVIDER, UL_ABORT_REASON_NOT_SPECIFIED,
                   "transport connection closed");
        break;
    case UL_AA_5: /* stop ARTIM */ emit(a, UL_EV_ARTIM_STOP, NULL); break;
    case UL_AA_6: /* ignore PDU */ break;
    case UL_AA_7: /* send A-ABORT PDU */
        st = send_abort(a, UL_ABORT_SOURCE_PROVIDER, provider_reason(evt, in), err);
        break;
    case UL_AA_8: { /* send A-ABORT PDU (provider), A-P-ABORT indication, start ARTIM */
        uint8_t reason = provider_reason(evt, in);
        if (evt != UL_EVT19)
            snprintf(a->detail, sizeof a->detail, "%s unexpected in %s",
                     in->pdu ? ul_pdu_type_name(in->pdu->type) : ul_event_name(evt),
                     ul_state_name(a->state));
        st = send_abort(a, UL_ABORT_SOURCE_PROVIDER, reason, err);
        emit_abort(a, true, UL_ABORT_SOURCE_PROVIDER, reason, a->detail);
        emit(a, UL_EV_ARTIM_START, NULL);
        break;
    }
    default: break;
    }
    if (st != VP_OK) {
        a->broken = true; /* half an action done: the connection cannot go on */
        return st;
    }
    a->state = next;
    return VP_OK;
}

/* Evt19 with the reason and message of a framing or parse failure. */
static vp_status invalid_pdu(ul_assoc *a, uint8_t reason, const char *why, vp_error *err)
{
    snprintf(a->detail, sizeof a->detail, "%s", why);
    input in = {.abort_reason = reason};
    return fire(a, UL_EVT19, &in, err);
}

/* The whole PDU is in rx: parse it and fire its event. */
static vp_status process_pdu(ul_assoc *a, vp_error *err)
{
    a->arena = vp_arena_new(0);
    if (!a->arena) {
        a->broken = true;
        return vp_error_set(err, VP_ENOMEM, "out of memory for a PDU");
    }
    vp_error perr;
    vp_error_clear(&perr);
    uint8_t reason;
    vp_status st = ul_pdu_parse(a->rx.data, a->rx.len, a->arena, &a->pdu, &reason, &perr);
    if (st == VP_ENOMEM) {
        a->broken = true;
        return vp_error_set(err, VP_ENOMEM, "%s", perr.msg);
    }
    if (st != VP_OK)
        return invalid_pdu(a, reason, perr.msg, err);
    static const uint8_t pdu_event[] = {
        [UL_PDU_ASSOCIATE_RQ] = UL_EVT6, [UL_PDU_ASSOCIATE_AC] = UL_EVT3,
        [UL_PDU_ASSOCIATE_RJ] = UL_EVT4, [UL_PDU_P_DATA_TF] = UL_EVT10,
        [UL_PDU_RELEASE_RQ] = UL_EVT12,  [UL_PDU_RELEASE_RP] = UL_EVT13,
        [UL_PDU_ABORT] = UL_EVT16,
    };
    enum ul_fsm_event evt = pdu_event[a->pdu.type];
    /* Data may only flow on contexts accepted on this association (PS3.8 9.3.5: the ID
     * "shall be one of the presentation context IDs negotiated"). */
    if (evt == UL_EVT10 && (a->state == UL_STA6 || a->state == UL_STA7)) {
        for (size_t i = 0; i < a->pdu.pdv_count; i++) {
            if (!bit_get(a->accepted, a->pdu.pdvs[i].pc_id)) {
                char why[96];
                snprintf(why, sizeof why,
                         "P-DATA-TF: PDV on presentation context %u, which was not accepted",
                         a->pdu.pdvs[i].pc_id);
                return invalid_pdu(a, UL_ABORT_REASON_INVALID_PARAMETER, why, err);
            }
        }
    }
    input in = {.pdu = &a->pdu};
    return fire(a, evt, &in, err);
}

vp_status ul_assoc_feed(ul_assoc *a, const uint8_t *p, size_t n, size_t *used, vp_error *err)
{
    *used = 0;
    vp_status st = begin_call(a, err);
    if (st != VP_OK)
        return st;
    /* Bytes need an open transport connection: no PDU event exists in Sta1 and Sta4. */
    if (a->state == UL_STA1 || a->state == UL_STA4)
        return vp_error_set(err, VP_EINVAL, "transport data in %s", ul_state_name(a->state));
    if (a->rx_discard) {
        *used = n;
        return VP_OK;
    }
    if (a->rx_complete) {
        vp_buf_reset(&a->rx);
        vp_arena_free(a->arena);
        a->arena = NULL;
        memset(&a->pdu, 0, sizeof a->pdu);
        a->rx_complete = false;
    }
    if (a->rx.len < UL_HEADER_SIZE) {
        size_t take = UL_HEADER_SIZE - a->rx.len;
        if (take > n)
            take = n;
        if (take > 0 && (st = vp_buf_append(&a->rx, p, take)) != VP_OK)
            goto fail;
        *used += take;
        p += take;
        n -= take;
        if (a->rx.len < UL_HEADER_SIZE)
            return VP_OK;
        /* The header is complete: check the length against our caps before buffering. */
        size_t need;
        uint8_t reason = 0;
        vp_error ferr;
        vp_error_clear(&ferr);
        st = ul_pdu_frame(a->rx.data, a->rx.len, &a->limits, &need, &reason, &ferr);
        if (st != VP_OK && st != VP_EAGAIN) {
            a->rx_discard = true; /* the rest of the stream cannot be framed */
            *used += n;
            return invalid_pdu(a, reason, ferr.msg, err);
        }
        if (st == VP_EAGAIN && (st = vp_buf_reserve(&a->rx, need)) != VP_OK)
            goto fail;
    }
    size_t total = UL_HEADER_SIZE + (size_t)vp_be32(a->rx.data + 2);
    size_t take = total - a->rx.len;
    if (take > n)
        take = n;
    if (take > 0 && (st = vp_buf_append(&a->rx, p, take)) != VP_OK)
        goto fail;
    *used += take;
    if (a->rx.len < total)
        return VP_OK;
    a->rx_complete = true;
    return process_pdu(a, err);
fail:
    a->broken = true;
    return vp_error_set(err, st, "receive buffer: %s", vp_status_name(st));
}

vp_status ul_assoc_request(ul_assoc *a, const ul_associate *rq, vp_error *err)
{
    vp_status st = begin_call(a, err);
    if (st != VP_OK)
        return st;
    ul_transition t;
    if (!a->requestor || !ul_fsm_next(a->state, UL_EVT1, &t))
        return vp_error_set(err, VP_EINVAL, "A-ASSOCIATE request not valid in %s as %s",
                            ul_state_name(a->state), a->requestor ? "requestor" : "acceptor");
    ul_pdu pdu = {.type = UL_PDU_ASSOCIATE_RQ, .assoc = *rq};
    our_user_info(a, &pdu.assoc.user_info);
    vp_buf_reset(&a->pending_rq);
    if ((st = ul_pdu_encode(&pdu, &a->pending_rq, err)) != VP_OK)
        return st;
    memset(a->proposed, 0, sizeof a->proposed);
    for (size_t i = 0; i < rq->rq_pc_count; i++)
        bit_set(a->proposed, rq->rq_pcs[i].id);
    input in = {0};
    return fire(a, UL_EVT1, &in, err);
}

vp_status ul_assoc_transport_connected(ul_assoc *a, vp_error *err)
{
    vp_status st = begin_call(a, err);
    input in = {0};
    return st != VP_OK ? st : fire(a, UL_EVT2, &in, err);
}

vp_status ul_assoc_transport_accepted(ul_assoc *a, vp_error *err)
{
    vp_status st = begin_call(a, err);
    if (st != VP_OK)
        return st;
    if (a->requestor)
        return vp_error_set(err, VP_EINVAL, "transport connection indication on a requestor");
    input in = {0};
    return fire(a, UL_EVT5, &in, err);
}

vp_status ul_assoc_accept(ul_assoc *a, const ul_associate *ac, vp_error *err)
{
    vp_status st = begin_call(a, err);
    input in = {.ac = ac};
    return st != VP_OK ? st : fire(a, UL_EVT7, &in, err);
}

vp_status ul_assoc_reject(ul_assoc *a, const ul_reject *rj, vp_error *err)
{
    vp_status st = begin_call(a, err);
    input in = {.rj = rj};
    return st != VP_OK ? st : fire(a, UL_EVT8, &in, err);
}

/* Checks before Evt9: a call may be made, on an accepted context, to a peer that can take
 * a PDV. */
static vp_status pdata_allowed(ul_assoc *a, uint8_t pc_id, vp_error *err)
{
    vp_status st = begin_call(a, err);
    if (st != VP_OK)
        return st;
    ul_transition t;
    if (ul_fsm_next(a->state, UL_EVT9, &t) && !bit_get(a->accepted, pc_id))
        return vp_error_set(err, VP_EINVAL, "presentation context %u was not accepted", pc_id);
    /* A P-DATA-TF variable field holds at least one PDV item of 6 bytes plus data (PS3.8
     * 9.3.5, D.1): a peer announcing 6 or less can receive nothing. */
    if (a->peer_max_pdu_length && a->peer_max_pdu_length <= 6)
        return vp_error_set(err, VP_EINVAL,
                            "the peer's maximum PDU length %u cannot carry a presentation data "
                            "value",
                            a->peer_max_pdu_length);
    return VP_OK;
}

vp_status ul_assoc_send_pdata(ul_assoc *a, uint8_t pc_id, bool command, const uint8_t *data,
                              size_t len, bool last, vp_error *err)
{
    vp_status st = pdata_allowed(a, pc_id, err);
    if (st != VP_OK)
        return st;
    input in = {.pc_id = pc_id, .command = command, .data = data, .len = len, .last = last};
    return fire(a, UL_EVT9, &in, err);
}

vp_status ul_assoc_send_message(ul_assoc *a, uint8_t pc_id, const uint8_t *cmd, size_t cmd_len,
                                const uint8_t *data, size_t data_len, vp_error *err)
{
    if (!data)
        return ul_assoc_send_pdata(a, pc_id, true, cmd, cmd_len, true, err);
    vp_status st = pdata_allowed(a, pc_id, err);
    if (st != VP_OK)
        return st;
    input in = {.pc_id = pc_id,
                .command = true,
                .data = cmd,
                .len = cmd_len,
                .last = true,
                .data2 = data,
                .len2 = data_len};
    return fire(a, UL_EVT9, &in, err);
}

vp_status ul_assoc_release_request(ul_assoc *a, vp_error *err)
{
    vp_status st = begin_call(a, err);
    input in = {0};
    return st != VP_OK ? st : fire(a, UL_EVT11, &in, err);
}

vp_status ul_assoc_release_response(ul_assoc *a, vp_error *err)
{
    vp_status st = begin_call(a, err);
    input in = {0};
    return st != VP_OK ? st : fire(a, UL_EVT14, &in, err);
}

vp_status ul_assoc_abort(ul_assoc *a, vp_error *err)
{
    vp_status st = begin_call(a, err);
    input in = {0};
    return st != VP_OK ? st : fire(a, UL_EVT15, &in, err);
}

vp_status ul_assoc_transport_closed(ul_assoc *a, vp_error *err)
{
    vp_status st = begin_call(a, err);
    input in = {0};
    return st != VP_OK ? st : fire(a, UL_EVT17, &in, err);
}

vp_status ul_assoc_artim_expired(ul_assoc *a, vp_error *err)
{
    vp_status st = begin_call(a, err);
    input in = {0};
    return st != VP_OK ? st : fire(a, UL_EVT18, &in, err);
}
