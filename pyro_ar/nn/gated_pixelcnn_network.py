r"""The Gated PixelCNN: a vertical and a horizontal stack of gated convolutions, no blind spot.

Layer :math:`l` with kernel size :math:`k` (:math:`p = \lfloor k/2 \rfloor`) computes

.. math::
    a^v_l &= W^v_l * v_{l-1} + V^v_l h, \qquad v_l = \tanh(a^v_{l,1}) \odot \sigma(a^v_{l,2}), \\
    a^h_l &= W^h_l * h_{l-1} + L_l\, \operatorname{down}(a^v_l) + V^h_l h, \qquad
    h_l = h_{l-1} + R_l \big(\tanh(a^h_{l,1}) \odot \sigma(a^h_{l,2})\big),

where :math:`W^v_l` is a :math:`(p+1) \times k` convolution over the rows above and the current
row, :math:`\operatorname{down}` shifts it one row down (so the horizontal stack at row
:math:`i` sees only rows :math:`< i` through it), :math:`W^h_l` is a :math:`1 \times (p+1)`
convolution over the current row up to the current pixel (the centre tap with channel mask
``"A"`` in the first layer, ``"B"`` after), :math:`L_l` and :math:`R_l` are 1x1 convolutions,
:math:`v_0 = h_0 = x`, and the first layer has no residual term. Every earlier pixel inside the
receptive field reaches the current one: the two stacks together cover the rows above in full
width and the current row to the left.

References:
    | Conditional Image Generation with PixelCNN Decoders (van den Oord et al., 2016)
    | https://arxiv.org/abs/1606.05328
"""

from __future__ import annotations

__all__ = ["GatedPixelCNNNetwork"]

from collections.abc import Sequence

import torch
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
from .masked_convolution import MaskedConv2d, channel_group_mask


def gate(preactivation: Tensor) -> Tensor:
    r""":math:`\tanh(a_1) \odot \sigma(a_2)` for the two halves of the feature dimension 1.

    Example:
        >>> gate(torch.zeros(1, 4)).tolist()
        [[0.0, 0.0]]
    """
    first, second = preactivation.chunk(2, dim=1)
    return torch.tanh(first) * torch.sigmoid(second)


class GatedPixelCNNNetwork(ImageAutoregressiveNetwork):
    r"""The Gated PixelCNN (see the module docstring for the equations).

    Arguments:
        image_shape: ``(C, H, W)``.
        num_levels: :math:`K` values per entry (2: binary).
        hidden_channels: Gated features per stack (each gate has twice as many
            pre-activations); a multiple of :math:`C`.
        num_layers: Gated layers, the first included.
        first_kernel_size: Kernel size :math:`k` of the first layer (odd).
        kernel_size: Kernel size of the later layers (odd).
        output_hidden_channels: The output head's hidden features (default ``hidden_channels``).
        context_features: Size of a context vector (0: none), e.g. a class one-hot or a VAE
            latent; added to every layer of both stacks.
        spatial_context_channels: Channels of a spatial conditioning map (0: none), added
            through 1x1 convolutions.
        num_components: Components of a discretized logistic mixture per entry (0: a
            Bernoulli or categorical; see
            :class:`~pyro_ar.nn.image_network.ImageAutoregressiveNetwork`).

    Shapes:
        ``(N, C, H, W)`` levels (and ``(N, F)``, ``(N, S, H, W)``) -> logits ``(N, P, C, H, W)``.

    Example:
        >>> network = GatedPixelCNNNetwork((1, 5, 5), hidden_channels=8, num_layers=3)
        >>> network(torch.zeros(2, 1, 5, 5)).shape
        torch.Size([2, 1, 1, 5, 5])
    """

    def __init__(
        self,
        image_shape: Sequence[int],
        num_levels: int = 2,
        hidden_channels: int = 64,
        num_layers: int = 8,
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
        if num_layers < 1:
            raise ValueError(f"GatedPixelCNNNetwork: num_layers must be >= 1, got {num_layers}")
        self.kernel_sizes = [first_kernel_size] + [kernel_size] * (num_layers - 1)
        gates = 2 * hidden_channels
        self.vertical, self.horizontal, self.links, self.residuals = (
            nn.ModuleList(),
            nn.ModuleList(),
            nn.ModuleList(),
            nn.ModuleList(),
        )
        self.vertical_conditions, self.horizontal_conditions = nn.ModuleList(), nn.ModuleList()
        for index, kernel in enumerate(self.kernel_sizes):
            pad = kernel // 2
            inputs = channels if index == 0 else hidden_channels
            self.vertical.append(
                MaskedConv2d(inputs, gates, (pad + 1, kernel), (pad, pad, pad, 0), mask=None)
            )
            mask = torch.ones(gates, inputs, 1, pad + 1, dtype=torch.bool)
            mask[:, :, 0, pad] = channel_group_mask(
                gates, inputs, channels, "A" if index == 0 else "B"
            )
            self.horizontal.append(MaskedConv2d(inputs, gates, (1, pad + 1), (pad, 0, 0, 0), mask))
            self.links.append(MaskedConv2d(gates, gates, (1, 1), (0, 0, 0, 0), mask=None))
            self.residuals.append(
                MaskedConv2d(
                    hidden_channels,
                    hidden_channels,
                    (1, 1),
                    (0, 0, 0, 0),
                    pointwise_channel_mask(hidden_channels, hidden_channels, channels),
                )
            )
            for conditions in (self.vertical_conditions, self.horizontal_conditions):
                conditions.append(
                    ConditioningProjection(context_features, spatial_context_channels, gates)
                )
        self.head = OutputHead(
            hidden_channels, self.output_hidden_channels, self.outputs_per_channel, channels
        )

    @property
    def num_layers(self) -> int:
        return len(self.kernel_sizes)

    def features(self, encoded: Tensor, context: Tensor | None, spatial: Tensor | None) -> Tensor:
        vertical = horizontal = encoded
        for index in range(self.num_layers):
            vertical_preactivation = self.vertical[index](vertical)
            condition = self.vertical_conditions[index](context, spatial)
            if condition is not None:
                vertical_preactivation = vertical_preactivation + condition
            shifted = F.pad(vertical_preactivation, (0, 0, 1, 0))[:, :, :-1]
            horizontal_preactivation = self.horizontal[index](horizontal) + self.links[index](
                shifted
            )
            condition = self.horizontal_conditions[index](context, spatial)
            if condition is not None:
                horizontal_preactivation = horizontal_preactivation + condition
            vertical = gate(vertical_preactivation)
            update = self.residuals[index](gate(horizontal_preactivation))
            horizontal = update if index == 0 else horizontal + update
        return horizontal

    def incremental(
        self, batch: int, context: Tensor | None = None, spatial: Tensor | None = None
    ) -> IncrementalImagePass:
        return _GatedPass(self, batch, context, spatial)


class _GatedPass(IncrementalImagePass):
    """Caches of a :class:`GatedPixelCNNNetwork`: the vertical stack is computed a whole row at
    a time when the sampler enters a row (it depends only on the rows above), and the
    horizontal stack one pixel at a time from a window of each layer's input in the current
    row."""

    def __init__(
        self,
        network: GatedPixelCNNNetwork,
        batch: int,
        context: Tensor | None,
        spatial: Tensor | None,
    ) -> None:
        self.network = network
        _, height, width = network.image_shape
        self.pads = [kernel // 2 for kernel in network.kernel_sizes]
        inputs = [network.data_channels] + [network.hidden_channels] * (network.num_layers - 1)
        self.vertical_inputs = [
            network.new_buffer(batch, size, height + pad, width + 2 * pad)
            for size, pad in zip(inputs, self.pads, strict=True)
        ]
        self.horizontal_inputs = [
            network.new_buffer(batch, size, 1, width + pad)
            for size, pad in zip(inputs, self.pads, strict=True)
        ]
        self.horizontal_weights = [layer.masked_weight() for layer in network.horizontal]
        self.residual_weights = [layer.masked_weight() for layer in network.residuals]
        self.vertical_conditions = [c(context, spatial) for c in network.vertical_conditions]
        self.horizontal_conditions = [c(context, spatial) for c in network.horizontal_conditions]
        self.links: list[Tensor] = []
        self.row = -1

    def _enter_row(self, row: int) -> None:
        """Computes the vertical stack's row ``row - 1`` (every layer) and its links into row
        ``row`` of the horizontal stack; starts the horizontal caches of the row afresh."""
        network = self.network
        self.links = []
        for index in range(network.num_layers):
            pad = self.pads[index]
            if row == 0:  # above the image: the full pass shifts in zeros
                shifted = self.vertical_inputs[0].new_zeros(
                    self.vertical_inputs[0].shape[0],
                    2 * network.hidden_channels,
                    1,
                    network.image_shape[2],
                )
            else:
                window = self.vertical_inputs[index][:, :, row - 1 : row + pad]
                shifted = network.vertical[index].unpadded(window) + conditioning_at(
                    self.vertical_conditions[index], row - 1
                )
                if index + 1 < network.num_layers:
                    next_pad = self.pads[index + 1]
                    target = self.vertical_inputs[index + 1]
                    target[
                        :, :, row - 1 + next_pad, next_pad : next_pad + network.image_shape[2]
                    ] = gate(shifted)[:, :, 0]
            self.links.append(network.links[index](shifted)[:, :, 0])  # (N, 2F, W)
        for buffer in self.horizontal_inputs:
            buffer.zero_()
        self.row = row

    def logits_at(self, row: int, column: int) -> Tensor:
        network = self.network
        if row != self.row:
            self._enter_row(row)
        horizontal = None
        for index in range(network.num_layers):
            pad = self.pads[index]
            window = self.horizontal_inputs[index][:, :, :, column : column + pad + 1]
            preactivation = (
                network.horizontal[index].at(window, self.horizontal_weights[index])
                + self.links[index][:, :, column]
                + conditioning_at(self.horizontal_conditions[index], row, column)
            )
            update = network.residuals[index].at(
                gate(preactivation)[:, :, None, None], self.residual_weights[index]
            )
            horizontal = update if index == 0 else horizontal + update
            if index + 1 < network.num_layers:
                next_pad = self.pads[index + 1]
                self.horizontal_inputs[index + 1][:, :, 0, column + next_pad] = horizontal
        logits = network.head.at(horizontal)
        return logits.view(-1, network.outputs_per_channel, network.data_channels)

    def write(self, row: int, column: int, channel: int, value: Tensor) -> None:
        if row != self.row:
            self._enter_row(row)
        encoded = self.network.encode(value.to(self.vertical_inputs[0].dtype))
        pad = self.pads[0]
        self.vertical_inputs[0][:, channel, row + pad, column + pad] = encoded
        self.horizontal_inputs[0][:, channel, 0, column + pad] = encoded
