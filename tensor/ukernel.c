/*
 * ukernel.c: a packed f32 GEMM for callers that build the packed panels
 * themselves (the fused Winograd convolution in nn/winograd.c writes its
 * transformed tiles straight into B's panel layout, so no pass of its own
 * packs, and nothing zeroes C first: C is stored, not accumulated).
 *
 * The micro-kernel computes a 6 x 16 block of C from a 6-row panel of A
 * and a 16-column panel of B, twelve 8-float accumulators. On x86-64 with
 * AVX2 and FMA (checked at run time, so PORTABLE=1 builds use it too
 * where the CPU has them) it runs as intrinsics; elsewhere as plain C over
 * the same layout. Each element of C is the same sequence of additions
 * (KC-term blocks over k, in order) however a caller splits the columns
 * or rows between threads, so results do not depend on that split.
 */
#include "tensor_internal.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_X86_KERNEL 1
#endif

/* C rows r < 6, columns j < 16, = (C if acc) + sum_k a[6k + r] b[16k + j]. */
static void kernel_generic(int64_t K, const float *restrict a, const float *restrict b, float *restrict c,
                           int64_t ldc, bool acc_c)
{
    float acc[LT__UK_MR][LT__UK_NR] = {{0}};
    for (int64_t k = 0; k < K; k++)
        for (int r = 0; r < LT__UK_MR; r++)
            for (int j = 0; j < LT__UK_NR; j++)
                acc[r][j] += a[LT__UK_MR * k + r] * b[LT__UK_NR * k + j];
    for (int r = 0; r < LT__UK_MR; r++)
        for (int j = 0; j < LT__UK_NR; j++)
            c[r * ldc + j] = (acc_c ? c[r * ldc + j] : 0.0f) + acc[r][j];
}

#ifdef HAVE_X86_KERNEL
/* c[0 .. 16) = (c if acc) + (lo, hi). */
__attribute__((target("avx2,fma"), always_inline)) static inline void store_row(float *c, __m256 lo, __m256 hi,
                                                                               bool acc)
{
    if (acc) {
        lo = _mm256_add_ps(_mm256_loadu_ps(c), lo);
        hi = _mm256_add_ps(_mm256_loadu_ps(c + 8), hi);
    }
    _mm256_storeu_ps(c, lo);
    _mm256_storeu_ps(c + 8, hi);
}

__attribute__((target("avx2,fma"))) static void kernel_avx2(int64_t K, const float *restrict a,
                                                            const float *restrict b, float *restrict c, int64_t ldc,
                                                            bool acc)
{
    /* Twelve named accumulators, written out: as an array in a loop over
     * the rows, gcc 12 kept them in registers but also stored all twelve
     * to the stack on every k. */
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    for (int64_t k = 0; k < K; k++, a += LT__UK_MR, b += LT__UK_NR) {
        __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8), x;
        x = _mm256_broadcast_ss(a);
        c00 = _mm256_fmadd_ps(x, b0, c00);
        c01 = _mm256_fmadd_ps(x, b1, c01);
        x = _mm256_broadcast_ss(a + 1);
        c10 = _mm256_fmadd_ps(x, b0, c10);
        c11 = _mm256_fmadd_ps(x, b1, c11);
        x = _mm256_broadcast_ss(a + 2);
        c20 = _mm256_fmadd_ps(x, b0, c20);
        c21 = _mm256_fmadd_ps(x, b1, c21);
        x = _mm256_broadcast_ss(a + 3);
        c30 = _mm256_fmadd_ps(x, b0, c30);
        c31 = _mm256_fmadd_ps(x, b1, c31);
        x = _mm256_broadcast_ss(a + 4);
        c40 = _mm256_fmadd_ps(x, b0, c40);
        c41 = _mm256_fmadd_ps(x, b1, c41);
        x = _mm256_broadcast_ss(a + 5);
        c50 = _mm256_fmadd_ps(x, b0, c50);
        c51 = _mm256_fmadd_ps(x, b1, c51);
    }
    store_row(c, c00, c01, acc);
    store_row(c + ldc, c10, c11, acc);
    store_row(c + 2 * ldc, c20, c21, acc);
    store_row(c + 3 * ldc, c30, c31, acc);
    store_row(c + 4 * ldc, c40, c41, acc);
    store_row(c + 5 * ldc, c50, c51, acc);
}
#endif

typedef void (*kernel_fn)(int64_t, const float *, const float *, float *, int64_t, bool);

/* k is cut into blocks of KC: each block's 6 x KC slice of A stays in L1
 * while the block runs over the B panels, and a long sum (the weight
 * gradient's, over thousands of tiles) rounds as K / KC partial sums of
 * KC terms rather than one chain of K. */
#define KC 256

static int force_generic; /* test hook, see lt__sgemm_packed_force_generic */

static kernel_fn pick_kernel(void)
{
#ifdef HAVE_X86_KERNEL
    static int have = -1; /* every thread that races here stores the same answer */
    int h = __atomic_load_n(&have, __ATOMIC_RELAXED);
    if (h < 0) {
        __builtin_cpu_init();
        h = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
        __atomic_store_n(&have, h, __ATOMIC_RELAXED);
    }
    if (h && !__atomic_load_n(&force_generic, __ATOMIC_RELAXED))
        return kernel_avx2;
#endif
    return kernel_generic;
}

void lt__sgemm_packed_force_generic(bool on) { __atomic_store_n(&force_generic, on ? 1 : 0, __ATOMIC_RELAXED); }

void lt__sgemm_packed(int64_t M, int64_t K, int nbp, const float *ap, const float *bp, float *c, int64_t ldc,
                      bool acc)
{
    kernel_fn kern = pick_kernel();
    for (int64_t i = 0; i < M; i += LT__UK_MR)
        for (int64_t k0 = 0; k0 < K || k0 == 0; k0 += KC) {
            int64_t kc = K - k0 < KC ? K - k0 : KC;
            const float *a = ap + i * K + k0 * LT__UK_MR;
            for (int p = 0; p < nbp; p++)
                kern(kc, a, bp + (int64_t)p * LT__UK_NR * K + k0 * LT__UK_NR, c + i * ldc + p * LT__UK_NR, ldc,
                     acc || k0 > 0);
        }
}
