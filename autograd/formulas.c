/*
 * formulas.c: backward formulas of every differentiable op in tensor/, and
 * the observer that records them.
 *
 * Each formula is written with differentiable lt_ ops, so when the engine
 * runs it with create_graph the formula records a graph of its own and the
 * second derivative comes for free: no formula may use a kernel or a
 * detached value that would be right to first order only. Saved tensors sit
 * at fixed slots: saved[i] is input i (when the op needs it) and
 * saved[nin] is the output (when it needs that).
 *
 * Formulas follow PyTorch's tools/autograd/derivatives.yaml.
 */
#include "autograd_internal.h"

#include <math.h>
#include <string.h>

#define S_IN0 1u
#define S_IN1 2u
#define S_IN2 4u
#define S_OUT 8u

#define IN(k) lt_ag_saved(ctx, (k))
#define OUT(nin) lt_ag_saved(ctx, (nin))
#define NEED(k) lt_ag_needs_grad(ctx, (k))
#define SHAPE(k) lt_ag_input_ndim(ctx, (k)), lt_ag_input_shape(ctx, (k))

/* ---- helpers ---- */

static lt_tensor *zero_of(lt_dtype dt) { return lt_scalar(0.0, dt); }

/* g * mask, where mask is a u8 condition: where(mask, g, 0). */
static lt_tensor *masked(const lt_tensor *mask, const lt_tensor *g)
{
    return lt_where(mask, g, zero_of(lt_dtype_of(g)));
}

/* Reshape a reduction's gradient to keepdim form and expand it back to the
 * input's shape. mask: reduced dims; keepdim: whether g already has them. */
static lt_tensor *unreduce(lt_ag_ctx *ctx, const lt_tensor *g, unsigned mask, bool keepdim)
{
    int nd = lt_ag_input_ndim(ctx, 0);
    const int64_t *ish = lt_ag_input_shape(ctx, 0);
    int64_t ks[LT_MAX_DIMS];
    for (int d = 0; d < nd; d++)
        ks[d] = (mask & (1u << d)) ? 1 : ish[d];
    const lt_tensor *gk = keepdim ? g : lt_reshape(g, nd, ks);
    return lt_expand(gk, nd, ish);
}

/* A reduction's output in keepdim form. */
static lt_tensor *keep_form(lt_ag_ctx *ctx, const lt_tensor *o, unsigned mask, bool keepdim)
{
    if (keepdim)
        return (lt_tensor *)o;
    int nd = lt_ag_input_ndim(ctx, 0);
    const int64_t *ish = lt_ag_input_shape(ctx, 0);
    int64_t ks[LT_MAX_DIMS];
    for (int d = 0; d < nd; d++)
        ks[d] = (mask & (1u << d)) ? 1 : ish[d];
    return lt_reshape(o, nd, ks);
}

static int64_t reduced_count(lt_ag_ctx *ctx, unsigned mask)
{
    int64_t n = 1;
    for (int d = 0; d < lt_ag_input_ndim(ctx, 0); d++)
        if (mask & (1u << d))
            n *= lt_ag_input_shape(ctx, 0)[d];
    return n;
}

/* ---- views ---- */

static int bw_reshape(lt_ag_ctx *ctx, const lt_tensor *g, lt_tensor **gin)
{
    gin[0] = lt_reshape(g, SHAPE(0));
    return gin[0] ? 0 : -1;
}

static int bw_permute(lt_ag_ctx *ctx, const lt_tensor *g, lt_tensor **gin)
{
    int nd = lt_ag_input_ndim(ctx, 0), inv[LT_MAX_DIMS];
    for (int i = 0; i < nd; i++)
        inv[lt_ag_iarg(ctx, i)] = i;
    gin[0] = lt_permute(g, inv);
    return gin[0] ? 0 : -1;
}

/* slice(x, d, start, step)' = index_add(g, d, [start, start+step, ...], n) */
static int bw_slice(lt_ag_ctx *ctx, const lt_tensor *g, lt_tensor **gin)
{
    int d = (int)lt_ag_iarg(ctx, 0);
    int64_t start = lt_ag_iarg(ctx, 1), step = lt_ag_iarg(ctx, 2);
    int64_t len = lt_size(g, d);
    lt_tensor *idx = lt_arange((double)start, (double)(start + step * len), (double)step, LT_I64);
    gin[0] = lt_index_add(g, d, idx, lt_ag_input_shape(ctx, 0)[d]);
    return gin[0] ? 0 : -1;
}

static int bw_select(lt_ag_ctx *ctx, const lt_tensor *g, lt_tensor **gin)
{
    int d = (int)lt_ag_iarg(ctx, 0);
    int64_t i = lt_ag_iarg(ctx, 1);
    lt_tensor *idx = lt_from_data(&i, 1, (int64_t[]){1}, LT_I64);
    gin[0] = lt_index_add(lt_unsqueeze(g, d), d, idx, lt_ag_input_shape(ctx, 0)[d]);
    return gin[0] ? 0 : -1;
}

static int bw_expand(lt_ag_ctx *ctx, const lt_tensor *g, lt_tensor **gin)
{
    gin[0] = lt_sum_to(g, SHAPE(0));
    return gin[0] ? 0 : -1;
}

/* ---- structural ---- */

static int bw_identity(lt_ag_ctx *ctx, const lt_tensor *g, lt_tensor **gin)
{
    (void)ctx;
    gin[0] = (lt_tensor *)g;
    return 0;
}

static int bw_to_dtype(lt_ag_ctx *ctx, const lt_tensor *g, lt_tensor **gin)
{
    lt_dtype dt = lt_ag_input_dtype(ctx, 0);
    if (dt != LT_F32 && dt != LT_F64)
        return 0;
    gin[0] = lt_to_dtype(g, dt);
    return gin[0] ? 0 : -1;
}

static int bw_cat(lt_ag_ctx *ctx, const lt_tensor *g, lt_tensor **gin)
{
    int d = (int)lt_ag_iarg(ctx, 0);
    int n = lt_ag_input_count(ctx);
    int64_t pos = 0;
    for (int k = 0; k < n; k++) {
        int64_t len = lt_ag_input_shape(ctx, k)[d];
        if (NEED(k) && !(gin[k] = lt_slice(g, d, pos, pos + len, 1)))
            return -1;
        pos += len;
    }
    return 0;
}

static int bw_gather(lt_ag_ctx *ctx, const lt_tensor *g, lt_tensor **gin)
{
    gin[0] = lt_scatter_add(g, (int)lt_ag_iarg(ctx, 0), IN(1), SHAPE(0));
    return gin[0] ? 0 : -1;
}

static int bw_scatter_add(lt_ag_ctx *ctx, const lt_tensor *g, lt_tensor **gin)
{
    gin[0] = lt_gather(g, (int)lt_ag_iarg(ctx, 0), IN(1));
    return gin[0] ? 0 : -1;
}

static int bw_index_select(lt_ag_ctx *ctx, const lt_tensor *g, lt_tensor **gin)
{
    int d = (int)lt_ag_iarg(ctx, 0);
    gin[0] = lt_index_add(g, d, IN(1), lt_ag_input_shape(ctx, 0)[d]);
    return gin[0] ? 0 : -1;
}

static int bw_index_add(lt_ag_ctx *ctx, const lt_tensor *g, lt_tensor **gin)
{
    gin[0] = lt_index_select(g, (int)lt_ag_iarg(ctx, 0), IN(1));
    return gin[0] ? 0 : -1;
}

/* where(c, a, b)' = (where(c, g, 0), where(c, 0, g)), each summed to shape */
static int bw_where(lt_ag_ctx *ctx, const lt_tensor *g, lt_tensor **gin)
{
    const lt_tensor *c = IN(0);
    lt_tensor *z = zero_of(lt_dtype_of(g));
    if (NEED(1) && !(gin[1] = lt_sum_to(lt_where(c, g, z), SHAPE(1))))
        return -1;
    if (NEED(2) && !(gin[2] = lt_sum_to(lt_where(c, z, g), SHAPE(2))))
        return -1;
    return 0;
}

/* ---- unary ---- */

static int bw_neg(lt_ag_ctx *ctx, const lt_tensor *g, lt_tensor **gin)
{
    (void)ctx;
    return (gin[0] = lt_neg(g)) ? 0 : -1;
}

static int bw_exp(lt_ag_ctx *ctx, const lt_tensor *g, lt_tensor **gin)
{
    return (gin[0] = lt_mul(g, OUT(1))) ? 0 : -1;
}

static int bw_log(lt_ag_ctx *ctx, const lt_tensor *g, lt_tensor **gin)
{
    return (gin[0] = lt_div(g, IN(0))) ? 0 : -1;
}

/* sqrt' = 1 / (2 sqrt x) */
static int bw_sqrt(lt_ag_ctx *ctx, const lt_tensor *g, lt_tensor **gin)
{
    return (gin[0] = lt_div(g, lt_mul_scalar(OUT(1), 2.0))) ? 0 : -1;
}

/* rsqrt' = -1/2 x^(-3/2) = -1/2 y^3 */
static int bw_rsqrt(lt_ag_ctx *ctx, const lt_tensor *g, lt_tensor **gin)
{
    const lt_tensor *y = OUT(1);
    return (gin[0] = lt_mul(g, lt_mul_scalar(lt_mul(y, lt_mul(y, y)), -0.5))) ? 0 : -1;
}

static int bw_abs(lt_ag_ctx *ctx, const lt_tensor *g, lt_tensor **gin)
{
    return (gin[0] = lt_mul(g, lt_sign(IN(0)))) ? 0 : -1;
}

static int bw_zero(lt_ag_ctx *ctx, const lt_tensor *g, lt_tensor **gin)
{
    return (gin[0] = lt_zeros(SHAPE(0), lt_dtype_of(g))) ? 0 : -1;
}

static int bw_relu(lt_ag_ctx *ctx, const lt_tensor *g, lt_tensor **gin)
{
    return (gin[0] = masked(lt_cmp_scalar(OUT(1), ">", 0), g)) ? 0 : -1;
}

/* sigmoid' = y (1 - y) */
static int bw_sigmoid(lt_ag_ctx *ctx, const lt_tensor *g, lt_tensor **gin)
{
    const lt_tensor *y = OUT(1);
    return (gin[0] = lt_mul(g, lt_mul(y, lt_add_scalar(lt_neg(y), 1.0)))) ? 0 : -1;
}

/* tanh' = 1 - y^2 */
static int bw_tanh(lt_ag_ctx *ctx, const lt_tensor *g, lt_tensor **gin)
{
    const lt_tensor *y = OUT(1);
    return (gin[0] = lt_mul(g, lt_add_scalar(lt_neg(lt_mul(y, y)), 1.0))) ? 0 : -1;
}

/* erf' = 2/sqrt(pi) exp(-x^2) */
static int bw_erf(lt_ag_ctx *ctx, const lt_tensor *g, lt_tensor **gin)
{
    const lt_tensor *x = IN(0);
    return (gin[0] = lt_mul(g, lt_mul_scalar(lt_exp(lt_neg(lt_mul(x, x))), 1.1283791670955126))) ? 0 : -1;
}

/* gelu(x) = x Phi(x): gelu' = Phi(x) + x phi(x) */
static int bw_gelu(lt_ag_ctx *ctx, const lt_tensor *g, lt_tensor **gin)
{
    const lt_tensor *x = IN(0);
    lt_tensor *Phi = lt_mul_scalar(lt_add_scalar(lt_erf(lt_mul_scalar(x, M_SQRT1_2)), 1.0), 0.5);
    lt_tensor *phi = lt_mul_scalar(lt_exp(lt_mul_scalar(lt_mul(x, x), -0.5)), 0.3989422804014327);
    return (gin[0] = lt_mul(g, lt_add(Phi, lt_mul(x, phi)))) ? 0 : -1;
}

/* gelu_tanh(x) = x/2 (1 + tanh u), u = k (x + c x^3):
 * d/dx = (1 + t)/2 + x/2 (1 - t^2) k (1 + 3 c x^2) */
static int bw_gelu_tanh(lt_ag_ctx *ctx, const lt_tensor *g, lt_tensor **gin)
{
    const double k = 0.79788456080286535588, c = 0.044715;
    const lt_tensor *x = IN(0);
    lt_tensor *x2 = lt_mul(x, x);
    lt_tensor *t = lt_tanh(lt_mul_scalar(lt_add(x, lt_mul_scalar(lt_mul(x2, x), c)), k));
    lt_tensor *left = lt_mul_scalar(lt_add_scalar(t, 1.0), 0.5);
    lt_tensor *sech2 = lt_add_scalar(lt_neg(lt_mul(t, t)), 1.0);
    lt_tensor *du = lt_mul_scalar(lt_add_scalar(lt_mul_scalar(x2, 3 * c), 1.0), k);
    lt_tensor *right = lt_mul(lt_mul_scalar(x, 0.5), lt_mul(sech2, du));
    return (gin[0] = lt_mul(g, lt_add(left, right))) ? 0 : -1;
}

static int bw_pow_scalar(lt_ag_ctx *ctx, const lt_tensor *g, lt_tensor **gin)
{
    double e = lt_ag_darg(ctx, 0);
    if (e == 0)
        return (gin[0] = lt_zeros_like(g)) ? 0 : -1;
    return (gin[0] = lt_mul(g, lt_mul_scalar(lt_pow_scalar(IN(0), e - 1.0), e))) ? 0 : -1;
}

static int bw_clamp(lt_ag_ctx *ctx, const lt_tensor *g, lt_tensor **gin)
{
    const lt_tensor *x = IN(0);
    lt_tensor *in_lo = lt_cmp_scalar(x, ">=", lt_ag_darg(ctx, 0));
    lt_tensor *in_hi = lt_cmp_scalar(x, "<=", lt_ag_darg(ctx, 1));
    return (gin[0] = masked(in_lo, masked(in_hi, g))) ? 0 : -1;
}

static int bw_mul_scalar(lt_ag_ctx *ctx, const lt_tensor *g, lt_tensor **gin)
{
    return (gin[0] = lt_mul_scalar(g, lt_ag_darg(ctx, 0))) ? 0 : -1;
}

/* ---- binary (gradients summed back to each input's shape) ---- */

static int bw_add(lt_ag_ctx *ctx, const lt_tensor *g, lt_tensor **gin)
{
    if (NEED(0) && !(gin[0] = lt_sum_to(g, SHAPE(0))))
        return -1;
    if (NEED(1) && !(gin[1] = lt_sum_to(g, SHAPE(1))))
        return -1;
    return 0;
}

static int bw_sub(lt_ag_ctx *ctx, const lt_tensor *g, lt_tensor **gin)
{
    if (NEED(0) && !(gin[0] = lt_sum_to(g, SHAPE(0))))
        return -1;
    if (NEED(1) && !(gin[1] = lt_sum_to(lt_neg(g), SHAPE(1))))
        return -1;
    return 0;
}

static int bw_mul(lt_ag_ctx *ctx, const lt_tensor *g, lt_tensor **gin)
{
    if (NEED(0) && !(gin[0] = lt_sum_to(lt_mul(g, IN(1)), SHAPE(0))))
        return -1;
    if (NEED(1) && !(gin[1] = lt_sum_to(lt_mul(g, IN(0)), SHAPE(1))))
        return -1;
    return 0;
}

/* (a/b)' = (g/b, -g a / b^2) */
static int bw_div(lt_ag_ctx *ctx, const lt_tensor *g, lt_tensor **gin)
{
    const lt_tensor *a = IN(0), *b = IN(1);
    if (NEED(0) && !(gin[0] = lt_sum_to(lt_div(g, b), SHAPE(0))))
        return -1;
    if (NEED(1) && !(gin[1] = lt_sum_to(lt_neg(lt_div(lt_mul(g, a), lt_mul(b, b))), SHAPE(1))))
        return -1;
    return 0;
}

/* (a^b)' = (g b a^(b-1), g a^b log a), the latter 0 where a <= 0 */
static int bw_pow(lt_ag_ctx *ctx, const lt_tensor *g, lt_tensor **gin)
{
    const lt_tensor *a = IN(0), *b = IN(1);
    if (NEED(0) && !(gin[0] = lt_sum_to(lt_mul(g, lt_mul(b, lt_pow(a, lt_add_scalar(b, -1.0)))), SHAPE(0))))
        return -1;
    if (NEED(1)) {
        lt_tensor *pos = lt_cmp_scalar(a, ">", 0);
        lt_tensor *safe_a = lt_where(pos, a, lt_scalar(1.0, lt_dtype_of(g)));
        lt_tensor *gb = masked(pos, lt_mul(g, lt_mul(OUT(2), lt_log(safe_a))));
        if (!(gin[1] = lt_sum_to(gb, SHAPE(1))))
            return -1;
    }
    return 0;
}

/* maximum: the gradient goes to the larger input, split evenly on ties. */
static int bw_extremum(lt_ag_ctx *ctx, const lt_tensor *g, lt_tensor **gin, const char *win)
{
    const lt_tensor *a = IN(0), *b = IN(1);
    lt_tensor *half = lt_mul_scalar(g, 0.5);
    lt_tensor *tie = lt_eq(a, b);
    lt_tensor *a_wins = strcmp(win, ">") == 0 ? lt_gt(a, b) : lt_lt(a, b);
    lt_tensor *b_wins = strcmp(win, ">") == 0 ? lt_lt(a, b) : lt_gt(a, b);
    lt_tensor *z = zero_of(lt_dtype_of(g));
    if (NEED(0) && !(gin[0] = lt_sum_to(lt_where(a_wins, g, lt_where(tie, half, z)), SHAPE(0))))
        return -1;
    if (NEED(1) && !(gin[1] = lt_sum_to(lt_where(b_wins, g, lt_where(tie, half, z)), SHAPE(1))))
        return -1;
    return 0;
}

static int bw_maximum(lt_ag_ctx *ctx, const lt_tensor *g, lt_tensor **gin) { return bw_extremum(ctx, g, gin, ">"); }
static int bw_minimum(lt_ag_ctx *ctx, const lt_tensor *g, lt_tensor **gin) { return bw_extremum(ctx, g, gin, "<"); }

/* ---- reductions: iarg = {mask, keepdim, unbiased} ---- */

#define RMASK ((unsigned)lt_ag_iarg(ctx, 0))
#define RKEEP ((bool)lt_ag_iarg(ctx, 1))

static int bw_sum(lt_ag_ctx *ctx, const lt_tensor *g, lt_tensor **gin)
{
    return (gin[0] = unreduce(ctx, g, RMASK, RKEEP)) ? 0 : -1;
}

static int bw_mean(lt_ag_ctx *ctx, const lt_tensor *g, lt_tensor **gin)
{
    int64_t n = reduced_count(ctx, RMASK);
    return (gin[0] = unreduce(ctx, lt_mul_scalar(g, 1.0 / (double)n), RMASK, RKEEP)) ? 0 : -1;
}

/* var' = g 2 (x - mean) / (N - unbiased), mean recomputed differentiably */
static int bw_var(lt_ag_ctx *ctx, const lt_tensor *g, lt_tensor **gin)
{
    const lt_tensor *x = IN(0);
    int64_t n = reduced_count(ctx, RMASK);
    double den = (double)n - (lt_ag_iarg(ctx, 2) ? 1.0 : 0.0);
    int dims[LT_MAX_DIMS], nd = 0;
    for (int d = 0; d < lt_ndim(x); d++)
        if (RMASK & (1u << d))
            dims[nd++] = d;
    lt_tensor *mu = lt_mean(x, nd, dims, true);
    lt_tensor *gx = lt_mul(unreduce(ctx, g, RMASK, RKEEP), lt_mul_scalar(lt_sub(x, mu), 2.0 / den));
    return (gin[0] = gx) ? 0 : -1;
}

/* logsumexp' = g exp(x - lse) */
static int bw_logsumexp(lt_ag_ctx *ctx, const lt_tensor *g, lt_tensor **gin)
{
    lt_tensor *lse = keep_form(ctx, OUT(1), RMASK, RKEEP);
    lt_tensor *gk = keep_form(ctx, g, RMASK, RKEEP);
    return (gin[0] = lt_mul(gk, lt_exp(lt_sub(IN(0), lse)))) ? 0 : -1;
}

/* amax' = g at the maxima, split evenly among ties (torch.amax) */
static int bw_amax(lt_ag_ctx *ctx, const lt_tensor *g, lt_tensor **gin)
{
    const lt_tensor *x = IN(0);
    lt_tensor *m = keep_form(ctx, OUT(1), RMASK, RKEEP);
    lt_tensor *hit = lt_eq(x, m);
    int dims[LT_MAX_DIMS], nd = 0;
    for (int d = 0; d < lt_ndim(x); d++)
        if (RMASK & (1u << d))
            dims[nd++] = d;
    lt_tensor *cnt = lt_sum(lt_to_dtype(hit, lt_dtype_of(g)), nd, dims, true);
    lt_tensor *share = lt_div(keep_form(ctx, g, RMASK, RKEEP), cnt);
    return (gin[0] = masked(hit, lt_expand(share, SHAPE(0)))) ? 0 : -1;
}

static int bw_sum_to(lt_ag_ctx *ctx, const lt_tensor *g, lt_tensor **gin)
{
    return (gin[0] = lt_expand(g, SHAPE(0))) ? 0 : -1;
}

/* softmax' = y (g - sum(g y)) */
static int bw_softmax(lt_ag_ctx *ctx, const lt_tensor *g, lt_tensor **gin)
{
    int d = (int)lt_ag_iarg(ctx, 0);
    const lt_tensor *y = OUT(1);
    lt_tensor *gy = lt_mul(g, y);
    return (gin[0] = lt_mul(y, lt_sub(g, lt_sum(gy, 1, &d, true)))) ? 0 : -1;
}

/* log_softmax' = g - exp(y) sum(g) */
static int bw_log_softmax(lt_ag_ctx *ctx, const lt_tensor *g, lt_tensor **gin)
{
    int d = (int)lt_ag_iarg(ctx, 0);
    const lt_tensor *y = OUT(1);
    return (gin[0] = lt_sub(g, lt_mul(lt_exp(y), lt_sum(g, 1, &d, true)))) ? 0 : -1;
}

/* matmul' = (g b^T, a^T g), summed over broadcast batch dims */
static int bw_matmul(lt_ag_ctx *ctx, const lt_tensor *g, lt_tensor **gin)
{
    const lt_tensor *a = IN(0), *b = IN(1);
    if (NEED(0) && !(gin[0] = lt_sum_to(lt_matmul(g, lt_transpose(b, -1, -2)), SHAPE(0))))
        return -1;
    if (NEED(1) && !(gin[1] = lt_sum_to(lt_matmul(lt_transpose(a, -1, -2), g), SHAPE(1))))
        return -1;
    return 0;
}

/* ---- the table ---- */

typedef struct builtin {
    lt_ag_fn fn;
    unsigned save;
} builtin;

static const builtin table[LT_OP__COUNT] = {
    [LT_OP_RESHAPE] = {{"reshape", bw_reshape}, 0},
    [LT_OP_PERMUTE] = {{"permute", bw_permute}, 0},
    [LT_OP_SLICE] = {{"slice", bw_slice}, 0},
    [LT_OP_SELECT] = {{"select", bw_select}, 0},
    [LT_OP_EXPAND] = {{"expand", bw_expand}, 0},
    [LT_OP_CONTIGUOUS] = {{"contiguous", bw_identity}, 0},
    [LT_OP_CLONE] = {{"clone", bw_identity}, 0},
    [LT_OP_TO_DTYPE] = {{"to_dtype", bw_to_dtype}, 0},
    [LT_OP_CAT] = {{"cat", bw_cat}, 0},
    [LT_OP_GATHER] = {{"gather", bw_gather}, S_IN1},
    [LT_OP_SCATTER_ADD] = {{"scatter_add", bw_scatter_add}, S_IN1},
    [LT_OP_INDEX_SELECT] = {{"index_select", bw_index_select}, S_IN1},
    [LT_OP_INDEX_ADD] = {{"index_add", bw_index_add}, S_IN1},
    [LT_OP_WHERE] = {{"where", bw_where}, S_IN0},
    [LT_OP_NEG] = {{"neg", bw_neg}, 0},
    [LT_OP_EXP] = {{"exp", bw_exp}, S_OUT},
    [LT_OP_LOG] = {{"log", bw_log}, S_IN0},
    [LT_OP_SQRT] = {{"sqrt", bw_sqrt}, S_OUT},
    [LT_OP_RSQRT] = {{"rsqrt", bw_rsqrt}, S_OUT},
    [LT_OP_ABS] = {{"abs", bw_abs}, S_IN0},
    [LT_OP_SIGN] = {{"sign", bw_zero}, 0},
    [LT_OP_RELU] = {{"relu", bw_relu}, S_OUT},
    [LT_OP_SIGMOID] = {{"sigmoid", bw_sigmoid}, S_OUT},
    [LT_OP_TANH] = {{"tanh", bw_tanh}, S_OUT},
    [LT_OP_ERF] = {{"erf", bw_erf}, S_IN0},
    [LT_OP_GELU] = {{"gelu", bw_gelu}, S_IN0},
    [LT_OP_GELU_TANH] = {{"gelu_tanh", bw_gelu_tanh}, S_IN0},
    [LT_OP_POW_SCALAR] = {{"pow_scalar", bw_pow_scalar}, S_IN0},
    [LT_OP_CLAMP] = {{"clamp", bw_clamp}, S_IN0},
    [LT_OP_MUL_SCALAR] = {{"mul_scalar", bw_mul_scalar}, 0},
    [LT_OP_ADD_SCALAR] = {{"add_scalar", bw_identity}, 0},
    [LT_OP_ADD] = {{"add", bw_add}, 0},
    [LT_OP_SUB] = {{"sub", bw_sub}, 0},
    [LT_OP_MUL] = {{"mul", bw_mul}, S_IN0 | S_IN1},
    [LT_OP_DIV] = {{"div", bw_div}, S_IN0 | S_IN1},
    [LT_OP_POW] = {{"pow", bw_pow}, S_IN0 | S_IN1 | S_OUT},
    [LT_OP_MAXIMUM] = {{"maximum", bw_maximum}, S_IN0 | S_IN1},
    [LT_OP_MINIMUM] = {{"minimum", bw_minimum}, S_IN0 | S_IN1},
    [LT_OP_SUM] = {{"sum", bw_sum}, 0},
    [LT_OP_MEAN] = {{"mean", bw_mean}, 0},
    [LT_OP_VAR] = {{"var", bw_var}, S_IN0},
    [LT_OP_LOGSUMEXP] = {{"logsumexp", bw_logsumexp}, S_IN0 | S_OUT},
    [LT_OP_AMAX] = {{"amax", bw_amax}, S_IN0 | S_OUT},
    [LT_OP_AMIN] = {{"amin", bw_amax}, S_IN0 | S_OUT},
    [LT_OP_SUM_TO] = {{"sum_to", bw_sum_to}, 0},
    [LT_OP_SOFTMAX] = {{"softmax", bw_softmax}, S_OUT},
    [LT_OP_LOG_SOFTMAX] = {{"log_softmax", bw_log_softmax}, S_OUT},
    [LT_OP_MATMUL] = {{"matmul", bw_matmul}, S_IN0 | S_IN1},
};

const lt_ag_fn *lt__ag_builtin_fn(lt_op op)
{
    return (op > LT_OP_NONE && op < LT_OP__COUNT && table[op].fn.backward) ? &table[op].fn : NULL;
}

int lt__ag_observer(const lt_opcall *c)
{
    const builtin *b = (c->op > LT_OP_NONE && c->op < LT_OP__COUNT) ? &table[c->op] : NULL;
    if (!b || !b->fn.backward)
        return 0;
    const lt_tensor *saved[LT_AG_MAXIN + 1] = {0};
    int nsaved = 0;
    if (b->save) {
        for (int i = 0; i < c->nin && i < 3; i++)
            if (b->save & (1u << i))
                saved[i] = c->in[i];
        if (b->save & S_OUT)
            saved[c->nin] = c->out;
        nsaved = c->nin + 1;
    }
    return lt_ag_record(&b->fn, c->nin, c->in, c->out, nsaved, saved, c->nargs, c->iarg, 2, c->darg);
}
