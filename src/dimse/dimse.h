/* SPDX-License-Identifier: MIT */
/*
 * dimse: the DIMSE-C message layer (PS3.7). Command sets of C-ECHO, C-STORE, C-FIND, C-MOVE,
 * C-GET and C-CANCEL encoded and decoded (PS3.7 6.3, 9.3, Annex E), the status code table and
 * the one map from vp_status to DIMSE status (PS3.7 Annex C, PS3.4 B.2.3, C.4), reassembly of
 * messages from PDV fragments and the reverse cutting of messages into PDV fragments
 * (PS3.7 6.3.1, PS3.8 9.3.5 and Annex E).
 *
 * The module sits above the upper layer but does not include it: its input is a PDV fragment
 * (presentation context ID, command or data, last or not, bytes), which is all the upper layer
 * has to hand over. It does no I/O and no logging: bytes in, values out.
 */
#ifndef VP_DIMSE_H
#define VP_DIMSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include "dcm/dcm.h"

/* ------------------------------------------------------------------------------------------ */
/* Command sets (PS3.7 6.3, 9.3, E.1)                                                         */

/* Command Field (0000,0100) values, PS3.7 Table E.1-1. The N- messages are named so that a
 * decoder can say what it refuses; this module encodes only the DIMSE-C ones. */
enum dimse_command {
    DIMSE_C_STORE_RQ = 0x0001,
    DIMSE_C_STORE_RSP = 0x8001,
    DIMSE_C_GET_RQ = 0x0010,
    DIMSE_C_GET_RSP = 0x8010,
    DIMSE_C_FIND_RQ = 0x0020,
    DIMSE_C_FIND_RSP = 0x8020,
    DIMSE_C_MOVE_RQ = 0x0021,
    DIMSE_C_MOVE_RSP = 0x8021,
    DIMSE_C_ECHO_RQ = 0x0030,
    DIMSE_C_ECHO_RSP = 0x8030,
    DIMSE_N_EVENT_REPORT_RQ = 0x0100,
    DIMSE_N_GET_RQ = 0x0110,
    DIMSE_N_SET_RQ = 0x0120,
    DIMSE_N_ACTION_RQ = 0x0130,
    DIMSE_N_CREATE_RQ = 0x0140,
    DIMSE_N_DELETE_RQ = 0x0150,
    DIMSE_C_CANCEL_RQ = 0x0FFF,
};

/* Priority (0000,0700), PS3.7 Table E.1-1. */
enum dimse_priority {
    DIMSE_PRIORITY_MEDIUM = 0x0000,
    DIMSE_PRIORITY_HIGH = 0x0001,
    DIMSE_PRIORITY_LOW = 0x0002,
};

/* Command Data Set Type (0000,0800): 0101H means no data set, any other value that one
 * follows (PS3.7 Table E.1-1). We send 0001H, as dcmtk and pynetdicom do. */
#define DIMSE_DATASET_ABSENT 0x0101
#define DIMSE_DATASET_PRESENT 0x0001

#define DIMSE_AE_MAX 16            /* AE VR: at most 16 characters (PS3.5 Table 6.2-1) */
#define DIMSE_ERROR_COMMENT_MAX 64 /* Error Comment is LO: at most 64 characters */
#define DIMSE_OFFENDING_MAX 16     /* Offending Element values kept (VM 1-n) */

/* Which optional fields of a dimse_msg are set (bits of dimse_msg.present). Command Field and
 * Command Data Set Type are always there and have no bit. */
enum dimse_field {
    DIMSE_F_AFFECTED_SOP_CLASS_UID = 1u << 0,    /* (0000,0002) UI */
    DIMSE_F_MESSAGE_ID = 1u << 1,                /* (0000,0110) US */
    DIMSE_F_MESSAGE_ID_RESPONDED = 1u << 2,      /* (0000,0120) US */
    DIMSE_F_MOVE_DESTINATION = 1u << 3,          /* (0000,0600) AE */
    DIMSE_F_PRIORITY = 1u << 4,                  /* (0000,0700) US */
    DIMSE_F_STATUS = 1u << 5,                    /* (0000,0900) US */
    DIMSE_F_OFFENDING_ELEMENT = 1u << 6,         /* (0000,0901) AT */
    DIMSE_F_ERROR_COMMENT = 1u << 7,             /* (0000,0902) LO */
    DIMSE_F_ERROR_ID = 1u << 8,                  /* (0000,0903) US */
    DIMSE_F_AFFECTED_SOP_INSTANCE_UID = 1u << 9, /* (0000,1000) UI */
    DIMSE_F_REMAINING = 1u << 10,                /* (0000,1020) US */
    DIMSE_F_COMPLETED = 1u << 11,                /* (0000,1021) US */
    DIMSE_F_FAILED = 1u << 12,                   /* (0000,1022) US */
    DIMSE_F_WARNING = 1u << 13,                  /* (0000,1023) US */
    DIMSE_F_MOVE_ORIGINATOR_AE = 1u << 14,       /* (0000,1030) AE */
    DIMSE_F_MOVE_ORIGINATOR_ID = 1u << 15,       /* (0000,1031) US */
};
#define DIMSE_F_SUBOPERATIONS                                                                      \
    (DIMSE_F_REMAINING | DIMSE_F_COMPLETED | DIMSE_F_FAILED | DIMSE_F_WARNING)

/* Tolerated deviations seen while decoding (bits of dimse_msg.quirks), for the edge to log. */
enum dimse_quirk {
    DIMSE_QUIRK_NO_GROUP_LENGTH = 1u << 0,  /* (0000,0000) absent */
    DIMSE_QUIRK_BAD_GROUP_LENGTH = 1u << 1, /* (0000,0000) not first or value wrong */
    DIMSE_QUIRK_UNKNOWN_ELEMENT = 1u << 2,  /* a group 0000 element this module does not use */
    DIMSE_QUIRK_FOREIGN_FIELD = 1u << 3,    /* a known field that this command does not have */
    DIMSE_QUIRK_LONG_TEXT = 1u << 4,        /* Error Comment or Offending Element cut */
};

/*
 * One DIMSE-C command set. A single flat struct for every message: the per-command rules
 * (which fields are mandatory, allowed, whether a data set follows) live in one table in
 * msg.c that reads line by line like PS3.7 9.3, so there is one encoder and one decoder.
 * The dimse_msg_*_rq / dimse_msg_response builders give typed construction.
 * Plain value type: no pointers, copy freely.
 */
typedef struct dimse_msg {
    uint16_t command_field;        /* (0000,0100) enum dimse_command */
    uint32_t present;              /* DIMSE_F_* bits: which fields below are set */
    bool has_dataset;              /* (0000,0800) is not 0101H: a data set follows */
    uint16_t message_id;           /* (0000,0110) Message ID (requests) */
    uint16_t message_id_responded; /* (0000,0120) responses and C-CANCEL-RQ */
    uint16_t priority;             /* (0000,0700) enum dimse_priority */
    uint16_t status;               /* (0000,0900) Status (responses) */
    uint16_t error_id;             /* (0000,0903) Error ID */
    uint16_t remaining;            /* (0000,1020) Number of Remaining Sub-operations */
    uint16_t completed;            /* (0000,1021) Number of Completed Sub-operations */
    uint16_t failed;               /* (0000,1022) Number of Failed Sub-operations */
    uint16_t warning;              /* (0000,1023) Number of Warning Sub-operations */
    uint16_t move_originator_id;   /* (0000,1031) Move Originator Message ID */
    uint8_t offending_count;       /* values in offending_element */
    uint32_t quirks;               /* decode only: DIMSE_QUIRK_* bits; ignored by encode */
    uint32_t offending_element[DIMSE_OFFENDING_MAX]; /* (0000,0901) tags, (gggg << 16) | eeee */
    char affected_sop_class_uid[DCM_UID_MAX + 1];    /* (0000,0002), NUL-terminated */
    char affected_sop_instance_uid[DCM_UID_MAX + 1]; /* (0000,1000), NUL-terminated */
    char move_destination[DIMSE_AE_MAX + 1];         /* (0000,0600), no padding */
    char move_originator_ae[DIMSE_AE_MAX + 1];       /* (0000,1030), no padding */
    char error_comment[DIMSE_ERROR_COMMENT_MAX + 1]; /* (0000,0902), printable ASCII */
} dimse_msg;

/* "C-STORE-RQ"; "unknown" for other values. */
const char *dimse_command_name(uint16_t command_field);
/* Whether the command field is one this module encodes and decodes (C- messages). */
bool dimse_command_known(uint16_t command_field);
/* Whether the command field is a response (bit 15 set, PS3.7 E.1). */
bool dimse_command_is_response(uint16_t command_field);

/* Clears m and sets its command field. */
void dimse_msg_init(dimse_msg *m, uint16_t command_field);
/* Typed builders. UIDs and AE titles are checked: VP_EINVAL (m left half-built) when not. */
void dimse_msg_echo_rq(dimse_msg *m, uint16_t message_id);
vp_status dimse_msg_store_rq(dimse_msg *m, uint16_t message_id, uint16_t priority,
                             const char *sop_class_uid, const char *sop_instance_uid);
vp_status dimse_msg_find_rq(dimse_msg *m, uint16_t message_id, uint16_t priority,
                            const char *sop_class_uid);
vp_status dimse_msg_get_rq(dimse_msg *m, uint16_t message_id, uint16_t priority,
                           const char *sop_class_uid);
vp_status dimse_msg_move_rq(dimse_msg *m, uint16_t message_id, uint16_t priority,
                            const char *sop_class_uid, const char *move_destination);
void dimse_msg_cancel_rq(dimse_msg *m, uint16_t message_id_responded);
/* The response to request rq with status: command field | 8000H, Message ID Being Responded
 * To, and the Affected SOP Class / Instance UIDs that PS3.7 9.3 lets a response echo. No data
 * set. rq must be a request other than C-CANCEL-RQ (else VP_EINVAL). */
vp_status dimse_msg_response(dimse_msg *rsp, const dimse_msg *rq, uint16_t status);
/* Move Originator AE Title and Message ID of a C-STORE-RQ that is a C-MOVE sub-operation. */
vp_status dimse_msg_set_move_originator(dimse_msg *m, const char *ae, uint16_t message_id);
/* Error Comment: cut to 64 characters, characters LO may not hold become '?'. */
void dimse_msg_set_error_comment(dimse_msg *m, const char *comment);
/* Number of Remaining/Completed/Failed/Warning Sub-operations of a C-MOVE/C-GET response. */
void dimse_msg_set_suboperations(dimse_msg *m, uint16_t remaining, uint16_t completed,
                                 uint16_t failed, uint16_t warning);

/*
 * Encodes m as a command set in Implicit VR Little Endian (PS3.7 6.3.1), Command Group Length
 * first and computed, appended to out. VP_EINVAL when m is not a C- message, misses a field
 * its command requires, holds one its command does not have, or a data set rule is broken.
 */
vp_status dimse_msg_encode(const dimse_msg *m, vp_buf *out, vp_error *err);

/* Largest command set accepted by the decoder and the reassembler by default. */
#define DIMSE_COMMAND_MAX_DEFAULT 65536

/*
 * Decodes a command set (Implicit VR Little Endian) into out. Errors:
 *  - VP_EPARSE / VP_ETRUNC: not a well-formed command set (bad element lengths or values,
 *    elements outside group 0000, a mandatory field missing, a data set rule broken);
 *  - VP_EUNSUPPORTED: the Command Field is missing from PS3.7 E.1 or names an N- message;
 *  - VP_ELIMIT: more than DIMSE_COMMAND_MAX_DEFAULT bytes; VP_ENOMEM.
 * Even on failure out holds every field that could be read (see out->present), so the caller
 * can answer a request with a Message ID with a failure status (dimse_status_from_vp) rather
 * than abort. A missing or wrong Command Group Length is tolerated and noted in out->quirks:
 * the PDV "last fragment" bit, not the group length, delimits a command set (PS3.8 E.2), and
 * dcmtk and pynetdicom ignore its value too.
 */
vp_status dimse_msg_decode(const void *data, size_t len, dimse_msg *out, vp_error *err);

/* Field-by-field equality of two messages (quirks are ignored). */
bool dimse_msg_equal(const dimse_msg *a, const dimse_msg *b);

/* ------------------------------------------------------------------------------------------ */
/* Status codes (PS3.7 Annex C; PS3.4 B.2.3, C.4.1.1.4, C.4.2.1.5, C.4.3.1.4)                 */

/* Status Classes, PS3.7 Annex C. */
enum dimse_status_class {
    DIMSE_CLASS_SUCCESS,
    DIMSE_CLASS_WARNING,
    DIMSE_CLASS_FAILURE,
    DIMSE_CLASS_CANCEL,
    DIMSE_CLASS_PENDING,
};

/* The service a status belongs to: meanings of Axxx, Bxxx and Cxxx differ per service. */
enum dimse_service {
    DIMSE_SVC_ECHO,
    DIMSE_SVC_STORE,
    DIMSE_SVC_FIND,
    DIMSE_SVC_MOVE,
    DIMSE_SVC_GET,
    DIMSE_SVC_COUNT
};

#define DIMSE_STATUS_SUCCESS 0x0000
#define DIMSE_STATUS_PROCESSING_FAILURE 0x0110 /* PS3.7 C.5 general codes */
#define DIMSE_STATUS_DUPLICATE_SOP_INSTANCE 0x0111
#define DIMSE_STATUS_SOP_CLASS_NOT_SUPPORTED 0x0122
#define DIMSE_STATUS_NOT_AUTHORIZED 0x0124
#define DIMSE_STATUS_DUPLICATE_INVOCATION 0x0210
#define DIMSE_STATUS_UNRECOGNIZED_OPERATION 0x0211
#define DIMSE_STATUS_MISTYPED_ARGUMENT 0x0212
#define DIMSE_STATUS_RESOURCE_LIMITATION 0x0213
#define DIMSE_STATUS_OUT_OF_RESOURCES 0xA700         /* C-STORE, C-FIND */
#define DIMSE_STATUS_OUT_OF_RESOURCES_MATCHES 0xA701 /* C-MOVE, C-GET */
#define DIMSE_STATUS_OUT_OF_RESOURCES_SUBOPS 0xA702  /* C-MOVE, C-GET */
#define DIMSE_STATUS_MOVE_DESTINATION_UNKNOWN 0xA801 /* C-MOVE */
#define DIMSE_STATUS_DATASET_MISMATCH 0xA900         /* all but C-ECHO */
#define DIMSE_STATUS_CANNOT_UNDERSTAND 0xC000        /* C-STORE; "unable to process" else */
#define DIMSE_STATUS_UNABLE_TO_PROCESS_IO 0xC001     /* vetpacs: the archive failed (I/O) */
#define DIMSE_STATUS_COERCION 0xB000                 /* C-STORE warning */
#define DIMSE_STATUS_SUBOPS_WARNING 0xB000           /* C-MOVE, C-GET warning */
#define DIMSE_STATUS_ELEMENTS_DISCARDED 0xB006       /* C-STORE warning */
#define DIMSE_STATUS_DATASET_MISMATCH_WARNING 0xB007 /* C-STORE warning */
#define DIMSE_STATUS_CANCEL 0xFE00
#define DIMSE_STATUS_PENDING 0xFF00
#define DIMSE_STATUS_PENDING_WARNING 0xFF01 /* C-FIND: optional keys unsupported */

/* Status Class of a code, PS3.7 Annex C. Codes outside the classes Annex C allows (which
 * "implementations shall not use") are treated as failures. */
enum dimse_status_class dimse_status_class(uint16_t status);
/* "Success", "Warning", "Failure", "Cancel", "Pending". */
const char *dimse_status_class_name(enum dimse_status_class c);
/* Meaning of a code for a service, for logs: "Refused: Out of Resources". Never NULL. */
const char *dimse_status_name(enum dimse_service svc, uint16_t status);
/* Service of a command field (requests and responses); DIMSE_SVC_COUNT for C-CANCEL and
 * unknown values. */
enum dimse_service dimse_service_of(uint16_t command_field);

/*
 * THE map from a vetpacs result to the DIMSE status answered for a service (the one place;
 * see the table in status.c). VP_OK gives Success; for C-MOVE / C-GET it is the status of the
 * request itself, before sub-operations: see dimse_status_suboperations for the final one.
 */
uint16_t dimse_status_from_vp(enum dimse_service svc, vp_status st);
/* Final C-MOVE / C-GET status from the sub-operation counts (PS3.4 C.4.2.3.1, C.4.3.3.1):
 * Success when none failed or warned, Failure A702 when all failed, else Warning B000. */
uint16_t dimse_status_suboperations(uint16_t completed, uint16_t failed, uint16_t warning);

/* ------------------------------------------------------------------------------------------ */
/* Message assembly (PS3.7 6.3.1, PS3.8 9.3.5 and Annex E)                                    */

/* One PDV: a command or data set fragment as the upper layer delivers it. data is borrowed
 * for the duration of the call. */
typedef struct dimse_pdv {
    uint8_t context_id;  /* Presentation Context ID, odd 1..255 (PS3.8 9.3.2.2) */
    bool is_command;     /* message control header bit 0 (PS3.8 E.2) */
    bool is_last;        /* message control header bit 1 */
    const uint8_t *data; /* fragment bytes (may be NULL when len is 0) */
    size_t len;          /* fragment length */
} dimse_pdv;

enum dimse_event_type {
    DIMSE_EV_NONE,        /* fragment absorbed; feed the next one */
    DIMSE_EV_COMMAND,     /* a command set is complete and decoded: msg */
    DIMSE_EV_BAD_COMMAND, /* a command set is complete but did not decode: msg partial */
    DIMSE_EV_DATA,        /* streaming: a data set fragment (data, len), last when is_last */
    DIMSE_EV_MESSAGE,     /* collecting: the data set is complete (data, len) */
};

/* What one fed fragment produced. Pointers are borrowed: valid until the next feed. */
typedef struct dimse_event {
    enum dimse_event_type type; /* see enum dimse_event_type */
    const dimse_msg *msg;       /* COMMAND, BAD_COMMAND, DATA, MESSAGE: the message's command */
    uint8_t context_id;         /* presentation context of the message */
    vp_status decode_status;    /* BAD_COMMAND: why (map with dimse_status_from_vp) */
    const uint8_t *data;        /* DATA: the fragment (the fed bytes); MESSAGE: the data set */
    size_t len;                 /* bytes at data */
    bool is_last;               /* DATA: the data set's last fragment; MESSAGE: true */
    bool overflow; /* MESSAGE: the data set passed the collect cap and was skipped (data NULL) */
} dimse_event;

typedef struct dimse_assembler dimse_assembler;

/* New reassembler for one association; max_command caps a command set's bytes (0 = default
 * DIMSE_COMMAND_MAX_DEFAULT). NULL when out of memory. */
dimse_assembler *dimse_assembler_new(size_t max_command);
void dimse_assembler_free(dimse_assembler *a);

/*
 * Feeds the next PDV in arrival order and reports what it completed in ev.
 *
 * After a DIMSE_EV_COMMAND with msg->has_dataset, the data set's fragments follow. By default
 * each is handed back as DIMSE_EV_DATA without being copied, so the caller can write it to a
 * file as it arrives (a 2 GB clip is never held). Calling dimse_assembler_collect right after
 * the COMMAND event instead buffers the data set up to a cap and reports it whole as
 * DIMSE_EV_MESSAGE.
 *
 * A command set that does not decode gives DIMSE_EV_BAD_COMMAND with VP_OK: err holds the
 * message for an Error Comment, ev->decode_status the cause, and the fragments of the data set
 * it announces (when it could say) are skipped. When it cannot say, or the fragments break
 * the PS3.8 Annex E rules (data before or without a command, a command while a data set is
 * still due, a change of presentation context within a message, a command set over the cap),
 * feed returns VP_EPARSE or VP_ELIMIT (VP_ENOMEM when out of memory) and every later feed
 * fails the same way: the caller aborts the association.
 */
vp_status dimse_assembler_feed(dimse_assembler *a, const dimse_pdv *pdv, dimse_event *ev,
                               vp_error *err);
/* Collect the data set of the message just announced into memory, at most max bytes. A longer
 * one is skipped and reported as DIMSE_EV_MESSAGE with overflow set and no data, so the
 * caller can answer with a status. VP_EINVAL unless called right after a DIMSE_EV_COMMAND
 * with a data set. */
vp_status dimse_assembler_collect(dimse_assembler *a, size_t max);
/* Takes the collected data set after DIMSE_EV_MESSAGE (caller frees with vp_free); NULL when
 * there is none. Otherwise it is reused for the next message. */
uint8_t *dimse_assembler_take_dataset(dimse_assembler *a, size_t *len);
/* Whether the assembler is between messages (nothing half received). */
bool dimse_assembler_idle(const dimse_assembler *a);

/* ------------------------------------------------------------------------------------------ */
/* Fragmenting outgoing messages (PS3.8 9.3.5, D.1)                                           */

/* Largest fragment we put in a PDV whatever the peer allows, so the tail buffer stays small. */
#define DIMSE_FRAGMENT_CAP (1u << 20)

/*
 * Largest fragment that fits the peer's Maximum Length Received (PS3.8 D.1): that value bounds
 * the variable field of a P-DATA-TF PDU, i.e. the PDV items, and one PDV item adds 4 bytes of
 * Item Length, 1 of Presentation Context ID and 1 of message control header (PS3.8 9.3.5.1,
 * E.2), so a PDU with one PDV carries max_pdu_length - 6 bytes. 0 means no limit (we use
 * DIMSE_FRAGMENT_CAP). 0 is returned for a max_pdu_length of 1..6, which cannot carry data.
 */
size_t dimse_pdv_max_fragment(uint32_t max_pdu_length);

/* Receives each outgoing PDV in order; a non-OK return stops the fragmenter with that status. */
typedef vp_status (*dimse_pdv_emit)(void *ctx, const dimse_pdv *pdv);

typedef struct dimse_fragmenter dimse_fragmenter;

/*
 * Cuts one command set or data set, pushed in pieces of any size, into PDVs of at most
 * dimse_pdv_max_fragment(max_pdu_length) bytes for context_id. Only a fragment known to be
 * followed by more is sent before final, so the last one carries the last-fragment bit; at
 * most one fragment is buffered. NULL when out of memory or the arguments are invalid.
 */
dimse_fragmenter *dimse_fragmenter_new(uint8_t context_id, bool is_command,
                                       uint32_t max_pdu_length);
void dimse_fragmenter_free(dimse_fragmenter *f);
/* Pushes len bytes; final says they are the end. After final the fragmenter is spent. */
vp_status dimse_fragmenter_push(dimse_fragmenter *f, const void *data, size_t len, bool final,
                                dimse_pdv_emit emit, void *ctx);

/* One call for bytes already in memory (a command set, a small identifier): no copy. */
vp_status dimse_fragment(uint8_t context_id, bool is_command, const void *data, size_t len,
                         uint32_t max_pdu_length, dimse_pdv_emit emit, void *ctx);

#endif /* VP_DIMSE_H */
