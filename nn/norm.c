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

/* (C) -> (1,C,1,1) or (1,C) in x's dtype dt, to broadcast against x. */
static lt_tensor *per_channel(const lt_tensor *v, int nd, int64_t c, lt_dtype dt)
{
    int64_t sh[4] = {1, c, 1, 1};
    return lt_reshape(lt_dtype_of(v) == dt ? v : lt_to_dtype(v, dt), nd, sh);
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
static void update_running(lt_tensor *running, const lt_tensor *batch, double m, double scale)
{
    int64_t c = lt_size(running, 0);
    void *d = lt_data(running);
    for (int64_t i = 0; i < c; i++) {
        double b = lt_item_at(batch, i) * scale;
        if (lt_dtype_of(running) == LT_F32)
            ((float *)d)[i] = (float)((1.0 - m) * ((float *)d)[i] + m * b);
        else
            ((double *)d)[i] = (1.0 - m) * ((double *)d)[i] + m * b;
    }
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
    lt_tensor *mean, *var;
    if (training) {
        int dims[3] = {0, 2, 3};
        mean = lt_mean(x, nd - 1, dims, true);
        var = lt_var(x, nd - 1, dims, false, true);
    } else {
        mean = per_channel(running_mean, nd, c, dt);
        var = per_channel(running_var, nd, c, dt);
    }
    lt_tensor *y = lt_mul(lt_sub(x, mean), lt_rsqrt(lt_add_scalar(var, eps)));
    if (weight)
        y = lt_mul(y, per_channel(weight, nd, c, dt));
    if (bias)
        y = lt_add(y, per_channel(bias, nd, c, dt));
    if (!y)
        return NULL;
    if (training && running_mean) {
        /* torch updates the running variance with the unbiased estimate. */
        update_running(running_mean, mean, momentum, 1.0);
        update_running(running_var, var, momentum, (double)count / (double)(count - 1));
    }
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

static const lt_ag_opinfo norm_ops[] = {
    {"batch_norm_train", 3, s_bn, f_bn_train},
    {"batch_norm_eval", 3, s_bn, f_bn_eval},
    {"layer_norm", 3, s_ln, f_ln},
};

const lt_ag_opinfo *lt__nn_norm_ops(int *n)
{
    *n = (int)(sizeof norm_ops / sizeof norm_ops[0]);
    return norm_ops;
}
