r"""The module that holds a PixelCNN network and returns the image distribution."""

from __future__ import annotations

__all__ = ["ARCHITECTURES", "PixelCNNModule"]

from collections.abc import Sequence
from typing import Any

from torch import Tensor

from ..distributions.pixelcnn import PixelCNN
from .gated_pixelcnn_network import GatedPixelCNNNetwork
from .image_network import check_image_shape
from .module import DensityModule
from .pixelcnn_network import PixelCNNNetwork

#: The network class behind each ``architecture`` name.
ARCHITECTURES = {"gated": GatedPixelCNNNetwork, "original": PixelCNNNetwork}


class PixelCNNModule(DensityModule, name="pixelcnn"):
    r"""Holds a PixelCNN network and returns a :class:`~pyro_ar.distributions.PixelCNN` when
    called (with a context and/or a spatial map, if the network takes them).

    ``architecture="gated"`` is the Gated PixelCNN (:class:`~pyro_ar.nn.GatedPixelCNNNetwork`,
    no blind spot), ``"original"`` the masked PixelCNN with residual blocks
    (:class:`~pyro_ar.nn.PixelCNNNetwork`).

    Arguments:
        image_shape: ``(C, H, W)``, or the number :math:`D` of pixels of a square one-channel
            image (what the command line passes for flat data).
        hidden_features: Features of the causal stack (``hidden_channels`` of the network).
        architecture: ``"gated"`` or ``"original"``.
        num_levels: :math:`K` values per entry (2: binary images; 256: 8-bit).
        num_layers: Layers (gated) or residual blocks (original); default 8 and 6.
        first_kernel_size: The first layer's kernel size.
        kernel_size: The later layers' kernel size.
        output_hidden_channels: Hidden features of the output head (default: hidden_features).
        context_features: Size of a context vector (a class one-hot, a VAE latent); 0: none.
        spatial_context_channels: Channels of a spatial conditioning map; 0: none.
        num_components: Components of the discretized logistic mixture of PixelCNN++ (for
            8-bit data, ``num_levels=256``); 0: a Bernoulli or categorical per entry.
        seed: Seed of the initial weights.

    References:
        | Conditional Image Generation with PixelCNN Decoders (van den Oord et al., 2016)
        | https://arxiv.org/abs/1606.05328

    Example:
        >>> module = PixelCNNModule((1, 6, 6), hidden_features=8, num_layers=2)
        >>> module().sample((2,)).shape, module.num_dims
        (torch.Size([2, 1, 6, 6]), 36)
    """

    def __init__(
        self,
        image_shape: int | Sequence[int] = (1, 28, 28),
        hidden_features: int = 64,
        architecture: str = "gated",
        num_levels: int = 2,
        num_layers: int | None = None,
        first_kernel_size: int = 7,
        kernel_size: int = 3,
        output_hidden_channels: int | None = None,
        context_features: int = 0,
        spatial_context_channels: int = 0,
        num_components: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if architecture not in ARCHITECTURES:
            raise ValueError(
                f"PixelCNNModule: unknown architecture {architecture!r}; choose one of "
                f"{', '.join(ARCHITECTURES)}"
            )
        if isinstance(hidden_features, (list, tuple)):
            if len(hidden_features) != 1:
                raise ValueError(
                    "PixelCNNModule: hidden_features is one number of channels, got "
                    f"{hidden_features!r}"
                )
            hidden_features = hidden_features[0]
        self.image_shape = check_image_shape("PixelCNNModule", image_shape)
        self.architecture = architecture
        if num_layers is None:
            num_layers = 8 if architecture == "gated" else 6
        with self.seeded(seed):
            self.network = ARCHITECTURES[architecture](
                self.image_shape,
                num_levels=num_levels,
                hidden_channels=hidden_features,
                num_layers=num_layers,
                first_kernel_size=first_kernel_size,
                kernel_size=kernel_size,
                output_hidden_channels=output_hidden_channels,
                context_features=context_features,
                spatial_context_channels=spatial_context_channels,
                num_components=num_components,
            )

    @property
    def num_dims(self) -> int:
        """:math:`C H W`, the entries of an image."""
        channels, height, width = self.image_shape
        return channels * height * width

    @classmethod
    def for_data(cls, data: Tensor, **options: Any) -> PixelCNNModule:
        """A module for images ``(N, C, H, W)`` or flat square one-channel images ``(N, D)``
        (the options its constructor takes are passed on; ``hidden_features`` as an integer)."""
        image_shape = check_image_shape(
            cls.__name__, tuple(data.shape[1:]) if data.dim() == 4 else data.shape[-1]
        )
        taken = ("hidden_features", "architecture", "num_layers", "num_levels", "seed")
        return cls(image_shape, **{key: value for key, value in options.items() if key in taken})

    def shape_data(self, data: Tensor) -> Tensor:
        """Flat images ``(..., C H W)`` as ``(..., C, H, W)`` (images pass unchanged)."""
        if data.dim() >= 3 and tuple(data.shape[-3:]) == self.image_shape:
            return data
        if data.shape[-1] != self.num_dims:
            raise ValueError(
                f"PixelCNNModule: data of shape {tuple(data.shape)} is neither (..., "
                f"{', '.join(map(str, self.image_shape))}) nor (..., {self.num_dims})"
            )
        return data.reshape(data.shape[:-1] + self.image_shape)

    def forward(
        self, context: Tensor | None = None, spatial_context: Tensor | None = None
    ) -> PixelCNN:
        """The distribution; its batch shape is that of the contexts."""
        return PixelCNN(self.network, context, spatial_context)
