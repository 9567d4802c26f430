"""Cover/secret datasets over any folder(s) of images.

Training items are random crops with flips and 90° rotations; the cover and each secret come from different
images. Every item is a pure function of ``(seed, index)``, so a run that resumes at step ``s`` sees exactly the
batches an uninterrupted run would have seen, with no sampler state to save, and distributed ranks can take
disjoint indices. Validation items are deterministic centre crops with a fixed pairing — the same pairing
``deepsteg evaluate`` uses: cover ``i`` with secret ``(i + j·⌊n/(k+1)⌋) mod n`` for secret ``j`` of ``k``
(``(i + ⌊n/2⌋) mod n`` for one secret).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset, Sampler

from deepsteg.errors import ImageReadError
from deepsteg.io import list_images, probe_image, read_image, readable_images

#: Decoded images are kept in memory (as uint8) while they fit in this many bytes.
CACHE_BYTES = int(os.environ.get("DEEPSTEG_CACHE_BYTES", 4 * 1024**3))


def centre_crop(x: Tensor, size: int) -> Tensor:
    """Centre ``size``×``size`` crop of a CHW image. An image whose shorter side is below ``size`` gives its centre
    square, resized up to ``size``: cropping before resizing keeps a thin strip (say 3×4097) from being upscaled
    whole to a gigabyte first."""
    h, w = x.shape[-2:]
    if min(h, w) < size:
        s = min(h, w)
        top, left = (h - s) // 2, (w - s) // 2
        x = x[None, ..., top:top + s, left:left + s].float()
        return F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False, antialias=True)[0].clamp(0, 1)
    top, left = (h - size) // 2, (w - size) // 2
    return x[..., top:top + size, left:left + size]


def pair_indices(i: int, n: int, k: int = 1) -> list[int]:
    """Secret indices for cover ``i`` of ``n`` images carrying ``k`` secrets (``evaluate``'s pairing)."""
    step = max(1, n // (k + 1))
    return [(i + j * step) % n for j in range(1, k + 1)]


class ImageBank:
    """Images of one or more folders, decoded on demand and cached as uint8 while memory allows."""

    def __init__(self, sources: Sequence[str | os.PathLike[str]] | str | os.PathLike[str]) -> None:
        if isinstance(sources, (str, os.PathLike)):
            sources = [sources]
        paths: list[Path] = []
        for s in sources:
            p = Path(s)
            if not p.exists():
                raise ImageReadError(f"{p}: no such directory or file")
            if p.is_dir():  # a stray non-image in a folder is skipped with a notice, not fatal mid-run
                paths.extend(readable_images(list_images(p)))
            else:  # a file named on purpose must be an image: refuse it now rather than at its first crop
                probe_image(p)
                paths.append(p)
        if not paths:
            raise ImageReadError(f"no images found in {', '.join(map(str, sources))}")
        self.paths = paths
        self._cache: dict[int, Tensor] = {}
        self._cached_bytes = 0

    def __len__(self) -> int:
        return len(self.paths)

    def get(self, i: int) -> Tensor:
        """Image ``i`` as a uint8 CHW tensor."""
        if i in self._cache:
            return self._cache[i]
        img = torch.round(read_image(self.paths[i]) * 255).to(torch.uint8)
        if self._cached_bytes + img.numel() <= CACHE_BYTES:
            self._cache[i] = img
            self._cached_bytes += img.numel()
        return img

    def preload(self) -> None:
        """Decode everything now (before DataLoader workers fork, so they share the cache)."""
        for i in range(len(self)):
            self.get(i)


def _augment(x: Tensor, g: torch.Generator) -> Tensor:
    r = torch.randint(0, 8, (1,), generator=g).item()
    if r & 4:
        x = x.flip(-1)
    return torch.rot90(x, r & 3, dims=(-2, -1)) if r & 3 else x


class StegoPairDataset(Dataset):
    """Cover/secret pairs from a folder: ``{"cover": 3×S×S, "secrets": k×3×S×S}`` floats in [0, 1].

    ``mode="train"``: item ``i`` is a random crop pair drawn from ``(seed, i)``; ``length`` items per "epoch"
    (indices beyond it are valid too — the trainer walks an endless index stream).
    ``mode="val"``: item ``i`` is image ``i``'s centre crop with its fixed secret(s).
    ``num_secrets=0`` gives covers only; ``bits_channels=C`` adds ``"bits"``, a C×S×S Bernoulli(0.5) message drawn
    from the same ``(seed, i)`` (for message models; in ``val`` mode from ``i`` alone, so it is fixed).
    """

    def __init__(
        self, sources: Sequence[str | os.PathLike[str]] | str | os.PathLike[str] | ImageBank, size: int = 128,
        mode: str = "train", num_secrets: int = 1, seed: int = 0, length: int = 10_000, augment: bool = True,
        bits_channels: int = 0,
    ) -> None:
        if mode not in ("train", "val"):
            raise ValueError("mode must be 'train' or 'val'")
        self.bank = sources if isinstance(sources, ImageBank) else ImageBank(sources)
        self.size, self.mode, self.k, self.seed = size, mode, num_secrets, seed
        self.length, self.augment, self.bits_channels = length, augment, bits_channels
        if mode == "train" and len(self.bank) < 2:
            raise ImageReadError("training needs at least 2 images (cover and secret come from different images)")

    def __len__(self) -> int:
        return len(self.bank) if self.mode == "val" else self.length

    def _random_crop(self, idx: int, g: torch.Generator) -> Tensor:
        img = self.bank.get(idx)
        h, w = img.shape[-2:]
        s = self.size
        if min(h, w) < s:
            return centre_crop(img.float() / 255, s)
        top = torch.randint(0, h - s + 1, (1,), generator=g).item()
        left = torch.randint(0, w - s + 1, (1,), generator=g).item()
        crop = img[:, top:top + s, left:left + s].float() / 255
        return _augment(crop, g) if self.augment else crop

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        n = len(self.bank)
        if self.mode == "val":
            cover = centre_crop(self.bank.get(i).float() / 255, self.size)
            secrets = [centre_crop(self.bank.get(j).float() / 255, self.size) for j in pair_indices(i, n, self.k)]
            return self._with_bits({"cover": cover, "secrets": self._stack(secrets)},
                                   torch.Generator().manual_seed(int(i)))
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + int(i))
        order = torch.randperm(n, generator=g).tolist()
        picks = [order[j % n] for j in range(self.k + 1)]  # distinct while k < n
        cover = self._random_crop(picks[0], g)
        secrets = self._stack([self._random_crop(p, g) for p in picks[1:]])
        return self._with_bits({"cover": cover, "secrets": secrets}, g)

    def _stack(self, secrets: list[Tensor]) -> Tensor:
        return torch.stack(secrets) if secrets else torch.empty(0, 3, self.size, self.size)

    def _with_bits(self, item: dict[str, Tensor], g: torch.Generator) -> dict[str, Tensor]:
        if self.bits_channels:
            shape = (self.bits_channels, self.size, self.size)
            item["bits"] = torch.randint(0, 2, shape, generator=g, dtype=torch.uint8).float()
        return item


class StepBatchSampler(Sampler[list[int]]):
    """Batches of indices for steps ``start``…``stop-1``: step ``s`` on rank ``r`` of ``world`` takes
    ``[(s·world + r)·B, …, (s·world + r)·B + B − 1]`` — deterministic, resumable, disjoint across ranks."""

    def __init__(self, start: int, stop: int, batch_size: int, rank: int = 0, world: int = 1) -> None:
        self.start, self.stop, self.b, self.rank, self.world = start, stop, batch_size, rank, world

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def __iter__(self) -> Iterator[list[int]]:
        for s in range(self.start, self.stop):
            base = (s * self.world + self.rank) * self.b
            yield list(range(base, base + self.b))
