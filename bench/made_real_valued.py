"""Gaussian MADE and MADE-MoG on real-valued data that ships offline (scikit-learn's bundled
sets, standardized with training statistics), against a full-covariance Gaussian fitted by
maximum likelihood on the same split.

Target: both MADE variants beat the Gaussian's test log-likelihood.
Split by row index: i mod 5 == 0 test, == 1 validation (early stopping), otherwise train.

    python bench/made_real_valued.py
"""

from __future__ import annotations

import argparse
import time

import pyro.distributions as dist
import torch
from common import write_result
from sklearn import datasets

from pyro_ar.infer import TrainingConfig, fit_maximum_likelihood, mean_nll
from pyro_ar.nn import MADEModule

DATASETS = {
    "breast_cancer": datasets.load_breast_cancer,
    "wine": datasets.load_wine,
    "diabetes": datasets.load_diabetes,
}


def splits(name: str) -> dict[str, torch.Tensor]:
    data = torch.tensor(DATASETS[name]().data, dtype=torch.float64)
    index = torch.arange(len(data)) % 5
    train = data[index >= 2]
    mean, std = train.mean(0), train.std(0)
    return {
        part: (data[selection] - mean) / std
        for part, selection in (("train", index >= 2), ("valid", index == 1), ("test", index == 0))
    }


def gaussian_test_ll(data: dict[str, torch.Tensor]) -> float:
    train = data["train"]
    covariance = torch.cov(train.T, correction=0)
    gaussian = dist.MultivariateNormal(train.mean(0), covariance)
    return float(gaussian.log_prob(data["test"]).mean())


def made_test_ll(data, likelihood: str, seed: int, args) -> tuple[float, float]:
    torch.manual_seed(seed)
    module = MADEModule(
        data["train"].shape[1],
        [args.hidden],
        likelihood=likelihood,
        num_components=args.components,
        direct_connections=True,
        seed=seed,
    ).double()
    config = TrainingConfig(
        epochs=args.epochs,
        batch_size=32,
        learning_rate=args.lr,
        weight_decay=args.weight_decay,
        patience=args.patience,
        seed=seed,
        progress=False,
    )
    start = time.perf_counter()
    fit_maximum_likelihood(module, data["train"], data["valid"], config)
    return -mean_nll(module, data["test"]), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--datasets", nargs="+", default=sorted(DATASETS))
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--components", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=500)
    parser.add_argument("--patience", type=int, default=30)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    results = {}
    for name in args.datasets:
        data = splits(name)
        row = {"num_dims": data["train"].shape[1], "train_rows": len(data["train"])}
        row["full_covariance_gaussian"] = gaussian_test_ll(data)
        for likelihood in ("gaussian", "mixture"):
            ll, seconds = made_test_ll(data, likelihood, args.seed, args)
            row[f"made_{likelihood}"] = ll
            row[f"made_{likelihood}_seconds"] = seconds
        results[name] = row
        print(
            f"{name:14s} D={row['num_dims']:2d}  test LL per row: full-cov Gaussian "
            f"{row['full_covariance_gaussian']:8.3f} | Gaussian MADE {row['made_gaussian']:8.3f}"
            f" | MADE-MoG {row['made_mixture']:8.3f}"
        )
    write_result("made_real_valued", {"settings": vars(args), "results": results})


if __name__ == "__main__":
    main()
