r"""Inference and training: maximum-likelihood trainer and checkpoints."""

from .checkpoint import CHECKPOINT_FORMAT, CheckpointError, load_checkpoint, save_checkpoint
from .trainer import (
    EpochRecord,
    TrainingConfig,
    TrainingResult,
    fit_maximum_likelihood,
    mean_nll,
)

__all__ = [
    "CHECKPOINT_FORMAT",
    "CheckpointError",
    "EpochRecord",
    "TrainingConfig",
    "TrainingResult",
    "fit_maximum_likelihood",
    "load_checkpoint",
    "mean_nll",
    "save_checkpoint",
]
