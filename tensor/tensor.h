/*
 * libtensor: tensor core (<libtensor/tensor.h>)
 *
 * THE MODEL
 *
 * A tensor is a strided view of a reference-counted storage: a dtype (f32,
 * f64, i64, u8), a rank 0..LT_MAX_DIMS, a shape, strides counted in elements
 * and a storage offset. Layout is row-major (NCHW for images). reshape, view,
 * permute, transpose, slice, select, expand, squeeze, unsqueeze and flatten
 * return views that share storage; lt_contiguous copies only when needed.
 *
 * OWNERSHIP: frames. Every function that returns a new `lt_tensor *` hands
 * its reference to the innermost *frame* of the calling thread (an
 * autorelease pool). lt_frame_pop(mark) releases every reference handed out
 * since the matching lt_frame_push(), so a training step written as a chain
 * of expressions frees its temporaries in one call. To keep a tensor past its
 * frame, lt_retain() it before the pop and lt_release() it when done. Before
 * any push, references go to the thread's base frame, which
 * lt_frame_pop(0) empties. Functions that take tensors only borrow them.
 * Storages and tensors are reference counted with atomic counts, so a tensor
 * retained on one thread may be released on another.
 *
 * ERRORS are values. A failing function returns NULL (or a negative int) and
 * records a message naming the op, the dtypes and the shapes, readable with
 * lt_last_error() on the same thread. A NULL tensor argument makes any op
 * return NULL without overwriting the first message, so a chain can be
 * checked once at its end. The library never prints and never exits.
 *
 * MEMORY. Every allocation goes through one hook (lt_set_allocator), so tests
 * can count blocks and inject failures. Storage buffers sit on a
 * size-bucketed cache above the hook; lt_cache_trim() returns them.
 *
 * THREADS. lt_set_num_threads() sets our OpenMP loops; OpenBLAS stays at one.
 * Elementwise ops, reductions and softmax use a fixed blocking, and GEMMs
 * (lt_matmul, convolutions) run OpenBLAS single-threaded on output blocks
 * whose sizes depend only on the shape, so results are bitwise identical
 * for any thread count, and OpenBLAS never starts threads of its own.
 *
 * AUTOGRAD. This module knows nothing of graphs. Differentiable ops report
 * each call to an observer (see tensor_internal.h) that autograd/ installs;
 * with autograd linked, lt_add() and friends record a graph when an input
 * requires a gradient.
 *
 * EXAMPLE
 *
 *     size_t mark = lt_frame_push();
 *     lt_tensor *a = lt_arange(0, 6, 1, LT_F32);          // [0..5]
 *     lt_tensor *b = lt_reshape(a, 2, (int64_t[]){2, 3});  // view, (2,3)
 *     lt_tensor *s = lt_sum(lt_mul(b, b), 1, (int[]){1}, false); // (2,)
 *     if (!s) fprintf(stderr, "%s\n", lt_last_error());
 *     double v0 = lt_item_at(s, 0);                        // 0+1+4 = 5
 *     lt_frame_pop(mark);                                  // frees a, b, s
 */
#ifndef LIBTENSOR_TENSOR_H
#define LIBTENSOR_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LT_VERSION_MAJOR 0
#define LT_VERSION_MINOR 1
#define LT_VERSION_PATCH 0
#define LT_VERSION_STRING "0.1.0"

/* Maximum rank of a tensor. */
#define LT_MAX_DIMS 8

typedef enum lt_dtype { LT_F32 = 0, LT_F64 = 1, LT_I64 = 2, LT_U8 = 3 } lt_dtype;

/* Opaque tensor handle; see the model above for ownership. */
typedef struct lt_tensor lt_tensor;

/* ------------------------------------------------------------------ */
/* Errors                                                              */
/* ------------------------------------------------------------------ */

/* Message of the last failure on this thread ("" if none). Borrowed; valid
 * until the next failing call on this thread. */
const char *lt_last_error(void);
/* Forget the last error on this thread. */
void lt_clear_error(void);
/* Record an error message (printf format). For modules built on libtensor
 * (nn, data, ...) so that every failure reads through lt_last_error(). */
void lt_set_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ------------------------------------------------------------------ */
/* Memory: allocator hook, cache, frames, reference counts             */
/* ------------------------------------------------------------------ */

/* Allocation hook, Lua style: nsize == 0 frees ptr (of size osize) and
 * returns NULL; ptr == NULL allocates nsize bytes. Must return memory
 * aligned to 64 bytes or NULL on failure. ud is the pointer passed to
 * lt_set_allocator. */
typedef void *(*lt_alloc_fn)(void *ud, void *ptr, size_t osize, size_t nsize);

/* Install an allocator (NULL restores the default aligned malloc). Call only
 * when no tensors are alive and the cache is trimmed. */
void lt_set_allocator(lt_alloc_fn fn, void *ud);

typedef struct lt_mem_stats {
    size_t live_blocks;  /* blocks obtained from the hook and not yet freed */
    size_t live_bytes;
    size_t cached_blocks; /* of those, buffers parked in the cache */
    size_t cached_bytes;
    size_t live_tensors;  /* tensor handles alive */
} lt_mem_stats;
/* Snapshot of allocation counters (process wide). */
lt_mem_stats lt_mem_stats_get(void);
/* Return every cached storage buffer to the hook. */
void lt_cache_trim(void);
/* Allocate/free through the hook (for modules built on libtensor). lt_alloc
 * records an error and returns NULL on failure; both are thread safe. */
void *lt_alloc(size_t size);
void lt_free(void *ptr, size_t size);

/* Start a frame; returns a mark for lt_frame_pop. */
size_t lt_frame_push(void);
/* Release every reference handed out on this thread since the push that
 * returned mark (0 empties the base frame). */
void lt_frame_pop(size_t mark);
/* Current frame mark (what a push would return, minus the push). */
size_t lt_frame_mark(void);
/* Add a reference (the caller then owns it); returns t. NULL-safe. */
lt_tensor *lt_retain(lt_tensor *t);
/* Drop a reference the caller owns. NULL-safe. */
void lt_release(lt_tensor *t);
/* Hand a reference the caller owns to the current frame; returns t, or NULL
 * (and releases t) if the frame cannot grow. */
lt_tensor *lt_autorelease(lt_tensor *t);

/* ------------------------------------------------------------------ */
/* Threads                                                             */
/* ------------------------------------------------------------------ */

/* Threads for OpenMP loops and OpenBLAS together (n >= 1). */
void lt_set_num_threads(int n);
int lt_get_num_threads(void);

/* ------------------------------------------------------------------ */
/* Inspection                                                          */
/* ------------------------------------------------------------------ */

lt_dtype lt_dtype_of(const lt_tensor *t);
const char *lt_dtype_name(lt_dtype dt);  /* "f32", "f64", "i64", "u8" */
size_t lt_dtype_size(lt_dtype dt);
int lt_ndim(const lt_tensor *t);
/* Size of dim (negative dims count from the end); -1 if out of range. */
int64_t lt_size(const lt_tensor *t, int dim);
/* Borrowed arrays of length lt_ndim(t). */
const int64_t *lt_shape(const lt_tensor *t);
const int64_t *lt_strides(const lt_tensor *t);
size_t lt_offset(const lt_tensor *t);
int64_t lt_numel(const lt_tensor *t);
bool lt_is_contiguous(const lt_tensor *t);
/* True if a and b view the same storage. */
bool lt_shares_storage(const lt_tensor *a, const lt_tensor *b);
/* Pointer to element [0,...,0] (storage base + offset). Borrowed; valid
 * while t lives. Walk it with lt_strides() unless lt_is_contiguous(t). */
void *lt_data(const lt_tensor *t);
/* Element at a flat row-major index of the logical shape, as double. */
double lt_item_at(const lt_tensor *t, int64_t flat_index);
/* Value of a one-element tensor; NaN (and an error) otherwise. */
double lt_item(const lt_tensor *t);
/* Write "(2,3,4)" into buf (always NUL-terminated); returns buf. */
char *lt_shape_str(const lt_tensor *t, char *buf, size_t n);

/* ------------------------------------------------------------------ */
/* Creation (result owned by the current frame)                        */
/* ------------------------------------------------------------------ */

/* Uninitialized contiguous tensor of the given shape (ndim 0 = scalar). */
lt_tensor *lt_empty(int ndim, const int64_t *shape, lt_dtype dt);
lt_tensor *lt_zeros(int ndim, const int64_t *shape, lt_dtype dt);
lt_tensor *lt_ones(int ndim, const int64_t *shape, lt_dtype dt);
lt_tensor *lt_full(int ndim, const int64_t *shape, double value, lt_dtype dt);
/* 0-dim tensor holding value. */
lt_tensor *lt_scalar(double value, lt_dtype dt);
/* [start, start+step, ...) up to end (exclusive); step != 0. */
lt_tensor *lt_arange(double start, double end, double step, lt_dtype dt);
/* n x n identity. */
lt_tensor *lt_eye(int64_t n, lt_dtype dt);
/* Copy of numel(shape) contiguous elements of type dt from data. */
lt_tensor *lt_from_data(const void *data, int ndim, const int64_t *shape, lt_dtype dt);
/* Contiguous copy (never a view). */
lt_tensor *lt_clone(const lt_tensor *t);
/* t itself (a new reference) if contiguous, else a contiguous copy. */
lt_tensor *lt_contiguous(const lt_tensor *t);
/* Copy converted to dt (values cast as C does; to u8 saturates 0..255 and
 * rounds to nearest; from floating to i64 truncates toward zero). */
lt_tensor *lt_to_dtype(const lt_tensor *t, lt_dtype dt);
/* Same shape as t, new storage. */
lt_tensor *lt_zeros_like(const lt_tensor *t);
lt_tensor *lt_ones_like(const lt_tensor *t);
lt_tensor *lt_full_like(const lt_tensor *t, double value);

/* In place (returns dst as a borrowed pointer, NULL on error). Not
 * differentiable: refuse tensors that require a gradient under autograd. */
lt_tensor *lt_fill_(lt_tensor *dst, double value);
/* Copy src into dst (src broadcast to dst's shape, converted to its dtype). */
lt_tensor *lt_copy_(lt_tensor *dst, const lt_tensor *src);

/* ------------------------------------------------------------------ */
/* Views (share storage; differentiable)                               */
/* ------------------------------------------------------------------ */

/* New shape with the same numel; one entry may be -1. A view when the
 * strides allow it, otherwise a contiguous copy (like torch.reshape). */
lt_tensor *lt_reshape(const lt_tensor *t, int ndim, const int64_t *shape);
/* Like reshape but fails instead of copying (like torch.view). */
lt_tensor *lt_view(const lt_tensor *t, int ndim, const int64_t *shape);
/* perm is a permutation of 0..ndim-1. */
lt_tensor *lt_permute(const lt_tensor *t, const int *perm);
lt_tensor *lt_transpose(const lt_tensor *t, int d0, int d1);
/* Elements start, start+step, ... < end along dim (Python slice semantics:
 * negative start/end count from the end and are clamped; step >= 1). */
lt_tensor *lt_slice(const lt_tensor *t, int dim, int64_t start, int64_t end, int64_t step);
/* Index along dim, removing it (negative index counts from the end). */
lt_tensor *lt_select(const lt_tensor *t, int dim, int64_t index);
/* Broadcast size-1 dims (stride 0) to shape; ndim >= lt_ndim(t); -1 keeps. */
lt_tensor *lt_expand(const lt_tensor *t, int ndim, const int64_t *shape);
/* Remove dim (must be size 1); lt_squeeze_all removes every size-1 dim. */
lt_tensor *lt_squeeze(const lt_tensor *t, int dim);
lt_tensor *lt_squeeze_all(const lt_tensor *t);
/* Insert a size-1 dim at position dim (0..ndim). */
lt_tensor *lt_unsqueeze(const lt_tensor *t, int dim);
/* Merge dims start..end (inclusive) into one. */
lt_tensor *lt_flatten(const lt_tensor *t, int start_dim, int end_dim);

/* ------------------------------------------------------------------ */
/* Structural ops (new storage)                                        */
/* ------------------------------------------------------------------ */

/* Concatenate n tensors along dim (same dtype; other dims equal). */
lt_tensor *lt_cat(int n, lt_tensor *const *ts, int dim);
/* Stack n same-shaped tensors along a new dim. */
lt_tensor *lt_stack(int n, lt_tensor *const *ts, int dim);
/* out[i][j] = t[index[i][j]][j] for dim 0, etc. (torch.gather); index is
 * i64 with the same rank as t, values in range. Result has index's shape. */
lt_tensor *lt_gather(const lt_tensor *t, int dim, const lt_tensor *index);
/* Inverse of gather: out = zeros(shape) and out[index[i][j]][j] += src[i][j]
 * (dim 0). Used by gather's backward. shape has lt_ndim(src) entries. */
lt_tensor *lt_scatter_add(const lt_tensor *src, int dim, const lt_tensor *index,
                          int ndim, const int64_t *shape);
/* Rows (along dim) picked by a 1-D i64 index. */
lt_tensor *lt_index_select(const lt_tensor *t, int dim, const lt_tensor *index);
/* Inverse of index_select: zeros with size n along dim, src slices added at
 * the indexed positions. */
lt_tensor *lt_index_add(const lt_tensor *src, int dim, const lt_tensor *index, int64_t n);
/* One-hot f32/f64/i64/u8 of an i64 tensor: shape + (num_classes,). */
lt_tensor *lt_one_hot(const lt_tensor *labels, int64_t num_classes, lt_dtype dt);
/* cond (u8, nonzero = true) ? a : b, broadcast. a and b share a dtype. */
lt_tensor *lt_where(const lt_tensor *cond, const lt_tensor *a, const lt_tensor *b);
/* Copy of t with value where mask (u8, broadcast to t) is nonzero. */
lt_tensor *lt_masked_fill(const lt_tensor *t, const lt_tensor *mask, double value);

/* ------------------------------------------------------------------ */
/* Elementwise (f32/f64 unless noted; NumPy broadcasting for binary)    */
/* ------------------------------------------------------------------ */

lt_tensor *lt_neg(const lt_tensor *t);
lt_tensor *lt_exp(const lt_tensor *t);
lt_tensor *lt_log(const lt_tensor *t);
lt_tensor *lt_sqrt(const lt_tensor *t);
lt_tensor *lt_rsqrt(const lt_tensor *t);
lt_tensor *lt_abs(const lt_tensor *t);
/* -1, 0 or 1 (0 at 0); its gradient is zero. */
lt_tensor *lt_sign(const lt_tensor *t);
lt_tensor *lt_relu(const lt_tensor *t);
lt_tensor *lt_sigmoid(const lt_tensor *t);
lt_tensor *lt_tanh(const lt_tensor *t);
lt_tensor *lt_erf(const lt_tensor *t);
/* x * Phi(x) with the exact erf form, or PyTorch's tanh approximation. */
lt_tensor *lt_gelu(const lt_tensor *t, bool tanh_approx);
/* t^exponent (C's pow); exponent 2 is t * t and 1 is t, exactly rounded,
 * as torch.pow computes them. */
lt_tensor *lt_pow_scalar(const lt_tensor *t, double exponent);
/* min(max(t, lo), hi); pass -INFINITY/INFINITY for a one-sided clamp. */
lt_tensor *lt_clamp(const lt_tensor *t, double lo, double hi);
/* t * s and t + s (scalar forms keep t's dtype). */
lt_tensor *lt_mul_scalar(const lt_tensor *t, double s);
lt_tensor *lt_add_scalar(const lt_tensor *t, double s);

lt_tensor *lt_add(const lt_tensor *a, const lt_tensor *b);
lt_tensor *lt_sub(const lt_tensor *a, const lt_tensor *b);
lt_tensor *lt_mul(const lt_tensor *a, const lt_tensor *b);
lt_tensor *lt_div(const lt_tensor *a, const lt_tensor *b);
lt_tensor *lt_pow(const lt_tensor *a, const lt_tensor *b);
lt_tensor *lt_maximum(const lt_tensor *a, const lt_tensor *b);
lt_tensor *lt_minimum(const lt_tensor *a, const lt_tensor *b);
/* Comparisons return u8 (1 true, 0 false); any numeric dtypes, broadcast. */
lt_tensor *lt_eq(const lt_tensor *a, const lt_tensor *b);
lt_tensor *lt_ne(const lt_tensor *a, const lt_tensor *b);
lt_tensor *lt_lt(const lt_tensor *a, const lt_tensor *b);
lt_tensor *lt_le(const lt_tensor *a, const lt_tensor *b);
lt_tensor *lt_gt(const lt_tensor *a, const lt_tensor *b);
lt_tensor *lt_ge(const lt_tensor *a, const lt_tensor *b);
/* Compare with a scalar: op is one of "==","!=","<","<=",">",">=". */
lt_tensor *lt_cmp_scalar(const lt_tensor *a, const char *op, double s);

/* Broadcast shape of a and b into out (LT_MAX_DIMS entries); returns its
 * rank or -1 (with an error naming op) if they do not broadcast. */
int lt_broadcast_shape(const char *op, int na, const int64_t *a, int nb,
                       const int64_t *b, int64_t *out);

/* ------------------------------------------------------------------ */
/* Reductions: over ndims dims listed in dims (ndims == 0: all dims)   */
/* ------------------------------------------------------------------ */

lt_tensor *lt_sum(const lt_tensor *t, int ndims, const int *dims, bool keepdim);
lt_tensor *lt_mean(const lt_tensor *t, int ndims, const int *dims, bool keepdim);
/* Variance; unbiased divides by N-1. */
lt_tensor *lt_var(const lt_tensor *t, int ndims, const int *dims, bool unbiased, bool keepdim);
lt_tensor *lt_logsumexp(const lt_tensor *t, int ndims, const int *dims, bool keepdim);
/* Max/min values over dims. Like torch.amax, the gradient is split evenly
 * among tied extrema. */
lt_tensor *lt_amax(const lt_tensor *t, int ndims, const int *dims, bool keepdim);
lt_tensor *lt_amin(const lt_tensor *t, int ndims, const int *dims, bool keepdim);
/* Index (i64) of the first max/min along one dim. */
lt_tensor *lt_argmax(const lt_tensor *t, int dim, bool keepdim);
lt_tensor *lt_argmin(const lt_tensor *t, int dim, bool keepdim);
/* Sum t down to a broadcast-compatible shape (the backward of broadcast). */
lt_tensor *lt_sum_to(const lt_tensor *t, int ndim, const int64_t *shape);
lt_tensor *lt_softmax(const lt_tensor *t, int dim);
lt_tensor *lt_log_softmax(const lt_tensor *t, int dim);

/* ------------------------------------------------------------------ */
/* Linear algebra                                                      */
/* ------------------------------------------------------------------ */

/* Matrix product with NumPy matmul semantics: 1-D operands are promoted
 * and the added dim removed; leading (batch) dims broadcast. f32 uses
 * cblas_sgemm, f64 cblas_dgemm; operands whose last two dims are
 * transposed views are passed as BLAS transpose flags, not copied. */
lt_tensor *lt_matmul(const lt_tensor *a, const lt_tensor *b);

/* ------------------------------------------------------------------ */
/* Random numbers: counter-based (Philox-4x32-10)                      */
/* ------------------------------------------------------------------ */

/* Generator state: a key and a counter. Element i of a draw depends only on
 * (seed, counter at the draw, i), so results do not depend on thread count.
 * Save and restore by copying the struct. */
typedef struct lt_rng {
    uint64_t seed;
    uint64_t counter;
} lt_rng;

lt_rng lt_rng_new(uint64_t seed);
/* Uniform in [lo, hi). Advances r by the draw. */
lt_tensor *lt_rand_uniform(lt_rng *r, int ndim, const int64_t *shape, double lo, double hi, lt_dtype dt);
/* Normal(mean, std) by Box-Muller. */
lt_tensor *lt_rand_normal(lt_rng *r, int ndim, const int64_t *shape, double mean, double std, lt_dtype dt);
/* 1 with probability p, else 0. */
lt_tensor *lt_rand_bernoulli(lt_rng *r, int ndim, const int64_t *shape, double p, lt_dtype dt);
/* A uniformly random permutation of 0..n-1 (i64). */
lt_tensor *lt_randperm(lt_rng *r, int64_t n);
/* One uniform double in [0,1) / uint64 (advance r). */
double lt_rng_uniform(lt_rng *r);
uint64_t lt_rng_u64(lt_rng *r);

#ifdef __cplusplus
}
#endif
#endif
