/*
 * transform.c: geometric transforms that move an image and its mask
 * together (resize, crop, center crop, random-resized-crop, horizontal
 * flip), conversion to f32 and normalization, and the pipeline the loader
 * runs (lt_data_transform_apply). Contracts in data.h.
 *
 * Conventions follow torchvision on PIL images, which is what the paper's
 * training code ran:
 *   - bilinear resize is PIL's: a separable triangle filter whose support
 *     grows with the downscale factor (antialiasing; torchvision's
 *     antialias=True), pixel centres at +0.5, edge pixels clamped. For
 *     upscaling it is ordinary half-pixel bilinear interpolation.
 *   - nearest resize (masks) is PIL's: source = floor((x + 0.5) * in/out).
 *   - crops outside the image read zeros (TF.crop / CenterCrop pad).
 *   - RandomResizedCrop.get_params, 10 attempts then the centre fallback.
 */
#include "data_internal.h"

#include <math.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Argument checks                                                     */
/* ------------------------------------------------------------------ */

/* image (C,H,W) u8 or f32 with C in 1..4; mask (1,H,W) u8 or NULL. */
static int check_pair(const char *op, const lt_tensor *img, const lt_tensor *mask)
{
    char s1[96], s2[96];
    if (!img) {
        lt_set_error("%s: NULL image", op);
        return -1;
    }
    lt_dtype dt = lt_dtype_of(img);
    if (lt_ndim(img) != 3 || lt_size(img, 0) < 1 || lt_size(img, 0) > 4 ||
        lt_size(img, 1) < 1 || lt_size(img, 2) < 1 || (dt != LT_U8 && dt != LT_F32)) {
        lt_set_error("%s: image %s %s: want (C,H,W), C 1..4, u8 or f32", op,
                     lt_shape_str(img, s1, sizeof s1), lt_dtype_name(dt));
        return -1;
    }
    if (!mask)
        return 0;
    if (lt_ndim(mask) != 3 || lt_size(mask, 0) != 1 || lt_dtype_of(mask) != LT_U8 ||
        lt_size(mask, 1) != lt_size(img, 1) || lt_size(mask, 2) != lt_size(img, 2)) {
        lt_set_error("%s: mask %s %s does not fit image %s: want u8 (1,H,W)", op,
                     lt_shape_str(mask, s2, sizeof s2), lt_dtype_name(lt_dtype_of(mask)),
                     lt_shape_str(img, s1, sizeof s1));
        return -1;
    }
    return 0;
}

static int check_size(const char *op, int64_t h, int64_t w)
{
    if (h < 1 || w < 1 || h > LT_DATA_IMAGE_MAX_DIM || w > LT_DATA_IMAGE_MAX_DIM) {
        lt_set_error("%s: output size %lldx%lld outside 1..%d", op, (long long)h, (long long)w,
                     LT_DATA_IMAGE_MAX_DIM);
        return -1;
    }
    return 0;
}

/* The pair's mask argument: NULL when the caller passed none. */
static lt_tensor *mask_of(lt_tensor **mask) { return mask ? *mask : NULL; }

/* ------------------------------------------------------------------ */
/* Resize                                                              */
/* ------------------------------------------------------------------ */

/* PIL's filter weights for one axis (Imaging/Resample.c, precompute_coeffs
 * with the bilinear filter): output x covers input [x*s, (x+1)*s), centre
 * (x+0.5)*s; support 1 * max(s, 1); weights triangle((i + 0.5 - centre) /
 * max(s,1)), normalised to sum 1. first[x] is the first input index,
 * count[x] how many, w[x*kmax + k] the weights. */
typedef struct axis_coeffs {
    int64_t *first;
    int *count;
    float *w;
    int kmax;
    size_t bytes;
    void *block;
} axis_coeffs;

static void coeffs_free(axis_coeffs *c)
{
    if (c->block)
        lt_free(c->block, c->bytes);
    memset(c, 0, sizeof *c);
}

static int coeffs_make(axis_coeffs *c, int64_t in, int64_t out)
{
    memset(c, 0, sizeof *c);
    double scale = (double)in / (double)out;
    double fscale = scale > 1.0 ? scale : 1.0;
    double support = fscale; /* bilinear support 1.0, times the scale */
    c->kmax = (int)ceil(support) * 2 + 1;
    c->bytes = (size_t)out * (sizeof(int64_t) + sizeof(int) + (size_t)c->kmax * sizeof(float));
    c->block = lt_alloc(c->bytes);
    if (!c->block)
        return -1;
    c->first = c->block;
    c->w = (float *)(c->first + out);
    c->count = (int *)(c->w + (size_t)out * (size_t)c->kmax);
    for (int64_t x = 0; x < out; x++) {
        double centre = ((double)x + 0.5) * scale;
        int64_t lo = (int64_t)floor(centre - support + 0.5);
        int64_t hi = (int64_t)floor(centre + support + 0.5);
        if (lo < 0)
            lo = 0;
        if (hi > in)
            hi = in;
        int n = (int)(hi - lo);
        if (n > c->kmax)
            n = c->kmax;
        float *w = c->w + (size_t)x * (size_t)c->kmax;
        double sum = 0;
        for (int k = 0; k < n; k++) {
            double t = fabs(((double)(lo + k) + 0.5 - centre) / fscale);
            double v = t < 1.0 ? 1.0 - t : 0.0;
            w[k] = (float)v;
            sum += v;
        }
        for (int k = 0; k < n; k++)
            w[k] = sum > 0 ? (float)(w[k] / sum) : 0.0f;
        c->first[x] = lo;
        c->count[x] = n;
    }
    return 0;
}

/* Bilinear (antialiased) resize of a (C,H,W) u8/f32 image; u8 results are
 * rounded to nearest and clamped, as PIL does. */
static lt_tensor *resize_image(const lt_tensor *img, int64_t oh, int64_t ow)
{
    size_t mark = lt_frame_push();
    lt_tensor *src = lt_contiguous(img), *out = NULL;
    int64_t c = lt_size(img, 0), h = lt_size(img, 1), w = lt_size(img, 2);
    axis_coeffs cx, cy;
    int rx = coeffs_make(&cx, w, ow), ry = coeffs_make(&cy, h, oh);
    size_t tbytes = (size_t)h * (size_t)ow * sizeof(float);
    float *tmp = (rx == 0 && ry == 0) ? lt_alloc(tbytes) : NULL;
    lt_tensor *dst = lt_empty(3, (int64_t[]){c, oh, ow}, lt_dtype_of(img));
    if (!src || !tmp || !dst) {
        lt_set_error("resize: out of memory");
        goto done;
    }
    bool u8 = lt_dtype_of(img) == LT_U8;
    const uint8_t *s8 = lt_data(src);
    const float *sf = lt_data(src);
    uint8_t *d8 = lt_data(dst);
    float *df = lt_data(dst);
    for (int64_t ch = 0; ch < c; ch++) {
        /* horizontal pass into tmp (h, ow) */
        for (int64_t y = 0; y < h; y++) {
            size_t row = (size_t)(ch * h + y) * (size_t)w;
            float *trow = tmp + (size_t)y * (size_t)ow;
            for (int64_t x = 0; x < ow; x++) {
                const float *wt = cx.w + (size_t)x * (size_t)cx.kmax;
                size_t x0 = row + (size_t)cx.first[x];
                int n = cx.count[x];
                float acc = 0;
                if (u8)
                    for (int k = 0; k < n; k++)
                        acc += wt[k] * (float)s8[x0 + (size_t)k];
                else
                    for (int k = 0; k < n; k++)
                        acc += wt[k] * sf[x0 + (size_t)k];
                trow[x] = acc;
            }
        }
        /* vertical pass into dst, row by row so the inner loop is contiguous */
        for (int64_t y = 0; y < oh; y++) {
            const float *wt = cy.w + (size_t)y * (size_t)cy.kmax;
            const float *t0 = tmp + (size_t)cy.first[y] * (size_t)ow;
            size_t orow = (size_t)(ch * oh + y) * (size_t)ow;
            int n = cy.count[y];
            for (int64_t x = 0; x < ow; x++) {
                float acc = 0;
                for (int k = 0; k < n; k++)
                    acc += wt[k] * t0[(size_t)k * (size_t)ow + (size_t)x];
                if (u8) {
                    float r = nearbyintf(acc);
                    d8[orow + (size_t)x] = (uint8_t)(r >= 255.0f ? 255 : r > 0.0f ? r : 0);
                } else {
                    df[orow + (size_t)x] = acc;
                }
            }
        }
    }
    out = lt_retain(dst);
done:
    if (tmp)
        lt_free(tmp, tbytes);
    coeffs_free(&cx);
    coeffs_free(&cy);
    lt_frame_pop(mark);
    return out ? lt_autorelease(out) : NULL;
}

/* Nearest-neighbour resize of a (C,H,W) u8 tensor (PIL's NEAREST). */
static lt_tensor *resize_nearest(const lt_tensor *m, int64_t oh, int64_t ow)
{
    size_t mark = lt_frame_push();
    lt_tensor *src = lt_contiguous(m), *out = NULL;
    int64_t c = lt_size(m, 0), h = lt_size(m, 1), w = lt_size(m, 2);
    lt_tensor *dst = lt_empty(3, (int64_t[]){c, oh, ow}, LT_U8);
    if (src && dst) {
        const uint8_t *s = lt_data(src);
        uint8_t *d = lt_data(dst);
        for (int64_t ch = 0; ch < c; ch++)
            for (int64_t y = 0; y < oh; y++) {
                int64_t sy = (int64_t)(((double)y + 0.5) * (double)h / (double)oh);
                if (sy > h - 1)
                    sy = h - 1;
                for (int64_t x = 0; x < ow; x++) {
                    int64_t sx = (int64_t)(((double)x + 0.5) * (double)w / (double)ow);
                    if (sx > w - 1)
                        sx = w - 1;
                    d[(ch * oh + y) * ow + x] = s[(ch * h + sy) * w + sx];
                }
            }
        out = lt_retain(dst);
    }
    lt_frame_pop(mark);
    return out ? lt_autorelease(out) : NULL;
}

lt_tensor *lt_data_resize_mask(const lt_tensor *mask, int64_t h, int64_t w)
{
    if (!mask)
        return NULL;
    if (check_size("resize_mask", h, w) < 0)
        return NULL;
    if (lt_ndim(mask) != 3 || lt_dtype_of(mask) != LT_U8) {
        char s[96];
        lt_set_error("resize_mask: mask %s %s: want u8 (C,H,W)", lt_shape_str(mask, s, sizeof s),
                     lt_dtype_name(lt_dtype_of(mask)));
        return NULL;
    }
    return resize_nearest(mask, h, w);
}

int lt_data_resize(lt_tensor **image, lt_tensor **mask, int64_t h, int64_t w)
{
    if (!image || check_pair("resize", *image, mask_of(mask)) < 0 ||
        check_size("resize", h, w) < 0)
        return -1;
    lt_tensor *img = resize_image(*image, h, w);
    lt_tensor *m = mask_of(mask) ? resize_nearest(*mask, h, w) : NULL;
    if (!img || (mask_of(mask) && !m))
        return -1;
    *image = img;
    if (mask_of(mask))
        *mask = m;
    return 0;
}

int lt_data_resize_shorter(lt_tensor **image, lt_tensor **mask, int64_t size)
{
    if (!image || check_pair("resize", *image, mask_of(mask)) < 0 ||
        check_size("resize", size, size) < 0)
        return -1;
    int64_t h = lt_size(*image, 1), w = lt_size(*image, 2);
    /* torchvision's _compute_resized_output_size: the long side is
     * int(size * long / short), truncated. */
    int64_t oh = h <= w ? size : (int64_t)((double)size * (double)h / (double)w);
    int64_t ow = h <= w ? (int64_t)((double)size * (double)w / (double)h) : size;
    if (oh < 1)
        oh = 1;
    if (ow < 1)
        ow = 1;
    return lt_data_resize(image, mask, oh, ow);
}

/* ------------------------------------------------------------------ */
/* Crops and flips                                                     */
/* ------------------------------------------------------------------ */

/* Rows top..top+h, columns left..left+w of a (C,H,W) tensor; outside the
 * image reads zero. */
static lt_tensor *crop_one(const lt_tensor *t, int64_t top, int64_t left, int64_t h, int64_t w)
{
    int64_t c = lt_size(t, 0), H = lt_size(t, 1), W = lt_size(t, 2);
    if (top >= 0 && left >= 0 && top + h <= H && left + w <= W) {
        size_t mark = lt_frame_push();
        lt_tensor *v = lt_slice(lt_slice(t, 1, top, top + h, 1), 2, left, left + w, 1);
        lt_tensor *out = lt_retain(lt_clone(v));
        lt_frame_pop(mark);
        return out ? lt_autorelease(out) : NULL;
    }
    lt_tensor *dst = lt_zeros(3, (int64_t[]){c, h, w}, lt_dtype_of(t));
    if (!dst)
        return NULL;
    int64_t y0 = top > 0 ? top : 0, y1 = top + h < H ? top + h : H;
    int64_t x0 = left > 0 ? left : 0, x1 = left + w < W ? left + w : W;
    if (y0 >= y1 || x0 >= x1)
        return dst;
    size_t mark = lt_frame_push();
    lt_tensor *src = lt_slice(lt_slice(t, 1, y0, y1, 1), 2, x0, x1, 1);
    lt_tensor *to = lt_slice(lt_slice(dst, 1, y0 - top, y1 - top, 1), 2, x0 - left, x1 - left, 1);
    lt_tensor *ok = lt_copy_(to, src);
    lt_frame_pop(mark);
    return ok ? dst : NULL;
}

int lt_data_crop(lt_tensor **image, lt_tensor **mask, int64_t top, int64_t left, int64_t h,
                 int64_t w)
{
    if (!image || check_pair("crop", *image, mask_of(mask)) < 0 || check_size("crop", h, w) < 0)
        return -1;
    if (top < -LT_DATA_IMAGE_MAX_DIM || left < -LT_DATA_IMAGE_MAX_DIM ||
        top > LT_DATA_IMAGE_MAX_DIM || left > LT_DATA_IMAGE_MAX_DIM) {
        lt_set_error("crop: offset (%lld,%lld) out of range", (long long)top, (long long)left);
        return -1;
    }
    lt_tensor *img = crop_one(*image, top, left, h, w);
    lt_tensor *m = mask_of(mask) ? crop_one(*mask, top, left, h, w) : NULL;
    if (!img || (mask_of(mask) && !m))
        return -1;
    *image = img;
    if (mask_of(mask))
        *mask = m;
    return 0;
}

int lt_data_center_crop(lt_tensor **image, lt_tensor **mask, int64_t h, int64_t w)
{
    if (!image || check_pair("center_crop", *image, mask_of(mask)) < 0 ||
        check_size("center_crop", h, w) < 0)
        return -1;
    int64_t H = lt_size(*image, 1), W = lt_size(*image, 2);
    /* torchvision F.center_crop: int(round((H - h) / 2.0)); a negative
     * offset pads (the crop is larger than the image). */
    int64_t top = (int64_t)nearbyint((double)(H - h) / 2.0);
    int64_t left = (int64_t)nearbyint((double)(W - w) / 2.0);
    return lt_data_crop(image, mask, top, left, h, w);
}

static lt_tensor *flip_one(const lt_tensor *t)
{
    size_t mark = lt_frame_push();
    lt_tensor *src = lt_contiguous(t), *out = NULL;
    lt_tensor *dst = lt_empty(lt_ndim(t), lt_shape(t), lt_dtype_of(t));
    if (src && dst) {
        int64_t w = lt_size(t, 2), rows = lt_size(t, 0) * lt_size(t, 1);
        size_t es = lt_dtype_size(lt_dtype_of(t));
        const char *s = lt_data(src);
        char *d = lt_data(dst);
        for (int64_t r = 0; r < rows; r++) {
            const char *sr = s + (size_t)(r * w) * es;
            char *dr = d + (size_t)(r * w) * es;
            if (es == 1)
                for (int64_t x = 0; x < w; x++)
                    dr[x] = sr[w - 1 - x];
            else if (es == 4)
                for (int64_t x = 0; x < w; x++)
                    memcpy(dr + 4 * x, sr + 4 * (w - 1 - x), 4);
            else
                for (int64_t x = 0; x < w; x++)
                    memcpy(dr + (size_t)x * es, sr + (size_t)(w - 1 - x) * es, es);
        }
        out = lt_retain(dst);
    }
    lt_frame_pop(mark);
    return out ? lt_autorelease(out) : NULL;
}

int lt_data_hflip(lt_tensor **image, lt_tensor **mask)
{
    if (!image || check_pair("hflip", *image, mask_of(mask)) < 0)
        return -1;
    lt_tensor *img = flip_one(*image);
    lt_tensor *m = mask_of(mask) ? flip_one(*mask) : NULL;
    if (!img || (mask_of(mask) && !m))
        return -1;
    *image = img;
    if (mask_of(mask))
        *mask = m;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Random-resized-crop                                                 */
/* ------------------------------------------------------------------ */

/* Uniform integer in [lo, hi] (hi >= lo). */
static int64_t rand_int(lt_rng *r, int64_t lo, int64_t hi)
{
    int64_t v = lo + (int64_t)(lt_rng_uniform(r) * (double)(hi - lo + 1));
    return v > hi ? hi : v;
}

int lt_data_rrc_params(lt_rng *r, int64_t H, int64_t W, const double scale[2],
                       const double ratio[2], lt_data_box *box)
{
    if (!r || !box || !scale || !ratio) {
        lt_set_error("random_resized_crop: NULL argument");
        return -1;
    }
    if (H < 1 || W < 1 || !(scale[0] > 0 && scale[0] <= scale[1] && scale[1] <= 1) ||
        !(ratio[0] > 0 && ratio[0] <= ratio[1] && isfinite(ratio[1]))) {
        lt_set_error("random_resized_crop: want image size >= 1, 0 < scale[0] <= scale[1] <= 1 "
                     "and 0 < ratio[0] <= ratio[1]; got %lldx%lld, scale (%g, %g), ratio (%g, %g)",
                     (long long)H, (long long)W, scale[0], scale[1], ratio[0], ratio[1]);
        return -1;
    }
    /* torchvision RandomResizedCrop.get_params: ten tries at an area drawn
     * uniformly from scale * area and an aspect ratio drawn log-uniformly,
     * w = round(sqrt(a * r)), h = round(sqrt(a / r)) (round half to even,
     * like Python's round), accepted when it fits; the offset is uniform. */
    double area = (double)H * (double)W;
    double lr0 = log(ratio[0]), lr1 = log(ratio[1]);
    for (int attempt = 0; attempt < 10; attempt++) {
        double target = area * (scale[0] + (scale[1] - scale[0]) * lt_rng_uniform(r));
        double ar = exp(lr0 + (lr1 - lr0) * lt_rng_uniform(r));
        int64_t w = (int64_t)nearbyint(sqrt(target * ar));
        int64_t h = (int64_t)nearbyint(sqrt(target / ar));
        if (w > 0 && w <= W && h > 0 && h <= H) {
            box->top = rand_int(r, 0, H - h);
            box->left = rand_int(r, 0, W - w);
            box->h = h;
            box->w = w;
            return 0;
        }
    }
    /* Fallback: the whole image, cut to the nearest allowed ratio, centred. */
    double in_ratio = (double)W / (double)H;
    int64_t w, h;
    if (in_ratio < ratio[0]) {
        w = W;
        h = (int64_t)nearbyint((double)w / ratio[0]);
    } else if (in_ratio > ratio[1]) {
        h = H;
        w = (int64_t)nearbyint((double)h * ratio[1]);
    } else {
        w = W;
        h = H;
    }
    if (h < 1)
        h = 1;
    if (w < 1)
        w = 1;
    box->top = (H - h) / 2;
    box->left = (W - w) / 2;
    box->h = h;
    box->w = w;
    return 0;
}

int lt_data_random_resized_crop(lt_rng *r, lt_tensor **image, lt_tensor **mask, int64_t h,
                                int64_t w, const double scale[2], const double ratio[2])
{
    if (!image || check_pair("random_resized_crop", *image, mask_of(mask)) < 0 ||
        check_size("random_resized_crop", h, w) < 0)
        return -1;
    lt_data_box b;
    if (lt_data_rrc_params(r, lt_size(*image, 1), lt_size(*image, 2), scale, ratio, &b) < 0)
        return -1;
    if (lt_data_crop(image, mask, b.top, b.left, b.h, b.w) < 0)
        return -1;
    return lt_data_resize(image, mask, h, w);
}

/* ------------------------------------------------------------------ */
/* To float, normalize                                                 */
/* ------------------------------------------------------------------ */

lt_tensor *lt_data_to_float(const lt_tensor *image)
{
    if (!image)
        return NULL;
    if (lt_dtype_of(image) == LT_F32)
        return lt_contiguous(image);
    if (lt_dtype_of(image) != LT_U8) {
        lt_set_error("to_float: image dtype %s: want u8 or f32", lt_dtype_name(lt_dtype_of(image)));
        return NULL;
    }
    size_t mark = lt_frame_push();
    lt_tensor *src = lt_contiguous(image), *out = NULL;
    lt_tensor *dst = lt_empty(lt_ndim(image), lt_shape(image), LT_F32);
    if (src && dst) {
        /* x / 255 as torchvision's ToTensor computes it (a division, not a
         * multiplication by 1/255, which differs in the last bit) */
        const uint8_t *s = lt_data(src);
        float *d = lt_data(dst);
        int64_t n = lt_numel(image);
        for (int64_t i = 0; i < n; i++)
            d[i] = (float)s[i] / 255.0f;
        out = lt_retain(dst);
    }
    lt_frame_pop(mark);
    return out ? lt_autorelease(out) : NULL;
}

lt_tensor *lt_data_normalize(const lt_tensor *image, const double *mean, const double *std)
{
    if (!image)
        return NULL;
    if (!mean || !std) {
        lt_set_error("normalize: NULL mean or std");
        return NULL;
    }
    int nd = lt_ndim(image);
    if (nd < 3) {
        char s[96];
        lt_set_error("normalize: image %s: want (C,H,W) or (N,C,H,W)",
                     lt_shape_str(image, s, sizeof s));
        return NULL;
    }
    int64_t c = lt_size(image, nd - 3);
    if (c < 1 || c > 4) {
        lt_set_error("normalize: %lld channels: want 1..4", (long long)c);
        return NULL;
    }
    for (int64_t k = 0; k < c; k++)
        if (!(std[k] > 0) || !isfinite(mean[k])) {
            lt_set_error("normalize: channel %lld: want a finite mean and std > 0, got %g, %g",
                         (long long)k, mean[k], std[k]);
            return NULL;
        }
    size_t mark = lt_frame_push();
    lt_tensor *f = lt_clone(lt_data_to_float(image));
    if (f) {
        int64_t outer = lt_numel(f) / (c * lt_size(f, nd - 2) * lt_size(f, nd - 1));
        int64_t plane = lt_size(f, nd - 2) * lt_size(f, nd - 1);
        float *p = lt_data(f);
        for (int64_t o = 0; o < outer; o++)
            for (int64_t k = 0; k < c; k++) {
                float m = (float)mean[k], sd = (float)std[k];
                float *q = p + (o * c + k) * plane;
                for (int64_t i = 0; i < plane; i++)
                    q[i] = (q[i] - m) / sd; /* torchvision: sub, then div */
            }
    }
    lt_tensor *out = lt_retain(f);
    lt_frame_pop(mark);
    return out ? lt_autorelease(out) : NULL;
}

/* ------------------------------------------------------------------ */
/* Pipeline                                                            */
/* ------------------------------------------------------------------ */

int lt_data_transform_apply(const lt_data_transform *t, lt_rng *r, lt_tensor **image,
                            lt_tensor **mask)
{
    static const lt_data_transform none = {0};
    if (!t)
        t = &none;
    if (!image || check_pair("transform", *image, mask_of(mask)) < 0)
        return -1;
    size_t mark = lt_frame_push();
    lt_tensor *img = *image, *m = mask_of(mask);
    lt_tensor **mp = m ? &m : NULL;
    int rc = 0;
    switch (t->geom) {
    case LT_DATA_GEOM_NONE:
        break;
    case LT_DATA_GEOM_RESIZE:
        rc = lt_data_resize(&img, mp, t->height, t->width);
        break;
    case LT_DATA_GEOM_RESIZE_CENTER_CROP:
        rc = lt_data_resize_shorter(&img, mp, t->resize > 0 ? t->resize : t->height);
        if (rc == 0)
            rc = lt_data_center_crop(&img, mp, t->height, t->width);
        break;
    case LT_DATA_GEOM_RANDOM_RESIZED_CROP: {
        const double dscale[2] = {0.08, 1.0}, dratio[2] = {3.0 / 4.0, 4.0 / 3.0};
        const double *sc = t->scale[1] > 0 ? t->scale : dscale;
        const double *ra = t->ratio[1] > 0 ? t->ratio : dratio;
        if (!r) {
            lt_set_error("transform: random-resized-crop needs a generator");
            rc = -1;
        } else {
            rc = lt_data_random_resized_crop(r, &img, mp, t->height, t->width, sc, ra);
        }
        break;
    }
    default:
        lt_set_error("transform: unknown geometry %d", (int)t->geom);
        rc = -1;
    }
    if (rc == 0 && t->hflip > 0) {
        if (!r) {
            lt_set_error("transform: a random flip needs a generator");
            rc = -1;
        } else if (lt_rng_uniform(r) < t->hflip) {
            rc = lt_data_hflip(&img, mp);
        }
    }
    if (rc == 0) {
        img = t->normalize ? lt_data_normalize(img, t->mean, t->std) : lt_data_to_float(img);
        rc = img ? 0 : -1;
    }
    if (rc == 0) {
        *image = lt_retain(img);
        if (m)
            *mask = lt_retain(m);
    }
    lt_frame_pop(mark);
    if (rc == 0) {
        lt_autorelease(*image);
        if (m)
            lt_autorelease(*mask);
    }
    return rc;
}
