"""Separable Convolution with Residual block ("SCR") — Wu, Yang & Li, "Image-into-Image Steganography Using Deep
Convolutional Network" (StegNet), §4.1–4.2 and the SCR figure.

The figure reads, top to bottom: ``x`` → per-channel 3×3 convolution ("1, 3x3, 1" per path) → concatenation →
1×1 convolution → batch normalisation → ELU → ``⊕ x``. So the block is ``x + ELU(BN(PW(DW(x))))``:

* no activation or normalisation between the depthwise and the pointwise convolution (Xception's separable
  convolution, which §4.2 cites);
* the residual is added *after* the ELU, and nothing follows the addition.

The figure is silent on biases and on padding. We use no bias in either convolution: a depthwise bias passes the
pointwise convolution as a per-channel constant and the pointwise bias is a per-channel constant too, and the
batch norm right after removes both. Padding is 1 (zeros), so the spatial size is kept, as StegNet needs (§4.3:
no strides, no pooling). The figure draws a channel change in the pointwise step (its example goes 64 → 128);
StegNet's text uses a uniform width, so this block keeps ``channels`` in and out and the identity skip needs no
projection.
"""

from __future__ import annotations

from torch import Tensor, nn


class SCRBlock(nn.Module):
    """``x + ELU(BN(pointwise(depthwise3×3(x))))`` on ``channels`` feature maps; stride 1, size kept."""

    def __init__(self, channels: int, kernel: int = 3) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(channels, channels, kernel, 1, kernel // 2, groups=channels, bias=False)
        self.pointwise = nn.Conv2d(channels, channels, 1, bias=False)
        self.bn = nn.BatchNorm2d(channels)
        self.act = nn.ELU()  # not in place: its input is the BN output, and ELU(0) = 0 keeps a zeroed branch at 0

    def branch(self, x: Tensor) -> Tensor:
        """The residual branch alone (what the block adds to its input)."""
        return self.act(self.bn(self.pointwise(self.depthwise(x))))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.branch(x)
