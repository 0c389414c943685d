/* SPDX-License-Identifier: MIT */
/* Fuzz target: DIMSE command sets (PS3.7 6.3, 9.3) and message reassembly from PDV fragments
 * (PS3.8 Annex E). Even first byte: the rest is one command set. Odd: the rest is a list of
 * fragments, each a control byte (bit 0 command, bit 1 last, bit 2 other context, bit 3
 * collect the data set) and a length byte, fed to the reassembler. Whatever decodes must
 * re-encode, and decode again to an equal message; re-encoded commands are also cut into PDVs
 * and reassembled. */
#include <stdlib.h>
#include <string.h>

#include "dimse/dimse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_round_trip(const dimse_msg *m, uint32_t max_pdu);

struct sink {
    dimse_assembler *a;    /* reassembler fed with the fragments */
    const dimse_msg *want; /* the command expected back */
    int commands;          /* COMMAND events seen */
};

static vp_status to_assembler(void *ctx, const dimse_pdv *pdv)
{
    struct sink *s = ctx;
    dimse_event ev;
    vp_error err;
    vp_error_clear(&err);
    vp_status st = dimse_assembler_feed(s->a, pdv, &ev, &err);
    if (st)
        abort(); /* our own fragments of a valid command must reassemble */
    if (ev.type == DIMSE_EV_COMMAND) {
        if (!dimse_msg_equal(ev.msg, s->want))
            abort();
        s->commands++;
    }
    return VP_OK;
}

static void check_round_trip(const dimse_msg *m, uint32_t max_pdu)
{
    vp_buf b;
    vp_buf_init(&b, 0);
    vp_error err;
    vp_error_clear(&err);
    vp_status st = dimse_msg_encode(m, &b, &err);
    if (st == VP_ENOMEM) {
        vp_buf_fini(&b);
        return;
    }
    if (st)
        abort(); /* a decoded message is always encodable */
    dimse_msg d;
    vp_error_clear(&err);
    if (dimse_msg_decode(b.data, b.len, &d, &err) != VP_OK || !dimse_msg_equal(m, &d))
        abort();
    struct sink s = {.a = dimse_assembler_new(0), .want = m};
    if (s.a) {
        if (dimse_fragment(1, true, b.data, b.len, max_pdu, to_assembler, &s) != VP_OK ||
            s.commands != 1)
            abort();
        dimse_assembler_free(s.a);
    }
    vp_buf_fini(&b);
}

static void fuzz_fragments(const uint8_t *p, size_t n)
{
    dimse_assembler *a = dimse_assembler_new(1024);
    if (!a)
        return;
    bool failed = false;
    while (n >= 2) {
        uint8_t ctl = p[0];
        size_t len = p[1];
        p += 2;
        n -= 2;
        if (len > n)
            len = n;
        dimse_pdv pdv = {.context_id = (ctl & 4) ? 3 : 1,
                         .is_command = ctl & 1,
                         .is_last = (ctl & 2) != 0,
                         .data = len ? p : NULL,
                         .len = len};
        p += len;
        n -= len;
        dimse_event ev;
        vp_error err;
        vp_error_clear(&err);
        vp_status st = dimse_assembler_feed(a, &pdv, &ev, &err);
        if (st) {
            if (err.status == VP_OK || err.msg[0] == 0)
                abort(); /* every failure says why */
            failed = true;
            continue; /* later feeds must keep failing */
        }
        if (failed)
            abort(); /* errors are sticky */
        switch (ev.type) {
        case DIMSE_EV_COMMAND:
            check_round_trip(ev.msg, 7 + (ctl >> 4) * 5);
            if (ev.msg->has_dataset && (ctl & 8))
                dimse_assembler_collect(a, 1 + (size_t)(ctl >> 4) * 64);
            break;
        case DIMSE_EV_BAD_COMMAND:
            if (err.msg[0] == 0 || ev.decode_status == VP_OK)
                abort();
            (void)dimse_status_from_vp(dimse_service_of(ev.msg->command_field), ev.decode_status);
            break;
        case DIMSE_EV_DATA:
            if (ev.len != len)
                abort();
            break;
        case DIMSE_EV_MESSAGE:
            if (ev.len && !ev.data)
                abort();
            break;
        case DIMSE_EV_NONE: break;
        }
    }
    dimse_assembler_free(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (data[0] & 1) {
        fuzz_fragments(data + 1, size - 1);
        return 0;
    }
    dimse_msg m;
    vp_error err;
    vp_error_clear(&err);
    vp_status st = dimse_msg_decode(data + 1, size - 1, &m, &err);
    if (st == VP_OK) {
        check_round_trip(&m, (uint32_t)(data[0] >> 1) + 7);
    } else {
        if (err.msg[0] == 0)
            abort();
        (void)dimse_status_name(dimse_service_of(m.command_field), m.status);
    }
    return 0;
}
