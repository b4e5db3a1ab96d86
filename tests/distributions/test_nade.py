"""NADE: the O(DH) paths against a naive per-dimension reference, and batched parameters."""

from __future__ import annotations

import pytest
import torch
from factories import make_nade
from stats import per_step_terms

from pyro_ar.distributions import NADE
from pyro_ar.ops import nade_hidden_logits, nade_hidden_logits_reference


def _parameters(num_dims=13, hidden=7, device="cpu", seed=0):
    generator = torch.Generator().manual_seed(seed)
    shapes = [(hidden, num_dims), (hidden,), (num_dims, hidden), (num_dims,)]
    return [
        torch.randn(*shape, generator=generator, dtype=torch.float64).to(device)
        for shape in shapes
    ]


def _naive_log_prob(x, weight, bias, output_weight, output_bias, ordering):
    """Textbook NADE, one dimension at a time, recomputing h_d from scratch."""
    x = x.double()
    total = torch.zeros(x.shape[:-1], dtype=torch.float64, device=x.device)
    for step, d in enumerate(ordering):
        previous = ordering[:step]
        h = torch.sigmoid(bias + x[..., previous] @ weight[:, previous].T)
        logit = output_bias[d] + h @ output_weight[d]
        total = total + x[..., d] * logit - torch.nn.functional.softplus(logit)
    return total


@pytest.mark.parametrize("chunk_size", [1, 4, 16, 64])
@pytest.mark.parametrize("ordering", [None, "shuffled"])
def test_fast_log_prob_equals_naive_reference(device, chunk_size, ordering):
    weight, bias, output_weight, output_bias = _parameters(device=device)
    order = torch.randperm(13, generator=torch.Generator().manual_seed(5)) if ordering else None
    distribution = NADE(weight, bias, output_weight, output_bias, order, chunk_size=chunk_size)
    x = torch.randint(0, 2, (50, 13), device=device).double()
    naive = _naive_log_prob(
        x,
        weight,
        bias,
        output_weight,
        output_bias,
        (order if order is not None else torch.arange(13)).tolist(),
    )
    assert torch.allclose(distribution.log_prob(x), naive, atol=1e-6, rtol=0)


def test_fused_kernel_values_and_gradients_equal_reference(device):
    weight, bias, output_weight, _ = _parameters(device=device)
    x = torch.randint(0, 2, (40, 13), device=device).double()
    per_example_bias = bias + torch.randn(40, 7, dtype=torch.float64, device=device)
    for hidden_bias in (bias, per_example_bias):
        leaves = [t.clone().requires_grad_() for t in (weight, hidden_bias, output_weight)]
        fused = nade_hidden_logits(x, *leaves, chunk_size=5)
        grad_out = torch.randn_like(fused)
        fused_grads = torch.autograd.grad(fused, leaves, grad_out)
        reference_leaves = [
            t.clone().requires_grad_() for t in (weight, hidden_bias, output_weight)
        ]
        reference = nade_hidden_logits_reference(x, *reference_leaves)
        reference_grads = torch.autograd.grad(reference, reference_leaves, grad_out)
        assert torch.allclose(fused, reference, atol=1e-6)
        for ours, theirs in zip(fused_grads, reference_grads, strict=True):
            assert torch.allclose(ours, theirs, atol=1e-6)


def test_fused_kernel_passes_gradcheck():
    weight, bias, output_weight, _ = _parameters(num_dims=6, hidden=4)
    x = torch.randint(0, 2, (5, 6)).double()
    leaves = [t.clone().requires_grad_() for t in (weight, bias, output_weight)]
    assert torch.autograd.gradcheck(
        lambda w, b, v: nade_hidden_logits(x, w, b, v, chunk_size=4), leaves
    )


def test_kernel_gradients_in_x_equal_the_reference():
    """With x requiring grad the kernel takes its plain-autograd path: same values, and the
    gradients in x and in every parameter equal the naive reference's."""
    weight, bias, output_weight, _ = _parameters()
    x = torch.rand(4, 13, dtype=torch.float64)
    inputs = [t.clone().requires_grad_() for t in (x, weight, bias, output_weight)]
    fast = nade_hidden_logits(*inputs, chunk_size=5)
    reference_inputs = [t.clone().requires_grad_() for t in (x, weight, bias, output_weight)]
    reference = nade_hidden_logits_reference(*reference_inputs)
    grad_out = torch.randn_like(fast)
    assert torch.allclose(fast, reference, atol=1e-10)
    for ours, theirs in zip(
        torch.autograd.grad(fast, inputs, grad_out),
        torch.autograd.grad(reference, reference_inputs, grad_out),
        strict=True,
    ):
        assert torch.allclose(ours, theirs, atol=1e-10)


def test_sampler_running_sum_gives_the_parallel_pass_logits(device):
    """The O(DH) sampler's per-step terms equal the parallel pass's on the same values."""
    distribution = make_nade(13, (), torch.randperm(13), device, hidden=9)
    x = torch.randint(0, 2, (20, 13), device=device).double()
    incremental, parallel = per_step_terms(distribution, x)
    assert torch.allclose(incremental, parallel, atol=1e-10)


def test_batched_parameters_condition_each_batch_member(device):
    """A batch of output biases (c = f(context)) gives each member its own NADE."""
    weight, bias, output_weight, output_bias = _parameters(device=device)
    biases = output_bias + torch.randn(4, 13, dtype=torch.float64, device=device)
    hidden_biases = bias + torch.randn(4, 7, dtype=torch.float64, device=device)
    batched = NADE(weight, hidden_biases, output_weight, biases)
    assert batched.batch_shape == (4,)
    x = torch.randint(0, 2, (3, 4, 13), device=device).double()
    separate = torch.stack(
        [
            NADE(weight, hidden_biases[i], output_weight, biases[i]).log_prob(x[:, i])
            for i in range(4)
        ],
        dim=-1,
    )
    assert torch.allclose(batched.log_prob(x), separate, atol=1e-10)


def test_batched_weights_use_the_broadcast_path(device):
    weights = torch.randn(3, 7, 13, dtype=torch.float64, device=device)
    _, bias, output_weight, output_bias = _parameters(device=device)
    batched = NADE(weights, bias, output_weight, output_bias, chunk_size=4)
    x = torch.randint(0, 2, (5, 3, 13), device=device).double()
    separate = torch.stack(
        [NADE(weights[i], bias, output_weight, output_bias).log_prob(x[:, i]) for i in range(3)],
        dim=-1,
    )
    assert torch.allclose(batched.log_prob(x), separate, atol=1e-10)
    samples = batched.sample((2,))
    assert samples.shape == (2, 3, 13)


def test_expanded_parameters_keep_the_shared_fast_path():
    weight, bias, output_weight, output_bias = _parameters()
    expanded = NADE(weight, bias, output_weight, output_bias).expand((100,))
    assert expanded.input_weight.dim() == 2  # no per-example copy of W
    x = torch.randint(0, 2, (100, 13)).double()
    assert expanded.log_prob(x).shape == (100,)


def test_float32_matches_float64():
    parameters = _parameters()
    x = torch.randint(0, 2, (20, 13))
    high = NADE(*parameters).log_prob(x)
    low = NADE(*[p.float() for p in parameters]).log_prob(x)
    assert low.dtype == torch.float32
    assert torch.allclose(low.double(), high, atol=1e-4)
