/*
 * test_matmul.c: lt_matmul (tensor/matmul.c) against a naive triple loop.
 *
 * The reference reads operands element by element through lt_item_at, so it
 * sees only logical values, never strides: it is independent of the BLAS
 * layout logic under test. Sums are in f64; f32 results must agree to 1e-4
 * relative, f64 to 1e-12.
 */
#include "tensor/tensor.h"
#include "tensor/tensor_internal.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static lt_rng rng;

static lt_tensor *rnd(int ndim, const int64_t *shape, lt_dtype dt)
{
    return lt_rand_uniform(&rng, ndim, shape, -1, 1, dt);
}

static double tol_of(lt_dtype dt) { return dt == LT_F32 ? 1e-4 : 1e-12; }

/* Flat index into t's logical shape of the element that output batch index
 * (right-aligned, broadcast) and (row, col) select. */
static int64_t bcast_flat(const lt_tensor *t, int nb, const int64_t *bidx, int64_t row, int64_t col)
{
    int n = lt_ndim(t);
    const int64_t *sh = lt_shape(t);
    int64_t flat = 0;
    for (int d = 0; d < n - 2; d++) {
        int ob = nb - (n - 2) + d;
        int64_t i = sh[d] == 1 ? 0 : bidx[ob];
        flat = flat * sh[d] + i;
    }
    flat = flat * sh[n - 2] + row;
    return flat * sh[n - 1] + col;
}

/* Checks got == a @ b for a, b of rank >= 2 with NumPy broadcasting. */
static void check_nd(const lt_tensor *a, const lt_tensor *b, const lt_tensor *got)
{
    ck_assert_ptr_nonnull(got);
    int na = lt_ndim(a), nbt = lt_ndim(b);
    int nb = (na > nbt ? na : nbt) - 2;
    int64_t M = lt_size(a, -2), K = lt_size(a, -1), N = lt_size(b, -1);
    ck_assert_int_eq(lt_ndim(got), nb + 2);
    ck_assert_int_eq(lt_size(got, -2), M);
    ck_assert_int_eq(lt_size(got, -1), N);
    ck_assert_int_eq(lt_dtype_of(got), lt_dtype_of(a));
    ck_assert(lt_is_contiguous(got));
    int64_t batch = 1, oshape[LT_MAX_DIMS];
    for (int i = 0; i < nb; i++) {
        int da = i - (nb - (na - 2)), db = i - (nb - (nbt - 2));
        int64_t sa = da >= 0 ? lt_shape(a)[da] : 1, sb = db >= 0 ? lt_shape(b)[db] : 1;
        oshape[i] = sa == 1 ? sb : sa;
        ck_assert_int_eq(lt_shape(got)[i], oshape[i]);
        batch *= oshape[i];
    }
    double tol = tol_of(lt_dtype_of(a)), worst = 0;
    for (int64_t bi = 0; bi < batch; bi++) {
        int64_t bidx[LT_MAX_DIMS], rem = bi;
        for (int i = nb - 1; i >= 0; i--) {
            bidx[i] = rem % oshape[i];
            rem /= oshape[i];
        }
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                double ref = 0;
                for (int64_t k = 0; k < K; k++)
                    ref += lt_item_at(a, bcast_flat(a, nb, bidx, i, k)) *
                           lt_item_at(b, bcast_flat(b, nb, bidx, k, j));
                double g = lt_item_at(got, (bi * M + i) * N + j);
                double err = fabs(g - ref) / (1 + fabs(ref));
                worst = err > worst ? err : worst;
            }
    }
    ck_assert_msg(worst <= tol, "max relative error %g > %g", worst, tol);
}

static void check_close(const lt_tensor *x, const lt_tensor *y, double tol)
{
    ck_assert_ptr_nonnull(x);
    ck_assert_ptr_nonnull(y);
    ck_assert_int_eq(lt_ndim(x), lt_ndim(y));
    for (int i = 0; i < lt_ndim(x); i++)
        ck_assert_int_eq(lt_shape(x)[i], lt_shape(y)[i]);
    double worst = 0;
    for (int64_t i = 0; i < lt_numel(x); i++) {
        double e = fabs(lt_item_at(x, i) - lt_item_at(y, i)) / (1 + fabs(lt_item_at(y, i)));
        worst = e > worst ? e : worst;
    }
    ck_assert_msg(worst <= tol, "max relative difference %g > %g", worst, tol);
}

static void setup(void) { rng = lt_rng_new(12345); }

START_TEST(matmul_2d_matches_naive_loop_on_random_shapes)
{
    size_t m = lt_frame_push();
    for (int d = 0; d < 2; d++) {
        lt_dtype dt = d ? LT_F64 : LT_F32;
        for (int trial = 0; trial < 12; trial++) {
            int64_t M = 1 + (int64_t)(lt_rng_uniform(&rng) * 40);
            int64_t K = 1 + (int64_t)(lt_rng_uniform(&rng) * 40);
            int64_t N = 1 + (int64_t)(lt_rng_uniform(&rng) * 40);
            lt_tensor *a = rnd(2, (int64_t[]){M, K}, dt), *b = rnd(2, (int64_t[]){K, N}, dt);
            check_nd(a, b, lt_matmul(a, b));
        }
    }
    lt_frame_pop(m);
}
END_TEST

START_TEST(matmul_small_hand_example)
{
    size_t m = lt_frame_push();
    double av[] = {1, 2, 3, 4, 5, 6}, bv[] = {7, 8, 9, 10, 11, 12};
    lt_tensor *a = lt_from_data(av, 2, (int64_t[]){2, 3}, LT_F64);
    lt_tensor *b = lt_from_data(bv, 2, (int64_t[]){3, 2}, LT_F64);
    lt_tensor *c = lt_matmul(a, b);
    double want[] = {58, 64, 139, 154};
    for (int i = 0; i < 4; i++)
        ck_assert_double_eq(lt_item_at(c, i), want[i]);
    lt_frame_pop(m);
}
END_TEST

START_TEST(matmul_batched_same_batch)
{
    size_t m = lt_frame_push();
    for (int d = 0; d < 2; d++) {
        lt_dtype dt = d ? LT_F64 : LT_F32;
        lt_tensor *a = rnd(3, (int64_t[]){4, 5, 7}, dt), *b = rnd(3, (int64_t[]){4, 7, 3}, dt);
        check_nd(a, b, lt_matmul(a, b));
        lt_tensor *a4 = rnd(4, (int64_t[]){2, 3, 6, 5}, dt), *b4 = rnd(4, (int64_t[]){2, 3, 5, 4}, dt);
        check_nd(a4, b4, lt_matmul(a4, b4));
    }
    lt_frame_pop(m);
}
END_TEST

START_TEST(matmul_broadcasts_batch_dims)
{
    size_t m = lt_frame_push();
    for (int d = 0; d < 2; d++) {
        lt_dtype dt = d ? LT_F64 : LT_F32;
        /* (2,1,M,K) x (3,K,N) -> (2,3,M,N) */
        lt_tensor *a = rnd(4, (int64_t[]){2, 1, 4, 6}, dt), *b = rnd(3, (int64_t[]){3, 6, 5}, dt);
        lt_tensor *c = lt_matmul(a, b);
        check_nd(a, b, c);
        ck_assert_int_eq(lt_size(c, 0), 2);
        ck_assert_int_eq(lt_size(c, 1), 3);
        /* the other way round: b carries the batch, a is one matrix */
        lt_tensor *a2 = rnd(2, (int64_t[]){4, 6}, dt);
        check_nd(a2, b, lt_matmul(a2, b));
        /* b broadcast: (B,T,C) x (1,C,N) and x (C,N): the folded single-gemm path */
        lt_tensor *x = rnd(3, (int64_t[]){3, 5, 6}, dt);
        check_nd(x, lt_slice(b, 0, 0, 1, 1), lt_matmul(x, lt_slice(b, 0, 0, 1, 1)));
        lt_tensor *w = rnd(2, (int64_t[]){6, 8}, dt);
        check_nd(x, w, lt_matmul(x, w));
    }
    lt_frame_pop(m);
}
END_TEST

START_TEST(matmul_expanded_operand_with_stride_zero)
{
    size_t m = lt_frame_push();
    lt_tensor *a = rnd(3, (int64_t[]){1, 4, 6}, LT_F64);
    lt_tensor *ae = lt_expand(a, 3, (int64_t[]){3, 4, 6});
    lt_tensor *b = rnd(3, (int64_t[]){3, 6, 2}, LT_F64);
    check_nd(ae, b, lt_matmul(ae, b));
    /* expanded b: same matrix for every batch, so a's batch may fold */
    lt_tensor *w = lt_expand(rnd(3, (int64_t[]){1, 6, 2}, LT_F64), 3, (int64_t[]){5, 6, 2});
    lt_tensor *x = rnd(3, (int64_t[]){5, 3, 6}, LT_F64);
    check_nd(x, w, lt_matmul(x, w));
    /* rows expanded inside a matrix (row stride 0) must be copied, not fed to BLAS */
    lt_tensor *row = rnd(2, (int64_t[]){1, 6}, LT_F64);
    lt_tensor *rows = lt_expand(row, 2, (int64_t[]){4, 6});
    check_nd(rows, lt_select(b, 0, 1), lt_matmul(rows, lt_select(b, 0, 1)));
    lt_frame_pop(m);
}
END_TEST

START_TEST(matmul_vector_operands_follow_numpy)
{
    size_t m = lt_frame_push();
    for (int d = 0; d < 2; d++) {
        lt_dtype dt = d ? LT_F64 : LT_F32;
        double tol = tol_of(dt);
        lt_tensor *v = rnd(1, (int64_t[]){5}, dt), *w = rnd(1, (int64_t[]){5}, dt);
        lt_tensor *A = rnd(2, (int64_t[]){5, 3}, dt), *B = rnd(2, (int64_t[]){4, 5}, dt);

        /* 1-D x 2-D: (5) @ (5,3) -> (3) */
        lt_tensor *vA = lt_matmul(v, A);
        ck_assert_ptr_nonnull(vA);
        ck_assert_int_eq(lt_ndim(vA), 1);
        ck_assert_int_eq(lt_size(vA, 0), 3);
        for (int j = 0; j < 3; j++) {
            double ref = 0;
            for (int k = 0; k < 5; k++)
                ref += lt_item_at(v, k) * lt_item_at(A, k * 3 + j);
            ck_assert_double_eq_tol(lt_item_at(vA, j), ref, tol * (1 + fabs(ref)));
        }
        /* 2-D x 1-D: (4,5) @ (5) -> (4) */
        lt_tensor *Bv = lt_matmul(B, v);
        ck_assert_ptr_nonnull(Bv);
        ck_assert_int_eq(lt_ndim(Bv), 1);
        ck_assert_int_eq(lt_size(Bv, 0), 4);
        for (int i = 0; i < 4; i++) {
            double ref = 0;
            for (int k = 0; k < 5; k++)
                ref += lt_item_at(B, i * 5 + k) * lt_item_at(v, k);
            ck_assert_double_eq_tol(lt_item_at(Bv, i), ref, tol * (1 + fabs(ref)));
        }
        /* 1-D x 1-D: dot product, a 0-dim result */
        lt_tensor *vw = lt_matmul(v, w);
        ck_assert_ptr_nonnull(vw);
        ck_assert_int_eq(lt_ndim(vw), 0);
        double ref = 0;
        for (int k = 0; k < 5; k++)
            ref += lt_item_at(v, k) * lt_item_at(w, k);
        ck_assert_double_eq_tol(lt_item(vw), ref, tol * (1 + fabs(ref)));
        /* 1-D x 3-D: (5) @ (2,5,3) -> (2,3); 3-D x 1-D: (2,4,5) @ (5) -> (2,4) */
        lt_tensor *T = rnd(3, (int64_t[]){2, 5, 3}, dt);
        lt_tensor *vT = lt_matmul(v, T);
        ck_assert_int_eq(lt_ndim(vT), 2);
        check_close(lt_unsqueeze(vT, 1), lt_matmul(lt_reshape(v, 2, (int64_t[]){1, 5}), T), tol);
        lt_tensor *S = rnd(3, (int64_t[]){2, 4, 5}, dt);
        lt_tensor *Sv = lt_matmul(S, v);
        ck_assert_int_eq(lt_ndim(Sv), 2);
        check_close(lt_unsqueeze(Sv, 2), lt_matmul(S, lt_reshape(v, 2, (int64_t[]){5, 1})), tol);
    }
    lt_frame_pop(m);
}
END_TEST

START_TEST(matmul_transposed_views_equal_contiguous_copies)
{
    size_t m = lt_frame_push();
    for (int d = 0; d < 2; d++) {
        lt_dtype dt = d ? LT_F64 : LT_F32;
        double tol = d ? 1e-13 : 1e-6;
        lt_tensor *at = rnd(2, (int64_t[]){9, 7}, dt); /* (K,M) */
        lt_tensor *bt = rnd(2, (int64_t[]){11, 9}, dt); /* (N,K) */
        lt_tensor *a = lt_transpose(at, 0, 1), *b = lt_transpose(bt, 0, 1);
        ck_assert(!lt_is_contiguous(a) && !lt_is_contiguous(b));
        lt_tensor *ac = lt_contiguous(a), *bc = lt_contiguous(b);
        lt_tensor *want = lt_matmul(ac, bc);
        check_nd(ac, bc, want);
        check_close(lt_matmul(a, b), want, tol);
        check_close(lt_matmul(a, bc), want, tol);
        check_close(lt_matmul(ac, b), want, tol);
        /* batched transposed views, the attention q @ k^T case */
        lt_tensor *q = rnd(3, (int64_t[]){3, 6, 4}, dt), *k = rnd(3, (int64_t[]){3, 5, 4}, dt);
        lt_tensor *kT = lt_transpose(k, 1, 2);
        check_nd(q, kT, lt_matmul(q, kT));
        check_close(lt_matmul(q, kT), lt_matmul(q, lt_contiguous(kT)), tol);
        /* transposed a with batch: no fold possible, per-batch Trans gemm */
        lt_tensor *xt = lt_transpose(rnd(3, (int64_t[]){3, 4, 6}, dt), 1, 2); /* (3,6,4) */
        lt_tensor *w = rnd(2, (int64_t[]){4, 2}, dt);
        check_nd(xt, w, lt_matmul(xt, w));
    }
    lt_frame_pop(m);
}
END_TEST

START_TEST(matmul_strided_slices)
{
    size_t m = lt_frame_push();
    for (int d = 0; d < 2; d++) {
        lt_dtype dt = d ? LT_F64 : LT_F32;
        lt_tensor *big = rnd(2, (int64_t[]){12, 16}, dt);
        /* step 2 along the last dim: no unit stride, must be copied */
        lt_tensor *a = lt_slice(big, 1, 1, 15, 2); /* (12,7), strides (16,2) */
        lt_tensor *b = lt_slice(lt_slice(big, 0, 0, 7, 1), 1, 0, 16, 3); /* (7,6), strides (16,3) */
        check_nd(a, b, lt_matmul(a, b));
        /* step along the row dim only: a plain larger leading dimension */
        lt_tensor *r = lt_slice(big, 0, 0, 12, 3); /* (4,16), strides (48,1) */
        lt_tensor *w = rnd(2, (int64_t[]){16, 3}, dt);
        check_nd(r, w, lt_matmul(r, w));
        /* column block of a batched tensor: rows fold with lda = 2C */
        lt_tensor *x = rnd(3, (int64_t[]){3, 4, 10}, dt);
        lt_tensor *xl = lt_slice(x, 2, 0, 5, 1); /* (3,4,5) */
        lt_tensor *v = rnd(2, (int64_t[]){5, 2}, dt);
        check_nd(xl, v, lt_matmul(xl, v));
        /* row block of a batched tensor: batch stride breaks the fold */
        lt_tensor *xr = lt_slice(lt_slice(x, 1, 1, 3, 1), 2, 0, 5, 1); /* (3,2,5) */
        check_nd(xr, v, lt_matmul(xr, v));
        /* stepped batch dim */
        lt_tensor *xs = lt_slice(x, 0, 0, 3, 2); /* (2,4,10) */
        lt_tensor *ws = rnd(2, (int64_t[]){10, 3}, dt);
        check_nd(xs, ws, lt_matmul(xs, ws));
    }
    lt_frame_pop(m);
}
END_TEST

START_TEST(matmul_zero_sized_dims)
{
    size_t m = lt_frame_push();
    for (int d = 0; d < 2; d++) {
        lt_dtype dt = d ? LT_F64 : LT_F32;
        /* K == 0: every entry is an empty sum */
        lt_tensor *a = rnd(2, (int64_t[]){3, 0}, dt), *b = rnd(2, (int64_t[]){0, 4}, dt);
        /* Dirty the cache first so zeros cannot come from fresh pages. */
        size_t mk = lt_frame_push();
        lt_full(2, (int64_t[]){3, 4}, 7.0, dt);
        lt_frame_pop(mk);
        lt_tensor *c = lt_matmul(a, b);
        ck_assert_ptr_nonnull(c);
        ck_assert_int_eq(lt_size(c, 0), 3);
        ck_assert_int_eq(lt_size(c, 1), 4);
        int nonzero = 0;
        for (int i = 0; i < 12; i++)
            nonzero += lt_item_at(c, i) != 0;
        ck_assert_int_eq(nonzero, 0);
        lt_tensor *cb = lt_matmul(rnd(3, (int64_t[]){2, 3, 0}, dt), rnd(2, (int64_t[]){0, 4}, dt));
        ck_assert_int_eq(lt_numel(cb), 24);
        nonzero = 0;
        for (int i = 0; i < 24; i++)
            nonzero += lt_item_at(cb, i) != 0;
        ck_assert_int_eq(nonzero, 0);
        /* M == 0, N == 0, empty batch */
        lt_tensor *m0 = lt_matmul(rnd(2, (int64_t[]){0, 3}, dt), rnd(2, (int64_t[]){3, 4}, dt));
        ck_assert_ptr_nonnull(m0);
        ck_assert_int_eq(lt_size(m0, 0), 0);
        ck_assert_int_eq(lt_size(m0, 1), 4);
        lt_tensor *n0 = lt_matmul(rnd(2, (int64_t[]){2, 3}, dt), rnd(2, (int64_t[]){3, 0}, dt));
        ck_assert_ptr_nonnull(n0);
        ck_assert_int_eq(lt_size(n0, 0), 2);
        ck_assert_int_eq(lt_size(n0, 1), 0);
        lt_tensor *b0 = lt_matmul(rnd(3, (int64_t[]){0, 2, 3}, dt), rnd(2, (int64_t[]){3, 4}, dt));
        ck_assert_ptr_nonnull(b0);
        ck_assert_int_eq(lt_ndim(b0), 3);
        ck_assert_int_eq(lt_numel(b0), 0);
        /* empty dot product */
        lt_tensor *e = lt_matmul(rnd(1, (int64_t[]){0}, dt), rnd(1, (int64_t[]){0}, dt));
        ck_assert_ptr_nonnull(e);
        ck_assert_double_eq(lt_item(e), 0);
    }
    lt_frame_pop(m);
}
END_TEST

static void assert_error_names(lt_tensor *t, const char *s1, const char *s2)
{
    ck_assert_ptr_null(t);
    const char *e = lt_last_error();
    ck_assert_msg(strstr(e, "matmul") != NULL, "error \"%s\" lacks the op name", e);
    ck_assert_msg(strstr(e, s1) != NULL, "error \"%s\" lacks %s", e, s1);
    ck_assert_msg(strstr(e, s2) != NULL, "error \"%s\" lacks %s", e, s2);
}

START_TEST(matmul_bad_operands_fail_with_both_shapes)
{
    size_t m = lt_frame_push();
    lt_tensor *a = lt_zeros(2, (int64_t[]){2, 3}, LT_F32), *b = lt_zeros(2, (int64_t[]){4, 5}, LT_F32);
    assert_error_names(lt_matmul(a, b), "f32(2,3)", "f32(4,5)");
    assert_error_names(lt_matmul(lt_zeros(3, (int64_t[]){2, 3, 4}, LT_F64),
                                 lt_zeros(3, (int64_t[]){5, 4, 2}, LT_F64)),
                       "f64(2,3,4)", "f64(5,4,2)");
    assert_error_names(lt_matmul(a, lt_zeros(2, (int64_t[]){3, 5}, LT_F64)), "f32(2,3)", "f64(3,5)");
    assert_error_names(lt_matmul(lt_zeros(2, (int64_t[]){2, 3}, LT_I64),
                                 lt_zeros(2, (int64_t[]){3, 2}, LT_I64)),
                       "i64(2,3)", "i64(3,2)");
    assert_error_names(lt_matmul(lt_zeros(1, (int64_t[]){3}, LT_F32), lt_zeros(1, (int64_t[]){4}, LT_F32)),
                       "f32(3)", "f32(4)");
    assert_error_names(lt_matmul(lt_zeros(1, (int64_t[]){3}, LT_F32), b), "f32(3)", "f32(4,5)");
    assert_error_names(lt_matmul(lt_scalar(1, LT_F32), a), "f32()", "f32(2,3)");
    /* NULL in, NULL out, first message kept */
    lt_set_error("earlier failure");
    ck_assert_ptr_null(lt_matmul(NULL, b));
    ck_assert_ptr_null(lt_matmul(a, NULL));
    ck_assert_str_eq(lt_last_error(), "earlier failure");
    lt_frame_pop(m);
}
END_TEST

START_TEST(matmul_result_is_new_storage_and_frame_owned)
{
    lt_mem_stats before = lt_mem_stats_get();
    size_t m = lt_frame_push();
    lt_tensor *a = rnd(2, (int64_t[]){3, 4}, LT_F32);
    lt_tensor *s = lt_slice(lt_ones(2, (int64_t[]){4, 8}, LT_F32), 1, 0, 8, 2); /* copied inside */
    lt_tensor *c = lt_matmul(a, s);
    ck_assert(!lt_shares_storage(c, a) && !lt_shares_storage(c, s));
    lt_frame_pop(m);
    lt_mem_stats after = lt_mem_stats_get();
    ck_assert_uint_eq(after.live_tensors, before.live_tensors);
    ck_assert_uint_eq(after.live_blocks - after.cached_blocks,
                      before.live_blocks - before.cached_blocks);
}
END_TEST

/* A stand-in observer: marks every output as observed and logs the calls. */
static int n_calls, n_matmul, matmul_in_ndim[2];
static int64_t matmul_out_shape[2];
static int fail_matmul;
static int dummy_meta;

static int test_observer(const lt_opcall *c)
{
    n_calls++;
    if (c->op == LT_OP_MATMUL) {
        n_matmul++;
        ck_assert_int_eq(c->nin, 2);
        matmul_in_ndim[0] = lt_ndim(c->in[0]);
        matmul_in_ndim[1] = lt_ndim(c->in[1]);
        matmul_out_shape[0] = lt_size(c->out, -2);
        matmul_out_shape[1] = lt_size(c->out, -1);
        if (fail_matmul) {
            lt_set_error("matmul: observer refused");
            return -1;
        }
    }
    c->out->ag = &dummy_meta;
    return 0;
}

static void no_free(void *p) { (void)p; }

START_TEST(matmul_reports_one_rank2_call_to_the_observer)
{
    size_t m = lt_frame_push();
    lt__set_observer(test_observer, no_free);
    lt_tensor *v = rnd(1, (int64_t[]){5}, LT_F64), *A = rnd(2, (int64_t[]){5, 3}, LT_F64);
    v->ag = &dummy_meta;
    lt_tensor *r = lt_matmul(v, A);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(n_matmul, 1);
    ck_assert_int_eq(matmul_in_ndim[0], 2);
    ck_assert_int_eq(matmul_in_ndim[1], 2);
    ck_assert_int_eq(matmul_out_shape[0], 1);
    ck_assert_int_eq(matmul_out_shape[1], 3);
    ck_assert_ptr_eq(r->ag, &dummy_meta); /* the squeeze after it was observed too */
    ck_assert_int_ge(n_calls, 3);         /* unsqueeze, matmul, squeeze */

    fail_matmul = 1;
    ck_assert_ptr_null(lt_matmul(v, A));
    ck_assert_str_eq(lt_last_error(), "matmul: observer refused");
    lt__set_observer(NULL, NULL);
    v->ag = NULL;
    lt_frame_pop(m);
}
END_TEST

START_TEST(matmul_linear_sized_problem_matches_reference)
{
    /* (B,T,C) @ W^T with W (out,in): the fold path with a Trans b, at a size
     * where OpenBLAS runs its threaded kernels. Spot-check 200 entries. */
    size_t m = lt_frame_push();
    lt_set_num_threads(2);
    lt_tensor *x = rnd(3, (int64_t[]){4, 50, 96}, LT_F64);
    lt_tensor *W = rnd(2, (int64_t[]){80, 96}, LT_F64);
    lt_tensor *y = lt_matmul(x, lt_transpose(W, 0, 1));
    ck_assert_ptr_nonnull(y);
    ck_assert_int_eq(lt_size(y, 0), 4);
    double worst = 0;
    for (int s = 0; s < 200; s++) {
        int64_t bb = s % 4, t = (s * 7) % 50, o = (s * 13) % 80;
        double ref = 0;
        for (int64_t k = 0; k < 96; k++)
            ref += lt_item_at(x, (bb * 50 + t) * 96 + k) * lt_item_at(W, o * 96 + k);
        double e = fabs(lt_item_at(y, (bb * 50 + t) * 80 + o) - ref);
        worst = e > worst ? e : worst;
    }
    ck_assert_double_le(worst, 1e-12);
    lt_frame_pop(m);
}
END_TEST

/* Allocator that fails once its budget is spent, to walk every OOM exit. */
static int alloc_budget;

static void *failing_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    (void)ud;
    (void)osize;
    if (nsize == 0) {
        free(ptr);
        return NULL;
    }
    if (alloc_budget-- <= 0)
        return NULL;
    return aligned_alloc(64, (nsize + 63) & ~(size_t)63);
}

START_TEST(matmul_out_of_memory_returns_null_and_leaks_nothing)
{
    lt_cache_trim();
    size_t blocks0 = lt_mem_stats_get().live_blocks;
    int succeeded = 0;
    for (int k = 0; k < 64 && succeeded < 2; k++) {
        lt_cache_trim();
        lt_set_allocator(failing_alloc, NULL);
        alloc_budget = 1000;
        size_t m = lt_frame_push();
        lt_tensor *a = rnd(3, (int64_t[]){2, 3, 4}, LT_F64);
        lt_tensor *b = lt_slice(rnd(2, (int64_t[]){4, 10}, LT_F64), 1, 0, 10, 2); /* copied */
        ck_assert_ptr_nonnull(b);
        alloc_budget = k;
        lt_tensor *c = lt_matmul(a, b);
        /* (2,3,5) @ (5): the 1-D path and its views under the same budget */
        lt_tensor *v = c ? lt_matmul(c, lt_select(b, 0, 0)) : NULL;
        if (v) {
            check_nd(a, b, c);
            ck_assert_int_eq(lt_ndim(v), 2);
            succeeded++;
        } else
            ck_assert_msg(strstr(lt_last_error(), "out of memory") != NULL, "k=%d: %s", k,
                          lt_last_error());
        lt_frame_pop(m);
        lt_cache_trim();
        lt_set_allocator(NULL, NULL);
        ck_assert_uint_eq(lt_mem_stats_get().live_blocks, blocks0);
    }
    ck_assert_int_gt(succeeded, 0);
}
END_TEST

/* Products big enough to be split across threads must not depend on the
 * thread count (gemm.c blocks by shape only). */
START_TEST(matmul_is_bitwise_identical_for_1_and_2_threads)
{
    static const int64_t shapes[][3] = {{64, 576, 4096}, {512, 4608, 64}, {300, 257, 301}, {1024, 64, 1024}};
    int bad = 0;
    for (int s = 0; s < 4; s++) {
        size_t m = lt_frame_push();
        lt_rng r = lt_rng_new(11 + (uint64_t)s);
        lt_tensor *a = lt_rand_normal(&r, 2, (int64_t[]){shapes[s][0], shapes[s][1]}, 0, 1, LT_F32);
        lt_tensor *b = lt_rand_normal(&r, 2, (int64_t[]){shapes[s][2], shapes[s][1]}, 0, 1, LT_F32);
        lt_set_num_threads(1);
        lt_tensor *c1 = lt_matmul(a, lt_transpose(b, 0, 1));
        lt_set_num_threads(2);
        lt_tensor *c2 = lt_matmul(a, lt_transpose(b, 0, 1));
        ck_assert_ptr_nonnull(c1);
        ck_assert_ptr_nonnull(c2);
        if (memcmp(lt_data(c1), lt_data(c2), (size_t)lt_numel(c1) * sizeof(float)) != 0)
            bad++;
        lt_frame_pop(m);
    }
    ck_assert_int_eq(bad, 0);
}
END_TEST

/* The packed GEMM under the fused Winograd convolution (ukernel.c), on
 * both of its kernels (AVX2 where the CPU has it, and the portable C one
 * every CPU runs): against a float64 sum of the same float operands,
 * with partial panels of zero rows, 1-4 column panels, K = 0 (C is stored
 * as zeros, never read), K past one 256-deep block, and a row stride
 * wider than the product; then accumulating (C += A B) onto that result. */
/* Element (i, k) of a packed A and (k, j) of a packed B (ukernel.c's
 * layouts), and their float64 product sum for C (i, j). */
#define AP(i, k) ap[((i) / LT__UK_MR) * LT__UK_MR * K + (k) * LT__UK_MR + (i) % LT__UK_MR]
#define BP(k, j) bp[((j) / LT__UK_NR) * LT__UK_NR * K + (k) * LT__UK_NR + (j) % LT__UK_NR]
static double packed_ref(const float *ap, const float *bp, int64_t K, int64_t i, int64_t j)
{
    double want = 0;
    for (int64_t k = 0; k < K; k++)
        want += (double)AP(i, k) * BP(k, j);
    return want;
}

START_TEST(packed_gemm_matches_a_double_sum_on_every_kernel)
{
    /* K 513 and 700: blocks of 256 over k, with a short last one */
    static const int64_t shapes[][3] = {{6, 1, 1}, {12, 7, 2}, {66, 64, 3}, {18, 513, 4}, {6, 0, 1}, {6, 700, 1}};
    static const int kernels[] = {LT__UK_GENERIC, LT__UK_AVX2, LT__UK_AVX512};
    for (int kk = 0; kk < 3; kk++) {
        int generic = kernels[kk]; /* named in the messages */
        if (lt__sgemm_packed_force(generic) != 0)
            continue; /* this CPU lacks it */
        for (int s = 0; s < 6; s++) {
            int64_t M = shapes[s][0], K = shapes[s][1], nbp = shapes[s][2], N = nbp * LT__UK_NR, ldc = N + 5;
            int64_t Mr = M - 2; /* rows past Mr are the zero padding */
            float *ap = calloc((size_t)(M * K + 1), sizeof(float)), *bp = malloc((size_t)(K * N + 1) * sizeof(float));
            float *c = malloc((size_t)(M * ldc) * sizeof(float));
            for (int64_t i = 0; i < M * ldc; i++)
                c[i] = NAN; /* every stored element is overwritten */
            uint64_t st = 99 + (uint64_t)s;
            for (int64_t i = 0; i < Mr; i++)
                for (int64_t k = 0; k < K; k++) {
                    st = st * 6364136223846793005ULL + 1442695040888963407ULL;
                    AP(i, k) = (float)((st >> 40) % 2001) / 1000.0f - 1.0f;
                }
            for (int64_t k = 0; k < K; k++)
                for (int64_t j = 0; j < N; j++) {
                    st = st * 6364136223846793005ULL + 1442695040888963407ULL;
                    BP(k, j) = (float)((st >> 40) % 2001) / 1000.0f - 1.0f;
                }
            lt__sgemm_packed(M, K, (int)nbp, ap, bp, c, ldc, false);
            double worst = 0;
            for (int64_t i = 0; i < M; i++)
                for (int64_t j = 0; j < N; j++) {
                    double err = fabs(c[i * ldc + j] - packed_ref(ap, bp, K, i, j));
                    worst = err > worst ? err : worst;
                    if (i >= Mr)
                        ck_assert_float_eq(c[i * ldc + j], 0.0f);
                }
            /* |terms| <= 1: f32 rounding of K sums stays under K 2^-23 */
            ck_assert_msg(worst <= (K + 1) * 1.2e-7, "kernel %d shape %d: worst error %g", generic, s, worst);
            for (int64_t i = 0; i < M; i++)
                for (int64_t j = N; j < ldc; j++)
                    ck_assert_msg(isnan(c[i * ldc + j]), "wrote past the panels");
            /* acc: C += A B onto that result, so 2 A B */
            lt__sgemm_packed(M, K, (int)nbp, ap, bp, c, ldc, true);
            double worst2 = 0;
            for (int64_t i = 0; i < M; i++)
                for (int64_t j = 0; j < N; j++) {
                    double err = fabs(c[i * ldc + j] - 2 * packed_ref(ap, bp, K, i, j));
                    worst2 = err > worst2 ? err : worst2;
                }
            ck_assert_msg(worst2 <= 2 * (K + 1) * 1.2e-7, "kernel %d shape %d acc: worst error %g", generic, s,
                          worst2);
            free(ap);
            free(bp);
            free(c);
        }
    }
    lt__sgemm_packed_force(LT__UK_AUTO);
}
END_TEST
#undef AP
#undef BP

/* The AVX2 and AVX-512 kernels sum each element as the same FMA chain:
 * results must not depend on which one the CPU picks (skipped where the
 * CPU lacks AVX-512). 5 panels: two pairs and a single one. */
START_TEST(packed_gemm_avx2_and_avx512_agree_bitwise)
{
    if (lt__sgemm_packed_force(LT__UK_AVX512) != 0)
        return;
    int64_t M = 12, K = 300, nbp = 5, N = nbp * LT__UK_NR;
    float *ap = malloc((size_t)(M * K) * sizeof(float)), *bp = malloc((size_t)(K * N) * sizeof(float));
    float *c1 = malloc((size_t)(M * N) * sizeof(float)), *c2 = malloc((size_t)(M * N) * sizeof(float));
    uint64_t st = 7;
    for (int64_t i = 0; i < M * K; i++) {
        st = st * 6364136223846793005ULL + 1442695040888963407ULL;
        ap[i] = (float)((st >> 40) % 2001) / 997.0f - 1.0f;
    }
    for (int64_t i = 0; i < K * N; i++) {
        st = st * 6364136223846793005ULL + 1442695040888963407ULL;
        bp[i] = (float)((st >> 40) % 2001) / 991.0f - 1.0f;
    }
    for (int acc = 0; acc < 2; acc++) {
        for (int64_t i = 0; i < M * N; i++)
            c1[i] = c2[i] = (float)i / 7.0f;
        ck_assert_int_eq(lt__sgemm_packed_force(LT__UK_AVX512), 0);
        lt__sgemm_packed(M, K, (int)nbp, ap, bp, c1, N, acc);
        ck_assert_int_eq(lt__sgemm_packed_force(LT__UK_AVX2), 0);
        lt__sgemm_packed(M, K, (int)nbp, ap, bp, c2, N, acc);
        ck_assert_int_eq(memcmp(c1, c2, (size_t)(M * N) * sizeof(float)), 0);
        ck_assert_float_ne(c1[M * N - 1], (float)(M * N - 1) / 7.0f);
    }
    lt__sgemm_packed_force(LT__UK_AUTO);
    free(ap);
    free(bp);
    free(c1);
    free(c2);
}
END_TEST


static Suite *matmul_suite(void)
{
    Suite *s = suite_create("matmul");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, matmul_2d_matches_naive_loop_on_random_shapes);
    tcase_add_test(tc, packed_gemm_matches_a_double_sum_on_every_kernel);
    tcase_add_test(tc, packed_gemm_avx2_and_avx512_agree_bitwise);
    tcase_add_test(tc, matmul_is_bitwise_identical_for_1_and_2_threads);
    tcase_add_test(tc, matmul_small_hand_example);
    tcase_add_test(tc, matmul_batched_same_batch);
    tcase_add_test(tc, matmul_broadcasts_batch_dims);
    tcase_add_test(tc, matmul_expanded_operand_with_stride_zero);
    tcase_add_test(tc, matmul_vector_operands_follow_numpy);
    tcase_add_test(tc, matmul_transposed_views_equal_contiguous_copies);
    tcase_add_test(tc, matmul_strided_slices);
    tcase_add_test(tc, matmul_zero_sized_dims);
    tcase_add_test(tc, matmul_bad_operands_fail_with_both_shapes);
    tcase_add_test(tc, matmul_result_is_new_storage_and_frame_owned);
    tcase_add_test(tc, matmul_reports_one_rank2_call_to_the_observer);
    tcase_add_test(tc, matmul_linear_sized_problem_matches_reference);
    tcase_add_test(tc, matmul_out_of_memory_returns_null_and_leaks_nothing);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(matmul_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failures = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failures ? 1 : 0;
}
