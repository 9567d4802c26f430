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
