"""PPCA and factor analysis on MNIST (60000 x 784 intensities in [0, 1], K = 50), side by side
with scikit-learn in one run.

Targets: PPCA fit no slower than sklearn's PCA; factor analysis at least 5x faster
than sklearn's FactorAnalysis at equal or higher training log-likelihood; held-out
log-likelihood that does not explode on MNIST's constant border pixels.

The training log-likelihood race uses sklearn's own noise floor (1e-12) on both sides, since
with constant columns the floor decides the likelihood; the held-out figures compare that with
pyro_ar's default floor.

    python bench/linear_gaussian_mnist.py
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from common import default_mnist_dir, timed_pair, write_result
from sklearn.decomposition import PCA, FactorAnalysis

from pyro_ar.data import load_mnist
from pyro_ar.infer import fit_factor_analysis, fit_ppca


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", default=default_mnist_dir())
    parser.add_argument("--latent", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rows", type=int, default=60000, help="training rows (smoke tests)")
    args = parser.parse_args()
    raw = load_mnist(args.data_dir)
    train_np = raw["train_images"][: args.rows].reshape(-1, 784).numpy().astype(np.float64) / 255
    test_np = raw["test_images"].reshape(-1, 784).numpy().astype(np.float64) / 255
    train, test = torch.from_numpy(train_np), torch.from_numpy(test_np)
    k, repeats = args.latent, args.repeats
    constant = int((train_np.std(0) == 0).sum())
    print(
        f"MNIST train {train_np.shape}, {constant} constant columns, K={k}, "
        f"{torch.get_num_threads()} threads"
    )

    ours_ppca_time, ours_ppca, sk_pca_time, sk_pca = timed_pair(
        lambda: fit_ppca(train, k), lambda: PCA(k).fit(train_np), repeats
    )
    ppca = {
        "pyro_ar_seconds": ours_ppca_time,
        "sklearn_seconds": sk_pca_time,
        "speedup": sk_pca_time / ours_ppca_time,
        "sklearn_svd_solver": sk_pca._fit_svd_solver,
        "train_ll_pyro_ar": ours_ppca.log_likelihood,
        "train_ll_sklearn": float(sk_pca.score(train_np)),
        "test_ll_pyro_ar": float(ours_ppca.distribution.log_prob(test).mean()),
        "test_ll_sklearn": float(sk_pca.score(test_np)),
    }
    print(
        f"PPCA  pyro_ar {ours_ppca_time:.3f} s | sklearn PCA {sk_pca_time:.3f} s "
        f"({ppca['speedup']:.2f}x); train LL {ppca['train_ll_pyro_ar']:.2f} vs "
        f"{ppca['train_ll_sklearn']:.2f}; test LL {ppca['test_ll_pyro_ar']:.2f} vs "
        f"{ppca['test_ll_sklearn']:.2f}"
    )

    fa_repeats = max(1, repeats - 2)
    ours_fa_time, ours_fa, sk_fa_time, sk_fa = timed_pair(
        lambda: fit_factor_analysis(train, k, noise_floor=1e-12),
        lambda: FactorAnalysis(k, random_state=0).fit(train_np),
        fa_repeats,
    )
    start = time.perf_counter()
    default_fa = fit_factor_analysis(train, k)
    default_time = time.perf_counter() - start
    fa = {
        "pyro_ar_seconds_floor_1e-12": ours_fa_time,
        "pyro_ar_iterations_floor_1e-12": ours_fa.iterations,
        "pyro_ar_seconds_default_floor": default_time,
        "default_noise_floor": default_fa.noise_floor,
        "sklearn_seconds": sk_fa_time,
        "sklearn_iterations": int(sk_fa.n_iter_),
        "speedup": sk_fa_time / ours_fa_time,
        "train_ll_pyro_ar_floor_1e-12": ours_fa.log_likelihood,
        "train_ll_sklearn": float(sk_fa.score(train_np)),
        "train_ll_pyro_ar_default_floor": default_fa.log_likelihood,
        "test_ll_sklearn": float(sk_fa.score(test_np)),
        "test_ll_pyro_ar_floor_1e-12": float(ours_fa.distribution.log_prob(test).mean()),
        "test_ll_pyro_ar_default_floor": float(default_fa.distribution.log_prob(test).mean()),
    }
    print(
        f"FA    pyro_ar {ours_fa_time:.2f} s ({ours_fa.iterations} iterations) | sklearn "
        f"{sk_fa_time:.2f} s ({sk_fa.n_iter_} iterations): {fa['speedup']:.1f}x faster"
    )
    print(
        f"      train LL (floor 1e-12 both): pyro_ar {fa['train_ll_pyro_ar_floor_1e-12']:.2f}"
        f" vs sklearn {fa['train_ll_sklearn']:.2f}"
    )
    print(
        f"      test LL: sklearn {fa['test_ll_sklearn']:.1f}, pyro_ar floor 1e-12 "
        f"{fa['test_ll_pyro_ar_floor_1e-12']:.1f}, pyro_ar default floor "
        f"({default_fa.noise_floor:.2e}) {fa['test_ll_pyro_ar_default_floor']:.2f} "
        f"(fit {default_time:.2f} s)"
    )
    write_result(
        "linear_gaussian_mnist",
        {"latent": k, "constant_columns": constant, "ppca": ppca, "factor_analysis": fa},
    )


if __name__ == "__main__":
    main()
