"""Inception module with a residual shortcut, ISGAN's encoder block (Zhang et al., §3.2, Fig. 3; Szegedy et al.
2016 for the module, He et al. 2016 for the shortcut)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class InceptionResBlock(nn.Module):
    """Four parallel towers — 1×1; 1×1→3×3; 1×1→5×5; 3×3 max-pool→1×1 — of ``out_ch / 4`` channels each,
    concatenated, added to a 1×1 projection of the input (identity when the widths match), then BN + LeakyReLU.

    Fig. 3 of the paper is a picture without a text description; the tower layout is GoogLeNet's. Where the
    figure is silent we chose: LeakyReLU (the paper's §4 replaces every ReLU by it) after the 1×1 reductions, and
    one BN + LeakyReLU after the residual sum (ResNet's post-activation; §3.2 adds "batch normalization" to the
    encoder without saying where). Spatial size is preserved; the receptive-field radius is :attr:`radius`.
    """

    #: Receptive-field radius in pixels (the 1×1→5×5 tower).
    radius: int = 2

    def __init__(self, in_ch: int, out_ch: int, negative_slope: float = 0.2) -> None:
        super().__init__()
        if out_ch % 4:
            raise ValueError(f"out_ch must be a multiple of 4 (four towers), got {out_ch}")
        b = out_ch // 4

        def reduce_then(k: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(in_ch, b, 1), nn.LeakyReLU(negative_slope, inplace=True),
                                 nn.Conv2d(b, b, k, padding=k // 2, bias=False))

        # Tower convolutions feed a BN after the sum, so they carry no bias.
        self.tower1 = nn.Conv2d(in_ch, b, 1, bias=False)
        self.tower3 = reduce_then(3)
        self.tower5 = reduce_then(5)
        self.tower_pool = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1), nn.Conv2d(in_ch, b, 1, bias=False))
        self.shortcut = nn.Identity() if in_ch == out_ch else nn.Conv2d(in_ch, out_ch, 1, bias=False)
        self.bn = nn.BatchNorm2d(out_ch)
        self.act = nn.LeakyReLU(negative_slope, inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        towers = torch.cat([self.tower1(x), self.tower3(x), self.tower5(x), self.tower_pool(x)], dim=1)
        return self.act(self.bn(towers + self.shortcut(x)))
