r"""``torch.nn.Module`` s that hold model parameters and return Pyro distributions."""

from .fvsbn import FVSBNModule
from .gated_pixelcnn_network import GatedPixelCNNNetwork
from .initialization import marginal_logits
from .made import MADEModule
from .masked import IncrementalPass, MaskedAutoencoder, MaskedLinear, made_degrees
from .masked_convolution import MaskedConv2d
from .module import (
    MODULES,
    AutoregressiveModule,
    DensityModule,
    layer_sizes,
    single_layer_size,
)
from .nade import NADEModule
from .ordering import random_ordering
from .pixelcnn import PixelCNNModule
from .pixelcnn_network import PixelCNNNetwork
from .rbm import RBMModule
from .sigmoid_belief_network import SigmoidBeliefNetwork

__all__ = [
    "MODULES",
    "AutoregressiveModule",
    "DensityModule",
    "FVSBNModule",
    "GatedPixelCNNNetwork",
    "IncrementalPass",
    "MADEModule",
    "MaskedAutoencoder",
    "MaskedConv2d",
    "MaskedLinear",
    "NADEModule",
    "PixelCNNModule",
    "PixelCNNNetwork",
    "RBMModule",
    "SigmoidBeliefNetwork",
    "layer_sizes",
    "made_degrees",
    "marginal_logits",
    "random_ordering",
    "single_layer_size",
]
