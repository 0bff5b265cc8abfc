/*
 * tensor_internal.h: what the rest of libtensor (autograd/, nn/, data/)
 * may see of the tensor core, and nothing a user should rely on.
 *
 * THE OP OBSERVER. tensor/ knows nothing of graphs. Each differentiable op,
 * after computing its result, calls lt__observe() with an lt_opcall that
 * names the op, its inputs, its output and its non-tensor arguments. When an
 * observer is installed (autograd/ installs one) and at least one input has
 * observer metadata (t->ag != NULL), the observer may attach metadata to the
 * output (autograd attaches a graph node). If the observer fails, the op
 * releases its output and returns NULL.
 */
#ifndef LIBTENSOR_TENSOR_INTERNAL_H
#define LIBTENSOR_TENSOR_INTERNAL_H

#include "tensor.h"
#ifdef _OPENMP
#include <omp.h>
#endif
#include <stdatomic.h>

typedef struct lt_storage {
    atomic_int refcount;
    void *data;      /* 64-byte aligned, from the cache */
    size_t nbytes;   /* requested size */
} lt_storage;

struct lt_tensor {
    atomic_int refcount;
    lt_dtype dtype;
    int ndim;
    lt_storage *storage;
    size_t offset;                 /* in elements */
    int64_t shape[LT_MAX_DIMS];
    int64_t stride[LT_MAX_DIMS];   /* in elements */
    void *ag;                      /* observer (autograd) metadata, owned */
};

/* Every op the observer may see. Order is free; names in lt__op_name. */
typedef enum lt_op {
    LT_OP_NONE = 0,
    /* views */
    LT_OP_RESHAPE, LT_OP_PERMUTE, LT_OP_SLICE, LT_OP_SELECT, LT_OP_EXPAND,
    /* structural */
    LT_OP_CONTIGUOUS, LT_OP_CLONE, LT_OP_TO_DTYPE, LT_OP_CAT, LT_OP_STACK,
    LT_OP_GATHER, LT_OP_SCATTER_ADD, LT_OP_INDEX_SELECT, LT_OP_INDEX_ADD,
    LT_OP_WHERE, LT_OP_MASKED_FILL,
    /* unary */
    LT_OP_NEG, LT_OP_EXP, LT_OP_LOG, LT_OP_SQRT, LT_OP_RSQRT, LT_OP_ABS,
    LT_OP_SIGN, LT_OP_RELU, LT_OP_SIGMOID, LT_OP_TANH, LT_OP_ERF, LT_OP_GELU,
    LT_OP_GELU_TANH, LT_OP_POW_SCALAR, LT_OP_CLAMP, LT_OP_MUL_SCALAR,
    LT_OP_ADD_SCALAR,
    /* binary */
    LT_OP_ADD, LT_OP_SUB, LT_OP_MUL, LT_OP_DIV, LT_OP_POW, LT_OP_MAXIMUM,
    LT_OP_MINIMUM,
    /* reductions */
    LT_OP_SUM, LT_OP_MEAN, LT_OP_VAR, LT_OP_LOGSUMEXP, LT_OP_AMAX, LT_OP_AMIN,
    LT_OP_SUM_TO, LT_OP_SOFTMAX, LT_OP_LOG_SOFTMAX,
    /* linear algebra */
    LT_OP_MATMUL,
    LT_OP__COUNT
} lt_op;

const char *lt__op_name(lt_op op);

#define LT_OP_MAXARGS (2 * LT_MAX_DIMS + 4)

typedef struct lt_opcall {
    lt_op op;
    int nin;
    const lt_tensor *const *in;  /* nin inputs (borrowed) */
    lt_tensor *out;              /* the result (borrowed) */
    int nargs;
    int64_t iarg[LT_OP_MAXARGS]; /* integer arguments, meaning per op */
    double darg[2];              /* scalar arguments, meaning per op */
} lt_opcall;

/* Observer: returns 0, or -1 with lt_set_error() called. */
typedef int (*lt_observer_fn)(const lt_opcall *call);
/* Frees t->ag when a tensor dies. */
typedef void (*lt_meta_free_fn)(void *meta);

void lt__set_observer(lt_observer_fn fn, lt_meta_free_fn free_meta);
extern lt_observer_fn lt__observer;

/* Report a call (no-op unless an observer is installed and an input is
 * observed). On failure releases nothing: the caller handles it. */
int lt__observe(lt_opcall *call);
/* True if any of the n tensors carries observer metadata. */
bool lt__any_observed(int n, const lt_tensor *const *ts);

/* A new tensor handle (refcount 1, NOT in a frame) viewing storage s with
 * the given geometry; retains s. */
lt_tensor *lt__make_view(lt_storage *s, lt_dtype dt, int ndim, const int64_t *shape,
                         const int64_t *stride, size_t offset);
/* A new contiguous tensor (refcount 1, not in a frame). */
lt_tensor *lt__new(int ndim, const int64_t *shape, lt_dtype dt);
/* A scratch buffer of n elements: a plain 1-D tensor (refcount 1, no
 * frame, no autograd), so its memory comes from the storage cache and a
 * training loop reuses the same blocks instead of mapping (and zeroing)
 * fresh pages on every call. Release with lt_release. */
static inline lt_tensor *lt__scratch(int64_t n, lt_dtype dt) { return lt__new(1, &n, dt); }
/* Hand a fresh tensor (refcount 1) to the frame, or NULL. */
lt_tensor *lt__frame_own(lt_tensor *t);
/* Contiguous row-major strides for shape. */
void lt__contig_strides(int ndim, const int64_t *shape, int64_t *stride);
int64_t lt__numel(int ndim, const int64_t *shape);
/* Read / write element at a storage element offset as double. */
double lt__get(const void *base, lt_dtype dt, int64_t off);
void lt__set(void *base, lt_dtype dt, int64_t off, double v);
/* Exact element copy / add between storages of the SAME dtype (integers
 * stay exact beyond 2^53). */
void lt__copy_elem(void *dst, int64_t doff, const void *src, int64_t soff, lt_dtype dt);
void lt__add_elem(void *dst, int64_t doff, const void *src, int64_t soff, lt_dtype dt);
/* Like lt__new, with op naming the caller in error messages. */
lt_tensor *lt__new_op(const char *op, int ndim, const int64_t *shape, lt_dtype dt);
/* Row-major C = alpha op(A) op(B) + beta C, like cblas_sgemm/dgemm, with
 * results bitwise independent of the thread count (see gemm.c). */
void lt__sgemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
               const float *B, int64_t ldb, float beta, float *C, int64_t ldc);
void lt__dgemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const double *A, int64_t lda,
               const double *B, int64_t ldb, double beta, double *C, int64_t ldc);
/* Packed GEMM (ukernel.c): C (M x 16 nbp, row stride ldc) = A B (acc
 * false) or C + A B (acc true), with
 * A (M x K) packed in panels of LT__UK_MR rows, element (i, k) at
 * ap[(i / MR) MR K + k MR + i % MR], and B (K x 16 nbp) in panels of
 * LT__UK_NR columns, element (k, j) at bp[(j / NR) NR K + k NR + j % NR].
 * M must be a multiple of MR (pad A with zero rows): every row of every
 * panel of C is written, and with acc false never read. Single-threaded;
 * each element is summed over k in fixed blocks of 256, in order, the
 * same whatever the caller's split. */
#define LT__UK_MR 6
#define LT__UK_NR 16
void lt__sgemm_packed(int64_t M, int64_t K, int nbp, const float *ap, const float *bp, float *c, int64_t ldc,
                      bool acc);
/* How callers of lt__sgemm_packed split R6 output rows (a multiple of
 * LT__UK_MR) between threads besides their nblk column blocks: *nog groups
 * of *rg rows (a multiple of LT__UK_MR, the last group possibly shorter),
 * doubling the groups while nblk x groups would give fewer than two items
 * per thread. Only the split depends on nth, never an element's sum. */
static inline void lt__sgemm_packed_row_groups(int64_t nblk, int64_t R6, int nth, int64_t *rg, int64_t *nog)
{
    int64_t n = 1;
    while (nblk * n < 2 * nth && R6 / LT__UK_MR >= 2 * n)
        n *= 2;
    *rg = ((R6 + n - 1) / n + LT__UK_MR - 1) / LT__UK_MR * LT__UK_MR;
    *nog = (R6 + *rg - 1) / *rg;
}
/* Tests and benchmarks: run lt__sgemm_packed on one kernel (LT__UK_GENERIC:
 * portable C; LT__UK_AVX2; LT__UK_AVX512: AVX-512F, also bitwise equal to
 * AVX2) rather than the best this CPU has (LT__UK_AUTO, the default).
 * Returns -1, changing nothing, for a kernel this CPU cannot run. */
enum { LT__UK_AUTO, LT__UK_GENERIC, LT__UK_AVX2, LT__UK_AVX512 };
int lt__sgemm_packed_force(int kernel);
/* The size of the team a parallel region started here would get (at
 * most), for per-thread scratch, and the calling thread's index in its
 * team; 1 and 0 without OpenMP. */
static inline int lt__team_size(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}
static inline int lt__thread_id(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}
/* Pin OpenBLAS to one thread (idempotent); our OpenMP loops parallelize. */
void lt__blas_single_threaded(void);
/* Storage base pointer (element 0 of the storage, not of the view). */
static inline char *lt__base(const lt_tensor *t) { return (char *)t->storage->data; }
/* Normalize a possibly negative dim against ndim; -1 if out of range. */
int lt__dim(int dim, int ndim);
/* "f32(2,3)" style description for messages. */
char *lt__desc(const lt_tensor *t, char *buf, size_t n);
/* Map a flat row-major index of t's logical shape to a storage offset. */
int64_t lt__offset_of(const lt_tensor *t, int64_t flat);

/* The ops' shared error message: "op: message" */
#define LT_ERR(opname, ...) lt_set_error(opname ": " __VA_ARGS__)

#endif
