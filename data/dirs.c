/*
 * dirs.c: strings, string vectors, paths and folder walks shared by the
 * dataset listings (in9.c, rival10.c), the loader and the generator.
 *
 * Everything is allocated with lt_data__malloc (size-prefixed, so frees
 * need no sizes) and therefore through the allocator hook.
 */
#include "data_internal.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

char *lt_data__strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = lt_data__malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

char *lt_data__join(const char *a, const char *b, const char *c)
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

void lt_data__sv_free(lt_data__strvec *s)
{
    for (size_t i = 0; i < s->n; i++)
        lt_data__mfree(s->v[i]);
    lt_data__mfree(s->v);
    memset(s, 0, sizeof *s);
}

int lt_data__sv_push(lt_data__strvec *s, char *str)
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

int lt_data__list_dir(const char *op, const char *dir, lt_data__strvec *out)
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
        if (lt_data__sv_push(out, lt_data__strdup(e->d_name)) < 0) {
            closedir(d);
            lt_data__sv_free(out);
            lt_set_error("%s: %s: out of memory listing the folder", op, dir);
            return -1;
        }
    }
    int err = errno;
    closedir(d);
    if (err) {
        lt_data__sv_free(out);
        lt_set_error("%s: %s: %s", op, dir, strerror(err));
        return -1;
    }
    if (out->n > 1)
        qsort(out->v, out->n, sizeof *out->v, cmp_str);
    return 0;
}

/* stat follows symlinks: datasets are often linked into place. */
bool lt_data__is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

bool lt_data__is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

bool lt_data__is_image_name(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (!dot || dot == name)
        return false;
    return strcasecmp(dot, ".jpg") == 0 || strcasecmp(dot, ".jpeg") == 0 ||
           strcasecmp(dot, ".png") == 0 || strcasecmp(dot, ".bmp") == 0;
}

int lt_data__list_add(lt_data_list *l, size_t *cap, char *path, char *mask, int64_t label)
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

int lt_data__mkdirs(const char *op, const char *path)
{
    size_t n = strlen(path);
    char *p = lt_data__malloc(n + 1);
    if (!p) {
        lt_set_error("%s: %s: out of memory", op, path);
        return -1;
    }
    memcpy(p, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (p[i] != '/' && p[i] != '\0')
            continue;
        char keep = p[i];
        p[i] = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST) {
            lt_set_error("%s: %s: cannot create folder: %s", op, p, strerror(errno));
            lt_data__mfree(p);
            return -1;
        }
        if (!lt_data__is_dir(p)) {
            lt_set_error("%s: %s: exists and is not a folder", op, p);
            lt_data__mfree(p);
            return -1;
        }
        p[i] = keep;
    }
    lt_data__mfree(p);
    return 0;
}
