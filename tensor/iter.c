/*
 * iter.c: the strided loop (see iter.h) and the converting copy built on it.
 */
#include "iter.h"

#include <math.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

void lt__iter_init(lt__iter *it, int ndim, const int64_t *shape, int nops,
                   const lt_tensor *const *ts)
{
    int64_t sh[LT_MAX_DIMS], st[LT__MAXOPS][LT_MAX_DIMS];
    it->nops = nops;
    for (int k = 0; k < nops; k++) {
        const lt_tensor *t = ts[k];
        size_t es = lt_dtype_size(t->dtype);
        int lead = ndim - t->ndim;
        for (int d = 0; d < ndim; d++) {
            int td = d - lead;
            st[k][d] = (td < 0 || t->shape[td] == 1) ? 0 : t->stride[td] * (int64_t)es;
        }
        it->base[k] = lt__base(t) + t->offset * es;
    }
    /* Drop size-1 dims, then merge dim d into d+1 where all operands allow. */
    int n = 0;
    int64_t nst[LT__MAXOPS][LT_MAX_DIMS];
    for (int d = 0; d < ndim; d++) {
        if (shape[d] == 1)
            continue;
        if (n > 0) {
            bool merge = true;
            for (int k = 0; k < nops; k++)
                if (nst[k][n - 1] != st[k][d] * shape[d])
                    merge = false;
            if (merge) {
                sh[n - 1] *= shape[d];
                for (int k = 0; k < nops; k++)
                    nst[k][n - 1] = st[k][d];
                continue;
            }
        }
        sh[n] = shape[d];
        for (int k = 0; k < nops; k++)
            nst[k][n] = st[k][d];
        n++;
    }
    it->ndim = n;
    for (int d = 0; d < n; d++) {
        it->shape[d] = sh[d];
        for (int k = 0; k < nops; k++)
            it->st[k][d] = nst[k][d];
    }
    /* A zero-size dim anywhere makes the loop empty. */
    for (int d = 0; d < ndim; d++)
        if (shape[d] == 0) {
            it->ndim = 1;
            it->shape[0] = 0;
        }
}

#define CHUNK 16384

void lt__iter_run(const lt__iter *it, lt__row_fn fn, const void *ctx)
{
    int nops = it->nops, nd = it->ndim;
    if (nd == 0) {
        char *p[LT__MAXOPS];
        int64_t st[LT__MAXOPS] = {0};
        for (int k = 0; k < nops; k++)
            p[k] = it->base[k];
        fn(p, st, 1, ctx);
        return;
    }
    int64_t inner = it->shape[nd - 1];
    if (inner == 0)
        return;
    int64_t rows = 1;
    for (int d = 0; d < nd - 1; d++)
        rows *= it->shape[d];
    int64_t per_row = (inner + CHUNK - 1) / CHUNK;
    int64_t tasks = rows * per_row;
    int64_t ist[LT__MAXOPS];
    for (int k = 0; k < nops; k++)
        ist[k] = it->st[k][nd - 1];
#pragma omp parallel for schedule(static) if (rows * inner > 32768)
    for (int64_t t = 0; t < tasks; t++) {
        int64_t r = t / per_row, c = t % per_row;
        char *p[LT__MAXOPS];
        for (int k = 0; k < nops; k++)
            p[k] = it->base[k];
        int64_t rem = r;
        for (int d = nd - 2; d >= 0; d--) {
            int64_t idx = rem % it->shape[d];
            rem /= it->shape[d];
            for (int k = 0; k < nops; k++)
                p[k] += idx * it->st[k][d];
        }
        int64_t start = c * CHUNK;
        int64_t n = inner - start < CHUNK ? inner - start : CHUNK;
        for (int k = 0; k < nops; k++)
            p[k] += start * ist[k];
        fn(p, ist, n, ctx);
    }
}

/* ---- converting copy: one row function per (dst, src) dtype pair ---- */

static inline uint8_t to_u8(double v)
{
    double r = nearbyint(v);
    return (uint8_t)(r < 0 ? 0 : r > 255 ? 255 : r);
}

#define CONV_PLAIN(TD, v) ((TD)(v))
#define DEF_COPY(NAME, TD, TS, CONV)                                                  \
    static void NAME(char **p, const int64_t *st, int64_t n, const void *ctx)         \
    {                                                                                 \
        (void)ctx;                                                                    \
        TD *o = (TD *)p[0];                                                           \
        const TS *s = (const TS *)p[1];                                               \
        int64_t so = st[0] / (int64_t)sizeof(TD), ss = st[1] / (int64_t)sizeof(TS);   \
        if (so == 1 && ss == 1)                                                       \
            for (int64_t i = 0; i < n; i++)                                           \
                o[i] = CONV(TD, s[i]);                                                \
        else                                                                          \
            for (int64_t i = 0; i < n; i++)                                           \
                o[i * so] = CONV(TD, s[i * ss]);                                      \
    }
#define CONV_U8(TD, v) to_u8((double)(v))
#define CONV_U8_INT(TD, v) ((uint8_t)((v) < 0 ? 0 : (v) > 255 ? 255 : (v)))

DEF_COPY(cp_f32_f32, float, float, CONV_PLAIN)
DEF_COPY(cp_f32_f64, float, double, CONV_PLAIN)
DEF_COPY(cp_f32_i64, float, int64_t, CONV_PLAIN)
DEF_COPY(cp_f32_u8, float, uint8_t, CONV_PLAIN)
DEF_COPY(cp_f64_f32, double, float, CONV_PLAIN)
DEF_COPY(cp_f64_f64, double, double, CONV_PLAIN)
DEF_COPY(cp_f64_i64, double, int64_t, CONV_PLAIN)
DEF_COPY(cp_f64_u8, double, uint8_t, CONV_PLAIN)
DEF_COPY(cp_i64_f32, int64_t, float, CONV_PLAIN)
DEF_COPY(cp_i64_f64, int64_t, double, CONV_PLAIN)
DEF_COPY(cp_i64_i64, int64_t, int64_t, CONV_PLAIN)
DEF_COPY(cp_i64_u8, int64_t, uint8_t, CONV_PLAIN)
DEF_COPY(cp_u8_f32, uint8_t, float, CONV_U8)
DEF_COPY(cp_u8_f64, uint8_t, double, CONV_U8)
DEF_COPY(cp_u8_i64, uint8_t, int64_t, CONV_U8_INT)
DEF_COPY(cp_u8_u8, uint8_t, uint8_t, CONV_PLAIN)

static const lt__row_fn copy_fns[4][4] = {
    {cp_f32_f32, cp_f32_f64, cp_f32_i64, cp_f32_u8},
    {cp_f64_f32, cp_f64_f64, cp_f64_i64, cp_f64_u8},
    {cp_i64_f32, cp_i64_f64, cp_i64_i64, cp_i64_u8},
    {cp_u8_f32, cp_u8_f64, cp_u8_i64, cp_u8_u8},
};

void lt__copy_into(lt_tensor *dst, const lt_tensor *src)
{
    lt__iter it;
    const lt_tensor *ts[2] = {dst, src};
    lt__iter_init(&it, dst->ndim, dst->shape, 2, ts);
    lt__iter_run(&it, copy_fns[dst->dtype][src->dtype], NULL);
}
