/*
 * ukernel.c: a packed f32 GEMM for callers that build the packed panels
 * themselves (the fused Winograd convolution in nn/winograd.c writes its
 * transformed tiles straight into B's panel layout, so no pass of its own
 * packs, and nothing zeroes C first: C is stored, not accumulated).
 *
 * The micro-kernel computes a 6 x 16 block of C from a 6-row panel of A
 * and a 16-column panel of B. On x86-64 the CPU is checked at run time
 * (so PORTABLE=1 builds use these too where the CPU has them): with
 * AVX-512F, one 16-float accumulator per row, two panels at a time; else
 * with AVX2 and FMA, twelve 8-float accumulators; elsewhere plain C over
 * the same layout. The two intrinsic kernels compute every element as the
 * same chain of FMAs, so they agree bitwise. Each element of C is the
 * same sequence of additions (KC-term blocks over k, in order) however a
 * caller splits the columns or rows between threads, so results do not
 * depend on that split.
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
/* The same 6 x 16 block with one 16-float accumulator per row, and the
 * 6 x 32 block of two neighbouring B panels (twelve accumulators, as
 * kernel_avx2 has): fewer instructions per FMA, with the broadcasts folded
 * into the FMAs. Every element is the same chain of FMAs over k as in
 * kernel_avx2, so both give bitwise the same C. */
__attribute__((target("avx512f"), always_inline)) static inline void store_row16(float *c, __m512 v, bool acc)
{
    if (acc)
        v = _mm512_add_ps(_mm512_loadu_ps(c), v);
    _mm512_storeu_ps(c, v);
}

__attribute__((target("avx512f"))) static void kernel_avx512(int64_t K, const float *restrict a,
                                                              const float *restrict b, float *restrict c,
                                                              int64_t ldc, bool acc)
{
    __m512 c0 = _mm512_setzero_ps(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0;
    for (int64_t k = 0; k < K; k++, a += LT__UK_MR, b += LT__UK_NR) {
        __m512 b0 = _mm512_loadu_ps(b);
        c0 = _mm512_fmadd_ps(_mm512_set1_ps(a[0]), b0, c0);
        c1 = _mm512_fmadd_ps(_mm512_set1_ps(a[1]), b0, c1);
        c2 = _mm512_fmadd_ps(_mm512_set1_ps(a[2]), b0, c2);
        c3 = _mm512_fmadd_ps(_mm512_set1_ps(a[3]), b0, c3);
        c4 = _mm512_fmadd_ps(_mm512_set1_ps(a[4]), b0, c4);
        c5 = _mm512_fmadd_ps(_mm512_set1_ps(a[5]), b0, c5);
    }
    __m512 rows[LT__UK_MR] = {c0, c1, c2, c3, c4, c5};
    for (int r = 0; r < LT__UK_MR; r++)
        store_row16(c + r * ldc, rows[r], acc);
}

/* Panels b and b + bs side by side: C columns 0 .. 32. */
__attribute__((target("avx512f"))) static void kernel_avx512_x2(int64_t K, const float *restrict a,
                                                                 const float *restrict b, int64_t bs,
                                                                 float *restrict c, int64_t ldc, bool acc)
{
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m512 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    const float *b2 = b + bs;
    /* row r: c_r0 += a[r] b0, c_r1 += a[r] b1 */
#define ROW_X2(r)                                                                                                   \
    x = _mm512_set1_ps(a[r]);                                                                                       \
    c##r##0 = _mm512_fmadd_ps(x, b0, c##r##0);                                                                      \
    c##r##1 = _mm512_fmadd_ps(x, b1, c##r##1)
    for (int64_t k = 0; k < K; k++, a += LT__UK_MR, b += LT__UK_NR, b2 += LT__UK_NR) {
        __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b2), x;
        ROW_X2(0);
        ROW_X2(1);
        ROW_X2(2);
        ROW_X2(3);
        ROW_X2(4);
        ROW_X2(5);
    }
#undef ROW_X2
    __m512 rows[LT__UK_MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
    for (int r = 0; r < LT__UK_MR; r++) {
        store_row16(c + r * ldc, rows[r][0], acc);
        store_row16(c + r * ldc + 16, rows[r][1], acc);
    }
}
#endif

typedef void (*kernel_fn)(int64_t, const float *, const float *, float *, int64_t, bool);

/* k is cut into blocks of KC: each block's 6 x KC slice of A stays in L1
 * while the block runs over the B panels, and a long sum (the weight
 * gradient's, over thousands of tiles) rounds as K / KC partial sums of
 * KC terms rather than one chain of K. */
#define KC 256

static int forced = LT__UK_AUTO; /* test hook, see lt__sgemm_packed_force */

/* The best kernel this CPU runs: LT__UK_AVX512, LT__UK_AVX2 or LT__UK_GENERIC. */
static int cpu_kernel(void)
{
#ifdef HAVE_X86_KERNEL
    static int have = -1; /* every thread that races here stores the same answer */
    int h = __atomic_load_n(&have, __ATOMIC_RELAXED);
    if (h < 0) {
        __builtin_cpu_init();
        h = !(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) ? LT__UK_GENERIC
            : __builtin_cpu_supports("avx512f")                                 ? LT__UK_AVX512
                                                                                : LT__UK_AVX2;
        __atomic_store_n(&have, h, __ATOMIC_RELAXED);
    }
    return h;
#else
    return LT__UK_GENERIC;
#endif
}

int lt__sgemm_packed_force(int kernel)
{
    int best = cpu_kernel();
    if (kernel != LT__UK_AUTO && kernel != LT__UK_GENERIC && kernel > best)
        return -1;
    __atomic_store_n(&forced, kernel, __ATOMIC_RELAXED);
    return 0;
}

void lt__sgemm_packed(int64_t M, int64_t K, int nbp, const float *ap, const float *bp, float *c, int64_t ldc,
                      bool acc)
{
    int which = __atomic_load_n(&forced, __ATOMIC_RELAXED);
    if (which == LT__UK_AUTO)
        which = cpu_kernel();
    kernel_fn kern = kernel_generic;
#ifdef HAVE_X86_KERNEL
    if (which == LT__UK_AVX2)
        kern = kernel_avx2;
    else if (which == LT__UK_AVX512)
        kern = kernel_avx512;
#endif
    for (int64_t i = 0; i < M; i += LT__UK_MR)
        for (int64_t k0 = 0; k0 < K || k0 == 0; k0 += KC) {
            int64_t kc = K - k0 < KC ? K - k0 : KC;
            const float *a = ap + i * K + k0 * LT__UK_MR;
            int p = 0;
#ifdef HAVE_X86_KERNEL
            if (which == LT__UK_AVX512)
                for (; p + 1 < nbp; p += 2)
                    kernel_avx512_x2(kc, a, bp + (int64_t)p * LT__UK_NR * K + k0 * LT__UK_NR, LT__UK_NR * K,
                                     c + i * ldc + p * LT__UK_NR, ldc, acc || k0 > 0);
#endif
            for (; p < nbp; p++)
                kern(kc, a, bp + (int64_t)p * LT__UK_NR * K + k0 * LT__UK_NR, c + i * ldc + p * LT__UK_NR, ldc,
                     acc || k0 > 0);
        }
}
