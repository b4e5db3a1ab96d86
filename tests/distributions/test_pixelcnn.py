"""PixelCNN and Gated PixelCNN: normalization by enumeration, the autoregressive property and
the blind spot by Jacobians, cached == naive sampling, sampler goodness of fit, inpainting,
validation, and Pyro integration (plates with subsampling, SVI, Predictive, a VAE decoder)."""

from __future__ import annotations

import itertools
import math

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import SVI, Predictive, Trace_ELBO, TraceGraph_ELBO
from stats import cells_chi_square_p_value

from pyro_ar.distributions import PixelCNN
from pyro_ar.infer import TrainingConfig, fit_maximum_likelihood, mean_nll
from pyro_ar.nn import GatedPixelCNNNetwork, PixelCNNModule, PixelCNNNetwork

ARCHITECTURES = {"gated": GatedPixelCNNNetwork, "original": PixelCNNNetwork}


def _network(
    architecture, image_shape, levels=2, context=0, spatial=0, layers=2, seed=0, wide=True, **kw
):
    torch.manual_seed(seed)
    channels = image_shape[0]
    network = ARCHITECTURES[architecture](
        image_shape,
        num_levels=levels,
        hidden_channels=(12 if channels == 3 else 16) if wide else 2 * channels,
        # wide: with few features a ReLU head can be dead at a pixel, hiding its inputs
        output_hidden_channels=24 if wide else 3 * channels,
        num_layers=layers,
        first_kernel_size=kw.pop("first_kernel_size", 3),
        context_features=context,
        spatial_context_channels=spatial,
        **kw,
    ).double()
    with torch.no_grad():  # weights large enough that the conditionals differ clearly
        for parameter in network.parameters():
            parameter.mul_(2.0)
    return network


def _all_images(image_shape, levels):
    count = math.prod(image_shape)
    states = torch.tensor(list(itertools.product(range(levels), repeat=count)))
    return states.view((-1,) + tuple(image_shape)).double()


def _raster_rank(image_shape):
    """rank[c, i, j]: the step at which entry (c, i, j) is generated (pixel-major)."""
    channels, height, width = image_shape
    steps = torch.arange(channels * height * width).view(height, width, channels)
    return steps.permute(2, 0, 1)


# ------------------------------------------------------------------ normalization


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
@pytest.mark.parametrize(
    "image_shape, levels",
    [((1, 3, 3), 2), ((1, 2, 2), 3), ((3, 2, 2), 3)],
    ids=["binary-3x3", "categorical-2x2", "rgb-categorical-2x2"],
)
def test_log_prob_normalizes_over_every_image(architecture, image_shape, levels):
    # 3^12 images for the RGB case: a narrow network and one context keep it quick
    network = _network(architecture, image_shape, levels, context=2, spatial=1, wide=False)
    contexts = 2 if image_shape[0] == 1 else 1
    context = torch.randn(contexts, 2, dtype=torch.float64)
    spatial = torch.randn(contexts, 1, *image_shape[1:], dtype=torch.float64)
    distribution = PixelCNN(network, context, spatial)
    images = _all_images(image_shape, levels)[:, None]  # (S, 1, C, H, W) against the batch
    log_probs = distribution.log_prob(images)
    assert log_probs.shape == (len(images), contexts)
    torch.testing.assert_close(log_probs.logsumexp(0), torch.zeros(contexts, dtype=torch.float64))
    # the model is far from uniform, and the two contexts give different distributions
    assert log_probs.std(0).min() > 0.3
    if contexts == 2:
        assert (log_probs[:, 0] - log_probs[:, 1]).abs().max() > 0.1


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
@pytest.mark.parametrize(
    "image_shape, levels", [((1, 2, 2), 5), ((3, 1, 2), 4)], ids=["grey", "rgb"]
)
def test_discretized_logistic_mixture_normalizes(architecture, image_shape, levels):
    network = _network(architecture, image_shape, levels, num_components=3, wide=False)
    distribution = PixelCNN(network)
    log_probs = distribution.log_prob(_all_images(image_shape, levels))
    torch.testing.assert_close(log_probs.logsumexp(0), torch.tensor(0.0, dtype=torch.float64))
    assert log_probs.std() > 0.3


def test_logistic_mixture_on_8_bit_levels_is_stable_and_normalized():
    """256 levels of one pixel, with components far narrower than a bin, far wider than the
    range, and centred outside it: every level finite, the total exactly 1."""
    network = _network("gated", (1, 1, 1), 256, num_components=3)
    levels = torch.arange(256, dtype=torch.float64).view(256, 1, 1, 1)
    for log_scale, mean in ((-12.0, 0.1), (4.0, 0.0), (-3.0, 1.7)):
        with torch.no_grad():
            bias = network.head.output.bias
            bias.zero_()
            bias[3:6] = mean
            bias[6:9] = log_scale
            network.head.output.weight.zero_()
        log_probs = PixelCNN(network).log_prob(levels)
        assert bool(torch.isfinite(log_probs).all())
        torch.testing.assert_close(log_probs.logsumexp(0), torch.tensor(0.0, dtype=torch.float64))
    # far outside the range: all the mass in the top level
    assert log_probs[-1] > -1e-6


def test_logistic_mixture_sampler_matches_log_prob():
    image_shape, levels = (1, 1, 2), 5
    network = _network("gated", image_shape, levels, num_components=2)
    distribution = PixelCNN(network)
    probs = distribution.log_prob(_all_images(image_shape, levels)).exp()
    torch.manual_seed(4)
    draws = distribution.sample((20000,))
    assert draws.dtype == torch.int64 and int(draws.min()) >= 0 and int(draws.max()) <= 4
    cells = (draws.flatten(1) * torch.tensor([5, 1])).sum(-1)
    assert cells_chi_square_p_value(cells, probs)[0] > 1e-3
    with torch.no_grad():  # negative control: narrower components
        network.head.output.bias[4:6] -= 0.3
    wrong = distribution.log_prob(_all_images(image_shape, levels)).exp()
    assert cells_chi_square_p_value(cells, wrong)[0] < 1e-6


def test_logistic_mixture_gradients_and_provenance():
    from pyro.ops.provenance import ProvenanceTensor, get_provenance

    network = _network("original", (3, 2, 2), 256, num_components=2, context=2)
    images = torch.randint(0, 256, (4, 3, 2, 2))
    context = torch.randn(4, 2, dtype=torch.float64, requires_grad=True)
    log_prob = PixelCNN(network, ProvenanceTensor(context, frozenset({"z"}))).log_prob(images)
    assert "z" in get_provenance(log_prob)
    log_prob.sum().backward()
    assert context.grad.abs().sum() > 0
    assert all(p.grad is not None for p in network.head.parameters())


# ------------------------------------------------------------------ the autoregressive property


def _jacobian(network, image_shape, context=None):
    """d logits[p, c, i, j] / d input[c', i', j'] at a random continuous input."""
    x = torch.rand((1,) + tuple(image_shape), dtype=torch.float64)

    def logits(value):
        return network(value, context)[0]

    return torch.autograd.functional.jacobian(logits, x)[:, :, :, :, 0]  # (P, C, H, W, C, H, W)


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
@pytest.mark.parametrize(
    "image_shape, levels, components", [((1, 4, 4), 2, 0), ((3, 3, 3), 4, 0), ((3, 3, 3), 9, 2)]
)
def test_no_conditional_depends_on_itself_or_a_later_entry(
    architecture, image_shape, levels, components
):
    network = _network(architecture, image_shape, levels, layers=3, num_components=components)
    jacobian = _jacobian(network, image_shape)
    rank = _raster_rank(image_shape).flatten()
    size = rank.numel()
    influence = jacobian.abs().sum(0).reshape(size, size)  # (output entry, input entry)
    later_or_self = rank[None, :] >= rank[:, None]
    assert torch.all(influence[later_or_self] == 0)
    # and the model does use the past: most earlier entries influence every conditional
    assert (influence[~later_or_self] > 0).double().mean() > 0.5


def _influence_of_pixels(network, image_shape, row, column):
    jacobian = _jacobian(network, image_shape)
    return jacobian[:, :, row, column].abs().sum((0, 1, 2))  # (H, W) over input pixels


def test_gated_pixelcnn_has_no_blind_spot():
    image_shape = (1, 5, 5)
    network = _network("gated", image_shape, layers=4, first_kernel_size=5)
    rank = _raster_rank(image_shape)[0]
    for row, column in itertools.product(range(5), range(5)):
        influence = _influence_of_pixels(network, image_shape, row, column)
        earlier = rank < rank[row, column]
        assert torch.all(influence[earlier] > 0), (row, column)
        assert torch.all(influence[~earlier] == 0), (row, column)


def test_original_pixelcnn_blind_spot_is_documented():
    """Masked 3x3 convolutions never reach (i - 1, j + 2) from (i, j), at any depth: each
    layer moves at most one column right per row up, and never right within a row."""
    image_shape = (1, 5, 5)
    network = _network("original", image_shape, layers=6, first_kernel_size=3)
    influence = _influence_of_pixels(network, image_shape, 2, 1)
    assert influence[1, 3] == 0 and influence[1, 4] == 0  # upper right: blind
    assert influence[0, 4] == 0
    assert influence[1, 2] > 0 and influence[2, 0] > 0 and influence[0, 0] > 0  # seen
    gated = _network("gated", image_shape, layers=6, first_kernel_size=3)
    assert _influence_of_pixels(gated, image_shape, 2, 1)[1, 3] > 0


# ------------------------------------------------------------------ sampling


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
@pytest.mark.parametrize(
    "image_shape, levels, components",
    [((1, 5, 6), 2, 0), ((3, 3, 4), 4, 0), ((3, 3, 3), 256, 3)],
    ids=["binary", "rgb-categorical", "rgb-logistic-mixture"],
)
def test_cached_sampler_equals_the_naive_one_for_the_same_random_numbers(
    architecture, image_shape, levels, components, device
):
    network = _network(
        architecture,
        image_shape,
        levels,
        context=2,
        spatial=1,
        layers=3,
        num_components=components,
    )
    network = network.to(device)
    context = torch.randn(3, 2, dtype=torch.float64, device=device)
    spatial = torch.randn(3, 1, *image_shape[1:], dtype=torch.float64, device=device)
    distribution = PixelCNN(network, context, spatial)
    torch.manual_seed(5)
    cached = distribution.sample((4,), sampler="cached")
    torch.manual_seed(5)
    naive = distribution.sample((4,), sampler="naive")
    assert cached.shape == (4, 3) + image_shape
    assert torch.equal(cached, naive)
    assert len(cached.flatten(2).unique(dim=0)) > 1  # not a constant image
    assert cached.device.type == device.type
    observed = naive[0]
    mask = torch.rand(observed.shape, device=device) < 0.5
    torch.manual_seed(6)
    inpainted, weights = distribution.sample_conditional(
        observed, mask, (2,), return_log_weights=True
    )
    torch.manual_seed(6)
    reference, reference_weights = distribution.sample_conditional(
        observed, mask, (2,), return_log_weights=True, sampler="naive"
    )
    assert torch.equal(inpainted, reference)
    torch.testing.assert_close(weights, reference_weights)


@pytest.mark.parametrize("sampler", ["cached", "naive"])
@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_sampler_matches_log_prob(architecture, sampler):
    image_shape = (1, 2, 3)
    network = _network(architecture, image_shape, layers=2)
    distribution = PixelCNN(network)
    images = _all_images(image_shape, 2)
    probs = distribution.log_prob(images).exp()
    torch.manual_seed(0)
    draws = distribution.sample((20000,), sampler=sampler)
    weights = 2 ** torch.arange(5, -1, -1)
    cells = (draws.flatten(1).long() * weights).sum(-1)
    p_value, _ = cells_chi_square_p_value(cells, probs)
    assert p_value > 1e-3
    # negative control: the same draws against a slightly different model must fail
    with torch.no_grad():
        network.head.output.bias.add_(0.3)
    wrong = distribution.log_prob(images).exp()
    assert cells_chi_square_p_value(cells, wrong)[0] < 1e-6


def test_categorical_rgb_sampler_matches_log_prob():
    image_shape, levels = (3, 1, 1), 3
    distribution = PixelCNN(_network("original", image_shape, levels))
    images = _all_images(image_shape, levels)
    probs = distribution.log_prob(images).exp()
    torch.manual_seed(1)
    draws = distribution.sample((20000,))
    assert draws.dtype == torch.int64
    cells = (draws.flatten(1) * torch.tensor([9, 3, 1])).sum(-1)
    assert cells_chi_square_p_value(cells, probs)[0] > 1e-3


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_inpainting_the_bottom_rows_is_exact(architecture):
    image_shape = (1, 2, 3)
    distribution = PixelCNN(_network(architecture, image_shape))
    images = _all_images(image_shape, 2)
    log_probs = distribution.log_prob(images)
    observed = torch.tensor([[[1.0, 0.0, 1.0], [float("nan")] * 3]])
    mask = torch.zeros(image_shape, dtype=torch.bool)
    mask[:, 0] = True  # the top row: a prefix of the raster order
    torch.manual_seed(2)
    completions, log_weights = distribution.sample_conditional(
        observed, mask, (20000,), return_log_weights=True
    )
    assert torch.all(completions[:, 0, 0] == observed[0, 0])
    # the log-weight of a prefix is log p(top row), the same for every completion
    matching = (images[:, 0, 0] == observed[0, 0]).all(-1)
    torch.testing.assert_close(log_weights, log_probs[matching].logsumexp(0).expand(20000))
    posterior = torch.softmax(log_probs[matching], 0)
    cells = (completions[:, 0, 1].long() * torch.tensor([4, 2, 1])).sum(-1)
    assert cells_chi_square_p_value(cells, posterior)[0] > 1e-3


def test_inpainting_other_patterns_gives_consistent_importance_weights():
    """Observed entries after a missing one: resampling proposals by their weights recovers
    the true conditional."""
    image_shape = (1, 2, 2)
    distribution = PixelCNN(_network("gated", image_shape))
    images = _all_images(image_shape, 2)
    log_probs = distribution.log_prob(images)
    observed = torch.tensor([[[0.0, 0.0], [1.0, 1.0]]])
    mask = torch.tensor([[[False, False], [True, True]]])  # the bottom row observed
    torch.manual_seed(3)
    completions, log_weights = distribution.sample_conditional(
        observed, mask, (40000,), return_log_weights=True
    )
    matching = (images[:, 0, 1] == 1).all(-1)
    posterior = torch.softmax(log_probs[matching], 0)
    cells = (completions[:, 0, 0].long() * torch.tensor([2, 1])).sum(-1)
    weights = torch.softmax(log_weights, 0)
    estimate = torch.zeros(4, dtype=torch.float64).index_add_(0, cells, weights)
    torch.testing.assert_close(estimate, posterior, atol=0.02, rtol=0)
    # the proposal itself ignores the evidence below: it is not the posterior
    proposal = torch.bincount(cells, minlength=4).double() / len(cells)
    assert (proposal - posterior).abs().max() > 0.05


# ------------------------------------------------------------------ contract and validation


def test_values_of_every_dtype_batch_shapes_and_expand():
    network = _network("gated", (1, 3, 3), context=2)
    distribution = PixelCNN(network, torch.randn(4, 2, dtype=torch.float64))
    images = distribution.sample((5,))
    assert images.shape == (5, 4, 1, 3, 3) and images.dtype == torch.float64
    expected = distribution.log_prob(images)
    assert expected.shape == (5, 4) and expected.dtype == torch.float64
    for values in (images.bool(), images.long(), images.float()):
        torch.testing.assert_close(distribution.log_prob(values), expected)
    # an image batch of size 1 broadcasts against the four contexts
    single = images[:, :1]
    torch.testing.assert_close(
        distribution.log_prob(single), distribution.log_prob(single.expand(5, 4, 1, 3, 3))
    )
    assert distribution.log_prob(images[0, 0]).shape == (4,)
    expanded = distribution.expand((3, 4))
    assert type(expanded) is PixelCNN and expanded.batch_shape == (3, 4)
    torch.testing.assert_close(expanded.log_prob(images[:1]), expected[:1].expand(3, 4))
    assert bool(distribution.support.check(images).all())


@pytest.mark.parametrize(
    "value, message",
    [
        (torch.zeros(2, 1, 3, 4), "shape"),
        (torch.zeros(2, 3, 3), "shape"),
        (torch.full((1, 3, 3), 0.5), "0 or 1"),
        (torch.full((1, 3, 3), float("nan")), "NaN"),
        (torch.full((1, 3, 3), 2.0), "0 or 1"),
    ],
)
def test_bad_binary_images_are_refused_with_a_clear_error(value, message):
    distribution = PixelCNN(_network("gated", (1, 3, 3)), validate_args=True)
    with pytest.raises(ValueError, match=message):
        distribution.log_prob(value)


@pytest.mark.parametrize(
    "value, message",
    [
        (torch.full((3, 2, 2), 3.0), r"\[0, 2\]"),
        (torch.full((3, 2, 2), -1.0), r"\[0, 2\]"),
        (torch.full((3, 2, 2), 1.5), r"\[0, 2\]"),
        (torch.full((3, 2, 2), float("nan")), "NaN"),
    ],
)
def test_bad_levels_are_refused_with_a_clear_error(value, message):
    distribution = PixelCNN(_network("original", (3, 2, 2), levels=3), validate_args=True)
    with pytest.raises(ValueError, match=message):
        distribution.log_prob(value)


def test_conditioning_errors_name_the_problem():
    network = _network("gated", (1, 3, 3), context=2, spatial=1)
    with pytest.raises(ValueError, match="pass a context"):
        PixelCNN(network, None, torch.zeros(1, 3, 3))
    with pytest.raises(ValueError, match=r"context must have shape \(\.\.\., 2\)"):
        PixelCNN(network, torch.zeros(3), torch.zeros(1, 3, 3))
    with pytest.raises(ValueError, match="spatial context"):
        PixelCNN(network, torch.zeros(2), torch.zeros(1, 4, 4))
    with pytest.raises(ValueError, match="takes no context"):
        PixelCNN(_network("gated", (1, 3, 3)), torch.zeros(2))
    with pytest.raises(ValueError, match="multiple"):
        GatedPixelCNNNetwork((3, 4, 4), hidden_channels=4)
    with pytest.raises(ValueError, match="sampler"):
        PixelCNN(_network("gated", (1, 3, 3))).sample((1,), sampler="fast")


# ------------------------------------------------------------------ Pyro integration and training


def test_svi_in_a_subsampled_plate_trains_the_module():
    torch.manual_seed(0)
    module = PixelCNNModule((1, 4, 4), hidden_features=8, num_layers=2).double()
    data = (torch.rand(64, 1, 4, 4) < torch.linspace(0.1, 0.9, 16).view(1, 1, 4, 4)).double()

    def model(data):
        pyro.module("pixelcnn", module)
        with pyro.plate("images", len(data), subsample_size=16) as index:
            pyro.sample("x", module(), obs=data[index])

    before = mean_nll(module, data)
    svi = SVI(model, lambda data: None, pyro.optim.Adam({"lr": 2e-2}), Trace_ELBO())
    for _ in range(60):
        svi.step(data)
    assert mean_nll(module, data) < before - 1.0
    samples = Predictive(model, num_samples=3, return_sites=["x"])(data)["x"]
    assert samples.shape == (3, 16, 1, 4, 4)


def test_vae_with_a_pixelcnn_decoder_trains_encoder_and_decoder_under_two_elbos():
    torch.manual_seed(0)
    latent = 2
    decoder = PixelCNNModule((1, 4, 4), hidden_features=8, num_layers=2, context_features=latent)
    encoder = torch.nn.Linear(16, 2 * latent)
    data = (torch.rand(12, 1, 4, 4) < 0.4).float()

    def model(data):
        pyro.module("decoder", decoder)
        with pyro.plate("images", len(data)):
            z = pyro.sample("z", dist.Normal(torch.zeros(latent), 1.0).to_event(1))
            pyro.sample("x", decoder(z), obs=data)

    def guide(data):
        pyro.module("encoder", encoder)
        loc, log_scale = encoder(data.flatten(1)).chunk(2, -1)
        with pyro.plate("images", len(data)):
            pyro.sample("z", dist.Normal(loc, log_scale.exp()).to_event(1))

    for elbo in (Trace_ELBO(), TraceGraph_ELBO()):
        decoder.zero_grad()
        encoder.zero_grad()
        pyro.clear_param_store()
        elbo.loss_and_grads(model, guide, data)
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in encoder.parameters())
        context_weights = [
            p
            for name, p in decoder.named_parameters()
            if "condition" in name and p.grad is not None
        ]
        assert context_weights and all(p.grad.abs().sum() > 0 for p in context_weights)
    svi = SVI(model, guide, pyro.optim.Adam({"lr": 1e-2}), Trace_ELBO())
    losses = [svi.step(data) for _ in range(25)]
    assert sum(losses[-5:]) < sum(losses[:5])


def test_fit_maximum_likelihood_checkpoints_and_resumes(tmp_path):
    torch.manual_seed(0)
    data = (torch.rand(80, 1, 4, 4) < 0.3).float()
    module = PixelCNNModule((1, 4, 4), hidden_features=8, num_layers=2, architecture="original")
    config = TrainingConfig(epochs=2, batch_size=20, progress=False)
    path = tmp_path / "pixelcnn.pt"
    first = fit_maximum_likelihood(module, data[:60], data[60:], config, checkpoint_path=path)
    assert first.improved
    resumed = PixelCNNModule((1, 4, 4), hidden_features=8, num_layers=2, architecture="original")
    config = TrainingConfig(epochs=4, batch_size=20, progress=False)
    result = fit_maximum_likelihood(
        resumed, data[:60], data[60:], config, checkpoint_path=path, resume_from=path
    )
    assert [record.epoch for record in result.history] == [1, 2, 3, 4]
    assert result.best_valid_nll <= first.best_valid_nll


def test_module_shapes_flat_data_and_builds_for_it():
    flat = (torch.rand(10, 16) < 0.5).float()
    module = PixelCNNModule.for_data(flat, hidden_features=8, num_layers=1, seed=3)
    assert module.image_shape == (1, 4, 4) and module.config["seed"] == 3
    images = module.shape_data(flat)
    assert images.shape == (10, 1, 4, 4)
    assert torch.equal(module.shape_data(images), images)
    with pytest.raises(ValueError, match="neither"):
        module.shape_data(torch.zeros(3, 15))
    assert module().log_prob(images).shape == (10,)
