/*
 * train.c: the training job behind tools/train_resnet18 and tools/train_vit
 * (lt_rrr_train). Checkpoints and rebuilding models from them are in
 * train_ckpt.c.
 * docs/training.md describes the recipe, the defaults and the checkpoint
 * metadata.
 */
#include "train_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>


/* ------------------------------------------------------------------ */
/* Methods and defaults                                                */
/* ------------------------------------------------------------------ */

static const char *const method_names[] = {"standard", "rrr", "gradmask", "actdiff", "adversarial"};

const char *lt_rrr_method_name(lt_rrr_method m)
{
    return (unsigned)m <= LT_RRR_ADVERSARIAL ? method_names[m] : "?";
}

int lt_rrr_method_parse(const char *s)
{
    if (!s)
        return -1;
    for (int i = 0; i <= LT_RRR_ADVERSARIAL; i++)
        if (strcmp(s, method_names[i]) == 0)
            return i;
    return strcmp(s, "ada") == 0 ? LT_RRR_ADVERSARIAL : -1;
}

static double default_lambda(lt_rrr_method m)
{
    switch (m) {
    case LT_RRR_RRR: return LT_RRR_LAMBDA_RRR;
    case LT_RRR_GRADMASK: return LT_RRR_LAMBDA_GRADMASK;
    case LT_RRR_ACTDIFF: return LT_RRR_LAMBDA_ACTDIFF;
    case LT_RRR_ADVERSARIAL: return LT_RRR_LAMBDA_ADVERSARIAL;
    default: return 0.0;
    }
}

void lt_rrr_train_defaults(lt_rrr_train_config *c, lt_rrr_arch arch)
{
    memset(c, 0, sizeof *c);
    c->dataset = "in9";
    c->workers = 2;
    c->arch = arch;
    c->stem = LT_NN_STEM_SMALL;
    c->image_size = arch == LT_RRR_ARCH_VIT ? 32 : 64;
    c->vit_patch = 4;
    c->vit_dim = 192;
    c->vit_depth = 6;
    c->vit_heads = 3;
    c->vit_mlp_ratio = 4.0;
    c->method = LT_RRR_STANDARD;
    c->lambda = -1;
    c->actdiff_mode = LT_RRR_ACTDIFF_MASK;
    c->adv_hidden = 256;
    c->rrda_mode = LT_RRR_RRDA_REPLACE;
    c->rrda_p = 0.5;
    c->epochs = 10;
    c->batch = 32;
    c->lr = arch == LT_RRR_ARCH_VIT ? 1e-3 : 0.05;
    c->optimizer = arch == LT_RRR_ARCH_VIT ? "adamw" : "sgd";
    c->momentum = 0.9;
    c->weight_decay = arch == LT_RRR_ARCH_VIT ? 0.05 : 5e-4;
    c->schedule = "cosine";
    c->step_size = 10;
    c->gamma = 0.1;
    c->threads = 2;
}

static bool needs_masks(const lt_rrr_train_config *c) { return c->method != LT_RRR_STANDARD || c->rrda; }

const double lt__train_mean[3] = {0.485, 0.456, 0.406}, lt__train_std[3] = {0.229, 0.224, 0.225};

/* ------------------------------------------------------------------ */
/* Model adapters                                                      */
/* ------------------------------------------------------------------ */

static lt_tensor *net_forward(void *ctx, const lt_tensor *x, lt_tensor **features)
{
    lt_rrr_net *n = ctx;
    return n->arch == LT_RRR_ARCH_VIT ? lt_nn_vit_forward_ex(n->module, x, features, NULL)
                                      : lt_nn_resnet_forward_ex(n->module, x, features, NULL);
}

/* Grad-CAM's activation: ResNet layer4; ViT's last block tokens without the
 * class token, (B,N,D) -> (B,D,g,g). */
static lt_tensor *net_forward_cam(void *ctx, const lt_tensor *x, lt_tensor **act)
{
    lt_rrr_net *n = ctx;
    if (n->arch != LT_RRR_ARCH_VIT)
        return lt_nn_resnet_forward_ex(n->module, x, NULL, act);
    lt_tensor *tokens = NULL;
    lt_tensor *z = lt_nn_vit_forward_ex(n->module, x, NULL, &tokens);
    if (!z || !tokens)
        return NULL;
    int64_t B = lt_size(tokens, 0), T = lt_size(tokens, 1), D = lt_size(tokens, 2);
    int64_t g = (int64_t)llround(sqrt((double)(T - 1)));
    if (g * g != T - 1) {
        lt_set_error("gradcam: %lld patch tokens do not form a square grid", (long long)(T - 1));
        return NULL;
    }
    lt_tensor *p = lt_slice(tokens, 1, 1, T, 1);
    *act = lt_reshape(lt_permute(p, (int[]){0, 2, 1}), 4, (int64_t[]){B, D, g, g});
    return *act ? z : NULL;
}

lt_rrr_model lt_rrr_net_model(lt_rrr_net *net)
{
    lt_rrr_model m = {net, net_forward, net_forward_cam};
    return m;
}

/* ------------------------------------------------------------------ */
/* Config as JSON, model config, metadata                              */
/* ------------------------------------------------------------------ */

char *lt__train_model_config_json(const lt_rrr_train_config *c)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddNumberToObject(o, "image_size", (double)c->image_size);
    if (c->arch == LT_RRR_ARCH_VIT) {
        cJSON_AddNumberToObject(o, "patch", (double)c->vit_patch);
        cJSON_AddNumberToObject(o, "dim", (double)c->vit_dim);
        cJSON_AddNumberToObject(o, "depth", c->vit_depth);
        cJSON_AddNumberToObject(o, "heads", c->vit_heads);
        cJSON_AddNumberToObject(o, "mlp_ratio", c->vit_mlp_ratio);
    } else {
        cJSON_AddStringToObject(o, "stem", c->stem == LT_NN_STEM_IMAGENET ? "imagenet" : "small");
    }
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

cJSON *lt__train_config_json(const lt_rrr_train_config *c, double lambda)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "arch", c->arch == LT_RRR_ARCH_VIT ? "vit" : "resnet18");
    cJSON_AddStringToObject(o, "data", c->data ? c->data : "");
    cJSON_AddStringToObject(o, "dataset", c->dataset);
    cJSON_AddStringToObject(o, "method", lt_rrr_method_name(c->method));
    cJSON_AddNumberToObject(o, "lambda", lambda);
    cJSON_AddBoolToObject(o, "rrda", c->rrda);
    cJSON_AddStringToObject(o, "rrda_mode", c->rrda_mode == LT_RRR_RRDA_APPEND ? "append" : "replace");
    cJSON_AddNumberToObject(o, "rrda_p", c->rrda_p);
    cJSON_AddStringToObject(o, "actdiff_mode", c->actdiff_mode == LT_RRR_ACTDIFF_SHUFFLE ? "shuffle" : "mask");
    cJSON_AddNumberToObject(o, "epochs", c->epochs);
    cJSON_AddNumberToObject(o, "batch", (double)c->batch);
    cJSON_AddNumberToObject(o, "lr", c->lr);
    cJSON_AddStringToObject(o, "optimizer", c->optimizer);
    cJSON_AddNumberToObject(o, "momentum", c->momentum);
    cJSON_AddNumberToObject(o, "weight_decay", c->weight_decay);
    cJSON_AddStringToObject(o, "schedule", c->schedule);
    cJSON_AddNumberToObject(o, "warmup", (double)c->warmup);
    cJSON_AddNumberToObject(o, "clip", c->clip);
    cJSON_AddNumberToObject(o, "image_size", (double)c->image_size);
    cJSON_AddNumberToObject(o, "seed", (double)c->seed);
    cJSON_AddNumberToObject(o, "threads", c->threads);
    cJSON_AddNumberToObject(o, "train_limit", (double)c->train_limit);
    cJSON_AddNumberToObject(o, "max_steps", (double)c->max_steps);
    char *mc = lt__train_model_config_json(c);
    if (mc) {
        cJSON_AddRawToObject(o, "model", mc);
        free(mc);
    }
    return o;
}

/* ------------------------------------------------------------------ */
/* The job's state                                                     */
/* ------------------------------------------------------------------ */

static void job_free(job *j)
{
    lt_data_loader_free(j->train);
    lt_data_loader_free(j->val);
    lt_data_list_free(j->train_list);
    lt_data_list_free(j->val_list);
    free(j->limited);
    lt_nn_optim_free(j->opt);
    lt_nn_optim_free(j->disc_opt);
    if (j->has_disc)
        lt_rrr_disc_free(&j->disc);
    lt_nn_module_free(j->model);
    cJSON_Delete(j->log);
    free(j->model_config);
    free(j->classes_json);
}

static bool is_dir(const char *p)
{
    struct stat st;
    return p && stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int open_lists(job *j)
{
    const lt_rrr_train_config *c = j->c;
    lt_data_mask_mode tm = needs_masks(c) ? LT_DATA_MASKS_REQUIRED : LT_DATA_MASKS_OPTIONAL;
    if (!is_dir(c->data)) {
        lt_set_error("train: data folder %s does not exist", c->data ? c->data : "(none)");
        return -1;
    }
    if (strcmp(c->dataset, "in9") == 0) {
        j->train_list = lt_data_in9_list(c->data, "original", "train", tm);
        j->val_list = j->train_list ? lt_data_in9_list(c->data, "original", "val", LT_DATA_MASKS_NONE) : NULL;
    } else if (strcmp(c->dataset, "rival10") == 0) {
        j->train_list = lt_data_rival10_list(c->data, "train", tm);
        j->val_list = j->train_list ? lt_data_rival10_list(c->data, "test", LT_DATA_MASKS_NONE) : NULL;
    } else if (strcmp(c->dataset, "folder") == 0) {
        char tr[4096], va[4096];
        snprintf(tr, sizeof tr, "%s/train", c->data);
        snprintf(va, sizeof va, "%s/val", c->data);
        j->train_list = lt_data_folder_list(is_dir(tr) ? tr : c->data, tm);
        j->val_list = j->train_list && is_dir(va) ? lt_data_folder_list(va, LT_DATA_MASKS_NONE) : NULL;
        if (j->train_list && !j->val_list && is_dir(va))
            return -1;
    } else {
        lt_set_error("train: unknown dataset kind \"%s\" (in9, rival10 or folder)", c->dataset);
        return -1;
    }
    if (!j->train_list || (strcmp(c->dataset, "folder") != 0 && !j->val_list)) {
        if (needs_masks(c) && strstr(lt_last_error(), "mask")) {
            char msg[4096];
            snprintf(msg, sizeof msg, "%s", lt_last_error());
            lt_set_error("train: method %s%s needs foreground masks: %s", lt_rrr_method_name(c->method),
                         c->rrda ? " with RRDA" : "", msg);
        }
        return -1;
    }
    /* --train-limit: the first N images of each class */
    j->train_view = *j->train_list;
    if (c->train_limit > 0) {
        j->limited = malloc(j->train_list->n * sizeof *j->limited);
        int64_t *seen = calloc((size_t)j->train_list->nclasses, sizeof *seen);
        if (!j->limited || !seen) {
            free(seen);
            lt_set_error("train: out of memory");
            return -1;
        }
        size_t k = 0;
        for (size_t i = 0; i < j->train_list->n; i++) {
            const lt_data_sample *s = &j->train_list->samples[i];
            if (seen[s->label]++ < c->train_limit)
                j->limited[k++] = *s;
        }
        free(seen);
        j->train_view.samples = j->limited;
        j->train_view.n = k;
    }
    return 0;
}

static int open_loaders(job *j)
{
    const lt_rrr_train_config *c = j->c;
    lt_data_loader_opts o;
    memset(&o, 0, sizeof o);
    o.batch_size = c->batch;
    o.shuffle = true;
    o.drop_last = true;
    o.masks = needs_masks(c);
    o.seed = c->seed;
    o.channels = 3;
    o.workers = c->workers;
    o.transform.geom = LT_DATA_GEOM_RESIZE;
    o.transform.height = o.transform.width = c->image_size;
    o.transform.hflip = 0.5;
    o.transform.normalize = true;
    for (int k = 0; k < 3; k++) {
        o.transform.mean[k] = lt__train_mean[k];
        o.transform.std[k] = lt__train_std[k];
    }
    j->train = lt_data_loader_new(&j->train_view, &o);
    if (!j->train)
        return -1;
    if (j->val_list) {
        o.shuffle = false;
        o.drop_last = false;
        o.masks = false;
        o.transform.hflip = 0;
        j->val = lt_data_loader_new(j->val_list, &o);
        if (!j->val)
            return -1;
    }
    return 0;
}

static int build_model(job *j)
{
    const lt_rrr_train_config *c = j->c;
    lt_rng r = lt_rng_new(c->seed);
    int64_t ncls = j->train_list->nclasses;
    if (c->arch == LT_RRR_ARCH_VIT) {
        lt_nn_vit_config vc = lt_nn_vit_config_make(c->image_size, c->vit_patch, ncls);
        vc.dim = c->vit_dim;
        vc.depth = c->vit_depth;
        vc.heads = c->vit_heads;
        vc.mlp_ratio = c->vit_mlp_ratio;
        j->model = lt_nn_vit_new(&vc, &r);
    } else {
        lt_nn_resnet_config rc = lt_nn_resnet18_config(ncls, (lt_nn_resnet_stem)c->stem);
        j->model = lt_nn_resnet_new(&rc, &r);
    }
    if (!j->model)
        return -1;
    j->net.module = j->model;
    j->net.arch = c->arch;
    j->rmodel = lt_rrr_net_model(&j->net);
    if (lt_nn_module_parameters(j->model, &j->params) < 0)
        return -1;
    /* the augmentation generator is separate from init and the loader */
    j->rng = lt_rng_new(c->seed ^ 0x5252444155475f31ull);
    j->model_config = lt__train_model_config_json(c);
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; arr && i < j->train_list->nclasses; i++)
        cJSON_AddItemToArray(arr, cJSON_CreateString(j->train_list->classes[i]));
    j->classes_json = arr ? cJSON_PrintUnformatted(arr) : NULL;
    cJSON_Delete(arr);
    if (!j->model_config || !j->classes_json) {
        lt_set_error("train: out of memory");
        return -1;
    }
    return 0;
}

static lt_nn_optim *make_optimizer(const lt_rrr_train_config *c, int n, lt_tensor *const *params, double lr)
{
    if (strcmp(c->optimizer, "sgd") == 0) {
        lt_nn_sgd_opts o = lt_nn_sgd_defaults(lr);
        o.momentum = c->momentum;
        o.weight_decay = c->weight_decay;
        return lt_nn_sgd_new(n, params, &o);
    }
    if (strcmp(c->optimizer, "adamw") == 0) {
        lt_nn_adamw_opts o = lt_nn_adamw_defaults(lr);
        o.weight_decay = c->weight_decay;
        return lt_nn_adamw_new(n, params, &o);
    }
    lt_set_error("train: unknown optimizer \"%s\" (sgd or adamw)", c->optimizer);
    return NULL;
}

static int build_optimizers(job *j)
{
    const lt_rrr_train_config *c = j->c;
    j->opt = make_optimizer(c, j->params.n, j->params.tensors, c->lr);
    if (!j->opt)
        return -1;
    if (c->method == LT_RRR_ADVERSARIAL) {
        int64_t F = c->arch == LT_RRR_ARCH_VIT ? c->vit_dim : 512;
        lt_rng dr = lt_rng_new(c->seed + 17);
        if (lt_rrr_disc_init(&j->disc, F, c->adv_hidden, LT_F32, &dr) < 0)
            return -1;
        j->has_disc = true;
        lt_tensor *dp[4] = {j->disc.w1, j->disc.b1, j->disc.w2, j->disc.b2};
        j->disc_opt = make_optimizer(c, 4, dp, c->adv_lr > 0 ? c->adv_lr : c->lr);
        if (!j->disc_opt)
            return -1;
    }
    return 0;
}

static double lr_at(const job *j, int64_t step)
{
    const lt_rrr_train_config *c = j->c;
    if (strcmp(c->schedule, "cosine") == 0) {
        int64_t w = c->warmup < j->total_steps ? c->warmup : 0;
        return lt_nn_lr_cosine_warmup(c->lr, step, j->total_steps > w ? j->total_steps : w + 1, w, 0.0, 0.0);
    }
    if (strcmp(c->schedule, "step") == 0) {
        int64_t per_epoch = lt_data_loader_batches_per_epoch(j->train);
        return lt_nn_lr_step(c->lr, step, c->step_size * (per_epoch > 0 ? per_epoch : 1), c->gamma);
    }
    return c->lr;
}

/* ------------------------------------------------------------------ */
/* One step                                                            */
/* ------------------------------------------------------------------ */

typedef struct step_out {
    double loss, penalty;
    int64_t correct, seen;
} step_out;

static int train_step(job *j, lt_data_batch *b, step_out *so)
{
    const lt_rrr_train_config *c = j->c;
    lt_tensor *x = b->images, *y = b->labels, *mk = b->masks;
    if (c->rrda && lt_rrr_rrda_apply(x, y, mk, (lt_rrr_rrda_mode)c->rrda_mode, c->rrda_p, &j->rng, &x, &y, &mk) < 0)
        return -1;
    if (lt_nn_optim_set_lr(j->opt, lr_at(j, j->step)) < 0)
        return -1;
    lt_tensor *logits = NULL, *pen = NULL, *dloss = NULL;
    switch (c->method) {
    case LT_RRR_STANDARD: logits = j->rmodel.forward(j->rmodel.ctx, x, NULL); break;
    case LT_RRR_RRR: pen = lt_rrr_rrr_penalty(&j->rmodel, x, mk, &logits); break;
    case LT_RRR_GRADMASK: pen = lt_rrr_gradmask_penalty(&j->rmodel, x, mk, y, &logits); break;
    case LT_RRR_ACTDIFF:
        pen = lt_rrr_actdiff_penalty(&j->rmodel, x, mk, (lt_rrr_actdiff_mode)c->actdiff_mode, &j->rng, &logits);
        break;
    case LT_RRR_ADVERSARIAL:
        if (lt_rrr_adversarial_losses(&j->rmodel, &j->disc, x, mk, &dloss, &pen, &logits) < 0)
            return -1;
        break;
    }
    if (!logits || (c->method != LT_RRR_STANDARD && !pen))
        return -1;
    lt_tensor *ce = lt_nn_cross_entropy(logits, y, LT_NN_MEAN, 0.0);
    lt_tensor *loss = pen ? lt_add(ce, lt_mul_scalar(pen, j->lambda)) : ce;
    if (!loss)
        return -1;
    double lv = lt_item(loss);
    if (!isfinite(lv)) {
        lt_set_error("train: the loss became %g at step %lld (lower --lr or --lambda)", lv, (long long)j->step);
        return -1;
    }
    lt_nn_optim_zero_grad(j->opt);
    if (lt_ag_backward(loss, NULL, false, false) < 0)
        return -1;
    if (c->clip > 0 && isnan(lt_nn_clip_grad_norm(j->params.n, j->params.tensors, c->clip)))
        return -1;
    if (lt_nn_optim_step(j->opt) < 0)
        return -1;
    if (dloss) {
        /* The encoder term also reached D's parameters: drop that before D's
         * own update, which uses the discriminator loss alone. */
        lt_nn_optim_zero_grad(j->disc_opt);
        if (lt_nn_optim_set_lr(j->disc_opt, lr_at(j, j->step) * (c->adv_lr > 0 ? c->adv_lr / c->lr : 1.0)) < 0 ||
            lt_ag_backward(dloss, NULL, false, false) < 0 || lt_nn_optim_step(j->disc_opt) < 0)
            return -1;
    }
    lt_tensor *pred = lt_argmax(logits, 1, false);
    lt_tensor *hit = lt_sum(lt_eq(pred, y), 0, NULL, false);
    if (!hit)
        return -1;
    so->loss = lv;
    so->penalty = pen ? lt_item(pen) : 0.0;
    so->correct = (int64_t)lt_item(hit);
    so->seen = lt_size(y, 0);
    return 0;
}

static int evaluate(job *j, double *acc)
{
    *acc = NAN;
    if (!j->val)
        return 0;
    bool prev = lt_ag_set_grad_enabled(false);
    lt_nn_module_train(j->model, false);
    int64_t correct = 0, seen = 0;
    int rc;
    lt_data_batch b;
    lt_data_loader_seek(j->val, (lt_data_position){0, 0});
    while ((rc = lt_data_loader_next(j->val, &b)) > 0) {
        size_t m = lt_frame_push();
        lt_tensor *z = j->rmodel.forward(j->rmodel.ctx, b.images, NULL);
        lt_tensor *hit = lt_sum(lt_eq(lt_argmax(z, 1, false), b.labels), 0, NULL, false);
        if (!hit)
            rc = -1;
        else {
            correct += (int64_t)lt_item(hit);
            seen += lt_size(b.labels, 0);
        }
        lt_frame_pop(m);
        if (rc < 0)
            break;
    }
    lt_nn_module_train(j->model, true);
    lt_ag_set_grad_enabled(prev);
    if (rc < 0)
        return -1;
    *acc = seen ? 100.0 * (double)correct / (double)seen : NAN;
    return 0;
}

static int write_log(job *j)
{
    if (!j->c->log)
        return 0;
    char *s = cJSON_Print(j->log);
    if (!s) {
        lt_set_error("train: out of memory");
        return -1;
    }
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", j->c->log);
    FILE *fp = fopen(tmp, "w");
    int rc = fp && fputs(s, fp) >= 0 && fputc('\n', fp) != EOF ? 0 : -1;
    if (fp && fclose(fp) != 0)
        rc = -1;
    free(s);
    if (rc == 0 && rename(tmp, j->c->log) != 0)
        rc = -1;
    if (rc < 0)
        lt_set_error("train: cannot write the log %s", j->c->log);
    return rc;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int validate(const lt_rrr_train_config *c)
{
    if (!c->out || !*c->out) {
        lt_set_error("train: an output checkpoint path is required (--out)");
        return -1;
    }
    if (c->epochs < 1 || c->batch < 1 || c->image_size < 8 || !(c->lr > 0) || c->threads < 1 || c->workers < 0 ||
        c->train_limit < 0 || c->max_steps < 0 || c->save_every < 0 || c->weight_decay < 0 || c->clip < 0) {
        lt_set_error("train: epochs, batch, threads must be >= 1, image size >= 8, lr > 0, and limits >= 0");
        return -1;
    }
    if ((unsigned)c->method > LT_RRR_ADVERSARIAL || !(c->rrda_p >= 0 && c->rrda_p <= 1)) {
        lt_set_error("train: unknown method or RRDA probability outside [0, 1]");
        return -1;
    }
    if (c->arch == LT_RRR_ARCH_VIT &&
        (c->vit_patch < 1 || c->image_size % c->vit_patch != 0 || c->vit_dim < 1 || c->vit_depth < 1 ||
         c->vit_heads < 1 || c->vit_dim % c->vit_heads != 0 || !(c->vit_mlp_ratio > 0))) {
        lt_set_error("train: ViT needs image size divisible by patch and dim divisible by heads (got size %lld, "
                     "patch %lld, dim %lld, heads %d)",
                     (long long)c->image_size, (long long)c->vit_patch, (long long)c->vit_dim, c->vit_heads);
        return -1;
    }
    if (strcmp(c->schedule, "cosine") && strcmp(c->schedule, "step") && strcmp(c->schedule, "none")) {
        lt_set_error("train: unknown schedule \"%s\" (cosine, step or none)", c->schedule);
        return -1;
    }
    return 0;
}

int lt_rrr_train(const lt_rrr_train_config *c, lt_rrr_progress_fn progress, void *ud)
{
    if (validate(c) < 0)
        return -1;
    lt_set_num_threads(c->threads);
    job j;
    memset(&j, 0, sizeof j);
    j.c = c;
    j.progress = progress;
    j.ud = ud;
    j.lambda = c->lambda >= 0 ? c->lambda : default_lambda(c->method);
    int rc = -1;
    if (open_lists(&j) < 0 || open_loaders(&j) < 0 || build_model(&j) < 0)
        goto out;
    if (c->init && lt__train_load_init(&j, c->init) < 0)
        goto out;
    if (build_optimizers(&j) < 0)
        goto out;
    int64_t per_epoch = lt_data_loader_batches_per_epoch(j.train);
    /* The schedule spans every epoch; --max-steps only stops early, so a
     * run stopped by it and resumed follows the same learning rates. */
    j.total_steps = per_epoch * c->epochs;
    if (c->resume && lt__train_resume(&j, c->resume) < 0)
        goto out;
    j.log = cJSON_CreateObject();
    j.log_epochs = cJSON_CreateArray();
    if (!j.log || !j.log_epochs) {
        lt_set_error("train: out of memory");
        goto out;
    }
    cJSON_AddItemToObject(j.log, "config", lt__train_config_json(c, j.lambda));
    cJSON_AddItemToObject(j.log, "epochs", j.log_epochs);
    lt_nn_module_train(j.model, true);
    double t_start = now_s(), t_train = 0;
    int64_t imgs_train = 0;
    bool stop = false;
    lt_rrr_train_status st;
    memset(&st, 0, sizeof st);
    st.epochs = c->epochs;
    while (j.epoch < c->epochs && !stop) {
        double e_loss = 0, e_pen = 0, e_t = 0;
        int64_t e_correct = 0, e_seen = 0, e_batches = 0, e_imgs = 0;
        lt_data_batch b;
        int nrc;
        while ((nrc = lt_data_loader_next(j.train, &b)) > 0) {
            size_t m = lt_frame_push();
            double t0 = now_s();
            step_out so = {0, 0, 0, 0};
            int src = train_step(&j, &b, &so);
            double dt = now_s() - t0;
            lt_frame_pop(m);
            if (src < 0) {
                char msg[4096];
                snprintf(msg, sizeof msg, "%s", lt_last_error());
                lt_set_error("train: epoch %d, step %lld: %s", j.epoch, (long long)j.step, msg);
                goto out;
            }
            j.step++;
            e_loss += so.loss;
            e_pen += so.penalty;
            e_correct += so.correct;
            e_seen += so.seen;
            e_batches++;
            e_imgs += lt_size(b.labels, 0);
            e_t += dt;
            t_train += dt;
            imgs_train += lt_size(b.labels, 0);
            if (progress) {
                st.phase = "train";
                st.epoch = j.epoch;
                st.step = j.step;
                st.batch = b.batch + 1;
                st.batches = per_epoch;
                st.loss = e_loss / (double)e_batches;
                st.step_loss = so.loss;
                st.penalty = e_pen / (double)e_batches;
                st.acc = 100.0 * (double)e_correct / (double)e_seen;
                st.images_per_sec = e_t > 0 ? (double)e_imgs / e_t : 0;
                double rate = (now_s() - t_start) / (double)(j.step ? j.step : 1);
                st.eta_sec = rate * (double)(j.total_steps - j.step);
                progress(ud, &st);
            }
            if (c->save_every > 0 && j.step % c->save_every == 0) {
                if (lt__train_save(&j, c->out) < 0)
                    goto out;
                if (progress) {
                    st.phase = "saved";
                    st.path = c->out;
                    progress(ud, &st);
                }
            }
            if (c->max_steps > 0 && j.step >= c->max_steps) {
                stop = true;
                break;
            }
        }
        if (nrc < 0)
            goto out;
        if (!stop)
            j.epoch++;
        double vacc;
        if (evaluate(&j, &vacc) < 0)
            goto out;
        if (progress) {
            st.phase = "val";
            st.val_acc = vacc;
            progress(ud, &st);
        }
        cJSON *e = cJSON_CreateObject();
        if (!e) {
            lt_set_error("train: out of memory");
            goto out;
        }
        cJSON_AddNumberToObject(e, "epoch", j.epoch - (stop ? 0 : 1));
        cJSON_AddNumberToObject(e, "steps", (double)e_batches);
        cJSON_AddNumberToObject(e, "train_loss", e_batches ? e_loss / (double)e_batches : NAN);
        cJSON_AddNumberToObject(e, "train_penalty", e_batches ? e_pen / (double)e_batches : NAN);
        cJSON_AddNumberToObject(e, "train_acc", e_seen ? 100.0 * (double)e_correct / (double)e_seen : NAN);
        cJSON_AddNumberToObject(e, "val_acc", vacc);
        cJSON_AddNumberToObject(e, "images_per_sec", e_t > 0 ? (double)e_imgs / e_t : 0);
        cJSON_AddItemToArray(j.log_epochs, e);
        if (lt__train_save(&j, c->out) < 0)
            goto out;
        if (progress) {
            st.phase = "saved";
            st.path = c->out;
            progress(ud, &st);
        }
        cJSON_DeleteItemFromObject(j.log, "images_per_sec");
        cJSON_DeleteItemFromObject(j.log, "wall_s");
        cJSON_DeleteItemFromObject(j.log, "steps");
        cJSON_AddNumberToObject(j.log, "images_per_sec", t_train > 0 ? (double)imgs_train / t_train : 0);
        cJSON_AddNumberToObject(j.log, "wall_s", now_s() - t_start);
        cJSON_AddNumberToObject(j.log, "steps", (double)j.step);
        if (write_log(&j) < 0)
            goto out;
    }
    if (progress) {
        st.phase = "done";
        progress(ud, &st);
    }
    rc = 0;
out:
    job_free(&j);
    return rc;
}

