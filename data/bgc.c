/*
 * bgc.c: the bundled backgrounds benchmark, a Backgrounds Challenge
 * (Xiao, Engstrom, Ilyas, Madry, "Noise or Signal: The Role of Image
 * Backgrounds in Object Recognition", ICLR 2021) built from Fashion-MNIST
 * foregrounds over procedural, class-correlated backgrounds. What it
 * writes is described in data.h; this file is the how.
 *
 * PLAN, THEN RENDER. A sequential plan decides everything random for
 * every image (which Fashion-MNIST item, texture family and jitter, size,
 * position, the backgrounds the mixed variants borrow), each from a
 * generator keyed by (seed, what, split, index). Rendering is then a pure
 * function of the plan, spread over threads by an atomic task counter, so
 * the output is byte-identical for any thread count.
 */
#include "data_internal.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#define OP "bg_challenge"
#define NCLS 10
#define FM 28 /* Fashion-MNIST side */

#define TAG_PICK 0x5049434bull  /* "PICK" */
#define TAG_ITEM 0x4954454dull  /* "ITEM" */
#define TAG_MIX 0x4d4958ull     /* "MIX" */
#define TAG_NOISE 0x4e4f4953ull /* "NOIS" */

/* Folder names (IN-9 style NN_name) and Fashion-MNIST's own class names. */
static const char *const class_dirs[NCLS] = {
    "00_tshirt", "01_trouser", "02_pullover", "03_dress", "04_coat",
    "05_sandal", "06_shirt",   "07_sneaker",  "08_bag",   "09_ankle_boot"};
static const char *const class_names[NCLS] = {
    "T-shirt/top", "Trouser", "Pullover", "Dress",   "Coat",
    "Sandal",      "Shirt",   "Sneaker",  "Bag",     "Ankle boot"};

/* ------------------------------------------------------------------ */
/* Texture families                                                    */
/* ------------------------------------------------------------------ */

enum { STRIPES, CHECKER, DOTS, WAVES, RINGS, NPATTERNS };
static const char *const pattern_names[NPATTERNS] = {"stripes", "checker", "dots", "waves",
                                                     "rings"};

/* Family k is class k's background. Any two differ in at least two of
 * pattern, orientation, frequency (cycles per image side) and palette. */
static const struct family {
    int pattern;
    float angle;   /* degrees */
    float freq;
    uint8_t pal[2][3];
} families[NCLS] = {
    {STRIPES, 0, 5, {{200, 60, 50}, {240, 220, 180}}},
    {STRIPES, 60, 9, {{40, 80, 190}, {210, 225, 245}}},
    {CHECKER, 0, 4, {{40, 140, 60}, {200, 230, 170}}},
    {CHECKER, 45, 7, {{230, 160, 30}, {90, 50, 20}}},
    {DOTS, 0, 6, {{130, 60, 170}, {235, 210, 240}}},
    {DOTS, 30, 10, {{20, 150, 150}, {10, 40, 60}}},
    {WAVES, 90, 5, {{220, 200, 40}, {60, 90, 30}}},
    {WAVES, 150, 8, {{230, 110, 160}, {250, 240, 245}}},
    {RINGS, 0, 6, {{120, 120, 130}, {30, 30, 40}}},
    {RINGS, 90, 11, {{170, 90, 40}, {230, 190, 120}}},
};

/* ------------------------------------------------------------------ */
/* The plan                                                            */
/* ------------------------------------------------------------------ */

typedef struct item {
    int cls;
    int32_t fm;          /* index in its Fashion-MNIST split */
    int family;
    float angle, freq;   /* jittered: radians, cycles per side */
    float phase_u, phase_v, cx, cy;
    int pal[2][3];
    uint64_t noise;      /* seed of the per-pixel grain */
    int fs, fx, fy;      /* item side and top-left corner, pixels */
    int32_t bg[3];       /* val: items lending backgrounds to mixed_same/rand/next */
    char stem[16];
} item;

typedef struct split_plan {
    const char *name;    /* "train" or "val" */
    const char *fm_name; /* "train" or "test" */
    item *items;
    int n, per_class;
    const uint8_t *px;   /* Fashion-MNIST images of that split, (N,28,28) */
    int64_t fm_count;
} split_plan;

static double uni(lt_rng *r, double lo, double hi) { return lo + (hi - lo) * lt_rng_uniform(r); }

/* Uniform integer in [0, n). */
static int64_t below(lt_rng *r, int64_t n)
{
    int64_t v = (int64_t)(lt_rng_uniform(r) * (double)n);
    return v >= n ? n - 1 : v;
}

static int clamp255(double v) { return v < 0 ? 0 : v > 255 ? 255 : (int)lrint(v); }

/* Choose the items of one split and their looks. labels: (N,) u8. */
static int plan_split(split_plan *sp, const lt_data_bgc_opts *o, uint64_t split_tag,
                      const uint8_t *labels, int64_t n_fm)
{
    sp->n = sp->per_class * NCLS;
    sp->items = lt_data__malloc((size_t)sp->n * sizeof *sp->items);
    int32_t *pool = lt_data__malloc((size_t)n_fm * sizeof *pool);
    if (!sp->items || !pool) {
        lt_data__mfree(pool);
        lt_set_error(OP ": out of memory planning %d images", sp->n);
        return -1;
    }
    for (int c = 0; c < NCLS; c++) {
        int64_t m = 0;
        for (int64_t i = 0; i < n_fm; i++)
            if (labels[i] == c)
                pool[m++] = (int32_t)i;
        if (m < sp->per_class) {
            lt_set_error(OP ": Fashion-MNIST %s has %lld items of class %d (%s), fewer than the "
                         "%d per class asked for", sp->fm_name, (long long)m, c, class_names[c],
                         sp->per_class);
            lt_data__mfree(pool);
            return -1;
        }
        /* the first per_class of a seeded Fisher-Yates shuffle */
        lt_rng r = lt_rng_new(lt_data__derive(o->seed, TAG_PICK, split_tag, (uint64_t)c));
        for (int k = 0; k < sp->per_class; k++) {
            int64_t j = k + below(&r, m - k);
            int32_t t = pool[k];
            pool[k] = pool[j];
            pool[j] = t;
            item *it = &sp->items[c * sp->per_class + k];
            it->cls = c;
            it->fm = pool[k];
        }
    }
    lt_data__mfree(pool);
    for (int i = 0; i < sp->n; i++) {
        item *it = &sp->items[i];
        lt_rng r = lt_rng_new(lt_data__derive(o->seed, TAG_ITEM, split_tag, (uint64_t)i));
        bool matched = lt_rng_uniform(&r) < o->bg_correlation;
        int64_t fam = below(&r, NCLS); /* drawn either way: one stream layout */
        it->family = matched ? it->cls : (int)fam;
        const struct family *f = &families[it->family];
        it->angle = (float)((f->angle + uni(&r, -12, 12)) * M_PI / 180.0);
        it->freq = (float)(f->freq * uni(&r, 0.85, 1.15));
        it->phase_u = (float)lt_rng_uniform(&r);
        it->phase_v = (float)lt_rng_uniform(&r);
        it->cx = (float)uni(&r, -0.3, 0.3);
        it->cy = (float)uni(&r, -0.3, 0.3);
        for (int k = 0; k < 2; k++)
            for (int ch = 0; ch < 3; ch++)
                it->pal[k][ch] = clamp255(f->pal[k][ch] + uni(&r, -18, 18));
        it->noise = lt_rng_u64(&r);
        double frac = uni(&r, o->fg_min, o->fg_max);
        it->fs = (int)lrint(frac * o->size);
        if (it->fs < 4)
            it->fs = 4;
        if (it->fs > o->size)
            it->fs = o->size;
        it->fx = (int)below(&r, o->size - it->fs + 1);
        it->fy = (int)below(&r, o->size - it->fs + 1);
        snprintf(it->stem, sizeof it->stem, "%s_%05d", sp->fm_name, (int)it->fm);
        it->bg[0] = it->bg[1] = it->bg[2] = i;
    }
    return 0;
}

/* The val images whose clean backgrounds the mixed variants borrow:
 * another image of the same class, any other image, and an image of
 * class (y + 1) mod 10. */
static void plan_mixed(split_plan *sp, const lt_data_bgc_opts *o)
{
    int pc = sp->per_class;
    for (int i = 0; i < sp->n; i++) {
        item *it = &sp->items[i];
        lt_rng r = lt_rng_new(lt_data__derive(o->seed, TAG_MIX, 0, (uint64_t)i));
        int k = i % pc;
        int same = pc > 1 ? (int)((k + 1 + below(&r, pc - 1)) % pc) : k;
        it->bg[0] = it->cls * pc + same;
        int any = sp->n > 1 ? (int)((i + 1 + below(&r, sp->n - 1)) % sp->n) : i;
        it->bg[1] = any;
        it->bg[2] = ((it->cls + 1) % NCLS) * pc + (int)below(&r, pc);
    }
}

/* ------------------------------------------------------------------ */
/* Rendering                                                           */
/* ------------------------------------------------------------------ */

/* A sine turned into a soft-edged square wave in [0,1]. */
static double sharpen(double s)
{
    double t = 0.5 + 1.5 * s;
    return t < 0 ? 0 : t > 1 ? 1 : t;
}

/* The clean background of it: planar RGB, 3 * size * size bytes. */
static void render_bg(const item *it, int size, uint8_t *rgb)
{
    const int pattern = families[it->family].pattern;
    const double ca = cos(it->angle), sa = sin(it->angle), f = it->freq;
    const size_t plane = (size_t)size * (size_t)size;
    for (int y = 0; y < size; y++)
        for (int x = 0; x < size; x++) {
            double X = (x + 0.5) / size - 0.5, Y = (y + 0.5) / size - 0.5;
            double u = X * ca + Y * sa, v = -X * sa + Y * ca, t;
            switch (pattern) {
            case STRIPES:
                t = sharpen(sin(2 * M_PI * (f * u + it->phase_u)));
                break;
            case CHECKER:
                t = sharpen(2.0 * sin(2 * M_PI * (f * u + it->phase_u)) *
                            sin(2 * M_PI * (f * v + it->phase_v)));
                break;
            case DOTS: {
                double a = f * u + it->phase_u, b = f * v + it->phase_v;
                double da = a - floor(a) - 0.5, db = b - floor(b) - 0.5;
                double rr = sqrt(da * da + db * db);
                t = (0.3 - rr) * 12 + 0.5;
                t = t < 0 ? 0 : t > 1 ? 1 : t;
                break;
            }
            case WAVES:
                t = sharpen(sin(2 * M_PI * (f * u + 0.35 * sin(2 * M_PI * (0.5 * f * v + it->phase_v)) +
                                            it->phase_u)));
                break;
            default: { /* RINGS: ellipses, the long axis along the orientation */
                double du = u - it->cx, dv = (v - it->cy) * 1.6;
                t = sharpen(sin(2 * M_PI * (f * sqrt(du * du + dv * dv) + it->phase_u)));
                break;
            }
            }
            /* a little grain, so no two pixels of a flat area are equal */
            uint64_t h = lt_data__mix64(it->noise + (uint64_t)(y * size + x));
            double grain = (double)(h & 0xff) / 255.0 * 12.0 - 6.0;
            for (int ch = 0; ch < 3; ch++) {
                double c = it->pal[0][ch] * (1 - t) + it->pal[1][ch] * t + grain;
                rgb[(size_t)ch * plane + (size_t)(y * size + x)] = (uint8_t)clamp255(c);
            }
        }
}

/* The item's mask at 28 x 28: pixels not reachable from the border
 * through dark pixels (<= 10), 4-connected. So a garment's dark inside
 * stays object, and the mask is the item's own silhouette. */
static void item_mask28(const uint8_t *px, uint8_t *mask)
{
    enum { DARK = 10 };
    int stack[FM * FM], top = 0;
    memset(mask, 1, FM * FM);
    for (int i = 0; i < FM; i++) {
        int border[4] = {i, (FM - 1) * FM + i, i * FM, i * FM + FM - 1};
        for (int k = 0; k < 4; k++)
            if (px[border[k]] <= DARK && mask[border[k]]) {
                mask[border[k]] = 0;
                stack[top++] = border[k];
            }
    }
    while (top > 0) {
        int p = stack[--top], y = p / FM, x = p % FM;
        int nb[4] = {y > 0 ? p - FM : -1, y < FM - 1 ? p + FM : -1, x > 0 ? p - 1 : -1,
                     x < FM - 1 ? p + 1 : -1};
        for (int k = 0; k < 4; k++)
            if (nb[k] >= 0 && mask[nb[k]] && px[nb[k]] <= DARK) {
                mask[nb[k]] = 0;
                stack[top++] = nb[k];
            }
    }
}

/* The item scaled to it->fs and placed: gray and mask (0/1), size*size
 * each, zero outside the item. Scaling is lt_data_resize's bilinear
 * filter; the mask is scaled as 0/1 floats and thresholded at 0.5. */
static int render_fg(const item *it, const uint8_t *px28, int size, uint8_t *gray, uint8_t *mask)
{
    uint8_t m28[FM * FM];
    float mf[FM * FM];
    item_mask28(px28, m28);
    for (int i = 0; i < FM * FM; i++)
        mf[i] = m28[i];
    size_t mark = lt_frame_push();
    lt_tensor *g = lt_from_data(px28, 3, (int64_t[]){1, FM, FM}, LT_U8);
    lt_tensor *m = lt_from_data(mf, 3, (int64_t[]){1, FM, FM}, LT_F32);
    int rc = -1;
    if (g && m && lt_data_resize(&g, NULL, it->fs, it->fs) == 0 &&
        lt_data_resize(&m, NULL, it->fs, it->fs) == 0) {
        const uint8_t *gs = lt_data(g);
        const float *ms = lt_data(m);
        memset(gray, 0, (size_t)size * (size_t)size);
        memset(mask, 0, (size_t)size * (size_t)size);
        for (int y = 0; y < it->fs; y++)
            for (int x = 0; x < it->fs; x++) {
                size_t d = (size_t)(it->fy + y) * (size_t)size + (size_t)(it->fx + x);
                gray[d] = gs[y * it->fs + x];
                mask[d] = ms[y * it->fs + x] >= 0.5f;
            }
        rc = 0;
    }
    lt_frame_pop(mark);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Writing                                                             */
/* ------------------------------------------------------------------ */

typedef struct gen {
    const lt_data_bgc_opts *o;
    split_plan sp[2]; /* train, val */
    const char *ext;
    _Atomic int64_t next_task, done;
    int64_t ntasks, total_files;
    pthread_mutex_t mu;
    atomic_bool failed;
    char err[1024];
} gen;

/* Write planar RGB (3,size,size) as <out>/<variant>/<split>/<cls>/<name><ext>. */
static int write_rgb(gen *g, const char *variant, const char *split, int cls, const char *name,
                     const uint8_t *rgb)
{
    int size = g->o->size;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s/%s/%s/%s%s", g->o->out, variant, split, class_dirs[cls],
             name, g->ext);
    size_t mark = lt_frame_push();
    lt_tensor *t = lt_from_data(rgb, 3, (int64_t[]){3, size, size}, LT_U8);
    int rc = g->o->format == LT_DATA_BGC_JPEG ? lt_data_jpeg_write(path, t, g->o->jpeg_quality)
                                              : lt_data_png_write(path, t);
    lt_frame_pop(mark);
    return rc;
}

static int write_mask(gen *g, const char *split, int cls, const char *stem, const uint8_t *mask)
{
    int size = g->o->size;
    char path[4096];
    snprintf(path, sizeof path, "%s/fg_mask/%s/%s/%s.npy", g->o->out, split, class_dirs[cls],
             stem);
    size_t mark = lt_frame_push();
    lt_tensor *t = lt_from_data(mask, 2, (int64_t[]){size, size}, LT_U8);
    int rc = lt_data_npy_write(path, t);
    lt_frame_pop(mark);
    return rc;
}

/* out = fg where mask, else bg (bg NULL: black). */
static void compose(const uint8_t *gray, const uint8_t *mask, const uint8_t *bg, size_t plane,
                    uint8_t *out)
{
    for (int ch = 0; ch < 3; ch++)
        for (size_t p = 0; p < plane; p++)
            out[ch * plane + p] = mask[p] ? gray[p] : bg ? bg[ch * plane + p] : 0;
}

static void progress(gen *g, int64_t files)
{
    int64_t d = atomic_fetch_add(&g->done, files) + files;
    if (g->o->progress) {
        pthread_mutex_lock(&g->mu);
        g->o->progress(g->o->progress_ud, d, g->total_files);
        pthread_mutex_unlock(&g->mu);
    }
}

/* Task t: train image t, or val image t - ntrain with all its variants. */
static int run_task(gen *g, int64_t t, uint8_t *buf)
{
    const lt_data_bgc_opts *o = g->o;
    size_t plane = (size_t)o->size * (size_t)o->size;
    uint8_t *gray = buf, *mask = gray + plane, *bg = mask + plane, *bg2 = bg + 3 * plane;
    uint8_t *img = bg2 + 3 * plane;
    bool val = t >= g->sp[0].n;
    split_plan *sp = &g->sp[val];
    const item *it = &sp->items[val ? t - g->sp[0].n : t];
    if (render_fg(it, sp->px + (size_t)it->fm * FM * FM, o->size, gray, mask) < 0)
        return -1;
    render_bg(it, o->size, bg);
    compose(gray, mask, bg, plane, img);
    if (write_rgb(g, "original", sp->name, it->cls, it->stem, img) < 0 ||
        write_mask(g, sp->name, it->cls, it->stem, mask) < 0)
        return -1;
    if (!val) {
        progress(g, 2);
        return 0;
    }
    /* only_fg */
    compose(gray, mask, NULL, plane, img);
    if (write_rgb(g, "only_fg", "val", it->cls, it->stem, img) < 0)
        return -1;
    /* no_fg: the mask region black */
    for (int ch = 0; ch < 3; ch++)
        for (size_t p = 0; p < plane; p++)
            img[ch * plane + p] = mask[p] ? 0 : bg[ch * plane + p];
    if (write_rgb(g, "no_fg", "val", it->cls, it->stem, img) < 0)
        return -1;
    /* only_bg_b: the mask's bounding box black */
    int x0 = o->size, y0 = o->size, x1 = -1, y1 = -1;
    for (int y = 0; y < o->size; y++)
        for (int x = 0; x < o->size; x++)
            if (mask[(size_t)y * (size_t)o->size + (size_t)x]) {
                x0 = x < x0 ? x : x0;
                x1 = x > x1 ? x : x1;
                y0 = y < y0 ? y : y0;
                y1 = y > y1 ? y : y1;
            }
    for (int ch = 0; ch < 3; ch++)
        for (int y = 0; y < o->size; y++)
            for (int x = 0; x < o->size; x++) {
                size_t p = (size_t)y * (size_t)o->size + (size_t)x;
                bool in = x >= x0 && x <= x1 && y >= y0 && y <= y1;
                img[ch * plane + p] = in ? 0 : bg[ch * plane + p];
            }
    if (write_rgb(g, "only_bg_b", "val", it->cls, it->stem, img) < 0)
        return -1;
    /* only_bg_t: the clean background */
    if (write_rgb(g, "only_bg_t", "val", it->cls, it->stem, bg) < 0)
        return -1;
    static const char *const mixed[3] = {"mixed_same", "mixed_rand", "mixed_next"};
    for (int k = 0; k < 3; k++) {
        const item *other = &sp->items[it->bg[k]];
        render_bg(other, o->size, bg2);
        compose(gray, mask, bg2, plane, img);
        char name[64];
        snprintf(name, sizeof name, "fg_%s_bg_%s", it->stem, other->stem);
        if (write_rgb(g, mixed[k], "val", it->cls, name, img) < 0)
            return -1;
    }
    progress(g, 9);
    return 0;
}

static void *worker(void *arg)
{
    gen *g = arg;
    size_t plane = (size_t)g->o->size * (size_t)g->o->size;
    size_t bytes = plane * 11;
    uint8_t *buf = lt_alloc(bytes);
    if (!buf) {
        pthread_mutex_lock(&g->mu);
        if (!atomic_exchange(&g->failed, true))
            snprintf(g->err, sizeof g->err, OP ": out of memory");
        pthread_mutex_unlock(&g->mu);
        return NULL;
    }
    for (;;) {
        if (atomic_load(&g->failed))
            break;
        int64_t t = atomic_fetch_add(&g->next_task, 1);
        if (t >= g->ntasks)
            break;
        if (run_task(g, t, buf) < 0) {
            pthread_mutex_lock(&g->mu);
            if (!atomic_exchange(&g->failed, true))
                snprintf(g->err, sizeof g->err, "%s", lt_last_error());
            pthread_mutex_unlock(&g->mu);
            break;
        }
    }
    lt_free(buf, bytes);
    lt_frame_pop(0);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Inputs, folders, meta.json                                          */
/* ------------------------------------------------------------------ */

/* <dir>/<prefix>-<kind>-ubyte.gz, or the unpacked name. */
static lt_tensor *read_fm(const char *dir, const char *prefix, const char *kind)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s-%s-ubyte.gz", dir, prefix, kind);
    if (!lt_data__is_file(path))
        snprintf(path, sizeof path, "%s/%s-%s-ubyte", dir, prefix, kind);
    if (!lt_data__is_file(path)) {
        lt_set_error(OP ": %s/%s-%s-ubyte.gz: no such file (install dataset-fashion-mnist, or "
                     "point the source at a folder holding Fashion-MNIST)", dir, prefix, kind);
        return NULL;
    }
    return lt_data_idx_read(path);
}

/* Images (N,28,28) u8 and labels (N,) u8 0..9 of one split. */
static int load_fm(const char *dir, const char *prefix, lt_tensor **images, lt_tensor **labels)
{
    *images = read_fm(dir, prefix, "images-idx3");
    *labels = *images ? read_fm(dir, prefix, "labels-idx1") : NULL;
    if (!*images || !*labels)
        return -1;
    const lt_tensor *im = *images, *lb = *labels;
    if (lt_dtype_of(im) != LT_U8 || lt_ndim(im) != 3 || lt_size(im, 1) != FM ||
        lt_size(im, 2) != FM || lt_dtype_of(lb) != LT_U8 || lt_ndim(lb) != 1 ||
        lt_size(lb, 0) != lt_size(im, 0)) {
        char s1[64], s2[64];
        lt_set_error(OP ": %s/%s: images %s and labels %s: want u8 (N,28,28) and u8 (N,)", dir,
                     prefix, lt_shape_str(im, s1, sizeof s1), lt_shape_str(lb, s2, sizeof s2));
        return -1;
    }
    const uint8_t *l = lt_data(lb);
    for (int64_t i = 0; i < lt_size(lb, 0); i++)
        if (l[i] >= NCLS) {
            lt_set_error(OP ": %s/%s-labels: label %d at %lld: want 0..9", dir, prefix, l[i],
                         (long long)i);
            return -1;
        }
    return 0;
}

static int check_opts(const lt_data_bgc_opts *o)
{
    if (!o || !o->out || !o->out[0]) {
        lt_set_error(OP ": no output folder");
        return -1;
    }
    struct {
        const char *name;
        double v, lo, hi;
    } ranges[] = {
        {"size", o->size, 16, 1024},
        {"train per class", o->train_per_class, 1, 6000},
        {"val per class", o->val_per_class, 1, 1000},
        {"bg correlation", o->bg_correlation, 0, 1},
        {"fg min", o->fg_min, 0.2, 1},
        {"fg max", o->fg_max, 0.2, 1},
        {"threads", o->threads, 1, 256},
        {"jpeg quality", o->jpeg_quality, 1, 100},
    };
    for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++)
        if (!(ranges[i].v >= ranges[i].lo && ranges[i].v <= ranges[i].hi)) {
            lt_set_error(OP ": %s %g outside %g..%g", ranges[i].name, ranges[i].v, ranges[i].lo,
                         ranges[i].hi);
            return -1;
        }
    if (o->fg_min > o->fg_max) {
        lt_set_error(OP ": fg min %g is above fg max %g", o->fg_min, o->fg_max);
        return -1;
    }
    if (o->format != LT_DATA_BGC_PNG && o->format != LT_DATA_BGC_JPEG) {
        lt_set_error(OP ": unknown format %d", (int)o->format);
        return -1;
    }
    return 0;
}

static const char *const variants[] = {"original",   "only_fg",    "no_fg",
                                       "only_bg_b",  "only_bg_t",  "mixed_same",
                                       "mixed_rand", "mixed_next"};
#define NVARIANTS 8

static int make_folders(const lt_data_bgc_opts *o)
{
    if (lt_data__is_dir(o->out) && !o->overwrite) {
        lt_data__strvec names;
        if (lt_data__list_dir(OP, o->out, &names) < 0)
            return -1;
        size_t n = names.n;
        lt_data__sv_free(&names);
        if (n > 0) {
            lt_set_error(OP ": %s: folder is not empty (overwrite to write into it anyway)",
                         o->out);
            return -1;
        }
    }
    char path[4096];
    for (int c = 0; c < NCLS; c++) {
        for (int v = 0; v < NVARIANTS; v++) {
            snprintf(path, sizeof path, "%s/%s/val/%s", o->out, variants[v], class_dirs[c]);
            if (lt_data__mkdirs(OP, path) < 0)
                return -1;
        }
        const char *more[3] = {"original/train", "fg_mask/train", "fg_mask/val"};
        for (int k = 0; k < 3; k++) {
            snprintf(path, sizeof path, "%s/%s/%s", o->out, more[k], class_dirs[c]);
            if (lt_data__mkdirs(OP, path) < 0)
                return -1;
        }
    }
    return 0;
}

/* A uint64 as a JSON number when a double holds it exactly, else a string. */
static cJSON *json_u64(uint64_t v)
{
    if (v <= (1ull << 53))
        return cJSON_CreateNumber((double)v);
    char s[32];
    snprintf(s, sizeof s, "%llu", (unsigned long long)v);
    return cJSON_CreateString(s);
}

static int write_meta(const gen *g, const char *source)
{
    const lt_data_bgc_opts *o = g->o;
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "generator", "make_bg_challenge, libtensor " LT_VERSION_STRING);
    cJSON_AddStringToObject(root, "layout", "ImageNet-9 / Backgrounds Challenge");
    cJSON *p = cJSON_AddObjectToObject(root, "params");
    cJSON_AddNumberToObject(p, "size", o->size);
    cJSON_AddNumberToObject(p, "train_per_class", o->train_per_class);
    cJSON_AddNumberToObject(p, "val_per_class", o->val_per_class);
    cJSON_AddNumberToObject(p, "bg_correlation", o->bg_correlation);
    cJSON_AddNumberToObject(p, "fg_min", o->fg_min);
    cJSON_AddNumberToObject(p, "fg_max", o->fg_max);
    cJSON_AddItemToObject(p, "seed", json_u64(o->seed));
    cJSON_AddStringToObject(p, "format", o->format == LT_DATA_BGC_JPEG ? "jpeg" : "png");
    if (o->format == LT_DATA_BGC_JPEG)
        cJSON_AddNumberToObject(p, "jpeg_quality", o->jpeg_quality);
    cJSON_AddStringToObject(p, "source", source);
    cJSON *cl = cJSON_AddArrayToObject(root, "classes");
    cJSON *cn = cJSON_AddArrayToObject(root, "class_names");
    cJSON *fa = cJSON_AddArrayToObject(root, "bg_families");
    for (int c = 0; c < NCLS; c++) {
        cJSON_AddItemToArray(cl, cJSON_CreateString(class_dirs[c]));
        cJSON_AddItemToArray(cn, cJSON_CreateString(class_names[c]));
        const struct family *f = &families[c];
        cJSON *fj = cJSON_CreateObject();
        cJSON_AddStringToObject(fj, "pattern", pattern_names[f->pattern]);
        cJSON_AddNumberToObject(fj, "orientation_deg", f->angle);
        cJSON_AddNumberToObject(fj, "frequency", f->freq);
        cJSON *pal = cJSON_AddArrayToObject(fj, "palette");
        for (int k = 0; k < 2; k++) {
            int rgb[3] = {f->pal[k][0], f->pal[k][1], f->pal[k][2]};
            cJSON_AddItemToArray(pal, cJSON_CreateIntArray(rgb, 3));
        }
        cJSON_AddItemToArray(fa, fj);
    }
    cJSON *counts = cJSON_AddObjectToObject(root, "counts");
    for (int s = 0; s < 2; s++) {
        const split_plan *sp = &g->sp[s];
        cJSON *cs = cJSON_AddObjectToObject(counts, sp->name);
        int nv = s == 0 ? 1 : NVARIANTS;
        for (int v = 0; v < nv; v++)
            cJSON_AddNumberToObject(cs, variants[v], sp->n);
        cJSON_AddNumberToObject(cs, "fg_mask", sp->n);
        cJSON_AddNumberToObject(cs, "per_class", sp->per_class);
        int matched = 0;
        for (int i = 0; i < sp->n; i++)
            matched += sp->items[i].family == sp->items[i].cls;
        cJSON_AddNumberToObject(cs, "bg_family_is_class", matched);
    }
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) {
        lt_set_error(OP ": out of memory writing meta.json");
        return -1;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/meta.json", o->out);
    bool regular;
    FILE *f = lt_data__create(OP, path, &regular);
    int rc = -1;
    if (f) {
        size_t n = strlen(text);
        bool ok = fwrite(text, 1, n, f) == n && fputc('\n', f) != EOF;
        ok = (fclose(f) == 0) && ok;
        if (ok)
            rc = 0;
        else {
            lt_set_error(OP ": %s: write failed: %s", path, strerror(errno));
            lt_data__discard(path, regular);
        }
    }
    cJSON_free(text);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Public entry points                                                 */
/* ------------------------------------------------------------------ */

void lt_data_bgc_defaults(lt_data_bgc_opts *o)
{
    memset(o, 0, sizeof *o);
    o->size = 64;
    o->train_per_class = 1000;
    o->val_per_class = 100;
    o->bg_correlation = 0.9;
    o->fg_min = 0.5;
    o->fg_max = 0.85;
    o->format = LT_DATA_BGC_PNG;
    o->jpeg_quality = 95;
    o->threads = 1;
}

int lt_data_bgc_generate(const lt_data_bgc_opts *o)
{
    if (check_opts(o) < 0)
        return -1;
    const char *source = o->source ? o->source : LT_DATA_FASHION_MNIST_DIR;
    size_t mark = lt_frame_push();
    gen g;
    memset(&g, 0, sizeof g);
    g.o = o;
    g.ext = o->format == LT_DATA_BGC_JPEG ? ".JPEG" : ".png";
    g.sp[0] = (split_plan){.name = "train", .fm_name = "train", .per_class = o->train_per_class};
    g.sp[1] = (split_plan){.name = "val", .fm_name = "test", .per_class = o->val_per_class};
    const char *prefix[2] = {"train", "t10k"};
    int rc = -1;
    pthread_mutex_init(&g.mu, NULL);
    for (int s = 0; s < 2; s++) {
        lt_tensor *im, *lb;
        if (load_fm(source, prefix[s], &im, &lb) < 0 ||
            plan_split(&g.sp[s], o, (uint64_t)s, lt_data(lb), lt_size(lb, 0)) < 0)
            goto done;
        g.sp[s].px = lt_data(im);
    }
    plan_mixed(&g.sp[1], o);
    if (make_folders(o) < 0)
        goto done;
    g.ntasks = g.sp[0].n + g.sp[1].n;
    g.total_files = 2 * (int64_t)g.sp[0].n + 9 * (int64_t)g.sp[1].n + 1;
    pthread_t th[256];
    int started = 0;
    for (; started < o->threads; started++)
        if (pthread_create(&th[started], NULL, worker, &g) != 0)
            break;
    if (started == 0) {
        lt_set_error(OP ": cannot start a thread");
        goto done;
    }
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    if (atomic_load(&g.failed)) {
        lt_set_error("%s", g.err);
        goto done;
    }
    if (write_meta(&g, source) < 0)
        goto done;
    progress(&g, 1);
    rc = 0;
done:
    for (int s = 0; s < 2; s++)
        lt_data__mfree(g.sp[s].items);
    pthread_mutex_destroy(&g.mu);
    lt_frame_pop(mark);
    return rc;
}
