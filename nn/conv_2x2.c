/*
 * conv_2x2.c: f32 3x3 convolutions with stride 1 and padding 1 on 2x2
 * maps (ResNet-18's layer4 at 64x64 inputs, layer3 at 32x32) as dense
 * GEMMs on the packed micro-kernel (tensor/ukernel.c).
 *
 * On a 2x2 map every output pixel (i, j) reads all four input pixels
 * (a, b), each through its own tap (1 + a - i, 1 + b - j), and no product
 * meets the padding. Per output pixel the convolution is one GEMM with
 * K = 4 C over the whole input image:
 *
 *   y[n, o, i, j] = sum_{c, a, b} w[o, c, 1 + a - i, 1 + b - j] x[n, c, a, b]
 *
 * 16 products per image and channel pair, as many as Winograd F(2x2)
 * makes on one tile per image, without its transforms (with one tile per
 * image, transforming the kernels cost more than the products). The
 * input gradient is the same GEMM with the kernels rotated: gx's (a, b)
 * takes gy's (i, j) through tap (1 + a - i, 1 + b - j) of w[o, c]. The
 * weight gradient is, per tap (p, q), one GEMM over the images and the
 * pixel pairs the tap joins, (i, j) -> (i + p - 1, j + q - 1): four for
 * the centre tap, two for an edge tap, one for a corner.
 *
 * Work items are panels of LT__UK_MR output rows; each output element is
 * one item's sum in a fixed order, so results do not depend on the
 * thread count.
 */
#include "nn_internal.h"
#include "../tensor/tensor_internal.h"

#include <string.h>

#define MR LT__UK_MR
#define NR LT__UK_NR

static int64_t round_up(int64_t n, int64_t r) { return (n + r - 1) / r * r; }

/* src (N, K), an image's K values contiguous, as the K x N B operand of
 * lt__sgemm_packed: panels of NR images, zeros past N. */
static void pack_images(const float *src, int64_t N, int64_t K, float *bp)
{
    int64_t np = round_up(N, NR) / NR;
#pragma omp parallel for schedule(static)
    for (int64_t p = 0; p < np; p++) {
        float *d = bp + p * NR * K;
        for (int j = 0; j < NR; j++) {
            int64_t n = p * NR + j;
            if (n >= N) {
                for (int64_t k = 0; k < K; k++)
                    d[k * NR + j] = 0.0f;
                continue;
            }
            const float *s = src + n * K;
            for (int64_t k = 0; k < K; k++)
                d[k * NR + j] = s[k];
        }
    }
}

/* tap_fwd[s][t]: the kernel element (3 x 3, row-major) joining output
 * pixel s = 2 i + j and input pixel t = 2 a + b, (1 + a - i, 1 + b - j);
 * the rotated kernels' is 8 minus it. */
static const int tap_fwd[4][4] = {{4, 5, 7, 8}, {3, 4, 6, 7}, {1, 2, 4, 5}, {0, 1, 3, 4}};

/* Channel c's share of the four A panels: d + s sK + 4 MR c + t MR + rr
 * = kernel rr's tap tap_fwd[s][t] (rotated: 8 minus it), kr[rr] the MR
 * kernels (9 floats each), zeros for rows past `rows`. With AVX-512 each
 * 16 (or 8) of a panel's 24 values is three two-row permutes and two
 * blends of the six kernels in registers (lane j: row rr = j mod 6 within
 * the 24, tap per t = j / 6); else a scalar copy through a tap-major
 * table (with it, forward and input gradient at 512 channels, b32, took
 * 1.10-1.22x as long). */
#if defined(__AVX512F__)
#include <immintrin.h>
typedef struct pack_idx {
    __m512i idx[8];     /* output vector v = 2 s + half: (rr % 2) 16 + tap */
    __mmask16 m23[2], m45[2]; /* lanes of rows 2-3 and 4-5, per half */
} pack_idx;

static void pack_idx_make(bool rot, pack_idx *p)
{
    for (int v = 0; v < 8; v++) {
        int32_t ix[16] = {0};
        int half = v % 2, n = half ? 8 : 16;
        __mmask16 m23 = 0, m45 = 0;
        for (int j = 0; j < n; j++) {
            int jj = half * 16 + j, t = jj / MR, rr = jj % MR, e = tap_fwd[v / 2][t];
            ix[j] = (rr % 2) * 16 + (rot ? 8 - e : e);
            m23 |= (__mmask16)((rr / 2 == 1) << j);
            m45 |= (__mmask16)((rr / 2 == 2) << j);
        }
        p->idx[v] = _mm512_loadu_si512(ix);
        p->m23[half] = m23;
        p->m45[half] = m45;
    }
}

static inline void pack_channel(const float *const *kr, int rows, bool rot, const pack_idx *p, float *d, int64_t sK)
{
    (void)rot;
    __m512 k[MR];
    for (int rr = 0; rr < MR; rr++)
        k[rr] = _mm512_maskz_loadu_ps(rr < rows ? 0x1ff : 0, kr[rr]);
    for (int v = 0; v < 8; v++) {
        int half = v % 2;
        __m512 r = _mm512_permutex2var_ps(k[0], p->idx[v], k[1]);
        r = _mm512_mask_mov_ps(r, p->m23[half], _mm512_permutex2var_ps(k[2], p->idx[v], k[3]));
        r = _mm512_mask_mov_ps(r, p->m45[half], _mm512_permutex2var_ps(k[4], p->idx[v], k[5]));
        float *o = d + v / 2 * sK;
        if (half)
            _mm512_mask_storeu_ps(o + 16, 0xff, r);
        else
            _mm512_storeu_ps(o, r);
    }
}
#else
typedef struct pack_idx {
    int unused;
} pack_idx;

static void pack_idx_make(bool rot, pack_idx *p)
{
    (void)rot;
    p->unused = 0;
}

static inline void pack_channel(const float *const *kr, int rows, bool rot, const pack_idx *p, float *d, int64_t sK)
{
    (void)p;
    float kt[9][MR];
    for (int rr = 0; rr < MR; rr++)
        for (int e = 0; e < 9; e++)
            kt[rot ? 8 - e : e][rr] = rr < rows ? kr[rr][e] : 0.0f;
    for (int s = 0; s < 4; s++)
        for (int t = 0; t < 4; t++)
            memcpy(d + s * sK + t * MR, kt[tap_fwd[s][t]], sizeof(float) * MR);
}
#endif

/* out (N, Cout, 2, 2) from in (N, Cin, 2, 2): forward (rot false, w is
 * (Cout, Cin, 3, 3)) or input gradient (rot true, w is (Cin, Cout, 3, 3)),
 * plus bias (or NULL). Item r: output channels r MR .. r MR + MR - 1; its
 * four A panels (one per output pixel s = 2 i + j, row = channel, column
 * k = 4 c + 2 a + b) are packed from the kernels, then four GEMMs against
 * all images. */
static int apply(const float *in, const float *w, const float *bias, float *out, int64_t N, int64_t Cin,
                 int64_t Cout, bool rot)
{
    int64_t K = 4 * Cin, N16 = round_up(N, NR), R = round_up(Cout, MR) / MR;
    int64_t per = 4 * MR * K + 4 * MR * N16;
    int nth = lt__team_size();
    lt_tensor *hb = lt__scratch(N16 * K, LT_F32), *ht = lt__scratch(nth * per, LT_F32);
    if (!hb || !ht) {
        lt_release(hb);
        lt_release(ht);
        return -1;
    }
    float *bp = lt_data(hb), *tb = lt_data(ht);
    pack_images(in, N, K, bp);
    pack_idx pi;
    pack_idx_make(rot, &pi);
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t r = 0; r < R; r++) {
        float *ap = tb + lt__thread_id() * per, *mb = ap + 4 * MR * K;
        int64_t o0 = r * MR, rows = Cout - o0 < MR ? Cout - o0 : MR;
        for (int64_t c = 0; c < Cin; c++) {
            if (rot && c + 4 < Cin)
                for (int q = 0; q < MR * 9; q += 16)
                    __builtin_prefetch(w + ((c + 4) * Cout + o0) * 9 + q);
            const float *kr[MR]; /* the MR kernels of channel c */
            for (int rr = 0; rr < MR; rr++)
                kr[rr] = rot ? w + (c * Cout + o0 + rr) * 9 : w + ((o0 + rr) * Cin + c) * 9;
            pack_channel(kr, (int)rows, rot, &pi, ap + c * 4 * MR, MR * K);
        }
        for (int s = 0; s < 4; s++)
            lt__sgemm_packed(MR, K, (int)(N16 / NR), ap + s * MR * K, bp, mb + s * MR * N16, N16, false);
        for (int64_t n = 0; n < N; n++)
            for (int64_t rr = 0; rr < rows; rr++) {
                float bv = bias ? bias[o0 + rr] : 0.0f, *o = out + (n * Cout + o0 + rr) * 4;
                for (int s = 0; s < 4; s++)
                    o[s] = mb[(s * MR + rr) * N16 + n] + bv;
            }
    }
    lt_release(hb);
    lt_release(ht);
    return 0;
}

int lt__conv2x2_fwd(const float *x, const float *w, const float *b, float *y, int64_t N, int64_t C, int64_t O)
{
    return apply(x, w, b, y, N, C, O, false);
}

int lt__conv2x2_bwd_input(const float *gy, const float *w, float *gx, int64_t N, int64_t C, int64_t O)
{
    return apply(gy, w, NULL, gx, N, O, C, true);
}

/* Channels per block of the weight gradient's items: 4 B panels. */
#define WB (4 * NR)

/* The pixel pairs (output s, input t) that tap (p, q) joins. */
typedef struct tap_pairs {
    int n, s[4], t[4];
    int64_t koff; /* the tap's first row of the stacked K (images x pairs) */
} tap_pairs;

static void tap_pairs_make(tap_pairs tp[9], int64_t N)
{
    int64_t koff = 0;
    for (int p = 0; p < 3; p++)
        for (int q = 0; q < 3; q++) {
            tap_pairs *e = &tp[p * 3 + q];
            e->n = 0;
            for (int s = 0; s < 4; s++) {
                int a = s / 2 + p - 1, b = s % 2 + q - 1;
                if (a >= 0 && a < 2 && b >= 0 && b < 2) {
                    e->s[e->n] = s;
                    e->t[e->n] = a * 2 + b;
                    e->n++;
                }
            }
            e->koff = koff;
            koff += N * e->n;
        }
}

/* gw (O, C, 3, 3) from x (N, C, 2, 2) and gy (N, O, 2, 2): tap (p, q)'s
 * plane gw[:, :, p, q] = A (O, K) B (K, C), K running over (image, pair):
 * A from gy's output pixels s, B from x's input pixels t. B is packed
 * once for all taps; item r packs its rows' A for all taps, then per
 * block of WB channels makes the nine GEMMs and writes the block's
 * kernels whole. */
int lt__conv2x2_bwd_weight(const float *x, const float *gy, float *gw, int64_t N, int64_t C, int64_t O)
{
    tap_pairs tp[9];
    tap_pairs_make(tp, N);
    int64_t KT = 16 * N, C16 = round_up(C, NR), R = round_up(O, MR) / MR;
    int64_t per = KT * MR + 9 * MR * WB + 9 * WB;
    int nth = lt__team_size();
    lt_tensor *hb = lt__scratch(KT * C16, LT_F32), *ht = lt__scratch(nth * per, LT_F32);
    if (!hb || !ht) {
        lt_release(hb);
        lt_release(ht);
        return -1;
    }
    float *bp = lt_data(hb), *tb = lt_data(ht);
    /* B of tap e: (K_e = N e->n) x C16 in NR-channel panels at bp + koff C16. */
#pragma omp parallel for schedule(static)
    for (int64_t it = 0; it < 9 * (C16 / NR); it++) {
        const tap_pairs *e = &tp[it % 9];
        int64_t pc = it / 9, ke = N * e->n;
        float *d = bp + e->koff * C16 + pc * NR * ke;
        for (int j = 0; j < NR; j++) {
            int64_t c = pc * NR + j;
            for (int64_t n = 0; n < N; n++)
                for (int u = 0; u < e->n; u++)
                    d[(n * e->n + u) * NR + j] = c < C ? x[(n * C + c) * 4 + e->t[u]] : 0.0f;
        }
    }
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t r = 0; r < R; r++) {
        float *ap = tb + lt__thread_id() * per, *mb = ap + KT * MR;
        int64_t o0 = r * MR, rows = O - o0 < MR ? O - o0 : MR;
        for (int e = 0; e < 9; e++)
            for (int64_t n = 0; n < N; n++)
                for (int u = 0; u < tp[e].n; u++) {
                    float *d = ap + (tp[e].koff + n * tp[e].n + u) * MR;
                    for (int rr = 0; rr < MR; rr++)
                        d[rr] = rr < rows ? gy[(n * O + o0 + rr) * 4 + tp[e].s[u]] : 0.0f;
                }
        for (int64_t c0 = 0; c0 < C16; c0 += WB) {
            int64_t nc = C16 - c0 < WB ? C16 - c0 : WB, cw = C - c0 < nc ? C - c0 : nc;
            for (int e = 0; e < 9; e++) {
                int64_t ke = N * tp[e].n;
                lt__sgemm_packed(MR, ke, (int)(nc / NR), ap + tp[e].koff * MR, bp + tp[e].koff * C16 + c0 * ke,
                                 mb + e * MR * WB, WB, false);
            }
            for (int64_t rr = 0; rr < rows; rr++) {
                float *row = mb + 9 * MR * WB; /* the block's kernels of row rr, then written whole */
                for (int64_t c = 0; c < cw; c++)
                    for (int e = 0; e < 9; e++)
                        row[c * 9 + e] = mb[(e * MR + rr) * WB + c];
                lt__stream_f32(gw + ((o0 + rr) * C + c0) * 9, row, (size_t)(cw * 9));
            }
        }
        lt__stream_fence();
    }
    lt_release(hb);
    lt_release(ht);
    return 0;
}
