"""Binarized-MNIST test NLL of FVSBN and NADE (stochastic binarization, 50k/10k/10k).

Targets: FVSBN <= 98 nats (paper 97.45), NADE H=500 <= 90 nats (paper 88.86) within a
60-minute training budget on 2 CPU cores.

    python bench/mnist_nll.py --model nade --max-minutes 60
    python bench/mnist_nll.py --model fvsbn
"""

from __future__ import annotations

import argparse
import time

import torch
from common import RESULTS, add_training_options, apply_threads, training_config, write_result

from pyro_ar.data import load_binarized_mnist
from pyro_ar.infer import fit_maximum_likelihood, mean_nll
from pyro_ar.nn import FVSBNModule, NADEModule


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", choices=("fvsbn", "nade"), required=True)
    parser.add_argument("--hidden", type=int, default=500)
    add_training_options(parser, lr_decay=0.97)
    args = parser.parse_args()
    apply_threads(args)
    data = load_binarized_mnist(args.data_dir, binarization="stochastic", seed=0)
    torch.manual_seed(args.seed)
    if args.model == "nade":
        module = NADEModule(784, args.hidden, data=data.train, seed=args.seed)
        name = f"mnist_nll_nade{args.hidden}"
    else:
        module = FVSBNModule(784, data=data.train)
        name = "mnist_nll_fvsbn"
    config = training_config(args)
    start = time.perf_counter()
    result = fit_maximum_likelihood(
        module, data.train, data.valid, config, checkpoint_path=RESULTS / f"{name}.pt"
    )
    wall = time.perf_counter() - start
    figures = {split: mean_nll(module, data[split]) for split in ("train", "valid", "test")}
    print(
        f"{args.model}: test NLL {figures['test']:.2f} nats (valid {figures['valid']:.2f}, "
        f"train {figures['train']:.2f}); best epoch {result.best_epoch} of "
        f"{len(result.history)}, {result.stop_reason}, training {wall / 60:.1f} min"
    )
    write_result(
        name,
        {
            "model": args.model,
            "hidden": args.hidden if args.model == "nade" else None,
            "nll_nats": figures,
            "best_epoch": result.best_epoch,
            "epochs_run": len(result.history),
            "stop_reason": result.stop_reason,
            "training_wall_seconds": wall,
            "history": [vars(record) for record in result.history],
        },
    )


if __name__ == "__main__":
    main()
