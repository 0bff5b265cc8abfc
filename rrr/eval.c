/*
 * eval.c: accuracy on the Backgrounds Challenge variants (Xiao et al.
 * 2021, as used in the paper's Tables 1 and 2 and Fig. 2b) and the
 * challenge score. Images go through the loader un-normalized, so edge
 * removal can paint a black band before the checkpoint's normalization.
 */
#include "rrr.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <libtensor/data.h>

#include "../tensor/tensor_internal.h"

const char *const lt_rrr_variants[LT_RRR_NVARIANTS] = {"original", "mixed_same", "mixed_rand", "mixed_next",
                                                       "only_fg",  "only_bg_t",  "only_bg_b",  "no_fg"};

static lt_data_loader *open_loader(const lt_data_list *l, const lt_rrr_eval_opts *o, int64_t batch, bool masks)
{
    lt_data_loader_opts lo;
    memset(&lo, 0, sizeof lo);
    lo.batch_size = batch;
    lo.masks = masks;
    lo.channels = 3;
    lo.workers = o->workers;
    lo.transform.geom = LT_DATA_GEOM_RESIZE;
    lo.transform.height = lo.transform.width = o->image_size;
    return lt_data_loader_new(l, &lo);
}

/* (x - mean) / std per channel, x (N,3,H,W) in [0,1]. */
static lt_tensor *normalize(const lt_tensor *x, const lt_rrr_eval_opts *o)
{
    double inv[3] = {1.0 / o->std[0], 1.0 / o->std[1], 1.0 / o->std[2]};
    lt_tensor *mean = lt_from_data(o->mean, 4, (int64_t[]){1, 3, 1, 1}, LT_F64);
    lt_tensor *istd = lt_from_data(inv, 4, (int64_t[]){1, 3, 1, 1}, LT_F64);
    return lt_mul(lt_sub(x, lt_to_dtype(mean, LT_F32)), lt_to_dtype(istd, LT_F32));
}

static lt_tensor *predict(const lt_rrr_model *m, const lt_tensor *x)
{
    lt_tensor *z = m->forward(m->ctx, x, NULL);
    return z ? lt_argmax(z, 1, false) : NULL;
}

static int check_opts(const char *op, const lt_rrr_eval_opts *o)
{
    if (!o || !o->split || o->image_size < 1 || !(o->std[0] > 0 && o->std[1] > 0 && o->std[2] > 0) ||
        o->edge_width < 0) {
        lt_set_error("%s: bad options (split, image size >= 1, std > 0, edge width >= 0)", op);
        return -1;
    }
    return 0;
}

int lt_rrr_eval_variant(const lt_rrr_model *m, const char *root, const char *variant, const lt_rrr_eval_opts *o,
                        int nclasses, int64_t *correct, int64_t *count)
{
    if (check_opts("eval_variant", o) < 0)
        return -1;
    bool edges = o->edge_width > 0;
    lt_data_list *l = lt_data_in9_list(root, variant, o->split, edges ? LT_DATA_MASKS_REQUIRED : LT_DATA_MASKS_NONE);
    if (!l)
        return -1;
    int rc = -1;
    lt_data_loader *ld = NULL;
    if (l->nclasses != nclasses) {
        lt_set_error("eval_variant: %s/%s/%s has %d classes but the model has %d", root, variant, o->split,
                     l->nclasses, nclasses);
        goto out;
    }
    ld = open_loader(l, o, o->batch > 0 ? o->batch : 64, edges);
    if (!ld)
        goto out;
    memset(correct, 0, sizeof *correct * (size_t)nclasses);
    memset(count, 0, sizeof *count * (size_t)nclasses);
    bool prev = lt_ag_set_grad_enabled(false);
    lt_data_batch b;
    int nrc;
    while ((nrc = lt_data_loader_next(ld, &b)) > 0) {
        size_t mk = lt_frame_push();
        lt_tensor *x = edges ? lt_data_remove_edges(b.images, b.masks, o->edge_width) : b.images;
        lt_tensor *pred = predict(m, normalize(x, o));
        if (!pred) {
            lt_frame_pop(mk);
            nrc = -1;
            break;
        }
        for (int64_t i = 0; i < lt_size(b.labels, 0); i++) {
            int64_t y = (int64_t)lt_item_at(b.labels, i);
            count[y]++;
            correct[y] += (int64_t)lt_item_at(pred, i) == y;
        }
        lt_frame_pop(mk);
    }
    lt_ag_set_grad_enabled(prev);
    rc = nrc < 0 ? -1 : 0;
out:
    lt_data_loader_free(ld);
    lt_data_list_free(l);
    return rc;
}

int lt_rrr_bg_challenge(const lt_rrr_model *m, const char *root, const lt_rrr_eval_opts *o, int nbgs,
                        uint64_t seed, double *score, int64_t *foregrounds, int64_t *vulnerable)
{
    *score = NAN;
    *foregrounds = *vulnerable = 0;
    if (check_opts("bg_challenge", o) < 0)
        return -1;
    if (nbgs < 1) {
        lt_set_error("bg_challenge: need at least one background, got %d", nbgs);
        return -1;
    }
    lt_data_list *fg = lt_data_in9_list(root, "original", o->split, LT_DATA_MASKS_REQUIRED);
    lt_data_list *bg = fg ? lt_data_in9_list(root, "only_bg_t", o->split, LT_DATA_MASKS_NONE) : NULL;
    lt_data_loader *lf = NULL, *lb = NULL;
    lt_data_sample *picked = NULL;
    int rc = -1;
    bool prev = lt_ag_set_grad_enabled(false);
    size_t mk = lt_frame_push();
    if (!bg)
        goto out;
    /* One seeded set of backgrounds, shared by every foreground (the full
     * cross product of IN-9's 4050 x 4050 is rarely affordable). */
    if ((size_t)nbgs > bg->n)
        nbgs = (int)bg->n;
    lt_rng r = lt_rng_new(seed);
    lt_tensor *perm = lt_randperm(&r, (int64_t)bg->n);
    picked = malloc(sizeof *picked * (size_t)nbgs);
    if (!perm || !picked) {
        if (perm)
            lt_set_error("bg_challenge: out of memory");
        goto out;
    }
    for (int k = 0; k < nbgs; k++)
        picked[k] = bg->samples[(int64_t)lt_item_at(perm, k)];
    lt_data_list sub = *bg;
    sub.samples = picked;
    sub.n = (size_t)nbgs;
    lb = open_loader(&sub, o, nbgs, false);
    lf = lb ? open_loader(fg, o, o->batch > 0 ? o->batch : 64, true) : NULL;
    lt_data_batch bb, fb;
    if (!lf || lt_data_loader_next(lb, &bb) <= 0)
        goto out;
    lt_tensor *bgs = bb.images; /* (nbgs,3,H,W) in [0,1] */
    int nrc;
    while ((nrc = lt_data_loader_next(lf, &fb)) > 0) {
        size_t m2 = lt_frame_push();
        lt_tensor *pred = predict(m, normalize(fb.images, o));
        for (int64_t i = 0; pred && i < lt_size(fb.labels, 0); i++) {
            int64_t y = (int64_t)lt_item_at(fb.labels, i);
            if ((int64_t)lt_item_at(pred, i) != y)
                continue; /* only foregrounds the model gets right count */
            size_t m3 = lt_frame_push();
            lt_tensor *x = lt_unsqueeze(lt_select(fb.images, 0, i), 0);
            lt_tensor *mask = lt_to_dtype(lt_unsqueeze(lt_select(fb.masks, 0, i), 0), LT_F32);
            lt_tensor *comp = lt_add(lt_mul(mask, x), lt_mul(lt_add_scalar(lt_neg(mask), 1.0), bgs));
            lt_tensor *pc = predict(m, normalize(comp, o));
            lt_tensor *wrong = pc ? lt_sum(lt_cmp_scalar(pc, "!=", (double)y), 0, NULL, false) : NULL;
            if (!wrong) {
                lt_frame_pop(m3);
                pred = NULL;
                break;
            }
            (*foregrounds)++;
            *vulnerable += lt_item(wrong) > 0;
            lt_frame_pop(m3);
        }
        lt_frame_pop(m2);
        if (!pred) {
            nrc = -1;
            break;
        }
    }
    if (nrc < 0)
        goto out;
    *score = *foregrounds ? 100.0 - 100.0 * (double)*vulnerable / (double)*foregrounds : NAN;
    rc = 0;
out:
    lt_frame_pop(mk);
    lt_ag_set_grad_enabled(prev);
    lt_data_loader_free(lf);
    lt_data_loader_free(lb);
    free(picked);
    lt_data_list_free(fg);
    lt_data_list_free(bg);
    return rc;
}
