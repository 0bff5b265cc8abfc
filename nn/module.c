/*
 * module.c: the module tree (named parameters, buffers, children, mode,
 * state-dict views) and the basic layers built on it: Linear, Conv2d,
 * BatchNorm2d, LayerNorm, Sequential.
 *
 * The ordering rule is torch's Module.state_dict(): a module's own
 * parameters, then its own buffers, then each child's entries in the order
 * the children were added (named_parameters() is the same walk restricted
 * to parameters). The flattened views are built on demand and cached in
 * the module asked; adding anything anywhere in a tree marks the caches of
 * the module and all its ancestors stale.
 *
 * Every allocation goes through lt_alloc / lt_free (the allocator hook).
 */
#include "nn.h"
#include "nn_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef struct named_tensor {
    char *name;
    lt_tensor *t;
} named_tensor;

typedef struct named_child {
    char *name;
    lt_nn_module *m;
} named_child;

/* Flattened view of a subtree: full names and tensors in state_dict order
 * (state), and the parameters alone (params, pointing at the same strings).
 * The arrays hold cap = max(n, 1) slots, so that built means non-NULL. */
typedef struct flat_view {
    bool valid;
    int nstate, nparams, cstate, cparams;
    char **state_names; /* owned strings (NULL in unfilled slots) */
    lt_tensor **state_tensors;
    char **param_names; /* aliases of state_names' strings */
    lt_tensor **param_tensors;
} flat_view;

/* Owned by whoever owns the module: the caller of the constructor for a
 * root, the parent otherwise. */
struct lt_nn_module {
    char *type;
    lt_nn_forward_fn forward;
    void *impl;
    void (*free_impl)(void *);
    named_tensor *params, *buffers;
    named_child *children;
    int nparams, nbuffers, nchildren;
    int cparams, cbuffers, cchildren; /* capacities */
    lt_nn_module *parent;
    bool training;
    flat_view flat;
};

/* ---- small allocation helpers (through the hook) ---- */

static char *str_dup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = lt_alloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

static void str_free(char *s)
{
    if (s)
        lt_free(s, strlen(s) + 1);
}

/* arr (elements of size esz, capacity *cap) with room for n + 1: arr
 * itself, or a larger copy (arr freed, *cap updated); NULL on OOM with arr
 * untouched. */
static void *grow(void *arr, int *cap, int n, size_t esz)
{
    if (n < *cap)
        return arr;
    int nc = *cap ? 2 * *cap : 4;
    void *na = lt_alloc((size_t)nc * esz);
    if (!na)
        return NULL;
    if (arr) {
        memcpy(na, arr, (size_t)n * esz);
        lt_free(arr, (size_t)*cap * esz);
    }
    *cap = nc;
    return na;
}

static void flat_clear(flat_view *f)
{
    if (f->state_names) {
        for (int i = 0; i < f->cstate; i++)
            str_free(f->state_names[i]);
        lt_free(f->state_names, (size_t)f->cstate * sizeof(char *));
    }
    if (f->state_tensors)
        lt_free(f->state_tensors, (size_t)f->cstate * sizeof(lt_tensor *));
    if (f->param_names)
        lt_free(f->param_names, (size_t)f->cparams * sizeof(char *));
    if (f->param_tensors)
        lt_free(f->param_tensors, (size_t)f->cparams * sizeof(lt_tensor *));
    *f = (flat_view){0};
}

static void mark_stale(lt_nn_module *m)
{
    for (; m; m = m->parent)
        if (m->flat.valid)
            flat_clear(&m->flat);
}

/* ---- create, free ---- */

lt_nn_module *lt_nn_module_new(const char *type, lt_nn_forward_fn forward, void *impl, void (*free_impl)(void *))
{
    lt_nn_module *m = lt_alloc(sizeof *m);
    char *ty = m ? str_dup(type ? type : "Module") : NULL;
    if (!ty) {
        if (m)
            lt_free(m, sizeof *m);
        if (free_impl)
            free_impl(impl);
        return NULL;
    }
    *m = (lt_nn_module){.type = ty, .forward = forward, .impl = impl, .free_impl = free_impl, .training = true};
    return m;
}

static void module_destroy(lt_nn_module *m)
{
    for (int i = 0; i < m->nparams; i++) {
        str_free(m->params[i].name);
        lt_release(m->params[i].t);
    }
    for (int i = 0; i < m->nbuffers; i++) {
        str_free(m->buffers[i].name);
        lt_release(m->buffers[i].t);
    }
    for (int i = 0; i < m->nchildren; i++) {
        str_free(m->children[i].name);
        module_destroy(m->children[i].m);
    }
    if (m->params)
        lt_free(m->params, (size_t)m->cparams * sizeof *m->params);
    if (m->buffers)
        lt_free(m->buffers, (size_t)m->cbuffers * sizeof *m->buffers);
    if (m->children)
        lt_free(m->children, (size_t)m->cchildren * sizeof *m->children);
    flat_clear(&m->flat);
    if (m->free_impl)
        m->free_impl(m->impl);
    str_free(m->type);
    lt_free(m, sizeof *m);
}

void lt_nn_module_free(lt_nn_module *m)
{
    if (m && !m->parent)
        module_destroy(m);
}

/* ---- adding entries ---- */

static bool name_taken(const lt_nn_module *m, const char *name)
{
    for (int i = 0; i < m->nparams; i++)
        if (strcmp(m->params[i].name, name) == 0)
            return true;
    for (int i = 0; i < m->nbuffers; i++)
        if (strcmp(m->buffers[i].name, name) == 0)
            return true;
    for (int i = 0; i < m->nchildren; i++)
        if (strcmp(m->children[i].name, name) == 0)
            return true;
    return false;
}

static int check_name(const char *op, const lt_nn_module *m, const char *name)
{
    if (!m || !name || !*name || strchr(name, '.')) {
        lt_set_error("%s: %s", op, !m ? "no module" : "a name must be non-empty and have no '.'");
        return -1;
    }
    if (name_taken(m, name)) {
        lt_set_error("%s: '%s' already exists in this %s", op, name, m->type);
        return -1;
    }
    return 0;
}

static lt_tensor *add_entry(const char *op, lt_nn_module *m, const char *name, lt_tensor *t, bool param)
{
    if (!t || check_name(op, m, name) < 0)
        return NULL;
    if (!lt_is_contiguous(t)) {
        lt_set_error("%s: '%s' must be contiguous", op, name);
        return NULL;
    }
    if (param) {
        if ((lt_dtype_of(t) != LT_F32 && lt_dtype_of(t) != LT_F64) || !lt_ag_is_leaf(t)) {
            lt_set_error("%s: '%s' must be an f32/f64 leaf tensor, got %s", op, name, lt_dtype_name(lt_dtype_of(t)));
            return NULL;
        }
    } else if (lt_ag_requires_grad(t)) {
        lt_set_error("%s: buffer '%s' must not require grad", op, name);
        return NULL;
    }
    named_tensor **arr = param ? &m->params : &m->buffers;
    int *n = param ? &m->nparams : &m->nbuffers, *cap = param ? &m->cparams : &m->cbuffers;
    char *nm = str_dup(name);
    named_tensor *na = nm ? grow(*arr, cap, *n, sizeof **arr) : NULL;
    if (!na || (param && !lt_ag_set_requires_grad(t, true))) {
        if (na)
            *arr = na;
        str_free(nm);
        return NULL;
    }
    *arr = na;
    (*arr)[(*n)++] = (named_tensor){nm, lt_retain(t)};
    mark_stale(m);
    return t;
}

lt_tensor *lt_nn_module_add_param(lt_nn_module *m, const char *name, lt_tensor *t)
{
    return add_entry("module_add_param", m, name, t, true);
}

lt_tensor *lt_nn_module_add_buffer(lt_nn_module *m, const char *name, lt_tensor *t)
{
    return add_entry("module_add_buffer", m, name, t, false);
}

static void set_training(lt_nn_module *m, bool on)
{
    m->training = on;
    for (int i = 0; i < m->nchildren; i++)
        set_training(m->children[i].m, on);
}

lt_nn_module *lt_nn_module_add_child(lt_nn_module *m, const char *name, lt_nn_module *child)
{
    if (!child)
        return NULL;
    bool in_tree = child->parent != NULL;
    for (const lt_nn_module *a = m; a && !in_tree; a = a->parent)
        in_tree = a == child;
    if (in_tree) {
        lt_set_error("module_add_child: '%s' already belongs to a tree (a parent, or an ancestor of the new "
                     "parent)", name ? name : "");
        return NULL; /* owned elsewhere: not ours to free */
    }
    char *nm = NULL;
    named_child *nc = NULL;
    if (check_name("module_add_child", m, name) < 0 || !(nm = str_dup(name)) ||
        !(nc = grow(m->children, &m->cchildren, m->nchildren, sizeof *m->children))) {
        str_free(nm);
        module_destroy(child);
        return NULL;
    }
    m->children = nc;
    m->children[m->nchildren++] = (named_child){nm, child};
    child->parent = m;
    set_training(child, m->training);
    mark_stale(m);
    return child;
}

/* ---- accessors ---- */

const char *lt_nn_module_type(const lt_nn_module *m) { return m ? m->type : ""; }
void *lt_nn_module_impl(const lt_nn_module *m) { return m ? m->impl : NULL; }
lt_nn_module *lt_nn_module_parent(const lt_nn_module *m) { return m ? m->parent : NULL; }

lt_tensor *lt_nn_module_forward(lt_nn_module *m, const lt_tensor *x)
{
    if (!m || !x)
        return NULL;
    if (!m->forward) {
        lt_set_error("module_forward: a %s has no forward function", m->type);
        return NULL;
    }
    if (lt_ag_grad_enabled())
        return m->forward(m, x);
    /* No graph is recorded, so nothing the forward made but its result can
     * be needed later: free the temporaries on return. Inference then
     * holds a layer's activations at a time, not the whole network's. */
    size_t mark = lt_frame_push();
    lt_tensor *y = lt_retain(m->forward(m, x));
    lt_frame_pop(mark);
    return lt_autorelease(y);
}

static lt_nn_module *child_named(const lt_nn_module *m, const char *name, size_t len)
{
    for (int i = 0; i < m->nchildren; i++)
        if (strlen(m->children[i].name) == len && strncmp(m->children[i].name, name, len) == 0)
            return m->children[i].m;
    return NULL;
}

/* Walk the module part of path; *last gets the final component (after the
 * last '.'), or NULL when modules_only and the whole path is modules. */
static const lt_nn_module *walk(const lt_nn_module *m, const char *path, bool modules_only, const char **last)
{
    const char *p = path;
    for (;;) {
        const char *dot = strchr(p, '.');
        if (!dot) {
            if (!modules_only) {
                *last = p;
                return m;
            }
            return *p ? child_named(m, p, strlen(p)) : m;
        }
        m = child_named(m, p, (size_t)(dot - p));
        if (!m)
            return NULL;
        p = dot + 1;
    }
}

static lt_tensor *lookup(const lt_nn_module *m, const char *path)
{
    if (!m || !path)
        return NULL;
    const char *last = NULL;
    const lt_nn_module *o = walk(m, path, false, &last);
    if (!o)
        return NULL;
    for (int i = 0; i < o->nparams; i++)
        if (strcmp(o->params[i].name, last) == 0)
            return o->params[i].t;
    for (int i = 0; i < o->nbuffers; i++)
        if (strcmp(o->buffers[i].name, last) == 0)
            return o->buffers[i].t;
    return NULL;
}

lt_tensor *lt_nn_module_get(const lt_nn_module *m, const char *path)
{
    lt_tensor *t = lookup(m, path);
    if (!t && m && path)
        lt_set_error("module_get: no parameter or buffer '%s' in this %s", path, m->type);
    return t;
}

bool lt_nn_module_has(const lt_nn_module *m, const char *path) { return lookup(m, path) != NULL; }

lt_nn_module *lt_nn_module_find(const lt_nn_module *m, const char *path)
{
    if (!m || !path)
        return NULL;
    const lt_nn_module *o = walk(m, path, true, NULL);
    if (!o)
        lt_set_error("module_find: no module '%s' in this %s", path, m->type);
    return (lt_nn_module *)o;
}

int lt_nn_module_child_count(const lt_nn_module *m) { return m ? m->nchildren : 0; }

lt_nn_module *lt_nn_module_child_at(const lt_nn_module *m, int i, const char **name)
{
    if (!m || i < 0 || i >= m->nchildren)
        return NULL;
    if (name)
        *name = m->children[i].name;
    return m->children[i].m;
}

void lt_nn_module_train(lt_nn_module *m, bool training)
{
    if (m)
        set_training(m, training);
}

bool lt_nn_module_is_training(const lt_nn_module *m) { return m && m->training; }

/* ---- flattened views ---- */

static void count_tree(const lt_nn_module *m, int *ns, int *np)
{
    *ns += m->nparams + m->nbuffers;
    *np += m->nparams;
    for (int i = 0; i < m->nchildren; i++)
        count_tree(m->children[i].m, ns, np);
}

static char *join(const char *prefix, const char *name)
{
    size_t a = strlen(prefix), b = strlen(name);
    char *s = lt_alloc(a + b + 1);
    if (s) {
        memcpy(s, prefix, a);
        memcpy(s + a, name, b + 1);
    }
    return s;
}

/* Fill f from position *is / *ip on; prefix is "" or "a.b.". */
static int fill_tree(const lt_nn_module *m, const char *prefix, flat_view *f, int *is, int *ip)
{
    for (int k = 0; k < m->nparams + m->nbuffers; k++) {
        bool param = k < m->nparams;
        const named_tensor *e = param ? &m->params[k] : &m->buffers[k - m->nparams];
        char *full = join(prefix, e->name);
        if (!full)
            return -1;
        f->state_names[*is] = full;
        f->state_tensors[(*is)++] = e->t;
        if (param) {
            f->param_names[*ip] = full;
            f->param_tensors[(*ip)++] = e->t;
        }
    }
    for (int i = 0; i < m->nchildren; i++) {
        char *p = join(prefix, m->children[i].name), *pd = p ? join(p, ".") : NULL;
        str_free(p);
        if (!pd)
            return -1;
        int rc = fill_tree(m->children[i].m, pd, f, is, ip);
        str_free(pd);
        if (rc < 0)
            return -1;
    }
    return 0;
}

static int flat_build(lt_nn_module *m)
{
    if (!m)
        return -1;
    if (m->flat.valid)
        return 0;
    flat_view f = {0};
    int ns = 0, np = 0;
    count_tree(m, &ns, &np);
    f.cstate = ns ? ns : 1;
    f.cparams = np ? np : 1;
    f.state_names = lt_alloc((size_t)f.cstate * sizeof(char *));
    if (f.state_names)
        memset(f.state_names, 0, (size_t)f.cstate * sizeof(char *));
    f.state_tensors = lt_alloc((size_t)f.cstate * sizeof(lt_tensor *));
    f.param_names = lt_alloc((size_t)f.cparams * sizeof(char *));
    f.param_tensors = lt_alloc((size_t)f.cparams * sizeof(lt_tensor *));
    if (!f.state_names || !f.state_tensors || !f.param_names || !f.param_tensors ||
        fill_tree(m, "", &f, &f.nstate, &f.nparams) < 0) {
        flat_clear(&f);
        return -1;
    }
    f.valid = true;
    m->flat = f;
    return 0;
}

int lt_nn_module_parameters(lt_nn_module *m, lt_nn_named_tensors *out)
{
    if (!out || flat_build(m) < 0)
        return -1;
    *out = (lt_nn_named_tensors){m->flat.nparams, (const char *const *)m->flat.param_names,
                                 (lt_tensor *const *)m->flat.param_tensors};
    return out->n;
}

int lt_nn_module_state_dict(lt_nn_module *m, lt_nn_named_tensors *out)
{
    if (!out || flat_build(m) < 0)
        return -1;
    *out = (lt_nn_named_tensors){m->flat.nstate, (const char *const *)m->flat.state_names,
                                 (lt_tensor *const *)m->flat.state_tensors};
    return out->n;
}

int lt_nn_module_param_count(lt_nn_module *m) { return flat_build(m) < 0 ? -1 : m->flat.nparams; }

lt_tensor *lt_nn_module_param_at(lt_nn_module *m, int i, const char **name)
{
    if (flat_build(m) < 0)
        return NULL;
    if (i < 0 || i >= m->flat.nparams) {
        lt_set_error("module_param_at: index %d out of range [0,%d)", i, m->flat.nparams);
        return NULL;
    }
    if (name)
        *name = m->flat.param_names[i];
    return m->flat.param_tensors[i];
}

int64_t lt_nn_module_param_numel(lt_nn_module *m)
{
    if (flat_build(m) < 0)
        return -1;
    int64_t n = 0;
    for (int i = 0; i < m->flat.nparams; i++)
        n += lt_numel(m->flat.param_tensors[i]);
    return n;
}

static void zero_grad_tree(lt_nn_module *m)
{
    for (int i = 0; i < m->nparams; i++)
        lt_ag_zero_grad(m->params[i].t);
    for (int i = 0; i < m->nchildren; i++)
        zero_grad_tree(m->children[i].m);
}

void lt_nn_module_zero_grad(lt_nn_module *m)
{
    if (m)
        zero_grad_tree(m);
}

static int apply_tree(lt_nn_module *m, const char *path, int (*fn)(void *, lt_nn_module *, const char *), void *ud)
{
    int rc = fn(ud, m, path);
    for (int i = 0; rc == 0 && i < m->nchildren; i++) {
        char *p = *path ? join(path, ".") : NULL;
        if (*path && !p)
            return -1;
        char *full = join(p ? p : "", m->children[i].name);
        str_free(p);
        if (!full)
            return -1;
        rc = apply_tree(m->children[i].m, full, fn, ud);
        str_free(full);
    }
    return rc;
}

int lt_nn_module_apply(lt_nn_module *m, int (*fn)(void *ud, lt_nn_module *mod, const char *path), void *ud)
{
    if (!m || !fn)
        return -1;
    return apply_tree(m, "", fn, ud);
}

/* ---- layers ---- */

/* Constructors make their tensors in a frame of their own, so they leave
 * the caller's frame as it was: what they keep is retained by the module. */

/* Linear and Conv2d keep borrowed pointers to their parameters. */
typedef struct affine_impl {
    lt_tensor *weight, *bias;
    lt_nn_conv2d_params conv;
} affine_impl;

static void impl_free(void *p) { lt_free(p, sizeof(affine_impl)); }

static lt_tensor *linear_forward(lt_nn_module *m, const lt_tensor *x)
{
    affine_impl *a = m->impl;
    return lt_nn_linear(x, a->weight, a->bias);
}

static lt_tensor *conv2d_forward(lt_nn_module *m, const lt_tensor *x)
{
    affine_impl *a = m->impl;
    return lt_nn_conv2d_ex(x, a->weight, a->bias, &a->conv);
}

static bool float_dtype(lt_dtype dt) { return dt == LT_F32 || dt == LT_F64; }

/* weight of wshape, optional bias (out), torch's default init. */
static lt_nn_module *affine_new(const char *type, lt_nn_forward_fn fwd, int nd, const int64_t *wshape, bool bias,
                                lt_dtype dt, lt_rng *r, const lt_nn_conv2d_params *cp)
{
    if (!float_dtype(dt) || !r) {
        lt_set_error("%s: needs an f32/f64 dtype and a generator", type);
        return NULL;
    }
    for (int i = 0; i < nd; i++)
        if (wshape[i] < 1) {
            lt_set_error("%s: sizes must be >= 1", type);
            return NULL;
        }
    affine_impl *a = lt_alloc(sizeof *a);
    if (!a)
        return NULL;
    *a = (affine_impl){0};
    if (cp)
        a->conv = *cp;
    lt_nn_module *m = lt_nn_module_new(type, fwd, a, impl_free);
    if (!m)
        return NULL;
    bool ok = false;
    size_t mark = lt_frame_push();
    {
        lt_tensor *w = lt_zeros(nd, wshape, dt), *b = bias ? lt_zeros(1, wshape, dt) : NULL;
        ok = w && (!bias || b) && lt_nn_init_torch_default_(w, b, r) == 0 &&
             (a->weight = lt_nn_module_add_param(m, "weight", w)) != NULL &&
             (!bias || (a->bias = lt_nn_module_add_param(m, "bias", b)) != NULL);
    }
    lt_frame_pop(mark);
    if (!ok) {
        lt_nn_module_free(m);
        return NULL;
    }
    return m;
}

lt_nn_module *lt_nn_linear_new(int64_t in, int64_t out, bool bias, lt_dtype dt, lt_rng *r)
{
    return affine_new("Linear", linear_forward, 2, (int64_t[]){out, in}, bias, dt, r, NULL);
}

lt_nn_module *lt_nn_conv2d_new(int64_t in, int64_t out, int k, int stride, int padding, bool bias, lt_dtype dt,
                               lt_rng *r)
{
    if (stride < 1 || padding < 0) {
        lt_set_error("Conv2d: bad stride %d or padding %d", stride, padding);
        return NULL;
    }
    lt_nn_conv2d_params p = lt_nn_conv2d_params_make(stride, padding, 1);
    return affine_new("Conv2d", conv2d_forward, 4, (int64_t[]){out, in, k, k}, bias, dt, r, &p);
}

/* BatchNorm2d: torch's defaults eps 1e-5, momentum 0.1. */
typedef struct bn_impl {
    lt_tensor *weight, *bias, *running_mean, *running_var, *num_batches_tracked;
    double eps, momentum;
} bn_impl;

static void bn_impl_free(void *p) { lt_free(p, sizeof(bn_impl)); }

static lt_tensor *bn_forward(lt_nn_module *m, const lt_tensor *x)
{
    bn_impl *b = m->impl;
    lt_tensor *y = lt_nn_batch_norm(x, b->running_mean, b->running_var, b->weight, b->bias, m->training,
                                    b->momentum, b->eps);
    if (y && m->training)
        ((int64_t *)lt_data(b->num_batches_tracked))[0] += 1;
    return y;
}

lt_tensor *lt__nn_bn_act(lt_nn_module *m, const lt_tensor *x, const lt_tensor *res, bool relu)
{
    if (!m || !x || m->forward != bn_forward) { /* not a BatchNorm2d: the composed ops */
        lt_tensor *y = lt_nn_module_forward(m, x);
        if (y && res)
            y = lt_add(y, res);
        return y && relu ? lt_relu(y) : y;
    }
    bn_impl *b = m->impl;
    /* As lt_nn_module_forward: without a graph, the temporaries go on return. */
    bool grad = lt_ag_grad_enabled();
    size_t mark = grad ? 0 : lt_frame_push();
    lt_tensor *y = lt__nn_batch_norm_act(x, b->running_mean, b->running_var, b->weight, b->bias, m->training,
                                         b->momentum, b->eps, res, relu);
    if (y && m->training)
        ((int64_t *)lt_data(b->num_batches_tracked))[0] += 1;
    if (grad)
        return y;
    lt_retain(y);
    lt_frame_pop(mark);
    return lt_autorelease(y);
}

lt_nn_module *lt_nn_batch_norm2d_new(int64_t c, lt_dtype dt)
{
    if (!float_dtype(dt) || c < 1) {
        lt_set_error("BatchNorm2d: needs channels >= 1 and an f32/f64 dtype");
        return NULL;
    }
    bn_impl *b = lt_alloc(sizeof *b);
    if (!b)
        return NULL;
    *b = (bn_impl){.eps = 1e-5, .momentum = 0.1};
    lt_nn_module *m = lt_nn_module_new("BatchNorm2d", bn_forward, b, bn_impl_free);
    if (!m)
        return NULL;
    bool ok = false;
    int64_t sh[1] = {c};
    size_t mark = lt_frame_push();
    {
        ok = (b->weight = lt_nn_module_add_param(m, "weight", lt_ones(1, sh, dt))) &&
             (b->bias = lt_nn_module_add_param(m, "bias", lt_zeros(1, sh, dt))) &&
             (b->running_mean = lt_nn_module_add_buffer(m, "running_mean", lt_zeros(1, sh, dt))) &&
             (b->running_var = lt_nn_module_add_buffer(m, "running_var", lt_ones(1, sh, dt))) &&
             (b->num_batches_tracked = lt_nn_module_add_buffer(m, "num_batches_tracked", lt_zeros(0, NULL, LT_I64)));
    }
    lt_frame_pop(mark);
    if (!ok) {
        lt_nn_module_free(m);
        return NULL;
    }
    return m;
}

typedef struct ln_impl {
    lt_tensor *weight, *bias;
    double eps;
} ln_impl;

static void ln_impl_free(void *p) { lt_free(p, sizeof(ln_impl)); }

static lt_tensor *ln_forward(lt_nn_module *m, const lt_tensor *x)
{
    ln_impl *l = m->impl;
    return lt_nn_layer_norm(x, 1, l->weight, l->bias, l->eps);
}

lt_nn_module *lt_nn_layer_norm_new(int64_t d, double eps, lt_dtype dt)
{
    if (!float_dtype(dt) || d < 1 || !(eps >= 0)) {
        lt_set_error("LayerNorm: needs a size >= 1, eps >= 0 and an f32/f64 dtype");
        return NULL;
    }
    ln_impl *l = lt_alloc(sizeof *l);
    if (!l)
        return NULL;
    *l = (ln_impl){.eps = eps};
    lt_nn_module *m = lt_nn_module_new("LayerNorm", ln_forward, l, ln_impl_free);
    if (!m)
        return NULL;
    bool ok = false;
    int64_t sh[1] = {d};
    size_t mark = lt_frame_push();
    {
        ok = (l->weight = lt_nn_module_add_param(m, "weight", lt_ones(1, sh, dt))) &&
             (l->bias = lt_nn_module_add_param(m, "bias", lt_zeros(1, sh, dt)));
    }
    lt_frame_pop(mark);
    if (!ok) {
        lt_nn_module_free(m);
        return NULL;
    }
    return m;
}

static lt_tensor *sequential_forward(lt_nn_module *m, const lt_tensor *x)
{
    lt_tensor *y = (lt_tensor *)x;
    for (int i = 0; i < m->nchildren && y; i++)
        y = lt_nn_module_forward(m->children[i].m, y);
    if (y == x) /* no children: identity, as a new frame-owned reference */
        y = lt_autorelease(lt_retain(y));
    return y;
}

lt_nn_module *lt_nn_sequential_new(void) { return lt_nn_module_new("Sequential", sequential_forward, NULL, NULL); }
