/*
 * attention.c: multi-head self-attention (functional and the timm-style
 * Attention module) and its registry entries.
 *
 * Follows timm's vision_transformer.Attention.forward:
 *
 *   qkv = linear(x, Wqkv, bqkv).reshape(B, T, 3, h, d).permute(2, 0, 3, 1, 4)
 *   q, k, v = qkv[0], qkv[1], qkv[2]                  each (B, h, T, d)
 *   a = softmax(q @ k^T * d^-1/2, -1)                  (B, h, T, T)
 *   x = (a @ v).transpose(1, 2).reshape(B, T, D)
 *   y = linear(x, Wproj, bproj)
 *
 * Everything is a differentiable op (linear = matmul + add, views, matmul,
 * softmax), so the backward and double backward come from those ops'
 * formulas. The q/k/v views go to BLAS without copies: their matrices have
 * unit column stride (NoTrans) and k^T unit row stride (Trans).
 */
#include "nn_internal.h"

#include <math.h>
#include <string.h>

lt_tensor *lt_nn_mha_ex(const lt_tensor *x, const lt_tensor *qkv_w, const lt_tensor *qkv_b, const lt_tensor *proj_w,
                        const lt_tensor *proj_b, int heads, lt_tensor **attn)
{
    if (!x || !qkv_w || !proj_w || lt_nn_register_ops() < 0)
        return NULL;
    char bx[96], bw[96], bp[96];
    int64_t D = lt_ndim(x) == 3 ? lt_size(x, 2) : -1;
    if (D < 1 || heads < 1 || D % heads != 0 || lt_ndim(qkv_w) != 2 || lt_size(qkv_w, 0) != 3 * D ||
        lt_size(qkv_w, 1) != D || lt_ndim(proj_w) != 2 || lt_size(proj_w, 0) != D || lt_size(proj_w, 1) != D) {
        lt_set_error("mha: input %s (B,T,D), qkv weight %s (3D,D), proj weight %s (D,D) and %d heads do not match",
                     lt_shape_str(x, bx, sizeof bx), lt_shape_str(qkv_w, bw, sizeof bw),
                     lt_shape_str(proj_w, bp, sizeof bp), heads);
        return NULL;
    }
    int64_t B = lt_size(x, 0), T = lt_size(x, 1), d = D / heads;
    lt_tensor *qkv = lt_nn_linear(x, qkv_w, qkv_b); /* (B,T,3D) */
    qkv = lt_permute(lt_reshape(qkv, 5, (int64_t[]){B, T, 3, heads, d}), (int[]){2, 0, 3, 1, 4});
    lt_tensor *q = lt_select(qkv, 0, 0), *k = lt_select(qkv, 0, 1), *v = lt_select(qkv, 0, 2);
    lt_tensor *s = lt_mul_scalar(lt_matmul(q, lt_transpose(k, 2, 3)), 1.0 / sqrt((double)d));
    lt_tensor *a = lt_softmax(s, 3);                                         /* (B,h,T,T) */
    lt_tensor *o = lt_transpose(lt_matmul(a, v), 1, 2);                      /* (B,T,h,d) */
    lt_tensor *y = lt_nn_linear(lt_reshape(o, 3, (int64_t[]){B, T, D}), proj_w, proj_b);
    if (y && attn)
        *attn = a;
    return y;
}

lt_tensor *lt_nn_mha(const lt_tensor *x, const lt_tensor *qkv_w, const lt_tensor *qkv_b, const lt_tensor *proj_w,
                     const lt_tensor *proj_b, int heads)
{
    return lt_nn_mha_ex(x, qkv_w, qkv_b, proj_w, proj_b, heads, NULL);
}

/* ---- the Attention module ---- */

typedef struct attn_impl {
    lt_tensor *qkv_w, *qkv_b, *proj_w, *proj_b; /* borrowed from the children */
    int heads;
} attn_impl;

static void attn_impl_free(void *p) { lt_free(p, sizeof(attn_impl)); }

static lt_tensor *attn_forward(lt_nn_module *m, const lt_tensor *x)
{
    attn_impl *a = lt_nn_module_impl(m);
    return lt_nn_mha(x, a->qkv_w, a->qkv_b, a->proj_w, a->proj_b, a->heads);
}

lt_nn_module *lt_nn_attention_new(int64_t dim, int heads, bool qkv_bias, lt_dtype dt, lt_rng *r)
{
    if (dim < 1 || heads < 1 || dim % heads != 0) {
        lt_set_error("Attention: dim %lld is not a positive multiple of %d heads", (long long)dim, heads);
        return NULL;
    }
    attn_impl *a = lt_alloc(sizeof *a);
    if (!a)
        return NULL;
    *a = (attn_impl){.heads = heads};
    lt_nn_module *m = lt_nn_module_new("Attention", attn_forward, a, attn_impl_free);
    if (!m)
        return NULL;
    lt_nn_module *qkv = lt_nn_module_add_child(m, "qkv", lt_nn_linear_new(dim, 3 * dim, qkv_bias, dt, r));
    lt_nn_module *proj = qkv ? lt_nn_module_add_child(m, "proj", lt_nn_linear_new(dim, dim, true, dt, r)) : NULL;
    if (!proj) {
        lt_nn_module_free(m);
        return NULL;
    }
    a->qkv_w = lt_nn_module_get(qkv, "weight");
    a->qkv_b = qkv_bias ? lt_nn_module_get(qkv, "bias") : NULL;
    a->proj_w = lt_nn_module_get(proj, "weight");
    a->proj_b = lt_nn_module_get(proj, "bias");
    return m;
}

/* ---- registry entries ---- */

static lt_tensor *leaf(lt_tensor *t) { return lt_ag_set_requires_grad(t, true); }

/* {B, T, D, heads}; variant 2 feeds a non-contiguous x (a transposed view). */
static const int64_t mha_cfgs[][4] = {{2, 3, 4, 1}, {2, 3, 6, 3}, {1, 4, 6, 3}};

static int s_mha(int v, lt_rng *r, lt_tensor **in)
{
    const int64_t *c = mha_cfgs[v];
    int64_t B = c[0], T = c[1], D = c[2];
    if (v == 2)
        in[0] = lt_transpose(lt__nn_rnd(r, 3, (int64_t[]){B, D, T}, -1, 1), 1, 2);
    else
        in[0] = lt__nn_rnd(r, 3, (int64_t[]){B, T, D}, -1, 1);
    in[0] = leaf(in[0]);
    in[1] = leaf(lt__nn_rnd(r, 2, (int64_t[]){3 * D, D}, -0.7, 0.7));
    in[2] = leaf(lt__nn_rnd(r, 1, (int64_t[]){3 * D}, -0.5, 0.5));
    in[3] = leaf(lt__nn_rnd(r, 2, (int64_t[]){D, D}, -0.7, 0.7));
    in[4] = leaf(lt__nn_rnd(r, 1, (int64_t[]){D}, -0.5, 0.5));
    in[5] = lt_from_data(&c[3], 1, (int64_t[]){1}, LT_I64);
    return 6;
}

static lt_tensor *f_mha(void *ud, int n, lt_tensor *const *in)
{
    (void)ud;
    (void)n;
    return lt_nn_mha(in[0], in[1], in[2], in[3], in[4], (int)((const int64_t *)lt_data(in[5]))[0]);
}

static const lt_ag_opinfo attention_ops[] = {
    {"mha", 3, s_mha, f_mha},
};

const lt_ag_opinfo *lt__nn_attention_ops(int *n)
{
    *n = (int)(sizeof attention_ops / sizeof attention_ops[0]);
    return attention_ops;
}
