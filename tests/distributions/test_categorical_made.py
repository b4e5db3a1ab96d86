"""Categorical MADE: exact normalization, sampler goodness of fit, validation."""

from __future__ import annotations

import itertools

import pytest
import torch
from scipy import stats as scipy_stats

from pyro_ar.distributions import CategoricalMADE
from pyro_ar.nn import MaskedAutoencoder


def _distribution(context=None, num_masks=1, mask_index=None, scale=1.0, seed=0):
    torch.manual_seed(seed)
    network = MaskedAutoencoder(
        3,
        [12],
        outputs_per_dim=4,
        ordering="random",
        direct_connections=True,
        context_features=2 if context is not None else 0,
        num_masks=num_masks,
        activation=torch.nn.Tanh,
        seed=seed,
    ).double()
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.normal_()
        network.output.weight.mul_(scale)
        network.output.bias.mul_(scale)
        network.direct.weight.mul_(scale)
    return CategoricalMADE(network, context, mask_index)


def _all_states():
    return torch.tensor(list(itertools.product(range(4), repeat=3)))  # (64, 3)


@pytest.mark.parametrize("with_context", [False, True])
def test_normalizes_over_all_states(with_context):
    context = torch.randn(2, 2, dtype=torch.float64) if with_context else None
    distribution = _distribution(context)
    log_probs = distribution.log_prob(_all_states().unsqueeze(1))  # (64, batch)
    assert log_probs.shape == ((64, 2) if with_context else (64, 1))
    total = log_probs.logsumexp(0)
    assert torch.allclose(total, torch.zeros_like(total), atol=1e-10)
    assert log_probs.std(0).min() > 0.1


def _p_value(samples, probs):
    states = _all_states()
    index = (samples[:, None, :] == states[None]).all(-1).float().argmax(-1)
    counts = torch.bincount(index, minlength=64).double()
    expected = probs.detach().double() * len(samples)
    return scipy_stats.chisquare(counts.numpy(), expected.numpy()).pvalue


def test_sampler_matches_log_prob_and_a_wrong_sampler_fails():
    distribution = _distribution(seed=3)
    probs = distribution.log_prob(_all_states()).exp()
    samples = distribution.sample((40000,))
    assert samples.dtype == torch.long and samples.shape == (40000, 3)
    assert _p_value(samples, probs) > 1e-3
    wrong = _distribution(seed=3, scale=1.1).sample((40000,))
    assert _p_value(wrong, probs) < 1e-6


def test_bad_values_are_rejected():
    distribution = _distribution()
    for bad in (torch.tensor([0, 4, 1]), torch.tensor([0.5, 1, 1]), torch.tensor([-1, 0, 0])):
        with pytest.raises(ValueError, match="integers in \\[0, 3\\]"):
            distribution.log_prob(bad)
    with pytest.raises(ValueError, match="shape"):
        distribution.log_prob(torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="K >= 2"):
        CategoricalMADE(MaskedAutoencoder(3, [4]))


def test_ensemble_of_categorical_masks_normalizes():
    from pyro_ar.distributions import MADEEnsemble

    network = _distribution(num_masks=3).network
    ensemble = MADEEnsemble(network, component=CategoricalMADE)
    log_probs = ensemble.log_prob(_all_states())
    assert log_probs.logsumexp(0).abs() < 1e-10
    samples = ensemble.sample((5,))
    assert samples.dtype == torch.long and samples.shape == (5, 3)
    per_mask = torch.stack(
        [CategoricalMADE(network, None, m).log_prob(_all_states()) for m in range(3)]
    )
    assert (per_mask.std(0) > 1e-3).any()
