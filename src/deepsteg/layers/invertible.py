"""Invertible blocks for ISN (Lu et al., CVPR 2021, eq. 4–5), with 5-layer dense sub-networks.

Forward (eq. 4), host branch ``b1`` (3 channels) and hidden branch ``b2`` (3k channels)::

    b1' = b1 + φ(b2)
    b2' = b2 ⊙ exp(s(ρ(b1'))) + η(b1')          s(r) = clamp · (2 sigmoid(r) − 1) ∈ (−clamp, clamp)

Backward (eq. 5)::

    b2 = (b2' − η(b1')) ⊙ exp(−s(ρ(b1')))
    b1 = b1' − φ(b2)

The bounded exponent ``s`` (the paper leaves ρ "arbitrary") keeps the scale within e^±clamp, so a few bad steps
cannot blow activations up or make the inverse ill-conditioned. With ``cond_channels`` > 0 every sub-network also
sees a conditioning tensor (ISN's keyed mode: the passphrase's pattern); the block stays exactly invertible for a
given condition.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class DenseBlock5(nn.Module):
    """Five 3×3 convolutions, each seeing the input and all earlier outputs (DenseNet), LeakyReLU between; the last
    one starts small (``last_init`` × a Kaiming init): near the identity, as INNs start, but not exactly zero — with
    an exactly-zero last layer no gradient reaches ISN's φ until η has moved, and small CPU runs stall.

    At inference (no autograd) the growing concatenation is written into one preallocated buffer, layer by layer,
    instead of being rebuilt by ``torch.cat`` before every layer (``fused=True``): the same arithmetic without
    copying the features over and over (O(L) instead of O(L²) memory traffic). Training keeps ``torch.cat``, since
    autograd must keep every layer's input intact. ``fused=False`` is the textbook form, kept to measure the gain.
    """

    def __init__(self, cin: int, cout: int, growth: int = 32, fused: bool = True, last_init: float = 0.1) -> None:
        super().__init__()
        self.cin, self.growth, self.fused = cin, growth, fused
        self.convs = nn.ModuleList(nn.Conv2d(cin + i * growth, growth, 3, padding=1) for i in range(4))
        self.last = nn.Conv2d(cin + 4 * growth, cout, 3, padding=1)
        for conv in self.convs:
            nn.init.kaiming_normal_(conv.weight, a=0.2, nonlinearity="leaky_relu")
            conv.weight.data.mul_(0.1)
            nn.init.zeros_(conv.bias)
        nn.init.kaiming_normal_(self.last.weight, a=0.2, nonlinearity="leaky_relu")
        self.last.weight.data.mul_(last_init)
        nn.init.zeros_(self.last.bias)

    def forward(self, x: Tensor) -> Tensor:
        if not self.fused or torch.is_grad_enabled():
            feats = [x]
            for conv in self.convs:
                feats.append(F.leaky_relu(conv(torch.cat(feats, 1)), 0.2))
            return self.last(torch.cat(feats, 1))
        n, _, h, w = x.shape
        total = self.cin + 4 * self.growth
        fmt = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) and x.shape[1] > 1 \
            else torch.contiguous_format
        buf = torch.empty(n, total, h, w, device=x.device, dtype=x.dtype, memory_format=fmt)
        buf[:, :self.cin] = x
        c = self.cin
        for conv in self.convs:
            buf[:, c:c + self.growth] = F.leaky_relu(conv(buf[:, :c]), 0.2)
            c += self.growth
        return self.last(buf)


class InvBlock(nn.Module):
    """One invertible block of eq. 4–5: additive coupling on the host branch, enhanced affine on the hidden one."""

    def __init__(self, host: int = 3, hidden: int = 3, clamp: float = 2.0, cond_channels: int = 0,
                 growth: int = 32, fused: bool = True, last_init: float = 0.1) -> None:
        super().__init__()
        self.host, self.hidden, self.clamp, self.cond = host, hidden, clamp, cond_channels
        self.phi = DenseBlock5(hidden + cond_channels, host, growth, fused, last_init)
        self.rho = DenseBlock5(host + cond_channels, hidden, growth, fused, last_init)
        self.eta = DenseBlock5(host + cond_channels, hidden, growth, fused, last_init)

    def _in(self, x: Tensor, cond: Tensor | None) -> Tensor:
        return x if cond is None else torch.cat([x, cond], 1)

    def _scale(self, b1: Tensor, cond: Tensor | None) -> Tensor:
        return self.clamp * (2 * torch.sigmoid(self.rho(self._in(b1, cond))) - 1)

    def forward(self, x: Tensor, cond: Tensor | None = None, reverse: bool = False) -> Tensor:
        b1, b2 = x[:, :self.host], x[:, self.host:]
        if not reverse:
            b1 = b1 + self.phi(self._in(b2, cond))
            b2 = b2 * torch.exp(self._scale(b1, cond)) + self.eta(self._in(b1, cond))
        else:
            b2 = (b2 - self.eta(self._in(b1, cond))) * torch.exp(-self._scale(b1, cond))
            b1 = b1 - self.phi(self._in(b2, cond))
        return torch.cat([b1, b2], 1)
