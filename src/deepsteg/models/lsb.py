"""Classical k-bit LSB replacement — the baseline StegNet compares with (Wu, Yang & Li, PCM 2018, §1 and §5,
"3-bit LSB"; the method itself predates any paper). No parameters and no training.

Per channel, on 8-bit values: the secret's top ``bits`` bits replace the cover's low ``bits`` bits::

    stego    = (cover & ~(2^bits − 1)) | (secret >> (8 − bits))
    revealed = (stego & (2^bits − 1)) << (8 − bits)   [+ 2^(7 − bits) with midpoint=True]

With ``midpoint=True`` (default) the revealed value sits in the middle of the interval of secrets that share those
top bits, instead of at its bottom, so the revealed image is unbiased (for bits=3: +16, error at most ±16 instead
of 0…31). ``midpoint=False`` reveals exactly the top ``bits`` bits.

The interface is float [0, 1]; inputs are rounded (never truncated) to 8 bits, as :func:`deepsteg.io.to_uint8`,
the bit operations run on integers, and outputs are ``k/255`` floats, so the stego is already on the 8-bit grid
(``quantize(stego) == stego``) and survives a PNG round trip exactly.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from torch import Tensor, nn

from deepsteg.errors import ModelError
from deepsteg.io import to_uint8
from deepsteg.models.base import ImageHider, StepContext


@dataclass
class LsbConfig:
    """How many low bits of each cover channel carry the secret's top bits, and how to reveal them."""

    bits: int = 3
    midpoint: bool = True


class Lsb(ImageHider):
    """k-bit LSB replacement of one colour secret in one colour cover (exact, per pixel, no weights)."""

    num_secrets = 1
    secret_channels = 3
    size_multiple = 1
    min_size = 16  # not a limit of the method; the same floor as the other models, for a consistent CLI
    refinable = False  # bit operations: no gradient to refine a stego with
    tile_margin = 0  # per-pixel: tiles without context are exact

    def __init__(self, config: LsbConfig | None = None) -> None:
        super().__init__(config or LsbConfig())
        if not 1 <= self.config.bits <= 7:
            raise ValueError("bits must be between 1 and 7")

    @property
    def _low_mask(self) -> int:
        return (1 << self.config.bits) - 1

    def _hide(self, cover: Tensor, secrets: Sequence[Tensor]) -> Tensor:
        c, s = to_uint8(cover), to_uint8(secrets[0])
        stego = (c & (0xFF ^ self._low_mask)) | (s >> (8 - self.config.bits))
        return stego.to(cover.dtype) / 255.0

    def _reveal(self, stego: Tensor) -> list[Tensor]:
        bits = self.config.bits
        top = (to_uint8(stego) & self._low_mask) << (8 - bits)
        if self.config.midpoint:
            top = top + (1 << (7 - bits))  # ≤ 255: the low 8 − bits bits of ``top`` are zero before this
        return [top.to(stego.dtype) / 255.0]

    def training_losses(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        raise ModelError(f"{self.model_name or 'lsb'} needs no training")

    def training_step(self, batch: dict[str, Tensor], ctx: StepContext) -> dict[str, float]:
        raise ModelError(f"{self.model_name or 'lsb'} needs no training")

    def optimizer_groups(self, stage: str) -> dict[str, Iterator[nn.Parameter]]:
        # Refuse here too: the trainer builds optimisers before the first step, and an empty parameter list
        # would otherwise fail inside torch.optim with a less helpful message.
        raise ModelError(f"{self.model_name or 'lsb'} needs no training")


def register(add) -> None:  # noqa: ANN001 - deepsteg.zoo.register_model
    """Registry entries (called by :mod:`deepsteg.zoo.registry`); ``lsb1``… are one ``LsbConfig(bits=k)`` away."""
    add("lsb3", Lsb, LsbConfig(), "classical: the secret's top 3 bits in the cover's low 3 bits (no weights)",
        paper="classical 3-bit LSB replacement (the baseline of StegNet §5)", weightless=True,
        tags=("image", "classical"))

