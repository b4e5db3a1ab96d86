"""RBMs: exact quantities by enumeration, samplers (exact, Gibbs, GibbsKernel in pyro MCMC),
AIS brackets, contrastive divergence through SVI, ArviZ diagnostics, bad input."""

from __future__ import annotations

import math

import arviz as az
import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import MCMC, SVI
from stats import chi_square_p_value, states_to_index

from pyro_ar.data import load_binarized_digits
from pyro_ar.diagnostics import to_inference_data
from pyro_ar.distributions import FVSBN, RBM, GaussianBernoulliRBM
from pyro_ar.distributions.rbm import LogPartitionError, binary_states
from pyro_ar.infer import (
    ContrastiveDivergence,
    GibbsKernel,
    annealed_importance_sampling,
    base_rate_visible_bias,
    pseudo_likelihood,
    reverse_annealed_importance_sampling,
)


def random_rbm(num_visible=6, num_hidden=4, batch_shape=(), scale=1.0, seed=0, device="cpu"):
    generator = torch.Generator().manual_seed(seed)

    def randn(*shape):
        return torch.randn(*shape, generator=generator, dtype=torch.float64).to(device)

    return RBM(
        randn(*batch_shape, num_hidden, num_visible) * scale,
        randn(*batch_shape, num_visible) * scale,
        randn(*batch_shape, num_hidden) * scale,
    )


def test_energy_free_energy_partition_and_conditionals_by_enumeration(device):
    rbm = random_rbm(device=device)
    visible = binary_states(6, 0, 64, rbm.weight)
    hidden = binary_states(4, 0, 16, rbm.weight)
    energy = torch.stack([rbm.energy(v.expand(16, 6), hidden) for v in visible])  # (64, 16)
    log_z = torch.logsumexp(-energy.flatten(), 0)
    torch.testing.assert_close(rbm.log_partition(), log_z)
    torch.testing.assert_close(rbm.free_energy(visible), -torch.logsumexp(-energy, 1))
    torch.testing.assert_close(torch.logsumexp(rbm.log_prob(visible), 0), log_z * 0)
    torch.testing.assert_close(rbm.unnormalized_log_prob(visible), -rbm.free_energy(visible))
    joint = torch.softmax(-energy.flatten(), 0).reshape(64, 16)
    # p(h_j = 1 | v) and p(v_i = 1 | h) from the joint table
    p_hidden = (joint / joint.sum(1, keepdim=True)) @ hidden
    torch.testing.assert_close(rbm.hidden_given_visible(visible).mean, p_hidden)
    p_visible = (joint / joint.sum(0, keepdim=True)).T @ visible
    torch.testing.assert_close(rbm.visible_given_hidden(hidden).mean, p_visible)


def test_batched_rbm_and_expand():
    rbm = random_rbm(batch_shape=(3,))
    visible = binary_states(6, 0, 64, rbm.weight)
    log_probs = rbm.log_prob(visible.unsqueeze(-2))
    assert log_probs.shape == (64, 3)
    torch.testing.assert_close(torch.logsumexp(log_probs, 0), torch.zeros(3, dtype=torch.float64))
    expanded = random_rbm().expand((2, 5))
    assert type(expanded) is RBM and expanded.sample().shape == (2, 5, 6)


def test_gaussian_bernoulli_rbm_by_quadrature():
    generator = torch.Generator().manual_seed(1)
    weight = torch.randn(3, 2, generator=generator, dtype=torch.float64) * 0.7
    rbm = GaussianBernoulliRBM(
        weight,
        torch.tensor([0.3, -0.5], dtype=torch.float64),
        torch.randn(3, generator=generator, dtype=torch.float64),
        visible_scale=torch.tensor([0.8, 1.3], dtype=torch.float64),
    )
    grid = torch.linspace(-12, 12, 1201, dtype=torch.float64)
    points = torch.cartesian_prod(grid, grid)
    step = (grid[1] - grid[0]) ** 2
    log_z = torch.logsumexp(-rbm.free_energy(points), 0) + step.log()
    torch.testing.assert_close(rbm.log_partition(), log_z, rtol=0, atol=1e-6)
    # the free energy sums the hidden units out of the energy
    hidden = binary_states(3, 0, 8, weight)
    point = points[123456]
    energies = rbm.energy(point.expand(8, 2), hidden)
    torch.testing.assert_close(rbm.free_energy(point), -torch.logsumexp(-energies, 0))
    samples = rbm.sample((40000,))
    torch.testing.assert_close(
        samples.mean(0),
        (points * rbm.log_prob(points).exp().unsqueeze(-1) * step).sum(0),
        rtol=0,
        atol=0.03,
    )


def test_exact_and_gibbs_samplers_follow_log_prob():
    torch.manual_seed(0)
    rbm = random_rbm()
    probs = rbm.log_prob(binary_states(6, 0, 64, rbm.weight)).exp()
    exact = rbm.sample((20000,))
    assert chi_square_p_value(exact, probs)[0] > 1e-3
    gibbs = rbm.gibbs_chain((20000,), burn_in=200)[0]
    assert chi_square_p_value(gibbs, probs)[0] > 1e-3
    # negative control: another RBM's samples are rejected
    other = random_rbm(seed=1).sample((20000,))
    assert chi_square_p_value(other, probs)[0] < 1e-6


def rbm_only_model(rbm):
    def model():
        pyro.sample("image", rbm)

    return model


def test_gibbs_kernel_stationary_distribution_through_pyro_mcmc():
    torch.manual_seed(1)
    rbm = random_rbm(scale=0.8)
    kernel = GibbsKernel(rbm_only_model(rbm), num_vectorized_chains=4000)
    mcmc = MCMC(kernel, num_samples=1, warmup_steps=100, disable_progbar=True)
    mcmc.run()
    assert kernel.block_sites == {"image"}
    draws = mcmc.get_samples()["image"].reshape(-1, 6)
    probs = rbm.log_prob(binary_states(6, 0, 64, rbm.weight)).exp()
    assert chi_square_p_value(draws, probs)[0] > 1e-3


def test_gibbs_kernel_on_other_discrete_sites_matches_the_exact_posterior():
    """A binary vector with an FVSBN prior and noisy observations, plus a categorical site:
    element-wise Gibbs with the joint log-density; posterior by enumerating 2^4 * 3 states."""
    torch.manual_seed(2)
    fvsbn = FVSBN(torch.randn(4, 4, dtype=torch.float64), torch.randn(4, dtype=torch.float64))
    weights = torch.tensor([0.2, 0.5, 0.3], dtype=torch.float64)
    flip = torch.tensor([0.1, 0.25, 0.4], dtype=torch.float64)
    observed = torch.tensor([1.0, 0.0, 1.0, 1.0], dtype=torch.float64)

    def model(data):
        noise = pyro.sample("noise", dist.Categorical(weights))
        pixels = pyro.sample("pixels", fvsbn)
        rate = flip[noise].unsqueeze(-1)
        # one site with event_dim 1 (no plate), so the chains can be vectorized on the left
        probs = pixels * (1 - rate) + (1 - pixels) * rate
        pyro.sample("data", dist.Bernoulli(probs).to_event(1), obs=data)

    states = binary_states(4, 0, 16, observed)
    log_joint = torch.stack(
        [
            weights[k].log()
            + fvsbn.log_prob(states)
            + dist.Bernoulli(states * (1 - flip[k]) + (1 - states) * flip[k])
            .log_prob(observed)
            .sum(-1)
            for k in range(3)
        ],
        -1,
    )  # (16, 3)
    posterior = torch.softmax(log_joint.flatten(), 0)
    kernel = GibbsKernel(model, num_vectorized_chains=3000)
    mcmc = MCMC(kernel, num_samples=1, warmup_steps=30, disable_progbar=True)
    mcmc.run(observed)
    samples = mcmc.get_samples()
    cells = (
        states_to_index(samples["pixels"].reshape(-1, 4)) * 3 + samples["noise"].reshape(-1).long()
    )
    expected = posterior.reshape(16, 3).flatten()
    counts = torch.bincount(cells, minlength=48).double()
    statistic = ((counts - expected * len(cells)) ** 2 / (expected * len(cells))).sum()
    from scipy import stats

    assert stats.chi2.sf(statistic.item(), 47) > 1e-3


def test_clamped_pixels_fill_in_an_occluded_image():
    torch.manual_seed(3)
    rbm = random_rbm()
    image = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0, 0.0], dtype=torch.float64)
    known = torch.tensor([True, True, True, False, False, False])
    kernel = GibbsKernel(
        rbm_only_model(rbm), clamped={"image": (image, known)}, num_vectorized_chains=4000
    )
    mcmc = MCMC(kernel, num_samples=1, warmup_steps=60, disable_progbar=True)
    mcmc.run()
    draws = mcmc.get_samples()["image"].reshape(-1, 6)
    assert torch.equal(draws[:, known], image[known].expand(len(draws), 3))
    # the free pixels follow p(v_free | v_known), by enumeration of the 8 completions
    completions = image.expand(8, 6).clone()
    completions[:, 3:] = binary_states(3, 0, 8, image)
    conditional = torch.softmax(rbm.log_prob(completions), 0)
    cells = states_to_index(draws[:, 3:])
    counts = torch.bincount(cells, minlength=8).double()
    from scipy import stats

    statistic = ((counts - conditional * len(cells)) ** 2 / (conditional * len(cells))).sum()
    assert stats.chi2.sf(statistic.item(), 7) > 1e-3


def test_mcmc_api_chains_initial_params_and_arviz():
    torch.manual_seed(4)
    rbm = random_rbm(scale=0.5)
    start = torch.zeros(2, 6, dtype=torch.float64)
    kernel = GibbsKernel(rbm_only_model(rbm))
    mcmc = MCMC(
        kernel,
        num_samples=150,
        warmup_steps=20,
        num_chains=2,
        initial_params={"image": start},
        disable_progbar=True,
        mp_context=None,
    )
    mcmc.run()
    grouped = mcmc.get_samples(group_by_chain=True)
    assert grouped["image"].shape == (2, 150, 6)
    idata = to_inference_data(mcmc)
    assert idata.posterior["image"].dtype == np.int64
    assert idata.posterior["image"].shape == (2, 150, 6)
    assert set(idata.sample_stats.data_vars) >= {"lp", "flip_rate"}
    assert "log_likelihood" not in idata.groups()  # nothing observed
    summary = az.summary(idata, var_names=["image"])
    assert np.isfinite(summary["r_hat"]).all() and np.isfinite(summary["ess_bulk"]).all()
    az.from_pyro(mcmc)  # Pyro's own converter must not crash on this kernel

    vectorized = GibbsKernel(rbm_only_model(rbm), num_vectorized_chains=5)
    run = MCMC(vectorized, num_samples=40, warmup_steps=5, disable_progbar=True)
    run.run()
    idata = to_inference_data(run)
    assert idata.posterior.sizes["chain"] == 5 and idata.posterior.sizes["draw"] == 40
    assert idata.sample_stats["lp"].shape == (5, 40)


def test_log_likelihood_only_where_normalized():
    torch.manual_seed(5)
    big = RBM(torch.randn(25, 22) * 0.1, torch.zeros(22), torch.zeros(25))  # no exact log Z
    small = RBM(torch.randn(2, 22) * 0.1, torch.zeros(22), torch.zeros(2))  # exact log Z

    def model(data):
        z = pyro.sample("z", dist.Bernoulli(0.5))
        with pyro.plate("rows", data.shape[0]):
            pyro.sample("unnormalized", big, obs=data)
            pyro.sample("normalized", small, obs=data)
        return z

    data = torch.bernoulli(torch.full((2, 22), 0.5))
    mcmc = MCMC(GibbsKernel(model), num_samples=10, warmup_steps=2, disable_progbar=True)
    mcmc.run(data)
    idata = to_inference_data(mcmc)
    assert set(idata.log_likelihood.data_vars) == {"normalized"}
    assert idata.log_likelihood["normalized"].shape == (1, 10, 2)
    assert set(idata.observed_data.data_vars) == {"unnormalized", "normalized"}


def train_on_digits(digits, hidden, seed, steps=400):
    """An RBM trained on the binarized digits by CD-3 through SVI (exact log Z available)."""
    pyro.set_rng_seed(seed)
    pyro.clear_param_store()

    def model(batch):
        weight = pyro.param("w", torch.randn(hidden, 64, dtype=torch.float64) * 0.01)
        visible_bias = pyro.param("b", base_rate_visible_bias(digits).clone())
        hidden_bias = pyro.param("c", torch.zeros(hidden, dtype=torch.float64))
        with pyro.plate("rows", batch.shape[0]):
            pyro.sample("v", RBM(weight, visible_bias, hidden_bias), obs=batch)

    optimizer = pyro.optim.SGD({"lr": 1e-3, "momentum": 0.5})
    svi = SVI(model, lambda batch: None, optimizer, ContrastiveDivergence(steps=3))
    for step in range(steps):
        first = (step * 100) % 1400
        svi.step(digits[first : first + 100])
    store = pyro.get_param_store()
    return RBM(store["w"].detach(), store["b"].detach(), store["c"].detach())


@pytest.fixture(scope="module")
def trained_rbms():
    digits = load_binarized_digits().train.double()
    return digits, [train_on_digits(digits, 10, 0), train_on_digits(digits, 16, 1)]


def test_ais_brackets_the_exact_log_partition(trained_rbms):
    digits, models = trained_rbms
    base = base_rate_visible_bias(digits)
    for rbm in models:
        exact = rbm.log_partition()
        torch.manual_seed(0)
        forward = annealed_importance_sampling(rbm, 200, 3000, base, progress=False)
        reverse = reverse_annealed_importance_sampling(
            rbm, digits[:200], 3000, base, burn_in=500, progress=False
        )
        assert abs(forward.log_partition - exact) < 0.2
        assert abs(reverse.log_partition - exact) < 0.2
        assert forward.log_partition <= exact + 3 * forward.standard_error + 1e-3
        assert reverse.log_partition >= exact - 3 * reverse.standard_error - 1e-3
        low, high = forward.interval
        assert low < forward.log_partition < high


def exact_log_likelihood(store, digits):
    rbm = RBM(store["w"].detach(), store["b"].detach(), store["c"].detach())
    return rbm.log_prob(digits).mean().item()


def test_contrastive_divergence_through_svi_raises_the_log_likelihood():
    digits = load_binarized_digits().train.double()
    for persistent in (False, True):
        pyro.set_rng_seed(0)
        pyro.clear_param_store()

        def model(data):
            weight = pyro.param("w", torch.randn(12, 64, dtype=torch.float64) * 0.01)
            visible_bias = pyro.param("b", torch.zeros(64, dtype=torch.float64))
            hidden_bias = pyro.param("c", torch.zeros(12, dtype=torch.float64))
            with pyro.plate("rows", len(data), subsample_size=100) as index:
                pyro.sample("v", RBM(weight, visible_bias, hidden_bias), obs=data[index])

        loss = ContrastiveDivergence(steps=1, persistent=persistent)
        svi = SVI(model, lambda data: None, pyro.optim.SGD({"lr": 3e-5, "momentum": 0.5}), loss)
        svi.step(digits)
        store = pyro.get_param_store()
        before = exact_log_likelihood(store, digits)
        for _ in range(800):
            svi.step(digits)
        after = exact_log_likelihood(store, digits)
        assert after > before + 5, (persistent, before, after)
        if persistent:
            assert loss.chains["v"].shape == (100, 64)


def test_pseudo_likelihood_by_enumeration():
    rbm = random_rbm()
    states = binary_states(6, 0, 64, rbm.weight)
    log_probs = rbm.log_prob(states)
    expected = torch.zeros(64, dtype=torch.float64)
    for i in range(6):
        flipped = states.clone()
        flipped[:, i] = 1 - flipped[:, i]
        flipped_log_probs = rbm.log_prob(flipped)
        expected += log_probs - torch.logaddexp(log_probs, flipped_log_probs)
    torch.testing.assert_close(pseudo_likelihood(rbm, states), expected)


def test_normalization_is_never_silent_and_bad_input():
    big = RBM(torch.randn(30, 25), torch.zeros(25), torch.zeros(30))  # both layers > 20
    with pytest.raises(LogPartitionError, match="annealed_importance_sampling"):
        big.log_prob(torch.ones(25))
    attached = big.with_log_partition(12.5)
    torch.testing.assert_close(
        attached.log_prob(torch.ones(25)), -big.free_energy(torch.ones(25)) - 12.5
    )
    rbm = random_rbm()
    checked = RBM(rbm.weight, rbm.visible_bias, rbm.hidden_bias, validate_args=True)
    with pytest.raises(ValueError, match="0 or 1"):
        checked.log_prob(torch.full((6,), 0.5, dtype=torch.float64))
    with pytest.raises(ValueError, match="shape"):
        checked.log_prob(torch.ones(5, dtype=torch.float64))
    with pytest.raises(ValueError, match="NaN"):
        RBM(torch.full((2, 3), math.nan), torch.zeros(3), torch.zeros(2))
    with pytest.raises(ValueError, match="visible_bias"):
        RBM(torch.zeros(2, 3), torch.zeros(4), torch.zeros(2))
    with pytest.raises(ValueError, match="positive"):
        GaussianBernoulliRBM(torch.zeros(2, 3), torch.zeros(3), torch.zeros(2), visible_scale=-1.0)
    with pytest.raises(ValueError, match="continuous|discrete"):
        MCMC(GibbsKernel(lambda: pyro.sample("x", dist.Normal(0, 1))), num_samples=2).run()


def test_rbm_site_with_downstream_sites_is_not_block_updated():
    """Block Gibbs would ignore the likelihood of the noisy observation: element-wise Gibbs on
    the joint density must be used instead (and give the exact posterior)."""
    torch.manual_seed(6)
    rbm = random_rbm(num_visible=4, num_hidden=3)
    observed = torch.tensor([1.0, 1.0, 0.0, 1.0], dtype=torch.float64)

    def model(data):
        image = pyro.sample("image", rbm)
        pyro.sample("noisy", dist.Bernoulli(0.1 + 0.8 * image).to_event(1), obs=data)

    kernel = GibbsKernel(model, num_vectorized_chains=3000)
    mcmc = MCMC(kernel, num_samples=1, warmup_steps=30, disable_progbar=True)
    mcmc.run(observed)
    assert kernel.block_sites == set()
    states = binary_states(4, 0, 16, rbm.weight)
    likelihood = dist.Bernoulli(0.1 + 0.8 * states).to_event(1).log_prob(observed)
    posterior = torch.softmax(rbm.log_prob(states) + likelihood, 0)
    draws = mcmc.get_samples()["image"].reshape(-1, 4)
    assert chi_square_p_value(draws, posterior)[0] > 1e-3
    assert chi_square_p_value(draws, rbm.log_prob(states).exp())[0] < 1e-6  # not the prior


def test_exact_log_partition_enumerates_the_smaller_layer():
    """D=6 < H=25: log Z sums over the 2^6 visible states. Swapping the layers (W^T, c, b) gives
    the same Z by enumerating 2^6 hidden states instead."""
    torch.manual_seed(7)
    rbm = random_rbm(num_visible=6, num_hidden=25, scale=0.5)
    swapped = RBM(rbm.weight.T.contiguous(), rbm.hidden_bias, rbm.visible_bias)
    assert rbm.has_exact_log_partition  # the visible layer (2^6 states) is the smaller one
    torch.testing.assert_close(rbm.log_partition(), swapped.log_partition())
    states = binary_states(6, 0, 64, rbm.weight)
    probs = rbm.log_prob(states).exp()
    torch.testing.assert_close(probs.sum(), torch.ones((), dtype=torch.float64))
    assert chi_square_p_value(rbm.sample((20000,)), probs)[0] > 1e-3
