/*
 * test_eval.c: the Backgrounds Challenge evaluation on a hand-made IN-9
 * tree whose backgrounds give the class away (class 0: red, class 1: blue,
 * objects white), with a model that predicts from colour alone, so every
 * variant's accuracy is known in advance; and eval_bg_gap's bad input.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libtensor/data.h>
#include <libtensor/rrr.h>

static char root[256];

/* An 8x8 RGB image: background colour bg (0 red, 1 blue, 2 black), with a
 * white 4x4 object at (2,2) when obj. */
static void write_image(const char *path, int bg, bool obj)
{
    size_t m = lt_frame_push();
    lt_tensor *t = lt_zeros(3, (int64_t[]){3, 8, 8}, LT_U8);
    uint8_t *p = lt_data(t);
    for (int y = 0; y < 8; y++)
        for (int x = 0; x < 8; x++) {
            bool in = obj && y >= 2 && y < 6 && x >= 2 && x < 6;
            for (int c = 0; c < 3; c++)
                p[(c * 8 + y) * 8 + x] = in ? 255 : ((bg == 0 && c == 0) || (bg == 1 && c == 2)) ? 200 : 0;
        }
    ck_assert_int_eq(lt_data_png_write(path, t), 0);
    lt_frame_pop(m);
}

static void write_mask(const char *path)
{
    size_t m = lt_frame_push();
    lt_tensor *t = lt_zeros(2, (int64_t[]){8, 8}, LT_U8);
    for (int y = 2; y < 6; y++)
        for (int x = 2; x < 6; x++)
            ((uint8_t *)lt_data(t))[y * 8 + x] = 1;
    ck_assert_int_eq(lt_data_npy_write(path, t), 0);
    lt_frame_pop(m);
}

static void mkdirs(const char *p)
{
    char cmd[1100];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", p);
    ck_assert_int_eq(system(cmd), 0);
}

/* Two classes, two images each. */
static void make_tree(void)
{
    snprintf(root, sizeof root, "/tmp/lt_eval_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(root));
    static const char *cls[2] = {"00_red", "01_blue"};
    char d[1024], f[1200];
    for (int c = 0; c < 2; c++) {
        for (int v = 0; v < LT_RRR_NVARIANTS; v++) {
            snprintf(d, sizeof d, "%s/%s/val/%s", root, lt_rrr_variants[v], cls[c]);
            mkdirs(d);
        }
        snprintf(d, sizeof d, "%s/fg_mask/val/%s", root, cls[c]);
        mkdirs(d);
        for (int i = 0; i < 2; i++) {
            int other = 1 - c;
            char stem[32], ostem[32];
            snprintf(stem, sizeof stem, "c%d_%d", c, i);
            snprintf(ostem, sizeof ostem, "c%d_%d", other, i);
            snprintf(f, sizeof f, "%s/original/val/%s/%s.png", root, cls[c], stem);
            write_image(f, c, true);
            snprintf(f, sizeof f, "%s/fg_mask/val/%s/%s.npy", root, cls[c], stem);
            write_mask(f);
            snprintf(f, sizeof f, "%s/only_fg/val/%s/%s.png", root, cls[c], stem);
            write_image(f, 2, true);
            snprintf(f, sizeof f, "%s/only_bg_t/val/%s/%s.png", root, cls[c], stem);
            write_image(f, c, false);
            snprintf(f, sizeof f, "%s/only_bg_b/val/%s/%s.png", root, cls[c], stem);
            write_image(f, c, false);
            snprintf(f, sizeof f, "%s/no_fg/val/%s/%s.png", root, cls[c], stem);
            write_image(f, c, false);
            snprintf(f, sizeof f, "%s/mixed_same/val/%s/fg_%s_bg_%s.png", root, cls[c], stem, stem);
            write_image(f, c, true);
            snprintf(f, sizeof f, "%s/mixed_rand/val/%s/fg_%s_bg_%s.png", root, cls[c], stem, ostem);
            write_image(f, other, true);
            snprintf(f, sizeof f, "%s/mixed_next/val/%s/fg_%s_bg_%s.png", root, cls[c], stem, ostem);
            write_image(f, other, true);
        }
    }
}

static void remove_tree(void)
{
    char cmd[600];
    if (strncmp(root, "/tmp/lt_eval_", 13) == 0) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", root);
    }
}

/* logits = (mean red, mean blue) of the normalized image: the background
 * colour decides; a black-and-white image ties, and argmax picks class 0. */
static lt_tensor *colour_model(void *ctx, const lt_tensor *x, lt_tensor **feat)
{
    (void)ctx;
    (void)feat;
    lt_tensor *m = lt_mean(x, 2, (int[]){2, 3}, false); /* (N,3) */
    lt_tensor *idx = lt_from_data((int64_t[]){0, 2}, 1, (int64_t[]){2}, LT_I64);
    return lt_index_select(m, 1, idx);
}

static lt_rrr_eval_opts opts(void)
{
    lt_rrr_eval_opts o;
    memset(&o, 0, sizeof o);
    o.split = "val";
    o.image_size = 8;
    for (int k = 0; k < 3; k++) {
        o.mean[k] = 0.0;
        o.std[k] = 1.0;
    }
    o.batch = 3;
    return o;
}

START_TEST(variant_accuracies_of_a_background_model_are_as_expected)
{
    make_tree();
    lt_rrr_model m = {NULL, colour_model, NULL};
    lt_rrr_eval_opts o = opts();
    /* expected accuracy per variant: the model reads the background */
    static const double want[LT_RRR_NVARIANTS] = {100, 100, 0, 0, 50, 100, 100, 100};
    for (int v = 0; v < LT_RRR_NVARIANTS; v++) {
        int64_t corr[2], cnt[2];
        ck_assert_msg(lt_rrr_eval_variant(&m, root, lt_rrr_variants[v], &o, 2, corr, cnt) == 0, "%s",
                      lt_last_error());
        ck_assert_int_eq(cnt[0] + cnt[1], 4);
        double acc = 100.0 * (double)(corr[0] + corr[1]) / 4.0;
        ck_assert_msg(acc == want[v], "%s: %g%%, expected %g%%", lt_rrr_variants[v], acc, want[v]);
    }
    /* with the whole image inside the edge band, everything is black: ties
     * go to class 0, so half right */
    o.edge_width = 224;
    int64_t corr[2], cnt[2];
    ck_assert_int_eq(lt_rrr_eval_variant(&m, root, "original", &o, 2, corr, cnt), 0);
    ck_assert_int_eq(corr[0] + corr[1], 2);
    /* every correctly classified foreground flips on some background of the
     * other class: the challenge score is 0 */
    o.edge_width = 0;
    double score;
    int64_t nfg, nvul;
    ck_assert_int_eq(lt_rrr_bg_challenge(&m, root, &o, 4, 0, &score, &nfg, &nvul), 0);
    ck_assert_int_eq(nfg, 4);
    ck_assert_int_eq(nvul, 4);
    ck_assert_double_eq(score, 0.0);
    /* a class-count mismatch is an error naming the folder */
    ck_assert_int_eq(lt_rrr_eval_variant(&m, root, "original", &o, 3, corr, cnt), -1);
    ck_assert_ptr_nonnull(strstr(lt_last_error(), "classes"));
    remove_tree();
}
END_TEST

/* Run tools/eval_bg_gap with args; returns the exit status and captures
 * stderr's lines. */
static int run_tool(const char *args, char *err, size_t n)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "./tools/eval_bg_gap %s 2>&1 >/dev/null", args);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t k = fread(err, 1, n - 1, p);
    err[k] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static int lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

START_TEST(eval_bg_gap_rejects_bad_input_with_one_line)
{
    make_tree();
    char args[1024], err[4096];
    /* not a checkpoint */
    char bogus[400];
    snprintf(bogus, sizeof bogus, "%s/bogus.safetensors", root);
    FILE *f = fopen(bogus, "w");
    ck_assert_ptr_nonnull(f);
    fputs("not a safetensors file", f);
    fclose(f);
    static const struct {
        const char *fmt;
        int status;
        const char *needle;
    } cases[] = {
        {"--data %s --checkpoint %s/bogus.safetensors", 1, "bogus"},
        {"--data %s/nope --checkpoint %s/x", 1, "does not exist"},
        {"--data %s --checkpoint %s/x --frobnicate", 2, "unknown option"},
        {"--data %s --checkpoint %s/x --batch 0", 2, "--batch"},
        {"--data %s --checkpoint %s/x --variants original,moon", 2, "moon"},
        {"--data %s --checkpoint %s/x --edges 5,-3", 2, "--edges"},
        {"--data %s --checkpoint", 2, "needs a value"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(args, sizeof args, cases[i].fmt, root, root);
        int st = run_tool(args, err, sizeof err);
        ck_assert_msg(st == cases[i].status, "case %zu: status %d, output: %s", i, st, err);
        ck_assert_msg(lines(err) == 1 && strstr(err, cases[i].needle), "case %zu: %s", i, err);
    }
    /* a missing variant */
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s/mixed_rand'", root);
    ck_assert_int_eq(system(cmd), 0);
    snprintf(args, sizeof args, "--data %s --checkpoint %s/bogus.safetensors --variants mixed_rand", root, root);
    ck_assert_int_eq(run_tool(args, err, sizeof err), 1);
    ck_assert_ptr_nonnull(strstr(err, "missing"));
    remove_tree();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("eval");
    TCase *tc = tcase_create("bg_challenge");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, variant_accuracies_of_a_background_model_are_as_expected);
    tcase_add_test(tc, eval_bg_gap_rejects_bad_input_with_one_line);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
