"""Datasets are deterministic per (seed, index), pair different images, and validate on fixed centre crops."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from deepsteg.data import ImageBank, StegoPairDataset, StepBatchSampler, centre_crop, pair_indices


def _flat_folder(tmp_path: Path, n: int = 5, size: tuple[int, int] = (40, 56)) -> Path:
    d = tmp_path / "flat"
    d.mkdir()
    for i in range(n):  # image i is filled with grey level 40·i + 10 → identifiable after any crop/flip
        Image.fromarray(np.full((*size, 3), 40 * i + 10, np.uint8)).save(d / f"f{i}.png")
    return d


def _ids(x: torch.Tensor) -> int:
    return int(round((float(x.mean()) * 255 - 10) / 40))


def test_train_items_are_deterministic_and_pair_different_images(tmp_path: Path) -> None:
    ds = StegoPairDataset(_flat_folder(tmp_path), size=32, mode="train", num_secrets=2, seed=3)
    a, b = ds[17], ds[17]
    assert torch.equal(a["cover"], b["cover"]) and torch.equal(a["secrets"], b["secrets"])
    assert a["cover"].shape == (3, 32, 32) and a["secrets"].shape == (2, 3, 32, 32)
    for i in range(30):
        item = ds[i]
        ids = [_ids(item["cover"]), *[_ids(s) for s in item["secrets"]]]
        assert len(set(ids)) == 3
    other_seed = StegoPairDataset(ds.bank, size=32, seed=4)
    assert any(not torch.equal(ds[i]["cover"], other_seed[i]["cover"]) for i in range(5))


def test_random_crops_and_augmentation_vary(image_folder: Path) -> None:
    ds = StegoPairDataset(image_folder, size=16, mode="train", seed=0)
    crops = {ds[i]["cover"].sum().item() for i in range(20)}
    assert len(crops) > 10


def test_val_mode_is_centre_crops_with_fixed_pairing(tmp_path: Path) -> None:
    folder = _flat_folder(tmp_path, n=5)
    ds = StegoPairDataset(folder, size=24, mode="val")
    assert len(ds) == 5
    for i in range(5):
        item = ds[i]
        assert _ids(item["cover"]) == i and _ids(item["secrets"][0]) == (i + 2) % 5
    assert pair_indices(0, 9, 1) == [4] and pair_indices(1, 10, 4) == [3, 5, 7, 9]


def test_centre_crop_and_small_images() -> None:
    x = torch.arange(10 * 12, dtype=torch.float32).view(1, 10, 12)
    assert torch.equal(centre_crop(x, 4), x[:, 3:7, 4:8])
    small = torch.rand(3, 8, 20)
    assert centre_crop(small, 16).shape == (3, 16, 16)


def test_small_strip_is_cropped_before_it_is_upscaled(monkeypatch) -> None:  # noqa: ANN001 - pytest fixture
    """A 3×4097 strip is upscaled as its centre 3×3 square, never whole (that was ~1 GB at --size 256)."""
    import deepsteg.data as data

    sizes = []
    real = data.F.interpolate

    def spy(x, size=None, **kw):  # noqa: ANN001, ANN202
        sizes.append(tuple(size))
        return real(x, size=size, **kw)

    monkeypatch.setattr(data.F, "interpolate", spy)
    strip = torch.rand(3, 3, 4097)
    strip[..., 2047:2050] = 0.5  # the centre square is flat grey: so must the crop be
    out = centre_crop(strip, 256)
    assert out.shape == (3, 256, 256) and sizes == [(256, 256)]
    assert torch.allclose(out, torch.full_like(out, 0.5), atol=1e-6)


def test_bank_reads_sorted_files_and_rejects_empty(tmp_path: Path) -> None:
    folder = _flat_folder(tmp_path, n=3)
    bank = ImageBank(folder)
    assert [p.name for p in bank.paths] == ["f0.png", "f1.png", "f2.png"]
    assert bank.get(1).dtype == torch.uint8
    empty = tmp_path / "empty"
    empty.mkdir()
    import pytest

    from deepsteg.errors import ImageReadError

    with pytest.raises(ImageReadError, match="no images"):
        ImageBank(empty)


def test_step_batch_sampler_resumes_and_splits_ranks() -> None:
    full = list(StepBatchSampler(0, 6, 4))
    assert list(StepBatchSampler(3, 6, 4)) == full[3:]
    r0, r1 = list(StepBatchSampler(0, 3, 2, rank=0, world=2)), list(StepBatchSampler(0, 3, 2, rank=1, world=2))
    flat0, flat1 = sum(r0, []), sum(r1, [])
    assert not set(flat0) & set(flat1) and sorted(flat0 + flat1) == list(range(12))


def test_bank_skips_a_stray_non_image_in_a_folder_but_refuses_one_named(tmp_path: Path) -> None:
    """A text file saved as .jpg in the training folder is dropped up front (with a notice), not met at step 9,000."""
    import pytest

    from deepsteg.errors import ImageReadError
    from deepsteg.io import DeepstegNotice

    folder = _flat_folder(tmp_path, n=3)
    (folder / "f1b.jpg").write_text("not a picture")
    with pytest.warns(DeepstegNotice, match=r"f1b\.jpg: not an image .*; skipped"):
        bank = ImageBank(folder)
    assert [p.name for p in bank.paths] == ["f0.png", "f1.png", "f2.png"]
    with pytest.raises(ImageReadError, match=r"f1b\.jpg: not an image"):
        ImageBank([folder / "f0.png", folder / "f1b.jpg"])
