/*
 * norm.c: batch norm and layer norm, composed from differentiable ops.
 *
 * Both normalize with statistics computed inside the graph (lt_mean and
 * the biased lt_var), never detached, so the first derivative includes the
 * terms through the mean and variance and the second derivative is exact
 * (DESIGN.md: "no detached mean inside batch-norm variance"). Formulas
 * follow torch.nn.functional.batch_norm / layer_norm.
 */
#include "nn_internal.h"

#include <math.h>
#include <string.h>

/* v in dtype dt (a recorded conversion when it differs). */
static const lt_tensor *as_dtype(const lt_tensor *v, lt_dtype dt)
{
    return lt_dtype_of(v) == dt ? v : lt_to_dtype(v, dt);
}

static int check_channel_vec(const char *what, const lt_tensor *v, int64_t c)
{
    char b[96];
    if (v && (lt_ndim(v) != 1 || lt_size(v, 0) != c ||
              (lt_dtype_of(v) != LT_F32 && lt_dtype_of(v) != LT_F64))) {
        lt_set_error("batch_norm: %s must be (%lld) f32/f64, got %s%s", what, (long long)c,
                     lt_dtype_name(lt_dtype_of(v)), lt_shape_str(v, b, sizeof b));
        return -1;
    }
    return 0;
}

/* running = (1 - m) running + m batch, in place and outside any graph. */
static void update_running(lt_tensor *running, const double *batch, double m, double scale)
{
    int64_t c = lt_size(running, 0);
    void *d = lt_data(running);
    for (int64_t i = 0; i < c; i++) {
        double b = batch[i] * scale;
        if (lt_dtype_of(running) == LT_F32)
            ((float *)d)[i] = (float)((1.0 - m) * ((float *)d)[i] + m * b);
        else
            ((double *)d)[i] = (1.0 - m) * ((double *)d)[i] + m * b;
    }
}

/* ------------------------------------------------------------------ */
/* Training-mode batch norm as three fused ops                         */
/* ------------------------------------------------------------------ */
/*
 * x is seen as (N, C, S) (S = H W, or 1 for (N,C) input); per channel c,
 * over its M = N S values: mu = E[x], c = x - mu, var = E[c^2] (biased),
 * r = (var + eps)^(-1/2), xhat = c r, and with gamma = 1, beta = 0 when
 * there is no affine:
 *
 *   batch_norm_train(x, gamma, beta)      y  = gamma xhat + beta
 *   batch_norm_input_grad(g, x, gamma)    dx = gamma r (g - E[g] - xhat E[g xhat])
 *   batch_norm_weight_grad(g, x)          dg = sum g xhat            (C)
 *
 * (torch's native_batch_norm and native_batch_norm_backward.) Each is one
 * kernel: a read pass for the per-channel sums, then (for the first two) a
 * write pass, where the composed form made about ten full passes and saved
 * as many full-size tensors. The backward formulas are exact to any order:
 *
 *   batch_norm_train:       dx = input_grad(u, x, gamma), dgamma =
 *                           weight_grad(u, x), dbeta = sum u.
 *   batch_norm_weight_grad: dg = v xhat = v batch_norm_train(x), dx = v
 *                           input_grad(g, x, 1)  (d/dx of r <g, c>).
 *   batch_norm_input_grad:  linear and self-adjoint in g, so dg =
 *                           input_grad(u, x, gamma). With h = g - E[g],
 *                           per channel <u, input_grad(g, x, 1)> = M (r
 *                           E[u h] - r^3 E[h c] E[u c]) = dgamma, and
 *                           d/dx of gamma times it, by dr/dx = -r^3 c/M,
 *                           dE[h c]/dx = h/M, dE[u c]/dx = (u - E[u])/M:
 *     dx = gamma r^3 (-E[u h] c + 3 r^2 E[h c] E[u c] c - E[u c] h
 *                     - E[h c] (u - E[u]))
 *
 * That last backward has two forms. When its graph is recorded
 * (create_graph, for the derivatives after it), dx and dgamma are written
 * with differentiable ops (mean, var, rsqrt, ...). Otherwise (the last
 * backward of a double-backprop step) one kernel does both: a read pass
 * for seven sums per channel, from which the expectations above follow
 * exactly (E[u c] = E[u d] - E[u] E[d], ...), then a write pass dx = A (x -
 * K) + B g + D u + E; dg's kernel reuses its sums instead of a read pass.
 * The composed form took about twenty full passes, each its own parallel
 * region.
 *
 * Sums run in double over d = x - K, K = x[0,c,0] (a shift that keeps
 * E[d^2] - E[d]^2 free of cancellation when |mean| >> std), one channel
 * per thread in a fixed order: results do not depend on the thread count.
 */

typedef struct bn_geom {
    int64_t N, C, S;
} bn_geom;

static bn_geom bn_geom_of(const lt_tensor *x)
{
    bn_geom g = {lt_size(x, 0), lt_size(x, 1), 1};
    for (int d = 2; d < lt_ndim(x); d++)
        g.S *= lt_size(x, d);
    return g;
}

/* Per-channel sums over d = x - K (K = x[0,c,0]), ns of them: s[0] = sum
 * d, s[1] = sum d^2; ns >= 4 (with g): s[2] = sum g, s[3] = sum g d; ns = 7
 * (with u too): s[4] = sum u, s[5] = sum u d, s[6] = sum u g. Each sum has
 * four lanes, each summed in order, combined in a fixed way; a row's last
 * S % 4 values go to the first lanes, zeros to the rest (adding +0 leaves
 * a lane's bits alone). A sum's bits do not depend on ns, so the sums
 * bn_kernel2 leaves for input_grad(u, x, gamma) are bitwise that kernel's.
 * The loads fill small arrays and each sum is one loop over them: the form
 * GCC 12 turns into vector adds, where one loop over all sums per lane, a
 * scalar tail into lane 0, or inlining into the OpenMP body leave it
 * scalar (about 2x slower). */
#define BN_LANES 4
#define BN_NSUMS 7
static inline void bn_acc(double a[BN_NSUMS][BN_LANES], int ns, const double *d, const double *gv,
                          const double *uv)
{
    for (int l = 0; l < BN_LANES; l++)
        a[0][l] += d[l];
    for (int l = 0; l < BN_LANES; l++)
        a[1][l] += d[l] * d[l];
    if (ns < 4)
        return;
    for (int l = 0; l < BN_LANES; l++)
        a[2][l] += gv[l];
    for (int l = 0; l < BN_LANES; l++)
        a[3][l] += gv[l] * d[l];
    if (ns < 7)
        return;
    for (int l = 0; l < BN_LANES; l++)
        a[4][l] += uv[l];
    for (int l = 0; l < BN_LANES; l++)
        a[5][l] += uv[l] * d[l];
    for (int l = 0; l < BN_LANES; l++)
        a[6][l] += uv[l] * gv[l];
}

#define DEF_BN_SUMS(T, SUF)                                                                        \
    static __attribute__((noinline)) void bn_sums_##SUF(const T *x, const T *g, const T *u, const bn_geom *G, \
                                                        int64_t c, double K, int ns, double *s)    \
    {                                                                                              \
        double a[BN_NSUMS][BN_LANES] = {{0}};                                                      \
        for (int64_t n = 0; n < G->N; n++) {                                                       \
            int64_t base = (n * G->C + c) * G->S;                                                  \
            const T *xp = x + base, *gp = ns >= 4 ? g + base : NULL, *up = ns >= 7 ? u + base : NULL; \
            for (int64_t i = 0; i < G->S; i += BN_LANES) {                                         \
                double d[BN_LANES], gv[BN_LANES], uv[BN_LANES];                                    \
                int m = G->S - i < BN_LANES ? (int)(G->S - i) : BN_LANES;                          \
                if (m == BN_LANES)                                                                 \
                    for (int l = 0; l < BN_LANES; l++) {                                           \
                        d[l] = (double)xp[i + l] - K;                                              \
                        gv[l] = ns >= 4 ? (double)gp[i + l] : 0.0;                                 \
                        uv[l] = ns >= 7 ? (double)up[i + l] : 0.0;                                 \
                    }                                                                              \
                else                                                                               \
                    for (int l = 0; l < BN_LANES; l++) {                                           \
                        d[l] = l < m ? (double)xp[i + l] - K : 0.0;                                \
                        gv[l] = ns >= 4 && l < m ? (double)gp[i + l] : 0.0;                        \
                        uv[l] = ns >= 7 && l < m ? (double)up[i + l] : 0.0;                        \
                    }                                                                              \
                bn_acc(a, ns, d, gv, uv);                                                          \
            }                                                                                      \
        }                                                                                          \
        for (int k = 0; k < ns; k++)                                                               \
            s[k] = (a[k][0] + a[k][2]) + (a[k][1] + a[k][3]);                                      \
    }

/* out = x A + B per channel (A, B double per channel); with g: out = g G1 + x A + B. */
#define DEF_BN_APPLY(T, SUF)                                                                       \
    static void bn_apply_##SUF(const T *x, const T *g, T *out, const bn_geom *G, int64_t c, double ga, \
                               double a, double b)                                                 \
    {                                                                                              \
        T fa = (T)a, fb = (T)b, fg = (T)ga;                                                        \
        for (int64_t n = 0; n < G->N; n++) {                                                       \
            int64_t base = (n * G->C + c) * G->S;                                                  \
            const T *xp = x + base;                                                                \
            T *op = out + base;                                                                    \
            if (g) {                                                                               \
                const T *gp = g + base;                                                            \
                for (int64_t i = 0; i < G->S; i++)                                                 \
                    op[i] = gp[i] * fg + xp[i] * fa + fb;                                          \
            } else {                                                                               \
                for (int64_t i = 0; i < G->S; i++)                                                 \
                    op[i] = xp[i] * fa + fb;                                                       \
            }                                                                                      \
        }                                                                                          \
    }

DEF_BN_SUMS(float, f32)
DEF_BN_SUMS(double, f64)
DEF_BN_APPLY(float, f32)
DEF_BN_APPLY(double, f64)

/* Channel statistics from the sums: mean, biased var, r = rsqrt(var + eps). */
typedef struct bn_stat {
    double mean, var, r, sg, sgc; /* sg = sum g, sgc = sum g (x - mean) */
} bn_stat;

static bn_stat bn_stat_of(const double s[4], double K, double M, double eps)
{
    bn_stat st;
    double md = s[0] / M;
    st.mean = K + md;
    st.var = s[1] / M - md * md;
    if (st.var < 0)
        st.var = 0;
    st.r = 1.0 / sqrt(st.var + eps);
    st.sg = s[2];
    st.sgc = s[3] - md * s[2];
    return st;
}

enum { BN_FWD, BN_INPUT_GRAD, BN_WEIGHT_GRAD };

/* The three kernels. x, g contiguous (N,C,S) of one dtype; gamma, beta (C)
 * contiguous in that dtype or NULL. out: y / dx (like x) or dgamma (C).
 * mean_out, var_out: the batch statistics (BN_FWD only, may be NULL).
 * sums: NULL, or 5 doubles per channel (the four sums and the shift K) that
 * BN_WEIGHT_GRAD (or bn_kernel2) writes and BN_INPUT_GRAD then reads
 * instead of making its own read pass over g and x (the same sums, so the
 * same bits). */
static void bn_kernel(int which, const lt_tensor *x, const lt_tensor *g, const lt_tensor *gamma,
                      const lt_tensor *beta, lt_tensor *out, double eps, double *mean_out, double *var_out,
                      double *sums)
{
    bn_geom G = bn_geom_of(x);
    bool f32 = lt_dtype_of(x) == LT_F32;
    const void *xd = lt_data(x), *gd = g ? lt_data(g) : NULL;
    const void *wd = gamma ? lt_data(gamma) : NULL, *bd = beta ? lt_data(beta) : NULL;
    void *od = lt_data(out);
    double M = (double)(G.N * G.S);
#pragma omp parallel for schedule(dynamic, 1) if (G.N * G.C * G.S > 16384)
    for (int64_t c = 0; c < G.C; c++) {
        double s[4] = {0}, K = f32 ? ((const float *)xd)[c * G.S] : ((const double *)xd)[c * G.S];
        if (sums && which == BN_INPUT_GRAD)
            memcpy(s, sums + 5 * c, sizeof s);
        else if (f32 && which == BN_FWD)
            bn_sums_f32(xd, NULL, NULL, &G, c, K, 2, s);
        else if (f32)
            bn_sums_f32(xd, gd, NULL, &G, c, K, 4, s);
        else if (which == BN_FWD)
            bn_sums_f64(xd, NULL, NULL, &G, c, K, 2, s);
        else
            bn_sums_f64(xd, gd, NULL, &G, c, K, 4, s);
        if (sums && which == BN_WEIGHT_GRAD) {
            memcpy(sums + 5 * c, s, sizeof s);
            sums[5 * c + 4] = K;
        }
        bn_stat st = bn_stat_of(s, K, M, eps);
        double w = wd ? (f32 ? ((const float *)wd)[c] : ((const double *)wd)[c]) : 1.0;
        if (which == BN_WEIGHT_GRAD) {
            double v = st.r * st.sgc;
            if (f32)
                ((float *)od)[c] = (float)v;
            else
                ((double *)od)[c] = v;
            continue;
        }
        double ga = 0, a, b;
        if (which == BN_FWD) {
            double be = bd ? (f32 ? ((const float *)bd)[c] : ((const double *)bd)[c]) : 0.0;
            a = w * st.r;
            b = be - st.mean * a;
            if (mean_out) {
                mean_out[c] = st.mean;
                var_out[c] = st.var;
            }
        } else {
            /* dx = w r g - w r sg/M - w r^3 sgc/M (x - mean) */
            double r3 = st.r * st.r * st.r;
            ga = w * st.r;
            a = -w * r3 * st.sgc / M;
            b = -w * st.r * st.sg / M - a * st.mean;
        }
        if (f32)
            bn_apply_f32(xd, which == BN_FWD ? NULL : gd, od, &G, c, ga, a, b);
        else
            bn_apply_f64(xd, which == BN_FWD ? NULL : gd, od, &G, c, ga, a, b);
    }
}

/* The backward of input_grad(g, x, gamma) against u when no graph is
 * recorded: the seven sums of bn_sums, then dx = A (x - K) + B g + D u +
 * E per element, in double and rounded once (the shift keeps A x and E
 * from cancelling when |mean| >> std). */
#define DEF_BN_APPLY2(T, SUF)                                                                      \
    static void bn_apply2_##SUF(const T *x, const T *g, const T *u, T *out, const bn_geom *G, int64_t c, \
                                double K, const double k[4])                                       \
    {                                                                                              \
        double ka = k[0], kb = k[1], kd = k[2], ke = k[3];                                         \
        for (int64_t n = 0; n < G->N; n++) {                                                       \
            int64_t base = (n * G->C + c) * G->S;                                                  \
            const T *xp = x + base, *gp = g + base, *up = u + base;                                \
            T *op = out + base;                                                                    \
            for (int64_t i = 0; i < G->S; i++)                                                     \
                op[i] = (T)(ka * ((double)xp[i] - K) + kb * (double)gp[i] + kd * (double)up[i] + ke); \
        }                                                                                          \
    }

DEF_BN_APPLY2(float, f32)
DEF_BN_APPLY2(double, f64)

/* Per channel, from the seven sums (M values, gamma w), with c = x - mean,
 * h = g - E[g] (so E[h c] = E[g d] - E[g] E[d]):
 *   k[0..3]: A, B, D, E of dx = A (x - K) + B g + D u + E, the formula at
 *            the top of the section expanded about K;
 *   return:  sum u input_grad(g, x, 1) = M r (E[u h] - r^2 E[h c] E[u c]). */
static double bn_coef2(const double s[BN_NSUMS], double K, double M, double eps, double w, double k[4])
{
    bn_stat st = bn_stat_of(s, K, M, eps);
    double md = s[0] / M, Eg = s[2] / M, Eu = s[4] / M; /* md as bn_stat_of has it, not st.mean - K */
    double Ehc = st.sgc / M, Euc = s[5] / M - Eu * md, Euh = s[6] / M - Eu * Eg;
    double r2 = st.r * st.r, kr = w * r2 * st.r, kc = 3.0 * r2 * Ehc * Euc - Euh;
    k[0] = kr * kc;
    k[1] = -kr * Euc;
    k[2] = -kr * Ehc;
    k[3] = kr * (Euc * Eg + Ehc * Eu - kc * md);
    return M * st.r * (Euh - r2 * Ehc * Euc);
}

/* The kernel. u, g, x contiguous (N,C,S) of one dtype, gamma (C) in it or
 * NULL. dx (like x) or NULL: d/dx <u, input_grad(g, x, gamma)>. dgamma (C)
 * or NULL: sum u input_grad(g, x, 1). usums: NULL, or 5 C doubles that
 * receive the sums bn_kernel's BN_INPUT_GRAD reads for input_grad(u, x,
 * gamma) (layout as there). */
static void bn_kernel2(const lt_tensor *u, const lt_tensor *g, const lt_tensor *x, const lt_tensor *gamma,
                       lt_tensor *dx, lt_tensor *dgamma, double eps, double *usums)
{
    bn_geom G = bn_geom_of(x);
    bool f32 = lt_dtype_of(x) == LT_F32;
    const void *ud = lt_data(u), *gd = lt_data(g), *xd = lt_data(x), *wd = gamma ? lt_data(gamma) : NULL;
    void *od = dx ? lt_data(dx) : NULL, *dwd = dgamma ? lt_data(dgamma) : NULL;
    double M = (double)(G.N * G.S);
#pragma omp parallel for schedule(dynamic, 1) if (G.N * G.C * G.S > 16384)
    for (int64_t c = 0; c < G.C; c++) {
        double s[BN_NSUMS], k[4], K = f32 ? ((const float *)xd)[c * G.S] : ((const double *)xd)[c * G.S];
        if (f32)
            bn_sums_f32(xd, gd, ud, &G, c, K, BN_NSUMS, s);
        else
            bn_sums_f64(xd, gd, ud, &G, c, K, BN_NSUMS, s);
        if (usums) {
            double *us = usums + 5 * c;
            us[0] = s[0];
            us[1] = s[1];
            us[2] = s[4];
            us[3] = s[5];
            us[4] = K;
        }
        double w = wd ? (f32 ? ((const float *)wd)[c] : ((const double *)wd)[c]) : 1.0;
        double dw = bn_coef2(s, K, M, eps, w, k);
        if (dwd && f32)
            ((float *)dwd)[c] = (float)dw;
        else if (dwd)
            ((double *)dwd)[c] = dw;
        if (od && f32)
            bn_apply2_f32(xd, gd, ud, od, &G, c, K, k);
        else if (od)
            bn_apply2_f64(xd, gd, ud, od, &G, c, K, k);
    }
}

/* Whether an op on these inputs (NULL entries skipped) records a graph:
 * grad mode is on and one of them requires grad. Only then do the fused
 * paths without a backward of their own have to give way. */
static bool bn_records(int n, const lt_tensor *const *in)
{
    if (!lt_ag_grad_enabled())
        return false;
    for (int i = 0; i < n; i++)
        if (in[i] && lt_ag_requires_grad(in[i]))
            return true;
    return false;
}

/* Reduced dims of an (N,C,...) tensor: all but 1. */
static int bn_dims(const lt_tensor *x, int *dims)
{
    int n = 0;
    for (int d = 0; d < lt_ndim(x); d++)
        if (d != 1)
            dims[n++] = d;
    return n;
}

/* (C) -> (1,C,1,...) to broadcast against an nd-dim x. */
static lt_tensor *bn_bcast(const lt_tensor *v, int nd)
{
    int64_t sh[LT_MAX_DIMS];
    for (int d = 0; d < nd; d++)
        sh[d] = d == 1 ? lt_size(v, 0) : 1;
    return lt_reshape(v, nd, sh);
}

static lt_tensor *bn_input_grad(const lt_tensor *g, const lt_tensor *x, const lt_tensor *gamma, double eps,
                                double *sums);
static lt_tensor *bn_weight_grad(const lt_tensor *g, const lt_tensor *x, double eps, double *sums);
static lt_tensor *bn_train(const lt_tensor *x, const lt_tensor *gamma, const lt_tensor *beta, double eps,
                           double *mean_out, double *var_out);

static int bw_bn_train(lt_ag_ctx *ctx, const lt_tensor *u, lt_tensor **gin)
{
    const lt_tensor *x = lt_ag_saved(ctx, 0), *gamma = lt_ag_saved(ctx, 1);
    double eps = lt_ag_darg(ctx, 0);
    int dims[LT_MAX_DIMS], nd = bn_dims(x, dims);
    /* weight_grad's read pass leaves the per-channel sums that input_grad
     * needs: one read pass over (u, x) for both. */
    bool both = lt_ag_needs_grad(ctx, 0) && lt_ag_needs_grad(ctx, 1);
    size_t sbytes = sizeof(double) * 5 * (size_t)lt_size(x, 1);
    double *sums = both ? lt_alloc(sbytes) : NULL;
    if (both && !sums)
        return -1;
    int rc = -1;
    if (lt_ag_needs_grad(ctx, 1) && !(gin[1] = bn_weight_grad(u, x, eps, sums)))
        goto out;
    if (lt_ag_needs_grad(ctx, 0) && !(gin[0] = bn_input_grad(u, x, gamma, eps, sums)))
        goto out;
    if (lt_ag_needs_grad(ctx, 2) && !(gin[2] = lt_sum(u, nd, dims, false)))
        goto out;
    rc = 0;
out:
    if (sums)
        lt_free(sums, sbytes);
    return rc;
}

/* d/dx of <u, input_grad(g, x, gamma)>: see the comment at the top. */
static lt_tensor *bn_input_grad_dx(const lt_tensor *u, const lt_tensor *g, const lt_tensor *x,
                                   const lt_tensor *gamma, double eps)
{
    int dims[LT_MAX_DIMS], nd = bn_dims(x, dims), rank = lt_ndim(x);
    lt_tensor *c = lt_sub(x, lt_mean(x, nd, dims, true));
    lt_tensor *r = lt_rsqrt(lt_add_scalar(lt_var(x, nd, dims, false, true), eps));
    lt_tensor *h = lt_sub(g, lt_mean(g, nd, dims, true));
    lt_tensor *Euh = lt_mean(lt_mul(u, h), nd, dims, true), *Euc = lt_mean(lt_mul(u, c), nd, dims, true);
    lt_tensor *Ehc = lt_mean(lt_mul(h, c), nd, dims, true), *Eu = lt_mean(u, nd, dims, true);
    lt_tensor *r2 = lt_mul(r, r), *r3 = lt_mul(r2, r);
    /* coefficient of c: 3 r^2 E[hc] E[uc] - E[uh] */
    lt_tensor *kc = lt_sub(lt_mul_scalar(lt_mul(r2, lt_mul(Ehc, Euc)), 3.0), Euh);
    lt_tensor *t = lt_sub(lt_sub(lt_mul(kc, c), lt_mul(Euc, h)), lt_mul(Ehc, lt_sub(u, Eu)));
    lt_tensor *k = gamma ? lt_mul(r3, bn_bcast(gamma, rank)) : r3;
    return lt_mul(k, t);
}

/* bw_bn_input_grad without a graph to record: bn_kernel2 for dx and
 * dgamma, whose read pass also leaves the sums for dg. g, x, gamma are the
 * saved kernel operands (contiguous, x's dtype); u has that dtype too. */
static int bw_bn_input_grad_direct(lt_ag_ctx *ctx, const lt_tensor *u, const lt_tensor *g, const lt_tensor *x,
                                   const lt_tensor *gamma, double eps, lt_tensor **gin)
{
    lt_dtype dt = lt_dtype_of(x);
    const lt_tensor *uc = lt_contiguous(u);
    lt_tensor *dx = lt_ag_needs_grad(ctx, 1) ? lt_empty(lt_ndim(x), lt_shape(x), dt) : NULL;
    lt_tensor *dw = lt_ag_needs_grad(ctx, 2) ? lt_empty(1, (int64_t[]){lt_size(x, 1)}, dt) : NULL;
    size_t sbytes = sizeof(double) * 5 * (size_t)lt_size(x, 1);
    double *sums = lt_ag_needs_grad(ctx, 0) ? lt_alloc(sbytes) : NULL;
    int rc = -1;
    if (!uc || (lt_ag_needs_grad(ctx, 1) && !dx) || (lt_ag_needs_grad(ctx, 2) && !dw) ||
        (lt_ag_needs_grad(ctx, 0) && !sums))
        goto out;
    bn_kernel2(uc, g, x, gamma, dx, dw, eps, sums);
    if (lt_ag_needs_grad(ctx, 0) && !(gin[0] = bn_input_grad(uc, x, gamma, eps, sums)))
        goto out;
    gin[1] = dx;
    gin[2] = dw;
    rc = 0;
out:
    if (sums)
        lt_free(sums, sbytes);
    return rc;
}

static int bw_bn_input_grad(lt_ag_ctx *ctx, const lt_tensor *u, lt_tensor **gin)
{
    const lt_tensor *g = lt_ag_saved(ctx, 0), *x = lt_ag_saved(ctx, 1), *gamma = lt_ag_saved(ctx, 2);
    double eps = lt_ag_darg(ctx, 0);
    int dims[LT_MAX_DIMS], nd = bn_dims(x, dims);
    /* The composed formulas below only when their graph is recorded (for
     * the derivatives after this one); else one fused kernel. */
    if ((lt_ag_needs_grad(ctx, 1) || lt_ag_needs_grad(ctx, 2)) && lt_dtype_of(u) == lt_dtype_of(x) &&
        !bn_records(4, (const lt_tensor *const[]){u, g, x, gamma}))
        return bw_bn_input_grad_direct(ctx, u, g, x, gamma, eps, gin);
    if (lt_ag_needs_grad(ctx, 0) && !(gin[0] = bn_input_grad(u, x, gamma, eps, NULL)))
        return -1;
    if (lt_ag_needs_grad(ctx, 1) && !(gin[1] = bn_input_grad_dx(u, g, x, gamma, eps)))
        return -1;
    if (lt_ag_needs_grad(ctx, 2) &&
        !(gin[2] = lt_sum(lt_mul(u, bn_input_grad(g, x, NULL, eps, NULL)), nd, dims, false)))
        return -1;
    return 0;
}

static int bw_bn_weight_grad(lt_ag_ctx *ctx, const lt_tensor *v, lt_tensor **gin)
{
    const lt_tensor *g = lt_ag_saved(ctx, 0), *x = lt_ag_saved(ctx, 1);
    double eps = lt_ag_darg(ctx, 0);
    lt_tensor *vb = bn_bcast(v, lt_ndim(x));
    if (lt_ag_needs_grad(ctx, 0) && !(gin[0] = lt_mul(vb, bn_train(x, NULL, NULL, eps, NULL, NULL))))
        return -1;
    if (lt_ag_needs_grad(ctx, 1) && !(gin[1] = lt_mul(vb, bn_input_grad(g, x, NULL, eps, NULL))))
        return -1;
    return 0;
}

static const lt_ag_fn bn_train_fn = {"batch_norm_train", bw_bn_train};
static const lt_ag_fn bn_input_grad_fn = {"batch_norm_input_grad", bw_bn_input_grad};
static const lt_ag_fn bn_weight_grad_fn = {"batch_norm_weight_grad", bw_bn_weight_grad};

/* Operands of the kernels: contiguous and in x's dtype (conversions and
 * copies are recorded ops, so gradients flow through them). */
static const lt_tensor *bn_operand(const lt_tensor *v, lt_dtype dt)
{
    if (!v)
        return NULL;
    return lt_contiguous(lt_dtype_of(v) == dt ? v : lt_to_dtype(v, dt));
}

static lt_tensor *bn_train(const lt_tensor *x, const lt_tensor *gamma, const lt_tensor *beta, double eps,
                           double *mean_out, double *var_out)
{
    lt_dtype dt = lt_dtype_of(x);
    const lt_tensor *xc = lt_contiguous(x), *gc = bn_operand(gamma, dt), *bc = bn_operand(beta, dt);
    lt_tensor *y = lt_empty(lt_ndim(x), lt_shape(x), dt);
    if (!xc || !y || (gamma && !gc) || (beta && !bc))
        return NULL;
    bn_kernel(BN_FWD, xc, NULL, gc, bc, y, eps, mean_out, var_out, NULL);
    if (lt_ag_record(&bn_train_fn, 3, (const lt_tensor *const[]){xc, gc, bc}, y, 2,
                     (const lt_tensor *const[]){xc, gc}, 0, NULL, 1, &eps) < 0)
        return NULL;
    return y;
}

/* sums: NULL, or the per-channel sums bn_weight_grad left for the same
 * (g, x) (see bn_kernel). */
static lt_tensor *bn_input_grad(const lt_tensor *g, const lt_tensor *x, const lt_tensor *gamma, double eps,
                                double *sums)
{
    lt_dtype dt = lt_dtype_of(x);
    const lt_tensor *gc = bn_operand(g, dt), *xc = lt_contiguous(x), *wc = bn_operand(gamma, dt);
    lt_tensor *dx = lt_empty(lt_ndim(x), lt_shape(x), dt);
    if (!gc || !xc || !dx || (gamma && !wc))
        return NULL;
    bn_kernel(BN_INPUT_GRAD, xc, gc, wc, NULL, dx, eps, NULL, NULL, sums);
    if (lt_ag_record(&bn_input_grad_fn, 3, (const lt_tensor *const[]){gc, xc, wc}, dx, 3,
                     (const lt_tensor *const[]){gc, xc, wc}, 0, NULL, 1, &eps) < 0)
        return NULL;
    return dx;
}

/* sums: NULL, or 5 C doubles to receive the per-channel sums. */
static lt_tensor *bn_weight_grad(const lt_tensor *g, const lt_tensor *x, double eps, double *sums)
{
    lt_dtype dt = lt_dtype_of(x);
    const lt_tensor *gc = bn_operand(g, dt), *xc = lt_contiguous(x);
    lt_tensor *dw = lt_empty(1, (int64_t[]){lt_size(x, 1)}, dt);
    if (!gc || !xc || !dw)
        return NULL;
    bn_kernel(BN_WEIGHT_GRAD, xc, gc, NULL, NULL, dw, eps, NULL, NULL, sums);
    if (lt_ag_record(&bn_weight_grad_fn, 2, (const lt_tensor *const[]){gc, xc}, dw, 2,
                     (const lt_tensor *const[]){gc, xc}, 0, NULL, 1, &eps) < 0)
        return NULL;
    return dw;
}

const lt_ag_fn *const *lt__nn_norm_fns(void)
{
    static const lt_ag_fn *const fns[] = {&bn_train_fn, &bn_input_grad_fn, &bn_weight_grad_fn, NULL};
    return fns;
}

/* Eval mode with no graph to record: y = x s + t per channel in one pass
 * instead of two broadcast ops and a temporary. Each element is rounded
 * as lt_add(lt_mul(x, s), t) rounds it (C11 mode: no FMA contraction), so
 * the result is bitwise that of the recorded path. s, t: (C), x's dtype. */
#define DEF_BN_EVAL(T, SUF)                                                                        \
    static void bn_eval_##SUF(const T *x, const T *s, const T *t, T *y, const bn_geom *G)          \
    {                                                                                              \
        _Pragma("omp parallel for schedule(static) if (G->N * G->C * G->S > 16384)")               \
        for (int64_t nc = 0; nc < G->N * G->C; nc++) {                                             \
            T sv = s[nc % G->C], tv = t[nc % G->C];                                                \
            const T *xp = x + nc * G->S;                                                           \
            T *yp = y + nc * G->S;                                                                 \
            for (int64_t i = 0; i < G->S; i++) {                                                   \
                T m = xp[i] * sv;                                                                  \
                yp[i] = m + tv;                                                                    \
            }                                                                                      \
        }                                                                                          \
    }
DEF_BN_EVAL(float, f32)
DEF_BN_EVAL(double, f64)

static lt_tensor *bn_eval_direct(const lt_tensor *x, const lt_tensor *s, const lt_tensor *t)
{
    lt_dtype dt = lt_dtype_of(x);
    const lt_tensor *xc = lt_contiguous(x), *sc = lt_contiguous(s), *tc = lt_contiguous(t);
    lt_tensor *y = lt_empty(lt_ndim(x), lt_shape(x), dt);
    if (!xc || !sc || !tc || !y)
        return NULL;
    bn_geom G = bn_geom_of(xc);
    if (dt == LT_F32)
        bn_eval_f32(lt_data(xc), lt_data(sc), lt_data(tc), lt_data(y), &G);
    else
        bn_eval_f64(lt_data(xc), lt_data(sc), lt_data(tc), lt_data(y), &G);
    return y;
}

lt_tensor *lt_nn_batch_norm(const lt_tensor *x, lt_tensor *running_mean, lt_tensor *running_var,
                            const lt_tensor *weight, const lt_tensor *bias, bool training, double momentum,
                            double eps)
{
    if (!x || lt_nn_register_ops() < 0)
        return NULL;
    char b[96];
    int nd = lt_ndim(x);
    lt_dtype dt = lt_dtype_of(x);
    if ((nd != 2 && nd != 4) || (dt != LT_F32 && dt != LT_F64)) {
        lt_set_error("batch_norm: input must be (N,C) or (N,C,H,W) f32/f64, got %s%s", lt_dtype_name(dt),
                     lt_shape_str(x, b, sizeof b));
        return NULL;
    }
    int64_t c = lt_size(x, 1), count = lt_numel(x) / (c ? c : 1);
    if (check_channel_vec("running_mean", running_mean, c) < 0 || check_channel_vec("running_var", running_var, c) < 0 ||
        check_channel_vec("weight", weight, c) < 0 || check_channel_vec("bias", bias, c) < 0)
        return NULL;
    if ((!training && (!running_mean || !running_var)) || (!running_mean != !running_var)) {
        lt_set_error("batch_norm: eval mode needs running_mean and running_var (both or neither in training)");
        return NULL;
    }
    if (running_mean && (!lt_is_contiguous(running_mean) || !lt_is_contiguous(running_var) ||
                         lt_ag_requires_grad(running_mean) || lt_ag_requires_grad(running_var))) {
        lt_set_error("batch_norm: running statistics must be contiguous buffers without grad");
        return NULL;
    }
    if (training && count < 2) {
        lt_set_error("batch_norm: training needs more than one value per channel, got input %s",
                     lt_shape_str(x, b, sizeof b));
        return NULL;
    }
    if (!training) {
        /* y = x s + t with s = weight rsqrt(running_var + eps), t = bias -
         * running_mean s: per-channel (C) ops, then two passes over x. */
        lt_tensor *s = lt_rsqrt(lt_add_scalar(as_dtype(running_var, dt), eps));
        if (weight)
            s = lt_mul(s, as_dtype(weight, dt));
        lt_tensor *t = lt_neg(lt_mul(as_dtype(running_mean, dt), s));
        if (bias)
            t = lt_add(t, as_dtype(bias, dt));
        if (!bn_records(3, (const lt_tensor *const[]){x, weight, bias}))
            return bn_eval_direct(x, s, t);
        return lt_add(lt_mul(x, bn_bcast(s, nd)), bn_bcast(t, nd));
    }
    if (c > (1 << 20)) {
        lt_set_error("batch_norm: %lld channels is too many", (long long)c);
        return NULL;
    }
    double *stats = running_mean ? lt_alloc(sizeof(double) * 2 * (size_t)c) : NULL;
    if (running_mean && !stats)
        return NULL;
    lt_tensor *y = bn_train(x, weight, bias, eps, stats, stats ? stats + c : NULL);
    if (y && running_mean) {
        /* torch updates the running variance with the unbiased estimate. */
        update_running(running_mean, stats, momentum, 1.0);
        update_running(running_var, stats + c, momentum, (double)count / (double)(count - 1));
    }
    if (stats)
        lt_free(stats, sizeof(double) * 2 * (size_t)c);
    return y;
}

lt_tensor *lt_nn_layer_norm(const lt_tensor *x, int ndims, const lt_tensor *weight, const lt_tensor *bias,
                            double eps)
{
    if (!x || lt_nn_register_ops() < 0)
        return NULL;
    char b[96];
    int nd = lt_ndim(x);
    lt_dtype dt = lt_dtype_of(x);
    if ((dt != LT_F32 && dt != LT_F64) || ndims < 1 || ndims > nd) {
        lt_set_error("layer_norm: input %s%s, %d normalized dims", lt_dtype_name(dt), lt_shape_str(x, b, sizeof b),
                     ndims);
        return NULL;
    }
    const lt_tensor *aff[2] = {weight, bias};
    for (int a = 0; a < 2; a++) {
        const lt_tensor *v = aff[a];
        if (!v)
            continue;
        bool ok = lt_ndim(v) == ndims && lt_dtype_of(v) == dt;
        for (int d = 0; ok && d < ndims; d++)
            ok = lt_size(v, d) == lt_size(x, nd - ndims + d);
        if (!ok) {
            char bv[96];
            lt_set_error("layer_norm: %s %s does not match the last %d dims of %s", a ? "bias" : "weight",
                         lt_shape_str(v, bv, sizeof bv), ndims, lt_shape_str(x, b, sizeof b));
            return NULL;
        }
    }
    int dims[LT_MAX_DIMS];
    for (int d = 0; d < ndims; d++)
        dims[d] = nd - ndims + d;
    lt_tensor *mean = lt_mean(x, ndims, dims, true);
    lt_tensor *var = lt_var(x, ndims, dims, false, true);
    lt_tensor *y = lt_mul(lt_sub(x, mean), lt_rsqrt(lt_add_scalar(var, eps)));
    if (weight)
        y = lt_mul(y, weight);
    if (bias)
        y = lt_add(y, bias);
    return y;
}

/* ---- registry entries ---- */

static lt_tensor *leaf(lt_tensor *t) { return lt_ag_set_requires_grad(t, true); }

/* batch_norm_train: x, weight, bias (random gamma and beta); variant 1 is
 * (N,C), variant 2 has no affine and a non-contiguous x. */
static int s_bn(int v, lt_rng *r, lt_tensor **in)
{
    if (v == 1)
        in[0] = lt__nn_rnd(r, 2, (int64_t[]){5, 3}, -2, 2);
    else if (v == 2)
        in[0] = lt_transpose(lt__nn_rnd(r, 4, (int64_t[]){2, 3, 4, 3}, -2, 2), 2, 3);
    else
        in[0] = lt__nn_rnd(r, 4, (int64_t[]){2, 3, 3, 4}, -2, 2);
    in[0] = leaf(in[0]);
    if (v == 2)
        return 1;
    in[1] = leaf(lt__nn_rnd(r, 1, (int64_t[]){3}, 0.5, 1.5));
    in[2] = leaf(lt__nn_rnd(r, 1, (int64_t[]){3}, -1, 1));
    return 3;
}

static lt_tensor *f_bn_train(void *ud, int n, lt_tensor *const *in)
{
    (void)ud;
    /* Squared so that the second derivative is not trivially zero in y. */
    return lt_pow_scalar(lt_nn_batch_norm(in[0], NULL, NULL, n > 1 ? in[1] : NULL, n > 2 ? in[2] : NULL, true, 0.1,
                                          1e-5),
                         2.0);
}

static lt_tensor *f_bn_eval(void *ud, int n, lt_tensor *const *in)
{
    (void)ud;
    lt_tensor *rm = lt_full(1, (int64_t[]){lt_size(in[0], 1)}, 0.2, LT_F64);
    lt_tensor *rv = lt_full(1, (int64_t[]){lt_size(in[0], 1)}, 1.7, LT_F64);
    return lt_pow_scalar(
        lt_nn_batch_norm(in[0], rm, rv, n > 1 ? in[1] : NULL, n > 2 ? in[2] : NULL, false, 0.1, 1e-5), 2.0);
}

static int s_ln(int v, lt_rng *r, lt_tensor **in)
{
    in[0] = leaf(v == 2 ? lt_transpose(lt__nn_rnd(r, 3, (int64_t[]){2, 5, 3}, -2, 2), 1, 2)
                        : lt__nn_rnd(r, 3, (int64_t[]){2, 3, 5}, -2, 2));
    if (v == 1) {
        in[1] = leaf(lt__nn_rnd(r, 2, (int64_t[]){3, 5}, 0.5, 1.5));
        in[2] = leaf(lt__nn_rnd(r, 2, (int64_t[]){3, 5}, -1, 1));
        return 3;
    }
    in[1] = leaf(lt__nn_rnd(r, 1, (int64_t[]){5}, 0.5, 1.5));
    in[2] = leaf(lt__nn_rnd(r, 1, (int64_t[]){5}, -1, 1));
    return 3;
}

static lt_tensor *f_ln(void *ud, int n, lt_tensor *const *in)
{
    (void)ud;
    (void)n;
    return lt_pow_scalar(lt_nn_layer_norm(in[0], lt_ndim(in[1]), in[1], in[2], 1e-5), 2.0);
}

/* batch_norm_input_grad (g, x, gamma) and batch_norm_weight_grad (g, x):
 * variant 0 (N,C,H,W), 1 (N,C), 2 without gamma and with a non-contiguous
 * x. Squared, so that every second derivative is exercised. */
static int s_bn_grad(int v, lt_rng *r, lt_tensor **in, bool with_gamma)
{
    lt_tensor *x;
    if (v == 1)
        x = lt__nn_rnd(r, 2, (int64_t[]){5, 3}, -2, 2);
    else if (v == 2)
        x = lt_transpose(lt__nn_rnd(r, 4, (int64_t[]){2, 3, 4, 3}, -2, 2), 2, 3);
    else
        x = lt__nn_rnd(r, 4, (int64_t[]){2, 3, 3, 4}, -2, 2);
    in[0] = leaf(lt__nn_rnd(r, lt_ndim(x), lt_shape(x), -1, 1));
    in[1] = leaf(x);
    if (!with_gamma || v == 2)
        return 2;
    in[2] = leaf(lt__nn_rnd(r, 1, (int64_t[]){3}, 0.5, 1.5));
    return 3;
}

static int s_bn_input_grad(int v, lt_rng *r, lt_tensor **in) { return s_bn_grad(v, r, in, true); }
static int s_bn_weight_grad(int v, lt_rng *r, lt_tensor **in) { return s_bn_grad(v, r, in, false); }

static lt_tensor *f_bn_input_grad(void *ud, int n, lt_tensor *const *in)
{
    (void)ud;
    if (lt_nn_register_ops() < 0)
        return NULL;
    return lt_pow_scalar(bn_input_grad(in[0], in[1], n > 2 ? in[2] : NULL, 1e-5, NULL), 2.0);
}

static lt_tensor *f_bn_weight_grad(void *ud, int n, lt_tensor *const *in)
{
    (void)ud;
    (void)n;
    if (lt_nn_register_ops() < 0)
        return NULL;
    return lt_pow_scalar(bn_weight_grad(in[0], in[1], 1e-5, NULL), 2.0);
}

static const lt_ag_opinfo norm_ops[] = {
    {"batch_norm_train", 3, s_bn, f_bn_train},
    {"batch_norm_eval", 3, s_bn, f_bn_eval},
    {"batch_norm_input_grad", 3, s_bn_input_grad, f_bn_input_grad},
    {"batch_norm_weight_grad", 3, s_bn_weight_grad, f_bn_weight_grad},
    {"layer_norm", 3, s_ln, f_ln},
};

const lt_ag_opinfo *lt__nn_norm_ops(int *n)
{
    *n = (int)(sizeof norm_ops / sizeof norm_ops[0]);
    return norm_ops;
}
