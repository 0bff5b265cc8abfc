/*
 * tools/report: the paper's tables and figures from the tools' JSON.
 * Reads evaluations (tools/eval_bg_gap --json) and attribution results
 * (tools/attribute's snr.json) and writes DIR/REPORT.md with Table 1
 * (background challenge), Table 2 (only-FG / only-BG), the per-class
 * BG-Gap distribution (Fig. 5), the edge-removal curves (Fig. 2b) and the
 * SNR box plots (Fig. 6) as SVG files beside it. `report --help` lists the
 * flags; docs/reproduction.md shows a report. Reads and writes files only:
 * no model is run here.
 */
#include <libtensor/tensor.h>

#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "svg.h"
#include "tool_fs.h"

#define PROG "report"
#define MAX_IN 64
#define MAX_W 64
#define NV 8

/* The variants, in the paper's order. */
static const char *variants[NV] = {"original", "mixed_same", "mixed_rand", "mixed_next",
                                   "only_fg",  "only_bg_t",  "only_bg_b",  "no_fg"};
enum { V_ORIG, V_SAME, V_RAND, V_NEXT, V_FG, V_BGT, V_BGB, V_NOFG };

#define MAX_FILES 8

/* One evaluation: an eval_bg_gap --json file, or several merged (the same
 * --eval NAME given more than once). */
typedef struct eval {
    const char *name, *file;
    const char *files[MAX_FILES];
    int nfiles;
    cJSON *roots[MAX_FILES];
    const char *checkpoint, *arch, *split; /* borrowed from a root; may be NULL */
    const cJSON *classes;                  /* config.classes, or NULL */
    double image_size;
    cJSON *root;
    double acc[NV]; /* NaN where absent */
    double bg_gap;
    double count[NV];
    const cJSON *per_class[NV]; /* arrays, or NULL */
    int nw;
    double width[MAX_W], edge[MAX_W][NV]; /* sorted by width */
    bool has_challenge;
    double ch_score, ch_bgs, ch_fgs, ch_vuln;
} eval;

/* One model's attributions (an entry of a snr.json). */
typedef struct snr_set {
    char name[256];
    const char *checkpoint, *method, *file;
    double *v;
    int n;
    double mean, median;
} snr_set;

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: " PROG " --eval NAME=FILE.json [--eval NAME2=FILE2.json ...] [--snr FILE.json ...]\n"
            "              --out DIR [options]\n"
            "\n"
            "Writes DIR/REPORT.md from evaluations (tools/eval_bg_gap --json) and attribution results\n"
            "(tools/attribute's snr.json), with the figures as SVG files beside it:\n"
            "  Table 1   model | original | mixed_same | mixed_rand | BG-Gap | mixed_next  (accuracy, %%)\n"
            "  Table 2   model | only_fg | only_bg_t | only_bg_b | no_fg\n"
            "  Fig. 5    fig5_bg_gap.svg: per-class BG-Gaps (mixed_same - mixed_rand) per model\n"
            "  Fig. 2b   fig2b_edges_<variant>.svg: accuracy against the width of the removed edge band\n"
            "            (from the files' \"edges\"; width 0 is the plain accuracy)\n"
            "  Fig. 6    fig6_snr.svg: attribution signal-to-noise ratio per model\n"
            "Absent variants show as '-'; a figure without data is left out with a note.\n"
            "\n"
            "Options:\n"
            "  --eval NAME=FILE      an evaluation, shown as NAME (repeatable, at most %d names); the same\n"
            "                        NAME again merges its files, later ones filling what earlier ones\n"
            "                        lack (e.g. every variant, then --variants original --edges ...)\n"
            "  --snr FILE            a snr.json (repeatable); each checkpoint in it is named after the\n"
            "                        --eval whose \"checkpoint\" is the same path, else after its file stem\n"
            "  --out DIR             output folder (created)\n"
            "  --title TEXT          the report's heading (default \"Backgrounds Challenge report\")\n"
            "  -h, --help            this help, then exit\n"
            "  -V, --version         the version, then exit\n"
            "\n"
            "Table 1 goes to stdout too. Exit status 0 on success, 1 on an error (a missing or malformed\n"
            "file), 2 on bad usage (one line on stderr).\n",
            MAX_IN);
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

/* ---- reading ---- */

static cJSON *read_json(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail("cannot read %s: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf)
            fail("%s: out of memory%s", path, "");
        n += fread(buf + n, 1, cap - n - 1, f);
        if (ferror(f))
            fail("cannot read %s: %s", path, strerror(errno));
        if (feof(f))
            break;
        cap *= 2;
        buf = realloc(buf, cap);
    }
    fclose(f);
    buf[n] = '\0';
    if (strlen(buf) != n)
        fail("%s: not valid JSON (it holds a NUL byte)%s", path, "");
    cJSON *j = cJSON_ParseWithLength(buf, n);
    if (!j) {
        const char *e = cJSON_GetErrorPtr();
        char where[64];
        snprintf(where, sizeof where, " (near byte %lld)", e && e >= buf && e <= buf + n ? (long long)(e - buf) : 0LL);
        fail("%s: not valid JSON%s", path, where);
    }
    free(buf);
    return j;
}

static double num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static const char *str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void add_edge(eval *e, double w, const double *acc);

/* Parse one file into e (a zeroed struct; e->file set). */
static void parse_eval(eval *e)
{
    e->root = read_json(e->file);
    const cJSON *r = e->root, *acc = cJSON_GetObjectItemCaseSensitive(r, "accuracy");
    if (!cJSON_IsObject(r) || !cJSON_IsObject(acc))
        fail("%s: no \"accuracy\" object (is it an eval_bg_gap --json file?)%s", e->file, "");
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(r, "config");
    e->checkpoint = str(r, "checkpoint");
    e->split = str(r, "split");
    e->arch = str(cfg, "arch");
    e->image_size = num(cfg, "image_size");
    e->classes = cJSON_GetObjectItemCaseSensitive(cfg, "classes");
    if (!cJSON_IsArray(e->classes))
        e->classes = NULL;
    const cJSON *cnt = cJSON_GetObjectItemCaseSensitive(r, "counts");
    const cJSON *pc = cJSON_GetObjectItemCaseSensitive(r, "per_class");
    for (int v = 0; v < NV; v++) {
        e->acc[v] = num(acc, variants[v]);
        e->count[v] = num(cnt, variants[v]);
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(pc, variants[v]);
        e->per_class[v] = cJSON_IsArray(a) ? a : NULL;
    }
    e->bg_gap = num(r, "bg_gap");
    if (!isfinite(e->bg_gap) && isfinite(e->acc[V_SAME]) && isfinite(e->acc[V_RAND]))
        e->bg_gap = e->acc[V_SAME] - e->acc[V_RAND];
    const cJSON *ed = cJSON_GetObjectItemCaseSensitive(r, "edges"), *w;
    if (ed && !cJSON_IsObject(ed))
        fail("%s: \"edges\" is not an object%s", e->file, "");
    cJSON_ArrayForEach(w, ed)
    {
        char *end;
        double width = strtod(w->string, &end);
        if (end == w->string || *end || !isfinite(width) || !cJSON_IsObject(w))
            fail("%s: \"edges\" key \"%s\" is not a width with an object of accuracies", e->file, w->string);
        double acc_w[NV];
        for (int v = 0; v < NV; v++)
            acc_w[v] = num(w, variants[v]);
        add_edge(e, width, acc_w);
    }
    const cJSON *ch = cJSON_GetObjectItemCaseSensitive(r, "challenge");
    if (cJSON_IsObject(ch)) {
        e->has_challenge = true;
        e->ch_score = num(ch, "score");
        e->ch_bgs = num(ch, "backgrounds");
        e->ch_fgs = num(ch, "foregrounds");
        e->ch_vuln = num(ch, "vulnerable");
    }
}

/* Add width w's accuracies (NaN: absent) to e's edge table, keeping it
 * sorted; a width already there only gets the variants it lacks. */
static void add_edge(eval *e, double w, const double *acc)
{
    for (int k = 0; k < e->nw; k++)
        if (e->width[k] == w) {
            for (int v = 0; v < NV; v++)
                if (!isfinite(e->edge[k][v]))
                    e->edge[k][v] = acc[v];
            return;
        }
    if (e->nw == MAX_W)
        fail("%s: more than 64 edge widths%s", e->name ? e->name : e->file, "");
    int k = e->nw++;
    while (k > 0 && e->width[k - 1] > w) {
        e->width[k] = e->width[k - 1];
        memcpy(e->edge[k], e->edge[k - 1], sizeof e->edge[k]);
        k--;
    }
    e->width[k] = w;
    memcpy(e->edge[k], acc, sizeof e->edge[k]);
}

/* Load every file of e; later files fill in what earlier ones lack (e.g. a
 * run of every variant and a run of `--variants original --edges ...`). */
static void load_eval(eval *e)
{
    static eval part;
    for (int f = 0; f < e->nfiles; f++) {
        memset(&part, 0, sizeof part);
        part.file = e->files[f];
        parse_eval(&part);
        e->roots[f] = part.root;
        if (f == 0) {
            const char *name = e->name;
            const char *files[MAX_FILES];
            memcpy(files, e->files, sizeof files);
            int nf = e->nfiles;
            *e = part;
            e->name = name;
            memcpy(e->files, files, sizeof files);
            e->nfiles = nf;
            e->roots[0] = part.root;
            continue;
        }
        if (e->checkpoint && part.checkpoint && strcmp(e->checkpoint, part.checkpoint) != 0)
            fail("--eval %s: the files evaluate different checkpoints (%s)", e->name, part.checkpoint);
        e->checkpoint = e->checkpoint ? e->checkpoint : part.checkpoint;
        e->arch = e->arch ? e->arch : part.arch;
        e->split = e->split ? e->split : part.split;
        e->classes = e->classes ? e->classes : part.classes;
        if (!isfinite(e->image_size))
            e->image_size = part.image_size;
        for (int v = 0; v < NV; v++) {
            if (!isfinite(e->acc[v]))
                e->acc[v] = part.acc[v];
            if (!isfinite(e->count[v]))
                e->count[v] = part.count[v];
            if (!e->per_class[v])
                e->per_class[v] = part.per_class[v];
        }
        if (!isfinite(e->bg_gap))
            e->bg_gap = part.bg_gap;
        for (int k = 0; k < part.nw; k++)
            add_edge(e, part.width[k], part.edge[k]);
        if (!e->has_challenge && part.has_challenge) {
            e->has_challenge = true;
            e->ch_score = part.ch_score;
            e->ch_bgs = part.ch_bgs;
            e->ch_fgs = part.ch_fgs;
            e->ch_vuln = part.ch_vuln;
        }
    }
    if (!isfinite(e->bg_gap) && isfinite(e->acc[V_SAME]) && isfinite(e->acc[V_RAND]))
        e->bg_gap = e->acc[V_SAME] - e->acc[V_RAND];
}

static void stem_of(const char *path, char *out, size_t n)
{
    const char *b = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    snprintf(out, n, "%s", b);
    char *dot = strrchr(out, '.');
    if (dot && dot != out)
        *dot = '\0';
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Mean and median of the finite values of v. */
static void stats(const double *v, int n, double *mean, double *median, int *finite)
{
    double *s = malloc((size_t)(n > 0 ? n : 1) * sizeof *s), sum = 0;
    int k = 0;
    for (int i = 0; s && i < n; i++)
        if (isfinite(v[i])) {
            s[k++] = v[i];
            sum += v[i];
        }
    *finite = k;
    *mean = k ? sum / k : NAN;
    *median = NAN;
    if (k) {
        qsort(s, (size_t)k, sizeof *s, cmp_d);
        *median = k % 2 ? s[k / 2] : 0.5 * (s[k / 2 - 1] + s[k / 2]);
    }
    free(s);
}

/* Append the models of one snr.json to sets; *root_out keeps the parsed
 * file (the sets borrow its strings) for the caller to free. */
static int load_snr(const char *file, const eval *ev, int nev, snr_set *sets, int n, int max, cJSON **root_out)
{
    cJSON *root = read_json(file);
    *root_out = root;
    if (!cJSON_IsObject(root) || !root->child)
        fail("%s: expected an object {checkpoint: {\"method\", \"snr\": [...]}} (tools/attribute's snr.json)%s",
             file, "");
    const cJSON *e;
    cJSON_ArrayForEach(e, root)
    {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(e, "snr"), *x;
        if (!cJSON_IsObject(e) || !cJSON_IsArray(a))
            fail("%s: entry \"%s\" has no \"snr\" array", file, e->string);
        if (n == max)
            fail("%s: more than 64 attribution sets in all%s", file, "");
        snr_set *s = &sets[n++];
        s->file = file;
        s->checkpoint = e->string;
        s->method = str(e, "method") ? str(e, "method") : "?";
        s->n = cJSON_GetArraySize(a);
        s->v = malloc((size_t)(s->n > 0 ? s->n : 1) * sizeof *s->v);
        if (!s->v)
            fail("out of memory%s%s", "", "");
        int i = 0;
        cJSON_ArrayForEach(x, a)
        {
            if (!cJSON_IsNumber(x) && !cJSON_IsNull(x))
                fail("%s: entry \"%s\": \"snr\" holds something other than numbers and nulls", file, e->string);
            s->v[i++] = cJSON_IsNumber(x) ? x->valuedouble : NAN;
        }
        s->name[0] = '\0';
        for (int k = 0; k < nev; k++)
            if (ev[k].checkpoint && strcmp(ev[k].checkpoint, s->checkpoint) == 0)
                snprintf(s->name, sizeof s->name, "%s", ev[k].name);
        if (!s->name[0])
            stem_of(s->checkpoint, s->name, sizeof s->name);
    }
    return n;
}

/* ---- writing ---- */

static void cell(FILE *f, double v)
{
    if (isfinite(v))
        fprintf(f, " %.1f |", v);
    else
        fputs(" - |", f);
}

/* A Markdown table cell's text: '|' escaped. */
static void md_text(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        if (*s == '|')
            fputc('\\', f);
        fputc(*s, f);
    }
}

static bool any_of(const eval *ev, int n, const int *vs, int nv)
{
    for (int i = 0; i < n; i++)
        for (int k = 0; k < nv; k++)
            if (isfinite(ev[i].acc[vs[k]]))
                return true;
    return false;
}

static void table1(FILE *f, const eval *ev, int n)
{
    fputs("| model | original | mixed_same | mixed_rand | BG-Gap | mixed_next |\n"
          "|---|---:|---:|---:|---:|---:|\n",
          f);
    for (int i = 0; i < n; i++) {
        fputs("| ", f);
        md_text(f, ev[i].name);
        fputs(" |", f);
        cell(f, ev[i].acc[V_ORIG]);
        cell(f, ev[i].acc[V_SAME]);
        cell(f, ev[i].acc[V_RAND]);
        cell(f, ev[i].bg_gap);
        cell(f, ev[i].acc[V_NEXT]);
        fputc('\n', f);
    }
}

static void table2(FILE *f, const eval *ev, int n)
{
    fputs("| model | only_fg | only_bg_t | only_bg_b | no_fg |\n|---|---:|---:|---:|---:|\n", f);
    for (int i = 0; i < n; i++) {
        fputs("| ", f);
        md_text(f, ev[i].name);
        fputs(" |", f);
        cell(f, ev[i].acc[V_FG]);
        cell(f, ev[i].acc[V_BGT]);
        cell(f, ev[i].acc[V_BGB]);
        cell(f, ev[i].acc[V_NOFG]);
        fputc('\n', f);
    }
}

static void fig_failed(const char *path) { fail("cannot write %s: %s", path, strerror(errno)); }

/* Per-class BG-Gaps of model i into out (at most max); returns how many
 * classes have both mixed_same and mixed_rand. */
static int class_gaps(const eval *e, double *out, int max)
{
    const cJSON *s = e->per_class[V_SAME], *r = e->per_class[V_RAND];
    if (!s || !r)
        return 0;
    int n = cJSON_GetArraySize(s) < cJSON_GetArraySize(r) ? cJSON_GetArraySize(s) : cJSON_GetArraySize(r);
    n = n < max ? n : max;
    for (int k = 0; k < n; k++) {
        const cJSON *a = cJSON_GetArrayItem(s, k), *b = cJSON_GetArrayItem(r, k);
        out[k] = cJSON_IsNumber(a) && cJSON_IsNumber(b) ? a->valuedouble - b->valuedouble : NAN;
    }
    return n;
}

static void section_fig5(FILE *md, const char *dir, const eval *ev, int n)
{
    enum { MAXC = 1000 };
    static double gaps[MAX_IN][MAXC];
    const char *names[MAX_IN];
    const double *vals[MAX_IN];
    int counts[MAX_IN], m = 0, ncls = 0;
    for (int i = 0; i < n; i++) {
        int k = class_gaps(&ev[i], gaps[m], MAXC);
        if (k == 0)
            continue;
        names[m] = ev[i].name;
        vals[m] = gaps[m];
        counts[m] = k;
        ncls = k > ncls ? k : ncls;
        m++;
    }
    fputs("\n## Fig. 5: BG-Gap per class\n\n", md);
    if (m == 0) {
        fputs("No evaluation has per-class mixed_same and mixed_rand accuracies; figure left out.\n", md);
        return;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/fig5_bg_gap.svg", dir);
    if (fig_boxplot(path, "Per-class BG-Gap (mixed_same - mixed_rand)", "BG-Gap (percentage points)", m, names,
                    vals, counts, true, true) < 0)
        fig_failed(path);
    fputs("The BG-Gap of each class (its mixed_same accuracy minus its mixed_rand accuracy), one dot per\n"
          "class; the box spans the quartiles, the bar is the median. Lower is better: a model that\n"
          "ignores the background has a gap near 0.\n\n"
          "![per-class BG-Gap](fig5_bg_gap.svg)\n\n",
          md);
    /* the numbers behind it */
    const cJSON *classes = NULL;
    for (int i = 0; i < n && !classes; i++)
        if (ev[i].classes && cJSON_GetArraySize(ev[i].classes) == ncls)
            classes = ev[i].classes;
    fputs("| model | median |", md);
    for (int k = 0; k < ncls; k++) {
        const cJSON *c = classes ? cJSON_GetArrayItem(classes, k) : NULL;
        if (cJSON_IsString(c)) {
            fputc(' ', md);
            md_text(md, c->valuestring);
            fputs(" |", md);
        } else {
            fprintf(md, " %d |", k);
        }
    }
    fputs("\n|---|---:|", md);
    for (int k = 0; k < ncls; k++)
        fputs("---:|", md);
    fputc('\n', md);
    for (int i = 0; i < m; i++) {
        double mean, med;
        int fin;
        stats(vals[i], counts[i], &mean, &med, &fin);
        fputs("| ", md);
        md_text(md, names[i]);
        fputs(" |", md);
        cell(md, med);
        for (int k = 0; k < ncls; k++)
            cell(md, k < counts[i] ? vals[i][k] : NAN);
        fputc('\n', md);
    }
}

static void section_fig2b(FILE *md, const char *dir, const eval *ev, int n)
{
    fputs("\n## Fig. 2b: edge removal\n\n", md);
    bool any = false;
    for (int i = 0; i < n; i++)
        any |= ev[i].nw > 0;
    if (!any) {
        fputs("No evaluation has edge-removal results (eval_bg_gap --edges); figure left out.\n", md);
        return;
    }
    fputs("Accuracy (%) after zeroing a band around the object's outline, half inside and half outside,\n"
          "its width given in pixels of a 224-pixel image (docs/data.md, Edge removal); width 0 is the\n"
          "unmodified accuracy.\n\n",
          md);
    for (int v = 0; v < NV; v++) {
        const char *names[MAX_IN];
        const double *xs[MAX_IN], *ys[MAX_IN];
        int npts[MAX_IN], m = 0;
        static double X[MAX_IN][MAX_W + 1], Y[MAX_IN][MAX_W + 1];
        for (int i = 0; i < n; i++) {
            int k = 0;
            if (isfinite(ev[i].acc[v])) { /* width 0: nothing removed */
                X[m][k] = 0;
                Y[m][k++] = ev[i].acc[v];
            }
            int with = 0;
            for (int w = 0; w < ev[i].nw; w++)
                if (isfinite(ev[i].edge[w][v]) && ev[i].width[w] != 0) {
                    X[m][k] = ev[i].width[w];
                    Y[m][k++] = ev[i].edge[w][v];
                    with++;
                }
            if (with == 0)
                continue;
            names[m] = ev[i].name;
            xs[m] = X[m];
            ys[m] = Y[m];
            npts[m] = k;
            m++;
        }
        if (m == 0)
            continue;
        char path[4096], file[128], title[160];
        snprintf(file, sizeof file, "fig2b_edges_%s.svg", variants[v]);
        snprintf(path, sizeof path, "%s/%s", dir, file);
        snprintf(title, sizeof title, "Edge removal: %s accuracy", variants[v]);
        if (fig_linechart(path, title, "edge band width (pixels of a 224-pixel image)", "accuracy (%)", m, names,
                          npts, xs, ys, 0, 100) < 0)
            fig_failed(path);
        fprintf(md, "### %s\n\n![edge removal, %s](%s)\n\n| model |", variants[v], variants[v], file);
        /* the union of widths, as columns */
        double cols[MAX_W + 1];
        int nc = 0;
        for (int i = 0; i < m; i++)
            for (int k = 0; k < npts[i]; k++) {
                bool seen = false;
                for (int c = 0; c < nc && !seen; c++)
                    seen = cols[c] == xs[i][k];
                if (!seen && nc <= MAX_W)
                    cols[nc++] = xs[i][k];
            }
        qsort(cols, (size_t)nc, sizeof *cols, cmp_d);
        for (int c = 0; c < nc; c++)
            fprintf(md, " %g |", cols[c]);
        fputs("\n|---|", md);
        for (int c = 0; c < nc; c++)
            fputs("---:|", md);
        fputc('\n', md);
        for (int i = 0; i < m; i++) {
            fputs("| ", md);
            md_text(md, names[i]);
            fputs(" |", md);
            for (int c = 0; c < nc; c++) {
                double y = NAN;
                for (int k = 0; k < npts[i]; k++)
                    if (xs[i][k] == cols[c])
                        y = ys[i][k];
                cell(md, y);
            }
            fputc('\n', md);
        }
        fputc('\n', md);
    }
}

static void section_fig6(FILE *md, const char *dir, snr_set *sets, int n)
{
    fputs("\n## Fig. 6: attribution signal-to-noise ratio\n\n", md);
    if (n == 0) {
        fputs("No attribution results given (--snr); figure left out.\n", md);
        return;
    }
    bool several_methods = false;
    for (int i = 1; i < n; i++)
        several_methods |= strcmp(sets[i].method, sets[0].method) != 0;
    static char labels[MAX_IN][300];
    const char *names[MAX_IN];
    const double *vals[MAX_IN];
    int counts[MAX_IN];
    for (int i = 0; i < n; i++) {
        if (several_methods)
            snprintf(labels[i], sizeof labels[i], "%.200s (%.60s)", sets[i].name, sets[i].method);
        else
            snprintf(labels[i], sizeof labels[i], "%.250s", sets[i].name);
        names[i] = labels[i];
        vals[i] = sets[i].v;
        counts[i] = sets[i].n;
    }
    char path[4096], title[200];
    snprintf(path, sizeof path, "%s/fig6_snr.svg", dir);
    snprintf(title, sizeof title, "Attribution SNR (foreground / background)%s%s", several_methods ? "" : ": ",
             several_methods ? "" : sets[0].method);
    if (fig_boxplot(path, title, "SNR", n, names, vals, counts, true, false) < 0)
        fig_failed(path);
    fputs("Per image: mean |attribution| on the object divided by mean |attribution| on the background\n"
          "(higher: the explanation sits on the object). One dot per image.\n\n"
          "![attribution SNR](fig6_snr.svg)\n\n"
          "| model | method | images | mean SNR | median SNR |\n|---|---|---:|---:|---:|\n",
          md);
    for (int i = 0; i < n; i++) {
        double mean, med;
        int fin;
        stats(sets[i].v, sets[i].n, &mean, &med, &fin);
        fputs("| ", md);
        md_text(md, sets[i].name);
        fputs(" | ", md);
        md_text(md, sets[i].method);
        fprintf(md, " | %d |", fin);
        if (isfinite(mean))
            fprintf(md, " %.3f | %.3f |\n", mean, med);
        else
            fputs(" - | - |\n", md);
    }
}

int main(int argc, char **argv)
{
    enum { O_EVAL = 256, O_SNR, O_OUT, O_TITLE };
    static const struct option lo[] = {{"eval", required_argument, 0, O_EVAL}, {"snr", required_argument, 0, O_SNR},
                                       {"out", required_argument, 0, O_OUT},   {"title", required_argument, 0, O_TITLE},
                                       {"help", no_argument, 0, 'h'},          {"version", no_argument, 0, 'V'},
                                       {0, 0, 0, 0}};
    static eval ev[MAX_IN];
    static snr_set sets[MAX_IN];
    static cJSON *snr_roots[MAX_IN];
    const char *snr_files[MAX_IN], *out = NULL, *title = "Backgrounds Challenge report";
    int nev = 0, nsnr = 0;
    opterr = 0;
    for (;;) {
        int c = getopt_long(argc, argv, ":hV", lo, NULL);
        if (c == -1)
            break;
        char *a = optarg;
        switch (c) {
        case O_EVAL: {
            char *eq = strchr(a, '=');
            if (!eq || eq == a || !eq[1])
                bad_usage("--eval: expected NAME=FILE.json, got '%s'", a);
            *eq = '\0';
            int i = 0;
            while (i < nev && strcmp(ev[i].name, a) != 0)
                i++;
            if (i == nev) {
                if (nev == MAX_IN)
                    bad_usage("--eval: at most 64 evaluations%s", "");
                ev[nev++].name = a;
            }
            if (ev[i].nfiles == MAX_FILES)
                bad_usage("--eval: at most 8 files for the name '%s'", a);
            ev[i].files[ev[i].nfiles++] = eq + 1;
            break;
        }
        case O_SNR:
            if (nsnr == MAX_IN)
                bad_usage("--snr: at most 64 files%s", "");
            snr_files[nsnr++] = a;
            break;
        case O_OUT: out = a; break;
        case O_TITLE: title = a; break;
        case 'h': usage(stdout); return 0;
        case 'V': printf(PROG " (libtensor) %s\n", LT_VERSION_STRING); return 0;
        case ':': bad_usage("%s needs a value", argv[optind - 1]); break;
        default: bad_usage("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        bad_usage("unexpected argument '%s'", argv[optind]);
    if (!out)
        bad_usage("--out DIR is required%s", "");
    if (nev == 0 && nsnr == 0)
        bad_usage("nothing to report: give --eval NAME=FILE.json and/or --snr FILE.json%s", "");

    for (int i = 0; i < nev; i++)
        load_eval(&ev[i]);
    int nsets = 0;
    for (int i = 0; i < nsnr; i++)
        nsets = load_snr(snr_files[i], ev, nev, sets, nsets, MAX_IN, &snr_roots[i]);
    if (make_dirs(out) < 0)
        fail("cannot create %s: %s", out, strerror(errno));

    char path[4096];
    snprintf(path, sizeof path, "%s/REPORT.md", out);
    FILE *md = fopen(path, "w");
    if (!md)
        fail("cannot write %s: %s", path, strerror(errno));
    fputs("# ", md);
    md_text(md, title);
    fprintf(md, "\n\nWritten by tools/report (libtensor %s) from %d evaluation%s and %d attribution file%s.\n",
            LT_VERSION_STRING, nev, nev == 1 ? "" : "s", nsnr, nsnr == 1 ? "" : "s");
    if (nev > 0) {
        fputs("\n## Models\n\n| model | checkpoint | arch | input | split | images (original) |\n"
              "|---|---|---|---:|---|---:|\n",
              md);
        for (int i = 0; i < nev; i++) {
            fputs("| ", md);
            md_text(md, ev[i].name);
            fputs(" | ", md);
            md_text(md, ev[i].checkpoint ? ev[i].checkpoint : "?");
            fputs(" | ", md);
            md_text(md, ev[i].arch ? ev[i].arch : "?");
            if (isfinite(ev[i].image_size))
                fprintf(md, " | %g | ", ev[i].image_size);
            else
                fputs(" | ? | ", md);
            md_text(md, ev[i].split ? ev[i].split : "?");
            if (isfinite(ev[i].count[V_ORIG]))
                fprintf(md, " | %g |\n", ev[i].count[V_ORIG]);
            else
                fputs(" | - |\n", md);
        }
        fputs("\n## Table 1: background challenge (accuracy, %)\n\n", md);
        table1(md, ev, nev);
        fputs("\nBG-Gap = mixed_same - mixed_rand (percentage points): how much accuracy depends on the\n"
              "background matching the class. '-': the variant was not evaluated.\n",
              md);
        int t2[] = {V_FG, V_BGT, V_BGB, V_NOFG};
        fputs("\n## Table 2: foreground and background alone (accuracy, %)\n\n", md);
        if (any_of(ev, nev, t2, 4)) {
            table2(md, ev, nev);
            fputs("\nonly_bg_t and only_bg_b: no object in the image, so accuracy above chance is learned from\n"
                  "the background alone; only_fg: the object on black.\n",
                  md);
        } else {
            fputs("No evaluation has only_fg, only_bg_t, only_bg_b or no_fg accuracies.\n", md);
        }
        bool ch = false;
        for (int i = 0; i < nev; i++)
            ch |= ev[i].has_challenge;
        if (ch) {
            fputs("\n## Backgrounds Challenge score\n\n| model | score | backgrounds tried | foregrounds | "
                  "vulnerable |\n|---|---:|---:|---:|---:|\n",
                  md);
            for (int i = 0; i < nev; i++) {
                if (!ev[i].has_challenge)
                    continue;
                fputs("| ", md);
                md_text(md, ev[i].name);
                fputs(" |", md);
                cell(md, ev[i].ch_score);
                fprintf(md, " %g | %g | %g |\n", ev[i].ch_bgs, ev[i].ch_fgs, ev[i].ch_vuln);
            }
            fputs("\nScore: the percentage of foregrounds that no tried only_bg_t background flips (Xiao et al.).\n",
                  md);
        }
        section_fig5(md, out, ev, nev);
        section_fig2b(md, out, ev, nev);
    }
    section_fig6(md, out, sets, nsets);
    int bad = ferror(md);
    if (fclose(md) != 0 || bad)
        fail("cannot write %s: %s", path, strerror(errno));

    if (nev > 0) {
        printf("%-24s %9s %11s %11s %8s %11s\n", "model", "original", "mixed_same", "mixed_rand", "BG-Gap",
               "mixed_next");
        for (int i = 0; i < nev; i++) {
            printf("%-24s", ev[i].name);
            double v[5] = {ev[i].acc[V_ORIG], ev[i].acc[V_SAME], ev[i].acc[V_RAND], ev[i].bg_gap, ev[i].acc[V_NEXT]};
            int w[5] = {9, 11, 11, 8, 11};
            for (int k = 0; k < 5; k++) {
                if (isfinite(v[k]))
                    printf(" %*.1f", w[k], v[k]);
                else
                    printf(" %*s", w[k], "-");
            }
            printf("\n");
        }
    }
    printf("report: %s\n", path);
    for (int i = 0; i < nev; i++)
        for (int f = 0; f < ev[i].nfiles; f++)
            cJSON_Delete(ev[i].roots[f]);
    for (int i = 0; i < nsets; i++)
        free(sets[i].v);
    for (int i = 0; i < nsnr; i++)
        cJSON_Delete(snr_roots[i]);
    return 0;
}
