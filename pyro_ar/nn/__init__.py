r"""``torch.nn.Module`` s that hold model parameters and return Pyro distributions."""

from torch import nn

from .fvsbn import FVSBNModule
from .initialization import marginal_logits
from .made import MADEModule
from .masked import MaskedAutoencoder, MaskedLinear, made_degrees
from .nade import NADEModule
from .ordering import random_ordering
from .rbm import RBMModule

#: Modules that checkpoints can rebuild, by the name used on the command line.
MODULES: dict[str, type[nn.Module]] = {
    "fvsbn": FVSBNModule,
    "made": MADEModule,
    "nade": NADEModule,
    "rbm": RBMModule,
}

__all__ = [
    "MODULES",
    "FVSBNModule",
    "MADEModule",
    "MaskedAutoencoder",
    "MaskedLinear",
    "NADEModule",
    "RBMModule",
    "made_degrees",
    "marginal_logits",
    "random_ordering",
]
