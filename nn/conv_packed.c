/*
 * conv_packed.c: the f32 convolution forward for geometries Winograd does
 * not take (strided, 1x1 with stride, 7x7, ...), as an implicit GEMM
 *   y (O, N Ho Wo) = W (O, K) cols (K, N Ho Wo),  K = C kh kw,
 * where cols, im2col's column matrix, is never built whole: each work
 * item gathers the columns of a few panels of 16 output pixels straight
 * into lt__sgemm_packed's B layout (K x 16 per panel, in cache), multiplies
 * and writes its pixels of y. This removes im2col's pass through memory,
 * OpenBLAS's own packing of it and its zeroing of C.
 *
 * Every output element is one sequential sum over k (ukernel.c), so the
 * result does not depend on the split between threads.
 *
 * The weight gradient is the same kind of product with the roles turned,
 *   gw (O, K) = gy (O, N Ho Wo) cols^T (N Ho Wo, K),
 * summed over pixels in blocks of 256: gy goes into 6-row panels per
 * block once; each work item owns a few 16-column panels of gw (taps),
 * and per block gathers its rows of cols (row runs of output pixels,
 * as the forward's) and transposes them into B panels.
 */
#include "nn_internal.h"
#include "../tensor/tensor_internal.h"

#include <string.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#define NR LT__UK_NR
#define MR LT__UK_MR

typedef struct packed_plan {
    const lt__conv_geom *g;
    int64_t K, R6, L, npan, nbp, nblk, rg, nog;
    int64_t per; /* scratch floats per thread: B panels, then products */
} packed_plan;

/* Row r's columns w0, w0 + st, ... (len <= 16 of them; zero outside
 * 0 .. W - 1) into dst: where all lie inside the row, unit-stride loads
 * the compiler vectorizes, or for stride 2 and 8 or more columns
 * lt__gather_s2 (GCC 12 leaves that copy scalar), else a strided loop;
 * where some do not, a loop that tests each column (lt__gather_s2 there
 * measured 0.97x on the 224x224 stem's forward). */
static inline void gather_row(const float *r, int64_t W, int64_t w0, int64_t st, int len, float *dst)
{
    if (w0 >= 0 && w0 + (len - 1) * st < W) {
        if (st == 2 && len >= 8)
            lt__gather_s2(r, W, w0, len, dst);
        else if (st == 1)
            for (int t = 0; t < len; t++)
                dst[t] = r[w0 + t];
        else
            for (int t = 0; t < len; t++)
                dst[t] = r[w0 + t * st];
        return;
    }
    for (int t = 0; t < len; t++) {
        int64_t w = w0 + t * st;
        dst[t] = w >= 0 && w < W ? r[w] : 0.0f;
    }
}

/* A panel whose 16 pixels lie in one output row of one image: each (c, p)
 * is one input row (or padding), each q 16 columns st apart. */
static void gather_panel_row(const float *x, const lt__conv_geom *g, int64_t n, int64_t oh, int64_t ow, float *bp)
{
    int64_t HW = g->H * g->W, hb = oh * g->sh - g->ph, wb = ow * g->sw - g->pw;
    float *dst = bp;
    for (int64_t c = 0; c < g->C; c++)
        for (int64_t p = 0; p < g->kh; p++) {
            int64_t h = hb + p * g->dh;
            if (h < 0 || h >= g->H) {
                memset(dst, 0, sizeof(float) * (size_t)(NR * g->kw));
                dst += NR * g->kw;
                continue;
            }
            const float *r = x + (n * g->C + c) * HW + h * g->W;
            for (int64_t q = 0; q < g->kw; q++, dst += NR)
                gather_row(r, g->W, wb + q * g->dw, g->sw, NR, dst);
        }
}

/* bp (K x 16, row k = (c, p, q)) = the im2col columns of output pixels
 * l0 .. l0 + 15 (all N images' pixels in order), zero past L or outside
 * the input. */
static void gather_panel(const float *x, const lt__conv_geom *g, int64_t L, int64_t l0, float *bp)
{
    int64_t S = g->Ho * g->Wo, HW = g->H * g->W;
    if (l0 + NR <= L && l0 % S % g->Wo + NR <= g->Wo) {
        gather_panel_row(x, g, l0 / S, l0 % S / g->Wo, l0 % S % g->Wo, bp);
        return;
    }
    if (g->Wo >= 8) {
        /* Runs of pixels in one output row of one image (maps narrower
         * than 16, or a panel across a row end), each run gathered as
         * gather_panel_row gathers a panel, where the per-pixel loop
         * below tested bounds per element: ResNet-18's layer2.0.conv1
         * forward at 64x64 inputs (8 pixels per output row) 2.2-2.8 ->
         * 1.9-2.3 ms, at 224x224 layer2.0.conv1 and layer3.0.conv1 1.0-1.3x
         * (medians of 41 and 11 calls, four alternated runs). With runs of
         * 4 or 2 pixels (layer3 and layer4 at 64x64) it was up to 1.3x
         * slower, so narrower maps keep the per-pixel loop. */
        int64_t rn[NR], rh[NR], rw[NR];
        int rt[NR + 1], nr = 0;
        for (int t = 0; t < NR && l0 + t < L;) {
            int64_t l = l0 + t, n = l / S, s = l % S, ow = s % g->Wo;
            int len = (int)(g->Wo - ow < NR - t ? g->Wo - ow : NR - t);
            len = l0 + t + len <= L ? len : (int)(L - l0 - t);
            rn[nr] = n;
            rh[nr] = s / g->Wo * g->sh - g->ph;
            rw[nr] = ow * g->sw - g->pw;
            rt[nr++] = t;
            t += len;
            rt[nr] = t;
        }
        int tend = nr ? rt[nr] : 0;
        float *dst = bp;
        for (int64_t c = 0; c < g->C; c++)
            for (int64_t p = 0; p < g->kh; p++, dst += NR * g->kw) {
                for (int k = 0; k < nr; k++) {
                    int len = rt[k + 1] - rt[k];
                    int64_t h = rh[k] + p * g->dh;
                    if (h < 0 || h >= g->H) {
                        for (int64_t q = 0; q < g->kw; q++)
                            memset(dst + q * NR + rt[k], 0, sizeof(float) * (size_t)len);
                        continue;
                    }
                    const float *r = x + (rn[k] * g->C + c) * HW + h * g->W;
                    for (int64_t q = 0; q < g->kw; q++)
                        gather_row(r, g->W, rw[k] + q * g->dw, g->sw, len, dst + q * NR + rt[k]);
                }
                if (tend < NR)
                    for (int64_t q = 0; q < g->kw; q++)
                        memset(dst + q * NR + tend, 0, sizeof(float) * (size_t)(NR - tend));
            }
        return;
    }
    int64_t xoff[NR], hb[NR], wb[NR];
    for (int t = 0; t < NR; t++) {
        int64_t l = l0 + t, n = l / S, s = l % S;
        xoff[t] = l < L ? n * g->C * HW : -1;
        hb[t] = s / g->Wo * g->sh - g->ph;
        wb[t] = s % g->Wo * g->sw - g->pw;
    }
    float *dst = bp;
    for (int64_t c = 0; c < g->C; c++)
        for (int64_t p = 0; p < g->kh; p++) {
            const float *row[NR];
            for (int t = 0; t < NR; t++) {
                int64_t h = hb[t] + p * g->dh;
                row[t] = xoff[t] >= 0 && h >= 0 && h < g->H ? x + xoff[t] + c * HW + h * g->W : NULL;
            }
            for (int64_t q = 0; q < g->kw; q++, dst += NR)
                for (int t = 0; t < NR; t++) {
                    int64_t w = wb[t] + q * g->dw;
                    dst[t] = row[t] && w >= 0 && w < g->W ? row[t][w] : 0.0f;
                }
        }
}

/* One item: panels of block b, output rows [o0, o1) of the R6. */
static void packed_item(const packed_plan *pl, const float *x, const float *ap, const float *bias, float *y,
                        int64_t b, int64_t o0, float *buf)
{
    const lt__conv_geom *g = pl->g;
    int64_t K = pl->K, tb = pl->nbp * NR, l0 = b * tb, S = g->Ho * g->Wo;
    int64_t o1 = o0 + pl->rg < pl->R6 ? o0 + pl->rg : pl->R6;
    int np = (int)(pl->npan - b * pl->nbp < pl->nbp ? pl->npan - b * pl->nbp : pl->nbp);
    float *bp = buf, *mb = buf + pl->nbp * NR * K;
    for (int p = 0; p < np; p++)
        gather_panel(x, g, pl->L, l0 + p * NR, bp + p * NR * K);
    lt__sgemm_packed(o1 - o0, K, np, ap + o0 * K, bp, mb, tb, false);
    int64_t nl = pl->L - l0 < np * NR ? pl->L - l0 : np * NR;
    for (int64_t t = 0; t < nl;) {
        /* a run of pixels of one image: contiguous in y for every o */
        int64_t l = l0 + t, n = l / S, s = l % S, run = S - s < nl - t ? S - s : nl - t;
        for (int64_t o = o0; o < o1 && o < g->O; o++) {
            float bo = bias ? bias[o] : 0.0f;
            const float *src = mb + (o - o0) * tb + t;
            float *dst = y + (n * g->O + o) * S + s;
            for (int64_t i = 0; i < run; i++)
                dst[i] = src[i] + bo;
        }
        t += run;
    }
}

int lt__conv_fwd_packed(const float *x, const float *w, const float *b, float *y, const lt__conv_geom *g)
{
    int nth = lt__team_size();
    packed_plan pl = {.g = g, .K = g->C * g->kh * g->kw, .L = g->N * g->Ho * g->Wo};
    pl.R6 = (g->O + MR - 1) / MR * MR;
    pl.npan = (pl.L + NR - 1) / NR;
    /* B panels of a block under 512 KiB; few blocks -> split the rows */
    int64_t nbp = ((int64_t)1 << 17) / (pl.K * NR);
    nbp = nbp < 1 ? 1 : nbp > 4 ? 4 : nbp;
    pl.nbp = nbp < pl.npan ? nbp : pl.npan;
    pl.nblk = (pl.npan + pl.nbp - 1) / pl.nbp;
    lt__sgemm_packed_row_groups(pl.nblk, pl.R6, nth, &pl.rg, &pl.nog);
    pl.per = pl.nbp * NR * pl.K + pl.rg * pl.nbp * NR;
    lt_tensor *ha = lt__scratch(pl.R6 * pl.K, LT_F32), *hb = lt__scratch(nth * pl.per, LT_F32);
    if (!ha || !hb) {
        lt_release(ha);
        lt_release(hb);
        return -1;
    }
    float *ap = lt_data(ha), *buf = lt_data(hb);
    /* W (O, K) into MR-row panels, zero rows past O */
#pragma omp parallel for schedule(static)
    for (int64_t pan = 0; pan < pl.R6 / MR; pan++)
        for (int64_t k = 0; k < pl.K; k++)
            for (int r = 0; r < MR; r++) {
                int64_t o = pan * MR + r;
                ap[(pan * pl.K + k) * MR + r] = o < g->O ? w[o * pl.K + k] : 0.0f;
            }
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t it = 0; it < pl.nblk * pl.nog; it++) {
        int tid = lt__thread_id();
        packed_item(&pl, x, ap, b, y, it / pl.nog, it % pl.nog * pl.rg, buf + tid * pl.per);
    }
    lt_release(ha);
    lt_release(hb);
    return 0;
}

/* ---- weight gradient: gw (O, K) = gy (O, N Ho Wo) cols^T ---- */

/* Pixels per block of the sum: lt__sgemm_packed's own k block, so every
 * element is the sum of its blocks' partial sums in block order. */
#define WG_LB 256

/* A run of pixels of a block in one output row of one image: the input
 * row and column its first pixel's tap (0, 0) reads, its offset t in the
 * block and its length. */
typedef struct wg_run {
    int64_t n, h0, w0;
    int t, len;
} wg_run;

static int wg_runs(const lt__conv_geom *g, int64_t l0, int64_t lbn, wg_run *r)
{
    int64_t S = g->Ho * g->Wo;
    int nr = 0;
    for (int64_t t = 0; t < lbn;) {
        int64_t l = l0 + t, s = l % S, ow = s % g->Wo;
        int64_t len = g->Wo - ow < lbn - t ? g->Wo - ow : lbn - t;
        r[nr++] = (wg_run){l / S, s / g->Wo * g->sh - g->ph, ow * g->sw - g->pw, (int)t, (int)len};
        t += len;
    }
    return nr;
}

/* tmp's 16 rows (row stride WG_LB), columns 0 .. lbn - 1 = rows k0 ..
 * k0 + 15 of the block's column matrix (zero past K), row k = (c, p, q)
 * holding pixel l's tap: x[n, c, h0 + p dh, w0 + q dw] of its run. */
static void wg_gather_panel(const float *x, const lt__conv_geom *g, int64_t k0, const wg_run *r, int nr,
                            int64_t lbn, float *tmp)
{
    int64_t kk = g->kh * g->kw, K = g->C * kk, HW = g->H * g->W, coff[NR], dp[NR], dq[NR];
    int nt = (int)(K - k0 < NR ? K - k0 : NR);
    for (int t = 0; t < nt; t++) {
        int64_t k = k0 + t;
        coff[t] = k / kk * HW;
        dp[t] = k % kk / g->kw * g->dh;
        dq[t] = k % g->kw * g->dw;
    }
    for (int t = nt; t < NR; t++)
        memset(tmp + t * WG_LB, 0, sizeof(float) * (size_t)lbn);
    for (int i = 0; i < nr; i++) {
        const float *xn = x + r[i].n * g->C * HW;
        for (int t = 0; t < nt; t++) {
            int64_t h = r[i].h0 + dp[t];
            float *d = tmp + t * WG_LB + r[i].t;
            if (h < 0 || h >= g->H) {
                memset(d, 0, sizeof(float) * (size_t)r[i].len);
                continue;
            }
            const float *row = xn + coff[t] + h * g->W;
            int64_t w0 = r[i].w0 + dq[t];
            for (int j0 = 0; j0 < r[i].len; j0 += NR)
                gather_row(row, g->W, w0 + j0 * g->sw, g->sw, r[i].len - j0 < NR ? r[i].len - j0 : NR, d + j0);
        }
    }
}

/* dst (lbn x 16) = the transpose of tmp's 16 rows (row stride WG_LB). */
static void wg_transpose(const float *tmp, int64_t lbn, float *dst)
{
    int64_t l = 0;
#if defined(__AVX512F__)
    for (; l + NR <= lbn; l += NR) {
        __m512 r[16], t[16];
        for (int i = 0; i < 16; i++)
            r[i] = _mm512_loadu_ps(tmp + i * WG_LB + l);
        for (int i = 0; i < 16; i += 2) { /* 2x2 blocks of single floats */
            t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
            t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
        }
        for (int i = 0; i < 16; i += 4) { /* of pairs */
            r[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
            r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
            r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
            r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
        }
        for (int i = 0; i < 16; i += 8) /* of 128-bit lanes */
            for (int j = 0; j < 4; j++) {
                t[i + j] = _mm512_shuffle_f32x4(r[i + j], r[i + j + 4], 0x88);
                t[i + j + 4] = _mm512_shuffle_f32x4(r[i + j], r[i + j + 4], 0xdd);
            }
        for (int j = 0; j < 8; j++) { /* of 256-bit halves */
            r[j] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0x88);
            r[j + 8] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0xdd);
        }
        for (int i = 0; i < 16; i++)
            _mm512_storeu_ps(dst + (l + i) * NR, r[i]);
    }
#endif
    for (; l < lbn; l++)
        for (int t = 0; t < NR; t++)
            dst[l * NR + t] = tmp[t * WG_LB + l];
}

/* dst (lbn x MR, row-major) = rows o0 .. o0 + MR - 1 of gy (zero past O)
 * at pixels l0 .. l0 + lbn - 1 (all images' pixels in order): one of
 * lt__sgemm_packed's A panels. With AVX-512, 8 pixels at a time: the 6
 * rows' 8 floats in three registers, then three permutes into the 48
 * interleaved floats. */
static void wg_pack_panel(const float *gy, const lt__conv_geom *g, int64_t o0, int64_t l0, int64_t lbn, float *dst)
{
    int64_t S = g->Ho * g->Wo;
    for (int64_t t = 0; t < lbn;) {
        int64_t l = l0 + t, s = l % S, run = S - s < lbn - t ? S - s : lbn - t;
        const float *src[MR];
        for (int r = 0; r < MR; r++)
            src[r] = o0 + r < g->O ? gy + (l / S * g->O + o0 + r) * S + s : NULL;
        int64_t i = 0;
#if defined(__AVX512F__)
        /* output float m of 48 (pixel m / 6, row m % 6) comes from
         * register r / 2, lane (r % 2) 8 + pixel: rows 0-3 through one
         * two-register permute, rows 4-5 blended in */
        static const int32_t idx[3][16] = {
            {0, 8, 16, 24, 0, 8, 1, 9, 17, 25, 1, 9, 2, 10, 18, 26},
            {2, 10, 3, 11, 19, 27, 3, 11, 4, 12, 20, 28, 4, 12, 5, 13},
            {21, 29, 5, 13, 6, 14, 22, 30, 6, 14, 7, 15, 23, 31, 7, 15}};
        static const __mmask16 from45[3] = {0x0c30, 0x30c3, 0xc30c};
        if (run >= 8) {
            __m512i ix[3];
            for (int j = 0; j < 3; j++)
                ix[j] = _mm512_loadu_si512(idx[j]);
            for (; i + 8 <= run; i += 8) {
                __m256 v[MR];
                for (int r = 0; r < MR; r++)
                    v[r] = src[r] ? _mm256_loadu_ps(src[r] + i) : _mm256_setzero_ps();
                __m512 a = _mm512_insertf32x8(_mm512_castps256_ps512(v[0]), v[1], 1);
                __m512 b = _mm512_insertf32x8(_mm512_castps256_ps512(v[2]), v[3], 1);
                __m512 c = _mm512_insertf32x8(_mm512_castps256_ps512(v[4]), v[5], 1);
                float *d = dst + (t + i) * MR;
                for (int j = 0; j < 3; j++)
                    _mm512_storeu_ps(d + 16 * j, _mm512_mask_permutexvar_ps(_mm512_permutex2var_ps(a, ix[j], b),
                                                                             from45[j], ix[j], c));
            }
        }
#endif
        for (; i < run; i++)
            for (int r = 0; r < MR; r++)
                dst[(t + i) * MR + r] = src[r] ? src[r][i] : 0.0f;
        t += run;
    }
}

/* The weight gradient image by image: each item one image's pixels in
 * blocks of WG_LB, gy's block packed and every panel of taps gathered in
 * turn (4 at a time), into the image's partial (R6 x Kp), the partials
 * then summed in image order. */
int lt__conv_bwd_weight_packed_images(const float *x, const float *gy, float *gw, const lt__conv_geom *g)
{
    const int64_t K = g->C * g->kh * g->kw, S = g->Ho * g->Wo;
    const int64_t R6 = (g->O + MR - 1) / MR * MR, npan = (K + NR - 1) / NR, Kp = npan * NR;
    int nth = lt__team_size();
    int64_t per = R6 * WG_LB + NR * WG_LB + 4 * NR * WG_LB;
    lt_tensor *hp = lt__scratch(g->N * R6 * Kp, LT_F32), *hb = lt__scratch(nth * per, LT_F32);
    if (!hp || !hb) {
        lt_release(hp);
        lt_release(hb);
        return -1;
    }
    float *part = lt_data(hp), *buf = lt_data(hb);
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t n = 0; n < g->N; n++) {
        float *ap = buf + lt__thread_id() * per, *tmp = ap + R6 * WG_LB, *bpn = tmp + NR * WG_LB;
        wg_run runs[WG_LB];
        for (int64_t s0 = 0; s0 < S; s0 += WG_LB) {
            int64_t l0 = n * S + s0, lbn = S - s0 < WG_LB ? S - s0 : WG_LB;
            int nr = wg_runs(g, l0, lbn, runs);
            for (int64_t pn = 0; pn < R6 / MR; pn++)
                wg_pack_panel(gy, g, pn * MR, l0, lbn, ap + pn * MR * lbn);
            for (int64_t p0 = 0; p0 < npan; p0 += 4) {
                int np = (int)(npan - p0 < 4 ? npan - p0 : 4);
                for (int p = 0; p < np; p++) {
                    wg_gather_panel(x, g, (p0 + p) * NR, runs, nr, lbn, tmp);
                    wg_transpose(tmp, lbn, bpn + p * NR * lbn);
                }
                lt__sgemm_packed(R6, lbn, np, ap, bpn, part + n * R6 * Kp + p0 * NR, Kp, s0 > 0);
            }
        }
    }
#pragma omp parallel for schedule(static)
    for (int64_t o = 0; o < g->O; o++)
        for (int64_t k = 0; k < K; k++) {
            float v = part[o * Kp + k];
            for (int64_t n = 1; n < g->N; n++)
                v += part[(n * R6 + o) * Kp + k];
            gw[o * K + k] = v;
        }
    lt_release(hp);
    lt_release(hb);
    return 0;
}

int lt__conv_bwd_weight_packed(const float *x, const float *gy, float *gw, const lt__conv_geom *g)
{
    const int64_t K = g->C * g->kh * g->kw, S = g->Ho * g->Wo, L = g->N * S;
    const int64_t R6 = (g->O + MR - 1) / MR * MR, npan = (K + NR - 1) / NR, Kp = npan * NR;
    const int64_t nlb = (L + WG_LB - 1) / WG_LB;
    int nth = lt__team_size();
    /* panels per item: the most (up to 4) with the fewest panels on the
     * busiest thread */
    int64_t nbp = 4, best = -1;
    static const int64_t choices[] = {4, 2, 3, 1}; /* even first: the kernel runs panels in pairs */
    for (int i = 0; i < 4; i++) {
        int64_t b = choices[i], items = (npan + b - 1) / b, load = (items + nth - 1) / nth * b;
        if (best < 0 || load < best) {
            best = load;
            nbp = b;
        }
    }
    int64_t nitems = (npan + nbp - 1) / nbp, per = NR * WG_LB + nbp * NR * WG_LB;
    lt_tensor *ha = lt__scratch(R6 * nlb * WG_LB, LT_F32), *hc = lt__scratch(R6 * Kp, LT_F32);
    lt_tensor *hb = lt__scratch(nth * per, LT_F32);
    if (!ha || !hb || !hc) {
        lt_release(ha);
        lt_release(hb);
        lt_release(hc);
        return -1;
    }
    float *ap = lt_data(ha), *cb = lt_data(hc), *buf = lt_data(hb);
    /* gy into MR-row panels per block: block b's panel pn at b R6 WG_LB +
     * pn MR lbn, element (l, r) at l MR + r */
#pragma omp parallel for schedule(static)
    for (int64_t bp = 0; bp < nlb * (R6 / MR); bp++) {
        int64_t b = bp / (R6 / MR), pn = bp % (R6 / MR), l0 = b * WG_LB;
        int64_t lbn = L - l0 < WG_LB ? L - l0 : WG_LB;
        wg_pack_panel(gy, g, pn * MR, l0, lbn, ap + b * R6 * WG_LB + pn * MR * lbn);
    }
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t it = 0; it < nitems; it++) {
        float *tmp = buf + lt__thread_id() * per, *bpn = tmp + NR * WG_LB;
        int64_t p0 = it * nbp;
        int np = (int)(npan - p0 < nbp ? npan - p0 : nbp);
        wg_run runs[WG_LB];
        for (int64_t b = 0; b < nlb; b++) {
            int64_t l0 = b * WG_LB, lbn = L - l0 < WG_LB ? L - l0 : WG_LB;
            int nr = wg_runs(g, l0, lbn, runs);
            for (int p = 0; p < np; p++) {
                wg_gather_panel(x, g, (p0 + p) * NR, runs, nr, lbn, tmp);
                wg_transpose(tmp, lbn, bpn + p * NR * lbn);
            }
            lt__sgemm_packed(R6, lbn, np, ap + b * R6 * WG_LB, bpn, cb + p0 * NR, Kp, b > 0);
        }
    }
#pragma omp parallel for schedule(static)
    for (int64_t o = 0; o < g->O; o++)
        memcpy(gw + o * K, cb + o * Kp, sizeof(float) * (size_t)K);
    lt_release(ha);
    lt_release(hb);
    lt_release(hc);
    return 0;
}
