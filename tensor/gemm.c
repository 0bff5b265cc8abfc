/*
 * gemm.c: the one GEMM entry point of libtensor (matmul, conv2d and its
 * gradients all go through it).
 *
 * Why not call cblas_sgemm directly: OpenBLAS splits a product between its
 * threads differently for different thread counts, so results change in
 * the last bits with lt_set_num_threads(), and its own thread pool competes
 * with our OpenMP loops. Here OpenBLAS always runs single-threaded and we
 * split the output into blocks whose sizes depend only on the problem
 * shape (never on the thread count), along the larger of M and N; K is
 * never split. Each output element is thus computed by the same
 * single-threaded BLAS call whatever the thread count: bitwise identical
 * results for 1, 2 or n threads, and one thread pool.
 */
#include "tensor_internal.h"

#include <cblas.h>
#include <pthread.h>
#ifdef _OPENMP
#include <omp.h>
#define IN_PARALLEL() omp_in_parallel()
#else
#define IN_PARALLEL() 0
#endif

extern void openblas_set_num_threads(int);

static pthread_once_t blas_once = PTHREAD_ONCE_INIT;
static void blas_single(void) { openblas_set_num_threads(1); }
void lt__blas_single_threaded(void) { pthread_once(&blas_once, blas_single); }

/* Below this many multiply-adds a product runs as one call. */
#define SMALL_WORK (1 << 18)

/* Split dim into nb blocks of bs (a multiple of 16), from the shape only. */
static void blocking(int64_t dim, int64_t *nb, int64_t *bs)
{
    /* Blocks about 256 wide keep the packed panels reused; at least four
     * blocks (when dim allows 32-wide ones) keep a few threads balanced. */
    int64_t n = dim / 256;
    if (n < 4)
        n = dim / 32 < 4 ? (dim / 32 < 1 ? 1 : dim / 32) : 4;
    n = n > 16 ? 16 : n;
    int64_t b = (dim + n - 1) / n;
    b = (b + 15) / 16 * 16;
    *bs = b;
    *nb = (dim + b - 1) / b;
}

#define DEF_GEMM(NAME, T, BLAS)                                                                    \
    void NAME(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T *A, int64_t lda, \
              const T *B, int64_t ldb, T beta, T *C, int64_t ldc)                                  \
    {                                                                                              \
        lt__blas_single_threaded();                                                                \
        if (M <= 0 || N <= 0)                                                                      \
            return;                                                                                \
        enum CBLAS_TRANSPOSE cta = ta ? CblasTrans : CblasNoTrans;                                 \
        enum CBLAS_TRANSPOSE ctb = tb ? CblasTrans : CblasNoTrans;                                 \
        if (M * N * (K > 0 ? K : 1) <= SMALL_WORK) {                                               \
            BLAS(CblasRowMajor, cta, ctb, (blasint)M, (blasint)N, (blasint)K, alpha, A, (blasint)lda, \
                 B, (blasint)ldb, beta, C, (blasint)ldc);                                          \
            return;                                                                                \
        }                                                                                          \
        bool by_cols = N >= M;                                                                     \
        int64_t nb, bs;                                                                            \
        blocking(by_cols ? N : M, &nb, &bs);                                                       \
        /* Called from inside a parallel loop (the Winograd convolution's     \
         * 16 products), the blocks run on the calling thread: the same      \
         * calls, so the same result, without a nested team per product. */  \
        _Pragma("omp parallel for schedule(dynamic, 1) if (!IN_PARALLEL())")                 \
        for (int64_t i = 0; i < nb; i++)                                                           \
        {                                                                                          \
            int64_t s = i * bs, len = (by_cols ? N : M) - s < bs ? (by_cols ? N : M) - s : bs;     \
            if (by_cols) {                                                                         \
                const T *Bp = tb ? B + s * ldb : B + s;                                            \
                BLAS(CblasRowMajor, cta, ctb, (blasint)M, (blasint)len, (blasint)K, alpha, A,      \
                     (blasint)lda, Bp, (blasint)ldb, beta, C + s, (blasint)ldc);                   \
            } else {                                                                               \
                const T *Ap = ta ? A + s : A + s * lda;                                            \
                BLAS(CblasRowMajor, cta, ctb, (blasint)len, (blasint)N, (blasint)K, alpha, Ap,     \
                     (blasint)lda, B, (blasint)ldb, beta, C + s * ldc, (blasint)ldc);              \
            }                                                                                      \
        }                                                                                          \
    }

DEF_GEMM(lt__sgemm, float, cblas_sgemm)
DEF_GEMM(lt__dgemm, double, cblas_dgemm)
