/* SPDX-License-Identifier: MIT */
/* Status names and the caller-owned error buffer (first error wins, never allocates). */
#include <stdio.h>
#include <string.h>

#include "base/base.h"

const char *vp_status_name(vp_status st)
{
    switch (st) {
    case VP_OK: return "VP_OK";
    case VP_ENOMEM: return "VP_ENOMEM";
    case VP_EIO: return "VP_EIO";
    case VP_EPARSE: return "VP_EPARSE";
    case VP_EINVAL: return "VP_EINVAL";
    case VP_ENOTFOUND: return "VP_ENOTFOUND";
    case VP_ECONFLICT: return "VP_ECONFLICT";
    case VP_ELIMIT: return "VP_ELIMIT";
    case VP_EUNSUPPORTED: return "VP_EUNSUPPORTED";
    case VP_EAGAIN: return "VP_EAGAIN";
    case VP_ETRUNC: return "VP_ETRUNC";
    case VP_ETIMEOUT: return "VP_ETIMEOUT";
    case VP_ECLOSED: return "VP_ECLOSED";
    }
    return "VP_E?";
}

void vp_error_clear(vp_error *err)
{
    if (err) {
        err->status = VP_OK;
        err->msg[0] = '\0';
    }
}

vp_status vp_error_vset(vp_error *err, vp_status st, const char *fmt, va_list ap)
{
    if (err && err->status == VP_OK && st != VP_OK) {
        err->status = st;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    }
    return st;
}

vp_status vp_error_set(vp_error *err, vp_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vp_error_vset(err, st, fmt, ap);
    va_end(ap);
    return st;
}
