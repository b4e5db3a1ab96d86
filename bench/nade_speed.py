"""NADE speed at D=784, H=500, batch 100: log_prob without gradients, a training step, and
sampling, side by side with plain-PyTorch NADE implementations measured in the same run.

Targets (2 CPU cores): log_prob >= 3,000 examples/s, training step >= 800 examples/s,
100 samples in <= 0.1 s. The peers are the usual ways to write NADE in PyTorch:

* ``materialized``: all running sums at once with ``cumsum``, a (batch, D, H) tensor;
* ``loop``: a Python loop over the D dimensions carrying the running sum.

    python bench/nade_speed.py
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from common import median_seconds, write_result

from pyro_ar.nn import NADEModule


def materialized_log_prob(x, weight, bias, output_weight, output_bias):
    """Peer 1: a_d for every d via an exclusive cumsum, materializing (N, D, H)."""
    contributions = x.unsqueeze(-1) * weight.T  # (N, D, H)
    running = torch.cumsum(contributions, dim=1) - contributions + bias
    logits = (torch.sigmoid(running) * output_weight).sum(-1) + output_bias
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)


def loop_log_prob(x, weight, bias, output_weight, output_bias):
    """Peer 2: a Python loop over dimensions carrying the running sum."""
    running = bias.expand(x.shape[0], -1)
    logits = []
    for d in range(x.shape[1]):
        logits.append(torch.sigmoid(running) @ output_weight[d] + output_bias[d])
        running = running + x[:, d : d + 1] * weight[:, d]
    logits = torch.stack(logits, dim=1)
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)


def throughput(function: Callable[[], object], batch: int, repeats: int) -> float:
    """Examples per second: ``batch`` over the median time of ``repeats`` calls."""
    return batch / median_seconds(function, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dims", type=int, default=784)
    parser.add_argument("--hidden", type=int, default=500)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    torch.manual_seed(0)
    x = (torch.rand(args.batch, args.dims) < 0.13).float()
    module = NADEModule(args.dims, args.hidden, data=x, seed=0)
    parameters = [
        module.input_weight,
        module.hidden_bias,
        module.output_weight,
        module.output_bias,
    ]
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-4)

    def ours_forward():
        with torch.no_grad():
            return module().log_prob(x)

    def ours_step():
        optimizer.zero_grad()
        (-module().log_prob(x).mean()).backward()
        optimizer.step()

    def peer_forward(peer):
        def run():
            with torch.no_grad():
                return peer(x, *parameters)

        return run

    def peer_step(peer):
        def run():
            optimizer.zero_grad()
            (-peer(x, *parameters).mean()).backward()
            optimizer.step()

        return run

    # all three compute the same function
    with torch.no_grad():
        reference = ours_forward()
        for peer in (materialized_log_prob, loop_log_prob):
            assert torch.allclose(peer(x, *parameters), reference, atol=1e-2)

    repeats, batch = args.repeats, args.batch
    figures = {
        "log_prob_no_grad": {
            "pyro_ar": throughput(ours_forward, batch, repeats),
            "materialized": throughput(peer_forward(materialized_log_prob), batch, repeats),
            "loop": throughput(peer_forward(loop_log_prob), batch, max(3, repeats // 3)),
        },
        "training_step": {
            "pyro_ar": throughput(ours_step, batch, repeats),
            "materialized": throughput(peer_step(materialized_log_prob), batch, repeats),
            "loop": throughput(peer_step(loop_log_prob), batch, max(3, repeats // 3)),
        },
    }
    distribution = module()
    sample_times = []
    for _ in range(max(5, repeats // 2)):
        start = time.perf_counter()
        distribution.sample((100,))
        sample_times.append(time.perf_counter() - start)
    figures["sample_100_seconds"] = statistics.median(sample_times)

    print(f"NADE D={args.dims} H={args.hidden} batch={batch}, {torch.get_num_threads()} threads")
    for task in ("log_prob_no_grad", "training_step"):
        row = figures[task]
        ratios = {peer: row["pyro_ar"] / row[peer] for peer in ("materialized", "loop")}
        figures[task + "_speedup"] = ratios
        print(
            f"{task:18s} pyro_ar {row['pyro_ar']:7.0f} ex/s | materialized "
            f"{row['materialized']:6.0f} ({ratios['materialized']:.2f}x) | loop "
            f"{row['loop']:6.0f} ({ratios['loop']:.2f}x)"
        )
    print(f"sampling 100 examples: {figures['sample_100_seconds']:.3f} s")
    write_result(
        "nade_speed", {"dims": args.dims, "hidden": args.hidden, "batch": batch, **figures}
    )


if __name__ == "__main__":
    main()
