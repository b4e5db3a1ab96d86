"""FVSBN: the formula, the triangular mask in the ordering, and incremental sampling."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from pyro_ar.distributions import FVSBN


def test_logits_follow_the_formula(device):
    weight = torch.randn(5, 5, dtype=torch.float64, device=device)
    bias = torch.randn(5, dtype=torch.float64, device=device)
    x = torch.randint(0, 2, (8, 5), device=device).double()
    expected = torch.stack([bias[d] + x[:, :d] @ weight[d, :d] for d in range(5)], dim=-1)
    distribution = FVSBN(weight, bias)
    assert torch.allclose(distribution.conditional_logits(x), expected)
    log_prob = (x * expected - F.softplus(expected)).sum(-1)
    assert torch.allclose(distribution.log_prob(x), log_prob)


def test_only_the_strictly_lower_part_in_the_ordering_is_used(device):
    ordering = torch.tensor([2, 0, 3, 1], device=device)
    weight = torch.randn(4, 4, dtype=torch.float64, device=device)
    bias = torch.randn(4, dtype=torch.float64, device=device)
    rank = torch.argsort(ordering)
    used = rank[None, :] < rank[:, None]  # weight[d, j] used iff j comes before d
    altered = torch.where(used, weight, torch.randn_like(weight) * 10)
    x = torch.randint(0, 2, (16, 4), device=device).double()
    reference = FVSBN(weight, bias, ordering).log_prob(x)
    assert torch.allclose(FVSBN(altered, bias, ordering).log_prob(x), reference)
    # a used entry does matter
    changed = weight.clone()
    changed[ordering[3], ordering[0]] += 5
    assert not torch.allclose(FVSBN(changed, bias, ordering).log_prob(x), reference)


def test_batched_weights_equal_separate_models(device):
    weights = torch.randn(3, 5, 5, dtype=torch.float64, device=device)
    bias = torch.randn(5, dtype=torch.float64, device=device)
    x = torch.randint(0, 2, (7, 3, 5), device=device).double()
    batched = FVSBN(weights, bias).log_prob(x)
    separate = torch.stack([FVSBN(weights[i], bias).log_prob(x[:, i]) for i in range(3)], -1)
    assert torch.allclose(batched, separate)
