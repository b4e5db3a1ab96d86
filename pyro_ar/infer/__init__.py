r"""Inference and training: maximum-likelihood trainer, checkpoints, linear-Gaussian fitting,
RBM training (contrastive divergence), partition functions (AIS) and a Gibbs MCMC kernel."""

from ..io.checkpoint import (
    CHECKPOINT_FORMAT,
    CheckpointError,
    is_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from ..models.bayesian_linear_gaussian import (
    assemble_loadings,
    bayesian_linear_gaussian_model,
    initial_values,
    rotate_to_lower_triangular,
)
from .autoguides import AutoBinaryAutoregressive, AutoGaussianMADE, InverseAutoregressiveAffine
from .contrastive_divergence import ContrastiveDivergence, pseudo_likelihood, reconstruction_error
from .epochs import EpochLoop, LoopState
from .gibbs import GibbsKernel, PresettableKernel, fast_initial_state
from .hmc_gibbs import HMCGibbs
from .linear_gaussian import (
    DEFAULT_RELATIVE_NOISE_FLOOR,
    LinearGaussianFit,
    fit_by_svi,
    fit_factor_analysis,
    fit_ppca,
)
from .partition import (
    LogPartitionEstimate,
    annealed_importance_sampling,
    annealing_schedule,
    base_rate_visible_bias,
    reverse_annealed_importance_sampling,
)
from .rbm_training import RBMEpoch, RBMTrainingConfig, RBMTrainingResult, fit_rbm, rbm_model
from .trainer import (
    EpochRecord,
    TrainingConfig,
    TrainingResult,
    fit_maximum_likelihood,
    mean_nll,
)

__all__ = [
    "AutoBinaryAutoregressive",
    "AutoGaussianMADE",
    "InverseAutoregressiveAffine",
    "ContrastiveDivergence",
    "GibbsKernel",
    "HMCGibbs",
    "PresettableKernel",
    "LogPartitionEstimate",
    "RBMEpoch",
    "RBMTrainingConfig",
    "RBMTrainingResult",
    "annealed_importance_sampling",
    "annealing_schedule",
    "base_rate_visible_bias",
    "fit_rbm",
    "pseudo_likelihood",
    "rbm_model",
    "reconstruction_error",
    "reverse_annealed_importance_sampling",
    "CHECKPOINT_FORMAT",
    "DEFAULT_RELATIVE_NOISE_FLOOR",
    "assemble_loadings",
    "bayesian_linear_gaussian_model",
    "initial_values",
    "rotate_to_lower_triangular",
    "LinearGaussianFit",
    "fast_initial_state",
    "fit_by_svi",
    "fit_factor_analysis",
    "fit_ppca",
    "CheckpointError",
    "EpochLoop",
    "LoopState",
    "is_checkpoint",
    "EpochRecord",
    "TrainingConfig",
    "TrainingResult",
    "fit_maximum_likelihood",
    "load_checkpoint",
    "mean_nll",
    "save_checkpoint",
]
