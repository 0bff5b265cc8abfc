/*
 * attribution.c: Saliency, Integrated Gradients and Grad-CAM with Captum's
 * semantics, channel reduction, bilinear resize and the signal-to-noise
 * ratio of attributions. docs/rrr.md states each choice.
 */
#include "rrr.h"

#include <math.h>
#include <string.h>

#include "../tensor/tensor_internal.h"

static int check_target(const char *op, const lt_tensor *x, const lt_tensor *target)
{
    if (!x || !target)
        return -1;
    if (lt_dtype_of(target) != LT_I64 || lt_ndim(target) != 1 || lt_ndim(x) < 1 ||
        lt_size(target, 0) != lt_size(x, 0)) {
        char a[96], b[96];
        lt_set_error("%s: target must be i64 (N) for a batch %s, got %s", op, lt__desc(x, a, sizeof a),
                     lt__desc(target, b, sizeof b));
        return -1;
    }
    return 0;
}

/* sum_n z[n, target_n] */
static lt_tensor *target_sum(const lt_tensor *z, const lt_tensor *target)
{
    if (!z)
        return NULL;
    lt_tensor *idx = lt_reshape(target, 2, (int64_t[]){lt_size(target, 0), 1});
    return lt_sum(lt_gather(z, 1, idx), 0, NULL, false);
}

/* d sum_n z[n, t_n] / dx at x (a fresh leaf), without create_graph. */
static lt_tensor *input_grad(const lt_rrr_model *m, const lt_tensor *x, const lt_tensor *target)
{
    bool prev = lt_ag_set_grad_enabled(true);
    lt_tensor *xi = lt_ag_set_requires_grad(lt_ag_detach(x), true), *g = NULL;
    lt_tensor *s = xi ? target_sum(m->forward(m->ctx, xi, NULL), target) : NULL;
    if (s && lt_ag_grad(1, &s, 1, &xi, NULL, false, false, true, &g) == 0 && !g)
        g = lt_zeros_like(x); /* the logits do not depend on x */
    lt_ag_set_grad_enabled(prev);
    return g;
}

lt_tensor *lt_rrr_saliency(const lt_rrr_model *m, const lt_tensor *x, const lt_tensor *target, bool signed_)
{
    if (check_target("saliency", x, target) < 0)
        return NULL;
    lt_tensor *g = input_grad(m, x, target);
    return signed_ ? g : lt_abs(g);
}

/* Gauss-Legendre nodes on [-1,1] by Newton's method on P_n. */
static void gauss_legendre(int n, double *x, double *w)
{
    for (int i = 0; i < n; i++) {
        double z = cos(M_PI * (i + 0.75) / (n + 0.5)), dp = 0;
        for (int it = 0; it < 100; it++) {
            double p0 = 1, p1 = z;
            for (int k = 2; k <= n; k++) {
                double p2 = ((2.0 * k - 1) * z * p1 - (k - 1.0) * p0) / k;
                p0 = p1;
                p1 = p2;
            }
            double pn = n == 1 ? z : p1, pm = n == 1 ? 1 : p0;
            dp = n * (z * pn - pm) / (z * z - 1);
            double dz = pn / dp;
            z -= dz;
            if (fabs(dz) < 1e-15)
                break;
        }
        x[n - 1 - i] = z; /* ascending */
        w[n - 1 - i] = 2.0 / ((1 - z * z) * dp * dp);
    }
}

int lt_rrr_ig_nodes(lt_rrr_ig_method method, int steps, double *a, double *w)
{
    if (steps < 1 || (method == LT_RRR_IG_RIEMANN_TRAPEZOID && steps < 2)) {
        lt_set_error("integrated_gradients: %d steps is too few for this method", steps);
        return -1;
    }
    int n = steps;
    switch (method) {
    case LT_RRR_IG_GAUSS_LEGENDRE:
        gauss_legendre(n, a, w);
        for (int i = 0; i < n; i++) {
            a[i] = 0.5 * (a[i] + 1.0);
            w[i] *= 0.5;
        }
        return 0;
    case LT_RRR_IG_RIEMANN_LEFT:
    case LT_RRR_IG_RIEMANN_RIGHT:
    case LT_RRR_IG_RIEMANN_MIDDLE: {
        double off = method == LT_RRR_IG_RIEMANN_LEFT ? 0.0 : method == LT_RRR_IG_RIEMANN_RIGHT ? 1.0 : 0.5;
        for (int i = 0; i < n; i++) {
            a[i] = (i + off) / n;
            w[i] = 1.0 / n;
        }
        return 0;
    }
    case LT_RRR_IG_RIEMANN_TRAPEZOID:
        for (int i = 0; i < n; i++) {
            a[i] = (double)i / (n - 1);
            w[i] = (i == 0 || i == n - 1) ? 0.5 / (n - 1) : 1.0 / (n - 1);
        }
        return 0;
    }
    lt_set_error("integrated_gradients: unknown method %d", (int)method);
    return -1;
}

lt_tensor *lt_rrr_integrated_gradients(const lt_rrr_model *m, const lt_tensor *x, const lt_tensor *baseline,
                                       const lt_tensor *target, int steps, lt_rrr_ig_method method)
{
    if (check_target("integrated_gradients", x, target) < 0)
        return NULL;
    if (steps < 1 || steps > 100000) {
        lt_set_error("integrated_gradients: steps must be in 1..100000, got %d", steps);
        return NULL;
    }
    lt_tensor *x0 = baseline ? lt_ag_detach(baseline) : lt_zeros_like(x);
    lt_tensor *dx = lt_sub(lt_ag_detach(x), x0);
    size_t bytes = (size_t)steps * sizeof(double);
    double *a = lt_alloc(bytes), *w = a ? lt_alloc(bytes) : NULL;
    if (!dx || !w || lt_rrr_ig_nodes(method, steps, a, w) < 0) {
        if (a)
            lt_free(a, bytes);
        if (w)
            lt_free(w, bytes);
        return NULL;
    }
    lt_tensor *acc = NULL; /* owned */
    int rc = 0;
    for (int i = 0; i < steps && rc == 0; i++) {
        size_t mk = lt_frame_push();
        lt_tensor *g = input_grad(m, lt_add(x0, lt_mul_scalar(dx, a[i])), target);
        lt_tensor *next = g ? (acc ? lt_add(acc, lt_mul_scalar(g, w[i])) : lt_mul_scalar(g, w[i])) : NULL;
        if (next) {
            lt_retain(next);
            lt_release(acc);
            acc = next;
        } else {
            rc = -1;
        }
        lt_frame_pop(mk);
    }
    lt_free(a, bytes);
    lt_free(w, bytes);
    lt_tensor *attr = rc == 0 ? lt_mul(dx, acc) : NULL;
    lt_release(acc);
    return attr;
}

lt_tensor *lt_rrr_gradcam(const lt_rrr_model *m, const lt_tensor *x, const lt_tensor *target, bool relu,
                          bool upsample)
{
    if (check_target("gradcam", x, target) < 0)
        return NULL;
    if (!m->forward_cam) {
        lt_set_error("gradcam: the model has no activation map (forward_cam)");
        return NULL;
    }
    bool prev = lt_ag_set_grad_enabled(true);
    lt_tensor *xi = lt_ag_set_requires_grad(lt_ag_detach(x), true), *A = NULL, *gA = NULL;
    lt_tensor *z = xi ? m->forward_cam(m->ctx, xi, &A) : NULL;
    lt_tensor *s = target_sum(z, target);
    int rc = s && A ? lt_ag_grad(1, &s, 1, &A, NULL, false, false, true, &gA) : -1;
    lt_ag_set_grad_enabled(prev);
    if (rc < 0)
        return NULL;
    if (lt_ndim(A) != 4) {
        char b[96];
        lt_set_error("gradcam: the activation map must be (N,C,h,w), got %s", lt__desc(A, b, sizeof b));
        return NULL;
    }
    bool p2 = lt_ag_set_grad_enabled(false);
    lt_tensor *Ad = lt_ag_detach(A);
    lt_tensor *alpha = gA ? lt_mean(gA, 2, (int[]){2, 3}, true) : lt_zeros(4, (int64_t[]){lt_size(A, 0), lt_size(A, 1), 1, 1}, lt_dtype_of(A));
    lt_tensor *cam = lt_sum(lt_mul(alpha, Ad), 1, (int[]){1}, true);
    if (relu)
        cam = lt_relu(cam);
    if (upsample)
        cam = lt_rrr_resize_bilinear(cam, lt_size(x, 2), lt_size(x, 3));
    lt_ag_set_grad_enabled(p2);
    return cam;
}

lt_tensor *lt_rrr_reduce_channels(const lt_tensor *attr, lt_rrr_channel_reduce how)
{
    if (!attr)
        return NULL;
    if (lt_ndim(attr) != 4) {
        lt_set_error("reduce_channels: attributions must be (N,C,H,W)");
        return NULL;
    }
    lt_tensor *a = lt_abs(attr);
    return how == LT_RRR_CHANNELS_SUM_ABS ? lt_sum(a, 1, (int[]){1}, true) : lt_amax(a, 1, (int[]){1}, true);
}

lt_tensor *lt_rrr_snr(const lt_tensor *attr, const lt_tensor *fg_mask)
{
    if (!attr || !fg_mask)
        return NULL;
    char a[96], b[96];
    if (lt_ndim(attr) != 4 || lt_ndim(fg_mask) != 4 || lt_dtype_of(fg_mask) != LT_U8 || lt_size(fg_mask, 1) != 1 ||
        lt_size(attr, 0) != lt_size(fg_mask, 0) || lt_size(attr, 2) != lt_size(fg_mask, 2) ||
        lt_size(attr, 3) != lt_size(fg_mask, 3)) {
        lt_set_error("snr: want attributions (N,C,H,W) and a u8 mask (N,1,H,W), got %s and %s",
                     lt__desc(attr, a, sizeof a), lt__desc(fg_mask, b, sizeof b));
        return NULL;
    }
    int64_t N = lt_size(attr, 0), C = lt_size(attr, 1), HW = lt_size(attr, 2) * lt_size(attr, 3);
    lt_tensor *out = lt_empty(1, &N, LT_F64);
    if (!out)
        return NULL;
    for (int64_t n = 0; n < N; n++) {
        double sf = 0, sb = 0;
        int64_t cf = 0, cb = 0;
        for (int64_t p = 0; p < HW; p++) {
            bool fg = lt_item_at(fg_mask, n * HW + p) != 0;
            for (int64_t c = 0; c < C; c++) {
                double v = fabs(lt_item_at(attr, (n * C + c) * HW + p));
                if (fg) {
                    sf += v;
                    cf++;
                } else {
                    sb += v;
                    cb++;
                }
            }
        }
        ((double *)lt_data(out))[n] = (cf && cb) ? (sf / (double)cf) / (sb / (double)cb) : NAN;
    }
    return out;
}

lt_tensor *lt_rrr_resize_bilinear(const lt_tensor *t, int64_t H, int64_t W)
{
    if (!t)
        return NULL;
    if (lt_ndim(t) != 4 || H <= 0 || W <= 0 || (lt_dtype_of(t) != LT_F32 && lt_dtype_of(t) != LT_F64)) {
        char b[96];
        lt_set_error("resize_bilinear: want a float (N,C,h,w) and H, W > 0, got %s to %lldx%lld",
                     lt__desc(t, b, sizeof b), (long long)H, (long long)W);
        return NULL;
    }
    int64_t N = lt_size(t, 0), C = lt_size(t, 1), h = lt_size(t, 2), w = lt_size(t, 3);
    lt_tensor *src = lt_contiguous(lt_ag_detach(t));
    lt_tensor *out = lt_empty(4, (int64_t[]){N, C, H, W}, lt_dtype_of(t));
    if (!src || !out)
        return NULL;
    lt_dtype dt = lt_dtype_of(t);
    const void *s = lt_data(src);
    void *d = lt_data(out);
    double sy = (double)h / (double)H, sx = (double)w / (double)W;
    for (int64_t nc = 0; nc < N * C; nc++)
        for (int64_t y = 0; y < H; y++) {
            double fy = (y + 0.5) * sy - 0.5;
            fy = fy < 0 ? 0 : fy;
            int64_t y0 = (int64_t)fy, y1 = y0 + 1 < h ? y0 + 1 : h - 1;
            double ly = fy - (double)y0;
            for (int64_t x = 0; x < W; x++) {
                double fx = (x + 0.5) * sx - 0.5;
                fx = fx < 0 ? 0 : fx;
                int64_t x0 = (int64_t)fx, x1 = x0 + 1 < w ? x0 + 1 : w - 1;
                double lx = fx - (double)x0;
                const int64_t b = nc * h * w;
                double v = (1 - ly) * ((1 - lx) * lt__get(s, dt, b + y0 * w + x0) + lx * lt__get(s, dt, b + y0 * w + x1)) +
                           ly * ((1 - lx) * lt__get(s, dt, b + y1 * w + x0) + lx * lt__get(s, dt, b + y1 * w + x1));
                lt__set(d, dt, (nc * H + y) * W + x, v);
            }
        }
    return out;
}
