/* SPDX-License-Identifier: MIT */
/* Value representation properties (PS3.5 6.2, Table 6.2-1; 7.1.2 for the long-length VRs). */
#include "dcm/internal.h"

#define S 1 /* string */
#define T 2 /* text affected by Specific Character Set */
#define L 4 /* explicit VR encoding with 4-byte length */

static const struct {
    char name[3];
    uint8_t flags;
    uint8_t unit; /* bytes per binary value */
    uint8_t swap; /* big endian swap unit */
    uint8_t pad;
} vrs[DCM_VR_COUNT_REAL] = {
    [DCM_VR_NONE] = {"--", 0, 0, 1, 0},     [DCM_VR_AE] = {"AE", S, 0, 1, ' '},
    [DCM_VR_AS] = {"AS", S, 0, 1, ' '},     [DCM_VR_AT] = {"AT", 0, 4, 2, 0},
    [DCM_VR_CS] = {"CS", S, 0, 1, ' '},     [DCM_VR_DA] = {"DA", S, 0, 1, ' '},
    [DCM_VR_DS] = {"DS", S, 0, 1, ' '},     [DCM_VR_DT] = {"DT", S, 0, 1, ' '},
    [DCM_VR_FD] = {"FD", 0, 8, 8, 0},       [DCM_VR_FL] = {"FL", 0, 4, 4, 0},
    [DCM_VR_IS] = {"IS", S, 0, 1, ' '},     [DCM_VR_LO] = {"LO", S | T, 0, 1, ' '},
    [DCM_VR_LT] = {"LT", S | T, 0, 1, ' '}, [DCM_VR_OB] = {"OB", L, 0, 1, 0},
    [DCM_VR_OD] = {"OD", L, 8, 8, 0},       [DCM_VR_OF] = {"OF", L, 4, 4, 0},
    [DCM_VR_OL] = {"OL", L, 4, 4, 0},       [DCM_VR_OV] = {"OV", L, 8, 8, 0},
    [DCM_VR_OW] = {"OW", L, 2, 2, 0},       [DCM_VR_PN] = {"PN", S | T, 0, 1, ' '},
    [DCM_VR_SH] = {"SH", S | T, 0, 1, ' '}, [DCM_VR_SL] = {"SL", 0, 4, 4, 0},
    [DCM_VR_SQ] = {"SQ", L, 0, 1, 0},       [DCM_VR_SS] = {"SS", 0, 2, 2, 0},
    [DCM_VR_ST] = {"ST", S | T, 0, 1, ' '}, [DCM_VR_SV] = {"SV", L, 8, 8, 0},
    [DCM_VR_TM] = {"TM", S, 0, 1, ' '},     [DCM_VR_UC] = {"UC", S | T | L, 0, 1, ' '},
    [DCM_VR_UI] = {"UI", S, 0, 1, 0},       [DCM_VR_UL] = {"UL", 0, 4, 4, 0},
    [DCM_VR_UN] = {"UN", L, 0, 1, 0},       [DCM_VR_UR] = {"UR", S | L, 0, 1, ' '},
    [DCM_VR_US] = {"US", 0, 2, 2, 0},       [DCM_VR_UT] = {"UT", S | T | L, 0, 1, ' '},
    [DCM_VR_UV] = {"UV", L, 8, 8, 0},
};

const char *dcm_vr_name(enum dcm_vr vr)
{
    switch ((int)vr) {
    case DCM_VR_OB_OW: return "ox";
    case DCM_VR_US_SS: return "xs";
    case DCM_VR_US_SS_OW: return "lt";
    case DCM_VR_US_OW: return "up";
    default: break;
    }
    if ((unsigned)vr >= DCM_VR_COUNT_REAL)
        return "??";
    return vrs[vr].name;
}

enum dcm_vr dcm_vr_from_chars(char a, char b)
{
    /* A tiny perfect-ish lookup: scan is fine for 34 entries and keeps the table the only
     * source of truth; reading is dominated by value copies, not this. */
    for (int i = 1; i < DCM_VR_COUNT_REAL; i++)
        if (vrs[i].name[0] == a && vrs[i].name[1] == b)
            return (enum dcm_vr)i;
    return DCM_VR_NONE;
}

bool dcm_vr_is_long(enum dcm_vr vr)
{
    return (unsigned)vr < DCM_VR_COUNT_REAL && (vrs[vr].flags & L);
}

bool dcm_vr_is_string(enum dcm_vr vr)
{
    return (unsigned)vr < DCM_VR_COUNT_REAL && (vrs[vr].flags & S);
}

bool dcm_vr_is_text(enum dcm_vr vr)
{
    return (unsigned)vr < DCM_VR_COUNT_REAL && (vrs[vr].flags & T);
}

unsigned dcm_vr_unit(enum dcm_vr vr)
{
    return (unsigned)vr < DCM_VR_COUNT_REAL ? vrs[vr].unit : 0;
}

unsigned dcm_vr_swap_unit(enum dcm_vr vr)
{
    return (unsigned)vr < DCM_VR_COUNT_REAL ? vrs[vr].swap : 1;
}

uint8_t dcm_vr_pad(enum dcm_vr vr)
{
    return (unsigned)vr < DCM_VR_COUNT_REAL ? vrs[vr].pad : 0;
}

void dcm__swap(enum dcm_vr vr, uint8_t *p, size_t len)
{
    unsigned u = dcm_vr_swap_unit(vr);
    if (u <= 1)
        return;
    size_t n = len / u;
    for (size_t i = 0; i < n; i++, p += u) {
        for (unsigned a = 0, b = u - 1; a < b; a++, b--) {
            uint8_t t = p[a];
            p[a] = p[b];
            p[b] = t;
        }
    }
}
