r"""``torch.nn.Module`` s that hold model parameters and return Pyro distributions."""

from .fvsbn import FVSBNModule
from .initialization import marginal_logits
from .made import MADEModule
from .masked import IncrementalPass, MaskedAutoencoder, MaskedLinear, made_degrees
from .module import (
    MODULES,
    AutoregressiveModule,
    DensityModule,
    layer_sizes,
    single_layer_size,
)
from .nade import NADEModule
from .ordering import random_ordering
from .rbm import RBMModule

__all__ = [
    "MODULES",
    "AutoregressiveModule",
    "DensityModule",
    "FVSBNModule",
    "IncrementalPass",
    "MADEModule",
    "MaskedAutoencoder",
    "MaskedLinear",
    "NADEModule",
    "RBMModule",
    "layer_sizes",
    "made_degrees",
    "marginal_logits",
    "random_ordering",
    "single_layer_size",
]
