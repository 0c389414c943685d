/* SPDX-License-Identifier: MIT */
/* Unit tests for src/app/config: defaults, the INI file with every error class and its line,
 * the VETPACS_* environment, precedence, validation and remote lookup. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app/config.h"
#include "harness.h"

static const char *const env_vars[] = {
    "VETPACS_DATA",       "VETPACS_BIND",
    "VETPACS_AET",        "VETPACS_DICOM_PORT",
    "VETPACS_HTTP_PORT",  "VETPACS_MAX_ASSOCIATIONS",
    "VETPACS_DUPLICATES", "VETPACS_ACCEPTED_CALLING_AES",
};

static void clear_env(void)
{
    for (size_t i = 0; i < sizeof env_vars / sizeof env_vars[0]; i++)
        unsetenv(env_vars[i]);
}

/* The path of the last file written by write_conf. */
static char conf_path[64];

static bool write_conf(const char *text, size_t len)
{
    snprintf(conf_path, sizeof conf_path, "/tmp/vp-config-XXXXXX");
    int fd = mkstemp(conf_path);
    if (fd < 0)
        return false;
    bool ok = write(fd, text, len) == (ssize_t)len;
    close(fd);
    return ok;
}

/* Loads text as a config file over cfg. */
static vp_status load_text(config *cfg, const char *text, vp_error *err)
{
    vp_error_clear(err);
    if (!write_conf(text, strlen(text)))
        return vp_error_set(err, VP_EIO, "cannot write %s", conf_path);
    vp_status st = config_load_file(cfg, conf_path, err);
    unlink(conf_path);
    return st;
}

/* Checks that loading text fails with VP_EPARSE and "PATH:" followed by want, and that the
 * configuration did not change. */
#define CHECK_PARSE_ERROR(text, want)                                                              \
    do {                                                                                           \
        config c_, d_;                                                                             \
        config_defaults(&c_);                                                                      \
        config_defaults(&d_);                                                                      \
        vp_error e_;                                                                               \
        CHECK_INT(load_text(&c_, (text), &e_), VP_EPARSE);                                         \
        char w_[VP_ERROR_MAX];                                                                     \
        snprintf(w_, sizeof w_, "%s:%s", conf_path, (want));                                       \
        CHECK_STR(e_.msg, w_);                                                                     \
        CHECK(!memcmp(&c_, &d_, sizeof c_));                                                       \
    } while (0)

TEST(defaults)
{
    config cfg;
    memset(&cfg, 0xAB, sizeof cfg);
    config_defaults(&cfg);
    CHECK_STR(cfg.data_dir, "./vetpacs-data");
    CHECK_STR(cfg.bind, "");
    CHECK_STR(cfg.ae_title, "VETPACS");
    CHECK_INT(cfg.dicom_port, 11112);
    CHECK(cfg.require_called_ae);
    CHECK_INT(cfg.calling_ae_count, 0);
    CHECK_INT(cfg.max_associations, 32);
    CHECK_INT(cfg.max_pdu_length, 262144);
    CHECK_INT(cfg.artim_timeout_ms, 30000);
    CHECK_INT(cfg.idle_timeout_ms, 300000);
    CHECK_INT(cfg.duplicates, CONFIG_DUP_REPLACE);
    CHECK_INT(cfg.http_port, 8042);
    CHECK_INT(cfg.remote_count, 0);
    vp_error err;
    vp_error_clear(&err);
    CHECK_OK(config_validate(&cfg, &err));
    CHECK_STR(err.msg, "");
}

TEST(duplicates_names)
{
    CHECK_STR(config_duplicates_name(CONFIG_DUP_REPLACE), "replace");
    CHECK_STR(config_duplicates_name(CONFIG_DUP_KEEP), "keep");
    CHECK_STR(config_duplicates_name(CONFIG_DUP_REJECT), "reject");
    CHECK_STR(config_duplicates_name((config_duplicates)42), "unknown");
}

TEST(full_file)
{
    const char *text = "\xEF\xBB\xBF; vetpacs test configuration\r\n"
                       "# hash comments too\n"
                       "\n"
                       "[server]\n"
                       "data_dir = /srv/vetpacs data ; inline comment\n"
                       "bind = 127.0.0.1\n"
                       "\n"
                       "[dicom]\n"
                       "  ae_title =  CLINIC_PACS  \n"
                       "  port = 104\r\n"
                       "require_called_ae = No\n"
                       "accepted_calling_aes = DX1, US_ROOM  CT1,DX1\n"
                       "max_associations = 8\n"
                       "max_pdu_length = 16384\n"
                       "artim_timeout = 10\n"
                       "idle_timeout = 600\n"
                       "duplicates = reject\n"
                       "[http]\n"
                       "port = 8080\n"
                       "[remote ct-room]\n"
                       "ae_title = CT1\n"
                       "host = ct.clinic.lan\n"
                       "port = 104\n"
                       "[ remote   ws_2 ]\n"
                       "host = 10.0.0.7\n"
                       "ae_title = WS2\n"
                       "port = 11113";
    config cfg;
    config_defaults(&cfg);
    vp_error err;
    CHECK_OK(load_text(&cfg, text, &err));
    CHECK_STR(err.msg, "");
    CHECK_STR(cfg.data_dir, "/srv/vetpacs data");
    CHECK_STR(cfg.bind, "127.0.0.1");
    CHECK_STR(cfg.ae_title, "CLINIC_PACS");
    CHECK_INT(cfg.dicom_port, 104);
    CHECK(!cfg.require_called_ae);
    CHECK_INT(cfg.calling_ae_count, 3); /* the second DX1 is dropped */
    CHECK_STR(cfg.calling_aes[0], "DX1");
    CHECK_STR(cfg.calling_aes[1], "US_ROOM");
    CHECK_STR(cfg.calling_aes[2], "CT1");
    CHECK_INT(cfg.max_associations, 8);
    CHECK_INT(cfg.max_pdu_length, 16384);
    CHECK_INT(cfg.artim_timeout_ms, 10000);
    CHECK_INT(cfg.idle_timeout_ms, 600000);
    CHECK_INT(cfg.duplicates, CONFIG_DUP_REJECT);
    CHECK_INT(cfg.http_port, 8080);
    CHECK_INT(cfg.remote_count, 2);
    CHECK_STR(cfg.remotes[0].name, "ct-room");
    CHECK_STR(cfg.remotes[0].ae_title, "CT1");
    CHECK_STR(cfg.remotes[0].host, "ct.clinic.lan");
    CHECK_INT(cfg.remotes[0].port, 104);
    CHECK_STR(cfg.remotes[1].name, "ws_2");
    CHECK_STR(cfg.remotes[1].ae_title, "WS2");
    CHECK_STR(cfg.remotes[1].host, "10.0.0.7");
    CHECK_INT(cfg.remotes[1].port, 11113);
    CHECK_OK(config_validate(&cfg, &err));
}

/* vetpacs.conf.example at the top of the tree holds every default. */
TEST(example_file_is_defaults)
{
    /* CMake compiles with the absolute path of this file: SRC/tests/unit/test_config.c. */
    const char *self = __FILE__, *tail = strstr(self, "tests/unit/test_config.c");
    if (!tail) {
        FAIL_AT("cannot find the source tree from %s", self);
        return;
    }
    char path[4096];
    snprintf(path, sizeof path, "%.*svetpacs.conf.example", (int)(tail - self), self);
    config cfg, def;
    memset(&cfg, 0x5A, sizeof cfg);
    memset(&def, 0x5A, sizeof def);
    config_defaults(&cfg);
    config_defaults(&def);
    vp_error err;
    vp_error_clear(&err);
    CHECK_OK(config_load_file(&cfg, path, &err));
    CHECK_STR(err.msg, "");
    CHECK(!memcmp(&cfg, &def, sizeof cfg));
}

TEST(partial_file_keeps_the_rest)
{
    config cfg, def;
    config_defaults(&cfg);
    config_defaults(&def);
    vp_error err;
    CHECK_OK(load_text(&cfg, "[dicom]\nport = 4242\n", &err));
    CHECK_INT(cfg.dicom_port, 4242);
    cfg.dicom_port = def.dicom_port;
    CHECK(!memcmp(&cfg, &def, sizeof cfg));
    /* An empty file and one of comments change nothing. */
    CHECK_OK(load_text(&cfg, "", &err));
    CHECK_OK(load_text(&cfg, "; nothing\n\n# here\n[dicom]\n", &err));
    CHECK(!memcmp(&cfg, &def, sizeof cfg));
}

TEST(values_accepted)
{
    static const struct {
        const char *text;
        bool require_called_ae;
        config_duplicates dup;
        uint32_t pdu;
    } cases[] = {
        {"[dicom]\nrequire_called_ae = true\nduplicates = keep\nmax_pdu_length = 1024\n", true,
         CONFIG_DUP_KEEP, 1024},
        {"[dicom]\nrequire_called_ae = YES\nduplicates = Replace\nmax_pdu_length = 16777216\n",
         true, CONFIG_DUP_REPLACE, 16777216},
        {"[dicom]\nrequire_called_ae = 0\nduplicates = reject\nmax_pdu_length = 0065536\n", false,
         CONFIG_DUP_REJECT, 65536},
        {"[dicom]\nrequire_called_ae = FALSE\nduplicates = keep\nmax_pdu_length = 4096\n", false,
         CONFIG_DUP_KEEP, 4096},
        {"[dicom]\nrequire_called_ae : 1\nduplicates:keep\nmax_pdu_length=4096\n", true,
         CONFIG_DUP_KEEP, 4096},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        config cfg;
        config_defaults(&cfg);
        cfg.require_called_ae = !cases[i].require_called_ae;
        vp_error err;
        CHECK_OK(load_text(&cfg, cases[i].text, &err));
        CHECK_INT(cfg.require_called_ae, cases[i].require_called_ae);
        CHECK_INT(cfg.duplicates, cases[i].dup);
        CHECK_INT(cfg.max_pdu_length, cases[i].pdu);
    }
    /* An empty list lifts an earlier restriction; bind may be empty. */
    config cfg;
    config_defaults(&cfg);
    vp_error err;
    CHECK_OK(load_text(&cfg, "[dicom]\naccepted_calling_aes = A B\n", &err));
    CHECK_INT(cfg.calling_ae_count, 2);
    CHECK_OK(load_text(&cfg, "[dicom]\naccepted_calling_aes =\n[server]\nbind=\n", &err));
    CHECK_INT(cfg.calling_ae_count, 0);
    CHECK_STR(cfg.bind, "");
    /* compression: names in any case, and what each stores in */
    CHECK_INT(cfg.compression, CONFIG_COMPRESS_NONE);
    CHECK(config_compression_ts(CONFIG_COMPRESS_NONE) == NULL);
    CHECK_OK(load_text(&cfg, "[server]\ncompression = JPEG-LS\n", &err));
    CHECK_INT(cfg.compression, CONFIG_COMPRESS_JPEG_LS);
    CHECK_STR(config_compression_ts(cfg.compression), "1.2.840.10008.1.2.4.80");
    CHECK_OK(load_text(&cfg, "[server]\ncompression = rle\n", &err));
    CHECK_STR(config_compression_ts(cfg.compression), "1.2.840.10008.1.2.5");
    CHECK_STR(config_compression_name(cfg.compression), "rle");
    CHECK_INT(load_text(&cfg, "[server]\ncompression = zip\n", &err), VP_EPARSE);
    CHECK(strstr(err.msg, "\"zip\" is not none, rle or jpeg-ls") != NULL);
}

TEST(missing_file)
{
    config cfg;
    config_defaults(&cfg);
    vp_error err;
    vp_error_clear(&err);
    CHECK_INT(config_load_file(&cfg, "/nonexistent/vetpacs.conf", &err), VP_ENOTFOUND);
    CHECK_INT(err.status, VP_ENOTFOUND);
    CHECK_STR(err.msg, "/nonexistent/vetpacs.conf: no such file");
    /* A folder is there but cannot be read as a file. */
    vp_error_clear(&err);
    CHECK_INT(config_load_file(&cfg, "/tmp", &err), VP_EIO);
    CHECK(!strncmp(err.msg, "/tmp:1: ", 8));
}

TEST(syntax_errors)
{
    CHECK_PARSE_ERROR("[server]\n\njust words\n",
                      "3: expected key = value, [section] or a comment");
    CHECK_PARSE_ERROR("[server]\n[dicom\nport = 1\n", "2: missing ] after [dicom");
    CHECK_PARSE_ERROR("[dicom] port = 1\n", "1: text after [dicom]: port = 1");
    CHECK_PARSE_ERROR("port = 104\n[dicom]\n", "1: port: key before the first [section]");
    char long_line[400];
    snprintf(long_line, sizeof long_line, "[server]\ndata_dir = /%0250d\n", 0);
    CHECK_PARSE_ERROR(long_line, "2: line longer than 199 characters");
    char long_section[80];
    snprintf(long_section, sizeof long_section, "\n[remote %060d]\n", 0);
    CHECK_PARSE_ERROR(long_section, "2: section name longer than 49 characters");
}

TEST(nul_byte)
{
    /* CHECK_PARSE_ERROR goes through strlen; write the NUL byte for real. */
    static const char text[] = "[dicom]\nport = 1\0 04\n";
    config cfg;
    config_defaults(&cfg);
    vp_error err;
    vp_error_clear(&err);
    CHECK(write_conf(text, sizeof text - 1));
    CHECK_INT(config_load_file(&cfg, conf_path, &err), VP_EPARSE);
    char want[VP_ERROR_MAX];
    snprintf(want, sizeof want, "%s:2: NUL byte in line", conf_path);
    CHECK_STR(err.msg, want);
    unlink(conf_path);
}

TEST(section_errors)
{
    CHECK_PARSE_ERROR("[server]\ndata_dir = /x\n[bogus]\n",
                      "3: [bogus]: unknown section (expected [server], [dicom], [http] or "
                      "[remote NAME])");
    CHECK_PARSE_ERROR("[DICOM]\n", "1: [DICOM]: unknown section (expected [server], [dicom], "
                                   "[http] or [remote NAME])");
    CHECK_PARSE_ERROR("[remotex]\n", "1: [remotex]: unknown section (expected [server], "
                                     "[dicom], [http] or [remote NAME])");
    CHECK_PARSE_ERROR("[remote]\nhost = x\n", "1: [remote]: missing name, write [remote NAME]");
    CHECK_PARSE_ERROR("[remote a/b]\n", "1: [remote a/b]: name \"a/b\" may hold only letters, "
                                        "digits, '.', '_' and '-'");
    CHECK_PARSE_ERROR("[remote ct]\nae_title = CT\nhost = ct\nport = 104\n"
                      "[http]\nport = 80\n"
                      "[remote ct]\nae_title = CT\nhost = ct\nport = 104\n",
                      "7: [remote ct]: section given twice (first at line 1)");
    /* A remote needs all three keys; the error names the section's header line. */
    CHECK_PARSE_ERROR("[remote ct]\nae_title = CT\nport = 104\n[http]\n",
                      "1: [remote ct]: missing host");
    CHECK_PARSE_ERROR("[dicom]\n[remote mr]\nhost = mr\nport = 104",
                      "2: [remote mr]: missing ae_title");
    CHECK_PARSE_ERROR("[remote us]\n", "1: [remote us]: missing ae_title");

    char many[8192] = "";
    size_t n = 0;
    for (int i = 0; i <= CONFIG_MAX_REMOTES; i++)
        n += (size_t)snprintf(many + n, sizeof many - n,
                              "[remote r%d]\nae_title=R%d\nhost=h\nport=1\n", i, i);
    CHECK_PARSE_ERROR(many, "257: [remote r64]: more than 64 remotes");
}

TEST(key_errors)
{
    CHECK_PARSE_ERROR("[dicom]\ncolour = blue\n", "2: [dicom] colour: unknown key");
    CHECK_PARSE_ERROR("[http]\nae_title = X\n", "2: [http] ae_title: unknown key");
    CHECK_PARSE_ERROR("[remote ct]\nbind = x\n", "2: [remote ct] bind: unknown key");
    CHECK_PARSE_ERROR("[dicom]\nport = 104\nae_title = A\nport = 105\n",
                      "4: [dicom] port: given twice (first at line 2)");
    /* The same key in a section opened again is still the same key. */
    CHECK_PARSE_ERROR("[dicom]\nport = 104\n[http]\nport = 80\n[dicom]\nport = 105\n",
                      "6: [dicom] port: given twice (first at line 2)");
    CHECK_PARSE_ERROR("[remote ct]\nhost = a\nhost = b\n",
                      "3: [remote ct] host: given twice (first at line 2)");
}

TEST(value_errors)
{
    CHECK_PARSE_ERROR("[dicom]\nport = 70000\n", "2: [dicom] port: 70000 is out of range 1..65535");
    CHECK_PARSE_ERROR("[dicom]\nport = 0\n", "2: [dicom] port: 0 is out of range 1..65535");
    CHECK_PARSE_ERROR("[dicom]\nport = 104x\n", "2: [dicom] port: \"104x\" is not a whole number");
    CHECK_PARSE_ERROR("[dicom]\nport = -1\n", "2: [dicom] port: \"-1\" is not a whole number");
    CHECK_PARSE_ERROR("[dicom]\nport = +104\n", "2: [dicom] port: \"+104\" is not a whole number");
    CHECK_PARSE_ERROR("[dicom]\nport = 1 04\n", "2: [dicom] port: \"1 04\" is not a whole number");
    CHECK_PARSE_ERROR("[dicom]\nport =\n",
                      "2: [dicom] port: empty, expected a number from 1 to 65535");
    CHECK_PARSE_ERROR("[dicom]\nport = 99999999999999999999999\n",
                      "2: [dicom] port: 99999999999999999999999 is out of range 1..65535");
    CHECK_PARSE_ERROR("[http]\nport = 8o42\n", "2: [http] port: \"8o42\" is not a whole number");
    CHECK_PARSE_ERROR("[dicom]\nrequire_called_ae = maybe\n",
                      "2: [dicom] require_called_ae: \"maybe\" is not true, false, yes, no, 1 or "
                      "0");
    CHECK_PARSE_ERROR("[dicom]\nae_title = ABCDEFGHIJKLMNOPQ\n",
                      "2: [dicom] ae_title: AE title \"ABCDEFGHIJKLMNOPQ\" is longer than 16 "
                      "characters");
    CHECK_PARSE_ERROR("[dicom]\nae_title = A\\B\n",
                      "2: [dicom] ae_title: \"A\\B\" is not a valid AE title (printable ASCII, no "
                      "backslash)");
    CHECK_PARSE_ERROR("[dicom]\nae_title =\n", "2: [dicom] ae_title: empty AE title");
    CHECK_PARSE_ERROR("[dicom]\naccepted_calling_aes = DX1, THIS_IS_TOO_LONG_AE\n",
                      "2: [dicom] accepted_calling_aes: AE title \"THIS_IS_TOO_LONG_AE\" is "
                      "longer than 16 characters");
    CHECK_PARSE_ERROR("[dicom]\nmax_associations = 0\n",
                      "2: [dicom] max_associations: 0 is out of range 1..4096");
    CHECK_PARSE_ERROR("[dicom]\nmax_pdu_length = 0\n",
                      "2: [dicom] max_pdu_length: 0 is out of range 1024..16777216");
    CHECK_PARSE_ERROR("[dicom]\nmax_pdu_length = 1023\n",
                      "2: [dicom] max_pdu_length: 1023 is out of range 1024..16777216");
    CHECK_PARSE_ERROR("[dicom]\nmax_pdu_length = 16777217\n",
                      "2: [dicom] max_pdu_length: 16777217 is out of range 1024..16777216");
    CHECK_PARSE_ERROR("[dicom]\nartim_timeout = 0\n",
                      "2: [dicom] artim_timeout: 0 is out of range 1..3600");
    CHECK_PARSE_ERROR("[dicom]\nidle_timeout = 1.5\n",
                      "2: [dicom] idle_timeout: \"1.5\" is not a whole number");
    CHECK_PARSE_ERROR("[dicom]\nduplicates = drop\n",
                      "2: [dicom] duplicates: \"drop\" is not replace, keep or reject");
    CHECK_PARSE_ERROR("[server]\ndata_dir =\n", "2: [server] data_dir: empty, expected a folder");
    CHECK_PARSE_ERROR("[server]\nbind = a b\n",
                      "2: [server] bind: \"a b\" is not a host name or address");
    CHECK_PARSE_ERROR("[remote ct]\nhost =\n",
                      "2: [remote ct] host: empty, expected a host name or address");
    CHECK_PARSE_ERROR("[remote ct]\nport = 0\n", "2: [remote ct] port: 0 is out of range 1..65535");

    /* An indented line is a line of its own, not a continuation of the one before. */
    CHECK_PARSE_ERROR("[dicom]\nae_title = X\n    port = 70000\n",
                      "3: [dicom] port: 70000 is out of range 1..65535");

    char list[2048] = "[dicom]\naccepted_calling_aes =";
    for (int i = 0; i <= CONFIG_MAX_CALLING_AES; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), " A%d", i);
    /* Longer than a line may be; the limit is hit first. */
    CHECK_PARSE_ERROR(list, "2: line longer than 199 characters");
}

TEST(first_error_wins)
{
    /* libinih reads on after a syntax error; the first line is the one reported. */
    CHECK_PARSE_ERROR("[dicom]\nport = 70000\nnonsense\n",
                      "2: [dicom] port: 70000 is out of range 1..65535");
    CHECK_PARSE_ERROR("[dicom]\nnonsense\nport = 70000\n",
                      "2: expected key = value, [section] or a comment");
}

TEST(remote_replaced_by_later_file)
{
    config cfg;
    config_defaults(&cfg);
    vp_error err;
    CHECK_OK(load_text(&cfg, "[remote ct]\nae_title=CT\nhost=a\nport=1\n", &err));
    CHECK_OK(load_text(&cfg, "[remote ct]\nae_title=CT2\nhost=b\nport=2\n", &err));
    CHECK_INT(cfg.remote_count, 1);
    CHECK_STR(cfg.remotes[0].ae_title, "CT2");
    CHECK_STR(cfg.remotes[0].host, "b");
    CHECK_INT(cfg.remotes[0].port, 2);
    /* ... and must be complete again. */
    CHECK_INT(load_text(&cfg, "[remote ct]\nhost=c\n", &err), VP_EPARSE);
    CHECK_STR(cfg.remotes[0].host, "b");
}

TEST(remote_lookup)
{
    config cfg;
    config_defaults(&cfg);
    vp_error err;
    CHECK_OK(load_text(&cfg,
                       "[remote ct]\nae_title = CT_ROOM\nhost = ct\nport = 104\n"
                       "[remote ws]\nae_title = WS\nhost = ws\nport = 4006\n",
                       &err));
    const config_remote *r = config_find_remote(&cfg, "WS");
    CHECK(r && !strcmp(r->name, "ws"));
    r = config_find_remote(&cfg, "  CT_ROOM      ");
    CHECK(r && !strcmp(r->name, "ct") && r->port == 104);
    CHECK(config_find_remote(&cfg, "ct_room") == NULL); /* case-sensitive */
    CHECK(config_find_remote(&cfg, "CT") == NULL);
    CHECK(config_find_remote(&cfg, "") == NULL);
    CHECK(config_find_remote(&cfg, "    ") == NULL);
    CHECK(config_find_remote(&cfg, "CT_ROOM_AND_MORE_THAN_16") == NULL);
    CHECK(config_find_remote(&cfg, NULL) == NULL);
    CHECK(config_find_remote(NULL, "WS") == NULL);
}

TEST(env_overrides)
{
    clear_env();
    config cfg, def;
    config_defaults(&cfg);
    config_defaults(&def);
    vp_error err;
    vp_error_clear(&err);
    CHECK_OK(config_apply_env(&cfg, &err)); /* nothing set: nothing changes */
    CHECK(!memcmp(&cfg, &def, sizeof cfg));

    setenv("VETPACS_DATA", "/var/lib/vetpacs", 1);
    setenv("VETPACS_BIND", "::1", 1);
    setenv("VETPACS_AET", " ENV_AET ", 1);
    setenv("VETPACS_DICOM_PORT", "2104", 1);
    setenv("VETPACS_HTTP_PORT", " 9000\n", 1);
    setenv("VETPACS_MAX_ASSOCIATIONS", "5", 1);
    setenv("VETPACS_DUPLICATES", "keep", 1);
    setenv("VETPACS_ACCEPTED_CALLING_AES", "A1,A2", 1);
    CHECK_OK(config_apply_env(&cfg, &err));
    CHECK_STR(cfg.data_dir, "/var/lib/vetpacs");
    CHECK_STR(cfg.bind, "::1");
    CHECK_STR(cfg.ae_title, "ENV_AET");
    CHECK_INT(cfg.dicom_port, 2104);
    CHECK_INT(cfg.http_port, 9000);
    CHECK_INT(cfg.max_associations, 5);
    CHECK_INT(cfg.duplicates, CONFIG_DUP_KEEP);
    CHECK_INT(cfg.calling_ae_count, 2);
    CHECK_STR(cfg.calling_aes[1], "A2");
    CHECK_OK(config_validate(&cfg, &err));

    /* Empty is a value: any address, any calling AE. */
    setenv("VETPACS_BIND", "", 1);
    setenv("VETPACS_ACCEPTED_CALLING_AES", "", 1);
    CHECK_OK(config_apply_env(&cfg, &err));
    CHECK_STR(cfg.bind, "");
    CHECK_INT(cfg.calling_ae_count, 0);
    clear_env();
}

TEST(env_errors)
{
    static const struct {
        const char *var, *value, *msg;
    } cases[] = {
        {"VETPACS_DICOM_PORT", "abc", "VETPACS_DICOM_PORT: \"abc\" is not a whole number"},
        {"VETPACS_DICOM_PORT", "", "VETPACS_DICOM_PORT: empty, expected a number from 1 to 65535"},
        {"VETPACS_HTTP_PORT", "65536", "VETPACS_HTTP_PORT: 65536 is out of range 1..65535"},
        {"VETPACS_MAX_ASSOCIATIONS", "0", "VETPACS_MAX_ASSOCIATIONS: 0 is out of range 1..4096"},
        {"VETPACS_DUPLICATES", "ignore",
         "VETPACS_DUPLICATES: \"ignore\" is not replace, keep or reject"},
        {"VETPACS_AET", "BAD\\AET",
         "VETPACS_AET: \"BAD\\AET\" is not a valid AE title (printable "
         "ASCII, no backslash)"},
        {"VETPACS_ACCEPTED_CALLING_AES", "OK,,WAY_TOO_LONG_AE_TITLE",
         "VETPACS_ACCEPTED_CALLING_AES: AE title \"WAY_TOO_LONG_AE_TITLE\" is longer than 16 "
         "characters"},
        {"VETPACS_DATA", "   ", "VETPACS_DATA: empty, expected a folder"},
        {"VETPACS_BIND", "a\tb", "VETPACS_BIND: \"a\tb\" is not a host name or address"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        clear_env();
        setenv("VETPACS_DATA", "/changed", 1); /* a good variable must not apply either */
        setenv(cases[i].var, cases[i].value, 1);
        config cfg, def;
        config_defaults(&cfg);
        config_defaults(&def);
        vp_error err;
        vp_error_clear(&err);
        CHECK_INT(config_apply_env(&cfg, &err), VP_EINVAL);
        CHECK_STR(err.msg, cases[i].msg);
        CHECK(!memcmp(&cfg, &def, sizeof cfg));
    }
    clear_env();
    char list[512] = "";
    for (int i = 0; i <= CONFIG_MAX_CALLING_AES; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "A%d ", i);
    setenv("VETPACS_ACCEPTED_CALLING_AES", list, 1);
    config c;
    config_defaults(&c);
    vp_error e;
    vp_error_clear(&e);
    CHECK_INT(config_apply_env(&c, &e), VP_EINVAL);
    CHECK_STR(e.msg, "VETPACS_ACCEPTED_CALLING_AES: more than 64 AE titles");
    clear_env();
    char big[5000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    setenv("VETPACS_DATA", big, 1);
    config cfg;
    config_defaults(&cfg);
    vp_error err;
    vp_error_clear(&err);
    CHECK_INT(config_apply_env(&cfg, &err), VP_EINVAL);
    CHECK_STR(err.msg, "VETPACS_DATA: longer than 4095 characters");
    clear_env();
}

TEST(precedence)
{
    /* defaults < file < environment */
    clear_env();
    config cfg;
    config_defaults(&cfg);
    vp_error err;
    CHECK_OK(
        load_text(&cfg, "[dicom]\nport = 2000\nae_title = FILE_AET\n[http]\nport = 2001\n", &err));
    setenv("VETPACS_DICOM_PORT", "3000", 1);
    vp_error_clear(&err);
    CHECK_OK(config_apply_env(&cfg, &err));
    CHECK_INT(cfg.dicom_port, 3000);     /* environment over file */
    CHECK_STR(cfg.ae_title, "FILE_AET"); /* file over default, no variable */
    CHECK_INT(cfg.http_port, 2001);
    CHECK_INT(cfg.max_associations, 32); /* default, set by neither */
    CHECK_OK(config_validate(&cfg, &err));
    clear_env();
}

TEST(validate)
{
    static const struct {
        int field;
        const char *msg;
    } cases[] = {
        {0, "[dicom] port: must not be 0"},
        {1, "[dicom] port and [http] port are both 8042"},
        {2, "[dicom] ae_title: AE title \" PACS\" has leading or trailing spaces"},
        {3, "[dicom] max_pdu_length: 0 is out of range 1024..16777216"},
        {4, "[dicom] idle_timeout: 0 is out of range 1..86400000 ms"},
        {5, "[remote b] ae_title: X is also the AE title of [remote a]"},
        {6, "[remote a] port: must not be 0"},
        {7, "[server] data_dir: empty, expected a folder"},
        {8, "[dicom] accepted_calling_aes: empty AE title"},
        {9, "[dicom] duplicates: 7 is not replace, keep or reject"},
        {10, "[http] port: must not be 0"},
        {11, "[remote a]: given twice"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        config cfg;
        config_defaults(&cfg);
        config_remote a = {.name = "a", .ae_title = "X", .host = "h", .port = 1};
        switch (cases[i].field) {
        case 0: cfg.dicom_port = 0; break;
        case 1: cfg.dicom_port = cfg.http_port; break;
        case 2: snprintf(cfg.ae_title, sizeof cfg.ae_title, " PACS"); break;
        case 3: cfg.max_pdu_length = 0; break;
        case 4: cfg.idle_timeout_ms = 0; break;
        case 5:
            cfg.remotes[0] = a;
            cfg.remotes[1] = a;
            snprintf(cfg.remotes[1].name, sizeof cfg.remotes[1].name, "b");
            cfg.remote_count = 2;
            break;
        case 6:
            cfg.remotes[0] = a;
            cfg.remotes[0].port = 0;
            cfg.remote_count = 1;
            break;
        case 7: cfg.data_dir[0] = '\0'; break;
        case 8: cfg.calling_ae_count = 1; break;
        case 9: cfg.duplicates = (config_duplicates)7; break;
        case 10: cfg.http_port = 0; break;
        case 11:
            cfg.remotes[0] = a;
            cfg.remotes[1] = a;
            snprintf(cfg.remotes[1].ae_title, sizeof cfg.remotes[1].ae_title, "Y");
            cfg.remote_count = 2;
            break;
        }
        vp_error err;
        vp_error_clear(&err);
        CHECK_INT(config_validate(&cfg, &err), VP_EINVAL);
        CHECK_STR(err.msg, cases[i].msg);
    }
}

TEST(out_of_memory)
{
    config cfg, def;
    config_defaults(&cfg);
    config_defaults(&def);
    CHECK(write_conf("[dicom]\nport = 5\n", 17));
    vp_error err;
    vp_error_clear(&err);
    vp_alloc_fail_after(1);
    vp_status st = config_load_file(&cfg, conf_path, &err);
    vp_alloc_fail_after(0);
    CHECK_INT(st, VP_ENOMEM);
    unlink(conf_path);

    clear_env();
    setenv("VETPACS_DICOM_PORT", "5", 1);
    vp_error_clear(&err);
    vp_alloc_fail_after(1);
    st = config_apply_env(&cfg, &err);
    vp_alloc_fail_after(0);
    CHECK_INT(st, VP_ENOMEM);
    CHECK(!memcmp(&cfg, &def, sizeof cfg));
    clear_env();
}

TEST(peers_from_options)
{
    config c;
    config_defaults(&c);
    vp_error err = {0};
    CHECK_OK(config_add_peer(&c, "CT_ROOM@ct.clinic.local:104", &err));
    CHECK_OK(config_add_peer(&c, "WS 2@[::1]:11113", &err));
    CHECK_INT(c.remote_count, 2);
    const config_remote *r = config_find_remote(&c, "CT_ROOM");
    CHECK(r != NULL);
    if (r) {
        CHECK_STR(r->host, "ct.clinic.local");
        CHECK_INT(r->port, 104);
        CHECK_STR(r->name, "CT_ROOM");
    }
    r = config_find_remote(&c, "WS 2");
    CHECK(r != NULL);
    if (r) {
        CHECK_STR(r->host, "::1");
        CHECK_STR(r->name, "WS-2");
    }
    /* the same AE again replaces it */
    CHECK_OK(config_add_peer(&c, "CT_ROOM@10.0.0.7:4242", &err));
    CHECK_INT(c.remote_count, 2);
    r = config_find_remote(&c, "CT_ROOM");
    CHECK(r && r->port == 4242 && strcmp(r->host, "10.0.0.7") == 0);
    CHECK_OK(config_validate(&c, &err));
    static const char *const bad[] = {"CT",
                                      "CT@host",
                                      "@host:104",
                                      "CT@:104",
                                      "CT@host:0",
                                      "CT@host:70000",
                                      "WAYTOOLONGAETITLE17@h:1",
                                      "A\\B@h:1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        vp_error_clear(&err);
        CHECK_INT(config_add_peer(&c, bad[i], &err), VP_EINVAL);
        CHECK(strstr(err.msg, "--peer") != NULL);
    }
    CHECK_INT(c.remote_count, 2);
}

int main(void)
{
    RUN(defaults);
    RUN(duplicates_names);
    RUN(full_file);
    RUN(example_file_is_defaults);
    RUN(partial_file_keeps_the_rest);
    RUN(values_accepted);
    RUN(missing_file);
    RUN(syntax_errors);
    RUN(nul_byte);
    RUN(section_errors);
    RUN(key_errors);
    RUN(value_errors);
    RUN(first_error_wins);
    RUN(remote_replaced_by_later_file);
    RUN(remote_lookup);
    RUN(env_overrides);
    RUN(env_errors);
    RUN(precedence);
    RUN(validate);
    RUN(out_of_memory);
    RUN(peers_from_options);
    DONE();
}
