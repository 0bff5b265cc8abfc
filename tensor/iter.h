/*
 * iter.h (private): the strided N-d loop every elementwise kernel runs on.
 *
 * Operands are broadcast (right-aligned, stride 0 on broadcast dims) to one
 * shape, size-1 dims dropped, and adjacent dims merged when every operand
 * is contiguous across them. The loop hands a row function one innermost
 * run at a time; runs are split in fixed chunks and spread over OpenMP
 * threads. Each output element is written by exactly one call, so results
 * do not depend on the thread count.
 */
#ifndef LIBTENSOR_ITER_H
#define LIBTENSOR_ITER_H

#include "tensor_internal.h"

#define LT__MAXOPS 4

/* p[k]: pointer to the run's first element of operand k; st[k]: its stride
 * in BYTES; n: run length; ctx: the caller's constants. */
typedef void (*lt__row_fn)(char **p, const int64_t *st, int64_t n, const void *ctx);

typedef struct lt__iter {
    int nops, ndim;
    int64_t shape[LT_MAX_DIMS];
    int64_t st[LT__MAXOPS][LT_MAX_DIMS]; /* bytes */
    char *base[LT__MAXOPS];
} lt__iter;

/* ts[k] must broadcast to (ndim, shape); ts[0] is normally the output. */
void lt__iter_init(lt__iter *it, int ndim, const int64_t *shape, int nops,
                   const lt_tensor *const *ts);
void lt__iter_run(const lt__iter *it, lt__row_fn fn, const void *ctx);

/* Strided copy with dtype conversion of src (broadcast) into dst. */
void lt__copy_into(lt_tensor *dst, const lt_tensor *src);

#endif
