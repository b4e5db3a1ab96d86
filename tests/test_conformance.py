"""The conformance suite: every public distribution through torch's contract and Pyro's
inference paths, each checked against a plain reference (enumeration, a closed form, the same
computation on plain tensors, or separate per-member distributions).

Cases are in ``distribution_cases.py``; a new distribution gets a case there and passes every
test here."""

from __future__ import annotations

import pickle

import pyro
import pyro.distributions as dist
import pytest
import torch
from factories import CASES, Case
from pyro import poutine
from pyro.infer import (
    MCMC,
    SVI,
    Importance,
    Predictive,
    RenyiELBO,
    Trace_ELBO,
    TraceGraph_ELBO,
    TraceMeanField_ELBO,
)
from pyro.infer.inspect import get_dependencies
from pyro.ops.provenance import ProvenanceTensor, get_provenance
from stats import cells_chi_square_p_value

import pyro_ar.distributions
from pyro_ar.infer import GibbsKernel
from pyro_ar.nn import FVSBNModule, MADEModule, NADEModule, RBMModule

NAMES = sorted(CASES)
DISCRETE = [name for name in NAMES if CASES[name](torch.float64).discrete]


@pytest.fixture(params=NAMES)
def case(request) -> Case:
    return CASES[request.param](torch.float64)


def _sample(case: Case, distribution, shape=()) -> torch.Tensor:
    with torch.no_grad():
        return distribution.sample(torch.Size(shape))


def _close(actual, expected, dtype=torch.float64):
    tolerance = 1e-9 if dtype == torch.float64 else 1e-4
    torch.testing.assert_close(actual, expected, rtol=tolerance, atol=tolerance)


def _gradients(output: torch.Tensor, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
    """d sum(output) / d input for each input (zeros where it does not depend on it); the graph
    is kept, as distributions may share parts of it between calls (a cached log Z)."""
    if not output.requires_grad:
        return [torch.zeros_like(i) for i in inputs]
    grads = torch.autograd.grad(output.sum(), inputs, allow_unused=True, retain_graph=True)
    return [torch.zeros_like(i) if g is None else g for g, i in zip(grads, inputs, strict=True)]


def test_every_public_distribution_has_a_case():
    exported = {
        getattr(pyro_ar.distributions, name)
        for name in pyro_ar.distributions.__all__
        if isinstance(getattr(pyro_ar.distributions, name), type)
        and issubclass(getattr(pyro_ar.distributions, name), torch.distributions.Distribution)
    }
    bases = {
        pyro_ar.distributions.BinaryAutoregressive,
        pyro_ar.distributions.LinearGaussianLatent,
        pyro_ar.distributions.RBMBase,
    }
    assert len(exported - bases) == 14
    built = {type(CASES[name](torch.float64)()) for name in NAMES}
    assert built == exported - bases


# ------------------------------------------------------------------------------- shapes


def test_shapes_dtypes_and_support(case):
    distribution = case(case.offset(2, 3))
    assert distribution.batch_shape == (2, 3)
    event = distribution.event_shape
    assert len(event) in (1, 3)  # vectors, or images (C, H, W)
    one = _sample(case, distribution)
    assert one.shape == (2, 3) + event
    values = _sample(case, distribution, (4,))
    assert values.shape == (4, 2, 3) + event
    if case.kind == "categorical":
        assert values.dtype == torch.int64
    else:
        assert values.dtype == case.dtype
    assert bool(distribution.support.check(values).all())
    log_prob = distribution.log_prob(values)
    assert log_prob.shape == (4, 2, 3) and log_prob.dtype == case.dtype
    assert bool(torch.isfinite(log_prob).all())


def _options(distribution) -> dict:
    """The non-tensor attributes of a distribution (its options), tensors by shape-free
    identity, nested lists by length."""
    options = {}
    for key, value in vars(distribution).items():
        if key in ("_batch_shape", "_event_shape", "_validate_args"):
            continue
        if isinstance(value, torch.Tensor):
            continue
        options[key] = len(value) if isinstance(value, list) else value
    return options


def test_expand_keeps_the_class_every_option_and_the_values(case):
    distribution = case(case.offset(3))
    expanded = distribution.expand((2, 3))
    assert type(expanded) is type(distribution)
    assert expanded.batch_shape == (2, 3)
    assert _options(expanded) == _options(distribution)
    assert expanded._validate_args == distribution._validate_args
    for key, value in vars(distribution).items():
        if isinstance(value, torch.Tensor):
            other = vars(expanded)[key]
            assert torch.equal(*torch.broadcast_tensors(value, other)), key
    values = _sample(case, expanded, (4,))
    assert values.shape == (4, 2, 3) + distribution.event_shape
    _close(expanded.log_prob(values), distribution.log_prob(values))
    with pytest.raises((ValueError, RuntimeError)):
        distribution.expand((2, 4))


def test_to_event_mask_and_value_broadcasting(case):
    distribution = case(case.offset(2, 3))
    values = _sample(case, distribution, (4,))
    log_prob = distribution.log_prob(values)
    _close(distribution.to_event(1).log_prob(values), log_prob.sum(-1))
    mask = torch.tensor([[True, False, True], [False, False, True]])
    masked = distribution.mask(mask).log_prob(values)
    _close(masked, torch.where(mask, log_prob, torch.zeros_like(log_prob)))
    assert bool((distribution.mask(False).log_prob(values) == 0).all())
    # a value with fewer batch dimensions broadcasts against the batch shape
    row = values[:, :1, :1]  # (4, 1, 1) + event
    _close(distribution.log_prob(row), distribution.log_prob(row.expand_as(values)))
    single = values[0, 0, 0]
    _close(distribution.log_prob(single), distribution.log_prob(single.expand_as(values[0])))


def test_empty_batches(case):
    distribution = case(case.offset(2, 3))
    empty = _sample(case, distribution, (0,))
    assert empty.shape == (0, 2, 3) + distribution.event_shape
    assert distribution.log_prob(empty).shape == (0, 2, 3)
    no_rows = case(case.offset(0))
    assert no_rows.batch_shape == (0,)
    assert _sample(case, no_rows, (2,)).shape == (2, 0) + no_rows.event_shape


def test_batched_parameters_equal_separate_distributions(case):
    offsets = case.offset(3, seed=1).requires_grad_()
    batched = case(offsets)
    values = _sample(case, batched, (5,))
    separate = torch.stack([case(offsets[i]).log_prob(values[:, i]) for i in range(3)], -1)
    log_prob = batched.log_prob(values)
    _close(log_prob, separate)
    inputs = [offsets, *case.parameters]
    for ours, theirs in zip(
        _gradients(log_prob, inputs), _gradients(separate, inputs), strict=True
    ):
        _close(ours, theirs)


# ------------------------------------------------------------------------------ gradients


def test_provenance_values_give_the_same_log_prob_and_gradients(case):
    """``TraceGraph_ELBO`` and ``get_dependencies`` hand ``log_prob`` ProvenanceTensors."""
    distribution = case(case.offset(3))
    values = _sample(case, distribution, (5,))
    plain = distribution.log_prob(values)
    tracked = distribution.log_prob(ProvenanceTensor(values, frozenset({"x"})))
    assert get_provenance(tracked) == frozenset({"x"})
    assert tracked.requires_grad == plain.requires_grad == bool(case.parameters)
    _close(tracked, plain)
    for ours, theirs in zip(
        _gradients(tracked, case.parameters), _gradients(plain, case.parameters), strict=True
    ):
        _close(ours, theirs)


def test_provenance_parameters_reach_log_prob_and_its_gradients(case):
    offset = case.offset(3).requires_grad_()
    values = _sample(case, case(offset), (5,))
    plain = case(offset).log_prob(values)
    tracked = case(ProvenanceTensor(offset, frozenset({"z"}))).log_prob(values)
    assert "z" in get_provenance(tracked)
    _close(tracked, plain)
    inputs = [offset, *case.parameters]
    for ours, theirs in zip(_gradients(tracked, inputs), _gradients(plain, inputs), strict=True):
        _close(ours, theirs)


def test_float32_agrees_with_float64_and_values_are_cast(case):
    high = CASES[case.name](torch.float64)
    low = CASES[case.name](torch.float32)
    offset = high.offset(3)
    values = _sample(high, high(offset), (6,))
    expected = high(offset).log_prob(values)
    result = low(offset.float()).log_prob(values)  # float64 values into a float32 model
    assert result.dtype == torch.float32
    torch.testing.assert_close(result.double(), expected, rtol=1e-4, atol=1e-4)
    if case.kind == "binary":
        for other in (values.long(), values.bool(), values.float()):
            _close(high(offset).log_prob(other), expected)
    if case.kind == "categorical":
        _close(high(offset).log_prob(values.double()), expected)


def test_values_that_require_grad(case):
    if case.kind == "categorical":
        pytest.skip("integer-valued support: values cannot require grad")
    distribution = case(case.offset(3))
    values = _sample(case, distribution, (4,))
    plain = distribution.log_prob(values)
    leaf = values.clone().requires_grad_()
    with_grad = distribution.log_prob(leaf)
    _close(with_grad, plain)
    for ours, theirs in zip(
        _gradients(with_grad, case.parameters), _gradients(plain, case.parameters), strict=True
    ):
        _close(ours, theirs)
    if case.kind == "real":
        single = values[:2, 0].clone().requires_grad_()
        member = case(case.offset(3)[0])
        assert torch.autograd.gradcheck(lambda v: member.log_prob(v), (single,))


# ---------------------------------------------------------------------------- Pyro paths


def _data(case: Case, rows: int = 6) -> torch.Tensor:
    torch.manual_seed(11)
    return _sample(case, case(), (rows,))


def _latent_model(case: Case):
    """z ~ N(0, I) (global) feeds the distribution of the observed rows."""

    def model(data):
        zero = torch.zeros(case.width, dtype=case.dtype)
        z = pyro.sample("z", dist.Normal(zero, 1.0).to_event(1))
        with pyro.plate("rows", len(data)):
            pyro.sample("x", case(z), obs=data)

    return model


def _normal_guide(case: Case):
    def guide(data):
        loc = pyro.param("loc", torch.full((case.width,), 0.1, dtype=case.dtype))
        scale = pyro.param("scale", torch.full((case.width,), 0.5, dtype=case.dtype))
        pyro.sample("z", dist.Normal(loc, scale).to_event(1))

    return guide


def _loss_and_gradients(case, elbo, seed=0):
    pyro.clear_param_store()
    pyro.set_rng_seed(seed)
    for parameter in case.parameters:
        parameter.grad = None
    data = _data(case)
    loss = elbo.loss_and_grads(_latent_model(case), _normal_guide(case), data)
    store = pyro.get_param_store()
    guide_grads = [store[name].grad for name in ("loc", "scale")]
    return loss, guide_grads, [p.grad for p in case.parameters]


@pytest.mark.parametrize(
    "elbo",
    [
        Trace_ELBO(),
        TraceGraph_ELBO(),
        TraceMeanField_ELBO(),
        RenyiELBO(alpha=0.5, num_particles=2),
        Trace_ELBO(num_particles=3, vectorize_particles=True, max_plate_nesting=1),
    ],
    ids=["trace", "tracegraph", "meanfield", "renyi", "vectorized"],
)
def test_elbos_train_the_likelihood_and_the_guide(case, elbo):
    loss, guide_grads, model_grads = _loss_and_gradients(case, elbo)
    assert torch.isfinite(torch.tensor(loss))
    differentiable_offset = case.name != "ngram_chain"  # its offset only picks a prefix word
    for grad in guide_grads:
        assert grad is not None and bool(torch.isfinite(grad).all())
        if differentiable_offset:
            assert grad.abs().sum() > 0
    for grad in model_grads:
        assert grad is not None and grad.abs().sum() > 0 and bool(torch.isfinite(grad).all())


def test_tracegraph_gradients_equal_trace_elbo_for_a_reparameterized_guide(case):
    reference = _loss_and_gradients(case, Trace_ELBO(), seed=4)
    tracegraph = _loss_and_gradients(case, TraceGraph_ELBO(), seed=4)
    assert tracegraph[0] == pytest.approx(reference[0], rel=1e-9)
    for ours, theirs in zip(
        tracegraph[1] + tracegraph[2], reference[1] + reference[2], strict=True
    ):
        _close(ours, theirs)


def test_as_a_guide_under_tracegraph_elbo(case):
    """The distribution as the guide of a latent site with the same family as prior: the
    surrogate gradient is the reparameterization gradient where the guide has ``rsample``
    (equal to ``Trace_ELBO``'s), else the score function, -sum_n log q(x_n) (log p(x_n) -
    log q(x_n)).detach(), checked against a hand computation from the same draw."""
    if not case.parameters:
        pytest.skip("no parameters to train")
    prior = CASES[case.name](case.dtype, seed=7)()  # same support, other parameters
    rows = 5

    def model():
        with pyro.plate("rows", rows):
            pyro.sample("x", prior)

    def guide():
        with pyro.plate("rows", rows):
            pyro.sample("x", case())

    for parameter in case.parameters:
        parameter.grad = None
    pyro.set_rng_seed(2)
    TraceGraph_ELBO().loss_and_grads(model, guide)
    gradients = [parameter.grad for parameter in case.parameters]
    assert any(g is not None and g.abs().sum() > 0 for g in gradients)
    pyro.set_rng_seed(2)
    if case().has_rsample:
        expected = _gradients(Trace_ELBO().differentiable_loss(model, guide), case.parameters)
    else:
        q = case()
        x = q.expand((rows,)).sample()  # as the plate draws it
        log_q = q.log_prob(x)
        with torch.no_grad():
            elbo = prior.log_prob(x) - log_q
        expected = _gradients(-(log_q * elbo), case.parameters)
    for ours, theirs in zip(gradients, expected, strict=True):
        _close(torch.zeros_like(theirs) if ours is None else ours, theirs)


def test_predictive_samples_in_plates(case):
    def model(rows=5):
        with pyro.plate("rows", rows):
            return pyro.sample("x", case())

    for parallel in (False, True):
        samples = Predictive(model, num_samples=4, parallel=parallel)()["x"]
        assert samples.shape == (4, 5) + case().event_shape
        assert bool(case().support.check(samples).all())


def test_importance_weights_are_the_likelihood_of_each_proposal(case):
    data = _data(case)
    importance = Importance(_latent_model(case), guide=None, num_samples=6).run(data)
    for trace, log_weight in zip(importance.exec_traces, importance.log_weights, strict=True):
        z = trace.nodes["z"]["value"]
        expected = case(z).log_prob(data).sum()
        _close(torch.as_tensor(log_weight).to(expected.dtype), expected)


def test_poutine_mask_scale_and_condition(case):
    data = _data(case)
    model = _latent_model(case)
    trace = poutine.trace(model).get_trace(data)
    trace.compute_log_prob()
    base = trace.nodes["x"]["log_prob_sum"]
    scaled = poutine.trace(poutine.scale(model, scale=2.5)).get_trace(data)
    scaled.compute_log_prob()
    z = trace.nodes["z"]["value"]
    conditioned = poutine.trace(poutine.condition(model, {"z": z})).get_trace(data)
    conditioned.compute_log_prob()
    _close(conditioned.nodes["x"]["log_prob_sum"], base)
    assert conditioned.nodes["z"]["is_observed"]
    scaled_z = poutine.trace(poutine.condition(poutine.scale(model, scale=2.5), {"z": z}))
    scaled_trace = scaled_z.get_trace(data)
    scaled_trace.compute_log_prob()
    _close(scaled_trace.nodes["x"]["log_prob_sum"], 2.5 * base)
    masked = poutine.trace(poutine.condition(poutine.mask(model, mask=False), {"z": z}))
    masked_trace = masked.get_trace(data)
    masked_trace.compute_log_prob()
    assert masked_trace.nodes["x"]["log_prob_sum"] == 0


def test_get_dependencies_sees_the_edge_and_only_the_edge(case):
    data = _data(case)
    dependencies = get_dependencies(_latent_model(case), (data,))["prior_dependencies"]
    assert "z" in dependencies["x"]

    def unrelated(data):
        zero = torch.zeros(case.width, dtype=case.dtype)
        pyro.sample("z", dist.Normal(zero, 1.0).to_event(1))
        with pyro.plate("rows", len(data)):
            pyro.sample("x", case(), obs=data)

    assert "z" not in get_dependencies(unrelated, (data,))["prior_dependencies"]["x"]


@pytest.mark.parametrize("name", DISCRETE)
def test_gibbs_kernel_samples_the_enumerated_posterior(name):
    """x ~ the distribution, y ~ N(sum(x), 1) observed: GibbsKernel's draws against the
    posterior by enumerating the support (states outside it score -inf)."""
    case = CASES[name](torch.float64)
    prior = case()
    observed = torch.tensor(2.0, dtype=torch.float64)

    event_dims = len(prior.event_shape)  # vectors, or images (C, H, W)

    def total(x):
        return x.to(torch.float64).flatten(-event_dims).sum(-1)

    def model(y):
        x = pyro.sample("x", prior)
        pyro.sample("y", dist.Normal(total(x), 1.0), obs=y)

    states = case.states
    with pyro.validation_enabled(False):
        log_prior = prior.log_prob(states)
    log_posterior = log_prior + dist.Normal(total(states), 1.0).log_prob(observed)
    posterior = torch.softmax(log_posterior, 0)
    torch.manual_seed(0)
    kernel = GibbsKernel(model, num_vectorized_chains=3000)
    mcmc = MCMC(kernel, num_samples=1, warmup_steps=25, disable_progbar=True)
    mcmc.run(observed)
    draws = mcmc.get_samples()["x"].flatten(-event_dims).flatten(0, -2)
    assert draws.dtype == (torch.int64 if case.kind == "categorical" else torch.float64)
    index = {tuple(state): i for i, state in enumerate(states.flatten(1).tolist())}
    cells = torch.tensor([index[tuple(draw)] for draw in draws.tolist()])
    assert cells_chi_square_p_value(cells, posterior)[0] > 1e-3
    prior_probs = log_prior.exp()
    assert cells_chi_square_p_value(cells, prior_probs / prior_probs.sum())[0] < 1e-6


# ----------------------------------------------------------- compilation and serialization


def test_log_prob_compiles(case):
    distribution = case(case.offset(2))
    values = _sample(case, distribution, (3,))
    torch._dynamo.reset()
    compiled = torch.compile(lambda v: distribution.log_prob(v), backend="aot_eager")
    result = compiled(values)
    eager = distribution.log_prob(values)
    _close(result, eager)
    for ours, theirs in zip(
        _gradients(result, case.parameters), _gradients(eager, case.parameters), strict=True
    ):
        _close(ours, theirs)


def test_distributions_pickle(case):
    distribution = case(case.offset(2))
    values = _sample(case, distribution, (3,))
    restored = pickle.loads(pickle.dumps(distribution))
    assert type(restored) is type(distribution)
    _close(restored.log_prob(values).detach(), distribution.log_prob(values).detach())


@pytest.mark.parametrize(
    "build",
    [
        lambda: FVSBNModule(6),
        lambda: NADEModule(6, 4, seed=0),
        lambda: MADEModule(6, [8], num_masks=2),
        lambda: MADEModule(6, [8], likelihood="gaussian"),
        lambda: RBMModule(6, 3, seed=0),
    ],
    ids=["fvsbn", "nade", "made", "gaussian-made", "rbm"],
)
def test_modules_pickle_and_train_after_unpickling(build):
    module = build().eval()
    values = module().sample((4,))
    restored = pickle.loads(pickle.dumps(module))
    torch.testing.assert_close(restored().log_prob(values), module().log_prob(values))
    restored.train()

    def model(data):
        pyro.module("restored", restored)
        with pyro.plate("rows", len(data)):
            pyro.sample("x", restored(), obs=data)

    if not isinstance(restored, RBMModule):  # an RBM trains by contrastive divergence
        svi = SVI(model, lambda data: None, pyro.optim.Adam({"lr": 1e-2}), Trace_ELBO())
        assert torch.isfinite(torch.tensor(svi.step(values)))
