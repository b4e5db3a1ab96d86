r"""Maximum-likelihood training with minibatches, early stopping and checkpoints.

For a model with parameters :math:`\theta` the trainer minimizes the average negative
log-likelihood :math:`-\frac{1}{N}\sum_n \log p_\theta(x_n)` with Adam, evaluates it on a
validation set after each epoch, and keeps the parameters of the best epoch. It is the same
objective as Pyro's SVI with an observed site and an empty guide, without the tracing overhead.
"""

from __future__ import annotations

__all__ = [
    "EpochRecord",
    "TrainingConfig",
    "TrainingResult",
    "check_training_settings",
    "fit_maximum_likelihood",
    "mean_nll",
]

import logging
import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
from torch import Tensor, nn

from .epochs import Checkpointing, EpochLoop, LoopState, load_training_state

logger = logging.getLogger(__name__)


@dataclass
class TrainingConfig:
    """Settings of :func:`fit_maximum_likelihood`.

    Attributes:
        epochs: Maximum number of passes over the training set (a resumed run continues up to
            this epoch).
        batch_size: Examples per gradient step.
        learning_rate: Adam's step size.
        weight_decay: L2 penalty (Adam's ``weight_decay``).
        learning_rate_decay: The learning rate is multiplied by this after every epoch.
        patience: Stop after this many epochs without a better validation NLL.
        seed: Seeds the shuffling (and torch's global generator) for reproducibility.
        max_seconds: Optional wall-clock budget: no epoch starts that would end past it, judged
            by the last epoch's duration (the first epoch always runs).
        progress: Show progress (a bar on a terminal, plain log lines otherwise).
        eval_batch_size: Examples per batch when evaluating.
        autocast: ``"bfloat16"`` or ``"float16"`` to compute the training loss under
            ``torch.autocast`` (convolutions and matrix products in that precision, the
            parameters, the optimizer and every evaluation in full precision); ``None``: off.
            On CPUs with AMX, bfloat16 makes a PixelCNN step about 1.4x faster.
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
    autocast: str | None = None

    def __post_init__(self) -> None:
        check_training_settings(
            self,
            positive_integers=("epochs", "batch_size", "patience", "eval_batch_size"),
            positive_numbers=("learning_rate",),
        )
        if not 0 <= self.weight_decay < math.inf:
            raise ValueError(f"weight_decay must be finite and >= 0, got {self.weight_decay}")
        if self.autocast not in (None, "bfloat16", "float16"):
            raise ValueError(
                f"autocast must be None, 'bfloat16' or 'float16', got {self.autocast!r}"
            )
        if not 0 < self.learning_rate_decay <= 1:
            raise ValueError(
                f"learning_rate_decay must lie in (0, 1], got {self.learning_rate_decay}"
            )


def check_training_settings(
    config, positive_integers: tuple[str, ...], positive_numbers: tuple[str, ...]
) -> None:
    """Checks the settings every trainer shares: integers at least 1, finite positive numbers,
    a finite non-negative ``max_seconds`` (or ``None``) and an integer ``seed``.

    Raises:
        ValueError: naming the setting and the value.

    Example:
        >>> from types import SimpleNamespace
        >>> config = SimpleNamespace(epochs=0, batch_size=100, learning_rate=1e-3, seed=0,
        ...                          max_seconds=None)
        >>> try:
        ...     check_training_settings(config, ("epochs", "batch_size"), ("learning_rate",))
        ... except ValueError as error:
        ...     print("epochs" in str(error))
        True
    """
    for name in positive_integers:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer of at least 1, got {value!r}")
    for name in positive_numbers:
        value = getattr(config, name)
        if not isinstance(value, (int, float)) or not 0 < value < math.inf:
            raise ValueError(f"{name} must be positive and finite, got {value!r}")
    budget = config.max_seconds
    if budget is not None and not (isinstance(budget, (int, float)) and 0 <= budget < math.inf):
        raise ValueError(f"max_seconds must be a finite number >= 0 or None, got {budget!r}")
    seed = config.seed
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise ValueError(f"seed must be an integer in [0, 2^63), got {seed!r}")


@dataclass
class EpochRecord:
    """Figures of one epoch: mean training NLL over its minibatches, validation NLL (nats).

    Example:
        >>> EpochRecord(epoch=1, train_nll=20.1, valid_nll=19.5, seconds=0.3).valid_nll
        19.5
    """

    epoch: int
    train_nll: float
    valid_nll: float
    seconds: float


@dataclass
class TrainingResult:
    """What :func:`fit_maximum_likelihood` did; the module holds the best epoch's weights.

    ``best_epoch == 0`` means that no epoch improved on the initialization (``improved`` is
    false): the initial weights were kept, and a warning was logged.

    Example:
        >>> from pyro_ar.data import load_binarized_digits
        >>> from pyro_ar.nn import FVSBNModule
        >>> digits = load_binarized_digits()
        >>> module = FVSBNModule(64, data=digits.train)
        >>> config = TrainingConfig(epochs=2, progress=False)
        >>> result = fit_maximum_likelihood(module, digits.train, digits.valid, config)
        >>> result.improved, [record.epoch for record in result.history]
        (True, [1, 2])
    """

    best_epoch: int
    best_valid_nll: float
    elapsed_seconds: float
    stop_reason: str
    history: list[EpochRecord] = field(default_factory=list)

    @property
    def improved(self) -> bool:
        """Whether some epoch improved on the initial validation NLL."""
        return self.best_epoch > 0

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
    resume_from: str | os.PathLike | None = None,
) -> TrainingResult:
    """Fits ``module`` by maximum likelihood with Adam and early stopping.

    After each epoch the validation NLL is computed; on improvement the weights are kept (and
    written atomically to ``checkpoint_path``, if given, with the optimizer's and the loop's
    state, so that the run can be resumed). At the end the best weights are restored into
    ``module``. A module that defines ``after_optimizer_step()`` has it called after every
    optimizer step (a MADE with several mask sets moves to the next one).

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
        resume_from: A checkpoint written by this function: its weights, optimizer state,
            learning rate, shuffling state and history are restored and training continues from
            its epoch up to ``config.epochs`` (the best epoch so far included).

    Returns:
        A :class:`TrainingResult`; ``result.improved`` is false (and a warning is logged) when
        no epoch improved on the initialization.

    Example:
        >>> from pyro_ar.data import load_binarized_digits
        >>> from pyro_ar.nn import NADEModule
        >>> digits = load_binarized_digits()
        >>> nade = NADEModule(64, 16, data=digits.train, seed=0)
        >>> config = TrainingConfig(epochs=3, progress=False)
        >>> result = fit_maximum_likelihood(nade, digits.train, digits.valid, config)
        >>> untrained = mean_nll(NADEModule(64, 16, seed=0), digits.valid)
        >>> len(result.history), result.best_valid_nll < untrained
        (3, True)
    """
    config = config or TrainingConfig()
    fixed_train = None if callable(train) else train
    train_of_epoch = train if fixed_train is None else (lambda epoch: fixed_train)
    if (fixed_train is not None and len(fixed_train) == 0) or len(valid) == 0:
        raise ValueError("training and validation sets must not be empty")
    torch.manual_seed(config.seed)
    device = _device_of(module)
    after_step = getattr(module, "after_optimizer_step", None)
    optimizer = _adam(list(module.parameters()), config.learning_rate, config.weight_decay)
    schedule = torch.optim.lr_scheduler.ExponentialLR(optimizer, config.learning_rate_decay)
    state = None
    if resume_from is not None:
        state = _resume(resume_from, module, optimizer, schedule)

    autocast_dtype = None if config.autocast is None else getattr(torch, config.autocast)

    def step(batch: Tensor) -> float:
        with torch.autocast(
            device.type, dtype=autocast_dtype or torch.bfloat16, enabled=autocast_dtype is not None
        ):
            loss = -module().log_prob(batch.to(device)).mean()
        if not torch.isfinite(loss):
            return float(loss)  # the loop stops with a clear error
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if after_step is not None:
            after_step()
        return loss.item()

    def validate(epoch: int) -> float:
        valid_nll = mean_nll(module, valid, config.eval_batch_size)
        if epoch:
            logger.info("epoch %d: valid NLL %.3f", epoch, valid_nll)
        return valid_nll

    loop = EpochLoop.from_config(config)
    batches = -(-len(fixed_train) // config.batch_size) if fixed_train is not None else None
    state = loop.run(
        module,
        train_of_epoch,
        step,
        validate,
        state=state,
        on_epoch_end=lambda epoch: schedule.step(),
        checkpoint=None
        if checkpoint_path is None
        else Checkpointing(
            checkpoint_path,
            lambda: {"optimizer": optimizer.state_dict(), "schedule": schedule.state_dict()},
            metadata=checkpoint_metadata,
        ),
        batches_per_epoch=batches,
        make_record=lambda epoch, train_loss, valid, seconds: EpochRecord(
            epoch, train_loss, valid, seconds
        ),
    )
    if math.isinf(state.best_value):
        raise FloatingPointError("validation NLL never became finite")
    return TrainingResult(
        best_epoch=state.best_epoch,
        best_valid_nll=state.best_value,
        elapsed_seconds=state.elapsed_seconds,
        stop_reason=state.stop_reason,
        history=state.history,
    )


def _resume(path, module: nn.Module, optimizer, schedule) -> LoopState:
    """Loads a checkpoint of :func:`fit_maximum_likelihood` into the module, optimizer and
    schedule, and returns the loop's state."""
    training = load_training_state(path, module)
    optimizer.load_state_dict(training["optimizer"])
    schedule.load_state_dict(training["schedule"])
    return LoopState.from_dict(training["loop"], EpochRecord)
