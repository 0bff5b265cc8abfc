#!/usr/bin/env bash
# make demo: the project's main job. Until the training and evaluation tools
# land, it builds and runs the docs/examples program against the library.
set -eu
cd "$(dirname "$0")/.."
echo "demo: building and running docs/examples/mlp_grad.c (double backprop through an MLP)" >&2
mkdir -p build/demo
cc -std=c11 -Ibuild/include docs/examples/mlp_grad.c -o build/demo/mlp_grad build/libtensor.a \
   -fopenmp -lopenblas -lpng -lz -lcjson -lm -lpthread
./build/demo/mlp_grad
