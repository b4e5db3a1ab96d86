r"""MCMC output as ArviZ ``InferenceData``.

Built on ``arviz.from_dict`` (present in ArviZ 0.23 and 1.x alike; ArviZ 1.x has no Pyro
converter), with the ``(chain, draw, ...)`` layout ArviZ expects, so ``az.summary`` (R-hat,
ESS), ``az.plot_trace`` and ``az.plot_autocorr`` work.

References:
    | ArviZ a unified library for exploratory analysis of Bayesian models in Python
    | (Kumar et al., 2019) https://doi.org/10.21105/joss.01143
"""

from __future__ import annotations

__all__ = ["to_inference_data"]

from collections.abc import Mapping

import numpy as np
import torch
from pyro.infer import MCMC


def _to_numpy(value) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def to_inference_data(
    mcmc: MCMC,
    observed_data: Mapping[str, object] | None = None,
    sites: list[str] | None = None,
):
    """Converts a finished ``pyro.infer.MCMC`` run to ``InferenceData``.

    Groups: ``posterior`` (each site as ``(chain, draw, ...)``, integer sites kept integer),
    ``sample_stats`` (``diverging`` per draw when the kernel reports divergences), and
    ``observed_data`` when given. No ``log_likelihood`` group is added: compute it yourself
    where the likelihood is normalized.

    Arguments:
        mcmc: A run of ``pyro.infer.MCMC``.
        observed_data: Optional observed values by site name.
        sites: Sites to include (default: all sampled sites).
    """
    samples = mcmc.get_samples(group_by_chain=True)
    if sites is not None:
        missing = set(sites) - set(samples)
        if missing:
            raise ValueError(f"no such sampled sites: {sorted(missing)}")
        samples = {name: samples[name] for name in sites}
    posterior = {name: _to_numpy(value) for name, value in samples.items()}
    num_chains, num_draws = next(iter(posterior.values())).shape[:2]
    sample_stats = {}
    divergences = mcmc.diagnostics().get("divergences")
    if isinstance(divergences, Mapping):
        diverging = np.zeros((num_chains, num_draws), dtype=bool)
        for chain, name in enumerate(sorted(divergences)):
            indices = np.asarray(divergences[name], dtype=int)
            diverging[chain, indices[indices < num_draws]] = True
        sample_stats["diverging"] = diverging
    import arviz as az  # imported here: arviz is slow to import and warns about its 1.x move

    observed = None
    if observed_data is not None:
        observed = {name: _to_numpy(value) for name, value in observed_data.items()}
    return az.from_dict(
        posterior=posterior, sample_stats=sample_stats or None, observed_data=observed
    )
