/*
 * tools/bench/conv: conv2d forward and backward (input and weight
 * gradients) on every distinct ResNet-18 layer shape (torchvision's
 * ImageNet stem, batch 32, 3x64x64 input, as torch_bench's r18_train_64),
 * against raw cblas_sgemm on the equivalent GEMMs:
 *   forward      (O) x (N Ho Wo) x (C kh kw)
 *   input grad   (C kh kw) x (N Ho Wo) x (O)
 *   weight grad  (O) x (C kh kw) x (N Ho Wo)
 * The raw side is OpenBLAS with its own threads; ours is lt_nn_conv2d and
 * its gradient ops. Each layer runs --rounds rounds after a warm-up; a
 * round times --reps calls of the raw side, then --reps of ours, each side
 * in its own phase (see main), and its ratio is the ratio of the two
 * phases' medians. The layer's ratio is the median of its rounds' ratios,
 * so a slow spell of the shared machine weighs on both sides of a round
 * rather than on one side of the figure; GFLOP/s are the medians over all
 * rounds. GFLOP/s counts 2 FLOPs per multiply-add of the convolution
 * itself (gather traffic is part of our time, not of the FLOPs).
 */
#include <cblas.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libtensor/autograd.h>
#include <libtensor/nn.h>
#include <libtensor/tensor.h>

#include "bench_util.h"

extern void openblas_set_num_threads(int);

typedef struct conv_shape {
    const char *name;
    int64_t C, O, H, k, stride, pad;
} conv_shape;

/* Input sizes at 64x64: stem 64 -> 32, maxpool -> 16, then 16, 8, 4, 2. */
static const conv_shape shapes[] = {
    {"conv1 7x7/2", 3, 64, 64, 7, 2, 3},
    {"layer1 3x3", 64, 64, 16, 3, 1, 1},
    {"layer2.0.conv1 3x3/2", 64, 128, 16, 3, 2, 1},
    {"layer2 3x3", 128, 128, 8, 3, 1, 1},
    {"layer2.0.downsample 1x1/2", 64, 128, 16, 1, 2, 0},
    {"layer3.0.conv1 3x3/2", 128, 256, 8, 3, 2, 1},
    {"layer3 3x3", 256, 256, 4, 3, 1, 1},
    {"layer3.0.downsample 1x1/2", 128, 256, 8, 1, 2, 0},
    {"layer4.0.conv1 3x3/2", 256, 512, 4, 3, 2, 1},
    {"layer4 3x3", 512, 512, 2, 3, 1, 1},
    {"layer4.0.downsample 1x1/2", 256, 512, 4, 1, 2, 0},
};
#define NSHAPES ((int)(sizeof shapes / sizeof shapes[0]))

typedef struct bufs {
    float *a, *b, *c;
} bufs;

/* Three raw GEMMs with the conv's shapes; returns seconds. */
static double raw_step(const conv_shape *s, int64_t N, int64_t Ho, bufs *m, int threads)
{
    int64_t K = s->C * s->k * s->k, L = N * Ho * Ho;
    openblas_set_num_threads(threads);
    double t0 = now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)s->O, (int)L, (int)K, 1, m->a, (int)K, m->b,
                (int)L, 0, m->c, (int)L);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)K, (int)L, (int)s->O, 1, m->a, (int)K, m->c,
                (int)L, 0, m->b, (int)L);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)s->O, (int)K, (int)L, 1, m->c, (int)L, m->b,
                (int)L, 0, m->a, (int)K);
    double t = now() - t0;
    openblas_set_num_threads(1);
    return t;
}

static double ours_step(const conv_shape *s, lt_tensor *x, lt_tensor *w)
{
    double t0 = now();
    size_t mk = lt_frame_push();
    lt_tensor *y = lt_nn_conv2d(x, w, NULL, (int)s->stride, (int)s->pad, 1);
    lt_nn_conv2d_params p = lt_nn_conv2d_params_make((int)s->stride, (int)s->pad, 1);
    lt_tensor *gx = lt_nn_conv2d_input_grad(y, w, lt_shape(x), &p);
    lt_tensor *gw = lt_nn_conv2d_weight_grad(x, y, lt_shape(w), &p);
    int ok = y && gx && gw;
    lt_frame_pop(mk);
    return ok ? now() - t0 : -1;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: conv [--threads N] [--batch N] [--reps N] [--rounds N] [--json FILE]\n\n"
               "conv2d forward + input grad + weight grad on every distinct ResNet-18 layer shape\n"
               "(ImageNet stem, 3x64x64 input) against raw cblas_sgemm on the equivalent GEMMs.\n\n"
               "  --threads N   threads (default 2)\n"
               "  --batch N     batch size (default 32)\n"
               "  --reps N      timed calls per side in a round, median taken (default 7, 3..64)\n"
               "  --rounds N    alternated rounds per layer, median of their ratios (default 5, 1..64)\n"
               "  --json FILE   also write the results as JSON\n"
               "  --help, --version\n");
}

int main(int argc, char **argv)
{
    int threads = 2, reps = 7, rounds = 5;
    int64_t N = 32;
    const char *json = NULL;
    static const struct option opts[] = {{"threads", required_argument, 0, 't'}, {"batch", required_argument, 0, 'b'},
                                         {"reps", required_argument, 0, 'r'},    {"json", required_argument, 0, 'j'},
                                         {"rounds", required_argument, 0, 'R'},
                                         {"help", no_argument, 0, 'h'},          {"version", no_argument, 0, 'V'},
                                         {0, 0, 0, 0}};
    for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
        switch (c) {
        case 't': threads = atoi(optarg); break;
        case 'b': N = atoll(optarg); break;
        case 'r': reps = atoi(optarg); break;
        case 'R': rounds = atoi(optarg); break;
        case 'j': json = optarg; break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("conv (libtensor) %s\n", LT_VERSION_STRING); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc || threads < 1 || N < 1 || reps < 3 || reps > 64 || rounds < 1 || rounds > 64) {
        fprintf(stderr, "conv: bad arguments (threads >= 1, batch >= 1, reps 3..64, rounds 1..64)\n");
        return 2;
    }
    lt_set_num_threads(threads);
    FILE *jf = json ? fopen(json, "w") : NULL;
    if (json && !jf) {
        fprintf(stderr, "conv: cannot write %s\n", json);
        return 1;
    }
    if (jf)
        fprintf(jf, "{\"threads\": %d, \"batch\": %lld, \"reps\": %d, \"rounds\": %d, \"shapes\": [", threads,
                (long long)N, reps, rounds);
    printf("conv2d fwd+bwd, f32, batch %lld, %d threads, %d rounds of %d calls a side (raw = 3 cblas_sgemm with "
           "OpenBLAS threads)\n",
           (long long)N, threads, rounds, reps);
    printf("%-28s %10s %10s %7s %15s\n", "layer", "raw GF/s", "ours GF/s", "ratio", "rounds min-max");
    double lr_sum = 0;
    for (int i = 0; i < NSHAPES; i++) {
        const conv_shape *s = &shapes[i];
        int64_t Ho = (s->H + 2 * s->pad - s->k) / s->stride + 1;
        int64_t K = s->C * s->k * s->k, L = N * Ho * Ho;
        double flop = 3.0 * 2.0 * (double)s->O * (double)L * (double)K;
        size_t mk = lt_frame_push();
        lt_rng r = lt_rng_new(1);
        lt_tensor *x = lt_rand_normal(&r, 4, (int64_t[]){N, s->C, s->H, s->H}, 0, 1, LT_F32);
        lt_tensor *w = lt_rand_normal(&r, 4, (int64_t[]){s->O, s->C, s->k, s->k}, 0, 0.05, LT_F32);
        size_t big = (size_t)(K * L > s->O * L ? K * L : s->O * L);
        big = big > (size_t)(s->O * K) ? big : (size_t)(s->O * K);
        bufs m = {calloc(big, 4), calloc(big, 4), calloc(big, 4)};
        if (!x || !w || !m.a || !m.b || !m.c) {
            fprintf(stderr, "conv: out of memory\n");
            return 1;
        }
        double tr[64], to[64], ar[64 * 64], ao[64 * 64], ratio[64];
        raw_step(s, N, Ho, &m, threads);
        if (ours_step(s, x, w) < 0) {
            fprintf(stderr, "conv: %s\n", lt_last_error());
            return 1;
        }
        /* Each side in its own phase: OpenBLAS's threads (raw side) and
         * OpenMP's (ours) spin-wait after their work, so interleaving single
         * calls would make each side pay for the other's idle spinning. */
        struct timespec pause = {0, 300 * 1000 * 1000};
        for (int rd = 0; rd < rounds; rd++) {
            for (int k = 0; k < reps; k++)
                ar[rd * reps + k] = tr[k] = raw_step(s, N, Ho, &m, threads);
            nanosleep(&pause, NULL);
            for (int k = 0; k < reps; k++)
                if ((ao[rd * reps + k] = to[k] = ours_step(s, x, w)) < 0) {
                    fprintf(stderr, "conv: %s\n", lt_last_error());
                    return 1;
                }
            nanosleep(&pause, NULL);
            ratio[rd] = median(tr, reps) / median(to, reps); /* ours GF/s over raw GF/s */
        }
        double lo = ratio[0], hi = ratio[0];
        for (int rd = 1; rd < rounds; rd++) {
            lo = ratio[rd] < lo ? ratio[rd] : lo;
            hi = ratio[rd] > hi ? ratio[rd] : hi;
        }
        double sorted[64];
        memcpy(sorted, ratio, sizeof(double) * (size_t)rounds);
        double rt = median(sorted, rounds);
        double gr = flop / median(ar, rounds * reps) / 1e9, go = flop / median(ao, rounds * reps) / 1e9;
        lr_sum += rt;
        printf("%-28s %10.1f %10.1f %7.3f %7.3f-%-7.3f\n", s->name, gr, go, rt, lo, hi);
        if (jf) {
            fprintf(jf,
                    "%s{\"layer\": \"%s\", \"raw_gflops\": %.2f, \"ours_gflops\": %.2f, \"ratio\": %.4f, "
                    "\"round_ratios\": [",
                    i ? ", " : "", s->name, gr, go, rt);
            for (int rd = 0; rd < rounds; rd++)
                fprintf(jf, "%s%.4f", rd ? ", " : "", ratio[rd]);
            fprintf(jf, "]}");
        }
        free(m.a);
        free(m.b);
        free(m.c);
        lt_frame_pop(mk);
    }
    printf("mean ratio %.3f\n", lr_sum / NSHAPES);
    if (jf) {
        fprintf(jf, "], \"mean_ratio\": %.4f}\n", lr_sum / NSHAPES);
        fclose(jf);
    }
    return 0;
}
