/* SPDX-License-Identifier: MIT */
/*
 * A small blocking DICOM association client (service class user): opens an association over
 * TCP (PS3.8 9.1.1) by driving a ul_assoc, sends C-ECHO (Verification, PS3.4 A) and C-STORE
 * (Storage, PS3.4 B) requests and waits for their responses (PS3.7 9.1.1, 9.1.5), releases or
 * aborts. Every wait has a deadline. A data set is streamed from its file in pieces, so a 2 GB
 * object never sits in memory; the file's own encoding is sent as-is when the peer accepted it,
 * a native one is re-encoded into Explicit or Implicit VR Little Endian otherwise.
 */
#ifndef VP_APP_SCU_H
#define VP_APP_SCU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include "dcm/dcm.h"
#include "dimse/dimse.h"
#include "ul/ul.h"

#define SCU_VERIFICATION_SOP_CLASS "1.2.840.10008.1.1" /* PS3.4 A.4 */
#define SCU_MAX_CONTEXTS 128                           /* odd context IDs 1..255 (PS3.8 9.3.2.2) */
#define SCU_MAX_TS 16        /* transfer syntaxes proposed in one context */
#define SCU_CHUNK (1u << 20) /* data set bytes read from the file and sent per step */

/* One presentation context to propose (PS3.8 9.3.2.2). Its ID is 2 * index + 1. */
typedef struct scu_context {
    const char *abstract_syntax;          /* SOP class UID */
    size_t ts_count;                      /* 1..SCU_MAX_TS */
    const char *const *transfer_syntaxes; /* in our order of preference */
    /* Propose SCP/SCU Role Selection with us as SCP (PS3.7 D.3.3.4): for the Storage SOP
     * classes of a C-GET, whose C-STORE sub-operations come to us (PS3.4 C.4.3). */
    bool scp_role;
} scu_context;

typedef struct scu_opts {
    const char *calling_ae;      /* our AE title */
    const char *called_ae;       /* the peer's AE title */
    const scu_context *contexts; /* proposals, 1..SCU_MAX_CONTEXTS */
    size_t context_count;        /* entries at contexts */
    int64_t connect_timeout_ms;  /* TCP connection; <= 0 = no limit */
    int64_t acse_timeout_ms;     /* A-ASSOCIATE-AC/RJ and A-RELEASE-RP; <= 0 = no limit */
    int64_t dimse_timeout_ms;    /* each write, and the wait for each response; <= 0 = none */
    int64_t artim_timeout_ms;    /* after an A-ABORT, wait this long for the peer to close
                                    (PS3.8 9.1.5 ARTIM); <= 0 = 1 s */
    uint32_t max_pdu_length;     /* our 51H (largest P-DATA-TF we take); 0 = 16384 */
} scu_opts;

/* An open association. */
typedef struct scu scu;

/*
 * Connects to host:port and negotiates the association. On VP_OK *out is established (Sta6)
 * and owned by the caller (scu_release or scu_abort, then scu_close). Errors, with err naming
 * the peer: connect failures (VP_EIO, VP_EINVAL for a name that does not resolve), VP_ETIMEOUT,
 * VP_ECONFLICT when the peer rejected the association (err gives result, source and reason in
 * words, PS3.8 9.3.4), VP_ECLOSED when it aborted or closed, VP_EINVAL for bad options.
 */
vp_status scu_open(const char *host, uint16_t port, const scu_opts *opts, scu **out, vp_error *err);
/* Closes the connection (aborting first if the association is still up) and frees s.
 * Accepts NULL. */
void scu_close(scu *s);

/* A-RELEASE (PS3.8 7.2): waits for the A-RELEASE-RP (answering a release collision) and
 * closes the connection. Errors as scu_open; the connection is closed either way. */
vp_status scu_release(scu *s, vp_error *err);
/* A-ABORT (PS3.8 7.3): sends it, waits up to the ARTIM timeout for the peer to close, and
 * closes the connection. */
void scu_abort(scu *s);

/* Whether the association is established and can carry another request. False after a
 * release, an abort (ours or the peer's), a timeout or a transport failure. */
bool scu_usable(const scu *s);
/* "host:port" as given to scu_open. */
const char *scu_peer(const scu *s);

/* The outcome of proposal i (0-based, as passed in scu_opts.contexts): enum ul_pc_result
 * (UL_PC_NO_REASON when the peer did not answer it), and the accepted transfer syntax (NULL
 * unless accepted). */
uint8_t scu_context_result(const scu *s, size_t i);
const char *scu_context_ts(const scu *s, size_t i);
/* "acceptance", "user-rejection", "no-reason (provider rejection)",
 * "abstract-syntax-not-supported", "transfer-syntaxes-not-supported" (PS3.8 Table 9-18). */
const char *scu_pc_result_name(uint8_t result);

/* A DIMSE response, as far as the caller cares. */
typedef struct scu_response {
    uint16_t status;                                 /* (0000,0900) */
    bool has_error_comment;                          /* (0000,0902) present */
    char error_comment[DIMSE_ERROR_COMMENT_MAX + 1]; /* its value, "" when absent */
    /* C-MOVE, C-GET: Number of Remaining/Completed/Failed/Warning Sub-operations
     * (0000,1020-1023) when present (has_counts: at least Completed or Failed was there). */
    bool has_counts;
    uint16_t remaining, completed, failed, warning;
} scu_response;

/* C-ECHO (PS3.7 9.1.5) on an accepted Verification context. VP_OK when a C-ECHO-RSP came
 * (whatever its status); VP_EUNSUPPORTED when Verification was not accepted (the association
 * stays usable); transport and protocol errors end the association (see scu_usable). */
vp_status scu_echo(scu *s, scu_response *rsp, vp_error *err);

/* Largest identifier of one C-FIND answer taken in. */
#define SCU_IDENTIFIER_MAX (16u << 20)
/* Called with the encoded identifier of each Pending C-FIND answer (in transfer syntax ts);
 * a non-OK return is reported after the final response. */
typedef vp_status (*scu_match_fn)(void *ctx, const uint8_t *data, size_t len, const char *ts);
/* C-FIND (PS3.7 9.1.2, PS3.4 C.4.1) on an accepted context of sop_class (a Query/Retrieve
 * FIND model): sends identifier, calls on_match for each match and returns the final
 * response. Errors as scu_echo. */
vp_status scu_find(scu *s, const char *sop_class, const dcm_dataset *identifier,
                   scu_match_fn on_match, void *ctx, scu_response *rsp, vp_error *err);

/* Called with each Pending response of a C-MOVE or C-GET (sub-operation counts). */
typedef void (*scu_progress_fn)(void *ctx, const scu_response *pending);

/* Takes the C-STORE sub-operations of a C-GET, one at a time: begin when a C-STORE-RQ
 * arrives (ts is its context's transfer syntax), data with each piece of its data set, end
 * once it is complete (st VP_OK) or broken off (the first failure of begin or data), which
 * returns the C-STORE status to answer (PS3.4 B.2.3) with err->msg as its Error Comment. */
typedef struct scu_receiver {
    void *ctx;
    vp_status (*begin)(void *ctx, const char *sop_class, const char *sop_instance, const char *ts,
                       vp_error *err);
    vp_status (*data)(void *ctx, const uint8_t *p, size_t n, vp_error *err);
    uint16_t (*end)(void *ctx, vp_status st, vp_error *err);
} scu_receiver;

/* What a C-MOVE or C-GET hands back besides its final response. */
typedef struct scu_retrieve_opts {
    scu_progress_fn on_progress; /* may be NULL */
    void *ctx;                   /* for on_progress and on_identifier */
    /* The final response's Identifier (Failed SOP Instance UID List (0008,0058), PS3.4
     * C.4.2.1.4.2); may be NULL. */
    scu_match_fn on_identifier;
    const scu_receiver *receiver; /* C-GET: required */
} scu_retrieve_opts;

/* C-MOVE (PS3.7 9.1.4, PS3.4 C.4.2) on an accepted context of sop_class: asks the peer to
 * send what identifier selects to the AE destination, reports each Pending response and
 * returns the final one. Errors as scu_echo. */
vp_status scu_move(scu *s, const char *sop_class, const char *destination,
                   const dcm_dataset *identifier, const scu_retrieve_opts *opts, scu_response *rsp,
                   vp_error *err);
/* C-GET (PS3.7 9.1.3, PS3.4 C.4.3): the same, the objects coming back on this association
 * as C-STORE sub-operations to opts->receiver (propose their Storage SOP classes with
 * scp_role). */
vp_status scu_get(scu *s, const char *sop_class, const dcm_dataset *identifier,
                  const scu_retrieve_opts *opts, scu_response *rsp, vp_error *err);

/* The part of a file C-STORE needs, read from its header (PS3.10 7.1, and the data set's
 * (0008,0016) and (0008,0018), which win over the meta group's copies). */
typedef struct scu_file scu_file;

/* Opens path and reads its header only. VP_EPARSE (err says why) when it is not DICOM or
 * lacks the SOP Class or Instance UID; VP_EIO when it cannot be read. */
vp_status scu_file_open(const char *path, scu_file **out, vp_error *err);
void scu_file_close(scu_file *f);
const char *scu_file_sop_class(const scu_file *f);
const char *scu_file_sop_instance(const scu_file *f);
const char *scu_file_transfer_syntax(const scu_file *f);
/* Whether the data set is in a native encoding that can be re-encoded (not encapsulated). */
bool scu_file_native(const scu_file *f);
/* Whether the data set can go in Explicit/Implicit VR Little Endian: native, or compressed in
 * a syntax the pixel module decodes. */
bool scu_file_reencodable(const scu_file *f);
/* Bytes of the data set in the file (after the meta group). */
uint64_t scu_file_dataset_size(const scu_file *f);

/* Which accepted context suits f: n contexts, abstract[i] their SOP classes and ts[i] the
 * transfer syntax accepted (NULL when not accepted). Its own syntax first (sent as is), else
 * Explicit, then Implicit VR Little Endian (*reencode): a native file re-encoded, a
 * compressed one decoded (img_transcode) when its syntax has a decoder. SIZE_MAX when
 * none. A native data set of odd length is re-encoded even in its own syntax (peers refuse
 * odd PDV fragments; the writer pads odd values, PS3.5 7.1.1). */
size_t scu_file_pick(const scu_file *f, const char *const *abstract, const char *const *ts,
                     size_t n, bool *reencode);
/* Receives a data set in pieces; last is set on the final one. */
typedef vp_status (*scu_piece_fn)(void *ctx, const uint8_t *p, size_t n, bool last, vp_error *err);
/* Sends the data set of f through fn: the file's bytes as they are, SCU_CHUNK at a time
 * (reencode_ts NULL), or the data set read whole, its pixel data decoded if compressed, and
 * re-encoded in reencode_ts. */
vp_status scu_file_send(const scu_file *f, const char *reencode_ts, scu_piece_fn fn, void *ctx,
                        vp_error *err);

/* Optional C-STORE-RQ fields. */
typedef struct scu_store_opts {
    uint16_t priority;              /* enum dimse_priority; 0 = medium */
    const char *move_originator_ae; /* (0000,1030) for a C-MOVE sub-operation; NULL = none */
    uint16_t move_originator_id;    /* (0000,1031), with move_originator_ae */
} scu_store_opts;

/* What a C-STORE sent. */
typedef struct scu_store_info {
    uint8_t context_id;                    /* presentation context used */
    bool reencoded;                        /* the data set was re-encoded into transfer_syntax */
    char transfer_syntax[DCM_UID_MAX + 1]; /* the transfer syntax sent in */
    uint64_t bytes;                        /* data set bytes sent */
} scu_store_info;

/*
 * C-STORE (PS3.7 9.1.1) of file f. Picks an accepted context for the file's SOP class whose
 * transfer syntax is the file's own (the data set bytes are sent as they are in the file,
 * streamed in SCU_CHUNK pieces), else, for a native file, one in Explicit or Implicit VR
 * Little Endian (the file is read whole and re-encoded, the encoding streamed). A native data
 * set of odd length is re-encoded even in its own syntax, which pads its odd values (PS3.5
 * 7.1.1): peers refuse odd PDV fragments. The command set goes out with the data set's first
 * piece, so a file that fails to read or encode before then leaves the association as it
 * was. VP_OK when a
 * C-STORE-RSP came, whatever its status (in *rsp). VP_EUNSUPPORTED when no accepted context
 * fits (err names the SOP class, the transfer syntax and the peer's answer), VP_EPARSE or
 * VP_EIO when the file cannot be sent: the association stays usable unless part of the data
 * set had gone out. Transport and protocol errors end the association (see scu_usable).
 * info (may be NULL) says what was sent.
 */
vp_status scu_store(scu *s, scu_file *f, const scu_store_opts *opts, scu_response *rsp,
                    scu_store_info *info, vp_error *err);
/* scu_file_open + scu_store + scu_file_close. */
vp_status scu_store_path(scu *s, const char *path, const scu_store_opts *opts, scu_response *rsp,
                         scu_store_info *info, vp_error *err);

#endif /* VP_APP_SCU_H */
