/*
 * in9.c: dataset listings (ImageNet-9 / Backgrounds Challenge layout and a
 * plain class-folder layout) and the mask reader they pair with. Layouts
 * are described in data.h.
 *
 * Strings and arrays are allocated with lt_data__malloc (size-prefixed, so
 * lt_data_list_free needs no sizes) and therefore through the allocator
 * hook.
 */
#include "data_internal.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* ------------------------------------------------------------------ */
/* Small helpers: strings, vectors, directories                        */
/* ------------------------------------------------------------------ */

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = lt_data__malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

/* a + "/" + b (+ c), or NULL when out of memory. Trailing slashes of a
 * are dropped, so "root/" and "root" give the same paths. */
static char *join3(const char *a, const char *b, const char *c)
{
    size_t na = strlen(a), nb = strlen(b), nc = c ? strlen(c) : 0;
    while (na > 1 && a[na - 1] == '/')
        na--;
    char *d = lt_data__malloc(na + nb + nc + 3);
    if (!d)
        return NULL;
    memcpy(d, a, na);
    d[na] = '/';
    memcpy(d + na + 1, b, nb);
    if (c) {
        d[na + 1 + nb] = '/';
        memcpy(d + na + nb + 2, c, nc + 1);
    } else {
        d[na + 1 + nb] = '\0';
    }
    return d;
}

typedef struct strvec {
    char **v;
    size_t n, cap;
} strvec;

static void sv_free(strvec *s)
{
    for (size_t i = 0; i < s->n; i++)
        lt_data__mfree(s->v[i]);
    lt_data__mfree(s->v);
    memset(s, 0, sizeof *s);
}

/* Takes ownership of str (freed on failure). */
static int sv_push(strvec *s, char *str)
{
    if (!str)
        return -1;
    if (s->n == s->cap) {
        size_t ncap = s->cap ? 2 * s->cap : 16;
        char **nv = lt_data__realloc(s->v, ncap * sizeof *nv);
        if (!nv) {
            lt_data__mfree(str);
            return -1;
        }
        s->v = nv;
        s->cap = ncap;
    }
    s->v[s->n++] = str;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted names in dir, without "." entries and hidden files. */
static int list_dir(const char *op, const char *dir, strvec *out)
{
    memset(out, 0, sizeof *out);
    DIR *d = opendir(dir);
    if (!d) {
        lt_set_error("%s: %s: %s", op, dir, strerror(errno));
        return -1;
    }
    struct dirent *e;
    errno = 0;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (sv_push(out, xstrdup(e->d_name)) < 0) {
            closedir(d);
            sv_free(out);
            lt_set_error("%s: %s: out of memory listing the folder", op, dir);
            return -1;
        }
    }
    int err = errno;
    closedir(d);
    if (err) {
        sv_free(out);
        lt_set_error("%s: %s: %s", op, dir, strerror(err));
        return -1;
    }
    if (out->n > 1)
        qsort(out->v, out->n, sizeof *out->v, cmp_str);
    return 0;
}

/* stat follows symlinks: datasets are often linked into place. */
static bool is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static bool is_image_name(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (!dot || dot == name)
        return false;
    return strcasecmp(dot, ".jpg") == 0 || strcasecmp(dot, ".jpeg") == 0 ||
           strcasecmp(dot, ".png") == 0 || strcasecmp(dot, ".bmp") == 0;
}

/* ------------------------------------------------------------------ */
/* Listings                                                            */
/* ------------------------------------------------------------------ */

void lt_data_list_free(lt_data_list *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++) {
        lt_data__mfree((void *)l->samples[i].path);
        lt_data__mfree((void *)l->samples[i].mask_path);
    }
    for (int i = 0; i < l->nclasses; i++)
        lt_data__mfree((void *)l->classes[i]);
    lt_data__mfree(l->samples);
    lt_data__mfree(l->classes);
    lt_data__mfree(l);
}

/* Takes ownership of path and mask (freed on failure). */
static int list_add(lt_data_list *l, size_t *cap, char *path, char *mask, int64_t label)
{
    if (l->n == *cap) {
        size_t ncap = *cap ? 2 * *cap : 64;
        lt_data_sample *ns = lt_data__realloc(l->samples, ncap * sizeof *ns);
        if (!ns) {
            lt_data__mfree(path);
            lt_data__mfree(mask);
            return -1;
        }
        l->samples = ns;
        *cap = ncap;
    }
    l->samples[l->n++] = (lt_data_sample){.path = path, .mask_path = mask, .label = label};
    return 0;
}

/* Finds the mask of image file `name` in class `cls`; *out is NULL when
 * there is none. Returns -1 only when out of memory. */
typedef int (*mask_finder)(const void *ctx, const char *cls, const char *name, char **out);

/* The stem that names the mask: the file name without its extension, or
 * for a mixed image fg_<stem>_bg_<stem2>.<ext>, the foreground stem. */
static char *mask_stem(const char *name)
{
    const char *dot = strrchr(name, '.');
    size_t n = dot ? (size_t)(dot - name) : strlen(name);
    const char *start = name;
    if (n > 3 && strncmp(name, "fg_", 3) == 0) {
        const char *bg = strstr(name + 3, "_bg_");
        if (bg && bg < name + n && bg > name + 3) {
            start = name + 3;
            n = (size_t)(bg - start);
        }
    }
    char *s = lt_data__malloc(n + 1);
    if (s) {
        memcpy(s, start, n);
        s[n] = '\0';
    }
    return s;
}

/* Candidate mask paths dir/cls/stem<ext> for each ext, first existing wins. */
static int find_mask(const char *dir, const char *cls, const char *name,
                     const char *const *exts, char **out)
{
    *out = NULL;
    char *stem = mask_stem(name);
    if (!stem)
        return -1;
    for (int k = 0; exts[k]; k++) {
        size_t n = strlen(stem) + strlen(exts[k]) + 1;
        char *file = lt_data__malloc(n);
        if (!file) {
            lt_data__mfree(stem);
            return -1;
        }
        snprintf(file, n, "%s%s", stem, exts[k]);
        char *p = join3(dir, cls, file);
        lt_data__mfree(file);
        if (!p) {
            lt_data__mfree(stem);
            return -1;
        }
        if (is_file(p)) {
            *out = p;
            break;
        }
        lt_data__mfree(p);
    }
    lt_data__mfree(stem);
    return 0;
}

/* Walk base/<class>/<file> into a listing; masks are looked up in
 * mask_dir/<class>/ with the given extensions. */
static lt_data_list *walk(const char *op, const char *base, const char *mask_dir,
                          const char *const *mask_exts, lt_data_mask_mode mode)
{
    if ((unsigned)mode > LT_DATA_MASKS_NONE) {
        lt_set_error("%s: %s: unknown mask mode %d", op, base, (int)mode);
        return NULL;
    }
    if (!is_dir(base)) {
        lt_set_error("%s: %s: %s", op, base,
                     is_file(base) ? "not a folder" : "no such folder");
        return NULL;
    }
    strvec classes;
    if (list_dir(op, base, &classes) < 0)
        return NULL;
    lt_data_list *l = lt_data__malloc(sizeof *l);
    size_t cap = 0;
    strvec files = {0};
    char *cdir = NULL;
    if (!l)
        goto oom;
    l->classes = lt_data__malloc((classes.n ? classes.n : 1) * sizeof *l->classes);
    if (!l->classes)
        goto oom;
    if (classes.n == 0) {
        lt_set_error("%s: %s: no class folders", op, base);
        goto fail;
    }
    if (classes.n > INT32_MAX) {
        lt_set_error("%s: %s: too many class folders", op, base);
        goto fail;
    }
    for (size_t c = 0; c < classes.n; c++) {
        cdir = join3(base, classes.v[c], NULL);
        if (!cdir)
            goto oom;
        if (!is_dir(cdir)) {
            lt_set_error("%s: %s: not a class folder (want only folders in %s)", op, cdir, base);
            goto fail;
        }
        l->classes[l->nclasses] = xstrdup(classes.v[c]);
        if (!l->classes[l->nclasses])
            goto oom;
        l->nclasses++;
        if (list_dir(op, cdir, &files) < 0)
            goto fail;
        if (files.n == 0) {
            lt_set_error("%s: %s: empty class folder", op, cdir);
            goto fail;
        }
        for (size_t f = 0; f < files.n; f++) {
            char *path = join3(cdir, files.v[f], NULL);
            if (!path)
                goto oom;
            if (!is_file(path) || !is_image_name(files.v[f])) {
                lt_set_error("%s: %s: not an image file (want .jpg, .jpeg, .png or .bmp)", op,
                             path);
                lt_data__mfree(path);
                goto fail;
            }
            char *mask = NULL;
            if (mode != LT_DATA_MASKS_NONE) {
                if (find_mask(mask_dir, classes.v[c], files.v[f], mask_exts, &mask) < 0) {
                    lt_data__mfree(path);
                    goto oom;
                }
                if (!mask && mode == LT_DATA_MASKS_REQUIRED) {
                    char *stem = mask_stem(files.v[f]);
                    lt_set_error("%s: %s: missing mask %s/%s/%s%s", op, path, mask_dir,
                                 classes.v[c], stem ? stem : "?", mask_exts[0]);
                    lt_data__mfree(stem);
                    lt_data__mfree(path);
                    goto fail;
                }
            }
            if (list_add(l, &cap, path, mask, (int64_t)c) < 0)
                goto oom;
        }
        sv_free(&files);
        lt_data__mfree(cdir);
        cdir = NULL;
    }
    sv_free(&classes);
    return l;
oom:
    lt_set_error("%s: %s: out of memory", op, base);
fail:
    sv_free(&files);
    sv_free(&classes);
    lt_data__mfree(cdir);
    lt_data_list_free(l);
    return NULL;
}

lt_data_list *lt_data_in9_list(const char *root, const char *variant, const char *split,
                               lt_data_mask_mode masks)
{
    static const char *const exts[] = {".npy", NULL};
    if (!root || !variant || !split) {
        lt_set_error("in9_list: NULL root, variant or split");
        return NULL;
    }
    char *base = join3(root, variant, split);
    char *mdir = join3(root, "fg_mask", split);
    lt_data_list *l = NULL;
    if (!base || !mdir)
        lt_set_error("in9_list: %s: out of memory", root);
    else
        l = walk("in9_list", base, mdir, exts, masks);
    lt_data__mfree(base);
    lt_data__mfree(mdir);
    return l;
}

lt_data_list *lt_data_folder_list(const char *root, lt_data_mask_mode masks)
{
    static const char *const exts[] = {".npy", ".png", NULL};
    if (!root) {
        lt_set_error("folder_list: NULL root");
        return NULL;
    }
    /* <root>_masks, from root without trailing slashes */
    size_t n = strlen(root);
    while (n > 1 && root[n - 1] == '/')
        n--;
    char *mdir = lt_data__malloc(n + 7);
    if (!mdir) {
        lt_set_error("folder_list: %s: out of memory", root);
        return NULL;
    }
    memcpy(mdir, root, n);
    memcpy(mdir + n, "_masks", 7);
    lt_data_list *l = walk("folder_list", root, mdir, exts, masks);
    lt_data__mfree(mdir);
    return l;
}

/* ------------------------------------------------------------------ */
/* Masks                                                               */
/* ------------------------------------------------------------------ */

lt_tensor *lt_data_mask_read(const char *path)
{
    lt_data__buf b;
    if (lt_data__read_file("mask_read", path, &b) < 0)
        return NULL;
    lt_tensor *out = NULL;
    size_t mark = lt_frame_push();
    bool npy = b.len >= 6 && memcmp(b.buf, "\x93NUMPY", 6) == 0;
    lt_tensor *t = npy ? lt_data_npy_decode(b.buf, b.len, path)
                       : lt_data_image_decode(b.buf, b.len, 1, path);
    if (!t)
        goto done; /* the decoder's message names the file */
    int nd = lt_ndim(t);
    const int64_t *sh = lt_shape(t);
    if (!(nd == 2 || (nd == 3 && sh[0] == 1))) {
        char s[128];
        lt_set_error("mask_read: %s: mask shape %s: want (H,W) or (1,H,W)", path,
                     lt_shape_str(t, s, sizeof s));
        goto done;
    }
    int64_t h = sh[nd - 2], w = sh[nd - 1];
    lt_tensor *m = lt_empty(3, (int64_t[]){1, h, w}, LT_U8);
    if (!m)
        goto done;
    uint8_t *d = lt_data(m);
    const void *s = lt_data(t); /* decoders return contiguous tensors */
    int64_t n = h * w;
    for (int64_t i = 0; i < n; i++) {
        switch (lt_dtype_of(t)) {
        case LT_U8: d[i] = npy ? ((const uint8_t *)s)[i] != 0 : ((const uint8_t *)s)[i] >= 128; break;
        case LT_I64: d[i] = ((const int64_t *)s)[i] != 0; break;
        case LT_F32: d[i] = ((const float *)s)[i] != 0; break;
        case LT_F64: d[i] = ((const double *)s)[i] != 0; break;
        }
    }
    out = lt_retain(m);
done:
    lt_frame_pop(mark);
    lt_data__buf_free(&b);
    return out ? lt_autorelease(out) : NULL;
}
