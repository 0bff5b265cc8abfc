/*
 * test_tools_report.c: tools/report and tools/attribute, run as programs.
 *
 * report: on hand-made eval_bg_gap / snr.json fixtures its tables hold
 * exactly the fixture numbers (Table 1, Table 2, per-class BG-Gaps, edge
 * curves, SNR), files given under one name merge, the SVG figures are
 * well-formed and name every series, and bad input (missing file, malformed
 * JSON, wrong kind of file, bad flags) is one line on stderr and a non-zero
 * exit. attribute: on a tiny generated dataset and two one-step
 * checkpoints, the SNR it writes equals Saliency + channel max + SNR
 * computed here through the library, and its outputs feed report together
 * with eval_bg_gap's JSON. `make check` builds the tools first.
 */
#include <check.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libtensor/data.h>
#include <libtensor/nn.h>
#include <libtensor/rrr.h>

static char root[64];
static bool have_models; /* the tiny dataset and checkpoints exist */

/* ---- helpers ---- */

static void put(const char *name, const char *text)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", root, name);
    FILE *f = fopen(p, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
        perror(p);
        exit(1);
    }
}

/* The whole file (malloc'd, NUL-terminated), or NULL. */
static char *slurp(const char *rel)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    FILE *f = fopen(p, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    if (b)
        b[n] = '\0';
    fclose(f);
    return b;
}

/* "R" followed by '/' or ' ' or the end stands for the temp root. */
static void expand(const char *in, char *out, size_t n)
{
    size_t k = 0;
    for (; *in && k + 1 < n; in++) {
        if (*in == 'R' && (in[1] == '/' || in[1] == ' ' || !in[1]))
            k += (size_t)snprintf(out + k, n - k, "%s", root);
        else
            out[k++] = *in;
    }
    out[k < n ? k : n - 1] = '\0';
}

/* Run args (R expanded); stderr into err (stdout discarded unless
 * keep_stdout); returns the exit status, 128 + signal if killed. */
static int run(const char *args, char *err, size_t n, bool keep_stdout)
{
    char a[4096], cmd[4200];
    /* a subshell, so a chain of commands (a && b) is captured whole */
    expand(args, a, sizeof a);
    snprintf(cmd, sizeof cmd, keep_stdout ? "(%s) 2>&1" : "(%s) 2>&1 >/dev/null", a);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t k = fread(err, 1, n - 1, p);
    err[k] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

static int lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* XML-ish: starts with an XML declaration or <svg, holds one <svg> root,
 * every '<' closes with '>', and open/close tags balance in order. */
static bool svg_well_formed(const char *s, char *why, size_t n)
{
    while (*s == ' ' || *s == '\n')
        s++;
    if (strncmp(s, "<?xml", 5) != 0 && strncmp(s, "<svg", 4) != 0) {
        snprintf(why, n, "does not start with <?xml or <svg");
        return false;
    }
    if (!strstr(s, "<svg") || !strstr(s, "</svg>")) {
        snprintf(why, n, "no <svg>...</svg>");
        return false;
    }
    char stack[64][32];
    int depth = 0, roots = 0;
    for (const char *p = s; (p = strchr(p, '<')) != NULL;) {
        const char *e = strchr(p, '>');
        if (!e) {
            snprintf(why, n, "unterminated tag");
            return false;
        }
        if (p[1] == '?' || p[1] == '!') {
            p = e + 1;
            continue;
        }
        bool closing = p[1] == '/', selfclose = e[-1] == '/';
        const char *nm = p + 1 + closing;
        size_t len = strcspn(nm, " \t\n/>");
        char name[32];
        snprintf(name, sizeof name, "%.*s", (int)(len < 31 ? len : 31), nm);
        if (closing) {
            if (depth == 0 || strcmp(stack[depth - 1], name) != 0) {
                snprintf(why, n, "</%s> closes %s", name, depth ? stack[depth - 1] : "nothing");
                return false;
            }
            depth--;
        } else if (!selfclose) {
            if (depth == 64)
                return false;
            if (depth == 0)
                roots++;
            snprintf(stack[depth++], 32, "%s", name);
        }
        p = e + 1;
    }
    if (depth != 0 || roots != 1) {
        snprintf(why, n, "%d unclosed tags, %d roots", depth, roots);
        return false;
    }
    return true;
}

/* ---- fixtures ---- */

static const char *std_json =
    "{\"checkpoint\": \"runs/std.safetensors\", \"config\": {\"arch\": \"resnet18\", \"num_classes\": 3, "
    "\"image_size\": 64, \"model\": {\"stem\": \"imagenet\"}, \"classes\": [\"00_cat\", \"01_dog\", \"02_fox\"]},\n"
    " \"split\": \"val\", \"accuracy\": {\"original\": 91.5, \"mixed_same\": 85.0, \"mixed_rand\": 60.0, "
    "\"mixed_next\": 40.5, \"only_fg\": 70.0, \"only_bg_t\": 45.0, \"only_bg_b\": 35.5, \"no_fg\": 50.0},\n"
    " \"bg_gap\": 25.0, \"counts\": {\"original\": 30, \"mixed_same\": 30},\n"
    " \"per_class\": {\"original\": [90, 92, 93], \"mixed_same\": [80, 90, 85], \"mixed_rand\": [50, 70, 60]},\n"
    " \"edges\": {\"5\": {\"original\": 80.0, \"mixed_same\": 70.0}, \"10\": {\"original\": 60.0}, "
    "\"20\": {\"original\": 40.0}},\n"
    " \"challenge\": {\"score\": 12.5, \"backgrounds\": 100, \"foregrounds\": 30, \"vulnerable\": 26}}\n";

/* no bg_gap key: report computes it (88 - 84) */
static const char *rrda_json =
    "{\"checkpoint\": \"runs/rrda.safetensors\", \"config\": {\"arch\": \"resnet18\", \"num_classes\": 3, "
    "\"image_size\": 64, \"classes\": [\"00_cat\", \"01_dog\", \"02_fox\"]},\n"
    " \"split\": \"val\", \"accuracy\": {\"original\": 90.0, \"mixed_same\": 88.0, \"mixed_rand\": 84.0, "
    "\"mixed_next\": 83.0},\n"
    " \"counts\": {\"original\": 30},\n"
    " \"per_class\": {\"mixed_same\": [88, 90, 86], \"mixed_rand\": [85, 86, 81]},\n"
    " \"edges\": {\"10\": {\"original\": 85.0}, \"5\": {\"original\": 88.0}, \"20\": {\"original\": 70.0}}}\n";

/* a second file for Standard: adds width 30, must not override width 5 */
static const char *std_edges_json =
    "{\"checkpoint\": \"runs/std.safetensors\", \"split\": \"val\", \"accuracy\": {\"original\": 91.5}, "
    "\"bg_gap\": null, \"counts\": {\"original\": 30},\n"
    " \"edges\": {\"30\": {\"original\": 25.0}, \"5\": {\"original\": 81.0}}}\n";

static const char *snr_json =
    "{\"runs/std.safetensors\": {\"method\": \"saliency\", \"snr\": [1.0, 2.0, null, 3.0], \"mean\": 2, "
    "\"median\": 2},\n"
    " \"runs/rrda.safetensors\": {\"method\": \"saliency\", \"snr\": [3.0, 4.0, 5.0, 6.0], \"mean\": 4.5, "
    "\"median\": 4.5},\n"
    " \"other/solo.safetensors\": {\"method\": \"saliency\", \"snr\": [1.5]}}\n";

static void setup(void)
{
    snprintf(root, sizeof root, "/tmp/lt_rep_XXXXXX");
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        exit(1);
    }
    put("std.json", std_json);
    put("rrda.json", rrda_json);
    put("std_edges.json", std_edges_json);
    put("snr.json", snr_json);
    put("bad.json", "{\"checkpoint\": \"x\", \"accuracy\": {\"original\": 9");
    put("noacc.json", "{\"checkpoint\": \"x\", \"split\": \"val\"}");
    put("other_ckpt.json", "{\"checkpoint\": \"runs/other.safetensors\", \"accuracy\": {\"original\": 50}}");
    /* a tiny dataset and two one-step checkpoints for attribute */
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "./tools/make_bg_challenge --out %s/bgc --size 16 --train-per-class 2 --val-per-class 2 --quiet "
             ">/dev/null 2>&1 && "
             "./tools/train_resnet18 --data %s/bgc --out %s/a.safetensors --size 16 --batch 8 --epochs 1 "
             "--max-steps 1 --workers 0 --seed 1 --threads 1 >/dev/null 2>&1 && "
             "cp %s/a.safetensors %s/b.safetensors",
             root, root, root, root, root);
    int st = system(cmd);
    have_models = WIFEXITED(st) && WEXITSTATUS(st) == 0;
    if (!have_models)
        fprintf(stderr, "test_tools_report: could not build the tiny dataset and checkpoints; "
                        "attribute's end-to-end tests will fail\n");
}

static void teardown(void)
{
    char cmd[600];
    if (strncmp(root, "/tmp/lt_rep_", 12) == 0) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", root);
    }
}

#define REPORT_ARGS                                                                                            \
    "./tools/report --eval Standard=R/std.json --eval Standard+RRDA=R/rrda.json --eval Standard=R/std_edges.json " \
    "--snr R/snr.json"

#define ck_has(text, needle) ck_assert_msg(strstr((text), (needle)) != NULL, "missing \"%s\" in:\n%s", (needle), (text))

/* ---- report ---- */

START_TEST(report_tables_hold_the_fixture_numbers)
{
    char out[8192];
    ck_assert_msg(run(REPORT_ARGS " --out R/rep", out, sizeof out, true) == 0, "%s", out);
    ck_has(out, "report: ");
    char *md = slurp("rep/REPORT.md");
    ck_assert_ptr_nonnull(md);
    /* Table 1, with the BG-Gap from the file and one computed from the accuracies */
    ck_has(md, "| model | original | mixed_same | mixed_rand | BG-Gap | mixed_next |");
    ck_has(md, "| Standard | 91.5 | 85.0 | 60.0 | 25.0 | 40.5 |");
    ck_has(md, "| Standard+RRDA | 90.0 | 88.0 | 84.0 | 4.0 | 83.0 |");
    /* Table 2, absent variants as '-' */
    ck_has(md, "| model | only_fg | only_bg_t | only_bg_b | no_fg |");
    ck_has(md, "| Standard | 70.0 | 45.0 | 35.5 | 50.0 |");
    ck_has(md, "| Standard+RRDA | - | - | - | - |");
    /* challenge score */
    ck_has(md, "| Standard | 12.5 | 100 | 30 | 26 |");
    /* per-class BG-Gaps (80-50, 90-70, 85-60; median 25) with the class names */
    ck_has(md, "| model | median | 00_cat | 01_dog | 02_fox |");
    ck_has(md, "| Standard | 25.0 | 30.0 | 20.0 | 25.0 |");
    ck_has(md, "| Standard+RRDA | 4.0 | 3.0 | 4.0 | 5.0 |");
    /* edge curves: width 0 is the plain accuracy; the second Standard file
     * adds width 30 and does not override width 5 */
    ck_has(md, "| model | 0 | 5 | 10 | 20 | 30 |");
    ck_has(md, "| Standard | 91.5 | 80.0 | 60.0 | 40.0 | 25.0 |");
    ck_has(md, "| Standard+RRDA | 90.0 | 88.0 | 85.0 | 70.0 | - |");
    /* SNR: named after the eval with the same checkpoint, nulls skipped */
    ck_has(md, "| Standard | saliency | 3 | 2.000 | 2.000 |");
    ck_has(md, "| Standard+RRDA | saliency | 4 | 4.500 | 4.500 |");
    ck_has(md, "| solo | saliency | 1 | 1.500 | 1.500 |");
    /* figures by relative path */
    ck_has(md, "](fig5_bg_gap.svg)");
    ck_has(md, "](fig2b_edges_original.svg)");
    ck_has(md, "](fig6_snr.svg)");
    free(md);
}
END_TEST

START_TEST(report_figures_are_well_formed_svg_naming_every_series)
{
    char out[8192];
    ck_assert_msg(run(REPORT_ARGS " --out R/rep2", out, sizeof out, true) == 0, "%s", out);
    const char *figs[] = {"rep2/fig5_bg_gap.svg", "rep2/fig2b_edges_original.svg", "rep2/fig2b_edges_mixed_same.svg",
                          "rep2/fig6_snr.svg"};
    for (size_t i = 0; i < sizeof figs / sizeof figs[0]; i++) {
        char *s = slurp(figs[i]), why[128] = "";
        ck_assert_msg(s != NULL, "%s not written", figs[i]);
        ck_assert_msg(svg_well_formed(s, why, sizeof why), "%s: %s", figs[i], why);
        ck_has(s, ">Standard<");
        if (i != 2) /* mixed_same edges exist for Standard only */
            ck_has(s, ">Standard+RRDA<");
        else
            ck_assert(strstr(s, "Standard+RRDA") == NULL);
        free(s);
    }
    /* one dot per class in Fig. 5 (3 + 3), one per finite SNR in Fig. 6 (3 + 4 + 1) */
    char *s = slurp("rep2/fig5_bg_gap.svg");
    int dots = 0;
    for (const char *p = s; (p = strstr(p, "class=\"point\"")) != NULL; p++)
        dots++;
    ck_assert_int_eq(dots, 6);
    free(s);
    s = slurp("rep2/fig6_snr.svg");
    dots = 0;
    for (const char *p = s; (p = strstr(p, "class=\"point\"")) != NULL; p++)
        dots++;
    ck_assert_int_eq(dots, 8);
    free(s);
    /* no Fig. 5 data: the figure is left out with a note, the run succeeds */
    ck_assert_int_eq(run("./tools/report --eval A=R/other_ckpt.json --out R/rep3", out, sizeof out, false), 0);
    char *md = slurp("rep3/REPORT.md");
    ck_has(md, "| A | 50.0 | - | - | - | - |");
    ck_has(md, "figure left out");
    free(md);
    ck_assert_int_ne(access("/nonexistent", F_OK), 0);
    char p[256];
    snprintf(p, sizeof p, "%s/rep3/fig5_bg_gap.svg", root);
    ck_assert_int_ne(access(p, F_OK), 0);
}
END_TEST

typedef struct bad_case {
    const char *what, *args, *needle;
    int status;
} bad_case;

static const bad_case report_bad[] = {
    {"missing file", "./tools/report --eval A=R/none.json --out R/x", "none.json", 1},
    {"malformed JSON", "./tools/report --eval A=R/bad.json --out R/x", "not valid JSON", 1},
    {"not an eval file", "./tools/report --eval A=R/noacc.json --out R/x", "accuracy", 1},
    {"snr file that is an eval", "./tools/report --snr R/std.json --out R/x", "snr", 1},
    {"malformed snr", "./tools/report --snr R/bad.json --out R/x", "not valid JSON", 1},
    {"two checkpoints, one name", "./tools/report --eval A=R/std.json --eval A=R/rrda.json --out R/x",
     "different checkpoints", 1},
    {"unknown flag", "./tools/report --eval A=R/std.json --out R/x --bogus", "unknown option", 2},
    {"missing value", "./tools/report --eval A=R/std.json --out", "needs a value", 2},
    {"eval without a name", "./tools/report --eval R/std.json --out R/x", "NAME=FILE", 2},
    {"no output folder", "./tools/report --eval A=R/std.json", "--out", 2},
    {"nothing to report", "./tools/report --out R/x", "nothing to report", 2},
    {"stray argument", "./tools/report --eval A=R/std.json --out R/x extra", "unexpected argument", 2},
};

START_TEST(report_bad_input_is_one_line_and_a_nonzero_exit)
{
    const bad_case *c = &report_bad[_i];
    char err[8192];
    int st = run(c->args, err, sizeof err, false);
    ck_assert_msg(st == c->status, "%s: exit %d, want %d: %s", c->what, st, c->status, err);
    ck_assert_msg(lines(err) == 1, "%s: %d lines on stderr:\n%s", c->what, lines(err), err);
    ck_assert_msg(strncmp(err, "report: ", 8) == 0, "%s: %s", c->what, err);
    ck_assert_msg(strstr(err, c->needle) != NULL, "%s: lacks \"%s\": %s", c->what, c->needle, err);
}
END_TEST

START_TEST(help_names_every_flag_and_version_prints_it)
{
    char out[16384];
    ck_assert_int_eq(run("./tools/report --help", out, sizeof out, true), 0);
    const char *rf[] = {"--eval", "--snr", "--out", "--title", "--help", "--version"};
    for (size_t i = 0; i < sizeof rf / sizeof rf[0]; i++)
        ck_assert_msg(strstr(out, rf[i]) != NULL, "report --help lacks %s", rf[i]);
    ck_assert_int_eq(run("./tools/attribute --help", out, sizeof out, true), 0);
    const char *af[] = {"--data",     "--checkpoint", "--method", "--n",      "--out",   "--split",
                        "--variant",  "--ig-steps",   "--ig-method", "--signed", "--channels", "--seed",
                        "--threads",  "--dataset",    "--batch",  "--grid-n", "--quiet", "--help",
                        "--version",  "gausslegendre", "riemann_trapezoid"};
    for (size_t i = 0; i < sizeof af / sizeof af[0]; i++)
        ck_assert_msg(strstr(out, af[i]) != NULL, "attribute --help lacks %s", af[i]);
    ck_assert_int_eq(run("./tools/report --version", out, sizeof out, true), 0);
    ck_has(out, LT_VERSION_STRING);
    ck_assert_int_eq(run("./tools/attribute --version", out, sizeof out, true), 0);
    ck_has(out, LT_VERSION_STRING);
}
END_TEST

/* ---- attribute ---- */

static const bad_case attribute_bad[] = {
    {"unknown flag", "./tools/attribute --data R/bgc --checkpoint R/a.safetensors --method saliency --n 2 --out R/o "
                     "--bogus", "unknown option", 2},
    {"bad method", "./tools/attribute --data R/bgc --checkpoint R/a.safetensors --method lime --n 2 --out R/o",
     "--method", 2},
    {"bad ig method", "./tools/attribute --data R/bgc --checkpoint R/a.safetensors --method ig --ig-method simpson "
                      "--n 2 --out R/o", "--ig-method", 2},
    {"zero images", "./tools/attribute --data R/bgc --checkpoint R/a.safetensors --method saliency --n 0 --out R/o",
     "--n", 2},
    {"missing --n", "./tools/attribute --data R/bgc --checkpoint R/a.safetensors --method saliency --out R/o",
     "--n", 2},
    {"no checkpoint", "./tools/attribute --data R/bgc --method saliency --n 2 --out R/o", "--checkpoint", 2},
    {"missing value", "./tools/attribute --data R/bgc --checkpoint", "needs a value", 2},
    {"same checkpoint twice", "./tools/attribute --data R/bgc --checkpoint R/a.safetensors --checkpoint "
                              "R/a.safetensors --method saliency --n 2 --out R/o", "twice", 2},
    {"missing checkpoint", "./tools/attribute --data R/bgc --checkpoint R/none.safetensors --method saliency --n 2 "
                           "--out R/o", "none.safetensors", 1},
    {"not a checkpoint", "./tools/attribute --data R/bgc --checkpoint R/std.json --method saliency --n 2 --out R/o",
     "std.json", 1},
    {"missing data", "./tools/attribute --data R/nodata --checkpoint R/a.safetensors --method saliency --n 2 "
                     "--out R/o", "nodata", 1},
    {"missing variant", "./tools/attribute --data R/bgc --variant mixed_weird --checkpoint R/a.safetensors "
                        "--method saliency --n 2 --out R/o", "mixed_weird", 1},
};

START_TEST(attribute_bad_input_is_one_line_and_a_nonzero_exit)
{
    const bad_case *c = &attribute_bad[_i];
    char err[8192];
    int st = run(c->args, err, sizeof err, false);
    ck_assert_msg(st == c->status, "%s: exit %d, want %d: %s", c->what, st, c->status, err);
    ck_assert_msg(lines(err) == 1, "%s: %d lines on stderr:\n%s", c->what, lines(err), err);
    ck_assert_msg(strncmp(err, "attribute: ", 11) == 0, "%s: %s", c->what, err);
    ck_assert_msg(strstr(err, c->needle) != NULL, "%s: lacks \"%s\": %s", c->what, c->needle, err);
}
END_TEST

/* Saliency of image `path` for its class under model m, reduced by channel
 * max, and its SNR: computed here with the library, one image at a time. */
static double library_snr(lt_nn_module *m, const lt_rrr_model_info *info, const lt_data_list *l, const char *path)
{
    const lt_data_sample *s = NULL;
    for (size_t i = 0; i < l->n && !s; i++)
        if (strcmp(l->samples[i].path, path) == 0)
            s = &l->samples[i];
    ck_assert_msg(s != NULL, "%s is not in the listing", path);
    size_t mark = lt_frame_push();
    lt_tensor *img = lt_data_image_read(s->path, 3), *mask = lt_data_mask_read(s->mask_path);
    lt_data_transform t;
    memset(&t, 0, sizeof t);
    t.geom = LT_DATA_GEOM_RESIZE;
    t.height = t.width = info->image_size;
    t.normalize = true;
    for (int k = 0; k < 3; k++) {
        t.mean[k] = info->mean[k];
        t.std[k] = info->std[k];
    }
    ck_assert_int_eq(lt_data_transform_apply(&t, NULL, &img, &mask), 0);
    lt_tensor *x = lt_unsqueeze(img, 0), *mk = lt_unsqueeze(mask, 0);
    lt_tensor *y = lt_full(1, (int64_t[]){1}, (double)s->label, LT_I64);
    lt_rrr_net net = {m, info->arch};
    lt_rrr_model rm = lt_rrr_net_model(&net);
    lt_tensor *snr = lt_rrr_snr(lt_rrr_reduce_channels(lt_rrr_saliency(&rm, x, y, false), LT_RRR_CHANNELS_MAX_ABS), mk);
    ck_assert_msg(snr != NULL, "%s", lt_last_error());
    double v = lt_item_at(snr, 0);
    lt_frame_pop(mark);
    return v;
}

START_TEST(attribute_snr_equals_the_library_and_feeds_report)
{
    ck_assert_msg(have_models, "setup could not build the tiny dataset and checkpoints");
    char out[16384];
    /* n = 13 of 20 images: every class once, then three again; batches of 4 */
    int st = run("./tools/attribute --data R/bgc --checkpoint R/a.safetensors --checkpoint R/b.safetensors "
                 "--method saliency --n 13 --batch 4 --out R/attr --threads 1",
                 out, sizeof out, true);
    ck_assert_msg(st == 0, "%s", out);
    ck_has(out, "mean_snr");
    ck_has(out, "attribute: [2/2] b: 13/13 images"); /* progress on stderr */
    char *js = slurp("attr/snr.json");
    ck_assert_ptr_nonnull(js);
    cJSON *j = cJSON_Parse(js);
    free(js);
    ck_assert_ptr_nonnull(j);
    st = run("./tools/attribute --data R/bgc --checkpoint R/a.safetensors --method saliency --n 13 --batch 1 "
             "--out R/attr1 --threads 1",
             out, sizeof out, true);
    ck_assert_msg(st == 0, "%s", out);
    js = slurp("attr1/snr.json");
    cJSON *j1 = cJSON_Parse(js);
    free(js);
    ck_assert_ptr_nonnull(j1);
    char ck[2][256];
    snprintf(ck[0], sizeof ck[0], "%s/a.safetensors", root);
    snprintf(ck[1], sizeof ck[1], "%s/b.safetensors", root);
    char data[256];
    snprintf(data, sizeof data, "%s/bgc", root);
    lt_data_list *l = lt_data_in9_list(data, "original", "val", LT_DATA_MASKS_REQUIRED);
    ck_assert_ptr_nonnull(l);
    for (int c = 0; c < 2; c++) {
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, ck[c]);
        ck_assert_msg(cJSON_IsObject(e), "no entry for %s", ck[c]);
        ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(e, "method")->valuestring, "saliency");
        const cJSON *snr = cJSON_GetObjectItemCaseSensitive(e, "snr"), *im = cJSON_GetObjectItemCaseSensitive(e, "images"),
                    *lb = cJSON_GetObjectItemCaseSensitive(e, "labels");
        ck_assert_int_eq(cJSON_GetArraySize(snr), 13);
        ck_assert_int_eq(cJSON_GetArraySize(im), 13);
        /* spread over the classes: labels 0..9, then 0, 1, 2 */
        for (int i = 0; i < 13; i++)
            ck_assert_int_eq((int)cJSON_GetArrayItem(lb, i)->valuedouble, i % 10);
        double sum = 0;
        int fin = 0;
        lt_rrr_model_info info;
        lt_nn_module *m = lt_rrr_model_load(ck[c], &info);
        ck_assert_msg(m != NULL, "%s", lt_last_error());
        for (int i = 0; i < 13; i += (c == 0 ? 1 : 4)) { /* every image of a, a few of b */
            double want = library_snr(m, &info, l, cJSON_GetArrayItem(im, i)->valuestring);
            const cJSON *v = cJSON_GetArrayItem(snr, i);
            if (isnan(want)) {
                ck_assert(cJSON_IsNull(v));
                continue;
            }
            /* a batch of 4 may take other convolution paths than one image
             * alone (summation orders; a ReLU input near 0 may flip): seen
             * 1e-6 to 6e-5 apart on an AMD EPYC; a batching bug (a wrong
             * image, label or mask) moves an SNR by far more than 1e-3 */
            ck_assert_msg(fabs(v->valuedouble - want) <= 1e-3 * fabs(want), "image %d: tool %.9g, library %.9g", i,
                          v->valuedouble, want);
            if (c == 0) { /* image by image, the tool computes what the library does */
                const cJSON *v1 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(
                                                         cJSON_GetObjectItemCaseSensitive(j1, ck[0]), "snr"),
                                                     i);
                ck_assert_msg(cJSON_IsNumber(v1) && fabs(v1->valuedouble - want) <= 1e-7 * fabs(want),
                              "image %d, --batch 1: tool %.9g, library %.9g", i, v1 ? v1->valuedouble : NAN, want);
            }
        }
        lt_nn_module_free(m);
        lt_rrr_model_info_free(&info);
        for (int i = 0; i < 13; i++)
            if (cJSON_IsNumber(cJSON_GetArrayItem(snr, i))) {
                sum += cJSON_GetArrayItem(snr, i)->valuedouble;
                fin++;
            }
        ck_assert_double_eq_tol(cJSON_GetObjectItemCaseSensitive(e, "mean")->valuedouble, sum / fin, 1e-9);
    }
    lt_data_list_free(l);
    cJSON_Delete(j);
    cJSON_Delete(j1);
    /* CSV: header + 2 x 13 rows; PNG grids; the box plot names both models */
    char *csv = slurp("attr/snr.csv");
    ck_assert_ptr_nonnull(csv);
    ck_assert_int_eq(lines(csv), 1 + 26);
    ck_assert(strncmp(csv, "checkpoint,image,label,snr\n", 27) == 0);
    free(csv);
    char p[256];
    snprintf(p, sizeof p, "%s/attr/a_grid.png", root);
    size_t mark = lt_frame_push();
    lt_tensor *g = lt_data_image_read(p, 0);
    ck_assert_msg(g != NULL, "%s", lt_last_error());
    ck_assert_int_eq(lt_size(g, 0), 3);
    /* 13 images: 8 columns, 2 rows of (image, heat map) pairs, cells 16 * 8 = 128 px, 2 px gaps */
    ck_assert_int_eq(lt_size(g, 2), 8 * 128 + 9 * 2);
    ck_assert_int_eq(lt_size(g, 1), 4 * 128 + 5 * 2);
    lt_frame_pop(mark);
    char *svg = slurp("attr/snr_boxplot.svg"), why[128] = "";
    ck_assert_ptr_nonnull(svg);
    ck_assert_msg(svg_well_formed(svg, why, sizeof why), "%s", why);
    ck_has(svg, ">a<");
    ck_has(svg, ">b<");
    free(svg);

    /* eval_bg_gap's JSON and this snr.json into report: the names meet */
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             /* the checkpoint by its R/ name: run() expands every "R/", and
              * the expanded root itself may contain one (mkdtemp's "...R/") */
             "./tools/eval_bg_gap --data R/bgc --checkpoint R/a.safetensors --json R/ev_a.json --variants "
             "original,mixed_same,mixed_rand --edges 10 --threads 1 --workers 0 && "
             "./tools/report --eval A=R/ev_a.json --snr R/attr/snr.json --out R/rep_e2e");
    st = run(cmd, out, sizeof out, true);
    ck_assert_msg(st == 0, "%s", out);
    js = slurp("ev_a.json");
    j = cJSON_Parse(js);
    free(js);
    ck_assert_ptr_nonnull(j);
    const cJSON *acc = cJSON_GetObjectItemCaseSensitive(j, "accuracy");
    char row[128];
    snprintf(row, sizeof row, "| A | %.1f | %.1f | %.1f |",
             cJSON_GetObjectItemCaseSensitive(acc, "original")->valuedouble,
             cJSON_GetObjectItemCaseSensitive(acc, "mixed_same")->valuedouble,
             cJSON_GetObjectItemCaseSensitive(acc, "mixed_rand")->valuedouble);
    cJSON_Delete(j);
    char *md = slurp("rep_e2e/REPORT.md");
    ck_assert_ptr_nonnull(md);
    ck_has(md, row);
    ck_has(md, "| A | saliency | ");       /* the snr entry took the eval's name */
    ck_has(md, "](fig2b_edges_original.svg)"); /* from --edges 10 */
    free(md);
}
END_TEST

START_TEST(attribute_gradcam_and_ig_run_with_their_options)
{
    ck_assert_msg(have_models, "setup could not build the tiny dataset and checkpoints");
    char out[8192];
    int st = run("./tools/attribute --data R/bgc --checkpoint R/b.safetensors --method gradcam --n 3 --out R/gc "
                 "--quiet --grid-n 0",
                 out, sizeof out, true);
    ck_assert_msg(st == 0, "%s", out);
    ck_assert_msg(strstr(out, "attribute: [") == NULL, "--quiet printed progress: %s", out);
    char p[256];
    snprintf(p, sizeof p, "%s/gc/b_grid.png", root);
    ck_assert_int_ne(access(p, F_OK), 0); /* --grid-n 0: no grid */
    st = run("./tools/attribute --data R/bgc --checkpoint R/a.safetensors --method ig --ig-steps 4 "
             "--ig-method riemann_trapezoid --signed --channels sum --seed 3 --n 2 --out R/ig --quiet",
             out, sizeof out, true);
    ck_assert_msg(st == 0, "%s", out);
    char *js = slurp("ig/snr.json");
    cJSON *j = cJSON_Parse(js);
    free(js);
    ck_assert_ptr_nonnull(j);
    const cJSON *e = j->child;
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(e, "ig_method")->valuestring, "riemann_trapezoid");
    ck_assert_int_eq((int)cJSON_GetObjectItemCaseSensitive(e, "ig_steps")->valuedouble, 4);
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(e, "channels")->valuestring, "sum");
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "signed")));
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(e, "snr")), 2);
    cJSON_Delete(j);
}
END_TEST

int main(void)
{
    setup();
    Suite *s = suite_create("tools_report");
    TCase *tr = tcase_create("report");
    tcase_add_test(tr, report_tables_hold_the_fixture_numbers);
    tcase_add_test(tr, report_figures_are_well_formed_svg_naming_every_series);
    tcase_add_loop_test(tr, report_bad_input_is_one_line_and_a_nonzero_exit, 0,
                        (int)(sizeof report_bad / sizeof report_bad[0]));
    tcase_add_test(tr, help_names_every_flag_and_version_prints_it);
    suite_add_tcase(s, tr);
    TCase *ta = tcase_create("attribute");
    tcase_set_timeout(ta, 300);
    tcase_add_loop_test(ta, attribute_bad_input_is_one_line_and_a_nonzero_exit, 0,
                        (int)(sizeof attribute_bad / sizeof attribute_bad[0]));
    tcase_add_test(ta, attribute_snr_equals_the_library_and_feeds_report);
    tcase_add_test(ta, attribute_gradcam_and_ig_run_with_their_options);
    suite_add_tcase(s, ta);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    teardown();
    return failed ? 1 : 0;
}
