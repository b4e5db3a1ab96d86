r"""Checkpoints: a module's configuration and weights in one file, written atomically."""

from __future__ import annotations

__all__ = ["CHECKPOINT_FORMAT", "CheckpointError", "load_checkpoint", "save_checkpoint"]

import io
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..files import write_atomically

#: Tag stored in every checkpoint, so that foreign files are recognized.
CHECKPOINT_FORMAT = "pyro_ar.checkpoint/1"


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable, or not a pyro_ar checkpoint."""


def _registry() -> dict[str, type[nn.Module]]:
    from ..nn import MODULES

    return MODULES


def save_checkpoint(path: str | os.PathLike, module: nn.Module, **metadata: Any) -> Path:
    """Saves ``module`` (its ``config`` and state dict) and plain ``metadata``.

    The file is written under a temporary name in the same directory and renamed over ``path``
    only once complete, so a crash never leaves a truncated checkpoint (the previous one stays).

    Arguments:
        path: Destination file.
        module: A module registered in :data:`pyro_ar.nn.MODULES`.
        metadata: Extra plain values (numbers, strings, lists, dicts) such as metrics.
    """
    names = {cls: name for name, cls in _registry().items()}
    if type(module) not in names:
        raise CheckpointError(
            f"cannot checkpoint {type(module).__name__}: not in pyro_ar.nn.MODULES"
        )
    path = Path(path)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "model": names[type(module)],
        "config": module.config,
        "state_dict": {key: value.detach().cpu() for key, value in module.state_dict().items()},
        "metadata": metadata,
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    write_atomically(path, buffer.getvalue())
    return path


def load_checkpoint(
    path: str | os.PathLike, map_location: str | torch.device = "cpu"
) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuilds the module saved by :func:`save_checkpoint`.

    Only tensors and plain values are unpickled (``weights_only=True``), so loading a file from
    an untrusted source cannot run code.

    Returns:
        The module (in evaluation mode) and the checkpoint's metadata, with ``model`` and
        ``config`` added.

    Raises:
        CheckpointError: the file is missing, corrupt, or not a pyro_ar checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no such checkpoint: {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises many types for damaged files
        raise CheckpointError(
            f"{path} is not a readable checkpoint ({type(error).__name__})"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a pyro_ar checkpoint")
    registry = _registry()
    if payload.get("model") not in registry:
        raise CheckpointError(f"{path} holds an unknown model {payload.get('model')!r}")
    try:
        module = registry[payload["model"]](**payload["config"])
        module.load_state_dict(payload["state_dict"])
    except (TypeError, RuntimeError, ValueError, KeyError) as error:
        raise CheckpointError(f"{path}: the weights do not fit the model ({error})") from None
    metadata = dict(payload.get("metadata", {}))
    metadata.update(model=payload["model"], config=payload["config"])
    return module.to(map_location).eval(), metadata
