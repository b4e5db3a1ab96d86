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
from .markov_chain import MarkovChain, dirichlet_posterior, transition_counts
from .nade import NADE
from .ngram_chain import NGramChain

__all__ = [
    "BernoulliMADE",
    "BinaryAutoregressive",
    "CategoricalMADE",
    "FVSBN",
    "FactorAnalysis",
    "GaussianMADE",
    "LinearGaussianLatent",
    "MADEEnsemble",
    "MarkovChain",
    "MixtureOfGaussiansMADE",
    "NADE",
    "NGramChain",
    "PPCA",
    "dirichlet_posterior",
    "transition_counts",
]
