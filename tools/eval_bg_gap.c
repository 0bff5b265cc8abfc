/*
 * tools/eval_bg_gap: accuracy of a trained checkpoint on the Backgrounds
 * Challenge variants (the paper's Tables 1 and 2), BG-Gap = mixed_same -
 * mixed_rand, optional edge-removal sweep (Fig. 2b) and challenge score.
 * The model is rebuilt from the checkpoint's metadata alone. Results: a
 * table on stdout and, with --json, the object described in docs/eval.md.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <libtensor/nn.h>
#include <libtensor/rrr.h>

static const char *prog = "eval_bg_gap";

static void usage(FILE *f)
{
    fprintf(f,
            "usage: eval_bg_gap --data DIR --checkpoint CKPT [options]\n\n"
            "Accuracy of a checkpoint (from train_resnet18 / train_vit) on the Backgrounds Challenge\n"
            "variants of an IN-9-layout dataset (<DIR>/<variant>/<split>/<NN_class>/, masks in\n"
            "<DIR>/fg_mask/<split>/), BG-Gap = mixed_same - mixed_rand, edge removal and the challenge.\n\n"
            "  --data DIR            dataset root (required)\n"
            "  --checkpoint CKPT     training checkpoint (required); the model, classes and input\n"
            "                        normalization come from its metadata\n"
            "  --split S             split folder (default val)\n"
            "  --variants LIST       comma-separated subset of original,mixed_same,mixed_rand,mixed_next,\n"
            "                        only_fg,only_bg_t,only_bg_b,no_fg (default: every one present)\n"
            "  --edges W1,W2,...     also evaluate with the object's edges removed, for each band width\n"
            "                        W in pixels of a 224 image (e.g. 5,10,20,30,40,50); needs masks\n"
            "  --challenge           Backgrounds Challenge score (foregrounds on --challenge-bgs backgrounds)\n"
            "  --challenge-bgs N     backgrounds per foreground (default 32)\n"
            "  --json OUT            also write the results as JSON\n"
            "  --batch N             images per forward pass (default 64)\n"
            "  --threads N           threads (default 2)\n"
            "  --workers N           loader threads (default 2)\n"
            "  --seed N              seed for the challenge's backgrounds (default 0)\n"
            "  --help, --version\n");
}

static void fail_usage(const char *msg, const char *arg)
{
    fprintf(stderr, "%s: %s%s%s\n", prog, msg, arg ? arg : "", arg ? "" : "");
    exit(2);
}

static int64_t parse_int(const char *flag, const char *s, int64_t min)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < min) {
        fprintf(stderr, "%s: %s: expected an integer >= %lld, got '%s'\n", prog, flag, (long long)min, s);
        exit(2);
    }
    return v;
}

static bool is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int variant_index(const char *name)
{
    for (int i = 0; i < LT_RRR_NVARIANTS; i++)
        if (strcmp(name, lt_rrr_variants[i]) == 0)
            return i;
    return -1;
}

/* Variants whose images carry the object's mask (edge removal needs it). */
static bool has_mask(int v) { return v <= 4; }

typedef struct res {
    bool want;
    double acc;
    int64_t n;
    double *per_class;
} res;

static int eval_one(const lt_rrr_model *m, const char *root, int v, const lt_rrr_eval_opts *o, int ncls, res *r)
{
    int64_t *corr = calloc((size_t)ncls, sizeof *corr), *cnt = calloc((size_t)ncls, sizeof *cnt);
    r->per_class = calloc((size_t)ncls, sizeof *r->per_class);
    if (!corr || !cnt || !r->per_class) {
        free(corr);
        free(cnt);
        lt_set_error("out of memory");
        return -1;
    }
    int rc = lt_rrr_eval_variant(m, root, lt_rrr_variants[v], o, ncls, corr, cnt);
    int64_t c = 0, n = 0;
    for (int k = 0; rc == 0 && k < ncls; k++) {
        c += corr[k];
        n += cnt[k];
        r->per_class[k] = cnt[k] ? 100.0 * (double)corr[k] / (double)cnt[k] : NAN;
    }
    r->acc = n ? 100.0 * (double)c / (double)n : NAN;
    r->n = n;
    free(corr);
    free(cnt);
    return rc;
}

static cJSON *num_or_null(double v) { return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull(); }

int main(int argc, char **argv)
{
    const char *data = NULL, *ckpt = NULL, *split = "val", *variants = NULL, *edges = NULL, *json = NULL;
    bool challenge = false;
    int64_t nbgs = 32, batch = 64, threads = 2, workers = 2;
    uint64_t seed = 0;
    static const struct option opts[] = {
        {"data", required_argument, 0, 'd'},    {"checkpoint", required_argument, 0, 'c'},
        {"split", required_argument, 0, 's'},   {"variants", required_argument, 0, 'v'},
        {"edges", required_argument, 0, 'e'},   {"challenge", no_argument, 0, 'C'},
        {"challenge-bgs", required_argument, 0, 'B'}, {"json", required_argument, 0, 'j'},
        {"batch", required_argument, 0, 'b'},   {"threads", required_argument, 0, 't'},
        {"workers", required_argument, 0, 'w'}, {"seed", required_argument, 0, 'S'},
        {"help", no_argument, 0, 'h'},          {"version", no_argument, 0, 'V'},
        {0, 0, 0, 0}};
    opterr = 0;
    for (int o; (o = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
        switch (o) {
        case 'd': data = optarg; break;
        case 'c': ckpt = optarg; break;
        case 's': split = optarg; break;
        case 'v': variants = optarg; break;
        case 'e': edges = optarg; break;
        case 'C': challenge = true; break;
        case 'B': nbgs = parse_int("--challenge-bgs", optarg, 1); break;
        case 'j': json = optarg; break;
        case 'b': batch = parse_int("--batch", optarg, 1); break;
        case 't': threads = parse_int("--threads", optarg, 1); break;
        case 'w': workers = parse_int("--workers", optarg, 0); break;
        case 'S': seed = (uint64_t)parse_int("--seed", optarg, 0); break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("eval_bg_gap (libtensor) %s\n", LT_VERSION_STRING); return 0;
        default:
            if (optopt)
                fail_usage("option needs a value: ", argv[optind - 1]);
            fail_usage("unknown option (see --help): ", argv[optind - 1]);
        }
    }
    if (optind < argc)
        fail_usage("unexpected argument (see --help): ", argv[optind]);
    if (!data || !ckpt)
        fail_usage("--data DIR and --checkpoint CKPT are required (see --help)", NULL);
    if (!is_dir(data)) {
        fprintf(stderr, "%s: data folder %s does not exist\n", prog, data);
        return 1;
    }
    /* variants */
    res r[LT_RRR_NVARIANTS];
    memset(r, 0, sizeof r);
    char path[4096];
    if (variants) {
        char buf[512];
        snprintf(buf, sizeof buf, "%s", variants);
        for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
            int v = variant_index(tok);
            if (v < 0)
                fail_usage("--variants: unknown variant ", tok);
            snprintf(path, sizeof path, "%s/%s/%s", data, tok, split);
            if (!is_dir(path)) {
                fprintf(stderr, "%s: variant %s is missing: %s does not exist\n", prog, tok, path);
                return 1;
            }
            r[v].want = true;
        }
    } else {
        for (int v = 0; v < LT_RRR_NVARIANTS; v++) {
            snprintf(path, sizeof path, "%s/%s/%s", data, lt_rrr_variants[v], split);
            r[v].want = is_dir(path);
        }
        if (!r[0].want) {
            fprintf(stderr, "%s: %s/original/%s does not exist (not an IN-9 layout?)\n", prog, data, split);
            return 1;
        }
    }
    double widths[32];
    int nw = 0;
    if (edges) {
        char buf[512];
        snprintf(buf, sizeof buf, "%s", edges);
        for (char *tok = strtok(buf, ","); tok && nw < 32; tok = strtok(NULL, ",")) {
            char *end;
            double w = strtod(tok, &end);
            if (end == tok || *end || !(w > 0) || !isfinite(w))
                fail_usage("--edges: expected positive widths separated by commas, got ", tok);
            widths[nw++] = w;
        }
    }
    if (nw > 0 || challenge) {
        snprintf(path, sizeof path, "%s/fg_mask/%s", data, split);
        if (!is_dir(path)) {
            fprintf(stderr, "%s: %s needs foreground masks, but %s does not exist\n", prog,
                    nw > 0 ? "--edges" : "--challenge", path);
            return 1;
        }
    }
    lt_set_num_threads((int)threads);
    lt_rrr_model_info info;
    lt_nn_module *mod = lt_rrr_model_load(ckpt, &info);
    if (!mod) {
        fprintf(stderr, "%s: %s\n", prog, lt_last_error());
        return 1;
    }
    lt_rrr_net net = {mod, info.arch};
    lt_rrr_model model = lt_rrr_net_model(&net);
    lt_rrr_eval_opts eo;
    memset(&eo, 0, sizeof eo);
    eo.split = split;
    eo.image_size = info.image_size;
    memcpy(eo.mean, info.mean, sizeof eo.mean);
    memcpy(eo.std, info.std, sizeof eo.std);
    eo.batch = batch;
    eo.workers = (int)workers;
    int ncls = (int)info.num_classes, rc = 1, nwant = 0, done = 0;
    for (int v = 0; v < LT_RRR_NVARIANTS; v++)
        nwant += r[v].want;
    double edge_acc[32][LT_RRR_NVARIANTS];
    double score = NAN;
    int64_t nfg = 0, nvul = 0;
    for (int v = 0; v < LT_RRR_NVARIANTS; v++) {
        if (!r[v].want)
            continue;
        fprintf(stderr, "eval: %s (%d/%d)\n", lt_rrr_variants[v], ++done, nwant);
        if (eval_one(&model, data, v, &eo, ncls, &r[v]) < 0)
            goto fail;
    }
    for (int k = 0; k < nw; k++) {
        lt_rrr_eval_opts e2 = eo;
        e2.edge_width = widths[k];
        for (int v = 0; v < LT_RRR_NVARIANTS; v++) {
            edge_acc[k][v] = NAN;
            if (!r[v].want || !has_mask(v))
                continue;
            fprintf(stderr, "eval: edges %g, %s\n", widths[k], lt_rrr_variants[v]);
            res er;
            memset(&er, 0, sizeof er);
            int erc = eval_one(&model, data, v, &e2, ncls, &er);
            free(er.per_class);
            if (erc < 0)
                goto fail;
            edge_acc[k][v] = er.acc;
        }
    }
    if (challenge) {
        fprintf(stderr, "eval: challenge, %lld backgrounds per foreground\n", (long long)nbgs);
        if (lt_rrr_bg_challenge(&model, data, &eo, (int)nbgs, seed, &score, &nfg, &nvul) < 0)
            goto fail;
    }
    double gap = (r[1].want && r[2].want) ? r[1].acc - r[2].acc : NAN;
    /* table */
    printf("checkpoint %s: %s, %d classes, %lldx%lld input, split %s\n", ckpt,
           info.arch == LT_RRR_ARCH_VIT ? "vit" : "resnet18", ncls, (long long)info.image_size,
           (long long)info.image_size, split);
    printf("%-12s %9s %8s\n", "variant", "accuracy", "images");
    for (int v = 0; v < LT_RRR_NVARIANTS; v++)
        if (r[v].want)
            printf("%-12s %8.2f%% %8lld\n", lt_rrr_variants[v], r[v].acc, (long long)r[v].n);
    if (isfinite(gap))
        printf("BG-Gap (mixed_same - mixed_rand): %.2f\n", gap);
    if (nw > 0) {
        printf("\nedge removal (band width in pixels of a 224 image)\n%-8s", "width");
        for (int v = 0; v < LT_RRR_NVARIANTS; v++)
            if (r[v].want && has_mask(v))
                printf(" %11s", lt_rrr_variants[v]);
        printf("\n");
        for (int k = 0; k < nw; k++) {
            printf("%-8g", widths[k]);
            for (int v = 0; v < LT_RRR_NVARIANTS; v++)
                if (r[v].want && has_mask(v))
                    printf(" %10.2f%%", edge_acc[k][v]);
            printf("\n");
        }
    }
    if (challenge)
        printf("\nchallenge score: %.2f (%lld foregrounds, %lld vulnerable, %lld backgrounds each)\n", score,
               (long long)nfg, (long long)nvul, (long long)nbgs);
    if (json) {
        cJSON *o = cJSON_CreateObject(), *cfg = cJSON_CreateObject(), *acc = cJSON_CreateObject(),
              *cnt = cJSON_CreateObject(), *pc = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "checkpoint", ckpt);
        cJSON_AddStringToObject(cfg, "arch", info.arch == LT_RRR_ARCH_VIT ? "vit" : "resnet18");
        cJSON_AddNumberToObject(cfg, "num_classes", ncls);
        cJSON_AddNumberToObject(cfg, "image_size", (double)info.image_size);
        cJSON *mc = cJSON_Parse(info.config);
        if (mc)
            cJSON_AddItemToObject(cfg, "model", mc);
        cJSON *cl = cJSON_CreateArray();
        for (int k = 0; k < ncls && info.class_names; k++)
            cJSON_AddItemToArray(cl, cJSON_CreateString(info.class_names[k]));
        cJSON_AddItemToObject(cfg, "classes", cl);
        cJSON_AddItemToObject(o, "config", cfg);
        cJSON_AddStringToObject(o, "split", split);
        for (int v = 0; v < LT_RRR_NVARIANTS; v++) {
            if (!r[v].want)
                continue;
            cJSON_AddItemToObject(acc, lt_rrr_variants[v], num_or_null(r[v].acc));
            cJSON_AddNumberToObject(cnt, lt_rrr_variants[v], (double)r[v].n);
            cJSON *arr = cJSON_CreateArray();
            for (int k = 0; k < ncls; k++)
                cJSON_AddItemToArray(arr, num_or_null(r[v].per_class[k]));
            cJSON_AddItemToObject(pc, lt_rrr_variants[v], arr);
        }
        cJSON_AddItemToObject(o, "accuracy", acc);
        cJSON_AddItemToObject(o, "bg_gap", num_or_null(gap));
        cJSON_AddItemToObject(o, "counts", cnt);
        cJSON_AddItemToObject(o, "per_class", pc);
        if (nw > 0) {
            cJSON *ed = cJSON_CreateObject();
            for (int k = 0; k < nw; k++) {
                char key[32];
                snprintf(key, sizeof key, "%g", widths[k]);
                cJSON *row = cJSON_CreateObject();
                for (int v = 0; v < LT_RRR_NVARIANTS; v++)
                    if (r[v].want && has_mask(v))
                        cJSON_AddItemToObject(row, lt_rrr_variants[v], num_or_null(edge_acc[k][v]));
                cJSON_AddItemToObject(ed, key, row);
            }
            cJSON_AddItemToObject(o, "edges", ed);
        }
        if (challenge) {
            cJSON *ch = cJSON_CreateObject();
            cJSON_AddItemToObject(ch, "score", num_or_null(score));
            cJSON_AddNumberToObject(ch, "backgrounds", (double)nbgs);
            cJSON_AddNumberToObject(ch, "foregrounds", (double)nfg);
            cJSON_AddNumberToObject(ch, "vulnerable", (double)nvul);
            cJSON_AddItemToObject(o, "challenge", ch);
        }
        char *s = cJSON_Print(o);
        FILE *fp = s ? fopen(json, "w") : NULL;
        bool ok = fp && fputs(s, fp) >= 0 && fputc('\n', fp) != EOF;
        if (fp && fclose(fp) != 0)
            ok = false;
        free(s);
        cJSON_Delete(o);
        if (!ok) {
            fprintf(stderr, "%s: cannot write %s\n", prog, json);
            goto done;
        }
    }
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "%s: %s\n", prog, lt_last_error());
done:
    for (int v = 0; v < LT_RRR_NVARIANTS; v++)
        free(r[v].per_class);
    lt_nn_module_free(mod);
    lt_rrr_model_info_free(&info);
    return rc;
}
