r"""Estimating an RBM's log partition function: annealed importance sampling (AIS) forwards
from a base-rate model, and in reverse from (approximate) model samples, which brackets it."""

from __future__ import annotations

__all__ = [
    "LogPartitionEstimate",
    "annealed_importance_sampling",
    "annealing_schedule",
    "base_rate_visible_bias",
    "reverse_annealed_importance_sampling",
]

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ..distributions.rbm import RBM
from ..ops import BernoulliSampler
from ..progress import Progress


@dataclass
class LogPartitionEstimate:
    r"""An estimate of :math:`\log Z` from importance weights :math:`w_m`.

    Attributes:
        log_partition: :math:`\log Z_A + \log \frac{1}{M}\sum_m w_m` (forward) or
            :math:`\log Z_A - \log \frac{1}{M}\sum_m w_m` (reverse).
        standard_error: Delta-method standard error of ``log_partition``:
            :math:`\operatorname{sd}(w) / (\sqrt{M}\, \bar w)`.
        log_weights: :math:`\log w_m`, shape ``(M,) + batch_shape``.
        direction: ``"forward"`` (a stochastic lower bound: :math:`E[\hat Z] = Z`, so
            :math:`E[\log \hat Z] \le \log Z`) or ``"reverse"`` (a stochastic upper bound when the
            chains start from exact model samples).

    Example:
        >>> rbm = RBM(0.1 * torch.randn(3, 6), torch.zeros(6), torch.zeros(3))
        >>> estimate = annealed_importance_sampling(rbm, num_chains=50, betas=300, progress=False)
        >>> estimate.direction, abs(estimate.log_partition - rbm.log_partition()).item() < 0.1
        ('forward', True)
    """

    log_partition: Tensor
    standard_error: Tensor
    log_weights: Tensor
    direction: str

    @property
    def interval(self) -> tuple[Tensor, Tensor]:
        """:math:`\\pm 3` standard errors, as Salakhutdinov & Murray report."""
        return (
            self.log_partition - 3 * self.standard_error,
            self.log_partition + 3 * self.standard_error,
        )


def annealing_schedule(num_betas: int = 14500, device=None, dtype=torch.float64) -> Tensor:
    r"""Inverse temperatures :math:`0 = \beta_0 < \dots < \beta_K = 1` spaced as Salakhutdinov &
    Murray (2008): 500 steps of 1e-3 up to 0.5, 4,000 of 1e-4 up to 0.9, 10,000 of 1e-5 up to 1
    (scaled to ``num_betas`` in the same proportions).

    Example:
        >>> betas = annealing_schedule(29)
        >>> betas[0].item(), betas[-1].item(), len(betas)
        (0.0, 1.0, 30)
    """
    if num_betas < 3:
        raise ValueError(f"num_betas must be at least 3, got {num_betas}")
    first = max(1, round(num_betas * 500 / 14500))
    second = max(1, round(num_betas * 4000 / 14500))
    third = max(1, num_betas - first - second)
    return torch.cat(
        [
            torch.linspace(0.0, 0.5, first + 1, device=device, dtype=dtype)[:-1],
            torch.linspace(0.5, 0.9, second + 1, device=device, dtype=dtype)[:-1],
            torch.linspace(0.9, 1.0, third + 1, device=device, dtype=dtype),
        ]
    )


def base_rate_visible_bias(data: Tensor, pseudo_count: float = 5.0) -> Tensor:
    r"""Visible biases of the base-rate model, :math:`b_A = \operatorname{logit}((\sum_n v_n +
    \alpha\, 0.5) / (N + \alpha))`: independent pixels with the data's marginals (smoothed so
    no bias is infinite), the usual starting point of AIS for RBMs. In float64, the precision
    in which the annealing runs.

    Example:
        >>> data = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
        >>> base_rate_visible_bias(data, pseudo_count=0.0)  # logit of the column means
        tensor([1.0986, 0.0000], dtype=torch.float64)
    """
    data = data.reshape(-1, data.shape[-1]).double()
    probs = (data.sum(0) + 0.5 * pseudo_count) / (data.shape[0] + pseudo_count)
    return torch.logit(probs)


class _Annealing:
    r"""Intermediate RBMs between the base model A (weights 0, visible biases :math:`b_A`) and the
    target B: :math:`\log f_\beta(v) = ((1-\beta) b_A + \beta b_B) \cdot v + \sum_j
    \operatorname{softplus}(\beta (c + W v)_j)`, with :math:`\log Z_A = H \log 2 + \sum_i
    \operatorname{softplus}(b_{A,i})`."""

    def __init__(self, rbm: RBM, base_bias: Tensor | None):
        if not isinstance(rbm, RBM):
            raise TypeError(
                "annealed importance sampling here is for binary RBMs (pyro_ar.distributions.RBM)"
            )
        self.rbm = rbm
        weight = rbm.weight
        self.base_bias = (
            torch.zeros_like(rbm.visible_bias)
            if base_bias is None
            else base_bias.to(weight.dtype).to(weight.device).expand(rbm.visible_bias.shape)
        )
        self.sampler = BernoulliSampler()
        self.log_base_partition = rbm.num_hidden * math.log(2.0) + F.softplus(self.base_bias).sum(
            -1
        )

    def hidden_preactivation(self, visible: Tensor) -> Tensor:
        return self.rbm.hidden_logits(visible)

    def log_f_difference(self, visible, activation, beta_to, beta_from) -> Tensor:
        bias_change = (beta_to - beta_from) * (self.rbm.visible_bias - self.base_bias)
        return (visible * bias_change).sum(-1) + (
            F.softplus(beta_to * activation) - F.softplus(beta_from * activation)
        ).sum(-1)

    def transition(self, activation: Tensor, beta: float) -> Tensor:
        """Block Gibbs at inverse temperature ``beta`` from the current visible state."""
        hidden = self.sampler(torch.sigmoid(beta * activation))
        logits = (1 - beta) * self.base_bias + beta * self.rbm.visible_logits(hidden)
        return self.sampler(torch.sigmoid_(logits))


def _summarize(log_weights: Tensor, offset: Tensor, sign: float, direction: str):
    num_chains = log_weights.shape[0]
    log_mean = torch.logsumexp(log_weights, 0) - math.log(num_chains)
    relative = torch.exp(log_weights - log_mean)  # w / mean(w)
    standard_error = relative.std(0, unbiased=True) / math.sqrt(num_chains)
    return LogPartitionEstimate(offset + sign * log_mean, standard_error, log_weights, direction)


def annealed_importance_sampling(
    rbm: RBM,
    num_chains: int = 100,
    betas: Tensor | int = 14500,
    base_visible_bias: Tensor | None = None,
    progress: bool = True,
) -> LogPartitionEstimate:
    r"""Forward AIS (Neal 2001; Salakhutdinov & Murray 2008) for :math:`\log Z` of an RBM.

    Each of ``num_chains`` chains starts with an exact draw from the base model, then for
    :math:`k = 1..K` adds :math:`\log f_{\beta_k}(v) - \log f_{\beta_{k-1}}(v)` to its log weight
    and moves with a block-Gibbs step that leaves :math:`p_{\beta_k}` invariant. Then
    :math:`E[w] = Z_B / Z_A`. Chains run vectorized on the RBM's device; cost
    :math:`O(K M H D)`.

    Arguments:
        rbm: The target (any batch shape).
        num_chains: :math:`M`.
        betas: An increasing schedule from 0 to 1, or its length for :func:`annealing_schedule`.
        base_visible_bias: :math:`b_A` (e.g. :func:`base_rate_visible_bias` of the training
            data); default 0 (uniform).
        progress: Report progress (a bar on a terminal, plain log lines otherwise).

    Example:
        >>> from pyro_ar.distributions import RBM
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> rbm = RBM(0.1 * torch.randn(3, 8), torch.zeros(8), torch.zeros(3))  # log Z exact by H
        >>> estimate = annealed_importance_sampling(rbm, num_chains=100, betas=500, progress=False)
        >>> abs(estimate.log_partition - rbm.log_partition()).item() < 0.05
        True
    """
    annealing = _Annealing(rbm, base_visible_bias)
    betas = _check_schedule(betas, rbm)
    shape = (num_chains,) + tuple(rbm.batch_shape) + (rbm.num_visible,)
    with torch.no_grad():
        visible = torch.bernoulli(torch.sigmoid(annealing.base_bias.expand(shape)))
        log_weights = torch.zeros(shape[:-1], dtype=rbm.weight.dtype, device=rbm.weight.device)
        values = betas.tolist()
        with Progress(len(values) - 1, "AIS", progress, unit="temperature") as report:
            for k in range(1, len(values)):
                activation = annealing.hidden_preactivation(visible)
                log_weights += annealing.log_f_difference(
                    visible, activation, values[k], values[k - 1]
                )
                if k < len(values) - 1:
                    visible = annealing.transition(activation, values[k])
                report.update()
    return _summarize(log_weights, annealing.log_base_partition, 1.0, "forward")


def reverse_annealed_importance_sampling(
    rbm: RBM,
    initial_visible: Tensor,
    betas: Tensor | int = 14500,
    base_visible_bias: Tensor | None = None,
    burn_in: int = 0,
    progress: bool = True,
) -> LogPartitionEstimate:
    r"""Reverse AIS: the chains start from model samples and anneal *down* to the base model,
    accumulating :math:`\log f_{\beta_{k-1}}(v) - \log f_{\beta_k}(v)`; then
    :math:`E[w] = Z_A / Z_B` and :math:`\log Z_A - \log \bar w` over-estimates :math:`\log Z_B`
    in expectation (Burda, Grosse & Salakhutdinov 2015, RAISE). Together with the forward
    estimate this brackets :math:`\log Z`.

    The bound holds for exact model samples; ``initial_visible`` (e.g. training images) is first
    moved by ``burn_in`` block-Gibbs sweeps of the model, which approximates them.

    Arguments:
        initial_visible: Starting states ``(M,) + batch_shape + (D,)``, one chain each.

    Example:
        >>> rbm = RBM(0.1 * torch.randn(3, 6), torch.zeros(6), torch.zeros(3))
        >>> start = rbm.sample((50,))  # exact samples: the estimate is an upper one in expectation
        >>> estimate = reverse_annealed_importance_sampling(rbm, start, betas=300, progress=False)
        >>> abs(estimate.log_partition - rbm.log_partition()).item() < 0.1
        True
    """
    annealing = _Annealing(rbm, base_visible_bias)
    betas = _check_schedule(betas, rbm)
    with torch.no_grad():
        visible = initial_visible.to(rbm.weight.dtype).to(rbm.weight.device)
        visible = visible.expand((visible.shape[0],) + tuple(rbm.batch_shape) + (rbm.num_visible,))
        for _ in range(burn_in):
            visible, _ = rbm.gibbs_step(visible, sampler=annealing.sampler)
        log_weights = torch.zeros(
            visible.shape[:-1], dtype=rbm.weight.dtype, device=visible.device
        )
        values = betas.tolist()
        with Progress(len(values) - 1, "reverse AIS", progress, unit="temperature") as report:
            for k in range(len(values) - 1, 0, -1):
                activation = annealing.hidden_preactivation(visible)
                log_weights += annealing.log_f_difference(
                    visible, activation, values[k - 1], values[k]
                )
                if k > 1:
                    visible = annealing.transition(activation, values[k - 1])
                report.update()
    return _summarize(log_weights, annealing.log_base_partition, -1.0, "reverse")


def _check_schedule(betas: Tensor | int, rbm: RBM) -> Tensor:
    if isinstance(betas, int):
        return annealing_schedule(betas, device=rbm.weight.device)
    betas = torch.as_tensor(betas, dtype=torch.float64)
    if betas.dim() != 1 or len(betas) < 2 or betas[0] != 0 or betas[-1] != 1:
        raise ValueError("betas must be a 1-D schedule that starts at 0 and ends at 1")
    if bool((betas.diff() < 0).any()):
        raise ValueError("betas must not decrease")
    return betas
