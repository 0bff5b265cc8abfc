/*
 * npy.c: NumPy .npy read and write (format described in data.h).
 *
 * The header is a Python dict literal; we accept exactly the subset NumPy
 * writes (numpy/lib/format.py, write_array_header_1_0 and friends): string
 * keys and descr in ' or " quotes, True/False, a tuple of integers, optional
 * trailing commas, whitespace anywhere between tokens. Everything else is an
 * error. Every read is checked against the header length, so the parser can
 * be fed arbitrary bytes (tests/fuzz).
 */
#include "data_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define OP "npy_read"

static const uint8_t npy_magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};

/* ------------------------------------------------------------------ */
/* Header dict parser                                                  */
/* ------------------------------------------------------------------ */

typedef struct hparse {
    const char *s; /* header text (not NUL terminated) */
    size_t n, i;
    const char *name;
} hparse;

static void skip_ws(hparse *p)
{
    while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' ||
                           p->s[p->i] == '\r'))
        p->i++;
}

/* Consume character c after optional whitespace; 0 if it is there. */
static int expect(hparse *p, char c)
{
    skip_ws(p);
    if (p->i < p->n && p->s[p->i] == c) {
        p->i++;
        return 0;
    }
    return -1;
}

static int peek(hparse *p, char c)
{
    skip_ws(p);
    return p->i < p->n && p->s[p->i] == c;
}

static int bad_dict(hparse *p, const char *what)
{
    lt_set_error(OP ": %s: bad header dict: %s at byte %zu of the header", lt_data__name(p->name),
                 what, p->i);
    return -1;
}

/* A quoted string without escapes into out (cap bytes incl. NUL). */
static int parse_string(hparse *p, char *out, size_t cap)
{
    skip_ws(p);
    if (p->i >= p->n || (p->s[p->i] != '\'' && p->s[p->i] != '"'))
        return bad_dict(p, "expected a quoted string");
    char q = p->s[p->i++];
    size_t k = 0;
    while (p->i < p->n && p->s[p->i] != q) {
        char c = p->s[p->i];
        if (c == '\\' || c == '\n' || (unsigned char)c < 0x20)
            return bad_dict(p, "escape or control character in a string");
        if (k + 1 >= cap)
            return bad_dict(p, "string too long");
        out[k++] = c;
        p->i++;
    }
    if (p->i >= p->n)
        return bad_dict(p, "unterminated string");
    p->i++;
    out[k] = '\0';
    return 0;
}

static int parse_bool(hparse *p, bool *v)
{
    skip_ws(p);
    if (p->n - p->i >= 4 && memcmp(p->s + p->i, "True", 4) == 0) {
        p->i += 4;
        *v = true;
    } else if (p->n - p->i >= 5 && memcmp(p->s + p->i, "False", 5) == 0) {
        p->i += 5;
        *v = false;
    } else {
        return bad_dict(p, "fortran_order is not True or False");
    }
    /* "Truex" is not a literal. */
    if (p->i < p->n && (p->s[p->i] == '_' || (p->s[p->i] >= 'a' && p->s[p->i] <= 'z') ||
                        (p->s[p->i] >= 'A' && p->s[p->i] <= 'Z') ||
                        (p->s[p->i] >= '0' && p->s[p->i] <= '9')))
        return bad_dict(p, "fortran_order is not True or False");
    return 0;
}

/* A non-negative decimal integer (Python 2 files may add an 'L'). */
static int parse_int(hparse *p, int64_t *v)
{
    skip_ws(p);
    size_t start = p->i;
    int64_t x = 0;
    while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') {
        int d = p->s[p->i] - '0';
        if (x > (INT64_MAX - d) / 10)
            return bad_dict(p, "shape entry overflows int64");
        x = x * 10 + d;
        p->i++;
    }
    if (p->i == start)
        return bad_dict(p, "shape entry is not a non-negative integer");
    if (p->i - start > 1 && p->s[start] == '0')
        return bad_dict(p, "shape entry has a leading zero");
    if (p->i < p->n && p->s[p->i] == 'L')
        p->i++;
    *v = x;
    return 0;
}

/* "()" | "(n,)" | "(n, m, ...)" with an optional trailing comma. */
static int parse_shape(hparse *p, lt_data_npy_info *info)
{
    if (expect(p, '(') < 0)
        return bad_dict(p, "shape is not a tuple");
    info->ndim = 0;
    if (expect(p, ')') == 0)
        return 0;
    for (;;) {
        int64_t v = 0;
        if (parse_int(p, &v) < 0)
            return -1;
        if (info->ndim == LT_MAX_DIMS) {
            lt_set_error(OP ": %s: bad shape: more than %d dims", lt_data__name(p->name),
                         LT_MAX_DIMS);
            return -1;
        }
        info->shape[info->ndim++] = v;
        if (expect(p, ',') < 0) {
            /* "(3)" is an int in Python, not a tuple. */
            if (info->ndim == 1)
                return bad_dict(p, "one-element shape without a trailing comma");
            if (expect(p, ')') < 0)
                return bad_dict(p, "expected ',' or ')' in shape");
            return 0;
        }
        if (expect(p, ')') == 0)
            return 0;
    }
}

/* descr such as "<f4" or "|b1" -> kind, itemsize, byte order, dtype. */
static int parse_descr(const char *d, const char *name, lt_data_npy_info *info)
{
    static const struct {
        char kind;
        int size;
        lt_dtype dt;
    } known[] = {
        {'b', 1, LT_U8}, {'u', 1, LT_U8}, {'i', 1, LT_I64}, {'i', 4, LT_I64},
        {'i', 8, LT_I64}, {'f', 4, LT_F32}, {'f', 8, LT_F64},
    };
    if (strlen(d) == 3 && (d[0] == '<' || d[0] == '>' || d[0] == '|') && d[2] >= '1' &&
        d[2] <= '8') {
        for (size_t k = 0; k < sizeof known / sizeof known[0]; k++) {
            if (known[k].kind != d[1] || known[k].size != d[2] - '0')
                continue;
            if (d[0] == '|' && known[k].size > 1) {
                lt_set_error(OP ": %s: bad dtype '%s': byte order '|' on a %d-byte type", name, d,
                             known[k].size);
                return -1;
            }
            info->byteorder = d[0];
            info->kind = d[1];
            info->itemsize = known[k].size;
            info->dtype = known[k].dt;
            return 0;
        }
    }
    lt_set_error(OP ": %s: unsupported dtype '%s' (supported: b1 u1 i1 i4 i8 f4 f8 with byte "
                 "order < > or |)", name, d);
    return -1;
}

static int parse_dict(hparse *p, lt_data_npy_info *info)
{
    bool have_descr = false, have_fortran = false, have_shape = false;
    char descr[40];
    if (expect(p, '{') < 0)
        return bad_dict(p, "expected '{'");
    while (!peek(p, '}')) {
        char key[32];
        if (parse_string(p, key, sizeof key) < 0)
            return -1;
        if (expect(p, ':') < 0)
            return bad_dict(p, "expected ':' after a key");
        if (strcmp(key, "descr") == 0 && !have_descr) {
            if (peek(p, '[') || peek(p, '{')) {
                lt_set_error(OP ": %s: unsupported dtype: structured descr", lt_data__name(p->name));
                return -1;
            }
            if (parse_string(p, descr, sizeof descr) < 0)
                return -1;
            have_descr = true;
        } else if (strcmp(key, "fortran_order") == 0 && !have_fortran) {
            if (parse_bool(p, &info->fortran_order) < 0)
                return -1;
            have_fortran = true;
        } else if (strcmp(key, "shape") == 0 && !have_shape) {
            if (parse_shape(p, info) < 0)
                return -1;
            have_shape = true;
        } else {
            lt_set_error(OP ": %s: bad header dict: unexpected or repeated key '%s'",
                         lt_data__name(p->name), key);
            return -1;
        }
        if (expect(p, ',') < 0) {
            if (!peek(p, '}'))
                return bad_dict(p, "expected ',' or '}'");
        }
    }
    p->i++; /* '}' */
    skip_ws(p);
    if (p->i != p->n)
        return bad_dict(p, "text after the closing '}'");
    if (!have_descr || !have_fortran || !have_shape) {
        lt_set_error(OP ": %s: bad header dict: missing key '%s'", lt_data__name(p->name),
                     !have_descr ? "descr" : !have_fortran ? "fortran_order" : "shape");
        return -1;
    }
    return parse_descr(descr, lt_data__name(p->name), info);
}

/* ------------------------------------------------------------------ */
/* Header                                                              */
/* ------------------------------------------------------------------ */

int lt_data_npy_parse_header(const void *buf, size_t len, const char *name,
                             lt_data_npy_info *info)
{
    const uint8_t *b = buf;
    const char *nm = lt_data__name(name);
    memset(info, 0, sizeof *info);
    if (!b && len) {
        lt_set_error(OP ": %s: NULL buffer", nm);
        return -1;
    }
    if (len < 8 || memcmp(b, npy_magic, sizeof npy_magic) != 0) {
        lt_set_error(OP ": %s: not a .npy file (bad magic)", nm);
        return -1;
    }
    info->major = b[6];
    info->minor = b[7];
    if (info->major < 1 || info->major > 3 || info->minor != 0) {
        lt_set_error(OP ": %s: unsupported .npy format version %d.%d", nm, info->major,
                     info->minor);
        return -1;
    }
    size_t lenbytes = info->major == 1 ? 2 : 4;
    if (len < 8 + lenbytes) {
        lt_set_error(OP ": %s: truncated header (file is %zu bytes)", nm, len);
        return -1;
    }
    uint64_t hlen = lt_data__load_uint(b + 8, (int)lenbytes, 0);
    size_t start = 8 + lenbytes;
    if (hlen > len - start) {
        lt_set_error(OP ": %s: truncated header: it claims %llu bytes, the file has %zu after "
                     "the prefix", nm, (unsigned long long)hlen, len - start);
        return -1;
    }
    for (size_t k = 0; k < hlen; k++)
        if (b[start + k] == 0) {
            lt_set_error(OP ": %s: bad header dict: NUL byte at byte %zu of the header", nm, k);
            return -1;
        }
    hparse p = {.s = (const char *)b + start, .n = (size_t)hlen, .i = 0, .name = name};
    if (parse_dict(&p, info) < 0)
        return -1;

    /* numel and byte count without overflow. The product of the non-zero
     * dims must fit too, even when a zero dim makes numel 0: strides are
     * computed from it. */
    int64_t numel = 1;
    bool zero = false;
    for (int d = 0; d < info->ndim; d++) {
        if (info->shape[d] == 0) {
            zero = true;
            continue;
        }
        /* the same bound as the tensor core: the byte size must fit */
        if (numel > (INT64_MAX / 8) / info->shape[d]) {
            lt_set_error(OP ": %s: bad shape: element count overflows", nm);
            return -1;
        }
        numel *= info->shape[d];
    }
    if (zero)
        numel = 0;
    if ((uint64_t)numel > SIZE_MAX / (uint64_t)info->itemsize) {
        lt_set_error(OP ": %s: bad shape: byte count overflows", nm);
        return -1;
    }
    info->numel = numel;
    info->data_offset = start + (size_t)hlen;
    info->data_bytes = (size_t)numel * (size_t)info->itemsize;
    if (info->data_bytes > len - info->data_offset) {
        char sh[LT_MAX_DIMS * 21 + 4];
        size_t k = 0;
        sh[k++] = '(';
        for (int d = 0; d < info->ndim; d++)
            k += (size_t)snprintf(sh + k, sizeof sh - k, d ? ",%lld" : "%lld",
                                  (long long)info->shape[d]);
        snprintf(sh + k, sizeof sh - k, ")");
        lt_set_error(OP ": %s: data truncated: shape %s of %c%c%d needs %zu bytes after the "
                     "header, the file has %zu", nm, sh, info->byteorder, info->kind,
                     info->itemsize, info->data_bytes, len - info->data_offset);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Data                                                                */
/* ------------------------------------------------------------------ */

/* Convert the file's elements to the tensor's dtype, in C order. For a
 * Fortran-ordered file, output element (i0,...,ik) comes from file element
 * i0 + d0*(i1 + d1*(i2 + ...)); a counter walks the C index and keeps that
 * offset up to date, so there is no second buffer. */
static void convert(const lt_data_npy_info *in, const uint8_t *src, void *dst)
{
    int64_t idx[LT_MAX_DIMS] = {0}, fstride[LT_MAX_DIMS];
    int64_t s = 1;
    for (int d = 0; d < in->ndim; d++) {
        fstride[d] = s;
        s *= in->shape[d];
    }
    bool big = in->byteorder == '>';
    bool fortran = in->fortran_order && in->ndim > 1;
    int64_t off = 0; /* file element of output element i */
    for (int64_t i = 0; i < in->numel; i++) {
        const uint8_t *e = src + (size_t)(fortran ? off : i) * (size_t)in->itemsize;
        uint64_t u = lt_data__load_uint(e, in->itemsize, big);
        switch (in->dtype) {
        case LT_U8:
            ((uint8_t *)dst)[i] = in->kind == 'b' ? (u != 0) : (uint8_t)u;
            break;
        case LT_I64:
            ((int64_t *)dst)[i] = in->itemsize == 1   ? (int64_t)(int8_t)u
                                  : in->itemsize == 4 ? (int64_t)(int32_t)(uint32_t)u
                                                      : (int64_t)u;
            break;
        case LT_F32: {
            uint32_t w = (uint32_t)u;
            memcpy((float *)dst + i, &w, 4);
            break;
        }
        case LT_F64:
            memcpy((double *)dst + i, &u, 8);
            break;
        }
        if (fortran) {
            for (int d = in->ndim - 1; d >= 0; d--) {
                off += fstride[d];
                if (++idx[d] < in->shape[d])
                    break;
                off -= fstride[d] * in->shape[d];
                idx[d] = 0;
            }
        }
    }
}

lt_tensor *lt_data_npy_decode(const void *buf, size_t len, const char *name)
{
    lt_data_npy_info info;
    if (lt_data_npy_parse_header(buf, len, name, &info) < 0)
        return NULL;
    lt_tensor *t = lt_empty(info.ndim, info.shape, info.dtype);
    if (!t) {
        lt_set_error(OP ": %s: out of memory for %lld elements", lt_data__name(name),
                     (long long)info.numel);
        return NULL;
    }
    convert(&info, (const uint8_t *)buf + info.data_offset, lt_data(t));
    return t;
}

lt_tensor *lt_data_npy_read(const char *path)
{
    lt_data__buf b;
    if (lt_data__read_file(OP, path, &b) < 0)
        return NULL;
    lt_tensor *t = lt_data_npy_decode(b.buf, b.len, path);
    lt_data__buf_free(&b);
    return t;
}

/* ------------------------------------------------------------------ */
/* Write                                                               */
/* ------------------------------------------------------------------ */

#undef OP
#define OP "npy_write"

static bool host_little_endian(void)
{
    const uint16_t one = 1;
    return *(const uint8_t *)&one == 1;
}

/* Version 1.0 header: magic, version, u16 length, dict padded with spaces
 * and ended by '\n' so that the data starts at a multiple of 64. */
static size_t build_header(const lt_tensor *t, char *out, size_t cap)
{
    static const char *const descr[] = {[LT_F32] = "<f4", [LT_F64] = "<f8", [LT_I64] = "<i8",
                                        [LT_U8] = "|u1"};
    char dict[400];
    int k = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (",
                     descr[lt_dtype_of(t)]);
    int nd = lt_ndim(t);
    for (int d = 0; d < nd; d++)
        k += snprintf(dict + k, sizeof dict - (size_t)k, d ? ", %lld" : "%lld",
                      (long long)lt_shape(t)[d]);
    k += snprintf(dict + k, sizeof dict - (size_t)k, "%s), }", nd == 1 ? "," : "");
    size_t total = 10 + (size_t)k + 1;
    total = (total + 63) / 64 * 64;
    if (total > cap)
        return 0;
    size_t hlen = total - 10;
    memcpy(out, npy_magic, 6);
    out[6] = 1;
    out[7] = 0;
    out[8] = (char)(hlen & 0xff);
    out[9] = (char)(hlen >> 8);
    memcpy(out + 10, dict, (size_t)k);
    memset(out + 10 + k, ' ', hlen - (size_t)k - 1);
    out[total - 1] = '\n';
    return total;
}

int lt_data_npy_write(const char *path, const lt_tensor *t)
{
    if (!t)
        return -1;
    if (!path) {
        lt_set_error(OP ": NULL path");
        return -1;
    }
    size_t mark = lt_frame_push();
    int rc = -1;
    FILE *f = NULL;
    lt_tensor *c = lt_contiguous(t);
    if (!c) {
        char why[256];
        snprintf(why, sizeof why, "%s", lt_last_error());
        lt_set_error(OP ": %s: %s", path, why);
        goto done;
    }
    char hdr[512];
    size_t hn = build_header(c, hdr, sizeof hdr);
    bool regular;
    f = lt_data__create(OP, path, &regular);
    if (!f)
        goto done;
    size_t es = lt_dtype_size(lt_dtype_of(c));
    size_t nbytes = (size_t)lt_numel(c) * es;
    bool ok = fwrite(hdr, 1, hn, f) == hn;
    if (ok && (host_little_endian() || es == 1)) {
        ok = fwrite(lt_data(c), 1, nbytes, f) == nbytes;
    } else if (ok) {
        /* Big-endian host: swap element by element. */
        const uint8_t *src = lt_data(c);
        for (size_t i = 0; ok && i < nbytes; i += es) {
            uint8_t el[8] = {0};
            for (size_t j = 0; j < es; j++)
                el[j] = src[i + es - 1 - j];
            ok = fwrite(el, 1, es, f) == es;
        }
    }
    int e = errno;
    if (fclose(f) != 0 && ok) {
        ok = false;
        e = errno;
    }
    f = NULL;
    if (!ok) {
        lt_set_error(OP ": %s: write failed: %s", path, strerror(e));
        lt_data__discard(path, regular);
        goto done;
    }
    rc = 0;
done:
    if (f)
        fclose(f);
    lt_frame_pop(mark);
    return rc;
}
