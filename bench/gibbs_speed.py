"""Block-Gibbs throughput of an RBM: pyro_ar against scikit-learn's ``BernoulliRBM.gibbs`` and a
plain PyTorch loop with ``torch.bernoulli``, same sweeps, side by side in one run.

Target: 1000 chains, 784 visible x 500 hidden, float32: at least 3x sklearn's sweeps
per second. ``pyro_ar`` is ``RBM.gibbs_chain`` (the loop a user runs; it reuses its buffers),
``pyro_ar_gibbs_step`` one ``gibbs_step`` call per sweep. Also times ``GibbsKernel`` inside
``pyro.infer.MCMC`` (vectorized chains) to show
the kernel's overhead over the raw sweep, and the sweep's two GEMMs alone (no sampling) through
PyTorch's default float32 GEMM (MKL) and through oneDNN (``pyro_ar.ops.fused_linear``), the
ceilings of a sweep built on each.

    python bench/gibbs_speed.py
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pyro
import torch
from common import write_result
from pyro.infer import MCMC
from sklearn.neural_network import BernoulliRBM

from pyro_ar.distributions import RBM
from pyro_ar.infer import GibbsKernel
from pyro_ar.ops import BernoulliSampler, fused_linear, onednn_available


def sweeps_per_second(step, state, sweeps: int, repeats: int) -> float:
    """Median rate over ``repeats`` timed runs of ``sweeps`` sweeps (after a warm-up)."""
    for _ in range(3):
        state = step(state)
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(sweeps):
            state = step(state)
        rates.append(sweeps / (time.perf_counter() - start))
    return float(np.median(rates))


def chain_sweeps_per_second(rbm: RBM, start: torch.Tensor, sweeps: int, repeats: int) -> float:
    """Median rate of ``RBM.gibbs_chain`` running ``sweeps`` sweeps from ``start``."""
    rbm.gibbs_chain((start.shape[0],), burn_in=2, initial=start)
    rates = []
    for _ in range(repeats):
        begin = time.perf_counter()
        rbm.gibbs_chain((start.shape[0],), num_draws=1, burn_in=sweeps - 1, initial=start)
        rates.append(sweeps / (time.perf_counter() - begin))
    return float(np.median(rates))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chains", type=int, default=1000)
    parser.add_argument("--visible", type=int, default=784)
    parser.add_argument("--hidden", type=int, default=500)
    parser.add_argument("--sweeps", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)
    weight = 0.05 * torch.randn(args.hidden, args.visible)
    visible_bias = 0.1 * torch.randn(args.visible)
    hidden_bias = 0.1 * torch.randn(args.hidden)
    rbm = RBM(weight, visible_bias, hidden_bias)
    start = torch.bernoulli(torch.full((args.chains, args.visible), 0.5))

    reference = BernoulliRBM(n_components=args.hidden, random_state=0)
    reference.components_ = weight.numpy().astype(np.float32)
    reference.intercept_hidden_ = hidden_bias.numpy().astype(np.float32)
    reference.intercept_visible_ = visible_bias.numpy().astype(np.float32)
    reference.random_state_ = np.random.RandomState(0)

    sampler = BernoulliSampler()

    def ours(v):
        # one gibbs_step call per sweep (fresh tensors each time), one sampler for the run
        return rbm.gibbs_step(v, sampler=sampler)[0]

    def plain_torch(v):
        h = torch.bernoulli(torch.sigmoid(v @ weight.T + hidden_bias))
        return torch.bernoulli(torch.sigmoid(h @ weight + visible_bias))

    def sklearn(v):
        return reference.gibbs(v)

    hidden_state = torch.bernoulli(torch.full((args.chains, args.hidden), 0.5))

    def matmuls_only(v):
        # the two GEMMs of a sweep through torch's default float32 GEMM, nothing else
        torch.addmm(hidden_bias, v, weight.T)
        return torch.addmm(visible_bias, hidden_state, weight)

    def onednn_matmuls_only(v):
        # the same through oneDNN, with the sigmoid fused: the floor of pyro_ar's sweep
        fused_linear(v, weight, hidden_bias, "sigmoid")
        return fused_linear(hidden_state, weight.T, visible_bias, "sigmoid")

    rates = {}
    # alternate the contenders so that the machine's drift hits all alike
    for _ in range(2):
        rates.setdefault("pyro_ar", []).append(
            chain_sweeps_per_second(rbm, start, args.sweeps, args.repeats)
        )
        rates.setdefault("pyro_ar_gibbs_step", []).append(
            sweeps_per_second(ours, start, args.sweeps, args.repeats)
        )
        rates.setdefault("sklearn", []).append(
            sweeps_per_second(sklearn, start.numpy(), args.sweeps, args.repeats)
        )
        rates.setdefault("torch_bernoulli_loop", []).append(
            sweeps_per_second(plain_torch, start, args.sweeps, args.repeats)
        )
        rates.setdefault("matmuls_only_mkl", []).append(
            sweeps_per_second(matmuls_only, start, args.sweeps, args.repeats)
        )
        rates.setdefault("matmuls_only_onednn", []).append(
            sweeps_per_second(onednn_matmuls_only, start, args.sweeps, args.repeats)
        )
    rates = {name: max(values) for name, values in rates.items()}

    def model():
        pyro.sample("image", rbm)

    # a short first run pays the one-time costs (Pyro's tracing, imports); then best of two
    MCMC(
        GibbsKernel(model, num_vectorized_chains=args.chains),
        num_samples=3,
        warmup_steps=1,
        disable_progbar=True,
    ).run()
    mcmc_rates = []
    for _ in range(2):
        kernel = GibbsKernel(model, num_vectorized_chains=args.chains)
        mcmc = MCMC(kernel, num_samples=args.sweeps, warmup_steps=3, disable_progbar=True)
        begin = time.perf_counter()
        mcmc.run()
        mcmc_rates.append((args.sweeps + 3) / (time.perf_counter() - begin))
    rates["pyro_ar_mcmc_kernel"] = max(mcmc_rates)

    ratio = rates["pyro_ar"] / rates["sklearn"]
    for name, rate in rates.items():
        print(f"{name:22s} {rate:7.1f} sweeps/s ({rate / rates['sklearn']:.2f}x sklearn)")
    write_result(
        "gibbs_speed",
        {
            "chains": args.chains,
            "visible": args.visible,
            "hidden": args.hidden,
            "dtype": "float32",
            "onednn_available": onednn_available(),
            "numpy_blas": np.show_config(mode="dicts")["Build Dependencies"]["blas"]["name"],
            "sweeps_per_second": rates,
            "speed_ratio_vs_sklearn": ratio,
        },
    )


if __name__ == "__main__":
    main()
