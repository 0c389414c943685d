/* SPDX-License-Identifier: MIT */
/*
 * dcm: the DICOM codec. Dictionary and UID tables generated from the standard's data (PS3.6),
 * value representations (PS3.5 6.2), the data set model with sequences and encapsulated pixel
 * data (PS3.5 7), Part 10 files (PS3.10 7), character sets to UTF-8 (PS3.5 6.1, PS3.3 C.12.1.1.2),
 * DICOM JSON (PS3.18 Annex F) and UID generation (PS3.5 9, B.2).
 *
 * The codec does no logging. It reads files only through dcm_file_read*, and writes only through
 * a caller-provided sink, so it is testable and fuzzable without I/O.
 */
#ifndef VP_DCM_H
#define VP_DCM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

/* ------------------------------------------------------------------------------------------ */
/* Tags and value representations                                                             */

#define DCM_TAG(g, e) ((uint32_t)(((uint32_t)(g) << 16) | (uint32_t)(e)))
#define DCM_GROUP(t) ((uint16_t)((t) >> 16))
#define DCM_ELEMENT(t) ((uint16_t)((t)&0xFFFF))

#define DCM_TAG_ITEM DCM_TAG(0xFFFE, 0xE000)
#define DCM_TAG_ITEM_DELIM DCM_TAG(0xFFFE, 0xE00D)
#define DCM_TAG_SEQ_DELIM DCM_TAG(0xFFFE, 0xE0DD)
#define DCM_TAG_TRANSFER_SYNTAX_UID DCM_TAG(0x0002, 0x0010)
#define DCM_TAG_SPECIFIC_CHARACTER_SET DCM_TAG(0x0008, 0x0005)
#define DCM_TAG_SOP_CLASS_UID DCM_TAG(0x0008, 0x0016)
#define DCM_TAG_SOP_INSTANCE_UID DCM_TAG(0x0008, 0x0018)
#define DCM_TAG_PIXEL_DATA DCM_TAG(0x7FE0, 0x0010)
#define DCM_TAG_DIRECTORY_RECORD_SEQUENCE DCM_TAG(0x0004, 0x1220)
#define DCM_TAG_EXTENDED_OFFSET_TABLE DCM_TAG(0x7FE0, 0x0001)
#define DCM_TAG_EXTENDED_OFFSET_TABLE_LENGTHS DCM_TAG(0x7FE0, 0x0002)

#define DCM_UNDEFINED_LENGTH 0xFFFFFFFFu

/* Value representations, PS3.5 Table 6.2-1. The last four only occur in the dictionary, where
 * the standard lists a choice that the data set resolves (PS3.5 A.1 c, PS3.6 note). */
enum dcm_vr {
    DCM_VR_NONE = 0, /* item and delimiter tags */
    DCM_VR_AE,
    DCM_VR_AS,
    DCM_VR_AT,
    DCM_VR_CS,
    DCM_VR_DA,
    DCM_VR_DS,
    DCM_VR_DT,
    DCM_VR_FD,
    DCM_VR_FL,
    DCM_VR_IS,
    DCM_VR_LO,
    DCM_VR_LT,
    DCM_VR_OB,
    DCM_VR_OD,
    DCM_VR_OF,
    DCM_VR_OL,
    DCM_VR_OV,
    DCM_VR_OW,
    DCM_VR_PN,
    DCM_VR_SH,
    DCM_VR_SL,
    DCM_VR_SQ,
    DCM_VR_SS,
    DCM_VR_ST,
    DCM_VR_SV,
    DCM_VR_TM,
    DCM_VR_UC,
    DCM_VR_UI,
    DCM_VR_UL,
    DCM_VR_UN,
    DCM_VR_UR,
    DCM_VR_US,
    DCM_VR_UT,
    DCM_VR_UV,
    DCM_VR_COUNT_REAL,                /* number of real VRs + 1 */
    DCM_VR_OB_OW = DCM_VR_COUNT_REAL, /* "OB or OW" */
    DCM_VR_US_SS,                     /* "US or SS" */
    DCM_VR_US_SS_OW,                  /* "US or SS or OW" */
    DCM_VR_US_OW,                     /* "US or OW" */
    DCM_VR_COUNT
};

/* "PN" for DCM_VR_PN; "??" for an unknown value. */
const char *dcm_vr_name(enum dcm_vr vr);
/* Parses two upper-case letters; DCM_VR_NONE when they name no VR. */
enum dcm_vr dcm_vr_from_chars(char a, char b);
/* Explicit VR encodings with a 2-byte reserved field and 4-byte length (PS3.5 7.1.2). */
bool dcm_vr_is_long(enum dcm_vr vr);
/* VRs whose value is a character string (including PN, dates, UIDs, numbers as text). */
bool dcm_vr_is_string(enum dcm_vr vr);
/* String VRs affected by Specific Character Set (PS3.5 6.1.2.3): SH LO ST LT UT PN UC. */
bool dcm_vr_is_text(enum dcm_vr vr);
/* Size of one binary value (2 for US, 8 for FD...), 0 for strings, SQ and UN/OB. */
unsigned dcm_vr_unit(enum dcm_vr vr);
/* Byte swapping unit for big endian (OW swaps by 2, AT by 2...), 1 when bytes are kept. */
unsigned dcm_vr_swap_unit(enum dcm_vr vr);
/* Padding byte for odd-length values: space for strings, NUL for UI and binary. */
uint8_t dcm_vr_pad(enum dcm_vr vr);

/* ------------------------------------------------------------------------------------------ */
/* Dictionary (generated from data/dicom/data_elements.json, PS3.6 and PS3.7)                 */

typedef struct dcm_dict_entry {
    uint32_t tag;        /* for repeating groups the tag with masked bits zero */
    uint32_t mask;       /* bits that must match; 0xFFFFFFFF for ordinary tags */
    uint8_t vr;          /* enum dcm_vr, possibly one of the dictionary-only choices */
    bool retired;        /* retired in the standard */
    const char *vm;      /* "1", "1-n", "2-2n"... */
    const char *keyword; /* "PatientName"; "" for the few unnamed retired entries */
    const char *name;    /* "Patient's Name" */
} dcm_dict_entry;

/* Entry for tag, or NULL. Handles repeating groups, group length (gggg,0000) and private
 * creator elements (gggg,0010-00FF) of odd groups (PS3.5 7.8.1). */
const dcm_dict_entry *dcm_dict_lookup(uint32_t tag);
/* Entry for a keyword such as "PatientName", or NULL. */
const dcm_dict_entry *dcm_dict_by_keyword(const char *keyword);
/* VR to use when the encoding does not say (Implicit VR): dictionary VR, UN if unknown. */
enum dcm_vr dcm_dict_vr(uint32_t tag);
/* Keyword of tag or "" when unknown. */
const char *dcm_dict_keyword(uint32_t tag);

/* UID registry (PS3.6 Table A-1). */
enum dcm_uid_type {
    DCM_UID_OTHER = 0,
    DCM_UID_TRANSFER_SYNTAX,
    DCM_UID_SOP_CLASS,
    DCM_UID_META_SOP_CLASS,
    DCM_UID_WELL_KNOWN_INSTANCE,
    DCM_UID_CODING_SCHEME,
    DCM_UID_FRAME_OF_REFERENCE,
    DCM_UID_SERVICE_CLASS,
    DCM_UID_APPLICATION_CONTEXT,
};
typedef struct dcm_uid_entry {
    const char *uid;
    const char *name;
    const char *keyword;
    uint8_t type; /* enum dcm_uid_type */
    bool retired;
} dcm_uid_entry;

const dcm_uid_entry *dcm_uid_lookup(const char *uid);
/* Number of registry entries and the ith one (for listing, e.g. all storage SOP classes). */
size_t dcm_uid_count(void);
const dcm_uid_entry *dcm_uid_at(size_t i);

/* Transfer syntaxes the codec knows how to encode data sets in. */
#define DCM_TS_IMPLICIT_LE "1.2.840.10008.1.2"
#define DCM_TS_EXPLICIT_LE "1.2.840.10008.1.2.1"
#define DCM_TS_DEFLATED_LE "1.2.840.10008.1.2.1.99"
#define DCM_TS_EXPLICIT_BE "1.2.840.10008.1.2.2"

typedef struct dcm_ts_info {
    bool explicit_vr;  /* else Implicit VR */
    bool big_endian;   /* Explicit VR Big Endian (retired) */
    bool deflated;     /* data set is deflated after the meta group */
    bool encapsulated; /* pixel data is encapsulated (compressed or encapsulated uncompressed) */
    bool known;        /* the UID is a transfer syntax in the registry */
} dcm_ts_info;

/* Properties of a transfer syntax UID. Unknown UIDs are treated as an encapsulated Explicit VR
 * LE syntax (PS3.5 10: every transfer syntax other than the four native ones encapsulates). */
dcm_ts_info dcm_ts_lookup(const char *uid);

/* ------------------------------------------------------------------------------------------ */
/* Data set model                                                                             */

typedef struct dcm_dataset dcm_dataset;
typedef struct dcm_element dcm_element;

/*
 * A data set (or a sequence item) is an ordered list of elements, ascending by tag. A root data
 * set owns all memory of its tree (elements, items, values): freeing the root frees everything.
 * Items belong to their root and are never freed alone.
 *
 * Binary values are held in little endian whatever the encoding read. String values are held
 * as encoded (in the data set's Specific Character Set); dcm_text_to_utf8 converts them.
 *
 * Element pointers returned by lookups stay valid until that data set is next modified.
 */
dcm_dataset *dcm_dataset_new(void);
void dcm_dataset_free(dcm_dataset *ds);
/* Deep copy into a new root. */
dcm_dataset *dcm_dataset_dup(const dcm_dataset *ds);

size_t dcm_dataset_count(const dcm_dataset *ds);
dcm_element *dcm_dataset_at(const dcm_dataset *ds, size_t i);
dcm_element *dcm_dataset_find(const dcm_dataset *ds, uint32_t tag);
/* Enclosing data set of a sequence item, NULL for a root. */
dcm_dataset *dcm_dataset_parent(const dcm_dataset *ds);
/* Whether an item was encoded with undefined length (kept when writing). */
bool dcm_dataset_undefined_length(const dcm_dataset *ds);
void dcm_dataset_set_undefined_length(dcm_dataset *ds, bool undefined);

/* Sets (adds or replaces) an element with a copy of value. Binary values are little endian.
 * Returns the element through out when out is not NULL. */
vp_status dcm_dataset_set(dcm_dataset *ds, uint32_t tag, enum dcm_vr vr, const void *value,
                          size_t len, dcm_element **out);
/* Sets a string element from a C string (already in the data set's character set). */
vp_status dcm_dataset_set_str(dcm_dataset *ds, uint32_t tag, enum dcm_vr vr, const char *s);
/* Sets a 16 / 32-bit unsigned element (US / UL). */
vp_status dcm_dataset_set_u16(dcm_dataset *ds, uint32_t tag, uint16_t v);
vp_status dcm_dataset_set_u32(dcm_dataset *ds, uint32_t tag, uint32_t v);
/* Adds or replaces an empty sequence; items are added with dcm_element_add_item. */
vp_status dcm_dataset_set_sequence(dcm_dataset *ds, uint32_t tag, dcm_element **out);
/* Adds or replaces an encapsulated pixel data element; fragments added with
 * dcm_element_add_fragment (the first is the Basic Offset Table, possibly empty). */
vp_status dcm_dataset_set_encapsulated(dcm_dataset *ds, uint32_t tag, enum dcm_vr vr,
                                       dcm_element **out);
/* Removes an element; VP_ENOTFOUND when absent. */
vp_status dcm_dataset_remove(dcm_dataset *ds, uint32_t tag);

/* The idx-th value (0-based) of a string element, without leading/trailing spaces (and
 * trailing NULs for UI), borrowed from the element. VP_ENOTFOUND when absent. */
vp_status dcm_dataset_get_str(const dcm_dataset *ds, uint32_t tag, unsigned idx, const char **s,
                              size_t *len);
/* The idx-th value as an integer: US/SS/UL/SL/UV/SV/IS/AT. */
vp_status dcm_dataset_get_int(const dcm_dataset *ds, uint32_t tag, unsigned idx, int64_t *v);
/* The idx-th value as a double: FL/FD/DS and the integer VRs. */
vp_status dcm_dataset_get_double(const dcm_dataset *ds, uint32_t tag, unsigned idx, double *v);
/* Copies a single string value into a NUL-terminated caller buffer (truncates). */
vp_status dcm_dataset_copy_str(const dcm_dataset *ds, uint32_t tag, char *buf, size_t size);

/* Same accessors on an element. */
vp_status dcm_element_get_str(const dcm_element *el, unsigned idx, const char **s, size_t *len);
vp_status dcm_element_get_int(const dcm_element *el, unsigned idx, int64_t *v);
vp_status dcm_element_get_double(const dcm_element *el, unsigned idx, double *v);
/* Value multiplicity: number of values (backslash-separated strings, binary units). */
unsigned dcm_element_vm(const dcm_element *el);

uint32_t dcm_element_tag(const dcm_element *el);
enum dcm_vr dcm_element_vr(const dcm_element *el);
/* Value length in bytes as stored (0 for sequences and encapsulated data). */
uint32_t dcm_element_length(const dcm_element *el);
/* Value bytes (little endian for binary), NULL when empty, a sequence or encapsulated. */
const uint8_t *dcm_element_value(const dcm_element *el);
/* Byte offset of the value in the source it was read from (0 when built in memory). */
uint64_t dcm_element_offset(const dcm_element *el);
/* Whether the element was encoded with undefined length (sequences, encapsulated data). */
bool dcm_element_undefined_length(const dcm_element *el);
void dcm_element_set_undefined_length(dcm_element *el, bool undefined);
/* Whether the value was not loaded (read stopped or bulk data skipped); length/offset remain. */
bool dcm_element_is_skipped(const dcm_element *el);

bool dcm_element_is_sequence(const dcm_element *el);
size_t dcm_element_item_count(const dcm_element *el);
dcm_dataset *dcm_element_item(const dcm_element *el, size_t i);
/* Appends an empty item to a sequence element. */
vp_status dcm_element_add_item(dcm_element *el, dcm_dataset **out);

bool dcm_element_is_encapsulated(const dcm_element *el);
size_t dcm_element_fragment_count(const dcm_element *el);
/* Fragment i (0 is the Basic Offset Table); data NULL when not loaded. */
const uint8_t *dcm_element_fragment(const dcm_element *el, size_t i, uint32_t *len,
                                    uint64_t *offset);
vp_status dcm_element_add_fragment(dcm_element *el, const void *data, size_t len);

/* Deep equality of two data sets: same tags, VRs and values; values compare after removing
 * one trailing padding byte (the writer pads odd lengths, PS3.5 7.1.1). When they differ and
 * why is not NULL, a description of the first difference is written there. */
bool dcm_dataset_equal(const dcm_dataset *a, const dcm_dataset *b, char *why, size_t why_size);

/* ------------------------------------------------------------------------------------------ */
/* Reading (PS3.10 7, PS3.5 7)                                                                */

/* Limits and choices for reading untrusted bytes; zero fields take the defaults. */
typedef struct dcm_read_opts {
    uint32_t stop_at_tag;  /* stop at top level before this tag (e.g. Pixel Data); 0 = never */
    uint32_t max_depth;    /* sequence nesting; default 64 */
    uint64_t max_length;   /* largest single value or file; default 4 GiB - 2 */
    uint32_t max_elements; /* elements in the whole tree; default 1,000,000 */
    uint64_t max_inflated; /* bytes after inflating a deflated data set; default 1 GiB */
    /* Offsets in error messages count from this file offset (e.g. where a data set received
     * over the network starts after the meta group we wrote): the peer's own offsets. */
    uint64_t message_origin;
} dcm_read_opts;

/* Where pixel data sits in the file: enough to stream frames without loading them. */
typedef struct dcm_fragment_ref {
    uint64_t offset; /* file offset of the fragment's first data byte */
    uint32_t length; /* fragment length */
} dcm_fragment_ref;

typedef struct dcm_frame_ref {
    uint64_t offset;         /* native: offset of the frame's first byte; encapsulated: of the
                                first fragment's data */
    uint64_t length;         /* native: frame size in bytes; encapsulated: sum of fragments */
    uint32_t first_fragment; /* encapsulated: index into fragments (0 = first after the BOT) */
    uint32_t fragment_count; /* encapsulated: fragments making up the frame */
} dcm_frame_ref;

typedef struct dcm_pixel_info {
    bool present;            /* the top-level data set has (7FE0,0010) */
    bool encapsulated;       /* undefined length, fragments */
    bool offsets_in_file;    /* false for deflated files: offsets are into the inflated stream */
    uint8_t vr;              /* OB or OW */
    uint64_t header_offset;  /* offset of the element's tag */
    uint64_t value_offset;   /* offset of the first value byte (first item tag if encapsulated) */
    uint64_t value_length;   /* bytes of value (encapsulated: up to and incl. the delimiter) */
    uint32_t frame_count;    /* frames found; native: Number of Frames (default 1) */
    dcm_frame_ref *frames;   /* frame_count entries */
    uint32_t fragment_count; /* encapsulated: fragments after the Basic Offset Table */
    dcm_fragment_ref *fragments; /* fragment_count entries */
} dcm_pixel_info;

typedef struct dcm_file dcm_file;

/* Reads a Part 10 file (or a bare data set in a file, by sniffing its encoding). With
 * opts->stop_at_tag the read stops there and touches only the bytes before it, plus the item
 * headers of encapsulated pixel data, so a header read costs the same for any pixel size. */
vp_status dcm_file_read(const char *path, const dcm_read_opts *opts, dcm_file **out, vp_error *err);
/* Same from memory (the bytes are copied; the caller keeps its buffer). */
vp_status dcm_file_read_mem(const void *data, size_t len, const dcm_read_opts *opts, dcm_file **out,
                            vp_error *err);
void dcm_file_free(dcm_file *f);
/* File meta information (group 0002); an empty data set when the file had none. Borrowed. */
dcm_dataset *dcm_file_meta(const dcm_file *f);
/* The data set after the meta group. Borrowed; lives as long as the file. */
dcm_dataset *dcm_file_dataset(const dcm_file *f);
/* Takes the data set: the caller frees it; the file keeps an empty one. */
dcm_dataset *dcm_file_take_dataset(dcm_file *f);
/* Transfer syntax UID the data set was encoded in (from the meta group or sniffed). */
const char *dcm_file_transfer_syntax(const dcm_file *f);
bool dcm_file_has_preamble(const dcm_file *f);
/* Pixel data location; present == false when there is none. */
const dcm_pixel_info *dcm_file_pixel_info(const dcm_file *f);

/* Reads a bare data set (no preamble, no meta) encoded in transfer syntax ts (e.g. a DIMSE
 * data set). Deflated syntaxes are inflated. */
vp_status dcm_dataset_read_mem(const void *data, size_t len, const char *ts,
                               const dcm_read_opts *opts, dcm_dataset **out, vp_error *err);

/* ------------------------------------------------------------------------------------------ */
/* Writing (PS3.10 7.1, PS3.5 7)                                                              */

/* A place to write bytes. write returns VP_OK or an error (which stops the writer). */
typedef struct dcm_sink {
    vp_status (*write)(void *ctx, const void *p, size_t n);
    void *ctx;
} dcm_sink;

/* A sink appending to a vp_buf. */
dcm_sink dcm_sink_buf(vp_buf *b);

/* A UUID-derived UID (PS3.5 B.2) fixed for the vetpacs implementation. */
#define DCM_IMPLEMENTATION_CLASS_UID "2.25.124558876457220195531134696587970400752"
#define DCM_IMPLEMENTATION_VERSION_NAME "VETPACS_010"

typedef struct dcm_write_opts {
    bool no_preamble;       /* omit the 128-byte preamble and "DICM" (not Part 10 conformant) */
    bool defined_lengths;   /* write every sequence and item with defined length */
    bool undefined_lengths; /* write every sequence and item with undefined length */
    int deflate_level;      /* zlib level for the deflated syntax; 0 = default (6) */
} dcm_write_opts;

/* Encodes ds (without group 0002) in transfer syntax ts into sink. Odd values are padded. */
vp_status dcm_dataset_write(const dcm_dataset *ds, const char *ts, const dcm_write_opts *opts,
                            dcm_sink *sink, vp_error *err);

/* Writes a Part 10 stream: preamble, a meta group built here (Media Storage SOP Class and
 * Instance from the data set, Transfer Syntax ts, vetpacs Implementation Class UID and Version
 * Name; Source/Sending/Receiving AE titles and Private Information copied from meta when
 * given), then the data set in ts. A data set with encapsulated pixel data can only be written
 * in an encapsulated syntax, and native pixel data only in a native one: VP_EINVAL otherwise. */
vp_status dcm_part10_write(const dcm_dataset *meta, const dcm_dataset *ds, const char *ts,
                           const dcm_write_opts *opts, dcm_sink *sink, vp_error *err);
/* Writes only the start of a Part 10 stream: preamble and a meta group built as above from
 * meta, which must hold Media Storage SOP Class and Instance UIDs (0002,0002-3). The data set
 * bytes, already encoded in ts, follow from the caller (the network receives them so). */
vp_status dcm_part10_write_header(const dcm_dataset *meta, const char *ts, dcm_sink *sink,
                                  vp_error *err);
/* Writes a Part 10 file at path (via a temporary file and rename, fsync'd when sync). */
vp_status dcm_file_write(const char *path, const dcm_dataset *meta, const dcm_dataset *ds,
                         const char *ts, const dcm_write_opts *opts, bool sync, vp_error *err);

/* ------------------------------------------------------------------------------------------ */
/* Character sets (PS3.5 6.1, PS3.3 C.12.1.1.2)                                              */

/*
 * Converts a text value (VR SH, LO, ST, LT, UT, PN, UC) encoded under the Specific Character
 * Set value charset (the raw element value, possibly multi-valued "ISO 2022 IR 6\ISO 2022
 * IR 87"; NULL or empty = default repertoire) to UTF-8, appended to out. Handles the single-byte
 * sets, ISO_IR 192, GB18030, GBK and the ISO 2022 code extensions with escape sequences.
 * The initial code sets come back after control characters, after '\' in multi-valued VRs and
 * after '^' and '=' in PN (PS3.5 6.1.2.5.3). A '\' byte always separates values in SH, LO, PN
 * and UC, since those VRs may not contain 5CH (PS3.5 Table 6.2-1), so decoding a whole value
 * equals decoding each value alone; '^' and '=' count only as single-byte characters. Unknown
 * defined terms fall back to the default repertoire. Bytes that cannot be converted become
 * U+FFFD rather than failing: the only errors are VP_ENOMEM and VP_ELIMIT from out.
 */
vp_status dcm_text_to_utf8(const char *charset, size_t charset_len, enum dcm_vr vr,
                           const uint8_t *in, size_t n, vp_buf *out);
/* Specific Character Set value in effect for ds (its own, else its parents'), raw. */
void dcm_dataset_charset(const dcm_dataset *ds, const char **charset, size_t *len);

/* ------------------------------------------------------------------------------------------ */
/* DICOM JSON (PS3.18 Annex F)                                                                */

typedef struct dcm_json_opts {
    uint32_t bulk_threshold; /* binary values longer than this are left out; 0 = keep all */
    /* When bulk_uri_prefix is set, left-out values get "BulkDataURI": prefix + "/" + tag
     * path (e.g. ".../bulk/7FE00010"); otherwise they are omitted with only "vr". */
    const char *bulk_uri_prefix;
    bool pretty; /* indent and newlines */
} dcm_json_opts;

/* Writes ds as a DICOM JSON object (text converted to UTF-8, PN as Alphabetic/Ideographic/
 * Phonetic, binary as InlineBinary base64, numbers as JSON numbers) into out. */
vp_status dcm_json_write(const dcm_dataset *ds, const dcm_json_opts *opts, vp_buf *out,
                         vp_error *err);

/* Parses one DICOM JSON object into a new data set (text stored as UTF-8 and Specific Character
 * Set set to ISO_IR 192 when any text is not ASCII). BulkDataURI values become skipped
 * elements. Bounded nesting; malformed input gives VP_EPARSE with the offset in err. */
vp_status dcm_json_read(const char *json, size_t len, const dcm_read_opts *opts, dcm_dataset **out,
                        vp_error *err);

/* ------------------------------------------------------------------------------------------ */
/* UIDs (PS3.5 9, B.2)                                                                        */

#define DCM_UID_MAX 64
/* Writes a new "2.25.<decimal of a random 128-bit UUID>" UID (at most 64 chars + NUL). */
vp_status dcm_uid_generate(char out[DCM_UID_MAX + 1]);
/* Whether s (len bytes, no padding) is a valid UID: digits and dots, no leading zeros in a
 * component, at most 64 chars. */
bool dcm_uid_valid(const char *s, size_t len);

/* ------------------------------------------------------------------------------------------ */
/* Text dump (one line per element)                                                           */

typedef struct dcm_dump_opts {
    uint32_t max_value_chars; /* values cut at this many characters; 0 = 64 */
} dcm_dump_opts;

/* Appends one line per element: "(0010,0010) PN 8 [Rex^Fido] PatientName", nested items
 * indented by two spaces per level with item markers. Text values shown in UTF-8. */
vp_status dcm_dump(const dcm_dataset *ds, const dcm_dump_opts *opts, vp_buf *out);

#endif /* VP_DCM_H */
