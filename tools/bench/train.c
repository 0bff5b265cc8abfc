/*
 * tools/bench/train: whole training (and inference) steps of ResNet-18 and a
 * small ViT, our side of exactly the cases of ../shared/bench/torch_bench.py
 * (the PyTorch reference), with the same model, batch, input, loss and
 * optimizer, timed the same way:
 *
 *   r18_train_64     torchvision resnet18(num_classes=10), b32, 3x64x64, CE + SGD
 *   r18_train_32     same, 3x32x32
 *   r18_train_224    same, b8, 3x224x224
 *   r18_rrr_64       b32, 3x64x64, + RRR penalty (double backward)
 *   r18_gradmask_64  b32, 3x64x64, + GradMask-style penalty (double backward)
 *   vit_train_32     ViT patch 4, dim 192, depth 6, heads 3, MLP 768, cls token,
 *                    10 classes, b64, 3x32x32
 *   vit_rrr_32       same ViT + RRR
 *   r18_infer_64     resnet18 eval + no_grad, b64, 3x64x64
 *
 * ResNet-18 is lt_nn_resnet_new(lt_nn_resnet18_config(10, ImageNet stem)),
 * torchvision's resnet18 layer for layer. The ViT is lt_nn_vit_new with
 * patch 4, dim 192, depth 6, heads 3, mlp_ratio 4, LayerNorm eps 1e-5
 * (torch's nn.LayerNorm default). torch_bench's ViT embeds patches with a
 * Linear on flattened (C,p,p) patches, ours (timm's layout) with a conv of
 * kernel = stride = patch: the same function and the same FLOPs (a conv
 * whose windows tile the image is a Linear on the flattened windows), only
 * the parameter layout differs. Everything else (pre-norm blocks, exact
 * GELU, class token, learned position embedding, head on the final-norm
 * class token) is the same.
 *
 * One step (as torch_bench.py): zero_grad (set to none), forward, CE,
 * backward (for RRR/GradMask with create_graph), SGD lr 0.01 momentum 0.9.
 * Penalties, lam = 0.01, mask = 1 on the left half (columns < W/2) of every
 * image:
 *   RRR:      g = d/dx sum(log_softmax(z)), loss = CE + lam sum((mask g)^2)
 *   GradMask: s = z_y - max_{j != y} z_j,  g = d/dx sum(s), same penalty.
 * Each step is timed around everything, including releasing the step's
 * temporaries (the frame pop). Warm-up steps first, then the median of the
 * timed steps; img/s = batch / median. Peak RSS is getrusage's ru_maxrss of
 * the process running the case (--case all runs each case in a fresh
 * process so peaks do not carry over); rss_before_steps is VmRSS after the
 * model, data and optimizer are built, as torch_bench reports it.
 */
#include <libtensor/autograd.h>
#include <libtensor/nn.h>
#include <libtensor/optim.h>
#include <libtensor/tensor.h>

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"

typedef enum { K_TRAIN, K_RRR, K_GRADMASK, K_INFER } step_kind;

typedef struct bench_case {
    const char *name;
    bool vit;
    int64_t batch, hw;
    step_kind kind;
} bench_case;

static const bench_case cases[] = {
    {"r18_train_64", false, 32, 64, K_TRAIN},     {"r18_train_32", false, 32, 32, K_TRAIN},
    {"r18_train_224", false, 8, 224, K_TRAIN},    {"r18_rrr_64", false, 32, 64, K_RRR},
    {"r18_gradmask_64", false, 32, 64, K_GRADMASK}, {"vit_train_32", true, 64, 32, K_TRAIN},
    {"vit_rrr_32", true, 64, 32, K_RRR},          {"r18_infer_64", false, 64, 64, K_INFER},
};
#define NCASES ((int)(sizeof cases / sizeof cases[0]))
#define LAM 0.01
#define MAXSTEPS 1000

static const char *const kind_names[] = {"train", "rrr", "gradmask", "infer"};


static double vm_rss_mib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double v = NAN;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            v = atof(line + 6) / 1024.0;
    if (f)
        fclose(f);
    return v;
}

/* CPU seconds of the whole process (all threads): with --threads 1 a
 * steadier measure of work than wall time on a loaded machine. */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double peak_rss_mib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

typedef struct bench_state {
    const bench_case *c;
    lt_nn_module *model;
    lt_nn_optim *opt;
    lt_tensor *x0, *y, *mask; /* owned */
} bench_state;

/* The penalty's differentiated scalar: sum(log_softmax(z)) for RRR,
 * sum(z_y - max_{j != y} z_j) for GradMask. */
static lt_tensor *saliency_scalar(const bench_state *s, lt_tensor *logits)
{
    if (s->c->kind == K_RRR)
        return lt_sum(lt_log_softmax(logits, 1), 0, NULL, false);
    lt_tensor *yi = lt_unsqueeze(s->y, 1);
    lt_tensor *onehot = lt_one_hot(s->y, lt_size(logits, 1), LT_U8);
    lt_tensor *true_logit = lt_squeeze(lt_gather(logits, 1, yi), 1);
    lt_tensor *other_max = lt_amax(lt_masked_fill(logits, onehot, -INFINITY), 1, (int[]){1}, false);
    return lt_sum(lt_sub(true_logit, other_max), 0, NULL, false);
}

/* One step; returns 0 or -1 (error in lt_last_error). The caller's frame
 * owns the temporaries. */
static int step(bench_state *s)
{
    const bench_case *c = s->c;
    if (c->kind == K_INFER) {
        bool prev = lt_ag_set_grad_enabled(false);
        lt_tensor *z = lt_nn_module_forward(s->model, s->x0);
        lt_ag_set_grad_enabled(prev);
        return z ? 0 : -1;
    }
    lt_nn_module_zero_grad(s->model);
    if (c->kind == K_TRAIN) {
        lt_tensor *loss = lt_nn_cross_entropy(lt_nn_module_forward(s->model, s->x0), s->y, LT_NN_MEAN, 0);
        if (!loss || lt_ag_backward(loss, NULL, false, false) < 0)
            return -1;
        return lt_nn_optim_step(s->opt);
    }
    lt_tensor *x = lt_ag_set_requires_grad(lt_clone(s->x0), true);
    lt_tensor *logits = lt_nn_module_forward(s->model, x);
    lt_tensor *sc = logits ? saliency_scalar(s, logits) : NULL;
    lt_tensor *g = NULL;
    if (!sc || lt_ag_grad(1, &sc, 1, &x, NULL, true, true, false, &g) < 0)
        return -1;
    lt_tensor *pen = lt_sum(lt_pow_scalar(lt_mul(s->mask, g), 2.0), 0, NULL, false);
    lt_tensor *loss = lt_add(lt_nn_cross_entropy(logits, s->y, LT_NN_MEAN, 0), lt_mul_scalar(pen, LAM));
    if (!loss || lt_ag_backward(loss, NULL, false, false) < 0)
        return -1;
    return lt_nn_optim_step(s->opt);
}

static int setup(bench_state *s, const bench_case *c)
{
    *s = (bench_state){.c = c};
    lt_rng r = lt_rng_new(0);
    if (c->vit) {
        lt_nn_vit_config vc = lt_nn_vit_config_make(c->hw, 4, 10);
        vc.depth = 6;
        vc.ln_eps = 1e-5;
        s->model = lt_nn_vit_new(&vc, &r);
    } else {
        lt_nn_resnet_config rc = lt_nn_resnet18_config(10, LT_NN_STEM_IMAGENET);
        s->model = lt_nn_resnet_new(&rc, &r);
    }
    if (!s->model)
        return -1;
    lt_nn_module_train(s->model, c->kind != K_INFER);
    size_t m = lt_frame_push();
    int64_t shape[4] = {c->batch, 3, c->hw, c->hw};
    s->x0 = lt_retain(lt_rand_normal(&r, 4, shape, 0, 1, LT_F32));
    int64_t *lab = malloc(sizeof *lab * (size_t)c->batch);
    for (int64_t i = 0; lab && i < c->batch; i++)
        lab[i] = (int64_t)(lt_rng_u64(&r) % 10);
    s->y = lab ? lt_retain(lt_from_data(lab, 1, (int64_t[]){c->batch}, LT_I64)) : NULL;
    free(lab);
    lt_tensor *mk = lt_zeros(4, shape, LT_F32);
    if (mk) {
        float *d = lt_data(mk);
        for (int64_t i = 0; i < lt_numel(mk); i++)
            d[i] = (i % c->hw) < c->hw / 2 ? 1.0f : 0.0f;
    }
    s->mask = lt_retain(mk);
    lt_frame_pop(m);
    if (!s->x0 || !s->y || !s->mask)
        return -1;
    lt_nn_named_tensors p;
    if (lt_nn_module_parameters(s->model, &p) < 0)
        return -1;
    lt_nn_sgd_opts o = lt_nn_sgd_defaults(0.01);
    o.momentum = 0.9;
    s->opt = lt_nn_sgd_new(p.n, p.tensors, &o);
    return s->opt ? 0 : -1;
}

static void teardown(bench_state *s)
{
    lt_nn_optim_free(s->opt);
    lt_nn_module_free(s->model);
    lt_release(s->x0);
    lt_release(s->y);
    lt_release(s->mask);
}

/* Runs one case in this process; prints a RESULT line and a JSON line. */
static int run_case(const bench_case *c, int threads, int warmup, int steps, FILE *jf)
{
    bench_state s;
    if (setup(&s, c) < 0) {
        fprintf(stderr, "train: %s: setup failed: %s\n", c->name, lt_last_error());
        return 1;
    }
    double rss_before = vm_rss_mib(), times[MAXSTEPS], cpu[MAXSTEPS], t_all = now();
    for (int i = 0; i < warmup + steps; i++) {
        double t0 = now(), c0 = cpu_now();
        size_t m = lt_frame_push();
        int rc = step(&s);
        lt_frame_pop(m);
        double dt = now() - t0, dc = cpu_now() - c0;
        if (rc < 0) {
            fprintf(stderr, "train: %s: step %d failed: %s\n", c->name, i, lt_last_error());
            teardown(&s);
            return 1;
        }
        if (i >= warmup) {
            times[i - warmup] = dt;
            cpu[i - warmup] = dc;
        }
    }
    double wall = now() - t_all;
    double sorted[MAXSTEPS];
    memcpy(sorted, times, sizeof(double) * (size_t)steps);
    double med = median(sorted, steps); /* sorts: min and max are its ends */
    double ips = (double)c->batch / med, peak = peak_rss_mib();
    double med_cpu = median(cpu, steps);
    printf("RESULT %-16s batch=%-3lld in=3x%lldx%-5lld thr=%d  median=%.4fs  %.1f img/s (best %.1f)  "
           "cpu=%.4fs  peakRSS=%.0f MiB (before steps %.0f)\n",
           c->name, (long long)c->batch, (long long)c->hw, (long long)c->hw, threads, med, ips,
           (double)c->batch / sorted[0], med_cpu, peak, rss_before);
    char js[4096];
    int k = snprintf(js, sizeof js,
                     "{\"case\": \"%s\", \"model\": \"%s\", \"batch\": %lld, \"input\": \"3x%lldx%lld\", "
                     "\"kind\": \"%s\", \"threads\": %d, \"warmup\": %d, \"steps\": %d, \"median_s\": %.5f, "
                     "\"min_s\": %.5f, \"max_s\": %.5f, \"median_cpu_s\": %.5f, \"img_per_s\": %.2f, \"img_per_s_best\": %.2f, "
                     "\"rss_before_steps_mib\": %.1f, \"peak_rss_mib\": %.1f, \"wall_s\": %.2f, "
                     "\"step_times_s\": [",
                     c->name, c->vit ? "vit" : "r18", (long long)c->batch, (long long)c->hw, (long long)c->hw,
                     kind_names[c->kind], threads, warmup, steps, med, sorted[0], sorted[steps - 1], med_cpu, ips,
                     (double)c->batch / sorted[0], rss_before, peak, wall);
    for (int i = 0; i < steps && k < (int)sizeof js - 32; i++)
        k += snprintf(js + k, sizeof js - (size_t)k, "%s%.4f", i ? ", " : "", times[i]);
    snprintf(js + k, sizeof js - (size_t)k, "]}");
    printf("JSON %s\n", js);
    fflush(stdout);
    if (jf)
        fprintf(jf, "%s\n", js);
    teardown(&s);
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: train [--case NAME|all] [--steps N] [--warmup N] [--threads N] [--json FILE]\n\n"
            "Training / inference steps of ResNet-18 and a small ViT, the cases of torch_bench.py\n"
            "(PyTorch's side; see tools/bench/compare.sh). Prints img/s, the median step time and peak RSS.\n\n"
            "  --case NAME   one of the cases below, or all (default; each in its own process)\n"
            "  --steps N     timed steps, median taken (default 10, >= 5)\n"
            "  --warmup N    untimed steps first (default 3)\n"
            "  --threads N   threads (default 2)\n"
            "  --json FILE   also write one JSON object per case, one per line\n"
            "  --list        print the case names\n"
            "  --help, --version\n\ncases:");
    for (int i = 0; i < NCASES; i++)
        fprintf(f, " %s", cases[i].name);
    fprintf(f, "\n");
}

int main(int argc, char **argv)
{
    int threads = 2, warmup = 3, steps = 10;
    const char *name = "all", *json = NULL;
    static const struct option opts[] = {
        {"case", required_argument, 0, 'c'}, {"steps", required_argument, 0, 's'},
        {"warmup", required_argument, 0, 'w'}, {"threads", required_argument, 0, 't'},
        {"json", required_argument, 0, 'j'}, {"list", no_argument, 0, 'l'},
        {"help", no_argument, 0, 'h'},       {"version", no_argument, 0, 'V'},
        {0, 0, 0, 0}};
    for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
        switch (c) {
        case 'c': name = optarg; break;
        case 's': steps = atoi(optarg); break;
        case 'w': warmup = atoi(optarg); break;
        case 't': threads = atoi(optarg); break;
        case 'j': json = optarg; break;
        case 'l':
            for (int i = 0; i < NCASES; i++)
                printf("%s\n", cases[i].name);
            return 0;
        case 'h': usage(stdout); return 0;
        case 'V': printf("train (libtensor) %s\n", LT_VERSION_STRING); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc || threads < 1 || warmup < 0 || steps < 5 || steps > MAXSTEPS) {
        fprintf(stderr, "train: bad arguments (threads >= 1, warmup >= 0, 5 <= steps <= %d)\n", MAXSTEPS);
        return 2;
    }
    const bench_case *one = NULL;
    if (strcmp(name, "all") != 0) {
        for (int i = 0; i < NCASES; i++)
            if (strcmp(name, cases[i].name) == 0)
                one = &cases[i];
        if (!one) {
            fprintf(stderr, "train: unknown case '%s' (try --list)\n", name);
            return 2;
        }
    }
    FILE *jf = NULL;
    if (json && !(jf = fopen(json, "w"))) {
        fprintf(stderr, "train: cannot write %s\n", json);
        return 1;
    }
    if (one) {
        lt_set_num_threads(threads);
        int rc = run_case(one, threads, warmup, steps, jf);
        if (jf)
            fclose(jf);
        return rc;
    }
    /* all: one fresh process per case, so each peak RSS is that case's. */
    if (jf)
        fclose(jf);
    int status = 0;
    for (int i = 0; i < NCASES; i++) {
        fflush(stdout);
        pid_t pid = fork();
        if (pid < 0) {
            perror("train: fork");
            return 1;
        }
        if (pid == 0) {
            char a_steps[16], a_warm[16], a_thr[16], jtmp[4096];
            snprintf(a_steps, sizeof a_steps, "%d", steps);
            snprintf(a_warm, sizeof a_warm, "%d", warmup);
            snprintf(a_thr, sizeof a_thr, "%d", threads);
            char *args[16] = {argv[0], "--case", (char *)cases[i].name, "--steps", a_steps, "--warmup", a_warm,
                              "--threads", a_thr, NULL};
            if (json) {
                snprintf(jtmp, sizeof jtmp, "%s.part", json);
                args[9] = "--json";
                args[10] = jtmp;
                args[11] = NULL;
            }
            execv("/proc/self/exe", args);
            perror("train: exec");
            _exit(127);
        }
        int ws;
        waitpid(pid, &ws, 0);
        if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
            fprintf(stderr, "train: case %s failed\n", cases[i].name);
            status = 1;
            continue;
        }
        if (json) { /* append the case's line to FILE */
            char jtmp[4096], line[8192];
            snprintf(jtmp, sizeof jtmp, "%s.part", json);
            FILE *in = fopen(jtmp, "r"), *out = fopen(json, "a");
            while (in && out && fgets(line, sizeof line, in))
                fputs(line, out);
            if (in)
                fclose(in);
            if (out)
                fclose(out);
            remove(jtmp);
        }
    }
    return status;
}
