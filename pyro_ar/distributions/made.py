r"""MADE distributions: masked autoencoders as autoregressive densities."""

from __future__ import annotations

__all__ = [
    "check_network",
    "BernoulliMADE",
    "MADEDistribution",
    "MADENetworkBinding",
    "CategoricalMADE",
    "GaussianMADE",
    "MADEEnsemble",
    "MixtureOfGaussiansMADE",
]

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from pyro.distributions import TorchDistribution
from torch import Tensor
from torch.distributions import constraints

from .autoregressive import BinaryAutoregressive
from .validation import check_sample_shape, check_value_shape, finish_expand

if TYPE_CHECKING:
    from ..nn.masked import MaskedAutoencoder


def check_network(owner: str, network: MaskedAutoencoder) -> None:
    """Raises naming the first network parameter that holds NaN or an infinity.

    Example:
        >>> from pyro_ar.nn import MaskedAutoencoder
        >>> network = MaskedAutoencoder(4, [8])
        >>> check_network("BernoulliMADE", network)  # finite: passes
        >>> with torch.no_grad():
        ...     network.output.bias[0] = float("nan")
        >>> try:
        ...     check_network("BernoulliMADE", network)
        ... except ValueError as error:
        ...     print("output.bias" in str(error))
        True
    """
    for name, parameter in network.named_parameters():
        if not bool(torch.isfinite(parameter).all()):
            problem = "NaN" if bool(torch.isnan(parameter).any()) else "infinite values"
            raise ValueError(f"{owner}: network parameter {name} contains {problem}")


def _expand_context(context: Tensor | None, shape: torch.Size) -> Tensor | None:
    return None if context is None else context.expand(torch.Size(shape) + context.shape[-1:])


class MADENetworkBinding:
    """What every MADE distribution shares, written once: a
    :class:`~pyro_ar.nn.MaskedAutoencoder`, an optional context that sets the batch shape, the
    mask set, ``expand``, one network pass, and the incremental pass that sampling uses
    (:class:`~pyro_ar.nn.IncrementalPass`).

    A likelihood is a small class on top: it checks the network's outputs per dimension
    (:meth:`_check_network`), scores values from the network's outputs, and draws one
    dimension's value from its outputs (:meth:`_draw`); :meth:`_sample_incrementally` is the
    sampling loop of all of them. The arguments below are those of every MADE distribution.

    Arguments:
        network: A :class:`~pyro_ar.nn.MaskedAutoencoder` with the outputs per dimension that
            the likelihood needs.
        context: Optional context, shape ``batch_shape + (context_features,)``; it sets the
            batch shape.
        mask_index: The network's mask set to use (default: its selected one); the
            distribution evaluates that set without changing the network's selection.
        validate_args: Whether to validate values.

    Example:
        >>> from pyro_ar.nn import MaskedAutoencoder
        >>> network = MaskedAutoencoder(4, [8], context_features=2)
        >>> made = BernoulliMADE(network, context=torch.randn(3, 2))  # the context sets the batch
        >>> made.batch_shape, made.expand((5, 3)).sample().shape
        (torch.Size([3]), torch.Size([5, 3, 4]))
    """

    network: MaskedAutoencoder
    context: Tensor | None
    mask_index: int
    arg_constraints = {}  # the parameters live in the network (an nn.Module)

    def __init__(
        self,
        network: MaskedAutoencoder,
        context: Tensor | None = None,
        mask_index: int | None = None,
        validate_args: bool | None = None,
    ) -> None:
        self._initialize(self._bind(network, context, mask_index), validate_args)

    def _initialize(self, batch_shape: torch.Size, validate_args: bool | None) -> None:
        """The distribution base's own initialization, once the network is bound."""
        raise NotImplementedError

    def _bind(
        self, network: MaskedAutoencoder, context: Tensor | None, mask_index: int | None
    ) -> torch.Size:
        """Checks and stores the network, context and mask set; returns the batch shape."""
        owner = type(self).__name__
        self._check_network(network)
        if network.context_features and context is None:
            raise ValueError(f"{owner}: this MADE network is conditional, pass a context")
        index = network.current_mask if mask_index is None else int(mask_index)
        if not 0 <= index < network.num_masks:
            raise ValueError(
                f"{owner}: mask_index must lie in [0, {network.num_masks}), got {index}"
            )
        self.network, self.context, self.mask_index = network, context, index
        return context.shape[:-1] if context is not None else torch.Size()

    def _copy_binding(self, new, batch_shape: torch.Size) -> None:
        """The binding part of ``expand``: the same network and mask set, the context expanded."""
        new.network, new.mask_index = self.network, self.mask_index
        new.context = _expand_context(self.context, batch_shape)

    @classmethod
    def _check_network(cls, network: MaskedAutoencoder) -> None:
        """Raises unless the network has the outputs per dimension this likelihood needs."""
        raise NotImplementedError

    @property
    def _dtype(self) -> torch.dtype:
        return next(self.network.parameters()).dtype

    @property
    def _device(self) -> torch.device:
        return next(self.network.parameters()).device

    @property
    def _ordering_of_mask(self) -> list[int]:
        return self.network.orderings[self.mask_index].tolist()

    def _cast(self, value: Tensor) -> Tensor:
        """``value`` in the network's dtype and on its device."""
        return value.to(dtype=self._dtype, device=self._device)

    def _network_outputs(self, inputs: Tensor) -> Tensor:
        """One pass on ``inputs`` broadcast with the batch shape: shape ``(..., D, P)``."""
        shape = torch.broadcast_shapes(inputs.shape[:-1], self.batch_shape)
        context = _expand_context(self.context, shape)
        return self.network(inputs.expand(shape + self.event_shape), context, self.mask_index)

    def _incremental(self, shape: torch.Size, differentiable: bool = False):
        """An incremental pass over ``shape`` rows (the context expanded to them)."""
        context = _expand_context(self.context, shape)
        return self.network.incremental(shape, context, self.mask_index, differentiable)

    def _checked(self, log_prob: Tensor) -> Tensor:
        """``log_prob``, after naming a non-finite network parameter if it is not finite (under
        validation: one check of the result, the parameters are read only when it fails)."""
        if self._validate_args and log_prob.numel() and not bool(torch.isfinite(log_prob).all()):
            check_network(type(self).__name__, self.network)
        return log_prob

    def _draw(self, outputs: Tensor) -> Tensor:
        """One dimension's value, drawn from its ``P`` network outputs (shape ``(..., P)``)."""
        raise NotImplementedError

    def _network_input(self, value: Tensor) -> Tensor:
        """What the network sees of a value (the value itself unless overridden)."""
        return value

    def _sample_incrementally(self, sample_shape: torch.Size) -> Tensor:
        """Ancestral sampling in the mask set's ordering through an incremental pass: each step
        draws one dimension from its outputs (:meth:`_draw`) and feeds it back.

        Returns:
            Shape ``sample_shape + batch_shape + (D,)``, in the dtype that :meth:`_draw` gives.
        """
        shape = check_sample_shape(type(self).__name__, sample_shape) + self.batch_shape
        if self._validate_args:
            check_network(type(self).__name__, self.network)
        with torch.no_grad():
            state = self._incremental(shape)
            columns = {}
            for dim in self._ordering_of_mask:
                columns[dim] = self._draw(state.outputs(dim))
                state.advance(dim, self._network_input(columns[dim]))
        return torch.stack([columns[dim] for dim in range(self.event_shape[0])], dim=-1)


class MADEDistribution(MADENetworkBinding, TorchDistribution):
    """Base of the MADE distributions that are not binary (those are
    :class:`BernoulliMADE`, on the binary autoregressive contract).

    Example:
        >>> from pyro_ar.nn import MaskedAutoencoder
        >>> network = MaskedAutoencoder(3, [16], outputs_per_dim=2)  # mean, log-scale per dim
        >>> distribution = GaussianMADE(network)
        >>> isinstance(distribution, MADEDistribution), distribution.rsample((5,)).shape
        (True, torch.Size([5, 3]))
    """

    def _initialize(self, batch_shape: torch.Size, validate_args: bool | None) -> None:
        event_shape = torch.Size([self.network.num_dims])
        TorchDistribution.__init__(self, batch_shape, event_shape, validate_args)

    def expand(self, batch_shape: torch.Size, _instance=None):
        batch_shape = torch.Size(batch_shape)
        new = self._get_checked_instance(type(self), _instance)
        self._copy_binding(new, batch_shape)
        finish_expand(new, self, batch_shape)
        return new


class BernoulliMADE(MADENetworkBinding, BinaryAutoregressive):
    r"""MADE over binary vectors: :math:`p(x_d = 1 \mid x_{<d}) = \sigma(\ell_d(x))`, where
    :math:`\ell = f(x)` is a :class:`~pyro_ar.nn.MaskedAutoencoder` with one output per
    dimension, so :meth:`log_prob` is one network pass.

    Sampling is incremental: the first hidden layer's pre-activation is a running sum over the
    inputs drawn so far, and each step evaluates the upper layers and one output row only,
    instead of a full network pass per dimension.

    Arguments: as :class:`MADENetworkBinding`, with ``outputs_per_dim == 1``; the mask
    set's ordering is the distribution's.

    References:
        | MADE: Masked Autoencoder for Distribution Estimation (Germain et al., 2015)
        | https://arxiv.org/abs/1502.03509

    Example:
        >>> from pyro_ar.nn import MaskedAutoencoder
        >>> made = BernoulliMADE(MaskedAutoencoder(6, [16]))
        >>> made.log_prob(made.sample((3,))).shape
        torch.Size([3])
    """

    def _initialize(self, batch_shape: torch.Size, validate_args: bool | None) -> None:
        ordering = self.network.orderings[self.mask_index].to(self._device)
        BinaryAutoregressive.__init__(
            self, self.network.num_dims, batch_shape, ordering, self._device, validate_args
        )

    @classmethod
    def _check_network(cls, network: MaskedAutoencoder) -> None:
        if network.outputs_per_dim != 1:
            raise ValueError(
                f"BernoulliMADE needs one output per dimension, the network has "
                f"{network.outputs_per_dim}"
            )

    def expand(self, batch_shape: torch.Size, _instance: BernoulliMADE | None = None):
        new = self._get_checked_instance(BernoulliMADE, _instance)
        batch_shape = torch.Size(batch_shape)
        self._copy_binding(new, batch_shape)
        self._copy_base_into(new, batch_shape)
        return new

    def _ordered_logits(self, ordered_value: Tensor) -> Tensor:
        logits = self._network_outputs(self._from_ordering(ordered_value))[..., 0]
        return self._to_ordering(logits)

    def log_prob(self, value: Tensor) -> Tensor:
        r"""Exact log-probability :math:`\log p(x) = \sum_d x_d \ell_d - \log(1 + e^{\ell_d})`
        from one network pass.

        The sum runs over all dimensions at once, so unlike the generic autoregressive path
        no permutation into the ordering (and back) is needed.

        Arguments:
            value: Binary values, shape ``(..., D)``; ``bool``, integer or floating.

        Returns:
            Shape ``broadcast(value.shape[:-1], batch_shape)``.
        """
        value = self._prepare(value)
        logits = self._network_outputs(value)[..., 0]
        value = value.expand(logits.shape)
        log_prob = -F.binary_cross_entropy_with_logits(logits, value, reduction="none").sum(-1)
        return self._checked(log_prob)

    def _sampling_start(self, shape: torch.Size) -> dict:
        if self._validate_args:
            check_network("BernoulliMADE", self.network)
        return {"pass": self._incremental(shape), "order": self.ordering.tolist()}

    def _sampling_logit(self, state: dict, step: int) -> Tensor:
        return state["pass"].outputs(state["order"][step])[..., 0]

    def _sampling_advance(self, state: dict, step: int, value: Tensor) -> None:
        state["pass"].advance(state["order"][step], value)


class GaussianMADE(MADEDistribution):
    r"""MADE over real vectors with Gaussian conditionals (a reparameterizable guide):

    .. math:: x_d = \mu_d(x_{<d}) + \sigma_d(x_{<d})\, \epsilon_d, \qquad
       \epsilon \sim \mathcal{N}(0, I), \qquad
       \log p(x) = \sum_d \log \mathcal{N}(x_d; \mu_d, \sigma_d^2),

    with :math:`(\mu_d, \log \sigma_d)` the two outputs of a
    :class:`~pyro_ar.nn.MaskedAutoencoder` (``outputs_per_dim=2``). :meth:`log_prob` and
    :meth:`inverse` are one network pass; :meth:`rsample` runs :math:`D` steps, built out of
    place so gradients flow to the network, the context and the noise.

    Arguments: as :class:`MADENetworkBinding`, with ``outputs_per_dim == 2``.

    References:
        | MADE: Masked Autoencoder for Distribution Estimation (Germain et al., 2015)
        | https://arxiv.org/abs/1502.03509
        | Masked Autoregressive Flow for Density Estimation (Papamakarios et al., 2017)
        | https://arxiv.org/abs/1705.07057

    Example:
        >>> from pyro_ar.nn import MaskedAutoencoder
        >>> made = GaussianMADE(MaskedAutoencoder(3, [8], outputs_per_dim=2))
        >>> x = made.rsample((4,))  # differentiable in the network's parameters
        >>> torch.allclose(made.transform(made.inverse(x)), x, atol=1e-5)
        True
    """

    support = constraints.independent(constraints.real, 1)
    has_rsample = True

    @classmethod
    def _check_network(cls, network: MaskedAutoencoder) -> None:
        if network.outputs_per_dim != 2:
            raise ValueError(
                "GaussianMADE needs two outputs per dimension (mean, log-scale), the network "
                f"has {network.outputs_per_dim}"
            )

    def _validate_sample(self, value: Tensor) -> None:
        check_value_shape(self, value, "real")
        if not torch.isfinite(value).all():
            raise ValueError(f"{type(self).__name__}: value contains NaN or inf")

    def conditional_parameters(self, value: Tensor) -> tuple[Tensor, Tensor]:
        r""":math:`\mu_d(x_{<d})` and :math:`\log \sigma_d(x_{<d})` for all :math:`d`, each of
        shape ``broadcast(value.shape[:-1], batch_shape) + (D,)``."""
        out = self._network_outputs(self._cast(value))
        return out[..., 0], out[..., 1]

    def log_prob(self, value: Tensor) -> Tensor:
        """Exact log-density, shape ``broadcast(value.shape[:-1], batch_shape)``."""
        if self._validate_args:
            self._validate_sample(value)
        value = self._cast(value)
        mean, log_scale = self.conditional_parameters(value)
        standardized = (value - mean) * torch.exp(-log_scale)
        log_prob = (-0.5 * standardized**2 - log_scale - 0.5 * math.log(2 * math.pi)).sum(-1)
        return self._checked(log_prob)

    def inverse(self, value: Tensor) -> Tensor:
        r"""The noise :math:`\epsilon = (x - \mu(x)) / \sigma(x)` that :meth:`transform` maps to
        ``value``: one network pass."""
        value = self._cast(value)
        mean, log_scale = self.conditional_parameters(value)
        return (value - mean) * torch.exp(-log_scale)

    def transform(self, noise: Tensor) -> Tensor:
        r"""Maps standard-normal noise (shape ``(..., D)``, broadcast with ``batch_shape``) to a
        sample, one dimension at a time in the ordering, differentiably (an incremental pass
        built out of place)."""
        shape = torch.broadcast_shapes(noise.shape[:-1], self.batch_shape)
        noise = self._cast(noise).expand(shape + self.event_shape)
        state = self._incremental(shape, differentiable=True)
        columns = {}
        for dim in self._ordering_of_mask:
            mean, log_scale = state.outputs(dim).unbind(-1)
            columns[dim] = mean + torch.exp(log_scale) * noise[..., dim]
            state.advance(dim, columns[dim])
        return torch.stack([columns[dim] for dim in range(self.event_shape[0])], dim=-1)

    def rsample(self, sample_shape: torch.Size = torch.Size()) -> Tensor:
        """Reparameterized sample, shape ``sample_shape + batch_shape + (D,)``."""
        shape = self._extended_shape(check_sample_shape("GaussianMADE", sample_shape))
        return self.transform(torch.randn(shape, dtype=self._dtype, device=self._device))


class CategoricalMADE(MADEDistribution):
    r"""MADE over vectors of :math:`K`-way categories, :math:`x \in \{0, \ldots, K-1\}^D`
    (pixel intensities, small-vocabulary tokens):

    .. math:: p(x) = \prod_d \operatorname{softmax}(\ell_d(x))_{x_d},

    where the :math:`K` logits :math:`\ell_d` are the outputs of a
    :class:`~pyro_ar.nn.MaskedAutoencoder` with ``outputs_per_dim=K``. The network sees each
    value scaled to :math:`[0, 1]`, :math:`x_d / (K - 1)`, so its input stays :math:`D` wide.
    :meth:`log_prob` is one pass; sampling is incremental (one input column per step).

    Arguments: as :class:`MADENetworkBinding`, with ``outputs_per_dim == K >= 2``.

    References:
        | MADE: Masked Autoencoder for Distribution Estimation (Germain et al., 2015)
        | https://arxiv.org/abs/1502.03509

    Example:
        >>> from pyro_ar.nn import MaskedAutoencoder
        >>> made = CategoricalMADE(MaskedAutoencoder(3, [8], outputs_per_dim=4))
        >>> x = made.sample((2,))
        >>> x.dtype, x.shape, bool(((x >= 0) & (x < 4)).all())
        (torch.int64, torch.Size([2, 3]), True)
    """

    has_enumerate_support = False

    @classmethod
    def _check_network(cls, network: MaskedAutoencoder) -> None:
        if network.outputs_per_dim < 2:
            raise ValueError("CategoricalMADE needs outputs_per_dim = K >= 2 categories")

    @property
    def num_categories(self) -> int:
        """The number :math:`K` of categories per dimension."""
        return self.network.outputs_per_dim

    @constraints.dependent_property(is_discrete=True, event_dim=1)
    def support(self):
        return constraints.independent(constraints.integer_interval(0, self.num_categories - 1), 1)

    def _validate_sample(self, value: Tensor) -> None:
        check_value_shape(self, value, f"{self.num_categories}-way categorical")
        name = type(self).__name__
        if value.is_floating_point() and torch.isnan(value).any():
            raise ValueError(f"{name}: value contains NaN")
        invalid = (value < 0) | (value > self.num_categories - 1) | (value != value.round())
        if invalid.any():
            example = value[invalid].flatten()[0].item()
            raise ValueError(
                f"{name}: values must be integers in [0, {self.num_categories - 1}], found "
                f"{example!r}"
            )

    def _scaled(self, value: Tensor) -> Tensor:
        return value.to(self._dtype) / (self.num_categories - 1)

    def conditional_logits(self, value: Tensor) -> Tensor:
        """The :math:`K` logits of every conditional, shape
        ``broadcast(value.shape[:-1], batch_shape) + (D, K)``."""
        if self._validate_args:
            self._validate_sample(value)
        return self._network_outputs(self._scaled(value))

    def log_prob(self, value: Tensor) -> Tensor:
        """Exact log-probability, shape ``broadcast(value.shape[:-1], batch_shape)``."""
        logits = self.conditional_logits(value)
        index = value.long().expand(logits.shape[:-1]).unsqueeze(-1)
        log_prob = logits.log_softmax(-1).gather(-1, index).squeeze(-1).sum(-1)
        return self._checked(log_prob)

    def _draw(self, outputs: Tensor) -> Tensor:
        # the network's outputs are finite logits: torch's validation would only fail on an
        # empty batch
        return torch.distributions.Categorical(logits=outputs, validate_args=False).sample()

    _network_input = _scaled

    def sample(self, sample_shape: torch.Size = torch.Size()) -> Tensor:
        """Ancestral sampling with the incremental first layer.

        Returns:
            ``long`` values, shape ``sample_shape + batch_shape + (D,)``.
        """
        return self._sample_incrementally(sample_shape)


class MixtureOfGaussiansMADE(MADEDistribution):
    r"""MADE-MoG: each conditional is a mixture of :math:`C` Gaussians,

    .. math:: p(x_d \mid x_{<d}) = \sum_{c=1}^{C} \pi_{dc}\,
       \mathcal{N}(x_d; \mu_{dc}, \sigma_{dc}^2),

    with :math:`(\operatorname{logit} \pi, \mu, \log \sigma)` the :math:`3C` outputs per
    dimension of a :class:`~pyro_ar.nn.MaskedAutoencoder` (``outputs_per_dim = 3C``, in that
    order). A flexible real-valued likelihood; :meth:`log_prob` is one pass, sampling is
    incremental (not reparameterized: use :class:`GaussianMADE` for guides).

    Arguments: as :class:`MADENetworkBinding`, with ``outputs_per_dim = 3C``.

    References:
        | MADE: Masked Autoencoder for Distribution Estimation (Germain et al., 2015)
        | RNADE: The real-valued neural autoregressive density-estimator (Uria et al., 2013)
        | https://arxiv.org/abs/1306.0186

    Example:
        >>> from pyro_ar.nn import MaskedAutoencoder
        >>> made = MixtureOfGaussiansMADE(MaskedAutoencoder(3, [8], outputs_per_dim=6))
        >>> made.num_components, made.log_prob(made.sample((5,))).shape
        (2, torch.Size([5]))
    """

    support = constraints.independent(constraints.real, 1)

    @classmethod
    def _check_network(cls, network: MaskedAutoencoder) -> None:
        if network.outputs_per_dim % 3 or network.outputs_per_dim < 3:
            raise ValueError(
                "MixtureOfGaussiansMADE needs outputs_per_dim = 3 * components (mixture logits, "
                f"means, log-scales), got {network.outputs_per_dim}"
            )

    @property
    def num_components(self) -> int:
        """The number :math:`C` of mixture components per conditional."""
        return self.network.outputs_per_dim // 3

    _validate_sample = GaussianMADE._validate_sample

    def _split(self, out: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        logits, means, log_scales = out.split(self.num_components, dim=-1)
        return logits.log_softmax(-1), means, log_scales

    def conditional_parameters(self, value: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        r"""Log mixture weights, means and log-scales of every conditional, each of shape
        ``broadcast(value.shape[:-1], batch_shape) + (D, C)``."""
        return self._split(self._network_outputs(self._cast(value)))

    def log_prob(self, value: Tensor) -> Tensor:
        """Exact log-density, shape ``broadcast(value.shape[:-1], batch_shape)``."""
        if self._validate_args:
            self._validate_sample(value)
        value = self._cast(value)
        log_weights, means, log_scales = self.conditional_parameters(value)
        standardized = (value.unsqueeze(-1) - means) * torch.exp(-log_scales)
        component = -0.5 * standardized**2 - log_scales - 0.5 * math.log(2 * math.pi)
        log_prob = (log_weights + component).logsumexp(-1).sum(-1)
        return self._checked(log_prob)

    def _draw(self, outputs: Tensor) -> Tensor:
        log_weights, means, log_scales = self._split(outputs)
        pick = torch.distributions.Categorical(logits=log_weights, validate_args=False).sample()
        pick = pick.unsqueeze(-1)
        mean = means.gather(-1, pick).squeeze(-1)
        scale = log_scales.gather(-1, pick).squeeze(-1).exp()
        return mean + scale * torch.randn_like(mean)

    def sample(self, sample_shape: torch.Size = torch.Size()) -> Tensor:
        """Ancestral sampling with the incremental first layer, shape
        ``sample_shape + batch_shape + (D,)``."""
        return self._sample_incrementally(sample_shape)


class MADEEnsemble(TorchDistribution):
    r"""The ensemble of a MADE network's mask sets: the uniform mixture

    .. math:: p(x) = \frac{1}{M} \sum_{m=1}^{M} p_m(x), \qquad
       \log p(x) = \operatorname{logsumexp}_m \log p_m(x) - \log M,

    where :math:`p_m` is the MADE distribution (``component``: :class:`BernoulliMADE`,
    :class:`CategoricalMADE`, :class:`GaussianMADE` or :class:`MixtureOfGaussiansMADE`) of
    mask set :math:`m`. This is a normalized density; averaging the *logits* over masks (as
    some code does) is not.

    :meth:`log_prob` costs :math:`M` network passes; :meth:`sample` draws a mask set per sample
    and runs that set's incremental sampler on the samples that chose it.

    Arguments:
        network: A :class:`~pyro_ar.nn.MaskedAutoencoder` with several mask sets.
        context: Optional context, shape ``batch_shape + (context_features,)``.
        component: The MADE distribution class of each mask set.
        validate_args: Whether to validate values.

    References:
        | MADE: Masked Autoencoder for Distribution Estimation (Germain et al., 2015)
        | https://arxiv.org/abs/1502.03509

    Example:
        >>> from pyro_ar.nn import MaskedAutoencoder
        >>> ensemble = MADEEnsemble(MaskedAutoencoder(5, [16], num_masks=3, order_agnostic=True))
        >>> states = ensemble.components[0].enumerate_support()  # all 2^5 binary vectors
        >>> abs(ensemble.log_prob(states).logsumexp(0).item()) < 1e-5  # a normalized mixture
        True
    """

    arg_constraints = {}
    has_enumerate_support = False

    def __init__(
        self,
        network: MaskedAutoencoder,
        context: Tensor | None = None,
        component: type = BernoulliMADE,
        validate_args: bool | None = None,
    ) -> None:
        self.network = network
        self.context = context
        self.component = component
        self.components = [
            component(network, context, index, validate_args=False)
            for index in range(network.num_masks)
        ]
        batch_shape = context.shape[:-1] if context is not None else torch.Size()
        super().__init__(batch_shape, torch.Size([network.num_dims]), validate_args)

    def expand(self, batch_shape: torch.Size, _instance: MADEEnsemble | None = None):
        batch_shape = torch.Size(batch_shape)
        context = _expand_context(self.context, batch_shape)
        new = self._get_checked_instance(MADEEnsemble, _instance)
        new.network, new.context, new.component = self.network, context, self.component
        new.components = [component.expand(batch_shape) for component in self.components]
        finish_expand(new, self, batch_shape)
        return new

    @constraints.dependent_property(event_dim=1)
    def support(self):
        return self.components[0].support

    def _validate_sample(self, value: Tensor) -> None:
        self.components[0]._validate_sample(value)

    def log_prob(self, value: Tensor) -> Tensor:
        """Log-density of the mixture, shape ``broadcast(value.shape[:-1], batch_shape)``."""
        if self._validate_args:
            self._validate_sample(value)
        per_mask = torch.stack([component.log_prob(value) for component in self.components])
        log_prob = per_mask.logsumexp(0) - math.log(len(self.components))
        if self._validate_args and not bool(torch.isfinite(log_prob).all()):
            check_network("MADEEnsemble", self.network)
        return log_prob

    def sample(self, sample_shape: torch.Size = torch.Size()) -> Tensor:
        """Draws a mask set uniformly per sample, then a sample from that set's model.

        Returns:
            Shape ``sample_shape + batch_shape + (D,)``.
        """
        shape = check_sample_shape("MADEEnsemble", sample_shape) + self.batch_shape
        first = self.components[0]
        out = None
        choice = torch.randint(len(self.components), shape, device=first._device)
        context = _expand_context(self.context, shape)
        with torch.no_grad():
            for index in range(len(self.components)):
                chosen = choice == index
                count = int(chosen.sum())
                if count == 0:
                    continue
                if context is None:
                    # without a context every batch member is the same model: draw the chosen
                    # ones from the unexpanded mask-set model
                    unbatched = self.component(self.network, None, index, validate_args=False)
                    draws = unbatched.sample((count,))
                else:
                    draws = self.component(self.network, context[chosen], index).sample()
                if out is None:
                    out = draws.new_empty(shape + self.event_shape)
                out[chosen] = draws
        if out is None:  # a sample shape with no elements
            out = first.sample(torch.Size(sample_shape))
        return out
