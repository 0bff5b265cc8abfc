/*
 * train_ckpt.c: training checkpoints (model state dict, optimizer state and
 * the metadata of docs/training.md), resuming a job from one, loading
 * --init weights, and rebuilding a model from a checkpoint alone
 * (lt_rrr_model_load).
 */
#include "train_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Checkpoints                                                         */
/* ------------------------------------------------------------------ */

#define MAX_TENSORS 4096

int lt__train_save(job *j, const char *path)
{
    const lt_rrr_train_config *c = j->c;
    size_t mark = lt_frame_push();
    int rc = -1;
    lt_nn_named_tensors sd;
    static const char *names[MAX_TENSORS];
    static lt_tensor *ts[MAX_TENSORS];
    static char disc_names[64][96];
    if (lt_nn_module_state_dict(j->model, &sd) < 0)
        goto out;
    int n = 0;
    for (int i = 0; i < sd.n && n < MAX_TENSORS; i++, n++) {
        names[n] = sd.names[i];
        ts[n] = sd.tensors[i];
    }
    int k = lt_nn_optim_state_export(j->opt, MAX_TENSORS - n, names + n, ts + n);
    if (k < 0 || n + k > MAX_TENSORS) {
        if (k >= 0)
            lt_set_error("train: checkpoint has too many tensors");
        goto out;
    }
    n += k;
    if (j->has_disc) {
        static const char *dn[4] = {"disc.w1", "disc.b1", "disc.w2", "disc.b2"};
        lt_tensor *dp[4] = {j->disc.w1, j->disc.b1, j->disc.w2, j->disc.b2};
        for (int i = 0; i < 4; i++, n++) {
            names[n] = dn[i];
            ts[n] = dp[i];
        }
        const char *on[64];
        lt_tensor *ot[64];
        int m = lt_nn_optim_state_export(j->disc_opt, 64, on, ot);
        if (m < 0 || m > 64 || n + m > MAX_TENSORS)
            goto out;
        for (int i = 0; i < m; i++, n++) {
            snprintf(disc_names[i], sizeof disc_names[i], "disc.%s", on[i]);
            names[n] = disc_names[i];
            ts[n] = ot[i];
        }
    }
    lt_data_position pos = lt_data_loader_tell(j->train);
    char epoch[32], step[32], seed[32], rng[64], lpos[64], ncls[32], mean[96], std[96], lam[32];
    snprintf(epoch, sizeof epoch, "%d", j->epoch);
    snprintf(step, sizeof step, "%lld", (long long)j->step);
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)c->seed);
    snprintf(rng, sizeof rng, "%llu:%llu", (unsigned long long)j->rng.seed, (unsigned long long)j->rng.counter);
    snprintf(lpos, sizeof lpos, "%lld:%lld", (long long)pos.epoch, (long long)pos.batch);
    snprintf(ncls, sizeof ncls, "%d", j->train_list->nclasses);
    snprintf(mean, sizeof mean, "%.17g,%.17g,%.17g", lt__train_mean[0], lt__train_mean[1], lt__train_mean[2]);
    snprintf(std, sizeof std, "%.17g,%.17g,%.17g", lt__train_std[0], lt__train_std[1], lt__train_std[2]);
    snprintf(lam, sizeof lam, "%.17g", j->lambda);
    cJSON *cfg = lt__train_config_json(c, j->lambda);
    char *cfgs = cfg ? cJSON_PrintUnformatted(cfg) : NULL;
    cJSON_Delete(cfg);
    if (!cfgs) {
        lt_set_error("train: out of memory");
        goto out;
    }
    const char *mk[] = {"format",        "libtensor.version", "model.arch",  "model.num_classes", "model.config",
                        "data.classes",  "data.mean",         "data.std",    "train.epoch",       "train.step",
                        "train.seed",    "train.rng",         "train.loader_position", "train.method",
                        "train.lambda",  "train.optimizer",   "train.config"};
    const char *mv[] = {"pt",           LT_VERSION_STRING, c->arch == LT_RRR_ARCH_VIT ? "vit" : "resnet18", ncls,
                        j->model_config, j->classes_json,  mean, std, epoch, step, seed, rng, lpos,
                        lt_rrr_method_name(c->method), lam, c->optimizer, cfgs};
    rc = lt_nn_safetensors_save(path, n, names, ts, (int)(sizeof mk / sizeof mk[0]), mk, mv);
    free(cfgs);
out:
    lt_frame_pop(mark);
    return rc;
}

static int parse_u64_pair(const char *s, uint64_t *a, uint64_t *b)
{
    unsigned long long x, y;
    if (!s || sscanf(s, "%llu:%llu", &x, &y) != 2)
        return -1;
    *a = x;
    *b = y;
    return 0;
}

int lt__train_resume(job *j, const char *path)
{
    const lt_rrr_train_config *c = j->c;
    lt_nn_tensor_file *f = lt_nn_safetensors_load(path);
    if (!f)
        return -1;
    int rc = -1;
    const char *arch = lt_nn_tensor_file_meta(f, "model.arch");
    const char *mc = lt_nn_tensor_file_meta(f, "model.config");
    const char *want = c->arch == LT_RRR_ARCH_VIT ? "vit" : "resnet18";
    if (!arch || strcmp(arch, want) != 0 || !mc || strcmp(mc, j->model_config) != 0) {
        lt_set_error("train: %s is a checkpoint of %s %s, not of this run's %s %s", path, arch ? arch : "(unknown)",
                     mc ? mc : "", want, j->model_config);
        goto out;
    }
    lt_nn_named_tensors sd;
    if (lt_nn_module_state_dict(j->model, &sd) < 0)
        goto out;
    const char *skip[] = {"optim.", "disc."};
    lt_nn_load_opts lo = {true, 2, skip};
    if (lt_nn_load_into(f, sd.n, sd.names, sd.tensors, &lo, NULL) < 0)
        goto out;
    int n = lt_nn_tensor_file_count(f);
    const char **names = malloc(sizeof *names * (size_t)(n ? n : 1));
    lt_tensor **ts = malloc(sizeof *ts * (size_t)(n ? n : 1));
    if (!names || !ts) {
        free(names);
        free(ts);
        lt_set_error("train: out of memory");
        goto out;
    }
    int k = 0, kd = 0;
    for (int i = 0; i < n; i++)
        if (strncmp(lt_nn_tensor_file_name(f, i), "optim.", 6) == 0) {
            names[k] = lt_nn_tensor_file_name(f, i);
            ts[k++] = lt_nn_tensor_file_tensor(f, i);
        }
    int irc = lt_nn_optim_state_import(j->opt, k, names, ts);
    if (irc == 0 && j->has_disc) {
        lt_tensor *dp[4] = {j->disc.w1, j->disc.b1, j->disc.w2, j->disc.b2};
        const char *dn[4] = {"disc.w1", "disc.b1", "disc.w2", "disc.b2"};
        lt_nn_load_opts dl = {false, 0, NULL};
        irc = lt_nn_load_into(f, 4, dn, dp, &dl, NULL);
        for (int i = 0; irc == 0 && i < n; i++)
            if (strncmp(lt_nn_tensor_file_name(f, i), "disc.optim.", 11) == 0) {
                names[kd] = lt_nn_tensor_file_name(f, i) + 5;
                ts[kd++] = lt_nn_tensor_file_tensor(f, i);
            }
        if (irc == 0)
            irc = lt_nn_optim_state_import(j->disc_opt, kd, names, ts);
    }
    free(names);
    free(ts);
    if (irc < 0)
        goto out;
    const char *ep = lt_nn_tensor_file_meta(f, "train.epoch"), *st = lt_nn_tensor_file_meta(f, "train.step");
    uint64_t a, b;
    if (!ep || !st || parse_u64_pair(lt_nn_tensor_file_meta(f, "train.rng"), &a, &b) < 0) {
        lt_set_error("train: %s lacks the training state (train.epoch, train.step, train.rng)", path);
        goto out;
    }
    j->epoch = atoi(ep);
    j->step = atoll(st);
    j->rng.seed = a;
    j->rng.counter = b;
    uint64_t pe, pb;
    if (parse_u64_pair(lt_nn_tensor_file_meta(f, "train.loader_position"), &pe, &pb) < 0 ||
        lt_data_loader_seek(j->train, (lt_data_position){(int64_t)pe, (int64_t)pb}) < 0) {
        if (!strstr(lt_last_error(), "seek"))
            lt_set_error("train: %s has no valid train.loader_position", path);
        goto out;
    }
    j->epoch = (int)pe;
    rc = 0;
out:
    lt_nn_tensor_file_free(f);
    return rc;
}

int lt__train_load_init(job *j, const char *path)
{
    lt_nn_tensor_file *f = lt_nn_safetensors_load(path);
    if (!f)
        return -1;
    lt_nn_named_tensors sd;
    int rc = lt_nn_module_state_dict(j->model, &sd);
    const char *head_w = j->c->arch == LT_RRR_ARCH_VIT ? "head.weight" : "fc.weight";
    const char *head = j->c->arch == LT_RRR_ARCH_VIT ? "head." : "fc.";
    int hi = lt_nn_tensor_file_find(f, head_w);
    bool replace_head = hi >= 0 && lt_size(lt_nn_tensor_file_tensor(f, hi), 0) != j->train_list->nclasses;
    const char *skip[3] = {"optim.", "disc.", head};
    lt_nn_load_opts lo = {true, replace_head ? 3 : 2, skip};
    if (rc >= 0)
        rc = lt_nn_load_into(f, sd.n, sd.names, sd.tensors, &lo, NULL);
    lt_nn_tensor_file_free(f);
    return rc < 0 ? -1 : 0;
}

/* ------------------------------------------------------------------ */
/* Rebuilding a model from a checkpoint                                */
/* ------------------------------------------------------------------ */

static int parse3(const char *s, double *v)
{
    return s && sscanf(s, "%lf,%lf,%lf", &v[0], &v[1], &v[2]) == 3 ? 0 : -1;
}

void lt_rrr_model_info_free(lt_rrr_model_info *info)
{
    if (!info)
        return;
    if (info->class_names) {
        for (int64_t i = 0; i < info->num_classes; i++)
            free(info->class_names[i]);
        free(info->class_names);
    }
    info->class_names = NULL;
}

lt_nn_module *lt_rrr_model_load(const char *path, lt_rrr_model_info *info)
{
    memset(info, 0, sizeof *info);
    lt_nn_tensor_file *f = lt_nn_safetensors_load(path);
    if (!f)
        return NULL;
    lt_nn_module *m = NULL;
    cJSON *mc = NULL, *cls = NULL;
    const char *arch = lt_nn_tensor_file_meta(f, "model.arch");
    const char *ncls = lt_nn_tensor_file_meta(f, "model.num_classes");
    const char *conf = lt_nn_tensor_file_meta(f, "model.config");
    if (!arch || !ncls || !conf || !(mc = cJSON_Parse(conf)) || parse3(lt_nn_tensor_file_meta(f, "data.mean"), info->mean) < 0 ||
        parse3(lt_nn_tensor_file_meta(f, "data.std"), info->std) < 0) {
        lt_set_error("model_load: %s is not a libtensor training checkpoint (its metadata lacks model.arch, "
                     "model.num_classes, model.config, data.mean or data.std)",
                     path);
        goto out;
    }
    snprintf(info->config, sizeof info->config, "%s", conf);
    info->num_classes = atoll(ncls);
    const cJSON *isz = cJSON_GetObjectItemCaseSensitive(mc, "image_size");
    info->image_size = cJSON_IsNumber(isz) ? (int64_t)isz->valuedouble : 0;
    if (info->num_classes < 1 || info->image_size < 1) {
        lt_set_error("model_load: %s has an invalid class count or image size", path);
        goto out;
    }
    lt_rng r = lt_rng_new(0);
    if (strcmp(arch, "resnet18") == 0) {
        const cJSON *stem = cJSON_GetObjectItemCaseSensitive(mc, "stem");
        info->arch = LT_RRR_ARCH_RESNET18;
        lt_nn_resnet_config rc = lt_nn_resnet18_config(
            info->num_classes, cJSON_IsString(stem) && strcmp(stem->valuestring, "imagenet") == 0 ? LT_NN_STEM_IMAGENET
                                                                                                  : LT_NN_STEM_SMALL);
        m = lt_nn_resnet_new(&rc, &r);
    } else if (strcmp(arch, "vit") == 0) {
        info->arch = LT_RRR_ARCH_VIT;
        lt_nn_vit_config vc = lt_nn_vit_config_make(info->image_size,
                                                    (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(mc, "patch")),
                                                    info->num_classes);
        vc.dim = (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(mc, "dim"));
        vc.depth = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(mc, "depth"));
        vc.heads = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(mc, "heads"));
        vc.mlp_ratio = cJSON_GetNumberValue(cJSON_GetObjectItem(mc, "mlp_ratio"));
        m = lt_nn_vit_new(&vc, &r);
    } else {
        lt_set_error("model_load: %s: unknown architecture \"%s\"", path, arch);
        goto out;
    }
    if (!m)
        goto out;
    lt_nn_named_tensors sd;
    const char *skip[] = {"optim.", "disc."};
    lt_nn_load_opts lo = {true, 2, skip};
    if (lt_nn_module_state_dict(m, &sd) < 0 || lt_nn_load_into(f, sd.n, sd.names, sd.tensors, &lo, NULL) < 0) {
        lt_nn_module_free(m);
        m = NULL;
        goto out;
    }
    lt_nn_module_train(m, false);
    cls = cJSON_Parse(lt_nn_tensor_file_meta(f, "data.classes") ? lt_nn_tensor_file_meta(f, "data.classes") : "");
    if (cJSON_IsArray(cls) && cJSON_GetArraySize(cls) == info->num_classes) {
        info->class_names = calloc((size_t)info->num_classes, sizeof(char *));
        for (int64_t i = 0; info->class_names && i < info->num_classes; i++) {
            const cJSON *s = cJSON_GetArrayItem(cls, (int)i);
            info->class_names[i] = strdup(cJSON_IsString(s) ? s->valuestring : "?");
        }
    }
out:
    cJSON_Delete(mc);
    cJSON_Delete(cls);
    lt_nn_tensor_file_free(f);
    return m;
}
