/*
 * nn_internal.h: what the files of nn/ share and nothing else includes.
 */
#ifndef LIBTENSOR_NN_INTERNAL_H
#define LIBTENSOR_NN_INTERNAL_H

#include "nn.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* Whether a and b have the same dims (dtypes and strides aside). */
static inline bool lt__nn_same_shape(const lt_tensor *a, const lt_tensor *b)
{
    return lt_ndim(a) == lt_ndim(b) && memcmp(lt_shape(a), lt_shape(b), sizeof(int64_t) * (size_t)lt_ndim(a)) == 0;
}

/* Registry entries of conv.c, functional.c and norm.c (static arrays). */
const lt_ag_opinfo *lt__nn_conv_ops(int *n);
const lt_ag_opinfo *lt__nn_functional_ops(int *n);
const lt_ag_opinfo *lt__nn_norm_ops(int *n);
const lt_ag_opinfo *lt__nn_attention_ops(int *n);
/* The lt_ag_fn of each custom op with a backward (NULL-terminated): conv.c's
 * and norm.c's fused batch-norm ops. */
const lt_ag_fn *const *lt__nn_conv_fns(void);
const lt_ag_fn *const *lt__nn_norm_fns(void);

/* Sample helpers for registry generators: uniform f64 in [lo, hi). */
lt_tensor *lt__nn_rnd(lt_rng *r, int nd, const int64_t *shape, double lo, double hi);

/* relu?(batch_norm(x) + res?): lt_nn_batch_norm's arguments and results,
 * then lt_add(y, res) if res, then lt_relu if relu; in eval mode without a
 * graph to record (and res NULL or shaped like x) all in one pass, bitwise
 * the same. */
lt_tensor *lt__nn_batch_norm_act(const lt_tensor *x, lt_tensor *running_mean, lt_tensor *running_var,
                                 const lt_tensor *weight, const lt_tensor *bias, bool training, double momentum,
                                 double eps, const lt_tensor *res, bool relu);
/* The same through a BatchNorm2d module m (its buffers, mode and batch
 * count, as lt_nn_module_forward(m, x) would); any other module: its
 * forward, then the add and the ReLU as ops. */
lt_tensor *lt__nn_bn_act(lt_nn_module *m, const lt_tensor *x, const lt_tensor *res, bool relu);

/* dst[t] = r[w0 + 2 t] for t < len (len <= 16), 0 where w0 + 2 t lies
 * outside 0 .. W - 1 (r is one row of W floats): where the build has
 * AVX-512, two masked loads of just the floats inside the row that lie
 * between the first and last read, and a permute that keeps every second
 * one and zeroes the lanes outside; else a loop. The strided rows of
 * im2col and of the implicit-GEMM gathers (GCC 12 leaves a stride-2 copy
 * scalar). */
#if defined(__AVX512F__)
#include <immintrin.h>
#endif
static inline void lt__gather_s2(const float *r, int64_t W, int64_t w0, int len, float *dst)
{
    int64_t tlo = w0 < 0 ? (1 - w0) / 2 : 0;           /* first t with w0 + 2 t >= 0 */
    int64_t thi = W - w0 <= 0 ? 0 : (W - w0 + 1) / 2; /* first t with w0 + 2 t >= W */
    thi = thi < len ? thi : len;
#if defined(__AVX512F__)
    if (thi <= tlo) {
        _mm512_mask_storeu_ps(dst, (__mmask16)((1u << len) - 1), _mm512_setzero_ps());
        return;
    }
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const float *b = r + (w0 + 2 * tlo); /* the first float read */
    int n = (int)(2 * (thi - tlo) - 1);   /* floats read from b, at most 31 */
    __m512 lo = _mm512_maskz_loadu_ps((__mmask16)(n >= 16 ? 0xffff : (1u << n) - 1), b);
    __m512 hi = n > 16 ? _mm512_maskz_loadu_ps((__mmask16)((1u << (n - 16)) - 1), b + 16) : _mm512_setzero_ps();
    /* lane t reads b[2 (t - tlo)]; lanes below tlo or from thi are zeroed */
    __m512i idx = _mm512_sub_epi32(even, _mm512_set1_epi32((int)(2 * tlo)));
    __mmask16 keep = (__mmask16)(((1u << thi) - 1) & ~((1u << tlo) - 1));
    _mm512_mask_storeu_ps(dst, (__mmask16)((1u << len) - 1), _mm512_maskz_permutex2var_ps(keep, lo, idx, hi));
#else
    for (int64_t t = 0; t < len; t++)
        dst[t] = t >= tlo && t < thi ? r[w0 + 2 * t] : 0.0f;
#endif
}

/* Copies of len elements from b to d for results that are written once
 * and read back only much later (a full-size weight gradient): streaming
 * stores, which skip reading d's lines first, where d is 16-byte aligned
 * and len a multiple of 16 bytes, else memcpy. A thread calls
 * lt__stream_fence() after its last one (they are weakly ordered). */
#if defined(__SSE2__)
#include <emmintrin.h>
#define LT__DEF_STREAM(T, SUF, STORE, LOAD)                                                                        \
    static inline void lt__stream_##SUF(T *d, const T *b, size_t len)                                                \
    {                                                                                                               \
        size_t v = 16 / sizeof(T);                                                                                  \
        if (((uintptr_t)d & 15) || len % v) {                                                                       \
            memcpy(d, b, sizeof(T) * len);                                                                          \
            return;                                                                                                 \
        }                                                                                                           \
        for (size_t i = 0; i < len; i += v)                                                                         \
            STORE(d + i, LOAD(b + i));                                                                              \
    }
LT__DEF_STREAM(float, f32, _mm_stream_ps, _mm_loadu_ps)
LT__DEF_STREAM(double, f64, _mm_stream_pd, _mm_loadu_pd)
static inline void lt__stream_fence(void) { _mm_sfence(); }
#else
static inline void lt__stream_f32(float *d, const float *b, size_t len) { memcpy(d, b, sizeof(float) * len); }
static inline void lt__stream_f64(double *d, const double *b, size_t len) { memcpy(d, b, sizeof(double) * len); }
static inline void lt__stream_fence(void) {}
#endif

/* Winograd F(m x m, 3x3) convolution (winograd.c), f32, stride 1,
 * padding 1, so the output is (H, W) like the input. All arrays contiguous.
 * lt__wino_tile: the tile side m (2 or 4) that is fastest for N images of
 * C input and O output channels at (H, W), or 0 where im2col is.
 * fwd: y (N,O,H,W) = conv(x (N,C,H,W), w (O,C,3,3)) + b (O, or NULL).
 * bwd_input: gx (N,C,H,W) from gy (N,O,H,W) and w. bwd_weight: gw
 * (O,C,3,3) from x and gy. Each returns 0, or -1 when scratch memory
 * cannot be allocated (error set). */
int lt__wino_tile(int64_t N, int64_t C, int64_t O, int64_t H, int64_t W);
int lt__wino_fwd(int m, const float *x, const float *w, const float *b, float *y, int64_t N, int64_t C, int64_t O,
                 int64_t H, int64_t W);
int lt__wino_bwd_input(int m, const float *gy, const float *w, float *gx, int64_t N, int64_t C, int64_t O,
                       int64_t H, int64_t W);
int lt__wino_bwd_weight(int m, const float *x, const float *gy, float *gw, int64_t N, int64_t C, int64_t O,
                        int64_t H, int64_t W);
/* The same convolutions on 2x2 maps (H = W = 2) as dense GEMMs
 * (conv_2x2.c), with the arguments and returns of lt__wino_fwd,
 * lt__wino_bwd_input and lt__wino_bwd_weight. */
int lt__conv2x2_fwd(const float *x, const float *w, const float *b, float *y, int64_t N, int64_t C, int64_t O);
int lt__conv2x2_bwd_input(const float *gy, const float *w, float *gx, int64_t N, int64_t C, int64_t O);
int lt__conv2x2_bwd_weight(const float *x, const float *gy, float *gw, int64_t N, int64_t C, int64_t O);
/* Tests: whether the transforms gather tile patches with AVX-512 loads and
 * in-register transposes (on, the default where the build targets
 * AVX-512F and VL) or with the portable scalar copy (off). Both give the
 * same bits. Returns the previous setting, or -1, changing nothing, when
 * asked for on in a build without AVX-512. */
int lt__wino_vector_gathers(int on);

/* A convolution's geometry (conv.c): x (N,C,H,W), w (O,C,kh,kw), output
 * (N,O,Ho,Wo), stride (sh,sw), padding (ph,pw), dilation (dh,dw). */
typedef struct lt__conv_geom {
    int64_t N, C, H, W, O, kh, kw, Ho, Wo;
    int64_t sh, sw, ph, pw, dh, dw;
} lt__conv_geom;

/* y = conv(x, w) + b (b may be NULL), f32, any geometry, all contiguous
 * (conv_packed.c): im2col of a few panels of output pixels at a time,
 * straight into lt__sgemm_packed's layout, never the whole column matrix.
 * 0, or -1 when scratch memory cannot be allocated (error set). */
int lt__conv_fwd_packed(const float *x, const float *w, const float *b, float *y, const lt__conv_geom *g);
/* gw (O,C,kh,kw) = the weight gradient sum over images and pixels of gy
 * (N,O,Ho,Wo) times x's (N,C,H,W) taps, f32, any geometry, all contiguous
 * (conv_packed.c), as the implicit GEMM gw = gy cols^T: blocks of 256
 * pixels of cols gathered and transposed into lt__sgemm_packed's B
 * layout. Each element sums its blocks in order, whatever the thread
 * count. 0, or -1 when scratch memory cannot be allocated (error set). */
int lt__conv_bwd_weight_packed(const float *x, const float *gy, float *gw, const lt__conv_geom *g);
/* The same gradient with the images in parallel: each image's pixels
 * (blocks of 256) against all taps into its own partial (about O C kh kw
 * floats of scratch per image), the partials summed in image order. */
int lt__conv_bwd_weight_packed_images(const float *x, const float *gy, float *gw, const lt__conv_geom *g);

#endif
