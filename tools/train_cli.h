/*
 * train_cli.h: the command line shared by tools/train_resnet18 and
 * tools/train_vit (flags -> lt_rrr_train_config, progress, summary table).
 * Included by exactly those two programs.
 */
#ifndef TOOLS_TRAIN_CLI_H
#define TOOLS_TRAIN_CLI_H

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libtensor/nn.h>
#include <libtensor/rrr.h>

static const char *prog;

static void die(const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "%s: ", prog);
    fprintf(stderr, fmt, a, b);
    fputc('\n', stderr);
    exit(2);
}

static int64_t parse_int(const char *flag, const char *s, int64_t min)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < min) {
        char want[64];
        snprintf(want, sizeof want, "an integer >= %lld", (long long)min);
        fprintf(stderr, "%s: %s: expected %s, got '%s'\n", prog, flag, want, s);
        exit(2);
    }
    return v;
}

static double parse_num(const char *flag, const char *s, double min, bool strict_min)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < min || (strict_min && v == min)) {
        fprintf(stderr, "%s: %s: expected a number %s %g, got '%s'\n", prog, flag, strict_min ? ">" : ">=", min, s);
        exit(2);
    }
    return v;
}

enum {
    O_DATA = 256, O_DATASET, O_METHOD, O_LAMBDA, O_RRDA, O_RRDA_MODE, O_RRDA_P, O_EPOCHS, O_BATCH, O_LR, O_OPT,
    O_WD, O_MOMENTUM, O_SCHEDULE, O_WARMUP, O_CLIP, O_SIZE, O_STEM, O_PATCH, O_DIM, O_DEPTH, O_HEADS, O_MLP,
    O_SEED, O_THREADS, O_WORKERS, O_OUT, O_RESUME, O_INIT, O_MAX_STEPS, O_TRAIN_LIMIT, O_LOG, O_SAVE_EVERY,
    O_ACTDIFF, O_ADV_HIDDEN, O_ADV_LR, O_HELP, O_VERSION
};

static void usage(FILE *f, lt_rrr_arch arch, const lt_rrr_train_config *d)
{
    fprintf(f,
            "usage: %s --data DIR --out CKPT.safetensors [options]\n\n"
            "Train %s on an image dataset with foreground masks, with the paper's methods.\n\n"
            "data:\n"
            "  --data DIR            dataset root (required)\n"
            "  --dataset KIND        in9 (default: <DIR>/original/{train,val}), rival10 (train/test),\n"
            "                        folder (<DIR>/train and optional <DIR>/val, or <DIR> itself)\n"
            "  --train-limit N       use the first N training images of each class (0: all)\n"
            "  --size N              input side in pixels (default %lld)\n"
            "  --workers N           loader threads (default %d)\n"
            "method:\n"
            "  --method M            standard, rrr, gradmask, actdiff, adversarial (alias ada) (default standard)\n"
            "  --lambda X            penalty weight (default per method: rrr %g, gradmask %g, actdiff %g,\n"
            "                        adversarial %g)\n"
            "  --actdiff-mode M      mask (x * M, the paper's Eq. 5; default) or shuffle (background pixels)\n"
            "  --adv-hidden N        adversarial discriminator width (default %lld)\n"
            "  --adv-lr X            discriminator learning rate (default: --lr)\n"
            "  --rrda                RRDA background swapping (needs masks)\n"
            "  --rrda-mode M         replace (default) or append (doubles the batch)\n"
            "  --rrda-p P            replace mode: swap probability (default %g)\n"
            "optimization:\n"
            "  --epochs N            (default %d)\n"
            "  --batch N             (default %lld)\n"
            "  --lr X                (default %g)\n"
            "  --optimizer O         sgd or adamw (default %s)\n"
            "  --momentum X          SGD momentum (default %g)\n"
            "  --wd X                weight decay (default %g)\n"
            "  --schedule S          cosine (default), step (x0.1 every 10 epochs) or none\n"
            "  --warmup N            linear warm-up steps before the cosine (default 0)\n"
            "  --clip X              clip the global gradient norm at X (default off)\n",
            prog, arch == LT_RRR_ARCH_VIT ? "a Vision Transformer (timm layout)" : "ResNet-18 (torchvision layout)",
            (long long)d->image_size, d->workers, LT_RRR_LAMBDA_RRR, LT_RRR_LAMBDA_GRADMASK, LT_RRR_LAMBDA_ACTDIFF,
            LT_RRR_LAMBDA_ADVERSARIAL, (long long)d->adv_hidden, d->rrda_p, d->epochs, (long long)d->batch, d->lr,
            d->optimizer, d->momentum, d->weight_decay);
    if (arch == LT_RRR_ARCH_VIT)
        fprintf(f,
                "model:\n"
                "  --patch N --dim N --depth N --heads N --mlp-ratio X\n"
                "                        ViT shape (defaults %lld, %lld, %d, %d, %g)\n",
                (long long)d->vit_patch, (long long)d->vit_dim, d->vit_depth, d->vit_heads, d->vit_mlp_ratio);
    else
        fprintf(f, "model:\n"
                   "  --stem S              small (3x3 conv, no max-pool; default) or imagenet (7x7/2 + max-pool)\n");
    fprintf(f,
            "run:\n"
            "  --out CKPT            checkpoint written after every epoch (required)\n"
            "  --save-every N        also write it every N steps\n"
            "  --resume CKPT         continue a run exactly from its checkpoint\n"
            "  --init WEIGHTS        start from safetensors weights (torchvision / timm names); the head is\n"
            "                        replaced when the class count differs\n"
            "  --log FILE.json       per-epoch log (config, losses, accuracies, images/s)\n"
            "  --max-steps N         stop after N optimizer steps in all\n"
            "  --seed N              (default 0)\n"
            "  --threads N           (default %d)\n"
            "  --help, --version\n",
            d->threads);
}

static const struct option train_opts[] = {
    {"data", required_argument, 0, O_DATA},       {"dataset", required_argument, 0, O_DATASET},
    {"method", required_argument, 0, O_METHOD},   {"lambda", required_argument, 0, O_LAMBDA},
    {"rrda", no_argument, 0, O_RRDA},             {"rrda-mode", required_argument, 0, O_RRDA_MODE},
    {"rrda-p", required_argument, 0, O_RRDA_P},   {"epochs", required_argument, 0, O_EPOCHS},
    {"batch", required_argument, 0, O_BATCH},     {"lr", required_argument, 0, O_LR},
    {"optimizer", required_argument, 0, O_OPT},   {"wd", required_argument, 0, O_WD},
    {"momentum", required_argument, 0, O_MOMENTUM}, {"schedule", required_argument, 0, O_SCHEDULE},
    {"warmup", required_argument, 0, O_WARMUP},   {"clip", required_argument, 0, O_CLIP},
    {"size", required_argument, 0, O_SIZE},       {"stem", required_argument, 0, O_STEM},
    {"patch", required_argument, 0, O_PATCH},     {"dim", required_argument, 0, O_DIM},
    {"depth", required_argument, 0, O_DEPTH},     {"heads", required_argument, 0, O_HEADS},
    {"mlp-ratio", required_argument, 0, O_MLP},   {"seed", required_argument, 0, O_SEED},
    {"threads", required_argument, 0, O_THREADS}, {"workers", required_argument, 0, O_WORKERS},
    {"out", required_argument, 0, O_OUT},         {"resume", required_argument, 0, O_RESUME},
    {"init", required_argument, 0, O_INIT},       {"max-steps", required_argument, 0, O_MAX_STEPS},
    {"train-limit", required_argument, 0, O_TRAIN_LIMIT}, {"log", required_argument, 0, O_LOG},
    {"save-every", required_argument, 0, O_SAVE_EVERY}, {"actdiff-mode", required_argument, 0, O_ACTDIFF},
    {"adv-hidden", required_argument, 0, O_ADV_HIDDEN}, {"adv-lr", required_argument, 0, O_ADV_LR},
    {"help", no_argument, 0, O_HELP},             {"version", no_argument, 0, O_VERSION},
    {0, 0, 0, 0}};

static void parse_args(int argc, char **argv, lt_rrr_arch arch, lt_rrr_train_config *c)
{
    prog = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
    lt_rrr_train_defaults(c, arch);
    opterr = 0;
    for (;;) {
        int idx = 0, o = getopt_long(argc, argv, "", train_opts, &idx);
        if (o == -1)
            break;
        const char *a = optarg;
        switch (o) {
        case O_DATA: c->data = a; break;
        case O_DATASET:
            if (strcmp(a, "in9") && strcmp(a, "rival10") && strcmp(a, "folder"))
                die("--dataset: expected in9, rival10 or folder, got '%s'%s", a, "");
            c->dataset = a;
            break;
        case O_METHOD: {
            int m = lt_rrr_method_parse(a);
            if (m < 0)
                die("--method: expected standard, rrr, gradmask, actdiff or adversarial, got '%s'%s", a, "");
            c->method = (lt_rrr_method)m;
            break;
        }
        case O_LAMBDA: c->lambda = parse_num("--lambda", a, 0, false); break;
        case O_RRDA: c->rrda = true; break;
        case O_RRDA_MODE:
            if (strcmp(a, "replace") && strcmp(a, "append"))
                die("--rrda-mode: expected replace or append, got '%s'%s", a, "");
            c->rrda_mode = strcmp(a, "append") == 0 ? LT_RRR_RRDA_APPEND : LT_RRR_RRDA_REPLACE;
            break;
        case O_RRDA_P:
            c->rrda_p = parse_num("--rrda-p", a, 0, false);
            if (c->rrda_p > 1)
                die("--rrda-p: expected a probability in [0, 1], got '%s'%s", a, "");
            break;
        case O_EPOCHS: c->epochs = (int)parse_int("--epochs", a, 1); break;
        case O_BATCH: c->batch = parse_int("--batch", a, 1); break;
        case O_LR: c->lr = parse_num("--lr", a, 0, true); break;
        case O_OPT:
            if (strcmp(a, "sgd") && strcmp(a, "adamw"))
                die("--optimizer: expected sgd or adamw, got '%s'%s", a, "");
            c->optimizer = a;
            break;
        case O_WD: c->weight_decay = parse_num("--wd", a, 0, false); break;
        case O_MOMENTUM: c->momentum = parse_num("--momentum", a, 0, false); break;
        case O_SCHEDULE:
            if (strcmp(a, "cosine") && strcmp(a, "step") && strcmp(a, "none"))
                die("--schedule: expected cosine, step or none, got '%s'%s", a, "");
            c->schedule = a;
            break;
        case O_WARMUP: c->warmup = parse_int("--warmup", a, 0); break;
        case O_CLIP: c->clip = parse_num("--clip", a, 0, false); break;
        case O_SIZE: c->image_size = parse_int("--size", a, 8); break;
        case O_STEM:
            if (arch != LT_RRR_ARCH_RESNET18 || (strcmp(a, "small") && strcmp(a, "imagenet")))
                die("--stem: expected small or imagenet (ResNet only), got '%s'%s", a, "");
            c->stem = strcmp(a, "imagenet") == 0 ? LT_NN_STEM_IMAGENET : LT_NN_STEM_SMALL;
            break;
        case O_PATCH: c->vit_patch = parse_int("--patch", a, 1); break;
        case O_DIM: c->vit_dim = parse_int("--dim", a, 1); break;
        case O_DEPTH: c->vit_depth = (int)parse_int("--depth", a, 1); break;
        case O_HEADS: c->vit_heads = (int)parse_int("--heads", a, 1); break;
        case O_MLP: c->vit_mlp_ratio = parse_num("--mlp-ratio", a, 0, true); break;
        case O_SEED: c->seed = (uint64_t)parse_int("--seed", a, 0); break;
        case O_THREADS: c->threads = (int)parse_int("--threads", a, 1); break;
        case O_WORKERS: c->workers = (int)parse_int("--workers", a, 0); break;
        case O_OUT: c->out = a; break;
        case O_RESUME: c->resume = a; break;
        case O_INIT: c->init = a; break;
        case O_MAX_STEPS: c->max_steps = parse_int("--max-steps", a, 1); break;
        case O_TRAIN_LIMIT: c->train_limit = parse_int("--train-limit", a, 1); break;
        case O_LOG: c->log = a; break;
        case O_SAVE_EVERY: c->save_every = parse_int("--save-every", a, 1); break;
        case O_ACTDIFF:
            if (strcmp(a, "mask") && strcmp(a, "shuffle"))
                die("--actdiff-mode: expected mask or shuffle, got '%s'%s", a, "");
            c->actdiff_mode = strcmp(a, "shuffle") == 0 ? LT_RRR_ACTDIFF_SHUFFLE : LT_RRR_ACTDIFF_MASK;
            break;
        case O_ADV_HIDDEN: c->adv_hidden = parse_int("--adv-hidden", a, 1); break;
        case O_ADV_LR: c->adv_lr = parse_num("--adv-lr", a, 0, true); break;
        case O_HELP: {
            lt_rrr_train_config d;
            lt_rrr_train_defaults(&d, arch);
            usage(stdout, arch, &d);
            exit(0);
        }
        case O_VERSION: printf("%s (libtensor) %s\n", prog, LT_VERSION_STRING); exit(0);
        case ':': die("%s needs a value%s", argv[optind - 1], ""); break;
        default:
            if (optopt && optopt >= O_DATA)
                die("%s needs a value%s", argv[optind - 1], "");
            die("unknown option '%s'%s (see --help)", argv[optind - 1], "");
        }
    }
    if (optind < argc)
        die("unexpected argument '%s'%s (see --help)", argv[optind], "");
    if (!c->data)
        die("--data DIR is required%s%s (see --help)", "", "");
    if (!c->out)
        die("--out CKPT is required%s%s (see --help)", "", "");
}

/* ---- progress on stderr, summary on stdout ---- */

typedef struct cli_state {
    bool tty;
    double last_print;
    int rows;
    double train_loss[1024], train_acc[1024], val_acc[1024], ips[1024];
} cli_state;

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void fmt_eta(double s, char *buf, size_t n)
{
    if (!isfinite(s) || s < 0)
        snprintf(buf, n, "?");
    else if (s >= 3600)
        snprintf(buf, n, "%dh%02dm", (int)(s / 3600), (int)fmod(s / 60, 60));
    else
        snprintf(buf, n, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
}

static void on_progress(void *ud, const lt_rrr_train_status *s)
{
    cli_state *st = ud;
    char eta[32];
    if (strcmp(s->phase, "train") == 0) {
        double t = mono();
        bool last = s->batch == s->batches;
        if (!last && t - st->last_print < (st->tty ? 0.2 : 10.0))
            return;
        st->last_print = t;
        fmt_eta(s->eta_sec, eta, sizeof eta);
        fprintf(stderr, "%sepoch %d/%d  step %lld/%lld  loss %.4f  pen %.4g  acc %5.1f%%  %6.1f img/s  ETA %s%s",
                st->tty ? "\r\033[K" : "", s->epoch + 1, s->epochs, (long long)s->batch, (long long)s->batches,
                s->loss, s->penalty, s->acc, s->images_per_sec, eta, st->tty ? "" : "\n");
        if (st->tty && last)
            fputc('\n', stderr);
        fflush(stderr);
        if (st->rows < 1024) {
            st->train_loss[st->rows] = s->loss;
            st->train_acc[st->rows] = s->acc;
            st->ips[st->rows] = s->images_per_sec;
        }
    } else if (strcmp(s->phase, "val") == 0) {
        if (st->tty)
            fputc('\n', stderr);
        fprintf(stderr, "epoch %d: val acc %.2f%%\n", s->epoch + 1, s->val_acc);
        if (st->rows < 1024)
            st->val_acc[st->rows++] = s->val_acc;
    } else if (strcmp(s->phase, "saved") == 0 && !st->tty) {
        fprintf(stderr, "checkpoint %s (step %lld)\n", s->path, (long long)s->step);
    }
}

static int run_training(int argc, char **argv, lt_rrr_arch arch)
{
    lt_rrr_train_config c;
    parse_args(argc, argv, arch, &c);
    cli_state st;
    memset(&st, 0, sizeof st);
    st.tty = isatty(2);
    if (lt_rrr_train(&c, on_progress, &st) < 0) {
        if (st.tty)
            fputc('\n', stderr);
        fprintf(stderr, "%s: %s\n", prog, lt_last_error());
        return 1;
    }
    printf("%-6s %12s %10s %10s %10s\n", "epoch", "train_loss", "train_acc", "val_acc", "img/s");
    for (int i = 0; i < st.rows && i < 1024; i++)
        printf("%-6d %12.4f %9.2f%% %9.2f%% %10.1f\n", i + 1, st.train_loss[i], st.train_acc[i], st.val_acc[i],
               st.ips[i]);
    printf("checkpoint: %s%s%s\n", c.out, c.log ? "  log: " : "", c.log ? c.log : "");
    return 0;
}

#endif
