"""Data-parallel training: ``torchrun --nproc_per_node 2 -m deepsteg train …`` on the CPU (gloo).

Both ranks end with identical weights and buffers, only rank 0 writes, the result equals a single process with the
global batch, and a run stopped by its time budget resumes to the uninterrupted run's weights bit for bit.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from deepsteg.errors import TrainingError
from deepsteg.train import TrainConfig, Trainer
from tests.conftest import natural_like

pytestmark = pytest.mark.skipif(not torch.distributed.is_available(), reason="no torch.distributed")

# BatchNorm with fixed statistics (per-sample), for the single-process comparison: see test (b).
FROZEN_BN_LAUNCHER = '''
import sys
import torch.nn.functional as F
from torch.nn.modules.batchnorm import _BatchNorm

def frozen(self, x):
    return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)

_BatchNorm.forward = frozen
from deepsteg.cli import main
sys.argv[0] = "deepsteg"
main()
'''


def _frozen_bn(self, x):  # noqa: ANN001, ANN202 — the same patch, in this process
    return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)


def _torchrun(out: Path, data: Path, *extra: str, dump: Path | None = None, script: Path | None = None) -> None:
    """2 CPU processes via torch.distributed.run (``--standalone`` picks a free port)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env.update(OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
    if dump is not None:
        dump.mkdir(parents=True, exist_ok=True)
        env["DEEPSTEG_DUMP_RANK_STATE"] = str(dump)  # test hook: each rank saves its final state_dict
    target = [str(script)] if script else ["-m", "deepsteg"]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *target,
           "train", "stegopnet", "--data", str(data), "--out", str(out), "--crop", "32", "--val-crop", "32",
           "--batch-size", "2", "--steps", "4", "--log-every", "1", "--seed", "3", "--device", "cpu",
           "--set", "use_ppm=false", *extra]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path) as f:
        return list(csv.DictReader(f))


def _single_process_cfg(run: Path, out: Path, **kw) -> TrainConfig:  # noqa: ANN003
    """The torchrun run's own config (as the CLI built it), for an in-process run."""
    return TrainConfig(**{**json.loads((run / "train_config.json").read_text()), "out": str(out), **kw})


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("imgs")
    for i in range(6):
        Image.fromarray(natural_like(40, 48, seed=i)).save(d / f"im{i}.png")
    return d


@pytest.fixture(scope="module")
def straight(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted 2-process run of 4 steps (each rank's final state in ``<run>.dump``)."""
    run = tmp_path_factory.mktemp("dist") / "straight"
    _torchrun(run, data, dump=run.with_suffix(".dump"))
    return run


def test_ranks_agree_and_only_rank_0_writes(straight: Path) -> None:
    dump = straight.with_suffix(".dump")
    assert sorted(p.name for p in dump.iterdir()) == ["rank0.pt", "rank1.pt"]
    # each rank's own state, dumped before the final buffer broadcast
    r0, r1 = (torch.load(dump / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert r0.keys() == r1.keys()
    params = [k for k in r0 if "running_" not in k and "num_batches_tracked" not in k]
    buffers = [k for k in r0 if "running_" in k]
    for k in params:  # averaged gradients → identical weights on both ranks, bit for bit
        assert torch.equal(r0[k], r1[k]), k
    # BatchNorm statistics: broadcast from rank 0 before every step (as DDP), so after the last step they differ
    # only by that step's local update — proof that the ranks really saw different images
    assert any(not torch.equal(r0[k], r1[k]) for k in buffers)
    ckpt = torch.load(straight / "checkpoint.pt", weights_only=True)
    assert ckpt["step"] == 4 and ckpt["world"] == 2
    assert all(torch.equal(ckpt["model"][k], r0[k]) for k in r0)  # rank 0's state is what was saved
    assert sorted(p.name for p in straight.iterdir()) == ["checkpoint.pt", "last", "train.csv", "train_config.json"]
    rows = _rows(straight / "train.csv")
    assert [r["step"] for r in rows] == ["1", "2", "3", "4"]  # one writer: one row per logged step
    assert json.loads((straight / "train_config.json").read_text())["batch_size"] == 2  # per rank


def test_two_ranks_equal_one_process_with_the_global_batch(data: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """2 ranks × batch 2 = 1 process × batch 4 (same seed, same images per step), up to float rounding.

    With real BatchNorm the two differ by design (batch statistics over each rank's 2 images, as in DDP without
    SyncBatchNorm), and after 4 Adam steps (first steps ≈ lr·sign(grad)) that difference is as large as the
    weights' movement: measured relative L2 distance 1.19 versus 1.22 for a batch-2 single process — no test.
    So BatchNorm is frozen to its (per-sample) running statistics in both runs: then the global-batch loss is
    exactly the mean of the rank losses, and the measured distance is 6e-7 (max abs 3e-7; float summation
    order; 7.5e-7 with seed 0), against 0.68 for the batch-2 control (0.80 with seed 0). Tolerance: 1e-4, over
    100× the rounding and far below the control.
    """
    launcher = tmp_path / "frozen_bn_deepsteg.py"
    launcher.write_text(FROZEN_BN_LAUNCHER)
    dist_run, dump = tmp_path / "dist", tmp_path / "dump"
    _torchrun(dist_run, data, dump=dump, script=launcher)
    monkeypatch.setattr("torch.nn.modules.batchnorm._BatchNorm.forward", _frozen_bn)
    init = Trainer(_single_process_cfg(dist_run, tmp_path / "init"), progress=False)
    init.setup()
    w0 = {k: v.clone() for k, v in init.model.state_dict().items()}
    results = {}
    for name, bs in (("global", 4), ("half", 2)):
        Trainer(_single_process_cfg(dist_run, tmp_path / name, batch_size=bs), progress=False).run()
        results[name] = torch.load(tmp_path / name / "checkpoint.pt", weights_only=True)["model"]
    wd = torch.load(dump / "rank0.pt", weights_only=True)
    keys = [k for k in w0 if w0[k].is_floating_point() and "running" not in k]

    def rel(a: dict, b: dict) -> float:  # distance between runs relative to how far training moved the weights
        return float(sum(((a[k] - b[k]) ** 2).sum() for k in keys).sqrt()
                     / sum(((b[k] - w0[k]) ** 2).sum() for k in keys).sqrt())

    assert rel(wd, results["global"]) < 1e-4
    assert rel(results["half"], results["global"]) > 0.1  # the control: a different batch is far away
    la = [float(r["loss"]) for r in _rows(dist_run / "train.csv")]  # logged losses are global means
    lb = [float(r["loss"]) for r in _rows(tmp_path / "global" / "train.csv")]
    assert la == pytest.approx(lb, rel=1e-5)


def test_time_budget_stop_and_resume_reproduce_the_uninterrupted_run(data: Path, straight: Path,
                                                                      tmp_path: Path) -> None:
    run, dump = tmp_path / "chunked", tmp_path / "dump"
    _torchrun(run, data, "--max-minutes", "1e-6")  # rank 0 decides: every rank stops after step 1
    assert torch.load(run / "checkpoint.pt", weights_only=True)["step"] == 1
    with pytest.raises(TrainingError, match="2 process.*this run has 1"):
        Trainer(_single_process_cfg(run, run), resume=True, progress=False).run()
    _torchrun(run, data, "--resume", dump=dump)
    a = torch.load(straight / "checkpoint.pt", weights_only=True)
    b = torch.load(run / "checkpoint.pt", weights_only=True)
    assert b["step"] == 4
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    for name, opt in a["optimizers"].items():
        for pid, s in opt["state"].items():
            for k, v in s.items():
                assert torch.equal(torch.as_tensor(v), torch.as_tensor(b["optimizers"][name]["state"][pid][k]))
    r1 = torch.load(dump / "rank1.pt", weights_only=True)  # rank 1's own state, before the final buffer sync
    straight_r1 = torch.load(straight.with_suffix(".dump") / "rank1.pt", weights_only=True)
    assert all(torch.equal(r1[k], straight_r1[k]) for k in r1)  # rank 1 resumed exactly too, buffers included
    assert [r["loss"] for r in _rows(run / "train.csv")] == [r["loss"] for r in _rows(straight / "train.csv")]
