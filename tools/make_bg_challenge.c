/*
 * make_bg_challenge: writes the bundled backgrounds benchmark, Fashion-MNIST
 * foregrounds over class-correlated procedural backgrounds, in the
 * ImageNet-9 / Backgrounds Challenge layout. The work is
 * lt_data_bgc_generate (data/bgc.c); this is flags, progress and errors.
 */
#include <libtensor/data.h>
#include <libtensor/tensor.h>

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PROG "make_bg_challenge"

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: " PROG " --out DIR [options]\n"
            "\n"
            "Writes a Backgrounds Challenge (ImageNet-9 layout) built from Fashion-MNIST:\n"
            "each product photograph, scaled and placed at a random position, over a\n"
            "procedural texture whose family (pattern, orientation, frequency, palette)\n"
            "matches its class with probability --bg-correlation. Output:\n"
            "  DIR/original/{train,val}/NN_class/STEM.png    DIR/fg_mask/{train,val}/NN_class/STEM.npy\n"
            "  DIR/{only_fg,no_fg,only_bg_b,only_bg_t}/val/NN_class/STEM.png\n"
            "  DIR/{mixed_same,mixed_rand,mixed_next}/val/NN_class/fg_STEM_bg_STEM2.png\n"
            "  DIR/meta.json                                 parameters, classes, counts\n"
            "The same options and seed give byte-identical files, whatever --threads.\n"
            "\n"
            "Options:\n"
            "  -o, --out DIR              output folder, created; must be empty (required)\n"
            "  -s, --source DIR           Fashion-MNIST folder with {train,t10k}-{images-idx3,\n"
            "                             labels-idx1}-ubyte[.gz] (default $LT_FASHION_MNIST,\n"
            "                             else " LT_DATA_FASHION_MNIST_DIR ")\n"
            "      --size N               image side in pixels, 16..1024 (default 64)\n"
            "      --train-per-class N    train images per class, 1..6000 (default 1000)\n"
            "      --val-per-class N      val images per class, 1..1000 (default 100)\n"
            "      --bg-correlation P     probability that the background family is the\n"
            "                             class's own, 0..1 (default 0.9; otherwise a family\n"
            "                             drawn uniformly from all ten)\n"
            "      --fg-min F             smallest item side / image side, 0.2..1 (default 0.5)\n"
            "      --fg-max F             largest item side / image side, 0.2..1 (default 0.85)\n"
            "      --seed N               random seed, an unsigned 64-bit integer (default 0)\n"
            "      --format png|jpeg      image files: png (lossless, default) or jpeg (.JPEG)\n"
            "      --jpeg-quality N       1..100 (default 95), with --format jpeg\n"
            "  -j, --threads N            writer threads, 1..256 (default 1)\n"
            "      --force                write into a non-empty --out (overwrites files)\n"
            "      --grid FILE            after writing, save a PNG grid of one val image per\n"
            "                             class (columns) in every variant (rows)\n"
            "      --grid-cell N          grid cell side in pixels, 8..512 (default: --size)\n"
            "  -q, --quiet                no progress on stderr\n"
            "  -h, --help                 this help, then exit\n"
            "  -V, --version              the version, then exit\n"
            "\n"
            "Progress goes to stderr (a rewritten line on a terminal, plain lines otherwise);\n"
            "a summary goes to stdout. Exit status 0 on success, 1 on an error (one line on\n"
            "stderr), 2 on bad usage.\n");
}

static int bad_usage(const char *fmt, const char *arg)
{
    fprintf(stderr, PROG ": ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (see " PROG " --help)\n");
    return 2;
}

/* Whole-string integer / real parses. */
static int parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int parse_double(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi))
        return -1;
    *out = v;
    return 0;
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    if (*s == '-' || *s == '+' || *s == ' ')
        return -1;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end)
        return -1;
    *out = v;
    return 0;
}

typedef struct progress_state {
    struct timespec start;
    bool tty, quiet;
    double last;
} progress_state;

static double since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + 1e-9 * (double)(t.tv_nsec - t0->tv_nsec);
}

static void on_progress(void *ud, int64_t done, int64_t total)
{
    progress_state *p = ud;
    if (p->quiet)
        return;
    double el = since(&p->start);
    bool last = done == total;
    if (!last && el - p->last < (p->tty ? 0.2 : 2.0))
        return;
    p->last = el;
    double rate = el > 0 ? (double)done / el : 0;
    double eta = rate > 0 ? (double)(total - done) / rate : 0;
    fprintf(stderr, "%s" PROG ": %lld/%lld files, %.0f files/s, ETA %.0f s%s",
            p->tty ? "\r" : "", (long long)done, (long long)total, rate, eta,
            p->tty ? (last ? "\n" : "") : "\n");
    fflush(stderr);
}

int main(int argc, char **argv)
{
    enum {
        O_SIZE = 256, O_TRAIN, O_VAL, O_CORR, O_FGMIN, O_FGMAX, O_SEED, O_FORMAT, O_QUALITY,
        O_FORCE, O_GRID, O_GRID_CELL
    };
    static const struct option longopts[] = {
        {"out", required_argument, NULL, 'o'},
        {"source", required_argument, NULL, 's'},
        {"size", required_argument, NULL, O_SIZE},
        {"train-per-class", required_argument, NULL, O_TRAIN},
        {"val-per-class", required_argument, NULL, O_VAL},
        {"bg-correlation", required_argument, NULL, O_CORR},
        {"fg-min", required_argument, NULL, O_FGMIN},
        {"fg-max", required_argument, NULL, O_FGMAX},
        {"seed", required_argument, NULL, O_SEED},
        {"format", required_argument, NULL, O_FORMAT},
        {"jpeg-quality", required_argument, NULL, O_QUALITY},
        {"threads", required_argument, NULL, 'j'},
        {"force", no_argument, NULL, O_FORCE},
        {"grid", required_argument, NULL, O_GRID},
        {"grid-cell", required_argument, NULL, O_GRID_CELL},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    lt_data_bgc_opts o;
    lt_data_bgc_defaults(&o);
    o.source = getenv("LT_FASHION_MNIST");
    if (o.source && !*o.source)
        o.source = NULL;
    const char *grid = NULL;
    long grid_cell = 0, v;
    progress_state ps = {.tty = isatty(2) != 0};
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":o:s:j:qhV", longopts, NULL)) != -1) {
        switch (c) {
        case 'o': o.out = optarg; break;
        case 's': o.source = optarg; break;
        case O_SIZE:
            if (parse_long(optarg, 16, 1024, &v) < 0)
                return bad_usage("--size %s: want an integer 16..1024", optarg);
            o.size = (int)v;
            break;
        case O_TRAIN:
            if (parse_long(optarg, 1, 6000, &v) < 0)
                return bad_usage("--train-per-class %s: want an integer 1..6000", optarg);
            o.train_per_class = (int)v;
            break;
        case O_VAL:
            if (parse_long(optarg, 1, 1000, &v) < 0)
                return bad_usage("--val-per-class %s: want an integer 1..1000", optarg);
            o.val_per_class = (int)v;
            break;
        case O_CORR:
            if (parse_double(optarg, 0, 1, &o.bg_correlation) < 0)
                return bad_usage("--bg-correlation %s: want a number 0..1", optarg);
            break;
        case O_FGMIN:
            if (parse_double(optarg, 0.2, 1, &o.fg_min) < 0)
                return bad_usage("--fg-min %s: want a number 0.2..1", optarg);
            break;
        case O_FGMAX:
            if (parse_double(optarg, 0.2, 1, &o.fg_max) < 0)
                return bad_usage("--fg-max %s: want a number 0.2..1", optarg);
            break;
        case O_SEED:
            if (parse_u64(optarg, &o.seed) < 0)
                return bad_usage("--seed %s: want an unsigned 64-bit integer", optarg);
            break;
        case O_FORMAT:
            if (strcmp(optarg, "png") == 0)
                o.format = LT_DATA_BGC_PNG;
            else if (strcmp(optarg, "jpeg") == 0 || strcmp(optarg, "jpg") == 0)
                o.format = LT_DATA_BGC_JPEG;
            else
                return bad_usage("--format %s: want png or jpeg", optarg);
            break;
        case O_QUALITY:
            if (parse_long(optarg, 1, 100, &v) < 0)
                return bad_usage("--jpeg-quality %s: want an integer 1..100", optarg);
            o.jpeg_quality = (int)v;
            break;
        case 'j':
            if (parse_long(optarg, 1, 256, &v) < 0)
                return bad_usage("--threads %s: want an integer 1..256", optarg);
            o.threads = (int)v;
            break;
        case O_FORCE: o.overwrite = true; break;
        case O_GRID: grid = optarg; break;
        case O_GRID_CELL:
            if (parse_long(optarg, 8, 512, &v) < 0)
                return bad_usage("--grid-cell %s: want an integer 8..512", optarg);
            grid_cell = v;
            break;
        case 'q': ps.quiet = true; break;
        case 'h': usage(stdout); return 0;
        case 'V': printf(PROG " (libtensor) %s\n", LT_VERSION_STRING); return 0;
        case ':': return bad_usage("%s needs a value", argv[optind - 1]);
        default: return bad_usage("unknown option %s", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return bad_usage("unexpected argument %s", argv[optind]);
    if (!o.out)
        return bad_usage("%s", "--out DIR is required");
    if (o.fg_min > o.fg_max) {
        fprintf(stderr, PROG ": --fg-min %g is above --fg-max %g (see " PROG " --help)\n",
                o.fg_min, o.fg_max);
        return 2;
    }
    o.progress = on_progress;
    o.progress_ud = &ps;
    clock_gettime(CLOCK_MONOTONIC, &ps.start);
    if (lt_data_bgc_generate(&o) < 0) {
        fprintf(stderr, PROG ": %s\n", lt_last_error());
        return 1;
    }
    double secs = since(&ps.start);
    if (grid && lt_data_bgc_grid(o.out, grid, grid_cell ? (int)grid_cell : o.size) < 0) {
        fprintf(stderr, PROG ": %s\n", lt_last_error());
        return 1;
    }
    printf("wrote %s: %d train and %d val images per class, %dx%d %s, seed %llu, %.2f s\n",
           o.out, o.train_per_class, o.val_per_class, o.size, o.size,
           o.format == LT_DATA_BGC_JPEG ? "jpeg" : "png", (unsigned long long)o.seed, secs);
    if (grid)
        printf("grid: %s\n", grid);
    lt_frame_pop(0);
    return 0;
}
