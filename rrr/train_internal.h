/*
 * train_internal.h: what rrr/train.c and rrr/train_ckpt.c share.
 */
#ifndef LIBTENSOR_TRAIN_INTERNAL_H
#define LIBTENSOR_TRAIN_INTERNAL_H

#include "rrr.h"

#include <cjson/cJSON.h>

#include <libtensor/checkpoint.h>
#include <libtensor/data.h>
#include <libtensor/nn.h>
#include <libtensor/optim.h>

/* The state of one training job (train.c owns it). */
typedef struct job {
    const lt_rrr_train_config *c;
    double lambda;
    lt_data_list *train_list, *val_list;
    lt_data_list train_view; /* train_list limited to train_limit per class */
    lt_data_sample *limited;
    lt_data_loader *train, *val;
    lt_nn_module *model;
    lt_rrr_net net;
    lt_rrr_model rmodel;
    lt_nn_optim *opt;
    lt_nn_named_tensors params;
    lt_rrr_disc disc;
    bool has_disc;
    lt_nn_optim *disc_opt;
    lt_rng rng; /* RRDA, ActDiff shuffle */
    int64_t step, total_steps;
    int epoch;
    cJSON *log, *log_epochs;
    char *model_config;
    char *classes_json;
    lt_rrr_progress_fn progress;
    void *ud;
} job;


/* ImageNet's input statistics, used for every run and stored in checkpoints. */
extern const double lt__train_mean[3], lt__train_std[3];

/* {"image_size":..,"stem":..} or the ViT shape, as JSON (malloc'd). */
char *lt__train_model_config_json(const lt_rrr_train_config *c);
/* Every setting of the run, as a cJSON object (caller deletes). */
cJSON *lt__train_config_json(const lt_rrr_train_config *c, double lambda);

/* train_ckpt.c: write the job's checkpoint; restore a job from one; load
 * --init weights. 0 or -1. */
int lt__train_save(job *j, const char *path);
int lt__train_resume(job *j, const char *path);
int lt__train_load_init(job *j, const char *path);

#endif
