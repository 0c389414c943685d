/* SPDX-License-Identifier: MIT */
/* Private to src/dcm: the data set representation shared by the model, reader and writers. */
#ifndef VP_DCM_INTERNAL_H
#define VP_DCM_INTERNAL_H

#include "dcm/dcm.h"

/* Element flags. */
#define EL_UNDEF_LEN 0x01 /* encoded with undefined length */
#define EL_ENCAPS 0x02    /* encapsulated pixel data: frags holds fragments */
#define EL_SEQ 0x04       /* sequence: items holds items (also UN read as a sequence) */
#define EL_SKIPPED 0x08   /* value not loaded; length and offset are valid */
#define EL_DICT_VR 0x10   /* VR taken from the dictionary (Implicit VR) */

struct frag {
    const uint8_t *data; /* NULL when not loaded */
    uint32_t len;        /* fragment length */
    uint64_t offset;     /* source offset of the data */
};

struct dcm_element {
    uint32_t tag;       /* (group << 16) | element */
    uint8_t vr;         /* enum dcm_vr, always a real VR */
    uint8_t flags;      /* EL_* */
    uint32_t length;    /* value length in bytes; 0 for sequences and encapsulated */
    uint64_t offset;    /* source offset of the value (0 when built in memory) */
    dcm_dataset *owner; /* data set holding the element (parent of its items) */
    union {
        const uint8_t *value; /* length bytes, little endian for binary VRs */
        struct {
            dcm_dataset **v; /* items */
            uint32_t n, cap;
        } items;
        struct {
            struct frag *v; /* fragments; [0] is the Basic Offset Table */
            uint32_t n, cap;
        } frags;
    } u;
};

struct root; /* shared by every data set of one tree */

struct dcm_dataset {
    dcm_element *el;     /* elements ascending by tag */
    uint32_t n, cap;     /* used and allocated entries of el */
    dcm_dataset *parent; /* enclosing data set for items, NULL for a root */
    struct root *root;   /* owner of all memory of the tree */
    bool undef_len;      /* item encoded with undefined length */
    bool unordered;      /* an element was inserted before the last one (input out of order) */
    uint64_t offset;     /* source offset of the item's first element */
};

struct root {
    vp_arena *arena;        /* every allocation of the tree */
    uint8_t *source;        /* owned source buffer values may point into (vp_free), or NULL */
    uint32_t element_count; /* elements in the tree, for the max_elements limit */
};

/* Allocation in the tree's arena. */
void *dcm__alloc(dcm_dataset *ds, size_t n);
/* New empty item belonging to parent's tree. */
dcm_dataset *dcm__item_new(dcm_dataset *parent);
/* Appends an element at the end when tag is above the last one, else inserts in order
 * (replacing an equal tag). Returns the slot (zeroed except tag and vr) or NULL on ENOMEM. */
dcm_element *dcm__slot(dcm_dataset *ds, uint32_t tag, enum dcm_vr vr);
/* Appends a fragment referring to data (not copied: it must live as long as the tree). */
vp_status dcm__fragment_append(dcm_element *el, const uint8_t *data, uint32_t len, uint64_t offset);
/* Gives the root ownership of a vp_malloc'd source buffer. */
void dcm__root_adopt_source(dcm_dataset *root, uint8_t *buf);

/* Resolves a dictionary-only VR choice for Implicit VR data (PS3.5 A.1 note; 8.1.2). */
enum dcm_vr dcm__resolve_vr(const dcm_dataset *ds, uint32_t tag, enum dcm_vr vr);

/* Swaps value bytes in place from big endian to little endian (or back) for vr. */
void dcm__swap(enum dcm_vr vr, uint8_t *p, size_t len);

/* Length of the well-formed UTF-8 sequence at p (1 for ASCII; Unicode Table 3-7: no overlong
 * forms, surrogates or code points above U+10FFFF), or 0 when ill-formed, with *subpart (if
 * not NULL) set to the length of its maximal subpart, at least 1. */
size_t dcm__utf8_len(const uint8_t *p, size_t n, size_t *subpart);

/* Defaults applied to a dcm_read_opts copy. */
void dcm__read_opts_defaults(dcm_read_opts *o, const dcm_read_opts *in);

#endif /* VP_DCM_INTERNAL_H */
