/*
 * tools/train_resnet18: train ResNet-18 (torchvision's layout) with the
 * paper's methods. `train_resnet18 --help` lists the flags; docs/training.md
 * explains the recipe. The work is lt_rrr_train (rrr/train.c).
 */
#include "train_cli.h"

int main(int argc, char **argv) { return run_training(argc, argv, LT_RRR_ARCH_RESNET18); }
