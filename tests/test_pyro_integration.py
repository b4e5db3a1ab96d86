"""The models inside Pyro: observed sites in subsampled plates, SVI, Predictive, traces,
vectorized particles, and conditioning through batched parameters."""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import pytest
import torch
from factories import MODULE_FACTORIES
from pyro import poutine
from pyro.infer import SVI, Predictive, Trace_ELBO
from pyro.optim import Adam

from pyro_ar.data import load_binarized_digits
from pyro_ar.infer import mean_nll
from pyro_ar.nn import FVSBNModule, NADEModule


@pytest.fixture(scope="module")
def digits():
    return load_binarized_digits()


def _observed_model(module, subsample_size=64):
    def model(data):
        pyro.module("density", module)
        with pyro.plate("data", len(data), subsample_size=subsample_size) as index:
            pyro.sample("x", module(), obs=data[index])

    return model


def _empty_guide(data):
    pass


@pytest.mark.parametrize("name", sorted(MODULE_FACTORIES))
def test_svi_with_a_subsampled_plate_lowers_the_nll(name, device, digits):
    module = MODULE_FACTORIES[name](digits.train).to(device)
    train = digits.train.to(device)
    before = mean_nll(module, train)
    svi = SVI(_observed_model(module), _empty_guide, Adam({"lr": 1e-2}), Trace_ELBO())
    losses = [svi.step(train) for _ in range(60)]
    after = mean_nll(module, train)
    assert all(torch.isfinite(torch.tensor(losses)))
    assert after < before - 1.0
    # the ELBO of an observed-only model is the scaled log-likelihood of the subsample
    assert sum(losses[-10:]) / 10 < sum(losses[:10]) / 10


@pytest.mark.parametrize("name", sorted(MODULE_FACTORIES))
def test_gradients_reach_every_parameter(name, digits):
    module = MODULE_FACTORIES[name](digits.train)
    with torch.no_grad():  # start away from the all-zero FVSBN weight, whose grads are still fine
        for parameter in module.parameters():
            parameter.add_(0.01 * torch.randn_like(parameter))
    loss = Trace_ELBO().differentiable_loss(_observed_model(module), _empty_guide, digits.train)
    loss.backward()
    for parameter_name, parameter in module.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, parameter_name


@pytest.mark.parametrize("name", sorted(MODULE_FACTORIES))
@pytest.mark.parametrize("parallel", [False, True])
def test_predictive_and_trace_shapes(name, parallel, digits):
    module = MODULE_FACTORIES[name](digits.train)

    def model(data=None, size=10):
        with pyro.plate("data", size):
            return pyro.sample("x", module(), obs=data)

    predictive = Predictive(model, num_samples=7, parallel=parallel)
    samples = predictive()["x"]
    assert samples.shape == (7, 10, 64)
    assert set(samples.unique().tolist()) <= {0.0, 1.0}

    trace = poutine.trace(_observed_model(module, subsample_size=32)).get_trace(digits.train)
    trace.compute_log_prob()
    site = trace.nodes["x"]
    assert site["fn"].batch_shape == (32,)
    assert site["value"].shape == (32, 64)
    assert site["log_prob"].shape == (32,)
    expected = {"fvsbn": "FVSBN", "nade": "NADE", "made": "BernoulliMADE"}[name]
    assert type(site["fn"]).__name__ == expected  # expand kept the class


def _decoder_model(module, data, latent=3):
    pyro.module("decoder", module)
    with pyro.plate("data", len(data)):
        z = pyro.sample("z", dist.Normal(0.0, 1.0).expand([latent]).to_event(1))
        pyro.sample("x", module(z), obs=data)


def _encoder_guide(encoder, data, latent=3):
    pyro.module("encoder", encoder)
    with pyro.plate("data", len(data)):
        out = encoder(data)
        pyro.sample("z", dist.Normal(out[..., :latent], out[..., latent:].exp()).to_event(1))


@pytest.mark.parametrize("name", sorted(MODULE_FACTORIES))
def test_conditional_model_as_vae_decoder_with_vectorized_particles(name, digits):
    """Per-example context z makes the parameters batched; particles add another batch dim."""
    decoder = MODULE_FACTORIES[name](digits.train, context=3)
    encoder = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.Tanh(), torch.nn.Linear(32, 6))
    data = digits.train[:200]
    elbo = Trace_ELBO(num_particles=4, vectorize_particles=True, max_plate_nesting=1)
    svi = SVI(
        lambda d: _decoder_model(decoder, d),
        lambda d: _encoder_guide(encoder, d),
        Adam({"lr": 1e-2}),
        elbo,
    )
    losses = [svi.step(data) for _ in range(40)]
    assert sum(losses[-5:]) < sum(losses[:5])

    trace = poutine.trace(lambda d: _decoder_model(decoder, d)).get_trace(data)
    assert trace.nodes["x"]["fn"].batch_shape == (200,)
    vectorized = poutine.trace(
        pyro.plate("particles", 4, dim=-2)(lambda d: _decoder_model(decoder, d))
    ).get_trace(data)
    vectorized.compute_log_prob()
    assert vectorized.nodes["x"]["log_prob"].shape == (4, 200)


def test_conditional_distribution_matches_per_example_models(digits):
    decoder = NADEModule(64, 16, context_features=3, seed=0)
    with torch.no_grad():
        decoder.context_to_output.weight.normal_()
    context = torch.randn(5, 3)
    x = digits.test[:5]
    batched = decoder(context).log_prob(x)
    separate = torch.stack([decoder(context[i]).log_prob(x[i]) for i in range(5)])
    assert torch.allclose(batched, separate, atol=1e-5)
    assert not torch.allclose(batched, decoder(torch.zeros(5, 3)).log_prob(x))


def test_module_rejects_a_wrong_context():
    with pytest.raises(ValueError, match="context of shape"):
        NADEModule(8, 4, context_features=3)(torch.zeros(2, 4))
    with pytest.raises(ValueError, match="context_features=0"):
        FVSBNModule(8)(torch.zeros(2, 3))


def test_observing_a_non_binary_value_fails_clearly(digits):
    module = FVSBNModule(64)

    def model(data):
        with pyro.plate("data", len(data)):
            pyro.sample("x", module(), obs=data)

    trace = poutine.trace(model).get_trace(digits.train[:4] * 0.5)
    with pytest.raises(ValueError, match="0 or 1"):
        trace.compute_log_prob()
