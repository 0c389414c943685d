/* SPDX-License-Identifier: MIT */
/*
 * One association as service provider. The loop reads the socket with a deadline, feeds the
 * bytes to the upper layer (ul_assoc, PS3.8 state machine), passes P-DATA to the DIMSE
 * reassembler and answers each message:
 *  - C-ECHO-RQ: Success (PS3.4 A.4).
 *  - C-STORE-RQ: the data set streams into the ingest pipeline as its PDVs arrive; the
 *    C-STORE-RSP is sent after ingest_stream_end, i.e. after the object file, its directory
 *    entry and its index row are durable (PS3.4 B.2.3 statuses, via dimse_status_from_vp).
 *  - C-FIND-RQ, C-MOVE-RQ, C-GET-RQ (PS3.4 C.4): the identifier is compiled to one query of
 *    the index (src/qry) and the request becomes a job that the association's loop steps
 *    between reads of the socket: C-FIND answers are sent as the rows are read, C-MOVE
 *    sub-operations go to the destination on an association of their own, C-GET ones come
 *    back as C-STORE-RQs on this association, and a C-CANCEL-RQ arriving meanwhile ends the
 *    job with Cancel (FE00) at the next step.
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

#include "app/log.h"
#include "app/scp.h"
#include "app/scu.h"
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

/* Query/Retrieve SOP classes (PS3.4 C.6.1.1, C.6.2.1): information model and service. */
static const struct qr_class {
    const char *uid;
    qry_model model;
    uint16_t command; /* the request this SOP class serves */
} qr_classes[] = {
    {"1.2.840.10008.5.1.4.1.2.1.1", QRY_MODEL_PATIENT_ROOT, DIMSE_C_FIND_RQ},
    {"1.2.840.10008.5.1.4.1.2.1.2", QRY_MODEL_PATIENT_ROOT, DIMSE_C_MOVE_RQ},
    {"1.2.840.10008.5.1.4.1.2.1.3", QRY_MODEL_PATIENT_ROOT, DIMSE_C_GET_RQ},
    {"1.2.840.10008.5.1.4.1.2.2.1", QRY_MODEL_STUDY_ROOT, DIMSE_C_FIND_RQ},
    {"1.2.840.10008.5.1.4.1.2.2.2", QRY_MODEL_STUDY_ROOT, DIMSE_C_MOVE_RQ},
    {"1.2.840.10008.5.1.4.1.2.2.3", QRY_MODEL_STUDY_ROOT, DIMSE_C_GET_RQ},
    /* Modality Worklist Information Model - FIND (PS3.4 K.6.1.1) */
    {"1.2.840.10008.5.1.4.31", QRY_MODEL_WORKLIST, DIMSE_C_FIND_RQ},
};

static const struct qr_class *qr_class_of(const char *uid)
{
    for (size_t i = 0; i < sizeof qr_classes / sizeof qr_classes[0]; i++)
        if (strcmp(uid, qr_classes[i].uid) == 0)
            return &qr_classes[i];
    return NULL;
}

bool scp_abstract_syntax_supported(const char *uid)
{
    if (strcmp(uid, VERIFICATION_SOP_CLASS) == 0 || qr_class_of(uid))
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

/* Negotiation lookup: every supported abstract syntax, any transfer syntax of the registry
 * (stored as it comes: compressed objects are kept compressed). We are the SCP of each; of
 * the Storage SOP classes we may also be the SCU, when the requestor proposes to be their
 * SCP (Role Selection, PS3.7 D.3.3.4) to take the C-STORE sub-operations of a C-GET. */
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
    p->scu_role = !qr_class_of(abstract_syntax);
    return p;
}

/* An accepted presentation context: what was agreed for its ID. */
struct pc {
    bool accepted;
    bool peer_scp; /* the requestor took the SCP role: C-GET sub-operations may use it */
    char abstract_syntax[DCM_UID_MAX + 1];
    char transfer_syntax[DCM_UID_MAX + 1];
};

/* An object to send in a C-MOVE or C-GET sub-operation. The strings live in one block. */
struct item {
    char *sop_class, *sop_uid, *path, *ts; /* ts: the stored transfer syntax */
};

enum job_kind { JOB_NONE, JOB_FIND, JOB_MOVE, JOB_GET };

/* The C-FIND, C-MOVE or C-GET being answered (one at a time: we answer the Asynchronous
 * Operations Window 1/1). The association's loop steps it between reads of the socket. */
struct job {
    enum job_kind kind;
    dimse_msg rq; /* the request */
    uint8_t pc;   /* its presentation context */
    bool cancel;  /* a C-CANCEL-RQ for it arrived (PS3.7 9.3.2.3) */
    idx *reader;  /* read connection lent by ingest */
    /* C-FIND */
    dcm_dataset *id;     /* the identifier */
    qry *q;              /* compiled */
    const char **params; /* its parameters, for the cursor */
    idx_cursor *cur;     /* matches not answered yet */
    uint32_t answered;   /* Pending responses sent */
    qry_model model;     /* information model of the context */
    vp_buf answer;       /* one encoded identifier */
    vp_buf pending;      /* the encoded command set of every Pending response */
    /* C-MOVE, C-GET */
    struct item *items; /* what to send */
    size_t n, next;     /* items, and the next to send */
    uint16_t completed, failed, warning;
    vp_buf failed_uids;  /* Failed SOP Instance UID List, backslash-separated */
    scu *dest;           /* C-MOVE: the association to the Move Destination */
    char dest_name[300]; /* "AE at host:port", for messages */
    vp_error dest_err;   /* why the destination could not be used */
    bool awaiting;       /* C-GET: a C-STORE-RQ is out, its response due */
    uint16_t store_id;   /* its Message ID */
    uint16_t next_id;    /* Message ID of our next C-STORE-RQ */
    vp_buf cmd;          /* our C-STORE-RQ command set */
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
    bool collecting;        /* a C-FIND/C-MOVE/C-GET identifier is being collected */
    struct job job;         /* the query or retrieval being answered */
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

/* Largest identifier collected: a list of 20,000 UIDs of 64 characters (twice what a key may
 * hold) is 1.3 MB. A longer one is skipped and refused with a status. */
#define IDENTIFIER_MAX (4u << 20)
/* Matches answered before the final status says the query was too broad (A700). */
#define FIND_MAX_MATCHES 10000
/* Matches answered per step of a C-FIND, between looks at the socket for a C-CANCEL-RQ. */
#define FIND_STEP 32
/* Objects one C-MOVE or C-GET may select (A701 beyond: the list is held in memory). */
#define RETRIEVE_MAX 500000

#define TAG_RETRIEVE_AE_TITLE DCM_TAG(0x0008, 0x0054)
#define TAG_FAILED_SOP_INSTANCE_UID_LIST DCM_TAG(0x0008, 0x0058)

/* Encodes the answer identifier of one matching row into j->answer. */
static vp_status encode_answer(struct assoc *a, const char *const *cols, size_t ncols,
                               vp_error *err)
{
    struct job *j = &a->job;
    struct pc *pc = pc_of(a, j->pc);
    dcm_dataset *ds = dcm_dataset_new();
    if (!ds)
        return vp_error_set(err, VP_ENOMEM, "out of memory");
    /* PS3.4 C.4.1.1.3.2, K.4.1.1.3.2: the answer holds the keys asked for, in UTF-8 as the
     * index has them (qry_answer); for Query/Retrieve, Retrieve AE Title says where to C-MOVE
     * or C-GET the match from: us. */
    vp_status st = qry_answer(j->q, cols, ncols, ds, err);
    if (st == VP_OK && j->model != QRY_MODEL_WORKLIST)
        st = dcm_dataset_set_str(ds, TAG_RETRIEVE_AE_TITLE, DCM_VR_AE, a->cfg->ae_title);
    vp_buf_reset(&j->answer);
    if (st == VP_OK) {
        dcm_sink sink = dcm_sink_buf(&j->answer);
        st = dcm_dataset_write(ds, pc->transfer_syntax, NULL, &sink, err);
    } else if (!err->msg[0]) {
        vp_error_set(err, st, "cannot build a match");
    }
    dcm_dataset_free(ds);
    return st;
}

/* Ends the job: frees what it holds, gives the read connection back. */
static void job_end(struct assoc *a)
{
    struct job *j = &a->job;
    idx_cursor_close(j->cur);
    ingest_reader_give(a->sh->ingest, j->reader);
    qry_free(j->q);
    dcm_dataset_free(j->id);
    vp_free(j->params);
    vp_buf_fini(&j->answer);
    vp_buf_fini(&j->pending);
    for (size_t i = 0; i < j->n; i++)
        vp_free(j->items[i].sop_class);
    vp_free(j->items);
    vp_buf_fini(&j->failed_uids);
    vp_buf_fini(&j->cmd);
    if (j->dest) {
        vp_error e = {0};
        if (scu_usable(j->dest))
            scu_release(j->dest, &e);
        scu_close(j->dest);
    }
    memset(j, 0, sizeof *j);
}

/* Whether the job has work to do without waiting for the peer. */
static bool job_ready(const struct assoc *a)
{
    return a->job.kind != JOB_NONE && !a->job.awaiting;
}

/* Checks the request against its presentation context and compiles its identifier. */
static vp_status job_compile(struct assoc *a, const uint8_t *data, size_t len, vp_error *err)
{
    struct job *j = &a->job;
    struct pc *pc = pc_of(a, j->pc);
    const struct qr_class *qc = pc ? qr_class_of(pc->abstract_syntax) : NULL;
    /* PS3.7 9.1.2.1: the Affected SOP Class UID is the context's abstract syntax. */
    if (!qc || qc->command != j->rq.command_field ||
        strcmp(j->rq.affected_sop_class_uid, pc->abstract_syntax) != 0)
        return vp_error_set(err, VP_EINVAL,
                            "Affected SOP Class UID is not the presentation context's");
    vp_status st = dcm_dataset_read_mem(data, len, pc->transfer_syntax, NULL, &j->id, err);
    if (st != VP_OK)
        return st;
    j->model = qc->model;
    /* Retrieval selects by unique keys (PS3.4 C.4.2.2.1): keys below the level are dropped
     * rather than refused, as peers send the full path. */
    qry_opts o = {
        .model = qc->model, .pn_case_insensitive = true, .ignore_lower_keys = j->kind != JOB_FIND};
    if ((st = qry_compile(j->id, &o, &j->q, err)) != VP_OK)
        return st;
    size_t np = qry_param_count(j->q);
    if (!(j->params = vp_malloc((np + 1) * sizeof *j->params)))
        return vp_error_set(err, VP_ENOMEM, "out of memory");
    for (size_t i = 0; i < np; i++)
        j->params[i] = qry_param(j->q, i);
    return ingest_reader_take(a->sh->ingest, &j->reader, err);
}

/* Queues one response of the job, with an identifier when data is not NULL: command and
 * identifier in one PDU when they fit (ul_assoc_send_message). */
static vp_status job_queue(struct assoc *a, const dimse_msg *rsp, const vp_buf *data, vp_error *err)
{
    vp_buf_reset(&a->cmd);
    vp_status st = dimse_msg_encode(rsp, &a->cmd, err);
    if (st == VP_OK)
        st = ul_assoc_send_message(a->ul, a->job.pc, a->cmd.data, a->cmd.len,
                                   data ? data->data : NULL, data ? data->len : 0, err);
    return st;
}

/* Sends it at once. */
static vp_status job_send(struct assoc *a, const dimse_msg *rsp, const vp_buf *data, vp_error *err)
{
    vp_status st = job_queue(a, rsp, data, err);
    return st == VP_OK ? flush(a, err) : st;
}

/* The final response of a failed request (before any match or sub-operation). */
static vp_status job_fail(struct assoc *a, vp_status st, const vp_error *e, vp_error *err)
{
    struct job *j = &a->job;
    enum dimse_service svc = dimse_service_of(j->rq.command_field);
    dimse_msg rq = j->rq;
    uint8_t pc = j->pc;
    job_end(a);
    return respond(a, pc, &rq, dimse_status_from_vp(svc, st), e->msg, err);
}

/* One step of a C-FIND (PS3.4 C.4.1.2): up to FIND_STEP matches answered Pending (FF00)
 * with their identifiers, or the final response: Success, Cancel (FE00) after a C-CANCEL-RQ,
 * A700 when the query matches more than FIND_MAX_MATCHES. */
static vp_status find_step(struct assoc *a, vp_error *err)
{
    struct job *j = &a->job;
    vp_status st = VP_OK;
    vp_error e = {0};
    uint16_t final = DIMSE_STATUS_SUCCESS;
    const char *comment = NULL;
    for (int n = 0; n < FIND_STEP; n++) {
        if (j->cancel) {
            final = DIMSE_STATUS_CANCEL;
            break;
        }
        const char *const *cols;
        size_t ncols;
        st = idx_cursor_next(j->cur, &cols, &ncols, &e);
        if (st == VP_ENOTFOUND) {
            st = VP_OK;
            break;
        }
        if (st == VP_OK && j->answered == FIND_MAX_MATCHES) {
            final = DIMSE_STATUS_OUT_OF_RESOURCES;
            comment = "more matches than answered: narrow the query";
            break;
        }
        if (st == VP_OK)
            st = encode_answer(a, cols, ncols, &e);
        if (st != VP_OK) {
            final = dimse_status_from_vp(DIMSE_SVC_FIND, st);
            comment = e.msg;
            st = VP_OK;
            break;
        }
        /* Every Pending response has the same command set: encoded once per C-FIND. */
        if (j->pending.len == 0) {
            dimse_msg rsp;
            if ((st = dimse_msg_response(&rsp, &j->rq, DIMSE_STATUS_PENDING)) != VP_OK)
                return vp_error_set(err, st, "cannot build a C-FIND-RSP");
            rsp.has_dataset = true;
            if ((st = dimse_msg_encode(&rsp, &j->pending, err)) != VP_OK)
                return st;
        }
        /* The answers of a step go out in one write. */
        if ((st = ul_assoc_send_message(a->ul, j->pc, j->pending.data, j->pending.len,
                                        j->answer.data, j->answer.len, err)) != VP_OK)
            return st;
        j->answered++;
        if (n == FIND_STEP - 1)
            return flush(a, err); /* more next step, after a look for a C-CANCEL-RQ */
    }
    dimse_msg rq = j->rq;
    uint8_t pc = j->pc;
    job_end(a);
    a->rep->finds++;
    return respond(a, pc, &rq, final, comment, err);
}

/* Begins a C-FIND once its identifier is complete. */
static vp_status find_begin(struct assoc *a, const uint8_t *data, size_t len, vp_error *err)
{
    struct job *j = &a->job;
    vp_error e = {0};
    vp_status st = job_compile(a, data, len, &e);
    if (st == VP_OK)
        st = idx_cursor_open(j->reader, qry_sql(j->q), j->params, qry_param_count(j->q), &j->cur,
                             &e);
    if (st != VP_OK) {
        a->rep->finds++;
        return job_fail(a, st, &e, err);
    }
    return VP_OK; /* answered by find_step */
}

/* The index's id column of each level, to select the instances under the matches. */
static const char *const level_id[] = {
    [QRY_LEVEL_PATIENT] = "study.patient",
    [QRY_LEVEL_STUDY] = "study.id",
    [QRY_LEVEL_SERIES] = "series.id",
    [QRY_LEVEL_IMAGE] = "instance.id",
};

/* Unique key of each level (PS3.4 C.6.1.1, C.6.2.1). */
static const uint32_t level_unique[] = {
    [QRY_LEVEL_PATIENT] = DCM_TAG(0x0010, 0x0020),
    [QRY_LEVEL_STUDY] = DCM_TAG(0x0020, 0x000D),
    [QRY_LEVEL_SERIES] = DCM_TAG(0x0020, 0x000E),
    [QRY_LEVEL_IMAGE] = DCM_TAG(0x0008, 0x0018),
};

/* Reads the objects a C-MOVE or C-GET selects into j->items. */
static vp_status retrieve_list(struct assoc *a, vp_error *err)
{
    struct job *j = &a->job;
    qry_level level = qry_get_level(j->q);
    /* PS3.4 C.4.2.2.1 (and C.4.3.2.1): the Identifier holds the Unique Key of the retrieve
     * level, a single value or a list of UIDs. Without it the request would select the whole
     * archive. */
    const char *v = NULL;
    size_t vlen = 0;
    if (dcm_dataset_get_str(j->id, level_unique[level], 0, &v, &vlen) != VP_OK || vlen == 0 ||
        !v[strspn(v, " *?")])
        return vp_error_set(err, VP_EINVAL, "Identifier lacks the %s unique key (%04X,%04X)",
                            qry_level_name(level), DCM_GROUP(level_unique[level]),
                            DCM_ELEMENT(level_unique[level]));
    vp_buf sql;
    vp_buf_init(&sql, 0);
    vp_status st = vp_buf_printf(&sql,
                                 "SELECT instance.sop_class, instance.sop_uid, instance.path,"
                                 " instance.transfer_syntax"
                                 " FROM instance JOIN series ON series.id = instance.series"
                                 " JOIN study ON study.id = series.study"
                                 " WHERE %s IN (SELECT id FROM (%s))"
                                 " ORDER BY series.id, instance.id",
                                 level_id[level], qry_sql(j->q));
    idx_cursor *c = NULL;
    if (st == VP_OK)
        st = idx_cursor_open(j->reader, (const char *)sql.data, j->params, qry_param_count(j->q),
                             &c, err);
    else
        vp_error_set(err, st, "out of memory");
    size_t cap = 0;
    while (st == VP_OK) {
        const char *const *cols;
        size_t ncols;
        st = idx_cursor_next(c, &cols, &ncols, err);
        if (st == VP_ENOTFOUND) {
            st = VP_OK;
            break;
        }
        if (st != VP_OK)
            break;
        if (ncols < 4 || !cols[0] || !cols[1] || !cols[2] || !cols[3])
            continue;
        if (j->n == RETRIEVE_MAX) {
            st = vp_error_set(err, VP_ELIMIT, "more than %u objects selected: narrow the request",
                              RETRIEVE_MAX);
            break;
        }
        if (j->n == cap) {
            cap = cap ? cap * 2 : 64;
            struct item *v2 = vp_realloc(j->items, cap * sizeof *v2);
            if (!v2) {
                st = vp_error_set(err, VP_ENOMEM, "out of memory");
                break;
            }
            j->items = v2;
        }
        size_t l[4], total = 0;
        for (int k = 0; k < 4; k++)
            total += l[k] = strlen(cols[k]) + 1;
        char *b = vp_malloc(total);
        if (!b) {
            st = vp_error_set(err, VP_ENOMEM, "out of memory");
            break;
        }
        struct item *it = &j->items[j->n++];
        char **field[4] = {&it->sop_class, &it->sop_uid, &it->path, &it->ts};
        for (int k = 0; k < 4; k++) {
            memcpy(b, cols[k], l[k]);
            *field[k] = b;
            b += l[k];
        }
    }
    idx_cursor_close(c);
    vp_buf_fini(&sql);
    /* The list is read: the connection goes back before the (long) sub-operations. */
    ingest_reader_give(a->sh->ingest, j->reader);
    j->reader = NULL;
    return st;
}

/* Opens the association to a C-MOVE's destination, proposing for each SOP class to send its
 * objects' stored transfer syntaxes and the uncompressed ones (PS3.4 C.4.2.3.1: the
 * sub-operations are C-STOREs on an association of their own). */
static vp_status move_connect(struct assoc *a, const config_remote *r, vp_error *err);

/* The responses of a C-MOVE or C-GET with the sub-operation counts (PS3.4 C.4.2.1.5). */
static vp_status retrieve_respond(struct assoc *a, uint16_t status, const char *comment,
                                  vp_error *err)
{
    struct job *j = &a->job;
    dimse_msg rsp;
    vp_status st = dimse_msg_response(&rsp, &j->rq, status);
    if (st != VP_OK)
        return vp_error_set(err, st, "cannot build the response");
    uint16_t remaining = (uint16_t)(j->n - j->next > 65535 ? 65535 : j->n - j->next);
    dimse_msg_set_suboperations(&rsp, remaining, j->completed, j->failed, j->warning);
    enum dimse_status_class cls = dimse_status_class(status);
    /* Remaining is absent from final responses other than Cancel (PS3.4 Table C.4-2). */
    if (cls != DIMSE_CLASS_PENDING && cls != DIMSE_CLASS_CANCEL)
        rsp.present &= ~(uint32_t)DIMSE_F_REMAINING;
    if (comment && *comment && cls != DIMSE_CLASS_SUCCESS && cls != DIMSE_CLASS_PENDING)
        dimse_msg_set_error_comment(&rsp, comment);
    /* Failed SOP Instance UID List (0008,0058) in the final response's identifier when
     * sub-operations failed (PS3.4 C.4.2.1.5, C.4.3.1.5). */
    vp_buf id;
    vp_buf_init(&id, 0);
    bool with_id = cls != DIMSE_CLASS_PENDING && j->failed_uids.len > 0;
    if (with_id) {
        dcm_dataset *ds = dcm_dataset_new();
        struct pc *pc = pc_of(a, j->pc);
        st = ds ? dcm_dataset_set(ds, TAG_FAILED_SOP_INSTANCE_UID_LIST, DCM_VR_UI,
                                  j->failed_uids.data, j->failed_uids.len, NULL)
                : VP_ENOMEM;
        if (st == VP_OK) {
            dcm_sink sink = dcm_sink_buf(&id);
            st = dcm_dataset_write(ds, pc->transfer_syntax, NULL, &sink, err);
        }
        dcm_dataset_free(ds);
        if (st != VP_OK)
            with_id = false; /* the counts still say it */
        rsp.has_dataset = with_id;
    }
    st = job_send(a, &rsp, with_id ? &id : NULL, err);
    vp_buf_fini(&id);
    return st;
}

/* A reason already logged once for every object left (the destination is unreachable). */
static const char LOGGED[] = "";

/* Records the outcome of the current sub-operation (item j->next); why says what went wrong
 * for the log (NULL when the status says it all). */
static void suboperation_done(struct assoc *a, uint16_t status, const char *why)
{
    struct job *j = &a->job;
    enum dimse_status_class cls = dimse_status_class(status);
    if (cls != DIMSE_CLASS_SUCCESS && j->next < j->n && why != LOGGED)
        log_warn("%s of %s: %s not sent%s%s: %04X %s%s%s", j->kind == JOB_MOVE ? "C-MOVE" : "C-GET",
                 a->rep->calling_ae, j->items[j->next].sop_uid, j->dest_name[0] ? " to " : "",
                 j->dest_name, status, dimse_status_name(DIMSE_SVC_STORE, status),
                 why && *why ? ": " : "", why ? why : "");
    if (cls == DIMSE_CLASS_SUCCESS) {
        j->completed++;
    } else if (cls == DIMSE_CLASS_WARNING) {
        j->warning++;
    } else {
        j->failed++;
        const char *uid = j->items[j->next].sop_uid;
        /* A UI value holds UIDs separated by backslashes (PS3.5 6.4). */
        if ((j->failed_uids.len == 0 || vp_buf_append(&j->failed_uids, "\\", 1) == VP_OK))
            vp_buf_append(&j->failed_uids, uid, strlen(uid));
    }
    j->next++;
}

/* The final response of a C-MOVE or C-GET, and the end of the job. */
static vp_status retrieve_finish(struct assoc *a, vp_error *err)
{
    struct job *j = &a->job;
    uint16_t status = j->cancel ? DIMSE_STATUS_CANCEL
                                : dimse_status_suboperations(j->completed, j->failed, j->warning);
    const char *comment = j->dest_err.msg[0] ? j->dest_err.msg : NULL;
    if (!comment && j->failed)
        comment = "some objects were not sent: see Failed SOP Instance UID List";
    vp_status st = retrieve_respond(a, status, comment, err);
    if (j->kind == JOB_MOVE)
        a->rep->moves++;
    else
        a->rep->gets++;
    a->rep->sent += j->completed + j->warning;
    job_end(a);
    return st;
}

/* Full path of a stored object. */
static void object_path(const struct assoc *a, const char *rel, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", ingest_data_dir(a->sh->ingest), rel);
}

/* One C-MOVE sub-operation: the next object to the destination, then a Pending response. */
static vp_status move_step(struct assoc *a, vp_error *err)
{
    struct job *j = &a->job;
    if (j->cancel || j->next == j->n)
        return retrieve_finish(a, err);
    if (!j->dest || !scu_usable(j->dest)) {
        /* The destination is gone: what is left cannot be sent (one log line for all). */
        log_warn("C-MOVE of %s: %zu objects not sent to %s: %s", a->rep->calling_ae, j->n - j->next,
                 j->dest_name, j->dest_err.msg);
        while (j->next < j->n)
            suboperation_done(a, DIMSE_STATUS_OUT_OF_RESOURCES_SUBOPS, LOGGED);
        return retrieve_finish(a, err);
    }
    struct item *it = &j->items[j->next];
    char path[4096 + 256];
    object_path(a, it->path, path, sizeof path);
    scu_store_opts so = {.move_originator_ae = a->rep->calling_ae,
                         .move_originator_id = j->rq.message_id};
    scu_response rsp;
    vp_error e = {0};
    vp_status st = scu_store_path(j->dest, path, &so, &rsp, NULL, &e);
    uint16_t status = st == VP_OK ? rsp.status : DIMSE_STATUS_OUT_OF_RESOURCES_SUBOPS;
    if (st != VP_OK && !scu_usable(j->dest))
        snprintf(j->dest_err.msg, sizeof j->dest_err.msg, "%s", e.msg);
    suboperation_done(a, status, st != VP_OK ? e.msg : rsp.error_comment);
    if (j->next == j->n || j->cancel)
        return retrieve_finish(a, err);
    return retrieve_respond(a, DIMSE_STATUS_PENDING, NULL, err);
}

/* Sends one piece of a C-GET sub-operation's data set on this association. */
struct get_tx {
    struct assoc *a;
    uint8_t pc;
    bool started; /* the command set went out */
};

static vp_status get_piece(void *ctx, const uint8_t *p, size_t n, bool last, vp_error *err)
{
    struct get_tx *t = ctx;
    struct assoc *a = t->a;
    struct job *j = &a->job;
    vp_status st;
    if (!t->started) {
        if ((st = ul_assoc_send_pdata(a->ul, t->pc, true, j->cmd.data, j->cmd.len, true, err)))
            return st;
        t->started = true;
    }
    if ((st = ul_assoc_send_pdata(a->ul, t->pc, false, p, n, last, err)) == VP_OK)
        st = flush(a, err);
    return st;
}

/* One C-GET sub-operation (PS3.4 C.4.3.3.1): the next object as a C-STORE-RQ on this
 * association, in a context where the requestor took the SCP role; its C-STORE-RSP
 * (on_dimse) counts it and sends the Pending response. */
static vp_status get_step(struct assoc *a, vp_error *err)
{
    struct job *j = &a->job;
    while (!j->cancel && j->next < j->n) {
        struct item *it = &j->items[j->next];
        char path[4096 + 256];
        object_path(a, it->path, path, sizeof path);
        scu_file *f = NULL;
        vp_error e = {0};
        const char *abstract[128], *ts[128];
        for (size_t i = 0; i < 128; i++) {
            abstract[i] = a->pcs[i].abstract_syntax;
            ts[i] = a->pcs[i].accepted && a->pcs[i].peer_scp ? a->pcs[i].transfer_syntax : NULL;
        }
        bool reencode = false;
        size_t k = SIZE_MAX;
        if (scu_file_open(path, &f, &e) == VP_OK &&
            (k = scu_file_pick(f, abstract, ts, 128, &reencode)) == SIZE_MAX)
            vp_error_set(&e, VP_EUNSUPPORTED,
                         "no presentation context for %s in %s with the requestor as SCP",
                         it->sop_class, it->ts);
        dimse_msg m;
        if (k == SIZE_MAX || dimse_msg_store_rq(&m, j->next_id, DIMSE_PRIORITY_MEDIUM,
                                                it->sop_class, it->sop_uid) != VP_OK) {
            /* No context fits (the requestor did not offer the SOP class or a transfer
             * syntax we can send it in), or the object is unreadable: a failed
             * sub-operation. */
            scu_file_close(f);
            suboperation_done(a, DIMSE_STATUS_OUT_OF_RESOURCES_SUBOPS, e.msg);
            vp_status st = j->next == j->n || j->cancel
                               ? VP_OK
                               : retrieve_respond(a, DIMSE_STATUS_PENDING, NULL, err);
            if (st != VP_OK)
                return st;
            continue;
        }
        vp_buf_reset(&j->cmd);
        vp_status st = dimse_msg_encode(&m, &j->cmd, err);
        struct get_tx t = {.a = a, .pc = (uint8_t)(2 * k + 1)};
        if (st == VP_OK)
            st = scu_file_send(f, reencode ? ts[k] : NULL, get_piece, &t, &e);
        scu_file_close(f);
        if (st != VP_OK && t.started) {
            /* A message begun cannot be taken back (PS3.8 7.3): only an abort ends it. */
            vp_error_set(err, st, "C-GET sub-operation broken off: %s", e.msg);
            return st == VP_ECLOSED || st == VP_ETIMEOUT || st == VP_EIO ? st : VP_EPARSE;
        }
        if (st != VP_OK) {
            suboperation_done(a, DIMSE_STATUS_OUT_OF_RESOURCES_SUBOPS, e.msg);
            continue;
        }
        j->awaiting = true;
        j->store_id = j->next_id++;
        if (j->next_id == 0)
            j->next_id = 1;
        return VP_OK;
    }
    return retrieve_finish(a, err);
}

/* The C-STORE-RSP of a C-GET sub-operation. */
static vp_status get_stored(struct assoc *a, const dimse_msg *m, vp_error *err)
{
    struct job *j = &a->job;
    j->awaiting = false;
    suboperation_done(
        a, m->present & DIMSE_F_STATUS ? m->status : DIMSE_STATUS_OUT_OF_RESOURCES_SUBOPS,
        m->present & DIMSE_F_ERROR_COMMENT ? m->error_comment : NULL);
    if (j->next == j->n || j->cancel)
        return retrieve_finish(a, err);
    return retrieve_respond(a, DIMSE_STATUS_PENDING, NULL, err);
}

/* Begins a C-MOVE or C-GET once its identifier is complete. */
static vp_status retrieve_begin(struct assoc *a, const uint8_t *data, size_t len, vp_error *err)
{
    struct job *j = &a->job;
    vp_error e = {0};
    const config_remote *r = NULL;
    vp_status st = VP_OK;
    if (j->kind == JOB_MOVE) {
        /* PS3.4 C.4.2.1.5: A801 when the Move Destination is not known. */
        r = config_find_remote(a->cfg, j->rq.move_destination);
        if (!r) {
            vp_error_set(&e, VP_ENOTFOUND, "Move Destination unknown: %s", j->rq.move_destination);
            dimse_msg rq = j->rq;
            uint8_t pc = j->pc;
            job_end(a);
            a->rep->moves++;
            return respond(a, pc, &rq, DIMSE_STATUS_MOVE_DESTINATION_UNKNOWN, e.msg, err);
        }
    }
    if (st == VP_OK)
        st = job_compile(a, data, len, &e);
    if (st == VP_OK)
        st = retrieve_list(a, &e);
    if (st != VP_OK) {
        if (j->kind == JOB_MOVE)
            a->rep->moves++;
        else
            a->rep->gets++;
        /* A701: the matches could not be listed (PS3.4 C.4.2.1.5). */
        if (st == VP_ELIMIT || st == VP_ENOMEM) {
            dimse_msg rq = j->rq;
            uint8_t pc = j->pc;
            job_end(a);
            return respond(a, pc, &rq, DIMSE_STATUS_OUT_OF_RESOURCES_MATCHES, e.msg, err);
        }
        return job_fail(a, st, &e, err);
    }
    j->next_id = 1;
    if (j->kind == JOB_MOVE && j->n > 0 && move_connect(a, r, &j->dest_err) != VP_OK) {
        /* Every sub-operation fails: A702 with the reason (PS3.4 C.4.2.1.5). */
        log_warn("C-MOVE of %s: %zu objects not sent: %s", a->rep->calling_ae, j->n,
                 j->dest_err.msg);
        while (j->next < j->n)
            suboperation_done(a, DIMSE_STATUS_OUT_OF_RESOURCES_SUBOPS, LOGGED);
    }
    return VP_OK; /* the steps send the objects and the responses */
}

static vp_status move_connect(struct assoc *a, const config_remote *r, vp_error *err)
{
    struct job *j = &a->job;
    snprintf(j->dest_name, sizeof j->dest_name, "%s at %s:%u", r->ae_title, r->host, r->port);
    /* Distinct (SOP class, stored transfer syntax) pairs, as the index has them. */
    static const char *const native[] = {DCM_TS_EXPLICIT_LE, DCM_TS_IMPLICIT_LE};
    scu_context ctx[SCU_MAX_CONTEXTS];
    const char *ts_ptr[SCU_MAX_CONTEXTS];
    size_t n = 0;
    for (size_t i = 0; i < j->n && n + 2 <= SCU_MAX_CONTEXTS; i++) {
        const struct item *it = &j->items[i];
        bool have_class = false, have_ts = false;
        const char *ts = it->ts;
        for (size_t k = 0; k < n; k++) {
            if (strcmp(ctx[k].abstract_syntax, it->sop_class) != 0)
                continue;
            have_class = true;
            if (ctx[k].ts_count == 1 && strcmp(ctx[k].transfer_syntaxes[0], ts) == 0)
                have_ts = true;
        }
        if (!have_class) /* the uncompressed ones: any native object can be re-encoded */
            ctx[n++] = (scu_context){it->sop_class, 2, native, false};
        bool is_native = !strcmp(ts, native[0]) || !strcmp(ts, native[1]);
        if (ts[0] && !have_ts && !is_native) {
            ts_ptr[n] = ts;
            ctx[n] = (scu_context){it->sop_class, 1, &ts_ptr[n], false};
            n++;
        }
    }
    scu_opts o = {.calling_ae = a->cfg->ae_title,
                  .called_ae = r->ae_title,
                  .contexts = ctx,
                  .context_count = n,
                  .connect_timeout_ms = 15000,
                  .acse_timeout_ms = 30000,
                  .dimse_timeout_ms = a->cfg->idle_timeout_ms ? a->cfg->idle_timeout_ms : 300000,
                  .max_pdu_length = a->cfg->max_pdu_length};
    vp_error e = {0};
    vp_status st = scu_open(r->host, r->port, &o, &j->dest, &e);
    if (st != VP_OK)
        vp_error_set(err, st, "cannot reach Move Destination %s: %s", r->ae_title, e.msg);
    return st;
}

/* One step of the job in progress. */
static vp_status job_step(struct assoc *a, vp_error *err)
{
    switch (a->job.kind) {
    case JOB_FIND: return find_step(a, err);
    case JOB_MOVE: return move_step(a, err);
    case JOB_GET: return get_step(a, err);
    case JOB_NONE: break;
    }
    return VP_OK;
}

/* A request's identifier is complete: start its job. */
static vp_status job_begin(struct assoc *a, const uint8_t *data, size_t len, vp_error *err)
{
    vp_buf_init(&a->job.answer, 0);
    vp_buf_init(&a->job.pending, 0);
    vp_buf_init(&a->job.failed_uids, 0);
    vp_buf_init(&a->job.cmd, 0);
    switch (a->job.rq.command_field) {
    case DIMSE_C_FIND_RQ: a->job.kind = JOB_FIND; return find_begin(a, data, len, err);
    case DIMSE_C_MOVE_RQ: a->job.kind = JOB_MOVE; return retrieve_begin(a, data, len, err);
    default: a->job.kind = JOB_GET; return retrieve_begin(a, data, len, err);
    }
}

/* One DIMSE event from the reassembler. */
static vp_status on_dimse(struct assoc *a, const dimse_event *ev, vp_error *err)
{
    switch (ev->type) {
    case DIMSE_EV_NONE: return VP_OK;
    case DIMSE_EV_COMMAND: {
        const dimse_msg *m = ev->msg;
        if (a->job.kind != JOB_NONE) {
            /* While a job is answered the peer may only cancel it (PS3.7 9.3.2.3) or, for a
             * C-GET, answer its C-STORE sub-operation: we negotiated one operation at a time. */
            if (m->command_field == DIMSE_C_CANCEL_RQ) {
                if (m->message_id_responded == a->job.rq.message_id)
                    a->job.cancel = true;
                return m->has_dataset ? (a->skipping = true, VP_OK) : VP_OK;
            }
            if (m->command_field == DIMSE_C_STORE_RSP && a->job.awaiting &&
                m->message_id_responded == a->job.store_id)
                return get_stored(a, m, err);
            abort_assoc(a, "a message arrived while a request was being answered "
                           "(one operation at a time was negotiated)");
            return VP_ECLOSED;
        }
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
        if ((m->command_field == DIMSE_C_FIND_RQ || m->command_field == DIMSE_C_MOVE_RQ ||
             m->command_field == DIMSE_C_GET_RQ) &&
            m->has_dataset && dimse_assembler_collect(a->dimse, IDENTIFIER_MAX) == VP_OK) {
            a->collecting = true; /* answered when the identifier is complete */
            a->job.rq = *m;
            a->job.pc = ev->context_id;
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
        if (!a->collecting)
            return VP_OK;
        a->collecting = false;
        if (ev->overflow) {
            /* PS3.4 C.4.1.1.4: refused, out of resources; the association goes on. */
            dimse_msg rq = a->job.rq;
            memset(&a->job, 0, sizeof a->job);
            return respond(a, ev->context_id, &rq,
                           dimse_status_from_vp(dimse_service_of(rq.command_field), VP_ELIMIT),
                           "identifier longer than 4 MiB: narrow the request", err);
        }
        return job_begin(a, ev->data, ev->len, err);
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
            for (size_t k = 0; k < ac.user_info.role_count; k++)
                if (!strcmp(ac.user_info.roles[k].sop_class_uid, pc->abstract_syntax))
                    pc->peer_scp = ac.user_info.roles[k].scp;
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
        /* A job with work to do takes a step, then only looks at what arrived meanwhile (a
         * C-CANCEL-RQ); otherwise wait for the earliest of ARTIM and (once established) the
         * idle deadline. */
        bool busy = job_ready(&a);
        if (busy) {
            vp_status jst = job_step(&a, &err);
            if (jst != VP_OK) {
                if (jst != VP_ECLOSED)
                    abort_assoc(&a, err.msg);
                set_result(&a, "connection error: %s", err.msg);
                break;
            }
            a.idle = net_deadline(idle_ms);
        }
        enum ul_state s = ul_assoc_state(a.ul);
        int64_t deadline = a.artim ? a.artim : NET_NO_DEADLINE;
        if (s == UL_STA6 && a.idle < deadline)
            deadline = a.idle;
        if (busy)
            deadline = net_now_ms();
        size_t got = 0;
        vp_error rerr = {0};
        st = net_read(fd, buf, cap, deadline, &got, &rerr);
        if (st == VP_ETIMEOUT && busy) {
            st = VP_OK;
            continue;
        }
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
    if (a.job.kind != JOB_NONE)
        job_end(&a);
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
