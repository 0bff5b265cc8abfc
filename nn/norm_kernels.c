/*
 * norm_kernels.c: the per-channel kernels behind batch norm's fused ops
 * in norm.c: training mode's forward, input gradient and weight gradient
 * (lt__bn_kernel), the backward of the input gradient when no graph is
 * recorded (lt__bn_kernel2), and eval mode's single pass (lt__bn_eval).
 * They read and write the data of contiguous f32/f64 tensors and record
 * nothing (norm_internal.h). The formulas they evaluate, and why each op is
 * one kernel, are in norm.c's comment on the three fused ops.
 *
 * x is seen as (N, C, S); per channel, M = N S values. lt__bn_kernel makes
 * a read pass for per-channel sums, from which the mean, the biased
 * variance and r = (var + eps)^(-1/2) follow, then (y, dx) a write pass
 * out = x A + B or g G1 + x A + B with A, B, G1 per channel.
 * lt__bn_kernel2's read pass takes seven sums per channel, from which the
 * expectations of norm.c's second-order dx follow exactly (E[u c] = E[u d]
 * - E[u] E[d], ...), then a write pass dx = A (x - K) + B g + D u + E.
 *
 * Sums run in double over d = x - K, K = x[0,c,0] (a shift that keeps
 * E[d^2] - E[d]^2 free of cancellation when |mean| >> std), one channel
 * per thread in a fixed order: results do not depend on the thread count.
 */
#include "norm_internal.h"

#include <math.h>
#include <string.h>

/* x (N, C, ...) seen as (N, C, S). */
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

/* Channels per scheduled chunk: where a channel's run of S values in an
 * image is shorter than a cache line (16 f32), neighbouring channels share
 * lines, and threads taking them one at a time wrote the same lines
 * (ResNet-18's layer3 and layer4 at 32x32 inputs, S = 4 and 1): whole
 * r18_train_32 steps 1.014-1.027x with 16 / S channels per chunk. Which
 * thread takes a channel does not change its result. */
static int bn_chunk(const bn_geom *G) { return (int)(16 / (G->S < 16 ? G->S : 16)); }

/* Per-channel sums over d = x - K (K = x[0,c,0]), ns of them: s[0] = sum
 * d, s[1] = sum d^2; ns >= 4 (with g): s[2] = sum g, s[3] = sum g d; ns = 7
 * (with u too): s[4] = sum u, s[5] = sum u d, s[6] = sum u g. Each sum has
 * four lanes (f32 with S >= 16: sixteen, bn_sums16_f32 below), each summed
 * in order, combined in a fixed way; a row's last
 * S % 4 values go to the first lanes, zeros to the rest (adding +0 leaves
 * a lane's bits alone). A sum's bits do not depend on ns, so the sums
 * lt__bn_kernel2 leaves for input_grad(u, x, gamma) are bitwise those of
 * lt__bn_kernel's own read pass.
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

DEF_BN_SUMS(float, f32l)
DEF_BN_SUMS(double, f64)

/* f32 channels of 16 or more values per image: the same sums with 16
 * lanes, element e = n S + i of the channel to lane e % 16, two 8-double
 * vectors per sum (2x the 4-lane loop's rate on a (32,64,16,16) input,
 * where that one is bound by its add latency). Rows that end within a
 * group of 16 go through a small buffer; the last group is padded with
 * d = 0, g = u = 0. Below 16 the 4-lane loop stays (its per-row loads
 * measured faster there). As bn_sums: a sum's bits depend on N and S
 * only, not on ns or the thread count. */
typedef double bn_v8d __attribute__((vector_size(64)));
typedef float bn_v8f __attribute__((vector_size(32)));
#define BN_VL 16

/* (Through a pointer: returning a 64-byte vector by value changes the ABI
 * without AVX-512, which GCC warns about in PORTABLE builds.) */
static inline void bn_ld8(bn_v8d *o, const float *p)
{
    bn_v8f f;
    memcpy(&f, p, sizeof f);
    *o = __builtin_convertvector(f, bn_v8d);
}

static inline void bn_acc16(bn_v8d a[BN_NSUMS][2], int ns, const float *x, const float *g, const float *u,
                            double K)
{
    bn_v8d k = {K, K, K, K, K, K, K, K}, d[2], gv[2], uv[2];
    bn_ld8(&d[0], x);
    bn_ld8(&d[1], x + 8);
    for (int h = 0; h < 2; h++) {
        d[h] -= k;
        a[0][h] += d[h];
        a[1][h] += d[h] * d[h];
    }
    if (ns < 4)
        return;
    bn_ld8(&gv[0], g);
    bn_ld8(&gv[1], g + 8);
    for (int h = 0; h < 2; h++) {
        a[2][h] += gv[h];
        a[3][h] += gv[h] * d[h];
    }
    if (ns < 7)
        return;
    bn_ld8(&uv[0], u);
    bn_ld8(&uv[1], u + 8);
    for (int h = 0; h < 2; h++) {
        a[4][h] += uv[h];
        a[5][h] += uv[h] * d[h];
        a[6][h] += uv[h] * gv[h];
    }
}

static __attribute__((noinline)) void bn_sums16_f32(const float *x, const float *g, const float *u,
                                                    const bn_geom *G, int64_t c, double K, int ns, double *s)
{
    bn_v8d a[BN_NSUMS][2];
    memset(a, 0, sizeof a);
    float bx[BN_VL], bg[BN_VL] = {0}, bu[BN_VL] = {0};
    int fill = 0;
    for (int64_t n = 0; n < G->N; n++) {
        int64_t base = (n * G->C + c) * G->S, i = 0;
        const float *xp = x + base, *gp = ns >= 4 ? g + base : NULL, *up = ns >= 7 ? u + base : NULL;
        while (i < G->S) {
            if (fill == 0 && G->S - i >= BN_VL) {
                bn_acc16(a, ns, xp + i, gp ? gp + i : NULL, up ? up + i : NULL, K);
                i += BN_VL;
                continue;
            }
            int64_t m = BN_VL - fill < G->S - i ? BN_VL - fill : G->S - i;
            for (int64_t q = 0; q < m; q++) {
                bx[fill + q] = xp[i + q];
                if (gp)
                    bg[fill + q] = gp[i + q];
                if (up)
                    bu[fill + q] = up[i + q];
            }
            fill += (int)m;
            i += m;
            if (fill == BN_VL) {
                bn_acc16(a, ns, bx, bg, bu, K);
                fill = 0;
            }
        }
    }
    if (fill) {
        for (int l = fill; l < BN_VL; l++) {
            bx[l] = (float)K; /* K is an element of x: d = 0 exactly */
            bg[l] = bu[l] = 0.0f;
        }
        bn_acc16(a, ns, bx, bg, bu, K);
    }
    for (int k = 0; k < ns; k++) {
        bn_v8d t = a[k][0] + a[k][1];
        s[k] = ((t[0] + t[1]) + (t[2] + t[3])) + ((t[4] + t[5]) + (t[6] + t[7]));
    }
}

static void bn_sums_f32(const float *x, const float *g, const float *u, const bn_geom *G, int64_t c, double K,
                        int ns, double *s)
{
    if (G->S >= BN_VL)
        bn_sums16_f32(x, g, u, G, c, K, ns, s);
    else
        bn_sums_f32l(x, g, u, G, c, K, ns, s);
}

/* out = x A + B per channel (A, B double per channel); with g: out = g G1 + x A + B; without g, the
 * tail (res: + res, relu: ReLU) rounded as separate ops round it. */
#define DEF_BN_APPLY(T, SUF)                                                                       \
    static void bn_apply_##SUF(const T *x, const T *g, T *out, const bn_geom *G, int64_t c, double ga, \
                               double a, double b, const T *res, bool relu)                        \
    {                                                                                              \
        T fa = (T)a, fb = (T)b, fg = (T)ga;                                                        \
        for (int64_t n = 0; n < G->N; n++) {                                                       \
            int64_t base = (n * G->C + c) * G->S;                                                  \
            const T *xp = x + base, *rp = res ? res + base : NULL;                                 \
            T *op = out + base;                                                                    \
            if (g) {                                                                               \
                const T *gp = g + base;                                                            \
                for (int64_t i = 0; i < G->S; i++)                                                 \
                    op[i] = gp[i] * fg + xp[i] * fa + fb;                                          \
            } else if (rp || relu) {                                                               \
                for (int64_t i = 0; i < G->S; i++) { /* the compiler unswitches rp and relu */     \
                    T v = xp[i] * fa + fb;                                                         \
                    if (rp)                                                                        \
                        v = v + rp[i];                                                             \
                    op[i] = relu && v < 0 ? (T)0 : v;                                              \
                }                                                                                  \
            } else {                                                                               \
                for (int64_t i = 0; i < G->S; i++)                                                 \
                    op[i] = xp[i] * fa + fb;                                                       \
            }                                                                                      \
        }                                                                                          \
    }

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

/* The three kernels (arguments: norm_internal.h), the forward with its
 * tail (res, relu). sums, per channel: the four sums of bn_sums, then the
 * shift K. */
static void bn_kernel(lt__bn_pass which, const lt_tensor *x, const lt_tensor *g, const lt_tensor *gamma,
                      const lt_tensor *beta, const lt_tensor *res, bool relu, lt_tensor *out, double eps,
                      double *mean_out, double *var_out, double *sums)
{
    bn_geom G = bn_geom_of(x);
    bool f32 = lt_dtype_of(x) == LT_F32;
    const void *xd = lt_data(x), *gd = g ? lt_data(g) : NULL, *rd = res ? lt_data(res) : NULL;
    const void *wd = gamma ? lt_data(gamma) : NULL, *bd = beta ? lt_data(beta) : NULL;
    void *od = lt_data(out);
    double M = (double)(G.N * G.S);
#pragma omp parallel for schedule(dynamic, bn_chunk(&G)) if (G.N * G.C * G.S > 16384)
    for (int64_t c = 0; c < G.C; c++) {
        double s[4] = {0}, K = f32 ? ((const float *)xd)[c * G.S] : ((const double *)xd)[c * G.S];
        if (sums && which == LT__BN_INPUT_GRAD)
            memcpy(s, sums + 5 * c, sizeof s);
        else if (f32 && which == LT__BN_FWD)
            bn_sums_f32(xd, NULL, NULL, &G, c, K, 2, s);
        else if (f32)
            bn_sums_f32(xd, gd, NULL, &G, c, K, 4, s);
        else if (which == LT__BN_FWD)
            bn_sums_f64(xd, NULL, NULL, &G, c, K, 2, s);
        else
            bn_sums_f64(xd, gd, NULL, &G, c, K, 4, s);
        if (sums && which == LT__BN_WEIGHT_GRAD) {
            memcpy(sums + 5 * c, s, sizeof s);
            sums[5 * c + 4] = K;
        }
        bn_stat st = bn_stat_of(s, K, M, eps);
        double w = wd ? (f32 ? ((const float *)wd)[c] : ((const double *)wd)[c]) : 1.0;
        if (which == LT__BN_WEIGHT_GRAD) {
            double v = st.r * st.sgc;
            if (f32)
                ((float *)od)[c] = (float)v;
            else
                ((double *)od)[c] = v;
            continue;
        }
        double ga = 0, a, b;
        if (which == LT__BN_FWD) {
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
            bn_apply_f32(xd, which == LT__BN_FWD ? NULL : gd, od, &G, c, ga, a, b, rd, relu);
        else
            bn_apply_f64(xd, which == LT__BN_FWD ? NULL : gd, od, &G, c, ga, a, b, rd, relu);
    }
}

void lt__bn_kernel(lt__bn_pass which, const lt_tensor *x, const lt_tensor *g, const lt_tensor *gamma,
                   const lt_tensor *beta, lt_tensor *out, double eps, double *mean_out, double *var_out,
                   double *sums)
{
    bn_kernel(which, x, g, gamma, beta, NULL, false, out, eps, mean_out, var_out, sums);
}

void lt__bn_fwd_act(const lt_tensor *x, const lt_tensor *gamma, const lt_tensor *beta, const lt_tensor *res,
                    bool relu, lt_tensor *out, double eps, double *mean_out, double *var_out)
{
    bn_kernel(LT__BN_FWD, x, NULL, gamma, beta, res, relu, out, eps, mean_out, var_out, NULL);
}

#define DEF_RELU_GRAD(T, SUF)                                                                      \
    static void relu_grad_##SUF(const T *u, const T *z, T *gz, int64_t n)                          \
    {                                                                                              \
        _Pragma("omp parallel for schedule(static) if (n > 65536)")                                \
        for (int64_t i = 0; i < n; i++)                                                            \
            gz[i] = z[i] > 0 ? u[i] : (T)0;                                                        \
    }
DEF_RELU_GRAD(float, f32)
DEF_RELU_GRAD(double, f64)

void lt__bn_relu_grad(const lt_tensor *u, const lt_tensor *z, lt_tensor *gz)
{
    if (lt_dtype_of(z) == LT_F32)
        relu_grad_f32(lt_data(u), lt_data(z), lt_data(gz), lt_numel(z));
    else
        relu_grad_f64(lt_data(u), lt_data(z), lt_data(gz), lt_numel(z));
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
 *   k[0..3]: A, B, D, E of dx = A (x - K) + B g + D u + E, norm.c's
 *            second-order dx expanded about K;
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

/* The kernel (arguments: norm_internal.h). usums gets the sums that
 * lt__bn_kernel's read pass for input_grad(u, x, gamma) would make (the
 * same bits, see bn_sums), in its layout. */
void lt__bn_kernel2(const lt_tensor *u, const lt_tensor *g, const lt_tensor *x, const lt_tensor *gamma,
                    lt_tensor *dx, lt_tensor *dgamma, double eps, double *usums)
{
    bn_geom G = bn_geom_of(x);
    bool f32 = lt_dtype_of(x) == LT_F32;
    const void *ud = lt_data(u), *gd = lt_data(g), *xd = lt_data(x), *wd = gamma ? lt_data(gamma) : NULL;
    void *od = dx ? lt_data(dx) : NULL, *dwd = dgamma ? lt_data(dgamma) : NULL;
    double M = (double)(G.N * G.S);
#pragma omp parallel for schedule(dynamic, bn_chunk(&G)) if (G.N * G.C * G.S > 16384)
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

/* Eval mode: y = x s + t per channel, then (r) + r, then (relu) ReLU. Each
 * element is rounded as lt_add(lt_mul(x, s), t), lt_add(., r) and lt_relu
 * round it (C11 mode: no FMA contraction), so the result is bitwise that
 * of the recorded path. s, t: (C), x's dtype; r: x's shape or NULL. */
#define DEF_BN_EVAL(T, SUF)                                                                        \
    static void bn_eval_##SUF(const T *x, const T *s, const T *t, const T *r, bool relu, T *y,     \
                              const bn_geom *G)                                                    \
    {                                                                                              \
        _Pragma("omp parallel for schedule(static) if (G->N * G->C * G->S > 16384)")               \
        for (int64_t nc = 0; nc < G->N * G->C; nc++) {                                             \
            T sv = s[nc % G->C], tv = t[nc % G->C];                                                \
            const T *xp = x + nc * G->S, *rp = r ? r + nc * G->S : NULL;                           \
            T *yp = y + nc * G->S;                                                                 \
            for (int64_t i = 0; i < G->S; i++) { /* the compiler unswitches rp and relu */         \
                T m = xp[i] * sv, v = m + tv;                                                      \
                if (rp)                                                                            \
                    v = v + rp[i];                                                                 \
                yp[i] = relu && v < 0 ? (T)0 : v;                                                  \
            }                                                                                      \
        }                                                                                          \
    }
DEF_BN_EVAL(float, f32)
DEF_BN_EVAL(double, f64)

void lt__bn_eval(const lt_tensor *x, const lt_tensor *s, const lt_tensor *t, const lt_tensor *r, bool relu,
                 lt_tensor *y)
{
    bn_geom G = bn_geom_of(x);
    if (lt_dtype_of(x) == LT_F32)
        bn_eval_f32(lt_data(x), lt_data(s), lt_data(t), r ? lt_data(r) : NULL, relu, lt_data(y), &G);
    else
        bn_eval_f64(lt_data(x), lt_data(s), lt_data(t), r ? lt_data(r) : NULL, relu, lt_data(y), &G);
}
