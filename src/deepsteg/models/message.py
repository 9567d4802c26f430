"""The interface of message models (bits in an image, not images in an image), and classical LSB embedding.

A :class:`MessageModel` carries ``capacity_bits(h, w)`` raw bits in an H×W cover; :mod:`deepsteg.payload` turns
them into an exact byte container (error correction sized from ``error_rate``, encryption, integrity). A learned
embedder (SFTN) implements the same three methods and reports its measured error rate after PNG rounding.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn

from deepsteg.errors import ModelError
from deepsteg.io import to_uint8


class MessageModel(nn.Module):
    """Base class for models that hide a bit string in a cover image (NCHW float in [0, 1])."""

    #: Raw bit error rate measured after 8-bit PNG rounding; sizes the payload's error correction.
    error_rate: float = 0.0
    #: Smallest side the model accepts.
    min_size: int = 1
    #: Registry name, set by :func:`deepsteg.create_model`.
    model_name: str = ""
    #: Message planes per pixel (the trainer draws C×H×W bits per crop for learned models).
    message_channels: int = 3
    #: What the trainer needs of every model: message models hide no images and take any size.
    num_secrets: int = 0
    size_multiple: int = 1

    def config_dict(self) -> dict:
        """The configuration (a dataclass in ``self.config``) as plain JSON-able data, stored beside the weights."""
        return asdict(self.config)

    def capacity_bits(self, h: int, w: int) -> int:
        """Raw bits one H×W cover carries."""
        raise NotImplementedError

    def embed(self, cover: Tensor, bits: Tensor) -> Tensor:
        """Hide ``bits`` (N×L, values 0/1, L = capacity_bits) in ``cover`` (N×3×H×W); returns the float stego."""
        raise NotImplementedError

    def extract(self, stego: Tensor) -> Tensor:
        """N×L bit probabilities (P[bit = 1]) from a stego, ideally the 8-bit one read back from its PNG."""
        raise NotImplementedError

    def _check_cover(self, x: Tensor, what: str) -> Tensor:
        if not torch.is_tensor(x) or not x.is_floating_point() or x.dim() != 4 or x.shape[1] != 3:
            shape = tuple(x.shape) if torch.is_tensor(x) else type(x).__name__
            raise ModelError(f"{what} must be an N×3×H×W float tensor in [0, 1], got {shape}")
        if min(x.shape[-2:]) < self.min_size:
            raise ModelError(f"{what} is {x.shape[-1]}×{x.shape[-2]}; this model needs at least "
                             f"{self.min_size}×{self.min_size}")
        return x


@dataclass
class LsbMessageConfig:
    """Low bits per channel value that carry the message."""

    bits: int = 1


class LsbMessage(MessageModel):
    """The ``bits`` low bits of every channel value carry message bits (exact after PNG rounding).

    Bit order: message bit ``l = ((c · H + y) · W + x) · bits + j`` is bit ``j`` (0 = least significant) of channel
    ``c`` at pixel (y, x). The payload container scatters its bits with a keyed permutation on top of this.
    """

    error_rate = 0.0

    def __init__(self, bits: int | LsbMessageConfig = 1) -> None:
        super().__init__()
        self.config = bits if isinstance(bits, LsbMessageConfig) else LsbMessageConfig(bits)
        bits = self.config.bits
        if not 1 <= bits <= 8:
            raise ModelError("LsbMessage bits must be between 1 and 8")
        self.bits = bits

    def capacity_bits(self, h: int, w: int) -> int:
        return 3 * h * w * self.bits

    def _shifts(self, device: torch.device) -> Tensor:
        return torch.arange(self.bits, device=device, dtype=torch.uint8)

    def embed(self, cover: Tensor, bits: Tensor) -> Tensor:
        cover = self._check_cover(cover, "cover")
        n, _, h, w = cover.shape
        if bits.dim() != 2 or bits.shape[0] != n or bits.shape[1] != self.capacity_bits(h, w):
            raise ModelError(f"bits must be {n}×{self.capacity_bits(h, w)} for this cover, got {tuple(bits.shape)}")
        b = (bits.to(cover.device) > 0.5).to(torch.uint8).view(n, 3, h, w, self.bits)
        low = (b << self._shifts(cover.device)).sum(-1, dtype=torch.uint8)
        keep = 0xFF ^ ((1 << self.bits) - 1)
        return ((to_uint8(cover) & keep) | low).to(cover.dtype) / 255.0

    def extract(self, stego: Tensor) -> Tensor:
        stego = self._check_cover(stego, "stego")
        s = to_uint8(stego).unsqueeze(-1)
        return ((s >> self._shifts(stego.device)) & 1).reshape(stego.shape[0], -1).to(stego.dtype)


def register(add) -> None:  # noqa: ANN001 - deepsteg.zoo.register_model
    """The classical message baseline (weightless), so files can be hidden and benchmarks compared without a net."""
    add("lsb-bits", LsbMessage, LsbMessageConfig(bits=1),
        "classical: message bits in the lowest bit of every channel value (LSB replacement, 3 bpp; no weights)",
        paper="classical LSB replacement", weightless=True, tags=("message", "classical"))
