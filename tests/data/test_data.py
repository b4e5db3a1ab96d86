"""Data loaders: the embedded digits, MNIST from IDX files, binarization, clear errors."""

from __future__ import annotations

import gzip
import hashlib
import shutil

import numpy as np
import pytest
import torch
from factories import write_fake_mnist, write_idx

from conftest import mnist_dir
from pyro_ar.data import (
    MNIST_DIR_VARIABLE,
    DataFileError,
    binarize_stochastic,
    binarize_threshold,
    download_mnist,
    load_binarized_digits,
    load_binarized_mnist,
    load_binary_dataset,
    load_digits_intensities,
    load_mnist,
    read_idx,
)
from pyro_ar.data import mnist as mnist_module

MNIST = mnist_dir()
needs_mnist = pytest.mark.skipif(MNIST is None, reason="MNIST files not found (../shared/data)")


def test_embedded_digits_equal_sklearns():
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    reference = sklearn_datasets.load_digits()
    pixels, labels = load_digits_intensities()
    assert np.array_equal(pixels.numpy() * 16, reference.data)
    assert np.array_equal(labels.numpy(), reference.target)


def test_binarized_digits_split_is_fixed_and_disjoint():
    splits = load_binarized_digits()
    assert (len(splits.train), len(splits.valid), len(splits.test)) == (1437, 180, 180)
    assert splits.num_dims == 64 and splits.image_shape == (8, 8)
    pixels, _ = load_digits_intensities()
    expected = (pixels * 16 > 7).float()
    assert torch.equal(splits.test, expected[0::10])
    assert torch.equal(splits.valid, expected[1::10])
    for split in ("train", "valid", "test"):
        values = splits[split]
        assert values.dtype == torch.float32
        assert set(values.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(load_binarized_digits().train, splits.train)  # deterministic
    with pytest.raises(KeyError, match="unknown split"):
        splits["training"]


def test_binarizations():
    intensities = torch.tensor([[0.0, 0.2, 0.5, 0.51, 1.0]])
    assert binarize_threshold(intensities).tolist() == [[0, 0, 0, 1, 1]]
    draws = binarize_stochastic(torch.full((200000,), 0.3), seed=1)
    assert abs(draws.mean().item() - 0.3) < 0.005
    assert torch.equal(draws, binarize_stochastic(torch.full((200000,), 0.3), seed=1))
    assert not torch.equal(draws, binarize_stochastic(torch.full((200000,), 0.3), seed=2))
    with pytest.raises(ValueError, match="\\[0, 1\\]"):
        binarize_threshold(torch.tensor([1.5]))
    with pytest.raises(ValueError, match="\\[0, 1\\]"):
        binarize_stochastic(torch.tensor([float("nan")]))


@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_round_trip(tmp_path, compress):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a", array, compress)
    assert np.array_equal(read_idx(tmp_path / "a"), array)


def test_read_idx_rejects_bad_files(tmp_path):
    path = tmp_path / "bad"
    path.write_bytes(b"\x01\x02\x08\x01" + b"\x00" * 8)
    with pytest.raises(DataFileError, match="magic"):
        read_idx(path)
    write_idx(path, np.zeros((2, 2)), type_code=0x0D)
    with pytest.raises(DataFileError, match="type code"):
        read_idx(path)
    write_idx(path, np.zeros((4, 5)))
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(DataFileError, match="truncated"):
        read_idx(path)
    path.write_bytes(b"\x1f\x8b garbage")
    with pytest.raises(DataFileError, match="gzip"):
        read_idx(path)
    with pytest.raises(DataFileError, match="no such"):
        read_idx(tmp_path / "missing")


def test_mnist_directory_errors(tmp_path, monkeypatch):
    monkeypatch.delenv(MNIST_DIR_VARIABLE, raising=False)
    with pytest.raises(DataFileError, match=MNIST_DIR_VARIABLE):
        load_mnist()
    with pytest.raises(DataFileError, match="does not exist"):
        load_mnist(tmp_path / "nowhere")
    with pytest.raises(DataFileError, match="train-images-idx3-ubyte"):
        load_mnist(tmp_path)


@pytest.fixture(scope="module")
def fake_mnist(tmp_path_factory):
    directory = tmp_path_factory.mktemp("fake") / "mnist"
    write_fake_mnist(directory)
    return directory


def test_load_mnist_from_a_users_directory(fake_mnist, tmp_path, monkeypatch):
    for path in fake_mnist.iterdir():  # the uncompressed form is read too
        (tmp_path / path.name[:-3]).write_bytes(gzip.decompress(path.read_bytes()))
    assert torch.equal(load_mnist(tmp_path)["test_images"], load_mnist(fake_mnist)["test_images"])
    monkeypatch.setenv(MNIST_DIR_VARIABLE, str(fake_mnist))
    raw = load_mnist()
    assert raw["train_images"].shape == (60000, 28, 28)
    assert raw["test_labels"].shape == (10000,)
    splits = load_binarized_mnist(binarization="threshold")
    assert (len(splits.train), len(splits.valid), len(splits.test)) == (50000, 10000, 10000)
    expected = (raw["train_images"][50000:].reshape(-1, 784).float() / 255 > 0.5).float()
    assert torch.equal(splits.valid, expected)


def test_load_mnist_rejects_wrong_shapes_and_checksums(tmp_path, fake_mnist):
    write_fake_mnist(tmp_path / "short", corrupt="t10k-labels-idx1-ubyte")
    with pytest.raises(DataFileError, match="shape"):
        load_mnist(tmp_path / "short")
    shutil.copytree(fake_mnist, tmp_path / "sums")
    (tmp_path / "sums" / "SHA256SUMS").write_text("0" * 64 + "  train-labels-idx1-ubyte.gz\n")
    with pytest.raises(DataFileError, match="checksum"):
        load_mnist(tmp_path / "sums")
    with pytest.raises(ValueError, match="unknown binarization"):
        load_binarized_mnist(fake_mnist, binarization="dithered")


def test_download_is_explicit_and_checked(tmp_path, monkeypatch, fake_mnist):
    source = fake_mnist
    fake_sums = {
        name: hashlib.sha256((source / name).read_bytes()).hexdigest()
        for name in mnist_module.MNIST_SHA256
    }
    monkeypatch.setattr(mnist_module, "MNIST_SHA256", fake_sums)
    target = download_mnist(tmp_path / "target", mirrors=(source.as_uri(),))
    assert load_mnist(target)["train_images"].shape == (60000, 28, 28)
    assert not [p for p in target.iterdir() if p.name.startswith(".")]  # no temp files left
    monkeypatch.setattr(mnist_module, "MNIST_SHA256", {"train-labels-idx1-ubyte.gz": "0" * 64})
    with pytest.raises(DataFileError, match="checksum mismatch"):
        download_mnist(tmp_path / "other", mirrors=(source.as_uri(),))


@needs_mnist
def test_real_mnist_stochastic_binarization_is_reproducible(tmp_path):
    splits = load_binarized_mnist(MNIST, binarization="stochastic", seed=0)
    assert splits.train.shape == (50000, 784) and splits.test.shape == (10000, 784)
    assert 0.12 < splits.train.mean().item() < 0.14  # MNIST's mean intensity is about 0.13
    raw = load_mnist(MNIST)
    intensity = raw["train_images"][:50000].reshape(-1, 784).float() / 255
    on_when_black = splits.train[intensity == 0]
    assert on_when_black.sum() == 0  # Bernoulli(0) never fires
    # same seed, same bits; an uncompressed copy of the directory reads the same
    copy = tmp_path / "plain"
    copy.mkdir()
    for path in MNIST.glob("*.gz"):
        (copy / path.name[:-3]).write_bytes(gzip.decompress(path.read_bytes()))
    again = load_binary_dataset("mnist", copy, "stochastic", seed=0)
    assert torch.equal(again.test, splits.test)
    shutil.rmtree(copy)


def test_unknown_dataset_name():
    with pytest.raises(ValueError, match="unknown data set"):
        load_binary_dataset("cifar")
