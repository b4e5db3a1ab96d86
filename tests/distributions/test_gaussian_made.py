"""Gaussian MADE: inversion, gradients, normalization, and use as an SVI guide."""

from __future__ import annotations

import math

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import SVI, Trace_ELBO
from pyro.optim import Adam
from scipy import stats

from pyro_ar.distributions import GaussianMADE, MixtureOfGaussiansMADE
from pyro_ar.nn import MaskedAutoencoder


def _network(num_dims=4, context_features=0, hidden=(10, 8), seed=0):
    torch.manual_seed(seed)
    network = MaskedAutoencoder(
        num_dims,
        hidden,
        outputs_per_dim=2,
        ordering="random",
        direct_connections=True,
        context_features=context_features,
        activation=torch.nn.Tanh,
        seed=seed,
    ).double()
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.mul_(0.5)
    return network


def _mass_on_a_grid(distribution) -> float:
    """Integral of a 2-D density over [-12, 12]^2 by the midpoint rule."""
    grid = torch.linspace(-12, 12, 1201, dtype=torch.float64)
    x, y = torch.meshgrid(grid, grid, indexing="ij")
    points = torch.stack([x, y], -1).reshape(-1, 2)
    with torch.no_grad():
        return float(distribution.log_prob(points).exp().sum() * (grid[1] - grid[0]) ** 2)


def test_inverse_recovers_the_noise():
    network = _network(context_features=2)
    context = torch.randn(3, 2, dtype=torch.float64)
    distribution = GaussianMADE(network, context)
    noise = torch.randn(5, 3, 4, dtype=torch.float64)
    sample = distribution.transform(noise)
    assert sample.shape == (5, 3, 4)
    assert torch.allclose(distribution.inverse(sample), noise, atol=1e-10)


def test_change_of_variables_identity():
    """log p(T(eps)) = log N(eps) - sum_d log sigma_d: the density is the pushforward's."""
    distribution = GaussianMADE(_network())
    noise = torch.randn(50, 4, dtype=torch.float64)
    sample = distribution.transform(noise)
    _, log_scale = distribution.conditional_parameters(sample)
    expected = dist.Normal(0.0, 1.0).log_prob(noise).sum(-1) - log_scale.sum(-1)
    assert torch.allclose(distribution.log_prob(sample), expected, atol=1e-10)


def test_gradcheck_of_rsample_and_its_log_prob():
    network = _network(num_dims=3, context_features=2, hidden=(6,))
    noise = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    context = torch.randn(2, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda n, c: GaussianMADE(network, c).transform(n), (noise, context)
    )
    assert torch.autograd.gradcheck(
        lambda n, c: GaussianMADE(network, c).log_prob(GaussianMADE(network, c).transform(n)),
        (noise, context),
    )
    sample = GaussianMADE(network, context).rsample()
    sample.sum().backward()
    assert all(p.grad is not None for p in network.parameters())


def test_density_integrates_to_one_in_two_dimensions():
    distribution = GaussianMADE(_network(num_dims=2, hidden=(8,)))
    assert _mass_on_a_grid(distribution) == pytest.approx(1.0, abs=1e-3)


def test_a_network_with_zero_weights_is_an_independent_normal():
    network = _network()
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.zero_()
        network.output.bias.copy_(torch.tensor([1.0, -0.5] * 4, dtype=torch.float64))
    distribution = GaussianMADE(network)
    x = torch.randn(10, 4, dtype=torch.float64)
    expected = dist.Normal(1.0, math.exp(-0.5)).log_prob(x).sum(-1)
    assert torch.allclose(distribution.log_prob(x), expected)
    samples = distribution.sample((20000,))
    for d in range(4):
        result = stats.kstest(samples[:, d].numpy(), stats.norm(1.0, math.exp(-0.5)).cdf)
        assert result.pvalue > 1e-3
    wrong = stats.kstest(samples[:, 0].numpy(), stats.norm(1.0, 1.1 * math.exp(-0.5)).cdf)
    assert wrong.pvalue < 1e-3  # the test has power


def test_as_svi_guide_the_elbo_reaches_the_exact_log_evidence():
    """z ~ N(0, I_2), x ~ N(A z, s^2 I_3): the posterior is a correlated Gaussian, which a
    Gaussian MADE with direct connections represents exactly."""
    pyro.set_rng_seed(0)
    weight = torch.tensor([[1.0, 0.5], [-0.3, 1.2], [0.8, -0.9]], dtype=torch.float64)
    noise_scale = 0.5
    x = torch.tensor([1.0, -0.5, 0.7], dtype=torch.float64)
    evidence = dist.MultivariateNormal(
        torch.zeros(3, dtype=torch.float64),
        weight @ weight.T + noise_scale**2 * torch.eye(3, dtype=torch.float64),
    ).log_prob(x)

    def model(x):
        z = pyro.sample("z", dist.Normal(torch.zeros(2, dtype=torch.float64), 1.0).to_event(1))
        pyro.sample("x", dist.Normal(z @ weight.T, noise_scale).to_event(1), obs=x)

    network = MaskedAutoencoder(2, [16], outputs_per_dim=2, direct_connections=True).double()

    def guide(x):
        pyro.module("guide", network)
        pyro.sample("z", GaussianMADE(network))

    svi = SVI(
        model, guide, Adam({"lr": 0.01}), Trace_ELBO(num_particles=16, vectorize_particles=True)
    )
    for _ in range(1500):
        svi.step(x)
    elbo = -Trace_ELBO(num_particles=20000, vectorize_particles=True).loss(model, guide, x)
    assert elbo <= evidence.item() + 0.02  # a lower bound (up to Monte Carlo error)
    assert evidence.item() - elbo < 0.1


def test_bad_input():
    with pytest.raises(ValueError, match="two outputs per dimension"):
        GaussianMADE(MaskedAutoencoder(3, [4]))
    distribution = GaussianMADE(_network())
    with pytest.raises(ValueError, match="NaN or inf"):
        distribution.log_prob(torch.full((4,), float("nan"), dtype=torch.float64))
    with pytest.raises(ValueError, match="shape"):
        distribution.log_prob(torch.zeros(3, dtype=torch.float64))


def _mixture_network(num_dims=2, components=3, seed=0):
    torch.manual_seed(seed)
    return MaskedAutoencoder(
        num_dims,
        [8],
        outputs_per_dim=3 * components,
        ordering="random",
        direct_connections=True,
        activation=torch.nn.Tanh,
        seed=seed,
    ).double()


def test_mixture_made_integrates_to_one():
    distribution = MixtureOfGaussiansMADE(_mixture_network())
    assert _mass_on_a_grid(distribution) == pytest.approx(1.0, abs=1e-3)


def test_mixture_made_known_case_and_sampler():
    network = _mixture_network(num_dims=3, components=2)
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.zero_()
        # per dimension: logits (0, log 3) -> weights (1/4, 3/4); means (-2, 1); scales (0.5, 1)
        per_dim = torch.tensor([0.0, math.log(3.0), -2.0, 1.0, math.log(0.5), 0.0])
        network.output.bias.copy_(per_dim.repeat(3).double())
    distribution = MixtureOfGaussiansMADE(network)
    mixture = dist.MixtureSameFamily(
        dist.Categorical(torch.tensor([0.25, 0.75], dtype=torch.float64)),
        dist.Normal(
            torch.tensor([-2.0, 1.0], dtype=torch.float64),
            torch.tensor([0.5, 1.0], dtype=torch.float64),
        ),
    )
    x = torch.randn(7, 3, dtype=torch.float64)
    assert torch.allclose(distribution.log_prob(x), mixture.log_prob(x).sum(-1))
    samples = distribution.sample((20000,))

    def cdf(values):
        return 0.25 * stats.norm(-2, 0.5).cdf(values) + 0.75 * stats.norm(1, 1).cdf(values)

    for d in range(3):
        assert stats.kstest(samples[:, d].numpy(), cdf).pvalue > 1e-3

    def swapped(values):  # weights exchanged: the test must reject it
        return 0.75 * stats.norm(-2, 0.5).cdf(values) + 0.25 * stats.norm(1, 1).cdf(values)

    assert stats.kstest(samples[:, 0].numpy(), swapped).pvalue < 1e-6
    with pytest.raises(ValueError, match="3 \\* components"):
        MixtureOfGaussiansMADE(MaskedAutoencoder(2, [4], outputs_per_dim=4))
