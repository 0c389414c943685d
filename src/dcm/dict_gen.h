/* SPDX-License-Identifier: MIT */
/* Tables generated at build time by tools/gen_dict.py (dict_gen.c); private to src/dcm. */
#ifndef VP_DCM_DICT_GEN_H
#define VP_DCM_DICT_GEN_H

#include "dcm/dcm.h"

typedef struct dcm__kw_ref {
    const char *keyword; /* sorted by strcmp */
    uint8_t table;       /* 0 = dcm__dict, 1 = dcm__dict_masked */
    uint16_t index;      /* entry in that table */
} dcm__kw_ref;

extern const dcm_dict_entry dcm__dict[]; /* ascending by tag */
extern const size_t dcm__dict_count;
extern const dcm_dict_entry dcm__dict_masked[]; /* repeating groups, most specific first */
extern const size_t dcm__dict_masked_count;
extern const dcm__kw_ref dcm__dict_keywords[];
extern const size_t dcm__dict_keywords_count;
extern const dcm_uid_entry dcm__uids[]; /* ascending by strcmp of uid */
extern const size_t dcm__uids_count;

#endif
