/*
 * fuzz_idx.c: lt_data_idx_decode (MNIST / Fashion-MNIST IDX) on arbitrary
 * bytes.
 *
 * Beyond "no crash, no leak" (fuzz_common.h), the decoder is compared with
 * the format as data.h states it, re-implemented here: magic 00 00 TYPE
 * NDIM, NDIM big-endian u32 dims, then exactly prod(dims) big-endian
 * elements. A file with data elements is accepted exactly when it follows
 * that, and every element reads back as the file has it. (A file whose
 * shape has a zero dim may still be refused when the other dims are too
 * large for a tensor shape.)
 */
#include "fuzz_common.h"

#include <libtensor/data.h>

#include <math.h>

static uint64_t be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* Size of an element of type code, 0 for an unknown code. */
static int esize_of(uint8_t code)
{
    switch (code) {
    case 0x08: case 0x09: return 1;
    case 0x0B: return 2;
    case 0x0C: case 0x0D: return 4;
    case 0x0E: return 8;
    }
    return 0;
}

/* numel when the input is a well-formed IDX file, else -1. */
static int64_t well_formed(const uint8_t *b, size_t n)
{
    if (n < 4 || b[0] || b[1] || !esize_of(b[2]) || b[3] < 1 || b[3] > LT_MAX_DIMS)
        return -1;
    size_t hdr = 4 + 4 * (size_t)b[3];
    if (n < hdr)
        return -1;
    /* the data is at most n bytes, so a product over n is simply wrong */
    unsigned __int128 numel = 1;
    for (int d = 0; d < b[3]; d++) {
        numel *= be(b + 4 + 4 * d, 4);
        if (numel > n)
            numel = (unsigned __int128)n + 1; /* keep it small; still too large */
    }
    if (numel * (unsigned)esize_of(b[2]) != n - hdr)
        return -1;
    return (int64_t)numel;
}

static double element(const uint8_t *p, uint8_t code)
{
    uint64_t u = be(p, esize_of(code));
    switch (code) {
    case 0x08: return (double)u;
    case 0x09: return (int8_t)u;
    case 0x0B: return (int16_t)u;
    case 0x0C: return (int32_t)u;
    case 0x0D: {
        uint32_t w = (uint32_t)u;
        float f;
        memcpy(&f, &w, 4);
        return f;
    }
    default: {
        double f;
        memcpy(&f, &u, 8);
        return f;
    }
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    lt_set_num_threads(1);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_state st = fz_enter();
    int64_t numel = well_formed(data, size);
    lt_tensor *t = lt_data_idx_decode(data, size, FZ_NAME);
    if (!t) {
        fz_check_error("idx_read", FZ_NAME);
        if (numel > 0) {
            fprintf(stderr, "fuzz_idx: a well-formed file was refused: %s\n", lt_last_error());
            abort();
        }
    } else {
        if (numel < 0) {
            fprintf(stderr, "fuzz_idx: a malformed file was accepted\n");
            abort();
        }
        static const lt_dtype want_dt[16] = {[0x08] = LT_U8, [0x09] = LT_I64, [0x0B] = LT_I64,
                                             [0x0C] = LT_I64, [0x0D] = LT_F32, [0x0E] = LT_F64};
        int nd = data[3];
        bool shape_ok = lt_ndim(t) == nd && lt_numel(t) == numel;
        for (int d = 0; shape_ok && d < nd; d++)
            shape_ok = lt_shape(t)[d] == (int64_t)be(data + 4 + 4 * d, 4);
        if (!shape_ok || lt_dtype_of(t) != want_dt[data[2]]) {
            fprintf(stderr, "fuzz_idx: decoded shape or dtype disagrees with the header\n");
            abort();
        }
        fz_touch(t);
        const uint8_t *p = data + 4 + 4 * nd;
        int es = esize_of(data[2]);
        for (int64_t i = 0; i < numel; i++) {
            double want = element(p + i * es, data[2]), got = lt_item_at(t, i);
            if (!(got == want || (isnan(got) && isnan(want)))) {
                fprintf(stderr, "fuzz_idx: element %lld is %g, the file says %g\n",
                        (long long)i, got, want);
                abort();
            }
        }
    }
    fz_leave(st, "idx");
    return 0;
}
