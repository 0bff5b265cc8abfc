/*
 * check.c: gradcheck and gradgradcheck (PyTorch's semantics and defaults:
 * f64 central differences, eps 1e-6, atol 1e-5, rtol 1e-3).
 *
 * The analytic Jacobian is built one output element at a time with
 * lt_ag_grad and a one-hot grad_output; the numerical one perturbs each
 * input element in place (through its strides, so non-contiguous inputs are
 * checked as they are) and differences f.
 */
#include "autograd_internal.h"

#include <math.h>
#include <string.h>

lt_ag_check_opts lt_ag_check_defaults(const char *name)
{
    lt_ag_check_opts o = {.eps = 1e-6, .atol = 1e-5, .rtol = 1e-3, .name = name ? name : "function"};
    return o;
}

/* Values of y as a double array (lt_alloc'd), or NULL. */
static double *values(const lt_tensor *y, int64_t *n)
{
    *n = lt_numel(y);
    double *v = lt_alloc((size_t)(*n ? *n : 1) * sizeof *v);
    if (v)
        for (int64_t i = 0; i < *n; i++)
            v[i] = lt_item_at(y, i);
    return v;
}

int lt_ag_gradcheck(lt_ag_func f, void *ud, int nin, lt_tensor *const *inputs, const lt_ag_check_opts *opts)
{
    lt_ag_init();
    lt_ag_check_opts o = opts ? *opts : lt_ag_check_defaults(NULL);
    if (nin <= 0 || nin > LT_AG_MAXIN || !inputs) {
        lt_set_error("gradcheck(%s): bad input count %d", o.name, nin);
        return -1;
    }
    size_t mark = lt_frame_push();
    int rc = -1;
    double *y0 = NULL, *yp = NULL, *ja = NULL, *jn = NULL;
    int64_t ny = 0, nx_tot = 0;
    lt_tensor *xs[LT_AG_MAXIN], *req[LT_AG_MAXIN];
    int reqidx[LT_AG_MAXIN], nreq = 0;
    int64_t xoff[LT_AG_MAXIN];
    for (int i = 0; i < nin; i++) {
        if (!inputs[i])
            goto out;
        bool r = lt_ag_requires_grad(inputs[i]);
        if (r && lt_dtype_of(inputs[i]) != LT_F64) {
            char b[96];
            lt_set_error("gradcheck(%s): input %d is %s; gradcheck needs f64", o.name, i,
                         lt__desc(inputs[i], b, sizeof b));
            goto out;
        }
        xs[i] = r ? lt_ag_set_requires_grad(lt_ag_detach(inputs[i]), true) : (lt_tensor *)inputs[i];
        if (!xs[i])
            goto out;
        if (r) {
            xoff[nreq] = nx_tot;
            nx_tot += lt_numel(xs[i]);
            reqidx[nreq] = i;
            req[nreq++] = xs[i];
        }
    }
    lt_tensor *y = f(ud, nin, xs);
    if (!y) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", lt_last_error());
        lt_set_error("gradcheck(%s): function failed: %s", o.name, msg);
        goto out;
    }
    if (!(y0 = values(y, &ny)))
        goto out;
    size_t jbytes = (size_t)(ny * nx_tot > 0 ? ny * nx_tot : 1) * sizeof(double);
    if (!(ja = lt_alloc(jbytes)) || !(jn = lt_alloc(jbytes)))
        goto out;
    memset(ja, 0, jbytes);
    /* analytic, row by row */
    if (lt_ag_requires_grad(y)) {
        for (int64_t j = 0; j < ny; j++) {
            size_t m2 = lt_frame_push();
            lt_tensor *go = lt_zeros_like(y);
            if (!go) {
                lt_frame_pop(m2);
                goto out;
            }
            lt__set(lt_data(go), lt_dtype_of(go), j, 1.0);
            lt_tensor *g[LT_AG_MAXIN];
            if (lt_ag_grad(1, &y, nreq, req, &go, false, true, true, g) < 0) {
                lt_frame_pop(m2);
                goto out;
            }
            for (int r = 0; r < nreq; r++)
                for (int64_t k = 0; g[r] && k < lt_numel(req[r]); k++)
                    ja[j * nx_tot + xoff[r] + k] = lt_item_at(g[r], k);
            lt_frame_pop(m2);
        }
    }
    /* numeric */
    for (int r = 0; r < nreq; r++) {
        lt_tensor *x = req[r];
        double *base = (double *)lt__base(x);
        for (int64_t k = 0; k < lt_numel(x); k++) {
            int64_t off = lt__offset_of(x, k);
            double keep = base[off];
            int64_t n1;
            size_t m2 = lt_frame_push();
            base[off] = keep + o.eps;
            lt_tensor *yplus = f(ud, nin, xs);
            double *vp = yplus ? values(yplus, &n1) : NULL;
            base[off] = keep - o.eps;
            lt_tensor *yminus = vp ? f(ud, nin, xs) : NULL;
            double *vm = yminus ? values(yminus, &n1) : NULL;
            base[off] = keep;
            lt_frame_pop(m2);
            if (!vp || !vm) {
                if (vp)
                    lt_free(vp, (size_t)(ny ? ny : 1) * sizeof(double));
                goto out;
            }
            for (int64_t j = 0; j < ny; j++)
                jn[j * nx_tot + xoff[r] + k] = (vp[j] - vm[j]) / (2 * o.eps);
            lt_free(vp, (size_t)(ny ? ny : 1) * sizeof(double));
            lt_free(vm, (size_t)(ny ? ny : 1) * sizeof(double));
        }
    }
    /* compare */
    double worst = 0;
    int64_t wj = -1, wk = -1;
    int wr = -1;
    for (int r = 0; r < nreq; r++)
        for (int64_t k = 0; k < lt_numel(req[r]); k++)
            for (int64_t j = 0; j < ny; j++) {
                double a = ja[j * nx_tot + xoff[r] + k], n = jn[j * nx_tot + xoff[r] + k];
                double excess = fabs(a - n) - (o.atol + o.rtol * fabs(n));
                if (!(excess <= worst)) { /* NaN counts as a failure */
                    worst = isnan(excess) ? INFINITY : excess;
                    wj = j;
                    wk = k;
                    wr = r;
                }
            }
    if (wr >= 0) {
        double a = ja[wj * nx_tot + xoff[wr] + wk], n = jn[wj * nx_tot + xoff[wr] + wk];
        lt_set_error("gradcheck(%s): Jacobian mismatch for input %d at output element %lld, input element %lld: "
                     "analytic %.10g vs numeric %.10g (atol %g, rtol %g)",
                     o.name, reqidx[wr], (long long)wj, (long long)wk, a, n, o.atol, o.rtol);
        goto out;
    }
    rc = 0;
out:
    if (y0)
        lt_free(y0, (size_t)(ny ? ny : 1) * sizeof(double));
    if (ja)
        lt_free(ja, (size_t)(ny * nx_tot > 0 ? ny * nx_tot : 1) * sizeof(double));
    if (jn)
        lt_free(jn, (size_t)(ny * nx_tot > 0 ? ny * nx_tot : 1) * sizeof(double));
    (void)yp;
    lt_frame_pop(mark);
    return rc;
}

typedef struct gg_ctx {
    lt_ag_func f;
    void *ud;
    int nin;
} gg_ctx;

/* (inputs..., v) -> cat(flatten(grad(f(inputs), inputs, v, create_graph))) */
static lt_tensor *gg_fn(void *ud, int n, lt_tensor *const *in)
{
    gg_ctx *c = ud;
    bool prev = lt_ag_set_grad_enabled(true);
    lt_tensor *res = NULL, *req[LT_AG_MAXIN], *g[LT_AG_MAXIN], *parts[LT_AG_MAXIN];
    int nreq = 0;
    lt_tensor *y = c->f(c->ud, c->nin, in);
    lt_tensor *v = in[n - 1];
    for (int i = 0; i < c->nin; i++)
        if (lt_ag_requires_grad(in[i]))
            req[nreq++] = in[i];
    if (!y)
        goto out;
    if (!lt_ag_requires_grad(y)) {
        for (int r = 0; r < nreq; r++)
            g[r] = NULL;
    } else if (lt_ag_grad(1, &y, nreq, req, &v, true, true, true, g) < 0) {
        goto out;
    }
    for (int r = 0; r < nreq; r++) {
        lt_tensor *gr = g[r] ? g[r] : lt_zeros_like(req[r]);
        parts[r] = lt_reshape(gr, 1, (int64_t[]){-1});
    }
    res = lt_cat(nreq, parts, 0);
out:
    lt_ag_set_grad_enabled(prev);
    return res;
}

int lt_ag_gradgradcheck(lt_ag_func f, void *ud, int nin, lt_tensor *const *inputs, const lt_ag_check_opts *opts)
{
    lt_ag_init();
    lt_ag_check_opts o = opts ? *opts : lt_ag_check_defaults(NULL);
    if (nin <= 0 || nin + 1 > LT_AG_MAXIN) {
        lt_set_error("gradgradcheck(%s): bad input count %d", o.name, nin);
        return -1;
    }
    size_t mark = lt_frame_push();
    int rc = -1;
    lt_tensor *y = f(ud, nin, inputs);
    if (y) {
        lt_rng rng = lt_rng_new(0x5eed);
        lt_tensor *v = lt_rand_uniform(&rng, lt_ndim(y), lt_shape(y), -1.0, 1.0, LT_F64);
        if (v && lt_ag_set_requires_grad(v, true)) {
            lt_tensor *all[LT_AG_MAXIN];
            memcpy(all, inputs, sizeof(lt_tensor *) * (size_t)nin);
            all[nin] = v;
            gg_ctx c = {f, ud, nin};
            lt_ag_check_opts o2 = o;
            char nm[128];
            snprintf(nm, sizeof nm, "grad of %s", o.name);
            o2.name = nm;
            rc = lt_ag_gradcheck(gg_fn, &c, nin + 1, all, &o2);
        }
    }
    lt_frame_pop(mark);
    return rc;
}
