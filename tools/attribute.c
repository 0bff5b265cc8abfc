/*
 * tools/attribute: attributions (Saliency, Grad-CAM, Integrated Gradients)
 * of trained checkpoints on a dataset with foreground masks, and their
 * signal-to-noise ratio (the paper's Fig. 6). `attribute --help` lists the
 * flags; docs/attribution.md explains the outputs. The work is in rrr/
 * (lt_rrr_saliency, lt_rrr_gradcam, lt_rrr_integrated_gradients,
 * lt_rrr_snr); this is flags, image selection, files and figures.
 */
#include <libtensor/data.h>
#include <libtensor/nn.h>
#include <libtensor/rrr.h>
#include <libtensor/tensor.h>

#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "svg.h"
#include "tool_fs.h"

#define PROG "attribute"
#define MAX_CKPT 64

enum method { M_SALIENCY, M_GRADCAM, M_IG };
static const char *method_names[] = {"saliency", "gradcam", "ig"};

typedef struct opts {
    const char *data, *out, *split, *variant, *dataset;
    const char *ckpt[MAX_CKPT];
    int nckpt;
    int method; /* enum method; -1 until given */
    int64_t n;
    int ig_steps;
    lt_rrr_ig_method ig_method;
    const char *ig_method_name;
    bool signed_;
    bool channels_sum;
    bool seeded;
    uint64_t seed;
    int threads;
    int64_t batch;
    int grid_n;
    bool quiet;
} opts;

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: " PROG " --data DIR --checkpoint CKPT [--checkpoint CKPT2 ...] --method M --n N --out DIR\n"
            "                 [options]\n"
            "\n"
            "Attributions of the true class for the first N images of a split (spread evenly over the\n"
            "classes), their signal-to-noise ratio against the dataset's foreground masks, and figures.\n"
            "Each checkpoint is rebuilt from its metadata (architecture, classes, input size and\n"
            "normalization) and run in eval mode.\n"
            "\n"
            "Required:\n"
            "  --data DIR            dataset root\n"
            "  --checkpoint CKPT     a training checkpoint (tools/train_resnet18, train_vit); repeat the\n"
            "                        flag for several models (at most %d)\n"
            "  --method M            saliency (|dz_y/dx|, Captum Saliency), gradcam (layer4 for ResNet,\n"
            "                        the last block for ViT; ReLU, bilinear upsampling) or ig (Integrated\n"
            "                        Gradients, zero baseline, multiplied by the inputs)\n"
            "  --n N                 images to explain: taken round-robin over the classes, the first\n"
            "                        of each class first (fewer if the split has fewer)\n"
            "  --out DIR             output folder (created)\n"
            "Data:\n"
            "  --dataset KIND        in9 (default: DIR/<variant>/<split>, masks in DIR/fg_mask/<split>),\n"
            "                        rival10 (DIR/<split>/ordinary, entire_object_masks) or folder\n"
            "                        (DIR/<split> if it exists, else DIR; masks in <that>_masks)\n"
            "  --split S             val (default; rival10: test)\n"
            "  --variant V           in9 variant (default original; e.g. mixed_rand, only_fg)\n"
            "Attribution:\n"
            "  --ig-steps N          Integrated Gradients steps (default 50)\n"
            "  --ig-method M         gausslegendre (default), riemann_left, riemann_right,\n"
            "                        riemann_middle or riemann_trapezoid\n"
            "  --signed              keep the sign: saliency dz/dx instead of |dz/dx|, IG as is, Grad-CAM\n"
            "                        without its ReLU; heat maps in blue (-) / red (+). SNR always uses |a|.\n"
            "  --channels R          channel reduction of the heat map: max (default; max |a| over\n"
            "                        channels, or the signed value of largest |a| with --signed) or sum\n"
            "                        (sum of |a|, or the signed sum). SNR is computed on the heat map.\n"
            "Run:\n"
            "  --batch N             images per forward/backward pass (default 16)\n"
            "  --grid-n N            images shown in each PNG grid (default 16; 0: no grid)\n"
            "  --seed S              pick each class's images from a shuffle seeded with S instead of\n"
            "                        the first ones in file order\n"
            "  --threads T           compute threads (default %d)\n"
            "  -q, --quiet           no progress on stderr\n"
            "  -h, --help            this help, then exit\n"
            "  -V, --version         the version, then exit\n"
            "\n"
            "Output (in --out):\n"
            "  snr.json              {CKPT: {\"method\", \"snr\": [per image, null if undefined], \"mean\",\n"
            "                        \"median\", \"n\", \"images\", \"labels\", ...}} (tools/report reads it)\n"
            "  snr.csv               checkpoint,image,label,snr\n"
            "  <stem>_grid.png       per checkpoint: images (top rows) and heat maps over them (below),\n"
            "                        the mask's outline in white\n"
            "  snr_boxplot.svg       with several checkpoints: SNR per model (the paper's Fig. 6)\n"
            "A table (checkpoint, method, n, mean and median SNR) goes to stdout, progress to stderr.\n"
            "Exit status 0 on success, 1 on an error, 2 on bad usage (one line on stderr).\n",
            MAX_CKPT, lt_get_num_threads());
}

static void bad_usage(const char *fmt, const char *arg)
{
    fprintf(stderr, PROG ": ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (see " PROG " --help)\n");
    exit(2);
}

static void fail(const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, PROG ": ");
    fprintf(stderr, fmt, a, b);
    fputc('\n', stderr);
    exit(1);
}

static int64_t parse_int(const char *flag, const char *s, int64_t lo, int64_t hi)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, PROG ": %s: expected an integer in %lld..%lld, got '%s' (see " PROG " --help)\n", flag,
                (long long)lo, (long long)hi, s);
        exit(2);
    }
    return v;
}

static void parse_args(int argc, char **argv, opts *o)
{
    enum {
        O_DATA = 256, O_CKPT, O_METHOD, O_N, O_OUT, O_SPLIT, O_VARIANT, O_STEPS, O_IGM, O_SIGNED, O_CHANNELS,
        O_SEED, O_THREADS, O_DATASET, O_BATCH, O_GRID
    };
    static const struct option lo[] = {
        {"data", required_argument, 0, O_DATA},       {"checkpoint", required_argument, 0, O_CKPT},
        {"method", required_argument, 0, O_METHOD},   {"n", required_argument, 0, O_N},
        {"out", required_argument, 0, O_OUT},         {"split", required_argument, 0, O_SPLIT},
        {"variant", required_argument, 0, O_VARIANT}, {"ig-steps", required_argument, 0, O_STEPS},
        {"ig-method", required_argument, 0, O_IGM},   {"signed", no_argument, 0, O_SIGNED},
        {"channels", required_argument, 0, O_CHANNELS}, {"seed", required_argument, 0, O_SEED},
        {"threads", required_argument, 0, O_THREADS}, {"dataset", required_argument, 0, O_DATASET},
        {"batch", required_argument, 0, O_BATCH},     {"grid-n", required_argument, 0, O_GRID},
        {"quiet", no_argument, 0, 'q'},               {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'V'},             {0, 0, 0, 0}};
    memset(o, 0, sizeof *o);
    o->method = -1;
    o->n = -1;
    o->variant = "original";
    o->dataset = "in9";
    o->ig_steps = 50;
    o->ig_method = LT_RRR_IG_GAUSS_LEGENDRE;
    o->ig_method_name = "gausslegendre";
    o->threads = lt_get_num_threads();
    o->batch = 16;
    o->grid_n = 16;
    opterr = 0;
    for (;;) {
        int c = getopt_long(argc, argv, ":qhV", lo, NULL);
        if (c == -1)
            break;
        const char *a = optarg;
        switch (c) {
        case O_DATA: o->data = a; break;
        case O_CKPT:
            if (o->nckpt == MAX_CKPT)
                bad_usage("--checkpoint: at most 64 checkpoints%s", "");
            for (int i = 0; i < o->nckpt; i++)
                if (strcmp(o->ckpt[i], a) == 0)
                    bad_usage("--checkpoint: '%s' is given twice", a);
            o->ckpt[o->nckpt++] = a;
            break;
        case O_METHOD:
            o->method = strcmp(a, "saliency") == 0  ? M_SALIENCY
                        : strcmp(a, "gradcam") == 0 ? M_GRADCAM
                        : strcmp(a, "ig") == 0      ? M_IG
                                                    : -1;
            if (o->method < 0)
                bad_usage("--method: expected saliency, gradcam or ig, got '%s'", a);
            break;
        case O_N: o->n = parse_int("--n", a, 1, 1000000); break;
        case O_OUT: o->out = a; break;
        case O_SPLIT: o->split = a; break;
        case O_VARIANT: o->variant = a; break;
        case O_STEPS: o->ig_steps = (int)parse_int("--ig-steps", a, 1, 100000); break;
        case O_IGM: {
            static const char *names[] = {"gausslegendre", "riemann_left", "riemann_right", "riemann_middle",
                                          "riemann_trapezoid"};
            int k = -1;
            for (int i = 0; i < 5; i++)
                if (strcmp(a, names[i]) == 0)
                    k = i;
            if (k < 0)
                bad_usage("--ig-method: expected gausslegendre, riemann_left, riemann_right, riemann_middle or "
                          "riemann_trapezoid, got '%s'",
                          a);
            o->ig_method = (lt_rrr_ig_method)k;
            o->ig_method_name = names[k];
            break;
        }
        case O_SIGNED: o->signed_ = true; break;
        case O_CHANNELS:
            if (strcmp(a, "max") && strcmp(a, "sum"))
                bad_usage("--channels: expected max or sum, got '%s'", a);
            o->channels_sum = strcmp(a, "sum") == 0;
            break;
        case O_SEED: {
            char *end;
            errno = 0;
            unsigned long long v = strtoull(a, &end, 10);
            if (errno || end == a || *end || *a == '-' || *a == '+')
                bad_usage("--seed: expected an unsigned integer, got '%s'", a);
            o->seed = v;
            o->seeded = true;
            break;
        }
        case O_THREADS: o->threads = (int)parse_int("--threads", a, 1, 1024); break;
        case O_DATASET:
            if (strcmp(a, "in9") && strcmp(a, "rival10") && strcmp(a, "folder"))
                bad_usage("--dataset: expected in9, rival10 or folder, got '%s'", a);
            o->dataset = a;
            break;
        case O_BATCH: o->batch = parse_int("--batch", a, 1, 4096); break;
        case O_GRID: o->grid_n = (int)parse_int("--grid-n", a, 0, 256); break;
        case 'q': o->quiet = true; break;
        case 'h': usage(stdout); exit(0);
        case 'V': printf(PROG " (libtensor) %s\n", LT_VERSION_STRING); exit(0);
        case ':': bad_usage("%s needs a value", argv[optind - 1]); break;
        default: bad_usage("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        bad_usage("unexpected argument '%s'", argv[optind]);
    if (!o->data)
        bad_usage("--data DIR is required%s", "");
    if (o->nckpt == 0)
        bad_usage("--checkpoint CKPT is required%s", "");
    if (o->method < 0)
        bad_usage("--method saliency|gradcam|ig is required%s", "");
    if (o->n < 0)
        bad_usage("--n N is required%s", "");
    if (!o->out)
        bad_usage("--out DIR is required%s", "");
    if (!o->split)
        o->split = strcmp(o->dataset, "rival10") == 0 ? "test" : "val";
}

/* ---- files ---- */

/* "runs/std.safetensors" -> "std" */
static void stem_of(const char *path, char *out, size_t n)
{
    const char *b = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    snprintf(out, n, "%s", b);
    char *dot = strrchr(out, '.');
    if (dot && dot != out)
        *dot = '\0';
}

static lt_data_list *open_listing(const opts *o)
{
    if (strcmp(o->dataset, "rival10") == 0)
        return lt_data_rival10_list(o->data, o->split, LT_DATA_MASKS_REQUIRED);
    if (strcmp(o->dataset, "folder") == 0) {
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", o->data, o->split);
        return lt_data_folder_list(is_dir(p) ? p : o->data, LT_DATA_MASKS_REQUIRED);
    }
    return lt_data_in9_list(o->data, o->variant, o->split, LT_DATA_MASKS_REQUIRED);
}

/* Indices of the images to explain: round-robin over the classes (class 0's
 * first image, class 1's first, ..., then the second of each), each class's
 * images in listing order or, with a seed, in a seeded shuffle. */
static int64_t *select_images(const lt_data_list *l, const opts *o, int64_t *n_out)
{
    int K = l->nclasses;
    int64_t *count = calloc((size_t)K, sizeof *count), **idx = calloc((size_t)K, sizeof *idx);
    int64_t want = o->n < (int64_t)l->n ? o->n : (int64_t)l->n;
    int64_t *sel = malloc((size_t)(want > 0 ? want : 1) * sizeof *sel);
    if (!count || !idx || !sel)
        fail("out of memory%s%s", "", "");
    for (size_t i = 0; i < l->n; i++)
        count[l->samples[i].label]++;
    for (int k = 0; k < K; k++) {
        idx[k] = malloc((size_t)(count[k] > 0 ? count[k] : 1) * sizeof **idx);
        if (!idx[k])
            fail("out of memory%s%s", "", "");
        count[k] = 0;
    }
    for (size_t i = 0; i < l->n; i++) {
        int64_t k = l->samples[i].label;
        idx[k][count[k]++] = (int64_t)i;
    }
    if (o->seeded) {
        lt_rng r = lt_rng_new(o->seed);
        for (int k = 0; k < K; k++)
            for (int64_t i = count[k] - 1; i > 0; i--) {
                int64_t j = (int64_t)(lt_rng_u64(&r) % (uint64_t)(i + 1));
                int64_t t = idx[k][i];
                idx[k][i] = idx[k][j];
                idx[k][j] = t;
            }
    }
    int64_t n = 0;
    for (int64_t round = 0; n < want; round++)
        for (int k = 0; k < K && n < want; k++)
            if (round < count[k])
                sel[n++] = idx[k][round];
    for (int k = 0; k < K; k++)
        free(idx[k]);
    free(idx);
    free(count);
    *n_out = n;
    return sel;
}

/* ---- progress ---- */

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

typedef struct progress {
    bool tty, quiet;
    double t0, last;
} progress;

static void show(progress *p, const char *name, int ci, int nc, int64_t done, int64_t total)
{
    if (p->quiet)
        return;
    double t = now_s(), el = t - p->t0;
    bool last = done == total;
    if (!last && done > 0 && t - p->last < (p->tty ? 0.2 : 5.0))
        return;
    p->last = t;
    double rate = el > 0 ? (double)done / el : 0, eta = rate > 0 ? (double)(total - done) / rate : 0;
    fprintf(stderr, "%s" PROG ": [%d/%d] %s: %lld/%lld images, %.1f img/s, ETA %.0f s%s", p->tty ? "\r\033[K" : "",
            ci + 1, nc, name, (long long)done, (long long)total, rate, eta, p->tty ? (last ? "\n" : "") : "\n");
    fflush(stderr);
}

/* ---- heat maps ---- */

/* Signed channel reduction of a (N,C,H,W) map into (N,1,H,W) f32: the
 * signed sum, or the value of largest magnitude. */
static lt_tensor *reduce_signed(const lt_tensor *attr, bool sum)
{
    lt_tensor *a = lt_contiguous(lt_to_dtype(attr, LT_F32));
    if (!a)
        return NULL;
    int64_t N = lt_size(a, 0), C = lt_size(a, 1), H = lt_size(a, 2), W = lt_size(a, 3);
    lt_tensor *h = lt_empty(4, (int64_t[]){N, 1, H, W}, LT_F32);
    if (!h)
        return NULL;
    const float *s = lt_data(a);
    float *d = lt_data(h);
    for (int64_t n = 0; n < N; n++)
        for (int64_t p = 0; p < H * W; p++) {
            float best = 0, acc = 0;
            for (int64_t c = 0; c < C; c++) {
                float v = s[(n * C + c) * H * W + p];
                acc += v;
                if (fabsf(v) > fabsf(best))
                    best = v;
            }
            d[n * H * W + p] = sum ? acc : best;
        }
    return h;
}

/* The (N,1,H,W) f32 heat map of the batch x for targets y. */
static lt_tensor *heat_map(const opts *o, const lt_rrr_model *m, const lt_tensor *x, const lt_tensor *y)
{
    lt_tensor *attr = NULL;
    switch (o->method) {
    case M_SALIENCY: attr = lt_rrr_saliency(m, x, y, o->signed_); break;
    case M_IG: attr = lt_rrr_integrated_gradients(m, x, NULL, y, o->ig_steps, o->ig_method); break;
    case M_GRADCAM: attr = lt_rrr_gradcam(m, x, y, !o->signed_, true); break;
    }
    if (!attr)
        return NULL;
    if (o->signed_)
        return reduce_signed(attr, o->channels_sum);
    lt_tensor *h = lt_rrr_reduce_channels(attr, o->channels_sum ? LT_RRR_CHANNELS_SUM_ABS : LT_RRR_CHANNELS_MAX_ABS);
    return lt_contiguous(lt_to_dtype(h, LT_F32));
}

/* What the grid keeps of one image: RGB in [0,1], heat map, mask. */
typedef struct cell {
    float *rgb;  /* 3*S*S */
    float *heat; /* S*S */
    uint8_t *mask;
} cell;

static int cmp_f(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

/* Compose the PNG grid: up to 8 images per row of pairs; the image above,
 * the heat map blended over it below, the mask outline in white. Heat maps
 * are scaled per image by their 99th percentile of |h|. */
static int write_grid(const char *path, const cell *cells, int n, int64_t S, bool signed_)
{
    int cols = n < 8 ? n : 8, prows = (n + cols - 1) / cols;
    int64_t z = S < 128 ? (128 + S - 1) / S : 1, cs = S * z, gap = 2;
    int64_t W = cols * cs + (cols + 1) * gap, H = 2 * prows * cs + (2 * prows + 1) * gap;
    lt_tensor *img = lt_full(3, (int64_t[]){3, H, W}, 255, LT_U8);
    if (!img)
        return -1;
    uint8_t *px = lt_data(img);
    float *tmp = malloc((size_t)(S * S) * sizeof *tmp);
    if (!tmp) {
        lt_set_error("grid: out of memory");
        return -1;
    }
    for (int i = 0; i < n; i++) {
        const cell *c = &cells[i];
        for (int64_t p = 0; p < S * S; p++)
            tmp[p] = fabsf(c->heat[p]);
        qsort(tmp, (size_t)(S * S), sizeof *tmp, cmp_f);
        float scale = tmp[(S * S - 1) * 99 / 100];
        if (!(scale > 0))
            scale = tmp[S * S - 1] > 0 ? tmp[S * S - 1] : 1;
        int64_t ox = gap + (i % cols) * (cs + gap), oy = gap + (int64_t)(i / cols) * 2 * (cs + gap);
        for (int64_t yy = 0; yy < cs; yy++)
            for (int64_t xx = 0; xx < cs; xx++) {
                int64_t sy = yy / z, sx = xx / z, p = sy * S + sx;
                double rgb[3];
                for (int k = 0; k < 3; k++)
                    rgb[k] = fmin(fmax(c->rgb[k * S * S + p], 0), 1) * 255;
                /* the overlay goes on a dimmed gray copy, so the colours are the map's */
                double gray = 0.6 * (0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]);
                uint8_t hc[3];
                double h = c->heat[p] / scale, a;
                if (signed_) {
                    fig_diverging(h, hc);
                    a = 0.2 + 0.7 * fmin(fabs(h), 1);
                } else {
                    fig_colormap(h, hc);
                    a = 0.2 + 0.7 * fmin(fmax(h, 0), 1);
                }
                /* the mask outline: a pixel whose 4-neighbour is on the other side */
                bool edge = false;
                if (yy % z == 0 || xx % z == 0 || yy % z == z - 1 || xx % z == z - 1) {
                    uint8_t m = c->mask[p];
                    edge = (sy > 0 && c->mask[p - S] != m) || (sy < S - 1 && c->mask[p + S] != m) ||
                           (sx > 0 && c->mask[p - 1] != m) || (sx < S - 1 && c->mask[p + 1] != m);
                    edge = edge && m; /* draw it on the object's side only */
                }
                for (int k = 0; k < 3; k++) {
                    px[(k * H + oy + yy) * W + ox + xx] = (uint8_t)lround(rgb[k]);
                    double v = edge ? 255 : (1 - a) * gray + a * hc[k];
                    px[(k * H + oy + cs + gap + yy) * W + ox + xx] = (uint8_t)lround(v);
                }
            }
    }
    free(tmp);
    return lt_data_png_write(path, img);
}

/* ---- per checkpoint ---- */

typedef struct result {
    const char *ckpt;
    char name[256];
    double *snr; /* n */
    double mean, median;
    int64_t finite;
} result;

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void summarize(result *r, int64_t n)
{
    double *s = malloc((size_t)(n > 0 ? n : 1) * sizeof *s), sum = 0;
    int64_t k = 0;
    for (int64_t i = 0; s && i < n; i++)
        if (isfinite(r->snr[i])) {
            s[k++] = r->snr[i];
            sum += r->snr[i];
        }
    r->finite = k;
    r->mean = k ? sum / (double)k : NAN;
    if (k) {
        qsort(s, (size_t)k, sizeof *s, cmp_d);
        r->median = k % 2 ? s[k / 2] : 0.5 * (s[k / 2 - 1] + s[k / 2]);
    } else {
        r->median = NAN;
    }
    free(s);
}

/* Run one checkpoint over the selected images: fills r->snr, writes the
 * grid. 0 or -1 (lt_last_error). */
static int run_checkpoint(const opts *o, const lt_data_list *view, int ci, result *r, const char *grid_path)
{
    lt_rrr_model_info info;
    lt_nn_module *mod = lt_rrr_model_load(r->ckpt, &info);
    if (!mod)
        return -1;
    int rc = -1;
    lt_data_loader *ld = NULL;
    cell *cells = NULL;
    int ncell = 0;
    int64_t S = info.image_size, n = (int64_t)view->n;
    if (info.num_classes != view->nclasses) {
        lt_set_error("%s has %lld classes but the dataset has %d", r->ckpt, (long long)info.num_classes,
                     view->nclasses);
        goto out;
    }
    lt_rrr_net net = {mod, info.arch};
    lt_rrr_model m = lt_rrr_net_model(&net);
    lt_data_loader_opts lo;
    memset(&lo, 0, sizeof lo);
    lo.batch_size = o->batch;
    lo.masks = true;
    lo.channels = 3;
    lo.transform.geom = LT_DATA_GEOM_RESIZE;
    lo.transform.height = lo.transform.width = S;
    lo.transform.normalize = true;
    for (int k = 0; k < 3; k++) {
        lo.transform.mean[k] = info.mean[k];
        lo.transform.std[k] = info.std[k];
    }
    ld = lt_data_loader_new(view, &lo);
    if (!ld)
        goto out;
    int want = o->grid_n < n ? o->grid_n : (int)n;
    cells = calloc((size_t)(want > 0 ? want : 1), sizeof *cells);
    if (!cells) {
        lt_set_error("out of memory");
        goto out;
    }
    progress pg = {isatty(2), o->quiet, now_s(), 0};
    show(&pg, r->name, ci, o->nckpt, 0, n);
    int64_t done = 0;
    lt_data_batch b;
    int got;
    while ((got = lt_data_loader_next(ld, &b)) > 0) {
        size_t mark = lt_frame_push();
        lt_tensor *h = heat_map(o, &m, b.images, b.labels);
        lt_tensor *snr = lt_rrr_snr(h, b.masks);
        if (!snr) {
            lt_frame_pop(mark);
            goto out;
        }
        int64_t B = lt_size(b.images, 0);
        lt_tensor *x = lt_contiguous(b.images), *mk = lt_contiguous(b.masks);
        for (int64_t i = 0; i < B; i++) {
            r->snr[done + i] = lt_item_at(snr, i);
            if (ncell < want && x && mk) {
                cell *c = &cells[ncell++];
                c->rgb = malloc((size_t)(3 * S * S) * sizeof(float));
                c->heat = malloc((size_t)(S * S) * sizeof(float));
                c->mask = malloc((size_t)(S * S));
                if (!c->rgb || !c->heat || !c->mask) {
                    lt_set_error("out of memory");
                    lt_frame_pop(mark);
                    goto out;
                }
                const float *xs = (const float *)lt_data(x) + i * 3 * S * S, *hs = (const float *)lt_data(h) + i * S * S;
                for (int k = 0; k < 3; k++)
                    for (int64_t p = 0; p < S * S; p++)
                        c->rgb[k * S * S + p] = (float)(xs[k * S * S + p] * info.std[k] + info.mean[k]);
                memcpy(c->heat, hs, (size_t)(S * S) * sizeof(float));
                memcpy(c->mask, (const uint8_t *)lt_data(mk) + i * S * S, (size_t)(S * S));
            }
        }
        done += B;
        lt_frame_pop(mark);
        show(&pg, r->name, ci, o->nckpt, done, n);
    }
    if (got < 0)
        goto out;
    if (ncell > 0) {
        size_t mark = lt_frame_push();
        int w = write_grid(grid_path, cells, ncell, S, o->signed_);
        lt_frame_pop(mark);
        if (w < 0)
            goto out;
    }
    rc = 0;
out:
    for (int i = 0; cells && i < ncell; i++) {
        free(cells[i].rgb);
        free(cells[i].heat);
        free(cells[i].mask);
    }
    free(cells);
    lt_data_loader_free(ld);
    lt_nn_module_free(mod);
    lt_rrr_model_info_free(&info);
    return rc;
}

/* ---- outputs ---- */

static cJSON *num_or_null(double v) { return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull(); }

static int write_json(const char *path, const opts *o, const lt_data_list *view, const result *res)
{
    cJSON *root = cJSON_CreateObject();
    for (int c = 0; root && c < o->nckpt; c++) {
        const result *r = &res[c];
        cJSON *e = cJSON_AddObjectToObject(root, r->ckpt);
        if (!e)
            break;
        cJSON_AddStringToObject(e, "method", method_names[o->method]);
        cJSON_AddStringToObject(e, "name", r->name);
        cJSON_AddStringToObject(e, "dataset", o->dataset);
        cJSON_AddStringToObject(e, "split", o->split);
        if (strcmp(o->dataset, "in9") == 0)
            cJSON_AddStringToObject(e, "variant", o->variant);
        cJSON_AddStringToObject(e, "channels", o->channels_sum ? "sum" : "max");
        cJSON_AddBoolToObject(e, "signed", o->signed_);
        if (o->method == M_IG) {
            cJSON_AddNumberToObject(e, "ig_steps", o->ig_steps);
            cJSON_AddStringToObject(e, "ig_method", o->ig_method_name);
        }
        cJSON_AddNumberToObject(e, "n", (double)view->n);
        cJSON *a = cJSON_AddArrayToObject(e, "snr");
        cJSON *im = cJSON_AddArrayToObject(e, "images");
        cJSON *lb = cJSON_AddArrayToObject(e, "labels");
        for (size_t i = 0; a && im && lb && i < view->n; i++) {
            cJSON_AddItemToArray(a, num_or_null(r->snr[i]));
            cJSON_AddItemToArray(im, cJSON_CreateString(view->samples[i].path));
            cJSON_AddItemToArray(lb, cJSON_CreateNumber((double)view->samples[i].label));
        }
        cJSON_AddItemToObject(e, "mean", num_or_null(r->mean));
        cJSON_AddItemToObject(e, "median", num_or_null(r->median));
    }
    char *text = root ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    if (!text) {
        lt_set_error("%s: out of memory", path);
        return -1;
    }
    FILE *f = fopen(path, "w");
    int ok = f && fputs(text, f) >= 0 && fputc('\n', f) != EOF;
    if (f && fclose(f) != 0)
        ok = 0;
    free(text);
    if (!ok) {
        lt_set_error("%s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* A CSV field, quoted when it holds a comma, a quote or a line break. */
static void csv_field(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\n\r")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static int write_csv(const char *path, const opts *o, const lt_data_list *view, const result *res)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        lt_set_error("%s: %s", path, strerror(errno));
        return -1;
    }
    fputs("checkpoint,image,label,snr\n", f);
    for (int c = 0; c < o->nckpt; c++)
        for (size_t i = 0; i < view->n; i++) {
            csv_field(f, res[c].ckpt);
            fputc(',', f);
            csv_field(f, view->samples[i].path);
            fprintf(f, ",%lld,", (long long)view->samples[i].label);
            if (isfinite(res[c].snr[i]))
                fprintf(f, "%.9g", res[c].snr[i]);
            fputc('\n', f);
        }
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        lt_set_error("%s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    opts o;
    parse_args(argc, argv, &o);
    lt_set_num_threads(o.threads);
    if (make_dirs(o.out) < 0)
        fail("cannot create %s: %s", o.out, strerror(errno));
    lt_data_list *list = open_listing(&o);
    if (!list)
        fail("%s%s", lt_last_error(), "");
    int64_t n = 0;
    int64_t *sel = select_images(list, &o, &n);
    if (n < o.n && !o.quiet)
        fprintf(stderr, PROG ": the split has %lld images; explaining all of them\n", (long long)n);
    lt_data_sample *samples = malloc((size_t)(n > 0 ? n : 1) * sizeof *samples);
    result *res = calloc((size_t)o.nckpt, sizeof *res);
    if (!samples || !res)
        fail("out of memory%s%s", "", "");
    for (int64_t i = 0; i < n; i++)
        samples[i] = list->samples[sel[i]];
    lt_data_list view = {samples, (size_t)n, list->classes, list->nclasses};

    for (int c = 0; c < o.nckpt; c++) {
        res[c].ckpt = o.ckpt[c];
        stem_of(o.ckpt[c], res[c].name, sizeof res[c].name);
        /* two checkpoints with one stem (a/std.safetensors, b/std.safetensors) */
        for (int d = 0; d < c; d++)
            if (strcmp(res[d].name, res[c].name) == 0) {
                char b[256];
                snprintf(b, sizeof b, "%.200s_%d", res[c].name, c + 1);
                snprintf(res[c].name, sizeof res[c].name, "%s", b);
            }
        res[c].snr = malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
        if (!res[c].snr)
            fail("out of memory%s%s", "", "");
        char grid[4096];
        snprintf(grid, sizeof grid, "%s/%s_grid.png", o.out, res[c].name);
        if (run_checkpoint(&o, &view, c, &res[c], grid) < 0)
            fail("%s%s", lt_last_error(), "");
        summarize(&res[c], n);
    }

    char path[4096];
    snprintf(path, sizeof path, "%s/snr.json", o.out);
    if (write_json(path, &o, &view, res) < 0)
        fail("%s%s", lt_last_error(), "");
    snprintf(path, sizeof path, "%s/snr.csv", o.out);
    if (write_csv(path, &o, &view, res) < 0)
        fail("%s%s", lt_last_error(), "");
    if (o.nckpt > 1) {
        const char *names[MAX_CKPT];
        const double *vals[MAX_CKPT];
        int counts[MAX_CKPT];
        for (int c = 0; c < o.nckpt; c++) {
            names[c] = res[c].name;
            vals[c] = res[c].snr;
            counts[c] = (int)n;
        }
        char title[128];
        snprintf(title, sizeof title, "SNR of %s attributions (foreground / background)", method_names[o.method]);
        snprintf(path, sizeof path, "%s/snr_boxplot.svg", o.out);
        if (fig_boxplot(path, title, "SNR", o.nckpt, names, vals, counts, true, false) < 0)
            fail("%s: %s", path, strerror(errno));
    }

    printf("%-32s %-9s %6s %10s %10s\n", "checkpoint", "method", "n", "mean_snr", "median_snr");
    for (int c = 0; c < o.nckpt; c++)
        printf("%-32s %-9s %6lld %10.4f %10.4f\n", res[c].ckpt, method_names[o.method], (long long)res[c].finite,
               res[c].mean, res[c].median);
    printf("outputs: %s/snr.json %s/snr.csv", o.out, o.out);
    if (o.nckpt > 1)
        printf(" %s/snr_boxplot.svg", o.out);
    printf("\n");

    for (int c = 0; c < o.nckpt; c++)
        free(res[c].snr);
    free(res);
    free(samples);
    free(sel);
    lt_data_list_free(list);
    return 0;
}
