/*
 * test_rrr.c: RRR, GradMask, ActDiff, the adversarial baseline and RRDA,
 * against hand calculations on tiny inputs and finite differences.
 */
#include <check.h>
#include <math.h>
#include <string.h>

#include <libtensor/autograd.h>
#include <libtensor/rrr.h>
#include <libtensor/tensor.h>

#define SH(...) (int64_t[]){__VA_ARGS__}

/* ---- tiny models ---- */

/* Linear: z = flatten(x) W^T, features = flatten(x). */
typedef struct lin {
    lt_tensor *W; /* (K, D) */
} lin;

static lt_tensor *lin_forward(void *ctx, const lt_tensor *x, lt_tensor **feat)
{
    lin *m = ctx;
    lt_tensor *f = lt_reshape(x, 2, SH(lt_size(x, 0), -1));
    if (feat)
        *feat = f;
    return lt_matmul(f, lt_transpose(m->W, 0, 1));
}

/* MLP: h = tanh(flatten(x) W1^T + b1) (features), z = h W2^T + b2. */
typedef struct mlp {
    lt_tensor *p[4];
} mlp;

static lt_tensor *mlp_forward(void *ctx, const lt_tensor *x, lt_tensor **feat)
{
    mlp *m = ctx;
    lt_tensor *f = lt_reshape(x, 2, SH(lt_size(x, 0), -1));
    lt_tensor *h = lt_tanh(lt_add(lt_matmul(f, lt_transpose(m->p[0], 0, 1)), m->p[1]));
    if (feat)
        *feat = h;
    return lt_add(lt_matmul(h, lt_transpose(m->p[2], 0, 1)), m->p[3]);
}

static lt_tensor *mask_from(const uint8_t *v, int64_t n, int64_t h, int64_t w)
{
    return lt_from_data(v, 4, SH(n, 1, h, w), LT_U8);
}

/* ---- hand-checked values ---- */

/* z = W x with x = (a, b) (one image 1x1x2), K = 2:
 * d(sum_k log p_k)/dz = 1 - K p, so dx = W^T (1 - 2p). With A = (0, 1) the
 * penalty is (dx_1)^2. */
START_TEST(rrr_penalty_of_a_linear_model_matches_hand_calculation)
{
    size_t m0 = lt_frame_push();
    double w[4] = {0.5, -1.0, 2.0, 0.25}, xv[2] = {0.3, -0.7};
    lin L = {lt_from_data(w, 2, SH(2, 2), LT_F64)};
    lt_rrr_model model = {&L, lin_forward, NULL};
    lt_tensor *x = lt_from_data(xv, 4, SH(1, 1, 1, 2), LT_F64);
    lt_tensor *mk = mask_from((uint8_t[]){1, 0}, 1, 1, 2);
    lt_tensor *logits;
    lt_tensor *pen = lt_rrr_rrr_penalty(&model, x, mk, &logits);
    ck_assert_msg(pen != NULL, "%s", lt_last_error());
    double z0 = w[0] * xv[0] + w[1] * xv[1], z1 = w[2] * xv[0] + w[3] * xv[1];
    double p0 = exp(z0) / (exp(z0) + exp(z1)), p1 = 1 - p0;
    double g0 = 1 - 2 * p0, g1 = 1 - 2 * p1;
    double dx1 = w[1] * g0 + w[3] * g1;
    ck_assert_double_eq_tol(lt_item(pen), dx1 * dx1, 1e-12);
    ck_assert_double_eq_tol(lt_item_at(logits, 0), z0, 1e-12);
    lt_frame_pop(m0);
}
END_TEST

/* GradMask with K = 2: s = z_y - z_other, ds/dx = W_y - W_other. */
START_TEST(gradmask_penalty_of_a_linear_model_matches_hand_calculation)
{
    size_t m0 = lt_frame_push();
    double w[6] = {0.5, -1.0, 2.0, 0.25, 1.0, 3.0}, xv[4] = {0.3, -0.7, 1.0, 2.0};
    lin L = {lt_from_data(w, 2, SH(3, 2), LT_F64)};
    lt_rrr_model model = {&L, lin_forward, NULL};
    lt_tensor *x = lt_from_data(xv, 4, SH(2, 1, 1, 2), LT_F64);
    lt_tensor *mk = mask_from((uint8_t[]){1, 0, 0, 0}, 2, 1, 2);
    int64_t yv[2] = {0, 2};
    lt_tensor *y = lt_from_data(yv, 1, SH(2), LT_I64);
    lt_tensor *pen = lt_rrr_gradmask_penalty(&model, x, mk, y, NULL);
    ck_assert_msg(pen != NULL, "%s", lt_last_error());
    /* sample 0: y = 0; z = (0.85, 0.425, -1.8): runner-up class 1.
     * ds/dx = W0 - W1 = (-1.5, -1.25); A = (0, 1) -> |-1.25| */
    /* sample 1: y = 2; z = (-1.5, 2.5, 7): runner-up class 1.
     * ds/dx = W2 - W1 = (-1, 2.75); A = (1, 1) -> 1 + 2.75 */
    ck_assert_double_eq_tol(lt_item(pen), (1.25 + 3.75) / 2.0, 1e-12);
    lt_frame_pop(m0);
}
END_TEST

/* ActDiff (mask mode) with identity features: f(x M) - f(x) = -x A. */
START_TEST(actdiff_penalty_with_identity_features_is_background_norm)
{
    size_t m0 = lt_frame_push();
    double w[4] = {1, 0, 0, 1}, xv[4] = {3.0, 4.0, 1.0, 2.0};
    lin L = {lt_from_data(w, 2, SH(2, 2), LT_F64)};
    lt_rrr_model model = {&L, lin_forward, NULL};
    lt_tensor *x = lt_from_data(xv, 4, SH(2, 1, 1, 2), LT_F64);
    lt_tensor *mk = mask_from((uint8_t[]){0, 0, 1, 0}, 2, 1, 2);
    lt_tensor *pen = lt_rrr_actdiff_penalty(&model, x, mk, LT_RRR_ACTDIFF_MASK, NULL, NULL);
    ck_assert_msg(pen != NULL, "%s", lt_last_error());
    ck_assert_double_eq_tol(lt_item(pen), (5.0 + 2.0) / 2.0, 1e-9);
    lt_frame_pop(m0);
}
END_TEST

START_TEST(actdiff_shuffle_permutes_only_background_pixels)
{
    size_t m0 = lt_frame_push();
    lt_rng r = lt_rng_new(5);
    lt_tensor *x = lt_reshape(lt_arange(0, 2 * 3 * 4 * 4, 1, LT_F32), 4, SH(2, 3, 4, 4));
    uint8_t mv[32] = {0};
    for (int i = 5; i < 11; i++)
        mv[i] = 1;
    lt_tensor *mk = mask_from(mv, 2, 4, 4);
    lt_tensor *xt = lt_rrr_actdiff_input(x, mk, LT_RRR_ACTDIFF_SHUFFLE, &r);
    ck_assert_ptr_nonnull(xt);
    int moved = 0;
    for (int n = 0; n < 2; n++)
        for (int c = 0; c < 3; c++) {
            double sum_in = 0, sum_out = 0;
            for (int p = 0; p < 16; p++) {
                int64_t k = ((n * 3 + c) * 16) + p;
                if (mv[n * 16 + p]) /* object pixels untouched */
                    ck_assert_double_eq(lt_item_at(xt, k), lt_item_at(x, k));
                else {
                    sum_in += lt_item_at(x, k);
                    sum_out += lt_item_at(xt, k);
                    moved += lt_item_at(xt, k) != lt_item_at(x, k);
                }
            }
            ck_assert_double_eq(sum_in, sum_out); /* a permutation of the same pixels */
        }
    ck_assert_int_gt(moved, 10);
    lt_frame_pop(m0);
}
END_TEST

START_TEST(bce_with_logits_matches_hand_values)
{
    size_t m0 = lt_frame_push();
    lt_tensor *z = lt_from_data((double[]){0.0, 2.0, -3.0}, 1, SH(3), LT_F64);
    lt_tensor *t = lt_from_data((double[]){1.0, 0.0, 1.0}, 1, SH(3), LT_F64);
    double want = (log(2.0) + (2.0 + log1p(exp(-2.0))) + log1p(exp(-3.0)) + 3.0) / 3.0;
    ck_assert_double_eq_tol(lt_item(lt_rrr_bce_with_logits(z, t)), want, 1e-12);
    lt_frame_pop(m0);
}
END_TEST

/* ---- gradients of every penalty w.r.t. the parameters, by gradcheck ---- */

typedef struct pen_case {
    int which; /* 0 rrr, 1 gradmask, 2 actdiff, 3 adversarial encoder */
    lt_tensor *x, *mask, *y;
    lt_rrr_disc *disc;
} pen_case;

static lt_tensor *penalty_of_params(void *ud, int n, lt_tensor *const *p)
{
    pen_case *c = ud;
    mlp M = {{p[0], p[1], p[2], p[3]}};
    (void)n;
    lt_rrr_model model = {&M, mlp_forward, NULL};
    lt_rng r = lt_rng_new(1);
    switch (c->which) {
    case 0: return lt_rrr_rrr_penalty(&model, c->x, c->mask, NULL);
    case 1: return lt_rrr_gradmask_penalty(&model, c->x, c->mask, c->y, NULL);
    case 2: return lt_rrr_actdiff_penalty(&model, c->x, c->mask, LT_RRR_ACTDIFF_SHUFFLE, &r, NULL);
    default: {
        lt_tensor *dl, *ep;
        return lt_rrr_adversarial_losses(&model, c->disc, c->x, c->mask, &dl, &ep, NULL) == 0 ? ep : NULL;
    }
    }
}

START_TEST(every_penalty_gradient_passes_gradcheck_on_a_tiny_mlp)
{
    size_t m0 = lt_frame_push();
    lt_rng r = lt_rng_new(21);
    int64_t D = 2 * 2 * 3, H = 5, K = 3;
    lt_tensor *p[4] = {
        lt_rand_normal(&r, 2, SH(H, D), 0, 0.5, LT_F64),
        lt_rand_normal(&r, 1, SH(H), 0, 0.5, LT_F64),
        lt_rand_normal(&r, 2, SH(K, H), 0, 0.5, LT_F64),
        lt_rand_normal(&r, 1, SH(K), 0, 0.5, LT_F64),
    };
    for (int i = 0; i < 4; i++)
        lt_ag_set_requires_grad(p[i], true);
    lt_rrr_disc disc;
    ck_assert_int_eq(lt_rrr_disc_init(&disc, H, 4, LT_F64, &r), 0);
    pen_case c = {
        .x = lt_rand_normal(&r, 4, SH(2, 2, 2, 3), 0, 1, LT_F64),
        .mask = lt_rand_bernoulli(&r, 4, SH(2, 1, 2, 3), 0.5, LT_U8),
        .y = lt_from_data((int64_t[]){2, 0}, 1, SH(2), LT_I64),
        .disc = &disc,
    };
    static const char *names[] = {"rrr", "gradmask", "actdiff", "adversarial"};
    for (int w = 0; w < 4; w++) {
        c.which = w;
        lt_ag_check_opts o = lt_ag_check_defaults(names[w]);
        ck_assert_msg(lt_ag_gradcheck(penalty_of_params, &c, 4, p, &o) == 0, "%s", lt_last_error());
    }
    lt_rrr_disc_free(&disc);
    lt_frame_pop(m0);
}
END_TEST

START_TEST(discriminator_loss_reaches_only_the_discriminator)
{
    size_t m0 = lt_frame_push();
    lt_rng r = lt_rng_new(3);
    lt_tensor *p[4] = {
        lt_rand_normal(&r, 2, SH(4, 4), 0, 0.5, LT_F32), lt_rand_normal(&r, 1, SH(4), 0, 0.5, LT_F32),
        lt_rand_normal(&r, 2, SH(2, 4), 0, 0.5, LT_F32), lt_rand_normal(&r, 1, SH(2), 0, 0.5, LT_F32),
    };
    for (int i = 0; i < 4; i++)
        lt_ag_set_requires_grad(p[i], true);
    mlp M = {{p[0], p[1], p[2], p[3]}};
    lt_rrr_model model = {&M, mlp_forward, NULL};
    lt_rrr_disc d;
    ck_assert_int_eq(lt_rrr_disc_init(&d, 4, 3, LT_F32, &r), 0);
    lt_tensor *x = lt_rand_normal(&r, 4, SH(3, 1, 2, 2), 0, 1, LT_F32);
    lt_tensor *mk = lt_rand_bernoulli(&r, 4, SH(3, 1, 2, 2), 0.5, LT_U8);
    lt_tensor *dl, *ep;
    ck_assert_int_eq(lt_rrr_adversarial_losses(&model, &d, x, mk, &dl, &ep, NULL), 0);
    ck_assert_int_eq(lt_ag_backward(dl, NULL, false, false), 0);
    ck_assert_ptr_nonnull(lt_ag_grad_of(d.w1));
    for (int i = 0; i < 4; i++)
        ck_assert_ptr_null(lt_ag_grad_of(p[i]));
    lt_rrr_disc_free(&d);
    lt_frame_pop(m0);
}
END_TEST

START_TEST(bad_masks_and_shapes_are_refused_with_a_message)
{
    size_t m0 = lt_frame_push();
    lin L = {lt_ones(2, SH(2, 4), LT_F64)};
    lt_rrr_model model = {&L, lin_forward, NULL};
    lt_tensor *x = lt_ones(4, SH(1, 1, 2, 2), LT_F64);
    ck_assert_ptr_null(lt_rrr_rrr_penalty(&model, x, lt_ones(4, SH(1, 1, 3, 2), LT_U8), NULL));
    ck_assert_ptr_nonnull(strstr(lt_last_error(), "rrr_penalty"));
    ck_assert_ptr_null(lt_rrr_rrr_penalty(&model, x, lt_ones(4, SH(1, 1, 2, 2), LT_F32), NULL));
    ck_assert_ptr_nonnull(strstr(lt_last_error(), "u8"));
    lt_frame_pop(m0);
}
END_TEST

/* ---- RRDA ---- */

/* Image i: background value i+1, object value 100+i, object a 2x2 square
 * at a per-image position in a 6x6 image, 2 channels. */
static void rrda_batch(int n, lt_tensor **x, lt_tensor **mk, lt_tensor **y, const int64_t *labels)
{
    double xv[8 * 2 * 36];
    uint8_t mv[8 * 36];
    for (int i = 0; i < n; i++) {
        int r0 = i % 4, c0 = (i * 3) % 4;
        for (int p = 0; p < 36; p++) {
            int h = p / 6, w = p % 6;
            bool obj = h >= r0 && h < r0 + 2 && w >= c0 && w < c0 + 2;
            mv[i * 36 + p] = obj;
            for (int c = 0; c < 2; c++)
                xv[(i * 2 + c) * 36 + p] = obj ? 100 + i : i + 1;
        }
    }
    *x = lt_from_data(xv, 4, SH(n, 2, 6, 6), LT_F64);
    *mk = lt_from_data(mv, 4, SH(n, 1, 6, 6), LT_U8);
    *y = lt_from_data(labels, 1, SH(n), LT_I64);
}

START_TEST(rrda_keeps_the_object_and_replaces_the_whole_background)
{
    size_t m0 = lt_frame_push();
    lt_tensor *x, *mk, *y, *xo, *yo, *mo;
    int64_t labels[6] = {0, 0, 1, 1, 2, 2};
    rrda_batch(6, &x, &mk, &y, labels);
    lt_rng r = lt_rng_new(9);
    int64_t partner[6];
    ck_assert_int_eq(lt_rrr_rrda_partners(y, &r, partner), 0);
    r = lt_rng_new(9);
    ck_assert_int_eq(lt_rrr_rrda_apply(x, y, mk, LT_RRR_RRDA_REPLACE, 1.0, &r, &xo, &yo, &mo), 0);
    int bad = 0;
    for (int i = 0; i < 6; i++) {
        int j = (int)partner[i];
        ck_assert_int_ne(j, i);
        ck_assert_int_ne(labels[j], labels[i]); /* context from another class */
        ck_assert_int_eq((int)partner[j], i);   /* pairs: new_left and new_right */
        ck_assert_int_eq((int)lt_item_at(yo, i), (int)labels[i]); /* label follows the object */
        for (int c = 0; c < 2; c++)
            for (int p = 0; p < 36; p++) {
                double v = lt_item_at(xo, (i * 2 + c) * 36 + p);
                if (lt_item_at(mk, i * 36 + p))
                    bad += v != 100 + i;  /* foreground unchanged */
                else
                    bad += v != j + 1;    /* partner's background only: no own
                                           * background, no partner object */
            }
        for (int p = 0; p < 36; p++)
            bad += lt_item_at(mo, i * 36 + p) != lt_item_at(mk, i * 36 + p);
    }
    ck_assert_int_eq(bad, 0);
    lt_frame_pop(m0);
}
END_TEST

START_TEST(rrda_append_doubles_the_batch_and_is_deterministic_for_a_seed)
{
    size_t m0 = lt_frame_push();
    lt_tensor *x, *mk, *y, *a[3], *b[3];
    int64_t labels[5] = {0, 1, 2, 0, 1};
    rrda_batch(5, &x, &mk, &y, labels);
    lt_rng r1 = lt_rng_new(4), r2 = lt_rng_new(4);
    ck_assert_int_eq(lt_rrr_rrda_apply(x, y, mk, LT_RRR_RRDA_APPEND, 0.0, &r1, &a[0], &a[1], &a[2]), 0);
    ck_assert_int_eq(lt_rrr_rrda_apply(x, y, mk, LT_RRR_RRDA_APPEND, 0.0, &r2, &b[0], &b[1], &b[2]), 0);
    ck_assert_int_eq(lt_size(a[0], 0), 10);
    ck_assert_int_eq(lt_size(a[1], 0), 10);
    ck_assert_int_eq(memcmp(lt_data(a[0]), lt_data(b[0]), 10 * 2 * 36 * sizeof(double)), 0);
    /* the first half is the original batch */
    ck_assert_int_eq(memcmp(lt_data(a[0]), lt_data(x), 5 * 2 * 36 * sizeof(double)), 0);
    /* replace mode with p = 0 changes nothing */
    lt_tensor *c[3];
    ck_assert_int_eq(lt_rrr_rrda_apply(x, y, mk, LT_RRR_RRDA_REPLACE, 0.0, &r1, &c[0], &c[1], &c[2]), 0);
    ck_assert_int_eq(memcmp(lt_data(c[0]), lt_data(x), 5 * 2 * 36 * sizeof(double)), 0);
    lt_frame_pop(m0);
}
END_TEST

/* A 4x4 image whose object covers rows 1-2, columns 1-2: the largest free
 * strip is row 3 or column 3... rows 0 and 3 are free but not adjacent, so
 * the longest run of free rows is 1 (row 0) against columns 0 and 3 (1):
 * rows win the tie; the hole takes row 0's pixels, tiled from row 0. */
START_TEST(rrda_background_fills_the_hole_from_the_largest_free_strip)
{
    size_t m0 = lt_frame_push();
    double xv[16];
    for (int i = 0; i < 16; i++)
        xv[i] = i;
    uint8_t mv[16] = {0, 0, 0, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0};
    lt_tensor *x = lt_from_data(xv, 4, SH(1, 1, 4, 4), LT_F64);
    lt_tensor *bg = lt_rrr_rrda_background(x, mask_from(mv, 1, 4, 4), 0);
    ck_assert_ptr_nonnull(bg);
    /* hole pixels (1,1),(1,2),(2,1),(2,2) come from row 0: values 1, 2 */
    ck_assert_double_eq(lt_item_at(bg, 5), 1);
    ck_assert_double_eq(lt_item_at(bg, 6), 2);
    ck_assert_double_eq(lt_item_at(bg, 9), 1);
    ck_assert_double_eq(lt_item_at(bg, 10), 2);
    ck_assert_double_eq(lt_item_at(bg, 15), 15); /* background untouched */
    /* an object in the top rows: the free strip is rows 2..3 */
    uint8_t mv2[16] = {1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    lt_tensor *bg2 = lt_rrr_rrda_background(x, mask_from(mv2, 1, 4, 4), 0);
    /* rows 2..3 free (area 8) vs columns 2..3 free (area 8): rows win;
     * row 0 maps to row 2 + ((0 - 2) mod 2) = 2, row 1 to 3 */
    ck_assert_double_eq(lt_item_at(bg2, 0), 8);
    ck_assert_double_eq(lt_item_at(bg2, 5), 13);
    lt_frame_pop(m0);
}
END_TEST


/* ---- attributions ---- */

START_TEST(saliency_equals_the_gradient_computed_directly)
{
    size_t m0 = lt_frame_push();
    double w[6] = {0.5, -1.0, 2.0, 0.25, -3.0, 1.5};
    lin L = {lt_from_data(w, 2, SH(3, 2), LT_F64)};
    lt_rrr_model model = {&L, lin_forward, NULL};
    lt_tensor *x = lt_from_data((double[]){0.1, 0.2, 0.3, 0.4}, 4, SH(2, 1, 1, 2), LT_F64);
    lt_tensor *t = lt_from_data((int64_t[]){2, 0}, 1, SH(2), LT_I64);
    lt_tensor *sal = lt_rrr_saliency(&model, x, t, false), *sg = lt_rrr_saliency(&model, x, t, true);
    ck_assert_ptr_nonnull(sal);
    /* d z_t / dx = W[t] for a linear model */
    ck_assert_double_eq(lt_item_at(sg, 0), -3.0);
    ck_assert_double_eq(lt_item_at(sg, 1), 1.5);
    ck_assert_double_eq(lt_item_at(sg, 2), 0.5);
    ck_assert_double_eq(lt_item_at(sg, 3), -1.0);
    ck_assert_double_eq(lt_item_at(sal, 0), 3.0);
    ck_assert_double_eq(lt_item_at(sal, 3), 1.0);
    lt_frame_pop(m0);
}
END_TEST

START_TEST(integrated_gradients_satisfy_completeness_within_one_percent)
{
    size_t m0 = lt_frame_push();
    lt_rng r = lt_rng_new(8);
    mlp M = {{lt_rand_normal(&r, 2, SH(6, 8), 0, 0.7, LT_F64), lt_rand_normal(&r, 1, SH(6), 0, 0.5, LT_F64),
              lt_rand_normal(&r, 2, SH(3, 6), 0, 0.7, LT_F64), lt_rand_normal(&r, 1, SH(3), 0, 0.5, LT_F64)}};
    lt_rrr_model model = {&M, mlp_forward, NULL};
    lt_tensor *x = lt_rand_normal(&r, 4, SH(2, 2, 2, 2), 0, 1, LT_F64);
    lt_tensor *t = lt_from_data((int64_t[]){1, 2}, 1, SH(2), LT_I64);
    lt_tensor *z = mlp_forward(&M, x, NULL), *z0 = mlp_forward(&M, lt_zeros_like(x), NULL);
    static const lt_rrr_ig_method methods[] = {LT_RRR_IG_GAUSS_LEGENDRE, LT_RRR_IG_RIEMANN_TRAPEZOID,
                                               LT_RRR_IG_RIEMANN_MIDDLE};
    for (int k = 0; k < 3; k++) {
        lt_tensor *ig = lt_rrr_integrated_gradients(&model, x, NULL, t, 50, methods[k]);
        ck_assert_msg(ig != NULL, "%s", lt_last_error());
        for (int n = 0; n < 2; n++) {
            double sum = 0;
            for (int i = 0; i < 8; i++)
                sum += lt_item_at(ig, n * 8 + i);
            int64_t c = n == 0 ? 1 : 2;
            double want = lt_item_at(z, n * 3 + c) - lt_item_at(z0, n * 3 + c);
            ck_assert_msg(fabs(sum - want) <= 0.01 * fabs(want), "method %d sample %d: sum %g vs f(x)-f(0) %g", k,
                          n, sum, want);
        }
    }
    double a[50], w[50], tot = 0;
    ck_assert_int_eq(lt_rrr_ig_nodes(LT_RRR_IG_GAUSS_LEGENDRE, 50, a, w), 0);
    for (int i = 0; i < 50; i++)
        tot += w[i];
    ck_assert_double_eq_tol(tot, 1.0, 1e-12);
    ck_assert(a[0] > 0 && a[49] < 1 && a[0] < a[1]);
    lt_frame_pop(m0);
}
END_TEST

/* Grad-CAM on a hand-built network: A = x (2 channels), z = mean_hw(A) V^T.
 * dz_c/dA_k = V[c,k]/(hw), so cam = sum_k V[c,k]/(hw) x_k. */
typedef struct camnet {
    lt_tensor *V;
} camnet;

static lt_tensor *camnet_forward(void *ctx, const lt_tensor *x, lt_tensor **act)
{
    camnet *c = ctx;
    lt_tensor *A = lt_mul_scalar(x, 1.0);
    if (act)
        *act = A;
    return lt_matmul(lt_mean(A, 2, (int[]){2, 3}, false), lt_transpose(c->V, 0, 1));
}

static lt_tensor *camnet_logits(void *ctx, const lt_tensor *x, lt_tensor **feat)
{
    return camnet_forward(ctx, x, feat);
}

START_TEST(gradcam_on_a_hand_built_net_equals_hand_calculation)
{
    size_t m0 = lt_frame_push();
    camnet net = {lt_from_data((double[]){1.0, -2.0, 0.5, 3.0}, 2, SH(2, 2), LT_F64)};
    lt_rrr_model model = {&net, camnet_logits, camnet_forward};
    double xv[8] = {1, 2, 3, 4, -1, 0, 2, 1};
    lt_tensor *x = lt_from_data(xv, 4, SH(1, 2, 2, 2), LT_F64);
    lt_tensor *t = lt_from_data((int64_t[]){0}, 1, SH(1), LT_I64);
    lt_tensor *cam = lt_rrr_gradcam(&model, x, t, false, false);
    ck_assert_msg(cam != NULL, "%s", lt_last_error());
    for (int p = 0; p < 4; p++)
        ck_assert_double_eq_tol(lt_item_at(cam, p), (1.0 * xv[p] - 2.0 * xv[4 + p]) / 4.0, 1e-12);
    lt_tensor *camr = lt_rrr_gradcam(&model, x, t, true, false);
    for (int p = 0; p < 4; p++)
        ck_assert_double_eq_tol(lt_item_at(camr, p), fmax(0.0, (xv[p] - 2.0 * xv[4 + p]) / 4.0), 1e-12);
    lt_tensor *up = lt_rrr_gradcam(&model, x, t, false, true);
    ck_assert_int_eq(lt_size(up, 2), 2);
    /* without forward_cam Grad-CAM is refused */
    lt_rrr_model nocam = {&net, camnet_logits, NULL};
    ck_assert_ptr_null(lt_rrr_gradcam(&nocam, x, t, true, true));
    ck_assert_ptr_nonnull(strstr(lt_last_error(), "forward_cam"));
    lt_frame_pop(m0);
}
END_TEST

START_TEST(bilinear_resize_matches_torch_align_corners_false)
{
    size_t m0 = lt_frame_push();
    lt_tensor *t = lt_from_data((double[]){0.0, 4.0, 8.0, 12.0}, 4, SH(1, 1, 2, 2), LT_F64);
    lt_tensor *u = lt_rrr_resize_bilinear(t, 4, 4);
    /* first row: [0, 1, 3, 4] (src x = -0.25 -> 0, 0.25, 0.75, 1.25 -> 1) */
    double row0[4] = {0, 1, 3, 4}, col0[4] = {0, 2, 6, 8};
    for (int i = 0; i < 4; i++) {
        ck_assert_double_eq_tol(lt_item_at(u, i), row0[i], 1e-12);
        ck_assert_double_eq_tol(lt_item_at(u, i * 4), col0[i], 1e-12);
    }
    lt_frame_pop(m0);
}
END_TEST

START_TEST(snr_is_mean_foreground_over_mean_background)
{
    size_t m0 = lt_frame_push();
    /* 2 channels, 2x2; fg = pixel 0; |a| fg = {2, 4} -> 3; bg = {1,1,1, 3,3,3} -> 2 */
    double av[8] = {2, -1, 1, 1, -4, 3, -3, 3};
    lt_tensor *a = lt_from_data(av, 4, SH(1, 2, 2, 2), LT_F64);
    lt_tensor *snr = lt_rrr_snr(a, mask_from((uint8_t[]){1, 0, 0, 0}, 1, 2, 2));
    ck_assert_double_eq_tol(lt_item_at(snr, 0), 1.5, 1e-12);
    lt_tensor *none = lt_rrr_snr(a, mask_from((uint8_t[]){0, 0, 0, 0}, 1, 2, 2));
    ck_assert(isnan(lt_item_at(none, 0)));
    lt_tensor *red = lt_rrr_reduce_channels(a, LT_RRR_CHANNELS_MAX_ABS);
    ck_assert_double_eq(lt_item_at(red, 0), 4);
    ck_assert_double_eq(lt_item_at(red, 1), 3);
    lt_frame_pop(m0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("rrr");
    TCase *tc = tcase_create("losses");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, rrr_penalty_of_a_linear_model_matches_hand_calculation);
    tcase_add_test(tc, gradmask_penalty_of_a_linear_model_matches_hand_calculation);
    tcase_add_test(tc, actdiff_penalty_with_identity_features_is_background_norm);
    tcase_add_test(tc, actdiff_shuffle_permutes_only_background_pixels);
    tcase_add_test(tc, bce_with_logits_matches_hand_values);
    tcase_add_test(tc, every_penalty_gradient_passes_gradcheck_on_a_tiny_mlp);
    tcase_add_test(tc, discriminator_loss_reaches_only_the_discriminator);
    tcase_add_test(tc, bad_masks_and_shapes_are_refused_with_a_message);
    suite_add_tcase(s, tc);
    TCase *rd = tcase_create("rrda");
    tcase_add_test(rd, rrda_keeps_the_object_and_replaces_the_whole_background);
    tcase_add_test(rd, rrda_append_doubles_the_batch_and_is_deterministic_for_a_seed);
    tcase_add_test(rd, rrda_background_fills_the_hole_from_the_largest_free_strip);
    suite_add_tcase(s, rd);
    TCase *at = tcase_create("attributions");
    tcase_set_timeout(at, 120);
    tcase_add_test(at, saliency_equals_the_gradient_computed_directly);
    tcase_add_test(at, integrated_gradients_satisfy_completeness_within_one_percent);
    tcase_add_test(at, gradcam_on_a_hand_built_net_equals_hand_calculation);
    tcase_add_test(at, bilinear_resize_matches_torch_align_corners_false);
    tcase_add_test(at, snr_is_mean_foreground_over_mean_background);
    suite_add_tcase(s, at);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
