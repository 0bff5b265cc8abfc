/*
 * losses.c: RRR, GradMask, ActDiff and the adversarial baseline. The
 * formulas, their normalizations and references are in docs/rrr.md; each
 * function below cites the line it implements.
 */
#include "rrr.h"

#include <math.h>
#include <string.h>

#include "../tensor/tensor_internal.h"

lt_tensor *lt_rrr_context_mask(const lt_tensor *fg_mask, lt_dtype dt)
{
    if (!fg_mask)
        return NULL;
    if (lt_dtype_of(fg_mask) != LT_U8 || lt_ndim(fg_mask) != 4 || lt_size(fg_mask, 1) != 1) {
        char b[96];
        lt_set_error("rrr: the foreground mask must be u8 (N,1,H,W), got %s", lt__desc(fg_mask, b, sizeof b));
        return NULL;
    }
    lt_tensor *fg = lt_to_dtype(lt_cmp_scalar(fg_mask, "!=", 0), dt);
    return lt_add_scalar(lt_neg(fg), 1.0);
}

static int check_batch(const char *op, const lt_tensor *x, const lt_tensor *fg_mask)
{
    if (!x || !fg_mask)
        return -1;
    char a[96], b[96];
    if (lt_ndim(x) != 4 || lt_ndim(fg_mask) != 4 || lt_size(x, 0) != lt_size(fg_mask, 0) ||
        lt_size(x, 2) != lt_size(fg_mask, 2) || lt_size(x, 3) != lt_size(fg_mask, 3)) {
        lt_set_error("%s: image batch %s and mask %s do not match (want (N,C,H,W) and (N,1,H,W))", op,
                     lt__desc(x, a, sizeof a), lt__desc(fg_mask, b, sizeof b));
        return -1;
    }
    return 0;
}

/* Run the model on a fresh leaf copy of x that requires grad, so the input
 * gradient can be taken; grad mode is forced on for the duration. */
static lt_tensor *forward_on_leaf(const lt_rrr_model *m, const lt_tensor *x, lt_tensor **xi, lt_tensor **feat)
{
    *xi = lt_ag_set_requires_grad(lt_ag_detach(x), true);
    if (!*xi)
        return NULL;
    lt_tensor *z = m->forward(m->ctx, *xi, feat);
    if (z && (lt_ndim(z) != 2 || lt_size(z, 0) != lt_size(x, 0))) {
        char b[96];
        lt_set_error("rrr: the model returned logits %s for a batch of %lld", lt__desc(z, b, sizeof b),
                     (long long)lt_size(x, 0));
        return NULL;
    }
    return z;
}

/* RRR: mean_n sum (A * d(sum_k log_softmax_k(f(x)))/dx)^2 (Ross et al. 2017, Eq. 1). */
lt_tensor *lt_rrr_rrr_penalty(const lt_rrr_model *m, const lt_tensor *x, const lt_tensor *fg_mask,
                              lt_tensor **logits)
{
    if (check_batch("rrr_penalty", x, fg_mask) < 0)
        return NULL;
    bool prev = lt_ag_set_grad_enabled(true);
    lt_tensor *xi, *gx = NULL, *pen = NULL;
    lt_tensor *z = forward_on_leaf(m, x, &xi, NULL);
    lt_tensor *s = lt_sum(lt_log_softmax(z, 1), 0, NULL, false);
    if (s && lt_ag_grad(1, &s, 1, &xi, NULL, true, true, false, &gx) == 0) {
        lt_tensor *A = lt_rrr_context_mask(fg_mask, lt_dtype_of(x));
        pen = lt_mul_scalar(lt_sum(lt_mul(lt_mul(A, gx), lt_mul(A, gx)), 0, NULL, false),
                            1.0 / (double)lt_size(x, 0));
    }
    lt_ag_set_grad_enabled(prev);
    if (logits)
        *logits = pen ? z : NULL;
    return pen;
}

/* The multi-class margin s_n = z_{n,y_n} - max_{k != y_n} z_{n,k}, (N). */
static lt_tensor *margin(const lt_tensor *z, const lt_tensor *y)
{
    if (!z || !y)
        return NULL;
    if (lt_dtype_of(y) != LT_I64 || lt_ndim(y) != 1 || lt_size(y, 0) != lt_size(z, 0) || lt_size(z, 1) < 2) {
        lt_set_error("gradmask_penalty: labels must be i64 (N) and logits (N,K) with K >= 2");
        return NULL;
    }
    lt_tensor *hot = lt_one_hot(y, lt_size(z, 1), LT_U8);
    lt_tensor *zy = lt_sum(lt_where(hot, z, lt_scalar(0.0, lt_dtype_of(z))), 1, (int[]){1}, false);
    lt_tensor *other = lt_amax(lt_masked_fill(z, hot, -INFINITY), 1, (int[]){1}, false);
    return lt_sub(zy, other);
}

/* GradMask: mean_n sum |A * d s_n / dx| (Simpson et al. 2019, multi-class
 * margin extension documented in docs/rrr.md). */
lt_tensor *lt_rrr_gradmask_penalty(const lt_rrr_model *m, const lt_tensor *x, const lt_tensor *fg_mask,
                                   const lt_tensor *y, lt_tensor **logits)
{
    if (check_batch("gradmask_penalty", x, fg_mask) < 0)
        return NULL;
    bool prev = lt_ag_set_grad_enabled(true);
    lt_tensor *xi, *gx = NULL, *pen = NULL;
    lt_tensor *z = forward_on_leaf(m, x, &xi, NULL);
    lt_tensor *s = lt_sum(margin(z, y), 0, NULL, false);
    if (s && lt_ag_grad(1, &s, 1, &xi, NULL, true, true, false, &gx) == 0) {
        lt_tensor *A = lt_rrr_context_mask(fg_mask, lt_dtype_of(x));
        pen = lt_mul_scalar(lt_sum(lt_abs(lt_mul(A, gx)), 0, NULL, false), 1.0 / (double)lt_size(x, 0));
    }
    lt_ag_set_grad_enabled(prev);
    if (logits)
        *logits = pen ? z : NULL;
    return pen;
}

lt_tensor *lt_rrr_actdiff_input(const lt_tensor *x, const lt_tensor *fg_mask, lt_rrr_actdiff_mode mode,
                                lt_rng *rng)
{
    if (check_batch("actdiff", x, fg_mask) < 0)
        return NULL;
    lt_tensor *xd = lt_ag_detach(x);
    if (mode == LT_RRR_ACTDIFF_MASK) /* x * (1 - A) = x * M (the paper's Eq. 5) */
        return lt_mul(xd, lt_to_dtype(lt_cmp_scalar(fg_mask, "!=", 0), lt_dtype_of(x)));
    if (mode != LT_RRR_ACTDIFF_SHUFFLE || !rng) {
        lt_set_error("actdiff: unknown mode %d (or no rng for the shuffle mode)", (int)mode);
        return NULL;
    }
    /* Shuffle the background pixels of each image among themselves, one
     * permutation for all channels (Viviano et al.'s reference code). */
    lt_tensor *out = lt_clone(xd), *mc = lt_contiguous(fg_mask);
    if (!out || !mc)
        return NULL;
    int64_t N = lt_size(x, 0), C = lt_size(x, 1), HW = lt_size(x, 2) * lt_size(x, 3);
    int64_t *pos = lt_alloc((size_t)(HW ? HW : 1) * sizeof *pos);
    if (!pos)
        return NULL;
    const uint8_t *mk = lt_data(mc);
    void *od = lt_data(out);
    lt_dtype dt = lt_dtype_of(out);
    int rc = 0;
    for (int64_t n = 0; n < N && rc == 0; n++) {
        int64_t cnt = 0;
        for (int64_t p = 0; p < HW; p++)
            if (!mk[n * HW + p])
                pos[cnt++] = p;
        if (cnt < 2)
            continue;
        size_t m2 = lt_frame_push();
        lt_tensor *perm = lt_randperm(rng, cnt);
        if (!perm) {
            rc = -1;
        } else {
            const int64_t *pp = lt_data(perm);
            for (int64_t c = 0; c < C; c++) {
                int64_t base = (n * C + c) * HW;
                for (int64_t k = 0; k < cnt; k++)
                    lt__set(od, dt, base + pos[k], lt_item_at(xd, base + pos[pp[k]]));
            }
        }
        lt_frame_pop(m2);
    }
    lt_free(pos, (size_t)(HW ? HW : 1) * sizeof *pos);
    return rc == 0 ? out : NULL;
}

/* ActDiff: mean_n sqrt(sum_f (f(x~)_n - f(x)_n)^2 + 1e-12) (Viviano et al.
 * 2021). Two forward passes, so batch norm sees x and x~ separately. */
lt_tensor *lt_rrr_actdiff_penalty(const lt_rrr_model *m, const lt_tensor *x, const lt_tensor *fg_mask,
                                  lt_rrr_actdiff_mode mode, lt_rng *rng, lt_tensor **logits)
{
    lt_tensor *xt = lt_rrr_actdiff_input(x, fg_mask, mode, rng);
    if (!xt)
        return NULL;
    lt_tensor *f1 = NULL, *f2 = NULL;
    lt_tensor *z = m->forward(m->ctx, x, &f1);
    lt_tensor *z2 = z ? m->forward(m->ctx, xt, &f2) : NULL;
    if (!z2 || !f1 || !f2) {
        if (z2 && (!f1 || !f2))
            lt_set_error("actdiff_penalty: the model returned no features");
        return NULL;
    }
    lt_tensor *d = lt_sub(f2, f1);
    int ax[LT_MAX_DIMS];
    for (int i = 1; i < lt_ndim(d); i++)
        ax[i - 1] = i;
    lt_tensor *norm = lt_sqrt(lt_add_scalar(lt_sum(lt_mul(d, d), lt_ndim(d) - 1, ax, false), 1e-12));
    lt_tensor *pen = lt_mean(norm, 0, NULL, false);
    if (logits)
        *logits = pen ? z : NULL;
    return pen;
}

/* ---- adversarial baseline ---- */

lt_tensor *lt_rrr_bce_with_logits(const lt_tensor *z, const lt_tensor *t)
{
    if (!z || !t)
        return NULL;
    lt_tensor *soft = lt_log(lt_add_scalar(lt_exp(lt_neg(lt_abs(z))), 1.0));
    return lt_mean(lt_add(lt_sub(lt_relu(z), lt_mul(z, t)), soft), 0, NULL, false);
}

static lt_tensor *uniform_param(lt_rng *r, int nd, const int64_t *sh, double bound, lt_dtype dt)
{
    size_t m = lt_frame_push();
    lt_tensor *t = lt_retain(lt_rand_uniform(r, nd, sh, -bound, bound, dt));
    lt_frame_pop(m);
    if (t && !lt_ag_set_requires_grad(t, true)) {
        lt_release(t);
        return NULL;
    }
    return t;
}

int lt_rrr_disc_init(lt_rrr_disc *d, int64_t features, int64_t hidden, lt_dtype dt, lt_rng *rng)
{
    memset(d, 0, sizeof *d);
    if (features <= 0 || hidden <= 0 || !rng) {
        lt_set_error("disc_init: features and hidden must be > 0 (got %lld, %lld)", (long long)features,
                     (long long)hidden);
        return -1;
    }
    double b1 = 1.0 / sqrt((double)features), b2 = 1.0 / sqrt((double)hidden);
    d->w1 = uniform_param(rng, 2, (int64_t[]){hidden, features}, b1, dt);
    d->b1 = uniform_param(rng, 1, (int64_t[]){hidden}, b1, dt);
    d->w2 = uniform_param(rng, 2, (int64_t[]){1, hidden}, b2, dt);
    d->b2 = uniform_param(rng, 1, (int64_t[]){1}, b2, dt);
    if (!d->w1 || !d->b1 || !d->w2 || !d->b2) {
        lt_rrr_disc_free(d);
        return -1;
    }
    return 0;
}

void lt_rrr_disc_free(lt_rrr_disc *d)
{
    lt_release(d->w1);
    lt_release(d->b1);
    lt_release(d->w2);
    lt_release(d->b2);
    memset(d, 0, sizeof *d);
}

lt_tensor *lt_rrr_disc_forward(const lt_rrr_disc *d, const lt_tensor *f)
{
    if (!f)
        return NULL;
    lt_tensor *h = lt_relu(lt_add(lt_matmul(f, lt_transpose(d->w1, 0, 1)), d->b1));
    lt_tensor *o = lt_add(lt_matmul(h, lt_transpose(d->w2, 0, 1)), d->b2);
    return lt_reshape(o, 1, (int64_t[]){-1});
}

int lt_rrr_adversarial_losses(const lt_rrr_model *m, const lt_rrr_disc *d, const lt_tensor *x,
                              const lt_tensor *fg_mask, lt_tensor **disc_loss, lt_tensor **enc_penalty,
                              lt_tensor **logits)
{
    *disc_loss = *enc_penalty = NULL;
    lt_tensor *xm = lt_rrr_actdiff_input(x, fg_mask, LT_RRR_ACTDIFF_MASK, NULL);
    lt_tensor *fx = NULL, *fm = NULL;
    lt_tensor *z = xm ? m->forward(m->ctx, x, &fx) : NULL;
    lt_tensor *zm = z ? m->forward(m->ctx, xm, &fm) : NULL;
    if (!zm || !fx || !fm) {
        if (zm)
            lt_set_error("adversarial_losses: the model returned no features");
        return -1;
    }
    int64_t n = lt_size(x, 0);
    lt_dtype dt = lt_dtype_of(fx);
    lt_tensor *ones = lt_ones(1, &n, dt), *zeros = lt_zeros(1, &n, dt);
    lt_tensor *dl = lt_add(lt_rrr_bce_with_logits(lt_rrr_disc_forward(d, lt_ag_detach(fm)), ones),
                           lt_rrr_bce_with_logits(lt_rrr_disc_forward(d, lt_ag_detach(fx)), zeros));
    lt_tensor *ep = lt_rrr_bce_with_logits(lt_rrr_disc_forward(d, fx), ones);
    if (!dl || !ep)
        return -1;
    *disc_loss = dl;
    *enc_penalty = ep;
    if (logits)
        *logits = z;
    return 0;
}
