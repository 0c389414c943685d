/* SPDX-License-Identifier: MIT */
/* Unit tests for the ingest pipeline (src/app/ingest.c) as the C-STORE SCP drives it: data
 * sets streamed in pieces, checks against the command, duplicate policies, injected I/O
 * faults (write, fsync, rename) that must give an A700-class status and no index row, and
 * concurrent senders sharing group commits. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app/ingest.h"
#include "dcm/dcm.h"
#include "dimse/dimse.h"
#include "harness.h"
#include "idx/idx.h"

#include <sqlite3.h>

#define EXPLICIT_LE "1.2.840.10008.1.2.1"
#define CT_STORAGE "1.2.840.10008.5.1.4.1.1.2"

static char root[64];

static void make_root(void)
{
    t_mkdtemp(root, sizeof root, "ingest");
}

/* A minimal CT data set for sop, encoded in Explicit VR LE into out. */
static void encode(const char *sop, const char *patient_name, vp_buf *out)
{
    dcm_dataset *ds = dcm_dataset_new();
    dcm_dataset_set_str(ds, DCM_TAG_SOP_CLASS_UID, DCM_VR_UI, CT_STORAGE);
    dcm_dataset_set_str(ds, DCM_TAG_SOP_INSTANCE_UID, DCM_VR_UI, sop);
    dcm_dataset_set_str(ds, DCM_TAG(0x0008, 0x0060), DCM_VR_CS, "CT");
    dcm_dataset_set_str(ds, DCM_TAG(0x0010, 0x0010), DCM_VR_PN, patient_name);
    dcm_dataset_set_str(ds, DCM_TAG(0x0010, 0x0020), DCM_VR_LO, "PET-1");
    dcm_dataset_set_str(ds, DCM_TAG(0x0010, 0x2201), DCM_VR_LO, "Canine");
    dcm_dataset_set_str(ds, DCM_TAG(0x0020, 0x000D), DCM_VR_UI, "1.2.826.0.1.3680043.10.1");
    dcm_dataset_set_str(ds, DCM_TAG(0x0020, 0x000E), DCM_VR_UI, "1.2.826.0.1.3680043.10.1.1");
    vp_buf_init(out, 0);
    dcm_sink sink = dcm_sink_buf(out);
    vp_error err = {0};
    if (dcm_dataset_write(ds, EXPLICIT_LE, NULL, &sink, &err) != VP_OK)
        fprintf(stderr, "encode: %s\n", err.msg);
    dcm_dataset_free(ds);
}

/* One C-STORE as the SCP runs it: command UIDs, data in three pieces, end. */
static vp_status store(ingest *g, const char *cmd_sop, const void *data, size_t len,
                       ingest_outcome *oc, vp_error *err)
{
    ingest_origin o = {.sop_class_uid = CT_STORAGE,
                       .sop_instance_uid = cmd_sop,
                       .transfer_syntax = EXPLICIT_LE,
                       .source_ae = "MODALITY",
                       .receiving_ae = "VETPACS"};
    ingest_stream *s;
    vp_status st = ingest_stream_begin(g, &o, &s, err);
    if (st)
        return st;
    const uint8_t *p = data;
    size_t a = len / 3, b = len / 3;
    if ((st = ingest_stream_write(s, p, a, err)) || (st = ingest_stream_write(s, p + a, b, err)) ||
        (st = ingest_stream_write(s, p + a + b, len - a - b, err))) {
        ingest_stream_cancel(s);
        return st;
    }
    return ingest_stream_end(s, oc, err);
}

static uint64_t instances(ingest *g, uint64_t *errors)
{
    ingest_check c;
    vp_error err = {0};
    if (ingest_verify(g, NULL, NULL, &c, &err) != VP_OK)
        return (uint64_t)-1;
    *errors = c.errors;
    return c.instances;
}

TEST(stream_store_identical_replace)
{
    make_root();
    ingest *g;
    vp_error err = {0};
    CHECK_OK(ingest_open(root, NULL, &g, &err));
    if (!g)
        return;
    vp_buf a, b;
    encode("1.2.3.1", "Rex", &a);
    encode("1.2.3.1", "Rex^Smith", &b);
    ingest_outcome oc = INGEST_KEPT;
    CHECK_OK(store(g, "1.2.3.1", a.data, a.len, &oc, &err));
    CHECK_INT(oc, INGEST_STORED);
    CHECK_OK(store(g, "1.2.3.1", a.data, a.len, &oc, &err));
    CHECK_INT(oc, INGEST_IDENTICAL);
    CHECK_OK(store(g, "1.2.3.1", b.data, b.len, &oc, &err));
    CHECK_INT(oc, INGEST_REPLACED);
    uint64_t errors = 9;
    CHECK_INT(instances(g, &errors), 1);
    CHECK_INT(errors, 0);
    vp_buf_fini(&a);
    vp_buf_fini(&b);
    ingest_close(g);
    t_rmtree(root);
}

TEST(mismatch_and_garbage)
{
    make_root();
    ingest *g;
    vp_error err = {0};
    CHECK_OK(ingest_open(root, NULL, &g, &err));
    if (!g)
        return;
    vp_buf a;
    encode("1.2.3.2", "Tom", &a);
    ingest_outcome oc;
    /* The command announces another SOP Instance: A900 (PS3.4 B.2.3). */
    vp_status st = store(g, "1.2.3.99", a.data, a.len, &oc, &err);
    CHECK_INT(st, VP_EINVAL);
    CHECK_INT(dimse_status_from_vp(DIMSE_SVC_STORE, st), DIMSE_STATUS_DATASET_MISMATCH);
    CHECK(strstr(err.msg, "1.2.3.99") != NULL);
    /* Bytes that are not a data set: C000 class (cannot understand). */
    static const uint8_t junk[] = {0x08, 0x00, 0x16, 0x00, 'U', 'I', 0xff, 0x7f, 1, 2, 3};
    vp_error_clear(&err);
    st = store(g, "1.2.3.3", junk, sizeof junk, &oc, &err);
    CHECK((dimse_status_from_vp(DIMSE_SVC_STORE, st) & 0xF000) == 0xC000);
    uint64_t errors = 9;
    CHECK_INT(instances(g, &errors), 0);
    vp_buf_fini(&a);
    ingest_close(g);
    t_rmtree(root);
}

TEST(duplicate_policies)
{
    static const ingest_duplicates policies[] = {INGEST_DUP_KEEP, INGEST_DUP_REJECT};
    for (int k = 0; k < 2; k++) {
        make_root();
        ingest *g;
        vp_error err = {0};
        ingest_opts o = {.duplicates = policies[k]};
        CHECK_OK(ingest_open(root, &o, &g, &err));
        if (!g)
            return;
        vp_buf a, b;
        encode("1.2.3.4", "Bella", &a);
        encode("1.2.3.4", "Bella^Jones", &b);
        ingest_outcome oc;
        CHECK_OK(store(g, "1.2.3.4", a.data, a.len, &oc, &err));
        vp_status st = store(g, "1.2.3.4", b.data, b.len, &oc, &err);
        if (policies[k] == INGEST_DUP_KEEP) {
            CHECK_OK(st);
            CHECK_INT(oc, INGEST_KEPT);
        } else {
            CHECK_INT(st, VP_ECONFLICT);
            CHECK_INT(dimse_status_from_vp(DIMSE_SVC_STORE, st),
                      DIMSE_STATUS_DUPLICATE_SOP_INSTANCE);
        }
        /* The first object is what the archive holds, intact. */
        CHECK_OK(store(g, "1.2.3.4", a.data, a.len, &oc, &err));
        CHECK_INT(oc, INGEST_IDENTICAL);
        vp_buf_fini(&a);
        vp_buf_fini(&b);
        ingest_close(g);
        t_rmtree(root);
    }
}

/* Every write, fsync and rename failing in turn: the status is A700-class (out of resources:
 * the sender may retry) and nothing is indexed; when the fault came too late to matter, the
 * object is stored and verifies. */
TEST(io_faults_give_a700_and_no_row)
{
    static const enum vp_io_op ops[] = {VP_IO_WRITE, VP_IO_FSYNC, VP_IO_RENAME};
    make_root();
    ingest *g;
    vp_error err = {0};
    CHECK_OK(ingest_open(root, NULL, &g, &err));
    if (!g)
        return;
    uint64_t stored = 0;
    for (int k = 0; k < 3; k++) {
        for (long nth = 1; nth <= 4; nth++) {
            char sop[64];
            snprintf(sop, sizeof sop, "1.2.3.10.%d.%ld", k, nth);
            vp_buf a;
            encode(sop, "Faulty", &a);
            ingest_outcome oc;
            vp_error_clear(&err);
            vp_io_fail_after(ops[k], nth);
            vp_status st = store(g, sop, a.data, a.len, &oc, &err);
            vp_io_fail_after(ops[k], 0);
            if (st == VP_OK) {
                stored++;
            } else {
                CHECK_INT(st, VP_EIO);
                CHECK_INT(dimse_status_from_vp(DIMSE_SVC_STORE, st), DIMSE_STATUS_OUT_OF_RESOURCES);
            }
            uint64_t errors = 9;
            CHECK_INT(instances(g, &errors), stored);
            CHECK_INT(errors, 0);
            vp_buf_fini(&a);
        }
    }
    CHECK(stored < 12); /* some faults did hit */
    ingest_close(g);
    t_rmtree(root);
}

struct sender {
    ingest *g;
    int id;
    int failures;
};

static void *send_many(void *arg)
{
    struct sender *s = arg;
    for (int i = 0; i < 25; i++) {
        char sop[64];
        snprintf(sop, sizeof sop, "1.2.3.20.%d.%d", s->id, i);
        vp_buf a;
        encode(sop, "Group", &a);
        ingest_outcome oc;
        vp_error err = {0};
        if (store(s->g, sop, a.data, a.len, &oc, &err) != VP_OK || oc != INGEST_STORED)
            s->failures++;
        vp_buf_fini(&a);
    }
    return NULL;
}

TEST(concurrent_senders_share_commits)
{
    make_root();
    ingest *g;
    vp_error err = {0};
    CHECK_OK(ingest_open(root, NULL, &g, &err));
    if (!g)
        return;
    pthread_t t[4];
    struct sender s[4];
    for (int i = 0; i < 4; i++) {
        s[i] = (struct sender){g, i, 0};
        pthread_create(&t[i], NULL, send_many, &s[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        CHECK_INT(s[i].failures, 0);
    }
    uint64_t errors = 9;
    CHECK_INT(instances(g, &errors), 100);
    CHECK_INT(errors, 0);
    ingest_close(g);
    t_rmtree(root);
}

/* A crash between an overlapped index commit and the end of the file's sync leaves rows
 * pending: at the next open each is checked against its file, kept when complete, removed
 * (row and file) otherwise. Simulated by marking rows pending and damaging one file. */
TEST(recovery_of_pending_rows)
{
    make_root();
    ingest *g;
    vp_error err = {0};
    CHECK_OK(ingest_open(root, NULL, &g, &err));
    if (!g)
        return;
    vp_buf a, b;
    encode("1.2.3.30", "Kept", &a);
    encode("1.2.3.31", "Lost", &b);
    ingest_outcome oc;
    CHECK_OK(store(g, "1.2.3.30", a.data, a.len, &oc, &err));
    CHECK_OK(store(g, "1.2.3.31", b.data, b.len, &oc, &err));
    ingest_close(g);
    char db[128];
    snprintf(db, sizeof db, "%s/index.db", root);
    sqlite3 *h = NULL;
    CHECK_INT(sqlite3_open(db, &h), SQLITE_OK);
    CHECK_INT(sqlite3_exec(h, "UPDATE instance SET pending = 1", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_stmt *q = NULL;
    sqlite3_prepare_v2(h, "SELECT path FROM instance WHERE sop_uid = '1.2.3.31'", -1, &q, NULL);
    char lost[512] = "";
    if (q && sqlite3_step(q) == SQLITE_ROW)
        snprintf(lost, sizeof lost, "%s/%s", root, (const char *)sqlite3_column_text(q, 0));
    sqlite3_finalize(q);
    sqlite3_close(h);
    CHECK_INT(truncate(lost, 10), 0); /* the sync never completed */
    CHECK_OK(ingest_open(root, NULL, &g, &err));
    if (!g)
        return;
    uint64_t kept = 0, removed = 0;
    ingest_recovered(g, &kept, &removed);
    CHECK_INT(kept, 1);
    CHECK_INT(removed, 1);
    uint64_t errors = 9;
    CHECK_INT(instances(g, &errors), 1);
    CHECK_INT(errors, 0);
    CHECK(access(lost, F_OK) != 0);
    /* The lost one can be sent again and is stored anew. */
    CHECK_OK(store(g, "1.2.3.31", b.data, b.len, &oc, &err));
    CHECK_INT(oc, INGEST_STORED);
    ingest_close(g);
    /* Nothing stays pending after a clean close: the next open recovers nothing. */
    CHECK_OK(ingest_open(root, NULL, &g, &err));
    if (g) {
        ingest_recovered(g, &kept, &removed);
        CHECK_INT(kept + removed, 0);
        ingest_close(g);
    }
    vp_buf_fini(&a);
    vp_buf_fini(&b);
    t_rmtree(root);
}

int main(void)
{
    RUN(stream_store_identical_replace);
    RUN(mismatch_and_garbage);
    RUN(duplicate_policies);
    RUN(io_faults_give_a700_and_no_row);
    RUN(concurrent_senders_share_commits);
    RUN(recovery_of_pending_rows);
    DONE();
}
