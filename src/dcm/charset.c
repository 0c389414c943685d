/* SPDX-License-Identifier: MIT */
/*
 * Specific Character Set (0008,0005) to UTF-8 (PS3.5 6.1, PS3.3 C.12.1.1.2).
 * First version: single-byte sets, ISO_IR 192, GB18030 and GBK through iconv.
 */
#include <iconv.h>
#include <string.h>

#include "dcm/internal.h"

static const struct {
    const char *term;  /* defined term in (0008,0005) */
    const char *iconv; /* iconv name */
} sets[] = {
    {"ISO_IR 6", "ASCII"},       {"ISO_IR 100", "ISO-8859-1"}, {"ISO_IR 101", "ISO-8859-2"},
    {"ISO_IR 109", "ISO-8859-3"}, {"ISO_IR 110", "ISO-8859-4"}, {"ISO_IR 144", "ISO-8859-5"},
    {"ISO_IR 127", "ISO-8859-6"}, {"ISO_IR 126", "ISO-8859-7"}, {"ISO_IR 138", "ISO-8859-8"},
    {"ISO_IR 148", "ISO-8859-9"}, {"ISO_IR 203", "ISO-8859-15"}, {"ISO_IR 166", "TIS-620"},
    {"ISO_IR 13", "SHIFT_JIS"},  {"ISO_IR 192", "UTF-8"},      {"GB18030", "GB18030"},
    {"GBK", "GBK"},
};

static vp_status put_replacement(vp_buf *out)
{
    return vp_buf_append(out, "\xEF\xBF\xBD", 3);
}

static vp_status convert(const char *from, const uint8_t *in, size_t n, vp_buf *out)
{
    iconv_t cd = iconv_open("UTF-8", from);
    if (cd == (iconv_t)-1)
        return vp_buf_append(out, in, n);
    char *ip = (char *)(uintptr_t)in;
    size_t il = n;
    vp_status st = VP_OK;
    while (il > 0 && st == VP_OK) {
        if ((st = vp_buf_reserve(out, il * 4 + 16)))
            break;
        char *op = (char *)out->data + out->len;
        size_t ol = out->cap - out->len - 1;
        size_t r = iconv(cd, &ip, &il, &op, &ol);
        out->len = (size_t)((uint8_t *)op - out->data);
        out->data[out->len] = 0;
        if (r == (size_t)-1 && il > 0) {
            /* Invalid or incomplete sequence: one replacement character, skip one byte. */
            st = put_replacement(out);
            ip++;
            il--;
        }
    }
    iconv_close(cd);
    return st;
}

vp_status dcm_text_to_utf8(const char *charset, size_t charset_len, enum dcm_vr vr,
                           const uint8_t *in, size_t n, vp_buf *out)
{
    (void)vr;
    /* Only the first value is used here; the code extensions come with ISO 2022 support. */
    size_t k = 0;
    while (charset && k < charset_len && charset[k] != '\\')
        k++;
    while (k && (charset[k - 1] == ' ' || charset[k - 1] == 0))
        k--;
    size_t s = 0;
    while (s < k && charset[s] == ' ')
        s++;
    if (!charset || k == s)
        return convert("ISO-8859-1", in, n, out); /* lenient default repertoire */
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++)
        if (strlen(sets[i].term) == k - s && memcmp(sets[i].term, charset + s, k - s) == 0)
            return convert(sets[i].iconv, in, n, out);
    return convert("ISO-8859-1", in, n, out);
}
