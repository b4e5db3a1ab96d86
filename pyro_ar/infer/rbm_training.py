r"""Training RBMs by (persistent) contrastive divergence through Pyro's SVI, with monitoring."""

from __future__ import annotations

__all__ = ["RBMEpoch", "RBMTrainingConfig", "RBMTrainingResult", "fit_rbm", "rbm_model"]

import logging
import time
from dataclasses import dataclass, field

import pyro
import torch
from torch import Tensor
from tqdm.auto import tqdm

from ..nn.rbm import RBMModule
from .contrastive_divergence import ContrastiveDivergence, pseudo_likelihood, reconstruction_error

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
        monitor_rows: Validation rows for the per-epoch pseudo-likelihood.
        max_seconds: Stop before an epoch that would overrun this budget.
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
    max_seconds: float | None = None
    seed: int = 0
    progress: bool = True


@dataclass
class RBMEpoch:
    epoch: int
    surrogate: float
    valid_pseudo_likelihood: float
    valid_reconstruction_error: float
    seconds: float


@dataclass
class RBMTrainingResult:
    module: RBMModule
    history: list[RBMEpoch] = field(default_factory=list)
    seconds: float = 0.0


def rbm_model(module: RBMModule, batch: Tensor) -> None:
    """The Pyro model CD trains: ``visible ~ RBM`` observed, one row per plate element."""
    pyro.module("rbm", module)
    with pyro.plate("rows", batch.shape[0]):
        pyro.sample("visible", module(), obs=batch)


def _guide(module: RBMModule, batch: Tensor) -> None:
    pass


def fit_rbm(
    module: RBMModule, train: Tensor, valid: Tensor, config: RBMTrainingConfig
) -> RBMTrainingResult:
    r"""Trains ``module`` with ``SVI(rbm_model, guide, SGD(momentum, weight_decay),
    ContrastiveDivergence(cd_steps, persistent))`` over shuffled minibatches, logging the
    validation pseudo-likelihood and reconstruction error after every epoch."""
    torch.manual_seed(config.seed)
    pyro.clear_param_store()
    dtype = module.weight.dtype
    train = train.to(dtype)
    monitor = valid[: config.monitor_rows].to(dtype)
    optimizer = pyro.optim.SGD(
        {
            "lr": config.learning_rate / config.batch_size,
            "momentum": config.momentum[0],
            "weight_decay": config.weight_decay * config.batch_size,
        }
    )
    loss = ContrastiveDivergence(config.cd_steps, config.persistent, config.num_chains)
    svi = pyro.infer.SVI(rbm_model, _guide, optimizer, loss)
    result = RBMTrainingResult(module)
    start = time.perf_counter()
    generator = torch.Generator().manual_seed(config.seed)
    for epoch in range(1, config.epochs + 1):
        if config.max_seconds is not None and result.history:
            elapsed = time.perf_counter() - start
            if elapsed + result.history[-1].seconds > config.max_seconds:
                logger.info("stopping before epoch %d: time budget", epoch)
                break
        epoch_start = time.perf_counter()
        if epoch == config.momentum_switch_epoch + 1:
            for optim in optimizer.optim_objs.values():
                for group in optim.param_groups:
                    group["momentum"] = config.momentum[1]
        order = torch.randperm(len(train), generator=generator)
        total = 0.0
        batches = range(0, len(train), config.batch_size)
        for first in tqdm(
            batches, desc=f"epoch {epoch}", disable=not config.progress, leave=False
        ):
            total += svi.step(module, train[order[first : first + config.batch_size]])
        for optim in optimizer.optim_objs.values():
            for group in optim.param_groups:
                group["lr"] *= config.learning_rate_decay
        with torch.no_grad():
            rbm = module()
            pseudo = torch.cat([pseudo_likelihood(rbm, rows) for rows in monitor.split(25)])
            error = reconstruction_error(rbm, monitor).mean().item()
        record = RBMEpoch(
            epoch,
            total / len(train),
            pseudo.mean().item(),
            error,
            time.perf_counter() - epoch_start,
        )
        result.history.append(record)
        logger.info(
            "epoch %d: valid pseudo-likelihood %.2f, reconstruction error %.4f, %.1f s",
            epoch,
            record.valid_pseudo_likelihood,
            error,
            record.seconds,
        )
    result.seconds = time.perf_counter() - start
    return result
