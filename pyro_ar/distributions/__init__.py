r"""Pyro distributions of the classic deep density models."""

from .autoregressive import BinaryAutoregressive
from .fvsbn import FVSBN
from .linear_gaussian import PPCA, FactorAnalysis, LinearGaussianLatent
from .made import (
    BernoulliMADE,
    CategoricalMADE,
    GaussianMADE,
    MADEEnsemble,
    MixtureOfGaussiansMADE,
)
from .nade import NADE

__all__ = [
    "BernoulliMADE",
    "BinaryAutoregressive",
    "CategoricalMADE",
    "FVSBN",
    "FactorAnalysis",
    "GaussianMADE",
    "LinearGaussianLatent",
    "MADEEnsemble",
    "MixtureOfGaussiansMADE",
    "NADE",
    "PPCA",
]
