"""Every fast kernel against its plain reference, over randomized shapes and dtypes: NADE's
chunked kernel, the masked (and block-skipping) products, the oneDNN fused linear map, and the
compiled Bernoulli sampler with Numba's bounds checking on.

The configurations are drawn from seeded generators, so a failure names a reproducible case."""

from __future__ import annotations

import math

import pytest
import torch

from pyro_ar.nn import made_degrees
from pyro_ar.ops import (
    BernoulliSampler,
    ScratchPool,
    block_plan,
    fused_linear,
    fused_linear_reference,
    masked_linear,
    masked_linear_reference,
    nade_hidden_logits,
    nade_hidden_logits_reference,
)

DTYPES = [torch.float32, torch.float64]


def _tolerance(dtype: torch.dtype) -> dict:
    return {"rtol": 1e-4, "atol": 1e-4} if dtype == torch.float32 else {"rtol": 1e-9, "atol": 1e-9}


def _randint(generator: torch.Generator, low: int, high: int) -> int:
    return int(torch.randint(low, high + 1, (), generator=generator))


@pytest.mark.parametrize("seed", range(24))
def test_nade_kernel_equals_the_reference(seed):
    generator = torch.Generator().manual_seed(seed)
    dtype = DTYPES[seed % 2]
    rows, dims, hidden = (
        _randint(generator, 1, 40),
        _randint(generator, 1, 30),
        _randint(generator, 1, 20),
    )
    chunk = _randint(generator, 1, dims + 3)

    def randn(*shape):
        return torch.randn(shape, generator=generator, dtype=torch.float64).to(dtype)

    x = torch.randint(0, 2, (rows, dims), generator=generator).to(dtype)
    bias_shape = [(hidden,), (1, hidden), (rows, hidden)][seed % 3]
    weight, bias, output_weight = randn(hidden, dims), randn(*bias_shape), randn(dims, hidden)
    x_needs_grad = seed % 4 == 3  # the plain-autograd path of the same function
    inputs = [t.clone().requires_grad_() for t in (x, weight, bias, output_weight)]
    inputs[0].requires_grad_(x_needs_grad)
    fast = nade_hidden_logits(*inputs, chunk_size=chunk)
    reference_inputs = [t.clone().requires_grad_() for t in (x, weight, bias, output_weight)]
    reference = nade_hidden_logits_reference(*reference_inputs)
    torch.testing.assert_close(fast, reference, **_tolerance(dtype))
    grad_out = randn(rows, dims)
    start = 0 if x_needs_grad else 1
    ours = torch.autograd.grad(fast, inputs[start:], grad_out)
    theirs = torch.autograd.grad(reference, reference_inputs[start:], grad_out)
    for mine, expected in zip(ours, theirs, strict=True):
        torch.testing.assert_close(mine, expected, **_tolerance(dtype))
    with torch.no_grad():  # the inference-only pass
        torch.testing.assert_close(
            nade_hidden_logits(x, weight, bias, output_weight, chunk),
            reference.detach(),
            **_tolerance(dtype),
        )


def _mask(generator: torch.Generator, rows: int, columns: int, kind: str) -> torch.Tensor:
    if kind == "random":
        return (torch.rand(rows, columns, generator=generator) < 0.5).double()
    # a MADE staircase: degrees in order (the natural ordering, sorted hidden degrees)
    inputs = torch.arange(1, columns + 1)
    hidden = made_degrees(columns, [rows], torch.arange(columns))[1]
    return (hidden[:, None] >= inputs[None, :]).double()


@pytest.mark.parametrize("seed", range(30))
def test_masked_products_equal_the_reference(seed):
    generator = torch.Generator().manual_seed(100 + seed)
    dtype = DTYPES[seed % 2]
    rows, columns = _randint(generator, 1, 70), _randint(generator, 1, 70)
    kind = "staircase" if seed % 3 else "random"
    mask = _mask(generator, rows, columns, kind).to(dtype)
    blocks = _randint(generator, 1, 6)
    plan = block_plan(mask, blocks) if seed % 2 == 0 or kind == "staircase" else None
    leading = [(), (_randint(generator, 1, 9),), (2, _randint(generator, 1, 5))][seed % 3]
    if plan is not None and not leading:
        leading = (3,)
    x = torch.randn((*leading, columns), generator=generator, dtype=torch.float64).to(dtype)
    weight = torch.randn(rows, columns, generator=generator, dtype=torch.float64).to(dtype)
    bias = None if seed % 5 == 0 else torch.randn(rows, generator=generator, dtype=torch.float64)
    bias = None if bias is None else bias.to(dtype)
    pool = ScratchPool()
    leaves = [
        t.clone().requires_grad_() for t in (x, weight) + ((bias,) if bias is not None else ())
    ]
    out = masked_linear(
        leaves[0], leaves[1], mask, leaves[2] if bias is not None else None, pool, plan
    )
    reference_leaves = [t.clone().requires_grad_() for t in leaves]
    reference = masked_linear_reference(
        reference_leaves[0],
        reference_leaves[1],
        mask,
        reference_leaves[2] if bias is not None else None,
    )
    torch.testing.assert_close(out, reference, **_tolerance(dtype))
    grad_out = torch.randn(out.shape, generator=generator, dtype=torch.float64).to(dtype)
    ours = torch.autograd.grad(out, leaves, grad_out)
    theirs = torch.autograd.grad(reference, reference_leaves, grad_out)
    for mine, expected in zip(ours, theirs, strict=True):
        torch.testing.assert_close(mine, expected, **_tolerance(dtype))
    assert bool((ours[1][mask == 0] == 0).all())  # masked weights get exactly zero gradient
    # without gradients, reusing the same scratch pool across calls of other shapes
    with torch.no_grad():
        for _ in range(3):
            again = masked_linear(x, weight, mask, bias, pool, plan)
            torch.testing.assert_close(again, reference.detach(), **_tolerance(dtype))
            other = masked_linear(
                x[..., :1].expand(*leading, 1), weight[:, :1], mask[:, :1], bias, pool
            )
            expected = masked_linear_reference(x[..., :1], weight[:, :1], mask[:, :1], bias)
            torch.testing.assert_close(other, expected, **_tolerance(dtype))


@pytest.mark.parametrize("seed", range(30))
def test_fused_linear_equals_the_reference(seed):
    generator = torch.Generator().manual_seed(200 + seed)
    dtype = DTYPES[0] if seed % 3 else DTYPES[1]  # mostly float32: the oneDNN path
    rows, columns = _randint(generator, 1, 60), _randint(generator, 1, 60)
    leading = [(_randint(generator, 1, 30),), (2, _randint(generator, 1, 7)), ()][seed % 3]
    x = torch.randn((*leading, columns), generator=generator, dtype=torch.float64).to(dtype)
    if seed % 4 == 1:  # strided operands: an expanded input, a transposed weight
        x = x[..., :1].expand(*leading, columns) if leading else x
        weight = torch.randn(columns, rows, generator=generator, dtype=torch.float64).to(dtype).T
    else:
        weight = torch.randn(rows, columns, generator=generator, dtype=torch.float64).to(dtype)
    bias = None if seed % 5 == 0 else torch.randn(rows, generator=generator).to(dtype)
    activation = [None, "sigmoid", "relu"][seed % 3]
    with torch.no_grad():
        fused = fused_linear(x, weight, bias, activation)
        reference = fused_linear_reference(
            x.double(), weight.double(), None if bias is None else bias.double(), activation
        )
    assert fused.dtype == dtype and fused.shape == (*leading, rows)
    torch.testing.assert_close(fused.double(), reference, **_tolerance(torch.float32))


def _calibration(draws: torch.Tensor, probs: torch.Tensor) -> float:
    """(sum of draws - sum of p) / its standard deviation: about N(0, 1) for exact draws."""
    variance = (probs * (1 - probs)).sum().item()
    return (draws.double().sum() - probs.double().sum()).item() / math.sqrt(max(variance, 1e-12))


@pytest.mark.parametrize("backend", ["compiled", "numpy", "torch"])
def test_bernoulli_backends_fuzzed_over_sizes_shapes_and_probabilities(backend):
    """Random shapes (empty ones too) and probabilities (exactly 0 and 1, on the byte grid k/256
    and between it, where ties are settled), consecutive calls of other sizes, draws into
    guarded views: outputs are 0/1 of the right shape and dtype, p = 0 and p = 1 are exact, no
    write lands outside ``out``, and the draws are calibrated."""
    sampler = BernoulliSampler(backend, boundscheck=(backend == "compiled"))
    generator = torch.Generator().manual_seed(7)
    all_draws, all_probs = [], []
    guard = 9.0
    for call in range(400):
        dims = _randint(generator, 1, 3)
        shape = tuple(_randint(generator, 0 if call % 50 == 0 else 1, 12) for _ in range(dims))
        dtype = DTYPES[call % 2]
        count = math.prod(shape)
        kind = call % 4
        if kind == 0:
            probs = torch.rand(shape, generator=generator, dtype=torch.float64)
        elif kind == 1:  # on the byte grid: the comparison alone decides
            probs = torch.randint(0, 257, shape, generator=generator) / 256
        elif kind == 2:  # half-way between grid points: every tie needs its uniform
            probs = (torch.randint(0, 256, shape, generator=generator) + 0.5) / 256
        else:
            probs = torch.randint(0, 2, shape, generator=generator).double()
        probs = probs.to(dtype)
        if call % 3 == 0:
            buffer = torch.full((count + 10,), guard, dtype=dtype)
            out = buffer[5 : 5 + count].view(shape)
            draws = sampler(probs, out=out)
            assert draws.data_ptr() == out.data_ptr() or count == 0
            assert bool((buffer[:5] == guard).all() and (buffer[5 + count :] == guard).all())
        else:
            draws = sampler(probs)
        assert draws.shape == probs.shape and draws.dtype == dtype
        assert bool(((draws == 0) | (draws == 1)).all())
        assert bool((draws[probs == 0] == 0).all() and (draws[probs == 1] == 1).all())
        all_draws.append(draws.flatten().double())
        all_probs.append(probs.flatten().double())
    draws, probs = torch.cat(all_draws), torch.cat(all_probs)
    assert abs(_calibration(draws, probs)) < 5
    between = (probs * 256 - (probs * 256).floor()) == 0.5
    assert abs(_calibration(draws[between], probs[between])) < 5


def test_bounds_checked_kernels_are_compiled_with_bounds_checks():
    from pyro_ar.ops.bernoulli_kernels import KERNELS, bounds_checked_kernels

    for kernel in bounds_checked_kernels():
        assert kernel.targetoptions["boundscheck"] is True
    for kernel in KERNELS:
        assert kernel.targetoptions["boundscheck"] is False
