"""MADE speed at D=784, one hidden layer of 500, batch 100: sampling 100 binary vectors and a
training step, side by side with peers measured in the same run.

Targets (2 CPU cores): sampling 100 vectors in <= 0.15 s (incremental first layer);
a training step within 1.2x of an unmasked 784-500-784 MLP, timed with PyTorch's default Adam
and with its fused Adam (pyro_ar's trainer uses the fused one), and with SGD, the same optimizer
on both sides.

Peers used the same way (one full network pass per dimension when sampling):
pyro's ``AutoRegressiveNN`` (which needs hidden >= D, so it gets max(hidden, D) units),
nflows' ``MADE`` (if installed; ``pip install --no-deps nflows``),
and pyro_ar's own network without the incremental path.

    python bench/made_speed.py
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from common import median_seconds, timed_pair, write_result
from pyro.nn import AutoRegressiveNN

from pyro_ar.distributions import BernoulliMADE
from pyro_ar.nn import MaskedAutoencoder


def sample_by_full_passes(logits_of, num_dims: int, batch: int) -> torch.Tensor:
    """Ancestral sampling that reruns the whole network for every dimension."""
    x = torch.zeros(batch, num_dims)
    with torch.no_grad():
        for d in range(num_dims):
            x[:, d] = torch.bernoulli(torch.sigmoid(logits_of(x)[:, d]))
    return x


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dims", type=int, default=784)
    parser.add_argument("--hidden", type=int, default=500)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)
    dims, hidden, batch = args.dims, args.hidden, args.batch
    network = MaskedAutoencoder(dims, [hidden])
    distribution = BernoulliMADE(network)
    x = (torch.rand(batch, dims) < 0.13).float()

    sampling = {
        "pyro_ar_incremental": median_seconds(lambda: distribution.sample((batch,)), args.repeats),
        "pyro_ar_full_passes": median_seconds(
            lambda: sample_by_full_passes(lambda v: network(v)[..., 0], dims, batch), 2
        ),
    }
    # pyro's AutoRegressiveNN refuses hidden layers narrower than the input
    pyro_hidden = max(hidden, dims)
    pyro_net = AutoRegressiveNN(dims, [pyro_hidden], param_dims=[1])
    sampling["pyro_AutoRegressiveNN"] = median_seconds(
        lambda: sample_by_full_passes(lambda v: pyro_net(v), dims, batch), 2
    )
    try:
        from nflows.transforms.made import MADE as NflowsMADE

        nflows_net = NflowsMADE(
            features=dims,
            hidden_features=hidden,
            num_blocks=1,
            use_residual_blocks=False,
            activation=F.relu,
        )
        sampling["nflows_MADE"] = median_seconds(
            lambda: sample_by_full_passes(nflows_net, dims, batch), 2
        )
    except ImportError:
        sampling["nflows_MADE"] = None

    mlp = torch.nn.Sequential(
        torch.nn.Linear(dims, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, dims)
    )

    def block(step):
        # 20 steps per timed block: MADE and MLP blocks alternate so the drift hits both alike
        def run():
            for _ in range(20):
                step()

        return run

    # PyTorch's default Adam and its fused kernel, each for both networks: unfused Adam takes
    # sqrt(v) through MKL, which is about 7x slower on exact zeros, and MADE's second moments are
    # zero wherever its masks are; pyro_ar's trainer uses the fused kernel. SGD (no square
    # root) shows the step without either Adam's share
    optimizers = {
        "adam": lambda parameters: torch.optim.Adam(parameters, lr=1e-4),
        "fused_adam": lambda parameters: torch.optim.Adam(parameters, lr=1e-4, fused=True),
        "sgd": lambda parameters: torch.optim.SGD(parameters, lr=1e-3, momentum=0.9),
    }
    training = {}
    for name, make_optimizer in optimizers.items():
        made_optimizer = make_optimizer(network.parameters())
        mlp_optimizer = make_optimizer(mlp.parameters())

        def made_step(made_optimizer=made_optimizer):
            made_optimizer.zero_grad()
            (-distribution.log_prob(x).mean()).backward()
            made_optimizer.step()

        def mlp_step(mlp_optimizer=mlp_optimizer):
            mlp_optimizer.zero_grad()
            loss = F.binary_cross_entropy_with_logits(mlp(x), x, reduction="none")
            loss.sum(-1).mean().backward()
            mlp_optimizer.step()

        for _ in range(20):  # warm-up: allocator and caches settle
            made_step(), mlp_step()
        made_seconds, _, mlp_seconds, _ = timed_pair(block(made_step), block(mlp_step), 30)
        training[name] = {
            "pyro_ar_examples_per_second": 20 * batch / made_seconds,
            "unmasked_mlp_examples_per_second": 20 * batch / mlp_seconds,
            "slowdown_vs_unmasked": made_seconds / mlp_seconds,
        }
    plans = [layer.plan_for(layer.mask) is not None for layer in (*network.hidden, network.output)]
    training["blocked_layers"] = sum(plans)

    print(
        f"MADE D={dims} H={hidden}, sampling {batch} vectors ({torch.get_num_threads()} threads):"
    )
    for name, seconds in sampling.items():
        if seconds is not None:
            ratio = seconds / sampling["pyro_ar_incremental"]
            print(f"  {name:24s} {seconds:7.3f} s  ({ratio:5.1f}x the incremental sampler)")
    for name in optimizers:
        figures = training[name]
        print(
            f"training step ({name}): pyro_ar {figures['pyro_ar_examples_per_second']:.0f} ex/s, "
            f"unmasked MLP {figures['unmasked_mlp_examples_per_second']:.0f} ex/s "
            f"({figures['slowdown_vs_unmasked']:.2f}x slower)"
        )
    write_result(
        "made_speed",
        {
            "dims": dims,
            "hidden": hidden,
            "batch": batch,
            "sampling_seconds": sampling,
            "training": training,
        },
    )


if __name__ == "__main__":
    main()
