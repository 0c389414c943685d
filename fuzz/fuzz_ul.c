/* SPDX-License-Identifier: MIT */
/* Fuzz target: the DICOM Upper Layer (PS3.8 9). Input: one byte choosing the feed chunk size,
 * one byte of flags (bit 0: reject the association instead of accepting it), then a transport
 * byte stream. The stream goes to an acceptor ul_assoc in chunks, answering indications as a
 * server would; separately every framed PDU is parsed, re-encoded, re-parsed and re-encoded,
 * and the two encodings must be equal. */
#include <stdlib.h>
#include <string.h>

#include "dcm/dcm.h"
#include "ul/ul.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const ul_syntax_policy syntaxes[] = {
    {"1.2.840.10008.1.1", NULL, false, true},
    {"1.2.840.10008.5.1.4.1.1.2", NULL, true, true},
};
static const ul_policy policy = {
    .ae_title = "VETPACS",
    .require_called_ae = false,
    .syntaxes = syntaxes,
    .syntax_count = 2,
};

/* Answers the events of the last call like a server: accept or reject an RQ, echo P-DATA
 * back, confirm a release. */
static void answer(ul_assoc *a, vp_arena *arena, bool reject)
{
    ul_event evs[16];
    size_t n = 0;
    while (n < 16 && ul_assoc_event_next(a, &evs[n]))
        n++;
    for (size_t i = 0; i < n; i++) {
        const ul_event *ev = &evs[i];
        if (ev->type == UL_EV_ASSOCIATE_INDICATION) {
            bool ok;
            ul_associate ac;
            ul_reject rj;
            if (ul_negotiate(&ev->pdu->assoc, &policy, arena, &ok, &ac, &rj, NULL) != VP_OK)
                abort();
            if (reject && ok) {
                ok = false;
                rj = (ul_reject){UL_RJ_PERMANENT, UL_RJ_SOURCE_USER, UL_RJ_USER_NO_REASON};
            }
            if ((ok ? ul_assoc_accept(a, &ac, NULL) : ul_assoc_reject(a, &rj, NULL)) != VP_OK)
                abort(); /* a negotiated answer must always encode */
        } else if (ev->type == UL_EV_P_DATA && ul_assoc_state(a) == UL_STA6) {
            const ul_pdv *v = &ev->pdu->pdvs[ev->pdu->pdv_count - 1];
            (void)ul_assoc_send_pdata(a, v->pc_id, v->control & UL_PDV_COMMAND, v->data, v->len,
                                      v->control & UL_PDV_LAST, NULL);
        } else if (ev->type == UL_EV_RELEASE_INDICATION) {
            (void)ul_assoc_release_response(a, NULL);
        }
    }
    vp_buf_reset(ul_assoc_output(a));
}

static void drive_acceptor(const uint8_t *p, size_t n, size_t chunk, bool reject)
{
    ul_assoc_opts opts = {false, 4096, 65536};
    ul_assoc *a = NULL;
    vp_arena *arena = vp_arena_new(0);
    if (!arena || ul_assoc_new(&opts, &a, NULL) != VP_OK)
        abort();
    if (ul_assoc_transport_accepted(a, NULL) != VP_OK)
        abort();
    answer(a, arena, reject);
    size_t off = 0;
    while (off < n && ul_assoc_state(a) != UL_STA1) {
        size_t k = n - off < chunk ? n - off : chunk;
        size_t used = 0;
        vp_status st = ul_assoc_feed(a, p + off, k, &used, NULL);
        if (st != VP_OK)
            abort(); /* only allocation failures may fail a feed in an open state */
        if (used == 0)
            abort(); /* every call must make progress */
        off += used;
        answer(a, arena, reject);
    }
    if (ul_assoc_state(a) != UL_STA1) {
        (void)ul_assoc_transport_closed(a, NULL);
        answer(a, arena, reject);
    }
    ul_assoc_free(a);
    vp_arena_free(arena);
}

/* Parse, encode, parse again, encode again: both encodings equal. */
static void round_trip(const uint8_t *p, size_t n)
{
    vp_arena *arena = vp_arena_new(0);
    vp_buf b1, b2;
    vp_buf_init(&b1, 0);
    vp_buf_init(&b2, 0);
    if (!arena)
        abort();
    ul_pdu pdu;
    vp_error err = {0};
    if (ul_pdu_parse(p, n, arena, &pdu, NULL, &err) == VP_OK) {
        if (ul_pdu_encode(&pdu, &b1, &err) != VP_OK)
            abort();
        ul_pdu again;
        if (ul_pdu_parse(b1.data, b1.len, arena, &again, NULL, &err) != VP_OK)
            abort();
        if (ul_pdu_encode(&again, &b2, &err) != VP_OK)
            abort();
        if (b1.len != b2.len || memcmp(b1.data, b2.data, b1.len) != 0)
            abort();
    }
    vp_buf_fini(&b1);
    vp_buf_fini(&b2);
    vp_arena_free(arena);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t chunk = (size_t)data[0] * 7 + 1;
    bool reject = data[1] & 1;
    const uint8_t *p = data + 2;
    size_t n = size - 2;
    drive_acceptor(p, n, chunk, reject);

    ul_limits limits = {65536, 65536};
    size_t off = 0;
    while (off < n) {
        size_t pdu_size;
        if (ul_pdu_frame(p + off, n - off, &limits, &pdu_size, NULL, NULL) != VP_OK) {
            /* Also parse what is there, so truncated PDUs reach the parser. */
            round_trip(p + off, n - off);
            break;
        }
        round_trip(p + off, pdu_size);
        off += pdu_size;
    }
    return 0;
}
