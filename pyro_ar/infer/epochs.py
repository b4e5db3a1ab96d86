r"""The epoch loop that every trainer shares: shuffled minibatches, a validation criterion after
each epoch, early stopping with the best epoch restored, a time budget, progress, and a state
that can be saved and resumed.

What varies between trainers is the *objective*: how one minibatch updates the parameters
(maximum likelihood with Adam, contrastive divergence through SVI) and how an epoch is judged
on validation data. :class:`EpochLoop` takes both as functions.

Example:
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> module, data = torch.nn.Linear(1, 1), torch.randn(20, 1)
    >>> optimizer = torch.optim.SGD(module.parameters(), lr=0.1)
    >>> def step(batch):  # least squares towards 3 x
    ...     loss = (module(batch) - 3 * batch).pow(2).mean()
    ...     optimizer.zero_grad()
    ...     loss.backward()
    ...     optimizer.step()
    ...     return loss.item()
    >>> def validate(epoch):
    ...     with torch.no_grad():
    ...         return (module(data) - 3 * data).pow(2).mean().item()
    >>> loop = EpochLoop(epochs=3, batch_size=5, patience=2, progress=False)
    >>> state = loop.run(module, lambda epoch: data, step, validate)
    >>> len(state.history), state.best_epoch, state.improved
    (3, 3, True)
"""

from __future__ import annotations

__all__ = [
    "EpochLoop",
    "LoopState",
    "Checkpointing",
    "load_training_state",
]

import copy
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from ..io.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from ..progress import Progress

logger = logging.getLogger(__name__)


@dataclass
class LoopState:
    """Where a run of :class:`EpochLoop` stands: enough to resume it.

    Attributes:
        epoch: The last completed epoch (0 before the first).
        best_epoch: The epoch with the lowest validation criterion (0: the initialization).
        best_value: That criterion.
        initial_value: The criterion of the initial parameters.
        history: One record per epoch (what ``validate`` returned besides the criterion).
        elapsed_seconds: Training time so far, over every resumed run.
        generator_state: The shuffling generator's state after ``epoch``.
        stop_reason: Why the last run stopped.

    Example:
        >>> state = LoopState(epoch=3, best_epoch=2, best_value=1.5, initial_value=2.0)
        >>> state.improved, LoopState.from_dict(state.to_dict()).best_epoch
        (True, 2)
    """

    epoch: int = 0
    best_epoch: int = 0
    best_value: float = math.inf
    history: list = field(default_factory=list)
    elapsed_seconds: float = 0.0
    generator_state: Tensor | None = None
    stop_reason: str = ""
    best_module_state: dict | None = None
    initial_value: float = math.inf

    @property
    def improved(self) -> bool:
        """Whether the best epoch is a trained one that beats the initialization."""
        return self.best_epoch > 0 and self.best_value < self.initial_value

    def to_dict(self) -> dict[str, Any]:
        """Plain values and tensors, for a checkpoint (the best module state is the
        checkpoint's own weights)."""
        return {
            "epoch": self.epoch,
            "best_epoch": self.best_epoch,
            "best_value": self.best_value,
            "history": [
                record if isinstance(record, dict) else vars(record) for record in self.history
            ],
            "elapsed_seconds": self.elapsed_seconds,
            "generator_state": self.generator_state,
            "initial_value": self.initial_value,
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any], record_type: type | None = None) -> LoopState:
        history = list(values.get("history", []))
        if record_type is not None:
            history = [record_type(**record) for record in history]
        return cls(
            epoch=int(values["epoch"]),
            best_epoch=int(values["best_epoch"]),
            best_value=float(values["best_value"]),
            history=history,
            elapsed_seconds=float(values.get("elapsed_seconds", 0.0)),
            generator_state=values.get("generator_state"),
            initial_value=float(values.get("initial_value", math.inf)),
        )


class EpochLoop:
    r"""Runs epochs of minibatch updates with validation, early stopping and a time budget.

    Each epoch shuffles that epoch's training set with a seeded generator, calls ``step`` on
    every minibatch, then ``validate(epoch)``, which returns the criterion (lower is better: a
    validation NLL, a negative pseudo-likelihood), or the criterion and a dict of further
    figures; ``make_record(epoch=, train_loss=, valid=, seconds=, **figures)`` turns them into
    the epoch's history record (default: a dict). On improvement the module's weights are kept,
    written with the state needed to resume where a :class:`Checkpointing` is given, and
    ``on_improvement(state)`` runs.
    The run stops after ``epochs`` epochs, after ``patience`` epochs without improvement, or
    before an epoch that would end past ``max_seconds`` (judged by the last epoch's length; the
    first epoch always runs); the best weights are then restored.

    Arguments:
        epochs: The last epoch to run (a resumed run continues up to it).
        batch_size: Examples per step.
        patience: Epochs without improvement before stopping (``None``: never stop early).
        max_seconds: Wall-clock budget of this run, or ``None``.
        seed: Seeds the shuffling.
        progress: Report progress (a bar on a terminal, plain log lines otherwise).
        description: The progress label.
        restore_best: Restore the best epoch's weights at the end.
        initial_is_candidate: Whether the initial parameters (epoch 0) can be the best; when
            false they are still validated (``initial_value``) but the best is a trained epoch
            (for criteria that are only a proxy, such as an RBM's pseudo-likelihood, on which an
            untrained independent-pixel model can lead the first epochs).
    """

    def __init__(
        self,
        epochs: int,
        batch_size: int,
        patience: int | None = None,
        max_seconds: float | None = None,
        seed: int = 0,
        progress: bool = True,
        description: str = "training",
        restore_best: bool = True,
        initial_is_candidate: bool = True,
    ) -> None:
        self.epochs, self.batch_size, self.patience = epochs, batch_size, patience
        self.max_seconds, self.seed, self.progress = max_seconds, seed, progress
        self.description, self.restore_best = description, restore_best
        self.initial_is_candidate = initial_is_candidate

    @classmethod
    def from_config(cls, config, **options) -> EpochLoop:
        """A loop with a trainer config's shared settings (``epochs``, ``batch_size``,
        ``patience``, ``max_seconds``, ``seed``, ``progress``) and further ``options``."""
        shared = ("epochs", "batch_size", "patience", "max_seconds", "seed", "progress")
        return cls(**{name: getattr(config, name) for name in shared}, **options)

    def run(
        self,
        module: nn.Module,
        train_of_epoch: Callable[[int], Tensor],
        step: Callable[[Tensor], float],
        validate: Callable[[int], float | tuple[float, Any]],
        state: LoopState | None = None,
        on_epoch_start: Callable[[int], None] | None = None,
        on_epoch_end: Callable[[int], None] | None = None,
        on_improvement: Callable[[LoopState], None] | None = None,
        batches_per_epoch: int | None = None,
        make_record: Callable[..., Any] = dict,
        checkpoint: Checkpointing | None = None,
    ) -> LoopState:
        """Runs the loop from ``state`` (a fresh start if ``None``: the initial parameters are
        validated as epoch 0) and returns the final state; the module holds the best weights.

        Raises:
            FloatingPointError: ``step`` returned a loss that is not finite.
        """
        generator = torch.Generator().manual_seed(self.seed)
        if state is None:
            state = LoopState()
            module.eval()
            state.initial_value = _criterion(validate(0))[0]
            if self.initial_is_candidate:
                state.best_value = state.initial_value
            state.best_module_state = copy.deepcopy(module.state_dict())
        else:
            state.best_module_state = copy.deepcopy(module.state_dict())
            if state.generator_state is not None:
                generator.set_state(state.generator_state)
        state.stop_reason = "epochs"
        start_time = time.perf_counter()
        previous_seconds = state.elapsed_seconds
        total = None
        if batches_per_epoch is not None:
            total = max(self.epochs - state.epoch, 0) * batches_per_epoch
        with Progress(total, self.description, self.progress, unit="batch") as progress:
            for epoch in range(state.epoch + 1, self.epochs + 1):
                epoch_start = time.perf_counter()
                if on_epoch_start is not None:
                    on_epoch_start(epoch)
                module.train()
                train = train_of_epoch(epoch)
                if len(train) == 0:
                    raise ValueError(f"the training set of epoch {epoch} is empty")
                order = torch.randperm(len(train), generator=generator)
                total_loss, count = 0.0, 0
                for first in range(0, len(train), self.batch_size):
                    batch = train[order[first : first + self.batch_size]]
                    loss = step(batch)
                    if not math.isfinite(loss):
                        raise FloatingPointError(
                            f"training loss became {loss} at epoch {epoch}; lower the "
                            "learning rate"
                        )
                    total_loss += loss * len(batch)
                    count += len(batch)
                    progress.update(epoch=epoch)
                if on_epoch_end is not None:
                    on_epoch_end(epoch)
                module.eval()
                value, figures = _criterion(validate(epoch))
                seconds = time.perf_counter() - epoch_start
                state.epoch = epoch
                state.generator_state = generator.get_state()
                state.elapsed_seconds = previous_seconds + time.perf_counter() - start_time
                state.history.append(
                    make_record(
                        epoch=epoch,
                        train_loss=total_loss / count,
                        valid=value,
                        seconds=seconds,
                        **figures,
                    )
                )
                progress.set_status(epoch=epoch, valid=f"{value:.3f}")
                if value < state.best_value:
                    state.best_value, state.best_epoch = value, epoch
                    state.best_module_state = copy.deepcopy(module.state_dict())
                    if checkpoint is not None:
                        checkpoint.save(module, state)
                    if on_improvement is not None:
                        on_improvement(state)
                elif self.patience is not None and epoch - state.best_epoch >= self.patience:
                    state.stop_reason = "early stopping"
                    break
                elapsed = time.perf_counter() - start_time
                if self.max_seconds is not None and elapsed + seconds > self.max_seconds:
                    if epoch < self.epochs:
                        state.stop_reason = "time budget"
                    break
        state.elapsed_seconds = previous_seconds + time.perf_counter() - start_time
        if self.restore_best:
            module.load_state_dict(state.best_module_state)
        module.eval()
        if state.epoch > 0 and not state.improved:
            logger.warning(
                "training did not improve on the validation criterion of the initialization "
                "(%.4g; best %.4g at epoch %d of %d)",
                state.initial_value,
                state.best_value,
                state.best_epoch,
                state.epoch,
            )
        return state


def _criterion(result) -> tuple[float, dict]:
    value, figures = result if isinstance(result, tuple) else (result, {})
    value = float(value)
    if math.isnan(value):
        value = math.inf  # a NaN validation figure never counts as an improvement
    return value, dict(figures)


def load_training_state(path, module: nn.Module) -> dict[str, Any]:
    """Loads a trainer's checkpoint into ``module`` and returns its ``training_state`` (the
    loop's state under ``"loop"``, and the objective's, e.g. the optimizer's).

    Raises:
        CheckpointError: the checkpoint holds another model or configuration, or no training
            state.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from pyro_ar.io import save_checkpoint
        >>> from pyro_ar.nn import FVSBNModule
        >>> path = save_checkpoint(Path(tempfile.mkdtemp()) / "final.pt", FVSBNModule(4))
        >>> try:  # a checkpoint without a training state cannot be resumed
        ...     load_training_state(path, FVSBNModule(4))
        ... except CheckpointError:
        ...     print("no training state")
        no training state
    """
    loaded, metadata = load_checkpoint(path)
    if type(loaded) is not type(module) or loaded.config != module.config:
        raise CheckpointError(
            f"{path} holds a {type(loaded).__name__} with config {loaded.config}; it cannot "
            f"resume training of a {type(module).__name__} with config {module.config}"
        )
    training = metadata.get("training_state")
    if not isinstance(training, dict) or "loop" not in training:
        raise CheckpointError(f"{path} has no training state to resume from")
    module.load_state_dict(loaded.state_dict())
    return training


@dataclass
class Checkpointing:
    """Where :class:`EpochLoop` writes the best epoch, and what resuming needs besides the
    loop's state.

    Attributes:
        path: The checkpoint file (written atomically).
        objective_state: Returns the objective's state (an optimizer's, persistent chains),
            stored with the loop's under ``training_state``.
        criterion: The name under which the best validation figure is stored.
        metadata: Further plain values for the checkpoint.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from pyro_ar.data import load_binarized_digits
        >>> from pyro_ar.infer import TrainingConfig, fit_maximum_likelihood
        >>> from pyro_ar.nn import FVSBNModule
        >>> digits = load_binarized_digits()
        >>> path = Path(tempfile.mkdtemp()) / "fvsbn.pt"  # the trainers build the Checkpointing
        >>> config = TrainingConfig(epochs=2, progress=False)
        >>> _ = fit_maximum_likelihood(FVSBNModule(64), digits.train, digits.valid, config, path)
        >>> sorted(load_training_state(path, FVSBNModule(64)))  # loop, Adam, schedule
        ['loop', 'optimizer', 'schedule']
    """

    path: Any
    objective_state: Callable[[], dict[str, Any]]
    criterion: str = "valid_nll"
    metadata: dict[str, Any] | None = None

    def save(self, module: nn.Module, state: LoopState) -> None:
        save_checkpoint(
            self.path,
            module,
            epoch=state.best_epoch,
            **{self.criterion: state.best_value},
            training_state={"loop": state.to_dict(), **self.objective_state()},
            **(self.metadata or {}),
        )
