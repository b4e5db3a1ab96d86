r"""Maximum-likelihood training with minibatches, early stopping and checkpoints.

For a model with parameters :math:`\theta` the trainer minimizes the average negative
log-likelihood :math:`-\frac{1}{N}\sum_n \log p_\theta(x_n)` with Adam, evaluates it on a
validation set after each epoch, and keeps the parameters of the best epoch. It is the same
objective as Pyro's SVI with an observed site and an empty guide, without the tracing overhead.
"""

from __future__ import annotations

__all__ = ["EpochRecord", "TrainingConfig", "TrainingResult", "fit_maximum_likelihood", "mean_nll"]

import copy
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
from torch import Tensor, nn
from tqdm import tqdm

from .checkpoint import save_checkpoint

logger = logging.getLogger(__name__)


@dataclass
class TrainingConfig:
    """Settings of :func:`fit_maximum_likelihood`.

    Attributes:
        epochs: Maximum number of passes over the training set.
        batch_size: Examples per gradient step.
        learning_rate: Adam's step size.
        weight_decay: L2 penalty (Adam's ``weight_decay``).
        learning_rate_decay: The learning rate is multiplied by this after every epoch.
        patience: Stop after this many epochs without a better validation NLL.
        seed: Seeds the shuffling (and torch's global generator) for reproducibility.
        max_seconds: Optional wall-clock budget: no epoch starts that would end past it, judged
            by the last epoch's duration (the first epoch always runs).
        progress: Show a tqdm progress bar.
        eval_batch_size: Examples per batch when evaluating.
    """

    epochs: int = 100
    batch_size: int = 100
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    learning_rate_decay: float = 1.0
    patience: int = 10
    seed: int = 0
    max_seconds: float | None = None
    progress: bool = True
    eval_batch_size: int = 1000

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "patience", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}")
        if not 0 < self.learning_rate_decay <= 1:
            raise ValueError(
                f"learning_rate_decay must lie in (0, 1], got {self.learning_rate_decay}"
            )


@dataclass
class EpochRecord:
    """Figures of one epoch: mean training NLL over its minibatches, validation NLL (nats)."""

    epoch: int
    train_nll: float
    valid_nll: float
    seconds: float


@dataclass
class TrainingResult:
    """What :func:`fit_maximum_likelihood` did; the module holds the best epoch's weights."""

    best_epoch: int
    best_valid_nll: float
    elapsed_seconds: float
    stop_reason: str
    history: list[EpochRecord] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def _device_of(module: nn.Module) -> torch.device:
    parameter = next(module.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


@torch.no_grad()
def mean_nll(
    module: Callable[[], torch.distributions.Distribution], data: Tensor, batch_size: int = 1000
) -> float:
    r"""Average negative log-likelihood :math:`-\frac{1}{N}\sum_n \log p(x_n)` in nats.

    A module is evaluated in evaluation mode (its training mode is restored afterwards), so a
    MADE with several mask sets is scored as its ensemble, and scoring changes nothing.

    Arguments:
        module: Called with no argument, returns the distribution (e.g. a ``NADEModule``).
        data: Examples, shape ``(N, D)``.
        batch_size: Examples per evaluation batch.
    """
    if len(data) == 0:
        raise ValueError("cannot evaluate the NLL of an empty data set")
    if isinstance(module, nn.Module):
        device, was_training = _device_of(module), module.training
        module.eval()  # the model as evaluated (a MADE mask ensemble, not one mask set)
        try:
            distribution = module()
        finally:
            module.train(was_training)
    else:
        device, distribution = data.device, module()
    total = 0.0
    for start in range(0, len(data), batch_size):
        batch = data[start : start + batch_size].to(device)
        total -= distribution.log_prob(batch).sum().item()
    return total / len(data)


def _adam(parameters: list[Tensor], learning_rate: float, weight_decay: float):
    r"""Adam, fused where PyTorch supports it (CPU from 2.4, CUDA).

    Unfused Adam on CPU takes :math:`\sqrt{v}` through MKL's vector math, which runs about seven
    times slower on exact zeros, and a masked network's second moments are zero wherever its
    mask is (python bench/made_speed.py measures both).
    """
    if all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in parameters):
        try:
            return torch.optim.Adam(
                parameters, lr=learning_rate, weight_decay=weight_decay, fused=True
            )
        except (RuntimeError, ValueError):  # an older PyTorch without fused CPU Adam
            pass
    return torch.optim.Adam(parameters, lr=learning_rate, weight_decay=weight_decay)


def fit_maximum_likelihood(
    module: nn.Module,
    train: Tensor | Callable[[int], Tensor],
    valid: Tensor,
    config: TrainingConfig | None = None,
    checkpoint_path: str | os.PathLike | None = None,
    checkpoint_metadata: dict | None = None,
) -> TrainingResult:
    """Fits ``module`` by maximum likelihood with Adam and early stopping.

    After each epoch the validation NLL is computed; on improvement the weights are kept (and
    written atomically to ``checkpoint_path``, if given). At the end the best weights are
    restored into ``module``. A module that defines ``after_optimizer_step()`` has it called
    after every optimizer step (a MADE with several mask sets moves to the next one).

    Arguments:
        module: Returns a distribution when called with no argument (``FVSBNModule``,
            ``NADEModule``, ...).
        train: Training examples, shape ``(N, D)``, or a callable that returns the training
            examples of epoch ``e`` (1, 2, ...), such as
            :class:`~pyro_ar.data.DynamicBinarization`.
        valid: Validation examples, shape ``(M, D)``.
        config: Settings; defaults to :class:`TrainingConfig` ().
        checkpoint_path: Optional file for the best checkpoint.
        checkpoint_metadata: Extra plain values stored in the checkpoint.
    """
    config = config or TrainingConfig()
    fixed_train = None if callable(train) else train
    train_of_epoch = train if fixed_train is None else (lambda epoch: fixed_train)
    if (fixed_train is not None and len(fixed_train) == 0) or len(valid) == 0:
        raise ValueError("training and validation sets must not be empty")
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    device = _device_of(module)
    after_step = getattr(module, "after_optimizer_step", None)
    optimizer = _adam(list(module.parameters()), config.learning_rate, config.weight_decay)
    schedule = torch.optim.lr_scheduler.ExponentialLR(optimizer, config.learning_rate_decay)
    best_state = copy.deepcopy(module.state_dict())
    best_valid, best_epoch = mean_nll(module, valid, config.eval_batch_size), 0
    history: list[EpochRecord] = []
    start_time = time.perf_counter()
    stop_reason = "epochs"
    batches_per_epoch = -(-len(train) // config.batch_size) if hasattr(train, "__len__") else 0
    bar = tqdm(
        total=(config.epochs * batches_per_epoch) or None,
        unit="batch",
        desc="training",
        disable=not config.progress,
    )
    for epoch in range(1, config.epochs + 1):
        epoch_start = time.perf_counter()
        module.train()
        epoch_train = train_of_epoch(epoch)
        if len(epoch_train) == 0:
            raise ValueError(f"the training set of epoch {epoch} is empty")
        order = torch.randperm(len(epoch_train), generator=generator)
        total, count = 0.0, 0
        for start in range(0, len(epoch_train), config.batch_size):
            batch = epoch_train[order[start : start + config.batch_size]].to(device)
            loss = -module().log_prob(batch).mean()
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"training loss became {loss.item()} at epoch {epoch}; lower the learning rate"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if after_step is not None:
                after_step()
            total += loss.item() * len(batch)
            count += len(batch)
            bar.update()
        schedule.step()
        module.eval()
        valid_nll = mean_nll(module, valid, config.eval_batch_size)
        record = EpochRecord(epoch, total / count, valid_nll, time.perf_counter() - epoch_start)
        history.append(record)
        logger.info("epoch %d: train NLL %.3f, valid NLL %.3f", epoch, record.train_nll, valid_nll)
        bar.set_postfix(epoch=epoch, train=f"{record.train_nll:.2f}", valid=f"{valid_nll:.2f}")
        if valid_nll < best_valid:
            best_valid, best_epoch = valid_nll, epoch
            best_state = copy.deepcopy(module.state_dict())
            if checkpoint_path is not None:
                save_checkpoint(
                    checkpoint_path,
                    module,
                    epoch=epoch,
                    valid_nll=valid_nll,
                    **(checkpoint_metadata or {}),
                )
        elif epoch - best_epoch >= config.patience:
            stop_reason = "early stopping"
            break
        # stop before an epoch that would end past the budget, judged by this epoch's length
        elapsed = time.perf_counter() - start_time
        if config.max_seconds is not None and elapsed + record.seconds > config.max_seconds:
            stop_reason = "time budget"
            break
    bar.close()
    module.load_state_dict(best_state)
    module.eval()
    if math.isinf(best_valid):
        raise FloatingPointError("validation NLL never became finite")
    return TrainingResult(
        best_epoch=best_epoch,
        best_valid_nll=best_valid,
        elapsed_seconds=time.perf_counter() - start_time,
        stop_reason=stop_reason,
        history=history,
    )
