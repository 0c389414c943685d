/* SPDX-License-Identifier: MIT */
/* Fuzz target: Specific Character Set decoding. Input: one byte choosing the VR, one byte n,
 * then n bytes of (0008,0005) value and the text. The output must be valid UTF-8. */
#include <stdlib.h>

#include "dcm/dcm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int valid_utf8(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (len == 0 || i + len > n)
            return 0;
        for (size_t k = 1; k < len; k++)
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
        i += len;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const enum dcm_vr vrs[] = {DCM_VR_PN, DCM_VR_LO, DCM_VR_SH, DCM_VR_LT,
                                      DCM_VR_ST, DCM_VR_UT, DCM_VR_UC};
    if (size < 2)
        return 0;
    enum dcm_vr vr = vrs[data[0] % (sizeof vrs / sizeof vrs[0])];
    size_t n = data[1];
    if (n > size - 2)
        n = size - 2;
    const char *charset = (const char *)data + 2;
    const uint8_t *text = data + 2 + n;
    size_t tlen = size - 2 - n;
    vp_buf out;
    vp_buf_init(&out, 0);
    if (dcm_text_to_utf8(charset, n, vr, text, tlen, &out) == VP_OK &&
        !valid_utf8(out.data ? out.data : (const uint8_t *)"", out.len))
        abort();
    vp_buf_fini(&out);
    return 0;
}
