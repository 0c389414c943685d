/* SPDX-License-Identifier: MIT */
/*
 * Cutting outgoing command sets and data sets into PDV fragments (PS3.8 9.3.5, Annex E, and
 * the Maximum Length Received of D.1), the reverse of assemble.c. A data set can be pushed in
 * pieces as it is read from storage; one fragment at most is held back, because only the
 * last fragment may carry the last-fragment bit and the end is known only at the final push.
 */
#include <string.h>

#include "dimse/internal.h"

struct dimse_fragmenter {
    uint8_t context_id; /* presentation context of every PDV */
    bool is_command;    /* command set or data set fragments */
    bool done;          /* the last fragment was sent */
    size_t frag;        /* fragment size: dimse_pdv_max_fragment of the peer's limit */
    size_t held;        /* bytes in hold */
    uint8_t *hold;      /* frag bytes: a tail that may turn out to be the last fragment */
};

size_t dimse_pdv_max_fragment(uint32_t max_pdu_length)
{
    /* PS3.8 D.1: Maximum Length Received bounds the variable field of a P-DATA-TF PDU, which
     * is the list of PDV items (the 6 bytes of PDU-type, reserved and PDU-length come on top,
     * PS3.8 Table 9-22). A PDV item is Item-length (4) + Presentation-context-ID (1) +
     * presentation data value, whose first byte is the message control header (PS3.8 Table
     * 9-23, E.2). One PDV per PDU: fragment = max_pdu_length - 4 - 1 - 1. */
    if (max_pdu_length == 0)
        return DIMSE_FRAGMENT_CAP; /* 0: the peer sets no maximum (PS3.8 D.1) */
    if (max_pdu_length <= 6)
        return 0;
    size_t n = (size_t)max_pdu_length - 6;
    if (n > 1)
        n &= ~(size_t)1; /* even fragments of even-length messages: some toolkits refuse odd */
    return n > DIMSE_FRAGMENT_CAP ? DIMSE_FRAGMENT_CAP : n;
}

dimse_fragmenter *dimse_fragmenter_new(uint8_t context_id, bool is_command, uint32_t max_pdu_length)
{
    size_t frag = dimse_pdv_max_fragment(max_pdu_length);
    if (frag == 0 || context_id == 0 || (context_id & 1) == 0)
        return NULL;
    dimse_fragmenter *f = vp_calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->hold = vp_malloc(frag);
    if (!f->hold) {
        vp_free(f);
        return NULL;
    }
    f->context_id = context_id;
    f->is_command = is_command;
    f->frag = frag;
    return f;
}

void dimse_fragmenter_free(dimse_fragmenter *f)
{
    if (!f)
        return;
    vp_free(f->hold);
    vp_free(f);
}

static vp_status emit_one(dimse_fragmenter *f, const uint8_t *p, size_t n, bool last,
                          dimse_pdv_emit emit, void *ctx)
{
    dimse_pdv pdv = {.context_id = f->context_id,
                     .is_command = f->is_command,
                     .is_last = last,
                     .data = p,
                     .len = n};
    if (last)
        f->done = true;
    return emit(ctx, &pdv);
}

vp_status dimse_fragmenter_push(dimse_fragmenter *f, const void *data, size_t len, bool final,
                                dimse_pdv_emit emit, void *ctx)
{
    const uint8_t *p = data;
    if (f->done || (len && !p))
        return VP_EINVAL;
    vp_status st;
    /* Top up the held tail first; send it once more bytes are known to follow it. */
    if (f->held && len) {
        size_t k = f->frag - f->held < len ? f->frag - f->held : len;
        memcpy(f->hold + f->held, p, k);
        f->held += k;
        p += k;
        len -= k;
        if (f->held < f->frag || (len == 0 && !final))
            return final ? emit_one(f, f->hold, f->held, true, emit, ctx) : VP_OK;
        bool last = final && len == 0;
        f->held = 0;
        if ((st = emit_one(f, f->hold, f->frag, last, emit, ctx)) || last)
            return st;
    }
    if (f->held) /* nothing pushed this time (len 0) */
        return final ? emit_one(f, f->hold, f->held, true, emit, ctx) : VP_OK;
    /* Whole fragments straight from the caller's bytes while more follow each. */
    while (len > f->frag) {
        if ((st = emit_one(f, p, f->frag, false, emit, ctx)))
            return st;
        p += f->frag;
        len -= f->frag;
    }
    if (final)
        return emit_one(f, p, len, true, emit, ctx); /* also an empty set: one empty PDV */
    if (len)
        memcpy(f->hold, p, len);
    f->held = len;
    return VP_OK;
}

vp_status dimse_fragment(uint8_t context_id, bool is_command, const void *data, size_t len,
                         uint32_t max_pdu_length, dimse_pdv_emit emit, void *ctx)
{
    size_t frag = dimse_pdv_max_fragment(max_pdu_length);
    const uint8_t *p = data;
    if (frag == 0 || context_id == 0 || (context_id & 1) == 0 || (len && !p))
        return VP_EINVAL;
    do {
        size_t n = len < frag ? len : frag;
        dimse_pdv pdv = {.context_id = context_id,
                         .is_command = is_command,
                         .is_last = n == len,
                         .data = p,
                         .len = n};
        vp_status st = emit(ctx, &pdv);
        if (st)
            return st;
        if (n) {
            p += n;
            len -= n;
        }
    } while (len);
    return VP_OK;
}
