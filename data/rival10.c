/*
 * rival10.c: the RIVAL10 listing (layout in data.h).
 *
 * What we follow. RIVAL10 (Moayeri, Pope, Balaji, Feizi, CVPR 2022) as its
 * authors' loader reads it (github.com/mmoayeri/RIVAL10,
 * rival10/local_rival10.py and datasets/rival10.py):
 *
 *   <root>/{train,test}/ordinary/<wnid>_<n>.JPEG      images; beside each,
 *          <stem>_attr_labels.npy, <stem>_attr_dict.pkl and
 *          <stem>_merged_mask.JPEG (attribute data, skipped here)
 *   <root>/{train,test}/entire_object_masks/...       object masks, JPEG
 *   <root>/meta/label_mappings.json   {"<ImageNet class>": ["<class>", k]}
 *   <root>/meta/wnid_to_class.json    {"<wnid>": "<ImageNet class>"}
 *
 * A file's label is label_mappings[wnid_to_class[wnid]][1] where wnid is
 * the file name up to its first '_' (get_rival10_og_class in the authors'
 * code); the class names are the label_mappings entries, so classes[k] is
 * the name paired with k ("truck" 0, "car" 1, ..., "bird" 9). A
 * label_mappings.json keyed by the wnid itself also works, and then
 * wnid_to_class.json is not needed.
 *
 * The mask of ordinary/<name> is looked up in entire_object_masks/ as
 * <name>, then <stem> with .JPEG .jpg .jpeg .png, then <wnid>_<name> (the
 * name datasets/rival10.py builds from an ImageNet URL, wnid + '_' +
 * file). Masks are JPEGs; lt_data_mask_read thresholds them at 0.5.
 */
#include "data_internal.h"

#include <cjson/cJSON.h>
#include <string.h>

#define OP "rival10_list"

/* ------------------------------------------------------------------ */
/* The meta JSON files                                                 */
/* ------------------------------------------------------------------ */

/* Parse the JSON file at path; NULL with "rival10_list: PATH: ..." when
 * it is missing, unreadable or not a JSON object. cJSON allocates with
 * malloc: its hooks are process-wide, so we leave them alone. */
static cJSON *read_json(const char *path)
{
    lt_data__buf b;
    if (lt_data__read_file(OP, path, &b) < 0)
        return NULL;
    cJSON *j = cJSON_ParseWithLength((const char *)b.buf, b.len);
    lt_data__buf_free(&b);
    if (!j) {
        lt_set_error(OP ": %s: not valid JSON", path);
        return NULL;
    }
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        lt_set_error(OP ": %s: want a JSON object", path);
        return NULL;
    }
    return j;
}

/* Check every entry of label_mappings ("key": ["name", k]) and build the
 * class table: classes[k] = name for k = 0..K-1, each k present, one name
 * per k. */
static int read_classes(const char *path, cJSON *map, lt_data_list *l)
{
    int maxk = -1;
    for (cJSON *e = map->child; e; e = e->next) {
        cJSON *name = cJSON_GetArrayItem(e, 0), *k = cJSON_GetArrayItem(e, 1);
        if (!cJSON_IsArray(e) || cJSON_GetArraySize(e) != 2 || !cJSON_IsString(name) ||
            !cJSON_IsNumber(k) || k->valuedouble != (double)k->valueint || k->valueint < 0 ||
            k->valueint > 100000) {
            lt_set_error(OP ": %s: entry \"%s\": want [\"class name\", label >= 0]", path,
                         e->string);
            return -1;
        }
        if (k->valueint > maxk)
            maxk = k->valueint;
    }
    if (maxk < 0) {
        lt_set_error(OP ": %s: no classes", path);
        return -1;
    }
    l->classes = lt_data__malloc((size_t)(maxk + 1) * sizeof *l->classes);
    if (!l->classes) {
        lt_set_error(OP ": %s: out of memory", path);
        return -1;
    }
    l->nclasses = maxk + 1;
    for (cJSON *e = map->child; e; e = e->next) {
        const char *name = cJSON_GetArrayItem(e, 0)->valuestring;
        int k = cJSON_GetArrayItem(e, 1)->valueint;
        if (!l->classes[k]) {
            if (!(l->classes[k] = lt_data__strdup(name))) {
                lt_set_error(OP ": %s: out of memory", path);
                return -1;
            }
        } else if (strcmp(l->classes[k], name) != 0) {
            lt_set_error(OP ": %s: label %d is named both \"%s\" and \"%s\"", path, k,
                         l->classes[k], name);
            return -1;
        }
    }
    for (int k = 0; k < l->nclasses; k++)
        if (!l->classes[k]) {
            lt_set_error(OP ": %s: no class has label %d (labels must be 0..%d)", path, k,
                         maxk);
            return -1;
        }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Images and masks                                                    */
/* ------------------------------------------------------------------ */

static bool ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), k = strlen(tail);
    return n >= k && strcmp(s + n - k, tail) == 0;
}

/* The per-image attribute files that share ordinary/ with the images. */
static bool is_sidecar(const char *name)
{
    return ends_with(name, "_attr_labels.npy") || ends_with(name, "_attr_dict.pkl") ||
           strstr(name, "_merged_mask.") != NULL;
}

/* First existing candidate for the mask of image `name` (see the top of
 * the file); *out NULL when none. -1 only when out of memory. */
static int find_mask(const char *mdir, const char *name, size_t wnid_len, char **out)
{
    static const char *const exts[] = {".JPEG", ".jpg", ".jpeg", ".png"};
    *out = NULL;
    const char *dot = strrchr(name, '.');
    size_t stem = dot ? (size_t)(dot - name) : strlen(name);
    size_t cap = strlen(name) + wnid_len + 8;
    char *file = lt_data__malloc(cap);
    if (!file)
        return -1;
    for (int k = -1; k <= 4 && !*out; k++) {
        if (k < 0)
            snprintf(file, cap, "%s", name);
        else if (k < 4)
            snprintf(file, cap, "%.*s%s", (int)stem, name, exts[k]);
        else
            snprintf(file, cap, "%.*s_%s", (int)wnid_len, name, name);
        char *p = lt_data__join(mdir, file, NULL);
        if (!p) {
            lt_data__mfree(file);
            return -1;
        }
        if (lt_data__is_file(p))
            *out = p;
        else
            lt_data__mfree(p);
    }
    lt_data__mfree(file);
    return 0;
}

/* Label of the image whose name starts with wnid (wnid_len bytes), or -1
 * with an error naming the image. */
static int64_t label_of(const char *img, const char *name, size_t wnid_len, cJSON *map,
                        cJSON *w2c, const char *map_path, const char *w2c_path)
{
    char wnid[64];
    if (wnid_len == 0 || wnid_len >= sizeof wnid) {
        lt_set_error(OP ": %s: want a file named <wnid>_<n>.JPEG", img);
        return -1;
    }
    memcpy(wnid, name, wnid_len);
    wnid[wnid_len] = '\0';
    cJSON *e = cJSON_GetObjectItemCaseSensitive(map, wnid);
    if (!e) {
        cJSON *cls = w2c ? cJSON_GetObjectItemCaseSensitive(w2c, wnid) : NULL;
        if (!cJSON_IsString(cls)) {
            if (w2c)
                lt_set_error(OP ": %s: wnid %s is not in %s", img, wnid, w2c_path);
            else
                lt_set_error(OP ": %s: wnid %s is not in %s, and there is no %s", img, wnid,
                             map_path, w2c_path);
            return -1;
        }
        e = cJSON_GetObjectItemCaseSensitive(map, cls->valuestring);
        if (!e) {
            lt_set_error(OP ": %s: wnid %s is \"%s\", which is not in %s", img, wnid,
                         cls->valuestring, map_path);
            return -1;
        }
    }
    return cJSON_GetArrayItem(e, 1)->valueint;
}

/* Reorder samples by label, keeping the (sorted) file order within one. */
static int sort_by_label(lt_data_list *l)
{
    if (l->n < 2)
        return 0;
    lt_data_sample *tmp = lt_data__malloc(l->n * sizeof *tmp);
    if (!tmp)
        return -1;
    size_t j = 0;
    for (int k = 0; k < l->nclasses; k++)
        for (size_t i = 0; i < l->n; i++)
            if (l->samples[i].label == k)
                tmp[j++] = l->samples[i];
    memcpy(l->samples, tmp, l->n * sizeof *tmp);
    lt_data__mfree(tmp);
    return 0;
}

lt_data_list *lt_data_rival10_list(const char *root, const char *split, lt_data_mask_mode masks)
{
    if (!root || !split) {
        lt_set_error(OP ": NULL root or split");
        return NULL;
    }
    if ((unsigned)masks > LT_DATA_MASKS_NONE) {
        lt_set_error(OP ": %s: unknown mask mode %d", root, (int)masks);
        return NULL;
    }
    lt_data_list *l = lt_data__malloc(sizeof *l);
    char *map_path = lt_data__join(root, "meta", "label_mappings.json");
    char *w2c_path = lt_data__join(root, "meta", "wnid_to_class.json");
    char *sdir = lt_data__join(root, split, NULL);
    char *idir = lt_data__join(root, split, "ordinary");
    char *mdir = lt_data__join(root, split, "entire_object_masks");
    cJSON *map = NULL, *w2c = NULL;
    lt_data__strvec files = {0};
    size_t cap = 0;
    if (!l || !map_path || !w2c_path || !sdir || !idir || !mdir)
        goto oom;
    if (!lt_data__is_dir(sdir)) {
        lt_set_error(OP ": %s: no such folder (split is train or test)", sdir);
        goto fail;
    }
    if (!(map = read_json(map_path)) || read_classes(map_path, map, l) < 0)
        goto fail;
    if (lt_data__is_file(w2c_path) && !(w2c = read_json(w2c_path)))
        goto fail;
    if (!lt_data__is_dir(idir)) {
        lt_set_error(OP ": %s: no such folder", idir);
        goto fail;
    }
    if (lt_data__list_dir(OP, idir, &files) < 0)
        goto fail;
    for (size_t f = 0; f < files.n; f++) {
        const char *name = files.v[f];
        if (is_sidecar(name))
            continue;
        char *path = lt_data__join(idir, name, NULL);
        if (!path)
            goto oom;
        if (!lt_data__is_file(path) || !lt_data__is_image_name(name)) {
            lt_set_error(OP ": %s: not an image file (want <wnid>_<n>.JPEG)", path);
            lt_data__mfree(path);
            goto fail;
        }
        const char *us = strchr(name, '_');
        size_t wnid_len = us ? (size_t)(us - name) : 0;
        int64_t label = label_of(path, name, wnid_len, map, w2c, map_path, w2c_path);
        if (label < 0) {
            lt_data__mfree(path);
            goto fail;
        }
        char *mask = NULL;
        if (masks != LT_DATA_MASKS_NONE) {
            if (find_mask(mdir, name, wnid_len, &mask) < 0) {
                lt_data__mfree(path);
                goto oom;
            }
            if (!mask && masks == LT_DATA_MASKS_REQUIRED) {
                lt_set_error(OP ": %s: missing mask %s/%s", path, mdir, name);
                lt_data__mfree(path);
                goto fail;
            }
        }
        if (lt_data__list_add(l, &cap, path, mask, label) < 0)
            goto oom;
    }
    if (l->n == 0) {
        lt_set_error(OP ": %s: no images", idir);
        goto fail;
    }
    if (sort_by_label(l) < 0)
        goto oom;
    goto done;
oom:
    lt_set_error(OP ": %s: out of memory", root);
fail:
    lt_data_list_free(l);
    l = NULL;
done:
    lt_data__sv_free(&files);
    cJSON_Delete(map);
    cJSON_Delete(w2c);
    lt_data__mfree(map_path);
    lt_data__mfree(w2c_path);
    lt_data__mfree(sdir);
    lt_data__mfree(idir);
    lt_data__mfree(mdir);
    return l;
}
