/*
 * test_models.c: ResNet-18 and ViT built as torchvision / timm build them
 * (state_dict keys, order, shapes, init), their forward passes and feature
 * outputs, and whole-model double backprop: the parameter gradient of the
 * RRR input-gradient penalty against finite differences of the penalty.
 */
#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libtensor/autograd.h>
#include <libtensor/nn.h>
#include <libtensor/tensor.h>

#define FRAME_BEGIN size_t mark_ = lt_frame_push()
#define FRAME_END lt_frame_pop(mark_)
#define SH(...) (int64_t[]){__VA_ARGS__}

typedef struct key_shape {
    const char *name;
    int ndim;
    int64_t shape[4];
} key_shape;

/* torchvision.models.resnet18().state_dict(): every key with its shape, in
 * order (122 = 62 parameters + 20 BatchNorms x 3 buffers): conv1/bn1; per
 * BasicBlock conv1, bn1, conv2, bn2; the first block of layer2..4 adds
 * downsample.0 (1x1 conv) and downsample.1 (BN); fc. Checked line by line
 * against the state_dict of Debian's torchvision 0.14.1. */
static const key_shape resnet18_keys[] = {
    {"conv1.weight", 4, {64, 3, 7, 7}},
    {"bn1.weight", 1, {64}},
    {"bn1.bias", 1, {64}},
    {"bn1.running_mean", 1, {64}},
    {"bn1.running_var", 1, {64}},
    {"bn1.num_batches_tracked", 0, {0}},
    {"layer1.0.conv1.weight", 4, {64, 64, 3, 3}},
    {"layer1.0.bn1.weight", 1, {64}},
    {"layer1.0.bn1.bias", 1, {64}},
    {"layer1.0.bn1.running_mean", 1, {64}},
    {"layer1.0.bn1.running_var", 1, {64}},
    {"layer1.0.bn1.num_batches_tracked", 0, {0}},
    {"layer1.0.conv2.weight", 4, {64, 64, 3, 3}},
    {"layer1.0.bn2.weight", 1, {64}},
    {"layer1.0.bn2.bias", 1, {64}},
    {"layer1.0.bn2.running_mean", 1, {64}},
    {"layer1.0.bn2.running_var", 1, {64}},
    {"layer1.0.bn2.num_batches_tracked", 0, {0}},
    {"layer1.1.conv1.weight", 4, {64, 64, 3, 3}},
    {"layer1.1.bn1.weight", 1, {64}},
    {"layer1.1.bn1.bias", 1, {64}},
    {"layer1.1.bn1.running_mean", 1, {64}},
    {"layer1.1.bn1.running_var", 1, {64}},
    {"layer1.1.bn1.num_batches_tracked", 0, {0}},
    {"layer1.1.conv2.weight", 4, {64, 64, 3, 3}},
    {"layer1.1.bn2.weight", 1, {64}},
    {"layer1.1.bn2.bias", 1, {64}},
    {"layer1.1.bn2.running_mean", 1, {64}},
    {"layer1.1.bn2.running_var", 1, {64}},
    {"layer1.1.bn2.num_batches_tracked", 0, {0}},
    {"layer2.0.conv1.weight", 4, {128, 64, 3, 3}},
    {"layer2.0.bn1.weight", 1, {128}},
    {"layer2.0.bn1.bias", 1, {128}},
    {"layer2.0.bn1.running_mean", 1, {128}},
    {"layer2.0.bn1.running_var", 1, {128}},
    {"layer2.0.bn1.num_batches_tracked", 0, {0}},
    {"layer2.0.conv2.weight", 4, {128, 128, 3, 3}},
    {"layer2.0.bn2.weight", 1, {128}},
    {"layer2.0.bn2.bias", 1, {128}},
    {"layer2.0.bn2.running_mean", 1, {128}},
    {"layer2.0.bn2.running_var", 1, {128}},
    {"layer2.0.bn2.num_batches_tracked", 0, {0}},
    {"layer2.0.downsample.0.weight", 4, {128, 64, 1, 1}},
    {"layer2.0.downsample.1.weight", 1, {128}},
    {"layer2.0.downsample.1.bias", 1, {128}},
    {"layer2.0.downsample.1.running_mean", 1, {128}},
    {"layer2.0.downsample.1.running_var", 1, {128}},
    {"layer2.0.downsample.1.num_batches_tracked", 0, {0}},
    {"layer2.1.conv1.weight", 4, {128, 128, 3, 3}},
    {"layer2.1.bn1.weight", 1, {128}},
    {"layer2.1.bn1.bias", 1, {128}},
    {"layer2.1.bn1.running_mean", 1, {128}},
    {"layer2.1.bn1.running_var", 1, {128}},
    {"layer2.1.bn1.num_batches_tracked", 0, {0}},
    {"layer2.1.conv2.weight", 4, {128, 128, 3, 3}},
    {"layer2.1.bn2.weight", 1, {128}},
    {"layer2.1.bn2.bias", 1, {128}},
    {"layer2.1.bn2.running_mean", 1, {128}},
    {"layer2.1.bn2.running_var", 1, {128}},
    {"layer2.1.bn2.num_batches_tracked", 0, {0}},
    {"layer3.0.conv1.weight", 4, {256, 128, 3, 3}},
    {"layer3.0.bn1.weight", 1, {256}},
    {"layer3.0.bn1.bias", 1, {256}},
    {"layer3.0.bn1.running_mean", 1, {256}},
    {"layer3.0.bn1.running_var", 1, {256}},
    {"layer3.0.bn1.num_batches_tracked", 0, {0}},
    {"layer3.0.conv2.weight", 4, {256, 256, 3, 3}},
    {"layer3.0.bn2.weight", 1, {256}},
    {"layer3.0.bn2.bias", 1, {256}},
    {"layer3.0.bn2.running_mean", 1, {256}},
    {"layer3.0.bn2.running_var", 1, {256}},
    {"layer3.0.bn2.num_batches_tracked", 0, {0}},
    {"layer3.0.downsample.0.weight", 4, {256, 128, 1, 1}},
    {"layer3.0.downsample.1.weight", 1, {256}},
    {"layer3.0.downsample.1.bias", 1, {256}},
    {"layer3.0.downsample.1.running_mean", 1, {256}},
    {"layer3.0.downsample.1.running_var", 1, {256}},
    {"layer3.0.downsample.1.num_batches_tracked", 0, {0}},
    {"layer3.1.conv1.weight", 4, {256, 256, 3, 3}},
    {"layer3.1.bn1.weight", 1, {256}},
    {"layer3.1.bn1.bias", 1, {256}},
    {"layer3.1.bn1.running_mean", 1, {256}},
    {"layer3.1.bn1.running_var", 1, {256}},
    {"layer3.1.bn1.num_batches_tracked", 0, {0}},
    {"layer3.1.conv2.weight", 4, {256, 256, 3, 3}},
    {"layer3.1.bn2.weight", 1, {256}},
    {"layer3.1.bn2.bias", 1, {256}},
    {"layer3.1.bn2.running_mean", 1, {256}},
    {"layer3.1.bn2.running_var", 1, {256}},
    {"layer3.1.bn2.num_batches_tracked", 0, {0}},
    {"layer4.0.conv1.weight", 4, {512, 256, 3, 3}},
    {"layer4.0.bn1.weight", 1, {512}},
    {"layer4.0.bn1.bias", 1, {512}},
    {"layer4.0.bn1.running_mean", 1, {512}},
    {"layer4.0.bn1.running_var", 1, {512}},
    {"layer4.0.bn1.num_batches_tracked", 0, {0}},
    {"layer4.0.conv2.weight", 4, {512, 512, 3, 3}},
    {"layer4.0.bn2.weight", 1, {512}},
    {"layer4.0.bn2.bias", 1, {512}},
    {"layer4.0.bn2.running_mean", 1, {512}},
    {"layer4.0.bn2.running_var", 1, {512}},
    {"layer4.0.bn2.num_batches_tracked", 0, {0}},
    {"layer4.0.downsample.0.weight", 4, {512, 256, 1, 1}},
    {"layer4.0.downsample.1.weight", 1, {512}},
    {"layer4.0.downsample.1.bias", 1, {512}},
    {"layer4.0.downsample.1.running_mean", 1, {512}},
    {"layer4.0.downsample.1.running_var", 1, {512}},
    {"layer4.0.downsample.1.num_batches_tracked", 0, {0}},
    {"layer4.1.conv1.weight", 4, {512, 512, 3, 3}},
    {"layer4.1.bn1.weight", 1, {512}},
    {"layer4.1.bn1.bias", 1, {512}},
    {"layer4.1.bn1.running_mean", 1, {512}},
    {"layer4.1.bn1.running_var", 1, {512}},
    {"layer4.1.bn1.num_batches_tracked", 0, {0}},
    {"layer4.1.conv2.weight", 4, {512, 512, 3, 3}},
    {"layer4.1.bn2.weight", 1, {512}},
    {"layer4.1.bn2.bias", 1, {512}},
    {"layer4.1.bn2.running_mean", 1, {512}},
    {"layer4.1.bn2.running_var", 1, {512}},
    {"layer4.1.bn2.num_batches_tracked", 0, {0}},
    {"fc.weight", 2, {1000, 512}},
    {"fc.bias", 1, {1000}},
};

/* timm VisionTransformer(img_size 32, patch_size 8, embed_dim 48, depth 2,
 * num_heads 3, mlp_ratio 4, num_classes 10).state_dict(): 16 patches, so
 * pos_embed holds 1 + 16 positions; own parameters come before children. */
static const key_shape vit_small_keys[] = {
    {"cls_token", 3, {1, 1, 48}},
    {"pos_embed", 3, {1, 17, 48}},
    {"patch_embed.proj.weight", 4, {48, 3, 8, 8}},
    {"patch_embed.proj.bias", 1, {48}},
    {"blocks.0.norm1.weight", 1, {48}},
    {"blocks.0.norm1.bias", 1, {48}},
    {"blocks.0.attn.qkv.weight", 2, {144, 48}},
    {"blocks.0.attn.qkv.bias", 1, {144}},
    {"blocks.0.attn.proj.weight", 2, {48, 48}},
    {"blocks.0.attn.proj.bias", 1, {48}},
    {"blocks.0.norm2.weight", 1, {48}},
    {"blocks.0.norm2.bias", 1, {48}},
    {"blocks.0.mlp.fc1.weight", 2, {192, 48}},
    {"blocks.0.mlp.fc1.bias", 1, {192}},
    {"blocks.0.mlp.fc2.weight", 2, {48, 192}},
    {"blocks.0.mlp.fc2.bias", 1, {48}},
    {"blocks.1.norm1.weight", 1, {48}},
    {"blocks.1.norm1.bias", 1, {48}},
    {"blocks.1.attn.qkv.weight", 2, {144, 48}},
    {"blocks.1.attn.qkv.bias", 1, {144}},
    {"blocks.1.attn.proj.weight", 2, {48, 48}},
    {"blocks.1.attn.proj.bias", 1, {48}},
    {"blocks.1.norm2.weight", 1, {48}},
    {"blocks.1.norm2.bias", 1, {48}},
    {"blocks.1.mlp.fc1.weight", 2, {192, 48}},
    {"blocks.1.mlp.fc1.bias", 1, {192}},
    {"blocks.1.mlp.fc2.weight", 2, {48, 192}},
    {"blocks.1.mlp.fc2.bias", 1, {48}},
    {"norm.weight", 1, {48}},
    {"norm.bias", 1, {48}},
    {"head.weight", 2, {10, 48}},
    {"head.bias", 1, {10}},
};

#define NKEYS(a) (int)(sizeof(a) / sizeof((a)[0]))

/* Mismatches between the module's state_dict and the table (names, order,
 * shapes); the first one described in msg. */
static int compare_keys(lt_nn_module *m, const key_shape *want, int nwant, char *msg, size_t msz)
{
    lt_nn_named_tensors sd;
    int n = lt_nn_module_state_dict(m, &sd), bad = 0;
    snprintf(msg, msz, "ok");
    if (n != nwant) {
        snprintf(msg, msz, "%d keys, want %d", n, nwant);
        return 1;
    }
    for (int i = 0; i < n; i++) {
        bool same = strcmp(sd.names[i], want[i].name) == 0 && lt_ndim(sd.tensors[i]) == want[i].ndim;
        for (int d = 0; same && d < want[i].ndim; d++)
            same = lt_size(sd.tensors[i], d) == want[i].shape[d];
        if (!same && bad++ == 0) {
            char b[96];
            snprintf(msg, msz, "entry %d: %s %s, want %s", i, sd.names[i], lt_shape_str(sd.tensors[i], b, sizeof b),
                     want[i].name);
        }
    }
    return bad;
}

static lt_nn_vit_config vit_small_config(void)
{
    lt_nn_vit_config c = lt_nn_vit_config_make(32, 8, 10);
    c.dim = 48;
    c.depth = 2;
    c.heads = 3;
    return c;
}

/* ---- ResNet-18 ---- */

START_TEST(resnet18_state_dict_equals_torchvision_keys_order_and_shapes)
{
    lt_rng r = lt_rng_new(1);
    lt_nn_resnet_config cfg = lt_nn_resnet18_config(1000, LT_NN_STEM_IMAGENET);
    lt_nn_module *m = lt_nn_resnet_new(&cfg, &r);
    ck_assert_msg(m != NULL, "%s", lt_last_error());
    char msg[256];
    int bad = compare_keys(m, resnet18_keys, NKEYS(resnet18_keys), msg, sizeof msg);
    ck_assert_msg(bad == 0, "%d mismatches: %s", bad, msg);
    ck_assert_int_eq(NKEYS(resnet18_keys), 122);
    ck_assert_int_eq(lt_nn_module_param_count(m), 62);
    ck_assert_int_eq(lt_nn_module_param_numel(m), 11689512); /* torchvision's resnet18: 11,689,512 */
    /* buffers: f32 running stats, i64 0-dim num_batches_tracked, no grad */
    lt_tensor *nbt = lt_nn_module_get(m, "layer2.0.downsample.1.num_batches_tracked");
    ck_assert_ptr_nonnull(nbt);
    ck_assert_int_eq(lt_dtype_of(nbt), LT_I64);
    ck_assert(!lt_ag_requires_grad(nbt));
    ck_assert(!lt_ag_requires_grad(lt_nn_module_get(m, "bn1.running_var")));
    ck_assert(lt_ag_requires_grad(lt_nn_module_get(m, "layer4.1.conv2.weight")));
    const char *name;
    lt_nn_module_param_at(m, 61, &name);
    ck_assert_str_eq(name, "fc.bias");
    ck_assert_ptr_eq(lt_nn_resnet_config_of(m)->num_classes == 1000 ? m : NULL, m);
    /* the small stem changes conv1's kernel only */
    lt_nn_resnet_config small = lt_nn_resnet18_config(10, LT_NN_STEM_SMALL);
    lt_nn_module *s = lt_nn_resnet_new(&small, &r);
    ck_assert_int_eq(lt_size(lt_nn_module_get(s, "conv1.weight"), 2), 3);
    ck_assert_int_eq(lt_size(lt_nn_module_get(s, "fc.weight"), 0), 10);
    lt_nn_named_tensors sd;
    ck_assert_int_eq(lt_nn_module_state_dict(s, &sd), 122);
    lt_nn_module_free(s);
    lt_nn_module_free(m);
}
END_TEST

/* Sample mean and std of a tensor's values. */
static void moments(const lt_tensor *t, double *mean, double *std)
{
    int64_t n = lt_numel(t);
    double s = 0, s2 = 0;
    for (int64_t i = 0; i < n; i++) {
        double v = lt_item_at(t, i);
        s += v;
        s2 += v * v;
    }
    *mean = s / (double)n;
    *std = sqrt(s2 / (double)n - *mean * *mean);
}

static bool all_equal(const lt_tensor *t, double v)
{
    int64_t n = lt_numel(t), bad = 0;
    for (int64_t i = 0; i < n; i++)
        bad += lt_item_at(t, i) != v;
    return bad == 0;
}

START_TEST(resnet18_init_follows_torchvision)
{
    lt_rng r = lt_rng_new(2);
    lt_nn_resnet_config cfg = lt_nn_resnet18_config(1000, LT_NN_STEM_IMAGENET);
    lt_nn_module *m = lt_nn_resnet_new(&cfg, &r);
    ck_assert_ptr_nonnull(m);
    /* kaiming_normal_(fan_out, relu): std = sqrt(2 / (out k k)) */
    struct { const char *name; double fan_out; } convs[] = {
        {"conv1.weight", 64 * 49}, {"layer1.0.conv1.weight", 64 * 9}, {"layer3.1.conv2.weight", 256 * 9},
        {"layer4.0.downsample.0.weight", 512}};
    int bad = 0;
    char msg[200] = "";
    for (int i = 0; i < 4; i++) {
        double mean, std, want = sqrt(2.0 / convs[i].fan_out);
        moments(lt_nn_module_get(m, convs[i].name), &mean, &std);
        if (fabs(std / want - 1) > 0.03 || fabs(mean) > 0.05 * want) {
            bad++;
            snprintf(msg, sizeof msg, "%s: mean %g std %g, want std %g", convs[i].name, mean, std, want);
        }
    }
    ck_assert_msg(bad == 0, "%s", msg);
    ck_assert(all_equal(lt_nn_module_get(m, "layer2.1.bn2.weight"), 1.0));
    ck_assert(all_equal(lt_nn_module_get(m, "layer2.1.bn2.bias"), 0.0));
    ck_assert(all_equal(lt_nn_module_get(m, "layer2.1.bn2.running_mean"), 0.0));
    ck_assert(all_equal(lt_nn_module_get(m, "layer2.1.bn2.running_var"), 1.0));
    /* fc: Uniform(-1/sqrt(512), 1/sqrt(512)) for weight and bias: std = bound / sqrt(3) */
    double bound = 1.0 / sqrt(512.0), mean, std;
    lt_tensor *fw = lt_nn_module_get(m, "fc.weight"), *fb = lt_nn_module_get(m, "fc.bias");
    moments(fw, &mean, &std);
    ck_assert_double_eq_tol(std, bound / sqrt(3.0), 0.02 * bound);
    size_t mark = lt_frame_push();
    ck_assert(lt_item(lt_amax(lt_abs(fw), 0, NULL, false)) <= bound);
    ck_assert(lt_item(lt_amax(lt_abs(fb), 0, NULL, false)) <= bound);
    lt_frame_pop(mark);
    lt_nn_module_free(m);
    /* seeded: the same seed builds the same model, on any thread count */
    lt_nn_resnet_config small = {LT_NN_STEM_IMAGENET, 10, 3, 16, {2, 2, 2, 2}, LT_F32};
    lt_rng r1 = lt_rng_new(3), r2 = lt_rng_new(3);
    lt_nn_module *m1 = lt_nn_resnet_new(&small, &r1);
    lt_set_num_threads(1);
    lt_nn_module *m2 = lt_nn_resnet_new(&small, &r2);
    lt_set_num_threads(2);
    lt_nn_named_tensors a, b;
    lt_nn_module_state_dict(m1, &a);
    lt_nn_module_state_dict(m2, &b);
    int differ = 0;
    for (int i = 0; i < a.n; i++)
        differ += memcmp(lt_data(a.tensors[i]), lt_data(b.tensors[i]),
                         (size_t)lt_numel(a.tensors[i]) * lt_dtype_size(lt_dtype_of(a.tensors[i]))) != 0;
    ck_assert_int_eq(differ, 0);
    lt_nn_module_free(m2);
    lt_nn_module_free(m1);
}
END_TEST

static void assert_shape(const lt_tensor *t, int nd, const int64_t *want, const char *what)
{
    char b[96];
    ck_assert_msg(t != NULL, "%s: NULL (%s)", what, lt_last_error());
    bool ok = lt_ndim(t) == nd;
    for (int d = 0; ok && d < nd; d++)
        ok = lt_size(t, d) == want[d];
    ck_assert_msg(ok, "%s has shape %s", what, lt_shape_str(t, b, sizeof b));
}

/* max |a - b| */
static double max_diff(const lt_tensor *a, const lt_tensor *b)
{
    return lt_item(lt_amax(lt_abs(lt_sub(a, b)), 0, NULL, false));
}

START_TEST(resnet18_forward_shapes_and_features_for_both_stems)
{
    FRAME_BEGIN;
    lt_rng r = lt_rng_new(3);
    struct { lt_nn_resnet_stem stem; int64_t hw, l4; } cases[] = {{LT_NN_STEM_IMAGENET, 64, 2},
                                                                  {LT_NN_STEM_SMALL, 32, 4}};
    for (int k = 0; k < 2; k++) {
        lt_nn_resnet_config cfg = lt_nn_resnet18_config(10, cases[k].stem);
        lt_nn_module *m = lt_nn_resnet_new(&cfg, &r);
        ck_assert_ptr_nonnull(m);
        lt_tensor *x = lt_rand_normal(&r, 4, SH(2, 3, cases[k].hw, cases[k].hw), 0, 1, LT_F32);
        lt_tensor *feat = NULL, *l4 = NULL;
        lt_tensor *y = lt_nn_resnet_forward_ex(m, x, &feat, &l4);
        assert_shape(y, 2, SH(2, 10), "logits");
        assert_shape(feat, 2, SH(2, 512), "features");
        assert_shape(l4, 4, SH(2, 512, cases[k].l4, cases[k].l4), "layer4");
        /* features = spatial mean of layer4; logits = fc(features) */
        ck_assert(max_diff(feat, lt_mean(l4, 2, (int[]){2, 3}, false)) < 1e-5);
        lt_tensor *fc = lt_nn_linear(feat, lt_nn_module_get(m, "fc.weight"), lt_nn_module_get(m, "fc.bias"));
        ck_assert(max_diff(y, fc) < 1e-5);
        /* layer4 ends in a ReLU */
        ck_assert(lt_item(lt_amin(l4, 0, NULL, false)) >= 0.0);
        /* forward without extras gives the same logits (training BN: same batch statistics) */
        ck_assert(max_diff(lt_nn_module_forward(m, x), y) == 0.0);
        /* two training forwards so far */
        ck_assert_int_eq((int)lt_item(lt_nn_module_get(m, "layer3.0.bn1.num_batches_tracked")), 2);
        lt_nn_module_train(m, false);
        lt_tensor *ye = lt_nn_module_forward(m, x);
        assert_shape(ye, 2, SH(2, 10), "eval logits");
        ck_assert_int_eq((int)lt_item(lt_nn_module_get(m, "bn1.num_batches_tracked")), 2);
        ck_assert(max_diff(ye, y) > 0); /* running statistics differ from the batch's */
        lt_nn_module_free(m);
    }
    FRAME_END;
}
END_TEST

START_TEST(resnet18_logits_at_224_are_identical_with_1_and_2_threads)
{
    FRAME_BEGIN;
    lt_rng r = lt_rng_new(11);
    lt_nn_resnet_config cfg = lt_nn_resnet18_config(1000, LT_NN_STEM_IMAGENET);
    lt_nn_module *m = lt_nn_resnet_new(&cfg, &r);
    ck_assert_ptr_nonnull(m);
    lt_nn_module_train(m, false);
    lt_tensor *x = lt_rand_normal(&r, 4, SH(2, 3, 224, 224), 0, 1, LT_F32);
    int threads = lt_get_num_threads();
    lt_set_num_threads(1);
    lt_tensor *a = lt_nn_module_forward(m, x);
    lt_set_num_threads(2);
    lt_tensor *b = lt_nn_module_forward(m, x);
    lt_set_num_threads(threads);
    ck_assert(a && b);
    ck_assert_int_eq(memcmp(lt_data(a), lt_data(b), (size_t)lt_numel(a) * sizeof(float)), 0);
    lt_nn_module_free(m);
    FRAME_END;
}
END_TEST

START_TEST(resnet_rejects_bad_inputs_and_configs_with_a_message)
{
    FRAME_BEGIN;
    lt_rng r = lt_rng_new(4);
    lt_nn_resnet_config cfg = {LT_NN_STEM_SMALL, 5, 3, 4, {1, 1, 1, 1}, LT_F32};
    lt_nn_module *m = lt_nn_resnet_new(&cfg, &r);
    ck_assert_ptr_nonnull(m);
    ck_assert_ptr_null(lt_nn_module_forward(m, lt_zeros(4, SH(2, 1, 8, 8), LT_F32)));
    ck_assert_ptr_nonnull(strstr(lt_last_error(), "resnet_forward"));
    ck_assert_ptr_null(lt_nn_module_forward(m, lt_zeros(4, SH(2, 3, 8, 8), LT_F64)));
    ck_assert_ptr_null(lt_nn_vit_forward_ex(m, lt_zeros(4, SH(2, 3, 8, 8), LT_F32), NULL, NULL));
    ck_assert_ptr_nonnull(strstr(lt_last_error(), "not a VisionTransformer"));
    lt_nn_resnet_config bad = cfg;
    bad.blocks[2] = 0;
    ck_assert_ptr_null(lt_nn_resnet_new(&bad, &r));
    ck_assert_ptr_nonnull(strstr(lt_last_error(), "resnet_new"));
    ck_assert_ptr_null(lt_nn_resnet_config_of(lt_nn_module_find(m, "layer1")));
    lt_nn_module_free(m);
    FRAME_END;
}
END_TEST

/* ---- ViT ---- */

START_TEST(vit_state_dict_equals_timm_keys_order_and_shapes)
{
    lt_rng r = lt_rng_new(5);
    lt_nn_vit_config cfg = vit_small_config();
    lt_nn_module *m = lt_nn_vit_new(&cfg, &r);
    ck_assert_msg(m != NULL, "%s", lt_last_error());
    char msg[256];
    int bad = compare_keys(m, vit_small_keys, NKEYS(vit_small_keys), msg, sizeof msg);
    ck_assert_msg(bad == 0, "%d mismatches: %s", bad, msg);
    ck_assert_int_eq(lt_nn_module_param_count(m), 32); /* no buffers */
    lt_nn_module_free(m);
    /* vit_tiny_patch16_224 defaults: 4 + 12 x 12 + 4 = 152 entries, 5,717,416 parameters (timm) */
    lt_nn_vit_config tiny = lt_nn_vit_config_make(224, 16, 1000);
    lt_nn_module *t = lt_nn_vit_new(&tiny, &r);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(lt_nn_module_param_count(t), 152);
    ck_assert_int_eq(lt_nn_module_param_numel(t), 5717416);
    assert_shape(lt_nn_module_get(t, "pos_embed"), 3, SH(1, 197, 192), "pos_embed");
    lt_nn_module_free(t);
}
END_TEST

START_TEST(vit_init_follows_timm)
{
    lt_rng r = lt_rng_new(6);
    lt_nn_vit_config cfg = lt_nn_vit_config_make(64, 8, 10);
    lt_nn_module *m = lt_nn_vit_new(&cfg, &r);
    ck_assert_ptr_nonnull(m);
    const char *tn[] = {"pos_embed", "blocks.3.attn.qkv.weight", "blocks.11.mlp.fc2.weight", "head.weight"};
    int bad = 0;
    char msg[200] = "";
    for (int i = 0; i < 4; i++) {
        double mean, std;
        lt_tensor *t = lt_nn_module_get(m, tn[i]);
        moments(t, &mean, &std);
        if (fabs(std / 0.02 - 1) > 0.05 || fabs(mean) > 0.002) {
            bad++;
            snprintf(msg, sizeof msg, "%s: mean %g std %g", tn[i], mean, std);
        }
    }
    ck_assert_msg(bad == 0, "%s", msg);
    double mean, std;
    moments(lt_nn_module_get(m, "cls_token"), &mean, &std);
    ck_assert(std > 0.01 && std < 0.03);
    ck_assert(all_equal(lt_nn_module_get(m, "blocks.0.attn.qkv.bias"), 0.0));
    ck_assert(all_equal(lt_nn_module_get(m, "blocks.5.mlp.fc1.bias"), 0.0));
    ck_assert(all_equal(lt_nn_module_get(m, "head.bias"), 0.0));
    ck_assert(all_equal(lt_nn_module_get(m, "blocks.2.norm1.weight"), 1.0));
    ck_assert(all_equal(lt_nn_module_get(m, "norm.bias"), 0.0));
    /* patch_embed.proj keeps Conv2d's default: |w| <= 1/sqrt(3 * 8 * 8) */
    size_t mark = lt_frame_push();
    double bound = 1.0 / sqrt(192.0);
    ck_assert(lt_item(lt_amax(lt_abs(lt_nn_module_get(m, "patch_embed.proj.weight")), 0, NULL, false)) <= bound);
    ck_assert(lt_item(lt_amax(lt_abs(lt_nn_module_get(m, "patch_embed.proj.bias")), 0, NULL, false)) > 0);
    lt_frame_pop(mark);
    lt_nn_module_free(m);
}
END_TEST

START_TEST(vit_forward_shapes_and_features)
{
    FRAME_BEGIN;
    lt_rng r = lt_rng_new(7);
    lt_nn_vit_config cfg = vit_small_config();
    lt_nn_module *m = lt_nn_vit_new(&cfg, &r);
    lt_tensor *x = lt_rand_normal(&r, 4, SH(3, 3, 32, 32), 0, 1, LT_F32);
    lt_tensor *feat = NULL, *tok = NULL;
    lt_tensor *y = lt_nn_vit_forward_ex(m, x, &feat, &tok);
    assert_shape(y, 2, SH(3, 10), "logits");
    assert_shape(feat, 2, SH(3, 48), "features");
    assert_shape(tok, 3, SH(3, 17, 48), "tokens");
    /* features = final norm of the class token; logits = head(features) */
    lt_tensor *cls = lt_select(tok, 1, 0);
    lt_tensor *normed =
        lt_nn_layer_norm(cls, 1, lt_nn_module_get(m, "norm.weight"), lt_nn_module_get(m, "norm.bias"), 1e-6);
    ck_assert(max_diff(feat, normed) < 1e-5);
    lt_tensor *head = lt_nn_linear(feat, lt_nn_module_get(m, "head.weight"), lt_nn_module_get(m, "head.bias"));
    ck_assert(max_diff(y, head) < 1e-5);
    /* each image is processed alone: image 1 on its own gives the same logits */
    lt_tensor *y1 = lt_nn_module_forward(m, lt_slice(x, 0, 1, 2, 1));
    ck_assert(max_diff(y1, lt_slice(y, 0, 1, 2, 1)) < 1e-5);
    ck_assert_ptr_null(lt_nn_module_forward(m, lt_zeros(4, SH(1, 3, 24, 24), LT_F32)));
    ck_assert_ptr_nonnull(strstr(lt_last_error(), "vit_forward"));
    lt_nn_module_free(m);
    FRAME_END;
}
END_TEST

/* ---- against PyTorch ---- */

/* Logits of seeded models computed by PyTorch from our weights: the state
 * dicts below were written with lt_nn_safetensors_save, loaded with
 * load_state_dict(strict=True) into Debian's torchvision 0.14.1
 * resnet18(num_classes=7) in float64 (the small stem swapped in as
 * conv1 = Conv2d(3, 64, 3, 1, 1, bias=False), maxpool = Identity()), and
 * run in train mode from fresh running statistics and in eval mode with
 * ours; the ViT reference is timm's VisionTransformer.forward written out in
 * torch (F.layer_norm eps 1e-6, qkv reshape(B,N,3,h,d), exact GELU, class
 * token). Their agreement to ~1e-15 shows the architecture, strides,
 * padding, BatchNorm statistics and attention layout are torchvision's and
 * timm's, not merely the names. The models depend on lt_rng's stream and
 * the init order: a change there needs these values regenerated. */
static const double ref_imagenet_eval[21] = {
    -0.3838631822667208, 0.4324207495022689, 0.16167231337022014, 0.012035548612916891,
    0.11441061498176536, 0.8046154097814804, -0.015522656012442938, -0.3313846403193763,
    0.2681765798355075, -0.23576109402118328, 0.0592906154286789, -0.0038406683915986548,
    0.6834334936321999, -0.0037010758135753163, -0.3015794427546986, 0.3809366647146759,
    0.01807697732327751, 0.10018223040904928, -0.15572750009388517, 0.8390668774617316,
    -0.0939859510969827,
};
static const double ref_imagenet_train[21] = {
    -0.011469682735421205, 0.9286101088697032, -0.43662571904672215, 0.4007337585479871,
    -0.27548870793569996, 1.024473029356782, 0.10847431769987562, 0.26393054525954773,
    0.4909293318600149, -0.00912527641433214, 0.23423951131405354, -0.4921206191870918,
    0.8508447486067816, -0.3165810111699604, 0.135826426484559, 0.674044599810842,
    0.22506234987308865, 0.2927634149442955, 0.24029531974833218, 0.7848114776336612,
    0.3504338220163626,
};
static const double ref_small_eval[21] = {
    0.5486706544899603, 0.06569340748577487, -1.1684437364684754, 0.49035278051473064,
    0.8183430563067047, -0.13672125578194658, -0.46091669935792007, 0.6078658499303259,
    0.07630825709882863, -1.1819893098976664, 0.4509363480312761, 0.8432578466895687,
    -0.07546348319768009, -0.4587403270109316, 0.5778767693482163, 0.08499362995683787,
    -1.1697979346570209, 0.4217988671988611, 0.8237930631942626, -0.14821131093004133,
    -0.42096763164292034,
};
static const double ref_small_train[21] = {
    -0.1269587603191617, -0.6023660185156047, -0.38493577792909217, -0.11903746765438573,
    0.7560046912180939, 0.048907045837701696, -0.33448750830935, 0.015573973652931505,
    -0.49165213106448513, -0.401312779040055, -0.08475043160997116, 0.8272101202349578,
    -0.041804162660271926, -0.25837438305625043, 0.035546146085082664, -0.4252440267324389,
    -0.30126860137604, 0.08102708273714943, 0.687445864631776, -0.1121721099436549,
    -0.22598133359432465,
};
static const double ref_vit[20] = {
    0.802148854473731, -0.05347311183587572, 0.006437221307728438, -0.09773100419937286,
    0.17475182307018994, 0.7649253853678006, 1.31369266712199, 0.09114274008123235,
    0.1319841008340316, -0.039847310038326963, 0.9798378045717316, 0.09243071643805478,
    -0.09169865604021336, -0.11243452780844887, 0.41507774849845974, 0.9175774727261308,
    1.1800414473827412, 0.1843824246289718, -0.07875242880936381, 0.01737133358565013,
};

static double max_rel_diff(const lt_tensor *y, const double *ref)
{
    double worst = 0, scale = 0;
    for (int64_t i = 0; i < lt_numel(y); i++) {
        double e = fabs(lt_item_at(y, i) - ref[i]);
        worst = e > worst ? e : worst;
        scale = fabs(ref[i]) > scale ? fabs(ref[i]) : scale;
    }
    return worst / scale;
}

START_TEST(resnet18_and_vit_logits_match_pytorch_on_the_same_weights_f64)
{
    FRAME_BEGIN;
    lt_rng r = lt_rng_new(5);
    const double *refs[2][2] = {{ref_imagenet_train, ref_imagenet_eval}, {ref_small_train, ref_small_eval}};
    for (int s = 0; s < 2; s++) {
        lt_nn_resnet_config cfg = lt_nn_resnet18_config(7, s ? LT_NN_STEM_SMALL : LT_NN_STEM_IMAGENET);
        cfg.dtype = LT_F64;
        lt_nn_module *m = lt_nn_resnet_new(&cfg, &r);
        ck_assert_ptr_nonnull(m);
        lt_tensor *x = lt_rand_normal(&r, 4, SH(3, 3, 64, 64), 0, 1, LT_F64);
        lt_tensor *yt = lt_nn_module_forward(m, x); /* training mode: batch statistics */
        lt_nn_module_train(m, false);
        lt_tensor *ye = lt_nn_module_forward(m, x); /* running statistics after one update */
        ck_assert(yt && ye);
        ck_assert_msg(max_rel_diff(yt, refs[s][0]) < 1e-12, "stem %d train: %g", s, max_rel_diff(yt, refs[s][0]));
        ck_assert_msg(max_rel_diff(ye, refs[s][1]) < 1e-12, "stem %d eval: %g", s, max_rel_diff(ye, refs[s][1]));
        lt_nn_module_free(m);
    }
    lt_nn_vit_config vc = {32, 8, 3, 48, 3, 3, 4.0, 10, true, 1e-6, LT_F64};
    lt_nn_module *v = lt_nn_vit_new(&vc, &r);
    ck_assert_ptr_nonnull(v);
    lt_nn_named_tensors p;
    lt_nn_module_parameters(v, &p);
    for (int i = 0; i < p.n; i++)
        ck_assert_int_eq(lt_nn_init_normal_(p.tensors[i], &r, 0, 0.3), 0);
    lt_tensor *y = lt_nn_module_forward(v, lt_rand_normal(&r, 4, SH(2, 3, 32, 32), 0, 1, LT_F64));
    ck_assert_ptr_nonnull(y);
    ck_assert_msg(max_rel_diff(y, ref_vit) < 1e-12, "vit: %g", max_rel_diff(y, ref_vit));
    lt_nn_module_free(v);
    FRAME_END;
}
END_TEST

START_TEST(a_saved_state_dict_loads_into_a_fresh_model_bitwise)
{
    FRAME_BEGIN;
    char path[] = "/tmp/lt_models_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    lt_nn_resnet_config cfg = {LT_NN_STEM_SMALL, 5, 3, 4, {1, 1, 1, 1}, LT_F32};
    lt_rng r1 = lt_rng_new(13), r2 = lt_rng_new(14);
    lt_nn_module *a = lt_nn_resnet_new(&cfg, &r1), *b = lt_nn_resnet_new(&cfg, &r2);
    lt_tensor *x = lt_rand_normal(&r1, 4, SH(2, 3, 8, 8), 0, 1, LT_F32);
    lt_nn_module_forward(a, x); /* running statistics and num_batches_tracked move */
    lt_nn_module_train(a, false);
    lt_nn_module_train(b, false);
    lt_nn_named_tensors sa, sb;
    lt_nn_module_state_dict(a, &sa);
    lt_nn_module_state_dict(b, &sb);
    ck_assert_msg(lt_nn_safetensors_save(path, sa.n, sa.names, sa.tensors, 0, NULL, NULL) == 0, "%s", lt_last_error());
    lt_nn_tensor_file *f = lt_nn_safetensors_load(path);
    ck_assert_msg(f && lt_nn_load_into(f, sb.n, sb.names, sb.tensors, NULL, NULL) == 0, "%s", lt_last_error());
    lt_nn_tensor_file_free(f);
    unlink(path);
    int differ = 0;
    for (int i = 0; i < sa.n; i++)
        differ += memcmp(lt_data(sa.tensors[i]), lt_data(sb.tensors[i]),
                         (size_t)lt_numel(sa.tensors[i]) * lt_dtype_size(lt_dtype_of(sa.tensors[i]))) != 0;
    ck_assert_int_eq(differ, 0);
    ck_assert_int_eq((int)lt_item(lt_nn_module_get(b, "layer1.0.bn2.num_batches_tracked")), 1);
    ck_assert(lt_ag_requires_grad(lt_nn_module_get(b, "fc.weight"))); /* still a parameter */
    ck_assert(max_diff(lt_nn_module_forward(a, x), lt_nn_module_forward(b, x)) == 0.0);
    lt_nn_module_free(a);
    lt_nn_module_free(b);
    FRAME_END;
}
END_TEST

/* ---- whole-model double backprop: the RRR penalty ---- */

/* Ross et al. 2017's input-gradient penalty with annotation mask A:
 *   P(theta) = sum((A * d(sum_k log_softmax_k(f(x)))/dx)^2).
 * With create_graph the input gradient stays in the graph, so dP/dtheta
 * needs the backward of every backward formula in the model. */
static lt_tensor *rrr_penalty(lt_nn_module *m, lt_tensor *x, const lt_tensor *A, bool create_graph)
{
    lt_tensor *s = lt_sum(lt_log_softmax(lt_nn_module_forward(m, x), 1), 0, NULL, false);
    lt_tensor *g = NULL;
    if (!s || lt_ag_grad(1, &s, 1, &x, NULL, create_graph, false, false, &g) < 0)
        return NULL;
    return lt_sum(lt_pow_scalar(lt_mul(A, g), 2.0), 0, NULL, false);
}

static double penalty_value(lt_nn_module *m, lt_tensor *x, const lt_tensor *A)
{
    size_t mark = lt_frame_push();
    lt_tensor *p = rrr_penalty(m, x, A, false);
    double v = p ? lt_item(p) : NAN;
    lt_frame_pop(mark);
    return v;
}

typedef struct fd_report {
    int checked, bad, informative;
    char msg[256];
} fd_report;

/* dP/dtheta by double backprop against central differences of P, for
 * nsample parameter elements spread over the parameter list (parameter
 * k * n / nsample, a random element of it). The model is f64. */
static fd_report check_rrr_param_grad(lt_nn_module *m, lt_tensor *x, const lt_tensor *A, int nsample, uint64_t seed)
{
    fd_report rep = {0};
    snprintf(rep.msg, sizeof rep.msg, "ok");
    lt_nn_named_tensors p;
    int np = lt_nn_module_parameters(m, &p);
    ck_assert_int_gt(np, 0);
    lt_rng r = lt_rng_new(seed);
    int pidx[32];
    int64_t eidx[32];
    double analytic[32];
    ck_assert_int_le(nsample, 32);
    for (int k = 0; k < nsample; k++) {
        pidx[k] = (int)(((int64_t)k * np) / nsample);
        eidx[k] = (int64_t)(lt_rng_u64(&r) % (uint64_t)lt_numel(p.tensors[pidx[k]]));
    }
    size_t mark = lt_frame_push();
    lt_tensor *pen = rrr_penalty(m, x, A, true);
    ck_assert_msg(pen != NULL, "penalty: %s", lt_last_error());
    lt_tensor **grads = calloc((size_t)np, sizeof *grads);
    int rc = lt_ag_grad(1, &pen, np, p.tensors, NULL, false, false, true, grads);
    ck_assert_msg(rc == 0, "dP/dtheta: %s", lt_last_error());
    for (int k = 0; k < nsample; k++)
        analytic[k] = grads[pidx[k]] ? lt_item_at(grads[pidx[k]], eidx[k]) : 0.0;
    free(grads);
    lt_frame_pop(mark);

    const double h = 1e-6, atol = 1e-9, rtol = 1e-5;
    for (int k = 0; k < nsample; k++) {
        double *d = lt_data(p.tensors[pidx[k]]), old = d[eidx[k]];
        d[eidx[k]] = old + h;
        double fp = penalty_value(m, x, A);
        d[eidx[k]] = old - h;
        double fm = penalty_value(m, x, A);
        d[eidx[k]] = old;
        double num = (fp - fm) / (2 * h);
        rep.checked++;
        rep.informative += fabs(num) > 1e-6;
        if (!(fabs(analytic[k] - num) <= atol + rtol * fabs(num)) && rep.bad++ == 0)
            snprintf(rep.msg, sizeof rep.msg, "%s[%lld]: analytic %.10g vs numeric %.10g", p.names[pidx[k]],
                     (long long)eidx[k], analytic[k], num);
    }
    return rep;
}

/* A 0/1 annotation mask (f64) of x's shape. */
static lt_tensor *random_mask(lt_rng *r, const lt_tensor *x)
{
    return lt_rand_bernoulli(r, lt_ndim(x), lt_shape(x), 0.5, LT_F64);
}

static int randomize_bn_affine(void *ud, lt_nn_module *mod, const char *path)
{
    (void)path;
    if (strcmp(lt_nn_module_type(mod), "BatchNorm2d") != 0)
        return 0;
    return lt_nn_init_uniform_(lt_nn_module_get(mod, "weight"), ud, 0.5, 1.5) ||
           lt_nn_init_uniform_(lt_nn_module_get(mod, "bias"), ud, -0.5, 0.5);
}

START_TEST(tiny_resnet_rrr_penalty_gradient_matches_finite_differences_f64)
{
    FRAME_BEGIN;
    lt_rng r = lt_rng_new(8);
    /* one block per stage, 8 channels, 16x16, BatchNorm in training mode */
    lt_nn_resnet_config cfg = {LT_NN_STEM_SMALL, 5, 3, 8, {1, 1, 1, 1}, LT_F64};
    lt_nn_module *m = lt_nn_resnet_new(&cfg, &r);
    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(lt_nn_module_apply(m, randomize_bn_affine, &r), 0);
    ck_assert(lt_nn_module_is_training(m));
    lt_tensor *x = lt_ag_set_requires_grad(lt_rand_normal(&r, 4, SH(2, 3, 16, 16), 0, 1, LT_F64), true);
    lt_tensor *A = random_mask(&r, x);
    fd_report rep = check_rrr_param_grad(m, x, A, 12, 99);
    ck_assert_int_eq(rep.checked, 12);
    ck_assert_msg(rep.bad == 0, "%d of %d mismatch, first: %s", rep.bad, rep.checked, rep.msg);
    ck_assert_msg(rep.informative >= 6, "only %d samples with a non-negligible gradient", rep.informative);
    lt_nn_module_free(m);
    FRAME_END;
}
END_TEST

static int randomize_all(void *ud, lt_nn_module *mod, const char *path)
{
    (void)path;
    lt_nn_named_tensors p;
    int n = lt_nn_module_parameters(mod, &p), rc = 0;
    /* only the module's own parameters: parents are visited before children */
    for (int i = 0; i < n && rc == 0; i++)
        if (!strchr(p.names[i], '.'))
            rc = lt_nn_init_uniform_(p.tensors[i], ud, -0.6, 0.6);
    return rc;
}

START_TEST(tiny_vit_rrr_penalty_gradient_matches_finite_differences_f64)
{
    FRAME_BEGIN;
    lt_rng r = lt_rng_new(9);
    lt_nn_vit_config cfg = {.img_size = 8, .patch = 4, .in_channels = 3, .dim = 12, .depth = 2, .heads = 3,
                            .mlp_ratio = 2.0, .num_classes = 5, .qkv_bias = true, .ln_eps = 1e-6, .dtype = LT_F64};
    lt_nn_module *m = lt_nn_vit_new(&cfg, &r);
    ck_assert_ptr_nonnull(m);
    /* timm's init (std .02) leaves the net nearly linear; spread the weights
     * so that attention, GELU and the norms all bend the penalty */
    ck_assert_int_eq(lt_nn_module_apply(m, randomize_all, &r), 0);
    lt_tensor *x = lt_ag_set_requires_grad(lt_rand_normal(&r, 4, SH(2, 3, 8, 8), 0, 1, LT_F64), true);
    lt_tensor *A = random_mask(&r, x);
    fd_report rep = check_rrr_param_grad(m, x, A, 12, 77);
    ck_assert_int_eq(rep.checked, 12);
    ck_assert_msg(rep.bad == 0, "%d of %d mismatch, first: %s", rep.bad, rep.checked, rep.msg);
    ck_assert_msg(rep.informative >= 6, "only %d samples with a non-negligible gradient", rep.informative);
    lt_nn_module_free(m);
    FRAME_END;
}
END_TEST

/* ---- memory ---- */

/* A 4-class ResNet (ImageNet stem, widths 4..32) and a 2-block ViT on
 * 16x16 inputs: small enough to run whole in the memory tests. */
static void tiny_models(lt_rng *r, lt_nn_module **m, lt_nn_module **v)
{
    lt_nn_resnet_config cfg = {LT_NN_STEM_IMAGENET, 4, 3, 4, {1, 2, 1, 1}, LT_F32};
    lt_nn_vit_config vc = {16, 8, 3, 12, 2, 3, 2.0, 4, false, 1e-6, LT_F32};
    *m = lt_nn_resnet_new(&cfg, r);
    *v = lt_nn_vit_new(&vc, r);
    ck_assert(*m && *v);
}

START_TEST(freeing_a_model_releases_every_tensor_and_block)
{
    lt_frame_pop(0);
    lt_cache_trim();
    lt_mem_stats before = lt_mem_stats_get();
    for (int it = 0; it < 2; it++) {
        lt_rng r = lt_rng_new(10);
        lt_nn_module *m, *v;
        tiny_models(&r, &m, &v);
        lt_nn_named_tensors sd;
        ck_assert_int_gt(lt_nn_module_state_dict(m, &sd), 0);
        ck_assert_int_gt(lt_nn_module_parameters(v, &sd), 0);
        FRAME_BEGIN;
        lt_tensor *x = lt_rand_normal(&r, 4, SH(2, 3, 16, 16), 0, 1, LT_F32);
        lt_tensor *loss = lt_add(lt_sum(lt_nn_module_forward(m, x), 0, NULL, false),
                                 lt_sum(lt_nn_module_forward(v, x), 0, NULL, false));
        ck_assert_int_eq(lt_ag_backward(loss, NULL, false, false), 0);
        FRAME_END;
        ck_assert_ptr_nonnull(lt_ag_grad_of(lt_nn_module_get(v, "head.weight")));
        lt_nn_module_free(m);
        lt_nn_module_free(v);
    }
    lt_frame_pop(0);
    lt_cache_trim();
    lt_mem_stats after = lt_mem_stats_get();
    ck_assert_uint_eq(after.live_tensors, before.live_tensors);
    ck_assert_uint_eq(after.live_blocks, before.live_blocks);
}
END_TEST

/* With grad mode off a model's forward frees its temporaries before it
 * returns: only the logits stay in the caller's frame, and they equal the
 * logits of a forward that keeps everything (grad mode on). */
START_TEST(inference_forward_keeps_only_its_result_alive)
{
    lt_rng r = lt_rng_new(11);
    lt_nn_module *m, *v;
    tiny_models(&r, &m, &v);
    lt_nn_module_train(m, false);
    lt_nn_module_train(v, false);
    lt_nn_module *models[] = {m, v};
    for (int k = 0; k < 2; k++) {
        FRAME_BEGIN;
        lt_tensor *x = lt_rand_normal(&r, 4, SH(2, 3, 16, 16), 0, 1, LT_F32);
        lt_tensor *full = lt_nn_module_forward(models[k], x);
        ck_assert_ptr_nonnull(full);
        bool prev = lt_ag_set_grad_enabled(false);
        lt_mem_stats before = lt_mem_stats_get();
        lt_tensor *y = lt_nn_module_forward(models[k], x);
        lt_mem_stats after = lt_mem_stats_get();
        lt_ag_set_grad_enabled(prev);
        ck_assert_ptr_nonnull(y);
        /* the result, and at most one view/base pair behind it */
        ck_assert_uint_le(after.live_tensors - before.live_tensors, 2);
        ck_assert_int_eq(memcmp(lt_data(lt_contiguous(y)), lt_data(lt_contiguous(full)),
                                sizeof(float) * (size_t)lt_numel(y)),
                         0);
        FRAME_END;
    }
    lt_nn_module_free(m);
    lt_nn_module_free(v);
}
END_TEST

/* An allocator hook that counts live blocks and refuses the fail_at-th
 * request (as tests/test_tensor_mem.c's does), to prove that constructors
 * fail cleanly at every allocation. */
typedef struct failing {
    pthread_mutex_t mu;
    long allocs, live, fail_at, failed;
} failing;

static failing F = {PTHREAD_MUTEX_INITIALIZER, 0, 0, 0, 0};

static void *failing_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    failing *f = ud;
    void *p = NULL;
    (void)osize;
    pthread_mutex_lock(&f->mu);
    if (nsize == 0) {
        free(ptr);
        f->live--;
    } else if (++f->allocs == f->fail_at) {
        f->failed++;
    } else if ((p = aligned_alloc(64, (nsize + 63) & ~(size_t)63)) != NULL) {
        f->live++;
    }
    pthread_mutex_unlock(&f->mu);
    return p;
}

/* Build (and free) a tiny ResNet and a tiny ViT with allocation fail_at
 * refused (0: none). Returns true if both were built. */
static bool build_tiny_models(long fail_at)
{
    lt_frame_pop(0);
    lt_cache_trim();
    F.allocs = F.live = F.failed = 0;
    F.fail_at = fail_at;
    lt_set_allocator(failing_alloc, &F);
    lt_rng r = lt_rng_new(12);
    lt_nn_resnet_config rc = {LT_NN_STEM_IMAGENET, 3, 2, 2, {1, 1, 1, 1}, LT_F32};
    lt_nn_vit_config vc = {8, 4, 1, 6, 1, 3, 2.0, 3, true, 1e-6, LT_F32};
    lt_nn_module *m = lt_nn_resnet_new(&rc, &r);
    lt_nn_module *v = m ? lt_nn_vit_new(&vc, &r) : NULL;
    lt_nn_named_tensors sd;
    bool ok = m && v && lt_nn_module_state_dict(m, &sd) == 74 && lt_nn_module_parameters(v, &sd) == 20;
    lt_nn_module_free(m);
    lt_nn_module_free(v);
    lt_frame_pop(0);
    lt_cache_trim();
    lt_set_allocator(NULL, NULL);
    return ok;
}

START_TEST(constructors_fail_cleanly_at_every_allocation)
{
    /* warm up once-only state (autograd observer, registry) outside the hook */
    ck_assert(build_tiny_models(0));
    ck_assert(build_tiny_models(0));
    long n = F.allocs;
    ck_assert_int_eq(F.live, 0);
    ck_assert(n > 100);
    long leaks = 0, succeeded = 0, first_bad = 0;
    for (long k = 1; k <= n; k++) {
        bool ok = build_tiny_models(k);
        succeeded += ok;
        if (F.live != 0 && leaks++ == 0)
            first_bad = k;
    }
    ck_assert_msg(leaks == 0, "%ld runs leaked, first with allocation %ld refused", leaks, first_bad);
    ck_assert_msg(succeeded == 0, "%ld runs succeeded although an allocation failed", succeeded);
}
END_TEST

int main(void)
{
    lt_set_num_threads(2);
    Suite *s = suite_create("models");
    TCase *rn = tcase_create("resnet");
    tcase_set_timeout(rn, 120);
    tcase_add_test(rn, resnet18_state_dict_equals_torchvision_keys_order_and_shapes);
    tcase_add_test(rn, resnet18_init_follows_torchvision);
    tcase_add_test(rn, resnet18_forward_shapes_and_features_for_both_stems);
    tcase_add_test(rn, resnet_rejects_bad_inputs_and_configs_with_a_message);
    tcase_add_test(rn, resnet18_logits_at_224_are_identical_with_1_and_2_threads);
    suite_add_tcase(s, rn);
    TCase *vt = tcase_create("vit");
    tcase_set_timeout(vt, 120);
    tcase_add_test(vt, vit_state_dict_equals_timm_keys_order_and_shapes);
    tcase_add_test(vt, vit_init_follows_timm);
    tcase_add_test(vt, vit_forward_shapes_and_features);
    suite_add_tcase(s, vt);
    TCase *pt = tcase_create("interop");
    tcase_set_timeout(pt, 120);
    tcase_add_test(pt, resnet18_and_vit_logits_match_pytorch_on_the_same_weights_f64);
    tcase_add_test(pt, a_saved_state_dict_loads_into_a_fresh_model_bitwise);
    suite_add_tcase(s, pt);
    TCase *dd = tcase_create("double_backprop");
    tcase_set_timeout(dd, 120);
    tcase_add_test(dd, tiny_resnet_rrr_penalty_gradient_matches_finite_differences_f64);
    tcase_add_test(dd, tiny_vit_rrr_penalty_gradient_matches_finite_differences_f64);
    suite_add_tcase(s, dd);
    TCase *mem = tcase_create("memory");
    tcase_set_timeout(mem, 60);
    tcase_add_test(mem, freeing_a_model_releases_every_tensor_and_block);
    tcase_add_test(mem, inference_forward_keeps_only_its_result_alive);
    tcase_add_test(mem, constructors_fail_cleanly_at_every_allocation);
    suite_add_tcase(s, mem);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
