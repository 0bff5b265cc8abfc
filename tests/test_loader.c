/*
 * test_loader.c: Check suite for data/'s transforms, edge removal and the
 * batch loader.
 *
 * Runs from the repository root. Files go to a mkdtemp directory that is
 * removed afterwards (only what is inside it). Expected values come from
 * PIL (tests/fixtures/make_resize_reference.py), from hand calculation
 * (crop boxes, bands), or from identities (same seed, same bytes).
 */
#include <libtensor/data.h>
#include <libtensor/tensor.h>

#include <check.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

static char tmp_dir[256];

static void tmp_setup(void)
{
    snprintf(tmp_dir, sizeof tmp_dir, "%s/lt_loader_XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmp_dir)) {
        perror("mkdtemp");
        abort();
    }
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Removes tmp_dir and what is inside it, nothing else (FTW_PHYS: links
 * are removed, never followed). */
static void tmp_teardown(void)
{
    if (strncmp(tmp_dir, "/", 1) == 0 && strstr(tmp_dir, "/lt_loader_"))
        nftw(tmp_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static char *tmp_path(char *buf, size_t n, const char *name)
{
    snprintf(buf, n, "%s/%s", tmp_dir, name);
    return buf;
}

static void mkdirs(const char *rel)
{
    char p[512];
    tmp_path(p, sizeof p, rel);
    for (char *s = p + strlen(tmp_dir) + 1; *s; s++) {
        if (*s == '/') {
            *s = '\0';
            mkdir(p, 0755);
            *s = '/';
        }
    }
    mkdir(p, 0755);
}

#define ck_assert_error_has(text)                                                            \
    do {                                                                                     \
        ck_assert_msg(strstr(lt_last_error(), (text)) != NULL,                               \
                      "error \"%s\" does not say \"%s\"", lt_last_error(), (text));         \
    } while (0)

static void assert_shape(const lt_tensor *t, int nd, const int64_t *shape)
{
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(lt_ndim(t), nd);
    for (int i = 0; i < nd; i++)
        ck_assert_int_eq(lt_shape(t)[i], shape[i]);
}

/* A (3,H,W) u8 image, 0 except a square of 200 at rows y0..y0+s-1,
 * columns x0..x0+s-1, and its (1,H,W) mask. */
static void square_pair(int64_t h, int64_t w, int64_t y0, int64_t x0, int64_t s, lt_tensor **img,
                        lt_tensor **mask)
{
    *img = lt_zeros(3, (int64_t[]){3, h, w}, LT_U8);
    *mask = lt_zeros(3, (int64_t[]){1, h, w}, LT_U8);
    uint8_t *p = lt_data(*img), *m = lt_data(*mask);
    for (int64_t y = y0; y < y0 + s; y++)
        for (int64_t x = x0; x < x0 + s; x++) {
            for (int c = 0; c < 3; c++)
                p[(c * h + y) * w + x] = 200;
            m[y * w + x] = 1;
        }
}

/* Pixels where (image channel c >= thr) differs from (mask != 0), for an
 * f32 or u8 image; thr on the image's own scale. */
static int64_t misaligned(const lt_tensor *img, const lt_tensor *mask, double thr)
{
    int64_t c = lt_size(img, 0), h = lt_size(img, 1), w = lt_size(img, 2), bad = 0;
    for (int64_t k = 0; k < c; k++)
        for (int64_t p = 0; p < h * w; p++) {
            bool on = lt_item_at(img, k * h * w + p) >= thr;
            bool m = lt_item_at(mask, p) != 0;
            bad += on != m;
        }
    return bad;
}

/* Count of mask pixels, and the bounding box of the 1s. */
static int64_t mask_box(const lt_tensor *mask, int64_t box[4])
{
    int64_t h = lt_size(mask, 1), w = lt_size(mask, 2), n = 0;
    box[0] = h, box[1] = w, box[2] = -1, box[3] = -1;
    const uint8_t *m = lt_data(mask);
    for (int64_t y = 0; y < h; y++)
        for (int64_t x = 0; x < w; x++)
            if (m[y * w + x]) {
                n++;
                box[0] = y < box[0] ? y : box[0];
                box[1] = x < box[1] ? x : box[1];
                box[2] = y > box[2] ? y : box[2];
                box[3] = x > box[3] ? x : box[3];
            }
    return n;
}

/* ------------------------------------------------------------------ */
/* Transforms                                                          */
/* ------------------------------------------------------------------ */

START_TEST(resize_matches_pil_bilinear_and_nearest)
{
    /* PIL 9.4 Image.resize(BILINEAR / NEAREST) of the same arrays:
     * tests/fixtures/make_resize_reference.py. PIL rounds its fixed-point
     * intermediate to 8 bits, we keep floats: allow 1 level. */
    static const uint8_t want35[3][5] = {
        {71, 107, 93, 159, 125}, {96, 136, 98, 151, 124}, {139, 136, 102, 165, 144}};
    static const uint8_t want911[9][11] = {
        {0, 22, 49, 76, 103, 130, 156, 183, 210, 132, 3},
        {46, 74, 108, 136, 77, 83, 116, 150, 185, 138, 49},
        {106, 117, 143, 177, 66, 50, 82, 126, 170, 156, 109},
        {167, 84, 50, 102, 124, 111, 106, 159, 213, 209, 170},
        {100, 75, 86, 146, 159, 108, 85, 190, 169, 134, 103},
        {32, 91, 157, 207, 164, 83, 59, 202, 119, 58, 35},
        {93, 160, 206, 198, 109, 58, 65, 162, 136, 112, 96},
        {154, 153, 149, 137, 85, 98, 139, 180, 174, 165, 157},
        {199, 129, 79, 77, 75, 143, 210, 208, 206, 204, 202}};
    static const uint8_t want53[5][3] = {
        {61, 120, 141}, {116, 98, 155}, {99, 129, 142}, {152, 111, 110}, {126, 134, 188}};
    static const uint8_t mask35[3][5] = {{0, 1, 1, 1, 0}, {0, 1, 1, 1, 0}, {0, 0, 0, 0, 0}};
    size_t mk = lt_frame_push();
    uint8_t a[6 * 8], m[6 * 8] = {0};
    for (int y = 0; y < 6; y++)
        for (int x = 0; x < 8; x++) {
            a[y * 8 + x] = (uint8_t)((x * 37 + y * 91 + (x * y) % 7 * 20) % 256);
            m[y * 8 + x] = y >= 1 && y < 4 && x >= 2 && x < 6;
        }
    const int sizes[3][2] = {{3, 5}, {9, 11}, {5, 3}};
    const uint8_t *wants[3] = {&want35[0][0], &want911[0][0], &want53[0][0]};
    for (int k = 0; k < 3; k++) {
        lt_tensor *img = lt_from_data(a, 3, (int64_t[]){1, 6, 8}, LT_U8);
        lt_tensor *msk = lt_from_data(m, 3, (int64_t[]){1, 6, 8}, LT_U8);
        ck_assert_int_eq(lt_data_resize(&img, &msk, sizes[k][0], sizes[k][1]), 0);
        assert_shape(img, 3, (int64_t[]){1, sizes[k][0], sizes[k][1]});
        assert_shape(msk, 3, (int64_t[]){1, sizes[k][0], sizes[k][1]});
        int worst = 0;
        for (int i = 0; i < sizes[k][0] * sizes[k][1]; i++) {
            int d = abs((int)((uint8_t *)lt_data(img))[i] - (int)wants[k][i]);
            worst = d > worst ? d : worst;
        }
        ck_assert_msg(worst <= 1, "size %dx%d: off by %d from PIL", sizes[k][0], sizes[k][1],
                      worst);
        if (k == 0)
            ck_assert_mem_eq(lt_data(msk), mask35, 15);
        if (k == 1) {
            /* PIL NEAREST: rows 1..5, columns 3..7 */
            int64_t box[4];
            ck_assert_int_eq(mask_box(msk, box), 25);
            ck_assert_int_eq(box[0], 1);
            ck_assert_int_eq(box[1], 3);
            ck_assert_int_eq(box[2], 5);
            ck_assert_int_eq(box[3], 7);
        }
    }
    /* f32 in, f32 out; a constant stays constant */
    lt_tensor *f = lt_full(3, (int64_t[]){2, 7, 5}, 0.25, LT_F32);
    ck_assert_int_eq(lt_data_resize(&f, NULL, 3, 13), 0);
    ck_assert_int_eq(lt_dtype_of(f), LT_F32);
    ck_assert_double_eq_tol(lt_item(lt_amax(f, 0, NULL, false)), 0.25, 1e-6);
    ck_assert_double_eq_tol(lt_item(lt_amin(f, 0, NULL, false)), 0.25, 1e-6);
    lt_frame_pop(mk);
}
END_TEST

START_TEST(square_stays_aligned_after_crop_flip_and_resize)
{
    size_t mk = lt_frame_push();
    lt_tensor *img, *mask;
    /* square rows 10..19, columns 30..39 of a 40x60 image */
    square_pair(40, 60, 10, 30, 10, &img, &mask);
    /* crop rows 5..34, columns 25..54: the square moves to rows 5..14,
     * columns 5..14 */
    ck_assert_int_eq(lt_data_crop(&img, &mask, 5, 25, 30, 30), 0);
    int64_t box[4];
    ck_assert_int_eq(mask_box(mask, box), 100);
    ck_assert_int_eq(box[0], 5);
    ck_assert_int_eq(box[1], 5);
    ck_assert_int_eq(misaligned(img, mask, 100), 0);
    /* flip: columns 5..14 of 30 become 15..24 */
    ck_assert_int_eq(lt_data_hflip(&img, &mask), 0);
    ck_assert_int_eq(mask_box(mask, box), 100);
    ck_assert_int_eq(box[1], 15);
    ck_assert_int_eq(box[3], 24);
    ck_assert_int_eq(misaligned(img, mask, 100), 0);
    /* resize x2: rows 10..29, columns 30..49; bilinear puts 150 / 50 on
     * either side of each edge, nearest puts the mask edge between them */
    ck_assert_int_eq(lt_data_resize(&img, &mask, 60, 60), 0);
    ck_assert_int_eq(mask_box(mask, box), 400);
    ck_assert_int_eq(box[0], 10);
    ck_assert_int_eq(box[1], 30);
    ck_assert_int_eq(box[2], 29);
    ck_assert_int_eq(box[3], 49);
    ck_assert_int_eq(misaligned(img, mask, 100), 0);
    /* center crop 40x40 of 60x60: offset 10, square at rows 0..19,
     * columns 20..39 */
    ck_assert_int_eq(lt_data_center_crop(&img, &mask, 40, 40), 0);
    ck_assert_int_eq(mask_box(mask, box), 400);
    ck_assert_int_eq(box[0], 0);
    ck_assert_int_eq(box[1], 20);
    ck_assert_int_eq(misaligned(img, mask, 100), 0);
    lt_frame_pop(mk);
}
END_TEST

START_TEST(random_resized_crop_keeps_image_and_mask_together)
{
    size_t mk = lt_frame_push();
    const double scale[2] = {0.3, 1.0}, ratio[2] = {0.75, 4.0 / 3.0};
    int bad = 0, moved = 0;
    for (uint64_t seed = 0; seed < 40; seed++) {
        size_t m2 = lt_frame_push();
        lt_tensor *img, *mask;
        square_pair(48, 64, 12, 20, 16, &img, &mask);
        lt_rng r = lt_rng_new(seed), r2 = lt_rng_new(seed);
        lt_data_box b;
        if (lt_data_rrc_params(&r2, 48, 64, scale, ratio, &b) != 0)
            bad++;
        if (lt_data_random_resized_crop(&r, &img, &mask, 32, 32, scale, ratio) != 0) {
            bad++;
            lt_frame_pop(m2);
            continue;
        }
        /* same draws: the generator advanced as far as the params call */
        if (r.counter != r2.counter)
            bad++;
        /* the mask is where the image's square went: bilinear blurs the
         * edge, so compare away from it (3x3 neighbourhoods agreeing) */
        const uint8_t *m = lt_data(mask), *p = lt_data(img);
        for (int y = 1; y < 31; y++)
            for (int x = 1; x < 31; x++) {
                int s = 0;
                for (int dy = -1; dy <= 1; dy++)
                    for (int dx = -1; dx <= 1; dx++)
                        s += m[(y + dy) * 32 + x + dx];
                if (s == 9 && p[y * 32 + x] < 150)
                    bad++;
                if (s == 0 && p[y * 32 + x] > 50)
                    bad++;
            }
        /* where the box says the square should be: the square's centre
         * (row 20, column 28) maps to ((20 - top) * 32 / h, ...) */
        double cy = (20.0 - (double)b.top) * 32.0 / (double)b.h;
        double cx = (28.0 - (double)b.left) * 32.0 / (double)b.w;
        if (cy >= 1 && cy < 31 && cx >= 1 && cx < 31 && m[(int)cy * 32 + (int)cx] != 1)
            bad++;
        moved += b.top != 0 || b.left != 0;
        lt_frame_pop(m2);
    }
    ck_assert_int_eq(bad, 0);
    ck_assert_int_gt(moved, 10);
    lt_frame_pop(mk);
}
END_TEST

START_TEST(rrc_params_follow_torchvision_including_the_fallback)
{
    lt_data_box b;
    lt_rng r = lt_rng_new(3);
    /* scale (1,1), ratio (1,1) on a square: the whole image */
    ck_assert_int_eq(lt_data_rrc_params(&r, 50, 50, (double[]){1, 1}, (double[]){1, 1}, &b), 0);
    ck_assert_int_eq(b.top, 0);
    ck_assert_int_eq(b.left, 0);
    ck_assert_int_eq(b.h, 50);
    ck_assert_int_eq(b.w, 50);
    /* 40x60 with area 2400 and ratio 1: w = h = round(sqrt(2400)) = 49 >
     * 40 every time, so after 10 tries the fallback: W/H = 1.5 > 1, so
     * h = 40, w = round(40 * 1) = 40, centred: left (60 - 40) / 2 = 10 */
    uint64_t before = r.counter;
    ck_assert_int_eq(lt_data_rrc_params(&r, 40, 60, (double[]){1, 1}, (double[]){1, 1}, &b), 0);
    ck_assert_int_eq(b.top, 0);
    ck_assert_int_eq(b.left, 10);
    ck_assert_int_eq(b.h, 40);
    ck_assert_int_eq(b.w, 40);
    ck_assert_uint_eq(r.counter - before, 20); /* 10 tries x (area, ratio) */
    /* tall image, ratio >= 2 wanted: in_ratio 0.5 < 2 -> w = W = 30,
     * h = round(30 / 2) = 15, top (60 - 15) / 2 = 22 */
    ck_assert_int_eq(lt_data_rrc_params(&r, 60, 30, (double[]){1, 1}, (double[]){2, 3}, &b), 0);
    ck_assert_int_eq(b.h, 15);
    ck_assert_int_eq(b.w, 30);
    ck_assert_int_eq(b.top, 22);
    ck_assert_int_eq(b.left, 0);
    /* defaults: every box fits, its area and ratio are in range (up to
     * rounding) */
    const double sc[2] = {0.08, 1.0}, ra[2] = {3.0 / 4.0, 4.0 / 3.0};
    int bad = 0;
    for (int i = 0; i < 500; i++) {
        if (lt_data_rrc_params(&r, 120, 90, sc, ra, &b) != 0)
            bad++;
        double area = (double)(b.h * b.w) / (120.0 * 90.0), rt = (double)b.w / (double)b.h;
        if (b.top < 0 || b.left < 0 || b.top + b.h > 120 || b.left + b.w > 90 || area < 0.06 ||
            area > 1.0 || rt < 0.6 || rt > 1.6)
            bad++;
    }
    ck_assert_int_eq(bad, 0);
    /* bad arguments */
    ck_assert_int_eq(lt_data_rrc_params(&r, 10, 10, (double[]){0.5, 0.2}, ra, &b), -1);
    ck_assert_error_has("random_resized_crop: ");
}
END_TEST

START_TEST(center_crop_larger_than_the_image_pads_with_zeros)
{
    size_t mk = lt_frame_push();
    lt_tensor *img = lt_full(3, (int64_t[]){1, 2, 2}, 7, LT_U8);
    ck_assert_int_eq(lt_data_center_crop(&img, NULL, 4, 4), 0);
    static const uint8_t want[16] = {0, 0, 0, 0, 0, 7, 7, 0, 0, 7, 7, 0, 0, 0, 0, 0};
    ck_assert_mem_eq(lt_data(img), want, 16);
    /* a crop partly outside reads zeros there */
    img = lt_full(3, (int64_t[]){1, 3, 3}, 5, LT_U8);
    ck_assert_int_eq(lt_data_crop(&img, NULL, -1, 2, 2, 2), 0);
    ck_assert_mem_eq(lt_data(img), ((uint8_t[]){0, 0, 5, 0}), 4);
    lt_frame_pop(mk);
}
END_TEST

START_TEST(resize_shorter_side_keeps_the_aspect_ratio)
{
    size_t mk = lt_frame_push();
    lt_tensor *img = lt_zeros(3, (int64_t[]){3, 300, 400}, LT_U8), *mask;
    mask = lt_zeros(3, (int64_t[]){1, 300, 400}, LT_U8);
    ck_assert_int_eq(lt_data_resize_shorter(&img, &mask, 256), 0);
    /* torchvision: int(256 * 400 / 300) = 341 */
    assert_shape(img, 3, (int64_t[]){3, 256, 341});
    assert_shape(mask, 3, (int64_t[]){1, 256, 341});
    lt_frame_pop(mk);
}
END_TEST

START_TEST(normalize_and_to_float_match_torchvision_arithmetic)
{
    size_t mk = lt_frame_push();
    uint8_t px[6] = {0, 255, 51, 102, 128, 255};
    lt_tensor *img = lt_from_data(px, 3, (int64_t[]){3, 1, 2}, LT_U8);
    lt_tensor *f = lt_data_to_float(img);
    ck_assert_int_eq(lt_dtype_of(f), LT_F32);
    ck_assert_float_eq(((float *)lt_data(f))[2], 51.0f / 255.0f);
    const double mean[3] = {0.5, 0.2, 0.0}, std[3] = {0.25, 0.2, 2.0};
    lt_tensor *n = lt_data_normalize(img, mean, std);
    ck_assert_ptr_nonnull(n);
    const float *v = lt_data(n);
    ck_assert_float_eq_tol(v[0], -2.0f, 1e-6f); /* (0 - .5) / .25 */
    ck_assert_float_eq_tol(v[1], 2.0f, 1e-6f);  /* (1 - .5) / .25 */
    ck_assert_float_eq_tol(v[2], 0.0f, 1e-6f);  /* (.2 - .2) / .2 */
    ck_assert_float_eq_tol(v[3], 1.0f, 1e-6f);  /* (.4 - .2) / .2 */
    ck_assert_float_eq_tol(v[5], 0.5f, 1e-6f);  /* 1 / 2 */
    /* batched (N,C,H,W) too */
    lt_tensor *nb = lt_data_normalize(lt_unsqueeze(img, 0), mean, std);
    ck_assert_mem_eq(lt_data(nb), v, 6 * sizeof(float));
    ck_assert_ptr_null(lt_data_normalize(img, mean, (double[]){1, 0, 1}));
    ck_assert_error_has("std > 0");
    lt_frame_pop(mk);
}
END_TEST

START_TEST(transform_pipeline_runs_in_order_and_checks_arguments)
{
    size_t mk = lt_frame_push();
    lt_tensor *img, *mask;
    square_pair(40, 40, 0, 0, 20, &img, &mask);
    /* resize to 20x20 then flip with probability 1: the square (top-left
     * quarter) ends in the top-right quarter */
    lt_data_transform t = {.geom = LT_DATA_GEOM_RESIZE, .height = 20, .width = 20, .hflip = 1.0};
    lt_rng r = lt_rng_new(1);
    ck_assert_int_eq(lt_data_transform_apply(&t, &r, &img, &mask), 0);
    assert_shape(img, 3, (int64_t[]){3, 20, 20});
    ck_assert_int_eq(lt_dtype_of(img), LT_F32);
    int64_t box[4];
    ck_assert_int_eq(mask_box(mask, box), 100);
    ck_assert_int_eq(box[1], 10);
    ck_assert_int_eq(box[3], 19);
    ck_assert_int_eq(misaligned(img, mask, 100.0 / 255.0), 0);
    /* a flip needs a generator; bad masks are refused */
    ck_assert_int_eq(lt_data_transform_apply(&t, NULL, &img, &mask), -1);
    ck_assert_error_has("generator");
    lt_tensor *wrong = lt_zeros(3, (int64_t[]){1, 5, 5}, LT_U8);
    ck_assert_int_eq(lt_data_hflip(&img, &wrong), -1);
    ck_assert_error_has("hflip: mask (1,5,5)");
    lt_frame_pop(mk);
}
END_TEST

START_TEST(transforms_free_every_block)
{
    lt_cache_trim();
    lt_mem_stats before = lt_mem_stats_get();
    size_t mk = lt_frame_push();
    lt_tensor *img, *mask;
    square_pair(40, 60, 10, 30, 10, &img, &mask);
    lt_data_transform t = {.geom = LT_DATA_GEOM_RANDOM_RESIZED_CROP,
                           .height = 24,
                           .width = 24,
                           .hflip = 0.5,
                           .normalize = true,
                           .mean = LT_DATA_IMAGENET_MEAN,
                           .std = LT_DATA_IMAGENET_STD};
    lt_rng r = lt_rng_new(9);
    ck_assert_int_eq(lt_data_transform_apply(&t, &r, &img, &mask), 0);
    ck_assert_ptr_nonnull(lt_data_remove_edges(img, mask, 20));
    lt_frame_pop(mk);
    lt_cache_trim();
    lt_mem_stats after = lt_mem_stats_get();
    ck_assert_uint_eq(after.live_blocks, before.live_blocks);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Edge removal                                                        */
/* ------------------------------------------------------------------ */

/* The band by its definition, computed directly for a square mask
 * rows/columns a..b (inclusive) of an n x n image: a pixel inside is in
 * the band when the nearest outside pixel (straight out, the square being
 * convex) is within r; a pixel outside when the nearest square pixel is. */
static bool in_band_square(int64_t y, int64_t x, int64_t a, int64_t b, double r)
{
    bool inside = y >= a && y <= b && x >= a && x <= b;
    if (inside) {
        int64_t d = y - a + 1;
        d = b - y + 1 < d ? b - y + 1 : d;
        d = x - a + 1 < d ? x - a + 1 : d;
        d = b - x + 1 < d ? b - x + 1 : d;
        return (double)d <= r;
    }
    int64_t dy = y < a ? a - y : y > b ? y - b : 0;
    int64_t dx = x < a ? a - x : x > b ? x - b : 0;
    return (double)(dy * dy + dx * dx) <= r * r;
}

START_TEST(edge_removal_zeroes_exactly_the_band_on_a_square)
{
    size_t mk = lt_frame_push();
    const int64_t n = 32, a = 10, b = 21;
    lt_tensor *mask = lt_zeros(3, (int64_t[]){1, n, n}, LT_U8);
    for (int64_t y = a; y <= b; y++)
        for (int64_t x = a; x <= b; x++)
            ((uint8_t *)lt_data(mask))[y * n + x] = 1;
    lt_tensor *img = lt_full(3, (int64_t[]){3, n, n}, 0.5, LT_F32);
    /* r = width / 2 * 32 / 224: width 28 -> r = 2, width 21 -> r = 1.5,
     * width 42 -> r = 3 */
    const double widths[3] = {28, 21, 42}, radii[3] = {2, 1.5, 3};
    const int64_t counts[3] = {
        /* inside: 12^2 - 8^2 = 80; outside: 4 sides of 12 x 2 plus 4
         * corners of the quarter disc r=2 without axes: (1,1) -> 4 */
        80 + 96 + 4,
        /* inside: 144 - 100 = 44; outside: 4 x 12 + corners (1,1) -> 4 */
        44 + 48 + 4,
        /* inside: 144 - 36 = 108; outside: 4 x 12 x 3 + corners with
         * dx, dy >= 1 and dx^2 + dy^2 <= 9: (1,1),(1,2),(2,1),(2,2) -> 16 */
        108 + 144 + 16};
    for (int k = 0; k < 3; k++) {
        lt_tensor *out = lt_data_remove_edges(img, mask, widths[k]);
        ck_assert_ptr_nonnull(out);
        assert_shape(out, 3, (int64_t[]){3, n, n});
        int64_t wrong = 0, zeroed = 0;
        for (int c = 0; c < 3; c++)
            for (int64_t y = 0; y < n; y++)
                for (int64_t x = 0; x < n; x++) {
                    float v = ((float *)lt_data(out))[(c * n + y) * n + x];
                    bool band = in_band_square(y, x, a, b, radii[k]);
                    wrong += band ? v != 0.0f : v != 0.5f;
                    zeroed += c == 0 && v == 0.0f;
                }
        ck_assert_msg(wrong == 0, "width %g: %lld pixels differ from the band", widths[k],
                      (long long)wrong);
        ck_assert_int_eq(zeroed, counts[k]);
    }
    /* the band alone, and in batch form */
    lt_tensor *band = lt_data_edge_band(mask, 28);
    ck_assert_double_eq(lt_item(lt_sum(band, 0, NULL, false)), counts[0]);
    lt_tensor *bimg = lt_stack(2, (lt_tensor *[]){img, img}, 0);
    lt_tensor *bmask = lt_stack(2, (lt_tensor *[]){mask, lt_zeros_like(mask)}, 0);
    lt_tensor *bout = lt_data_remove_edges(bimg, bmask, 28);
    ck_assert_ptr_nonnull(bout);
    /* image 0 loses the band in each of 3 channels, image 1 (no object,
     * no boundary) nothing */
    ck_assert_double_eq(lt_item(lt_sum(lt_cmp_scalar(bout, "==", 0), 0, NULL, false)),
                        3 * counts[0]);
    /* width 0, all-foreground and all-background masks: no band */
    ck_assert_double_eq(lt_item(lt_sum(lt_data_edge_band(mask, 0), 0, NULL, false)), 0);
    ck_assert_double_eq(lt_item(lt_sum(lt_data_edge_band(lt_ones_like(mask), 50), 0, NULL, false)), 0);
    /* bad input */
    ck_assert_ptr_null(lt_data_remove_edges(img, lt_zeros(3, (int64_t[]){1, 4, 4}, LT_U8), 10));
    ck_assert_error_has("remove_edges: ");
    ck_assert_ptr_null(lt_data_edge_band(mask, -1));
    ck_assert_error_has("width");
    lt_frame_pop(mk);
}
END_TEST

START_TEST(edge_band_scales_with_image_size_and_handles_irregular_masks)
{
    size_t mk = lt_frame_push();
    /* At 224 pixels, width 16 is r = 8; at 448 the same width is r = 16:
     * a vertical edge loses 16 columns at 224 and 32 at 448. */
    for (int s = 1; s <= 2; s++) {
        int64_t n = 224 * s;
        lt_tensor *mask = lt_zeros(3, (int64_t[]){1, n, n}, LT_U8);
        uint8_t *m = lt_data(mask);
        for (int64_t y = 0; y < n; y++)
            memset(m + y * n, 1, (size_t)(n / 2));
        lt_tensor *band = lt_data_edge_band(mask, 16);
        ck_assert_double_eq(lt_item(lt_sum(band, 0, NULL, false)), (double)(16 * s * n));
    }
    /* a random mask against brute force (every pair within r) */
    const int64_t n = 24;
    lt_rng r = lt_rng_new(5);
    lt_tensor *mask = lt_rand_bernoulli(&r, 3, (int64_t[]){1, n, n}, 0.4, LT_U8);
    double width = 5.0 * 224.0 / (double)n; /* r = 5 / 2 * n / 224 = 2.5 */
    lt_tensor *band = lt_data_edge_band(mask, width);
    const uint8_t *m = lt_data(mask), *bd = lt_data(band);
    int64_t wrong = 0;
    for (int64_t y = 0; y < n; y++)
        for (int64_t x = 0; x < n; x++) {
            bool want = false;
            for (int64_t v = 0; v < n && !want; v++)
                for (int64_t u = 0; u < n && !want; u++)
                    want = m[v * n + u] != m[y * n + x] &&
                           (double)((v - y) * (v - y) + (u - x) * (u - x)) <= 6.25;
            wrong += want != (bd[y * n + x] != 0);
        }
    ck_assert_int_eq(wrong, 0);
    lt_frame_pop(mk);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Loader                                                              */
/* ------------------------------------------------------------------ */

enum { NCLS = 3, PER = 7, NSAMP = NCLS * PER, IH = 12, IW = 16 };

/* An IN-9 tree of 3 classes x 7 PNGs (3x12x16) whose channel 0 encodes
 * the sample number (label-major), with .npy masks marking column id%16. */
static void build_tree(void)
{
    char p[512];
    for (int c = 0; c < NCLS; c++) {
        char rel[128];
        snprintf(rel, sizeof rel, "ds/original/train/%02d_c%d", c, c);
        mkdirs(rel);
        snprintf(rel, sizeof rel, "ds/fg_mask/train/%02d_c%d", c, c);
        mkdirs(rel);
        for (int k = 0; k < PER; k++) {
            int id = c * PER + k;
            size_t mk = lt_frame_push();
            lt_tensor *img = lt_zeros(3, (int64_t[]){3, IH, IW}, LT_U8);
            uint8_t *px = lt_data(img);
            for (int y = 0; y < IH; y++)
                for (int x = 0; x < IW; x++) {
                    px[y * IW + x] = (uint8_t)(10 * id);
                    px[(IH + y) * IW + x] = (uint8_t)(16 * x);
                    px[(2 * IH + y) * IW + x] = (uint8_t)(20 * y);
                }
            snprintf(rel, sizeof rel, "ds/original/train/%02d_c%d/s%02d.png", c, c, k);
            ck_assert_int_eq(lt_data_png_write(tmp_path(p, sizeof p, rel), img), 0);
            lt_tensor *m = lt_zeros(2, (int64_t[]){IH, IW}, LT_U8);
            for (int y = 0; y < IH; y++)
                ((uint8_t *)lt_data(m))[y * IW + id % IW] = 1;
            snprintf(rel, sizeof rel, "ds/fg_mask/train/%02d_c%d/s%02d.npy", c, c, k);
            ck_assert_int_eq(lt_data_npy_write(tmp_path(p, sizeof p, rel), m), 0);
            lt_frame_pop(mk);
        }
    }
}

static lt_data_list *tree_list(void)
{
    char root[512];
    lt_data_list *l = lt_data_in9_list(tmp_path(root, sizeof root, "ds"), "original", "train",
                                       LT_DATA_MASKS_REQUIRED);
    ck_assert_msg(l != NULL, "%s", lt_last_error());
    ck_assert_uint_eq(l->n, NSAMP);
    return l;
}

/* Every byte of `epochs` epochs of batches, concatenated, plus the batch
 * count; the caller frees. */
typedef struct run_log {
    unsigned char *bytes;
    size_t n, cap;
    int batches, ends;
} run_log;

static void log_put(run_log *g, const void *p, size_t n)
{
    if (g->n + n > g->cap) {
        g->cap = (g->n + n) * 2;
        g->bytes = realloc(g->bytes, g->cap);
        ck_assert_ptr_nonnull(g->bytes);
    }
    memcpy(g->bytes + g->n, p, n);
    g->n += n;
}

static void log_batch(run_log *g, const lt_data_batch *b)
{
    log_put(g, lt_data(b->images), (size_t)lt_numel(b->images) * sizeof(float));
    log_put(g, lt_data(b->labels), (size_t)lt_numel(b->labels) * sizeof(int64_t));
    log_put(g, lt_data(b->indices), (size_t)lt_numel(b->indices) * sizeof(int64_t));
    if (b->masks)
        log_put(g, lt_data(b->masks), (size_t)lt_numel(b->masks));
    int64_t pos[2] = {b->epoch, b->batch};
    log_put(g, pos, sizeof pos);
    g->batches++;
}

/* Run ld for `epochs` epoch ends, logging every batch. */
static void run_epochs(lt_data_loader *ld, int epochs, run_log *g)
{
    while (g->ends < epochs) {
        size_t mk = lt_frame_push();
        lt_data_batch b;
        int rc = lt_data_loader_next(ld, &b);
        ck_assert_msg(rc >= 0, "%s", lt_last_error());
        if (rc == 0)
            g->ends++;
        else
            log_batch(g, &b);
        lt_frame_pop(mk);
    }
}

static lt_data_loader_opts train_opts(int workers)
{
    lt_data_loader_opts o = {
        .batch_size = 4,
        .shuffle = true,
        .masks = true,
        .seed = 1234,
        .workers = workers,
        .transform = {.geom = LT_DATA_GEOM_RANDOM_RESIZED_CROP,
                      .height = 8,
                      .width = 8,
                      .scale = {0.3, 1.0},
                      .hflip = 0.5,
                      .normalize = true,
                      .mean = LT_DATA_IMAGENET_MEAN,
                      .std = LT_DATA_IMAGENET_STD}};
    return o;
}

START_TEST(loader_gives_the_same_batches_for_1_and_3_workers)
{
    build_tree();
    lt_data_list *l = tree_list();
    run_log logs[3] = {{0}};
    const int workers[3] = {0, 1, 3};
    for (int k = 0; k < 3; k++) {
        lt_data_loader_opts o = train_opts(workers[k]);
        lt_data_loader *ld = lt_data_loader_new(l, &o);
        ck_assert_msg(ld != NULL, "%s", lt_last_error());
        ck_assert_int_eq(lt_data_loader_batches_per_epoch(ld), 6);
        run_epochs(ld, 2, &logs[k]);
        lt_data_loader_free(ld);
        ck_assert_int_eq(logs[k].batches, 12);
    }
    ck_assert_uint_eq(logs[1].n, logs[0].n);
    ck_assert_uint_eq(logs[2].n, logs[0].n);
    ck_assert(memcmp(logs[0].bytes, logs[1].bytes, logs[0].n) == 0);
    ck_assert(memcmp(logs[0].bytes, logs[2].bytes, logs[0].n) == 0);
    /* a different seed gives a different run */
    lt_data_loader_opts o = train_opts(2);
    o.seed = 99;
    lt_data_loader *ld = lt_data_loader_new(l, &o);
    run_log other = {0};
    run_epochs(ld, 2, &other);
    lt_data_loader_free(ld);
    ck_assert(other.n != logs[0].n || memcmp(other.bytes, logs[0].bytes, other.n) != 0);
    for (int k = 0; k < 3; k++)
        free(logs[k].bytes);
    free(other.bytes);
    lt_data_list_free(l);
}
END_TEST

START_TEST(loader_epochs_are_seeded_permutations_with_matching_labels_and_masks)
{
    build_tree();
    lt_data_list *l = tree_list();
    /* no geometry: the pixels must be the files' own */
    lt_data_loader_opts o = {.batch_size = 5, .shuffle = true, .masks = true, .seed = 7,
                             .workers = 2};
    lt_data_loader *ld = lt_data_loader_new(l, &o);
    ck_assert_ptr_nonnull(ld);
    int64_t order[2][NSAMP];
    int bad = 0;
    for (int e = 0; e < 2; e++) {
        int seen[NSAMP] = {0}, got = 0, rc;
        lt_data_batch b;
        size_t mk = lt_frame_push();
        while ((rc = lt_data_loader_next(ld, &b)) > 0) {
            ck_assert_int_eq(b.epoch, e);
            int64_t n = lt_size(b.images, 0);
            ck_assert_int_eq(n, b.batch < 4 ? 5 : 1); /* 21 = 4 x 5 + 1 */
            assert_shape(b.images, 4, (int64_t[]){n, 3, IH, IW});
            assert_shape(b.masks, 4, (int64_t[]){n, 1, IH, IW});
            ck_assert_int_eq(lt_dtype_of(b.labels), LT_I64);
            for (int64_t i = 0; i < n; i++) {
                int64_t id = ((int64_t *)lt_data(b.indices))[i];
                order[e][got++] = id;
                seen[id]++;
                /* listing order is label-major, file order: id = sample id */
                if (((int64_t *)lt_data(b.labels))[i] != id / PER)
                    bad++;
                float v = ((float *)lt_data(b.images))[i * 3 * IH * IW];
                if (v != (float)(10 * id) / 255.0f)
                    bad++;
                const uint8_t *m = (const uint8_t *)lt_data(b.masks) + i * IH * IW;
                if (m[id % IW] != 1 || m[(id + 1) % IW] != 0)
                    bad++;
            }
        }
        ck_assert_int_eq(rc, 0);
        lt_frame_pop(mk);
        ck_assert_int_eq(got, NSAMP);
        for (int i = 0; i < NSAMP; i++)
            bad += seen[i] != 1;
    }
    ck_assert_int_eq(bad, 0);
    ck_assert_msg(memcmp(order[0], order[1], sizeof order[0]) != 0, "epochs share an order");
    lt_data_loader_free(ld);
    /* without shuffle: listing order */
    o.shuffle = false;
    ld = lt_data_loader_new(l, &o);
    lt_data_batch b;
    size_t mk = lt_frame_push();
    ck_assert_int_eq(lt_data_loader_next(ld, &b), 1);
    ck_assert_mem_eq(lt_data(b.indices), ((int64_t[]){0, 1, 2, 3, 4}), 5 * sizeof(int64_t));
    lt_frame_pop(mk);
    lt_data_loader_free(ld);
    lt_data_list_free(l);
}
END_TEST

START_TEST(loader_resumes_from_a_saved_position_with_the_same_batches)
{
    build_tree();
    lt_data_list *l = tree_list();
    lt_data_loader_opts o = train_opts(2);
    /* the reference: 3 epochs straight through */
    lt_data_loader *ld = lt_data_loader_new(l, &o);
    run_log ref = {0};
    run_epochs(ld, 3, &ref);
    lt_data_loader_free(ld);
    /* a run that stops after epoch 0 and 2 batches of epoch 1 */
    ld = lt_data_loader_new(l, &o);
    run_log first = {0};
    run_epochs(ld, 1, &first);
    for (int i = 0; i < 2; i++) {
        size_t mk = lt_frame_push();
        lt_data_batch b;
        ck_assert_int_eq(lt_data_loader_next(ld, &b), 1);
        log_batch(&first, &b);
        lt_frame_pop(mk);
    }
    lt_data_position saved = lt_data_loader_tell(ld);
    ck_assert_int_eq(saved.epoch, 1);
    ck_assert_int_eq(saved.batch, 2);
    lt_data_loader_free(ld);
    /* a fresh loader (another worker count) seeks there and goes on */
    o.workers = 3;
    ld = lt_data_loader_new(l, &o);
    ck_assert_int_eq(lt_data_loader_seek(ld, saved), 0);
    run_log rest = {0};
    rest.ends = 1; /* epoch 0 already ended */
    run_epochs(ld, 3, &rest);
    lt_data_loader_free(ld);
    ck_assert_int_eq(first.batches + rest.batches, ref.batches);
    ck_assert_uint_eq(first.n + rest.n, ref.n);
    ck_assert(memcmp(first.bytes, ref.bytes, first.n) == 0);
    ck_assert(memcmp(rest.bytes, ref.bytes + first.n, rest.n) == 0);
    /* the end-of-epoch position (1, 6) resumes with a 0 then epoch 2 */
    ld = lt_data_loader_new(l, &o);
    ck_assert_int_eq(lt_data_loader_seek(ld, (lt_data_position){1, 6}), 0);
    lt_data_position p = lt_data_loader_tell(ld);
    ck_assert_int_eq(p.epoch, 1);
    ck_assert_int_eq(p.batch, 6);
    lt_data_batch b;
    size_t mk = lt_frame_push();
    ck_assert_int_eq(lt_data_loader_next(ld, &b), 0);
    p = lt_data_loader_tell(ld);
    ck_assert_int_eq(p.epoch, 2);
    ck_assert_int_eq(p.batch, 0);
    ck_assert_int_eq(lt_data_loader_next(ld, &b), 1);
    ck_assert_int_eq(b.epoch, 2);
    ck_assert_int_eq(b.batch, 0);
    lt_frame_pop(mk);
    ck_assert_int_eq(lt_data_loader_seek(ld, (lt_data_position){0, 7}), -1);
    ck_assert_error_has("out of range");
    lt_data_loader_free(ld);
    free(ref.bytes);
    free(first.bytes);
    free(rest.bytes);
    lt_data_list_free(l);
}
END_TEST

START_TEST(loader_drop_last_drops_the_short_batch)
{
    build_tree();
    lt_data_list *l = tree_list();
    lt_data_loader_opts o = train_opts(1);
    o.drop_last = true;
    lt_data_loader *ld = lt_data_loader_new(l, &o);
    ck_assert_ptr_nonnull(ld);
    ck_assert_int_eq(lt_data_loader_batches_per_epoch(ld), 5); /* 21 / 4 */
    for (int e = 0; e < 2; e++) {
        int n = 0, seen[NSAMP] = {0}, dup = 0, rc;
        lt_data_batch b;
        size_t mk = lt_frame_push();
        while ((rc = lt_data_loader_next(ld, &b)) > 0) {
            ck_assert_int_eq(lt_size(b.images, 0), 4);
            for (int i = 0; i < 4; i++)
                dup += seen[((int64_t *)lt_data(b.indices))[i]]++ > 0;
            n++;
        }
        lt_frame_pop(mk);
        ck_assert_int_eq(rc, 0);
        ck_assert_int_eq(n, 5);
        ck_assert_int_eq(dup, 0);
    }
    lt_data_loader_free(ld);
    /* a batch larger than the data with drop_last leaves nothing */
    o.batch_size = 22;
    ck_assert_ptr_null(lt_data_loader_new(l, &o));
    ck_assert_error_has("leaves no batch");
    o.drop_last = false;
    ld = lt_data_loader_new(l, &o);
    ck_assert_int_eq(lt_data_loader_batches_per_epoch(ld), 1);
    lt_data_loader_free(ld);
    lt_data_list_free(l);
}
END_TEST

START_TEST(loader_reports_a_corrupt_file_by_name)
{
    build_tree();
    lt_data_list *l = tree_list();
    /* truncate one image */
    const char *victim = l->samples[9].path;
    FILE *f = fopen(victim, "r+b");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(ftruncate(fileno(f), 40), 0);
    fclose(f);
    for (int workers = 0; workers <= 3; workers += 3) {
        lt_data_loader_opts o = train_opts(workers);
        lt_data_loader *ld = lt_data_loader_new(l, &o);
        lt_data_batch b;
        int rc;
        size_t mk = lt_frame_push();
        while ((rc = lt_data_loader_next(ld, &b)) > 0)
            ;
        lt_frame_pop(mk);
        ck_assert_int_eq(rc, -1);
        ck_assert_msg(strstr(lt_last_error(), victim) != NULL, "error \"%s\" does not name %s",
                      lt_last_error(), victim);
        ck_assert_error_has("truncated PNG");
        /* it stays failed, and says so again */
        lt_clear_error();
        ck_assert_int_eq(lt_data_loader_next(ld, &b), -1);
        ck_assert_msg(strstr(lt_last_error(), victim) != NULL, "%s", lt_last_error());
        /* a seek clears the failure */
        ck_assert_int_eq(lt_data_loader_seek(ld, (lt_data_position){0, 0}), 0);
        mk = lt_frame_push();
        rc = lt_data_loader_next(ld, &b);
        lt_frame_pop(mk);
        ck_assert_int_ne(rc, 0);
        lt_data_loader_free(ld);
    }
    /* a missing mask file is named too (the tree rebuilt: image 9 whole) */
    build_tree();
    lt_data_list *l2 = tree_list();
    ck_assert_int_eq(remove(l2->samples[20].mask_path), 0);
    lt_data_loader_opts o = train_opts(2);
    o.shuffle = false;
    lt_data_loader *ld = lt_data_loader_new(l2, &o);
    lt_data_batch b;
    int rc;
    size_t mk = lt_frame_push();
    while ((rc = lt_data_loader_next(ld, &b)) > 0)
        ;
    lt_frame_pop(mk);
    ck_assert_int_eq(rc, -1);
    ck_assert_msg(strstr(lt_last_error(), l2->samples[20].mask_path) != NULL, "%s",
                  lt_last_error());
    lt_data_loader_free(ld);
    lt_data_list_free(l2);
    lt_data_list_free(l);
}
END_TEST

START_TEST(loader_rejects_bad_options_and_mixed_sizes)
{
    build_tree();
    lt_data_list *l = tree_list();
    lt_data_loader_opts o = train_opts(0);
    o.batch_size = 0;
    ck_assert_ptr_null(lt_data_loader_new(l, &o));
    ck_assert_error_has("batch size 0");
    o = train_opts(0);
    o.transform.height = 0;
    ck_assert_ptr_null(lt_data_loader_new(l, &o));
    ck_assert_error_has("loader: transform size");
    o = train_opts(-1);
    ck_assert_ptr_null(lt_data_loader_new(l, &o));
    o = train_opts(0);
    o.transform.hflip = 2;
    ck_assert_ptr_null(lt_data_loader_new(l, &o));
    ck_assert_ptr_null(lt_data_loader_new(NULL, &o));
    /* images of two sizes without a resize: an error naming the file */
    char p[512];
    size_t mk = lt_frame_push();
    ck_assert_int_eq(lt_data_png_write(tmp_path(p, sizeof p, "ds/original/train/00_c0/s00.png"),
                                       lt_zeros(3, (int64_t[]){3, 10, 16}, LT_U8)),
                     0);
    lt_frame_pop(mk);
    o = (lt_data_loader_opts){.batch_size = 21, .workers = 1};
    lt_data_loader *ld = lt_data_loader_new(l, &o);
    lt_data_batch b;
    mk = lt_frame_push();
    ck_assert_int_eq(lt_data_loader_next(ld, &b), -1);
    lt_frame_pop(mk);
    ck_assert_error_has("after the transform differs");
    lt_data_loader_free(ld);
    lt_data_list_free(l);
}
END_TEST

START_TEST(loader_frees_every_block_and_stops_mid_epoch)
{
    build_tree();
    lt_data_list *l = tree_list();
    lt_cache_trim();
    lt_mem_stats before = lt_mem_stats_get();
    for (int workers = 0; workers <= 4; workers += 2) {
        lt_data_loader_opts o = train_opts(workers);
        o.prefetch = 3;
        lt_data_loader *ld = lt_data_loader_new(l, &o);
        lt_data_batch b;
        size_t mk = lt_frame_push();
        ck_assert_int_eq(lt_data_loader_next(ld, &b), 1);
        lt_frame_pop(mk);
        /* free with batches prefetched and in flight */
        lt_data_loader_free(ld);
    }
    lt_cache_trim();
    lt_mem_stats after = lt_mem_stats_get();
    ck_assert_uint_eq(after.live_blocks, before.live_blocks);
    ck_assert_uint_eq(after.live_tensors, before.live_tensors);
    lt_data_list_free(l);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Suite                                                               */
/* ------------------------------------------------------------------ */

static Suite *loader_suite(void)
{
    Suite *s = suite_create("loader");
    TCase *tc = tcase_create("transforms");
    tcase_add_test(tc, resize_matches_pil_bilinear_and_nearest);
    tcase_add_test(tc, square_stays_aligned_after_crop_flip_and_resize);
    tcase_add_test(tc, random_resized_crop_keeps_image_and_mask_together);
    tcase_add_test(tc, rrc_params_follow_torchvision_including_the_fallback);
    tcase_add_test(tc, center_crop_larger_than_the_image_pads_with_zeros);
    tcase_add_test(tc, resize_shorter_side_keeps_the_aspect_ratio);
    tcase_add_test(tc, normalize_and_to_float_match_torchvision_arithmetic);
    tcase_add_test(tc, transform_pipeline_runs_in_order_and_checks_arguments);
    tcase_add_test(tc, transforms_free_every_block);
    suite_add_tcase(s, tc);

    tc = tcase_create("edges");
    tcase_add_test(tc, edge_removal_zeroes_exactly_the_band_on_a_square);
    tcase_add_test(tc, edge_band_scales_with_image_size_and_handles_irregular_masks);
    suite_add_tcase(s, tc);

    tc = tcase_create("loader");
    tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, loader_gives_the_same_batches_for_1_and_3_workers);
    tcase_add_test(tc, loader_epochs_are_seeded_permutations_with_matching_labels_and_masks);
    tcase_add_test(tc, loader_resumes_from_a_saved_position_with_the_same_batches);
    tcase_add_test(tc, loader_drop_last_drops_the_short_batch);
    tcase_add_test(tc, loader_reports_a_corrupt_file_by_name);
    tcase_add_test(tc, loader_rejects_bad_options_and_mixed_sizes);
    tcase_add_test(tc, loader_frees_every_block_and_stops_mid_epoch);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    Suite *s = loader_suite();
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failures = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failures != 0;
}
