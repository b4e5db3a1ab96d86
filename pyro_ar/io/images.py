r"""Grids of images: PNG files with no imaging dependency, and a matplotlib figure for
notebooks."""

from __future__ import annotations

__all__ = ["image_grid", "save_image_grid", "show_images"]

import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .files import write_atomically


def image_grid(
    images: Tensor, image_shape: tuple[int, int], columns: int | None = None, padding: int = 1
) -> np.ndarray:
    """Tiles ``images`` (N, H*W) with values in [0, 1] into one ``uint8`` array, one grey
    level per pixel, separated by ``padding`` pixels of mid-grey.

    Example:
        >>> image_grid(torch.rand(6, 4), (2, 2), columns=3).shape  # 3 x 2 tiles, 1-pixel padding
        (7, 10)
    """
    images = torch.as_tensor(images).detach().float().cpu()
    height, width = image_shape
    if images.dim() != 2 or images.shape[1] != height * width:
        raise ValueError(
            f"images must have shape (N, {height * width}), got {tuple(images.shape)}"
        )
    count = images.shape[0]
    columns = columns or math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    grid = np.full(
        (rows * (height + padding) + padding, columns * (width + padding) + padding),
        128,
        dtype=np.uint8,
    )
    pixels = (images.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    for index in range(count):
        top = padding + (index // columns) * (height + padding)
        left = padding + (index % columns) * (width + padding)
        grid[top : top + height, left : left + width] = pixels[index].reshape(height, width)
    return grid


def save_image_grid(
    path: str | os.PathLike,
    images: Tensor,
    image_shape: tuple[int, int],
    columns: int | None = None,
    scale: int = 4,
) -> Path:
    """Writes ``images`` (N, H*W), values in [0, 1], as a greyscale PNG grid, each pixel
    enlarged to ``scale`` x ``scale``. The file is written atomically.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "samples.png"
        >>> save_image_grid(path, torch.rand(6, 64), (8, 8), columns=3).read_bytes()[:4]
        b'\\x89PNG'
    """
    grid = image_grid(images, image_shape, columns).repeat(scale, 0).repeat(scale, 1)
    height, width = grid.shape
    raw = b"".join(b"\x00" + grid[row].tobytes() for row in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )
    return write_atomically(path, png)


def show_images(
    images: Tensor,
    image_shape: tuple[int, int],
    title: str = "",
    columns: int = 16,
    size: float = 0.5,
):
    """Draws ``images`` (N, H*W), values in [0, 1], as one grey grid in a matplotlib figure
    (the tutorials' plots), ``size`` inches per image; returns the figure.

    Example:
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> figure = show_images(torch.rand(20, 64), (8, 8), "noise")
        >>> len(figure.axes)
        1
    """
    import matplotlib.pyplot as plt  # an optional dependency, for notebooks

    rows = -(-len(images) // columns)
    figure = plt.figure(figsize=(columns * size, rows * size + 0.4))
    plt.imshow(image_grid(images, image_shape, columns), cmap="gray", vmin=0, vmax=255)
    plt.title(title)
    plt.axis("off")
    plt.show()
    return figure
