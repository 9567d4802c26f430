"""Spatial pyramid pooling (He et al., "Spatial Pyramid Pooling in Deep Convolutional Networks for Visual
Recognition", TPAMI 2015), used by ISGAN's steganalyser (Zhang et al., §3.3, Table 3) in place of XuNet's global
average pooling so that fully connected layers accept any input size."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class SpatialPyramidPooling(nn.Module):
    """Pool an N×C×H×W map to an n×n grid for each level n, flatten and concatenate: N × C·Σn² features.

    Max pooling, as He et al. Adaptive pooling makes the bins cover the map whatever its size; a map smaller than
    a level's grid (tiny training crops) has its pixels repeated, which keeps the output width fixed.
    """

    def __init__(self, levels: Sequence[int] = (1, 2, 4), mode: str = "max") -> None:
        super().__init__()
        if mode not in ("max", "avg"):
            raise ValueError("mode must be 'max' or 'avg'")
        self.levels = tuple(int(n) for n in levels)
        self.mode = mode

    def out_features(self, channels: int) -> int:
        """Width of the flattened output for a ``channels``-channel input."""
        return channels * sum(n * n for n in self.levels)

    def forward(self, x: Tensor) -> Tensor:
        pool = F.adaptive_max_pool2d if self.mode == "max" else F.adaptive_avg_pool2d
        return torch.cat([pool(x, n).flatten(1) for n in self.levels], dim=1)
