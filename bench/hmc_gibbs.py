"""Effective samples per second of the continuous sites of a mixed model: ``HMCGibbs``
(Gibbs for the labels, NUTS for the means) against Pyro's NUTS with the labels enumerated out,
and against NumPyro's ``DiscreteHMCGibbs`` when NumPyro is installed (``pip install numpyro``,
an optional dependency of this benchmark only), side by side in one run.

Every sampler starts from the prior means (see ``start``). The model: a
two-component Gaussian mixture with unknown means and ``N`` unlabelled points. ESS is the
smallest of the two means' (Pyro's ``effective_sample_size``); the time covers warmup and
sampling (and JAX's compilation for NumPyro, as in a user's first run). Every sampler's
posterior means are printed so that they can be compared (they must agree).

    python bench/hmc_gibbs.py
    python bench/hmc_gibbs.py --points 200 --samples 1000 --runs 3
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pyro
import pyro.distributions as dist
import torch
from common import write_result
from pyro.infer import MCMC, NUTS
from pyro.infer.autoguide.initialization import init_to_value
from pyro.ops.stats import effective_sample_size

from pyro_ar.infer import HMCGibbs

PRIOR_MEANS = (-2.0, 2.0)
#: Tight enough that the posterior has one mode (no label switching between runs)
PRIOR_SCALE = 0.5


def start():
    """Every sampler starts at the prior means: the swapped labelling is a local mode with
    negligible mass that a chain started there does not leave, which would confound the
    comparison."""
    return init_to_value(values={"means": torch.tensor(PRIOR_MEANS)})


def make_data(points: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    labels = torch.rand(points, generator=generator) < 0.5
    return torch.randn(points, generator=generator) + torch.where(labels, 1.5, -1.5)


def mixture_model(data: torch.Tensor, enumerate_labels: bool = False) -> None:
    means = pyro.sample("means", dist.Normal(torch.tensor(PRIOR_MEANS), PRIOR_SCALE).to_event(1))
    with pyro.plate("data", len(data)):
        infer = {"enumerate": "parallel"} if enumerate_labels else {}
        labels = pyro.sample("labels", dist.Bernoulli(0.5), infer=infer)
        pyro.sample("x", dist.Normal(means[labels.long()], 1.0), obs=data)


def summarize(means: np.ndarray, seconds: float) -> dict:
    """``means``: ``(chains, draws, 2)``."""
    ess = effective_sample_size(torch.as_tensor(means, dtype=torch.float64), 0, 1)
    return {
        "seconds": seconds,
        "ess_min": float(ess.min()),
        "ess_per_second": float(ess.min()) / seconds,
        "posterior_mean": [float(v) for v in means.reshape(-1, 2).mean(0)],
    }


def run_pyro(data, kernel, warmup: int, samples: int, **run_kwargs) -> dict:
    mcmc = MCMC(kernel, num_samples=samples, warmup_steps=warmup, disable_progbar=True)
    start = time.perf_counter()
    mcmc.run(data, **run_kwargs)
    seconds = time.perf_counter() - start
    means = mcmc.get_samples(group_by_chain=True)["means"].numpy()
    return summarize(means, seconds)


def run_numpyro(data, warmup: int, samples: int, seed: int) -> dict | None:
    try:
        import jax
        import numpyro
        import numpyro.distributions as numpyro_dist
        from numpyro.infer import MCMC as NumPyroMCMC
        from numpyro.infer import NUTS as NumPyroNUTS
        from numpyro.infer import DiscreteHMCGibbs
    except ImportError:
        return None
    import jax.numpy as jnp

    def model(x):
        means = numpyro.sample(
            "means", numpyro_dist.Normal(jnp.array(PRIOR_MEANS), PRIOR_SCALE).to_event(1)
        )
        with numpyro.plate("data", x.shape[0]):
            labels = numpyro.sample("labels", numpyro_dist.Bernoulli(0.5))
            numpyro.sample("x", numpyro_dist.Normal(means[labels], 1.0), obs=x)

    start = numpyro.infer.init_to_value(values={"means": jnp.array(PRIOR_MEANS)})
    kernel = DiscreteHMCGibbs(NumPyroNUTS(model, init_strategy=start))
    mcmc = NumPyroMCMC(kernel, num_warmup=warmup, num_samples=samples, progress_bar=False)
    x = jnp.asarray(data.numpy())
    start = time.perf_counter()  # includes JAX's compilation, as a user's first run does
    mcmc.run(jax.random.PRNGKey(seed), x)
    means = np.asarray(mcmc.get_samples()["means"])[None]
    seconds = time.perf_counter() - start
    return summarize(means, seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--points", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--samples", type=int, default=700)
    parser.add_argument("--runs", type=int, default=2)
    arguments = parser.parse_args()
    torch.set_default_dtype(torch.float64)
    data = make_data(arguments.points, seed=0)
    runs = []
    for run in range(arguments.runs):
        pyro.set_rng_seed(run)
        ours = run_pyro(
            data,
            HMCGibbs(NUTS(mixture_model, init_strategy=start())),
            arguments.warmup,
            arguments.samples,
        )
        pyro.set_rng_seed(run)
        enumerated = run_pyro(
            data,
            NUTS(mixture_model, max_plate_nesting=1, init_strategy=start()),
            arguments.warmup,
            arguments.samples,
            enumerate_labels=True,
        )
        numpyro_result = run_numpyro(data, arguments.warmup, arguments.samples, seed=run)
        record = {
            "hmc_gibbs": ours,
            "enumerated_nuts": enumerated,
            "numpyro_discrete_hmc_gibbs": numpyro_result,
            "ratio_vs_enumerated_nuts": ours["ess_per_second"] / enumerated["ess_per_second"],
        }
        if numpyro_result is not None:
            record["ratio_vs_numpyro"] = ours["ess_per_second"] / numpyro_result["ess_per_second"]
        runs.append(record)
        for name in ("hmc_gibbs", "enumerated_nuts", "numpyro_discrete_hmc_gibbs"):
            result = record[name]
            if result is None:
                print(f"run {run}: {name}: not installed")
                continue
            print(
                f"run {run}: {name:28s} {result['seconds']:7.1f} s  ESS {result['ess_min']:7.1f}"
                f"  ESS/s {result['ess_per_second']:7.2f}  means {result['posterior_mean']}"
            )
    ratios = [record["ratio_vs_enumerated_nuts"] for record in runs]
    print(f"ESS/s ratio HMCGibbs / enumerated NUTS: {min(ratios):.2f}-{max(ratios):.2f}")
    figures = {
        "points": arguments.points,
        "warmup": arguments.warmup,
        "samples": arguments.samples,
        "runs": runs,
        "ratio_vs_enumerated_nuts_range": [min(ratios), max(ratios)],
    }
    numpyro_ratios = [
        record["ratio_vs_numpyro"] for record in runs if "ratio_vs_numpyro" in record
    ]
    if numpyro_ratios:
        print(
            f"ESS/s ratio HMCGibbs / NumPyro DiscreteHMCGibbs: "
            f"{min(numpyro_ratios):.2f}-{max(numpyro_ratios):.2f}"
        )
        figures["ratio_vs_numpyro_range"] = [min(numpyro_ratios), max(numpyro_ratios)]
    write_result(f"hmc_gibbs_mixture_{arguments.points}", figures)


if __name__ == "__main__":
    main()
