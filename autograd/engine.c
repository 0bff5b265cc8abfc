/*
 * engine.c: autograd metadata, graph nodes, recording and the backward
 * engine (lt_ag_backward, lt_ag_grad, lt_ag_hvp).
 *
 * A tensor that requires a gradient carries an ag_meta (t->ag): leaves have
 * no grad_fn and may hold .grad; results hold a strong reference to the node
 * that made them. A node holds strong references to its input edges (nodes,
 * or leaf tensors for accumulation) and to its saved tensors. A saved
 * *output* is a second handle on the output's storage whose grad_fn points
 * back at the node without a reference ("weak"), which breaks the cycle
 * node -> saved output -> node while keeping formulas that use the output
 * differentiable.
 */
#include "autograd_internal.h"

#include <math.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Thread state                                                        */
/* ------------------------------------------------------------------ */

static _Thread_local bool no_grad_flag;   /* false: grad enabled */
static _Thread_local bool anomaly_flag;
static _Thread_local int engine_depth;    /* > 0 while backward formulas run */
static _Thread_local int engine_phase;    /* order of the node being run */

bool lt_ag_set_grad_enabled(bool on)
{
    lt_ag_init();
    bool prev = !no_grad_flag;
    no_grad_flag = !on;
    return prev;
}

bool lt_ag_grad_enabled(void) { return !no_grad_flag; }

bool lt_ag_set_anomaly_mode(bool on)
{
    lt_ag_init();
    bool prev = anomaly_flag;
    anomaly_flag = on;
    return prev;
}

/* ------------------------------------------------------------------ */
/* Metadata                                                            */
/* ------------------------------------------------------------------ */

typedef struct ag_meta {
    lt_ag_node *grad_fn; /* NULL for a leaf */
    bool weak;           /* grad_fn not owned (a saved output) */
    lt_tensor *grad;     /* a leaf's accumulated gradient (owned) */
} ag_meta;

typedef struct edge {
    lt_ag_node *node; /* producer of the input, or */
    lt_tensor *leaf;  /* the leaf itself, for accumulation */
} edge;

struct lt_ag_node {
    atomic_int refcount;
    const lt_ag_fn *fn;
    int nin, nsaved, niargs, ndargs;
    edge *edges;
    int *in_ndim;
    int64_t (*in_shape)[LT_MAX_DIMS];
    lt_dtype *in_dtype;
    lt_tensor **saved;
    int64_t iargs[LT_AG_MAXIARGS];
    double dargs[LT_AG_MAXDARGS];
    size_t bytes;
    bool freed;
    int order; /* 0: made by forward code; k: made by a k-th order backward */
    /* engine scratch, valid during one run */
    unsigned visit;
    int deps;
    bool needed;
    lt_tensor *pending; /* owned */
};

static void node_release(lt_ag_node *n);

static void meta_free(void *p)
{
    ag_meta *m = p;
    if (m->grad_fn && !m->weak)
        node_release(m->grad_fn);
    lt_release(m->grad);
    lt_free(m, sizeof *m);
}

static ag_meta *meta_new(void)
{
    ag_meta *m = lt_alloc(sizeof *m);
    if (m)
        memset(m, 0, sizeof *m);
    return m;
}

static ag_meta *meta_of(const lt_tensor *t) { return (ag_meta *)t->ag; }

static void release_saved(lt_ag_node *n)
{
    for (int k = 0; k < n->nsaved; k++) {
        lt_release(n->saved[k]);
        n->saved[k] = NULL;
    }
}

/* Iterative, so releasing a long chain does not recurse deeply. */
static void node_release(lt_ag_node *n)
{
    lt_ag_node *stack_small[64];
    lt_ag_node **stack = stack_small;
    size_t sp = 0, cap = 64;
    if (atomic_fetch_sub(&n->refcount, 1) != 1)
        return;
    stack[sp++] = n;
    while (sp > 0) {
        lt_ag_node *x = stack[--sp];
        release_saved(x);
        lt_release(x->pending);
        for (int i = 0; i < x->nin; i++) {
            lt_release(x->edges[i].leaf);
            lt_ag_node *c = x->edges[i].node;
            if (c && atomic_fetch_sub(&c->refcount, 1) == 1) {
                if (sp == cap) {
                    size_t ncap = cap * 2;
                    lt_ag_node **ns = lt_alloc(ncap * sizeof *ns);
                    if (!ns) {
                        /* Out of memory while freeing: fall back to recursion. */
                        atomic_fetch_add(&c->refcount, 1);
                        node_release(c);
                        continue;
                    }
                    memcpy(ns, stack, sp * sizeof *ns);
                    if (stack != stack_small)
                        lt_free(stack, cap * sizeof *stack);
                    stack = ns;
                    cap = ncap;
                }
                stack[sp++] = c;
            }
        }
        lt_free(x, x->bytes);
    }
    if (stack != stack_small)
        lt_free(stack, cap * sizeof *stack);
}

void lt_ag_init(void)
{
    if (lt__observer != lt__ag_observer)
        lt__set_observer(lt__ag_observer, meta_free);
}

/* ------------------------------------------------------------------ */
/* Leaves                                                              */
/* ------------------------------------------------------------------ */

lt_tensor *lt_ag_set_requires_grad(lt_tensor *t, bool on)
{
    lt_ag_init();
    if (!t)
        return NULL;
    ag_meta *m = meta_of(t);
    if (m && m->grad_fn) {
        lt_set_error("set_requires_grad: only leaves can be marked (this tensor comes from '%s'); use detach",
                     m->grad_fn->fn->name);
        return NULL;
    }
    if (on) {
        if (t->dtype != LT_F32 && t->dtype != LT_F64) {
            char b[96];
            lt_set_error("set_requires_grad: only f32/f64 tensors can require grad, got %s", lt__desc(t, b, sizeof b));
            return NULL;
        }
        if (!m) {
            if (!(m = meta_new()))
                return NULL;
            t->ag = m;
        }
    } else if (m) {
        meta_free(m);
        t->ag = NULL;
    }
    return t;
}

bool lt_ag_requires_grad(const lt_tensor *t) { return t && t->ag; }
bool lt_ag_is_leaf(const lt_tensor *t) { return !t || !t->ag || !meta_of(t)->grad_fn; }

lt_tensor *lt_ag_grad_of(const lt_tensor *t) { return (t && t->ag) ? meta_of(t)->grad : NULL; }

int lt_ag_set_grad(lt_tensor *t, lt_tensor *grad)
{
    if (!t || !t->ag || meta_of(t)->grad_fn) {
        lt_set_error("set_grad: tensor is not a leaf that requires grad");
        return -1;
    }
    ag_meta *m = meta_of(t);
    lt_retain(grad);
    lt_release(m->grad);
    m->grad = grad;
    return 0;
}

void lt_ag_zero_grad(lt_tensor *t)
{
    if (t && t->ag) {
        lt_release(meta_of(t)->grad);
        meta_of(t)->grad = NULL;
    }
}

lt_tensor *lt_ag_detach(const lt_tensor *t)
{
    if (!t)
        return NULL;
    return lt__frame_own(lt__make_view(t->storage, t->dtype, t->ndim, t->shape, t->stride, t->offset));
}

const char *lt_ag_op_name(const lt_tensor *t)
{
    return (t && t->ag && meta_of(t)->grad_fn) ? meta_of(t)->grad_fn->fn->name : "";
}

/* ------------------------------------------------------------------ */
/* Recording                                                           */
/* ------------------------------------------------------------------ */

static bool has_nonfinite(const lt_tensor *t)
{
    if (!t || (t->dtype != LT_F32 && t->dtype != LT_F64))
        return false;
    int64_t n = lt_numel(t);
    for (int64_t i = 0; i < n; i++) {
        double v = lt__get(lt__base(t), t->dtype, lt__offset_of(t, i));
        if (!isfinite(v))
            return true;
    }
    return false;
}

static const char *phase_name(int order)
{
    return order == 0 ? "backward" : order == 1 ? "double backward" : "higher-order backward";
}

static int anomaly_forward(const char *name, int nin, const lt_tensor *const *in, const lt_tensor *out)
{
    if (!anomaly_flag || !has_nonfinite(out))
        return 0;
    char o[96], a[96] = "", b[96] = "";
    if (nin > 0 && in[0])
        lt__desc(in[0], a, sizeof a);
    if (nin > 1 && in[1])
        lt__desc(in[1], b, sizeof b);
    lt_set_error("anomaly: op '%s' produced NaN or Inf in %s; output %s, inputs %s %s", name,
                 engine_depth > 0 ? phase_name(engine_phase) : "forward", lt__desc(out, o, sizeof o), a, b);
    return -1;
}

int lt_ag_record(const lt_ag_fn *fn, int nin, const lt_tensor *const *in, lt_tensor *out, int nsaved,
                 const lt_tensor *const *saved, int niargs, const int64_t *iargs, int ndargs, const double *dargs)
{
    lt_ag_init();
    if (no_grad_flag || !out)
        return 0;
    bool any = false;
    for (int i = 0; i < nin; i++)
        if (in[i] && in[i]->ag)
            any = true;
    if (!any)
        return 0;
    if (nin > LT_AG_MAXIN || niargs > LT_AG_MAXIARGS || ndargs > LT_AG_MAXDARGS || out->ag) {
        lt_set_error("record: op '%s': too many arguments or output already recorded", fn->name);
        return -1;
    }
    if (anomaly_forward(fn->name, nin, in, out) < 0)
        return -1;
    size_t bytes = sizeof(lt_ag_node) + (size_t)nin * (sizeof(edge) + sizeof(int) + sizeof(int64_t[LT_MAX_DIMS]) +
                                                         sizeof(lt_dtype)) +
                   (size_t)nsaved * sizeof(lt_tensor *) + 16;
    lt_ag_node *n = lt_alloc(bytes);
    if (!n)
        return -1;
    memset(n, 0, bytes);
    n->bytes = bytes;
    char *p = (char *)(n + 1);
    n->in_shape = (int64_t(*)[LT_MAX_DIMS])p;
    p += (size_t)nin * sizeof(int64_t[LT_MAX_DIMS]);
    n->edges = (edge *)p;
    p += (size_t)nin * sizeof(edge);
    n->saved = (lt_tensor **)p;
    p += (size_t)nsaved * sizeof(lt_tensor *);
    n->in_ndim = (int *)p;
    p += (size_t)nin * sizeof(int);
    n->in_dtype = (lt_dtype *)p;
    atomic_init(&n->refcount, 1);
    n->fn = fn;
    n->nin = nin;
    n->niargs = niargs;
    n->ndargs = ndargs;
    n->order = engine_depth > 0 ? engine_phase + 1 : 0;
    for (int k = 0; k < niargs; k++)
        n->iargs[k] = iargs[k];
    for (int k = 0; k < ndargs; k++)
        n->dargs[k] = dargs[k];
    ag_meta *om = meta_new();
    if (!om) {
        lt_free(n, bytes);
        return -1;
    }
    for (int i = 0; i < nin; i++) {
        const lt_tensor *t = in[i];
        if (!t)
            continue;
        n->in_ndim[i] = t->ndim;
        n->in_dtype[i] = t->dtype;
        memcpy(n->in_shape[i], t->shape, sizeof(int64_t) * (size_t)t->ndim);
        ag_meta *m = meta_of(t);
        if (!m)
            continue;
        if (m->grad_fn) {
            n->edges[i].node = m->grad_fn;
            atomic_fetch_add(&m->grad_fn->refcount, 1);
        } else {
            n->edges[i].leaf = lt_retain((lt_tensor *)t);
        }
    }
    /* From here the node owns what it points at; failures release it. */
    n->nsaved = nsaved;
    for (int k = 0; k < nsaved; k++) {
        const lt_tensor *s = saved[k];
        if (s == out) {
            lt_tensor *h = lt__make_view(out->storage, out->dtype, out->ndim, out->shape, out->stride, out->offset);
            ag_meta *hm = h ? meta_new() : NULL;
            if (!hm) {
                lt_release(h);
                lt_free(om, sizeof *om);
                node_release(n);
                return -1;
            }
            hm->grad_fn = n;
            hm->weak = true;
            h->ag = hm;
            n->saved[k] = h;
        } else {
            n->saved[k] = lt_retain((lt_tensor *)s);
        }
    }
    om->grad_fn = n;
    out->ag = om;
    return 0;
}

/* The targets of the innermost backward pass running on this thread
 * (NULL outside one): what lt_ag_needs_grad asks about. */
typedef struct targets targets;
static _Thread_local const targets *engine_targets;
static bool edge_needed(const targets *tg, const edge *e);

bool lt_ag_needs_grad(const lt_ag_ctx *ctx, int i)
{
    const lt_ag_node *n = (const lt_ag_node *)ctx;
    if (i < 0 || i >= n->nin)
        return false;
    if (engine_targets)
        return edge_needed(engine_targets, &n->edges[i]);
    return n->edges[i].node || n->edges[i].leaf;
}
lt_tensor *lt_ag_saved(const lt_ag_ctx *ctx, int k)
{
    const lt_ag_node *n = (const lt_ag_node *)ctx;
    return (k >= 0 && k < n->nsaved) ? n->saved[k] : NULL;
}
int64_t lt_ag_iarg(const lt_ag_ctx *ctx, int k) { return ((const lt_ag_node *)ctx)->iargs[k]; }
double lt_ag_darg(const lt_ag_ctx *ctx, int k) { return ((const lt_ag_node *)ctx)->dargs[k]; }
int lt_ag_input_count(const lt_ag_ctx *ctx) { return ((const lt_ag_node *)ctx)->nin; }
int lt_ag_input_ndim(const lt_ag_ctx *ctx, int i) { return ((const lt_ag_node *)ctx)->in_ndim[i]; }
const int64_t *lt_ag_input_shape(const lt_ag_ctx *ctx, int i) { return ((const lt_ag_node *)ctx)->in_shape[i]; }
lt_dtype lt_ag_input_dtype(const lt_ag_ctx *ctx, int i) { return ((const lt_ag_node *)ctx)->in_dtype[i]; }

/* ------------------------------------------------------------------ */
/* The backward engine                                                 */
/* ------------------------------------------------------------------ */

typedef struct vec {
    lt_ag_node **v;
    size_t n, cap;
} vec;

static int vec_push(vec *a, lt_ag_node *x)
{
    if (a->n == a->cap) {
        size_t nc = a->cap ? a->cap * 2 : 256;
        lt_ag_node **nv = lt_alloc(nc * sizeof *nv);
        if (!nv)
            return -1;
        if (a->v) {
            memcpy(nv, a->v, a->n * sizeof *nv);
            lt_free(a->v, a->cap * sizeof *a->v);
        }
        a->v = nv;
        a->cap = nc;
    }
    a->v[a->n++] = x;
    return 0;
}

static void vec_free(vec *a)
{
    if (a->v)
        lt_free(a->v, a->cap * sizeof *a->v);
    a->v = NULL;
    a->n = a->cap = 0;
}

static unsigned visit_epoch;

/* Accumulate g into *slot (an owned reference). */
static int accumulate(lt_tensor **slot, lt_tensor *g)
{
    if (!*slot) {
        *slot = lt_retain(g);
        return 0;
    }
    lt_tensor *s = lt_add(*slot, g);
    if (!s)
        return -1;
    lt_release(*slot);
    *slot = lt_retain(s);
    return 0;
}

static bool same_shape(const lt_tensor *a, int nd, const int64_t *shape)
{
    return a->ndim == nd && memcmp(a->shape, shape, sizeof(int64_t) * (size_t)nd) == 0;
}

/* Targets: for lt_ag_grad, the inputs; for lt_ag_backward, every leaf. */
struct targets {
    int n;
    lt_tensor *const *inputs; /* NULL: accumulate into leaves' .grad */
    lt_tensor **out;          /* owned references, one per input */
};

static int target_of_leaf(const targets *tg, const lt_tensor *leaf)
{
    for (int j = 0; j < tg->n; j++)
        if (tg->inputs[j] == leaf)
            return j;
    return -1;
}

/* Does the gradient along edge e reach a target of this pass? A node's
 * "needed" is computed at the start of each pass for every node in it. */
static bool edge_needed(const targets *tg, const edge *e)
{
    if (e->node)
        return e->node->needed;
    return e->leaf && (!tg->inputs || target_of_leaf(tg, e->leaf) >= 0);
}

static int run_engine(int nroots, lt_tensor *const *roots, lt_tensor *const *gouts, bool create, bool retain,
                      targets *tg)
{
    int rc = -1;
    vec all = {0}, ready = {0};
    unsigned epoch = ++visit_epoch;
    bool prev_grad = !no_grad_flag;
    int prev_phase = engine_phase;
    const targets *prev_targets = engine_targets;
    size_t mark = lt_frame_push();

    /* 1. root gradients */
    for (int r = 0; r < nroots; r++) {
        lt_tensor *y = roots[r];
        if (!y)
            goto out;
        if (!y->ag) {
            lt_set_error("backward: output %d does not require grad and has no graph", r);
            goto out;
        }
    }
    /* 2. collect the graph (iterative DFS), counting dependencies */
    for (int r = 0; r < nroots; r++) {
        lt_ag_node *n = meta_of(roots[r])->grad_fn;
        if (n && n->visit != epoch) {
            n->visit = epoch;
            n->deps = 0;
            n->needed = false;
            if (vec_push(&all, n) < 0)
                goto out;
        }
    }
    for (size_t i = 0; i < all.n; i++) {
        lt_ag_node *n = all.v[i];
        for (int k = 0; k < n->nin; k++) {
            lt_ag_node *c = n->edges[k].node;
            if (!c)
                continue;
            if (c->visit != epoch) {
                c->visit = epoch;
                c->deps = 0;
                c->needed = false;
                if (vec_push(&all, c) < 0)
                    goto out;
            }
            c->deps++;
        }
    }
    /* 3. which nodes lead to a target (BFS order reversed is not a topo
     * order in general, so iterate to a fixed point; graphs are shallow in
     * "needed" changes and this converges in a few sweeps) */
    if (tg->inputs) {
        for (int j = 0; j < tg->n; j++) {
            const lt_tensor *x = tg->inputs[j];
            if (x->ag && meta_of(x)->grad_fn && meta_of(x)->grad_fn->visit == epoch)
                meta_of(x)->grad_fn->needed = true;
        }
    }
    for (bool changed = true; changed;) {
        changed = false;
        for (size_t i = all.n; i-- > 0;) {
            lt_ag_node *n = all.v[i];
            if (n->needed)
                continue;
            for (int k = 0; k < n->nin && !n->needed; k++) {
                if (n->edges[k].node && n->edges[k].node->needed)
                    n->needed = true;
                else if (n->edges[k].leaf && (!tg->inputs || target_of_leaf(tg, n->edges[k].leaf) >= 0))
                    n->needed = true;
            }
            changed |= n->needed;
        }
    }
    /* 4. seed */
    lt_ag_set_grad_enabled(create);
    for (int r = 0; r < nroots; r++) {
        lt_tensor *y = roots[r];
        const lt_tensor *g = gouts ? gouts[r] : NULL;
        lt_tensor *gg;
        if (g) {
            if (!same_shape(g, y->ndim, y->shape)) {
                char a[96], b[96];
                lt_set_error("backward: grad_output %s does not match output %s", lt__desc(g, a, sizeof a),
                             lt__desc(y, b, sizeof b));
                goto out;
            }
            gg = (lt_tensor *)g;
        } else {
            if (lt_numel(y) != 1) {
                char a[96];
                lt_set_error("backward: grad_output can be implicit only for one-element outputs, got %s",
                             lt__desc(y, a, sizeof a));
                goto out;
            }
            if (!(gg = lt_ones_like(y)))
                goto out;
        }
        lt_ag_node *n = meta_of(y)->grad_fn;
        if (n) {
            if (accumulate(&n->pending, gg) < 0)
                goto out;
        } else if (tg->inputs) {
            int j = target_of_leaf(tg, y);
            if (j >= 0 && accumulate(&tg->out[j], gg) < 0)
                goto out;
        } else if (accumulate(&meta_of(y)->grad, gg) < 0) {
            goto out;
        }
    }
    /* 5. run in dependency order */
    for (size_t i = 0; i < all.n; i++)
        if (all.v[i]->deps == 0 && vec_push(&ready, all.v[i]) < 0)
            goto out;
    engine_depth++;
    engine_targets = tg;
    while (ready.n > 0) {
        lt_ag_node *n = ready.v[--ready.n];
        if (tg->inputs) {
            for (int j = 0; j < tg->n; j++) {
                const lt_tensor *x = tg->inputs[j];
                if (x->ag && meta_of(x)->grad_fn == n && n->pending && accumulate(&tg->out[j], n->pending) < 0)
                    goto out_depth;
            }
        }
        lt_tensor *gin[LT_AG_MAXIN] = {0};
        if (n->needed && n->pending) {
            if (n->freed && n->nsaved > 0) {
                lt_set_error("backward: the graph of op '%s' was already freed by an earlier backward pass; "
                             "pass retain_graph to go through it twice",
                             n->fn->name);
                goto out_depth;
            }
            if (n->nin > LT_AG_MAXIN) {
                lt_set_error("backward: op '%s' has %d inputs, at most %d supported", n->fn->name, n->nin,
                             LT_AG_MAXIN);
                goto out_depth;
            }
            size_t m2 = lt_frame_push();
            engine_phase = n->order;
            if (n->fn->backward((lt_ag_ctx *)n, n->pending, gin) < 0) {
                char msg[1024];
                snprintf(msg, sizeof msg, "%s", lt_last_error());
                lt_set_error("%s of op '%s' failed: %s", phase_name(n->order), n->fn->name, msg);
                lt_frame_pop(m2);
                goto out_depth;
            }
            for (int k = 0; k < n->nin; k++) {
                lt_tensor *g = gin[k];
                if (!g)
                    continue;
                if (anomaly_flag && has_nonfinite(g)) {
                    char a[96];
                    lt_set_error("anomaly: op '%s' produced NaN or Inf in %s (gradient of input %d, %s)",
                                 n->fn->name, phase_name(n->order), k, lt__desc(g, a, sizeof a));
                    lt_frame_pop(m2);
                    goto out_depth;
                }
                if (!same_shape(g, n->in_ndim[k], n->in_shape[k])) {
                    char a[96];
                    lt_set_error("backward of op '%s' returned gradient %s for input %d of rank %d", n->fn->name,
                                 lt__desc(g, a, sizeof a), k, n->in_ndim[k]);
                    lt_frame_pop(m2);
                    goto out_depth;
                }
                int fail = 0;
                if (n->edges[k].node)
                    fail = n->edges[k].node->needed ? accumulate(&n->edges[k].node->pending, g) : 0;
                else if (n->edges[k].leaf) {
                    lt_tensor *leaf = n->edges[k].leaf;
                    if (tg->inputs) {
                        int j = target_of_leaf(tg, leaf);
                        fail = j >= 0 ? accumulate(&tg->out[j], g) : 0;
                    } else {
                        fail = accumulate(&meta_of(leaf)->grad, g);
                    }
                }
                if (fail) {
                    lt_frame_pop(m2);
                    goto out_depth;
                }
            }
            lt_frame_pop(m2);
        }
        lt_release(n->pending);
        n->pending = NULL;
        if (!retain && n->needed) {
            release_saved(n);
            n->freed = true;
        }
        for (int k = 0; k < n->nin; k++) {
            lt_ag_node *c = n->edges[k].node;
            if (c && --c->deps == 0 && vec_push(&ready, c) < 0)
                goto out_depth;
        }
    }
    rc = 0;
out_depth:
    engine_depth--;
out:
    for (size_t i = 0; i < all.n; i++) {
        lt_release(all.v[i]->pending);
        all.v[i]->pending = NULL;
    }
    vec_free(&all);
    vec_free(&ready);
    no_grad_flag = !prev_grad;
    engine_phase = prev_phase;
    engine_targets = prev_targets;
    lt_frame_pop(mark);
    return rc;
}

int lt_ag_backward(lt_tensor *loss, const lt_tensor *grad_output, bool retain_graph, bool create_graph)
{
    lt_ag_init();
    if (!loss)
        return -1;
    targets tg = {0};
    lt_tensor *const gos[1] = {(lt_tensor *)grad_output};
    return run_engine(1, &loss, grad_output ? gos : NULL, create_graph, retain_graph || create_graph, &tg);
}

int lt_ag_grad(int nout, lt_tensor *const *outputs, int nin, lt_tensor *const *inputs,
               lt_tensor *const *grad_outputs, bool create_graph, bool retain_graph, bool allow_unused,
               lt_tensor **grads)
{
    lt_ag_init();
    if (nin <= 0 || nout <= 0 || !outputs || !inputs || !grads) {
        lt_set_error("grad: needs at least one output and one input");
        return -1;
    }
    for (int j = 0; j < nin; j++) {
        grads[j] = NULL;
        if (!inputs[j])
            return -1;
        if (!inputs[j]->ag) {
            lt_set_error("grad: input %d does not require grad", j);
            return -1;
        }
    }
    lt_tensor **res = lt_alloc((size_t)nin * sizeof *res);
    if (!res)
        return -1;
    memset(res, 0, (size_t)nin * sizeof *res);
    targets tg = {.n = nin, .inputs = inputs, .out = res};
    int rc = run_engine(nout, outputs, grad_outputs, create_graph, retain_graph || create_graph, &tg);
    for (int j = 0; rc == 0 && j < nin; j++)
        if (!res[j] && !allow_unused) {
            lt_set_error("grad: input %d is not used by the outputs (pass allow_unused)", j);
            rc = -1;
        }
    for (int j = 0; j < nin; j++) {
        if (rc == 0)
            grads[j] = lt_autorelease(res[j]);
        else
            lt_release(res[j]);
    }
    lt_free(res, (size_t)nin * sizeof *res);
    return rc;
}

int lt_ag_hvp(lt_tensor *f, int nin, lt_tensor *const *inputs, lt_tensor *const *v, lt_tensor **hv)
{
    lt_ag_init();
    if (nin > LT_AG_MAXIN) {
        lt_set_error("hvp: at most %d inputs", LT_AG_MAXIN);
        return -1;
    }
    lt_tensor *g[LT_AG_MAXIN];
    if (lt_ag_grad(1, &f, nin, inputs, NULL, true, true, true, g) < 0)
        return -1;
    bool prev = lt_ag_set_grad_enabled(true);
    lt_tensor *dot = NULL;
    for (int j = 0; j < nin; j++) {
        if (!g[j])
            continue;
        lt_tensor *d = lt_sum(lt_mul(g[j], v[j]), 0, NULL, false);
        dot = dot ? lt_add(dot, d) : d;
        if (!dot)
            break;
    }
    lt_ag_set_grad_enabled(prev);
    int rc = -1;
    if (!dot || !dot->ag) {
        /* gradient does not depend on the inputs: H v = 0 */
        for (int j = 0; j < nin; j++)
            hv[j] = lt_zeros_like(inputs[j]);
        return dot || !nin ? 0 : -1;
    }
    rc = lt_ag_grad(1, &dot, nin, inputs, NULL, false, true, true, hv);
    for (int j = 0; rc == 0 && j < nin; j++)
        if (!hv[j] && !(hv[j] = lt_zeros_like(inputs[j])))
            rc = -1;
    return rc;
}
