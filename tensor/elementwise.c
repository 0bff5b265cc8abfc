/*
 * elementwise.c: unary and binary elementwise ops with NumPy broadcasting.
 *
 * Kernels are stamped out for float and double by macros over one
 * expression; <tgmath.h> picks expf/exp etc. from the operand type.
 * Binary arithmetic promotes mixed dtypes (f64 > f32 > i64 > u8) through
 * lt_to_dtype, which records itself, so autograd sees the conversion.
 */
#include "iter.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <tgmath.h>

int lt_broadcast_shape(const char *op, int na, const int64_t *a, int nb, const int64_t *b, int64_t *out)
{
    int n = na > nb ? na : nb;
    for (int i = 0; i < n; i++) {
        int ia = i - (n - na), ib = i - (n - nb);
        int64_t sa = ia >= 0 ? a[ia] : 1, sb = ib >= 0 ? b[ib] : 1;
        if (sa == sb || sb == 1)
            out[i] = sa;
        else if (sa == 1)
            out[i] = sb;
        else {
            char bufa[128] = "(", bufb[128] = "(";
            for (int k = 0; k < na; k++)
                snprintf(bufa + strlen(bufa), sizeof bufa - strlen(bufa), k ? ",%lld" : "%lld", (long long)a[k]);
            for (int k = 0; k < nb; k++)
                snprintf(bufb + strlen(bufb), sizeof bufb - strlen(bufb), k ? ",%lld" : "%lld", (long long)b[k]);
            lt_set_error("%s: shapes %s) and %s) do not broadcast (dim %d: %lld vs %lld)", op, bufa, bufb, i,
                         (long long)sa, (long long)sb);
            return -1;
        }
    }
    return n;
}

/* ------------------------------------------------------------------ */
/* Kernels                                                             */
/* ------------------------------------------------------------------ */

#define UNARY_BODY(T, EXPR)                                                       \
    typedef T TT;                                                                 \
    const double *A = ctx;                                                        \
    (void)A;                                                                      \
    TT *o = (TT *)p[0];                                                           \
    const TT *xs = (const TT *)p[1];                                              \
    int64_t so = st[0] / (int64_t)sizeof(TT), sx = st[1] / (int64_t)sizeof(TT);   \
    if (so == 1 && sx == 1) {                                                     \
        for (int64_t i = 0; i < n; i++) {                                         \
            TT x = xs[i];                                                         \
            o[i] = (EXPR);                                                        \
        }                                                                         \
    } else {                                                                      \
        for (int64_t i = 0; i < n; i++) {                                         \
            TT x = xs[i * sx];                                                    \
            o[i * so] = (EXPR);                                                   \
        }                                                                         \
    }

#define DEF_UNARY(NAME, EXPR)                                                     \
    static void NAME##_f32(char **p, const int64_t *st, int64_t n, const void *ctx) \
    {                                                                             \
        UNARY_BODY(float, EXPR)                                                   \
    }                                                                             \
    static void NAME##_f64(char **p, const int64_t *st, int64_t n, const void *ctx) \
    {                                                                             \
        UNARY_BODY(double, EXPR)                                                  \
    }

/* Unary ops whose f32 kernel differs from the f64 one. */
#define DEF_UNARY2(NAME, EXPR32, EXPR64)                                          \
    static void NAME##_f32(char **p, const int64_t *st, int64_t n, const void *ctx) \
    {                                                                             \
        UNARY_BODY(float, EXPR32)                                                 \
    }                                                                             \
    static void NAME##_f64(char **p, const int64_t *st, int64_t n, const void *ctx) \
    {                                                                             \
        UNARY_BODY(double, EXPR64)                                                \
    }

/*
 * exp and erf in f32 without libm calls, so their loops vectorize (libm's
 * expf / erff are one call per element, a fifth of a ViT step in GELU and
 * its backward). Each element goes through the same arithmetic whatever
 * its position or stride, so a strided view and its contiguous copy still
 * give the same bits. f64 keeps libm.
 *
 * f32_exp: Cephes expf (2^n exp(r), |r| <= ln2/2, degree-6 polynomial);
 * within 1 ulp of exp over the normal range (checked on a dense grid).
 * f32_erf: |x| <= 0.921875: x + x p(x^2); above: 1 - exp(q(|x|) - x^2),
 * q = log(erfc t) + t^2 fitted on [0.921875, 4]; 1 from 3.92 on. Within
 * 1.3 ulp of erf (glibc's erff: 0.97). Coefficients: least squares on
 * Chebyshev nodes (numpy), rounded to float.
 */
/* GCC vectorizes the selects below only when it may assume no FP traps
 * (the default -ftrapping-math treats them as control flow); values are
 * unchanged by the option. */
#pragma GCC push_options
#pragma GCC optimize("no-trapping-math")

static inline float f32_exp(float x)
{
    /* NaN computes as 0 (and is returned as itself below): converting a
     * NaN to an integer is undefined */
    float xc = x > 88.72283935546875f ? 88.72283935546875f : x;
    xc = xc < -103.97208f ? -103.97208f : xc;
    xc = xc != xc ? 0.0f : xc;
    /* n = nearest integer to xc log2(e): adding and taking away 1.5 2^23 rounds */
    float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = xc - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float q = 1.9875691500E-4f;
    q = q * r + 1.3981999507E-3f;
    q = q * r + 8.3334519073E-3f;
    q = q * r + 4.1665795894E-2f;
    q = q * r + 1.6666665459E-1f;
    q = q * r + 5.0000001201E-1f;
    q = q * (r * r) + r + 1.0f;
    /* 2^n as two normal powers of two, so results down to the denormals scale right */
    int32_t ni = (int32_t)n, n1 = ni / 2, n2 = ni - n1;
    uint32_t b1 = (uint32_t)(n1 + 127) << 23, b2 = (uint32_t)(n2 + 127) << 23;
    float s1, s2;
    memcpy(&s1, &b1, sizeof s1);
    memcpy(&s2, &b2, sizeof s2);
    float y = q * s1 * s2;
    y = x > 88.72283935546875f ? INFINITY : y;
    y = x < -103.97208f ? 0.0f : y;
    return x != x ? x : y;
}

static inline float f32_erf(float x)
{
    float a = fabsf(x), s = x * x;
    float p = 8.365006215171888e-05f;
    p = p * s + -0.0008141392027027905f;
    p = p * s + 0.005200905259698629f;
    p = p * s + -0.02685934118926525f;
    p = p * s + 0.11283694207668304f;
    p = p * s + -0.37612634897232056f;
    p = p * s + 0.12837916709551257f; /* 2/sqrt(pi) - 1: x + x p rounds once, near x */
    float small = x + x * p;
    float aa = a > 4.0f ? 4.0f : a, t = aa - 2.5f;
    float q = -3.9904879400864957e-08f;
    q = q * t + 1.5990727888492984e-06f;
    q = q * t + -1.3098661838739645e-05f;
    q = q * t + 7.745677430648357e-05f;
    q = q * t + -0.0004205167351756245f;
    q = q * t + 0.0021650807466357946f;
    q = q * t + -0.010858273133635521f;
    q = q * t + 0.05610639229416847f;
    q = q * t + -0.3526807129383087f;
    q = q * t + -1.556815266609192f;
    float big = 1.0f - f32_exp(q - aa * aa);
    big = a >= 3.92f ? 1.0f : big;
    big = x < 0 ? -big : big;
    float r = a <= 0.921875f ? small : big;
    return x != x ? x : r;
}

#define K(v) ((TT)(v))
#define SQRT1_2 0.70710678118654752440
#define SQRT2_PI 0.79788456080286535588

DEF_UNARY(k_neg, -x)
DEF_UNARY2(k_exp, f32_exp(x), exp(x))
DEF_UNARY(k_log, log(x))
DEF_UNARY(k_sqrt, sqrt(x))
DEF_UNARY(k_rsqrt, K(1) / sqrt(x))
DEF_UNARY(k_abs, fabs(x))
DEF_UNARY(k_sign, x != x ? x : (TT)((x > 0) - (x < 0)))
DEF_UNARY(k_relu, x < 0 ? K(0) : x) /* NaN passes through, as in torch */
DEF_UNARY2(k_sigmoid, 1.0f / (1.0f + f32_exp(-x)), K(1) / (K(1) + exp(-x)))
DEF_UNARY(k_tanh, tanh(x))
DEF_UNARY2(k_erf, f32_erf(x), erf(x))
DEF_UNARY2(k_gelu, 0.5f * x * (1.0f + f32_erf(x * (float)SQRT1_2)), K(0.5) * x * (K(1) + erf(x * K(SQRT1_2))))

#pragma GCC pop_options
DEF_UNARY(k_gelu_tanh, K(0.5) * x * (K(1) + tanh(K(SQRT2_PI) * (x + K(0.044715) * x * x * x))))
/* t^e: e = 2 as x * x and e = 1 as x, as PyTorch's pow does (exactly
 * rounded, and the square vectorizes where pow is a libm call per element:
 * RRR's and GradMask's penalties square every input gradient, and their
 * backward raises it to the power 1). */
DEF_UNARY(k_pow_any, pow(x, (TT)A[0]))
DEF_UNARY(k_square, x * x)
DEF_UNARY(k_copy, x)
#define DEF_POW_SCALAR(SUF)                                                       \
    static void k_pow_scalar_##SUF(char **p, const int64_t *st, int64_t n, const void *ctx) \
    {                                                                             \
        double e = *(const double *)ctx;                                          \
        (e == 2.0 ? k_square_##SUF : e == 1.0 ? k_copy_##SUF : k_pow_any_##SUF)(p, st, n, ctx); \
    }
DEF_POW_SCALAR(f32)
DEF_POW_SCALAR(f64)
DEF_UNARY(k_clamp, x < (TT)A[0] ? (TT)A[0] : (x > (TT)A[1] ? (TT)A[1] : x))
DEF_UNARY(k_mul_scalar, x * (TT)A[0])
DEF_UNARY(k_add_scalar, x + (TT)A[0])

#define BINARY_BODY(T, EXPR)                                                      \
    typedef T TT;                                                                 \
    TT *o = (TT *)p[0];                                                           \
    const TT *xs = (const TT *)p[1], *ys = (const TT *)p[2];                      \
    int64_t so = st[0] / (int64_t)sizeof(TT), sx = st[1] / (int64_t)sizeof(TT),   \
            sy = st[2] / (int64_t)sizeof(TT);                                     \
    if (so == 1 && sx == 1 && sy == 1) {                                          \
        for (int64_t i = 0; i < n; i++) {                                         \
            TT x = xs[i], y = ys[i];                                              \
            o[i] = (EXPR);                                                        \
        }                                                                         \
    } else if (so == 1 && sx == 1 && sy == 0) {                                   \
        TT y = ys[0];                                                             \
        for (int64_t i = 0; i < n; i++) {                                         \
            TT x = xs[i];                                                         \
            o[i] = (EXPR);                                                        \
        }                                                                         \
    } else {                                                                      \
        for (int64_t i = 0; i < n; i++) {                                         \
            TT x = xs[i * sx], y = ys[i * sy];                                    \
            o[i * so] = (EXPR);                                                   \
        }                                                                         \
    }

#define DEF_BINARY(NAME, EXPR)                                                    \
    static void NAME##_f32(char **p, const int64_t *st, int64_t n, const void *ctx) \
    {                                                                             \
        (void)ctx;                                                                \
        BINARY_BODY(float, EXPR)                                                  \
    }                                                                             \
    static void NAME##_f64(char **p, const int64_t *st, int64_t n, const void *ctx) \
    {                                                                             \
        (void)ctx;                                                                \
        BINARY_BODY(double, EXPR)                                                 \
    }

DEF_BINARY(k_add, x + y)
DEF_BINARY(k_sub, x - y)
DEF_BINARY(k_mul, x * y)
DEF_BINARY(k_div, x / y)
DEF_BINARY(k_pow, pow(x, y))
/* NaN propagates, as in torch.maximum. */
DEF_BINARY(k_maximum, (x != x || y != y) ? x + y : (x > y ? x : y))
DEF_BINARY(k_minimum, (x != x || y != y) ? x + y : (x < y ? x : y))

/* Comparisons: u8 result, inputs of one dtype (any of the four). */
#define CMP_BODY(T, EXPR)                                                         \
    uint8_t *o = (uint8_t *)p[0];                                                 \
    const T *xs = (const T *)p[1], *ys = (const T *)p[2];                         \
    int64_t so = st[0], sx = st[1] / (int64_t)sizeof(T), sy = st[2] / (int64_t)sizeof(T); \
    if (so == 1 && sx == 1 && sy == 0) { /* against a scalar (relu's mask) */    \
        T y = ys[0];                                                              \
        for (int64_t i = 0; i < n; i++) {                                         \
            T x = xs[i];                                                          \
            o[i] = (uint8_t)(EXPR);                                               \
        }                                                                         \
    } else if (so == 1 && sx == 1 && sy == 1) {                                   \
        for (int64_t i = 0; i < n; i++) {                                         \
            T x = xs[i], y = ys[i];                                               \
            o[i] = (uint8_t)(EXPR);                                               \
        }                                                                         \
    } else {                                                                      \
        for (int64_t i = 0; i < n; i++) {                                         \
            T x = xs[i * sx], y = ys[i * sy];                                     \
            o[i * so] = (uint8_t)(EXPR);                                          \
        }                                                                         \
    }
#define DEF_CMP(NAME, EXPR)                                                       \
    static void NAME##_f32(char **p, const int64_t *st, int64_t n, const void *c) { (void)c; CMP_BODY(float, EXPR) } \
    static void NAME##_f64(char **p, const int64_t *st, int64_t n, const void *c) { (void)c; CMP_BODY(double, EXPR) } \
    static void NAME##_i64(char **p, const int64_t *st, int64_t n, const void *c) { (void)c; CMP_BODY(int64_t, EXPR) } \
    static void NAME##_u8(char **p, const int64_t *st, int64_t n, const void *c) { (void)c; CMP_BODY(uint8_t, EXPR) } \
    static const lt__row_fn NAME[4] = {NAME##_f32, NAME##_f64, NAME##_i64, NAME##_u8};

DEF_CMP(k_eq, x == y)
DEF_CMP(k_ne, x != y)
DEF_CMP(k_lt, x < y)
DEF_CMP(k_le, x <= y)
DEF_CMP(k_gt, x > y)
DEF_CMP(k_ge, x >= y)

/* ------------------------------------------------------------------ */
/* Drivers                                                             */
/* ------------------------------------------------------------------ */

static bool is_float(lt_dtype d) { return d == LT_F32 || d == LT_F64; }

static lt_tensor *unary(const lt_tensor *t, lt_op op, lt__row_fn f32, lt__row_fn f64, double a0, double a1)
{
    if (!t)
        return NULL;
    if (!is_float(t->dtype)) {
        char b[96];
        lt_set_error("%s: needs f32 or f64, got %s", lt__op_name(op), lt__desc(t, b, sizeof b));
        return NULL;
    }
    lt_tensor *o = lt__frame_own(lt__new(t->ndim, t->shape, t->dtype));
    if (!o)
        return NULL;
    double args[2] = {a0, a1};
    lt__iter it;
    lt__iter_init(&it, t->ndim, t->shape, 2, (const lt_tensor *const[]){o, t});
    lt__iter_run(&it, t->dtype == LT_F32 ? f32 : f64, args);
    lt_opcall c = {.op = op, .nin = 1, .in = (const lt_tensor *const[]){t}, .out = o, .darg = {a0, a1}};
    return lt__observe(&c) < 0 ? NULL : o;
}

#define UNARY_API(NAME, OP, K)                                                    \
    lt_tensor *lt_##NAME(const lt_tensor *t) { return unary(t, OP, K##_f32, K##_f64, 0, 0); }

UNARY_API(neg, LT_OP_NEG, k_neg)
UNARY_API(exp, LT_OP_EXP, k_exp)
UNARY_API(log, LT_OP_LOG, k_log)
UNARY_API(sqrt, LT_OP_SQRT, k_sqrt)
UNARY_API(rsqrt, LT_OP_RSQRT, k_rsqrt)
UNARY_API(abs, LT_OP_ABS, k_abs)
UNARY_API(sign, LT_OP_SIGN, k_sign)
UNARY_API(relu, LT_OP_RELU, k_relu)
UNARY_API(sigmoid, LT_OP_SIGMOID, k_sigmoid)
UNARY_API(tanh, LT_OP_TANH, k_tanh)
UNARY_API(erf, LT_OP_ERF, k_erf)

lt_tensor *lt_gelu(const lt_tensor *t, bool tanh_approx)
{
    return tanh_approx ? unary(t, LT_OP_GELU_TANH, k_gelu_tanh_f32, k_gelu_tanh_f64, 0, 0)
                       : unary(t, LT_OP_GELU, k_gelu_f32, k_gelu_f64, 0, 0);
}

lt_tensor *lt_pow_scalar(const lt_tensor *t, double e)
{
    return unary(t, LT_OP_POW_SCALAR, k_pow_scalar_f32, k_pow_scalar_f64, e, 0);
}

lt_tensor *lt_clamp(const lt_tensor *t, double lo, double hi)
{
    if (t && lo > hi) {
        lt_set_error("clamp: lo %g > hi %g", lo, hi);
        return NULL;
    }
    return unary(t, LT_OP_CLAMP, k_clamp_f32, k_clamp_f64, lo, hi);
}

lt_tensor *lt_mul_scalar(const lt_tensor *t, double s)
{
    return unary(t, LT_OP_MUL_SCALAR, k_mul_scalar_f32, k_mul_scalar_f64, s, 0);
}

lt_tensor *lt_add_scalar(const lt_tensor *t, double s)
{
    return unary(t, LT_OP_ADD_SCALAR, k_add_scalar_f32, k_add_scalar_f64, s, 0);
}

static int dtype_rank(lt_dtype d) { return d == LT_F64 ? 3 : d == LT_F32 ? 2 : d == LT_I64 ? 1 : 0; }

/* Broadcast a and b, allocate the result (dtype odt, frame-owned) and run
 * fn over (out, a, b). The shared body of arithmetic and comparisons. */
static lt_tensor *broadcast_run(const char *name, const lt_tensor *a, const lt_tensor *b, lt_dtype odt,
                                lt__row_fn fn)
{
    int64_t shape[LT_MAX_DIMS];
    int nd = lt_broadcast_shape(name, a->ndim, a->shape, b->ndim, b->shape, shape);
    if (nd < 0)
        return NULL;
    lt_tensor *o = lt__frame_own(lt__new(nd, shape, odt));
    if (!o)
        return NULL;
    lt__iter it;
    lt__iter_init(&it, nd, shape, 3, (const lt_tensor *const[]){o, a, b});
    lt__iter_run(&it, fn, NULL);
    return o;
}

static lt_tensor *binary(const lt_tensor *a, const lt_tensor *b, lt_op op, lt__row_fn f32, lt__row_fn f64)
{
    if (!a || !b)
        return NULL;
    const char *name = lt__op_name(op);
    lt_dtype dt = dtype_rank(a->dtype) >= dtype_rank(b->dtype) ? a->dtype : b->dtype;
    if (!is_float(dt)) {
        char x[96], y[96];
        lt_set_error("%s: arithmetic needs f32 or f64, got %s and %s", name, lt__desc(a, x, sizeof x),
                     lt__desc(b, y, sizeof y));
        return NULL;
    }
    if (a->dtype != dt)
        a = lt_to_dtype(a, dt);
    if (b->dtype != dt)
        b = lt_to_dtype(b, dt);
    if (!a || !b)
        return NULL;
    lt_tensor *o = broadcast_run(name, a, b, dt, dt == LT_F32 ? f32 : f64);
    if (!o)
        return NULL;
    lt_opcall c = {.op = op, .nin = 2, .in = (const lt_tensor *const[]){a, b}, .out = o};
    return lt__observe(&c) < 0 ? NULL : o;
}

#define BINARY_API(NAME, OP, K)                                                   \
    lt_tensor *lt_##NAME(const lt_tensor *a, const lt_tensor *b) { return binary(a, b, OP, K##_f32, K##_f64); }

BINARY_API(add, LT_OP_ADD, k_add)
BINARY_API(sub, LT_OP_SUB, k_sub)
BINARY_API(mul, LT_OP_MUL, k_mul)
BINARY_API(div, LT_OP_DIV, k_div)
BINARY_API(pow, LT_OP_POW, k_pow)
BINARY_API(maximum, LT_OP_MAXIMUM, k_maximum)
BINARY_API(minimum, LT_OP_MINIMUM, k_minimum)

static lt_tensor *compare(const lt_tensor *a, const lt_tensor *b, const lt__row_fn *fns, const char *name)
{
    if (!a || !b)
        return NULL;
    if (a->dtype != b->dtype) {
        lt_dtype dt = dtype_rank(a->dtype) >= dtype_rank(b->dtype) ? a->dtype : b->dtype;
        /* Compare in the wider type; conversions here are not recorded
         * because comparisons have no gradient. */
        lt_tensor *ca = lt__new(a->ndim, a->shape, dt), *cb = lt__new(b->ndim, b->shape, dt);
        if (!ca || !cb) {
            lt_release(ca);
            lt_release(cb);
            return NULL;
        }
        lt__copy_into(ca, a);
        lt__copy_into(cb, b);
        lt_tensor *r = compare(ca, cb, fns, name);
        lt_release(ca);
        lt_release(cb);
        return r;
    }
    return broadcast_run(name, a, b, LT_U8, fns[a->dtype]);
}

lt_tensor *lt_eq(const lt_tensor *a, const lt_tensor *b) { return compare(a, b, k_eq, "eq"); }
lt_tensor *lt_ne(const lt_tensor *a, const lt_tensor *b) { return compare(a, b, k_ne, "ne"); }
lt_tensor *lt_lt(const lt_tensor *a, const lt_tensor *b) { return compare(a, b, k_lt, "lt"); }
lt_tensor *lt_le(const lt_tensor *a, const lt_tensor *b) { return compare(a, b, k_le, "le"); }
lt_tensor *lt_gt(const lt_tensor *a, const lt_tensor *b) { return compare(a, b, k_gt, "gt"); }
lt_tensor *lt_ge(const lt_tensor *a, const lt_tensor *b) { return compare(a, b, k_ge, "ge"); }

lt_tensor *lt_cmp_scalar(const lt_tensor *a, const char *op, double s)
{
    if (!a)
        return NULL;
    static const char *const ops[] = {"==", "!=", "<", "<=", ">", ">="};
    static const lt__row_fn *const fns[] = {k_eq, k_ne, k_lt, k_le, k_gt, k_ge};
    for (int i = 0; i < 6; i++)
        if (op && strcmp(op, ops[i]) == 0) {
            /* Like torch, a float tensor compares against the scalar cast to
             * its own dtype (f32 0.1f == 0.1 is true). */
            lt_dtype vt = is_float(a->dtype) ? a->dtype : LT_F64;
            lt_tensor *v = lt__new(0, NULL, vt);
            if (!v)
                return NULL;
            lt__set(lt_data(v), vt, 0, s);
            lt_tensor *r = compare(a, v, fns[i], "cmp_scalar");
            lt_release(v);
            return r;
        }
    lt_set_error("cmp_scalar: unknown comparison \"%s\"", op ? op : "(null)");
    return NULL;
}
