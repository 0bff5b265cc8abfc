/*
 * libtensor: optimizers, learning-rate schedules, gradient clipping
 * (<libtensor/optim.h>)
 *
 * THE MODEL
 *
 * An optimizer (lt_nn_optim) holds an array of parameters: leaf tensors
 * (f32 or f64, contiguous) that require grad. lt_nn_optim_step reads each
 * parameter's accumulated gradient (lt_ag_grad_of) and updates the values in
 * place through lt_data, outside autograd: nothing is recorded and the
 * parameters stay leaves. A parameter whose .grad is NULL is skipped (its
 * state does not advance), as in PyTorch. The arithmetic of each element is
 * done in the parameter's dtype, in the order of PyTorch's single-tensor
 * ("foreach=False") implementations, which are quoted next to each step.
 *
 *  - SGD (torch.optim.SGD): momentum, dampening, Nesterov, weight decay.
 *  - AdamW (torch.optim.AdamW): decoupled weight decay, bias correction,
 *    no amsgrad.
 *
 * Schedules are pure functions lr(step) (no state to save); the caller sets
 * the optimizer's rate with lt_nn_optim_set_lr before each step.
 * lt_nn_clip_grad_norm is torch.nn.utils.clip_grad_norm_ with the 2-norm.
 *
 * OWNERSHIP. lt_nn_sgd_new / lt_nn_adamw_new return an optimizer the caller
 * owns and frees with lt_nn_optim_free. The optimizer retains its parameters
 * (they live at least as long as it does) and owns its state tensors
 * (momentum buffers, moments). lt_nn_optim_state_export hands out
 * frame-owned references.
 *
 * STATE. The state is a set of named tensors, so a checkpoint can store it
 * next to the weights (lt_nn_safetensors_save) and a resumed run continues
 * bitwise identically. i is the parameter's index in the array given at
 * creation:
 *   "optim.step"                      () i64, number of lt_nn_optim_step calls
 *   "optim.state.<i>.momentum_buffer" SGD with momentum != 0, param's shape
 *   "optim.state.<i>.exp_avg"         AdamW, param's shape
 *   "optim.state.<i>.exp_avg_sq"      AdamW, param's shape
 *   "optim.state.<i>.step"            AdamW, () i64, steps taken by param i
 * A parameter has state entries once it has been updated with a gradient.
 * Hyperparameters (lr, betas, ...) are not part of the state; a training
 * tool records them as checkpoint metadata.
 *
 * ERRORS follow tensor.h: NULL or -1 (NaN for schedules) and a message in
 * lt_last_error() naming the function ("sgd", "adamw", "optim_step", ...)
 * and the parameter index.
 *
 * EXAMPLE
 *
 *     lt_nn_adamw_opts o = lt_nn_adamw_defaults(3e-4);
 *     lt_nn_optim *opt = lt_nn_adamw_new(nparams, params, &o);
 *     for (int64_t s = 0; s < total; s++) {
 *         size_t m = lt_frame_push();
 *         ... forward, lt_ag_backward(loss, NULL, false, false) ...
 *         lt_nn_clip_grad_norm(nparams, params, 1.0);
 *         lt_nn_optim_set_lr(opt, lt_nn_lr_cosine_warmup(3e-4, s, total, 500, 0.01, 0));
 *         lt_nn_optim_step(opt);
 *         lt_nn_optim_zero_grad(opt);
 *         lt_frame_pop(m);
 *     }
 *     lt_nn_optim_free(opt);
 */
#ifndef LIBTENSOR_OPTIM_H
#define LIBTENSOR_OPTIM_H

#include <libtensor/autograd.h>
#include <libtensor/tensor.h>

#ifdef __cplusplus
extern "C" {
#endif

/* An optimizer of either kind (opaque). */
typedef struct lt_nn_optim lt_nn_optim;

/* ---- SGD ---- */

/* torch.optim.SGD's arguments (maximize and foreach are not offered). */
typedef struct lt_nn_sgd_opts {
    double lr;           /* >= 0 */
    double momentum;     /* >= 0, default 0 */
    double dampening;    /* default 0 */
    double weight_decay; /* >= 0, L2 added to the gradient, default 0 */
    bool nesterov;       /* needs momentum > 0 and dampening == 0 */
} lt_nn_sgd_opts;

/* {lr, 0, 0, 0, false}: plain gradient descent. */
lt_nn_sgd_opts lt_nn_sgd_defaults(double lr);

/* SGD over n parameters (see the model for what a parameter must be). Per
 * element, with g the gradient, p the parameter, b the momentum buffer
 * (torch.optim.SGD, _single_tensor_sgd):
 *   g = g + weight_decay * p                      (if weight_decay != 0)
 *   if momentum != 0:
 *       b = g                    on the parameter's first update,
 *       b = momentum * b + (1 - dampening) * g    afterwards;
 *       g = g + momentum * b  if nesterov,  else  g = b
 *   p = p - lr * g
 * Returns a new optimizer (caller owns) or NULL with an error. */
lt_nn_optim *lt_nn_sgd_new(int n, lt_tensor *const *params, const lt_nn_sgd_opts *opts);

/* ---- AdamW ---- */

/* torch.optim.AdamW's arguments (amsgrad is not offered). */
typedef struct lt_nn_adamw_opts {
    double lr;           /* >= 0, default 1e-3 */
    double beta1, beta2; /* in [0, 1), defaults 0.9, 0.999 */
    double eps;          /* >= 0, default 1e-8 */
    double weight_decay; /* >= 0, decoupled, default 1e-2 */
} lt_nn_adamw_opts;

/* {lr, 0.9, 0.999, 1e-8, 1e-2}: torch's defaults with the given lr. */
lt_nn_adamw_opts lt_nn_adamw_defaults(double lr);

/* AdamW over n parameters. Per element, with t the parameter's step count
 * after incrementing it, m and v its moments (zeros before the first step)
 * (torch.optim.AdamW, _single_tensor_adamw):
 *   p = p * (1 - lr * weight_decay)
 *   m = lerp(m, g, 1 - beta1)            (m + (1-beta1)(g - m), torch's lerp)
 *   v = beta2 * v + (1 - beta2) * g * g
 *   step_size = lr / (1 - beta1^t)
 *   denom = sqrt(v) / sqrt(1 - beta2^t) + eps
 *   p = p - step_size * m / denom
 * Returns a new optimizer (caller owns) or NULL with an error. */
lt_nn_optim *lt_nn_adamw_new(int n, lt_tensor *const *params, const lt_nn_adamw_opts *opts);

/* ---- common ---- */

/* Release the parameters and free the state. NULL-safe. */
void lt_nn_optim_free(lt_nn_optim *o);

/* One update of every parameter that has a gradient (see each kind). A
 * gradient must have its parameter's shape and dtype (any strides). Every
 * gradient is checked before any parameter changes. Increments the step
 * count. Returns 0 or -1. */
int lt_nn_optim_step(lt_nn_optim *o);

/* Drop every parameter's .grad (torch's zero_grad(set_to_none=True)). */
void lt_nn_optim_zero_grad(lt_nn_optim *o);

/* Current learning rate, and set it (lr >= 0, finite; returns 0 or -1). */
double lt_nn_optim_lr(const lt_nn_optim *o);
int lt_nn_optim_set_lr(lt_nn_optim *o, double lr);

/* Weight decay of parameter i only (e.g. 0 for biases and norm weights, as
 * ViT recipes do). wd >= 0. Returns 0 or -1. */
int lt_nn_optim_set_weight_decay(lt_nn_optim *o, int i, double wd);

/* Number of lt_nn_optim_step calls that succeeded (or were imported). */
int64_t lt_nn_optim_step_count(const lt_nn_optim *o);

/* Number of parameters. */
int lt_nn_optim_param_count(const lt_nn_optim *o);

/* The state as named tensors (see STATE above), "optim.step" first, then by
 * parameter index. Writes at most cap entries to names[] (borrowed strings
 * owned by the optimizer, valid until it is freed) and tensors[]
 * (frame-owned references; a buffer's reference is the live buffer, whose
 * values change at the next step, so save or lt_clone it before stepping).
 * Returns the total number of entries (which may exceed cap; call with cap
 * 0 to size the arrays), or -1 on error. */
int lt_nn_optim_state_export(const lt_nn_optim *o, int cap, const char **names, lt_tensor **tensors);

/* Replace the whole state with the named tensors (e.g. every tensor of a
 * checkpoint; names not starting with "optim." are ignored). "optim.step"
 * is required. Shapes must match the parameters; values are copied
 * (converted to the parameter's dtype). A parameter without entries gets no
 * state, and AdamW needs all three of a parameter's entries or none.
 * Unknown "optim." keys (including a momentum_buffer for an SGD without
 * momentum, or another kind's fields), indices out of range, duplicates and
 * bad shapes are errors. Nothing changes on error. Returns 0 or -1. */
int lt_nn_optim_state_import(lt_nn_optim *o, int n, const char *const *names, lt_tensor *const *tensors);

/* ---- learning-rate schedules: pure functions of the step ---- */

/* torch.optim.lr_scheduler.StepLR in closed form:
 *   lr(step) = base_lr * gamma ^ floor(step / step_size)
 * step >= 0, step_size >= 1. NaN with an error on bad arguments. */
double lt_nn_lr_step(double base_lr, int64_t step, int64_t step_size, double gamma);

/* Linear warm-up, then cosine annealing (torch's SequentialLR of LinearLR
 * and CosineAnnealingLR, in closed form). With W = warmup_steps, T =
 * total_steps and f = warmup_start_factor:
 *   step < W:       lr = base_lr * (f + (1 - f) * step / W)
 *   W <= step < T:  lr = eta_min + (base_lr - eta_min)
 *                                  * (1 + cos(pi * (step - W) / (T - W))) / 2
 *   step >= T:      lr = eta_min
 * so the rate rises linearly from base_lr * f at step 0 to base_lr at step W
 * and follows CosineAnnealingLR(T_max = T - W, eta_min) from there, reaching
 * eta_min at step T (torch's closed form would rise again past T_max; this
 * one stays at eta_min). W = 0 means no warm-up. Arguments: step >= 0,
 * 0 <= W < T, 0 <= f <= 1; NaN with an error otherwise. */
double lt_nn_lr_cosine_warmup(double base_lr, int64_t step, int64_t total_steps, int64_t warmup_steps,
                              double warmup_start_factor, double eta_min);

/* ---- gradient clipping ---- */

/* torch.nn.utils.clip_grad_norm_(params, max_norm) with the 2-norm: total =
 * sqrt(sum over parameters with a .grad of sum(g^2)), accumulated in double.
 * coef = max_norm / (total + 1e-6); when coef < 1 every such gradient is
 * replaced (lt_ag_set_grad, never written in place, since a .grad may share
 * storage with other tensors) by g * coef, computed in g's dtype. Returns
 * total (before clipping); NaN or Inf totals leave the gradients alone and
 * are returned as they are, so the caller can skip the step. -1 with an
 * error on bad arguments (max_norm must be > 0). */
double lt_nn_clip_grad_norm(int n, lt_tensor *const *params, double max_norm);

#ifdef __cplusplus
}
#endif
#endif
