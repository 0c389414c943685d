/* SPDX-License-Identifier: MIT */
/*
 * Reassembly of DIMSE messages from PDV fragments (PS3.7 6.3.1, PS3.8 9.3.5 and Annex E).
 *
 * A message is its command set, sent as one or more command fragments, then, when the
 * command's Command Data Set Type says so, its data set as one or more data fragments; the
 * message control header of each PDV says which kind it is and which fragment is the last
 * (PS3.8 E.2). All fragments of a message use one presentation context, and a message is
 * complete before the next begins (PS3.8 Annex E, PS3.7 6.3.1: a message's fragments are not
 * interleaved with another's). Any other order is a protocol error, which the caller answers
 * with A-ABORT.
 *
 * A byte state machine with no I/O: one PDV in, at most one event out. Data set fragments are
 * handed back uncopied unless the caller asks to collect them, so size is bounded by the cap
 * of the command set (and of a collected data set), never by the data a peer sends.
 */
#include "dimse/internal.h"

enum state {
    ST_IDLE,    /* between messages */
    ST_COMMAND, /* command fragments arriving */
    ST_DATA,    /* data set fragments of a decoded command arriving */
    ST_SKIP,    /* data set fragments of a command that did not decode: dropped */
    ST_FAILED,  /* protocol error: every feed fails */
};

struct dimse_assembler {
    enum state state;   /* see enum state */
    size_t max_command; /* cap on a command set's bytes */
    uint8_t context_id; /* presentation context of the message in progress */
    bool announced;     /* the last event was COMMAND with a data set: collect allowed */
    bool collect;       /* buffer the data set of this message */
    bool overflow;      /* the collected data set passed its cap: the rest is skipped */
    vp_buf cmd;         /* command fragments so far */
    vp_buf data;        /* collected data set (cap set by dimse_assembler_collect) */
    dimse_msg msg;      /* command of the message in progress or last completed */
    vp_error failure;   /* ST_FAILED: the status and message repeated on every feed */
};

dimse_assembler *dimse_assembler_new(size_t max_command)
{
    dimse_assembler *a = vp_calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->max_command = max_command ? max_command : DIMSE_COMMAND_MAX_DEFAULT;
    vp_buf_init(&a->cmd, a->max_command);
    vp_buf_init(&a->data, 1);
    vp_error_clear(&a->failure);
    return a;
}

void dimse_assembler_free(dimse_assembler *a)
{
    if (!a)
        return;
    vp_buf_fini(&a->cmd);
    vp_buf_fini(&a->data);
    vp_free(a);
}

bool dimse_assembler_idle(const dimse_assembler *a)
{
    return a->state == ST_IDLE;
}

/* Enters ST_FAILED with a message for the log and the A-ABORT decision. */
static vp_status fail(dimse_assembler *a, vp_error *err, vp_status st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static vp_status fail(dimse_assembler *a, vp_error *err, vp_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vp_error_vset(&a->failure, st, fmt, ap);
    va_end(ap);
    a->state = ST_FAILED;
    vp_buf_fini(&a->cmd);
    vp_buf_fini(&a->data);
    return vp_error_set(err, st, "%s", a->failure.msg);
}

/* The last command fragment is in: decode it and say what follows. */
static vp_status command_done(dimse_assembler *a, dimse_event *ev, vp_error *err)
{
    vp_error derr;
    vp_error_clear(&derr);
    bool known;
    vp_status st =
        dimse__msg_decode(a->cmd.data, a->cmd.len, a->max_command, &a->msg, &known, &derr);
    vp_buf_reset(&a->cmd);
    ev->msg = &a->msg;
    ev->context_id = a->context_id;
    if (st == VP_OK) {
        ev->type = DIMSE_EV_COMMAND;
        a->state = a->msg.has_dataset ? ST_DATA : ST_IDLE;
        a->announced = a->msg.has_dataset;
        a->collect = false;
        return VP_OK;
    }
    if (st == VP_ENOMEM)
        return fail(a, err, st, "out of memory decoding a command set");
    if (!known)
        return fail(a, err, st,
                    "command set cannot be decoded and does not say whether a data set "
                    "follows: %s",
                    derr.msg);
    /* Readable enough to answer (a failure status to its Message ID, when it has one) and
     * to skip its data set: the association can go on. */
    ev->type = DIMSE_EV_BAD_COMMAND;
    ev->decode_status = st;
    vp_error_set(err, st, "%s", derr.msg);
    a->state = a->msg.has_dataset ? ST_SKIP : ST_IDLE;
    return VP_OK;
}

vp_status dimse_assembler_feed(dimse_assembler *a, const dimse_pdv *pdv, dimse_event *ev,
                               vp_error *err)
{
    *ev = (dimse_event){.type = DIMSE_EV_NONE};
    if (a->state == ST_FAILED)
        return vp_error_set(err, a->failure.status, "%s", a->failure.msg);
    a->announced = false;
    const char *kind = pdv->is_command ? "command" : "data";
    /* PS3.8 9.3.2.2: presentation context IDs are odd integers 1..255. */
    if (pdv->context_id == 0 || (pdv->context_id & 1) == 0)
        return fail(a, err, VP_EPARSE, "%s fragment on presentation context %u: IDs are odd", kind,
                    pdv->context_id);
    if (pdv->len && !pdv->data)
        return fail(a, err, VP_EINVAL, "%s fragment of %zu bytes without data", kind, pdv->len);

    switch (a->state) {
    case ST_IDLE:
        if (!pdv->is_command)
            return fail(a, err, VP_EPARSE,
                        "data fragment on presentation context %u without a command set "
                        "announcing a data set (PS3.8 E.2)",
                        pdv->context_id);
        a->context_id = pdv->context_id;
        a->state = ST_COMMAND;
        /* fall through */
    case ST_COMMAND:
        if (!pdv->is_command)
            return fail(a, err, VP_EPARSE,
                        "data fragment before the last fragment of the command set "
                        "(PS3.7 6.3.1: the command set comes first)");
        if (pdv->context_id != a->context_id)
            return fail(a, err, VP_EPARSE,
                        "command fragment on presentation context %u inside a message on %u",
                        pdv->context_id, a->context_id);
        if (pdv->len > a->max_command - a->cmd.len)
            return fail(a, err, VP_ELIMIT, "command set longer than %zu bytes", a->max_command);
        if (pdv->len && vp_buf_append(&a->cmd, pdv->data, pdv->len))
            return fail(a, err, VP_ENOMEM, "out of memory receiving a command set");
        if (!pdv->is_last)
            return VP_OK;
        return command_done(a, ev, err);
    case ST_DATA:
    case ST_SKIP:
        if (pdv->is_command)
            return fail(a, err, VP_EPARSE,
                        "command fragment while the data set of %s (Message ID %u) is still "
                        "due (PS3.8 E.2)",
                        dimse_command_name(a->msg.command_field), a->msg.message_id);
        if (pdv->context_id != a->context_id)
            return fail(a, err, VP_EPARSE,
                        "data fragment on presentation context %u for a command on %u",
                        pdv->context_id, a->context_id);
        ev->msg = &a->msg;
        ev->context_id = a->context_id;
        if (a->state == ST_SKIP) {
            if (pdv->is_last)
                a->state = ST_IDLE;
            ev->msg = NULL;
            return VP_OK;
        }
        if (!a->collect) {
            ev->type = DIMSE_EV_DATA;
            ev->data = pdv->data;
            ev->len = pdv->len;
            ev->is_last = pdv->is_last;
            if (pdv->is_last)
                a->state = ST_IDLE;
            return VP_OK;
        }
        if (pdv->len && !a->overflow) {
            vp_status st = vp_buf_append(&a->data, pdv->data, pdv->len);
            if (st == VP_ELIMIT) {
                /* Too big to take, but well-formed so far: the rest is skipped and the
                 * message reported as overflowing, for the caller to refuse it in DIMSE
                 * terms (a status) rather than abort the association. */
                a->overflow = true;
                vp_buf_reset(&a->data);
            } else if (st) {
                return fail(a, err, st, "out of memory receiving a data set");
            }
        }
        if (!pdv->is_last) {
            ev->msg = NULL;
            return VP_OK;
        }
        ev->type = DIMSE_EV_MESSAGE;
        ev->data = a->overflow ? NULL : a->data.data;
        ev->len = a->overflow ? 0 : a->data.len;
        ev->overflow = a->overflow;
        ev->is_last = true;
        a->overflow = false;
        a->state = ST_IDLE;
        return VP_OK;
    case ST_FAILED: break;
    }
    return vp_error_set(err, a->failure.status, "%s", a->failure.msg);
}

vp_status dimse_assembler_collect(dimse_assembler *a, size_t max)
{
    if (!a->announced || a->state != ST_DATA || max == 0)
        return VP_EINVAL;
    vp_buf_fini(&a->data);
    vp_buf_init(&a->data, max);
    a->collect = true;
    a->announced = false;
    return VP_OK;
}

uint8_t *dimse_assembler_take_dataset(dimse_assembler *a, size_t *len)
{
    size_t max = a->data.max;
    uint8_t *p = vp_buf_take(&a->data, len);
    a->data.max = max;
    return p;
}
