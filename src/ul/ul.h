/* SPDX-License-Identifier: MIT */
/*
 * ul: the DICOM Upper Layer protocol (PS3.8 9). The PDU codec (PS3.8 9.3, user information
 * sub-items of PS3.7 D.3.3 and PS3.8 Annex D), the state machine as the standard's own table
 * (PS3.8 9.2, Table 9-10), one association object per connection driven by its caller, and the
 * acceptor's negotiation of an A-ASSOCIATE-RQ (PS3.7 D.3.3, PS3.8 9.3.3 and 9.3.4).
 *
 * The module does no I/O and no logging: transport bytes and service requests come in, bytes
 * to send, indications and timer/transport instructions go out. Any network model can drive it.
 */
#ifndef VP_UL_H
#define VP_UL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

/* ------------------------------------------------------------------------------------------ */
/* Constants of the protocol                                                                  */

#define UL_HEADER_SIZE 6           /* PDU type, reserved, 4-byte PDU length (PS3.8 9.3.1) */
#define UL_AE_TITLE_MAX 16         /* AE title field size (PS3.8 9.3.2, PS3.5 Table 6.2-1) */
#define UL_PROTOCOL_VERSION 0x0001 /* bit 0: version 1 (PS3.8 9.3.2) */
#define UL_APPLICATION_CONTEXT "1.2.840.10008.3.1.1.1" /* DICOM application context (PS3.7 A.2) */
#define UL_DEFAULT_MAX_PDU_LENGTH 16384u               /* what we advertise in 51H unless told */
#define UL_DEFAULT_MAX_ASSOC_PDU_LENGTH 262144u        /* cap on A-ASSOCIATE-RQ/AC PDUs we buffer */
#define UL_MIN_MAX_PDU_LENGTH 1024u                    /* smallest max we advertise ourselves */

/* PDU types, PS3.8 Table 9-11 ... 9-26. */
enum ul_pdu_type {
    UL_PDU_ASSOCIATE_RQ = 0x01,
    UL_PDU_ASSOCIATE_AC = 0x02,
    UL_PDU_ASSOCIATE_RJ = 0x03,
    UL_PDU_P_DATA_TF = 0x04,
    UL_PDU_RELEASE_RQ = 0x05,
    UL_PDU_RELEASE_RP = 0x06,
    UL_PDU_ABORT = 0x07,
};

/* Item and sub-item types, PS3.8 9.3.2 and Annex D, PS3.7 D.3.3. */
enum ul_item_type {
    UL_ITEM_APPLICATION_CONTEXT = 0x10,
    UL_ITEM_PRESENTATION_CONTEXT_RQ = 0x20,
    UL_ITEM_PRESENTATION_CONTEXT_AC = 0x21,
    UL_ITEM_ABSTRACT_SYNTAX = 0x30,
    UL_ITEM_TRANSFER_SYNTAX = 0x40,
    UL_ITEM_USER_INFORMATION = 0x50,
    UL_ITEM_MAX_LENGTH = 0x51,
    UL_ITEM_IMPLEMENTATION_CLASS_UID = 0x52,
    UL_ITEM_ASYNC_OPERATIONS_WINDOW = 0x53,
    UL_ITEM_ROLE_SELECTION = 0x54,
    UL_ITEM_IMPLEMENTATION_VERSION_NAME = 0x55,
    UL_ITEM_SOP_CLASS_EXTENDED = 0x56,
    UL_ITEM_SOP_CLASS_COMMON_EXTENDED = 0x57,
    UL_ITEM_USER_IDENTITY_RQ = 0x58,
    UL_ITEM_USER_IDENTITY_AC = 0x59,
};

/* A-ASSOCIATE-RJ result, source and reason/diag, PS3.8 9.3.4 (Table 9-21). The reason's
 * meaning depends on the source. */
enum ul_rj_result {
    UL_RJ_PERMANENT = 1,
    UL_RJ_TRANSIENT = 2,
};
enum ul_rj_source {
    UL_RJ_SOURCE_USER = 1,                  /* DICOM UL service-user */
    UL_RJ_SOURCE_PROVIDER_ACSE = 2,         /* DICOM UL service-provider (ACSE related function) */
    UL_RJ_SOURCE_PROVIDER_PRESENTATION = 3, /* service-provider (presentation related) */
};
enum ul_rj_reason {
    /* source 1, service-user */
    UL_RJ_USER_NO_REASON = 1,
    UL_RJ_USER_APPLICATION_CONTEXT_NOT_SUPPORTED = 2,
    UL_RJ_USER_CALLING_AE_NOT_RECOGNIZED = 3,
    UL_RJ_USER_CALLED_AE_NOT_RECOGNIZED = 7,
    /* source 2, service-provider (ACSE) */
    UL_RJ_ACSE_NO_REASON = 1,
    UL_RJ_ACSE_PROTOCOL_VERSION_NOT_SUPPORTED = 2,
    /* source 3, service-provider (presentation) */
    UL_RJ_PRESENTATION_TEMPORARY_CONGESTION = 1,
    UL_RJ_PRESENTATION_LOCAL_LIMIT_EXCEEDED = 2,
};

/* A-ABORT source and reason/diag, PS3.8 9.3.8 (Table 9-26). The reason is significant only
 * when the source is the service-provider. */
enum ul_abort_source {
    UL_ABORT_SOURCE_USER = 0,
    UL_ABORT_SOURCE_PROVIDER = 2,
};
enum ul_abort_reason {
    UL_ABORT_REASON_NOT_SPECIFIED = 0,
    UL_ABORT_REASON_UNRECOGNIZED_PDU = 1,
    UL_ABORT_REASON_UNEXPECTED_PDU = 2,
    UL_ABORT_REASON_UNRECOGNIZED_PARAMETER = 4,
    UL_ABORT_REASON_UNEXPECTED_PARAMETER = 5,
    UL_ABORT_REASON_INVALID_PARAMETER = 6,
};

/* Presentation context result/reason in the A-ASSOCIATE-AC, PS3.8 9.3.3.2 (Table 9-18). */
enum ul_pc_result {
    UL_PC_ACCEPTANCE = 0,
    UL_PC_USER_REJECTION = 1,
    UL_PC_NO_REASON = 2,
    UL_PC_ABSTRACT_SYNTAX_NOT_SUPPORTED = 3,
    UL_PC_TRANSFER_SYNTAXES_NOT_SUPPORTED = 4,
};

/* PDV message control header bits, PS3.8 E.2. */
#define UL_PDV_COMMAND 0x01 /* bit 0: 1 = command information, 0 = data set information */
#define UL_PDV_LAST 0x02    /* bit 1: 1 = last fragment of the command or data set */

/* Whether s (len bytes, as found in the 16-byte field) is a valid AE title (PS3.5 Table 6.2-1,
 * AE VR): default repertoire without control characters or backslash, at most 16 bytes, not
 * only spaces. Leading and trailing spaces are insignificant, as is trailing NUL padding. */
bool ul_ae_title_valid(const char *s, size_t len);

/* ------------------------------------------------------------------------------------------ */
/* PDU values                                                                                 */

/*
 * A parsed PDU borrows from two places: strings (AE titles, UIDs) and arrays live in the arena
 * given to ul_pdu_parse, and byte fields (PDV fragments, extended negotiation, user identity)
 * point into the parsed input. Both must outlive the value. For encoding the caller fills the
 * same structs with its own memory. Strings are NUL-terminated, without padding.
 */

/* SCP/SCU Role Selection sub-item (54H), PS3.7 D.3.3.4. */
typedef struct ul_role {
    const char *sop_class_uid; /* SOP class the roles apply to */
    bool scu;                  /* RQ: proposes the SCU role; AC: accepts it */
    bool scp;                  /* RQ: proposes the SCP role; AC: accepts it */
} ul_role;

/* SOP Class Extended Negotiation sub-item (56H), PS3.7 D.3.3.5; kept as bytes. */
typedef struct ul_ext_neg {
    const char *sop_class_uid; /* SOP class the information applies to */
    const uint8_t *info;       /* service-class-application-information, as received */
    size_t info_len;           /* bytes at info */
} ul_ext_neg;

/* An item kept as its raw value bytes (57H, SOP Class Common Extended Negotiation,
 * PS3.7 D.3.3.6). */
typedef struct ul_raw {
    const uint8_t *data; /* item value (after the 4-byte item header) */
    size_t len;          /* bytes at data */
} ul_raw;

/* User Identity sub-items, PS3.7 D.3.3.7: 58H in the RQ, 59H in the AC. */
typedef struct ul_user_identity {
    uint8_t type;                     /* RQ: 1 username, 2 + passcode, 3 Kerberos, 4 SAML, 5 JWT */
    bool positive_response_requested; /* RQ: the requestor wants a 59H back */
    const uint8_t *primary;           /* RQ: primary field (username, ticket, assertion) */
    size_t primary_len;               /* bytes at primary */
    const uint8_t *secondary;         /* RQ: passcode for type 2, else empty */
    size_t secondary_len;             /* bytes at secondary */
    const uint8_t *server_response;   /* AC: server response */
    size_t server_response_len;       /* bytes at server_response */
} ul_user_identity;

/* User Information item (50H) and its sub-items, PS3.8 Annex D, PS3.7 D.3.3. */
typedef struct ul_user_info {
    bool has_max_length;                     /* 51H present */
    uint32_t max_pdu_length;                 /* 51H: largest P-DATA-TF PDU length; 0 = no limit */
    const char *implementation_class_uid;    /* 52H, NULL when absent */
    const char *implementation_version_name; /* 55H (1-16 chars), NULL when absent */
    bool has_async_window;                   /* 53H present */
    uint16_t max_ops_invoked;                /* 53H: maximum number operations invoked */
    uint16_t max_ops_performed;              /* 53H: maximum number operations performed */
    size_t role_count;                       /* 54H items */
    ul_role *roles;                          /* role_count entries */
    size_t ext_neg_count;                    /* 56H items */
    ul_ext_neg *ext_neg;                     /* ext_neg_count entries */
    size_t common_ext_neg_count;             /* 57H items */
    ul_raw *common_ext_neg;                  /* common_ext_neg_count raw item values */
    bool has_user_identity;                  /* 58H (RQ) or 59H (AC) present */
    ul_user_identity user_identity;          /* its fields */
} ul_user_info;

/* Presentation Context item of the RQ (20H), PS3.8 9.3.2.2. */
typedef struct ul_pc_rq {
    uint8_t id;                     /* presentation context ID: odd, 1-255 */
    const char *abstract_syntax;    /* 30H: SOP class UID */
    size_t ts_count;                /* 40H items, at least one */
    const char **transfer_syntaxes; /* ts_count UIDs, in the proposer's order of preference */
} ul_pc_rq;

/* Presentation Context item of the AC (21H), PS3.8 9.3.3.2. */
typedef struct ul_pc_ac {
    uint8_t id;                  /* presentation context ID of the proposal answered */
    uint8_t result;              /* enum ul_pc_result */
    const char *transfer_syntax; /* accepted transfer syntax; NULL unless result is acceptance */
} ul_pc_ac;

/* A-ASSOCIATE-RQ (01H, PS3.8 9.3.2) and A-ASSOCIATE-AC (02H, PS3.8 9.3.3) PDUs. In the AC
 * the AE title fields are reserved: sent as received in the RQ, never tested (9.3.3.2). */
typedef struct ul_associate {
    uint16_t protocol_version;            /* bit 0 set for version 1 */
    char called_ae[UL_AE_TITLE_MAX + 1];  /* called AE title, spaces trimmed */
    char calling_ae[UL_AE_TITLE_MAX + 1]; /* calling AE title, spaces trimmed */
    const char *application_context;      /* 10H: application context name */
    size_t rq_pc_count;                   /* RQ: 20H items */
    ul_pc_rq *rq_pcs;                     /* RQ: rq_pc_count proposals */
    size_t ac_pc_count;                   /* AC: 21H items */
    ul_pc_ac *ac_pcs;                     /* AC: ac_pc_count answers */
    ul_user_info user_info;               /* 50H */
} ul_associate;

/* A-ASSOCIATE-RJ (03H), PS3.8 9.3.4. */
typedef struct ul_reject {
    uint8_t result; /* enum ul_rj_result */
    uint8_t source; /* enum ul_rj_source */
    uint8_t reason; /* enum ul_rj_reason, meaning per source */
} ul_reject;

/* One presentation data value item of a P-DATA-TF PDU, PS3.8 9.3.5.1 and Annex E. */
typedef struct ul_pdv {
    uint8_t pc_id;       /* presentation context ID */
    uint8_t control;     /* message control header: UL_PDV_COMMAND | UL_PDV_LAST */
    const uint8_t *data; /* the fragment */
    size_t len;          /* bytes at data */
} ul_pdv;

/* A-ABORT (07H), PS3.8 9.3.8. */
typedef struct ul_abort {
    uint8_t source; /* enum ul_abort_source */
    uint8_t reason; /* enum ul_abort_reason (service-provider source only) */
} ul_abort;

/* Any PDU. */
typedef struct ul_pdu {
    uint8_t type;       /* enum ul_pdu_type; selects the member below */
    ul_associate assoc; /* A-ASSOCIATE-RQ or -AC */
    ul_reject reject;   /* A-ASSOCIATE-RJ */
    size_t pdv_count;   /* P-DATA-TF: PDV items, at least one */
    ul_pdv *pdvs;       /* P-DATA-TF: pdv_count PDVs */
    ul_abort abort;     /* A-ABORT */
} ul_pdu;

/* Caps on what a peer may make us buffer (Redis-style, checked before buffering). */
typedef struct ul_limits {
    uint32_t max_pdu_length;       /* P-DATA-TF PDU length (our advertised 51H); 0 = default */
    uint32_t max_assoc_pdu_length; /* any other PDU; 0 = UL_DEFAULT_MAX_ASSOC_PDU_LENGTH */
} ul_limits;

/*
 * Resumable framing (PS3.8 9.3.1). Looks at the n bytes at p, the start of a PDU. When a whole
 * PDU is present returns VP_OK with its total size (header included) in *size. When bytes are
 * missing returns VP_EAGAIN with the number still needed in *size (6 - n until the header is
 * complete, then the rest of the PDU). The PDU length is checked against limits (NULL =
 * defaults) as soon as the header is present, before the caller buffers anything: VP_ELIMIT
 * when too long, VP_EPARSE for an unknown PDU type. On error *abort_reason (may be NULL) gets
 * the A-ABORT reason to send (PS3.8 9.3.8) and err names the PDU type and length.
 */
vp_status ul_pdu_frame(const uint8_t *p, size_t n, const ul_limits *limits, size_t *size,
                       uint8_t *abort_reason, vp_error *err);

/*
 * Parses exactly one PDU (n bytes: header and body). Strings and arrays are allocated in arena;
 * byte fields point into p (see above). VP_EAGAIN when p holds less than the whole PDU,
 * VP_EPARSE when it is malformed (err names the PDU or item type and the byte offset;
 * *abort_reason, when not NULL, gets the PS3.8 9.3.8 reason to abort with), VP_ENOMEM.
 * No limit is applied here: frame first.
 */
vp_status ul_pdu_parse(const uint8_t *p, size_t n, vp_arena *arena, ul_pdu *out,
                       uint8_t *abort_reason, vp_error *err);

/*
 * Appends the encoding of pdu to out. Every length is computed from the content. VP_EINVAL
 * (with err) when a value cannot be encoded: invalid AE title or UID, even presentation
 * context ID, an item longer than its length field allows. Nothing is appended on failure.
 */
vp_status ul_pdu_encode(const ul_pdu *pdu, vp_buf *out, vp_error *err);

/* "A-ASSOCIATE-RQ" etc.; "unknown PDU" otherwise. */
const char *ul_pdu_type_name(uint8_t type);

/* ------------------------------------------------------------------------------------------ */
/* State machine (PS3.8 9.2, Table 9-10)                                                      */

/* States, PS3.8 Table 9-1. */
enum ul_state {
    UL_STA1 = 1, /* Idle */
    UL_STA2,     /* Transport connection open (awaiting A-ASSOCIATE-RQ PDU) */
    UL_STA3,     /* Awaiting local A-ASSOCIATE response primitive */
    UL_STA4,     /* Awaiting transport connection opening to complete */
    UL_STA5,     /* Awaiting A-ASSOCIATE-AC or A-ASSOCIATE-RJ PDU */
    UL_STA6,     /* Association established and ready for data transfer */
    UL_STA7,     /* Awaiting A-RELEASE-RP PDU */
    UL_STA8,     /* Awaiting local A-RELEASE response primitive */
    UL_STA9,     /* Release collision requestor side; awaiting A-RELEASE response primitive */
    UL_STA10,    /* Release collision acceptor side; awaiting A-RELEASE-RP PDU */
    UL_STA11,    /* Release collision requestor side; awaiting A-RELEASE-RP PDU */
    UL_STA12,    /* Release collision acceptor side; awaiting A-RELEASE response primitive */
    UL_STA13,    /* Awaiting Transport Connection Close Indication */
};
#define UL_STATE_COUNT 13

/* Events, PS3.8 Table 9-10 rows. */
enum ul_fsm_event {
    UL_EVT1 = 1, /* A-ASSOCIATE request (local user) */
    UL_EVT2,     /* Transport connect confirmation (local transport service) */
    UL_EVT3,     /* A-ASSOCIATE-AC PDU (received on transport connection) */
    UL_EVT4,     /* A-ASSOCIATE-RJ PDU (received on transport connection) */
    UL_EVT5,     /* Transport connection indication (local transport service) */
    UL_EVT6,     /* A-ASSOCIATE-RQ PDU (received on transport connection) */
    UL_EVT7,     /* A-ASSOCIATE response primitive (accept) */
    UL_EVT8,     /* A-ASSOCIATE response primitive (reject) */
    UL_EVT9,     /* P-DATA request primitive */
    UL_EVT10,    /* P-DATA-TF PDU */
    UL_EVT11,    /* A-RELEASE request primitive */
    UL_EVT12,    /* A-RELEASE-RQ PDU (received on open transport connection) */
    UL_EVT13,    /* A-RELEASE-RP PDU (received on transport connection) */
    UL_EVT14,    /* A-RELEASE response primitive */
    UL_EVT15,    /* A-ABORT request primitive */
    UL_EVT16,    /* A-ABORT PDU (received on open transport connection) */
    UL_EVT17,    /* Transport connection closed indication (local transport service) */
    UL_EVT18,    /* ARTIM timer expired (Association reject/release timer) */
    UL_EVT19,    /* Unrecognized or invalid PDU received */
};
#define UL_EVENT_COUNT 19

/* Actions, PS3.8 Tables 9-6 to 9-9. */
enum ul_action {
    UL_ACTION_NONE = 0, /* empty cell: the event is not valid in the state */
    UL_AE_1,
    UL_AE_2,
    UL_AE_3,
    UL_AE_4,
    UL_AE_5,
    UL_AE_6,
    UL_AE_7,
    UL_AE_8,
    UL_DT_1,
    UL_DT_2,
    UL_AR_1,
    UL_AR_2,
    UL_AR_3,
    UL_AR_4,
    UL_AR_5,
    UL_AR_6,
    UL_AR_7,
    UL_AR_8,
    UL_AR_9,
    UL_AR_10,
    UL_AA_1,
    UL_AA_2,
    UL_AA_3,
    UL_AA_4,
    UL_AA_5,
    UL_AA_6,
    UL_AA_7,
    UL_AA_8,
};

/* One cell of Table 9-10. Two actions choose between two next states (PS3.8 9.2.3): AE-6
 * (Sta3 if the RQ is acceptable to the service-provider, else Sta13) and AR-8 (Sta9 for the
 * association-requestor, Sta10 for the acceptor); next_alt holds the second. */
typedef struct ul_transition {
    uint8_t action;   /* enum ul_action */
    uint8_t next;     /* enum ul_state */
    uint8_t next_alt; /* enum ul_state for AE-6 and AR-8, else 0 */
} ul_transition;

/* Table 9-10 lookup. Returns false (and a zero transition) for an empty cell or an out-of-range
 * state or event. Pure. */
bool ul_fsm_next(enum ul_state state, enum ul_fsm_event event, ul_transition *out);
/* "Sta6", "Evt10", "DT-2" for messages and tests; "?" when out of range. */
const char *ul_state_name(enum ul_state state);
const char *ul_event_name(enum ul_fsm_event event);
const char *ul_action_name(enum ul_action action);

/* ------------------------------------------------------------------------------------------ */
/* Association                                                                                */

typedef struct ul_assoc ul_assoc;

typedef struct ul_assoc_opts {
    bool requestor;                /* association-requestor (SCU); else acceptor (SCP) */
    uint32_t max_pdu_length;       /* our 51H: largest P-DATA-TF we take; 0 = 16384 */
    uint32_t max_assoc_pdu_length; /* largest other PDU we buffer; 0 = 256 KiB */
} ul_assoc_opts;

/* What the caller must do or learn after a call (PS3.8 9.2 primitives and local actions). */
enum ul_event_type {
    UL_EV_TRANSPORT_CONNECT = 1, /* AE-1: open the transport connection to the peer */
    UL_EV_TRANSPORT_CLOSE,       /* close the transport connection (after sending output) */
    UL_EV_ARTIM_START,           /* start, or restart, the ARTIM timer */
    UL_EV_ARTIM_STOP,            /* stop the ARTIM timer */
    UL_EV_ASSOCIATE_INDICATION,  /* acceptor: A-ASSOCIATE-RQ received (pdu->assoc) */
    UL_EV_ASSOCIATE_ACCEPTED,    /* requestor: A-ASSOCIATE confirmation, accept (pdu->assoc) */
    UL_EV_ASSOCIATE_REJECTED,    /* requestor: A-ASSOCIATE confirmation, reject (pdu->reject) */
    UL_EV_P_DATA,                /* P-DATA indication (pdu->pdvs) */
    UL_EV_RELEASE_INDICATION,    /* A-RELEASE indication: answer with ul_assoc_release_response */
    UL_EV_RELEASE_CONFIRMATION,  /* A-RELEASE confirmation: the association is released */
    UL_EV_ABORT,                 /* A-ABORT (user source) or A-P-ABORT (provider) indication */
};

typedef struct ul_event {
    uint8_t type;       /* enum ul_event_type */
    const ul_pdu *pdu;  /* the received PDU, for indications and confirmations; else NULL */
    bool provider;      /* UL_EV_ABORT: A-P-ABORT (service-provider) rather than A-ABORT */
    uint8_t source;     /* UL_EV_ABORT: abort source (PS3.8 9.3.8) */
    uint8_t reason;     /* UL_EV_ABORT: abort reason/diag */
    const char *detail; /* UL_EV_ABORT raised locally: why, for the log; else "" */
} ul_event;

/* New association object in Sta1. VP_ENOMEM or VP_EINVAL (max_pdu_length below 1024). */
vp_status ul_assoc_new(const ul_assoc_opts *opts, ul_assoc **out, vp_error *err);
void ul_assoc_free(ul_assoc *a);

/*
 * Inputs. Each call is one or more events of Table 9-10. A call whose event has an empty cell
 * in the current state returns VP_EINVAL and changes nothing. Events a call produces (see
 * ul_assoc_event_next) and the PDU they point to stay valid until the next input call; bytes
 * to send accumulate in ul_assoc_output. After VP_ENOMEM the association is unusable: free it.
 */

/* Requestor, Evt1: A-ASSOCIATE request. rq is encoded now (the object keeps no pointer);
 * its 51H is set to our max_pdu_length, and 52H/55H default to vetpacs' when NULL. */
vp_status ul_assoc_request(ul_assoc *a, const ul_associate *rq, vp_error *err);
/* Requestor, Evt2: transport connect confirmation. */
vp_status ul_assoc_transport_connected(ul_assoc *a, vp_error *err);
/* Acceptor, Evt5: transport connection indication (a peer connected). */
vp_status ul_assoc_transport_accepted(ul_assoc *a, vp_error *err);
/*
 * Evt3/4/6/10/12/13/16/19: transport bytes in. Consumes at most one PDU per call and says
 * how many bytes it took in *used: call again with the rest after draining events. The PDU
 * length is checked against our limits from its header, before the body is buffered; an
 * inbound P-DATA-TF longer than our 51H, a PDV on a context that was not accepted, or a
 * malformed PDU is Evt19 (A-ABORT to the peer, A-P-ABORT indication). Afterwards, and in
 * Sta13, bytes are consumed and dropped.
 */
vp_status ul_assoc_feed(ul_assoc *a, const uint8_t *p, size_t n, size_t *used, vp_error *err);
/* Acceptor, Evt7: A-ASSOCIATE response (accept). ac->user_info 51H is set to ours; 52H/55H
 * default to vetpacs'. Contexts with result acceptance become usable for P-DATA. */
vp_status ul_assoc_accept(ul_assoc *a, const ul_associate *ac, vp_error *err);
/* Acceptor, Evt8: A-ASSOCIATE response (reject). */
vp_status ul_assoc_reject(ul_assoc *a, const ul_reject *rj, vp_error *err);
/* Evt9: P-DATA request. Sends len bytes of a command (command = true) or data set on
 * presentation context pc_id, cut into PDVs that fit the peer's maximum length (one PDV per
 * PDU). last marks the end of the message, so a large data set can be passed in pieces. */
vp_status ul_assoc_send_pdata(ul_assoc *a, uint8_t pc_id, bool command, const uint8_t *data,
                              size_t len, bool last, vp_error *err);
/* Evt9 for a whole message: command set cmd and data set data (NULL: none). When both fit in
 * one PDU of the peer's maximum length they go as one P-DATA-TF with two PDVs (PS3.8 9.3.5),
 * which saves the peer a read per message (C-FIND answers); otherwise as two
 * ul_assoc_send_pdata calls. */
vp_status ul_assoc_send_message(ul_assoc *a, uint8_t pc_id, const uint8_t *cmd, size_t cmd_len,
                                const uint8_t *data, size_t data_len, vp_error *err);
/* Evt11: A-RELEASE request. */
vp_status ul_assoc_release_request(ul_assoc *a, vp_error *err);
/* Evt14: A-RELEASE response (also in a release collision). */
vp_status ul_assoc_release_response(ul_assoc *a, vp_error *err);
/* Evt15: A-ABORT request (service-user source). */
vp_status ul_assoc_abort(ul_assoc *a, vp_error *err);
/* Evt17: the transport connection closed (not needed after we asked to close it: the
 * association is then in Sta1 already and the call returns VP_EINVAL). */
vp_status ul_assoc_transport_closed(ul_assoc *a, vp_error *err);
/* Evt18: the ARTIM timer expired. */
vp_status ul_assoc_artim_expired(ul_assoc *a, vp_error *err);

/* Takes the next event of the last call into *ev; false when there is none left. */
bool ul_assoc_event_next(ul_assoc *a, ul_event *ev);
/* Bytes to send, in order. The caller sends them and removes what was sent with
 * ul_assoc_output_consume (or vp_buf_reset). Borrowed; lives as long as the association. */
vp_buf *ul_assoc_output(ul_assoc *a);
void ul_assoc_output_consume(ul_assoc *a, size_t n);

enum ul_state ul_assoc_state(const ul_assoc *a);
/* The peer's 51H (0 = no limit) once the association is established, else 0. */
uint32_t ul_assoc_peer_max_pdu_length(const ul_assoc *a);
/* Whether presentation context id was accepted on this association. */
bool ul_assoc_pc_accepted(const ul_assoc *a, uint8_t id);

/* ------------------------------------------------------------------------------------------ */
/* Negotiation for the acceptor (PS3.7 D.3.3, PS3.8 9.3.3, 9.3.4)                            */

/* What we accept for one abstract syntax. */
typedef struct ul_syntax_policy {
    const char *abstract_syntax;          /* SOP class UID */
    const char *const *transfer_syntaxes; /* acceptable, NULL-terminated; NULL = any */
    bool scu_role;                        /* we may act as SCU for it (54H answer) */
    bool scp_role;                        /* we may act as SCP for it (default role) */
} ul_syntax_policy;

typedef struct ul_policy {
    const char *ae_title;             /* our AE title */
    bool require_called_ae;           /* reject when the called AE is not ours */
    const char *const *calling_aes;   /* accepted calling AEs, NULL-terminated; NULL = any */
    bool limit_reached;               /* too many associations: reject transiently */
    const ul_syntax_policy *syntaxes; /* accepted abstract syntaxes */
    size_t syntax_count;              /* entries at syntaxes */
    /* Alternatively (or in addition) a function deciding on an abstract syntax: returns the
     * policy for it or NULL when not supported. Tried when the list has no entry. */
    const ul_syntax_policy *(*lookup)(void *ctx, const char *abstract_syntax);
    void *lookup_ctx; /* passed to lookup */
} ul_policy;

/*
 * Answers an A-ASSOCIATE-RQ. Returns VP_OK with *accepted = true and ac filled (allocated in
 * arena) or *accepted = false and rj filled. Rejections (PS3.8 9.3.4): protocol version without
 * bit 0 -> permanent, source 2, reason 2; limit reached -> transient, source 3, reason 2
 * (local-limit-exceeded); unknown application context -> permanent, source 1, reason 2; called
 * AE not ours -> permanent, source 1, reason 7; calling AE not listed -> permanent, source 1,
 * reason 3. Otherwise each context gets acceptance with a transfer syntax chosen by
 * ul_negotiate_transfer_syntax, or reason 3 / 4; when none is accepted the association is still
 * accepted (PS3.8 leaves this to the user). 53H is answered 1,1; 54H per context as allowed.
 */
vp_status ul_negotiate(const ul_associate *rq, const ul_policy *policy, vp_arena *arena,
                       bool *accepted, ul_associate *ac, ul_reject *rj, vp_error *err);

/* Transfer syntax choice: among the proposed ones we accept (acceptable NULL-terminated, NULL =
 * any), the first in the proposer's order that is not Implicit VR Little Endian, so compressed
 * data is kept as the modality sends it and Explicit VR LE is preferred over Implicit; Implicit
 * VR LE when that is all we share. NULL when nothing is shared. */
const char *ul_negotiate_transfer_syntax(const ul_pc_rq *pc, const char *const *acceptable);

#endif /* VP_UL_H */
