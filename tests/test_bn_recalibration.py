"""Precise BatchNorm statistics: the recomputed running statistics are the exact averages over the batches seen,
the weights do not move, and the CLI writes a new folder without touching its input."""

from __future__ import annotations

from pathlib import Path

import torch
from typer.testing import CliRunner

import deepsteg
from deepsteg.cli import app
from deepsteg.data import StegoPairDataset
from deepsteg.train import recalibrate_bn
from deepsteg.zoo import save_pretrained


def test_running_stats_are_the_exact_average_over_the_batches(image_folder: Path) -> None:
    torch.manual_seed(0)
    model = deepsteg.create_model("stegopnet")
    bn = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    bn.running_mean.fill_(5.0)  # stale statistics, far from the truth
    bn.running_var.fill_(9.0)
    weights = {k: v.clone() for k, v in model.state_dict().items() if "running" not in k and "num_batches" not in k}
    seen: list[torch.Tensor] = []
    hook = bn.register_forward_hook(lambda mod, inp, out: seen.append(inp[0].detach().clone()))
    ds = StegoPairDataset(image_folder, size=32, seed=1, length=10**6)
    n = recalibrate_bn(model, ds, batches=3, batch_size=4)
    hook.remove()

    assert n > 10 and not model.training and bn.momentum == 0.1
    assert len(seen) == 3
    want_mean = torch.stack([x.mean(dim=(0, 2, 3)) for x in seen]).mean(0)
    want_var = torch.stack([x.var(dim=(0, 2, 3), unbiased=True) for x in seen]).mean(0)
    torch.testing.assert_close(bn.running_mean, want_mean, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(bn.running_var, want_var, rtol=1e-5, atol=1e-6)
    for k, v in model.state_dict().items():  # only BN buffers change
        if k in weights:
            assert torch.equal(v, weights[k]), k


def test_cli_writes_a_new_folder_and_refuses_an_existing_one(image_folder: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    src = save_pretrained(deepsteg.create_model("stegopnet-noppm"), tmp_path / "w")
    before = (src / "model.safetensors").read_bytes()
    out = tmp_path / "w-bn"
    args = ["recalibrate-bn", "--weights", str(src), "--data", str(image_folder), "--batches", "2",
            "--batch-size", "2", "--crop", "32"]
    res = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert (src / "model.safetensors").read_bytes() == before
    a = deepsteg.create_model("stegopnet-noppm", weights=src)
    b = deepsteg.create_model("stegopnet-noppm", weights=out)
    sa, sb = a.state_dict(), b.state_dict()
    changed = [k for k in sa if not torch.equal(sa[k], sb[k])]
    assert changed and all("running" in k or "num_batches" in k for k in changed)

    res = CliRunner().invoke(app, [*args, "--out", str(src)])
    assert res.exit_code != 0 and "already exists" in res.output
    assert (src / "model.safetensors").read_bytes() == before


def test_freeze_bn_fine_tuning_keeps_exact_statistics_and_learns(image_folder: Path, tmp_path: Path) -> None:
    """--freeze-bn: the statistics are recomputed once from the starting weights and never move again; the
    weights (BN's affine ones included) learn; stop-and-resume stays exact (validation toggles modes)."""
    from deepsteg.train import TrainConfig, Trainer

    torch.manual_seed(0)
    src = save_pretrained(deepsteg.create_model("stegopnet-noppm"), tmp_path / "w")

    def cfg(out: str, steps: int = 4) -> TrainConfig:
        return TrainConfig(model="stegopnet-noppm", data=[str(image_folder)], val=[str(image_folder)],
                           out=str(tmp_path / out), steps=steps, batch_size=2, crop=32, val_crop=32, val_every=1,
                           ckpt_every=1000, log_every=1, seed=3, init=str(src), freeze_bn=True, schedule="constant")

    t = Trainer(cfg("probe"), progress=False)
    t.setup()
    start = {k: v.clone() for k, v in t.model.state_dict().items()}
    means = [v for k, v in start.items() if k.endswith("running_mean")]
    assert means and all(bool(m.abs().sum() > 0) for m in means)  # recomputed, not the fresh zeros

    Trainer(cfg("straight"), progress=False).run()
    end = deepsteg.create_model("stegopnet-noppm", weights=tmp_path / "straight" / "last").state_dict()
    stats = [k for k in start if "running" in k]
    assert stats and all(torch.equal(end[k], start[k]) for k in stats)  # frozen: exactly the recomputed ones
    bn_affine = [f"{name}.{p}" for name, m in t.model.named_modules() if isinstance(m, torch.nn.BatchNorm2d)
                 for p in ("weight", "bias")]
    assert bn_affine and any(not torch.equal(end[k], start[k]) for k in bn_affine)  # ... but BN still learns

    Trainer(cfg("chunked"), stop_after_steps=2, progress=False).run()
    Trainer(cfg("chunked"), resume=True, progress=False).run()
    a = torch.load(tmp_path / "straight" / "checkpoint.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "chunked" / "checkpoint.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_freeze_bn_needs_starting_weights(image_folder: Path, tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["train", "stegopnet", "--data", str(image_folder), "--out", str(tmp_path / "r"),
                                   "--steps", "1", "--batch-size", "2", "--crop", "32", "--freeze-bn"])
    assert res.exit_code != 0 and "--init" in res.output
    assert not (tmp_path / "r").exists()


def test_keep_bn_stats_starts_a_second_frozen_stage_from_the_first_ones_statistics(image_folder: Path,
                                                                                 tmp_path: Path) -> None:
    """--keep-bn-stats: the --init weights' statistics are used as they are (not recomputed) and stay fixed."""
    from deepsteg.train import TrainConfig, Trainer

    torch.manual_seed(0)
    model = deepsteg.create_model("stegopnet-noppm")
    for m in model.modules():  # statistics no recomputation would give: any change shows
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.fill_(0.25)
            m.running_var.fill_(2.0)
    src = save_pretrained(model, tmp_path / "w")
    common = dict(model="stegopnet-noppm", data=[str(image_folder)], steps=2, batch_size=2, crop=32, val_crop=32,
                  ckpt_every=1000, log_every=1, seed=3, init=str(src), freeze_bn=True, schedule="constant")
    Trainer(TrainConfig(out=str(tmp_path / "keep"), keep_bn_stats=True, **common), progress=False).run()
    Trainer(TrainConfig(out=str(tmp_path / "recompute"), **common), progress=False).run()
    kept = deepsteg.create_model("stegopnet-noppm", weights=tmp_path / "keep" / "last").state_dict()
    redone = deepsteg.create_model("stegopnet-noppm", weights=tmp_path / "recompute" / "last").state_dict()
    means = [k for k in kept if k.endswith("running_mean")]
    assert means and all(bool((kept[k] == 0.25).all()) for k in means)
    assert all(bool((kept[k.replace("mean", "var")] == 2.0).all()) for k in means)
    assert any(not torch.equal(redone[k], kept[k]) for k in means)  # without the flag they are recomputed

    res = CliRunner().invoke(app, ["train", "stegopnet-noppm", "--data", str(image_folder), "--out",
                                   str(tmp_path / "r"), "--steps", "1", "--batch-size", "2", "--crop", "32",
                                   "--init", str(src), "--keep-bn-stats"])
    assert res.exit_code != 0 and "--freeze-bn" in res.output
    assert not (tmp_path / "r").exists()
