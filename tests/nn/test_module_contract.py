"""The module contract (``DensityModule``) for every registered module: registration, recorded
configuration that rebuilds the module, seeding that leaves the global generator alone, one
naming of sizes, and calls that never change the module."""

from __future__ import annotations

import pytest
import torch
from torch.distributions import Distribution

from pyro_ar.data import load_binarized_digits
from pyro_ar.nn import MODULES, DensityModule, MADEModule, NADEModule, RBMModule, marginal_logits


@pytest.fixture(scope="module")
def digits():
    return load_binarized_digits()


def _build(name: str, digits, seed=0):
    return MODULES[name].for_data(digits.train, hidden_features=8, seed=seed)


def test_the_registry_holds_every_module():
    assert set(MODULES) == {"fvsbn", "made", "nade", "pixelcnn", "rbm"}
    for name, cls in MODULES.items():
        assert issubclass(cls, DensityModule) and cls.name == name
    assert MODULES["rbm"].objective == "contrastive_divergence"
    assert {MODULES[name].objective for name in ("fvsbn", "made", "nade", "pixelcnn")} == {
        "maximum_likelihood"
    }
    with pytest.raises(ValueError, match="already registered"):

        class Duplicate(DensityModule, name="nade"):
            pass


@pytest.mark.parametrize("name", ["fvsbn", "made", "nade", "pixelcnn", "rbm"])
def test_config_rebuilds_the_module_and_calls_change_nothing(name, digits):
    module = _build(name, digits)
    config = module.config
    assert "data" not in config
    if name == "pixelcnn":  # an image model is sized by its image shape
        assert config["image_shape"] == [1, 8, 8] and module.num_dims == 64
    else:
        assert config["num_dims"] == 64
    rebuilt = MODULES[name](**config)
    rebuilt.load_state_dict(module.state_dict())
    values = module.shape_data(digits.valid[:10])
    torch.testing.assert_close(rebuilt().log_prob(values), module().log_prob(values))
    state = {key: value.clone() for key, value in module.state_dict().items()}
    for _ in range(3):
        assert isinstance(module(), Distribution)
    assert all(torch.equal(state[key], value) for key, value in module.state_dict().items())


@pytest.mark.parametrize("name", ["fvsbn", "made", "nade", "pixelcnn", "rbm"])
def test_seeding_is_reproducible_and_leaves_the_global_generator_alone(name, digits):
    torch.manual_seed(123)
    before = torch.get_rng_state()
    first, second = _build(name, digits, seed=5), _build(name, digits, seed=5)
    assert torch.equal(torch.get_rng_state(), before)
    for a, b in zip(first.state_dict().values(), second.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    if name != "fvsbn":  # its weights start at zero whatever the seed
        other = _build(name, digits, seed=6)
        assert any(
            not torch.equal(a, b)
            for a, b in zip(first.state_dict().values(), other.state_dict().values(), strict=True)
        )


def test_sizes_accept_an_integer_or_a_list_and_say_what_is_expected():
    assert NADEModule(10, [8]).hidden_features == 8
    assert MADEModule(10, 8).network.hidden[0].out_features == 8
    assert RBMModule(10, [4]).num_hidden == 4
    assert RBMModule(num_visible=10, num_hidden=4).num_dims == 10  # the RBM's own names
    with pytest.raises(ValueError, match="one hidden layer"):
        NADEModule(10, [8, 8])
    with pytest.raises(ValueError, match="hidden_features must be a positive integer"):
        MADEModule(10, [8, 0])
    with pytest.raises(ValueError, match="not both"):
        RBMModule(10, num_visible=10, num_hidden=4)


def test_every_module_initializes_biases_at_the_data_marginals(digits):
    expected = marginal_logits(digits.train, 64)
    biases = {
        "fvsbn": lambda m: m.bias,
        "nade": lambda m: m.output_bias,
        "made": lambda m: m.network.output.bias,
        "rbm": lambda m: m.visible_bias,
    }
    for name, bias in biases.items():
        torch.testing.assert_close(bias(_build(name, digits)).detach(), expected.float())
