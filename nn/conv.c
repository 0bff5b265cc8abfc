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
 * The family is closed, so every order of derivative exists. Kernels: one
 * im2col of a chunk of images into a (C kh kw, nb Ho Wo) matrix and one GEMM
 * per chunk (DESIGN.md: large GEMMs beat one small GEMM per image); a 1x1,
 * stride-1, unpadded conv is a GEMM per image with no unfolding.
 */
#include "nn_internal.h"
#include "../tensor/tensor_internal.h"

#include <cblas.h>
#include <string.h>

typedef struct conv_geom {
    int64_t N, C, H, W, O, kh, kw, Ho, Wo;
    int64_t sh, sw, ph, pw, dh, dw;
} conv_geom;

static bool conv_is_pointwise(const conv_geom *g)
{
    return g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->ph == 0 && g->pw == 0;
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
    return nb < 1 ? 1 : nb > g->N ? g->N : nb;
}

/* A scratch buffer of n elements: a plain tensor (refcount 1, no frame, no
 * autograd), so its memory comes from the storage cache and the training
 * loop reuses the same blocks instead of mapping (and zeroing) fresh pages
 * on every call. Release with lt_release. */
static lt_tensor *scratch_new(int64_t n, lt_dtype dt) { return lt__new(1, &n, dt); }

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
#define DT LT_F32
#include "conv_kernels.inc"
#undef T
#undef SUF
#undef GEMM
#undef DT
#define T double
#define SUF f64
#define GEMM gemm_f64
#define DT LT_F64
#include "conv_kernels.inc"
#undef T
#undef SUF
#undef GEMM
#undef DT

/* ------------------------------------------------------------------ */
/* Winograd F(2x2, 3x3) for f32 3x3 convolutions, stride 1, padding 1   */
/* ------------------------------------------------------------------ */
/*
 * Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks" (2016).
 * The output is cut into 2x2 tiles; tile t reads a 4x4 input patch d_t
 * (rows 2i-1 .. 2i+2, zero outside). With
 *   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1],
 *   G   = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1],
 *   A^T = [1 1 1 0; 0 1 -1 -1],
 * y_t = A^T [ (G g G^T) .* (B^T d_t B) ] A: per tile 16 multiplies where the
 * direct form has 36, and summed over channels the 16 products are 16
 * GEMMs  M[xi] (O,T) = U[xi] (O,C) @ V[xi] (C,T),  U = G g G^T, V = B^T d B.
 * The input gradient of this convolution is the same kind of convolution
 * of the output gradient with the kernels rotated by 180 degrees and O, C
 * swapped; the weight gradient follows from y_t's formula:
 *   dg = G^T [ sum_t (A gy_t A^T) .* (B^T d_t B) ] G,
 * 16 GEMMs dU[xi] (O,C) += Z[xi] (O,T) @ V[xi]^T with Z = A gy A^T.
 * Three of ResNet-18's four kinds of convolution are of this shape, and
 * they carry over 80% of its FLOPs. All blocking (images per chunk) is
 * shape-only and each GEMM goes through lt__sgemm, so results do not depend
 * on the thread count. The transforms are exact in binary (halves), and
 * the rounding differs from im2col's by a few ulps of the sums.
 */

/* Distance between the 16 planes of a transformed tensor of n elements per
 * plane: n plus 128 bytes, so that the planes (often a power of two apart)
 * do not fall into the same cache sets when a transform writes all 16. */
static inline int64_t wino_ps(int64_t n) { return n + 32; }

/* A 2x2 tile costs 16 products per channel pair whatever part of it lies
 * inside the output, where the direct form costs 9 per output pixel: below
 * two outputs per tile (a 1x1 output, say, ResNet-18's layer4 at 32x32
 * inputs) im2col does less work, before counting the transforms. */
static bool conv_is_wino(const conv_geom *g, lt_dtype dt)
{
    int64_t tiles = ((g->Ho + 1) / 2) * ((g->Wo + 1) / 2);
    return dt == LT_F32 && g->kh == 3 && g->kw == 3 && g->sh == 1 && g->sw == 1 && g->ph == 1 && g->pw == 1 &&
           g->dh == 1 && g->dw == 1 && g->C >= 8 && g->O >= 8 && g->Ho * g->Wo >= 2 * tiles;
}

/* Images per chunk: the transformed tensors (16 x channels x tiles) stay
 * under 2^21 elements each. */
static int64_t wino_chunk(int64_t N, int64_t ch, int64_t tiles_per_image)
{
    int64_t per = 16 * ch * tiles_per_image, nb = ((int64_t)1 << 21) / (per ? per : 1);
    return nb < 1 ? 1 : nb > N ? N : nb;
}

/* V[xi][c][t] = (B^T d B)[xi] for the 4x4 patch of image n0 + t / tpi,
 * channel c, of x (.., C, H, W). */
static void wino_input(const float *x, float *V, int64_t C, int64_t H, int64_t W, int64_t n0, int64_t nb)
{
    int64_t th = (H + 1) / 2, tw = (W + 1) / 2, tpi = th * tw, T = nb * tpi;
    /* (c, n) order: consecutive iterations write consecutive tiles of the
     * same 16 planes, so the stores stream. */
#pragma omp parallel for schedule(static)
    for (int64_t cn = 0; cn < C * nb; cn++) {
        int64_t c = cn / nb, n = cn % nb;
        const float *xp = x + ((n0 + n) * C + c) * H * W;
        for (int64_t ti = 0; ti < th; ti++)
            for (int64_t tj = 0; tj < tw; tj++) {
                float d[4][4], m[4][4];
                for (int a = 0; a < 4; a++) {
                    int64_t h = 2 * ti - 1 + a;
                    for (int b = 0; b < 4; b++) {
                        int64_t w = 2 * tj - 1 + b;
                        d[a][b] = (h >= 0 && h < H && w >= 0 && w < W) ? xp[h * W + w] : 0.0f;
                    }
                }
                for (int b = 0; b < 4; b++) {
                    m[0][b] = d[0][b] - d[2][b];
                    m[1][b] = d[1][b] + d[2][b];
                    m[2][b] = d[2][b] - d[1][b];
                    m[3][b] = d[1][b] - d[3][b];
                }
                int64_t t = n * tpi + ti * tw + tj;
                float *v = V + c * T + t;
                int64_t xs = wino_ps(C * T); /* stride between xi planes */
                for (int a = 0; a < 4; a++) {
                    v[(a * 4 + 0) * xs] = m[a][0] - m[a][2];
                    v[(a * 4 + 1) * xs] = m[a][1] + m[a][2];
                    v[(a * 4 + 2) * xs] = m[a][2] - m[a][1];
                    v[(a * 4 + 3) * xs] = m[a][1] - m[a][3];
                }
            }
    }
}

/* u[xi * xs] = (G k G^T)[xi] for the 3x3 kernel k, or for k rotated by
 * 180 degrees with rot (G as in Lavin & Gray, cited above). */
static inline void wino_kernel(const float *k, float *u, int64_t xs, bool rot)
{
    float g[3][3], m[4][3];
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++)
            g[a][b] = rot ? k[(2 - a) * 3 + (2 - b)] : k[a * 3 + b];
    for (int b = 0; b < 3; b++) {
        m[0][b] = g[0][b];
        m[1][b] = 0.5f * (g[0][b] + g[1][b] + g[2][b]);
        m[2][b] = 0.5f * (g[0][b] - g[1][b] + g[2][b]);
        m[3][b] = g[2][b];
    }
    for (int a = 0; a < 4; a++) {
        u[(a * 4 + 0) * xs] = m[a][0];
        u[(a * 4 + 1) * xs] = 0.5f * (m[a][0] + m[a][1] + m[a][2]);
        u[(a * 4 + 2) * xs] = 0.5f * (m[a][0] - m[a][1] + m[a][2]);
        u[(a * 4 + 3) * xs] = m[a][2];
    }
}

/* U[xi][o][c] = (G k G^T)[xi] for the 3x3 kernel k = w[o][c], or with rot
 * for the input gradient: U[xi][c][o] from w[o][c] rotated by 180 degrees.
 * Recomputed on every call: the weights change in place at every optimizer
 * step and storage has no version counter to key a cache on.
 *
 * Iterate in the order of U's rows so the stores stream, with (o, c) from
 * nested loops: a division and a remainder per kernel to recover them from
 * one flat index cost as much as the transform itself. Every kernel's
 * arithmetic is independent of the loop order and the thread split. */
static void wino_weight(const float *w, float *U, int64_t O, int64_t C, bool rot)
{
    int64_t xs = wino_ps(O * C);
    if (!rot) {
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < O * C; i++)
            wino_kernel(w + i * 9, U + i, xs, false);
        return;
    }
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t c = 0; c < C; c++)
        for (int64_t o = 0; o < O; o++)
            wino_kernel(w + (o * C + c) * 9, U + c * O + o, xs, true);
}

/* y[n0 + n][o] tiles = A^T M A (+ bias), clipped to (H, W). */
static void wino_output(const float *M, const float *bias, float *y, int64_t O, int64_t H, int64_t W, int64_t n0,
                        int64_t nb)
{
    int64_t th = (H + 1) / 2, tw = (W + 1) / 2, tpi = th * tw, T = nb * tpi;
#pragma omp parallel for schedule(static)
    for (int64_t on = 0; on < O * nb; on++) {
        int64_t o = on / nb, n = on % nb;
        float *yp = y + ((n0 + n) * O + o) * H * W, bo = bias ? bias[o] : 0.0f;
        const float *mp = M + o * T + n * tpi;
        int64_t xs = wino_ps(O * T);
        for (int64_t ti = 0; ti < th; ti++)
            for (int64_t tj = 0; tj < tw; tj++) {
                const float *q = mp + ti * tw + tj;
                float m[4][4], r[2][4];
                for (int a = 0; a < 4; a++)
                    for (int b = 0; b < 4; b++)
                        m[a][b] = q[(a * 4 + b) * xs];
                for (int b = 0; b < 4; b++) {
                    r[0][b] = m[0][b] + m[1][b] + m[2][b];
                    r[1][b] = m[1][b] - m[2][b] - m[3][b];
                }
                for (int a = 0; a < 2; a++) {
                    int64_t h = 2 * ti + a;
                    if (h >= H)
                        continue;
                    float v0 = r[a][0] + r[a][1] + r[a][2] + bo, v1 = r[a][1] - r[a][2] - r[a][3] + bo;
                    yp[h * W + 2 * tj] = v0;
                    if (2 * tj + 1 < W)
                        yp[h * W + 2 * tj + 1] = v1;
                }
            }
    }
}

/* Z[xi][o][t] = (A gy_t A^T)[xi], gy_t the 2x2 tile of gy (zero outside). */
static void wino_grad_out(const float *gy, float *Z, int64_t O, int64_t H, int64_t W, int64_t n0, int64_t nb)
{
    int64_t th = (H + 1) / 2, tw = (W + 1) / 2, tpi = th * tw, T = nb * tpi;
#pragma omp parallel for schedule(static)
    for (int64_t on = 0; on < O * nb; on++) {
        int64_t o = on / nb, n = on % nb;
        const float *gp = gy + ((n0 + n) * O + o) * H * W;
        for (int64_t ti = 0; ti < th; ti++)
            for (int64_t tj = 0; tj < tw; tj++) {
                float e[2][2], m[4][2];
                for (int a = 0; a < 2; a++)
                    for (int b = 0; b < 2; b++) {
                        int64_t h = 2 * ti + a, w = 2 * tj + b;
                        e[a][b] = (h < H && w < W) ? gp[h * W + w] : 0.0f;
                    }
                for (int b = 0; b < 2; b++) {
                    m[0][b] = e[0][b];
                    m[1][b] = e[0][b] + e[1][b];
                    m[2][b] = e[0][b] - e[1][b];
                    m[3][b] = -e[1][b];
                }
                float *z = Z + o * T + n * tpi + ti * tw + tj;
                int64_t xs = wino_ps(O * T);
                for (int a = 0; a < 4; a++) {
                    z[(a * 4 + 0) * xs] = m[a][0];
                    z[(a * 4 + 1) * xs] = m[a][0] + m[a][1];
                    z[(a * 4 + 2) * xs] = m[a][0] - m[a][1];
                    z[(a * 4 + 3) * xs] = -m[a][1];
                }
            }
    }
}

/* out (N, Cout, H, W) = conv3x3 same of in (N, Cin, H, W) with the
 * transformed kernels U[xi] (Cout, Cin); bias or NULL. */
static int wino_conv(const float *in, const float *U, const float *bias, float *out, int64_t N, int64_t Cin,
                     int64_t Cout, int64_t H, int64_t W)
{
    int64_t tpi = ((H + 1) / 2) * ((W + 1) / 2);
    int64_t nb = wino_chunk(N, Cin > Cout ? Cin : Cout, tpi);
    lt_tensor *hv = scratch_new(16 * wino_ps(Cin * nb * tpi), LT_F32);
    lt_tensor *hm = scratch_new(16 * wino_ps(Cout * nb * tpi), LT_F32);
    if (!hv || !hm) {
        lt_release(hv);
        lt_release(hm);
        return -1;
    }
    float *V = lt_data(hv), *M = lt_data(hm);
    for (int64_t n0 = 0; n0 < N; n0 += nb) {
        int64_t m = N - n0 < nb ? N - n0 : nb, T = m * tpi;
        wino_input(in, V, Cin, H, W, n0, m);
        /* 16 independent products, one per task: a GEMM called inside the
         * parallel loop runs its shape-only blocks on its own thread, so the
         * result is the same as from a call outside it. */
#pragma omp parallel for schedule(dynamic, 1)
        for (int xi = 0; xi < 16; xi++)
            lt__sgemm(false, false, Cout, T, Cin, 1.0f, U + xi * wino_ps(Cout * Cin), Cin, V + xi * wino_ps(Cin * T),
                      T, 0.0f, M + xi * wino_ps(Cout * T), T);
        wino_output(M, bias, out, Cout, H, W, n0, m);
    }
    lt_release(hv);
    lt_release(hm);
    return 0;
}

static int wino_fwd(const float *x, const float *w, const float *b, float *y, const conv_geom *g)
{
    lt_tensor *hu = scratch_new(16 * wino_ps(g->O * g->C), LT_F32);
    if (!hu)
        return -1;
    wino_weight(w, lt_data(hu), g->O, g->C, false);
    int rc = wino_conv(x, lt_data(hu), b, y, g->N, g->C, g->O, g->H, g->W);
    lt_release(hu);
    return rc;
}

static int wino_bwd_input(const float *gy, const float *w, float *gx, const conv_geom *g)
{
    lt_tensor *hu = scratch_new(16 * wino_ps(g->O * g->C), LT_F32);
    if (!hu)
        return -1;
    wino_weight(w, lt_data(hu), g->O, g->C, true);
    int rc = wino_conv(gy, lt_data(hu), NULL, gx, g->N, g->O, g->C, g->H, g->W);
    lt_release(hu);
    return rc;
}

static int wino_bwd_weight(const float *x, const float *gy, float *gw, const conv_geom *g)
{
    int64_t H = g->H, W = g->W, O = g->O, C = g->C, tpi = ((H + 1) / 2) * ((W + 1) / 2);
    int64_t nb = wino_chunk(g->N, C > O ? C : O, tpi);
    lt_tensor *hv = scratch_new(16 * wino_ps(C * nb * tpi), LT_F32);
    lt_tensor *hz = scratch_new(16 * wino_ps(O * nb * tpi), LT_F32);
    lt_tensor *hu = scratch_new(16 * wino_ps(O * C), LT_F32);
    if (!hv || !hz || !hu) {
        lt_release(hv);
        lt_release(hz);
        lt_release(hu);
        return -1;
    }
    float *V = lt_data(hv), *Z = lt_data(hz), *dU = lt_data(hu);
    for (int64_t n0 = 0; n0 < g->N; n0 += nb) {
        int64_t m = g->N - n0 < nb ? g->N - n0 : nb, T = m * tpi;
        wino_input(x, V, C, H, W, n0, m);
        wino_grad_out(gy, Z, O, H, W, n0, m);
        float beta = n0 ? 1.0f : 0.0f;
#pragma omp parallel for schedule(dynamic, 1)
        for (int xi = 0; xi < 16; xi++)
            lt__sgemm(false, true, O, C, T, 1.0f, Z + xi * wino_ps(O * T), T, V + xi * wino_ps(C * T), T, beta,
                      dU + xi * wino_ps(O * C), C);
    }
    /* gw[o][c] = G^T dU G */
#pragma omp parallel for schedule(static)
    for (int64_t oc = 0; oc < O * C; oc++) {
        float u[4][4], m[3][4];
        for (int a = 0; a < 4; a++)
            for (int b = 0; b < 4; b++)
                u[a][b] = dU[(a * 4 + b) * wino_ps(O * C) + oc];
        for (int b = 0; b < 4; b++) {
            m[0][b] = u[0][b] + 0.5f * (u[1][b] + u[2][b]);
            m[1][b] = 0.5f * (u[1][b] - u[2][b]);
            m[2][b] = 0.5f * (u[1][b] + u[2][b]) + u[3][b];
        }
        float *k = gw + oc * 9;
        for (int a = 0; a < 3; a++) {
            k[a * 3 + 0] = m[a][0] + 0.5f * (m[a][1] + m[a][2]);
            k[a * 3 + 1] = 0.5f * (m[a][1] - m[a][2]);
            k[a * 3 + 2] = 0.5f * (m[a][1] + m[a][2]) + m[a][3];
        }
    }
    lt_release(hv);
    lt_release(hz);
    lt_release(hu);
    return 0;
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

static int bw_conv2d(lt_ag_ctx *ctx, const lt_tensor *g, lt_tensor **gin)
{
    lt_nn_conv2d_params p = params_of_ctx(ctx);
    const lt_tensor *x = lt_ag_saved(ctx, 0), *w = lt_ag_saved(ctx, 1);
    if (lt_ag_needs_grad(ctx, 0) && !(gin[0] = lt_nn_conv2d_input_grad(g, w, lt_shape(x), &p)))
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
    int rc = conv_is_wino(&g, dt) ? wino_fwd(lt_data(xc), lt_data(wc), bc ? lt_data(bc) : NULL, lt_data(y), &g)
             : dt == LT_F32 ? conv_fwd_f32(lt_data(xc), lt_data(wc), bc ? lt_data(bc) : NULL, lt_data(y), &g)
                          : conv_fwd_f64(lt_data(xc), lt_data(wc), bc ? lt_data(bc) : NULL, lt_data(y), &g);
    if (rc < 0)
        return NULL;
    int64_t ia[6];
    params_iargs(p, ia);
    if (lt_ag_record(&conv2d_fn, 3, (const lt_tensor *const[]){x, w, b}, y, 2, (const lt_tensor *const[]){x, w}, 6,
                     ia, 0, NULL) < 0)
        return NULL;
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
    int rc = conv_is_wino(&cg, dt) ? wino_bwd_input(lt_data(gc), lt_data(wc), lt_data(gx), &cg)
             : dt == LT_F32 ? conv_bwd_input_f32(lt_data(gc), lt_data(wc), lt_data(gx), &cg)
                          : conv_bwd_input_f64(lt_data(gc), lt_data(wc), lt_data(gx), &cg);
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
    int rc = conv_is_wino(&cg, dt) ? wino_bwd_weight(lt_data(xc), lt_data(gc), lt_data(gw), &cg)
             : dt == LT_F32 ? conv_bwd_weight_f32(lt_data(xc), lt_data(gc), lt_data(gw), &cg)
                          : conv_bwd_weight_f64(lt_data(xc), lt_data(gc), lt_data(gw), &cg);
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
};
#define NCFG 5
static const int64_t conv_kernels[NCFG][2] = {{3, 3}, {3, 2}, {3, 3}, {1, 1}, {2, 3}};

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
