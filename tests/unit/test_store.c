/* SPDX-License-Identifier: MIT */
/* Unit tests for src/store: durable commits, layout, verification, and injected I/O faults
 * that must never leave an object under its final name. */
#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "store/store.h"

static char root[64];

static void make_root(void)
{
    t_mkdtemp(root, sizeof root, "store");
}

static bool exists(const char *rel)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    struct stat sb;
    return stat(p, &sb) == 0;
}

static int count_entries(const char *rel)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    DIR *d = opendir(p);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

static vp_status put(store *s, const char *uid, const char *text, store_object *obj)
{
    store_writer *w;
    vp_error err;
    vp_error_clear(&err);
    vp_status st = store_writer_new(s, &w, &err);
    if (st)
        return st;
    size_t n = strlen(text);
    /* write in two pieces to exercise streaming */
    if ((st = store_writer_write(w, text, n / 2, &err)) ||
        (st = store_writer_write(w, text + n / 2, n - n / 2, &err))) {
        store_writer_free(w);
        return st;
    }
    return store_writer_commit(w, "1.2.3.4", uid, obj, &err);
}

TEST(commit_read_verify)
{
    make_root();
    store *s;
    vp_error err;
    vp_error_clear(&err);
    CHECK_OK(store_open(root, &s, &err));
    if (!s)
        return;
    store_object obj;
    CHECK_OK(put(s, "1.2.840.113619.2.1.1", "DICM object bytes", &obj));
    CHECK_INT(obj.size, 17);
    CHECK(strncmp(obj.path, "objects/", 8) == 0);
    CHECK(strstr(obj.path, "/1.2.840.113619.2.1.1.dcm") != NULL);
    CHECK(exists(obj.path));
    CHECK_INT(count_entries("tmp"), 0);
    char buf[8] = {0};
    CHECK_OK(store_read(s, obj.path, 5, buf, 6, &err));
    CHECK_MEM(buf, 6, "object", 6);
    CHECK_INT(store_read(s, obj.path, 15, buf, 6, &err), VP_ETRUNC);
    vp_error_clear(&err);
    CHECK_OK(store_verify(s, &obj, &err));
    /* Same key again replaces atomically; the old checksum no longer verifies. */
    store_object obj2;
    CHECK_OK(put(s, "1.2.840.113619.2.1.1", "other bytes!!!!!!", &obj2));
    CHECK_STR(obj2.path, obj.path);
    vp_error_clear(&err);
    CHECK_INT(store_verify(s, &obj, &err), VP_ECONFLICT);
    CHECK(strstr(err.msg, "checksum") != NULL);
    vp_error_clear(&err);
    CHECK_OK(store_verify(s, &obj2, &err));
    CHECK_OK(store_remove(s, obj.path, &err));
    CHECK(!exists(obj.path));
    vp_error_clear(&err);
    CHECK_INT(store_remove(s, obj.path, &err), VP_ENOTFOUND);
    store_close(s);
    t_rmtree(root);
}

TEST(keys_must_be_uids)
{
    char path[STORE_PATH_MAX];
    CHECK_OK(store_path_for("1.2.3", "2.25.1234", path));
    CHECK_INT(store_path_for("1.2.3", "../../etc/passwd", path), VP_EINVAL);
    CHECK_INT(store_path_for("..", "1.2.3", path), VP_EINVAL);
    CHECK_INT(store_path_for("1.2.3", "1.2/3", path), VP_EINVAL);
    CHECK_INT(store_path_for("1.2.3", "", path), VP_EINVAL);
    CHECK_INT(store_path_for("", "1.2.3", path), VP_EINVAL);
    char longkey[80];
    memset(longkey, '1', 70);
    longkey[70] = 0;
    CHECK_INT(store_path_for("1.2.3", longkey, path), VP_EINVAL);
    /* fan-out spreads one device's study UIDs (long shared prefix); a study shares a folder */
    char a[STORE_PATH_MAX], b[STORE_PATH_MAX], c[STORE_PATH_MAX];
    store_path_for("1.2.840.113619.2.55.3.1", "1.2.3.1", a);
    store_path_for("1.2.840.113619.2.55.3.2", "1.2.3.1", b);
    CHECK(strncmp(a, b, 11) != 0);
    store_path_for("1.2.840.113619.2.55.3.1", "1.2.3.2", c);
    CHECK_STR(strrchr(a, '/') - a == strrchr(c, '/') - c ? "same" : "differ", "same");
    CHECK(strncmp(a, c, (size_t)(strrchr(a, '/') - a)) == 0);
    CHECK_STR(a + strlen(a) - 11, "1.2.3.1.dcm");
    make_root();
    store *s;
    vp_error err;
    vp_error_clear(&err);
    CHECK_OK(store_open(root, &s, &err));
    store_object obj;
    vp_error_clear(&err);
    CHECK_INT(put(s, "not/a/uid", "x", &obj), VP_EINVAL);
    CHECK_INT(count_entries("tmp"), 0);
    store_close(s);
    t_rmtree(root);
}

/* Each injected failure must be reported, leave nothing under the final name and no
 * temporary file behind. */
TEST(io_faults_never_acknowledge)
{
    static const enum vp_io_op ops[] = {VP_IO_WRITE, VP_IO_FSYNC, VP_IO_RENAME};
    for (unsigned k = 0; k < 3; k++) {
        for (long nth = 1; nth <= 4; nth++) {
            make_root();
            store *s;
            vp_error err;
            vp_error_clear(&err);
            CHECK_OK(store_open(root, &s, &err));
            if (!s)
                return;
            char path[STORE_PATH_MAX];
            store_path_for("1.2.3.4", "2.25.42", path);
            store_object obj;
            vp_io_fail_after(ops[k], nth);
            vp_status st = put(s, "2.25.42", "payload", &obj);
            vp_io_fail_after(ops[k], 0);
            if (st == VP_OK) {
                /* the fault came after the last call of that kind: must be complete */
                vp_error_clear(&err);
                CHECK_OK(store_verify(s, &obj, &err));
            } else {
                CHECK_INT(st, VP_EIO);
                CHECK(!exists(path));
            }
            CHECK_INT(count_entries("tmp"), 0);
            store_close(s);
            t_rmtree(root);
        }
    }
}

TEST(open_clears_unacknowledged_temporaries)
{
    make_root();
    store *s;
    vp_error err;
    vp_error_clear(&err);
    CHECK_OK(store_open(root, &s, &err));
    store_writer *w;
    CHECK_OK(store_writer_new(s, &w, &err));
    CHECK_OK(store_writer_write(w, "half", 4, &err));
    CHECK_INT(count_entries("tmp"), 1);
    /* simulate a crash: reopen while the writer's file is still there */
    store *s2;
    CHECK_OK(store_open(root, &s2, &err));
    CHECK_INT(count_entries("tmp"), 0);
    store_writer_free(w);
    store_close(s);
    store_close(s2);
    store_close(NULL);
    store_writer_free(NULL);
    t_rmtree(root);
}

TEST(allocation_failures)
{
    make_root();
    for (long nth = 1; nth < 10; nth++) {
        store *s = NULL;
        vp_error err;
        vp_error_clear(&err);
        vp_alloc_fail_after(nth);
        vp_status st = store_open(root, &s, &err);
        store_writer *w = NULL;
        if (st == VP_OK)
            st = store_writer_new(s, &w, &err);
        vp_alloc_fail_after(0);
        if (st != VP_OK)
            CHECK_INT(st, VP_ENOMEM);
        store_writer_free(w);
        store_close(s);
    }
    t_rmtree(root);
}

int main(void)
{
    RUN(commit_read_verify);
    RUN(keys_must_be_uids);
    RUN(io_faults_never_acknowledge);
    RUN(open_clears_unacknowledged_temporaries);
    RUN(allocation_failures);
    DONE();
}
