"""PixelCNN speed, side by side in one run (issue 17's bars):

* sampling 100 binarized 28x28 images with the cached sampler (per-layer caches: the vertical
  stack one row at a time, the horizontal stack one pixel at a time) against the naive sampler
  of the same network (one full pass per pixel, as pytorch-generative samples): >= 10x;
* a training step (forward, backward, Adam) of the masked network against the same convolution
  stack with the masks removed: <= 1.3x.

The naive sampler's time is measured over its first ``--naive-rows`` rows and scaled to the
image (each of its steps is one full pass of the whole image, the same cost at every pixel;
``--naive-rows 28`` times all of it); the cached and naive images of those rows are checked
to be identical (the same random numbers). The unit tests check the two samplers equal over
whole images.

    python bench/pixelcnn_speed.py --threads 2
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
from common import write_result

from pyro_ar.infer.trainer import _adam
from pyro_ar.nn import MaskedConv2d, PixelCNNModule


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def sampling_seconds(module: PixelCNNModule, count: int, naive_rows: int, seed: int) -> dict:
    distribution = module()
    device = next(module.parameters()).device
    torch.manual_seed(seed)
    _synchronize(device)
    start = time.perf_counter()
    cached = distribution.sample((count,))
    _synchronize(device)
    cached_seconds = time.perf_counter() - start
    # the naive sampler, one full pass per pixel, over the first rows (the same random
    # numbers as the cached sampler: logistic noise for every pixel, drawn at once)
    channels, height, width = module.image_shape
    torch.manual_seed(seed)
    uniform = torch.rand((count,) + module.image_shape, device=device)
    noise = uniform.log() - torch.log1p(-uniform)
    naive = torch.zeros((count,) + module.image_shape, device=device)
    _synchronize(device)
    start = time.perf_counter()
    for row in range(naive_rows):
        for column in range(width):
            logits = distribution.conditional_logits(naive)[:, 0, 0, row, column]
            naive[:, 0, row, column] = (logits + noise[:, 0, row, column] > 0).float()
    _synchronize(device)
    naive_seconds = (time.perf_counter() - start) * height / naive_rows
    return {
        "cached_seconds": cached_seconds,
        "naive_seconds_per_image_batch": naive_seconds,
        "naive_rows_timed": naive_rows,
        "speedup": naive_seconds / cached_seconds,
        "identical_rows": bool(torch.equal(cached[:, :, :naive_rows], naive[:, :, :naive_rows])),
    }


def training_step_seconds(module: PixelCNNModule, batch: torch.Tensor, repeats: int) -> float:
    optimizer = _adam(list(module.parameters()), 1e-3, 0.0)

    def step() -> None:
        loss = -module().log_prob(batch).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    device = batch.device
    step()
    times = []
    for _ in range(repeats):
        _synchronize(device)
        start = time.perf_counter()
        step()
        _synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def without_masks(module: PixelCNNModule) -> PixelCNNModule:
    plain = copy.deepcopy(module)
    for layer in plain.modules():
        if isinstance(layer, MaskedConv2d):
            layer.mask = None
    return plain


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--naive-rows", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    figures = {}
    device = torch.device(args.device)
    batch = (torch.rand(args.batch_size, 1, 28, 28) < 0.3).float().to(device)
    for architecture in ("gated", "original"):
        module = PixelCNNModule(
            (1, 28, 28), args.hidden, architecture=architecture, num_layers=args.layers, seed=0
        ).to(device)
        with torch.no_grad():
            sampling = sampling_seconds(module, args.samples, args.naive_rows, seed=1)
        masked = training_step_seconds(module, batch, args.repeats)
        plain = training_step_seconds(without_masks(module), batch, args.repeats)
        figures[architecture] = {
            "sampling": sampling,
            "training_step_seconds": masked,
            "unmasked_training_step_seconds": plain,
            "training_step_ratio": masked / plain,
        }
        print(
            f"{architecture}: {args.samples} samples cached {sampling['cached_seconds']:.2f} s, "
            f"naive {sampling['naive_seconds_per_image_batch']:.1f} s "
            f"({sampling['speedup']:.0f}x; first {args.naive_rows} rows identical: "
            f"{sampling['identical_rows']}); training step {masked * 1000:.0f} ms vs "
            f"{plain * 1000:.0f} ms without masks ({masked / plain:.2f}x)"
        )
    write_result(
        "pixelcnn_speed" if device.type == "cpu" else f"pixelcnn_speed_{device.type}",
        {
            "hidden_channels": args.hidden,
            "num_layers": args.layers,
            "samples": args.samples,
            "batch_size": args.batch_size,
            "threads": torch.get_num_threads(),
            "device": str(device),
            **figures,
        },
    )


if __name__ == "__main__":
    main()
