"""Refinement (deepsteg.refine): the stego is optimised for the model's own revealer — the receiver's reveal of the
8-bit PNG gets better, the cover stays within the network's distortion, nothing is ever worse than the network's
stego, and models that keep the cover's colour (ISGAN) keep it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import deepsteg
from deepsteg.cli import app
from deepsteg.colour import rgb_to_ycbcr
from deepsteg.errors import ModelError
from deepsteg.io import quantize, read_image, write_png
from deepsteg.metrics import mse, psnr
from deepsteg.refine import refine
from deepsteg.zoo import has_pretrained
from tests.conftest import natural_like


def _img(h: int, w: int, seed: int) -> torch.Tensor:
    return torch.from_numpy(natural_like(h, w, seed)).permute(2, 0, 1).float()[None] / 255


needs_stegopnet = pytest.mark.skipif(not has_pretrained("stegopnet"), reason="needs the shipped stegopnet weights")


@needs_stegopnet
def test_refined_stego_reveals_better_through_a_png_with_the_same_cover_distortion(tmp_path: Path) -> None:
    model = deepsteg.create_model("stegopnet", pretrained=True).eval()
    cover, secret = _img(64, 80, 1), _img(64, 80, 2)
    with torch.no_grad():
        plain = quantize(model.hide(cover, secret))
    flags = [p.requires_grad for p in model.parameters()]
    stego, info = refine(model, cover, [secret], steps=30)
    assert [p.requires_grad for p in model.parameters()] == flags  # the model is left as it was
    assert torch.equal(stego, quantize(stego))  # already on the 8-bit grid
    write_png(stego[0], tmp_path / "s.png")
    received = read_image(tmp_path / "s.png")[None]
    assert torch.equal(received, stego)
    with torch.no_grad():
        before = float(psnr(quantize(model.reveal(plain)[0]), secret))
        after = float(psnr(quantize(model.reveal(received)[0]), secret))
    assert after > before + 1.0, (before, after)
    assert abs(after - info["secret_psnr_after"][0]) < 0.2  # the figure refine reports is the receiver's
    # the projection keeps the cover distortion within the network's (to the 8-bit rounding of the projection)
    assert float(mse(stego, cover)) <= float(mse(plain, cover)) * 1.05


@needs_stegopnet
def test_zero_steps_is_the_network_stego_and_tiles_refine_like_the_receiver() -> None:
    model = deepsteg.create_model("stegopnet", pretrained=True).eval()
    cover, secret = _img(48, 96, 3), _img(48, 96, 4)
    with torch.no_grad():
        plain = quantize(model.hide(cover, secret, tile=32))
    same, _ = refine(model, cover, [secret], steps=0, tile=32)
    assert torch.equal(same, plain)
    tiled, info = refine(model, cover, [secret], steps=20, tile=32)  # 2×3 tiles, each with its 64-px context
    with torch.no_grad():
        before = float(psnr(quantize(model.reveal(plain, tile=32)[0]), secret))
        after = float(psnr(quantize(model.reveal(tiled, tile=32)[0]), secret))
    assert after > before + 0.5, (before, after)


@pytest.mark.skipif(not has_pretrained("isgan"), reason="needs the shipped isgan weights")
def test_isgan_refinement_changes_the_luma_only() -> None:
    model = deepsteg.create_model("isgan", pretrained=True).eval()
    cover, secret = _img(48, 48, 5), model.as_secret(_img(48, 48, 6))
    with torch.no_grad():
        plain = quantize(model.hide(cover, secret))
    stego, info = refine(model, cover, [secret], steps=15)
    assert info["secret_psnr_after"][0] > info["secret_psnr_before"][0]
    chroma = (rgb_to_ycbcr(stego)[:, 1:] - rgb_to_ycbcr(cover)[:, 1:]).abs().max()
    chroma_plain = (rgb_to_ycbcr(plain)[:, 1:] - rgb_to_ycbcr(cover)[:, 1:]).abs().max()
    assert chroma <= chroma_plain + 1 / 255  # only 8-bit rounding moves Cb/Cr, as for the network's own stego


def test_models_without_a_gradient_refuse() -> None:
    model = deepsteg.create_model("lsb3")
    with pytest.raises(ModelError, match="cannot be refined"):
        refine(model, _img(32, 32, 1), [_img(32, 32, 2)], steps=3)


@needs_stegopnet
def test_cli_hide_refine_reports_the_receivers_figure(tmp_path: Path, make_png) -> None:  # noqa: ANN001
    cover = make_png("c.png", 64, 64, seed=7)
    secret = make_png("s.png", 64, 64, seed=8)
    runner = CliRunner()
    r = runner.invoke(app, ["hide", str(cover), str(secret), "-o", str(tmp_path / "st.png"), "--refine", "20"])
    assert r.exit_code == 0, r.output
    assert "refined 20 steps" in r.stdout and "revealed secret" in r.stdout
    r0 = runner.invoke(app, ["hide", str(cover), str(secret), "-o", str(tmp_path / "st0.png"), "--refine", "0"])
    assert r0.exit_code == 0, r0.output
    rv = [runner.invoke(app, ["reveal", str(tmp_path / f), "-o", str(tmp_path / f"r{f}"), "--model", "stegopnet"])
          for f in ("st.png", "st0.png")]
    assert all(x.exit_code == 0 for x in rv), [x.output for x in rv]
    s = read_image(secret)
    got = [float(psnr(read_image(tmp_path / f"r{f}"), s)) for f in ("st.png", "st0.png")]
    assert got[0] > got[1] + 1.0, got
    bad = runner.invoke(app, ["hide", str(cover), str(secret), "-o", str(tmp_path / "x.png"), "--model", "lsb3",
                              "--refine", "5"])
    assert bad.exit_code != 0 and "cannot be refined" in bad.stderr and not (tmp_path / "x.png").exists()


@needs_stegopnet
def test_hide_batch_refine_improves_every_image(tmp_path: Path, make_png) -> None:  # noqa: ANN001
    covers, secrets = tmp_path / "c", tmp_path / "s"
    for i in range(3):
        make_png(f"c{i}.png", 48, 64, seed=20 + i, folder=covers)
        make_png(f"s{i}.png", 48, 64, seed=30 + i, folder=secrets)
    runner = CliRunner()
    for steps, out in (("0", "plain"), ("15", "refined")):
        r = runner.invoke(app, ["hide-batch", str(covers), str(secrets), "-o", str(tmp_path / out),
                                "--model", "stegopnet", "--refine", steps, "--batch-size", "2"])
        assert r.exit_code == 0, r.output
    assert "revealed secret" in r.stdout and "(refined)" in r.stdout
    model = deepsteg.create_model("stegopnet", pretrained=True).eval()
    for i in range(3):
        s = read_image(secrets / f"s{i}.png")[None]
        with torch.no_grad():
            got = [float(psnr(quantize(model.reveal(read_image(tmp_path / out / f"c{i}.png")[None])[0]), s))
                   for out in ("plain", "refined")]
        assert got[1] > got[0] + 0.5, (i, got)


@needs_stegopnet
def test_bench_refine_rows_sit_beside_their_model(image_folder: Path, tmp_path: Path) -> None:
    import json

    out = tmp_path / "bench"
    base = ["bench", "--data", str(image_folder), "--out", str(out), "--size", "32", "--features", "none",
            "--detectors", "chi2", "--device", "cpu"]
    runner = CliRunner()
    r = runner.invoke(app, [*base, "--models", "stegopnet,lsb3", "--deep", "none"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, [*base, "--models", "stegopnet", "--refine", "10", "--update", "--deep", "xunet"])
    assert r.exit_code == 0, r.output  # deep settings do not apply to refined rows
    rows = json.loads((out / "results.json").read_text())["models"]
    assert [m["model"] for m in rows] == ["stegopnet", "stegopnet --refine 10", "lsb3"]
    assert rows[1]["quality"]["secret_psnr"] > rows[0]["quality"]["secret_psnr"]
    assert rows[1]["trained"] == {} and "chi2" in rows[1]["classical"]
    assert "`stegopnet --refine 10`" in (out / "report.md").read_text()
    bad = runner.invoke(app, [*base, "--models", "lsb3", "--refine", "5", "--update"])
    assert bad.exit_code == 1 and "cannot be refined" in bad.stderr


@needs_stegopnet
def test_ssim_weight_trades_reveal_error_for_cover_structure() -> None:
    from deepsteg.metrics import ssim

    model = deepsteg.create_model("stegopnet", pretrained=True).eval()
    cover, secret = _img(64, 64, 9), _img(64, 64, 10)
    plain, _ = refine(model, cover, [secret], steps=20)
    shaped, _ = refine(model, cover, [secret], steps=20, ssim_weight=1.0)
    assert float(ssim(shaped, cover)) > float(ssim(plain, cover))


@needs_stegopnet
def test_cli_auto_refines_small_images_and_says_when_it_does_not(tmp_path: Path, make_png, monkeypatch) -> None:  # noqa: ANN001
    from deepsteg.models.stegopnet import StegoPNet

    cover, secret = make_png("c.png", 48, 48, seed=11), make_png("s.png", 48, 48, seed=12)
    runner = CliRunner()
    r = runner.invoke(app, ["hide", str(cover), str(secret), "-o", str(tmp_path / "a.png")])  # --refine auto
    assert r.exit_code == 0, r.output
    assert "refined 200 steps" in r.stdout  # a small image: the most steps auto gives
    monkeypatch.setattr(StegoPNet, "refine_auto_pixels", 2 * 48 * 48)  # twice the image: twice 50 steps
    r = runner.invoke(app, ["hide", str(cover), str(secret), "-o", str(tmp_path / "d.png")])
    assert r.exit_code == 0, r.output
    assert "refined 100 steps" in r.stdout
    monkeypatch.setattr(StegoPNet, "refine_auto_pixels", 16 * 16)  # 48² would get under 20 steps
    r = runner.invoke(app, ["hide", str(cover), str(secret), "-o", str(tmp_path / "b.png")])
    assert r.exit_code == 0, r.output
    assert "refined" not in r.stdout and "refines by default" in r.stderr
    bad = runner.invoke(app, ["hide", str(cover), str(secret), "-o", str(tmp_path / "x.png"), "--refine", "many"])
    assert bad.exit_code == 1 and "--refine must be auto or a number" in bad.stderr


def test_auto_steps_spend_about_the_same_time_on_every_size() -> None:
    from deepsteg.refine import AUTO_MAX_STEPS, AUTO_MIN_STEPS, DEFAULT_STEPS, auto_steps

    model = deepsteg.create_model("stegopnet")
    ref = model.refine_auto_pixels
    limit = DEFAULT_STEPS * ref // AUTO_MIN_STEPS  # the largest image auto refines
    assert auto_steps(model, 1, ref) == (DEFAULT_STEPS, limit)  # the reference size: the default
    assert auto_steps(model, 2, ref // 4) == (2 * DEFAULT_STEPS, limit)  # half the pixels, twice the steps
    assert auto_steps(model, 2, ref) == (DEFAULT_STEPS // 2, limit)  # twice the pixels, half the steps
    assert auto_steps(model, 16, 16) == (AUTO_MAX_STEPS, limit)  # capped
    assert auto_steps(model, 1, limit) == (AUTO_MIN_STEPS, limit)  # the largest still refined
    assert auto_steps(model, 1, limit + 1) == (0, limit)  # over it: none
    gpu = DEFAULT_STEPS * model.max_whole_pixels  # a GPU's reference is the one-piece size
    assert auto_steps(model, 1, limit + 1, cuda=True) == (round(gpu / (limit + 1)), gpu // AUTO_MIN_STEPS)
    assert auto_steps(deepsteg.create_model("lsb3"), 16, 16) == (0, 0)  # nothing to refine


@needs_stegopnet
def test_cover_psnr_sets_the_budget_and_every_stego_keeps_it(tmp_path: Path) -> None:
    model = deepsteg.create_model("stegopnet", pretrained=True).eval()
    cover = torch.cat([_img(64, 64, 13), _img(64, 64, 15)])
    secret = torch.cat([_img(64, 64, 14), _img(64, 64, 16)])
    with torch.no_grad():
        plain = quantize(model.hide(cover, secret))
    own = [float(psnr(plain[i], cover[i])) for i in range(2)]
    same, info_same = refine(model, cover, [secret], steps=30)
    looser, info_loose = refine(model, cover, [secret], steps=30, cover_psnr=min(own) - 2.0)
    tighter, info_tight = refine(model, cover, [secret], steps=30, cover_psnr=max(own) + 2.0)
    for i in range(2):
        write_png(looser[i], tmp_path / f"l{i}.png")
        received = read_image(tmp_path / f"l{i}.png")
        assert float(psnr(received, cover[i])) >= min(own) - 2.0  # the floor holds on the PNG
        assert float(psnr(tighter[i], cover[i])) >= max(own) + 2.0
        # more distortion, more secret; less, less — and "before" is the network's stego in all three
        assert info_loose["secret_psnr_after"][i] > info_same["secret_psnr_after"][i] + 0.5
        assert info_tight["secret_psnr_after"][i] < info_same["secret_psnr_after"][i]
        assert info_tight["secret_psnr_before"][i] == pytest.approx(info_same["secret_psnr_before"][i], abs=1e-4)
    with pytest.raises(ModelError, match="needs refinement steps"):
        refine(model, cover, [secret], steps=0, cover_psnr=40.0)
    with pytest.raises(ModelError, match="between 10 and 60"):
        refine(model, cover, [secret], steps=5, cover_psnr=float("nan"))


@needs_stegopnet
def test_cover_psnr_holds_tile_by_tile_and_for_isgan_luma_refinement() -> None:
    model = deepsteg.create_model("stegopnet", pretrained=True).eval()
    cover, secret = _img(48, 96, 3), _img(48, 96, 4)
    with torch.no_grad():
        plain = quantize(model.hide(cover, secret, tile=32))
        network = float(psnr(quantize(model.reveal(plain, tile=32)[0]), secret))
    own = float(psnr(plain, cover))
    for floor in (own - 3.0, own + 2.0):  # 2×3 tiles, each core within the floor → the image within it
        stego, info = refine(model, cover, [secret], steps=15, tile=32, cover_psnr=floor)
        assert float(psnr(stego, cover)) >= floor
        assert info["secret_psnr_before"][0] == pytest.approx(network, abs=1e-3)  # the network's, in both
    if not has_pretrained("isgan"):
        return
    isgan = deepsteg.create_model("isgan", pretrained=True).eval()
    grey = isgan.as_secret(secret[..., :48, :48])
    with torch.no_grad():
        own = float(psnr(quantize(isgan.hide(cover[..., :48, :48], grey)), cover[..., :48, :48]))
    stego, _ = refine(isgan, cover[..., :48, :48], [grey], steps=10, cover_psnr=own + 2.0)
    assert float(psnr(stego, cover[..., :48, :48])) >= own + 2.0


@needs_stegopnet
def test_cover_psnr_out_of_reach_is_a_clear_error() -> None:
    model = deepsteg.create_model("stegopnet", pretrained=True).eval()
    cover = (_img(32, 32, 21) + 0.45 / 255).clamp(0, 1)  # between 8-bit levels: rounding alone costs ~55 dB
    with pytest.raises(ModelError, match="out of reach"):
        refine(model, cover, [_img(32, 32, 22)], steps=3, cover_psnr=58.0)


@needs_stegopnet
def test_cli_cover_psnr(tmp_path: Path, make_png, monkeypatch) -> None:  # noqa: ANN001
    from deepsteg.models.stegopnet import StegoPNet

    cover, secret = make_png("c.png", 48, 64, seed=17), make_png("s.png", 48, 64, seed=18)
    runner = CliRunner()
    base = ["hide", str(cover), str(secret), "--refine", "20"]
    r = runner.invoke(app, [*base, "-o", str(tmp_path / "a.png")])
    assert r.exit_code == 0, r.output
    own = float(psnr(read_image(tmp_path / "a.png"), read_image(cover)))
    r = runner.invoke(app, [*base, "-o", str(tmp_path / "b.png"), "--cover-psnr", f"{own + 3:.2f}"])
    assert r.exit_code == 0, r.output
    assert float(psnr(read_image(tmp_path / "b.png"), read_image(cover))) >= own + 3 - 0.005  # the printed floor
    monkeypatch.setattr(StegoPNet, "refine_auto_pixels", 16 * 16)  # 48² would get under 20 steps
    for extra, msg in ((["--refine", "0", "--cover-psnr", "35"], "needs refinement steps"),
                       (["--cover-psnr", "95"], "between 10 and 60"),
                       (["--cover-psnr", "35"], "give --refine N"),  # auto: over the (patched) size limit
                       (["--model", "lsb3", "--cover-psnr", "35"], "cannot be refined")):
        bad = runner.invoke(app, ["hide", str(cover), str(secret), "-o", str(tmp_path / "x.png"), *extra])
        assert bad.exit_code == 1 and msg in bad.stderr and not (tmp_path / "x.png").exists(), (extra, bad.output)
    bad = runner.invoke(app, ["hide", str(cover), "--text", "hi", "-o", str(tmp_path / "x.png"), "--cover-psnr", "35"])
    assert bad.exit_code == 1 and "apply to secret images" in bad.stderr and not (tmp_path / "x.png").exists()
