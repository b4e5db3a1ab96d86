r"""Pyro models built from the library's distributions (model functions for MCMC and SVI, as
opposed to distributions): the Bayesian linear-Gaussian model, with its helpers."""

from .bayesian_linear_gaussian import (
    assemble_loadings,
    bayesian_linear_gaussian_model,
    initial_values,
    rotate_to_lower_triangular,
)

__all__ = [
    "assemble_loadings",
    "bayesian_linear_gaussian_model",
    "initial_values",
    "rotate_to_lower_triangular",
]
