/*
 * fuzz_safetensors.c: lt_nn_safetensors_decode (checkpoints, and the JSON
 * header parsing) on arbitrary bytes.
 *
 * Beyond "no crash, no leak" (fuzz_common.h; the file object is freed, then
 * the hook's live blocks must be back where they were), a file that decodes
 * is checked against the rules of nn/checkpoint.h, read here from the bytes
 * independently (cJSON for the header, our own arithmetic for the rest):
 *   - 8 length bytes, N <= LT_NN_SAFETENSORS_MAX_HEADER, 8 + N <= size;
 *   - one tensor per header entry other than "__metadata__", in the order of
 *     their data offsets, which tile the data section exactly (first at 0,
 *     no gap, no overlap, the last ending at the end of the file);
 *   - each tensor has its entry's dtype, shape and data_offsets, is
 *     contiguous and holds exactly the bytes of its slice of the file;
 *   - every metadata key maps to its string value.
 * A failure must leave "safetensors: <label>: ...".
 */
#include "fuzz_common.h"

#include <libtensor/checkpoint.h>

#include <cjson/cJSON.h>

static void fail(const char *what, const char *name)
{
    fprintf(stderr, "fuzz_safetensors: %s%s%s\n", what, name ? ": " : "", name ? name : "");
    abort();
}

static int dtype_of(const char *s, lt_dtype *dt)
{
    static const struct { const char *name; lt_dtype dt; } map[] = {
        {"F32", LT_F32}, {"F64", LT_F64}, {"I64", LT_I64}, {"U8", LT_U8}};
    for (int i = 0; i < 4; i++)
        if (strcmp(s, map[i].name) == 0) {
            *dt = map[i].dt;
            return 0;
        }
    return -1;
}

static void check_file(const lt_nn_tensor_file *f, const uint8_t *data, size_t size)
{
    if (size < 8)
        fail("decoded a file shorter than its length field", NULL);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = n << 8 | data[i];
    if (n > LT_NN_SAFETENSORS_MAX_HEADER || n > size - 8)
        fail("decoded a file whose header length is out of range", NULL);
    const uint8_t *body = data + 8 + n;
    uint64_t body_len = size - 8 - n;
    cJSON *h = cJSON_ParseWithLength((const char *)data + 8, (size_t)n);
    if (!cJSON_IsObject(h))
        fail("decoded a file whose header is not a JSON object", NULL);

    int entries = 0;
    for (const cJSON *e = h->child; e; e = e->next)
        entries += strcmp(e->string, "__metadata__") != 0;
    int count = lt_nn_tensor_file_count(f);
    if (count != entries)
        fail("tensor count differs from the header's entries", NULL);

    uint64_t at = 0; /* where the next tensor must begin */
    for (int i = 0; i < count; i++) {
        const char *name = lt_nn_tensor_file_name(f, i);
        lt_tensor *t = lt_nn_tensor_file_tensor(f, i);
        if (!name || !t)
            fail("a tensor or its name is missing", NULL);
        if (lt_nn_tensor_file_find(f, name) != i)
            fail("find does not return the tensor's own index", name);
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(h, name);
        const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
        const cJSON *shape = cJSON_GetObjectItemCaseSensitive(e, "shape");
        const cJSON *offs = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
        lt_dtype want_dt;
        if (!cJSON_IsString(dt) || dtype_of(dt->valuestring, &want_dt) < 0 ||
            lt_dtype_of(t) != want_dt)
            fail("dtype differs from the header", name);
        if (!cJSON_IsArray(shape) || cJSON_GetArraySize(shape) != lt_ndim(t))
            fail("rank differs from the header", name);
        for (int d = 0; d < lt_ndim(t); d++) {
            const cJSON *s = cJSON_GetArrayItem(shape, d);
            if (!cJSON_IsNumber(s) || s->valuedouble != (double)lt_shape(t)[d])
                fail("shape differs from the header", name);
        }
        uint64_t bytes = (uint64_t)lt_numel(t) * lt_dtype_size(lt_dtype_of(t));
        const cJSON *b0 = cJSON_GetArrayItem(offs, 0), *b1 = cJSON_GetArrayItem(offs, 1);
        if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 || !cJSON_IsNumber(b0) ||
            !cJSON_IsNumber(b1) || b0->valuedouble != (double)at ||
            b1->valuedouble != (double)(at + bytes))
            fail("data_offsets do not tile the data section in order", name);
        if (at + bytes > body_len)
            fail("tensor data runs past the end of the file", name);
        if (bytes && (!lt_is_contiguous(t) || memcmp(lt_data(t), body + at, (size_t)bytes) != 0))
            fail("tensor data differs from the file's bytes", name);
        at += bytes;
    }
    if (at != body_len)
        fail("the tensors do not end at the end of the file", NULL);

    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(h, "__metadata__");
    int nmeta = lt_nn_tensor_file_meta_count(f);
    if (nmeta != (meta ? cJSON_GetArraySize(meta) : 0))
        fail("metadata count differs from the header", NULL);
    for (int i = 0; i < nmeta; i++) {
        const char *k = lt_nn_tensor_file_meta_key(f, i), *v = lt_nn_tensor_file_meta_value(f, i);
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(meta, k ? k : "");
        if (!k || !v || !cJSON_IsString(m) || strcmp(m->valuestring, v) != 0 ||
            lt_nn_tensor_file_meta(f, k) != v)
            fail("metadata differs from the header", k);
    }
    cJSON_Delete(h);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    lt_set_num_threads(1);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_state st = fz_enter();
    lt_nn_tensor_file *f = lt_nn_safetensors_decode(data, size, FZ_NAME);
    if (!f) {
        fz_check_error("safetensors", FZ_NAME);
    } else {
        check_file(f, data, size);
        lt_nn_tensor_file_free(f);
    }
    fz_leave(st, "safetensors");
    return 0;
}
