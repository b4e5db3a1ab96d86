r"""The contract of the networks behind :class:`~pyro_ar.distributions.PixelCNN`.

An image network maps an image :math:`x \in \{0, \ldots, K-1\}^{C \times H \times W}` (and an
optional context vector :math:`h` and spatial map :math:`s`) to the logits of every conditional

.. math:: p(x_{c,i,j} \mid x_{<(c,i,j)}, h, s),

where :math:`<(c, i, j)` means earlier in raster order (rows top to bottom, pixels left to
right, channels :math:`R \to G \to B` within a pixel), in one pass. Written once here:

* the input encoding :math:`2x/(K-1) - 1` (a level, not its one-hot code);
* the output layout ``(N, P, C, H, W)``: :math:`P = 1` logit of :math:`x = 1` for binary
  images (:math:`K = 2`), :math:`P = K` logits of a categorical, or :math:`P = 3M` parameters
  of a discretized logistic mixture (PixelCNN++: each level :math:`x` owns the bin
  :math:`[\tilde x - \frac{1}{K-1}, \tilde x + \frac{1}{K-1}]` of its encoding
  :math:`\tilde x`, the end bins reaching to :math:`\pm\infty`);
* the conditioning projections (:class:`ConditioningProjection`) and the output head
  (:class:`OutputHead`), shared by both architectures;
* the incremental pass (:class:`IncrementalImagePass`) that the cached sampler drives: each
  step computes only the network outputs at the next pixel, from per-layer caches of what is
  already known, instead of a full pass per pixel.

A subclass implements :meth:`ImageAutoregressiveNetwork.features` (the causal stack, input
encoded, output before the head) and :meth:`ImageAutoregressiveNetwork.incremental`.

References:
    | Pixel Recurrent Neural Networks (van den Oord, Kalchbrenner & Kavukcuoglu, 2016)
    | https://arxiv.org/abs/1601.06759
    | Fast Generation for Convolutional Autoregressive Models (Ramachandran et al., 2017)
    | https://arxiv.org/abs/1704.06001
    | PixelCNN++: Improving the PixelCNN with Discretized Logistic Mixture Likelihood and Other
      Modifications (Salimans et al., 2017) https://arxiv.org/abs/1701.05517
"""

from __future__ import annotations

__all__ = [
    "ConditioningProjection",
    "conditioning_at",
    "pointwise_channel_mask",
    "ImageAutoregressiveNetwork",
    "IncrementalImagePass",
    "OutputHead",
    "check_image_shape",
]

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .masked_convolution import MaskedConv2d, channel_group_mask


def check_image_shape(owner: str, image_shape: Sequence[int] | int) -> tuple[int, int, int]:
    """``image_shape`` as ``(C, H, W)``; an integer :math:`D` is a square one-channel image.

    Raises:
        ValueError: naming the owner and what was given.

    Example:
        >>> check_image_shape("PixelCNN", 784), check_image_shape("PixelCNN", (3, 4, 5))
        ((1, 28, 28), (3, 4, 5))
    """
    if isinstance(image_shape, int) and not isinstance(image_shape, bool):
        side = round(image_shape**0.5)
        if image_shape < 1 or side * side != image_shape:
            raise ValueError(
                f"{owner}: an integer image_shape must be a square number of pixels (one "
                f"channel), got {image_shape}; pass (C, H, W) otherwise"
            )
        return (1, side, side)
    shape = tuple(image_shape)
    if len(shape) != 3 or any(
        isinstance(size, bool) or not isinstance(size, int) or size < 1 for size in shape
    ):
        raise ValueError(
            f"{owner}: image_shape must be (C, H, W) positive integers, got {image_shape!r}"
        )
    return shape


def pointwise_channel_mask(out_features: int, in_features: int, data_channels: int) -> Tensor:
    """The mask ``(out, in, 1, 1)`` of a causal 1x1 convolution: channel mask ``"B"``.

    Example:
        >>> pointwise_channel_mask(2, 2, 2)[:, :, 0, 0].int().tolist()
        [[1, 0], [1, 1]]
    """
    return channel_group_mask(out_features, in_features, data_channels, "B")[:, :, None, None]


class ConditioningProjection(nn.Module):
    r"""The conditioning term of one layer: :math:`V h + U * s`, a per-image bias from a context
    vector :math:`h` (linear) plus a per-pixel bias from a spatial map :math:`s` (1x1
    convolution). Neither depends on the image, so neither can break causality.

    Shapes:
        ``context (N, F)``, ``spatial (N, S, H, W)`` -> ``(N, out, 1, 1)``, ``(N, out, H, W)``
        or ``None`` when the network has neither.

    Example:
        >>> projection = ConditioningProjection(3, 0, 8)
        >>> projection(torch.randn(2, 3), None).shape
        torch.Size([2, 8, 1, 1])
    """

    def __init__(self, context_features: int, spatial_channels: int, out_features: int) -> None:
        super().__init__()
        self.context = (
            nn.Linear(context_features, out_features, bias=False) if context_features else None
        )
        self.spatial = (
            nn.Conv2d(spatial_channels, out_features, 1, bias=False) if spatial_channels else None
        )

    def forward(self, context: Tensor | None, spatial: Tensor | None) -> Tensor | None:
        total = None
        if self.context is not None:
            total = self.context(context)[:, :, None, None]
        if self.spatial is not None:
            term = self.spatial(spatial)
            total = term if total is None else total + term
        return total


def conditioning_at(term: Tensor | None, row: int, column: int | None = None) -> Tensor | int:
    """A :class:`ConditioningProjection`'s output at one pixel ``(N, out)``, or at one row
    ``(N, out, 1, W or 1)`` when ``column`` is ``None``; 0 for no conditioning.

    Example:
        >>> term = torch.arange(8.0).view(1, 2, 2, 2)
        >>> conditioning_at(term, 1, 0).tolist(), conditioning_at(None, 0, 0)
        ([[2.0, 6.0]], 0)
    """
    if term is None:
        return 0
    i = row if term.shape[2] > 1 else 0
    if column is None:
        return term[:, :, i : i + 1]
    j = column if term.shape[3] > 1 else 0
    return term[:, :, i, j]


class OutputHead(nn.Module):
    r"""The output layers: :math:`\ell = W_2 \operatorname{relu}(W_1 \operatorname{relu}(f))`,
    two 1x1 convolutions with channel mask ``"B"`` (so channel :math:`c`'s logits see only the
    features of channels :math:`\le c`), giving ``P * C`` outputs laid out ``(P, C)``.

    Example:
        >>> head = OutputHead(8, 16, outputs_per_channel=1, data_channels=1)
        >>> head(torch.randn(2, 8, 4, 4)).shape
        torch.Size([2, 1, 4, 4])
    """

    def __init__(
        self, in_features: int, hidden_features: int, outputs_per_channel: int, data_channels: int
    ) -> None:
        super().__init__()
        out = outputs_per_channel * data_channels
        self.hidden = MaskedConv2d(
            in_features,
            hidden_features,
            (1, 1),
            (0, 0, 0, 0),
            pointwise_channel_mask(hidden_features, in_features, data_channels),
        )
        self.output = MaskedConv2d(
            hidden_features,
            out,
            (1, 1),
            (0, 0, 0, 0),
            pointwise_channel_mask(out, hidden_features, data_channels),
        )

    def forward(self, features: Tensor) -> Tensor:
        return self.output(F.relu(self.hidden(F.relu(features))))

    def at(self, features: Tensor) -> Tensor:
        """The head at one pixel: ``(N, in) -> (N, P * C)``."""
        hidden = self.hidden.at(F.relu(features)[:, :, None, None])
        return self.output.at(F.relu(hidden)[:, :, None, None])


class IncrementalImagePass:
    r"""The state of a cached sampler: caches of every layer for ``N`` images being generated.

    The sampler visits pixels in raster order and channels within a pixel, calling
    :meth:`logits_at` for the next entry, then :meth:`write` with its value. Subclasses keep
    whatever the next steps need (a window of each layer's features, a row of the vertical
    stack); a step computes only the outputs at the new pixel. Steps must come in raster
    order: :meth:`logits_at` ``(i, j)`` may assume every pixel before it has been written.

    Example:
        >>> from pyro_ar.nn import GatedPixelCNNNetwork
        >>> network = GatedPixelCNNNetwork((1, 3, 3), hidden_channels=4, num_layers=2)
        >>> state = network.incremental(batch=2)
        >>> logits = state.logits_at(0, 0)  # the first pixel: nothing written yet
        >>> state.write(0, 0, 0, torch.ones(2))
        >>> logits.shape, state.logits_at(0, 1).shape
        (torch.Size([2, 1, 1]), torch.Size([2, 1, 1]))
    """

    def logits_at(self, row: int, column: int) -> Tensor:
        """The logits of pixel ``(row, column)``, shape ``(N, P, C)``: channel :math:`c`'s are
        exact once channels :math:`< c` of the pixel are written."""
        raise NotImplementedError

    def write(self, row: int, column: int, channel: int, value: Tensor) -> None:
        """Absorbs the drawn level ``value`` ``(N,)`` of one entry."""
        raise NotImplementedError


class ImageAutoregressiveNetwork(nn.Module):
    """Base class of the PixelCNN networks (see the module docstring).

    Arguments:
        image_shape: ``(C, H, W)``.
        num_levels: :math:`K`, the values per entry (2: binary).
        hidden_channels: Features of the causal stack; a multiple of :math:`C` (channel groups).
        output_hidden_channels: Features of the output head's hidden layer (a multiple of C;
            ``None``: ``hidden_channels``).
        context_features: Size of a context vector (0: none).
        spatial_context_channels: Channels of a spatial conditioning map ``(S, H, W)`` (0: none).
        num_components: :math:`M > 0` for the discretized logistic mixture of PixelCNN++
            (:math:`P = 3M` outputs per entry: mixture logits, means and log-scales on the
            input scale :math:`[-1, 1]`); 0 for a Bernoulli (:math:`K = 2`) or a categorical
            over the :math:`K` levels.
        first_kernel_size: The first layer's (odd) kernel size.
        kernel_size: The later layers' (odd) kernel size.

    Attributes:
        likelihood: ``"bernoulli"``, ``"categorical"`` or ``"logistic_mixture"``.

    Example:
        >>> from pyro_ar.nn import PixelCNNNetwork
        >>> network = PixelCNNNetwork((3, 4, 4), num_levels=256, hidden_channels=12, num_layers=1)
        >>> isinstance(network, ImageAutoregressiveNetwork), network.outputs_per_channel
        (True, 256)
        >>> network(torch.zeros(2, 3, 4, 4)).shape  # (N, K, C, H, W)
        torch.Size([2, 256, 3, 4, 4])
    """

    def __init__(
        self,
        image_shape: Sequence[int],
        num_levels: int,
        hidden_channels: int,
        output_hidden_channels: int | None,
        context_features: int,
        spatial_context_channels: int,
        num_components: int = 0,
        first_kernel_size: int = 7,
        kernel_size: int = 3,
    ) -> None:
        super().__init__()
        owner = type(self).__name__
        output_hidden_channels = output_hidden_channels or hidden_channels
        for label, size in (
            ("first_kernel_size", first_kernel_size),
            ("kernel_size", kernel_size),
        ):
            if size < 1 or size % 2 == 0:
                raise ValueError(f"{owner}: {label} must be odd and positive, got {size}")
        self.first_kernel_size, self.kernel_size = first_kernel_size, kernel_size
        self.image_shape = check_image_shape(owner, image_shape)
        channels = self.image_shape[0]
        if isinstance(num_levels, bool) or not isinstance(num_levels, int) or num_levels < 2:
            raise ValueError(f"{owner}: num_levels must be an integer >= 2, got {num_levels!r}")
        for label, value in (
            ("hidden_channels", hidden_channels),
            ("output_hidden_channels", output_hidden_channels),
        ):
            if value < 1 or value % channels:
                raise ValueError(
                    f"{owner}: {label} must be a positive multiple of the {channels} image "
                    f"channels (one group of features per channel), got {value}"
                )
        if context_features < 0 or spatial_context_channels < 0:
            raise ValueError(f"{owner}: context sizes must be >= 0")
        if num_components < 0:
            raise ValueError(f"{owner}: num_components must be >= 0, got {num_components}")
        self.num_levels = num_levels
        self.num_components = num_components
        if num_components:
            self.likelihood = "logistic_mixture"
            self.outputs_per_channel = 3 * num_components
        elif num_levels == 2:
            self.likelihood = "bernoulli"
            self.outputs_per_channel = 1
        else:
            self.likelihood = "categorical"
            self.outputs_per_channel = num_levels
        self.hidden_channels = hidden_channels
        self.output_hidden_channels = output_hidden_channels
        self.context_features = context_features
        self.spatial_context_channels = spatial_context_channels

    @property
    def data_channels(self) -> int:
        return self.image_shape[0]

    def encode(self, value: Tensor) -> Tensor:
        """Levels :math:`0..K-1` to the network input :math:`2x/(K-1) - 1 \\in [-1, 1]`."""
        return value * (2.0 / (self.num_levels - 1)) - 1.0

    def check_conditioning(
        self, context: Tensor | None, spatial: Tensor | None, owner: str | None = None
    ) -> None:
        """Raises unless the context and spatial map are given exactly when the network takes
        them, with the right trailing sizes."""
        owner = owner or type(self).__name__
        _, height, width = self.image_shape
        if self.context_features:
            if context is None:
                raise ValueError(f"{owner}: this network is conditional, pass a context")
            if context.dim() < 1 or context.shape[-1] != self.context_features:
                raise ValueError(
                    f"{owner}: context must have shape (..., {self.context_features}), got "
                    f"{tuple(context.shape)}"
                )
        elif context is not None:
            raise ValueError(f"{owner}: this network takes no context")
        if self.spatial_context_channels:
            expected = (self.spatial_context_channels, height, width)
            if spatial is None:
                raise ValueError(f"{owner}: this network takes a spatial context {expected}")
            if spatial.dim() < 3 or tuple(spatial.shape[-3:]) != expected:
                raise ValueError(
                    f"{owner}: spatial context must have shape (..., {expected[0]}, {height}, "
                    f"{width}), got {tuple(spatial.shape)}"
                )
        elif spatial is not None:
            raise ValueError(f"{owner}: this network takes no spatial context")

    def features(self, encoded: Tensor, context: Tensor | None, spatial: Tensor | None) -> Tensor:
        """The causal stack's output features ``(N, F, H, W)`` for encoded images."""
        raise NotImplementedError

    def forward(
        self, value: Tensor, context: Tensor | None = None, spatial: Tensor | None = None
    ) -> Tensor:
        """All conditional logits ``(N, P, C, H, W)`` for images ``(N, C, H, W)`` of levels."""
        channels, height, width = self.image_shape
        logits = self.head(self.features(self.encode(value), context, spatial))
        return logits.view(value.shape[0], self.outputs_per_channel, channels, height, width)

    def incremental(
        self, batch: int, context: Tensor | None = None, spatial: Tensor | None = None
    ) -> IncrementalImagePass:
        """A cached sampler's state for ``batch`` images (context ``(batch, F)``, spatial
        ``(batch, S, H, W)``), every layer's cache in the parameters' dtype and device."""
        raise NotImplementedError

    def new_buffer(self, batch: int, channels: int, height: int, width: int) -> Tensor:
        """A zero cache ``(batch, channels, height, width)``, parameters' dtype and device."""
        parameter = next(self.parameters())
        return torch.zeros(
            batch, channels, height, width, dtype=parameter.dtype, device=parameter.device
        )
