"""XuNet (Xu, Wu & Shi, "Structural Design of Convolutional Neural Networks for Steganalysis", IEEE SPL 2016),
for any number of input channels.

``sealwatch.xunet.XuNet`` is the same network for grey images only (one input channel, its KV filter held outside
the module's state); colour stegos need the filter per channel, and a GAN critic needs a scalar score, so the
network is written here: fixed KV high-pass filter per channel → 5×5 conv 8 + ABS + BN + TanH → 5×5 conv 16 + BN
+ TanH → 1×1 convs 32, 64, 128 + BN + ReLU, average pooling 5×5/2 after each group (global after the last) → FC.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

KV = torch.tensor([[-1, 2, -2, 2, -1],
                   [2, -6, 8, -6, 2],
                   [-2, 8, -12, 8, -2],
                   [2, -6, 8, -6, 2],
                   [-1, 2, -2, 2, -1]], dtype=torch.float32) / 12.0


class XuNet(nn.Module):
    """N×C×H×W images in [0, 1] → N×``outputs`` scores (logits); any H, W ≥ 16."""

    def __init__(self, in_channels: int = 3, outputs: int = 2) -> None:
        super().__init__()
        self.in_channels = in_channels
        # A constant of the architecture, not a parameter (and not saved).
        self.register_buffer("kv", KV.repeat(in_channels, 1, 1, 1), persistent=False)
        self.conv1 = nn.Conv2d(in_channels, 8, 5, padding=2, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 16, 5, padding=2, bias=False)
        self.bn2 = nn.BatchNorm2d(16)
        self.groups = nn.ModuleList(
            nn.Sequential(nn.Conv2d(a, b, 1, bias=False), nn.BatchNorm2d(b), nn.ReLU(inplace=True))
            for a, b in ((16, 32), (32, 64), (64, 128)))
        self.pool = nn.AvgPool2d(5, stride=2, padding=2, count_include_pad=False)
        self.fc = nn.Linear(128, outputs)

    def forward(self, x: Tensor) -> Tensor:
        # The high-pass front runs in fp32 even under bf16 autocast: bf16 would erase ±1/255 changes.
        with torch.autocast(x.device.type, enabled=False):
            x = F.conv2d(x.float() * 255.0, self.kv, padding=2, groups=self.in_channels)
            x = self.conv1(x).abs()
        x = self.pool(torch.tanh(self.bn1(x)))
        x = self.pool(torch.tanh(self.bn2(self.conv2(x))))
        for i, g in enumerate(self.groups):
            x = g(x)
            x = x.mean((-2, -1)) if i == len(self.groups) - 1 else self.pool(x)
        return self.fc(x)
