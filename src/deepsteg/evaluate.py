"""``deepsteg evaluate``: the paper-style quality table for any registered model on any folder.

Images are sorted by file name; image ``i`` is the cover and image ``(i + ⌊n/2⌋) mod n`` the secret (for models
with ``k`` secrets, ``(i + j·⌊n/(k+1)⌋) mod n``, j = 1…k); both are centre-cropped to ``size``. Each stego is
written to a real 8-bit PNG file and read back before the reveal, so the unprefixed figures are what a receiver
of the file gets; ``float_*`` figures use the unrounded stego and are labelled as such.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from deepsteg import metrics
from deepsteg.data import centre_crop, pair_indices
from deepsteg.errors import ImageReadError
from deepsteg.io import list_images, notice, quantize, read_image, write_png
from deepsteg.models.base import ImageHider


@dataclass
class EvalResult:
    """Per-image rows and their means; ``summary()`` gives the JSON keys of ``evaluate --json``."""

    model: str
    size: int
    rows: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def means(self) -> dict[str, float]:
        keys = [k for k in self.rows[0] if isinstance(self.rows[0][k], float)] if self.rows else []
        return {k: float(sum(r[k] for r in self.rows) / len(self.rows)) for k in keys}

    def summary(self) -> dict[str, Any]:
        m = self.means()
        order = ["cover_psnr", "cover_ssim", "secret_psnr", "secret_ssim", "float_cover_psnr", "float_secret_psnr"]
        out: dict[str, Any] = {"model": self.model, "n": len(self.rows)}
        out.update({k: m[k] for k in order if k in m})
        out.update({k: v for k, v in m.items() if k not in out})
        out["size"] = self.size
        out["seconds"] = round(self.seconds, 3)
        out["images"] = self.rows
        return out


def _finite(x: torch.Tensor) -> float:
    v = float(x)
    return 100.0 if math.isinf(v) else v  # identical images: cap PSNR so means stay finite


@torch.inference_mode()
def evaluate_folder(
    model: ImageHider, folders: Sequence[str | os.PathLike[str]] | str | os.PathLike[str], size: int = 256,
    limit: int | None = None, progress: bool = False, device: str | torch.device = "cpu",
) -> EvalResult:
    """Run the evaluation protocol above; returns per-image rows (after a real PNG round trip)."""
    folders = [folders] if isinstance(folders, (str, os.PathLike)) else list(folders)
    files = list_images(*folders)
    n = len(files)
    if n < 2:
        raise ImageReadError(f"evaluate needs at least 2 images in {', '.join(map(str, folders))}; found {n}")
    k = model.num_secrets
    model.eval()
    result = EvalResult(model.model_name, size)
    count = n if limit is None else min(n, limit)
    it = range(count)
    if progress:
        from tqdm import tqdm

        it = tqdm(it, desc=f"evaluate {model.model_name}", unit="img")
    t0 = time.perf_counter()
    crops: dict[int, torch.Tensor] = {}

    def crop(j: int) -> torch.Tensor:
        if j not in crops:
            img = read_image(files[j])
            if min(img.shape[-2:]) < size:
                notice(f"{files[j].name}: {img.shape[-1]}×{img.shape[-2]} is smaller than --size {size}; upscaled")
            crops[j] = centre_crop(img, size)
        return crops[j]

    with tempfile.TemporaryDirectory(prefix="deepsteg-eval-") as tmp:
        for i in it:
            cover = crop(i)[None].to(device)
            secrets = [model.as_secret(crop(j))[None].to(device) for j in pair_indices(i, n, k)]
            stego = model.hide(cover, *secrets)
            path = write_png(stego[0], Path(tmp) / f"{i}.png")
            stego_file = read_image(path)[None].to(device)  # the 8-bit stego a receiver gets
            revealed = [quantize(r) for r in model.reveal(stego_file)]
            revealed_float = model.reveal(stego)
            cover_q = stego_file

            def mean(fn, outs):  # noqa: ANN001, ANN202 - local helper
                return sum(_finite(fn(o, s)) for o, s in zip(outs, secrets)) / k

            row: dict[str, Any] = {
                "cover": files[i].name,
                "secrets": [files[j].name for j in pair_indices(i, n, k)],
                "cover_psnr": _finite(metrics.psnr(cover_q, cover)),
                "cover_ssim": float(metrics.ssim(cover_q, cover)),
                "cover_ms_ssim": float(metrics.ms_ssim(cover_q, cover)),
                "secret_psnr": mean(metrics.psnr, revealed),
                "secret_ssim": mean(metrics.ssim, revealed),
                "secret_ms_ssim": mean(metrics.ms_ssim, revealed),
                "float_cover_psnr": _finite(metrics.psnr(stego, cover)),
                "float_secret_psnr": mean(metrics.psnr, revealed_float),
                "cover_changing_rate": float(metrics.cover_changing_rate(cover, cover_q)),
                "decoded_rate": mean(metrics.decoded_rate, revealed),
                "payload_bpp": k * mean(metrics.payload_capacity, revealed),  # bits carried per cover pixel
            }
            result.rows.append(row)
            os.unlink(path)
    result.seconds = time.perf_counter() - t0
    return result
