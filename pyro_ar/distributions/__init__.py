r"""Pyro distributions of the classic deep density models."""

from .autoregressive import BinaryAutoregressive, MarginalEstimate
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
from .pixelcnn import PixelCNN
from .rbm import RBM, GaussianBernoulliRBM, LogPartitionError, RBMBase

__all__ = [
    "BernoulliMADE",
    "BinaryAutoregressive",
    "MarginalEstimate",
    "CategoricalMADE",
    "FVSBN",
    "FactorAnalysis",
    "GaussianBernoulliRBM",
    "GaussianMADE",
    "LinearGaussianLatent",
    "LogPartitionError",
    "MADEEnsemble",
    "MarkovChain",
    "MixtureOfGaussiansMADE",
    "NADE",
    "NGramChain",
    "PPCA",
    "PixelCNN",
    "RBM",
    "RBMBase",
    "dirichlet_posterior",
    "transition_counts",
]
