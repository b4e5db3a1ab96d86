"""Binarized-MNIST test NLL of a PixelCNN (the protocol of the other MNIST figures: stochastic
binarization with seed 0, 50k/10k/10k; the training images binarized afresh every epoch).

Targets (issue 17): on 2 CPU cores with at most 2 hours of training in total, in resumable runs
of at most about 90 minutes each, <= 85 nats; on a GPU <= 81.3 (PixelCNN, van den Oord et al.
2016: 81.30; PixelRNN 79.20). The training time reported is the total over resumed runs.

    python bench/pixelcnn_mnist_nll.py --architecture gated --hidden 32 --layers 6 \
        --max-minutes 85 --threads 2
    # continue the same run (checkpoint bench/results/<name>.pt) for up to 35 more minutes:
    python bench/pixelcnn_mnist_nll.py --architecture gated --hidden 32 --layers 6 \
        --max-minutes 35 --threads 2 --resume
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import torch
from common import RESULTS, add_training_options, apply_threads, training_config, write_result

from pyro_ar.data import DynamicBinarization, load_binarized_mnist, load_mnist
from pyro_ar.infer import fit_maximum_likelihood, mean_nll
from pyro_ar.nn import PixelCNNModule


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--architecture", choices=["gated", "original"], default="gated")
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--first-kernel", type=int, default=7)
    parser.add_argument("--kernel", type=int, default=3)
    parser.add_argument("--valid-rows", type=int, default=2000)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoint")
    parser.add_argument(
        "--autocast",
        choices=["bfloat16", "float16"],
        help="training loss under torch.autocast (evaluation stays float32)",
    )
    add_training_options(
        parser, epochs=200, max_minutes=85.0, lr_decay=0.97, patience=10, batch_size=50
    )
    args = parser.parse_args()
    apply_threads(args)
    data = load_binarized_mnist(args.data_dir, binarization="stochastic", seed=0)
    intensities = load_mnist(args.data_dir)["train_images"].reshape(-1, 784)[:50000] / 255
    binarize = DynamicBinarization(intensities, seed=args.seed + 1)
    device = torch.device(args.device)
    module = PixelCNNModule(
        (1, 28, 28),
        hidden_features=args.hidden,
        architecture=args.architecture,
        num_layers=args.layers,
        first_kernel_size=args.first_kernel,
        kernel_size=args.kernel,
        seed=args.seed,
    ).to(device)

    def train(epoch: int) -> torch.Tensor:
        return module.shape_data(binarize(epoch))

    name = f"mnist_nll_pixelcnn_{args.architecture}_{args.hidden}x{args.layers}"
    if args.device != "cpu":
        name += f"_{device.type}"
    checkpoint = RESULTS / f"{name}.pt"
    valid = module.shape_data(data.valid[: args.valid_rows])
    config = dataclasses.replace(training_config(args), autocast=args.autocast)
    start = time.perf_counter()
    result = fit_maximum_likelihood(
        module,
        train,
        valid,
        config,
        checkpoint_path=checkpoint,
        resume_from=checkpoint if args.resume else None,
    )
    wall = time.perf_counter() - start
    module.eval()
    begin = time.perf_counter()
    test = mean_nll(module, module.shape_data(data.test), batch_size=500)
    test_seconds = time.perf_counter() - begin
    valid_nll = mean_nll(module, module.shape_data(data.valid), batch_size=500)
    print(
        f"PixelCNN ({args.architecture}, {args.hidden} channels, {args.layers} layers): test NLL "
        f"{test:.2f} nats (valid {valid_nll:.2f}); best epoch {result.best_epoch} of "
        f"{len(result.history)}, {result.stop_reason}; training {result.elapsed_seconds / 60:.1f} "
        f"min in total ({wall / 60:.1f} min this run)"
    )
    write_result(
        name,
        {
            "architecture": args.architecture,
            "hidden_channels": args.hidden,
            "num_layers": args.layers,
            "parameters": sum(p.numel() for p in module.parameters()),
            "nll_nats": {"valid": valid_nll, "test": test},
            "test_nll": test,
            "test_evaluation_seconds": test_seconds,
            "best_epoch": result.best_epoch,
            "epochs_run": len(result.history),
            "stop_reason": result.stop_reason,
            "training_seconds_total": result.elapsed_seconds,
            "training_seconds_this_run": wall,
            "resumed": args.resume,
            "settings": vars(args),
            "history": [vars(record) for record in result.history],
        },
    )


if __name__ == "__main__":
    main()
