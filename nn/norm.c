/*
 * norm.c: batch norm and layer norm: the public functions, training-mode
 * batch norm's three fused ops with their backwards (first and second
 * order), and the registry entries. The per-channel kernels the fused ops
 * run are in norm_kernels.c; layer norm is composed from differentiable
 * ops.
 *
 * Both normalize with statistics computed inside the graph (lt_mean and
 * the biased lt_var, or fused ops with the same derivatives), never
 * detached, so the first derivative includes the terms through the mean
 * and variance and the second derivative is exact (DESIGN.md: "no detached
 * mean inside batch-norm variance"). Formulas follow
 * torch.nn.functional.batch_norm / layer_norm.
 */
#include "nn_internal.h"
#include "norm_internal.h"

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
 * kernel (lt__bn_kernel, norm_kernels.c): a read pass for the per-channel
 * sums, then (for the first two) a write pass, where the composed form made
 * about ten full passes and saved as many full-size tensors. The backward
 * formulas are exact to any order:
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
 * backward of a double-backprop step) one kernel does both
 * (lt__bn_kernel2: one read pass, one write pass), and dg's kernel reuses
 * the sums of its read pass instead of making its own. The composed form
 * took about twenty full passes, each its own parallel region.
 *
 * The kernels' sums are shifted and summed in a fixed order, so results do
 * not depend on the thread count (norm_kernels.c).
 */

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

/* beta's gradient, sum u over all dims but 1: from the per-channel sums
 * that weight_grad's read pass left (sums[5 c + 2], or NULL) when no graph
 * is recorded and u has x's dtype, which saves a read pass over u; else
 * lt_sum. */
static lt_tensor *bn_bias_grad(const lt_tensor *u, const lt_tensor *x, const double *sums, int nd, const int *dims)
{
    lt_dtype dt = lt_dtype_of(x);
    if (!sums || lt_dtype_of(u) != dt || bn_records(1, (const lt_tensor *const[]){u}))
        return lt_sum(u, nd, dims, false);
    int64_t C = lt_size(x, 1);
    lt_tensor *db = lt_empty(1, &C, dt);
    if (!db)
        return NULL;
    for (int64_t c = 0; c < C; c++) {
        if (dt == LT_F32)
            ((float *)lt_data(db))[c] = (float)sums[5 * c + 2];
        else
            ((double *)lt_data(db))[c] = sums[5 * c + 2];
    }
    return db;
}

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
    if (lt_ag_needs_grad(ctx, 2) && !(gin[2] = bn_bias_grad(u, x, sums, nd, dims)))
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

/* bw_bn_input_grad without a graph to record: lt__bn_kernel2 for dx and
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
    lt__bn_kernel2(uc, g, x, gamma, dx, dw, eps, sums);
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

/* batch_norm_act_train(x, gamma, beta, res) = act(batch_norm_train(x,
 * gamma, beta) + res), act ReLU (iarg 0) or the identity, res NULL or
 * like x: ResNet's bn1 + ReLU and bn2 + shortcut + ReLU as one node and
 * one write pass (lt__bn_fwd_act) instead of two or three of each.
 * Backward: gz = u where z > 0 (ReLU's, from the output z) or u, then
 * batch_norm_train's backward against gz (its inputs and saved tensors
 * come first in the same order), and gz for res. gz is one pass
 * (lt__bn_relu_grad) where no graph is recorded, else the recorded
 * where(z > 0, u, 0) that lt_relu's backward makes. */
static lt_tensor *bn_relu_grad(const lt_tensor *u, const lt_tensor *z)
{
    lt_dtype dt = lt_dtype_of(z);
    if (bn_records(1, (const lt_tensor *const[]){u}) || lt_dtype_of(u) != dt)
        return lt_where(lt_cmp_scalar(z, ">", 0), u, lt_scalar(0.0, lt_dtype_of(u)));
    const lt_tensor *uc = lt_contiguous(u);
    lt_tensor *gz = lt_empty(lt_ndim(z), lt_shape(z), dt);
    if (!uc || !gz)
        return NULL;
    lt__bn_relu_grad(uc, z, gz);
    return gz;
}

static int bw_bn_act_train(lt_ag_ctx *ctx, const lt_tensor *u, lt_tensor **gin)
{
    const lt_tensor *gz = lt_ag_iarg(ctx, 0) ? bn_relu_grad(u, lt_ag_saved(ctx, 2)) : u;
    if (!gz || bw_bn_train(ctx, gz, gin) < 0)
        return -1;
    if (lt_ag_needs_grad(ctx, 3) && !(gin[3] = lt_reshape(gz, lt_ndim(gz), lt_shape(gz))))
        return -1;
    return 0;
}

static const lt_ag_fn bn_train_fn = {"batch_norm_train", bw_bn_train};
static const lt_ag_fn bn_act_train_fn = {"batch_norm_act_train", bw_bn_act_train};
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
    lt__bn_kernel(LT__BN_FWD, xc, NULL, gc, bc, y, eps, mean_out, var_out, NULL);
    if (lt_ag_record(&bn_train_fn, 3, (const lt_tensor *const[]){xc, gc, bc}, y, 2,
                     (const lt_tensor *const[]){xc, gc}, 0, NULL, 1, &eps) < 0)
        return NULL;
    return y;
}

/* res: NULL or like x, in x's dtype. */
static lt_tensor *bn_act_train(const lt_tensor *x, const lt_tensor *gamma, const lt_tensor *beta,
                               const lt_tensor *res, bool relu, double eps, double *mean_out, double *var_out)
{
    lt_dtype dt = lt_dtype_of(x);
    const lt_tensor *xc = lt_contiguous(x), *gc = bn_operand(gamma, dt), *bc = bn_operand(beta, dt);
    const lt_tensor *rc = res ? lt_contiguous(res) : NULL;
    lt_tensor *z = lt_empty(lt_ndim(x), lt_shape(x), dt);
    if (!xc || !z || (gamma && !gc) || (beta && !bc) || (res && !rc))
        return NULL;
    lt__bn_fwd_act(xc, gc, bc, rc, relu, z, eps, mean_out, var_out);
    int64_t ia = relu;
    if (lt_ag_record(&bn_act_train_fn, 4, (const lt_tensor *const[]){xc, gc, bc, rc}, z, relu ? 3 : 2,
                     (const lt_tensor *const[]){xc, gc, z}, 1, &ia, 1, &eps) < 0)
        return NULL;
    return z;
}

/* sums: NULL, or the per-channel sums bn_weight_grad left for the same
 * (g, x) (see lt__bn_kernel). */
static lt_tensor *bn_input_grad(const lt_tensor *g, const lt_tensor *x, const lt_tensor *gamma, double eps,
                                double *sums)
{
    lt_dtype dt = lt_dtype_of(x);
    const lt_tensor *gc = bn_operand(g, dt), *xc = lt_contiguous(x), *wc = bn_operand(gamma, dt);
    lt_tensor *dx = lt_empty(lt_ndim(x), lt_shape(x), dt);
    if (!gc || !xc || !dx || (gamma && !wc))
        return NULL;
    lt__bn_kernel(LT__BN_INPUT_GRAD, xc, gc, wc, NULL, dx, eps, NULL, NULL, sums);
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
    lt__bn_kernel(LT__BN_WEIGHT_GRAD, xc, gc, NULL, NULL, dw, eps, NULL, NULL, sums);
    if (lt_ag_record(&bn_weight_grad_fn, 2, (const lt_tensor *const[]){gc, xc}, dw, 2,
                     (const lt_tensor *const[]){gc, xc}, 0, NULL, 1, &eps) < 0)
        return NULL;
    return dw;
}

const lt_ag_fn *const *lt__nn_norm_fns(void)
{
    static const lt_ag_fn *const fns[] = {&bn_train_fn, &bn_act_train_fn, &bn_input_grad_fn, &bn_weight_grad_fn,
                                          NULL};
    return fns;
}

/* Eval mode with no graph to record: y = x s + t per channel (then + r,
 * then ReLU) in one pass instead of two to four ops and their temporaries,
 * bitwise the recorded path's. s, t: (C), x's dtype; r: NULL or x's shape
 * and dtype. */
static lt_tensor *bn_eval_direct(const lt_tensor *x, const lt_tensor *s, const lt_tensor *t, const lt_tensor *r,
                                 bool relu)
{
    lt_dtype dt = lt_dtype_of(x);
    const lt_tensor *xc = lt_contiguous(x), *sc = lt_contiguous(s), *tc = lt_contiguous(t);
    const lt_tensor *rc = r ? lt_contiguous(r) : NULL;
    lt_tensor *y = lt_empty(lt_ndim(x), lt_shape(x), dt);
    if (!xc || !sc || !tc || (r && !rc) || !y)
        return NULL;
    lt__bn_eval(xc, sc, tc, rc, relu, y);
    return y;
}

/* Batch norm, then (res) + res, then (relu) ReLU: lt_nn_batch_norm's
 * checks and results; the tail is the composed ops, or part of eval mode's
 * one pass where no graph is recorded and res matches x. */
static lt_tensor *bn_act(const lt_tensor *x, lt_tensor *running_mean, lt_tensor *running_var,
                         const lt_tensor *weight, const lt_tensor *bias, bool training, double momentum, double eps,
                         const lt_tensor *res, bool relu);

lt_tensor *lt_nn_batch_norm(const lt_tensor *x, lt_tensor *running_mean, lt_tensor *running_var,
                            const lt_tensor *weight, const lt_tensor *bias, bool training, double momentum,
                            double eps)
{
    return bn_act(x, running_mean, running_var, weight, bias, training, momentum, eps, NULL, false);
}

lt_tensor *lt__nn_batch_norm_act(const lt_tensor *x, lt_tensor *running_mean, lt_tensor *running_var,
                                 const lt_tensor *weight, const lt_tensor *bias, bool training, double momentum,
                                 double eps, const lt_tensor *res, bool relu)
{
    return bn_act(x, running_mean, running_var, weight, bias, training, momentum, eps, res, relu);
}

static lt_tensor *act_tail(lt_tensor *y, const lt_tensor *res, bool relu)
{
    if (y && res)
        y = lt_add(y, res);
    if (y && relu)
        y = lt_relu(y);
    return y;
}

static lt_tensor *bn_act(const lt_tensor *x, lt_tensor *running_mean, lt_tensor *running_var,
                         const lt_tensor *weight, const lt_tensor *bias, bool training, double momentum, double eps,
                         const lt_tensor *res, bool relu)
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
        if (!bn_records(4, (const lt_tensor *const[]){x, weight, bias, res}) &&
            (!res || (lt_dtype_of(res) == dt && lt__nn_same_shape(res, x))))
            return bn_eval_direct(x, s, t, res, relu);
        return act_tail(lt_add(lt_mul(x, bn_bcast(s, nd)), bn_bcast(t, nd)), res, relu);
    }
    if (c > (1 << 20)) {
        lt_set_error("batch_norm: %lld channels is too many", (long long)c);
        return NULL;
    }
    double *stats = running_mean ? lt_alloc(sizeof(double) * 2 * (size_t)c) : NULL;
    if (running_mean && !stats)
        return NULL;
    /* The tail in the same op and pass where res matches x. */
    bool fuse = (res || relu) && (!res || (lt_dtype_of(res) == dt && lt__nn_same_shape(res, x)));
    lt_tensor *y = fuse ? bn_act_train(x, weight, bias, res, relu, eps, stats, stats ? stats + c : NULL)
                        : bn_train(x, weight, bias, eps, stats, stats ? stats + c : NULL);
    if (y && running_mean) {
        /* torch updates the running variance with the unbiased estimate. */
        update_running(running_mean, stats, momentum, 1.0);
        update_running(running_var, stats + c, momentum, (double)count / (double)(count - 1));
    }
    if (stats)
        lt_free(stats, sizeof(double) * 2 * (size_t)c);
    return fuse ? y : act_tail(y, res, relu);
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

/* batch_norm_act_train: variant 0 ReLU (N,C,H,W) with affine, 1 ReLU and
 * a residual (N,C) with affine, 2 a residual without ReLU or affine on a
 * non-contiguous x. The last input is the residual where there is one. */
static int s_bn_act(int v, lt_rng *r, lt_tensor **in)
{
    int n = s_bn(v, r, in);
    if (v == 0)
        return n;
    in[n] = leaf(lt__nn_rnd(r, lt_ndim(in[0]), lt_shape(in[0]), -1, 1));
    return n + 1;
}

static lt_tensor *f_bn_act(void *ud, int n, lt_tensor *const *in)
{
    (void)ud;
    bool res = n == 2 || n == 4;
    return lt_pow_scalar(lt__nn_batch_norm_act(in[0], NULL, NULL, n > 2 ? in[1] : NULL, n > 2 ? in[2] : NULL, true,
                                               0.1, 1e-5, res ? in[n - 1] : NULL, n != 2),
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
    {"batch_norm_act_train", 3, s_bn_act, f_bn_act},
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
