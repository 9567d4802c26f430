"""ISN: exact inversion (float64, every block and the whole network), keys, training that lowers the loss, a keyed
model that reveals only under its passphrase, and the multi-secret CLI at odd sizes."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

import deepsteg
from deepsteg.cli import app
from deepsteg.errors import ModelError
from deepsteg.io import quantize
from deepsteg.layers.invertible import DenseBlock5, InvBlock
from deepsteg.metrics import psnr
from deepsteg.models.isn import seed_from_passphrase, texture
from deepsteg.train import TrainConfig, train
from deepsteg.zoo import save_pretrained
from tests.conftest import natural_like


def _perturb(module: torch.nn.Module, scale: float = 0.05) -> None:
    """Zero-initialised last layers make a fresh network the identity; perturb so inversion is really tested."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))


@pytest.mark.parametrize("hidden,cond", [(3, 0), (12, 0), (3, 3)])
def test_each_block_inverts_in_float64(hidden: int, cond: int) -> None:
    block = InvBlock(3, hidden, clamp=2.0, cond_channels=cond, growth=8).double()
    _perturb(block, 0.2)
    x = torch.rand(2, 3 + hidden, 19, 23, dtype=torch.float64)
    c = torch.rand(2, cond, 19, 23, dtype=torch.float64) if cond else None
    y = block(x, c)
    assert (y - x).abs().max() > 0.1  # the block really transforms
    assert (block(y, c, reverse=True) - x).abs().max() <= 1e-6


@pytest.mark.parametrize("name", ["isn", "isn-4", "isn-keyed"])
def test_whole_network_inverts_in_float64(name: str) -> None:
    m = deepsteg.create_model(name, growth=8).double()
    _perturb(m, 0.02)  # strong enough to move every output, mild enough for 16 chained exp(±2) scales
    k = m.num_secrets
    x = torch.rand(1, 3 + 3 * k, 21, 17, dtype=torch.float64)
    c = torch.rand(1, 3, 21, 17, dtype=torch.float64) if m.keyed else None
    y = m.forward_map(x, c)
    assert (y - x).abs().max() > 0.1
    assert (m.inverse_map(y, c) - x).abs().max() <= 1e-6


def test_fused_dense_block_equals_the_textbook_one() -> None:
    a, b = DenseBlock5(6, 3, 8, fused=True), DenseBlock5(6, 3, 8, fused=False)
    b.load_state_dict(a.state_dict())
    _perturb(a)
    b.load_state_dict(a.state_dict())
    x = torch.rand(2, 6, 16, 16)
    assert torch.allclose(a(x), b(x), atol=1e-6)
    xc = x.contiguous(memory_format=torch.channels_last)
    assert torch.allclose(a(xc), b(x), atol=1e-5)


def test_key_patterns_are_deterministic_and_distinct() -> None:
    s = seed_from_passphrase("correct horse")
    assert s == seed_from_passphrase("correct horse") != seed_from_passphrase("correct horse!")
    t = texture(s, 3, 37, 53)
    assert t.shape == (1, 3, 37, 53) and 0 <= t.min() and t.max() <= 1
    assert torch.equal(t, texture(s, 3, 37, 53))
    assert torch.equal(texture(s, 3, 80, 90)[..., :37, :53].shape and t, t)
    with pytest.raises(ModelError, match="empty"):
        seed_from_passphrase("")


def test_keys_are_required_exactly_where_they_belong() -> None:
    cover, secret = torch.rand(1, 3, 24, 24), torch.rand(1, 3, 24, 24)
    keyed, plain = deepsteg.create_model("isn-keyed", growth=8), deepsteg.create_model("isn", growth=8)
    with pytest.raises(ModelError, match="keyed"):
        keyed.hide(cover, secret)
    with pytest.raises(ModelError, match="no passphrase"):
        plain.hide(cover, secret, key="x")
    assert keyed.hide(cover, secret, key="x").shape == cover.shape


def _cfg(folder: Path, out: Path, model: str, **kw) -> TrainConfig:  # noqa: ANN003
    base = dict(model=model, data=[str(folder)], out=str(out), steps=30, batch_size=4, crop=32, val_crop=32,
                val_every=1000, ckpt_every=1000, log_every=1, seed=0, schedule="constant", lr=2e-3,
                overrides={"blocks": 2, "growth": 16})
    base.update(kw)
    return TrainConfig(**base)


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path) as f:
        return list(csv.DictReader(f))


def test_cpu_steps_lower_the_reveal_loss_and_the_round_stage_runs(image_folder: Path, tmp_path: Path) -> None:
    """A tiny CPU run: in the warm-up (reveal loss alone) L_hi falls fast; then the rounded stage takes over."""
    over = {"blocks": 2, "growth": 16, "warmup": 1.0, "round_fraction": 0.25}
    train(_cfg(image_folder, tmp_path / "run", "isn", steps=80, overrides=over), progress=False)
    rows = _rows(tmp_path / "run" / "train.csv")
    l_hi = [float(r["l_hi"]) for r in rows if r["stage"] == "float"]
    assert len(l_hi) == 60 and np.mean(l_hi[-10:]) < 0.5 * np.mean(l_hi[:10]), l_hi  # measured 0.20 → 0.03
    assert {r["stage"] for r in rows} == {"float", "round"}


def test_constraint_weights_warm_up_then_ramp() -> None:
    """The container's loss weights: the floor during the warm-up, a linear ramp, then full; the paper's schedule
    (warmup 0) and the rounded stage always use the full weights."""
    m = deepsteg.create_model("isn", blocks=1, growth=4, warmup=0.1, warmup_floor=0.03, ramp=0.4)
    w = m.constraint_weight
    assert w("float", 0.0) == w("float", 0.1) == pytest.approx(0.03)
    assert w("float", 0.3) == pytest.approx(0.03 + 0.97 * 0.5)
    assert w("float", 0.5) == w("float", 0.9) == w("round", 0.0) == 1.0
    old = deepsteg.create_model("isn", blocks=1, growth=4, warmup=0.1)  # default: reveal alone, ramp as long
    assert old.constraint_weight("float", 0.05) == 0.0 and old.constraint_weight("float", 0.15) == pytest.approx(0.5)
    assert deepsteg.create_model("isn", blocks=1, growth=4, warmup=0.0).constraint_weight("float", 0.0) == 1.0


def test_keyed_reveal_depends_on_the_passphrase() -> None:
    """(That a *trained* keyed model reveals ≥ 10 dB worse under a wrong passphrase needs real training; see the
    issue note.) Here: hide and reveal both use the key's texture, and another key reveals something else."""
    m = deepsteg.create_model("isn-keyed", blocks=2, growth=8)
    _perturb(m, 0.05)
    cover, secret = torch.rand(1, 3, 24, 24), torch.rand(1, 3, 24, 24)
    with torch.no_grad():
        stego = m.hide(cover, secret, key="one")
        assert not torch.allclose(stego, m.hide(cover, secret, key="two"))
        right, wrong = m.reveal(stego, key="one")[0], m.reveal(stego, key="two")[0]
    assert (right - wrong).abs().mean() > 1e-3


# --- CLI --------------------------------------------------------------------------------------------------------
def test_cli_four_secrets_round_trip_at_odd_size(tmp_path: Path, make_png) -> None:
    torch.manual_seed(0)
    w = tmp_path / "w"
    m = deepsteg.create_model("isn-4", blocks=2, growth=8)
    _perturb(m, 0.01)
    save_pretrained(m.eval(), w)
    cover = make_png("c.png", 27, 35, seed=1)
    secrets = [make_png(f"s{i}.png", 27, 35, seed=2 + i) for i in range(4)]
    runner = CliRunner()
    r = runner.invoke(app, ["hide", str(cover), *map(str, secrets), "-o", str(tmp_path / "stego.png"),
                            "--model", "isn-4", "--weights", str(w)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["reveal", str(tmp_path / "stego.png"), "-o", str(tmp_path / "out_{i}.png"),
                            "--model", "isn-4", "--weights", str(w)])
    assert r.exit_code == 0, r.output
    for i in range(1, 5):
        assert Image.open(tmp_path / f"out_{i}.png").size == (35, 27)
    r = runner.invoke(app, ["reveal", str(tmp_path / "stego.png"), "-o", str(tmp_path / "out.png"),
                            "--model", "isn-4", "--weights", str(w)])
    assert r.exit_code == 1 and "{i}" in r.stderr
    r = runner.invoke(app, ["hide", str(cover), str(secrets[0]), "-o", str(tmp_path / "s1.png"),
                            "--model", "isn-4", "--weights", str(w)])
    assert r.exit_code == 1 and "exactly 4" in r.stderr


def test_cli_keyed_needs_the_passphrase(tmp_path: Path, make_png) -> None:
    w = tmp_path / "w"
    save_pretrained(deepsteg.create_model("isn-keyed", blocks=2, growth=8).eval(), w)
    cover, secret = make_png("c.png", 30, 33, seed=1), make_png("s.png", 30, 33, seed=2)
    runner = CliRunner()
    base = ["--model", "isn-keyed", "--weights", str(w)]
    r = runner.invoke(app, ["hide", str(cover), str(secret), "-o", str(tmp_path / "st.png"), *base])
    assert r.exit_code == 1 and "passphrase" in r.stderr
    r = runner.invoke(app, ["hide", str(cover), str(secret), "-o", str(tmp_path / "st.png"), *base,
                            "--passphrase", "k"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["reveal", str(tmp_path / "st.png"), "-o", str(tmp_path / "r.png"), *base,
                            "--passphrase", "k"])
    assert r.exit_code == 0, r.output
