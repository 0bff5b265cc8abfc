/*
 * rrda.c: Right for the Right Reasons Data Augmentation (Santos &
 * Zanchettin, Algorithm 1), made to work on images.
 *
 * Algorithm 1 pairs samples and swaps their contexts: new_left keeps the
 * left sample's object on the right sample's background, new_right the
 * reverse. Pasting an object onto another image as it is would leave the
 * other image's object visible around the pasted one, so, as IN-9 builds
 * only_bg_t, the partner's object is first removed: its hole is filled by
 * tiling the largest object-free strip of full rows or full columns of that
 * same image. No pixel of the partner's object, and so no silhouette of it,
 * survives in the composite. See docs/rrr.md.
 */
#include "rrr.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../tensor/tensor_internal.h"

/* splitmix64: a salted hash that orders classes randomly. */
static uint64_t mix(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

typedef struct keyed {
    uint64_t cls;  /* random rank of the class */
    int64_t pos;   /* random position within the batch */
    int64_t index;
} keyed;

static int cmp_keyed(const void *a, const void *b)
{
    const keyed *x = a, *y = b;
    if (x->cls != y->cls)
        return x->cls < y->cls ? -1 : 1;
    return (x->pos > y->pos) - (x->pos < y->pos);
}

/* Sort the batch by class (classes in a random order, samples in a random
 * order within each), then pair position k with k + n/2. A class occupies a
 * contiguous run, so when no class holds more than half of the batch every
 * pair crosses classes; otherwise as many as possible do. An odd sample out
 * borrows a partner one way, from another class when there is one. */
int lt_rrr_rrda_partners(const lt_tensor *y, lt_rng *rng, int64_t *partner)
{
    if (!y || !rng || lt_dtype_of(y) != LT_I64 || lt_ndim(y) != 1) {
        lt_set_error("rrda_partners: labels must be i64 (N)");
        return -1;
    }
    int64_t n = lt_size(y, 0);
    if (n == 0)
        return 0;
    size_t kb = (size_t)n * sizeof(keyed);
    keyed *k = lt_alloc(kb);
    size_t m = lt_frame_push();
    lt_tensor *perm = k ? lt_randperm(rng, n) : NULL;
    if (!perm) {
        lt_frame_pop(m);
        if (k)
            lt_free(k, kb);
        return -1;
    }
    uint64_t salt = lt_rng_u64(rng);
    const int64_t *p = lt_data(perm);
    for (int64_t i = 0; i < n; i++)
        k[i] = (keyed){mix((uint64_t)(int64_t)lt_item_at(y, i) ^ salt), p[i], i};
    qsort(k, (size_t)n, sizeof *k, cmp_keyed);
    int64_t half = n / 2;
    for (int64_t i = 0; i < half; i++) {
        partner[k[i].index] = k[i + half].index;
        partner[k[i + half].index] = k[i].index;
    }
    if (n % 2) {
        int64_t odd = k[n - 1].index, pick = odd;
        for (int64_t i = 0; i < n - 1; i++) {
            int64_t c = k[(i + (int64_t)(salt % (uint64_t)n)) % (n - 1)].index;
            if (pick == odd)
                pick = c;
            if (lt_item_at(y, c) != lt_item_at(y, odd)) {
                pick = c;
                break;
            }
        }
        partner[odd] = pick;
    }
    lt_frame_pop(m);
    lt_free(k, kb);
    return 0;
}

static int check_inputs(const char *op, const lt_tensor *x, const lt_tensor *mask)
{
    char a[96], b[96];
    if (!x || !mask)
        return -1;
    if (lt_ndim(x) != 4 || (lt_dtype_of(x) != LT_F32 && lt_dtype_of(x) != LT_F64) || lt_ndim(mask) != 4 ||
        lt_dtype_of(mask) != LT_U8 || lt_size(mask, 1) != 1 || lt_size(mask, 0) != lt_size(x, 0) ||
        lt_size(mask, 2) != lt_size(x, 2) || lt_size(mask, 3) != lt_size(x, 3)) {
        lt_set_error("%s: want images f32/f64 (N,C,H,W) and a u8 mask (N,1,H,W), got %s and %s", op,
                     lt__desc(x, a, sizeof a), lt__desc(mask, b, sizeof b));
        return -1;
    }
    return 0;
}

/* Longest run of true entries in free[0..n): start and length. */
static void longest_run(const bool *free_, int64_t n, int64_t *start, int64_t *len)
{
    *start = 0;
    *len = 0;
    for (int64_t i = 0; i < n;) {
        if (!free_[i]) {
            i++;
            continue;
        }
        int64_t j = i;
        while (j < n && free_[j])
            j++;
        if (j - i > *len) {
            *start = i;
            *len = j - i;
        }
        i = j;
    }
}

lt_tensor *lt_rrr_rrda_background(const lt_tensor *x, const lt_tensor *fg_mask, int64_t j)
{
    if (check_inputs("rrda_background", x, fg_mask) < 0)
        return NULL;
    int64_t N = lt_size(x, 0), C = lt_size(x, 1), H = lt_size(x, 2), W = lt_size(x, 3);
    if (j < 0 || j >= N) {
        lt_set_error("rrda_background: sample %lld outside the batch of %lld", (long long)j, (long long)N);
        return NULL;
    }
    lt_tensor *xj = lt_contiguous(lt_select(lt_ag_detach(x), 0, j));
    lt_tensor *mj = lt_contiguous(lt_select(fg_mask, 0, j));
    lt_tensor *bg = lt_clone(xj);
    size_t fb = (size_t)(H > W ? H : W) * sizeof(bool);
    bool *free_ = bg ? lt_alloc(fb) : NULL;
    if (!free_)
        return NULL;
    const uint8_t *mk = lt_data(mj);
    const void *src = lt_data(xj);
    void *dst = lt_data(bg);
    lt_dtype dt = lt_dtype_of(bg);
    int64_t r0, rl, c0, cl;
    for (int64_t h = 0; h < H; h++) {
        free_[h] = true;
        for (int64_t w = 0; w < W && free_[h]; w++)
            free_[h] = !mk[h * W + w];
    }
    longest_run(free_, H, &r0, &rl);
    for (int64_t w = 0; w < W; w++) {
        free_[w] = true;
        for (int64_t h = 0; h < H && free_[w]; h++)
            free_[w] = !mk[h * W + w];
    }
    longest_run(free_, W, &c0, &cl);
    lt_free(free_, fb);
    bool use_rows = rl * W >= cl * H;
    /* mean background colour, for images with no object-free strip */
    for (int64_t c = 0; c < C; c++) {
        double sum = 0;
        int64_t cnt = 0;
        if (rl == 0 && cl == 0)
            for (int64_t p = 0; p < H * W; p++)
                if (!mk[p]) {
                    sum += lt__get(src, dt, c * H * W + p);
                    cnt++;
                }
        double mean = cnt ? sum / (double)cnt : 0.0;
        for (int64_t h = 0; h < H; h++)
            for (int64_t w = 0; w < W; w++) {
                if (!mk[h * W + w])
                    continue;
                double v;
                if (rl == 0 && cl == 0)
                    v = mean;
                else if (use_rows)
                    v = lt__get(src, dt, (c * H + r0 + (((h - r0) % rl) + rl) % rl) * W + w);
                else
                    v = lt__get(src, dt, (c * H + h) * W + c0 + (((w - c0) % cl) + cl) % cl);
                lt__set(dst, dt, (c * H + h) * W + w, v);
            }
    }
    return bg;
}

/* M_i X_i + (1 - M_i) BG_j into out[k] (contiguous (N',C,H,W)). */
static int composite(const lt_tensor *x, const lt_tensor *mask, int64_t i, int64_t j, lt_tensor *out, int64_t k)
{
    lt_tensor *bg = lt_rrr_rrda_background(x, mask, j);
    lt_tensor *xi = lt_contiguous(lt_select(lt_ag_detach(x), 0, i));
    lt_tensor *mi = lt_contiguous(lt_select(mask, 0, i));
    if (!bg || !xi || !mi)
        return -1;
    int64_t C = lt_size(x, 1), HW = lt_size(x, 2) * lt_size(x, 3);
    lt_dtype dt = lt_dtype_of(out);
    const uint8_t *mk = lt_data(mi);
    for (int64_t c = 0; c < C; c++)
        for (int64_t p = 0; p < HW; p++) {
            double v = mk[p] ? lt__get(lt_data(xi), dt, c * HW + p) : lt__get(lt_data(bg), dt, c * HW + p);
            lt__set(lt_data(out), dt, (k * C + c) * HW + p, v);
        }
    return 0;
}

int lt_rrr_rrda_apply(const lt_tensor *x, const lt_tensor *y, const lt_tensor *fg_mask, lt_rrr_rrda_mode mode,
                      double p, lt_rng *rng, lt_tensor **xo, lt_tensor **yo, lt_tensor **mo)
{
    *xo = *yo = *mo = NULL;
    if (check_inputs("rrda_apply", x, fg_mask) < 0)
        return -1;
    if (!y || lt_dtype_of(y) != LT_I64 || lt_ndim(y) != 1 || lt_size(y, 0) != lt_size(x, 0) || !rng) {
        lt_set_error("rrda_apply: labels must be i64 (N) matching the batch, and an rng is required");
        return -1;
    }
    if (mode != LT_RRR_RRDA_REPLACE && mode != LT_RRR_RRDA_APPEND) {
        lt_set_error("rrda_apply: unknown mode %d", (int)mode);
        return -1;
    }
    if (!(p >= 0.0 && p <= 1.0)) {
        lt_set_error("rrda_apply: probability %g outside [0, 1]", p);
        return -1;
    }
    int64_t N = lt_size(x, 0);
    size_t pb = (size_t)(N ? N : 1) * sizeof(int64_t);
    int64_t *partner = lt_alloc(pb);
    if (!partner)
        return -1;
    int rc = lt_rrr_rrda_partners(y, rng, partner);
    int64_t outN = mode == LT_RRR_RRDA_APPEND ? 2 * N : N;
    lt_tensor *xc = rc == 0 ? lt_contiguous(lt_ag_detach(x)) : NULL;
    int64_t shape[4] = {outN, lt_size(x, 1), lt_size(x, 2), lt_size(x, 3)};
    lt_tensor *X = xc ? lt_empty(4, shape, lt_dtype_of(x)) : NULL;
    lt_tensor *M = X ? lt_cat(mode == LT_RRR_RRDA_APPEND ? 2 : 1, (lt_tensor *[]){(lt_tensor *)fg_mask,
                                                                                  (lt_tensor *)fg_mask}, 0)
                     : NULL;
    lt_tensor *Y = M ? lt_cat(mode == LT_RRR_RRDA_APPEND ? 2 : 1, (lt_tensor *[]){(lt_tensor *)y, (lt_tensor *)y}, 0)
                     : NULL;
    if (!Y)
        rc = -1;
    int64_t per = lt_size(x, 1) * lt_size(x, 2) * lt_size(x, 3);
    size_t es = lt_dtype_size(lt_dtype_of(x));
    for (int64_t i = 0; rc == 0 && i < N; i++) {
        /* originals first (replace mode: unless swapped below) */
        memcpy((char *)lt_data(X) + (size_t)(i * per) * es, (char *)lt_data(xc) + (size_t)(i * per) * es,
               (size_t)per * es);
        bool swap = mode == LT_RRR_RRDA_APPEND || lt_rng_uniform(rng) < p;
        if (swap && partner[i] != i)
            rc = composite(xc, fg_mask, i, partner[i], X, mode == LT_RRR_RRDA_APPEND ? N + i : i);
        else if (mode == LT_RRR_RRDA_APPEND)
            memcpy((char *)lt_data(X) + (size_t)((N + i) * per) * es,
                   (char *)lt_data(xc) + (size_t)(i * per) * es, (size_t)per * es);
    }
    lt_free(partner, pb);
    if (rc < 0)
        return -1;
    *xo = X;
    *yo = Y;
    *mo = M;
    return 0;
}
