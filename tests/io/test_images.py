"""PNG grids decode to the pixels that were written."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
import torch

from pyro_ar.io import image_grid, save_image_grid


def test_png_decodes_to_the_grid(tmp_path):
    images = torch.rand(5, 12)
    path = save_image_grid(tmp_path / "grid.png", images, (3, 4), columns=3, scale=2)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    grid = image_grid(images, (3, 4), columns=3)
    assert (height, width) == (grid.shape[0] * 2, grid.shape[1] * 2)
    start = data.index(b"IDAT") + 4
    length = int.from_bytes(data[start - 8 : start - 4], "big")
    rows = np.frombuffer(zlib.decompress(data[start : start + length]), np.uint8)
    pixels = rows.reshape(height, width + 1)[:, 1:]
    assert np.array_equal(pixels[::2, ::2], grid)
    first = (images[0].reshape(3, 4) * 255).round().numpy().astype(np.uint8)
    assert np.array_equal(grid[1:4, 1:5], first)


def test_grid_rejects_wrong_shapes():
    with pytest.raises(ValueError, match="shape"):
        image_grid(torch.rand(2, 10), (3, 4))
