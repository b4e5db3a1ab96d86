"""Doctests: every docstring ``Example`` in the package runs as a test (``--doctest-modules``),
with ``torch`` at hand and validation, seeds and Pyro's parameter store reset for each."""

from __future__ import annotations

import pyro
import pytest
import torch

# the command-line entry point runs the program when imported
collect_ignore = ["pyro_ar/__main__.py"]


@pytest.fixture(autouse=True)
def _doctest_namespace(doctest_namespace):
    doctest_namespace["torch"] = torch
    pyro.set_rng_seed(0)
    pyro.clear_param_store()
    validate = torch.distributions.Distribution._validate_args
    yield
    torch.distributions.Distribution.set_default_validate_args(validate)
