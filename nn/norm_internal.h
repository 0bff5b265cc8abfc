/*
 * norm_internal.h: what norm.c (the batch-norm ops, their backwards and
 * the autograd records) and norm_kernels.c (the per-channel kernels behind
 * them) share. Not installed.
 *
 * The kernels read and write the data of tensors they are given and record
 * nothing: operands are contiguous, of one dtype (f32 or f64, x's), and seen
 * as (N, C, S) with S the product of the dims after C (1 for (N,C) input).
 * Results go into tensors the caller allocated and owns. None of them fails.
 */
#ifndef LIBTENSOR_NN_NORM_INTERNAL_H
#define LIBTENSOR_NN_NORM_INTERNAL_H

#include <libtensor/tensor.h>

/* Which of training-mode batch norm's three fused ops lt__bn_kernel runs
 * (the formulas are in norm.c). */
typedef enum lt__bn_pass {
    LT__BN_FWD,         /* batch_norm_train: y = gamma xhat + beta */
    LT__BN_INPUT_GRAD,  /* batch_norm_input_grad: dx from g */
    LT__BN_WEIGHT_GRAD  /* batch_norm_weight_grad: dgamma = sum g xhat */
} lt__bn_pass;

/* One read pass for per-channel sums, then (LT__BN_FWD, LT__BN_INPUT_GRAD)
 * one write pass. x, g (N,C,S); gamma, beta (C) or NULL (g NULL for
 * LT__BN_FWD). out: y / dx (like x) or dgamma (C). mean_out, var_out (C):
 * the batch mean and biased variance (LT__BN_FWD only; both or neither
 * NULL). sums: NULL, or 5 C doubles (four sums and the shift K per channel)
 * that LT__BN_WEIGHT_GRAD (or lt__bn_kernel2) writes and LT__BN_INPUT_GRAD
 * then reads instead of making its own read pass over g and x: the same
 * sums, so the same bits. */
void lt__bn_kernel(lt__bn_pass which, const lt_tensor *x, const lt_tensor *g, const lt_tensor *gamma,
                   const lt_tensor *beta, lt_tensor *out, double eps, double *mean_out, double *var_out,
                   double *sums);

/* LT__BN_FWD with its block's tail in the write pass: out = act(gamma
 * xhat + beta + res), res (like x) or NULL, act ReLU (relu) or the
 * identity; each element rounded as lt__bn_kernel's y, lt_add(y, res) and
 * lt_relu round it, so bitwise those ops' result. mean_out, var_out: as
 * lt__bn_kernel. */
void lt__bn_fwd_act(const lt_tensor *x, const lt_tensor *gamma, const lt_tensor *beta, const lt_tensor *res,
                    bool relu, lt_tensor *out, double eps, double *mean_out, double *var_out);

/* ReLU's backward from its output: gz = u where z > 0, else 0 (NaN in z
 * gives 0). u, z, gz: one shape, contiguous, one dtype. Bitwise
 * lt_where(lt_cmp_scalar(z, ">", 0), u, 0). */
void lt__bn_relu_grad(const lt_tensor *u, const lt_tensor *z, lt_tensor *gz);

/* The backward of batch_norm_input_grad(g, x, gamma) against u when no
 * graph is recorded. u, g, x (N,C,S), gamma (C) or NULL. dx (like x) or
 * NULL: d/dx <u, input_grad(g, x, gamma)>. dgamma (C) or NULL: sum u
 * input_grad(g, x, 1). usums: NULL, or 5 C doubles that receive the sums
 * lt__bn_kernel's LT__BN_INPUT_GRAD reads for input_grad(u, x, gamma). */
void lt__bn_kernel2(const lt_tensor *u, const lt_tensor *g, const lt_tensor *x, const lt_tensor *gamma,
                    lt_tensor *dx, lt_tensor *dgamma, double eps, double *usums);

/* Eval mode: y = x s + t per channel, x and y (N,C,S), s and t (C); then
 * with r (x's shape, contiguous) y + r, then with relu ReLU. Bitwise
 * lt_add(lt_mul(x, s), t) broadcast the same way, lt_add(., r), lt_relu. */
void lt__bn_eval(const lt_tensor *x, const lt_tensor *s, const lt_tensor *t, const lt_tensor *r, bool relu,
                 lt_tensor *y);

#endif
