/*
 * idx.c: IDX files (MNIST, Fashion-MNIST), plain or gzipped (format in
 * data.h). Reference: http://yann.lecun.com/exdb/mnist/ ("THE IDX FILE
 * FORMAT"); all integers are big-endian.
 */
#include "data_internal.h"

#include <string.h>

#define OP "idx_read"

lt_tensor *lt_data_idx_decode(const void *buf, size_t len, const char *name)
{
    const uint8_t *b = buf;
    const char *nm = lt_data__name(name);
    if (!b && len) {
        lt_set_error(OP ": %s: NULL buffer", nm);
        return NULL;
    }
    if (len < 4) {
        lt_set_error(OP ": %s: truncated header (file is %zu bytes)", nm, len);
        return NULL;
    }
    lt_dtype dt;
    int esize;
    switch (b[2]) {
    case 0x08: dt = LT_U8; esize = 1; break;
    case 0x09: dt = LT_I64; esize = 1; break;
    case 0x0B: dt = LT_I64; esize = 2; break;
    case 0x0C: dt = LT_I64; esize = 4; break;
    case 0x0D: dt = LT_F32; esize = 4; break;
    case 0x0E: dt = LT_F64; esize = 8; break;
    default: dt = LT_U8; esize = 0; break;
    }
    if (b[0] != 0 || b[1] != 0 || esize == 0) {
        lt_set_error(OP ": %s: bad magic number 0x%02x%02x%02x%02x (not an IDX file)", nm, b[0],
                     b[1], b[2], b[3]);
        return NULL;
    }
    int ndim = b[3];
    if (ndim < 1 || ndim > LT_MAX_DIMS) {
        lt_set_error(OP ": %s: bad number of dims %d (want 1..%d)", nm, ndim, LT_MAX_DIMS);
        return NULL;
    }
    size_t hdr = 4 + 4 * (size_t)ndim;
    if (len < hdr) {
        lt_set_error(OP ": %s: truncated header: %d dims need %zu bytes, the file has %zu", nm,
                     ndim, hdr, len);
        return NULL;
    }
    int64_t shape[LT_MAX_DIMS];
    uint64_t numel = 1;
    bool zero = false;
    for (int d = 0; d < ndim; d++) {
        shape[d] = (int64_t)lt_data__load_uint(b + 4 + 4 * d, 4, 1);
        if (shape[d] == 0)
            zero = true;
    }
    /* the product of the non-zero dims must fit even when numel is 0 */
    for (int d = 0; d < ndim; d++) {
        if (shape[d] == 0)
            continue;
        if (numel > (uint64_t)INT64_MAX / (uint64_t)shape[d]) {
            lt_set_error(OP ": %s: bad dims: element count overflows", nm);
            return NULL;
        }
        numel *= (uint64_t)shape[d];
    }
    if (zero)
        numel = 0;
    size_t have = len - hdr;
    if (numel > have / (size_t)esize || numel * (size_t)esize != have) {
        lt_set_error(OP ": %s: size mismatch: the header's %llu elements of %d bytes need %llu "
                     "data bytes, the file has %zu", nm, (unsigned long long)numel, esize,
                     (unsigned long long)numel * (unsigned long long)esize, have);
        return NULL;
    }
    lt_tensor *t = lt_empty(ndim, shape, dt);
    if (!t) {
        lt_set_error(OP ": %s: out of memory for %llu elements", nm, (unsigned long long)numel);
        return NULL;
    }
    const uint8_t *src = b + hdr;
    void *dst = lt_data(t);
    if (dt == LT_U8) {
        memcpy(dst, src, (size_t)numel);
        return t;
    }
    for (uint64_t i = 0; i < numel; i++) {
        uint64_t u = lt_data__load_uint(src + i * (uint64_t)esize, esize, 1);
        switch (b[2]) {
        case 0x09: ((int64_t *)dst)[i] = (int8_t)u; break;
        case 0x0B: ((int64_t *)dst)[i] = (int16_t)(uint16_t)u; break;
        case 0x0C: ((int64_t *)dst)[i] = (int32_t)(uint32_t)u; break;
        case 0x0D: {
            uint32_t w = (uint32_t)u;
            memcpy((float *)dst + i, &w, 4);
            break;
        }
        default: memcpy((double *)dst + i, &u, 8); break;
        }
    }
    return t;
}

lt_tensor *lt_data_idx_read(const char *path)
{
    lt_data__buf b;
    if (lt_data__read_file_gz(OP, path, &b) < 0)
        return NULL;
    lt_tensor *t = lt_data_idx_decode(b.buf, b.len, path);
    lt_data__buf_free(&b);
    return t;
}
