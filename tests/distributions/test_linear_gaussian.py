"""PPCA and factor analysis: parity with sklearn, posteriors, the latent form, missing values,
fitting (closed form, EM, SVI), Bayesian NUTS, and edge cases."""

from __future__ import annotations

import warnings

import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import MCMC, NUTS, Trace_ELBO
from pyro.infer.autoguide import init_to_value
from sklearn import datasets
from sklearn.decomposition import PCA
from sklearn.decomposition import FactorAnalysis as SklearnFactorAnalysis

from pyro_ar.diagnostics import to_inference_data
from pyro_ar.distributions import PPCA, FactorAnalysis
from pyro_ar.infer import (
    assemble_loadings,
    bayesian_linear_gaussian_model,
    fit_by_svi,
    fit_factor_analysis,
    fit_ppca,
    initial_values,
    rotate_to_lower_triangular,
)

BUNDLED = {
    "digits": lambda: datasets.load_digits().data,
    "iris": lambda: datasets.load_iris().data,
    "diabetes": lambda: datasets.load_diabetes().data * 10,
    "wine": lambda: datasets.load_wine().data,
}


def _random_model(kind, num_dims=6, latent=2, batch_shape=(), device="cpu", seed=0):
    generator = torch.Generator().manual_seed(seed)

    def randn(*shape):
        return torch.randn(tuple(shape), generator=generator, dtype=torch.float64).to(device)

    loc, weight = randn(*batch_shape, num_dims), randn(*batch_shape, num_dims, latent)
    if kind == "ppca":
        return PPCA(loc, weight, 0.5 + randn(*batch_shape).abs())
    return FactorAnalysis(loc, weight, 0.3 + randn(*batch_shape, num_dims).abs())


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_log_prob_equals_sklearn_score_samples(name):
    data = BUNDLED[name]().astype(np.float64)
    latent = 3
    pca = PCA(latent).fit(data)
    weight = pca.components_.T * np.sqrt(pca.explained_variance_ - pca.noise_variance_)
    ppca = PPCA(
        torch.tensor(pca.mean_), torch.tensor(weight), torch.tensor(np.sqrt(pca.noise_variance_))
    )
    reference = pca.score_samples(data)
    ours = ppca.log_prob(torch.tensor(data)).numpy()
    assert np.max(np.abs(ours - reference) / np.abs(reference)) < 1e-8

    fa = SklearnFactorAnalysis(latent, random_state=0).fit(data)
    model = FactorAnalysis(
        torch.tensor(fa.mean_),
        torch.tensor(fa.components_.T),
        torch.tensor(np.sqrt(fa.noise_variance_)),
    )
    reference = fa.score_samples(data)
    ours = model.log_prob(torch.tensor(data)).numpy()
    assert np.max(np.abs(ours - reference) / np.abs(reference)) < 1e-8


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_maximum_likelihood_is_at_least_sklearns(name):
    data = BUNDLED[name]().astype(np.float64)
    tensor = torch.tensor(data)
    for latent in (2, min(5, data.shape[1] - 1)):
        ours = fit_ppca(tensor, latent, noise_floor=0.0)
        assert ours.log_likelihood >= PCA(latent).fit(data).score(data) - 1e-9
        assert ours.log_likelihood == pytest.approx(
            float(ours.distribution.log_prob(tensor).mean())
        )
        # the same noise floor as sklearn's (1e-12), or constant columns decide the race
        ours = fit_factor_analysis(tensor, latent, noise_floor=1e-12, tol=1e-8)
        theirs = SklearnFactorAnalysis(latent, random_state=0).fit(data).score(data)
        assert ours.log_likelihood >= theirs - 1e-6
        assert ours.log_likelihood == pytest.approx(
            float(ours.distribution.log_prob(tensor).mean()), rel=1e-9
        )


def test_ppca_closed_form_matches_tipping_bishop():
    data = torch.tensor(datasets.load_iris().data)
    fit = fit_ppca(data, 2, noise_floor=0.0)
    covariance = torch.cov(data.T, correction=0)
    eigenvalues = torch.linalg.eigvalsh(covariance).flip(0)
    assert float(fit.distribution.noise_scale**2) == pytest.approx(float(eigenvalues[2:].mean()))
    model_covariance = fit.distribution.covariance_matrix
    top = torch.linalg.eigvalsh(model_covariance).flip(0)
    assert torch.allclose(top[:2], eigenvalues[:2])  # top eigenvalues are reproduced


def test_posterior_matches_textbook_formulas(device):
    for kind in ("ppca", "fa"):
        model = _random_model(kind, device=device)
        x = model.sample((7,))
        posterior = model.posterior(x)
        weight, residual = model.weight, x - model.loc
        covariance = model.covariance_matrix
        # Gaussian conditioning of the joint (h, x): E[h|x] = W^T C^-1 r, Cov = I - W^T C^-1 W
        gain = weight.T @ torch.linalg.inv(covariance)
        assert torch.allclose(posterior.mean, residual @ gain.T, atol=1e-10)
        expected = torch.eye(2, dtype=torch.float64, device=device) - gain @ weight
        assert torch.allclose(posterior.covariance_matrix, expected.expand(7, 2, 2), atol=1e-10)
        if kind == "ppca":  # Tipping & Bishop: M = W^T W + s^2 I, mean = M^-1 W^T r
            variance = model.noise_scale**2
            small = weight.T @ weight + variance * torch.eye(2, dtype=torch.float64, device=device)
            assert torch.allclose(
                posterior.mean, residual @ (torch.linalg.inv(small) @ weight.T).T
            )
            assert torch.allclose(
                posterior.covariance_matrix[0], variance * torch.linalg.inv(small)
            )


def test_latent_form_elbo_with_exact_posterior_equals_marginal():
    for kind in ("ppca", "fa"):
        model = _random_model(kind)
        data = model.sample((40,))
        loss = Trace_ELBO().loss(model.latent_model, model.posterior_guide, data)
        assert loss == pytest.approx(-float(model.log_prob(data).sum()), rel=1e-10)

        # a wrong guide gives a strictly looser bound
        def wrong_guide(data, model=model):
            with pyro.plate("rows", len(data)):
                pyro.sample(
                    "latent",
                    dist.Normal(torch.zeros(len(data), 2, dtype=torch.float64), 1.0).to_event(1),
                )

        assert Trace_ELBO(num_particles=20).loss(model.latent_model, wrong_guide, data) > loss + 1


def test_log_prob_with_missing_values_is_the_observed_marginal(device):
    model = _random_model("fa", num_dims=7, device=device)
    x = model.sample((5,))
    x[0, [1, 4]] = float("nan")
    x[1, :6] = float("nan")
    x[3] = float("nan")
    log_prob = model.log_prob(x)
    covariance = model.covariance_matrix
    for row in range(5):
        observed = ~torch.isnan(x[row])
        if not observed.any():
            assert log_prob[row] == 0
            continue
        marginal = dist.MultivariateNormal(model.loc[observed], covariance[observed][:, observed])
        assert torch.allclose(log_prob[row], marginal.log_prob(x[row, observed]))
    imputed = model.impute(x)
    assert not torch.isnan(imputed).any()
    keep = ~torch.isnan(x)
    assert torch.equal(imputed[keep], x[keep])
    # the imputation is the conditional mean E[x_m | x_o]
    observed = ~torch.isnan(x[0])
    gain = covariance[~observed][:, observed] @ torch.linalg.inv(covariance[observed][:, observed])
    expected = model.loc[~observed] + gain @ (x[0, observed] - model.loc[observed])
    assert torch.allclose(imputed[0, ~observed], expected)


@pytest.mark.parametrize("kind", ["ppca", "fa"])
def test_em_with_missing_values_recovers_the_parameters(kind):
    torch.manual_seed(0)
    true = _random_model(kind, num_dims=8, latent=2, seed=3)
    data = true.sample((4000,))
    missing = data.clone()
    missing[torch.rand(missing.shape) < 0.25] = float("nan")
    fit = (fit_ppca if kind == "ppca" else fit_factor_analysis)(missing, 2)
    assert fit.converged
    assert fit.iterations > 1
    error = (fit.distribution.covariance_matrix - true.covariance_matrix).abs().max()
    assert error < 0.15 * true.covariance_matrix.abs().max()
    assert (fit.distribution.loc - true.loc).abs().max() < 0.1
    assert fit.log_likelihood >= float(true.log_prob(missing).mean())
    assert all(b >= a - 1e-8 for a, b in zip(fit.history, fit.history[1:], strict=False))
    complete = (fit_ppca if kind == "ppca" else fit_factor_analysis)(data, 2)
    gap = fit.distribution.covariance_matrix - complete.distribution.covariance_matrix
    assert gap.abs().max() < 0.1 * true.covariance_matrix.abs().max()


def test_svi_fit_reaches_the_maximum_likelihood():
    data = torch.tensor(datasets.load_diabetes().data * 20)
    for isotropic in (True, False):
        svi = fit_by_svi(data, 3, isotropic=isotropic, num_steps=800, learning_rate=0.04)
        exact = (fit_ppca if isotropic else fit_factor_analysis)(data, 3, noise_floor=1e-12)
        assert svi.log_likelihood == pytest.approx(exact.log_likelihood, abs=1e-2)


def test_rsample_is_reparameterized_and_has_the_model_covariance():
    model = _random_model("fa")
    loc = model.loc.clone().requires_grad_()
    draws = FactorAnalysis(loc, model.weight, model.noise_scale).rsample((3,))
    draws.sum().backward()
    assert torch.allclose(loc.grad, torch.full_like(loc, 3.0))
    samples = model.sample((200000,))
    assert torch.allclose(torch.cov(samples.T), model.covariance_matrix, atol=0.05)
    assert torch.allclose(samples.mean(0), model.loc, atol=0.02)
    assert model.variance.shape == (6,)
    assert torch.allclose(model.variance, model.covariance_matrix.diagonal())


def test_batched_parameters_shapes_and_expand(device):
    model = _random_model("ppca", batch_shape=(3,), device=device)
    assert model.batch_shape == (3,) and model.event_shape == (6,)
    x = model.sample((4,))
    assert x.shape == (4, 3, 6) and model.log_prob(x).shape == (4, 3)
    separate = torch.stack(
        [
            PPCA(model.loc[i], model.weight[i], model.noise_scale[i]).log_prob(x[:, i])
            for i in range(3)
        ],
        dim=-1,
    )
    assert torch.allclose(model.log_prob(x), separate)
    expanded = model.expand((2, 3))
    assert type(expanded) is PPCA and expanded.log_prob(x[:2]).shape == (2, 3)
    assert torch.allclose(model.marginal().log_prob(x), model.log_prob(x))
    assert model.posterior(x).batch_shape == (4, 3)


def test_edge_cases():
    iris = torch.tensor(datasets.load_iris().data)
    # K = D: the model covariance is the sample covariance (up to the floor)
    with pytest.raises(ValueError, match="positive noise_floor"):
        fit_ppca(iris, 4, noise_floor=0.0)  # K = D: the ML noise variance is exactly 0
    full = fit_ppca(iris, 4)  # the default floor is below iris's smallest eigenvalue
    sample_covariance = torch.cov(iris.T, correction=0)
    assert torch.allclose(full.distribution.covariance_matrix, sample_covariance, atol=1e-8)
    assert (
        fit_factor_analysis(iris, 4).log_likelihood > fit_factor_analysis(iris, 1).log_likelihood
    )
    # n < D
    few = torch.randn(5, 12, dtype=torch.float64)
    for fit in (fit_ppca(few, 3), fit_factor_analysis(few, 3)):
        assert np.isfinite(fit.log_likelihood)
        assert torch.isfinite(
            fit.distribution.log_prob(torch.randn(4, 12, dtype=torch.float64))
        ).all()
    # constant columns: the noise floor keeps held-out rows finite and sensible
    digits = torch.tensor(datasets.load_digits().data)
    train, test = digits[:1500], digits[1500:].clone()
    constant = (train.std(0) == 0).nonzero().flatten()
    assert len(constant) > 0
    test[:, constant] = 1.0  # a held-out value the training data never showed
    floored = fit_factor_analysis(train, 10)
    assert floored.noise_floor > 0
    assert floored.distribution.noise_variance.min() >= floored.noise_floor * (1 - 1e-12)
    unfloored = fit_factor_analysis(train, 10, noise_floor=1e-12)
    floored_score = float(floored.distribution.log_prob(test).mean())
    unfloored_score = float(unfloored.distribution.log_prob(test).mean())
    assert floored_score > -1000 and unfloored_score < -1e9


def test_bad_input_is_rejected_clearly():
    data = torch.randn(10, 4, dtype=torch.float64)
    with pytest.raises(ValueError, match="latent_dim"):
        fit_ppca(data, 5)
    with pytest.raises(ValueError, match="inf"):
        fit_factor_analysis(torch.cat([data, torch.full((1, 4), float("inf"))]), 2)
    nan_column = data.clone()
    nan_column[:, 1] = float("nan")
    with pytest.raises(ValueError, match="entirely missing"):
        fit_ppca(nan_column, 2)
    with pytest.raises(ValueError, match="shape \\(N, D\\)"):
        fit_ppca(torch.randn(10), 1)
    model = _random_model("fa", num_dims=4)
    with pytest.raises(ValueError, match="shape \\(\\.\\.\\., 4\\)"):
        model.log_prob(torch.zeros(3, 5, dtype=torch.float64))
    with pytest.raises(ValueError, match="inf"):
        model.log_prob(torch.tensor([[0.0, float("inf"), 0, 0]], dtype=torch.float64))
    with pytest.raises(ValueError, match="noise_scale must have shape"):
        FactorAnalysis(torch.zeros(4), torch.zeros(4, 2), torch.ones(3))
    with pytest.raises(ValueError):
        PPCA(torch.zeros(4), torch.zeros(4, 2), torch.tensor(-1.0), validate_args=True)


def test_rotation_to_lower_triangular_keeps_the_covariance():
    weight = torch.randn(6, 3, dtype=torch.float64)
    rotated = rotate_to_lower_triangular(weight)
    assert torch.allclose(rotated @ rotated.T, weight @ weight.T)
    assert torch.all(rotated.triu(1).abs() < 1e-12)
    assert torch.all(rotated.diagonal() >= 0)
    rows, columns = torch.tril_indices(6, 3, offset=-1)
    rebuilt = assemble_loadings(rotated[rows, columns], rotated.diagonal(), 6)
    assert torch.allclose(rebuilt, rotated)


def test_bayesian_factor_analysis_with_nuts_is_healthy():
    az = pytest.importorskip("arviz")
    pyro.set_rng_seed(1)
    truth = FactorAnalysis(
        torch.zeros(4, dtype=torch.float64),
        torch.tensor([[1.0, 0.0], [0.8, 0.9], [-0.5, 1.2], [0.3, -0.7]], dtype=torch.float64),
        torch.full((4,), 0.5, dtype=torch.float64),
    )
    data = truth.sample((250,))
    start = initial_values(fit_factor_analysis(data, 2).distribution)
    kernel = NUTS(
        bayesian_linear_gaussian_model,
        init_strategy=init_to_value(values=start),
        jit_compile=True,
        ignore_jit_warnings=True,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pyro warns that 2 chains on 2 cores run one by one
        mcmc = MCMC(kernel, num_samples=150, warmup_steps=300, num_chains=2, disable_progbar=True)
        mcmc.run(data, 2)
        inference = to_inference_data(mcmc, observed_data={"x": data})
        summary = az.summary(
            inference, var_names=["loadings_diagonal", "loadings_lower", "noise_scale"]
        )
    assert inference.posterior.sizes["chain"] == 2 and inference.posterior.sizes["draw"] == 150
    assert inference.sample_stats["diverging"].shape == (2, 150)
    assert inference.observed_data["x"].shape == (250, 4)
    assert summary["r_hat"].max() < 1.1
    assert summary["ess_bulk"].min() > 40
    samples = mcmc.get_samples()
    weights = assemble_loadings(samples["loadings_lower"], samples["loadings_diagonal"], 4)
    covariance = (weights @ weights.transpose(-1, -2)).mean(0)
    assert torch.allclose(covariance, truth.weight @ truth.weight.T, atol=0.3)


def _random_models(seed: int):
    generator = torch.Generator().manual_seed(seed)

    def tensor(*shape):
        return torch.randn(*shape, generator=generator, dtype=torch.float64)

    ppca = PPCA(tensor(2, 5), tensor(2, 5, 2), tensor(2).exp())
    factor_analysis = FactorAnalysis(tensor(5), tensor(5, 3), tensor(2, 5).exp())
    return ppca, factor_analysis


def _full(model) -> torch.distributions.MultivariateNormal:
    return torch.distributions.MultivariateNormal(model.mean, model.covariance_matrix)


@pytest.mark.parametrize("seed", range(3))
def test_entropy_and_kl_equal_the_full_covariance_gaussians(seed):
    ppca, factor_analysis = _random_models(seed)
    for model in (ppca, factor_analysis):
        assert model.entropy().shape == model.batch_shape == (2,)
        torch.testing.assert_close(model.entropy(), _full(model).entropy())
    kl = torch.distributions.kl_divergence
    pairs = [(ppca, factor_analysis), (factor_analysis, ppca), (ppca, ppca)]
    for p, q in pairs:
        torch.testing.assert_close(kl(p, q), kl(_full(p), _full(q)))
        assert bool((kl(p, q) >= -1e-9).all())
    torch.testing.assert_close(kl(ppca, ppca), torch.zeros(2, dtype=torch.float64))
    torch.testing.assert_close(
        kl(ppca, _full(factor_analysis)), kl(_full(ppca), _full(factor_analysis))
    )
    torch.testing.assert_close(
        kl(_full(ppca), factor_analysis), kl(_full(ppca), _full(factor_analysis))
    )


def test_entropy_and_kl_pass_gradients_to_every_parameter():
    loc = torch.zeros(4, requires_grad=True)
    weight = torch.randn(4, 2, dtype=torch.float32, requires_grad=True)
    noise = torch.ones(4, requires_grad=True)
    model = FactorAnalysis(loc, weight, noise)
    other = PPCA(torch.ones(4), torch.randn(4, 1), torch.tensor(0.5))
    (torch.distributions.kl_divergence(model, other) + model.entropy()).backward()
    for parameter in (loc, weight, noise):
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all()
    assert weight.grad.abs().sum() > 0 and noise.grad.abs().sum() > 0
