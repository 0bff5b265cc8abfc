/*
 * vit.c: the Vision Transformer as timm builds it
 * (timm/models/vision_transformer.py: VisionTransformer, Block, Attention,
 * Mlp, and timm/layers/patch_embed.py: PatchEmbed), with class token,
 * learned position embedding, global_pool 'token', no dropout, no layer
 * scale, so that state_dict keys, order and shapes are timm's.
 *
 *   x = patch_embed.proj(img)                  conv, kernel = stride = patch
 *   x = x.flatten(2).transpose(1, 2)           (B, N, D)
 *   x = cat(cls_token.expand(B, -1, -1), x) + pos_embed   (B, 1+N, D)
 *   x = blocks(x)                              pre-norm, see below
 *   x = norm(x)
 *   logits = head(x[:, 0])
 *
 * Block: x = x + attn(norm1(x)); x = x + mlp.fc2(gelu(mlp.fc1(norm2(x))))
 * with the exact (erf) GELU, nn.GELU's default.
 *
 * Init (init_weights with mode ''): trunc_normal_(std .02) on pos_embed,
 * cls_token and every Linear weight, zeros on Linear biases, LayerNorm 1
 * and 0, patch_embed.proj keeps nn.Conv2d's default. (timm >= 0.9 draws
 * cls_token from normal(std 1e-6) instead; earlier releases and the
 * original ViT code use trunc_normal .02 as here.)
 */
#include "nn.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- Mlp and Block ---- */

typedef struct block_impl {
    lt_nn_module *norm1, *attn, *norm2, *fc1, *fc2; /* borrowed */
} block_impl;

static void block_impl_free(void *p) { lt_free(p, sizeof(block_impl)); }

static lt_tensor *block_forward(lt_nn_module *m, const lt_tensor *x)
{
    block_impl *b = lt_nn_module_impl(m);
    lt_tensor *h = lt_add(x, lt_nn_module_forward(b->attn, lt_nn_module_forward(b->norm1, x)));
    lt_tensor *u = lt_gelu(lt_nn_module_forward(b->fc1, lt_nn_module_forward(b->norm2, h)), false);
    return lt_add(h, lt_nn_module_forward(b->fc2, u));
}

static lt_tensor *mlp_forward(lt_nn_module *m, const lt_tensor *x)
{
    lt_nn_module *fc1 = lt_nn_module_child_at(m, 0, NULL), *fc2 = lt_nn_module_child_at(m, 1, NULL);
    return lt_nn_module_forward(fc2, lt_gelu(lt_nn_module_forward(fc1, x), false));
}

static lt_nn_module *block_new(const lt_nn_vit_config *c, lt_rng *r)
{
    block_impl *b = lt_alloc(sizeof *b);
    if (!b)
        return NULL;
    *b = (block_impl){0};
    lt_nn_module *m = lt_nn_module_new("Block", block_forward, b, block_impl_free);
    if (!m)
        return NULL;
    int64_t hidden = (int64_t)(c->dim * c->mlp_ratio);
    lt_nn_module *mlp = NULL;
    bool ok = (b->norm1 = lt_nn_module_add_child(m, "norm1", lt_nn_layer_norm_new(c->dim, c->ln_eps, c->dtype))) &&
              (b->attn = lt_nn_module_add_child(m, "attn",
                                                lt_nn_attention_new(c->dim, c->heads, c->qkv_bias, c->dtype, r))) &&
              (b->norm2 = lt_nn_module_add_child(m, "norm2", lt_nn_layer_norm_new(c->dim, c->ln_eps, c->dtype))) &&
              (mlp = lt_nn_module_add_child(m, "mlp", lt_nn_module_new("Mlp", mlp_forward, NULL, NULL))) &&
              (b->fc1 = lt_nn_module_add_child(mlp, "fc1", lt_nn_linear_new(c->dim, hidden, true, c->dtype, r))) &&
              (b->fc2 = lt_nn_module_add_child(mlp, "fc2", lt_nn_linear_new(hidden, c->dim, true, c->dtype, r)));
    if (!ok) {
        lt_nn_module_free(m);
        return NULL;
    }
    return m;
}

/* ---- VisionTransformer ---- */

typedef struct vit_impl {
    lt_nn_vit_config cfg;
    lt_tensor *cls_token, *pos_embed;                /* borrowed params */
    lt_nn_module *proj, *blocks, *norm, *head;      /* borrowed children */
} vit_impl;

static void vit_impl_free(void *p) { lt_free(p, sizeof(vit_impl)); }

static lt_tensor *vit_forward(lt_nn_module *m, const lt_tensor *x);

lt_nn_vit_config lt_nn_vit_config_make(int64_t img_size, int64_t patch, int64_t num_classes)
{
    return (lt_nn_vit_config){.img_size = img_size, .patch = patch, .in_channels = 3, .dim = 192, .depth = 12,
                              .heads = 3, .mlp_ratio = 4.0, .num_classes = num_classes, .qkv_bias = true,
                              .ln_eps = 1e-6, .dtype = LT_F32};
}

const lt_nn_vit_config *lt_nn_vit_config_of(const lt_nn_module *m)
{
    if (!m || strcmp(lt_nn_module_type(m), "VisionTransformer") != 0)
        return NULL;
    return &((const vit_impl *)lt_nn_module_impl(m))->cfg;
}

static int check_config(const lt_nn_vit_config *c)
{
    bool ok = c && c->img_size >= 1 && c->patch >= 1 && c->img_size % c->patch == 0 && c->in_channels >= 1 &&
              c->dim >= 1 && c->depth >= 0 && c->depth <= 10000 && c->heads >= 1 && c->dim % c->heads == 0 &&
              c->mlp_ratio > 0 && (int64_t)(c->dim * c->mlp_ratio) >= 1 && c->num_classes >= 1 &&
              c->ln_eps >= 0 && (c->dtype == LT_F32 || c->dtype == LT_F64);
    if (!ok)
        lt_set_error("vit_new: bad config (need img_size a multiple of patch, dim a multiple of heads, positive "
                     "sizes and mlp_ratio, f32/f64)");
    return ok ? 0 : -1;
}

/* timm's init_weights_vit_timm on every Linear. */
static int init_linear(void *ud, lt_nn_module *mod, const char *path)
{
    (void)path;
    if (strcmp(lt_nn_module_type(mod), "Linear") != 0)
        return 0;
    if (lt_nn_init_trunc_normal_(lt_nn_module_get(mod, "weight"), ud, 0.0, 0.02, -2.0, 2.0) < 0)
        return -1;
    return lt_nn_module_has(mod, "bias") ? lt_nn_init_constant_(lt_nn_module_get(mod, "bias"), 0.0) : 0;
}

lt_nn_module *lt_nn_vit_new(const lt_nn_vit_config *cfg, lt_rng *r)
{
    if (check_config(cfg) < 0)
        return NULL;
    if (!r) {
        lt_set_error("vit_new: no generator");
        return NULL;
    }
    vit_impl *v = lt_alloc(sizeof *v);
    if (!v)
        return NULL;
    *v = (vit_impl){.cfg = *cfg};
    lt_nn_module *m = lt_nn_module_new("VisionTransformer", vit_forward, v, vit_impl_free);
    if (!m)
        return NULL;
    const lt_nn_vit_config *c = cfg;
    int64_t n = (c->img_size / c->patch) * (c->img_size / c->patch);
    size_t mark = lt_frame_push();
    lt_tensor *cls = lt_zeros(3, (int64_t[]){1, 1, c->dim}, c->dtype);
    lt_tensor *pos = lt_zeros(3, (int64_t[]){1, 1 + n, c->dim}, c->dtype);
    bool ok = (v->cls_token = lt_nn_module_add_param(m, "cls_token", cls)) &&
              (v->pos_embed = lt_nn_module_add_param(m, "pos_embed", pos));
    lt_frame_pop(mark);
    lt_nn_module *pe = NULL;
    ok = ok && (pe = lt_nn_module_add_child(m, "patch_embed", lt_nn_module_new("PatchEmbed", NULL, NULL, NULL))) &&
         (v->proj = lt_nn_module_add_child(pe, "proj", lt_nn_conv2d_new(c->in_channels, c->dim, (int)c->patch,
                                                                          (int)c->patch, 0, true, c->dtype, r))) &&
         (v->blocks = lt_nn_module_add_child(m, "blocks", lt_nn_sequential_new()));
    for (int i = 0; ok && i < c->depth; i++) {
        char name[16];
        snprintf(name, sizeof name, "%d", i);
        ok = lt_nn_module_add_child(v->blocks, name, block_new(c, r)) != NULL;
    }
    ok = ok && (v->norm = lt_nn_module_add_child(m, "norm", lt_nn_layer_norm_new(c->dim, c->ln_eps, c->dtype))) &&
         (v->head = lt_nn_module_add_child(m, "head", lt_nn_linear_new(c->dim, c->num_classes, true, c->dtype, r)));
    ok = ok && lt_nn_init_trunc_normal_(v->pos_embed, r, 0.0, 0.02, -2.0, 2.0) == 0 &&
         lt_nn_init_trunc_normal_(v->cls_token, r, 0.0, 0.02, -2.0, 2.0) == 0 &&
         lt_nn_module_apply(m, init_linear, r) == 0;
    if (!ok) {
        lt_nn_module_free(m);
        return NULL;
    }
    return m;
}

lt_tensor *lt_nn_vit_forward_ex(lt_nn_module *m, const lt_tensor *x, lt_tensor **features, lt_tensor **tokens)
{
    const lt_nn_vit_config *c = lt_nn_vit_config_of(m);
    if (!c || !x) {
        if (!c && m)
            lt_set_error("vit_forward: a %s is not a VisionTransformer", lt_nn_module_type(m));
        return NULL;
    }
    char b[96];
    if (lt_ndim(x) != 4 || lt_size(x, 1) != c->in_channels || lt_size(x, 2) != c->img_size ||
        lt_size(x, 3) != c->img_size || lt_dtype_of(x) != c->dtype) {
        lt_set_error("vit_forward: input %s%s, model takes (B,%lld,%lld,%lld) %s", lt_dtype_name(lt_dtype_of(x)),
                     lt_shape_str(x, b, sizeof b), (long long)c->in_channels, (long long)c->img_size,
                     (long long)c->img_size, lt_dtype_name(c->dtype));
        return NULL;
    }
    vit_impl *v = lt_nn_module_impl(m);
    int64_t B = lt_size(x, 0);
    lt_tensor *t = lt_transpose(lt_flatten(lt_nn_module_forward(v->proj, x), 2, 3), 1, 2); /* (B,N,D) */
    lt_tensor *cls = lt_expand(v->cls_token, 3, (int64_t[]){B, 1, c->dim});
    t = lt_add(lt_cat(2, (lt_tensor *const[]){cls, t}, 1), v->pos_embed);               /* (B,1+N,D) */
    t = lt_nn_module_forward(v->blocks, t);
    lt_tensor *f = lt_select(lt_nn_module_forward(v->norm, t), 1, 0);                   /* (B,D) */
    lt_tensor *y = lt_nn_module_forward(v->head, f);
    if (y && features)
        *features = f;
    if (y && tokens)
        *tokens = t;
    return y;
}

static lt_tensor *vit_forward(lt_nn_module *m, const lt_tensor *x) { return lt_nn_vit_forward_ex(m, x, NULL, NULL); }
