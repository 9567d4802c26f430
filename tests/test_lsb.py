"""3-bit LSB replacement (StegNet's baseline): exact bits, through PNG files, the CLI and ``evaluate``."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import deepsteg
from deepsteg.cli import app
from deepsteg.errors import DeepstegError, ModelError
from deepsteg.io import read_image, write_png
from deepsteg.models.lsb import Lsb, LsbConfig

runner = CliRunner()


def _u8(x: torch.Tensor) -> np.ndarray:
    return torch.round(x.clamp(0, 1) * 255).to(torch.uint8).numpy()


def _psnr_u8(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * math.log10(255.0**2 / mse)


def _random_pair(seed: int, h: int = 24, w: int = 31) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (2, 3, h, w), dtype=np.uint8)


def _float(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(a.astype(np.float32) / 255.0)


def test_reveals_exactly_the_top_3_bits_also_after_a_png_round_trip(tmp_path: Path) -> None:
    m = Lsb(LsbConfig(midpoint=False))
    for seed in range(3):
        cover, secret = _random_pair(seed)
        stego = m.hide(_float(cover), _float(secret))
        assert torch.equal(deepsteg.quantize(stego), stego)  # already on the 8-bit grid
        want = (secret >> 5) << 5
        assert np.array_equal(_u8(m.reveal(stego)[0]), want)
        write_png(stego, tmp_path / f"s{seed}.png")
        assert np.array_equal(_u8(m.reveal(read_image(tmp_path / f"s{seed}.png"))[0]), want)


def test_midpoint_reveal_adds_half_the_lost_range() -> None:
    cover, secret = _random_pair(7)
    revealed = _u8(Lsb(LsbConfig()).reveal(Lsb().hide(_float(cover), _float(secret)))[0])
    assert np.array_equal(revealed, ((secret >> 5) << 5) + 16)
    assert np.abs(revealed.astype(int) - secret.astype(int)).max() <= 16


def test_stego_changes_only_the_low_3_bits() -> None:
    m = deepsteg.create_model("lsb3")
    for seed in range(3):
        cover, secret = _random_pair(seed)
        stego = _u8(m.hide(_float(cover), _float(secret)))
        assert np.array_equal(stego & 0xF8, cover & 0xF8)
        assert np.array_equal(stego & 0x07, secret >> 5)
        assert np.abs(stego.astype(int) - cover.astype(int)).max() <= 7


def test_inputs_are_rounded_not_truncated() -> None:
    m = Lsb(LsbConfig(midpoint=False))
    cover, secret = _random_pair(3)
    nudged = [(_float(a) + 0.45 / 255).clamp(0, 1) for a in (cover, secret)]  # still rounds to the same bytes
    assert torch.equal(m.hide(*nudged), m.hide(_float(cover), _float(secret)))


@pytest.mark.parametrize("bits", [1, 3, 7])
def test_other_bit_counts(bits: int) -> None:
    cover, secret = _random_pair(bits)
    m = Lsb(LsbConfig(bits=bits, midpoint=False))
    stego = _u8(m.hide(_float(cover), _float(secret)))
    low = (1 << bits) - 1
    assert np.array_equal(stego & (0xFF ^ low), cover & (0xFF ^ low))
    assert np.array_equal(_u8(m.reveal(_float(stego))[0]), (secret >> (8 - bits)) << (8 - bits))
    with pytest.raises(ValueError):
        Lsb(LsbConfig(bits=8))


def test_pretrained_needs_no_weights_and_training_is_refused(image_folder: Path, tmp_path: Path) -> None:
    m = deepsteg.create_model("lsb3", pretrained=True)
    assert not m.training and list(m.parameters()) == [] and m.model_name == "lsb3"
    assert "lsb3" in deepsteg.list_models(pretrained=True)
    batch = {"cover": torch.rand(2, 3, 16, 16), "secrets": torch.rand(2, 1, 3, 16, 16)}
    with pytest.raises(ModelError, match="lsb3 needs no training"):
        m.training_losses(batch)
    from deepsteg.train import TrainConfig, train

    cfg = TrainConfig(model="lsb3", data=[str(image_folder)], out=str(tmp_path / "run"), steps=2, batch_size=2,
                      crop=32, val_crop=32, num_workers=0)
    with pytest.raises(DeepstegError, match="nothing to train"):
        train(cfg, progress=False)
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_cli_hide_reveal_gives_the_expected_psnrs(tmp_path: Path, make_png) -> None:
    cover_p, secret_p = make_png("c.png", 29, 37, seed=1), make_png("s.png", 29, 37, seed=2)
    cover, secret = _u8(read_image(cover_p)), _u8(read_image(secret_p))
    stego_want = (cover & 0xF8) | (secret >> 5)
    revealed_want = ((stego_want & 0x07) << 5) + 16
    r = runner.invoke(app, ["hide", str(cover_p), str(secret_p), "-o", str(tmp_path / "stego.png"),
                            "--model", "lsb3", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    printed = float(re.search(r"cover PSNR ([0-9.]+) dB", r.stdout).group(1))
    assert printed == pytest.approx(_psnr_u8(stego_want, cover), abs=0.006)
    stego = _u8(read_image(tmp_path / "stego.png"))
    assert np.array_equal(stego, stego_want)
    r = runner.invoke(app, ["reveal", str(tmp_path / "stego.png"), "-o", str(tmp_path / "out.png"),
                            "--model", "lsb3", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    revealed = _u8(read_image(tmp_path / "out.png"))
    assert np.array_equal(revealed, revealed_want)
    assert _psnr_u8(revealed, secret) == pytest.approx(_psnr_u8(revealed_want, secret), abs=1e-12)
    # sanity: uniform low-bit errors give ≈ 10·log10(255² / 10.5) ≈ 37.9 dB (cover) and ≈ 28.9 dB (secret, ±16)
    assert 25 < _psnr_u8(revealed, secret) < 33 < _psnr_u8(stego, cover) < 42


def test_evaluate_cover_psnr_matches_the_bit_operations(image_folder: Path, tmp_path: Path) -> None:
    from deepsteg.data import centre_crop, pair_indices
    from deepsteg.io import list_images

    out = tmp_path / "e.json"
    r = runner.invoke(app, ["evaluate", "--model", "lsb3", "--data", str(image_folder), "--size", "32",
                            "--json", str(out), "--device", "cpu"])
    assert r.exit_code == 0, r.output
    res = json.loads(out.read_text())
    assert res["model"] == "lsb3" and res["n"] == 6
    files = list_images(image_folder)
    cover_psnrs, secret_psnrs = [], []
    for i, row in enumerate(res["images"]):
        (j,) = pair_indices(i, len(files), 1)
        c, s = (_u8(centre_crop(read_image(files[k]), 32)) for k in (i, j))
        stego = (c & 0xF8) | (s >> 5)
        cover_psnrs.append(_psnr_u8(stego, c))
        secret_psnrs.append(_psnr_u8(((stego & 0x07) << 5) + 16, s))
        assert row["cover_psnr"] == pytest.approx(cover_psnrs[-1], abs=1e-6)
        assert row["secret_psnr"] == pytest.approx(secret_psnrs[-1], abs=1e-6)
    assert res["cover_psnr"] == pytest.approx(sum(cover_psnrs) / 6, abs=1e-6)
    assert res["secret_psnr"] == pytest.approx(sum(secret_psnrs) / 6, abs=1e-6)
