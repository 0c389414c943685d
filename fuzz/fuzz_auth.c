/* SPDX-License-Identifier: MIT */
/* Fuzz target: the credential header values of src/app/auth.c, the Authorization value
 * "Bearer TOKEN" (RFC 7235 2.1, RFC 6750 2.1) and the Cookie value (RFC 6265 4.2.1). The
 * whole input is each value in turn. What a parser finds must lie inside the input and have
 * the shape its grammar allows: a b64token with trailing "=" only, a cookie value without ';'. */
#include <stdlib.h>
#include <string.h>

#include "app/auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void inside(const char *p, size_t n, const char *buf, size_t size)
{
    if (p < buf || n > size || p + n > buf + size)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* an exact-size copy: a read past the end is a sanitizer report */
    char *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    if (size)
        memcpy(buf, data, size);
    const char *t;
    size_t n;
    if (auth_bearer_parse(buf, size, &t, &n) == VP_OK) {
        inside(t, n, buf, size);
        if (!n || t[0] == '=')
            abort();
        for (size_t i = 0; i < n; i++)
            if (t[i] == ' ' || t[i] == '\t' || t[i] == '"' || t[i] == ',' || t[i] == 0)
                abort();
    }
    static const char *const names[] = {"vetpacs_session", "a", ""};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        if (auth_cookie_find(buf, size, names[k], &t, &n) == VP_OK) {
            inside(t, n, buf, size);
            if (memchr(t, ';', n))
                abort();
        }
    }
    free(buf);
    return 0;
}
