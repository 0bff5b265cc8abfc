/*
 * safetensors.c: checkpoints in the safetensors format (checkpoint.h):
 * reading, loading into models, and the helpers shared with
 * safetensors_write.c (safetensors_internal.h).
 *
 * Writing builds the JSON header by hand (compact, in the caller's order, as
 * serde_json writes it in the safetensors package) and streams each tensor's
 * elements into a temporary file that is fsynced and renamed into place.
 * Reading parses the header with cJSON, validates every entry and the tiling
 * of the data section before allocating any tensor, then reads each
 * tensor's bytes straight into its storage. The rules are listed in
 * checkpoint.h; they follow the reference reader (safetensors/src/tensor.rs:
 * Metadata::validate and SafeTensors::read_metadata).
 */
#include "nn_internal.h"
#include "safetensors_internal.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */
/* ------------------------------------------------------------------ */

typedef struct dtype_info {
    const char *name;
    lt_dtype dt;
} dtype_info;

static const dtype_info dtypes[] = {{"F32", LT_F32}, {"F64", LT_F64}, {"I64", LT_I64}, {"U8", LT_U8}};

const char *lt__st_dtype_name(lt_dtype dt)
{
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (dtypes[i].dt == dt)
            return dtypes[i].name;
    return NULL;
}

bool lt__st_host_is_le(void)
{
    const uint16_t one = 1;
    return *(const uint8_t *)&one == 1;
}

/* Reverse the byte order of n elements of es bytes (big-endian hosts). */
void lt__st_swap_bytes(uint8_t *p, size_t n, size_t es)
{
    for (size_t i = 0; es > 1 && i < n; i++, p += es)
        for (size_t a = 0, b = es - 1; a < b; a++, b--) {
            uint8_t t = p[a];
            p[a] = p[b];
            p[b] = t;
        }
}

/* Record "safetensors: SOURCE: <message>". */
void lt__st_error(const char *source, const char *fmt, ...)
{
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    lt_set_error("safetensors: %.200s: %s", source ? source : "<memory>", msg);
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = lt_alloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

/* Zeroed array of n pointers (never NULL for n == 0 unless out of memory). */
static void *alloc_ptrs(int n)
{
    size_t sz = sizeof(void *) * (size_t)n;
    void *p = lt_alloc(sz);
    if (p)
        memset(p, 0, sz ? sz : 1);
    return p;
}

static void free_str(char *s)
{
    if (s)
        lt_free(s, strlen(s) + 1);
}

void lt__sb_put(lt__sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->cap - b->len < n + 1) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->len < n + 1)
            cap *= 2;
        char *p = lt_alloc(cap);
        if (!p) {
            b->oom = true;
            return;
        }
        if (b->p) {
            memcpy(p, b->p, b->len);
            lt_free(b->p, b->cap);
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void lt__sb_puts(lt__sbuf *b, const char *s) { lt__sb_put(b, s, strlen(s)); }

void lt__sb_u64(lt__sbuf *b, uint64_t v)
{
    char t[24];
    lt__sb_put(b, t, (size_t)snprintf(t, sizeof t, "%llu", (unsigned long long)v));
}

/* A JSON string literal: quotes, backslashes and control bytes escaped,
 * other bytes (UTF-8) as they are. */
void lt__sb_json_str(lt__sbuf *b, const char *s)
{
    lt__sb_put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            lt__sb_put(b, e, 2);
        } else if (c < 0x20) {
            char e[8];
            lt__sb_put(b, e, (size_t)snprintf(e, sizeof e, "\\u%04x", c));
        } else {
            lt__sb_put(b, (const char *)&c, 1);
        }
    }
    lt__sb_put(b, "\"", 1);
}

void lt__sb_free(lt__sbuf *b)
{
    if (b->p)
        lt_free(b->p, b->cap);
    memset(b, 0, sizeof *b);
}

static int cmp_str_ptr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The first name that occurs twice among n, or NULL. names[i] non-NULL. */
const char *lt__st_find_duplicate(int n, const char *const *names, bool *oom)
{
    *oom = false;
    if (n < 2)
        return NULL;
    const char **s = lt_alloc(sizeof *s * (size_t)n);
    if (!s) {
        *oom = true;
        return NULL;
    }
    memcpy(s, names, sizeof *s * (size_t)n);
    qsort(s, (size_t)n, sizeof *s, cmp_str_ptr);
    const char *dup = NULL;
    for (int i = 1; i < n && !dup; i++)
        if (strcmp(s[i - 1], s[i]) == 0)
            dup = s[i];
    lt_free(s, sizeof *s * (size_t)n);
    return dup;
}

/* ------------------------------------------------------------------ */
/* Reading: header validation                                          */
/* ------------------------------------------------------------------ */

/* One validated header entry. name points into the cJSON tree. */
typedef struct entry {
    const char *name;
    lt_dtype dt;
    int ndim;
    int64_t shape[LT_MAX_DIMS];
    uint64_t begin, end;
} entry;

/* Where the bytes come from: memory, or a file read at absolute offsets. */
typedef struct source {
    const char *label;
    const uint8_t *mem;
    FILE *fp;
    uint64_t size;
} source;

static int src_read(const source *s, uint64_t at, void *dst, size_t n)
{
    if (n == 0)
        return 0;
    if (s->mem) {
        memcpy(dst, s->mem + at, n);
        return 0;
    }
    if (fseeko(s->fp, (off_t)at, SEEK_SET) != 0 || fread(dst, 1, n, s->fp) != n) {
        lt__st_error(s->label, "read failed at byte %llu: %s", (unsigned long long)at,
                 feof(s->fp) ? "the file shrank while being read" : strerror(errno));
        return -1;
    }
    return 0;
}

/* A JSON number that is a non-negative integer below 2^53. */
static bool json_uint(const cJSON *j, uint64_t *out)
{
    if (!cJSON_IsNumber(j))
        return false;
    double d = j->valuedouble;
    if (!(d >= 0 && d <= 9007199254740992.0) || (double)(uint64_t)d != d)
        return false;
    *out = (uint64_t)d;
    return true;
}

static int parse_entry(const char *label, const cJSON *item, uint64_t data_len, entry *e)
{
    const char *nm = item->string;
    e->name = nm;
    if (!cJSON_IsObject(item)) {
        lt__st_error(label, "tensor '%.200s': entry is not a JSON object", nm);
        return -1;
    }
    const cJSON *jd = cJSON_GetObjectItemCaseSensitive(item, "dtype");
    if (!cJSON_IsString(jd)) {
        lt__st_error(label, "tensor '%.200s': missing or non-string \"dtype\"", nm);
        return -1;
    }
    size_t k = 0;
    while (k < sizeof dtypes / sizeof dtypes[0] && strcmp(dtypes[k].name, jd->valuestring) != 0)
        k++;
    if (k == sizeof dtypes / sizeof dtypes[0]) {
        lt__st_error(label, "tensor '%.200s': unsupported dtype \"%.40s\" (supported: F32, F64, I64, U8)", nm,
                 jd->valuestring);
        return -1;
    }
    e->dt = dtypes[k].dt;
    const cJSON *js = cJSON_GetObjectItemCaseSensitive(item, "shape");
    if (!cJSON_IsArray(js)) {
        lt__st_error(label, "tensor '%.200s': missing or non-array \"shape\"", nm);
        return -1;
    }
    int nd = cJSON_GetArraySize(js);
    if (nd > LT_MAX_DIMS) {
        lt__st_error(label, "tensor '%.200s': rank %d exceeds the maximum %d", nm, nd, LT_MAX_DIMS);
        return -1;
    }
    e->ndim = nd;
    /* Same bound as lt_empty: the product of the non-zero dims times 8
     * bytes must fit in int64. */
    uint64_t numel = 1, prod = 1;
    const cJSON *d;
    int i = 0;
    cJSON_ArrayForEach(d, js)
    {
        uint64_t v;
        if (!json_uint(d, &v)) {
            lt__st_error(label, "tensor '%.200s': shape[%d] is not a non-negative integer", nm, i);
            return -1;
        }
        uint64_t nz = v ? v : 1;
        if (prod > ((uint64_t)INT64_MAX / 8) / nz) {
            lt__st_error(label, "tensor '%.200s': shape overflows the element count", nm);
            return -1;
        }
        prod *= nz;
        numel *= v;
        e->shape[i++] = (int64_t)v;
    }
    uint64_t nbytes = numel * lt_dtype_size(e->dt);
    const cJSON *jo = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
    if (!cJSON_IsArray(jo) || cJSON_GetArraySize(jo) != 2 || !json_uint(jo->child, &e->begin) ||
        !json_uint(jo->child->next, &e->end)) {
        lt__st_error(label, "tensor '%.200s': \"data_offsets\" must be [begin, end] of non-negative integers", nm);
        return -1;
    }
    if (e->end < e->begin) {
        lt__st_error(label, "tensor '%.200s': data_offsets [%llu, %llu] end before they begin", nm,
                 (unsigned long long)e->begin, (unsigned long long)e->end);
        return -1;
    }
    if (e->end - e->begin != nbytes) {
        lt__st_error(label,
                 "tensor '%.200s': data_offsets [%llu, %llu] span %llu bytes but dtype %s and its shape need "
                 "%llu",
                 nm, (unsigned long long)e->begin, (unsigned long long)e->end,
                 (unsigned long long)(e->end - e->begin), dtypes[k].name, (unsigned long long)nbytes);
        return -1;
    }
    if (e->end > data_len) {
        lt__st_error(label,
                 "tensor '%.200s': data_offsets [%llu, %llu] run past the end of the data section (%llu "
                 "bytes): truncated file?",
                 nm, (unsigned long long)e->begin, (unsigned long long)e->end, (unsigned long long)data_len);
        return -1;
    }
    return 0;
}

static int cmp_entry_name(const void *a, const void *b)
{
    return strcmp((*(const entry *const *)a)->name, (*(const entry *const *)b)->name);
}

static int cmp_entry_offsets(const void *a, const void *b)
{
    const entry *x = *(const entry *const *)a, *y = *(const entry *const *)b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return x < y ? -1 : x > y; /* header order among empty tensors */
}

/* Sorted by offsets, the entries must tile [0, data_len) exactly. */
static int check_tiling(const char *label, int n, entry *const *s, uint64_t data_len)
{
    uint64_t at = 0;
    for (int i = 0; i < n; i++) {
        if (s[i]->begin < at) {
            lt__st_error(label, "tensors '%.200s' [%llu, %llu] and '%.200s' [%llu, %llu] overlap", s[i - 1]->name,
                     (unsigned long long)s[i - 1]->begin, (unsigned long long)s[i - 1]->end, s[i]->name,
                     (unsigned long long)s[i]->begin, (unsigned long long)s[i]->end);
            return -1;
        }
        if (s[i]->begin > at) {
            lt__st_error(label, "gap of %llu bytes in the data section before tensor '%.200s' (begins at %llu, "
                            "previous data ends at %llu)",
                     (unsigned long long)(s[i]->begin - at), s[i]->name, (unsigned long long)s[i]->begin,
                     (unsigned long long)at);
            return -1;
        }
        at = s[i]->end;
    }
    if (at != data_len) {
        lt__st_error(label, "the data section has %llu bytes after the last tensor that no tensor claims",
                 (unsigned long long)(data_len - at));
        return -1;
    }
    return 0;
}

static int check_metadata(const char *label, const cJSON *m)
{
    if (!cJSON_IsObject(m)) {
        lt__st_error(label, "\"__metadata__\" is not a JSON object");
        return -1;
    }
    int n = cJSON_GetArraySize(m), i = 0;
    const char **keys = alloc_ptrs(n);
    if (!keys) {
        lt__st_error(label, "out of memory parsing the header");
        return -1;
    }
    const cJSON *kv;
    int rc = 0;
    cJSON_ArrayForEach(kv, m)
    {
        keys[i++] = kv->string;
        if (!cJSON_IsString(kv) && rc == 0) {
            lt__st_error(label, "\"__metadata__\" value for key '%.200s' is not a string", kv->string);
            rc = -1;
        }
    }
    bool oom;
    const char *dup = rc == 0 ? lt__st_find_duplicate(n, keys, &oom) : NULL;
    if (rc == 0 && (oom || dup)) {
        if (oom)
            lt__st_error(label, "out of memory parsing the header");
        else
            lt__st_error(label, "duplicate \"__metadata__\" key '%.200s'", dup);
        rc = -1;
    }
    lt_free(keys, sizeof *keys * (size_t)n);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Reading: the file object                                            */
/* ------------------------------------------------------------------ */

struct lt_nn_tensor_file {
    int n, n_meta;
    char **names;         /* n, owned */
    lt_tensor **tensors;  /* n, one reference each */
    char **meta_keys;     /* n_meta, owned */
    char **meta_vals;
    char *source;
};

void lt_nn_tensor_file_free(lt_nn_tensor_file *f)
{
    if (!f)
        return;
    for (int i = 0; i < f->n; i++) {
        if (f->names)
            free_str(f->names[i]);
        if (f->tensors)
            lt_release(f->tensors[i]);
    }
    for (int i = 0; i < f->n_meta; i++) {
        if (f->meta_keys)
            free_str(f->meta_keys[i]);
        if (f->meta_vals)
            free_str(f->meta_vals[i]);
    }
    lt_free(f->names, sizeof(char *) * (size_t)f->n);
    lt_free(f->tensors, sizeof(lt_tensor *) * (size_t)f->n);
    lt_free(f->meta_keys, sizeof(char *) * (size_t)f->n_meta);
    lt_free(f->meta_vals, sizeof(char *) * (size_t)f->n_meta);
    free_str(f->source);
    lt_free(f, sizeof *f);
}

/* Allocate the tensors (in offset order) and read their bytes. */
static lt_nn_tensor_file *build_file(const source *s, uint64_t data_start, int n, entry *const *by_off,
                                     const cJSON *meta)
{
    lt_nn_tensor_file *f = lt_alloc(sizeof *f);
    if (!f)
        goto oom;
    memset(f, 0, sizeof *f);
    /* The free function copes with any array still NULL. */
    f->n = n;
    f->n_meta = meta ? cJSON_GetArraySize(meta) : 0;
    f->names = alloc_ptrs(n);
    f->tensors = alloc_ptrs(n);
    f->meta_keys = alloc_ptrs(f->n_meta);
    f->meta_vals = alloc_ptrs(f->n_meta);
    f->source = dup_str(s->label);
    if (!f->names || !f->tensors || !f->meta_keys || !f->meta_vals || !f->source)
        goto oom;
    int i = 0;
    const cJSON *kv;
    cJSON_ArrayForEach(kv, meta)
    {
        if (!(f->meta_keys[i] = dup_str(kv->string)) || !(f->meta_vals[i] = dup_str(kv->valuestring)))
            goto oom;
        i++;
    }
    bool le = lt__st_host_is_le();
    for (i = 0; i < n; i++) {
        const entry *e = by_off[i];
        size_t mark = lt_frame_push();
        lt_tensor *t = lt_empty(e->ndim, e->shape, e->dt);
        f->tensors[i] = lt_retain(t);
        lt_frame_pop(mark);
        if (!t || !(f->names[i] = dup_str(e->name)))
            goto oom;
        size_t nb = (size_t)(e->end - e->begin);
        if (src_read(s, data_start + e->begin, lt_data(t), nb) < 0) {
            lt_nn_tensor_file_free(f);
            return NULL;
        }
        if (!le)
            lt__st_swap_bytes(lt_data(t), nb / lt_dtype_size(e->dt), lt_dtype_size(e->dt));
    }
    return f;
oom:
    lt_nn_tensor_file_free(f);
    lt__st_error(s->label, "out of memory loading the tensors");
    return NULL;
}

/* Validate the header and build the file object. */
static lt_nn_tensor_file *decode(const source *s)
{
    const char *label = s->label;
    if (s->size < 8) {
        lt__st_error(label, "file is %llu bytes, too short for the 8-byte header length",
                 (unsigned long long)s->size);
        return NULL;
    }
    uint8_t len8[8];
    if (src_read(s, 0, len8, 8) < 0)
        return NULL;
    uint64_t hn = 0;
    for (int i = 7; i >= 0; i--)
        hn = (hn << 8) | len8[i];
    if (hn > LT_NN_SAFETENSORS_MAX_HEADER) {
        lt__st_error(label, "header length %llu is absurd (the limit is %u bytes)", (unsigned long long)hn,
                 LT_NN_SAFETENSORS_MAX_HEADER);
        return NULL;
    }
    if (hn > s->size - 8) {
        lt__st_error(label, "header length %llu runs past the end of the file (%llu bytes)", (unsigned long long)hn,
                 (unsigned long long)s->size);
        return NULL;
    }
    char *hbuf = NULL;
    const char *hdr = NULL;
    if (s->mem) {
        hdr = (const char *)s->mem + 8;
    } else {
        hbuf = lt_alloc((size_t)hn);
        if (!hbuf) {
            lt__st_error(label, "out of memory reading the header");
            return NULL;
        }
        if (src_read(s, 8, hbuf, (size_t)hn) < 0) {
            lt_free(hbuf, (size_t)hn);
            return NULL;
        }
        hdr = hbuf;
    }
    lt_nn_tensor_file *f = NULL;
    cJSON *root = NULL;
    entry *ents = NULL;
    entry **by = NULL;
    int count = 0;
    const char *nul = memchr(hdr, 0, (size_t)hn);
    if (nul) {
        lt__st_error(label, "header contains a NUL byte at header offset %td", nul - hdr);
        goto done;
    }
    const char *end = NULL;
    root = cJSON_ParseWithLengthOpts(hdr, (size_t)hn, &end, 0);
    if (!root) {
        lt__st_error(label, "header is not valid JSON (parse error near header byte %td)", end ? end - hdr : 0);
        goto done;
    }
    for (const char *p = end; p < hdr + hn; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            lt__st_error(label, "header has bytes other than spaces after the JSON value (header byte %td)", p - hdr);
            goto done;
        }
    if (!cJSON_IsObject(root)) {
        lt__st_error(label, "header is not a JSON object");
        goto done;
    }
    const cJSON *meta = NULL, *item;
    int nitems = cJSON_GetArraySize(root);
    size_t ents_size = sizeof *ents * (size_t)nitems, by_size = sizeof *by * (size_t)nitems;
    ents = lt_alloc(ents_size);
    by = lt_alloc(by_size);
    if (!ents || !by) {
        lt__st_error(label, "out of memory parsing the header");
        goto done;
    }
    uint64_t data_len = s->size - 8 - hn;
    cJSON_ArrayForEach(item, root)
    {
        if (strcmp(item->string, "__metadata__") == 0) {
            if (meta) {
                lt__st_error(label, "duplicate key \"__metadata__\"");
                goto done;
            }
            if (check_metadata(label, item) < 0)
                goto done;
            meta = item;
            continue;
        }
        if (parse_entry(label, item, data_len, &ents[count]) < 0)
            goto done;
        by[count] = &ents[count];
        count++;
    }
    qsort(by, (size_t)count, sizeof *by, cmp_entry_name);
    for (int i = 1; i < count; i++)
        if (strcmp(by[i - 1]->name, by[i]->name) == 0) {
            lt__st_error(label, "duplicate tensor name '%.200s'", by[i]->name);
            goto done;
        }
    qsort(by, (size_t)count, sizeof *by, cmp_entry_offsets);
    if (check_tiling(label, count, by, data_len) < 0)
        goto done;
    f = build_file(s, 8 + hn, count, by, meta);
done:
    if (ents)
        lt_free(ents, ents_size);
    if (by)
        lt_free(by, by_size);
    cJSON_Delete(root);
    if (hbuf)
        lt_free(hbuf, (size_t)hn);
    return f;
}

lt_nn_tensor_file *lt_nn_safetensors_decode(const void *buf, size_t len, const char *label)
{
    source s = {label ? label : "<memory>", buf, NULL, len};
    if (!buf && len) {
        lt__st_error(s.label, "NULL buffer");
        return NULL;
    }
    static const uint8_t empty[1];
    if (!buf)
        s.mem = empty;
    return decode(&s);
}

lt_nn_tensor_file *lt_nn_safetensors_load(const char *path)
{
    if (!path) {
        lt_set_error("safetensors: load: NULL path");
        return NULL;
    }
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        lt__st_error(path, "cannot open: %s", strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode)) {
        lt__st_error(path, "not a regular file");
        fclose(fp);
        return NULL;
    }
    source s = {path, NULL, fp, (uint64_t)st.st_size};
    lt_nn_tensor_file *f = decode(&s);
    fclose(fp);
    return f;
}

/* ---- accessors ---- */

int lt_nn_tensor_file_count(const lt_nn_tensor_file *f) { return f ? f->n : 0; }

const char *lt_nn_tensor_file_name(const lt_nn_tensor_file *f, int i)
{
    return (f && i >= 0 && i < f->n) ? f->names[i] : NULL;
}

lt_tensor *lt_nn_tensor_file_tensor(const lt_nn_tensor_file *f, int i)
{
    if (!f || i < 0 || i >= f->n) {
        lt_set_error("safetensors: tensor index %d out of range (%d tensors)", i, f ? f->n : 0);
        return NULL;
    }
    return f->tensors[i];
}

int lt_nn_tensor_file_find(const lt_nn_tensor_file *f, const char *name)
{
    for (int i = 0; f && name && i < f->n; i++)
        if (strcmp(f->names[i], name) == 0)
            return i;
    return -1;
}

const char *lt_nn_tensor_file_source(const lt_nn_tensor_file *f) { return f ? f->source : NULL; }

const char *lt_nn_tensor_file_meta(const lt_nn_tensor_file *f, const char *key)
{
    for (int i = 0; f && key && i < f->n_meta; i++)
        if (strcmp(f->meta_keys[i], key) == 0)
            return f->meta_vals[i];
    return NULL;
}

int lt_nn_tensor_file_meta_count(const lt_nn_tensor_file *f) { return f ? f->n_meta : 0; }

const char *lt_nn_tensor_file_meta_key(const lt_nn_tensor_file *f, int i)
{
    return (f && i >= 0 && i < f->n_meta) ? f->meta_keys[i] : NULL;
}

const char *lt_nn_tensor_file_meta_value(const lt_nn_tensor_file *f, int i)
{
    return (f && i >= 0 && i < f->n_meta) ? f->meta_vals[i] : NULL;
}

/* ------------------------------------------------------------------ */
/* Loading into existing tensors                                       */
/* ------------------------------------------------------------------ */

void lt_nn_load_report_free(lt_nn_load_report *r)
{
    if (!r)
        return;
    if (r->detail)
        lt_free(r->detail, r->detail_cap);
    memset(r, 0, sizeof *r);
}

static bool skipped(const lt_nn_load_opts *o, const char *name)
{
    for (int i = 0; o && i < o->n_skip_prefixes; i++)
        if (o->skip_prefixes[i] && strncmp(name, o->skip_prefixes[i], strlen(o->skip_prefixes[i])) == 0)
            return true;
    return false;
}

/* Write the contiguous elements at src into dst (same dtype), any strides. */
static void copy_into(lt_tensor *dst, const uint8_t *src)
{
    size_t es = lt_dtype_size(lt_dtype_of(dst));
    int64_t n = lt_numel(dst);
    uint8_t *base = lt_data(dst);
    if (lt_is_contiguous(dst)) {
        memcpy(base, src, (size_t)n * es);
        return;
    }
    int nd = lt_ndim(dst);
    const int64_t *sh = lt_shape(dst), *st = lt_strides(dst);
    int64_t idx[LT_MAX_DIMS] = {0}, off = 0;
    for (int64_t k = 0; k < n; k++) {
        memcpy(base + off * (int64_t)es, src + k * (int64_t)es, es);
        for (int d = nd - 1; d >= 0; d--) {
            off += st[d];
            if (++idx[d] < sh[d])
                break;
            off -= st[d] * sh[d];
            idx[d] = 0;
        }
    }
}

/* Match states: a file index (>= 0) or one of these. */
enum { M_MISSING = -1, M_SKIPPED = -2, M_MISMATCH = -3 };

/* "missing: a, b; unexpected: c; shape mismatch: d (file (3,4), model (4,3))" */
static void describe(lt__sbuf *b, const lt_nn_tensor_file *f, int n, const char *const *names, lt_tensor *const *dst,
                     const int *match, const bool *unexp)
{
    const char *sect[3] = {"missing: ", "unexpected: ", "shape mismatch: "};
    lt__sb_put(b, "", 0); /* "" rather than NULL when everything matched */
    for (int s = 0; s < 3; s++) {
        bool first = true;
        int lim = s == 1 ? f->n : n;
        for (int i = 0; i < lim; i++) {
            bool hit = s == 0 ? match[i] == M_MISSING : s == 1 ? unexp[i] : match[i] == M_MISMATCH;
            if (!hit)
                continue;
            lt__sb_puts(b, first ? (b->len ? "; " : "") : ", ");
            if (first)
                lt__sb_puts(b, sect[s]);
            first = false;
            lt__sb_puts(b, s == 1 ? f->names[i] : names[i]);
            if (s == 2) {
                char fs[96], ms[96];
                int j = lt_nn_tensor_file_find(f, names[i]);
                lt__sb_puts(b, " (file ");
                lt__sb_puts(b, lt_shape_str(f->tensors[j], fs, sizeof fs));
                lt__sb_puts(b, ", model ");
                lt__sb_puts(b, lt_shape_str(dst[i], ms, sizeof ms));
                lt__sb_puts(b, ")");
            }
        }
    }
}

static int load_args_ok(const lt_nn_tensor_file *f, int n, const char *const *names, lt_tensor *const *dst)
{
    if (!f || n < 0 || (n > 0 && (!names || !dst))) {
        lt_set_error("safetensors: load_into: bad arguments (file %s, n %d)", f ? f->source : "NULL", n);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        if (!names[i] || !dst[i]) {
            lt__st_error(f->source, "load_into: entry %d has a NULL %s", i, names[i] ? "tensor" : "name");
            return -1;
        }
        if (!lt_ag_is_leaf(dst[i])) {
            lt__st_error(f->source, "load_into: destination '%.200s' is not a leaf tensor", names[i]);
            return -1;
        }
    }
    return 0;
}

int lt_nn_load_into(const lt_nn_tensor_file *f, int n, const char *const *names, lt_tensor *const *dst,
                    const lt_nn_load_opts *opts, lt_nn_load_report *report)
{
    lt_nn_load_report rep = {0};
    if (report)
        memset(report, 0, sizeof *report);
    if (load_args_ok(f, n, names, dst) < 0)
        return -1;
    bool strict = !opts || opts->strict;
    size_t msize = sizeof(int) * (size_t)n, usize = (size_t)f->n, csize = sizeof(lt_tensor *) * (size_t)n;
    int *match = lt_alloc(msize);
    bool *unexp = lt_alloc(usize);
    int rc = -1;
    lt__sbuf b = {0};
    size_t mark = lt_frame_push();
    lt_tensor **conv = lt_alloc(csize);
    if (!match || !unexp || !conv) {
        lt__st_error(f->source, "load_into: out of memory");
        goto done;
    }
    for (int j = 0; j < f->n; j++)
        unexp[j] = !skipped(opts, f->names[j]);
    for (int i = 0; i < n; i++) {
        int j = skipped(opts, names[i]) ? M_SKIPPED : lt_nn_tensor_file_find(f, names[i]);
        if (j >= 0) {
            unexp[j] = false;
            if (!lt__nn_same_shape(f->tensors[j], dst[i]))
                j = M_MISMATCH;
        }
        match[i] = j;
        rep.missing += j == M_MISSING;
        rep.skipped += j == M_SKIPPED;
        rep.mismatched += j == M_MISMATCH;
    }
    for (int j = 0; j < f->n; j++)
        rep.unexpected += unexp[j];
    describe(&b, f, n, names, dst, match, unexp);
    if (b.oom) {
        lt__st_error(f->source, "load_into: out of memory");
        goto done;
    }
    if (strict && (rep.missing || rep.unexpected || rep.mismatched)) {
        /* The error buffer holds 1 KiB (with a 200-byte path); the report
         * holds everything. */
        bool cut = b.len > 680;
        lt__st_error(f->source, "strict load failed (%d missing, %d unexpected, %d mis-shaped): %.680s%s", rep.missing,
                 rep.unexpected, rep.mismatched, b.p, cut ? " ... (full list in the load report)" : "");
        goto done;
    }
    /* Convert every source first, so a failure writes nothing. */
    for (int i = 0; i < n; i++) {
        conv[i] = NULL;
        if (match[i] < 0)
            continue;
        lt_tensor *src = f->tensors[match[i]];
        conv[i] = lt_dtype_of(src) == lt_dtype_of(dst[i]) ? src : lt_to_dtype(src, lt_dtype_of(dst[i]));
        if (!conv[i]) {
            lt__st_error(f->source, "load_into: converting '%.200s': %s", names[i], lt_last_error());
            goto done;
        }
    }
    for (int i = 0; i < n; i++)
        if (conv[i]) {
            copy_into(dst[i], lt_data(conv[i]));
            rep.loaded++;
        }
    rc = 0;
done:
    lt_frame_pop(mark);
    if (report) {
        *report = rep;
        if (b.p) {
            report->detail = b.p;
            report->detail_cap = b.cap;
            b.p = NULL;
        }
    }
    lt__sb_free(&b);
    if (match)
        lt_free(match, msize);
    if (unexp)
        lt_free(unexp, usize);
    if (conv)
        lt_free(conv, csize);
    return rc;
}
