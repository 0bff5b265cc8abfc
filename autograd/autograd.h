/*
 * libtensor: reverse-mode autograd with double backprop (<libtensor/autograd.h>)
 *
 * THE MODEL
 *
 * The graph is built as ops run (define-by-run). Mark a tensor as a leaf
 * that needs a gradient with lt_ag_set_requires_grad(t, true). Every
 * differentiable op (lt_add, lt_matmul, lt_conv2d, ...) whose input requires
 * a gradient returns a result that points to a *node*: the op's backward
 * function, the tensors it saved, and edges to the nodes (or leaves) of its
 * inputs. Once linked, autograd installs itself the first time any lt_ag_
 * function is called (lt_ag_init() does it explicitly).
 *
 *  - lt_ag_backward(loss, ...) accumulates d loss / d leaf into each leaf's
 *    .grad (read it with lt_ag_grad_of).
 *  - lt_ag_grad(outputs, inputs, grad_outputs, create_graph, ...) returns
 *    gradients as tensors (torch.autograd.grad), for leaves or intermediates.
 *
 * DOUBLE BACKPROP. Every backward formula is written with the library's own
 * differentiable ops. With create_graph, those ops record a graph like any
 * other code, so a gradient can itself be differentiated (RRR, GradMask,
 * Hessian-vector products). Without it, grad mode is off while the formulas
 * run and nothing is recorded. Fused ops (conv2d, norms, cross-entropy) have
 * their backward as ops of their own, with their own backward formulas.
 *
 * OWNERSHIP. A result owns (a reference to) its node; a node owns its saved
 * tensors and its edges. So a graph lives exactly as long as the tensors
 * that point into it: popping the frame that owns a step's tensors frees the
 * step's graph. A leaf owns its .grad. Without retain_graph, a backward pass
 * releases each node's saved tensors as it goes; using that graph again is
 * an error ("graph already freed"), never a crash.
 *
 * ERRORS follow tensor.h: NULL or -1, message in lt_last_error().
 *
 * THREADS. Grad mode and anomaly mode are per thread. One graph must not be
 * differentiated from two threads at once.
 *
 * EXAMPLE (d/dx of sum(x*x) = 2x)
 *
 *     size_t m = lt_frame_push();
 *     lt_tensor *x = lt_arange(0, 3, 1, LT_F64);
 *     lt_ag_set_requires_grad(x, true);
 *     lt_tensor *y = lt_sum(lt_mul(x, x), 0, NULL, false);
 *     lt_tensor *g;
 *     lt_ag_grad(1, &y, 1, &x, NULL, false, false, false, &g); // g = [0,2,4]
 *     lt_frame_pop(m);
 */
#ifndef LIBTENSOR_AUTOGRAD_H
#define LIBTENSOR_AUTOGRAD_H

#include <libtensor/tensor.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Install the autograd observer (idempotent; every lt_ag_ entry point calls
 * it). Call it yourself before running ops on tensors that you marked with
 * requires_grad through another module. */
void lt_ag_init(void);

/* ---- leaves and flags ---- */

/* Mark t (which must be f32/f64 and a leaf, i.e. not produced by a recorded
 * op) as needing a gradient, or clear the mark. Returns t (borrowed) or
 * NULL with an error. */
lt_tensor *lt_ag_set_requires_grad(lt_tensor *t, bool on);
bool lt_ag_requires_grad(const lt_tensor *t);
/* True for tensors not produced by a recorded op. */
bool lt_ag_is_leaf(const lt_tensor *t);
/* Accumulated gradient of a leaf (borrowed; NULL if none yet). */
lt_tensor *lt_ag_grad_of(const lt_tensor *t);
/* Replace a leaf's .grad (retained; NULL clears). For optimizers and
 * gradient clipping. */
int lt_ag_set_grad(lt_tensor *t, lt_tensor *grad);
/* Drop a leaf's .grad (like torch's zero_grad(set_to_none=True)). */
void lt_ag_zero_grad(lt_tensor *t);
/* A new handle sharing t's storage with no graph (frame-owned). */
lt_tensor *lt_ag_detach(const lt_tensor *t);
/* Name of the op that produced t ("" for leaves). Borrowed. */
const char *lt_ag_op_name(const lt_tensor *t);

/* ---- grad mode (no_grad scopes) ---- */

/* Set whether ops record; returns the previous setting, so a scope is
 *   bool prev = lt_ag_set_grad_enabled(false); ...; lt_ag_set_grad_enabled(prev); */
bool lt_ag_set_grad_enabled(bool on);
bool lt_ag_grad_enabled(void);

/* ---- anomaly mode ---- */

/* When on, the first NaN or Inf produced by a recorded op fails that op (or
 * the backward pass) with the op name, the phase ("forward", "backward",
 * "double backward") and the shapes. Per thread. Returns the previous. */
bool lt_ag_set_anomaly_mode(bool on);

/* ---- backward passes ---- */

/* Accumulate d(loss)/d(leaf) into every leaf's .grad. grad_output NULL means
 * ones (loss must then have one element). retain_graph keeps saved tensors
 * for another pass; create_graph records the backward (and implies
 * retain_graph). Returns 0 or -1. */
int lt_ag_backward(lt_tensor *loss, const lt_tensor *grad_output, bool retain_graph, bool create_graph);

/* Gradients of sum_i <outputs[i], grad_outputs[i]> with respect to each
 * inputs[j], written to grads[j] (frame-owned). grad_outputs NULL (or an
 * entry NULL) means ones for one-element outputs. An input that the outputs
 * do not depend on is an error unless allow_unused, which writes NULL.
 * Leaves' .grad fields are not touched. Returns 0 or -1. */
int lt_ag_grad(int nout, lt_tensor *const *outputs, int nin, lt_tensor *const *inputs,
               lt_tensor *const *grad_outputs, bool create_graph, bool retain_graph, bool allow_unused,
               lt_tensor **grads);

/* Hessian-vector product: d/dx <d f/dx, v> for a scalar f of the nin inputs,
 * via grad of (grad . v) with create_graph. f must have been computed with
 * the inputs requiring grad. hv[j] receives H v for input j (frame-owned).
 * Returns 0 or -1. */
int lt_ag_hvp(lt_tensor *f, int nin, lt_tensor *const *inputs, lt_tensor *const *v, lt_tensor **hv);

/* ---- custom differentiable ops (how nn/ adds conv2d, norms, ...) ---- */

typedef struct lt_ag_ctx lt_ag_ctx;

/* Backward of one op: write d(loss)/d(input i) into gin[i] for every i with
 * lt_ag_needs_grad(ctx, i), using differentiable lt_ ops only (so double
 * backward exists). Leave others NULL. Return 0 or -1 (with an error). */
typedef int (*lt_ag_backward_fn)(lt_ag_ctx *ctx, const lt_tensor *grad_out, lt_tensor **gin);

typedef struct lt_ag_fn {
    const char *name;          /* op name for messages and the registry */
    lt_ag_backward_fn backward;
} lt_ag_fn;

/* Attach a node for fn to out, a fresh result computed from the nin inputs,
 * if grad mode is on and some input requires grad (else a no-op). saved:
 * nsaved tensors the backward needs (retained by the node; pass `out`
 * itself to save the output without a reference cycle). iargs/dargs: small
 * arguments copied into the node (at most 24 and 4). Returns 0 or -1. */
int lt_ag_record(const lt_ag_fn *fn, int nin, const lt_tensor *const *in, lt_tensor *out, int nsaved,
                 const lt_tensor *const *saved, int niargs, const int64_t *iargs, int ndargs,
                 const double *dargs);

/* Accessors for backward functions. */
/* Whether the running backward pass wants the gradient of input i: the
 * input requires grad and its gradient reaches one of the pass's targets
 * (the inputs of lt_ag_grad, or any leaf for lt_ag_backward). So
 * lt_ag_grad(y, x) skips, say, a convolution's weight gradient. Outside a
 * backward pass: whether input i requires grad. */
bool lt_ag_needs_grad(const lt_ag_ctx *ctx, int i);
/* Saved tensor k (borrowed; carries its graph, so formulas using it are
 * differentiable). */
lt_tensor *lt_ag_saved(const lt_ag_ctx *ctx, int k);
int64_t lt_ag_iarg(const lt_ag_ctx *ctx, int k);
double lt_ag_darg(const lt_ag_ctx *ctx, int k);
/* Number of inputs of the op. */
int lt_ag_input_count(const lt_ag_ctx *ctx);
/* Geometry of input i as it was at the forward call. */
int lt_ag_input_ndim(const lt_ag_ctx *ctx, int i);
const int64_t *lt_ag_input_shape(const lt_ag_ctx *ctx, int i);
lt_dtype lt_ag_input_dtype(const lt_ag_ctx *ctx, int i);

/* ---- gradcheck ---- */

/* A function under test: out = f(inputs). Must use differentiable ops only
 * and return a frame-owned tensor (or NULL on error). */
typedef lt_tensor *(*lt_ag_func)(void *ud, int nin, lt_tensor *const *inputs);

typedef struct lt_ag_check_opts {
    double eps;  /* finite-difference step, default 1e-6 */
    double atol; /* default 1e-5 */
    double rtol; /* default 1e-3 */
    const char *name; /* what to call f in messages */
} lt_ag_check_opts;
/* PyTorch's defaults: eps 1e-6, atol 1e-5, rtol 1e-3. */
lt_ag_check_opts lt_ag_check_defaults(const char *name);

/* Compare the analytic Jacobian of f (by lt_ag_grad) with central
 * differences in f64. Inputs must be f64; those not requiring grad are held
 * constant. Passes when |a - n| <= atol + rtol |n| for every element.
 * Returns 0, or -1 with an error naming f, the input, the worst element and
 * analytic against numeric. */
int lt_ag_gradcheck(lt_ag_func f, void *ud, int nin, lt_tensor *const *inputs, const lt_ag_check_opts *opts);

/* Second order: gradcheck of (inputs, v) -> grad(f(inputs), inputs, v,
 * create_graph) with a random v (seeded), so the backward of every backward
 * formula is checked against finite differences. */
int lt_ag_gradgradcheck(lt_ag_func f, void *ud, int nin, lt_tensor *const *inputs, const lt_ag_check_opts *opts);

/* ---- the op registry ---- */

/* One differentiable op with a sample-input generator, for the registry-
 * driven gradcheck. sample() fills inputs (f64, frame-owned, those to check
 * marked requires_grad) for variant k (0..nvariants-1), covering random
 * shapes, broadcasting and non-contiguous inputs; returns the count. */
typedef struct lt_ag_opinfo {
    const char *name;     /* the name its lt_ag_fn / backward node uses */
    int nvariants;
    int (*sample)(int variant, lt_rng *rng, lt_tensor **inputs);
    lt_ag_func fn;
} lt_ag_opinfo;

/* Add ops to the registry (nn/ registers its ops here). The array must
 * outlive the process. Returns 0 or -1. */
int lt_ag_registry_add(int n, const lt_ag_opinfo *ops);
/* The registry: count and entry i (borrowed). */
int lt_ag_registry_count(void);
const lt_ag_opinfo *lt_ag_registry_get(int i);
/* Names of every op that has a backward formula (for the coverage test):
 * count and entry i. Includes custom ops once they have recorded a node or
 * been declared with lt_ag_declare_backward. */
int lt_ag_backward_count(void);
const char *lt_ag_backward_name(int i);
/* Declare a custom op's lt_ag_fn so the coverage test knows it. */
int lt_ag_declare_backward(const lt_ag_fn *fn);

#ifdef __cplusplus
}
#endif
#endif
