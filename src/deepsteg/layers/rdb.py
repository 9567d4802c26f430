"""Blocks of SFTN's extractor: the multi-scale fusion block and the residual dense block."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def basic_conv(cin: int, cout: int, dilation: int = 1) -> nn.Sequential:
    """SFTN's BasicConv: 3×3 conv (padding keeps the size) + BatchNorm + LeakyReLU(0.1)."""
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=dilation, dilation=dilation, bias=False),
                         nn.BatchNorm2d(cout), nn.LeakyReLU(0.1, inplace=True))


class MultiScaleFusion(nn.Module):
    """Three 3×3 convolutions with paddings 1, 2, 3 (dilations 1, 2, 3, so the size is kept), concatenated, then a
    BasicConv (SFTN §III-A.2, after Huang et al. 2019)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.branches = nn.ModuleList(nn.Conv2d(cin, cout, 3, padding=d, dilation=d) for d in (1, 2, 3))
        self.fuse = basic_conv(3 * cout, cout)

    def forward(self, x: Tensor) -> Tensor:
        return self.fuse(torch.cat([b(x) for b in self.branches], dim=1))


class ResidualDenseBlock(nn.Module):
    """Densely connected 3×3 conv + LeakyReLU layers, local feature fusion by a 1×1 conv, and a residual
    shortcut (Zhang et al., CVPR 2018)."""

    def __init__(self, channels: int, growth: int = 32, layers: int = 3) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            nn.Sequential(nn.Conv2d(channels + i * growth, growth, 3, padding=1), nn.LeakyReLU(0.1, inplace=True))
            for i in range(layers))
        self.fusion = nn.Conv2d(channels + layers * growth, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        feats = [x]
        for layer in self.layers:
            feats.append(layer(torch.cat(feats, dim=1)))
        return x + self.fusion(torch.cat(feats, dim=1))
