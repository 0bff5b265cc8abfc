/*
 * rng.c: counter-based random numbers (Philox-4x32-10).
 *
 * Philox-4x32-10 (Salmon, Moraes, Dror, Shaw, "Parallel random numbers: as
 * easy as 1, 2, 3", SC 2011; constants as in Random123 and PyTorch) maps a
 * 128-bit counter and a 64-bit key to 128 random bits. The key is the seed:
 * key = {lo32(seed), hi32(seed)}.
 *
 * COUNTER LAYOUT. r->counter is a block index. Every element of a draw, and
 * every lt_rng_u64 / lt_rng_uniform call, consumes exactly one Philox block:
 * element i of a draw that starts at counter c uses the block whose 128-bit
 * counter is {lo32(c+i), hi32(c+i), 0, 0} (c+i taken mod 2^64), and a draw of
 * n elements advances r->counter by n. So element i depends only on
 * (seed, c, i), a fill may run on any number of threads, and a generator is
 * saved and restored by copying its two integers.
 *
 * HOW A BLOCK {x0,x1,x2,x3} (32-bit words) BECOMES A VALUE
 *   u64          (x1 << 32) | x0
 *   uniform f64  top 53 bits of that u64, times 2^-53        in [0,1)
 *   uniform f32  top 24 bits of x0, times 2^-24              in [0,1)
 *   normal       Box-Muller: u1 = (53 bits of x0,x1 + 1) 2^-53 in (0,1],
 *                u2 = 53 bits of x2,x3 times 2^-53, z = sqrt(-2 ln u1) cos(2 pi u2)
 *                (only the cosine half is used, so elements stay independent)
 *   bernoulli    1 if uniform f64 < p
 */
#include "tensor_internal.h"

#include <math.h>
#include <string.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

/* Draws at least this long are filled by an OpenMP loop. */
#define RNG_PAR_MIN 32768

typedef struct philox_block {
    uint32_t x[4];
} philox_block;

static inline philox_block philox(uint64_t seed, uint64_t ctr)
{
    uint32_t c0 = (uint32_t)ctr, c1 = (uint32_t)(ctr >> 32), c2 = 0, c3 = 0;
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int round = 0; round < 10; round++) {
        uint64_t p0 = (uint64_t)PHILOX_M0 * c0;
        uint64_t p1 = (uint64_t)PHILOX_M1 * c2;
        uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
        uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    return (philox_block){{c0, c1, c2, c3}};
}

static inline uint64_t blk_u64(philox_block b, int w) { return ((uint64_t)b.x[w + 1] << 32) | b.x[w]; }
static inline double blk_f64(philox_block b) { return (double)(blk_u64(b, 0) >> 11) * 0x1.0p-53; }
static inline float blk_f32(philox_block b) { return (float)(b.x[0] >> 8) * 0x1.0p-24f; }

static inline double blk_normal(philox_block b)
{
    double u1 = ((double)(blk_u64(b, 0) >> 11) + 1.0) * 0x1.0p-53; /* (0,1]: log is finite */
    double u2 = (double)(blk_u64(b, 2) >> 11) * 0x1.0p-53;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

lt_rng lt_rng_new(uint64_t seed) { return (lt_rng){.seed = seed, .counter = 0}; }

uint64_t lt_rng_u64(lt_rng *r)
{
    philox_block b = philox(r->seed, r->counter++);
    return blk_u64(b, 0);
}

double lt_rng_uniform(lt_rng *r)
{
    philox_block b = philox(r->seed, r->counter++);
    return blk_f64(b);
}

/* Shared argument checks; the new contiguous tensor (refcount 1, not yet in
 * a frame) or NULL with "op: ..." recorded. */
static lt_tensor *rng_alloc(const char *op, lt_rng *r, int ndim, const int64_t *shape,
                            lt_dtype dt, bool float_only)
{
    if (!r) {
        lt_set_error("%s: NULL generator", op);
        return NULL;
    }
    if (ndim < 0 || ndim > LT_MAX_DIMS || (ndim > 0 && !shape)) {
        lt_set_error("%s: bad shape (rank %d, must be 0..%d)", op, ndim, LT_MAX_DIMS);
        return NULL;
    }
    for (int i = 0; i < ndim; i++)
        if (shape[i] < 0) {
            lt_set_error("%s: negative size %lld in dim %d", op, (long long)shape[i], i);
            return NULL;
        }
    if ((unsigned)dt > LT_U8 || (float_only && dt != LT_F32 && dt != LT_F64)) {
        lt_set_error("%s: dtype %s not supported (f32 or f64%s)", op, lt_dtype_name(dt),
                     float_only ? "" : ", i64, u8");
        return NULL;
    }
    lt_tensor *t = lt__new(ndim, shape, dt);
    if (!t)
        return NULL;
    return t;
}

lt_tensor *lt_rand_uniform(lt_rng *r, int ndim, const int64_t *shape, double lo, double hi,
                           lt_dtype dt)
{
    if (!(lo <= hi) || !isfinite(lo) || !isfinite(hi)) {
        lt_set_error("rand_uniform: need finite lo <= hi, got [%g, %g)", lo, hi);
        return NULL;
    }
    lt_tensor *t = rng_alloc("rand_uniform", r, ndim, shape, dt, true);
    if (!t)
        return NULL;
    int64_t n = lt__numel(ndim, shape);
    uint64_t seed = r->seed, c0 = r->counter;
    double span = hi - lo;
    if (dt == LT_F32) {
        float *p = lt_data(t);
        float flo = (float)lo, fhi = (float)hi, below = nextafterf(fhi, -INFINITY);
#pragma omp parallel for schedule(static) if (n >= RNG_PAR_MIN)
        for (int64_t i = 0; i < n; i++) {
            float v = (float)(lo + span * blk_f32(philox(seed, c0 + (uint64_t)i)));
            /* Rounding to f32 may land on hi; keep the interval half open. */
            p[i] = (v >= fhi && fhi > flo) ? below : v;
        }
    } else {
        double *p = lt_data(t);
        double below = nextafter(hi, -INFINITY);
#pragma omp parallel for schedule(static) if (n >= RNG_PAR_MIN)
        for (int64_t i = 0; i < n; i++) {
            double v = lo + span * blk_f64(philox(seed, c0 + (uint64_t)i));
            p[i] = (v >= hi && hi > lo) ? below : v;
        }
    }
    r->counter = c0 + (uint64_t)n;
    return lt__frame_own(t);
}

lt_tensor *lt_rand_normal(lt_rng *r, int ndim, const int64_t *shape, double mean, double std,
                          lt_dtype dt)
{
    if (!(std >= 0) || !isfinite(std) || !isfinite(mean)) {
        lt_set_error("rand_normal: need finite mean and std >= 0, got mean %g std %g", mean, std);
        return NULL;
    }
    lt_tensor *t = rng_alloc("rand_normal", r, ndim, shape, dt, true);
    if (!t)
        return NULL;
    int64_t n = lt__numel(ndim, shape);
    uint64_t seed = r->seed, c0 = r->counter;
    if (dt == LT_F32) {
        float *p = lt_data(t);
#pragma omp parallel for schedule(static) if (n >= RNG_PAR_MIN)
        for (int64_t i = 0; i < n; i++)
            p[i] = (float)(mean + std * blk_normal(philox(seed, c0 + (uint64_t)i)));
    } else {
        double *p = lt_data(t);
#pragma omp parallel for schedule(static) if (n >= RNG_PAR_MIN)
        for (int64_t i = 0; i < n; i++)
            p[i] = mean + std * blk_normal(philox(seed, c0 + (uint64_t)i));
    }
    r->counter = c0 + (uint64_t)n;
    return lt__frame_own(t);
}

lt_tensor *lt_rand_bernoulli(lt_rng *r, int ndim, const int64_t *shape, double p, lt_dtype dt)
{
    if (!(p >= 0 && p <= 1)) {
        lt_set_error("rand_bernoulli: probability %g outside [0, 1]", p);
        return NULL;
    }
    lt_tensor *t = rng_alloc("rand_bernoulli", r, ndim, shape, dt, false);
    if (!t)
        return NULL;
    int64_t n = lt__numel(ndim, shape);
    uint64_t seed = r->seed, c0 = r->counter;
    void *base = lt_data(t);
#pragma omp parallel for schedule(static) if (n >= RNG_PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        int bit = blk_f64(philox(seed, c0 + (uint64_t)i)) < p;
        switch (dt) {
        case LT_F32: ((float *)base)[i] = (float)bit; break;
        case LT_F64: ((double *)base)[i] = bit; break;
        case LT_I64: ((int64_t *)base)[i] = bit; break;
        case LT_U8: ((uint8_t *)base)[i] = (uint8_t)bit; break;
        }
    }
    r->counter = c0 + (uint64_t)n;
    return lt__frame_own(t);
}

/* Uniform integer in [0, range), range >= 1, without modulo bias: Lemire,
 * "Fast random integer generation in an interval", ACM TOMS 2019. */
static uint64_t bounded_u64(lt_rng *r, uint64_t range)
{
    unsigned __int128 m = (unsigned __int128)lt_rng_u64(r) * range;
    uint64_t low = (uint64_t)m;
    if (low < range) {
        uint64_t threshold = -range % range; /* 2^64 mod range */
        while (low < threshold) {
            m = (unsigned __int128)lt_rng_u64(r) * range;
            low = (uint64_t)m;
        }
    }
    return (uint64_t)(m >> 64);
}

/* Fisher-Yates (Knuth's Algorithm P) from the top: position i swaps with a
 * uniform j in [0, i]. Uses n-1 or more lt_rng_u64 draws (more only on
 * Lemire rejections), so the counter advance depends on the values. */
lt_tensor *lt_randperm(lt_rng *r, int64_t n)
{
    if (!r) {
        lt_set_error("randperm: NULL generator");
        return NULL;
    }
    if (n < 0) {
        lt_set_error("randperm: negative n %lld", (long long)n);
        return NULL;
    }
    lt_tensor *t = lt__new(1, (int64_t[]){n}, LT_I64);
    if (!t)
        return NULL;
    int64_t *p = lt_data(t);
    for (int64_t i = 0; i < n; i++)
        p[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)bounded_u64(r, (uint64_t)i + 1);
        int64_t tmp = p[i];
        p[i] = p[j];
        p[j] = tmp;
    }
    return lt__frame_own(t);
}
