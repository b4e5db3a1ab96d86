"""Sampler building blocks: the oneDNN fused linear map agrees with torch's, the parallel
Bernoulli sampler draws the right distribution, independently across its streams, and a
float32 RBM's Gibbs chain (which takes both fast paths on CPU) still samples its model."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import stats
from stats import chi_square_p_value

from pyro_ar.distributions import RBM
from pyro_ar.distributions.rbm import binary_states
from pyro_ar.ops import BernoulliSampler, fused_linear, onednn_available


def reference(x, weight, bias, activation):
    out = F.linear(x.double(), weight.double(), None if bias is None else bias.double())
    return {None: out, "sigmoid": torch.sigmoid(out), "relu": torch.relu(out)}[activation]


@pytest.mark.parametrize("activation", [None, "sigmoid", "relu"])
@pytest.mark.parametrize("shape", [(1,), (7,), (300,), (4, 5)])
def test_fused_linear_matches_torch(device, activation, shape):
    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(50, 30, generator=generator).to(device)
    bias = torch.randn(50, generator=generator).to(device)
    x = (torch.rand(*shape, 30, generator=generator) < 0.4).float().to(device)
    expected = reference(x, weight, bias, activation)
    for w in (weight, weight.T.contiguous().T):  # transposed storage, as for W^T h
        out = fused_linear(x, w, bias, activation)
        assert out.shape == (*shape, 50) and out.dtype == torch.float32
        torch.testing.assert_close(out.double(), expected, atol=2e-5, rtol=1e-5)
    no_bias = fused_linear(x, weight, None, activation)
    torch.testing.assert_close(
        no_bias.double(), reference(x, weight, None, activation), atol=2e-5, rtol=1e-5
    )
    # expanded (stride-0) and strided inputs
    row = x.reshape(-1, 30)[:1].expand(6, 30)
    torch.testing.assert_close(
        fused_linear(row, weight, bias, activation).double(),
        reference(row, weight, bias, activation),
        atol=2e-5,
        rtol=1e-5,
    )
    strided = torch.rand(9, 60, generator=generator).to(device)[:, ::2]
    torch.testing.assert_close(
        fused_linear(strided, weight, bias, activation).double(),
        reference(strided, weight, bias, activation),
        atol=2e-5,
        rtol=1e-5,
    )


def test_fused_linear_falls_back_for_gradients_and_other_dtypes():
    weight = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    x = torch.randn(4, 3, dtype=torch.float64)
    out = fused_linear(x, weight, None, "sigmoid")
    assert out.dtype == torch.float64
    out.sum().backward()
    torch.testing.assert_close(
        weight.grad, (torch.sigmoid(x @ weight.T) * (1 - torch.sigmoid(x @ weight.T))).T @ x
    )
    weight32 = torch.randn(5, 3, requires_grad=True)
    fused_linear(torch.randn(4, 3), weight32, None, "relu").sum().backward()
    assert weight32.grad is not None
    assert isinstance(onednn_available(), bool)
    with pytest.raises(ValueError, match="activation"):
        fused_linear(x, weight, None, "tanh")


BACKENDS = ["compiled", "numpy", "torch"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
def test_bernoulli_sampler_frequencies(device, dtype, backend):
    # float16 takes the torch.rand_like path
    torch.manual_seed(0)
    probs = torch.linspace(0, 1, 41, dtype=dtype, device=device)
    rows = 20000
    draws = BernoulliSampler(backend)(probs.expand(rows, -1))
    assert draws.dtype == dtype and draws.device == probs.device
    assert set(draws.unique().tolist()) <= {0.0, 1.0}
    counts = draws.double().sum(0).cpu().numpy()
    p = probs.double().cpu().numpy()
    assert counts[0] == 0 and counts[-1] == rows  # p = 0 and p = 1 are exact
    inner = slice(1, -1)
    expected = rows * p[inner]
    statistic = ((counts[inner] - expected) ** 2 / (expected * (1 - p[inner]))).sum()
    assert stats.chi2.sf(statistic, df=len(expected)) > 1e-3
    # negative control: probabilities off by 2% are rejected
    shifted = rows * np.clip(p[inner] * 1.02, 0, 1)
    wrong = ((counts[inner] - shifted) ** 2 / (shifted * (1 - p[inner]) + 1e-9)).sum()
    assert stats.chi2.sf(wrong, df=len(expected)) < 1e-6


@pytest.mark.parametrize("backend", ["compiled", "numpy"])
def test_bernoulli_sampler_settles_byte_ties_exactly(backend):
    # p = (L + 1/2) / 256: a sampler that ignored ties would give L/256 or (L+1)/256
    torch.manual_seed(1)
    levels = torch.tensor([0, 1, 37, 128, 200, 254, 255], dtype=torch.float64)
    for dtype in (torch.float32, torch.float64):
        probs = ((levels + 0.5) / 256).to(dtype)
        rows = 400_000
        frequency = BernoulliSampler(backend)(probs.expand(rows, -1)).double().mean(0)
        p = probs.double()
        z = (frequency - p) / (p * (1 - p) / rows).sqrt()
        assert stats.chi2.sf((z**2).sum().item(), df=len(p)) > 1e-3
        floor_z = (frequency - levels / 256) / (p * (1 - p) / rows).sqrt()
        assert stats.chi2.sf((floor_z[1:] ** 2).sum().item(), df=len(p) - 1) < 1e-6


@pytest.mark.parametrize("backend", ["compiled", "numpy"])
def test_bernoulli_sampler_draws_are_independent_and_reproducible(backend):
    torch.manual_seed(3)
    sampler = BernoulliSampler(backend)
    draws = sampler(torch.full((20000, 16), 0.5))
    # neighbouring entries come from the same 64-bit word: they must still be independent
    for j in range(15):
        agreement = (draws[:, j] == draws[:, j + 1]).double().mean().item()
        assert abs(agreement - 0.5) < 0.015  # sd 0.0035
    # and so must successive calls (the stream continues, it does not restart)
    again = sampler(torch.full((20000, 16), 0.5))
    assert abs((again == draws).double().mean().item() - 0.5) < 0.01
    torch.manual_seed(3)
    assert torch.equal(BernoulliSampler(backend)(torch.full((20000, 16), 0.5)), draws)
    assert BernoulliSampler(backend)(torch.empty(0, 3)).shape == (0, 3)
    # probabilities that need gradients, expanded ones, and sizes that are not whole words
    probs = torch.full((3,), 0.5, requires_grad=True)
    assert BernoulliSampler(backend)(probs.expand(4, 3)).shape == (4, 3)
    odd = BernoulliSampler(backend)(torch.full((7, 3), 0.5), out=torch.empty(7, 3))
    assert odd.shape == (7, 3) and set(odd.unique().tolist()) <= {0.0, 1.0}


def test_bernoulli_sampler_backends_and_bad_arguments(monkeypatch):
    import pyro_ar.ops

    assert BernoulliSampler().backend == "compiled"  # Numba is a dependency
    with pytest.raises(ValueError, match="backend"):
        BernoulliSampler("fast")
    probs = torch.full((4, 3), 0.5)
    with pytest.raises(ValueError, match="shape"):
        BernoulliSampler()(probs, out=torch.empty(3, 4))
    with pytest.raises(ValueError, match="contiguous"):
        BernoulliSampler()(probs, out=torch.empty(3, 4).T)
    with pytest.raises(ValueError, match="probs itself"):
        BernoulliSampler()(probs, out=probs)
    buffer = torch.full((13,), 0.5)
    with pytest.raises(ValueError, match="overlap"):  # a shifted view of the same memory
        BernoulliSampler()(buffer[:12].view(4, 3), out=buffer[1:].view(4, 3))
    # without Numba, "auto" falls back to NumPy and "compiled" says what is missing
    monkeypatch.setitem(sys.modules, "numba", None)  # import numba now raises ImportError
    monkeypatch.delitem(sys.modules, "pyro_ar.ops.bernoulli_kernels")
    monkeypatch.delattr(pyro_ar.ops, "bernoulli_kernels")
    assert BernoulliSampler().backend == "numpy"
    with pytest.raises(ImportError, match="Numba"):
        BernoulliSampler("compiled")


def test_float32_gibbs_chain_samples_the_rbm():
    # float32 on CPU: oneDNN GEMMs with fused sigmoid and the parallel sampler
    generator = torch.Generator().manual_seed(0)
    rbm = RBM(
        torch.randn(4, 6, generator=generator),
        torch.randn(6, generator=generator),
        torch.randn(4, generator=generator),
    )
    torch.manual_seed(0)
    probs = rbm.log_prob(binary_states(6, 0, 64, rbm.weight)).double().exp()
    draws = rbm.gibbs_chain((20000,), burn_in=200)[0]
    assert draws.dtype == torch.float32
    assert chi_square_p_value(draws, probs)[0] > 1e-3
    # several draws from the reused buffers: each is its own state, each follows the model
    several = rbm.gibbs_chain((20000,), num_draws=3, thinning=1, burn_in=50)
    assert not torch.equal(several[0], several[1]) and not torch.equal(several[1], several[2])
    for draw in several:
        assert chi_square_p_value(draw, probs)[0] > 1e-4
    other = RBM(rbm.weight * 1.3, rbm.visible_bias, rbm.hidden_bias)
    other_probs = other.log_prob(binary_states(6, 0, 64, rbm.weight)).double().exp()
    assert chi_square_p_value(draws, other_probs)[0] < 1e-6
