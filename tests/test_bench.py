"""Trained steganalysis proves itself before it judges models (SRM+FLD beats chance on LSB matching at 0.4 bpp),
deep steganalysers train through the trainer, and ``deepsteg bench`` writes its report, tables and figures."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter
from typer.testing import CliRunner

import deepsteg
from deepsteg.analysis.trained import detect_with_features
from deepsteg.cli import app
from deepsteg.train import TrainConfig, train
from tests.conftest import natural_like

pytest.importorskip("sealwatch")


def _lsb_matching(img: np.ndarray, rate: float, rng: np.random.Generator) -> np.ndarray:
    """±1 embedding (LSB matching) at ``rate`` bits per channel value: a changed value moves up or down at
    random, never outside 0…255 — the change SPA/RS/chi-square are blind to, and rich models are built for."""
    x = img.astype(np.int16)
    bits = rng.integers(0, 2, x.shape)
    carry = rng.random(x.shape) < rate
    change = carry & ((x & 1) != bits)
    step = rng.choice([-1, 1], x.shape)
    step[x == 0], step[x == 255] = 1, -1
    return np.where(change, x + step, x).astype(np.uint8)


def test_srm_fld_detects_lsb_matching_at_0_4_bpp() -> None:
    rng = np.random.default_rng(0)
    pairs = []
    for i in range(56):
        # grey (R = G = B), and blurred as a camera's optics blur: the synthetic images' added noise would
        # otherwise mask ±1 changes far more than real photos do at these tiny sizes
        img = Image.fromarray(natural_like(48, 48, seed=100 + i)[..., 0]).filter(ImageFilter.GaussianBlur(1))
        grey = np.asarray(img)[..., None].repeat(3, 2)
        pairs.append((grey, _lsb_matching(grey, 0.4, rng)))
    r = detect_with_features("srm", pairs[:28], pairs[28:], seed=0)
    assert r["auc"] >= 0.7 and r["accuracy"] > 0.6, r  # clearly better than chance (0.5)


def test_spam_fld_detects_lsb_replacement_at_1_bpp() -> None:
    rng = np.random.default_rng(1)
    pairs = []
    for i in range(40):
        img = natural_like(40, 40, seed=200 + i)
        pairs.append((img, (img & 0xFE) | rng.integers(0, 2, img.shape, dtype=np.uint8)))
    r = detect_with_features("spam", pairs[:20], pairs[20:], seed=0)
    assert r["auc"] >= 0.7, r  # measured 0.78 on these 20 + 20 small images


def test_xunet_trains_through_the_trainer_against_lsb3(image_folder: Path, tmp_path: Path) -> None:
    cfg = TrainConfig(model="xunet", data=[str(image_folder)], val=[str(image_folder)], out=str(tmp_path / "run"),
                      steps=60, batch_size=4, crop=32, val_crop=32, val_every=60, ckpt_every=1000, log_every=1,
                      seed=0, lr=3e-3, overrides={"target": "lsb3"})
    last = train(cfg, progress=False)
    rows = list(csv.DictReader(open(tmp_path / "run" / "train.csv")))
    loss = [float(r["loss"]) for r in rows]
    assert np.mean(loss[-10:]) < np.mean(loss[:10]), loss  # lsb3 (3 low bits replaced) is easy to learn
    assert "detector_accuracy" in last and 0 <= last["detector_accuracy"] <= 1
    det = deepsteg.create_model("xunet", weights=tmp_path / "run" / "last")
    assert "target" not in str(list(det.state_dict())) and det.config.target == "lsb3"


@pytest.mark.parametrize("target", ["stegnet", "sftn"])
def test_detector_makes_the_targets_own_stego(target: str, tmp_path: Path) -> None:
    """An image hider gets the cover and secret; a message model random bits. StegNet has a sub-network named
    ``embed``, which once sent it down the message-model path (a crash in ``deepsteg bench``)."""
    from deepsteg.io import quantize
    from deepsteg.models.message import MessageModel
    from deepsteg.zoo import save_pretrained

    torch.manual_seed(0)
    t = deepsteg.create_model(target).eval()
    save_pretrained(t, tmp_path / target)
    det = deepsteg.create_model("xunet", target=target, target_weights=str(tmp_path / target))
    cover, secrets = torch.rand(2, 3, 32, 32), torch.rand(2, 1, 3, 32, 32)
    stego = det.make_stego(quantize(cover), secrets, seed=0)
    assert stego.shape == cover.shape and torch.equal(stego, quantize(stego))  # an 8-bit image
    with torch.no_grad():
        if isinstance(t, MessageModel):
            bits = torch.randint(0, 2, (2, t.capacity_bits(32, 32)), generator=torch.Generator().manual_seed(0))
            expected = quantize(t.embed(quantize(cover), bits.float()))
        else:
            expected = quantize(t.hide(quantize(cover), t.as_secret(secrets)[:, 0]))
    assert torch.equal(stego, expected)


def test_bench_writes_report_tables_and_figures(image_folder: Path, tmp_path: Path, make_png) -> None:
    train_dir = tmp_path / "train"
    for i in range(4):
        make_png(f"t{i}.png", 40, 48, seed=50 + i, folder=train_dir)
    run = tmp_path / "run"  # a staged run's log: the second stage logs only l_m (as SFTN's SF-stage does)
    run.mkdir()
    (run / "train.csv").write_text("step,stage,loss,l_m\n10,jt,2.0,0.5\n20,jt,1.5,0.4\n30,sf,,0.3\n")
    out = tmp_path / "report"
    r = CliRunner().invoke(app, ["bench", "--models", "lsb3,lsb-bits", "--data", str(image_folder), "--out", str(out),
                                 "--size", "32", "--features", "spam", "--deep", "xunet", "--train-data",
                                 str(train_dir), "--deep-steps", "5", "--device", "cpu", "--run", f"lsb-bits={run}"])
    assert r.exit_code == 0, r.output
    md = (out / "report.md").read_text()
    assert "`lsb3`" in md and "`lsb-bits`" in md and "spam+fld" in md and "xunet" in md
    res = json.loads((out / "results.json").read_text())
    lsb3 = next(m for m in res["models"] if m["model"] == "lsb3")
    assert 0 <= lsb3["classical"]["fusion"]["auc"] <= 1 and lsb3["params"] == 0
    bits = next(m for m in res["models"] if m["model"] == "lsb-bits")
    assert bits["quality"]["bit_accuracy"] == 1.0
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert [row["model"] for row in rows] == ["lsb3", "lsb-bits"] and "chi2_auc" in rows[0]
    for m in res["models"]:
        for f in m["figures"].values():
            assert (out / "figures" / f).stat().st_size > 1000
            assert Image.open(out / "figures" / f).mode == "P"  # palette PNGs by default (--palette-figures)
    assert not [p for p in (out / "figures").iterdir() if p.suffix != ".png"]  # no temporary files left
    bad = CliRunner().invoke(app, ["bench", "--models", "lsb3", "--data", str(image_folder), "--out",
                                   str(tmp_path / "x"), "--deep", "resnet"])
    assert bad.exit_code == 1 and "unknown 'resnet'" in bad.stderr


def test_bench_update_rebenches_only_the_named_models(image_folder: Path, tmp_path: Path) -> None:
    """--update re-measures the named models in their old places and keeps the others' rows as they were; it
    refuses a report made with other settings, and a folder with no report."""
    out = tmp_path / "report"
    base = ["bench", "--data", str(image_folder), "--out", str(out), "--size", "32", "--features", "none",
            "--deep", "none", "--device", "cpu"]
    r = CliRunner().invoke(app, [*base, "--models", "lsb3,lsb-bits"])
    assert r.exit_code == 0, r.output
    before = {m["model"]: m for m in json.loads((out / "results.json").read_text())["models"]}
    r = CliRunner().invoke(app, [*base, "--models", "lsb3", "--update"])
    assert r.exit_code == 0, r.output
    after = json.loads((out / "results.json").read_text())["models"]
    assert [m["model"] for m in after] == ["lsb3", "lsb-bits"]
    assert after[1]["speed"] == before["lsb-bits"]["speed"]  # kept, not re-timed
    assert after[0]["speed"] != before["lsb3"]["speed"]  # re-timed (float timings never repeat exactly)
    md = (out / "report.md").read_text()
    assert "`lsb3`" in md and "`lsb-bits`" in md
    bad = CliRunner().invoke(app, [*base[:-6], "--size", "48", "--features", "none", "--deep", "none",
                                   "--device", "cpu", "--models", "lsb3", "--update"])
    assert bad.exit_code == 1 and "was made with size = 32" in bad.stderr
    none = CliRunner().invoke(app, [*base[:3], "--out", str(tmp_path / "empty"), "--models", "lsb3", "--update"])
    assert none.exit_code == 1 and "no earlier report" in none.stderr


def test_bench_counts_only_readable_images_towards_its_minimum(tmp_path: Path, make_png) -> None:
    """Three photos and a stray non-image are refused as three, not accepted as four (the evaluation would skip
    the stray file and bench three); a fourth real photo makes the same folder benchable."""
    d = tmp_path / "imgs"
    for i in range(3):
        make_png(f"im{i}.png", 40, 48, seed=i, folder=d)
    (d / "notes.png").write_bytes(b"not an image at all")
    args = ["bench", "--models", "lsb3", "--data", str(d), "--out", str(tmp_path / "report"), "--size", "32",
            "--features", "none", "--deep", "none", "--device", "cpu"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 1 and "at least 4 readable images, found 3" in r.stderr, r.output
    make_png("im3.png", 40, 48, seed=3, folder=d)
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    assert "notes.png" in r.stderr and "skipped" in r.stderr


def test_save_figure_palette_is_smaller_and_faithful(tmp_path: Path) -> None:
    """Figures are written atomically; the palette form is much smaller than full colour, with the same size and
    (for a line plot and a photo-like residual panel) pixels close to the full-colour rendering."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from deepsteg.bench import save_figure

    rng = np.random.default_rng(0)
    fig, axes = plt.subplots(1, 2, figsize=(8, 3))
    axes[0].plot(np.cumsum(rng.normal(size=200)), lw=1)
    axes[0].plot(np.cumsum(rng.normal(size=200)), lw=1, alpha=0.8)
    smooth = np.cumsum(np.cumsum(rng.normal(size=(64, 64)), 0), 1)
    axes[1].imshow(smooth, cmap="gray")
    save_figure(fig, tmp_path / "p.png", palette=True)
    save_figure(fig, tmp_path / "f.png", palette=False)
    plt.close(fig)
    pal, full = Image.open(tmp_path / "p.png"), Image.open(tmp_path / "f.png")
    assert pal.mode == "P" and full.mode == "RGB" and pal.size == full.size
    assert (tmp_path / "p.png").stat().st_size < 0.7 * (tmp_path / "f.png").stat().st_size
    diff = np.abs(np.asarray(pal.convert("RGB"), np.int16) - np.asarray(full, np.int16))
    assert diff.mean() < 0.5 and np.percentile(diff, 99) <= 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.png", "p.png"]
