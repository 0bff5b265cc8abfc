/*
 * resnet.c: ResNet with BasicBlocks, built as torchvision.models.resnet
 * builds resnet18 (torchvision/models/resnet.py), so that state_dict keys,
 * their order and their shapes are torchvision's.
 *
 *   conv1 (7x7 s2 p3, or 3x3 s1 p1 for the small stem), bn1, relu,
 *   maxpool 3 s2 p1 (imagenet stem only),
 *   layer1..layer4: blocks[i] BasicBlocks of width w << i, the first block
 *     of layers 2..4 with stride 2,
 *   avgpool (adaptive 1x1), flatten, fc.
 *
 * BasicBlock (expansion 1):
 *   out = relu(bn1(conv1(x)))          conv1 3x3, stride s, no bias
 *   out = bn2(conv2(out))              conv2 3x3, stride 1, no bias
 *   out = relu(out + downsample(x))    downsample = Sequential(conv 1x1 s,
 *                                      no bias; BatchNorm2d) when s != 1 or
 *                                      the width changes, else identity
 *
 * Init (ResNet.__init__): kaiming_normal_(mode='fan_out',
 * nonlinearity='relu') on every conv weight, BN weight 1 and bias 0, fc
 * keeps nn.Linear's default. zero_init_residual is torchvision's False.
 */
#include "nn.h"
#include "nn_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- BasicBlock ---- */

typedef struct block_impl {
    lt_nn_module *conv1, *bn1, *conv2, *bn2, *downsample; /* borrowed children; downsample may be NULL */
} block_impl;

static void block_impl_free(void *p) { lt_free(p, sizeof(block_impl)); }

static lt_tensor *block_forward(lt_nn_module *m, const lt_tensor *x)
{
    block_impl *b = lt_nn_module_impl(m);
    /* relu(bn1(conv1 x)), then relu(bn2(conv2 out) + identity): batch norm,
     * add and ReLU as one pass in eval mode without a graph (inference). */
    lt_tensor *out = lt__nn_bn_act(b->bn1, lt_nn_module_forward(b->conv1, x), NULL, true);
    const lt_tensor *identity = b->downsample ? lt_nn_module_forward(b->downsample, x) : x;
    return lt__nn_bn_act(b->bn2, lt_nn_module_forward(b->conv2, out), identity, true);
}

static lt_nn_module *block_new(int64_t inplanes, int64_t planes, int stride, lt_dtype dt, lt_rng *r)
{
    block_impl *b = lt_alloc(sizeof *b);
    if (!b)
        return NULL;
    *b = (block_impl){0};
    lt_nn_module *m = lt_nn_module_new("BasicBlock", block_forward, b, block_impl_free);
    if (!m)
        return NULL;
    bool ok = (b->conv1 = lt_nn_module_add_child(m, "conv1",
                                                 lt_nn_conv2d_new(inplanes, planes, 3, stride, 1, false, dt, r))) &&
              (b->bn1 = lt_nn_module_add_child(m, "bn1", lt_nn_batch_norm2d_new(planes, dt))) &&
              (b->conv2 = lt_nn_module_add_child(m, "conv2",
                                                 lt_nn_conv2d_new(planes, planes, 3, 1, 1, false, dt, r))) &&
              (b->bn2 = lt_nn_module_add_child(m, "bn2", lt_nn_batch_norm2d_new(planes, dt)));
    if (ok && (stride != 1 || inplanes != planes)) {
        lt_nn_module *ds = lt_nn_module_add_child(m, "downsample", lt_nn_sequential_new());
        ok = ds && lt_nn_module_add_child(ds, "0", lt_nn_conv2d_new(inplanes, planes, 1, stride, 0, false, dt, r)) &&
             lt_nn_module_add_child(ds, "1", lt_nn_batch_norm2d_new(planes, dt));
        b->downsample = ds;
    }
    if (!ok) {
        lt_nn_module_free(m);
        return NULL;
    }
    return m;
}

/* ---- ResNet ---- */

typedef struct resnet_impl {
    lt_nn_resnet_config cfg;
    lt_nn_module *conv1, *bn1, *layers[4], *fc; /* borrowed children */
} resnet_impl;

static void resnet_impl_free(void *p) { lt_free(p, sizeof(resnet_impl)); }

static lt_tensor *resnet_forward(lt_nn_module *m, const lt_tensor *x);

lt_nn_resnet_config lt_nn_resnet18_config(int64_t num_classes, lt_nn_resnet_stem stem)
{
    return (lt_nn_resnet_config){.stem = stem, .num_classes = num_classes, .in_channels = 3, .width = 64,
                                 .blocks = {2, 2, 2, 2}, .dtype = LT_F32};
}

const lt_nn_resnet_config *lt_nn_resnet_config_of(const lt_nn_module *m)
{
    if (!m || strcmp(lt_nn_module_type(m), "ResNet") != 0)
        return NULL;
    return &((const resnet_impl *)lt_nn_module_impl(m))->cfg;
}

static int init_conv(void *ud, lt_nn_module *mod, const char *path)
{
    (void)path;
    if (strcmp(lt_nn_module_type(mod), "Conv2d") != 0)
        return 0;
    return lt_nn_init_kaiming_normal_(lt_nn_module_get(mod, "weight"), ud, true, sqrt(2.0));
}

static int check_config(const lt_nn_resnet_config *c)
{
    bool ok = c && (c->stem == LT_NN_STEM_IMAGENET || c->stem == LT_NN_STEM_SMALL) && c->num_classes >= 1 &&
              c->in_channels >= 1 && c->width >= 1 && c->width <= ((int64_t)1 << 40) &&
              (c->dtype == LT_F32 || c->dtype == LT_F64);
    for (int i = 0; ok && i < 4; i++)
        ok = c->blocks[i] >= 1 && c->blocks[i] <= 1000;
    if (!ok)
        lt_set_error("resnet_new: bad config (need a known stem, classes, channels, width and blocks >= 1, "
                     "f32/f64)");
    return ok ? 0 : -1;
}

lt_nn_module *lt_nn_resnet_new(const lt_nn_resnet_config *cfg, lt_rng *r)
{
    if (check_config(cfg) < 0)
        return NULL;
    if (!r) {
        lt_set_error("resnet_new: no generator");
        return NULL;
    }
    resnet_impl *n = lt_alloc(sizeof *n);
    if (!n)
        return NULL;
    *n = (resnet_impl){.cfg = *cfg};
    lt_nn_module *m = lt_nn_module_new("ResNet", resnet_forward, n, resnet_impl_free);
    if (!m)
        return NULL;
    lt_dtype dt = cfg->dtype;
    int64_t w = cfg->width;
    bool big = cfg->stem == LT_NN_STEM_IMAGENET;
    lt_nn_module *stem = lt_nn_conv2d_new(cfg->in_channels, w, big ? 7 : 3, big ? 2 : 1, big ? 3 : 1, false, dt, r);
    bool ok = (n->conv1 = lt_nn_module_add_child(m, "conv1", stem)) &&
              (n->bn1 = lt_nn_module_add_child(m, "bn1", lt_nn_batch_norm2d_new(w, dt)));
    int64_t inplanes = w;
    for (int i = 0; ok && i < 4; i++) {
        char name[8] = "layer1";
        name[5] = (char)('1' + i);
        lt_nn_module *layer = n->layers[i] = lt_nn_module_add_child(m, name, lt_nn_sequential_new());
        int64_t planes = w << i;
        for (int k = 0; ok && k < cfg->blocks[i]; k++) {
            char bname[16];
            snprintf(bname, sizeof bname, "%d", k);
            ok = layer && lt_nn_module_add_child(layer, bname,
                                                 block_new(inplanes, planes, (k == 0 && i > 0) ? 2 : 1, dt, r));
            inplanes = planes;
        }
        ok = ok && layer;
    }
    ok = ok && (n->fc = lt_nn_module_add_child(m, "fc", lt_nn_linear_new(inplanes, cfg->num_classes, true, dt, r)));
    /* BatchNorm2d starts at weight 1, bias 0 already; the convs get kaiming. */
    if (!ok || lt_nn_module_apply(m, init_conv, r) != 0) {
        lt_nn_module_free(m);
        return NULL;
    }
    return m;
}

lt_tensor *lt_nn_resnet_forward_ex(lt_nn_module *m, const lt_tensor *x, lt_tensor **features, lt_tensor **layer4)
{
    const lt_nn_resnet_config *cfg = lt_nn_resnet_config_of(m);
    if (!cfg || !x) {
        if (!cfg && m)
            lt_set_error("resnet_forward: a %s is not a ResNet", lt_nn_module_type(m));
        return NULL;
    }
    char b[96];
    if (lt_ndim(x) != 4 || lt_size(x, 1) != cfg->in_channels || lt_dtype_of(x) != cfg->dtype) {
        lt_set_error("resnet_forward: input %s%s, model takes (N,%lld,H,W) %s", lt_dtype_name(lt_dtype_of(x)),
                     lt_shape_str(x, b, sizeof b), (long long)cfg->in_channels, lt_dtype_name(cfg->dtype));
        return NULL;
    }
    resnet_impl *n = lt_nn_module_impl(m);
    lt_tensor *h = lt__nn_bn_act(n->bn1, lt_nn_module_forward(n->conv1, x), NULL, true);
    if (cfg->stem == LT_NN_STEM_IMAGENET)
        h = lt_nn_max_pool2d(h, 3, 2, 1);
    for (int i = 0; i < 4; i++)
        h = lt_nn_module_forward(n->layers[i], h);
    lt_tensor *f = lt_flatten(lt_nn_adaptive_avg_pool2d(h, 1, 1), 1, 3);
    lt_tensor *y = lt_nn_module_forward(n->fc, f);
    if (y && features)
        *features = f;
    if (y && layer4)
        *layer4 = h;
    return y;
}

static lt_tensor *resnet_forward(lt_nn_module *m, const lt_tensor *x)
{
    return lt_nn_resnet_forward_ex(m, x, NULL, NULL);
}
