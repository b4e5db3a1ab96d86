r"""The contract shared by fully-visible autoregressive distributions over binary vectors.

A fully-visible autoregressive model factorizes a distribution over :math:`x \in \{0, 1\}^D`
along an ordering :math:`\pi` (a permutation of the :math:`D` dimensions) as

.. math:: p(x) = \prod_{k=1}^{D} p(x_{\pi_k} \mid x_{\pi_1}, \ldots, x_{\pi_{k-1}}),
   \qquad p(x_{\pi_k} = 1 \mid x_{\pi_{<k}}) = \sigma(\ell_{\pi_k}(x_{\pi_{<k}})).

Subclasses supply the conditional logits :math:`\ell` in two forms: all :math:`D` at once for a
given :math:`x` (one parallel pass, used by :meth:`log_prob`), and one at a time from a running
state (used by the ancestral sampler, so that generating a sample never recomputes the past).

References:
    | Connectionist learning of belief networks (Neal, 1992)
    | The Neural Autoregressive Distribution Estimator (Larochelle & Murray, 2011)
    | https://proceedings.mlr.press/v15/larochelle11a.html
"""

from __future__ import annotations

__all__ = ["BinaryAutoregressive", "MarginalEstimate", "check_ordering", "shared_across_batch"]

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from pyro.distributions import TorchDistribution
from torch import Tensor
from torch.distributions import constraints

from .validation import (
    check_binary_values,
    check_partially_observed,
    check_sample_shape,
    check_value_shape,
    finish_expand,
    initialize_distribution,
)


def check_ordering(
    ordering: Tensor | Sequence[int] | None,
    num_dims: int,
    device: torch.device | str | None = None,
) -> Tensor:
    """``ordering`` as a ``long`` tensor (natural order if ``None``), checked to be a
    permutation of ``range(num_dims)``.

    Example:
        >>> check_ordering(None, 3), check_ordering([2, 0, 1], 3)
        (tensor([0, 1, 2]), tensor([2, 0, 1]))
        >>> try:
        ...     check_ordering([0, 0, 1], 3)
        ... except ValueError:
        ...     print("not a permutation")
        not a permutation
    """
    if ordering is None:
        return torch.arange(num_dims, device=device)
    ordering = torch.as_tensor(ordering, device=device)
    if ordering.dtype not in (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8):
        raise ValueError(f"ordering must hold integer indices, got dtype {ordering.dtype}")
    ordering = ordering.long()
    if ordering.shape != (num_dims,):
        raise ValueError(
            f"ordering must be a permutation of range({num_dims}) with shape ({num_dims},), "
            f"got shape {tuple(ordering.shape)}"
        )
    if not torch.equal(ordering.sort().values, torch.arange(num_dims, device=device)):
        raise ValueError(f"ordering must be a permutation of range({num_dims}), got {ordering}")
    return ordering


def shared_across_batch(tensor: Tensor, event_dim: int) -> Tensor | None:
    """Returns ``tensor`` without its batch dimensions if every batch element is the same view.

    Parameters broadcast over batch dimensions (size 1, or expanded with stride 0) carry no
    per-element information; dropping those dimensions lets a model use one large matrix
    product instead of a batched one. Returns ``None`` when the batch elements really differ.

    Example:
        >>> weight = torch.randn(4, 4)
        >>> shared_across_batch(weight.expand(10, 4, 4), event_dim=2) is not None  # one matrix
        True
        >>> shared_across_batch(torch.randn(10, 4, 4), event_dim=2) is None  # ten different ones
        True
    """
    batch_dims = tensor.dim() - event_dim
    for size, stride in zip(tensor.shape[:batch_dims], tensor.stride()[:batch_dims], strict=True):
        if size != 1 and stride != 0:
            return None
    return tensor[(0,) * batch_dims] if batch_dims else tensor


@dataclass(frozen=True)
class MarginalEstimate:
    r"""The log-probability of the observed part of partially observed vectors
    (:meth:`BinaryAutoregressive.marginal_log_prob`).

    Attributes:
        log_prob: :math:`\log p(x_o)` (exact where ``exact``, else the importance-sampling
            estimate), shape ``broadcast(observed.shape[:-1], mask.shape[:-1], batch_shape)``;
            differentiable in the distribution's parameters.
        standard_error: Its standard error (delta method; 0 where exact), same shape.
        exact: Where the observed dimensions form a prefix of the ordering (the value is
            exact there), same shape.
        num_samples: The number of importance samples used for the other entries (0 if every
            entry is exact).

    Example:
        >>> exact = torch.ones(2, dtype=torch.bool)
        >>> estimate = MarginalEstimate(torch.zeros(2), torch.zeros(2), exact, 0)
        >>> bool(estimate.exact.all())
        True
    """

    log_prob: Tensor
    standard_error: Tensor
    exact: Tensor
    num_samples: int


class BinaryAutoregressive(TorchDistribution):
    r"""Base class of fully-visible autoregressive distributions over :math:`\{0, 1\}^D`.

    Subclasses implement

    * :meth:`_ordered_logits`: all conditional logits for inputs already permuted into the
      model's ordering, in one pass (no Python loop over :math:`D`);
    * :meth:`_sampling_start`, :meth:`_sampling_logit`, :meth:`_sampling_advance`: a running
      state from which the logit of the :math:`k`-th dimension in the ordering is read, and
      which absorbs the value drawn for it;
    * :attr:`expand_shares`: the attributes (parameters and options) that :meth:`expand`
      hands to the expanded copy unchanged (or :meth:`expand` itself, where more is needed).

    Values may be ``bool``, integer or floating tensors of shape ``(..., D)``;
    :meth:`log_prob` returns shape ``broadcast(value.shape[:-1], batch_shape)``.

    Arguments:
        num_dims: The number :math:`D` of binary dimensions.
        batch_shape: The batch shape of the parameters.
        ordering: A permutation :math:`\pi` of ``range(D)``: ``ordering[k]`` is the dimension
            generated at step :math:`k`. Defaults to the natural order.
        device: The parameters' device.
        validate_args: Whether to validate parameters and values.

    Example:
        >>> from pyro_ar.distributions import FVSBN
        >>> model = FVSBN(torch.randn(4, 4), torch.zeros(4))  # every model shares this contract
        >>> x = model.sample((3,))
        >>> model.log_prob(x).shape, model.conditional_logits(x).shape
        (torch.Size([3]), torch.Size([3, 4]))
        >>> observed = torch.tensor([1.0, 0.0, 0.0, 0.0])
        >>> mask = torch.tensor([True, True, False, False])  # a prefix of the ordering: exact
        >>> model.sample_conditional(observed, mask, (5,))[:, :2].unique(dim=0).tolist()
        [[1.0, 0.0]]
    """

    support = constraints.independent(constraints.boolean, 1)
    has_enumerate_support = False
    #: The largest :math:`D` for which :meth:`enumerate_support` is allowed (:math:`2^D` rows).
    max_enumerate_dims = 20
    #: Attributes that :meth:`expand` shares with the expanded copy. Parameters are shared as
    #: they are, not expanded: they broadcast, so a single matrix keeps one GEMM per pass.
    expand_shares: tuple[str, ...] = ()

    def __init__(
        self,
        num_dims: int,
        batch_shape: torch.Size,
        ordering: Tensor | Sequence[int] | None = None,
        device: torch.device | None = None,
        validate_args: bool | None = None,
    ) -> None:
        if num_dims < 1:
            raise ValueError(f"{type(self).__name__} needs at least one dimension, got D=0")
        self._set_ordering(check_ordering(ordering, num_dims, device))
        initialize_distribution(
            self, torch.Size(batch_shape), torch.Size([num_dims]), validate_args
        )

    def _set_ordering(self, ordering: Tensor) -> None:
        self.ordering = ordering
        #: ``rank[d]`` is the step at which dimension ``d`` is generated.
        self.rank = torch.argsort(ordering)
        self._natural_order = bool(
            torch.equal(ordering, torch.arange(len(ordering), device=ordering.device))
        )

    def expand(
        self, batch_shape: torch.Size, _instance: BinaryAutoregressive | None = None
    ) -> BinaryAutoregressive:
        """The distribution with batch shape ``batch_shape`` (parameters shared, see
        :attr:`expand_shares`; the ordering and every option kept)."""
        new = self._get_checked_instance(type(self), _instance)
        batch_shape = torch.Size(batch_shape)
        torch.broadcast_shapes(batch_shape, self.batch_shape)
        for name in self.expand_shares:
            setattr(new, name, getattr(self, name))
        self._copy_base_into(new, batch_shape)
        return new

    def _copy_base_into(self, new: BinaryAutoregressive, batch_shape: torch.Size) -> None:
        """Completes :meth:`expand` in subclasses: copies the ordering and sets the shapes."""
        new.ordering, new.rank, new._natural_order = self.ordering, self.rank, self._natural_order
        finish_expand(new, self, batch_shape)

    # ------------------------------------------------------------------ for subclasses

    @property
    def num_dims(self) -> int:
        """The number :math:`D` of binary dimensions."""
        return self.event_shape[0]

    @property
    def _dtype(self) -> torch.dtype:
        raise NotImplementedError

    @property
    def _device(self) -> torch.device:
        return self.ordering.device

    def _ordered_logits(self, ordered_value: Tensor) -> Tensor:
        """All :math:`D` conditional logits, for inputs and outputs in the model's ordering.

        ``ordered_value`` has shape ``broadcast(value.shape[:-1], batch_shape) + (D,)``.
        """
        raise NotImplementedError

    def _ordered_log_prob(self, ordered_value: Tensor) -> Tensor:
        """Log-probability of values already permuted into the ordering (override for speed)."""
        logits = self._ordered_logits(ordered_value)
        return -F.binary_cross_entropy_with_logits(logits, ordered_value, reduction="none").sum(-1)

    def _sampling_start(self, shape: torch.Size) -> Any:
        """A running state for ``shape`` (sample and batch dims) parallel sampling chains."""
        raise NotImplementedError

    def _sampling_logit(self, state: Any, step: int) -> Tensor:
        """The logit of dimension ``ordering[step]``, shape ``shape``."""
        raise NotImplementedError

    def _sampling_advance(self, state: Any, step: int, value: Tensor) -> None:
        """Absorbs the value (shape ``shape``, 0.0 or 1.0) drawn for ``ordering[step]``."""
        raise NotImplementedError

    # ------------------------------------------------------------------ validation

    def _validate_sample(self, value: Tensor) -> None:
        check_value_shape(self, value, "binary")
        self._check_binary(value)

    def _check_binary(self, value: Tensor) -> None:
        check_binary_values(type(self).__name__, value)

    def _prepare(self, value: Tensor) -> Tensor:
        """Validates, casts to the parameters' dtype, and expands ``value`` to the batch shape."""
        if self._validate_args:
            self._validate_sample(value)
        value = value.to(dtype=self._dtype, device=self._device)
        shape = torch.broadcast_shapes(value.shape[:-1], self.batch_shape)
        return value.expand(shape + self.event_shape)

    def _to_ordering(self, value: Tensor) -> Tensor:
        return value if self._natural_order else value[..., self.ordering]

    def _from_ordering(self, ordered: Tensor) -> Tensor:
        return ordered if self._natural_order else ordered[..., self.rank]

    # ------------------------------------------------------------------ public API

    def log_prob(self, value: Tensor) -> Tensor:
        r"""Exact log-probability :math:`\log p(x) = \sum_d x_d \ell_d - \log(1 + e^{\ell_d})`.

        All :math:`D` conditionals are evaluated in one parallel pass.

        Arguments:
            value: Binary values, shape ``(..., D)``; ``bool``, integer or floating.

        Returns:
            Shape ``broadcast(value.shape[:-1], batch_shape)``.
        """
        value = self._prepare(value)
        return self._ordered_log_prob(self._to_ordering(value))

    def conditional_logits(self, value: Tensor) -> Tensor:
        r"""All :math:`D` conditional logits :math:`\ell_d = \operatorname{logit}
        p(x_d = 1 \mid x_{<d})` for a given :math:`x`, where :math:`<d` means earlier in the
        model's ordering.

        Entry :math:`d` depends only on the dimensions generated before :math:`d`, so this is
        the building block of completion and inpainting.

        Arguments:
            value: Binary values, shape ``(..., D)``.

        Returns:
            Logits indexed by dimension (not by step), shape
            ``broadcast(value.shape[:-1], batch_shape) + (D,)``.
        """
        value = self._prepare(value)
        return self._from_ordering(self._ordered_logits(self._to_ordering(value)))

    def sample(self, sample_shape: torch.Size = torch.Size()) -> Tensor:
        """Ancestral sampling, one dimension at a time for the whole batch at once.

        Arguments:
            sample_shape: The leading shape of the samples.

        Returns:
            Values 0.0/1.0 in the parameters' dtype and device, shape
            ``sample_shape + batch_shape + (D,)``.
        """
        shape = check_sample_shape(type(self).__name__, sample_shape) + self.batch_shape
        with torch.no_grad():
            return self._ancestral(shape)[0]

    def sample_conditional(
        self,
        observed: Tensor,
        mask: Tensor,
        sample_shape: torch.Size = torch.Size(),
        return_log_weights: bool = False,
    ) -> Tensor | tuple[Tensor, Tensor]:
        r"""Samples the dimensions where ``mask`` is false and keeps the observed ones fixed.

        Dimensions are visited in the model's ordering: an observed dimension takes its given
        value, a missing one is drawn from :math:`p(x_d \mid x_{<d})` given everything before it.

        What is exact: when the observed dimensions form a prefix of the ordering (for the
        natural order on images, e.g. the top rows), the result is an exact sample from
        :math:`p(x_\text{missing} \mid x_\text{observed})`. For any other pattern the draw
        ignores the evidence of observed dimensions that come *after* a missing one, so it is
        a sample from the proposal :math:`q(x_m) = \prod_{d \in m} p(x_d \mid x_{<d})`, not
        from the true conditional. ``return_log_weights=True`` returns the importance log-weights
        :math:`\log w = \sum_{d \in o} \log p(x_d \mid x_{<d})`, which make self-normalized
        importance resampling over many draws consistent for the true conditional.

        Arguments:
            observed: Values, shape ``(..., D)``; entries where ``mask`` is false are ignored
                (they may be NaN).
            mask: Boolean, shape ``(..., D)``; true where the value is observed.
            sample_shape: Leading shape of independent completions.
            return_log_weights: Also return the importance log-weights.

        Returns:
            Samples of shape ``sample_shape + shape + (D,)``, where ``shape`` broadcasts
            ``batch_shape``, ``observed.shape[:-1]`` and ``mask.shape[:-1]``, and the
            log-weights of shape ``sample_shape + shape``.
        """
        name = type(self).__name__
        observed, mask = self._partially_observed(observed, mask, "sample_conditional")
        batch = torch.broadcast_shapes(self.batch_shape, observed.shape[:-1], mask.shape[:-1])
        shape = check_sample_shape(name, sample_shape) + batch
        with torch.no_grad():
            samples, log_weights = self._ancestral(
                shape,
                self._to_ordering(observed.expand(shape + self.event_shape)),
                self._to_ordering(mask.expand(shape + self.event_shape)),
            )
        return (samples, log_weights) if return_log_weights else samples

    def _partially_observed(
        self, observed: Tensor, mask: Tensor, method: str
    ) -> tuple[Tensor, Tensor]:
        """Checks ``observed`` and ``mask`` (shapes, a boolean mask, binary observed entries)
        and returns the observed values with the missing entries set to 0, in the parameters'
        dtype, and the mask."""
        name = f"{type(self).__name__}.{method}"
        observed, mask = check_partially_observed(
            name, observed, mask, torch.Size([self.num_dims]), self._device
        )
        if self._validate_args:
            self._check_binary(observed)
        return observed.to(self._dtype), mask

    def marginal_log_prob(
        self, observed: Tensor, mask: Tensor, num_samples: int = 1000
    ) -> MarginalEstimate:
        r"""The log-probability :math:`\log p(x_o) = \log \sum_{x_m} p(x_o, x_m)` of the
        observed dimensions (``mask`` true) of each vector, the missing ones summed out.

        * Exact where the observed dimensions form a prefix of the ordering (the missing ones
          a suffix): :math:`\log p(x_o) = \sum_{d \in o} \log p(x_d \mid x_{<d})`, one pass.
        * Elsewhere an importance-sampling estimate with the proposal of
          :meth:`sample_conditional`, :math:`q(x_m) = \prod_{d \in m} p(x_d \mid x_{<d})`,
          whose weights are :math:`w = \prod_{d \in o} p(x_d \mid x_{<d})` (so
          :math:`\mathbb{E}_q[w] = p(x_o)`): :math:`\log \hat p = \log \frac{1}{K} \sum_k
          w_k`, with the delta-method standard error :math:`\operatorname{sd}(w) /
          (\bar w \sqrt{K})`. The estimate of :math:`p` is unbiased; its log is biased low
          by about half the squared standard error.

        The result is differentiable in the parameters: exactly where exact, elsewhere with
        the self-normalized estimate :math:`\sum_k \bar w_k \nabla \log p(x_o, x_m^{(k)})`
        of :math:`\nabla \log p(x_o) = \mathbb{E}_{p(x_m \mid x_o)}[\nabla \log p(x_o,
        x_m)]` (consistent; the completions' own dependence on the parameters is accounted
        for).

        Arguments:
            observed: Values, shape ``(..., D)``; entries where ``mask`` is false are ignored
                (they may be NaN).
            mask: Boolean, shape ``(..., D)``; true where observed.
            num_samples: :math:`K`, importance samples per vector that needs them.

        Returns:
            A :class:`MarginalEstimate`.

        Example:
            >>> from pyro_ar.distributions import FVSBN
            >>> model = FVSBN(torch.randn(3, 3), torch.zeros(3))
            >>> observed = torch.tensor([1.0, 0.0, float("nan")])
            >>> prefix = model.marginal_log_prob(observed, torch.tensor([True, True, False]))
            >>> states = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 1.0]])
            >>> torch.allclose(prefix.log_prob, model.log_prob(states).logsumexp(0))
            True
        """
        name = type(self).__name__
        if num_samples < 1:
            raise ValueError(f"{name}.marginal_log_prob: num_samples must be positive")
        filled, mask = self._partially_observed(observed, mask, "marginal_log_prob")
        shape = torch.broadcast_shapes(self.batch_shape, filled.shape[:-1], mask.shape[:-1])
        filled = filled.expand(shape + self.event_shape)
        mask = mask.expand(shape + self.event_shape)
        ordered_mask = self._to_ordering(mask)
        # a prefix: no observed dimension after the first missing one
        exact = (ordered_mask.int().cummin(-1).values == ordered_mask.int()).all(-1)
        samples = 1 if bool(exact.all()) else num_samples
        if samples == 1:
            completions = filled[None]  # the missing entries do not enter a prefix's terms
        else:
            completions = self.sample_conditional(filled, mask, (samples,))
        logits = self.conditional_logits(completions)
        terms = completions * logits - F.softplus(logits)
        log_weights = torch.where(mask, terms, torch.zeros_like(terms)).sum(-1)  # (K, shape)
        log_prob = log_weights.logsumexp(0) - math.log(samples)
        if samples == 1:
            error = torch.zeros_like(log_prob)
        else:
            weights = torch.exp(log_weights.detach() - log_prob.detach())  # w / mean(w)
            error = weights.std(0) / math.sqrt(samples)
            # the completions depend on the parameters too: the gradient of log p(x_o) is
            # E_{p(x_m | x_o)}[grad log p(x_o, x_m)], estimated with the normalized weights
            log_joint = terms.sum(-1)
            normalized = weights / samples
            log_prob = log_prob.detach() + (normalized * (log_joint - log_joint.detach())).sum(0)
        log_prob = torch.where(exact, log_weights[0], log_prob)
        error = torch.where(exact, torch.zeros_like(error), error)
        return MarginalEstimate(log_prob, error, exact, 0 if samples == 1 else samples)

    def _ancestral(
        self,
        shape: torch.Size,
        ordered_observed: Tensor | None = None,
        ordered_mask: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        # Drawing x = [logit + logistic noise > 0] is exact Bernoulli(sigmoid(logit)) sampling
        # and costs one comparison per step instead of a sigmoid and a uniform draw.
        uniform = torch.rand(shape + self.event_shape, device=self._device, dtype=self._dtype)
        noise = uniform.log() - torch.log1p(-uniform)
        log_weights = torch.zeros(shape, device=self._device, dtype=self._dtype)
        state = self._sampling_start(shape)
        columns = []
        for step in range(self.num_dims):
            logit = self._sampling_logit(state, step)
            column = (logit + noise[..., step] > 0).to(self._dtype)
            if ordered_mask is not None:
                given = ordered_observed[..., step]
                is_given = ordered_mask[..., step]
                log_weights = log_weights + torch.where(
                    is_given, given * logit - F.softplus(logit), torch.zeros_like(logit)
                )
                column = torch.where(is_given, given, column)
            columns.append(column)
            self._sampling_advance(state, step, column)
        return self._from_ordering(torch.stack(columns, dim=-1)), log_weights

    def enumerate_support(self, expand: bool = True) -> Tensor:
        r"""All :math:`2^D` binary vectors, for small :math:`D` (at most
        :attr:`max_enumerate_dims`).

        ``has_enumerate_support`` stays false, so Pyro never enumerates a site implicitly.

        Returns:
            Shape ``(2^D,) + batch_shape + (D,)`` if ``expand``, else
            ``(2^D,) + (1,) * len(batch_shape) + (D,)``.
        """
        if self.num_dims > self.max_enumerate_dims:
            raise ValueError(
                f"{type(self).__name__}.enumerate_support would list 2^{self.num_dims} states; "
                f"only D <= {self.max_enumerate_dims} is supported"
            )
        states = torch.arange(2**self.num_dims, device=self._device)
        bits = torch.arange(self.num_dims - 1, -1, -1, device=self._device)
        values = ((states[:, None] >> bits) & 1).to(self._dtype)
        values = values.reshape((-1,) + (1,) * len(self.batch_shape) + self.event_shape)
        if expand:
            values = values.expand((-1,) + self.batch_shape + self.event_shape)
        return values
