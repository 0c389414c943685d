/* SPDX-License-Identifier: MIT */
/* vetpacs entry point: dispatches to the commands. */
#include <stdio.h>
#include <string.h>

#include "app/app.h"
#include "app/cmd_scu.h"
#include "dcm/dcm.h"

#define VETPACS_VERSION "0.1.0"

static const struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *usage;
    const char *help;
} commands[] = {
    {"dump", app_cmd_dump, "dump [--width N] [--header-only] FILE...",
     "print one line per element: tag, VR, length, value, keyword"},
    {"tojson", app_cmd_tojson,
     "tojson [--bulk-threshold BYTES] [--bulk-uri PREFIX] [--pretty] FILE",
     "print the data set as DICOM JSON (PS3.18 Annex F)"},
    {"convert", app_cmd_convert,
     "convert [--ts keep|implicit|explicit|big|deflated|rle|jpeg-ls|jpeg-ls-near|UID] [--near N] "
     "IN OUT | IN... DIR",
     "rewrite files as Part 10 in another transfer syntax (decoding or encoding pixel data)"},
    {"serve", app_cmd_serve,
     "serve [--config FILE] [--data DIR] [--dicom-port N] [--http-port N] [--aet AET] "
     "[--peer AE@HOST:PORT]...",
     "run the archive: DICOM C-ECHO, C-STORE, C-FIND, C-MOVE, C-GET SCP "
     "(defaults ./vetpacs-data, 11112, VETPACS)"},
    {"echo", app_cmd_echo, "echo [--aet AET] [--call AET] [--timeout S] HOST PORT",
     "C-ECHO: check that a DICOM peer answers (Verification SCU)"},
    {"send", app_cmd_send, "send [--aet AET] [--call AET] [--timeout S] HOST PORT FILE|DIR...",
     "C-STORE files to a DICOM peer, many per association (Storage SCU)"},
    {"find", app_cmd_find,
     "find [--aet AET] [--call AET] [--timeout S] HOST PORT KEYWORD[=VALUE]...",
     "C-FIND: query a DICOM peer (Study Root; Patient Root for QueryRetrieveLevel=PATIENT)"},
    {"move", app_cmd_move,
     "move [--aet AET] [--call AET] [--timeout S] [--dest AE] HOST PORT KEYWORD=VALUE...",
     "C-MOVE: have a DICOM peer send studies, series or images to an AE (default --aet)"},
    {"get", app_cmd_get,
     "get [--aet AET] [--call AET] [--timeout S] [--out DIR] HOST PORT KEYWORD=VALUE...",
     "C-GET: fetch studies, series or images from a DICOM peer into DIR (default .)"},
    {"import", app_cmd_import, "import [--data DIR] FILE|DIR...",
     "store files in the archive (default ./vetpacs-data) through the ingest pipeline"},
    {"check", app_cmd_check, "check [--data DIR]",
     "re-verify every object against its index row and checksum"},
    {"worklist", app_cmd_worklist,
     "worklist add [--data DIR] KEYWORD=VALUE... | list [--data DIR] [--all] | "
     "remove [--data DIR] ID|--accession A",
     "Modality Worklist items (Scheduled Procedure Steps) offered to modalities"},
    {"pixels", app_cmd_pixels, "pixels FILE [--frame N] -o OUT.raw",
     "decode frame N (0-based) to raw little-endian samples, colour-by-pixel"},
    {"render", app_cmd_render,
     "render FILE [--frame N] [--window C,W] [--voi N] [--size PX] [--quality Q] [--depth 8|16] -o "
     "OUT.png|OUT.jpg",
     "render frame N to PNG or JPEG: Modality, VOI, Presentation LUT or colour"},
    {"user", app_cmd_user,
     "user add|passwd|set|list|remove|token|tokens|revoke-token ... [--data DIR]",
     "users, roles and API tokens (vetpacs user --help)"},
    {"audit", app_cmd_audit,
     "audit [--user U] [--action A] [--resource ID] [--since T] [--until T] [--limit N] [--data "
     "DIR]",
     "the audit log, newest first: who viewed, downloaded, uploaded, deleted what, from where"},
};

static void usage(FILE *out)
{
    fprintf(out,
            "vetpacs %s - veterinary PACS\n\n"
            "Usage: vetpacs COMMAND [OPTIONS]\n\nCommands:\n",
            VETPACS_VERSION);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  vetpacs %s\n      %s\n", commands[i].usage, commands[i].help);
    fprintf(out, "  vetpacs --help\n      show this help\n");
    fprintf(out, "  vetpacs --version\n      show the version\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version")) {
        printf("vetpacs %s (%s %s)\n", VETPACS_VERSION, DCM_IMPLEMENTATION_VERSION_NAME,
               DCM_IMPLEMENTATION_CLASS_UID);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(cmd, commands[i].name))
            return commands[i].run(argc - 2, argv + 2);
    fprintf(stderr, "vetpacs: unknown command '%s' (try vetpacs --help)\n", cmd);
    return 2;
}
