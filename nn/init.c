/*
 * init.c: parameter initialization, as torch.nn.init does it.
 *
 * Each function writes into the tensor's memory directly (torch runs its
 * initializers under no_grad for the same reason): a parameter is a leaf
 * that requires grad, and nothing here belongs in a graph. Values are drawn
 * in f64 from the counter-based generator and rounded to the tensor's
 * dtype, so a seed builds the same model on any thread count.
 *
 * References: torch/nn/init.py (calculate_gain, _calculate_fan_in_and_fan_out,
 * kaiming_normal_, trunc_normal_), torch.nn.Linear.reset_parameters.
 */
#include "nn.h"

#include <math.h>
#include <string.h>

static int check_target(const char *op, const lt_tensor *t)
{
    if (!t)
        return -1;
    if ((lt_dtype_of(t) != LT_F32 && lt_dtype_of(t) != LT_F64) || !lt_is_contiguous(t)) {
        char b[96];
        lt_set_error("%s: needs a contiguous f32/f64 tensor, got %s%s", op, lt_dtype_name(lt_dtype_of(t)),
                     lt_shape_str(t, b, sizeof b));
        return -1;
    }
    return 0;
}

/* Write the f64 values of src (contiguous, t's numel) into t's memory. */
static void store(lt_tensor *t, const double *src)
{
    int64_t n = lt_numel(t);
    if (lt_dtype_of(t) == LT_F64) {
        memcpy(lt_data(t), src, (size_t)n * sizeof(double));
    } else {
        float *d = lt_data(t);
        for (int64_t i = 0; i < n; i++)
            d[i] = (float)src[i];
    }
}

int lt_nn_init_constant_(lt_tensor *t, double value)
{
    if (check_target("init_constant", t) < 0)
        return -1;
    int64_t n = lt_numel(t);
    void *d = lt_data(t);
    for (int64_t i = 0; i < n; i++) {
        if (lt_dtype_of(t) == LT_F64)
            ((double *)d)[i] = value;
        else
            ((float *)d)[i] = (float)value;
    }
    return 0;
}

/* Draw with a generator call into an f64 temporary, then store it. */
static int draw(const char *op, lt_tensor *t, lt_rng *r, bool normal, double p0, double p1)
{
    if (check_target(op, t) < 0)
        return -1;
    if (!r) {
        lt_set_error("%s: no generator", op);
        return -1;
    }
    if (lt_numel(t) == 0)
        return 0;
    size_t mark = lt_frame_push();
    lt_tensor *v = normal ? lt_rand_normal(r, lt_ndim(t), lt_shape(t), p0, p1, LT_F64)
                          : lt_rand_uniform(r, lt_ndim(t), lt_shape(t), p0, p1, LT_F64);
    if (v)
        store(t, lt_data(v));
    lt_frame_pop(mark);
    return v ? 0 : -1;
}

int lt_nn_init_uniform_(lt_tensor *t, lt_rng *r, double lo, double hi)
{
    if (!(lo <= hi)) {
        lt_set_error("init_uniform: lo %g > hi %g", lo, hi);
        return -1;
    }
    return draw("init_uniform", t, r, false, lo, hi);
}

int lt_nn_init_normal_(lt_tensor *t, lt_rng *r, double mean, double std)
{
    if (!(std >= 0)) {
        lt_set_error("init_normal: std %g < 0", std);
        return -1;
    }
    return draw("init_normal", t, r, true, mean, std);
}

/* Rejection: draw the whole tensor, then redraw out-of-range elements one
 * vector at a time until none is left (a bounded number of rounds: with
 * P(in range) >= 1e-3 per draw, 100000 rounds never run out in practice). */
int lt_nn_init_trunc_normal_(lt_tensor *t, lt_rng *r, double mean, double std, double a, double b)
{
    if (!(std >= 0) || !(a < b) || !(a <= mean + 10 * std && b >= mean - 10 * std)) {
        lt_set_error("init_trunc_normal: need std >= 0 and a < b near the mean (mean %g, std %g, [%g, %g])", mean,
                     std, a, b);
        return -1;
    }
    if (check_target("init_trunc_normal", t) < 0 || !r)
        return -1;
    int64_t n = lt_numel(t);
    if (n == 0)
        return 0;
    size_t mark = lt_frame_push();
    int rc = -1;
    lt_tensor *v = lt_rand_normal(r, 1, (int64_t[]){n}, mean, std, LT_F64);
    if (v) {
        double *d = lt_data(v);
        int64_t bad = 0;
        for (int64_t i = 0; i < n; i++)
            bad += !(d[i] >= a && d[i] <= b);
        for (int round = 0; bad > 0 && round < 100000; round++) {
            lt_tensor *w = lt_rand_normal(r, 1, (int64_t[]){bad}, mean, std, LT_F64);
            if (!w)
                break;
            const double *wd = lt_data(w);
            int64_t k = 0, still = 0;
            for (int64_t i = 0; i < n; i++)
                if (!(d[i] >= a && d[i] <= b)) {
                    d[i] = wd[k++];
                    still += !(d[i] >= a && d[i] <= b);
                }
            bad = still;
        }
        if (bad == 0) {
            store(t, d);
            rc = 0;
        } else {
            lt_set_error("init_trunc_normal: could not draw inside [%g, %g]", a, b);
        }
    }
    lt_frame_pop(mark);
    return rc;
}

int lt_nn_init_fans(const lt_tensor *t, int64_t *fan_in, int64_t *fan_out)
{
    if (!t)
        return -1;
    if (lt_ndim(t) < 2) {
        lt_set_error("init_fans: fans need a tensor of rank >= 2, got rank %d", lt_ndim(t));
        return -1;
    }
    int64_t rf = 1;
    for (int d = 2; d < lt_ndim(t); d++)
        rf *= lt_size(t, d);
    if (fan_in)
        *fan_in = lt_size(t, 1) * rf;
    if (fan_out)
        *fan_out = lt_size(t, 0) * rf;
    return 0;
}

int lt_nn_init_kaiming_normal_(lt_tensor *t, lt_rng *r, bool fan_out, double gain)
{
    int64_t fi, fo;
    if (lt_nn_init_fans(t, &fi, &fo) < 0)
        return -1;
    int64_t fan = fan_out ? fo : fi;
    if (fan < 1) {
        lt_set_error("init_kaiming_normal: zero fan");
        return -1;
    }
    return lt_nn_init_normal_(t, r, 0.0, gain / sqrt((double)fan));
}

/* kaiming_uniform_(a = sqrt(5)): gain = sqrt(2 / (1 + a^2)) = sqrt(1/3),
 * bound = gain sqrt(3 / fan_in) = 1 / sqrt(fan_in); the bias uses the same
 * bound (torch's Linear and Conv2d reset_parameters). */
int lt_nn_init_torch_default_(lt_tensor *w, lt_tensor *b, lt_rng *r)
{
    int64_t fi;
    if (lt_nn_init_fans(w, &fi, NULL) < 0)
        return -1;
    double bound = fi > 0 ? 1.0 / sqrt((double)fi) : 0.0;
    if (lt_nn_init_uniform_(w, r, -bound, bound) < 0)
        return -1;
    return b ? lt_nn_init_uniform_(b, r, -bound, bound) : 0;
}
