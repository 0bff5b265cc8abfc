/*
 * fuzz_rival10.c: the RIVAL10 listing (lt_data_rival10_list): its JSON meta
 * files (meta/label_mappings.json, meta/wnid_to_class.json), the wnid ->
 * label lookup and the mask resolution, on folder trees built from the
 * input.
 *
 * The JSON parsing has no decode-from-memory entry (it is private to
 * data/rival10.c), so the target writes the JSON files into a tree (format
 * in fuzz_tree.h) inside a private temporary folder:
 *
 *   byte0 & 1          split: train, or test
 *   (byte0 >> 1) % 3   mask mode: REQUIRED, OPTIONAL, NONE
 *   then the tree, e.g.
 *     meta/label_mappings.json<TAB>{"tench": ["fish", 0]}
 *     meta/wnid_to_class.json<TAB>{"n01440764": "tench"}
 *     train/ordinary/n01440764_1.JPEG
 *     train/entire_object_masks/n01440764_1.JPEG
 *
 * On success every rule data.h states is checked, with the label worked
 * out here from the JSON (cJSON): label_mappings[wnid] or
 * label_mappings[wnid_to_class[wnid]], [1]; classes[k] the name paired
 * with k, every k present; samples ordered by label then name; sidecar
 * files skipped; the mask the first existing of <name>, <stem>.JPEG/.jpg/
 * .jpeg/.png, <wnid>_<name>; the mask mode obeyed.
 */
#include "fuzz_common.h"
#include "fuzz_tree.h"

#include <libtensor/data.h>

#include <cjson/cJSON.h>
#include <strings.h>

static void fail(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_rival10: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    abort();
}

static bool is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static cJSON *load_json(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    return cJSON_ParseWithLength(buf, n);
}

/* Label of image file `name` from the meta files, or -1. */
static int label_of(const char *name, const cJSON *map, const cJSON *w2c)
{
    const char *us = strchr(name, '_');
    if (!us)
        return -1;
    char wnid[256];
    snprintf(wnid, sizeof wnid, "%.*s", (int)(us - name), name);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(map, wnid);
    if (!e && w2c) {
        const cJSON *cls = cJSON_GetObjectItemCaseSensitive(w2c, wnid);
        if (cJSON_IsString(cls))
            e = cJSON_GetObjectItemCaseSensitive(map, cls->valuestring);
    }
    const cJSON *k = cJSON_GetArrayItem(e, 1);
    return cJSON_IsNumber(k) ? k->valueint : -1;
}

static void check_list(const lt_data_list *l, const char *split, lt_data_mask_mode mode)
{
    char idir[1024], mdir[1024], buf[4096];
    snprintf(idir, sizeof idir, "%s/%s/ordinary", fz_tree_root, split);
    snprintf(mdir, sizeof mdir, "%s/%s/entire_object_masks", fz_tree_root, split);
    fz_tree_path(buf, sizeof buf, "meta/label_mappings.json");
    cJSON *map = load_json(buf);
    fz_tree_path(buf, sizeof buf, "meta/wnid_to_class.json");
    cJSON *w2c = load_json(buf);
    if (!cJSON_IsObject(map))
        fail("listed with a label_mappings.json that is not a JSON object", NULL);

    if (l->nclasses < 1 || l->n < 1)
        fail("no classes or no samples", NULL);
    for (int k = 0; k < l->nclasses; k++) {
        if (!l->classes[k])
            fail("a label without a class name", NULL);
        /* some entry pairs this name with k */
        bool found = false;
        for (const cJSON *e = map->child; e && !found; e = e->next) {
            const cJSON *nm = cJSON_GetArrayItem(e, 0), *kk = cJSON_GetArrayItem(e, 1);
            found = cJSON_IsString(nm) && cJSON_IsNumber(kk) && kk->valueint == k &&
                    strcmp(nm->valuestring, l->classes[k]) == 0;
        }
        if (!found)
            fail("class name not paired with its label in label_mappings.json", l->classes[k]);
    }
    int64_t seen = -1;
    size_t il = strlen(idir);
    for (size_t i = 0; i < l->n; i++) {
        const lt_data_sample *s = &l->samples[i];
        if (strncmp(s->path, idir, il) != 0 || s->path[il] != '/' || strchr(s->path + il + 1, '/'))
            fail("path is not <split>/ordinary/<name>", s->path);
        const char *name = s->path + il + 1;
        if (!is_file(s->path) || name[0] == '.')
            fail("sample is not a file", s->path);
        if (strstr(name, "_merged_mask.") ||
            (strlen(name) >= 16 && strcmp(name + strlen(name) - 16, "_attr_labels.npy") == 0))
            fail("a sidecar file listed as an image", s->path);
        int want = label_of(name, map, w2c);
        if (s->label != want || s->label < 0 || s->label >= l->nclasses) {
            fprintf(stderr, "fuzz_rival10: %s: label %lld, the meta files say %d\n", s->path,
                    (long long)s->label, want);
            abort();
        }
        if (s->label < seen || (s->label == seen && strcmp(l->samples[i - 1].path, s->path) >= 0))
            fail("samples not ordered by label, then name", s->path);
        seen = s->label;
        /* the mask: first existing candidate */
        static const char *const exts[] = {".JPEG", ".jpg", ".jpeg", ".png"};
        const char *dot = strrchr(name, '.');
        int stem = dot ? (int)(dot - name) : (int)strlen(name);
        int wl = (int)(strchr(name, '_') - name);
        char want_mask[4096] = "";
        for (int k = -1; k <= 4 && !want_mask[0]; k++) {
            if (k < 0)
                snprintf(buf, sizeof buf, "%s/%s", mdir, name);
            else if (k < 4)
                snprintf(buf, sizeof buf, "%s/%.*s%s", mdir, stem, name, exts[k]);
            else
                snprintf(buf, sizeof buf, "%s/%.*s_%s", mdir, wl, name, name);
            if (is_file(buf))
                snprintf(want_mask, sizeof want_mask, "%s", buf);
        }
        if (mode == LT_DATA_MASKS_NONE || !want_mask[0]) {
            if (s->mask_path)
                fail("a mask where none is wanted or exists", s->mask_path);
            if (mode == LT_DATA_MASKS_REQUIRED)
                fail("listed without its required mask", s->path);
        } else if (!s->mask_path || strcmp(s->mask_path, want_mask) != 0) {
            fprintf(stderr, "fuzz_rival10: %s: mask %s, want %s\n", s->path,
                    s->mask_path ? s->mask_path : "(none)", want_mask);
            abort();
        }
    }
    cJSON_Delete(map);
    cJSON_Delete(w2c);
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
    const char *split = data[0] & 1 ? "test" : "train";
    lt_data_mask_mode mode = (lt_data_mask_mode)((data[0] >> 1) % 3);
    fz_tree_build(data + 1, size - 1);
    fz_state st = fz_enter();
    lt_data_list *l = lt_data_rival10_list(fz_tree_root, split, mode);
    if (!l) {
        fz_check_error("rival10_list", NULL);
    } else {
        check_list(l, split, mode);
        lt_data_list_free(l);
    }
    fz_leave(st, "rival10");
    fz_tree_clear();
    return 0;
}
