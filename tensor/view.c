/*
 * view.c: ops that return views sharing storage. Each records itself with
 * the observer; squeeze, unsqueeze, flatten and view are reshapes, and
 * transpose is a permute, so autograd sees five view ops in all.
 */
#include "tensor_internal.h"

#include <string.h>

static lt_tensor *view_of(const lt_tensor *t, int ndim, const int64_t *shape,
                          const int64_t *stride, size_t offset, lt_opcall *c)
{
    lt_tensor *v = lt__frame_own(lt__make_view(t->storage, t->dtype, ndim, shape, stride, offset));
    if (!v)
        return NULL;
    c->nin = 1;
    c->in = (const lt_tensor *const[]){t};
    c->out = v;
    return lt__observe(c) < 0 ? NULL : v;
}

/* Resolve a -1 entry and check numel; writes the final shape to out. */
static int infer_shape(const char *op, const lt_tensor *t, int ndim, const int64_t *shape, int64_t *out)
{
    char b[96];
    if (ndim < 0 || ndim > LT_MAX_DIMS) {
        lt_set_error("%s: rank %d outside 0..%d", op, ndim, LT_MAX_DIMS);
        return -1;
    }
    int infer = -1;
    int64_t known = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] == -1) {
            if (infer >= 0) {
                lt_set_error("%s: more than one -1 in the shape for %s", op, lt__desc(t, b, sizeof b));
                return -1;
            }
            infer = i;
        } else if (shape[i] < 0) {
            lt_set_error("%s: negative size %lld for %s", op, (long long)shape[i], lt__desc(t, b, sizeof b));
            return -1;
        } else {
            known *= shape[i];
        }
        out[i] = shape[i];
    }
    int64_t n = lt_numel(t);
    if (infer >= 0) {
        if (known == 0 || n % known != 0) {
            lt_set_error("%s: cannot infer -1 for %s (%lld elements)", op, lt__desc(t, b, sizeof b), (long long)n);
            return -1;
        }
        out[infer] = n / known;
    } else if (known != n) {
        lt_set_error("%s: shape with %lld elements is invalid for %s (%lld elements)", op, (long long)known,
                     lt__desc(t, b, sizeof b), (long long)n);
        return -1;
    }
    return 0;
}

/* Strides for viewing t as shape without a copy, following the grouping
 * argument of PyTorch's computeStride: each run of old dims that is
 * contiguous in memory can be split into any new dims of the same numel. */
static bool view_strides(const lt_tensor *t, int ndim, const int64_t *shape, int64_t *st)
{
    if (lt_numel(t) == 0 || t->ndim == 0) {
        lt__contig_strides(ndim, shape, st);
        return true;
    }
    int vd = ndim - 1;
    int64_t base = t->stride[t->ndim - 1]; /* stride of the chunk's innermost dim */
    int64_t tensor_numel = 1, view_numel = 1;
    for (int td = t->ndim - 1; td >= 0; td--) {
        tensor_numel *= t->shape[td];
        if (td == 0 || (t->shape[td - 1] != 1 && t->stride[td - 1] != tensor_numel * base)) {
            while (vd >= 0 && (view_numel < tensor_numel || shape[vd] == 1)) {
                st[vd] = view_numel * base;
                view_numel *= shape[vd];
                vd--;
            }
            if (view_numel != tensor_numel)
                return false;
            if (td > 0) {
                base = t->stride[td - 1];
                tensor_numel = 1;
                view_numel = 1;
            }
        }
    }
    return vd == -1;
}

static lt_tensor *reshape_impl(const lt_tensor *t, int ndim, const int64_t *shape, bool may_copy, const char *op)
{
    if (!t)
        return NULL;
    int64_t sh[LT_MAX_DIMS], st[LT_MAX_DIMS];
    if (infer_shape(op, t, ndim, shape, sh) < 0)
        return NULL;
    if (!view_strides(t, ndim, sh, st)) {
        if (!may_copy) {
            char b[96];
            lt_set_error("%s: %s is not viewable with this shape (its strides do not allow it); use reshape",
                         op, lt__desc(t, b, sizeof b));
            return NULL;
        }
        lt_tensor *c = lt_contiguous(t);
        return c ? reshape_impl(c, ndim, sh, false, op) : NULL;
    }
    lt_opcall c = {.op = LT_OP_RESHAPE};
    return view_of(t, ndim, sh, st, t->offset, &c);
}

lt_tensor *lt_reshape(const lt_tensor *t, int ndim, const int64_t *shape)
{
    return reshape_impl(t, ndim, shape, true, "reshape");
}

lt_tensor *lt_view(const lt_tensor *t, int ndim, const int64_t *shape)
{
    return reshape_impl(t, ndim, shape, false, "view");
}

lt_tensor *lt_permute(const lt_tensor *t, const int *perm)
{
    if (!t)
        return NULL;
    int64_t sh[LT_MAX_DIMS], st[LT_MAX_DIMS];
    bool seen[LT_MAX_DIMS] = {false};
    lt_opcall c = {.op = LT_OP_PERMUTE, .nargs = t->ndim};
    for (int i = 0; i < t->ndim; i++) {
        int p = perm ? lt__dim(perm[i], t->ndim) : -1;
        if (p < 0 || seen[p]) {
            char b[96];
            lt_set_error("permute: not a permutation of 0..%d for %s", t->ndim - 1, lt__desc(t, b, sizeof b));
            return NULL;
        }
        seen[p] = true;
        sh[i] = t->shape[p];
        st[i] = t->stride[p];
        c.iarg[i] = p;
    }
    return view_of(t, t->ndim, sh, st, t->offset, &c);
}

lt_tensor *lt_transpose(const lt_tensor *t, int d0, int d1)
{
    if (!t)
        return NULL;
    int a = lt__dim(d0, t->ndim), b = lt__dim(d1, t->ndim);
    if (a < 0 || b < 0 || t->ndim == 0) {
        char s[96];
        lt_set_error("transpose: dims %d, %d out of range for %s", d0, d1, lt__desc(t, s, sizeof s));
        return NULL;
    }
    int perm[LT_MAX_DIMS];
    for (int i = 0; i < t->ndim; i++)
        perm[i] = i;
    perm[a] = b;
    perm[b] = a;
    return lt_permute(t, perm);
}

lt_tensor *lt_slice(const lt_tensor *t, int dim, int64_t start, int64_t end, int64_t step)
{
    if (!t)
        return NULL;
    char b[96];
    int d = lt__dim(dim, t->ndim);
    if (d < 0 || t->ndim == 0) {
        lt_set_error("slice: dim %d out of range for %s", dim, lt__desc(t, b, sizeof b));
        return NULL;
    }
    if (step < 1) {
        lt_set_error("slice: step must be >= 1, got %lld for %s", (long long)step, lt__desc(t, b, sizeof b));
        return NULL;
    }
    int64_t n = t->shape[d];
    if (start < 0)
        start += n;
    if (end < 0)
        end += n;
    start = start < 0 ? 0 : start > n ? n : start;
    end = end < start ? start : end > n ? n : end;
    int64_t len = (end - start + step - 1) / step;
    int64_t sh[LT_MAX_DIMS], st[LT_MAX_DIMS];
    memcpy(sh, t->shape, sizeof sh);
    memcpy(st, t->stride, sizeof st);
    sh[d] = len;
    st[d] = t->stride[d] * step;
    lt_opcall c = {.op = LT_OP_SLICE, .nargs = 3, .iarg = {d, start, step}};
    return view_of(t, t->ndim, sh, st, t->offset + (size_t)(start * t->stride[d]), &c);
}

lt_tensor *lt_select(const lt_tensor *t, int dim, int64_t index)
{
    if (!t)
        return NULL;
    char b[96];
    int d = lt__dim(dim, t->ndim);
    if (d < 0 || t->ndim == 0) {
        lt_set_error("select: dim %d out of range for %s", dim, lt__desc(t, b, sizeof b));
        return NULL;
    }
    int64_t n = t->shape[d];
    if (index < -n || index >= n) {
        lt_set_error("select: index %lld out of range for dim %d of %s", (long long)index, d,
                     lt__desc(t, b, sizeof b));
        return NULL;
    }
    if (index < 0)
        index += n;
    int64_t sh[LT_MAX_DIMS], st[LT_MAX_DIMS];
    int k = 0;
    for (int i = 0; i < t->ndim; i++)
        if (i != d) {
            sh[k] = t->shape[i];
            st[k++] = t->stride[i];
        }
    lt_opcall c = {.op = LT_OP_SELECT, .nargs = 2, .iarg = {d, index}};
    return view_of(t, t->ndim - 1, sh, st, t->offset + (size_t)(index * t->stride[d]), &c);
}

lt_tensor *lt_expand(const lt_tensor *t, int ndim, const int64_t *shape)
{
    if (!t)
        return NULL;
    char b[96];
    if (ndim < t->ndim || ndim > LT_MAX_DIMS) {
        lt_set_error("expand: rank %d is smaller than that of %s or above %d", ndim, lt__desc(t, b, sizeof b),
                     LT_MAX_DIMS);
        return NULL;
    }
    int64_t sh[LT_MAX_DIMS], st[LT_MAX_DIMS];
    int lead = ndim - t->ndim;
    for (int i = 0; i < ndim; i++) {
        int td = i - lead;
        int64_t want = shape[i];
        if (td < 0) {
            if (want < 0) {
                lt_set_error("expand: -1 given for new leading dim %d of %s", i, lt__desc(t, b, sizeof b));
                return NULL;
            }
            sh[i] = want;
            st[i] = 0;
        } else if (want == -1 || want == t->shape[td]) {
            sh[i] = t->shape[td];
            st[i] = t->stride[td];
        } else if (t->shape[td] == 1 && want >= 0) {
            sh[i] = want;
            st[i] = 0;
        } else {
            lt_set_error("expand: cannot expand dim %d of %s (size %lld) to %lld", td, lt__desc(t, b, sizeof b),
                         (long long)t->shape[td], (long long)want);
            return NULL;
        }
    }
    lt_opcall c = {.op = LT_OP_EXPAND};
    return view_of(t, ndim, sh, st, t->offset, &c);
}

lt_tensor *lt_squeeze(const lt_tensor *t, int dim)
{
    if (!t)
        return NULL;
    char b[96];
    int d = lt__dim(dim, t->ndim);
    if (d < 0 || t->ndim == 0 || t->shape[d] != 1) {
        lt_set_error("squeeze: dim %d of %s is not of size 1", dim, lt__desc(t, b, sizeof b));
        return NULL;
    }
    int64_t sh[LT_MAX_DIMS];
    int k = 0;
    for (int i = 0; i < t->ndim; i++)
        if (i != d)
            sh[k++] = t->shape[i];
    return lt_reshape(t, k, sh);
}

lt_tensor *lt_squeeze_all(const lt_tensor *t)
{
    if (!t)
        return NULL;
    int64_t sh[LT_MAX_DIMS];
    int k = 0;
    for (int i = 0; i < t->ndim; i++)
        if (t->shape[i] != 1)
            sh[k++] = t->shape[i];
    return lt_reshape(t, k, sh);
}

lt_tensor *lt_unsqueeze(const lt_tensor *t, int dim)
{
    if (!t)
        return NULL;
    char b[96];
    int d = dim < 0 ? dim + t->ndim + 1 : dim;
    if (d < 0 || d > t->ndim || t->ndim >= LT_MAX_DIMS) {
        lt_set_error("unsqueeze: dim %d out of range for %s", dim, lt__desc(t, b, sizeof b));
        return NULL;
    }
    int64_t sh[LT_MAX_DIMS];
    for (int i = 0, k = 0; i <= t->ndim; i++)
        sh[i] = (i == d) ? 1 : t->shape[k++];
    return lt_reshape(t, t->ndim + 1, sh);
}

lt_tensor *lt_flatten(const lt_tensor *t, int start_dim, int end_dim)
{
    if (!t)
        return NULL;
    if (t->ndim == 0)
        return lt_reshape(t, 1, (int64_t[]){1});
    char b[96];
    int s = lt__dim(start_dim, t->ndim), e = lt__dim(end_dim, t->ndim);
    if (s < 0 || e < 0 || s > e) {
        lt_set_error("flatten: bad dims %d..%d for %s", start_dim, end_dim, lt__desc(t, b, sizeof b));
        return NULL;
    }
    int64_t sh[LT_MAX_DIMS];
    int k = 0;
    for (int i = 0; i < s; i++)
        sh[k++] = t->shape[i];
    int64_t m = 1;
    for (int i = s; i <= e; i++)
        m *= t->shape[i];
    sh[k++] = m;
    for (int i = e + 1; i < t->ndim; i++)
        sh[k++] = t->shape[i];
    return lt_reshape(t, k, sh);
}
