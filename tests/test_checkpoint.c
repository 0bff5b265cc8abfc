/*
 * test_checkpoint.c: Check suite for safetensors checkpoints (nn/safetensors.c,
 * <libtensor/checkpoint.h>).
 *
 * Runs from the repository root (fixtures under tests/fixtures/safetensors/,
 * written by make_safetensors_fixtures.py, which follows the reference writer
 * and is checked against its unit-test byte vector). Files the tests write go
 * to a mkdtemp directory removed afterwards. Malformed files are built here
 * byte by byte, each rejection asserting its message.
 */
#include <libtensor/autograd.h>
#include <libtensor/checkpoint.h>
#include <libtensor/tensor.h>

#include <check.h>
#include <dirent.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define FIX "tests/fixtures/safetensors/"
#define SH(...) (int64_t[]){__VA_ARGS__}

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

static char tmp_dir[256];

static void tmp_setup(void)
{
    snprintf(tmp_dir, sizeof tmp_dir, "%s/lt_ckpt_XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmp_dir)) {
        perror("mkdtemp");
        abort();
    }
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void tmp_teardown(void) { nftw(tmp_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

static char *tmp_path(char *buf, size_t n, const char *name)
{
    snprintf(buf, n, "%s/%s", tmp_dir, name);
    return buf;
}

/* Whole file into a malloc'd buffer (*len bytes); NULL if unreadable. */
static unsigned char *slurp(const char *path, size_t *len)
{
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 1);
    *len = fread(b, 1, (size_t)n, f);
    fclose(f);
    return b;
}

static void spit(const char *path, const void *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(buf, 1, len, f), len);
    fclose(f);
}

/* A file image: 8-byte LE length of json, json, then data_len bytes
 * 0,1,2,... (caller frees). */
static unsigned char *image(const char *json, size_t data_len, size_t *len)
{
    size_t n = strlen(json);
    *len = 8 + n + data_len;
    unsigned char *b = malloc(*len);
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)((uint64_t)n >> (8 * i));
    memcpy(b + 8, json, n);
    for (size_t i = 0; i < data_len; i++)
        b[8 + n + i] = (unsigned char)i;
    return b;
}

/* Decode a file image made of json + data and expect a rejection whose
 * message contains every one of the NULL-terminated substrings. */
static void expect_reject_(int line, const char *json, size_t data_len, const char *const *want)
{
    size_t len;
    unsigned char *b = image(json, data_len, &len);
    lt_clear_error();
    lt_nn_tensor_file *f = lt_nn_safetensors_decode(b, len, "bad.safetensors");
    free(b);
    ck_assert_msg(f == NULL, "line %d: accepted %s", line, json);
    const char *msg = lt_last_error();
    ck_assert_msg(strstr(msg, "safetensors: bad.safetensors: ") == msg, "line %d: %s", line, msg);
    for (; *want; want++)
        ck_assert_msg(strstr(msg, *want) != NULL, "line %d: '%s' lacks '%s'", line, msg, *want);
}
#define expect_reject(json, data_len, ...)                                                                   \
    expect_reject_(__LINE__, json, data_len, (const char *const[]){__VA_ARGS__, NULL})

/* Contiguous bytes of t (via lt_contiguous) equal `bytes`. */
static bool same_bytes(const lt_tensor *t, const void *bytes)
{
    size_t m = lt_frame_push();
    const lt_tensor *c = lt_contiguous(t);
    bool eq = memcmp(lt_data(c), bytes, (size_t)lt_numel(c) * lt_dtype_size(lt_dtype_of(c))) == 0;
    lt_frame_pop(m);
    return eq;
}

static bool same_shape(const lt_tensor *a, int nd, const int64_t *shape)
{
    return lt_ndim(a) == nd && (nd == 0 || memcmp(lt_shape(a), shape, sizeof(int64_t) * (size_t)nd) == 0);
}

/* ------------------------------------------------------------------ */
/* Round trips                                                         */
/* ------------------------------------------------------------------ */

START_TEST(save_then_load_is_bitwise_for_every_dtype_and_layout)
{
    size_t m = lt_frame_push();
    lt_rng r = lt_rng_new(11);
    lt_tensor *f32 = lt_rand_normal(&r, 2, SH(3, 4), 0, 1, LT_F32);
    float *fp = lt_data(f32);
    fp[0] = NAN;
    fp[1] = -0.0f;
    fp[2] = INFINITY;
    fp[3] = 1e-45f; /* subnormal */
    lt_tensor *f64t = lt_transpose(lt_rand_normal(&r, 2, SH(3, 5), 0, 1, LT_F64), 0, 1); /* (5,3) view */
    lt_tensor *i64s = lt_slice(lt_arange(-9, 9, 1, LT_I64), 0, 1, 18, 3);                  /* step 3 */
    ((int64_t *)lt_data(i64s))[0] = INT64_MIN;
    lt_tensor *u8 = lt_scalar(200, LT_U8); /* 0-d */
    lt_tensor *f0 = lt_scalar(-2.5, LT_F32);
    lt_tensor *exp = lt_expand(lt_reshape(lt_arange(0, 3, 1, LT_F32), 2, SH(3, 1)), 3, SH(2, 3, 4)); /* stride 0 */
    lt_tensor *empty = lt_zeros(2, SH(0, 3), LT_F64);
    lt_tensor *u8src = lt_to_dtype(lt_rand_uniform(&r, 3, SH(2, 3, 4), 0, 255, LT_F32), LT_U8);
    lt_tensor *u8img = lt_permute(u8src, (int[]){2, 0, 1});
    ck_assert(!lt_is_contiguous(f64t) && !lt_is_contiguous(i64s) && !lt_is_contiguous(exp));
    const char *names[] = {"z.f32", "a.f64_t", "m.i64_step", "u8_scalar", "f32_scalar", "expanded", "empty", "img"};
    lt_tensor *ts[] = {f32, f64t, i64s, u8, f0, exp, empty, u8img};
    int n = 8;
    char path[512];
    tmp_path(path, sizeof path, "rt.safetensors");
    ck_assert_msg(lt_nn_safetensors_save(path, n, names, ts, 0, NULL, NULL) == 0, "%s", lt_last_error());

    lt_nn_tensor_file *f = lt_nn_safetensors_load(path);
    ck_assert_msg(f != NULL, "%s", lt_last_error());
    ck_assert_int_eq(lt_nn_tensor_file_count(f), n);
    for (int i = 0; i < n; i++) {
        /* the caller's order is kept, so offsets order is the same */
        ck_assert_str_eq(lt_nn_tensor_file_name(f, i), names[i]);
        lt_tensor *t = lt_nn_tensor_file_tensor(f, i);
        ck_assert_int_eq(lt_dtype_of(t), lt_dtype_of(ts[i]));
        ck_assert(same_shape(t, lt_ndim(ts[i]), lt_shape(ts[i])));
        ck_assert(lt_is_contiguous(t));
        ck_assert(!lt_ag_requires_grad(t));
        ck_assert_msg(same_bytes(ts[i], lt_data(t)), "tensor %s differs", names[i]);
        ck_assert_int_eq(lt_nn_tensor_file_find(f, names[i]), i);
    }
    ck_assert_int_eq(lt_nn_tensor_file_find(f, "nope"), -1);
    ck_assert_int_eq(lt_nn_tensor_file_meta_count(f), 0);
    ck_assert_ptr_null(lt_nn_tensor_file_tensor(f, n));
    ck_assert_str_eq(lt_nn_tensor_file_source(f), path);
    /* the file owns its tensors: one retained outlives the file */
    lt_tensor *keep = lt_retain(lt_nn_tensor_file_tensor(f, 0));
    lt_nn_tensor_file_free(f);
    ck_assert(same_bytes(f32, lt_data(keep)));
    lt_release(keep);
    lt_frame_pop(m);
}
END_TEST

START_TEST(saved_bytes_equal_the_reference_writer)
{
    /* The reference's unit test vector (test_serialization_forced_alignement):
     * one F32 (1,1,2,3) tensor 0..5 named attn0, header padded to 8 bytes. */
    size_t m = lt_frame_push();
    char path[512];
    tmp_path(path, sizeof path, "attn0.safetensors");
    lt_tensor *t = lt_reshape(lt_arange(0, 6, 1, LT_F32), 4, SH(1, 1, 2, 3));
    ck_assert_int_eq(lt_nn_safetensors_save(path, 1, (const char *[]){"attn0"}, (lt_tensor *[]){t}, 0, NULL, NULL),
                     0);
    size_t n1, n2;
    unsigned char *ours = slurp(path, &n1), *ref = slurp(FIX "upstream_attn0.safetensors", &n2);
    ck_assert_ptr_nonnull(ref);
    ck_assert_uint_eq(n1, n2);
    ck_assert(memcmp(ours, ref, n1) == 0);
    free(ours);
    free(ref);
    lt_frame_pop(m);
}
END_TEST

START_TEST(metadata_round_trips_with_escapes_and_utf8)
{
    size_t m = lt_frame_push();
    char path[512];
    tmp_path(path, sizeof path, "meta.safetensors");
    const char *k[] = {"arch", "quote\"back\\slash", "ctl\n\t\x01", "utf8 \xc3\xa9\xe2\x82\xac", "empty"};
    const char *v[] = {"resnet18", "a \"b\" \\c", "line1\nline2", "caf\xc3\xa9 \xe2\x82\xac", ""};
    lt_tensor *t = lt_ones(1, SH(2), LT_F32);
    ck_assert_msg(lt_nn_safetensors_save(path, 1, (const char *[]){"w"}, (lt_tensor *[]){t}, 5, k, v) == 0, "%s",
                  lt_last_error());
    lt_nn_tensor_file *f = lt_nn_safetensors_load(path);
    ck_assert_msg(f != NULL, "%s", lt_last_error());
    ck_assert_int_eq(lt_nn_tensor_file_meta_count(f), 5);
    for (int i = 0; i < 5; i++) {
        ck_assert_str_eq(lt_nn_tensor_file_meta(f, k[i]), v[i]);
        ck_assert_str_eq(lt_nn_tensor_file_meta_key(f, i), k[i]);
        ck_assert_str_eq(lt_nn_tensor_file_meta_value(f, i), v[i]);
    }
    ck_assert_ptr_null(lt_nn_tensor_file_meta(f, "absent"));
    ck_assert_ptr_null(lt_nn_tensor_file_meta_key(f, 5));
    lt_nn_tensor_file_free(f);
    /* the header is padded with spaces to a multiple of 8 */
    size_t len;
    unsigned char *b = slurp(path, &len);
    uint64_t hn = 0;
    for (int i = 7; i >= 0; i--)
        hn = hn << 8 | b[i];
    ck_assert_uint_eq(hn % 8, 0);
    ck_assert_uint_eq(len, 8 + hn + 8);
    free(b);
    lt_frame_pop(m);
}
END_TEST

START_TEST(loads_a_state_dict_written_like_safetensors_torch_save_file)
{
    size_t m = lt_frame_push();
    lt_nn_tensor_file *f = lt_nn_safetensors_load(FIX "torch_state_dict.safetensors");
    ck_assert_msg(f != NULL, "%s", lt_last_error());
    ck_assert_str_eq(lt_nn_tensor_file_meta(f, "format"), "pt");
    /* Offsets order, as the writer sorts: I64, F64, F32, U8, then by name. */
    const char *order[] = {"bn1.num_batches_tracked", "extra.i64", "extra.f64", "bn1.running_var", "bn1.weight",
                           "conv1.weight", "extra.empty", "fc.bias", "fc.weight", "extra.u8"};
    ck_assert_int_eq(lt_nn_tensor_file_count(f), 10);
    for (int i = 0; i < 10; i++)
        ck_assert_str_eq(lt_nn_tensor_file_name(f, i), order[i]);
#define T(name) lt_nn_tensor_file_tensor(f, lt_nn_tensor_file_find(f, name))
    lt_tensor *nbt = T("bn1.num_batches_tracked");
    ck_assert_int_eq(lt_ndim(nbt), 0);
    ck_assert_int_eq(lt_dtype_of(nbt), LT_I64);
    ck_assert_int_eq(*(int64_t *)lt_data(nbt), 7);
    lt_tensor *conv = T("conv1.weight");
    ck_assert(same_shape(conv, 4, SH(2, 1, 3, 3)));
    for (int i = 0; i < 18; i++)
        ck_assert(((float *)lt_data(conv))[i] == 0.25f * (float)i - 2.0f);
    lt_tensor *fc = T("fc.weight");
    ck_assert(same_shape(fc, 2, SH(3, 2)));
    for (int i = 0; i < 6; i++)
        ck_assert(((float *)lt_data(fc))[i] == (float)i / 8.0f);
    ck_assert(((float *)lt_data(T("fc.bias")))[2] == 0.5f);
    ck_assert(((float *)lt_data(T("bn1.running_var")))[1] == 4.0f);
    const double *d = lt_data(T("extra.f64"));
    ck_assert(d[0] == 0.1 && d[1] == -2.5 && d[2] == 1e300 && d[3] == 0 && signbit(d[3]));
    const int64_t *q = lt_data(T("extra.i64"));
    ck_assert(q[0] == INT64_MIN && q[1] == 0 && q[2] == INT64_MAX);
    const uint8_t *u = lt_data(T("extra.u8"));
    ck_assert(u[0] == 0 && u[1] == 1 && u[2] == 127 && u[3] == 128 && u[4] == 255);
    ck_assert(same_shape(T("extra.empty"), 2, SH(0, 3)));
#undef T
    lt_nn_tensor_file_free(f);

    /* the reference's unit-test vector decodes too */
    size_t len;
    unsigned char *b = slurp(FIX "upstream_attn0.safetensors", &len);
    f = lt_nn_safetensors_decode(b, len, NULL);
    free(b);
    ck_assert_msg(f != NULL, "%s", lt_last_error());
    lt_tensor *a = lt_nn_tensor_file_tensor(f, 0);
    ck_assert(same_shape(a, 4, SH(1, 1, 2, 3)));
    ck_assert(((float *)lt_data(a))[5] == 5.0f);
    lt_nn_tensor_file_free(f);
    lt_frame_pop(m);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Rejections                                                          */
/* ------------------------------------------------------------------ */

START_TEST(truncated_data_is_rejected_naming_file_and_tensor)
{
    size_t m = lt_frame_push();
    char path[512];
    tmp_path(path, sizeof path, "trunc.safetensors");
    lt_tensor *ts[] = {lt_ones(1, SH(4), LT_F32), lt_ones(2, SH(2, 2), LT_F64)};
    ck_assert_int_eq(lt_nn_safetensors_save(path, 2, (const char *[]){"a", "b"}, ts, 0, NULL, NULL), 0);
    size_t len;
    unsigned char *b = slurp(path, &len);
    spit(path, b, len - 5);
    free(b);
    ck_assert_ptr_null(lt_nn_safetensors_load(path));
    const char *msg = lt_last_error();
    ck_assert_msg(strstr(msg, path) && strstr(msg, "tensor 'b'") && strstr(msg, "run past the end of the data section"),
                  "%s", msg);
    lt_frame_pop(m);
}
END_TEST

START_TEST(bad_header_lengths_are_rejected)
{
    size_t len;
    unsigned char *b = image("{}      ", 0, &len);
    /* longer than the file */
    b[0] = 9;
    lt_nn_tensor_file *f = lt_nn_safetensors_decode(b, len, "bad.safetensors");
    ck_assert_ptr_null(f);
    ck_assert_msg(strstr(lt_last_error(), "header length 9 runs past the end of the file (16 bytes)"), "%s",
                  lt_last_error());
    /* absurd: 2^63 */
    memset(b, 0, 8);
    b[7] = 0x80;
    ck_assert_ptr_null(lt_nn_safetensors_decode(b, len, "bad.safetensors"));
    ck_assert_msg(strstr(lt_last_error(), "header length 9223372036854775808 is absurd"), "%s", lt_last_error());
    /* absurd even when the file is big enough would not matter: 100 MB + 1 */
    uint64_t big = 100000001;
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(big >> (8 * i));
    ck_assert_ptr_null(lt_nn_safetensors_decode(b, len, "bad.safetensors"));
    ck_assert_msg(strstr(lt_last_error(), "is absurd"), "%s", lt_last_error());
    /* shorter than the length field itself */
    ck_assert_ptr_null(lt_nn_safetensors_decode(b, 5, "bad.safetensors"));
    ck_assert_msg(strstr(lt_last_error(), "file is 5 bytes, too short"), "%s", lt_last_error());
    free(b);
    /* the same checks through a real file */
    char path[512];
    tmp_setup();
    tmp_path(path, sizeof path, "len.safetensors");
    b = image("{}      ", 0, &len);
    b[1] = 1; /* 264 */
    spit(path, b, len);
    free(b);
    ck_assert_ptr_null(lt_nn_safetensors_load(path));
    ck_assert_msg(strstr(lt_last_error(), path) && strstr(lt_last_error(), "runs past the end of the file"), "%s",
                  lt_last_error());
    tmp_teardown();
}
END_TEST

START_TEST(overlapping_and_gapped_offsets_are_rejected)
{
    expect_reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                  "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                  12, "tensors 'a' [0, 8] and 'b' [4, 12] overlap");
    /* the same with the header listing them in the other order */
    expect_reject("{\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]},"
                  "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
                  12, "overlap");
    /* two tensors on the same bytes */
    expect_reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                  "\"b\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8]}}",
                  8, "overlap");
    expect_reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                  "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}}",
                  20, "gap of 4 bytes", "tensor 'b'");
    expect_reject("{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[3,5]}}", 5, "gap of 3 bytes", "tensor 'a'");
    expect_reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 12,
                  "4 bytes after the last tensor");
    expect_reject("{}", 3, "3 bytes after the last tensor");
}
END_TEST

START_TEST(unknown_dtypes_are_rejected)
{
    expect_reject("{\"w\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4, "tensor 'w'",
                  "unsupported dtype \"BF16\"");
    expect_reject("{\"w\":{\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "unsupported dtype \"f32\"");
    expect_reject("{\"w\":{\"dtype\":7,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "tensor 'w'", "\"dtype\"");
    expect_reject("{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "tensor 'w'", "\"dtype\"");
}
END_TEST

START_TEST(non_json_headers_are_rejected)
{
    expect_reject("this is not json", 0, "not valid JSON");
    expect_reject("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}", 1, "not valid JSON");
    expect_reject("", 0, "not valid JSON");
    expect_reject("[1,2,3]", 0, "not a JSON object");
    expect_reject("{} {}", 0, "bytes other than spaces after the JSON value");
    expect_reject("{\"a\":5}", 0, "tensor 'a': entry is not a JSON object");
    /* a NUL inside the header */
    unsigned char b[16] = {8, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' ', 0, ' ', ' ', ' '};
    ck_assert_ptr_null(lt_nn_safetensors_decode(b, 16, "bad.safetensors"));
    ck_assert_msg(strstr(lt_last_error(), "NUL byte at header offset 4"), "%s", lt_last_error());
}
END_TEST

START_TEST(offsets_that_disagree_with_shape_and_dtype_are_rejected)
{
    expect_reject("{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "tensor 'w'",
                  "span 8 bytes but dtype F32 and its shape need 12");
    expect_reject("{\"w\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[0,4]}}", 4, "need 8");
    expect_reject("{\"w\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[4,2]}}", 4, "end before they begin");
    expect_reject("{\"w\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0]}}", 2, "\"data_offsets\" must be");
    expect_reject("{\"w\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,-2]}}", 2, "\"data_offsets\" must be");
    expect_reject("{\"w\":{\"dtype\":\"U8\",\"shape\":[-2],\"data_offsets\":[0,2]}}", 2,
                  "shape[0] is not a non-negative integer");
    expect_reject("{\"w\":{\"dtype\":\"U8\",\"shape\":[1.5],\"data_offsets\":[0,2]}}", 2, "shape[0]");
    expect_reject("{\"w\":{\"dtype\":\"U8\",\"shape\":\"2\",\"data_offsets\":[0,2]}}", 2, "\"shape\"");
    expect_reject("{\"w\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", 1,
                  "rank 9 exceeds");
    expect_reject("{\"w\":{\"dtype\":\"F64\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}", 8,
                  "shape overflows");
    expect_reject("{\"w\":{\"dtype\":\"F32\",\"shape\":[1000000],\"data_offsets\":[0,4000000]}}", 16,
                  "run past the end of the data section (16 bytes)");
}
END_TEST

START_TEST(duplicate_keys_are_rejected)
{
    expect_reject("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                  "\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}",
                  2, "duplicate tensor name 'a'");
    expect_reject("{\"__metadata__\":{},\"__metadata__\":{}}", 0, "duplicate key \"__metadata__\"");
    expect_reject("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0, "duplicate \"__metadata__\" key 'k'");
    expect_reject("{\"__metadata__\":{\"k\":1}}", 0, "value for key 'k' is not a string");
    expect_reject("{\"__metadata__\":[]}", 0, "\"__metadata__\" is not a JSON object");
}
END_TEST

START_TEST(mutated_files_never_crash_and_fail_cleanly)
{
    /* A cheap in-suite fuzz pass: flip bytes of a valid image, cut it, and
     * check that decode either succeeds or fails with a message. */
    size_t m = lt_frame_push();
    char path[512];
    tmp_path(path, sizeof path, "fz.safetensors");
    lt_tensor *ts[] = {lt_ones(2, SH(2, 3), LT_F32), lt_scalar(3, LT_I64), lt_ones(1, SH(4), LT_U8)};
    ck_assert_int_eq(lt_nn_safetensors_save(path, 3, (const char *[]){"w", "n", "u"}, ts, 1,
                                            (const char *[]){"k"}, (const char *[]){"v"}),
                     0);
    size_t len;
    unsigned char *orig = slurp(path, &len), *b = malloc(len);
    lt_rng r = lt_rng_new(5);
    int ok = 0, bad = 0;
    for (int it = 0; it < 3000; it++) {
        memcpy(b, orig, len);
        int flips = 1 + (int)(lt_rng_u64(&r) % 4);
        for (int k = 0; k < flips; k++)
            b[lt_rng_u64(&r) % len] = (unsigned char)lt_rng_u64(&r);
        size_t cut = (it % 7 == 0) ? (size_t)(lt_rng_u64(&r) % len) : len;
        lt_clear_error();
        lt_nn_tensor_file *f = lt_nn_safetensors_decode(b, cut, "fz");
        if (f) {
            ok++;
            for (int i = 0; i < lt_nn_tensor_file_count(f); i++)
                ck_assert_ptr_nonnull(lt_nn_tensor_file_tensor(f, i));
            lt_nn_tensor_file_free(f);
        } else {
            bad++;
            ck_assert(strncmp(lt_last_error(), "safetensors: fz: ", 17) == 0);
        }
    }
    ck_assert_int_gt(ok, 0);
    ck_assert_int_gt(bad, 0);
    free(b);
    free(orig);
    lt_frame_pop(m);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Saving: argument checks and atomicity                               */
/* ------------------------------------------------------------------ */

START_TEST(save_rejects_bad_names_and_leaves_nothing_behind)
{
    size_t m = lt_frame_push();
    char path[512];
    tmp_path(path, sizeof path, "x.safetensors");
    lt_tensor *t = lt_ones(1, SH(2), LT_F32);
    lt_tensor *two[] = {t, t};
    ck_assert_int_eq(lt_nn_safetensors_save(path, 2, (const char *[]){"a", "a"}, two, 0, NULL, NULL), -1);
    ck_assert_msg(strstr(lt_last_error(), "duplicate name 'a'"), "%s", lt_last_error());
    ck_assert_int_eq(lt_nn_safetensors_save(path, 1, (const char *[]){"__metadata__"}, two, 0, NULL, NULL), -1);
    ck_assert_msg(strstr(lt_last_error(), "reserved"), "%s", lt_last_error());
    ck_assert_int_eq(lt_nn_safetensors_save(path, 1, (const char *[]){"a"}, (lt_tensor *[]){NULL}, 0, NULL, NULL),
                     -1);
    ck_assert_int_eq(lt_nn_safetensors_save(path, 1, (const char *[]){"a"}, two, 2, (const char *[]){"k", "k"},
                                            (const char *[]){"1", "2"}),
                     -1);
    ck_assert_msg(strstr(lt_last_error(), "duplicate name 'k'"), "%s", lt_last_error());
    ck_assert_int_eq(access(path, F_OK), -1);
    char nodir[600];
    snprintf(nodir, sizeof nodir, "%s/no/such/dir/x.safetensors", tmp_dir);
    ck_assert_int_eq(lt_nn_safetensors_save(nodir, 1, (const char *[]){"a"}, two, 0, NULL, NULL), -1);
    ck_assert_msg(strstr(lt_last_error(), nodir) && strstr(lt_last_error(), "temporary file"), "%s", lt_last_error());
    /* a directory in the way: the rename fails, the temp file goes away */
    tmp_path(path, sizeof path, "adir");
    ck_assert_int_eq(mkdir(path, 0755), 0);
    ck_assert_int_eq(lt_nn_safetensors_save(path, 1, (const char *[]){"a"}, two, 0, NULL, NULL), -1);
    ck_assert_msg(strstr(lt_last_error(), "renaming"), "%s", lt_last_error());
    DIR *d = opendir(tmp_dir);
    struct dirent *e;
    while ((e = readdir(d)))
        ck_assert_msg(!strstr(e->d_name, ".tmp."), "left %s", e->d_name);
    closedir(d);
    lt_frame_pop(m);
}
END_TEST

/* Allocator that fails once its budget is spent (while armed). */
static long alloc_budget;
static bool alloc_armed;

static void *budget_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    (void)ud;
    (void)osize;
    if (nsize == 0) {
        free(ptr);
        return NULL;
    }
    if (alloc_armed && alloc_budget-- <= 0)
        return NULL;
    return aligned_alloc(64, (nsize + 63) & ~(size_t)63);
}

START_TEST(a_failed_save_leaves_the_old_file_intact_and_no_temp_file)
{
    size_t m = lt_frame_push();
    char path[512], ref[512];
    tmp_path(path, sizeof path, "ck.safetensors");
    tmp_path(ref, sizeof ref, "ref.safetensors");
    lt_tensor *old = lt_zeros(1, SH(4), LT_F32);
    ck_assert_int_eq(lt_nn_safetensors_save(path, 1, (const char *[]){"a"}, (lt_tensor *[]){old}, 0, NULL, NULL),
                     0);
    size_t old_len, new_len, len;
    unsigned char *old_bytes = slurp(path, &old_len);
    /* The new content: a contiguous tensor, then a transposed one whose
     * contiguous copy needs an allocation after the first is written. */
    lt_rng r = lt_rng_new(3);
    const char *names[] = {"a", "b"};
    lt_tensor *ts[] = {lt_rand_normal(&r, 1, SH(1000), 0, 1, LT_F32),
                             lt_transpose(lt_rand_normal(&r, 2, SH(30, 40), 0, 1, LT_F64), 0, 1)};
    ck_assert_int_eq(lt_nn_safetensors_save(ref, 2, names, ts, 0, NULL, NULL), 0);
    unsigned char *new_bytes = slurp(ref, &new_len);
    unlink(ref);

    int failures = 0, mid_write = 0;
    bool saved = false;
    for (long k = 0; k < 400 && !saved; k++) {
        lt_cache_trim();
        lt_set_allocator(budget_alloc, NULL);
        alloc_budget = k;
        alloc_armed = true;
        int rc = lt_nn_safetensors_save(path, 2, names, ts, 1, (const char *[]){"step"}, (const char *[]){"1"});
        alloc_armed = false;
        lt_cache_trim();
        lt_set_allocator(NULL, NULL);
        DIR *d = opendir(tmp_dir);
        struct dirent *e;
        while ((e = readdir(d)))
            ck_assert_msg(!strstr(e->d_name, ".tmp."), "budget %ld left %s", k, e->d_name);
        closedir(d);
        unsigned char *now = slurp(path, &len);
        if (rc < 0) {
            failures++;
            mid_write += strstr(lt_last_error(), "tensor 'b'") != NULL;
            ck_assert_msg(len == old_len && memcmp(now, old_bytes, len) == 0, "budget %ld: old file changed", k);
        } else {
            saved = true;
            ck_assert_uint_gt(len, new_len); /* the new one, with its metadata */
            lt_nn_tensor_file *f = lt_nn_safetensors_load(path);
            ck_assert_ptr_nonnull(f);
            ck_assert_str_eq(lt_nn_tensor_file_meta(f, "step"), "1");
            ck_assert(same_bytes(ts[1], lt_data(lt_nn_tensor_file_tensor(f, 1))));
            lt_nn_tensor_file_free(f);
        }
        free(now);
    }
    ck_assert(saved);
    ck_assert_int_gt(failures, 0);
    ck_assert_int_gt(mid_write, 0); /* some failures hit after data was written */
    free(old_bytes);
    free(new_bytes);
    lt_frame_pop(m);
}
END_TEST

/* A process killed mid-save leaves "PATH.tmp.PID.K" behind; the next
 * successful save of PATH removes those of dead processes only: not a
 * running process's (this one's), not another path's, not a name that
 * only looks alike. */
START_TEST(a_save_removes_the_temp_files_of_dead_processes)
{
    size_t m = lt_frame_push();
    char path[512], other[512], f[640];
    tmp_path(path, sizeof path, "stale.safetensors");
    tmp_path(other, sizeof other, "stale2.safetensors");
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0)
        _exit(0);
    ck_assert_int_eq(waitpid(child, NULL, 0), child); /* child's pid: no longer running */
    const char *dead[] = {"%s.tmp.%ld.0", "%s.tmp.%ld.17"};
    const char *kept[] = {"%s.tmp.%ld.x", "%s.tmp.%ld.", "%s.tmp.%ld"};
    for (int i = 0; i < 2; i++) {
        snprintf(f, sizeof f, dead[i], path, (long)child);
        spit(f, "partial", 7);
    }
    for (int i = 0; i < 3; i++) {
        snprintf(f, sizeof f, kept[i], path, (long)child);
        spit(f, "x", 1);
    }
    snprintf(f, sizeof f, "%s.tmp.%ld.3", path, (long)getpid()); /* running: may be mid-save */
    spit(f, "x", 1);
    snprintf(f, sizeof f, "%s.tmp.%ld.0", other, (long)child); /* another path's */
    spit(f, "x", 1);
    lt_tensor *t = lt_ones(1, SH(3), LT_F32);
    ck_assert_int_eq(lt_nn_safetensors_save(path, 1, (const char *[]){"t"}, (lt_tensor *[]){t}, 0, NULL, NULL), 0);
    for (int i = 0; i < 2; i++) {
        snprintf(f, sizeof f, dead[i], path, (long)child);
        ck_assert_msg(access(f, F_OK) != 0, "%s was not removed", f);
    }
    for (int i = 0; i < 3; i++) {
        snprintf(f, sizeof f, kept[i], path, (long)child);
        ck_assert_msg(access(f, F_OK) == 0 && unlink(f) == 0, "%s was removed", f);
    }
    snprintf(f, sizeof f, "%s.tmp.%ld.3", path, (long)getpid());
    ck_assert_msg(access(f, F_OK) == 0 && unlink(f) == 0, "a running process's %s was removed", f);
    snprintf(f, sizeof f, "%s.tmp.%ld.0", other, (long)child);
    ck_assert_msg(access(f, F_OK) == 0 && unlink(f) == 0, "another path's %s was removed", f);
    lt_nn_tensor_file *tf = lt_nn_safetensors_load(path);
    ck_assert_ptr_nonnull(tf);
    lt_nn_tensor_file_free(tf);
    unlink(path);
    lt_frame_pop(m);
}
END_TEST

START_TEST(loading_under_allocation_failures_leaks_nothing)
{
    size_t len;
    unsigned char *b = slurp(FIX "torch_state_dict.safetensors", &len);
    lt_frame_pop(0);
    lt_cache_trim();
    lt_mem_stats before = lt_mem_stats_get();
    bool done = false;
    for (long k = 0; k < 200 && !done; k++) {
        lt_set_allocator(budget_alloc, NULL);
        alloc_budget = k;
        alloc_armed = true;
        lt_nn_tensor_file *f = lt_nn_safetensors_decode(b, len, "oom");
        alloc_armed = false;
        if (f)
            done = true;
        else
            ck_assert_msg(strstr(lt_last_error(), "out of memory"), "budget %ld: %s", k, lt_last_error());
        lt_nn_tensor_file_free(f);
        lt_frame_pop(0);
        lt_cache_trim();
        lt_set_allocator(NULL, NULL);
        lt_mem_stats after = lt_mem_stats_get();
        ck_assert_uint_eq(after.live_blocks, before.live_blocks);
        ck_assert_uint_eq(after.live_tensors, before.live_tensors);
    }
    ck_assert(done);
    free(b);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Loading into existing tensors                                       */
/* ------------------------------------------------------------------ */

/* A file with a (2), b (2,3), c (1), fc.weight (10,4), fc.bias (10). */
static lt_nn_tensor_file *sample_file(void)
{
    char path[512];
    tmp_path(path, sizeof path, "sd.safetensors");
    size_t m = lt_frame_push();
    lt_tensor *ts[] = {lt_full(1, SH(2), 1.5, LT_F64), lt_arange(0, 6, 1, LT_F32), lt_ones(1, SH(1), LT_F32),
                             lt_full(2, SH(10, 4), 7, LT_F32), lt_full(1, SH(10), 8, LT_F32)};
    ts[1] = lt_reshape(ts[1], 2, SH(2, 3));
    const char *names[] = {"a", "b", "c", "fc.weight", "fc.bias"};
    ck_assert_int_eq(lt_nn_safetensors_save(path, 5, names, ts, 0, NULL, NULL), 0);
    lt_frame_pop(m);
    lt_nn_tensor_file *f = lt_nn_safetensors_load(path);
    ck_assert_ptr_nonnull(f);
    return f;
}

START_TEST(strict_load_lists_every_missing_unexpected_and_misshaped_key)
{
    size_t m = lt_frame_push();
    lt_nn_tensor_file *f = sample_file();
    lt_tensor *a = lt_zeros(1, SH(2), LT_F32), *b = lt_zeros(2, SH(3, 2), LT_F32), *d = lt_zeros(1, SH(1), LT_F32),
              *e = lt_zeros(1, SH(1), LT_F32);
    const char *names[] = {"a", "b", "d", "e"};
    lt_tensor *dst[] = {a, b, d, e};
    lt_nn_load_report rep;
    ck_assert_int_eq(lt_nn_load_into(f, 4, names, dst, NULL, &rep), -1);
    const char *msg = lt_last_error();
    ck_assert_msg(strstr(msg, "sd.safetensors"), "%s", msg);
    ck_assert_msg(strstr(msg, "strict load failed (2 missing, 3 unexpected, 1 mis-shaped)"), "%s", msg);
    ck_assert_msg(strstr(msg, "missing: d, e"), "%s", msg);
    ck_assert_msg(strstr(msg, "unexpected: c, fc.weight, fc.bias"), "%s", msg);
    ck_assert_msg(strstr(msg, "shape mismatch: b (file (2,3), model (3,2))"), "%s", msg);
    ck_assert_int_eq(rep.missing, 2);
    ck_assert_int_eq(rep.unexpected, 3);
    ck_assert_int_eq(rep.mismatched, 1);
    ck_assert_int_eq(rep.loaded, 0);
    ck_assert_ptr_nonnull(strstr(rep.detail, "missing: d, e"));
    lt_nn_load_report_free(&rep);
    ck_assert_ptr_null(rep.detail);
    /* nothing written on failure, not even the matching "a" */
    ck_assert(lt_item_at(a, 0) == 0 && lt_item_at(a, 1) == 0);
    lt_nn_tensor_file_free(f);
    lt_frame_pop(m);
}
END_TEST

START_TEST(strict_load_message_is_cut_but_the_report_lists_everything)
{
    size_t m = lt_frame_push();
    lt_nn_tensor_file *f = sample_file();
    enum { N = 120 };
    char buf[N][32];
    const char *names[N];
    lt_tensor *dst[N];
    for (int i = 0; i < N; i++) {
        snprintf(buf[i], sizeof buf[i], "layer%d.conv.weight", i);
        names[i] = buf[i];
        dst[i] = lt_zeros(1, SH(1), LT_F32);
    }
    lt_nn_load_report rep;
    ck_assert_int_eq(lt_nn_load_into(f, N, names, dst, NULL, &rep), -1);
    ck_assert_msg(strstr(lt_last_error(), "full list in the load report"), "%s", lt_last_error());
    ck_assert_int_eq(rep.missing, N);
    ck_assert_ptr_nonnull(strstr(rep.detail, "layer119.conv.weight"));
    lt_nn_load_report_free(&rep);
    lt_nn_tensor_file_free(f);
    lt_frame_pop(m);
}
END_TEST

START_TEST(non_strict_load_copies_the_matches_and_counts_the_rest)
{
    size_t m = lt_frame_push();
    lt_nn_tensor_file *f = sample_file();
    lt_tensor *a = lt_zeros(1, SH(2), LT_F32), *b = lt_zeros(2, SH(3, 2), LT_F32), *d = lt_zeros(1, SH(1), LT_F32);
    lt_ag_set_requires_grad(a, true);
    const char *names[] = {"a", "b", "d"};
    lt_tensor *dst[] = {a, b, d};
    lt_nn_load_opts o = {.strict = false};
    lt_nn_load_report rep;
    ck_assert_msg(lt_nn_load_into(f, 3, names, dst, &o, &rep) == 0, "%s", lt_last_error());
    ck_assert_int_eq(rep.loaded, 1);
    ck_assert_int_eq(rep.missing, 1);
    ck_assert_int_eq(rep.mismatched, 1);
    ck_assert_int_eq(rep.unexpected, 3);
    lt_nn_load_report_free(&rep);
    /* F64 1.5 converted into the f32 parameter, in place, still a leaf */
    ck_assert(((float *)lt_data(a))[0] == 1.5f && ((float *)lt_data(a))[1] == 1.5f);
    ck_assert(lt_ag_is_leaf(a) && lt_ag_requires_grad(a));
    ck_assert(lt_item_at(b, 0) == 0);
    lt_nn_tensor_file_free(f);
    lt_frame_pop(m);
}
END_TEST

START_TEST(skip_prefix_loads_a_backbone_with_a_new_head)
{
    size_t m = lt_frame_push();
    lt_nn_tensor_file *f = sample_file();
    /* a fine-tuning model: 3 classes instead of 10 */
    lt_tensor *a = lt_zeros(1, SH(2), LT_F64), *b = lt_zeros(2, SH(2, 3), LT_F32), *c = lt_zeros(1, SH(1), LT_F32),
              *fw = lt_full(2, SH(3, 4), -1, LT_F32), *fb = lt_full(1, SH(3), -1, LT_F32);
    /* b written through a transposed (non-contiguous) view */
    lt_tensor *bt_base = lt_zeros(2, SH(3, 2), LT_F32), *bt = lt_transpose(bt_base, 0, 1);
    const char *names[] = {"a", "b", "c", "fc.weight", "fc.bias"};
    lt_tensor *dst[] = {a, bt, c, fw, fb};
    (void)b;
    const char *skip[] = {"fc."};
    lt_nn_load_opts o = {.strict = true, .n_skip_prefixes = 1, .skip_prefixes = skip};
    lt_nn_load_report rep;
    ck_assert_msg(lt_nn_load_into(f, 5, names, dst, &o, &rep) == 0, "%s", lt_last_error());
    ck_assert_int_eq(rep.loaded, 3);
    ck_assert_int_eq(rep.skipped, 2);
    ck_assert_int_eq(rep.unexpected + rep.missing + rep.mismatched, 0);
    ck_assert_str_eq(rep.detail, "");
    lt_nn_load_report_free(&rep);
    ck_assert(lt_item_at(a, 1) == 1.5);
    for (int i = 0; i < 6; i++)
        ck_assert(lt_item_at(bt, i) == i); /* b = arange(6) as (2,3) */
    ck_assert(lt_item_at(bt_base, 1) == 3); /* base[0][1] = bt[1][0] = 3 */
    ck_assert(lt_item_at(fw, 0) == -1 && lt_item_at(fb, 2) == -1);
    /* without the skip, strict fails on the head */
    ck_assert_int_eq(lt_nn_load_into(f, 5, names, dst, NULL, NULL), -1);
    ck_assert_msg(strstr(lt_last_error(), "shape mismatch: fc.weight (file (10,4), model (3,4)), fc.bias"), "%s",
                  lt_last_error());
    lt_nn_tensor_file_free(f);
    lt_frame_pop(m);
}
END_TEST

START_TEST(load_into_refuses_non_leaf_destinations)
{
    size_t m = lt_frame_push();
    lt_nn_tensor_file *f = sample_file();
    lt_tensor *x = lt_ag_set_requires_grad(lt_zeros(1, SH(2), LT_F32), true);
    lt_tensor *y = lt_mul_scalar(x, 2);
    ck_assert_int_eq(lt_nn_load_into(f, 1, (const char *[]){"a"}, (lt_tensor *[]){y}, NULL, NULL), -1);
    ck_assert_msg(strstr(lt_last_error(), "'a' is not a leaf"), "%s", lt_last_error());
    ck_assert_int_eq(lt_nn_load_into(NULL, 0, NULL, NULL, NULL, NULL), -1);
    lt_nn_tensor_file_free(f);
    lt_frame_pop(m);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("checkpoint");
    TCase *rt = tcase_create("round_trip");
    tcase_add_checked_fixture(rt, tmp_setup, tmp_teardown);
    tcase_add_test(rt, save_then_load_is_bitwise_for_every_dtype_and_layout);
    tcase_add_test(rt, saved_bytes_equal_the_reference_writer);
    tcase_add_test(rt, metadata_round_trips_with_escapes_and_utf8);
    tcase_add_test(rt, loads_a_state_dict_written_like_safetensors_torch_save_file);
    suite_add_tcase(s, rt);
    TCase *rej = tcase_create("reject");
    tcase_add_checked_fixture(rej, tmp_setup, tmp_teardown);
    tcase_set_timeout(rej, 60);
    tcase_add_test(rej, truncated_data_is_rejected_naming_file_and_tensor);
    tcase_add_test(rej, overlapping_and_gapped_offsets_are_rejected);
    tcase_add_test(rej, unknown_dtypes_are_rejected);
    tcase_add_test(rej, non_json_headers_are_rejected);
    tcase_add_test(rej, offsets_that_disagree_with_shape_and_dtype_are_rejected);
    tcase_add_test(rej, duplicate_keys_are_rejected);
    tcase_add_test(rej, mutated_files_never_crash_and_fail_cleanly);
    suite_add_tcase(s, rej);
    TCase *len = tcase_create("header_length");
    tcase_add_test(len, bad_header_lengths_are_rejected);
    suite_add_tcase(s, len);
    TCase *sv = tcase_create("save");
    tcase_add_checked_fixture(sv, tmp_setup, tmp_teardown);
    tcase_set_timeout(sv, 60);
    tcase_add_test(sv, save_rejects_bad_names_and_leaves_nothing_behind);
    tcase_add_test(sv, a_failed_save_leaves_the_old_file_intact_and_no_temp_file);
    tcase_add_test(sv, a_save_removes_the_temp_files_of_dead_processes);
    tcase_add_test(sv, loading_under_allocation_failures_leaks_nothing);
    suite_add_tcase(s, sv);
    TCase *li = tcase_create("load_into");
    tcase_add_checked_fixture(li, tmp_setup, tmp_teardown);
    tcase_add_test(li, strict_load_lists_every_missing_unexpected_and_misshaped_key);
    tcase_add_test(li, strict_load_message_is_cut_but_the_report_lists_everything);
    tcase_add_test(li, non_strict_load_copies_the_matches_and_counts_the_rest);
    tcase_add_test(li, skip_prefix_loads_a_backbone_with_a_new_head);
    tcase_add_test(li, load_into_refuses_non_leaf_destinations);
    suite_add_tcase(s, li);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
