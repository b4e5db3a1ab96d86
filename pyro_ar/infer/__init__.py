r"""Inference and training: maximum-likelihood trainer and checkpoints."""

from .bayesian_linear_gaussian import (
    assemble_loadings,
    bayesian_linear_gaussian_model,
    initial_values,
    rotate_to_lower_triangular,
)
from .checkpoint import CHECKPOINT_FORMAT, CheckpointError, load_checkpoint, save_checkpoint
from .linear_gaussian import (
    DEFAULT_RELATIVE_NOISE_FLOOR,
    LinearGaussianFit,
    fit_by_svi,
    fit_factor_analysis,
    fit_ppca,
)
from .trainer import (
    EpochRecord,
    TrainingConfig,
    TrainingResult,
    fit_maximum_likelihood,
    mean_nll,
)

__all__ = [
    "CHECKPOINT_FORMAT",
    "DEFAULT_RELATIVE_NOISE_FLOOR",
    "assemble_loadings",
    "bayesian_linear_gaussian_model",
    "initial_values",
    "rotate_to_lower_triangular",
    "LinearGaussianFit",
    "fit_by_svi",
    "fit_factor_analysis",
    "fit_ppca",
    "CheckpointError",
    "EpochRecord",
    "TrainingConfig",
    "TrainingResult",
    "fit_maximum_likelihood",
    "load_checkpoint",
    "mean_nll",
    "save_checkpoint",
]
