/* SPDX-License-Identifier: MIT */
/* Unit tests for src/base: errors, buffers, arenas, allocation fault injection. */
#include <stdlib.h>

#include "base/base.h"
#include "harness.h"

TEST(error_first_wins)
{
    vp_error e;
    vp_error_clear(&e);
    CHECK_INT(e.status, VP_OK);
    CHECK_INT(vp_error_set(&e, VP_EPARSE, "element (%04X,%04X) bad", 0x10, 0x20), VP_EPARSE);
    vp_error_set(&e, VP_EIO, "second");
    CHECK_INT(e.status, VP_EPARSE);
    CHECK_STR(e.msg, "element (0010,0020) bad");
    CHECK_INT(vp_error_set(NULL, VP_EIO, "no buffer"), VP_EIO);
    CHECK_STR(vp_status_name(VP_ELIMIT), "VP_ELIMIT");
}

TEST(error_message_truncates)
{
    vp_error e;
    vp_error_clear(&e);
    char big[1000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    vp_error_set(&e, VP_EINVAL, "%s", big);
    CHECK_INT(strlen(e.msg), VP_ERROR_MAX - 1);
}

TEST(buf_grows_and_caps)
{
    vp_buf b;
    vp_buf_init(&b, 10);
    CHECK_OK(vp_buf_puts(&b, "hello"));
    CHECK_OK(vp_buf_printf(&b, "%d", 1234));
    CHECK_STR((char *)b.data, "hello1234");
    CHECK_INT(vp_buf_puts(&b, "xy"), VP_ELIMIT);
    CHECK_OK(vp_buf_putc(&b, '!'));
    CHECK_INT(b.len, 10);
    size_t n;
    uint8_t *p = vp_buf_take(&b, &n);
    CHECK_INT(n, 10);
    CHECK_INT(b.len, 0);
    vp_free(p);
    vp_buf_fini(&b);

    vp_buf_init(&b, 0);
    for (int i = 0; i < 10000; i++)
        CHECK_OK(vp_buf_printf(&b, "%05d", i));
    CHECK_INT(b.len, 50000);
    CHECK_MEM(b.data + 49995, 5, "09999", 5);
    /* printf output longer than the small stack buffer */
    char big[600];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0;
    vp_buf_reset(&b);
    CHECK_OK(vp_buf_printf(&b, "[%s]", big));
    CHECK_INT(b.len, 601);
    vp_buf_fini(&b);
}

TEST(arena_alignment_and_large_blocks)
{
    vp_arena *a = vp_arena_new(1024);
    CHECK(a != NULL);
    for (int i = 1; i < 200; i++) {
        uint8_t *p = vp_arena_alloc(a, (size_t)i);
        CHECK(p != NULL);
        CHECK(((uintptr_t)p & 15) == 0);
        memset(p, 0xAB, (size_t)i);
    }
    uint8_t *big = vp_arena_alloc(a, 100000);
    CHECK(big != NULL);
    memset(big, 1, 100000);
    char *s = vp_arena_dup(a, "abc", 4);
    CHECK_STR(s, "abc");
    CHECK(vp_arena_used(a) >= 100000);
    vp_arena_free(a);
    vp_arena_free(NULL);
}

TEST(alloc_fault_injection)
{
    vp_alloc_fail_after(3);
    void *a = vp_malloc(1), *b = vp_malloc(1), *c = vp_malloc(1), *d = vp_malloc(1);
    vp_alloc_fail_after(0);
    CHECK(a && b);
    CHECK(c == NULL && d == NULL);
    vp_free(a);
    vp_free(b);
    vp_buf buf;
    vp_buf_init(&buf, 0);
    vp_alloc_fail_after(1);
    CHECK_INT(vp_buf_puts(&buf, "x"), VP_ENOMEM);
    vp_alloc_fail_after(0);
    vp_buf_fini(&buf);
}

TEST(checked_arithmetic)
{
    size_t out;
    CHECK_INT(vp_mul_size(SIZE_MAX / 2, 3, &out), 1);
    CHECK_INT(vp_add_size(SIZE_MAX, 1, &out), 1);
    CHECK_INT(vp_mul_size(1000, 1000, &out), 0);
    CHECK_INT(out, 1000000);
    uint64_t u;
    CHECK_INT(vp_mul_u64(UINT64_MAX / 3 + 1, 3, &u), 1);
}

TEST(endian_helpers)
{
    uint8_t b[4];
    vp_put_le32(b, 0x11223344);
    CHECK_INT(b[0], 0x44);
    CHECK_INT(vp_le32(b), 0x11223344);
    CHECK_INT(vp_be32(b), 0x44332211);
    vp_put_be16(b, 0x0102);
    CHECK_INT(vp_le16(b), 0x0201);
}

int main(void)
{
    RUN(error_first_wins);
    RUN(error_message_truncates);
    RUN(buf_grows_and_caps);
    RUN(arena_alignment_and_large_blocks);
    RUN(alloc_fault_injection);
    RUN(checked_arithmetic);
    RUN(endian_helpers);
    DONE();
}
