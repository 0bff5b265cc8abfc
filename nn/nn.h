/*
 * libtensor: neural-network functional ops (<libtensor/nn.h>)
 *
 * THE MODEL
 *
 * This module is the functional layer under the nn modules (Linear, Conv2d,
 * BatchNorm2d, ...): stateless functions of tensors, prefixed lt_nn_. Every
 * function is differentiable to any order through the autograd engine:
 *
 *  - composed ops (linear, batch_norm, layer_norm, cross_entropy, pooling,
 *    dropout) are written with differentiable tensor ops, so their first and
 *    second derivatives come from those ops' formulas (no detached
 *    statistics anywhere: batch norm's double backward is exact);
 *  - conv2d is a fused kernel (im2col + GEMM, a plain GEMM for 1x1 stride-1
 *    unpadded convolutions). Its input gradient and weight gradient are ops of
 *    their own (lt_nn_conv2d_input_grad, lt_nn_conv2d_weight_grad) whose
 *    backward formulas are again conv2d / input_grad / weight_grad, the three
 *    forming a closed family like PyTorch's convolution_backward.
 *
 * Activations that are tensor ops already: lt_relu, lt_gelu (exact or tanh),
 * lt_softmax, lt_log_softmax, lt_sigmoid, lt_tanh (see <libtensor/tensor.h>).
 *
 * Layouts are PyTorch's: images NCHW, conv weights OIHW, Linear weights
 * (out, in). f32 and f64 are supported (all inputs of one call share a
 * dtype); targets are i64.
 *
 * OWNERSHIP follows tensor.h: every returned tensor is owned by the current
 * frame; arguments are borrowed. The one exception to "arguments are read
 * only" is lt_nn_batch_norm's running statistics, written in place in
 * training mode.
 *
 * ERRORS: a failing call returns NULL and records a message naming the op
 * and the shapes (lt_last_error()); a NULL tensor argument that is not
 * optional makes the call return NULL.
 *
 * REGISTRY: lt_nn_register_ops() adds nn's ops to the autograd op registry
 * (so registry-driven gradcheck / gradgradcheck cover them) and declares the
 * backward functions of conv2d and its gradient ops. Every lt_nn_ entry
 * point calls it, and it is idempotent.
 *
 * EXAMPLE
 *
 *     size_t m = lt_frame_push();
 *     lt_tensor *h = lt_relu(lt_nn_conv2d(x, w1, b1, 1, 1, 1)); // (N,O,H,W)
 *     lt_tensor *p = lt_nn_adaptive_avg_pool2d(h, 1, 1);          // (N,O,1,1)
 *     lt_tensor *z = lt_nn_linear(lt_flatten(p, 1, 3), fw, fb);   // (N,K)
 *     lt_tensor *loss = lt_nn_cross_entropy(z, y, LT_NN_MEAN, 0.1);
 *     lt_ag_backward(loss, NULL, false, false);
 *     lt_frame_pop(m);
 */
#ifndef LIBTENSOR_NN_H
#define LIBTENSOR_NN_H

#include <libtensor/autograd.h>
#include <libtensor/tensor.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Add nn's ops to the autograd registry and declare their backward
 * functions. Idempotent; returns 0 or -1. */
int lt_nn_register_ops(void);

/* ---- linear ---- */

/* y = x w^T + b. x (...,in), w (out,in), b (out) or NULL -> (...,out).
 * Composed from lt_matmul (w^T passed as a BLAS flag, not copied). */
lt_tensor *lt_nn_linear(const lt_tensor *x, const lt_tensor *w, const lt_tensor *b);

/* ---- convolution ---- */

/* Per-axis geometry, [0] for height and [1] for width. stride >= 1,
 * padding >= 0 (zeros), dilation >= 1. */
typedef struct lt_nn_conv2d_params {
    int stride[2];
    int padding[2];
    int dilation[2];
} lt_nn_conv2d_params;

/* Square geometry: the same stride, padding and dilation on both axes. */
lt_nn_conv2d_params lt_nn_conv2d_params_make(int stride, int padding, int dilation);

/* 2-D cross-correlation, as torch.nn.functional.conv2d with groups = 1:
 *   y[n,o,i,j] = b[o] + sum_{c,p,q} w[o,c,p,q] x[n,c, i*sh-ph+p*dh, j*sw-pw+q*dw]
 * x (N,C,H,W), w (O,C,kh,kw), b (O) or NULL -> (N,O,Ho,Wo) with
 *   Ho = (H + 2 ph - dh (kh-1) - 1) / sh + 1 (and likewise Wo), >= 1.
 * Errors: ranks, C mismatch, dtypes (f32/f64, all equal), bad geometry. */
lt_tensor *lt_nn_conv2d(const lt_tensor *x, const lt_tensor *w, const lt_tensor *b, int stride, int padding,
                        int dilation);
lt_tensor *lt_nn_conv2d_ex(const lt_tensor *x, const lt_tensor *w, const lt_tensor *b,
                           const lt_nn_conv2d_params *p);

/* d<g, conv2d(x, w)>/dx for an x of shape x_shape: a transposed convolution
 * (GEMM w^T g, then col2im). g (N,O,Ho,Wo), w (O,C,kh,kw), x_shape
 * {N,C,H,W} -> (N,C,H,W). Differentiable in g and w (its backward is conv2d
 * and lt_nn_conv2d_weight_grad). */
lt_tensor *lt_nn_conv2d_input_grad(const lt_tensor *g, const lt_tensor *w, const int64_t x_shape[4],
                                   const lt_nn_conv2d_params *p);

/* d<g, conv2d(x, w)>/dw for a w of shape w_shape (im2col, then GEMM).
 * x (N,C,H,W), g (N,O,Ho,Wo), w_shape {O,C,kh,kw} -> (O,C,kh,kw).
 * Differentiable in x and g (its backward is lt_nn_conv2d_input_grad and
 * conv2d). */
lt_tensor *lt_nn_conv2d_weight_grad(const lt_tensor *x, const lt_tensor *g, const int64_t w_shape[4],
                                    const lt_nn_conv2d_params *p);

/* ---- pooling ---- */

/* Max over k x k windows (padding with -inf, never selected; padding <=
 * k/2 as torch requires; stride 0 means k). x (N,C,H,W) -> (N,C,Ho,Wo),
 * Ho = (H + 2 padding - k) / stride + 1 (floor mode). The gradient goes to
 * the first maximum of each window: the forward finds the argmax indices
 * (i64, into the flattened H*W plane) and gathers with lt_gather, so the
 * backward is lt_scatter_add and every order is differentiable. */
lt_tensor *lt_nn_max_pool2d(const lt_tensor *x, int k, int stride, int padding);

/* Same, also returning the flat argmax indices (N,C,Ho,Wo) i64 in *indices
 * (frame-owned) when indices is not NULL. */
lt_tensor *lt_nn_max_pool2d_with_indices(const lt_tensor *x, int k, int stride, int padding, lt_tensor **indices);

/* Mean over k x k windows with zero padding counted in the divisor
 * (count_include_pad = True, torch's default), stride 0 means k.
 * x (N,C,H,W) -> (N,C,Ho,Wo). Composed: a conv2d of each channel with a
 * constant 1/k^2 kernel. */
lt_tensor *lt_nn_avg_pool2d(const lt_tensor *x, int k, int stride, int padding);

/* torch's adaptive_avg_pool2d: output cell (i,j) averages rows
 * floor(i H/oh) .. ceil((i+1) H/oh)-1 and the same for columns.
 * x (N,C,H,W) -> (N,C,oh,ow). Composed: P_h x P_w^T with constant averaging
 * matrices (lt_matmul), or lt_mean for oh = ow = 1. */
lt_tensor *lt_nn_adaptive_avg_pool2d(const lt_tensor *x, int64_t oh, int64_t ow);

/* ---- losses ---- */

typedef enum lt_nn_reduction { LT_NN_MEAN = 0, LT_NN_SUM = 1, LT_NN_NONE = 2 } lt_nn_reduction;

/* torch's cross_entropy with class-index targets:
 *   logp = log_softmax(logits, 1)
 *   l_i  = (1 - eps) (-logp[i, t_i]) + eps mean_k(-logp[i, k])
 * reduced by mean over i (LT_NN_MEAN), sum, or none ((N,) result).
 * logits (N,C) f32/f64, target (N) i64 in [0, C), eps in [0, 1] -> () or (N).
 * Errors: shapes, dtypes, a target out of range. */
lt_tensor *lt_nn_cross_entropy(const lt_tensor *logits, const lt_tensor *target, lt_nn_reduction reduction,
                               double label_smoothing);

/* ---- normalization ---- */

/* torch's batch_norm. x (N,C,H,W) or (N,C); running_mean, running_var (C)
 * f32/f64 contiguous, not requiring grad (may be NULL only in training);
 * weight, bias (C) or NULL (no affine). Returns x's shape.
 *
 * Training: mean and biased var over N,H,W (lt_mean, lt_var) inside the
 * graph, y = (x - mean) rsqrt(var + eps) weight + bias; then, outside any
 * graph, running_mean = (1-momentum) running_mean + momentum mean and
 * running_var = (1-momentum) running_var + momentum var_unbiased, written
 * in place (needs N*H*W > 1).
 * Eval: y = (x - running_mean) rsqrt(running_var + eps) weight + bias. */
lt_tensor *lt_nn_batch_norm(const lt_tensor *x, lt_tensor *running_mean, lt_tensor *running_var,
                            const lt_tensor *weight, const lt_tensor *bias, bool training, double momentum,
                            double eps);

/* torch's layer_norm over the last ndims dims (1 <= ndims <= rank): mean
 * and biased var over those dims, then the affine weight, bias (shape of
 * those dims) or NULL. x (..., D...) -> same shape. */
lt_tensor *lt_nn_layer_norm(const lt_tensor *x, int ndims, const lt_tensor *weight, const lt_tensor *bias,
                            double eps);

/* ---- dropout ---- */

/* In training, x * mask / (1 - p) with mask ~ Bernoulli(1 - p) drawn from
 * rng (advanced by the draw); p == 1 gives zeros. In eval (or p == 0), x
 * itself (a new frame-owned reference to the same tensor). 0 <= p <= 1. */
lt_tensor *lt_nn_dropout(const lt_tensor *x, double p, bool training, lt_rng *rng);

#ifdef __cplusplus
}
#endif
#endif
