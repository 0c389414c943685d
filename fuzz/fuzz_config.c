/* SPDX-License-Identifier: MIT */
/* Fuzz target: the server configuration file (INI through libinih, then our value parsing and
 * validation, src/app/config.c). The input is the file's content; it is read through a
 * memory file so nothing touches the disk. Any input must give VP_OK or an error with a
 * message, never a crash, and a failed load must leave the configuration unchanged. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "app/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("vetpacs-fuzz-config", MFD_CLOEXEC);
    if (fd < 0)
        return 0;
    if (write(fd, data, size) != (ssize_t)size) {
        close(fd);
        return 0;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    static config cfg, before;
    config_defaults(&cfg);
    before = cfg;
    vp_error err = {0};
    vp_status st = config_load_file(&cfg, path, &err);
    if (st != VP_OK && (err.msg[0] == 0 || memcmp(&cfg, &before, sizeof cfg) != 0))
        abort(); /* an error says why and changes nothing */
    if (st == VP_OK) {
        vp_error verr = {0};
        if (config_validate(&cfg, &verr) != VP_OK && verr.msg[0] == 0)
            abort();
    }
    close(fd);
    return 0;
}
