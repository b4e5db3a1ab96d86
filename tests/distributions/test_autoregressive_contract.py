"""The autoregressive contract, checked for every model: normalization, the autoregressive
property, sampler vs log_prob, conditional sampling, shapes, expand, validation."""

from __future__ import annotations

import pytest
import torch
from factories import make_fvsbn, make_nade
from stats import chi_square_p_value, states_to_index

ORDERINGS = {"natural": None, "reversed": [5, 4, 3, 2, 1, 0], "shuffled": [3, 0, 5, 1, 4, 2]}


@pytest.mark.parametrize("ordering", sorted(ORDERINGS))
@pytest.mark.parametrize("batch_shape", [(), (2, 3)])
def test_log_prob_normalizes_over_all_states(factory, device, ordering, batch_shape):
    distribution = factory(6, batch_shape, ORDERINGS[ordering], device)
    states = distribution.enumerate_support()
    assert states.shape == (64, *batch_shape, 6)
    log_probs = distribution.log_prob(states)
    assert log_probs.shape == (64, *batch_shape)
    total = log_probs.logsumexp(0)
    assert torch.allclose(total, torch.zeros_like(total), atol=1e-5)
    # the states really differ in probability, so a uniform answer would fail the test above
    assert log_probs.std(0).min() > 0.1


def test_normalizes_at_ten_dims(factory, device):
    distribution = factory(10, (2,), torch.randperm(10), device)
    total = distribution.log_prob(distribution.enumerate_support()).logsumexp(0)
    assert torch.allclose(total, torch.zeros_like(total), atol=1e-5)


@pytest.mark.parametrize("ordering", sorted(ORDERINGS))
def test_jacobian_of_logits_is_strictly_lower_triangular_in_the_ordering(
    factory, device, ordering
):
    distribution = factory(6, (), ORDERINGS[ordering], device)
    distribution._validate_args = False  # differentiate at non-binary points
    x = torch.rand(6, dtype=torch.float64, device=device)
    jacobian = torch.autograd.functional.jacobian(distribution.conditional_logits, x)
    rank = distribution.rank
    in_order = jacobian[distribution.ordering][:, distribution.ordering]
    strictly_lower = torch.ones(6, 6, dtype=torch.bool, device=device).tril(-1)
    assert torch.all(in_order[~strictly_lower] == 0)
    assert (in_order[strictly_lower].abs() > 1e-8).all()
    # the same statement without permuting: d(logit_d)/d(x_j) != 0 only if rank[j] < rank[d]
    allowed = rank[None, :] < rank[:, None]
    assert torch.all(jacobian[~allowed] == 0)


def _exact_probs(distribution):
    return distribution.log_prob(distribution.enumerate_support()).exp()


@pytest.mark.parametrize("ordering", ["natural", "shuffled"])
def test_sampler_matches_log_prob(factory, device, ordering):
    order = ORDERINGS[ordering][:5] if ORDERINGS[ordering] else None
    if order is not None:
        order = [d for d in ORDERINGS[ordering] if d < 5]
    generator = torch.Generator().manual_seed(1)
    distribution = factory(5, (), order, device, generator=generator)
    samples = distribution.sample((20000,))
    assert samples.shape == (20000, 5)
    assert samples.device.type == device.type and samples.dtype == torch.float64
    p_value, _ = chi_square_p_value(samples, _exact_probs(distribution))
    assert p_value > 1e-3


def test_wrong_sampler_is_detected(factory, device):
    """The goodness-of-fit test has power: logits scaled by 1.1 are rejected."""
    exact = factory(5, (), [2, 0, 4, 1, 3], device, generator=torch.Generator().manual_seed(1))
    wrong = factory(
        5, (), [2, 0, 4, 1, 3], device, scale=1.1, generator=torch.Generator().manual_seed(1)
    )
    p_value, _ = chi_square_p_value(wrong.sample((20000,)), _exact_probs(exact))
    assert p_value < 1e-6


def test_batched_sampling_draws_each_batch_member_from_its_own_parameters(factory, device):
    distribution = factory(4, (3,), None, device, generator=torch.Generator().manual_seed(2))
    samples = distribution.sample((20000,))
    assert samples.shape == (20000, 3, 4)
    probs = _exact_probs(distribution)  # (16, 3)
    for member in range(3):
        p_value, _ = chi_square_p_value(samples[:, member], probs[:, member])
        assert p_value > 1e-3


def test_conditional_sampling_is_exact_for_an_observed_prefix(factory, device):
    ordering = [3, 1, 4, 0, 2]
    distribution = factory(5, (), ordering, device, generator=torch.Generator().manual_seed(3))
    observed = torch.tensor([0.0, 1.0, 0.0, 1.0, 0.0], dtype=torch.float64, device=device)
    mask = torch.zeros(5, dtype=torch.bool, device=device)
    mask[[3, 1]] = True  # the first two dimensions of the ordering
    samples = distribution.sample_conditional(observed, mask, (20000,))
    assert torch.all(samples[:, mask] == observed[mask])
    states = distribution.enumerate_support()
    consistent = (states[:, mask] == observed[mask]).all(-1)
    probs = _exact_probs(distribution) * consistent
    p_value, _ = chi_square_p_value(samples, probs / probs.sum())
    assert p_value > 1e-3


def test_conditional_importance_weights_correct_a_non_prefix_pattern(factory, device):
    distribution = factory(5, (), None, device, generator=torch.Generator().manual_seed(4))
    observed = torch.tensor([float("nan"), 1.0, float("nan"), 0.0, 1.0], device=device)
    mask = ~torch.isnan(observed)
    samples, log_weights = distribution.sample_conditional(
        observed, mask, (40000,), return_log_weights=True
    )
    assert log_weights.shape == (40000,)
    states = distribution.enumerate_support()
    consistent = (states[:, mask] == observed[mask].double()).all(-1)
    exact = _exact_probs(distribution) * consistent
    exact = exact / exact.sum()
    weights = torch.softmax(log_weights, 0)
    estimate = torch.zeros(32, dtype=torch.float64, device=device).index_add_(
        0, states_to_index(samples), weights
    )
    assert (estimate - exact).abs().max() < 0.02
    # without the weights the proposal is measurably off for this pattern
    unweighted = torch.bincount(states_to_index(samples), minlength=32).double() / 40000
    assert (unweighted.to(device) - exact).abs().max() > 0.03


def _exact_marginal(distribution, observed, mask):
    """log p(x_o) by summing the enumerated joint over the consistent states."""
    states = distribution.enumerate_support()
    consistent = (states[:, mask] == observed[mask].to(states.dtype)).all(-1)
    log_joint = distribution.log_prob(states)
    return log_joint.masked_fill(~consistent, float("-inf")).logsumexp(0)


def test_marginal_of_a_missing_suffix_is_exact_and_differentiable(factory, device):
    ordering = [3, 1, 4, 0, 2]
    distribution = factory(5, (), ordering, device, generator=torch.Generator().manual_seed(5))
    observed = torch.tensor([float("nan"), 1.0, float("nan"), 0.0, float("nan")], device=device)
    mask = ~torch.isnan(observed)  # dims 3 and 1: the first two of the ordering
    estimate = distribution.marginal_log_prob(observed, mask)
    assert bool(estimate.exact) and estimate.num_samples == 0
    assert float(estimate.standard_error) == 0.0
    expected = _exact_marginal(distribution, observed, mask)
    assert torch.allclose(estimate.log_prob, expected.to(estimate.log_prob.dtype), atol=1e-10)


def test_marginal_gradients_match_enumeration():
    from pyro_ar.distributions import FVSBN

    weight = torch.randn(4, 4, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(4, dtype=torch.float64, requires_grad=True)
    model = FVSBN(weight, bias)
    observed = torch.tensor([1.0, 0.0, 1.0, 1.0], dtype=torch.float64)
    for mask in (
        torch.tensor([True, True, False, False]),
        torch.tensor([False, True, True, False]),
    ):
        estimate = model.marginal_log_prob(observed, mask, num_samples=20000)
        got = torch.autograd.grad(estimate.log_prob, (weight, bias))
        expected = torch.autograd.grad(_exact_marginal(model, observed, mask), (weight, bias))
        tolerance = 1e-10 if bool(estimate.exact) else 0.05
        for g, e in zip(got, expected, strict=True):
            assert torch.allclose(g, e, atol=tolerance), (mask, g, e)


def test_marginal_of_any_other_pattern_is_an_importance_estimate_within_its_error(factory, device):
    distribution = factory(5, (), None, device, generator=torch.Generator().manual_seed(6))
    observed = torch.tensor(
        [[float("nan"), 1.0, float("nan"), 0.0, 1.0], [1.0, 0.0, float("nan"), float("nan"), 1.0]],
        device=device,
    )
    mask = ~torch.isnan(observed)
    estimate = distribution.marginal_log_prob(observed, mask, num_samples=4000)
    assert estimate.log_prob.shape == (2,) and not bool(estimate.exact.any())
    assert estimate.num_samples == 4000
    for row in range(2):
        expected = _exact_marginal(distribution, observed[row], mask[row])
        error = (estimate.log_prob[row] - expected).abs()
        assert error < 5 * estimate.standard_error[row] + 1e-3, (error, estimate)
        assert 0 < estimate.standard_error[row] < 0.05


def test_marginal_mixes_exact_and_estimated_rows_and_rejects_bad_arguments(factory, device):
    distribution = factory(4, (3,), None, device, generator=torch.Generator().manual_seed(7))
    observed = torch.ones(3, 4, device=device)
    mask = torch.tensor(
        [[True, True, False, False], [False, True, False, True], [True, True, True, True]],
        device=device,
    )
    estimate = distribution.marginal_log_prob(observed, mask, num_samples=50)
    assert estimate.exact.tolist() == [True, False, True]
    full = distribution.log_prob(observed)
    assert torch.allclose(estimate.log_prob[2], full[2])  # everything observed: log p(x)
    with pytest.raises(ValueError, match="boolean"):
        distribution.marginal_log_prob(observed, mask.int())
    with pytest.raises(ValueError, match="shape"):
        distribution.marginal_log_prob(observed[:, :3], mask[:, :3])
    with pytest.raises(ValueError, match="num_samples"):
        distribution.marginal_log_prob(observed, mask, num_samples=0)


@pytest.mark.parametrize(
    "value_shape, batch_shape, expected",
    [((6,), (), ()), ((7, 6), (), (7,)), ((3, 1, 6), (2,), (3, 2)), ((6,), (4, 2), (4, 2))],
)
def test_log_prob_shape_is_the_broadcast_of_value_and_batch(
    factory, device, value_shape, batch_shape, expected
):
    distribution = factory(6, batch_shape, None, device)
    value = torch.randint(0, 2, value_shape, device=device)
    assert distribution.log_prob(value).shape == expected
    assert distribution.conditional_logits(value).shape == (*expected, 6)


def test_bool_int_and_float_values_agree(factory, device):
    distribution = factory(6, (), None, device)
    value = torch.randint(0, 2, (5, 6), device=device)
    reference = distribution.log_prob(value.double())
    assert torch.equal(distribution.log_prob(value.bool()), reference)
    assert torch.equal(distribution.log_prob(value), reference)


def test_expand_keeps_the_class_and_broadcasts(factory, device):
    distribution = factory(6, (3,), [1, 0, 2, 5, 4, 3], device)
    expanded = distribution.expand((4, 3))
    assert type(expanded) is type(distribution)
    assert expanded.batch_shape == (4, 3) and expanded.event_shape == (6,)
    assert torch.equal(expanded.ordering, distribution.ordering)
    value = torch.randint(0, 2, (4, 3, 6), device=device)
    assert torch.allclose(expanded.log_prob(value), distribution.log_prob(value))
    assert expanded.sample((2,)).shape == (2, 4, 3, 6)
    with pytest.raises((ValueError, RuntimeError)):
        distribution.expand((4, 2))


def test_enumerate_support_is_opt_in_and_bounded(factory, device):
    distribution = factory(6, (2,), None, device)
    assert not distribution.has_enumerate_support
    assert distribution.enumerate_support(expand=False).shape == (64, 1, 6)
    with pytest.raises(ValueError, match="2\\^21"):
        factory(21, (), None, device).enumerate_support()


def test_support_and_arg_constraints_are_declared(factory, device):
    distribution = factory(4, (), None, device)
    assert distribution.support.event_dim == 1
    assert set(distribution.arg_constraints) == {
        name for name in vars(distribution) if name in distribution.arg_constraints
    }
    for name, constraint in distribution.arg_constraints.items():
        assert constraint.check(getattr(distribution, name)).all()


@pytest.mark.parametrize(
    "bad_value, message",
    [
        (torch.full((2, 6), 0.5), "must be 0 or 1"),
        (torch.full((2, 6), 2.0), "must be 0 or 1"),
        (torch.tensor([[0.0, 1, float("nan"), 0, 1, 0]]), "NaN"),
        (torch.zeros(2, 5), "shape \\(\\.\\.\\., 6\\)"),
        (torch.zeros(3, 6), "batch shape"),
    ],
)
def test_bad_values_raise_clear_errors(factory, bad_value, message):
    distribution = factory(6, (2,), None, "cpu")
    with pytest.raises(ValueError, match=message):
        distribution.log_prob(bad_value.double())


def test_bad_parameters_raise_clear_errors():
    with pytest.raises(ValueError, match="weight must have shape"):
        make_fvsbn(4).__class__(torch.zeros(4, 5), torch.zeros(4))
    nade = make_nade(4)
    with pytest.raises(ValueError, match="output_weight must have shape"):
        type(nade)(torch.zeros(3, 4), torch.zeros(3), torch.zeros(4, 2), torch.zeros(4))
    with pytest.raises(ValueError, match="hidden_bias must have shape"):
        type(nade)(torch.zeros(3, 4), torch.zeros(2), torch.zeros(4, 3), torch.zeros(4))
    with pytest.raises(ValueError, match="permutation"):
        make_fvsbn(4, ordering=[0, 1, 1, 2])
    with pytest.raises(ValueError):  # NaN parameters violate arg_constraints
        make_fvsbn(3).__class__(
            torch.full((3, 3), float("nan")), torch.zeros(3), validate_args=True
        )
    with pytest.raises(ValueError, match="do not broadcast"):
        make_fvsbn(3).__class__(torch.zeros(2, 3, 3), torch.zeros(4, 3))


def test_conditional_sampling_rejects_bad_arguments(factory):
    distribution = factory(4, (), None, "cpu")
    with pytest.raises(ValueError, match="boolean"):
        distribution.sample_conditional(torch.zeros(4), torch.zeros(4))
    with pytest.raises(ValueError, match="shape"):
        distribution.sample_conditional(torch.zeros(3), torch.zeros(3, dtype=torch.bool))
    with pytest.raises(ValueError, match="0 or 1"):
        distribution.sample_conditional(torch.full((4,), 0.3), torch.ones(4, dtype=torch.bool))


def test_pyro_obs_mask_over_rows_and_a_factor_for_entries_within_a_vector(factory):
    """Pyro's ``obs_mask`` masks whole vectors (batch entries): the observed rows are scored,
    the others become a latent site. Entries missing *within* a vector go through
    ``marginal_log_prob`` and ``pyro.factor`` (Pyro refuses an event-shaped ``obs_mask``)."""
    import pyro

    distribution = factory(5, (), None, "cpu", generator=torch.Generator().manual_seed(8))
    data = torch.bernoulli(torch.full((4, 5), 0.5, dtype=torch.float64))
    rows = torch.tensor([True, False, True, False])

    def model(mask):
        with pyro.plate("rows", 4):
            return pyro.sample("x", distribution.expand([4]), obs=data, obs_mask=mask)

    trace = pyro.poutine.trace(model).get_trace(rows)
    trace.compute_log_prob()
    observed = trace.nodes["x_observed"]["log_prob"]
    assert torch.allclose(observed[rows], distribution.log_prob(data)[rows])
    assert torch.all(observed[~rows] == 0)
    assert not trace.nodes["x_unobserved"]["is_observed"]
    with pytest.raises(ValueError, match="obs_mask"):
        pyro.poutine.trace(model).get_trace(torch.ones(4, 5, dtype=torch.bool))

    entries = torch.rand(4, 5, generator=torch.Generator().manual_seed(0)) < 0.6

    def partially_observed():
        estimate = distribution.marginal_log_prob(data, entries, num_samples=200)
        pyro.factor("x_observed_entries", estimate.log_prob.sum())

    factor = pyro.poutine.trace(partially_observed).get_trace()
    assert torch.isfinite(factor.log_prob_sum())


def test_parallel_enumeration_of_a_site_is_exact(factory):
    """``infer={"enumerate": "parallel"}`` works on these sites (they implement
    ``enumerate_support``) although ``has_enumerate_support`` is false (so Pyro never
    enumerates them unasked): TraceEnum_ELBO then sums the 2^D states exactly."""
    import pyro
    import pyro.distributions as dist
    from pyro.infer import TraceEnum_ELBO

    distribution = factory(4, (), None, "cpu", generator=torch.Generator().manual_seed(9))
    observed = torch.tensor([0.3, 1.2, -0.4, 0.9], dtype=torch.float64)

    def model():
        x = pyro.sample("x", distribution, infer={"enumerate": "parallel"})
        pyro.sample("y", dist.Normal(x, 0.5).to_event(1), obs=observed)

    evidence = -TraceEnum_ELBO(max_plate_nesting=0).loss(model, lambda: None)
    states = distribution.enumerate_support()
    likelihood = dist.Normal(states, 0.5).to_event(1).log_prob(observed)
    exact = (distribution.log_prob(states) + likelihood).logsumexp(0)
    assert evidence == pytest.approx(exact.item(), abs=1e-6)
    assert not distribution.has_enumerate_support


@pytest.mark.parametrize("mask_pattern", ["suffix missing", "other"])
def test_marginal_log_prob_keeps_provenance_and_values(factory, mask_pattern):
    """A ``pyro.factor`` of ``marginal_log_prob`` under TraceGraph_ELBO or get_dependencies
    sees ProvenanceTensor inputs: the result carries their provenance and, where exact, the
    same value as for a plain tensor."""
    from pyro.ops.provenance import ProvenanceTensor, get_provenance

    distribution = factory(4, (), None, "cpu", generator=torch.Generator().manual_seed(10))
    observed = torch.tensor([1.0, 0.0, 1.0, 1.0], dtype=torch.float64)
    if mask_pattern == "suffix missing":
        mask = torch.tensor([True, True, False, False])
    else:
        mask = torch.tensor([False, True, True, False])
    tracked = distribution.marginal_log_prob(
        ProvenanceTensor(observed, frozenset({"x"})), mask, num_samples=50
    )
    assert get_provenance(tracked.log_prob) == frozenset({"x"})
    if mask_pattern == "suffix missing":
        plain = distribution.marginal_log_prob(observed, mask)
        assert torch.equal(torch.as_tensor(tracked.log_prob), plain.log_prob)
