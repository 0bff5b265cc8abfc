/*
 * optim.c: SGD and AdamW, learning-rate schedules, gradient clipping
 * (optim.h).
 *
 * The update rules follow PyTorch's single-tensor implementations
 * (torch/optim/sgd.py _single_tensor_sgd, torch/optim/adamw.py
 * _single_tensor_adamw) operation by operation, with each element computed
 * in the parameter's dtype and hyperparameters rounded to it, as torch's CPU
 * kernels do; the formulas are quoted in optim.h. A step first checks every
 * gradient and allocates any missing state, then updates, so a failing step
 * changes nothing.
 */
#include "optim.h"
#include "nn_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { KIND_SGD, KIND_ADAMW };

/* Names of the exported state: slot 0 is "optim.step", parameter i's fields
 * are slots 1 + 3i + k (k: momentum_buffer | exp_avg, exp_avg_sq, step). */
#define NAME_W 64

struct lt_nn_optim {
    int kind, n;
    lt_tensor **params; /* n references */
    double *wd;         /* per-parameter weight decay */
    double lr, momentum, dampening, beta1, beta2, eps;
    bool nesterov;
    int64_t steps;  /* successful lt_nn_optim_step calls */
    int64_t *pstep; /* updates of each parameter (0: no state yet) */
    lt_tensor **s1; /* momentum_buffer | exp_avg (owned, or NULL) */
    lt_tensor **s2; /* exp_avg_sq (owned, or NULL) */
    char *names;    /* (1 + 3n) * NAME_W */
};

static const char *const adamw_fields[3] = {"exp_avg", "exp_avg_sq", "step"};

static size_t names_size(int n) { return (size_t)(1 + 3 * n) * NAME_W; }

static const char *slot_name(const lt_nn_optim *o, int slot) { return o->names + (size_t)slot * NAME_W; }

void lt_nn_optim_free(lt_nn_optim *o)
{
    if (!o)
        return;
    for (int i = 0; i < o->n; i++) {
        if (o->params)
            lt_release(o->params[i]);
        if (o->s1)
            lt_release(o->s1[i]);
        if (o->s2)
            lt_release(o->s2[i]);
    }
    size_t np = sizeof(void *) * (size_t)o->n;
    lt_free(o->params, np);
    lt_free(o->s1, np);
    lt_free(o->s2, np);
    lt_free(o->wd, sizeof(double) * (size_t)o->n);
    lt_free(o->pstep, sizeof(int64_t) * (size_t)o->n);
    lt_free(o->names, names_size(o->n));
    lt_free(o, sizeof *o);
}

static void *zalloc(size_t size)
{
    void *p = lt_alloc(size);
    if (p)
        memset(p, 0, size ? size : 1);
    return p;
}

static bool finite_nonneg(double v) { return isfinite(v) && v >= 0; }

/* Common part of the constructors: check and retain the parameters. */
static lt_nn_optim *optim_new(const char *op, int kind, int n, lt_tensor *const *params, double lr, double wd)
{
    if (n < 0 || (n > 0 && !params)) {
        lt_set_error("%s: bad parameter array (n %d)", op, n);
        return NULL;
    }
    if (!finite_nonneg(lr) || !finite_nonneg(wd)) {
        lt_set_error("%s: lr %g and weight_decay %g must be finite and >= 0", op, lr, wd);
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        const lt_tensor *p = params[i];
        if (!p || !lt_ag_requires_grad(p) || !lt_ag_is_leaf(p) || !lt_is_contiguous(p) ||
            (lt_dtype_of(p) != LT_F32 && lt_dtype_of(p) != LT_F64)) {
            lt_set_error("%s: parameter %d must be a contiguous f32/f64 leaf that requires grad", op, i);
            return NULL;
        }
    }
    lt_nn_optim *o = zalloc(sizeof *o);
    if (!o)
        return NULL;
    size_t np = sizeof(void *) * (size_t)n;
    o->kind = kind;
    o->n = n;
    o->lr = lr;
    o->params = zalloc(np);
    o->s1 = zalloc(np);
    o->s2 = zalloc(np);
    o->wd = zalloc(sizeof(double) * (size_t)n);
    o->pstep = zalloc(sizeof(int64_t) * (size_t)n);
    o->names = zalloc(names_size(n));
    if (!o->params || !o->s1 || !o->s2 || !o->wd || !o->pstep || !o->names) {
        lt_nn_optim_free(o);
        lt_set_error("%s: out of memory", op);
        return NULL;
    }
    snprintf(o->names, NAME_W, "optim.step");
    for (int i = 0; i < n; i++) {
        o->params[i] = lt_retain(params[i]);
        o->wd[i] = wd;
        for (int k = 0; k < (kind == KIND_SGD ? 1 : 3); k++) /* SGD's other slots stay "" */
            snprintf(o->names + (size_t)(1 + 3 * i + k) * NAME_W, NAME_W, "optim.state.%d.%s", i,
                     kind == KIND_SGD ? "momentum_buffer" : adamw_fields[k]);
    }
    return o;
}

lt_nn_sgd_opts lt_nn_sgd_defaults(double lr) { return (lt_nn_sgd_opts){lr, 0, 0, 0, false}; }

lt_nn_optim *lt_nn_sgd_new(int n, lt_tensor *const *params, const lt_nn_sgd_opts *opts)
{
    if (!opts) {
        lt_set_error("sgd: NULL options");
        return NULL;
    }
    if (!finite_nonneg(opts->momentum) || !isfinite(opts->dampening)) {
        lt_set_error("sgd: momentum %g must be >= 0 and dampening %g finite", opts->momentum, opts->dampening);
        return NULL;
    }
    if (opts->nesterov && (opts->momentum <= 0 || opts->dampening != 0)) {
        lt_set_error("sgd: Nesterov momentum requires a momentum > 0 and zero dampening");
        return NULL;
    }
    lt_nn_optim *o = optim_new("sgd", KIND_SGD, n, params, opts->lr, opts->weight_decay);
    if (o) {
        o->momentum = opts->momentum;
        o->dampening = opts->dampening;
        o->nesterov = opts->nesterov;
    }
    return o;
}

lt_nn_adamw_opts lt_nn_adamw_defaults(double lr) { return (lt_nn_adamw_opts){lr, 0.9, 0.999, 1e-8, 1e-2}; }

lt_nn_optim *lt_nn_adamw_new(int n, lt_tensor *const *params, const lt_nn_adamw_opts *opts)
{
    if (!opts) {
        lt_set_error("adamw: NULL options");
        return NULL;
    }
    if (!(opts->beta1 >= 0 && opts->beta1 < 1) || !(opts->beta2 >= 0 && opts->beta2 < 1) ||
        !finite_nonneg(opts->eps)) {
        lt_set_error("adamw: betas (%g, %g) must lie in [0, 1) and eps %g be >= 0", opts->beta1, opts->beta2,
                     opts->eps);
        return NULL;
    }
    lt_nn_optim *o = optim_new("adamw", KIND_ADAMW, n, params, opts->lr, opts->weight_decay);
    if (o) {
        o->beta1 = opts->beta1;
        o->beta2 = opts->beta2;
        o->eps = opts->eps;
    }
    return o;
}

/* ------------------------------------------------------------------ */
/* Update kernels, stamped for float and double                        */
/* ------------------------------------------------------------------ */

/* _single_tensor_sgd for one parameter. buf may be NULL (no momentum). */
/* The update kernels split large parameters between threads: every
 * element is updated on its own, so the result is the same for any
 * thread count. */
#define PAR_MIN ((int64_t)1 << 15)

#define SGD_KERNEL(T, NAME)                                                                                  \
    static void NAME(T *p, const T *g, T *buf, int64_t n, double lr, double wd, double mom, double damp,     \
                     bool nesterov, bool first)                                                              \
    {                                                                                                        \
        const T lr_ = (T)lr, wd_ = (T)wd, mom_ = (T)mom, damp1 = (T)(1.0 - damp);                            \
        _Pragma("omp parallel for schedule(static) if (n >= PAR_MIN)")                                       \
        for (int64_t i = 0; i < n; i++) {                                                                    \
            T d = g[i];                                                                                      \
            if (wd != 0)                                                                                     \
                d = d + wd_ * p[i]; /* d_p.add(param, alpha=weight_decay) */                                 \
            if (buf) {                                                                                       \
                if (first)                                                                                   \
                    buf[i] = d; /* buf = clone(d_p): no dampening on the first step */                       \
                else                                                                                         \
                    buf[i] = buf[i] * mom_ + damp1 * d; /* buf.mul_(momentum).add_(d_p, 1-dampening) */      \
                d = nesterov ? d + mom_ * buf[i] : buf[i];                                                   \
            }                                                                                                \
            p[i] = p[i] + (-lr_) * d; /* param.add_(d_p, alpha=-lr) */                                       \
        }                                                                                                    \
    }
SGD_KERNEL(float, sgd_f32)
SGD_KERNEL(double, sgd_f64)

/* _single_tensor_adamw for one parameter at step t (already incremented). */
#define ADAMW_KERNEL(T, NAME)                                                                                \
    static void NAME(T *p, const T *g, T *m, T *v, int64_t n, double lr, double wd, double beta1,            \
                     double beta2, double eps, int64_t t)                                                    \
    {                                                                                                        \
        const T decay = (T)(1.0 - lr * wd), w = (T)(1.0 - beta1), b2 = (T)beta2, c2 = (T)(1.0 - beta2);      \
        const double bc1 = 1.0 - pow(beta1, (double)t), bc2 = 1.0 - pow(beta2, (double)t);                   \
        const T neg_step = (T)(-(lr / bc1)), bc2_sqrt = (T)sqrt(bc2), eps_ = (T)eps;                         \
        _Pragma("omp parallel for schedule(static) if (n >= PAR_MIN)")                                       \
        for (int64_t i = 0; i < n; i++) {                                                                    \
            T gi = g[i];                                                                                     \
            p[i] = p[i] * decay; /* param.mul_(1 - lr * weight_decay) */                                     \
            /* exp_avg.lerp_(grad, 1 - beta1): torch's lerp picks its form by |weight| < 0.5 */              \
            m[i] = w < (T)0.5 ? m[i] + w * (gi - m[i]) : gi - (gi - m[i]) * ((T)1 - w);                      \
            v[i] = v[i] * b2 + c2 * gi * gi; /* exp_avg_sq.mul_(beta2).addcmul_(g, g, 1-beta2) */            \
            T denom = (T)sqrt(v[i]) / bc2_sqrt + eps_;                                                       \
            p[i] = p[i] + neg_step * m[i] / denom; /* param.addcdiv_(exp_avg, denom, -step_size) */          \
        }                                                                                                    \
    }
ADAMW_KERNEL(float, adamw_f32)
ADAMW_KERNEL(double, adamw_f64)

/* ------------------------------------------------------------------ */
/* Step                                                                */
/* ------------------------------------------------------------------ */

/* A new zero state tensor shaped like p, owned by the caller. */
static lt_tensor *new_state(const lt_tensor *p)
{
    size_t mark = lt_frame_push();
    lt_tensor *z = lt_retain(lt_zeros_like(p));
    lt_frame_pop(mark);
    return z;
}

/* Check param i's gradient and make sure its state exists; *g receives a
 * contiguous gradient (frame-owned) or NULL when there is none. */
static int prepare(lt_nn_optim *o, int i, lt_tensor **g)
{
    const char *op = o->kind == KIND_SGD ? "sgd" : "adamw";
    lt_tensor *p = o->params[i], *grad = lt_ag_grad_of(p);
    *g = NULL;
    if (!grad)
        return 0;
    char a[96], b[96];
    if (lt_dtype_of(grad) != lt_dtype_of(p) || !lt__nn_same_shape(grad, p)) {
        lt_set_error("%s: step: parameter %d is %s%s but its gradient is %s%s", op, i, lt_dtype_name(lt_dtype_of(p)),
                     lt_shape_str(p, a, sizeof a), lt_dtype_name(lt_dtype_of(grad)), lt_shape_str(grad, b, sizeof b));
        return -1;
    }
    *g = lt_contiguous(lt_ag_detach(grad));
    bool need1 = o->kind == KIND_ADAMW || o->momentum != 0, need2 = o->kind == KIND_ADAMW;
    if (need1 && !o->s1[i])
        o->s1[i] = new_state(p);
    if (need2 && !o->s2[i])
        o->s2[i] = new_state(p);
    if (!*g || (need1 && !o->s1[i]) || (need2 && !o->s2[i])) {
        lt_set_error("%s: step: parameter %d: out of memory", op, i);
        return -1;
    }
    return 0;
}

static void update(lt_nn_optim *o, int i, const lt_tensor *g)
{
    lt_tensor *p = o->params[i];
    int64_t n = lt_numel(p);
    bool f32 = lt_dtype_of(p) == LT_F32;
    void *s1 = o->s1[i] ? lt_data(o->s1[i]) : NULL, *s2 = o->s2[i] ? lt_data(o->s2[i]) : NULL;
    int64_t t = ++o->pstep[i];
    if (o->kind == KIND_SGD) {
        if (f32)
            sgd_f32(lt_data(p), lt_data(g), s1, n, o->lr, o->wd[i], o->momentum, o->dampening, o->nesterov, t == 1);
        else
            sgd_f64(lt_data(p), lt_data(g), s1, n, o->lr, o->wd[i], o->momentum, o->dampening, o->nesterov, t == 1);
    } else if (f32) {
        adamw_f32(lt_data(p), lt_data(g), s1, s2, n, o->lr, o->wd[i], o->beta1, o->beta2, o->eps, t);
    } else {
        adamw_f64(lt_data(p), lt_data(g), s1, s2, n, o->lr, o->wd[i], o->beta1, o->beta2, o->eps, t);
    }
}

int lt_nn_optim_step(lt_nn_optim *o)
{
    if (!o) {
        lt_set_error("optim_step: NULL optimizer");
        return -1;
    }
    size_t mark = lt_frame_push();
    size_t gsize = sizeof(lt_tensor *) * (size_t)o->n;
    lt_tensor **g = lt_alloc(gsize);
    int rc = g ? 0 : -1;
    for (int i = 0; rc == 0 && i < o->n; i++)
        rc = prepare(o, i, &g[i]);
    for (int i = 0; rc == 0 && i < o->n; i++)
        if (g[i])
            update(o, i, g[i]);
    if (rc == 0)
        o->steps++;
    if (g)
        lt_free(g, gsize);
    lt_frame_pop(mark);
    return rc;
}

void lt_nn_optim_zero_grad(lt_nn_optim *o)
{
    for (int i = 0; o && i < o->n; i++)
        lt_ag_zero_grad(o->params[i]);
}

double lt_nn_optim_lr(const lt_nn_optim *o) { return o ? o->lr : NAN; }

int lt_nn_optim_set_lr(lt_nn_optim *o, double lr)
{
    if (!o || !finite_nonneg(lr)) {
        lt_set_error("optim_set_lr: lr %g must be finite and >= 0 (optimizer %s)", lr, o ? "given" : "NULL");
        return -1;
    }
    o->lr = lr;
    return 0;
}

int lt_nn_optim_set_weight_decay(lt_nn_optim *o, int i, double wd)
{
    if (!o || i < 0 || i >= o->n || !finite_nonneg(wd)) {
        lt_set_error("optim_set_weight_decay: parameter %d (of %d) or weight decay %g invalid", i, o ? o->n : 0, wd);
        return -1;
    }
    o->wd[i] = wd;
    return 0;
}

int64_t lt_nn_optim_step_count(const lt_nn_optim *o) { return o ? o->steps : 0; }

int lt_nn_optim_param_count(const lt_nn_optim *o) { return o ? o->n : 0; }

/* ------------------------------------------------------------------ */
/* State export / import                                               */
/* ------------------------------------------------------------------ */

static lt_tensor *i64_scalar(int64_t v) { return lt_from_data(&v, 0, NULL, LT_I64); }

/* A frame-owned reference to a live buffer. */
static lt_tensor *borrow_ref(lt_tensor *t) { return lt_autorelease(lt_retain(t)); }

int lt_nn_optim_state_export(const lt_nn_optim *o, int cap, const char **names, lt_tensor **tensors)
{
    if (!o || cap < 0 || (cap > 0 && (!names || !tensors))) {
        lt_set_error("optim_state_export: bad arguments (cap %d)", cap);
        return -1;
    }
    int k = 0;
    bool ok = true;
#define EMIT(slot, expr)                                                                                     \
    do {                                                                                                     \
        if (k < cap) {                                                                                       \
            names[k] = slot_name(o, slot);                                                                   \
            ok = ok && (tensors[k] = (expr)) != NULL;                                                        \
        }                                                                                                    \
        k++;                                                                                                 \
    } while (0)
    EMIT(0, i64_scalar(o->steps));
    for (int i = 0; i < o->n; i++) {
        if (o->pstep[i] == 0)
            continue;
        int base = 1 + 3 * i;
        if (o->kind == KIND_SGD) {
            if (o->s1[i])
                EMIT(base, borrow_ref(o->s1[i]));
        } else {
            EMIT(base, borrow_ref(o->s1[i]));
            EMIT(base + 1, borrow_ref(o->s2[i]));
            EMIT(base + 2, i64_scalar(o->pstep[i]));
        }
    }
#undef EMIT
    if (!ok) {
        lt_set_error("optim_state_export: out of memory");
        return -1;
    }
    return k;
}

/* Parse "optim.state.<i>.<field>" into i and a field index (0..2 in the
 * optimizer's slot order), or "optim.step" (field -1). */
static int parse_key(const lt_nn_optim *o, const char *name, int *param, int *field)
{
    if (strcmp(name, "optim.step") == 0) {
        *param = -1;
        *field = -1;
        return 0;
    }
    const char *pre = "optim.state.";
    size_t lp = strlen(pre);
    if (strncmp(name, pre, lp) != 0 || name[lp] < '0' || name[lp] > '9')
        return -1;
    char *end;
    long i = strtol(name + lp, &end, 10);
    if (*end != '.' || i < 0 || i >= o->n)
        return -1;
    for (int k = 0; k < 3; k++)
        if (slot_name(o, 1 + 3 * (int)i + k)[0] && strcmp(name, slot_name(o, 1 + 3 * (int)i + k)) == 0) {
            *param = (int)i;
            *field = k;
            return 0;
        }
    return -1;
}

/* A step count stored as a one-element tensor holding a non-negative
 * integer. */
static int read_count(const lt_tensor *t, int64_t *out)
{
    if (lt_numel(t) != 1)
        return -1;
    double v = lt_item(t);
    if (!(v >= 0 && v <= 9007199254740992.0) || v != floor(v))
        return -1;
    *out = (int64_t)v;
    return 0;
}

/* The imported state before it is committed. */
typedef struct staged {
    lt_tensor **s1, **s2;
    int64_t *pstep;
    bool *seen; /* 3 per parameter */
    int64_t steps;
} staged;

/* Stage one "optim." entry; copies buffers into new owned tensors. */
static int stage_entry(const lt_nn_optim *o, staged *s, const char *name, const lt_tensor *t)
{
    int i, k;
    char a[96], b[96];
    if (parse_key(o, name, &i, &k) < 0 || (o->kind == KIND_SGD && k == 0 && o->momentum == 0)) {
        lt_set_error("optim_state_import: key '%.200s' does not belong to this %s optimizer", name,
                     o->kind == KIND_SGD ? "SGD" : "AdamW");
        return -1;
    }
    if (k < 0) {
        if (read_count(t, &s->steps) == 0)
            return 0;
        lt_set_error("optim_state_import: \"optim.step\" is not a non-negative count");
        return -1;
    }
    if (s->seen[3 * i + k]) {
        lt_set_error("optim_state_import: duplicate key '%.200s'", name);
        return -1;
    }
    s->seen[3 * i + k] = true;
    if (o->kind == KIND_ADAMW && k == 2) {
        if (read_count(t, &s->pstep[i]) < 0 || s->pstep[i] < 1) {
            lt_set_error("optim_state_import: '%.200s' is not a positive count", name);
            return -1;
        }
        return 0;
    }
    const lt_tensor *p = o->params[i];
    if (!lt__nn_same_shape(t, p)) {
        lt_set_error("optim_state_import: '%.200s' is %s but parameter %d is %s", name, lt_shape_str(t, a, sizeof a), i,
                     lt_shape_str(p, b, sizeof b));
        return -1;
    }
    size_t mark = lt_frame_push();
    bool prev = lt_ag_set_grad_enabled(false);
    lt_tensor *c = lt_retain(lt_dtype_of(t) == lt_dtype_of(p) ? lt_clone(t) : lt_to_dtype(t, lt_dtype_of(p)));
    lt_ag_set_grad_enabled(prev);
    lt_frame_pop(mark);
    if (!c)
        return -1;
    lt_tensor **slot = k == 0 ? &s->s1[i] : &s->s2[i];
    *slot = c;
    if (o->kind == KIND_SGD)
        s->pstep[i] = 1; /* a buffer exists: later steps use the momentum rule */
    return 0;
}

static void staged_free(const lt_nn_optim *o, staged *s, bool release)
{
    size_t np = sizeof(void *) * (size_t)o->n;
    for (int i = 0; release && i < o->n; i++) {
        if (s->s1)
            lt_release(s->s1[i]);
        if (s->s2)
            lt_release(s->s2[i]);
    }
    lt_free(s->s1, np);
    lt_free(s->s2, np);
    lt_free(s->pstep, sizeof(int64_t) * (size_t)o->n);
    lt_free(s->seen, (size_t)(3 * o->n));
}

int lt_nn_optim_state_import(lt_nn_optim *o, int n, const char *const *names, lt_tensor *const *tensors)
{
    if (!o || n < 0 || (n > 0 && (!names || !tensors))) {
        lt_set_error("optim_state_import: bad arguments (n %d)", n);
        return -1;
    }
    size_t np = sizeof(void *) * (size_t)o->n;
    staged s = {zalloc(np), zalloc(np), zalloc(sizeof(int64_t) * (size_t)o->n), zalloc((size_t)(3 * o->n)), -1};
    int rc = (s.s1 && s.s2 && s.pstep && s.seen) ? 0 : -1;
    if (rc < 0)
        lt_set_error("optim_state_import: out of memory");
    for (int j = 0; rc == 0 && j < n; j++) {
        if (!names[j] || !tensors[j]) {
            lt_set_error("optim_state_import: entry %d has a NULL name or tensor", j);
            rc = -1;
        } else if (strncmp(names[j], "optim.", 6) == 0) {
            rc = stage_entry(o, &s, names[j], tensors[j]);
        }
    }
    if (rc == 0 && s.steps < 0) {
        lt_set_error("optim_state_import: no \"optim.step\" entry (not an optimizer state)");
        rc = -1;
    }
    for (int i = 0; rc == 0 && o->kind == KIND_ADAMW && i < o->n; i++) {
        int have = s.seen[3 * i] + s.seen[3 * i + 1] + s.seen[3 * i + 2];
        if (have != 0 && have != 3) {
            lt_set_error("optim_state_import: parameter %d has %d of exp_avg, exp_avg_sq and step (all or none)", i,
                         have);
            rc = -1;
        }
    }
    if (rc < 0) {
        staged_free(o, &s, true);
        return -1;
    }
    for (int i = 0; i < o->n; i++) {
        lt_release(o->s1[i]);
        lt_release(o->s2[i]);
        o->s1[i] = s.s1[i];
        o->s2[i] = s.s2[i];
        o->pstep[i] = s.pstep[i];
    }
    o->steps = s.steps;
    staged_free(o, &s, false);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Schedules                                                           */
/* ------------------------------------------------------------------ */

double lt_nn_lr_step(double base_lr, int64_t step, int64_t step_size, double gamma)
{
    if (step < 0 || step_size < 1 || !isfinite(base_lr) || !isfinite(gamma)) {
        lt_set_error("lr_step: need step >= 0 (got %lld) and step_size >= 1 (got %lld), finite lr and gamma",
                     (long long)step, (long long)step_size);
        return NAN;
    }
    return base_lr * pow(gamma, (double)(step / step_size));
}

double lt_nn_lr_cosine_warmup(double base_lr, int64_t step, int64_t total_steps, int64_t warmup_steps,
                              double warmup_start_factor, double eta_min)
{
    if (step < 0 || warmup_steps < 0 || warmup_steps >= total_steps || !(warmup_start_factor >= 0) ||
        warmup_start_factor > 1 || !isfinite(base_lr) || !isfinite(eta_min)) {
        lt_set_error("lr_cosine_warmup: need step >= 0 (got %lld), 0 <= warmup (%lld) < total (%lld), "
                     "0 <= start factor (%g) <= 1",
                     (long long)step, (long long)warmup_steps, (long long)total_steps, warmup_start_factor);
        return NAN;
    }
    if (step < warmup_steps) /* LinearLR(start_factor=f, end_factor=1, total_iters=W) */
        return base_lr * (warmup_start_factor + (1.0 - warmup_start_factor) * (double)step / (double)warmup_steps);
    if (step >= total_steps)
        return eta_min;
    /* CosineAnnealingLR(T_max = T - W, eta_min), closed form */
    double t = (double)(step - warmup_steps), tmax = (double)(total_steps - warmup_steps);
    return eta_min + (base_lr - eta_min) * (1.0 + cos(M_PI * t / tmax)) / 2.0;
}

/* ------------------------------------------------------------------ */
/* Gradient clipping                                                   */
/* ------------------------------------------------------------------ */

static double sum_squares(const lt_tensor *g)
{
    size_t mark = lt_frame_push();
    lt_tensor *c = lt_contiguous(lt_ag_detach(g));
    double s = 0;
    int64_t n = c ? lt_numel(c) : 0;
    if (!c)
        s = NAN;
    else if (lt_dtype_of(c) == LT_F32)
        for (int64_t i = 0; i < n; i++) {
            double v = ((const float *)lt_data(c))[i];
            s += v * v;
        }
    else
        for (int64_t i = 0; i < n; i++) {
            double v = ((const double *)lt_data(c))[i];
            s += v * v;
        }
    lt_frame_pop(mark);
    return s;
}

double lt_nn_clip_grad_norm(int n, lt_tensor *const *params, double max_norm)
{
    if (n < 0 || (n > 0 && !params) || !(max_norm > 0)) {
        lt_set_error("clip_grad_norm: need n >= 0 (got %d), a parameter array and max_norm > 0 (got %g)", n, max_norm);
        return -1;
    }
    double total = 0;
    for (int i = 0; i < n; i++) {
        lt_tensor *g = params[i] ? lt_ag_grad_of(params[i]) : NULL;
        if (g && lt_dtype_of(g) != LT_F32 && lt_dtype_of(g) != LT_F64) {
            lt_set_error("clip_grad_norm: gradient of parameter %d is %s", i, lt_dtype_name(lt_dtype_of(g)));
            return -1;
        }
        if (g)
            total += sum_squares(g);
    }
    total = sqrt(total);
    double coef = max_norm / (total + 1e-6);
    if (!(coef < 1.0))
        return total;
    /* Scale every gradient first, then install them all: a failure
     * (out of memory) leaves every .grad as it was. */
    size_t mark = lt_frame_push();
    bool prev = lt_ag_set_grad_enabled(false);
    size_t ssize = sizeof(lt_tensor *) * (size_t)n;
    lt_tensor **scaled = lt_alloc(ssize);
    int rc = scaled ? 0 : -1;
    for (int i = 0; rc == 0 && i < n; i++) {
        lt_tensor *g = params[i] ? lt_ag_grad_of(params[i]) : NULL;
        scaled[i] = g ? lt_mul_scalar(g, coef) : NULL;
        rc = (g && !scaled[i]) ? -1 : 0;
    }
    for (int i = 0; rc == 0 && i < n; i++)
        if (scaled[i])
            lt_ag_set_grad(params[i], scaled[i]);
    lt_ag_set_grad_enabled(prev);
    if (scaled)
        lt_free(scaled, ssize);
    lt_frame_pop(mark);
    return rc == 0 ? total : -1;
}
