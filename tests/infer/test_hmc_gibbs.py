"""Gibbs within HMC/NUTS (``HMCGibbs``) and the plate-parallel Gibbs updates it relies on:
posteriors of small mixed models against enumeration over the discrete part and quadrature over
the continuous part, R-hat and ESS across chains, ArviZ output, and the decisions the kernel
makes about which elements it may update together."""

from __future__ import annotations

import itertools
import logging
import math

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import MCMC, NUTS
from pyro.infer.mcmc import HMC
from pyro.ops.stats import effective_sample_size, split_gelman_rubin

from pyro_ar.diagnostics import to_inference_data
from pyro_ar.infer import GibbsKernel, HMCGibbs
from tests.factories import make_nade

MIXTURE_DATA = torch.tensor([-2.6, -1.2, 0.4, 1.1, 2.3, 3.1])
PRIOR_MEANS = torch.tensor([-2.0, 2.0])


def mixture_model(data=MIXTURE_DATA):
    means = pyro.sample("means", dist.Normal(PRIOR_MEANS, 1.0).to_event(1))
    with pyro.plate("data", len(data)):
        labels = pyro.sample("labels", dist.Bernoulli(0.5))
        pyro.sample("x", dist.Normal(means[labels.long()], 1.0), obs=data)


def mixture_exact(data=MIXTURE_DATA, points=301):
    """Posterior means of both component means and of every label: the labels summed out
    exactly, the means integrated on a grid."""
    grid = torch.linspace(-7.0, 7.0, points, dtype=torch.float64)
    mean0, mean1 = torch.meshgrid(grid, grid, indexing="ij")
    normal = torch.distributions.Normal
    log_prior = normal(-2.0, 1.0).log_prob(mean0) + normal(2.0, 1.0).log_prob(mean1)
    x = data.double()
    log_first = normal(mean0[..., None], 1.0).log_prob(x)  # label 0
    log_second = normal(mean1[..., None], 1.0).log_prob(x)
    log_joint = log_prior + torch.logaddexp(log_first, log_second).sum(-1) + len(x) * math.log(0.5)
    weights = torch.softmax(log_joint.flatten(), 0).reshape(log_joint.shape)
    label_one = torch.sigmoid(log_second - log_first)  # p(label_i = 1 | means, x_i)
    means = torch.stack([(weights * mean0).sum(), (weights * mean1).sum()])
    second = torch.stack([(weights * mean0**2).sum(), (weights * mean1**2).sum()])
    labels = (weights[..., None] * label_one).sum((0, 1))
    return means, (second - means**2).sqrt(), labels


def assert_matches(samples_by_chain, exact_mean, exact_sd=None, label=""):
    """The chains' mean within 5 Monte Carlo standard errors (from the ESS across chains) of
    the exact posterior mean; R-hat below 1.05 (undefined, NaN, only for an element that
    never moved, whose ESS then counts as 1)."""
    samples = samples_by_chain.double().reshape(samples_by_chain.shape[:2] + (-1,))
    exact_mean, exact_sd = exact_mean.flatten(), None if exact_sd is None else exact_sd.flatten()
    # one element at a time: Pyro's ESS turns every element NaN if one never moves
    ess = torch.stack(
        [
            effective_sample_size(samples[..., i], chain_dim=0, sample_dim=1)
            for i in range(samples.shape[-1])
        ]
    )
    rhat = split_gelman_rubin(samples, chain_dim=0, sample_dim=1)
    constant = samples.flatten(0, 1).std(0) == 0
    assert torch.all((rhat < 1.05) | (rhat.isnan() & constant)), f"{label}: R-hat {rhat}"
    ess = torch.where(constant, torch.ones_like(ess), ess)
    sd = samples.flatten(0, 1).std(0) if exact_sd is None else exact_sd
    error = (samples.mean((0, 1)) - exact_mean).abs()
    bound = 5 * sd / ess.clamp(min=1).sqrt() + 1e-3
    assert torch.all(error < bound), f"{label}: error {error} > {bound} (ESS {ess})"
    return ess, rhat


def test_mixture_with_unknown_means_matches_enumeration_and_quadrature():
    pyro.set_rng_seed(0)
    kernel = HMCGibbs(NUTS(mixture_model))
    mcmc = MCMC(kernel, num_samples=600, warmup_steps=200, num_chains=2, disable_progbar=True)
    mcmc.run()
    samples = mcmc.get_samples(group_by_chain=True)
    means, sds, labels = mixture_exact()
    assert kernel.discrete_sites == ("labels",) and kernel.continuous_sites == ("means",)
    assert kernel.gibbs.parallel_plates == {"labels": (-1,)}
    assert_matches(samples["means"], means.float().double(), sds, "means")
    # a label is binary: its posterior sd is sqrt(p (1 - p))
    label_sd = (labels * (1 - labels)).sqrt()
    assert_matches(samples["labels"], labels, label_sd, "labels")


def test_ignoring_the_discrete_update_would_be_caught():
    """The same check fails for a sampler that leaves the labels at their prior, so the test
    above can fail."""
    means, sds, labels = mixture_exact()
    prior_labels = torch.bernoulli(torch.full((2, 600, len(MIXTURE_DATA)), 0.5))
    with pytest.raises(AssertionError):
        assert_matches(prior_labels, labels, (labels * (1 - labels)).sqrt(), "labels")


def test_each_hmc_step_starts_from_the_potential_under_the_new_discrete_values():
    """After every step the inner kernel's cached potential energy is the one of the current
    continuous values under the current discrete values; a kernel that kept HMC's cache
    across a discrete update would hold a stale energy after a rejected proposal (and bias
    the Metropolis correction: c's variance comes out near 2.9 instead of 3.25 here)."""

    def model():
        z = pyro.sample("z", dist.Bernoulli(0.5))
        pyro.sample("c", dist.Normal(3.0 * z, 1.0))

    pyro.set_rng_seed(0)
    inner = HMC(model, step_size=1.5, num_steps=2, adapt_step_size=False)
    kernel = HMCGibbs(inner)
    kernel.setup(0)
    params, flips = kernel.initial_params, 0
    for _ in range(200):
        before = params["z"]
        params = kernel.sample(params)
        flips += int(params["z"] != before)
        cached = inner._potential_energy_last  # Pyro's cache: what the next step starts from
        expected = -dist.Normal(3.0 * params["z"], 1.0).log_prob(params["c"]) + math.log(2)
        assert torch.allclose(cached, expected, atol=1e-5)
    assert flips > 10


def nade_image_model(prior, observed):
    scale = pyro.sample("scale", dist.LogNormal(-1.0, 0.5))
    image = pyro.sample("image", prior)
    pyro.sample("y", dist.Normal(image, scale).to_event(1), obs=observed)


def test_binary_image_under_nade_prior_with_unknown_noise_scale():
    pyro.set_rng_seed(1)
    generator = torch.Generator().manual_seed(3)
    prior = make_nade(5, dtype=torch.float32, hidden=4, generator=generator)
    observed = torch.tensor([0.9, 0.1, 0.6, 1.2, -0.2])
    # exact: 2^5 images enumerated, the scale integrated on a log grid
    images = torch.tensor(list(itertools.product([0.0, 1.0], repeat=5)))
    log_scale = torch.linspace(-5.0, 2.0, 4001, dtype=torch.float64)
    scale = log_scale.exp()
    log_prior_image = prior.log_prob(images).double().detach()
    # density of log(scale) under LogNormal is Normal(-1, 0.5) on the log scale
    log_prior_scale = torch.distributions.Normal(-1.0, 0.5).log_prob(log_scale)
    likelihood = (
        torch.distributions.Normal(images.double()[:, None, :], scale[None, :, None])
        .log_prob(observed.double())
        .sum(-1)
    )
    log_joint = log_prior_image[:, None] + log_prior_scale[None, :] + likelihood
    weights = torch.softmax(log_joint.flatten(), 0).reshape(log_joint.shape)
    exact_scale = (weights.sum(0) * scale).sum()
    exact_scale_sd = ((weights.sum(0) * scale**2).sum() - exact_scale**2).sqrt()
    exact_pixels = (weights.sum(1)[:, None] * images.double()).sum(0)

    kernel = HMCGibbs(NUTS(nade_image_model))
    mcmc = MCMC(kernel, num_samples=500, warmup_steps=200, num_chains=2, disable_progbar=True)
    mcmc.run(prior, observed)
    samples = mcmc.get_samples(group_by_chain=True)
    assert kernel.discrete_sites == ("image",)
    assert_matches(samples["scale"], exact_scale, exact_scale_sd, "scale")
    pixel_sd = (exact_pixels * (1 - exact_pixels)).sqrt()
    assert_matches(samples["image"], exact_pixels, pixel_sd, "image")


def test_arviz_output_keeps_discrete_sites_integer_and_reports_divergences():
    pyro.set_rng_seed(2)
    kernel = HMCGibbs(HMC(mixture_model, num_steps=4))
    mcmc = MCMC(kernel, num_samples=30, warmup_steps=20, num_chains=2, disable_progbar=True)
    mcmc.run()
    data = to_inference_data(mcmc)
    posterior = data.posterior
    assert str(posterior["labels"].dtype) == "int64"
    assert posterior["means"].dtype.kind == "f"
    assert dict(posterior.sizes)["chain"] == 2 and dict(posterior.sizes)["draw"] == 30
    assert {"lp", "flip_rate", "diverging"} <= set(data.sample_stats.data_vars)
    assert data.log_likelihood["x"].shape == (2, 30, len(MIXTURE_DATA))
    diagnostics = mcmc.diagnostics()
    assert "acceptance rate" in diagnostics and "flip_rate" in diagnostics


def test_categorical_discrete_site_comes_back_integer():
    def model():
        location = pyro.sample("location", dist.Normal(0.0, 1.0))
        with pyro.plate("data", 3):
            label = pyro.sample("label", dist.Categorical(torch.ones(3) / 3))
            pyro.sample("x", dist.Normal(location + label.double(), 1.0), obs=torch.zeros(3))

    kernel = HMCGibbs(HMC(model, num_steps=3))
    mcmc = MCMC(kernel, num_samples=10, warmup_steps=5, disable_progbar=True)
    mcmc.run()
    assert mcmc.get_samples()["label"].dtype == torch.int64
    assert str(to_inference_data(mcmc).posterior["label"].dtype) == "int64"


def test_user_initial_params_and_clamped_elements_are_respected():
    start = {"means": torch.tensor([[-3.0, 3.0]]), "labels": torch.ones(1, len(MIXTURE_DATA))}
    clamp = (torch.zeros(len(MIXTURE_DATA)), torch.tensor([True] + [False] * 5))
    kernel = HMCGibbs(HMC(mixture_model, num_steps=2), clamped={"labels": clamp})
    kernel.initial_params = {k: v[0] for k, v in start.items()}
    kernel.setup(0)
    assert torch.equal(kernel.initial_params["means"], start["means"][0])
    assert kernel.initial_params["labels"][0] == 0 and kernel.initial_params["labels"][1] == 1
    params = kernel.initial_params
    for _ in range(10):
        params = kernel.sample(params)
        assert params["labels"][0] == 0


def test_bad_configurations_are_refused():
    with pytest.raises(TypeError, match="HMC or NUTS"):
        HMCGibbs(GibbsKernel(mixture_model))
    with pytest.raises(ValueError, match="jit_compile"):
        HMCGibbs(NUTS(mixture_model, jit_compile=True))
    with pytest.raises(ValueError, match="potential_fn"):
        HMCGibbs(HMC(potential_fn=lambda z: z["a"].sum()))

    def discrete_only():
        pyro.sample("bit", dist.Bernoulli(0.5))

    def continuous_only():
        pyro.sample("location", dist.Normal(0.0, 1.0))

    with pytest.raises(ValueError, match="GibbsKernel directly"):
        HMCGibbs(NUTS(discrete_only)).setup(0)
    with pytest.raises(ValueError, match="HMC/NUTS directly"):
        HMCGibbs(NUTS(continuous_only)).setup(0)
    with pytest.raises(ValueError, match="not latent"):
        HMCGibbs(NUTS(mixture_model), discrete_sites=["x"]).setup(0)


# ------------------------------------------------------- plate-parallel Gibbs updates


def labels_model(coupled: bool, provenance: bool = True):
    """Labels in a plate with known component means; ``coupled`` adds a site outside the
    plate that depends on every label (so the labels are no longer independent given the
    rest); without ``provenance`` it reads them through NumPy, hiding the dependency."""
    data = torch.tensor([-1.0, 0.2, 1.5])

    def model():
        with pyro.plate("data", 3):
            labels = pyro.sample("labels", dist.Bernoulli(0.5))
            pyro.sample("x", dist.Normal(2.0 * labels - 1.0, 1.0), obs=data)
        if coupled:
            total = labels.sum(-1, keepdim=True)  # keeps the chains dim aligned
            if not provenance:
                total = torch.as_tensor(labels.detach().numpy().sum(-1, keepdims=True))
            pyro.sample("total", dist.Normal(total, 1.0), obs=torch.tensor(1.0))

    return model, data


def exact_labels(coupled: bool) -> torch.Tensor:
    _, data = labels_model(coupled)
    states = torch.tensor(list(itertools.product([0.0, 1.0], repeat=3)))
    log_joint = dist.Normal(2.0 * states - 1.0, 1.0).log_prob(data).sum(-1)
    if coupled:
        log_joint = log_joint + dist.Normal(states.sum(-1), 1.0).log_prob(torch.tensor(1.0))
    return (torch.softmax(log_joint, 0)[:, None] * states).sum(0)


@pytest.mark.parametrize(
    "coupled, provenance, parallel",
    [(False, True, {"labels": (-1,)}), (True, True, {}), (True, False, {})],
    ids=["independent", "coupled", "coupled-without-provenance"],
)
def test_plate_parallel_updates_only_where_elements_are_conditionally_independent(
    coupled, provenance, parallel, caplog
):
    model, _ = labels_model(coupled, provenance)
    kernel = GibbsKernel(model, num_vectorized_chains=400)
    mcmc = MCMC(kernel, num_samples=30, warmup_steps=10, disable_progbar=True)
    with caplog.at_level(logging.WARNING, logger="pyro_ar.infer.gibbs"):
        mcmc.run()
    assert kernel.parallel_plates == parallel
    if not provenance:
        assert "not conditionally independent numerically" in caplog.text
    frequencies = mcmc.get_samples()["labels"].mean((0, 1))
    # 12000 correlated draws; the chains are independent, so 400 chains give the scale
    assert torch.allclose(frequencies, exact_labels(coupled), atol=0.05), frequencies
