/*
 * test_data.c: Check suite for data/ (npy, IDX, image codecs, masks, the
 * IN-9 / plain / RIVAL10 listings and the bundled benchmark generator;
 * transforms and the loader are in test_loader.c).
 *
 * Runs from the repository root (fixtures under tests/fixtures/). Files the
 * tests write go to a mkdtemp directory that is removed afterwards.
 * Expected values come from the NumPy script that wrote the fixtures
 * (tests/fixtures/make_npy_fixtures.py), from bytes written by hand here, or
 * from round-trip identities.
 */
#include <libtensor/data.h>
#include <libtensor/tensor.h>

#include <check.h>
#include <cjson/cJSON.h>
#include <ftw.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#define FIX "tests/fixtures/npy/"

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

static char tmp_dir[256];

static void tmp_setup(void)
{
    snprintf(tmp_dir, sizeof tmp_dir, "%s/lt_data_XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
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

static void tmp_teardown(void)
{
    nftw(tmp_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* tmp_dir/name into buf. */
static char *tmp_path(char *buf, size_t n, const char *name)
{
    snprintf(buf, n, "%s/%s", tmp_dir, name);
    return buf;
}

static void write_bytes(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

/* Whole file into a malloc'd buffer. */
static unsigned char *read_bytes(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)sz + 1);
    ck_assert_ptr_nonnull(b);
    ck_assert_uint_eq(fread(b, 1, (size_t)sz, f), (size_t)sz);
    fclose(f);
    *n = (size_t)sz;
    return b;
}

/* The last error mentions `what` (a path or "<memory>"). */
#define ck_assert_error_names(what)                                                          \
    do {                                                                                     \
        ck_assert_msg(strstr(lt_last_error(), (what)) != NULL,                               \
                      "error \"%s\" does not name \"%s\"", lt_last_error(), (what));        \
    } while (0)

#define ck_assert_error_has(text)                                                            \
    do {                                                                                     \
        ck_assert_msg(strstr(lt_last_error(), (text)) != NULL,                               \
                      "error \"%s\" does not say \"%s\"", lt_last_error(), (text));         \
    } while (0)

static void assert_shape(const lt_tensor *t, int nd, const int64_t *shape)
{
    ck_assert_int_eq(lt_ndim(t), nd);
    for (int i = 0; i < nd; i++)
        ck_assert_int_eq(lt_shape(t)[i], shape[i]);
}

/* Prefix "\x93NUMPY" v1.0 + a header dict, padded to 64 bytes, + data. */
static size_t make_npy(unsigned char *out, size_t cap, const char *dict, const void *data,
                       size_t ndata)
{
    size_t dl = strlen(dict);
    size_t total = (10 + dl + 1 + 63) / 64 * 64;
    ck_assert_uint_le(total + ndata, cap);
    memcpy(out, "\x93NUMPY\x01\x00", 8);
    size_t hl = total - 10;
    out[8] = (unsigned char)(hl & 0xff);
    out[9] = (unsigned char)(hl >> 8);
    memcpy(out + 10, dict, dl);
    memset(out + 10 + dl, ' ', hl - dl - 1);
    out[total - 1] = '\n';
    if (ndata)
        memcpy(out + total, data, ndata);
    return total + ndata;
}

/* ------------------------------------------------------------------ */
/* npy: files written by NumPy                                         */
/* ------------------------------------------------------------------ */

START_TEST(npy_reads_numpy_v1_f4_c_order)
{
    size_t m = lt_frame_push();
    lt_tensor *t = lt_data_npy_read(FIX "v1_f4.npy");
    ck_assert_msg(t != NULL, "%s", lt_last_error());
    ck_assert_int_eq(lt_dtype_of(t), LT_F32);
    assert_shape(t, 2, (int64_t[]){2, 3});
    const float want[6] = {-1.0f, -0.5f, 0.0f, 0.5f, 1.0f, 1.5f};
    ck_assert_mem_eq(lt_data(t), want, sizeof want);
    lt_frame_pop(m);
}
END_TEST

START_TEST(npy_reads_numpy_v2_f8)
{
    size_t m = lt_frame_push();
    lt_tensor *t = lt_data_npy_read(FIX "v2_f8.npy");
    ck_assert_msg(t != NULL, "%s", lt_last_error());
    ck_assert_int_eq(lt_dtype_of(t), LT_F64);
    assert_shape(t, 1, (int64_t[]){3});
    const double want[3] = {1.5, -2.25, 1e300};
    ck_assert_mem_eq(lt_data(t), want, sizeof want);
    lt_frame_pop(m);
}
END_TEST

START_TEST(npy_reads_numpy_v3_i8_extremes)
{
    size_t m = lt_frame_push();
    lt_tensor *t = lt_data_npy_read(FIX "v3_i8.npy");
    ck_assert_msg(t != NULL, "%s", lt_last_error());
    ck_assert_int_eq(lt_dtype_of(t), LT_I64);
    assert_shape(t, 2, (int64_t[]){2, 2});
    const int64_t want[4] = {INT64_MIN, 1, 2, INT64_MAX};
    ck_assert_mem_eq(lt_data(t), want, sizeof want);
    lt_frame_pop(m);
}
END_TEST

START_TEST(npy_header_info_reports_version_order_and_dtype)
{
    size_t n;
    unsigned char *b = read_bytes(FIX "v3_i8.npy", &n);
    lt_data_npy_info info;
    ck_assert_int_eq(lt_data_npy_parse_header(b, n, "v3", &info), 0);
    ck_assert_int_eq(info.major, 3);
    ck_assert_int_eq(info.minor, 0);
    ck_assert_int_eq(info.byteorder, '<');
    ck_assert_int_eq(info.kind, 'i');
    ck_assert_int_eq(info.itemsize, 8);
    ck_assert(!info.fortran_order);
    ck_assert_int_eq(info.numel, 4);
    ck_assert_uint_eq(info.data_offset % 64, 0);
    ck_assert_uint_eq(info.data_offset + info.data_bytes, n);
    free(b);
    b = read_bytes(FIX "fortran_be_i8.npy", &n);
    ck_assert_int_eq(lt_data_npy_parse_header(b, n, "f", &info), 0);
    ck_assert_int_eq(info.major, 1);
    ck_assert_int_eq(info.byteorder, '>');
    ck_assert(info.fortran_order);
    ck_assert_int_eq(info.dtype, LT_I64);
    free(b);
}
END_TEST

START_TEST(npy_reads_numpy_big_endian)
{
    size_t m = lt_frame_push();
    lt_tensor *t = lt_data_npy_read(FIX "be_i4.npy");
    ck_assert_msg(t != NULL, "%s", lt_last_error());
    ck_assert_int_eq(lt_dtype_of(t), LT_I64);
    assert_shape(t, 2, (int64_t[]){2, 3});
    const int64_t wi[6] = {INT32_MIN, -1, 0, 1, 65536, INT32_MAX};
    ck_assert_mem_eq(lt_data(t), wi, sizeof wi);

    t = lt_data_npy_read(FIX "be_f8.npy");
    ck_assert_msg(t != NULL, "%s", lt_last_error());
    ck_assert_int_eq(lt_dtype_of(t), LT_F64);
    const double wd[2] = {0.1, -3e-300};
    ck_assert_mem_eq(lt_data(t), wd, sizeof wd);

    t = lt_data_npy_read(FIX "be_f4.npy");
    ck_assert_msg(t != NULL, "%s", lt_last_error());
    ck_assert_int_eq(lt_dtype_of(t), LT_F32);
    const float wf[3] = {0.25f, -7.5f, 3.4e38f};
    ck_assert_mem_eq(lt_data(t), wf, sizeof wf);
    lt_frame_pop(m);
}
END_TEST

START_TEST(npy_reads_fortran_order_into_c_order)
{
    size_t m = lt_frame_push();
    lt_tensor *t = lt_data_npy_read(FIX "fortran_f4.npy");
    ck_assert_msg(t != NULL, "%s", lt_last_error());
    assert_shape(t, 3, (int64_t[]){2, 3, 4});
    ck_assert(lt_is_contiguous(t));
    const float *d = lt_data(t);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 4; k++)
                ck_assert_float_eq(d[(i * 3 + j) * 4 + k], (float)(100 * i + 10 * j + k));

    t = lt_data_npy_read(FIX "fortran_be_i8.npy");
    ck_assert_msg(t != NULL, "%s", lt_last_error());
    assert_shape(t, 2, (int64_t[]){3, 2});
    const int64_t want[6] = {0, -1, 10, 9, 20, 19};
    ck_assert_mem_eq(lt_data(t), want, sizeof want);
    lt_frame_pop(m);
}
END_TEST

START_TEST(npy_reads_bool_i1_u1)
{
    size_t m = lt_frame_push();
    lt_tensor *t = lt_data_npy_read(FIX "bool.npy");
    ck_assert_msg(t != NULL, "%s", lt_last_error());
    ck_assert_int_eq(lt_dtype_of(t), LT_U8);
    assert_shape(t, 2, (int64_t[]){2, 3});
    const uint8_t wb[6] = {1, 0, 1, 0, 0, 1};
    ck_assert_mem_eq(lt_data(t), wb, sizeof wb);

    t = lt_data_npy_read(FIX "i1.npy");
    ck_assert_msg(t != NULL, "%s", lt_last_error());
    ck_assert_int_eq(lt_dtype_of(t), LT_I64);
    const int64_t wi[4] = {-128, -1, 0, 127};
    ck_assert_mem_eq(lt_data(t), wi, sizeof wi);

    t = lt_data_npy_read(FIX "u1.npy");
    ck_assert_msg(t != NULL, "%s", lt_last_error());
    ck_assert_int_eq(lt_dtype_of(t), LT_U8);
    const uint8_t wu[4] = {0, 1, 128, 255};
    ck_assert_mem_eq(lt_data(t), wu, sizeof wu);

    t = lt_data_npy_read(FIX "mask_u1.npy");
    ck_assert_msg(t != NULL, "%s", lt_last_error());
    assert_shape(t, 2, (int64_t[]){4, 5});
    const uint8_t *d = lt_data(t);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 5; j++)
            ck_assert_int_eq(d[i * 5 + j], (i >= 1 && i <= 2 && j >= 1 && j <= 3) ? 1 : 0);
    lt_frame_pop(m);
}
END_TEST

START_TEST(npy_reads_scalar_and_empty)
{
    size_t m = lt_frame_push();
    lt_tensor *t = lt_data_npy_read(FIX "scalar_f8.npy");
    ck_assert_msg(t != NULL, "%s", lt_last_error());
    ck_assert_int_eq(lt_ndim(t), 0);
    ck_assert_double_eq(lt_item(t), 3.5);

    t = lt_data_npy_read(FIX "empty_f4.npy");
    ck_assert_msg(t != NULL, "%s", lt_last_error());
    assert_shape(t, 2, (int64_t[]){0, 3});
    ck_assert_int_eq(lt_numel(t), 0);
    lt_frame_pop(m);
}
END_TEST

/* ------------------------------------------------------------------ */
/* npy: round trips                                                    */
/* ------------------------------------------------------------------ */

START_TEST(npy_round_trip_is_exact_for_every_dtype)
{
    size_t m = lt_frame_push();
    char p[512];
    const float f[6] = {0.0f, -0.0f, 1e-45f, -3.4028235e38f, INFINITY, NAN};
    const double d[6] = {5e-324, -1.0 / 3.0, 1e308, -INFINITY, 0.1, NAN};
    const int64_t i[6] = {INT64_MIN, -1, 0, 1, 1LL << 40, INT64_MAX};
    const uint8_t u[6] = {0, 1, 127, 128, 254, 255};
    const void *src[4] = {f, d, i, u};
    const lt_dtype dts[4] = {LT_F32, LT_F64, LT_I64, LT_U8};
    for (int k = 0; k < 4; k++) {
        lt_tensor *t = lt_from_data(src[k], 2, (int64_t[]){3, 2}, dts[k]);
        ck_assert_ptr_nonnull(t);
        tmp_path(p, sizeof p, "rt.npy");
        ck_assert_msg(lt_data_npy_write(p, t) == 0, "%s", lt_last_error());
        lt_tensor *r = lt_data_npy_read(p);
        ck_assert_msg(r != NULL, "%s", lt_last_error());
        ck_assert_int_eq(lt_dtype_of(r), dts[k]);
        assert_shape(r, 2, (int64_t[]){3, 2});
        /* bitwise, so NaN, -0.0 and denormals count */
        ck_assert_mem_eq(lt_data(r), src[k], 6 * lt_dtype_size(dts[k]));
        size_t n;
        unsigned char *b = read_bytes(p, &n);
        lt_data_npy_info info;
        ck_assert_int_eq(lt_data_npy_parse_header(b, n, p, &info), 0);
        ck_assert_uint_eq(info.data_offset % 64, 0);
        ck_assert_uint_eq(n, info.data_offset + 6 * lt_dtype_size(dts[k]));
        free(b);
    }
    lt_frame_pop(m);
}
END_TEST

START_TEST(npy_write_of_a_view_writes_its_logical_order)
{
    size_t m = lt_frame_push();
    char p[512];
    lt_tensor *a = lt_arange(0, 6, 1, LT_F64);
    lt_tensor *v = lt_permute(lt_reshape(a, 2, (int64_t[]){2, 3}), (int[]){1, 0}); /* (3,2) */
    ck_assert_ptr_nonnull(v);
    ck_assert_int_eq(lt_data_npy_write(tmp_path(p, sizeof p, "view.npy"), v), 0);
    lt_tensor *r = lt_data_npy_read(p);
    ck_assert_msg(r != NULL, "%s", lt_last_error());
    assert_shape(r, 2, (int64_t[]){3, 2});
    const double want[6] = {0, 3, 1, 4, 2, 5};
    ck_assert_mem_eq(lt_data(r), want, sizeof want);

    /* 0-d and 1-d shapes are written "()" and "(n,)" */
    lt_tensor *s = lt_scalar(2.5, LT_F32);
    ck_assert_int_eq(lt_data_npy_write(p, s), 0);
    r = lt_data_npy_read(p);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(lt_ndim(r), 0);
    ck_assert_double_eq(lt_item(r), 2.5);
    lt_tensor *o = lt_arange(0, 4, 1, LT_U8);
    ck_assert_int_eq(lt_data_npy_write(p, o), 0);
    size_t n;
    unsigned char *b = read_bytes(p, &n);
    ck_assert_ptr_nonnull(memmem(b, n, "'shape': (4,), }", 16));
    ck_assert_ptr_nonnull(memmem(b, n, "'descr': '|u1'", 14));
    free(b);
    lt_frame_pop(m);
}
END_TEST

START_TEST(npy_header_parser_accepts_numpy_variants)
{
    /* double quotes, key order, spacing, Python 2 'L' suffix, no trailing comma */
    size_t m = lt_frame_push();
    unsigned char buf[256];
    const float two[2] = {1.0f, 2.0f};
    size_t n = make_npy(buf, sizeof buf,
                        "{\"shape\":(2L,),\"fortran_order\" : False ,  \"descr\":\"<f4\"}", two,
                        sizeof two);
    lt_tensor *t = lt_data_npy_decode(buf, n, "variant");
    ck_assert_msg(t != NULL, "%s", lt_last_error());
    assert_shape(t, 1, (int64_t[]){2});
    ck_assert_mem_eq(lt_data(t), two, sizeof two);
    /* bytes after the data are ignored (np.load does the same) */
    const float three[3] = {1.0f, 2.0f, 99.0f};
    n = make_npy(buf, sizeof buf, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }",
                 three, sizeof three);
    t = lt_data_npy_decode(buf, n, "extra");
    ck_assert_msg(t != NULL, "%s", lt_last_error());
    ck_assert_int_eq(lt_numel(t), 2);
    lt_frame_pop(m);
}
END_TEST

/* ------------------------------------------------------------------ */
/* npy: corrupt input                                                  */
/* ------------------------------------------------------------------ */

/* Decoding dict+data must fail with an error naming the input and
 * containing `why`. */
static void expect_bad_npy(const char *dict, const void *data, size_t nd, const char *why)
{
    unsigned char buf[1024];
    size_t n = make_npy(buf, sizeof buf, dict, data, nd);
    size_t m = lt_frame_push();
    lt_clear_error();
    lt_tensor *t = lt_data_npy_decode(buf, n, "bad.npy");
    ck_assert_msg(t == NULL, "accepted header %s", dict);
    ck_assert_error_names("npy_read: bad.npy: ");
    ck_assert_error_has(why);
    lt_frame_pop(m);
}

START_TEST(npy_bad_header_dicts_are_errors)
{
    const uint8_t z[64] = {0};
    expect_bad_npy("{'descr': '<f4', 'fortran_order': False}", z, 4, "missing key 'shape'");
    expect_bad_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}", z, 4,
                   "unexpected or repeated key 'x'");
    expect_bad_npy("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}", z,
                   4, "repeated key 'descr'");
    expect_bad_npy("{descr: '<f4', 'fortran_order': False, 'shape': (1,)}", z, 4,
                   "expected a quoted string");
    expect_bad_npy("{'descr': '<f4', 'fortran_order': Maybe, 'shape': (1,)}", z, 4,
                   "not True or False");
    expect_bad_npy("{'descr': '<f4', 'fortran_order': Falsey, 'shape': (1,)}", z, 4,
                   "not True or False");
    expect_bad_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,)", z, 4, "bad header dict");
    expect_bad_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,)} x", z, 4,
                   "text after the closing");
    expect_bad_npy("{'descr': '<f4 , 'fortran_order': False, 'shape': (1,)}", z, 4, "bad header dict");
    expect_bad_npy("{'descr': '<f4', 'fortran_order': False 'shape': (1,)}", z, 4,
                   "expected ',' or '}'");
    expect_bad_npy("", z, 4, "expected '{'");
}
END_TEST

START_TEST(npy_bad_shapes_are_errors)
{
    const uint8_t z[64] = {0};
    expect_bad_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}", z, 4,
                   "not a non-negative integer");
    expect_bad_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2)}", z, 8,
                   "without a trailing comma");
    expect_bad_npy("{'descr': '<f4', 'fortran_order': False, 'shape': [2]}", z, 8,
                   "not a tuple");
    expect_bad_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2.5)}", z, 24,
                   "expected ',' or ')'");
    expect_bad_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1)}", z,
                   4, "more than 8 dims");
    expect_bad_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}",
                   z, 4, "overflows");
    expect_bad_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296)}",
                   z, 4, "overflows");
    expect_bad_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (012,)}", z, 4,
                   "leading zero");
    /* found by fuzzing: a zero dim does not excuse the others overflowing */
    expect_bad_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 4294967296, 4294967296)}",
                   z, 0, "overflows");
    /* a huge but representable shape: refused before any allocation */
    expect_bad_npy("{'descr': '<f8', 'fortran_order': False, 'shape': (1000000, 1000000)}", z,
                   8, "data truncated");
}
END_TEST

START_TEST(npy_unknown_dtypes_are_errors)
{
    const uint8_t z[64] = {0};
    expect_bad_npy("{'descr': '<c16', 'fortran_order': False, 'shape': (1,)}", z, 16,
                   "unsupported dtype '<c16'");
    expect_bad_npy("{'descr': '<U5', 'fortran_order': False, 'shape': (1,)}", z, 20,
                   "unsupported dtype '<U5'");
    expect_bad_npy("{'descr': '<i2', 'fortran_order': False, 'shape': (1,)}", z, 2,
                   "unsupported dtype '<i2'");
    expect_bad_npy("{'descr': '|f4', 'fortran_order': False, 'shape': (1,)}", z, 4,
                   "byte order '|' on a 4-byte type");
    expect_bad_npy("{'descr': 'f4', 'fortran_order': False, 'shape': (1,)}", z, 4,
                   "unsupported dtype 'f4'");
    expect_bad_npy("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,)}", z, 4,
                   "structured");
    /* written by NumPy: complex64 */
    size_t m = lt_frame_push();
    ck_assert_ptr_null(lt_data_npy_read(FIX "c8.npy"));
    ck_assert_error_names(FIX "c8.npy");
    ck_assert_error_has("unsupported dtype '<c8'");
    lt_frame_pop(m);
}
END_TEST

START_TEST(npy_bad_magic_version_and_truncation_are_errors)
{
    size_t m = lt_frame_push();
    char p[512];
    size_t n;
    unsigned char *b = read_bytes(FIX "v1_f4.npy", &n);
    unsigned char *c = malloc(n);
    memcpy(c, b, n);

    c[1] = 'X';
    ck_assert_ptr_null(lt_data_npy_decode(c, n, "m.npy"));
    ck_assert_error_has("m.npy: not a .npy file (bad magic)");
    memcpy(c, b, n);
    c[6] = 4;
    ck_assert_ptr_null(lt_data_npy_decode(c, n, "v.npy"));
    ck_assert_error_has("v.npy: unsupported .npy format version 4.0");
    memcpy(c, b, n);
    c[8] = 0xff; /* header length beyond the file */
    ck_assert_ptr_null(lt_data_npy_decode(c, n, "h.npy"));
    ck_assert_error_has("h.npy: truncated header");

    /* every strict prefix of a valid file is an error, never a crash */
    for (size_t k = 0; k < n; k++) {
        lt_clear_error();
        ck_assert_msg(lt_data_npy_decode(b, k, "prefix") == NULL, "prefix %zu accepted", k);
        ck_assert_error_names("prefix");
    }
    ck_assert_ptr_nonnull(lt_data_npy_decode(b, n, "whole"));

    /* a file whose data is short names the file and the sizes */
    write_bytes(tmp_path(p, sizeof p, "short.npy"), b, n - 3);
    ck_assert_ptr_null(lt_data_npy_read(p));
    ck_assert_error_names(p);
    ck_assert_error_has("data truncated: shape (2,3) of <f4 needs 24 bytes after the header, the "
                        "file has 21");
    /* missing file */
    ck_assert_ptr_null(lt_data_npy_read(tmp_path(p, sizeof p, "nope.npy")));
    ck_assert_error_names(p);
    ck_assert_error_has("No such file");
    /* NULL buffer and memory name */
    ck_assert_ptr_null(lt_data_npy_decode(NULL, 0, NULL));
    ck_assert_error_names("<memory>");
    free(b);
    free(c);
    lt_frame_pop(m);
}
END_TEST

START_TEST(npy_header_byte_flips_never_crash)
{
    /* Every single-byte change of the prefix and header either decodes to
     * a tensor consistent with the header or fails with a named error. */
    size_t n;
    unsigned char *b = read_bytes(FIX "fortran_be_i8.npy", &n);
    unsigned char *c = malloc(n);
    const unsigned char vals[] = {0x00, 0x20, '\'', '(', ')', ',', '0', '9', 'L', '{', '}', 0xff};
    lt_data_npy_info info;
    ck_assert_int_eq(lt_data_npy_parse_header(b, n, "x", &info), 0);
    for (size_t pos = 0; pos < info.data_offset; pos++) {
        for (size_t v = 0; v < sizeof vals; v++) {
            memcpy(c, b, n);
            c[pos] = vals[v];
            size_t m = lt_frame_push();
            lt_clear_error();
            lt_tensor *t = lt_data_npy_decode(c, n, "flip");
            if (t)
                ck_assert_int_le(lt_numel(t) * 8, (int64_t)n);
            else
                ck_assert_error_names("npy_read: flip: ");
            lt_frame_pop(m);
        }
    }
    free(b);
    free(c);
}
END_TEST

START_TEST(npy_write_errors_name_the_file)
{
    size_t m = lt_frame_push();
    char p[512];
    lt_tensor *t = lt_zeros(1, (int64_t[]){3}, LT_F32);
    ck_assert_int_eq(lt_data_npy_write(tmp_path(p, sizeof p, "no/such/dir/x.npy"), t), -1);
    ck_assert_error_names(p);
    ck_assert_error_has("npy_write: ");
    /* NULL tensor keeps the earlier message */
    lt_set_error("earlier");
    ck_assert_int_eq(lt_data_npy_write(p, NULL), -1);
    ck_assert_str_eq(lt_last_error(), "earlier");
    lt_frame_pop(m);
}
END_TEST

/* ------------------------------------------------------------------ */
/* IDX                                                                 */
/* ------------------------------------------------------------------ */

/* An IDX header for type code `type` and the given dims (big-endian). */
static size_t idx_header(unsigned char *out, unsigned char type, int nd, const uint32_t *dims)
{
    out[0] = 0;
    out[1] = 0;
    out[2] = type;
    out[3] = (unsigned char)nd;
    for (int d = 0; d < nd; d++) {
        out[4 + 4 * d] = (unsigned char)(dims[d] >> 24);
        out[5 + 4 * d] = (unsigned char)(dims[d] >> 16);
        out[6 + 4 * d] = (unsigned char)(dims[d] >> 8);
        out[7 + 4 * d] = (unsigned char)dims[d];
    }
    return 4 + 4 * (size_t)nd;
}

/* u8 images (2,3,4), pixel value (7*i) mod 256, as in MNIST files. */
static size_t idx_images(unsigned char *out)
{
    size_t h = idx_header(out, 0x08, 3, (uint32_t[]){2, 3, 4});
    for (int i = 0; i < 24; i++)
        out[h + (size_t)i] = (unsigned char)(7 * i * 13 % 256);
    return h + 24;
}

static void write_gz(const char *path, const void *data, size_t n)
{
    gzFile g = gzopen(path, "wb");
    ck_assert_ptr_nonnull(g);
    ck_assert_int_eq(gzwrite(g, data, (unsigned)n), (int)n);
    ck_assert_int_eq(gzclose(g), Z_OK);
}

START_TEST(idx_reads_hand_written_u8_images_plain_and_gzipped)
{
    size_t m = lt_frame_push();
    char p[512];
    unsigned char buf[128];
    size_t n = idx_images(buf);
    for (int gz = 0; gz < 2; gz++) {
        tmp_path(p, sizeof p, gz ? "images-idx3-ubyte.gz" : "images-idx3-ubyte");
        if (gz)
            write_gz(p, buf, n);
        else
            write_bytes(p, buf, n);
        lt_tensor *t = lt_data_idx_read(p);
        ck_assert_msg(t != NULL, "%s", lt_last_error());
        ck_assert_int_eq(lt_dtype_of(t), LT_U8);
        assert_shape(t, 3, (int64_t[]){2, 3, 4});
        const uint8_t *d = lt_data(t);
        for (int i = 0; i < 24; i++)
            ck_assert_int_eq(d[i], 7 * i * 13 % 256);
    }
    /* labels (5,) */
    size_t h = idx_header(buf, 0x08, 1, (uint32_t[]){5});
    memcpy(buf + h, (uint8_t[]){9, 0, 0, 3, 255}, 5);
    write_gz(tmp_path(p, sizeof p, "labels.gz"), buf, h + 5);
    lt_tensor *l = lt_data_idx_read(p);
    ck_assert_msg(l != NULL, "%s", lt_last_error());
    assert_shape(l, 1, (int64_t[]){5});
    ck_assert_mem_eq(lt_data(l), ((uint8_t[]){9, 0, 0, 3, 255}), 5);
    lt_frame_pop(m);
}
END_TEST

START_TEST(idx_reads_every_element_type_big_endian)
{
    size_t m = lt_frame_push();
    unsigned char buf[128];
    /* i8 */
    size_t h = idx_header(buf, 0x09, 1, (uint32_t[]){3});
    memcpy(buf + h, (uint8_t[]){0x80, 0xff, 0x7f}, 3);
    lt_tensor *t = lt_data_idx_decode(buf, h + 3, "i8");
    ck_assert_msg(t != NULL, "%s", lt_last_error());
    ck_assert_int_eq(lt_dtype_of(t), LT_I64);
    ck_assert_mem_eq(lt_data(t), ((int64_t[]){-128, -1, 127}), 24);
    /* i16 */
    h = idx_header(buf, 0x0B, 1, (uint32_t[]){2});
    memcpy(buf + h, (uint8_t[]){0x80, 0x00, 0x01, 0x02}, 4);
    t = lt_data_idx_decode(buf, h + 4, "i16");
    ck_assert_msg(t != NULL, "%s", lt_last_error());
    ck_assert_mem_eq(lt_data(t), ((int64_t[]){-32768, 258}), 16);
    /* i32, (2,1) */
    h = idx_header(buf, 0x0C, 2, (uint32_t[]){2, 1});
    memcpy(buf + h, (uint8_t[]){0xff, 0xff, 0xff, 0xfe, 0x01, 0x00, 0x00, 0x00}, 8);
    t = lt_data_idx_decode(buf, h + 8, "i32");
    ck_assert_msg(t != NULL, "%s", lt_last_error());
    assert_shape(t, 2, (int64_t[]){2, 1});
    ck_assert_mem_eq(lt_data(t), ((int64_t[]){-2, 16777216}), 16);
    /* f32: 1.0 = 3f800000, -2.5 = c0200000 */
    h = idx_header(buf, 0x0D, 1, (uint32_t[]){2});
    memcpy(buf + h, (uint8_t[]){0x3f, 0x80, 0, 0, 0xc0, 0x20, 0, 0}, 8);
    t = lt_data_idx_decode(buf, h + 8, "f32");
    ck_assert_msg(t != NULL, "%s", lt_last_error());
    ck_assert_int_eq(lt_dtype_of(t), LT_F32);
    ck_assert_mem_eq(lt_data(t), ((float[]){1.0f, -2.5f}), 8);
    /* f64: 0.5 = 3fe0000000000000 */
    h = idx_header(buf, 0x0E, 1, (uint32_t[]){1});
    memcpy(buf + h, (uint8_t[]){0x3f, 0xe0, 0, 0, 0, 0, 0, 0}, 8);
    t = lt_data_idx_decode(buf, h + 8, "f64");
    ck_assert_msg(t != NULL, "%s", lt_last_error());
    ck_assert_double_eq(lt_item(t), 0.5);
    lt_frame_pop(m);
}
END_TEST

START_TEST(idx_bad_magic_dims_and_sizes_are_errors)
{
    size_t m = lt_frame_push();
    char p[512];
    unsigned char buf[128];
    size_t n = idx_images(buf);

    /* a bad magic number, in a file: names the file */
    unsigned char bad[128];
    memcpy(bad, buf, n);
    bad[0] = 0x1f; /* not zero */
    write_bytes(tmp_path(p, sizeof p, "bad-magic-idx3-ubyte"), bad, n);
    ck_assert_ptr_null(lt_data_idx_read(p));
    ck_assert_error_names(p);
    ck_assert_error_has("bad magic number 0x1f000803");
    /* unknown type code, gzipped */
    memcpy(bad, buf, n);
    bad[2] = 0x0A;
    write_gz(tmp_path(p, sizeof p, "bad-type.gz"), bad, n);
    ck_assert_ptr_null(lt_data_idx_read(p));
    ck_assert_error_names(p);
    ck_assert_error_has("bad magic number 0x00000a03");
    /* zero and too many dims */
    memcpy(bad, buf, n);
    bad[3] = 0;
    ck_assert_ptr_null(lt_data_idx_decode(bad, n, "nd0"));
    ck_assert_error_has("idx_read: nd0: bad number of dims 0");
    bad[3] = 9;
    ck_assert_ptr_null(lt_data_idx_decode(bad, n, "nd9"));
    ck_assert_error_has("nd9: bad number of dims 9");
    /* short and long data, short header */
    ck_assert_ptr_null(lt_data_idx_decode(buf, n - 1, "short"));
    ck_assert_error_has("short: size mismatch: the header's 24 elements of 1 bytes need 24 data "
                        "bytes, the file has 23");
    buf[n] = 0;
    ck_assert_ptr_null(lt_data_idx_decode(buf, n + 1, "long"));
    ck_assert_error_has("long: size mismatch");
    for (size_t k = 0; k < 16; k++) {
        ck_assert_ptr_null(lt_data_idx_decode(buf, k, "hdr"));
        ck_assert_error_names("idx_read: hdr: ");
    }
    /* dims whose product overflows, or is huge: no allocation, an error */
    size_t h = idx_header(bad, 0x08, 3, (uint32_t[]){0xffffffffu, 0xffffffffu, 0xffffffffu});
    ck_assert_ptr_null(lt_data_idx_decode(bad, h, "huge"));
    ck_assert_error_has("huge: bad dims: element count overflows");
    /* found by fuzzing: a zero dim does not excuse the others overflowing */
    h = idx_header(bad, 0x08, 4, (uint32_t[]){0, 0xffffffffu, 0xffffffffu, 0xffffffffu});
    ck_assert_ptr_null(lt_data_idx_decode(bad, h, "zero"));
    ck_assert_error_has("zero: bad dims: element count overflows");
    h = idx_header(bad, 0x0E, 2, (uint32_t[]){60000, 60000});
    ck_assert_ptr_null(lt_data_idx_decode(bad, h + 8, "big"));
    ck_assert_error_has("big: size mismatch");
    /* a missing file */
    ck_assert_ptr_null(lt_data_idx_read(tmp_path(p, sizeof p, "missing.gz")));
    ck_assert_error_names(p);
    lt_frame_pop(m);
}
END_TEST

START_TEST(idx_truncated_or_corrupt_gzip_is_an_error)
{
    size_t m = lt_frame_push();
    char p[512], q[512];
    unsigned char buf[4096];
    /* enough data that the compressed stream has a body to cut */
    size_t h = idx_header(buf, 0x08, 2, (uint32_t[]){40, 50});
    for (size_t i = 0; i < 2000; i++)
        buf[h + i] = (unsigned char)(i * i * 31 >> 3);
    write_gz(tmp_path(p, sizeof p, "full.gz"), buf, h + 2000);
    ck_assert_ptr_nonnull(lt_data_idx_read(p));
    size_t n;
    unsigned char *z = read_bytes(p, &n);
    ck_assert_uint_gt(n, 100);
    write_bytes(tmp_path(q, sizeof q, "cut.gz"), z, n / 2);
    ck_assert_ptr_null(lt_data_idx_read(q));
    ck_assert_error_names(q);
    /* flipped bytes in the deflate body: a CRC or stream error */
    z[n / 2] ^= 0x55;
    z[n / 2 + 1] ^= 0xaa;
    write_bytes(tmp_path(q, sizeof q, "flip.gz"), z, n);
    ck_assert_ptr_null(lt_data_idx_read(q));
    ck_assert_error_names(q);
    free(z);
    lt_frame_pop(m);
}
END_TEST

START_TEST(idx_reads_installed_fashion_mnist_if_present)
{
    /* Debian's dataset-fashion-mnist; values checked with Python's gzip. */
    const char *dir = "/usr/share/datasets/fashion-mnist/";
    char p[512];
    snprintf(p, sizeof p, "%st10k-labels-idx1-ubyte.gz", dir);
    if (access(p, R_OK) != 0)
        return;
    size_t m = lt_frame_push();
    lt_tensor *l = lt_data_idx_read(p);
    ck_assert_msg(l != NULL, "%s", lt_last_error());
    assert_shape(l, 1, (int64_t[]){10000});
    ck_assert_mem_eq(lt_data(l), ((uint8_t[]){9, 2, 1, 1, 6, 1, 4, 6, 5, 7}), 10);
    snprintf(p, sizeof p, "%st10k-images-idx3-ubyte.gz", dir);
    lt_tensor *im = lt_data_idx_read(p);
    ck_assert_msg(im != NULL, "%s", lt_last_error());
    assert_shape(im, 3, (int64_t[]){10000, 28, 28});
    const uint8_t *d = lt_data(im);
    long sum = 0;
    for (int i = 0; i < 784; i++)
        sum += d[i];
    ck_assert_int_eq(sum, 33456);
    lt_frame_pop(m);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Images                                                              */
/* ------------------------------------------------------------------ */

/* A (c,h,w) u8 image with every byte value spread over it (no structure a
 * lossless codec could exploit by accident). */
static lt_tensor *noise_image(int c, int h, int w)
{
    lt_tensor *t = lt_empty(3, (int64_t[]){c, h, w}, LT_U8);
    ck_assert_ptr_nonnull(t);
    uint8_t *d = lt_data(t);
    for (int k = 0; k < c; k++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                d[(k * h + y) * w + x] = (uint8_t)((x * 37 + y * 91 + k * 53) ^ (x * y));
    return t;
}

/* A smooth RGB image (3,48,64): horizontal and vertical ramps and a
 * low-frequency wave, the kind of content JPEG is made for. */
static lt_tensor *smooth_image(void)
{
    const int h = 48, w = 64;
    lt_tensor *t = lt_empty(3, (int64_t[]){3, h, w}, LT_U8);
    ck_assert_ptr_nonnull(t);
    uint8_t *d = lt_data(t);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            d[0 * h * w + y * w + x] = (uint8_t)(x * 4);
            d[1 * h * w + y * w + x] = (uint8_t)(y * 5);
            d[2 * h * w + y * w + x] = (uint8_t)lround(128 + 60 * sin(x / 8.0) * cos(y / 6.0));
        }
    return t;
}

START_TEST(png_round_trip_is_exact_for_1_to_4_channels)
{
    size_t m = lt_frame_push();
    char p[512];
    for (int c = 1; c <= 4; c++) {
        lt_tensor *t = noise_image(c, 17, 23);
        ck_assert_msg(lt_data_png_write(tmp_path(p, sizeof p, "rt.png"), t) == 0, "%s",
                      lt_last_error());
        lt_tensor *r = lt_data_image_read(p, 0);
        ck_assert_msg(r != NULL, "%s", lt_last_error());
        ck_assert_int_eq(lt_dtype_of(r), LT_U8);
        assert_shape(r, 3, (int64_t[]){c, 17, 23});
        ck_assert_mem_eq(lt_data(r), lt_data(t), (size_t)c * 17 * 23);
    }
    lt_frame_pop(m);
}
END_TEST

START_TEST(png_write_takes_views_2d_and_float_images)
{
    size_t m = lt_frame_push();
    char p[512];
    tmp_path(p, sizeof p, "v.png");
    /* a transposed view (3,23,17) -> written in logical order */
    lt_tensor *t = noise_image(3, 17, 23);
    lt_tensor *v = lt_permute(t, (int[]){0, 2, 1});
    ck_assert_int_eq(lt_data_png_write(p, v), 0);
    lt_tensor *r = lt_data_image_read(p, 3);
    ck_assert_msg(r != NULL, "%s", lt_last_error());
    assert_shape(r, 3, (int64_t[]){3, 23, 17});
    for (int64_t i = 0; i < lt_numel(v); i++)
        ck_assert_double_eq(lt_item_at(r, i), lt_item_at(v, i));
    /* (H,W) is one gray channel */
    lt_tensor *g = lt_select(t, 0, 1);
    ck_assert_int_eq(lt_data_png_write(p, g), 0);
    r = lt_data_image_read(p, 0);
    ck_assert_ptr_nonnull(r);
    assert_shape(r, 3, (int64_t[]){1, 17, 23});
    ck_assert_mem_eq(lt_data(r), (uint8_t *)lt_data(t) + 17 * 23, 17 * 23);
    /* f32 k/255 -> k exactly; out of range and NaN clamp */
    float f[6] = {0.0f, 1.0f / 255, 128.0f / 255, 1.0f, -0.5f, NAN};
    lt_tensor *ft = lt_from_data(f, 3, (int64_t[]){1, 2, 3}, LT_F32);
    ck_assert_int_eq(lt_data_png_write(p, ft), 0);
    r = lt_data_image_read(p, 1);
    ck_assert_ptr_nonnull(r);
    ck_assert_mem_eq(lt_data(r), ((uint8_t[]){0, 1, 128, 255, 0, 0}), 6);
    lt_frame_pop(m);
}
END_TEST

START_TEST(image_read_converts_channels)
{
    size_t m = lt_frame_push();
    char p[512];
    lt_tensor *t = noise_image(3, 5, 7);
    ck_assert_int_eq(lt_data_png_write(tmp_path(p, sizeof p, "rgb.png"), t), 0);
    const uint8_t *s = lt_data(t);
    /* RGB -> gray: stb_image's (77 R + 150 G + 29 B) >> 8 */
    lt_tensor *g = lt_data_image_read(p, 1);
    ck_assert_ptr_nonnull(g);
    assert_shape(g, 3, (int64_t[]){1, 5, 7});
    for (int i = 0; i < 35; i++)
        ck_assert_int_eq(((uint8_t *)lt_data(g))[i],
                         (77 * s[i] + 150 * s[35 + i] + 29 * s[70 + i]) >> 8);
    /* RGB -> RGBA: alpha 255 */
    lt_tensor *a = lt_data_image_read(p, 4);
    ck_assert_ptr_nonnull(a);
    assert_shape(a, 3, (int64_t[]){4, 5, 7});
    ck_assert_mem_eq(lt_data(a), s, 3 * 35);
    for (int i = 0; i < 35; i++)
        ck_assert_int_eq(((uint8_t *)lt_data(a))[105 + i], 255);
    /* gray -> RGB: repeated */
    ck_assert_int_eq(lt_data_png_write(p, lt_select(t, 0, 2)), 0);
    lt_tensor *c3 = lt_data_image_read(p, 3);
    ck_assert_ptr_nonnull(c3);
    for (int k = 0; k < 3; k++)
        ck_assert_mem_eq((uint8_t *)lt_data(c3) + k * 35, s + 70, 35);
    lt_frame_pop(m);
}
END_TEST

/* Measured with stb_image_write + stb_image on smooth_image() (3,48,64):
 *   quality 95: max |error| 5, mean 0.59 per channel value
 *   quality 75: max |error| 14, mean 1.84 (4:2:0 chroma subsampling)
 *   gray (one channel), quality 90: max 1, mean 0.17
 * The bounds below leave room for other stb versions. */
START_TEST(jpeg_round_trip_is_within_measured_tolerance)
{
    size_t m = lt_frame_push();
    char p[512];
    tmp_path(p, sizeof p, "rt.jpg");
    lt_tensor *t = smooth_image();
    const uint8_t *s = lt_data(t);
    const struct {
        int q, max_err;
        double mean_err;
    } cases[] = {{95, 8, 1.0}, {75, 24, 3.0}};
    for (int k = 0; k < 2; k++) {
        ck_assert_msg(lt_data_jpeg_write(p, t, cases[k].q) == 0, "%s", lt_last_error());
        lt_tensor *r = lt_data_image_read(p, 0);
        ck_assert_msg(r != NULL, "%s", lt_last_error());
        assert_shape(r, 3, (int64_t[]){3, 48, 64});
        const uint8_t *d = lt_data(r);
        int mx = 0;
        double sum = 0;
        for (int i = 0; i < 3 * 48 * 64; i++) {
            int e = abs((int)d[i] - (int)s[i]);
            mx = e > mx ? e : mx;
            sum += e;
        }
        ck_assert_msg(mx <= cases[k].max_err, "q%d max error %d", cases[k].q, mx);
        ck_assert_msg(sum / (3 * 48 * 64) <= cases[k].mean_err, "q%d mean error %g", cases[k].q,
                      sum / (3 * 48 * 64));
    }
    /* one channel: stb writes YCbCr with neutral chroma; read it back as gray */
    lt_tensor *g = lt_select(t, 0, 1);
    ck_assert_int_eq(lt_data_jpeg_write(p, g, 90), 0);
    lt_tensor *r = lt_data_image_read(p, 1);
    ck_assert_ptr_nonnull(r);
    assert_shape(r, 3, (int64_t[]){1, 48, 64});
    for (int i = 0; i < 48 * 64; i++)
        ck_assert_int_le(abs((int)((uint8_t *)lt_data(r))[i] - (int)s[48 * 64 + i]), 2);
    lt_frame_pop(m);
}
END_TEST

/* 24-bit BMP, 3 wide x 2 tall, written byte by byte: bottom-up rows, BGR,
 * rows padded to 4 bytes. Top row red, green, blue; bottom row white,
 * black, (10,20,30). */
static size_t hand_bmp(unsigned char *b)
{
    memset(b, 0, 78);
    b[0] = 'B';
    b[1] = 'M';
    b[2] = 78;       /* file size */
    b[10] = 54;      /* pixel data offset */
    b[14] = 40;      /* BITMAPINFOHEADER */
    b[18] = 3;       /* width */
    b[22] = 2;       /* height (bottom-up) */
    b[26] = 1;       /* planes */
    b[28] = 24;      /* bits per pixel */
    b[34] = 24;      /* image size */
    const uint8_t rows[24] = {255, 255, 255, 0, 0, 0, 30, 20, 10, 0, 0, 0,  /* bottom */
                              0, 0, 255, 0, 255, 0, 255, 0, 0, 0, 0, 0};    /* top */
    memcpy(b + 54, rows, 24);
    return 78;
}

START_TEST(bmp_decodes_hand_written_file)
{
    size_t m = lt_frame_push();
    char p[512];
    unsigned char b[78];
    size_t n = hand_bmp(b);
    write_bytes(tmp_path(p, sizeof p, "x.bmp"), b, n);
    lt_tensor *t = lt_data_image_read(p, 0);
    ck_assert_msg(t != NULL, "%s", lt_last_error());
    assert_shape(t, 3, (int64_t[]){3, 2, 3});
    const uint8_t want[18] = {255, 0, 0, 255, 0, 10,   /* R */
                              0, 255, 0, 255, 0, 20,   /* G */
                              0, 0, 255, 255, 0, 30};  /* B */
    ck_assert_mem_eq(lt_data(t), want, 18);
    /* the pixel array cut short */
    ck_assert_ptr_null(lt_data_image_decode(b, n - 5, 0, "short.bmp"));
    ck_assert_error_has("image_read: short.bmp: truncated BMP");
    lt_frame_pop(m);
}
END_TEST

START_TEST(hostile_headers_are_refused_before_decoding)
{
    size_t m = lt_frame_push();
    char p[512];
    lt_tensor *t = smooth_image();
    ck_assert_int_eq(lt_data_jpeg_write(tmp_path(p, sizeof p, "h.jpg"), t, 80), 0);
    size_t n;
    unsigned char *b = read_bytes(p, &n);
    unsigned char *c = malloc(n);
    /* SOF0 claims 16000x16000: a few KB of scan data cannot code that */
    memcpy(c, b, n);
    unsigned char *sof = memmem(c, n, "\xff\xc0", 2);
    ck_assert_ptr_nonnull(sof);
    sof[5] = sof[7] = 16000 >> 8;
    sof[6] = sof[8] = 16000 & 0xff;
    ck_assert_ptr_null(lt_data_image_decode(c, n, 3, "huge.jpg"));
    ck_assert_error_has("huge.jpg: truncated JPEG: ");
    ck_assert_error_has("cannot code 16000x16000 pixels");
    /* a Huffman table with more than 256 codes (overflows stb_image 2.27) */
    memcpy(c, b, n);
    unsigned char *dht = memmem(c, n, "\xff\xc4", 2);
    ck_assert_ptr_nonnull(dht);
    dht[5 + 15] = 200; /* 16-bit codes */
    dht[5 + 14] = 200; /* 15-bit codes */
    ck_assert_ptr_null(lt_data_image_decode(c, n, 3, "dht.jpg"));
    ck_assert_error_has("dht.jpg: corrupt JPEG: bad DHT");
    free(c);
    free(b);
    /* BMP: RLE and unknown compression codes */
    unsigned char bmp[78];
    hand_bmp(bmp);
    bmp[30] = 1;
    ck_assert_ptr_null(lt_data_image_decode(bmp, 78, 0, "rle.bmp"));
    ck_assert_error_has("rle.bmp: unsupported BMP: RLE");
    bmp[30] = 0;
    bmp[33] = 0xde;
    ck_assert_ptr_null(lt_data_image_decode(bmp, 78, 0, "comp.bmp"));
    ck_assert_error_has("comp.bmp: corrupt BMP: compression");
    bmp[33] = 0;
    bmp[22] = 0x10; /* height 16: the pixel array no longer fits */
    ck_assert_ptr_null(lt_data_image_decode(bmp, 78, 0, "tall.bmp"));
    ck_assert_error_has("tall.bmp: truncated BMP");
    lt_frame_pop(m);
}
END_TEST

START_TEST(image_decode_from_memory_matches_file)
{
    size_t m = lt_frame_push();
    char p[512];
    lt_tensor *t = noise_image(3, 9, 11);
    ck_assert_int_eq(lt_data_png_write(tmp_path(p, sizeof p, "mem.png"), t), 0);
    size_t n;
    unsigned char *b = read_bytes(p, &n);
    lt_tensor *r = lt_data_image_decode(b, n, 0, NULL);
    ck_assert_msg(r != NULL, "%s", lt_last_error());
    ck_assert_mem_eq(lt_data(r), lt_data(t), 3 * 9 * 11);
    free(b);
    lt_frame_pop(m);
}
END_TEST

/* Every strict prefix of the file at path fails with an error naming it. */
static void every_prefix_fails(const char *path, const char *why)
{
    size_t n;
    unsigned char *b = read_bytes(path, &n);
    char p[512];
    tmp_path(p, sizeof p, "cut.img");
    for (size_t k = 0; k < n; k++) {
        size_t m = lt_frame_push();
        lt_clear_error();
        ck_assert_msg(lt_data_image_decode(b, k, 0, "cut") == NULL, "prefix %zu of %zu accepted",
                      k, n);
        ck_assert_error_names("image_read: cut: ");
        lt_frame_pop(m);
    }
    /* and as files: a few cut points, messages name the file */
    const size_t cuts[3] = {n / 3, n / 2, n - 1};
    for (int k = 0; k < 3; k++) {
        size_t m = lt_frame_push();
        write_bytes(p, b, cuts[k]);
        ck_assert_ptr_null(lt_data_image_read(p, 3));
        ck_assert_error_names(p);
        ck_assert_error_has(why);
        lt_frame_pop(m);
    }
    free(b);
}

START_TEST(truncated_png_and_jpeg_are_errors)
{
    size_t m = lt_frame_push();
    char p[512];
    lt_tensor *t = smooth_image();
    ck_assert_int_eq(lt_data_png_write(tmp_path(p, sizeof p, "whole.png"), t), 0);
    every_prefix_fails(p, "truncated PNG");
    ck_assert_int_eq(lt_data_jpeg_write(tmp_path(p, sizeof p, "whole.jpg"), t, 80), 0);
    every_prefix_fails(p, "truncated JPEG");
    /* bytes after EOI are fine */
    size_t n;
    unsigned char *b = read_bytes(p, &n);
    unsigned char *c = malloc(n + 4);
    memcpy(c, b, n);
    memcpy(c + n, "junk", 4);
    ck_assert_ptr_nonnull(lt_data_image_decode(c, n + 4, 3, "trailing"));
    free(b);
    free(c);
    lt_frame_pop(m);
}
END_TEST

START_TEST(corrupt_png_is_an_error)
{
    size_t m = lt_frame_push();
    char p[512];
    lt_tensor *t = noise_image(3, 16, 16);
    ck_assert_int_eq(lt_data_png_write(tmp_path(p, sizeof p, "c.png"), t), 0);
    size_t n;
    unsigned char *b = read_bytes(p, &n);
    /* locate IDAT: its data starts 8 bytes after the length field */
    unsigned char *idat = memmem(b, n, "IDAT", 4);
    ck_assert_ptr_nonnull(idat);
    size_t at = (size_t)(idat - b) + 4 + 10;
    b[at] ^= 0xff;
    ck_assert_ptr_null(lt_data_image_decode(b, n, 0, "crc.png"));
    ck_assert_error_has("crc.png: corrupt PNG: bad CRC in chunk 'IDAT'");
    /* same damage with a recomputed CRC: stb_image's zlib check catches it */
    size_t len = ((size_t)idat[-4] << 24) | ((size_t)idat[-3] << 16) | ((size_t)idat[-2] << 8) |
                 idat[-1];
    for (size_t k = 0; k < len; k++)
        idat[4 + k] ^= 0x5a;
    uLong crc = crc32(0L, idat, (uInt)(len + 4));
    idat[4 + len] = (unsigned char)(crc >> 24);
    idat[5 + len] = (unsigned char)(crc >> 16);
    idat[6 + len] = (unsigned char)(crc >> 8);
    idat[7 + len] = (unsigned char)crc;
    ck_assert_ptr_null(lt_data_image_decode(b, n, 0, "zlib.png"));
    ck_assert_error_has("zlib.png: corrupt PNG: ");
    free(b);
    lt_frame_pop(m);
}
END_TEST

START_TEST(non_images_and_bad_arguments_are_errors)
{
    size_t m = lt_frame_push();
    char p[512];
    write_bytes(tmp_path(p, sizeof p, "notes.txt"), "hello, world\n", 13);
    ck_assert_ptr_null(lt_data_image_read(p, 3));
    ck_assert_error_names(p);
    ck_assert_error_has("not a JPEG, PNG or BMP image");
    write_bytes(tmp_path(p, sizeof p, "empty.png"), "", 0);
    ck_assert_ptr_null(lt_data_image_read(p, 3));
    ck_assert_error_names(p);
    ck_assert_ptr_null(lt_data_image_read(tmp_path(p, sizeof p, "missing.png"), 3));
    ck_assert_error_names(p);
    ck_assert_error_has("No such file");
    ck_assert_ptr_null(lt_data_image_read(tmp_dir, 3));
    ck_assert_error_has("is a directory");
    lt_tensor *t = noise_image(3, 4, 4);
    ck_assert_int_eq(lt_data_png_write(tmp_path(p, sizeof p, "ok.png"), t), 0);
    ck_assert_ptr_null(lt_data_image_read(p, 5));
    ck_assert_error_has("channels 5");

    /* writers */
    ck_assert_int_eq(lt_data_png_write(tmp_path(p, sizeof p, "x.png"), noise_image(5, 2, 2)), -1);
    ck_assert_error_has("png_write: ");
    ck_assert_error_has("5 channels not supported");
    ck_assert_int_eq(access(p, F_OK), -1);
    ck_assert_int_eq(lt_data_jpeg_write(p, noise_image(2, 2, 2), 90), -1);
    ck_assert_error_has("2 channels not supported");
    ck_assert_int_eq(lt_data_jpeg_write(p, t, 0), -1);
    ck_assert_error_has("quality 0 outside 1..100");
    ck_assert_int_eq(lt_data_png_write(p, lt_zeros(3, (int64_t[]){3, 2, 2}, LT_I64)), -1);
    ck_assert_error_has("image dtype i64");
    ck_assert_int_eq(lt_data_png_write(p, lt_zeros(1, (int64_t[]){4}, LT_U8)), -1);
    ck_assert_error_has("want (C,H,W) or (H,W)");
    ck_assert_int_eq(lt_data_png_write(p, lt_zeros(3, (int64_t[]){3, 0, 2}, LT_U8)), -1);
    ck_assert_error_has("height and width");
    ck_assert_int_eq(lt_data_png_write(tmp_path(p, sizeof p, "no/dir.png"), t), -1);
    ck_assert_error_names(p);
    ck_assert_int_eq(lt_data_jpeg_write(p, t, 90), -1);
    ck_assert_error_names(p);
    lt_set_error("earlier");
    ck_assert_int_eq(lt_data_png_write(p, NULL), -1);
    ck_assert_int_eq(lt_data_jpeg_write(p, NULL, 90), -1);
    ck_assert_str_eq(lt_last_error(), "earlier");
    lt_frame_pop(m);
}
END_TEST

START_TEST(writing_to_a_full_device_is_an_error)
{
    struct stat st;
    if (stat("/dev/full", &st) != 0 || !S_ISCHR(st.st_mode))
        return;
    size_t m = lt_frame_push();
    lt_tensor *t = noise_image(3, 64, 64);
    ck_assert_int_eq(lt_data_png_write("/dev/full", t), -1);
    ck_assert_error_names("png_write: /dev/full: ");
    ck_assert_int_eq(lt_data_jpeg_write("/dev/full", t, 90), -1);
    ck_assert_error_names("jpeg_write: /dev/full: ");
    ck_assert_int_eq(lt_data_npy_write("/dev/full", t), -1);
    ck_assert_error_names("npy_write: /dev/full: ");
    /* a failed write removes a partial regular file, never a device */
    ck_assert_int_eq(stat("/dev/full", &st), 0);
    ck_assert(S_ISCHR(st.st_mode));
    lt_frame_pop(m);
}
END_TEST

typedef struct decode_job {
    const unsigned char *png, *bad;
    size_t npng, nbad;
    const uint8_t *want;
    int ok;
} decode_job;

static void *decode_worker(void *arg)
{
    decode_job *j = arg;
    j->ok = 1;
    for (int it = 0; it < 40; it++) {
        size_t m = lt_frame_push();
        lt_tensor *t = lt_data_image_decode(j->png, j->npng, 0, "good");
        if (!t || memcmp(lt_data(t), j->want, 3 * 48 * 64) != 0)
            j->ok = 0;
        if (lt_data_image_decode(j->bad, j->nbad, 0, "bad") ||
            !strstr(lt_last_error(), "image_read: bad: "))
            j->ok = 0;
        lt_frame_pop(m);
    }
    lt_frame_pop(0);
    return NULL;
}

START_TEST(decoders_run_on_several_threads_at_once)
{
    size_t m = lt_frame_push();
    char p[512];
    lt_tensor *t = smooth_image();
    ck_assert_int_eq(lt_data_png_write(tmp_path(p, sizeof p, "thr.png"), t), 0);
    size_t n;
    unsigned char *b = read_bytes(p, &n);
    decode_job jobs[4];
    pthread_t th[4];
    for (int k = 0; k < 4; k++) {
        jobs[k] = (decode_job){b, b, n, n - 20, lt_data(t), 0};
        ck_assert_int_eq(pthread_create(&th[k], NULL, decode_worker, &jobs[k]), 0);
    }
    for (int k = 0; k < 4; k++) {
        pthread_join(th[k], NULL);
        ck_assert_msg(jobs[k].ok, "thread %d", k);
    }
    free(b);
    lt_frame_pop(m);
}
END_TEST

START_TEST(codecs_free_every_block)
{
    /* stb and libpng allocate through the hook: after a frame pop and a
     * cache trim, the live block count is what it was. */
    char p[512];
    lt_cache_trim();
    lt_mem_stats before = lt_mem_stats_get();
    size_t m = lt_frame_push();
    lt_tensor *t = smooth_image();
    ck_assert_int_eq(lt_data_png_write(tmp_path(p, sizeof p, "a.png"), t), 0);
    ck_assert_ptr_nonnull(lt_data_image_read(p, 0));
    ck_assert_int_eq(lt_data_jpeg_write(tmp_path(p, sizeof p, "a.jpg"), t, 90), 0);
    ck_assert_ptr_nonnull(lt_data_image_read(p, 1));
    ck_assert_ptr_null(lt_data_image_read(FIX "v1_f4.npy", 0));
    ck_assert_ptr_nonnull(lt_data_npy_read(FIX "fortran_f4.npy"));
    lt_frame_pop(m);
    lt_cache_trim();
    lt_mem_stats after = lt_mem_stats_get();
    ck_assert_uint_eq(after.live_blocks, before.live_blocks);
    ck_assert_uint_eq(after.live_bytes, before.live_bytes);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Masks and dataset listings                                          */
/* ------------------------------------------------------------------ */

/* mkdir -p tmp_dir/rel */
static void mkdirs(const char *rel)
{
    char p[512];
    tmp_path(p, sizeof p, rel);
    for (char *s = p + strlen(tmp_dir) + 1; *s; s++) {
        if (*s == '/') {
            *s = '\0';
            mkdir(p, 0755);
            *s = '/';
        }
    }
    mkdir(p, 0755);
}

/* A 3x4x5 PNG at tmp_dir/rel whose pixels encode `id`. */
static void put_image(const char *rel, int id)
{
    char p[512];
    lt_tensor *t = lt_full(3, (int64_t[]){3, 4, 5}, id, LT_U8);
    ck_assert_int_eq(lt_data_png_write(tmp_path(p, sizeof p, rel), t), 0);
}

/* A 4x5 u8 .npy mask at tmp_dir/rel with pixel (id % 4, id % 5) set. */
static void put_mask(const char *rel, int id)
{
    char p[512];
    lt_tensor *t = lt_zeros(2, (int64_t[]){4, 5}, LT_U8);
    ((uint8_t *)lt_data(t))[(id % 4) * 5 + id % 5] = 1;
    ck_assert_int_eq(lt_data_npy_write(tmp_path(p, sizeof p, rel), t), 0);
}

/* The sample's path ends with `tail`. */
static void assert_tail(const char *path, const char *tail)
{
    ck_assert_ptr_nonnull(path);
    size_t n = strlen(path), k = strlen(tail);
    ck_assert_msg(n >= k && strcmp(path + n - k, tail) == 0, "%s does not end with %s", path,
                  tail);
}

/* Class folders made out of order; labels must follow the sorted names. */
static void build_in9_tree(void)
{
    mkdirs("in9/original/val/01_bird");
    mkdirs("in9/original/val/00_dog");
    mkdirs("in9/mixed_rand/val/00_dog");
    mkdirs("in9/mixed_rand/val/01_bird");
    mkdirs("in9/fg_mask/val/00_dog");
    mkdirs("in9/fg_mask/val/01_bird");
    put_image("in9/original/val/01_bird/n015_7.png", 3);
    put_image("in9/original/val/00_dog/n020_2.png", 2);
    put_image("in9/original/val/00_dog/n020_1.png", 1);
    put_mask("in9/fg_mask/val/00_dog/n020_1.npy", 1);
    put_mask("in9/fg_mask/val/00_dog/n020_2.npy", 2);
    put_mask("in9/fg_mask/val/01_bird/n015_7.npy", 7);
    /* a mixed image: foreground n020_2 (a dog) on bird n015_7's background */
    put_image("in9/mixed_rand/val/00_dog/fg_n020_2_bg_n015_7.png", 4);
    put_image("in9/mixed_rand/val/01_bird/fg_n015_7_bg_n020_1.png", 5);
}

START_TEST(in9_list_gives_labels_from_sorted_classes_and_masks)
{
    size_t m = lt_frame_push();
    char root[512];
    build_in9_tree();
    tmp_path(root, sizeof root, "in9");
    lt_data_list *l = lt_data_in9_list(root, "original", "val", LT_DATA_MASKS_REQUIRED);
    ck_assert_msg(l != NULL, "%s", lt_last_error());
    ck_assert_int_eq(l->nclasses, 2);
    ck_assert_str_eq(l->classes[0], "00_dog");
    ck_assert_str_eq(l->classes[1], "01_bird");
    ck_assert_uint_eq(l->n, 3);
    assert_tail(l->samples[0].path, "/in9/original/val/00_dog/n020_1.png");
    assert_tail(l->samples[1].path, "/in9/original/val/00_dog/n020_2.png");
    assert_tail(l->samples[2].path, "/in9/original/val/01_bird/n015_7.png");
    ck_assert_int_eq(l->samples[0].label, 0);
    ck_assert_int_eq(l->samples[1].label, 0);
    ck_assert_int_eq(l->samples[2].label, 1);
    assert_tail(l->samples[0].mask_path, "/in9/fg_mask/val/00_dog/n020_1.npy");
    assert_tail(l->samples[2].mask_path, "/in9/fg_mask/val/01_bird/n015_7.npy");
    /* the listed files read back as what was written */
    lt_tensor *img = lt_data_image_read(l->samples[2].path, 0);
    ck_assert_ptr_nonnull(img);
    ck_assert_double_eq(lt_item_at(img, 0), 3);
    lt_tensor *mk = lt_data_mask_read(l->samples[2].mask_path);
    ck_assert_msg(mk != NULL, "%s", lt_last_error());
    assert_shape(mk, 3, (int64_t[]){1, 4, 5});
    ck_assert_double_eq(lt_item_at(mk, (7 % 4) * 5 + 7 % 5), 1);
    ck_assert_double_eq(lt_item_at(lt_sum(mk, 0, NULL, false), 0), 1);
    lt_data_list_free(l);
    lt_frame_pop(m);
}
END_TEST

START_TEST(in9_mixed_images_take_the_foreground_mask)
{
    size_t m = lt_frame_push();
    char root[512];
    build_in9_tree();
    tmp_path(root, sizeof root, "in9");
    lt_data_list *l = lt_data_in9_list(root, "mixed_rand", "val", LT_DATA_MASKS_REQUIRED);
    ck_assert_msg(l != NULL, "%s", lt_last_error());
    ck_assert_uint_eq(l->n, 2);
    assert_tail(l->samples[0].path, "/00_dog/fg_n020_2_bg_n015_7.png");
    ck_assert_int_eq(l->samples[0].label, 0);
    assert_tail(l->samples[0].mask_path, "/in9/fg_mask/val/00_dog/n020_2.npy");
    ck_assert_int_eq(l->samples[1].label, 1);
    assert_tail(l->samples[1].mask_path, "/in9/fg_mask/val/01_bird/n015_7.npy");
    lt_tensor *mk = lt_data_mask_read(l->samples[0].mask_path);
    ck_assert_ptr_nonnull(mk);
    ck_assert_double_eq(lt_item_at(mk, (2 % 4) * 5 + 2 % 5), 1);
    lt_data_list_free(l);
    lt_frame_pop(m);
}
END_TEST

START_TEST(in9_missing_mask_empty_class_and_non_image_are_errors)
{
    size_t m = lt_frame_push();
    char root[512], p[512];
    build_in9_tree();
    tmp_path(root, sizeof root, "in9");
    /* a missing mask: an error naming the image and the expected mask */
    put_image("in9/original/val/00_dog/n020_3.png", 9);
    ck_assert_ptr_null(lt_data_in9_list(root, "original", "val", LT_DATA_MASKS_REQUIRED));
    ck_assert_error_has("in9_list: ");
    ck_assert_error_has("/in9/original/val/00_dog/n020_3.png: missing mask ");
    ck_assert_error_has("/in9/fg_mask/val/00_dog/n020_3.npy");
    /* optional masks: NULL where missing; none: never looked up */
    lt_data_list *l = lt_data_in9_list(root, "original", "val", LT_DATA_MASKS_OPTIONAL);
    ck_assert_msg(l != NULL, "%s", lt_last_error());
    ck_assert_uint_eq(l->n, 4);
    ck_assert_ptr_nonnull(l->samples[1].mask_path);
    ck_assert_ptr_null(l->samples[2].mask_path);
    lt_data_list_free(l);
    l = lt_data_in9_list(root, "original", "val", LT_DATA_MASKS_NONE);
    ck_assert_ptr_nonnull(l);
    ck_assert_ptr_null(l->samples[0].mask_path);
    lt_data_list_free(l);
    /* an empty class folder */
    mkdirs("in9/original/val/02_empty");
    ck_assert_ptr_null(lt_data_in9_list(root, "original", "val", LT_DATA_MASKS_NONE));
    ck_assert_error_has("/in9/original/val/02_empty: empty class folder");
    rmdir(tmp_path(p, sizeof p, "in9/original/val/02_empty"));
    /* a non-image file in a class folder */
    write_bytes(tmp_path(p, sizeof p, "in9/original/val/01_bird/readme.txt"), "x", 1);
    ck_assert_ptr_null(lt_data_in9_list(root, "original", "val", LT_DATA_MASKS_NONE));
    ck_assert_error_names(p);
    ck_assert_error_has("not an image file");
    remove(p);
    /* a file where class folders should be */
    write_bytes(tmp_path(p, sizeof p, "in9/original/val/stray.png"), "x", 1);
    ck_assert_ptr_null(lt_data_in9_list(root, "original", "val", LT_DATA_MASKS_NONE));
    ck_assert_error_has("stray.png: not a class folder");
    remove(p);
    /* a missing variant */
    ck_assert_ptr_null(lt_data_in9_list(root, "only_fg", "val", LT_DATA_MASKS_NONE));
    ck_assert_error_has("/in9/only_fg/val: no such folder");
    /* hidden files are skipped */
    write_bytes(tmp_path(p, sizeof p, "in9/original/val/00_dog/.DS_Store"), "x", 1);
    l = lt_data_in9_list(root, "original", "val", LT_DATA_MASKS_NONE);
    ck_assert_msg(l != NULL, "%s", lt_last_error());
    ck_assert_uint_eq(l->n, 4);
    lt_data_list_free(l);
    lt_frame_pop(m);
}
END_TEST

START_TEST(folder_list_reads_plain_layout_with_optional_masks)
{
    size_t m = lt_frame_push();
    char root[512], p[512];
    mkdirs("plain/cat");
    mkdirs("plain/dog");
    mkdirs("plain_masks/cat");
    put_image("plain/dog/d1.png", 1);
    put_image("plain/cat/c1.png", 2);
    put_image("plain/cat/c2.png", 3);
    put_mask("plain_masks/cat/c1.npy", 1);
    /* a PNG mask: 0/255 thresholded at 128 */
    lt_tensor *pm = lt_zeros(3, (int64_t[]){1, 4, 5}, LT_U8);
    ((uint8_t *)lt_data(pm))[3] = 255;
    ((uint8_t *)lt_data(pm))[4] = 127;
    ck_assert_int_eq(lt_data_png_write(tmp_path(p, sizeof p, "plain_masks/cat/c2.png"), pm), 0);
    tmp_path(root, sizeof root, "plain/");
    lt_data_list *l = lt_data_folder_list(root, LT_DATA_MASKS_OPTIONAL);
    ck_assert_msg(l != NULL, "%s", lt_last_error());
    ck_assert_int_eq(l->nclasses, 2);
    ck_assert_str_eq(l->classes[0], "cat");
    ck_assert_uint_eq(l->n, 3);
    ck_assert_int_eq(l->samples[2].label, 1);
    assert_tail(l->samples[0].mask_path, "plain_masks/cat/c1.npy");
    assert_tail(l->samples[1].mask_path, "plain_masks/cat/c2.png");
    ck_assert_ptr_null(l->samples[2].mask_path);
    lt_tensor *mk = lt_data_mask_read(l->samples[1].mask_path);
    ck_assert_msg(mk != NULL, "%s", lt_last_error());
    ck_assert_double_eq(lt_item_at(mk, 3), 1);
    ck_assert_double_eq(lt_item_at(mk, 4), 0);
    ck_assert_double_eq(lt_item_at(lt_sum(mk, 0, NULL, false), 0), 1);
    lt_data_list_free(l);
    /* required masks: the dog has none */
    ck_assert_ptr_null(lt_data_folder_list(root, LT_DATA_MASKS_REQUIRED));
    ck_assert_error_has("folder_list: ");
    ck_assert_error_has("plain/dog/d1.png: missing mask ");
    ck_assert_error_has("plain_masks/dog/d1.npy");
    lt_frame_pop(m);
}
END_TEST

START_TEST(mask_read_rejects_bad_shapes_and_names_the_file)
{
    size_t m = lt_frame_push();
    char p[512];
    ck_assert_int_eq(
        lt_data_npy_write(tmp_path(p, sizeof p, "m3.npy"), lt_zeros(3, (int64_t[]){2, 4, 5}, LT_U8)),
        0);
    ck_assert_ptr_null(lt_data_mask_read(p));
    ck_assert_error_names(p);
    ck_assert_error_has("mask shape (2,4,5)");
    /* f32 mask: nonzero -> 1 */
    float v[4] = {0.0f, 0.25f, -1.0f, 0.0f};
    ck_assert_int_eq(
        lt_data_npy_write(tmp_path(p, sizeof p, "mf.npy"), lt_from_data(v, 2, (int64_t[]){2, 2}, LT_F32)),
        0);
    lt_tensor *mk = lt_data_mask_read(p);
    ck_assert_ptr_nonnull(mk);
    ck_assert_mem_eq(lt_data(mk), ((uint8_t[]){0, 1, 1, 0}), 4);
    /* bool fixture written by NumPy */
    mk = lt_data_mask_read(FIX "bool.npy");
    ck_assert_ptr_nonnull(mk);
    assert_shape(mk, 3, (int64_t[]){1, 2, 3});
    ck_assert_mem_eq(lt_data(mk), ((uint8_t[]){1, 0, 1, 0, 0, 1}), 6);
    ck_assert_ptr_null(lt_data_mask_read(tmp_path(p, sizeof p, "none.npy")));
    ck_assert_error_names(p);
    lt_frame_pop(m);
}
END_TEST

START_TEST(listings_free_every_block)
{
    char root[512];
    size_t m = lt_frame_push();
    build_in9_tree();
    lt_frame_pop(m);
    tmp_path(root, sizeof root, "in9/");
    lt_cache_trim();
    lt_mem_stats before = lt_mem_stats_get();
    lt_data_list *l = lt_data_in9_list(root, "mixed_rand", "val", LT_DATA_MASKS_REQUIRED);
    ck_assert_ptr_nonnull(l);
    lt_data_list_free(l);
    ck_assert_ptr_null(lt_data_in9_list(root, "nope", "val", LT_DATA_MASKS_REQUIRED));
    m = lt_frame_push();
    put_image("in9/original/val/00_dog/n020_9.png", 9); /* no mask: fails midway */
    lt_frame_pop(m);
    ck_assert_ptr_null(lt_data_in9_list(root, "original", "val", LT_DATA_MASKS_REQUIRED));
    ck_assert_error_has("/in9/original/val/00_dog/n020_9.png: missing mask");
    lt_cache_trim();
    lt_mem_stats after = lt_mem_stats_get();
    ck_assert_uint_eq(after.live_blocks, before.live_blocks);
}
END_TEST

/* ------------------------------------------------------------------ */
/* RIVAL10                                                             */
/* ------------------------------------------------------------------ */

/* label_mappings.json as RIVAL10 ships it (github.com/mmoayeri/RIVAL10,
 * rival10/data/label_mappings.json). */
static const char rival_mappings[] =
    "{\n  \"moving van\": [\"truck\", 0],\n  \"semi\": [\"truck\", 0],\n"
    "  \"waggon\": [\"car\", 1],\n  \"convertible\": [\"car\", 1],\n"
    "  \"airliner\": [\"plane\", 2],\n  \"military plane\": [\"plane\", 2],\n"
    "  \"ocean liner\": [\"ship\", 3],\n  \"container vessel\": [\"ship\", 3],\n"
    "  \"Persian cat\": [\"cat\", 4],\n  \"Egyptian cat\": [\"cat\", 4],\n"
    "  \"Labrador retriever\": [\"dog\", 5],\n  \"golden retriever\": [\"dog\", 5],\n"
    "  \"sorrel\": [\"equine\", 6],\n  \"zebra\": [\"equine\", 6],\n"
    "  \"gazelle\": [\"deer\", 7],\n  \"Aepyceros melampus\": [\"deer\", 7],\n"
    "  \"Ascaphus trui\": [\"frog\", 8],\n  \"tree-frog\": [\"frog\", 8],\n"
    "  \"Carduelis carduelis\": [\"bird\", 9],\n  \"Carpodacus mexicanus\": [\"bird\", 9]\n}\n";

/* Entries of wnid_to_class.json (the real file maps all 1000 wnids). */
static const char rival_wnids[] =
    "{\"n01440764\": \"Tinca tinca\", \"n01531178\": \"Carduelis carduelis\", "
    "\"n02099601\": \"golden retriever\", \"n02099712\": \"Labrador retriever\", "
    "\"n02814533\": \"waggon\", \"n03100240\": \"convertible\"}";

static void put_text(const char *rel, const char *text)
{
    char p[512];
    write_bytes(tmp_path(p, sizeof p, rel), text, strlen(text));
}

/* A 3x16x16 JPEG: gray level `v`. */
static void put_jpeg(const char *rel, int v)
{
    char p[512];
    size_t m = lt_frame_push();
    lt_tensor *t = lt_full(3, (int64_t[]){3, 16, 16}, v, LT_U8);
    ck_assert_int_eq(lt_data_jpeg_write(tmp_path(p, sizeof p, rel), t, 95), 0);
    lt_frame_pop(m);
}

/* A 16x16 mask JPEG (or PNG): columns < 8 white, the rest black. */
static void put_rival_mask(const char *rel)
{
    char p[512];
    size_t m = lt_frame_push();
    lt_tensor *t = lt_zeros(3, (int64_t[]){3, 16, 16}, LT_U8);
    uint8_t *d = lt_data(t);
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < 16; y++)
            memset(d + (c * 16 + y) * 16, 255, 8);
    size_t n = strlen(rel);
    int rc = n > 4 && strcmp(rel + n - 4, ".png") == 0
                 ? lt_data_png_write(tmp_path(p, sizeof p, rel), t)
                 : lt_data_jpeg_write(tmp_path(p, sizeof p, rel), t, 90);
    ck_assert_int_eq(rc, 0);
    lt_frame_pop(m);
}

/* The published layout: images in <split>/ordinary with their attribute
 * side files, masks in <split>/entire_object_masks under the three names
 * the reader accepts. */
static void build_rival10_tree(void)
{
    mkdirs("r10/meta");
    mkdirs("r10/train/ordinary");
    mkdirs("r10/train/entire_object_masks");
    mkdirs("r10/test/ordinary");
    mkdirs("r10/test/entire_object_masks");
    put_text("r10/meta/label_mappings.json", rival_mappings);
    put_text("r10/meta/wnid_to_class.json", rival_wnids);
    put_jpeg("r10/train/ordinary/n02099601_10.JPEG", 50);     /* dog */
    put_text("r10/train/ordinary/n02099601_10_attr_labels.npy", "x");
    put_text("r10/train/ordinary/n02099601_10_attr_dict.pkl", "x");
    put_jpeg("r10/train/ordinary/n02099601_10_merged_mask.JPEG", 0);
    put_jpeg("r10/train/ordinary/n03100240_3.JPEG", 100);     /* car */
    put_jpeg("r10/train/ordinary/n01531178_7.JPEG", 150);     /* bird */
    put_jpeg("r10/train/ordinary/n02814533_2.JPEG", 200);     /* car */
    put_rival_mask("r10/train/entire_object_masks/n02099601_10.JPEG");
    put_rival_mask("r10/train/entire_object_masks/n03100240_3.png");
    put_rival_mask("r10/train/entire_object_masks/n01531178_n01531178_7.JPEG");
    put_rival_mask("r10/train/entire_object_masks/n02814533_2.JPEG");
    put_jpeg("r10/test/ordinary/n02099712_5.JPEG", 80);       /* dog */
    put_rival_mask("r10/test/entire_object_masks/n02099712_5.JPEG");
}

START_TEST(rival10_list_gives_labels_from_label_mappings_and_masks)
{
    size_t m = lt_frame_push();
    char root[512];
    build_rival10_tree();
    tmp_path(root, sizeof root, "r10");
    lt_data_list *l = lt_data_rival10_list(root, "train", LT_DATA_MASKS_REQUIRED);
    ck_assert_msg(l != NULL, "%s", lt_last_error());
    ck_assert_int_eq(l->nclasses, 10);
    const char *names[10] = {"truck", "car", "plane", "ship", "cat",
                             "dog",   "equine", "deer", "frog", "bird"};
    for (int k = 0; k < 10; k++)
        ck_assert_str_eq(l->classes[k], names[k]);
    /* side files skipped; ordered by label, then name */
    ck_assert_uint_eq(l->n, 4);
    assert_tail(l->samples[0].path, "/r10/train/ordinary/n02814533_2.JPEG");
    assert_tail(l->samples[1].path, "/r10/train/ordinary/n03100240_3.JPEG");
    assert_tail(l->samples[2].path, "/r10/train/ordinary/n02099601_10.JPEG");
    assert_tail(l->samples[3].path, "/r10/train/ordinary/n01531178_7.JPEG");
    const int64_t labels[4] = {1, 1, 5, 9};
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(l->samples[i].label, labels[i]);
    assert_tail(l->samples[0].mask_path, "/train/entire_object_masks/n02814533_2.JPEG");
    assert_tail(l->samples[1].mask_path, "/train/entire_object_masks/n03100240_3.png");
    assert_tail(l->samples[3].mask_path,
                "/train/entire_object_masks/n01531178_n01531178_7.JPEG");
    /* the JPEG mask thresholded at 0.5: left half object */
    lt_tensor *mk = lt_data_mask_read(l->samples[2].mask_path);
    ck_assert_msg(mk != NULL, "%s", lt_last_error());
    assert_shape(mk, 3, (int64_t[]){1, 16, 16});
    int bad = 0;
    for (int y = 0; y < 16; y++)
        for (int x = 0; x < 16; x++)
            if (x < 6 || x > 9)
                bad += ((uint8_t *)lt_data(mk))[y * 16 + x] != (x < 8);
    ck_assert_int_eq(bad, 0);
    lt_data_list_free(l);
    /* the test split */
    l = lt_data_rival10_list(root, "test", LT_DATA_MASKS_REQUIRED);
    ck_assert_msg(l != NULL, "%s", lt_last_error());
    ck_assert_uint_eq(l->n, 1);
    ck_assert_int_eq(l->samples[0].label, 5);
    lt_data_list_free(l);
    lt_frame_pop(m);
}
END_TEST

START_TEST(rival10_errors_name_the_file)
{
    size_t m = lt_frame_push();
    char root[512], p[512];
    build_rival10_tree();
    tmp_path(root, sizeof root, "r10");
    /* a missing mask */
    remove(tmp_path(p, sizeof p, "r10/train/entire_object_masks/n02814533_2.JPEG"));
    ck_assert_ptr_null(lt_data_rival10_list(root, "train", LT_DATA_MASKS_REQUIRED));
    ck_assert_error_has("rival10_list: ");
    ck_assert_error_has("/r10/train/ordinary/n02814533_2.JPEG: missing mask ");
    lt_data_list *l = lt_data_rival10_list(root, "train", LT_DATA_MASKS_OPTIONAL);
    ck_assert_ptr_nonnull(l);
    ck_assert_ptr_null(l->samples[0].mask_path);
    lt_data_list_free(l);
    put_rival_mask("r10/train/entire_object_masks/n02814533_2.JPEG");
    /* a wnid whose ImageNet class is not a RIVAL10 class */
    put_jpeg("r10/train/ordinary/n01440764_1.JPEG", 1);
    ck_assert_ptr_null(lt_data_rival10_list(root, "train", LT_DATA_MASKS_NONE));
    ck_assert_error_has("n01440764_1.JPEG: wnid n01440764 is \"Tinca tinca\", which is not in ");
    remove(tmp_path(p, sizeof p, "r10/train/ordinary/n01440764_1.JPEG"));
    /* a wnid wnid_to_class.json does not know */
    put_jpeg("r10/train/ordinary/n09999999_1.JPEG", 1);
    ck_assert_ptr_null(lt_data_rival10_list(root, "train", LT_DATA_MASKS_NONE));
    ck_assert_error_has("wnid n09999999 is not in ");
    ck_assert_error_has("meta/wnid_to_class.json");
    remove(tmp_path(p, sizeof p, "r10/train/ordinary/n09999999_1.JPEG"));
    /* a stray non-image */
    put_text("r10/train/ordinary/notes.txt", "hi");
    ck_assert_ptr_null(lt_data_rival10_list(root, "train", LT_DATA_MASKS_NONE));
    ck_assert_error_has("ordinary/notes.txt: not an image file");
    remove(tmp_path(p, sizeof p, "r10/train/ordinary/notes.txt"));
    /* no such split */
    ck_assert_ptr_null(lt_data_rival10_list(root, "val", LT_DATA_MASKS_NONE));
    ck_assert_error_has("/r10/val: no such folder");
    /* label_mappings keyed by wnid: no wnid_to_class.json needed */
    remove(tmp_path(p, sizeof p, "r10/meta/wnid_to_class.json"));
    ck_assert_ptr_null(lt_data_rival10_list(root, "train", LT_DATA_MASKS_NONE));
    ck_assert_error_has("and there is no ");
    put_text("r10/meta/label_mappings.json",
             "{\"n02814533\": [\"car\", 0], \"n03100240\": [\"car\", 0], "
             "\"n02099601\": [\"dog\", 1], \"n01531178\": [\"bird\", 2]}");
    l = lt_data_rival10_list(root, "train", LT_DATA_MASKS_REQUIRED);
    ck_assert_msg(l != NULL, "%s", lt_last_error());
    ck_assert_int_eq(l->nclasses, 3);
    ck_assert_int_eq(l->samples[3].label, 2);
    lt_data_list_free(l);
    /* bad JSON, a gap in the labels, a malformed entry, no meta at all */
    put_text("r10/meta/label_mappings.json", "{\"semi\": [\"truck\", 0],");
    ck_assert_ptr_null(lt_data_rival10_list(root, "train", LT_DATA_MASKS_NONE));
    ck_assert_error_has("label_mappings.json: not valid JSON");
    put_text("r10/meta/label_mappings.json", "{\"a\": [\"x\", 0], \"b\": [\"y\", 2]}");
    ck_assert_ptr_null(lt_data_rival10_list(root, "train", LT_DATA_MASKS_NONE));
    ck_assert_error_has("no class has label 1");
    put_text("r10/meta/label_mappings.json", "{\"a\": [\"x\", 0], \"b\": [\"x\"]}");
    ck_assert_ptr_null(lt_data_rival10_list(root, "train", LT_DATA_MASKS_NONE));
    ck_assert_error_has("entry \"b\"");
    put_text("r10/meta/label_mappings.json", "{\"a\": [\"x\", 0], \"b\": [\"y\", 0]}");
    ck_assert_ptr_null(lt_data_rival10_list(root, "train", LT_DATA_MASKS_NONE));
    ck_assert_error_has("label 0 is named both");
    remove(tmp_path(p, sizeof p, "r10/meta/label_mappings.json"));
    ck_assert_ptr_null(lt_data_rival10_list(root, "train", LT_DATA_MASKS_NONE));
    ck_assert_error_has("/r10/meta/label_mappings.json: No such file");
    lt_frame_pop(m);
}
END_TEST

START_TEST(rival10_listing_frees_every_block)
{
    size_t m = lt_frame_push();
    char root[512];
    build_rival10_tree();
    lt_frame_pop(m);
    tmp_path(root, sizeof root, "r10");
    lt_cache_trim();
    lt_mem_stats before = lt_mem_stats_get();
    lt_data_list *l = lt_data_rival10_list(root, "train", LT_DATA_MASKS_REQUIRED);
    ck_assert_ptr_nonnull(l);
    lt_data_list_free(l);
    m = lt_frame_push();
    put_jpeg("r10/train/ordinary/n09999999_1.JPEG", 1); /* fails midway */
    lt_frame_pop(m);
    ck_assert_ptr_null(lt_data_rival10_list(root, "train", LT_DATA_MASKS_REQUIRED));
    lt_cache_trim();
    lt_mem_stats after = lt_mem_stats_get();
    ck_assert_uint_eq(after.live_blocks, before.live_blocks);
}
END_TEST

/* ------------------------------------------------------------------ */
/* The bundled benchmark generator                                     */
/* ------------------------------------------------------------------ */

/* A tiny Fashion-MNIST in tmp_dir/<dir>: 30 items per split, label i % 10;
 * item i is a 20x20 block of 100 + 5 i with an enclosed 10x10 hole of 0
 * (a dark inside that the mask must keep). */
static void build_fake_fmnist(const char *dir)
{
    mkdirs(dir);
    const char *prefix[2] = {"train", "t10k"};
    enum { N = 30 };
    static uint8_t px[N * 28 * 28];
    uint8_t lab[N];
    for (int i = 0; i < N; i++) {
        lab[i] = (uint8_t)(i % 10);
        uint8_t *p = px + i * 28 * 28;
        memset(p, 0, 28 * 28);
        for (int y = 4; y < 24; y++)
            for (int x = 4; x < 24; x++)
                p[y * 28 + x] = (y >= 9 && y < 19 && x >= 9 && x < 19) ? 0 : (uint8_t)(100 + 5 * i);
    }
    for (int s = 0; s < 2; s++) {
        char rel[128], p[512];
        snprintf(rel, sizeof rel, "%s/%s-images-idx3-ubyte.gz", dir, prefix[s]);
        gzFile g = gzopen(tmp_path(p, sizeof p, rel), "wb");
        ck_assert_ptr_nonnull(g);
        const uint8_t hi[16] = {0, 0, 8, 3, 0, 0, 0, N, 0, 0, 0, 28, 0, 0, 0, 28};
        ck_assert_int_eq(gzwrite(g, hi, 16), 16);
        ck_assert_int_eq(gzwrite(g, px, sizeof px), (int)sizeof px);
        ck_assert_int_eq(gzclose(g), Z_OK);
        /* labels unpacked: the reader takes either form */
        snprintf(rel, sizeof rel, "%s/%s-labels-idx1-ubyte", dir, prefix[s]);
        uint8_t lb[8 + N] = {0, 0, 8, 1, 0, 0, 0, N};
        memcpy(lb + 8, lab, N);
        write_bytes(tmp_path(p, sizeof p, rel), lb, sizeof lb);
    }
}

static lt_data_bgc_opts tiny_opts(const char *out, int threads)
{
    static char src[512], outp[4][512];
    static int k;
    lt_data_bgc_opts o;
    lt_data_bgc_defaults(&o);
    tmp_path(src, sizeof src, "fm");
    k = (k + 1) % 4;
    o.out = tmp_path(outp[k], sizeof outp[k], out);
    o.source = src;
    o.size = 32;
    o.train_per_class = 2;
    o.val_per_class = 3;
    o.fg_min = 0.75;
    o.fg_max = 0.95;
    o.seed = 5;
    o.threads = threads;
    return o;
}

/* Compare every regular file under root_a with the same path under
 * root_b; counts files and differences (nftw passes no user data). */
static const char *cmp_a, *cmp_b;
static int cmp_files, cmp_diffs;
static int cmp_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    if (flag != FTW_F)
        return 0;
    char other[1024];
    snprintf(other, sizeof other, "%s%s", cmp_b, path + strlen(cmp_a));
    FILE *fa = fopen(path, "rb"), *fb = fopen(other, "rb");
    cmp_files++;
    if (!fa || !fb) {
        cmp_diffs++;
    } else {
        int ca, cb;
        do {
            ca = getc(fa);
            cb = getc(fb);
        } while (ca == cb && ca != EOF);
        cmp_diffs += ca != cb;
    }
    if (fa)
        fclose(fa);
    if (fb)
        fclose(fb);
    return 0;
}

static void compare_trees(const char *a, const char *b, int *files, int *diffs)
{
    cmp_a = a;
    cmp_b = b;
    cmp_files = cmp_diffs = 0;
    ck_assert_int_eq(nftw(a, cmp_entry, 16, FTW_PHYS), 0);
    *files = cmp_files;
    *diffs = cmp_diffs;
}

START_TEST(bgc_same_seed_gives_byte_identical_output_for_any_thread_count)
{
    build_fake_fmnist("fm");
    lt_data_bgc_opts a = tiny_opts("bgA", 1), b = tiny_opts("bgB", 3), c = tiny_opts("bgC", 2);
    c.seed = 6;
    ck_assert_msg(lt_data_bgc_generate(&a) == 0, "%s", lt_last_error());
    ck_assert_msg(lt_data_bgc_generate(&b) == 0, "%s", lt_last_error());
    ck_assert_msg(lt_data_bgc_generate(&c) == 0, "%s", lt_last_error());
    int files, diffs;
    compare_trees(a.out, b.out, &files, &diffs);
    /* train: 20 images + 20 masks; val: 30 x 8 variants + 30 masks; meta */
    ck_assert_int_eq(files, 20 + 20 + 240 + 30 + 1);
    ck_assert_int_eq(diffs, 0);
    compare_trees(b.out, a.out, &files, &diffs); /* nothing extra in b */
    ck_assert_int_eq(files, 311);
    compare_trees(a.out, c.out, &files, &diffs);
    ck_assert_int_gt(diffs, 100);
}
END_TEST

/* "fg_X_bg_Y.png" -> Y into out. */
static void bg_stem(const char *path, char *out, size_t n)
{
    const char *name = strrchr(path, '/') + 1, *bg = strstr(name, "_bg_") + 4;
    const char *dot = strrchr(bg, '.');
    snprintf(out, n, "%.*s", (int)(dot - bg), bg);
}

/* Label of the val image with this stem, from the original listing. */
static int64_t label_of_stem(const lt_data_list *orig, const char *stem)
{
    for (size_t i = 0; i < orig->n; i++) {
        const char *name = strrchr(orig->samples[i].path, '/') + 1;
        if (strncmp(name, stem, strlen(stem)) == 0 && name[strlen(stem)] == '.')
            return orig->samples[i].label;
    }
    return -1;
}

START_TEST(bgc_output_is_the_in9_layout_with_consistent_variants)
{
    size_t m = lt_frame_push();
    build_fake_fmnist("fm");
    lt_data_bgc_opts o = tiny_opts("bg", 2);
    ck_assert_msg(lt_data_bgc_generate(&o) == 0, "%s", lt_last_error());
    static const char *const variants[] = {"original",   "only_fg",    "no_fg",
                                           "only_bg_b",  "only_bg_t",  "mixed_same",
                                           "mixed_rand", "mixed_next"};
    lt_data_list *orig = lt_data_in9_list(o.out, "original", "val", LT_DATA_MASKS_REQUIRED);
    ck_assert_msg(orig != NULL, "%s", lt_last_error());
    ck_assert_int_eq(orig->nclasses, 10);
    ck_assert_str_eq(orig->classes[0], "00_tshirt");
    ck_assert_str_eq(orig->classes[9], "09_ankle_boot");
    lt_data_list *tr = lt_data_in9_list(o.out, "original", "train", LT_DATA_MASKS_REQUIRED);
    ck_assert_msg(tr != NULL, "%s", lt_last_error());
    ck_assert_uint_eq(tr->n, 20);
    assert_tail(tr->samples[0].mask_path, ".npy");
    lt_data_list_free(tr);
    int bad = 0;
    for (int v = 0; v < 8; v++) {
        lt_data_list *l = lt_data_in9_list(o.out, variants[v], "val", LT_DATA_MASKS_REQUIRED);
        ck_assert_msg(l != NULL, "%s: %s", variants[v], lt_last_error());
        ck_assert_uint_eq(l->n, 30);
        for (size_t i = 0; i < l->n; i++) {
            /* the mask resolves to the image's own (fg) stem */
            const char *name = strrchr(l->samples[i].path, '/') + 1;
            const char *mname = strrchr(l->samples[i].mask_path, '/') + 1;
            const char *fg = v >= 5 ? name + 3 : name;
            if (strncmp(fg, mname, strlen(mname) - 4) != 0)
                bad++;
            if (v < 5)
                continue;
            char stem[64];
            bg_stem(l->samples[i].path, stem, sizeof stem);
            int64_t y = l->samples[i].label, by = label_of_stem(orig, stem);
            if (by < 0 || strncmp(fg, stem, strlen(stem)) == 0)
                bad++; /* the background is another val image */
            if (v == 5 && by != y)
                bad++;
            if (v == 7 && by != (y + 1) % 10)
                bad++;
        }
        lt_data_list_free(l);
    }
    ck_assert_int_eq(bad, 0);
    /* pixels: only_fg / no_fg / only_bg_t split the original at the mask,
     * and the mask keeps the item's dark inside (value 0 in the item) */
    char p[1024];
    const char *first = orig->samples[0].path;
    const char *name = strrchr(first, '/') + 1;
    lt_tensor *im[4];
    const char *vv[4] = {"original", "only_fg", "no_fg", "only_bg_t"};
    for (int v = 0; v < 4; v++) {
        snprintf(p, sizeof p, "%s/%s/val/%s/%s", o.out, vv[v], orig->classes[0], name);
        im[v] = lt_data_image_read(p, 3);
        ck_assert_msg(im[v] != NULL, "%s", lt_last_error());
    }
    lt_tensor *mk = lt_data_mask_read(orig->samples[0].mask_path);
    ck_assert_ptr_nonnull(mk);
    const uint8_t *mm = lt_data(mk);
    int64_t area = 0, dark_inside = 0;
    for (int c = 0; c < 3; c++)
        for (int q = 0; q < 32 * 32; q++) {
            uint8_t a = ((uint8_t *)lt_data(im[0]))[c * 1024 + q];
            uint8_t f = ((uint8_t *)lt_data(im[1]))[c * 1024 + q];
            uint8_t n = ((uint8_t *)lt_data(im[2]))[c * 1024 + q];
            uint8_t t = ((uint8_t *)lt_data(im[3]))[c * 1024 + q];
            if (mm[q])
                bad += f != a || n != 0;
            else
                bad += f != 0 || n != a || t != a;
            area += c == 0 && mm[q];
            dark_inside += c == 0 && mm[q] && a <= 10;
        }
    ck_assert_int_eq(bad, 0);
    ck_assert_int_gt(area, 200);
    ck_assert_int_gt(dark_inside, 20);
    /* meta.json */
    snprintf(p, sizeof p, "%s/meta.json", o.out);
    size_t n;
    unsigned char *text = read_bytes(p, &n);
    cJSON *j = cJSON_ParseWithLength((const char *)text, n);
    free(text);
    ck_assert_ptr_nonnull(j);
    cJSON *params = cJSON_GetObjectItem(j, "params");
    ck_assert_int_eq(cJSON_GetObjectItem(params, "size")->valueint, 32);
    ck_assert_double_eq(cJSON_GetObjectItem(params, "bg_correlation")->valuedouble, 0.9);
    ck_assert_int_eq(cJSON_GetObjectItem(params, "seed")->valueint, 5);
    ck_assert_str_eq(cJSON_GetObjectItem(params, "format")->valuestring, "png");
    cJSON *counts = cJSON_GetObjectItem(j, "counts");
    ck_assert_int_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(counts, "val"), "mixed_next")->valueint, 30);
    ck_assert_int_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(counts, "train"), "original")->valueint, 20);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(j, "classes")), 10);
    ck_assert_str_eq(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "class_names"), 9)->valuestring,
                     "Ankle boot");
    cJSON_Delete(j);
    /* the loader reads it: one batch with masks */
    lt_data_loader_opts lo = {.batch_size = 30, .masks = true, .workers = 2};
    lt_data_loader *ld = lt_data_loader_new(orig, &lo);
    lt_data_batch b;
    ck_assert_int_eq(lt_data_loader_next(ld, &b), 1);
    assert_shape(b.images, 4, (int64_t[]){30, 3, 32, 32});
    assert_shape(b.masks, 4, (int64_t[]){30, 1, 32, 32});
    lt_data_loader_free(ld);
    /* and the grid */
    snprintf(p, sizeof p, "%s/grid.png", tmp_dir);
    ck_assert_msg(lt_data_bgc_grid(o.out, p, 32) == 0, "%s", lt_last_error());
    lt_tensor *g = lt_data_image_read(p, 0);
    ck_assert_ptr_nonnull(g);
    ck_assert_int_eq(lt_size(g, 1), 11 + 8 * 34 + 2);
    lt_data_list_free(orig);
    lt_frame_pop(m);
}
END_TEST

START_TEST(bgc_bad_options_and_inputs_are_errors)
{
    build_fake_fmnist("fm");
    lt_data_bgc_opts o = tiny_opts("bg", 1);
    o.val_per_class = 4; /* the fake test split has 3 per class */
    ck_assert_int_eq(lt_data_bgc_generate(&o), -1);
    ck_assert_error_has("bg_challenge: Fashion-MNIST test has 3 items of class 0");
    o = tiny_opts("bg", 1);
    o.bg_correlation = 1.5;
    ck_assert_int_eq(lt_data_bgc_generate(&o), -1);
    ck_assert_error_has("bg correlation 1.5 outside 0..1");
    o = tiny_opts("bg", 1);
    char nope[512];
    o.source = tmp_path(nope, sizeof nope, "nope");
    ck_assert_int_eq(lt_data_bgc_generate(&o), -1);
    ck_assert_error_has("/nope/train-images-idx3-ubyte.gz: no such file");
    /* a corrupt source file is named */
    char p[512];
    write_bytes(tmp_path(p, sizeof p, "fm/t10k-labels-idx1-ubyte"), "\0\0\x09\x01", 4);
    o = tiny_opts("bg", 1);
    ck_assert_int_eq(lt_data_bgc_generate(&o), -1);
    ck_assert_error_has("t10k-labels-idx1-ubyte");
    /* a non-empty output folder */
    build_fake_fmnist("fm");
    o = tiny_opts("bg", 1);
    ck_assert_int_eq(lt_data_bgc_generate(&o), 0);
    ck_assert_int_eq(lt_data_bgc_generate(&o), -1);
    ck_assert_error_has("folder is not empty");
    o.overwrite = true;
    o.format = LT_DATA_BGC_JPEG;
    ck_assert_msg(lt_data_bgc_generate(&o) == 0, "%s", lt_last_error());
    lt_data_list *l = lt_data_in9_list(o.out, "mixed_rand", "val", LT_DATA_MASKS_REQUIRED);
    ck_assert_ptr_nonnull(l);
    /* png and JPEG files side by side now: 60 */
    ck_assert_uint_eq(l->n, 60);
    lt_data_list_free(l);
}
END_TEST

/* Run a shell command; its exit status, with stdout+stderr in out. */
static int run_cmd(const char *cmd, char *out, size_t n)
{
    FILE *f = popen(cmd, "r");
    ck_assert_ptr_nonnull(f);
    size_t got = fread(out, 1, n - 1, f);
    out[got] = '\0';
    int st = pclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

START_TEST(make_bg_challenge_tool_documents_flags_and_refuses_bad_input)
{
    const char *tool = "tools/make_bg_challenge";
    if (access(tool, X_OK) != 0) {
        fprintf(stderr, "skipped: %s not built (make tools)\n", tool);
        return;
    }
    static char out[16384];
    ck_assert_int_eq(run_cmd("tools/make_bg_challenge --help 2>&1", out, sizeof out), 0);
    const char *flags[] = {"--out", "--source", "--size", "--train-per-class", "--val-per-class",
                           "--bg-correlation", "--fg-min", "--fg-max", "--seed", "--format",
                           "--jpeg-quality", "--threads", "--force", "--grid", "--grid-cell",
                           "--quiet", "--help", "--version"};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        ck_assert_msg(strstr(out, flags[i]) != NULL, "--help does not mention %s", flags[i]);
    ck_assert_int_eq(run_cmd("tools/make_bg_challenge --version 2>&1", out, sizeof out), 0);
    ck_assert(strstr(out, LT_VERSION_STRING) != NULL);
    char cmd[2048];
    /* bad values: exit 2, one line naming the flag */
    const char *bad[] = {"--size 3", "--bg-correlation 2", "--format gif", "--seed -1",
                         "--threads 0", "--bogus", "--size"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(cmd, sizeof cmd, "%s --out %s/x %s 2>&1", tool, tmp_dir, bad[i]);
        ck_assert_int_eq(run_cmd(cmd, out, sizeof out), 2);
        ck_assert_msg(strchr(out, '\n') == out + strlen(out) - 1, "not one line: %s", out);
        char first[32];
        sscanf(bad[i], "%31s", first);
        ck_assert_msg(strstr(out, first) != NULL, "%s: %s", bad[i], out);
    }
    snprintf(cmd, sizeof cmd, "%s 2>&1", tool);
    ck_assert_int_eq(run_cmd(cmd, out, sizeof out), 2);
    ck_assert(strstr(out, "--out") != NULL);
    /* a real run on the fake source, with its grid; a missing source: 1 */
    build_fake_fmnist("fm");
    snprintf(cmd, sizeof cmd,
             "%s --out %s/t --source %s/fm --size 24 --train-per-class 1 --val-per-class 2 "
             "--seed 3 -j 2 --grid %s/g.png 2>&1",
             tool, tmp_dir, tmp_dir, tmp_dir);
    ck_assert_msg(run_cmd(cmd, out, sizeof out) == 0, "%s", out);
    ck_assert(strstr(out, "files") != NULL); /* progress on stderr */
    char p[512];
    ck_assert_int_eq(access(tmp_path(p, sizeof p, "g.png"), R_OK), 0);
    ck_assert_int_eq(access(tmp_path(p, sizeof p, "t/mixed_next/val/05_sandal"), X_OK), 0);
    snprintf(cmd, sizeof cmd, "%s --out %s/u --source %s/none 2>&1", tool, tmp_dir, tmp_dir);
    ck_assert_int_eq(run_cmd(cmd, out, sizeof out), 1);
    ck_assert(strstr(out, "make_bg_challenge: bg_challenge: ") == out);
    ck_assert(strchr(out, '\n') == out + strlen(out) - 1);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Suite                                                               */
/* ------------------------------------------------------------------ */

static Suite *data_suite(void)
{
    Suite *s = suite_create("data");
    TCase *tc = tcase_create("npy");
    tcase_add_unchecked_fixture(tc, tmp_setup, tmp_teardown);
    tcase_add_test(tc, npy_reads_numpy_v1_f4_c_order);
    tcase_add_test(tc, npy_reads_numpy_v2_f8);
    tcase_add_test(tc, npy_reads_numpy_v3_i8_extremes);
    tcase_add_test(tc, npy_header_info_reports_version_order_and_dtype);
    tcase_add_test(tc, npy_reads_numpy_big_endian);
    tcase_add_test(tc, npy_reads_fortran_order_into_c_order);
    tcase_add_test(tc, npy_reads_bool_i1_u1);
    tcase_add_test(tc, npy_reads_scalar_and_empty);
    tcase_add_test(tc, npy_round_trip_is_exact_for_every_dtype);
    tcase_add_test(tc, npy_write_of_a_view_writes_its_logical_order);
    tcase_add_test(tc, npy_header_parser_accepts_numpy_variants);
    tcase_add_test(tc, npy_bad_header_dicts_are_errors);
    tcase_add_test(tc, npy_bad_shapes_are_errors);
    tcase_add_test(tc, npy_unknown_dtypes_are_errors);
    tcase_add_test(tc, npy_bad_magic_version_and_truncation_are_errors);
    tcase_add_test(tc, npy_header_byte_flips_never_crash);
    tcase_add_test(tc, npy_write_errors_name_the_file);
    suite_add_tcase(s, tc);

    tc = tcase_create("idx");
    tcase_add_unchecked_fixture(tc, tmp_setup, tmp_teardown);
    tcase_add_test(tc, idx_reads_hand_written_u8_images_plain_and_gzipped);
    tcase_add_test(tc, idx_reads_every_element_type_big_endian);
    tcase_add_test(tc, idx_bad_magic_dims_and_sizes_are_errors);
    tcase_add_test(tc, idx_truncated_or_corrupt_gzip_is_an_error);
    tcase_add_test(tc, idx_reads_installed_fashion_mnist_if_present);
    suite_add_tcase(s, tc);

    tc = tcase_create("image");
    tcase_add_unchecked_fixture(tc, tmp_setup, tmp_teardown);
    tcase_add_test(tc, png_round_trip_is_exact_for_1_to_4_channels);
    tcase_add_test(tc, png_write_takes_views_2d_and_float_images);
    tcase_add_test(tc, image_read_converts_channels);
    tcase_add_test(tc, jpeg_round_trip_is_within_measured_tolerance);
    tcase_add_test(tc, bmp_decodes_hand_written_file);
    tcase_add_test(tc, hostile_headers_are_refused_before_decoding);
    tcase_add_test(tc, image_decode_from_memory_matches_file);
    tcase_add_test(tc, truncated_png_and_jpeg_are_errors);
    tcase_add_test(tc, corrupt_png_is_an_error);
    tcase_add_test(tc, non_images_and_bad_arguments_are_errors);
    tcase_add_test(tc, writing_to_a_full_device_is_an_error);
    tcase_add_test(tc, decoders_run_on_several_threads_at_once);
    tcase_add_test(tc, codecs_free_every_block);
    suite_add_tcase(s, tc);

    tc = tcase_create("datasets");
    tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
    tcase_add_test(tc, in9_list_gives_labels_from_sorted_classes_and_masks);
    tcase_add_test(tc, in9_mixed_images_take_the_foreground_mask);
    tcase_add_test(tc, in9_missing_mask_empty_class_and_non_image_are_errors);
    tcase_add_test(tc, folder_list_reads_plain_layout_with_optional_masks);
    tcase_add_test(tc, mask_read_rejects_bad_shapes_and_names_the_file);
    tcase_add_test(tc, listings_free_every_block);
    tcase_add_test(tc, rival10_list_gives_labels_from_label_mappings_and_masks);
    tcase_add_test(tc, rival10_errors_name_the_file);
    tcase_add_test(tc, rival10_listing_frees_every_block);
    suite_add_tcase(s, tc);

    tc = tcase_create("bg_challenge");
    tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, bgc_same_seed_gives_byte_identical_output_for_any_thread_count);
    tcase_add_test(tc, bgc_output_is_the_in9_layout_with_consistent_variants);
    tcase_add_test(tc, bgc_bad_options_and_inputs_are_errors);
    tcase_add_test(tc, make_bg_challenge_tool_documents_flags_and_refuses_bad_input);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    Suite *s = data_suite();
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failures = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failures != 0;
}
