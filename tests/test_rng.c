/*
 * test_rng.c: the counter-based generator (tensor/rng.c).
 *
 * Expected values come from the Random123 known-answer vector for
 * Philox-4x32-10, from the counter layout documented in rng.c, and from
 * the moments of the target distributions (tolerances are several standard
 * errors on 1e6 samples, so a correct generator fails with negligible
 * probability, and the seeds are fixed anyway).
 */
#include "tensor/tensor.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define N_STATS 1000000

static bool same_bytes(const lt_tensor *x, const lt_tensor *y)
{
    return lt_numel(x) == lt_numel(y) && lt_dtype_of(x) == lt_dtype_of(y) &&
           memcmp(lt_data(x), lt_data(y), (size_t)lt_numel(x) * lt_dtype_size(lt_dtype_of(x))) == 0;
}

static void moments(const lt_tensor *t, double *mean, double *var)
{
    int64_t n = lt_numel(t);
    double s = 0, s2 = 0;
    for (int64_t i = 0; i < n; i++) {
        double v = lt_item_at(t, i);
        s += v;
        s2 += v * v;
    }
    *mean = s / n;
    *var = s2 / n - *mean * *mean;
}

START_TEST(philox_matches_random123_known_answer)
{
    /* Random123 kat_vectors: philox4x32 10 rounds, ctr 0, key 0 ->
     * 6627e8d5 e169c58d bc57ac4c 9b00dbd8; u64 is (x1 << 32) | x0. */
    lt_rng r = lt_rng_new(0);
    ck_assert_uint_eq(lt_rng_u64(&r), 0xe169c58d6627e8d5ull);
    ck_assert_uint_eq(r.counter, 1);
    ck_assert_uint_eq(r.seed, 0);
}
END_TEST

START_TEST(same_seed_gives_identical_draws)
{
    size_t m = lt_frame_push();
    lt_rng r1 = lt_rng_new(1234), r2 = lt_rng_new(1234);
    int64_t sh[] = {7, 13};
    ck_assert(same_bytes(lt_rand_uniform(&r1, 2, sh, -1, 1, LT_F32),
                         lt_rand_uniform(&r2, 2, sh, -1, 1, LT_F32)));
    ck_assert(same_bytes(lt_rand_normal(&r1, 2, sh, 0, 1, LT_F64),
                         lt_rand_normal(&r2, 2, sh, 0, 1, LT_F64)));
    ck_assert(same_bytes(lt_rand_bernoulli(&r1, 2, sh, 0.5, LT_U8),
                         lt_rand_bernoulli(&r2, 2, sh, 0.5, LT_U8)));
    ck_assert(same_bytes(lt_randperm(&r1, 50), lt_randperm(&r2, 50)));
    ck_assert_uint_eq(lt_rng_u64(&r1), lt_rng_u64(&r2));
    ck_assert(lt_rng_uniform(&r1) == lt_rng_uniform(&r2));
    lt_frame_pop(m);
}
END_TEST

START_TEST(different_seeds_differ)
{
    size_t m = lt_frame_push();
    lt_rng r1 = lt_rng_new(1), r2 = lt_rng_new(2);
    int64_t sh[] = {1000};
    lt_tensor *x = lt_rand_uniform(&r1, 1, sh, 0, 1, LT_F64);
    lt_tensor *y = lt_rand_uniform(&r2, 1, sh, 0, 1, LT_F64);
    int equal = 0;
    for (int i = 0; i < 1000; i++)
        equal += lt_item_at(x, i) == lt_item_at(y, i);
    ck_assert_int_eq(equal, 0);
    /* Seeds differing only in the high word differ too. */
    lt_rng r3 = lt_rng_new(1ull << 40), r4 = lt_rng_new(0);
    ck_assert_uint_ne(lt_rng_u64(&r3), lt_rng_u64(&r4));
    lt_frame_pop(m);
}
END_TEST

START_TEST(draw_of_n_advances_counter_by_n_and_splits_cleanly)
{
    size_t m = lt_frame_push();
    lt_rng r = lt_rng_new(99);
    lt_rand_normal(&r, 2, (int64_t[]){3, 5}, 0, 1, LT_F32);
    ck_assert_uint_eq(r.counter, 15);
    lt_rand_bernoulli(&r, 0, NULL, 0.5, LT_I64); /* scalar: one element */
    ck_assert_uint_eq(r.counter, 16);
    lt_rand_uniform(&r, 1, (int64_t[]){0}, 0, 1, LT_F64);
    ck_assert_uint_eq(r.counter, 16);

    /* Element i depends on (seed, counter, i) only: 10 then 20 elements equal
     * one draw of 30. */
    lt_rng a = lt_rng_new(7), b = lt_rng_new(7);
    lt_tensor *x1 = lt_rand_uniform(&a, 1, (int64_t[]){10}, 0, 1, LT_F64);
    lt_tensor *x2 = lt_rand_uniform(&a, 1, (int64_t[]){20}, 0, 1, LT_F64);
    lt_tensor *y = lt_rand_uniform(&b, 1, (int64_t[]){30}, 0, 1, LT_F64);
    for (int i = 0; i < 10; i++)
        ck_assert(lt_item_at(x1, i) == lt_item_at(y, i));
    for (int i = 0; i < 20; i++)
        ck_assert(lt_item_at(x2, i) == lt_item_at(y, 10 + i));
    ck_assert_uint_eq(a.counter, b.counter);
    lt_frame_pop(m);
}
END_TEST

START_TEST(draws_are_bitwise_identical_for_any_thread_count)
{
    size_t m = lt_frame_push();
    int64_t sh[] = {1 << 20};
    lt_tensor *r1[4], *r2[4];
    for (int pass = 0; pass < 2; pass++) {
        lt_set_num_threads(pass == 0 ? 1 : 2);
        lt_rng r = lt_rng_new(2024);
        r.counter = 0xFFFFFFF0ull; /* cross a 32-bit word boundary in the counter */
        lt_tensor **o = pass == 0 ? r1 : r2;
        o[0] = lt_rand_uniform(&r, 1, sh, -3, 5, LT_F32);
        o[1] = lt_rand_normal(&r, 1, sh, 1, 2, LT_F64);
        o[2] = lt_rand_bernoulli(&r, 1, sh, 0.25, LT_U8);
        o[3] = lt_rand_uniform(&r, 1, sh, 0, 1, LT_F64);
    }
    for (int k = 0; k < 4; k++)
        ck_assert_msg(same_bytes(r1[k], r2[k]), "draw %d differs between 1 and 2 threads", k);
    lt_frame_pop(m);
}
END_TEST

START_TEST(copied_state_reproduces_the_stream)
{
    size_t m = lt_frame_push();
    lt_rng r = lt_rng_new(555);
    lt_rand_uniform(&r, 1, (int64_t[]){17}, 0, 1, LT_F32);
    lt_rng saved = r; /* what a checkpoint stores */
    lt_tensor *x = lt_rand_normal(&r, 1, (int64_t[]){100}, 0, 1, LT_F32);
    uint64_t u = lt_rng_u64(&r);
    lt_tensor *p = lt_randperm(&r, 30);

    lt_rng back = saved;
    ck_assert(same_bytes(x, lt_rand_normal(&back, 1, (int64_t[]){100}, 0, 1, LT_F32)));
    ck_assert_uint_eq(u, lt_rng_u64(&back));
    ck_assert(same_bytes(p, lt_randperm(&back, 30)));
    ck_assert_uint_eq(back.counter, r.counter);
    lt_frame_pop(m);
}
END_TEST

START_TEST(uniform_moments_and_range)
{
    size_t m = lt_frame_push();
    double lo = -2, hi = 3;
    for (int d = 0; d < 2; d++) {
        lt_dtype dt = d ? LT_F64 : LT_F32;
        lt_rng r = lt_rng_new(11 + d);
        lt_tensor *t = lt_rand_uniform(&r, 2, (int64_t[]){1000, N_STATS / 1000}, lo, hi, dt);
        ck_assert_ptr_nonnull(t);
        ck_assert_int_eq(lt_dtype_of(t), dt);
        double mean, var, mn = INFINITY, mx = -INFINITY;
        moments(t, &mean, &var);
        for (int64_t i = 0; i < N_STATS; i++) {
            double v = lt_item_at(t, i);
            mn = fmin(mn, v);
            mx = fmax(mx, v);
        }
        /* standard error of the mean: sqrt(25/12/1e6) = 0.0014 */
        ck_assert_double_eq_tol(mean, (lo + hi) / 2, 0.008);
        ck_assert_double_eq_tol(var, (hi - lo) * (hi - lo) / 12, 0.02);
        ck_assert(mn >= lo && mx < hi);
        ck_assert(mn < lo + 1e-3 && mx > hi - 1e-3);
    }
    lt_frame_pop(m);
}
END_TEST

START_TEST(uniform_f32_uses_24_bits_f64_uses_53)
{
    size_t m = lt_frame_push();
    lt_rng r = lt_rng_new(3);
    lt_tensor *f = lt_rand_uniform(&r, 1, (int64_t[]){4096}, 0, 1, LT_F32);
    lt_tensor *d = lt_rand_uniform(&r, 1, (int64_t[]){4096}, 0, 1, LT_F64);
    int fine_bits = 0, off_grid = 0;
    for (int i = 0; i < 4096; i++) {
        double v = lt_item_at(f, i) * 0x1p24;
        off_grid += v != floor(v); /* not a multiple of 2^-24 */
        double w = lt_item_at(d, i) * 0x1p53;
        off_grid += w != floor(w);
        fine_bits += fmod(w, 0x1p29) != 0; /* bits below f32 resolution used */
    }
    ck_assert_int_eq(off_grid, 0);
    ck_assert_int_gt(fine_bits, 4000);
    lt_frame_pop(m);
}
END_TEST

START_TEST(normal_moments)
{
    size_t m = lt_frame_push();
    lt_rng r = lt_rng_new(17);
    lt_tensor *t = lt_rand_normal(&r, 1, (int64_t[]){N_STATS}, 0, 1, LT_F64);
    double mean, var;
    moments(t, &mean, &var);
    ck_assert_double_eq_tol(mean, 0, 0.006);
    ck_assert_double_eq_tol(sqrt(var), 1, 0.005);
    /* fourth moment 3 and P(|z| < 1) = 0.6827 */
    double k4 = 0;
    int64_t inside = 0;
    for (int64_t i = 0; i < N_STATS; i++) {
        double z = lt_item_at(t, i);
        k4 += z * z * z * z;
        inside += fabs(z) < 1;
    }
    ck_assert_double_eq_tol(k4 / N_STATS, 3.0, 0.05);
    ck_assert_double_eq_tol((double)inside / N_STATS, 0.682689, 0.003);

    lt_tensor *s = lt_rand_normal(&r, 1, (int64_t[]){N_STATS}, 3, 2, LT_F32);
    moments(s, &mean, &var);
    ck_assert_double_eq_tol(mean, 3, 0.012);
    ck_assert_double_eq_tol(sqrt(var), 2, 0.01);

    lt_tensor *z = lt_rand_normal(&r, 1, (int64_t[]){10}, 4, 0, LT_F32);
    for (int i = 0; i < 10; i++)
        ck_assert(lt_item_at(z, i) == 4.0);
    lt_frame_pop(m);
}
END_TEST

START_TEST(bernoulli_fraction_matches_p_in_every_dtype)
{
    size_t m = lt_frame_push();
    lt_dtype dts[] = {LT_F32, LT_F64, LT_I64, LT_U8};
    for (int k = 0; k < 4; k++) {
        lt_rng r = lt_rng_new(100 + k);
        lt_tensor *t = lt_rand_bernoulli(&r, 1, (int64_t[]){N_STATS}, 0.3, dts[k]);
        ck_assert_int_eq(lt_dtype_of(t), dts[k]);
        int64_t ones = 0, other = 0;
        for (int64_t i = 0; i < N_STATS; i++) {
            double v = lt_item_at(t, i);
            other += v != 0 && v != 1;
            ones += v == 1;
        }
        ck_assert_int_eq(other, 0);
        /* standard error sqrt(.21/1e6) = 0.00046 */
        ck_assert_double_eq_tol((double)ones / N_STATS, 0.3, 0.003);
    }
    lt_rng r = lt_rng_new(5);
    lt_tensor *z = lt_rand_bernoulli(&r, 1, (int64_t[]){1000}, 0, LT_F32);
    lt_tensor *o = lt_rand_bernoulli(&r, 1, (int64_t[]){1000}, 1, LT_F32);
    int wrong = 0;
    for (int i = 0; i < 1000; i++)
        wrong += lt_item_at(z, i) != 0 || lt_item_at(o, i) != 1;
    ck_assert_int_eq(wrong, 0);
    lt_frame_pop(m);
}
END_TEST

START_TEST(randperm_is_a_permutation_and_not_identity)
{
    size_t m = lt_frame_push();
    lt_rng r = lt_rng_new(8);
    lt_tensor *p = lt_randperm(&r, 100);
    ck_assert_int_eq(lt_dtype_of(p), LT_I64);
    ck_assert_int_eq(lt_ndim(p), 1);
    ck_assert_int_eq(lt_size(p, 0), 100);
    int seen[100] = {0}, fixed = 0;
    const int64_t *v = lt_data(p);
    for (int i = 0; i < 100; i++) {
        ck_assert(v[i] >= 0 && v[i] < 100);
        seen[v[i]]++;
        fixed += v[i] == i;
    }
    for (int i = 0; i < 100; i++)
        ck_assert_int_eq(seen[i], 1);
    ck_assert_int_lt(fixed, 100);
    ck_assert_int_eq(lt_numel(lt_randperm(&r, 0)), 0);
    ck_assert(lt_item_at(lt_randperm(&r, 1), 0) == 0);
    lt_frame_pop(m);
}
END_TEST

START_TEST(randperm_is_uniform_over_permutations)
{
    /* 24000 permutations of 4: each of the 24 should appear ~1000 times.
     * Chi-square with 23 dof: P(X > 60) < 1e-4. */
    size_t m = lt_frame_push();
    lt_rng r = lt_rng_new(31337);
    int count[256] = {0};
    for (int k = 0; k < 24000; k++) {
        size_t mk = lt_frame_push();
        const int64_t *v = lt_data(lt_randperm(&r, 4));
        count[v[0] * 64 + v[1] * 16 + v[2] * 4 + v[3]]++;
        lt_frame_pop(mk);
    }
    double chi2 = 0;
    int distinct = 0;
    for (int i = 0; i < 256; i++)
        if (count[i]) {
            distinct++;
            chi2 += (count[i] - 1000.0) * (count[i] - 1000.0) / 1000.0;
        }
    ck_assert_int_eq(distinct, 24);
    ck_assert_double_lt(chi2, 60);
    lt_frame_pop(m);
}
END_TEST

START_TEST(scalar_draws_u64_and_uniform)
{
    lt_rng r = lt_rng_new(77);
    double s = 0;
    int outside = 0;
    for (int i = 0; i < 100000; i++) {
        double u = lt_rng_uniform(&r);
        outside += !(u >= 0 && u < 1);
        s += u;
    }
    ck_assert_int_eq(outside, 0);
    ck_assert_double_eq_tol(s / 100000, 0.5, 0.005);
    ck_assert_uint_eq(r.counter, 100000);
    /* Bits of u64 are balanced: each of the 64 set about half the time. */
    int bits[64] = {0};
    for (int i = 0; i < 20000; i++) {
        uint64_t x = lt_rng_u64(&r);
        for (int b = 0; b < 64; b++)
            bits[b] += (x >> b) & 1;
    }
    for (int b = 0; b < 64; b++)
        ck_assert_int_lt(abs(bits[b] - 10000), 600);
}
END_TEST

static void assert_fails(lt_tensor *t, const char *op)
{
    ck_assert_ptr_null(t);
    ck_assert_msg(strstr(lt_last_error(), op) != NULL, "error \"%s\" does not name %s",
                  lt_last_error(), op);
}

START_TEST(bad_arguments_return_null_with_op_name)
{
    size_t m = lt_frame_push();
    lt_rng r = lt_rng_new(1);
    int64_t sh[] = {4};
    assert_fails(lt_rand_uniform(&r, 1, sh, 2, 1, LT_F32), "rand_uniform");
    assert_fails(lt_rand_uniform(&r, 1, sh, 0, 1, LT_I64), "rand_uniform");
    assert_fails(lt_rand_uniform(&r, 1, (int64_t[]){-3}, 0, 1, LT_F32), "rand_uniform");
    assert_fails(lt_rand_uniform(&r, LT_MAX_DIMS + 1, sh, 0, 1, LT_F32), "rand_uniform");
    assert_fails(lt_rand_uniform(&r, 1, sh, 0, NAN, LT_F32), "rand_uniform");
    assert_fails(lt_rand_normal(&r, 1, sh, 0, -1, LT_F64), "rand_normal");
    assert_fails(lt_rand_normal(&r, 1, sh, 0, 1, LT_U8), "rand_normal");
    assert_fails(lt_rand_bernoulli(&r, 1, sh, 1.5, LT_F32), "rand_bernoulli");
    assert_fails(lt_rand_bernoulli(&r, 1, sh, -0.1, LT_U8), "rand_bernoulli");
    assert_fails(lt_rand_bernoulli(&r, 1, sh, NAN, LT_U8), "rand_bernoulli");
    assert_fails(lt_randperm(&r, -1), "randperm");
    assert_fails(lt_rand_uniform(NULL, 1, sh, 0, 1, LT_F32), "rand_uniform");
    ck_assert_uint_eq(r.counter, 0); /* failed draws consume nothing */
    lt_frame_pop(m);
}
END_TEST

START_TEST(draws_release_everything_at_frame_pop)
{
    lt_mem_stats before = lt_mem_stats_get();
    size_t m = lt_frame_push();
    lt_rng r = lt_rng_new(1);
    lt_rand_uniform(&r, 2, (int64_t[]){10, 10}, 0, 1, LT_F32);
    lt_rand_normal(&r, 1, (int64_t[]){10}, 0, 1, LT_F64);
    lt_rand_bernoulli(&r, 1, (int64_t[]){10}, 0.5, LT_U8);
    lt_randperm(&r, 10);
    ck_assert_uint_eq(lt_mem_stats_get().live_tensors, before.live_tensors + 4);
    lt_frame_pop(m);
    ck_assert_uint_eq(lt_mem_stats_get().live_tensors, before.live_tensors);
}
END_TEST

static Suite *rng_suite(void)
{
    Suite *s = suite_create("rng");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, philox_matches_random123_known_answer);
    tcase_add_test(tc, same_seed_gives_identical_draws);
    tcase_add_test(tc, different_seeds_differ);
    tcase_add_test(tc, draw_of_n_advances_counter_by_n_and_splits_cleanly);
    tcase_add_test(tc, draws_are_bitwise_identical_for_any_thread_count);
    tcase_add_test(tc, copied_state_reproduces_the_stream);
    tcase_add_test(tc, uniform_moments_and_range);
    tcase_add_test(tc, uniform_f32_uses_24_bits_f64_uses_53);
    tcase_add_test(tc, normal_moments);
    tcase_add_test(tc, bernoulli_fraction_matches_p_in_every_dtype);
    tcase_add_test(tc, randperm_is_a_permutation_and_not_identity);
    tcase_add_test(tc, randperm_is_uniform_over_permutations);
    tcase_add_test(tc, scalar_draws_u64_and_uniform);
    tcase_add_test(tc, bad_arguments_return_null_with_op_name);
    tcase_add_test(tc, draws_release_everything_at_frame_pop);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(rng_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failures = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failures ? 1 : 0;
}
