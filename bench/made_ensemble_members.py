"""How much a MADE mask ensemble gains over its members: the test NLL of every mask set alone
and of the ensemble (log-mean-exp over mask sets), from a checkpoint of
``bench/made_mnist_nll.py``.

    cd bench
    python made_ensemble_members.py results/mnist_nll_made_1000_masks4_random_direct_dynamic.pt
"""

from __future__ import annotations

import argparse
from pathlib import Path

from common import default_mnist_dir, write_result

from pyro_ar.data import load_binarized_mnist
from pyro_ar.distributions import BernoulliMADE
from pyro_ar.infer import load_checkpoint, mean_nll


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("checkpoint")
    parser.add_argument("--data-dir", default=default_mnist_dir())
    args = parser.parse_args()
    module, metadata = load_checkpoint(args.checkpoint)
    test = load_binarized_mnist(args.data_dir, binarization="stochastic", seed=0).test
    network = module.network
    members = []
    for index in range(network.num_masks):
        nll = mean_nll(lambda index=index: BernoulliMADE(network, mask_index=index), test)
        members.append(nll)
        print(f"mask set {index}: test NLL {nll:.2f} nats")
    ensemble = mean_nll(module.eval(), test)
    print(
        f"ensemble of {network.num_masks}: test NLL {ensemble:.2f} nats "
        f"({min(members) - ensemble:.2f} below the best member)"
    )
    write_result(
        f"{Path(args.checkpoint).stem}_members",
        {
            "checkpoint": args.checkpoint,
            "member_test_nll": members,
            "ensemble_test_nll": ensemble,
            "gain_over_best_member": min(members) - ensemble,
        },
    )


if __name__ == "__main__":
    main()
