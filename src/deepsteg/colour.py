"""Differentiable colour-space conversions (NCHW or CHW float tensors in [0, 1]).

YCbCr here is ITU-R BT.601 *full range*, the JPEG/JFIF convention: ``Y = 0.299 R + 0.587 G + 0.114 B`` (the same
luma as :func:`deepsteg.io.to_grey`), and the chroma channels centred on 128/255, so that ``255 · rgb_to_ycbcr(x)``
is exactly the JFIF formula on 8-bit values. Used by ISGAN (Zhang et al., §3.1), which hides in Y only.

Both directions are written with the algebraic form ``Cb = off + (B − Y) / (2 (1 − Kb))`` rather than a rounded
3×3 matrix, so :func:`ycbcr_to_rgb` is the exact inverse of :func:`rgb_to_ycbcr` up to float error (~1e-7), and
both are plain element-wise arithmetic: autocast never lowers them to bf16.
"""

from __future__ import annotations

import torch
from torch import Tensor

#: BT.601 luma weights (Kr, Kb; Kg = 1 − Kr − Kb).
KR, KB = 0.299, 0.114
KG = 1.0 - KR - KB
#: Chroma offset of full-range YCbCr on a [0, 1] scale (128 of 255, as JPEG).
CHROMA_OFFSET = 128.0 / 255.0


def _split(x: Tensor, what: str) -> tuple[Tensor, Tensor, Tensor]:
    if x.dim() not in (3, 4) or x.shape[-3] != 3:
        raise ValueError(f"{what} must be 3×H×W or N×3×H×W, got shape {tuple(x.shape)}")
    a, b, c = x.unbind(-3)
    return a, b, c


def rgb_to_ycbcr(x: Tensor) -> Tensor:
    """RGB → YCbCr (BT.601 full range, JPEG), channel order Y, Cb, Cr."""
    r, g, b = _split(x, "rgb")
    y = KR * r + KG * g + KB * b
    cb = CHROMA_OFFSET + (b - y) / (2.0 * (1.0 - KB))
    cr = CHROMA_OFFSET + (r - y) / (2.0 * (1.0 - KR))
    return torch.stack([y, cb, cr], dim=-3)


def ycbcr_to_rgb(x: Tensor) -> Tensor:
    """YCbCr (BT.601 full range, JPEG; order Y, Cb, Cr) → RGB. Not clamped: out-of-gamut values pass through."""
    y, cb, cr = _split(x, "ycbcr")
    r = y + 2.0 * (1.0 - KR) * (cr - CHROMA_OFFSET)
    b = y + 2.0 * (1.0 - KB) * (cb - CHROMA_OFFSET)
    g = (y - KR * r - KB * b) / KG
    return torch.stack([r, g, b], dim=-3)
