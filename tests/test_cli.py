"""The command line: round trips at odd sizes, the evaluate JSON contract, and one clear line per user error."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

import deepsteg
from deepsteg.cli import app
from deepsteg.zoo import save_pretrained
from tests.conftest import natural_like

runner = CliRunner()


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained (but deterministic) StegoPNet saved as a weights folder: fast, and the CLI path is the same."""
    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("w") / "stegopnet"
    save_pretrained(deepsteg.create_model("stegopnet").eval(), d)
    return d


def _run(*args: str):  # noqa: ANN202
    return runner.invoke(app, [str(a) for a in args])


def _one_line_error(result, pattern: str) -> None:  # noqa: ANN001
    assert result.exit_code == 1, result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("deepsteg: error:"), result.stderr
    assert pattern in lines[0], lines[0]
    assert "Traceback" not in result.output


def test_hide_reveal_round_trip_at_odd_size(tmp_path: Path, make_png, weights: Path) -> None:
    cover, secret = make_png("c.png", 29, 37, seed=1), make_png("s.png", 29, 37, seed=2)
    r = _run("hide", cover, secret, "-o", tmp_path / "stego.png", "--weights", weights, "--device", "cpu",
             "--refine", "0")  # the network alone: compared with the library's hide below
    assert r.exit_code == 0, r.output
    assert "cover PSNR" in r.stdout
    stego = Image.open(tmp_path / "stego.png")
    assert stego.size == (37, 29) and stego.mode == "RGB"
    r = _run("reveal", tmp_path / "stego.png", "-o", tmp_path / "out.png", "--weights", weights)
    assert r.exit_code == 0, r.output
    assert Image.open(tmp_path / "out.png").size == (37, 29)
    # the CLI's stego is the library's, rounded (equal up to 1 LSB: the CLI runs channels_last convolutions)
    m = deepsteg.create_model("stegopnet", weights=weights)
    with torch.no_grad():
        want = deepsteg.quantize(m.hide(deepsteg.read_image(cover), deepsteg.read_image(secret)))
    assert torch.allclose(deepsteg.read_image(tmp_path / "stego.png"), want, atol=1.5 / 255)


def test_secret_of_other_size_is_resized_with_notice_or_refused(tmp_path: Path, make_png, weights: Path) -> None:
    cover, secret = make_png("c.png", 32, 32), make_png("s.png", 20, 44, seed=3)
    r = _run("hide", cover, secret, "-o", tmp_path / "a.png", "--weights", weights)
    assert r.exit_code == 0 and "note: secret s.png resized" in r.stderr
    r = _run("hide", cover, secret, "-o", tmp_path / "b.png", "--weights", weights, "--fit", "error")
    _one_line_error(r, "--fit resize")
    assert not (tmp_path / "b.png").exists()


def test_bad_inputs_give_one_clear_line_and_write_nothing(tmp_path: Path, make_png, weights: Path) -> None:
    good = make_png("good.png", 32, 32)
    out = tmp_path / "out.png"
    (tmp_path / "text.png").write_text("not an image at all")
    data = (tmp_path / "good.png").read_bytes()
    (tmp_path / "trunc.png").write_bytes(data[: len(data) // 2])
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(tmp_path / "tiny.png")
    from tests.test_io import _raw_png

    (tmp_path / "bomb.png").write_bytes(_raw_png(300_000, 300_000, 8, 2, None))
    cases = [
        (tmp_path / "missing.png", "no such file"),
        (tmp_path / "text.png", "not an image"),
        (tmp_path / "trunc.png", "truncated"),
        (tmp_path / "tiny.png", "at least 16×16"),
        (tmp_path / "bomb.png", "limit"),
    ]
    for bad, msg in cases:
        _one_line_error(_run("hide", bad, good, "-o", out, "--weights", weights), msg)
        _one_line_error(_run("hide", good, bad, "-o", out, "--weights", weights), msg)
        assert not out.exists()
    _one_line_error(_run("reveal", tmp_path / "trunc.png", "-o", out, "--weights", weights), "truncated")
    _one_line_error(_run("hide", good, good, "-o", tmp_path / "nodir" / "o.png", "--weights", weights),
                    "does not exist")
    _one_line_error(_run("hide", good, good, "-o", good, "--weights", weights), "refusing to overwrite")
    _one_line_error(_run("hide", good, good, "-o", tmp_path / "o.jpg", "--weights", weights), "PNG")
    _one_line_error(_run("hide", good, good, "-o", out, "--model", "nope"), "unknown model")
    _one_line_error(_run("hide", good, good, "-o", "/proc/deepsteg.png", "--weights", weights), "/proc")
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temp files left


def test_force_allows_overwriting_an_input(tmp_path: Path, make_png, weights: Path) -> None:
    cover, secret = make_png("c.png", 32, 32, seed=1), make_png("s.png", 32, 32, seed=2)
    before = cover.read_bytes()
    r = _run("hide", cover, secret, "-o", cover, "--weights", weights, "--force")
    assert r.exit_code == 0 and cover.read_bytes() != before


def test_evaluate_json_contract(image_folder: Path, tmp_path: Path, weights: Path) -> None:
    out = tmp_path / "e.json"
    r = _run("evaluate", "--data", image_folder, "--size", "32", "--json", out, "--weights", weights,
             "--model", "stegopnet")
    assert r.exit_code == 0, r.output
    res = json.loads(out.read_text())
    keys = ["model", "n", "cover_psnr", "cover_ssim", "secret_psnr", "secret_ssim", "float_cover_psnr",
            "float_secret_psnr"]
    assert list(res)[: len(keys)] == keys
    assert res["model"] == "stegopnet" and res["n"] == 6
    rows = res["images"]
    assert [row["cover"] for row in rows] == [f"im{i}.png" for i in range(6)]
    assert [row["secrets"][0] for row in rows] == [f"im{(i + 3) % 6}.png" for i in range(6)]
    assert res["cover_psnr"] == pytest.approx(sum(row["cover_psnr"] for row in rows) / 6)
    assert "mean of 6" in r.stdout


def test_evaluate_matches_the_library(image_folder: Path, weights: Path) -> None:
    """The file round trip of evaluate equals quantize(): "after PNG save" means one thing everywhere."""
    from deepsteg.data import StegoPairDataset
    from deepsteg.evaluate import evaluate_folder
    from deepsteg.train.trainer import evaluate_batch

    m = deepsteg.create_model("stegopnet", weights=weights)
    res = evaluate_folder(m, image_folder, size=32)
    val = StegoPairDataset(image_folder, size=32, mode="val")
    with torch.no_grad():
        for i, row in enumerate(res.rows):
            ref = evaluate_batch(m, val[i]["cover"][None], val[i]["secrets"][None])
            assert row["cover_psnr"] == pytest.approx(float(ref["cover_psnr"]), abs=1e-4)
            assert row["secret_psnr"] == pytest.approx(float(ref["secret_psnr"]), abs=1e-4)


def test_models_sample_and_train_commands(image_folder: Path, tmp_path: Path) -> None:
    r = _run("models")
    assert r.exit_code == 0 and "stegopnet" in r.stdout and "stegopnet-noppm" in r.stdout
    lsb3_row = [ln for ln in r.stdout.splitlines() if ln.startswith("│ lsb3 ")][0]
    assert lsb3_row.split("│")[2].strip() == "none needed"
    r = _run("sample", "cover")
    assert r.exit_code == 0 and Path(r.stdout.strip()).is_file()
    _one_line_error(_run("sample", "nope"), "no sample")
    run = tmp_path / "run"
    common = ["--data", image_folder, "--val", image_folder, "--out", run, "--steps", "3", "--batch-size", "2",
              "--crop", "32", "--val-crop", "32", "--val-every", "3", "--set", "use_ppm=false"]
    r = _run("train", "stegopnet", *common, "--max-minutes", "1e-6", "--threads", "1")  # budget: stop at step 1
    assert r.exit_code == 0, r.output
    assert torch.load(run / "checkpoint.pt", weights_only=True)["step"] == 1
    assert json.loads((run / "train_config.json").read_text())["threads"] == 1  # so a model card can repeat it
    assert json.loads((run / "last" / "config.json").read_text())["config"]["use_ppm"] is False
    _one_line_error(_run("train", "stegopnet", *common), "already holds a run")
    _one_line_error(_run("train", "stegopnet", *common[:-2], "--resume"), "different settings")
    r = _run("train", "stegopnet", *common, "--resume", "--threads", "2")  # a resource, not a setting: may change
    assert r.exit_code == 0, r.output
    assert torch.load(run / "checkpoint.pt", weights_only=True)["step"] == 3
    assert json.loads(r.stdout.strip().splitlines()[-1])["cover_psnr"] > 0


def test_real_process_error_has_no_traceback(tmp_path: Path) -> None:
    p = subprocess.run([sys.executable, "-m", "deepsteg", "hide", str(tmp_path / "x.png"), str(tmp_path / "y.png"),
                        "-o", str(tmp_path / "o.png")], capture_output=True, text=True, timeout=120)
    assert p.returncode == 1
    assert p.stderr.strip().count("\n") == 0 and "no such file" in p.stderr and "Traceback" not in p.stderr


def test_weights_folder_names_its_model(tmp_path: Path, make_png) -> None:
    d = tmp_path / "noppm"
    save_pretrained(deepsteg.create_model("stegopnet-noppm").eval(), d)
    c, s = make_png("c.png", 32, 32, seed=1), make_png("s.png", 32, 32, seed=2)
    r = _run("hide", c, s, "-o", tmp_path / "o.png", "--weights", d)
    assert r.exit_code == 0 and "from stegopnet-noppm" in r.stdout


def test_train_and_evaluate_bad_inputs(image_folder: Path, tmp_path: Path, weights: Path) -> None:
    run = tmp_path / "run"
    base = ["train", "stegopnet", "--data", image_folder, "--out", run]
    _one_line_error(_run(*base, "--crop", "40"), "multiples of 16")
    _one_line_error(_run(*base, "--val-every", "0"), "val_every")
    _one_line_error(_run(*base, "--schedule", "linear"), "schedule")
    _one_line_error(_run(*base, "--device", "cuda:0" if not torch.cuda.is_available() else "nonsense"), "")
    _one_line_error(_run("train", "stegopnet", "--data", tmp_path / "missing", "--out", run), "no such")
    _one_line_error(_run("train", "nope", "--data", image_folder, "--out", run), "unknown model")
    assert not run.exists()
    _one_line_error(_run("evaluate", "--data", image_folder, "--limit", "0", "--weights", weights), "--limit")
    _one_line_error(_run("evaluate", "--data", tmp_path / "missing", "--weights", weights), "no such directory")
    _one_line_error(_run("evaluate", "--data", image_folder, "--json", tmp_path / "x.txt", "--weights", weights),
                    ".json")


def test_usage_errors_are_one_line_too(tmp_path: Path) -> None:
    p = subprocess.run([sys.executable, "-m", "deepsteg", "hide", str(tmp_path / "x.png")], capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "Missing" in p.stderr


def test_passphrase_variable_serves_files_and_keyed_models_not_other_image_models(
        tmp_path: Path, make_png, weights: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """DEEPSTEG_PASSPHRASE, exported for files, must not break image hiding with a model that takes no key (it
    once did: the variable was read as --passphrase); an explicit --passphrase there is still refused."""
    cover, secret = make_png("c.png", 32, 32, seed=1), make_png("s.png", 32, 32, seed=2)
    monkeypatch.setenv("DEEPSTEG_PASSPHRASE", "correct horse")
    r = _run("hide", cover, secret, "-o", tmp_path / "st.png", "--weights", weights)
    assert r.exit_code == 0, r.output
    r = _run("reveal", tmp_path / "st.png", "-o", tmp_path / "rev.png", "--weights", weights)
    assert r.exit_code == 0 and (tmp_path / "rev.png").is_file(), r.output
    r = _run("hide", cover, secret, "--model", "lsb3", "-o", tmp_path / "l.png")
    assert r.exit_code == 0, r.output
    r = _run("reveal", tmp_path / "l.png", "--model", "lsb3", "-o", tmp_path / "lrev.png")
    assert r.exit_code == 0, r.output
    _one_line_error(_run("hide", cover, secret, "--model", "lsb3", "-o", tmp_path / "x.png", "--passphrase", "p"),
                    "takes no passphrase")
    # … and it is the passphrase of hidden text: revealed with it, not found without it
    r = _run("hide", cover, "--text", "meet at dawn", "--model", "lsb-bits", "-o", tmp_path / "t.png")
    assert r.exit_code == 0 and "encrypted" in r.stdout, r.output
    r = _run("reveal", tmp_path / "t.png", "--model", "lsb-bits", "-o", "-")
    assert r.exit_code == 0 and r.stdout_bytes == b"meet at dawn", r.output
    monkeypatch.delenv("DEEPSTEG_PASSPHRASE")
    _one_line_error(_run("reveal", tmp_path / "t.png", "--model", "lsb-bits", "-o", "-"), "no message found")


def test_output_names_near_the_filesystem_limit_are_written(tmp_path: Path, make_png, weights: Path) -> None:
    """The atomic writer's temporary name is longer than the output's; a legal 250-byte name must still work."""
    cover, secret = make_png("c.png", 32, 32, seed=1), make_png("s.png", 32, 32, seed=2)
    out = tmp_path / ("é" * 60 + "y" * 126 + ".png")  # 250 bytes in UTF-8
    assert len(out.name.encode()) == 250
    r = _run("hide", cover, secret, "-o", out, "--weights", weights)
    assert r.exit_code == 0 and out.is_file(), r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["c.png", "s.png", out.name])  # no temp files


def test_evaluate_keeps_stegos_across_filesystems(image_folder: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """``keep_dir`` on another filesystem than TMPDIR (a tmpfs /tmp is common): the stegos are moved, not renamed
    (os.replace failed with EXDEV there)."""
    import os
    import tempfile

    from deepsteg.evaluate import evaluate_folder

    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK) and shm.stat().st_dev != tmp_path.stat().st_dev):
        pytest.skip("no second writable filesystem here")
    monkeypatch.setattr(tempfile, "tempdir", str(shm))
    keep = tmp_path / "keep"
    keep.mkdir()
    res = evaluate_folder(deepsteg.create_model("lsb3"), image_folder, size=32, keep_dir=keep)
    assert len(res.rows) == 6 and sorted(p.name for p in keep.iterdir()) == [f"{i}.png" for i in range(6)]


def test_evaluate_skips_an_unreadable_file_and_pairs_the_rest_as_without_it(image_folder: Path) -> None:
    """One broken file in a folder of photos once aborted evaluate partway (after minutes of work). It is now
    skipped with a notice, and the figures are exactly those of the folder without it."""
    from deepsteg.evaluate import evaluate_folder

    model = deepsteg.create_model("lsb3")
    clean = evaluate_folder(model, image_folder, size=32)
    (image_folder / "im2b.png").write_bytes(b"\x89PNG\r\n\x1a\n but nothing after the signature")
    with pytest.warns(deepsteg.io.DeepstegNotice, match=r"im2b\.png: .*; skipped"):
        res = evaluate_folder(model, image_folder, size=32)
    assert [p.name for p in res.files] == [f"im{i}.png" for i in range(6)]
    assert [(r["cover"], r["secrets"], r["secret_psnr"]) for r in res.rows] == \
        [(r["cover"], r["secrets"], r["secret_psnr"]) for r in clean.rows]
    r = _run("evaluate", "--model", "lsb3", "--data", image_folder, "--size", "32")
    assert r.exit_code == 0 and "im2b.png" in r.stderr and "skipped" in r.stderr, r.output


def test_evaluate_refuses_too_few_images_for_a_multi_secret_model(tmp_path: Path, make_png) -> None:
    """isn-4 on 3 images would have to hide the cover in itself: a clear error instead of a silent, wrong figure."""
    from deepsteg.evaluate import evaluate_folder

    for i in range(3):
        make_png(f"{i}.png", 32, 32, seed=i, folder=tmp_path / "few")
    with pytest.raises(deepsteg.ImageReadError, match="at least 5 images"):
        evaluate_folder(deepsteg.create_model("isn-4", blocks=2, growth=8), tmp_path / "few", size=32)


def test_empty_passphrase_is_refused_not_taken_as_none(tmp_path: Path, make_png) -> None:
    """`--passphrase "$P"` with P unset once hid the text unencrypted and readable by anyone, with exit 0."""
    cover = make_png("c.png", 32, 32, seed=1)
    r = _run("hide", cover, "--text", "top secret", "--model", "lsb-bits", "--passphrase", "", "-o", tmp_path / "s.png")
    _one_line_error(r, "--passphrase is empty")
    assert not (tmp_path / "s.png").exists()
    _one_line_error(_run("reveal", cover, "--model", "lsb-bits", "--passphrase", "", "-o", "-"),
                    "--passphrase is empty")


def test_plain_reveal_finds_a_file_from_any_message_model_and_never_falls_back_silently(
        tmp_path: Path, make_png, weights: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --model, a file hidden with lsb-bits is found too (it once fell through to the image model, which
    wrote a noise image with exit 0); when nothing is found, the image reveal says so."""
    cover = make_png("c.png", 40, 48, seed=1)
    (tmp_path / "f.bin").write_bytes(b"\x00\x01payload\xff")
    assert _run("hide", cover, "--file", tmp_path / "f.bin", "--model", "lsb-bits", "-o", tmp_path / "s.png"
                ).exit_code == 0
    r = _run("reveal", tmp_path / "s.png", "-o", tmp_path / "back.bin")
    assert r.exit_code == 0 and (tmp_path / "back.bin").read_bytes() == b"\x00\x01payload\xff", r.output
    # hidden with a passphrase, revealed to a .png name without it: an image reveal follows, with a notice
    assert _run("hide", cover, "--file", tmp_path / "f.bin", "--model", "lsb-bits", "--passphrase", "pw", "-o",
                tmp_path / "e.png").exit_code == 0
    r = _run("reveal", tmp_path / "e.png", "-o", tmp_path / "img.png")
    assert "no hidden file found with sftn or lsb-bits" in r.stderr and "needs --passphrase" in r.stderr, r.output
    _one_line_error(_run("reveal", tmp_path / "e.png", "-o", tmp_path / "img.jpg"), "name -o OUT.png")


def test_passphrase_variable_does_not_lock_out_a_plain_file(tmp_path: Path, make_png,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """With DEEPSTEG_PASSPHRASE exported, a file hidden without a passphrase stays readable (it was 'no message
    found'), and `capacity` counts the encryption overhead that `hide` will add."""
    cover = make_png("c.png", 64, 64, seed=1)
    assert _run("hide", cover, "--text", "plain", "--model", "lsb-bits", "-o", tmp_path / "p.png").exit_code == 0
    monkeypatch.setenv("DEEPSTEG_PASSPHRASE", "pw")
    r = _run("reveal", tmp_path / "p.png", "--model", "lsb-bits", "-o", "-")
    assert r.exit_code == 0 and r.stdout_bytes == b"plain", r.output
    r = _run("capacity", cover, "--model", "lsb-bits")
    n = int(r.stdout.split("lsb-bits: ")[1].split(" bytes")[0])
    assert "DEEPSTEG_PASSPHRASE" in r.stdout
    (tmp_path / "full.bin").write_bytes(np.random.default_rng(0).bytes(n))
    (tmp_path / "over.bin").write_bytes(np.random.default_rng(0).bytes(n + 1))
    assert _run("hide", cover, "--file", tmp_path / "full.bin", "--model", "lsb-bits", "-o", tmp_path / "f.png"
                ).exit_code == 0
    _one_line_error(_run("hide", cover, "--file", tmp_path / "over.bin", "--model", "lsb-bits", "-o",
                         tmp_path / "o.png"), "holds at most")


def test_capacity_is_zero_for_a_cover_hide_refuses(tmp_path: Path, make_png) -> None:
    r = _run("capacity", make_png("thin.png", 10, 200, seed=1), "--model", "sftn")
    assert r.exit_code == 0 and "sftn: 0 bytes" in r.stdout and "at least 16×16" in r.stdout, r.output


def test_non_utf8_text_and_passphrase_keep_their_bytes(tmp_path: Path, make_png) -> None:
    """Bytes that are not UTF-8 on the command line (Python hands them over as surrogate escapes) crashed with
    'internal error'; the text's exact bytes come back, and the passphrase works as given."""
    cover = make_png("c.png", 64, 64, seed=1)
    text, pw = b"abc\xff".decode("utf-8", "surrogateescape"), b"pw\xfe".decode("utf-8", "surrogateescape")
    r = _run("hide", cover, "--text", text, "--passphrase", pw, "--model", "lsb-bits", "-o", tmp_path / "s.png")
    assert r.exit_code == 0, r.output
    r = _run("reveal", tmp_path / "s.png", "--passphrase", pw, "--model", "lsb-bits", "-o", "-")
    assert r.exit_code == 0 and r.stdout_bytes == b"abc\xff", r.output


def test_closed_pipe_is_quiet() -> None:
    """`deepsteg card … | head -1` ended in 'internal error' (exit 3); now it stops quietly with 141, as a shell
    reports any writer whose reader went away. The read end is closed before the process writes: always EPIPE."""
    p = subprocess.Popen([sys.executable, "-m", "deepsteg", "card", "--model", "stegopnet"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    p.stdout.close()  # type: ignore[union-attr]
    err = p.stderr.read().decode()  # type: ignore[union-attr]
    assert p.wait(timeout=120) == 141 and err == "", err


def test_evaluate_message_model_counts_a_cover_it_cannot_carry_and_goes_on(
        image_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One cover too hard for the model (hide_bytes refuses it after its verify pass) aborted the whole evaluate,
    without naming the file; now it is that row's miss (payload_exact 0), with a notice, and the others count."""
    import deepsteg.payload
    from deepsteg.evaluate import evaluate_folder
    from deepsteg.io import DeepstegNotice

    real, calls = deepsteg.payload.hide_bytes, []

    def flaky(*a, **k):  # noqa: ANN002, ANN003, ANN202
        calls.append(1)
        if len(calls) == 2:
            raise deepsteg.payload.PayloadError("this cover is too hard for lsb-bits")
        return real(*a, **k)

    monkeypatch.setattr(deepsteg.payload, "hide_bytes", flaky)
    with pytest.warns(DeepstegNotice, match="im1.png: a full load"):
        res = evaluate_folder(deepsteg.create_model("lsb-bits"), image_folder, size=32)
    assert [r["payload_exact"] for r in res.rows] == [1.0, 0.0, 1.0, 1.0, 1.0, 1.0]


def test_hidden_file_is_read_up_to_the_limit(tmp_path: Path, make_png, monkeypatch: pytest.MonkeyPatch) -> None:
    """`--file /dev/zero` read until memory ran out; now reading stops one byte past the container's limit."""
    import deepsteg.payload.container

    monkeypatch.setattr(deepsteg.payload.container, "MAX_SIZE", 1 << 20)
    cover = make_png("c.png", 32, 32, seed=1)
    _one_line_error(_run("hide", cover, "--file", "/dev/zero", "-o", tmp_path / "s.png"), "limit of a hidden file")
    _one_line_error(_run("hide", cover, "--file", tmp_path, "-o", tmp_path / "s.png"), "is a directory")
    assert not (tmp_path / "s.png").exists()
