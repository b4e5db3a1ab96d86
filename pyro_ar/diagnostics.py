r"""MCMC output as ArviZ ``InferenceData``.

Built on ``arviz.from_dict`` (present in ArviZ 0.23 and 1.x alike; ArviZ 1.x has no Pyro
converter), with the ``(chain, draw, ...)`` layout ArviZ expects, so ``az.summary`` (R-hat,
ESS), ``az.plot_trace`` and ``az.plot_autocorr`` work, also for chains that
:class:`~pyro_ar.infer.GibbsKernel` vectorized inside one tensor.

References:
    | ArviZ a unified library for exploratory analysis of Bayesian models in Python
    | (Kumar et al., 2019) https://doi.org/10.21105/joss.01143
"""

from __future__ import annotations

__all__ = ["to_inference_data"]

import logging
from collections.abc import Mapping

import numpy as np
import pyro.poutine as poutine
import torch
from pyro.infer import MCMC
from pyro.poutine.util import site_is_subsample

logger = logging.getLogger(__name__)

#: Per-draw statistics that kernels save next to the sites, and their ArviZ names.
_STATISTICS = {"lp__": "lp", "flip_rate__": "flip_rate"}


def _to_numpy(value) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def _vectorized(kernel) -> int | None:
    return getattr(kernel, "num_vectorized_chains", None)


def _chains_first(value: torch.Tensor, axis: int) -> torch.Tensor:
    """``(pyro chains, draws, ..., C at axis, ...)`` -> ``(pyro chains * C, draws, ...)``."""
    moved = value.movedim(2 + axis, 1)  # (P, C, draws, rest)
    return moved.reshape((-1,) + moved.shape[2:])


def to_inference_data(
    mcmc: MCMC,
    observed_data: Mapping[str, object] | None = None,
    sites: list[str] | None = None,
    log_likelihood: bool = True,
):
    """Converts a finished ``pyro.infer.MCMC`` run to ``InferenceData``.

    Groups:

    * ``posterior``: each site as ``(chain, draw, ...)``; the sites of a
      :class:`~pyro_ar.infer.GibbsKernel` are discrete and stay integer (``int64``); vectorized
      chains (``num_vectorized_chains=C``) become ``C`` ArviZ chains per Pyro chain.
    * ``sample_stats``: ``lp`` and ``flip_rate`` when the kernel saves them (``lp__``,
      ``flip_rate__``), ``diverging`` when it reports divergences.
    * ``observed_data``: the given values, or the model's observed sites (``pyro.factor`` and
      ``pyro.deterministic`` sites hold no data and are left out).
    * ``log_likelihood``: per observed site and draw, ``log_prob`` of the observed values, only
      where it is normalized (never for ``pyro.factor`` terms): a site whose distribution
      cannot give a normalized density (an RBM without a known :math:`\\log Z`) is left out,
      never filled with an unnormalized one.

    The MCMC object is not modified: ``mcmc.get_samples()`` and ``mcmc.summary()`` still see
    ``lp__`` and ``flip_rate__`` afterwards.

    Arguments:
        mcmc: A finished run of ``pyro.infer.MCMC``.
        observed_data: Observed values by site name (default: taken from the model).
        sites: Sites to include in ``posterior`` (default: all sampled sites).
        log_likelihood: Compute the ``log_likelihood`` group.

    Example:
        >>> import pyro
        >>> from pyro.distributions import Categorical
        >>> from pyro.infer import MCMC
        >>> from pyro_ar.infer import GibbsKernel
        >>> weather = lambda: pyro.sample("state", Categorical(torch.tensor([0.2, 0.3, 0.5])))
        >>> run = MCMC(GibbsKernel(weather, num_vectorized_chains=4), num_samples=50,
        ...            warmup_steps=10, disable_progbar=True)
        >>> run.run()
        >>> posterior = to_inference_data(run).posterior  # 4 vectorized chains: 4 ArviZ chains
        >>> sizes = dict(posterior.sizes)
        >>> sizes["chain"], sizes["draw"], str(posterior["state"].dtype)
        (4, 50, 'int64')
    """
    # a copy: MCMC returns its own dict, which summary() and later calls still need
    samples = dict(mcmc.get_samples(group_by_chain=True))
    kernel = mcmc.kernel
    chains_in_tensor = _vectorized(kernel)
    statistics = {k: samples.pop(k) for k in list(samples) if k in _STATISTICS}
    latent = dict(samples)  # every latent site: the model is conditioned on all of them
    if sites is not None:
        missing = set(sites) - set(samples)
        if missing:
            raise ValueError(f"no such sampled sites: {sorted(missing)}")
        samples = {name: samples[name] for name in sites}
    discrete = set(getattr(kernel, "discrete_sites", ()))
    posterior = {}
    for name, value in samples.items():
        if chains_in_tensor:
            value = _chains_first(value, kernel.chain_axis(name))
        array = _to_numpy(value)
        if name in discrete:
            array = (np.rint(array) if array.dtype.kind == "f" else array).astype(np.int64)
        posterior[name] = array
    num_chains, num_draws = next(iter(posterior.values())).shape[:2]
    sample_stats = {}
    for key, value in statistics.items():
        if chains_in_tensor:
            value = _chains_first(value, 0)
        sample_stats[_STATISTICS[key]] = _to_numpy(value).reshape(num_chains, num_draws)
    divergences = _divergences(mcmc)
    if isinstance(divergences, Mapping) and not chains_in_tensor:
        diverging = np.zeros((num_chains, num_draws), dtype=bool)
        for chain, name in enumerate(sorted(divergences)):
            indices = np.asarray(divergences[name], dtype=int)
            diverging[chain, indices[indices < num_draws]] = True
        sample_stats["diverging"] = diverging
    observed, likelihood = _observed_and_likelihood(mcmc, latent, log_likelihood)
    if observed_data is not None:
        observed = {name: _to_numpy(value) for name, value in observed_data.items()}
    import arviz as az  # imported here: arviz is slow to import and warns about its 1.x move

    return az.from_dict(
        posterior=posterior,
        sample_stats=sample_stats or None,
        observed_data=observed or None,
        log_likelihood=likelihood or None,
    )


def _divergences(mcmc: MCMC):
    """The kernel's per-chain divergences from ``mcmc.diagnostics()``, or ``None`` where Pyro
    cannot compute its diagnostics (its ESS and R-hat fail on integer samples, which
    :class:`~pyro_ar.infer.GibbsKernel` returns for categorical sites; Gibbs never diverges)."""
    if any(not value.is_floating_point() for value in mcmc.get_samples().values()):
        return None
    return mcmc.diagnostics().get("divergences")


def _is_data_site(site) -> bool:
    """An observed sample site that holds data: not a subsample index, not a ``pyro.factor``
    (an auxiliary site with no data) and not a ``pyro.deterministic`` value."""
    infer = site.get("infer") or {}
    return (
        site["type"] == "sample"
        and site["is_observed"]
        and not site_is_subsample(site)
        and not infer.get("is_auxiliary", False)
        and not infer.get("_deterministic", False)
    )


def _observed_and_likelihood(mcmc: MCMC, samples: Mapping, compute_likelihood: bool):
    """Observed values and per-draw log-likelihoods ``(chain, draw, ...)`` of observed sites,
    from the latent ``samples`` as ``get_samples(group_by_chain=True)`` gives them."""
    kernel = mcmc.kernel
    model = getattr(kernel, "chained_model", None) or kernel.model
    args, kwargs = getattr(mcmc, "_args", ()), getattr(mcmc, "_kwargs", {})
    num_chains, num_draws = next(iter(samples.values())).shape[:2]
    prior = poutine.trace(model).get_trace(*args, **kwargs)
    observed_names = {name for name, site in prior.nodes.items() if _is_data_site(site)}
    observed: dict[str, np.ndarray] = {}
    values: dict[str, list] = {}
    skipped: set[str] = set()
    for chain in range(num_chains):
        for draw in range(num_draws if compute_likelihood else 1):
            state = {name: value[chain, draw] for name, value in samples.items()}
            trace = poutine.trace(poutine.condition(model, data=state)).get_trace(*args, **kwargs)
            for name, site in trace.nodes.items():
                if name not in observed_names:
                    continue
                if name not in observed:
                    observed[name] = _to_numpy(site["value"])
                if not compute_likelihood or name in skipped:
                    continue
                try:
                    density = site["fn"].log_prob(site["value"])
                except Exception as error:  # an unnormalized site must not enter LOO/WAIC
                    logger.info("no log_likelihood for site %s: %s", name, error)
                    skipped.add(name)
                    continue
                values.setdefault(name, []).append(density.detach())
    likelihood = {}
    for name, draws in values.items():
        if name in skipped:
            continue
        stacked = torch.stack(draws).reshape((num_chains, num_draws) + draws[0].shape)
        if _vectorized(kernel):
            axis = draws[0].dim() - (kernel.max_plate_nesting + 1)
            stacked = _chains_first(stacked, max(axis, 0))
        likelihood[name] = _to_numpy(stacked)
    return observed, likelihood
