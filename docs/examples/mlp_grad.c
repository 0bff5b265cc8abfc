/*
 * mlp_grad.c: a tiny example of libtensor from C.
 *
 * Builds a one-hidden-layer network, computes a cross-entropy style loss,
 * its gradient with respect to the input *with create_graph*, and then the
 * gradient of an input-gradient penalty (the RRR idea) with respect to the
 * weights: double backprop in a dozen lines.
 *
 *   cc mlp_grad.c $(pkg-config --cflags --libs libtensor) -o mlp_grad
 */
#include <libtensor/autograd.h>
#include <libtensor/tensor.h>
#include <stdio.h>

int main(void)
{
    size_t frame = lt_frame_push();
    lt_rng rng = lt_rng_new(42);
    lt_tensor *x = lt_rand_normal(&rng, 2, (int64_t[]){4, 3}, 0.0, 1.0, LT_F32);  /* (N=4, D=3) */
    lt_tensor *w = lt_rand_normal(&rng, 2, (int64_t[]){5, 3}, 0.0, 0.5, LT_F32);  /* (H=5, D=3) */
    lt_tensor *v = lt_rand_normal(&rng, 2, (int64_t[]){2, 5}, 0.0, 0.5, LT_F32);  /* (C=2, H=5) */
    lt_ag_set_requires_grad(x, true);
    lt_ag_set_requires_grad(w, true);
    lt_ag_set_requires_grad(v, true);

    lt_tensor *h = lt_tanh(lt_matmul(x, lt_transpose(w, 0, 1)));      /* (4,5) */
    lt_tensor *logp = lt_log_softmax(lt_matmul(h, lt_transpose(v, 0, 1)), 1); /* (4,2) */
    lt_tensor *s = lt_sum(logp, 0, NULL, false);

    lt_tensor *gx; /* d s / d x, itself differentiable */
    if (lt_ag_grad(1, &s, 1, &x, NULL, true, true, false, &gx) < 0) {
        fprintf(stderr, "mlp_grad: %s\n", lt_last_error());
        return 1;
    }
    lt_tensor *penalty = lt_sum(lt_mul(gx, gx), 0, NULL, false);
    if (lt_ag_backward(penalty, NULL, false, false) < 0) {
        fprintf(stderr, "mlp_grad: %s\n", lt_last_error());
        return 1;
    }
    printf("penalty = %.6f\n", lt_item(penalty));
    printf("|d penalty / d w| sum = %.6f\n", lt_item(lt_sum(lt_abs(lt_ag_grad_of(w)), 0, NULL, false)));
    printf("|d penalty / d v| sum = %.6f\n", lt_item(lt_sum(lt_abs(lt_ag_grad_of(v)), 0, NULL, false)));
    lt_frame_pop(frame);
    return 0;
}
