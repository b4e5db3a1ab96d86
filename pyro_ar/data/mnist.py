r"""MNIST from the standard IDX files, and its binarized versions.

Nothing is downloaded implicitly: :func:`load_mnist` reads a directory that the user names
(argument, or the environment variable ``PYRO_AR_MNIST_DIR``); :func:`download_mnist` is the one
explicit way to fetch the files.

References:
    | Gradient-based learning applied to document recognition (LeCun et al., 1998)
    | http://yann.lecun.com/exdb/mnist/
"""

from __future__ import annotations

__all__ = [
    "MNIST_DIR_VARIABLE",
    "DataFileError",
    "download_mnist",
    "load_binarized_mnist",
    "load_mnist",
    "read_idx",
]

import gzip
import hashlib
import logging
import os
import urllib.request
import zlib
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..io.files import write_atomically
from .binarization import binarize_stochastic, binarize_threshold
from .splits import DataSplits

logger = logging.getLogger(__name__)

#: Environment variable naming the directory that holds the MNIST files.
MNIST_DIR_VARIABLE = "PYRO_AR_MNIST_DIR"

#: The four files, with their expected shapes.
MNIST_FILES = {
    "train-images-idx3-ubyte": (60000, 28, 28),
    "train-labels-idx1-ubyte": (60000,),
    "t10k-images-idx3-ubyte": (10000, 28, 28),
    "t10k-labels-idx1-ubyte": (10000,),
}

#: SHA-256 of the standard gzipped files, checked by :func:`download_mnist`.
MNIST_SHA256 = {
    "train-images-idx3-ubyte.gz": (
        "0b367032e93c5d0cea0925647cfdb18614af8ee15f83e6f2fc2ad904a6835971"
    ),
    "train-labels-idx1-ubyte.gz": (
        "1787548bbe0bff1ec2ecdc0ef292b02df999e2d1a6002d27500982c652b17203"
    ),
    "t10k-images-idx3-ubyte.gz": (
        "1a1a05eab793c14bb050b398624a11b0ffd1a2953baed553b1b9bd079e2a20be"
    ),
    "t10k-labels-idx1-ubyte.gz": (
        "b91679a0acfe4ba0e50a2437a903084cba1f5f92592b016a25a7dfd00455798b"
    ),
}

#: Where :func:`download_mnist` looks, in order.
MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)

_GZIP_MAGIC = b"\x1f\x8b"
_UNSIGNED_BYTE = 0x08


class DataFileError(ValueError):
    """A data file is missing, truncated, or not in the expected format.

    Example:
        >>> import tempfile
        >>> try:
        ...     load_mnist(tempfile.mkdtemp())  # an empty directory
        ... except DataFileError as error:
        ...     print("train-images-idx3-ubyte" in str(error))
        True
    """


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Reads an IDX file of unsigned bytes, gzipped or not (detected from its content).

    The header is two zero bytes, a type code (``0x08`` for unsigned bytes), the number of
    dimensions, then each size as a big-endian 32-bit integer.

    Raises:
        DataFileError: the file is missing, not IDX, not unsigned bytes, or truncated.

    Example:
        >>> import struct, tempfile
        >>> path = Path(tempfile.mkdtemp()) / "images-idx3-ubyte"
        >>> header = struct.pack(">HBB3I", 0, 0x08, 3, 2, 28, 28)  # 2 images of 28 x 28
        >>> _ = path.write_bytes(header + bytes(2 * 28 * 28))
        >>> read_idx(path).shape
        (2, 28, 28)
        >>> _ = path.write_bytes(header + bytes(100))  # truncated
        >>> try:
        ...     read_idx(path)
        ... except DataFileError:
        ...     print("refused")
        refused
    """
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"no such data file: {path}")
    raw = path.read_bytes()
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as error:  # zlib.error: damage inside the stream
            raise DataFileError(f"{path} is a damaged gzip file: {error}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataFileError(f"{path} is not an IDX file (bad magic number)")
    if raw[2] != _UNSIGNED_BYTE:
        raise DataFileError(f"{path}: IDX type code {raw[2]:#04x}, expected 0x08 (unsigned byte)")
    num_dims = raw[3]
    header = 4 + 4 * num_dims
    if num_dims == 0 or len(raw) < header:
        raise DataFileError(f"{path}: IDX header is truncated")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(num_dims))
    expected = header + int(np.prod(shape))
    if len(raw) != expected:
        raise DataFileError(
            f"{path}: IDX header announces shape {shape} ({expected} bytes) but the file has "
            f"{len(raw)} bytes (truncated or corrupt)"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def _resolve_directory(directory: str | os.PathLike | None) -> Path:
    if directory is None:
        directory = os.environ.get(MNIST_DIR_VARIABLE)
        if not directory:
            raise DataFileError(
                f"MNIST needs a directory with the IDX files: pass data_dir=... (--data-dir on "
                f"the command line) or set {MNIST_DIR_VARIABLE}; nothing is downloaded unless "
                "you call pyro_ar.data.download_mnist"
            )
    directory = Path(directory).expanduser()
    if not directory.is_dir():
        raise DataFileError(f"MNIST directory does not exist: {directory}")
    return directory


def _find(directory: Path, stem: str) -> Path:
    for name in (stem + ".gz", stem):
        if (directory / name).is_file():
            return directory / name
    raise DataFileError(f"{directory} has neither {stem}.gz nor {stem} (an MNIST IDX file)")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_sha256sums(directory: Path, paths: list[Path]) -> None:
    """Checks ``paths`` against a ``SHA256SUMS`` file in ``directory``, if there is one.

    The listing must parse (``<64 hex digits> <name>`` per line, as ``sha256sum`` writes it)
    and must name every file that is read: a listing that checks nothing is an error, not a
    pass."""
    listing = directory / "SHA256SUMS"
    if not listing.is_file():
        return
    expected = {}
    try:
        text = listing.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DataFileError(f"{listing} is not a text file of checksums") from None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        digest = parts[0].lower() if parts else ""
        if (
            len(parts) != 2
            or len(digest) != 64
            or any(c not in "0123456789abcdef" for c in digest)
        ):
            raise DataFileError(
                f"{listing}, line {number}: expected '<64 hex digits> <file name>', got {line!r}"
            )
        expected[parts[1].lstrip("*")] = digest
    for path in paths:
        if path.name in expected and _sha256(path) != expected[path.name]:
            raise DataFileError(f"{path} does not match its checksum in {listing} (corrupt file)")
    unlisted = [path.name for path in paths if path.name not in expected]
    if unlisted:
        raise DataFileError(
            f"{listing} lists no checksum for {', '.join(unlisted)}: fix or remove the listing"
        )


def load_mnist(data_dir: str | os.PathLike | None = None) -> dict[str, Tensor]:
    """Reads the four MNIST IDX files (``.gz`` or uncompressed) from ``data_dir``.

    Arguments:
        data_dir: The directory; defaults to ``$PYRO_AR_MNIST_DIR``. A ``SHA256SUMS`` file
            there, if any, is checked.

    Returns:
        ``train_images`` (60000, 28, 28) and ``test_images`` (10000, 28, 28) as ``uint8``,
        ``train_labels`` and ``test_labels`` as ``int64``.

    Raises:
        DataFileError: a file is missing, corrupt, or of the wrong shape.

    Example:
        >>> import tempfile
        >>> try:  # a directory without the four files: the error names the one missing
        ...     load_mnist(tempfile.mkdtemp())
        ... except DataFileError:
        ...     print("missing")
        missing
    """
    directory = _resolve_directory(data_dir)
    paths = {stem: _find(directory, stem) for stem in MNIST_FILES}
    _check_sha256sums(directory, list(paths.values()))
    arrays = {}
    for stem, shape in MNIST_FILES.items():
        array = read_idx(paths[stem])
        if array.shape != shape:
            raise DataFileError(f"{paths[stem]} has shape {array.shape}, expected {shape}")
        if "labels" in stem and array.size and int(array.max()) > 9:
            bad = int(np.flatnonzero(array > 9)[0])
            raise DataFileError(
                f"{paths[stem]}: label {int(array[bad])} at index {bad} is not a digit 0-9"
            )
        arrays[stem] = torch.from_numpy(array.copy())
    return {
        "train_images": arrays["train-images-idx3-ubyte"],
        "train_labels": arrays["train-labels-idx1-ubyte"].long(),
        "test_images": arrays["t10k-images-idx3-ubyte"],
        "test_labels": arrays["t10k-labels-idx1-ubyte"].long(),
    }


def load_binarized_mnist(
    data_dir: str | os.PathLike | None = None,
    binarization: str = "stochastic",
    seed: int = 0,
    threshold: float = 0.5,
) -> DataSplits:
    r"""Binarized MNIST, 50,000 train / 10,000 valid / 10,000 test, 784 pixels each.

    The validation set is the last 10,000 images of the training file (the standard split).

    Arguments:
        data_dir: Directory of the IDX files (default ``$PYRO_AR_MNIST_DIR``).
        binarization: ``"stochastic"`` (each pixel ~ Bernoulli(intensity / 255), fixed seed;
            Salakhutdinov & Murray 2008) or ``"threshold"`` (intensity / 255 > ``threshold``).
        seed: Seed of the stochastic binarization (training file first, then test file).
        threshold: Cut-off of the threshold binarization.

    Returns:
        ``float32`` splits of shape ``(N, 784)``, ``image_shape == (28, 28)``.

    Example:
        >>> import tempfile
        >>> try:  # splits.train (50000, 784) etc. from the four standard files in a directory
        ...     load_binarized_mnist(tempfile.mkdtemp())
        ... except DataFileError:
        ...     print("no MNIST files there")
        no MNIST files there
    """
    raw = load_mnist(data_dir)
    train = raw["train_images"].reshape(-1, 784).float() / 255
    test = raw["test_images"].reshape(-1, 784).float() / 255
    if binarization == "stochastic":
        both = binarize_stochastic(torch.cat([train, test]), seed=seed)
        train, test = both[:60000], both[60000:]
        how = f"stochastic binarization, seed {seed}"
    elif binarization == "threshold":
        train, test = binarize_threshold(train, threshold), binarize_threshold(test, threshold)
        how = f"threshold binarization at {threshold}"
    else:
        raise ValueError(
            f"unknown binarization {binarization!r}; choose 'stochastic' or 'threshold'"
        )
    return DataSplits(
        name="mnist",
        train=train[:50000],
        valid=train[50000:],
        test=test,
        image_shape=(28, 28),
        description=f"MNIST, {how}; train = first 50k, valid = last 10k of the training file",
    )


def download_mnist(data_dir: str | os.PathLike, mirrors: tuple[str, ...] = MNIST_MIRRORS) -> Path:
    """Downloads the four gzipped MNIST files into ``data_dir`` (explicit opt-in only).

    Files already present with the right checksum are kept. Each file is written to a
    temporary name, checked against :data:`MNIST_SHA256`, then renamed, so an interrupted
    download never leaves a half-written file under the final name.

    Returns:
        The directory, ready for :func:`load_mnist`.

    Example:
        >>> import tempfile
        >>> try:  # nothing downloads unless asked; no mirror given, nothing to download from
        ...     download_mnist(tempfile.mkdtemp(), mirrors=())
        ... except DataFileError as error:
        ...     print(str(error).split(":")[0])
        could not download train-images-idx3-ubyte.gz
    """
    directory = Path(data_dir).expanduser()
    directory.mkdir(parents=True, exist_ok=True)
    for name, digest in MNIST_SHA256.items():
        target = directory / name
        if target.is_file() and _sha256(target) == digest:
            continue
        errors = []
        for mirror in mirrors:
            url = mirror.rstrip("/") + "/" + name
            try:
                with urllib.request.urlopen(url, timeout=60) as response:
                    payload = response.read()
            except OSError as error:
                errors.append(f"{url}: {error}")
                continue
            if hashlib.sha256(payload).hexdigest() != digest:
                errors.append(f"{url}: checksum mismatch")
                continue
            write_atomically(target, payload)
            logger.info("downloaded %s", url)
            break
        else:
            raise DataFileError(f"could not download {name}: " + "; ".join(errors))
    return directory
