r"""Training RBMs by (persistent) contrastive divergence through Pyro's SVI, with validation,
early stopping, checkpoints and resumption."""

from __future__ import annotations

__all__ = ["RBMEpoch", "RBMTrainingConfig", "RBMTrainingResult", "fit_rbm", "rbm_model"]

import logging
import math
import os
from dataclasses import dataclass, field

import pyro
import torch
from torch import Tensor

from ..nn.rbm import RBMModule
from .contrastive_divergence import ContrastiveDivergence, pseudo_likelihood, reconstruction_error
from .epochs import Checkpointing, EpochLoop, LoopState, load_training_state
from .trainer import check_training_settings

logger = logging.getLogger(__name__)


@dataclass
class RBMTrainingConfig:
    """Settings of :func:`fit_rbm` (defaults after Hinton's practical guide).

    Attributes:
        learning_rate: Step size for the *mean* gradient over a minibatch.
        momentum: ``(initial, final)``; the final value applies from ``momentum_switch_epoch``.
        weight_decay: L2 penalty on all parameters (through the optimizer).
        learning_rate_decay: Multiplies the learning rate after every epoch.
        cd_steps: Gibbs sweeps per update (CD-k / PCD-k).
        persistent: Persistent CD (chains kept between updates).
        num_chains: Persistent chains (default: the batch size).
        monitor_rows: Validation rows for the per-epoch criterion and monitors.
        patience: Stop after this many epochs without a better validation criterion
            (``None``: run every epoch).
        restore_best: Restore the weights of the best epoch at the end.
        max_seconds: Stop before an epoch that would overrun this budget.

    Example:
        >>> config = RBMTrainingConfig(epochs=5, cd_steps=3, persistent=True)
        >>> config.momentum, config.patience
        ((0.5, 0.9), None)
    """

    epochs: int = 20
    batch_size: int = 100
    learning_rate: float = 0.05
    momentum: tuple[float, float] = (0.5, 0.9)
    momentum_switch_epoch: int = 5
    weight_decay: float = 2e-4
    learning_rate_decay: float = 1.0
    cd_steps: int = 1
    persistent: bool = False
    num_chains: int | None = None
    monitor_rows: int = 500
    patience: int | None = None
    restore_best: bool = True
    max_seconds: float | None = None
    seed: int = 0
    progress: bool = True

    def __post_init__(self) -> None:
        check_training_settings(
            self,
            positive_integers=("epochs", "batch_size", "cd_steps", "monitor_rows"),
            positive_numbers=("learning_rate",),
        )
        if self.patience is not None and (
            isinstance(self.patience, bool) or not isinstance(self.patience, int)
        ):
            raise ValueError(f"patience must be an integer or None, got {self.patience!r}")
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"patience must be at least 1, got {self.patience}")
        if len(self.momentum) != 2 or not all(0 <= m < 1 for m in self.momentum):
            raise ValueError(f"momentum must be two values in [0, 1), got {self.momentum}")
        if not 0 <= self.weight_decay < math.inf:
            raise ValueError(f"weight_decay must be finite and >= 0, got {self.weight_decay}")
        if not 0 < self.learning_rate_decay <= 1:
            raise ValueError(
                f"learning_rate_decay must lie in (0, 1], got {self.learning_rate_decay}"
            )


@dataclass
class RBMEpoch:
    """Figures of one epoch: the CD surrogate, and on the validation rows the criterion (the
    exact NLL when the RBM has an exact log Z, else the negative pseudo-likelihood per row), the
    pseudo-likelihood and the reconstruction error.

    Example:
        >>> record = RBMEpoch(1, surrogate=0.5, valid_pseudo_likelihood=-20.0,
        ...                   valid_reconstruction_error=0.1, seconds=1.2)
        >>> record.valid_nll is None  # no exact log Z: the criterion is the pseudo-likelihood
        True
    """

    epoch: int
    surrogate: float
    valid_pseudo_likelihood: float
    valid_reconstruction_error: float
    seconds: float
    valid_criterion: float = math.nan
    valid_nll: float | None = None


@dataclass
class RBMTrainingResult:
    """What :func:`fit_rbm` did; the module holds the best epoch's weights (``criterion``:
    ``"nll"`` or ``"pseudo_likelihood"``, of which ``best_value`` and ``initial_value`` are
    the negated per-row figures).

    Example:
        >>> from pyro_ar.data import load_binarized_digits
        >>> digits = load_binarized_digits()
        >>> module = RBMModule(64, 8, data=digits.train, seed=0)  # 8 hidden units: exact log Z
        >>> config = RBMTrainingConfig(epochs=2, progress=False)
        >>> result = fit_rbm(module, digits.train, digits.valid, config)
        >>> result.criterion, len(result.history), result.history[-1].valid_nll > 0
        ('nll', 2, True)
    """

    module: RBMModule
    history: list[RBMEpoch] = field(default_factory=list)
    seconds: float = 0.0
    best_epoch: int = 0
    criterion: str = "pseudo_likelihood"
    stop_reason: str = "epochs"
    best_value: float = math.inf
    initial_value: float = math.inf

    @property
    def improved(self) -> bool:
        """Whether the best epoch beats the initialization on the validation criterion (the
        best epoch is always a trained one: for contrastive divergence the criterion is a
        proxy, and the untrained independent-pixel initialization often leads it at first)."""
        return self.best_value < self.initial_value


def rbm_model(module: RBMModule, batch: Tensor) -> None:
    """The Pyro model CD trains: ``visible ~ RBM`` observed, one row per plate element.

    Example:
        >>> import pyro
        >>> from pyro_ar.nn import RBMModule
        >>> trace = pyro.poutine.trace(rbm_model).get_trace(RBMModule(6, 4), torch.ones(5, 6))
        >>> trace.nodes["visible"]["is_observed"], trace.nodes["visible"]["value"].shape
        (True, torch.Size([5, 6]))
    """
    pyro.module("rbm", module)
    with pyro.plate("rows", batch.shape[0]):
        pyro.sample("visible", module(), obs=batch)


def _guide(module: RBMModule, batch: Tensor) -> None:
    pass


def fit_rbm(
    module: RBMModule,
    train: Tensor,
    valid: Tensor,
    config: RBMTrainingConfig,
    checkpoint_path: str | os.PathLike | None = None,
    checkpoint_metadata: dict | None = None,
    resume_from: str | os.PathLike | None = None,
) -> RBMTrainingResult:
    r"""Trains ``module`` with ``SVI(rbm_model, guide, SGD(momentum, weight_decay),
    ContrastiveDivergence(cd_steps, persistent))`` over shuffled minibatches.

    After every epoch the first ``monitor_rows`` validation rows are scored: by the exact NLL
    when the RBM's log partition is exact (a layer of at most 20 units), else by the negative
    deterministic pseudo-likelihood; the reconstruction error is recorded too. The best epoch's
    weights are kept (and written to ``checkpoint_path`` with the optimizer's state, the
    persistent chains and the loop's state), training stops early after ``patience`` epochs
    without improvement, and the best weights are restored at the end.

    Arguments:
        module: The RBM's parameters.
        train, valid: Binary rows ``(N, D)``.
        config: Settings.
        checkpoint_path: Optional file for the best checkpoint (written atomically).
        checkpoint_metadata: Extra plain values stored in the checkpoint.
        resume_from: A checkpoint written by this function: weights, optimizer state (momentum,
            decayed learning rate), persistent chains and history are restored and training
            continues from its epoch up to ``config.epochs``.

    Example:
        >>> from pyro_ar.data import load_binarized_digits
        >>> from pyro_ar.nn import RBMModule
        >>> digits = load_binarized_digits()
        >>> config = RBMTrainingConfig(epochs=2, cd_steps=1, seed=0, progress=False)
        >>> result = fit_rbm(RBMModule(64, 8), digits.train, digits.valid, config)
        >>> len(result.history), result.criterion  # H = 8: log Z is exact, so is the criterion
        (2, 'nll')
    """
    torch.manual_seed(config.seed)
    pyro.clear_param_store()
    dtype = module.weight.dtype
    train = train.to(dtype)
    monitor = valid[: config.monitor_rows].to(dtype)
    if len(train) == 0 or len(monitor) == 0:
        raise ValueError("training and validation sets must not be empty")
    optimizer = pyro.optim.SGD(
        {
            "lr": config.learning_rate / config.batch_size,
            "momentum": config.momentum[0],
            "weight_decay": config.weight_decay * config.batch_size,
        }
    )
    loss = ContrastiveDivergence(config.cd_steps, config.persistent, config.num_chains)
    svi = pyro.infer.SVI(rbm_model, _guide, optimizer, loss)
    state = None
    if resume_from is not None:
        state = _resume(resume_from, module, optimizer, loss)
    exact = module().has_exact_log_partition
    criterion = "nll" if exact else "pseudo_likelihood"

    def on_epoch_start(epoch: int) -> None:
        if epoch == config.momentum_switch_epoch + 1:
            _set_group(optimizer, "momentum", config.momentum[1])

    def on_epoch_end(epoch: int) -> None:
        _set_group(optimizer, "lr", factor=config.learning_rate_decay)

    @torch.no_grad()
    def validate(epoch: int) -> tuple[float, dict]:
        rbm = module()
        pseudo = torch.cat([pseudo_likelihood(rbm, rows) for rows in monitor.split(25)])
        figures = {
            "valid_pseudo_likelihood": pseudo.mean().item(),
            "valid_reconstruction_error": reconstruction_error(rbm, monitor).mean().item(),
            "valid_nll": -rbm.log_prob(monitor).mean().item() if exact else None,
        }
        value = figures["valid_nll"] if exact else -figures["valid_pseudo_likelihood"]
        figures["valid_criterion"] = value
        if epoch:
            logger.info(
                "epoch %d: valid %s %.3f, reconstruction error %.4f",
                epoch,
                "NLL" if exact else "pseudo-likelihood",
                figures["valid_nll"] if exact else figures["valid_pseudo_likelihood"],
                figures["valid_reconstruction_error"],
            )
        return value, figures

    loop = EpochLoop.from_config(
        config,
        description="CD training",
        restore_best=config.restore_best,
        initial_is_candidate=False,
    )
    state = loop.run(
        module,
        lambda epoch: train,
        lambda batch: svi.step(module, batch) / len(batch),
        validate,
        state=state,
        on_epoch_start=on_epoch_start,
        on_epoch_end=on_epoch_end,
        checkpoint=None
        if checkpoint_path is None
        else Checkpointing(
            checkpoint_path,
            lambda: {"optimizer": optimizer.get_state(), "chains": dict(loss.chains)},
            criterion=f"valid_{criterion}",
            metadata=checkpoint_metadata,
        ),
        batches_per_epoch=-(-len(train) // config.batch_size),
        make_record=lambda epoch, train_loss, valid, seconds, **figures: RBMEpoch(
            epoch, train_loss, seconds=seconds, **figures
        ),
    )
    return RBMTrainingResult(
        module,
        state.history,
        state.elapsed_seconds,
        state.best_epoch,
        criterion,
        state.stop_reason,
        state.best_value,
        state.initial_value,
    )


def _set_group(optimizer, key: str, value: float | None = None, factor: float = 1.0) -> None:
    """Sets (or scales) one setting of every per-parameter optimizer of a Pyro optimizer."""
    for optim in optimizer.optim_objs.values():
        for group in optim.param_groups:
            group[key] = value if value is not None else group[key] * factor


def _resume(path, module: RBMModule, optimizer, loss: ContrastiveDivergence) -> LoopState:
    training = load_training_state(path, module)
    optimizer.set_state(training["optimizer"])  # applied when SVI first sees the parameters
    dtype = module.weight.dtype
    loss.chains = {name: chains.to(dtype) for name, chains in training["chains"].items()}
    return LoopState.from_dict(training["loop"], RBMEpoch)
