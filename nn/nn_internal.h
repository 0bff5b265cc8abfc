/*
 * nn_internal.h: what the files of nn/ share and nothing else includes.
 */
#ifndef LIBTENSOR_NN_INTERNAL_H
#define LIBTENSOR_NN_INTERNAL_H

#include "nn.h"

/* Registry entries of conv.c, functional.c and norm.c (static arrays). */
const lt_ag_opinfo *lt__nn_conv_ops(int *n);
const lt_ag_opinfo *lt__nn_functional_ops(int *n);
const lt_ag_opinfo *lt__nn_norm_ops(int *n);
const lt_ag_opinfo *lt__nn_attention_ops(int *n);
/* The lt_ag_fn of each custom op with a backward (NULL-terminated). */
const lt_ag_fn *const *lt__nn_conv_fns(void);

/* Sample helpers for registry generators: uniform f64 in [lo, hi). */
lt_tensor *lt__nn_rnd(lt_rng *r, int nd, const int64_t *shape, double lo, double hi);

#endif
