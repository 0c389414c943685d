/* SPDX-License-Identifier: MIT */
/*
 * PDU decoding and framing, PS3.8 9.3 (PDU structure), Annex D (user information) and PS3.7
 * D.3.3 (its sub-items). Every length is checked against its parent through a sub-reader
 * (internal.h); a malformed PDU gives VP_EPARSE with the PDU or item type and the byte offset,
 * and the A-ABORT reason to send (PS3.8 9.3.8, Table 9-26).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "dcm/dcm.h"
#include "ul/internal.h"
#include "ul/ul.h"

const char *ul_pdu_type_name(uint8_t type)
{
    switch (type) {
    case UL_PDU_ASSOCIATE_RQ: return "A-ASSOCIATE-RQ";
    case UL_PDU_ASSOCIATE_AC: return "A-ASSOCIATE-AC";
    case UL_PDU_ASSOCIATE_RJ: return "A-ASSOCIATE-RJ";
    case UL_PDU_P_DATA_TF: return "P-DATA-TF";
    case UL_PDU_RELEASE_RQ: return "A-RELEASE-RQ";
    case UL_PDU_RELEASE_RP: return "A-RELEASE-RP";
    case UL_PDU_ABORT: return "A-ABORT";
    default: return "unknown PDU";
    }
}

/* Name of an item type for messages. */
static const char *item_name(uint8_t type)
{
    switch (type) {
    case UL_ITEM_APPLICATION_CONTEXT: return "Application Context";
    case UL_ITEM_PRESENTATION_CONTEXT_RQ: return "Presentation Context";
    case UL_ITEM_PRESENTATION_CONTEXT_AC: return "Presentation Context";
    case UL_ITEM_ABSTRACT_SYNTAX: return "Abstract Syntax";
    case UL_ITEM_TRANSFER_SYNTAX: return "Transfer Syntax";
    case UL_ITEM_USER_INFORMATION: return "User Information";
    case UL_ITEM_MAX_LENGTH: return "Maximum Length";
    case UL_ITEM_IMPLEMENTATION_CLASS_UID: return "Implementation Class UID";
    case UL_ITEM_ASYNC_OPERATIONS_WINDOW: return "Asynchronous Operations Window";
    case UL_ITEM_ROLE_SELECTION: return "SCP/SCU Role Selection";
    case UL_ITEM_IMPLEMENTATION_VERSION_NAME: return "Implementation Version Name";
    case UL_ITEM_SOP_CLASS_EXTENDED: return "SOP Class Extended Negotiation";
    case UL_ITEM_SOP_CLASS_COMMON_EXTENDED: return "SOP Class Common Extended Negotiation";
    case UL_ITEM_USER_IDENTITY_RQ: return "User Identity";
    case UL_ITEM_USER_IDENTITY_AC: return "User Identity";
    default: return "unknown";
    }
}

bool ul_ae_title_valid(const char *s, size_t len)
{
    /* Trailing NUL padding is tolerated, as some implementations send it. */
    while (len > 0 && s[len - 1] == '\0')
        len--;
    if (len > UL_AE_TITLE_MAX)
        return false;
    bool significant = false;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        /* Default repertoire, no control characters, no backslash (PS3.5 Table 6.2-1). */
        if (ch < 0x20 || ch >= 0x7F || ch == '\\')
            return false;
        if (ch != ' ')
            significant = true;
    }
    return significant; /* "a value consisting solely of spaces shall not be used" */
}

/* Copies a 16-byte AE field to dst without its insignificant leading and trailing spaces
 * (and trailing NULs). */
static void ae_copy(char dst[UL_AE_TITLE_MAX + 1], const uint8_t *src)
{
    size_t b = 0, e = UL_AE_TITLE_MAX;
    while (e > 0 && (src[e - 1] == ' ' || src[e - 1] == '\0'))
        e--;
    while (b < e && src[b] == ' ')
        b++;
    memcpy(dst, src + b, e - b);
    dst[e - b] = '\0';
}

/* Parse state shared by the functions below. */
typedef struct parse_ctx {
    vp_arena *arena;      /* where strings and arrays go */
    vp_error *err;        /* caller's error report */
    uint8_t *reason;      /* caller's A-ABORT reason, may be NULL */
    const char *pdu_name; /* "A-ASSOCIATE-RQ" ... for messages */
} parse_ctx;

/* Records a parse error at PDU offset off with its A-ABORT reason. */
__attribute__((format(printf, 4, 5))) static vp_status bad(parse_ctx *c, uint8_t reason, size_t off,
                                                           const char *fmt, ...)
{
    char msg[VP_ERROR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (c->reason)
        *c->reason = reason;
    return vp_error_set(c->err, VP_EPARSE, "%s at offset %zu: %s", c->pdu_name, off, msg);
}

static vp_status nomem(parse_ctx *c)
{
    return vp_error_set(c->err, VP_ENOMEM, "out of memory parsing %s", c->pdu_name);
}

/* Printable copy of untrusted bytes for a message (at most 64). */
static const char *printable(char out[68], const uint8_t *p, size_t n)
{
    size_t k = n < 64 ? n : 64;
    for (size_t i = 0; i < k; i++)
        out[i] = (p[i] >= 0x20 && p[i] < 0x7F) ? (char)p[i] : '?';
    out[k] = '\0';
    if (n > k)
        strcpy(out + k, "...");
    return out;
}

/*
 * Reads the next item header of r (type, reserved, 2-byte length, PS3.8 9.3.2) and makes
 * body a sub-reader over exactly the declared length, which must fit in what r has left.
 */
static vp_status next_item(parse_ctx *c, ul_reader *r, uint8_t *type, ul_reader *body)
{
    size_t at = ul_reader_offset(r);
    if (ul_reader_left(r) < 4)
        return bad(c, UL_ABORT_REASON_INVALID_PARAMETER, at,
                   "%zu stray bytes where a 4-byte item header was expected", ul_reader_left(r));
    *type = ul_reader_u8(r);
    (void)ul_reader_u8(r); /* reserved, not tested (PS3.8 9.3.1) */
    uint16_t len = ul_reader_be16(r);
    size_t left = ul_reader_left(r);
    if (!ul_reader_sub(r, len, body))
        return bad(c, UL_ABORT_REASON_INVALID_PARAMETER, at,
                   "item %02XH (%s) length %u exceeds the %zu bytes remaining", *type,
                   item_name(*type), len, left);
    return VP_OK;
}

/* Counts the items of type in r (a copy is scanned), checking every item's framing. */
static vp_status count_items(parse_ctx *c, ul_reader r, uint8_t type, size_t *count)
{
    *count = 0;
    while (ul_reader_left(&r) > 0) {
        uint8_t t = 0;
        ul_reader body;
        vp_status st = next_item(c, &r, &t, &body);
        if (st != VP_OK)
            return st;
        if (t == type)
            (*count)++;
    }
    return VP_OK;
}

/* A zeroed array of count elements in the arena. */
static void *arena_array(parse_ctx *c, size_t count, size_t size)
{
    size_t n;
    if (vp_mul_size(count, size, &n))
        return NULL;
    void *p = vp_arena_alloc(c->arena, n ? n : 1);
    if (p)
        memset(p, 0, n ? n : 1);
    return p;
}

/* Copies n bytes to a NUL-terminated string in the arena. */
static const char *arena_str(parse_ctx *c, const uint8_t *p, size_t n)
{
    char *s = vp_arena_alloc(c->arena, n + 1);
    if (!s)
        return NULL;
    if (n)
        memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

/* Reads n bytes of r (the rest when n is SIZE_MAX) as a UID: trailing NUL padding is tolerated
 * (PS3.5 9.1), the rest must pass dcm_uid_valid. */
static vp_status read_uid(parse_ctx *c, ul_reader *r, size_t n, uint8_t type, const char **out)
{
    size_t at = ul_reader_offset(r);
    if (n == SIZE_MAX)
        n = ul_reader_left(r);
    const uint8_t *q = ul_reader_bytes(r, n);
    if (!q)
        return bad(c, UL_ABORT_REASON_INVALID_PARAMETER, at,
                   "item %02XH (%s): UID of %zu bytes exceeds the item", type, item_name(type), n);
    size_t len = n;
    while (len > 0 && q[len - 1] == '\0')
        len--;
    if (!dcm_uid_valid((const char *)q, len)) {
        char shown[68];
        return bad(c, UL_ABORT_REASON_INVALID_PARAMETER, at, "item %02XH (%s): invalid UID \"%s\"",
                   type, item_name(type), printable(shown, q, len));
    }
    *out = arena_str(c, q, len);
    return *out ? VP_OK : nomem(c);
}

/* An item whose value has a fixed size (51H, 53H): the value must be exactly that long. */
static vp_status expect_len(parse_ctx *c, const ul_reader *body, uint8_t type, size_t want)
{
    if (body->len != want)
        return bad(c, UL_ABORT_REASON_INVALID_PARAMETER, body->base - 4,
                   "item %02XH (%s) length %zu, expected %zu", type, item_name(type), body->len,
                   want);
    return VP_OK;
}

/* Sub-items that must be consumed exactly (54H, 56H, 58H, 59H). */
static vp_status expect_end(parse_ctx *c, const ul_reader *body, uint8_t type)
{
    if (body->failed)
        return bad(c, UL_ABORT_REASON_INVALID_PARAMETER, body->base - 4,
                   "item %02XH (%s): its fields exceed its length %zu", type, item_name(type),
                   body->len);
    if (ul_reader_left(body) != 0)
        return bad(c, UL_ABORT_REASON_INVALID_PARAMETER, ul_reader_offset(body),
                   "item %02XH (%s): %zu bytes after its last field", type, item_name(type),
                   ul_reader_left(body));
    return VP_OK;
}

static vp_status dup_item(parse_ctx *c, const ul_reader *body, uint8_t type)
{
    return bad(c, UL_ABORT_REASON_UNEXPECTED_PARAMETER, body->base - 4, "second item %02XH (%s)",
               type, item_name(type));
}

/* Presentation Context item of an RQ (20H), PS3.8 9.3.2.2. */
static vp_status parse_pc_rq(parse_ctx *c, ul_reader *body, ul_pc_rq *pc)
{
    size_t at = body->base - 4;
    pc->id = ul_reader_u8(body);
    (void)ul_reader_bytes(body, 3); /* reserved */
    if (body->failed)
        return bad(c, UL_ABORT_REASON_INVALID_PARAMETER, at,
                   "item 20H (Presentation Context) length %zu, at least 4 needed", body->len);
    /* Presentation context IDs are odd integers between 1 and 255 (PS3.8 9.3.2.2). */
    if (pc->id % 2 == 0)
        return bad(c, UL_ABORT_REASON_INVALID_PARAMETER, at + 4,
                   "presentation context ID %u is not odd", pc->id);
    size_t n;
    vp_status st = count_items(c, *body, UL_ITEM_TRANSFER_SYNTAX, &n);
    if (st != VP_OK)
        return st;
    pc->transfer_syntaxes = arena_array(c, n, sizeof *pc->transfer_syntaxes);
    if (!pc->transfer_syntaxes)
        return nomem(c);
    while (ul_reader_left(body) > 0) {
        uint8_t t;
        ul_reader sub;
        if ((st = next_item(c, body, &t, &sub)) != VP_OK)
            return st;
        if (t == UL_ITEM_ABSTRACT_SYNTAX) {
            if (pc->abstract_syntax)
                return dup_item(c, &sub, t);
            st = read_uid(c, &sub, SIZE_MAX, t, &pc->abstract_syntax);
        } else if (t == UL_ITEM_TRANSFER_SYNTAX) {
            st = read_uid(c, &sub, SIZE_MAX, t, &pc->transfer_syntaxes[pc->ts_count++]);
        } else {
            /* Only 30H and 40H are defined inside a presentation context (Table 9-14). */
            st = bad(c, UL_ABORT_REASON_UNRECOGNIZED_PARAMETER, sub.base - 4,
                     "item %02XH inside presentation context %u", t, pc->id);
        }
        if (st != VP_OK)
            return st;
    }
    if (!pc->abstract_syntax)
        return bad(c, UL_ABORT_REASON_INVALID_PARAMETER, at,
                   "presentation context %u has no Abstract Syntax sub-item", pc->id);
    if (pc->ts_count == 0)
        return bad(c, UL_ABORT_REASON_INVALID_PARAMETER, at,
                   "presentation context %u has no Transfer Syntax sub-item", pc->id);
    return VP_OK;
}

/* Presentation Context item of an AC (21H), PS3.8 9.3.3.2. */
static vp_status parse_pc_ac(parse_ctx *c, ul_reader *body, ul_pc_ac *pc)
{
    size_t at = body->base - 4;
    pc->id = ul_reader_u8(body);
    (void)ul_reader_u8(body);
    pc->result = ul_reader_u8(body);
    (void)ul_reader_u8(body);
    if (body->failed)
        return bad(c, UL_ABORT_REASON_INVALID_PARAMETER, at,
                   "item 21H (Presentation Context) length %zu, at least 4 needed", body->len);
    if (pc->id % 2 == 0)
        return bad(c, UL_ABORT_REASON_INVALID_PARAMETER, at + 4,
                   "presentation context ID %u is not odd", pc->id);
    if (pc->result > UL_PC_TRANSFER_SYNTAXES_NOT_SUPPORTED)
        return bad(c, UL_ABORT_REASON_INVALID_PARAMETER, at + 6,
                   "presentation context %u result/reason %u", pc->id, pc->result);
    bool seen = false;
    while (ul_reader_left(body) > 0) {
        uint8_t t;
        ul_reader sub;
        vp_status st = next_item(c, body, &t, &sub);
        if (st != VP_OK)
            return st;
        if (t != UL_ITEM_TRANSFER_SYNTAX)
            return bad(c, UL_ABORT_REASON_UNRECOGNIZED_PARAMETER, sub.base - 4,
                       "item %02XH inside presentation context %u", t, pc->id);
        if (seen)
            return dup_item(c, &sub, t);
        seen = true;
        /* With any result but acceptance the sub-item is not significant and its value
         * shall not be tested (PS3.8 9.3.3.2). */
        if (pc->result == UL_PC_ACCEPTANCE &&
            (st = read_uid(c, &sub, SIZE_MAX, t, &pc->transfer_syntax)) != VP_OK)
            return st;
    }
    if (pc->result == UL_PC_ACCEPTANCE && !pc->transfer_syntax)
        return bad(c, UL_ABORT_REASON_INVALID_PARAMETER, at,
                   "accepted presentation context %u has no Transfer Syntax sub-item", pc->id);
    return VP_OK;
}

/* Reads a 2-byte length and that many bytes (user identity fields, PS3.7 D.3.3.7). */
static const uint8_t *read_field16(ul_reader *r, size_t *len)
{
    *len = ul_reader_be16(r);
    const uint8_t *q = ul_reader_bytes(r, *len);
    if (!q)
        *len = 0;
    return q;
}

/* User Information item (50H) and its sub-items, PS3.8 Annex D, PS3.7 D.3.3. */
static vp_status parse_user_info(parse_ctx *c, ul_reader *body, bool rq, ul_user_info *ui)
{
    size_t n_role, n_ext, n_common;
    vp_status st;
    if ((st = count_items(c, *body, UL_ITEM_ROLE_SELECTION, &n_role)) != VP_OK ||
        (st = count_items(c, *body, UL_ITEM_SOP_CLASS_EXTENDED, &n_ext)) != VP_OK ||
        (st = count_items(c, *body, UL_ITEM_SOP_CLASS_COMMON_EXTENDED, &n_common)) != VP_OK)
        return st;
    ui->roles = arena_array(c, n_role, sizeof *ui->roles);
    ui->ext_neg = arena_array(c, n_ext, sizeof *ui->ext_neg);
    ui->common_ext_neg = arena_array(c, n_common, sizeof *ui->common_ext_neg);
    if (!ui->roles || !ui->ext_neg || !ui->common_ext_neg)
        return nomem(c);
    while (ul_reader_left(body) > 0) {
        uint8_t t;
        ul_reader sub;
        if ((st = next_item(c, body, &t, &sub)) != VP_OK)
            return st;
        size_t at = sub.base - 4;
        switch (t) {
        case UL_ITEM_MAX_LENGTH: /* PS3.8 D.1.1 */
            if (ui->has_max_length)
                return dup_item(c, &sub, t);
            if ((st = expect_len(c, &sub, t, 4)) != VP_OK)
                return st;
            ui->has_max_length = true;
            ui->max_pdu_length = ul_reader_be32(&sub);
            break;
        case UL_ITEM_IMPLEMENTATION_CLASS_UID: /* PS3.7 D.3.3.2 */
            if (ui->implementation_class_uid)
                return dup_item(c, &sub, t);
            if ((st = read_uid(c, &sub, SIZE_MAX, t, &ui->implementation_class_uid)) != VP_OK)
                return st;
            break;
        case UL_ITEM_ASYNC_OPERATIONS_WINDOW: /* PS3.7 D.3.3.3 */
            if (ui->has_async_window)
                return dup_item(c, &sub, t);
            if ((st = expect_len(c, &sub, t, 4)) != VP_OK)
                return st;
            ui->has_async_window = true;
            ui->max_ops_invoked = ul_reader_be16(&sub);
            ui->max_ops_performed = ul_reader_be16(&sub);
            break;
        case UL_ITEM_ROLE_SELECTION: { /* PS3.7 D.3.3.4 */
            ul_role *role = &ui->roles[ui->role_count++];
            size_t uid_len = ul_reader_be16(&sub);
            if (!sub.failed && (st = read_uid(c, &sub, uid_len, t, &role->sop_class_uid)) != VP_OK)
                return st;
            /* 0 = not supported / rejected, 1 = supported / accepted; other values are
             * read as 1 rather than refused. */
            role->scu = ul_reader_u8(&sub) != 0;
            role->scp = ul_reader_u8(&sub) != 0;
            if ((st = expect_end(c, &sub, t)) != VP_OK)
                return st;
            break;
        }
        case UL_ITEM_IMPLEMENTATION_VERSION_NAME: { /* PS3.7 D.3.3.2: 1 to 16 characters */
            if (ui->implementation_version_name)
                return dup_item(c, &sub, t);
            size_t len = sub.len;
            const uint8_t *q = ul_reader_bytes(&sub, len);
            while (len > 0 && q[len - 1] == '\0')
                len--;
            if (len == 0 || len > 16)
                return bad(c, UL_ABORT_REASON_INVALID_PARAMETER, at,
                           "item 55H (Implementation Version Name) length %zu, expected 1-16", len);
            for (size_t i = 0; i < len; i++)
                if (q[i] < 0x20 || q[i] >= 0x7F || q[i] == '\\')
                    return bad(c, UL_ABORT_REASON_INVALID_PARAMETER, at + 4 + i,
                               "item 55H (Implementation Version Name): byte %02XH", q[i]);
            if (!(ui->implementation_version_name = arena_str(c, q, len)))
                return nomem(c);
            break;
        }
        case UL_ITEM_SOP_CLASS_EXTENDED: { /* PS3.7 D.3.3.5 */
            ul_ext_neg *x = &ui->ext_neg[ui->ext_neg_count++];
            size_t uid_len = ul_reader_be16(&sub);
            if (sub.failed)
                return expect_end(c, &sub, t);
            if ((st = read_uid(c, &sub, uid_len, t, &x->sop_class_uid)) != VP_OK)
                return st;
            x->info_len = ul_reader_left(&sub);
            x->info = ul_reader_bytes(&sub, x->info_len);
            break;
        }
        case UL_ITEM_SOP_CLASS_COMMON_EXTENDED: { /* PS3.7 D.3.3.6, kept as bytes */
            ul_raw *x = &ui->common_ext_neg[ui->common_ext_neg_count++];
            x->len = sub.len;
            x->data = ul_reader_bytes(&sub, x->len);
            break;
        }
        case UL_ITEM_USER_IDENTITY_RQ: /* PS3.7 D.3.3.7.1 */
        case UL_ITEM_USER_IDENTITY_AC: /* PS3.7 D.3.3.7.2 */
            if ((t == UL_ITEM_USER_IDENTITY_RQ) != rq)
                return bad(c, UL_ABORT_REASON_UNEXPECTED_PARAMETER, at, "item %02XH in an %s", t,
                           c->pdu_name);
            if (ui->has_user_identity)
                return dup_item(c, &sub, t);
            ui->has_user_identity = true;
            if (rq) {
                ui->user_identity.type = ul_reader_u8(&sub);
                ui->user_identity.positive_response_requested = ul_reader_u8(&sub) == 1;
                ui->user_identity.primary = read_field16(&sub, &ui->user_identity.primary_len);
                ui->user_identity.secondary = read_field16(&sub, &ui->user_identity.secondary_len);
                if (!sub.failed && ui->user_identity.type == 0)
                    return bad(c, UL_ABORT_REASON_INVALID_PARAMETER, at + 4,
                               "item 58H (User Identity): user identity type 0");
            } else {
                ui->user_identity.server_response =
                    read_field16(&sub, &ui->user_identity.server_response_len);
            }
            if ((st = expect_end(c, &sub, t)) != VP_OK)
                return st;
            break;
        default:
            if (t < UL_ITEM_MAX_LENGTH || t > UL_ITEM_USER_IDENTITY_AC)
                return bad(c, UL_ABORT_REASON_UNEXPECTED_PARAMETER, at,
                           "item %02XH (%s) inside User Information", t, item_name(t));
            /* Unknown 5xH sub-items are ignored (PS3.7 D.3.3: not supported means absent). */
            break;
        }
    }
    return VP_OK;
}

/* A-ASSOCIATE-RQ (PS3.8 9.3.2, Table 9-11) and -AC (9.3.3, Table 9-17). */
static vp_status parse_associate(parse_ctx *c, ul_reader *r, bool rq, ul_associate *a)
{
    a->protocol_version = ul_reader_be16(r);
    (void)ul_reader_bytes(r, 2);
    const uint8_t *called = ul_reader_bytes(r, UL_AE_TITLE_MAX);
    const uint8_t *calling = ul_reader_bytes(r, UL_AE_TITLE_MAX);
    (void)ul_reader_bytes(r, 32);
    if (r->failed)
        return bad(c, UL_ABORT_REASON_INVALID_PARAMETER, 2,
                   "PDU length %zu, the fixed fields need 68 bytes", r->len);
    /* In the AC these fields are reserved: sent as received, never tested (9.3.3.2). */
    if (rq && !ul_ae_title_valid((const char *)called, UL_AE_TITLE_MAX))
        return bad(c, UL_ABORT_REASON_INVALID_PARAMETER, 10, "called AE title is not valid");
    if (rq && !ul_ae_title_valid((const char *)calling, UL_AE_TITLE_MAX))
        return bad(c, UL_ABORT_REASON_INVALID_PARAMETER, 26, "calling AE title is not valid");
    ae_copy(a->called_ae, called);
    ae_copy(a->calling_ae, calling);

    uint8_t pc_type = rq ? UL_ITEM_PRESENTATION_CONTEXT_RQ : UL_ITEM_PRESENTATION_CONTEXT_AC;
    size_t n_pc;
    vp_status st = count_items(c, *r, pc_type, &n_pc);
    if (st != VP_OK)
        return st;
    if (rq)
        a->rq_pcs = arena_array(c, n_pc, sizeof *a->rq_pcs);
    else
        a->ac_pcs = arena_array(c, n_pc, sizeof *a->ac_pcs);
    if (rq ? !a->rq_pcs : !a->ac_pcs)
        return nomem(c);
    uint8_t seen_ids[32] = {0}; /* bit per presentation context ID: IDs are unique */
    bool user_info = false;
    while (ul_reader_left(r) > 0) {
        uint8_t t;
        ul_reader body;
        if ((st = next_item(c, r, &t, &body)) != VP_OK)
            return st;
        size_t at = body.base - 4;
        if (t == UL_ITEM_APPLICATION_CONTEXT) {
            if (a->application_context)
                return dup_item(c, &body, t);
            st = read_uid(c, &body, SIZE_MAX, t, &a->application_context);
        } else if (t == pc_type) {
            uint8_t id;
            if (rq) {
                ul_pc_rq *pc = &a->rq_pcs[a->rq_pc_count++];
                st = parse_pc_rq(c, &body, pc);
                id = pc->id;
            } else {
                ul_pc_ac *pc = &a->ac_pcs[a->ac_pc_count++];
                st = parse_pc_ac(c, &body, pc);
                id = pc->id;
            }
            if (st == VP_OK && (seen_ids[id / 8] & (1u << (id % 8))))
                st = bad(c, UL_ABORT_REASON_INVALID_PARAMETER, at + 4,
                         "presentation context ID %u used twice", id);
            seen_ids[id / 8] |= (uint8_t)(1u << (id % 8));
        } else if (t == UL_ITEM_USER_INFORMATION) {
            if (user_info)
                return dup_item(c, &body, t);
            user_info = true;
            st = parse_user_info(c, &body, rq, &a->user_info);
        } else if ((t >= UL_ITEM_APPLICATION_CONTEXT && t <= UL_ITEM_PRESENTATION_CONTEXT_AC) ||
                   (t >= UL_ITEM_ABSTRACT_SYNTAX && t <= UL_ITEM_USER_IDENTITY_AC)) {
            st = bad(c, UL_ABORT_REASON_UNEXPECTED_PARAMETER, at, "item %02XH (%s) in an %s", t,
                     item_name(t), c->pdu_name);
        }
        /* Items of other types are ignored (PS3.8 9.3.1). */
        if (st != VP_OK)
            return st;
    }
    if (!a->application_context)
        return bad(c, UL_ABORT_REASON_INVALID_PARAMETER, 74, "no Application Context item");
    if ((rq ? a->rq_pc_count : a->ac_pc_count) == 0)
        return bad(c, UL_ABORT_REASON_INVALID_PARAMETER, 74, "no Presentation Context item");
    if (!user_info)
        return bad(c, UL_ABORT_REASON_INVALID_PARAMETER, 74, "no User Information item");
    return VP_OK;
}

/* P-DATA-TF (PS3.8 9.3.5, Table 9-22): one or more PDV items with a 4-byte length. */
static vp_status parse_p_data(parse_ctx *c, ul_reader *r, ul_pdu *out)
{
    size_t n = 0;
    for (ul_reader scan = *r; ul_reader_left(&scan) > 0; n++) {
        size_t at = ul_reader_offset(&scan);
        if (ul_reader_left(&scan) < 4)
            return bad(c, UL_ABORT_REASON_INVALID_PARAMETER, at,
                       "%zu stray bytes where a PDV item length was expected",
                       ul_reader_left(&scan));
        uint32_t len = ul_reader_be32(&scan);
        size_t left = ul_reader_left(&scan);
        ul_reader body;
        /* The item length counts the context ID and control header: at least 2. */
        if (len < 2)
            return bad(c, UL_ABORT_REASON_INVALID_PARAMETER, at, "PDV item length %u", len);
        if (!ul_reader_sub(&scan, len, &body))
            return bad(c, UL_ABORT_REASON_INVALID_PARAMETER, at,
                       "PDV item length %u exceeds the %zu bytes remaining", len, left);
    }
    if (n == 0)
        return bad(c, UL_ABORT_REASON_INVALID_PARAMETER, 6, "P-DATA-TF without a PDV item");
    out->pdvs = arena_array(c, n, sizeof *out->pdvs);
    if (!out->pdvs)
        return nomem(c);
    while (ul_reader_left(r) > 0) {
        ul_reader body;
        uint32_t len = ul_reader_be32(r);
        (void)ul_reader_sub(r, len, &body); /* checked by the scan above */
        ul_pdv *pdv = &out->pdvs[out->pdv_count++];
        pdv->pc_id = ul_reader_u8(&body);
        /* Bits 2-7 of the control header are reserved (PS3.8 E.2) and not tested. */
        pdv->control = ul_reader_u8(&body) & (UL_PDV_COMMAND | UL_PDV_LAST);
        pdv->len = ul_reader_left(&body);
        pdv->data = ul_reader_bytes(&body, pdv->len);
        if (pdv->pc_id % 2 == 0)
            return bad(c, UL_ABORT_REASON_INVALID_PARAMETER, body.base,
                       "PDV presentation context ID %u is not odd", pdv->pc_id);
    }
    return VP_OK;
}

/* PDUs whose body is 4 bytes (Tables 9-21, 9-24, 9-25, 9-26). */
static bool fixed_size_pdu(uint8_t type)
{
    return type == UL_PDU_ASSOCIATE_RJ || type == UL_PDU_RELEASE_RQ || type == UL_PDU_RELEASE_RP ||
           type == UL_PDU_ABORT;
}

vp_status ul_pdu_frame(const uint8_t *p, size_t n, const ul_limits *limits, size_t *size,
                       uint8_t *abort_reason, vp_error *err)
{
    if (n < UL_HEADER_SIZE) {
        *size = UL_HEADER_SIZE - n;
        return VP_EAGAIN;
    }
    uint8_t type = p[0];
    uint32_t len = vp_be32(p + 2);
    if (type < UL_PDU_ASSOCIATE_RQ || type > UL_PDU_ABORT) {
        if (abort_reason)
            *abort_reason = UL_ABORT_REASON_UNRECOGNIZED_PDU;
        return vp_error_set(err, VP_EPARSE, "unrecognized PDU type %02XH at offset 0", type);
    }
    if (fixed_size_pdu(type) && len != 4) {
        if (abort_reason)
            *abort_reason = UL_ABORT_REASON_INVALID_PARAMETER;
        return vp_error_set(err, VP_EPARSE, "%s at offset 2: PDU length %u, expected 4",
                            ul_pdu_type_name(type), len);
    }
    uint32_t max_pdata =
        limits && limits->max_pdu_length ? limits->max_pdu_length : UL_DEFAULT_MAX_PDU_LENGTH;
    uint32_t max_other = limits && limits->max_assoc_pdu_length ? limits->max_assoc_pdu_length
                                                                : UL_DEFAULT_MAX_ASSOC_PDU_LENGTH;
    uint32_t max = type == UL_PDU_P_DATA_TF ? max_pdata : max_other;
    if (len > max) {
        if (abort_reason)
            *abort_reason = UL_ABORT_REASON_INVALID_PARAMETER;
        return vp_error_set(err, VP_ELIMIT, "%s at offset 2: PDU length %u exceeds the maximum %u",
                            ul_pdu_type_name(type), len, max);
    }
    size_t total = (size_t)len + UL_HEADER_SIZE;
    if (n < total) {
        *size = total - n;
        return VP_EAGAIN;
    }
    *size = total;
    return VP_OK;
}

vp_status ul_pdu_parse(const uint8_t *p, size_t n, vp_arena *arena, ul_pdu *out,
                       uint8_t *abort_reason, vp_error *err)
{
    memset(out, 0, sizeof *out);
    if (abort_reason)
        *abort_reason = UL_ABORT_REASON_NOT_SPECIFIED;
    if (n < UL_HEADER_SIZE)
        return VP_EAGAIN;
    parse_ctx c = {arena, err, abort_reason, ul_pdu_type_name(p[0])};
    out->type = p[0];
    uint32_t len = vp_be32(p + 2);
    if (out->type < UL_PDU_ASSOCIATE_RQ || out->type > UL_PDU_ABORT)
        return bad(&c, UL_ABORT_REASON_UNRECOGNIZED_PDU, 0, "unrecognized PDU type %02XH",
                   out->type);
    if ((uint64_t)len > n - UL_HEADER_SIZE)
        return VP_EAGAIN;
    if ((uint64_t)len < n - UL_HEADER_SIZE)
        return bad(&c, UL_ABORT_REASON_INVALID_PARAMETER, 2,
                   "PDU length %u but %zu bytes follow the header", len, n - UL_HEADER_SIZE);
    if (fixed_size_pdu(out->type) && len != 4)
        return bad(&c, UL_ABORT_REASON_INVALID_PARAMETER, 2, "PDU length %u, expected 4", len);
    ul_reader r = ul_reader_make(p + UL_HEADER_SIZE, len, UL_HEADER_SIZE);
    switch (out->type) {
    case UL_PDU_ASSOCIATE_RQ:
    case UL_PDU_ASSOCIATE_AC:
        return parse_associate(&c, &r, out->type == UL_PDU_ASSOCIATE_RQ, &out->assoc);
    case UL_PDU_ASSOCIATE_RJ:
        (void)ul_reader_u8(&r);
        out->reject.result = ul_reader_u8(&r);
        out->reject.source = ul_reader_u8(&r);
        out->reject.reason = ul_reader_u8(&r);
        if (out->reject.result != UL_RJ_PERMANENT && out->reject.result != UL_RJ_TRANSIENT)
            return bad(&c, UL_ABORT_REASON_INVALID_PARAMETER, 7, "result %u", out->reject.result);
        if (out->reject.source < UL_RJ_SOURCE_USER ||
            out->reject.source > UL_RJ_SOURCE_PROVIDER_PRESENTATION)
            return bad(&c, UL_ABORT_REASON_INVALID_PARAMETER, 8, "source %u", out->reject.source);
        return VP_OK;
    case UL_PDU_P_DATA_TF: return parse_p_data(&c, &r, out);
    case UL_PDU_RELEASE_RQ:
    case UL_PDU_RELEASE_RP: return VP_OK; /* 4 reserved bytes, not tested */
    case UL_PDU_ABORT:
        (void)ul_reader_be16(&r);
        out->abort.source = ul_reader_u8(&r);
        out->abort.reason = ul_reader_u8(&r);
        /* Source 1 is reserved; it is taken as is, anything above 2 is invalid. */
        if (out->abort.source > UL_ABORT_SOURCE_PROVIDER)
            return bad(&c, UL_ABORT_REASON_INVALID_PARAMETER, 8, "source %u", out->abort.source);
        return VP_OK;
    default: return VP_OK; /* unreachable: checked above */
    }
}
