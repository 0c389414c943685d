/* SPDX-License-Identifier: MIT */
/*
 * The DICOM Upper Layer state machine, PS3.8 9.2: states (Table 9-1), actions with their next
 * states (Tables 9-6 to 9-9) and the state transition table (Table 9-10), written as the
 * standard prints it so that it can be checked line by line. Pure data and lookups; what the
 * actions do is in assoc.c.
 */
#include "ul/ul.h"

/* Next state of each action (PS3.8 Tables 9-6, 9-7, 9-8, 9-9). AE-6 and AR-8 have two. */
static const ul_transition action_next[] = {
    [UL_AE_1] = {UL_AE_1, UL_STA4, 0},        /* issue TRANSPORT CONNECT request */
    [UL_AE_2] = {UL_AE_2, UL_STA5, 0},        /* send A-ASSOCIATE-RQ PDU */
    [UL_AE_3] = {UL_AE_3, UL_STA6, 0},        /* issue A-ASSOCIATE confirmation (accept) */
    [UL_AE_4] = {UL_AE_4, UL_STA1, 0},        /* issue A-ASSOCIATE confirmation (reject), close */
    [UL_AE_5] = {UL_AE_5, UL_STA2, 0},        /* issue transport connection response, start ARTIM */
    [UL_AE_6] = {UL_AE_6, UL_STA3, UL_STA13}, /* stop ARTIM; indication, or RJ + ARTIM */
    [UL_AE_7] = {UL_AE_7, UL_STA6, 0},        /* send A-ASSOCIATE-AC PDU */
    [UL_AE_8] = {UL_AE_8, UL_STA13, 0},       /* send A-ASSOCIATE-RJ PDU, start ARTIM */
    [UL_DT_1] = {UL_DT_1, UL_STA6, 0},        /* send P-DATA-TF PDU */
    [UL_DT_2] = {UL_DT_2, UL_STA6, 0},        /* issue P-DATA indication */
    [UL_AR_1] = {UL_AR_1, UL_STA7, 0},        /* send A-RELEASE-RQ PDU */
    [UL_AR_2] = {UL_AR_2, UL_STA8, 0},        /* issue A-RELEASE indication */
    [UL_AR_3] = {UL_AR_3, UL_STA1, 0},        /* issue A-RELEASE confirmation, close transport */
    [UL_AR_4] = {UL_AR_4, UL_STA13, 0},       /* send A-RELEASE-RP PDU, start ARTIM */
    [UL_AR_5] = {UL_AR_5, UL_STA1, 0},        /* stop ARTIM */
    [UL_AR_6] = {UL_AR_6, UL_STA7, 0},        /* issue P-DATA indication */
    [UL_AR_7] = {UL_AR_7, UL_STA8, 0},        /* send P-DATA-TF PDU */
    [UL_AR_8] = {UL_AR_8, UL_STA9, UL_STA10}, /* A-RELEASE indication (collision): requestor
                                                 Sta9, acceptor Sta10 */
    [UL_AR_9] = {UL_AR_9, UL_STA11, 0},       /* send A-RELEASE-RP PDU */
    [UL_AR_10] = {UL_AR_10, UL_STA12, 0},     /* issue A-RELEASE confirmation */
    [UL_AA_1] = {UL_AA_1, UL_STA13, 0},       /* send A-ABORT PDU, start (or restart) ARTIM */
    [UL_AA_2] = {UL_AA_2, UL_STA1, 0},        /* stop ARTIM if running, close transport */
    [UL_AA_3] = {UL_AA_3, UL_STA1, 0},        /* issue A-ABORT or A-P-ABORT indication, close */
    [UL_AA_4] = {UL_AA_4, UL_STA1, 0},        /* issue A-P-ABORT indication */
    [UL_AA_5] = {UL_AA_5, UL_STA1, 0},        /* stop ARTIM */
    [UL_AA_6] = {UL_AA_6, UL_STA13, 0},       /* ignore PDU */
    [UL_AA_7] = {UL_AA_7, UL_STA13, 0},       /* send A-ABORT PDU */
    [UL_AA_8] = {UL_AA_8, UL_STA13, 0},       /* send A-ABORT PDU, A-P-ABORT indication, ARTIM */
};

/* Short names for the table below only. */
#define NA UL_ACTION_NONE
#define AE1 UL_AE_1
#define AE2 UL_AE_2
#define AE3 UL_AE_3
#define AE4 UL_AE_4
#define AE5 UL_AE_5
#define AE6 UL_AE_6
#define AE7 UL_AE_7
#define AE8 UL_AE_8
#define DT1 UL_DT_1
#define DT2 UL_DT_2
#define AR1 UL_AR_1
#define AR2 UL_AR_2
#define AR3 UL_AR_3
#define AR4 UL_AR_4
#define AR5 UL_AR_5
#define AR6 UL_AR_6
#define AR7 UL_AR_7
#define AR8 UL_AR_8
#define AR9 UL_AR_9
#define AR10 UL_AR_10
#define AA1 UL_AA_1
#define AA2 UL_AA_2
#define AA3 UL_AA_3
#define AA4 UL_AA_4
#define AA5 UL_AA_5
#define AA6 UL_AA_6
#define AA7 UL_AA_7
#define AA8 UL_AA_8

/* PS3.8 Table 9-10, one row per event, one column per state; NA is an empty cell. */
static const uint8_t table[UL_EVENT_COUNT + 1][UL_STATE_COUNT + 1] = {
    /* clang-format off */
    /*            -  Sta1 Sta2 Sta3 Sta4 Sta5 Sta6 Sta7 Sta8 Sta9 Sta10 Sta11 Sta12 Sta13 */
    [UL_EVT1]  = {0, AE1, NA,  NA,  NA,  NA,  NA,  NA,  NA,  NA,  NA,   NA,   NA,   NA },
    [UL_EVT2]  = {0, NA,  NA,  NA,  AE2, NA,  NA,  NA,  NA,  NA,  NA,   NA,   NA,   NA },
    [UL_EVT3]  = {0, NA,  AA1, AA8, NA,  AE3, AA8, AA8, AA8, AA8, AA8,  AA8,  AA8,  AA6},
    [UL_EVT4]  = {0, NA,  AA1, AA8, NA,  AE4, AA8, AA8, AA8, AA8, AA8,  AA8,  AA8,  AA6},
    [UL_EVT5]  = {0, AE5, NA,  NA,  NA,  NA,  NA,  NA,  NA,  NA,  NA,   NA,   NA,   NA },
    [UL_EVT6]  = {0, NA,  AE6, AA8, NA,  AA8, AA8, AA8, AA8, AA8, AA8,  AA8,  AA8,  AA7},
    [UL_EVT7]  = {0, NA,  NA,  AE7, NA,  NA,  NA,  NA,  NA,  NA,  NA,   NA,   NA,   NA },
    [UL_EVT8]  = {0, NA,  NA,  AE8, NA,  NA,  NA,  NA,  NA,  NA,  NA,   NA,   NA,   NA },
    [UL_EVT9]  = {0, NA,  NA,  NA,  NA,  NA,  DT1, NA,  AR7, NA,  NA,   NA,   NA,   NA },
    [UL_EVT10] = {0, NA,  AA1, AA8, NA,  AA8, DT2, AR6, AA8, AA8, AA8,  AA8,  AA8,  AA6},
    [UL_EVT11] = {0, NA,  NA,  NA,  NA,  NA,  AR1, NA,  NA,  NA,  NA,   NA,   NA,   NA },
    [UL_EVT12] = {0, NA,  AA1, AA8, NA,  AA8, AR2, AR8, AA8, AA8, AA8,  AA8,  AA8,  AA6},
    [UL_EVT13] = {0, NA,  AA1, AA8, NA,  AA8, AA8, AR3, AA8, AA8, AR10, AR3,  AA8,  AA6},
    [UL_EVT14] = {0, NA,  NA,  NA,  NA,  NA,  NA,  NA,  AR4, AR9, NA,   NA,   AR4,  NA },
    [UL_EVT15] = {0, NA,  NA,  AA1, AA2, AA1, AA1, AA1, AA1, AA1, AA1,  AA1,  AA1,  NA },
    [UL_EVT16] = {0, NA,  AA2, AA3, NA,  AA3, AA3, AA3, AA3, AA3, AA3,  AA3,  AA3,  AA2},
    [UL_EVT17] = {0, NA,  AA5, AA4, AA4, AA4, AA4, AA4, AA4, AA4, AA4,  AA4,  AA4,  AR5},
    [UL_EVT18] = {0, NA,  AA2, NA,  NA,  NA,  NA,  NA,  NA,  NA,  NA,   NA,   NA,   AA2},
    [UL_EVT19] = {0, NA,  AA1, AA8, NA,  AA8, AA8, AA8, AA8, AA8, AA8,  AA8,  AA8,  AA7},
    /* clang-format on */
};

bool ul_fsm_next(enum ul_state state, enum ul_fsm_event event, ul_transition *out)
{
    static const ul_transition none = {0, 0, 0};
    *out = none;
    if (state < UL_STA1 || state > UL_STA13 || event < UL_EVT1 || event > UL_EVT19)
        return false;
    uint8_t action = table[event][state];
    if (action == UL_ACTION_NONE)
        return false;
    *out = action_next[action];
    return true;
}

const char *ul_state_name(enum ul_state state)
{
    static const char *const names[] = {"?",    "Sta1", "Sta2", "Sta3",  "Sta4",  "Sta5",  "Sta6",
                                        "Sta7", "Sta8", "Sta9", "Sta10", "Sta11", "Sta12", "Sta13"};
    return state >= UL_STA1 && state <= UL_STA13 ? names[state] : "?";
}

const char *ul_event_name(enum ul_fsm_event event)
{
    static const char *const names[] = {
        "?",     "Evt1",  "Evt2",  "Evt3",  "Evt4",  "Evt5",  "Evt6",  "Evt7",  "Evt8",  "Evt9",
        "Evt10", "Evt11", "Evt12", "Evt13", "Evt14", "Evt15", "Evt16", "Evt17", "Evt18", "Evt19"};
    return event >= UL_EVT1 && event <= UL_EVT19 ? names[event] : "?";
}

const char *ul_action_name(enum ul_action action)
{
    static const char *const names[] = {
        "none",  "AE-1", "AE-2", "AE-3", "AE-4", "AE-5", "AE-6", "AE-7", "AE-8", "DT-1",
        "DT-2",  "AR-1", "AR-2", "AR-3", "AR-4", "AR-5", "AR-6", "AR-7", "AR-8", "AR-9",
        "AR-10", "AA-1", "AA-2", "AA-3", "AA-4", "AA-5", "AA-6", "AA-7", "AA-8"};
    return action <= UL_AA_8 ? names[action] : "?";
}
