/*
 * create.c: creation, copies and dtype conversion.
 */
#include "iter.h"

#include <math.h>
#include <string.h>

lt_tensor *lt_empty(int ndim, const int64_t *shape, lt_dtype dt)
{
    return lt__frame_own(lt__new_op("empty", ndim, shape, dt));
}

static lt_tensor *full_op(const char *op, int ndim, const int64_t *shape, double value, lt_dtype dt)
{
    lt_tensor *t = lt__frame_own(lt__new_op(op, ndim, shape, dt));
    if (t && value == 0.0)
        memset(lt_data(t), 0, (size_t)lt_numel(t) * lt_dtype_size(dt));
    else if (t && !lt_fill_(t, value))
        return NULL;
    return t;
}

lt_tensor *lt_full(int ndim, const int64_t *shape, double value, lt_dtype dt)
{
    return full_op("full", ndim, shape, value, dt);
}
lt_tensor *lt_zeros(int ndim, const int64_t *shape, lt_dtype dt) { return full_op("zeros", ndim, shape, 0.0, dt); }
lt_tensor *lt_ones(int ndim, const int64_t *shape, lt_dtype dt) { return full_op("ones", ndim, shape, 1.0, dt); }
lt_tensor *lt_scalar(double value, lt_dtype dt) { return full_op("scalar", 0, NULL, value, dt); }
lt_tensor *lt_zeros_like(const lt_tensor *t) { return t ? lt_zeros(t->ndim, t->shape, t->dtype) : NULL; }
lt_tensor *lt_ones_like(const lt_tensor *t) { return t ? lt_ones(t->ndim, t->shape, t->dtype) : NULL; }
lt_tensor *lt_full_like(const lt_tensor *t, double v) { return t ? lt_full(t->ndim, t->shape, v, t->dtype) : NULL; }

lt_tensor *lt_arange(double start, double end, double step, lt_dtype dt)
{
    if (step == 0 || !isfinite(start) || !isfinite(end) || !isfinite(step)) {
        lt_set_error("arange: need finite start/end and step != 0 (got %g, %g, %g)", start, end, step);
        return NULL;
    }
    double cnt = ceil((end - start) / step);
    int64_t n = cnt > 0 ? (int64_t)cnt : 0;
    lt_tensor *t = lt_empty(1, &n, dt);
    if (!t)
        return NULL;
    void *d = lt_data(t);
    for (int64_t i = 0; i < n; i++)
        lt__set(d, dt, i, start + (double)i * step);
    return t;
}

lt_tensor *lt_eye(int64_t n, lt_dtype dt)
{
    lt_tensor *t = full_op("eye", 2, (int64_t[]){n, n}, 0.0, dt);
    if (!t)
        return NULL;
    for (int64_t i = 0; i < n; i++)
        lt__set(lt_data(t), dt, i * n + i, 1.0);
    return t;
}

lt_tensor *lt_from_data(const void *data, int ndim, const int64_t *shape, lt_dtype dt)
{
    if (!data) {
        lt_set_error("from_data: NULL data pointer");
        return NULL;
    }
    lt_tensor *t = lt_empty(ndim, shape, dt);
    if (t)
        memcpy(lt_data(t), data, (size_t)lt_numel(t) * lt_dtype_size(dt));
    return t;
}

lt_tensor *lt_fill_(lt_tensor *dst, double value)
{
    if (!dst)
        return NULL;
    if (dst->ag && lt__observer) {
        lt_set_error("fill_: in-place write to a tensor tracked by autograd");
        return NULL;
    }
    lt_tensor *v = lt__new(0, NULL, dst->dtype);
    if (!v)
        return NULL;
    lt__set(lt_data(v), v->dtype, 0, value);
    lt__copy_into(dst, v);
    lt_release(v);
    return dst;
}

lt_tensor *lt_copy_(lt_tensor *dst, const lt_tensor *src)
{
    if (!dst || !src)
        return NULL;
    int64_t out[LT_MAX_DIMS];
    int nd = lt_broadcast_shape("copy_", dst->ndim, dst->shape, src->ndim, src->shape, out);
    if (nd < 0)
        return NULL;
    if (nd != dst->ndim || memcmp(out, dst->shape, sizeof(int64_t) * (size_t)nd) != 0) {
        char a[96], b[96];
        lt_set_error("copy_: source %s does not broadcast to destination %s", lt__desc(src, b, sizeof b),
                     lt__desc(dst, a, sizeof a));
        return NULL;
    }
    if (dst->ag && lt__observer) {
        lt_set_error("copy_: in-place write to a tensor tracked by autograd");
        return NULL;
    }
    if (dst->storage == src->storage) {
        /* Overlap: go through a temporary. */
        lt_tensor *tmp = lt__new(src->ndim, src->shape, src->dtype);
        if (!tmp)
            return NULL;
        lt__copy_into(tmp, src);
        lt__copy_into(dst, tmp);
        lt_release(tmp);
        return dst;
    }
    lt__copy_into(dst, src);
    return dst;
}

/* Copy to a new contiguous tensor of dtype dt, recorded as op. */
static lt_tensor *copy_as(const lt_tensor *t, lt_dtype dt, lt_op op)
{
    lt_tensor *o = lt__new(t->ndim, t->shape, dt);
    if (!o)
        return NULL;
    lt__copy_into(o, t);
    if (!lt__frame_own(o))
        return NULL;
    lt_opcall c = {.op = op, .nin = 1, .in = (const lt_tensor *const[]){t}, .out = o};
    c.iarg[0] = dt;
    c.nargs = 1;
    return lt__observe(&c) < 0 ? NULL : o;
}

lt_tensor *lt_clone(const lt_tensor *t)
{
    return t ? copy_as(t, t->dtype, LT_OP_CLONE) : NULL;
}

lt_tensor *lt_contiguous(const lt_tensor *t)
{
    if (!t)
        return NULL;
    if (lt_is_contiguous(t))
        return lt__frame_own(lt_retain((lt_tensor *)t));
    return copy_as(t, t->dtype, LT_OP_CONTIGUOUS);
}

lt_tensor *lt_to_dtype(const lt_tensor *t, lt_dtype dt)
{
    if (!t)
        return NULL;
    if ((unsigned)dt > LT_U8) {
        lt_set_error("to_dtype: unknown dtype %d", (int)dt);
        return NULL;
    }
    return copy_as(t, dt, LT_OP_TO_DTYPE);
}
