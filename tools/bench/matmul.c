/*
 * tools/bench/matmul: lt_matmul against raw cblas_sgemm on the same shapes.
 *
 * For each (M,K,N), f32, contiguous operands: one timed sample runs the op
 * enough times to take about --min-ms milliseconds; raw and ours samples are
 * interleaved (alternating which goes first) after a warm-up, and each
 * side's median over --reps samples gives GFLOP/s = 2*M*K*N / time, and
 * the ratio is the median over pairs of raw_time / ours_time. Ours
 * includes everything a caller pays: the output allocation (from the
 * storage cache), the frame push/pop and the observer check.
 *
 * Output: a table on stdout, optional JSON (--json FILE), a progress line
 * on stderr. Exit status 1 on bad flags, a failed op, results that disagree
 * with raw sgemm, or (with --min-ratio R) a ratio below R.
 */
#include <libtensor/tensor.h>

#include <cblas.h>
#include <float.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"

typedef struct shape {
    int64_t m, k, n;
} shape;

static const shape shapes[] = {
    {256, 256, 256},   {512, 512, 512},   {1024, 1024, 1024}, {2048, 2048, 2048},
    {64, 576, 4096},   {128, 1152, 1024}, {512, 4608, 64},
};
#define NSHAPES (int)(sizeof shapes / sizeof shapes[0])

typedef struct result {
    shape s;
    double raw_gflops, ours_gflops, ratio, max_diff;
    int iters;
} result;

static void raw_sgemm(const float *a, const float *b, float *c, shape s)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)s.m, (int)s.n, (int)s.k, 1.0f, a,
                (int)s.k, b, (int)s.n, 0.0f, c, (int)s.n);
}

extern void openblas_set_num_threads(int);
/* The raw baseline is OpenBLAS threading itself with the same thread count;
 * libtensor keeps OpenBLAS at one thread and splits GEMMs with OpenMP. */
static int raw_threads = 1;

/* One timed sample of iters calls; returns seconds, or -1 if an op failed. */
/* Untimed pause before each sample: the other side's threads (OpenBLAS's
 * or OpenMP's) spin-wait for a while after their work and would otherwise
 * steal cycles from this sample. */
static void settle(void)
{
    struct timespec ts = {0, 30 * 1000 * 1000};
    nanosleep(&ts, NULL);
}

static double sample_raw(const lt_tensor *a, const lt_tensor *b, float *c, shape s, int iters)
{
    settle();
    openblas_set_num_threads(raw_threads);
    double t0 = now();
    for (int i = 0; i < iters; i++)
        raw_sgemm(lt_data(a), lt_data(b), c, s);
    double t = now() - t0;
    openblas_set_num_threads(1);
    return t;
}

static double sample_ours(const lt_tensor *a, const lt_tensor *b, int iters)
{
    settle();
    double t0 = now();
    for (int i = 0; i < iters; i++) {
        size_t mark = lt_frame_push();
        lt_tensor *c = lt_matmul(a, b);
        lt_frame_pop(mark);
        if (!c)
            return -1;
    }
    return now() - t0;
}

static int bench_shape(shape s, int reps, double min_s, lt_rng *rng, result *res)
{
    size_t mark = lt_frame_push();
    lt_tensor *a = lt_rand_uniform(rng, 2, (int64_t[]){s.m, s.k}, -1, 1, LT_F32);
    lt_tensor *b = lt_rand_uniform(rng, 2, (int64_t[]){s.k, s.n}, -1, 1, LT_F32);
    float *c = aligned_alloc(64, ((size_t)(s.m * s.n) * sizeof(float) + 63) & ~(size_t)63);
    if (!a || !b || !c) {
        fprintf(stderr, "matmul bench: setup failed: %s\n", c ? lt_last_error() : "out of memory");
        free(c);
        lt_frame_pop(mark);
        return -1;
    }

    /* Correctness against the raw call (same BLAS, same order: equal up to
     * thread scheduling, so allow rounding only). */
    raw_sgemm(lt_data(a), lt_data(b), c, s);
    lt_tensor *ours = lt_matmul(a, b);
    if (!ours) {
        fprintf(stderr, "matmul bench: lt_matmul failed: %s\n", lt_last_error());
        free(c);
        lt_frame_pop(mark);
        return -1;
    }
    const float *o = lt_data(ours);
    double diff = 0;
    for (int64_t i = 0; i < s.m * s.n; i++)
        diff = fmax(diff, fabs((double)o[i] - (double)c[i]) / (1 + fabs((double)c[i])));

    /* Calibrate iterations per sample, then warm up both sides. */
    double t1 = sample_raw(a, b, c, s, 1);
    int iters = t1 >= min_s ? 1 : (int)ceil(min_s / fmax(t1, 1e-7));
    sample_raw(a, b, c, s, iters);
    if (sample_ours(a, b, iters) < 0)
        goto fail;

    double *tr = malloc(sizeof(double) * (size_t)reps), *to = malloc(sizeof(double) * (size_t)reps);
    double *pr = malloc(sizeof(double) * (size_t)reps);
    if (!tr || !to || !pr) {
        free(tr);
        free(to);
        free(pr);
        goto fail;
    }
    for (int r = 0; r < reps; r++) {
        if (r % 2 == 0) {
            tr[r] = sample_raw(a, b, c, s, iters);
            to[r] = sample_ours(a, b, iters);
        } else {
            to[r] = sample_ours(a, b, iters);
            tr[r] = sample_raw(a, b, c, s, iters);
        }
        if (to[r] < 0) {
            free(tr);
            free(to);
            free(pr);
            goto fail;
        }
    }
    /* The ratio is the median of paired ratios: each pair ran back to back,
     * so drifting load on a shared machine cancels within a pair. */
    for (int r = 0; r < reps; r++)
        pr[r] = tr[r] / to[r];
    double flops = 2.0 * (double)s.m * (double)s.k * (double)s.n * iters;
    res->s = s;
    res->iters = iters;
    res->raw_gflops = flops / median(tr, reps) * 1e-9;
    res->ours_gflops = flops / median(to, reps) * 1e-9;
    res->ratio = median(pr, reps);
    free(pr);
    res->max_diff = diff;
    free(tr);
    free(to);
    free(c);
    lt_frame_pop(mark);
    return 0;

fail:
    fprintf(stderr, "matmul bench: lt_matmul failed: %s\n", lt_last_error());
    free(c);
    lt_frame_pop(mark);
    return -1;
}

static int write_json(const char *path, const result *res, int n, int threads, int reps)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        return -1;
    }
    fprintf(f, "{\n  \"benchmark\": \"matmul\",\n  \"dtype\": \"f32\",\n  \"threads\": %d,\n"
               "  \"reps\": %d,\n  \"libtensor\": \"%s\",\n  \"results\": [\n",
            threads, reps, LT_VERSION_STRING);
    for (int i = 0; i < n; i++)
        fprintf(f,
                "    {\"m\": %lld, \"k\": %lld, \"n\": %lld, \"raw_gflops\": %.3f, "
                "\"ours_gflops\": %.3f, \"ratio\": %.4f, \"iters_per_sample\": %d, "
                "\"max_rel_diff\": %.3g}%s\n",
                (long long)res[i].s.m, (long long)res[i].s.k, (long long)res[i].s.n,
                res[i].raw_gflops, res[i].ours_gflops, res[i].ratio, res[i].iters, res[i].max_diff,
                i + 1 < n ? "," : "");
    fprintf(f, "  ]\n}\n");
    if (fclose(f) != 0) {
        perror(path);
        return -1;
    }
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: matmul [options]\n"
            "Compare lt_matmul (f32) with raw cblas_sgemm in GFLOP/s.\n\n"
            "  --threads N     threads for OpenMP and OpenBLAS (default 2)\n"
            "  --reps N        timed samples per side, median taken (default 9, >= 5)\n"
            "  --min-ms MS     minimum length of one sample in ms (default 40)\n"
            "  --seed S        seed for the operands (default 0)\n"
            "  --json FILE     also write the results as JSON\n"
            "  --min-ratio R   exit 1 if any ours/raw ratio is below R (default: no check)\n"
            "  --help          this text\n"
            "  --version       print the version\n");
}

int main(int argc, char **argv)
{
    int threads = 2, reps = 9;
    double min_ms = 40, min_ratio = 0;
    unsigned long long seed = 0;
    const char *json = NULL;
    static const struct option opts[] = {
        {"threads", required_argument, 0, 't'}, {"reps", required_argument, 0, 'r'},
        {"min-ms", required_argument, 0, 'm'},  {"seed", required_argument, 0, 's'},
        {"json", required_argument, 0, 'j'},    {"min-ratio", required_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'},          {"version", no_argument, 0, 'V'},
        {0, 0, 0, 0},
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        char *end = NULL;
        switch (ch) {
        case 't': threads = (int)strtol(optarg, &end, 10); break;
        case 'r': reps = (int)strtol(optarg, &end, 10); break;
        case 'm': min_ms = strtod(optarg, &end); break;
        case 's': seed = strtoull(optarg, &end, 10); break;
        case 'q': min_ratio = strtod(optarg, &end); break;
        case 'j': json = optarg; break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("matmul bench (libtensor %s)\n", LT_VERSION_STRING); return 0;
        default: usage(stderr); return 1;
        }
        if (end && *end) {
            fprintf(stderr, "matmul bench: bad value '%s' for --%s\n", optarg,
                    ch == 't' ? "threads" : ch == 'r' ? "reps" : ch == 'm' ? "min-ms"
                    : ch == 's' ? "seed" : "min-ratio");
            return 1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "matmul bench: unexpected argument '%s'\n", argv[optind]);
        return 1;
    }
    if (threads < 1 || reps < 5 || !(min_ms > 0)) {
        fprintf(stderr, "matmul bench: need --threads >= 1, --reps >= 5, --min-ms > 0\n");
        return 1;
    }

    lt_set_num_threads(threads);
    raw_threads = threads;
    lt_rng rng = lt_rng_new(seed);
    result res[NSHAPES];
    bool tty = isatty(STDERR_FILENO);
    for (int i = 0; i < NSHAPES; i++) {
        fprintf(stderr, "%smatmul bench: shape %d/%d (%lld,%lld,%lld)%s", tty ? "\r" : "", i + 1,
                NSHAPES, (long long)shapes[i].m, (long long)shapes[i].k, (long long)shapes[i].n,
                tty ? "   " : "\n");
        if (bench_shape(shapes[i], reps, min_ms * 1e-3, &rng, &res[i]) < 0)
            return 1;
    }
    if (tty)
        fprintf(stderr, "\n");

    printf("matmul f32, %d threads, median of %d samples (ours = lt_matmul, raw = cblas_sgemm)\n",
           threads, reps);
    printf("%-22s %12s %12s %8s\n", "shape (M,K,N)", "raw GFLOP/s", "ours GFLOP/s", "ratio");
    int bad = 0, wrong = 0;
    for (int i = 0; i < NSHAPES; i++) {
        char sh[64];
        snprintf(sh, sizeof sh, "(%lld,%lld,%lld)", (long long)res[i].s.m, (long long)res[i].s.k,
                 (long long)res[i].s.n);
        printf("%-22s %12.1f %12.1f %8.3f\n", sh, res[i].raw_gflops, res[i].ours_gflops,
               res[i].ratio);
        bad += res[i].ratio < min_ratio;
        /* Both sides round; they may add the K products in different
         * orders (OpenBLAS splits K differently with 1 and 2 threads), so
         * allow the worst-case f32 dot-product error, K ulps: a wrong
         * result is off by O(1). */
        wrong += !(res[i].max_diff <= (double)res[i].s.k * FLT_EPSILON);
    }
    if (json && write_json(json, res, NSHAPES, threads, reps) < 0)
        return 1;
    if (wrong) {
        fprintf(stderr, "matmul bench: lt_matmul disagrees with cblas_sgemm on %d shape(s)\n", wrong);
        return 1;
    }
    if (bad) {
        fprintf(stderr, "matmul bench: %d shape(s) below ratio %.2f\n", bad, min_ratio);
        return 1;
    }
    return 0;
}
