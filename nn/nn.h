/*
 * libtensor: neural networks (<libtensor/nn.h>)
 *
 * THE MODEL
 *
 * Two layers, both prefixed lt_nn_:
 *
 *  1. FUNCTIONAL OPS: stateless functions of tensors (linear, conv2d,
 *     pooling, norms, dropout, losses, multi-head self-attention). Every one
 *     is differentiable to any order through the autograd engine:
 *      - composed ops (linear, batch_norm, layer_norm, cross_entropy,
 *        pooling, dropout, mha) are written with differentiable tensor ops,
 *        so their first and second derivatives come from those ops'
 *        formulas (no detached statistics anywhere: batch norm's double
 *        backward is exact);
 *      - conv2d is a fused kernel (im2col + GEMM, a plain GEMM for 1x1
 *        stride-1 unpadded convolutions). Its input gradient and weight
 *        gradient are ops of their own (lt_nn_conv2d_input_grad,
 *        lt_nn_conv2d_weight_grad) whose backward formulas are again conv2d
 *        / input_grad / weight_grad, the three forming a closed family like
 *        PyTorch's convolution_backward.
 *
 *  2. MODULES (lt_nn_module): a tree of named parameters, named buffers
 *     and named children, with a train/eval flag and a forward function,
 *     like torch.nn.Module. Layers (Linear, Conv2d, BatchNorm2d, LayerNorm,
 *     Attention) and models (ResNet-18 as torchvision builds it, ViT as
 *     timm builds it) are modules whose parameter and buffer names are the
 *     ones torchvision's / timm's state_dict() uses, in the same order,
 *     with the same layouts, so weights travel both ways (see
 *     <libtensor/checkpoint.h> for the file format).
 *
 * Activations that are tensor ops already: lt_relu, lt_gelu (exact or tanh),
 * lt_softmax, lt_log_softmax, lt_sigmoid, lt_tanh (see <libtensor/tensor.h>).
 *
 * Layouts are PyTorch's: images NCHW, conv weights OIHW, Linear weights
 * (out, in), token sequences (B,T,D). f32 and f64 are supported (all inputs
 * of one call share a dtype); targets are i64.
 *
 * OWNERSHIP. Functional ops follow tensor.h: every returned tensor is owned
 * by the current frame; arguments are borrowed. The one exception to
 * "arguments are read only" is lt_nn_batch_norm's running statistics,
 * written in place in training mode. Modules are the other kind of owner:
 * see "Modules" below (a module owns one reference to each of its
 * parameters and buffers, and owns its children).
 *
 * ERRORS: a failing call returns NULL (or -1) and records a message naming
 * the op and the shapes (lt_last_error()); a NULL tensor argument that is
 * not optional makes the call return NULL.
 *
 * REGISTRY: lt_nn_register_ops() adds nn's ops to the autograd op registry
 * (so registry-driven gradcheck / gradgradcheck cover them) and declares the
 * backward functions of conv2d and its gradient ops. Every lt_nn_ entry
 * point calls it, and it is idempotent.
 *
 * EXAMPLE (functional)
 *
 *     size_t m = lt_frame_push();
 *     lt_tensor *h = lt_relu(lt_nn_conv2d(x, w1, b1, 1, 1, 1)); // (N,O,H,W)
 *     lt_tensor *p = lt_nn_adaptive_avg_pool2d(h, 1, 1);          // (N,O,1,1)
 *     lt_tensor *z = lt_nn_linear(lt_flatten(p, 1, 3), fw, fb);   // (N,K)
 *     lt_tensor *loss = lt_nn_cross_entropy(z, y, LT_NN_MEAN, 0.1);
 *     lt_ag_backward(loss, NULL, false, false);
 *     lt_frame_pop(m);
 *
 * EXAMPLE (a model)
 *
 *     lt_rng rng = lt_rng_new(0);
 *     lt_nn_resnet_config cfg = lt_nn_resnet18_config(10, LT_NN_STEM_SMALL);
 *     lt_nn_module *net = lt_nn_resnet_new(&cfg, &rng);  // caller owns
 *     for (each batch) {
 *         size_t m = lt_frame_push();
 *         lt_tensor *loss = lt_nn_cross_entropy(lt_nn_module_forward(net, x), y, LT_NN_MEAN, 0);
 *         lt_nn_module_zero_grad(net);
 *         lt_ag_backward(loss, NULL, false, false);  // grads on the parameters
 *         ... optimizer step over lt_nn_module_parameters(net, &p) ...
 *         lt_frame_pop(m);
 *     }
 *     lt_nn_module_free(net);
 */
#ifndef LIBTENSOR_NN_H
#define LIBTENSOR_NN_H

#include <libtensor/autograd.h>
#include <libtensor/checkpoint.h>
#include <libtensor/optim.h>
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

/* ---- multi-head self-attention ---- */

/* timm's Attention (ViT) and torch's fused in-projection, without masks:
 *   qkv = x qkv_w^T + qkv_b                       (B,T,3D)
 *   q, k, v = split(qkv) into heads                (B,h,T,d), d = D/h
 *   a = softmax(q k^T / sqrt(d), -1)               (B,h,T,T)
 *   o = (a v) with heads merged back               (B,T,D)
 *   y = o proj_w^T + proj_b                        (B,T,D)
 * The qkv rows are ordered [q; k; v], and within each the h heads of d
 * rows, as timm's reshape(B,T,3,h,d) reads them. x (B,T,D), qkv_w (3D,D),
 * qkv_b (3D) or NULL, proj_w (D,D), proj_b (D) or NULL, heads divides D.
 * Composed from lt_nn_linear, views, lt_matmul and lt_softmax, so it is
 * differentiable to any order. */
lt_tensor *lt_nn_mha(const lt_tensor *x, const lt_tensor *qkv_w, const lt_tensor *qkv_b, const lt_tensor *proj_w,
                     const lt_tensor *proj_b, int heads);

/* Same, also writing the attention probabilities a (B,h,T,T) to *attn
 * (frame-owned, part of the graph) when attn is not NULL: what attention
 * rollout and attention maps read. */
lt_tensor *lt_nn_mha_ex(const lt_tensor *x, const lt_tensor *qkv_w, const lt_tensor *qkv_b, const lt_tensor *proj_w,
                        const lt_tensor *proj_b, int heads, lt_tensor **attn);

/* ---- initialization (torch.nn.init) ---- */

/* In place, like torch.nn.init under no_grad: each writes into t's memory
 * (t contiguous f32/f64, parameters that require grad included) and
 * records nothing in any graph. The values are drawn from r (advanced by
 * the draw) in f64 and rounded to t's dtype, so a seed gives the same
 * model on any thread count. Return 0, or -1 with an error. */
int lt_nn_init_constant_(lt_tensor *t, double value);
int lt_nn_init_uniform_(lt_tensor *t, lt_rng *r, double lo, double hi);
int lt_nn_init_normal_(lt_tensor *t, lt_rng *r, double mean, double std);
/* Normal(mean, std) restricted to [a, b] (absolute bounds, as torch's and
 * timm's trunc_normal_ take them: timm's std .02 with a = -2, b = 2 is
 * effectively untruncated). Out-of-range draws are redrawn. a < b. */
int lt_nn_init_trunc_normal_(lt_tensor *t, lt_rng *r, double mean, double std, double a, double b);

/* torch's fans: for a (out, in, k...) tensor, fan_in = in * prod(k),
 * fan_out = out * prod(k). t has rank >= 2. */
int lt_nn_init_fans(const lt_tensor *t, int64_t *fan_in, int64_t *fan_out);

/* kaiming_normal_: Normal(0, gain / sqrt(fan)), fan = fan_out if fan_out
 * else fan_in. torch's calculate_gain('relu') = sqrt(2), so torchvision's
 * ResNet convolutions are lt_nn_init_kaiming_normal_(w, r, true, sqrt(2)). */
int lt_nn_init_kaiming_normal_(lt_tensor *t, lt_rng *r, bool fan_out, double gain);

/* The default reset_parameters() of torch's nn.Linear and nn.Conv2d:
 * kaiming_uniform_(a = sqrt(5)) on the weight, which is Uniform(-1/sqrt(fan_in),
 * 1/sqrt(fan_in)), and the same bound for the bias (b may be NULL). */
int lt_nn_init_torch_default_(lt_tensor *w, lt_tensor *b, lt_rng *r);

/* ---- modules ---- */

/* A module: a node in a tree, like torch.nn.Module.
 *
 *  - PARAMETERS: named f32/f64 contiguous leaf tensors that require grad.
 *  - BUFFERS: named tensors without grad (BatchNorm's running_mean,
 *    running_var, and num_batches_tracked, an i64 0-dim tensor).
 *  - CHILDREN: named modules. Full names are dotted paths ("layer1.0.bn1.
 *    running_mean"). Parameters, buffers and children of one module share
 *    one namespace; a name is non-empty and has no '.'.
 *  - A training flag (lt_nn_module_train), read by BatchNorm2d's forward
 *    and by any forward through lt_nn_module_is_training (e.g. to pass
 *    it to lt_nn_dropout).
 *  - A type ("Linear", "ResNet", ...) and an optional forward function with
 *    its private state (impl), which is how layers and models are built on
 *    the same container.
 *
 * ORDER. Iteration visits a module's own parameters, then its own buffers,
 * then each child in the order added, recursively, which is the order of
 * torch's state_dict() and named_parameters(). Models add things in
 * torchvision's / timm's order, so the lists match theirs key for key.
 *
 * OWNERSHIP.
 *  - lt_nn_module_new and every layer or model constructor return a module
 *    the caller owns; lt_nn_module_free releases it with its whole subtree.
 *  - A module holds one reference to each parameter and buffer (retained by
 *    add_param / add_buffer) and releases it when freed. The tensors stay
 *    put for the module's life: optimizers and checkpoint loaders update
 *    them in place (through lt_data, or lt_ag_set_grad for .grad), never
 *    by replacing them.
 *  - lt_nn_module_add_child moves ownership of the child to the parent,
 *    also on failure (the child is then freed), so constructors can chain
 *    calls without leaking. The one exception: a child that already
 *    belongs to a tree (it has a parent, or is the new parent's ancestor)
 *    is refused and left where it is. Free only a module that has no
 *    parent.
 *  - Tensors and modules returned by lookups and views are borrowed from
 *    the module: valid until it is freed or (for the arrays of the views)
 *    until something is added anywhere in its tree.
 *  - Constructors make their tensors inside a frame of their own, so the
 *    caller's frame is left as it was.
 *
 * THREADS. A module tree is not locked: one thread builds or changes it at
 * a time. Forward passes on one module from two threads at once are not
 * supported (BatchNorm updates its buffers in training).
 */
typedef struct lt_nn_module lt_nn_module;

/* forward(m, x): the module's computation on x; returns a frame-owned
 * tensor or NULL with an error. */
typedef lt_tensor *(*lt_nn_forward_fn)(lt_nn_module *m, const lt_tensor *x);

/* A new empty module (training mode) of the given type (copied). forward
 * may be NULL (a container); impl is private state the module owns:
 * free_impl(impl) runs when the module is freed (free_impl may be NULL).
 * Returns NULL with an error on OOM (free_impl(impl) has then run). */
lt_nn_module *lt_nn_module_new(const char *type, lt_nn_forward_fn forward, void *impl, void (*free_impl)(void *impl));
/* Free m with every child, releasing the module's references to its
 * tensors. NULL-safe. A module that has a parent is left alone (its
 * parent frees it). */
void lt_nn_module_free(lt_nn_module *m);

/* Add parameter t under name: checks it is a contiguous f32/f64 leaf,
 * marks it requires_grad and retains it. Returns t (borrowed) or NULL. */
lt_tensor *lt_nn_module_add_param(lt_nn_module *m, const char *name, lt_tensor *t);
/* Add buffer t (any dtype, contiguous, no grad) and retain it. Returns t
 * (borrowed) or NULL. */
lt_tensor *lt_nn_module_add_buffer(lt_nn_module *m, const char *name, lt_tensor *t);
/* Make child a child of m (ownership moves to m, even on failure, unless
 * child already belongs to a tree). The child takes m's training flag.
 * Returns child (borrowed) or NULL. */
lt_nn_module *lt_nn_module_add_child(lt_nn_module *m, const char *name, lt_nn_module *child);

const char *lt_nn_module_type(const lt_nn_module *m);
/* The module's private state (what lt_nn_module_new received). */
void *lt_nn_module_impl(const lt_nn_module *m);
/* The parent, NULL for a root. */
lt_nn_module *lt_nn_module_parent(const lt_nn_module *m);

/* Run m's forward on x (frame-owned result). Fails for containers. With
 * grad mode off (lt_ag_set_grad_enabled(false)) nothing can need the
 * forward's temporaries, so they are freed before it returns: inference
 * holds about one layer's activations at a time. */
lt_tensor *lt_nn_module_forward(lt_nn_module *m, const lt_tensor *x);

/* Lookups by dotted path relative to m (borrowed; NULL with an error if
 * absent): a parameter or buffer ("layer1.0.bn1.weight"), a descendant
 * module ("layer1.0"; "" is m itself). */
lt_tensor *lt_nn_module_get(const lt_nn_module *m, const char *path);
lt_nn_module *lt_nn_module_find(const lt_nn_module *m, const char *path);
/* True if path names a parameter or buffer (no error recorded if not). */
bool lt_nn_module_has(const lt_nn_module *m, const char *path);
/* Direct children in order: count, and the i-th with its name. */
int lt_nn_module_child_count(const lt_nn_module *m);
lt_nn_module *lt_nn_module_child_at(const lt_nn_module *m, int i, const char **name);

/* Set training (true) or eval (false) mode on m and every descendant. */
void lt_nn_module_train(lt_nn_module *m, bool training);
bool lt_nn_module_is_training(const lt_nn_module *m);

/* Names and tensors, parallel arrays of n entries, in state_dict order.
 * Both arrays and the strings are borrowed from the module (see
 * OWNERSHIP); the tensors are the module's own, not copies. */
typedef struct lt_nn_named_tensors {
    int n;
    const char *const *names;
    lt_tensor *const *tensors;
} lt_nn_named_tensors;

/* Every parameter of the tree (named_parameters()). Returns n or -1. */
int lt_nn_module_parameters(lt_nn_module *m, lt_nn_named_tensors *out);
/* Every parameter and buffer of the tree (state_dict()): what checkpoints
 * save and load. Returns n or -1. */
int lt_nn_module_state_dict(lt_nn_module *m, lt_nn_named_tensors *out);
/* Parameter iteration: count, and the i-th (0 <= i < count) with its full
 * name in *name when name is not NULL; NULL if i is out of range. */
int lt_nn_module_param_count(lt_nn_module *m);
lt_tensor *lt_nn_module_param_at(lt_nn_module *m, int i, const char **name);
/* Total number of parameter elements. */
int64_t lt_nn_module_param_numel(lt_nn_module *m);
/* Drop every parameter's .grad (torch's zero_grad(set_to_none=True)). */
void lt_nn_module_zero_grad(lt_nn_module *m);

/* Call fn(ud, module, path) on m and each descendant, parents before
 * children ("" is m's path). Stops at and returns the first non-zero
 * result of fn; 0 when all return 0. */
int lt_nn_module_apply(lt_nn_module *m, int (*fn)(void *ud, lt_nn_module *mod, const char *path), void *ud);

/* ---- layers (modules; caller owns, free with lt_nn_module_free) ---- */

/* nn.Linear: params weight (out,in), bias (out) if bias; torch's default
 * init from r. Forward: lt_nn_linear. */
lt_nn_module *lt_nn_linear_new(int64_t in, int64_t out, bool bias, lt_dtype dt, lt_rng *r);
/* nn.Conv2d (groups 1): params weight (out,in,k,k), bias (out) if bias;
 * torch's default init from r. Forward: lt_nn_conv2d. */
lt_nn_module *lt_nn_conv2d_new(int64_t in, int64_t out, int k, int stride, int padding, bool bias, lt_dtype dt,
                               lt_rng *r);
/* nn.BatchNorm2d(c, eps 1e-5, momentum 0.1): params weight = 1, bias = 0;
 * buffers running_mean = 0, running_var = 1 (dt), num_batches_tracked
 * (i64 0-dim, counts training forwards). Forward: lt_nn_batch_norm in the
 * module's mode. */
lt_nn_module *lt_nn_batch_norm2d_new(int64_t c, lt_dtype dt);
/* nn.LayerNorm(d, eps) over the last dim: weight = 1, bias = 0. */
lt_nn_module *lt_nn_layer_norm_new(int64_t d, double eps, lt_dtype dt);
/* A container whose forward runs its children in order (nn.Sequential);
 * children are added with lt_nn_module_add_child under "0", "1", ... */
lt_nn_module *lt_nn_sequential_new(void);
/* timm's Attention: children qkv (Linear dim -> 3 dim, bias if qkv_bias)
 * and proj (Linear dim -> dim), torch's default init. Forward: lt_nn_mha
 * on x (B,T,dim). */
lt_nn_module *lt_nn_attention_new(int64_t dim, int heads, bool qkv_bias, lt_dtype dt, lt_rng *r);

/* ---- ResNet (torchvision) ---- */

typedef enum lt_nn_resnet_stem {
    LT_NN_STEM_IMAGENET = 0, /* conv1 7x7 s2 p3, bn1, relu, maxpool 3 s2 p1 */
    LT_NN_STEM_SMALL = 1     /* conv1 3x3 s1 p1, bn1, relu, no maxpool (CIFAR-size images) */
} lt_nn_resnet_stem;

typedef struct lt_nn_resnet_config {
    lt_nn_resnet_stem stem;
    int64_t num_classes; /* fc outputs */
    int64_t in_channels; /* 3 for RGB */
    int64_t width;       /* channels of conv1 and layer1 (64); layerI has width << (I-1) */
    int blocks[4];       /* BasicBlocks per stage: {2,2,2,2} is ResNet-18 */
    lt_dtype dtype;      /* f32 to train, f64 for gradient checks */
} lt_nn_resnet_config;

/* ResNet-18: width 64, blocks {2,2,2,2}, 3 input channels, f32. */
lt_nn_resnet_config lt_nn_resnet18_config(int64_t num_classes, lt_nn_resnet_stem stem);

/* torchvision's ResNet with BasicBlocks, type "ResNet". Children in
 * torchvision's order: conv1, bn1, layer1..layer4 (each a Sequential of
 * BasicBlocks "0", "1", ... with conv1, bn1, conv2, bn2 and, when the
 * stride is not 1 or the width changes, downsample = Sequential(1x1
 * conv without bias "0", BatchNorm2d "1")), fc. All convolutions are
 * bias-free. Init as torchvision: kaiming_normal_(fan_out, relu) for
 * convolutions, BN weight 1 and bias 0, fc torch's Linear default.
 * state_dict names are torchvision's resnet18().state_dict() keys (122 for
 * ResNet-18: 62 parameters and 60 BN buffers). Caller owns the result. */
lt_nn_module *lt_nn_resnet_new(const lt_nn_resnet_config *cfg, lt_rng *r);
/* The config m was built with (borrowed), or NULL if m is not a ResNet. */
const lt_nn_resnet_config *lt_nn_resnet_config_of(const lt_nn_module *m);

/* Logits (N,num_classes) of x (N,in_channels,H,W). Optional outputs
 * (frame-owned, part of the graph, so gradients can be taken with respect
 * to them, as Grad-CAM does): *features = the flattened average pool
 * (N, 8 width), the penultimate features; *layer4 = layer4's output
 * (N, 8 width, h, w). Uses the module's train/eval mode for BatchNorm.
 * lt_nn_module_forward(m, x) is this without the extras. */
lt_tensor *lt_nn_resnet_forward_ex(lt_nn_module *m, const lt_tensor *x, lt_tensor **features, lt_tensor **layer4);

/* ---- Vision Transformer (timm) ---- */

typedef struct lt_nn_vit_config {
    int64_t img_size;    /* square input side; a multiple of patch */
    int64_t patch;       /* patch side = kernel = stride of patch_embed.proj */
    int64_t in_channels; /* 3 for RGB */
    int64_t dim;         /* embedding dim D */
    int depth;           /* blocks */
    int heads;           /* attention heads; divides dim */
    double mlp_ratio;    /* MLP hidden = (int64_t)(dim * mlp_ratio) */
    int64_t num_classes; /* head outputs */
    bool qkv_bias;       /* timm's default: true */
    double ln_eps;       /* timm's ViTs use 1e-6 */
    lt_dtype dtype;
} lt_nn_vit_config;

/* timm's vit_tiny-style defaults for an image size and patch: dim 192,
 * depth 12, heads 3, mlp_ratio 4, qkv_bias, eps 1e-6, 3 channels, f32. */
lt_nn_vit_config lt_nn_vit_config_make(int64_t img_size, int64_t patch, int64_t num_classes);

/* timm's VisionTransformer (class token, learned position embedding,
 * global_pool 'token', no dropout), type "VisionTransformer". state_dict
 * order and names as timm: cls_token (1,1,D), pos_embed (1,1+N,D),
 * patch_embed.proj.{weight,bias}, blocks.I.{norm1, attn.qkv, attn.proj,
 * norm2, mlp.fc1, mlp.fc2}.{weight,bias}, norm.{weight,bias},
 * head.{weight,bias}. Blocks are pre-norm:
 *   x = x + attn(norm1(x));  x = x + fc2(gelu_erf(fc1(norm2(x)))).
 * Init as timm (init_weights, mode ''): trunc_normal(std .02) for
 * pos_embed, cls_token and every Linear weight, Linear biases 0, LayerNorm
 * 1 and 0, patch_embed.proj torch's Conv2d default. Caller owns. */
lt_nn_module *lt_nn_vit_new(const lt_nn_vit_config *cfg, lt_rng *r);
const lt_nn_vit_config *lt_nn_vit_config_of(const lt_nn_module *m);

/* Logits (B,num_classes) of x (B,C,img,img). Optional outputs
 * (frame-owned, in the graph): *features = the final-norm class token
 * (B,D), the penultimate features; *tokens = the last block's output
 * tokens (B,1+N,D) before the final norm. */
lt_tensor *lt_nn_vit_forward_ex(lt_nn_module *m, const lt_tensor *x, lt_tensor **features, lt_tensor **tokens);

#ifdef __cplusplus
}
#endif
#endif
