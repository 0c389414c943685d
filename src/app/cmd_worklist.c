/* SPDX-License-Identifier: MIT */
/*
 * `vetpacs worklist add|list|remove`: the Scheduled Procedure Steps the archive offers to
 * modalities as its Modality Worklist (PS3.4 K.6.1), kept in the index (idx_worklist_*).
 *
 * add takes the attributes as DICOM keywords (PS3.6) with values checked against their VR
 * (PS3.5 Table 6.2-1) and the enumerated values of PS3.3 (Patient's Sex C.7.1.1, Patient's Sex
 * Neutered C.7.1.1 for CP-643, Scheduled Procedure Step Status C.4.10). The index is opened
 * directly, not through the ingest pipeline: `vetpacs serve` may be running on the same data
 * folder, and the index (SQLite in WAL mode) takes a second writer in turn, while opening the
 * store would clear the server's temporary files.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "app/app.h"
#include "app/files.h"
#include "idx/idx.h"

#define SPS_PREFIX "ScheduledProcedureStepSequence."

/* Value representations checked (PS3.5 Table 6.2-1). */
enum vr { V_AE, V_CS, V_DA, V_TM, V_DS, V_UI, V_SH, V_LO, V_PN };

#define F(kw, field, vr, enums, sps)                                                               \
    {                                                                                              \
        kw, offsetof(idx_worklist_item, field), sizeof(((idx_worklist_item *)0)->field), vr,       \
            enums, sps                                                                             \
    }

/* The keys add takes, as keywords (nested ones as dotted paths, as QIDO-RS writes them). */
static const struct key {
    const char *keyword;
    size_t off, size;  /* the field of idx_worklist_item */
    enum vr vr;        /* checked against */
    const char *enums; /* enumerated values, space separated, or NULL */
    bool sps;          /* a key of the Scheduled Procedure Step Sequence item: may be given
                          with the ScheduledProcedureStepSequence. prefix */
} keys[] = {
    F("PatientName", patient_name, V_PN, NULL, false),
    F("PatientID", patient_id, V_LO, NULL, false),
    F("IssuerOfPatientID", issuer, V_LO, NULL, false),
    F("PatientBirthDate", birth_date, V_DA, NULL, false),
    F("PatientSex", sex, V_CS, "M F O", false),
    F("PatientWeight", weight, V_DS, NULL, false),
    F("PatientSpeciesDescription", species, V_LO, NULL, false),
    F("PatientSpeciesCodeSequence.CodeValue", species_code, V_SH, NULL, false),
    F("PatientSpeciesCodeSequence.CodingSchemeDesignator", species_scheme, V_SH, NULL, false),
    F("PatientSpeciesCodeSequence.CodeMeaning", species_meaning, V_LO, NULL, false),
    F("PatientBreedDescription", breed, V_LO, NULL, false),
    F("PatientBreedCodeSequence.CodeValue", breed_code, V_SH, NULL, false),
    F("PatientBreedCodeSequence.CodingSchemeDesignator", breed_scheme, V_SH, NULL, false),
    F("PatientBreedCodeSequence.CodeMeaning", breed_meaning, V_LO, NULL, false),
    F("BreedRegistrationSequence.BreedRegistrationNumber", breed_registration, V_LO, NULL, false),
    F("BreedRegistrationSequence.BreedRegistryCodeSequence.CodeValue", registry_code, V_SH, NULL,
      false),
    F("BreedRegistrationSequence.BreedRegistryCodeSequence.CodingSchemeDesignator", registry_scheme,
      V_SH, NULL, false),
    F("BreedRegistrationSequence.BreedRegistryCodeSequence.CodeMeaning", registry_meaning, V_LO,
      NULL, false),
    F("ResponsiblePerson", owner_name, V_PN, NULL, false),
    F("ResponsiblePersonRole", owner_role, V_CS, NULL, false),
    F("ResponsibleOrganization", clinic, V_LO, NULL, false),
    F("PatientSexNeutered", sex_neutered, V_CS, "ALTERED UNALTERED", false),
    F("AccessionNumber", accession, V_SH, NULL, false),
    F("RequestedProcedureID", requested_id, V_SH, NULL, false),
    F("RequestedProcedureDescription", requested_description, V_LO, NULL, false),
    F("StudyInstanceUID", study_uid, V_UI, NULL, false),
    F("ReferringPhysicianName", referring, V_PN, NULL, false),
    F("ScheduledStationAETitle", station_ae, V_AE, NULL, true),
    F("ScheduledProcedureStepStartDate", start_date, V_DA, NULL, true),
    F("ScheduledProcedureStepStartTime", start_time, V_TM, NULL, true),
    F("Modality", modality, V_CS, NULL, true),
    F("ScheduledPerformingPhysicianName", performing, V_PN, NULL, true),
    F("ScheduledProcedureStepDescription", sps_description, V_LO, NULL, true),
    F("ScheduledProcedureStepID", sps_id, V_SH, NULL, true),
    F("ScheduledStationName", station_name, V_SH, NULL, true),
    F("ScheduledProcedureStepLocation", location, V_SH, NULL, true),
    F("ScheduledProcedureStepStatus", status, V_CS, "SCHEDULED COMPLETED DISCONTINUED", true),
};

#define N_KEYS (sizeof keys / sizeof keys[0])

/* Keys without which an item is of no use to a modality (Table K.6-1 return type 1). */
static const char *const required[] = {"PatientName", "PatientID", "Modality"};

static const struct key *key_find(const char *kw, size_t n)
{
    if (n > strlen(SPS_PREFIX) && !strncmp(kw, SPS_PREFIX, strlen(SPS_PREFIX))) {
        for (size_t i = 0; i < N_KEYS; i++)
            if (keys[i].sps && strlen(keys[i].keyword) == n - strlen(SPS_PREFIX) &&
                !strncmp(kw + strlen(SPS_PREFIX), keys[i].keyword, n - strlen(SPS_PREFIX)))
                return &keys[i];
        return NULL;
    }
    for (size_t i = 0; i < N_KEYS; i++)
        if (strlen(keys[i].keyword) == n && !strncmp(kw, keys[i].keyword, n))
            return &keys[i];
    return NULL;
}

/* Characters of valid UTF-8 text, or -1 when it is not UTF-8 or holds control characters
 * (none of the VRs here allows them, PS3.5 6.1.3) or a backslash (the value delimiter). */
static long text_chars(const char *s)
{
    long n = 0;
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned c = *p;
        int more = c < 0x80             ? 0
                   : (c & 0xE0) == 0xC0 ? 1
                   : (c & 0xF0) == 0xE0 ? 2
                   : (c & 0xF8) == 0xF0 ? 3
                                        : -1;
        if (more < 0 || (c < 0x80 && (c < 0x20 || c == 0x7F || c == '\\')))
            return -1;
        if (more == 1 && c < 0xC2)
            return -1; /* overlong */
        p++;
        for (int k = 0; k < more; k++, p++)
            if ((*p & 0xC0) != 0x80)
                return -1;
        n++;
    }
    return n;
}

static bool digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

static unsigned num(const char *s, size_t n)
{
    unsigned v = 0;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (unsigned)(s[i] - '0');
    return v;
}

/* DA: YYYYMMDD, a real day. */
static bool date_valid(const char *s)
{
    if (strlen(s) != 8 || !digits(s, 8))
        return false;
    unsigned y = num(s, 4), m = num(s + 4, 2), d = num(s + 6, 2);
    static const unsigned mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m < 1 || m > 12 || d < 1 || d > mdays[m - 1])
        return false;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return !(m == 2 && d == 29 && !leap);
}

/* TM: HH[MM[SS[.F{1,6}]]]. */
static bool time_valid(const char *s)
{
    size_t n = strlen(s);
    const char *dot = strchr(s, '.');
    size_t whole = dot ? (size_t)(dot - s) : n;
    if (whole < 2 || whole > 6 || whole % 2 || !digits(s, whole))
        return false;
    if (num(s, 2) > 23 || (whole >= 4 && num(s + 2, 2) > 59) || (whole == 6 && num(s + 4, 2) > 60))
        return false;
    if (dot) {
        size_t frac = n - whole - 1;
        if (whole != 6 || frac < 1 || frac > 6 || !digits(dot + 1, frac))
            return false;
    }
    return true;
}

/* DS: a decimal number of at most 16 characters. */
static bool decimal_valid(const char *s)
{
    size_t i = 0, d = 0, n = strlen(s);
    if (n == 0 || n > 16)
        return false;
    if (s[i] == '+' || s[i] == '-')
        i++;
    for (; s[i] >= '0' && s[i] <= '9'; i++)
        d++;
    if (s[i] == '.')
        for (i++; s[i] >= '0' && s[i] <= '9'; i++)
            d++;
    if (d && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (s[i] == '+' || s[i] == '-')
            i++;
        size_t e = 0;
        for (; s[i] >= '0' && s[i] <= '9'; i++)
            e++;
        if (!e)
            return false;
    }
    return d > 0 && i == n;
}

static bool fail(char *why, size_t size, const char *msg)
{
    snprintf(why, size, "%s", msg);
    return true;
}

/* Whether value v is not valid for key k, with the reason written to why. */
static bool invalid(const struct key *k, const char *v, char *why, size_t size)
{
    long chars = text_chars(v);
    size_t n = strlen(v);
    if (chars < 0)
        return fail(why, size, "not UTF-8 text without control characters or backslash");
    switch (k->vr) {
    case V_AE:
        if (chars > 16)
            return fail(why, size, "AE: at most 16 characters");
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)v[i] >= 0x80)
                return fail(why, size, "AE: ASCII characters only");
        break;
    case V_CS:
        if (n > 16)
            return fail(why, size, "CS: at most 16 characters");
        for (size_t i = 0; i < n; i++)
            if (!((v[i] >= 'A' && v[i] <= 'Z') || (v[i] >= '0' && v[i] <= '9') || v[i] == ' ' ||
                  v[i] == '_'))
                return fail(why, size, "CS: upper-case letters, digits, space and _ only");
        break;
    case V_DA:
        if (!date_valid(v))
            return fail(why, size, "DA: a date YYYYMMDD");
        break;
    case V_TM:
        if (!time_valid(v))
            return fail(why, size, "TM: a time HH, HHMM, HHMMSS or HHMMSS.FFFFFF");
        break;
    case V_DS:
        if (!decimal_valid(v))
            return fail(why, size, "DS: a decimal number of at most 16 characters");
        break;
    case V_UI:
        if (!dcm_uid_valid(v, n))
            return fail(why, size, "UI: digits and dots, at most 64, no leading zeros");
        break;
    case V_SH:
        if (chars > 16)
            return fail(why, size, "SH: at most 16 characters");
        break;
    case V_LO:
        if (chars > 64)
            return fail(why, size, "LO: at most 64 characters");
        break;
    case V_PN: {
        /* At most three component groups of five components, 64 characters each. */
        int groups = 1, comps = 1;
        long group_chars = 0;
        for (const char *p = v; *p; p++) {
            if (*p == '=') {
                if (++groups > 3)
                    return fail(why, size, "PN: at most 3 component groups");
                comps = 1, group_chars = 0;
                continue;
            }
            if (*p == '^' && ++comps > 5)
                return fail(why, size, "PN: at most 5 components");
            if (((unsigned char)*p & 0xC0) != 0x80 && ++group_chars > 64)
                return fail(why, size, "PN: at most 64 characters per component group");
        }
        break;
    }
    }
    if (k->enums && *v) {
        const char *e = k->enums;
        while (*e) {
            size_t len = strcspn(e, " ");
            if (len == n && !strncmp(e, v, n))
                return false;
            e += len + (e[len] == ' ');
        }
        snprintf(why, size, "one of %s", k->enums);
        return true;
    }
    return false;
}

/* Opens the index of data; create makes the folder when missing. Prints why not. */
static idx *open_index(const char *data, bool create, const char *verb)
{
    struct stat sb;
    if (stat(data, &sb) != 0) {
        if (!create || errno != ENOENT || mkdir(data, 0777) != 0) {
            fprintf(stderr, "vetpacs worklist %s: %s: %s\n", verb, data,
                    create ? strerror(errno) : "no archive there");
            return NULL;
        }
    } else if (!S_ISDIR(sb.st_mode)) {
        fprintf(stderr, "vetpacs worklist %s: %s: not a folder\n", verb, data);
        return NULL;
    }
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/index.db", data) >= sizeof path) {
        fprintf(stderr, "vetpacs worklist %s: %s: path too long\n", verb, data);
        return NULL;
    }
    idx *x = NULL;
    vp_error err;
    vp_error_clear(&err);
    if (idx_open(path, &x, &err) != VP_OK)
        fprintf(stderr, "vetpacs worklist %s: %s: %s\n", verb, path, err.msg);
    return x;
}

/* One line per item, tab-separated: the header names the columns by keyword. */
static const char header[] =
    "ScheduledProcedureStepID\tScheduledProcedureStepStatus\tScheduledProcedureStepStartDate\t"
    "ScheduledProcedureStepStartTime\tModality\tScheduledStationAETitle\tPatientID\tPatientName\t"
    "PatientSpeciesDescription\tPatientBreedDescription\tResponsiblePerson\tAccessionNumber\t"
    "RequestedProcedureID\tScheduledProcedureStepDescription\tStudyInstanceUID\tCreated\n";

/* A value as one cell: tabs and line ends (which add refuses, but the index may hold from
 * elsewhere) become spaces, so every item stays one line of the same columns. */
static void cell(const char *v, char sep)
{
    for (; *v; v++)
        putchar(*v == '\t' || *v == '\n' || *v == '\r' ? ' ' : *v);
    putchar(sep);
}

static vp_status print_item(void *ctx, const idx_worklist_item *it)
{
    (void)ctx;
    const char *v[] = {it->sps_id,       it->status,          it->start_date, it->start_time,
                       it->modality,     it->station_ae,      it->patient_id, it->patient_name,
                       it->species,      it->breed,           it->owner_name, it->accession,
                       it->requested_id, it->sps_description, it->study_uid,  it->created_at};
    size_t n = sizeof v / sizeof v[0];
    for (size_t i = 0; i < n; i++)
        cell(v[i], i + 1 < n ? '\t' : '\n');
    return VP_OK;
}

static int usage(void)
{
    fprintf(stderr, "usage: vetpacs worklist add [--data DIR] KEYWORD=VALUE...\n"
                    "       vetpacs worklist list [--data DIR] [--all]\n"
                    "       vetpacs worklist remove [--data DIR] ID|--accession A\n");
    return 2;
}

static int cmd_add(int argc, char **argv)
{
    const char *data = NULL;
    idx_worklist_item *it = vp_calloc(1, sizeof *it);
    bool given[N_KEYS] = {0};
    int rc = 2;
    if (!it) {
        fprintf(stderr, "vetpacs worklist add: out of memory\n");
        return 1;
    }
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--data") && i + 1 < argc) {
            data = argv[++i];
            continue;
        }
        const char *eq = strchr(a, '=');
        if (a[0] == '-' || !eq) {
            fprintf(stderr, "vetpacs worklist add: %s: expected KEYWORD=VALUE\n", a);
            goto done;
        }
        const struct key *k = key_find(a, (size_t)(eq - a));
        if (!k) {
            fprintf(stderr,
                    "vetpacs worklist add: %.*s: not a worklist attribute (see "
                    "docs/worklist.md for the keywords)\n",
                    (int)(eq - a), a);
            goto done;
        }
        if (given[k - keys]) {
            fprintf(stderr, "vetpacs worklist add: %s given twice\n", k->keyword);
            goto done;
        }
        given[k - keys] = true;
        /* Leading and trailing spaces are not significant in these VRs (PS3.5 6.2). */
        const char *v = eq + 1;
        size_t n = strlen(v);
        while (n && v[n - 1] == ' ')
            n--;
        while (n && *v == ' ')
            v++, n--;
        char value[1024], why[128];
        if (n >= sizeof value) {
            fprintf(stderr, "vetpacs worklist add: %s: value too long\n", k->keyword);
            goto done;
        }
        memcpy(value, v, n);
        value[n] = 0;
        if (invalid(k, value, why, sizeof why)) {
            fprintf(stderr, "vetpacs worklist add: %s=%s: %s\n", k->keyword, value, why);
            goto done;
        }
        if (n >= k->size) { /* a valid PN of many multi-byte characters */
            fprintf(stderr, "vetpacs worklist add: %s: value too long\n", k->keyword);
            goto done;
        }
        memcpy((char *)it + k->off, value, n + 1);
    }
    for (size_t r = 0; r < sizeof required / sizeof required[0]; r++) {
        const struct key *k = key_find(required[r], strlen(required[r]));
        if (!((char *)it + k->off)[0]) {
            fprintf(stderr, "vetpacs worklist add: %s is required\n", k->keyword);
            goto done;
        }
    }
    /* The start defaults to now; a date given alone starts at the beginning of its day. */
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    if (!it->start_date[0] && !it->start_time[0])
        strftime(it->start_time, sizeof it->start_time, "%H%M%S", &tm);
    else if (!it->start_time[0])
        snprintf(it->start_time, sizeof it->start_time, "000000");
    if (!it->start_date[0])
        strftime(it->start_date, sizeof it->start_date, "%Y%m%d", &tm);
    rc = 1;
    idx *x = open_index(app_data_dir(data), true, "add");
    if (!x)
        goto done;
    vp_error err;
    vp_error_clear(&err);
    if (idx_worklist_add(x, it, &err) != VP_OK) {
        fprintf(stderr, "vetpacs worklist add: %s\n", err.msg);
        rc = err.status == VP_EINVAL ? 2 : 1;
    } else {
        fputs(header, stdout);
        print_item(NULL, it);
        rc = 0;
    }
    idx_close(x);
done:
    vp_free(it);
    return rc;
}

static int cmd_list(int argc, char **argv)
{
    const char *data = NULL;
    bool all = false;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--data") && i + 1 < argc)
            data = argv[++i];
        else if (!strcmp(argv[i], "--all"))
            all = true;
        else
            return usage();
    }
    idx *x = open_index(app_data_dir(data), false, "list");
    if (!x)
        return 1;
    fputs(header, stdout);
    vp_error err;
    vp_error_clear(&err);
    vp_status st = idx_worklist_each(x, all, print_item, NULL, &err);
    idx_close(x);
    if (st) {
        fprintf(stderr, "vetpacs worklist list: %s\n", err.msg);
        return 1;
    }
    return 0;
}

static int cmd_remove(int argc, char **argv)
{
    const char *data = NULL, *sps_id = NULL, *accession = NULL;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--data") && i + 1 < argc)
            data = argv[++i];
        else if (!strcmp(argv[i], "--accession") && i + 1 < argc && !accession)
            accession = argv[++i];
        else if (argv[i][0] != '-' && !sps_id)
            sps_id = argv[i];
        else
            return usage();
    }
    if (!sps_id == !accession || (accession && !*accession) || (sps_id && !*sps_id))
        return usage();
    idx *x = open_index(app_data_dir(data), false, "remove");
    if (!x)
        return 1;
    vp_error err;
    vp_error_clear(&err);
    uint64_t n = 1;
    vp_status st = sps_id ? idx_worklist_remove(x, sps_id, &err)
                          : idx_worklist_remove_accession(x, accession, &n, &err);
    idx_close(x);
    if (st) {
        fprintf(stderr, "vetpacs worklist remove: %s\n", err.msg);
        return 1;
    }
    printf("removed %llu\n", (unsigned long long)n);
    return 0;
}

int app_cmd_worklist(int argc, char **argv)
{
    if (argc < 1)
        return usage();
    if (!strcmp(argv[0], "add"))
        return cmd_add(argc - 1, argv + 1);
    if (!strcmp(argv[0], "list"))
        return cmd_list(argc - 1, argv + 1);
    if (!strcmp(argv[0], "remove"))
        return cmd_remove(argc - 1, argv + 1);
    return usage();
}
