/* SPDX-License-Identifier: MIT */
/*
 * DIMSE status codes: Status Classes (PS3.7 Annex C), names of the codes each service uses
 * (general codes PS3.7 C.4 and C.5; C-STORE PS3.4 B.2.3 Table B.2-1; C-FIND PS3.4 C.4.1.1.4
 * Table C.4-1; C-MOVE C.4.2.1.5 Table C.4-2; C-GET C.4.3.1.4 Table C.4-3), and the one place
 * where a vetpacs result becomes the status a peer is told.
 */
#include "dimse/internal.h"

enum dimse_status_class dimse_status_class(uint16_t s)
{
    /* PS3.7 Annex C: Success 0000; Warning 0001, Bxxx, 0107, 0116; Failure Axxx, Cxxx,
     * 01xx (but 0107 and 0116), 02xx; Cancel FE00; Pending FF00, FF01. */
    if (s == 0x0000)
        return DIMSE_CLASS_SUCCESS;
    if (s == 0x0001 || (s & 0xF000) == 0xB000 || s == 0x0107 || s == 0x0116)
        return DIMSE_CLASS_WARNING;
    if (s == 0xFE00)
        return DIMSE_CLASS_CANCEL;
    if (s == 0xFF00 || s == 0xFF01)
        return DIMSE_CLASS_PENDING;
    /* Axxx, Cxxx, 01xx, 02xx, and codes Annex C says implementations shall not use: an SCU
     * must not take an unknown code for success or for "more to come". */
    return DIMSE_CLASS_FAILURE;
}

const char *dimse_status_class_name(enum dimse_status_class c)
{
    switch (c) {
    case DIMSE_CLASS_SUCCESS: return "Success";
    case DIMSE_CLASS_WARNING: return "Warning";
    case DIMSE_CLASS_FAILURE: return "Failure";
    case DIMSE_CLASS_CANCEL: return "Cancel";
    case DIMSE_CLASS_PENDING: return "Pending";
    }
    return "Failure";
}

enum dimse_service dimse_service_of(uint16_t cf)
{
    switch (cf & 0x7FFF) {
    case DIMSE_C_ECHO_RQ: return DIMSE_SVC_ECHO;
    case DIMSE_C_STORE_RQ: return DIMSE_SVC_STORE;
    case DIMSE_C_FIND_RQ: return DIMSE_SVC_FIND;
    case DIMSE_C_MOVE_RQ: return DIMSE_SVC_MOVE;
    case DIMSE_C_GET_RQ: return DIMSE_SVC_GET;
    default: return DIMSE_SVC_COUNT;
    }
}

/* Codes whose meaning PS3.7 fixes for every service (Annex C.4, C.5). */
static const struct {
    uint16_t code;    /* Status value */
    const char *name; /* meaning */
} general[] = {
    {0x0000, "Success"},
    {0x0001, "Warning: Requested optional Attributes are not supported"},
    {0x0105, "Failure: No such Attribute"},
    {0x0106, "Failure: Invalid Attribute value"},
    {0x0107, "Warning: Attribute list error"},
    {0x0110, "Failure: Processing failure"},
    {0x0111, "Failure: Duplicate SOP Instance"},
    {0x0112, "Failure: No such SOP Instance"},
    {0x0113, "Failure: No such event type"},
    {0x0114, "Failure: No such argument"},
    {0x0115, "Failure: Invalid argument value"},
    {0x0116, "Warning: Attribute Value Out of Range"},
    {0x0117, "Failure: Invalid object instance"},
    {0x0118, "Failure: No such SOP Class"},
    {0x0119, "Failure: Class-instance conflict"},
    {0x0120, "Failure: Missing Attribute"},
    {0x0121, "Failure: Missing Attribute value"},
    {0x0122, "Refused: SOP Class not supported"},
    {0x0123, "Failure: No such action"},
    {0x0124, "Refused: Not authorized"},
    {0x0210, "Failure: Duplicate invocation"},
    {0x0211, "Failure: Unrecognized operation"},
    {0x0212, "Failure: Mistyped argument"},
    {0x0213, "Failure: Resource limitation"},
    {0xFE00, "Cancel"},
};

/* Service-specific codes; mask selects the bits that must match ("A7xx" = 0xFF00). */
static const struct {
    uint8_t svc;      /* enum dimse_service */
    uint16_t code;    /* Status value with x digits zero */
    uint16_t mask;    /* bits compared */
    const char *name; /* meaning, as the PS3.4 table says it */
} specific[] = {
    /* PS3.4 Table B.2-1 */
    {DIMSE_SVC_STORE, 0xA700, 0xFF00, "Refused: Out of Resources"},
    {DIMSE_SVC_STORE, 0xA900, 0xFF00, "Error: Data Set does not match SOP Class"},
    {DIMSE_SVC_STORE, 0xC000, 0xF000, "Error: Cannot understand"},
    {DIMSE_SVC_STORE, 0xB000, 0xFFFF, "Warning: Coercion of Data Elements"},
    {DIMSE_SVC_STORE, 0xB007, 0xFFFF, "Warning: Data Set does not match SOP Class"},
    {DIMSE_SVC_STORE, 0xB006, 0xFFFF, "Warning: Elements Discarded"},
    /* PS3.4 Table C.4-1 */
    {DIMSE_SVC_FIND, 0xA700, 0xFFFF, "Refused: Out of Resources"},
    {DIMSE_SVC_FIND, 0xA900, 0xFFFF, "Failed: Identifier does not match SOP Class"},
    {DIMSE_SVC_FIND, 0xC000, 0xF000, "Failed: Unable to process"},
    {DIMSE_SVC_FIND, 0xFE00, 0xFFFF, "Cancel: Matching terminated due to Cancel request"},
    {DIMSE_SVC_FIND, 0x0000, 0xFFFF, "Success: Matching is complete"},
    {DIMSE_SVC_FIND, 0xFF00, 0xFFFF, "Pending: Matches are continuing"},
    {DIMSE_SVC_FIND, 0xFF01, 0xFFFF,
     "Pending: Matches are continuing, one or more Optional Keys were not supported"},
    /* PS3.4 Table C.4-2 */
    {DIMSE_SVC_MOVE, 0xA701, 0xFFFF,
     "Refused: Out of Resources - Unable to calculate number of matches"},
    {DIMSE_SVC_MOVE, 0xA702, 0xFFFF,
     "Refused: Out of Resources - Unable to perform sub-operations"},
    {DIMSE_SVC_MOVE, 0xA801, 0xFFFF, "Refused: Move Destination unknown"},
    {DIMSE_SVC_MOVE, 0xA900, 0xFFFF, "Failed: Identifier does not match SOP Class"},
    {DIMSE_SVC_MOVE, 0xC000, 0xF000, "Failed: Unable to process"},
    {DIMSE_SVC_MOVE, 0xFE00, 0xFFFF, "Cancel: Sub-operations terminated due to Cancel indication"},
    {DIMSE_SVC_MOVE, 0xB000, 0xFFFF, "Warning: Sub-operations Complete - One or more Failures"},
    {DIMSE_SVC_MOVE, 0x0000, 0xFFFF, "Success: Sub-operations Complete - No Failures"},
    {DIMSE_SVC_MOVE, 0xFF00, 0xFFFF, "Pending: Sub-operations are continuing"},
    /* PS3.4 Table C.4-3 */
    {DIMSE_SVC_GET, 0xA701, 0xFFFF,
     "Refused: Out of Resources - Unable to calculate number of matches"},
    {DIMSE_SVC_GET, 0xA702, 0xFFFF, "Refused: Out of Resources - Unable to perform sub-operations"},
    {DIMSE_SVC_GET, 0xA900, 0xFFFF, "Failed: Identifier does not match SOP Class"},
    {DIMSE_SVC_GET, 0xC000, 0xF000, "Failed: Unable to process"},
    {DIMSE_SVC_GET, 0xFE00, 0xFFFF, "Cancel: Sub-operations terminated due to Cancel indication"},
    {DIMSE_SVC_GET, 0xB000, 0xFFFF, "Warning: Sub-operations Complete - One or more Failures"},
    {DIMSE_SVC_GET, 0x0000, 0xFFFF, "Success: Sub-operations Complete - No Failures"},
    {DIMSE_SVC_GET, 0xFF00, 0xFFFF, "Pending: Sub-operations are continuing"},
};

const char *dimse_status_name(enum dimse_service svc, uint16_t s)
{
    for (size_t i = 0; i < sizeof specific / sizeof specific[0]; i++)
        if (specific[i].svc == svc && (s & specific[i].mask) == specific[i].code)
            return specific[i].name;
    for (size_t i = 0; i < sizeof general / sizeof general[0]; i++)
        if (general[i].code == s)
            return general[i].name;
    switch (dimse_status_class(s)) {
    case DIMSE_CLASS_WARNING: return "Warning (code not defined for this service)";
    case DIMSE_CLASS_PENDING: return "Pending";
    default: return "Failure (code not defined for this service)";
    }
}

/*
 * vp_status -> DIMSE status, per service: the one place (STYLE.md "each protocol maps statuses
 * to its own terms in exactly one place"). Rows follow enum vp_status; the reasons:
 *  - ENOMEM, ELIMIT, EAGAIN: resources. A7xx for C-STORE/C-FIND; for C-MOVE/C-GET a failure
 *    of the request as a whole comes before sub-operations start, hence A701; C-ECHO has only
 *    the general 0213 "Resource limitation".
 *  - EIO: the archive could not write or read. C-STORE answers A700 (as dcmtk's storescp does
 *    for a failed write): the data was fine, sending again later may work. The query services
 *    answer C001, our "unable to process" sub-code for I/O (PS3.4 lets an SCP assign Cxxx).
 *  - EPARSE, ETRUNC: the data set / identifier could not be decoded: C000 "cannot understand"
 *    (C-STORE) / "unable to process" (the others).
 *  - EINVAL: decoded but not valid for the SOP Class (missing UIDs, bad query level): A900.
 *  - ENOTFOUND: for C-MOVE the destination AE is the one thing looked up before the
 *    sub-operations, so A801; elsewhere C000.
 *  - ECONFLICT: C-STORE of a SOP Instance UID we hold with different content: 0111
 *    "Duplicate SOP Instance" (PS3.7 C.5); elsewhere C000.
 *  - EUNSUPPORTED: 0122 "SOP Class not supported" for the request services; C-ECHO 0211.
 */
static const uint16_t vp_map[VP_ETRUNC + 1][DIMSE_SVC_COUNT] = {
    /*                ECHO    STORE   FIND    MOVE    GET */
    [VP_OK] = {0x0000, 0x0000, 0x0000, 0x0000, 0x0000},
    [VP_ENOMEM] = {0x0213, 0xA700, 0xA700, 0xA701, 0xA701},
    [VP_EIO] = {0x0110, 0xA700, 0xC001, 0xC001, 0xC001},
    [VP_EPARSE] = {0x0110, 0xC000, 0xC000, 0xC000, 0xC000},
    [VP_EINVAL] = {0x0110, 0xA900, 0xA900, 0xA900, 0xA900},
    [VP_ENOTFOUND] = {0x0110, 0xC000, 0xC000, 0xA801, 0xC000},
    [VP_ECONFLICT] = {0x0110, 0x0111, 0xC000, 0xC000, 0xC000},
    [VP_ELIMIT] = {0x0213, 0xA700, 0xA700, 0xA701, 0xA701},
    [VP_EUNSUPPORTED] = {0x0211, 0x0122, 0x0122, 0x0122, 0x0122},
    [VP_EAGAIN] = {0x0213, 0xA700, 0xA700, 0xA701, 0xA701},
    [VP_ETRUNC] = {0x0110, 0xC000, 0xC000, 0xC000, 0xC000},
};

uint16_t dimse_status_from_vp(enum dimse_service svc, vp_status st)
{
    if ((unsigned)svc >= DIMSE_SVC_COUNT)
        svc = DIMSE_SVC_ECHO; /* only the general codes are safe for an unknown service */
    if ((unsigned)st > VP_ETRUNC)
        return DIMSE_STATUS_PROCESSING_FAILURE;
    return vp_map[st][svc];
}

uint16_t dimse_status_suboperations(uint16_t completed, uint16_t failed, uint16_t warning)
{
    /* PS3.4 C.4.2.3.1 (C-MOVE; C-GET alike in C.4.3.3.1): Success when all sub-operations
     * succeeded, Failure when all failed, Warning when some failed or warned. */
    if (failed == 0 && warning == 0)
        return DIMSE_STATUS_SUCCESS;
    if (completed == 0 && warning == 0)
        return DIMSE_STATUS_OUT_OF_RESOURCES_SUBOPS;
    return DIMSE_STATUS_SUBOPS_WARNING;
}
