r"""The original PixelCNN: a stack of masked convolutions with residual blocks.

.. math::
    f_0 = W_A * x + V_0 h, \qquad
    f_{l} = f_{l-1} + U_l \operatorname{relu}\big(W_l * \operatorname{relu}(D_l
        \operatorname{relu}(f_{l-1})) + V_l h\big),

with a :math:`k_0 \times k_0` mask-``"A"`` first layer :math:`W_A`, :math:`k \times k`
mask-``"B"`` convolutions :math:`W_l`, and 1x1 mask-``"B"`` projections :math:`D_l`
(down to half the features) and :math:`U_l` (back up), followed by the
:class:`~pyro_ar.nn.image_network.OutputHead`.

Stacking masked :math:`k \times k` convolutions leaves a *blind spot*: pixels above and to
the right of the current one, although earlier in raster order, never reach it, because the
mask removes the upper-right taps at every layer. The Gated PixelCNN
(:class:`~pyro_ar.nn.GatedPixelCNNNetwork`) removes it.

References:
    | Pixel Recurrent Neural Networks (van den Oord, Kalchbrenner & Kavukcuoglu, 2016)
    | https://arxiv.org/abs/1601.06759
"""

from __future__ import annotations

__all__ = ["PixelCNNNetwork"]

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from .image_network import (
    ConditioningProjection,
    ImageAutoregressiveNetwork,
    IncrementalImagePass,
    OutputHead,
    conditioning_at,
    pointwise_channel_mask,
)
from .masked_convolution import MaskedConv2d, raster_mask


def _square_masked(
    in_features: int, out_features: int, kernel: int, data_channels: int, mask_type: str
) -> MaskedConv2d:
    pad = kernel // 2
    mask = raster_mask(
        out_features, in_features, (kernel, kernel), (pad, pad), data_channels, mask_type
    )
    return MaskedConv2d(in_features, out_features, (kernel, kernel), (pad, pad, pad, pad), mask)


def _pointwise(in_features: int, out_features: int, data_channels: int) -> MaskedConv2d:
    mask = pointwise_channel_mask(out_features, in_features, data_channels)
    return MaskedConv2d(in_features, out_features, (1, 1), (0, 0, 0, 0), mask)


class PixelCNNNetwork(ImageAutoregressiveNetwork):
    r"""The original masked PixelCNN (see the module docstring for the equations).

    Arguments:
        image_shape: ``(C, H, W)``.
        num_levels: :math:`K` values per entry (2: binary).
        hidden_channels: Features of the residual stream (the blocks work at half of it); a
            multiple of :math:`2C`.
        num_layers: Residual blocks after the first layer.
        first_kernel_size: :math:`k_0` (odd).
        kernel_size: :math:`k` (odd).
        output_hidden_channels: The output head's hidden features (default ``hidden_channels``).
        context_features: Size of a context vector (0: none).
        spatial_context_channels: Channels of a spatial conditioning map (0: none).
        num_components: Components of a discretized logistic mixture per entry (0: a
            Bernoulli or categorical; see
            :class:`~pyro_ar.nn.image_network.ImageAutoregressiveNetwork`).

    Shapes:
        ``(N, C, H, W)`` levels (and ``(N, F)``, ``(N, S, H, W)``) -> logits ``(N, P, C, H, W)``.

    Example:
        >>> network = PixelCNNNetwork((1, 5, 5), hidden_channels=8, num_layers=2)
        >>> network(torch.zeros(3, 1, 5, 5)).shape
        torch.Size([3, 1, 1, 5, 5])
    """

    def __init__(
        self,
        image_shape: Sequence[int],
        num_levels: int = 2,
        hidden_channels: int = 64,
        num_layers: int = 6,
        first_kernel_size: int = 7,
        kernel_size: int = 3,
        output_hidden_channels: int | None = None,
        context_features: int = 0,
        spatial_context_channels: int = 0,
        num_components: int = 0,
    ) -> None:
        super().__init__(
            image_shape,
            num_levels,
            hidden_channels,
            output_hidden_channels,
            context_features,
            spatial_context_channels,
            num_components,
            first_kernel_size,
            kernel_size,
        )
        channels = self.data_channels
        inner = hidden_channels // 2
        if hidden_channels % (2 * channels):
            raise ValueError(
                f"PixelCNNNetwork: hidden_channels must be a multiple of 2C = {2 * channels} "
                f"(the blocks work at half of it), got {hidden_channels}"
            )
        if num_layers < 0:
            raise ValueError(f"PixelCNNNetwork: num_layers must be >= 0, got {num_layers}")
        self.first = _square_masked(channels, hidden_channels, first_kernel_size, channels, "A")
        self.first_condition = ConditioningProjection(
            context_features, spatial_context_channels, hidden_channels
        )
        self.down = nn.ModuleList(
            _pointwise(hidden_channels, inner, channels) for _ in range(num_layers)
        )
        self.convolutions = nn.ModuleList(
            _square_masked(inner, inner, kernel_size, channels, "B") for _ in range(num_layers)
        )
        self.conditions = nn.ModuleList(
            ConditioningProjection(context_features, spatial_context_channels, inner)
            for _ in range(num_layers)
        )
        self.up = nn.ModuleList(
            _pointwise(inner, hidden_channels, channels) for _ in range(num_layers)
        )
        self.head = OutputHead(
            hidden_channels, self.output_hidden_channels, self.outputs_per_channel, channels
        )

    @property
    def num_layers(self) -> int:
        return len(self.convolutions)

    def features(self, encoded: Tensor, context: Tensor | None, spatial: Tensor | None) -> Tensor:
        features = self.first(encoded)
        condition = self.first_condition(context, spatial)
        if condition is not None:
            features = features + condition
        for down, convolution, conditioning, up in zip(
            self.down, self.convolutions, self.conditions, self.up, strict=True
        ):
            inner = convolution(F.relu(down(F.relu(features))))
            condition = conditioning(context, spatial)
            if condition is not None:
                inner = inner + condition
            features = features + up(F.relu(inner))
        return features

    def incremental(
        self, batch: int, context: Tensor | None = None, spatial: Tensor | None = None
    ) -> IncrementalImagePass:
        return _PixelCNNPass(self, batch, context, spatial)


class _PixelCNNPass(IncrementalImagePass):
    """Per-pixel caches of a :class:`PixelCNNNetwork`: the padded encoded image and, for each
    block, the padded input of its :math:`k \\times k` convolution. A step evaluates every
    layer at one pixel, reading the windows under it (taps after the pixel are masked, so the
    entries not yet written never count)."""

    def __init__(
        self,
        network: PixelCNNNetwork,
        batch: int,
        context: Tensor | None,
        spatial: Tensor | None,
    ) -> None:
        self.network = network
        channels, height, width = network.image_shape
        first_pad, pad = network.first_kernel_size // 2, network.kernel_size // 2
        self.first_pad, self.pad = first_pad, pad
        self.image = network.new_buffer(
            batch, channels, height + 2 * first_pad, width + 2 * first_pad
        )
        # the encoded level of an unwritten entry never enters a step (it is masked), but the
        # padding of a full pass is 0, so the buffer starts at 0 everywhere
        inner = network.hidden_channels // 2
        self.inner = [
            network.new_buffer(batch, inner, height + 2 * pad, width + 2 * pad)
            for _ in range(network.num_layers)
        ]
        self.weights = {
            "first": network.first.masked_weight(),
            "down": [layer.masked_weight() for layer in network.down],
            "convolutions": [layer.masked_weight() for layer in network.convolutions],
            "up": [layer.masked_weight() for layer in network.up],
        }
        self.first_condition = network.first_condition(context, spatial)
        self.conditions = [conditioning(context, spatial) for conditioning in network.conditions]

    def logits_at(self, row: int, column: int) -> Tensor:
        network, weights = self.network, self.weights
        k0, k = network.first_kernel_size, network.kernel_size
        window = self.image[:, :, row : row + k0, column : column + k0]
        features = network.first.at(window, weights["first"]) + conditioning_at(
            self.first_condition, row, column
        )
        for index in range(network.num_layers):
            down = network.down[index].at(
                F.relu(features)[:, :, None, None], weights["down"][index]
            )
            cache = self.inner[index]
            cache[:, :, row + self.pad, column + self.pad] = F.relu(down)
            inner = network.convolutions[index].at(
                cache[:, :, row : row + k, column : column + k], weights["convolutions"][index]
            ) + conditioning_at(self.conditions[index], row, column)
            up = network.up[index].at(F.relu(inner)[:, :, None, None], weights["up"][index])
            features = features + up
        return network.head.at(features).view(
            -1, network.outputs_per_channel, network.data_channels
        )

    def write(self, row: int, column: int, channel: int, value: Tensor) -> None:
        encoded = self.network.encode(value.to(self.image.dtype))
        self.image[:, channel, row + self.first_pad, column + self.first_pad] = encoded
