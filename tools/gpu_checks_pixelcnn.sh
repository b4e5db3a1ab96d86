#!/usr/bin/env bash
# The PixelCNN checks that need a GPU (issue 17), as one script of under 10 minutes:
# the speed bench on the device, then a time-boxed MNIST run of a larger Gated PixelCNN.
# Usage (from the repository root, the project installed): bash tools/gpu_checks_pixelcnn.sh
set -euo pipefail
python -m pytest -q tests/distributions/test_pixelcnn.py -k "cached or sampler" -p no:cacheprovider
python bench/pixelcnn_speed.py --device cuda --hidden 64 --layers 8 --naive-rows 4
python bench/pixelcnn_mnist_nll.py --device cuda --hidden 64 --layers 8 --batch-size 100 \
    --max-minutes 6 --epochs 100
