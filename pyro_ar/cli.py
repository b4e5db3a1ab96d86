r"""The ``pyro-ar`` command: fit, sample from and score models on binary image data.

Examples::

    pyro-ar fit nade                       # embedded digits, about a minute on 2 cores
    pyro-ar fit rbm --hidden 100 --cd-steps 5 --persistent   # AIS log-likelihood bracket
    pyro-ar fit fvsbn --data mnist --data-dir ~/data/mnist
    pyro-ar fit pixelcnn --hidden 32 --max-minutes 30   # Gated PixelCNN on the digits
    pyro-ar sample runs/nade-digits.pt --num-samples 100
    pyro-ar score runs/nade-digits.pt --data digits --split test
"""

from __future__ import annotations

__all__ = ["main"]

import argparse
import copy
import json
import logging
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from .data import DATASETS, DataFileError, load_binary_dataset
from .infer import (
    CheckpointError,
    RBMTrainingConfig,
    TrainingConfig,
    annealed_importance_sampling,
    base_rate_visible_bias,
    fit_maximum_likelihood,
    fit_rbm,
    is_checkpoint,
    load_checkpoint,
    mean_nll,
    reverse_annealed_importance_sampling,
    save_checkpoint,
)
from .io import OutputLock, OutputLockedError, save_image_grid, write_atomically
from .nn import MODULES, DensityModule, RBMModule, random_ordering

logger = logging.getLogger("pyro_ar")


#: The most samples ``sample`` and ``fit`` draw into one PNG grid.
MAX_SAMPLES = 100_000


def _number(convert, accept, requirement: str):
    """An argparse type: ``convert(text)``, kept where ``accept(value)``; else an error that
    says ``must be {requirement}``."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {requirement}, got {text!r}") from None
        if not accept(value):  # NaN fails every comparison, so it is refused here
            raise argparse.ArgumentTypeError(f"must be {requirement}, got {text}")
        return value

    return parse


_positive_int = _number(int, lambda value: value >= 1, "a positive integer")
_positive_float = _number(float, lambda value: 0 < value < math.inf, "a positive finite number")
_non_negative_float = _number(float, lambda value: 0 <= value < math.inf, "a finite number >= 0")
_seed = _number(int, lambda value: 0 <= value < 2**63, "an integer in [0, 2^63)")


def _sample_count(text: str) -> int:
    value = _positive_int(text)
    if value > MAX_SAMPLES:
        raise argparse.ArgumentTypeError(
            f"at most {MAX_SAMPLES} samples fit in one image grid, got {value}"
        )
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
    parser.add_argument("--binarization-seed", type=_seed, default=0)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pyro-ar", description="Classic deep density models as Pyro distributions."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    commands = parser.add_subparsers(dest="command", required=True)

    fit = commands.add_parser("fit", help="train a model and report its NLL in nats")
    fit.add_argument("model", choices=sorted(MODULES), help="model to train")
    _add_data_options(fit, default="digits")
    fit.add_argument(
        "--hidden",
        type=_positive_int,
        help="hidden units (NADE, MADE, RBM; default 500) or channels (PixelCNN; default 64)",
    )
    fit.add_argument("--ordering", choices=("natural", "random"), default="natural")
    fit.add_argument("--epochs", type=_positive_int, default=500)
    fit.add_argument("--batch-size", type=_positive_int, default=100)
    fit.add_argument(
        "--lr", type=_positive_float, help="learning rate (default: Adam 1e-3; RBM SGD 0.05)"
    )
    fit.add_argument(
        "--weight-decay", type=_non_negative_float, help="L2 penalty (default: 0; RBM 2e-4)"
    )
    fit.add_argument("--patience", type=_positive_int, default=20, help="early-stopping patience")
    fit.add_argument("--max-minutes", type=_positive_float, help="wall-clock training budget")
    fit.add_argument("--seed", type=_seed, default=0)
    fit.add_argument("--output", default="runs", help="directory for checkpoint and samples")
    existing = fit.add_mutually_exclusive_group()
    existing.add_argument(
        "--overwrite", action="store_true", help="replace an earlier run in the output directory"
    )
    existing.add_argument(
        "--resume", action="store_true", help="continue the run in the output directory"
    )
    fit.add_argument("--num-samples", type=_sample_count, default=64)
    fit.add_argument("--no-progress", action="store_true", help="hide the progress report")
    rbm = fit.add_argument_group("RBM (contrastive divergence; learning rate default 0.05)")
    rbm.add_argument("--cd-steps", type=_positive_int, default=1, help="Gibbs sweeps per update")
    rbm.add_argument("--persistent", action="store_true", help="persistent CD")
    rbm.add_argument("--ais-chains", type=_positive_int, default=100)
    rbm.add_argument("--ais-betas", type=_positive_int, default=5000, help="AIS schedule length")

    sample = commands.add_parser("sample", help="draw samples from a checkpoint as a PNG grid")
    sample.add_argument("checkpoint")
    sample.add_argument("--num-samples", type=_sample_count, default=64)
    sample.add_argument("--output", help="PNG file (default: beside the checkpoint)")
    sample.add_argument("--seed", type=_seed, default=0)

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


class TrainingFailed(RuntimeError):
    """Training ran but produced no usable model (exit status 3)."""


@dataclass
class _Trained:
    """What the fit pipeline needs from a trainer, whatever its objective."""

    best_epoch: int
    seconds: float
    summary: str
    history: dict | list
    improved: bool
    criterion: str
    epochs: int


def _budget(args: argparse.Namespace) -> float | None:
    return None if args.max_minutes is None else args.max_minutes * 60


def _train_by_maximum_likelihood(args: argparse.Namespace, data, module, run: _Run) -> _Trained:
    config = TrainingConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=1e-3 if args.lr is None else args.lr,
        weight_decay=0.0 if args.weight_decay is None else args.weight_decay,
        patience=args.patience,
        seed=args.seed,
        max_seconds=_budget(args),
        progress=not args.no_progress,
    )
    result = fit_maximum_likelihood(
        module,
        module.shape_data(data.train),
        module.shape_data(data.valid),
        config,
        run.checkpoint,
        run.metadata,
        resume_from=run.checkpoint if args.resume else None,
    )
    summary = f"best epoch {result.best_epoch}, stopped by {result.stop_reason}"
    return _Trained(
        result.best_epoch,
        result.elapsed_seconds,
        summary,
        result.to_dict(),
        result.improved,
        "NLL",
        len(result.history),
    )


def _train_by_contrastive_divergence(
    args: argparse.Namespace, data, module: RBMModule, run: _Run
) -> _Trained:
    config = RBMTrainingConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=0.05 if args.lr is None else args.lr,
        weight_decay=2e-4 if args.weight_decay is None else args.weight_decay,
        cd_steps=args.cd_steps,
        persistent=args.persistent,
        patience=args.patience,
        max_seconds=_budget(args),
        seed=args.seed,
        progress=not args.no_progress,
    )
    result = fit_rbm(
        module,
        data.train,
        data.valid,
        config,
        checkpoint_path=run.checkpoint,
        checkpoint_metadata=run.metadata,
        resume_from=run.checkpoint if args.resume else None,
    )
    summary = f"best epoch {result.best_epoch} of {len(result.history)}"
    history = [vars(record) for record in result.history]
    criterion = result.criterion.replace("_", "-")
    return _Trained(
        result.best_epoch,
        result.seconds,
        summary,
        history,
        result.improved,
        criterion,
        len(history),
    )


#: How the command line trains each objective (``DensityModule.objective``).
_TRAINERS = {
    "maximum_likelihood": _train_by_maximum_likelihood,
    "contrastive_divergence": _train_by_contrastive_divergence,
}


def _split_nlls(module, data, args: argparse.Namespace) -> tuple[dict, dict[str, str]]:
    """The NLL of every split, as numbers (for the checkpoint) and as text: exact, or an RBM's
    AIS bracket."""
    if isinstance(module, RBMModule):
        nll = _rbm_nll(module, data, args)
        return nll, {split: _format_nll(nll[split]) for split in ("train", "valid", "test")}
    nll = {
        split: mean_nll(module, module.shape_data(data[split]))
        for split in ("train", "valid", "test")
    }
    return nll, {split: f"{value:.2f}" for split, value in nll.items()}


def _no_improvement(run: _Run, epochs: int) -> str:
    return (
        f"training did not improve on the initialization in {epochs} epochs (diverged? try a "
        f"smaller --lr); nothing was saved to {run.checkpoint}"
    )


def _build_module(args: argparse.Namespace, train: torch.Tensor) -> DensityModule:
    ordering = random_ordering(train.shape[1], args.seed) if args.ordering == "random" else None
    hidden = args.hidden
    if hidden is None and args.model != "pixelcnn":  # the PixelCNN has its own default
        hidden = 500
    options = {} if hidden is None else {"hidden_features": hidden}
    return MODULES[args.model].for_data(train, ordering=ordering, seed=args.seed, **options)


class _Run:
    """The files of one ``fit`` run, and the checks made before any training: the output
    directory is writable, no other run is writing it, and an earlier run there is replaced only
    with ``--overwrite`` (or continued with ``--resume``)."""

    def __init__(self, args: argparse.Namespace, data) -> None:
        output = Path(args.output)
        stem = f"{args.model}-{data.name}"
        self.checkpoint = output / f"{stem}.pt"
        self.history = output / f"{stem}-history.json"
        self.samples = output / f"{stem}-samples.png"
        self.lock = OutputLock(output / f".{stem}.lock")
        self.metadata = {"data": data.name, "image_shape": list(data.image_shape)}
        if output.exists() and not output.is_dir():
            raise ValueError(f"--output {output} exists and is not a directory")
        try:
            output.mkdir(parents=True, exist_ok=True)
            probe = write_atomically(output / f".{stem}.write-test", b"")
            probe.unlink()
        except OSError as error:
            raise OSError(f"cannot write to the output directory {output}: {error}") from None
        existing = [path for path in (self.checkpoint, self.history) if path.exists()]
        if args.resume and not self.checkpoint.exists():
            raise ValueError(f"--resume: there is no run to continue at {self.checkpoint}")
        if existing and not (args.overwrite or args.resume):
            raise ValueError(
                f"{existing[0]} exists (an earlier run): pass --overwrite to replace it, "
                "--resume to continue it, or choose another --output"
            )


def _fit(args: argparse.Namespace) -> None:
    data = load_binary_dataset(args.data, args.data_dir, args.binarization, args.binarization_seed)
    torch.manual_seed(args.seed)
    module = _build_module(args, data.train)
    run = _Run(args, data)
    print(
        f"{args.model} on {data.name}: {len(data.train)}/{len(data.valid)}/{len(data.test)} "
        f"train/valid/test examples, D={data.num_dims}"
    )
    with run.lock:
        # checkpoints are written during training: an evaluation failure afterwards (AIS)
        # loses nothing
        trained = _TRAINERS[module.objective](args, data, module, run)
        if not trained.improved:
            if module.objective == "maximum_likelihood":
                raise TrainingFailed(_no_improvement(run, trained.epochs))
            # a warning only: for CD the criterion is a proxy (pseudo-likelihood)
            print(
                f"pyro-ar: warning: the best epoch ({trained.best_epoch}) does not beat the "
                f"untrained initialization on the validation {trained.criterion}",
                file=sys.stderr,
            )
        nll, text = _split_nlls(module, data, args)
        print(
            f"train NLL {text['train']} nats | valid NLL {text['valid']} | test NLL "
            f"{text['test']}  ({trained.summary}, {trained.seconds:.1f} s)"
        )
        _save_final(run, module, trained.best_epoch, nll, trained.seconds)
        write_atomically(run.history, json.dumps(trained.history, indent=1).encode())
        samples = module().sample((args.num_samples,))  # RBMs: Gibbs chains, 1000 sweeps
        png = save_image_grid(run.samples, samples.flatten(1), data.image_shape)
        print(f"checkpoint: {run.checkpoint}\nsamples: {png}")


def _save_final(run: _Run, module, best_epoch: int, nll: dict, seconds: float) -> None:
    """The final checkpoint: the best weights with their NLLs, keeping the training state that
    the trainer stored at the best epoch, so that ``--resume`` still works."""
    _, saved = load_checkpoint(run.checkpoint)
    save_checkpoint(
        run.checkpoint,
        module,
        epoch=best_epoch,
        nll=nll,
        training_seconds=seconds,
        training_state=saved.get("training_state"),
        **run.metadata,
    )


def _image_shape(metadata: dict, num_dims: int, path: str) -> tuple[int, int]:
    """The checkpoint's ``image_shape`` (height, width), checked; a row of ``D`` pixels if it
    has none."""
    shape = metadata.get("image_shape")
    if shape is None:
        return (1, num_dims)
    if (
        not isinstance(shape, (list, tuple))
        or len(shape) != 2
        or not all(isinstance(size, int) and not isinstance(size, bool) for size in shape)
        or min(shape) < 1
        or shape[0] * shape[1] != num_dims
    ):
        raise CheckpointError(
            f"{path}: its metadata image_shape {shape!r} is not (height, width) with "
            f"height x width = D = {num_dims}"
        )
    return tuple(shape)


def _sample(args: argparse.Namespace) -> None:
    module, metadata = load_checkpoint(args.checkpoint)
    shape = _image_shape(metadata, module.num_dims, args.checkpoint)
    output = Path(args.output or str(Path(args.checkpoint).with_suffix("")) + "-samples.png")
    if output.exists() and (
        output.resolve() == Path(args.checkpoint).resolve() or is_checkpoint(output)
    ):
        raise ValueError(
            f"--output {output} is a checkpoint; refusing to replace it with a PNG image"
        )
    torch.manual_seed(args.seed)
    samples = module().sample((args.num_samples,))  # RBMs: Gibbs chains, 1000 sweeps burn-in
    print(f"samples: {save_image_grid(output, samples.flatten(1), shape)}")


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
    nll = mean_nll(module, module.shape_data(data[args.split]))
    print(f"{name} {args.split} NLL {nll:.3f} nats")


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit status (0 success, 2 user error or bad input,
    3 training that produced no usable model, 130 interrupted).

    Example:
        >>> main(["score", "no-such-checkpoint.pt"])  # one line on stderr, exit status 2
        2
    """
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "no_progress", True):
        # progress lines (stderr not a terminal) are logged at INFO: show them
        logging.getLogger("pyro_ar.progress").setLevel(logging.INFO)
    try:
        {"fit": _fit, "sample": _sample, "score": _score}[args.command](args)
    except TrainingFailed as error:
        print(f"pyro-ar: error: {error}", file=sys.stderr)
        return 3
    except (
        DataFileError,
        CheckpointError,
        OutputLockedError,
        ValueError,
        FloatingPointError,
        OSError,
    ) as error:
        print(f"pyro-ar: error: {error}", file=sys.stderr)
        return 2
    except MemoryError:
        print("pyro-ar: error: out of memory (fewer --num-samples?)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pyro-ar: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
