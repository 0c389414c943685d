/* SPDX-License-Identifier: MIT */
/* Human-readable dump of a data set: one line per element, items indented. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "dcm/internal.h"

static vp_status indent(vp_buf *out, int depth)
{
    for (int i = 0; i < depth; i++)
        if (vp_buf_append(out, "  ", 2))
            return VP_ENOMEM;
    return VP_OK;
}

/* Appends at most max characters of a UTF-8 string, cutting on a character boundary. */
static vp_status put_cut(vp_buf *out, const uint8_t *s, size_t n, size_t max)
{
    size_t chars = 0, i = 0;
    for (; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            if (chars == max)
                break;
            chars++;
        }
    }
    for (size_t k = 0; k < i; k++) {
        uint8_t c = s[k];
        /* Control characters would break the one-line-per-element promise. */
        if (vp_buf_putc(out, c < 0x20 || c == 0x7F ? '.' : c))
            return VP_ENOMEM;
    }
    if (i < n && vp_buf_puts(out, "..."))
        return VP_ENOMEM;
    return VP_OK;
}

static vp_status put_value(vp_buf *out, const dcm_dataset *ds, const dcm_element *el, size_t max)
{
    enum dcm_vr vr = (enum dcm_vr)el->vr;
    if (el->flags & EL_SKIPPED)
        return vp_buf_puts(out, "(not loaded)");
    if (el->length == 0)
        return vp_buf_puts(out, "(no value)");
    const uint8_t *v = el->u.value;
    if (dcm_vr_is_string(vr)) {
        vp_buf tmp;
        vp_buf_init(&tmp, 0);
        vp_status st;
        if (dcm_vr_is_text(vr)) {
            const char *cs;
            size_t cslen;
            dcm_dataset_charset(ds, &cs, &cslen);
            st = dcm_text_to_utf8(cs, cslen, vr, v, el->length, &tmp);
        } else {
            st = vp_buf_append(&tmp, v, el->length);
        }
        size_t n = tmp.len;
        while (n && (tmp.data[n - 1] == ' ' || tmp.data[n - 1] == 0))
            n--;
        if (st == VP_OK && (st = vp_buf_putc(out, '[')) == VP_OK &&
            (st = put_cut(out, tmp.data ? tmp.data : (const uint8_t *)"", n, max)) == VP_OK)
            st = vp_buf_putc(out, ']');
        vp_buf_fini(&tmp);
        return st;
    }
    unsigned unit = dcm_vr_unit(vr);
    bool numeric = unit && vr != DCM_VR_OB && vr != DCM_VR_UN;
    if (!numeric || vr == DCM_VR_OW || vr == DCM_VR_OF || vr == DCM_VR_OD || vr == DCM_VR_OL ||
        vr == DCM_VR_OV) {
        /* Bulk binary: the first bytes in hex. */
        size_t n = el->length < 16 ? el->length : 16;
        for (size_t i = 0; i < n; i++)
            if (vp_buf_printf(out, i ? "\\%02x" : "%02x", v[i]))
                return VP_ENOMEM;
        if (n < el->length && vp_buf_puts(out, "..."))
            return VP_ENOMEM;
        return VP_OK;
    }
    unsigned vm = el->length / unit;
    unsigned shown = vm < 16 ? vm : 16;
    for (unsigned i = 0; i < shown; i++) {
        if (i && vp_buf_putc(out, '\\'))
            return VP_ENOMEM;
        vp_status st;
        if (vr == DCM_VR_FL || vr == DCM_VR_FD) {
            double d = 0;
            dcm_element_get_double(el, i, &d);
            st = vp_buf_printf(out, "%.17g", d);
        } else if (vr == DCM_VR_AT) {
            int64_t t = 0;
            dcm_element_get_int(el, i, &t);
            st =
                vp_buf_printf(out, "(%04X,%04X)", DCM_GROUP((uint32_t)t), DCM_ELEMENT((uint32_t)t));
        } else if (vr == DCM_VR_UV) {
            int64_t x = 0;
            dcm_element_get_int(el, i, &x);
            st = vp_buf_printf(out, "%" PRIu64, (uint64_t)x);
        } else {
            int64_t x = 0;
            dcm_element_get_int(el, i, &x);
            st = vp_buf_printf(out, "%" PRId64, x);
        }
        if (st)
            return st;
    }
    if (shown < vm && vp_buf_puts(out, "..."))
        return VP_ENOMEM;
    return VP_OK;
}

/* Keyword shown for an element: the dictionary's, else the generic names dcmdump uses for
 * group lengths and private creators (PS3.5 7.2, 7.8.1). */
static const char *shown_keyword(uint32_t tag)
{
    const char *kw = dcm_dict_keyword(tag);
    if (*kw)
        return kw;
    if (DCM_ELEMENT(tag) == 0x0000)
        return "GenericGroupLength";
    if ((DCM_GROUP(tag) & 1) && DCM_ELEMENT(tag) >= 0x0010 && DCM_ELEMENT(tag) <= 0x00FF)
        return "PrivateCreator";
    return "";
}

static vp_status dump_rec(const dcm_dataset *ds, size_t max, vp_buf *out, int depth)
{
    for (uint32_t i = 0; i < ds->n; i++) {
        const dcm_element *el = &ds->el[i];
        const char *kw = shown_keyword(el->tag);
        if (indent(out, depth))
            return VP_ENOMEM;
        if (el->flags & EL_SEQ) {
            if (vp_buf_printf(out, "(%04X,%04X) SQ %s %u items %s\n", DCM_GROUP(el->tag),
                              DCM_ELEMENT(el->tag), el->flags & EL_UNDEF_LEN ? "u/l" : "d/l",
                              el->u.items.n, kw))
                return VP_ENOMEM;
            for (uint32_t k = 0; k < el->u.items.n; k++) {
                if (indent(out, depth + 1) ||
                    vp_buf_printf(out, "(FFFE,E000) na Item #%u\n", k + 1) ||
                    dump_rec(el->u.items.v[k], max, out, depth + 2))
                    return VP_ENOMEM;
            }
            continue;
        }
        if (el->flags & EL_ENCAPS) {
            if (vp_buf_printf(out, "(%04X,%04X) %s u/l %u fragments %s\n", DCM_GROUP(el->tag),
                              DCM_ELEMENT(el->tag), dcm_vr_name((enum dcm_vr)el->vr), el->u.frags.n,
                              kw))
                return VP_ENOMEM;
            for (uint32_t k = 0; k < el->u.frags.n; k++)
                if (indent(out, depth + 1) ||
                    vp_buf_printf(out, "(FFFE,E000) pi %u %s #%u\n", el->u.frags.v[k].len,
                                  k == 0 ? "Basic Offset Table" : "Fragment", k))
                    return VP_ENOMEM;
            continue;
        }
        if (vp_buf_printf(out, "(%04X,%04X) %s %u ", DCM_GROUP(el->tag), DCM_ELEMENT(el->tag),
                          dcm_vr_name((enum dcm_vr)el->vr), el->length) ||
            put_value(out, ds, el, max) || vp_buf_printf(out, " %s\n", kw))
            return VP_ENOMEM;
    }
    return VP_OK;
}

vp_status dcm_dump(const dcm_dataset *ds, const dcm_dump_opts *opts, vp_buf *out)
{
    size_t max = opts && opts->max_value_chars ? opts->max_value_chars : 64;
    return dump_rec(ds, max, out, 0);
}
