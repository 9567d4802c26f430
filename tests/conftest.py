"""Tiny synthetic images for tests: nothing here reads the shared corpus."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image


def natural_like(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth, textured uint8 RGB image (gradients + blobs + mild noise), closer to a photo than noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.zeros((h, w, 3))
    for c in range(3):
        fx, fy, ph = rng.uniform(0.5, 3.0), rng.uniform(0.5, 3.0), rng.uniform(0, 2 * math.pi)
        img[..., c] = 0.5 + 0.3 * np.sin(2 * math.pi * (fx * x / w + fy * y / h) + ph)
        for _ in range(3):
            cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(3, max(4, min(h, w) / 3))
            img[..., c] += rng.uniform(-0.3, 0.3) * np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * r * r))
    img += rng.normal(0, 0.02, img.shape)
    return (np.clip(img, 0, 1) * 255).round().astype(np.uint8)


@pytest.fixture
def make_png(tmp_path: Path):
    """Write a natural-like PNG of the given size and return its path."""

    def _make(name: str = "img.png", h: int = 32, w: int = 32, seed: int = 0, folder: Path | None = None) -> Path:
        d = folder or tmp_path
        d.mkdir(parents=True, exist_ok=True)
        p = d / name
        Image.fromarray(natural_like(h, w, seed)).save(p)
        return p

    return _make


@pytest.fixture
def image_folder(tmp_path: Path, make_png) -> Path:
    """A folder of six 48×40 natural-like PNGs."""
    d = tmp_path / "imgs"
    for i in range(6):
        make_png(f"im{i}.png", 40, 48, seed=i, folder=d)
    return d


@pytest.fixture(autouse=True)
def _few_threads():
    torch.set_num_threads(1)
    yield
