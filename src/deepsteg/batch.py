"""Whole folders: ``deepsteg hide-batch`` and ``deepsteg reveal-batch``.

Files are decoded by a DataLoader (worker processes when ``workers > 0``), images of equal size are stacked into
batches, and each output is written atomically, so an interrupted run leaves only finished files; running the
same command again skips them (resumable). A file that cannot be read is reported and skipped; the rest go on.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from deepsteg import metrics
from deepsteg.errors import DeepstegError, ImageWriteError
from deepsteg.io import fit_to, list_images, quantize, read_image, write_png
from deepsteg.models.base import ImageHider
from deepsteg.refine import check_cover_psnr, check_refinable, refine


@dataclass
class BatchSummary:
    """What a folder run did; ``failed`` holds (file, reason)."""

    done: int = 0
    skipped: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    cover_psnr: list[float] = field(default_factory=list)
    secret_psnr: list[float] = field(default_factory=list)  # with refinement: the receiver's, per stego

    @property
    def peak_rss_mb(self) -> float:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB

    def line(self, verb: str) -> str:
        rate = self.done / self.seconds if self.seconds else 0.0
        s = (f"{verb}: {self.done} written, {self.skipped} already done (skipped), {len(self.failed)} failed; "
             f"{rate:.2f} img/s; peak RSS {self.peak_rss_mb:.0f} MB")
        if self.cover_psnr:
            s += f"; mean cover PSNR {sum(self.cover_psnr) / len(self.cover_psnr):.2f} dB after 8-bit rounding"
        if self.secret_psnr:
            s += f", revealed secret {sum(self.secret_psnr) / len(self.secret_psnr):.2f} dB (refined)"
        return s


def _size(p: Path) -> tuple[int, int]:
    try:
        with Image.open(p) as im:
            return im.size
    except Exception:
        return (0, 0)  # unreadable: its worker reports the real error


def _clean_stale_temps(out_dir: Path) -> None:
    """Remove temporary files of an earlier run that was killed mid-write (atomic writes leave only these):
    only deepsteg's own pattern, ``.NAME.png.XXXXXXXX.tmp`` (see :func:`deepsteg.io.atomic_write_bytes`)."""
    for p in out_dir.rglob(".*.png.*.tmp"):
        if p.is_file():
            p.unlink()


def _prepare(out: Path, *roots: Path) -> list[list[Path]]:
    """The images of each input folder (none may be empty), and the output folder made ready.

    An output folder at or inside an input folder is refused (a re-run would take earlier outputs as inputs);
    temporary files of a killed earlier run are removed.
    """
    o = out.resolve()
    for root in roots:
        r = root.resolve()
        if o == r or r in o.parents:
            raise ImageWriteError(f"{out}: the output folder must not be (inside) the input folder {root}")
    files = [list_images(root) for root in roots]
    for root, found in zip(roots, files):
        if not found:
            raise DeepstegError(f"{root}: no images")
    out.mkdir(parents=True, exist_ok=True)
    _clean_stale_temps(out)
    return files


class _Jobs(Dataset):
    """Item i decodes job i's inputs; errors travel back as strings so one bad file does not stop the run."""

    def __init__(self, jobs: Sequence[tuple[list[Path], list[Path]]], fit: str, min_size: int = 1) -> None:
        self.jobs, self.fit, self.min_size = jobs, fit, min_size

    def __len__(self) -> int:
        return len(self.jobs)

    def __getitem__(self, i: int) -> dict[str, Any]:
        inputs, _ = self.jobs[i]
        try:
            imgs = [read_image(p) for p in inputs]
            for p, x in zip(inputs, imgs):  # as `deepsteg hide`: tiny secrets are refused, not upscaled
                if min(x.shape[-2:]) < self.min_size:
                    raise DeepstegError(f"{p}: {x.shape[-1]}×{x.shape[-2]} pixels; the model needs at least "
                                        f"{self.min_size}×{self.min_size}")
            first, rest = imgs[0], imgs[1:]
            rest = [fit_to(x, tuple(first.shape[-2:]), self.fit, what=f"secret {p.name}")
                    for x, p in zip(rest, inputs[1:])]
            return {"i": i, "images": [first, *rest], "error": ""}
        except DeepstegError as e:
            return {"i": i, "images": [], "error": str(e)}


def _identity(x: Any) -> Any:
    return x


def _batches(loader: DataLoader, batch_size: int, max_pixels: int) -> Iterator[list[dict[str, Any]]]:
    """Group consecutive same-size items into batches (large, tiled images go alone)."""
    group: list[dict[str, Any]] = []
    for item in loader:
        if item["error"]:
            yield [item]
            continue
        shape = tuple(item["images"][0].shape)
        big = shape[-1] * shape[-2] > max_pixels
        if group and (big or len(group) >= batch_size or tuple(group[0]["images"][0].shape) != shape):
            yield group
            group = []
        group.append(item)
        if big:
            yield group
            group = []
    if group:
        yield group


def _run(model: ImageHider, jobs: list[tuple[list[Path], list[Path]]], step, batch_size: int,  # noqa: ANN001
         workers: int, fit: str, summary: BatchSummary, progress: bool) -> None:
    ds = _Jobs(jobs, fit, model.min_size)
    loader = DataLoader(ds, batch_size=None, num_workers=workers, collate_fn=_identity)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(jobs), unit="img", dynamic_ncols=True)
    t0 = time.perf_counter()
    try:
        for group in _batches(loader, batch_size, model.max_whole_pixels):
            if group[0]["error"]:
                summary.failed.append((str(jobs[group[0]["i"]][0][0]), group[0]["error"]))
            else:
                stacks = [torch.stack([g["images"][k] for g in group]) for k in range(len(group[0]["images"]))]
                try:
                    errors = step(stacks, [jobs[g["i"]][1] for g in group])
                except DeepstegError as e:  # the model refused the whole batch
                    errors = [str(e)] * len(group)
                for g, err in zip(group, errors):  # each file counts for itself: one failed write fails one
                    if err:
                        summary.failed.append((str(jobs[g["i"]][0][0]), err))
                    else:
                        summary.done += 1
            if bar is not None:
                bar.update(len(group))
    finally:
        if bar is not None:
            bar.close()
        summary.seconds += time.perf_counter() - t0


def _write(img: Tensor, out: Path) -> str:
    """Write one output; the error as one line instead of an exception, so the batch's other files go on."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        write_png(img, out)
    except DeepstegError as e:
        return str(e)
    except OSError as e:  # e.g. a file where a sub-folder of the output should be
        return f"{out}: cannot write ({e.strerror or e})"
    return ""


def _check_model(model: Any, key: str | None) -> None:
    """Refuse, before any folder is made, what the folder commands cannot run: message models (their payload is
    bytes, see ``hide --file``) and keyed models without their passphrase."""
    if not isinstance(model, ImageHider):
        name = getattr(model, "model_name", type(model).__name__)
        raise DeepstegError(f"{name} hides files and text, not images; hide-batch/reveal-batch take image models")
    if model.keyed and not key:
        raise DeepstegError(f"{model.model_name} is keyed: give the passphrase (--passphrase or "
                            "DEEPSTEG_PASSPHRASE)")
    if key and not model.keyed:
        raise DeepstegError(f"{model.model_name} hides images and takes no passphrase")


def _out_name(out_dir: Path, root: Path, p: Path, suffix: str = "") -> Path:
    rel = p.relative_to(root)
    return (out_dir / rel).with_name(rel.stem + suffix + ".png")


def hide_folder(model: ImageHider, covers: str | os.PathLike[str], secrets: str | os.PathLike[str],
                out_dir: str | os.PathLike[str], batch_size: int = 8, device: str | torch.device = "cpu",
                fit: str = "resize", workers: int = 0, overwrite: bool = False, progress: bool = False,
                tile: int | None = None, key: str | None = None, refine_steps: int = 0,
                cover_psnr: float | None = None) -> BatchSummary:
    """Hide secret images in every cover of a folder; cover ``i`` (sorted) carries secret(s)
    ``(i·k + j) mod n_secrets`` — secrets are reused in order when there are fewer than covers. ``key``: the
    passphrase of a keyed model. ``refine_steps``: refine each stego for the revealer (:mod:`deepsteg.refine`),
    within ``cover_psnr`` dB if given (else the network's own distortion)."""
    _check_model(model, key)
    check_refinable(model, refine_steps)
    check_cover_psnr(cover_psnr, refine_steps)
    covers, secrets, out = Path(covers), Path(secrets), Path(out_dir)
    cover_files, secret_files = _prepare(out, covers, secrets)
    k = model.num_secrets
    summary = BatchSummary()
    jobs: list[tuple[list[Path], list[Path]]] = []
    seen: dict[Path, Path] = {}
    inputs = {p.resolve() for p in cover_files + secret_files}
    for i, c in enumerate(cover_files):
        o = _out_name(out, covers, c)
        if o in seen:
            raise ImageWriteError(f"{c} and {seen[o]} would both be written to {o}")
        seen[o] = c
        if o.resolve() in inputs:
            raise ImageWriteError(f"{o}: would overwrite an input; choose another output folder")
        if o.is_file() and not overwrite:
            summary.skipped += 1
            continue
        jobs.append(([c, *[secret_files[(i * k + j) % len(secret_files)] for j in range(k)]], [o]))
    jobs.sort(key=lambda j: _size(j[0][0]))  # equal sizes next to each other → full batches
    dev = torch.device(device)

    def step(stacks: list[Tensor], outs: list[list[Path]]) -> list[str]:
        cover = stacks[0]
        with torch.inference_mode():
            cover_d = cover.to(dev)
            secrets = [model.as_secret(s).to(dev) for s in stacks[1:]]
            stego = model.hide(cover_d, *secrets, tile=tile, key=key)
        after = None
        if refine_steps:
            stego, info = refine(model, cover_d, secrets, stego, refine_steps, key=key, tile=tile,
                                 cover_psnr=cover_psnr)
            after = info["secret_psnr_after"]
        stego = stego.cpu()
        errors = []
        for b, o in enumerate(outs):
            errors.append(_write(stego[b], o[0]))
            if not errors[-1]:
                summary.cover_psnr.append(float(metrics.psnr(quantize(stego[b]), cover[b]).clamp(max=100)))
                if after is not None:
                    summary.secret_psnr.append(after[b])
        return errors

    _run(model, jobs, step, batch_size, workers, fit, summary, progress)
    return summary


def reveal_folder(model: ImageHider, stegos: str | os.PathLike[str], out_dir: str | os.PathLike[str],
                  batch_size: int = 8, device: str | torch.device = "cpu", workers: int = 0,
                  overwrite: bool = False, progress: bool = False, tile: int | None = None,
                  key: str | None = None) -> BatchSummary:
    """Reveal every stego of a folder into ``out_dir`` (``name.png``, or ``name_1.png``… for several secrets).
    ``key``: the passphrase of a keyed model."""
    _check_model(model, key)
    stegos, out = Path(stegos), Path(out_dir)
    (files,) = _prepare(out, stegos)
    k = model.num_secrets
    summary = BatchSummary()
    inputs = {p.resolve() for p in files}
    jobs = []
    seen: dict[Path, Path] = {}
    for f in files:
        outs = [_out_name(out, stegos, f, "" if k == 1 else f"_{j + 1}") for j in range(k)]
        if outs[0] in seen:
            raise ImageWriteError(f"{f} and {seen[outs[0]]} would both be written to {outs[0]}")
        seen[outs[0]] = f
        if any(o.resolve() in inputs for o in outs):
            raise ImageWriteError(f"{outs[0]}: would overwrite an input; choose another output folder")
        if all(o.is_file() for o in outs) and not overwrite:
            summary.skipped += 1
            continue
        jobs.append(([f], outs))
    jobs.sort(key=lambda j: _size(j[0][0]))
    dev = torch.device(device)

    def step(stacks: list[Tensor], outs: list[list[Path]]) -> list[str]:
        with torch.inference_mode():
            revealed = [r.cpu() for r in model.reveal(stacks[0].to(dev), tile=tile, key=key)]
        errors = []
        for b, os_ in enumerate(outs):
            errs = [_write(revealed[j][b], o) for j, o in enumerate(os_)]
            errors.append(next((e for e in errs if e), ""))
        return errors

    _run(model, jobs, step, batch_size, workers, "resize", summary, progress)
    return summary
