"""The trainer: owns the loop, devices, AMP, channels_last, optimisers, schedules, seeding, logging,
validation after 8-bit rounding, checkpoints, exact resume and a wall-clock budget.

Methods never see any of this; they implement :meth:`ImageHider.training_step` and call ``ctx.optimize``.

Exact resume: a batch is a pure function of ``(seed, step)`` (see :mod:`deepsteg.data`), and a checkpoint holds
model, optimisers, schedulers, every RNG state and the step, so ``stop at k, resume`` and ``run straight
through`` produce bit-identical weights on the same machine.

Distributed data parallelism: started by ``torchrun --nproc_per_node N -m deepsteg train …`` (detected from
``WORLD_SIZE``), each of the N ranks trains on its own ``batch_size`` images per step, so the *global* batch is
N × ``batch_size``; gradients are averaged across ranks per optimiser and rank 0's buffers are broadcast before
each step (see :mod:`deepsteg.train.distributed` for why this is not the DDP wrapper). Only rank 0 writes files,
logs and validates. A checkpoint records the world size; resuming with another one is refused.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import random
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader

from deepsteg.data import ImageBank, StegoPairDataset, StepBatchSampler
from deepsteg.errors import TrainingError
from deepsteg.evaluate import EVAL_KEY
from deepsteg.io import atomic_write_bytes, quantize
from deepsteg.metrics import psnr, ssim
from deepsteg.models.base import ImageHider
from deepsteg.models.message import MessageModel
from deepsteg.train import distributed as dist
from deepsteg.train.bn import recalibrate_bn, set_train_mode
from deepsteg.zoo import create_model, get_entry, save_pretrained

CHECKPOINT = "checkpoint.pt"


@dataclass
class TrainConfig:
    """Everything that defines a run; saved as ``train_config.json`` and checked again on ``--resume``."""

    model: str
    data: list[str]
    out: str
    val: list[str] = field(default_factory=list)
    steps: int = 20_000
    batch_size: int = 16
    crop: int = 128
    val_crop: int = 256
    lr: float | None = None
    schedule: str = "cosine"  # constant | cosine | step
    min_lr_ratio: float = 0.01
    warmup_steps: int = 0
    seed: int = 0
    amp: str = "auto"  # auto (bf16 on CUDA, fp32 on CPU) | bf16 | fp32
    channels_last: bool = True
    val_every: int = 500
    ckpt_every: int = 500
    log_every: int = 50
    max_minutes: float | None = None
    device: str = "auto"
    num_workers: int = 0
    grad_clip: float | None = None
    overrides: dict[str, Any] = field(default_factory=dict)

    deterministic: bool = True
    #: Start from these weights (a folder written by save_pretrained, e.g. shipped weights or a run's last/)
    #: instead of a fresh initialisation; ignored on --resume, where the checkpoint decides.
    init: str | None = None
    #: Train with every BatchNorm layer in eval mode (its running statistics, recomputed exactly over 200
    #: training batches before the first step; the affine weights still learn). A fine-tuning stage: in train
    #: mode an output BN fixes each batch's mean and spread to learnt constants, whatever the batch's images
    #: hold, which puts a noise floor under the hiding error; frozen, BN is the per-pixel affine map that
    #: evaluation uses. Start from trained weights (``init``); from scratch the statistics mean nothing.
    freeze_bn: bool = False
    #: With ``freeze_bn``: keep the ``init`` weights' BatchNorm statistics instead of recomputing them. For a second
    #: frozen stage: the first one's affine weights adapted to the statistics it froze, and recomputed ones (from
    #: the changed weights) undo that — a StegNet run lost its decoded-image L1 from 0.055 to 0.21 at the restart.
    keep_bn_stats: bool = False
    #: CPU threads the command line set (``--threads``), recorded so that a model card can repeat the command.
    threads: int | None = None

    # Fields that may change between chunks of one run without breaking exact resume.
    RESUMABLE_CHANGES = ("max_minutes", "num_workers", "val_every", "ckpt_every", "log_every", "device", "val",
                         "out", "threads")

    def __post_init__(self) -> None:
        if self.schedule not in ("constant", "cosine", "step"):
            raise TrainingError(f"schedule must be constant, cosine or step, not {self.schedule!r}")
        for name in ("steps", "val_every", "ckpt_every", "log_every", "crop", "val_crop"):
            if getattr(self, name) < 1:
                raise TrainingError(f"{name} must be at least 1")
        if self.batch_size < 2:
            raise TrainingError("batch_size must be at least 2 (batch normalisation needs a batch)")
        if self.lr is not None and not self.lr > 0:
            raise TrainingError("lr must be positive")
        if not self.data:
            raise TrainingError("give at least one --data folder")
        if self.freeze_bn and self.init is None:
            raise TrainingError("--freeze-bn fine-tunes trained weights: give --init (from scratch the BatchNorm "
                                "statistics mean nothing)")
        if self.keep_bn_stats and not self.freeze_bn:
            raise TrainingError("--keep-bn-stats goes with --freeze-bn (in train mode BatchNorm updates them anyway)")


class _Context:
    """The ``ctx`` a method's training_step receives."""

    def __init__(self, trainer: Trainer) -> None:
        self._t = trainer
        self.step = 0
        self.stage = "main"
        self.stage_progress = 0.0  # fraction of the current stage done, for methods with warm-ups

    def optimize(self, name: str, loss: Tensor) -> None:
        """Back-propagate ``loss`` into the optimiser ``name`` and step it (grads zeroed first)."""
        t = self._t
        if name not in t.optimizers:
            raise TrainingError(f"stage {self.stage!r} has no optimiser named {name!r}")
        if t.world == 1 and not torch.isfinite(loss):
            raise TrainingError(f"step {self.step}: loss is {loss.item()} (diverged); lower the learning rate")
        opt = t.optimizers[name]
        opt.zero_grad(set_to_none=True)
        params = [p for g in opt.param_groups for p in g["params"]]
        if t.world > 1:
            # Data parallel: a backward per rank, then the gradients of this optimiser's parameters averaged
            # (what DDP computes; DDP itself cannot pair the several backward passes of a critic + generator
            # step). A non-finite loss on any rank stops every rank here, so none waits for the others.
            finite = bool(torch.isfinite(loss))
            if finite:
                loss.backward()
            if dist.average_gradients(params, extra_flag=not finite):
                raise TrainingError(f"step {self.step}: loss is not finite on at least one rank "
                                    f"(this rank: {loss.item()}); lower the learning rate")
        else:
            loss.backward()
        if t.cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(params, t.cfg.grad_clip)
        opt.step()


def _lr_lambda(cfg: TrainConfig, start: int, length: int) -> Callable[[int], float]:
    def f(i: int) -> float:
        warm = min(1.0, (i + 1) / cfg.warmup_steps) if cfg.warmup_steps else 1.0
        t = min(1.0, i / max(1, length))
        if cfg.schedule == "constant":
            return warm
        if cfg.schedule == "step":  # ×0.1 at 50 % and 75 %
            return warm * (0.1 ** ((t >= 0.5) + (t >= 0.75)))
        lo = cfg.min_lr_ratio
        return warm * (lo + (1 - lo) * 0.5 * (1 + math.cos(math.pi * t)))

    return f


def _rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def evaluate_batch(model: ImageHider, cover: Tensor, secrets: Tensor) -> dict[str, Tensor]:
    """Hide, round to 8 bits, reveal; per-image metrics after rounding (unprefixed) and on floats (``float_``).

    Secret metrics are means over the hidden images. The same function backs ``deepsteg evaluate``.
    """
    k = secrets.shape[1]
    secrets = model.as_secret(secrets)  # grey-secret methods (ISGAN) hide the luma, as evaluate does
    secret_list = [secrets[:, j] for j in range(k)]
    key = EVAL_KEY if model.keyed else None
    stego = model.hide(cover, *secret_list, key=key)
    stego_q = quantize(stego)
    revealed_q = [quantize(r) for r in model.reveal(stego_q, key=key)]
    revealed_f = model.reveal(stego, key=key)

    def mean_over(fn: Callable[[Tensor, Tensor], Tensor], outs: list[Tensor]) -> Tensor:
        return torch.stack([fn(o, s) for o, s in zip(outs, secret_list)]).mean(0)

    def cpsnr(a: Tensor, b: Tensor) -> Tensor:  # identical images: cap at 100 dB, as evaluate does
        return psnr(a, b).clamp(max=100.0)

    return {
        "cover_psnr": cpsnr(stego_q, cover), "cover_ssim": ssim(stego_q, cover),
        "secret_psnr": mean_over(cpsnr, revealed_q), "secret_ssim": mean_over(ssim, revealed_q),
        "float_cover_psnr": cpsnr(stego, cover), "float_secret_psnr": mean_over(cpsnr, revealed_f),
    }


def evaluate_message_batch(model: MessageModel, cover: Tensor, bits: Tensor) -> dict[str, Tensor]:
    """Embed, round to 8 bits, extract; per-image bit accuracy and cover quality after rounding (and on floats)."""
    n = cover.shape[0]
    flat = bits.reshape(n, -1)
    stego = model.embed(cover, flat)
    stego_q = quantize(stego)

    def accuracy(x: Tensor) -> Tensor:
        return ((model.extract(x) > 0.5) == (flat > 0.5)).float().mean(1)

    return {
        "cover_psnr": psnr(stego_q, cover).clamp(max=100.0), "cover_ssim": ssim(stego_q, cover),
        "bit_accuracy": accuracy(stego_q),
        "float_cover_psnr": psnr(stego, cover).clamp(max=100.0), "float_bit_accuracy": accuracy(stego),
    }


def validation_score(metrics: dict[str, float]) -> float:
    """What "best" means: cover + secret PSNR for image hiders; bit accuracy first, then PSNR, for messages."""
    if "detector_accuracy" in metrics:
        return metrics["detector_accuracy"]
    if "bit_accuracy" in metrics:
        return 100.0 * metrics["bit_accuracy"] + 0.01 * metrics["cover_psnr"]
    return metrics["cover_psnr"] + metrics["secret_psnr"]


class Trainer:
    """Run (or resume) one training run described by a :class:`TrainConfig`."""

    def __init__(self, cfg: TrainConfig, resume: bool = False, stop_after_steps: int | None = None,
                 progress: bool = True) -> None:
        self.cfg = cfg
        self.out = Path(cfg.out)
        self.resume = resume
        self.stop_after_steps = stop_after_steps
        self.progress = progress
        try:
            self.device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if cfg.device == "auto"
                                       else cfg.device)
        except RuntimeError:
            raise TrainingError(f"unknown device {cfg.device!r} (use cpu, cuda or auto)") from None
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise TrainingError("device cuda asked for, but PyTorch sees no CUDA GPU")
        # torchrun (WORLD_SIZE > 1): join the process group; one GPU per process, cuda:LOCAL_RANK.
        self.rank, self.world, local_rank = dist.init_from_env(self.device)
        if self.world > 1 and self.device.type == "cuda":
            self.device = torch.device("cuda", local_rank)
        self.main = self.rank == 0
        if cfg.deterministic and self.device.type == "cuda":
            # Bit-exact resume needs deterministic kernels; CPU kernels already are.
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.backends.cudnn.benchmark = False
            torch.backends.cudnn.deterministic = True
            torch.use_deterministic_algorithms(True, warn_only=True)
        amp = cfg.amp if cfg.amp != "auto" else ("bf16" if self.device.type == "cuda" else "fp32")
        if amp not in ("bf16", "fp32"):
            raise TrainingError(f"amp must be auto, bf16 or fp32, not {cfg.amp!r}")
        self.amp_dtype = torch.bfloat16 if amp == "bf16" else None
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, torch.optim.lr_scheduler.LambdaLR] = {}
        self.step = 0
        self.best = -math.inf
        self.elapsed = 0.0  # training seconds over all chunks of the run
        self._t0: float | None = None
        self._mid_step = False

    def _elapsed_now(self) -> float:
        return self.elapsed + (time.monotonic() - self._t0 if self._t0 is not None else 0.0)

    # --- set-up ------------------------------------------------------------------------------------------
    def _check_resume_config(self) -> None:
        saved = json.loads((self.out / "train_config.json").read_text())
        now = json.loads(json.dumps(dataclasses.asdict(self.cfg)))  # tuples → lists, as saved
        defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}  # keys added after the run began
        diff = [k for k in now if k not in TrainConfig.RESUMABLE_CHANGES and saved.get(k, defaults[k]) != now[k]]
        if diff:
            raise TrainingError(f"{self.out}: --resume with different settings ({', '.join(diff)}); "
                                "start a new run directory instead")

    def _build_optimizers(self, stage: str) -> None:
        lr = self.cfg.lr if self.cfg.lr is not None else getattr(self.model.config, "lr", 1e-3)
        self.optimizers, self.schedulers = {}, {}
        start, length = self.stage_bounds[stage]
        for name, params in self.model.optimizer_groups(stage).items():
            spec = params if isinstance(params, dict) else {"params": params}
            params_list = list(spec["params"])
            opt_lr = spec.get("lr", lr)
            kind = spec.get("optimizer", "adam")
            wd = spec.get("weight_decay", 0.0)  # L2 regularisation where a paper asks for it (ISGAN §4)
            if kind == "adam":
                opt = torch.optim.Adam(params_list, lr=opt_lr, betas=spec.get("betas", (0.9, 0.999)), weight_decay=wd)
            elif kind == "adamax":
                opt = torch.optim.Adamax(params_list, lr=opt_lr, weight_decay=wd)
            elif kind == "sgd":
                opt = torch.optim.SGD(params_list, lr=opt_lr, momentum=spec.get("momentum", 0.9), weight_decay=wd)
            else:
                raise TrainingError(f"unknown optimizer {kind!r}")
            self.optimizers[name] = opt
            self.schedulers[name] = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(self.cfg, start, length))

    def _stage_at(self, step: int) -> str:
        for name, (start, length) in self.stage_bounds.items():
            if start <= step < start + length:
                return name
        return list(self.stage_bounds)[-1]

    def setup(self) -> None:
        cfg = self.cfg
        ckpt_path = self.out / CHECKPOINT
        if self.resume:
            if not ckpt_path.is_file():
                raise TrainingError(f"{self.out}: nothing to resume (no {CHECKPOINT})")
            self._check_resume_config()
        elif ckpt_path.exists():
            raise TrainingError(f"{self.out}: already holds a run; use --resume or another --out")
        if get_entry(cfg.model).weightless:
            raise TrainingError(f"{cfg.model} is a classical method with nothing to train")
        torch.manual_seed(cfg.seed)
        random.seed(cfg.seed)
        self.model = create_model(cfg.model, weights=cfg.init, sibling_ok=True, **cfg.overrides).to(self.device)
        mult = self.model.size_multiple
        if cfg.crop % mult or cfg.val_crop % mult:
            raise TrainingError(f"{cfg.model} needs crop sizes that are multiples of {mult} "
                                f"(got crop {cfg.crop}, val_crop {cfg.val_crop})")
        if cfg.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        fractions = self.model.stages()
        bounds, start = {}, 0
        for i, (name, frac) in enumerate(fractions):
            length = cfg.steps - start if i == len(fractions) - 1 else round(cfg.steps * frac)
            bounds[name] = (start, length)
            start += length
        self.stage_bounds = bounds
        self.bank = ImageBank(cfg.data)
        self.bank.preload()
        self.messages = isinstance(self.model, MessageModel)
        bits = self.model.message_channels if self.messages else 0
        self.train_set = StegoPairDataset(self.bank, cfg.crop, "train", self.model.num_secrets, cfg.seed,
                                          bits_channels=bits)
        self.val_set = (StegoPairDataset(cfg.val, cfg.val_crop, "val", self.model.num_secrets, bits_channels=bits)
                        if cfg.val else None)
        if self.main:
            try:  # only now, when inputs are known good, does the run directory appear
                self.out.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise TrainingError(f"{self.out}: cannot create run directory ({e.strerror or e})") from None
        self.stage = self._stage_at(0)
        if self.resume:
            self._load_checkpoint(ckpt_path)  # every rank loads the checkpoint rank 0 wrote
        else:
            if cfg.freeze_bn and not cfg.keep_bn_stats:  # exact statistics of the starting weights (same on every rank)
                recalibrate_bn(self.model, self.train_set, batches=200, batch_size=cfg.batch_size,
                               device=self.device)
            self._build_optimizers(self.stage)
            if self.main:
                atomic_write_bytes(self.out / "train_config.json",
                                   lambda f: f.write(json.dumps(dataclasses.asdict(cfg), indent=2).encode()))
        # Every rank starts from rank 0's weights and buffers (already equal: same seed or same checkpoint).
        dist.broadcast_params(self.model)
        dist.broadcast_buffers(self.model)

    # --- checkpoints -------------------------------------------------------------------------------------
    def _save_checkpoint(self) -> None:
        state = {
            "step": self.step, "stage": self.stage, "best": self.best, "model_name": self.cfg.model,
            "elapsed": self._elapsed_now(),
            "model": self.model.state_dict(),
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "schedulers": {k: s.state_dict() for k, s in self.schedulers.items()},
            "rng": _rng_state(),
            "world": self.world,  # the global batch is world × batch_size: a resume must keep it
        }
        atomic_write_bytes(self.out / CHECKPOINT, lambda f: torch.save(state, f))

    def _load_checkpoint(self, path: Path) -> None:
        # Our own file, but still loaded with weights_only=True: no code runs from a checkpoint.
        state = torch.load(path, map_location=self.device, weights_only=True)
        if state.get("model_name") != self.cfg.model:
            raise TrainingError(f"{path}: checkpoint is for {state.get('model_name')!r}, not {self.cfg.model!r}")
        saved_world = int(state.get("world", 1))
        if saved_world != self.world:
            raise TrainingError(f"{path}: checkpoint was written by {saved_world} process(es) but this run has "
                                f"{self.world}; resume with the same number of processes (the global batch is "
                                "processes × batch_size)")
        self.model.load_state_dict(state["model"])
        self.step, self.stage, self.best = state["step"], state["stage"], state["best"]
        self.elapsed = float(state.get("elapsed", 0.0))
        self._build_optimizers(self.stage)
        for k, o in self.optimizers.items():
            o.load_state_dict(state["optimizers"][k])
        for k, s in self.schedulers.items():
            s.load_state_dict(state["schedulers"][k])
        _set_rng_state(state["rng"])  # rank 0's; every rank's RNG runs in step (same seed, same draws)
        # A crash after the checkpoint logged steps that will be redone (rank 0 keeps the logs).
        for name in ("train.csv", "val.csv") if self.main else ():
            path = self.out / name
            if path.exists():
                with open(path, newline="") as f:
                    rows = list(csv.reader(f))
                keep = [rows[0]] + [r for r in rows[1:] if int(r[0]) <= self.step]
                if len(keep) != len(rows):
                    blob = "".join(",".join(r) + "\r\n" for r in keep).encode()
                    atomic_write_bytes(path, lambda f, b=blob: f.write(b))

    # --- validation --------------------------------------------------------------------------------------
    @torch.inference_mode()
    def validate(self) -> dict[str, float]:
        """Metrics after 8-bit rounding (plus float ones) over the validation folder."""
        assert self.val_set is not None
        was_training = self.model.training
        self.model.eval()
        sums: dict[str, float] = {}
        n = 0
        for i in range(len(self.val_set)):
            item = {k: v[None].to(self.device) for k, v in self.val_set[i].items()}
            if hasattr(self.model, "evaluate_pairs"):  # steganalysers: detect the target's stegos
                m = self.model.evaluate_pairs(item["cover"], item["secrets"], i)
            elif self.messages:
                m = evaluate_message_batch(self.model, item["cover"], item["bits"])
            else:
                m = evaluate_batch(self.model, item["cover"], item["secrets"])
            for k, v in m.items():
                sums[k] = sums.get(k, 0.0) + float(v.sum())
            n += 1
        if was_training:
            set_train_mode(self.model, self.cfg.freeze_bn)
        return {k: v / n for k, v in sums.items()}

    # --- logging -----------------------------------------------------------------------------------------
    def _append_csv(self, name: str, row: dict[str, Any]) -> None:
        """Append a row under the file's existing header (columns stay aligned across versions and resumes)."""
        path = self.out / name
        fields = list(row)
        if path.exists():
            with open(path, newline="") as f:
                header = next(csv.reader(f), None)
            if header:
                fields = header
        with open(path, "a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
            if path.stat().st_size == 0:
                w.writeheader()
            w.writerow(row)

    def _export(self, folder: str, metrics: dict[str, float] | None = None) -> None:
        meta = {"step": str(self.step), "elapsed_s": f"{self._elapsed_now():.0f}", "train_config": json.dumps(dataclasses.asdict(self.cfg))}
        if metrics:
            meta["val_metrics"] = json.dumps(metrics)
        save_pretrained(self.model, self.out / folder, metadata=meta)

    # --- the loop ----------------------------------------------------------------------------------------
    def run(self) -> dict[str, float]:
        """Train until ``steps``, the time budget, or ``stop_after_steps``; checkpoint on the way out."""
        self.setup()
        cfg = self.cfg
        t0 = self._t0 = time.monotonic()
        budget = cfg.max_minutes * 60 if cfg.max_minutes else math.inf
        stop = cfg.steps if self.stop_after_steps is None else min(cfg.steps, self.step + self.stop_after_steps)
        # Rank r of world takes its own batch_size images of step s's world × batch_size (disjoint).
        sampler = StepBatchSampler(self.step, stop, cfg.batch_size, rank=self.rank, world=self.world)
        # Its own generator: creating a DataLoader iterator would otherwise draw from the global RNG, and a
        # resumed chunk (one more iterator) would then diverge from an uninterrupted run in any method that
        # draws random numbers (ISGAN's label flips).
        loader = DataLoader(self.train_set, batch_sampler=sampler, num_workers=cfg.num_workers,
                            persistent_workers=False, generator=torch.Generator().manual_seed(cfg.seed))
        ctx = _Context(self)
        bar = None
        if self.progress and self.main:
            from tqdm import tqdm

            bar = tqdm(total=cfg.steps, initial=self.step, desc=cfg.model, unit="step", dynamic_ncols=True)
        window: dict[str, float] = {}
        wn, wt = 0, time.monotonic()
        last_val: dict[str, float] = {}
        set_train_mode(self.model, cfg.freeze_bn)
        autocast = torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32,
                                  enabled=self.amp_dtype is not None)
        # SIGTERM (kill, a job scheduler, a shell that ignores Ctrl-C in background jobs) ends a single-process
        # run like --max-minutes: after the current step, with a checkpoint and last/. Under torchrun the
        # launcher signals every rank and stops them itself, so the handler is left to it.
        terminated: list[int] = []
        old_handler = None
        if self.world == 1 and threading.current_thread() is threading.main_thread():
            old_handler = signal.signal(signal.SIGTERM, lambda signum, frame: terminated.append(signum))
        try:
            for batch in loader:
                dist.broadcast_buffers(self.model)  # DDP's broadcast_buffers: rank 0's running statistics
                stage = self._stage_at(self.step)
                if stage != self.stage:
                    if self.main:  # the model as the finished stage left it (e.g. SFTN's JT-stage figures)
                        self._export(f"stage-{self.stage}")
                    self.stage = stage
                    self._build_optimizers(stage)
                ctx.step, ctx.stage = self.step, self.stage
                start, length = self.stage_bounds[self.stage]
                ctx.stage_progress = (self.step - start) / max(1, length)
                batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
                if cfg.channels_last:
                    batch["cover"] = batch["cover"].contiguous(memory_format=torch.channels_last)
                self._mid_step = True  # a crash from here to the step's end leaves a half-updated model
                with autocast:
                    logs = self.model.training_step(batch, ctx)
                for s in self.schedulers.values():
                    s.step()
                self.step += 1
                self._mid_step = False
                for k, v in logs.items():
                    window[k] = window.get(k, 0.0) + v
                wn += 1
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix({k: f"{v:.2e}" for k, v in list(logs.items())[:3]}, refresh=False)
                if self.step % cfg.log_every == 0 or self.step == stop:
                    dt = time.monotonic() - wt
                    lr = next(iter(self.optimizers.values())).param_groups[0]["lr"]
                    means = dist.all_reduce_mean({k: v / wn for k, v in window.items()})  # global means
                    if self.main:
                        self._append_csv("train.csv", {"step": self.step, "stage": self.stage, "lr": lr,
                                                       "elapsed_s": round(self._elapsed_now(), 2),
                                                       "img_per_s": wn * cfg.batch_size * self.world
                                                       / max(dt, 1e-9),
                                                       **means})
                    window, wn, wt = {}, 0, time.monotonic()
                validating = self.val_set is not None and (self.step % cfg.val_every == 0 or self.step == cfg.steps)
                if validating and self.main:
                    last_val = self.validate()
                    self._append_csv("val.csv", {"step": self.step, **last_val})
                    score = validation_score(last_val)
                    if score > self.best:
                        self.best = score
                        self._export("best", last_val)
                    if bar is not None:
                        if "detector_accuracy" in last_val:
                            bar.write(f"step {self.step}: detection accuracy {last_val['detector_accuracy']:.4f} "
                                      "(8-bit covers and stegos)")
                        else:
                            second = (f"bit accuracy {last_val['bit_accuracy']:.4f}" if self.messages
                                      else f"secret {last_val['secret_psnr']:.2f} dB")
                            bar.write(f"step {self.step}: cover {last_val['cover_psnr']:.2f} dB, {second} "
                                      "(after 8-bit rounding)")
                if self.step % cfg.ckpt_every == 0 and self.main:
                    self._save_checkpoint()
                if self.world > 1 and (validating or self.step % cfg.ckpt_every == 0):
                    dist.barrier()  # the other ranks wait while rank 0 validates / writes
                # Rank 0 decides on the time budget, so that every rank stops after the same step.
                over = time.monotonic() - t0 > budget
                if budget < math.inf:  # (the same on every rank, so all or none join the broadcast)
                    over = dist.main_decides(over)
                if over or terminated:
                    why = "stopped by SIGTERM" if terminated else f"time budget of {cfg.max_minutes} min reached"
                    msg = f"{why} at step {self.step}; continue with --resume"
                    if bar is not None:
                        bar.write(msg)
                    elif terminated:
                        print(msg, file=sys.stderr, flush=True)
                    break
        finally:
            if old_handler is not None:
                signal.signal(signal.SIGTERM, old_handler)
            self.elapsed, self._t0 = self._elapsed_now(), None
            if bar is not None:
                bar.close()
            # Save only a consistent state: after an error inside a step, the last periodic checkpoint stands.
            if self.step > 0 and not self._mid_step and self.main:
                self._save_checkpoint()
                self._export("last")
        if self.world > 1:  # (after an exception no collective: the other ranks may be gone)
            dump = os.environ.get("DEEPSTEG_DUMP_RANK_STATE")  # test hook: each rank's own final state, taken
            if dump:  # before the buffer broadcast below, so that the test sees real agreement
                torch.save(self.model.state_dict(), Path(dump) / f"rank{self.rank}.pt")
            dist.broadcast_buffers(self.model)  # every rank ends holding what rank 0 saved
            dist.barrier()  # no rank leaves before rank 0 has written the last checkpoint
            dist.cleanup()
        return last_val


def train(cfg: TrainConfig, resume: bool = False, stop_after_steps: int | None = None,
          progress: bool = True) -> dict[str, float]:
    """Convenience wrapper: ``Trainer(cfg, resume).run()``."""
    return Trainer(cfg, resume, stop_after_steps, progress).run()
