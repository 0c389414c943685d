/* SPDX-License-Identifier: MIT */
/*
 * Server configuration: built-in defaults, the INI file (parsed by libinih), the VETPACS_*
 * environment variables, and the checks over the result. One table of keys serves the file and
 * the environment, so a value means the same wherever it comes from. docs/configuration.md is
 * the user's side of this file.
 *
 * libinih is driven through ini_parse_stream with our own line reader, because its handler is
 * not told the line number. The reader counts lines, rejects over-long lines (libinih would
 * silently cut them in two) and NUL bytes, and reads [section] headers itself so that an
 * unknown or repeated section is reported at its header even when it holds no keys. It also
 * drops each line's leading whitespace, which turns off libinih's Python-style continuation
 * lines: an indented "port = 104" under "ae_title = X" would otherwise become a second line of
 * the AE title.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ini.h>

#include "app/config.h"
#include "ul/ul.h"

_Static_assert(CONFIG_AE_MAX == UL_AE_TITLE_MAX, "AE title sizes differ");

/* Bounds of the numeric keys; docs/configuration.md lists the same. */
#define MAX_ASSOCIATIONS_MAX 4096
#define PDU_LENGTH_MIN 1024 /* smaller PDUs only multiply the per-PDU overhead */
#define PDU_LENGTH_MAX                                                                             \
    16777216 /* 16 MiB: bigger buys nothing and costs a buffer per association                     \
              */
#define ARTIM_MAX_S 3600
#define IDLE_MAX_S 86400

/* libinih keeps section names in a 50-byte buffer (MAX_SECTION in ini.c) and would cut longer
 * ones; the reader refuses them instead. */
#define INIH_MAX_SECTION 50

/* Room for one reason in a message, e.g. "\"70000\" is out of range 1..65535". */
#define WHY_MAX 192

enum section { SECT_NONE, SECT_SERVER, SECT_DICOM, SECT_HTTP, SECT_REMOTE };

enum key {
    KEY_DATA_DIR,
    KEY_BIND,
    KEY_COMPRESSION,
    KEY_AE_TITLE,
    KEY_DICOM_PORT,
    KEY_REQUIRE_CALLED_AE,
    KEY_ACCEPTED_CALLING_AES,
    KEY_MAX_ASSOCIATIONS,
    KEY_MAX_PDU_LENGTH,
    KEY_ARTIM_TIMEOUT,
    KEY_IDLE_TIMEOUT,
    KEY_DUPLICATES,
    KEY_HTTP_PORT,
    KEY_REMOTE_AE_TITLE, /* the [remote NAME] keys come last, in this order */
    KEY_REMOTE_HOST,
    KEY_REMOTE_PORT,
    KEY_COUNT,
};
#define REMOTE_KEYS (KEY_COUNT - KEY_REMOTE_AE_TITLE)

static const struct key_def {
    enum section section; /* where the key lives in the file */
    const char *name;     /* its name there */
    const char *env;      /* the environment variable that overrides it, or NULL */
} keys[KEY_COUNT] = {
    [KEY_DATA_DIR] = {SECT_SERVER, "data_dir", "VETPACS_DATA"},
    [KEY_BIND] = {SECT_SERVER, "bind", "VETPACS_BIND"},
    [KEY_COMPRESSION] = {SECT_SERVER, "compression", "VETPACS_COMPRESSION"},
    [KEY_AE_TITLE] = {SECT_DICOM, "ae_title", "VETPACS_AET"},
    [KEY_DICOM_PORT] = {SECT_DICOM, "port", "VETPACS_DICOM_PORT"},
    [KEY_REQUIRE_CALLED_AE] = {SECT_DICOM, "require_called_ae", NULL},
    [KEY_ACCEPTED_CALLING_AES] = {SECT_DICOM, "accepted_calling_aes",
                                  "VETPACS_ACCEPTED_CALLING_AES"},
    [KEY_MAX_ASSOCIATIONS] = {SECT_DICOM, "max_associations", "VETPACS_MAX_ASSOCIATIONS"},
    [KEY_MAX_PDU_LENGTH] = {SECT_DICOM, "max_pdu_length", NULL},
    [KEY_ARTIM_TIMEOUT] = {SECT_DICOM, "artim_timeout", NULL},
    [KEY_IDLE_TIMEOUT] = {SECT_DICOM, "idle_timeout", NULL},
    [KEY_DUPLICATES] = {SECT_DICOM, "duplicates", "VETPACS_DUPLICATES"},
    [KEY_HTTP_PORT] = {SECT_HTTP, "port", "VETPACS_HTTP_PORT"},
    [KEY_REMOTE_AE_TITLE] = {SECT_REMOTE, "ae_title", NULL},
    [KEY_REMOTE_HOST] = {SECT_REMOTE, "host", NULL},
    [KEY_REMOTE_PORT] = {SECT_REMOTE, "port", NULL},
};

void config_defaults(config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->data_dir, sizeof cfg->data_dir, "%s", "./vetpacs-data");
    snprintf(cfg->ae_title, sizeof cfg->ae_title, "%s", "VETPACS");
    cfg->dicom_port = 11112;
    cfg->require_called_ae = true;
    cfg->max_associations = 32;
    cfg->max_pdu_length = 262144;
    cfg->artim_timeout_ms = 30 * 1000;
    cfg->idle_timeout_ms = 300 * 1000;
    cfg->duplicates = CONFIG_DUP_REPLACE;
    cfg->http_port = 8042;
}

const char *config_duplicates_name(config_duplicates d)
{
    switch (d) {
    case CONFIG_DUP_REPLACE: return "replace";
    case CONFIG_DUP_KEEP: return "keep";
    case CONFIG_DUP_REJECT: return "reject";
    }
    return "unknown";
}

const char *config_compression_name(config_compression c)
{
    switch (c) {
    case CONFIG_COMPRESS_NONE: return "none";
    case CONFIG_COMPRESS_RLE: return "rle";
    case CONFIG_COMPRESS_JPEG_LS: return "jpeg-ls";
    }
    return "unknown";
}

const char *config_compression_ts(config_compression c)
{
    switch (c) {
    case CONFIG_COMPRESS_NONE: return NULL;
    case CONFIG_COMPRESS_RLE: return "1.2.840.10008.1.2.5";
    case CONFIG_COMPRESS_JPEG_LS: return "1.2.840.10008.1.2.4.80";
    }
    return NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* Values: each checker writes its reason into why and returns false.                         */

static bool fail(char *why, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool fail(char *why, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, n, fmt, ap);
    va_end(ap);
    return false;
}

/* A whole number from min to max: decimal digits only, no sign, no trailing text. */
static bool parse_uint(const char *v, uint64_t min, uint64_t max, uint64_t *out, char *why,
                       size_t n)
{
    if (!*v)
        return fail(why, n, "empty, expected a number from %llu to %llu", (unsigned long long)min,
                    (unsigned long long)max);
    uint64_t x = 0;
    for (const char *p = v; *p; p++) {
        if (*p < '0' || *p > '9')
            return fail(why, n, "\"%s\" is not a whole number", v);
        if (x <= max) /* stop adding once too big: max is far below UINT64_MAX / 10 */
            x = x * 10 + (uint64_t)(*p - '0');
    }
    if (x < min || x > max)
        return fail(why, n, "%s is out of range %llu..%llu", v, (unsigned long long)min,
                    (unsigned long long)max);
    *out = x;
    return true;
}

static bool parse_port(const char *v, uint16_t *out, char *why, size_t n)
{
    uint64_t x;
    if (!parse_uint(v, 1, 65535, &x, why, n))
        return false;
    *out = (uint16_t)x;
    return true;
}

static bool parse_bool(const char *v, bool *out, char *why, size_t n)
{
    if (!strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcmp(v, "1"))
        *out = true;
    else if (!strcasecmp(v, "false") || !strcasecmp(v, "no") || !strcmp(v, "0"))
        *out = false;
    else
        return fail(why, n, "\"%s\" is not true, false, yes, no, 1 or 0", v);
    return true;
}

static bool parse_duplicates(const char *v, config_duplicates *out, char *why, size_t n)
{
    static const config_duplicates all[] = {CONFIG_DUP_REPLACE, CONFIG_DUP_KEEP, CONFIG_DUP_REJECT};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        if (!strcasecmp(v, config_duplicates_name(all[i]))) {
            *out = all[i];
            return true;
        }
    }
    return fail(why, n, "\"%s\" is not replace, keep or reject", v);
}

static bool parse_compression(const char *v, config_compression *out, char *why, size_t n)
{
    static const config_compression all[] = {CONFIG_COMPRESS_NONE, CONFIG_COMPRESS_RLE,
                                             CONFIG_COMPRESS_JPEG_LS};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        if (!strcasecmp(v, config_compression_name(all[i]))) {
            *out = all[i];
            return true;
        }
    }
    return fail(why, n, "\"%s\" is not none, rle or jpeg-ls", v);
}

/* An AE title already stripped of its insignificant spaces (PS3.5 Table 6.2-1, AE VR). */
static bool ae_ok(const char *s, size_t len, char *why, size_t n)
{
    if (len == 0)
        return fail(why, n, "empty AE title");
    if (len > CONFIG_AE_MAX)
        return fail(why, n, "AE title \"%.*s\" is longer than %d characters", (int)len, s,
                    CONFIG_AE_MAX);
    if (!ul_ae_title_valid(s, len))
        return fail(why, n, "\"%.*s\" is not a valid AE title (printable ASCII, no backslash)",
                    (int)len, s);
    return true;
}

/* Copies the AE title s[0..len) without leading and trailing spaces into dst, if valid. */
static bool set_ae(char dst[CONFIG_AE_MAX + 1], const char *s, size_t len, char *why, size_t n)
{
    while (len > 0 && s[0] == ' ')
        s++, len--;
    while (len > 0 && s[len - 1] == ' ')
        len--;
    if (!ae_ok(s, len, why, n))
        return false;
    memcpy(dst, s, len);
    dst[len] = '\0';
    return true;
}

/* "A B,C": AE titles separated by spaces, tabs or commas; empty means any calling AE. The
 * list is replaced as a whole, and only if every entry is valid. */
static bool set_ae_list(config *cfg, const char *v, char *why, size_t n)
{
    char list[CONFIG_MAX_CALLING_AES][CONFIG_AE_MAX + 1];
    size_t count = 0;
    const char *sep = " \t,";
    for (const char *p = v + strspn(v, sep); *p; p += strspn(p, sep)) {
        size_t len = strcspn(p, sep);
        char ae[CONFIG_AE_MAX + 1];
        if (!set_ae(ae, p, len, why, n))
            return false;
        p += len;
        bool seen = false;
        for (size_t i = 0; i < count && !seen; i++)
            seen = !strcmp(list[i], ae);
        if (seen)
            continue;
        if (count == CONFIG_MAX_CALLING_AES)
            return fail(why, n, "more than %d AE titles", CONFIG_MAX_CALLING_AES);
        memcpy(list[count++], ae, sizeof ae);
    }
    memcpy(cfg->calling_aes, list, count * sizeof list[0]);
    cfg->calling_ae_count = count;
    return true;
}

/* A host name or address: no whitespace or control characters, shorter than max. */
static bool host_ok(const char *s, size_t len, size_t max, bool may_be_empty, char *why, size_t n)
{
    if (len == 0 && !may_be_empty)
        return fail(why, n, "empty, expected a host name or address");
    if (len >= max)
        return fail(why, n, "longer than %zu characters", max - 1);
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch <= ' ' || ch == 0x7F)
            return fail(why, n, "\"%.*s\" is not a host name or address", (int)len, s);
    }
    return true;
}

static bool set_host(char *dst, size_t size, const char *v, bool may_be_empty, char *why, size_t n)
{
    size_t len = strlen(v);
    if (!host_ok(v, len, size, may_be_empty, why, n))
        return false;
    memcpy(dst, v, len + 1);
    return true;
}

static bool set_path(char *dst, size_t size, const char *v, char *why, size_t n)
{
    size_t len = strlen(v);
    if (len == 0)
        return fail(why, n, "empty, expected a folder");
    if (len >= size)
        return fail(why, n, "longer than %zu characters", size - 1);
    memcpy(dst, v, len + 1);
    return true;
}

static bool set_seconds(uint32_t *ms, const char *v, uint64_t max_s, char *why, size_t n)
{
    uint64_t s;
    if (!parse_uint(v, 1, max_s, &s, why, n))
        return false;
    *ms = (uint32_t)(s * 1000);
    return true;
}

/* Sets key k from its text v (surrounding whitespace already removed). rem is the remote for
 * the [remote NAME] keys. cfg and rem change only when v is valid. */
static bool set_value(config *cfg, config_remote *rem, enum key k, const char *v, char *why,
                      size_t n)
{
    uint64_t u;
    switch (k) {
    case KEY_DATA_DIR: return set_path(cfg->data_dir, sizeof cfg->data_dir, v, why, n);
    case KEY_BIND: return set_host(cfg->bind, sizeof cfg->bind, v, true, why, n);
    case KEY_COMPRESSION: return parse_compression(v, &cfg->compression, why, n);
    case KEY_AE_TITLE: return set_ae(cfg->ae_title, v, strlen(v), why, n);
    case KEY_DICOM_PORT: return parse_port(v, &cfg->dicom_port, why, n);
    case KEY_REQUIRE_CALLED_AE: return parse_bool(v, &cfg->require_called_ae, why, n);
    case KEY_ACCEPTED_CALLING_AES: return set_ae_list(cfg, v, why, n);
    case KEY_MAX_ASSOCIATIONS:
        if (!parse_uint(v, 1, MAX_ASSOCIATIONS_MAX, &u, why, n))
            return false;
        cfg->max_associations = (uint32_t)u;
        return true;
    case KEY_MAX_PDU_LENGTH:
        if (!parse_uint(v, PDU_LENGTH_MIN, PDU_LENGTH_MAX, &u, why, n))
            return false;
        cfg->max_pdu_length = (uint32_t)u;
        return true;
    case KEY_ARTIM_TIMEOUT: return set_seconds(&cfg->artim_timeout_ms, v, ARTIM_MAX_S, why, n);
    case KEY_IDLE_TIMEOUT: return set_seconds(&cfg->idle_timeout_ms, v, IDLE_MAX_S, why, n);
    case KEY_DUPLICATES: return parse_duplicates(v, &cfg->duplicates, why, n);
    case KEY_HTTP_PORT: return parse_port(v, &cfg->http_port, why, n);
    case KEY_REMOTE_AE_TITLE: return set_ae(rem->ae_title, v, strlen(v), why, n);
    case KEY_REMOTE_HOST: return set_host(rem->host, sizeof rem->host, v, false, why, n);
    case KEY_REMOTE_PORT: return parse_port(v, &rem->port, why, n);
    case KEY_COUNT: break;
    }
    return fail(why, n, "unknown key");
}

/* A remote's name: letters, digits, '.', '_' and '-', so it reads the same in logs and URLs. */
static bool remote_name_ok(const char *s, size_t len, char *why, size_t n)
{
    if (len == 0)
        return fail(why, n, "missing name, write [remote NAME]");
    if (len >= sizeof((config_remote *)0)->name)
        return fail(why, n, "name longer than %zu characters",
                    sizeof((config_remote *)0)->name - 1);
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("._-", s[i]))
            return fail(why, n, "name \"%.*s\" may hold only letters, digits, '.', '_' and '-'",
                        (int)len, s);
    return true;
}

/* ------------------------------------------------------------------------------------------ */
/* The file                                                                                   */

struct loader {
    config work;      /* the configuration being built; copied out only on success */
    const char *path; /* for messages */
    FILE *f;
    int lineno;   /* the line last handed to libinih, 1-based */
    vp_error err; /* the first problem */
    int err_line; /* its line; 0 while there is none */

    enum section sect;
    char section[INIH_MAX_SECTION]; /* the text between the brackets, as libinih reports it */
    char label[INIH_MAX_SECTION];   /* the same without surrounding spaces, for messages */
    int section_line;               /* line of the [section] header */
    size_t remote;                  /* index in work.remotes while sect is SECT_REMOTE */

    int key_line[KEY_COUNT]; /* line that set each [server], [dicom], [http] key; 0 = not yet */
    int remote_line[CONFIG_MAX_REMOTES]; /* header line of each remote this file defines */
    int remote_key_line[CONFIG_MAX_REMOTES][REMOTE_KEYS];
};

/* Records the first problem, "FILE:LINE: ...", and returns 0 (a failing libinih handler). */
static int fail_at(struct loader *ld, vp_status st, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail_at(struct loader *ld, vp_status st, int line, const char *fmt, ...)
{
    if (ld->err_line)
        return 0;
    char msg[VP_ERROR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    vp_error_set(&ld->err, st, "%s:%d: %s", ld->path, line, msg);
    ld->err_line = line;
    return 0;
}

/* libinih's find_chars_or_comment: the first of chars, or the start of an inline comment
 * (';' after whitespace), or the end of s. */
static char *find_chars_or_comment(char *s, const char *chars)
{
    bool was_space = false;
    while (*s && !strchr(chars, *s) && !(was_space && *s == ';')) {
        was_space = isspace((unsigned char)*s);
        s++;
    }
    return s;
}

/* Checks that the section being left has everything it needs. */
static bool end_section(struct loader *ld)
{
    if (ld->sect != SECT_REMOTE)
        return true;
    for (int i = 0; i < REMOTE_KEYS; i++)
        if (!ld->remote_key_line[ld->remote][i])
            return fail_at(ld, VP_EPARSE, ld->section_line, "[%s]: missing %s", ld->label,
                           keys[KEY_REMOTE_AE_TITLE + i].name);
    return true;
}

/* Enters the section whose header text (between the brackets) is text, len bytes. */
static bool begin_section(struct loader *ld, const char *text, size_t len)
{
    if (!end_section(ld))
        return false;
    int line = ld->lineno;
    if (len >= sizeof ld->section)
        return fail_at(ld, VP_EPARSE, line, "section name longer than %zu characters",
                       sizeof ld->section - 1);
    memcpy(ld->section, text, len);
    ld->section[len] = '\0';
    while (len > 0 && isspace((unsigned char)text[len - 1]))
        len--;
    while (len > 0 && isspace((unsigned char)*text))
        text++, len--;
    memcpy(ld->label, text, len);
    ld->label[len] = '\0';
    ld->section_line = line;

    if (!strcmp(ld->label, "server")) {
        ld->sect = SECT_SERVER;
        return true;
    }
    if (!strcmp(ld->label, "dicom")) {
        ld->sect = SECT_DICOM;
        return true;
    }
    if (!strcmp(ld->label, "http")) {
        ld->sect = SECT_HTTP;
        return true;
    }
    if (strncmp(ld->label, "remote", 6) != 0 ||
        (ld->label[6] && !isspace((unsigned char)ld->label[6])))
        return fail_at(ld, VP_EPARSE, line,
                       "[%s]: unknown section (expected [server], [dicom], [http] or "
                       "[remote NAME])",
                       ld->label);

    const char *name = ld->label + 6;
    while (isspace((unsigned char)*name))
        name++;
    char why[WHY_MAX];
    if (!remote_name_ok(name, strlen(name), why, sizeof why))
        return fail_at(ld, VP_EPARSE, line, "[%s]: %s", ld->label, why);
    config *cfg = &ld->work;
    size_t i = 0;
    while (i < cfg->remote_count && strcmp(cfg->remotes[i].name, name) != 0)
        i++;
    if (i < cfg->remote_count && ld->remote_line[i])
        return fail_at(ld, VP_EPARSE, line, "[remote %s]: section given twice (first at line %d)",
                       name, ld->remote_line[i]);
    if (i == cfg->remote_count) {
        if (i == CONFIG_MAX_REMOTES)
            return fail_at(ld, VP_EPARSE, line, "[remote %s]: more than %d remotes", name,
                           CONFIG_MAX_REMOTES);
        cfg->remote_count++;
    }
    /* A remote set before this file (by an earlier file) is replaced as a whole. */
    config_remote *rem = &cfg->remotes[i];
    memset(rem, 0, sizeof *rem);
    memcpy(rem->name, name, strlen(name) + 1);
    ld->sect = SECT_REMOTE;
    ld->remote = i;
    ld->remote_line[i] = line;
    memset(ld->remote_key_line[i], 0, sizeof ld->remote_key_line[i]);
    return true;
}

/* Looks at a line before libinih does: only blank lines, comments, well-formed [section]
 * headers and key = value lines pass. */
static bool check_line(struct loader *ld, char *s)
{
    int line = ld->lineno;
    if (!*s || *s == ';' || *s == '#')
        return true;
    if (*s == '[') {
        char *end = find_chars_or_comment(s + 1, "]");
        if (*end != ']')
            return fail_at(ld, VP_EPARSE, line, "missing ] after [%s", s + 1);
        char *rest = end + 1;
        while (isspace((unsigned char)*rest))
            rest++;
        if (*rest && *rest != ';' && *rest != '#')
            return fail_at(ld, VP_EPARSE, line, "text after [%.*s]: %s", (int)(end - s - 1), s + 1,
                           rest);
        return begin_section(ld, s + 1, (size_t)(end - s - 1));
    }
    char *end = find_chars_or_comment(s, "=:");
    if (*end != '=' && *end != ':')
        return fail_at(ld, VP_EPARSE, line, "expected key = value, [section] or a comment");
    return true;
}

/* libinih's reader: the next line into str (num bytes), or NULL at the end or on a problem. */
static char *read_line(char *str, int num, void *stream)
{
    struct loader *ld = stream;
    if (ld->err_line || num < 2)
        return NULL;
    int line = ld->lineno + 1;
    size_t len = 0, cap = (size_t)num - 1;
    int c = EOF;
    bool any = false;
    while ((c = getc(ld->f)) != EOF && c != '\n') {
        any = true;
        if (c == '\0') {
            fail_at(ld, VP_EPARSE, line, "NUL byte in line");
            return NULL;
        }
        if (len == cap) {
            fail_at(ld, VP_EPARSE, line, "line longer than %zu characters", cap);
            return NULL;
        }
        str[len++] = (char)c;
    }
    if (c == EOF && ferror(ld->f)) {
        fail_at(ld, VP_EIO, line, "%s", strerror(errno));
        return NULL;
    }
    if (c == EOF && !any) {
        end_section(ld);
        return NULL;
    }
    str[len] = '\0';
    ld->lineno = line;

    char *s = str;
    if (line == 1 && !strncmp(s, "\xEF\xBB\xBF", 3)) /* UTF-8 byte order mark */
        s += 3;
    while (isspace((unsigned char)*s))
        s++;
    memmove(str, s, strlen(s) + 1);
    return check_line(ld, str) ? str : NULL;
}

/* libinih's handler: one key = value in section. */
static int on_key(void *user, const char *section, const char *name, const char *value)
{
    struct loader *ld = user;
    int line = ld->lineno;
    if (ld->err_line)
        return 0;
    if (ld->sect == SECT_NONE)
        return fail_at(ld, VP_EPARSE, line, "%s: key before the first [section]", name);
    if (strcmp(section, ld->section) != 0) /* the reader and libinih disagree on a header */
        return fail_at(ld, VP_EPARSE, line, "[%s]: section header not understood", section);

    enum key k = 0;
    while (k < KEY_COUNT && (keys[k].section != ld->sect || strcmp(keys[k].name, name) != 0))
        k++;
    if (k == KEY_COUNT)
        return fail_at(ld, VP_EPARSE, line, "[%s] %s: unknown key", ld->label, name);

    config_remote *rem = NULL;
    int *seen = &ld->key_line[k];
    if (ld->sect == SECT_REMOTE) {
        rem = &ld->work.remotes[ld->remote];
        seen = &ld->remote_key_line[ld->remote][k - KEY_REMOTE_AE_TITLE];
    }
    if (*seen)
        return fail_at(ld, VP_EPARSE, line, "[%s] %s: given twice (first at line %d)", ld->label,
                       name, *seen);
    *seen = line;

    char why[WHY_MAX];
    if (!set_value(&ld->work, rem, k, value, why, sizeof why))
        return fail_at(ld, VP_EPARSE, line, "[%s] %s: %s", ld->label, name, why);
    return 1;
}

vp_status config_load_file(config *cfg, const char *path, vp_error *err)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno == ENOENT || errno == ENOTDIR)
            return vp_error_set(err, VP_ENOTFOUND, "%s: no such file", path);
        return vp_error_set(err, VP_EIO, "%s: %s", path, strerror(errno));
    }
    vp_status st = VP_OK;
    struct loader *ld = vp_calloc(1, sizeof *ld);
    if (!ld) {
        st = vp_error_set(err, VP_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    ld->work = *cfg;
    ld->path = path;
    ld->f = f;
    vp_error_clear(&ld->err);

    /* libinih returns the first line it could not parse, or one whose handler failed; our
     * reader stops at the first problem it or the handler found. */
    int bad = ini_parse_stream(read_line, ld, on_key, ld);
    if (bad > 0 && (!ld->err_line || bad < ld->err_line))
        st = vp_error_set(err, VP_EPARSE, "%s:%d: not understood", path, bad);
    else if (ld->err_line)
        st = vp_error_set(err, ld->err.status, "%s", ld->err.msg);
    else if (bad == -2)
        st = vp_error_set(err, VP_ENOMEM, "%s: out of memory", path);
    else if (bad < 0)
        st = vp_error_set(err, VP_EIO, "%s: cannot read", path);
    else
        *cfg = ld->work;
out:
    vp_free(ld);
    fclose(f);
    return st;
}

/* ------------------------------------------------------------------------------------------ */
/* The environment                                                                            */

vp_status config_apply_env(config *cfg, vp_error *err)
{
    config *work = vp_malloc(sizeof *work);
    if (!work)
        return vp_error_set(err, VP_ENOMEM, "environment: out of memory");
    *work = *cfg;
    vp_status st = VP_OK;
    for (enum key k = 0; k < KEY_COUNT && st == VP_OK; k++) {
        const char *v = keys[k].env ? getenv(keys[k].env) : NULL;
        if (!v)
            continue;
        /* Surrounding whitespace is dropped, as libinih does for file values. */
        char text[sizeof work->data_dir];
        size_t len = strlen(v);
        while (len > 0 && isspace((unsigned char)v[len - 1]))
            len--;
        while (len > 0 && isspace((unsigned char)*v))
            v++, len--;
        if (len >= sizeof text) {
            st = vp_error_set(err, VP_EINVAL, "%s: longer than %zu characters", keys[k].env,
                              sizeof text - 1);
            break;
        }
        memcpy(text, v, len);
        text[len] = '\0';
        char why[WHY_MAX];
        if (!set_value(work, NULL, k, text, why, sizeof why))
            st = vp_error_set(err, VP_EINVAL, "%s: %s", keys[k].env, why);
    }
    if (st == VP_OK)
        *cfg = *work;
    vp_free(work);
    return st;
}

/* ------------------------------------------------------------------------------------------ */
/* The whole                                                                                  */

/* A stored AE title: terminated within its field, without surrounding spaces, valid. */
static bool stored_ae_ok(const char *ae, char *why, size_t n)
{
    size_t len = strnlen(ae, CONFIG_AE_MAX + 1);
    if (len > CONFIG_AE_MAX)
        return fail(why, n, "AE title longer than %d characters", CONFIG_AE_MAX);
    if (len > 0 && (ae[0] == ' ' || ae[len - 1] == ' '))
        return fail(why, n, "AE title \"%s\" has leading or trailing spaces", ae);
    return ae_ok(ae, len, why, n);
}

static bool stored_host_ok(const char *s, size_t size, bool may_be_empty, char *why, size_t n)
{
    size_t len = strnlen(s, size);
    if (len == size)
        return fail(why, n, "longer than %zu characters", size - 1);
    return host_ok(s, len, size, may_be_empty, why, n);
}

static bool range_ok(uint64_t v, uint64_t min, uint64_t max, char *why, size_t n)
{
    if (v < min || v > max)
        return fail(why, n, "%llu is out of range %llu..%llu", (unsigned long long)v,
                    (unsigned long long)min, (unsigned long long)max);
    return true;
}

vp_status config_validate(const config *cfg, vp_error *err)
{
    char why[WHY_MAX];
    size_t len = strnlen(cfg->data_dir, sizeof cfg->data_dir);
    if (len == 0 || len == sizeof cfg->data_dir)
        return vp_error_set(err, VP_EINVAL, "[server] data_dir: %s",
                            len ? "too long" : "empty, expected a folder");
    if (!stored_host_ok(cfg->bind, sizeof cfg->bind, true, why, sizeof why))
        return vp_error_set(err, VP_EINVAL, "[server] bind: %s", why);
    if (!stored_ae_ok(cfg->ae_title, why, sizeof why))
        return vp_error_set(err, VP_EINVAL, "[dicom] ae_title: %s", why);
    if (!cfg->dicom_port)
        return vp_error_set(err, VP_EINVAL, "[dicom] port: must not be 0");
    if (!cfg->http_port)
        return vp_error_set(err, VP_EINVAL, "[http] port: must not be 0");
    if (cfg->dicom_port == cfg->http_port)
        return vp_error_set(err, VP_EINVAL, "[dicom] port and [http] port are both %u",
                            (unsigned)cfg->dicom_port);
    if (cfg->calling_ae_count > CONFIG_MAX_CALLING_AES)
        return vp_error_set(err, VP_EINVAL, "[dicom] accepted_calling_aes: more than %d",
                            CONFIG_MAX_CALLING_AES);
    for (size_t i = 0; i < cfg->calling_ae_count; i++)
        if (!stored_ae_ok(cfg->calling_aes[i], why, sizeof why))
            return vp_error_set(err, VP_EINVAL, "[dicom] accepted_calling_aes: %s", why);
    if (!range_ok(cfg->max_associations, 1, MAX_ASSOCIATIONS_MAX, why, sizeof why))
        return vp_error_set(err, VP_EINVAL, "[dicom] max_associations: %s", why);
    if (!range_ok(cfg->max_pdu_length, PDU_LENGTH_MIN, PDU_LENGTH_MAX, why, sizeof why))
        return vp_error_set(err, VP_EINVAL, "[dicom] max_pdu_length: %s", why);
    /* In milliseconds: programs and tests may set less than a second. */
    if (!range_ok(cfg->artim_timeout_ms, 1, ARTIM_MAX_S * 1000ull, why, sizeof why))
        return vp_error_set(err, VP_EINVAL, "[dicom] artim_timeout: %s ms", why);
    if (!range_ok(cfg->idle_timeout_ms, 1, IDLE_MAX_S * 1000ull, why, sizeof why))
        return vp_error_set(err, VP_EINVAL, "[dicom] idle_timeout: %s ms", why);
    if (cfg->duplicates != CONFIG_DUP_REPLACE && cfg->duplicates != CONFIG_DUP_KEEP &&
        cfg->duplicates != CONFIG_DUP_REJECT)
        return vp_error_set(err, VP_EINVAL, "[dicom] duplicates: %d is not replace, keep or reject",
                            (int)cfg->duplicates);
    if (!config_compression_ts(cfg->compression) && cfg->compression != CONFIG_COMPRESS_NONE)
        return vp_error_set(err, VP_EINVAL, "[server] compression: %d is not none, rle or jpeg-ls",
                            (int)cfg->compression);
    if (cfg->remote_count > CONFIG_MAX_REMOTES)
        return vp_error_set(err, VP_EINVAL, "more than %d remotes", CONFIG_MAX_REMOTES);
    for (size_t i = 0; i < cfg->remote_count; i++) {
        const config_remote *r = &cfg->remotes[i];
        if (!remote_name_ok(r->name, strnlen(r->name, sizeof r->name), why, sizeof why))
            return vp_error_set(err, VP_EINVAL, "[remote]: %s", why);
        if (!stored_ae_ok(r->ae_title, why, sizeof why))
            return vp_error_set(err, VP_EINVAL, "[remote %s] ae_title: %s", r->name, why);
        if (!stored_host_ok(r->host, sizeof r->host, false, why, sizeof why))
            return vp_error_set(err, VP_EINVAL, "[remote %s] host: %s", r->name, why);
        if (!r->port)
            return vp_error_set(err, VP_EINVAL, "[remote %s] port: must not be 0", r->name);
        for (size_t j = 0; j < i; j++) {
            if (!strcmp(cfg->remotes[j].name, r->name))
                return vp_error_set(err, VP_EINVAL, "[remote %s]: given twice", r->name);
            /* C-MOVE names its destination by AE title alone. */
            if (!strcmp(cfg->remotes[j].ae_title, r->ae_title))
                return vp_error_set(err, VP_EINVAL,
                                    "[remote %s] ae_title: %s is also the AE title of [remote %s]",
                                    r->name, r->ae_title, cfg->remotes[j].name);
        }
    }
    return VP_OK;
}

vp_status config_add_peer(config *cfg, const char *spec, vp_error *err)
{
    char why[160] = "";
    const char *at = strchr(spec, '@');
    const char *colon = strrchr(spec, ':');
    if (!at || !colon || colon < at)
        return vp_error_set(err, VP_EINVAL, "--peer %s: expected AE@HOST:PORT", spec);
    config_remote r = {0};
    const char *host = at + 1;
    size_t host_len = (size_t)(colon - host);
    if (host_len >= 2 && host[0] == '[' && host[host_len - 1] == ']') {
        host++; /* [IPv6 address]:port */
        host_len -= 2;
    }
    char h[sizeof r.host];
    if (host_len >= sizeof h)
        return vp_error_set(err, VP_EINVAL, "--peer %s: host name too long", spec);
    memcpy(h, host, host_len);
    h[host_len] = 0;
    if (!set_ae(r.ae_title, spec, (size_t)(at - spec), why, sizeof why) ||
        !set_host(r.host, sizeof r.host, h, false, why, sizeof why) ||
        !parse_port(colon + 1, &r.port, why, sizeof why))
        return vp_error_set(err, VP_EINVAL, "--peer %s: %s", spec, why);
    /* Named after its AE title, in the characters a remote name may hold. */
    for (size_t i = 0; r.ae_title[i] && i + 1 < sizeof r.name; i++) {
        char c = r.ae_title[i];
        r.name[i] = (isalnum((unsigned char)c) || c == '.' || c == '_' || c == '-') ? c : '-';
    }
    size_t i = 0;
    while (i < cfg->remote_count && strcmp(cfg->remotes[i].ae_title, r.ae_title) != 0)
        i++;
    if (i == cfg->remote_count) {
        if (cfg->remote_count == CONFIG_MAX_REMOTES)
            return vp_error_set(err, VP_ELIMIT, "--peer %s: more than %d remotes", spec,
                                CONFIG_MAX_REMOTES);
        cfg->remote_count++;
    } else {
        snprintf(r.name, sizeof r.name, "%s", cfg->remotes[i].name); /* keeps its name */
    }
    cfg->remotes[i] = r;
    return VP_OK;
}

const config_remote *config_find_remote(const config *cfg, const char *ae_title)
{
    if (!cfg || !ae_title)
        return NULL;
    size_t len = strlen(ae_title);
    while (len > 0 && *ae_title == ' ')
        ae_title++, len--;
    while (len > 0 && ae_title[len - 1] == ' ')
        len--;
    if (len == 0 || len > CONFIG_AE_MAX)
        return NULL;
    size_t count = cfg->remote_count < CONFIG_MAX_REMOTES ? cfg->remote_count : CONFIG_MAX_REMOTES;
    for (size_t i = 0; i < count; i++) {
        const config_remote *r = &cfg->remotes[i];
        if (strnlen(r->ae_title, sizeof r->ae_title) == len && !memcmp(r->ae_title, ae_title, len))
            return r;
    }
    return NULL;
}
