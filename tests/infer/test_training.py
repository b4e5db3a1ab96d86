"""The maximum-likelihood trainer and checkpoints."""

from __future__ import annotations

import pytest
import torch

from pyro_ar.data import load_binarized_digits
from pyro_ar.infer import (
    CheckpointError,
    TrainingConfig,
    fit_maximum_likelihood,
    load_checkpoint,
    mean_nll,
    save_checkpoint,
)
from pyro_ar.nn import FVSBNModule, MADEModule, NADEModule


@pytest.fixture(scope="module")
def digits():
    return load_binarized_digits()


def _fit(digits, path=None, seed=0, **overrides):
    module = NADEModule(64, 16, data=digits.train, seed=seed)
    config = TrainingConfig(**{"epochs": 4, "seed": seed, "progress": False, **overrides})
    result = fit_maximum_likelihood(module, digits.train, digits.valid, config, path)
    return module, result


def test_training_improves_and_restores_the_best_epoch(digits, tmp_path):
    untrained = NADEModule(64, 16, data=digits.train, seed=0)
    start = mean_nll(untrained, digits.valid)
    module, result = _fit(digits, tmp_path / "best.pt", epochs=6, learning_rate=1e-2)
    assert len(result.history) == 6
    assert result.best_valid_nll < start - 2
    best = min(result.history, key=lambda record: record.valid_nll)
    assert result.best_epoch == best.epoch
    assert mean_nll(module, digits.valid) == pytest.approx(best.valid_nll, rel=1e-6)
    loaded, metadata = load_checkpoint(tmp_path / "best.pt")
    assert metadata["epoch"] == best.epoch and metadata["model"] == "nade"
    assert mean_nll(loaded, digits.valid) == pytest.approx(best.valid_nll, rel=1e-6)
    assert [p.name for p in tmp_path.iterdir()] == ["best.pt"]  # no temporary files left


def test_training_is_reproducible(digits):
    first, _ = _fit(digits, epochs=2)
    second, _ = _fit(digits, epochs=2)
    for a, b in zip(first.parameters(), second.parameters(), strict=True):
        assert torch.equal(a, b)


def test_early_stopping_and_time_budget(digits):
    # an absurd learning rate makes validation worse at once: patience 1 stops after 2 epochs
    _, result = _fit(digits, epochs=50, learning_rate=0.5, patience=1)
    assert result.stop_reason == "early stopping"
    assert len(result.history) < 50
    _, result = _fit(digits, epochs=50, max_seconds=0.0)
    assert result.stop_reason == "time budget" and len(result.history) == 1


def test_autocast_trains_in_low_precision_and_evaluates_in_full(digits, monkeypatch):
    from pyro_ar.nn import PixelCNNModule

    module = PixelCNNModule((1, 8, 8), hidden_features=8, num_layers=2, seed=0)
    images = module.shape_data(digits.train)
    valid = module.shape_data(digits.valid)
    before = mean_nll(module, valid)
    seen = []
    convolution = torch.nn.functional.conv2d

    def recording(*args, **kwargs):
        output = convolution(*args, **kwargs)
        seen.append(output.dtype)
        return output

    monkeypatch.setattr(torch.nn.functional, "conv2d", recording)
    config = TrainingConfig(epochs=2, progress=False, autocast="bfloat16")
    result = fit_maximum_likelihood(module, images, valid, config)
    assert torch.bfloat16 in seen and torch.float32 in seen  # training steps, evaluations
    assert result.best_valid_nll < before - 1
    assert all(p.dtype == torch.float32 for p in module.parameters())
    with pytest.raises(ValueError, match="autocast"):
        TrainingConfig(autocast="int8")


def test_config_rejects_nonsense():
    with pytest.raises(ValueError, match="batch_size"):
        TrainingConfig(batch_size=0)
    with pytest.raises(ValueError, match="learning_rate must be positive"):
        TrainingConfig(learning_rate=-1)


@pytest.mark.parametrize(
    "module",
    [
        FVSBNModule(10, ordering=torch.randperm(10)),
        NADEModule(10, 5, context_features=2),
        MADEModule(10, [8], ordering="random", direct_connections=True, context_features=2),
    ],
)
def test_checkpoint_round_trip(module, tmp_path):
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.normal_()
    path = save_checkpoint(tmp_path / "sub" / "model.pt", module, note="hello")
    loaded, metadata = load_checkpoint(path)
    assert type(loaded) is type(module) and metadata["note"] == "hello"
    assert torch.equal(loaded.ordering, module.ordering)
    for (name, a), (_, b) in zip(
        module.state_dict().items(), loaded.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name


def test_damaged_checkpoints_raise_checkpoint_error(tmp_path):
    path = save_checkpoint(tmp_path / "model.pt", FVSBNModule(4))
    data = path.read_bytes()
    (tmp_path / "truncated.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "truncated.pt")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not a pyro_ar checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")
    with pytest.raises(CheckpointError, match="not in pyro_ar.nn.MODULES"):
        save_checkpoint(tmp_path / "x.pt", torch.nn.Linear(2, 2))


def test_interrupted_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path / "model.pt", FVSBNModule(4), version=1)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("os.replace", crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, FVSBNModule(4), version=2)
    monkeypatch.undo()
    assert load_checkpoint(path)[1]["version"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]


def test_dynamic_binarization_feeds_a_fresh_training_set_each_epoch(digits):
    from pyro_ar.data import DynamicBinarization, load_digits_intensities

    intensities = load_digits_intensities()[0][: len(digits.train)]
    binarize = DynamicBinarization(intensities, seed=3)
    first, again, second = binarize(1), binarize(1), binarize(2)
    assert torch.equal(first, again) and not torch.equal(first, second)
    assert set(first.unique().tolist()) <= {0.0, 1.0} and first.shape == intensities.shape
    # each pixel is Bernoulli(intensity): the mean over many epochs approaches it
    mean = torch.stack([binarize(epoch) for epoch in range(1, 201)]).mean(0)
    assert (mean - intensities).abs().max() < 0.15 and (mean - intensities).abs().mean() < 0.03
    seen = []

    def recording(epoch):
        seen.append(epoch)
        return binarize(epoch)

    module = NADEModule(64, 8, data=digits.train, seed=0)
    config = TrainingConfig(epochs=3, patience=5, progress=False)
    result = fit_maximum_likelihood(module, recording, digits.valid, config)
    assert seen == [1, 2, 3] and len(result.history) == 3
    with pytest.raises(ValueError, match="intensities"):
        DynamicBinarization(intensities * 2)
    with pytest.raises(ValueError, match="epoch 1 is empty"):
        fit_maximum_likelihood(module, lambda epoch: digits.train[:0], digits.valid, config)
