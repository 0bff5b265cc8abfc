/*
 * test_tensor_mem.c: the allocator hook, the storage cache and frames
 * (tensor/core.c), proved the way Lua's test allocator proves lmem.c: a
 * hook that counts live blocks, checks that every free names the size of
 * its allocation, and refuses the k-th allocation on demand.
 *
 * Each test installs its hook only after the cache is trimmed and no tensor
 * is alive (the contract of lt_set_allocator) and restores the default
 * (lt_set_allocator(NULL, NULL)) before it ends.
 */
#include "tensor/tensor.h"

#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SH(...) ((const int64_t[]){__VA_ARGS__})
#define DIMS(...) ((const int[]){__VA_ARGS__})

/* ------------------------------------------------------------------ */
/* The counting, failing allocator                                     */
/* ------------------------------------------------------------------ */

#define MAX_TRACKED 100000

typedef struct counting {
    pthread_mutex_t mu;
    long allocs;        /* allocation requests seen */
    long live;          /* blocks handed out and not yet freed */
    long fail_at;       /* refuse the fail_at-th request (1-based); 0 never */
    long failed;        /* requests refused */
    long bad_size;      /* frees whose osize differs from the allocated size */
    long foreign;       /* frees of pointers this hook never handed out */
    long large;         /* requests of 3000 bytes or more */
    long ntracked;
    void *ptr[MAX_TRACKED];
    size_t size[MAX_TRACKED];
} counting;

static counting C;

static void counting_reset(long fail_at)
{
    pthread_mutex_lock(&C.mu);
    C.allocs = C.live = C.failed = C.bad_size = C.foreign = C.large = C.ntracked = 0;
    C.fail_at = fail_at;
    pthread_mutex_unlock(&C.mu);
}

static void *counting_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    counting *c = ud;
    void *p = NULL;
    pthread_mutex_lock(&c->mu);
    if (nsize == 0) {
        long i = c->ntracked - 1;
        while (i >= 0 && c->ptr[i] != ptr)
            i--;
        if (i < 0) {
            c->foreign++;
        } else {
            if (c->size[i] != osize)
                c->bad_size++;
            c->ptr[i] = c->ptr[c->ntracked - 1];
            c->size[i] = c->size[c->ntracked - 1];
            c->ntracked--;
            c->live--;
        }
        free(ptr);
    } else if (c->large += nsize >= 3000, ++c->allocs == c->fail_at) {
        c->failed++;
    } else if (c->ntracked < MAX_TRACKED) {
        /* aligned_alloc wants a multiple of the alignment */
        p = aligned_alloc(64, (nsize + 63) & ~(size_t)63);
        if (p) {
            c->ptr[c->ntracked] = p;
            c->size[c->ntracked++] = nsize;
            c->live++;
        }
    }
    pthread_mutex_unlock(&c->mu);
    return p;
}

/* Trim the cache, snapshot the counters and install the hook. */
static lt_mem_stats install_counting(long fail_at)
{
    lt_cache_trim();
    lt_mem_stats before = lt_mem_stats_get();
    ck_assert_uint_eq(before.cached_blocks, 0);
    counting_reset(fail_at);
    lt_set_allocator(counting_alloc, &C);
    return before;
}

/* Trim, check that nothing the hook handed out is still live and that the
 * library's own counters are back to `before`, then restore the default. */
static void expect_no_leak(int line, lt_mem_stats before)
{
    lt_cache_trim();
    lt_mem_stats after = lt_mem_stats_get();
    ck_assert_msg(C.live == 0, "line %d: %ld blocks from the hook still live", line, C.live);
    ck_assert_msg(C.bad_size == 0, "line %d: %ld frees named the wrong size", line, C.bad_size);
    ck_assert_msg(C.foreign == 0, "line %d: %ld frees of unknown pointers", line, C.foreign);
    ck_assert_msg(after.live_blocks == before.live_blocks, "line %d: live_blocks %zu, was %zu", line,
                  after.live_blocks, before.live_blocks);
    ck_assert_msg(after.live_bytes == before.live_bytes, "line %d: live_bytes %zu, was %zu", line,
                  after.live_bytes, before.live_bytes);
    ck_assert_msg(after.live_tensors == before.live_tensors, "line %d: live_tensors %zu, was %zu", line,
                  after.live_tensors, before.live_tensors);
    ck_assert_uint_eq(after.cached_blocks, 0);
    ck_assert_uint_eq(after.cached_bytes, 0);
}

/* ------------------------------------------------------------------ */
/* A sequence touching every kind of allocation                         */
/* ------------------------------------------------------------------ */

/* Creation, views, a copy, promotion and broadcasting, reductions (one
 * large enough to need block partials), cat, a comparison, where,
 * softmax, gather, and more than 256 frame entries so the frame grows.
 * Every result feeds the returned scalar, so any failure makes it NULL.
 * Its value: 5 softmax rows summing to 1 each, plus 20000 * 0.5. */
static lt_tensor *sequence(void)
{
    lt_tensor *a = lt_arange(0, 12, 1, LT_F32);
    lt_tensor *m = lt_reshape(a, 2, SH(3, 4));
    lt_tensor *t = lt_contiguous(lt_transpose(m, 0, 1));   /* (4,3) copy */
    lt_tensor *b = lt_add(t, lt_ones(1, SH(3), LT_F64));   /* f64 (4,3) */
    lt_tensor *r = lt_sum(b, 1, DIMS(0), true);            /* (1,3) */
    lt_tensor *c = lt_cat(2, (lt_tensor *[]){b, r}, 0);    /* (5,3) */
    lt_tensor *w = lt_where(lt_cmp_scalar(c, ">", 5), lt_mul_scalar(c, 0.01), lt_neg(c));
    lt_tensor *sm = lt_softmax(w, -1);
    lt_tensor *x = sm;
    for (int i = 0; i < 150; i++)
        x = lt_select(lt_unsqueeze(x, 0), 0, 0);
    lt_tensor *big = lt_full(1, SH(20000), 0.5, LT_F64);
    lt_tensor *bs = lt_sum(big, 0, NULL, false);
    lt_tensor *v = lt_var(sm, 1, DIMS(1), true, false);
    lt_tensor *g = lt_gather(w, 0, lt_zeros(2, SH(1, 3), LT_I64));
    lt_tensor *junk = lt_add(lt_sum(v, 0, NULL, false), lt_logsumexp(g, 0, NULL, false));
    lt_tensor *total = lt_add(lt_sum(x, 0, NULL, false), bs);
    return lt_add(total, lt_mul_scalar(junk, 0));
}

/* ------------------------------------------------------------------ */
/* Tests                                                               */
/* ------------------------------------------------------------------ */

START_TEST(a_popped_frame_and_a_trimmed_cache_leave_no_block_live)
{
    size_t outer = lt_frame_push();
    lt_mem_stats before = install_counting(0);
    size_t m = lt_frame_push();
    lt_tensor *r = sequence();
    ck_assert_msg(r != NULL, "%s", lt_last_error());
    ck_assert_double_eq_tol(lt_item(r), 10005, 1e-9);
    ck_assert(C.allocs > 300);
    ck_assert(lt_mem_stats_get().live_tensors > before.live_tensors + 256);
    lt_frame_pop(m);
    expect_no_leak(__LINE__, before);
    lt_set_allocator(NULL, NULL);
    lt_frame_pop(outer);
}
END_TEST

START_TEST(failing_the_kth_allocation_returns_null_with_a_memory_error_and_leaks_nothing)
{
    size_t outer = lt_frame_push();
    /* Count the allocations of a clean run. */
    lt_mem_stats before = install_counting(0);
    size_t m = lt_frame_push();
    ck_assert_ptr_nonnull(sequence());
    lt_frame_pop(m);
    long n = C.allocs;
    expect_no_leak(__LINE__, before);
    lt_set_allocator(NULL, NULL);
    ck_assert(n > 300);

    for (long k = 1; k <= n; k++) {
        before = install_counting(k);
        lt_clear_error();
        m = lt_frame_push();
        lt_tensor *r = sequence();
        ck_assert_msg(C.failed == 1, "k=%ld: the hook refused %ld requests", k, C.failed);
        ck_assert_msg(r == NULL, "k=%ld: the sequence succeeded although allocation %ld failed", k, k);
        ck_assert_msg(strstr(lt_last_error(), "memory") != NULL, "k=%ld: message \"%s\" does not mention memory",
                      k, lt_last_error());
        lt_frame_pop(m);
        expect_no_leak(__LINE__, before);
        lt_set_allocator(NULL, NULL);
    }
    lt_frame_pop(outer);
}
END_TEST

START_TEST(failing_allocations_in_each_op_kind_return_null_and_leak_nothing)
{
    /* Each op alone, failing at every one of its own allocations (the
     * inputs are built first, with nothing refused). */
    size_t outer = lt_frame_push();
    for (int op = 0; op < 27; op++) {
        for (long k = 1;; k++) {
            lt_mem_stats before = install_counting(0);
            size_t m = lt_frame_push();
            lt_tensor *x = lt_reshape(lt_arange(0, 6, 1, LT_F32), 2, SH(2, 3));
            lt_tensor *xt = lt_transpose(x, 0, 1);
            lt_tensor *one64 = lt_ones(1, SH(2), LT_F64), *onei = lt_ones(1, SH(2), LT_I64);
            lt_tensor *mask = lt_cmp_scalar(xt, ">", 2), *idx = lt_zeros(1, SH(2), LT_I64);
            lt_tensor *sq = lt_reshape(lt_arange(0, 4, 1, LT_F64), 2, SH(2, 2));
            lt_tensor *idx2 = lt_zeros(2, SH(3, 2), LT_I64);
            ck_assert(x && xt && one64 && onei && mask && idx && sq && idx2);
            C.fail_at = C.allocs + k;
            lt_clear_error();
            lt_tensor *r = NULL;
            switch (op) {
            case 0: r = lt_zeros(2, SH(100, 100), LT_F64); break;
            case 1: r = lt_clone(xt); break;
            case 2: r = lt_reshape(xt, 1, SH(6)); break;
            case 3: r = lt_exp(xt); break;
            case 4: r = lt_add(xt, one64); break;
            case 5: r = lt_eq(xt, onei); break;
            case 6: r = lt_var(lt_expand(xt, 3, SH(10000, 3, 2)), 1, DIMS(0), true, false); break;
            case 7: r = lt_logsumexp(xt, 0, NULL, true); break;
            case 8: r = lt_cat(3, (lt_tensor *[]){x, x, x}, 1); break;
            case 9: r = lt_stack(2, (lt_tensor *[]){xt, xt}, 0); break;
            case 10: r = lt_masked_fill(xt, mask, -1); break;
            case 11: r = lt_index_select(xt, 0, idx); break;
            case 12: r = lt_copy_(sq, lt_transpose(sq, 0, 1)); break; /* overlap: temporary */
            case 13: r = lt_fill_(xt, 2); break;
            case 14: r = lt_cmp_scalar(xt, "<", 1); break;
            case 15: r = lt_softmax(xt, 0); break;
            case 16: r = lt_gather(xt, 1, idx2); break;
            case 17: r = lt_scatter_add(xt, 0, idx2, 2, SH(3, 2)); break;
            case 18: r = lt_index_add(xt, 1, idx, 3); break;
            case 19: r = lt_one_hot(idx2, 4, LT_F32); break;
            case 20: r = lt_where(mask, xt, lt_transpose(x, 0, 1)); break;
            case 21: r = lt_sum_to(xt, 1, SH(2)); break;
            case 22: r = lt_argmax(xt, 1, false); break;
            case 23: r = lt_to_dtype(xt, LT_U8); break;
            case 24: r = lt_full(3, SH(2, 2, 2), 1.5, LT_F32); break;
            case 25: r = lt_sum(lt_expand(xt, 3, SH(10000, 3, 2)), 2, DIMS(0, 2), false); break;
            case 26: r = lt_zeros_like(xt); break;
            }
            bool refused = C.failed == 1;
            if (refused) {
                ck_assert_msg(r == NULL, "op %d, k=%ld: succeeded although an allocation failed", op, k);
                ck_assert_msg(strstr(lt_last_error(), "memory") != NULL, "op %d, k=%ld: message \"%s\"", op, k,
                              lt_last_error());
            } else {
                ck_assert_msg(r != NULL, "op %d: %s", op, lt_last_error());
            }
            lt_frame_pop(m);
            expect_no_leak(__LINE__, before);
            lt_set_allocator(NULL, NULL);
            if (!refused)
                break; /* k is past the op's last allocation */
        }
    }
    lt_frame_pop(outer);
}
END_TEST

START_TEST(lt_alloc_and_lt_free_go_through_the_hook_and_report_failure)
{
    size_t outer = lt_frame_push();
    lt_mem_stats before = install_counting(2);
    void *p = lt_alloc(100);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq((uintptr_t)p % 64, 0);
    memset(p, 0xab, 100);
    ck_assert_int_eq(C.live, 1);
    ck_assert_uint_eq(lt_mem_stats_get().live_blocks, before.live_blocks + 1);
    ck_assert_uint_eq(lt_mem_stats_get().live_bytes, before.live_bytes + 100);
    lt_clear_error();
    ck_assert_ptr_null(lt_alloc(1000)); /* the second request is refused */
    ck_assert_ptr_nonnull(strstr(lt_last_error(), "memory"));
    ck_assert_uint_eq(lt_mem_stats_get().live_blocks, before.live_blocks + 1);
    lt_free(p, 100);
    lt_free(NULL, 5);
    /* Zero-byte requests still give a distinct, freeable block. */
    void *z = lt_alloc(0);
    ck_assert_ptr_nonnull(z);
    lt_free(z, 0);
    expect_no_leak(__LINE__, before);
    /* After restoring the default the hook sees nothing more. */
    lt_set_allocator(NULL, NULL);
    long seen = C.allocs;
    size_t m = lt_frame_push();
    ck_assert_ptr_nonnull(lt_zeros(1, SH(10), LT_F32));
    lt_frame_pop(m);
    ck_assert_int_eq(C.allocs, seen);
    lt_cache_trim();
    lt_frame_pop(outer);
}
END_TEST

START_TEST(the_cache_reuses_freed_buffers_and_trim_returns_them)
{
    size_t outer = lt_frame_push();
    lt_mem_stats before = install_counting(0);
    size_t m = lt_frame_push();
    lt_tensor *x = lt_zeros(1, SH(1000), LT_F32);
    void *buf = lt_data(x);
    lt_frame_pop(m);
    /* the 4000-byte buffer is parked, not freed */
    lt_mem_stats parked = lt_mem_stats_get();
    ck_assert_uint_eq(parked.cached_blocks, 1);
    ck_assert_uint_ge(parked.cached_bytes, 4000);
    ck_assert_uint_eq(parked.live_blocks, before.live_blocks + 1);
    ck_assert_uint_eq(parked.live_tensors, before.live_tensors);
    /* a request of the same size class (3980 bytes) reuses it: the hook
     * sees only small requests (storage header, tensor handle, frame) */
    m = lt_frame_push();
    long large = C.large;
    lt_tensor *y = lt_empty(1, SH(995), LT_F32);
    ck_assert_ptr_eq(lt_data(y), buf);
    ck_assert_uint_eq(lt_mem_stats_get().cached_blocks, 0);
    ck_assert_int_eq(C.large, large);
    lt_frame_pop(m);
    expect_no_leak(__LINE__, before);
    lt_set_allocator(NULL, NULL);
    lt_frame_pop(outer);
}
END_TEST

START_TEST(views_and_retained_tensors_keep_storage_alive_until_the_last_release)
{
    size_t outer = lt_frame_push();
    lt_mem_stats before = install_counting(0);
    size_t m = lt_frame_push();
    lt_tensor *base = lt_arange(0, 6, 1, LT_F64);
    lt_tensor *v = lt_retain(lt_slice(lt_reshape(base, 2, SH(2, 3)), 1, 1, 3, 1));
    lt_frame_pop(m);
    /* base and the reshape are gone, the slice holds the storage */
    ck_assert_uint_eq(lt_mem_stats_get().live_tensors, before.live_tensors + 1);
    ck_assert(lt_item_at(v, 0) == 1 && lt_item_at(v, 1) == 2 && lt_item_at(v, 2) == 4 && lt_item_at(v, 3) == 5);
    lt_release(v);
    expect_no_leak(__LINE__, before);
    lt_set_allocator(NULL, NULL);
    lt_frame_pop(outer);
}
END_TEST

static void *release_on_thread(void *t)
{
    lt_release(t);
    return NULL;
}

START_TEST(tensors_released_on_another_thread_are_freed)
{
    size_t outer = lt_frame_push();
    lt_mem_stats before = install_counting(0);
    size_t m = lt_frame_push();
    lt_tensor *x = lt_retain(lt_ones(1, SH(64), LT_F32));
    lt_frame_pop(m);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, release_on_thread, x), 0);
    pthread_join(th, NULL);
    ck_assert_uint_eq(lt_mem_stats_get().live_tensors, before.live_tensors);
    expect_no_leak(__LINE__, before);
    lt_set_allocator(NULL, NULL);
    lt_frame_pop(outer);
}
END_TEST

static Suite *tensor_mem_suite(void)
{
    Suite *s = suite_create("tensor_mem");
    TCase *tc = tcase_create("allocator");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, a_popped_frame_and_a_trimmed_cache_leave_no_block_live);
    tcase_add_test(tc, failing_the_kth_allocation_returns_null_with_a_memory_error_and_leaks_nothing);
    tcase_add_test(tc, failing_allocations_in_each_op_kind_return_null_and_leak_nothing);
    tcase_add_test(tc, lt_alloc_and_lt_free_go_through_the_hook_and_report_failure);
    tcase_add_test(tc, the_cache_reuses_freed_buffers_and_trim_returns_them);
    tcase_add_test(tc, views_and_retained_tensors_keep_storage_alive_until_the_last_release);
    tcase_add_test(tc, tensors_released_on_another_thread_are_freed);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    pthread_mutex_init(&C.mu, NULL);
    SRunner *sr = srunner_create(tensor_mem_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
