/*
 * test_train.c: lt_rrr_train end to end on a tiny generated benchmark:
 * every method and RRDA train with finite, falling losses; a resumed run
 * ends bitwise equal to an uninterrupted one; bad input fails cleanly.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libtensor/checkpoint.h>
#include <libtensor/data.h>
#include <libtensor/nn.h>
#include <libtensor/rrr.h>

static char root[256], data[300];

static void make_data(void)
{
    snprintf(root, sizeof root, "/tmp/lt_train_XXXXXX");
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        exit(1);
    }
    snprintf(data, sizeof data, "%s/bgc", root);
    lt_data_bgc_opts o;
    lt_data_bgc_defaults(&o);
    o.out = data;
    o.size = 16;
    o.train_per_class = 2;
    o.val_per_class = 1;
    o.threads = 2;
    if (lt_data_bgc_generate(&o) != 0) {
        fprintf(stderr, "test_train: cannot generate the data: %s\n", lt_last_error());
        exit(1);
    }
}

static void remove_data(void)
{
    char cmd[600];
    if (root[0] && strncmp(root, "/tmp/lt_train_", 14) == 0) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", root);
    }
}

typedef struct losses {
    double v[64];
    int n;
} losses;

static void record(void *ud, const lt_rrr_train_status *s)
{
    losses *l = ud;
    if (strcmp(s->phase, "train") == 0 && l->n < 64)
        l->v[l->n++] = s->step_loss;
}

static void base_config(lt_rrr_train_config *c, const char *out)
{
    lt_rrr_train_defaults(c, LT_RRR_ARCH_RESNET18);
    c->data = data;
    c->image_size = 16;
    c->batch = 20; /* the whole training set: every step sees the same images */
    c->epochs = 4;
    c->lr = 0.02;
    c->schedule = "none";
    c->workers = 1;
    c->out = out;
}

static const struct {
    lt_rrr_method m;
    bool rrda;
} cases[] = {{LT_RRR_STANDARD, false}, {LT_RRR_RRR, false},         {LT_RRR_GRADMASK, false},
             {LT_RRR_ACTDIFF, false},  {LT_RRR_ADVERSARIAL, false}, {LT_RRR_STANDARD, true}};

START_TEST(every_method_trains_with_a_finite_falling_loss)
{
    char out[400];
    snprintf(out, sizeof out, "%s/m%d.safetensors", root, _i);
    lt_rrr_train_config c;
    base_config(&c, out);
    c.method = cases[_i].m;
    c.rrda = cases[_i].rrda;
    if (c.rrda)
        c.rrda_p = 1.0;
    losses l = {{0}, 0};
    ck_assert_msg(lt_rrr_train(&c, record, &l) == 0, "%s: %s", lt_rrr_method_name(c.method), lt_last_error());
    ck_assert_int_eq(l.n, 4);
    for (int i = 0; i < l.n; i++)
        ck_assert_msg(isfinite(l.v[i]), "step %d loss %g", i, l.v[i]);
    ck_assert_msg(l.v[l.n - 1] < l.v[0], "%s%s: loss %g -> %g did not fall", lt_rrr_method_name(c.method),
                  c.rrda ? "+rrda" : "", l.v[0], l.v[l.n - 1]);
    /* the checkpoint rebuilds the model from its metadata alone */
    lt_rrr_model_info info;
    lt_nn_module *m = lt_rrr_model_load(out, &info);
    ck_assert_msg(m != NULL, "%s", lt_last_error());
    ck_assert_int_eq(info.num_classes, 10);
    ck_assert_int_eq(info.image_size, 16);
    ck_assert_ptr_nonnull(info.class_names);
    lt_nn_module_free(m);
    lt_rrr_model_info_free(&info);
}
END_TEST

static int same_tensors(const char *a, const char *b)
{
    lt_nn_tensor_file *fa = lt_nn_safetensors_load(a), *fb = lt_nn_safetensors_load(b);
    int diff = -1;
    if (fa && fb && lt_nn_tensor_file_count(fa) == lt_nn_tensor_file_count(fb)) {
        diff = 0;
        for (int i = 0; i < lt_nn_tensor_file_count(fa); i++) {
            const char *name = lt_nn_tensor_file_name(fa, i);
            int k = lt_nn_tensor_file_find(fb, name);
            lt_tensor *x = lt_nn_tensor_file_tensor(fa, i), *y = k >= 0 ? lt_nn_tensor_file_tensor(fb, k) : NULL;
            if (!y || lt_numel(x) != lt_numel(y) ||
                memcmp(lt_data(x), lt_data(y), (size_t)lt_numel(x) * lt_dtype_size(lt_dtype_of(x))) != 0) {
                fprintf(stderr, "differs: %s\n", name);
                diff++;
            }
        }
    }
    lt_nn_tensor_file_free(fa);
    lt_nn_tensor_file_free(fb);
    return diff;
}

START_TEST(a_resumed_run_ends_bitwise_equal_to_an_uninterrupted_one)
{
    char a[400], b[400];
    snprintf(a, sizeof a, "%s/full.safetensors", root);
    snprintf(b, sizeof b, "%s/part.safetensors", root);
    lt_rrr_train_config c;
    base_config(&c, a);
    c.batch = 8; /* 20 images: 2 batches an epoch */
    c.epochs = 3;
    c.rrda = true;
    c.method = LT_RRR_ACTDIFF;
    c.actdiff_mode = LT_RRR_ACTDIFF_SHUFFLE; /* uses the run's RNG too */
    c.schedule = "cosine";
    c.workers = 2;
    ck_assert_msg(lt_rrr_train(&c, NULL, NULL) == 0, "%s", lt_last_error());
    /* stop in the middle of the second epoch, then resume */
    c.out = b;
    c.max_steps = 3;
    ck_assert_msg(lt_rrr_train(&c, NULL, NULL) == 0, "%s", lt_last_error());
    c.max_steps = 0;
    c.resume = b;
    ck_assert_msg(lt_rrr_train(&c, NULL, NULL) == 0, "%s", lt_last_error());
    ck_assert_int_eq(same_tensors(a, b), 0);
}
END_TEST

START_TEST(bad_input_fails_with_a_clear_message)
{
    char out[400], missing[400];
    snprintf(out, sizeof out, "%s/bad.safetensors", root);
    snprintf(missing, sizeof missing, "%s/no_such_dir", root);
    lt_rrr_train_config c;
    base_config(&c, out);
    c.data = missing;
    ck_assert_int_eq(lt_rrr_train(&c, NULL, NULL), -1);
    ck_assert_ptr_nonnull(strstr(lt_last_error(), "does not exist"));
    /* a mask-needing method on a folder without masks */
    char folder[400], cmd[1400];
    snprintf(folder, sizeof folder, "%s/plain", root);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && cp -r '%s/original/train' '%s/train'", folder, data, folder);
    ck_assert_int_eq(system(cmd), 0);
    base_config(&c, out);
    c.data = folder;
    c.dataset = "folder";
    c.method = LT_RRR_RRR;
    ck_assert_int_eq(lt_rrr_train(&c, NULL, NULL), -1);
    ck_assert_ptr_nonnull(strstr(lt_last_error(), "mask"));
    /* resuming a checkpoint of another architecture */
    base_config(&c, out);
    c.epochs = 1;
    c.max_steps = 1;
    ck_assert_int_eq(lt_rrr_train(&c, NULL, NULL), 0);
    lt_rrr_train_config v;
    lt_rrr_train_defaults(&v, LT_RRR_ARCH_VIT);
    v.data = data;
    v.image_size = 16;
    v.vit_dim = 12;
    v.vit_depth = 1;
    v.batch = 8;
    v.out = missing;
    v.resume = out;
    ck_assert_int_eq(lt_rrr_train(&v, NULL, NULL), -1);
    ck_assert_msg(strstr(lt_last_error(), "resnet18") != NULL, "%s", lt_last_error());
    /* bad numbers */
    base_config(&c, out);
    c.batch = 0;
    ck_assert_int_eq(lt_rrr_train(&c, NULL, NULL), -1);
}
END_TEST

int main(void)
{
    make_data();
    Suite *s = suite_create("train");
    TCase *tc = tcase_create("end_to_end");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, every_method_trains_with_a_finite_falling_loss, 0, (int)(sizeof cases / sizeof cases[0]));
    tcase_add_test(tc, a_resumed_run_ends_bitwise_equal_to_an_uninterrupted_one);
    tcase_add_test(tc, bad_input_fails_with_a_clear_message);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    remove_data();
    return failed ? 1 : 0;
}
