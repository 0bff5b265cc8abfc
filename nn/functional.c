/*
 * functional.c: linear, pooling, cross-entropy, dropout, and the
 * registration of nn's ops in the autograd registry.
 *
 * Everything here is composed from differentiable tensor ops (and conv2d),
 * so first and second derivatives come from their formulas; see nn.h.
 */
#include "nn_internal.h"
#include "../tensor/tensor_internal.h"

#include <math.h>
#include <string.h>

/* ---- registration ---- */

int lt_nn_register_ops(void)
{
    static bool done;
    if (done)
        return 0;
    lt_ag_init();
    const lt_ag_opinfo *(*groups[])(int *) = {lt__nn_conv_ops, lt__nn_functional_ops, lt__nn_norm_ops,
                                                 lt__nn_attention_ops};
    for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++) {
        int n;
        const lt_ag_opinfo *ops = groups[g](&n);
        if (lt_ag_registry_add(n, ops) < 0)
            return -1;
    }
    for (const lt_ag_fn *const *f = lt__nn_conv_fns(); *f; f++)
        if (lt_ag_declare_backward(*f) < 0)
            return -1;
    for (const lt_ag_fn *const *f = lt__nn_norm_fns(); *f; f++)
        if (lt_ag_declare_backward(*f) < 0)
            return -1;
    done = true;
    return 0;
}

lt_tensor *lt__nn_rnd(lt_rng *r, int nd, const int64_t *shape, double lo, double hi)
{
    return lt_rand_uniform(r, nd, shape, lo, hi, LT_F64);
}

static bool is_float(const lt_tensor *t) { return lt_dtype_of(t) == LT_F32 || lt_dtype_of(t) == LT_F64; }

/* ---- linear ---- */

lt_tensor *lt_nn_linear(const lt_tensor *x, const lt_tensor *w, const lt_tensor *b)
{
    if (!x || !w || lt_nn_register_ops() < 0)
        return NULL;
    char bx[96], bw[96];
    if (lt_ndim(x) < 1 || lt_ndim(w) != 2 || lt_size(x, -1) != lt_size(w, 1) ||
        (b && (lt_ndim(b) != 1 || lt_size(b, 0) != lt_size(w, 0)))) {
        lt_set_error("linear: input %s, weight %s%s", lt_shape_str(x, bx, sizeof bx), lt_shape_str(w, bw, sizeof bw),
                     b ? " and bias do not match" : " do not match");
        return NULL;
    }
    /* (..., in) runs as one (rows, in) @ (in, out) product: then the weight
     * gradient x^T g is one GEMM over all rows, where a batched matmul's
     * backward would form one (in, out) product per batch entry and sum
     * them (B times the memory and a reduction pass). */
    int nd = lt_ndim(x);
    const lt_tensor *x2 = nd > 2 ? lt_reshape(x, 2, (int64_t[]){lt_numel(x) / lt_size(x, -1), lt_size(x, -1)}) : x;
    lt_tensor *y = lt_matmul(x2, lt_transpose(w, 0, 1));
    if (b)
        y = lt_add(y, b);
    if (nd > 2 && y) {
        int64_t shape[LT_MAX_DIMS];
        memcpy(shape, lt_shape(x), sizeof(int64_t) * (size_t)nd);
        shape[nd - 1] = lt_size(w, 0);
        y = lt_reshape(y, nd, shape);
    }
    return y;
}

/* ---- max pooling ---- */

typedef struct pool_geom {
    int64_t NC, H, W, Ho, Wo, k, s, p;
} pool_geom;

static int pool_geom_make(const char *op, const lt_tensor *x, int k, int stride, int padding, bool half_pad,
                          pool_geom *g)
{
    char b[96];
    if (!is_float(x) || lt_ndim(x) != 4) {
        lt_set_error("%s: input must be 4-D f32/f64, got %s%s", op, lt_dtype_name(lt_dtype_of(x)),
                     lt_shape_str(x, b, sizeof b));
        return -1;
    }
    if (stride == 0)
        stride = k;
    if (k < 1 || stride < 1 || padding < 0 || (half_pad && padding > k / 2)) {
        lt_set_error("%s: bad kernel %d, stride %d, padding %d%s", op, k, stride, padding,
                     half_pad ? " (padding must be <= kernel/2)" : "");
        return -1;
    }
    const int64_t *s = lt_shape(x);
    *g = (pool_geom){.NC = s[0] * s[1], .H = s[2], .W = s[3], .k = k, .s = stride, .p = padding};
    int64_t eh = g->H + 2 * g->p - g->k, ew = g->W + 2 * g->p - g->k;
    if (eh < 0 || ew < 0) {
        lt_set_error("%s: kernel %d larger than padded input %s", op, k, lt_shape_str(x, b, sizeof b));
        return -1;
    }
    g->Ho = eh / g->s + 1;
    g->Wo = ew / g->s + 1;
    return 0;
}

/* Max pooling keeps, per window, the FIRST maximum in row-major window
 * order; padding never wins; a NaN beats every number and the first NaN
 * wins (torch's rule). As an update on the running best (bv at offset bo),
 * v at offset o replaces it iff v > bv, or v is NaN and bv is not. Written
 * as a select (no branch on the data), the loops below vectorize.
 *
 * The k = 3, s = 2 windows (ResNet's) are separable: each input row's
 * first maximum per window column, then the first maximum of those down
 * the window's rows. That is the same element, bit for bit, as the
 * row-major scan: a NaN row result wins (and stays) exactly when the scan
 * would meet its first NaN there; otherwise a row takes over exactly when
 * its maximum is greater than the best so far, at its first occurrence. */
#define MP_ROWS 3    /* the ring of horizontal results: rows 2i - p .. 2i - p + 2 */
#define MP_WO 1024   /* widest output row the separable path takes */
#define MAXPOOL_KERNELS(T, SUF)                                                                         \
    static inline bool mp_take_##SUF(T v, T bv) { return v > bv || (v != v && bv == bv); }             \
                                                                                                        \
    static inline void mp_step_##SUF(T v, int64_t o, T *bv, int64_t *bo)                                \
    {                                                                                                   \
        bool take = mp_take_##SUF(v, *bv);                                                              \
        *bo = take ? o : *bo;                                                                           \
        *bv = take ? v : *bv;                                                                           \
    }                                                                                                   \
                                                                                                        \
    /* Window (i, j) of plane xp, clipped to the image (never empty, as                                 \
     * padding <= k/2). */                                                                              \
    static void mp_window_##SUF(const T *xp, const pool_geom *g, int64_t i, int64_t j, T *y, int64_t *idx) \
    {                                                                                                   \
        int64_t h0 = i * g->s - g->p, w0 = j * g->s - g->p;                                             \
        int64_t hlo = h0 < 0 ? 0 : h0, hhi = h0 + g->k < g->H ? h0 + g->k : g->H;                       \
        int64_t wlo = w0 < 0 ? 0 : w0, whi = w0 + g->k < g->W ? w0 + g->k : g->W;                       \
        int64_t bo = hlo * g->W + wlo;                                                                  \
        T bv = xp[bo];                                                                                  \
        for (int64_t h = hlo; h < hhi; h++)                                                             \
            for (int64_t w = wlo; w < whi; w++)                                                         \
                mp_step_##SUF(xp[h * g->W + w], h * g->W + w, &bv, &bo);                                \
        *y = bv;                                                                                        \
        if (idx)                                                                                        \
            *idx = bo;                                                                                  \
    }                                                                                                   \
                                                                                                        \
    /* Row xr's k = 3, s = 2 window maxima hv[j] and (hc) their columns,                               \
     * from a copy xb with -inf for the padding. A window's value is the                                \
     * same, bit for bit, as from its clipped part: a pad never replaces a                              \
     * number or a NaN, and a left pad is replaced by the first element                                 \
     * that is not -inf; where all are -inf, the left pad's column (-1)                                 \
     * becomes the first real one (0). One loop of equal windows, which the                             \
     * compiler vectorizes whole (each row of ResNet's 32x32 maps is one                                \
     * 16-lane vector). */                                                                              \
    static void mp_hrow_##SUF(const T *xr, const pool_geom *g, T *xb, T *hv, int64_t *hc)               \
    {                                                                                                   \
        int64_t n = 2 * g->Wo + 1; /* xb[0 .. n): padded columns -p .. */                               \
        for (int64_t c = 0; c < n; c++) {                                                               \
            int64_t w = c - g->p;                                                                       \
            xb[c] = w >= 0 && w < g->W ? xr[w] : -(T)INFINITY;                                          \
        }                                                                                               \
        if (!hc) {                                                                                      \
            for (int64_t j = 0; j < g->Wo; j++) {                                                       \
                T a = xb[2 * j], b = xb[2 * j + 1], c = xb[2 * j + 2];                                  \
                a = mp_take_##SUF(b, a) ? b : a;                                                        \
                hv[j] = mp_take_##SUF(c, a) ? c : a;                                                    \
            }                                                                                           \
            return;                                                                                     \
        }                                                                                               \
        for (int64_t j = 0; j < g->Wo; j++) {                                                           \
            int64_t c = 2 * j - g->p, bo = c;                                                           \
            T bv = xb[2 * j];                                                                           \
            mp_step_##SUF(xb[2 * j + 1], c + 1, &bv, &bo);                                              \
            mp_step_##SUF(xb[2 * j + 2], c + 2, &bv, &bo);                                              \
            hv[j] = bv;                                                                                 \
            hc[j] = bo < 0 ? 0 : bo;                                                                    \
        }                                                                                               \
    }                                                                                                   \
                                                                                                        \
    /* One plane of k = 3, s = 2 pooling, separably (Wo <= MP_WO): input                                \
     * rows' window maxima (a ring of the last MP_ROWS rows), then down the                             \
     * columns; ip NULL: values only. */                                                                \
    static void mp_plane_k3s2_##SUF(const T *xp, const pool_geom *g, T *yp, int64_t *ip)                \
    {                                                                                                   \
        T hv[MP_ROWS][MP_WO], xb[2 * MP_WO + 1];                                                        \
        int64_t hc[MP_ROWS][MP_WO], next = 0; /* next: the first row not yet in the ring */             \
        for (int64_t i = 0; i < g->Ho; i++) {                                                           \
            int64_t r0 = 2 * i - g->p, rlo = r0 < 0 ? 0 : r0, rhi = r0 + 3 < g->H ? r0 + 3 : g->H;        \
            for (int64_t r = next > rlo ? next : rlo; r < rhi; r++)                                     \
                mp_hrow_##SUF(xp + r * g->W, g, xb, hv[r % MP_ROWS], ip ? hc[r % MP_ROWS] : NULL);        \
            next = rhi;                                                                                 \
            T *y = yp + i * g->Wo;                                                                      \
            for (int64_t j = 0; j < g->Wo; j++)                                                         \
                y[j] = hv[rlo % MP_ROWS][j];                                                            \
            if (ip) {                                                                                   \
                int64_t *ix = ip + i * g->Wo, W = g->W;                                                 \
                for (int64_t j = 0; j < g->Wo; j++)                                                     \
                    ix[j] = rlo * W + hc[rlo % MP_ROWS][j];                                             \
                for (int64_t r = rlo + 1; r < rhi; r++) {                                               \
                    const T *hrv = hv[r % MP_ROWS];                                                     \
                    const int64_t *hrc = hc[r % MP_ROWS], rw = r * W, wo = g->Wo; /* not reloaded */     \
                    for (int64_t j = 0; j < wo; j++) {                                                  \
                        T v = hrv[j], b = y[j];                                                         \
                        bool take = mp_take_##SUF(v, b);                                                \
                        y[j] = take ? v : b;                                                            \
                        ix[j] = take ? rw + hrc[j] : ix[j];                                             \
                    }                                                                                   \
                }                                                                                       \
                continue;                                                                               \
            }                                                                                           \
            for (int64_t r = rlo + 1; r < rhi; r++) {                                                   \
                const T *hrv = hv[r % MP_ROWS];                                                         \
                for (int64_t j = 0; j < g->Wo; j++) {                                                   \
                    T v = hrv[j], b = y[j];                                                             \
                    y[j] = mp_take_##SUF(v, b) ? v : b;                                                 \
                }                                                                                       \
            }                                                                                           \
        }                                                                                               \
    }                                                                                                   \
                                                                                                        \
    /* y[nc][i][j] = the window's maximum, idx[nc][i*Wo+j] its flat index in                            \
     * the H*W plane (idx NULL: values only). Every output depends on its                               \
     * window alone, so the result does not depend on the thread count. */                              \
    static void maxpool_##SUF(const T *x, T *y, int64_t *idx, const pool_geom *g)                       \
    {                                                                                                   \
        bool k3s2 = g->k == 3 && g->s == 2 && g->Wo <= MP_WO;                                           \
        _Pragma("omp parallel for schedule(static)") for (int64_t nc = 0; nc < g->NC; nc++)             \
        {                                                                                               \
            const T *xp = x + nc * g->H * g->W;                                                         \
            T *yp = y + nc * g->Ho * g->Wo;                                                             \
            int64_t *ip = idx ? idx + nc * g->Ho * g->Wo : NULL;                                        \
            if (k3s2) {                                                                                 \
                mp_plane_k3s2_##SUF(xp, g, yp, ip);                                                     \
                continue;                                                                               \
            }                                                                                           \
            for (int64_t i = 0; i < g->Ho; i++)                                                         \
                for (int64_t j = 0; j < g->Wo; j++)                                                     \
                    mp_window_##SUF(xp, g, i, j, yp + i * g->Wo + j, ip ? ip + i * g->Wo + j : NULL);   \
        }                                                                                               \
    }
MAXPOOL_KERNELS(float, f32)
MAXPOOL_KERNELS(double, f64)

lt_tensor *lt_nn_max_pool2d_with_indices(const lt_tensor *x, int k, int stride, int padding, lt_tensor **indices)
{
    pool_geom g;
    if (!x || lt_nn_register_ops() < 0 || pool_geom_make("max_pool2d", x, k, stride, padding, true, &g) < 0)
        return NULL;
    const int64_t *s = lt_shape(x);
    int64_t yshape[4] = {s[0], s[1], g.Ho, g.Wo};
    /* Without a record to make, the kernel's values are the result; with one,
     * they are scratch and the values come from the gather below. */
    bool record = lt_ag_grad_enabled() && lt_ag_requires_grad(x), want_idx = record || indices;
    lt_tensor *xc = lt_contiguous(x);
    lt_tensor *idx = want_idx ? lt_empty(3, (int64_t[]){s[0], s[1], g.Ho * g.Wo}, LT_I64) : NULL;
    lt_tensor *yv = record ? lt__new(4, yshape, lt_dtype_of(x)) : lt_empty(4, yshape, lt_dtype_of(x));
    if (!xc || (want_idx && !idx) || !yv) {
        if (record)
            lt_release(yv);
        return NULL;
    }
    if (lt_dtype_of(x) == LT_F32)
        maxpool_f32(lt_data(xc), lt_data(yv), idx ? lt_data(idx) : NULL, &g);
    else
        maxpool_f64(lt_data(xc), lt_data(yv), idx ? lt_data(idx) : NULL, &g);
    lt_tensor *y = yv;
    if (record) {
        lt_release(yv);
        /* Values by gather: its backward is scatter_add, whose backward is
         * gather again, so every order of derivative is exact. */
        lt_tensor *flat = lt_reshape(x, 3, (int64_t[]){s[0], s[1], g.H * g.W});
        y = lt_reshape(lt_gather(flat, 2, idx), 4, yshape);
    }
    if (y && indices)
        *indices = lt_reshape(idx, 4, yshape);
    return y;
}

lt_tensor *lt_nn_max_pool2d(const lt_tensor *x, int k, int stride, int padding)
{
    return lt_nn_max_pool2d_with_indices(x, k, stride, padding, NULL);
}

/* ---- average pooling ---- */

/* With count_include_pad every window divides by k^2, so the pool is a
 * conv2d of each channel (as a batch of 1-channel images) with a constant
 * kernel of 1/k^2. */
lt_tensor *lt_nn_avg_pool2d(const lt_tensor *x, int k, int stride, int padding)
{
    pool_geom g;
    if (!x || lt_nn_register_ops() < 0 || pool_geom_make("avg_pool2d", x, k, stride, padding, true, &g) < 0)
        return NULL;
    const int64_t *s = lt_shape(x);
    lt_tensor *w = lt_full(4, (int64_t[]){1, 1, k, k}, 1.0 / ((double)k * k), lt_dtype_of(x));
    lt_tensor *xr = lt_reshape(x, 4, (int64_t[]){g.NC, 1, g.H, g.W});
    lt_tensor *y = lt_nn_conv2d(xr, w, NULL, (int)g.s, (int)g.p, 1);
    return lt_reshape(y, 4, (int64_t[]){s[0], s[1], g.Ho, g.Wo});
}

/* (out, in) matrix averaging rows floor(i in/out) .. ceil((i+1) in/out)-1. */
static lt_tensor *adaptive_matrix(int64_t out, int64_t in, lt_dtype dt)
{
    lt_tensor *m = lt_zeros(2, (int64_t[]){out, in}, LT_F64);
    if (!m)
        return NULL;
    double *d = lt_data(m);
    for (int64_t i = 0; i < out; i++) {
        int64_t a = (i * in) / out, b = ((i + 1) * in + out - 1) / out;
        for (int64_t j = a; j < b; j++)
            d[i * in + j] = 1.0 / (double)(b - a);
    }
    return dt == LT_F64 ? m : lt_to_dtype(m, dt);
}

lt_tensor *lt_nn_adaptive_avg_pool2d(const lt_tensor *x, int64_t oh, int64_t ow)
{
    if (!x || lt_nn_register_ops() < 0)
        return NULL;
    char b[96];
    if (!is_float(x) || lt_ndim(x) != 4 || oh < 1 || ow < 1) {
        lt_set_error("adaptive_avg_pool2d: input %s%s to (%lld,%lld): need 4-D f32/f64 and sizes >= 1",
                     lt_dtype_name(lt_dtype_of(x)), lt_shape_str(x, b, sizeof b), (long long)oh, (long long)ow);
        return NULL;
    }
    if (oh == 1 && ow == 1)
        return lt_mean(x, 2, (int[]){2, 3}, true);
    lt_tensor *ph = adaptive_matrix(oh, lt_size(x, 2), lt_dtype_of(x));
    lt_tensor *pw = adaptive_matrix(ow, lt_size(x, 3), lt_dtype_of(x));
    return lt_matmul(lt_matmul(ph, x), lt_transpose(pw, 0, 1));
}

/* ---- cross-entropy ---- */

lt_tensor *lt_nn_cross_entropy(const lt_tensor *logits, const lt_tensor *target, lt_nn_reduction reduction,
                               double label_smoothing)
{
    if (!logits || !target || lt_nn_register_ops() < 0)
        return NULL;
    char b1[96], b2[96];
    if (!is_float(logits) || lt_ndim(logits) != 2 || lt_dtype_of(target) != LT_I64 || lt_ndim(target) != 1 ||
        lt_size(target, 0) != lt_size(logits, 0)) {
        lt_set_error("cross_entropy: logits %s%s and target %s%s: need (N,C) f32/f64 and (N) i64",
                     lt_dtype_name(lt_dtype_of(logits)), lt_shape_str(logits, b1, sizeof b1),
                     lt_dtype_name(lt_dtype_of(target)), lt_shape_str(target, b2, sizeof b2));
        return NULL;
    }
    if (!(label_smoothing >= 0.0 && label_smoothing <= 1.0) || reduction < LT_NN_MEAN || reduction > LT_NN_NONE) {
        lt_set_error("cross_entropy: label_smoothing %g not in [0,1] or bad reduction %d", label_smoothing,
                     (int)reduction);
        return NULL;
    }
    int64_t n = lt_size(logits, 0), c = lt_size(logits, 1);
    lt_tensor *tc = lt_contiguous(target);
    if (!tc)
        return NULL;
    const int64_t *tv = lt_data(tc);
    for (int64_t i = 0; i < n; i++)
        if (tv[i] < 0 || tv[i] >= c) {
            lt_set_error("cross_entropy: target[%lld] = %lld out of range [0,%lld)", (long long)i, (long long)tv[i],
                         (long long)c);
            return NULL;
        }
    lt_tensor *logp = lt_log_softmax(logits, 1);
    lt_tensor *nll = lt_neg(lt_squeeze(lt_gather(logp, 1, lt_unsqueeze(tc, 1)), 1)); /* (N) */
    lt_tensor *l = nll;
    if (label_smoothing > 0) {
        lt_tensor *smooth = lt_neg(lt_mean(logp, 1, (int[]){1}, false));
        l = lt_add(lt_mul_scalar(nll, 1.0 - label_smoothing), lt_mul_scalar(smooth, label_smoothing));
    }
    if (reduction == LT_NN_NONE)
        return l;
    return reduction == LT_NN_SUM ? lt_sum(l, 0, NULL, false) : lt_mean(l, 0, NULL, false);
}

/* ---- dropout ---- */

lt_tensor *lt_nn_dropout(const lt_tensor *x, double p, bool training, lt_rng *rng)
{
    if (!x || lt_nn_register_ops() < 0)
        return NULL;
    if (!(p >= 0.0 && p <= 1.0) || !is_float(x) || (training && p > 0 && !rng)) {
        lt_set_error("dropout: p %g not in [0,1], non-float input, or no generator", p);
        return NULL;
    }
    if (!training || p == 0.0)
        return lt_autorelease(lt_retain((lt_tensor *)x));
    if (p == 1.0)
        return lt_mul_scalar(x, 0.0);
    lt_tensor *mask = lt_rand_bernoulli(rng, lt_ndim(x), lt_shape(x), 1.0 - p, lt_dtype_of(x));
    return lt_mul(x, lt_mul_scalar(mask, 1.0 / (1.0 - p)));
}

/* ---- registry entries (the sample's last input is an i64 config) ---- */

static lt_tensor *leaf(lt_tensor *t) { return lt_ag_set_requires_grad(t, true); }

static lt_tensor *cfg(int n, const int64_t *v) { return lt_from_data(v, 1, (int64_t[]){n}, LT_I64); }

static int s_linear(int v, lt_rng *r, lt_tensor **in)
{
    if (v == 0) {
        in[0] = lt__nn_rnd(r, 2, (int64_t[]){3, 4}, -1, 1);
        in[1] = lt__nn_rnd(r, 2, (int64_t[]){2, 4}, -1, 1);
    } else if (v == 1) {
        in[0] = lt__nn_rnd(r, 3, (int64_t[]){2, 3, 4}, -1, 1);
        in[1] = lt_transpose(lt__nn_rnd(r, 2, (int64_t[]){4, 5}, -1, 1), 0, 1); /* non-contiguous w */
    } else {
        in[0] = lt__nn_rnd(r, 1, (int64_t[]){4}, -1, 1);
        in[1] = lt__nn_rnd(r, 2, (int64_t[]){3, 4}, -1, 1);
    }
    in[0] = leaf(in[0]);
    in[1] = leaf(in[1]);
    if (v == 2)
        return 2;
    in[2] = leaf(lt__nn_rnd(r, 1, (int64_t[]){lt_size(in[1], 0)}, -1, 1));
    return 3;
}

static lt_tensor *f_linear(void *ud, int n, lt_tensor *const *in)
{
    (void)ud;
    return lt_nn_linear(in[0], in[1], n > 2 ? in[2] : NULL);
}

/* pooling configs {k, stride, padding} */
static const int64_t pool_cfgs[][3] = {{2, 2, 0}, {3, 2, 1}, {3, 1, 1}, {2, 1, 1}};

/* Distinct values 0.1 apart, shuffled, so every window max is unique and
 * stays put under the finite-difference step. */
static lt_tensor *distinct(lt_rng *r, int64_t N, int64_t C, int64_t H, int64_t W)
{
    lt_tensor *p = lt_to_dtype(lt_randperm(r, N * C * H * W), LT_F64);
    return lt_contiguous(lt_reshape(lt_mul_scalar(p, 0.1), 4, (int64_t[]){N, C, H, W}));
}

static int s_pool(int v, lt_rng *r, lt_tensor **in)
{
    lt_tensor *x = distinct(r, 2, 2, 5, 6);
    if (v == 2) /* non-contiguous: transposed spatial dims */
        x = lt_transpose(lt_contiguous(lt_transpose(distinct(r, 2, 2, 5, 6), 2, 3)), 2, 3);
    in[0] = leaf(x);
    in[1] = cfg(3, pool_cfgs[v]);
    return 2;
}

static lt_tensor *f_max_pool2d(void *ud, int n, lt_tensor *const *in)
{
    (void)ud;
    (void)n;
    const int64_t *c = lt_data(in[1]);
    return lt_pow_scalar(lt_nn_max_pool2d(in[0], (int)c[0], (int)c[1], (int)c[2]), 2.0);
}

static lt_tensor *f_avg_pool2d(void *ud, int n, lt_tensor *const *in)
{
    (void)ud;
    (void)n;
    const int64_t *c = lt_data(in[1]);
    return lt_pow_scalar(lt_nn_avg_pool2d(in[0], (int)c[0], (int)c[1], (int)c[2]), 2.0);
}

static const int64_t adaptive_cfgs[][2] = {{3, 2}, {1, 1}, {2, 4}};

static int s_adaptive(int v, lt_rng *r, lt_tensor **in)
{
    in[0] = leaf(lt__nn_rnd(r, 4, (int64_t[]){2, 2, 5, 7}, -1, 1));
    in[1] = cfg(2, adaptive_cfgs[v]);
    return 2;
}

static lt_tensor *f_adaptive_avg_pool2d(void *ud, int n, lt_tensor *const *in)
{
    (void)ud;
    (void)n;
    const int64_t *c = lt_data(in[1]);
    return lt_pow_scalar(lt_nn_adaptive_avg_pool2d(in[0], c[0], c[1]), 2.0);
}

/* cross-entropy configs {reduction, label_smoothing x 100} */
static const int64_t ce_cfgs[][2] = {{LT_NN_MEAN, 0}, {LT_NN_SUM, 10}, {LT_NN_NONE, 20}};

static int s_cross_entropy(int v, lt_rng *r, lt_tensor **in)
{
    in[0] = lt__nn_rnd(r, 2, (int64_t[]){4, 5}, -2, 2);
    if (v == 2)
        in[0] = lt_transpose(lt_contiguous(lt_transpose(in[0], 0, 1)), 0, 1);
    in[0] = leaf(in[0]);
    static const int64_t t[] = {0, 4, 2, 4};
    in[1] = lt_from_data(t, 1, (int64_t[]){4}, LT_I64);
    in[2] = cfg(2, ce_cfgs[v]);
    return 3;
}

static lt_tensor *f_cross_entropy(void *ud, int n, lt_tensor *const *in)
{
    (void)ud;
    (void)n;
    const int64_t *c = lt_data(in[2]);
    return lt_nn_cross_entropy(in[0], in[1], (lt_nn_reduction)c[0], (double)c[1] / 100.0);
}

static const lt_ag_opinfo functional_ops[] = {
    {"linear", 3, s_linear, f_linear},
    {"max_pool2d", 4, s_pool, f_max_pool2d},
    {"avg_pool2d", 4, s_pool, f_avg_pool2d},
    {"adaptive_avg_pool2d", 3, s_adaptive, f_adaptive_avg_pool2d},
    {"cross_entropy", 3, s_cross_entropy, f_cross_entropy},
};

const lt_ag_opinfo *lt__nn_functional_ops(int *n)
{
    *n = (int)(sizeof functional_ops / sizeof functional_ops[0]);
    return functional_ops;
}
