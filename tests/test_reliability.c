/*
 * test_reliability.c: the guarantees of docs/reliability.md that span
 * modules: crash-safe training (SIGKILL and resume, kills during saves),
 * determinism (same seed, same bytes; 1 and 2 threads give the same
 * gradients) and allocation-failure injection through a whole
 * forward / create_graph backward / checkpoint save.
 */
#include <check.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libtensor/autograd.h>
#include <libtensor/checkpoint.h>
#include <libtensor/nn.h>
#include <libtensor/tensor.h>

static char root[64];

static int sh(const char *cmd)
{
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void setup(void)
{
    snprintf(root, sizeof root, "/tmp/lt_rel_XXXXXX");
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        exit(1);
    }
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "./tools/make_bg_challenge --out %s/bgc --size 16 --train-per-class 4 --val-per-class 1 --quiet "
             ">/dev/null 2>&1",
             root);
    if (sh(cmd) != 0) {
        fprintf(stderr, "test_reliability: cannot generate data\n");
        exit(1);
    }
}

static void teardown(void)
{
    char cmd[128];
    if (strncmp(root, "/tmp/lt_rel_", 12) == 0) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", root);
    }
}

/* 40 images, batch 8: 5 steps an epoch; 2 epochs. */
#define TRAIN_ARGS "--size 16 --batch 8 --epochs 2 --workers 1 --threads 2 --rrda --seed 3"

static pid_t spawn_train(const char *out, const char *extra)
{
    pid_t pid = fork();
    if (pid == 0) {
        char cmd[1024];
        snprintf(cmd, sizeof cmd, "exec ./tools/train_resnet18 --data %s/bgc --out %s " TRAIN_ARGS " %s >/dev/null 2>&1",
                 root, out, extra);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static bool exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && st.st_size > 0;
}

START_TEST(a_run_killed_mid_epoch_resumes_to_bitwise_equal_weights)
{
    char full[128], part[128], cmd[1024];
    snprintf(full, sizeof full, "%s/full.safetensors", root);
    snprintf(part, sizeof part, "%s/part.safetensors", root);
    snprintf(cmd, sizeof cmd, "./tools/train_resnet18 --data %s/bgc --out %s " TRAIN_ARGS " >/dev/null 2>&1", root,
             full);
    ck_assert_int_eq(sh(cmd), 0);
    /* checkpoint every 2 steps; kill once the first one exists */
    pid_t pid = spawn_train(part, "--save-every 2");
    for (int i = 0; i < 6000 && !exists(part); i++)
        usleep(10000);
    ck_assert_msg(exists(part), "no checkpoint appeared");
    kill(pid, SIGKILL);
    int st;
    waitpid(pid, &st, 0);
    ck_assert(WIFSIGNALED(st));
    snprintf(cmd, sizeof cmd,
             "./tools/train_resnet18 --data %s/bgc --out %s " TRAIN_ARGS " --save-every 2 --resume %s >/dev/null 2>&1",
             root, part, part);
    ck_assert_int_eq(sh(cmd), 0);
    /* weights, buffers and optimizer state are equal bit for bit */
    lt_nn_tensor_file *a = lt_nn_safetensors_load(full), *b = lt_nn_safetensors_load(part);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(lt_nn_tensor_file_count(a), lt_nn_tensor_file_count(b));
    int diff = 0;
    for (int i = 0; i < lt_nn_tensor_file_count(a); i++) {
        lt_tensor *x = lt_nn_tensor_file_tensor(a, i);
        int k = lt_nn_tensor_file_find(b, lt_nn_tensor_file_name(a, i));
        lt_tensor *y = k >= 0 ? lt_nn_tensor_file_tensor(b, k) : NULL;
        diff += !y || memcmp(lt_data(x), lt_data(y), (size_t)lt_numel(x) * lt_dtype_size(lt_dtype_of(x))) != 0;
    }
    ck_assert_int_eq(diff, 0);
    lt_nn_tensor_file_free(a);
    lt_nn_tensor_file_free(b);
}
END_TEST

START_TEST(kills_during_saves_never_leave_a_broken_checkpoint)
{
    char out[128];
    snprintf(out, sizeof out, "%s/kills.safetensors", root);
    srand(7);
    int checked = 0;
    for (int round = 0; round < 5; round++) {
        pid_t pid = spawn_train(out, "--save-every 1");
        /* wait for a checkpoint, then kill at a random moment: with a save
         * every step, many kills land in or near a save */
        for (int i = 0; i < 6000 && !exists(out); i++)
            usleep(10000);
        usleep((useconds_t)(rand() % 400000));
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        if (!exists(out))
            continue;
        lt_nn_tensor_file *f = lt_nn_safetensors_load(out);
        ck_assert_msg(f != NULL, "round %d: %s", round, lt_last_error());
        ck_assert_ptr_nonnull(lt_nn_tensor_file_meta(f, "train.step"));
        lt_nn_tensor_file_free(f);
        checked++;
    }
    ck_assert_int_gt(checked, 2);
    /* The killed saves may have left temporary files; the next successful
     * save of the path (here this process's) removes them all, their
     * processes being dead. */
    lt_tensor *t = lt_ones(1, (int64_t[]){2}, LT_F32);
    ck_assert_int_eq(lt_nn_safetensors_save(out, 1, (const char *[]){"t"}, (lt_tensor *[]){t}, 0, NULL, NULL), 0);
    lt_release(t);
    const char *prefix = "kills.safetensors.tmp.";
    DIR *d = opendir(root);
    ck_assert_ptr_nonnull(d);
    for (struct dirent *e; (e = readdir(d));)
        ck_assert_msg(strncmp(e->d_name, prefix, strlen(prefix)) != 0, "%s was left", e->d_name);
    closedir(d);
}
END_TEST

START_TEST(the_same_seed_and_threads_give_byte_identical_checkpoints)
{
    char a[128], b[128], cmd[1024];
    snprintf(a, sizeof a, "%s/same_a.safetensors", root);
    snprintf(b, sizeof b, "%s/same_b.safetensors", root);
    for (int k = 0; k < 2; k++) {
        snprintf(cmd, sizeof cmd,
                 "./tools/train_resnet18 --data %s/bgc --out %s --size 16 --batch 8 --epochs 1 --workers 2 --threads 2 "
                 "--method gradmask --seed 11 >/dev/null 2>&1",
                 root, k ? b : a);
        ck_assert_int_eq(sh(cmd), 0);
    }
    snprintf(cmd, sizeof cmd, "cmp -s %s %s", a, b);
    ck_assert_int_eq(sh(cmd), 0);
}
END_TEST

/* ResNet-18 (small stem) forward and backward at 1 and 2 threads. */
START_TEST(resnet_forward_and_backward_are_bitwise_equal_for_1_and_2_threads)
{
    lt_tensor *grads[2][64] = {{0}}, *logits[2];
    int np = 0;
    for (int t = 0; t < 2; t++) {
        lt_set_num_threads(t + 1);
        lt_rng r = lt_rng_new(5);
        lt_nn_resnet_config cfg = lt_nn_resnet18_config(10, LT_NN_STEM_SMALL);
        lt_nn_module *m = lt_nn_resnet_new(&cfg, &r);
        ck_assert_ptr_nonnull(m);
        size_t mk = lt_frame_push();
        lt_rng rx = lt_rng_new(6);
        lt_tensor *x = lt_rand_normal(&rx, 4, (int64_t[]){4, 3, 32, 32}, 0, 1, LT_F32);
        lt_tensor *y = lt_from_data((int64_t[]){1, 2, 3, 4}, 1, (int64_t[]){4}, LT_I64);
        lt_tensor *z = lt_nn_module_forward(m, x);
        lt_tensor *loss = lt_nn_cross_entropy(z, y, LT_NN_MEAN, 0.0);
        ck_assert_int_eq(lt_ag_backward(loss, NULL, false, false), 0);
        logits[t] = lt_retain(lt_contiguous(z));
        np = lt_nn_module_param_count(m) < 64 ? lt_nn_module_param_count(m) : 64;
        for (int i = 0; i < np; i++)
            grads[t][i] = lt_retain(lt_ag_grad_of(lt_nn_module_param_at(m, i, NULL)));
        lt_frame_pop(mk);
        lt_nn_module_free(m);
    }
    lt_set_num_threads(2);
    ck_assert_int_eq(memcmp(lt_data(logits[0]), lt_data(logits[1]), 40 * sizeof(float)), 0);
    int diff = 0;
    for (int i = 0; i < np; i++) {
        diff += !grads[0][i] || !grads[1][i] ||
                memcmp(lt_data(grads[0][i]), lt_data(grads[1][i]), (size_t)lt_numel(grads[0][i]) * sizeof(float)) != 0;
        lt_release(grads[0][i]);
        lt_release(grads[1][i]);
    }
    lt_release(logits[0]);
    lt_release(logits[1]);
    ck_assert_int_eq(diff, 0);
}
END_TEST

/* ---- allocation-failure injection ---- */

static long alloc_count, fail_at;

static void *counting_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    (void)ud;
    (void)osize;
    if (nsize == 0) {
        free(ptr);
        return NULL;
    }
    if (++alloc_count == fail_at)
        return NULL;
    return aligned_alloc(64, (nsize + 63) & ~(size_t)63);
}

/* A small conv net, an input-gradient penalty (create_graph), backward,
 * and a checkpoint save. 0 on success, -1 on a clean failure. */
static int representative_step(const char *ckpt)
{
    int rc = -1;
    size_t mk = lt_frame_push();
    lt_rng r = lt_rng_new(2);
    lt_tensor *w = lt_rand_normal(&r, 4, (int64_t[]){4, 2, 3, 3}, 0, 0.3, LT_F32);
    lt_tensor *v = lt_rand_normal(&r, 2, (int64_t[]){3, 4}, 0, 0.3, LT_F32);
    lt_tensor *gamma = lt_ones(1, (int64_t[]){4}, LT_F32), *beta = lt_zeros(1, (int64_t[]){4}, LT_F32);
    lt_tensor *x = lt_rand_normal(&r, 4, (int64_t[]){2, 2, 6, 6}, 0, 1, LT_F32);
    lt_tensor *y = lt_from_data((int64_t[]){0, 2}, 1, (int64_t[]){2}, LT_I64);
    if (!w || !v || !gamma || !beta || !x || !y || !lt_ag_set_requires_grad(w, true) ||
        !lt_ag_set_requires_grad(v, true) || !lt_ag_set_requires_grad(gamma, true) ||
        !lt_ag_set_requires_grad(x, true))
        goto out;
    lt_tensor *h = lt_nn_conv2d(x, w, NULL, 1, 1, 1);
    h = lt_relu(lt_nn_batch_norm(h, NULL, NULL, gamma, beta, true, 0.1, 1e-5));
    h = lt_nn_adaptive_avg_pool2d(lt_nn_max_pool2d(h, 2, 2, 0), 1, 1);
    lt_tensor *z = lt_matmul(lt_reshape(h, 2, (int64_t[]){2, 4}), lt_transpose(v, 0, 1));
    lt_tensor *s = lt_sum(lt_log_softmax(z, 1), 0, NULL, false), *gx;
    if (!s || lt_ag_grad(1, &s, 1, &x, NULL, true, true, false, &gx) < 0)
        goto out;
    lt_tensor *loss = lt_add(lt_nn_cross_entropy(z, y, LT_NN_MEAN, 0.0), lt_sum(lt_mul(gx, gx), 0, NULL, false));
    if (!loss || lt_ag_backward(loss, NULL, false, false) < 0)
        goto out;
    const char *names[3] = {"w", "v", "w.grad"};
    lt_tensor *ts[3] = {w, v, lt_ag_grad_of(w)};
    if (!ts[2] || lt_nn_safetensors_save(ckpt, 3, names, ts, 0, NULL, NULL) < 0)
        goto out;
    rc = 0;
out:
    lt_ag_zero_grad(w);
    lt_ag_zero_grad(v);
    lt_ag_zero_grad(gamma);
    lt_ag_zero_grad(x);
    lt_frame_pop(mk);
    return rc;
}

START_TEST(failing_any_allocation_of_a_double_backward_step_and_save_is_clean)
{
    char ckpt[128];
    snprintf(ckpt, sizeof ckpt, "%s/inject.safetensors", root);
    lt_nn_register_ops();
    /* warm up anything lazily initialized, then count */
    ck_assert_int_eq(representative_step(ckpt), 0);
    lt_frame_pop(0);
    lt_cache_trim();
    lt_set_allocator(counting_alloc, NULL);
    alloc_count = 0;
    fail_at = -1;
    lt_mem_stats base = lt_mem_stats_get();
    ck_assert_int_eq(representative_step(ckpt), 0);
    long total = alloc_count;
    ck_assert_int_gt(total, 100);
    int bad = 0, leaks = 0;
    for (long k = 1; k <= total; k++) {
        alloc_count = 0;
        fail_at = k;
        lt_clear_error();
        int rc = representative_step(ckpt);
        if (rc == 0 || lt_last_error()[0] == '\0')
            bad++;
        lt_frame_pop(0);
        lt_cache_trim();
        lt_mem_stats now = lt_mem_stats_get();
        leaks += now.live_blocks != base.live_blocks || now.live_tensors != base.live_tensors;
    }
    lt_set_allocator(NULL, NULL);
    ck_assert_msg(bad == 0, "%d of %ld injected failures were not reported", bad, total);
    ck_assert_msg(leaks == 0, "%d of %ld injected failures leaked", leaks, total);
    /* the checkpoint written by the last successful save is intact */
    lt_nn_tensor_file *f = lt_nn_safetensors_load(ckpt);
    ck_assert_ptr_nonnull(f);
    lt_nn_tensor_file_free(f);
}
END_TEST

int main(void)
{
    setup();
    Suite *s = suite_create("reliability");
    TCase *tc = tcase_create("reliability");
    tcase_set_timeout(tc, 900);
    tcase_add_test(tc, a_run_killed_mid_epoch_resumes_to_bitwise_equal_weights);
    tcase_add_test(tc, kills_during_saves_never_leave_a_broken_checkpoint);
    tcase_add_test(tc, the_same_seed_and_threads_give_byte_identical_checkpoints);
    tcase_add_test(tc, resnet_forward_and_backward_are_bitwise_equal_for_1_and_2_threads);
    tcase_add_test(tc, failing_any_allocation_of_a_double_backward_step_and_save_is_clean);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    teardown();
    return failed ? 1 : 0;
}
