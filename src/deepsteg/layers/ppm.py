"""Pyramid pooling module (PSPNet, Zhao et al. 2017) as modified by StegoPNet (§III-B, Fig. 4)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class PyramidPooling(nn.Module):
    """Pool the feature map to several grid sizes, project each to ``branch_ch``, upsample, concatenate.

    The output keeps the input features (as PSPNet does): ``in_ch + len(bins) * branch_ch`` channels.
    StegoPNet's Table 2 fixes this at 256 + 5·64 = 576, the first deconvolution's input width.

    Bins are absolute output grid sizes (adaptive average pooling), as in PSPNet. A bin larger than the
    feature map is clamped to the map's size: pooling to a finer grid than the map only repeats pixels,
    and clamping keeps the module well defined for any input size (the paper's 32×32 bin would otherwise
    mean up-sampling a 16×16 map before pooling it).
    """

    def __init__(self, in_ch: int = 256, bins: Sequence[int] = (32, 16, 8, 4, 2), branch_ch: int = 64) -> None:
        super().__init__()
        self.bins = tuple(int(b) for b in bins)
        self.branches = nn.ModuleList(
            nn.Sequential(nn.Conv2d(in_ch, branch_ch, 1, bias=False), nn.BatchNorm2d(branch_ch), nn.ReLU(inplace=True))
            for _ in self.bins
        )
        self.out_channels = in_ch + branch_ch * len(self.bins)

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        feats = [x]
        for bin_size, branch in zip(self.bins, self.branches):
            grid = (min(bin_size, h), min(bin_size, w))
            y = branch(F.adaptive_avg_pool2d(x, grid))
            if grid != (h, w):
                y = F.interpolate(y, size=(h, w), mode="bilinear", align_corners=False)
            feats.append(y)
        return torch.cat(feats, dim=1)
