"""MADE's masked network: masks, degrees, gradients, and the Bernoulli distribution on top."""

from __future__ import annotations

import itertools

import pytest
import torch
from stats import per_step_terms

from pyro_ar.distributions import BernoulliMADE, MADEEnsemble
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
    x = torch.randint(0, 2, (5, 7)).double()
    incremental, parallel = per_step_terms(distribution, x)
    assert torch.allclose(incremental, parallel, atol=1e-10)


def _ensemble(context_features=0, order_agnostic=True, num_masks=4):
    network = _network(
        num_masks=num_masks,
        order_agnostic=order_agnostic,
        context_features=context_features,
        direct_connections=True,
        seed=5,
    )
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.normal_()
    return network


@pytest.mark.parametrize("context_features", [0, 2])
def test_mask_ensemble_is_a_normalized_mixture(context_features):
    network = _ensemble(context_features)
    context = torch.randn(3, 2, dtype=torch.float64) if context_features else None
    ensemble = MADEEnsemble(network, context)
    states = BernoulliMADE(network, context).enumerate_support()
    log_probs = ensemble.log_prob(states)
    total = log_probs.logsumexp(0)
    assert torch.allclose(total, torch.zeros_like(total), atol=1e-10)
    per_mask = torch.stack([BernoulliMADE(network, context, m).log_prob(states) for m in range(4)])
    assert torch.allclose(log_probs, per_mask.logsumexp(0) - torch.log(torch.tensor(4.0)))
    # the masks really differ, and averaging logits would be a different (wrong) model
    assert (per_mask.std(0) > 1e-3).any()
    logits = torch.stack([network(states, context, mask_index=m)[..., 0] for m in range(4)])
    averaged = torch.distributions.Bernoulli(logits=logits.mean(0)).log_prob(states).sum(-1)
    assert not torch.allclose(averaged, log_probs, atol=1e-3)


def test_mask_ensemble_sampler_matches_its_log_prob():
    from stats import chi_square_p_value

    network = _ensemble(num_masks=3)
    ensemble = MADEEnsemble(network)
    states = BernoulliMADE(network).enumerate_support()
    probs = ensemble.log_prob(states).exp()
    samples = ensemble.sample((30000,))
    assert samples.shape == (30000, 7)
    p_value, _ = chi_square_p_value(samples, probs)
    assert p_value > 1e-3
    # a single component's samples are not the mixture's
    p_value, _ = chi_square_p_value(BernoulliMADE(network, None, 1).sample((30000,)), probs)
    assert p_value < 1e-6


def test_every_mask_set_is_autoregressive_in_its_own_ordering():
    network = _ensemble(num_masks=5)
    orderings = {tuple(network.orderings[m].tolist()) for m in range(5)}
    assert len(orderings) > 1  # order-agnostic: the sets have their own orderings
    for mask in range(5):
        x = torch.rand(7, dtype=torch.float64)
        jacobian = torch.autograd.functional.jacobian(
            lambda v, m=mask: network(v, mask_index=m)[..., 0], x
        )
        rank = torch.argsort(network.orderings[mask])
        assert torch.all(jacobian[~(rank[None, :] < rank[:, None])] == 0)


def test_ensemble_gradients_and_mask_cycling():
    network = _ensemble(num_masks=3)
    x = torch.randint(0, 2, (6, 7)).double()
    MADEEnsemble(network).log_prob(x).sum().backward()  # no in-place mask changes in the graph
    assert all(p.grad is not None for p in network.parameters())
    weights = {name: p.detach().clone() for name, p in network.named_parameters()}
    seen = []
    for _ in range(4):
        seen.append(network.current_mask)
        network.next_mask()
    assert seen == [0, 1, 2, 0]
    for name, parameter in network.named_parameters():
        assert torch.equal(parameter, weights[name])
    with pytest.raises(ValueError, match="mask index"):
        network.select_mask(3)


def test_made_module_trains_with_cycling_masks_and_evaluates_the_ensemble(tmp_path):
    from pyro_ar.data import load_binarized_digits
    from pyro_ar.infer import TrainingConfig, fit_maximum_likelihood, load_checkpoint, mean_nll
    from pyro_ar.nn import MADEModule

    digits = load_binarized_digits()
    module = MADEModule(64, [64], num_masks=4, order_agnostic=True, data=digits.train)
    module.train()
    assert isinstance(module(), BernoulliMADE) and module.network.current_mask == 0
    module()
    assert module.network.current_mask == 0  # calling the module changes nothing
    module.after_optimizer_step()  # the training loop moves to the next mask set
    assert module.network.current_mask == 1
    module.eval()
    module.after_optimizer_step()
    assert module.network.current_mask == 1 and isinstance(module(), MADEEnsemble)

    config = TrainingConfig(epochs=3, progress=False, learning_rate=3e-3)
    result = fit_maximum_likelihood(
        module, digits.train, digits.valid, config, tmp_path / "made.pt"
    )
    assert result.best_valid_nll < 30
    # the trainer moved to the next mask set after each of its 3 x 15 steps
    steps = 3 * -(-len(digits.train) // config.batch_size)
    assert module.network.current_mask == (1 + steps) % 4
    loaded, _ = load_checkpoint(tmp_path / "made.pt")
    assert isinstance(loaded(), MADEEnsemble)
    assert torch.equal(loaded.network.orderings, module.network.orderings)
    assert mean_nll(loaded, digits.valid) == pytest.approx(result.best_valid_nll, rel=1e-5)


def test_loading_a_state_dict_refreshes_the_masks():
    source = _ensemble(num_masks=2)
    source.update_masks(torch.randperm(7))  # degrees no longer reproducible from the seed
    target = _ensemble(num_masks=2)
    target(torch.rand(7, dtype=torch.float64), mask_index=0)  # fill the mask cache
    target.load_state_dict(source.state_dict())
    x = torch.rand(4, 7, dtype=torch.float64)
    for mask in range(2):
        assert torch.equal(target(x, mask_index=mask), source(x, mask_index=mask))


@pytest.mark.parametrize("hidden", [3, 5, 20])
def test_every_input_but_the_last_reaches_a_hidden_unit(hidden):
    """Even hidden degrees cover 1..D-1, so every input that some output may see reaches a
    hidden unit, and every output but the first hears from one."""
    network = MaskedAutoencoder(12, [hidden], ordering="random")
    used_inputs = network.hidden[0].mask.sum(0) > 0
    fed_outputs = network.output.mask.sum(1) > 0
    first, last = network.ordering[0], network.ordering[-1]
    assert used_inputs.sum() == 11 and not used_inputs[last]
    assert fed_outputs.sum() == 11 and not fed_outputs[first]


def test_masked_linear_gradients_and_scratch_reuse():
    from pyro_ar.ops import ScratchPool, masked_linear

    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(6, 5, dtype=torch.float64, generator=generator, requires_grad=True)
    bias = torch.randn(6, dtype=torch.float64, generator=generator, requires_grad=True)
    masks = [(torch.rand(6, 5, generator=generator) < 0.5).double() for _ in range(2)]
    x = torch.randn(3, 4, 5, dtype=torch.float64, generator=generator, requires_grad=True)
    pool = ScratchPool()
    assert torch.autograd.gradcheck(
        lambda x, w, b: masked_linear(x, w, masks[0], b, pool), (x, weight, bias)
    )

    # two masks in one graph (a mask ensemble), then a second step reusing the scratch
    for _ in range(2):
        weight.grad = bias.grad = x.grad = None
        total = sum((masked_linear(x, weight, m, bias, pool) ** 2).sum() for m in masks)
        total.backward()
        expected = [t.detach().clone().requires_grad_() for t in (x, weight, bias)]
        reference = sum(
            ((expected[0] @ (expected[1] * m).T + expected[2]) ** 2).sum() for m in masks
        )
        reference.backward()
        for ours, theirs in zip((x, weight, bias), expected, strict=True):
            torch.testing.assert_close(ours.grad, theirs.grad)
        del total
        assert len(pool.tensors) >= 2  # the graph is gone: its scratch tensors came back
    assert torch.all(weight.grad[(masks[0] + masks[1]) == 0] == 0)
    allocations = pool.allocations
    masked_linear(x, weight, masks[0], bias, pool).sum().backward()
    assert pool.allocations == allocations  # reused, not reallocated

    # a retained graph keeps its scratch while forward passes go on
    weight.grad = None
    out = masked_linear(x, weight, masks[0], bias, pool).sum()
    out.backward(retain_graph=True)
    first = weight.grad.clone()
    for mask in masks:
        masked_linear(x, weight, mask, bias, pool).sum().backward()
    weight.grad = None
    out.backward()
    torch.testing.assert_close(weight.grad, first)
    # without gradients the scratch goes straight back
    with torch.no_grad():
        torch.testing.assert_close(
            masked_linear(x, weight, masks[1], bias, pool), x @ (weight * masks[1]).T + bias
        )


def test_block_plan_covers_every_live_entry_and_skips_the_staircase():
    from pyro_ar.ops import block_plan, plan_area

    network = MaskedAutoencoder(784, [500])
    for mask in network.masks(0)[:2]:
        plan = block_plan(mask)
        covered = torch.zeros_like(mask, dtype=torch.bool)
        for start, end, low, high in plan:
            covered[start:end, low:high] = True
        assert torch.all(covered[mask != 0])  # nothing live is skipped
        assert [block[:2] for block in plan] == list(
            zip([p[0] for p in plan], [p[0] for p in plan[1:]] + [mask.shape[0]], strict=True)
        )
        # a staircase: half the weight plus the blocks' share of the diagonal
        assert 0.6 < plan_area(plan, tuple(mask.shape)) < 0.65  # four blocks
        assert 0.5 < plan_area(block_plan(mask, 16), tuple(mask.shape)) < 0.55
    assert network.hidden[0].plan_for(network.masks(0)[0]) is not None
    assert network.output.plan_for(network.output.mask) is not None
    # a random ordering scatters the live columns: no rectangle to skip, no plan
    shuffled = MaskedAutoencoder(784, [500], ordering="random")
    assert shuffled.hidden[0].plan_for(shuffled.hidden[0].mask) is None
    # a block whose rows have no live entry gets the empty range
    assert block_plan(torch.tensor([[0.0, 0.0], [0.0, 0.0], [1.0, 0.0]]), 3)[0] == (0, 1, 0, 0)
    # hidden layers at least D - 1 wide get sorted degrees (a staircase too)
    wide = MaskedAutoencoder(300, [1000])
    assert torch.all(wide.hidden_degrees_0[0].diff() >= 0)
    assert wide.hidden[0].plan_for(wide.hidden[0].mask) is not None


@pytest.mark.parametrize("with_bias", [True, False])
def test_blocked_masked_linear_is_exact(with_bias):
    from pyro_ar.ops import block_plan, masked_linear

    generator = torch.Generator().manual_seed(1)
    rows, columns = 9, 7
    # a staircase with empty first rows, and a mask with a hole inside a block
    staircase = (torch.arange(columns)[None, :] < torch.arange(rows)[:, None] - 2).double()
    holes = staircase.clone()
    holes[6, 1] = 0.0
    weight = torch.randn(rows, columns, dtype=torch.float64, generator=generator)
    weight.requires_grad_()
    bias = torch.randn(rows, dtype=torch.float64, generator=generator, requires_grad=True)
    bias = bias if with_bias else None
    x = torch.randn(2, 3, columns, dtype=torch.float64, generator=generator, requires_grad=True)
    for mask in (staircase, holes):
        plan = block_plan(mask, 4)
        assert plan[0][2:] == (0, 0)
        inputs = (x, weight) if bias is None else (x, weight, bias)

        def blocked(*args, mask=mask, plan=plan):
            return masked_linear(
                args[0], args[1], mask, None if bias is None else args[2], None, plan
            )

        assert torch.autograd.gradcheck(blocked, inputs)
        dense = x @ (weight * mask).T + (0 if bias is None else bias)
        out = blocked(*inputs)
        torch.testing.assert_close(out, dense)
        out.pow(2).sum().backward()
        assert torch.all(weight.grad[mask == 0] == 0)  # masked weights: exactly zero
        weight.grad = None
        with torch.no_grad():
            torch.testing.assert_close(blocked(*inputs), dense)


def test_made_through_the_blocked_path():
    # every layer of a small natural-order MADE takes the blocked products
    network = MaskedAutoencoder(10, [12, 12], direct_connections=True, block_products="always")
    network = network.double()
    assert all(layer.plan_for(layer.mask) is not None for layer in network.hidden)
    x = torch.rand(10, dtype=torch.float64)
    jacobian = torch.autograd.functional.jacobian(lambda v: network(v)[..., 0], x)
    assert torch.all(jacobian.triu() == 0)  # output d sees inputs before d only
    assert torch.all(jacobian.diagonal(-1) != 0)
    states = torch.tensor(list(itertools.product([0.0, 1.0], repeat=10)), dtype=torch.float64)
    total = BernoulliMADE(network).log_prob(states).logsumexp(0)
    torch.testing.assert_close(total, torch.tensor(0.0, dtype=torch.float64))
    # the same numbers as the dense products
    dense = MaskedAutoencoder(10, [12, 12], direct_connections=True, block_products="never")
    dense = dense.double()
    dense.load_state_dict(network.state_dict())
    assert all(layer.plan_for(layer.mask) is None for layer in dense.hidden)
    torch.testing.assert_close(
        BernoulliMADE(dense).log_prob(states), BernoulliMADE(network).log_prob(states)
    )


def test_mask_sets_that_come_back_reuse_their_plans():
    network = MaskedAutoencoder(300, [300], num_masks=2)
    for index in range(2):
        network.select_mask(index)
    computed = [layer.planner.plans_computed for layer in network.hidden]
    for _ in range(3):
        network.next_mask()
        network(torch.zeros(2, 300))
    # cycling mask sets costs no re-planning
    assert [layer.planner.plans_computed for layer in network.hidden] == computed


def test_bernoulli_made_log_prob_agrees_with_the_ordered_path():
    # the direct sum over dimensions equals the generic path through the ordering
    from pyro_ar.distributions.autoregressive import BinaryAutoregressive

    network = _network(ordering="random", context_features=2, seed=5)
    context = torch.randn(4, 1, 2, dtype=torch.float64)
    distribution = BernoulliMADE(network, context=context)
    value = (torch.rand(3, 7) < 0.5).double()  # broadcasts against batch shape (4, 1)
    ours = distribution.log_prob(value)
    assert ours.shape == (4, 3)
    torch.testing.assert_close(ours, BinaryAutoregressive.log_prob(distribution, value))


def test_masked_linear_refuses_second_derivatives():
    from pyro_ar.ops import block_plan, masked_linear

    mask = torch.tril(torch.ones(4, 4, dtype=torch.float64), -1)
    weight = torch.randn(4, 4, dtype=torch.float64, requires_grad=True)
    for plan in (None, block_plan(mask, 2)):
        out = masked_linear(torch.randn(3, 4, dtype=torch.float64), weight, mask, None, None, plan)
        (grad,) = torch.autograd.grad(out.pow(2).sum(), weight, create_graph=True)
        with pytest.raises(RuntimeError, match="once_differentiable|double backward"):
            grad.sum().backward()


# ------------------------------------------------------- fresh masks (MADE's mask sampling)


def _assert_autoregressive(network, mask_index=None):
    x = torch.rand(network.num_dims, dtype=torch.float64)
    jacobian = torch.autograd.functional.jacobian(
        lambda v: network(v, mask_index=mask_index), x
    )  # (D, P, D)
    index = network.current_mask if mask_index is None else mask_index
    rank = torch.argsort(network.orderings[index])
    allowed = rank[None, :] < rank[:, None]
    assert torch.all(jacobian[~allowed.unsqueeze(1).expand_as(jacobian)] == 0)


def test_fresh_masks_draw_new_orderings_and_connectivity_reproducibly():
    first, second = _network(order_agnostic=True, seed=3), _network(order_agnostic=True, seed=3)
    seen = set()
    for _ in range(5):
        for network in (first, second):
            network.draw_fresh_mask()
        assert torch.equal(first.orderings, second.orderings)  # same seed, same sequence
        assert torch.equal(first.hidden_degrees_0, second.hidden_degrees_0)
        seen.add(tuple(first.ordering.tolist()))
        _assert_autoregressive(first)
    assert len(seen) == 5
    fixed = _network(seed=3)
    ordering, degrees = fixed.ordering.clone(), fixed.hidden_degrees_0.clone()
    fixed.draw_fresh_mask()  # without order_agnostic: the ordering stays, connectivity changes
    assert torch.equal(fixed.ordering, ordering)
    assert not torch.equal(fixed.hidden_degrees_0, degrees)


def test_drawn_mask_sets_share_the_weights_and_leave_the_network_untouched():
    network = _network(num_dims=5, hidden_features=(16,), order_agnostic=True, seed=1)
    state = {name: value.clone() for name, value in network.state_dict().items()}
    drawn = network.with_drawn_masks(4, seed=7)
    again = network.with_drawn_masks(4, seed=7)
    assert torch.equal(drawn.orderings, again.orderings)
    assert len({tuple(o) for o in drawn.orderings.tolist()}) > 1
    assert drawn.output.weight is network.output.weight
    for index in range(4):
        _assert_autoregressive(drawn, index)
    ensemble = MADEEnsemble(drawn)
    states = torch.tensor(list(itertools.product([0.0, 1.0], repeat=5)), dtype=torch.float64)
    assert ensemble.log_prob(states).logsumexp(0).item() == pytest.approx(0.0, abs=1e-9)
    for name, value in network.state_dict().items():
        assert torch.equal(value, state[name]), name  # masks, orderings, degrees unchanged
    with pytest.raises(ValueError, match="num_masks"):
        network.with_drawn_masks(0)


def test_made_module_with_fresh_masks_trains_and_evaluates_the_drawn_average(tmp_path):
    from pyro_ar.data import load_binarized_digits
    from pyro_ar.infer import TrainingConfig, fit_maximum_likelihood, load_checkpoint, mean_nll
    from pyro_ar.nn import MADEModule

    digits = load_binarized_digits()
    module = MADEModule(
        64, [64], order_agnostic=True, fresh_masks=True, evaluation_masks=5, data=digits.train
    )
    ordering = module.network.ordering.clone()
    module.train()
    module.after_optimizer_step()
    assert not torch.equal(module.network.ordering, ordering)
    module.eval()
    ensemble = module()
    assert isinstance(ensemble, MADEEnsemble) and len(ensemble.components) == 5
    assert torch.equal(module().log_prob(digits.valid), ensemble.log_prob(digits.valid))
    config = TrainingConfig(epochs=3, progress=False, learning_rate=3e-3)
    result = fit_maximum_likelihood(
        module, digits.train, digits.valid, config, tmp_path / "made.pt"
    )
    assert result.best_valid_nll < 32
    loaded, _ = load_checkpoint(tmp_path / "made.pt")
    assert loaded.fresh_masks and loaded.evaluation_masks == 5
    assert mean_nll(loaded, digits.valid) == pytest.approx(result.best_valid_nll, rel=1e-5)
    with pytest.raises(ValueError, match="num_masks=1"):
        MADEModule(8, [8], num_masks=2, fresh_masks=True)
    with pytest.raises(ValueError, match="evaluation_masks"):
        MADEModule(8, [8], fresh_masks=True, evaluation_masks=0)
