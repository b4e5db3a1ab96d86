"""Batched n-gram scoring of id tensors on a GPU, checked against the CPU kernel.

Fits the Penn Treebank 5-gram (modified Kneser-Ney) on the CPU, moves it to the GPU with
``model.to("cuda")``, and scores the test set as one id stream there (the ``searchsorted``
reference path: one vectorized look-up per order): the scores must equal the CPU's compiled
kernel to float64 rounding, and the times of both are printed (GPU timed with synchronization,
median of the repeats, after a warm-up). Also scores a batch of sampled sequences with
``NGramChain.log_prob`` on both devices.

    python bench/ngram_gpu.py            # needs a CUDA device; about a minute
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch
from common import write_result

from pyro_ar.data.penn_treebank import load_penn_treebank
from pyro_ar.distributions import NGramChain
from pyro_ar.ngram import NGramModel


def timed(function, repeats: int, device: torch.device) -> float:
    function()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        function()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--copies", type=int, default=16, help="copies of the test set scored")
    parser.add_argument("--device", default="cuda", help="cpu for a dry run of the script")
    args = parser.parse_args()
    cuda = torch.device(args.device)
    if cuda.type == "cuda" and not torch.cuda.is_available():
        sys.exit("no CUDA device")
    train, test = load_penn_treebank("train"), load_penn_treebank("test")
    model = NGramModel.fit(train, order=5, special_tokens="unknown")
    on_gpu = model.to(cuda)
    flat, _ = model.vocabulary.encode_corpus(test * args.copies)
    ids = torch.from_numpy(flat).unsqueeze(0)
    cpu_scores = model.stream_log_probs(ids)
    gpu_scores = on_gpu.stream_log_probs(ids.to(cuda))
    difference = (gpu_scores.cpu() - cpu_scores).abs().nan_to_num(0.0).max().item()
    cpu_seconds = timed(lambda: model.stream_log_probs(ids), args.repeats, torch.device("cpu"))
    ids_on_gpu = ids.to(cuda)
    gpu_seconds = timed(lambda: on_gpu.stream_log_probs(ids_on_gpu), args.repeats, cuda)
    chain_cpu = NGramChain(model, length=30)
    chain_gpu = NGramChain(on_gpu, length=30)
    torch.manual_seed(0)
    sequences = chain_cpu.sample((4096,))
    chain_difference = (
        (chain_gpu.log_prob(sequences.to(cuda)).cpu() - chain_cpu.log_prob(sequences)).abs().max()
    ).item()
    figures = {
        "tokens": int(ids.numel()),
        "max_abs_difference_gpu_cpu": difference,
        "cpu_seconds": cpu_seconds,
        "gpu_seconds": gpu_seconds,
        "gpu_speed_ratio": cpu_seconds / gpu_seconds,
        "chain_log_prob_max_abs_difference": chain_difference,
        "device": torch.cuda.get_device_name(0) if cuda.type == "cuda" else str(cuda),
    }
    print(
        f"{figures['tokens']} tokens: CPU kernel {cpu_seconds * 1e3:.1f} ms, GPU "
        f"{gpu_seconds * 1e3:.1f} ms ({figures['gpu_speed_ratio']:.2f}x); max |difference| "
        f"{difference:.1e}; NGramChain.log_prob of 4096 samples differs by {chain_difference:.1e}"
    )
    assert difference < 1e-9 and chain_difference < 1e-9, "GPU and CPU scores differ"
    if cuda.type == "cuda":
        write_result("ngram_gpu", figures)


if __name__ == "__main__":
    main()
