/* SPDX-License-Identifier: MIT */
/*
 * One association as service provider. The loop reads the socket with a deadline, feeds the
 * bytes to the upper layer (ul_assoc, PS3.8 state machine), passes P-DATA to the DIMSE
 * reassembler and answers each message:
 *  - C-ECHO-RQ: Success (PS3.4 A.4).
 *  - C-STORE-RQ: the data set streams into the ingest pipeline as its PDVs arrive; the
 *    C-STORE-RSP is sent after ingest_stream_end, i.e. after the object file, its directory
 *    entry and its index row are durable (PS3.4 B.2.3 statuses, via dimse_status_from_vp).
 *  - anything else: 0211 Unrecognized Operation (its data set, if any, is skipped).
 * Timers (PS3.8 9.1.5): ARTIM bounds the wait for the A-ASSOCIATE-RQ from the moment the
 * connection is accepted (a slow or silent client cannot hold it open) and the wait for the
 * peer to close after a reject, release or abort; the idle timeout bounds the time between
 * whole PDUs on an established association, so a peer trickling bytes is cut off too.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "app/scp.h"
#include "dcm/dcm.h"
#include "dimse/dimse.h"
#include "net/net.h"
#include "qry/qry.h"
#include "ul/ul.h"

#define VERIFICATION_SOP_CLASS "1.2.840.10008.1.1"
#define MEDIA_STORAGE_DIRECTORY "1.2.840.10008.1.3.10"

/* Storage SOP classes of IODs without a patient and study (PS3.3 A.1.2: Hanging Protocol,
 * Color Palette, Implant Templates, Defined Procedure Protocols, Protocol Approval,
 * Inventory). An archive indexed by animal and study cannot file them, so they are declined
 * at negotiation rather than accepted and then refused one by one. */
static const char *const unfiled[] = {
    "1.2.840.10008.5.1.4.1.1.200.1", "1.2.840.10008.5.1.4.1.1.200.3",
    "1.2.840.10008.5.1.4.1.1.200.7", "1.2.840.10008.5.1.4.1.1.201.1",
    "1.2.840.10008.5.1.4.38.1",      "1.2.840.10008.5.1.4.39.1",
    "1.2.840.10008.5.1.4.43.1",      "1.2.840.10008.5.1.4.44.1",
    "1.2.840.10008.5.1.4.45.1",
};

/* Query/Retrieve FIND SOP classes (PS3.4 C.6): the information model of each. */
#define PATIENT_ROOT_FIND "1.2.840.10008.5.1.4.1.2.1.1"
#define STUDY_ROOT_FIND "1.2.840.10008.5.1.4.1.2.2.1"

static int find_model(const char *uid)
{
    if (strcmp(uid, PATIENT_ROOT_FIND) == 0)
        return QRY_MODEL_PATIENT_ROOT;
    if (strcmp(uid, STUDY_ROOT_FIND) == 0)
        return QRY_MODEL_STUDY_ROOT;
    return -1;
}

bool scp_abstract_syntax_supported(const char *uid)
{
    if (strcmp(uid, VERIFICATION_SOP_CLASS) == 0 || find_model(uid) >= 0)
        return true;
    for (size_t i = 0; i < sizeof unfiled / sizeof unfiled[0]; i++)
        if (strcmp(uid, unfiled[i]) == 0)
            return false;
    const dcm_uid_entry *e = dcm_uid_lookup(uid);
    /* PS3.4 B.5 lists the Storage SOP Classes; in the registry they are the SOP classes
     * named "... Storage" (some with " - For Presentation" or " - Trial" after it). Storage
     * Commitment is a different service, and a DICOMDIR is a media object (PS3.10), not
     * something a modality stores. */
    return e && e->type == DCM_UID_SOP_CLASS && strstr(e->name, "Storage") &&
           !strstr(e->name, "Storage Commitment") && strcmp(uid, MEDIA_STORAGE_DIRECTORY) != 0;
}

static const ul_syntax_policy verification_policy = {.abstract_syntax = VERIFICATION_SOP_CLASS,
                                                     .scp_role = true};

/* Negotiation lookup: every supported abstract syntax (storage and FIND alike: we are the
 * SCP), any transfer syntax of the registry (stored as it comes: compressed objects are kept
 * compressed). */
static const ul_syntax_policy *lookup(void *ctx, const char *abstract_syntax)
{
    ul_syntax_policy *p = ctx;
    if (!scp_abstract_syntax_supported(abstract_syntax))
        return NULL;
    if (strcmp(abstract_syntax, VERIFICATION_SOP_CLASS) == 0)
        return &verification_policy;
    p->abstract_syntax = abstract_syntax;
    p->transfer_syntaxes = NULL;
    p->scp_role = true;
    p->scu_role = false;
    return p;
}

/* An accepted presentation context: what was agreed for its ID. */
struct pc {
    bool accepted;
    char abstract_syntax[DCM_UID_MAX + 1];
    char transfer_syntax[DCM_UID_MAX + 1];
};

struct assoc {
    scp_shared *sh;
    const config *cfg;
    int fd;
    ul_assoc *ul;
    dimse_assembler *dimse;
    scp_report *rep;
    bool established;   /* counted in sh->established */
    bool closed;        /* the transport is closed or must be */
    bool pdu_seen;      /* a whole PDU arrived since the last read */
    int64_t artim;      /* ARTIM deadline, 0 when stopped */
    int64_t idle;       /* deadline for the next whole PDU on an established association */
    struct pc pcs[128]; /* by (id - 1) / 2 */
    /* The message being received. */
    dimse_msg rq;
    uint8_t rq_pc;
    bool in_store;          /* a C-STORE data set is arriving */
    bool skipping;          /* a data set that is not stored is arriving (failure decided) */
    bool in_find;           /* a C-FIND identifier is being collected */
    ingest_stream *stream;  /* the C-STORE in progress, NULL after a failure */
    vp_status store_status; /* first failure of the C-STORE in progress */
    vp_error store_err;
    vp_buf cmd; /* encoded responses */
};

static struct pc *pc_of(struct assoc *a, uint8_t id)
{
    return id & 1 ? &a->pcs[(id - 1) / 2] : NULL;
}

/* Sends what the upper layer queued. */
static vp_status flush(struct assoc *a, vp_error *err)
{
    vp_buf *out = ul_assoc_output(a->ul);
    if (out->len == 0 || a->closed)
        return VP_OK;
    int64_t limit = a->cfg->idle_timeout_ms ? a->cfg->idle_timeout_ms : 300000;
    vp_status st = net_write_all(a->fd, out->data, out->len, net_deadline(limit), err);
    ul_assoc_output_consume(a->ul, out->len);
    return st;
}

static void set_result(struct assoc *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_result(struct assoc *a, const char *fmt, ...)
{
    if (a->rep->result[0])
        return; /* the first cause is the one that counts */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->rep->result, sizeof a->rep->result, fmt, ap);
    va_end(ap);
}

/* Our own A-ABORT (PS3.8 7.3.1): service-user source, after a DIMSE-level violation. */
static void abort_assoc(struct assoc *a, const char *why)
{
    set_result(a, "aborted: %s", why);
    vp_error e = {0};
    if (ul_assoc_abort(a->ul, &e) == VP_OK)
        flush(a, &e);
}

/* Encodes and sends a response on presentation context pc. */
static vp_status send_response(struct assoc *a, uint8_t pc, const dimse_msg *rsp, vp_error *err)
{
    vp_buf_reset(&a->cmd);
    vp_status st = dimse_msg_encode(rsp, &a->cmd, err);
    if (st == VP_OK)
        st = ul_assoc_send_pdata(a->ul, pc, true, a->cmd.data, a->cmd.len, true, err);
    if (st == VP_OK)
        st = flush(a, err);
    return st;
}

/* Answers rq with status (and an Error Comment for failures). */
static vp_status respond(struct assoc *a, uint8_t pc, const dimse_msg *rq, uint16_t status,
                         const char *comment, vp_error *err)
{
    dimse_msg rsp;
    vp_status st = dimse_msg_response(&rsp, rq, status);
    if (st)
        return vp_error_set(err, st, "cannot build the response to %s",
                            dimse_command_name(rq->command_field));
    if (comment && *comment && dimse_status_class(status) != DIMSE_CLASS_SUCCESS)
        dimse_msg_set_error_comment(&rsp, comment);
    return send_response(a, pc, &rsp, err);
}

static void store_fail(struct assoc *a, vp_status st, const vp_error *e)
{
    if (a->store_status == VP_OK) {
        a->store_status = st;
        a->store_err = *e;
    }
    ingest_stream_cancel(a->stream);
    a->stream = NULL;
}

/* A C-STORE-RQ command arrived: check it and open the ingest stream for its data set. */
static void store_begin(struct assoc *a, uint8_t pc_id, const dimse_msg *m)
{
    struct pc *pc = pc_of(a, pc_id);
    a->in_store = true;
    a->store_status = VP_OK;
    vp_error_clear(&a->store_err);
    vp_error e = {0};
    /* PS3.7 9.1.1.1: the Affected SOP Class UID is the SOP class of the presentation
     * context's abstract syntax. */
    if (!pc || strcmp(m->affected_sop_class_uid, pc->abstract_syntax) != 0) {
        vp_error_set(&e, VP_EINVAL,
                     "Affected SOP Class UID is not the presentation context's: %s, context %s",
                     m->affected_sop_class_uid, pc ? pc->abstract_syntax : "none");
        store_fail(a, VP_EINVAL, &e);
        return;
    }
    ingest_origin o = {.sop_class_uid = m->affected_sop_class_uid,
                       .sop_instance_uid = m->affected_sop_instance_uid,
                       .transfer_syntax = pc->transfer_syntax,
                       .source_ae = a->rep->calling_ae,
                       .receiving_ae = a->rep->called_ae};
    vp_status st = ingest_stream_begin(a->sh->ingest, &o, &a->stream, &e);
    if (st)
        store_fail(a, st, &e);
}

/* The last fragment of a C-STORE data set arrived: commit and answer. */
static vp_status store_end(struct assoc *a, vp_error *err)
{
    ingest_outcome oc = INGEST_STORED;
    vp_status st = a->store_status;
    vp_error e = a->store_err;
    if (st == VP_OK) {
        st = ingest_stream_end(a->stream, &oc, &e);
        a->stream = NULL;
    }
    a->in_store = false;
    uint16_t status = dimse_status_from_vp(DIMSE_SVC_STORE, st);
    if (st == VP_OK)
        a->rep->objects++;
    else
        a->rep->failures++;
    return respond(a, a->rq_pc, &a->rq, status, e.msg, err);
}

/* Largest C-FIND identifier collected (a UID list of 10,000 UIDs is about 650 KB). */
#define FIND_IDENTIFIER_MAX (1u << 20)
/* Matches answered before the final status says the query was too broad (A700). */
#define FIND_MAX_MATCHES 10000

/* Responses of one C-FIND, encoded while the index is read and sent after. */
struct find_job {
    const qry *q;
    const char *ts;          /* the context's transfer syntax */
    const char *retrieve_ae; /* Retrieve AE Title (0008,0054): ours */
    vp_buf *sets;            /* encoded identifiers */
    size_t n, cap;
    bool truncated;
    vp_status st;
    vp_error err;
};

/* Sets one return key of an answer from its column text (NULL or "" = zero length). */
static vp_status answer_key(dcm_dataset *ds, uint32_t tag, const char *text)
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
        return dcm_dataset_set_str(item, DCM_TAG(0x0008, 0x0100), DCM_VR_SH, text);
    }
    if (!dcm_vr_is_string(vr) || !text || !*text)
        return dcm_dataset_set(ds, tag, vr < DCM_VR_COUNT_REAL ? vr : DCM_VR_UN, NULL, 0, NULL);
    return dcm_dataset_set_str(ds, tag, vr, text);
}

static vp_status find_row(void *ctx, const char *const *cols, size_t ncols)
{
    struct find_job *j = ctx;
    if (j->n == FIND_MAX_MATCHES) {
        j->truncated = true;
        return VP_ELIMIT; /* stops the walk */
    }
    if (j->n == j->cap) {
        size_t cap = j->cap ? j->cap * 2 : 16;
        vp_buf *v = vp_realloc(j->sets, cap * sizeof *v);
        if (!v)
            return vp_error_set(&j->err, VP_ENOMEM, "out of memory");
        j->sets = v;
        j->cap = cap;
    }
    dcm_dataset *ds = dcm_dataset_new();
    if (!ds)
        return vp_error_set(&j->err, VP_ENOMEM, "out of memory");
    /* PS3.4 C.4.1.1.3.2: the answer holds the keys asked for, Query/Retrieve Level and the
     * Specific Character Set of its values (the index holds UTF-8). */
    vp_status st = dcm_dataset_set_str(ds, DCM_TAG_SPECIFIC_CHARACTER_SET, DCM_VR_CS, "ISO_IR 192");
    if (st == VP_OK)
        st = dcm_dataset_set_str(ds, DCM_TAG(0x0008, 0x0052), DCM_VR_CS,
                                 qry_level_name(qry_get_level(j->q)));
    if (st == VP_OK)
        st = dcm_dataset_set_str(ds, DCM_TAG(0x0008, 0x0054), DCM_VR_AE, j->retrieve_ae);
    for (size_t i = 0; st == VP_OK && i < qry_return_key_count(j->q); i++) {
        const qry_key *k = qry_return_key(j->q, i);
        if (k->tag == DCM_TAG(0x0008, 0x0054))
            continue;
        const char *text = k->column >= 0 && (size_t)k->column < ncols ? cols[k->column] : NULL;
        st = answer_key(ds, k->tag, text);
    }
    vp_buf *b = &j->sets[j->n];
    vp_buf_init(b, 0);
    if (st == VP_OK) {
        dcm_sink sink = dcm_sink_buf(b);
        st = dcm_dataset_write(ds, j->ts, NULL, &sink, &j->err);
    }
    dcm_dataset_free(ds);
    if (st) {
        vp_buf_fini(b);
        return vp_error_set(&j->err, st, "cannot encode a match");
    }
    j->n++;
    return VP_OK;
}

/*
 * C-FIND (PS3.4 C.4.1): the identifier is compiled to one query of the index (src/qry); each
 * match is answered Pending (FF00) with its identifier, then a final Success. The query reads
 * through the index's read connection (commits go on meanwhile); the matches are encoded
 * while it is read and sent once it is released, so a slow peer never holds it.
 */
static vp_status find(struct assoc *a, const uint8_t *data, size_t len, vp_error *err)
{
    struct pc *pc = pc_of(a, a->rq_pc);
    int model = pc ? find_model(pc->abstract_syntax) : -1;
    if (model < 0 || strcmp(a->rq.affected_sop_class_uid, pc->abstract_syntax) != 0)
        return respond(a, a->rq_pc, &a->rq, DIMSE_STATUS_DATASET_MISMATCH,
                       "Affected SOP Class UID is not the presentation context's", err);
    vp_error e = {0};
    dcm_dataset *id = NULL;
    qry *q = NULL;
    struct find_job j = {.ts = pc->transfer_syntax, .retrieve_ae = a->cfg->ae_title};
    vp_status st = dcm_dataset_read_mem(data, len, pc->transfer_syntax, NULL, &id, &e);
    qry_opts o = {.model = (qry_model)model, .pn_case_insensitive = true};
    if (st == VP_OK)
        st = qry_compile(id, &o, &q, &e);
    if (st == VP_OK) {
        j.q = q;
        size_t np = qry_param_count(q);
        const char **params = vp_malloc((np + 1) * sizeof *params);
        if (!params) {
            st = vp_error_set(&e, VP_ENOMEM, "out of memory");
        } else {
            for (size_t i = 0; i < np; i++)
                params[i] = qry_param(q, i);
            st = ingest_select(a->sh->ingest, qry_sql(q), params, np, find_row, &j, &e);
            if (st == VP_ELIMIT && j.truncated)
                st = VP_OK;
            else if (st && j.err.status)
                e = j.err;
            vp_free(params);
        }
    }
    vp_status sst = VP_OK;
    for (size_t i = 0; st == VP_OK && sst == VP_OK && i < j.n; i++) {
        dimse_msg rsp;
        if ((sst = dimse_msg_response(&rsp, &a->rq, DIMSE_STATUS_PENDING)) == VP_OK) {
            rsp.has_dataset = true;
            if ((sst = send_response(a, a->rq_pc, &rsp, err)) == VP_OK &&
                (sst = ul_assoc_send_pdata(a->ul, a->rq_pc, false, j.sets[i].data, j.sets[i].len,
                                           true, err)) == VP_OK)
                sst = flush(a, err);
        }
    }
    for (size_t i = 0; i < j.n; i++)
        vp_buf_fini(&j.sets[i]);
    vp_free(j.sets);
    qry_free(q);
    dcm_dataset_free(id);
    if (sst)
        return sst;
    a->rep->finds++;
    if (st)
        return respond(a, a->rq_pc, &a->rq, dimse_status_from_vp(DIMSE_SVC_FIND, st), e.msg, err);
    if (j.truncated)
        return respond(a, a->rq_pc, &a->rq, DIMSE_STATUS_OUT_OF_RESOURCES,
                       "more matches than answered: narrow the query", err);
    return respond(a, a->rq_pc, &a->rq, DIMSE_STATUS_SUCCESS, NULL, err);
}

/* One DIMSE event from the reassembler. */
static vp_status on_dimse(struct assoc *a, const dimse_event *ev, vp_error *err)
{
    switch (ev->type) {
    case DIMSE_EV_NONE: return VP_OK;
    case DIMSE_EV_COMMAND: {
        const dimse_msg *m = ev->msg;
        a->rq = *m;
        a->rq_pc = ev->context_id;
        if (m->command_field == DIMSE_C_ECHO_RQ && !m->has_dataset) {
            a->rep->echoes++;
            return respond(a, ev->context_id, m, DIMSE_STATUS_SUCCESS, NULL, err);
        }
        if (m->command_field == DIMSE_C_STORE_RQ && m->has_dataset) {
            store_begin(a, ev->context_id, m);
            return VP_OK;
        }
        if (m->command_field == DIMSE_C_FIND_RQ && m->has_dataset &&
            dimse_assembler_collect(a->dimse, FIND_IDENTIFIER_MAX) == VP_OK) {
            a->in_find = true; /* answered when the identifier is complete */
            return VP_OK;
        }
        if (dimse_command_is_response(m->command_field) || m->command_field == DIMSE_C_CANCEL_RQ)
            return m->has_dataset ? (a->skipping = true, VP_OK) : VP_OK; /* nothing to answer */
        if (m->has_dataset) {
            a->skipping = true; /* answered when its data set has passed */
            return VP_OK;
        }
        return respond(a, ev->context_id, m, DIMSE_STATUS_UNRECOGNIZED_OPERATION,
                       "service not provided by this SCP", err);
    }
    case DIMSE_EV_BAD_COMMAND: {
        /* A request we can answer (it has a Message ID): a failure status, not an abort. */
        const dimse_msg *m = ev->msg;
        if (!(m->present & DIMSE_F_MESSAGE_ID) || dimse_command_is_response(m->command_field) ||
            !dimse_command_known(m->command_field) || m->command_field == DIMSE_C_CANCEL_RQ) {
            abort_assoc(a, "command set cannot be decoded");
            return VP_ECLOSED;
        }
        enum dimse_service svc = dimse_service_of(m->command_field);
        uint16_t status = dimse_status_from_vp(svc, ev->decode_status);
        return respond(a, ev->context_id, m, status, err->msg, err);
    }
    case DIMSE_EV_DATA:
        if (a->in_store) {
            a->rep->bytes += ev->len;
            if (a->stream && ev->len) {
                vp_error e = {0};
                vp_status st = ingest_stream_write(a->stream, ev->data, ev->len, &e);
                if (st)
                    store_fail(a, st, &e);
            }
            return ev->is_last ? store_end(a, err) : VP_OK;
        }
        if (ev->is_last && a->skipping) {
            a->skipping = false;
            if (dimse_command_is_response(a->rq.command_field) ||
                a->rq.command_field == DIMSE_C_CANCEL_RQ)
                return VP_OK;
            return respond(a, a->rq_pc, &a->rq, DIMSE_STATUS_UNRECOGNIZED_OPERATION,
                           "service not provided by this SCP", err);
        }
        return VP_OK;
    case DIMSE_EV_MESSAGE:
        if (!a->in_find)
            return VP_OK;
        a->in_find = false;
        return find(a, ev->data, ev->len, err);
    }
    return VP_OK;
}

/* An A-ASSOCIATE-RQ arrived: negotiate (PS3.8 9.3.3 / 9.3.4) and answer. */
static vp_status on_request(struct assoc *a, const ul_associate *rq, vp_error *err)
{
    snprintf(a->rep->calling_ae, sizeof a->rep->calling_ae, "%s", rq->calling_ae);
    snprintf(a->rep->called_ae, sizeof a->rep->called_ae, "%s", rq->called_ae);
    const config *cfg = a->cfg;
    const char *calling[CONFIG_MAX_CALLING_AES + 1];
    for (size_t i = 0; i < cfg->calling_ae_count; i++)
        calling[i] = cfg->calling_aes[i];
    calling[cfg->calling_ae_count] = NULL;
    /* Count ourselves first, then test: two racing requests cannot both take the last place. */
    unsigned n = atomic_fetch_add(&a->sh->established, 1) + 1;
    a->established = true;
    ul_syntax_policy scratch = {0};
    ul_policy policy = {.ae_title = cfg->ae_title,
                        .require_called_ae = cfg->require_called_ae,
                        .calling_aes = cfg->calling_ae_count ? calling : NULL,
                        .limit_reached = n > cfg->max_associations || atomic_load(&a->sh->stopping),
                        .lookup = lookup,
                        .lookup_ctx = &scratch};
    vp_arena *arena = vp_arena_new(0);
    if (!arena)
        return vp_error_set(err, VP_ENOMEM, "out of memory");
    bool accepted = false;
    ul_associate ac;
    ul_reject rj;
    vp_status st = ul_negotiate(rq, &policy, arena, &accepted, &ac, &rj, err);
    if (st == VP_OK && accepted) {
        for (size_t i = 0; i < ac.ac_pc_count; i++) {
            struct pc *pc = pc_of(a, ac.ac_pcs[i].id);
            if (!pc || ac.ac_pcs[i].result != UL_PC_ACCEPTANCE)
                continue;
            pc->accepted = true;
            snprintf(pc->transfer_syntax, sizeof pc->transfer_syntax, "%s",
                     ac.ac_pcs[i].transfer_syntax);
            for (size_t k = 0; k < rq->rq_pc_count; k++)
                if (rq->rq_pcs[k].id == ac.ac_pcs[i].id)
                    snprintf(pc->abstract_syntax, sizeof pc->abstract_syntax, "%s",
                             rq->rq_pcs[k].abstract_syntax);
        }
        st = ul_assoc_accept(a->ul, &ac, err);
    } else if (st == VP_OK) {
        static const char *const reasons[8] = {[1] = "no reason given",
                                               [2] = "application context name not supported",
                                               [3] = "calling AE title not recognized",
                                               [7] = "called AE title not recognized"};
        const char *why = rj.source == UL_RJ_SOURCE_PROVIDER_PRESENTATION ? "too many associations"
                          : rj.source == UL_RJ_SOURCE_PROVIDER_ACSE
                              ? "protocol version not supported"
                          : rj.reason < 8 && reasons[rj.reason] ? reasons[rj.reason]
                                                                : "rejected";
        set_result(a, "rejected: %s", why);
        st = ul_assoc_reject(a->ul, &rj, err);
        atomic_fetch_sub(&a->sh->established, 1);
        a->established = false;
    }
    vp_arena_free(arena);
    return st;
}

static const char *abort_reason_name(uint8_t r)
{
    switch (r) {
    case UL_ABORT_REASON_UNRECOGNIZED_PDU: return "unrecognized PDU";
    case UL_ABORT_REASON_UNEXPECTED_PDU: return "unexpected PDU";
    case UL_ABORT_REASON_UNRECOGNIZED_PARAMETER: return "unrecognized PDU parameter";
    case UL_ABORT_REASON_UNEXPECTED_PARAMETER: return "unexpected PDU parameter";
    case UL_ABORT_REASON_INVALID_PARAMETER: return "invalid PDU parameter value";
    default: return "reason not specified";
    }
}

static size_t take_events(struct assoc *a, ul_event *evs, size_t cap)
{
    size_t n = 0;
    while (n < cap && ul_assoc_event_next(a->ul, &evs[n]))
        n++;
    return n;
}

/* Drains the upper layer's events after an input call. VP_ECLOSED when the connection is
 * done. */
static vp_status on_events(struct assoc *a, vp_error *err)
{
    vp_status st = VP_OK;
    /* Events are copied out first: the calls that answer them (accept, P-DATA, release) are
     * input calls of their own, which reset the queue and may queue new events. The PDU they
     * point to stays valid until the next feed. */
    ul_event evs[16];
    size_t n;
    while ((n = take_events(a, evs, 16)) > 0)
        for (size_t k = 0; k < n; k++) {
            const ul_event ev = evs[k];
            if (ev.pdu)
                a->pdu_seen = true;
            switch (ev.type) {
            case UL_EV_ARTIM_START:
                a->artim =
                    net_deadline(a->cfg->artim_timeout_ms ? a->cfg->artim_timeout_ms : 30000);
                break;
            case UL_EV_ARTIM_STOP: a->artim = 0; break;
            case UL_EV_ASSOCIATE_INDICATION:
                if (st == VP_OK)
                    st = on_request(a, &ev.pdu->assoc, err);
                break;
            case UL_EV_P_DATA:
                for (size_t i = 0; st == VP_OK && i < ev.pdu->pdv_count; i++) {
                    const ul_pdv *p = &ev.pdu->pdvs[i];
                    dimse_pdv d = {.context_id = p->pc_id,
                                   .is_command = p->control & UL_PDV_COMMAND,
                                   .is_last = p->control & UL_PDV_LAST,
                                   .data = p->data,
                                   .len = p->len};
                    dimse_event de;
                    vp_error derr = {0};
                    vp_status fst = dimse_assembler_feed(a->dimse, &d, &de, &derr);
                    if (fst) {
                        abort_assoc(a, derr.msg);
                        st = VP_ECLOSED;
                        break;
                    }
                    if ((st = on_dimse(a, &de, &derr)) && st != VP_ECLOSED)
                        *err = derr;
                }
                break;
            case UL_EV_RELEASE_INDICATION:
                set_result(a, "%s", "released");
                if (st == VP_OK)
                    st = ul_assoc_release_response(a->ul, err);
                break;
            case UL_EV_ABORT:
                if (ev.provider)
                    set_result(a, "aborted: %s",
                               ev.detail && *ev.detail ? ev.detail : abort_reason_name(ev.reason));
                else
                    set_result(a, "%s", "aborted by the peer");
                /* Whoever aborted, nothing more will be said: close now rather than wait for
                 * the peer to (PS3.8 AA-1 allows either). */
                flush(a, err);
                a->closed = true;
                break;
            case UL_EV_TRANSPORT_CLOSE:
                flush(a, err);
                a->closed = true;
                break;
            default: break;
            }
        }
    vp_status fst = flush(a, err);
    if (st == VP_OK)
        st = fst;
    return a->closed ? VP_ECLOSED : st;
}

void scp_run(scp_shared *sh, int fd, const char *peer, scp_report *rep)
{
    memset(rep, 0, sizeof *rep);
    snprintf(rep->peer, sizeof rep->peer, "%s", peer);
    int64_t start = net_now_ms();
    struct assoc a = {.sh = sh, .cfg = sh->cfg, .fd = fd, .rep = rep};
    vp_buf_init(&a.cmd, 0);
    vp_error err = {0};
    ul_assoc_opts o = {.requestor = false, .max_pdu_length = sh->cfg->max_pdu_length};
    size_t cap = (size_t)(sh->cfg->max_pdu_length ? sh->cfg->max_pdu_length : 16384) + 6;
    if (cap > (1u << 20))
        cap = 1u << 20;
    uint8_t *buf = vp_malloc(cap);
    a.dimse = dimse_assembler_new(0);
    if (!buf || !a.dimse || ul_assoc_new(&o, &a.ul, &err) != VP_OK) {
        set_result(&a, "%s", "refused: out of memory");
        goto done;
    }
    vp_status st = ul_assoc_transport_accepted(a.ul, &err);
    if (st == VP_OK)
        st = on_events(&a, &err);
    int64_t idle_ms = sh->cfg->idle_timeout_ms ? sh->cfg->idle_timeout_ms : 300000;
    a.idle = net_deadline(idle_ms);
    while (st == VP_OK) {
        /* Wait for the earliest of ARTIM and (once established) the idle deadline. */
        enum ul_state s = ul_assoc_state(a.ul);
        int64_t deadline = a.artim ? a.artim : NET_NO_DEADLINE;
        if (s == UL_STA6 && a.idle < deadline)
            deadline = a.idle;
        size_t got = 0;
        vp_error rerr = {0};
        st = net_read(fd, buf, cap, deadline, &got, &rerr);
        if (st == VP_ETIMEOUT) {
            if (a.artim && net_now_ms() >= a.artim) {
                set_result(&a, "%s",
                           s == UL_STA2 ? "timed out: no A-ASSOCIATE-RQ (ARTIM)"
                                        : "timed out waiting for the peer to close (ARTIM)");
                if (ul_assoc_artim_expired(a.ul, &err) == VP_OK)
                    on_events(&a, &err);
            } else {
                set_result(&a, "%s", "timed out: association idle");
                abort_assoc(&a, "idle");
            }
            break;
        }
        if (st) {
            if (st == VP_ECLOSED && s != UL_STA13 && s != UL_STA1)
                set_result(&a, "%s", "connection closed by the peer");
            else if (st != VP_ECLOSED)
                set_result(&a, "connection error: %s", rerr.msg);
            ul_assoc_transport_closed(a.ul, &err);
            break;
        }
        size_t off = 0;
        while (st == VP_OK && off < got) {
            size_t used = 0;
            st = ul_assoc_feed(a.ul, buf + off, got - off, &used, &err);
            off += used;
            if (st == VP_OK)
                st = on_events(&a, &err);
            if (st != VP_OK && st != VP_ECLOSED)
                abort_assoc(&a, err.msg); /* we cannot go on: say so before closing */
            if (used == 0)
                break; /* cannot happen: feed takes at least a byte */
        }
        /* Whole PDUs restart the idle clock; bytes alone do not (slow senders). */
        if (a.pdu_seen)
            a.idle = net_deadline(idle_ms);
        a.pdu_seen = false;
    }
    if (a.in_store || a.stream) {
        ingest_stream_cancel(a.stream);
        a.stream = NULL;
        if (a.in_store)
            rep->failures++;
    }
    if (!rep->result[0])
        set_result(&a, "%s", st == VP_ECLOSED ? "closed" : err.msg[0] ? err.msg : "ended");
done:
    if (a.established)
        atomic_fetch_sub(&sh->established, 1);
    ul_assoc_free(a.ul);
    dimse_assembler_free(a.dimse);
    vp_buf_fini(&a.cmd);
    vp_free(buf);
    close(fd);
    rep->duration_ms = net_now_ms() - start;
}
