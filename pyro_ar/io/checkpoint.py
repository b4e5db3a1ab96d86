r"""Checkpoints: a module's configuration and weights in one file, written atomically."""

from __future__ import annotations

__all__ = [
    "CHECKPOINT_FORMAT",
    "CheckpointError",
    "is_checkpoint",
    "load_checkpoint",
    "save_checkpoint",
]

import io
import os
import zipfile
import zlib
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .files import write_atomically

#: Tag stored in every checkpoint, so that foreign files are recognized.
CHECKPOINT_FORMAT = "pyro_ar.checkpoint/1"


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable, or not a pyro_ar checkpoint.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "notes.pt"
        >>> _ = path.write_bytes(b"not a checkpoint")
        >>> try:
        ...     load_checkpoint(path)
        ... except CheckpointError:
        ...     print("refused")
        refused
    """


def _registry() -> dict[str, type[nn.Module]]:
    from ..nn import MODULES

    return MODULES


def save_checkpoint(path: str | os.PathLike, module: nn.Module, **metadata: Any) -> Path:
    """Saves ``module`` (its ``config`` and state dict) and plain ``metadata``.

    The file is written under a temporary name in the same directory and renamed over ``path``
    only once complete, so a crash never leaves a truncated checkpoint (the previous one stays).

    Arguments:
        path: Destination file.
        module: A :class:`~pyro_ar.nn.DensityModule` registered in :data:`pyro_ar.nn.MODULES`.
        metadata: Extra plain values (numbers, strings, lists, dicts) such as metrics.

    Example:
        >>> import tempfile
        >>> from pyro_ar.nn import NADEModule
        >>> folder = Path(tempfile.mkdtemp())
        >>> path = save_checkpoint(folder / "nade.pt", NADEModule(6, 4), note="x")
        >>> module, metadata = load_checkpoint(path)
        >>> type(module).__name__, metadata["note"], metadata["model"]
        ('NADEModule', 'x', 'nade')
    """
    name = getattr(type(module), "name", None)
    if name is None or _registry().get(name) is not type(module):
        raise CheckpointError(
            f"cannot checkpoint {type(module).__name__}: not in pyro_ar.nn.MODULES (a "
            "DensityModule registered by name)"
        )
    path = Path(path)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "model": name,
        "config": module.config,
        "state_dict": {key: value.detach().cpu() for key, value in module.state_dict().items()},
        "metadata": metadata,
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    write_atomically(path, buffer.getvalue())
    return path


def _verify_archive(path: Path) -> None:
    """Checks every member's CRC: ``torch.load`` reads a zip archive without checking them, so a
    damaged tensor would load as wrong numbers."""
    if not zipfile.is_zipfile(path):
        raise CheckpointError(
            f"{path} is not a readable checkpoint (not a zip archive: truncated, or another kind "
            "of file)"
        )
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as error:
        raise CheckpointError(f"{path} is damaged ({error})") from None
    if damaged is not None:
        raise CheckpointError(
            f"{path} is damaged: the checksum of its part {damaged!r} does not match (the file "
            "was corrupted after it was written); use another checkpoint"
        )


def _check_payload(path: Path, payload: object) -> dict:
    if not isinstance(payload, dict) or not isinstance(payload.get("format"), str):
        raise CheckpointError(f"{path} is not a pyro_ar checkpoint")
    tag = payload["format"]
    if tag != CHECKPOINT_FORMAT:
        family = CHECKPOINT_FORMAT.split("/")[0]
        if tag.startswith(family + "/"):
            raise CheckpointError(
                f"{path} has checkpoint format {tag!r}, which this version of pyro_ar cannot "
                f"read (it reads {CHECKPOINT_FORMAT!r}); it was probably written by a newer "
                "version: upgrade pyro_ar"
            )
        raise CheckpointError(f"{path} is not a pyro_ar checkpoint (format {tag!r})")
    for key, kind in (("config", dict), ("state_dict", dict), ("metadata", dict)):
        if not isinstance(payload.get(key, {}), kind):
            raise CheckpointError(
                f"{path}: its {key!r} is a {type(payload[key]).__name__}, not a {kind.__name__}"
            )
    for name, value in payload.get("state_dict", {}).items():
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"{path}: weight {name!r} is not a tensor")
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            problem = "NaN" if bool(torch.isnan(value).any()) else "infinite values"
            raise CheckpointError(
                f"{path}: weight {name!r} contains {problem} (a diverged training run?); "
                "use another checkpoint"
            )
    return payload


def load_checkpoint(
    path: str | os.PathLike, map_location: str | torch.device = "cpu"
) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuilds the module saved by :func:`save_checkpoint`.

    Only tensors and plain values are unpickled (``weights_only=True``), so loading a file from
    an untrusted source cannot run code. Before anything is used the archive's checksums are
    verified (a damaged file is refused, never read as wrong weights), and every weight must be
    finite.

    Returns:
        The module (in evaluation mode) and the checkpoint's metadata, with ``model`` and
        ``config`` added.

    Raises:
        CheckpointError: the file is missing, damaged, of another format version, not a pyro_ar
            checkpoint, or holds weights that do not fit its model or are not finite.

    Example:
        >>> import tempfile
        >>> from pyro_ar.nn import NADEModule
        >>> path = Path(tempfile.mkdtemp()) / "nade.pt"
        >>> _ = save_checkpoint(path, NADEModule(6, 4, seed=0), epoch=3)
        >>> module, metadata = load_checkpoint(path)
        >>> type(module).__name__, module.config["hidden_features"], metadata["epoch"]
        ('NADEModule', 4, 3)
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no such checkpoint: {path}")
    _verify_archive(path)
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises many types for damaged files
        raise CheckpointError(
            f"{path} is not a readable checkpoint ({type(error).__name__})"
        ) from None
    payload = _check_payload(path, payload)
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


def is_checkpoint(path: str | os.PathLike) -> bool:
    """Whether ``path`` is an existing file that looks like a pyro_ar checkpoint (a zip archive
    holding a pickled payload; not verified further).

    Example:
        >>> import tempfile
        >>> from pyro_ar.nn import NADEModule
        >>> path = Path(tempfile.mkdtemp()) / "nade.pt"
        >>> _ = save_checkpoint(path, NADEModule(6, 4))
        >>> is_checkpoint(path), is_checkpoint(path.with_suffix(".json"))
        (True, False)
    """
    path = Path(path)
    if not path.is_file() or not zipfile.is_zipfile(path):
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            return any(name.endswith("data.pkl") for name in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False
