r"""The ``pyro-ar`` command: fit, sample from and score models on binary image data.

Examples::

    pyro-ar fit nade                       # embedded digits, about a minute on 2 cores
    pyro-ar fit rbm --hidden 100 --cd-steps 5 --persistent   # AIS log-likelihood bracket
    pyro-ar fit fvsbn --data mnist --data-dir ~/data/mnist
    pyro-ar sample runs/nade-digits.pt --num-samples 100
    pyro-ar score runs/nade-digits.pt --data digits --split test
"""

from __future__ import annotations

__all__ = ["main"]

import argparse
import copy
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from .data import DATASETS, DataFileError, load_binary_dataset
from .images import save_image_grid
from .infer import (
    CheckpointError,
    RBMTrainingConfig,
    TrainingConfig,
    annealed_importance_sampling,
    base_rate_visible_bias,
    fit_maximum_likelihood,
    fit_rbm,
    load_checkpoint,
    mean_nll,
    reverse_annealed_importance_sampling,
    save_checkpoint,
)
from .nn import MODULES, FVSBNModule, MADEModule, NADEModule, RBMModule, random_ordering

logger = logging.getLogger("pyro_ar")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _add_data_options(parser: argparse.ArgumentParser, default: str | None) -> None:
    parser.add_argument(
        "--data", choices=DATASETS, default=default, help="data set (default: %(default)s)"
    )
    parser.add_argument(
        "--data-dir", help="directory of the MNIST IDX files (default: $PYRO_AR_MNIST_DIR)"
    )
    parser.add_argument(
        "--binarization",
        choices=("stochastic", "threshold"),
        default="stochastic",
        help="MNIST binarization (default: %(default)s)",
    )
    parser.add_argument("--binarization-seed", type=int, default=0)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pyro-ar", description="Classic deep density models as Pyro distributions."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    commands = parser.add_subparsers(dest="command", required=True)

    fit = commands.add_parser("fit", help="train a model and report its NLL in nats")
    fit.add_argument("model", choices=sorted(MODULES), help="model to train")
    _add_data_options(fit, default="digits")
    fit.add_argument("--hidden", type=_positive_int, default=500, help="hidden units (NADE, MADE)")
    fit.add_argument("--ordering", choices=("natural", "random"), default="natural")
    fit.add_argument("--epochs", type=_positive_int, default=500)
    fit.add_argument("--batch-size", type=_positive_int, default=100)
    fit.add_argument(
        "--lr", type=_positive_float, help="learning rate (default: Adam 1e-3; RBM SGD 0.05)"
    )
    fit.add_argument("--weight-decay", type=float, help="L2 penalty (default: 0; RBM 2e-4)")
    fit.add_argument("--patience", type=_positive_int, default=20, help="early-stopping patience")
    fit.add_argument("--max-minutes", type=_positive_float, help="wall-clock training budget")
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--output", default="runs", help="directory for checkpoint and samples")
    fit.add_argument("--num-samples", type=_positive_int, default=64)
    fit.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    rbm = fit.add_argument_group("RBM (contrastive divergence; learning rate default 0.05)")
    rbm.add_argument("--cd-steps", type=_positive_int, default=1, help="Gibbs sweeps per update")
    rbm.add_argument("--persistent", action="store_true", help="persistent CD")
    rbm.add_argument("--ais-chains", type=_positive_int, default=100)
    rbm.add_argument("--ais-betas", type=_positive_int, default=5000, help="AIS schedule length")

    sample = commands.add_parser("sample", help="draw samples from a checkpoint as a PNG grid")
    sample.add_argument("checkpoint")
    sample.add_argument("--num-samples", type=_positive_int, default=64)
    sample.add_argument("--output", help="PNG file (default: beside the checkpoint)")
    sample.add_argument("--seed", type=int, default=0)

    score = commands.add_parser("score", help="average NLL of a checkpoint on a data set")
    score.add_argument("checkpoint")
    _add_data_options(score, default=None)
    score.add_argument("--split", choices=("train", "valid", "test"), default="test")
    return parser


@torch.no_grad()
def _rbm_nll(module: RBMModule, data, args: argparse.Namespace) -> dict:
    """NLL per split: exact log Z for small hidden layers, else the forward/reverse AIS
    bracket (nats; forward AIS gives the lower NLL in expectation)."""
    rbm = copy.deepcopy(module).double()()  # float64, with every parameter (visible_scale too)
    if rbm.has_exact_log_partition:
        log_z = {"exact": rbm.log_partition().item()}
    else:
        base = base_rate_visible_bias(data.train)
        chains = getattr(args, "ais_chains", 100)
        betas = getattr(args, "ais_betas", 5000)
        forward = annealed_importance_sampling(rbm, chains, betas, base, progress=False)
        reverse = reverse_annealed_importance_sampling(
            rbm, data.train[:chains], betas, base, burn_in=1000, progress=False
        )
        log_z = {"forward": forward.log_partition.item(), "reverse": reverse.log_partition.item()}
    result = {"log_partition": log_z}
    for split in ("train", "valid", "test"):
        free_energy = rbm.free_energy(data[split].double()).mean().item()
        result[split] = {name: free_energy + value for name, value in log_z.items()}
    return result


def _format_nll(values: dict) -> str:
    if "exact" in values:
        return f"{values['exact']:.2f}"
    return f"{values['forward']:.2f} .. {values['reverse']:.2f} (AIS bracket)"


def _fit_rbm(args: argparse.Namespace, data, module: RBMModule, output: Path, stem: str) -> None:
    config = RBMTrainingConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=0.05 if args.lr is None else args.lr,
        weight_decay=2e-4 if args.weight_decay is None else args.weight_decay,
        cd_steps=args.cd_steps,
        persistent=args.persistent,
        max_seconds=None if args.max_minutes is None else args.max_minutes * 60,
        seed=args.seed,
        progress=not args.no_progress,
    )
    result = fit_rbm(module, data.train, data.valid, config)
    nll = _rbm_nll(module, data, args)
    print(
        f"train NLL {_format_nll(nll['train'])} nats | valid NLL {_format_nll(nll['valid'])} | "
        f"test NLL {_format_nll(nll['test'])}  ({len(result.history)} epochs, "
        f"{result.seconds:.1f} s)"
    )
    checkpoint = save_checkpoint(
        output / f"{stem}.pt",
        module,
        epoch=len(result.history),
        nll=nll,
        training_seconds=result.seconds,
        data=data.name,
        image_shape=list(data.image_shape),
    )
    history = [vars(record) for record in result.history]
    (output / f"{stem}-history.json").write_text(json.dumps(history, indent=1))
    samples = module().gibbs_chain((args.num_samples,), burn_in=1000)[0]
    png = save_image_grid(output / f"{stem}-samples.png", samples, data.image_shape)
    print(f"checkpoint: {checkpoint}\nsamples: {png}")


def _build_module(args: argparse.Namespace, train: torch.Tensor) -> torch.nn.Module:
    num_dims = train.shape[1]
    ordering = random_ordering(num_dims, args.seed) if args.ordering == "random" else None
    if args.model == "nade":
        return NADEModule(num_dims, args.hidden, ordering=ordering, data=train, seed=args.seed)
    if args.model == "made":
        return MADEModule(num_dims, [args.hidden], ordering=ordering, data=train, seed=args.seed)
    if args.model == "rbm":
        return RBMModule(num_dims, args.hidden, data=train, seed=args.seed)
    return FVSBNModule(num_dims, ordering=ordering, data=train)


def _fit(args: argparse.Namespace) -> None:
    data = load_binary_dataset(args.data, args.data_dir, args.binarization, args.binarization_seed)
    torch.manual_seed(args.seed)
    module = _build_module(args, data.train)
    output = Path(args.output)
    stem = f"{args.model}-{data.name}"
    checkpoint = output / f"{stem}.pt"
    print(
        f"{args.model} on {data.name}: {len(data.train)}/{len(data.valid)}/{len(data.test)} "
        f"train/valid/test examples, D={data.num_dims}"
    )
    if args.model == "rbm":
        return _fit_rbm(args, data, module, output, stem)
    config = TrainingConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=1e-3 if args.lr is None else args.lr,
        weight_decay=0.0 if args.weight_decay is None else args.weight_decay,
        patience=args.patience,
        seed=args.seed,
        max_seconds=None if args.max_minutes is None else args.max_minutes * 60,
        progress=not args.no_progress,
    )
    metadata = {"data": data.name, "image_shape": list(data.image_shape)}
    result = fit_maximum_likelihood(module, data.train, data.valid, config, checkpoint, metadata)
    nll = {split: mean_nll(module, data[split]) for split in ("train", "valid", "test")}
    print(
        f"train NLL {nll['train']:.2f} nats | valid NLL {nll['valid']:.2f} | "
        f"test NLL {nll['test']:.2f}  (best epoch {result.best_epoch}, stopped by "
        f"{result.stop_reason}, {result.elapsed_seconds:.1f} s)"
    )
    save_checkpoint(
        checkpoint,
        module,
        epoch=result.best_epoch,
        nll=nll,
        training_seconds=result.elapsed_seconds,
        **metadata,
    )
    (output / f"{stem}-history.json").write_text(json.dumps(result.to_dict(), indent=1))
    samples = module().sample((args.num_samples,))
    png = save_image_grid(output / f"{stem}-samples.png", samples, data.image_shape)
    print(f"checkpoint: {checkpoint}\nsamples: {png}")


def _sample(args: argparse.Namespace) -> None:
    module, metadata = load_checkpoint(args.checkpoint)
    torch.manual_seed(args.seed)
    samples = module().sample((args.num_samples,))  # RBMs: Gibbs chains, 1000 sweeps burn-in
    shape = tuple(metadata.get("image_shape") or (1, samples.shape[-1]))
    output = args.output or str(Path(args.checkpoint).with_suffix("")) + "-samples.png"
    print(f"samples: {save_image_grid(output, samples, shape)}")


def _score(args: argparse.Namespace) -> None:
    module, metadata = load_checkpoint(args.checkpoint)
    name = args.data or metadata.get("data")
    if name is None:
        raise ValueError(
            "the checkpoint does not say which data set it was trained on: pass --data"
        )
    data = load_binary_dataset(name, args.data_dir, args.binarization, args.binarization_seed)
    if data.num_dims != module.num_dims:
        raise ValueError(
            f"{name} has D={data.num_dims} dimensions but the checkpoint's model has "
            f"D={module.num_dims}"
        )
    if isinstance(module, RBMModule):
        nll = _rbm_nll(module, data, args)[args.split]
        print(f"{name} {args.split} NLL {_format_nll(nll)} nats")
        return
    print(f"{name} {args.split} NLL {mean_nll(module, data[args.split]):.3f} nats")


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit status (0 success, 2 user error)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        {"fit": _fit, "sample": _sample, "score": _score}[args.command](args)
    except (DataFileError, CheckpointError, ValueError, FloatingPointError, OSError) as error:
        print(f"pyro-ar: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pyro-ar: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
