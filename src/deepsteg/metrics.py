"""Image-quality and payload metrics used by the papers, on NCHW float tensors in [0, 1].

PSNR uses peak 1.0 on [0, 1] values, which is peak 255 on the 8-bit values when the inputs are quantised
(:func:`deepsteg.io.quantize`). SSIM and MS-SSIM come from ``pytorch-msssim`` (Gaussian window 11, σ 1.5, the
constants of Wang et al.), not from hand-written code. Every function returns one value per image.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pytorch_msssim import ms_ssim as _ms_ssim
from pytorch_msssim import ssim as _ssim
from pytorch_msssim.ssim import _fspecial_gauss_1d
from pytorch_msssim.ssim import _ssim as _ssim_kernel
from torch import Tensor

_MS_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def _nchw(x: Tensor) -> Tensor:
    if not x.is_floating_point():  # uint8 images would be scored against a peak of 1.0: silently wrong figures
        raise TypeError(f"metrics take float images in [0, 1], not {x.dtype} (divide 8-bit values by 255)")
    return x.unsqueeze(0) if x.dim() == 3 else x


def mse(a: Tensor, b: Tensor) -> Tensor:
    """Mean squared error per image, accumulated in float64 (without float64 copies of large images)."""
    a, b = _nchw(a), _nchw(b)
    if a.dtype == torch.float64 or b.dtype == torch.float64:
        d = a.double() - b.double()
    else:
        d = a.float() - b.float()
    return d.square_().flatten(1).mean(1, dtype=torch.float64)


def psnr(a: Tensor, b: Tensor) -> Tensor:
    """Peak signal-to-noise ratio in dB per image (peak 1.0 ≡ 255 on 8-bit values); ``inf`` if identical."""
    return 10.0 * torch.log10(1.0 / mse(a, b))


def ssim(a: Tensor, b: Tensor) -> Tensor:
    """Structural similarity per image (mean over channels), as scikit-image with ``gaussian_weights=True``."""
    return _ssim(_nchw(a).double(), _nchw(b).double(), data_range=1.0, size_average=False).float()


def ms_ssim(a: Tensor, b: Tensor) -> Tensor:
    """Multi-scale SSIM per image (Wang et al. 2003, the standard 5 scales and weights).

    ``pytorch-msssim`` refuses images of 160 px or less; for those we run the same per-scale SSIM kernel of that
    library over as many scales as fit (weights renormalised), so small crops still get a comparable figure.
    """
    a, b = _nchw(a).double(), _nchw(b).double()
    side = min(a.shape[-2:])
    if side > 160:
        return _ms_ssim(a, b, data_range=1.0, size_average=False).float()
    levels = 5
    while levels > 1 and side < 11 * 2 ** (levels - 1):
        levels -= 1
    w = torch.tensor(_MS_WEIGHTS[:levels], dtype=a.dtype, device=a.device)
    w = w / w.sum()
    win = _fspecial_gauss_1d(11, 1.5).to(a).repeat([a.shape[1]] + [1] * 3)
    mcs = []
    for i in range(levels):
        ssim_c, cs = _ssim_kernel(a, b, data_range=1.0, win=win, size_average=False)
        if i < levels - 1:
            mcs.append(torch.relu(cs))
            pad = [s % 2 for s in a.shape[2:]]
            a, b = F.avg_pool2d(a, 2, padding=pad), F.avg_pool2d(b, 2, padding=pad)
    stack = torch.stack([*mcs, torch.relu(ssim_c)], dim=0)
    return torch.prod(stack ** w.view(-1, 1, 1), dim=0).mean(1).float()


def decoded_rate(hidden: Tensor, decoded: Tensor) -> Tensor:
    """StegNet eq. 1: 1 − mean |H − D| over pixels and channels (values in [0, 1])."""
    return 1.0 - (_nchw(hidden).double() - _nchw(decoded).double()).abs().flatten(1).mean(1)


def payload_capacity(hidden: Tensor, decoded: Tensor) -> Tensor:
    """StegNet eq. 2: decoded rate × 8 bits × channels, in bits per pixel (24 bpp at most for RGB)."""
    return decoded_rate(hidden, decoded) * 8 * _nchw(hidden).shape[1]


def stegopnet_payload_capacity(secret: Tensor, revealed: Tensor) -> Tensor:
    """StegoPNet eq. 12: (1 − Σ|S − S'| / (N·M)) × 8 × 3 bpp, with |·| averaged over the colour channels.

    Numerically the same as StegNet's eq. 2 for RGB; both are kept so tables can cite either paper.
    """
    return payload_capacity(secret, revealed)


def cover_changing_rate(cover: Tensor, stego: Tensor) -> Tensor:
    """StegNet eq. 3: mean |C − E| over pixels and channels, as a fraction (0.0076 = 0.76 %)."""
    return (_nchw(cover).double() - _nchw(stego).double()).abs().flatten(1).mean(1)


def bit_accuracy(bits: Tensor, predicted: Tensor, threshold: float = 0.5) -> Tensor:
    """Fraction of bits recovered per item; ``predicted`` may be probabilities or hard bits."""
    b = bits.reshape(bits.shape[0], -1) > threshold
    p = predicted.reshape(predicted.shape[0], -1) > threshold
    return (b == p).double().mean(1)
