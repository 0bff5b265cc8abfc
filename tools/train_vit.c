/*
 * tools/train_vit: train a Vision Transformer (timm's layout) with the
 * paper's methods. `train_vit --help` lists the flags; docs/training.md
 * explains the recipe. The work is lt_rrr_train (rrr/train.c).
 */
#include "train_cli.h"

int main(int argc, char **argv) { return run_training(argc, argv, LT_RRR_ARCH_VIT); }
