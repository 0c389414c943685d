/* SPDX-License-Identifier: MIT */
/*
 * UIDs: validity (PS3.5 9.1) and generation in the UUID-derived form "2.25.<integer>"
 * (PS3.5 B.2, ITU-T X.667), so no organisational root has to be registered.
 */
#include <fcntl.h>
#include <string.h>
#include <sys/random.h>

#include "dcm/internal.h"

bool dcm_uid_valid(const char *s, size_t len)
{
    if (len == 0 || len > DCM_UID_MAX)
        return false;
    size_t comp = 0; /* length of the current component */
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '.') {
            if (comp == 0)
                return false;
            comp = 0;
        } else if (c >= '0' && c <= '9') {
            /* A component of more than one digit may not start with 0 (PS3.5 9.1). */
            if (comp == 1 && s[i - 1] == '0')
                return false;
            comp++;
        } else {
            return false;
        }
    }
    return comp > 0;
}

vp_status dcm_uid_generate(char out[DCM_UID_MAX + 1])
{
    uint8_t b[16];
    size_t got = 0;
    while (got < sizeof b) {
        ssize_t k = getrandom(b + got, sizeof b - got, 0);
        if (k <= 0)
            return VP_EIO;
        got += (size_t)k;
    }
    /* RFC 4122 version 4 (random) and variant bits. */
    b[6] = (uint8_t)((b[6] & 0x0F) | 0x40);
    b[8] = (uint8_t)((b[8] & 0x3F) | 0x80);
    /* Convert the 128-bit big-endian integer to decimal by repeated division by 10. */
    char digits[40];
    int nd = 0;
    uint8_t n[16];
    memcpy(n, b, 16);
    for (;;) {
        bool zero = true;
        unsigned rem = 0;
        for (int i = 0; i < 16; i++) {
            unsigned cur = (rem << 8) | n[i];
            n[i] = (uint8_t)(cur / 10);
            rem = cur % 10;
            zero = zero && n[i] == 0;
        }
        digits[nd++] = (char)('0' + rem);
        if (zero)
            break;
    }
    memcpy(out, "2.25.", 5);
    for (int i = 0; i < nd; i++)
        out[5 + i] = digits[nd - 1 - i];
    out[5 + nd] = 0;
    return VP_OK;
}
