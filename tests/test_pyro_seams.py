"""Regression tests for the fifteen defects found where the library meets Pyro's inference
(the seams issue): each test failed before its fix. The generic checks over every distribution
are in ``test_conformance.py``."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro import poutine
from pyro.infer import MCMC, Predictive, TraceEnum_ELBO, TraceGraph_ELBO
from pyro.ops.provenance import ProvenanceTensor, get_provenance
from stats import cells_chi_square_p_value, states_to_index

from pyro_ar.data import load_binarized_digits
from pyro_ar.diagnostics import to_inference_data
from pyro_ar.distributions import (
    NADE,
    PPCA,
    RBM,
    FactorAnalysis,
    GaussianBernoulliRBM,
    GaussianMADE,
    NGramChain,
)
from pyro_ar.distributions.rbm import binary_states
from pyro_ar.infer import ContrastiveDivergence, GibbsKernel, mean_nll
from pyro_ar.models import bayesian_linear_gaussian_model
from pyro_ar.nn import MADEModule, MaskedAutoencoder, NADEModule, RBMModule
from pyro_ar.ops import BernoulliSampler

# ----------------------------------------------------------------------------- 1. sampler


def test_1_gibbs_chain_of_61_hidden_and_64_visible_units_runs_to_the_end():
    """The reproduction from the issue: both layers need 8 random words; tie flags of the 64-unit
    draw were read by the 61-unit draw and written past its end ("double free or corruption").
    Run in a subprocess so that memory corruption fails this test instead of the test run."""
    script = textwrap.dedent(
        """
        import torch
        from pyro_ar.distributions import RBM
        torch.manual_seed(0)
        rbm = RBM(0.1 * torch.randn(61, 64), torch.zeros(64), torch.zeros(61))
        print(tuple(rbm.gibbs_chain((1,), burn_in=2000).shape))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "(1, 1, 64)"


def test_1_draws_never_write_outside_out():
    """Consecutive draws of sizes that share a word count, into views of a guarded buffer, with
    Numba's bounds checking on: every guard value survives."""
    sampler = BernoulliSampler("compiled", boundscheck=True)
    guard = 7.0
    for size in [64, 61, 64, 57, 63, 64, 58, 1, 8, 9, 7] * 200:
        buffer = torch.full((size + 16,), guard)
        out = buffer[8 : 8 + size]
        sampler(torch.full((size,), 0.5), out=out)
        assert bool(((out == 0) | (out == 1)).all())
        assert bool((buffer[:8] == guard).all() and (buffer[8 + size :] == guard).all())


# --------------------------------------------------------------- 2. gradients under provenance


def test_2_made_log_prob_keeps_its_graph_for_a_provenance_tensor():
    module = MADEModule(8, [32])
    x = torch.randint(0, 2, (5, 8)).float()
    tracked = module().log_prob(ProvenanceTensor(x, frozenset({"z"})))
    assert tracked.requires_grad and get_provenance(tracked) == frozenset({"z"})
    plain = module().log_prob(x)
    parameters = list(module.parameters())
    for ours, theirs in zip(
        torch.autograd.grad(tracked.sum(), parameters),
        torch.autograd.grad(plain.sum(), parameters),
        strict=True,
    ):
        assert torch.equal(ours, theirs)


def _binary_latent_model(prior_logits, rows):
    def model():
        with pyro.plate("rows", rows):
            pyro.sample("x", dist.Bernoulli(logits=prior_logits).to_event(1))

    return model


@pytest.mark.parametrize("name", ["nade", "made"])
def test_2_a_binary_guide_under_tracegraph_elbo_gets_the_score_function_gradient(name):
    """TraceGraph_ELBO's surrogate for a non-reparameterized site x_n ~ q in a plate (no
    baseline; the guide's log q enters only through the score function): loss = -sum_n
    log q(x_n) (log p(x_n) - log q(x_n)).detach(). Every guide parameter must get exactly that
    gradient (before the fix only NADE's output bias got one)."""
    num_dims, rows = 6, 8
    prior_logits = torch.linspace(-1.0, 1.0, num_dims)
    module = NADEModule(num_dims, 5, seed=0) if name == "nade" else MADEModule(num_dims, [12])

    def guide():
        pyro.module("guide", module)
        with pyro.plate("rows", rows):
            pyro.sample("x", module())

    pyro.set_rng_seed(3)
    TraceGraph_ELBO().loss_and_grads(_binary_latent_model(prior_logits, rows), guide)
    parameters = list(module.parameters())
    gradients = [parameter.grad for parameter in parameters]
    pyro.set_rng_seed(3)
    x = module().sample((rows,))
    log_p = dist.Bernoulli(logits=prior_logits).log_prob(x).sum(-1)
    log_q = module().log_prob(x)
    elbo = log_p - log_q
    expected = torch.autograd.grad(-(log_q * elbo.detach()).sum(), parameters)
    for parameter_name, ours, theirs in zip(
        [n for n, _ in module.named_parameters()], gradients, expected, strict=True
    ):
        torch.testing.assert_close(ours, theirs, msg=parameter_name)
        assert ours.abs().sum() > 0, parameter_name


# --------------------------------------------------------- 3. Gibbs must not sample a prior


def _rbm_code_with_nade_likelihood(detach: bool = False):
    generator = torch.Generator().manual_seed(0)

    def randn(*shape, scale=1.0):
        return scale * torch.randn(*shape, generator=generator, dtype=torch.float64)

    num_code, hidden, num_dims = 4, 3, 5
    rbm = RBM(randn(2, num_code), randn(num_code), randn(2))
    weight, output_weight, output_bias = (
        randn(hidden, num_dims),
        randn(num_dims, hidden, scale=2),
        randn(num_dims),
    )
    mixing = randn(hidden, num_code, scale=2.0)
    observed = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0], dtype=torch.float64)

    def model(data):
        code = pyro.sample("code", rbm)
        if detach:  # a likelihood that hides the dependency from Pyro's provenance tracking
            from pyro.ops.provenance import detach_provenance

            code = detach_provenance(code)
        pyro.sample("x", NADE(weight, code @ mixing.T, output_weight, output_bias), obs=data)

    codes = binary_states(num_code, 0, 2**num_code, observed)
    log_joint = rbm.log_prob(codes) + NADE(
        weight, codes @ mixing.T, output_weight, output_bias
    ).log_prob(observed)
    return model, observed, torch.softmax(log_joint, 0), rbm.log_prob(codes).exp()


@pytest.mark.parametrize("detach", [False, True], ids=["tracked", "hidden-from-provenance"])
def test_3_an_rbm_code_feeding_a_nade_likelihood_gets_its_posterior(detach, caplog):
    model, observed, posterior, prior = _rbm_code_with_nade_likelihood(detach)
    torch.manual_seed(1)
    kernel = GibbsKernel(model, num_vectorized_chains=3000)
    mcmc = MCMC(kernel, num_samples=1, warmup_steps=30, disable_progbar=True)
    with caplog.at_level("WARNING"):
        mcmc.run(observed)
    assert kernel.block_sites == set()  # block Gibbs would sample the RBM prior
    if detach:  # the numerical check caught what the dependency analysis missed
        assert "densities change" in caplog.text
    draws = states_to_index(mcmc.get_samples()["code"].reshape(-1, 4))
    assert cells_chi_square_p_value(draws, posterior)[0] > 1e-3
    assert cells_chi_square_p_value(draws, prior)[0] < 1e-6  # negative control: not the prior


# -------------------------------------------------------- 4. PPCA/FA with batched noise scales


def test_4_linear_gaussian_with_batched_noise_and_an_unbatched_value():
    """The issue's PPCA reproduction, and factor analysis likewise: each batch member equals the
    distribution built with that member's noise alone."""
    value = torch.randn(10, 5)
    scales = torch.tensor([[0.5], [1.0], [2.0]])
    loc, weight = torch.zeros(5), torch.ones(5, 2)
    ppca = PPCA(loc, weight, scales)
    assert ppca.log_prob(value).shape == (3, 10)
    for row in range(3):
        expected = PPCA(loc, weight, scales[row, 0]).log_prob(value)
        torch.testing.assert_close(ppca.log_prob(value)[row], expected)
    noise = (scales * torch.linspace(0.5, 1.5, 5)).unsqueeze(1)  # (3, 1, 5): 3 noise vectors
    factor_analysis = FactorAnalysis(loc, weight, noise)
    assert factor_analysis.log_prob(value).shape == (3, 10)
    for row in range(3):
        expected = FactorAnalysis(loc, weight, noise[row, 0]).log_prob(value)
        torch.testing.assert_close(factor_analysis.log_prob(value)[row], expected)


def test_4_arviz_keeps_the_log_likelihood_of_the_bayesian_linear_gaussian_model():
    import arviz as az
    from pyro.infer import NUTS

    torch.manual_seed(0)
    data = torch.randn(12, 3, dtype=torch.float64)
    for isotropic in (True, False):
        mcmc = MCMC(
            NUTS(bayesian_linear_gaussian_model),
            num_samples=6,
            warmup_steps=6,
            disable_progbar=True,
        )
        mcmc.run(data, 1, isotropic)
        idata = az.from_pyro(mcmc, log_likelihood=True)
        assert "log_likelihood" in idata.groups()  # ArviZ drops the group when Predictive fails
        assert idata.log_likelihood["x"].shape == (1, 6, 12)


# ------------------------------------------------------- 5. an ensemble samples in a plate


def test_5_made_ensemble_samples_when_expanded_and_in_predictive():
    module = MADEModule(6, [16], num_masks=3).eval()
    ensemble = module()
    assert ensemble.expand((4,)).sample().shape == (4, 6)
    assert ensemble.expand((4, 2)).sample((3,)).shape == (3, 4, 2, 6)

    def model():
        with pyro.plate("rows", 5):
            return pyro.sample("x", module())

    assert Predictive(model, num_samples=2)()["x"].shape == (2, 5, 6)


# ------------------------------------------------- 6. MCMC samples keep the sites' dtypes


def _label_model(y=None):
    theta = torch.tensor([-2.0, 0.5, 3.0])
    label = pyro.sample("label", dist.Categorical(torch.ones(3) / 3))
    flag = pyro.sample("flag", dist.Bernoulli(0.3))
    return pyro.sample("y", dist.Normal(theta[label] + flag, 1.0), obs=y)


def test_6_a_sampled_label_indexes_in_predictive_and_to_inference_data():
    mcmc = MCMC(GibbsKernel(_label_model), num_samples=40, warmup_steps=5, disable_progbar=True)
    mcmc.run(torch.tensor(2.5))
    samples = mcmc.get_samples()
    assert samples["label"].dtype == torch.int64  # Categorical draws are long
    assert samples["flag"].dtype == torch.float32  # Bernoulli draws are float
    assert Predictive(_label_model, posterior_samples=samples)()["y"].shape == (40,)
    idata = to_inference_data(mcmc)
    assert idata.posterior["label"].dtype == np.int64
    assert idata.log_likelihood["y"].shape == (1, 40)
    # the escape hatch keeps Pyro's float samples (for mcmc.summary())
    floats = MCMC(GibbsKernel(_label_model, site_dtypes=False), num_samples=5, warmup_steps=1)
    floats.disable_progbar = True
    floats.run(torch.tensor(2.5))
    assert floats.get_samples()["label"].dtype == torch.float32


# ------------------------------------------------------------------- 7. the flip rate


def test_7_flip_rate_without_vectorized_chains_and_no_state_edited_in_place():
    def model():
        pyro.sample("bits", dist.Bernoulli(torch.full((6,), 0.5)).to_event(1))

    kernel = GibbsKernel(model)
    mcmc = MCMC(kernel, num_samples=200, warmup_steps=5, disable_progbar=True)
    mcmc.run()
    samples = mcmc.get_samples()
    # independent fair bits: each changes with probability 1/2 in a sweep
    assert 0.4 < samples["flip_rate__"].mean() < 0.6
    changed = (samples["bits"][1:] != samples["bits"][:-1]).double().mean()
    assert 0.4 < changed < 0.6
    params = {"bits": torch.zeros(6)}
    before = params["bits"].clone()
    kernel.setup(0)
    kernel.sample({**kernel.initial_params, **params})
    assert torch.equal(params["bits"], before)


# --------------------------------------------------- 8. to_inference_data leaves MCMC alone


def test_8_to_inference_data_does_not_modify_the_mcmc_run(capsys):
    def model():
        pyro.sample("bits", dist.Bernoulli(torch.full((3,), 0.3)).to_event(1))

    mcmc = MCMC(GibbsKernel(model), num_samples=20, warmup_steps=2, disable_progbar=True)
    mcmc.run()
    first = to_inference_data(mcmc)
    second = to_inference_data(mcmc)
    for idata in (first, second):
        assert set(idata.sample_stats.data_vars) >= {"lp", "flip_rate"}
    assert {"lp__", "flip_rate__"} <= set(mcmc.get_samples())
    mcmc.summary()
    assert "lp__" in capsys.readouterr().out


# ------------------------------------------------------- 9. contrastive divergence and mask


def _cd_model(mask):
    def model(data):
        weight = pyro.param("w", torch.linspace(-0.5, 0.5, 24, dtype=torch.float64).reshape(4, 6))
        visible_bias = pyro.param("b", torch.zeros(6, dtype=torch.float64))
        hidden_bias = pyro.param("c", torch.zeros(4, dtype=torch.float64))
        with pyro.plate("rows", len(data)), poutine.mask(mask=True if mask is None else mask):
            pyro.sample("v", RBM(weight, visible_bias, hidden_bias), obs=data)

    return model


def _cd_gradients(mask, data, persistent=False, scale=1.0):
    pyro.clear_param_store()
    torch.manual_seed(5)
    loss = ContrastiveDivergence(steps=2, persistent=persistent)
    loss.sampler = BernoulliSampler("torch")  # one uniform per element: rows do not interact
    model = poutine.scale(_cd_model(mask), scale=scale)
    value = loss.loss_and_grads(model, lambda data: None, data)
    store = pyro.get_param_store()
    return value, {name: store[name].grad.clone() for name in ("w", "b", "c")}


@pytest.mark.parametrize("persistent", [False, True])
def test_9_contrastive_divergence_honours_poutine_mask_and_scale(persistent):
    torch.manual_seed(0)
    data = torch.bernoulli(torch.full((8, 6), 0.5, dtype=torch.float64))
    # all rows masked: nothing to learn
    value, gradients = _cd_gradients(torch.zeros(8, dtype=torch.bool), data, persistent)
    assert value == 0.0 and all(bool((g == 0).all()) for g in gradients.values())
    # an all-true mask is no mask
    reference = _cd_gradients(None, data, persistent)
    assert all(bool((g != 0).any()) for g in reference[1].values())
    kept = _cd_gradients(torch.ones(8, dtype=torch.bool), data, persistent)
    for name in reference[1]:
        assert torch.equal(reference[1][name], kept[1][name])
    # poutine.scale scales the surrogate and its gradient, as in Trace_ELBO
    scaled = _cd_gradients(None, data, persistent, scale=2.5)
    assert scaled[0] == pytest.approx(2.5 * reference[0])
    for name in reference[1]:
        torch.testing.assert_close(scaled[1][name], 2.5 * reference[1][name])
    if not persistent:
        # the masked-out rows' values do not matter
        mask = torch.tensor([True, False] * 4)
        other = data.clone()
        other[~mask] = 1 - other[~mask]
        first, second = _cd_gradients(mask, data)[1], _cd_gradients(mask, other)[1]
        for name in first:
            torch.testing.assert_close(first[name], second[name])
        assert not torch.equal(first["w"], reference[1]["w"])


# ---------------------------------------------------- 10. factors are not observed data


def test_10_factor_sites_are_neither_observed_data_nor_log_likelihood():
    def model(y):
        bits = pyro.sample("bits", dist.Bernoulli(torch.full((3,), 0.5)).to_event(1))
        pyro.factor("penalty", -bits.sum())
        pyro.sample("y", dist.Normal(bits.sum(), 1.0), obs=y)

    mcmc = MCMC(GibbsKernel(model), num_samples=10, warmup_steps=2, disable_progbar=True)
    mcmc.run(torch.tensor(1.0))
    idata = to_inference_data(mcmc)
    assert set(idata.log_likelihood.data_vars) == {"y"}
    assert set(idata.observed_data.data_vars) == {"y"}


# --------------------------------------------------- 11. n-gram chains follow the dtype


@pytest.fixture(scope="module")
def small_ngram_model():
    from pyro_ar.ngram import NGramModel

    sentences = [["a", "b", "c"], ["a", "c"], ["b", "a", "c", "c"], ["c", "b"]] * 3
    return NGramModel.fit(sentences, order=2, smoothing="witten_bell")


def test_11_ngram_chain_in_an_enumerated_float32_model(small_ngram_model):
    model_ = small_ngram_model
    prefixes = torch.stack([model_.vocabulary.encode([w]) for w in ("a", "b", "c")])
    weights = torch.tensor([0.2, 0.3, 0.5])  # float32, the default dtype
    chain = NGramChain(model_, 3)
    data = chain.sample((6,))
    assert chain.log_prob(data).dtype == torch.float32

    def model(data):
        with pyro.plate("rows", len(data)):
            start = pyro.sample(
                "start", dist.Categorical(weights), infer={"enumerate": "parallel"}
            )
            pyro.sample("x", NGramChain(model_, 3, prefix=prefixes[start]), obs=data)

    loss = TraceEnum_ELBO(max_plate_nesting=1).loss(model, lambda data: None, data)
    per_start = torch.stack(
        [NGramChain(model_, 3, prefix=p, dtype=torch.float64).log_prob(data) for p in prefixes]
    )
    exact = torch.logsumexp(per_start + weights.double().log().unsqueeze(-1), 0).sum()
    assert loss == pytest.approx(-exact.item(), rel=1e-5)


# ------------------------------------------------------ 12. GaussianMADE casts its values


def test_12_gaussian_made_casts_values_to_its_dtype():
    network = MaskedAutoencoder(4, [8], outputs_per_dim=2).double()
    made = GaussianMADE(network)
    value = torch.randn(3, 4, dtype=torch.float64)
    reference = made.log_prob(value)
    assert reference.dtype == torch.float64
    torch.testing.assert_close(made.log_prob(value.float()), reference, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(made.inverse(value.float()), made.inverse(value), atol=1e-5, rtol=0)
    integers = torch.randint(-2, 3, (3, 4))
    torch.testing.assert_close(made.log_prob(integers), made.log_prob(integers.double()))


# ---------------------------------------------------------------- 13. torch.compile


@pytest.mark.parametrize("name", ["made", "nade", "fvsbn"])
def test_13_log_prob_and_its_gradient_compile(name):
    from pyro_ar.nn import FVSBNModule

    torch.manual_seed(0)
    module = {
        "made": lambda: MADEModule(10, [24], direct_connections=True),
        "nade": lambda: NADEModule(10, 12, seed=0),
        "fvsbn": lambda: FVSBNModule(10),
    }[name]()
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    x = torch.randint(0, 2, (7, 10)).float()

    def loss(x):
        return -module().log_prob(x).mean()

    parameters = list(module.parameters())
    eager = loss(x)
    eager_gradients = torch.autograd.grad(eager, parameters)
    compiled = torch.compile(loss, backend="aot_eager")(x)
    compiled_gradients = torch.autograd.grad(compiled, parameters)
    torch.testing.assert_close(compiled, eager)
    for ours, theirs in zip(compiled_gradients, eager_gradients, strict=True):
        torch.testing.assert_close(ours, theirs)


# ------------------------------------------------- 14. options that expand and rebuild keep


def test_14_rbm_burn_in_survives_expand_and_plates():
    rbm = RBM(torch.zeros(25, 22), torch.zeros(22), torch.zeros(25), burn_in=3)
    assert rbm.expand((4,)).burn_in == 3
    assert rbm.with_log_partition(0.0).burn_in == 3
    rbm.burn_in = 7  # set on an instance, as the issue did
    assert rbm.expand((2, 4)).burn_in == 7
    gaussian = GaussianBernoulliRBM(torch.zeros(2, 3), torch.zeros(3), torch.zeros(2), burn_in=5)
    assert gaussian.expand((6,)).burn_in == 5
    with pytest.raises(ValueError, match="burn_in"):
        RBM(torch.zeros(2, 3), torch.zeros(3), torch.zeros(2), burn_in=-1)


def test_14_cli_scores_a_gaussian_rbm_with_its_visible_scale(tmp_path, capsys):
    from pyro_ar.cli import main
    from pyro_ar.infer import save_checkpoint

    digits = load_binarized_digits()
    module = RBMModule(64, 6, gaussian=True, learn_scale=True, seed=0)
    with torch.no_grad():
        module.log_visible_scale.fill_(-0.7)  # visible scale 0.5
    path = save_checkpoint(tmp_path / "gaussian.pt", module, data="digits", image_shape=[8, 8])
    assert main(["score", str(path), "--split", "test"]) == 0
    printed = float(capsys.readouterr().out.split("NLL")[1].split()[0])
    with torch.no_grad():
        expected = -module().log_prob(digits.test).mean().item()
    assert printed == pytest.approx(expected, abs=0.01)


# ---------------------------------------------- 15. scoring a MADE does not change it


def test_15_scoring_a_multi_mask_made_in_training_mode_uses_the_ensemble():
    digits = load_binarized_digits()
    module = MADEModule(64, [32], num_masks=4, order_agnostic=True, data=digits.train)
    module.train()
    first, second = mean_nll(module, digits.valid), mean_nll(module, digits.valid)
    assert first == second and module.network.current_mask == 0 and module.training
    module.eval()
    ensemble = -module().log_prob(digits.valid).mean().item()
    assert first == pytest.approx(ensemble, rel=1e-6)
