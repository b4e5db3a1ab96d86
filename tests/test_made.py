"""MADE's masked network: masks, degrees, gradients, and the Bernoulli distribution on top."""

from __future__ import annotations

import itertools

import pytest
import torch

from pyro_ar.distributions import BernoulliMADE
from pyro_ar.nn import MaskedAutoencoder, MaskedLinear


def _network(**options):
    defaults = {"num_dims": 7, "hidden_features": (11, 9), "activation": torch.nn.Tanh}
    return MaskedAutoencoder(**{**defaults, **options}).double()


@pytest.mark.parametrize(
    "random_hidden, direct, context, outputs",
    list(itertools.product([False, True], [False, True], [0, 3], [1, 2])),
)
def test_every_mask_is_autoregressive_in_its_ordering(random_hidden, direct, context, outputs):
    network = _network(
        random_hidden_degrees=random_hidden,
        direct_connections=direct,
        context_features=context,
        outputs_per_dim=outputs,
        seed=4,
    )
    z = torch.randn(context, dtype=torch.float64) if context else None
    for ordering in (torch.arange(7), torch.tensor([3, 6, 0, 2, 5, 1, 4]), torch.randperm(7)):
        network.update_masks(ordering)
        x = torch.rand(7, dtype=torch.float64)
        jacobian = torch.autograd.functional.jacobian(lambda v: network(v, z), x)  # (D, P, D)
        rank = torch.argsort(ordering)
        allowed = rank[None, :] < rank[:, None]
        assert torch.all(jacobian[~allowed.unsqueeze(1).expand(7, outputs, 7)] == 0)
        # the last dimension in the ordering sees every earlier one (deterministic degrees)
        if not random_hidden:
            last = ordering[-1]
            assert (jacobian[last, :, ordering[:-1]].abs() > 0).all()


def test_masked_weights_get_zero_gradient_and_survive_mask_changes():
    network = _network(direct_connections=True)
    before = {name: p.detach().clone() for name, p in network.named_parameters()}
    network(torch.rand(5, 7, dtype=torch.float64)).sum().backward()
    for layer in network.modules():
        if isinstance(layer, MaskedLinear):
            assert torch.all(layer.weight.grad[layer.mask == 0] == 0)
            assert (layer.weight.grad[layer.mask == 1] != 0).any()
    network.update_masks(torch.randperm(7))
    for name, parameter in network.named_parameters():
        assert torch.equal(parameter, before[name]), name  # masks never overwrite weights


def test_first_dimension_has_only_a_bias():
    network = _network(direct_connections=True, ordering=[4, 0, 1, 2, 3, 5, 6])
    assert network.output.mask[4].sum() == 0 and network.direct.mask[4].sum() == 0
    outputs = network(torch.rand(10, 7, dtype=torch.float64))[:, 4, 0]
    assert torch.allclose(outputs, network.output.bias[4].expand(10))


def test_hidden_layers_narrower_than_d_still_give_a_normalized_model():
    network = _network(hidden_features=(3,), direct_connections=False)
    distribution = BernoulliMADE(network)
    total = distribution.log_prob(distribution.enumerate_support()).logsumexp(0)
    assert torch.allclose(total, torch.zeros_like(total), atol=1e-10)


def test_bad_arguments():
    with pytest.raises(ValueError, match="at least one hidden layer"):
        MaskedAutoencoder(5, [])
    with pytest.raises(ValueError, match="mask must have shape"):
        MaskedLinear(3, 2, torch.ones(3, 2))
    with pytest.raises(ValueError, match="context of shape"):
        _network(context_features=2)(torch.rand(7, dtype=torch.float64), torch.rand(3))
    with pytest.raises(ValueError, match="one output per dimension"):
        BernoulliMADE(_network(outputs_per_dim=2))
    with pytest.raises(ValueError, match="pass a context"):
        BernoulliMADE(_network(context_features=2))
    with pytest.raises(ValueError, match="'random'"):
        _network(ordering="shuffled")


@pytest.mark.parametrize("hidden", [(10,), (10, 8)])
def test_incremental_sampler_gives_the_full_pass_logits(hidden):
    network = _network(
        hidden_features=hidden,
        direct_connections=True,
        context_features=2,
        ordering="random",
        seed=2,
    )
    context = torch.randn(5, 2, dtype=torch.float64)
    distribution = BernoulliMADE(network, context)
    state = distribution._sampling_start(torch.Size([5]))
    logits, values = [], []
    for step in range(7):
        logits.append(distribution._sampling_logit(state, step))
        value = torch.randint(0, 2, (5,)).double()
        values.append(value)
        distribution._sampling_advance(state, step, value)
    x = torch.stack(values, -1)[..., distribution.rank]
    full = distribution.conditional_logits(x)[..., distribution.ordering]
    assert torch.allclose(torch.stack(logits, -1), full, atol=1e-10)
