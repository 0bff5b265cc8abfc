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

#include <string.h>

/* ------------------------------------------------------------------ */
/* Listings                                                            */
/* ------------------------------------------------------------------ */

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
        char *p = lt_data__join(dir, cls, file);
        lt_data__mfree(file);
        if (!p) {
            lt_data__mfree(stem);
            return -1;
        }
        if (lt_data__is_file(p)) {
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
    if (!lt_data__is_dir(base)) {
        lt_set_error("%s: %s: %s", op, base,
                     lt_data__is_file(base) ? "not a folder" : "no such folder");
        return NULL;
    }
    lt_data__strvec classes;
    if (lt_data__list_dir(op, base, &classes) < 0)
        return NULL;
    lt_data_list *l = lt_data__malloc(sizeof *l);
    size_t cap = 0;
    lt_data__strvec files = {0};
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
        cdir = lt_data__join(base, classes.v[c], NULL);
        if (!cdir)
            goto oom;
        if (!lt_data__is_dir(cdir)) {
            lt_set_error("%s: %s: not a class folder (want only folders in %s)", op, cdir, base);
            goto fail;
        }
        l->classes[l->nclasses] = lt_data__strdup(classes.v[c]);
        if (!l->classes[l->nclasses])
            goto oom;
        l->nclasses++;
        if (lt_data__list_dir(op, cdir, &files) < 0)
            goto fail;
        if (files.n == 0) {
            lt_set_error("%s: %s: empty class folder", op, cdir);
            goto fail;
        }
        for (size_t f = 0; f < files.n; f++) {
            char *path = lt_data__join(cdir, files.v[f], NULL);
            if (!path)
                goto oom;
            if (!lt_data__is_file(path) || !lt_data__is_image_name(files.v[f])) {
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
            if (lt_data__list_add(l, &cap, path, mask, (int64_t)c) < 0)
                goto oom;
        }
        lt_data__sv_free(&files);
        lt_data__mfree(cdir);
        cdir = NULL;
    }
    lt_data__sv_free(&classes);
    return l;
oom:
    lt_set_error("%s: %s: out of memory", op, base);
fail:
    lt_data__sv_free(&files);
    lt_data__sv_free(&classes);
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
    char *base = lt_data__join(root, variant, split);
    char *mdir = lt_data__join(root, "fg_mask", split);
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
