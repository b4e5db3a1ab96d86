"""Binarized-MNIST test NLL of Bernoulli MADE (stochastic binarization, 50k/10k/10k).

Targets: one hidden layer of 500 and one mask <= 88.5 nats (paper: 88.40); a mask
ensemble <= 87.5 nats (paper: 86.64 with 2 hidden layers and 32 masks). Prints the training
time on this machine.

The recipe that meets the single-mask target: a random (seeded) input ordering, direct
input-to-output connections, and a fresh binarization of the training images every epoch
(``--dynamic-binarization``; validation and test keep the fixed binarization of the protocol):

    python bench/made_mnist_nll.py --hidden 500 --masks 1 --ordering random \
        --direct-connections --dynamic-binarization --epochs 200 --valid-rows 2000 \
        --max-minutes 40 --threads 1

Mask sampling (``--fresh-masks``): a new mask set (ordering and connectivity with
``--order-agnostic``) after every update, early stopping on the average of ``--valid-masks``
drawn masks, and the test NLL reported for each of ``--evaluation-masks`` (the last, with
its evaluation time, is the headline; the figure of the same network with one fixed mask on
the same budget is the run without ``--fresh-masks``):

    python bench/made_mnist_nll.py --hidden 500 --fresh-masks --order-agnostic \
        --direct-connections --dynamic-binarization --epochs 400 --valid-rows 2000 \
        --max-minutes 35 --threads 1
"""

from __future__ import annotations

import argparse
import time

import torch
from common import RESULTS, add_training_options, apply_threads, training_config, write_result

from pyro_ar.data import DynamicBinarization, load_binarized_mnist, load_mnist
from pyro_ar.infer import fit_maximum_likelihood, mean_nll
from pyro_ar.nn import MADEModule


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hidden", type=int, nargs="+", default=[500])
    parser.add_argument("--masks", type=int, default=1)
    parser.add_argument("--order-agnostic", action="store_true")
    parser.add_argument("--ordering", choices=["natural", "random"], default="natural")
    parser.add_argument("--direct-connections", action="store_true")
    parser.add_argument(
        "--fresh-masks",
        action="store_true",
        help="draw a new mask set after every update (the MADE paper's mask sampling)",
    )
    parser.add_argument(
        "--valid-masks", type=int, default=4, help="masks averaged for early stopping"
    )
    parser.add_argument(
        "--evaluation-masks",
        type=int,
        nargs="+",
        default=[1, 4, 16, 32],
        help="test-time averages reported (the last is the headline figure)",
    )
    parser.add_argument(
        "--dynamic-binarization",
        action="store_true",
        help="binarize the training images afresh every epoch (valid/test stay fixed)",
    )
    parser.add_argument(
        "--valid-rows",
        type=int,
        default=10000,
        help="validation rows used for early stopping (fewer = faster epochs)",
    )
    add_training_options(parser, epochs=2000, max_minutes=20.0, lr_decay=0.995, patience=30)
    args = parser.parse_args()
    apply_threads(args)
    data = load_binarized_mnist(args.data_dir, binarization="stochastic", seed=0)
    train = data.train
    if args.dynamic_binarization:
        intensities = load_mnist(args.data_dir)["train_images"].reshape(-1, 784)[:50000] / 255
        train = DynamicBinarization(intensities, seed=args.seed + 1)
    torch.manual_seed(args.seed)
    module = MADEModule(
        784,
        args.hidden,
        num_masks=args.masks,
        order_agnostic=args.order_agnostic,
        ordering=None if args.ordering == "natural" else "random",
        direct_connections=args.direct_connections,
        fresh_masks=args.fresh_masks,
        evaluation_masks=args.valid_masks,
        data=data.train,
        seed=args.seed,
    )
    name = f"mnist_nll_made_{'x'.join(map(str, args.hidden))}_masks{args.masks}"
    if args.ordering == "random" or args.direct_connections or args.dynamic_binarization:
        name += "_random" if args.ordering == "random" else ""
        name += "_direct" if args.direct_connections else ""
        name += "_dynamic" if args.dynamic_binarization else ""
    name += "_fresh" if args.fresh_masks else ""
    config = training_config(args)
    start = time.perf_counter()
    result = fit_maximum_likelihood(
        module,
        train,
        data.valid[: args.valid_rows],
        config,
        checkpoint_path=RESULTS / f"{name}.pt",
    )
    wall = time.perf_counter() - start
    module.eval()
    by_masks, evaluation_seconds = {}, {}
    if args.fresh_masks:
        for count in args.evaluation_masks:
            module.evaluation_masks = count
            begin = time.perf_counter()
            by_masks[count] = mean_nll(module, data.test)
            evaluation_seconds[count] = time.perf_counter() - begin
            print(
                f"test NLL, average of {count} drawn masks: {by_masks[count]:.2f} nats "
                f"({evaluation_seconds[count]:.1f} s for the 10000 test images)"
            )
    figures = {split: mean_nll(module, data[split]) for split in ("valid", "test")}
    print(
        f"MADE {args.hidden}, {args.masks} mask(s): test NLL {figures['test']:.2f} nats "
        f"(valid {figures['valid']:.2f}); best epoch {result.best_epoch} of "
        f"{len(result.history)}, {result.stop_reason}, training {wall / 60:.1f} min"
    )
    write_result(
        name,
        {
            "hidden": args.hidden,
            "masks": args.masks,
            "order_agnostic": args.order_agnostic,
            "ordering": args.ordering,
            "direct_connections": args.direct_connections,
            "dynamic_binarization": args.dynamic_binarization,
            "nll_nats": figures,
            "fresh_masks": args.fresh_masks,
            "test_nll_by_evaluation_masks": by_masks,
            "test_evaluation_seconds_by_masks": evaluation_seconds,
            "test_nll": figures["test"],
            "best_epoch": result.best_epoch,
            "epochs_run": len(result.history),
            "stop_reason": result.stop_reason,
            "training_wall_seconds": wall,
            "settings": vars(args),
            "history": [vars(record) for record in result.history],
        },
    )


if __name__ == "__main__":
    main()
