"""RBM on binarized MNIST: (persistent) contrastive divergence through SVI, then the AIS test
NLL with its bracket (forward AIS below, reverse AIS above).

Target: 500 hidden units, CD-25 or PCD: AIS test NLL <= 90 nats (Salakhutdinov &
Murray 2008: 86.34 with CD-25). Reports the training time on this machine.

    python bench/rbm_mnist.py --hidden 500 --persistent --cd-steps 5 --max-minutes 40
"""

from __future__ import annotations

import argparse
import time

import torch
from common import RESULTS, add_training_options, apply_threads, write_result

from pyro_ar.data import load_binarized_mnist
from pyro_ar.infer import (
    RBMTrainingConfig,
    annealed_importance_sampling,
    base_rate_visible_bias,
    fit_rbm,
    is_checkpoint,
    reverse_annealed_importance_sampling,
)
from pyro_ar.nn import RBMModule


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hidden", type=int, default=500)
    parser.add_argument("--cd-steps", type=int, default=25)
    parser.add_argument("--persistent", action="store_true")
    parser.add_argument("--ais-chains", type=int, default=100)
    parser.add_argument("--ais-betas", type=int, default=14500)
    parser.add_argument(
        "--resume",
        help="continue a previous run: its checkpoint (resumes weights, optimizer state, "
        "chains and epochs), or a bare state dict of older runs (weights only, momentum 0.9 "
        "from the start; pass the learning rate that run ended with)",
    )
    parser.add_argument(
        "--previous-minutes", type=float, default=0.0, help="training time of the resumed run"
    )
    add_training_options(
        parser, epochs=200, max_minutes=40.0, lr=0.05, lr_decay=0.98, weight_decay=2e-4
    )
    args = parser.parse_args()
    apply_threads(args)

    data = load_binarized_mnist(args.data_dir, binarization="stochastic", seed=0)
    module = RBMModule(784, args.hidden, data=data.train, seed=args.seed)
    resume_from = args.resume if args.resume and is_checkpoint(args.resume) else None
    if args.resume and resume_from is None:  # an older run's bare state dict
        module.load_state_dict(torch.load(args.resume, weights_only=True))
    config = RBMTrainingConfig(
        momentum=(0.9, 0.9) if args.resume and resume_from is None else (0.5, 0.9),
        epochs=args.epochs,
        learning_rate=args.lr,
        learning_rate_decay=args.lr_decay,
        weight_decay=args.weight_decay,
        cd_steps=args.cd_steps,
        persistent=args.persistent,
        max_seconds=args.max_minutes * 60,
        seed=args.seed,
        progress=False,
    )
    name = f"rbm_mnist_h{args.hidden}_{'pcd' if args.persistent else 'cd'}{args.cd_steps}"
    result = fit_rbm(
        module,
        data.train,
        data.valid,
        config,
        checkpoint_path=RESULTS / f"{name}_training.pt",
        resume_from=resume_from,
    )
    for record in result.history:
        print(
            f"epoch {record.epoch}: valid pseudo-likelihood {record.valid_pseudo_likelihood:.2f}"
            f", reconstruction {record.valid_reconstruction_error:.4f}, {record.seconds:.1f} s",
            flush=True,
        )
    if args.resume:
        name += "_resumed"
    torch.save(module.state_dict(), RESULTS / f"{name}.pt")

    rbm = module()
    rbm = type(rbm)(
        rbm.weight.detach().double(),
        rbm.visible_bias.detach().double(),
        rbm.hidden_bias.detach().double(),
    )
    base = base_rate_visible_bias(data.train)
    start = time.perf_counter()
    forward = annealed_importance_sampling(
        rbm, args.ais_chains, args.ais_betas, base, progress=False
    )
    reverse = reverse_annealed_importance_sampling(
        rbm, data.train[: args.ais_chains], args.ais_betas, base, burn_in=1000, progress=False
    )
    ais_seconds = time.perf_counter() - start
    with torch.no_grad():
        free_energy = {
            s: rbm.free_energy(getattr(data, s).double()).mean().item() for s in ("valid", "test")
        }
    figures = {
        "hidden": args.hidden,
        "cd_steps": args.cd_steps,
        "persistent": args.persistent,
        "epochs_run": len(result.history),
        "training_seconds": result.seconds,
        "resumed_from": args.resume,
        "total_training_minutes": args.previous_minutes + result.seconds / 60,
        "log_partition_forward": forward.log_partition.item(),
        "log_partition_forward_se": forward.standard_error.item(),
        "log_partition_reverse": reverse.log_partition.item(),
        "log_partition_reverse_se": reverse.standard_error.item(),
        "test_nll_forward": free_energy["test"] + forward.log_partition.item(),
        "test_nll_reverse": free_energy["test"] + reverse.log_partition.item(),
        "valid_nll_forward": free_energy["valid"] + forward.log_partition.item(),
        "ais_seconds": ais_seconds,
        "history": [vars(r) for r in result.history],
    }
    print(
        f"log Z: forward AIS {forward.log_partition.item():.2f}"
        f" +- {forward.standard_error.item():.2f}, "
        f"reverse {reverse.log_partition.item():.2f} +- {reverse.standard_error.item():.2f}"
    )
    print(
        f"test NLL {figures['test_nll_forward']:.2f} (forward AIS) .. "
        f"{figures['test_nll_reverse']:.2f} (reverse AIS); training "
        f"{figures['total_training_minutes']:.1f} min in all"
    )
    write_result(name, figures)


if __name__ == "__main__":
    main()
