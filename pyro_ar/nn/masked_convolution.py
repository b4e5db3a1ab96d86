r"""Masked convolutions: the causal building block of the PixelCNN family.

An image with :math:`C` channels is generated pixel by pixel in raster order and, within a
pixel, channel by channel (:math:`R \to G \to B`). A convolution keeps that order when every
output feature at pixel :math:`(i, j)` sees only inputs that come earlier:

* spatial taps strictly before the centre in raster order (rows above, and the left part of
  the current row) are free;
* taps after the centre are zero;
* at the centre, features are split into :math:`C` groups (feature :math:`f` belongs to group
  :math:`f \bmod C`, so gated halves and ``(K, C)`` output layouts stay aligned), and output
  group :math:`g` sees input group :math:`g'` only if :math:`g' < g` (mask ``"A"``, the first
  layer: a pixel's channel never sees itself) or :math:`g' \le g` (mask ``"B"``, every later
  layer).

References:
    | Pixel Recurrent Neural Networks (van den Oord, Kalchbrenner & Kavukcuoglu, 2016), sec. 3.4
    | https://arxiv.org/abs/1601.06759
"""

from __future__ import annotations

__all__ = ["MaskedConv2d", "channel_group_mask", "raster_mask"]

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: The centre rules: which input groups an output group sees at its own pixel.
MASK_TYPES = ("A", "B")


def channel_group_mask(
    out_features: int, in_features: int, data_channels: int, mask_type: str | None
) -> Tensor:
    r"""The centre-tap mask ``(out_features, in_features)``: output feature :math:`o` sees input
    feature :math:`i` iff :math:`i \bmod C < o \bmod C` (``"A"``) or :math:`\le` (``"B"``);
    all ones for ``mask_type=None`` (no channel order, e.g. a vertical stack's input).

    Example:
        >>> channel_group_mask(3, 3, 3, "A").int().tolist()  # R sees nothing, B sees R and G
        [[0, 0, 0], [1, 0, 0], [1, 1, 0]]
        >>> channel_group_mask(2, 2, 1, "B").int().tolist()  # one channel: all of the past
        [[1, 1], [1, 1]]
    """
    if mask_type is None:
        return torch.ones(out_features, in_features, dtype=torch.bool)
    if mask_type not in MASK_TYPES:
        raise ValueError(f"mask_type must be 'A', 'B' or None, got {mask_type!r}")
    out_groups = torch.arange(out_features) % data_channels
    in_groups = torch.arange(in_features) % data_channels
    if mask_type == "A":
        return out_groups[:, None] > in_groups[None, :]
    return out_groups[:, None] >= in_groups[None, :]


def raster_mask(
    out_features: int,
    in_features: int,
    kernel_size: tuple[int, int],
    centre: tuple[int, int],
    data_channels: int,
    mask_type: str | None,
) -> Tensor:
    r"""The weight mask ``(out, in, kh, kw)`` of a convolution whose tap ``centre`` lands on the
    output pixel: taps before it in raster order are ones, taps after it zeros, and the centre
    tap is :func:`channel_group_mask`.

    Example:
        >>> raster_mask(1, 1, (3, 3), (1, 1), 1, "A")[0, 0].int().tolist()
        [[1, 1, 1], [1, 0, 0], [0, 0, 0]]
    """
    height, width = kernel_size
    row, column = centre
    rows = torch.arange(height)[:, None].expand(height, width)
    columns = torch.arange(width)[None, :].expand(height, width)
    before = (rows < row) | ((rows == row) & (columns < column))
    mask = before.expand(out_features, in_features, height, width).clone()
    mask[:, :, row, column] = channel_group_mask(
        out_features, in_features, data_channels, mask_type
    )
    return mask


class MaskedConv2d(nn.Module):
    r"""A 2-D convolution :math:`y = (W \odot M) * \operatorname{pad}(x) + b` with a fixed binary
    mask :math:`M` and explicit zero padding ``(left, right, top, bottom)``.

    The mask multiplies the weight in every forward pass (never in place), so the masked
    entries receive zero gradient and the stored weights stay intact. :meth:`at` evaluates the
    convolution at one output position from the input window under it, which is what the
    cached samplers use; it gives the same numbers as :meth:`forward` at that position.

    Arguments:
        in_channels: Input features.
        out_channels: Output features.
        kernel_size: ``(kh, kw)``.
        padding: ``(left, right, top, bottom)`` zeros added before the convolution.
        mask: Boolean ``(out, in, kh, kw)``, or ``None`` for a plain convolution.
        bias: Whether to add a bias.

    Shapes:
        ``forward``: ``(N, in, H, W) -> (N, out, H + top + bottom - kh + 1, W + left + right -
        kw + 1)``; ``at``: ``(N, in, kh, kw) -> (N, out)``.

    Example:
        >>> mask = raster_mask(4, 1, (3, 3), (1, 1), 1, "A")
        >>> conv = MaskedConv2d(1, 4, (3, 3), (1, 1, 1, 1), mask)
        >>> x = torch.randn(2, 1, 5, 5)
        >>> y = conv(x)
        >>> window = F.pad(x, (1, 1, 1, 1))[:, :, 2:5, 0:3]  # the window under output (2, 0)
        >>> torch.allclose(conv.at(window), y[:, :, 2, 0], atol=1e-6)
        True
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: tuple[int, int],
        padding: tuple[int, int, int, int],
        mask: Tensor | None = None,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = tuple(kernel_size)
        self.padding = tuple(padding)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, *self.kernel_size))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        if mask is not None:
            mask = torch.as_tensor(mask, dtype=torch.bool)
            if mask.shape != self.weight.shape:
                raise ValueError(
                    f"MaskedConv2d: mask shape {tuple(mask.shape)} != weight shape "
                    f"{tuple(self.weight.shape)}"
                )
            self.register_buffer("mask", mask)
        else:
            self.mask = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's default convolution initialization, scaled to the taps the mask keeps
        (a masked fan-in is smaller, so the default would start with too little signal)."""
        if self.mask is None:
            kept = self.weight[0].numel()
        else:
            kept = int(self.mask.sum(dim=(1, 2, 3)).max())
        bound = 1 / max(kept, 1) ** 0.5
        with torch.no_grad():
            self.weight.uniform_(-bound, bound)
            if self.bias is not None:
                self.bias.uniform_(-bound, bound)

    def masked_weight(self) -> Tensor:
        """:math:`W \\odot M` (out of place, so autograd sees the mask)."""
        return self.weight if self.mask is None else self.weight * self.mask

    def forward(self, x: Tensor) -> Tensor:
        left, right, top, bottom = self.padding
        if left == right and top == bottom:
            return F.conv2d(x, self.masked_weight(), self.bias, padding=(top, left))
        # symmetric padding inside the convolution and a crop: no padded copy of the input,
        # and the input's memory format (channels_last is much faster on CPU) is kept
        rows, columns = max(top, bottom), max(left, right)
        output = F.conv2d(x, self.masked_weight(), self.bias, padding=(rows, columns))
        height = x.shape[-2] + top + bottom - self.kernel_size[0] + 1
        width = x.shape[-1] + left + right - self.kernel_size[1] + 1
        return output[
            ..., rows - top : rows - top + height, columns - left : columns - left + width
        ]

    def unpadded(self, x: Tensor) -> Tensor:
        """The convolution of an input that already holds its padding (a sampler's buffer)."""
        return F.conv2d(x, self.masked_weight(), self.bias)

    def at(self, window: Tensor, weight: Tensor | None = None) -> Tensor:
        """The output at one position from the input window ``(N, in, kh, kw)`` under it.

        ``weight`` may pass :meth:`masked_weight` computed once, for a loop of calls."""
        weight = self.masked_weight() if weight is None else weight
        return F.linear(window.flatten(1), weight.flatten(1), self.bias)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"padding={self.padding}, masked={self.mask is not None}"
        )
