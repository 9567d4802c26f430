"""The trainer: a few CPU steps lower the loss; stop-and-resume reproduces an uninterrupted run bit for bit."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

import deepsteg
import deepsteg.metrics
import deepsteg.models
from deepsteg.errors import TrainingError
from deepsteg.train import TrainConfig, Trainer, train


def _cfg(folder: Path, out: Path, **kw) -> TrainConfig:  # noqa: ANN003
    base = dict(model="stegopnet", data=[str(folder)], out=str(out), steps=6, batch_size=4, crop=32, val_crop=32,
                val_every=1000, ckpt_every=1000, log_every=1, seed=1, num_workers=0)
    base.update(kw)
    return TrainConfig(**base)


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path) as f:
        return list(csv.DictReader(f))


def _fixed_batch_loss(model: deepsteg.ImageHider, batch: dict[str, torch.Tensor]) -> float:
    model.train()  # batch statistics, as during training; no grad, so nothing is learnt from this batch
    with torch.no_grad():
        return model.training_losses(batch)[0].item()


def test_twenty_cpu_steps_lower_the_loss(image_folder: Path, tmp_path: Path) -> None:
    from deepsteg.data import StegoPairDataset

    held = StegoPairDataset(image_folder, size=32, mode="train", seed=99)
    batch = {k: torch.stack([held[i][k] for i in range(8)]) for k in ("cover", "secrets")}
    cfg = _cfg(image_folder, tmp_path / "run", steps=20, schedule="constant")
    torch.manual_seed(cfg.seed)
    before = _fixed_batch_loss(deepsteg.create_model("stegopnet"), batch)
    train(cfg, progress=False)
    after = _fixed_batch_loss(deepsteg.create_model("stegopnet", weights=tmp_path / "run" / "last"), batch)
    assert after < 0.8 * before, (before, after)
    losses = [float(r["loss"]) for r in _rows(tmp_path / "run" / "train.csv")]
    assert len(losses) == 20 and sum(losses[-5:]) < sum(losses[:5])


def _all_state(run: Path) -> dict[str, torch.Tensor]:
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    flat = {f"model.{k}": v for k, v in state["model"].items()}
    for name, opt in state["optimizers"].items():
        for pid, s in opt["state"].items():
            for k, v in s.items():
                flat[f"opt.{name}.{pid}.{k}"] = v if torch.is_tensor(v) else torch.tensor(v)
    flat["step"] = torch.tensor(state["step"])
    return flat


def test_interrupt_and_resume_reproduces_uninterrupted_run_exactly(image_folder: Path, tmp_path: Path) -> None:
    straight = tmp_path / "straight"
    train(_cfg(image_folder, straight), progress=False)
    chunked = tmp_path / "chunked"
    Trainer(_cfg(image_folder, chunked), stop_after_steps=2, progress=False).run()  # "interrupted" at step 2
    assert torch.load(chunked / "checkpoint.pt", weights_only=True)["step"] == 2
    Trainer(_cfg(image_folder, chunked), resume=True, stop_after_steps=2, progress=False).run()
    Trainer(_cfg(image_folder, chunked), resume=True, progress=False).run()
    a, b = _all_state(straight), _all_state(chunked)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    losses_a = [r["loss"] for r in _rows(straight / "train.csv")]
    losses_b = [r["loss"] for r in _rows(chunked / "train.csv")]
    assert losses_a == losses_b


def test_sigterm_stops_after_the_step_with_a_checkpoint_that_resumes_exactly(image_folder: Path, tmp_path: Path,
                                                                               monkeypatch, capsys) -> None:
    """`kill PID` on a training run: the step in progress finishes, checkpoint and last/ are written, and
    --resume then reproduces the uninterrupted run (a background job ignores Ctrl-C, so this is how one stops)."""
    import os
    import signal

    straight = tmp_path / "straight"
    train(_cfg(image_folder, straight), progress=False)
    before = signal.getsignal(signal.SIGTERM)
    cls = type(deepsteg.create_model("stegopnet"))
    step_fn = cls.training_step

    def step_then_kill(self, batch, ctx):  # noqa: ANN001, ANN202
        logs = step_fn(self, batch, ctx)
        if ctx.step == 2:  # the third step (ctx.step counts from 0)
            os.kill(os.getpid(), signal.SIGTERM)
        return logs

    monkeypatch.setattr(cls, "training_step", step_then_kill)
    Trainer(_cfg(image_folder, tmp_path / "run"), progress=False).run()
    monkeypatch.undo()
    assert "stopped by SIGTERM at step 3" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) == before  # the handler is the caller's again
    assert torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["step"] == 3
    assert (tmp_path / "run" / "last" / "model.safetensors").is_file()
    Trainer(_cfg(image_folder, tmp_path / "run"), resume=True, progress=False).run()
    a, b = _all_state(straight), _all_state(tmp_path / "run")
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_resume_guards(image_folder: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    with pytest.raises(TrainingError, match="nothing to resume"):
        Trainer(_cfg(image_folder, run), resume=True, progress=False).run()
    Trainer(_cfg(image_folder, run), stop_after_steps=1, progress=False).run()
    with pytest.raises(TrainingError, match="already holds a run"):
        Trainer(_cfg(image_folder, run), progress=False).run()
    with pytest.raises(TrainingError, match="different settings.*batch_size"):
        Trainer(_cfg(image_folder, run, batch_size=2), resume=True, progress=False).run()
    # what may change between chunks does not block a resume
    Trainer(_cfg(image_folder, run, max_minutes=5.0, log_every=3), resume=True, progress=False).run()


def test_time_budget_stops_with_a_checkpoint(image_folder: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(_cfg(image_folder, run, steps=50, max_minutes=1e-6), progress=False)
    step = torch.load(run / "checkpoint.pt", weights_only=True)["step"]
    assert step == 1
    train(_cfg(image_folder, run, steps=50, max_minutes=1e-6), resume=True, progress=False)
    assert torch.load(run / "checkpoint.pt", weights_only=True)["step"] == 2


def test_validation_after_rounding_and_exports(image_folder: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = train(_cfg(image_folder, run, steps=4, val=[str(image_folder)], val_every=2), progress=False)
    for key in ("cover_psnr", "cover_ssim", "secret_psnr", "secret_ssim", "float_cover_psnr", "float_secret_psnr"):
        assert key in result
    rows = _rows(run / "val.csv")
    assert [r["step"] for r in rows] == ["2", "4"]
    for folder in ("best", "last"):
        m = deepsteg.create_model("stegopnet", weights=run / folder)
        assert not m.training
    cfg = json.loads((run / "train_config.json").read_text())
    assert cfg["crop"] == 32 and cfg["model"] == "stegopnet"


def test_rounded_metrics_come_from_the_8bit_stego() -> None:
    from deepsteg.train.trainer import evaluate_batch

    m = deepsteg.create_model("stegopnet").eval()
    cover, secrets = torch.rand(2, 3, 32, 32), torch.rand(2, 1, 3, 32, 32)
    with torch.no_grad():
        r = evaluate_batch(m, cover, secrets)
        stego = deepsteg.quantize(m.hide(cover, secrets[:, 0]))
    assert torch.allclose(r["cover_psnr"], deepsteg.metrics.psnr(stego, cover))


def test_bf16_autocast_path_trains(image_folder: Path, tmp_path: Path) -> None:
    """The AMP path (bf16 autocast, the default on CUDA) runs and learns on the CPU too; the stego stays fp32 so
    the straight-through rounding sees exact 8-bit levels."""
    run = tmp_path / "run"
    train(_cfg(image_folder, run, steps=3, amp="bf16"), progress=False)
    losses = [float(r["loss"]) for r in _rows(run / "train.csv")]
    assert len(losses) == 3 and all(l == l and l < 1 for l in losses)  # finite
    m = deepsteg.create_model("stegopnet", weights=run / "last")
    with torch.autocast("cpu", dtype=torch.bfloat16), torch.no_grad():
        stego = m.hide(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32))
    assert stego.dtype == torch.float32


def test_crash_mid_run_resumes_exactly_from_the_periodic_checkpoint(image_folder: Path, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A crash inside step 4 (after checkpoints at 2) must not save a half-updated state; resuming from the last
    periodic checkpoint reproduces the uninterrupted run: weights, optimiser, and both logs."""
    kw = dict(steps=6, ckpt_every=2, val_every=2, log_every=2, val=[str(image_folder)])
    straight = tmp_path / "straight"
    train(_cfg(image_folder, straight, **kw), progress=False)
    crashed = tmp_path / "crashed"
    real_step = deepsteg.models.StegoPNet.training_step
    calls = {"n": 0}

    def flaky(self, batch, ctx):  # noqa: ANN001, ANN202
        calls["n"] += 1
        out = real_step(self, batch, ctx)  # the optimiser has stepped …
        if calls["n"] == 4:
            raise KeyboardInterrupt  # … and the process dies before the step is complete
        return out

    monkeypatch.setattr(deepsteg.models.StegoPNet, "training_step", flaky)
    with pytest.raises(KeyboardInterrupt):
        train(_cfg(image_folder, crashed, **kw), progress=False)
    monkeypatch.setattr(deepsteg.models.StegoPNet, "training_step", real_step)
    assert torch.load(crashed / "checkpoint.pt", weights_only=True)["step"] == 2
    train(_cfg(image_folder, crashed, **kw), resume=True, progress=False)
    a, b = _all_state(straight), _all_state(crashed)
    assert all(torch.equal(a[k], b[k]) for k in a)
    for log in ("train.csv", "val.csv"):
        ra, rb = _rows(straight / log), _rows(crashed / log)
        drop = ("elapsed_s", "img_per_s")
        assert [{k: v for k, v in r.items() if k not in drop} for r in ra] == \
               [{k: v for k, v in r.items() if k not in drop} for r in rb]


@pytest.mark.parametrize("kw,msg", [
    (dict(schedule="linear"), "schedule"), (dict(val_every=0), "val_every"), (dict(batch_size=1), "batch_size"),
    (dict(crop=40), "multiples of 16"), (dict(device="nonsense"), "unknown device"), (dict(lr=-1.0), "lr"),
])
def test_bad_training_settings_are_refused_before_anything_is_written(image_folder: Path, tmp_path: Path,
                                                                     kw: dict, msg: str) -> None:
    with pytest.raises(TrainingError, match=msg):
        train(_cfg(image_folder, tmp_path / "run", **kw), progress=False)
    assert not (tmp_path / "run").exists()


def test_init_starts_from_given_weights(image_folder: Path, tmp_path: Path) -> None:
    """--init: a run starts from saved weights (e.g. the shipped ones) instead of a fresh initialisation."""
    torch.manual_seed(123)
    src = deepsteg.create_model("stegopnet")
    deepsteg.save_pretrained(src, tmp_path / "w")
    t = Trainer(_cfg(image_folder, tmp_path / "run", init=str(tmp_path / "w")), progress=False)
    t.setup()
    got, want = t.model.state_dict(), src.state_dict()
    assert all(torch.equal(got[k], want[k]) for k in want)
    fresh = Trainer(_cfg(image_folder, tmp_path / "run2"), progress=False)
    fresh.setup()
    assert not all(torch.equal(fresh.model.state_dict()[k], want[k]) for k in want)
    from typer.testing import CliRunner

    from deepsteg.cli import app

    r = CliRunner().invoke(app, ["train", "stegopnet", "--data", str(image_folder), "--out", str(tmp_path / "r3"),
                                 "--steps", "1", "--batch-size", "2", "--crop", "32", "--init", "pretrained"])
    assert r.exit_code == 0, r.output
