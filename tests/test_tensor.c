/*
 * test_tensor.c: the tensor core (tensor/core.c, create.c, view.c,
 * elementwise.c, reduce.c, structural.c, iter.c) against its contract in
 * tensor/tensor.h.
 *
 * Expected values are hand calculations (closed forms for arange blocks,
 * libm constants computed once in Python and pasted), identities
 * (log_softmax == log(softmax), scatter_add inverting gather on a
 * permutation, a strided view giving the same bits as its contiguous copy)
 * or bitwise comparisons (thread count). Floating ops run in f32 and f64:
 * tests registered with tcase_add_loop_test get the dtype as FLOATS[_i].
 *
 * Allocator hook, leak and out-of-memory tests live in test_tensor_mem.c.
 */
#include "tensor/tensor.h"

#include <check.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

static const lt_dtype FLOATS[2] = {LT_F32, LT_F64};
static const lt_dtype ALL_DTYPES[4] = {LT_F32, LT_F64, LT_I64, LT_U8};

/* Literals: SH(2, 3) is a shape, DIMS(0, 2) a list of dims. */
#define SH(...) ((const int64_t[]){__VA_ARGS__})
#define DIMS(...) ((const int[]){__VA_ARGS__})
#define COUNT_OF(type, ...) ((int)(sizeof((type[]){__VA_ARGS__}) / sizeof(type)))

/* Relative-plus-absolute tolerance for results computed in dt. */
static double tol(lt_dtype dt) { return dt == LT_F32 ? 3e-6 : 1e-13; }

/* Element i of a contiguous tensor, read straight from memory (so tests of
 * conversion do not go through the library's own conversion code). */
static double raw(const lt_tensor *t, int64_t i)
{
    const void *d = lt_data(t);
    switch (lt_dtype_of(t)) {
    case LT_F32: return ((const float *)d)[i];
    case LT_F64: return ((const double *)d)[i];
    case LT_I64: return (double)((const int64_t *)d)[i];
    case LT_U8: return ((const uint8_t *)d)[i];
    }
    return NAN;
}

/* A new contiguous tensor of dtype dt holding vals, written straight into
 * memory with a C cast. */
static lt_tensor *make_tensor(lt_dtype dt, int ndim, const int64_t *shape, const double *vals, int n)
{
    lt_tensor *t = lt_empty(ndim, shape, dt);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(lt_numel(t), n);
    void *d = lt_data(t);
    for (int i = 0; i < n; i++) {
        switch (dt) {
        case LT_F32: ((float *)d)[i] = (float)vals[i]; break;
        case LT_F64: ((double *)d)[i] = vals[i]; break;
        case LT_I64: ((int64_t *)d)[i] = (int64_t)vals[i]; break;
        case LT_U8: ((uint8_t *)d)[i] = (uint8_t)vals[i]; break;
        }
    }
    return t;
}
/* T(LT_F32, SH(2, 3), 1, 2, 3, 4, 5, 6) */
#define T(dt, SHAPE, ...)                                                             \
    make_tensor((dt), (int)(sizeof SHAPE / sizeof(int64_t)), SHAPE, (const double[]){__VA_ARGS__}, \
                COUNT_OF(double, __VA_ARGS__))

static void expect_values(int line, const lt_tensor *t, double tl, const double *want, int n)
{
    ck_assert_msg(t != NULL, "line %d: result is NULL: %s", line, lt_last_error());
    ck_assert_msg(lt_numel(t) == n, "line %d: %lld elements, expected %d", line, (long long)lt_numel(t), n);
    for (int i = 0; i < n; i++) {
        double got = lt_item_at(t, i), w = want[i];
        bool ok;
        if (isnan(w))
            ok = isnan(got);
        else if (isinf(w))
            ok = got == w;
        else
            ok = fabs(got - w) <= tl * (1 + fabs(w));
        ck_assert_msg(ok, "line %d: element %d is %.17g, expected %.17g", line, i, got, w);
    }
}
/* EXPECT_VALUES(t, tol, v0, v1, ...): row-major values of t. */
#define EXPECT_VALUES(t, tl, ...)                                                     \
    expect_values(__LINE__, (t), (tl), (const double[]){__VA_ARGS__}, COUNT_OF(double, __VA_ARGS__))

static void expect_shape(int line, const lt_tensor *t, const int64_t *shape, int ndim)
{
    ck_assert_msg(t != NULL, "line %d: result is NULL: %s", line, lt_last_error());
    char got[128];
    lt_shape_str(t, got, sizeof got);
    ck_assert_msg(lt_ndim(t) == ndim, "line %d: shape %s has rank %d, expected %d", line, got, lt_ndim(t), ndim);
    for (int i = 0; i < ndim; i++)
        ck_assert_msg(lt_shape(t)[i] == shape[i], "line %d: shape %s, dim %d expected %lld", line, got, i,
                      (long long)shape[i]);
}
/* EXPECT_SHAPE(t, 2, 3) (use ck_assert_int_eq(lt_ndim(t), 0) for scalars) */
#define EXPECT_SHAPE(t, ...) \
    expect_shape(__LINE__, (t), (const int64_t[]){__VA_ARGS__}, COUNT_OF(int64_t, __VA_ARGS__))

/* result must be NULL (or negative) and lt_last_error() contain every needle. */
static void expect_error(int line, const char *what, bool failed, const char *const *needles, int n)
{
    const char *msg = lt_last_error();
    ck_assert_msg(failed, "line %d: %s succeeded, expected an error", line, what);
    ck_assert_msg(msg[0] != '\0', "line %d: %s failed with an empty message", line, what);
    for (int i = 0; i < n; i++)
        ck_assert_msg(strstr(msg, needles[i]) != NULL, "line %d: message of %s is \"%s\", lacks \"%s\"", line,
                      what, msg, needles[i]);
}
/* EXPECT_ERROR(lt_add(a, b), "add", "(2,3)"): clears the error first. */
#define EXPECT_ERROR(expr, ...)                                                       \
    expect_error(__LINE__, #expr, (lt_clear_error(), (expr)) == NULL,                 \
                 (const char *const[]){__VA_ARGS__}, COUNT_OF(const char *, __VA_ARGS__))

/* Same dtype, same shape and the same bytes element by element. */
static bool same_bits(const lt_tensor *a, const lt_tensor *b)
{
    if (!a || !b || lt_dtype_of(a) != lt_dtype_of(b) || lt_ndim(a) != lt_ndim(b))
        return false;
    for (int i = 0; i < lt_ndim(a); i++)
        if (lt_shape(a)[i] != lt_shape(b)[i])
            return false;
    lt_tensor *ca = lt_contiguous(a), *cb = lt_contiguous(b);
    if (!ca || !cb)
        return false;
    return memcmp(lt_data(ca), lt_data(cb), (size_t)lt_numel(a) * lt_dtype_size(lt_dtype_of(a))) == 0;
}
#define EXPECT_SAME_BITS(a, b) ck_assert_msg(same_bits((a), (b)), "line %d: %s and %s differ", __LINE__, #a, #b)

/* Deterministic pseudo-random fill in [-3, 3): a 64-bit LCG (Knuth's MMIX
 * constants), independent of the library's RNG. */
static lt_tensor *lcg_tensor(lt_dtype dt, int ndim, const int64_t *shape, uint64_t seed)
{
    lt_tensor *t = lt_empty(ndim, shape, dt);
    ck_assert_ptr_nonnull(t);
    uint64_t x = seed * 2654435761u + 1;
    int64_t n = lt_numel(t);
    for (int64_t i = 0; i < n; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        double u = (double)(x >> 11) * 0x1p-53 * 6.0 - 3.0;
        if (dt == LT_F32)
            ((float *)lt_data(t))[i] = (float)u;
        else
            ((double *)lt_data(t))[i] = u;
    }
    return t;
}

/* Same logical values as x but laid out column-major (not contiguous). */
static lt_tensor *relayout(const lt_tensor *x)
{
    return lt_transpose(lt_contiguous(lt_transpose(x, 0, -1)), 0, -1);
}

/* ------------------------------------------------------------------ */
/* Creation                                                            */
/* ------------------------------------------------------------------ */

START_TEST(zeros_ones_full_fill_every_element_in_every_dtype)
{
    size_t m = lt_frame_push();
    for (int k = 0; k < 4; k++) {
        lt_dtype dt = ALL_DTYPES[k];
        lt_tensor *z = lt_zeros(2, SH(2, 3), dt), *o = lt_ones(2, SH(2, 3), dt);
        lt_tensor *f = lt_full(2, SH(2, 3), 7, dt);
        EXPECT_SHAPE(z, 2, 3);
        ck_assert_int_eq(lt_dtype_of(z), dt);
        ck_assert_int_eq(lt_dtype_of(f), dt);
        ck_assert(lt_is_contiguous(o));
        for (int i = 0; i < 6; i++) {
            ck_assert(raw(z, i) == 0);
            ck_assert(raw(o, i) == 1);
            ck_assert(raw(f, i) == 7);
        }
    }
    EXPECT_VALUES(lt_full(1, SH(2), -2.5, LT_F64), 0, -2.5, -2.5);
    EXPECT_VALUES(lt_full(1, SH(2), 300, LT_U8), 0, 255, 255);
    lt_frame_pop(m);
}
END_TEST

START_TEST(scalar_is_a_zero_dim_tensor_with_one_element)
{
    size_t m = lt_frame_push();
    lt_tensor *s = lt_scalar(3.5, LT_F64);
    ck_assert_int_eq(lt_ndim(s), 0);
    ck_assert_int_eq(lt_numel(s), 1);
    ck_assert(lt_item(s) == 3.5);
    char buf[16];
    ck_assert_str_eq(lt_shape_str(s, buf, sizeof buf), "()");
    ck_assert_int_eq(lt_size(s, 0), -1);
    /* A zero-size shape is valid and has no elements. */
    lt_tensor *e = lt_zeros(2, SH(0, 3), LT_F32);
    EXPECT_SHAPE(e, 0, 3);
    ck_assert_int_eq(lt_numel(e), 0);
    lt_frame_pop(m);
}
END_TEST

START_TEST(arange_counts_from_start_up_to_end_exclusive)
{
    size_t m = lt_frame_push();
    lt_dtype dt = FLOATS[_i];
    lt_tensor *a = lt_arange(0, 5, 1, dt);
    EXPECT_SHAPE(a, 5);
    ck_assert_int_eq(lt_dtype_of(a), dt);
    EXPECT_VALUES(a, 0, 0, 1, 2, 3, 4);
    EXPECT_VALUES(lt_arange(0, 1, 0.25, dt), tol(dt), 0, 0.25, 0.5, 0.75);
    /* ceil(1 / 0.3) = 4 elements: the last one is below end. */
    EXPECT_VALUES(lt_arange(0, 1, 0.3, dt), tol(dt), 0, 0.3, 0.6, 0.9);
    EXPECT_VALUES(lt_arange(5, 0, -1.5, dt), tol(dt), 5, 3.5, 2, 0.5);
    EXPECT_VALUES(lt_arange(-1, -3, -1, dt), 0, -1, -2);
    /* Empty when the step points away from end, or start == end. */
    EXPECT_SHAPE(lt_arange(3, 0, 1, dt), 0);
    EXPECT_SHAPE(lt_arange(1, 1, 1, dt), 0);
    lt_frame_pop(m);
}
END_TEST

START_TEST(arange_in_integer_dtypes_and_zero_step_is_an_error)
{
    size_t m = lt_frame_push();
    lt_tensor *a = lt_arange(0, 7, 2, LT_I64);
    ck_assert_int_eq(lt_dtype_of(a), LT_I64);
    EXPECT_VALUES(a, 0, 0, 2, 4, 6);
    EXPECT_VALUES(lt_arange(0, 3, 1, LT_U8), 0, 0, 1, 2);
    EXPECT_ERROR(lt_arange(0, 5, 0, LT_F32), "arange");
    EXPECT_ERROR(lt_arange(0, INFINITY, 1, LT_F32), "arange");
    lt_frame_pop(m);
}
END_TEST

START_TEST(eye_has_ones_on_the_diagonal_and_zeros_elsewhere)
{
    size_t m = lt_frame_push();
    for (int k = 0; k < 4; k++) {
        lt_tensor *e = lt_eye(3, ALL_DTYPES[k]);
        EXPECT_SHAPE(e, 3, 3);
        EXPECT_VALUES(e, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1);
    }
    EXPECT_SHAPE(lt_eye(0, LT_F32), 0, 0);
    lt_frame_pop(m);
}
END_TEST

START_TEST(from_data_copies_the_callers_buffer)
{
    size_t m = lt_frame_push();
    float buf[6] = {1, 2, 3, 4, 5, 6};
    lt_tensor *t = lt_from_data(buf, 2, SH(2, 3), LT_F32);
    EXPECT_SHAPE(t, 2, 3);
    ck_assert(lt_data(t) != (void *)buf);
    buf[0] = 100;
    EXPECT_VALUES(t, 0, 1, 2, 3, 4, 5, 6);
    int64_t ibuf[2] = {-7, 1LL << 40};
    lt_tensor *ti = lt_from_data(ibuf, 1, SH(2), LT_I64);
    ck_assert(((int64_t *)lt_data(ti))[1] == 1LL << 40);
    EXPECT_ERROR(lt_from_data(NULL, 1, SH(2), LT_F32), "from_data");
    lt_frame_pop(m);
}
END_TEST

START_TEST(clone_has_new_storage_and_equal_values)
{
    size_t m = lt_frame_push();
    lt_dtype dt = FLOATS[_i];
    lt_tensor *x = T(dt, SH(2, 3), 1, 2, 3, 4, 5, 6);
    lt_tensor *c = lt_clone(x);
    ck_assert(!lt_shares_storage(x, c));
    EXPECT_SHAPE(c, 2, 3);
    EXPECT_VALUES(c, 0, 1, 2, 3, 4, 5, 6);
    lt_fill_(x, 0);
    EXPECT_VALUES(c, 0, 1, 2, 3, 4, 5, 6);
    /* The clone of a transposed view is contiguous, in logical order. */
    lt_tensor *y = T(dt, SH(2, 3), 1, 2, 3, 4, 5, 6);
    lt_tensor *ct = lt_clone(lt_transpose(y, 0, 1));
    ck_assert(lt_is_contiguous(ct));
    EXPECT_SHAPE(ct, 3, 2);
    EXPECT_VALUES(ct, 0, 1, 4, 2, 5, 3, 6);
    for (int i = 0; i < 6; i++)
        ck_assert(raw(ct, i) == lt_item_at(ct, i));
    lt_frame_pop(m);
}
END_TEST

START_TEST(to_dtype_converts_exact_values_between_all_four_dtypes)
{
    size_t m = lt_frame_push();
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 4; b++) {
            lt_tensor *x = T(ALL_DTYPES[a], SH(2, 2), 0, 1, 7, 255);
            lt_tensor *y = lt_to_dtype(x, ALL_DTYPES[b]);
            ck_assert_ptr_nonnull(y);
            ck_assert_int_eq(lt_dtype_of(y), ALL_DTYPES[b]);
            ck_assert(!lt_shares_storage(x, y));
            EXPECT_SHAPE(y, 2, 2);
            ck_assert(raw(y, 0) == 0 && raw(y, 1) == 1 && raw(y, 2) == 7 && raw(y, 3) == 255);
        }
    EXPECT_ERROR(lt_to_dtype(lt_zeros(1, SH(1), LT_F32), (lt_dtype)9), "to_dtype");
    lt_frame_pop(m);
}
END_TEST

START_TEST(to_u8_saturates_and_rounds_to_nearest)
{
    size_t m = lt_frame_push();
    for (int k = 0; k < 2; k++) {
        lt_tensor *x = T(FLOATS[k], SH(6), 300, -5, 2.6, 2.4, 254.7, -0.4);
        lt_tensor *u = lt_to_dtype(x, LT_U8);
        ck_assert_int_eq(lt_dtype_of(u), LT_U8);
        ck_assert(raw(u, 0) == 255 && raw(u, 1) == 0 && raw(u, 2) == 3);
        ck_assert(raw(u, 3) == 2 && raw(u, 4) == 255 && raw(u, 5) == 0);
    }
    lt_tensor *xi = T(LT_I64, SH(4), 300, -5, 1000000, 17);
    lt_tensor *ui = lt_to_dtype(xi, LT_U8);
    ck_assert(raw(ui, 0) == 255 && raw(ui, 1) == 0 && raw(ui, 2) == 255 && raw(ui, 3) == 17);
    lt_frame_pop(m);
}
END_TEST

START_TEST(floating_to_i64_truncates_toward_zero)
{
    size_t m = lt_frame_push();
    for (int k = 0; k < 2; k++) {
        lt_tensor *x = T(FLOATS[k], SH(5), 2.7, -2.7, 0.5, -0.5, 1e10);
        lt_tensor *i = lt_to_dtype(x, LT_I64);
        ck_assert_int_eq(lt_dtype_of(i), LT_I64);
        const int64_t *d = lt_data(i);
        ck_assert(d[0] == 2 && d[1] == -2 && d[2] == 0 && d[3] == 0 && d[4] == 10000000000LL);
    }
    lt_frame_pop(m);
}
END_TEST

START_TEST(like_constructors_copy_shape_and_dtype_into_new_storage)
{
    size_t m = lt_frame_push();
    for (int k = 0; k < 4; k++) {
        lt_dtype dt = ALL_DTYPES[k];
        lt_tensor *x = lt_transpose(lt_ones(2, SH(2, 3), dt), 0, 1); /* (3,2), not contiguous */
        lt_tensor *z = lt_zeros_like(x), *o = lt_ones_like(x), *f = lt_full_like(x, 5);
        EXPECT_SHAPE(z, 3, 2);
        EXPECT_SHAPE(o, 3, 2);
        EXPECT_SHAPE(f, 3, 2);
        ck_assert_int_eq(lt_dtype_of(z), dt);
        ck_assert_int_eq(lt_dtype_of(f), dt);
        ck_assert(!lt_shares_storage(x, z) && !lt_shares_storage(x, o) && !lt_shares_storage(x, f));
        ck_assert(lt_is_contiguous(z));
        EXPECT_VALUES(z, 0, 0, 0, 0, 0, 0, 0);
        EXPECT_VALUES(o, 0, 1, 1, 1, 1, 1, 1);
        EXPECT_VALUES(f, 0, 5, 5, 5, 5, 5, 5);
    }
    lt_frame_pop(m);
}
END_TEST

START_TEST(fill_writes_through_a_strided_view)
{
    size_t m = lt_frame_push();
    lt_dtype dt = FLOATS[_i];
    lt_tensor *x = lt_zeros(2, SH(2, 3), dt);
    lt_tensor *col = lt_select(x, 1, 1);
    ck_assert_ptr_eq(lt_fill_(col, 4.5), col);
    EXPECT_VALUES(x, 0, 0, 4.5, 0, 0, 4.5, 0);
    lt_fill_(lt_slice(x, 1, 0, 3, 2), -1);
    EXPECT_VALUES(x, 0, -1, 4.5, -1, -1, 4.5, -1);
    ck_assert_ptr_null(lt_fill_(NULL, 1));
    lt_frame_pop(m);
}
END_TEST

START_TEST(copy_broadcasts_source_and_converts_to_destination_dtype)
{
    size_t m = lt_frame_push();
    lt_dtype dt = FLOATS[_i];
    lt_tensor *dst = lt_zeros(2, SH(2, 3), dt);
    ck_assert_ptr_eq(lt_copy_(dst, T(LT_F32, SH(3), 1, 2, 3)), dst);
    EXPECT_VALUES(dst, 0, 1, 2, 3, 1, 2, 3);
    lt_copy_(dst, T(LT_I64, SH(2, 1), 7, 8));
    EXPECT_VALUES(dst, 0, 7, 7, 7, 8, 8, 8);
    lt_copy_(dst, lt_scalar(-1, LT_F64));
    EXPECT_VALUES(dst, 0, -1, -1, -1, -1, -1, -1);
    /* Into a transposed destination: logical positions, not memory order. */
    lt_copy_(lt_transpose(dst, 0, 1), T(dt, SH(3, 2), 1, 2, 3, 4, 5, 6));
    EXPECT_VALUES(dst, 0, 1, 3, 5, 2, 4, 6);
    /* Into u8: saturating, rounding conversion. */
    lt_tensor *u = lt_zeros(1, SH(3), LT_U8);
    lt_copy_(u, T(dt, SH(3), 300, -5, 2.6));
    EXPECT_VALUES(u, 0, 255, 0, 3);
    lt_frame_pop(m);
}
END_TEST

START_TEST(copy_between_overlapping_views_of_one_storage_reads_the_old_values)
{
    size_t m = lt_frame_push();
    lt_dtype dt = FLOATS[_i];
    lt_tensor *x = T(dt, SH(2, 2), 1, 2, 3, 4);
    lt_copy_(x, lt_transpose(x, 0, 1)); /* in-place transpose */
    EXPECT_VALUES(x, 0, 1, 3, 2, 4);
    lt_tensor *v = lt_arange(0, 5, 1, dt);
    lt_copy_(lt_slice(v, 0, 1, 5, 1), lt_slice(v, 0, 0, 4, 1)); /* shift right by one */
    EXPECT_VALUES(v, 0, 0, 0, 1, 2, 3);
    lt_frame_pop(m);
}
END_TEST

START_TEST(copy_rejects_a_source_that_does_not_broadcast_to_the_destination)
{
    size_t m = lt_frame_push();
    lt_tensor *dst = lt_zeros(2, SH(2, 3), LT_F32);
    EXPECT_ERROR(lt_copy_(dst, lt_zeros(2, SH(4, 3), LT_F32)), "copy_", "(2,3)", "(4,3)");
    /* (1,2,3) broadcasts with (2,3) but to a larger shape than dst. */
    EXPECT_ERROR(lt_copy_(dst, lt_zeros(3, SH(1, 2, 3), LT_F32)), "copy_");
    lt_frame_pop(m);
}
END_TEST

START_TEST(inspection_reports_shape_strides_offset_and_item_in_logical_order)
{
    size_t m = lt_frame_push();
    lt_tensor *x = lt_reshape(lt_arange(0, 24, 1, LT_F64), 3, SH(2, 3, 4));
    ck_assert_int_eq(lt_ndim(x), 3);
    ck_assert_int_eq(lt_size(x, 0), 2);
    ck_assert_int_eq(lt_size(x, -1), 4);
    ck_assert_int_eq(lt_size(x, 3), -1);
    ck_assert_int_eq(lt_size(x, -4), -1);
    ck_assert(lt_strides(x)[0] == 12 && lt_strides(x)[1] == 4 && lt_strides(x)[2] == 1);
    ck_assert_int_eq(lt_numel(x), 24);
    char buf[32];
    ck_assert_str_eq(lt_shape_str(x, buf, sizeof buf), "(2,3,4)");
    ck_assert_str_eq(lt_dtype_name(LT_F32), "f32");
    ck_assert_str_eq(lt_dtype_name(LT_U8), "u8");
    ck_assert_int_eq(lt_dtype_size(LT_F32), 4);
    ck_assert_int_eq(lt_dtype_size(LT_I64), 8);
    ck_assert_int_eq(lt_dtype_size(LT_U8), 1);
    /* item_at follows the logical row-major order of a view. */
    lt_tensor *v = lt_select(lt_transpose(x, 1, 2), 0, 1); /* (4,3): v[k][j] = 12 + 4j + k */
    ck_assert_uint_eq(lt_offset(v), 12);
    for (int k = 0; k < 4; k++)
        for (int j = 0; j < 3; j++)
            ck_assert(lt_item_at(v, k * 3 + j) == 12 + 4 * j + k);
    ck_assert(isnan(lt_item_at(v, 12)));
    ck_assert(isnan(lt_item(v)));
    ck_assert_ptr_nonnull(strstr(lt_last_error(), "item"));
    ck_assert(lt_item(lt_select(lt_select(v, 0, 2), 0, 1)) == 12 + 4 + 2);
    lt_frame_pop(m);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Views                                                               */
/* ------------------------------------------------------------------ */

START_TEST(reshape_is_a_view_that_shares_storage)
{
    size_t m = lt_frame_push();
    lt_dtype dt = FLOATS[_i];
    lt_tensor *a = lt_arange(0, 6, 1, dt);
    lt_tensor *r = lt_reshape(a, 2, SH(2, 3));
    EXPECT_SHAPE(r, 2, 3);
    ck_assert(lt_shares_storage(a, r));
    ck_assert(lt_data(a) == lt_data(r));
    lt_tensor *v = lt_view(a, 3, SH(3, 1, 2));
    EXPECT_SHAPE(v, 3, 1, 2);
    ck_assert(lt_shares_storage(a, v));
    if (dt == LT_F32)
        ((float *)lt_data(a))[4] = 40;
    else
        ((double *)lt_data(a))[4] = 40;
    ck_assert(lt_item_at(r, 4) == 40);
    ck_assert(lt_item_at(v, 4) == 40);
    lt_frame_pop(m);
}
END_TEST

START_TEST(reshape_infers_a_single_minus_one)
{
    size_t m = lt_frame_push();
    lt_tensor *a = lt_arange(0, 12, 1, LT_F32);
    EXPECT_SHAPE(lt_reshape(a, 2, SH(-1, 4)), 3, 4);
    EXPECT_SHAPE(lt_reshape(a, 3, SH(2, -1, 3)), 2, 2, 3);
    EXPECT_SHAPE(lt_view(a, 2, SH(6, -1)), 6, 2);
    ck_assert_int_eq(lt_ndim(lt_reshape(lt_scalar(1, LT_F32), 0, NULL)), 0);
    EXPECT_SHAPE(lt_reshape(lt_scalar(1, LT_F32), 2, SH(1, -1)), 1, 1);
    EXPECT_ERROR(lt_reshape(a, 2, SH(-1, -1)), "reshape");
    EXPECT_ERROR(lt_reshape(a, 2, SH(-1, 5)), "reshape", "(12)");
    lt_frame_pop(m);
}
END_TEST

START_TEST(reshape_to_a_wrong_numel_fails_naming_op_and_shape)
{
    size_t m = lt_frame_push();
    lt_tensor *a = lt_zeros(2, SH(2, 3), LT_F32);
    EXPECT_ERROR(lt_reshape(a, 2, SH(4, 2)), "reshape", "(2,3)");
    EXPECT_ERROR(lt_view(a, 1, SH(7)), "view", "(2,3)");
    EXPECT_ERROR(lt_reshape(a, 2, SH(-2, 3)), "reshape");
    lt_frame_pop(m);
}
END_TEST

START_TEST(view_of_a_transposed_tensor_fails_and_reshape_copies)
{
    size_t m = lt_frame_push();
    lt_dtype dt = FLOATS[_i];
    lt_tensor *a = T(dt, SH(2, 3), 1, 2, 3, 4, 5, 6);
    lt_tensor *t = lt_transpose(a, 0, 1); /* (3,2): 1 4 / 2 5 / 3 6 */
    EXPECT_ERROR(lt_view(t, 1, SH(6)), "view");
    lt_tensor *r = lt_reshape(t, 1, SH(6));
    ck_assert(!lt_shares_storage(a, r));
    EXPECT_VALUES(r, 0, 1, 4, 2, 5, 3, 6);
    /* Splitting or merging dims that stay contiguous in memory is still a view. */
    lt_tensor *s = lt_view(t, 3, SH(3, 2, 1));
    ck_assert(lt_shares_storage(a, s));
    EXPECT_VALUES(s, 0, 1, 4, 2, 5, 3, 6);
    lt_frame_pop(m);
}
END_TEST

START_TEST(view_of_a_step_slice_merges_dims_whose_strides_line_up)
{
    size_t m = lt_frame_push();
    lt_tensor *a = lt_reshape(lt_arange(0, 12, 1, LT_F64), 2, SH(3, 4));
    lt_tensor *s = lt_slice(a, 1, 0, 4, 2); /* (3,2) strides (4,2): 0 2 4 6 8 10 */
    lt_tensor *v = lt_view(s, 1, SH(6));
    ck_assert(lt_shares_storage(a, v));
    ck_assert_int_eq(lt_strides(v)[0], 2);
    EXPECT_VALUES(v, 0, 0, 2, 4, 6, 8, 10);
    /* Rows of a row-slice are not evenly spaced: no view. */
    lt_tensor *rows = lt_slice(lt_slice(a, 0, 0, 3, 2), 1, 0, 3, 1); /* (2,3) strides (8,1) */
    EXPECT_ERROR(lt_view(rows, 1, SH(6)), "view");
    EXPECT_VALUES(lt_reshape(rows, 1, SH(6)), 0, 0, 1, 2, 8, 9, 10);
    /* A view of a row (offset 4) keeps the offset. */
    lt_tensor *row = lt_reshape(lt_select(a, 0, 1), 2, SH(2, 2));
    ck_assert(lt_shares_storage(a, row));
    ck_assert_uint_eq(lt_offset(row), 4);
    EXPECT_VALUES(row, 0, 4, 5, 6, 7);
    lt_frame_pop(m);
}
END_TEST

START_TEST(permute_reorders_dims_without_copying)
{
    size_t m = lt_frame_push();
    lt_dtype dt = FLOATS[_i];
    lt_tensor *x = lt_reshape(lt_arange(0, 24, 1, dt), 3, SH(2, 3, 4)); /* x[i,j,k] = 12i+4j+k */
    lt_tensor *p = lt_permute(x, DIMS(2, 0, 1));                         /* p[k,i,j] = x[i,j,k] */
    EXPECT_SHAPE(p, 4, 2, 3);
    ck_assert(lt_shares_storage(x, p));
    ck_assert(!lt_is_contiguous(p));
    ck_assert(lt_strides(p)[0] == 1 && lt_strides(p)[1] == 12 && lt_strides(p)[2] == 4);
    for (int k = 0; k < 4; k++)
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 3; j++)
                ck_assert(lt_item_at(p, (k * 2 + i) * 3 + j) == 12 * i + 4 * j + k);
    /* Negative entries count from the end. */
    EXPECT_SHAPE(lt_permute(x, DIMS(-1, 0, 1)), 4, 2, 3);
    EXPECT_ERROR(lt_permute(x, DIMS(0, 0, 1)), "permute", "(2,3,4)");
    EXPECT_ERROR(lt_permute(x, DIMS(0, 1, 3)), "permute");
    lt_frame_pop(m);
}
END_TEST

START_TEST(transpose_swaps_two_dims_and_accepts_negative_dims)
{
    size_t m = lt_frame_push();
    lt_tensor *x = lt_reshape(lt_arange(0, 6, 1, LT_F32), 2, SH(2, 3));
    lt_tensor *t = lt_transpose(x, -1, -2);
    EXPECT_SHAPE(t, 3, 2);
    ck_assert(lt_shares_storage(x, t));
    EXPECT_VALUES(t, 0, 0, 3, 1, 4, 2, 5);
    EXPECT_VALUES(lt_transpose(t, 0, 1), 0, 0, 1, 2, 3, 4, 5);
    EXPECT_ERROR(lt_transpose(x, 0, 2), "transpose");
    lt_frame_pop(m);
}
END_TEST

START_TEST(slice_with_step_selects_every_kth_element)
{
    size_t m = lt_frame_push();
    lt_dtype dt = FLOATS[_i];
    lt_tensor *a = lt_arange(0, 10, 1, dt);
    lt_tensor *s = lt_slice(a, 0, 1, 8, 3);
    EXPECT_SHAPE(s, 3);
    ck_assert(lt_shares_storage(a, s));
    ck_assert_int_eq(lt_strides(s)[0], 3);
    ck_assert_uint_eq(lt_offset(s), 1);
    EXPECT_VALUES(s, 0, 1, 4, 7);
    EXPECT_VALUES(lt_slice(a, 0, 0, 10, 4), 0, 0, 4, 8);
    EXPECT_VALUES(lt_slice(lt_slice(a, 0, 1, 10, 2), 0, 1, 5, 2), 0, 3, 7);
    /* Along dim 1 of a matrix. */
    lt_tensor *x = lt_reshape(lt_arange(0, 12, 1, dt), 2, SH(3, 4));
    lt_tensor *c = lt_slice(x, -1, 1, 4, 2);
    EXPECT_SHAPE(c, 3, 2);
    EXPECT_VALUES(c, 0, 1, 3, 5, 7, 9, 11);
    if (dt == LT_F32)
        ((float *)lt_data(x))[5] = -5;
    else
        ((double *)lt_data(x))[5] = -5;
    ck_assert(lt_item_at(c, 2) == -5);
    EXPECT_ERROR(lt_slice(a, 0, 0, 5, 0), "slice", "step");
    EXPECT_ERROR(lt_slice(a, 1, 0, 5, 1), "slice");
    lt_frame_pop(m);
}
END_TEST

START_TEST(slice_negative_start_and_end_count_from_the_end_and_clamp)
{
    size_t m = lt_frame_push();
    lt_tensor *a = lt_arange(0, 10, 1, LT_F64);
    EXPECT_VALUES(lt_slice(a, 0, -4, -1, 1), 0, 6, 7, 8);
    EXPECT_VALUES(lt_slice(a, 0, -3, 10, 1), 0, 7, 8, 9);
    EXPECT_VALUES(lt_slice(a, 0, 7, 100, 1), 0, 7, 8, 9);
    EXPECT_SHAPE(lt_slice(a, 0, -100, 100, 1), 10);
    EXPECT_SHAPE(lt_slice(a, 0, 5, 2, 1), 0);
    EXPECT_SHAPE(lt_slice(a, 0, 12, 20, 1), 0);
    lt_frame_pop(m);
}
END_TEST

START_TEST(select_removes_a_dim_and_negative_index_counts_from_the_end)
{
    size_t m = lt_frame_push();
    lt_tensor *x = lt_reshape(lt_arange(0, 12, 1, LT_F32), 2, SH(3, 4));
    lt_tensor *r = lt_select(x, 0, -1);
    EXPECT_SHAPE(r, 4);
    ck_assert(lt_shares_storage(x, r));
    EXPECT_VALUES(r, 0, 8, 9, 10, 11);
    EXPECT_VALUES(lt_select(x, 1, 2), 0, 2, 6, 10);
    EXPECT_VALUES(lt_select(x, -1, -4), 0, 0, 4, 8);
    lt_tensor *e = lt_select(r, 0, 1);
    ck_assert_int_eq(lt_ndim(e), 0);
    ck_assert(lt_item(e) == 9);
    EXPECT_ERROR(lt_select(x, 0, 3), "select", "(3,4)");
    EXPECT_ERROR(lt_select(x, 0, -4), "select");
    EXPECT_ERROR(lt_select(x, 2, 0), "select");
    lt_frame_pop(m);
}
END_TEST

START_TEST(expand_broadcasts_size_one_dims_with_stride_zero)
{
    size_t m = lt_frame_push();
    lt_dtype dt = FLOATS[_i];
    lt_tensor *c = T(dt, SH(3, 1), 1, 2, 3);
    lt_tensor *e = lt_expand(c, 2, SH(3, 4));
    EXPECT_SHAPE(e, 3, 4);
    ck_assert(lt_shares_storage(c, e));
    ck_assert_int_eq(lt_strides(e)[1], 0);
    EXPECT_VALUES(e, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
    /* A new leading dim has stride 0; -1 keeps a size. */
    lt_tensor *r = T(dt, SH(3), 1, 2, 3);
    lt_tensor *e2 = lt_expand(r, 2, SH(2, -1));
    EXPECT_SHAPE(e2, 2, 3);
    ck_assert(lt_strides(e2)[0] == 0 && lt_strides(e2)[1] == 1);
    EXPECT_VALUES(e2, 0, 1, 2, 3, 1, 2, 3);
    /* One write to the base shows in every broadcast copy. */
    if (dt == LT_F32)
        ((float *)lt_data(r))[1] = 20;
    else
        ((double *)lt_data(r))[1] = 20;
    EXPECT_VALUES(e2, 0, 1, 20, 3, 1, 20, 3);
    EXPECT_VALUES(lt_expand(lt_scalar(7, dt), 2, SH(2, 2)), 0, 7, 7, 7, 7);
    EXPECT_ERROR(lt_expand(c, 2, SH(4, 4)), "expand", "(3,1)");
    EXPECT_ERROR(lt_expand(c, 1, SH(3)), "expand");
    lt_frame_pop(m);
}
END_TEST

START_TEST(squeeze_and_unsqueeze_remove_and_insert_size_one_dims)
{
    size_t m = lt_frame_push();
    lt_tensor *x = lt_reshape(lt_arange(0, 6, 1, LT_F32), 4, SH(1, 3, 1, 2));
    lt_tensor *s0 = lt_squeeze(x, 0);
    EXPECT_SHAPE(s0, 3, 1, 2);
    ck_assert(lt_shares_storage(x, s0));
    EXPECT_SHAPE(lt_squeeze(x, -2), 1, 3, 2);
    EXPECT_SHAPE(lt_squeeze_all(x), 3, 2);
    EXPECT_VALUES(lt_squeeze_all(x), 0, 0, 1, 2, 3, 4, 5);
    ck_assert_int_eq(lt_ndim(lt_squeeze_all(lt_ones(2, SH(1, 1), LT_F32))), 0);
    EXPECT_ERROR(lt_squeeze(x, 1), "squeeze", "(1,3,1,2)");
    lt_tensor *v = lt_arange(0, 3, 1, LT_F32);
    EXPECT_SHAPE(lt_unsqueeze(v, 0), 1, 3);
    EXPECT_SHAPE(lt_unsqueeze(v, 1), 3, 1);
    EXPECT_SHAPE(lt_unsqueeze(v, -1), 3, 1);
    EXPECT_SHAPE(lt_unsqueeze(v, -2), 1, 3);
    ck_assert(lt_shares_storage(v, lt_unsqueeze(v, 0)));
    EXPECT_SHAPE(lt_unsqueeze(lt_scalar(1, LT_F32), 0), 1);
    EXPECT_ERROR(lt_unsqueeze(v, 2), "unsqueeze");
    /* Squeeze of a non-contiguous tensor is still a view. */
    lt_tensor *t = lt_transpose(lt_zeros(3, SH(2, 1, 3), LT_F32), 0, 2); /* (3,1,2) */
    ck_assert(lt_shares_storage(t, lt_squeeze(t, 1)));
    lt_frame_pop(m);
}
END_TEST

START_TEST(flatten_merges_an_inclusive_range_of_dims)
{
    size_t m = lt_frame_push();
    lt_tensor *x = lt_reshape(lt_arange(0, 24, 1, LT_F64), 3, SH(2, 3, 4));
    lt_tensor *f = lt_flatten(x, 1, 2);
    EXPECT_SHAPE(f, 2, 12);
    ck_assert(lt_shares_storage(x, f));
    EXPECT_SHAPE(lt_flatten(x, 0, -1), 24);
    EXPECT_SHAPE(lt_flatten(x, 0, 1), 6, 4);
    EXPECT_SHAPE(lt_flatten(x, 1, 1), 2, 3, 4);
    EXPECT_SHAPE(lt_flatten(lt_scalar(2, LT_F64), 0, -1), 1);
    /* Flattening a transposed tensor has to copy. */
    lt_tensor *ft = lt_flatten(lt_transpose(lt_select(x, 0, 0), 0, 1), 0, 1);
    ck_assert(!lt_shares_storage(x, ft));
    EXPECT_VALUES(ft, 0, 0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11);
    EXPECT_ERROR(lt_flatten(x, 2, 1), "flatten");
    lt_frame_pop(m);
}
END_TEST

START_TEST(contiguous_returns_the_same_tensor_when_contiguous_and_a_copy_otherwise)
{
    size_t m = lt_frame_push();
    lt_tensor *x = lt_reshape(lt_arange(0, 6, 1, LT_F32), 2, SH(2, 3));
    ck_assert(lt_is_contiguous(x));
    lt_tensor *c = lt_contiguous(x);
    ck_assert_ptr_eq(c, x);
    ck_assert(lt_shares_storage(c, x));
    lt_tensor *row = lt_select(x, 0, 1); /* contiguous with an offset */
    ck_assert(lt_is_contiguous(row));
    ck_assert(lt_shares_storage(lt_contiguous(row), x));
    lt_tensor *t = lt_transpose(x, 0, 1);
    ck_assert(!lt_is_contiguous(t));
    lt_tensor *tc = lt_contiguous(t);
    ck_assert(!lt_shares_storage(tc, x));
    ck_assert(lt_is_contiguous(tc));
    EXPECT_VALUES(tc, 0, 0, 3, 1, 4, 2, 5);
    lt_tensor *e = lt_expand(lt_reshape(x, 3, SH(1, 2, 3)), 3, SH(2, 2, 3));
    ck_assert(!lt_is_contiguous(e));
    lt_tensor *ec = lt_contiguous(e);
    ck_assert(!lt_shares_storage(ec, x));
    EXPECT_VALUES(ec, 0, 0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5);
    /* Size-1 dims do not break contiguity whatever their stride. */
    ck_assert(lt_is_contiguous(lt_unsqueeze(row, 0)));
    lt_frame_pop(m);
}
END_TEST

START_TEST(rank_8_tensors_work_through_views_elementwise_and_reductions)
{
    size_t m = lt_frame_push();
    const int64_t *sh = SH(2, 1, 3, 1, 2, 1, 2, 2); /* 48 elements */
    lt_tensor *x = lt_reshape(lt_arange(0, 48, 1, LT_F64), 8, sh);
    EXPECT_SHAPE(x, 2, 1, 3, 1, 2, 1, 2, 2);
    lt_tensor *p = lt_permute(x, DIMS(7, 6, 5, 4, 3, 2, 1, 0));
    EXPECT_SHAPE(p, 2, 2, 1, 2, 1, 3, 1, 2);
    lt_tensor *back = lt_contiguous(lt_permute(lt_contiguous(p), DIMS(7, 6, 5, 4, 3, 2, 1, 0)));
    EXPECT_SAME_BITS(back, x);
    /* x + (2,2) broadcast over the last two dims. */
    lt_tensor *y = lt_add(x, T(LT_F64, SH(2, 2), 100, 200, 300, 400));
    EXPECT_SHAPE(y, 2, 1, 3, 1, 2, 1, 2, 2);
    for (int i = 0; i < 48; i++)
        ck_assert(lt_item_at(y, i) == i + 100 * (i % 4 + 1));
    lt_tensor *s = lt_sum(x, 3, DIMS(0, 2, 4), true);
    EXPECT_SHAPE(s, 1, 1, 1, 1, 1, 1, 2, 2);
    /* element (a,b) sums 24i + 8j + 4k + 2a + b over i<2, j<3, k<2: 264 + 12(2a+b) */
    EXPECT_VALUES(s, 0, 264, 276, 288, 300);
    lt_frame_pop(m);
}
END_TEST

START_TEST(rank_above_8_is_refused)
{
    size_t m = lt_frame_push();
    lt_tensor *x = lt_zeros(8, SH(1, 1, 1, 1, 1, 1, 1, 2), LT_F32);
    ck_assert_ptr_nonnull(x);
    EXPECT_ERROR(lt_unsqueeze(x, 0), "unsqueeze");
    EXPECT_ERROR(lt_reshape(x, 9, SH(1, 1, 1, 1, 1, 1, 1, 1, 2)), "reshape");
    EXPECT_ERROR(lt_zeros(9, SH(1, 1, 1, 1, 1, 1, 1, 1, 2), LT_F32), "rank");
    EXPECT_ERROR(lt_zeros(1, SH(-1), LT_F32), "negative");
    lt_frame_pop(m);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Structural                                                          */
/* ------------------------------------------------------------------ */

START_TEST(cat_along_dim_0_appends_rows)
{
    size_t m = lt_frame_push();
    lt_dtype dt = FLOATS[_i];
    lt_tensor *a = T(dt, SH(1, 2), 1, 2), *b = T(dt, SH(2, 2), 3, 4, 5, 6);
    lt_tensor *c = lt_cat(2, (lt_tensor *[]){a, b}, 0);
    EXPECT_SHAPE(c, 3, 2);
    ck_assert(!lt_shares_storage(c, a) && !lt_shares_storage(c, b));
    EXPECT_VALUES(c, 0, 1, 2, 3, 4, 5, 6);
    EXPECT_VALUES(lt_cat(1, (lt_tensor *[]){a}, 0), 0, 1, 2);
    /* A zero-size piece contributes nothing. */
    EXPECT_VALUES(lt_cat(3, (lt_tensor *[]){a, lt_zeros(2, SH(0, 2), dt), a}, 0), 0, 1, 2, 1, 2);
    lt_frame_pop(m);
}
END_TEST

START_TEST(cat_along_dim_1_appends_columns)
{
    size_t m = lt_frame_push();
    lt_dtype dt = FLOATS[_i];
    lt_tensor *a = T(dt, SH(2, 1), 1, 2), *b = T(dt, SH(2, 2), 3, 4, 5, 6);
    lt_tensor *c = lt_cat(2, (lt_tensor *[]){a, b}, 1);
    EXPECT_SHAPE(c, 2, 3);
    EXPECT_VALUES(c, 0, 1, 3, 4, 2, 5, 6);
    EXPECT_VALUES(lt_cat(3, (lt_tensor *[]){b, a, b}, -1), 0, 3, 4, 1, 3, 4, 5, 6, 2, 5, 6);
    /* Integer tensors concatenate too. */
    lt_tensor *i = lt_cat(2, (lt_tensor *[]){T(LT_I64, SH(1), 1), T(LT_I64, SH(2), 2, 3)}, 0);
    ck_assert_int_eq(lt_dtype_of(i), LT_I64);
    EXPECT_VALUES(i, 0, 1, 2, 3);
    lt_frame_pop(m);
}
END_TEST

START_TEST(cat_rejects_mismatched_shapes_dtypes_and_dims)
{
    size_t m = lt_frame_push();
    lt_tensor *a = lt_zeros(2, SH(2, 3), LT_F32);
    EXPECT_ERROR(lt_cat(2, (lt_tensor *[]){a, lt_zeros(2, SH(2, 4), LT_F32)}, 0), "cat", "(2,3)", "(2,4)");
    EXPECT_ERROR(lt_cat(2, (lt_tensor *[]){a, lt_zeros(2, SH(2, 3), LT_F64)}, 0), "cat", "f64");
    EXPECT_ERROR(lt_cat(2, (lt_tensor *[]){a, lt_zeros(1, SH(3), LT_F32)}, 0), "cat");
    EXPECT_ERROR(lt_cat(2, (lt_tensor *[]){a, a}, 2), "cat");
    EXPECT_ERROR(lt_cat(0, (lt_tensor *[]){a}, 0), "cat");
    lt_frame_pop(m);
}
END_TEST

START_TEST(stack_joins_equal_shapes_along_a_new_dim)
{
    size_t m = lt_frame_push();
    lt_dtype dt = FLOATS[_i];
    lt_tensor *a = T(dt, SH(2), 1, 2), *b = T(dt, SH(2), 3, 4), *c = T(dt, SH(2), 5, 6);
    lt_tensor *s0 = lt_stack(3, (lt_tensor *[]){a, b, c}, 0);
    EXPECT_SHAPE(s0, 3, 2);
    EXPECT_VALUES(s0, 0, 1, 2, 3, 4, 5, 6);
    lt_tensor *s1 = lt_stack(3, (lt_tensor *[]){a, b, c}, 1);
    EXPECT_SHAPE(s1, 2, 3);
    EXPECT_VALUES(s1, 0, 1, 3, 5, 2, 4, 6);
    EXPECT_SAME_BITS(lt_stack(3, (lt_tensor *[]){a, b, c}, -1), s1);
    EXPECT_ERROR(lt_stack(2, (lt_tensor *[]){a, T(dt, SH(3), 1, 2, 3)}, 0), "stack", "(2)", "(3)");
    lt_frame_pop(m);
}
END_TEST

START_TEST(gather_matches_the_torch_documentation_example)
{
    size_t m = lt_frame_push();
    lt_dtype dt = FLOATS[_i];
    /* torch.gather(torch.tensor([[1, 2], [3, 4]]), 1, torch.tensor([[0, 0], [1, 0]]))
     * == [[1, 1], [4, 3]] */
    lt_tensor *t = T(dt, SH(2, 2), 1, 2, 3, 4);
    lt_tensor *g = lt_gather(t, 1, T(LT_I64, SH(2, 2), 0, 0, 1, 0));
    EXPECT_SHAPE(g, 2, 2);
    ck_assert_int_eq(lt_dtype_of(g), dt);
    EXPECT_VALUES(g, 0, 1, 1, 4, 3);
    /* dim 0: out[i][j] = t[index[i][j]][j]; the index may be smaller than t. */
    EXPECT_VALUES(lt_gather(t, 0, T(LT_I64, SH(1, 2), 1, 0)), 0, 3, 2);
    EXPECT_VALUES(lt_gather(t, -1, T(LT_I64, SH(2, 3), 1, 1, 0, 0, 1, 0)), 0, 2, 2, 1, 3, 4, 3);
    lt_frame_pop(m);
}
END_TEST

START_TEST(gather_rejects_out_of_range_and_non_i64_indices)
{
    size_t m = lt_frame_push();
    lt_tensor *t = lt_zeros(2, SH(2, 2), LT_F32);
    EXPECT_ERROR(lt_gather(t, 1, T(LT_I64, SH(2, 2), 0, 2, 0, 0)), "gather", "2");
    EXPECT_ERROR(lt_gather(t, 1, T(LT_I64, SH(2, 2), 0, -1, 0, 0)), "gather");
    EXPECT_ERROR(lt_gather(t, 1, T(LT_F32, SH(2, 2), 0, 0, 0, 0)), "gather", "i64");
    EXPECT_ERROR(lt_gather(t, 1, T(LT_I64, SH(2), 0, 0)), "gather");
    EXPECT_ERROR(lt_gather(t, 2, T(LT_I64, SH(2, 2), 0, 0, 0, 0)), "gather");
    lt_frame_pop(m);
}
END_TEST

START_TEST(scatter_add_inverts_gather_on_a_permutation_index)
{
    size_t m = lt_frame_push();
    lt_dtype dt = FLOATS[_i];
    lt_tensor *x = lt_reshape(lt_arange(0, 12, 1, dt), 2, SH(3, 4));
    /* Each column of idx is a permutation of 0..2. */
    lt_tensor *idx = T(LT_I64, SH(3, 4), 0, 2, 1, 2, 1, 0, 2, 1, 2, 1, 0, 0);
    lt_tensor *g = lt_gather(x, 0, idx);
    EXPECT_VALUES(g, 0, 0, 9, 6, 11, 4, 1, 10, 7, 8, 5, 2, 3);
    lt_tensor *back = lt_scatter_add(g, 0, idx, 2, SH(3, 4));
    EXPECT_SAME_BITS(back, x);
    /* Along dim 1: each row of idx1 is a permutation of 0..3. */
    lt_tensor *idx1 = T(LT_I64, SH(3, 4), 3, 2, 1, 0, 1, 3, 0, 2, 0, 1, 2, 3);
    EXPECT_SAME_BITS(lt_scatter_add(lt_gather(x, 1, idx1), 1, idx1, 2, SH(3, 4)), x);
    lt_frame_pop(m);
}
END_TEST

START_TEST(scatter_add_accumulates_repeated_indices)
{
    size_t m = lt_frame_push();
    lt_dtype dt = FLOATS[_i];
    lt_tensor *src = T(dt, SH(4), 1, 2, 3, 4);
    lt_tensor *s = lt_scatter_add(src, 0, T(LT_I64, SH(4), 0, 1, 0, 1), 1, SH(3));
    EXPECT_SHAPE(s, 3);
    EXPECT_VALUES(s, 0, 4, 6, 0);
    EXPECT_ERROR(lt_scatter_add(src, 0, T(LT_I64, SH(4), 0, 1, 0, 3), 1, SH(3)), "scatter_add");
    EXPECT_ERROR(lt_scatter_add(src, 0, T(LT_I64, SH(3), 0, 1, 0), 1, SH(3)), "scatter_add");
    lt_frame_pop(m);
}
END_TEST

START_TEST(index_select_picks_slices_in_index_order_with_repeats)
{
    size_t m = lt_frame_push();
    lt_dtype dt = FLOATS[_i];
    lt_tensor *t = T(dt, SH(3, 2), 1, 2, 3, 4, 5, 6);
    lt_tensor *r = lt_index_select(t, 0, T(LT_I64, SH(3), 2, 0, 2));
    EXPECT_SHAPE(r, 3, 2);
    ck_assert(!lt_shares_storage(r, t));
    EXPECT_VALUES(r, 0, 5, 6, 1, 2, 5, 6);
    EXPECT_VALUES(lt_index_select(t, 1, T(LT_I64, SH(1), 1)), 0, 2, 4, 6);
    EXPECT_VALUES(lt_index_select(lt_transpose(t, 0, 1), -1, T(LT_I64, SH(2), 1, 1)), 0, 3, 3, 4, 4);
    EXPECT_SHAPE(lt_index_select(t, 0, lt_zeros(1, SH(0), LT_I64)), 0, 2);
    EXPECT_ERROR(lt_index_select(t, 0, T(LT_I64, SH(1), 3)), "index_select");
    EXPECT_ERROR(lt_index_select(t, 0, T(LT_F64, SH(1), 0)), "index_select", "i64");
    EXPECT_ERROR(lt_index_select(t, 0, T(LT_I64, SH(1, 1), 0)), "index_select");
    lt_frame_pop(m);
}
END_TEST

START_TEST(index_add_sums_slices_into_the_indexed_positions)
{
    size_t m = lt_frame_push();
    lt_dtype dt = FLOATS[_i];
    lt_tensor *src = T(dt, SH(3, 2), 1, 2, 3, 4, 5, 6);
    lt_tensor *o = lt_index_add(src, 0, T(LT_I64, SH(3), 0, 2, 0), 3);
    EXPECT_SHAPE(o, 3, 2);
    EXPECT_VALUES(o, 0, 6, 8, 0, 0, 3, 4);
    lt_tensor *o1 = lt_index_add(src, 1, T(LT_I64, SH(2), 2, 2), 4);
    EXPECT_SHAPE(o1, 3, 4);
    EXPECT_VALUES(o1, 0, 0, 0, 3, 0, 0, 0, 7, 0, 0, 0, 11, 0);
    /* index_add is the adjoint of index_select: <sel(x), y> == <x, add(y)>. */
    lt_tensor *x = T(dt, SH(3, 2), 1, -2, 3, 0.5, -1, 2);
    lt_tensor *y = T(dt, SH(4, 2), 2, 1, 0, -1, 3, 3, 1, 1);
    lt_tensor *ix = T(LT_I64, SH(4), 2, 0, 2, 1);
    double lhs = lt_item(lt_sum(lt_mul(lt_index_select(x, 0, ix), y), 0, NULL, false));
    double rhs = lt_item(lt_sum(lt_mul(x, lt_index_add(y, 0, ix, 3)), 0, NULL, false));
    ck_assert_double_eq_tol(lhs, rhs, 1e-5);
    EXPECT_ERROR(lt_index_add(src, 0, T(LT_I64, SH(3), 0, 3, 0), 3), "index_add");
    EXPECT_ERROR(lt_index_add(src, 0, T(LT_I64, SH(2), 0, 1), 3), "index_add");
    lt_frame_pop(m);
}
END_TEST

START_TEST(one_hot_encodes_labels_along_a_new_last_dim)
{
    size_t m = lt_frame_push();
    for (int k = 0; k < 4; k++) {
        lt_tensor *o = lt_one_hot(T(LT_I64, SH(3), 2, 0, 1), 3, ALL_DTYPES[k]);
        EXPECT_SHAPE(o, 3, 3);
        ck_assert_int_eq(lt_dtype_of(o), ALL_DTYPES[k]);
        EXPECT_VALUES(o, 0, 0, 0, 1, 1, 0, 0, 0, 1, 0);
    }
    lt_tensor *o2 = lt_one_hot(T(LT_I64, SH(2, 2), 0, 1, 1, 0), 2, LT_F32);
    EXPECT_SHAPE(o2, 2, 2, 2);
    EXPECT_VALUES(o2, 0, 1, 0, 0, 1, 0, 1, 1, 0);
    EXPECT_ERROR(lt_one_hot(T(LT_I64, SH(2), 0, 3), 3, LT_F32), "one_hot", "3");
    EXPECT_ERROR(lt_one_hot(T(LT_I64, SH(2), 0, -1), 3, LT_F32), "one_hot");
    EXPECT_ERROR(lt_one_hot(T(LT_F32, SH(2), 0, 1), 3, LT_F32), "one_hot", "f32");
    EXPECT_ERROR(lt_one_hot(T(LT_I64, SH(2), 0, 1), 0, LT_F32), "one_hot");
    lt_frame_pop(m);
}
END_TEST

START_TEST(where_picks_from_a_or_b_with_broadcasting)
{
    size_t m = lt_frame_push();
    lt_dtype dt = FLOATS[_i];
    lt_tensor *a = T(dt, SH(2, 3), 1, 2, 3, 4, 5, 6);
    lt_tensor *w = lt_where(T(LT_U8, SH(3), 1, 0, 7), a, lt_scalar(-1, dt));
    EXPECT_SHAPE(w, 2, 3);
    ck_assert_int_eq(lt_dtype_of(w), dt);
    EXPECT_VALUES(w, 0, 1, -1, 3, 4, -1, 6);
    /* cond (2,1), a (3,), b (2,3) -> (2,3) */
    lt_tensor *w2 = lt_where(T(LT_U8, SH(2, 1), 1, 0), T(dt, SH(3), 10, 20, 30), a);
    EXPECT_SHAPE(w2, 2, 3);
    EXPECT_VALUES(w2, 0, 10, 20, 30, 4, 5, 6);
    /* cond alone may set the shape: (2,1,1) x (3,) x () -> (2,1,3) */
    lt_tensor *w3 = lt_where(T(LT_U8, SH(2, 1, 1), 0, 1), T(dt, SH(3), 1, 2, 3), lt_scalar(0, dt));
    EXPECT_SHAPE(w3, 2, 1, 3);
    EXPECT_VALUES(w3, 0, 0, 0, 0, 1, 2, 3);
    /* Any dtype, as long as a and b agree. */
    EXPECT_VALUES(lt_where(T(LT_U8, SH(2), 0, 1), T(LT_I64, SH(2), 5, 6), T(LT_I64, SH(2), 7, 8)), 0, 7, 6);
    lt_frame_pop(m);
}
END_TEST

START_TEST(where_rejects_a_non_u8_condition_mixed_dtypes_and_bad_shapes)
{
    size_t m = lt_frame_push();
    lt_tensor *a = lt_zeros(2, SH(2, 3), LT_F32);
    EXPECT_ERROR(lt_where(lt_zeros(1, SH(3), LT_F32), a, a), "where", "f32(3)");
    EXPECT_ERROR(lt_where(lt_zeros(1, SH(3), LT_U8), a, lt_zeros(2, SH(2, 3), LT_F64)), "where", "f64");
    EXPECT_ERROR(lt_where(lt_zeros(1, SH(4), LT_U8), a, a), "where", "(4)");
    EXPECT_ERROR(lt_where(lt_zeros(1, SH(3), LT_U8), a, lt_zeros(1, SH(2), LT_F32)), "where");
    lt_frame_pop(m);
}
END_TEST

START_TEST(masked_fill_writes_value_where_the_broadcast_mask_is_set)
{
    size_t m = lt_frame_push();
    lt_dtype dt = FLOATS[_i];
    lt_tensor *t = T(dt, SH(2, 3), 1, 2, 3, 4, 5, 6);
    lt_tensor *r = lt_masked_fill(t, T(LT_U8, SH(3), 0, 1, 0), 9);
    EXPECT_SHAPE(r, 2, 3);
    ck_assert(!lt_shares_storage(r, t));
    EXPECT_VALUES(r, 0, 1, 9, 3, 4, 9, 6);
    EXPECT_VALUES(t, 0, 1, 2, 3, 4, 5, 6);
    EXPECT_VALUES(lt_masked_fill(t, T(LT_U8, SH(2, 1), 1, 0), -INFINITY), 0, -INFINITY, -INFINITY, -INFINITY,
                  4, 5, 6);
    /* A mask that would enlarge t is refused. */
    EXPECT_ERROR(lt_masked_fill(T(dt, SH(3), 1, 2, 3), lt_zeros(2, SH(2, 3), LT_U8), 0), "masked_fill", "(3)");
    lt_frame_pop(m);
}
END_TEST

START_TEST(masked_fill_errors_name_masked_fill)
{
    size_t m = lt_frame_push();
    lt_tensor *t = lt_zeros(2, SH(2, 3), LT_F32);
    /* masked_fill checks its mask itself rather than letting lt_where's
     * message ("where: ...") through. */
    EXPECT_ERROR(lt_masked_fill(t, lt_zeros(1, SH(3), LT_F32), 1), "masked_fill");
    EXPECT_ERROR(lt_masked_fill(t, lt_zeros(1, SH(4), LT_U8), 1), "masked_fill", "(2,3)", "(4)");
    lt_frame_pop(m);
}
END_TEST


/* Element i of a contiguous i64 tensor, or a sentinel if t is NULL. */
static int64_t i64_at(const lt_tensor *t, int64_t i)
{
    return t ? ((const int64_t *)lt_data(t))[i] : INT64_MIN;
}

/* Appends name to list when got != want, for one assertion naming every failing op. */
static void note_mismatch(char *list, size_t n, const char *name, int64_t got, int64_t want)
{
    if (got != want)
        snprintf(list + strlen(list), n - strlen(list), " %s(got %lld, want %lld)", name, (long long)got,
                 (long long)want);
}

START_TEST(i64_values_beyond_2_pow_53_survive_gather_scatter_add_and_index_add)
{
    size_t m = lt_frame_push();
    /* Regression: these ops once moved elements through double, which
     * rounds i64 values above 2^53 (2^53 + 1 became 2^53). */
    const int64_t big = (1LL << 53) + 1;
    lt_tensor *x = lt_from_data((const int64_t[]){big, 5}, 1, SH(2), LT_I64);
    lt_tensor *i0 = lt_zeros(1, SH(1), LT_I64);
    char bad[512] = "";
    note_mismatch(bad, sizeof bad, "index_select", i64_at(lt_index_select(x, 0, i0), 0), big);
    note_mismatch(bad, sizeof bad, "cat", i64_at(lt_cat(2, (lt_tensor *[]){x, x}, 0), 2), big);
    note_mismatch(bad, sizeof bad, "gather", i64_at(lt_gather(x, 0, i0), 0), big);
    note_mismatch(bad, sizeof bad, "scatter_add",
                  i64_at(lt_scatter_add(lt_slice(x, 0, 0, 1, 1), 0, i0, 1, SH(1)), 0), big);
    note_mismatch(bad, sizeof bad, "index_add", i64_at(lt_index_add(lt_slice(x, 0, 0, 1, 1), 0, i0, 1), 0), big);
    ck_assert_msg(bad[0] == '\0', "i64 values rounded by:%s", bad);
    lt_frame_pop(m);
}
END_TEST

START_TEST(reductions_refuse_a_negative_dim_count)
{
    size_t m = lt_frame_push();
    lt_tensor *x = lt_zeros(2, SH(2, 3), LT_F32);
    /* Regression: a negative dim count was once read as "no dims". */
    EXPECT_ERROR(lt_sum(x, -1, DIMS(0), false), "sum");
    EXPECT_ERROR(lt_amax(x, -2, DIMS(0, 1), false), "amax");
    lt_frame_pop(m);
}
END_TEST

START_TEST(i64_reductions_are_exact_beyond_2_pow_53)
{
    size_t m = lt_frame_push();
    /* Regression: integer reductions once accumulated and compared in
     * double, wrong past 2^53 (2^53 + 1 rounded to 2^53). */
    const int64_t p53 = 1LL << 53;
    lt_tensor *x = lt_from_data((const int64_t[]){p53 + 1, p53 + 3}, 1, SH(2), LT_I64);
    lt_tensor *one = lt_slice(x, 0, 0, 1, 1);
    char bad[512] = "";
    note_mismatch(bad, sizeof bad, "sum", i64_at(lt_sum(one, 0, NULL, false), 0), p53 + 1);
    note_mismatch(bad, sizeof bad, "sum_to", i64_at(lt_sum_to(lt_reshape(one, 2, SH(1, 1)), 1, SH(1)), 0), p53 + 1);
    note_mismatch(bad, sizeof bad, "amax", i64_at(lt_amax(x, 0, NULL, false), 0), p53 + 3);
    note_mismatch(bad, sizeof bad, "amin", i64_at(lt_amin(x, 0, NULL, false), 0), p53 + 1);
    lt_tensor *y = lt_from_data((const int64_t[]){p53, p53 + 1}, 1, SH(2), LT_I64);
    note_mismatch(bad, sizeof bad, "argmax", i64_at(lt_argmax(y, 0, false), 0), 1);
    lt_tensor *z = lt_from_data((const int64_t[]){p53 + 1, p53}, 1, SH(2), LT_I64);
    note_mismatch(bad, sizeof bad, "argmin", i64_at(lt_argmin(z, 0, false), 0), 1);
    ck_assert_msg(bad[0] == '\0', "i64 results rounded by:%s", bad);
    lt_frame_pop(m);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Unary                                                               */
/* ------------------------------------------------------------------ */

START_TEST(neg_abs_sign_relu_on_hand_values)
{
    size_t m = lt_frame_push();
    lt_dtype dt = FLOATS[_i];
    lt_tensor *x = T(dt, SH(2, 2), -1.5, 0, 2, -3);
    lt_tensor *n = lt_neg(x);
    EXPECT_SHAPE(n, 2, 2);
    ck_assert_int_eq(lt_dtype_of(n), dt);
    EXPECT_VALUES(n, 0, 1.5, 0, -2, 3);
    EXPECT_VALUES(lt_abs(x), 0, 1.5, 0, 2, 3);
    EXPECT_VALUES(lt_sign(x), 0, -1, 0, 1, -1);
    EXPECT_VALUES(lt_relu(x), 0, 0, 0, 2, 0);
    lt_frame_pop(m);
}
END_TEST

START_TEST(exp_log_sqrt_rsqrt_on_hand_values)
{
    size_t m = lt_frame_push();
    lt_dtype dt = FLOATS[_i];
    EXPECT_VALUES(lt_exp(T(dt, SH(3), 0, 1, -1)), tol(dt), 1, M_E, 1 / M_E);
    EXPECT_VALUES(lt_log(T(dt, SH(4), 1, M_E, 0.5, 0)), tol(dt), 0, 1, -M_LN2, -INFINITY);
    EXPECT_VALUES(lt_sqrt(T(dt, SH(3), 0, 4, 2)), tol(dt), 0, 2, M_SQRT2);
    EXPECT_VALUES(lt_rsqrt(T(dt, SH(3), 4, 0.25, 2)), tol(dt), 0.5, 2, M_SQRT1_2);
    EXPECT_VALUES(lt_sqrt(T(dt, SH(1), -1)), 0, NAN);
    lt_frame_pop(m);
}
END_TEST

START_TEST(sigmoid_tanh_erf_on_hand_values)
{
    size_t m = lt_frame_push();
    lt_dtype dt = FLOATS[_i];
    /* sigmoid(ln 3) = 3/4; far tails saturate without NaN. */
    EXPECT_VALUES(lt_sigmoid(T(dt, SH(5), 0, log(3.0), -log(3.0), 100, -100)), tol(dt), 0.5, 0.75, 0.25, 1, 0);
    EXPECT_VALUES(lt_sigmoid(T(dt, SH(1), 1)), tol(dt), 0.7310585786300049);
    EXPECT_VALUES(lt_tanh(T(dt, SH(4), 0, 1, -1, 50)), tol(dt), 0, 0.7615941559557649, -0.7615941559557649, 1);
    EXPECT_VALUES(lt_erf(T(dt, SH(4), 0, 1, -0.5, 10)), tol(dt), 0, 0.8427007929497149, -0.5204998778130465, 1);
    lt_frame_pop(m);
}
END_TEST

/* Distance in units in the last place between a float and a double
 * reference (the reference rounded to float counts as 0 ulp). */
static double ulps_f32(float got, double want)
{
    float w = (float)want;
    if (got == w)
        return 0;
    float next = nextafterf(w, got > w ? INFINITY : -INFINITY);
    double ulp = fabs((double)next - (double)w);
    return fabs((double)got - want) / (ulp > 0 ? ulp : 1e-45);
}

/* The f32 exp and erf kernels are polynomial, not libm: check them on a
 * dense grid (every 2^-12 over their whole working range) against the f64
 * libm functions, the tails and the special values. */
START_TEST(f32_exp_and_erf_stay_within_2_ulp_of_libm_on_a_dense_grid)
{
    size_t m = lt_frame_push();
    const int64_t n = 2 * 110 * 4096 + 1;
    float *v = malloc(sizeof(float) * (size_t)n);
    ck_assert_ptr_nonnull(v);
    for (int64_t i = 0; i < n; i++)
        v[i] = -110.0f + (float)i / 4096.0f;
    lt_tensor *x = lt_from_data(v, 1, SH(n), LT_F32);
    const float *e = lt_data(lt_exp(x)), *f = lt_data(lt_erf(x));
    const float *sg = lt_data(lt_sigmoid(x)), *ge = lt_data(lt_gelu(x, false));
    double worst_e = 0, worst_f = 0, worst_s = 0, worst_g = 0;
    for (int64_t i = 0; i < n; i++) {
        double xd = v[i];
        double want = exp(xd);
        if (want >= FLT_MIN && want <= FLT_MAX)
            worst_e = fmax(worst_e, ulps_f32(e[i], want));
        else if (want > FLT_MAX)
            ck_assert(isinf(e[i]) && e[i] > 0);
        else
            ck_assert(e[i] >= 0 && e[i] < 2 * FLT_MIN);
        worst_f = fmax(worst_f, fabs(xd) < 1e-30 ? 0 : ulps_f32(f[i], erf(xd)));
        if (xd > -80)
            worst_s = fmax(worst_s, ulps_f32(sg[i], 1 / (1 + exp(-xd))));
        double gw = 0.5 * xd * (1 + erf(xd * M_SQRT1_2));
        if (fabs(gw) > 1e-30)
            worst_g = fmax(worst_g, fabs(ge[i] - gw) / fmax(fabs(gw), 1.0) / FLT_EPSILON);
    }
ck_assert_msg(worst_e <= 2, "exp: %.2f ulp", worst_e);
    ck_assert_msg(worst_f <= 2, "erf: %.2f ulp", worst_f);
    ck_assert_msg(worst_s <= 4, "sigmoid: %.2f ulp", worst_s);
    ck_assert_msg(worst_g <= 4, "gelu: %.2f eps relative to max(|gelu|, 1)", worst_g);
    float sp[] = {NAN, INFINITY, -INFINITY, 0.0f, -0.0f, 88.7f, 89.0f, -104.0f};
    lt_tensor *s = lt_from_data(sp, 1, SH(8), LT_F32);
    const float *es = lt_data(lt_exp(s)), *fs = lt_data(lt_erf(s));
    ck_assert(isnan(es[0]) && isnan(fs[0]));
    ck_assert(isinf(es[1]) && es[2] == 0 && es[3] == 1 && es[4] == 1);
    ck_assert(fs[1] == 1 && fs[2] == -1 && fs[3] == 0 && signbit(fs[4]));
    ck_assert(isfinite(es[5]) && isinf(es[6]) && es[7] == 0);
    free(v);
    lt_frame_pop(m);
}
END_TEST

START_TEST(gelu_matches_the_erf_and_tanh_formulas)
{
    size_t m = lt_frame_push();
    lt_dtype dt = FLOATS[_i];
    lt_tensor *x = T(dt, SH(4), 1, 0, -1, 2);
    /* 0.5 x (1 + erf(x / sqrt 2)) */
    EXPECT_VALUES(lt_gelu(x, false), tol(dt), 0.8413447460685429, 0, -0.15865525393145707, 1.9544997361036416);
    /* 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) */
    EXPECT_VALUES(lt_gelu(x, true), tol(dt), 0.8411919906082768, 0, -0.15880800939172324, 1.954597694087775);
    lt_frame_pop(m);
}
END_TEST

START_TEST(pow_scalar_clamp_mul_scalar_add_scalar_on_hand_values)
{
    size_t m = lt_frame_push();
    lt_dtype dt = FLOATS[_i];
    lt_tensor *x = T(dt, SH(3), 2, 3, 4);
    EXPECT_VALUES(lt_pow_scalar(x, 2), tol(dt), 4, 9, 16);
    EXPECT_VALUES(lt_pow_scalar(x, 0.5), tol(dt), M_SQRT2, sqrt(3.0), 2);
    EXPECT_VALUES(lt_pow_scalar(x, -1), tol(dt), 0.5, 1.0 / 3, 0.25);
    EXPECT_VALUES(lt_pow_scalar(T(dt, SH(2), 0, -2), 0), 0, 1, 1);
    EXPECT_VALUES(lt_pow_scalar(T(dt, SH(1), -2), 3), 0, -8);
    /* exponents 2 and 1 are x * x and x, bit for bit (as torch.pow), on
     * strided input too */
    lt_rng r = lt_rng_new(31);
    lt_tensor *z = lt_rand_normal(&r, 2, SH(37, 29), 0, 3, dt), *zt = lt_transpose(z, 0, 1);
    for (int k = 0; k < 2; k++) {
        lt_tensor *v = k ? zt : z, *sq = lt_pow_scalar(v, 2), *id = lt_pow_scalar(v, 1);
        lt_tensor *ref = lt_contiguous(lt_mul(v, v)), *vc = lt_contiguous(v);
        ck_assert(sq && id && ref && vc);
        size_t bytes = (size_t)lt_numel(v) * lt_dtype_size(dt);
        ck_assert_int_eq(memcmp(lt_data(lt_contiguous(sq)), lt_data(ref), bytes), 0);
        ck_assert_int_eq(memcmp(lt_data(lt_contiguous(id)), lt_data(vc), bytes), 0);
    }
    lt_tensor *y = T(dt, SH(4), -2, 0.5, 3, 1);
    EXPECT_VALUES(lt_clamp(y, 0, 1), 0, 0, 0.5, 1, 1);
    EXPECT_VALUES(lt_clamp(y, -INFINITY, 0.75), 0, -2, 0.5, 0.75, 0.75);
    EXPECT_VALUES(lt_clamp(y, 0.75, INFINITY), 0, 0.75, 0.75, 3, 1);
    EXPECT_VALUES(lt_clamp(y, 1, 1), 0, 1, 1, 1, 1);
    EXPECT_ERROR(lt_clamp(y, 1, 0), "clamp");
    EXPECT_VALUES(lt_mul_scalar(y, -2), tol(dt), 4, -1, -6, -2);
    EXPECT_VALUES(lt_add_scalar(y, 0.25), tol(dt), -1.75, 0.75, 3.25, 1.25);
    ck_assert_int_eq(lt_dtype_of(lt_mul_scalar(y, 1e300)), dt);
    ck_assert_int_eq(lt_dtype_of(lt_add_scalar(y, 1)), dt);
    lt_frame_pop(m);
}
END_TEST

START_TEST(unary_ops_keep_shape_including_scalars_and_empty_tensors)
{
    size_t m = lt_frame_push();
    lt_dtype dt = FLOATS[_i];
    lt_tensor *s = lt_exp(lt_scalar(0, dt));
    ck_assert_int_eq(lt_ndim(s), 0);
    ck_assert(lt_item(s) == 1);
    EXPECT_SHAPE(lt_tanh(lt_zeros(3, SH(2, 0, 3), dt)), 2, 0, 3);
    lt_frame_pop(m);
}
END_TEST

START_TEST(unary_ops_refuse_integer_tensors_naming_op_and_dtype)
{
    size_t m = lt_frame_push();
    lt_tensor *i = lt_zeros(1, SH(3), LT_I64), *u = lt_zeros(2, SH(2, 2), LT_U8);
    EXPECT_ERROR(lt_exp(i), "exp", "i64", "(3)");
    EXPECT_ERROR(lt_neg(u), "neg", "u8", "(2,2)");
    EXPECT_ERROR(lt_log(i), "log", "i64");
    EXPECT_ERROR(lt_gelu(i, false), "gelu", "i64");
    EXPECT_ERROR(lt_gelu(i, true), "gelu", "i64");
    EXPECT_ERROR(lt_pow_scalar(u, 2), "pow_scalar", "u8");
    EXPECT_ERROR(lt_mul_scalar(i, 2), "mul_scalar", "i64");
    EXPECT_ERROR(lt_clamp(i, 0, 1), "clamp", "i64");
    lt_frame_pop(m);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Binary and comparisons                                              */
/* ------------------------------------------------------------------ */

START_TEST(add_sub_mul_div_pow_on_same_shapes)
{
    size_t m = lt_frame_push();
    lt_dtype dt = FLOATS[_i];
    lt_tensor *a = T(dt, SH(2, 2), 1, -3, 2, 9), *b = T(dt, SH(2, 2), 2, 4, 0.5, 0);
    lt_tensor *s = lt_add(a, b);
    EXPECT_SHAPE(s, 2, 2);
    ck_assert_int_eq(lt_dtype_of(s), dt);
    EXPECT_VALUES(s, 0, 3, 1, 2.5, 9);
    EXPECT_VALUES(lt_sub(a, b), 0, -1, -7, 1.5, 9);
    EXPECT_VALUES(lt_mul(a, b), 0, 2, -12, 1, 0);
    EXPECT_VALUES(lt_div(a, b), 0, 0.5, -0.75, 4, INFINITY);
    EXPECT_VALUES(lt_pow(T(dt, SH(3), 2, 9, 4), T(dt, SH(3), 3, 0.5, -1)), tol(dt), 8, 3, 0.25);
    lt_frame_pop(m);
}
END_TEST

START_TEST(maximum_minimum_pick_elementwise_and_propagate_nan)
{
    size_t m = lt_frame_push();
    lt_dtype dt = FLOATS[_i];
    lt_tensor *a = T(dt, SH(4), 1, 5, NAN, -2), *b = T(dt, SH(4), 3, 2, 0, NAN);
    EXPECT_VALUES(lt_maximum(a, b), 0, 3, 5, NAN, NAN);
    EXPECT_VALUES(lt_minimum(a, b), 0, 1, 2, NAN, NAN);
    EXPECT_VALUES(lt_maximum(T(dt, SH(2, 1), 0, 10), T(dt, SH(3), -1, 5, 20)), 0, 0, 5, 20, 10, 10, 20);
    lt_frame_pop(m);
}
END_TEST

START_TEST(add_broadcasts_row_vector_over_matrix)
{
    size_t m = lt_frame_push();
    lt_dtype dt = FLOATS[_i];
    lt_tensor *a = T(dt, SH(2, 3), 1, 2, 3, 4, 5, 6), *r = T(dt, SH(3), 10, 20, 30);
    lt_tensor *s = lt_add(a, r);
    EXPECT_SHAPE(s, 2, 3);
    EXPECT_VALUES(s, 0, 11, 22, 33, 14, 25, 36);
    EXPECT_VALUES(lt_sub(r, a), 0, 9, 18, 27, 6, 15, 24);
    lt_frame_pop(m);
}
END_TEST

START_TEST(add_broadcasts_column_against_row_to_a_matrix)
{
    size_t m = lt_frame_push();
    lt_dtype dt = FLOATS[_i];
    lt_tensor *s = lt_add(T(dt, SH(2, 1), 1, 2), T(dt, SH(1, 3), 10, 20, 30));
    EXPECT_SHAPE(s, 2, 3);
    EXPECT_VALUES(s, 0, 11, 21, 31, 12, 22, 32);
    lt_tensor *p = lt_mul(T(dt, SH(3, 1), 1, 2, 3), T(dt, SH(3), 1, 10, 100));
    EXPECT_VALUES(p, 0, 1, 10, 100, 2, 20, 200, 3, 30, 300);
    lt_frame_pop(m);
}
END_TEST

START_TEST(add_broadcasts_rank_3_against_rank_2)
{
    size_t m = lt_frame_push();
    lt_dtype dt = FLOATS[_i];
    lt_tensor *a = lt_reshape(lt_arange(0, 12, 1, dt), 3, SH(4, 1, 3)); /* a[i,0,k] = 3i+k */
    lt_tensor *b = T(dt, SH(2, 1), 100, 200);                           /* b[j,0] = 100(j+1) */
    lt_tensor *s = lt_add(a, b);
    EXPECT_SHAPE(s, 4, 2, 3);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 2; j++)
            for (int k = 0; k < 3; k++)
                ck_assert(lt_item_at(s, (i * 2 + j) * 3 + k) == 3 * i + k + 100 * (j + 1));
    EXPECT_SAME_BITS(lt_add(b, a), s);
    lt_frame_pop(m);
}
END_TEST

START_TEST(add_broadcasts_scalars_and_size_one_dims)
{
    size_t m = lt_frame_push();
    lt_dtype dt = FLOATS[_i];
    lt_tensor *a = T(dt, SH(2, 3), 1, 2, 3, 4, 5, 6);
    EXPECT_VALUES(lt_add(a, lt_scalar(10, dt)), 0, 11, 12, 13, 14, 15, 16);
    EXPECT_VALUES(lt_mul(lt_scalar(2, dt), a), 0, 2, 4, 6, 8, 10, 12);
    EXPECT_VALUES(lt_add(a, T(dt, SH(1, 1), 1)), 0, 2, 3, 4, 5, 6, 7);
    lt_tensor *s = lt_add(lt_scalar(1, dt), lt_scalar(2, dt));
    ck_assert_int_eq(lt_ndim(s), 0);
    ck_assert(lt_item(s) == 3);
    EXPECT_SHAPE(lt_add(T(dt, SH(1), 5), T(dt, SH(1, 1, 1), 1)), 1, 1, 1);
    lt_frame_pop(m);
}
END_TEST

START_TEST(add_with_a_zero_sized_dim_gives_an_empty_result)
{
    size_t m = lt_frame_push();
    lt_dtype dt = FLOATS[_i];
    lt_tensor *e = lt_zeros(2, SH(0, 3), dt);
    lt_tensor *s = lt_add(e, T(dt, SH(3), 1, 2, 3));
    EXPECT_SHAPE(s, 0, 3);
    ck_assert_int_eq(lt_numel(s), 0);
    EXPECT_SHAPE(lt_mul(e, T(dt, SH(1, 3), 1, 2, 3)), 0, 3);
    EXPECT_SHAPE(lt_add(lt_zeros(3, SH(2, 0, 1), dt), lt_zeros(1, SH(4), dt)), 2, 0, 4);
    EXPECT_SHAPE(lt_add(e, lt_scalar(1, dt)), 0, 3);
    /* 0 does not broadcast against 2. */
    EXPECT_ERROR(lt_add(e, lt_zeros(2, SH(2, 3), dt)), "add", "(0,3)", "(2,3)");
    lt_frame_pop(m);
}
END_TEST

START_TEST(add_of_shapes_that_do_not_broadcast_names_op_and_both_shapes)
{
    size_t m = lt_frame_push();
    lt_tensor *a = lt_zeros(2, SH(2, 3), LT_F32), *b = lt_zeros(2, SH(4, 3), LT_F32);
    EXPECT_ERROR(lt_add(a, b), "add", "(2,3)", "(4,3)");
    EXPECT_ERROR(lt_sub(a, b), "sub", "(2,3)", "(4,3)");
    EXPECT_ERROR(lt_mul(a, lt_zeros(1, SH(2), LT_F32)), "mul", "(2,3)", "(2)");
    EXPECT_ERROR(lt_div(a, b), "div");
    EXPECT_ERROR(lt_pow(a, b), "pow");
    EXPECT_ERROR(lt_maximum(a, b), "maximum");
    EXPECT_ERROR(lt_minimum(a, b), "minimum");
    int64_t out[LT_MAX_DIMS];
    lt_clear_error();
    ck_assert_int_eq(lt_broadcast_shape("myop", 2, SH(2, 3), 2, SH(4, 3), out), -1);
    ck_assert_ptr_nonnull(strstr(lt_last_error(), "myop"));
    ck_assert_int_eq(lt_broadcast_shape("myop", 3, SH(4, 1, 3), 2, SH(2, 1), out), 3);
    ck_assert(out[0] == 4 && out[1] == 2 && out[2] == 3);
    lt_frame_pop(m);
}
END_TEST

START_TEST(mixed_f32_and_f64_promote_to_f64)
{
    size_t m = lt_frame_push();
    lt_tensor *a = T(LT_F32, SH(2), 0.1, 1.5), *b = T(LT_F64, SH(2), 0.2, 0.25);
    lt_tensor *s = lt_add(a, b), *s2 = lt_add(b, a);
    ck_assert_int_eq(lt_dtype_of(s), LT_F64);
    ck_assert_int_eq(lt_dtype_of(s2), LT_F64);
    /* Computed in double from the float value, not rounded to float. */
    ck_assert(((double *)lt_data(s))[0] == (double)0.1f + 0.2);
    ck_assert(((double *)lt_data(s))[1] == 1.75);
    EXPECT_SAME_BITS(s, s2);
    ck_assert_int_eq(lt_dtype_of(lt_mul(a, lt_scalar(2, LT_F64))), LT_F64);
    /* Integers promote to the floating operand's dtype. */
    lt_tensor *i = lt_add(T(LT_I64, SH(2), 1, 2), T(LT_F32, SH(2), 0.5, 0.5));
    ck_assert_int_eq(lt_dtype_of(i), LT_F32);
    EXPECT_VALUES(i, 0, 1.5, 2.5);
    lt_tensor *u = lt_mul(T(LT_U8, SH(2), 200, 3), T(LT_F64, SH(1), 2));
    ck_assert_int_eq(lt_dtype_of(u), LT_F64);
    EXPECT_VALUES(u, 0, 400, 6);
    lt_frame_pop(m);
}
END_TEST

START_TEST(integer_arithmetic_is_refused_with_a_message)
{
    size_t m = lt_frame_push();
    lt_tensor *i = T(LT_I64, SH(2), 1, 2), *u = T(LT_U8, SH(2), 1, 2);
    EXPECT_ERROR(lt_add(i, i), "add", "i64");
    EXPECT_ERROR(lt_mul(u, u), "mul", "u8");
    EXPECT_ERROR(lt_sub(i, u), "sub", "i64", "u8");
    lt_frame_pop(m);
}
END_TEST

START_TEST(comparisons_return_u8_ones_and_zeros)
{
    size_t m = lt_frame_push();
    lt_dtype dt = FLOATS[_i];
    lt_tensor *a = T(dt, SH(3), 1, 2, 3), *b = T(dt, SH(3), 2, 2, 2);
    lt_tensor *e = lt_eq(a, b);
    ck_assert_int_eq(lt_dtype_of(e), LT_U8);
    EXPECT_SHAPE(e, 3);
    EXPECT_VALUES(e, 0, 0, 1, 0);
    EXPECT_VALUES(lt_ne(a, b), 0, 1, 0, 1);
    EXPECT_VALUES(lt_lt(a, b), 0, 1, 0, 0);
    EXPECT_VALUES(lt_le(a, b), 0, 1, 1, 0);
    EXPECT_VALUES(lt_gt(a, b), 0, 0, 0, 1);
    EXPECT_VALUES(lt_ge(a, b), 0, 0, 1, 1);
    ck_assert_int_eq(lt_dtype_of(lt_ge(a, b)), LT_U8);
    /* NaN compares unequal to everything, itself included. */
    lt_tensor *n = T(dt, SH(1), NAN);
    EXPECT_VALUES(lt_eq(n, n), 0, 0);
    EXPECT_VALUES(lt_ne(n, n), 0, 1);
    lt_frame_pop(m);
}
END_TEST

START_TEST(comparisons_broadcast_and_accept_every_dtype)
{
    size_t m = lt_frame_push();
    lt_tensor *c = lt_lt(T(LT_F64, SH(3, 1), 1, 2, 3), T(LT_F64, SH(3), 1, 2, 3));
    EXPECT_SHAPE(c, 3, 3);
    EXPECT_VALUES(c, 0, 0, 1, 1, 0, 0, 1, 0, 0, 0);
    EXPECT_VALUES(lt_eq(T(LT_I64, SH(3), 1, 2, 3), T(LT_I64, SH(1), 2)), 0, 0, 1, 0);
    EXPECT_VALUES(lt_gt(T(LT_U8, SH(3), 0, 200, 255), T(LT_U8, SH(3), 1, 100, 255)), 0, 0, 1, 0);
    /* Mixed dtypes compare in the wider one. */
    EXPECT_VALUES(lt_lt(T(LT_I64, SH(3), 1, 2, 3), T(LT_F32, SH(3), 1.5, 2, 2.5)), 0, 1, 0, 0);
    EXPECT_VALUES(lt_eq(T(LT_U8, SH(2), 7, 8), T(LT_I64, SH(2), 7, 264)), 0, 1, 0);
    EXPECT_ERROR(lt_eq(T(LT_F32, SH(2), 1, 2), T(LT_F32, SH(3), 1, 2, 3)), "eq", "(2)", "(3)");
    EXPECT_ERROR(lt_ge(T(LT_F32, SH(2), 1, 2), T(LT_F32, SH(3), 1, 2, 3)), "ge");
    lt_frame_pop(m);
}
END_TEST

START_TEST(cmp_scalar_supports_all_six_operators)
{
    size_t m = lt_frame_push();
    for (int k = 0; k < 3; k++) {
        lt_dtype dt = k < 2 ? FLOATS[k] : LT_I64;
        lt_tensor *a = T(dt, SH(3), 1, 2, 3);
        lt_tensor *e = lt_cmp_scalar(a, "==", 2);
        ck_assert_int_eq(lt_dtype_of(e), LT_U8);
        EXPECT_SHAPE(e, 3);
        EXPECT_VALUES(e, 0, 0, 1, 0);
        EXPECT_VALUES(lt_cmp_scalar(a, "!=", 2), 0, 1, 0, 1);
        EXPECT_VALUES(lt_cmp_scalar(a, "<", 2), 0, 1, 0, 0);
        EXPECT_VALUES(lt_cmp_scalar(a, "<=", 2), 0, 1, 1, 0);
        EXPECT_VALUES(lt_cmp_scalar(a, ">", 2), 0, 0, 0, 1);
        EXPECT_VALUES(lt_cmp_scalar(a, ">=", 2), 0, 0, 1, 1);
        EXPECT_VALUES(lt_cmp_scalar(a, ">", 1.5), 0, 0, 1, 1);
    }
    EXPECT_VALUES(lt_cmp_scalar(T(LT_U8, SH(2), 0, 5), ">", -1), 0, 1, 1);
    EXPECT_ERROR(lt_cmp_scalar(T(LT_F32, SH(1), 1), "=>", 0), "cmp_scalar", "=>");
    EXPECT_ERROR(lt_cmp_scalar(T(LT_F32, SH(1), 1), NULL, 0), "cmp_scalar");
    lt_frame_pop(m);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Reductions                                                          */
/* ------------------------------------------------------------------ */

/* x[i,j,k] = 12i + 4j + k, shape (2,3,4). */
static lt_tensor *block234(lt_dtype dt) { return lt_reshape(lt_arange(0, 24, 1, dt), 3, SH(2, 3, 4)); }

START_TEST(sum_over_any_set_of_dims_with_and_without_keepdim)
{
    size_t m = lt_frame_push();
    lt_dtype dt = FLOATS[_i];
    lt_tensor *x = block234(dt);
    /* over j: 36i + 12 + 3k */
    lt_tensor *s1 = lt_sum(x, 1, DIMS(1), false);
    EXPECT_SHAPE(s1, 2, 4);
    ck_assert_int_eq(lt_dtype_of(s1), dt);
    EXPECT_VALUES(s1, 0, 12, 15, 18, 21, 48, 51, 54, 57);
    EXPECT_SHAPE(lt_sum(x, 1, DIMS(1), true), 2, 1, 4);
    /* over i and k: 60 + 32j */
    lt_tensor *s02 = lt_sum(x, 2, DIMS(0, 2), false);
    EXPECT_SHAPE(s02, 3);
    EXPECT_VALUES(s02, 0, 60, 92, 124);
    lt_tensor *s02k = lt_sum(x, 2, DIMS(2, 0), true);
    EXPECT_SHAPE(s02k, 1, 3, 1);
    EXPECT_VALUES(s02k, 0, 60, 92, 124);
    /* over i: 12 + 8j + 2k; negative dims count from the end */
    EXPECT_VALUES(lt_sum(x, 1, DIMS(-3), false), 0, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32, 34);
    /* over k: 48i + 16j + 6 */
    EXPECT_VALUES(lt_sum(x, 1, DIMS(-1), false), 0, 6, 22, 38, 54, 70, 86);
    EXPECT_VALUES(lt_sum(x, 3, DIMS(0, 1, 2), false), 0, 276);
    lt_frame_pop(m);
}
END_TEST

START_TEST(reductions_over_all_dims_when_ndims_is_zero)
{
    size_t m = lt_frame_push();
    lt_dtype dt = FLOATS[_i];
    lt_tensor *x = block234(dt);
    lt_tensor *s = lt_sum(x, 0, NULL, false);
    ck_assert_int_eq(lt_ndim(s), 0);
    ck_assert(lt_item(s) == 276);
    EXPECT_SHAPE(lt_sum(x, 0, NULL, true), 1, 1, 1);
    ck_assert_double_eq_tol(lt_item(lt_mean(x, 0, NULL, false)), 11.5, 1e-6);
    /* var of 0..23: (24^2 - 1) / 12 = 47.9166.., unbiased 24/23 of that = 50 */
    ck_assert_double_eq_tol(lt_item(lt_var(x, 0, NULL, false, false)), 575.0 / 12, 1e-4);
    ck_assert_double_eq_tol(lt_item(lt_var(x, 0, NULL, true, false)), 50, 1e-4);
    ck_assert(lt_item(lt_amax(x, 0, NULL, false)) == 23);
    ck_assert(lt_item(lt_amin(x, 0, NULL, false)) == 0);
    /* A 0-dim tensor reduces to itself. */
    lt_tensor *z = lt_sum(lt_scalar(4, dt), 0, NULL, false);
    ck_assert_int_eq(lt_ndim(z), 0);
    ck_assert(lt_item(z) == 4);
    lt_frame_pop(m);
}
END_TEST

START_TEST(mean_divides_by_the_number_of_reduced_elements)
{
    size_t m = lt_frame_push();
    lt_dtype dt = FLOATS[_i];
    lt_tensor *x = block234(dt);
    lt_tensor *mn = lt_mean(x, 2, DIMS(0, 2), false);
    ck_assert_int_eq(lt_dtype_of(mn), dt);
    EXPECT_VALUES(mn, tol(dt), 7.5, 11.5, 15.5);
    EXPECT_VALUES(lt_mean(x, 1, DIMS(1), true), tol(dt), 4, 5, 6, 7, 16, 17, 18, 19);
    EXPECT_SHAPE(lt_mean(x, 1, DIMS(1), true), 2, 1, 4);
    lt_frame_pop(m);
}
END_TEST

START_TEST(var_is_biased_or_unbiased_on_request)
{
    size_t m = lt_frame_push();
    lt_dtype dt = FLOATS[_i];
    lt_tensor *v = T(dt, SH(4), 1, 2, 3, 4);
    ck_assert_double_eq_tol(lt_item(lt_var(v, 1, DIMS(0), false, false)), 1.25, 1e-6);
    ck_assert_double_eq_tol(lt_item(lt_var(v, 1, DIMS(0), true, false)), 5.0 / 3, 1e-6);
    lt_tensor *x = block234(dt);
    /* over j the values are c + {0, 4, 8}: biased 32/3, unbiased 16 */
    lt_tensor *vj = lt_var(x, 1, DIMS(1), true, false);
    EXPECT_SHAPE(vj, 2, 4);
    EXPECT_VALUES(vj, tol(dt), 16, 16, 16, 16, 16, 16, 16, 16);
    EXPECT_VALUES(lt_var(x, 1, DIMS(1), false, true), tol(dt), 32.0 / 3, 32.0 / 3, 32.0 / 3, 32.0 / 3, 32.0 / 3,
                  32.0 / 3, 32.0 / 3, 32.0 / 3);
    /* over i, k: {0..3, 12..15} + 4j; squared deviations sum to 298 */
    EXPECT_VALUES(lt_var(x, 2, DIMS(0, 2), false, false), tol(dt), 37.25, 37.25, 37.25);
    EXPECT_VALUES(lt_var(x, 2, DIMS(0, 2), true, false), tol(dt), 298.0 / 7, 298.0 / 7, 298.0 / 7);
    /* Large offset: the two-pass formula keeps precision. */
    lt_tensor *big = T(LT_F64, SH(3), 1e9 + 1, 1e9 + 2, 1e9 + 3);
    ck_assert_double_eq_tol(lt_item(lt_var(big, 0, NULL, true, false)), 1.0, 1e-9);
    lt_frame_pop(m);
}
END_TEST

START_TEST(logsumexp_is_exact_on_hand_values_and_does_not_overflow)
{
    size_t m = lt_frame_push();
    lt_dtype dt = FLOATS[_i];
    lt_tensor *x = T(dt, SH(3, 2), 0, log(3.0), 1000, 1000, -1000, -1000);
    lt_tensor *l = lt_logsumexp(x, 1, DIMS(1), false);
    EXPECT_SHAPE(l, 3);
    EXPECT_VALUES(l, tol(dt), log(4.0), 1000 + M_LN2, -1000 + M_LN2);
    EXPECT_SHAPE(lt_logsumexp(x, 1, DIMS(-1), true), 3, 1);
    /* over everything: log(1 + 3 + 2e1000 + 2e-1000) = 1000 + ln 2 */
    ck_assert_double_eq_tol(lt_item(lt_logsumexp(x, 0, NULL, false)), 1000 + M_LN2, 1e-3);
    /* a -inf entry contributes nothing; all -inf gives -inf */
    lt_tensor *ninf = T(dt, SH(2, 2), -INFINITY, 0, -INFINITY, -INFINITY);
    EXPECT_VALUES(lt_logsumexp(ninf, 1, DIMS(1), false), 0, 0, -INFINITY);
    lt_frame_pop(m);
}
END_TEST

START_TEST(amax_and_amin_over_any_set_of_dims)
{
    size_t m = lt_frame_push();
    lt_dtype dt = FLOATS[_i];
    lt_tensor *x = block234(dt);
    lt_tensor *mx = lt_amax(x, 2, DIMS(1, 2), false);
    EXPECT_SHAPE(mx, 2);
    EXPECT_VALUES(mx, 0, 11, 23);
    lt_tensor *mn = lt_amin(x, 1, DIMS(0), true);
    EXPECT_SHAPE(mn, 1, 3, 4);
    EXPECT_VALUES(mn, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11);
    lt_tensor *y = T(dt, SH(2, 3), -1, 7, 3, 2, -8, 5);
    EXPECT_VALUES(lt_amax(y, 1, DIMS(0), false), 0, 2, 7, 5);
    EXPECT_VALUES(lt_amin(y, 1, DIMS(1), false), 0, -1, -8);
    EXPECT_VALUES(lt_amax(T(dt, SH(3), 1, NAN, 2), 0, NULL, false), 0, NAN);
    lt_frame_pop(m);
}
END_TEST

START_TEST(integer_sum_gives_i64_and_integer_extrema_keep_dtype)
{
    size_t m = lt_frame_push();
    lt_tensor *u = T(LT_U8, SH(3), 200, 100, 50);
    lt_tensor *s = lt_sum(u, 0, NULL, false);
    ck_assert_int_eq(lt_dtype_of(s), LT_I64);
    ck_assert(((int64_t *)lt_data(s))[0] == 350);
    lt_tensor *i = T(LT_I64, SH(2, 2), -5, 3, 10, 4);
    EXPECT_VALUES(lt_sum(i, 1, DIMS(1), false), 0, -2, 14);
    lt_tensor *mx = lt_amax(u, 0, NULL, false);
    ck_assert_int_eq(lt_dtype_of(mx), LT_U8);
    ck_assert(lt_item(mx) == 200);
    ck_assert_int_eq(lt_dtype_of(lt_amin(i, 0, NULL, false)), LT_I64);
    ck_assert(lt_item(lt_amin(i, 0, NULL, false)) == -5);
    EXPECT_ERROR(lt_mean(i, 0, NULL, false), "mean", "i64");
    EXPECT_ERROR(lt_var(u, 0, NULL, true, false), "var", "u8");
    EXPECT_ERROR(lt_logsumexp(i, 0, NULL, false), "logsumexp", "i64");
    lt_frame_pop(m);
}
END_TEST

START_TEST(reductions_over_empty_dims_give_the_identity_or_an_error)
{
    size_t m = lt_frame_push();
    lt_dtype dt = FLOATS[_i];
    lt_tensor *e = lt_zeros(2, SH(0, 3), dt);
    lt_tensor *s = lt_sum(e, 1, DIMS(0), false);
    EXPECT_SHAPE(s, 3);
    EXPECT_VALUES(s, 0, 0, 0, 0);
    EXPECT_SHAPE(lt_sum(e, 1, DIMS(1), false), 0);
    EXPECT_VALUES(lt_mean(e, 1, DIMS(0), false), 0, NAN, NAN, NAN);
    EXPECT_ERROR(lt_amax(e, 1, DIMS(0), false), "amax", "(0,3)");
    EXPECT_ERROR(lt_argmax(e, 0, false), "argmax");
    lt_frame_pop(m);
}
END_TEST

START_TEST(argmax_and_argmin_return_the_first_index_on_ties)
{
    size_t m = lt_frame_push();
    lt_dtype dt = FLOATS[_i];
    lt_tensor *x = T(dt, SH(2, 4), 1, 3, 3, 0, 5, 5, -1, -1);
    lt_tensor *a1 = lt_argmax(x, 1, false);
    ck_assert_int_eq(lt_dtype_of(a1), LT_I64);
    EXPECT_SHAPE(a1, 2);
    EXPECT_VALUES(a1, 0, 1, 0);
    EXPECT_VALUES(lt_argmin(x, -1, false), 0, 3, 2);
    lt_tensor *a0 = lt_argmax(x, 0, true);
    EXPECT_SHAPE(a0, 1, 4);
    EXPECT_VALUES(a0, 0, 1, 1, 0, 0);
    EXPECT_VALUES(lt_argmin(x, 0, false), 0, 0, 0, 1, 1);
    EXPECT_VALUES(lt_argmax(T(dt, SH(3), 2, 2, 2), 0, false), 0, 0);
    /* Integer inputs work too. */
    EXPECT_VALUES(lt_argmax(T(LT_I64, SH(3), -4, 9, 9), 0, false), 0, 1);
    EXPECT_ERROR(lt_argmax(x, 2, false), "argmax", "(2,4)");
    EXPECT_ERROR(lt_argmin(x, -3, false), "argmin");
    lt_frame_pop(m);
}
END_TEST

START_TEST(sum_to_sums_away_broadcast_dims)
{
    size_t m = lt_frame_push();
    lt_dtype dt = FLOATS[_i];
    lt_tensor *x = T(dt, SH(2, 3), 0, 1, 2, 3, 4, 5);
    lt_tensor *r = lt_sum_to(x, 1, SH(3));
    EXPECT_SHAPE(r, 3);
    EXPECT_VALUES(r, 0, 3, 5, 7);
    lt_tensor *r13 = lt_sum_to(x, 2, SH(1, 3));
    EXPECT_SHAPE(r13, 1, 3);
    EXPECT_VALUES(r13, 0, 3, 5, 7);
    EXPECT_VALUES(lt_sum_to(x, 2, SH(2, 1)), 0, 3, 12);
    lt_tensor *all = lt_sum_to(x, 0, NULL);
    ck_assert_int_eq(lt_ndim(all), 0);
    ck_assert(lt_item(all) == 15);
    EXPECT_VALUES(lt_sum_to(x, 2, SH(2, 3)), 0, 0, 1, 2, 3, 4, 5);
    /* (4,2,3) -> (2,1): x[i,j,k] = 6i + 3j + k summed over i, k is 120 + 36j */
    lt_tensor *y = lt_reshape(lt_arange(0, 24, 1, dt), 3, SH(4, 2, 3));
    EXPECT_VALUES(lt_sum_to(y, 2, SH(2, 1)), 0, 120, 156);
    /* sum_to undoes broadcasting: sum_to(expand(v)) = n * v */
    lt_tensor *v = T(dt, SH(3, 1), 1, 2, 3);
    EXPECT_VALUES(lt_sum_to(lt_expand(v, 3, SH(2, 3, 4)), 2, SH(3, 1)), 0, 8, 16, 24);
    EXPECT_ERROR(lt_sum_to(x, 1, SH(2)), "sum_to", "(2,3)");
    EXPECT_ERROR(lt_sum_to(x, 3, SH(1, 2, 3)), "sum_to");
    lt_frame_pop(m);
}
END_TEST

START_TEST(softmax_along_dims_0_1_and_minus_1_on_hand_values)
{
    size_t m = lt_frame_push();
    lt_dtype dt = FLOATS[_i];
    lt_tensor *x = T(dt, SH(2, 3), 0, M_LN2, log(3.0), 0, 0, 0);
    lt_tensor *s1 = lt_softmax(x, 1);
    EXPECT_SHAPE(s1, 2, 3);
    ck_assert_int_eq(lt_dtype_of(s1), dt);
    EXPECT_VALUES(s1, tol(dt), 1.0 / 6, 2.0 / 6, 3.0 / 6, 1.0 / 3, 1.0 / 3, 1.0 / 3);
    EXPECT_SAME_BITS(lt_softmax(x, -1), s1);
    /* columns: softmax([a, 0]) = [a/(a+1), 1/(a+1)] for e^x = a */
    EXPECT_VALUES(lt_softmax(x, 0), tol(dt), 0.5, 2.0 / 3, 0.75, 0.5, 1.0 / 3, 0.25);
    EXPECT_ERROR(lt_softmax(x, 2), "softmax", "(2,3)");
    EXPECT_ERROR(lt_softmax(T(LT_I64, SH(2), 0, 1), 0), "softmax", "i64");
    EXPECT_ERROR(lt_log_softmax(x, -3), "log_softmax");
    lt_frame_pop(m);
}
END_TEST

START_TEST(softmax_slices_sum_to_one_and_log_softmax_is_log_of_softmax)
{
    size_t m = lt_frame_push();
    lt_dtype dt = FLOATS[_i];
    lt_tensor *x = lcg_tensor(dt, 3, SH(3, 4, 5), 11);
    for (int d = -1; d < 3; d++) {
        lt_tensor *s = lt_softmax(x, d);
        lt_tensor *ones = lt_sum(s, 1, DIMS(d), false);
        for (int64_t i = 0; i < lt_numel(ones); i++)
            ck_assert_double_eq_tol(lt_item_at(ones, i), 1, 10 * tol(dt));
        lt_tensor *ls = lt_log_softmax(x, d), *logs = lt_log(s);
        for (int64_t i = 0; i < lt_numel(ls); i++)
            ck_assert_double_eq_tol(lt_item_at(ls, i), lt_item_at(logs, i), 10 * tol(dt));
        /* log_softmax = x - logsumexp(x) */
        lt_tensor *ref = lt_sub(x, lt_logsumexp(x, 1, DIMS(d), true));
        for (int64_t i = 0; i < lt_numel(ls); i++)
            ck_assert_double_eq_tol(lt_item_at(ls, i), lt_item_at(ref, i), 10 * tol(dt));
    }
    lt_frame_pop(m);
}
END_TEST

START_TEST(softmax_of_large_values_does_not_overflow)
{
    size_t m = lt_frame_push();
    lt_dtype dt = FLOATS[_i];
    lt_tensor *x = T(dt, SH(2, 2), 1000, 1000, -1000, -1000);
    EXPECT_VALUES(lt_softmax(x, 1), tol(dt), 0.5, 0.5, 0.5, 0.5);
    EXPECT_VALUES(lt_log_softmax(x, 1), tol(dt), -M_LN2, -M_LN2, -M_LN2, -M_LN2);
    EXPECT_VALUES(lt_softmax(T(dt, SH(2), 1000, 0), 0), tol(dt), 1, 0);
    EXPECT_VALUES(lt_log_softmax(T(dt, SH(2), 1000, 0), 0), tol(dt), 0, -1000);
    EXPECT_VALUES(lt_softmax(T(dt, SH(2), -INFINITY, 0), 0), 0, 0, 1);
    lt_frame_pop(m);
}
END_TEST

START_TEST(reduction_dim_errors_name_op_and_shape)
{
    size_t m = lt_frame_push();
    lt_tensor *x = lt_zeros(2, SH(2, 3), LT_F32);
    EXPECT_ERROR(lt_sum(x, 1, DIMS(5), false), "sum", "5", "(2,3)");
    EXPECT_ERROR(lt_sum(x, 1, DIMS(-3), false), "sum", "(2,3)");
    EXPECT_ERROR(lt_mean(x, 2, DIMS(0, 0), false), "mean", "(2,3)");
    EXPECT_ERROR(lt_mean(x, 2, DIMS(1, -1), false), "mean");
    EXPECT_ERROR(lt_var(x, 1, DIMS(2), true, false), "var");
    EXPECT_ERROR(lt_logsumexp(x, 1, DIMS(2), false), "logsumexp");
    EXPECT_ERROR(lt_amax(x, 1, DIMS(2), false), "amax");
    EXPECT_ERROR(lt_amin(x, 1, DIMS(2), false), "amin");
    lt_frame_pop(m);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Non-contiguous inputs give the bits of their contiguous copies       */
/* ------------------------------------------------------------------ */

#define N_STRIDED 5

/* Non-contiguous views of random data, each of rank >= 2. */
static void strided_inputs(lt_dtype dt, lt_tensor **v)
{
    lt_tensor *base = lcg_tensor(dt, 3, SH(3, 4, 5), 7);
    v[0] = lt_permute(base, DIMS(2, 0, 1));                                           /* (5,3,4) */
    v[1] = lt_slice(lt_reshape(base, 2, SH(6, 10)), 1, 1, 10, 3);                     /* (6,3) step 3 */
    v[2] = lt_expand(lt_slice(base, 2, 2, 3, 1), 3, SH(3, 4, 6));                     /* stride 0 last */
    v[3] = lt_expand(lt_select(base, 0, 1), 3, SH(2, 4, 5));                          /* stride 0 first */
    v[4] = lt_transpose(lt_slice(base, 2, 0, 5, 2), 0, 2);                          /* (3,4,3) */
}

START_TEST(strided_inputs_are_really_strided)
{
    size_t m = lt_frame_push();
    lt_tensor *v[N_STRIDED];
    strided_inputs(LT_F64, v);
    for (int i = 0; i < N_STRIDED; i++) {
        ck_assert_ptr_nonnull(v[i]);
        ck_assert_msg(!lt_is_contiguous(v[i]), "input %d is contiguous", i);
    }
    lt_frame_pop(m);
}
END_TEST

START_TEST(unary_ops_on_strided_inputs_match_contiguous_copies)
{
    size_t m = lt_frame_push();
    lt_dtype dt = FLOATS[_i];
    lt_tensor *v[N_STRIDED];
    strided_inputs(dt, v);
    for (int i = 0; i < N_STRIDED; i++) {
        lt_tensor *c = lt_contiguous(v[i]);
        ck_assert(!lt_shares_storage(c, v[i]));
        EXPECT_SAME_BITS(lt_neg(v[i]), lt_neg(c));
        EXPECT_SAME_BITS(lt_exp(v[i]), lt_exp(c));
        EXPECT_SAME_BITS(lt_sigmoid(v[i]), lt_sigmoid(c));
        EXPECT_SAME_BITS(lt_tanh(v[i]), lt_tanh(c));
        EXPECT_SAME_BITS(lt_gelu(v[i], false), lt_gelu(c, false));
        EXPECT_SAME_BITS(lt_clamp(v[i], -1, 1), lt_clamp(c, -1, 1));
        EXPECT_SAME_BITS(lt_mul_scalar(v[i], 3), lt_mul_scalar(c, 3));
        EXPECT_SAME_BITS(lt_to_dtype(v[i], LT_I64), lt_to_dtype(c, LT_I64));
        EXPECT_SAME_BITS(lt_clone(v[i]), c);
    }
    lt_frame_pop(m);
}
END_TEST

START_TEST(binary_ops_on_strided_inputs_match_contiguous_copies)
{
    size_t m = lt_frame_push();
    lt_dtype dt = FLOATS[_i];
    lt_tensor *v[N_STRIDED];
    strided_inputs(dt, v);
    for (int i = 0; i < N_STRIDED; i++) {
        lt_tensor *c = lt_contiguous(v[i]);
        lt_tensor *w = lcg_tensor(dt, lt_ndim(c), lt_shape(c), 100 + i);
        EXPECT_SAME_BITS(lt_add(v[i], w), lt_add(c, w));
        EXPECT_SAME_BITS(lt_sub(w, v[i]), lt_sub(w, c));
        EXPECT_SAME_BITS(lt_mul(v[i], v[i]), lt_mul(c, c));
        EXPECT_SAME_BITS(lt_div(v[i], w), lt_div(c, w));
        EXPECT_SAME_BITS(lt_maximum(v[i], w), lt_maximum(c, w));
        EXPECT_SAME_BITS(lt_lt(v[i], w), lt_lt(c, w));
        EXPECT_SAME_BITS(lt_cmp_scalar(v[i], ">", 0), lt_cmp_scalar(c, ">", 0));
        /* broadcast a strided row against the strided input */
        lt_tensor *row = lt_select(v[i], 0, 0);
        EXPECT_SAME_BITS(lt_add(v[i], row), lt_add(c, lt_contiguous(row)));
    }
    lt_frame_pop(m);
}
END_TEST

START_TEST(reductions_on_strided_inputs_match_contiguous_copies)
{
    size_t m = lt_frame_push();
    lt_dtype dt = FLOATS[_i];
    lt_tensor *v[N_STRIDED];
    strided_inputs(dt, v);
    for (int i = 0; i < N_STRIDED; i++) {
        lt_tensor *x = v[i], *c = lt_contiguous(v[i]);
        const int sets[][2] = {{0, 0}, {-1, 0}, {0, -1}, {1, 0}};
        const int nset[] = {1, 1, 2, 1};
        for (int s = 0; s < 4; s++) {
            for (int keep = 0; keep < 2; keep++) {
                EXPECT_SAME_BITS(lt_sum(x, nset[s], sets[s], keep), lt_sum(c, nset[s], sets[s], keep));
                EXPECT_SAME_BITS(lt_mean(x, nset[s], sets[s], keep), lt_mean(c, nset[s], sets[s], keep));
                EXPECT_SAME_BITS(lt_var(x, nset[s], sets[s], true, keep), lt_var(c, nset[s], sets[s], true, keep));
                EXPECT_SAME_BITS(lt_logsumexp(x, nset[s], sets[s], keep),
                                 lt_logsumexp(c, nset[s], sets[s], keep));
                EXPECT_SAME_BITS(lt_amax(x, nset[s], sets[s], keep), lt_amax(c, nset[s], sets[s], keep));
                EXPECT_SAME_BITS(lt_amin(x, nset[s], sets[s], keep), lt_amin(c, nset[s], sets[s], keep));
            }
        }
        EXPECT_SAME_BITS(lt_sum(x, 0, NULL, false), lt_sum(c, 0, NULL, false));
        EXPECT_SAME_BITS(lt_var(x, 0, NULL, false, false), lt_var(c, 0, NULL, false, false));
        EXPECT_SAME_BITS(lt_argmax(x, 1, false), lt_argmax(c, 1, false));
        EXPECT_SAME_BITS(lt_argmin(x, -1, true), lt_argmin(c, -1, true));
        EXPECT_SAME_BITS(lt_sum_to(x, 1, lt_shape(x) + lt_ndim(x) - 1), lt_sum_to(c, 1, lt_shape(c) + lt_ndim(c) - 1));
    }
    lt_frame_pop(m);
}
END_TEST

START_TEST(softmax_on_strided_inputs_matches_contiguous_copies)
{
    size_t m = lt_frame_push();
    lt_dtype dt = FLOATS[_i];
    lt_tensor *v[N_STRIDED];
    strided_inputs(dt, v);
    for (int i = 0; i < N_STRIDED; i++) {
        lt_tensor *c = lt_contiguous(v[i]);
        for (int d = -1; d < lt_ndim(c); d++) {
            EXPECT_SAME_BITS(lt_softmax(v[i], d), lt_softmax(c, d));
            EXPECT_SAME_BITS(lt_log_softmax(v[i], d), lt_log_softmax(c, d));
        }
    }
    lt_frame_pop(m);
}
END_TEST

START_TEST(cat_and_where_on_strided_inputs_match_contiguous_copies)
{
    size_t m = lt_frame_push();
    lt_dtype dt = FLOATS[_i];
    lt_tensor *v[N_STRIDED];
    strided_inputs(dt, v);
    for (int i = 0; i < N_STRIDED; i++) {
        lt_tensor *x = v[i], *c = lt_contiguous(v[i]);
        EXPECT_SAME_BITS(lt_cat(2, (lt_tensor *[]){x, x}, 0), lt_cat(2, (lt_tensor *[]){c, c}, 0));
        EXPECT_SAME_BITS(lt_cat(2, (lt_tensor *[]){c, x}, -1), lt_cat(2, (lt_tensor *[]){c, c}, -1));
        EXPECT_SAME_BITS(lt_stack(2, (lt_tensor *[]){x, c}, 1), lt_stack(2, (lt_tensor *[]){c, c}, 1));
        lt_tensor *cond = lt_cmp_scalar(c, ">", 0);
        lt_tensor *cond_strided = relayout(cond);
        ck_assert(!lt_is_contiguous(cond_strided));
        lt_tensor *nx = lt_neg(x);
        EXPECT_SAME_BITS(lt_where(cond_strided, x, nx), lt_where(cond, c, lt_neg(c)));
        EXPECT_SAME_BITS(lt_where(cond, x, relayout(nx)), lt_where(cond, c, nx));
        EXPECT_SAME_BITS(lt_masked_fill(x, cond_strided, 0), lt_masked_fill(c, cond, 0));
    }
    lt_frame_pop(m);
}
END_TEST

START_TEST(gather_and_index_select_on_strided_inputs_match_contiguous_copies)
{
    size_t m = lt_frame_push();
    lt_dtype dt = FLOATS[_i];
    lt_tensor *v[N_STRIDED];
    strided_inputs(dt, v);
    for (int i = 0; i < N_STRIDED; i++) {
        lt_tensor *x = v[i], *c = lt_contiguous(v[i]);
        lt_tensor *ix = lt_zeros(1, SH(2), LT_I64);
        ((int64_t *)lt_data(ix))[0] = lt_size(x, 0) - 1;
        EXPECT_SAME_BITS(lt_index_select(x, 0, ix), lt_index_select(c, 0, ix));
        /* argmax indices gathered back give amax */
        lt_tensor *am = lt_argmax(x, 1, true);
        EXPECT_SAME_BITS(lt_gather(x, 1, am), lt_amax(c, 1, DIMS(1), true));
    }
    lt_frame_pop(m);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Random shapes against naive loops                                   */
/* ------------------------------------------------------------------ */

static uint64_t draw(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 33;
}

/* A tensor of the given logical shape whose memory layout is random: a
 * permuted, step-sliced view of a larger random block. */
static lt_tensor *random_layout(lt_dtype dt, int nd, const int64_t *shape, uint64_t *s)
{
    int perm[LT_MAX_DIMS], inv[LT_MAX_DIMS];
    int64_t step[LT_MAX_DIMS] = {0}, bshape[LT_MAX_DIMS] = {0};
    for (int i = 0; i < nd; i++)
        perm[i] = i;
    for (int i = nd - 1; i > 0; i--) {
        int j = (int)(draw(s) % (uint64_t)(i + 1)), tmp = perm[i];
        perm[i] = perm[j];
        perm[j] = tmp;
    }
    for (int j = 0; j < nd; j++) {
        step[j] = 1 + (int64_t)(draw(s) % 2);
        bshape[j] = shape[perm[j]] * step[j]; /* base dim j holds logical dim perm[j] */
        inv[perm[j]] = j;
    }
    lt_tensor *b = lcg_tensor(dt, nd, bshape, draw(s));
    for (int j = 0; j < nd; j++)
        b = lt_slice(b, j, 0, bshape[j], step[j]);
    return nd ? lt_permute(b, inv) : b;
}

/* Flat index into a tensor of shape (na, a) broadcast against out coords. */
static int64_t broadcast_flat(int n, const int64_t *coord, int na, const int64_t *a)
{
    int64_t f = 0;
    for (int i = 0; i < na; i++) {
        int64_t c = a[i] == 1 ? 0 : coord[n - na + i];
        f = f * a[i] + c;
    }
    return f;
}

START_TEST(add_and_mul_match_naive_broadcasting_on_random_shapes_and_layouts)
{
    size_t m = lt_frame_push();
    lt_dtype dt = FLOATS[_i];
    uint64_t s = 12345 + (uint64_t)_i;
    for (int trial = 0; trial < 300; trial++) {
        size_t inner = lt_frame_push();
        int n = (int)(draw(&s) % 6);
        int64_t out[LT_MAX_DIMS], as[LT_MAX_DIMS], bs[LT_MAX_DIMS];
        for (int i = 0; i < n; i++)
            out[i] = draw(&s) % 16 == 0 ? 0 : 1 + (int64_t)(draw(&s) % 4);
        int na = n ? (int)(draw(&s) % (uint64_t)(n + 1)) : 0, nb = n;
        for (int i = 0; i < na; i++)
            as[i] = draw(&s) % 3 == 0 ? 1 : out[n - na + i];
        for (int i = 0; i < nb; i++)
            bs[i] = draw(&s) % 3 == 0 ? 1 : out[i];
        lt_tensor *a = random_layout(dt, na, as, &s), *b = random_layout(dt, nb, bs, &s);
        lt_tensor *sum = lt_add(a, b), *prod = lt_mul(b, a);
        ck_assert_msg(sum && prod, "trial %d: %s", trial, lt_last_error());
        ck_assert_int_eq(lt_ndim(sum), n);
        int64_t total = lt_numel(sum), coord[LT_MAX_DIMS];
        for (int64_t f = 0; f < total; f++) {
            int64_t r = f;
            for (int i = n - 1; i >= 0; i--) {
                coord[i] = r % lt_shape(sum)[i];
                r /= lt_shape(sum)[i];
            }
            double x = lt_item_at(a, broadcast_flat(n, coord, na, as));
            double y = lt_item_at(b, broadcast_flat(n, coord, nb, bs));
            double want_s = dt == LT_F32 ? (double)((float)x + (float)y) : x + y;
            double want_p = dt == LT_F32 ? (double)((float)x * (float)y) : x * y;
            ck_assert_msg(lt_item_at(sum, f) == want_s && lt_item_at(prod, f) == want_p,
                          "trial %d, element %lld differs", trial, (long long)f);
        }
        lt_frame_pop(inner);
    }
    lt_frame_pop(m);
}
END_TEST

START_TEST(sum_and_amax_match_naive_loops_on_random_dim_sets_and_layouts)
{
    size_t m = lt_frame_push();
    lt_dtype dt = FLOATS[_i];
    uint64_t s = 777 + (uint64_t)_i;
    for (int trial = 0; trial < 300; trial++) {
        size_t inner = lt_frame_push();
        int n = 1 + (int)(draw(&s) % 5);
        int64_t shape[LT_MAX_DIMS];
        for (int i = 0; i < n; i++)
            shape[i] = 1 + (int64_t)(draw(&s) % 4);
        lt_tensor *x = random_layout(dt, n, shape, &s);
        int dims[LT_MAX_DIMS], nd = 0;
        unsigned mask = 0;
        for (int i = 0; i < n; i++)
            if (draw(&s) % 2) {
                dims[nd++] = draw(&s) % 2 ? i : i - n; /* mix positive and negative dims */
                mask |= 1u << i;
            }
        if (nd == 0)
            mask = (1u << n) - 1;
        bool keep = draw(&s) % 2;
        lt_tensor *sum = lt_sum(x, nd, dims, keep), *mx = lt_amax(x, nd, dims, keep);
        ck_assert_msg(sum && mx, "trial %d: %s", trial, lt_last_error());
        /* naive: walk x in row-major order, accumulate into the kept coords */
        double acc[4096], best[4096];
        int64_t nout = lt_numel(sum);
        for (int64_t o = 0; o < nout; o++) {
            acc[o] = 0;
            best[o] = -INFINITY;
        }
        int64_t total = lt_numel(x);
        for (int64_t f = 0; f < total; f++) {
            int64_t r = f, o = 0, mul = 1;
            for (int i = n - 1; i >= 0; i--) {
                int64_t c = r % shape[i];
                r /= shape[i];
                if (!(mask & (1u << i))) {
                    o += c * mul;
                    mul *= shape[i];
                }
            }
            double v = lt_item_at(x, f);
            acc[o] += v;
            best[o] = v > best[o] ? v : best[o];
        }
        int rank = 0;
        for (int i = 0; i < n; i++)
            rank += keep || !(mask & (1u << i));
        ck_assert_int_eq(lt_ndim(sum), rank);
        for (int64_t o = 0; o < nout; o++) {
            double want = dt == LT_F32 ? (double)(float)acc[o] : acc[o];
            ck_assert_msg(fabs(lt_item_at(sum, o) - want) <= 1e-12 * (1 + fabs(want)),
                          "trial %d, output %lld: %.17g vs %.17g", trial, (long long)o, lt_item_at(sum, o), want);
            ck_assert_msg(lt_item_at(mx, o) == best[o], "trial %d, amax output %lld", trial, (long long)o);
        }
        lt_frame_pop(inner);
    }
    lt_frame_pop(m);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Determinism across thread counts                                    */
/* ------------------------------------------------------------------ */

#define N_DET 12

static void det_reductions(lt_tensor *big, lt_tensor *mat, lt_tensor **out)
{
    out[0] = lt_sum(big, 0, NULL, false);
    out[1] = lt_mean(big, 0, NULL, false);
    out[2] = lt_var(big, 0, NULL, true, false);
    out[3] = lt_logsumexp(big, 0, NULL, false);
    out[4] = lt_sum(mat, 1, DIMS(0), false);
    out[5] = lt_sum(mat, 1, DIMS(1), false);
    out[6] = lt_mean(mat, 1, DIMS(0), true);
    out[7] = lt_var(mat, 1, DIMS(1), false, false);
    out[8] = lt_logsumexp(mat, 1, DIMS(0), false);
    out[9] = lt_logsumexp(mat, 1, DIMS(1), false);
    out[10] = lt_var(mat, 1, DIMS(0), true, false);
    out[11] = lt_softmax(mat, 1);
}

START_TEST(reductions_are_bitwise_identical_for_one_and_two_threads)
{
    size_t m = lt_frame_push();
    lt_dtype dt = FLOATS[_i];
    int saved = lt_get_num_threads();
    lt_tensor *big = lcg_tensor(dt, 1, SH((1 << 20) + 7), 1);
    lt_tensor *mat = lcg_tensor(dt, 2, SH(1000, 3001), 2);
    lt_tensor *one[N_DET], *two[N_DET];
    lt_set_num_threads(1);
    ck_assert_int_eq(lt_get_num_threads(), 1);
    det_reductions(big, mat, one);
    lt_set_num_threads(2);
    ck_assert_int_eq(lt_get_num_threads(), 2);
    det_reductions(big, mat, two);
    lt_set_num_threads(saved);
    for (int k = 0; k < N_DET; k++) {
        ck_assert_msg(one[k] && two[k], "reduction %d failed: %s", k, lt_last_error());
        ck_assert_msg(same_bits(one[k], two[k]), "reduction %d differs between 1 and 2 threads", k);
    }
    /* and the big sum is right: compare with a naive double sum */
    double ref = 0;
    for (int64_t i = 0; i < lt_numel(big); i++)
        ref += raw(big, i);
    ck_assert_double_eq_tol(lt_item(one[0]), ref, 1e-6 * (1 + fabs(ref)) + (dt == LT_F32 ? 1 : 0));
    lt_frame_pop(m);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Errors                                                              */
/* ------------------------------------------------------------------ */

START_TEST(errors_name_the_op_and_the_shapes_as_printed)
{
    size_t m = lt_frame_push();
    lt_tensor *a = lt_zeros(2, SH(2, 3), LT_F32), *b = lt_zeros(2, SH(4, 3), LT_F32);
    EXPECT_ERROR(lt_add(a, b), "add", "(2,3)", "(4,3)");
    EXPECT_ERROR(lt_sum(a, 1, DIMS(5), false), "sum", "(2,3)");
    EXPECT_ERROR(lt_reshape(a, 2, SH(5, 5)), "reshape", "(2,3)");
    EXPECT_ERROR(lt_exp(lt_zeros(1, SH(3), LT_I64)), "exp", "i64");
    EXPECT_ERROR(lt_squeeze(a, 0), "squeeze", "(2,3)");
    EXPECT_ERROR(lt_expand(a, 2, SH(3, 3)), "expand", "(2,3)");
    EXPECT_ERROR(lt_empty(1, SH(2), (lt_dtype)7), "dtype");
    lt_frame_pop(m);
}
END_TEST

START_TEST(empty_tensors_are_contiguous)
{
    size_t m = lt_frame_push();
    lt_tensor *t = lt_empty(3, (int64_t[]){2, 0, 3}, LT_F32);
    ck_assert(lt_is_contiguous(t));
    ck_assert(lt_contiguous(t) == t); /* no copy */
    lt_frame_pop(m);
}
END_TEST

START_TEST(shapes_whose_size_overflows_are_refused)
{
    size_t m = lt_frame_push();
    ck_assert_ptr_null(lt_empty(2, (int64_t[]){(int64_t)1 << 40, (int64_t)1 << 40}, LT_F32));
    ck_assert_ptr_nonnull(strstr(lt_last_error(), "too large"));
    ck_assert_ptr_null(lt_zeros(3, (int64_t[]){0, (int64_t)1 << 40, (int64_t)1 << 40}, LT_F64));
    ck_assert_ptr_nonnull(strstr(lt_last_error(), "zeros"));
    lt_tensor *ok = lt_zeros(2, (int64_t[]){0, 1 << 20}, LT_F32);
    ck_assert_ptr_nonnull(ok);
    ck_assert_int_eq(lt_numel(ok), 0);
    lt_frame_pop(m);
}
END_TEST

START_TEST(creation_errors_name_the_creating_op)
{
    size_t m = lt_frame_push();
    /* Regression: creation failures were once all reported as "empty". */
    EXPECT_ERROR(lt_zeros(1, SH(-1), LT_F32), "zeros", "-1");
    EXPECT_ERROR(lt_full(1, SH(-2), 1, LT_F32), "full", "-2");
    EXPECT_ERROR(lt_eye(-1, LT_F32), "eye", "-1");
    EXPECT_ERROR(lt_one_hot(lt_zeros(1, SH(2), LT_I64), 3, (lt_dtype)9), "one_hot");
    EXPECT_ERROR(lt_scatter_add(lt_ones(1, SH(2), LT_F32), 0, lt_zeros(1, SH(2), LT_I64), 1, SH(-1)),
                 "scatter_add");
    lt_frame_pop(m);
}
END_TEST

START_TEST(a_null_input_propagates_without_overwriting_the_first_message)
{
    size_t m = lt_frame_push();
    lt_tensor *x = lt_zeros(2, SH(2, 3), LT_F32);
    lt_tensor *ix = lt_zeros(1, SH(1), LT_I64), *u = lt_zeros(1, SH(3), LT_U8);
    ck_assert_ptr_null(lt_add(x, lt_zeros(2, SH(4, 3), LT_F32)));
    char first[1024];
    snprintf(first, sizeof first, "%s", lt_last_error());
    ck_assert(first[0] != '\0');
    const lt_tensor *results[] = {
        lt_exp(NULL), lt_neg(NULL), lt_gelu(NULL, true), lt_clamp(NULL, 1, 0), lt_pow_scalar(NULL, 2),
        lt_mul_scalar(NULL, 2), lt_add_scalar(NULL, 2), lt_add(NULL, x), lt_add(x, NULL), lt_pow(NULL, NULL),
        lt_eq(NULL, x), lt_ge(x, NULL), lt_cmp_scalar(NULL, "<", 0), lt_cmp_scalar(NULL, "bogus", 0),
        lt_sum(NULL, 0, NULL, false), lt_mean(NULL, 1, DIMS(9), false), lt_var(NULL, 0, NULL, true, false),
        lt_logsumexp(NULL, 0, NULL, false), lt_amax(NULL, 0, NULL, false), lt_amin(NULL, 0, NULL, false),
        lt_argmax(NULL, 0, false), lt_argmin(NULL, 0, false), lt_sum_to(NULL, 1, SH(3)), lt_softmax(NULL, 0),
        lt_log_softmax(NULL, 0), lt_reshape(NULL, 1, SH(6)), lt_view(NULL, 1, SH(6)), lt_permute(NULL, NULL),
        lt_transpose(NULL, 0, 1), lt_slice(NULL, 0, 0, 1, 1), lt_select(NULL, 0, 0), lt_expand(NULL, 1, SH(2)),
        lt_squeeze(NULL, 0), lt_squeeze_all(NULL), lt_unsqueeze(NULL, 0), lt_flatten(NULL, 0, -1),
        lt_contiguous(NULL), lt_clone(NULL), lt_to_dtype(NULL, LT_F64), lt_zeros_like(NULL), lt_ones_like(NULL),
        lt_full_like(NULL, 1), lt_fill_(NULL, 1), lt_copy_(NULL, x), lt_copy_(x, NULL),
        lt_cat(2, (lt_tensor *[]){x, NULL}, 0), lt_stack(2, (lt_tensor *[]){NULL, x}, 0),
        lt_gather(NULL, 0, ix), lt_gather(x, 0, NULL), lt_scatter_add(NULL, 0, ix, 2, SH(2, 3)),
        lt_index_select(NULL, 0, ix), lt_index_select(x, 0, NULL), lt_index_add(NULL, 0, ix, 2),
        lt_one_hot(NULL, 3, LT_F32), lt_where(NULL, x, x), lt_where(u, NULL, x), lt_where(u, x, NULL),
        lt_masked_fill(NULL, u, 0), lt_masked_fill(x, NULL, 0),
    };
    for (size_t i = 0; i < sizeof results / sizeof results[0]; i++) {
        ck_assert_msg(results[i] == NULL, "call %zu returned a tensor for a NULL input", i);
        ck_assert_msg(strcmp(lt_last_error(), first) == 0, "call %zu overwrote the message: \"%s\"", i,
                      lt_last_error());
    }
    ck_assert(isnan(lt_item(NULL)));
    ck_assert(isnan(lt_item_at(NULL, 0)));
    ck_assert_ptr_null(lt_retain(NULL));
    lt_release(NULL);
    ck_assert_str_eq(lt_last_error(), first);
    /* A chain is checked once at its end. */
    lt_tensor *chain = lt_sum(lt_exp(lt_add(x, lt_zeros(1, SH(4), LT_F32))), 0, NULL, false);
    ck_assert_ptr_null(chain);
    ck_assert_ptr_nonnull(strstr(lt_last_error(), "add"));
    lt_frame_pop(m);
}
END_TEST

START_TEST(clear_error_empties_the_message_and_set_error_formats_it)
{
    lt_set_error("custom %d/%s", 42, "x");
    ck_assert_str_eq(lt_last_error(), "custom 42/x");
    lt_clear_error();
    ck_assert_str_eq(lt_last_error(), "");
    /* A long message is truncated, never overflows. */
    char big[4000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    lt_set_error("%s", big);
    ck_assert(strlen(lt_last_error()) > 0 && strlen(lt_last_error()) < sizeof big);
    lt_clear_error();
}
END_TEST

static void *fail_on_thread(void *arg)
{
    (void)arg;
    size_t m = lt_frame_push();
    bool failed = lt_exp(lt_zeros(1, SH(1), LT_I64)) == NULL && strstr(lt_last_error(), "exp") != NULL;
    lt_frame_pop(m);
    return failed ? (void *)1 : NULL;
}

START_TEST(errors_are_recorded_per_thread)
{
    lt_set_error("main thread message");
    pthread_t th;
    void *failed = NULL;
    ck_assert_int_eq(pthread_create(&th, NULL, fail_on_thread, NULL), 0);
    pthread_join(th, &failed);
    ck_assert_ptr_nonnull(failed);
    ck_assert_str_eq(lt_last_error(), "main thread message");
    lt_clear_error();
}
END_TEST

START_TEST(failing_ops_print_nothing)
{
    size_t m = lt_frame_push();
    fflush(stdout);
    fflush(stderr);
    FILE *sink = tmpfile();
    ck_assert_ptr_nonnull(sink);
    int out = dup(1), err = dup(2);
    dup2(fileno(sink), 1);
    dup2(fileno(sink), 2);
    lt_tensor *x = lt_zeros(2, SH(2, 3), LT_F32);
    bool all_failed = !lt_add(x, lt_zeros(2, SH(4, 3), LT_F32)) && !lt_sum(x, 1, DIMS(5), false) &&
                      !lt_reshape(x, 1, SH(7)) && !lt_exp(lt_zeros(1, SH(1), LT_I64)) &&
                      !lt_view(lt_transpose(x, 0, 1), 1, SH(6)) && !lt_select(x, 0, 9) &&
                      !lt_cat(2, (lt_tensor *[]){x, lt_zeros(1, SH(3), LT_F32)}, 0) &&
                      !lt_gather(x, 0, lt_full(2, SH(1, 1), 5, LT_I64)) && !lt_arange(0, 1, 0, LT_F32) &&
                      !lt_one_hot(lt_full(1, SH(1), 9, LT_I64), 3, LT_F32) && isnan(lt_item(x)) &&
                      !lt_cmp_scalar(x, "~", 0) && !lt_exp(NULL);
    fflush(stdout);
    fflush(stderr);
    dup2(out, 1);
    dup2(err, 2);
    close(out);
    close(err);
    struct stat st;
    fstat(fileno(sink), &st);
    fclose(sink);
    ck_assert(all_failed);
    ck_assert_int_eq(st.st_size, 0);
    lt_frame_pop(m);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Frames                                                              */
/* ------------------------------------------------------------------ */

START_TEST(frames_release_what_they_own_and_retain_keeps_a_tensor_alive)
{
    size_t outer = lt_frame_push();
    size_t tensors0 = lt_mem_stats_get().live_tensors;
    lt_tensor *kept = lt_arange(0, 3, 1, LT_F64);
    size_t inner = lt_frame_push();
    ck_assert_uint_eq(inner, lt_frame_mark());
    lt_tensor *tmp = lt_add(kept, kept);
    lt_tensor *keep2 = lt_retain(lt_mul_scalar(tmp, 2));
    ck_assert_uint_eq(lt_mem_stats_get().live_tensors, tensors0 + 3);
    lt_frame_pop(inner);
    /* kept (outer frame) and keep2 (retained) survive; tmp is gone */
    ck_assert_uint_eq(lt_mem_stats_get().live_tensors, tensors0 + 2);
    EXPECT_VALUES(kept, 0, 0, 1, 2);
    EXPECT_VALUES(keep2, 0, 0, 4, 8);
    /* A view keeps its storage alive after the base is released. */
    lt_tensor *view = lt_retain(lt_slice(keep2, 0, 1, 3, 1));
    lt_release(keep2);
    EXPECT_VALUES(view, 0, 4, 8);
    lt_release(view); /* the outer frame still holds the slice */
    ck_assert_uint_eq(lt_mem_stats_get().live_tensors, tensors0 + 2);
    lt_frame_pop(outer);
    ck_assert_uint_eq(lt_mem_stats_get().live_tensors, tensors0);
}
END_TEST

START_TEST(autorelease_hands_an_owned_reference_to_the_frame)
{
    size_t m = lt_frame_push();
    size_t tensors0 = lt_mem_stats_get().live_tensors;
    lt_tensor *x = lt_retain(lt_zeros(1, SH(2), LT_F32));
    size_t inner = lt_frame_push();
    ck_assert_ptr_eq(lt_autorelease(x), x);
    lt_frame_pop(inner);
    /* still alive: the outer frame holds the creation reference */
    ck_assert_uint_eq(lt_mem_stats_get().live_tensors, tensors0 + 1);
    EXPECT_VALUES(x, 0, 0, 0);
    ck_assert_ptr_null(lt_autorelease(NULL));
    lt_frame_pop(m);
    ck_assert_uint_eq(lt_mem_stats_get().live_tensors, tensors0);
}
END_TEST

START_TEST(storage_is_64_byte_aligned)
{
    size_t m = lt_frame_push();
    for (int n = 1; n < 300; n += 37) {
        lt_tensor *t = lt_empty(1, &(int64_t){n}, LT_U8);
        ck_assert_uint_eq((uintptr_t)lt_data(t) % 64, 0);
    }
    lt_frame_pop(m);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Suite                                                               */
/* ------------------------------------------------------------------ */

/* Registers a test once per floating dtype (f32, f64). */
#define ADD_FLOAT_TEST(tc, fn) tcase_add_loop_test((tc), (fn), 0, 2)

static Suite *tensor_suite(void)
{
    Suite *s = suite_create("tensor");

    TCase *tc = tcase_create("create");
    tcase_add_test(tc, zeros_ones_full_fill_every_element_in_every_dtype);
    tcase_add_test(tc, scalar_is_a_zero_dim_tensor_with_one_element);
    ADD_FLOAT_TEST(tc, arange_counts_from_start_up_to_end_exclusive);
    tcase_add_test(tc, arange_in_integer_dtypes_and_zero_step_is_an_error);
    tcase_add_test(tc, eye_has_ones_on_the_diagonal_and_zeros_elsewhere);
    tcase_add_test(tc, from_data_copies_the_callers_buffer);
    ADD_FLOAT_TEST(tc, clone_has_new_storage_and_equal_values);
    tcase_add_test(tc, to_dtype_converts_exact_values_between_all_four_dtypes);
    tcase_add_test(tc, to_u8_saturates_and_rounds_to_nearest);
    tcase_add_test(tc, floating_to_i64_truncates_toward_zero);
    tcase_add_test(tc, like_constructors_copy_shape_and_dtype_into_new_storage);
    ADD_FLOAT_TEST(tc, fill_writes_through_a_strided_view);
    ADD_FLOAT_TEST(tc, copy_broadcasts_source_and_converts_to_destination_dtype);
    ADD_FLOAT_TEST(tc, copy_between_overlapping_views_of_one_storage_reads_the_old_values);
    tcase_add_test(tc, copy_rejects_a_source_that_does_not_broadcast_to_the_destination);
    tcase_add_test(tc, inspection_reports_shape_strides_offset_and_item_in_logical_order);
    suite_add_tcase(s, tc);

    tc = tcase_create("views");
    ADD_FLOAT_TEST(tc, reshape_is_a_view_that_shares_storage);
    tcase_add_test(tc, reshape_infers_a_single_minus_one);
    tcase_add_test(tc, reshape_to_a_wrong_numel_fails_naming_op_and_shape);
    ADD_FLOAT_TEST(tc, view_of_a_transposed_tensor_fails_and_reshape_copies);
    tcase_add_test(tc, view_of_a_step_slice_merges_dims_whose_strides_line_up);
    ADD_FLOAT_TEST(tc, permute_reorders_dims_without_copying);
    tcase_add_test(tc, transpose_swaps_two_dims_and_accepts_negative_dims);
    ADD_FLOAT_TEST(tc, slice_with_step_selects_every_kth_element);
    tcase_add_test(tc, slice_negative_start_and_end_count_from_the_end_and_clamp);
    tcase_add_test(tc, select_removes_a_dim_and_negative_index_counts_from_the_end);
    ADD_FLOAT_TEST(tc, expand_broadcasts_size_one_dims_with_stride_zero);
    tcase_add_test(tc, squeeze_and_unsqueeze_remove_and_insert_size_one_dims);
    tcase_add_test(tc, flatten_merges_an_inclusive_range_of_dims);
    tcase_add_test(tc, contiguous_returns_the_same_tensor_when_contiguous_and_a_copy_otherwise);
    tcase_add_test(tc, rank_8_tensors_work_through_views_elementwise_and_reductions);
    tcase_add_test(tc, rank_above_8_is_refused);
    suite_add_tcase(s, tc);

    tc = tcase_create("structural");
    ADD_FLOAT_TEST(tc, cat_along_dim_0_appends_rows);
    ADD_FLOAT_TEST(tc, cat_along_dim_1_appends_columns);
    tcase_add_test(tc, cat_rejects_mismatched_shapes_dtypes_and_dims);
    ADD_FLOAT_TEST(tc, stack_joins_equal_shapes_along_a_new_dim);
    ADD_FLOAT_TEST(tc, gather_matches_the_torch_documentation_example);
    tcase_add_test(tc, gather_rejects_out_of_range_and_non_i64_indices);
    ADD_FLOAT_TEST(tc, scatter_add_inverts_gather_on_a_permutation_index);
    ADD_FLOAT_TEST(tc, scatter_add_accumulates_repeated_indices);
    ADD_FLOAT_TEST(tc, index_select_picks_slices_in_index_order_with_repeats);
    ADD_FLOAT_TEST(tc, index_add_sums_slices_into_the_indexed_positions);
    tcase_add_test(tc, one_hot_encodes_labels_along_a_new_last_dim);
    ADD_FLOAT_TEST(tc, where_picks_from_a_or_b_with_broadcasting);
    tcase_add_test(tc, where_rejects_a_non_u8_condition_mixed_dtypes_and_bad_shapes);
    ADD_FLOAT_TEST(tc, masked_fill_writes_value_where_the_broadcast_mask_is_set);
    tcase_add_test(tc, masked_fill_errors_name_masked_fill);
    tcase_add_test(tc, i64_values_beyond_2_pow_53_survive_gather_scatter_add_and_index_add);
    suite_add_tcase(s, tc);

    tc = tcase_create("unary");
    ADD_FLOAT_TEST(tc, neg_abs_sign_relu_on_hand_values);
    ADD_FLOAT_TEST(tc, exp_log_sqrt_rsqrt_on_hand_values);
    ADD_FLOAT_TEST(tc, sigmoid_tanh_erf_on_hand_values);
    tcase_add_test(tc, f32_exp_and_erf_stay_within_2_ulp_of_libm_on_a_dense_grid);
    ADD_FLOAT_TEST(tc, gelu_matches_the_erf_and_tanh_formulas);
    ADD_FLOAT_TEST(tc, pow_scalar_clamp_mul_scalar_add_scalar_on_hand_values);
    ADD_FLOAT_TEST(tc, unary_ops_keep_shape_including_scalars_and_empty_tensors);
    tcase_add_test(tc, unary_ops_refuse_integer_tensors_naming_op_and_dtype);
    suite_add_tcase(s, tc);

    tc = tcase_create("binary");
    ADD_FLOAT_TEST(tc, add_sub_mul_div_pow_on_same_shapes);
    ADD_FLOAT_TEST(tc, maximum_minimum_pick_elementwise_and_propagate_nan);
    ADD_FLOAT_TEST(tc, add_broadcasts_row_vector_over_matrix);
    ADD_FLOAT_TEST(tc, add_broadcasts_column_against_row_to_a_matrix);
    ADD_FLOAT_TEST(tc, add_broadcasts_rank_3_against_rank_2);
    ADD_FLOAT_TEST(tc, add_broadcasts_scalars_and_size_one_dims);
    ADD_FLOAT_TEST(tc, add_with_a_zero_sized_dim_gives_an_empty_result);
    tcase_add_test(tc, add_of_shapes_that_do_not_broadcast_names_op_and_both_shapes);
    tcase_add_test(tc, mixed_f32_and_f64_promote_to_f64);
    tcase_add_test(tc, integer_arithmetic_is_refused_with_a_message);
    ADD_FLOAT_TEST(tc, comparisons_return_u8_ones_and_zeros);
    tcase_add_test(tc, comparisons_broadcast_and_accept_every_dtype);
    tcase_add_test(tc, cmp_scalar_supports_all_six_operators);
    suite_add_tcase(s, tc);

    tc = tcase_create("reduce");
    ADD_FLOAT_TEST(tc, sum_over_any_set_of_dims_with_and_without_keepdim);
    ADD_FLOAT_TEST(tc, reductions_over_all_dims_when_ndims_is_zero);
    ADD_FLOAT_TEST(tc, mean_divides_by_the_number_of_reduced_elements);
    ADD_FLOAT_TEST(tc, var_is_biased_or_unbiased_on_request);
    ADD_FLOAT_TEST(tc, logsumexp_is_exact_on_hand_values_and_does_not_overflow);
    ADD_FLOAT_TEST(tc, amax_and_amin_over_any_set_of_dims);
    tcase_add_test(tc, integer_sum_gives_i64_and_integer_extrema_keep_dtype);
    ADD_FLOAT_TEST(tc, reductions_over_empty_dims_give_the_identity_or_an_error);
    ADD_FLOAT_TEST(tc, argmax_and_argmin_return_the_first_index_on_ties);
    ADD_FLOAT_TEST(tc, sum_to_sums_away_broadcast_dims);
    ADD_FLOAT_TEST(tc, softmax_along_dims_0_1_and_minus_1_on_hand_values);
    ADD_FLOAT_TEST(tc, softmax_slices_sum_to_one_and_log_softmax_is_log_of_softmax);
    ADD_FLOAT_TEST(tc, softmax_of_large_values_does_not_overflow);
    tcase_add_test(tc, reduction_dim_errors_name_op_and_shape);
    tcase_add_test(tc, reductions_refuse_a_negative_dim_count);
    tcase_add_test(tc, i64_reductions_are_exact_beyond_2_pow_53);
    suite_add_tcase(s, tc);

    tc = tcase_create("strided");
    tcase_add_test(tc, strided_inputs_are_really_strided);
    ADD_FLOAT_TEST(tc, unary_ops_on_strided_inputs_match_contiguous_copies);
    ADD_FLOAT_TEST(tc, binary_ops_on_strided_inputs_match_contiguous_copies);
    ADD_FLOAT_TEST(tc, reductions_on_strided_inputs_match_contiguous_copies);
    ADD_FLOAT_TEST(tc, softmax_on_strided_inputs_matches_contiguous_copies);
    ADD_FLOAT_TEST(tc, cat_and_where_on_strided_inputs_match_contiguous_copies);
    ADD_FLOAT_TEST(tc, gather_and_index_select_on_strided_inputs_match_contiguous_copies);
    ADD_FLOAT_TEST(tc, add_and_mul_match_naive_broadcasting_on_random_shapes_and_layouts);
    ADD_FLOAT_TEST(tc, sum_and_amax_match_naive_loops_on_random_dim_sets_and_layouts);
    suite_add_tcase(s, tc);

    tc = tcase_create("determinism");
    tcase_set_timeout(tc, 300);
    ADD_FLOAT_TEST(tc, reductions_are_bitwise_identical_for_one_and_two_threads);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_add_test(tc, errors_name_the_op_and_the_shapes_as_printed);
    tcase_add_test(tc, creation_errors_name_the_creating_op);
    tcase_add_test(tc, shapes_whose_size_overflows_are_refused);
    tcase_add_test(tc, empty_tensors_are_contiguous);
    tcase_add_test(tc, a_null_input_propagates_without_overwriting_the_first_message);
    tcase_add_test(tc, clear_error_empties_the_message_and_set_error_formats_it);
    tcase_add_test(tc, errors_are_recorded_per_thread);
    tcase_add_test(tc, failing_ops_print_nothing);
    suite_add_tcase(s, tc);

    tc = tcase_create("frames");
    tcase_add_test(tc, frames_release_what_they_own_and_retain_keeps_a_tensor_alive);
    tcase_add_test(tc, autorelease_hands_an_owned_reference_to_the_frame);
    tcase_add_test(tc, storage_is_64_byte_aligned);
    suite_add_tcase(s, tc);

    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(tensor_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
