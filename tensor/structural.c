/*
 * structural.c: cat, stack, gather/scatter_add, index_select/index_add,
 * one_hot, where and masked_fill.
 */
#include "iter.h"

#include <string.h>

lt_tensor *lt_cat(int n, lt_tensor *const *ts, int dim)
{
    if (n <= 0 || !ts) {
        lt_set_error("cat: needs at least one tensor");
        return NULL;
    }
    for (int i = 0; i < n; i++)
        if (!ts[i])
            return NULL;
    const lt_tensor *t0 = ts[0];
    char a[96], b[96];
    int d = lt__dim(dim, t0->ndim);
    if (d < 0 || t0->ndim == 0) {
        lt_set_error("cat: dim %d out of range for %s", dim, lt__desc(t0, a, sizeof a));
        return NULL;
    }
    int64_t shape[LT_MAX_DIMS];
    memcpy(shape, t0->shape, sizeof shape);
    shape[d] = 0;
    for (int i = 0; i < n; i++) {
        const lt_tensor *t = ts[i];
        bool ok = t->ndim == t0->ndim && t->dtype == t0->dtype;
        for (int k = 0; ok && k < t->ndim; k++)
            ok = k == d || t->shape[k] == t0->shape[k];
        if (!ok) {
            lt_set_error("cat: %s and %s do not match outside dim %d", lt__desc(t0, a, sizeof a),
                         lt__desc(t, b, sizeof b), d);
            return NULL;
        }
        shape[d] += t->shape[d];
    }
    lt_tensor *o = lt__frame_own(lt__new(t0->ndim, shape, t0->dtype));
    if (!o)
        return NULL;
    int64_t pos = 0;
    for (int i = 0; i < n; i++) {
        lt_tensor *dst = lt__make_view(o->storage, o->dtype, o->ndim, ts[i]->shape, o->stride,
                                       (size_t)(pos * o->stride[d]));
        if (!dst)
            return NULL;
        lt__copy_into(dst, ts[i]);
        lt_release(dst);
        pos += ts[i]->shape[d];
    }
    lt_opcall c = {.op = LT_OP_CAT, .nin = n, .in = (const lt_tensor *const *)ts, .out = o, .nargs = 1,
                   .iarg = {d}};
    return lt__observe(&c) < 0 ? NULL : o;
}

lt_tensor *lt_stack(int n, lt_tensor *const *ts, int dim)
{
    if (n <= 0 || !ts) {
        lt_set_error("stack: needs at least one tensor");
        return NULL;
    }
    if (n > 4096) {
        lt_set_error("stack: at most 4096 tensors, got %d", n);
        return NULL;
    }
    lt_tensor *us[4096];
    for (int i = 0; i < n; i++) {
        if (!ts[i])
            return NULL;
        if (ts[i]->ndim != ts[0]->ndim || memcmp(ts[i]->shape, ts[0]->shape, sizeof(int64_t) * (size_t)ts[0]->ndim)) {
            char a[96], b[96];
            lt_set_error("stack: %s and %s differ in shape", lt__desc(ts[0], a, sizeof a), lt__desc(ts[i], b, sizeof b));
            return NULL;
        }
        if (!(us[i] = lt_unsqueeze(ts[i], dim)))
            return NULL;
    }
    return lt_cat(n, us, dim);
}

static int check_index(const char *op, const lt_tensor *index)
{
    if (index->dtype != LT_I64) {
        char b[96];
        lt_set_error("%s: index must be i64, got %s", op, lt__desc(index, b, sizeof b));
        return -1;
    }
    return 0;
}

/* Walk every element of index (shape of index); for each, compute the
 * offset into `big` (index value replaces coordinate d) and into `small`
 * (same coordinates as index). */
/* The common layout (max pooling's indices, cross-entropy's targets): all
 * three contiguous, d the last dim, small and index of one shape. Rows are
 * independent (a row of small only touches the same row of big), so they
 * spread over threads; within a row the order is fixed. */
#define GS_LAST(T)                                                                    \
    {                                                                                 \
        T *bp = (T *)lt_data(big), *sp = (T *)lt_data(small_t);                       \
        _Pragma("omp parallel for schedule(static) if (rows * ni > 32768)")           \
        for (int64_t r = 0; r < rows; r++) {                                          \
            const int64_t *ir = ip + r * ni;                                          \
            T *br = bp + r * nbig, *sr = sp + r * ni;                                 \
            if (scatter)                                                              \
                for (int64_t j = 0; j < ni; j++)                                      \
                    br[ir[j]] += sr[j];                                               \
            else                                                                      \
                for (int64_t j = 0; j < ni; j++)                                      \
                    sr[j] = br[ir[j]];                                                \
        }                                                                             \
    }

static bool gather_scatter_last(const lt_tensor *big, lt_tensor *small_t, const lt_tensor *index, int d, bool scatter)
{
    int nd = index->ndim;
    if (d != nd - 1 || big->ndim != nd || small_t->ndim != nd || !lt_is_contiguous(big) ||
        !lt_is_contiguous(small_t) || !lt_is_contiguous(index) || (big->dtype != LT_F32 && big->dtype != LT_F64))
        return false;
    for (int k = 0; k < nd; k++)
        if (small_t->shape[k] != index->shape[k] || (k != d && big->shape[k] != index->shape[k]))
            return false;
    int64_t ni = index->shape[d], nbig = big->shape[d], rows = lt_numel(index) / (ni ? ni : 1);
    const int64_t *ip = (const int64_t *)lt_data(index);
    if (ni == 0)
        return true;
    if (big->dtype == LT_F32)
        GS_LAST(float)
    else
        GS_LAST(double)
    return true;
}

static int gather_scatter(const char *op, const lt_tensor *big, lt_tensor *small_t, const lt_tensor *index, int d,
                          bool scatter)
{
    int64_t n = lt_numel(index);
    if (lt_is_contiguous(index)) {
        const int64_t *iv = (const int64_t *)lt_data(index);
        int64_t lim = big->shape[d], bad = -1;
        for (int64_t i = 0; i < n; i++)
            if ((iv[i] < 0 || iv[i] >= lim) && bad < 0)
                bad = i;
        if (bad >= 0) {
            lt_set_error("%s: index %lld out of range 0..%lld", op, (long long)iv[bad], (long long)lim - 1);
            return -1;
        }
        if (gather_scatter_last(big, small_t, index, d, scatter))
            return 0;
    }
    const int64_t *ip = (const int64_t *)lt__base(index);
    int64_t lim = big->shape[d];
    for (int64_t i = 0; i < n; i++) {
        int64_t v = ip[lt__offset_of(index, i)];
        if (v < 0 || v >= lim) {
            lt_set_error("%s: index %lld out of range 0..%lld", op, (long long)v, (long long)lim - 1);
            return -1;
        }
    }
    char *bb = lt__base(big), *sb = lt__base(small_t);
    for (int64_t i = 0; i < n; i++) {
        int64_t rem = i, ob = (int64_t)big->offset, os = (int64_t)small_t->offset, oi = (int64_t)index->offset;
        for (int k = index->ndim - 1; k >= 0; k--) {
            int64_t c = rem % index->shape[k];
            rem /= index->shape[k];
            oi += c * index->stride[k];
            os += c * small_t->stride[k];
            if (k != d)
                ob += c * big->stride[k];
        }
        ob += ip[oi] * big->stride[d];
        if (scatter)
            lt__add_elem(bb, ob, sb, os, big->dtype);
        else
            lt__copy_elem(sb, os, bb, ob, big->dtype);
    }
    return 0;
}

static int check_gather_shapes(const char *op, const lt_tensor *t, const lt_tensor *index, int d)
{
    char a[96], b[96];
    bool ok = index->ndim == t->ndim;
    for (int k = 0; ok && k < t->ndim; k++)
        ok = k == d || index->shape[k] <= t->shape[k];
    if (!ok) {
        lt_set_error("%s: index %s does not fit %s along dim %d", op, lt__desc(index, a, sizeof a),
                     lt__desc(t, b, sizeof b), d);
        return -1;
    }
    return 0;
}

lt_tensor *lt_gather(const lt_tensor *t, int dim, const lt_tensor *index)
{
    if (!t || !index)
        return NULL;
    char b[96];
    int d = lt__dim(dim, t->ndim);
    if (d < 0 || t->ndim == 0) {
        lt_set_error("gather: dim %d out of range for %s", dim, lt__desc(t, b, sizeof b));
        return NULL;
    }
    if (check_index("gather", index) < 0 || check_gather_shapes("gather", t, index, d) < 0)
        return NULL;
    lt_tensor *o = lt__frame_own(lt__new(index->ndim, index->shape, t->dtype));
    if (!o || gather_scatter("gather", t, o, index, d, false) < 0)
        return NULL;
    lt_opcall c = {.op = LT_OP_GATHER, .nin = 2, .in = (const lt_tensor *const[]){t, index}, .out = o,
                   .nargs = 1, .iarg = {d}};
    return lt__observe(&c) < 0 ? NULL : o;
}

lt_tensor *lt_scatter_add(const lt_tensor *src, int dim, const lt_tensor *index, int ndim, const int64_t *shape)
{
    if (!src || !index)
        return NULL;
    char b[96];
    int d = lt__dim(dim, src->ndim);
    if (d < 0 || src->ndim == 0 || ndim != src->ndim) {
        lt_set_error("scatter_add: dim %d / rank %d invalid for %s", dim, ndim, lt__desc(src, b, sizeof b));
        return NULL;
    }
    lt_tensor *o = lt__frame_own(lt__new_op("scatter_add", ndim, shape, src->dtype));
    if (!o)
        return NULL;
    memset(lt_data(o), 0, (size_t)lt_numel(o) * lt_dtype_size(o->dtype));
    bool same = index->ndim == src->ndim && !memcmp(index->shape, src->shape, sizeof(int64_t) * (size_t)src->ndim);
    if (!same) {
        lt_set_error("scatter_add: index and src shapes differ");
        return NULL;
    }
    if (check_index("scatter_add", index) < 0 || check_gather_shapes("scatter_add", o, index, d) < 0 ||
        gather_scatter("scatter_add", o, (lt_tensor *)src, index, d, true) < 0)
        return NULL;
    lt_opcall c = {.op = LT_OP_SCATTER_ADD, .nin = 2, .in = (const lt_tensor *const[]){src, index}, .out = o,
                   .nargs = 1, .iarg = {d}};
    return lt__observe(&c) < 0 ? NULL : o;
}

/* index_select / index_add: copy or add whole slices along dim. */
static int check_index1d(const char *op, const lt_tensor *index, int64_t lim)
{
    if (check_index(op, index) < 0)
        return -1;
    if (index->ndim != 1) {
        lt_set_error("%s: index must be 1-D", op);
        return -1;
    }
    for (int64_t i = 0; i < index->shape[0]; i++) {
        int64_t v = ((const int64_t *)lt__base(index))[index->offset + (size_t)(i * index->stride[0])];
        if (v < 0 || v >= lim) {
            lt_set_error("%s: index %lld out of range 0..%lld", op, (long long)v, (long long)lim - 1);
            return -1;
        }
    }
    return 0;
}

static int64_t idx_at(const lt_tensor *index, int64_t i)
{
    return ((const int64_t *)lt__base(index))[index->offset + (size_t)(i * index->stride[0])];
}

lt_tensor *lt_index_select(const lt_tensor *t, int dim, const lt_tensor *index)
{
    if (!t || !index)
        return NULL;
    char b[96];
    int d = lt__dim(dim, t->ndim);
    if (d < 0 || t->ndim == 0) {
        lt_set_error("index_select: dim %d out of range for %s", dim, lt__desc(t, b, sizeof b));
        return NULL;
    }
    if (check_index1d("index_select", index, t->shape[d]) < 0)
        return NULL;
    int64_t shape[LT_MAX_DIMS];
    memcpy(shape, t->shape, sizeof shape);
    shape[d] = index->shape[0];
    lt_tensor *o = lt__frame_own(lt__new(t->ndim, shape, t->dtype));
    if (!o)
        return NULL;
    for (int64_t i = 0; i < index->shape[0]; i++) {
        int64_t sh1[LT_MAX_DIMS];
        memcpy(sh1, t->shape, sizeof sh1);
        sh1[d] = 1;
        lt_tensor *src = lt__make_view(t->storage, t->dtype, t->ndim, sh1, t->stride,
                                       t->offset + (size_t)(idx_at(index, i) * t->stride[d]));
        lt_tensor *dst = lt__make_view(o->storage, o->dtype, o->ndim, sh1, o->stride, (size_t)(i * o->stride[d]));
        if (src && dst)
            lt__copy_into(dst, src);
        lt_release(src);
        lt_release(dst);
        if (!src || !dst)
            return NULL;
    }
    lt_opcall c = {.op = LT_OP_INDEX_SELECT, .nin = 2, .in = (const lt_tensor *const[]){t, index}, .out = o,
                   .nargs = 1, .iarg = {d}};
    return lt__observe(&c) < 0 ? NULL : o;
}

lt_tensor *lt_index_add(const lt_tensor *src, int dim, const lt_tensor *index, int64_t n)
{
    if (!src || !index)
        return NULL;
    char b[96];
    int d = lt__dim(dim, src->ndim);
    if (d < 0 || src->ndim == 0 || n < 0) {
        lt_set_error("index_add: dim %d / size %lld invalid for %s", dim, (long long)n, lt__desc(src, b, sizeof b));
        return NULL;
    }
    if (check_index1d("index_add", index, n) < 0)
        return NULL;
    if (index->shape[0] != src->shape[d]) {
        lt_set_error("index_add: index has %lld entries but %s has %lld along dim %d", (long long)index->shape[0],
                     lt__desc(src, b, sizeof b), (long long)src->shape[d], d);
        return NULL;
    }
    int64_t shape[LT_MAX_DIMS];
    memcpy(shape, src->shape, sizeof shape);
    shape[d] = n;
    lt_tensor *o = lt__frame_own(lt__new(src->ndim, shape, src->dtype));
    if (!o)
        return NULL;
    memset(lt_data(o), 0, (size_t)lt_numel(o) * lt_dtype_size(o->dtype));
    int64_t inner = 1, outer = 1;
    for (int k = d + 1; k < src->ndim; k++)
        inner *= src->shape[k];
    for (int k = 0; k < d; k++)
        outer *= src->shape[k];
    /* Logical walk: out[o, idx[i], r] += src[o, i, r]. Floats: over a
     * contiguous copy of src, rows of inner elements at a time, tasks over
     * (o, chunk of r) with i in order inside, so each output element adds
     * its terms in index order whatever the thread count. */
    if (src->dtype == LT_F32 || src->dtype == LT_F64) {
        lt_tensor *sc = lt_is_contiguous(src) ? lt_retain((lt_tensor *)src) : lt__new(src->ndim, src->shape, src->dtype);
        if (!sc)
            return NULL;
        if (sc != src)
            lt__copy_into(sc, src);
        int64_t ni = index->shape[0], nchunk = (inner + 16383) / 16384;
        size_t es = lt_dtype_size(src->dtype);
        char *ob_base = lt_data(o);
        const char *sb_base = lt_data(sc);
        int64_t *iv = lt_alloc(sizeof(int64_t) * (size_t)(ni ? ni : 1));
        if (!iv) {
            lt_release(sc);
            return NULL;
        }
        for (int64_t i = 0; i < ni; i++)
            iv[i] = idx_at(index, i);
        bool f32 = src->dtype == LT_F32;
#pragma omp parallel for schedule(static) if (outer * ni * inner > 32768)
        for (int64_t task = 0; task < outer * nchunk; task++) {
            int64_t ob = task / nchunk, r0 = (task % nchunk) * 16384;
            int64_t r1 = r0 + 16384 < inner ? r0 + 16384 : inner;
            for (int64_t i = 0; i < ni; i++) {
                char *dst = ob_base + (size_t)((ob * n + iv[i]) * inner) * es;
                const char *sp = sb_base + (size_t)((ob * ni + i) * inner) * es;
                if (f32)
                    for (int64_t r = r0; r < r1; r++)
                        ((float *)dst)[r] += ((const float *)sp)[r];
                else
                    for (int64_t r = r0; r < r1; r++)
                        ((double *)dst)[r] += ((const double *)sp)[r];
            }
        }
        lt_free(iv, sizeof(int64_t) * (size_t)(ni ? ni : 1));
        lt_release(sc);
        lt_opcall c = {.op = LT_OP_INDEX_ADD, .nin = 2, .in = (const lt_tensor *const[]){src, index}, .out = o,
                       .nargs = 2, .iarg = {d, n}};
        return lt__observe(&c) < 0 ? NULL : o;
    }
    for (int64_t i = 0; i < index->shape[0]; i++) {
        int64_t tgt = idx_at(index, i);
        for (int64_t ob = 0; ob < outer; ob++)
            for (int64_t r = 0; r < inner; r++) {
                int64_t flat_s = (ob * src->shape[d] + i) * inner + r;
                int64_t off_o = (ob * n + tgt) * inner + r;
                int64_t off_s = lt__offset_of(src, flat_s);
                lt__add_elem(lt_data(o), off_o, lt__base(src), off_s, o->dtype);
            }
    }
    lt_opcall c = {.op = LT_OP_INDEX_ADD, .nin = 2, .in = (const lt_tensor *const[]){src, index}, .out = o,
                   .nargs = 2, .iarg = {d, n}};
    return lt__observe(&c) < 0 ? NULL : o;
}

lt_tensor *lt_one_hot(const lt_tensor *labels, int64_t num_classes, lt_dtype dt)
{
    if (!labels)
        return NULL;
    char b[96];
    if (labels->dtype != LT_I64 || num_classes <= 0 || labels->ndim >= LT_MAX_DIMS || (unsigned)dt > LT_U8) {
        lt_set_error("one_hot: needs i64 labels and num_classes > 0, got %s and %lld", lt__desc(labels, b, sizeof b),
                     (long long)num_classes);
        return NULL;
    }
    int64_t shape[LT_MAX_DIMS];
    memcpy(shape, labels->shape, sizeof(int64_t) * (size_t)labels->ndim);
    shape[labels->ndim] = num_classes;
    lt_tensor *o = lt_zeros(labels->ndim + 1, shape, dt);
    if (!o)
        return NULL;
    int64_t n = lt_numel(labels);
    for (int64_t i = 0; i < n; i++) {
        int64_t v = (int64_t)lt_item_at(labels, i);
        if (v < 0 || v >= num_classes) {
            lt_set_error("one_hot: label %lld outside 0..%lld", (long long)v, (long long)num_classes - 1);
            return NULL;
        }
        lt__set(lt_data(o), dt, i * num_classes + v, 1.0);
    }
    return o;
}

#define WHERE_BODY(T)                                                                 \
    {                                                                                 \
        T *o = (T *)p[0];                                                             \
        const uint8_t *c = (const uint8_t *)p[1];                                     \
        const T *x = (const T *)p[2], *y = (const T *)p[3];                           \
        int64_t so = st[0] / (int64_t)sizeof(T), sc = st[1], sx = st[2] / (int64_t)sizeof(T), \
                sy = st[3] / (int64_t)sizeof(T);                                      \
        if (so == 1 && sc == 1 && sx == 1 && sy == 0) { /* where(c, g, 0): relu' */   \
            T yv = y[0];                                                              \
            for (int64_t i = 0; i < n; i++)                                           \
                o[i] = c[i] ? x[i] : yv;                                              \
        } else if (so == 1 && sc == 1 && sx == 0 && sy == 1) {                        \
            T xv = x[0];                                                              \
            for (int64_t i = 0; i < n; i++)                                           \
                o[i] = c[i] ? xv : y[i];                                              \
        } else if (so == 1 && sc == 1 && sx == 1 && sy == 1) {                        \
            for (int64_t i = 0; i < n; i++)                                           \
                o[i] = c[i] ? x[i] : y[i];                                            \
        } else {                                                                      \
            for (int64_t i = 0; i < n; i++)                                           \
                o[i * so] = c[i * sc] ? x[i * sx] : y[i * sy];                        \
        }                                                                             \
    }
static void where_f32(char **p, const int64_t *st, int64_t n, const void *ctx) { (void)ctx; WHERE_BODY(float) }
static void where_f64(char **p, const int64_t *st, int64_t n, const void *ctx) { (void)ctx; WHERE_BODY(double) }
static void where_i64(char **p, const int64_t *st, int64_t n, const void *ctx) { (void)ctx; WHERE_BODY(int64_t) }
static void where_u8(char **p, const int64_t *st, int64_t n, const void *ctx) { (void)ctx; WHERE_BODY(uint8_t) }
static const lt__row_fn where_fns[4] = {where_f32, where_f64, where_i64, where_u8};

lt_tensor *lt_where(const lt_tensor *cond, const lt_tensor *a, const lt_tensor *b)
{
    if (!cond || !a || !b)
        return NULL;
    char x[96], y[96], z[96];
    if (cond->dtype != LT_U8 || a->dtype != b->dtype) {
        lt_set_error("where: needs a u8 condition and operands of one dtype, got %s, %s, %s",
                     lt__desc(cond, x, sizeof x), lt__desc(a, y, sizeof y), lt__desc(b, z, sizeof z));
        return NULL;
    }
    int64_t s1[LT_MAX_DIMS], shape[LT_MAX_DIMS];
    int n1 = lt_broadcast_shape("where", a->ndim, a->shape, b->ndim, b->shape, s1);
    int nd = n1 < 0 ? -1 : lt_broadcast_shape("where", n1, s1, cond->ndim, cond->shape, shape);
    if (nd < 0)
        return NULL;
    lt_tensor *o = lt__frame_own(lt__new(nd, shape, a->dtype));
    if (!o)
        return NULL;
    lt__iter it;
    lt__iter_init(&it, nd, shape, 4, (const lt_tensor *const[]){o, cond, a, b});
    lt__iter_run(&it, where_fns[a->dtype], NULL);
    lt_opcall c = {.op = LT_OP_WHERE, .nin = 3, .in = (const lt_tensor *const[]){cond, a, b}, .out = o};
    return lt__observe(&c) < 0 ? NULL : o;
}

lt_tensor *lt_masked_fill(const lt_tensor *t, const lt_tensor *mask, double value)
{
    if (!t || !mask)
        return NULL;
    char a[96], b[96];
    int64_t shape[LT_MAX_DIMS];
    if (mask->dtype != LT_U8) {
        lt_set_error("masked_fill: mask must be u8, got %s for %s", lt__desc(mask, b, sizeof b),
                     lt__desc(t, a, sizeof a));
        return NULL;
    }
    int nd = lt_broadcast_shape("masked_fill", t->ndim, t->shape, mask->ndim, mask->shape, shape);
    if (nd < 0)
        return NULL;
    if (nd != t->ndim || memcmp(shape, t->shape, sizeof(int64_t) * (size_t)nd)) {
        lt_set_error("masked_fill: mask %s does not broadcast to %s", lt__desc(mask, b, sizeof b),
                     lt__desc(t, a, sizeof a));
        return NULL;
    }
    lt_tensor *v = lt__new(0, NULL, t->dtype);
    if (!v)
        return NULL;
    lt__set(lt_data(v), t->dtype, 0, value);
    /* where(mask, value, t): only t's gradient flows (value is a constant). */
    lt_tensor *r = lt_where(mask, v, t);
    lt_release(v);
    return r;
}
