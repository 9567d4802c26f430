"""``deepsteg evaluate``: the paper-style quality table for any registered model on any folder.

Images are sorted by file name; image ``i`` is the cover and image ``(i + ⌊n/2⌋) mod n`` the secret (for models
with ``k`` secrets, ``(i + j·⌊n/(k+1)⌋) mod n``, j = 1…k); both are centre-cropped to ``size``. Each stego is
written to a real 8-bit PNG file and read back before the reveal, so the unprefixed figures are what a receiver
of the file gets; ``float_*`` figures use the unrounded stego and are labelled as such.
"""

from __future__ import annotations

import math
import os
import shutil
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
from deepsteg.io import list_images, notice, quantize, read_image, readable_images, write_png
from deepsteg.models.base import ImageHider
from deepsteg.models.message import MessageModel
from deepsteg.refine import check_cover_psnr, check_refinable, refine
#: The passphrase keyed models are validated and evaluated with (any fixed one would do), and another one.
EVAL_KEY = "deepsteg evaluation key"
WRONG_KEY = "not the passphrase"


@dataclass
class EvalResult:
    """Per-image rows and their means; ``summary()`` gives the JSON keys of ``evaluate --json``."""

    model: str
    size: int
    rows: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    refine: int = 0  # refinement steps per stego (0: the network alone)
    cover_psnr_budget: float | None = None  # refinement's cover PSNR floor (None: the network's own distortion)
    files: list[Path] = field(default_factory=list)  # the readable images, in pairing order (rows use the first n)

    def means(self) -> dict[str, float]:
        keys = [k for k in self.rows[0] if isinstance(self.rows[0][k], float)] if self.rows else []
        return {k: float(sum(r[k] for r in self.rows) / len(self.rows)) for k in keys}

    def summary(self) -> dict[str, Any]:
        m = self.means()
        order = ["cover_psnr", "cover_ssim", "secret_psnr", "secret_ssim", "float_cover_psnr", "float_secret_psnr",
                 "bit_accuracy", "float_bit_accuracy", "payload_bytes"]
        out: dict[str, Any] = {"model": self.model, "n": len(self.rows)}
        out.update({k: m[k] for k in order if k in m})
        out.update({k: v for k, v in m.items() if k not in out})
        out["size"] = self.size
        if self.refine:
            out["refine"] = self.refine
        if self.cover_psnr_budget is not None:
            out["refine_cover_psnr"] = self.cover_psnr_budget
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
    keep_dir: str | os.PathLike[str] | None = None, refine_steps: int = 0, cover_psnr: float | None = None,
) -> EvalResult:
    """Run the evaluation protocol above; returns per-image rows (after a real PNG round trip).

    ``keep_dir``: also keep each 8-bit stego there as ``{i}.png`` (``deepsteg bench`` runs its detectors on them).
    ``refine_steps``: refine each stego for the revealer first (:func:`deepsteg.refine.refine`); the stego is then
    already 8-bit, so the *float* figures equal the rounded ones. ``cover_psnr``: refine within that cover PSNR
    instead of the network's own distortion (needs ``refine_steps``).
    """
    check_refinable(model, refine_steps)
    check_cover_psnr(cover_psnr, refine_steps)
    folders = [folders] if isinstance(folders, (str, os.PathLike)) else list(folders)
    files = readable_images(list_images(*folders))  # a stray non-image is skipped (with a notice), not fatal later
    n = len(files)
    if n < 2:
        raise ImageReadError(f"evaluate needs at least 2 readable images in {', '.join(map(str, folders))}; found {n}")
    if isinstance(model, MessageModel):
        return _evaluate_messages(model, files, size, limit, progress, device, keep_dir)
    k = model.num_secrets
    if n < k + 1:  # with fewer, pair_indices would give a cover itself (or one image twice) as a secret
        raise ImageReadError(f"{model.model_name} hides {k} images: evaluate needs at least {k + 1} images (a cover "
                             f"and {k} different secrets) in {', '.join(map(str, folders))}; found {n}")
    model.eval()
    result = EvalResult(model.model_name, size, refine=refine_steps, cover_psnr_budget=cover_psnr, files=files)
    count = n if limit is None else min(n, limit)
    it = range(count)
    if progress:
        from tqdm import tqdm

        it = tqdm(it, desc=f"evaluate {model.model_name}", unit="img")
    t0 = time.perf_counter()
    crops: dict[int, torch.Tensor] = {}
    last_use: dict[int, int] = {}  # each crop is dropped after its last use as a cover or a secret
    for i in range(count):
        for j in (i, *pair_indices(i, n, k)):
            last_use[j] = i

    def crop(j: int) -> torch.Tensor:
        if j not in crops:
            img = read_image(files[j])
            if min(img.shape[-2:]) < size:
                notice(f"{files[j].name}: {img.shape[-1]}×{img.shape[-2]} is smaller than --size {size}; upscaled")
            crops[j] = centre_crop(img, size).clone()  # a copy: a view would keep the whole decoded photo alive
        return crops[j]

    with tempfile.TemporaryDirectory(prefix="deepsteg-eval-") as tmp:
        for i in it:
            cover = crop(i)[None].to(device)
            secrets = [model.as_secret(crop(j))[None].to(device) for j in pair_indices(i, n, k)]
            key = EVAL_KEY if model.keyed else None
            stego = model.hide(cover, *secrets, key=key)
            if refine_steps:
                stego, _ = refine(model, cover, secrets, stego, refine_steps, key=key, cover_psnr=cover_psnr)
            path = write_png(stego[0], Path(tmp) / f"{i}.png")
            stego_file = read_image(path)[None].to(device)  # the 8-bit stego a receiver gets
            revealed = [quantize(r) for r in model.reveal(stego_file, key=key)]
            revealed_float = model.reveal(stego, key=key)
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
            if model.keyed:  # what someone with another passphrase gets from the same file
                wrong = [quantize(r) for r in model.reveal(stego_file, key=WRONG_KEY)]
                row["wrong_key_secret_psnr"] = mean(metrics.psnr, wrong)
            result.rows.append(row)
            _keep(path, keep_dir, i)
            for j in [j for j in crops if last_use[j] <= i]:
                del crops[j]
    result.seconds = time.perf_counter() - t0
    return result


def _keep(path: Path, keep_dir: str | os.PathLike[str] | None, i: int) -> None:
    if keep_dir is None:
        os.unlink(path)
    else:
        shutil.move(path, Path(keep_dir) / f"{i}.png")  # a rename, or a copy when TMPDIR is another filesystem


def _evaluate_messages(model: MessageModel, files: list[Path], size: int, limit: int | None, progress: bool,
                       device: str | torch.device, keep_dir: str | os.PathLike[str] | None = None) -> EvalResult:
    """Message models: image ``i`` carries Bernoulli(0.5) bits drawn from seed ``i`` at full capacity, saved as a
    real PNG and read back (``bit_accuracy``; ``float_bit_accuracy`` on the unrounded stego). Then a random
    payload of ``payload_bytes`` (the most the cover holds at the default error correction) goes through
    :func:`deepsteg.payload.hide_bytes`, a PNG file and :func:`reveal_bytes`: ``payload_exact`` is 1 when every
    byte came back."""
    from deepsteg.payload import PayloadError, capacity_bytes, hide_bytes, reveal_bytes

    model.eval()
    result = EvalResult(model.model_name, size, files=files)
    count = len(files) if limit is None else min(len(files), limit)
    it = range(count)
    if progress:
        from tqdm import tqdm

        it = tqdm(it, desc=f"evaluate {model.model_name}", unit="img")
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="deepsteg-eval-") as tmp:
        for i in it:
            img = read_image(files[i])
            if min(img.shape[-2:]) < size:
                notice(f"{files[i].name}: {img.shape[-1]}×{img.shape[-2]} is smaller than --size {size}; upscaled")
            cover = centre_crop(img, size)[None].to(device)
            n_bits = model.capacity_bits(size, size)
            g = torch.Generator().manual_seed(i)
            bits = torch.randint(0, 2, (1, n_bits), generator=g).float().to(device)
            stego = model.embed(cover, bits)
            path = write_png(stego[0], Path(tmp) / f"{i}.png")
            stego_file = read_image(path)[None].to(device)

            def acc(x: torch.Tensor) -> float:
                return float(((model.extract(x) > 0.5) == (bits > 0.5)).float().mean())

            n_bytes = capacity_bytes(model, size, size)
            data = torch.randint(0, 256, (n_bytes,), generator=g, dtype=torch.uint8).numpy().tobytes()
            try:  # a cover the model cannot carry a full load in (hide_bytes verifies) is a miss, not an abort
                path2 = write_png(hide_bytes(model, cover[0], data, compress=False), Path(tmp) / f"{i}-bytes.png")
                exact = float(reveal_bytes(model, read_image(path2).to(device)) == data)
                os.unlink(path2)
            except PayloadError as e:
                notice(f"{files[i].name}: a full load of {n_bytes} bytes was not recovered exactly ({e})")
                exact = 0.0
            result.rows.append({
                "cover": files[i].name,
                "cover_psnr": _finite(metrics.psnr(stego_file, cover)),
                "cover_ssim": float(metrics.ssim(stego_file, cover)),
                "cover_ms_ssim": float(metrics.ms_ssim(stego_file, cover)),
                "float_cover_psnr": _finite(metrics.psnr(stego, cover)),
                "bit_accuracy": acc(stego_file),
                "float_bit_accuracy": acc(stego),
                "payload_bytes": float(n_bytes),
                "payload_exact": exact,
                "payload_bpp": n_bits / (size * size),
                "cover_changing_rate": float(metrics.cover_changing_rate(cover, stego_file)),
            })
            _keep(path, keep_dir, i)
    result.seconds = time.perf_counter() - t0
    return result
