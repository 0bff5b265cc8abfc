/*
 * edges.c: edge removal (Santos & Zanchettin 2023, section 4.4): zero the
 * pixels near the boundary between the foreground mask and the background,
 * to test whether a model reads the object's outline rather than its
 * content. Contract and the exact definition of the band in data.h.
 *
 * The band is computed with an exact squared Euclidean distance transform
 * (Felzenszwalb & Huttenlocher, "Distance Transforms of Sampled
 * Functions", Theory of Computing 8, 2012): one pass over the columns,
 * one over the rows, each the lower envelope of parabolas. Linear in the
 * number of pixels whatever the width.
 */
#include "data_internal.h"

#include <math.h>
#include <string.h>

#define BIG 1e30

/* One dimension: f[i] = min_j (f[j] + (i - j)^2) over the n values at
 * stride s, in place. Entries >= BIG are empty (no parabola). v, z, tmp
 * are scratch of n, n+1 and n entries. */
static void dt_1d(double *f, int64_t n, int64_t s, int64_t *v, double *z, double *tmp)
{
    int64_t first = 0;
    while (first < n && f[first * s] >= BIG)
        first++;
    if (first == n)
        return; /* all empty: stays BIG */
    int64_t k = 0;
    v[0] = first;
    z[0] = -BIG;
    z[1] = BIG;
    for (int64_t q = first + 1; q < n; q++) {
        double fq = f[q * s] + (double)q * (double)q;
        if (f[q * s] >= BIG)
            continue;
        double sp;
        for (;;) {
            int64_t p = v[k];
            sp = (fq - (f[p * s] + (double)p * (double)p)) / (double)(2 * (q - p));
            if (sp > z[k])
                break;
            k--; /* z[0] is -BIG, so this stops at k = 0 */
        }
        k++;
        v[k] = q;
        z[k] = sp;
        z[k + 1] = BIG;
    }
    k = 0;
    for (int64_t q = 0; q < n; q++) {
        while (z[k + 1] < (double)q)
            k++;
        double dq = (double)(q - v[k]);
        tmp[q] = dq * dq + f[v[k] * s];
    }
    for (int64_t q = 0; q < n; q++)
        f[q * s] = tmp[q];
}

/* d[p] = squared distance from pixel p to the nearest pixel with
 * m[p] == want (BIG if there is none). */
static void edt(const uint8_t *m, uint8_t want, int64_t h, int64_t w, double *d, int64_t *v,
                double *z, double *tmp)
{
    for (int64_t i = 0; i < h * w; i++)
        d[i] = ((m[i] != 0) == (want != 0)) ? 0.0 : BIG;
    for (int64_t x = 0; x < w; x++)
        dt_1d(d + x, h, w, v, z, tmp);
    for (int64_t y = 0; y < h; y++)
        dt_1d(d + y * w, w, 1, v, z, tmp);
}

lt_tensor *lt_data_edge_band(const lt_tensor *mask, double width224)
{
    if (!mask)
        return NULL;
    int nd = lt_ndim(mask);
    char s[96];
    if (nd < 2 || lt_dtype_of(mask) != LT_U8 || lt_size(mask, -1) < 1 || lt_size(mask, -2) < 1) {
        lt_set_error("edge_band: mask %s %s: want u8 (H,W), (1,H,W) or (N,1,H,W)",
                     lt_shape_str(mask, s, sizeof s), lt_dtype_name(lt_dtype_of(mask)));
        return NULL;
    }
    if (!(width224 >= 0) || !isfinite(width224)) {
        lt_set_error("edge_band: width %g: want a finite width >= 0", width224);
        return NULL;
    }
    int64_t h = lt_size(mask, -2), w = lt_size(mask, -1), plane = h * w;
    int64_t n = lt_numel(mask) / plane;
    /* W is in pixels of a 224-pixel image: the shorter side stands for
     * 224 (resize-shorter-side-then-crop puts it there). */
    double r = 0.5 * width224 * (double)(h < w ? h : w) / 224.0;
    double r2 = r * r * (1 + 1e-12);
    size_t mark = lt_frame_push();
    lt_tensor *src = lt_contiguous(mask), *out = NULL;
    lt_tensor *band = lt_zeros(nd, lt_shape(mask), LT_U8);
    int64_t len = h > w ? h : w;
    size_t bytes = (size_t)plane * 2 * sizeof(double) +
                   (size_t)len * (sizeof(int64_t) + 2 * sizeof(double)) + sizeof(double);
    double *scratch = (src && band) ? lt_alloc(bytes) : NULL;
    if (!scratch) {
        lt_set_error("edge_band: out of memory for a %lldx%lld mask", (long long)h, (long long)w);
        goto done;
    }
    double *to_bg = scratch, *to_fg = scratch + plane, *z = to_fg + plane;
    double *tmp = z + len + 1;
    int64_t *v = (int64_t *)(tmp + len);
    for (int64_t i = 0; i < n; i++) {
        const uint8_t *m = (const uint8_t *)lt_data(src) + i * plane;
        uint8_t *b = (uint8_t *)lt_data(band) + i * plane;
        if (r <= 0)
            continue;
        edt(m, 0, h, w, to_bg, v, z, tmp);
        edt(m, 1, h, w, to_fg, v, z, tmp);
        for (int64_t p = 0; p < plane; p++)
            b[p] = (m[p] ? to_bg[p] : to_fg[p]) <= r2;
    }
    lt_free(scratch, bytes);
    out = lt_retain(band);
done:
    lt_frame_pop(mark);
    return out ? lt_autorelease(out) : NULL;
}

lt_tensor *lt_data_remove_edges(const lt_tensor *image, const lt_tensor *mask, double width224)
{
    if (!image || !mask)
        return NULL;
    int ni = lt_ndim(image), nm = lt_ndim(mask);
    char s1[96], s2[96];
    bool ok = (ni == 3 && (nm == 2 || (nm == 3 && lt_size(mask, 0) == 1))) ||
              (ni == 4 && nm == 4 && lt_size(mask, 1) == 1 && lt_size(mask, 0) == lt_size(image, 0));
    if (!ok || lt_size(mask, -1) != lt_size(image, -1) || lt_size(mask, -2) != lt_size(image, -2)) {
        lt_set_error("remove_edges: image %s and mask %s: want (C,H,W) with (1,H,W) or (H,W), "
                     "or (N,C,H,W) with (N,1,H,W)",
                     lt_shape_str(image, s1, sizeof s1), lt_shape_str(mask, s2, sizeof s2));
        return NULL;
    }
    size_t mark = lt_frame_push();
    lt_tensor *out = lt_retain(lt_masked_fill(image, lt_data_edge_band(mask, width224), 0.0));
    lt_frame_pop(mark);
    return out ? lt_autorelease(out) : NULL;
}
