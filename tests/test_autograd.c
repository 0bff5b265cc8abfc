/*
 * test_autograd.c: the autograd engine, checked against finite differences
 * (first and second order) and hand-derived results.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <libtensor/autograd.h>
#include <libtensor/tensor.h>

#define FRAME_BEGIN size_t mark_ = lt_frame_push()
#define FRAME_END lt_frame_pop(mark_)

static lt_tensor *vec64(int n, const double *v) { return lt_from_data(v, 1, (int64_t[]){n}, LT_F64); }

/* ---- registry-driven checks ---- */

static void run_registry(bool second)
{
    int n = lt_ag_registry_count();
    ck_assert_int_gt(n, 40);
    for (int i = 0; i < n; i++) {
        const lt_ag_opinfo *op = lt_ag_registry_get(i);
        for (int v = 0; v < op->nvariants; v++) {
            FRAME_BEGIN;
            lt_rng rng = lt_rng_new(1000u + (unsigned)i * 10u + (unsigned)v);
            lt_tensor *in[8] = {0};
            int nin = op->sample(v, &rng, in);
            ck_assert_msg(nin > 0, "sample of %s failed: %s", op->name, lt_last_error());
            lt_ag_check_opts o = lt_ag_check_defaults(op->name);
            int rc = second ? lt_ag_gradgradcheck(op->fn, NULL, nin, in, &o) : lt_ag_gradcheck(op->fn, NULL, nin, in, &o);
            ck_assert_msg(rc == 0, "%s variant %d: %s", op->name, v, lt_last_error());
            FRAME_END;
        }
    }
}

START_TEST(every_registered_op_passes_gradcheck_f64) { run_registry(false); }
END_TEST

START_TEST(every_registered_op_passes_gradgradcheck_f64) { run_registry(true); }
END_TEST

START_TEST(every_op_with_a_backward_is_in_the_registry)
{
    int nb = lt_ag_backward_count();
    ck_assert_int_gt(nb, 40);
    for (int b = 0; b < nb; b++) {
        const char *name = lt_ag_backward_name(b);
        bool found = false;
        for (int i = 0; i < lt_ag_registry_count() && !found; i++)
            found = strcmp(lt_ag_registry_get(i)->name, name) == 0;
        ck_assert_msg(found, "op '%s' has a backward but no registry entry", name);
    }
}
END_TEST

static lt_tensor *f_bad(void *ud, int n, lt_tensor *const *x)
{
    (void)ud;
    (void)n;
    /* sign has zero gradient; pretending it is x (via a wrong op) must fail:
     * use abs, whose gradient at negative x is -1, against the identity. */
    return lt_abs(x[0]);
}

START_TEST(gradcheck_reports_op_input_and_worst_element)
{
    FRAME_BEGIN;
    /* abs has a kink at 0: at x = 0 exactly the analytic gradient is 0 (sign)
     * while the central difference is 0 too; at x = 1e-7 the numeric slope
     * is ~0.1 but analytic is 1: a mismatch that must be reported. */
    lt_tensor *x = vec64(3, (double[]){0.5, 1e-7, -0.5});
    lt_ag_set_requires_grad(x, true);
    lt_ag_check_opts o = lt_ag_check_defaults("abs_near_kink");
    ck_assert_int_eq(lt_ag_gradcheck(f_bad, NULL, 1, &x, &o), -1);
    const char *e = lt_last_error();
    ck_assert_ptr_nonnull(strstr(e, "abs_near_kink"));
    ck_assert_ptr_nonnull(strstr(e, "input 0"));
    ck_assert_ptr_nonnull(strstr(e, "input element 1"));
    ck_assert_ptr_nonnull(strstr(e, "analytic"));
    ck_assert_ptr_nonnull(strstr(e, "numeric"));
    FRAME_END;
}
END_TEST

/* ---- basic semantics ---- */

START_TEST(grad_of_sum_of_squares_is_2x)
{
    FRAME_BEGIN;
    lt_tensor *x = lt_arange(0, 3, 1, LT_F64);
    lt_ag_set_requires_grad(x, true);
    lt_tensor *y = lt_sum(lt_mul(x, x), 0, NULL, false);
    lt_tensor *g;
    ck_assert_int_eq(lt_ag_grad(1, &y, 1, &x, NULL, false, false, false, &g), 0);
    for (int i = 0; i < 3; i++)
        ck_assert_double_eq(lt_item_at(g, i), 2.0 * i);
    ck_assert_ptr_null(lt_ag_grad_of(x)); /* grad() leaves .grad alone */
    FRAME_END;
}
END_TEST

START_TEST(two_backward_calls_accumulate)
{
    FRAME_BEGIN;
    lt_tensor *x = vec64(2, (double[]){1.5, -2.0});
    lt_ag_set_requires_grad(x, true);
    lt_tensor *y = lt_sum(lt_mul_scalar(lt_mul(x, x), 3.0), 0, NULL, false); /* dy/dx = 6x */
    ck_assert_int_eq(lt_ag_backward(y, NULL, true, false), 0);
    ck_assert_int_eq(lt_ag_backward(y, NULL, false, false), 0);
    lt_tensor *g = lt_ag_grad_of(x);
    ck_assert_ptr_nonnull(g);
    ck_assert_double_eq_tol(lt_item_at(g, 0), 2 * 6 * 1.5, 1e-12);
    ck_assert_double_eq_tol(lt_item_at(g, 1), 2 * 6 * -2.0, 1e-12);
    /* a third pass through the freed graph is a clear error, not a crash */
    ck_assert_int_eq(lt_ag_backward(y, NULL, false, false), -1);
    ck_assert_ptr_nonnull(strstr(lt_last_error(), "already freed"));
    lt_ag_zero_grad(x);
    ck_assert_ptr_null(lt_ag_grad_of(x));
    FRAME_END;
}
END_TEST

START_TEST(no_grad_records_nothing_and_detach_stops_gradients)
{
    FRAME_BEGIN;
    lt_tensor *x = vec64(2, (double[]){1, 2});
    lt_ag_set_requires_grad(x, true);
    bool prev = lt_ag_set_grad_enabled(false);
    lt_tensor *y = lt_mul(x, x);
    lt_ag_set_grad_enabled(prev);
    ck_assert(!lt_ag_requires_grad(y));
    ck_assert(lt_ag_is_leaf(y));
    lt_tensor *z = lt_mul(x, x);
    ck_assert(lt_ag_requires_grad(z));
    ck_assert_str_eq(lt_ag_op_name(z), "mul");
    lt_tensor *d = lt_ag_detach(z);
    ck_assert(!lt_ag_requires_grad(d));
    ck_assert(lt_shares_storage(d, z));
    /* loss = sum(detach(x*x) * x): gradient is x*x only */
    lt_tensor *loss = lt_sum(lt_mul(d, x), 0, NULL, false);
    lt_tensor *g;
    ck_assert_int_eq(lt_ag_grad(1, &loss, 1, &x, NULL, false, false, false, &g), 0);
    ck_assert_double_eq(lt_item_at(g, 0), 1.0);
    ck_assert_double_eq(lt_item_at(g, 1), 4.0);
    FRAME_END;
}
END_TEST

START_TEST(allow_unused_returns_null_and_otherwise_errors)
{
    FRAME_BEGIN;
    lt_tensor *x = vec64(2, (double[]){1, 2}), *w = vec64(2, (double[]){3, 4});
    lt_ag_set_requires_grad(x, true);
    lt_ag_set_requires_grad(w, true);
    lt_tensor *y = lt_sum(lt_exp(x), 0, NULL, false);
    lt_tensor *in[2] = {x, w}, *g[2];
    ck_assert_int_eq(lt_ag_grad(1, &y, 2, in, NULL, false, true, false, g), -1);
    ck_assert_ptr_nonnull(strstr(lt_last_error(), "not used"));
    ck_assert_int_eq(lt_ag_grad(1, &y, 2, in, NULL, false, true, true, g), 0);
    ck_assert_ptr_null(g[1]);
    ck_assert_double_eq_tol(lt_item_at(g[0], 1), exp(2.0), 1e-12);
    FRAME_END;
}
END_TEST

START_TEST(grad_with_respect_to_an_intermediate_tensor)
{
    FRAME_BEGIN;
    lt_tensor *x = vec64(3, (double[]){0.1, 0.2, 0.3});
    lt_ag_set_requires_grad(x, true);
    lt_tensor *h = lt_mul_scalar(x, 2.0);            /* intermediate */
    lt_tensor *y = lt_sum(lt_mul(h, h), 0, NULL, false); /* dy/dh = 2h */
    lt_tensor *g;
    ck_assert_int_eq(lt_ag_grad(1, &y, 1, &h, NULL, false, false, false, &g), 0);
    for (int i = 0; i < 3; i++)
        ck_assert_double_eq_tol(lt_item_at(g, i), 2 * 2 * 0.1 * (i + 1), 1e-12);
    FRAME_END;
}
END_TEST

/* An op a * b that records which input gradients its backward was asked
 * for. */
static int probe_asked[2];
static int bw_probe(lt_ag_ctx *ctx, const lt_tensor *g, lt_tensor **gin)
{
    const lt_tensor *a = lt_ag_saved(ctx, 0), *b = lt_ag_saved(ctx, 1);
    probe_asked[0] = lt_ag_needs_grad(ctx, 0);
    probe_asked[1] = lt_ag_needs_grad(ctx, 1);
    if (probe_asked[0] && !(gin[0] = lt_mul(g, b)))
        return -1;
    if (probe_asked[1] && !(gin[1] = lt_mul(g, a)))
        return -1;
    return 0;
}
static const lt_ag_fn probe_fn = {"probe_mul", bw_probe};
static lt_tensor *probe_mul(const lt_tensor *a, const lt_tensor *b)
{
    bool prev = lt_ag_set_grad_enabled(false);
    lt_tensor *y = lt_mul(a, b);
    lt_ag_set_grad_enabled(prev);
    if (!y || lt_ag_record(&probe_fn, 2, (const lt_tensor *const[]){a, b}, y, 2, (const lt_tensor *const[]){a, b},
                           0, NULL, 0, NULL) < 0)
        return NULL;
    return y;
}

/* grad(y, x) computes no gradient that cannot reach x: a layer's weight
 * gradient is skipped when only the input gradient is asked for (RRR's
 * first pass, saliency maps). */
START_TEST(backward_is_asked_only_for_gradients_that_reach_a_target)
{
    FRAME_BEGIN;
    lt_tensor *x = vec64(3, (double[]){0.1, -0.2, 0.3}), *w = vec64(3, (double[]){1.5, 2.0, -1.0});
    lt_ag_set_requires_grad(x, true);
    lt_ag_set_requires_grad(w, true);
    struct { lt_tensor *target; bool create; int ax, aw; } cases[] = {
        {x, false, 1, 0}, {w, false, 0, 1}, {x, true, 1, 0}, {w, true, 0, 1},
    };
    for (int k = 0; k < 4; k++) {
        lt_tensor *y = lt_sum(lt_exp(probe_mul(x, w)), 0, NULL, false), *g;
        probe_asked[0] = probe_asked[1] = -1;
        ck_assert_int_eq(lt_ag_grad(1, &y, 1, &cases[k].target, NULL, cases[k].create, false, false, &g), 0);
        ck_assert_int_eq(probe_asked[0], cases[k].ax);
        ck_assert_int_eq(probe_asked[1], cases[k].aw);
        const lt_tensor *other = cases[k].target == x ? w : x;
        for (int i = 0; i < 3; i++) {
            double xi = lt_item_at(x, i), wi = lt_item_at(w, i);
            ck_assert_double_eq_tol(lt_item_at(g, i), exp(xi * wi) * lt_item_at(other, i), 1e-12);
        }
    }
    /* through an intermediate: x -> 2x -> probe; grad wrt w only */
    lt_tensor *y = lt_sum(probe_mul(lt_mul_scalar(x, 2.0), w), 0, NULL, false), *g;
    ck_assert_int_eq(lt_ag_grad(1, &y, 1, &w, NULL, false, false, false, &g), 0);
    ck_assert_int_eq(probe_asked[0], 0);
    ck_assert_int_eq(probe_asked[1], 1);
    /* backward: every leaf is a target */
    y = lt_sum(probe_mul(x, w), 0, NULL, false);
    ck_assert_int_eq(lt_ag_backward(y, NULL, false, false), 0);
    ck_assert_int_eq(probe_asked[0], 1);
    ck_assert_int_eq(probe_asked[1], 1);
    ck_assert_double_eq_tol(lt_item_at(lt_ag_grad_of(x), 2), -1.0, 1e-12);
    ck_assert_double_eq_tol(lt_item_at(lt_ag_grad_of(w), 2), 0.3, 1e-12);
    lt_ag_zero_grad(x);
    lt_ag_zero_grad(w);
    FRAME_END;
}
END_TEST

START_TEST(anomaly_mode_names_the_op_that_made_a_nan)
{
    FRAME_BEGIN;
    lt_tensor *x = vec64(2, (double[]){-1.0, 4.0});
    lt_ag_set_requires_grad(x, true);
    bool prev = lt_ag_set_anomaly_mode(true);
    lt_tensor *y = lt_sqrt(x);
    ck_assert_ptr_null(y);
    const char *e = lt_last_error();
    ck_assert_ptr_nonnull(strstr(e, "sqrt"));
    ck_assert_ptr_nonnull(strstr(e, "forward"));
    ck_assert_ptr_nonnull(strstr(e, "(2)"));
    /* backward phase: d/dx sqrt at 0 is inf */
    lt_tensor *z = vec64(2, (double[]){0.0, 4.0});
    lt_ag_set_requires_grad(z, true);
    lt_tensor *s = lt_sum(lt_sqrt(z), 0, NULL, false);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(lt_ag_backward(s, NULL, false, false), -1);
    e = lt_last_error();
    ck_assert_ptr_nonnull(strstr(e, "backward"));
    lt_ag_set_anomaly_mode(prev);
    FRAME_END;
}
END_TEST

/* ---- second order ---- */

/* Hessian of f(x) = 0.5 x^T A x is (A + A^T)/2; H v checked exactly. */
START_TEST(hvp_of_quadratic_form_matches_analytic_hessian)
{
    FRAME_BEGIN;
    double a[9] = {2, 1, 0, -1, 3, 4, 0.5, 0, 1};
    lt_tensor *A = lt_from_data(a, 2, (int64_t[]){3, 3}, LT_F64);
    lt_tensor *x = vec64(3, (double[]){0.3, -0.7, 1.1});
    lt_tensor *v = vec64(3, (double[]){1.0, 2.0, -1.0});
    lt_ag_set_requires_grad(x, true);
    lt_tensor *f = lt_mul_scalar(lt_sum(lt_mul(x, lt_matmul(A, x)), 0, NULL, false), 0.5);
    lt_tensor *hv;
    ck_assert_int_eq(lt_ag_hvp(f, 1, &x, &v, &hv), 0);
    for (int i = 0; i < 3; i++) {
        double want = 0;
        for (int j = 0; j < 3; j++)
            want += 0.5 * (a[i * 3 + j] + a[j * 3 + i]) * lt_item_at(v, j);
        ck_assert_double_eq_tol(lt_item_at(hv, i), want, 1e-12);
    }
    FRAME_END;
}
END_TEST

/* f(z) = sum_k w_k log_softmax(z)_k: H = -sum_k w_k (diag(p) - p p^T) */
START_TEST(hvp_of_log_softmax_matches_analytic_hessian)
{
    FRAME_BEGIN;
    double zv[4] = {0.1, -0.4, 1.2, 0.3}, wv[4] = {0.5, 1.0, -2.0, 0.7}, vv[4] = {1, -1, 0.5, 2};
    lt_tensor *z = vec64(4, zv), *w = vec64(4, wv), *v = vec64(4, vv);
    lt_ag_set_requires_grad(z, true);
    lt_tensor *f = lt_sum(lt_mul(w, lt_log_softmax(z, 0)), 0, NULL, false);
    lt_tensor *hv;
    ck_assert_int_eq(lt_ag_hvp(f, 1, &z, &v, &hv), 0);
    double m = -1e300, s = 0, p[4], W = 0;
    for (int i = 0; i < 4; i++)
        m = fmax(m, zv[i]);
    for (int i = 0; i < 4; i++)
        s += exp(zv[i] - m);
    for (int i = 0; i < 4; i++)
        p[i] = exp(zv[i] - m) / s, W += wv[i];
    /* H = -W (diag(p) - p p^T) since log_softmax's Hessian is the same for every k */
    for (int i = 0; i < 4; i++) {
        double want = 0;
        for (int j = 0; j < 4; j++)
            want += -W * ((i == j ? p[i] : 0) - p[i] * p[j]) * vv[j];
        ck_assert_double_eq_tol(lt_item_at(hv, i), want, 1e-12);
    }
    FRAME_END;
}
END_TEST

/* A 2-layer MLP in f64; the RRR penalty
 *   P(theta) = sum (A * d(sum_k log_softmax_k(f(x)))/dx)^2
 * is differentiated with create_graph and compared with central
 * differences of P itself. */
typedef struct mlp {
    lt_tensor *x, *A;
} mlp;

static lt_tensor *rrr_penalty(void *ud, int n, lt_tensor *const *p)
{
    mlp *m = ud;
    (void)n;
    bool prev = lt_ag_set_grad_enabled(true);
    lt_tensor *x = lt_ag_set_requires_grad(lt_ag_detach(m->x), true);
    lt_tensor *h = lt_tanh(lt_add(lt_matmul(x, lt_transpose(p[0], 0, 1)), p[1]));
    lt_tensor *z = lt_add(lt_matmul(h, lt_transpose(p[2], 0, 1)), p[3]);
    lt_tensor *s = lt_sum(lt_log_softmax(z, 1), 0, NULL, false);
    lt_tensor *gx = NULL;
    lt_tensor *pen = NULL;
    if (lt_ag_grad(1, &s, 1, &x, NULL, true, true, false, &gx) == 0)
        pen = lt_sum(lt_pow_scalar(lt_mul(m->A, gx), 2.0), 0, NULL, false);
    lt_ag_set_grad_enabled(prev);
    return pen;
}

START_TEST(rrr_penalty_gradient_of_mlp_matches_finite_differences)
{
    FRAME_BEGIN;
    lt_rng r = lt_rng_new(7);
    mlp m;
    m.x = lt_rand_normal(&r, 2, (int64_t[]){3, 5}, 0, 1, LT_F64);
    m.A = lt_rand_bernoulli(&r, 2, (int64_t[]){3, 5}, 0.5, LT_F64);
    lt_tensor *p[4] = {
        lt_rand_normal(&r, 2, (int64_t[]){4, 5}, 0, 0.5, LT_F64),
        lt_rand_normal(&r, 1, (int64_t[]){4}, 0, 0.5, LT_F64),
        lt_rand_normal(&r, 2, (int64_t[]){3, 4}, 0, 0.5, LT_F64),
        lt_rand_normal(&r, 1, (int64_t[]){3}, 0, 0.5, LT_F64),
    };
    for (int i = 0; i < 4; i++)
        lt_ag_set_requires_grad(p[i], true);
    lt_ag_check_opts o = lt_ag_check_defaults("rrr_penalty_mlp");
    ck_assert_msg(lt_ag_gradcheck(rrr_penalty, &m, 4, p, &o) == 0, "%s", lt_last_error());
    FRAME_END;
}
END_TEST

/* ---- memory ---- */

START_TEST(thousand_create_graph_steps_keep_live_blocks_flat)
{
    lt_rng r = lt_rng_new(3);
    size_t keep = lt_frame_push();
    lt_tensor *w = lt_retain(lt_rand_normal(&r, 2, (int64_t[]){4, 6}, 0, 0.3, LT_F32));
    lt_tensor *x = lt_retain(lt_rand_normal(&r, 2, (int64_t[]){8, 6}, 0, 1, LT_F32));
    lt_frame_pop(keep);
    lt_ag_set_requires_grad(w, true);
    size_t live_after_warmup = 0;
    for (int step = 0; step < 1000; step++) {
        size_t m = lt_frame_push();
        lt_tensor *xi = lt_ag_set_requires_grad(lt_ag_detach(x), true);
        lt_tensor *z = lt_log_softmax(lt_matmul(lt_tanh(xi), lt_transpose(w, 0, 1)), 1);
        lt_tensor *s = lt_sum(z, 0, NULL, false), *gx;
        ck_assert_int_eq(lt_ag_grad(1, &s, 1, &xi, NULL, true, true, false, &gx), 0);
        lt_tensor *loss = lt_add(lt_mean(lt_mul(gx, gx), 0, NULL, false), lt_mean(z, 0, NULL, false));
        lt_ag_zero_grad(w);
        ck_assert_int_eq(lt_ag_backward(loss, NULL, false, false), 0);
        ck_assert_ptr_nonnull(lt_ag_grad_of(w));
        lt_frame_pop(m);
        if (step == 10)
            live_after_warmup = lt_mem_stats_get().live_blocks;
        if (step > 10)
            ck_assert_uint_eq(lt_mem_stats_get().live_blocks, live_after_warmup);
    }
    lt_release(w);
    lt_release(x);
}
END_TEST

START_TEST(popping_the_frame_frees_the_graph)
{
    lt_frame_pop(0);
    lt_cache_trim();
    lt_mem_stats before = lt_mem_stats_get();
    {
        FRAME_BEGIN;
        lt_tensor *x = vec64(3, (double[]){1, 2, 3});
        lt_ag_set_requires_grad(x, true);
        lt_tensor *y = lt_sum(lt_exp(lt_mul(x, x)), 0, NULL, false), *g;
        ck_assert_int_eq(lt_ag_grad(1, &y, 1, &x, NULL, true, true, false, &g), 0);
        lt_tensor *y2 = lt_sum(g, 0, NULL, false);
        ck_assert_int_eq(lt_ag_backward(y2, NULL, false, false), 0);
        FRAME_END;
    }
    lt_frame_pop(0);
    lt_cache_trim();
    lt_mem_stats after = lt_mem_stats_get();
    ck_assert_uint_eq(after.live_tensors, before.live_tensors);
    ck_assert_uint_eq(after.live_blocks, before.live_blocks);
}
END_TEST

int main(void)
{
    lt_set_num_threads(2);
    Suite *s = suite_create("autograd");
    TCase *reg = tcase_create("registry");
    tcase_set_timeout(reg, 300);
    tcase_add_test(reg, every_registered_op_passes_gradcheck_f64);
    tcase_add_test(reg, every_registered_op_passes_gradgradcheck_f64);
    tcase_add_test(reg, every_op_with_a_backward_is_in_the_registry);
    tcase_add_test(reg, gradcheck_reports_op_input_and_worst_element);
    suite_add_tcase(s, reg);
    TCase *sem = tcase_create("semantics");
    tcase_add_test(sem, grad_of_sum_of_squares_is_2x);
    tcase_add_test(sem, two_backward_calls_accumulate);
    tcase_add_test(sem, no_grad_records_nothing_and_detach_stops_gradients);
    tcase_add_test(sem, allow_unused_returns_null_and_otherwise_errors);
    tcase_add_test(sem, grad_with_respect_to_an_intermediate_tensor);
    tcase_add_test(sem, backward_is_asked_only_for_gradients_that_reach_a_target);
    tcase_add_test(sem, anomaly_mode_names_the_op_that_made_a_nan);
    suite_add_tcase(s, sem);
    TCase *so = tcase_create("second_order");
    tcase_set_timeout(so, 120);
    tcase_add_test(so, hvp_of_quadratic_form_matches_analytic_hessian);
    tcase_add_test(so, hvp_of_log_softmax_matches_analytic_hessian);
    tcase_add_test(so, rrr_penalty_gradient_of_mlp_matches_finite_differences);
    suite_add_tcase(s, so);
    TCase *mem = tcase_create("memory");
    tcase_set_timeout(mem, 300);
    tcase_add_test(mem, thousand_create_graph_steps_keep_live_blocks_flat);
    tcase_add_test(mem, popping_the_frame_frees_the_graph);
    suite_add_tcase(s, mem);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
