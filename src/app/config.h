/* SPDX-License-Identifier: MIT */
/*
 * Server configuration: built-in defaults, then the config file, then VETPACS_* environment
 * variables, then command-line options, each overriding the one before. docs/configuration.md
 * documents every key; vetpacs.conf.example is a commented file with the defaults.
 */
#ifndef VP_APP_CONFIG_H
#define VP_APP_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "base/base.h"

#define CONFIG_AE_MAX 16          /* AE title length, PS3.5 Table 6.2-1 */
#define CONFIG_MAX_CALLING_AES 64 /* entries of accepted_calling_aes */
#define CONFIG_MAX_REMOTES 64     /* [remote NAME] sections */

/* What to do when a SOP Instance UID we hold arrives again with other bytes. */
typedef enum config_duplicates {
    CONFIG_DUP_REPLACE, /* store the new object in place of the old one (default), log it */
    CONFIG_DUP_KEEP,    /* keep the old object, answer success, log it */
    CONFIG_DUP_REJECT,  /* keep the old object, answer 0111 Duplicate SOP Instance */
} config_duplicates;

/* Lossless compression at rest of native images (docs/configuration.md). */
typedef enum config_compression {
    CONFIG_COMPRESS_NONE,    /* store every object as received (default) */
    CONFIG_COMPRESS_RLE,     /* RLE Lossless: fast, modest saving */
    CONFIG_COMPRESS_JPEG_LS, /* JPEG-LS Lossless: about half the size of a radiograph */
} config_compression;

/* A DICOM node we know: a destination for C-MOVE and forwarding, a source we accept. */
typedef struct config_remote {
    char name[64]; /* section name, e.g. "ct-room" */
    char ae_title[CONFIG_AE_MAX + 1];
    char host[256];
    uint16_t port;
} config_remote;

typedef struct config {
    /* [server] */
    char data_dir[4096];            /* data_dir: objects and index; default ./vetpacs-data */
    char bind[256];                 /* bind: listen address; "" = every address */
    config_compression compression; /* compression: none | rle | jpeg-ls */
    /* [dicom] */
    char ae_title[CONFIG_AE_MAX + 1]; /* ae_title: default VETPACS */
    uint16_t dicom_port;              /* port: default 11112 */
    bool require_called_ae;           /* require_called_ae: reject other called AEs; true */
    size_t calling_ae_count;          /* accepted_calling_aes: space/comma list; empty = any */
    char calling_aes[CONFIG_MAX_CALLING_AES][CONFIG_AE_MAX + 1];
    uint32_t max_associations;    /* max_associations: at once; default 32 */
    uint32_t max_pdu_length;      /* max_pdu_length: our 51H; default 262144 */
    uint32_t artim_timeout_ms;    /* artim_timeout: seconds for association set-up/release; 30 */
    uint32_t idle_timeout_ms;     /* idle_timeout: seconds without a PDU on an association; 300 */
    config_duplicates duplicates; /* duplicates: replace | keep | reject */
    /* [http] */
    uint16_t http_port; /* port: default 8042 */
    /* [remote NAME] sections: ae_title, host, port */
    size_t remote_count;
    config_remote remotes[CONFIG_MAX_REMOTES];
} config;

/* Fills cfg with the built-in defaults. */
void config_defaults(config *cfg);

/* Applies the INI file at path over cfg. Unknown sections or keys and bad values are errors
 * that name the file, line and key (VP_EPARSE); a missing file is VP_ENOTFOUND. */
vp_status config_load_file(config *cfg, const char *path, vp_error *err);

/* Applies the environment over cfg: VETPACS_DATA, VETPACS_BIND, VETPACS_AET,
 * VETPACS_DICOM_PORT, VETPACS_HTTP_PORT, VETPACS_MAX_ASSOCIATIONS, VETPACS_DUPLICATES,
 * VETPACS_ACCEPTED_CALLING_AES, VETPACS_COMPRESSION. Bad values are VP_EINVAL naming the variable.
 */
vp_status config_apply_env(config *cfg, vp_error *err);

/* Checks the whole configuration (AE titles valid, ports non-zero, limits sane). */
vp_status config_validate(const config *cfg, vp_error *err);

/* Adds (or, for an AE title already known, replaces) a remote from "AE@HOST:PORT" (HOST may
 * be a name, an IPv4 address or a bracketed IPv6 address), as `vetpacs serve --peer` gives
 * it. VP_EINVAL with the reason for a malformed spec. */
vp_status config_add_peer(config *cfg, const char *spec, vp_error *err);

/* The remote with this AE title (case-sensitive, spaces trimmed), or NULL. */
const config_remote *config_find_remote(const config *cfg, const char *ae_title);

/* "replace", "keep", "reject". */
const char *config_duplicates_name(config_duplicates d);
/* "none", "rle", "jpeg-ls". */
const char *config_compression_name(config_compression c);
/* The transfer syntax UID objects are stored in, or NULL for none. */
const char *config_compression_ts(config_compression c);

#endif
