"""Autoguides built on the library's networks: the inverse-autoregressive transform (inverse,
Jacobian, autoregressive structure), ``AutoGaussianMADE`` against the exact evidence of a
conjugate model and against ``AutoNormal``, and ``AutoBinaryAutoregressive``'s score-function
gradients (``TraceGraph_ELBO``, ``ReweightedWakeSleep``) against enumeration."""

from __future__ import annotations

import itertools
import math

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import (
    SVI,
    Predictive,
    ReweightedWakeSleep,
    Trace_ELBO,
    TraceGraph_ELBO,
    TraceMeanField_ELBO,
)
from pyro.infer.autoguide import AutoNormal

from pyro_ar.infer import AutoBinaryAutoregressive, AutoGaussianMADE, InverseAutoregressiveAffine
from pyro_ar.nn import MaskedAutoencoder

# ------------------------------------------------------- the transform


def random_transform(num_dims=4, seed=0):
    torch.manual_seed(seed)
    network = MaskedAutoencoder(num_dims, [12], outputs_per_dim=2, ordering="random", seed=seed)
    network.double()
    return InverseAutoregressiveAffine(network, torch.randn(num_dims, dtype=torch.float64))


def test_inverse_jacobian_and_autoregressive_structure():
    transform = random_transform()
    noise = torch.randn(4, dtype=torch.float64)
    value = transform(noise)
    fresh = InverseAutoregressiveAffine(transform.network, transform.loc)  # no cache
    assert torch.allclose(fresh._inverse(value), noise, atol=1e-10)
    jacobian = torch.autograd.functional.jacobian(transform._call, noise)
    expected = torch.linalg.slogdet(jacobian)[1]
    assert torch.allclose(transform.log_abs_det_jacobian(noise, value), expected, atol=1e-10)
    # z_d depends on eps_d and on the entries before d in the ordering only
    rank = torch.empty(4, dtype=torch.long)
    rank[transform.network.ordering] = torch.arange(4)
    allowed = rank[:, None] >= rank[None, :]
    assert torch.all(jacobian[~allowed] == 0)
    assert torch.all(jacobian.diagonal() != 0)


def test_log_prob_of_own_samples_matches_the_uncached_inverse():
    transform = random_transform(seed=1)
    base = dist.Normal(torch.zeros(4, dtype=torch.float64), 1.0).to_event(1)
    guide_density = dist.TransformedDistribution(base, [transform])
    sample = guide_density.sample()
    fresh = dist.TransformedDistribution(
        base, [InverseAutoregressiveAffine(transform.network, transform.loc)]
    )
    assert torch.allclose(guide_density.log_prob(sample), fresh.log_prob(sample), atol=1e-10)


# ------------------------------------------------------- AutoGaussianMADE


def conjugate_model():
    """Correlated linear-Gaussian posterior with a closed-form evidence."""
    generator = torch.Generator().manual_seed(0)
    loadings = torch.randn(5, 3, generator=generator)
    data = 2 * torch.randn(5, generator=generator)

    def model():
        z = pyro.sample("z", dist.Normal(torch.zeros(3), 1.0).to_event(1))
        pyro.sample("x", dist.Normal(z @ loadings.T, 0.5).to_event(1), obs=data)

    covariance = loadings @ loadings.T + 0.25 * torch.eye(5)
    return model, float(dist.MultivariateNormal(torch.zeros(5), covariance).log_prob(data))


def trained_gap(model, evidence, guide, steps=1500):
    optimizer = pyro.optim.ClippedAdam({"lr": 0.02, "lrd": 0.05 ** (1 / steps)})
    svi = SVI(model, guide, optimizer, Trace_ELBO(num_particles=8, vectorize_particles=True))
    for _ in range(steps):
        svi.step()
    elbo = -Trace_ELBO(num_particles=20000, vectorize_particles=True).loss(model, guide)
    return evidence - elbo


def test_gaussian_made_guide_closes_most_of_the_mean_field_gap():
    model, evidence = conjugate_model()
    pyro.set_rng_seed(0)
    made_gap = trained_gap(model, evidence, AutoGaussianMADE(model))
    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    normal_gap = trained_gap(model, evidence, AutoNormal(model))
    # the ELBO is a lower bound: a negative gap beyond Monte Carlo error would be a bug
    assert made_gap > -0.02
    assert made_gap < 0.08 and made_gap < normal_gap / 3, (made_gap, normal_gap)


@pytest.mark.parametrize("elbo", [Trace_ELBO, TraceGraph_ELBO, TraceMeanField_ELBO])
def test_gaussian_made_guide_under_elbos_predictive_and_constrained_sites(elbo):
    def model(flips):
        p = pyro.sample("p", dist.Beta(2.0, 2.0))
        rate = pyro.sample("rate", dist.Gamma(torch.ones(2) * 2, 1.0).to_event(1))
        with pyro.plate("flips", len(flips)):
            pyro.sample("flip", dist.Bernoulli(p), obs=flips)
        pyro.sample("count", dist.Poisson(rate).to_event(1), obs=torch.tensor([3.0, 5.0]))

    flips = torch.tensor([1.0, 1.0, 0.0, 1.0])
    guide = AutoGaussianMADE(model)
    svi = SVI(model, guide, pyro.optim.Adam({"lr": 0.01}), elbo())
    before = None
    for step in range(30):
        svi.step(flips)
        if step == 0:
            before = {name: value.detach().clone() for name, value in guide.named_parameters()}
    after = dict(guide.named_parameters())
    assert any("network" in name for name in after)
    # every parameter, the network's included, is trained
    assert all(not torch.equal(before[name], after[name]) for name in before)
    draws = Predictive(model, guide=guide, num_samples=50)(flips)
    # Predictive adds its plate left of the model's plates: (50, 1) for a global scalar
    assert draws["p"].shape == (50, 1) and torch.all((draws["p"] > 0) & (draws["p"] < 1))
    assert draws["rate"].shape == (50, 1, 2) and torch.all(draws["rate"] > 0)


def test_gaussian_made_guide_refuses_a_nonpositive_initial_scale():
    with pytest.raises(ValueError, match="init_scale"):
        AutoGaussianMADE(conjugate_model()[0], init_scale=0.0)


# ------------------------------------------------------- AutoBinaryAutoregressive

WEIGHTS = torch.tensor([1.5, -1.0, 0.7])
STATES = torch.tensor(list(itertools.product([0.0, 1.0], repeat=3)))


def binary_model():
    z = pyro.sample("z", dist.Bernoulli(torch.tensor([0.3, 0.6, 0.5])).to_event(1))
    pyro.sample("x", dist.Normal((z * WEIGHTS).sum(-1), 0.7), obs=torch.tensor(1.2))


def log_joint(states):
    prior = dist.Bernoulli(torch.tensor([0.3, 0.6, 0.5])).to_event(1).log_prob(states)
    return prior + dist.Normal((states * WEIGHTS).sum(-1), 0.7).log_prob(torch.tensor(1.2))


def gradients(guide):
    return [parameter.grad.clone() for parameter in guide.parameters()]


def estimated_gradients(guide, loss, repeats):
    """Mean and standard error over ``repeats`` independent gradient estimates."""
    draws = []
    for _ in range(repeats):
        guide.zero_grad()
        loss.loss_and_grads(binary_model, guide)
        draws.append(torch.cat([g.flatten() for g in gradients(guide)]))
    stacked = torch.stack(draws)
    return stacked.mean(0), stacked.std(0) / math.sqrt(repeats)


@pytest.mark.parametrize("kind", ["nade", "made"])
def test_score_function_gradients_match_enumeration(kind):
    pyro.set_rng_seed(0)
    guide = AutoBinaryAutoregressive(binary_model, kind=kind, hidden_features=4)
    guide()  # builds the networks
    with torch.no_grad():  # move away from the symmetric start, so gradients are not tiny
        for parameter in guide.parameters():
            parameter.add_(0.5 * torch.randn_like(parameter))
    # exact negative ELBO and its gradient, the guide enumerated over all 8 states
    guide.zero_grad()
    log_q = guide.posterior("z").log_prob(STATES)
    loss = -(log_q.exp() * (log_joint(STATES) - log_q)).sum()
    loss.backward()
    exact = torch.cat([g.flatten() for g in gradients(guide)])
    mean, error = estimated_gradients(
        guide, TraceGraph_ELBO(num_particles=4000, vectorize_particles=True), repeats=8
    )
    assert torch.all((mean - exact).abs() < 5 * error + 1e-3), (mean, exact, error)
    assert exact.abs().max() > 0.05  # a check that could fail


def test_reweighted_wake_sleep_guide_gradient_matches_enumeration():
    pyro.set_rng_seed(1)
    guide = AutoBinaryAutoregressive(binary_model, hidden_features=4)
    guide()
    # wake-phi: the gradient of -E_{p(z|x)} log q(z), with the posterior enumerated
    guide.zero_grad()
    posterior = torch.softmax(log_joint(STATES), 0)
    (-(posterior * guide.posterior("z").log_prob(STATES)).sum()).backward()
    exact = torch.cat([g.flatten() for g in gradients(guide)])
    rws = ReweightedWakeSleep(num_particles=4000, model_has_params=False, vectorize_particles=True)
    mean, error = estimated_gradients(guide, rws, repeats=6)
    # self-normalized weights: biased by O(1/K); K = 4000 leaves it far below the tolerance
    assert torch.all((mean - exact).abs() < 5 * error + 2e-3), (mean, exact, error)
    assert exact.abs().max() > 0.05


def test_binary_guide_trains_to_the_posterior():
    pyro.set_rng_seed(2)
    guide = AutoBinaryAutoregressive(binary_model, hidden_features=8)
    svi = SVI(
        binary_model,
        guide,
        pyro.optim.Adam({"lr": 0.05}),
        TraceGraph_ELBO(num_particles=32, vectorize_particles=True),
    )
    for _ in range(400):
        svi.step()
    posterior = torch.softmax(log_joint(STATES), 0)
    q = guide.posterior("z").log_prob(STATES).exp().detach()
    total_variation = 0.5 * (q - posterior).abs().sum()
    assert total_variation < 0.1, (q, posterior)


def test_binary_guide_refuses_sites_it_cannot_represent():
    def in_plate():
        with pyro.plate("data", 3):
            pyro.sample("z", dist.Bernoulli(0.5 * torch.ones(2)).to_event(1))

    def continuous():
        pyro.sample("z", dist.Normal(torch.zeros(2), 1.0).to_event(1))

    def scalar():
        pyro.sample("z", dist.Bernoulli(0.5))

    with pytest.raises(ValueError, match="same posterior"):
        AutoBinaryAutoregressive(in_plate)()
    with pytest.raises(ValueError, match="binary sites only"):
        AutoBinaryAutoregressive(continuous)()
    with pytest.raises(ValueError, match="event_dim 1"):
        AutoBinaryAutoregressive(scalar)()
    with pytest.raises(ValueError, match="kind"):
        AutoBinaryAutoregressive(binary_model, kind="rbm")
