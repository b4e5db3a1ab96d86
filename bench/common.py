"""Helpers shared by the benchmark scripts: machine facts, JSON output, the training options
of the NLL benchmarks, and timing."""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results"


def cpu_model() -> str:
    """The processor's model name (hosts of one kind differ: MKL's float32 GEMM runs at half
    speed on AMD processors, so ratios against peers depend on it)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    """What the figures were measured on."""
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "processor": platform.processor() or platform.machine(),
    }


def command() -> str:
    """The command line that reproduces this run."""
    return "python " + " ".join(shlex.quote(arg) for arg in sys.argv)


def portable(value):
    """``value`` with every absolute path written relative to the repository (results are
    committed, and no machine's paths may appear in a committed file)."""
    if isinstance(value, dict):
        return {key: portable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [portable(item) for item in value]
    if isinstance(value, str) and os.path.isabs(value):
        return os.path.relpath(value, RESULTS.parent.parent)
    return value


def write_result(name: str, figures: dict) -> Path:
    """Writes ``figures`` with the machine and command to ``bench/results/NAME.json`` (paths
    made relative to the repository), atomically."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    record = portable({"command": command(), "machine": machine(), **figures})
    partial = path.with_suffix(".json.partial")
    partial.write_text(json.dumps(record, indent=1))
    os.replace(partial, path)
    print(f"wrote {path}")
    return path


def default_mnist_dir() -> str:
    """``$PYRO_AR_MNIST_DIR``, else the workplace's ``../shared/data/mnist``."""
    here = Path(__file__).resolve().parent.parent
    return os.environ.get("PYRO_AR_MNIST_DIR", str(here.parent / "shared" / "data" / "mnist"))


def median_seconds(function: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``repeats`` calls, after one untimed warm-up call."""
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def timed_pair(ours, theirs, repeats):
    """Median wall times of two functions called alternately (so that the machine's drift hits
    both alike), after one untimed warm-up call each, and their last results."""
    ours(), theirs()
    times = ([], [])
    results = [None, None]
    for _ in range(repeats):
        for side, function in enumerate((ours, theirs)):
            start = time.perf_counter()
            results[side] = function()
            times[side].append(time.perf_counter() - start)
    return statistics.median(times[0]), results[0], statistics.median(times[1]), results[1]


def add_training_options(parser: argparse.ArgumentParser, **defaults) -> None:
    """The options every training benchmark takes (``--epochs``, ``--max-minutes``, ``--lr``,
    ``--lr-decay``, ``--weight-decay``, ``--batch-size``, ``--patience``, ``--seed``,
    ``--threads``, ``--data-dir``), with per-script ``defaults`` by option name."""
    options = {
        "epochs": (int, 1000),
        "max_minutes": (float, 60.0),
        "lr": (float, 1e-3),
        "lr_decay": (float, 1.0),
        "weight_decay": (float, 0.0),
        "batch_size": (int, 100),
        "patience": (int, 10),
        "seed": (int, 0),
        "threads": (int, None),
    }
    parser.add_argument("--data-dir", default=default_mnist_dir())
    for name, (kind, default) in options.items():
        flag = "--" + name.replace("_", "-")
        parser.add_argument(flag, type=kind, default=defaults.get(name, default))


def apply_threads(args: argparse.Namespace) -> None:
    """``--threads``: PyTorch's intra-op threads for this run."""
    if args.threads:
        torch.set_num_threads(args.threads)


def training_config(args: argparse.Namespace):
    """The maximum-likelihood trainer's settings from :func:`add_training_options`' options."""
    from pyro_ar.infer import TrainingConfig

    return TrainingConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        learning_rate_decay=args.lr_decay,
        weight_decay=args.weight_decay,
        patience=args.patience,
        seed=args.seed,
        max_seconds=args.max_minutes * 60,
    )
