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

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "winograd_tiles.inc"

int lt__wino_vector_gathers(int on)
{
#ifndef WINO_AVX512
    if (on)
        return -1;
#endif
    return __atomic_exchange_n(&vec_gathers, on ? 1 : 0, __ATOMIC_RELAXED);
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
 * under 2^lg elements each. */
static int64_t wino_chunk(int m, int64_t N, int64_t ch, int64_t tpi, int lg)
{
    int64_t per = (m + 2) * (m + 2) * ch * tpi, nb = ((int64_t)1 << lg) / (per ? per : 1);
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
    int64_t C16 = round_nr(C), O6 = round_mr(O), uxs = wino_ps(O6 * C16), tpi = tiles_per_image(m, H, W);
    bool big = P * O6 * C16 >= ((int64_t)1 << 21);
    /* Chunks of 2^19 transformed values per tensor instead of 2^21 where
     * the maps are large (49+ tiles per image) and dU is not blockwise:
     * layer1's and layer2's weight gradients at 224x224 (b8) 1.05-1.3x
     * faster, medians of 15 calls, three alternated runs. At 64x64 inputs
     * (16 and 4 tiles per image) it measured 0.86-1.13x and stays. */
    int64_t nb = wino_chunk(m, N, C > O ? C : O, tpi, big || tpi < 49 ? 21 : 19);
    /* With all images in one chunk and a dU of 8 MiB or more (ResNet-18's
     * layer3 at 4x4 and layer4 at 2x2 and 7x7), dU is never written out:
     * each block of kernels goes from products to G^T dU G in cache
     * (weight_blocks), and hu holds the threads' block buffers instead.
     * Medians of 40 alternated calls, 3-4 sets: layer4 at 7x7 (b8)
     * 1.20-1.61x, layer3 at 4x4 1.20-1.46x, layer4 at 2x2 0.91-1.14x;
     * with a smaller dU, streaming V and Z once per block row was up to
     * 1.2x slower than the whole-plane products. The sums are the same
     * either way. */
    bool fused = nb == N && big;
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
