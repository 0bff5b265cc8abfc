/*
 * conv.c: conv2d and its two gradient ops.
 *
 * conv2d is bilinear in (x, w); with the trilinear form T(x, w, g) =
 * <g, conv2d(x, w)> its three ops are the three partial derivatives of T:
 *
 *   conv2d(x, w)             = dT/dg   (N,O,Ho,Wo)
 *   input_grad(g, w; xshape) = dT/dx   (N,C,H,W)   transposed conv
 *   weight_grad(x, g; wshape)= dT/dw   (O,C,kh,kw)
 *
 * so each one's backward (an upstream u shaped like its output) is made of
 * the other two (PyTorch's convolution_backward and its double backward):
 *
 *   conv2d:      dx = input_grad(u, w),   dw = weight_grad(x, u), db = sum u
 *   input_grad:  dg = conv2d(u, w),       dw = weight_grad(u, g)
 *   weight_grad: dx = input_grad(g, u),   dg = conv2d(x, u)
 *
 * The family is closed, so every order of derivative exists. Kernels: f32
 * 3x3 stride-1 "same" convolutions run on Winograd (winograd.c), or on
 * 2x2 maps as dense GEMMs (conv_2x2.c); the
 * forward of other f32 convolutions with 16+ input channels is an implicit
 * GEMM (conv_packed.c). Everything else is one im2col of a chunk of images
 * into a (C kh kw, nb Ho Wo) matrix and one GEMM per chunk (DESIGN.md:
 * large GEMMs beat one small GEMM per image); a 1x1, stride-1, unpadded
 * conv is a GEMM per image with no unfolding.
 */
#include "nn_internal.h"
#include "../tensor/tensor_internal.h"

#include <cblas.h>
#include <string.h>

typedef lt__conv_geom conv_geom;

/* A 1x1 kernel without padding, any stride (ResNet's downsampling
 * shortcuts): output pixel (i, j) reads input pixel (i sh, j sw) only, so
 * the convolution is a per-image GEMM on x or, with a stride, on its
 * subsample (conv_kernels.inc), with no column matrix. Where per-image
 * GEMMs are too narrow, some passes take the general path instead (see
 * conv_kernels.inc). */
static bool conv_is_pointwise(const conv_geom *g)
{
    return g->kh == 1 && g->kw == 1 && g->ph == 0 && g->pw == 0;
}

static bool conv_is_strided(const conv_geom *g) { return g->sh != 1 || g->sw != 1; }

/* A kernel the size of the input without padding (one output pixel): tap
 * (p, q) reads input pixel (p, q), so with x seen as (N, K) and w as (O, K),
 * K = C*kh*kw in the same order, the convolution is the one GEMM
 * y = x w^T, and its gradients gx = gy w and gw = gy^T x (conv_kernels.inc),
 * with no column matrix. ResNet-18's layer4 at 32x32 inputs is this once
 * conv_crop drops the taps that read padding only: the 3x3 convolutions
 * on 1x1 maps (their centre taps: three convolutions' three passes
 * 5.7-6.2 -> 4.6-4.9 ms, b32, medians of 21 calls, four alternated runs;
 * whole steps 1.035-1.06x) and the strided 3x3 on 2x2 maps (taps
 * (1..2, 1..2), see conv_crop). */
static bool conv_is_window(const conv_geom *g)
{
    return g->kh == g->H && g->kw == g->W && g->ph == 0 && g->pw == 0 && g->Ho == 1 && g->Wo == 1;
}

/* Images per unfolded chunk: the column matrix stays under CHUNK_ELEMS
 * elements (4 MiB in f32), so im2col's output is still in cache when the
 * GEMM reads it (and the GEMM's output when col2im reads it) while the GEMM
 * keeps at least a few thousand columns at 64x64 inputs. Shape-only, so the
 * results do not depend on the thread count. */
#define CHUNK_ELEMS ((int64_t)1 << 20)
static int64_t conv_chunk(const conv_geom *g)
{
    int64_t per = g->C * g->kh * g->kw * g->Ho * g->Wo, nb = CHUNK_ELEMS / (per ? per : 1);
    if (nb < 1)
        return 1;
    if (nb >= g->N)
        return g->N > 0 ? g->N : 1;
    /* chunks of even size: 32 images at 28 per chunk become 16 + 16, not
     * 28 + a narrow GEMM of 4 */
    int64_t k = (g->N + nb - 1) / nb;
    return (g->N + k - 1) / k;
}

/* cblas-shaped adapters onto libtensor's thread-count-independent GEMM. */
static inline void gemm_f32(enum CBLAS_ORDER o, enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, blasint M,
                            blasint N, blasint K, float alpha, const float *A, blasint lda, const float *B,
                            blasint ldb, float beta, float *C, blasint ldc)
{
    (void)o;
    lt__sgemm(ta == CblasTrans, tb == CblasTrans, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
static inline void gemm_f64(enum CBLAS_ORDER o, enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, blasint M,
                            blasint N, blasint K, double alpha, const double *A, blasint lda, const double *B,
                            blasint ldb, double beta, double *C, blasint ldc)
{
    (void)o;
    lt__dgemm(ta == CblasTrans, tb == CblasTrans, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

#define T float
#define SUF f32
#define GEMM gemm_f32
#define RAW_GEMM cblas_sgemm
#define DT LT_F32
#define GATHER_S2 lt__gather_s2
#define WG_PACKED lt__conv_bwd_weight_packed
#define WG_PACKED_IMAGES lt__conv_bwd_weight_packed_images
#include "conv_kernels.inc"
#undef GATHER_S2
#undef WG_PACKED
#undef WG_PACKED_IMAGES
#undef T
#undef SUF
#undef GEMM
#undef RAW_GEMM
#undef DT
#define T double
#define SUF f64
#define GEMM gemm_f64
#define RAW_GEMM cblas_dgemm
#define DT LT_F64
#include "conv_kernels.inc"
#undef T
#undef SUF
#undef GEMM
#undef RAW_GEMM
#undef DT

/* Winograd (winograd.c) for f32 3x3 convolutions with stride 1 and
 * padding 1 ("same"), where it does fewer products than im2col: tile side
 * 2 or 4, or 0 for im2col. Three of ResNet-18's four kinds of convolution
 * are of this shape, and they carry over 80% of its FLOPs. */
static int conv_wino_tile(const conv_geom *g, lt_dtype dt)
{
    if (dt != LT_F32 || g->kh != 3 || g->kw != 3 || g->sh != 1 || g->sw != 1 || g->ph != 1 || g->pw != 1 ||
        g->dh != 1 || g->dw != 1)
        return 0;
    return lt__wino_tile(g->N, g->C, g->O, g->H, g->W);
}

/* The convolutions conv_wino_tile accepts (m != 0): on 2x2 maps the
 * dense GEMMs of conv_2x2.c, which make as many products as F(2x2)
 * without its transforms, else Winograd F(m x m). ResNet-18's layer4 at
 * 64x64 (b32, 512 channels), 40 alternated calls: forward 1.38-1.41x,
 * input gradient 1.5x, weight gradient 1.34-1.78x; layer3 at 32x32 (256
 * channels) 1.2-1.8x each. */
static bool same3_dense(const conv_geom *g)
{
    /* its packed images (16 N x C for the weight gradient) take no chunks:
     * past 2^20 N C (64 MiB of them) Winograd, which does */
    return g->H == 2 && g->W == 2 && g->N * (g->C > g->O ? g->C : g->O) <= ((int64_t)1 << 20);
}

static int same3_fwd(int m, const float *x, const float *w, const float *b, float *y, const conv_geom *g)
{
    return same3_dense(g) ? lt__conv2x2_fwd(x, w, b, y, g->N, g->C, g->O)
                          : lt__wino_fwd(m, x, w, b, y, g->N, g->C, g->O, g->H, g->W);
}

static int same3_bwd_input(int m, const float *gy, const float *w, float *gx, const conv_geom *g)
{
    return same3_dense(g) ? lt__conv2x2_bwd_input(gy, w, gx, g->N, g->C, g->O)
                          : lt__wino_bwd_input(m, gy, w, gx, g->N, g->C, g->O, g->H, g->W);
}

static int same3_bwd_weight(int m, const float *x, const float *gy, float *gw, const conv_geom *g)
{
    return same3_dense(g) ? lt__conv2x2_bwd_weight(x, gy, gw, g->N, g->C, g->O)
                          : lt__wino_bwd_weight(m, x, gy, gw, g->N, g->C, g->O, g->H, g->W);
}

/* The implicit-GEMM forward (conv_packed.c) for the other f32
 * convolutions with 16 or more input channels, or 64 or more taps over
 * all of them: ResNet-18's 7x7 stem on 3 channels (147 taps) took it in
 * session 6, whole steps 1.02x (r18_train_64) and 1.06x (r18_infer_64)
 * faster, 1.00x at 224x224, in-process alternating steps; on the AVX2
 * machine of session 4 it had measured 0.7-0.8x im2col + GEMM. Fewer taps
 * (a 3x3 kernel on 3 channels) keep im2col. A
 * pointwise convolution with stride 1 runs as per-image GEMMs instead;
 * with a stride, the packed forward's gather measured 1.07-1.25x faster
 * than subsampling first on ResNet-18's shortcuts at 64x64 inputs. */
static bool conv_use_packed(const conv_geom *g, lt_dtype dt)
{
    return dt == LT_F32 && (g->C >= 16 || g->C * g->kh * g->kw >= 64) &&
           !(conv_is_pointwise(g) && !conv_is_strided(g)) && !conv_is_window(g);
}

/* ---- kernel taps that read only padding ---- */

/* Taps [*lo, *hi) of a kernel axis of k taps (input n, output no, stride
 * st, padding pd, dilation d) that read inside the input for some output;
 * the taps outside that range read padding only. */
static void live_taps(int64_t k, int64_t n, int64_t no, int64_t st, int64_t pd, int64_t d, int64_t *lo, int64_t *hi)
{
    *lo = k;
    *hi = 0;
    for (int64_t t = 0; t < k; t++) {
        int64_t a = t * d - pd; /* the input index output 0 reads */
        int64_t imin = a >= 0 ? 0 : (-a + st - 1) / st, imax = n - 1 - a < 0 ? -1 : (n - 1 - a) / st;
        if (imin <= (imax < no - 1 ? imax : no - 1)) {
            *lo = t < *lo ? t : *lo;
            *hi = t + 1;
        }
    }
}

/* Where some taps of a kernel read padding only (ResNet-18's layer4 at
 * 32x32 inputs: a 3x3 kernel on a 1x1 image, 8 of 9 taps), the convolution
 * equals the one with the kernel cropped to the live taps and the padding
 * reduced to match: *c gets that geometry, the crop's first tap in *p0,
 * *q0. False when not cropping. */
static bool conv_crop(const conv_geom *g, conv_geom *c, int64_t *p0, int64_t *q0)
{
    int64_t plo, phi, qlo, qhi;
    live_taps(g->kh, g->H, g->Ho, g->sh, g->ph, g->dh, &plo, &phi);
    live_taps(g->kw, g->W, g->Wo, g->sw, g->pw, g->dw, &qlo, &qhi);
    /* Only where the crop saves 3/4 of the products or more, or leaves a
     * window (conv_is_window: one GEMM per pass): it copies the kernels
     * first (a gather touching every cache line of them), which at
     * ResNet-18's layer4 with a stride (3x3 to 2x2 on a 2x2 image, b32)
     * made the convolution slower as im2col + GEMM, and faster as a
     * window: its three passes 3.3-3.4 -> 1.7 ms (medians of 21 calls,
     * three alternated runs; crop_kernel's 2x2 loops below). */
    if (phi <= plo || qhi <= qlo || g->ph - plo * g->dh < 0 || g->pw - qlo * g->dw < 0)
        return false;
    conv_geom k = *g;
    k.kh = phi - plo;
    k.kw = qhi - qlo;
    k.ph = g->ph - plo * g->dh;
    k.pw = g->pw - qlo * g->dw;
    if (k.kh * k.kw == g->kh * g->kw || (4 * k.kh * k.kw > g->kh * g->kw && !conv_is_window(&k)))
        return false;
    *c = k;
    *p0 = plo;
    *q0 = qlo;
    return true;
}

/* Between the kernel (O,C,kh,kw) of g and its crop (O,C,c->kh,c->kw) from
 * tap (p0, q0): into the crop (a gather), or (out) back into a full kernel
 * that is zero off the crop. Both are bound by memory: ResNet-18's layer4
 * at 32x32 inputs crops 9.4 MB of kernels to 1 MB per convolution.
 * Element by element (a 1x1 crop is one float per kernel: a memcpy call
 * each was most of the copy's time), with the 1x1 and 2x2 crops written
 * out (the loops over the crop's taps were most of the time again: the
 * three 1x1 weight gradients 4.8-5.2 -> 2.0-2.1 ms). The way out goes by
 * chunks of CROP_CHUNK kernels, each built in a buffer and written whole
 * with lt__stream_f32/f64 (one memset call per kernel before): that
 * layer's weight gradient 1.6-1.8 -> 1.4-1.5 ms (b32, 41 alternated
 * calls). */
#define CROP_CHUNK 16
#define CROP_BUF 1024 /* elements: chunks of kernels up to 8x8 */
#define DEF_CROP_KERNEL(T, SUF)                                                                                     \
    static void crop_kernel_##SUF(T *f, T *k, const conv_geom *g, const conv_geom *c, int64_t p0, int64_t q0,       \
                                  bool out)                                                                         \
    {                                                                                                               \
        int64_t n = g->O * g->C, fk = g->kh * g->kw, ck = c->kh * c->kw, off = p0 * g->kw + q0;                    \
        if (!out) {                                                                                                 \
            _Pragma("omp parallel for schedule(static)") for (int64_t oc = 0; oc < n; oc++)                         \
            {                                                                                                       \
                if (ck == 1)                                                                                        \
                    k[oc] = f[oc * fk + off];                                                                       \
                else if (c->kh == 2 && c->kw == 2) {                                                                \
                    const T *s = f + oc * fk + off;                                                                 \
                    k[oc * 4] = s[0];                                                                               \
                    k[oc * 4 + 1] = s[1];                                                                           \
                    k[oc * 4 + 2] = s[g->kw];                                                                       \
                    k[oc * 4 + 3] = s[g->kw + 1];                                                                   \
                } else                                                                                              \
                    for (int64_t p = 0; p < c->kh; p++)                                                             \
                        for (int64_t q = 0; q < c->kw; q++)                                                         \
                            k[oc * ck + p * c->kw + q] = f[oc * fk + off + p * g->kw + q];                          \
            }                                                                                                       \
            return;                                                                                                 \
        }                                                                                                           \
        int64_t nch = (n + CROP_CHUNK - 1) / CROP_CHUNK;                                                            \
        bool buffered = CROP_CHUNK * fk <= CROP_BUF;                                                                \
        _Pragma("omp parallel")                                                                                     \
        {                                                                                                           \
            T buf[CROP_BUF];                                                                                        \
            _Pragma("omp for schedule(static) nowait") for (int64_t h = 0; h < nch; h++)                            \
            {                                                                                                       \
                int64_t a = h * CROP_CHUNK, e = a + CROP_CHUNK < n ? a + CROP_CHUNK : n;                            \
                T *d = buffered ? buf : f + a * fk; /* without the buffer: in place */                             \
                memset(d, 0, sizeof(T) * (size_t)((e - a) * fk));                                                   \
                for (int64_t oc = a; oc < e; oc++)                                                                  \
                    if (ck == 1)                                                                                    \
                        d[(oc - a) * fk + off] = k[oc];                                                             \
                    else if (c->kh == 2 && c->kw == 2) {                                                            \
                        T *t = d + (oc - a) * fk + off;                                                             \
                        const T *s = k + oc * 4;                                                                    \
                        t[0] = s[0];                                                                                \
                        t[1] = s[1];                                                                                \
                        t[g->kw] = s[2];                                                                            \
                        t[g->kw + 1] = s[3];                                                                        \
                    } else                                                                                          \
                        for (int64_t p = 0; p < c->kh; p++)                                                         \
                            for (int64_t q = 0; q < c->kw; q++)                                                     \
                                d[(oc - a) * fk + off + p * g->kw + q] = k[oc * ck + p * c->kw + q];                \
                if (buffered)                                                                                       \
                    lt__stream_##SUF(f + a * fk, buf, (size_t)((e - a) * fk));                                      \
            }                                                                                                       \
            lt__stream_fence();                                                                                     \
        }                                                                                                           \
    }
DEF_CROP_KERNEL(float, f32)
DEF_CROP_KERNEL(double, f64)

static void crop_kernel(void *full, void *crop, const conv_geom *g, const conv_geom *c, int64_t p0, int64_t q0,
                        lt_dtype dt, bool out)
{
    if (dt == LT_F32)
        crop_kernel_f32(full, crop, g, c, p0, q0, out);
    else
        crop_kernel_f64(full, crop, g, c, p0, q0, out);
}

/* The kernels to run g's convolution with (not on Winograd, m = 0): wc's
 * own with *k = *g, or a cropped copy in *hk (the caller releases it) with
 * *k its geometry. NULL when the copy cannot be allocated. */
static const void *kernels_for(const lt_tensor *wc, const conv_geom *g, int m, conv_geom *k, lt_tensor **hk)
{
    int64_t p0, q0;
    *k = *g;
    *hk = NULL;
    if (m || !conv_crop(g, k, &p0, &q0))
        return lt_data(wc);
    lt_dtype dt = lt_dtype_of(wc);
    if (!(*hk = lt__scratch(k->O * k->C * k->kh * k->kw, dt)))
        return NULL;
    crop_kernel(lt_data(wc), lt_data(*hk), g, k, p0, q0, dt, false);
    return lt_data(*hk);
}

lt_nn_conv2d_params lt_nn_conv2d_params_make(int stride, int padding, int dilation)
{
    return (lt_nn_conv2d_params){{stride, stride}, {padding, padding}, {dilation, dilation}};
}

/* Fill g from the shapes of x (N,C,H,W), w (O,C,kh,kw) and p; checks all. */
static int geom_make(const char *op, const int64_t *xs, const int64_t *ws, const lt_nn_conv2d_params *p,
                     conv_geom *g)
{
    for (int a = 0; a < 2; a++)
        if (p->stride[a] < 1 || p->padding[a] < 0 || p->dilation[a] < 1) {
            lt_set_error("%s: bad geometry stride (%d,%d) padding (%d,%d) dilation (%d,%d)", op, p->stride[0],
                         p->stride[1], p->padding[0], p->padding[1], p->dilation[0], p->dilation[1]);
            return -1;
        }
    *g = (conv_geom){.N = xs[0], .C = xs[1], .H = xs[2], .W = xs[3], .O = ws[0], .kh = ws[2], .kw = ws[3],
                     .sh = p->stride[0], .sw = p->stride[1], .ph = p->padding[0], .pw = p->padding[1],
                     .dh = p->dilation[0], .dw = p->dilation[1]};
    if (ws[1] != xs[1] || g->N < 1 || g->C < 1 || g->O < 1 || g->kh < 1 || g->kw < 1) {
        lt_set_error("%s: input (%lld,%lld,%lld,%lld) and weight (%lld,%lld,%lld,%lld) do not match", op,
                     (long long)xs[0], (long long)xs[1], (long long)xs[2], (long long)xs[3], (long long)ws[0],
                     (long long)ws[1], (long long)ws[2], (long long)ws[3]);
        return -1;
    }
    int64_t eh = g->H + 2 * g->ph - g->dh * (g->kh - 1) - 1, ew = g->W + 2 * g->pw - g->dw * (g->kw - 1) - 1;
    if (eh < 0 || ew < 0) {
        lt_set_error("%s: kernel (%lld,%lld) with dilation (%lld,%lld) larger than padded input (%lld,%lld)", op,
                     (long long)g->kh, (long long)g->kw, (long long)g->dh, (long long)g->dw,
                     (long long)(g->H + 2 * g->ph), (long long)(g->W + 2 * g->pw));
        return -1;
    }
    g->Ho = eh / g->sh + 1;
    g->Wo = ew / g->sw + 1;
    return 0;
}

static int check_tensor(const char *op, const char *what, const lt_tensor *t, int ndim, lt_dtype dt)
{
    char b[96];
    if (lt_ndim(t) != ndim || lt_dtype_of(t) != dt || (dt != LT_F32 && dt != LT_F64)) {
        lt_set_error("%s: %s must be %d-D %s, got %s%s", op, what, ndim, lt_dtype_name(dt),
                     lt_dtype_name(lt_dtype_of(t)), lt_shape_str(t, b, sizeof b));
        return -1;
    }
    return 0;
}

static void params_iargs(const lt_nn_conv2d_params *p, int64_t *ia)
{
    for (int a = 0; a < 2; a++) {
        ia[a] = p->stride[a];
        ia[2 + a] = p->padding[a];
        ia[4 + a] = p->dilation[a];
    }
}

static lt_nn_conv2d_params params_of_ctx(lt_ag_ctx *ctx)
{
    lt_nn_conv2d_params p;
    for (int a = 0; a < 2; a++) {
        p.stride[a] = (int)lt_ag_iarg(ctx, a);
        p.padding[a] = (int)lt_ag_iarg(ctx, 2 + a);
        p.dilation[a] = (int)lt_ag_iarg(ctx, 4 + a);
    }
    return p;
}

/* ---- conv2d: forward, backward ---- */

static lt_tensor *conv2d_input_grad(const lt_tensor *g, const lt_tensor *w, const int64_t x_shape[4],
                                    const lt_nn_conv2d_params *p, const lt_tensor *crop);

/* Saved: x, w and, where the forward cropped the kernels (and so the input
 * gradient would again), that crop: the input gradient reuses it instead
 * of reading all of w's taps again (ResNet-18's layer4 at 32x32 inputs:
 * 9.4 MB per convolution for 1 MB kept). */
static int bw_conv2d(lt_ag_ctx *ctx, const lt_tensor *g, lt_tensor **gin)
{
    lt_nn_conv2d_params p = params_of_ctx(ctx);
    const lt_tensor *x = lt_ag_saved(ctx, 0), *w = lt_ag_saved(ctx, 1);
    if (lt_ag_needs_grad(ctx, 0) && !(gin[0] = conv2d_input_grad(g, w, lt_shape(x), &p, lt_ag_saved(ctx, 2))))
        return -1;
    if (lt_ag_needs_grad(ctx, 1) && !(gin[1] = lt_nn_conv2d_weight_grad(x, g, lt_shape(w), &p)))
        return -1;
    if (lt_ag_needs_grad(ctx, 2) && !(gin[2] = lt_sum(g, 3, (int[]){0, 2, 3}, false)))
        return -1;
    return 0;
}

static const lt_ag_fn conv2d_fn = {"conv2d", bw_conv2d};

lt_tensor *lt_nn_conv2d_ex(const lt_tensor *x, const lt_tensor *w, const lt_tensor *b,
                           const lt_nn_conv2d_params *p)
{
    static const char *op = "conv2d";
    if (!x || !w || !p || lt_nn_register_ops() < 0)
        return NULL;
    lt_dtype dt = lt_dtype_of(x);
    conv_geom g;
    if (check_tensor(op, "input", x, 4, dt) < 0 || check_tensor(op, "weight", w, 4, dt) < 0 ||
        (b && (check_tensor(op, "bias", b, 1, dt) < 0)) || geom_make(op, lt_shape(x), lt_shape(w), p, &g) < 0)
        return NULL;
    if (b && lt_size(b, 0) != g.O) {
        lt_set_error("%s: bias has %lld entries, weight %lld output channels", op, (long long)lt_size(b, 0),
                     (long long)g.O);
        return NULL;
    }
    lt_tensor *xc = lt_contiguous(x), *wc = lt_contiguous(w), *bc = b ? lt_contiguous(b) : NULL;
    lt_tensor *y = lt_empty(4, (int64_t[]){g.N, g.O, g.Ho, g.Wo}, dt);
    if (!xc || !wc || (b && !bc) || !y)
        return NULL;
    int m = conv_wino_tile(&g, dt);
    conv_geom k;
    lt_tensor *hk;
    const void *wd = kernels_for(wc, &g, m, &k, &hk);
    if (!wd)
        return NULL;
    int rc = m ? same3_fwd(m, lt_data(xc), wd, bc ? lt_data(bc) : NULL, lt_data(y), &g)
             : conv_use_packed(&k, dt) ? lt__conv_fwd_packed(lt_data(xc), wd, bc ? lt_data(bc) : NULL, lt_data(y), &k)
             : dt == LT_F32            ? conv_fwd_f32(lt_data(xc), wd, bc ? lt_data(bc) : NULL, lt_data(y), &k)
                                       : conv_fwd_f64(lt_data(xc), wd, bc ? lt_data(bc) : NULL, lt_data(y), &k);
    int64_t ia[6];
    params_iargs(p, ia);
    if (rc < 0 || lt_ag_record(&conv2d_fn, 3, (const lt_tensor *const[]){x, w, b}, y, hk ? 3 : 2,
                               (const lt_tensor *const[]){x, w, hk}, 6, ia, 0, NULL) < 0) {
        lt_release(hk);
        return NULL;
    }
    lt_release(hk);
    return y;
}

lt_tensor *lt_nn_conv2d(const lt_tensor *x, const lt_tensor *w, const lt_tensor *b, int stride, int padding,
                        int dilation)
{
    lt_nn_conv2d_params p = lt_nn_conv2d_params_make(stride, padding, dilation);
    return lt_nn_conv2d_ex(x, w, b, &p);
}

/* ---- conv2d_input_grad: forward, backward (upstream u shaped like x) ---- */

static int bw_conv2d_input_grad(lt_ag_ctx *ctx, const lt_tensor *u, lt_tensor **gin)
{
    lt_nn_conv2d_params p = params_of_ctx(ctx);
    const lt_tensor *g = lt_ag_saved(ctx, 0), *w = lt_ag_saved(ctx, 1);
    if (lt_ag_needs_grad(ctx, 0) && !(gin[0] = lt_nn_conv2d_ex(u, w, NULL, &p)))
        return -1;
    if (lt_ag_needs_grad(ctx, 1) && !(gin[1] = lt_nn_conv2d_weight_grad(u, g, lt_shape(w), &p)))
        return -1;
    return 0;
}

static const lt_ag_fn conv2d_input_grad_fn = {"conv2d_input_grad", bw_conv2d_input_grad};

lt_tensor *lt_nn_conv2d_input_grad(const lt_tensor *g, const lt_tensor *w, const int64_t x_shape[4],
                                   const lt_nn_conv2d_params *p)
{
    return conv2d_input_grad(g, w, x_shape, p, NULL);
}

/* crop: NULL, or w's kernels cropped as kernels_for crops them for this
 * geometry (the forward's copy). */
static lt_tensor *conv2d_input_grad(const lt_tensor *g, const lt_tensor *w, const int64_t x_shape[4],
                                    const lt_nn_conv2d_params *p, const lt_tensor *crop)
{
    static const char *op = "conv2d_input_grad";
    if (!g || !w || !x_shape || !p || lt_nn_register_ops() < 0)
        return NULL;
    lt_dtype dt = lt_dtype_of(g);
    conv_geom cg;
    if (check_tensor(op, "grad_output", g, 4, dt) < 0 || check_tensor(op, "weight", w, 4, dt) < 0 ||
        geom_make(op, x_shape, lt_shape(w), p, &cg) < 0)
        return NULL;
    const int64_t *gs = lt_shape(g);
    if (gs[0] != cg.N || gs[1] != cg.O || gs[2] != cg.Ho || gs[3] != cg.Wo) {
        char b[96];
        lt_set_error("%s: grad_output %s, expected (%lld,%lld,%lld,%lld)", op, lt_shape_str(g, b, sizeof b),
                     (long long)cg.N, (long long)cg.O, (long long)cg.Ho, (long long)cg.Wo);
        return NULL;
    }
    lt_tensor *gc = lt_contiguous(g), *wc = lt_contiguous(w), *gx = lt_empty(4, x_shape, dt);
    if (!gc || !wc || !gx)
        return NULL;
    int m = conv_wino_tile(&cg, dt);
    conv_geom k;
    lt_tensor *hk = NULL;
    int64_t p0, q0;
    const void *wd = crop && !m && conv_crop(&cg, &k, &p0, &q0) ? lt_data(crop) : kernels_for(wc, &cg, m, &k, &hk);
    if (!wd)
        return NULL;
    int rc = m ? same3_bwd_input(m, lt_data(gc), wd, lt_data(gx), &cg)
             : dt == LT_F32 ? conv_bwd_input_f32(lt_data(gc), wd, lt_data(gx), &k)
                          : conv_bwd_input_f64(lt_data(gc), wd, lt_data(gx), &k);
    lt_release(hk);
    if (rc < 0)
        return NULL;
    int64_t ia[6];
    params_iargs(p, ia);
    if (lt_ag_record(&conv2d_input_grad_fn, 2, (const lt_tensor *const[]){g, w}, gx, 2,
                     (const lt_tensor *const[]){g, w}, 6, ia, 0, NULL) < 0)
        return NULL;
    return gx;
}

/* ---- conv2d_weight_grad: forward, backward (upstream u shaped like w) ---- */

static int bw_conv2d_weight_grad(lt_ag_ctx *ctx, const lt_tensor *u, lt_tensor **gin)
{
    lt_nn_conv2d_params p = params_of_ctx(ctx);
    const lt_tensor *x = lt_ag_saved(ctx, 0), *g = lt_ag_saved(ctx, 1);
    if (lt_ag_needs_grad(ctx, 0) && !(gin[0] = lt_nn_conv2d_input_grad(g, u, lt_shape(x), &p)))
        return -1;
    if (lt_ag_needs_grad(ctx, 1) && !(gin[1] = lt_nn_conv2d_ex(x, u, NULL, &p)))
        return -1;
    return 0;
}

static const lt_ag_fn conv2d_weight_grad_fn = {"conv2d_weight_grad", bw_conv2d_weight_grad};

lt_tensor *lt_nn_conv2d_weight_grad(const lt_tensor *x, const lt_tensor *g, const int64_t w_shape[4],
                                    const lt_nn_conv2d_params *p)
{
    static const char *op = "conv2d_weight_grad";
    if (!x || !g || !w_shape || !p || lt_nn_register_ops() < 0)
        return NULL;
    lt_dtype dt = lt_dtype_of(x);
    conv_geom cg;
    if (check_tensor(op, "input", x, 4, dt) < 0 || check_tensor(op, "grad_output", g, 4, dt) < 0 ||
        geom_make(op, lt_shape(x), w_shape, p, &cg) < 0)
        return NULL;
    const int64_t *gs = lt_shape(g);
    if (gs[0] != cg.N || gs[1] != cg.O || gs[2] != cg.Ho || gs[3] != cg.Wo) {
        char b[96];
        lt_set_error("%s: grad_output %s, expected (%lld,%lld,%lld,%lld)", op, lt_shape_str(g, b, sizeof b),
                     (long long)cg.N, (long long)cg.O, (long long)cg.Ho, (long long)cg.Wo);
        return NULL;
    }
    lt_tensor *xc = lt_contiguous(x), *gc = lt_contiguous(g), *gw = lt_empty(4, w_shape, dt);
    if (!xc || !gc || !gw)
        return NULL;
    int m = conv_wino_tile(&cg, dt);
    conv_geom k = cg;
    int64_t p0, q0;
    void *gd = lt_data(gw);
    lt_tensor *hk = NULL;
    if (!m && conv_crop(&cg, &k, &p0, &q0)) { /* the dead taps' gradient is 0 */
        if (!(hk = lt__scratch(k.O * k.C * k.kh * k.kw, dt)))
            return NULL;
        gd = lt_data(hk);
    }
    int rc = m ? same3_bwd_weight(m, lt_data(xc), lt_data(gc), gd, &cg)
             : dt == LT_F32 ? conv_bwd_weight_f32(lt_data(xc), lt_data(gc), gd, &k)
                          : conv_bwd_weight_f64(lt_data(xc), lt_data(gc), gd, &k);
    if (rc == 0 && hk)
        crop_kernel(lt_data(gw), gd, &cg, &k, p0, q0, dt, true);
    lt_release(hk);
    if (rc < 0)
        return NULL;
    int64_t ia[6];
    params_iargs(p, ia);
    if (lt_ag_record(&conv2d_weight_grad_fn, 2, (const lt_tensor *const[]){x, g}, gw, 2,
                     (const lt_tensor *const[]){x, g}, 6, ia, 0, NULL) < 0)
        return NULL;
    return gw;
}

/* ---- registry: samples carry their geometry as a constant i64 input ---- */

/* cfg = {sh, sw, ph, pw, dh, dw, a, b}: a, b are (H, W) of x for
 * input_grad and (kh, kw) for weight_grad. */
static const int64_t conv_cfgs[][6] = {
    {1, 1, 1, 1, 1, 1}, /* 3x3 "same" */
    {2, 2, 1, 0, 1, 1}, /* stride 2, padding on one axis */
    {1, 1, 2, 2, 2, 2}, /* dilation 2 */
    {1, 1, 0, 0, 1, 1}, /* 1x1 pointwise (with a 1x1 kernel) */
    {1, 2, 1, 1, 2, 1}, /* mixed per-axis stride and dilation */
    {2, 3, 0, 0, 1, 1}, /* 1x1 with strides 2 and 3 (a downsampling shortcut) */
    {1, 1, 6, 6, 6, 6}, /* dilation 6 on 5x6: only the centre tap reads the input (the kernel crop) */
    {1, 1, 0, 0, 1, 1}, /* a 5x6 kernel on 5x6: a window (one GEMM per pass) */
    {2, 1, 3, 3, 1, 1}, /* 11x12 on 5x6 with padding 3: cropped to 5x6, a window */
};
#define NCFG 9
static const int64_t conv_kernels[NCFG][2] = {{3, 3}, {3, 2}, {3, 3}, {1, 1}, {2, 3}, {1, 1}, {3, 3}, {5, 6}, {11, 12}};

static lt_nn_conv2d_params params_of_cfg(const lt_tensor *cfg)
{
    const int64_t *c = lt_data(cfg);
    lt_nn_conv2d_params p = {{(int)c[0], (int)c[1]}, {(int)c[2], (int)c[3]}, {(int)c[4], (int)c[5]}};
    return p;
}

static lt_tensor *cfg_tensor(int v, int64_t a, int64_t b)
{
    int64_t c[8];
    memcpy(c, conv_cfgs[v], sizeof conv_cfgs[v]);
    c[6] = a;
    c[7] = b;
    return lt_from_data(c, 1, (int64_t[]){8}, LT_I64);
}

/* Output size of the sample geometry for input (H, W). */
static void sample_out(int v, int64_t H, int64_t W, int64_t *Ho, int64_t *Wo)
{
    const int64_t *c = conv_cfgs[v];
    *Ho = (H + 2 * c[2] - c[4] * (conv_kernels[v][0] - 1) - 1) / c[0] + 1;
    *Wo = (W + 2 * c[3] - c[5] * (conv_kernels[v][1] - 1) - 1) / c[1] + 1;
}

static lt_tensor *leaf(lt_tensor *t) { return lt_ag_set_requires_grad(t, true); }

/* Variant 4 uses a non-contiguous x (a transposed view). */
static lt_tensor *sample_x(int v, lt_rng *r, int64_t N, int64_t C, int64_t H, int64_t W)
{
    if (v != 4)
        return lt__nn_rnd(r, 4, (int64_t[]){N, C, H, W}, -1, 1);
    lt_tensor *t = lt__nn_rnd(r, 4, (int64_t[]){N, C, W, H}, -1, 1);
    return lt_transpose(t, 2, 3);
}

static int s_conv2d(int v, lt_rng *r, lt_tensor **in)
{
    in[0] = leaf(sample_x(v, r, 2, 2, 5, 6));
    in[1] = leaf(lt__nn_rnd(r, 4, (int64_t[]){3, 2, conv_kernels[v][0], conv_kernels[v][1]}, -1, 1));
    in[2] = leaf(lt__nn_rnd(r, 1, (int64_t[]){3}, -1, 1));
    in[3] = cfg_tensor(v, 0, 0);
    return 4;
}

static lt_tensor *f_conv2d(void *ud, int n, lt_tensor *const *in)
{
    (void)ud;
    (void)n;
    lt_nn_conv2d_params p = params_of_cfg(in[3]);
    return lt_nn_conv2d_ex(in[0], in[1], in[2], &p);
}

static int s_conv2d_input_grad(int v, lt_rng *r, lt_tensor **in)
{
    int64_t Ho, Wo;
    sample_out(v, 5, 6, &Ho, &Wo);
    in[0] = leaf(lt__nn_rnd(r, 4, (int64_t[]){2, 3, Ho, Wo}, -1, 1));
    in[1] = leaf(lt__nn_rnd(r, 4, (int64_t[]){3, 2, conv_kernels[v][0], conv_kernels[v][1]}, -1, 1));
    in[2] = cfg_tensor(v, 5, 6);
    return 3;
}

static lt_tensor *f_conv2d_input_grad(void *ud, int n, lt_tensor *const *in)
{
    (void)ud;
    (void)n;
    lt_nn_conv2d_params p = params_of_cfg(in[2]);
    const int64_t *c = lt_data(in[2]);
    return lt_nn_conv2d_input_grad(in[0], in[1], (int64_t[]){lt_size(in[0], 0), lt_size(in[1], 1), c[6], c[7]}, &p);
}

static int s_conv2d_weight_grad(int v, lt_rng *r, lt_tensor **in)
{
    int64_t Ho, Wo;
    sample_out(v, 5, 6, &Ho, &Wo);
    in[0] = leaf(sample_x(v, r, 2, 2, 5, 6));
    in[1] = leaf(lt__nn_rnd(r, 4, (int64_t[]){2, 3, Ho, Wo}, -1, 1));
    in[2] = cfg_tensor(v, conv_kernels[v][0], conv_kernels[v][1]);
    return 3;
}

static lt_tensor *f_conv2d_weight_grad(void *ud, int n, lt_tensor *const *in)
{
    (void)ud;
    (void)n;
    lt_nn_conv2d_params p = params_of_cfg(in[2]);
    const int64_t *c = lt_data(in[2]);
    return lt_nn_conv2d_weight_grad(in[0], in[1], (int64_t[]){lt_size(in[1], 1), lt_size(in[0], 1), c[6], c[7]},
                                    &p);
}

static const lt_ag_opinfo conv_ops[] = {
    {"conv2d", NCFG, s_conv2d, f_conv2d},
    {"conv2d_input_grad", NCFG, s_conv2d_input_grad, f_conv2d_input_grad},
    {"conv2d_weight_grad", NCFG, s_conv2d_weight_grad, f_conv2d_weight_grad},
};

const lt_ag_opinfo *lt__nn_conv_ops(int *n)
{
    *n = (int)(sizeof conv_ops / sizeof conv_ops[0]);
    return conv_ops;
}

const lt_ag_fn *const *lt__nn_conv_fns(void)
{
    static const lt_ag_fn *const fns[] = {&conv2d_fn, &conv2d_input_grad_fn, &conv2d_weight_grad_fn, NULL};
    return fns;
}
