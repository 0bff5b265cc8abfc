/*
 * registry.c: the table of differentiable ops with sample inputs, which the
 * test suite runs gradcheck and gradgradcheck over, and the list of every op
 * that has a backward (for the coverage test).
 *
 * Samples cover three cases per op where they apply: plain contiguous
 * inputs (variant 0), broadcasting (variant 1) and non-contiguous inputs,
 * i.e. transposed views and slices with a step (variant 2). Inputs stay
 * away from kinks (abs, relu, clamp, maximum ties) by at least 0.1, far
 * more than the finite-difference step.
 */
#include "autograd_internal.h"

#include <math.h>
#include <string.h>

/* ---- sample helpers ---- */

/* Uniform in [lo, hi) with a random sign when away0 (|x| in [lo, hi)). */
static lt_tensor *rnd(lt_rng *r, int nd, const int64_t *sh, double lo, double hi, bool away0)
{
    lt_tensor *t = lt_rand_uniform(r, nd, sh, lo, hi, LT_F64);
    if (t && away0) {
        lt_tensor *s = lt_rand_bernoulli(r, nd, sh, 0.5, LT_F64);
        t = lt_mul(t, lt_add_scalar(lt_mul_scalar(s, 2.0), -1.0));
    }
    return t;
}

/* Same values, non-contiguous: stored transposed in the last two dims. */
static lt_tensor *noncontig(lt_tensor *t)
{
    int nd = lt_ndim(t);
    if (nd < 2)
        return lt_slice(lt_cat(2, (lt_tensor *[]){t, t}, 0), 0, 0, -1, 2); /* step-2 slice */
    lt_tensor *c = lt_contiguous(lt_transpose(t, -1, -2));
    return lt_transpose(c, -1, -2);
}

static lt_tensor *leaf(lt_tensor *t) { return lt_ag_set_requires_grad(t, true); }

#define SH(...) (int64_t[]){__VA_ARGS__}

/* unary samples: x of shape (2,3,4), or (3,4) transposed */
static int s_unary(int v, lt_rng *r, lt_tensor **in, double lo, double hi, bool away0)
{
    lt_tensor *x = v == 0 ? rnd(r, 3, SH(2, 3, 4), lo, hi, away0) : rnd(r, 2, SH(3, 4), lo, hi, away0);
    if (v == 2)
        x = noncontig(x);
    in[0] = leaf(x);
    return 1;
}
static int s_any(int v, lt_rng *r, lt_tensor **in) { return s_unary(v, r, in, -2.0, 2.0, false); }
static int s_pos(int v, lt_rng *r, lt_tensor **in) { return s_unary(v, r, in, 0.5, 2.0, false); }
static int s_away0(int v, lt_rng *r, lt_tensor **in) { return s_unary(v, r, in, 0.1, 2.0, true); }

/* binary samples: same shapes, broadcast (2,3,4)&(3,1), non-contiguous */
static int s_binary_rng(int v, lt_rng *r, lt_tensor **in, double lo, double hi, bool away0)
{
    if (v == 0) {
        in[0] = rnd(r, 2, SH(3, 4), lo, hi, away0);
        in[1] = rnd(r, 2, SH(3, 4), lo, hi, away0);
    } else if (v == 1) {
        in[0] = rnd(r, 3, SH(2, 3, 4), lo, hi, away0);
        in[1] = rnd(r, 2, SH(3, 1), lo, hi, away0);
    } else {
        in[0] = noncontig(rnd(r, 2, SH(3, 4), lo, hi, away0));
        in[1] = rnd(r, 1, SH(4), lo, hi, away0);
    }
    in[0] = leaf(in[0]);
    in[1] = leaf(in[1]);
    return 2;
}
static int s_binary(int v, lt_rng *r, lt_tensor **in) { return s_binary_rng(v, r, in, -2.0, 2.0, false); }
static int s_binary_pos(int v, lt_rng *r, lt_tensor **in) { return s_binary_rng(v, r, in, 0.5, 2.0, false); }
static int s_binary_away0(int v, lt_rng *r, lt_tensor **in) { return s_binary_rng(v, r, in, 0.3, 2.0, true); }
/* Distinct grid values k/2 + off, shuffled: two grids with offsets 0 and
 * 0.25 never come closer than 0.25 (maximum/minimum stay off their ties). */
static lt_tensor *grid(lt_rng *r, int nd, const int64_t *sh, double off)
{
    int64_t n = 1;
    for (int i = 0; i < nd; i++)
        n *= sh[i];
    lt_tensor *p = lt_to_dtype(lt_randperm(r, n), LT_F64);
    return lt_contiguous(lt_reshape(lt_add_scalar(lt_mul_scalar(p, 0.5), off - 0.5 * (double)(n / 2)), nd, sh));
}

static int s_binary_distinct(int v, lt_rng *r, lt_tensor **in)
{
    if (v == 0) {
        in[0] = grid(r, 2, SH(3, 4), 0.25);
        in[1] = grid(r, 2, SH(3, 4), 0.0);
    } else if (v == 1) {
        in[0] = grid(r, 3, SH(2, 3, 4), 0.25);
        in[1] = grid(r, 2, SH(3, 1), 0.0);
    } else {
        in[0] = noncontig(grid(r, 2, SH(3, 4), 0.25));
        in[1] = grid(r, 1, SH(4), 0.0);
    }
    in[0] = leaf(in[0]);
    in[1] = leaf(in[1]);
    return 2;
}

/* ---- functions under test ---- */

#define FN1(NAME, EXPR)                                                           \
    static lt_tensor *f_##NAME(void *ud, int n, lt_tensor *const *x)             \
    {                                                                             \
        (void)ud;                                                                 \
        (void)n;                                                                  \
        return (EXPR);                                                            \
    }

FN1(neg, lt_neg(x[0]))
FN1(exp, lt_exp(x[0]))
FN1(log, lt_log(x[0]))
FN1(sqrt, lt_sqrt(x[0]))
FN1(rsqrt, lt_rsqrt(x[0]))
FN1(abs, lt_abs(x[0]))
FN1(sign, lt_mul(lt_sign(x[0]), x[0]))
FN1(relu, lt_relu(x[0]))
FN1(sigmoid, lt_sigmoid(x[0]))
FN1(tanh, lt_tanh(x[0]))
FN1(erf, lt_erf(x[0]))
FN1(gelu, lt_gelu(x[0], false))
FN1(gelu_tanh, lt_gelu(x[0], true))
FN1(pow_scalar, lt_pow_scalar(x[0], 2.5))
FN1(clamp, lt_clamp(x[0], -0.5, 0.7))
FN1(mul_scalar, lt_mul_scalar(x[0], -1.5))
FN1(add_scalar, lt_add_scalar(x[0], 0.25))
FN1(add, lt_add(x[0], x[1]))
FN1(sub, lt_sub(x[0], x[1]))
FN1(mul, lt_mul(x[0], x[1]))
FN1(div, lt_div(x[0], x[1]))
FN1(pow, lt_pow(x[0], x[1]))
FN1(maximum, lt_maximum(x[0], x[1]))
FN1(minimum, lt_minimum(x[0], x[1]))
/* views: multiply by a constant pattern afterwards so that second
 * derivatives are not trivially zero for every path */
FN1(reshape, lt_mul(lt_reshape(x[0], 2, SH(-1, 2)), lt_reshape(x[0], 2, SH(-1, 2))))
FN1(permute, lt_mul(lt_permute(x[0], (int[]){1, 0}), lt_permute(x[0], (int[]){1, 0})))
FN1(slice, lt_pow_scalar(lt_slice(x[0], 1, 1, 4, 2), 2.0))
FN1(select, lt_pow_scalar(lt_select(x[0], 0, -1), 2.0))
static lt_tensor *f_expand(void *ud, int n, lt_tensor *const *x)
{
    (void)ud;
    (void)n;
    int nd = lt_ndim(x[0]);
    int64_t sh[LT_MAX_DIMS] = {3};
    for (int i = 1; i <= nd; i++)
        sh[i] = -1;
    return lt_pow_scalar(lt_expand(lt_unsqueeze(x[0], 0), nd + 1, sh), 2.0);
}
FN1(contiguous, lt_pow_scalar(lt_contiguous(x[0]), 2.0))
FN1(clone, lt_pow_scalar(lt_clone(x[0]), 2.0))
FN1(to_dtype, lt_pow_scalar(lt_to_dtype(x[0], LT_F64), 2.0))
FN1(cat, lt_pow_scalar(lt_cat(2, (lt_tensor *[]){x[0], x[1]}, 0), 2.0))
FN1(stack, lt_pow_scalar(lt_stack(2, (lt_tensor *[]){x[0], x[0]}, 1), 2.0))
FN1(gather, lt_pow_scalar(lt_gather(x[0], 1, x[1]), 2.0))
FN1(scatter_add, lt_pow_scalar(lt_scatter_add(x[0], 1, x[1], 2, SH(3, 5)), 2.0))
FN1(index_select, lt_pow_scalar(lt_index_select(x[0], 1, x[1]), 2.0))
FN1(index_add, lt_pow_scalar(lt_index_add(x[0], 1, x[1], 6), 2.0))
FN1(where, lt_pow_scalar(lt_where(x[2], x[0], x[1]), 2.0))
FN1(masked_fill, lt_pow_scalar(lt_masked_fill(x[0], x[1], 3.0), 2.0))
FN1(sum, lt_pow_scalar(lt_sum(x[0], 1, (int[]){1}, false), 2.0))
FN1(sum_all, lt_pow_scalar(lt_sum(x[0], 0, NULL, true), 2.0))
FN1(mean, lt_pow_scalar(lt_mean(x[0], 1, (int[]){-1}, true), 2.0))
FN1(var, lt_var(x[0], 1, (int[]){0}, true, false))
FN1(var_biased, lt_var(x[0], 0, NULL, false, false))
FN1(logsumexp, lt_logsumexp(x[0], 1, (int[]){1}, false))
FN1(amax, lt_pow_scalar(lt_amax(x[0], 1, (int[]){1}, false), 2.0))
FN1(amin, lt_pow_scalar(lt_amin(x[0], 1, (int[]){0}, true), 2.0))
FN1(sum_to, lt_pow_scalar(lt_sum_to(x[0], 2, SH(1, lt_size(x[0], -1))), 2.0))
FN1(softmax, lt_softmax(x[0], 1))
FN1(log_softmax, lt_log_softmax(x[0], -1))
FN1(matmul, lt_matmul(x[0], x[1]))

/* ---- op-specific samples ---- */

static int s_cat(int v, lt_rng *r, lt_tensor **in)
{
    in[0] = leaf(v == 2 ? noncontig(rnd(r, 2, SH(2, 3), -1, 1, false)) : rnd(r, 2, SH(2, 3), -1, 1, false));
    in[1] = leaf(rnd(r, 2, SH(1, 3), -1, 1, false));
    return 2;
}

static lt_tensor *idx(const int64_t *v, int nd, const int64_t *sh)
{
    int64_t n = 1;
    for (int i = 0; i < nd; i++)
        n *= sh[i];
    (void)n;
    return lt_from_data(v, nd, sh, LT_I64);
}

static int s_gather(int v, lt_rng *r, lt_tensor **in)
{
    lt_tensor *x = rnd(r, 2, SH(3, 5), -1, 1, false);
    in[0] = leaf(v == 2 ? noncontig(x) : x);
    static const int64_t iv[] = {0, 4, 4, 1, 2, 2, 3, 0, 1};
    in[1] = idx(iv, 2, SH(3, 3));
    return 2;
}

static int s_scatter(int v, lt_rng *r, lt_tensor **in)
{
    (void)v;
    in[0] = leaf(rnd(r, 2, SH(3, 3), -1, 1, false));
    static const int64_t iv[] = {0, 4, 4, 1, 2, 2, 3, 0, 1};
    in[1] = idx(iv, 2, SH(3, 3));
    return 2;
}

static int s_index_select(int v, lt_rng *r, lt_tensor **in)
{
    lt_tensor *x = rnd(r, 2, SH(3, 5), -1, 1, false);
    in[0] = leaf(v == 2 ? noncontig(x) : x);
    static const int64_t iv[] = {4, 0, 4, 2};
    in[1] = idx(iv, 1, SH(4));
    return 2;
}

static int s_index_add(int v, lt_rng *r, lt_tensor **in)
{
    (void)v;
    in[0] = leaf(rnd(r, 2, SH(3, 4), -1, 1, false));
    static const int64_t iv[] = {5, 0, 5, 2};
    in[1] = idx(iv, 1, SH(4));
    return 2;
}

static int s_where(int v, lt_rng *r, lt_tensor **in)
{
    s_binary(v, r, in);
    lt_tensor *c = lt_rand_bernoulli(r, 2, SH(3, 4), 0.5, LT_U8);
    in[2] = c;
    return 3;
}

static int s_masked_fill(int v, lt_rng *r, lt_tensor **in)
{
    s_any(v == 1 ? 0 : v, r, in);
    in[1] = lt_rand_bernoulli(r, 1, SH(4), 0.5, LT_U8);
    return 2;
}

static int s_amax(int v, lt_rng *r, lt_tensor **in)
{
    /* distinct values (a shuffled grid) so the max is unique and stable */
    lt_tensor *p = lt_to_dtype(lt_randperm(r, 24), LT_F64);
    lt_tensor *x = lt_reshape(lt_mul_scalar(p, 0.1), 2, SH(4, 6));
    in[0] = leaf(v == 2 ? noncontig(lt_contiguous(x)) : lt_contiguous(x));
    return 1;
}

static int s_sum_to(int v, lt_rng *r, lt_tensor **in)
{
    lt_tensor *x = v == 0 ? rnd(r, 3, SH(2, 3, 4), -1, 1, false) : rnd(r, 2, SH(3, 4), -1, 1, false);
    in[0] = leaf(v == 2 ? noncontig(x) : x);
    return 1;
}

static int s_matmul(int v, lt_rng *r, lt_tensor **in)
{
    switch (v) {
    case 0:
        in[0] = rnd(r, 2, SH(3, 4), -1, 1, false);
        in[1] = rnd(r, 2, SH(4, 2), -1, 1, false);
        break;
    case 1: /* broadcast batch */
        in[0] = rnd(r, 4, SH(2, 1, 3, 4), -1, 1, false);
        in[1] = rnd(r, 3, SH(3, 4, 2), -1, 1, false);
        break;
    case 2: /* transposed operand */
        in[0] = noncontig(rnd(r, 3, SH(2, 3, 4), -1, 1, false));
        in[1] = noncontig(rnd(r, 2, SH(4, 2), -1, 1, false));
        break;
    default: /* 1-D times 2-D */
        in[0] = rnd(r, 1, SH(4), -1, 1, false);
        in[1] = rnd(r, 2, SH(4, 3), -1, 1, false);
        break;
    }
    in[0] = leaf(in[0]);
    in[1] = leaf(in[1]);
    return 2;
}

#define OP(NAME, NV, SAMPLE) {#NAME, NV, SAMPLE, f_##NAME}

static const lt_ag_opinfo builtin_ops[] = {
    OP(neg, 3, s_any),
    OP(exp, 3, s_any),
    OP(log, 3, s_pos),
    OP(sqrt, 3, s_pos),
    OP(rsqrt, 3, s_pos),
    OP(abs, 3, s_away0),
    OP(sign, 3, s_away0),
    OP(relu, 3, s_away0),
    OP(sigmoid, 3, s_any),
    OP(tanh, 3, s_any),
    OP(erf, 3, s_any),
    OP(gelu, 3, s_any),
    OP(gelu_tanh, 3, s_any),
    OP(pow_scalar, 3, s_pos),
    OP(clamp, 3, s_away0),
    OP(mul_scalar, 3, s_any),
    OP(add_scalar, 3, s_any),
    OP(add, 3, s_binary),
    OP(sub, 3, s_binary),
    OP(mul, 3, s_binary),
    OP(div, 3, s_binary_away0),
    OP(pow, 3, s_binary_pos),
    OP(maximum, 3, s_binary_distinct),
    OP(minimum, 3, s_binary_distinct),
    OP(reshape, 3, s_any),
    {"permute", 2, s_cat, f_permute},
    OP(slice, 3, s_any),
    OP(select, 3, s_any),
    OP(expand, 3, s_sum_to),
    OP(contiguous, 3, s_any),
    OP(clone, 3, s_any),
    OP(to_dtype, 3, s_any),
    OP(cat, 3, s_cat),
    {"cat", 3, s_cat, f_stack},
    OP(gather, 3, s_gather),
    OP(scatter_add, 1, s_scatter),
    OP(index_select, 3, s_index_select),
    OP(index_add, 1, s_index_add),
    OP(where, 3, s_where),
    {"where", 3, s_masked_fill, f_masked_fill},
    OP(sum, 3, s_sum_to),
    {"sum", 3, s_sum_to, f_sum_all},
    OP(mean, 3, s_sum_to),
    OP(var, 3, s_sum_to),
    {"var", 3, s_sum_to, f_var_biased},
    OP(logsumexp, 3, s_sum_to),
    OP(amax, 3, s_amax),
    OP(amin, 3, s_amax),
    OP(sum_to, 3, s_sum_to),
    OP(softmax, 3, s_sum_to),
    OP(log_softmax, 3, s_sum_to),
    OP(matmul, 4, s_matmul),
};

/* ---- the registry ---- */

#define MAX_GROUPS 32
#define MAX_DECL 256

static struct {
    int n;
    const lt_ag_opinfo *ops;
} groups[MAX_GROUPS] = {{(int)(sizeof builtin_ops / sizeof builtin_ops[0]), builtin_ops}};
static int ngroups = 1;
static const lt_ag_fn *declared[MAX_DECL];
static int ndeclared;

int lt_ag_registry_add(int n, const lt_ag_opinfo *ops)
{
    for (int g = 0; g < ngroups; g++)
        if (groups[g].ops == ops)
            return 0;
    if (ngroups == MAX_GROUPS) {
        lt_set_error("registry_add: more than %d groups", MAX_GROUPS);
        return -1;
    }
    groups[ngroups].n = n;
    groups[ngroups++].ops = ops;
    return 0;
}

int lt_ag_registry_count(void)
{
    int n = 0;
    for (int g = 0; g < ngroups; g++)
        n += groups[g].n;
    return n;
}

const lt_ag_opinfo *lt_ag_registry_get(int i)
{
    for (int g = 0; g < ngroups; g++) {
        if (i < groups[g].n)
            return &groups[g].ops[i];
        i -= groups[g].n;
    }
    return NULL;
}

int lt_ag_declare_backward(const lt_ag_fn *fn)
{
    for (int i = 0; i < ndeclared; i++)
        if (declared[i] == fn)
            return 0;
    if (ndeclared == MAX_DECL) {
        lt_set_error("declare_backward: more than %d custom ops", MAX_DECL);
        return -1;
    }
    declared[ndeclared++] = fn;
    return 0;
}

int lt_ag_backward_count(void)
{
    int n = 0;
    for (int op = 1; op < LT_OP__COUNT; op++)
        n += lt__ag_builtin_fn((lt_op)op) != NULL;
    return n + ndeclared;
}

const char *lt_ag_backward_name(int i)
{
    for (int op = 1; op < LT_OP__COUNT; op++)
        if (lt__ag_builtin_fn((lt_op)op) && i-- == 0)
            return lt__ag_builtin_fn((lt_op)op)->name;
    return (i >= 0 && i < ndeclared) ? declared[i]->name : NULL;
}
