r"""Restricted Boltzmann machines as Pyro distributions over their visible units."""

from __future__ import annotations

__all__ = [
    "EXACT_LOG_PARTITION_MAX_UNITS",
    "GaussianBernoulliRBM",
    "LogPartitionError",
    "RBM",
    "RBMBase",
]

import copy
import math

import pyro.distributions as dist
import torch
import torch.nn.functional as F
from pyro.distributions import TorchDistribution
from torch import Tensor
from torch.distributions import constraints

from ..ops import BernoulliSampler, fused_linear
from .validation import (
    broadcast_batch_shapes,
    check_binary_values,
    check_sample_shape,
    check_value_shape,
    finish_expand,
)

#: The exact log-partition enumerates 2^K states of the smaller layer for K up to this.
EXACT_LOG_PARTITION_MAX_UNITS = 20
# States enumerated per batch when computing exact log partitions (memory: chunk x units).
_ENUMERATION_CHUNK = 1 << 14


class LogPartitionError(RuntimeError):
    """A normalized density was asked of an RBM whose log partition function is unknown.

    Example:
        >>> big = RBM(torch.zeros(30, 25), torch.zeros(25), torch.zeros(30))  # no exact log Z
        >>> try:
        ...     big.log_prob(torch.zeros(25))
        ... except LogPartitionError:
        ...     print("estimate log Z first")
        estimate log Z first
    """


def binary_states(num_units: int, start: int, stop: int, like: Tensor) -> Tensor:
    """Rows ``start..stop-1`` of the ``2^num_units`` binary states (most significant bit
    first), in ``like``'s dtype and device."""
    index = torch.arange(start, stop, device=like.device)
    bits = 2 ** torch.arange(num_units - 1, -1, -1, device=like.device)
    return ((index.unsqueeze(-1) // bits) % 2).to(like.dtype)


def _check_parameter(name: str, value: Tensor) -> None:
    if not isinstance(value, Tensor) or not value.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor")
    if not bool(torch.isfinite(value).all()):
        raise ValueError(f"{name} contains NaN or infinite values")


class RBMBase(TorchDistribution):
    """What binary and Gaussian-Bernoulli RBMs share: shapes, conditionals, normalization,
    block-Gibbs sampling. The block structure that Gibbs kernels and contrastive divergence use
    is :meth:`gibbs_step` (both layers in turn) and :meth:`initial_visible` (a cheap start).

    Example:
        >>> rbm = RBM(torch.zeros(2, 3), torch.zeros(3), torch.zeros(2))
        >>> isinstance(rbm, RBMBase), rbm.gibbs_step(rbm.initial_visible((4,)))[0].shape
        (True, torch.Size([4, 3]))
    """

    arg_constraints: dict = {}
    has_enumerate_support = False

    def __init__(self, weight, visible_bias, hidden_bias, log_partition, burn_in, validate_args):
        if isinstance(burn_in, bool) or not isinstance(burn_in, int) or burn_in < 0:
            raise ValueError(f"burn_in must be a non-negative integer, got {burn_in!r}")
        self.burn_in = burn_in
        for name, value in (
            ("weight", weight),
            ("visible_bias", visible_bias),
            ("hidden_bias", hidden_bias),
        ):
            _check_parameter(name, value)
        if weight.dim() < 2:
            raise ValueError(f"weight must have shape (..., H, D), got {tuple(weight.shape)}")
        num_hidden, num_visible = weight.shape[-2:]
        if visible_bias.shape[-1:] != (num_visible,) or hidden_bias.shape[-1:] != (num_hidden,):
            raise ValueError(
                f"weight (..., H={num_hidden}, D={num_visible}) needs visible_bias (..., "
                f"{num_visible}) and hidden_bias (..., {num_hidden}); got "
                f"{tuple(visible_bias.shape)} and {tuple(hidden_bias.shape)}"
            )
        self.weight = weight
        self.visible_bias = visible_bias
        self.hidden_bias = hidden_bias
        self.num_visible = num_visible
        self.num_hidden = num_hidden
        batch_shape = broadcast_batch_shapes(
            type(self).__name__,
            weight=weight.shape[:-2],
            visible_bias=visible_bias.shape[:-1],
            hidden_bias=hidden_bias.shape[:-1],
        )
        self._log_partition = None
        if log_partition is not None:
            self._log_partition = self._as_log_partition(log_partition, batch_shape)
        super().__init__(batch_shape, torch.Size([num_visible]), validate_args=validate_args)

    # ----------------------------------------------------------------------- conditionals
    def hidden_logits(self, visible: Tensor) -> Tensor:
        r""":math:`c + W v`, shape ``broadcast(visible.shape[:-1], batch_shape) + (H,)``."""
        return self._hidden_affine(visible)

    def hidden_probabilities(self, visible: Tensor) -> Tensor:
        r""":math:`p(h_j = 1 \mid v) = \sigma(c_j + W_j \cdot v)`, shape
        ``broadcast(visible.shape[:-1], batch_shape) + (H,)``; one fused GEMM and sigmoid on
        CPU when no gradient is needed (:func:`~pyro_ar.ops.fused_linear`)."""
        return self._hidden_affine(visible, "sigmoid")

    def _hidden_affine(self, visible: Tensor, activation: str | None = None) -> Tensor:
        visible = self._scaled_visible(visible.to(self.weight.dtype))
        if self.weight.dim() == 2 and self.hidden_bias.dim() == 1 and visible.dim() >= 2:
            return fused_linear(visible, self.weight, self.hidden_bias, activation)  # one GEMM
        logits = (visible.unsqueeze(-2) @ self.weight.transpose(-1, -2)).squeeze(
            -2
        ) + self.hidden_bias
        return logits if activation is None else torch.sigmoid(logits)

    def hidden_given_visible(self, visible: Tensor) -> dist.Distribution:
        r""":math:`p(h \mid v) = \prod_j \mathrm{Bernoulli}(\sigma(c_j + W_j \cdot v))`."""
        return dist.Bernoulli(logits=self.hidden_logits(visible)).to_event(1)

    def _hidden_term(self, visible: Tensor) -> Tensor:
        r""":math:`\sum_j \mathrm{softplus}(c_j + W_j \cdot v)`: the hidden units summed out."""
        return F.softplus(self.hidden_logits(visible)).sum(-1)

    def unnormalized_log_prob(self, value: Tensor) -> Tensor:
        r""":math:`-F(v)`: the log-density up to :math:`\log Z`."""
        return -self.free_energy(value)

    # ------------------------------------------------------------------------ normalizing
    @property
    def smaller_layer(self) -> int:
        return min(self.num_visible, self.num_hidden)

    @property
    def has_exact_log_partition(self) -> bool:
        return self.num_hidden <= EXACT_LOG_PARTITION_MAX_UNITS

    def log_partition(self) -> Tensor:
        r"""Exact :math:`\log Z`, shape ``batch_shape``, by enumerating the hidden layer
        (in chunks, in log space): :math:`\log Z = \operatorname{logsumexp}_h\, [c \cdot h +
        \log \textstyle\int e^{-E_h(v)} dv]` with the visible units summed or integrated out.

        Computed in float64 whatever the parameters' dtype (returned in theirs): in float32 the
        free energies of large weights lose the digits that normalization needs."""
        return self._float64()._enumerated_log_partition().to(self.weight.dtype)

    def _enumerated_log_partition(self) -> Tensor:
        if not self.has_exact_log_partition:
            raise LogPartitionError(
                f"cannot enumerate 2^{self.num_hidden} hidden states (at most "
                f"{EXACT_LOG_PARTITION_MAX_UNITS} hidden units); estimate log Z with "
                "pyro_ar.infer.annealed_importance_sampling"
            )
        if self._enumerates_visible:
            units, logits = self.num_visible, self.unnormalized_log_prob
        else:
            units, logits = self.num_hidden, self._hidden_marginal_logits
        total = 2**units
        parts = []
        for start in range(0, total, _ENUMERATION_CHUNK):
            stop = min(total, start + _ENUMERATION_CHUNK)
            states = binary_states(units, start, stop, self.weight)
            if self._enumerates_visible:
                states = states.reshape((stop - start,) + (1,) * len(self.batch_shape) + (units,))
                parts.append(torch.logsumexp(logits(states), 0))
            else:
                parts.append(torch.logsumexp(logits(states), -1))
        log_z = torch.logsumexp(torch.stack(parts, -1), -1)
        if not self._enumerates_visible:
            log_z = log_z + self._partition_constant()
        return log_z.expand(self.batch_shape)

    @property
    def _enumerates_visible(self) -> bool:
        """Whether the exact log Z sums over visible states (a binary visible layer smaller than
        the hidden one) instead of hidden states."""
        return False

    def _partition_constant(self) -> Tensor | float:
        return 0.0

    def with_log_partition(self, log_partition: Tensor | float) -> RBMBase:
        """A copy whose :meth:`log_prob` uses ``log_partition`` (e.g. an AIS estimate)."""
        new = self.expand(self.batch_shape)
        new._log_partition = self._as_log_partition(log_partition, self.batch_shape)
        return new

    def _as_log_partition(self, log_partition: Tensor | float, batch_shape) -> Tensor:
        """A given log Z as a float64 tensor of ``batch_shape``, checked to be finite."""
        value = torch.as_tensor(log_partition, device=self.weight.device)
        value = value.to(torch.float64).expand(batch_shape)
        if not bool(torch.isfinite(value).all()):
            raise ValueError(f"log_partition must be finite, got {log_partition}")
        return value

    def _float64(self) -> RBMBase:
        """This RBM with float64 parameters (the same values; gradients reach the originals)."""
        if self.weight.dtype == torch.float64:
            return self
        return self._converted(torch.float64)

    def _converted(self, dtype: torch.dtype) -> RBMBase:
        """A copy with every floating parameter in ``dtype`` (an attached log Z stays)."""
        new = copy.copy(self)
        for name, value in vars(self).items():
            if name != "_log_partition" and isinstance(value, Tensor):
                if value.is_floating_point():
                    setattr(new, name, value.to(dtype))
        return new

    def _resolved_log_partition(self) -> Tensor:
        """log Z in float64: attached, or exact (computed once)."""
        if self._log_partition is not None:
            return self._log_partition
        if self.has_exact_log_partition:
            self._log_partition = self._float64()._enumerated_log_partition()
            return self._log_partition
        raise LogPartitionError(
            f"{type(self).__name__}.log_prob needs log Z, but {self.num_hidden} hidden units are "
            f"too many to enumerate (at most {EXACT_LOG_PARTITION_MAX_UNITS}). Estimate it, e.g. "
            "estimate = pyro_ar.infer.annealed_importance_sampling(rbm), then use "
            "rbm.with_log_partition(estimate.log_partition); or use unnormalized_log_prob"
        )

    def log_prob(self, value: Tensor) -> Tensor:
        r"""Normalized :math:`\log p(v) = -F(v) - \log Z` (exact or attached :math:`\log Z`;
        never silently unnormalized: raises :class:`LogPartitionError` without one).

        :math:`F` and :math:`\log Z` are computed in float64 and their difference returned in
        the parameters' dtype, so that a float32 RBM stays normalized at any weight scale."""
        if self._validate_args:
            self._validate_sample(value)
        log_partition = self._resolved_log_partition()
        log_prob = -self._float64().free_energy(value) - log_partition
        return log_prob.to(self.weight.dtype)

    def _copy_into(self, new, batch_shape):
        # Parameters stay unexpanded (they broadcast): a plate over N rows must not turn one
        # (rows x D) @ (D x H) GEMM into N batched matrix-vector products.
        new.weight, new.visible_bias, new.hidden_bias = (
            self.weight,
            self.visible_bias,
            self.hidden_bias,
        )
        new.num_visible, new.num_hidden = self.num_visible, self.num_hidden
        new.burn_in = self.burn_in
        new._log_partition = (
            None if self._log_partition is None else self._log_partition.expand(batch_shape)
        )
        finish_expand(new, self, batch_shape)

    # --------------------------------------------------------------------------- sampling
    def gibbs_step(
        self,
        visible: Tensor,
        *,
        clamp_mask: Tensor | None = None,
        clamp_values: Tensor | None = None,
        sampler: BernoulliSampler | None = None,
    ) -> tuple[Tensor, Tensor]:
        r"""One block-Gibbs sweep :math:`h \sim p(h \mid v)`, :math:`v \sim p(v \mid h)`; visible
        units where ``clamp_mask`` is true keep ``clamp_values``. Returns ``(v, h)``.

        Loops should make one :class:`~pyro_ar.ops.BernoulliSampler` and pass it to every
        sweep (a new one is seeded from PyTorch's global generator on each call otherwise)."""
        if (clamp_mask is None) != (clamp_values is None):
            raise ValueError(
                f"{type(self).__name__}.gibbs_step: pass clamp_mask with clamp_values"
            )
        sampler = sampler if sampler is not None else BernoulliSampler()
        hidden = sampler(self.hidden_probabilities(visible))
        visible = self._sample_visible(hidden, sampler)
        if clamp_mask is not None:
            visible = torch.where(clamp_mask, clamp_values.to(visible.dtype), visible)
        return visible, hidden

    def gibbs_chain(
        self,
        sample_shape: torch.Size = torch.Size(),
        num_draws: int = 1,
        burn_in: int = 1000,
        thinning: int = 1,
        initial: Tensor | None = None,
    ) -> Tensor:
        r"""Draws from vectorized block-Gibbs chains: ``burn_in`` sweeps, then ``num_draws``
        states ``thinning`` sweeps apart. Shape ``(num_draws,) + sample_shape + batch_shape +
        (D,)``. Chains start at ``initial`` or at independent draws from the visible biases."""
        shape = check_sample_shape(type(self).__name__, sample_shape) + self.batch_shape
        for name, value, least in (("num_draws", num_draws, 0), ("burn_in", burn_in, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")
        if isinstance(thinning, bool) or not isinstance(thinning, int) or thinning < 1:
            raise ValueError(f"thinning must be an integer >= 1, got {thinning!r}")
        if num_draws == 0:
            return torch.empty((0,) + shape + self.event_shape, dtype=self.weight.dtype)
        with torch.no_grad():
            if initial is None:
                visible = self.initial_visible(shape)
            else:
                visible = initial.to(self.weight.dtype).expand(shape + (self.num_visible,))
            sampler, buffers = BernoulliSampler(), []
            for _ in range(burn_in):
                visible = self._buffered_sweep(visible, sampler, buffers)
            draws = []
            for _ in range(num_draws):
                for _ in range(thinning):
                    visible = self._buffered_sweep(visible, sampler, buffers)
                draws.append(visible.clone())  # the buffers are overwritten by later sweeps
            return torch.stack(draws)

    def _buffered_sweep(self, visible: Tensor, sampler: BernoulliSampler, buffers: list) -> Tensor:
        """A block-Gibbs sweep that writes its draws into reused buffers (``buffers`` starts
        empty and is filled on the first call): a hidden buffer, and two visible buffers used
        in turn, so a sweep never overwrites the state it reads. Fresh multi-megabyte tensors
        at every sweep would cost page faults comparable to the sampling itself."""
        probs = self.hidden_probabilities(visible)
        if not buffers:
            visible_shape = probs.shape[:-1] + (self.num_visible,)
            buffers += [
                torch.empty(shape, dtype=probs.dtype, device=probs.device)
                for shape in (probs.shape, visible_shape, visible_shape)
            ]
        hidden = sampler(probs, out=buffers[0])
        out = buffers[1] if visible is not buffers[1] else buffers[2]
        return self._sample_visible(hidden, sampler, out=out)

    def sample(self, sample_shape: torch.Size = torch.Size()) -> Tensor:
        r"""Exact samples when the log partition is exact (:math:`h` from its marginal, then
        :math:`v \sim p(v \mid h)`; or :math:`v` directly when the visible layer is the one
        enumerated); otherwise the last state
        of independent block-Gibbs chains after ``burn_in`` sweeps (a constructor argument,
        default 1000, kept by :meth:`expand`)."""
        shape = check_sample_shape(type(self).__name__, sample_shape) + self.batch_shape
        if shape.numel() == 0:
            return torch.empty(shape + self.event_shape, dtype=self.weight.dtype)
        with torch.no_grad():
            if self.has_exact_log_partition:
                return self._exact_sample(shape)
            return self.gibbs_chain(sample_shape, burn_in=self.burn_in)[0]

    def _exact_sample(self, shape: torch.Size) -> Tensor:
        return self.visible_given_hidden(self._exact_hidden_sample(shape)).sample()

    def _exact_hidden_sample(self, shape: torch.Size) -> Tensor:
        states = binary_states(self.num_hidden, 0, 2**self.num_hidden, self.weight)
        # log p(h) up to a constant, for every state: shape batch_shape + (2^H,)
        log_weights = self._hidden_marginal_logits(states)
        log_weights = log_weights.expand(self.batch_shape + log_weights.shape[-1:])
        categorical = dist.Categorical(logits=log_weights)
        index = categorical.sample(shape[: len(shape) - len(self.batch_shape)])
        return states[index]


class RBM(RBMBase):
    r"""A binary restricted Boltzmann machine, as a distribution over its visible units:

    .. math:: E(v, h) = -b \cdot v - c \cdot h - h^\top W v, \qquad
              p(v) = \frac{1}{Z} \sum_h e^{-E(v, h)} = \frac{e^{-F(v)}}{Z}, \qquad
              F(v) = -b \cdot v - \sum_j \operatorname{softplus}(c_j + W_j \cdot v),

    with factorized conditionals :math:`p(h_j = 1 \mid v) = \sigma(c_j + W_j \cdot v)` and
    :math:`p(v_i = 1 \mid h) = \sigma(b_i + W_{:, i} \cdot h)`.

    :meth:`log_prob` is always normalized: it uses the exact :math:`\log Z` when the smaller
    layer has at most :data:`EXACT_LOG_PARTITION_MAX_UNITS` units (enumerated in chunks, in log
    space), or a value attached with :meth:`with_log_partition` (e.g. from annealed importance
    sampling, :func:`pyro_ar.infer.annealed_importance_sampling`); otherwise it raises.
    :meth:`unnormalized_log_prob` is :math:`-F(v)`.

    Arguments:
        weight: :math:`W`, shape ``(..., H, D)``.
        visible_bias: :math:`b`, shape ``(..., D)``.
        hidden_bias: :math:`c`, shape ``(..., H)``.
        log_partition: A known :math:`\log Z` (shape broadcastable to ``batch_shape``).
        burn_in: Block-Gibbs sweeps before :meth:`sample` returns, when sampling cannot be
            exact (more than :data:`EXACT_LOG_PARTITION_MAX_UNITS` units in both layers).
        validate_args: Whether to validate values.

    References:
        P. Smolensky. *Information processing in dynamical systems: foundations of harmony
        theory*. 1986. G. E. Hinton. *Training products of experts by minimizing contrastive
        divergence*. Neural Computation, 2002. R. Salakhutdinov, I. Murray. *On the quantitative
        analysis of deep belief networks*. ICML 2008.

    Example:
        >>> rbm = RBM(0.1 * torch.randn(3, 6), torch.zeros(6), torch.zeros(3))
        >>> states = binary_states(6, 0, 64, rbm.weight)  # every visible state
        >>> abs(rbm.log_prob(states).logsumexp(0).item()) < 1e-5  # exact log Z: normalized
        True
        >>> rbm.gibbs_chain((10,), num_draws=2, burn_in=5).shape
        torch.Size([2, 10, 6])
    """

    support = constraints.independent(constraints.boolean, 1)

    def __init__(
        self,
        weight: Tensor,
        visible_bias: Tensor,
        hidden_bias: Tensor,
        log_partition: Tensor | float | None = None,
        burn_in: int = 1000,
        validate_args: bool | None = None,
    ):
        super().__init__(weight, visible_bias, hidden_bias, log_partition, burn_in, validate_args)

    def expand(self, batch_shape, _instance=None) -> RBM:
        new = self._get_checked_instance(RBM, _instance)
        self._copy_into(new, torch.Size(batch_shape))
        return new

    def _validate_sample(self, value: Tensor) -> None:
        check_value_shape(self, value, "binary")
        check_binary_values(type(self).__name__, value)

    @property
    def has_exact_log_partition(self) -> bool:
        """The smaller layer has at most :data:`EXACT_LOG_PARTITION_MAX_UNITS` units."""
        return self.smaller_layer <= EXACT_LOG_PARTITION_MAX_UNITS

    @property
    def _enumerates_visible(self) -> bool:
        return self.num_visible < self.num_hidden

    def _exact_sample(self, shape: torch.Size) -> Tensor:
        if not self._enumerates_visible:
            return super()._exact_sample(shape)
        states = binary_states(self.num_visible, 0, 2**self.num_visible, self.weight)
        log_weights = self.unnormalized_log_prob(
            states.reshape((len(states),) + (1,) * len(self.batch_shape) + (self.num_visible,))
        )  # (2^D,) + batch_shape
        log_weights = log_weights.movedim(0, -1).expand(self.batch_shape + (len(states),))
        index = dist.Categorical(logits=log_weights).sample(
            shape[: len(shape) - len(self.batch_shape)]
        )
        return states[index]

    def _scaled_visible(self, visible: Tensor) -> Tensor:
        return visible

    def initial_visible(self, shape: torch.Size) -> Tensor:
        """Independent draws from the visible biases alone, shape ``shape + (D,)``: a cheap
        starting state for chains."""
        logits = self.visible_bias.expand(torch.Size(shape) + (self.num_visible,))
        return torch.bernoulli(torch.sigmoid(logits))

    def visible_logits(self, hidden: Tensor) -> Tensor:
        r""":math:`b + W^\top h`."""
        return self._visible_affine(hidden)

    def visible_probabilities(self, hidden: Tensor) -> Tensor:
        r""":math:`p(v_i = 1 \mid h) = \sigma(b_i + W_{:, i} \cdot h)`; fused on CPU when no
        gradient is needed."""
        return self._visible_affine(hidden, "sigmoid")

    def _visible_affine(self, hidden: Tensor, activation: str | None = None) -> Tensor:
        hidden = hidden.to(self.weight.dtype)
        if self.weight.dim() == 2 and self.visible_bias.dim() == 1 and hidden.dim() >= 2:
            return fused_linear(hidden, self.weight.T, self.visible_bias, activation)
        logits = (hidden.unsqueeze(-2) @ self.weight).squeeze(-2) + self.visible_bias
        return logits if activation is None else torch.sigmoid(logits)

    def _sample_visible(
        self, hidden: Tensor, sampler: BernoulliSampler, out: Tensor | None = None
    ) -> Tensor:
        return sampler(self.visible_probabilities(hidden), out=out)

    def visible_given_hidden(self, hidden: Tensor) -> dist.Distribution:
        r""":math:`p(v \mid h) = \prod_i \mathrm{Bernoulli}(\sigma(b_i + W_{:, i} \cdot h))`."""
        return dist.Bernoulli(logits=self.visible_logits(hidden)).to_event(1)

    def energy(self, visible: Tensor, hidden: Tensor) -> Tensor:
        r""":math:`E(v, h) = -b \cdot v - c \cdot h - h^\top W v`."""
        visible = visible.to(self.weight.dtype)
        hidden = hidden.to(self.weight.dtype)
        interaction = ((hidden.unsqueeze(-2) @ self.weight).squeeze(-2) * visible).sum(-1)
        return (
            -(visible * self.visible_bias).sum(-1)
            - (hidden * self.hidden_bias).sum(-1)
            - interaction
        )

    def free_energy(self, value: Tensor) -> Tensor:
        r""":math:`F(v) = -b \cdot v - \sum_j \operatorname{softplus}(c_j + W_j \cdot v)`."""
        value = value.to(self.weight.dtype)
        return -(value * self.visible_bias).sum(-1) - self._hidden_term(value)

    def _hidden_marginal_logits(self, hidden_states: Tensor) -> Tensor:
        r""":math:`c \cdot h + \sum_i \operatorname{softplus}(b_i + W_{:, i} \cdot h)` for states
        ``(S, H)``, shape ``batch_shape + (S,)``."""
        visible_logits = hidden_states @ self.weight + self.visible_bias.unsqueeze(-2)
        return (hidden_states * self.hidden_bias.unsqueeze(-2)).sum(-1) + F.softplus(
            visible_logits
        ).sum(-1)


class GaussianBernoulliRBM(RBMBase):
    r"""An RBM with real-valued (Gaussian) visible units and binary hidden units:

    .. math:: E(v, h) = \sum_i \frac{(v_i - b_i)^2}{2 \sigma_i^2} - c \cdot h
              - \sum_{ij} h_j W_{ji} \frac{v_i}{\sigma_i},

    so :math:`p(h_j = 1 \mid v) = \sigma(c_j + W_j \cdot (v / \sigma))` and
    :math:`p(v \mid h) = \mathcal{N}(b + \sigma \odot W^\top h, \operatorname{diag}(\sigma^2))`.
    Free energy :math:`F(v) = \sum_i (v_i - b_i)^2 / (2\sigma_i^2) - \sum_j
    \operatorname{softplus}(c_j + W_j \cdot (v / \sigma))`; the exact
    :math:`\log Z = \frac{D}{2}\log 2\pi + \sum_i \log \sigma_i + \operatorname{logsumexp}_h
    [c \cdot h + (b / \sigma) \cdot W^\top h + \tfrac12 \lVert W^\top h \rVert^2]` enumerates
    the hidden layer (at most :data:`EXACT_LOG_PARTITION_MAX_UNITS` units).

    Arguments:
        weight, visible_bias, hidden_bias: As in :class:`RBM`.
        visible_scale: :math:`\sigma` (``(..., D)`` or a scalar; default 1: unit variances).
            Pass a learned positive tensor for learned variances.
        log_partition, burn_in, validate_args: As in :class:`RBM`.

    References:
        G. E. Hinton, R. Salakhutdinov. *Reducing the dimensionality of data with neural
        networks*. Science, 2006. K. Cho, A. Ilin, T. Raiko. *Improved learning of
        Gaussian-Bernoulli restricted Boltzmann machines*. ICANN 2011.

    Example:
        >>> weight = 0.1 * torch.randn(3, 2)
        >>> rbm = GaussianBernoulliRBM(weight, torch.zeros(2), torch.zeros(3), visible_scale=0.5)
        >>> rbm.log_prob(torch.zeros(4, 2)).shape, rbm.sample((4,)).shape
        (torch.Size([4]), torch.Size([4, 2]))
    """

    support = constraints.independent(constraints.real, 1)

    def __init__(
        self,
        weight: Tensor,
        visible_bias: Tensor,
        hidden_bias: Tensor,
        visible_scale: Tensor | float = 1.0,
        log_partition: Tensor | float | None = None,
        burn_in: int = 1000,
        validate_args: bool | None = None,
    ):
        visible_scale = torch.as_tensor(visible_scale, dtype=weight.dtype, device=weight.device)
        if not bool(((visible_scale > 0) & torch.isfinite(visible_scale)).all()):
            raise ValueError(
                f"GaussianBernoulliRBM: visible_scale must be positive and finite, got "
                f"{visible_scale.flatten()[:4].tolist()}"
            )
        self.visible_scale = visible_scale.expand(visible_bias.shape)
        super().__init__(weight, visible_bias, hidden_bias, log_partition, burn_in, validate_args)

    def expand(self, batch_shape, _instance=None) -> GaussianBernoulliRBM:
        new = self._get_checked_instance(GaussianBernoulliRBM, _instance)
        batch_shape = torch.Size(batch_shape)
        new.visible_scale = self.visible_scale
        self._copy_into(new, batch_shape)
        return new

    def _validate_sample(self, value: Tensor) -> None:
        check_value_shape(self, value, "real")
        if not bool(torch.isfinite(value).all()):
            raise ValueError("GaussianBernoulliRBM values must be finite (found NaN or inf)")

    def _scaled_visible(self, visible: Tensor) -> Tensor:
        return visible / self.visible_scale

    def initial_visible(self, shape: torch.Size) -> Tensor:
        """Independent draws from :math:`\\mathcal{N}(b, \\sigma^2)`, shape ``shape + (D,)``: a
        cheap starting state for chains."""
        mean = self.visible_bias.expand(torch.Size(shape) + (self.num_visible,))
        return mean + self.visible_scale * torch.randn_like(mean)

    def _sample_visible(
        self, hidden: Tensor, sampler: BernoulliSampler, out: Tensor | None = None
    ) -> Tensor:
        return self.visible_given_hidden(hidden).sample()  # ``out`` is only a hint

    def visible_given_hidden(self, hidden: Tensor) -> dist.Distribution:
        hidden = hidden.to(self.weight.dtype)
        mean = self.visible_bias + self.visible_scale * (
            hidden.unsqueeze(-2) @ self.weight
        ).squeeze(-2)
        return dist.Normal(mean, self.visible_scale.expand(mean.shape)).to_event(1)

    def energy(self, visible: Tensor, hidden: Tensor) -> Tensor:
        visible = visible.to(self.weight.dtype)
        hidden = hidden.to(self.weight.dtype)
        quadratic = ((visible - self.visible_bias) ** 2 / (2 * self.visible_scale**2)).sum(-1)
        scaled = visible / self.visible_scale
        interaction = ((hidden.unsqueeze(-2) @ self.weight).squeeze(-2) * scaled).sum(-1)
        return quadratic - (hidden * self.hidden_bias).sum(-1) - interaction

    def free_energy(self, value: Tensor) -> Tensor:
        value = value.to(self.weight.dtype)
        quadratic = ((value - self.visible_bias) ** 2 / (2 * self.visible_scale**2)).sum(-1)
        return quadratic - self._hidden_term(value)

    def _hidden_marginal_logits(self, hidden_states: Tensor) -> Tensor:
        projected = hidden_states @ self.weight  # batch + (S, D)
        return (
            (hidden_states * self.hidden_bias.unsqueeze(-2)).sum(-1)
            + (projected * (self.visible_bias / self.visible_scale).unsqueeze(-2)).sum(-1)
            + 0.5 * (projected**2).sum(-1)
        )

    def _partition_constant(self) -> Tensor:
        r"""The visible integral's normalizer, :math:`\frac{D}{2}\log 2\pi + \sum \log\sigma`."""
        return 0.5 * self.num_visible * math.log(2 * math.pi) + self.visible_scale.log().sum(-1)
