/*
 * libtensor: training ResNet-18 and ViT with the paper's methods
 * (<libtensor/train.h>, included by <libtensor/rrr.h>)
 *
 * lt_rrr_train runs a whole training job from a config: it lists the
 * dataset, builds the model (or resumes it), trains with the chosen method
 * (Standard, RRR, GradMask, ActDiff, adversarial), optionally with RRDA,
 * evaluates after every epoch, writes a checkpoint after every epoch (and
 * every save_every steps) atomically, and writes a JSON log.
 * tools/train_resnet18 and tools/train_vit are thin command lines over it.
 *
 * CHECKPOINTS are safetensors files holding the model's state_dict under
 * torchvision / timm names, the optimizer state ("optim.*"), and in
 * __metadata__ everything needed to rebuild the model and its input and to
 * resume: see docs/training.md for the keys.
 *
 * RESUME. A run resumed from a checkpoint continues exactly: model,
 * optimizer, step, epoch, the loader position and the augmentation RNG are
 * restored, so the final weights are bitwise equal to an uninterrupted
 * run's with the same thread count.
 *
 * The library never prints: progress comes through the callback. Errors:
 * -1 with lt_last_error().
 */
#ifndef LIBTENSOR_TRAIN_H
#define LIBTENSOR_TRAIN_H

#include <libtensor/tensor.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum lt_rrr_method {
    LT_RRR_STANDARD = 0,
    LT_RRR_RRR = 1,
    LT_RRR_GRADMASK = 2,
    LT_RRR_ACTDIFF = 3,
    LT_RRR_ADVERSARIAL = 4,
} lt_rrr_method;

/* "standard", "rrr", "gradmask", "actdiff", "adversarial" (parse also
 * accepts "ada"); -1 if unknown. */
const char *lt_rrr_method_name(lt_rrr_method m);
int lt_rrr_method_parse(const char *s);

typedef enum lt_rrr_arch { LT_RRR_ARCH_RESNET18 = 0, LT_RRR_ARCH_VIT = 1 } lt_rrr_arch;

/* Everything a training run needs. lt_rrr_train_defaults fills the
 * defaults documented in docs/training.md; strings are borrowed. */
typedef struct lt_rrr_train_config {
    /* data */
    const char *data;     /* dataset root */
    const char *dataset;  /* "in9" (default), "rival10" or "folder" */
    int64_t train_limit;  /* first N training images per class; 0: all */
    int workers;          /* loader threads (default 2) */
    /* model */
    lt_rrr_arch arch;
    int stem;             /* lt_nn_resnet_stem (ResNet) */
    int64_t image_size;   /* square input side (default 64) */
    int64_t vit_patch, vit_dim;
    int vit_depth, vit_heads;
    double vit_mlp_ratio;
    /* method */
    lt_rrr_method method;
    double lambda;        /* < 0: the method's default */
    int actdiff_mode;     /* lt_rrr_actdiff_mode */
    int64_t adv_hidden;   /* discriminator width (default 256) */
    double adv_lr;        /* discriminator learning rate; <= 0: lr */
    bool rrda;
    int rrda_mode;        /* lt_rrr_rrda_mode */
    double rrda_p;        /* replace mode: swap probability (default 0.5) */
    /* optimization */
    int epochs;
    int64_t batch;
    double lr;
    const char *optimizer; /* "sgd" (default) or "adamw" */
    double momentum;       /* SGD (default 0.9) */
    double weight_decay;
    const char *schedule;  /* "cosine" (default), "step" or "none" */
    int64_t warmup;        /* warm-up steps (cosine) */
    int64_t step_size;     /* "step": epochs between decays */
    double gamma;          /* "step": decay factor */
    double clip;           /* global gradient norm clip; 0: off */
    /* run */
    uint64_t seed;
    int threads;
    const char *out;       /* checkpoint path (required) */
    const char *resume;    /* checkpoint to resume from, or NULL */
    const char *init;      /* weights to start from (torchvision/timm names), or NULL */
    const char *log;       /* JSON log path, or NULL */
    int64_t max_steps;     /* stop after this many steps in all; 0: no limit */
    int64_t save_every;    /* also checkpoint every N steps; 0: per epoch only */
} lt_rrr_train_config;

void lt_rrr_train_defaults(lt_rrr_train_config *c, lt_rrr_arch arch);

/* What the progress callback sees. */
typedef struct lt_rrr_train_status {
    const char *phase;     /* "train", "val", "saved", "done" */
    int epoch, epochs;     /* 0-based epoch */
    int64_t step;          /* optimizer steps done in all */
    int64_t batch, batches; /* within the epoch */
    double loss, penalty, acc; /* running means this epoch (acc in %) */
    double step_loss;      /* the last step's total loss */
    double images_per_sec, eta_sec;
    double val_acc;        /* after "val" */
    const char *path;      /* after "saved" */
} lt_rrr_train_status;

typedef void (*lt_rrr_progress_fn)(void *ud, const lt_rrr_train_status *s);

/* Run the job. Returns 0, or -1 with an error naming what failed. */
int lt_rrr_train(const lt_rrr_train_config *c, lt_rrr_progress_fn progress, void *ud);

/* ---- models from checkpoints (for evaluation and attribution tools) ---- */

/* What a checkpoint says about its model and input (from __metadata__). */
typedef struct lt_rrr_model_info {
    lt_rrr_arch arch;
    int64_t num_classes;
    int64_t image_size;
    double mean[3], std[3];  /* input normalization */
    char **class_names;      /* num_classes strings (owned; may be NULL) */
    char config[512];        /* model.config as written */
} lt_rrr_model_info;

/* Rebuild the model of a training checkpoint from its metadata alone and
 * load its weights (strict, ignoring optim./disc. entries). The module is in
 * eval mode; the caller owns it (lt_nn_module_free) and frees info with
 * lt_rrr_model_info_free. NULL with an error naming the file otherwise
 * (not a libtensor training checkpoint, unknown architecture, mismatched
 * weights). The return type is lt_nn_module (from <libtensor/nn.h>). */
struct lt_nn_module *lt_rrr_model_load(const char *path, lt_rrr_model_info *info);
void lt_rrr_model_info_free(lt_rrr_model_info *info);

/* A module seen as an lt_rrr_model (logits, penultimate features and the
 * Grad-CAM activation map: layer4 for ResNet, the last block's patch tokens
 * folded to the grid for ViT). net must outlive the returned model. */
typedef struct lt_rrr_net {
    struct lt_nn_module *module;
    lt_rrr_arch arch;
} lt_rrr_net;
struct lt_rrr_model lt_rrr_net_model(lt_rrr_net *net);

#ifdef __cplusplus
}
#endif
#endif
