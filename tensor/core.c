/*
 * core.c: errors, the allocator hook and cache, frames, reference counts,
 * tensor handles and inspection.
 */
#include "tensor_internal.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Errors                                                              */
/* ------------------------------------------------------------------ */

static _Thread_local char err_buf[4096];

const char *lt_last_error(void) { return err_buf; }
void lt_clear_error(void) { err_buf[0] = '\0'; }

void lt_set_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err_buf, sizeof err_buf, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------------ */
/* Allocator hook                                                      */
/* ------------------------------------------------------------------ */

static void *default_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    (void)ud;
    (void)osize;
    if (nsize == 0) {
        free(ptr);
        return NULL;
    }
    /* aligned_alloc wants a multiple of the alignment. */
    return aligned_alloc(64, (nsize + 63) & ~(size_t)63);
}

static lt_alloc_fn alloc_fn = default_alloc;
static void *alloc_ud;
static atomic_size_t st_blocks, st_bytes, st_cached_blocks, st_cached_bytes, st_tensors;

void lt_set_allocator(lt_alloc_fn fn, void *ud)
{
    alloc_fn = fn ? fn : default_alloc;
    alloc_ud = fn ? ud : NULL;
}

void *lt_alloc(size_t size)
{
    if (size == 0)
        size = 1;
    void *p = alloc_fn(alloc_ud, NULL, 0, size);
    if (!p) {
        lt_set_error("out of memory: allocation of %zu bytes failed", size);
        return NULL;
    }
    atomic_fetch_add(&st_blocks, 1);
    atomic_fetch_add(&st_bytes, size);
    return p;
}

void lt_free(void *ptr, size_t size)
{
    if (!ptr)
        return;
    if (size == 0)
        size = 1;
    alloc_fn(alloc_ud, ptr, size, 0);
    atomic_fetch_sub(&st_blocks, 1);
    atomic_fetch_sub(&st_bytes, size);
}

lt_mem_stats lt_mem_stats_get(void)
{
    lt_mem_stats s;
    s.live_blocks = atomic_load(&st_blocks);
    s.live_bytes = atomic_load(&st_bytes);
    s.cached_blocks = atomic_load(&st_cached_blocks);
    s.cached_bytes = atomic_load(&st_cached_bytes);
    s.live_tensors = atomic_load(&st_tensors);
    return s;
}

/* ------------------------------------------------------------------ */
/* Size-bucketed cache for storage buffers                             */
/*                                                                     */
/* Sizes round up to a class: multiples of 64 bytes up to 4 KiB, then   */
/* four classes per power of two (at most 25% slack). Freed buffers     */
/* park on their class's list; a request of the same class reuses one.  */
/* ------------------------------------------------------------------ */

#define CACHE_CLASSES (64 + 4 * 52)

typedef struct cache_block {
    struct cache_block *next;
} cache_block;

static cache_block *cache_head[CACHE_CLASSES];
static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;

static int size_class(size_t n, size_t *rounded)
{
    if (n <= 4096) {
        size_t r = (n + 63) / 64;
        if (r == 0)
            r = 1;
        *rounded = r * 64;
        return (int)r - 1;
    }
    int lg = 63 - __builtin_clzll((unsigned long long)(n - 1)); /* n-1 >= 2^lg */
    /* n in (2^lg, 2^(lg+1)]; split that range in quarters */
    size_t base = (size_t)1 << lg;
    size_t q = base / 4;
    size_t k = (n - base + q - 1) / q; /* 1..4 */
    *rounded = base + k * q;
    int c = 64 + (lg - 12) * 4 + (int)k - 1;
    return c < CACHE_CLASSES ? c : -1;
}

static void *cache_get(size_t n, size_t *rounded)
{
    int c = size_class(n, rounded);
    if (c >= 0) {
        pthread_mutex_lock(&cache_mu);
        cache_block *b = cache_head[c];
        if (b) {
            cache_head[c] = b->next;
            atomic_fetch_sub(&st_cached_blocks, 1);
            atomic_fetch_sub(&st_cached_bytes, *rounded);
        }
        pthread_mutex_unlock(&cache_mu);
        if (b)
            return b;
    } else {
        *rounded = n;
    }
    return lt_alloc(*rounded);
}

static void cache_put(void *p, size_t rounded)
{
    size_t r2;
    int c = size_class(rounded, &r2);
    if (c < 0 || r2 != rounded) {
        lt_free(p, rounded);
        return;
    }
    pthread_mutex_lock(&cache_mu);
    cache_block *b = p;
    b->next = cache_head[c];
    cache_head[c] = b;
    atomic_fetch_add(&st_cached_blocks, 1);
    atomic_fetch_add(&st_cached_bytes, rounded);
    pthread_mutex_unlock(&cache_mu);
}

void lt_cache_trim(void)
{
    pthread_mutex_lock(&cache_mu);
    for (int c = 0; c < CACHE_CLASSES; c++) {
        size_t sz;
        if (c < 64)
            sz = (size_t)(c + 1) * 64;
        else {
            int lg = (c - 64) / 4 + 12, k = (c - 64) % 4 + 1;
            sz = ((size_t)1 << lg) + (size_t)k * (((size_t)1 << lg) / 4);
        }
        while (cache_head[c]) {
            cache_block *b = cache_head[c];
            cache_head[c] = b->next;
            atomic_fetch_sub(&st_cached_blocks, 1);
            atomic_fetch_sub(&st_cached_bytes, sz);
            lt_free(b, sz);
        }
    }
    pthread_mutex_unlock(&cache_mu);
}

/* ------------------------------------------------------------------ */
/* Storage and tensor handles                                          */
/* ------------------------------------------------------------------ */

static size_t storage_rounded(size_t nbytes)
{
    size_t r;
    size_class(nbytes ? nbytes : 1, &r);
    return r;
}

static lt_storage *storage_new(size_t nbytes)
{
    lt_storage *s = lt_alloc(sizeof *s);
    if (!s)
        return NULL;
    size_t rounded;
    s->data = cache_get(nbytes ? nbytes : 1, &rounded);
    if (!s->data) {
        lt_free(s, sizeof *s);
        return NULL;
    }
    s->nbytes = nbytes;
    atomic_init(&s->refcount, 1);
    return s;
}

static void storage_release(lt_storage *s)
{
    if (atomic_fetch_sub(&s->refcount, 1) == 1) {
        cache_put(s->data, storage_rounded(s->nbytes));
        lt_free(s, sizeof *s);
    }
}

lt_observer_fn lt__observer;
static lt_meta_free_fn meta_free;

void lt__set_observer(lt_observer_fn fn, lt_meta_free_fn free_meta)
{
    lt__observer = fn;
    meta_free = free_meta;
}

bool lt__any_observed(int n, const lt_tensor *const *ts)
{
    for (int i = 0; i < n; i++)
        if (ts[i] && ts[i]->ag)
            return true;
    return false;
}

int lt__observe(lt_opcall *call)
{
    if (!lt__observer || !lt__any_observed(call->nin, call->in))
        return 0;
    return lt__observer(call);
}

int64_t lt__numel(int ndim, const int64_t *shape)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= shape[i];
    return n;
}

void lt__contig_strides(int ndim, const int64_t *shape, int64_t *stride)
{
    int64_t s = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        stride[i] = s;
        s *= shape[i] > 0 ? shape[i] : 1;
    }
}

lt_tensor *lt__make_view(lt_storage *s, lt_dtype dt, int ndim, const int64_t *shape,
                         const int64_t *stride, size_t offset)
{
    lt_tensor *t = lt_alloc(sizeof *t);
    if (!t)
        return NULL;
    memset(t, 0, sizeof *t);
    atomic_init(&t->refcount, 1);
    t->dtype = dt;
    t->ndim = ndim;
    t->storage = s;
    t->offset = offset;
    for (int i = 0; i < ndim; i++) {
        t->shape[i] = shape[i];
        t->stride[i] = stride[i];
    }
    atomic_fetch_add(&s->refcount, 1);
    atomic_fetch_add(&st_tensors, 1);
    return t;
}

lt_tensor *lt__new(int ndim, const int64_t *shape, lt_dtype dt) { return lt__new_op("empty", ndim, shape, dt); }

lt_tensor *lt__new_op(const char *op, int ndim, const int64_t *shape, lt_dtype dt)
{
    if (ndim < 0 || ndim > LT_MAX_DIMS || (ndim > 0 && !shape)) {
        lt_set_error("%s: rank %d outside 0..%d (or no shape)", op, ndim, LT_MAX_DIMS);
        return NULL;
    }
    for (int i = 0; i < ndim; i++)
        if (shape[i] < 0) {
            lt_set_error("%s: negative size %lld in dim %d", op, (long long)shape[i], i);
            return NULL;
        }
    if ((unsigned)dt > LT_U8) {
        lt_set_error("%s: unknown dtype %d", op, (int)dt);
        return NULL;
    }
    /* Refuse shapes whose byte size overflows (a zero dim anywhere makes the
     * tensor empty, but the other dims must still be sane). */
    int64_t prod = 1;
    for (int i = 0; i < ndim; i++) {
        int64_t d = shape[i] ? shape[i] : 1;
        if (prod > (INT64_MAX / 8) / d) {
            lt_set_error("%s: shape too large (dim %d = %lld overflows the element count)", op, i,
                         (long long)shape[i]);
            return NULL;
        }
        prod *= d;
    }
    int64_t n = lt__numel(ndim, shape);
    lt_storage *s = storage_new((size_t)n * lt_dtype_size(dt));
    if (!s)
        return NULL;
    int64_t st[LT_MAX_DIMS];
    lt__contig_strides(ndim, shape, st);
    lt_tensor *t = lt__make_view(s, dt, ndim, shape, st, 0);
    storage_release(s);
    return t;
}

lt_tensor *lt_retain(lt_tensor *t)
{
    if (t)
        atomic_fetch_add(&t->refcount, 1);
    return t;
}

void lt_release(lt_tensor *t)
{
    if (!t)
        return;
    if (atomic_fetch_sub(&t->refcount, 1) == 1) {
        if (t->ag && meta_free)
            meta_free(t->ag);
        storage_release(t->storage);
        atomic_fetch_sub(&st_tensors, 1);
        lt_free(t, sizeof *t);
    }
}

/* ------------------------------------------------------------------ */
/* Frames                                                              */
/* ------------------------------------------------------------------ */

static _Thread_local lt_tensor **pool;
static _Thread_local size_t pool_n, pool_cap;

size_t lt_frame_push(void) { return pool_n; }
size_t lt_frame_mark(void) { return pool_n; }

void lt_frame_pop(size_t mark)
{
    while (pool_n > mark) {
        lt_tensor *t = pool[--pool_n];
        lt_release(t);
    }
    if (pool_n == 0 && pool) {
        /* An empty base frame holds no memory, so leak checks see zero. */
        lt_free(pool, pool_cap * sizeof *pool);
        pool = NULL;
        pool_cap = 0;
    }
}

lt_tensor *lt_autorelease(lt_tensor *t)
{
    if (!t)
        return NULL;
    if (pool_n == pool_cap) {
        size_t ncap = pool_cap ? pool_cap * 2 : 256;
        lt_tensor **np = lt_alloc(ncap * sizeof *np);
        if (!np) {
            lt_release(t);
            return NULL;
        }
        if (pool) {
            memcpy(np, pool, pool_n * sizeof *np);
            lt_free(pool, pool_cap * sizeof *pool);
        }
        pool = np;
        pool_cap = ncap;
    }
    pool[pool_n++] = t;
    return t;
}

lt_tensor *lt__frame_own(lt_tensor *t) { return lt_autorelease(t); }

/* ------------------------------------------------------------------ */
/* Threads                                                             */
/* ------------------------------------------------------------------ */

#ifdef _OPENMP
#include <omp.h>
#endif

static int n_threads = 0;

void lt_set_num_threads(int n)
{
    if (n < 1)
        n = 1;
    n_threads = n;
#ifdef _OPENMP
    omp_set_num_threads(n);
#endif
    lt__blas_single_threaded(); /* BLAS stays at 1: see gemm.c */
}

int lt_get_num_threads(void)
{
#ifdef _OPENMP
    return n_threads ? n_threads : omp_get_max_threads();
#else
    return 1;
#endif
}

/* ------------------------------------------------------------------ */
/* Inspection                                                          */
/* ------------------------------------------------------------------ */

static const char *const dtype_names[] = {"f32", "f64", "i64", "u8"};
static const size_t dtype_sizes[] = {4, 8, 8, 1};

lt_dtype lt_dtype_of(const lt_tensor *t) { return t->dtype; }
const char *lt_dtype_name(lt_dtype dt) { return (unsigned)dt <= LT_U8 ? dtype_names[dt] : "?"; }
size_t lt_dtype_size(lt_dtype dt) { return (unsigned)dt <= LT_U8 ? dtype_sizes[dt] : 0; }
int lt_ndim(const lt_tensor *t) { return t->ndim; }
const int64_t *lt_shape(const lt_tensor *t) { return t->shape; }
const int64_t *lt_strides(const lt_tensor *t) { return t->stride; }
size_t lt_offset(const lt_tensor *t) { return t->offset; }
int64_t lt_numel(const lt_tensor *t) { return lt__numel(t->ndim, t->shape); }
bool lt_shares_storage(const lt_tensor *a, const lt_tensor *b) { return a->storage == b->storage; }
void *lt_data(const lt_tensor *t) { return lt__base(t) + t->offset * lt_dtype_size(t->dtype); }

int lt__dim(int dim, int ndim)
{
    if (dim < 0)
        dim += ndim;
    return (dim < 0 || dim >= (ndim > 0 ? ndim : 1)) ? -1 : dim;
}

int64_t lt_size(const lt_tensor *t, int dim)
{
    int d = lt__dim(dim, t->ndim);
    return (d < 0 || t->ndim == 0) ? -1 : t->shape[d];
}

bool lt_is_contiguous(const lt_tensor *t)
{
    if (lt_numel(t) == 0)
        return true; /* no element to be out of place (as torch says) */
    int64_t s = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->shape[i] == 1)
            continue;
        if (t->stride[i] != s)
            return false;
        s *= t->shape[i];
    }
    return true;
}

double lt__get(const void *base, lt_dtype dt, int64_t off)
{
    switch (dt) {
    case LT_F32: return ((const float *)base)[off];
    case LT_F64: return ((const double *)base)[off];
    case LT_I64: return (double)((const int64_t *)base)[off];
    case LT_U8: return ((const uint8_t *)base)[off];
    }
    return NAN;
}

void lt__set(void *base, lt_dtype dt, int64_t off, double v)
{
    switch (dt) {
    case LT_F32: ((float *)base)[off] = (float)v; break;
    case LT_F64: ((double *)base)[off] = v; break;
    case LT_I64: ((int64_t *)base)[off] = (int64_t)v; break;
    case LT_U8: {
        double r = nearbyint(v);
        ((uint8_t *)base)[off] = (uint8_t)(r < 0 ? 0 : r > 255 ? 255 : r);
        break;
    }
    }
}

void lt__copy_elem(void *dst, int64_t doff, const void *src, int64_t soff, lt_dtype dt)
{
    size_t es = lt_dtype_size(dt);
    memcpy((char *)dst + (size_t)doff * es, (const char *)src + (size_t)soff * es, es);
}

void lt__add_elem(void *dst, int64_t doff, const void *src, int64_t soff, lt_dtype dt)
{
    switch (dt) {
    case LT_F32: ((float *)dst)[doff] += ((const float *)src)[soff]; break;
    case LT_F64: ((double *)dst)[doff] += ((const double *)src)[soff]; break;
    case LT_I64: ((int64_t *)dst)[doff] += ((const int64_t *)src)[soff]; break;
    case LT_U8: ((uint8_t *)dst)[doff] = (uint8_t)(((uint8_t *)dst)[doff] + ((const uint8_t *)src)[soff]); break;
    }
}

int64_t lt__offset_of(const lt_tensor *t, int64_t flat)
{
    int64_t off = (int64_t)t->offset;
    for (int i = t->ndim - 1; i >= 0; i--) {
        int64_t idx = flat % t->shape[i];
        flat /= t->shape[i];
        off += idx * t->stride[i];
    }
    return off;
}

double lt_item_at(const lt_tensor *t, int64_t flat)
{
    if (!t)
        return NAN;
    if (flat < 0 || flat >= lt_numel(t)) {
        lt_set_error("item_at: index %lld out of range for %lld elements", (long long)flat,
                     (long long)lt_numel(t));
        return NAN;
    }
    return lt__get(lt__base(t), t->dtype, lt__offset_of(t, flat));
}

double lt_item(const lt_tensor *t)
{
    if (!t)
        return NAN;
    if (lt_numel(t) != 1) {
        char b[128];
        lt_set_error("item: tensor %s has %lld elements, not 1", lt__desc(t, b, sizeof b),
                     (long long)lt_numel(t));
        return NAN;
    }
    return lt_item_at(t, 0);
}

char *lt_shape_str(const lt_tensor *t, char *buf, size_t n)
{
    size_t k = 0;
    if (n == 0)
        return buf;
    buf[0] = '\0';
    k += (size_t)snprintf(buf + k, n - k, "(");
    for (int i = 0; i < t->ndim && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, i ? ",%lld" : "%lld", (long long)t->shape[i]);
    if (k < n)
        snprintf(buf + k, n - k, ")");
    return buf;
}

char *lt__desc(const lt_tensor *t, char *buf, size_t n)
{
    char sh[96];
    snprintf(buf, n, "%s%s", lt_dtype_name(t->dtype), lt_shape_str(t, sh, sizeof sh));
    return buf;
}

static const char *const op_names[LT_OP__COUNT] = {
    [LT_OP_NONE] = "none", [LT_OP_RESHAPE] = "reshape", [LT_OP_PERMUTE] = "permute",
    [LT_OP_SLICE] = "slice", [LT_OP_SELECT] = "select", [LT_OP_EXPAND] = "expand",
    [LT_OP_CONTIGUOUS] = "contiguous", [LT_OP_CLONE] = "clone", [LT_OP_TO_DTYPE] = "to_dtype",
    [LT_OP_CAT] = "cat", [LT_OP_STACK] = "stack", [LT_OP_GATHER] = "gather",
    [LT_OP_SCATTER_ADD] = "scatter_add", [LT_OP_INDEX_SELECT] = "index_select",
    [LT_OP_INDEX_ADD] = "index_add", [LT_OP_WHERE] = "where", [LT_OP_MASKED_FILL] = "masked_fill",
    [LT_OP_NEG] = "neg", [LT_OP_EXP] = "exp", [LT_OP_LOG] = "log", [LT_OP_SQRT] = "sqrt",
    [LT_OP_RSQRT] = "rsqrt", [LT_OP_ABS] = "abs", [LT_OP_SIGN] = "sign", [LT_OP_RELU] = "relu",
    [LT_OP_SIGMOID] = "sigmoid", [LT_OP_TANH] = "tanh", [LT_OP_ERF] = "erf",
    [LT_OP_GELU] = "gelu", [LT_OP_GELU_TANH] = "gelu_tanh", [LT_OP_POW_SCALAR] = "pow_scalar",
    [LT_OP_CLAMP] = "clamp", [LT_OP_MUL_SCALAR] = "mul_scalar", [LT_OP_ADD_SCALAR] = "add_scalar",
    [LT_OP_ADD] = "add", [LT_OP_SUB] = "sub", [LT_OP_MUL] = "mul", [LT_OP_DIV] = "div",
    [LT_OP_POW] = "pow", [LT_OP_MAXIMUM] = "maximum", [LT_OP_MINIMUM] = "minimum",
    [LT_OP_SUM] = "sum", [LT_OP_MEAN] = "mean", [LT_OP_VAR] = "var",
    [LT_OP_LOGSUMEXP] = "logsumexp", [LT_OP_AMAX] = "amax", [LT_OP_AMIN] = "amin",
    [LT_OP_SUM_TO] = "sum_to", [LT_OP_SOFTMAX] = "softmax", [LT_OP_LOG_SOFTMAX] = "log_softmax",
    [LT_OP_MATMUL] = "matmul",
};

const char *lt__op_name(lt_op op)
{
    return (op > LT_OP_NONE && op < LT_OP__COUNT && op_names[op]) ? op_names[op] : "?";
}
