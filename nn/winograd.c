/*
 * winograd.c: Winograd F(m x m, 3x3) convolution, m = 2 or 4, for f32 3x3
 * convolutions with stride 1 and padding 1 (conv.c chooses when).
 *
 * Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks" (2016).
 * The output is cut into m x m tiles; tile t reads the a x a input patch
 * d_t (a = m + 2; rows m i - 1 .. m i + m, zero outside). With the a x a,
 * a x 3 and m x a matrices B^T, G and A^T below,
 *
 *   y_t = A^T [ (G g G^T) .* (B^T d_t B) ] A,
 *
 * a^2 products per tile and channel pair where the direct form has 9 m^2;
 * summed over channels, the a^2 products are a^2 GEMMs
 *   M[xi] (O,T) = U[xi] (O,C) @ V[xi] (C,T),  U = G g G^T, V = B^T d B.
 * The input gradient of this convolution is the same kind of convolution
 * of the output gradient with the kernels rotated by 180 degrees and O, C
 * swapped; the weight gradient follows from y_t's formula:
 *   dg = G^T [ sum_t (A gy_t A^T) .* (B^T d_t B) ] G,
 * a^2 GEMMs dU[xi] (O,C) += Z[xi] (O,T) @ V[xi]^T with Z = A gy A^T.
 *
 * F(2x2, 3x3), interpolation points 0, 1, -1, inf (16 products for 4
 * outputs, 2.25x fewer than direct):
 *   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
 *   G   = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]
 *   A^T = [1 1 1 0; 0 1 -1 -1]
 * Its transforms are exact in binary (halves).
 *
 * F(4x4, 3x3), points 0, 1, -1, 2, -2, inf (36 products for 16 outputs,
 * 4x fewer than direct):
 *   B^T = [4  0 -5  0 1 0;  0 -4 -4  1 1 0;  0 4 -4 -1 1 0;
 *          0 -2 -1  2 1 0;  0  2 -1 -2 1 0;  0 4  0 -5 0 1]
 *   G   = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6;
 *          1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1]
 *   A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]
 * Its transforms scale values by up to 8 and round (1/6), so its f32
 * results carry a few times F(2x2)'s rounding error: still ~1e-6 relative
 * to the output's magnitude on ResNet-scale inputs (tests/test_nn.c
 * measures both against a float64 direct convolution).
 *
 * The products run on lt__sgemm_packed (tensor/ukernel.c). Forward and
 * input gradient are fused per block of tiles (wino_apply); the weight
 * gradient transforms chunks of images whose size is shape-only, and
 * where its a^2 planes of dU would be large, goes from products to
 * kernel gradients per block of kernels (weight_block_m). How the
 * work is split between threads never changes an element's sequence of
 * additions, so results do not depend on the thread count.
 */
#include "nn_internal.h"
#include "../tensor/tensor_internal.h"

#include <stdlib.h>
#include <string.h>

#if defined(__AVX512F__) && defined(__AVX512VL__)
#include <immintrin.h>
#define WINO_AVX512 1
#endif

/* Whether the transforms gather with gather16 (tests switch it off to
 * compare with the scalar copy; see lt__wino_vector_gathers). */
#ifdef WINO_AVX512
static int vec_gathers = 1;
#else
static int vec_gathers = 0;
#endif


int lt__wino_vector_gathers(int on)
{
#ifndef WINO_AVX512
    if (on)
        return -1;
#endif
    return __atomic_exchange_n(&vec_gathers, on ? 1 : 0, __ATOMIC_RELAXED);
}

/* Largest tile side a = m + 2. */
#define WA_MAX 6

/* Distance between the a^2 planes of a transformed tensor of n elements per
 * plane: n plus 128 bytes, so that the planes (often a power of two apart)
 * do not fall into the same cache sets when a transform writes all of them. */
static inline int64_t wino_ps(int64_t n) { return n + 32; }

/* ---- one-dimensional transforms: o[i*os] from d[j*ds] ---- */

/* o = B^T d (a inputs, a outputs). */
static inline __attribute__((always_inline)) void bt_1d(int m, const float *d, int ds, float *o, int os)
{
    if (m == 2) {
        o[0] = d[0] - d[2 * ds];
        o[os] = d[ds] + d[2 * ds];
        o[2 * os] = d[2 * ds] - d[ds];
        o[3 * os] = d[ds] - d[3 * ds];
        return;
    }
    float d0 = d[0], d1 = d[ds], d2 = d[2 * ds], d3 = d[3 * ds], d4 = d[4 * ds], d5 = d[5 * ds];
    o[0] = 4.0f * d0 - 5.0f * d2 + d4;
    o[os] = (d3 + d4) - 4.0f * (d1 + d2);
    o[2 * os] = (d4 - d3) + 4.0f * (d1 - d2);
    o[3 * os] = (d4 - d2) + 2.0f * (d3 - d1);
    o[4 * os] = (d4 - d2) - 2.0f * (d3 - d1);
    o[5 * os] = 4.0f * d1 - 5.0f * d3 + d5;
}

/* o = G k (3 inputs, a outputs). */
static inline __attribute__((always_inline)) void g_1d(int m, const float *k, int ks, float *o, int os)
{
    float k0 = k[0], k1 = k[ks], k2 = k[2 * ks];
    if (m == 2) {
        o[0] = k0;
        o[os] = 0.5f * (k0 + k1 + k2);
        o[2 * os] = 0.5f * (k0 - k1 + k2);
        o[3 * os] = k2;
        return;
    }
    o[0] = 0.25f * k0;
    o[os] = (k0 + k1 + k2) * (-1.0f / 6.0f);
    o[2 * os] = (k0 - k1 + k2) * (-1.0f / 6.0f);
    o[3 * os] = (k0 + 2.0f * k1 + 4.0f * k2) * (1.0f / 24.0f);
    o[4 * os] = (k0 - 2.0f * k1 + 4.0f * k2) * (1.0f / 24.0f);
    o[5 * os] = k2;
}

/* o = A^T v (a inputs, m outputs). */
static inline __attribute__((always_inline)) void at_1d(int m, const float *v, int vs, float *o, int os)
{
    if (m == 2) {
        o[0] = v[0] + v[vs] + v[2 * vs];
        o[os] = v[vs] - v[2 * vs] - v[3 * vs];
        return;
    }
    float v0 = v[0], v1 = v[vs], v2 = v[2 * vs], v3 = v[3 * vs], v4 = v[4 * vs], v5 = v[5 * vs];
    float sp = v1 + v2, sm = v1 - v2, tp = v3 + v4, tm = v3 - v4;
    o[0] = v0 + sp + tp;
    o[os] = sm + 2.0f * tm;
    o[2 * os] = sp + 4.0f * tp;
    o[3 * os] = sm + 8.0f * tm + v5;
}

/* o = A e (m inputs, a outputs). */
static inline __attribute__((always_inline)) void a_1d(int m, const float *e, int es, float *o, int os)
{
    if (m == 2) {
        o[0] = e[0];
        o[os] = e[0] + e[es];
        o[2 * os] = e[0] - e[es];
        o[3 * os] = -e[es];
        return;
    }
    float e0 = e[0], e1 = e[es], e2 = e[2 * es], e3 = e[3 * es];
    float ev = e0 + e2, od = e1 + e3, ev4 = e0 + 4.0f * e2, od2 = 2.0f * e1 + 8.0f * e3;
    o[0] = e0;
    o[os] = ev + od;
    o[2 * os] = ev - od;
    o[3 * os] = ev4 + od2;
    o[4 * os] = ev4 - od2;
    o[5 * os] = e3;
}

/* o = G^T u (a inputs, 3 outputs). */
static inline __attribute__((always_inline)) void gt_1d(int m, const float *u, int us, float *o, int os)
{
    if (m == 2) {
        float h = 0.5f * (u[us] + u[2 * us]);
        o[0] = u[0] + h;
        o[os] = 0.5f * (u[us] - u[2 * us]);
        o[2 * os] = h + u[3 * us];
        return;
    }
    float u0 = u[0], u1 = u[us], u2 = u[2 * us], u3 = u[3 * us], u4 = u[4 * us], u5 = u[5 * us];
    float s12 = u1 + u2, d12 = u1 - u2, s34 = u3 + u4, d34 = u3 - u4;
    o[0] = 0.25f * u0 - s12 * (1.0f / 6.0f) + s34 * (1.0f / 24.0f);
    o[os] = d34 * (1.0f / 12.0f) - d12 * (1.0f / 6.0f);
    o[2 * os] = (s34 - s12) * (1.0f / 6.0f) + u5;
}

/* ---- two-dimensional transforms over whole tensors ---- */

/* V[xi][c][t] = (B^T d B)[xi] for the a x a patch of image n0 + t / tpi,
 * channel c, of x (.., C, H, W). */
/* The always-inline bodies below each do one iteration of their
 * transform's parallel loop, which DEF_WINO_M instantiates for m = 2 and 4:
 * an OpenMP region inside an inlined function would be outlined before
 * inlining, with m a run-time value. */

/* The data transforms work on WT consecutive tiles of one channel at a
 * time (tiles t = n tpi + ti tw + tj, across rows and images), with the
 * tile index innermost: the patches are first copied apart, element (i, j)
 * of tile t to d[i][j][t], so that both passes of the separable transform
 * (down the columns, then along the rows) are loops over t with unit
 * stride, which the compiler vectorizes one tile per SIMD lane, and each
 * plane of the result is read or written WT floats at a time. */
#define WT 16

/* dst[0 .. nt) = src[0 .. nt): a fixed-length copy in the common nt = WT
 * case, which compiles to a few vector moves (a loop of unknown length
 * becomes a memcpy call, expensive at 64 bytes). */
static inline void copy_chunk(float *restrict dst, const float *restrict src, int nt)
{
    if (nt == WT) {
        for (int t = 0; t < WT; t++)
            dst[t] = src[t];
    } else {
        for (int t = 0; t < nt; t++)
            dst[t] = src[t];
    }
}

static int64_t tiles_per_image(int m, int64_t H, int64_t W) { return ((H + m - 1) / m) * ((W + m - 1) / m); }

/* Where tile t of a chunk starts: its image (in images from the chunk's
 * first), and its top-left output pixel; tile_next steps to tile t + 1
 * without dividing (two 64-bit divisions per tile showed in profiles). */
typedef struct tile_cur {
    int64_t n, h, w;
} tile_cur;

static inline tile_cur tile_at(int m, int64_t t, int64_t tpi, int64_t tw)
{
    int64_t k = t % tpi;
    return (tile_cur){t / tpi, m * (k / tw), m * (k % tw)};
}

static inline void tile_next(int m, tile_cur *p, int64_t H, int64_t W)
{
    if ((p->w += m) < W)
        return;
    p->w = 0;
    if ((p->h += m) < H)
        return;
    p->h = 0;
    p->n++;
}

/* Prefetch the rows of channel c of x (.., C, H, W) that tiles t0 ..
 * t0 + nt - 1 (of images n0 ..) read: most tiles of small images are border
 * tiles whose patches are gathered a float at a time, and each channel's
 * plane is a new short stream the hardware prefetcher does not catch in
 * time (in profiles, most of the fused transforms' samples sat on the
 * first load of a patch row). */
static inline void prefetch_rows(int m, const float *x, int64_t C, int64_t H, int64_t W, int64_t n0, int64_t c,
                                 int64_t t0, int64_t nt)
{
    int64_t tw = (W + m - 1) / m, tpi = ((H + m - 1) / m) * tw, t1 = t0 + nt - 1;
    for (int64_t n = t0 / tpi; n <= t1 / tpi; n++) {
        int64_t k0 = n == t0 / tpi ? t0 % tpi : 0, k1 = n == t1 / tpi ? t1 % tpi : tpi - 1;
        int64_t r0 = m * (k0 / tw) - 1, r1 = m * (k1 / tw) + m + 1;
        r0 = r0 < 0 ? 0 : r0;
        r1 = r1 > H ? H : r1;
        const char *p = (const char *)(x + (((n0 + n) * C + c) * H + r0) * W);
        const char *e = (const char *)(x + (((n0 + n) * C + c) * H + r1) * W);
        for (; p < e; p += 64)
            __builtin_prefetch(p, 0, 3);
    }
}

#ifdef WINO_AVX512
/* d[i][j][t] (at d + (i ld + j) WT, 64-byte aligned, i, j < s <= 8) =
 * element (p.h - halo + i, p.w - halo + j) of tile t's plane (channel c of
 * its image, of x (.., C, H, W) from image n0), zero outside the plane and
 * for t >= nt; p is tile 0. Each patch row is one masked 8-float load,
 * and each patch row of the 16 tiles one 16 x 8 transpose in registers:
 * the scalar copy it replaces, with its border cases, was a fifth of the
 * fused convolution's time. A patch that starts left of its plane (w0 =
 * -1) loads from one float before the row with lane 0 masked off: masked
 * lanes are never read (nor fault), and the address is formed as an
 * integer (GCC's flat conversion), not by pointer arithmetic outside the
 * array. (Expanding loads from the row start, tried first, were 2.6x
 * slower per load and 2% of r18_train_32's samples.) */
static inline __attribute__((always_inline)) void gather16(int s, int halo, const float *x, int64_t C, int64_t H,
                                                            int64_t W, int64_t n0, int64_t c, tile_cur p, int nt,
                                                            float *d, int ld)
{
    uintptr_t row0[WT]; /* address of the patch's first column in plane row 0 */
    int64_t h0[WT];
    __mmask8 cm[WT];
    const int m = s - 2 * halo;
    for (int t = 0; t < WT; t++) {
        if (t >= nt) {
            row0[t] = (uintptr_t)x;
            h0[t] = -(int64_t)s; /* no row valid */
            cm[t] = 0;
            continue;
        }
        int64_t w0 = p.w - halo;
        int jlo = w0 < 0 ? (int)-w0 : 0, jhi = W - w0 < s ? (int)(W - w0) : s;
        h0[t] = p.h - halo;
        cm[t] = (__mmask8)(((1u << jhi) - 1) & ~((1u << jlo) - 1));
        row0[t] = (uintptr_t)(x + ((n0 + p.n) * C + c) * H * W) + (uintptr_t)(w0 * (int64_t)sizeof(float));
        tile_next(m, &p, H, W);
    }
    const __m512i lo = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27);
    const __m512i hi = _mm512_setr_epi32(4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31);
    for (int i = 0; i < s; i++) {
        __m256 r[WT];
        for (int t = 0; t < WT; t++) {
            int64_t h = h0[t] + i;
            bool ok = h >= 0 && h < H;
            __mmask8 k = ok ? cm[t] : 0;
            uintptr_t q = ok ? row0[t] + (uintptr_t)(h * W * (int64_t)sizeof(float)) : (uintptr_t)x;
            r[t] = _mm256_maskz_loadu_ps(k, (const void *)q);
        }
        __m512 z[8], u[8], v[8];
        for (int k = 0; k < 8; k++)
            z[k] = _mm512_insertf32x8(_mm512_castps256_ps512(r[k]), r[k + 8], 1);
        for (int k = 0; k < 8; k += 2) {
            u[k] = _mm512_unpacklo_ps(z[k], z[k + 1]);
            u[k + 1] = _mm512_unpackhi_ps(z[k], z[k + 1]);
        }
        for (int k = 0; k < 8; k += 4) {
            v[k] = _mm512_shuffle_ps(u[k], u[k + 2], 0x44);
            v[k + 1] = _mm512_shuffle_ps(u[k], u[k + 2], 0xEE);
            v[k + 2] = _mm512_shuffle_ps(u[k + 1], u[k + 3], 0x44);
            v[k + 3] = _mm512_shuffle_ps(u[k + 1], u[k + 3], 0xEE);
        }
        for (int j = 0; j < 4 && j < s; j++)
            _mm512_store_ps(d + (i * ld + j) * WT, _mm512_permutex2var_ps(v[j], lo, v[j + 4]));
        for (int j = 4; j < s; j++)
            _mm512_store_ps(d + (i * ld + j) * WT, _mm512_permutex2var_ps(v[j - 4], hi, v[j]));
    }
}
#endif

/* One chunk (channel c, tiles t0 .. t0 + WT - 1) of V[xi][c][t] =
 * (B^T d B)[xi] for the a x a patch of tile t of images n0 .., channel c,
 * of x (.., C, H, W): plane xi's values to v + xi xs. With pad,
 * a chunk past the last tile is filled with zeros to WT values. */
static inline __attribute__((always_inline)) void input_m(int m, const float *x, int64_t C, int64_t H, int64_t W,
                                                           int64_t n0, int64_t nb, int64_t c, int64_t t0, float *v,
                                                           int64_t xs, bool pad)
{
    const int a = m + 2;
    int64_t tw = (W + m - 1) / m, tpi = ((H + m - 1) / m) * tw, T = nb * tpi;
    int nt = T - t0 < WT ? (int)(T - t0) : WT;
    _Alignas(64) float d[WA_MAX][WA_MAX][WT];
    float r[WA_MAX][WA_MAX][WT];
    int nr = nt; /* real tiles; with pad, nt = WT and the rest are zero */
    if (pad && nt < WT) {
        for (int i = 0; i < a; i++)
            for (int j = 0; j < a; j++)
                for (int t = nt; t < WT; t++)
                    d[i][j][t] = 0.0f;
        nt = WT;
    }
    tile_cur p = tile_at(m, t0, tpi, tw);
#ifdef WINO_AVX512
    if (__atomic_load_n(&vec_gathers, __ATOMIC_RELAXED)) {
        gather16(a, 1, x, C, H, W, n0, c, p, nr, &d[0][0][0], WA_MAX);
        nr = 0;
    }
#endif
    for (int t = 0; t < nr; t++, tile_next(m, &p, H, W)) {
        int64_t h0 = p.h - 1, w0 = p.w - 1;
        const float *xp = x + ((n0 + p.n) * C + c) * H * W; /* index from h0 W + w0, which may be < 0 */
        int64_t off = h0 * W + w0;
        if (h0 >= 0 && w0 >= 0 && h0 + a <= H && w0 + a <= W) {
            for (int i = 0; i < a; i++)
                for (int j = 0; j < a; j++)
                    d[i][j][t] = xp[off + i * W + j];
        } else { /* zeros, then the part inside the image */
            int ilo = h0 < 0 ? (int)-h0 : 0, jlo = w0 < 0 ? (int)-w0 : 0;
            int ihi = H - h0 < a ? (int)(H - h0) : a, jhi = W - w0 < a ? (int)(W - w0) : a;
            for (int i = 0; i < a; i++)
                for (int j = 0; j < a; j++)
                    d[i][j][t] = 0.0f;
            for (int i = ilo; i < ihi; i++)
                for (int j = jlo; j < jhi; j++)
                    d[i][j][t] = xp[off + i * W + j];
        }
    }
    for (int j = 0; j < a; j++)
#pragma omp simd
        for (int t = 0; t < nt; t++)
            bt_1d(m, &d[0][j][t], WA_MAX * WT, &r[0][j][t], WA_MAX * WT);
    for (int i = 0; i < a; i++) {
#pragma omp simd
        for (int t = 0; t < nt; t++)
            bt_1d(m, &r[i][0][t], WT, &d[i][0][t], WT);
        for (int j = 0; j < a; j++)
            copy_chunk(v + (i * a + j) * xs, d[i][j], nt);
    }
}

/* One chunk (channel o, tiles t0 .. t0 + WT - 1) of y[n0 + n][o] tiles =
 * A^T M A (+ bias), clipped to (H, W), plane xi of M's WT values at
 * q + xi xs. */
static inline __attribute__((always_inline)) void output_m(int m, const float *q, int64_t xs, const float *bias,
                                                            float *y, int64_t O, int64_t H, int64_t W, int64_t n0,
                                                            int64_t nb, int64_t o, int64_t t0)
{
    const int a = m + 2;
    int64_t tw = (W + m - 1) / m, tpi = ((H + m - 1) / m) * tw, T = nb * tpi;
    int nt = T - t0 < WT ? (int)(T - t0) : WT;
    float bo = bias ? bias[o] : 0.0f;
    float v[WA_MAX][WA_MAX][WT], r[4][WA_MAX][WT], e[4][4][WT];
    for (int i = 0; i < a; i++)
        for (int j = 0; j < a; j++)
            copy_chunk(v[i][j], q + (i * a + j) * xs, nt);
    for (int j = 0; j < a; j++)
#pragma omp simd
        for (int t = 0; t < nt; t++)
            at_1d(m, &v[0][j][t], WA_MAX * WT, &r[0][j][t], WA_MAX * WT);
    for (int i = 0; i < m; i++)
#pragma omp simd
        for (int t = 0; t < nt; t++)
            at_1d(m, &r[i][0][t], WT, &e[i][0][t], WT);
    tile_cur p = tile_at(m, t0, tpi, tw);
    for (int t = 0; t < nt; t++, tile_next(m, &p, H, W)) {
        float *yp = y + ((n0 + p.n) * O + o) * H * W + p.h * W + p.w;
        int ih = H - p.h < m ? (int)(H - p.h) : m, jh = W - p.w < m ? (int)(W - p.w) : m;
        if (ih == m && jh == m) {
            for (int i = 0; i < m; i++)
                for (int j = 0; j < m; j++)
                    yp[i * W + j] = e[i][j][t] + bo;
        } else {
            for (int i = 0; i < ih; i++)
                for (int j = 0; j < jh; j++)
                    yp[i * W + j] = e[i][j][t] + bo;
        }
    }
}

/* One chunk (channel o, tiles t0 .. t0 + WT - 1) of Z[xi][o][t] =
 * (A gy_t A^T)[xi], gy_t the m x m tile t of gy (zero outside): plane
 * xi's values to zp + xi xs. */
static inline __attribute__((always_inline)) void grad_out_m(int m, const float *gy, int64_t O, int64_t H, int64_t W,
                                                              int64_t n0, int64_t nb, int64_t o, int64_t t0,
                                                              float *zp, int64_t xs)
{
    const int a = m + 2;
    int64_t tw = (W + m - 1) / m, tpi = ((H + m - 1) / m) * tw, T = nb * tpi;
    int nt = T - t0 < WT ? (int)(T - t0) : WT;
    _Alignas(64) float e[4][4][WT];
    float r[WA_MAX][4][WT], z[WA_MAX][WA_MAX][WT];
    tile_cur p = tile_at(m, t0, tpi, tw);
    int ng = nt;
#ifdef WINO_AVX512
    if (__atomic_load_n(&vec_gathers, __ATOMIC_RELAXED)) {
        gather16(m, 0, gy, O, H, W, n0, o, p, nt, &e[0][0][0], 4);
        ng = 0;
    }
#endif
    for (int t = 0; t < ng; t++, tile_next(m, &p, H, W)) {
        const float *gp = gy + ((n0 + p.n) * O + o) * H * W + p.h * W + p.w;
        int ih = H - p.h < m ? (int)(H - p.h) : m, jh = W - p.w < m ? (int)(W - p.w) : m;
        if (ih == m && jh == m) {
            for (int i = 0; i < m; i++)
                for (int j = 0; j < m; j++)
                    e[i][j][t] = gp[i * W + j];
        } else {
            for (int i = 0; i < m; i++)
                for (int j = 0; j < m; j++)
                    e[i][j][t] = i < ih && j < jh ? gp[i * W + j] : 0.0f;
        }
    }
    for (int j = 0; j < m; j++)
#pragma omp simd
        for (int t = 0; t < nt; t++)
            a_1d(m, &e[0][j][t], 4 * WT, &r[0][j][t], 4 * WT);
    for (int i = 0; i < a; i++) {
#pragma omp simd
        for (int t = 0; t < nt; t++)
            a_1d(m, &r[i][0][t], WT, &z[i][0][t], WT);
        for (int j = 0; j < a; j++)
            copy_chunk(zp + (i * a + j) * xs, z[i][j], nt);
    }
}

/* How many columns ahead the rotated kernel transform prefetches. */
#define KPF 8

/* One chunk (entries q0 .. min(q0 + WT, qend) - 1) of the kernel
 * transform U[xi] = (G k G^T)[xi] as an R x K matrix packed for
 * lt__sgemm_packed (rows padded with zero kernels to R6, a multiple of
 * LT__UK_MR): R = O and K = C with k = w[o][c] at (o, c), or with rot
 * R = C and K = O with w[o][c] rotated by 180 degrees at (c, o). Entry q0
 * of plane xi goes to U + xi xs. */
static inline __attribute__((always_inline)) void kernel_m(int m, const float *w, int64_t O, int64_t C, bool rot,
                                                            int64_t q0, int64_t qend, float *U, int64_t xs)
{
    const int a = m + 2;
    int64_t R = rot ? C : O, K = rot ? O : C;
    int nt = qend - q0 < WT ? (int)(qend - q0) : WT;
    float g[3][3][WT], r[WA_MAX][3][WT], q[WA_MAX][WA_MAX][WT];
    /* (row, col) of entry q0, then stepped along without dividing */
    int64_t in = q0 % (LT__UK_MR * K), pr = in % LT__UK_MR;
    int64_t row = q0 / (LT__UK_MR * K) * LT__UK_MR + pr, col = in / LT__UK_MR;
    for (int t = 0; t < nt; t++) {
        if (row >= R) {
            for (int i = 0; i < 3; i++)
                for (int j = 0; j < 3; j++)
                    g[i][j][t] = 0.0f;
        } else if (rot) {
            const float *k = w + (col * C + row) * 9;
            if (pr == 0 && col + KPF < K) {
                /* Successive columns' kernels are C 9 floats apart, across
                 * pages, where the hardware prefetchers do not follow: the
                 * panel's 6 kernels (54 floats) KPF columns ahead. ResNet-18's
                 * layer4 input gradient at 2x2: 1.09-1.13x (4 to 32 ahead
                 * alike), whole r18_train_64 steps 1.03x. */
                const char *f = (const char *)(k + KPF * C * 9);
                for (int b = 0; b < 54 * 4 + 64; b += 64)
                    __builtin_prefetch(f + b, 0, 3);
            }
            for (int i = 0; i < 3; i++)
                for (int j = 0; j < 3; j++)
                    g[i][j][t] = k[(2 - i) * 3 + (2 - j)];
        } else {
            const float *k = w + (row * C + col) * 9;
            for (int i = 0; i < 3; i++)
                for (int j = 0; j < 3; j++)
                    g[i][j][t] = k[i * 3 + j];
        }
        if (++pr < LT__UK_MR) {
            row++;
        } else {
            pr = 0;
            row -= LT__UK_MR - 1;
            if (++col == K) {
                col = 0;
                row += LT__UK_MR;
            }
        }
    }
    for (int j = 0; j < 3; j++)
#pragma omp simd
        for (int t = 0; t < nt; t++)
            g_1d(m, &g[0][j][t], 3 * WT, &r[0][j][t], 3 * WT);
    for (int i = 0; i < a; i++) {
#pragma omp simd
        for (int t = 0; t < nt; t++)
            g_1d(m, &r[i][0][t], WT, &q[i][0][t], WT);
        for (int j = 0; j < a; j++)
            copy_chunk(U + (i * a + j) * xs, q[i][j], nt);
    }
}

/* gw[t][i][j] = (G^T u_t G)[i][j] for t < nt, u_t = u[.][.][t] (9 floats
 * per kernel at gw, consecutive kernels). */
static inline __attribute__((always_inline)) void kernel_grad_core(int m, float (*u)[WA_MAX][WT], int nt, float *gw)
{
    const int a = m + 2;
    float r[3][WA_MAX][WT], k[3][3][WT];
    for (int j = 0; j < a; j++)
#pragma omp simd
        for (int t = 0; t < nt; t++)
            gt_1d(m, &u[0][j][t], WA_MAX * WT, &r[0][j][t], WA_MAX * WT);
    for (int i = 0; i < 3; i++)
#pragma omp simd
        for (int t = 0; t < nt; t++)
            gt_1d(m, &r[i][0][t], WT, &k[i][0][t], WT);
    for (int t = 0; t < nt; t++)
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++)
                gw[t * 9 + i * 3 + j] = k[i][j][t];
}

/* One chunk (kernels oc0 .. oc0 + WT - 1 of the O C) of gw[o][c] =
 * G^T dU G, entry (o, c) of plane xi of dU at dU + xi xs + o ld + c. */
static inline __attribute__((always_inline)) void weight_grad_m(int m, const float *dU, int64_t xs, int64_t ld,
                                                                 float *gw, int64_t O, int64_t C, int64_t oc0)
{
    const int a = m + 2;
    int64_t n = O * C;
    int nt = n - oc0 < WT ? (int)(n - oc0) : WT;
    float u[WA_MAX][WA_MAX][WT];
    if (ld == C) {
        for (int i = 0; i < a; i++)
            for (int j = 0; j < a; j++)
                copy_chunk(u[i][j], dU + (i * a + j) * xs + oc0, nt);
    } else {
        for (int t = 0, o = (int)(oc0 / C), c = (int)(oc0 % C); t < nt; t++) {
            for (int i = 0; i < a; i++)
                for (int j = 0; j < a; j++)
                    u[i][j][t] = dU[(i * a + j) * xs + o * ld + c];
            if (++c == C) {
                c = 0;
                o++;
            }
        }
    }
    kernel_grad_core(m, u, nt, gw + oc0 * 9);
}

/* The fused weight gradient's block width, in LT__UK_NR-column panels. */
#define WG_NP 4

/* One block of the fused weight gradient: kernels o0 .. o0 + LT__UK_MR - 1
 * (those < O) by channels c0 .. c0 + np LT__UK_NR - 1 (those < C). Each
 * plane's products dU[xi] = Z[xi] V[xi]^T for the block go to buf (a^2
 * planes of LT__UK_MR x np LT__UK_NR), straight from Z's row panel and V's
 * column panels (lt__wino_bwd_weight's layouts, T tiles, plane strides zxs
 * and vxs), then G^T dU G of each kernel to gw: dU is never written out
 * whole. Each product is the same sum as lt__sgemm_packed's over all rows
 * and columns. */
static inline __attribute__((always_inline)) void weight_block_m(int m, const float *Z, int64_t zxs, const float *V,
                                                                  int64_t vxs, int64_t T, float *gw, int64_t O,
                                                                  int64_t C, int64_t o0, int64_t c0, int np,
                                                                  float *buf)
{
    const int a = m + 2, P = a * a, ld = np * LT__UK_NR, bxs = LT__UK_MR * ld;
    for (int xi = 0; xi < P; xi++)
        lt__sgemm_packed(LT__UK_MR, T, np, Z + xi * zxs + o0 * T, V + xi * vxs + c0 * T, buf + xi * bxs, ld, false);
    float u[WA_MAX][WA_MAX][WT];
    for (int r = 0; r < LT__UK_MR && o0 + r < O; r++)
        for (int q = 0; q < np && c0 + q * WT < C; q++) {
            int64_t c = c0 + q * WT;
            int nt = C - c < WT ? (int)(C - c) : WT;
            for (int i = 0; i < a; i++)
                for (int j = 0; j < a; j++)
                    copy_chunk(u[i][j], buf + (i * a + j) * bxs + r * ld + q * WT, nt);
            kernel_grad_core(m, u, nt, gw + ((o0 + r) * C + c) * 9);
        }
}

/* The transforms' parallel loops, for each tile size. The weights are
 * transformed again on every call: they change in place at every
 * optimizer step and storage has no version counter to key a cache on.
 * Every tile's and kernel's arithmetic is independent of the chunking and
 * the thread split. */
static int64_t round_mr(int64_t n) { return (n + LT__UK_MR - 1) / LT__UK_MR * LT__UK_MR; }
static int64_t round_nr(int64_t n) { return (n + LT__UK_NR - 1) / LT__UK_NR * LT__UK_NR; }

/* The weight gradient's transforms write the packed layouts, where a
 * tile's values for a panel of pw consecutive channels (LT__UK_NR for V,
 * LT__UK_MR for Z) are adjacent: each iteration transforms one chunk of WT
 * tiles of all pw channels of a panel into buf (plane xi, channel, tile),
 * then writes each plane's pw x nt block out as nt runs of pw floats,
 * whole cache lines, where one channel at a time scattered single floats
 * pw apart (layer1 at 56x56, b8: the two transforms took about 2/3 of the
 * weight gradient). Channels past the last (the panel padding) are
 * zeros. */
#define WBUF (WA_MAX * WA_MAX * LT__UK_NR * WT)
static inline void panel_out(int P, const float *buf, int pw, int nt, float *out, int64_t xs)
{
    for (int xi = 0; xi < P; xi++)
        for (int t = 0; t < nt; t++) {
            const float *src = buf + xi * pw * WT + t;
            float *dst = out + xi * xs + t * pw;
            if (pw == LT__UK_NR) {
                for (int c = 0; c < LT__UK_NR; c++)
                    dst[c] = src[c * WT];
            } else {
                for (int c = 0; c < LT__UK_MR; c++)
                    dst[c] = src[c * WT];
            }
        }
}

/* One iteration: the panel pn of pw channels (of nch) of x (input
 * transform, V) or of gy (gout: output-gradient transform, Z), tiles t0 ..
 * t0 + WT - 1 of T, into out's packed layout, planes xs apart. */
static inline __attribute__((always_inline)) void panel_item(int m, bool gout, const float *src, int64_t nch,
                                                              int64_t H, int64_t W, int64_t n0, int64_t nb,
                                                              int64_t T, int64_t pn, int64_t t0, float *out,
                                                              int64_t xs)
{
    const int pw = gout ? LT__UK_MR : LT__UK_NR, P = (m + 2) * (m + 2);
    int nt = T - t0 < WT ? (int)(T - t0) : WT;
    float buf[WBUF];
    for (int ci = 0; ci < pw; ci++) {
        int64_t c = pn * pw + ci;
        if (c + 1 < nch && ci + 1 < pw)
            prefetch_rows(m, src, nch, H, W, n0, c + 1, t0, nt);
        if (c >= nch)
            for (int xi = 0; xi < P; xi++)
                memset(buf + (xi * pw + ci) * WT, 0, sizeof(float) * WT);
        else if (gout)
            grad_out_m(m, src, nch, H, W, n0, nb, c, t0, buf + ci * WT, pw * WT);
        else
            input_m(m, src, nch, H, W, n0, nb, c, t0, buf + ci * WT, pw * WT, false);
    }
    panel_out(P, buf, pw, nt, out + (pn * T + t0) * pw, xs);
}

#define DEF_WINO_M(M)                                                                                               \
    static void input_##M(const float *x, float *V, int64_t C, int64_t H, int64_t W, int64_t n0, int64_t nb)      \
    {                                                                                                               \
        int64_t T = nb * tiles_per_image(M, H, W), nc = (T + WT - 1) / WT, C16 = round_nr(C);                     \
        _Pragma("omp parallel for schedule(static)") for (int64_t it = 0; it < C16 / LT__UK_NR * nc; it++)        \
            panel_item(M, false, x, C, H, W, n0, nb, T, it / nc, it % nc * WT, V, wino_ps(C16 * T));                \
    }                                                                                                               \
    static void grad_out_##M(const float *gy, float *Z, int64_t O, int64_t H, int64_t W, int64_t n0, int64_t nb)  \
    {                                                                                                               \
        int64_t T = nb * tiles_per_image(M, H, W), nc = (T + WT - 1) / WT, O6 = round_mr(O);                      \
        _Pragma("omp parallel for schedule(static)") for (int64_t it = 0; it < O6 / LT__UK_MR * nc; it++)         \
            panel_item(M, true, gy, O, H, W, n0, nb, T, it / nc, it % nc * WT, Z, wino_ps(O6 * T));                 \
    }                                                                                                               \
    static void weight_##M(const float *w, float *U, int64_t O, int64_t C, bool rot, int64_t R6)                  \
    {                                                                                                               \
        int64_t n = R6 * (rot ? O : C), nc = (n + WT - 1) / WT;                                                     \
        _Pragma("omp parallel for schedule(static)") for (int64_t ck = 0; ck < nc; ck++)                          \
            kernel_m(M, w, O, C, rot, ck * WT, n, U + ck * WT, wino_ps(n));                                         \
    }                                                                                                               \
    static void weight_grad_##M(const float *dU, int64_t xs, int64_t ld, float *gw, int64_t O, int64_t C)          \
    {                                                                                                               \
        int64_t nc = (O * C + WT - 1) / WT;                                                                         \
        _Pragma("omp parallel for schedule(static)") for (int64_t ck = 0; ck < nc; ck++)                          \
            weight_grad_m(M, dU, xs, ld, gw, O, C, ck * WT);                                                        \
    }                                                                                                               \
    static void weight_blocks_##M(const float *Z, int64_t zxs, const float *V, int64_t vxs, int64_t T, float *gw, \
                                  int64_t O, int64_t C, float *buf, int64_t per)                                    \
    {                                                                                                               \
        int64_t nrp = round_mr(O) / LT__UK_MR, ncb = (round_nr(C) / LT__UK_NR + WG_NP - 1) / WG_NP;               \
        _Pragma("omp parallel for schedule(dynamic, 1)") for (int64_t it = 0; it < nrp * ncb; it++)                \
        {                                                                                                           \
            int64_t c0 = it % ncb * WG_NP * LT__UK_NR, npc = (round_nr(C) - c0) / LT__UK_NR;                      \
            weight_block_m(M, Z, zxs, V, vxs, T, gw, O, C, it / ncb * LT__UK_MR, c0, npc < WG_NP ? (int)npc : WG_NP, \
                           buf + lt__thread_id() * per);                                                            \
        }                                                                                                           \
    }
DEF_WINO_M(2)
DEF_WINO_M(4)

static void wino_input(int m, const float *x, float *V, int64_t C, int64_t H, int64_t W, int64_t n0, int64_t nb)
{
    (m == 2 ? input_2 : input_4)(x, V, C, H, W, n0, nb);
}
static void wino_grad_out(int m, const float *gy, float *Z, int64_t O, int64_t H, int64_t W, int64_t n0, int64_t nb)
{
    (m == 2 ? grad_out_2 : grad_out_4)(gy, Z, O, H, W, n0, nb);
}
static void wino_weight(int m, const float *w, float *U, int64_t O, int64_t C, bool rot, int64_t R6)
{
    (m == 2 ? weight_2 : weight_4)(w, U, O, C, rot, R6);
}

/* ---- the convolutions ---- */

int lt__wino_tile(int64_t N, int64_t C, int64_t O, int64_t H, int64_t W)
{
    if (C < 8 || O < 8)
        return 0;
    int64_t t2 = tiles_per_image(2, H, W), t4 = tiles_per_image(4, H, W);
    /* Products per image and channel pair: 16 per 2x2 tile, 36 per 4x4
     * tile, 9 per output pixel directly. F(4x4) also transforms 36 values
     * per kernel where F(2x2) transforms 16, a cost that the products
     * amortize over their N t4 tiles. With the fused kernels (best-of-25
     * medians, 3 runs): at 32 tiles (ResNet-18's layer3 at 64x64, batch
     * 32) F(4x4) ran 1.4-1.7x as fast as F(2x2) forward and 1.0-1.8x for
     * the weight gradient; at 8 tiles it was even forward and up to 2x
     * slower for the weight gradient. */
    if (36 * t4 < 16 * t2 && N * t4 >= 32)
        return 4;
    /* Below two outputs per 2x2 tile (a 1x1 output, say, ResNet-18's
     * layer4 at 32x32 inputs) im2col does less work, before counting the
     * transforms. */
    return H * W >= 2 * t2 ? 2 : 0;
}

/* Images per chunk: the transformed tensors (a^2 x channels x tiles) stay
 * under 2^21 elements each. */
static int64_t wino_chunk(int m, int64_t N, int64_t ch, int64_t tpi)
{
    int64_t per = (m + 2) * (m + 2) * ch * tpi, nb = ((int64_t)1 << 21) / (per ? per : 1);
    return nb < 1 ? 1 : nb > N ? N : nb;
}

/* ---- the fused convolution: transforms and products per block of tiles ---- */

/* The shape of a fused convolution out (N, Cout, H, W) = conv3x3 same of
 * in (N, Cin, H, W) with kernels w (wO, wC, 3, 3) (rot: rotated, Cin = wO,
 * Cout = wC; else Cin = wC, Cout = wO), and how it is split: items are a
 * block of np <= nbp panels of WT tiles times a group of rows [o0, o1) of
 * the R6 output rows (Cout padded to a multiple of LT__UK_MR). */
typedef struct fused_plan {
    int P;
    bool rot, own_u; /* own_u: each item transforms its rows' kernels */
    int64_t N, Cin, Cout, H, W, wO, wC, R6;
    int64_t npan, nbp, tb, nblk, rg, nog;
    int64_t vxs, mxs, uxs; /* plane strides of Vb, Mb and U (or Ap) */
    int64_t per;           /* floats of scratch per thread */
} fused_plan;

/* One item. Vb: the block's transformed tiles, a^2 planes of Cin x tb in
 * WT-column panels (lt__sgemm_packed's B layout), written by the input
 * transform directly; Mb: the products, a^2 planes of rg x tb; with
 * own_u, Ap: one LT__UK_MR-row panel of transformed kernels per plane,
 * else U holds all R6 rows. All of it stays in this thread's cache. */
static inline __attribute__((always_inline)) void fused_item_m(int m, const fused_plan *pl, const float *in,
                                                                const float *w, const float *U, const float *bias,
                                                                float *out, int64_t b, int64_t o0, float *buf)
{
    const int P = (m + 2) * (m + 2);
    int64_t Cin = pl->Cin, tb = pl->tb, t0 = b * tb, o1 = o0 + pl->rg < pl->R6 ? o0 + pl->rg : pl->R6;
    int np = (int)(pl->npan - b * pl->nbp < pl->nbp ? pl->npan - b * pl->nbp : pl->nbp);
    float *Vb = buf, *Mb = Vb + P * pl->vxs, *Ap = Mb + P * pl->mxs;
    int64_t T = pl->N * tiles_per_image(m, pl->H, pl->W), nt = T - t0 < np * WT ? T - t0 : np * WT;
    for (int64_t c = 0; c < Cin; c++) {
        if (c + 1 < Cin)
            prefetch_rows(m, in, Cin, pl->H, pl->W, 0, c + 1, t0, nt);
        for (int p = 0; p < np; p++)
            input_m(m, in, Cin, pl->H, pl->W, 0, pl->N, c, t0 + p * WT, Vb + (p * Cin + c) * WT, pl->vxs, true);
    }
    for (int64_t r0 = o0; r0 < o1; r0 += LT__UK_MR) {
        const float *A = U + r0 * Cin;
        if (pl->own_u) {
            int64_t q1 = (r0 + LT__UK_MR) * Cin;
            for (int64_t q = r0 * Cin; q < q1; q += WT)
                kernel_m(m, w, pl->wO, pl->wC, pl->rot, q, q1, Ap + q - r0 * Cin, pl->uxs);
            A = Ap;
        }
        for (int xi = 0; xi < P; xi++)
            lt__sgemm_packed(LT__UK_MR, Cin, np, A + xi * pl->uxs, Vb + xi * pl->vxs,
                             Mb + xi * pl->mxs + (r0 - o0) * tb, tb, false);
    }
    for (int64_t o = o0; o < o1 && o < pl->Cout; o++)
        for (int p = 0; p < np; p++) {
            /* The next chunk's P lines, pl->mxs apart: too many streams
             * for the hardware prefetcher. */
            int64_t nx = p + 1 < np ? (o - o0) * tb + (p + 1) * WT : (o + 1 - o0) * tb;
            if (nx < pl->rg * tb)
                for (int xi = 0; xi < P; xi++)
                    __builtin_prefetch(Mb + nx + xi * pl->mxs, 0, 3);
            output_m(m, Mb + (o - o0) * tb + p * WT, pl->mxs, bias, out, pl->Cout, pl->H, pl->W, 0, pl->N, o,
                     t0 + p * WT);
        }
}

#define DEF_FUSED_ITEM(M)                                                                                           \
    static void fused_item_##M(const fused_plan *pl, const float *in, const float *w, const float *U,              \
                               const float *bias, float *out, int64_t b, int64_t o0, float *buf)                    \
    {                                                                                                               \
        fused_item_m(M, pl, in, w, U, bias, out, b, o0, buf);                                                       \
    }
DEF_FUSED_ITEM(2)
DEF_FUSED_ITEM(4)

/* How to split: a block holds up to 4 panels, fewer when its buffers
 * would outgrow about 1 MiB, unless the transformed kernels take 4 MiB or
 * more: each block streams all of them, so those get 4-panel blocks
 * (measured up to 1.9x faster than 1-panel blocks on layer4 shapes). When
 * the whole batch fits in one block (at most 4 panels: few tiles,
 * typically large kernels), each item transforms its own rows' kernels on
 * the fly, and the kernels are never written out whole. Rows are split
 * into groups (lt__sgemm_packed_row_groups) only when the blocks alone
 * would not give each thread two items; each group then transforms the
 * block's input again, which costs little next to its share of the
 * kernels. */
static fused_plan plan_fused(int m, int64_t N, int64_t wO, int64_t wC, int64_t H, int64_t W, bool rot, int nth)
{
    fused_plan pl = {.P = (m + 2) * (m + 2), .rot = rot, .N = N, .H = H, .W = W, .wO = wO, .wC = wC};
    pl.Cin = rot ? wO : wC;
    pl.Cout = rot ? wC : wO;
    pl.R6 = round_mr(pl.Cout);
    pl.npan = (N * tiles_per_image(m, H, W) + WT - 1) / WT;
    pl.own_u = pl.npan <= 4;
    int64_t nbp = pl.own_u || pl.P * pl.R6 * pl.Cin >= ((int64_t)1 << 20)
                      ? 4
                      : ((int64_t)1 << 18) / (pl.P * (pl.Cin + pl.R6) * WT);
    nbp = nbp < 1 ? 1 : nbp > 4 ? 4 : nbp;
    pl.nbp = nbp < pl.npan ? nbp : pl.npan;
    pl.tb = pl.nbp * WT;
    pl.nblk = (pl.npan + pl.nbp - 1) / pl.nbp;
    lt__sgemm_packed_row_groups(pl.nblk, pl.R6, nth, &pl.rg, &pl.nog);
    pl.vxs = wino_ps(pl.Cin * pl.tb);
    pl.mxs = wino_ps(pl.rg * pl.tb);
    pl.uxs = wino_ps((pl.own_u ? LT__UK_MR : pl.R6) * pl.Cin);
    pl.per = pl.P * (pl.vxs + pl.mxs + (pl.own_u ? pl.uxs : 0));
    return pl;
}

/* Forward (rot false: x (N,C,H,W), w (O,C,3,3) -> y (N,O,H,W) + bias) or
 * input gradient (rot true: gy (N,O,H,W) -> gx (N,C,H,W), no bias), each
 * block of tiles from transform to product to output on one thread with
 * no barrier in between; the products on lt__sgemm_packed. Every output
 * element is the same sum whatever the split. */
static int wino_apply(int m, const float *in, const float *w, const float *b, float *out, int64_t N, int64_t C,
                      int64_t O, int64_t H, int64_t W, bool rot)
{
    int nth = lt__team_size();
    fused_plan pl = plan_fused(m, N, O, C, H, W, rot, nth);
    lt_tensor *hu = pl.own_u ? NULL : lt__scratch(pl.P * pl.uxs, LT_F32);
    lt_tensor *hb = lt__scratch(nth * pl.per, LT_F32);
    if ((!pl.own_u && !hu) || !hb) {
        lt_release(hu);
        lt_release(hb);
        return -1;
    }
    float *U = hu ? lt_data(hu) : NULL, *buf = lt_data(hb);
    if (U)
        wino_weight(m, w, U, O, C, rot, pl.R6);
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t it = 0; it < pl.nblk * pl.nog; it++) {
        int tid = lt__thread_id();
        (m == 2 ? fused_item_2 : fused_item_4)(&pl, in, w, U, b, out, it / pl.nog, it % pl.nog * pl.rg,
                                               buf + tid * pl.per);
    }
    lt_release(hu);
    lt_release(hb);
    return 0;
}

int lt__wino_fwd(int m, const float *x, const float *w, const float *b, float *y, int64_t N, int64_t C, int64_t O,
                 int64_t H, int64_t W)
{
    return wino_apply(m, x, w, b, y, N, C, O, H, W, false);
}

int lt__wino_bwd_input(int m, const float *gy, const float *w, float *gx, int64_t N, int64_t C, int64_t O,
                       int64_t H, int64_t W)
{
    return wino_apply(m, gy, w, NULL, gx, N, C, O, H, W, true);
}

int lt__wino_bwd_weight(int m, const float *x, const float *gy, float *gw, int64_t N, int64_t C, int64_t O,
                        int64_t H, int64_t W)
{
    int P = (m + 2) * (m + 2);
    int64_t tpi = tiles_per_image(m, H, W), nb = wino_chunk(m, N, C > O ? C : O, tpi);
    int64_t C16 = round_nr(C), O6 = round_mr(O), uxs = wino_ps(O6 * C16);
    /* With all images in one chunk and a dU of 8 MiB or more (ResNet-18's
     * layer3 at 4x4 and layer4 at 2x2 and 7x7), dU is never written out:
     * each block of kernels goes from products to G^T dU G in cache
     * (weight_blocks), and hu holds the threads' block buffers instead.
     * Measured 1.08-1.6x on those layers (medians of 40 alternated calls);
     * with a smaller dU, streaming V and Z once per block row was up to
     * 1.2x slower than the whole-plane products. The sums are the same
     * either way. */
    bool fused = nb == N && P * O6 * C16 >= ((int64_t)1 << 21);
    int64_t per = P * LT__UK_MR * WG_NP * LT__UK_NR;
    lt_tensor *hv = lt__scratch(P * wino_ps(C16 * nb * tpi), LT_F32);
    lt_tensor *hz = lt__scratch(P * wino_ps(O6 * nb * tpi), LT_F32);
    lt_tensor *hu = lt__scratch(fused ? lt__team_size() * per : P * uxs, LT_F32);
    if (!hv || !hz || !hu) {
        lt_release(hv);
        lt_release(hz);
        lt_release(hu);
        return -1;
    }
    float *V = lt_data(hv), *Z = lt_data(hz), *dU = lt_data(hu);
    for (int64_t n0 = 0; n0 < N; n0 += nb) {
        int64_t k = N - n0 < nb ? N - n0 : nb, T = k * tpi, vxs = wino_ps(C16 * T), zxs = wino_ps(O6 * T);
        /* dU[xi] (O6, C16) += Z[xi] (O6, T) V[xi]^T (T, C16) on the packed
         * micro-kernel: the transforms write Z in LT__UK_MR-row panels and
         * V^T in LT__UK_NR-column panels, zeros for the padding channels. */
        wino_input(m, x, V, C, H, W, n0, k);
        wino_grad_out(m, gy, Z, O, H, W, n0, k);
        if (fused) { /* the one chunk */
            (m == 2 ? weight_blocks_2 : weight_blocks_4)(Z, zxs, V, vxs, T, gw, O, C, dU, per);
            break;
        }
#pragma omp parallel for schedule(dynamic, 1)
        for (int xi = 0; xi < P; xi++)
            lt__sgemm_packed(O6, T, (int)(C16 / LT__UK_NR), Z + xi * zxs, V + xi * vxs, dU + xi * uxs, C16, n0 > 0);
    }
    if (!fused)
        (m == 2 ? weight_grad_2 : weight_grad_4)(dU, uxs, C16, gw, O, C);
    lt_release(hv);
    lt_release(hz);
    lt_release(hu);
    return 0;
}
