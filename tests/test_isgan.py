"""ISGAN: YCbCr round trips, chroma kept, grey secrets at odd sizes, the SPP steganalyser, the mixed loss, a few
CPU training steps for both entries, and the CLI round trip with a colour secret made grey."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
import pytorch_msssim
import torch
from PIL import Image
from typer.testing import CliRunner

import deepsteg
from deepsteg.cli import app
from deepsteg.colour import rgb_to_ycbcr, ycbcr_to_rgb
from deepsteg.errors import ModelError
from deepsteg.io import to_grey
from deepsteg.models.isgan import IsganEncoder, mixed_loss, ms_ssim, ms_ssim_levels, ms_ssim_scales
from deepsteg.train import TrainConfig, train
from deepsteg.zoo import save_pretrained
from tests.conftest import natural_like


def _natural(h: int, w: int, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(natural_like(h, w, seed)).permute(2, 0, 1).float()[None] / 255


def test_ycbcr_round_trip_and_jpeg_convention() -> None:
    g = torch.Generator().manual_seed(0)
    for x in (torch.rand(2, 3, 17, 23, generator=g), _natural(31, 29, seed=4)):
        ycc = rgb_to_ycbcr(x)
        assert torch.allclose(ycbcr_to_rgb(ycc), x, atol=1e-5)
        assert torch.allclose(ycc[:, :1], to_grey(x), atol=1e-6)  # Y is the library's BT.601 luma
    assert torch.allclose(rgb_to_ycbcr(x[0]), ycc[0])  # CHW works too
    # 255 · ours is JFIF's full-range YCbCr: Pillow's fixed-point conversion agrees within one level.
    arr = natural_like(20, 24, seed=5)
    pil = torch.from_numpy(np.array(Image.fromarray(arr).convert("YCbCr"))).permute(2, 0, 1).float()
    ours = rgb_to_ycbcr(torch.from_numpy(arr).permute(2, 0, 1).float() / 255) * 255
    assert (ours - pil).abs().max() <= 1.0


@pytest.mark.parametrize("residual", [True, False])
def test_stego_keeps_the_covers_chroma(residual: bool) -> None:
    torch.manual_seed(0)
    m = deepsteg.create_model("isgan-basic", residual=residual).eval()
    cover, secret = _natural(32, 40, seed=1), to_grey(_natural(32, 40, seed=2))
    with torch.no_grad():
        stego = m.hide(cover, secret)
    unclamped = ((stego > 0) & (stego < 1)).all(1)  # pixels where the final clamp did nothing
    assert unclamped.float().mean() > 0.5
    diff = (rgb_to_ycbcr(stego) - rgb_to_ycbcr(cover))[:, 1:].abs()
    assert diff.permute(1, 0, 2, 3)[:, unclamped].max() < 1e-5
    assert not torch.allclose(stego, cover)  # … while Y did change


@pytest.mark.parametrize("name", ["isgan-basic", "isgan"])
def test_grey_secret_in_and_out_at_odd_size(name: str) -> None:
    m = deepsteg.create_model(name).eval()
    cover, secret = _natural(29, 37, seed=1)[0], to_grey(_natural(29, 37, seed=2))[0]
    with torch.no_grad():
        stego = m.hide(cover, secret)
        revealed = m.reveal(deepsteg.quantize(stego))
    assert stego.shape == (3, 29, 37) and len(revealed) == 1 and revealed[0].shape == (1, 29, 37)
    with pytest.raises(ModelError, match="channels; expected 1"):
        m.hide(cover, _natural(29, 37, seed=2)[0])


def test_tiled_hide_and_reveal_equal_whole_image() -> None:
    assert IsganEncoder.radius == 16 <= deepsteg.create_model("isgan-basic").tile_margin
    torch.manual_seed(0)
    m = deepsteg.create_model("isgan-basic").eval()
    cover, secret = _natural(40, 44, seed=1), to_grey(_natural(40, 44, seed=2))
    with torch.no_grad():
        whole, tiled = m.hide(cover, secret, tile=0), m.hide(cover, secret, tile=16)
        assert torch.allclose(whole, tiled, atol=1e-5)
        assert torch.allclose(m.reveal(whole, tile=0)[0], m.reveal(whole, tile=16)[0], atol=1e-5)


def test_steganalyser_is_size_independent_and_only_in_the_gan() -> None:
    m = deepsteg.create_model("isgan")
    assert m.critic is not None and m.critic.fc[0].in_features == 2688  # Table 3: 128 · (1 + 4 + 16)
    for size in ((32, 32), (48, 40), (17, 23)):
        assert m.critic(torch.rand(3, 3, *size)).shape == (3, 2)
    assert any(k.startswith("critic.") for k in m.state_dict())
    basic = deepsteg.create_model("isgan-basic")
    assert basic.critic is None and not any(k.startswith("critic.") for k in basic.state_dict())
    # hide / reveal never touch the critic
    m.eval()
    cover, secret = _natural(24, 24), to_grey(_natural(24, 24, seed=3))
    with torch.no_grad():
        before = m.hide(cover, secret)
        for p in m.critic.parameters():
            p.add_(1.0)
        assert torch.equal(before, m.hide(cover, secret))


def test_mixed_loss_and_the_ms_ssim_scale_rule() -> None:
    assert [ms_ssim_levels(s) for s in (16, 21, 32, 41, 128, 160, 161, 256)] == [1, 2, 2, 3, 4, 4, 5, 5]
    a, b = _natural(168, 176, seed=1), _natural(168, 176, seed=2)
    b = (0.7 * a + 0.3 * b)
    # our multi-scale code at 5 scales is pytorch_msssim's MS-SSIM (up to renormalising the standard weights,
    # which sum to 1.0001), at 1 scale its SSIM
    assert math.isclose(float(ms_ssim_scales(a, b, 5)), float(pytorch_msssim.ms_ssim(a, b, data_range=1.0)),
                        abs_tol=5e-5)
    assert math.isclose(float(ms_ssim_scales(a, b, 1)), float(pytorch_msssim.ssim(a, b, data_range=1.0)),
                        abs_tol=1e-5)
    assert 0 < float(ms_ssim(a[..., :32, :32], b[..., :32, :32])) < 1  # 2 scales on a 32-px crop
    assert float(mixed_loss(a, a)) < 1e-5
    x, y = a[..., :32, :32], b[..., :32, :32]
    want = 0.5 * (1 - pytorch_msssim.ssim(x, y, data_range=1.0)) + 0.5 * (1 - ms_ssim(x, y)) \
        + 0.3 * torch.mean((x - y) ** 2)
    assert math.isclose(float(mixed_loss(x, y)), float(want), rel_tol=1e-5)


# --- training ---------------------------------------------------------------------------------------------------
def _cfg(model: str, folder: Path, out: Path, **kw) -> TrainConfig:  # noqa: ANN003
    base = dict(model=model, data=[str(folder)], out=str(out), steps=20, batch_size=4, crop=32, val_crop=32,
                val_every=1000, ckpt_every=1000, log_every=1, seed=1, num_workers=0, schedule="constant")
    base.update(kw)
    return TrainConfig(**base)


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path) as f:
        return list(csv.DictReader(f))


def _held_out_batch(folder: Path) -> dict[str, torch.Tensor]:
    from deepsteg.data import StegoPairDataset

    held = StegoPairDataset(folder, size=32, mode="train", seed=99)
    return {k: torch.stack([held[i][k] for i in range(8)]) for k in ("cover", "secrets")}


def _hiding_loss(model: deepsteg.ImageHider, batch: dict[str, torch.Tensor]) -> float:
    model.train()  # batch statistics, as in training; no grad, so nothing is learnt
    with torch.no_grad():
        return model.training_losses(batch)[1]["hide"]


def test_basic_model_cpu_steps_lower_the_hiding_loss(image_folder: Path, tmp_path: Path) -> None:
    batch = _held_out_batch(image_folder)
    cfg = _cfg("isgan-basic", image_folder, tmp_path / "run", lr=3e-3)  # paper: 1e-4, too slow for 20 steps
    torch.manual_seed(cfg.seed)
    before = _hiding_loss(deepsteg.create_model("isgan-basic"), batch)
    train(cfg, progress=False)
    after = _hiding_loss(deepsteg.create_model("isgan-basic", weights=tmp_path / "run" / "last"), batch)
    assert after < 0.8 * before, (before, after)
    losses = [float(r["loss"]) for r in _rows(tmp_path / "run" / "train.csv")]
    assert len(losses) == 20 and sum(losses[-5:]) < sum(losses[:5])


def test_gan_steps_both_optimisers(image_folder: Path, tmp_path: Path) -> None:
    cfg = _cfg("isgan", image_folder, tmp_path / "run", steps=3)
    torch.manual_seed(cfg.seed)
    init = {k: v.clone() for k, v in deepsteg.create_model("isgan").state_dict().items()}
    train(cfg, progress=False)
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert set(state["optimizers"]) == {"main", "critic"}
    assert state["optimizers"]["critic"]["param_groups"][0]["lr"] == pytest.approx(1e-3)
    weights = state["model"]
    for prefix in ("critic.", "encoder.", "decoder."):
        changed = [k for k in weights if k.startswith(prefix) and k.endswith("weight")
                   and not torch.equal(weights[k], init[k])]
        assert changed, prefix
    rows = _rows(tmp_path / "run" / "train.csv")
    assert len(rows) == 3
    for r in rows:
        for k in ("loss", "l_cover", "l_secret", "l_adv", "l_critic", "critic_acc"):
            assert math.isfinite(float(r[k])), (k, r)


# --- CLI --------------------------------------------------------------------------------------------------------
def test_cli_colour_secret_becomes_grey_and_reveal_writes_grey(tmp_path: Path, make_png) -> None:
    torch.manual_seed(0)
    weights = tmp_path / "w"
    save_pretrained(deepsteg.create_model("isgan-basic").eval(), weights)
    cover, secret = make_png("c.png", 29, 37, seed=1), make_png("s.png", 29, 37, seed=2)
    runner = CliRunner()
    r = runner.invoke(app, ["hide", str(cover), str(secret), "-o", str(tmp_path / "stego.png"),
                            "--model", "isgan-basic", "--weights", str(weights), "--device", "cpu"])
    assert r.exit_code == 0, r.output
    assert "converted to grey" in r.stderr
    assert Image.open(tmp_path / "stego.png").mode == "RGB"
    r = runner.invoke(app, ["reveal", str(tmp_path / "stego.png"), "-o", str(tmp_path / "out.png"),
                            "--model", "isgan-basic", "--weights", str(weights)])
    assert r.exit_code == 0, r.output
    out = Image.open(tmp_path / "out.png")
    assert out.mode == "L" and out.size == (37, 29)


def test_gan_run_resumes_exactly(image_folder: Path, tmp_path: Path) -> None:
    from deepsteg.train import Trainer

    # label_flip_prob 0.5: the critic's random label flips matter every step, so an RNG that drifts across the
    # resume (e.g. a DataLoader iterator drawing from the global generator) would make this test fail
    over = {"label_flip_prob": 0.5}
    train(_cfg("isgan", image_folder, tmp_path / "straight", steps=3, overrides=over), progress=False)
    chunked = _cfg("isgan", image_folder, tmp_path / "chunked", steps=3, overrides=over)
    Trainer(chunked, stop_after_steps=2, progress=False).run()
    Trainer(chunked, resume=True, progress=False).run()
    a = torch.load(tmp_path / "straight" / "checkpoint.pt", weights_only=True)
    b = torch.load(tmp_path / "chunked" / "checkpoint.pt", weights_only=True)
    assert a["model"].keys() == b["model"].keys()
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k


def test_training_validation_handles_grey_secrets(image_folder, tmp_path) -> None:  # noqa: ANN001
    """Validation during training converts colour validation secrets to grey, as evaluate does."""
    from deepsteg.train import TrainConfig, train

    cfg = TrainConfig(model="isgan-basic", data=[str(image_folder)], val=[str(image_folder)], out=str(tmp_path / "r"),
                      steps=2, batch_size=2, crop=32, val_crop=32, val_every=2, log_every=1)
    result = train(cfg, progress=False)
    assert result["secret_psnr"] > 0 and result["cover_psnr"] > 0


def test_gan_model_starts_from_the_basic_models_weights(tmp_path: Path) -> None:
    """`deepsteg train isgan --init RUN/last` of an isgan-basic run: the generator is the basic model's, the
    steganalyser is fresh; only a sibling built by the same class is accepted, and only where training asks."""
    torch.manual_seed(3)
    basic = deepsteg.create_model("isgan-basic", weight_decay=1e-5)
    save_pretrained(basic, tmp_path / "basic")
    gan = deepsteg.create_model("isgan", weights=tmp_path / "basic", sibling_ok=True)
    assert gan.config.gan and gan.critic is not None
    assert gan.config.weight_decay == 1e-5  # the saved configuration, except what tells the entries apart
    for k, v in basic.state_dict().items():
        assert torch.equal(gan.state_dict()[k], v), k
    with pytest.raises(ModelError, match="weights are for 'isgan-basic'"):
        deepsteg.create_model("isgan", weights=tmp_path / "basic")  # outside training: the exact model only
    save_pretrained(deepsteg.create_model("stegnet"), tmp_path / "stegnet")
    with pytest.raises(ModelError, match="weights are for 'stegnet'"):
        deepsteg.create_model("isgan", weights=tmp_path / "stegnet", sibling_ok=True)
    save_pretrained(gan, tmp_path / "gan")  # the other way round would drop the critic: refused
    with pytest.raises(ModelError, match="do not match"):
        deepsteg.create_model("isgan-basic", weights=tmp_path / "gan", sibling_ok=True)


def test_cover_warmup_ramps_the_cover_loss_in() -> None:
    """``cover_warmup``: at the start the generator minimises the secret loss alone; from the end of the warm-up on,
    eq. 12 exactly; half-way, half the cover loss."""

    class Ctx:
        step, stage = 0, "main"

        def __init__(self, progress: float) -> None:
            self.stage_progress = progress

        def optimize(self, name: str, loss: torch.Tensor) -> None:
            self.loss = float(loss)

    torch.manual_seed(0)
    model = deepsteg.create_model("isgan-basic", cover_warmup=0.2, residual=False)  # a visible cover loss
    batch = {"cover": torch.rand(2, 3, 32, 32), "secrets": torch.rand(2, 1, 3, 32, 32)}
    for progress, weight in [(0.0, 0.0), (0.1, 0.5), (0.2, 1.0), (0.9, 1.0)]:
        model.eval()  # BN in eval mode: the same forward pass each time
        ctx = Ctx(progress)
        logs = model.training_step(batch, ctx)
        assert logs["l_cover"] > 0.01
        assert ctx.loss == pytest.approx(weight * logs["l_cover"] + 0.85 * logs["l_secret"], rel=1e-5), progress


def test_mse_pretraining_loss() -> None:
    """``loss="mse"`` (the pre-training stage): eq. 12 with plain MSE terms, on the same stego and reveal as the
    paper's mixed loss; an unknown loss name is refused."""
    torch.manual_seed(0)
    model = deepsteg.create_model("isgan-basic", loss="mse", residual=False).eval()
    batch = {"cover": torch.rand(2, 3, 32, 32), "secrets": torch.rand(2, 1, 3, 32, 32)}
    with torch.no_grad():
        _, seen, t = model._generator_pass(batch)
        stego = model.hide(batch["cover"], model.as_secret(batch["secrets"][:, 0]))
        revealed = model.reveal(seen)[0]
    secret = model.as_secret(batch["secrets"][:, 0])
    assert float(t["l_cover"]) == pytest.approx(float(torch.mean((stego - batch["cover"]) ** 2)), rel=1e-5)
    assert float(t["l_secret"]) == pytest.approx(float(torch.mean((revealed - secret) ** 2)), rel=1e-5)
    assert float(t["hide"]) == pytest.approx(float(t["l_cover"]) + 0.85 * float(t["l_secret"]), rel=1e-6)
    mixed = deepsteg.create_model("isgan-basic", residual=False).eval()
    mixed.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert float(mixed._generator_pass(batch)[2]["l_cover"]) != pytest.approx(float(t["l_cover"]), rel=1e-2)
    with pytest.raises(ValueError, match="loss must be"):
        deepsteg.create_model("isgan-basic", loss="l1")
