r"""PixelCNN: autoregressive distributions over images, in raster order, by masked convolutions.

For an image :math:`x \in \{0, \ldots, K-1\}^{C \times H \times W}`

.. math:: p(x \mid h, s) = \prod_{i=1}^{H} \prod_{j=1}^{W} \prod_{c=1}^{C}
   p(x_{c,i,j} \mid x_{\cdot, <(i,j)},\, x_{<c,\,i,j},\, h, s),

rows top to bottom, pixels left to right, channels :math:`R \to G \to B` within a pixel,
optionally given a context vector :math:`h` (a class, a VAE latent) and a spatial map
:math:`s`. Each conditional is a Bernoulli (:math:`K = 2`), a categorical over :math:`K`
levels, or the discretized logistic mixture of PixelCNN++ (for 8-bit data,
:math:`p(x) = \sum_m \pi_m [\sigma((\tilde x + \delta - \mu_m)/s_m) - \sigma((\tilde x -
\delta - \mu_m)/s_m)]` on the encoding :math:`\tilde x = 2x/(K-1) - 1` with
:math:`\delta = 1/(K-1)`, the end bins open), read off one pass of an
:class:`~pyro_ar.nn.image_network.ImageAutoregressiveNetwork`
(:class:`~pyro_ar.nn.PixelCNNNetwork`, :class:`~pyro_ar.nn.GatedPixelCNNNetwork`).

References:
    | Pixel Recurrent Neural Networks (van den Oord, Kalchbrenner & Kavukcuoglu, 2016)
    | https://arxiv.org/abs/1601.06759
    | Conditional Image Generation with PixelCNN Decoders (van den Oord et al., 2016)
    | https://arxiv.org/abs/1606.05328
    | Fast Generation for Convolutional Autoregressive Models (Ramachandran et al., 2017)
    | https://arxiv.org/abs/1704.06001
    | PixelCNN++ (Salimans, Karpathy, Chen & Kingma, 2017) https://arxiv.org/abs/1701.05517
"""

from __future__ import annotations

__all__ = ["LOG_SCALE_MIN", "PixelCNN", "SAMPLERS"]

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from pyro.distributions import TorchDistribution
from torch import Tensor
from torch.distributions import constraints

from .validation import (
    check_binary_values,
    check_partially_observed,
    check_sample_shape,
    finish_expand,
    initialize_distribution,
)

if TYPE_CHECKING:
    from ..nn.image_network import ImageAutoregressiveNetwork

#: The smallest log-scale of a logistic-mixture component (PixelCNN++ clamps at -7 too): the
#: bins of 8-bit data are 2/255 wide, so narrower components add nothing but instability.
LOG_SCALE_MIN = -7.0

#: ``"cached"``: per-layer caches, each step computes one pixel's outputs; ``"naive"``: one full
#: network pass per generated entry (the reference the cached sampler is tested against).
SAMPLERS = ("cached", "naive")


class PixelCNN(TorchDistribution):
    r"""A distribution over images ``(C, H, W)`` given by a PixelCNN network (see the module
    docstring).

    * :meth:`log_prob` is one network pass; it returns ``broadcast(value.shape[:-3],
      batch_shape)``. Values may be ``bool``, integer or floating (levels :math:`0..K-1`).
    * :meth:`sample` is exact ancestral sampling, with per-layer caches (``sampler="cached"``)
      or one full pass per entry (``"naive"``); both turn the same random numbers into the
      same images.
    * :meth:`sample_conditional` inpaints: observed entries fixed, missing ones drawn in raster
      order (exact when the observed entries come first, e.g. the top rows).

    Arguments:
        network: An :class:`~pyro_ar.nn.image_network.ImageAutoregressiveNetwork`.
        context: Context vectors ``batch_shape + (F,)`` if the network takes them.
        spatial_context: Spatial maps ``batch_shape + (S, H, W)`` if the network takes them.
        validate_args: Whether to validate values.

    Example:
        >>> from pyro_ar.nn import GatedPixelCNNNetwork
        >>> network = GatedPixelCNNNetwork((1, 4, 4), hidden_channels=8, num_layers=2)
        >>> images = PixelCNN(network).sample((3,))
        >>> images.shape, PixelCNN(network).log_prob(images).shape
        (torch.Size([3, 1, 4, 4]), torch.Size([3]))
    """

    arg_constraints = {}  # the parameters live in the network (an nn.Module)
    has_enumerate_support = False

    def __init__(
        self,
        network: ImageAutoregressiveNetwork,
        context: Tensor | None = None,
        spatial_context: Tensor | None = None,
        validate_args: bool | None = None,
    ) -> None:
        network.check_conditioning(context, spatial_context, "PixelCNN")
        shapes = []
        if context is not None:
            shapes.append(context.shape[:-1])
        if spatial_context is not None:
            shapes.append(spatial_context.shape[:-3])
        try:
            batch_shape = torch.broadcast_shapes(*shapes) if shapes else torch.Size()
        except RuntimeError:
            raise ValueError(
                f"PixelCNN: the batch shapes of context {tuple(shapes[0])} and spatial context "
                f"{tuple(shapes[1])} do not broadcast"
            ) from None
        self.network = network
        self.context = context
        self.spatial_context = spatial_context
        initialize_distribution(self, batch_shape, torch.Size(network.image_shape), validate_args)

    @constraints.dependent_property(is_discrete=True, event_dim=3)
    def support(self):
        if self.network.likelihood == "bernoulli":
            return constraints.independent(constraints.boolean, 3)
        return constraints.independent(constraints.integer_interval(0, self.num_levels - 1), 3)

    @property
    def num_levels(self) -> int:
        """:math:`K`, the values each entry takes."""
        return self.network.num_levels

    def expand(self, batch_shape: torch.Size, _instance: PixelCNN | None = None) -> PixelCNN:
        """The distribution with batch shape ``batch_shape``: the same network, the contexts
        expanded (views, no copies)."""
        new = self._get_checked_instance(PixelCNN, _instance)
        batch_shape = torch.Size(batch_shape)
        new.network = self.network
        new.context = (
            None
            if self.context is None
            else self.context.expand(batch_shape + self.context.shape[-1:])
        )
        new.spatial_context = (
            None
            if self.spatial_context is None
            else self.spatial_context.expand(batch_shape + self.spatial_context.shape[-3:])
        )
        finish_expand(new, self, batch_shape)
        return new

    # ------------------------------------------------------------------ helpers

    @property
    def _parameter(self) -> Tensor:
        return next(self.network.parameters())

    def _validate_sample(self, value: Tensor) -> None:
        name = type(self).__name__
        if not isinstance(value, Tensor):
            raise ValueError(f"{name} expects a tensor value, got {type(value).__name__}")
        event = tuple(self.event_shape)
        if value.dim() < 3 or tuple(value.shape[-3:]) != event:
            raise ValueError(
                f"{name} is over images of shape (C, H, W) = {event}, so a value must have "
                f"shape (..., {', '.join(map(str, event))}); got {tuple(value.shape)}"
            )
        try:
            torch.broadcast_shapes(value.shape[:-3], self.batch_shape)
        except RuntimeError:
            raise ValueError(
                f"{name}: value batch shape {tuple(value.shape[:-3])} does not broadcast with "
                f"the batch_shape {tuple(self.batch_shape)}"
            ) from None
        self._check_levels(value)

    def _check_levels(self, value: Tensor) -> None:
        name = type(self).__name__
        if self.network.likelihood == "bernoulli":
            check_binary_values(name, value)
            return
        if value.dtype == torch.bool:
            return
        if value.is_floating_point() and bool(torch.isnan(value).any()):
            raise ValueError(f"{name}: value contains NaN")
        top = self.num_levels - 1
        invalid = (value < 0) | (value > top)
        if value.is_floating_point():
            invalid = invalid | (value != value.round())
        if bool(invalid.any()):
            example = value[invalid].flatten()[0].item()
            raise ValueError(
                f"{name}: values must be integer levels in [0, {top}], found {example!r} "
                f"({int(invalid.sum())} invalid entries)"
            )

    def _flat_conditioning(self, shape: torch.Size) -> tuple[Tensor | None, Tensor | None]:
        """The contexts expanded to ``shape`` and flattened to one batch dimension."""
        context = spatial = None
        if self.context is not None:
            features = self.context.shape[-1]
            context = self.context.expand(shape + (features,)).reshape(-1, features)
        if self.spatial_context is not None:
            map_shape = self.spatial_context.shape[-3:]
            spatial = self.spatial_context.expand(shape + map_shape).reshape((-1,) + map_shape)
        return context, spatial

    def _prepare(self, value: Tensor) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        parameter = self._parameter
        value = value.to(dtype=parameter.dtype, device=parameter.device)
        shape = torch.broadcast_shapes(value.shape[:-3], self.batch_shape)
        return value.expand(shape + self.event_shape)

    def _level_log_probs(self, logits: Tensor, value: Tensor, dim: int) -> Tensor:
        r""":math:`\log p(x_e \mid \ldots)` of levels ``value`` from the network outputs
        ``logits``, which hold the :math:`P` outputs of each entry along ``dim`` (``value`` has
        the shape of ``logits`` without it)."""
        likelihood = self.network.likelihood
        if likelihood == "bernoulli":
            logit = logits.select(dim, 0)
            return -F.binary_cross_entropy_with_logits(logit, value, reduction="none")
        if likelihood == "categorical":
            log_probs = torch.log_softmax(logits, dim=dim)
            return log_probs.gather(dim, value.long().unsqueeze(dim)).squeeze(dim)
        weights, means, log_scales = logits.chunk(3, dim)
        log_scales = log_scales.clamp(min=LOG_SCALE_MIN)
        inverse_scales = torch.exp(-log_scales)
        centre = self.network.encode(value).unsqueeze(dim)
        half_bin = 1.0 / (self.num_levels - 1)
        upper = inverse_scales * (centre - means + half_bin)
        lower = inverse_scales * (centre - means - half_bin)
        # log(sigmoid(a) - sigmoid(b)) = log sigmoid(a) + log sigmoid(-b) + log(1 - e^(b - a)),
        # stable for every a > b; the end bins reach to -inf and +inf
        inner = (
            F.logsigmoid(upper)
            + F.logsigmoid(-lower)
            + torch.log(-torch.expm1(-2 * half_bin * inverse_scales))
        )
        first = (centre == -1.0).expand_as(inner)
        last = (centre == 1.0).expand_as(inner)
        log_bins = torch.where(
            first, F.logsigmoid(upper), torch.where(last, F.logsigmoid(-lower), inner)
        )
        return torch.logsumexp(torch.log_softmax(weights, dim=dim) + log_bins, dim=dim)

    # ------------------------------------------------------------------ public API

    def conditional_logits(self, value: Tensor) -> Tensor:
        r"""The logits of every conditional for given images, in one network pass.

        Entry ``[..., :, c, i, j]`` depends only on the entries before :math:`(c, i, j)` in
        raster order.

        Arguments:
            value: Images ``(..., C, H, W)`` of levels.

        Returns:
            Shape ``broadcast(value.shape[:-3], batch_shape) + (P, C, H, W)``: :math:`P = 1`
            logit of :math:`x = 1` for binary images, else the :math:`K` categorical logits.
        """
        value = self._prepare(value)
        shape = value.shape[:-3]
        context, spatial = self._flat_conditioning(shape)
        logits = self.network(value.reshape((-1,) + self.event_shape), context, spatial)
        return logits.reshape(shape + logits.shape[1:])

    def log_prob(self, value: Tensor) -> Tensor:
        r"""Exact :math:`\log p(x) = \sum_{c,i,j} \log p(x_{c,i,j} \mid x_{<(c,i,j)})`, one pass.

        Arguments:
            value: Images ``(..., C, H, W)``: levels :math:`0..K-1` (``bool``, integer or
                floating).

        Returns:
            Shape ``broadcast(value.shape[:-3], batch_shape)``, in the parameters' dtype.
        """
        value = self._prepare(value)
        shape = value.shape[:-3]
        context, spatial = self._flat_conditioning(shape)
        flat = value.reshape((-1,) + self.event_shape)
        logits = self.network(flat, context, spatial)
        entries = self._level_log_probs(logits, flat, dim=1)
        log_prob = entries.sum((-3, -2, -1)).reshape(shape)
        if self._validate_args and log_prob.numel() and not bool(torch.isfinite(log_prob).all()):
            for name, parameter in self.network.named_parameters():
                if not bool(torch.isfinite(parameter).all()):
                    raise ValueError(f"PixelCNN: network parameter {name} is not finite")
        return log_prob

    def sample(self, sample_shape: torch.Size = torch.Size(), sampler: str = "cached") -> Tensor:
        """Exact ancestral sampling in raster order, the whole batch at once.

        Arguments:
            sample_shape: Leading shape of the samples.
            sampler: ``"cached"`` (per-layer caches: each step computes one pixel's outputs)
                or ``"naive"`` (a full network pass per entry); the same random numbers give
                the same images under both.

        Returns:
            Shape ``sample_shape + batch_shape + (C, H, W)``: 0.0/1.0 in the parameters' dtype
            for binary images, ``long`` levels otherwise.
        """
        shape = check_sample_shape("PixelCNN", sample_shape) + self.batch_shape
        with torch.no_grad():
            return self._generate(shape, sampler)[0]

    def sample_conditional(
        self,
        observed: Tensor,
        mask: Tensor,
        sample_shape: torch.Size = torch.Size(),
        return_log_weights: bool = False,
        sampler: str = "cached",
    ) -> Tensor | tuple[Tensor, Tensor]:
        r"""Inpainting: samples the entries where ``mask`` is false, keeps the observed ones.

        Entries are visited in raster order; an observed entry takes its value, a missing one
        is drawn from its conditional given everything before it. When the observed entries
        come first in raster order (e.g. the top rows of the image), the result is an exact
        sample of :math:`p(x_\text{missing} \mid x_\text{observed})`. Otherwise it ignores the
        evidence of observed entries that come after a missing one: it is a draw from the
        proposal :math:`q(x_m) = \prod_{e \in m} p(x_e \mid x_{<e})`, and
        ``return_log_weights=True`` returns the importance log-weights :math:`\log w =
        \sum_{e \in o} \log p(x_e \mid x_{<e})` that make self-normalized resampling consistent.

        Arguments:
            observed: Images ``(..., C, H, W)``; entries where ``mask`` is false are ignored
                (they may be NaN).
            mask: Boolean ``(..., C, H, W)``, true where observed.
            sample_shape: Leading shape of independent completions.
            return_log_weights: Also return the log-weights.
            sampler: As in :meth:`sample`.

        Returns:
            Images ``sample_shape + shape + (C, H, W)``, where ``shape`` broadcasts
            ``batch_shape``, ``observed.shape[:-3]`` and ``mask.shape[:-3]``, and the log-weights
            ``sample_shape + shape``.
        """
        name = "PixelCNN.sample_conditional"
        observed, mask = check_partially_observed(
            name, observed, mask, self.event_shape, self._parameter.device
        )
        if self._validate_args:
            self._check_levels(observed)
        batch = torch.broadcast_shapes(self.batch_shape, observed.shape[:-3], mask.shape[:-3])
        shape = check_sample_shape("PixelCNN", sample_shape) + batch
        with torch.no_grad():
            images, log_weights = self._generate(
                shape,
                sampler,
                observed.to(self._parameter.dtype).expand(shape + self.event_shape),
                mask.expand(shape + self.event_shape),
            )
        return (images, log_weights) if return_log_weights else images

    # ------------------------------------------------------------------ the samplers

    def _noise(self, count: int) -> Tensor:
        """The random numbers of ``count`` images, ``(N, Q, C, H, W)``, drawn in one call so
        that both samplers see the same ones: logistic noise (:math:`Q = 1`) for binary images
        (:math:`x = 1` iff logit + noise > 0 is exact Bernoulli sampling), Gumbel noise
        (:math:`Q = K`) for a categorical (the arg-max of logits + noise is an exact draw), and
        for a logistic mixture :math:`M` Gumbel draws that pick the component and one logistic
        draw of its value (:math:`Q = M + 1`)."""
        parameter = self._parameter
        likelihood = self.network.likelihood
        per_entry = {
            "bernoulli": 1,
            "categorical": self.num_levels,
            "logistic_mixture": self.network.num_components + 1,
        }[likelihood]
        uniform = torch.rand(
            (count, per_entry) + self.event_shape, dtype=parameter.dtype, device=parameter.device
        )
        if likelihood == "bernoulli":
            return uniform.log() - torch.log1p(-uniform)
        tiny = torch.finfo(parameter.dtype).tiny
        gumbel = -torch.log(-torch.log(uniform.clamp_min(tiny)))
        if likelihood == "categorical":
            return gumbel
        logistic = uniform[:, -1:].log() - torch.log1p(-uniform[:, -1:])
        return torch.cat([gumbel[:, :-1], logistic], dim=1)

    def _draw(self, logits: Tensor, noise: Tensor) -> Tensor:
        """One entry's levels ``(N,)`` from its outputs ``(N, P)`` and noise ``(N, Q)``."""
        dtype = self._parameter.dtype
        likelihood = self.network.likelihood
        if likelihood == "bernoulli":
            return (logits[:, 0] + noise[:, 0] > 0).to(dtype)
        if likelihood == "categorical":
            return (logits + noise).argmax(-1).to(dtype)
        weights, means, log_scales = logits.chunk(3, -1)
        component = (weights + noise[:, :-1]).argmax(-1, keepdim=True)
        mean = means.gather(-1, component)[:, 0]
        scale = log_scales.clamp(min=LOG_SCALE_MIN).gather(-1, component)[:, 0].exp()
        continuous = (mean + scale * noise[:, -1]).clamp(-1.0, 1.0)
        # the level whose bin holds the draw: bins of width 2 / (K - 1) around the levels
        return torch.round((continuous + 1.0) * (self.num_levels - 1) / 2).to(dtype)

    def _generate(
        self,
        shape: torch.Size,
        sampler: str,
        observed: Tensor | None = None,
        mask: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        if sampler not in SAMPLERS:
            raise ValueError(f"PixelCNN: sampler must be one of {SAMPLERS}, got {sampler!r}")
        parameter = self._parameter
        count = math.prod(shape)
        channels, height, width = self.event_shape
        noise = self._noise(count)
        context, spatial = self._flat_conditioning(shape)
        if observed is not None:
            observed = observed.reshape((count,) + self.event_shape)
            mask = mask.reshape((count,) + self.event_shape)
        images = torch.zeros(
            (count,) + self.event_shape, dtype=parameter.dtype, device=parameter.device
        )
        log_weights = torch.zeros(count, dtype=parameter.dtype, device=parameter.device)
        if count == 0:
            return self._finish(images, shape), log_weights.reshape(shape)
        state = self.network.incremental(count, context, spatial) if sampler == "cached" else None
        for row in range(height):
            for column in range(width):
                for channel in range(channels):
                    if state is not None:
                        logits = state.logits_at(row, column)[:, :, channel]
                    else:
                        logits = self.network(images, context, spatial)[:, :, channel, row, column]
                    value = self._draw(logits, noise[:, :, channel, row, column])
                    if mask is not None:
                        given = mask[:, channel, row, column]
                        level = observed[:, channel, row, column]
                        term = self._level_log_probs(logits, level, dim=-1)
                        log_weights = log_weights + torch.where(
                            given, term, torch.zeros_like(term)
                        )
                        value = torch.where(given, level, value)
                    images[:, channel, row, column] = value
                    if state is not None:
                        state.write(row, column, channel, value)
        return self._finish(images, shape), log_weights.reshape(shape)

    def _finish(self, images: Tensor, shape: torch.Size) -> Tensor:
        if self.network.likelihood != "bernoulli":  # integer levels, as torch's Categorical
            images = images.long()
        return images.reshape(shape + self.event_shape)
