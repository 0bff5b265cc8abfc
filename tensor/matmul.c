/*
 * matmul.c: lt_matmul, NumPy matmul semantics on top of cblas_sgemm/dgemm.
 *
 * SHAPES (numpy.matmul): a (...,M,K) @ b (...,K,N) -> (...,M,N) with the
 * batch dims "..." broadcast. A 1-D a is (1,K) with that dim removed from
 * the result, a 1-D b is (K,1) likewise. The promotions are composed from
 * lt_unsqueeze / lt_squeeze / lt_reshape, which record their own autograd
 * nodes, so the op reported to the observer (LT_OP_MATMUL) always has two
 * operands of rank >= 2.
 *
 * FEEDING BLAS WITHOUT COPIES. Each operand's last two dims, a matrix (R,C)
 * with element strides (sr,sc), is handed to row-major gemm as it lies:
 *   sc == 1, sr >= C  ->  NoTrans, ld = sr   (row-major rows)
 *   sr == 1, sc >= R  ->  Trans,   ld = sc   (a transposed row-major matrix)
 * A size-1 dim's stride is irrelevant. Any other layout (a step-2 slice of
 * the last dim, overlapping expanded rows) is copied to a contiguous
 * temporary first. The output is always a new contiguous tensor.
 *
 * ONE GEMM FOR (B,T,C) @ (C,N). When b is the same matrix for every batch
 * (no batch dims, or all of size 1 / stride 0) and a's batch and row dims
 * walk memory with one uniform row stride, the batch folds into the rows:
 * one gemm with M' = batch*M. This is the Linear layer's case and keeps the
 * GEMM large. Otherwise gemm runs once per batch entry.
 *
 * The backward (dA = dC @ B^T, dB = A^T @ dC, summed over broadcast batch
 * dims) is written by autograd/ with lt_matmul itself, so it differentiates
 * again for double backprop.
 */
#include "tensor_internal.h"
#include "iter.h"

#include <cblas.h>
#include <limits.h>
#include <string.h>

/* One operand as gemm sees it. */
typedef struct mm_operand {
    const lt_tensor *t;             /* the tensor whose memory is read */
    int64_t bstride[LT_MAX_DIMS];   /* per output batch dim, 0 if broadcast */
    bool trans;
    int64_t ld;
} mm_operand;

/* Layout of a (R,C) matrix with strides (sr,sc) as row-major gemm input;
 * false if it needs a copy. R, C >= 1. */
static bool mat_layout(int64_t R, int64_t C, int64_t sr, int64_t sc, bool *trans, int64_t *ld)
{
    if ((C == 1 || sc == 1) && (R == 1 || sr >= C)) {
        *trans = false;
        *ld = R == 1 ? C : sr;
        return true;
    }
    if ((R == 1 || sr == 1) && (C == 1 || sc >= R)) {
        *trans = true;
        *ld = C == 1 ? R : sc;
        return true;
    }
    return false;
}

/* Fill op for t against the output batch shape (nb dims, right-aligned).
 * Copies t to a contiguous temporary (stored in *tmp, caller releases) when
 * its matrix layout cannot go to BLAS directly or its leading dimension
 * overflows BLAS's int. The copy is a plain kernel copy, not lt_contiguous:
 * it is internal to this op, so autograd must not see it. Returns -1 on
 * OOM. */
static int mm_prepare(mm_operand *op, const lt_tensor *t, int nb, lt_tensor **tmp)
{
    int n = t->ndim;
    int64_t R = t->shape[n - 2], C = t->shape[n - 1];
    *tmp = NULL;
    if (!mat_layout(R, C, t->stride[n - 2], t->stride[n - 1], &op->trans, &op->ld) ||
        op->ld > INT_MAX) {
        lt_tensor *c = lt__new(n, t->shape, t->dtype);
        if (!c)
            return -1;
        lt__copy_into(c, t);
        *tmp = c;
        t = c;
        mat_layout(R, C, t->stride[n - 2], t->stride[n - 1], &op->trans, &op->ld);
    }
    op->t = t;
    int tb = n - 2;
    for (int i = 0; i < nb; i++) {
        int d = i - (nb - tb);
        op->bstride[i] = (d < 0 || t->shape[d] == 1) ? 0 : t->stride[d];
    }
    return 0;
}

static void gemm(lt_dtype dt, const mm_operand *a, const mm_operand *b, int64_t M, int64_t N,
                 int64_t K, int64_t lda, int64_t aoff, int64_t boff, void *c)
{
    if (dt == LT_F32) {
        const float *pa = (const float *)lt__base(a->t) + a->t->offset + aoff;
        const float *pb = (const float *)lt__base(b->t) + b->t->offset + boff;
        lt__sgemm(a->trans, b->trans, M, N, K, 1.0f, pa, lda, pb, b->ld, 0.0f, c, N);
    } else {
        const double *pa = (const double *)lt__base(a->t) + a->t->offset + aoff;
        const double *pb = (const double *)lt__base(b->t) + b->t->offset + boff;
        lt__dgemm(a->trans, b->trans, M, N, K, 1.0, pa, lda, pb, b->ld, 0.0, c, N);
    }
}

/* Row stride when a's batch dims and row dim fold into one row dim of
 * uniform stride; 0 if they do not. a must be NoTrans. */
static int64_t fold_rows(const mm_operand *a, int nb, const int64_t *bshape, int64_t M, int64_t K)
{
    int64_t rs = 0, next = 0; /* stride of the innermost non-1 dim; expected stride of the next */
    for (int i = nb; i >= 0; i--) {
        int64_t size = i == nb ? M : bshape[i];
        int64_t st = i == nb ? a->ld : a->bstride[i];
        if (size == 1)
            continue;
        if (rs == 0) {
            rs = st;
            if (rs < K)
                return 0;
        } else if (st != next) {
            return 0;
        }
        next = size * st;
    }
    return rs ? rs : K;
}

/* a (...,M,K) @ b (...,K,N), both rank >= 2, dtypes and K already checked.
 * Returns the frame-owned result. */
static lt_tensor *matmul_nd(const lt_tensor *a, const lt_tensor *b)
{
    if (!a || !b)
        return NULL;
    char ba[96], bb[96];
    int na = a->ndim, nbt = b->ndim;
    int nb = (na > nbt ? na : nbt) - 2;
    int64_t M = a->shape[na - 2], K = a->shape[na - 1], N = b->shape[nbt - 1];
    int64_t oshape[LT_MAX_DIMS];
    for (int i = 0; i < nb; i++) {
        int da = i - (nb - (na - 2)), db = i - (nb - (nbt - 2));
        int64_t sa = da >= 0 ? a->shape[da] : 1, sb = db >= 0 ? b->shape[db] : 1;
        if (sa != sb && sa != 1 && sb != 1) {
            lt_set_error("matmul: batch dims do not broadcast: %s and %s",
                         lt__desc(a, ba, sizeof ba), lt__desc(b, bb, sizeof bb));
            return NULL;
        }
        oshape[i] = sa == 1 ? sb : sa;
    }
    oshape[nb] = M;
    oshape[nb + 1] = N;
    int64_t batch = lt__numel(nb, oshape);
    if (M > INT_MAX || N > INT_MAX || K > INT_MAX) {
        lt_set_error("matmul: a matrix dim exceeds BLAS's int range: %s and %s",
                     lt__desc(a, ba, sizeof ba), lt__desc(b, bb, sizeof bb));
        return NULL;
    }

    lt_tensor *out = lt__new(nb + 2, oshape, a->dtype);
    if (!out)
        return NULL;
    size_t esz = lt_dtype_size(a->dtype);
    if (batch * M * N == 0) {
        /* nothing to compute */
    } else if (K == 0) {
        memset(lt_data(out), 0, (size_t)(batch * M * N) * esz);
    } else {
        mm_operand oa, ob;
        lt_tensor *ta = NULL, *tb = NULL;
        if (mm_prepare(&oa, a, nb, &ta) < 0 || mm_prepare(&ob, b, nb, &tb) < 0) {
            lt_release(ta);
            lt_release(out);
            return NULL;
        }
        bool b_shared = true;
        for (int i = 0; i < nb; i++)
            b_shared = b_shared && ob.bstride[i] == 0;
        int64_t rs = (b_shared && !oa.trans) ? fold_rows(&oa, nb, oshape, M, K) : 0;
        char *c = lt_data(out);
        if (rs > 0 && rs <= INT_MAX && batch * M <= INT_MAX) {
            gemm(a->dtype, &oa, &ob, batch * M, N, K, rs, 0, 0, c);
        } else {
            for (int64_t bi = 0; bi < batch; bi++) {
                int64_t aoff = 0, boff = 0, rem = bi;
                for (int i = nb - 1; i >= 0; i--) {
                    int64_t idx = rem % oshape[i];
                    rem /= oshape[i];
                    aoff += idx * oa.bstride[i];
                    boff += idx * ob.bstride[i];
                }
                gemm(a->dtype, &oa, &ob, M, N, K, oa.ld, aoff, boff,
                     c + (size_t)(bi * M * N) * esz);
            }
        }
        lt_release(ta);
        lt_release(tb);
    }

    if (!lt__frame_own(out))
        return NULL;
    lt_opcall c = {.op = LT_OP_MATMUL, .nin = 2, .in = (const lt_tensor *const[]){a, b}, .out = out};
    if (lt__observe(&c) < 0)
        return NULL;
    return out;
}

lt_tensor *lt_matmul(const lt_tensor *a, const lt_tensor *b)
{
    if (!a || !b)
        return NULL;
    char ba[96], bb[96];
    if (a->dtype != b->dtype) {
        lt_set_error("matmul: dtypes differ: %s and %s", lt__desc(a, ba, sizeof ba),
                     lt__desc(b, bb, sizeof bb));
        return NULL;
    }
    if (a->dtype != LT_F32 && a->dtype != LT_F64) {
        lt_set_error("matmul: needs f32 or f64: %s and %s", lt__desc(a, ba, sizeof ba),
                     lt__desc(b, bb, sizeof bb));
        return NULL;
    }
    if (a->ndim == 0 || b->ndim == 0) {
        lt_set_error("matmul: operands must have at least one dim: %s and %s",
                     lt__desc(a, ba, sizeof ba), lt__desc(b, bb, sizeof bb));
        return NULL;
    }
    int64_t ka = a->shape[a->ndim - 1];
    int64_t kb = b->ndim == 1 ? b->shape[0] : b->shape[b->ndim - 2];
    if (ka != kb) {
        lt_set_error("matmul: inner dims differ (%lld vs %lld): %s and %s", (long long)ka,
                     (long long)kb, lt__desc(a, ba, sizeof ba), lt__desc(b, bb, sizeof bb));
        return NULL;
    }

    if (a->ndim >= 2 && b->ndim >= 2)
        return matmul_nd(a, b);
    if (a->ndim == 1 && b->ndim == 1) /* (K) @ (K) -> () */
        return lt_reshape(matmul_nd(lt_unsqueeze(a, 0), lt_unsqueeze(b, 1)), 0,
                          (const int64_t[]){1});
    if (a->ndim == 1) /* (K) @ (...,K,N) -> (...,N) */
        return lt_squeeze(matmul_nd(lt_unsqueeze(a, 0), b), -2);
    /* (...,M,K) @ (K) -> (...,M) */
    return lt_squeeze(matmul_nd(a, lt_unsqueeze(b, 1)), -1);
}
