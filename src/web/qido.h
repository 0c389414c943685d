/* SPDX-License-Identifier: MIT */
/*
 * QIDO-RS, the Search transaction of the Studies Service (PS3.18 10.6), without HTTP: the
 * query parameters of a search (PS3.18 8.3.4) become a C-FIND Identifier of the Study Root
 * model for the query compiler (src/qry), and the matches an application/dicom+json array
 * (PS3.18 F.2), one object per match, written as the index cursor gives rows.
 *
 * The HTTP layer splits the target: resource kind, the UIDs of its path, the query parameters
 * percent-decoded (RFC 3986 2.1) in request order, and the base URL of the service ({+SERVICE}
 * of PS3.18 10.6.1, for Retrieve URL and the Warning header). It maps the returned status to
 * the response: 200 with the array, 204 with no payload when nothing matched (PS3.18
 * 8.3.4.4.1), 400 with err->msg for a bad request, 500/503 otherwise.
 */
#ifndef VP_WEB_QIDO_H
#define VP_WEB_QIDO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include "dcm/dcm.h"
#include "idx/idx.h"
#include "qry/qry.h"

/* Search resources of PS3.18 Table 10.6.1-1 (10.6.1: "Target Resources"). */
typedef enum web_qido_resource {
    WEB_QIDO_STUDIES = 0,            /* /studies */
    WEB_QIDO_STUDY_SERIES,           /* /studies/{study}/series */
    WEB_QIDO_SERIES,                 /* /series */
    WEB_QIDO_STUDY_SERIES_INSTANCES, /* /studies/{study}/series/{series}/instances */
    WEB_QIDO_STUDY_INSTANCES,        /* /studies/{study}/instances */
    WEB_QIDO_INSTANCES,              /* /instances */
} web_qido_resource;

/* One query parameter, already percent-decoded. Lengths are explicit: a decoded "%00" is a
 * byte like any other (and refused where a value cannot hold it). */
typedef struct web_qido_param {
    const char *key; /* "PatientName", "00100010", "includefield", ... */
    size_t key_len;
    const char *value; /* may be empty */
    size_t value_len;
} web_qido_param;

/* A search request as the router sees it. Borrowed for the duration of each call. */
typedef struct web_qido_request {
    web_qido_resource resource;
    const char *study_uid;  /* {StudyInstanceUID} of the path, NULL when the path has none */
    const char *series_uid; /* {SeriesInstanceUID} of the path, NULL when none */
    const web_qido_param *params;
    size_t n_params;
} web_qido_request;

/* Bounds on hostile requests, checked before anything is built (the key compiler adds its own:
 * 1,024 bytes per value, 256 values per text key, 10,000 UIDs per list). */
#define WEB_QIDO_MAX_PARAMS 256       /* query parameters in one request */
#define WEB_QIDO_KEY_MAX 256          /* bytes of one parameter name */
#define WEB_QIDO_VALUE_MAX (1u << 20) /* bytes of one parameter value (a list of UIDs) */
#define WEB_QIDO_INCLUDE_MAX 1024     /* includefield values in one request, all counted */
#define WEB_QIDO_MAX_RESULTS 10000    /* default maxResults (PS3.18 8.3.4.4.1) */
#define WEB_QIDO_WARNING_MAX 512      /* room for the Warning header value */

/* ------------------------------------------------------------------------------------------ */
/* Parsing                                                                                    */

typedef struct web_qido_query web_qido_query;

/*
 * Parses a request into a query: the Identifier (Query/Retrieve Level from the resource, the
 * path UIDs as unique keys, one key per match parameter, one return key per attribute to
 * answer: the defaults of the level, PS3.18 Tables 10.6.3-3/-4/-5, the includefield ones and
 * the matching ones), compiled by qry_compile in the Study Root model.
 *
 * Attributes are keywords ("PatientName"), tags ("00100010") or, for the species and breed
 * code sequences, a dotted path ("PatientSpeciesCodeSequence.CodeValue"). Values use the
 * matching syntax of C-FIND (PS3.4 C.2.2.2: wild cards, ranges "A-B", "" with
 * emptyvaluematching); several values are separated by "," (PS3.18 8.3.4.1) or "\".
 * fuzzymatching=true makes a person name value without wild cards match any name one of
 * whose components starts with it, ignoring case (PS3.4 C.2.2.2.1.1 leaves fuzzy matching to
 * the implementation).
 *
 * Errors, all VP_EINVAL or VP_ELIMIT with a message for a 400 response: unknown keyword,
 * malformed tag, a match on an attribute the index cannot match or of a level below the
 * resource's, a UID of the path that is no UID, an attribute given twice, includefield of an
 * unknown keyword, limit/offset that are not unsigned integers (limit 0 too), fuzzymatching
 * other than true/false, too many or too long parameters, and whatever qry_compile refuses
 * (a wild card in a UID, a reversed range, ...). VP_ENOMEM.
 */
vp_status web_qido_parse(const web_qido_request *rq, web_qido_query **out, vp_error *err);
void web_qido_query_free(web_qido_query *wq);

/* The Identifier handed to qry_compile (borrowed). */
const dcm_dataset *web_qido_query_identifier(const web_qido_query *wq);
/* The compiled query (borrowed): its SQL has no LIMIT; web_qido_open adds limit and offset. */
const qry *web_qido_query_compiled(const web_qido_query *wq);
qry_level web_qido_query_level(const web_qido_query *wq);
bool web_qido_query_fuzzy(const web_qido_query *wq);
/* limit (0 when the request gave none) and offset (0 by default) of PS3.18 8.3.4.4. */
uint32_t web_qido_query_limit(const web_qido_query *wq);
uint32_t web_qido_query_offset(const web_qido_query *wq);
/* Attributes each match answers, ascending: the Identifier's keys (without Query/Retrieve
 * Level) plus Retrieve URL (0008,1190) and, where answered, Instance Availability
 * (0008,0056). Fills up to max tags and returns how many there are. */
size_t web_qido_query_return_tags(const web_qido_query *wq, uint32_t *tags, size_t max);

/* ------------------------------------------------------------------------------------------ */
/* Answers                                                                                    */

/*
 * Appends the DICOM JSON object (PS3.18 F.2) of one row of the compiled query's SELECT (cols
 * as idx_cursor_next gives them) to out: the values qry_answer reads from the row, Instance
 * Availability "ONLINE" where answered (every object of the archive is on line) and the
 * Retrieve URL of the study, series or instance: base_url + "/studies/{study}[/series/
 * {series}[/instances/{instance}]]" (PS3.18 10.4.1). base_url without a trailing "/".
 * Errors: VP_ENOMEM, VP_ELIMIT from out.
 */
vp_status web_qido_answer(const web_qido_query *wq, const char *const *cols, size_t ncols,
                          const char *base_url, vp_buf *out, vp_error *err);

/* ------------------------------------------------------------------------------------------ */
/* Running a search on the index                                                              */

typedef struct web_qido_opts {
    const char *base_url; /* {+SERVICE}, e.g. "https://pacs.example/dicom-web"; "" allowed */
    uint32_t max_results; /* maxResults of PS3.18 8.3.4.4.1; 0 = WEB_QIDO_MAX_RESULTS */
} web_qido_opts;

/* A search under way: the JSON array produced piece by piece, for a streamed response. */
typedef struct web_qido_stream web_qido_stream;

/*
 * Parses and compiles the request, opens a cursor on reader (a read connection of the index)
 * with SQL LIMIT and OFFSET (the matches are in index order, so paging is stable, 8.3.4.4.1)
 * and reads the first match. Returns the HTTP status:
 *  - 200: *out is the stream to read the body from (web_qido_stream_read), then close;
 *  - 204: no match at all after the offset (8.3.4.4.1), *out NULL, no payload;
 *  - 400: bad request, err says why; 500 index failure; 503 out of memory.
 * warning (warning_size bytes, may be NULL) gets the value of a Warning header (RFC 7234
 * 5.5, in the PS3.18 8.3.4.4.1 form "299 {+SERVICE}: text") when maxResults or the request's
 * limit left matches out, else "". The stream holds a read snapshot: read it out promptly.
 */
int web_qido_open(idx *reader, const web_qido_request *rq, const web_qido_opts *opts,
                  web_qido_stream **out, char *warning, size_t warning_size, vp_error *err);
/*
 * Appends the next piece of the body to out: "[" and the first objects, then more objects, at
 * least one per call, stopping once out has grown by about 64 KiB; the last call appends "]"
 * and sets *done. Errors (the response is then cut short: the caller aborts the connection):
 * VP_ENOMEM, VP_ELIMIT from out, index errors from idx_cursor_next.
 */
vp_status web_qido_stream_read(web_qido_stream *s, vp_buf *out, bool *done, vp_error *err);
/* Number of match objects written so far. */
uint32_t web_qido_stream_count(const web_qido_stream *s);
void web_qido_stream_close(web_qido_stream *s);

/*
 * The whole search into body (reset first): web_qido_open then every piece. Same statuses;
 * body holds the JSON array for 200 and nothing otherwise. An error after the first match
 * gives 500 (or 503), body emptied.
 */
int web_qido_search(idx *reader, const web_qido_request *rq, const web_qido_opts *opts,
                    vp_buf *body, char *warning, size_t warning_size, vp_error *err);

/* HTTP status of a failed vp_status of this module: 400 for VP_EINVAL, VP_ELIMIT, VP_EPARSE;
 * 503 for VP_ENOMEM; 500 otherwise. */
int web_qido_http_status(vp_status st);

#endif /* VP_WEB_QIDO_H */
