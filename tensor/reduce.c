/*
 * reduce.c: reductions over any set of dims, softmax and log_softmax.
 *
 * Determinism: the reduced elements of each output are summed in fixed
 * blocks of BLOCK elements (in row-major order of the reduced dims), and
 * the block partials added in order. Inside a block, sums (sum, mean, var)
 * go to LANES accumulators in double, element p of the block to lane
 * p mod LANES, the lanes added in a fixed tree at the end; extremes and
 * sum-exp accumulate sequentially. The order is a function of the logical
 * shape alone, so results are bitwise identical for any thread count and
 * for a strided view and its contiguous copy, while the lanes let the
 * loops vectorize.
 */
#include "tensor_internal.h"

#include <math.h>
#include <string.h>

#define BLOCK 8192

enum { R_SUM, R_SUMSQDEV, R_SUMEXP, R_MAX, R_MIN };

typedef struct red {
    const lt_tensor *t;
    int nk, nr;
    int64_t ks[LT_MAX_DIMS], kst[LT_MAX_DIMS]; /* kept dims (element strides) */
    int64_t rs[LT_MAX_DIMS], rst[LT_MAX_DIMS]; /* reduced dims, coalesced */
    int64_t nout, nred;
    /* Column form: t contiguous as (A, K) with the leading A reduced and
     * the trailing K kept (a bias gradient); colK == 0 when t is not. */
    int64_t colA, colK;
} red;

/* Parse dims into a bitmask; ndims == 0 means all. */
static int dims_mask(const char *op, const lt_tensor *t, int ndims, const int *dims, unsigned *mask)
{
    *mask = 0;
    if (ndims < 0 || (ndims > 0 && !dims)) {
        lt_set_error("%s: negative dim count %d (or no dims)", op, ndims);
        return -1;
    }
    if (ndims == 0) {
        *mask = (1u << t->ndim) - 1;
        return 0;
    }
    for (int i = 0; i < ndims; i++) {
        int d = lt__dim(dims[i], t->ndim);
        if (d < 0 || t->ndim == 0 || (*mask & (1u << d))) {
            char b[96];
            lt_set_error("%s: dim %d out of range or repeated for %s", op, dims[i], lt__desc(t, b, sizeof b));
            return -1;
        }
        *mask |= 1u << d;
    }
    return 0;
}

static void red_setup(red *r, const lt_tensor *t, unsigned mask)
{
    r->t = t;
    r->nk = r->nr = 0;
    r->nout = r->nred = 1;
    for (int d = 0; d < t->ndim; d++) {
        if (mask & (1u << d)) {
            r->nred *= t->shape[d];
            if (t->shape[d] == 1)
                continue;
            if (r->nr > 0 && r->rst[r->nr - 1] == t->stride[d] * t->shape[d]) {
                r->rs[r->nr - 1] *= t->shape[d];
                r->rst[r->nr - 1] = t->stride[d];
            } else {
                r->rs[r->nr] = t->shape[d];
                r->rst[r->nr++] = t->stride[d];
            }
        } else {
            r->nout *= t->shape[d];
            r->ks[r->nk] = t->shape[d];
            r->kst[r->nk++] = t->stride[d];
        }
    }
    /* Column form: reduced dims, then kept dims (size-1 dims ignored). */
    bool ok = lt_is_contiguous(t), kept_seen = false;
    r->colA = r->colK = 1;
    for (int d = 0; ok && d < t->ndim; d++) {
        if (t->shape[d] == 1)
            continue;
        if (mask & (1u << d)) {
            ok = !kept_seen;
            r->colA *= t->shape[d];
        } else {
            kept_seen = true;
            r->colK *= t->shape[d];
        }
    }
    if (!ok || r->nout * r->nred == 0)
        r->colK = 0;
}

static int64_t out_base(const red *r, int64_t o)
{
    int64_t off = (int64_t)r->t->offset;
    for (int d = r->nk - 1; d >= 0; d--) {
        off += (o % r->ks[d]) * r->kst[d];
        o /= r->ks[d];
    }
    return off;
}

#define LANES 8

static inline double lanes_total(const double *a)
{
    return ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]));
}

/* One run of len elements, stride s, at logical block position q (element
 * i goes to lane (q + i) mod LANES): a[lane] += x or (x - pivot)^2. */
#define LANE_RUN(T)                                                                   \
    {                                                                                 \
        const T *xp = (const T *)lt__base(r->t) + off;                                \
        int64_t i = 0;                                                                \
        for (; i < len && (q + i) % LANES; i++) {                                     \
            double v = (double)xp[i * s] - pivot;                                     \
            a[(q + i) % LANES] += sq ? v * v : v;                                     \
        }                                                                             \
        if (s == 1 && !sq)                                                            \
            for (; i + LANES <= len; i += LANES)                                      \
                for (int l = 0; l < LANES; l++)                                       \
                    a[l] += (double)xp[i + l];                                        \
        else if (s == 1)                                                              \
            for (; i + LANES <= len; i += LANES)                                      \
                for (int l = 0; l < LANES; l++) {                                     \
                    double v = (double)xp[i + l] - pivot;                             \
                    a[l] += v * v;                                                    \
                }                                                                     \
        else                                                                          \
            for (; i + LANES <= len; i += LANES)                                      \
                for (int l = 0; l < LANES; l++) {                                     \
                    double v = (double)xp[(i + l) * s] - pivot;                       \
                    a[l] += sq ? v * v : v;                                           \
                }                                                                     \
        for (; i < len; i++) {                                                        \
            double v = (double)xp[i * s] - pivot;                                     \
            a[(q + i) % LANES] += sq ? v * v : v;                                     \
        }                                                                             \
    }

#define RED_LOOP(T)                                                                   \
    {                                                                                 \
        const T *x = (const T *)lt__base(r->t);                                       \
        for (int64_t i = 0; i < len; i++) {                                           \
            double v = (double)x[off + i * s];                                        \
            switch (kind) {                                                           \
            case R_SUM: acc += v; break;                                              \
            case R_SUMSQDEV: acc += (v - pivot) * (v - pivot); break;                 \
            case R_SUMEXP: acc += exp(v - pivot); break;                              \
            case R_MAX: acc = (v > acc || v != v) ? v : acc; break;                   \
            case R_MIN: acc = (v < acc || v != v) ? v : acc; break;                   \
            }                                                                         \
        }                                                                             \
    }

/* Reduce flat reduced indices [start, end) of the output at base. */
static double red_block(const red *r, int64_t base, int64_t start, int64_t end, int kind, double pivot)
{
    bool lanes = (kind == R_SUM || kind == R_SUMSQDEV) && (r->t->dtype == LT_F32 || r->t->dtype == LT_F64);
    bool sq = kind == R_SUMSQDEV;
    double a[LANES] = {0};
    if (kind == R_SUM)
        pivot = 0;
    double acc = kind == R_MAX ? -INFINITY : kind == R_MIN ? INFINITY : 0.0;
    int64_t pos = start;
    int nr = r->nr;
    while (pos < end) {
        int64_t off = base, rem = pos, len, s;
        if (nr == 0) {
            len = end - pos;
            s = 0;
        } else {
            int64_t last = rem % r->rs[nr - 1];
            off += last * r->rst[nr - 1];
            rem /= r->rs[nr - 1];
            for (int d = nr - 2; d >= 0; d--) {
                off += (rem % r->rs[d]) * r->rst[d];
                rem /= r->rs[d];
            }
            len = r->rs[nr - 1] - last;
            if (len > end - pos)
                len = end - pos;
            s = r->rst[nr - 1];
        }
        int64_t q = pos - start;
        if (lanes && r->t->dtype == LT_F32)
            LANE_RUN(float)
        else if (lanes)
            LANE_RUN(double)
        else
            switch (r->t->dtype) {
            case LT_F32: RED_LOOP(float) break;
            case LT_F64: RED_LOOP(double) break;
            case LT_I64: RED_LOOP(int64_t) break;
            case LT_U8: RED_LOOP(uint8_t) break;
            }
        pos += len;
    }
    return lanes ? lanes_total(a) : acc;
}

static double combine(int kind, double a, double b)
{
    if (kind == R_MAX)
        return (b > a || b != b) ? b : a;
    if (kind == R_MIN)
        return (b < a || b != b) ? b : a;
    return a + b;
}

/* Column form (see red_setup): out[k] = sum over rows a of x[a, k], as a
 * bias gradient sums (rows, K) to (K). The same sums as red_block makes
 * (row a of a block to lane a mod LANES, lanes added by lanes_total, blocks
 * of BLOCK rows added in order), but a row at a time across a chunk of
 * columns, so the loop runs over unit-stride memory and vectorizes. Tasks
 * are (block, column chunk) pairs with their own partials. */
#define COL_CHUNK 512

#define COL_BODY(T)                                                                   \
    {                                                                                 \
        const T *x = (const T *)lt__base(r->t) + r->t->offset;                        \
        for (int64_t ai = a0; ai < a1; ai++) {                                        \
            const T *xr = x + ai * K;                                                 \
            double *lane = acc + ((ai - a0) % LANES) * COL_CHUNK - j0;                \
            if (sq)                                                                   \
                for (int64_t j = j0; j < j1; j++) {                                   \
                    double v = (double)xr[j] - pv[j];                                 \
                    lane[j] += v * v;                                                 \
                }                                                                     \
            else                                                                      \
                for (int64_t j = j0; j < j1; j++)                                     \
                    lane[j] += (double)xr[j];                                         \
        }                                                                             \
    }

static int red_run_cols(const red *r, int kind, const double *pivots, double *res)
{
    int64_t A = r->colA, K = r->colK;
    int64_t nb = (A + BLOCK - 1) / BLOCK, ncc = (K + COL_CHUNK - 1) / COL_CHUNK;
    size_t bytes = (size_t)(nb * K) * sizeof(double);
    double *part = lt_alloc(bytes);
    if (!part)
        return -1;
    bool sq = kind == R_SUMSQDEV, f32 = r->t->dtype == LT_F32;
    const double *pv = pivots;
#pragma omp parallel for schedule(static) if (A * K > 32768)
    for (int64_t task = 0; task < nb * ncc; task++) {
        int64_t b = task / ncc, c = task % ncc;
        int64_t j0 = c * COL_CHUNK, j1 = j0 + COL_CHUNK < K ? j0 + COL_CHUNK : K;
        int64_t a0 = b * BLOCK, a1 = a0 + BLOCK < A ? a0 + BLOCK : A;
        double acc[LANES * COL_CHUNK];
        memset(acc, 0, sizeof acc);
        if (f32)
            COL_BODY(float)
        else
            COL_BODY(double)
        for (int64_t j = j0; j < j1; j++) {
            double a[LANES];
            for (int l = 0; l < LANES; l++)
                a[l] = acc[l * COL_CHUNK + (j - j0)];
            part[b * K + j] = lanes_total(a);
        }
    }
    for (int64_t k = 0; k < K; k++) {
        double t = part[k];
        for (int64_t b = 1; b < nb; b++)
            t += part[b * K + k];
        res[k] = t;
    }
    lt_free(part, bytes);
    return 0;
}

/* res[o] = reduction of output o; pivots per output or NULL. 0 or -1. */
static int red_run(const red *r, int kind, const double *pivots, double *res)
{
    if (r->colK > 1 && (kind == R_SUM || kind == R_SUMSQDEV) && (r->t->dtype == LT_F32 || r->t->dtype == LT_F64))
        return red_run_cols(r, kind, pivots, res);
    int64_t nb = r->nred > 0 ? (r->nred + BLOCK - 1) / BLOCK : 1;
    if (nb == 1) {
#pragma omp parallel for schedule(static) if (r->nout * r->nred > 32768)
        for (int64_t o = 0; o < r->nout; o++)
            res[o] = red_block(r, out_base(r, o), 0, r->nred, kind, pivots ? pivots[o] : 0);
        return 0;
    }
    size_t bytes = (size_t)(r->nout * nb) * sizeof(double);
    double *part = lt_alloc(bytes);
    if (!part)
        return -1;
#pragma omp parallel for schedule(static)
    for (int64_t k = 0; k < r->nout * nb; k++) {
        int64_t o = k / nb, b = k % nb;
        int64_t end = (b + 1) * BLOCK < r->nred ? (b + 1) * BLOCK : r->nred;
        part[k] = red_block(r, out_base(r, o), b * BLOCK, end, kind, pivots ? pivots[o] : 0);
    }
    for (int64_t o = 0; o < r->nout; o++) {
        double acc = part[o * nb];
        for (int64_t b = 1; b < nb; b++)
            acc = combine(kind, acc, part[o * nb + b]);
        res[o] = acc;
    }
    lt_free(part, bytes);
    return 0;
}

/* Exact reduction of integer tensors (i64 stays exact beyond 2^53;
 * integer addition is associative, so no blocking is needed). */
static int64_t int_at(const lt_tensor *t, int64_t off)
{
    return t->dtype == LT_I64 ? ((const int64_t *)lt__base(t))[off] : (int64_t)((const uint8_t *)lt__base(t))[off];
}

static void red_run_int(const red *r, int kind, int64_t *res)
{
#pragma omp parallel for schedule(static) if (r->nout * r->nred > 32768)
    for (int64_t o = 0; o < r->nout; o++) {
        int64_t base = out_base(r, o);
        int64_t acc = kind == R_MAX ? INT64_MIN : kind == R_MIN ? INT64_MAX : 0;
        for (int64_t pos = 0; pos < r->nred; pos++) {
            int64_t off = base, rem = pos;
            for (int d = r->nr - 1; d >= 0; d--) {
                off += (rem % r->rs[d]) * r->rst[d];
                rem /= r->rs[d];
            }
            int64_t v = int_at(r->t, off);
            if (kind == R_SUM)
                acc += v;
            else if (kind == R_MAX ? v > acc : v < acc)
                acc = v;
        }
        res[o] = acc;
    }
}

static int out_shape(const lt_tensor *t, unsigned mask, bool keepdim, int64_t *shape)
{
    int n = 0;
    for (int d = 0; d < t->ndim; d++) {
        if (mask & (1u << d)) {
            if (keepdim)
                shape[n++] = 1;
        } else
            shape[n++] = t->shape[d];
    }
    return n;
}

enum { F_SUM, F_MEAN, F_VAR, F_LSE, F_AMAX, F_AMIN };

static lt_tensor *reduce(const lt_tensor *t, int ndims, const int *dims, bool keepdim, int fn, bool unbiased,
                         lt_op op)
{
    if (!t)
        return NULL;
    const char *name = lt__op_name(op);
    char b[96];
    unsigned mask;
    if (dims_mask(name, t, ndims, dims, &mask) < 0)
        return NULL;
    bool is_f = t->dtype == LT_F32 || t->dtype == LT_F64;
    if (!is_f && fn != F_SUM && fn != F_AMAX && fn != F_AMIN) {
        lt_set_error("%s: needs f32 or f64, got %s", name, lt__desc(t, b, sizeof b));
        return NULL;
    }
    red r;
    red_setup(&r, t, mask);
    if (r.nred == 0 && (fn == F_AMAX || fn == F_AMIN)) {
        lt_set_error("%s: reduction over an empty dim of %s has no identity", name, lt__desc(t, b, sizeof b));
        return NULL;
    }
    int64_t shape[LT_MAX_DIMS];
    int nd = out_shape(t, mask, keepdim, shape);
    lt_dtype odt = is_f ? t->dtype : (fn == F_SUM ? LT_I64 : t->dtype);
    lt_tensor *o = lt__frame_own(lt__new(nd, shape, odt));
    if (!o)
        return NULL;
    if (!is_f) {
        int64_t *ri = lt_alloc((size_t)(r.nout ? r.nout : 1) * sizeof *ri);
        if (!ri)
            return NULL;
        red_run_int(&r, fn == F_SUM ? R_SUM : fn == F_AMAX ? R_MAX : R_MIN, ri);
        for (int64_t i = 0; i < r.nout; i++) {
            if (odt == LT_I64)
                ((int64_t *)lt_data(o))[i] = ri[i];
            else
                ((uint8_t *)lt_data(o))[i] = (uint8_t)ri[i];
        }
        lt_free(ri, (size_t)(r.nout ? r.nout : 1) * sizeof *ri);
        return o; /* integer reductions are not differentiable */
    }
    size_t bytes = (size_t)(r.nout ? r.nout : 1) * sizeof(double);
    double *res = lt_alloc(bytes), *piv = NULL;
    if (!res)
        return NULL;
    int rc = 0;
    double n = (double)r.nred;
    switch (fn) {
    case F_SUM: rc = red_run(&r, R_SUM, NULL, res); break;
    case F_MEAN:
        rc = red_run(&r, R_SUM, NULL, res);
        for (int64_t i = 0; i < r.nout; i++)
            res[i] /= n;
        break;
    case F_VAR:
    case F_LSE:
        piv = lt_alloc(bytes);
        if (!piv) {
            rc = -1;
            break;
        }
        rc = red_run(&r, fn == F_VAR ? R_SUM : R_MAX, NULL, piv);
        if (rc == 0 && fn == F_VAR) {
            for (int64_t i = 0; i < r.nout; i++)
                piv[i] /= n;
            rc = red_run(&r, R_SUMSQDEV, piv, res);
            double den = n - (unbiased ? 1.0 : 0.0);
            for (int64_t i = 0; i < r.nout; i++)
                res[i] = den > 0 ? res[i] / den : NAN;
        } else if (rc == 0) {
            double *m = piv;
            for (int64_t i = 0; i < r.nout; i++)
                if (isinf(m[i]))
                    m[i] = m[i] > 0 ? m[i] : 0; /* all -inf: sum exp(-inf) = 0 */
            rc = red_run(&r, R_SUMEXP, m, res);
            for (int64_t i = 0; i < r.nout; i++)
                res[i] = isinf(m[i]) ? m[i] : m[i] + log(res[i]);
        }
        break;
    case F_AMAX: rc = red_run(&r, R_MAX, NULL, res); break;
    case F_AMIN: rc = red_run(&r, R_MIN, NULL, res); break;
    }
    if (rc == 0) {
        void *d = lt_data(o);
        for (int64_t i = 0; i < r.nout; i++)
            lt__set(d, odt, i, res[i]);
    }
    lt_free(res, bytes);
    if (piv)
        lt_free(piv, bytes);
    if (rc < 0)
        return NULL;
    lt_opcall c = {.op = op, .nin = 1, .in = (const lt_tensor *const[]){t}, .out = o, .nargs = 3,
                   .iarg = {mask, keepdim, unbiased}};
    return lt__observe(&c) < 0 ? NULL : o;
}

lt_tensor *lt_sum(const lt_tensor *t, int nd, const int *dims, bool keep)
{
    return reduce(t, nd, dims, keep, F_SUM, false, LT_OP_SUM);
}
lt_tensor *lt_mean(const lt_tensor *t, int nd, const int *dims, bool keep)
{
    return reduce(t, nd, dims, keep, F_MEAN, false, LT_OP_MEAN);
}
lt_tensor *lt_var(const lt_tensor *t, int nd, const int *dims, bool unbiased, bool keep)
{
    return reduce(t, nd, dims, keep, F_VAR, unbiased, LT_OP_VAR);
}
lt_tensor *lt_logsumexp(const lt_tensor *t, int nd, const int *dims, bool keep)
{
    return reduce(t, nd, dims, keep, F_LSE, false, LT_OP_LOGSUMEXP);
}
lt_tensor *lt_amax(const lt_tensor *t, int nd, const int *dims, bool keep)
{
    return reduce(t, nd, dims, keep, F_AMAX, false, LT_OP_AMAX);
}
lt_tensor *lt_amin(const lt_tensor *t, int nd, const int *dims, bool keep)
{
    return reduce(t, nd, dims, keep, F_AMIN, false, LT_OP_AMIN);
}

lt_tensor *lt_sum_to(const lt_tensor *t, int ndim, const int64_t *shape)
{
    if (!t)
        return NULL;
    char b[96];
    unsigned mask = 0;
    int lead = t->ndim - ndim;
    bool ok = lead >= 0;
    for (int d = 0; ok && d < t->ndim; d++) {
        int sd = d - lead;
        if (sd < 0)
            mask |= 1u << d;
        else if (shape[sd] == 1 && t->shape[d] != 1)
            mask |= 1u << d;
        else if (shape[sd] != t->shape[d])
            ok = false;
    }
    if (!ok) {
        lt_set_error("sum_to: %s cannot be summed to a shape of rank %d", lt__desc(t, b, sizeof b), ndim);
        return NULL;
    }
    if (mask == 0 && lead == 0)
        return lt_reshape(t, ndim, shape); /* nothing to sum: a recorded view */
    red r;
    red_setup(&r, t, mask);
    lt_tensor *o = lt__frame_own(lt__new(ndim, shape, t->dtype));
    if (!o)
        return NULL;
    if (t->dtype == LT_I64 || t->dtype == LT_U8) {
        int64_t *ri = lt_alloc((size_t)(r.nout ? r.nout : 1) * sizeof *ri);
        if (!ri)
            return NULL;
        red_run_int(&r, R_SUM, ri);
        for (int64_t i = 0; i < r.nout; i++)
            if (t->dtype == LT_I64)
                ((int64_t *)lt_data(o))[i] = ri[i];
            else
                ((uint8_t *)lt_data(o))[i] = (uint8_t)ri[i];
        lt_free(ri, (size_t)(r.nout ? r.nout : 1) * sizeof *ri);
        return o;
    }
    size_t bytes = (size_t)(r.nout ? r.nout : 1) * sizeof(double);
    double *res = lt_alloc(bytes);
    if (!res || red_run(&r, R_SUM, NULL, res) < 0) {
        if (res)
            lt_free(res, bytes);
        return NULL;
    }
    for (int64_t i = 0; i < r.nout; i++)
        lt__set(lt_data(o), t->dtype, i, res[i]);
    lt_free(res, bytes);
    lt_opcall c = {.op = LT_OP_SUM_TO, .nin = 1, .in = (const lt_tensor *const[]){t}, .out = o};
    return lt__observe(&c) < 0 ? NULL : o;
}

/* ------------------------------------------------------------------ */
/* argmax / argmin along one dim                                       */
/* ------------------------------------------------------------------ */

static lt_tensor *argext(const lt_tensor *t, int dim, bool keepdim, bool want_max)
{
    if (!t)
        return NULL;
    const char *name = want_max ? "argmax" : "argmin";
    char b[96];
    int d = lt__dim(dim, t->ndim);
    if (d < 0 || t->ndim == 0 || t->shape[d] == 0) {
        lt_set_error("%s: dim %d out of range or empty for %s", name, dim, lt__desc(t, b, sizeof b));
        return NULL;
    }
    red r;
    red_setup(&r, t, 1u << d);
    int64_t shape[LT_MAX_DIMS];
    int nd = out_shape(t, 1u << d, keepdim, shape);
    lt_tensor *o = lt__frame_own(lt__new(nd, shape, LT_I64));
    if (!o)
        return NULL;
    int64_t *out = lt_data(o), n = t->shape[d], s = t->stride[d];
    const char *base = lt__base(t);
#pragma omp parallel for schedule(static) if (r.nout * n > 32768)
    for (int64_t i = 0; i < r.nout; i++) {
        int64_t off = out_base(&r, i), best = 0;
        if (t->dtype == LT_I64 || t->dtype == LT_U8) {
            int64_t bv = int_at(t, off);
            for (int64_t j = 1; j < n; j++) {
                int64_t v = int_at(t, off + j * s);
                if (want_max ? v > bv : v < bv) {
                    bv = v;
                    best = j;
                }
            }
        } else {
            double bv = lt__get(base, t->dtype, off);
            for (int64_t j = 1; j < n && bv == bv; j++) {
                double v = lt__get(base, t->dtype, off + j * s);
                if (v != v || (want_max ? v > bv : v < bv)) {
                    bv = v;
                    best = j;
                }
            }
        }
        out[i] = best;
    }
    return o;
}

lt_tensor *lt_argmax(const lt_tensor *t, int dim, bool keepdim) { return argext(t, dim, keepdim, true); }
lt_tensor *lt_argmin(const lt_tensor *t, int dim, bool keepdim) { return argext(t, dim, keepdim, false); }

/* ------------------------------------------------------------------ */
/* softmax / log_softmax along one dim                                 */
/* ------------------------------------------------------------------ */

#define SOFTMAX_ROW(T)                                                                \
    {                                                                                 \
        const T *x = (const T *)lt__base(t) + ib;                                     \
        T *y = (T *)lt_data(o) + ob;                                                  \
        double m = -INFINITY;                                                         \
        for (int64_t j = 0; j < n; j++)                                               \
            m = (double)x[j * is] > m ? (double)x[j * is] : m;                        \
        if (isinf(m) && m < 0)                                                        \
            m = 0;                                                                    \
        double sum = 0;                                                               \
        for (int64_t j = 0; j < n; j++)                                               \
            sum += exp((double)x[j * is] - m);                                        \
        double lse = m + log(sum);                                                    \
        if (log_out)                                                                  \
            for (int64_t j = 0; j < n; j++)                                           \
                y[j * os] = (T)((double)x[j * is] - lse);                             \
        else                                                                          \
            for (int64_t j = 0; j < n; j++)                                           \
                y[j * os] = (T)(exp((double)x[j * is] - m) / sum);                    \
    }

static lt_tensor *softmax_impl(const lt_tensor *t, int dim, bool log_out)
{
    if (!t)
        return NULL;
    const char *name = log_out ? "log_softmax" : "softmax";
    char b[96];
    int d = lt__dim(dim, t->ndim);
    if (d < 0 || t->ndim == 0) {
        lt_set_error("%s: dim %d out of range for %s", name, dim, lt__desc(t, b, sizeof b));
        return NULL;
    }
    if (t->dtype != LT_F32 && t->dtype != LT_F64) {
        lt_set_error("%s: needs f32 or f64, got %s", name, lt__desc(t, b, sizeof b));
        return NULL;
    }
    lt_tensor *o = lt__frame_own(lt__new(t->ndim, t->shape, t->dtype));
    if (!o)
        return NULL;
    red ri, ro;
    red_setup(&ri, t, 1u << d);
    red_setup(&ro, o, 1u << d);
    int64_t n = t->shape[d], is = t->stride[d], os = o->stride[d];
#pragma omp parallel for schedule(static) if (ri.nout * n > 16384)
    for (int64_t i = 0; i < ri.nout; i++) {
        int64_t ib = out_base(&ri, i), ob = out_base(&ro, i);
        if (t->dtype == LT_F32)
            SOFTMAX_ROW(float)
        else
            SOFTMAX_ROW(double)
    }
    lt_opcall c = {.op = log_out ? LT_OP_LOG_SOFTMAX : LT_OP_SOFTMAX, .nin = 1,
                   .in = (const lt_tensor *const[]){t}, .out = o, .nargs = 1, .iarg = {d}};
    return lt__observe(&c) < 0 ? NULL : o;
}

lt_tensor *lt_softmax(const lt_tensor *t, int dim) { return softmax_impl(t, dim, false); }
lt_tensor *lt_log_softmax(const lt_tensor *t, int dim) { return softmax_impl(t, dim, true); }
