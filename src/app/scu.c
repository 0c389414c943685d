/* SPDX-License-Identifier: MIT */
/*
 * The association requestor: a blocking client around ul_assoc (PS3.8 9.2, the requestor's
 * side of Table 9-10) and the DIMSE-C requests C-ECHO (PS3.7 9.1.5) and C-STORE (PS3.7
 * 9.1.1). One socket, one association, one request at a time (no asynchronous operations
 * window, PS3.7 D.3.3.3: the default of one outstanding operation). Every wait is bounded:
 * connect, ACSE (association and release), DIMSE (each write and each response) and ARTIM
 * after an abort.
 *
 * This file is the edge where the upper layer's and DIMSE's values become messages: A-ASSOCIATE-
 * RJ and A-ABORT fields in words (PS3.8 Tables 9-21 and 9-26), presentation context results
 * (Table 9-18).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app/scu.h"
#include "img/img.h"
#include "net/net.h"

#define RX_SIZE 65536         /* bytes read from the socket at a time */
#define SALVAGE_MS 200        /* after a failed write: how long to look for an A-ABORT */
#define DEFAULT_ARTIM_MS 1000 /* PS3.8 9.1.5: ARTIM after our A-ABORT */
#define EVENTS_MAX 16         /* events of one ul_assoc call (it makes at most three) */
#define HEADER_STOP_TAG DCM_TAG(0x0008, 0x0019) /* header read: up to SOP Instance UID */

/* One proposed presentation context and the peer's answer. */
struct pc {
    char abstract_syntax[DCM_UID_MAX + 1]; /* SOP class UID proposed */
    char first_ts[DCM_UID_MAX + 1];        /* the first transfer syntax proposed */
    uint8_t result;                        /* enum ul_pc_result; UL_PC_NO_REASON unanswered */
    bool accepted;                         /* accepted with a transfer syntax we proposed */
    char ts[DCM_UID_MAX + 1];              /* accepted transfer syntax, "" otherwise */
};

struct scu {
    int fd;                          /* socket; -1 once closed */
    ul_assoc *a;                     /* the association's state machine */
    dimse_assembler *dimse;          /* reassembles the peer's messages from PDVs */
    char peer[300];                  /* "host:port (CALLED-AE)" for messages */
    char peer_addr[280];             /* "host:port" */
    int64_t connect_ms;              /* scu_opts timeouts, <= 0 = none */
    int64_t acse_ms;                 /* see scu_opts */
    int64_t dimse_ms;                /* see scu_opts */
    int64_t artim_ms;                /* see scu_opts */
    int64_t artim_deadline;          /* ARTIM running until then; NET_NO_DEADLINE when stopped */
    size_t pc_count;                 /* proposals */
    struct pc pcs[SCU_MAX_CONTEXTS]; /* proposal i has ID 2i+1 */
    uint16_t next_message_id;        /* Message ID of the next request (PS3.7 9.3.1.1) */
    bool accepted;                   /* A-ASSOCIATE-AC received */
    bool rejected;                   /* A-ASSOCIATE-RJ received */
    ul_reject rj;                    /* its fields */
    bool released;                   /* A-RELEASE confirmation received */
    bool awaiting;                   /* a request is outstanding */
    uint16_t awaited_command;        /* the response command field expected */
    uint16_t awaited_id;             /* ... answering this Message ID */
    bool have_response;              /* the awaited response arrived */
    bool activity;                   /* a PDU arrived (C-MOVE/C-GET progress) */
    dimse_msg response;              /* its command set */
    scu_match_fn on_match;           /* C-FIND: called with each pending answer's identifier */
    void *match_ctx;                 /* passed to on_match */
    const char *match_ts;            /* transfer syntax of the identifiers */
    bool collecting;                 /* a pending answer's identifier is being collected */
    vp_status match_status;          /* first failure of on_match */
    scu_progress_fn on_progress;     /* C-MOVE, C-GET: called with each pending response */
    scu_match_fn on_identifier;      /* ... and with the final response's identifier */
    void *retrieve_ctx;              /* passed to both */
    bool collecting_final;           /* the final response's identifier is being collected */
    const scu_receiver *recv;        /* C-GET: takes the C-STORE sub-operations */
    bool receiving;                  /* a C-STORE-RQ's data set is arriving */
    uint8_t recv_pc;                 /* its presentation context */
    dimse_msg recv_rq;               /* its command */
    vp_status recv_status;           /* first failure of begin or data */
    vp_error recv_err;               /* its message */
    vp_status end_status;            /* VP_OK while the association may go on */
    char end_msg[VP_ERROR_MAX];      /* why it ended (first reason wins) */
    uint8_t rx[RX_SIZE];             /* receive buffer */
};

struct scu_file {
    char *path;                         /* as given, owned */
    char sop_class[DCM_UID_MAX + 1];    /* SOP Class UID */
    char sop_instance[DCM_UID_MAX + 1]; /* SOP Instance UID */
    char ts[DCM_UID_MAX + 1];           /* transfer syntax of the data set */
    bool native;                        /* not encapsulated: can be re-encoded */
    bool decodable;                     /* encapsulated in a syntax img can decode */
    bool odd;                           /* the data set has an odd length (a fault) */
    uint64_t start;                     /* file offset of the data set's first byte */
    uint64_t size;                      /* file size */
};

/* ------------------------------------------------------------------------------------------ */
/* Words for the upper layer's codes                                                          */

/* A-ASSOCIATE-RJ Result, PS3.8 Table 9-21. */
static const char *rj_result_name(uint8_t r)
{
    switch (r) {
    case UL_RJ_PERMANENT: return "rejected-permanent";
    case UL_RJ_TRANSIENT: return "rejected-transient";
    default: return "rejected (unknown result)";
    }
}

/* A-ASSOCIATE-RJ Source, PS3.8 Table 9-21. */
static const char *rj_source_name(uint8_t s)
{
    switch (s) {
    case UL_RJ_SOURCE_USER: return "DICOM UL service-user";
    case UL_RJ_SOURCE_PROVIDER_ACSE: return "DICOM UL service-provider (ACSE related function)";
    case UL_RJ_SOURCE_PROVIDER_PRESENTATION:
        return "DICOM UL service-provider (Presentation related function)";
    default: return "unknown source";
    }
}

/* A-ASSOCIATE-RJ Reason/Diag., PS3.8 Table 9-21: its meaning depends on the source. */
static const char *rj_reason_name(uint8_t source, uint8_t r)
{
    switch (source) {
    case UL_RJ_SOURCE_USER:
        switch (r) {
        case UL_RJ_USER_NO_REASON: return "no-reason-given";
        case UL_RJ_USER_APPLICATION_CONTEXT_NOT_SUPPORTED:
            return "application-context-name-not-supported";
        case UL_RJ_USER_CALLING_AE_NOT_RECOGNIZED: return "calling-AE-title-not-recognized";
        case UL_RJ_USER_CALLED_AE_NOT_RECOGNIZED: return "called-AE-title-not-recognized";
        default: return "reserved reason";
        }
    case UL_RJ_SOURCE_PROVIDER_ACSE:
        switch (r) {
        case UL_RJ_ACSE_NO_REASON: return "no-reason-given";
        case UL_RJ_ACSE_PROTOCOL_VERSION_NOT_SUPPORTED: return "protocol-version-not-supported";
        default: return "reserved reason";
        }
    case UL_RJ_SOURCE_PROVIDER_PRESENTATION:
        switch (r) {
        case UL_RJ_PRESENTATION_TEMPORARY_CONGESTION: return "temporary-congestion";
        case UL_RJ_PRESENTATION_LOCAL_LIMIT_EXCEEDED: return "local-limit-exceeded";
        default: return "reserved reason";
        }
    default: return "unknown reason";
    }
}

/* A-ABORT Reason/Diag., PS3.8 Table 9-26 (significant for the service-provider source). */
static const char *abort_reason_name(uint8_t r)
{
    switch (r) {
    case UL_ABORT_REASON_NOT_SPECIFIED: return "reason-not-specified";
    case UL_ABORT_REASON_UNRECOGNIZED_PDU: return "unrecognized-PDU";
    case UL_ABORT_REASON_UNEXPECTED_PDU: return "unexpected-PDU";
    case UL_ABORT_REASON_UNRECOGNIZED_PARAMETER: return "unrecognized-PDU-parameter";
    case UL_ABORT_REASON_UNEXPECTED_PARAMETER: return "unexpected-PDU-parameter";
    case UL_ABORT_REASON_INVALID_PARAMETER: return "invalid-PDU-parameter-value";
    default: return "reserved reason";
    }
}

const char *scu_pc_result_name(uint8_t result)
{
    /* PS3.8 Table 9-18. */
    switch (result) {
    case UL_PC_ACCEPTANCE: return "acceptance";
    case UL_PC_USER_REJECTION: return "user-rejection";
    case UL_PC_NO_REASON: return "no-reason (provider rejection)";
    case UL_PC_ABSTRACT_SYNTAX_NOT_SUPPORTED:
        return "abstract-syntax-not-supported (provider rejection)";
    case UL_PC_TRANSFER_SYNTAXES_NOT_SUPPORTED:
        return "transfer-syntaxes-not-supported (provider rejection)";
    default: return "unknown result";
    }
}

/* The registry's name of a UID, else the UID itself. */
static const char *uid_name(const char *uid)
{
    const dcm_uid_entry *e = dcm_uid_lookup(uid);
    return e && e->name && *e->name ? e->name : uid;
}

/* ------------------------------------------------------------------------------------------ */
/* Transport and events                                                                       */

/* Records why the association ended; the first reason wins. Returns st. */
static vp_status end_assoc(scu *s, vp_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static vp_status end_assoc(scu *s, vp_status st, const char *fmt, ...)
{
    if (s->end_status == VP_OK) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(s->end_msg, sizeof s->end_msg, fmt, ap);
        va_end(ap);
        s->end_status = st;
    }
    return st;
}

/* The association's end as the caller's error. */
static vp_status ended(const scu *s, vp_error *err)
{
    return vp_error_set(err, s->end_status ? s->end_status : VP_ECLOSED, "%s",
                        s->end_status ? s->end_msg : "the association is closed");
}

/* Sends what the association queued, best effort, within ms; then closes the socket. Used
 * when the upper layer says to close the transport (after A-ASSOCIATE-RJ, A-RELEASE-RP,
 * A-ABORT) and when the transport failed. */
static void close_transport(scu *s, int64_t ms)
{
    if (s->fd < 0)
        return;
    vp_buf *out = ul_assoc_output(s->a);
    if (out->len)
        net_write_all(s->fd, out->data, out->len, net_now_ms() + (ms > 0 ? ms : 0), NULL);
    vp_buf_reset(out);
    close(s->fd);
    s->fd = -1;
    s->artim_deadline = NET_NO_DEADLINE;
}

static vp_status process(scu *s, vp_error *err);

/* The parts of a response the caller sees. */
static void copy_response(const dimse_msg *m, scu_response *rsp)
{
    memset(rsp, 0, sizeof *rsp);
    rsp->status = m->status;
    if (m->present & DIMSE_F_ERROR_COMMENT) {
        rsp->has_error_comment = true;
        memcpy(rsp->error_comment, m->error_comment, sizeof rsp->error_comment);
    }
    if (m->present & (DIMSE_F_COMPLETED | DIMSE_F_FAILED)) {
        rsp->has_counts = true;
        rsp->remaining = m->remaining;
        rsp->completed = m->completed;
        rsp->failed = m->failed;
        rsp->warning = m->warning;
    }
}

/* A command set from the peer (PS3.7 9.3): the awaited response, or a protocol error. */
static vp_status on_command(scu *s, const dimse_msg *m, uint8_t pc_id)
{
    /* C-GET (PS3.4 C.4.3.1): the peer performs its C-STORE sub-operations on this
     * association, one at a time, while the C-GET is outstanding. */
    if (m->command_field == DIMSE_C_STORE_RQ && s->recv && s->awaiting && m->has_dataset &&
        !s->receiving) {
        s->receiving = true;
        s->recv_pc = pc_id;
        s->recv_rq = *m;
        vp_error_clear(&s->recv_err);
        size_t i = (size_t)(pc_id - 1) / 2;
        const char *ts = (pc_id & 1) && i < s->pc_count && s->pcs[i].accepted ? s->pcs[i].ts : NULL;
        if (!ts)
            s->recv_status = vp_error_set(&s->recv_err, VP_EINVAL,
                                          "C-STORE-RQ on a presentation context not accepted");
        else if (strcmp(s->pcs[i].abstract_syntax, m->affected_sop_class_uid) != 0)
            s->recv_status =
                vp_error_set(&s->recv_err, VP_EINVAL,
                             "Affected SOP Class UID is not the presentation context's");
        else
            s->recv_status = s->recv->begin(s->recv->ctx, m->affected_sop_class_uid,
                                            m->affected_sop_instance_uid, ts, &s->recv_err);
        return VP_OK;
    }
    if (!dimse_command_is_response(m->command_field))
        return end_assoc(s, VP_EUNSUPPORTED, "%s sent %s, which this client does not serve",
                         s->peer, dimse_command_name(m->command_field));
    if (!s->awaiting || s->have_response)
        return end_assoc(s, VP_EPARSE, "%s sent %s for no outstanding request", s->peer,
                         dimse_command_name(m->command_field));
    /* PS3.7 9.3.1.2 etc.: the response carries the request's command field with bit 15 set
     * and the Message ID Being Responded To equal to the request's Message ID. */
    if (m->command_field != s->awaited_command)
        return end_assoc(s, VP_EPARSE, "%s answered %s with %s", s->peer,
                         dimse_command_name((uint16_t)(s->awaited_command & 0x7FFF)),
                         dimse_command_name(m->command_field));
    if (!(m->present & DIMSE_F_MESSAGE_ID_RESPONDED) || m->message_id_responded != s->awaited_id)
        return end_assoc(s, VP_EPARSE, "%s: %s answers Message ID %u, expected %u", s->peer,
                         dimse_command_name(m->command_field), m->message_id_responded,
                         s->awaited_id);
    if (!(m->present & DIMSE_F_STATUS))
        return end_assoc(s, VP_EPARSE, "%s: %s without a Status (0000,0900)", s->peer,
                         dimse_command_name(m->command_field));
    /* C-FIND: Pending responses carry a match (PS3.4 C.4.1.2.2); only the last one ends the
     * request. */
    if (m->command_field == DIMSE_C_FIND_RSP &&
        dimse_status_class(m->status) == DIMSE_CLASS_PENDING) {
        if (m->has_dataset) {
            if (dimse_assembler_collect(s->dimse, SCU_IDENTIFIER_MAX) != VP_OK)
                return end_assoc(s, VP_ENOMEM, "%s: cannot collect an answer", s->peer);
            s->collecting = true;
        }
        return VP_OK;
    }
    /* C-MOVE, C-GET: Pending responses carry the sub-operation counts (PS3.4 C.4.2.1.5). */
    if ((m->command_field == DIMSE_C_MOVE_RSP || m->command_field == DIMSE_C_GET_RSP) &&
        dimse_status_class(m->status) == DIMSE_CLASS_PENDING) {
        if (s->on_progress) {
            scu_response p;
            copy_response(m, &p);
            s->on_progress(s->retrieve_ctx, &p);
        }
        return VP_OK;
    }
    s->response = *m;
    /* A final response with an identifier (the Failed SOP Instance UID List of a C-MOVE or
     * C-GET) ends the request once the identifier has arrived. */
    if (m->has_dataset) {
        if (dimse_assembler_collect(s->dimse, SCU_IDENTIFIER_MAX) != VP_OK)
            return end_assoc(s, VP_ENOMEM, "%s: cannot collect a response identifier", s->peer);
        s->collecting_final = true;
        return VP_OK;
    }
    s->have_response = true;
    return VP_OK;
}

/* The end of a C-STORE sub-operation's data set: answer it (PS3.7 9.3.1.2). */
static vp_status receive_end(scu *s)
{
    s->receiving = false;
    uint16_t status = s->recv->end(s->recv->ctx, s->recv_status, &s->recv_err);
    dimse_msg rsp;
    if (dimse_msg_response(&rsp, &s->recv_rq, status) != VP_OK)
        return end_assoc(s, VP_EPARSE, "%s: cannot answer its C-STORE-RQ", s->peer);
    if (dimse_status_class(status) != DIMSE_CLASS_SUCCESS && s->recv_err.msg[0])
        dimse_msg_set_error_comment(&rsp, s->recv_err.msg);
    vp_buf cmd;
    vp_buf_init(&cmd, 0);
    vp_error e;
    vp_error_clear(&e);
    vp_status st = dimse_msg_encode(&rsp, &cmd, &e);
    if (st == VP_OK)
        st = ul_assoc_send_pdata(s->a, s->recv_pc, true, cmd.data, cmd.len, true, &e);
    vp_buf_fini(&cmd);
    return st == VP_OK ? VP_OK : end_assoc(s, st, "%s: %s", s->peer, e.msg);
}

/* P-DATA indication: each PDV to the DIMSE reassembler (PS3.8 Annex E). */
static vp_status on_pdata(scu *s, const ul_pdu *pdu)
{
    s->activity = true;
    for (size_t i = 0; i < pdu->pdv_count && s->end_status == VP_OK; i++) {
        const ul_pdv *v = &pdu->pdvs[i];
        dimse_pdv in = {v->pc_id, (v->control & UL_PDV_COMMAND) != 0,
                        (v->control & UL_PDV_LAST) != 0, v->data, v->len};
        dimse_event ev;
        vp_error e;
        vp_error_clear(&e);
        vp_status st = dimse_assembler_feed(s->dimse, &in, &ev, &e);
        if (st != VP_OK)
            return end_assoc(s, st, "%s: %s", s->peer, e.msg);
        if (ev.type == DIMSE_EV_BAD_COMMAND)
            return end_assoc(s, VP_EPARSE, "%s sent a command set that does not decode: %s",
                             s->peer, e.msg);
        if (ev.type == DIMSE_EV_COMMAND && (st = on_command(s, ev.msg, v->pc_id)) != VP_OK)
            return st;
        if (ev.type == DIMSE_EV_MESSAGE && s->collecting) {
            s->collecting = false;
            if (s->on_match && s->match_status == VP_OK)
                s->match_status = s->on_match(s->match_ctx, ev.data, ev.len, s->match_ts);
        } else if (ev.type == DIMSE_EV_MESSAGE && s->collecting_final) {
            s->collecting_final = false;
            s->have_response = true;
            size_t k = (size_t)(v->pc_id - 1) / 2;
            if (s->on_identifier && k < s->pc_count && s->match_status == VP_OK)
                s->match_status = s->on_identifier(s->retrieve_ctx, ev.data, ev.len, s->pcs[k].ts);
        } else if (ev.type == DIMSE_EV_DATA && s->receiving) {
            if (s->recv_status == VP_OK && ev.len)
                s->recv_status = s->recv->data(s->recv->ctx, ev.data, ev.len, &s->recv_err);
            if (ev.is_last && (st = receive_end(s)) != VP_OK)
                return st;
        }
        /* Other DIMSE_EV_DATA: a response data set nobody asked to collect. */
    }
    return VP_OK;
}

/* Handles the events of the last ul_assoc call (copied first: answering a release indication
 * is itself a call, which replaces them). */
static vp_status process(scu *s, vp_error *err)
{
    ul_event evs[EVENTS_MAX];
    size_t n = 0;
    while (n < EVENTS_MAX && ul_assoc_event_next(s->a, &evs[n]))
        n++;
    bool close_it = false, answer_release = false;
    for (size_t i = 0; i < n; i++) {
        const ul_event *ev = &evs[i];
        switch (ev->type) {
        case UL_EV_TRANSPORT_CLOSE: close_it = true; break;
        case UL_EV_ARTIM_START: s->artim_deadline = net_deadline(s->artim_ms); break;
        case UL_EV_ARTIM_STOP: s->artim_deadline = NET_NO_DEADLINE; break;
        case UL_EV_ASSOCIATE_ACCEPTED: {
            const ul_associate *ac = &ev->pdu->assoc;
            for (size_t k = 0; k < ac->ac_pc_count; k++) {
                uint8_t id = ac->ac_pcs[k].id;
                size_t idx = (size_t)(id - 1) / 2;
                if (!(id & 1) || idx >= s->pc_count)
                    continue;
                struct pc *pc = &s->pcs[idx];
                pc->result = ac->ac_pcs[k].result;
                /* ul_assoc_pc_accepted also checks the transfer syntax was one we proposed
                 * (PS3.8 9.3.3.2); an acceptance of another is no acceptance. */
                if (pc->result == UL_PC_ACCEPTANCE && ul_assoc_pc_accepted(s->a, id) &&
                    ac->ac_pcs[k].transfer_syntax &&
                    strlen(ac->ac_pcs[k].transfer_syntax) <= DCM_UID_MAX) {
                    pc->accepted = true;
                    strcpy(pc->ts, ac->ac_pcs[k].transfer_syntax);
                } else if (pc->result == UL_PC_ACCEPTANCE) {
                    pc->result = UL_PC_TRANSFER_SYNTAXES_NOT_SUPPORTED;
                }
            }
            s->accepted = true;
            break;
        }
        case UL_EV_ASSOCIATE_REJECTED:
            s->rejected = true;
            s->rj = ev->pdu->reject;
            end_assoc(s, VP_EUNSUPPORTED, "association rejected by %s: %s, source: %s, reason: %s",
                      s->peer, rj_result_name(s->rj.result), rj_source_name(s->rj.source),
                      rj_reason_name(s->rj.source, s->rj.reason));
            break;
        case UL_EV_P_DATA:
            if (on_pdata(s, ev->pdu) != VP_OK && ul_assoc_state(s->a) == UL_STA6) {
                /* A protocol error of the peer's: abort (PS3.8 7.3.1). */
                if (ul_assoc_abort(s->a, NULL) == VP_OK)
                    return process(s, err);
            }
            break;
        case UL_EV_RELEASE_INDICATION: answer_release = true; break;
        case UL_EV_RELEASE_CONFIRMATION: s->released = true; break;
        case UL_EV_ABORT:
            /* A transport failure was recorded before Evt17 made the upper layer say so. */
            if (*ev->detail)
                end_assoc(s, VP_ECLOSED, "%s: association aborted (A-P-ABORT): %s", s->peer,
                          ev->detail);
            else if (!ev->provider)
                end_assoc(s, VP_ECLOSED,
                          "%s aborted the association (A-ABORT, source: DICOM UL service-user)",
                          s->peer);
            else
                end_assoc(s, VP_ECLOSED,
                          "%s aborted the association (A-ABORT, source: DICOM UL "
                          "service-provider, reason: %s)",
                          s->peer, abort_reason_name(ev->reason));
            break;
        default: break;
        }
    }
    if (close_it)
        close_transport(s, s->dimse_ms > 0 && s->dimse_ms < 2000 ? s->dimse_ms : 2000);
    if (answer_release) {
        /* PS3.8 Table 9-10 (AR-8, AR-9): in a release collision the requestor answers first.
         * A release the peer starts on its own (AR-2) ends the association too. */
        if (ul_assoc_state(s->a) != UL_STA9)
            end_assoc(s, VP_ECLOSED, "%s released the association", s->peer);
        if (ul_assoc_release_response(s->a, err) == VP_OK)
            return process(s, err);
    }
    return VP_OK;
}

/* Feeds received bytes to the association, one PDU per call, handling events as they come. */
static vp_status feed(scu *s, const uint8_t *p, size_t n, vp_error *err)
{
    size_t off = 0;
    while (off < n && s->fd >= 0) {
        size_t used = 0;
        vp_error e;
        vp_error_clear(&e);
        vp_status st = ul_assoc_feed(s->a, p + off, n - off, &used, &e);
        if (st != VP_OK) {
            close_transport(s, 0);
            return vp_error_set(err, end_assoc(s, st, "%s: %s", s->peer, e.msg), "%s", s->end_msg);
        }
        off += used;
        if ((st = process(s, err)) != VP_OK)
            return st;
    }
    return VP_OK;
}

/* The transport is gone (read or write failed, or the peer closed). Looks for an A-ABORT the
 * peer may have sent before closing, then tells the upper layer (Evt17). */
static void transport_lost(scu *s, vp_status st, const char *why, bool salvage)
{
    int64_t until = net_deadline(SALVAGE_MS);
    while (salvage && s->fd >= 0) {
        size_t got = 0;
        if (net_read(s->fd, s->rx, sizeof s->rx, until, &got, NULL) != VP_OK)
            break;
        feed(s, s->rx, got, NULL);
    }
    if (s->fd < 0)
        return;
    close(s->fd);
    s->fd = -1;
    s->artim_deadline = NET_NO_DEADLINE;
    vp_buf_reset(ul_assoc_output(s->a));
    /* Sta13 + Evt17 is AR-5 (expected after our abort); elsewhere AA-4, an A-P-ABORT. */
    if (ul_assoc_state(s->a) != UL_STA13)
        end_assoc(s, st, "%s: %s", s->peer, why);
    if (ul_assoc_transport_closed(s->a, NULL) == VP_OK)
        process(s, NULL);
}

/* Sends the queued output. A failed write ends the association. */
static vp_status flush(scu *s, vp_error *err)
{
    vp_buf *out = ul_assoc_output(s->a);
    if (out->len == 0)
        return VP_OK;
    if (s->fd < 0) {
        vp_buf_reset(out);
        return ended(s, err);
    }
    vp_error e;
    vp_error_clear(&e);
    vp_status st = net_write_all(s->fd, out->data, out->len, net_deadline(s->dimse_ms), &e);
    vp_buf_reset(out);
    if (st == VP_OK)
        return VP_OK;
    if (st == VP_ETIMEOUT)
        transport_lost(s, st, "the peer does not read: send timed out", false);
    else
        transport_lost(s, st, e.msg, true);
    return ended(s, err);
}

/* Whatever has arrived, without waiting: lets a long data set stop early when the peer
 * aborted. */
static vp_status poll_input(scu *s, vp_error *err)
{
    while (s->fd >= 0) {
        size_t got = 0;
        vp_error e;
        vp_error_clear(&e);
        vp_status st = net_read(s->fd, s->rx, sizeof s->rx, net_now_ms(), &got, &e);
        if (st == VP_ETIMEOUT)
            return VP_OK;
        if (st != VP_OK) {
            transport_lost(s, st, e.msg, false);
            return ended(s, err);
        }
        if ((st = feed(s, s->rx, got, err)) != VP_OK)
            return st;
        if ((st = flush(s, err)) != VP_OK)
            return st;
    }
    return s->end_status == VP_OK ? VP_OK : ended(s, err);
}

typedef bool (*scu_cond)(const scu *s);

/* Reads and processes input until done(s), the association ends, or deadline (then the
 * association is aborted: PS3.8 leaves timers on the user's side to the implementation). */
static vp_status wait_until(scu *s, scu_cond done, int64_t deadline, const char *what,
                            vp_error *err)
{
    while (!done(s)) {
        if (s->fd < 0 || s->end_status != VP_OK) {
            if (s->fd >= 0)
                scu_abort(s);
            return ended(s, err);
        }
        int64_t dl = deadline < s->artim_deadline ? deadline : s->artim_deadline;
        size_t got = 0;
        vp_error e;
        vp_error_clear(&e);
        vp_status st = net_read(s->fd, s->rx, sizeof s->rx, dl, &got, &e);
        if (st == VP_ETIMEOUT && s->artim_deadline != NET_NO_DEADLINE &&
            net_now_ms() >= s->artim_deadline) {
            /* Evt18: ARTIM expired (PS3.8 9.1.5). */
            s->artim_deadline = NET_NO_DEADLINE;
            if (ul_assoc_artim_expired(s->a, NULL) == VP_OK)
                process(s, NULL);
            continue;
        }
        if (st == VP_ETIMEOUT) {
            end_assoc(s, VP_ETIMEOUT, "%s: no %s within the timeout", s->peer, what);
            scu_abort(s);
            return ended(s, err);
        }
        if (st != VP_OK) {
            transport_lost(s, st, st == VP_ECLOSED ? "connection closed by the peer" : e.msg,
                           false);
            continue;
        }
        if ((st = feed(s, s->rx, got, err)) != VP_OK)
            return st;
        if ((st = flush(s, err)) != VP_OK)
            return st;
    }
    return VP_OK;
}

static bool assoc_answered(const scu *s)
{
    return s->accepted || s->rejected;
}

static bool response_arrived(const scu *s)
{
    return s->have_response;
}

static bool something_arrived(const scu *s)
{
    return s->have_response || s->activity;
}

static bool release_done(const scu *s)
{
    return s->released && s->fd < 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Association                                                                                */

static vp_status check_opts(const scu_opts *o, vp_error *err)
{
    if (!o->calling_ae || !ul_ae_title_valid(o->calling_ae, strlen(o->calling_ae)))
        return vp_error_set(err, VP_EINVAL, "calling AE title '%s' is not valid",
                            o->calling_ae ? o->calling_ae : "");
    if (!o->called_ae || !ul_ae_title_valid(o->called_ae, strlen(o->called_ae)))
        return vp_error_set(err, VP_EINVAL, "called AE title '%s' is not valid",
                            o->called_ae ? o->called_ae : "");
    if (o->context_count == 0 || o->context_count > SCU_MAX_CONTEXTS)
        return vp_error_set(err, VP_EINVAL, "%zu presentation contexts; 1 to %u may be proposed",
                            o->context_count, SCU_MAX_CONTEXTS);
    for (size_t i = 0; i < o->context_count; i++) {
        const scu_context *c = &o->contexts[i];
        if (!c->abstract_syntax || !dcm_uid_valid(c->abstract_syntax, strlen(c->abstract_syntax)))
            return vp_error_set(err, VP_EINVAL, "presentation context %zu: bad abstract syntax",
                                2 * i + 1);
        if (c->ts_count == 0 || c->ts_count > SCU_MAX_TS || !c->transfer_syntaxes)
            return vp_error_set(err, VP_EINVAL,
                                "presentation context %zu: %zu transfer syntaxes (1 to %u)",
                                2 * i + 1, c->ts_count, SCU_MAX_TS);
        for (size_t k = 0; k < c->ts_count; k++)
            if (!c->transfer_syntaxes[k] ||
                !dcm_uid_valid(c->transfer_syntaxes[k], strlen(c->transfer_syntaxes[k])))
                return vp_error_set(err, VP_EINVAL, "presentation context %zu: bad transfer syntax",
                                    2 * i + 1);
    }
    return VP_OK;
}

vp_status scu_open(const char *host, uint16_t port, const scu_opts *o, scu **out, vp_error *err)
{
    *out = NULL;
    vp_status st = check_opts(o, err);
    if (st != VP_OK)
        return st;
    scu *s = vp_calloc(1, sizeof *s);
    if (!s)
        return vp_error_set(err, VP_ENOMEM, "out of memory");
    s->fd = -1;
    s->artim_deadline = NET_NO_DEADLINE;
    s->connect_ms = o->connect_timeout_ms;
    s->acse_ms = o->acse_timeout_ms;
    s->dimse_ms = o->dimse_timeout_ms;
    s->artim_ms = o->artim_timeout_ms > 0 ? o->artim_timeout_ms : DEFAULT_ARTIM_MS;
    s->next_message_id = 1;
    snprintf(s->peer_addr, sizeof s->peer_addr, strchr(host, ':') ? "[%s]:%u" : "%s:%u", host,
             port);
    snprintf(s->peer, sizeof s->peer, "%s (%s)", s->peer_addr, o->called_ae);
    s->pc_count = o->context_count;
    ul_pc_rq *rq_pcs = vp_calloc(o->context_count, sizeof *rq_pcs);
    ul_role roles[SCU_MAX_CONTEXTS];
    ul_assoc_opts ao = {.requestor = true, .max_pdu_length = o->max_pdu_length};
    if (!rq_pcs || !(s->dimse = dimse_assembler_new(0))) {
        st = vp_error_set(err, VP_ENOMEM, "out of memory");
        goto fail;
    }
    if ((st = ul_assoc_new(&ao, &s->a, err)) != VP_OK)
        goto fail;
    for (size_t i = 0; i < o->context_count; i++) {
        const scu_context *c = &o->contexts[i];
        snprintf(s->pcs[i].abstract_syntax, sizeof s->pcs[i].abstract_syntax, "%s",
                 c->abstract_syntax);
        snprintf(s->pcs[i].first_ts, sizeof s->pcs[i].first_ts, "%s", c->transfer_syntaxes[0]);
        s->pcs[i].result = UL_PC_NO_REASON;
        /* PS3.8 9.3.2.2: presentation context IDs are odd integers 1-255. */
        rq_pcs[i] = (ul_pc_rq){(uint8_t)(2 * i + 1), c->abstract_syntax, c->ts_count,
                               (const char **)c->transfer_syntaxes};
    }
    /* A-ASSOCIATE-RQ, PS3.8 9.3.2: protocol version 1, the DICOM application context
     * (PS3.7 A.2.1); the upper layer adds our 51H, 52H and 55H. */
    ul_associate rq = {.protocol_version = UL_PROTOCOL_VERSION,
                       .application_context = UL_APPLICATION_CONTEXT,
                       .rq_pc_count = o->context_count,
                       .rq_pcs = rq_pcs};
    /* One Role Selection item per SOP class (PS3.7 D.3.3.4), SCU role off: a C-GET's storage
     * contexts carry the peer's C-STORE requests to us, and nothing goes the other way. */
    for (size_t i = 0; i < o->context_count; i++) {
        bool dup = false;
        for (size_t k = 0; k < rq.user_info.role_count && !dup; k++)
            dup = !strcmp(roles[k].sop_class_uid, o->contexts[i].abstract_syntax);
        if (o->contexts[i].scp_role && !dup)
            roles[rq.user_info.role_count++] =
                (ul_role){.sop_class_uid = o->contexts[i].abstract_syntax, .scp = true};
    }
    rq.user_info.roles = roles;
    snprintf(rq.called_ae, sizeof rq.called_ae, "%s", o->called_ae);
    snprintf(rq.calling_ae, sizeof rq.calling_ae, "%s", o->calling_ae);
    if ((st = ul_assoc_request(s->a, &rq, err)) != VP_OK) /* Evt1 -> AE-1, Sta4 */
        goto fail;
    vp_free(rq_pcs);
    rq_pcs = NULL;
    ul_event ev;
    while (ul_assoc_event_next(s->a, &ev)) /* UL_EV_TRANSPORT_CONNECT: we connect below */
        ;
    if ((st = net_connect(host, port, net_deadline(s->connect_ms), &s->fd, err)) != VP_OK)
        goto fail;
    if ((st = ul_assoc_transport_connected(s->a, err)) != VP_OK) /* Evt2 -> AE-2, Sta5 */
        goto fail;
    if ((st = process(s, err)) != VP_OK || (st = flush(s, err)) != VP_OK)
        goto fail;
    if ((st = wait_until(s, assoc_answered, net_deadline(s->acse_ms), "A-ASSOCIATE-AC or -RJ",
                         err)) != VP_OK)
        goto fail;
    if (s->rejected) {
        st = ended(s, err);
        goto fail;
    }
    *out = s;
    return VP_OK;
fail:
    vp_free(rq_pcs);
    scu_close(s);
    return st;
}

void scu_abort(scu *s)
{
    if (!s || s->fd < 0)
        return;
    end_assoc(s, VP_ECLOSED, "%s: the association was aborted", s->peer);
    /* Evt15 -> AA-1: A-ABORT, ARTIM, Sta13 (or already there after an abort of the upper
     * layer's own); then wait for the peer to close (Evt17 -> AR-5) or for ARTIM to expire
     * (Evt18 -> AA-2), PS3.8 9.2. Where Evt15 has no A-ABORT to send, just close. */
    if (ul_assoc_state(s->a) != UL_STA13) {
        if (ul_assoc_abort(s->a, NULL) != VP_OK) {
            close_transport(s, 0);
            return;
        }
        process(s, NULL);
    }
    int64_t until = net_now_ms() + s->artim_ms;
    vp_buf *out = ul_assoc_output(s->a);
    if (s->fd >= 0 && out->len && net_write_all(s->fd, out->data, out->len, until, NULL) != VP_OK) {
        close_transport(s, 0);
        return;
    }
    vp_buf_reset(out);
    while (s->fd >= 0) {
        size_t got = 0;
        if (net_read(s->fd, s->rx, sizeof s->rx, until, &got, NULL) != VP_OK) {
            close_transport(s, 0);
            break;
        }
        feed(s, s->rx, got, NULL); /* Sta13 ignores PDUs (AA-6/AA-7) */
    }
}

vp_status scu_release(scu *s, vp_error *err)
{
    if (!scu_usable(s))
        return ended(s, err);
    /* Evt11 -> AR-1: A-RELEASE-RQ, Sta7; the A-RELEASE-RP closes (AR-3). */
    vp_status st = ul_assoc_release_request(s->a, err);
    if (st == VP_OK)
        st = process(s, err);
    if (st == VP_OK)
        st = flush(s, err);
    if (st == VP_OK)
        st = wait_until(s, release_done, net_deadline(s->acse_ms), "A-RELEASE-RP", err);
    if (st != VP_OK)
        scu_abort(s);
    return st;
}

void scu_close(scu *s)
{
    if (!s)
        return;
    if (s->fd >= 0 && s->a)
        scu_abort(s); /* also sends an A-ABORT the upper layer queued itself (Sta13) */
    if (s->fd >= 0)
        close(s->fd);
    ul_assoc_free(s->a);
    dimse_assembler_free(s->dimse);
    vp_free(s);
}

bool scu_usable(const scu *s)
{
    return s && s->fd >= 0 && s->end_status == VP_OK && ul_assoc_state(s->a) == UL_STA6;
}

const char *scu_peer(const scu *s)
{
    return s->peer_addr;
}

uint8_t scu_context_result(const scu *s, size_t i)
{
    return i < s->pc_count ? s->pcs[i].result : UL_PC_NO_REASON;
}

const char *scu_context_ts(const scu *s, size_t i)
{
    return i < s->pc_count && s->pcs[i].accepted ? s->pcs[i].ts : NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* DIMSE requests                                                                             */

/* Sends the command set of request m on context idx (PS3.7 6.3.1: Implicit VR Little Endian
 * whatever the context's transfer syntax) and arms the wait for its response. */
static vp_status send_command(scu *s, size_t idx, dimse_msg *m, vp_error *err)
{
    vp_buf cmd;
    vp_buf_init(&cmd, 0);
    vp_status st = dimse_msg_encode(m, &cmd, err);
    if (st == VP_OK)
        st = ul_assoc_send_pdata(s->a, (uint8_t)(2 * idx + 1), true, cmd.data, cmd.len, true, err);
    vp_buf_fini(&cmd);
    if (st != VP_OK)
        return st;
    s->awaiting = true;
    s->have_response = false;
    s->awaited_command = (uint16_t)(m->command_field | 0x8000);
    s->awaited_id = m->message_id;
    return flush(s, err);
}

/* Message IDs: any value, unique among outstanding requests (PS3.7 9.3.1.1); we count. */
static uint16_t take_message_id(scu *s)
{
    uint16_t id = s->next_message_id++;
    if (s->next_message_id == 0)
        s->next_message_id = 1;
    return id;
}

/* Waits for the response to the outstanding request and copies it out. */
static vp_status await_response(scu *s, scu_response *rsp, vp_error *err)
{
    vp_status st = wait_until(s, response_arrived, net_deadline(s->dimse_ms),
                              dimse_command_name(s->awaited_command), err);
    s->awaiting = false;
    if (st != VP_OK)
        return st;
    copy_response(&s->response, rsp);
    return VP_OK;
}

/* Waits for the final response of a C-MOVE or C-GET. Sub-operations may take long in all:
 * the DIMSE timeout bounds the wait for each message of the peer, not the whole request. */
static vp_status await_retrieve(scu *s, scu_response *rsp, vp_error *err)
{
    vp_status st = VP_OK;
    while (st == VP_OK && !s->have_response) {
        int64_t deadline = net_deadline(s->dimse_ms);
        st =
            wait_until(s, something_arrived, deadline, dimse_command_name(s->awaited_command), err);
        s->activity = false;
    }
    s->awaiting = false;
    if (st != VP_OK)
        return st;
    copy_response(&s->response, rsp);
    return VP_OK;
}

vp_status scu_echo(scu *s, scu_response *rsp, vp_error *err)
{
    if (!scu_usable(s))
        return ended(s, err);
    size_t idx = 0;
    while (idx < s->pc_count && !(s->pcs[idx].accepted && strcmp(s->pcs[idx].abstract_syntax,
                                                                 SCU_VERIFICATION_SOP_CLASS) == 0))
        idx++;
    if (idx == s->pc_count)
        return vp_error_set(err, VP_EUNSUPPORTED, "%s did not accept the Verification SOP Class",
                            s->peer);
    dimse_msg m;
    dimse_msg_echo_rq(&m, take_message_id(s));
    vp_status st = send_command(s, idx, &m, err);
    if (st == VP_OK)
        st = await_response(s, rsp, err);
    return st;
}

/* The accepted context for sop_class: VP_EUNSUPPORTED when the peer took none. */
static vp_status context_for(const scu *s, const char *sop_class, size_t *idx, vp_error *err)
{
    for (*idx = 0; *idx < s->pc_count; (*idx)++)
        if (s->pcs[*idx].accepted && strcmp(s->pcs[*idx].abstract_syntax, sop_class) == 0)
            return VP_OK;
    return vp_error_set(err, VP_EUNSUPPORTED, "%s did not accept %s", s->peer, uid_name(sop_class));
}

/* Sends request m with its identifier (already encoded) on context idx. */
static vp_status send_request(scu *s, size_t idx, dimse_msg *m, const vp_buf *id, vp_error *err)
{
    vp_status st = send_command(s, idx, m, err);
    if (st == VP_OK)
        st = ul_assoc_send_pdata(s->a, (uint8_t)(2 * idx + 1), false, id->data, id->len, true, err);
    return st == VP_OK ? flush(s, err) : st;
}

/* What C-FIND, C-MOVE and C-GET requests start with: an association that can take one, the
 * accepted context of sop_class, and the identifier encoded in its transfer syntax (*id
 * initialised either way; the caller finishes it). */
static vp_status begin_request(scu *s, const char *sop_class, const dcm_dataset *identifier,
                               size_t *idx, vp_buf *id, vp_error *err)
{
    vp_buf_init(id, 0);
    if (!scu_usable(s))
        return ended(s, err);
    vp_status st = context_for(s, sop_class, idx, err);
    if (st != VP_OK)
        return st;
    dcm_sink sink = dcm_sink_buf(id);
    return dcm_dataset_write(identifier, s->pcs[*idx].ts, NULL, &sink, err);
}

vp_status scu_find(scu *s, const char *sop_class, const dcm_dataset *identifier,
                   scu_match_fn on_match, void *ctx, scu_response *rsp, vp_error *err)
{
    size_t idx;
    vp_buf id;
    vp_status st = begin_request(s, sop_class, identifier, &idx, &id, err);
    if (st != VP_OK) {
        vp_buf_fini(&id);
        return st;
    }
    dimse_msg m;
    if ((st = dimse_msg_find_rq(&m, take_message_id(s), DIMSE_PRIORITY_MEDIUM, sop_class)) != VP_OK)
        vp_error_set(err, st, "invalid SOP class %s", sop_class);
    s->on_match = on_match;
    s->match_ctx = ctx;
    s->match_ts = s->pcs[idx].ts;
    s->match_status = VP_OK;
    if (st == VP_OK && (st = send_request(s, idx, &m, &id, err)) == VP_OK)
        st = await_response(s, rsp, err);
    vp_buf_fini(&id);
    s->on_match = NULL;
    if (st == VP_OK && s->match_status != VP_OK)
        st = vp_error_set(err, s->match_status, "an answer could not be handled");
    return st;
}

/* C-MOVE and C-GET: the request with its identifier, then Pending responses (counts) until the
 * final one; for C-GET the C-STORE sub-operations arrive in between (on_command). */
static vp_status retrieve(scu *s, uint16_t command, const char *sop_class, const char *destination,
                          const dcm_dataset *identifier, const scu_retrieve_opts *o,
                          scu_response *rsp, vp_error *err)
{
    size_t idx;
    vp_buf id;
    vp_status st = begin_request(s, sop_class, identifier, &idx, &id, err);
    if (st != VP_OK) {
        vp_buf_fini(&id);
        return st;
    }
    dimse_msg m;
    uint16_t mid = take_message_id(s);
    st = command == DIMSE_C_MOVE_RQ
             ? dimse_msg_move_rq(&m, mid, DIMSE_PRIORITY_MEDIUM, sop_class, destination)
             : dimse_msg_get_rq(&m, mid, DIMSE_PRIORITY_MEDIUM, sop_class);
    if (st != VP_OK)
        vp_error_set(err, st, "invalid SOP class or Move Destination '%s'",
                     destination ? destination : "");
    s->on_progress = o ? o->on_progress : NULL;
    s->on_identifier = o ? o->on_identifier : NULL;
    s->retrieve_ctx = o ? o->ctx : NULL;
    s->recv = command == DIMSE_C_GET_RQ && o ? o->receiver : NULL;
    s->match_status = VP_OK;
    if (st == VP_OK && (st = send_request(s, idx, &m, &id, err)) == VP_OK)
        st = await_retrieve(s, rsp, err);
    vp_buf_fini(&id);
    s->on_progress = NULL;
    s->on_identifier = NULL;
    s->recv = NULL;
    if (st == VP_OK && s->match_status != VP_OK)
        st = vp_error_set(err, s->match_status, "the response identifier could not be handled");
    return st;
}

vp_status scu_move(scu *s, const char *sop_class, const char *destination,
                   const dcm_dataset *identifier, const scu_retrieve_opts *opts, scu_response *rsp,
                   vp_error *err)
{
    return retrieve(s, DIMSE_C_MOVE_RQ, sop_class, destination, identifier, opts, rsp, err);
}

vp_status scu_get(scu *s, const char *sop_class, const dcm_dataset *identifier,
                  const scu_retrieve_opts *opts, scu_response *rsp, vp_error *err)
{
    if (!opts || !opts->receiver)
        return vp_error_set(err, VP_EINVAL, "C-GET needs a receiver for its sub-operations");
    return retrieve(s, DIMSE_C_GET_RQ, sop_class, NULL, identifier, opts, rsp, err);
}

/* ------------------------------------------------------------------------------------------ */
/* Files                                                                                      */

static vp_status copy_uid_of(const dcm_dataset *ds, uint32_t tag, const dcm_dataset *meta,
                             uint32_t meta_tag, char out[DCM_UID_MAX + 1], const char *what,
                             vp_error *err)
{
    const char *v = NULL;
    size_t len = 0;
    if ((dcm_dataset_get_str(ds, tag, 0, &v, &len) != VP_OK || len == 0) &&
        (dcm_dataset_get_str(meta, meta_tag, 0, &v, &len) != VP_OK || len == 0))
        return vp_error_set(err, VP_EPARSE, "not a DICOM object: no %s (%04X,%04X)", what,
                            DCM_GROUP(tag), DCM_ELEMENT(tag));
    if (len > DCM_UID_MAX || !dcm_uid_valid(v, len))
        return vp_error_set(err, VP_EPARSE, "%s '%.*s' is not a valid UID", what,
                            (int)(len > 80 ? 80 : len), v);
    memcpy(out, v, len);
    out[len] = 0;
    return VP_OK;
}

/* Offset of the data set in the file: right after the last element of the meta group, which
 * is read up to the first tag outside group 0002 whatever its Group Length says (PS3.10 7.1);
 * after the preamble when there is no meta group. */
static vp_status dataset_start(const dcm_file *df, uint64_t *start, vp_error *err)
{
    const dcm_dataset *meta = dcm_file_meta(df);
    size_t n = dcm_dataset_count(meta);
    *start = dcm_file_has_preamble(df) ? 132 : 0;
    for (size_t i = 0; i < n; i++) {
        const dcm_element *el = dcm_dataset_at(meta, i);
        if (dcm_element_is_sequence(el) || dcm_element_is_encapsulated(el))
            return vp_error_set(err, VP_EPARSE, "meta element (%04X,%04X) is a sequence",
                                DCM_GROUP(dcm_element_tag(el)), DCM_ELEMENT(dcm_element_tag(el)));
        uint64_t end = dcm_element_offset(el) + dcm_element_length(el);
        if (end > *start)
            *start = end;
    }
    return VP_OK;
}

vp_status scu_file_open(const char *path, scu_file **out, vp_error *err)
{
    *out = NULL;
    scu_file *f = vp_calloc(1, sizeof *f);
    size_t plen = strlen(path);
    if (!f || !(f->path = vp_malloc(plen + 1))) {
        vp_free(f);
        return vp_error_set(err, VP_ENOMEM, "out of memory");
    }
    memcpy(f->path, path, plen + 1);
    /* Header only: the meta group and the data set up to SOP Instance UID. */
    dcm_read_opts ro = {.stop_at_tag = HEADER_STOP_TAG};
    dcm_file *df = NULL;
    struct stat sb;
    vp_error rerr;
    vp_error_clear(&rerr);
    vp_status st = dcm_file_read(path, &ro, &df, &rerr);
    if (st != VP_OK) {
        if (st == VP_EIO || st == VP_ENOMEM)
            vp_error_set(err, st, "%s", rerr.msg);
        else
            vp_error_set(err, st, "not a readable DICOM file: %s", rerr.msg);
        goto fail;
    }
    const dcm_dataset *meta = dcm_file_meta(df), *ds = dcm_file_dataset(df);
    if ((st = copy_uid_of(ds, DCM_TAG_SOP_CLASS_UID, meta, DCM_TAG(0x0002, 0x0002), f->sop_class,
                          "SOP Class UID", err)) != VP_OK ||
        (st = copy_uid_of(ds, DCM_TAG_SOP_INSTANCE_UID, meta, DCM_TAG(0x0002, 0x0003),
                          f->sop_instance, "SOP Instance UID", err)) != VP_OK)
        goto fail;
    snprintf(f->ts, sizeof f->ts, "%s", dcm_file_transfer_syntax(df));
    f->native = !dcm_ts_lookup(f->ts).encapsulated;
    f->decodable = !f->native && img_can_decode(f->ts);
    if ((st = dataset_start(df, &f->start, err)) != VP_OK)
        goto fail;
    if (stat(path, &sb) != 0) {
        st = vp_error_set(err, VP_EIO, "cannot stat: %s", strerror(errno));
        goto fail;
    }
    f->size = (uint64_t)sb.st_size;
    if (f->start > f->size) {
        st = vp_error_set(err, VP_ETRUNC, "the meta group runs past the end of the file");
        goto fail;
    }
    f->odd = (f->size - f->start) & 1;
    dcm_file_free(df);
    *out = f;
    return VP_OK;
fail:
    dcm_file_free(df);
    scu_file_close(f);
    return st;
}

void scu_file_close(scu_file *f)
{
    if (!f)
        return;
    vp_free(f->path);
    vp_free(f);
}

const char *scu_file_sop_class(const scu_file *f)
{
    return f->sop_class;
}

const char *scu_file_sop_instance(const scu_file *f)
{
    return f->sop_instance;
}

const char *scu_file_transfer_syntax(const scu_file *f)
{
    return f->ts;
}

bool scu_file_native(const scu_file *f)
{
    return f->native;
}

bool scu_file_reencodable(const scu_file *f)
{
    return f->native || f->decodable;
}

uint64_t scu_file_dataset_size(const scu_file *f)
{
    return f->size - f->start;
}

/* ------------------------------------------------------------------------------------------ */
/* C-STORE                                                                                    */

size_t scu_file_pick(const scu_file *f, const char *const *abstract, const char *const *ts,
                     size_t n, bool *reencode)
{
    *reencode = false;
    for (size_t i = 0; i < n; i++)
        if (ts[i] && !strcmp(abstract[i], f->sop_class) && !strcmp(ts[i], f->ts)) {
            *reencode = f->native && f->odd;
            return i;
        }
    if (!f->native && !f->decodable)
        return SIZE_MAX; /* no decoder: the data only goes in its own syntax */
    static const char *const fallback[] = {DCM_TS_EXPLICIT_LE, DCM_TS_IMPLICIT_LE};
    for (size_t k = 0; k < 2; k++)
        for (size_t i = 0; i < n; i++)
            if (ts[i] && !strcmp(abstract[i], f->sop_class) && !strcmp(ts[i], fallback[k])) {
                *reencode = true;
                return i;
            }
    return SIZE_MAX;
}

/* An accepted context of this association for f (scu_file_pick). */
static size_t pick_context(const scu *s, const scu_file *f, bool *reencode)
{
    const char *abstract[SCU_MAX_CONTEXTS] = {0}, *ts[SCU_MAX_CONTEXTS] = {0};
    for (size_t i = 0; i < s->pc_count; i++) {
        abstract[i] = s->pcs[i].abstract_syntax;
        ts[i] = s->pcs[i].accepted ? s->pcs[i].ts : NULL;
    }
    return scu_file_pick(f, abstract, ts, s->pc_count, reencode);
}

/* Why no context fits f, for the error: the peer's answer to the context proposing the
 * file's own transfer syntax first, else to any for its SOP class. */
static vp_status no_context(const scu *s, const scu_file *f, vp_error *err)
{
    const char *answer = NULL, *other = NULL;
    bool accepted_elsewhere = false;
    for (size_t i = 0; i < s->pc_count && !answer; i++) {
        const struct pc *pc = &s->pcs[i];
        if (strcmp(pc->abstract_syntax, f->sop_class))
            continue;
        if (!strcmp(pc->first_ts, f->ts))
            answer = scu_pc_result_name(pc->result);
        else if (pc->accepted)
            accepted_elsewhere = true;
        else if (!other)
            other = scu_pc_result_name(pc->result);
    }
    if (!answer)
        answer = accepted_elsewhere ? "the SOP class was accepted in other transfer syntaxes only"
                 : other            ? other
                                    : "the SOP class was not proposed on this association";
    return vp_error_set(err, VP_EUNSUPPORTED, "%s in %s: no presentation context accepted (%s)",
                        uid_name(f->sop_class), uid_name(f->ts), answer);
}

/* One C-STORE on its way out. The command set goes with the first piece of the data set, so
 * a file that cannot be read or encoded before then costs nothing but its own failure. */
struct store_tx {
    scu *s;        /* association */
    size_t idx;    /* proposal index of the context used */
    dimse_msg cmd; /* the C-STORE-RQ */
    bool started;  /* the command set went out: only the data set's end or an abort may follow */
    uint64_t sent; /* data set bytes sent */
};

/* Sends n data set bytes at p; last ends the data set (PS3.8 E.2: its last fragment carries
 * the last-fragment bit). Between pieces, looks at what the peer sent (an A-ABORT ends it). */
static vp_status send_piece(void *ctx, const uint8_t *p, size_t n, bool last, vp_error *err)
{
    struct store_tx *t = ctx;
    scu *s = t->s;
    vp_status st;
    if (!scu_usable(s)) /* the peer may have aborted while we were reading or encoding */
        return ended(s, err);
    if (!t->started) {
        if ((st = send_command(s, t->idx, &t->cmd, err)) != VP_OK)
            return st;
        t->started = true;
    }
    if ((st = ul_assoc_send_pdata(s->a, (uint8_t)(2 * t->idx + 1), false, p, n, last, err)) !=
            VP_OK ||
        (st = flush(s, err)) != VP_OK)
        return st;
    t->sent += n;
    return last ? VP_OK : poll_input(s, err);
}

/* Sends the data set bytes of f as they are in the file, SCU_CHUNK at a time. */
static vp_status send_file_body(const scu_file *f, scu_piece_fn fn, void *ctx, vp_error *err)
{
    int fd = open(f->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return vp_error_set(err, VP_EIO, "cannot open: %s", strerror(errno));
    uint8_t *buf = vp_malloc(SCU_CHUNK);
    vp_status st = VP_OK;
    if (!buf) {
        st = vp_error_set(err, VP_ENOMEM, "out of memory");
        goto done;
    }
    uint64_t pos = f->start, left = f->size - f->start;
    do {
        size_t n = left < SCU_CHUNK ? (size_t)left : SCU_CHUNK;
        size_t got = 0;
        while (got < n) {
            ssize_t k = pread(fd, buf + got, n - got, (off_t)(pos + got));
            if (k < 0 && errno == EINTR)
                continue;
            if (k <= 0) {
                st = vp_error_set(err, VP_EIO, "read at offset %llu: %s",
                                  (unsigned long long)(pos + got),
                                  k < 0 ? strerror(errno) : "the file got shorter");
                goto done;
            }
            got += (size_t)k;
        }
        pos += n;
        left -= n;
        if ((st = fn(ctx, buf, n, left == 0, err)) != VP_OK)
            goto done;
    } while (left > 0);
done:
    vp_free(buf);
    close(fd);
    return st;
}

/* The encoder's sink for a re-encoded data set: a buffer sent every SCU_CHUNK bytes. */
struct encode_sink {
    scu_piece_fn fn; /* where the pieces go */
    void *ctx;       /* its argument */
    vp_buf buf;      /* encoded bytes not yet sent */
    vp_error err;    /* why sending failed */
};

static vp_status encode_write(void *ctx, const void *p, size_t n)
{
    struct encode_sink *k = ctx;
    const uint8_t *b = p;
    while (n > 0) {
        size_t room = SCU_CHUNK - k->buf.len, take = n < room ? n : room;
        vp_status st = vp_buf_append(&k->buf, b, take);
        if (st != VP_OK)
            return vp_error_set(&k->err, st, "out of memory");
        b += take;
        n -= take;
        /* Only a full buffer that more bytes follow goes out: the end carries the last bit. */
        if (k->buf.len == SCU_CHUNK && n > 0) {
            if ((st = k->fn(k->ctx, k->buf.data, k->buf.len, false, &k->err)) != VP_OK)
                return st;
            vp_buf_reset(&k->buf);
        }
    }
    return VP_OK;
}

/* Reads f whole and sends its data set encoded in ts (Explicit or Implicit VR LE). */
static vp_status send_reencoded(const scu_file *f, const char *ts, scu_piece_fn fn, void *ctx,
                                vp_error *err)
{
    dcm_file *df = NULL;
    vp_status st = dcm_file_read(f->path, NULL, &df, err);
    if (st != VP_OK)
        return st;
    /* Compressed pixel data is decoded for a peer that takes only native syntaxes (PS3.5
     * 8.2: the object stays the same, only its encoding changes). */
    if (!f->native && (st = img_transcode(dcm_file_dataset(df), f->ts, ts, NULL, err)) != VP_OK) {
        dcm_file_free(df);
        return st;
    }
    struct encode_sink k = {.fn = fn, .ctx = ctx};
    vp_buf_init(&k.buf, 0);
    vp_error_clear(&k.err);
    dcm_sink sink = {encode_write, &k};
    vp_error werr;
    vp_error_clear(&werr);
    st = dcm_dataset_write(dcm_file_dataset(df), ts, NULL, &sink, &werr);
    if (st == VP_OK)
        st = fn(ctx, k.buf.data, k.buf.len, true, err);
    else if (k.err.status != VP_OK)
        vp_error_set(err, st, "%s", k.err.msg);
    else
        vp_error_set(err, st, "cannot encode in %s: %s", uid_name(ts), werr.msg);
    vp_buf_fini(&k.buf);
    dcm_file_free(df);
    return st;
}

vp_status scu_file_send(const scu_file *f, const char *reencode_ts, scu_piece_fn fn, void *ctx,
                        vp_error *err)
{
    return reencode_ts ? send_reencoded(f, reencode_ts, fn, ctx, err)
                       : send_file_body(f, fn, ctx, err);
}

vp_status scu_store(scu *s, scu_file *f, const scu_store_opts *opts, scu_response *rsp,
                    scu_store_info *info, vp_error *err)
{
    scu_store_info dummy;
    if (!info)
        info = &dummy;
    memset(info, 0, sizeof *info);
    if (!scu_usable(s))
        return ended(s, err);
    bool reencode;
    size_t idx = pick_context(s, f, &reencode);
    if (idx == SIZE_MAX)
        return no_context(s, f, err);
    info->context_id = (uint8_t)(2 * idx + 1);
    info->reencoded = reencode;
    snprintf(info->transfer_syntax, sizeof info->transfer_syntax, "%s", s->pcs[idx].ts);
    /* C-STORE-RQ, PS3.7 9.3.1.1: Affected SOP Class and Instance UIDs of the data set. */
    struct store_tx t = {.s = s, .idx = idx};
    vp_status st = dimse_msg_store_rq(&t.cmd, take_message_id(s),
                                      opts ? opts->priority : DIMSE_PRIORITY_MEDIUM, f->sop_class,
                                      f->sop_instance);
    if (st == VP_OK && opts && opts->move_originator_ae)
        st = dimse_msg_set_move_originator(&t.cmd, opts->move_originator_ae,
                                           opts->move_originator_id);
    if (st != VP_OK)
        return vp_error_set(err, st, "cannot build the C-STORE-RQ (bad UID or AE title)");
    st = scu_file_send(f, reencode ? s->pcs[idx].ts : NULL, send_piece, &t, err);
    info->bytes = t.sent;
    if (st != VP_OK) {
        s->awaiting = false;
        /* A message begun cannot be taken back: only an abort ends it (PS3.8 7.3). */
        if (t.started && scu_usable(s)) {
            end_assoc(s, st, "%s: association aborted after a partial data set", s->peer);
            scu_abort(s);
        }
        return st;
    }
    return await_response(s, rsp, err);
}

vp_status scu_store_path(scu *s, const char *path, const scu_store_opts *opts, scu_response *rsp,
                         scu_store_info *info, vp_error *err)
{
    scu_file *f;
    vp_status st = scu_file_open(path, &f, err);
    if (st != VP_OK)
        return st;
    st = scu_store(s, f, opts, rsp, info, err);
    scu_file_close(f);
    return st;
}
