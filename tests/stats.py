"""Goodness-of-fit helpers built on scipy (Pyro's ``gof`` p-values fail for large statistics)."""

from __future__ import annotations

import torch
from scipy import stats


def states_to_index(values: torch.Tensor) -> torch.Tensor:
    """Binary vectors (..., D) to integers, most significant bit first (the order of
    ``enumerate_support``)."""
    num_dims = values.shape[-1]
    weights = 2 ** torch.arange(num_dims - 1, -1, -1, device=values.device)
    return (values.long() * weights).sum(-1)


def chi_square_p_value(samples: torch.Tensor, probs: torch.Tensor, min_expected: float = 5.0):
    """Pearson's chi-square test of binary ``samples`` (N, D) against ``probs`` over all 2^D
    states; states with a small expected count are pooled into one cell."""
    return cells_chi_square_p_value(states_to_index(samples), probs, min_expected)


def cells_chi_square_p_value(cells: torch.Tensor, probs: torch.Tensor, min_expected: float = 5.0):
    """Pearson's chi-square test of draws given as cell indices ``(N,)`` against cell
    probabilities ``probs``; cells with a small expected count are pooled into one cell."""
    samples = cells
    counts = torch.bincount(cells.cpu(), minlength=len(probs)).double()
    expected = probs.detach().cpu().double() * len(samples)
    large = expected >= min_expected
    observed_cells = torch.cat([counts[large], counts[~large].sum().reshape(1)])
    expected_cells = torch.cat([expected[large], expected[~large].sum().reshape(1)])
    keep = expected_cells > 0
    observed_cells, expected_cells = observed_cells[keep], expected_cells[keep]
    statistic = ((observed_cells - expected_cells) ** 2 / expected_cells).sum().item()
    return float(stats.chi2.sf(statistic, df=len(expected_cells) - 1)), statistic


def per_step_terms(distribution, x):
    """log p(x_k | x_<k) at every step k of the ordering, two ways through the public API:
    from the sampler's incremental path (``sample_conditional`` with the first k steps observed
    returns their log-likelihood as its log-weights) and from the parallel pass
    (``conditional_logits``). Shapes ``x.shape[:-1] + (D,)``, in the ordering."""
    num_dims = x.shape[-1]
    rank = distribution.rank
    weights = []
    for k in range(num_dims + 1):
        mask = (rank < k).expand(x.shape)
        weights.append(distribution.sample_conditional(x, mask, return_log_weights=True)[1])
    incremental = torch.stack(weights, -1).diff(dim=-1)
    logits = distribution.conditional_logits(x)[..., distribution.ordering]
    ordered = x[..., distribution.ordering]
    parallel = ordered * logits - torch.nn.functional.softplus(logits)
    return incremental, parallel
