/*
 * test_nn.c: nn functional ops against direct computations, hand values and
 * finite differences (first and second order); multi-head attention
 * against direct loops; the module tree (names, order, views, modes,
 * ownership), the layer modules and the initializers.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libtensor/autograd.h>
#include <libtensor/nn.h>
#include <libtensor/tensor.h>

#include "nn/nn_internal.h"

#define FRAME_BEGIN size_t mark_ = lt_frame_push()
#define FRAME_END lt_frame_pop(mark_)
#define SH(...) (int64_t[]){__VA_ARGS__}

static const char *const nn_names[] = {"conv2d",     "conv2d_input_grad", "conv2d_weight_grad",  "linear",
                                       "max_pool2d", "avg_pool2d",        "adaptive_avg_pool2d", "cross_entropy",
                                       "batch_norm_train", "batch_norm_eval", "layer_norm", "mha"};
#define NNAMES (int)(sizeof nn_names / sizeof nn_names[0])

static bool is_nn(const char *name)
{
    for (int i = 0; i < NNAMES; i++)
        if (strcmp(name, nn_names[i]) == 0)
            return true;
    return false;
}

/* ---- registry-driven checks over nn's entries ---- */

static void run_nn_registry(bool second)
{
    ck_assert_int_eq(lt_nn_register_ops(), 0);
    ck_assert_int_eq(lt_nn_register_ops(), 0); /* idempotent */
    int n = lt_ag_registry_count(), seen = 0;
    for (int i = 0; i < n; i++) {
        const lt_ag_opinfo *op = lt_ag_registry_get(i);
        if (!is_nn(op->name))
            continue;
        seen++;
        for (int v = 0; v < op->nvariants; v++) {
            FRAME_BEGIN;
            lt_rng rng = lt_rng_new(7000u + (unsigned)i * 10u + (unsigned)v);
            lt_tensor *in[8] = {0};
            int nin = op->sample(v, &rng, in);
            ck_assert_msg(nin > 0, "sample of %s failed: %s", op->name, lt_last_error());
            lt_ag_check_opts o = lt_ag_check_defaults(op->name);
            int rc = second ? lt_ag_gradgradcheck(op->fn, NULL, nin, in, &o) : lt_ag_gradcheck(op->fn, NULL, nin, in, &o);
            ck_assert_msg(rc == 0, "%s variant %d: %s", op->name, v, lt_last_error());
            FRAME_END;
        }
    }
    ck_assert_int_eq(seen, NNAMES);
}

START_TEST(every_nn_op_passes_gradcheck_f64) { run_nn_registry(false); }
END_TEST

START_TEST(every_nn_op_passes_gradgradcheck_f64) { run_nn_registry(true); }
END_TEST

START_TEST(every_op_with_a_backward_is_in_the_registry)
{
    ck_assert_int_eq(lt_nn_register_ops(), 0);
    int nb = lt_ag_backward_count(), nn_found = 0;
    for (int b = 0; b < nb; b++) {
        const char *name = lt_ag_backward_name(b);
        bool found = false;
        for (int i = 0; i < lt_ag_registry_count() && !found; i++)
            found = strcmp(lt_ag_registry_get(i)->name, name) == 0;
        ck_assert_msg(found, "op '%s' has a backward but no registry entry", name);
        nn_found += strncmp(name, "conv2d", 6) == 0;
    }
    ck_assert_int_eq(nn_found, 3);
}
END_TEST

/* ---- conv2d against a direct convolution ---- */

static double xat(const double *x, int64_t C, int64_t H, int64_t W, int64_t n, int64_t c, int64_t h, int64_t w)
{
    return (h < 0 || h >= H || w < 0 || w >= W) ? 0.0 : x[((n * C + c) * H + h) * W + w];
}

/* y = direct conv; returns max |y - ref|. */
static double conv_direct_err(const lt_tensor *x, const lt_tensor *w, const lt_tensor *b, const lt_tensor *y,
                              const lt_nn_conv2d_params *p)
{
    const int64_t *xs = lt_shape(x), *ws = lt_shape(w), *ys = lt_shape(y);
    const double *xd = lt_data(x), *wd = lt_data(w), *bd = b ? lt_data(b) : NULL;
    double err = 0;
    for (int64_t n = 0; n < ys[0]; n++)
        for (int64_t o = 0; o < ys[1]; o++)
            for (int64_t i = 0; i < ys[2]; i++)
                for (int64_t j = 0; j < ys[3]; j++) {
                    double s = bd ? bd[o] : 0;
                    for (int64_t c = 0; c < ws[1]; c++)
                        for (int64_t pp = 0; pp < ws[2]; pp++)
                            for (int64_t q = 0; q < ws[3]; q++)
                                s += wd[((o * ws[1] + c) * ws[2] + pp) * ws[3] + q] *
                                     xat(xd, xs[1], xs[2], xs[3], n, c, i * p->stride[0] - p->padding[0] + pp * p->dilation[0],
                                         j * p->stride[1] - p->padding[1] + q * p->dilation[1]);
                    double e = fabs(s - lt_item_at(y, ((n * ys[1] + o) * ys[2] + i) * ys[3] + j));
                    err = e > err ? e : err;
                }
    return err;
}

static double dot(const lt_tensor *a, const lt_tensor *b)
{
    return lt_item(lt_sum(lt_mul(a, b), 0, NULL, false));
}

START_TEST(conv2d_matches_direct_convolution_for_stride_padding_dilation)
{
    FRAME_BEGIN;
    struct { int64_t N, C, H, W, O, kh, kw; lt_nn_conv2d_params p; } cases[] = {
        {2, 3, 7, 6, 4, 3, 3, {{1, 1}, {1, 1}, {1, 1}}},
        {2, 3, 7, 6, 4, 3, 3, {{2, 2}, {0, 0}, {1, 1}}},
        {1, 2, 9, 8, 3, 3, 3, {{1, 1}, {2, 2}, {2, 2}}},
        {3, 2, 8, 9, 5, 2, 3, {{2, 1}, {1, 2}, {1, 2}}},
        {2, 4, 5, 5, 3, 1, 1, {{1, 1}, {0, 0}, {1, 1}}}, /* 1x1: plain GEMM */
        {2, 4, 5, 5, 3, 1, 1, {{2, 2}, {1, 1}, {1, 1}}}, /* 1x1 with stride and padding */
        {2, 4, 5, 5, 3, 1, 1, {{2, 2}, {0, 0}, {1, 1}}}, /* 1x1 with stride: GEMMs on the subsample */
        {2, 3, 17, 25, 4, 1, 1, {{2, 3}, {0, 0}, {1, 1}}}, /* the same, 81 pixels: per-image weight grad */
        {2, 3, 7, 7, 4, 7, 7, {{2, 2}, {3, 3}, {1, 1}}}, /* a small ImageNet stem */
        /* taps that read only padding, cropped away (conv.c's conv_crop) */
        {3, 5, 1, 1, 4, 3, 3, {{1, 1}, {1, 1}, {1, 1}}}, /* 3x3 on a 1x1 image: the centre tap */
        {2, 4, 1, 2, 3, 3, 3, {{2, 2}, {1, 1}, {1, 1}}}, /* stride 2 on 1x2: taps (1,1), (1,2) */
        {2, 3, 1, 2, 4, 5, 5, {{1, 1}, {2, 2}, {1, 1}}}, /* 5x5 on 1x2: row 2, columns 1..3, padding 1 left */
        {2, 4, 2, 2, 3, 3, 3, {{2, 2}, {1, 1}, {1, 1}}}, /* 4 live taps of 9: cropped, a window */
        {2, 4, 3, 3, 3, 3, 3, {{2, 2}, {1, 1}, {1, 1}}}, /* 4 live taps of 9, 2x2 output: not cropped */
    };
    lt_rng r = lt_rng_new(42);
    int bad = 0;
    char msg[256] = "";
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        lt_tensor *x = lt_rand_normal(&r, 4, SH(cases[k].N, cases[k].C, cases[k].H, cases[k].W), 0, 1, LT_F64);
        lt_tensor *w = lt_rand_normal(&r, 4, SH(cases[k].O, cases[k].C, cases[k].kh, cases[k].kw), 0, 1, LT_F64);
        lt_tensor *b = lt_rand_normal(&r, 1, SH(cases[k].O), 0, 1, LT_F64);
        lt_tensor *y = lt_nn_conv2d_ex(x, w, k % 2 ? NULL : b, &cases[k].p);
        ck_assert_msg(y != NULL, "case %zu: %s", k, lt_last_error());
        double e = conv_direct_err(x, w, k % 2 ? NULL : b, y, &cases[k].p);
        /* the gradient ops are the adjoints: <g, conv(x,w)> = <input_grad(g,w), x> = <weight_grad(x,g), w> */
        lt_tensor *g = lt_rand_normal(&r, 4, lt_shape(y), 0, 1, LT_F64);
        lt_tensor *y0 = lt_nn_conv2d_ex(x, w, NULL, &cases[k].p);
        double t = dot(g, y0);
        double ti = dot(lt_nn_conv2d_input_grad(g, w, lt_shape(x), &cases[k].p), x);
        double tw = dot(lt_nn_conv2d_weight_grad(x, g, lt_shape(w), &cases[k].p), w);
        /* f32 agrees with f64 to f32 precision */
        lt_tensor *y32 = lt_nn_conv2d_ex(lt_to_dtype(x, LT_F32), lt_to_dtype(w, LT_F32), NULL, &cases[k].p);
        double e32 = lt_item(lt_amax(lt_abs(lt_sub(lt_to_dtype(y32, LT_F64), y0)), 0, NULL, false));
        if (e > 1e-12 || fabs(t - ti) > 1e-9 * (1 + fabs(t)) || fabs(t - tw) > 1e-9 * (1 + fabs(t)) || e32 > 1e-4) {
            bad++;
            snprintf(msg, sizeof msg, "case %zu: err %g, adjoint %g %g %g, f32 err %g", k, e, t, ti, tw, e32);
        }
    }
    ck_assert_msg(bad == 0, "%d bad cases, last: %s", bad, msg);
    FRAME_END;
}
END_TEST

/* max |a - b| / max |b|, a f32 and b f64 of one shape. */
static double rel_err32(const lt_tensor *a, const lt_tensor *b)
{
    double d = lt_item(lt_amax(lt_abs(lt_sub(lt_to_dtype(a, LT_F64), b)), 0, NULL, false));
    return d / lt_item(lt_amax(lt_abs(b), 0, NULL, false));
}

/* Convolutions with 256+ output pixels per image (ResNet's stem; 64+ for
 * the input gradient) make their gradients one image per thread
 * (conv_kernels.inc): im2col + GEMM, the weight gradient in pieces of
 * output rows past 2^18 column values, or in f32 from 512 to 4096 pixels
 * the implicit GEMM image by image (conv_packed.c, cases 0 and 1); the
 * last case's weight gradient is the implicit GEMM by panels of taps. The
 * adjoint identities in f64, f32 within rounding of f64, and f32 bitwise
 * the same at 1, 2 and 3 threads. */
START_TEST(conv2d_gradients_with_images_in_parallel_match_and_do_not_depend_on_threads)
{
    FRAME_BEGIN;
    struct { int64_t N, C, H, W, O, k; lt_nn_conv2d_params p; } cases[] = {
        {3, 3, 64, 64, 8, 7, {{2, 2}, {3, 3}, {1, 1}}}, /* the stem at 64x64: 1024 pixels */
        {2, 3, 40, 33, 5, 3, {{1, 1}, {1, 1}, {1, 1}}}, /* 3 channels: not Winograd, 1320 pixels */
        {4, 3, 32, 32, 6, 7, {{2, 2}, {3, 3}, {1, 1}}}, /* the stem at 32x32: 256 pixels */
        {2, 3, 224, 224, 4, 7, {{2, 2}, {3, 3}, {1, 1}}}, /* at 224x224: the weight gradient in 16 pieces */
        {3, 16, 16, 16, 8, 3, {{2, 2}, {1, 1}, {1, 1}}}, /* 64 pixels: the input gradient alone by images */
    };
    lt_rng r = lt_rng_new(31);
    int threads = lt_get_num_threads();
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        __typeof__(cases[0]) c = cases[k];
        lt_tensor *x = lt_rand_normal(&r, 4, SH(c.N, c.C, c.H, c.W), 0, 1, LT_F64);
        lt_tensor *w = lt_rand_normal(&r, 4, SH(c.O, c.C, c.k, c.k), 0, 1, LT_F64);
        lt_tensor *y = lt_nn_conv2d_ex(x, w, NULL, &c.p);
        ck_assert_msg(y != NULL, "%s", lt_last_error());
        lt_tensor *g = lt_rand_normal(&r, 4, lt_shape(y), 0, 1, LT_F64);
        lt_tensor *gx = lt_nn_conv2d_input_grad(g, w, lt_shape(x), &c.p);
        lt_tensor *gw = lt_nn_conv2d_weight_grad(x, g, lt_shape(w), &c.p);
        double t = dot(g, y), ti = dot(gx, x), tw = dot(gw, w);
        ck_assert_msg(fabs(t - ti) <= 1e-9 * (1 + fabs(t)) && fabs(t - tw) <= 1e-9 * (1 + fabs(t)),
                      "case %zu: adjoints %g %g %g", k, t, ti, tw);
        lt_tensor *x32 = lt_to_dtype(x, LT_F32), *w32 = lt_to_dtype(w, LT_F32), *g32 = lt_to_dtype(g, LT_F32);
        lt_tensor *o[3][2];
        for (int th = 0; th < 3; th++) {
            lt_set_num_threads(th + 1);
            o[th][0] = lt_nn_conv2d_input_grad(g32, w32, lt_shape(x), &c.p);
            o[th][1] = lt_nn_conv2d_weight_grad(x32, g32, lt_shape(w), &c.p);
            ck_assert(o[th][0] && o[th][1]);
        }
        lt_set_num_threads(threads);
        double ex = rel_err32(o[1][0], gx), ew = rel_err32(o[1][1], gw);
        ck_assert_msg(ex < 1e-5 && ew < 1e-5, "case %zu: f32 rel err gx %g gw %g", k, ex, ew);
        for (int th = 0; th < 3; th += 2)
            for (int j = 0; j < 2; j++)
                ck_assert_msg(memcmp(lt_data(o[th][j]), lt_data(o[1][j]),
                                     (size_t)lt_numel(o[1][j]) * sizeof(float)) == 0,
                              "case %zu: gradient %d differs at %d threads", k, j, th + 1);
    }
    FRAME_END;
}
END_TEST


/* The f32 3x3 stride-1 convolutions run on Winograd F(2x2) or F(4x4)
 * (nn/winograd.c), chosen by output size; the f64 ones on im2col, which
 * the test above checks against a direct convolution. Forward, input
 * gradient and weight gradient of every tile choice, with partial tiles
 * at the bottom and right edges, against f64 of the same inputs. */
START_TEST(conv2d_winograd_f32_matches_f64_for_both_tile_sizes)
{
    FRAME_BEGIN;
    struct { int64_t N, C, O, H, W; int m; } cases[] = {
        {3, 8, 9, 1, 1, 0},   {2, 8, 16, 2, 2, 2},  {2, 12, 8, 2, 3, 2},  {2, 8, 8, 3, 5, 2},
        {8, 9, 8, 16, 16, 4}, {2, 8, 10, 30, 29, 4}, {2, 16, 16, 8, 8, 2}, {3, 8, 12, 9, 6, 2},
        {1, 10, 8, 45, 46, 4}, {1, 8, 8, 2, 9, 2},
        {51, 8, 8, 48, 48, 4}, /* 51 images: two chunks (50 + 1) of transformed tiles */
        /* weight gradients with 2^21 or more dU values, blockwise from
         * products to kernels (channels not multiples of the 6-row and
         * 16-column panels) */
        {8, 250, 245, 8, 8, 4}, {2, 370, 365, 3, 3, 2},
    };
    lt_rng r = lt_rng_new(7);
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        int64_t N = cases[k].N, C = cases[k].C, O = cases[k].O, H = cases[k].H, W = cases[k].W;
        ck_assert_int_eq(lt__wino_tile(N, C, O, H, W), cases[k].m);
        lt_tensor *x = lt_rand_normal(&r, 4, SH(N, C, H, W), 0, 1, LT_F64);
        lt_tensor *w = lt_rand_normal(&r, 4, SH(O, C, 3, 3), 0, 1, LT_F64);
        lt_tensor *b = lt_rand_normal(&r, 1, SH(O), 0, 1, LT_F64);
        lt_tensor *g = lt_rand_normal(&r, 4, SH(N, O, H, W), 0, 1, LT_F64);
        lt_tensor *x32 = lt_to_dtype(x, LT_F32), *w32 = lt_to_dtype(w, LT_F32), *g32 = lt_to_dtype(g, LT_F32);
        lt_nn_conv2d_params p = lt_nn_conv2d_params_make(1, 1, 1);
        double ey = rel_err32(lt_nn_conv2d_ex(x32, w32, lt_to_dtype(b, LT_F32), &p), lt_nn_conv2d_ex(x, w, b, &p));
        double ex = rel_err32(lt_nn_conv2d_input_grad(g32, w32, lt_shape(x), &p),
                              lt_nn_conv2d_input_grad(g, w, lt_shape(x), &p));
        double ew = rel_err32(lt_nn_conv2d_weight_grad(x32, g32, lt_shape(w), &p),
                              lt_nn_conv2d_weight_grad(x, g, lt_shape(w), &p));
        /* f32 rounding of sums of 9 C (or 9 O, or N H W) products: seen
         * 0.8-2.1e-7 relative for im2col and F(2x2), whose transforms are
         * exact, and 0.7-3.6e-6 for F(4x4), whose transforms scale by up to
         * 8 and round 1/6 */
        double tol = (cases[k].m == 4 ? 1e-5 : 1e-6) * (C > 64 || O > 64 ? 3 : 1); /* 250 channels: 1.3e-5 */
        ck_assert_msg(ey < tol && ex < tol && ew < tol, "case %zu (m=%d): rel err y %g gx %g gw %g", k,
                      cases[k].m, ey, ex, ew);
    }
    FRAME_END;
}
END_TEST

/* The transforms gather tile patches with AVX-512 loads and in-register
 * transposes where the build has them, else with a scalar copy: both must
 * give the same bits, on left, right, top and bottom border tiles, maps
 * narrower than a patch, chunks of tiles across images and a last chunk
 * of fewer than 16 tiles, for F(2x2) and F(4x4), forward (input
 * patches), input gradient (the output gradient's patches) and weight
 * gradient (input patches and output-gradient tiles). Without AVX-512
 * this compares the scalar copy with itself. */
START_TEST(conv2d_winograd_vector_and_scalar_gathers_agree_bitwise)
{
    FRAME_BEGIN;
    struct { int64_t N, C, O, H, W; } cases[] = {
        {32, 16, 16, 16, 16}, {2, 16, 20, 56, 56}, {5, 20, 13, 9, 11}, {3, 17, 40, 4, 4}, {2, 8, 8, 3, 5},
        {2, 12, 8, 2, 3},     {1, 10, 8, 45, 46},  {2, 8, 10, 30, 29}, {4, 16, 16, 7, 7}, {1, 8, 8, 2, 9},
        {33, 9, 9, 1, 2},     {7, 16, 16, 13, 2},
    };
    lt_rng r = lt_rng_new(12);
    int prev = lt__wino_vector_gathers(1);
    bool vec = prev >= 0;
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        __typeof__(cases[0]) c = cases[k];
        ck_assert_int_ne(lt__wino_tile(c.N, c.C, c.O, c.H, c.W), 0);
        lt_tensor *x = lt_rand_normal(&r, 4, SH(c.N, c.C, c.H, c.W), 0, 1, LT_F32);
        lt_tensor *w = lt_rand_normal(&r, 4, SH(c.O, c.C, 3, 3), 0, 1, LT_F32);
        lt_tensor *g = lt_rand_normal(&r, 4, SH(c.N, c.O, c.H, c.W), 0, 1, LT_F32);
        lt_nn_conv2d_params p = lt_nn_conv2d_params_make(1, 1, 1);
        lt_tensor *out[2][3];
        for (int v = 0; v < 2; v++) {
            lt__wino_vector_gathers(v == 0 && vec);
            out[v][0] = lt_nn_conv2d_ex(x, w, NULL, &p);
            out[v][1] = lt_nn_conv2d_input_grad(g, w, lt_shape(x), &p);
            out[v][2] = lt_nn_conv2d_weight_grad(x, g, lt_shape(w), &p);
            ck_assert(out[v][0] && out[v][1] && out[v][2]);
        }
        for (int j = 0; j < 3; j++)
            ck_assert_msg(memcmp(lt_data(out[0][j]), lt_data(out[1][j]),
                                 (size_t)lt_numel(out[0][j]) * sizeof(float)) == 0,
                          "case %zu: result %d differs between the gathers", k, j);
    }
    if (vec)
        lt__wino_vector_gathers(prev);
    FRAME_END;
}
END_TEST

/* f32 3x3 stride-1 convolutions on 2x2 maps run as dense GEMMs
 * (nn/conv_2x2.c): forward with and without bias, input gradient and
 * weight gradient against f64 of the same inputs, with channel counts off
 * the 6-row and 16-column panels, fewer images than a panel and more
 * (K = 4 C up to 2048, the micro-kernel's depth blocks), and bitwise the
 * same at 1, 2 and 3 threads. */
START_TEST(conv2d_2x2_dense_gemms_match_f64_at_any_thread_count)
{
    FRAME_BEGIN;
    struct { int64_t N, C, O; } cases[] = {{1, 8, 8}, {3, 9, 11}, {17, 40, 33}, {20, 13, 70}, {33, 512, 20}, {5, 70, 512}};
    lt_rng r = lt_rng_new(21);
    int threads = lt_get_num_threads();
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        int64_t N = cases[k].N, C = cases[k].C, O = cases[k].O;
        ck_assert_int_ne(lt__wino_tile(N, C, O, 2, 2), 0); /* a convolution conv.c sends to conv_2x2.c */
        lt_tensor *x = lt_rand_normal(&r, 4, SH(N, C, 2, 2), 0, 1, LT_F64);
        lt_tensor *w = lt_rand_normal(&r, 4, SH(O, C, 3, 3), 0, 1, LT_F64);
        lt_tensor *b = lt_rand_normal(&r, 1, SH(O), 0, 1, LT_F64);
        lt_tensor *g = lt_rand_normal(&r, 4, SH(N, O, 2, 2), 0, 1, LT_F64);
        lt_tensor *x32 = lt_to_dtype(x, LT_F32), *w32 = lt_to_dtype(w, LT_F32), *g32 = lt_to_dtype(g, LT_F32);
        lt_tensor *b32 = lt_to_dtype(b, LT_F32);
        lt_nn_conv2d_params p = lt_nn_conv2d_params_make(1, 1, 1);
        lt_tensor *out[3][4];
        for (int t = 0; t < 3; t++) {
            lt_set_num_threads(t + 1);
            out[t][0] = lt_nn_conv2d_ex(x32, w32, b32, &p);
            out[t][1] = lt_nn_conv2d_ex(x32, w32, NULL, &p);
            out[t][2] = lt_nn_conv2d_input_grad(g32, w32, lt_shape(x), &p);
            out[t][3] = lt_nn_conv2d_weight_grad(x32, g32, lt_shape(w), &p);
            for (int j = 0; j < 4; j++)
                ck_assert_msg(out[t][j] != NULL, "case %zu: %s", k, lt_last_error());
        }
        lt_set_num_threads(threads);
        double e[4] = {rel_err32(out[1][0], lt_nn_conv2d_ex(x, w, b, &p)),
                       rel_err32(out[1][1], lt_nn_conv2d_ex(x, w, NULL, &p)),
                       rel_err32(out[1][2], lt_nn_conv2d_input_grad(g, w, lt_shape(x), &p)),
                       rel_err32(out[1][3], lt_nn_conv2d_weight_grad(x, g, lt_shape(w), &p))};
        /* f32 sums of up to 2048 products: seen up to 7e-7 relative */
        for (int j = 0; j < 4; j++)
            ck_assert_msg(e[j] < 3e-6, "case %zu: result %d rel err %g", k, j, e[j]);
        for (int t = 0; t < 3; t += 2)
            for (int j = 0; j < 4; j++)
                ck_assert_msg(memcmp(lt_data(out[t][j]), lt_data(out[1][j]),
                                     (size_t)lt_numel(out[1][j]) * sizeof(float)) == 0,
                              "case %zu: result %d differs at %d threads", k, j, t + 1);
    }
    FRAME_END;
}
END_TEST

/* A kernel the size of its (cropped) input, one output pixel, runs each
 * pass as one GEMM (conv.c's conv_is_window): f32 and f64 forward (with
 * and without bias), input and weight gradients against f64's direct
 * convolution and its adjoints, on a window as given, windows left by
 * conv_crop (3x3 on 1x1 images and 3x3 with stride 2 on 2x2, ResNet-18's
 * layer4 at 32x32 inputs, and 11x12 with padding on 5x6), with a stride,
 * and f32 the same at 1 and 3 threads. */
START_TEST(conv2d_window_gemms_match_f64_and_the_direct_convolution)
{
    FRAME_BEGIN;
    struct { int64_t N, C, H, W, O, kh, kw; lt_nn_conv2d_params p; } cases[] = {
        {3, 5, 3, 4, 7, 3, 4, {{1, 1}, {0, 0}, {1, 1}}},
        {32, 64, 1, 1, 40, 3, 3, {{1, 1}, {1, 1}, {1, 1}}},
        {2, 3, 5, 6, 4, 11, 12, {{2, 1}, {3, 3}, {1, 1}}},
        {4, 17, 2, 2, 9, 2, 2, {{2, 2}, {0, 0}, {1, 1}}},
        {32, 24, 2, 2, 40, 3, 3, {{2, 2}, {1, 1}, {1, 1}}}, /* layer4.0.conv1 at 32x32: taps (1..2, 1..2) */
    };
    lt_rng r = lt_rng_new(77);
    int threads = lt_get_num_threads();
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        __typeof__(cases[0]) c = cases[k];
        lt_tensor *x = lt_rand_normal(&r, 4, SH(c.N, c.C, c.H, c.W), 0, 1, LT_F64);
        lt_tensor *w = lt_rand_normal(&r, 4, SH(c.O, c.C, c.kh, c.kw), 0, 1, LT_F64);
        lt_tensor *b = lt_rand_normal(&r, 1, SH(c.O), 0, 1, LT_F64);
        lt_tensor *y = lt_nn_conv2d_ex(x, w, b, &c.p);
        ck_assert_msg(y != NULL, "case %zu: %s", k, lt_last_error());
        ck_assert_int_eq(lt_size(y, 2) * lt_size(y, 3), 1);
        double e = conv_direct_err(x, w, b, y, &c.p);
        ck_assert_msg(e < 1e-12, "case %zu: f64 forward err %g", k, e);
        lt_tensor *g = lt_rand_normal(&r, 4, lt_shape(y), 0, 1, LT_F64);
        lt_tensor *gx = lt_nn_conv2d_input_grad(g, w, lt_shape(x), &c.p);
        lt_tensor *gw = lt_nn_conv2d_weight_grad(x, g, lt_shape(w), &c.p);
        double t = dot(g, lt_nn_conv2d_ex(x, w, NULL, &c.p)), ti = dot(gx, x), tw = dot(gw, w);
        ck_assert_msg(fabs(t - ti) < 1e-9 * (1 + fabs(t)) && fabs(t - tw) < 1e-9 * (1 + fabs(t)),
                      "case %zu: adjoints %g %g %g", k, t, ti, tw);
        lt_tensor *x32 = lt_to_dtype(x, LT_F32), *w32 = lt_to_dtype(w, LT_F32), *g32 = lt_to_dtype(g, LT_F32);
        lt_tensor *b32 = lt_to_dtype(b, LT_F32), *out[2][3];
        for (int th = 0; th < 2; th++) {
            lt_set_num_threads(th ? 3 : 1);
            out[th][0] = lt_nn_conv2d_ex(x32, w32, b32, &c.p);
            out[th][1] = lt_nn_conv2d_input_grad(g32, w32, lt_shape(x), &c.p);
            out[th][2] = lt_nn_conv2d_weight_grad(x32, g32, lt_shape(w), &c.p);
        }
        lt_set_num_threads(threads);
        const lt_tensor *ref[3] = {y, gx, gw};
        for (int j = 0; j < 3; j++) {
            double e32 = rel_err32(out[0][j], ref[j]);
            ck_assert_msg(e32 < 3e-6, "case %zu: result %d rel err %g", k, j, e32);
            ck_assert_msg(memcmp(lt_data(out[0][j]), lt_data(out[1][j]), (size_t)lt_numel(ref[j]) * sizeof(float)) == 0,
                          "case %zu: result %d differs at 3 threads", k, j);
        }
    }
    FRAME_END;
}
END_TEST

/* f32 convolutions that Winograd does not take run as an implicit GEMM
 * (nn/conv_packed.c) when the input has 16 or more channels or a kernel of
 * 64 or more taps over all channels (ResNet's 7x7 stem on 3): strides,
 * dilations, 1x1 with stride, 5x5 and 7x7, non-square kernels and inputs,
 * asymmetric stride/padding, output channels not a multiple of the 6-row
 * panels and pixel counts not a multiple of the 16-pixel panels (one
 * case fewer than 16 pixels in all), with and without bias: forward and
 * (im2col + GEMM) input gradient against f64 of the same inputs. */
START_TEST(conv2d_f32_implicit_gemm_matches_f64_on_varied_geometries)
{
    FRAME_BEGIN;
    struct { int64_t N, C, O, H, W, kh, kw; int sh, sw, ph, pw, dh, dw; bool bias; } cases[] = {
        {4, 16, 7, 9, 9, 3, 3, 2, 2, 1, 1, 1, 1, true},   {5, 16, 13, 8, 8, 1, 1, 2, 2, 0, 0, 1, 1, false},
        {1, 20, 6, 11, 7, 5, 5, 1, 1, 2, 2, 1, 1, true},  {4, 16, 12, 15, 15, 7, 7, 2, 2, 3, 3, 1, 1, false},
        {4, 17, 5, 10, 12, 3, 3, 1, 1, 2, 2, 2, 2, true}, {2, 16, 9, 9, 13, 3, 1, 2, 1, 1, 0, 1, 1, true},
        {5, 32, 64, 3, 3, 3, 3, 2, 2, 1, 1, 1, 1, false}, {5, 16, 8, 6, 6, 3, 3, 1, 1, 0, 0, 1, 1, true},
        {4, 3, 16, 20, 20, 7, 7, 2, 2, 3, 3, 1, 1, false}, /* the stem: 3 channels, 147 taps */
        {3, 16, 24, 16, 16, 3, 3, 2, 2, 1, 1, 1, 1, false}, /* 8 pixels per output row: two runs a panel */
        {3, 16, 8, 18, 18, 3, 3, 2, 2, 1, 1, 1, 1, true},  /* 9 per row, 243 pixels: runs across rows and images */
        {3, 3, 8, 11, 9, 3, 3, 2, 2, 1, 1, 1, 1, true},    /* 27 taps: im2col forward */
        /* 16-pixel panels inside one output row (row gathers) next to
         * panels across rows: strides 2, 1 and 3 */
        {2, 3, 8, 40, 36, 7, 7, 2, 2, 3, 3, 1, 1, true},   {2, 16, 5, 18, 20, 5, 5, 1, 1, 2, 2, 1, 1, false},
        {1, 16, 4, 9, 50, 3, 3, 3, 3, 1, 1, 1, 1, true},
        {6, 16, 9, 1, 1, 3, 3, 1, 1, 1, 1, 1, 1, true},    /* cropped to the centre tap */
        {5, 32, 12, 1, 2, 3, 3, 2, 2, 1, 1, 1, 1, false},  /* cropped to 1x2, then implicit GEMM */
        /* weight gradient over 441 pixels: two blocks of the sum, the
         * second partial; 180 taps (12 panels, the last partial) */
        {9, 20, 13, 14, 14, 3, 3, 2, 2, 1, 1, 1, 1, false},
    };
    lt_rng r = lt_rng_new(8);
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        __typeof__(cases[0]) c = cases[k];
        lt_tensor *x = lt_rand_normal(&r, 4, SH(c.N, c.C, c.H, c.W), 0, 1, LT_F64);
        lt_tensor *w = lt_rand_normal(&r, 4, SH(c.O, c.C, c.kh, c.kw), 0, 1, LT_F64);
        lt_tensor *b = c.bias ? lt_rand_normal(&r, 1, SH(c.O), 0, 1, LT_F64) : NULL;
        lt_nn_conv2d_params p = {{c.sh, c.sw}, {c.ph, c.pw}, {c.dh, c.dw}};
        lt_tensor *y32 = lt_nn_conv2d_ex(lt_to_dtype(x, LT_F32), lt_to_dtype(w, LT_F32),
                                         b ? lt_to_dtype(b, LT_F32) : NULL, &p);
        lt_tensor *y64 = lt_nn_conv2d_ex(x, w, b, &p);
        ck_assert_ptr_nonnull(y32);
        ck_assert_ptr_nonnull(y64);
        for (int d = 0; d < 4; d++)
            ck_assert_int_eq(lt_size(y32, d), lt_size(y64, d));
        lt_tensor *g = lt_rand_normal(&r, 4, lt_shape(y64), 0, 1, LT_F64);
        double ex = rel_err32(lt_nn_conv2d_input_grad(lt_to_dtype(g, LT_F32), lt_to_dtype(w, LT_F32), lt_shape(x), &p),
                              lt_nn_conv2d_input_grad(g, w, lt_shape(x), &p));
        double ew = rel_err32(lt_nn_conv2d_weight_grad(lt_to_dtype(x, LT_F32), lt_to_dtype(g, LT_F32), lt_shape(w), &p),
                              lt_nn_conv2d_weight_grad(x, g, lt_shape(w), &p));
        /* f32 rounding of sums of C kh kw (or O kh kw) products, and of
         * the weight gradient's N Ho Wo: about 1e-7 relative */
        double e = rel_err32(y32, y64);
        ck_assert_msg(e < 1e-6 && ex < 1e-6 && ew < 1e-6, "case %zu: rel err y %g gx %g gw %g", k, e, ex, ew);
    }
    FRAME_END;
}
END_TEST

/* The fused Winograd and implicit-GEMM paths split their work by thread
 * count (blocks of tiles, groups of output channels), but each output
 * element must be the same sum: forward, input gradient and weight
 * gradient bitwise equal at 1, 2 and 3 threads, on F(4x4) with the
 * kernels transformed once, F(4x4) and F(2x2) with each item transforming
 * its own rows' kernels, a strided convolution, strided 1x1 ones (the
 * second with images spread over the threads), a 7x7 stem on 3 channels
 * and a weight gradient done blockwise (2^21 or more dU values). */
START_TEST(conv2d_f32_results_do_not_depend_on_the_thread_count)
{
    FRAME_BEGIN;
    struct { int64_t N, C, O, H, k; int stride; } cases[] = {{8, 16, 20, 16, 3, 1}, {8, 32, 40, 4, 3, 1},
                                                               {8, 24, 30, 8, 3, 1},  {5, 16, 24, 9, 3, 2},
                                                               {3, 16, 24, 20, 1, 2}, {7, 16, 24, 20, 1, 2},
                                                               {4, 3, 20, 18, 7, 2},  {2, 370, 365, 3, 3, 1}};
    lt_rng r = lt_rng_new(9);
    int threads = lt_get_num_threads();
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        int64_t N = cases[k].N, C = cases[k].C, O = cases[k].O, H = cases[k].H;
        lt_tensor *x = lt_rand_normal(&r, 4, SH(N, C, H, H), 0, 1, LT_F32);
        lt_tensor *w = lt_rand_normal(&r, 4, SH(O, C, cases[k].k, cases[k].k), 0, 1, LT_F32);
        lt_nn_conv2d_params p = lt_nn_conv2d_params_make(cases[k].stride, (int)cases[k].k / 2, 1);
        lt_tensor *out[3][3];
        for (int t = 0; t < 3; t++) {
            lt_set_num_threads(t + 1);
            out[t][0] = lt_nn_conv2d_ex(x, w, NULL, &p);
            ck_assert_ptr_nonnull(out[t][0]);
            lt_tensor *g = lt_mul_scalar(out[t][0], 0.5);
            out[t][1] = lt_nn_conv2d_input_grad(g, w, lt_shape(x), &p);
            out[t][2] = lt_nn_conv2d_weight_grad(x, g, lt_shape(w), &p);
            ck_assert(out[t][1] && out[t][2]);
        }
        for (int t = 1; t < 3; t++)
            for (int j = 0; j < 3; j++)
                ck_assert_msg(memcmp(lt_data(out[0][j]), lt_data(out[t][j]),
                                     (size_t)lt_numel(out[0][j]) * sizeof(float)) == 0,
                              "case %zu: result %d differs at %d threads", k, j, t + 1);
    }
    lt_set_num_threads(threads);
    FRAME_END;
}
END_TEST

START_TEST(conv2d_rejects_mismatched_shapes_with_a_message)
{
    FRAME_BEGIN;
    lt_tensor *x = lt_zeros(4, SH(1, 3, 5, 5), LT_F32), *w = lt_zeros(4, SH(2, 4, 3, 3), LT_F32);
    ck_assert_ptr_null(lt_nn_conv2d(x, w, NULL, 1, 0, 1));
    ck_assert_ptr_nonnull(strstr(lt_last_error(), "conv2d"));
    lt_tensor *w2 = lt_zeros(4, SH(2, 3, 7, 7), LT_F32);
    ck_assert_ptr_null(lt_nn_conv2d(x, w2, NULL, 1, 0, 1));
    ck_assert_ptr_nonnull(strstr(lt_last_error(), "larger"));
    FRAME_END;
}
END_TEST

/* ---- pooling ---- */

START_TEST(max_pool2d_matches_hand_values_and_routes_gradient_to_argmax)
{
    FRAME_BEGIN;
    /* 1x1x4x4 = 0..15 with a twist: row-major values */
    double v[16] = {1, 5, 2, 0, 3, 4, 9, 8, 7, 6, 1, 2, 0, 3, 5, 4};
    lt_tensor *x = lt_from_data(v, 4, SH(1, 1, 4, 4), LT_F64);
    lt_ag_set_requires_grad(x, true);
    lt_tensor *y = lt_nn_max_pool2d(x, 2, 2, 0);
    ck_assert_int_eq(lt_size(y, 2), 2);
    double want[4] = {5, 9, 7, 5};
    for (int i = 0; i < 4; i++)
        ck_assert_double_eq(lt_item_at(y, i), want[i]);
    /* k3 s2 p1: windows clipped by the padding */
    lt_tensor *y2 = lt_nn_max_pool2d(x, 3, 2, 1);
    double want2[4] = {5, 9, 7, 9};
    for (int i = 0; i < 4; i++)
        ck_assert_double_eq(lt_item_at(y2, i), want2[i]);
    lt_tensor *loss = lt_sum(y, 0, NULL, false), *g;
    ck_assert_int_eq(lt_ag_grad(1, &loss, 1, &x, NULL, false, false, false, &g), 0);
    double gw[16] = {0, 1, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 1, 0};
    for (int i = 0; i < 16; i++)
        ck_assert_double_eq(lt_item_at(g, i), gw[i]);
    FRAME_END;
}
END_TEST

/* The reference max pool: scan each window clipped to the image in
 * row-major order and keep the first element that beats the running best
 * (v > best, or v NaN and best not): first maximum, padding never wins,
 * first NaN wins. */
static void naive_max_pool(const double *x, int64_t NC, int64_t H, int64_t W, int k, int s, int p, double *y,
                           int64_t *idx)
{
    int64_t Ho = (H + 2 * p - k) / s + 1, Wo = (W + 2 * p - k) / s + 1;
    for (int64_t nc = 0; nc < NC; nc++)
        for (int64_t i = 0; i < Ho; i++)
            for (int64_t j = 0; j < Wo; j++) {
                int64_t best = -1;
                double bv = 0;
                for (int64_t h = i * s - p; h < i * s - p + k; h++)
                    for (int64_t w = j * s - p; w < j * s - p + k; w++) {
                        if (h < 0 || h >= H || w < 0 || w >= W)
                            continue;
                        double v = x[nc * H * W + h * W + w];
                        if (best < 0 || v > bv || (v != v && bv == bv)) {
                            best = h * W + w;
                            bv = v;
                        }
                    }
                y[(nc * Ho + i) * Wo + j] = bv;
                idx[(nc * Ho + i) * Wo + j] = best;
            }
}

/* Values in {-1, 0, -0, 1, 2} (ties, and +-0 that compare equal but differ
 * in their bits), with -inf and NaN sprinkled in. */
static double pool_sample_value(lt_rng *r)
{
    double u = lt_rng_uniform(r);
    if (u < 0.05)
        return NAN;
    if (u < 0.15)
        return -INFINITY;
    static const double levels[] = {-1.0, 0.0, -0.0, 1.0, 2.0};
    return levels[(int)(lt_rng_uniform(r) * 5) % 5];
}

static bool same_bits(double a, double b, lt_dtype dt)
{
    if (dt == LT_F32) {
        float fa = (float)a, fb = (float)b;
        return memcmp(&fa, &fb, sizeof fa) == 0;
    }
    return memcmp(&a, &b, sizeof a) == 0;
}

START_TEST(max_pool2d_matches_naive_first_maximum_with_ties_inf_nan_and_padding)
{
    static const int cfg[][3] = {{3, 2, 1}, {3, 2, 0}, {2, 2, 0}, {3, 1, 1}, {2, 1, 1}, {5, 2, 2}, {4, 3, 1}};
    static const int64_t hw[][2] = {{8, 8}, {9, 7}, {7, 10}, {3, 3}, {16, 17}, {5, 21}};
    lt_rng r = lt_rng_new(4242);
    int nthreads = lt_get_num_threads();
    for (size_t c = 0; c < sizeof cfg / sizeof cfg[0]; c++)
        for (size_t sz = 0; sz < sizeof hw / sizeof hw[0]; sz++)
            for (int d = 0; d < 2; d++) {
                FRAME_BEGIN;
                int k = cfg[c][0], st = cfg[c][1], p = cfg[c][2];
                int64_t N = 2, C = 3, H = hw[sz][0], W = hw[sz][1], NC = N * C;
                if (H + 2 * p < k || W + 2 * p < k) {
                    FRAME_END;
                    continue;
                }
                lt_dtype dt = d ? LT_F64 : LT_F32;
                int64_t Ho = (H + 2 * p - k) / st + 1, Wo = (W + 2 * p - k) / st + 1, n = NC * Ho * Wo;
                double *xv = malloc(sizeof(double) * (size_t)(NC * H * W)), *want = malloc(sizeof(double) * (size_t)n);
                int64_t *wi = malloc(sizeof(int64_t) * (size_t)n);
                /* 3x3 inputs all -inf: every window ties at -inf, so each
                 * index is the window's first element inside the image. */
                for (int64_t e = 0; e < NC * H * W; e++)
                    xv[e] = H == 3 ? -INFINITY : pool_sample_value(&r);
                naive_max_pool(xv, NC, H, W, k, st, p, want, wi);
                lt_tensor *x = lt_to_dtype(lt_from_data(xv, 4, SH(N, C, H, W), LT_F64), dt);
                /* Three paths: values computed directly with indices (no
                 * grad needed), by gather (x requires grad), and values only
                 * (no grad, no indices asked for); with 1 and 2 threads. */
                for (int mode = 0; mode < 6; mode++) {
                    lt_set_num_threads(mode % 2 ? 1 : nthreads);
                    bool values_only = mode >= 4;
                    lt_tensor *xin = mode < 2 || values_only ? x : lt_ag_set_requires_grad(lt_clone(x), true);
                    lt_tensor *ind = NULL;
                    lt_tensor *y = lt_nn_max_pool2d_with_indices(xin, k, st, p, values_only ? NULL : &ind);
                    ck_assert_msg(y && (ind || values_only), "k%d s%d p%d: %s", k, st, p, lt_last_error());
                    ck_assert_int_eq(lt_size(y, 2), Ho);
                    ck_assert_int_eq(lt_size(y, 3), Wo);
                    for (int64_t e = 0; e < n; e++) {
                        ck_assert_msg(same_bits(lt_item_at(y, e), want[e], dt),
                                      "k%d s%d p%d %lldx%lld %s mode %d: y[%lld] = %g, want %g", k, st, p,
                                      (long long)H, (long long)W, lt_dtype_name(dt), mode, (long long)e,
                                      lt_item_at(y, e), want[e]);
                        ck_assert_msg(values_only || (int64_t)lt_item_at(ind, e) == wi[e],
                                      "k%d s%d p%d %lldx%lld mode %d: idx[%lld] = %lld, want %lld", k, st, p,
                                      (long long)H, (long long)W, mode, (long long)e,
                                      values_only ? -1LL : (long long)lt_item_at(ind, e), (long long)wi[e]);
                    }
                }
                lt_set_num_threads(nthreads);
                free(xv);
                free(want);
                free(wi);
                FRAME_END;
            }
}
END_TEST

START_TEST(avg_and_adaptive_pools_match_hand_values)
{
    FRAME_BEGIN;
    lt_tensor *x = lt_reshape(lt_arange(0, 16, 1, LT_F64), 4, SH(1, 1, 4, 4));
    lt_tensor *a = lt_nn_avg_pool2d(x, 2, 2, 0);
    double wa[4] = {2.5, 4.5, 10.5, 12.5};
    for (int i = 0; i < 4; i++)
        ck_assert_double_eq_tol(lt_item_at(a, i), wa[i], 1e-12);
    /* k3 s2 p1, padding counted: corner window holds 0,1,4,5 -> 10/9 */
    lt_tensor *b = lt_nn_avg_pool2d(x, 3, 2, 1);
    ck_assert_double_eq_tol(lt_item_at(b, 0), 10.0 / 9.0, 1e-12);
    ck_assert_double_eq_tol(lt_item_at(b, 3), (5 + 6 + 7 + 9 + 10 + 11 + 13 + 14 + 15) / 9.0, 1e-12);
    /* adaptive 4 -> 3: row windows {0,1},{1,2},{2,3} */
    lt_tensor *c = lt_nn_adaptive_avg_pool2d(x, 3, 3);
    ck_assert_double_eq_tol(lt_item_at(c, 0), (0 + 1 + 4 + 5) / 4.0, 1e-12);
    ck_assert_double_eq_tol(lt_item_at(c, 4), (5 + 6 + 9 + 10) / 4.0, 1e-12);
    lt_tensor *d = lt_nn_adaptive_avg_pool2d(x, 1, 1);
    ck_assert_double_eq_tol(lt_item(d), 7.5, 1e-12);
    ck_assert_int_eq(lt_ndim(d), 4);
    FRAME_END;
}
END_TEST

/* ---- linear, cross-entropy ---- */

START_TEST(linear_is_x_w_transpose_plus_b)
{
    FRAME_BEGIN;
    lt_tensor *x = lt_from_data((double[]){1, 2, 3, 4, 5, 6}, 2, SH(2, 3), LT_F64);
    lt_tensor *w = lt_from_data((double[]){1, 0, -1, 2, 1, 0}, 2, SH(2, 3), LT_F64);
    lt_tensor *b = lt_from_data((double[]){0.5, -1}, 1, SH(2), LT_F64);
    lt_tensor *y = lt_nn_linear(x, w, b);
    double want[4] = {1 - 3 + 0.5, 2 + 2 - 1, 4 - 6 + 0.5, 8 + 5 - 1};
    for (int i = 0; i < 4; i++)
        ck_assert_double_eq_tol(lt_item_at(y, i), want[i], 1e-12);
    ck_assert_ptr_null(lt_nn_linear(x, lt_zeros(2, SH(2, 4), LT_F64), NULL));
    FRAME_END;
}
END_TEST

START_TEST(cross_entropy_matches_hand_computation_with_label_smoothing)
{
    FRAME_BEGIN;
    double z[6] = {1.0, 2.0, 0.5, -1.0, 0.0, 3.0};
    lt_tensor *logits = lt_from_data(z, 2, SH(2, 3), LT_F64);
    lt_tensor *t = lt_from_data((int64_t[]){1, 0}, 1, SH(2), LT_I64);
    double nll[2], smooth[2];
    for (int i = 0; i < 2; i++) {
        double lse = log(exp(z[3 * i]) + exp(z[3 * i + 1]) + exp(z[3 * i + 2]));
        nll[i] = lse - z[3 * i + (i == 0 ? 1 : 0)];
        smooth[i] = lse - (z[3 * i] + z[3 * i + 1] + z[3 * i + 2]) / 3.0;
    }
    ck_assert_double_eq_tol(lt_item(lt_nn_cross_entropy(logits, t, LT_NN_MEAN, 0)), (nll[0] + nll[1]) / 2, 1e-12);
    ck_assert_double_eq_tol(lt_item(lt_nn_cross_entropy(logits, t, LT_NN_SUM, 0)), nll[0] + nll[1], 1e-12);
    double eps = 0.1, l0 = (1 - eps) * nll[0] + eps * smooth[0], l1 = (1 - eps) * nll[1] + eps * smooth[1];
    ck_assert_double_eq_tol(lt_item(lt_nn_cross_entropy(logits, t, LT_NN_MEAN, eps)), (l0 + l1) / 2, 1e-12);
    lt_tensor *none = lt_nn_cross_entropy(logits, t, LT_NN_NONE, eps);
    ck_assert_double_eq_tol(lt_item_at(none, 1), l1, 1e-12);
    lt_tensor *bad = lt_from_data((int64_t[]){1, 3}, 1, SH(2), LT_I64);
    ck_assert_ptr_null(lt_nn_cross_entropy(logits, bad, LT_NN_MEAN, 0));
    ck_assert_ptr_nonnull(strstr(lt_last_error(), "out of range"));
    FRAME_END;
}
END_TEST

/* ---- batch norm, layer norm, dropout ---- */

START_TEST(batch_norm_training_normalizes_and_updates_running_stats_like_torch)
{
    FRAME_BEGIN;
    lt_rng r = lt_rng_new(3);
    lt_tensor *x = lt_rand_normal(&r, 4, SH(4, 3, 5, 5), 2.0, 3.0, LT_F64);
    lt_tensor *rm = lt_full(1, SH(3), 0.5, LT_F32), *rv = lt_full(1, SH(3), 2.0, LT_F32);
    lt_tensor *y = lt_nn_batch_norm(x, rm, rv, NULL, NULL, true, 0.1, 1e-5);
    ck_assert_ptr_nonnull(y);
    lt_tensor *mu = lt_mean(y, 3, (int[]){0, 2, 3}, false), *var = lt_var(y, 3, (int[]){0, 2, 3}, false, false);
    lt_tensor *bm = lt_mean(x, 3, (int[]){0, 2, 3}, false), *bv = lt_var(x, 3, (int[]){0, 2, 3}, true, false);
    int bad = 0;
    for (int c = 0; c < 3; c++) {
        double v = lt_item_at(bv, c) * 99.0 / 100.0; /* biased */
        bad += fabs(lt_item_at(mu, c)) > 1e-12;
        bad += fabs(lt_item_at(var, c) - v / (v + 1e-5)) > 1e-10;
        bad += fabs(lt_item_at(rm, c) - (0.9 * 0.5 + 0.1 * lt_item_at(bm, c))) > 1e-5;
        bad += fabs(lt_item_at(rv, c) - (0.9 * 2.0 + 0.1 * lt_item_at(bv, c))) > 1e-5;
    }
    ck_assert_int_eq(bad, 0);
    FRAME_END;
}
END_TEST

START_TEST(batch_norm_eval_uses_running_stats_and_affine)
{
    FRAME_BEGIN;
    lt_tensor *x = lt_from_data((double[]){1, 2, 3, 4}, 2, SH(2, 2), LT_F64);
    lt_tensor *rm = lt_from_data((double[]){1, -1}, 1, SH(2), LT_F64);
    lt_tensor *rv = lt_from_data((double[]){4, 0.25}, 1, SH(2), LT_F64);
    lt_tensor *w = lt_from_data((double[]){2, 3}, 1, SH(2), LT_F64), *b = lt_from_data((double[]){0.5, 0}, 1, SH(2), LT_F64);
    lt_tensor *y = lt_nn_batch_norm(x, rm, rv, w, b, false, 0.1, 0.0);
    double want[4] = {0 * 2 / 2.0 + 0.5, (2 + 1) / 0.5 * 3, (3 - 1) / 2.0 * 2 + 0.5, (4 + 1) / 0.5 * 3};
    for (int i = 0; i < 4; i++)
        ck_assert_double_eq_tol(lt_item_at(y, i), want[i], 1e-12);
    ck_assert_double_eq(lt_item_at(rm, 0), 1.0); /* untouched in eval */
    ck_assert_ptr_null(lt_nn_batch_norm(x, NULL, NULL, w, b, false, 0.1, 0.0));
    FRAME_END;
}
END_TEST

/* Eval mode without a graph runs one fused pass; with a graph, the
 * recorded mul + add. Both must give the same bits, for (N,C),
 * (N,C,H,W) and a non-contiguous x, with and without the affine part;
 * likewise batch norm + residual + ReLU (lt__nn_batch_norm_act, ResNet's
 * inference) against the recorded batch norm, add and relu, the residual
 * a non-contiguous view too, and with values around 0 so that ReLU cuts. */
START_TEST(batch_norm_eval_fused_pass_equals_the_recorded_path_bitwise)
{
    FRAME_BEGIN;
    lt_rng r = lt_rng_new(21);
    const lt_dtype dts[] = {LT_F32, LT_F64};
    const int64_t shapes[][4] = {{5, 3, 1, 1}, {4, 3, 7, 1}, {3, 3, 5, 6}};
    const int nds[] = {2, 4, 4};
    for (int di = 0; di < 2; di++)
        for (int si = 0; si < 3; si++)
            for (int affine = 0; affine < 2; affine++)
                for (int strided = 0; strided < 2; strided++) {
                    lt_dtype dt = dts[di];
                    lt_tensor *x = lt_rand_normal(&r, nds[si], shapes[si], 0.5, 2, dt);
                    if (strided && nds[si] == 4) /* a non-contiguous view of the same shape */
                        x = lt_transpose(lt_contiguous(lt_transpose(x, 2, 3)), 2, 3);
                    lt_tensor *rm = lt_rand_normal(&r, 1, SH(3), 0, 1, dt);
                    lt_tensor *rv = lt_add_scalar(lt_abs(lt_rand_normal(&r, 1, SH(3), 0, 1, dt)), 0.1);
                    lt_tensor *w = affine ? lt_rand_normal(&r, 1, SH(3), 1, 0.5, dt) : NULL;
                    lt_tensor *b = affine ? lt_rand_normal(&r, 1, SH(3), 0, 0.5, dt) : NULL;
                    lt_tensor *fused = lt_nn_batch_norm(x, rm, rv, w, b, false, 0.1, 1e-5);
                    lt_tensor *res = lt_rand_normal(&r, nds[si], shapes[si], -0.5, 2, dt), *fa[3];
                    if (strided && nds[si] == 4)
                        res = lt_transpose(lt_contiguous(lt_transpose(res, 2, 3)), 2, 3);
                    for (int k = 0; k < 3; k++) /* ReLU; residual; both */
                        fa[k] = lt__nn_batch_norm_act(x, rm, rv, w, b, false, 0.1, 1e-5, k ? res : NULL, k != 1);
                    /* (x itself when contiguous: from here it requires grad) */
                    lt_tensor *xg = lt_ag_set_requires_grad(lt_contiguous(x), true);
                    lt_tensor *rec = lt_nn_batch_norm(xg, rm, rv, w, b, false, 0.1, 1e-5);
                    ck_assert_msg(fused && rec, "%s", lt_last_error());
                    ck_assert_str_eq(lt_ag_op_name(fused), ""); /* nothing recorded: the fused pass */
                    ck_assert_str_ne(lt_ag_op_name(rec), "");  /* recorded: the composite path */
                    ck_assert_int_eq(memcmp(lt_data(lt_contiguous(fused)), lt_data(lt_contiguous(rec)),
                                            lt_dtype_size(dt) * (size_t)lt_numel(x)),
                                     0);
                    for (int k = 0; k < 3; k++) {
                        bool relu = k != 1;
                        lt_tensor *ra = lt__nn_batch_norm_act(xg, rm, rv, w, b, false, 0.1, 1e-5, k ? res : NULL, relu);
                        ck_assert_msg(fa[k] && ra, "%s", lt_last_error());
                        ck_assert_str_eq(lt_ag_op_name(fa[k]), "");
                        ck_assert_str_eq(lt_ag_op_name(ra), relu ? "relu" : "add");
                        ck_assert_msg(memcmp(lt_data(lt_contiguous(fa[k])), lt_data(lt_contiguous(ra)),
                                             lt_dtype_size(dt) * (size_t)lt_numel(x)) == 0,
                                      "%s shape %d affine %d strided %d variant %d: fused differs", lt_dtype_name(dt),
                                      si, affine, strided, k);
                    }
                }
    FRAME_END;
}
END_TEST

/* The gradients of <v, grad(batch_norm(x, gamma), x, w)> with respect to
 * x, w and gamma (out[0..2], gamma's NULL without gamma): the backward of
 * batch_norm_input_grad(w, x, gamma) against v. create records a graph,
 * so its composed formulas run; without, its fused kernel. */
static void bn_double_backward(lt_tensor *x, lt_tensor *gamma, lt_tensor *w, lt_tensor *v, bool create,
                               lt_tensor **out)
{
    lt_tensor *y = lt_nn_batch_norm(x, NULL, NULL, gamma, NULL, true, 0.1, 1e-5), *gx = NULL;
    ck_assert_msg(y && lt_ag_grad(1, &y, 1, &x, &w, true, true, false, &gx) == 0, "%s", lt_last_error());
    lt_tensor *in[3] = {x, w, gamma};
    out[2] = NULL;
    ck_assert_msg(lt_ag_grad(1, &gx, gamma ? 3 : 2, in, &v, create, false, false, out) == 0, "%s", lt_last_error());
    ck_assert_int_eq(lt_ag_op_name(out[0])[0] != '\0', create); /* recorded only with create */
}

static bool same_data(const lt_tensor *a, const lt_tensor *b)
{
    return lt_dtype_of(a) == lt_dtype_of(b) && lt_numel(a) == lt_numel(b) &&
           memcmp(lt_data(lt_contiguous(a)), lt_data(lt_contiguous(b)), lt_dtype_size(lt_dtype_of(a)) * (size_t)lt_numel(a)) == 0;
}

/* max |a - b| <= tol max |b|, a in any dtype, b in f64. */
static void assert_close(const lt_tensor *a, const lt_tensor *b, double tol, const char *what)
{
    double worst = 0, scale = 0;
    for (int64_t e = 0; e < lt_numel(b); e++) {
        worst = fmax(worst, fabs(lt_item_at(a, e) - lt_item_at(b, e)));
        scale = fmax(scale, fabs(lt_item_at(b, e)));
    }
    ck_assert_msg(worst <= tol * scale, "%s: max error %g > %g x max %g", what, worst, tol, scale);
}

/* Batch norm's second-order terms without a recorded graph are one fused
 * kernel; with one, the composed formulas (which must stay, for third
 * derivatives). The kernel must match the composed formulas run in f64
 * (channel 1 has mean 1000 and std 1, where the kernel's shifted sums keep
 * their precision), and give the same bits on 1 and 2 threads (the larger
 * shapes are over the kernel's parallel threshold). Rows of 1, 15 and 729
 * values cover every tail of the kernel's four-lane sums. */
START_TEST(batch_norm_double_backward_fused_kernel_matches_the_composed_formulas)
{
    FRAME_BEGIN;
    lt_rng r = lt_rng_new(23);
    const lt_dtype dts[] = {LT_F32, LT_F64};
    /* S = 1, 1, 15 (4 lanes), 729 and 16 (16 lanes, with and without rows
     * that end within a group) */
    const int64_t shapes[][4] = {{7, 4}, {4100, 4}, {3, 4, 5, 3}, {6, 4, 27, 27}, {5, 4, 4, 4}};
    const int nds[] = {2, 2, 4, 4, 4};
    int nthreads = lt_get_num_threads();
    for (int di = 0; di < 2; di++)
        for (int si = 0; si < 5; si++)
            for (int affine = 0; affine < 2; affine++) {
                lt_dtype dt = dts[di];
                int nd = nds[si];
                const int64_t *sh = shapes[si];
                lt_tensor *shift = lt_from_data((double[]){0.5, 1000, -3, 0}, nd,
                                                nd == 2 ? SH(1, 4) : SH(1, 4, 1, 1), LT_F64);
                lt_tensor *xv = lt_to_dtype(lt_add(lt_rand_normal(&r, nd, sh, 0, 1, LT_F64), shift), dt);
                lt_tensor *wv = lt_rand_normal(&r, nd, sh, 0.2, 1, dt), *vv = lt_rand_normal(&r, nd, sh, -0.1, 1, dt);
                if (si == 2) /* u a non-contiguous view */
                    vv = lt_transpose(lt_contiguous(lt_transpose(vv, 2, 3)), 2, 3);
                lt_tensor *gv = affine ? lt_rand_uniform(&r, 1, SH(4), 0.5, 1.5, dt) : NULL;
                lt_tensor *fused[2][3], *rec[3], *ref[3];
                for (int t = 0; t < 3; t++) {
                    lt_set_num_threads(t == 1 ? 1 : nthreads);
                    bn_double_backward(lt_ag_set_requires_grad(lt_clone(xv), true),
                                       gv ? lt_ag_set_requires_grad(lt_clone(gv), true) : NULL,
                                       lt_ag_set_requires_grad(lt_clone(wv), true), vv, t == 2, t < 2 ? fused[t] : rec);
                }
                lt_set_num_threads(nthreads);
                /* The reference on x - shift: the same values (x - 1000 is
                 * exact near 1000), where the composed formulas lose none of
                 * their precision; translation does not change the result. */
                bn_double_backward(lt_ag_set_requires_grad(lt_sub(lt_to_dtype(xv, LT_F64), shift), true),
                                   gv ? lt_ag_set_requires_grad(lt_to_dtype(gv, LT_F64), true) : NULL,
                                   lt_ag_set_requires_grad(lt_to_dtype(wv, LT_F64), true), lt_to_dtype(vv, LT_F64),
                                   true, ref);
                const char *names[] = {"dx", "dw", "dgamma"};
                double tol = dt == LT_F64 ? 1e-12 : 1e-5;
                for (int k = 0; k < (gv ? 3 : 2); k++) {
                    char what[96];
                    snprintf(what, sizeof what, "%s %s shape %d affine %d", names[k], lt_dtype_name(dt), si, affine);
                    ck_assert_int_eq(lt_dtype_of(fused[0][k]), dt);
                    ck_assert_msg(same_data(fused[0][k], fused[1][k]), "%s: 1 and %d threads differ", what, nthreads);
                    /* dw is input_grad(v, x, gamma) either way, with the
                     * fused read pass's sums or its own: the same bits. */
                    if (k == 1)
                        ck_assert_msg(same_data(fused[0][k], rec[k]), "%s: not bitwise the recorded path's", what);
                    else
                        assert_close(fused[0][k], ref[k], tol, what);
                }
            }
    FRAME_END;
}
END_TEST

/* Without a graph to record, beta's gradient comes from the sums of the
 * weight gradient's read pass instead of a reduction of its own: the sum
 * of the upstream gradient over all dims but 1, against f64, at S = 1, 3
 * (4 lanes) and 49 (16 lanes, rows ending within a group), f32 and f64;
 * with create_graph it is the recorded sum (the gradgradcheck below). */
/* Training batch norm with its block's tail (+ residual, ReLU) is one op
 * (norm.c's batch_norm_act_train): its output and its gradients for x,
 * gamma, beta and the residual are bitwise those of batch_norm, lt_add and
 * lt_relu recorded one by one, in f32 and f64, with and without the
 * residual and the ReLU; and with create_graph, a gradient of a gradient
 * is the composed one's too (to rounding: the recorded formulas). */
static lt_tensor *bn_tail_composed(const lt_tensor *x, const lt_tensor *w, const lt_tensor *b, const lt_tensor *res,
                                   bool relu)
{
    lt_tensor *y = lt_nn_batch_norm(x, NULL, NULL, w, b, true, 0.1, 1e-5);
    if (res)
        y = lt_add(y, res);
    return relu ? lt_relu(y) : y;
}

START_TEST(batch_norm_act_training_is_bitwise_the_composed_ops)
{
    FRAME_BEGIN;
    lt_rng r = lt_rng_new(41);
    for (int di = 0; di < 2; di++)
        for (int mode = 0; mode < 3; mode++) { /* ReLU; residual + ReLU; residual */
            lt_dtype dt = di ? LT_F64 : LT_F32;
            bool relu = mode < 2, with_res = mode > 0;
            int64_t *sh = SH(4, 5, 6, 7);
            lt_tensor *x = lt_ag_set_requires_grad(lt_rand_normal(&r, 4, sh, 0.5, 2, dt), true);
            lt_tensor *w = lt_ag_set_requires_grad(lt_rand_uniform(&r, 1, SH(5), 0.5, 1.5, dt), true);
            lt_tensor *b = lt_ag_set_requires_grad(lt_rand_normal(&r, 1, SH(5), 0, 1, dt), true);
            lt_tensor *res = with_res ? lt_ag_set_requires_grad(lt_rand_normal(&r, 4, sh, 0, 1, dt), true) : NULL;
            lt_tensor *u = lt_rand_normal(&r, 4, sh, 0, 1, dt);
            lt_tensor *in[4] = {x, w, b, res}, *g1[4], *g2[4];
            int nin = with_res ? 4 : 3;
            lt_tensor *z1 = lt__nn_batch_norm_act(x, NULL, NULL, w, b, true, 0.1, 1e-5, res, relu);
            lt_tensor *z2 = bn_tail_composed(x, w, b, res, relu);
            ck_assert_msg(z1 && z2, "%s", lt_last_error());
            ck_assert_msg(strcmp(lt_ag_op_name(z1), "batch_norm_act_train") == 0, "%s", lt_ag_op_name(z1));
            size_t es = dt == LT_F32 ? 4 : 8;
            ck_assert(memcmp(lt_data(z1), lt_data(z2), (size_t)lt_numel(z1) * es) == 0);
            ck_assert_int_eq(lt_ag_grad(1, &z1, nin, in, &u, false, false, false, g1), 0);
            ck_assert_int_eq(lt_ag_grad(1, &z2, nin, in, &u, false, false, false, g2), 0);
            for (int k = 0; k < nin; k++)
                ck_assert_msg(memcmp(lt_data(lt_contiguous(g1[k])), lt_data(lt_contiguous(g2[k])),
                                     (size_t)lt_numel(g1[k]) * es) == 0,
                              "%s mode %d: gradient %d differs", lt_dtype_name(dt), mode, k);
            /* second order: d/dx of sum (dL/dx)^2 through both */
            lt_tensor *h1, *h2;
            z1 = lt__nn_batch_norm_act(x, NULL, NULL, w, b, true, 0.1, 1e-5, res, relu);
            z2 = bn_tail_composed(x, w, b, res, relu);
            ck_assert_int_eq(lt_ag_grad(1, &z1, 1, &x, &u, true, false, false, &h1), 0);
            ck_assert_int_eq(lt_ag_grad(1, &z2, 1, &x, &u, true, false, false, &h2), 0);
            lt_tensor *s1 = lt_sum(lt_mul(h1, h1), 0, NULL, false), *s2 = lt_sum(lt_mul(h2, h2), 0, NULL, false);
            lt_tensor *q1, *q2;
            ck_assert_int_eq(lt_ag_grad(1, &s1, 1, &w, NULL, false, false, false, &q1), 0);
            ck_assert_int_eq(lt_ag_grad(1, &s2, 1, &w, NULL, false, false, false, &q2), 0);
            assert_close(q1, q2, dt == LT_F64 ? 1e-10 : 1e-4, "second order");
        }
    FRAME_END;
}
END_TEST

/* Training batch norm's kernels split channels between threads in chunks
 * (norm_kernels.c's bn_chunk: 16 / S channels where S < 16): forward and
 * gradients bitwise the same at 1, 2 and 3 threads, on shapes past the
 * parallel threshold with S = 1, 4, 49. */
START_TEST(batch_norm_training_results_do_not_depend_on_the_thread_count)
{
    FRAME_BEGIN;
    lt_rng r = lt_rng_new(43);
    const int64_t shapes[][4] = {{40, 512, 1, 1}, {32, 256, 2, 2}, {8, 64, 7, 7}};
    int threads = lt_get_num_threads();
    for (int si = 0; si < 3; si++) {
        const int64_t *sh = shapes[si], C = sh[1];
        lt_tensor *x = lt_ag_set_requires_grad(lt_rand_normal(&r, 4, sh, 0.5, 2, LT_F32), true);
        lt_tensor *w = lt_ag_set_requires_grad(lt_rand_uniform(&r, 1, &C, 0.5, 1.5, LT_F32), true);
        lt_tensor *b = lt_ag_set_requires_grad(lt_rand_normal(&r, 1, &C, 0, 1, LT_F32), true);
        lt_tensor *u = lt_rand_normal(&r, 4, sh, 0, 1, LT_F32), *out[3][4];
        for (int t = 0; t < 3; t++) {
            lt_set_num_threads(t + 1);
            out[t][0] = lt__nn_batch_norm_act(x, NULL, NULL, w, b, true, 0.1, 1e-5, NULL, true);
            ck_assert_int_eq(lt_ag_grad(1, &out[t][0], 3, (lt_tensor *const[]){x, w, b}, &u, false, false, false,
                                        &out[t][1]),
                             0);
        }
        lt_set_num_threads(threads);
        for (int t = 0; t < 3; t += 2)
            for (int j = 0; j < 4; j++)
                ck_assert_msg(memcmp(lt_data(out[t][j]), lt_data(out[1][j]), (size_t)lt_numel(out[1][j]) * 4) == 0,
                              "shape %d: result %d differs at %d threads", si, j, t + 1);
    }
    FRAME_END;
}
END_TEST

START_TEST(batch_norm_beta_gradient_is_the_upstream_sum_per_channel)
{
    FRAME_BEGIN;
    lt_rng r = lt_rng_new(29);
    const int64_t shapes[][4] = {{40, 6}, {5, 6, 1, 3}, {32, 6, 7, 7}};
    const int nds[] = {2, 4, 4};
    for (int di = 0; di < 2; di++)
        for (int si = 0; si < 3; si++) {
            lt_dtype dt = di ? LT_F64 : LT_F32;
            int nd = nds[si];
            lt_tensor *x = lt_ag_set_requires_grad(lt_rand_normal(&r, nd, shapes[si], 1, 2, dt), true);
            lt_tensor *gamma = lt_ag_set_requires_grad(lt_rand_uniform(&r, 1, SH(6), 0.5, 1.5, dt), true);
            lt_tensor *beta = lt_ag_set_requires_grad(lt_rand_normal(&r, 1, SH(6), 0, 1, dt), true);
            lt_tensor *u = lt_rand_normal(&r, nd, shapes[si], 0.3, 1, dt);
            lt_tensor *y = lt_nn_batch_norm(x, NULL, NULL, gamma, beta, true, 0.1, 1e-5), *g[3];
            ck_assert_msg(y && lt_ag_grad(1, &y, 3, (lt_tensor *const[]){x, gamma, beta}, &u, false, false, false,
                                          g) == 0,
                          "%s", lt_last_error());
            int dims[3] = {0, 2, 3};
            lt_tensor *want = lt_sum(lt_to_dtype(u, LT_F64), nd - 1, dims, false);
            ck_assert_int_eq(lt_dtype_of(g[2]), dt);
            char what[64];
            snprintf(what, sizeof what, "dbeta %s shape %d", lt_dtype_name(dt), si);
            assert_close(g[2], want, dt == LT_F64 ? 1e-12 : 1e-6, what);
        }
    FRAME_END;
}
END_TEST

static lt_tensor *f_bn(void *ud, int n, lt_tensor *const *in)
{
    (void)ud;
    (void)n;
    /* a loss that is not a plain sum, so the mean/var paths all matter */
    lt_tensor *y = lt_nn_batch_norm(in[0], NULL, NULL, in[1], in[2], true, 0.1, 1e-5);
    return lt_sum(lt_mul(lt_tanh(y), in[3]), 0, NULL, false);
}

START_TEST(batch_norm_training_passes_gradgradcheck_with_random_gamma_beta)
{
    FRAME_BEGIN;
    lt_rng r = lt_rng_new(11);
    lt_tensor *in[4] = {
        lt_ag_set_requires_grad(lt_rand_normal(&r, 4, SH(3, 2, 2, 3), 0.5, 2.0, LT_F64), true),
        lt_ag_set_requires_grad(lt_rand_uniform(&r, 1, SH(2), 0.5, 2.0, LT_F64), true),
        lt_ag_set_requires_grad(lt_rand_normal(&r, 1, SH(2), 0, 1, LT_F64), true),
        lt_rand_normal(&r, 4, SH(3, 2, 2, 3), 0, 1, LT_F64),
    };
    lt_ag_check_opts o = lt_ag_check_defaults("batch_norm_train");
    ck_assert_msg(lt_ag_gradcheck(f_bn, NULL, 4, in, &o) == 0, "%s", lt_last_error());
    ck_assert_msg(lt_ag_gradgradcheck(f_bn, NULL, 4, in, &o) == 0, "%s", lt_last_error());
    FRAME_END;
}
END_TEST

START_TEST(layer_norm_normalizes_last_dims)
{
    FRAME_BEGIN;
    lt_rng r = lt_rng_new(5);
    lt_tensor *x = lt_rand_normal(&r, 3, SH(2, 3, 8), 1.0, 2.0, LT_F64);
    lt_tensor *w = lt_full(1, SH(8), 2.0, LT_F64), *b = lt_full(1, SH(8), 1.0, LT_F64);
    lt_tensor *y = lt_nn_layer_norm(x, 1, w, b, 0.0);
    lt_tensor *mu = lt_mean(y, 1, (int[]){2}, false), *var = lt_var(y, 1, (int[]){2}, false, false);
    int bad = 0;
    for (int i = 0; i < 6; i++)
        bad += fabs(lt_item_at(mu, i) - 1.0) > 1e-12 || fabs(lt_item_at(var, i) - 4.0) > 1e-10;
    ck_assert_int_eq(bad, 0);
    FRAME_END;
}
END_TEST

START_TEST(dropout_scales_kept_values_and_is_identity_in_eval)
{
    FRAME_BEGIN;
    lt_tensor *x = lt_ones(1, SH(10000), LT_F64);
    lt_rng r = lt_rng_new(9);
    lt_tensor *y = lt_nn_dropout(x, 0.25, true, &r);
    int64_t kept = 0, bad = 0;
    for (int64_t i = 0; i < 10000; i++) {
        double v = lt_item_at(y, i);
        kept += v != 0;
        bad += v != 0 && fabs(v - 1.0 / 0.75) > 1e-12;
    }
    ck_assert_int_eq(bad, 0);
    ck_assert(kept > 7200 && kept < 7800);
    lt_tensor *e = lt_nn_dropout(x, 0.25, false, &r);
    ck_assert(lt_shares_storage(e, x));
    lt_rng r2 = lt_rng_new(9); /* seeded: the same mask again */
    ck_assert_double_eq(lt_item(lt_sum(lt_sub(lt_nn_dropout(x, 0.25, true, &r2), y), 0, NULL, false)), 0.0);
    FRAME_END;
}
END_TEST

/* Double backward through conv2d and batch norm inside a frame leaves no
 * tensor or block behind once the frame pops. */
START_TEST(popping_the_frame_frees_conv_and_norm_graphs)
{
    lt_frame_pop(0);
    lt_cache_trim();
    lt_mem_stats before = lt_mem_stats_get();
    for (int it = 0; it < 3; it++) {
        FRAME_BEGIN;
        lt_rng r = lt_rng_new(21);
        lt_tensor *x = lt_ag_set_requires_grad(lt_rand_normal(&r, 4, SH(2, 3, 6, 6), 0, 1, LT_F32), true);
        lt_tensor *w = lt_ag_set_requires_grad(lt_rand_normal(&r, 4, SH(4, 3, 3, 3), 0, 1, LT_F32), true);
        lt_tensor *h = lt_nn_batch_norm(lt_nn_conv2d(x, w, NULL, 2, 1, 1), NULL, NULL, NULL, NULL, true, 0.1, 1e-5);
        lt_tensor *loss = lt_nn_cross_entropy(lt_flatten(lt_nn_adaptive_avg_pool2d(lt_relu(h), 1, 1), 1, 3),
                                              lt_from_data((int64_t[]){1, 3}, 1, SH(2), LT_I64), LT_NN_MEAN, 0.1);
        lt_tensor *g;
        ck_assert_int_eq(lt_ag_grad(1, &loss, 1, &x, NULL, true, true, false, &g), 0);
        lt_tensor *pen = lt_sum(lt_mul(g, g), 0, NULL, false);
        ck_assert_int_eq(lt_ag_backward(pen, NULL, false, false), 0);
        ck_assert_ptr_nonnull(lt_ag_grad_of(w));
        lt_ag_zero_grad(w);
        lt_ag_zero_grad(x);
        FRAME_END;
    }
    lt_frame_pop(0);
    lt_cache_trim();
    lt_mem_stats after = lt_mem_stats_get();
    ck_assert_uint_eq(after.live_tensors, before.live_tensors);
    ck_assert_uint_eq(after.live_blocks, before.live_blocks);
}
END_TEST

/* ---- multi-head self-attention ---- */

/* softmax(q k^T / sqrt(d)) v per head, by loops, then the projection. */
static double mha_direct_err(const lt_tensor *x, const lt_tensor *wq, const lt_tensor *bq, const lt_tensor *wp,
                             const lt_tensor *bp, int h, const lt_tensor *y)
{
    int64_t B = lt_size(x, 0), T = lt_size(x, 1), D = lt_size(x, 2), d = D / h;
    double *qkv = calloc((size_t)(B * T * 3 * D), sizeof(double)), *o = calloc((size_t)(B * T * D), sizeof(double));
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++)
            for (int64_t j = 0; j < 3 * D; j++) {
                double s = lt_item_at(bq, j);
                for (int64_t i = 0; i < D; i++)
                    s += lt_item_at(x, (b * T + t) * D + i) * lt_item_at(wq, j * D + i);
                qkv[(b * T + t) * 3 * D + j] = s;
            }
    for (int64_t b = 0; b < B; b++)
        for (int hh = 0; hh < h; hh++)
            for (int64_t t = 0; t < T; t++) {
                double sc[16], mx = -INFINITY, z = 0;
                for (int64_t u = 0; u < T; u++) {
                    double s = 0;
                    for (int64_t i = 0; i < d; i++)
                        s += qkv[(b * T + t) * 3 * D + hh * d + i] * qkv[(b * T + u) * 3 * D + D + hh * d + i];
                    sc[u] = s / sqrt((double)d);
                    mx = sc[u] > mx ? sc[u] : mx;
                }
                for (int64_t u = 0; u < T; u++)
                    z += (sc[u] = exp(sc[u] - mx));
                for (int64_t i = 0; i < d; i++) {
                    double s = 0;
                    for (int64_t u = 0; u < T; u++)
                        s += sc[u] / z * qkv[(b * T + u) * 3 * D + 2 * D + hh * d + i];
                    o[(b * T + t) * D + hh * d + i] = s;
                }
            }
    double err = 0;
    for (int64_t r = 0; r < B * T; r++)
        for (int64_t j = 0; j < D; j++) {
            double s = lt_item_at(bp, j);
            for (int64_t i = 0; i < D; i++)
                s += o[r * D + i] * lt_item_at(wp, j * D + i);
            double e = fabs(s - lt_item_at(y, r * D + j));
            err = e > err ? e : err;
        }
    free(qkv);
    free(o);
    return err;
}

START_TEST(mha_matches_direct_attention_for_1_and_3_heads)
{
    FRAME_BEGIN;
    lt_rng r = lt_rng_new(31);
    int heads[2] = {1, 3};
    for (int k = 0; k < 2; k++) {
        lt_tensor *x = lt_rand_normal(&r, 3, SH(2, 5, 6), 0, 1, LT_F64);
        lt_tensor *wq = lt_rand_normal(&r, 2, SH(18, 6), 0, 0.5, LT_F64), *bq = lt_rand_normal(&r, 1, SH(18), 0, 1, LT_F64);
        lt_tensor *wp = lt_rand_normal(&r, 2, SH(6, 6), 0, 0.5, LT_F64), *bp = lt_rand_normal(&r, 1, SH(6), 0, 1, LT_F64);
        lt_tensor *attn = NULL;
        lt_tensor *y = lt_nn_mha_ex(x, wq, bq, wp, bp, heads[k], &attn);
        ck_assert_msg(y != NULL, "%s", lt_last_error());
        ck_assert_int_eq(lt_ndim(y), 3);
        ck_assert_double_le(mha_direct_err(x, wq, bq, wp, bp, heads[k], y), 1e-12);
        /* attention probabilities (B,h,T,T), rows summing to 1 */
        ck_assert_int_eq(lt_size(attn, 1), heads[k]);
        ck_assert_int_eq(lt_size(attn, 3), 5);
        lt_tensor *rows = lt_sum(attn, 1, (int[]){3}, false);
        ck_assert_double_le(lt_item(lt_amax(lt_abs(lt_add_scalar(rows, -1.0)), 0, NULL, false)), 1e-12);
        /* f32 agrees */
        lt_tensor *y32 = lt_nn_mha(lt_to_dtype(x, LT_F32), lt_to_dtype(wq, LT_F32), lt_to_dtype(bq, LT_F32),
                                   lt_to_dtype(wp, LT_F32), lt_to_dtype(bp, LT_F32), heads[k]);
        ck_assert_double_le(lt_item(lt_amax(lt_abs(lt_sub(lt_to_dtype(y32, LT_F64), y)), 0, NULL, false)), 1e-4);
    }
    /* errors: heads must divide D; weights must be (3D,D) and (D,D) */
    lt_tensor *x = lt_zeros(3, SH(1, 2, 6), LT_F64);
    ck_assert_ptr_null(lt_nn_mha(x, lt_zeros(2, SH(18, 6), LT_F64), NULL, lt_zeros(2, SH(6, 6), LT_F64), NULL, 4));
    ck_assert_ptr_nonnull(strstr(lt_last_error(), "mha"));
    ck_assert_ptr_null(lt_nn_mha(x, lt_zeros(2, SH(12, 6), LT_F64), NULL, lt_zeros(2, SH(6, 6), LT_F64), NULL, 2));
    FRAME_END;
}
END_TEST

/* ---- modules ---- */

static lt_tensor *leaf_f64(double v, int64_t n) { return lt_full(1, SH(n), v, LT_F64); }

/* root: param a, buffer b, child c (param w, child d (param z)), then
 * param e added to root last: state_dict order is a, e, b, c.w, c.d.z. */
static lt_nn_module *toy_tree(void)
{
    lt_nn_module *root = lt_nn_module_new("Root", NULL, NULL, NULL);
    lt_nn_module_add_param(root, "a", leaf_f64(1, 2));
    lt_nn_module_add_buffer(root, "b", lt_zeros(0, NULL, LT_I64));
    lt_nn_module *c = lt_nn_module_add_child(root, "c", lt_nn_module_new("C", NULL, NULL, NULL));
    lt_nn_module_add_param(c, "w", leaf_f64(2, 3));
    lt_nn_module *d = lt_nn_module_add_child(c, "d", lt_nn_module_new("D", NULL, NULL, NULL));
    lt_nn_module_add_param(d, "z", leaf_f64(3, 1));
    lt_nn_module_add_param(root, "e", leaf_f64(4, 1));
    return root;
}

START_TEST(module_views_follow_state_dict_order_and_dotted_names)
{
    FRAME_BEGIN;
    lt_nn_module *m = toy_tree();
    lt_nn_named_tensors sd, ps;
    ck_assert_int_eq(lt_nn_module_state_dict(m, &sd), 5);
    const char *want[] = {"a", "e", "b", "c.w", "c.d.z"};
    for (int i = 0; i < 5; i++)
        ck_assert_str_eq(sd.names[i], want[i]);
    ck_assert_int_eq(lt_nn_module_parameters(m, &ps), 4);
    ck_assert_str_eq(ps.names[2], "c.w");
    ck_assert_int_eq(lt_nn_module_param_count(m), 4);
    ck_assert_int_eq(lt_nn_module_param_numel(m), 2 + 1 + 3 + 1);
    const char *nm = NULL;
    ck_assert_ptr_eq(lt_nn_module_param_at(m, 3, &nm), lt_nn_module_get(m, "c.d.z"));
    ck_assert_str_eq(nm, "c.d.z");
    ck_assert_ptr_null(lt_nn_module_param_at(m, 4, NULL));
    /* the views hold the module's own tensors */
    ck_assert_ptr_eq(sd.tensors[3], lt_nn_module_get(m, "c.w"));
    ck_assert(lt_ag_requires_grad(sd.tensors[0]) && !lt_ag_requires_grad(sd.tensors[2]));
    /* lookups */
    ck_assert_ptr_eq(lt_nn_module_find(m, ""), m);
    ck_assert_str_eq(lt_nn_module_type(lt_nn_module_find(m, "c.d")), "D");
    ck_assert_ptr_eq(lt_nn_module_parent(lt_nn_module_find(m, "c.d")), lt_nn_module_find(m, "c"));
    ck_assert_ptr_null(lt_nn_module_find(m, "c.x"));
    ck_assert_ptr_null(lt_nn_module_get(m, "c.d.q"));
    ck_assert_ptr_nonnull(strstr(lt_last_error(), "c.d.q"));
    ck_assert(lt_nn_module_has(m, "b") && !lt_nn_module_has(m, "c"));
    ck_assert_int_eq(lt_nn_module_child_count(m), 1);
    ck_assert_ptr_eq(lt_nn_module_child_at(m, 0, &nm), lt_nn_module_find(m, "c"));
    ck_assert_str_eq(nm, "c");
    /* adding to a descendant refreshes the root's views */
    lt_nn_module_add_buffer(lt_nn_module_find(m, "c.d"), "running", lt_zeros(1, SH(2), LT_F64));
    ck_assert_int_eq(lt_nn_module_state_dict(m, &sd), 6);
    ck_assert_str_eq(sd.names[5], "c.d.running");
    ck_assert_int_eq(lt_nn_module_param_count(lt_nn_module_find(m, "c")), 2);
    lt_nn_module_free(m);
    FRAME_END;
}
END_TEST

START_TEST(module_rejects_bad_names_and_tensors_with_a_message)
{
    FRAME_BEGIN;
    lt_nn_module *m = toy_tree();
    ck_assert_ptr_null(lt_nn_module_add_param(m, "a", leaf_f64(0, 1)));
    ck_assert_ptr_nonnull(strstr(lt_last_error(), "already exists"));
    ck_assert_ptr_null(lt_nn_module_add_param(m, "c", leaf_f64(0, 1))); /* a child's name */
    ck_assert_ptr_null(lt_nn_module_add_param(m, "x.y", leaf_f64(0, 1)));
    ck_assert_ptr_null(lt_nn_module_add_param(m, "", leaf_f64(0, 1)));
    ck_assert_ptr_null(lt_nn_module_add_param(m, "i", lt_zeros(1, SH(2), LT_I64)));
    ck_assert_ptr_null(lt_nn_module_add_param(m, "t", lt_transpose(lt_zeros(2, SH(2, 3), LT_F64), 0, 1)));
    lt_tensor *p = lt_ag_set_requires_grad(leaf_f64(1, 2), true);
    ck_assert_ptr_null(lt_nn_module_add_param(m, "nl", lt_mul_scalar(p, 2.0))); /* not a leaf */
    ck_assert_ptr_null(lt_nn_module_add_buffer(m, "g", p));
    ck_assert_ptr_nonnull(strstr(lt_last_error(), "must not require grad"));
    /* a module that already has a parent is refused and stays with it */
    ck_assert_ptr_null(lt_nn_module_add_child(m, "again", lt_nn_module_find(m, "c.d")));
    ck_assert_ptr_nonnull(lt_nn_module_find(m, "c.d"));
    ck_assert_ptr_null(lt_nn_module_add_child(lt_nn_module_find(m, "c.d"), "loop", m)); /* no cycles */
    ck_assert_ptr_null(lt_nn_module_parent(m));
    /* a failed add_child frees the child (no leak: checked by the memory test) */
    ck_assert_ptr_null(lt_nn_module_add_child(m, "a", lt_nn_linear_new(2, 2, true, LT_F64, &(lt_rng){1, 0})));
    ck_assert_ptr_null(lt_nn_module_forward(m, p));
    ck_assert_ptr_nonnull(strstr(lt_last_error(), "no forward"));
    lt_nn_named_tensors sd;
    ck_assert_int_eq(lt_nn_module_state_dict(m, &sd), 5);
    lt_nn_module_free(m);
    FRAME_END;
}
END_TEST

static int record_path(void *ud, lt_nn_module *mod, const char *path)
{
    char *buf = ud;
    strcat(buf, "[");
    strcat(buf, path);
    strcat(buf, ":");
    strcat(buf, lt_nn_module_type(mod));
    strcat(buf, "]");
    return 0;
}

START_TEST(module_mode_zero_grad_and_apply_cover_the_whole_tree)
{
    FRAME_BEGIN;
    lt_nn_module *m = toy_tree();
    ck_assert(lt_nn_module_is_training(lt_nn_module_find(m, "c.d")));
    lt_nn_module_train(m, false);
    ck_assert(!lt_nn_module_is_training(m) && !lt_nn_module_is_training(lt_nn_module_find(m, "c.d")));
    lt_nn_module *n = lt_nn_module_add_child(m, "n", lt_nn_module_new("N", NULL, NULL, NULL));
    ck_assert(!lt_nn_module_is_training(n)); /* a new child takes its parent's mode */
    lt_nn_module_train(m, true);
    ck_assert(lt_nn_module_is_training(n));
    /* zero_grad drops every parameter's .grad */
    lt_nn_named_tensors ps;
    lt_nn_module_parameters(m, &ps);
    lt_tensor *loss = lt_zeros(0, NULL, LT_F64);
    for (int i = 0; i < ps.n; i++)
        loss = lt_add(loss, lt_sum(ps.tensors[i], 0, NULL, false));
    ck_assert_int_eq(lt_ag_backward(loss, NULL, false, false), 0);
    int with = 0;
    for (int i = 0; i < ps.n; i++)
        with += lt_ag_grad_of(ps.tensors[i]) != NULL;
    ck_assert_int_eq(with, 4);
    lt_nn_module_zero_grad(m);
    for (int i = 0; i < ps.n; i++)
        with -= lt_ag_grad_of(ps.tensors[i]) == NULL;
    ck_assert_int_eq(with, 0);
    char buf[256] = "";
    ck_assert_int_eq(lt_nn_module_apply(m, record_path, buf), 0);
    ck_assert_str_eq(buf, "[:Root][c:C][c.d:D][n:N]");
    lt_nn_module_free(m);
    FRAME_END;
}
END_TEST

START_TEST(freeing_a_module_releases_its_references)
{
    lt_frame_pop(0);
    lt_cache_trim();
    lt_mem_stats before = lt_mem_stats_get();
    lt_tensor *kept;
    {
        FRAME_BEGIN;
        lt_nn_module *m = toy_tree();
        lt_nn_named_tensors sd;
        lt_nn_module_state_dict(m, &sd);
        kept = lt_retain(lt_nn_module_get(m, "c.w")); /* a reference of our own outlives the module */
        lt_nn_module_add_child(m, "lin", lt_nn_linear_new(3, 2, true, LT_F32, &(lt_rng){5, 0}));
        lt_nn_module_add_child(m, "bn", lt_nn_batch_norm2d_new(3, LT_F32));
        FRAME_END;
        ck_assert_int_eq(lt_nn_module_param_count(m), 8);
        lt_nn_module_free(m);
    }
    ck_assert_double_eq(lt_item_at(kept, 2), 2.0);
    lt_release(kept);
    lt_frame_pop(0);
    lt_cache_trim();
    lt_mem_stats after = lt_mem_stats_get();
    ck_assert_uint_eq(after.live_tensors, before.live_tensors);
    ck_assert_uint_eq(after.live_blocks, before.live_blocks);
}
END_TEST

/* ---- layer modules ---- */

START_TEST(layer_modules_run_their_functional_op_on_their_parameters)
{
    FRAME_BEGIN;
    lt_rng r = lt_rng_new(41);
    lt_nn_module *lin = lt_nn_linear_new(4, 3, true, LT_F64, &r);
    lt_tensor *x = lt_rand_normal(&r, 2, SH(5, 4), 0, 1, LT_F64);
    lt_tensor *w = lt_nn_module_get(lin, "weight"), *b = lt_nn_module_get(lin, "bias");
    ck_assert_int_eq(lt_size(w, 0), 3);
    ck_assert_double_eq(lt_item(lt_amax(lt_abs(lt_sub(lt_nn_module_forward(lin, x), lt_nn_linear(x, w, b))), 0, NULL, false)), 0);
    lt_nn_module *conv = lt_nn_conv2d_new(3, 4, 3, 2, 1, false, LT_F64, &r);
    ck_assert(!lt_nn_module_has(conv, "bias"));
    lt_tensor *img = lt_rand_normal(&r, 4, SH(2, 3, 7, 7), 0, 1, LT_F64);
    lt_tensor *yc = lt_nn_module_forward(conv, img);
    ck_assert_int_eq(lt_size(yc, 2), 4);
    ck_assert_double_eq(lt_item(lt_amax(lt_abs(lt_sub(yc, lt_nn_conv2d(img, lt_nn_module_get(conv, "weight"), NULL, 2, 1, 1))), 0, NULL, false)), 0);
    /* a Sequential runs its children in order */
    lt_nn_module *seq = lt_nn_sequential_new();
    lt_nn_module_add_child(seq, "0", lt_nn_conv2d_new(3, 4, 3, 2, 1, false, LT_F64, &r));
    lt_nn_module_add_child(seq, "1", lt_nn_batch_norm2d_new(4, LT_F64));
    lt_tensor *ys = lt_nn_module_forward(seq, img);
    lt_tensor *ref = lt_nn_batch_norm(lt_nn_conv2d(img, lt_nn_module_get(seq, "0.weight"), NULL, 2, 1, 1), NULL, NULL,
                                      NULL, NULL, true, 0.1, 1e-5);
    ck_assert_double_le(lt_item(lt_amax(lt_abs(lt_sub(ys, ref)), 0, NULL, false)), 1e-12);
    /* the Attention module is lt_nn_mha on its qkv and proj */
    lt_nn_module *at = lt_nn_attention_new(6, 3, true, LT_F64, &r);
    lt_nn_named_tensors sd;
    ck_assert_int_eq(lt_nn_module_state_dict(at, &sd), 4);
    ck_assert_str_eq(sd.names[0], "qkv.weight");
    ck_assert_str_eq(sd.names[3], "proj.bias");
    lt_tensor *tok = lt_rand_normal(&r, 3, SH(2, 4, 6), 0, 1, LT_F64);
    lt_tensor *ya = lt_nn_module_forward(at, tok);
    lt_tensor *yf = lt_nn_mha(tok, sd.tensors[0], sd.tensors[1], sd.tensors[2], sd.tensors[3], 3);
    ck_assert_double_eq(lt_item(lt_amax(lt_abs(lt_sub(ya, yf)), 0, NULL, false)), 0);
    ck_assert_ptr_null(lt_nn_attention_new(6, 4, true, LT_F64, &r));
    lt_nn_module_free(lin);
    lt_nn_module_free(conv);
    lt_nn_module_free(seq);
    lt_nn_module_free(at);
    FRAME_END;
}
END_TEST

START_TEST(batch_norm2d_module_tracks_batches_in_training_only)
{
    FRAME_BEGIN;
    lt_rng r = lt_rng_new(43);
    lt_nn_module *bn = lt_nn_batch_norm2d_new(3, LT_F32);
    lt_nn_named_tensors sd;
    ck_assert_int_eq(lt_nn_module_state_dict(bn, &sd), 5);
    const char *want[] = {"weight", "bias", "running_mean", "running_var", "num_batches_tracked"};
    for (int i = 0; i < 5; i++)
        ck_assert_str_eq(sd.names[i], want[i]);
    ck_assert_int_eq(lt_ndim(sd.tensors[4]), 0);
    ck_assert_int_eq(lt_dtype_of(sd.tensors[4]), LT_I64);
    lt_tensor *x = lt_rand_normal(&r, 4, SH(4, 3, 5, 5), 2.0, 3.0, LT_F32);
    lt_nn_module_forward(bn, x);
    lt_nn_module_forward(bn, x);
    ck_assert_int_eq((int)lt_item(sd.tensors[4]), 2);
    double rm = lt_item_at(sd.tensors[2], 1), bm = lt_item_at(lt_mean(x, 3, (int[]){0, 2, 3}, false), 1);
    ck_assert_double_eq_tol(rm, (1 - 0.9 * 0.9) * bm, 1e-4); /* two momentum-0.1 steps from 0 */
    lt_nn_module_train(bn, false);
    lt_tensor *y = lt_nn_module_forward(bn, x);
    ck_assert_int_eq((int)lt_item(sd.tensors[4]), 2);
    ck_assert_double_eq(lt_item_at(sd.tensors[2], 1), rm);
    lt_tensor *ref = lt_nn_batch_norm(x, sd.tensors[2], sd.tensors[3], sd.tensors[0], sd.tensors[1], false, 0.1, 1e-5);
    ck_assert_double_eq(lt_item(lt_amax(lt_abs(lt_sub(y, ref)), 0, NULL, false)), 0);
    lt_nn_module *ln = lt_nn_layer_norm_new(5, 1e-6, LT_F64);
    ck_assert_int_eq(lt_nn_module_param_count(ln), 2);
    lt_nn_module_free(ln);
    lt_nn_module_free(bn);
    FRAME_END;
}
END_TEST

/* ---- init ---- */

START_TEST(initializers_match_torch_nn_init_statistics)
{
    FRAME_BEGIN;
    lt_rng r = lt_rng_new(51);
    int64_t fi, fo;
    lt_tensor *w = lt_zeros(4, SH(64, 32, 3, 3), LT_F32);
    ck_assert_int_eq(lt_nn_init_fans(w, &fi, &fo), 0);
    ck_assert_int_eq(fi, 32 * 9);
    ck_assert_int_eq(fo, 64 * 9);
    ck_assert_int_eq(lt_nn_init_kaiming_normal_(w, &r, true, sqrt(2.0)), 0);
    lt_tensor *w64 = lt_to_dtype(w, LT_F64);
    double std = sqrt(lt_item(lt_var(w64, 0, NULL, false, false)));
    ck_assert_double_eq_tol(std, sqrt(2.0 / (64 * 9)), 0.02 * sqrt(2.0 / (64 * 9)));
    /* trunc_normal: inside [a, b], with the truncated std */
    lt_tensor *t = lt_zeros(1, SH(20000), LT_F64);
    ck_assert_int_eq(lt_nn_init_trunc_normal_(t, &r, 0.0, 1.0, -1.0, 1.0), 0);
    ck_assert_double_le(lt_item(lt_amax(lt_abs(t), 0, NULL, false)), 1.0);
    /* var of N(0,1) truncated to [-1,1]: 1 - 2 phi(1) / (2 Phi(1) - 1) = 0.29112 */
    ck_assert_double_eq_tol(lt_item(lt_var(t, 0, NULL, false, false)), 0.29112, 0.01);
    /* torch's Linear default: |w|, |b| <= 1/sqrt(fan_in), uniform */
    lt_tensor *lw = lt_zeros(2, SH(100, 50), LT_F64), *lb = lt_zeros(1, SH(100), LT_F64);
    ck_assert_int_eq(lt_nn_init_torch_default_(lw, lb, &r), 0);
    double bound = 1 / sqrt(50.0);
    ck_assert_double_le(lt_item(lt_amax(lt_abs(lw), 0, NULL, false)), bound);
    ck_assert_double_le(lt_item(lt_amax(lt_abs(lb), 0, NULL, false)), bound);
    ck_assert_double_eq_tol(sqrt(lt_item(lt_var(lw, 0, NULL, false, false))), bound / sqrt(3.0), 0.03 * bound);
    ck_assert_int_eq(lt_nn_init_constant_(lb, 0.25), 0);
    ck_assert_double_eq(lt_item_at(lb, 99), 0.25);
    /* parameters (leaves requiring grad) are written in place, as under no_grad */
    lt_ag_set_requires_grad(lw, true);
    ck_assert_int_eq(lt_nn_init_normal_(lw, &r, 5.0, 0.0), 0);
    ck_assert_double_eq(lt_item_at(lw, 7), 5.0);
    /* errors */
    ck_assert_int_eq(lt_nn_init_normal_(lt_transpose(lt_zeros(2, SH(2, 3), LT_F64), 0, 1), &r, 0, 1), -1);
    ck_assert_int_eq(lt_nn_init_fans(lt_zeros(1, SH(3), LT_F64), &fi, &fo), -1);
    ck_assert_int_eq(lt_nn_init_trunc_normal_(t, &r, 0, 1, 2.0, 1.0), -1);
    FRAME_END;
}
END_TEST

int main(void)
{
    lt_set_num_threads(2);
    Suite *s = suite_create("nn");
    TCase *reg = tcase_create("registry");
    tcase_set_timeout(reg, 300);
    tcase_add_test(reg, every_nn_op_passes_gradcheck_f64);
    tcase_add_test(reg, every_nn_op_passes_gradgradcheck_f64);
    tcase_add_test(reg, every_op_with_a_backward_is_in_the_registry);
    suite_add_tcase(s, reg);
    TCase *fn = tcase_create("functional");
    tcase_set_timeout(fn, 60);
    tcase_add_test(fn, conv2d_matches_direct_convolution_for_stride_padding_dilation);
    tcase_add_test(fn, conv2d_winograd_f32_matches_f64_for_both_tile_sizes);
    tcase_add_test(fn, conv2d_winograd_vector_and_scalar_gathers_agree_bitwise);
    tcase_add_test(fn, conv2d_2x2_dense_gemms_match_f64_at_any_thread_count);
    tcase_add_test(fn, conv2d_window_gemms_match_f64_and_the_direct_convolution);
    tcase_add_test(fn, batch_norm_beta_gradient_is_the_upstream_sum_per_channel);
    tcase_add_test(fn, conv2d_gradients_with_images_in_parallel_match_and_do_not_depend_on_threads);
    tcase_add_test(fn, conv2d_f32_implicit_gemm_matches_f64_on_varied_geometries);
    tcase_add_test(fn, conv2d_f32_results_do_not_depend_on_the_thread_count);
    tcase_add_test(fn, conv2d_rejects_mismatched_shapes_with_a_message);
    tcase_add_test(fn, max_pool2d_matches_hand_values_and_routes_gradient_to_argmax);
    tcase_add_test(fn, max_pool2d_matches_naive_first_maximum_with_ties_inf_nan_and_padding);
    tcase_add_test(fn, avg_and_adaptive_pools_match_hand_values);
    tcase_add_test(fn, linear_is_x_w_transpose_plus_b);
    tcase_add_test(fn, cross_entropy_matches_hand_computation_with_label_smoothing);
    suite_add_tcase(s, fn);
    TCase *norm = tcase_create("norm");
    tcase_set_timeout(norm, 120);
    tcase_add_test(norm, batch_norm_training_normalizes_and_updates_running_stats_like_torch);
    tcase_add_test(norm, batch_norm_eval_uses_running_stats_and_affine);
    tcase_add_test(norm, batch_norm_act_training_is_bitwise_the_composed_ops);
    tcase_add_test(norm, batch_norm_training_results_do_not_depend_on_the_thread_count);
    tcase_add_test(norm, batch_norm_eval_fused_pass_equals_the_recorded_path_bitwise);
    tcase_add_test(norm, batch_norm_double_backward_fused_kernel_matches_the_composed_formulas);
    tcase_add_test(norm, batch_norm_training_passes_gradgradcheck_with_random_gamma_beta);
    tcase_add_test(norm, layer_norm_normalizes_last_dims);
    tcase_add_test(norm, dropout_scales_kept_values_and_is_identity_in_eval);
    tcase_add_test(norm, popping_the_frame_frees_conv_and_norm_graphs);
    suite_add_tcase(s, norm);
    TCase *attn = tcase_create("attention");
    tcase_set_timeout(attn, 60);
    tcase_add_test(attn, mha_matches_direct_attention_for_1_and_3_heads);
    suite_add_tcase(s, attn);
    TCase *mod = tcase_create("modules");
    tcase_set_timeout(mod, 60);
    tcase_add_test(mod, module_views_follow_state_dict_order_and_dotted_names);
    tcase_add_test(mod, module_rejects_bad_names_and_tensors_with_a_message);
    tcase_add_test(mod, module_mode_zero_grad_and_apply_cover_the_whole_tree);
    tcase_add_test(mod, freeing_a_module_releases_its_references);
    tcase_add_test(mod, layer_modules_run_their_functional_op_on_their_parameters);
    tcase_add_test(mod, batch_norm2d_module_tracks_batches_in_training_only);
    tcase_add_test(mod, initializers_match_torch_nn_init_statistics);
    suite_add_tcase(s, mod);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
