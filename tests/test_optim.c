/*
 * test_optim.c: Check suite for optimizers, learning-rate schedules and
 * gradient clipping (nn/optim.c, <libtensor/optim.h>).
 *
 * Expected values come from plain C double arithmetic that follows the
 * algorithms as PyTorch documents them (torch.optim.SGD and
 * torch.optim.AdamW pseudo-code, StepLR / LinearLR / CosineAnnealingLR
 * closed forms, clip_grad_norm_), written independently of the library, plus
 * a few sequences worked out by hand and written as literals.
 *
 * The gradients come from the quadratic loss 0.5 * sum(c * p^2), whose
 * gradient c * p the tests install with lt_ag_set_grad, so each step's
 * gradient depends on the previous update as in training.
 */
#include <libtensor/autograd.h>
#include <libtensor/checkpoint.h>
#include <libtensor/optim.h>
#include <libtensor/tensor.h>

#include <check.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SH(...) (int64_t[]){__VA_ARGS__}
#define N 3

static const double P0[N] = {1.0, -2.0, 0.5};
static const double C[N] = {1.0, 0.5, 3.0};

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

/* A leaf parameter (owned by the caller) holding v. */
static lt_tensor *param(const double *v, int n, lt_dtype dt)
{
    size_t m = lt_frame_push();
    lt_tensor *p = lt_retain(lt_to_dtype(lt_from_data(v, 1, (int64_t[]){n}, LT_F64), dt));
    lt_frame_pop(m);
    lt_ag_set_requires_grad(p, true);
    return p;
}

/* p.grad = c * p (the gradient of 0.5 sum c p^2), in p's dtype. */
static void set_quadratic_grad(lt_tensor *p, const double *c)
{
    size_t m = lt_frame_push();
    int64_t n = lt_numel(p);
    lt_tensor *g = lt_empty(1, &n, lt_dtype_of(p));
    for (int64_t i = 0; i < n; i++) {
        if (lt_dtype_of(p) == LT_F32)
            ((float *)lt_data(g))[i] = (float)c[i] * ((float *)lt_data(p))[i];
        else
            ((double *)lt_data(g))[i] = c[i] * ((double *)lt_data(p))[i];
    }
    ck_assert_int_eq(lt_ag_set_grad(p, g), 0);
    lt_frame_pop(m);
}

static void run_steps(lt_nn_optim *o, lt_tensor *p, int steps)
{
    for (int s = 0; s < steps; s++) {
        set_quadratic_grad(p, C);
        ck_assert_msg(lt_nn_optim_step(o) == 0, "%s", lt_last_error());
        lt_nn_optim_zero_grad(o);
    }
}

static void assert_close(const lt_tensor *p, const double *want, double rtol, const char *what)
{
    for (int i = 0; i < N; i++) {
        double got = lt_item_at(p, i);
        ck_assert_msg(fabs(got - want[i]) <= rtol * fmax(1.0, fabs(want[i])), "%s [%d]: got %.17g want %.17g", what, i,
                      got, want[i]);
    }
}

/* torch.optim.SGD's documented algorithm, in doubles. */
static void ref_sgd(double *p, int steps, double lr, double mom, double damp, double wd, bool nesterov)
{
    double b[N] = {0};
    for (int t = 1; t <= steps; t++)
        for (int i = 0; i < N; i++) {
            double g = C[i] * p[i];
            if (wd != 0)
                g = g + wd * p[i];
            if (mom != 0) {
                b[i] = t > 1 ? mom * b[i] + (1 - damp) * g : g;
                g = nesterov ? g + mom * b[i] : b[i];
            }
            p[i] = p[i] - lr * g;
        }
}

/* torch.optim.AdamW's documented algorithm, in doubles. */
static void ref_adamw(double *p, int steps, double lr, double b1, double b2, double eps, double wd)
{
    double m[N] = {0}, v[N] = {0};
    for (int t = 1; t <= steps; t++)
        for (int i = 0; i < N; i++) {
            double g = C[i] * p[i];
            p[i] = p[i] - lr * wd * p[i];
            m[i] = b1 * m[i] + (1 - b1) * g;
            v[i] = b2 * v[i] + (1 - b2) * g * g;
            double mhat = m[i] / (1 - pow(b1, t)), vhat = v[i] / (1 - pow(b2, t));
            p[i] = p[i] - lr * mhat / (sqrt(vhat) + eps);
        }
}

/* ------------------------------------------------------------------ */
/* SGD                                                                 */
/* ------------------------------------------------------------------ */

typedef struct sgd_case {
    const char *name;
    lt_nn_sgd_opts o;
} sgd_case;

static const sgd_case sgd_cases[] = {
    {"plain", {0.1, 0, 0, 0, false}},
    {"momentum", {0.1, 0.9, 0, 0, false}},
    {"nesterov", {0.1, 0.9, 0, 0, true}},
    {"dampening", {0.1, 0.9, 0.5, 0, false}},
    {"weight_decay", {0.05, 0, 0, 0.1, false}},
    {"all_but_nesterov", {0.05, 0.8, 0.3, 0.01, false}},
    {"nesterov_weight_decay", {0.05, 0.8, 0, 0.01, true}},
};

START_TEST(sgd_matches_torch_algorithm_for_three_steps)
{
    for (size_t k = 0; k < sizeof sgd_cases / sizeof sgd_cases[0]; k++)
        for (int dt = 0; dt < 2; dt++) {
            const sgd_case *sc = &sgd_cases[k];
            lt_tensor *p = param(P0, N, dt ? LT_F32 : LT_F64);
            lt_nn_optim *o = lt_nn_sgd_new(1, &p, &sc->o);
            ck_assert_msg(o != NULL, "%s", lt_last_error());
            run_steps(o, p, 3);
            double want[N];
            memcpy(want, P0, sizeof want);
            ref_sgd(want, 3, sc->o.lr, sc->o.momentum, sc->o.dampening, sc->o.weight_decay, sc->o.nesterov);
            assert_close(p, want, dt ? 2e-6 : 1e-14, sc->name);
            ck_assert_int_eq(lt_nn_optim_step_count(o), 3);
            lt_nn_optim_free(o);
            lt_release(p);
        }
}
END_TEST

START_TEST(sgd_hand_worked_sequences)
{
    /* p0 = 1, gradient = p, lr 0.1 (one element). */
    struct {
        lt_nn_sgd_opts o;
        double p[3];
    } cases[] = {
        /* p <- 0.9 p */
        {{0.1, 0, 0, 0, false}, {0.9, 0.81, 0.729}},
        /* b1 = 1, p1 = .9; b2 = .9*1 + .9 = 1.8, p2 = .72; b3 = 1.62 + .72 = 2.34, p3 = .486 */
        {{0.1, 0.9, 0, 0, false}, {0.9, 0.72, 0.486}},
        /* b1 = 1, d = 1 + .9 = 1.9, p1 = .81; b2 = .9 + .81 = 1.71, d = .81 + 1.539, p2 = .5751;
         * b3 = 1.539 + .5751 = 2.1141, d = .5751 + 1.90269 = 2.47779, p3 = .327321 */
        {{0.1, 0.9, 0, 0, true}, {0.81, 0.5751, 0.327321}},
        /* dampening .5: b1 = 1 (no dampening at first), p1 = .9; b2 = .9 + .45 = 1.35,
         * p2 = .765; b3 = 1.215 + .3825 = 1.5975, p3 = .60525 */
        {{0.1, 0.9, 0.5, 0, false}, {0.9, 0.765, 0.60525}},
        /* weight decay 1: g = 2p, p <- .8 p */
        {{0.1, 0, 0, 1.0, false}, {0.8, 0.64, 0.512}},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        lt_tensor *p = param((double[]){1.0}, 1, LT_F64);
        lt_nn_optim *o = lt_nn_sgd_new(1, &p, &cases[k].o);
        for (int s = 0; s < 3; s++) {
            set_quadratic_grad(p, (double[]){1.0});
            ck_assert_int_eq(lt_nn_optim_step(o), 0);
            ck_assert_msg(fabs(lt_item_at(p, 0) - cases[k].p[s]) < 1e-12, "case %zu step %d: %.17g", k, s + 1,
                          lt_item_at(p, 0));
        }
        lt_nn_optim_free(o);
        lt_release(p);
    }
}
END_TEST

START_TEST(sgd_refuses_bad_options)
{
    lt_tensor *p = param(P0, N, LT_F32);
    lt_nn_sgd_opts o = {0.1, 0.9, 0.1, 0, true};
    ck_assert_ptr_null(lt_nn_sgd_new(1, &p, &o));
    ck_assert_msg(strstr(lt_last_error(), "Nesterov momentum requires"), "%s", lt_last_error());
    o = (lt_nn_sgd_opts){-0.1, 0, 0, 0, false};
    ck_assert_ptr_null(lt_nn_sgd_new(1, &p, &o));
    o = lt_nn_sgd_defaults(0.1);
    size_t m = lt_frame_push();
    lt_tensor *q = lt_mul_scalar(p, 2); /* not a leaf */
    ck_assert_ptr_null(lt_nn_sgd_new(1, &q, &o));
    ck_assert_msg(strstr(lt_last_error(), "parameter 0 must be"), "%s", lt_last_error());
    lt_tensor *nr = lt_zeros(1, SH(3), LT_F32); /* does not require grad */
    ck_assert_ptr_null(lt_nn_sgd_new(1, &nr, &o));
    lt_frame_pop(m);
    lt_release(p);
}
END_TEST

/* ------------------------------------------------------------------ */
/* AdamW                                                               */
/* ------------------------------------------------------------------ */

START_TEST(adamw_matches_torch_algorithm_for_three_steps)
{
    const lt_nn_adamw_opts cases[] = {
        lt_nn_adamw_defaults(1e-3),
        {0.1, 0.9, 0.999, 1e-8, 0.1},
        {0.05, 0.5, 0.9, 1e-3, 0},  /* lerp weight 0.5: torch's other branch */
        {0.02, 0.0, 0.99, 1e-6, 0.3}, /* beta1 0: m = g */
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
        for (int dt = 0; dt < 2; dt++) {
            lt_tensor *p = param(P0, N, dt ? LT_F32 : LT_F64);
            lt_nn_optim *o = lt_nn_adamw_new(1, &p, &cases[k]);
            ck_assert_msg(o != NULL, "%s", lt_last_error());
            run_steps(o, p, 3);
            double want[N];
            memcpy(want, P0, sizeof want);
            ref_adamw(want, 3, cases[k].lr, cases[k].beta1, cases[k].beta2, cases[k].eps, cases[k].weight_decay);
            char name[32];
            snprintf(name, sizeof name, "adamw case %zu %s", k, dt ? "f32" : "f64");
            assert_close(p, want, dt ? 2e-6 : 1e-13, name);
            lt_nn_optim_free(o);
            lt_release(p);
        }
}
END_TEST

START_TEST(adamw_first_step_moves_by_lr_times_sign)
{
    /* From zero moments, m_hat = g and v_hat = g^2, so the first update is
     * p (1 - lr wd) - lr g / (|g| + eps): by hand, p0 = 1, g = 1, lr 0.1,
     * wd 0.01: 0.999 - 0.1 / (1 + 1e-8) = 0.899000001 (to 1e-16). */
    lt_tensor *p = param((double[]){1.0}, 1, LT_F64);
    lt_nn_adamw_opts ao = {0.1, 0.9, 0.999, 1e-8, 0.01};
    lt_nn_optim *o = lt_nn_adamw_new(1, &p, &ao);
    set_quadratic_grad(p, (double[]){1.0});
    ck_assert_int_eq(lt_nn_optim_step(o), 0);
    ck_assert(fabs(lt_item_at(p, 0) - 0.899000000999999990) < 1e-14);
    lt_nn_optim_free(o);
    lt_release(p);
}
END_TEST

START_TEST(parameters_without_gradients_are_skipped)
{
    lt_tensor *ps[2] = {param(P0, N, LT_F64), param(P0, N, LT_F64)};
    lt_nn_adamw_opts ao = lt_nn_adamw_defaults(0.1);
    lt_nn_optim *o = lt_nn_adamw_new(2, ps, &ao);
    for (int s = 0; s < 3; s++) {
        set_quadratic_grad(ps[0], C);
        ck_assert_int_eq(lt_nn_optim_step(o), 0);
        lt_nn_optim_zero_grad(o);
    }
    double want[N];
    memcpy(want, P0, sizeof want);
    ref_adamw(want, 3, 0.1, 0.9, 0.999, 1e-8, 1e-2);
    assert_close(ps[0], want, 1e-13, "with grad");
    assert_close(ps[1], P0, 0, "without grad"); /* not even weight decay */
    size_t m = lt_frame_push();
    const char *names[8];
    lt_tensor *ts[8];
    ck_assert_int_eq(lt_nn_optim_state_export(o, 8, names, ts), 4); /* step + 3 for param 0 */
    ck_assert_str_eq(names[0], "optim.step");
    ck_assert_int_eq((int)lt_item(ts[0]), 3);
    ck_assert_str_eq(names[1], "optim.state.0.exp_avg");
    ck_assert_str_eq(names[2], "optim.state.0.exp_avg_sq");
    ck_assert_str_eq(names[3], "optim.state.0.step");
    ck_assert_int_eq(lt_dtype_of(ts[3]), LT_I64);
    ck_assert_int_eq((int)lt_item(ts[3]), 3);
    lt_frame_pop(m);
    lt_nn_optim_free(o);
    lt_release(ps[0]);
    lt_release(ps[1]);
}
END_TEST

START_TEST(a_bad_gradient_fails_the_step_and_changes_nothing)
{
    lt_tensor *ps[2] = {param(P0, N, LT_F64), param(P0, N, LT_F32)};
    lt_nn_sgd_opts so = {0.1, 0.9, 0, 0, false};
    lt_nn_optim *o = lt_nn_sgd_new(2, ps, &so);
    set_quadratic_grad(ps[0], C);
    size_t m = lt_frame_push();
    ck_assert_int_eq(lt_ag_set_grad(ps[1], lt_zeros(1, SH(3), LT_F64)), 0); /* wrong dtype */
    lt_frame_pop(m);
    ck_assert_int_eq(lt_nn_optim_step(o), -1);
    ck_assert_msg(strstr(lt_last_error(), "parameter 1 is f32(3) but its gradient is f64(3)"), "%s", lt_last_error());
    assert_close(ps[0], P0, 0, "param 0 untouched");
    ck_assert_int_eq(lt_nn_optim_step_count(o), 0);
    ck_assert_int_eq(lt_nn_optim_state_export(o, 0, NULL, NULL), 1); /* no state yet */
    lt_nn_optim_free(o);
    lt_release(ps[0]);
    lt_release(ps[1]);
}
END_TEST

/* ------------------------------------------------------------------ */
/* State export / import                                               */
/* ------------------------------------------------------------------ */

static char tmp_dir[256];

static void tmp_setup(void)
{
    snprintf(tmp_dir, sizeof tmp_dir, "%s/lt_optim_XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(tmp_dir));
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void tmp_teardown(void) { nftw(tmp_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

static lt_nn_optim *make_opt(bool adamw, int n, lt_tensor **ps)
{
    lt_nn_sgd_opts so = {0.05, 0.9, 0, 0.01, true};
    lt_nn_adamw_opts ao = lt_nn_adamw_defaults(0.05);
    return adamw ? lt_nn_adamw_new(n, ps, &ao) : lt_nn_sgd_new(n, ps, &so);
}

/* Steps with grads c*p on both params, then a third param without grad. */
static void train(lt_nn_optim *o, lt_tensor **ps, int steps)
{
    for (int s = 0; s < steps; s++) {
        set_quadratic_grad(ps[0], C);
        set_quadratic_grad(ps[1], C);
        ck_assert_int_eq(lt_nn_optim_step(o), 0);
        lt_nn_optim_zero_grad(o);
    }
}

START_TEST(state_export_and_import_resume_bitwise_through_a_checkpoint)
{
    for (int kind = 0; kind < 2; kind++) {
        /* Run A: 6 steps in one go. */
        lt_tensor *a[3] = {param(P0, N, LT_F32), param(C, N, LT_F64), param(P0, N, LT_F32)};
        lt_nn_optim *oa = make_opt(kind, 3, a);
        train(oa, a, 6);

        /* Run B: 3 steps, checkpoint weights + state, free everything. */
        lt_tensor *b[3] = {param(P0, N, LT_F32), param(C, N, LT_F64), param(P0, N, LT_F32)};
        lt_nn_optim *ob = make_opt(kind, 3, b);
        train(ob, b, 3);
        char path[512];
        snprintf(path, sizeof path, "%s/resume%d.safetensors", tmp_dir, kind);
        size_t m = lt_frame_push();
        int ns = lt_nn_optim_state_export(ob, 0, NULL, NULL);
        ck_assert_int_eq(ns, kind ? 1 + 2 * 3 : 1 + 2); /* param 2 has no state */
        const char *names[16] = {"w0", "w1", "w2"};
        lt_tensor *ts[16] = {b[0], b[1], b[2]};
        ck_assert_int_eq(lt_nn_optim_state_export(ob, 13, names + 3, ts + 3), ns);
        ck_assert_int_eq(lt_nn_safetensors_save(path, 3 + ns, names, ts, 0, NULL, NULL), 0);
        lt_frame_pop(m);
        lt_nn_optim_free(ob);
        for (int i = 0; i < 3; i++)
            lt_release(b[i]);

        /* Resume: fresh params and optimizer, load, 3 more steps. */
        lt_tensor *c[3] = {param((double[]){0, 0, 0}, N, LT_F32), param((double[]){0, 0, 0}, N, LT_F64),
                           param((double[]){0, 0, 0}, N, LT_F32)};
        lt_nn_optim *oc = make_opt(kind, 3, c);
        lt_nn_tensor_file *f = lt_nn_safetensors_load(path);
        ck_assert_ptr_nonnull(f);
        const char *skip[] = {"optim."};
        lt_nn_load_opts lo = {true, 1, skip};
        ck_assert_msg(lt_nn_load_into(f, 3, (const char *[]){"w0", "w1", "w2"}, c, &lo, NULL) == 0, "%s",
                      lt_last_error());
        int nf = lt_nn_tensor_file_count(f);
        const char *fn[16];
        lt_tensor *ft[16];
        for (int i = 0; i < nf; i++) {
            fn[i] = lt_nn_tensor_file_name(f, i);
            ft[i] = lt_nn_tensor_file_tensor(f, i);
        }
        ck_assert_msg(lt_nn_optim_state_import(oc, nf, fn, ft) == 0, "%s", lt_last_error());
        lt_nn_tensor_file_free(f);
        ck_assert_int_eq(lt_nn_optim_step_count(oc), 3);
        train(oc, c, 3);
        for (int i = 0; i < 3; i++) {
            size_t nb = (size_t)lt_numel(a[i]) * lt_dtype_size(lt_dtype_of(a[i]));
            ck_assert_msg(memcmp(lt_data(a[i]), lt_data(c[i]), nb) == 0, "kind %d param %d differs", kind, i);
        }
        ck_assert_int_eq(lt_nn_optim_step_count(oc), 6);
        lt_nn_optim_free(oa);
        lt_nn_optim_free(oc);
        for (int i = 0; i < 3; i++) {
            lt_release(a[i]);
            lt_release(c[i]);
        }
    }
}
END_TEST

START_TEST(state_import_rejects_what_does_not_fit_and_changes_nothing)
{
    lt_tensor *ps[1] = {param(P0, N, LT_F64)};
    lt_nn_optim *o = make_opt(true, 1, ps);
    run_steps(o, ps[0], 2);
    size_t m = lt_frame_push();
    lt_tensor *step = lt_scalar(5, LT_I64), *good = lt_zeros(1, SH(3), LT_F64), *bad = lt_zeros(1, SH(4), LT_F64);
    struct {
        int n;
        const char *names[4];
        lt_tensor *ts[4];
        const char *msg;
    } cases[] = {
        {1, {"optim.state.0.exp_avg"}, {good}, "no \"optim.step\""},
        {2, {"optim.step", "optim.state.0.momentum_buffer"}, {step, good}, "does not belong"},
        {2, {"optim.step", "optim.state.1.exp_avg"}, {step, good}, "does not belong"},
        {2, {"optim.step", "optim.state.x.exp_avg"}, {step, good}, "does not belong"},
        {4, {"optim.step", "optim.state.0.exp_avg", "optim.state.0.exp_avg_sq", "optim.state.0.step"},
         {step, bad, good, step}, "is (4) but parameter 0 is (3)"},
        {3, {"optim.step", "optim.state.0.exp_avg", "optim.state.0.exp_avg_sq"}, {step, good, good}, "all or none"},
        {3, {"optim.step", "optim.state.0.exp_avg", "optim.state.0.exp_avg"}, {step, good, good}, "duplicate"},
        {1, {"optim.step"}, {good}, "not a non-negative count"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        ck_assert_int_eq(lt_nn_optim_state_import(o, cases[k].n, cases[k].names, cases[k].ts), -1);
        ck_assert_msg(strstr(lt_last_error(), cases[k].msg), "case %zu: %s", k, lt_last_error());
        ck_assert_int_eq(lt_nn_optim_step_count(o), 2);
        ck_assert_int_eq(lt_nn_optim_state_export(o, 0, NULL, NULL), 4);
    }
    /* names outside "optim." are ignored; a state with no entries clears */
    ck_assert_int_eq(lt_nn_optim_state_import(o, 2, (const char *[]){"w0", "optim.step"},
                                              (lt_tensor *[]){bad, step}),
                     0);
    ck_assert_int_eq(lt_nn_optim_step_count(o), 5);
    ck_assert_int_eq(lt_nn_optim_state_export(o, 0, NULL, NULL), 1);
    lt_frame_pop(m);
    lt_nn_optim_free(o);
    lt_release(ps[0]);
}
END_TEST

START_TEST(learning_rate_and_weight_decay_setters)
{
    lt_tensor *ps[2] = {param(P0, N, LT_F64), param(P0, N, LT_F64)};
    lt_nn_sgd_opts so = {0.1, 0, 0, 0.5, false};
    lt_nn_optim *o = lt_nn_sgd_new(2, ps, &so);
    ck_assert_int_eq(lt_nn_optim_set_lr(o, 0.2), 0);
    ck_assert(lt_nn_optim_lr(o) == 0.2);
    ck_assert_int_eq(lt_nn_optim_set_lr(o, -1), -1);
    ck_assert_int_eq(lt_nn_optim_set_weight_decay(o, 1, 0), 0);
    ck_assert_int_eq(lt_nn_optim_set_weight_decay(o, 2, 0), -1);
    ck_assert_int_eq(lt_nn_optim_param_count(o), 2);
    set_quadratic_grad(ps[0], C);
    set_quadratic_grad(ps[1], C);
    ck_assert_int_eq(lt_nn_optim_step(o), 0);
    double w0[N], w1[N];
    memcpy(w0, P0, sizeof w0);
    memcpy(w1, P0, sizeof w1);
    ref_sgd(w0, 1, 0.2, 0, 0, 0.5, false);
    ref_sgd(w1, 1, 0.2, 0, 0, 0, false);
    assert_close(ps[0], w0, 1e-15, "decayed");
    assert_close(ps[1], w1, 1e-15, "not decayed");
    lt_nn_optim_free(o);
    lt_release(ps[0]);
    lt_release(ps[1]);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Schedules                                                           */
/* ------------------------------------------------------------------ */

START_TEST(step_schedule_matches_hand_values)
{
    ck_assert(lt_nn_lr_step(0.1, 0, 30, 0.1) == 0.1);
    ck_assert(lt_nn_lr_step(0.1, 29, 30, 0.1) == 0.1);
    ck_assert(fabs(lt_nn_lr_step(0.1, 30, 30, 0.1) - 0.01) < 1e-17);
    ck_assert(fabs(lt_nn_lr_step(0.1, 65, 30, 0.1) - 0.001) < 1e-17);
    ck_assert(lt_nn_lr_step(2.0, 7, 2, 0.5) == 0.25); /* 2 * 0.5^3 */
    ck_assert(isnan(lt_nn_lr_step(0.1, 5, 0, 0.1)));
    ck_assert_msg(strstr(lt_last_error(), "step_size >= 1"), "%s", lt_last_error());
    ck_assert(isnan(lt_nn_lr_step(0.1, -1, 3, 0.1)));
}
END_TEST

START_TEST(cosine_schedule_with_warmup_matches_hand_values)
{
    /* base 1, 10 warm-up steps from 0.1, 110 in all, eta_min 0 */
#define LR(s) lt_nn_lr_cosine_warmup(1.0, s, 110, 10, 0.1, 0.0)
    ck_assert(fabs(LR(0) - 0.1) < 1e-15);
    ck_assert(fabs(LR(5) - 0.55) < 1e-15);  /* 0.1 + 0.9 * 5/10 */
    ck_assert(fabs(LR(9) - 0.91) < 1e-15);
    ck_assert(fabs(LR(10) - 1.0) < 1e-15);  /* the cosine starts at base */
    ck_assert(fabs(LR(35) - (1 + sqrt(0.5)) / 2) < 1e-15); /* a quarter: cos(pi/4) */
    ck_assert(fabs(LR(60) - 0.5) < 1e-15);  /* half way: cos(pi/2) = 0 */
    ck_assert(fabs(LR(110) - 0.0) < 1e-15);
    ck_assert(LR(500) == 0.0);              /* stays at eta_min */
#undef LR
    /* eta_min 0.2: CosineAnnealingLR's floor */
    ck_assert(fabs(lt_nn_lr_cosine_warmup(1.0, 60, 110, 10, 0.1, 0.2) - 0.6) < 1e-15);
    ck_assert(fabs(lt_nn_lr_cosine_warmup(1.0, 109, 110, 10, 0.1, 0.2) - (0.2 + 0.8 * (1 + cos(M_PI * 99 / 100)) / 2)) <
              1e-15);
    /* no warm-up */
    ck_assert(lt_nn_lr_cosine_warmup(0.3, 0, 100, 0, 1.0, 0) == 0.3);
    ck_assert(fabs(lt_nn_lr_cosine_warmup(0.3, 50, 100, 0, 1.0, 0) - 0.15) < 1e-15);
    /* bad arguments */
    ck_assert(isnan(lt_nn_lr_cosine_warmup(1.0, 0, 10, 10, 0.1, 0)));
    ck_assert(isnan(lt_nn_lr_cosine_warmup(1.0, 0, 10, 2, 1.5, 0)));
    ck_assert_msg(strstr(lt_last_error(), "lr_cosine_warmup"), "%s", lt_last_error());
}
END_TEST

/* ------------------------------------------------------------------ */
/* Clipping                                                            */
/* ------------------------------------------------------------------ */

START_TEST(clip_grad_norm_matches_hand_calculation)
{
    size_t m = lt_frame_push();
    lt_tensor *a = param((double[]){0, 0}, 2, LT_F32), *b = param((double[]){0}, 1, LT_F64),
              *none = param((double[]){0}, 1, LT_F32);
    lt_tensor *ga = lt_from_data((float[]){3, 4}, 1, SH(2), LT_F32);
    lt_tensor *gb = lt_from_data((double[]){12}, 1, SH(1), LT_F64);
    lt_ag_set_grad(a, ga);
    lt_ag_set_grad(b, gb);
    lt_tensor *ps[] = {a, b, none};
    /* sqrt(9 + 16 + 144) = 13: under 20 nothing changes */
    ck_assert(lt_nn_clip_grad_norm(3, ps, 20) == 13);
    ck_assert_ptr_eq(lt_ag_grad_of(a), ga);
    /* max 6.5: coef = 6.5 / (13 + 1e-6) */
    ck_assert(lt_nn_clip_grad_norm(3, ps, 6.5) == 13);
    double coef = 6.5 / (13 + 1e-6);
    ck_assert(fabs(lt_item_at(lt_ag_grad_of(a), 0) - 3 * coef) < 1e-6);
    ck_assert(fabs(lt_item_at(lt_ag_grad_of(a), 1) - 4 * coef) < 1e-6);
    ck_assert(fabs(lt_item_at(lt_ag_grad_of(b), 0) - 12 * coef) < 1e-14);
    ck_assert_ptr_null(lt_ag_grad_of(none));
    /* the old gradient tensors were replaced, not written */
    ck_assert(lt_item_at(ga, 0) == 3 && lt_item_at(gb, 0) == 12);
    /* after clipping the norm is max_norm (up to the 1e-6) */
    ck_assert(fabs(lt_nn_clip_grad_norm(3, ps, 100) - 6.5) < 1e-5);
    /* one gradient tensor shared by two parameters: each scaled once */
    lt_tensor *p1 = param((double[]){0, 0}, 2, LT_F64), *p2 = param((double[]){0, 0}, 2, LT_F64);
    lt_tensor *g = lt_from_data((double[]){3, 4}, 1, SH(2), LT_F64);
    lt_ag_set_grad(p1, g);
    lt_ag_set_grad(p2, g);
    ck_assert(fabs(lt_nn_clip_grad_norm(2, (lt_tensor *[]){p1, p2}, 1.0) - sqrt(50)) < 1e-12);
    double c2 = 1.0 / (sqrt(50) + 1e-6);
    ck_assert(fabs(lt_item_at(lt_ag_grad_of(p1), 1) - 4 * c2) < 1e-14);
    ck_assert(fabs(lt_item_at(lt_ag_grad_of(p2), 1) - 4 * c2) < 1e-14);
    ck_assert(lt_item_at(g, 1) == 4);
    ck_assert(lt_nn_clip_grad_norm(2, (lt_tensor *[]){p1, p2}, 0) == -1);
    lt_frame_pop(m);
    lt_release(a);
    lt_release(b);
    lt_release(none);
    lt_release(p1);
    lt_release(p2);
}
END_TEST

START_TEST(optimizers_leak_nothing)
{
    lt_frame_pop(0);
    lt_cache_trim();
    lt_mem_stats before = lt_mem_stats_get();
    for (int kind = 0; kind < 2; kind++) {
        lt_tensor *ps[2] = {param(P0, N, LT_F32), param(P0, N, LT_F64)};
        lt_nn_optim *o = make_opt(kind, 2, ps);
        train(o, ps, 3);
        size_t m = lt_frame_push();
        const char *names[8];
        lt_tensor *ts[8];
        int ns = lt_nn_optim_state_export(o, 8, names, ts);
        ck_assert_int_eq(lt_nn_optim_state_import(o, ns, names, ts), 0);
        lt_frame_pop(m);
        set_quadratic_grad(ps[0], C);
        lt_nn_clip_grad_norm(2, ps, 0.1);
        lt_nn_optim_free(o);
        lt_release(ps[0]);
        lt_release(ps[1]);
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
    Suite *s = suite_create("optim");
    TCase *sgd = tcase_create("sgd");
    tcase_add_test(sgd, sgd_matches_torch_algorithm_for_three_steps);
    tcase_add_test(sgd, sgd_hand_worked_sequences);
    tcase_add_test(sgd, sgd_refuses_bad_options);
    suite_add_tcase(s, sgd);
    TCase *adam = tcase_create("adamw");
    tcase_add_test(adam, adamw_matches_torch_algorithm_for_three_steps);
    tcase_add_test(adam, adamw_first_step_moves_by_lr_times_sign);
    tcase_add_test(adam, parameters_without_gradients_are_skipped);
    tcase_add_test(adam, a_bad_gradient_fails_the_step_and_changes_nothing);
    tcase_add_test(adam, learning_rate_and_weight_decay_setters);
    suite_add_tcase(s, adam);
    TCase *st = tcase_create("state");
    tcase_add_checked_fixture(st, tmp_setup, tmp_teardown);
    tcase_add_test(st, state_export_and_import_resume_bitwise_through_a_checkpoint);
    tcase_add_test(st, state_import_rejects_what_does_not_fit_and_changes_nothing);
    tcase_add_test(st, optimizers_leak_nothing);
    suite_add_tcase(s, st);
    TCase *sch = tcase_create("schedules");
    tcase_add_test(sch, step_schedule_matches_hand_values);
    tcase_add_test(sch, cosine_schedule_with_warmup_matches_hand_values);
    tcase_add_test(sch, clip_grad_norm_matches_hand_calculation);
    suite_add_tcase(s, sch);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
