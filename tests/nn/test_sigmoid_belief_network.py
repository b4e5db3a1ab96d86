"""Sigmoid belief networks against enumeration: the exact marginal, the Pyro programs' densities,
the importance-weighted bound and its standard error, and unbiased TraceGraph_ELBO (NVIL-style)
and reweighted wake-sleep gradients."""

from __future__ import annotations

import itertools

import pyro
import pytest
import torch
from pyro import poutine
from pyro.infer import SVI, ReweightedWakeSleep, TraceGraph_ELBO

from pyro_ar.nn import SigmoidBeliefNetwork


def _network(seed=0, autoregressive=False):
    network = SigmoidBeliefNetwork(4, [3, 2], autoregressive=autoregressive, seed=seed).double()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # clearly non-uniform conditionals
        for parameter in network.parameters():
            if not parameter.any():  # the within-layer weights start at zero
                parameter.copy_(torch.randn(parameter.shape, generator=generator))
            parameter.mul_(2.0)
    return network


AUTOREGRESSIVE = pytest.mark.parametrize(
    "autoregressive", [False, True], ids=["factorized", "autoregressive"]
)


def _states(size):
    return torch.tensor(list(itertools.product((0.0, 1.0), repeat=size)), dtype=torch.float64)


def _latent_states(network):
    states = _states(sum(network.latent_sizes))
    return states[:, None, :3], states[:, None, 3:]  # (S, 1, 3), (S, 1, 2)


@AUTOREGRESSIVE
def test_exact_marginal_sums_to_one_and_matches_the_pyro_model(autoregressive):
    network = _network(autoregressive=autoregressive)
    images = _states(4)
    log_probs = network.log_prob(images)
    torch.testing.assert_close(log_probs.logsumexp(0), torch.tensor(0.0, dtype=torch.float64))
    assert log_probs.std() > 0.3
    # log p(x, h) from the model's own trace, conditioned on one latent state
    h1, h2 = torch.tensor([[1.0, 0.0, 1.0]]), torch.tensor([[0.0, 1.0]])
    conditioned = poutine.condition(network.model, {"h1": h1.double(), "h2": h2.double()})
    trace = poutine.trace(conditioned).get_trace(images[5:6])
    expected = network.log_joint(images[5:6], [h1.double(), h2.double()])
    torch.testing.assert_close(trace.log_prob_sum(), expected.sum())
    guide_trace = poutine.trace(
        poutine.condition(network.guide, {"h1": h1.double(), "h2": h2.double()})
    ).get_trace(images[5:6])
    torch.testing.assert_close(
        guide_trace.log_prob_sum(), network.guide_log_prob(images[5:6], [h1, h2]).sum()
    )


@AUTOREGRESSIVE
def test_ancestral_samples_follow_the_exact_marginal(autoregressive):
    from stats import cells_chi_square_p_value

    network = _network(autoregressive=autoregressive)
    probs = network.log_prob(_states(4)).exp()
    torch.manual_seed(0)
    draws = network.sample(20000)
    cells = (draws.long() * torch.tensor([8, 4, 2, 1])).sum(-1)
    assert cells_chi_square_p_value(cells, probs)[0] > 1e-3
    with torch.no_grad():  # negative control: another output bias
        network.generative[0].bias.add_(0.3)
    assert cells_chi_square_p_value(cells, network.log_prob(_states(4)).exp())[0] < 1e-6


def test_log_prob_refuses_to_enumerate_a_large_network():
    with pytest.raises(ValueError, match="importance_log_prob"):
        SigmoidBeliefNetwork(4, [16, 8]).log_prob(torch.zeros(1, 4))


@AUTOREGRESSIVE
def test_importance_bound_is_below_the_exact_value_tightens_with_k_and_its_error_is_right(
    autoregressive,
):
    network = _network(autoregressive=autoregressive)
    x = _states(4)[[3, 9, 14]]
    exact = network.log_prob(x)
    torch.manual_seed(0)
    means, spreads, errors = {}, {}, {}
    for samples in (1, 10, 1000):
        runs = [
            network.importance_log_prob(x, samples) for _ in range(200 if samples < 1000 else 40)
        ]
        values = torch.stack([run.log_prob for run in runs])
        means[samples], spreads[samples] = values.mean(0), values.std(0)
        errors[samples] = torch.stack([run.standard_error for run in runs]).median(0).values
    assert torch.all(means[1] < means[10]) and torch.all(means[10] < means[1000] + 1e-3)
    assert torch.all(means[10] <= exact)  # the bound, on average (200 runs)
    # at K = 1000 the bound's bias (about half the squared relative error) is small
    torch.testing.assert_close(means[1000], exact, atol=0.05, rtol=0)
    # the delta-method standard error is the spread of the estimate over repeated runs
    ratio = errors[1000] / spreads[1000]
    assert torch.all((ratio > 0.6) & (ratio < 1.6)), ratio


def _exact_negative_elbo(network, x):
    h1, h2 = _latent_states(network)
    log_q = network.guide_log_prob(x[None], [h1, h2])  # (S, N)
    log_joint = network.log_joint(x[None], [h1, h2])
    return -(log_q.exp() * (log_joint - log_q)).sum()


def _flat_grads(network):
    return torch.cat([p.grad.flatten() for p in network.parameters()])


@AUTOREGRESSIVE
def test_tracegraph_elbo_gradients_are_unbiased(autoregressive):
    network = _network(seed=1, autoregressive=autoregressive)
    x = _states(4)[[2, 7, 13]]
    network.zero_grad()
    _exact_negative_elbo(network, x).backward()
    exact = _flat_grads(network).clone()
    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    network.zero_grad()
    elbo = TraceGraph_ELBO(num_particles=20000, vectorize_particles=True, max_plate_nesting=1)
    elbo.loss_and_grads(network.model, network.guide, x)
    estimate = _flat_grads(network)
    assert (estimate - exact).norm() < 0.05 * exact.norm()


@AUTOREGRESSIVE
def test_reweighted_wake_sleep_gradients_approach_the_exact_ones(autoregressive):
    """Wake-theta: the gradient of -log p(x) in the generative weights; wake-phi: the gradient
    of KL(p(h | x) || q(h | x)) in the recognition weights (both by enumeration).

    One data point: Pyro's ReweightedWakeSleep normalizes the importance weights of the whole
    plate jointly (the weights of N points multiply), which is consistent but needs far more
    particles as N grows."""
    network = _network(seed=2, autoregressive=autoregressive)
    x = _states(4)[[6]]
    h1, h2 = _latent_states(network)
    network.zero_grad()
    (-network.log_prob(x).sum()).backward()
    generative = [network.top_logits, *network.generative.parameters()]
    exact_theta = torch.cat([p.grad.flatten() for p in generative]).clone()
    network.zero_grad()
    with torch.no_grad():
        posterior = torch.softmax(network.log_joint(x[None], [h1, h2]), 0)
    (-(posterior * network.guide_log_prob(x[None], [h1, h2])).sum()).backward()
    exact_phi = torch.cat([p.grad.flatten() for p in network.recognition.parameters()]).clone()
    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    network.zero_grad()
    rws = ReweightedWakeSleep(num_particles=20000, vectorize_particles=True, max_plate_nesting=1)
    rws.loss_and_grads(network.model, network.guide, x)
    theta = torch.cat([p.grad.flatten() for p in generative])
    phi = torch.cat([p.grad.flatten() for p in network.recognition.parameters()])
    assert (theta - exact_theta).norm() < 0.05 * exact_theta.norm()
    assert (phi - exact_phi).norm() < 0.1 * exact_phi.norm()


@AUTOREGRESSIVE
def test_per_datapoint_wake_sleep_losses_give_the_exact_gradients(autoregressive):
    network = _network(seed=3, autoregressive=autoregressive)
    x = _states(4)[[1, 6, 11]]
    h1, h2 = _latent_states(network)
    generative = [network.top_logits, *network.generative.parameters()]
    if autoregressive:
        generative += list(network.within.parameters())
    recognition = list(network.recognition.parameters())
    network.zero_grad()
    (-network.log_prob(x).sum()).backward()
    exact_theta = torch.cat([p.grad.flatten() for p in generative]).clone()
    network.zero_grad()
    with torch.no_grad():
        posterior = torch.softmax(network.log_joint(x[None], [h1, h2]), 0)
    (-(posterior * network.guide_log_prob(x[None], [h1, h2])).sum()).backward()
    exact_phi = torch.cat([p.grad.flatten() for p in recognition]).clone()
    network.zero_grad()
    torch.manual_seed(0)
    theta_loss, phi_loss = network.reweighted_wake_sleep_losses(x, num_samples=20000)
    (theta_loss + phi_loss).backward()
    theta = torch.cat([p.grad.flatten() for p in generative])
    phi = torch.cat([p.grad.flatten() for p in recognition])
    assert (theta - exact_theta).norm() < 0.05 * exact_theta.norm()
    assert (phi - exact_phi).norm() < 0.05 * exact_phi.norm()


@pytest.mark.parametrize("baseline_beta", [None, 0.9])
def test_svi_with_tracegraph_elbo_raises_the_exact_log_likelihood(baseline_beta):
    torch.manual_seed(0)
    network = SigmoidBeliefNetwork(6, [4, 2], baseline_beta=baseline_beta, seed=0).double()
    probabilities = torch.tensor([0.9, 0.9, 0.1, 0.1, 0.8, 0.2], dtype=torch.float64)
    data = torch.bernoulli(probabilities.expand(200, 6))
    before = network.log_prob(data).mean()
    svi = SVI(
        network.model,
        network.guide,
        pyro.optim.Adam({"lr": 0.05}),
        TraceGraph_ELBO(num_particles=4, vectorize_particles=True, max_plate_nesting=1),
    )
    for _ in range(150):
        svi.step(data)
    after = network.log_prob(data).mean()
    assert after > before + 0.5
    estimate = network.importance_log_prob(data, 2000)
    torch.testing.assert_close(estimate.log_prob, network.log_prob(data), atol=0.05, rtol=0)


def test_the_decaying_average_baseline_cuts_the_guide_gradient_variance():
    x = torch.bernoulli(torch.full((20, 6), 0.3, dtype=torch.float64), generator=None)
    variances = {}
    for beta in (None, 0.9):
        network = SigmoidBeliefNetwork(6, [4, 2], baseline_beta=beta, seed=0).double()
        pyro.clear_param_store()
        pyro.set_rng_seed(0)
        elbo = TraceGraph_ELBO()  # its baselines carry over between calls
        grads = []
        for step in range(250):
            network.zero_grad()
            elbo.loss_and_grads(network.model, network.guide, x)
            if step >= 50:  # after the average has settled
                grads.append(
                    torch.cat([p.grad.flatten() for p in network.recognition.parameters()])
                )
        variances[beta] = torch.stack(grads).var(0).sum()
    assert variances[0.9] < variances[None] / 5
