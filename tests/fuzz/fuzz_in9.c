/*
 * fuzz_in9.c: the ImageNet-9 / Backgrounds Challenge listing and its mask
 * resolution (lt_data_in9_list), and the plain-folder listing
 * (lt_data_folder_list), on folder trees built from the input.
 *
 * The name parsing (fg_<stem>_bg_<stem2>.<ext> -> mask <stem>.npy) is
 * private to data/in9.c, so the target drives it through the public
 * listing: the input is a control byte and a tree (format in fuzz_tree.h),
 * built inside a private temporary folder and removed after each run.
 *
 *   byte0 & 3          variant: original, mixed_rand, mixed_same, only_fg
 *   byte0 & 4          split: train, or val
 *   (byte0 >> 3) % 3   mask mode: REQUIRED, OPTIONAL, NONE
 *
 * lt_data_in9_list(T, variant, split, mode) lists T/<variant>/<split> with
 * masks in T/fg_mask/<split>; lt_data_folder_list(T/f, mode) lists T/f with
 * masks in T/f_masks. On success every rule data.h states is checked
 * against the tree: classes sorted and hidden names skipped, labels in
 * range and samples ordered by label then name, image extensions, each
 * path an existing file, and the mask the first existing candidate
 * <stem><ext>, where the stem of fg_<a>_bg_<b>.<ext> is <a> (non-empty, the
 * first "_bg_" after "fg_" ending it) and otherwise the name without its
 * extension.
 */
#include "fuzz_common.h"
#include "fuzz_tree.h"

#include <libtensor/data.h>

#include <strings.h>

static void fail(const char *op, const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_in9: %s: %s%s%s\n", op, what, detail ? ": " : "", detail ? detail : "");
    abort();
}

static bool is_image_name(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (!dot || dot == name)
        return false;
    static const char *const ext[] = {".jpg", ".jpeg", ".png", ".bmp"};
    for (int i = 0; i < 4; i++)
        if (strcasecmp(dot, ext[i]) == 0)
            return true;
    return false;
}

static bool is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* The stem that names the mask of image file `name` (see the top). */
static void mask_stem(const char *name, char *out, size_t cap)
{
    const char *dot = strrchr(name, '.');
    size_t n = dot ? (size_t)(dot - name) : strlen(name);
    const char *start = name;
    if (strncmp(name, "fg_", 3) == 0) {
        const char *bg = strstr(name + 3, "_bg_");
        if (bg && bg > name + 3 && bg < name + n) {
            start = name + 3;
            n = (size_t)(bg - start);
        }
    }
    snprintf(out, cap, "%.*s", (int)n, start);
}

static void check_list(const char *op, const lt_data_list *l, const char *base,
                       const char *mask_dir, const char *const *exts, lt_data_mask_mode mode)
{
    char buf[4096];
    if (l->nclasses < 1 || l->n < (size_t)l->nclasses)
        fail(op, "no classes, or a class without samples", NULL);
    for (int c = 0; c < l->nclasses; c++) {
        if (l->classes[c][0] == '.' || strchr(l->classes[c], '/'))
            fail(op, "bad class name", l->classes[c]);
        if (c > 0 && strcmp(l->classes[c - 1], l->classes[c]) >= 0)
            fail(op, "classes not sorted bytewise", l->classes[c]);
        snprintf(buf, sizeof buf, "%s/%s", base, l->classes[c]);
        struct stat st;
        if (stat(buf, &st) != 0 || !S_ISDIR(st.st_mode))
            fail(op, "class is not a folder", buf);
    }
    int seen = -1;
    for (size_t i = 0; i < l->n; i++) {
        const lt_data_sample *s = &l->samples[i];
        if (s->label < 0 || s->label >= l->nclasses)
            fail(op, "label out of range", s->path);
        if (s->label < seen)
            fail(op, "samples not ordered by label", s->path);
        const char *cls = l->classes[s->label];
        size_t bl = strlen(base), cl = strlen(cls);
        if (strncmp(s->path, base, bl) != 0 || s->path[bl] != '/' ||
            strncmp(s->path + bl + 1, cls, cl) != 0 || s->path[bl + 1 + cl] != '/')
            fail(op, "path is not base/class/file", s->path);
        const char *file = s->path + bl + cl + 2;
        if (!*file || strchr(file, '/') || file[0] == '.' || !is_image_name(file) ||
            !is_file(s->path))
            fail(op, "sample is not an image file in its class folder", s->path);
        if (i > 0 && s->label == seen && strcmp(l->samples[i - 1].path, s->path) >= 0)
            fail(op, "samples of a class not sorted by name", s->path);
        seen = (int)s->label;
        /* the mask: first existing candidate */
        char stem[512], want[4096] = "";
        mask_stem(file, stem, sizeof stem);
        for (int k = 0; exts[k] && !want[0]; k++) {
            snprintf(buf, sizeof buf, "%s/%s/%s%s", mask_dir, cls, stem, exts[k]);
            if (is_file(buf))
                snprintf(want, sizeof want, "%s", buf);
        }
        if (mode == LT_DATA_MASKS_NONE) {
            if (s->mask_path)
                fail(op, "a mask with LT_DATA_MASKS_NONE", s->mask_path);
        } else if (!want[0]) {
            if (s->mask_path)
                fail(op, "a mask where no candidate exists", s->mask_path);
            if (mode == LT_DATA_MASKS_REQUIRED)
                fail(op, "listed without its required mask", s->path);
        } else if (!s->mask_path || strcmp(s->mask_path, want) != 0) {
            fprintf(stderr, "fuzz_in9: %s: %s: mask %s, want %s\n", op, s->path,
                    s->mask_path ? s->mask_path : "(none)", want);
            abort();
        }
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    lt_set_num_threads(1);
    fz_tree_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const char *const variants[] = {"original", "mixed_rand", "mixed_same", "only_fg"};
    static const char *const in9_exts[] = {".npy", NULL};
    static const char *const folder_exts[] = {".npy", ".png", NULL};
    const char *variant = variants[data[0] & 3];
    const char *split = data[0] & 4 ? "val" : "train";
    lt_data_mask_mode mode = (lt_data_mask_mode)((data[0] >> 3) % 3);
    fz_tree_build(data + 1, size - 1);

    char base[1024], mdir[1024];
    fz_state st = fz_enter();
    lt_data_list *l = lt_data_in9_list(fz_tree_root, variant, split, mode);
    if (!l) {
        fz_check_error("in9_list", NULL);
    } else {
        snprintf(base, sizeof base, "%s/%s/%s", fz_tree_root, variant, split);
        snprintf(mdir, sizeof mdir, "%s/fg_mask/%s", fz_tree_root, split);
        check_list("in9_list", l, base, mdir, in9_exts, mode);
        lt_data_list_free(l);
    }
    fz_tree_path(base, sizeof base, "f");
    fz_tree_path(mdir, sizeof mdir, "f_masks");
    lt_clear_error();
    l = lt_data_folder_list(base, mode);
    if (!l) {
        fz_check_error("folder_list", NULL);
    } else {
        check_list("folder_list", l, base, mdir, folder_exts, mode);
        lt_data_list_free(l);
    }
    fz_leave(st, "in9");
    fz_tree_clear();
    return 0;
}
