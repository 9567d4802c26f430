"""Folder commands: batched, resumable, no half-written files, bad files reported without stopping the run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import deepsteg
from deepsteg.batch import hide_folder, reveal_folder
from deepsteg.cli import app
from deepsteg.zoo import save_pretrained

runner = CliRunner()


@pytest.fixture(scope="module")
def model() -> deepsteg.ImageHider:
    torch.manual_seed(0)
    return deepsteg.create_model("stegopnet").eval()


def _folders(tmp_path: Path, make_png) -> tuple[Path, Path]:
    covers, secrets = tmp_path / "covers", tmp_path / "secrets"
    for i in range(5):
        make_png(f"c{i}.png", 32, 48 if i < 3 else 40, seed=i, folder=covers)
    for i in range(2):
        make_png(f"s{i}.png", 32, 32, seed=10 + i, folder=secrets)
    return covers, secrets


def test_hide_and_reveal_folders_match_single_images(tmp_path: Path, make_png, model) -> None:  # noqa: ANN001
    covers, secrets = _folders(tmp_path, make_png)
    res = hide_folder(model, covers, secrets, tmp_path / "out", batch_size=2)
    assert res.done == 5 and not res.failed and len(res.cover_psnr) == 5
    for i in range(5):
        cover = deepsteg.read_image(covers / f"c{i}.png")
        secret = deepsteg.fit_to(deepsteg.read_image(secrets / f"s{i % 2}.png"), tuple(cover.shape[-2:]))
        with torch.no_grad():
            want = deepsteg.quantize(model.hide(cover, secret))
        got = deepsteg.read_image(tmp_path / "out" / f"c{i}.png")
        assert (got - want).abs().max() <= 1.01 / 255  # batched vs single: equal up to float noise at rounding
    res = reveal_folder(model, tmp_path / "out", tmp_path / "rev", batch_size=3)
    assert res.done == 5 and sorted(p.name for p in (tmp_path / "rev").iterdir()) == [f"c{i}.png" for i in range(5)]


def test_rerun_skips_finished_outputs_and_cleans_stale_temps(tmp_path: Path, make_png, model) -> None:  # noqa: ANN001
    covers, secrets = _folders(tmp_path, make_png)
    out = tmp_path / "out"
    hide_folder(model, covers, secrets, out)
    (out / "c1.png").unlink()  # as if the run had been killed before c1 was written …
    (out / ".c1.png.abc.tmp").write_bytes(b"partial")  # … in the middle of writing it
    (out / ".user-notes.tmp").write_text("not ours")  # a user's hidden file is left alone
    before = (out / "c0.png").stat().st_mtime_ns
    res = hide_folder(model, covers, secrets, out)
    assert (res.done, res.skipped) == (1, 4)
    assert (out / "c0.png").stat().st_mtime_ns == before
    assert sorted(p.name for p in out.iterdir()) == [".user-notes.tmp", *[f"c{i}.png" for i in range(5)]]


def test_bad_files_are_reported_and_the_rest_done(tmp_path: Path, make_png, model) -> None:  # noqa: ANN001
    covers, secrets = _folders(tmp_path, make_png)
    (covers / "broken.png").write_text("not an image")
    res = hide_folder(model, covers, secrets, tmp_path / "out")
    assert res.done == 5 and len(res.failed) == 1 and "broken.png" in res.failed[0][0]
    assert not (tmp_path / "out" / "broken.png").exists()


def test_cli_hide_batch_and_reveal_batch(tmp_path: Path, make_png, model) -> None:  # noqa: ANN001
    covers, secrets = _folders(tmp_path, make_png)
    w = tmp_path / "w"
    save_pretrained(model, w)
    r = runner.invoke(app, ["hide-batch", str(covers), str(secrets), "-o", str(tmp_path / "out"), "--weights", str(w),
                            "--batch-size", "4"])
    assert r.exit_code == 0, r.output
    assert "5 written, 0 already done" in r.stdout and "peak RSS" in r.stdout
    r = runner.invoke(app, ["hide-batch", str(covers), str(secrets), "-o", str(tmp_path / "out"), "--weights", str(w)])
    assert "0 written, 5 already done" in r.stdout
    r = runner.invoke(app, ["reveal-batch", str(tmp_path / "out"), "-o", str(tmp_path / "rev"), "--weights", str(w)])
    assert r.exit_code == 0 and "5 written" in r.stdout
    r = runner.invoke(app, ["hide-batch", str(covers), str(secrets), "-o", str(covers / "out"), "--weights", str(w)])
    assert r.exit_code == 1 and "must not be (inside) the input folder" in r.stderr
    (tmp_path / "out" / "c0.jpg").write_bytes((tmp_path / "out" / "c0.png").read_bytes())  # c0.png and c0.jpg
    r = runner.invoke(app, ["reveal-batch", str(tmp_path / "out"), "-o", str(tmp_path / "rev2"), "--weights", str(w)])
    assert r.exit_code == 1 and "would both be written" in r.stderr


def test_folder_commands_refuse_message_and_unkeyed_models_up_front(tmp_path: Path, make_png) -> None:
    """Message models hide bytes (``hide --file``), a keyed model needs its passphrase: one clear line, exit 1,
    and no output folder made (a message model once ended in an 'internal error', exit 3)."""
    covers, secrets = _folders(tmp_path, make_png)
    for cmd in (["hide-batch", str(covers), str(secrets)], ["reveal-batch", str(covers)]):
        r = runner.invoke(app, [*cmd, "-o", str(tmp_path / "out"), "--model", "lsb-bits"])
        assert r.exit_code == 1 and "not images" in r.stderr, r.output
        r = runner.invoke(app, [*cmd, "-o", str(tmp_path / "out"), "--model", "lsb3", "--passphrase", "p"])
        assert r.exit_code == 1 and "takes no passphrase" in r.stderr, r.output
    assert not (tmp_path / "out").exists()
    keyed = deepsteg.create_model("isn-keyed", blocks=2, growth=8).eval()
    with pytest.raises(deepsteg.DeepstegError, match="keyed"):
        hide_folder(keyed, covers, secrets, tmp_path / "out")
    res = hide_folder(keyed, covers, secrets, tmp_path / "out", key="k")
    assert res.done == 5
    cover = deepsteg.read_image(covers / "c0.png")
    secret = deepsteg.fit_to(deepsteg.read_image(secrets / "s0.png"), tuple(cover.shape[-2:]))
    with torch.no_grad():
        want = deepsteg.quantize(keyed.hide(cover, secret, key="k"))
    assert (deepsteg.read_image(tmp_path / "out" / "c0.png") - want).abs().max() <= 1.01 / 255
    res = reveal_folder(keyed, tmp_path / "out", tmp_path / "rev", key="k")
    assert res.done == 5


def test_a_failed_write_fails_only_its_own_file(tmp_path: Path, make_png, model) -> None:  # noqa: ANN001
    """Outputs of one batch are written one by one: a folder in the way of one output fails that file alone, the
    others count as written, and a re-run does not take the folder for a finished output."""
    covers, secrets = _folders(tmp_path, make_png)
    out = tmp_path / "out"
    (out / "c1.png").mkdir(parents=True)  # c0–c2 share a size, so c1 sits in one batch with c0 and c2
    res = hide_folder(model, covers, secrets, out, batch_size=8)
    assert res.done == 4 and len(res.failed) == 1 and res.failed[0][0].endswith("c1.png")
    assert "c1.png" in res.failed[0][1] and len(res.cover_psnr) == 4
    assert all((out / f"c{i}.png").is_file() for i in (0, 2, 3, 4))
    res = hide_folder(model, covers, secrets, out)
    assert (res.done, res.skipped, len(res.failed)) == (0, 4, 1)


def test_tiny_secrets_are_refused_in_folders_as_in_hide(tmp_path: Path, make_png, model) -> None:  # noqa: ANN001
    covers, secrets = _folders(tmp_path, make_png)
    make_png("s9.png", 10, 10, seed=9, folder=secrets)  # third secret in sorted order: cover c2 carries it
    res = hide_folder(model, covers, secrets, tmp_path / "out")
    assert res.done == 4 and len(res.failed) == 1 and "s9.png" in res.failed[0][1] and "16×16" in res.failed[0][1]
