/*
 * libtensor: Right-for-the-Right-Reasons losses, RRDA and attributions
 * (<libtensor/rrr.h>)
 *
 * THE MODEL
 *
 * A classifier is seen through lt_rrr_model: a forward callback that maps an
 * image batch x (N,C,H,W) to logits (N,K) and, on request, to the features
 * the feature-level losses compare (by default the pooled penultimate
 * features, (N,F)). ResNet-18 and ViT adapters live with the training tools;
 * tests use small networks. The callback must use differentiable ops.
 *
 * MASKS. Datasets give a foreground mask M (N,1,H,W), u8, 1 on the object.
 * The losses use the context mask A = 1 - M (1 on the background), as in
 * Ross et al. (2017). All formulas, normalizations, defaults and references
 * are written out in docs/rrr.md.
 *
 * LOSSES return the penalty alone (not multiplied by lambda) together with
 * the logits of the same forward pass, so the caller adds
 * cross_entropy(logits, y) + lambda * penalty with a single forward pass.
 * RRR and GradMask differentiate an input gradient: they build the graph of
 * the gradient (create_graph) and so need twice the memory of a plain step.
 *
 * RRDA (rrr/rrda.c) swaps backgrounds between samples of a batch (the
 * paper's Algorithm 1); it works on tensors without a graph.
 *
 * OWNERSHIP and ERRORS follow <libtensor/tensor.h>: results are owned by the
 * current frame; a failure returns NULL or -1 with lt_last_error() set.
 */
#ifndef LIBTENSOR_RRR_H
#define LIBTENSOR_RRR_H

#include <libtensor/autograd.h>
#include <libtensor/tensor.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Default lambdas (docs/rrr.md explains each). */
#define LT_RRR_LAMBDA_RRR 0.1
#define LT_RRR_LAMBDA_GRADMASK 1.0
#define LT_RRR_LAMBDA_ACTDIFF 0.1
#define LT_RRR_LAMBDA_ADVERSARIAL 0.1

/* Forward: logits (N,K) for x (N,C,H,W). If features is non-NULL, also
 * store the features the feature losses compare (N,F) there. Both results
 * frame-owned; NULL on error. */
typedef lt_tensor *(*lt_rrr_forward_fn)(void *ctx, const lt_tensor *x, lt_tensor **features);

/* Forward for Grad-CAM: logits (N,K) and the activation map Grad-CAM
 * weighs, (N,C',h,w): layer4's output for ResNet-18; for ViT the last
 * block's tokens without the CLS token, folded back to the patch grid. */
typedef lt_tensor *(*lt_rrr_cam_forward_fn)(void *ctx, const lt_tensor *x, lt_tensor **activation);

typedef struct lt_rrr_model {
    void *ctx;
    lt_rrr_forward_fn forward;
    lt_rrr_cam_forward_fn forward_cam; /* optional: only Grad-CAM needs it */
} lt_rrr_model;

/* Context mask A = 1 - M as x's dtype, broadcastable to x: (N,1,H,W). */
lt_tensor *lt_rrr_context_mask(const lt_tensor *fg_mask, lt_dtype dt);

/* ---- input-gradient losses (need create_graph) ---- */

/* RRR (Ross et al. 2017): penalty = mean_n sum_{c,h,w}
 *   (A * d(sum_k log_softmax_k(f(x)))/dx)^2.
 * logits (optional out): the forward's logits, differentiable w.r.t. the
 * parameters. Returns the 0-d penalty. */
lt_tensor *lt_rrr_rrr_penalty(const lt_rrr_model *m, const lt_tensor *x, const lt_tensor *fg_mask,
                              lt_tensor **logits);

/* GradMask (Simpson et al. 2019), extended to many classes with the margin
 * s = z_y - max_{k != y} z_k: penalty = mean_n sum |A * ds/dx|. y: i64 (N). */
lt_tensor *lt_rrr_gradmask_penalty(const lt_rrr_model *m, const lt_tensor *x, const lt_tensor *fg_mask,
                                   const lt_tensor *y, lt_tensor **logits);

/* ---- feature losses ---- */

typedef enum lt_rrr_actdiff_mode {
    LT_RRR_ACTDIFF_MASK = 0,    /* x~ = x * (1 - A): background zeroed (the paper's Eq. 5) */
    LT_RRR_ACTDIFF_SHUFFLE = 1, /* x~ = x with its background pixels shuffled within the image
                                 * (Viviano et al.'s reference code) */
} lt_rrr_actdiff_mode;

/* ActDiff (Viviano et al. 2021): penalty = mean_n ||f_l(x~_n) - f_l(x_n)||_2,
 * the norm taken as sqrt(sum of squares + 1e-12) so its gradient exists at
 * 0. rng drives the shuffle mode (ignored otherwise). */
lt_tensor *lt_rrr_actdiff_penalty(const lt_rrr_model *m, const lt_tensor *x, const lt_tensor *fg_mask,
                                  lt_rrr_actdiff_mode mode, lt_rng *rng, lt_tensor **logits);

/* x~ of ActDiff, exposed for inspection and tests. */
lt_tensor *lt_rrr_actdiff_input(const lt_tensor *x, const lt_tensor *fg_mask, lt_rrr_actdiff_mode mode,
                                lt_rng *rng);

/* ---- adversarial baseline ("ADA" in the paper's tables) ---- */

/* Binary cross-entropy with logits, mean over elements, stable form
 * max(z,0) - z t + log(1 + exp(-|z|)). target: same shape, 0/1 floats. */
lt_tensor *lt_rrr_bce_with_logits(const lt_tensor *z, const lt_tensor *target);

/* The discriminator: an MLP F -> hidden -> 1 (ReLU) whose parameters are
 * leaves owned by the struct (free with lt_rrr_disc_free). It learns to tell
 * features of masked inputs (x * M, label 1) from features of unmasked
 * inputs (label 0). */
typedef struct lt_rrr_disc {
    lt_tensor *w1, *b1, *w2, *b2; /* (H,F), (H), (1,H), (1); retained */
} lt_rrr_disc;

/* Initialize (uniform +-1/sqrt(fan_in), like torch.nn.Linear). 0 or -1. */
int lt_rrr_disc_init(lt_rrr_disc *d, int64_t features, int64_t hidden, lt_dtype dt, lt_rng *rng);
void lt_rrr_disc_free(lt_rrr_disc *d);
/* Discriminator logits (N) for features (N,F). */
lt_tensor *lt_rrr_disc_forward(const lt_rrr_disc *d, const lt_tensor *features);

/* One forward of the adversarial baseline on a batch:
 *   disc_loss (for the discriminator's optimizer) = BCE(D(f(x*M)), 1) +
 *     BCE(D(f(x)), 0), on detached features, so it reaches only D;
 *   enc_penalty (for the encoder, multiply by lambda) = BCE(D(f(x)), 1):
 *     flipped labels, so the encoder learns features of x that D cannot
 *     tell from those of its foreground alone.
 * Both 0-d. logits: the forward's logits on x. 0 or -1. */
int lt_rrr_adversarial_losses(const lt_rrr_model *m, const lt_rrr_disc *d, const lt_tensor *x,
                              const lt_tensor *fg_mask, lt_tensor **disc_loss, lt_tensor **enc_penalty,
                              lt_tensor **logits);

/* ---- RRDA: Right for the Right Reasons Data Augmentation ---- */

typedef enum lt_rrr_rrda_mode {
    LT_RRR_RRDA_REPLACE = 0, /* each sample swapped with probability p; batch size kept */
    LT_RRR_RRDA_APPEND = 1,  /* both composites of every pair appended; batch doubled */
} lt_rrr_rrda_mode;

/* Partners for a batch: pairs (i, partner[i]) with partner[partner[i]] = i
 * where possible, preferring different labels. partner: n entries. */
int lt_rrr_rrda_partners(const lt_tensor *y, lt_rng *rng, int64_t *partner);

/* Background of image j with its object's hole filled (C,H,W) from the
 * largest object-free strip of full rows or columns, tiled (as IN-9 builds
 * only_bg_t); with no such strip, the mean background colour. x: (N,C,H,W)
 * f32/f64, mask (N,1,H,W) u8. */
lt_tensor *lt_rrr_rrda_background(const lt_tensor *x, const lt_tensor *fg_mask, int64_t j);

/* Apply RRDA to a batch. Composite for i with partner j:
 *   M_i * X_i + (1 - M_i) * BG_j, label y_i, mask M_i.
 * Writes new frame-owned tensors to *xo, *yo, *mo (batch N, or 2N in append
 * mode: originals then composites). p: swap probability (replace mode). */
int lt_rrr_rrda_apply(const lt_tensor *x, const lt_tensor *y, const lt_tensor *fg_mask, lt_rrr_rrda_mode mode,
                      double p, lt_rng *rng, lt_tensor **xo, lt_tensor **yo, lt_tensor **mo);

/* ---- attributions (Captum's semantics; docs/rrr.md) ---- */

/* Saliency (Simonyan et al. 2014; Captum Saliency): d z_target / dx for
 * each sample, (N,C,H,W); absolute values unless signed_. target: i64 (N).
 * Use the model in eval mode (batch norm in training mode couples the
 * samples of a batch). */
lt_tensor *lt_rrr_saliency(const lt_rrr_model *m, const lt_tensor *x, const lt_tensor *target, bool signed_);

typedef enum lt_rrr_ig_method {
    LT_RRR_IG_GAUSS_LEGENDRE = 0, /* Captum's default */
    LT_RRR_IG_RIEMANN_LEFT,
    LT_RRR_IG_RIEMANN_RIGHT,
    LT_RRR_IG_RIEMANN_MIDDLE,
    LT_RRR_IG_RIEMANN_TRAPEZOID,
} lt_rrr_ig_method;

/* Integrated Gradients (Sundararajan et al. 2017; Captum): (x - x0) times
 * the weighted sum of d z_target / dx at x0 + a_i (x - x0) over the
 * quadrature nodes a_i. baseline NULL means zeros; steps >= 1 (50 is
 * Captum's default). (N,C,H,W). */
lt_tensor *lt_rrr_integrated_gradients(const lt_rrr_model *m, const lt_tensor *x, const lt_tensor *baseline,
                                       const lt_tensor *target, int steps, lt_rrr_ig_method method);

/* Quadrature nodes and weights on [0,1] that Integrated Gradients uses for
 * steps points (arrays of steps doubles). 0 or -1. */
int lt_rrr_ig_nodes(lt_rrr_ig_method method, int steps, double *alphas, double *weights);

/* Grad-CAM (Selvaraju et al. 2017; Captum LayerGradCam): weights a_k =
 * spatial mean of d z_target / dA_k, map = sum_k a_k A_k, (N,1,h,w); with
 * relu, negative values are set to 0; with upsample, the map is resized
 * bilinearly (align_corners false) to x's H and W. Needs m->forward_cam. */
lt_tensor *lt_rrr_gradcam(const lt_rrr_model *m, const lt_tensor *x, const lt_tensor *target, bool relu,
                          bool upsample);

typedef enum lt_rrr_channel_reduce { LT_RRR_CHANNELS_MAX_ABS = 0, LT_RRR_CHANNELS_SUM_ABS = 1 } lt_rrr_channel_reduce;
/* (N,C,H,W) attributions to an (N,1,H,W) heat map: max or sum over
 * channels of the absolute value. */
lt_tensor *lt_rrr_reduce_channels(const lt_tensor *attr, lt_rrr_channel_reduce how);

/* Signal-to-noise ratio of attributions, per image (f64, (N)):
 * mean |a| over the foreground elements / mean |a| over the background
 * elements (every channel of a pixel counts with its pixel). NaN for an
 * image with an empty foreground or background. attr (N,C,H,W), mask u8
 * (N,1,H,W). */
lt_tensor *lt_rrr_snr(const lt_tensor *attr, const lt_tensor *fg_mask);

/* Bilinear resize (align_corners false, like torch's interpolate) of an
 * (N,C,h,w) float tensor to (N,C,H,W). Not differentiable. */
lt_tensor *lt_rrr_resize_bilinear(const lt_tensor *t, int64_t H, int64_t W);

/* ---- Backgrounds Challenge evaluation (rrr/eval.c) ---- */

/* The IN-9 variants, in the order the tools report them. */
#define LT_RRR_NVARIANTS 8
extern const char *const lt_rrr_variants[LT_RRR_NVARIANTS];

/* How images reach the model: resized (bilinear) to image_size, scaled to
 * [0,1], optionally edge-removed (a black band, before normalization), then
 * normalized with mean/std (per channel). */
typedef struct lt_rrr_eval_opts {
    const char *split;     /* "val" */
    int64_t image_size;
    double mean[3], std[3];
    int64_t batch;         /* images per forward (default 64) */
    int workers;           /* loader threads */
    double edge_width;     /* > 0: remove edges of this width (pixels of a
                              224 image; docs/data.md); needs masks */
} lt_rrr_eval_opts;

/* Accuracy of m on <root>/<variant>/<split> (IN-9 layout), per class:
 * correct[k] and count[k] for the nclasses classes (arrays of nclasses).
 * The model runs without a graph. 0, or -1 with an error naming the
 * folder (a variant that is absent is an error: check first). */
int lt_rrr_eval_variant(const lt_rrr_model *m, const char *root, const char *variant, const lt_rrr_eval_opts *o,
                        int nclasses, int64_t *correct, int64_t *count);

/* The Backgrounds Challenge score (Xiao et al. 2021): each foreground of
 * original/<split> (with its mask) that m classifies correctly is pasted
 * on nbgs backgrounds drawn (seeded) from only_bg_t/<split>; it is
 * vulnerable if any of them changes the prediction. score = 100 - percent
 * vulnerable. Writes the counts too. 0 or -1. */
int lt_rrr_bg_challenge(const lt_rrr_model *m, const char *root, const lt_rrr_eval_opts *o, int nbgs,
                        uint64_t seed, double *score, int64_t *foregrounds, int64_t *vulnerable);

#ifdef __cplusplus
}
#endif

#include <libtensor/train.h>
#endif
