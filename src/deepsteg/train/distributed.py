"""Multi-process data parallelism for the trainer: process-group set-up from torchrun's environment and the few
collectives the trainer needs.

Why not :class:`torch.nn.parallel.DistributedDataParallel`: a method's ``training_step`` may run several backward
passes per step (a critic's, then the generator's), each into its own optimiser, and DDP pairs one forward with
one backward and all-reduces over every parameter it wraps. Instead the trainer averages the gradients of exactly
the optimiser being stepped (:func:`average_gradients`) and, like DDP's ``broadcast_buffers=True``, copies rank 0's
buffers (BatchNorm running statistics) to every rank before each step (:func:`broadcast_buffers`). That is what DDP
computes; batch statistics inside a forward pass stay per rank, as in DDP without SyncBatchNorm.

With one process (no ``WORLD_SIZE`` > 1 and no initialised group) every helper is a no-op, so single-process
training is unchanged bit for bit.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable, Iterable, Sequence

import torch
import torch.distributed as dist
from torch import Tensor, nn

from deepsteg.errors import TrainingError

#: Collective timeout: rank 0 may validate and write checkpoints while the others wait at a barrier.
TIMEOUT = datetime.timedelta(minutes=float(os.environ.get("DEEPSTEG_DIST_TIMEOUT_MIN", 60)))
_BUCKET_BYTES = 32 * 1024**2
_owns_group = False


def active() -> bool:
    """True when a process group with more than one rank is running."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_main() -> bool:
    """Rank 0 (or the only process): the one that writes files, logs and validates."""
    return rank() == 0


def init_from_env(device: torch.device) -> tuple[int, int, int]:
    """Join the process group torchrun describes (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``/
    ``MASTER_PORT``); returns ``(rank, world, local_rank)``.

    Initialises only when ``WORLD_SIZE`` > 1 and no group exists yet (a caller's own group is used as is);
    backend ``nccl`` for a CUDA device, else ``gloo``. On CUDA the process's current device becomes
    ``cuda:{local_rank}`` (the caller should train on that device).
    """
    env_world = int(os.environ.get("WORLD_SIZE", "1"))
    global _owns_group
    if dist.is_available() and dist.is_initialized():
        r, w = dist.get_rank(), dist.get_world_size()
    elif env_world > 1:
        if not dist.is_available():
            raise TrainingError("WORLD_SIZE > 1 but this PyTorch build has no torch.distributed")
        r, w = int(os.environ.get("RANK", "0")), env_world
    else:
        return 0, 1, 0
    local = int(os.environ.get("LOCAL_RANK", str(r)))
    if device.type == "cuda" and w > 1:
        if local >= torch.cuda.device_count():
            raise TrainingError(f"LOCAL_RANK {local} but only {torch.cuda.device_count()} CUDA device(s) visible; "
                                "start at most one process per GPU")
        torch.cuda.set_device(local)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=TIMEOUT)
        _owns_group = True
    return r, w, local


def cleanup() -> None:
    """Destroy the process group if :func:`init_from_env` created it."""
    global _owns_group
    if _owns_group and dist.is_initialized():
        dist.destroy_process_group()
    _owns_group = False


def _comm_device() -> torch.device:
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def barrier() -> None:
    if not active():
        return
    if dist.get_backend() == "nccl":
        dist.barrier(device_ids=[torch.cuda.current_device()])
    else:
        dist.barrier()


def _coalesced(tensors: Sequence[Tensor], collective: Callable[[Tensor], None]) -> None:
    """Run ``collective`` in place over ``tensors`` flattened into per-(device, dtype) buckets, then copy back.
    Every rank must pass tensors of the same shapes in the same order."""
    groups: dict[tuple[torch.device, torch.dtype], list[Tensor]] = {}
    for t in tensors:
        groups.setdefault((t.device, t.dtype), []).append(t)
    comm = _comm_device()
    for group in groups.values():
        bucket: list[Tensor] = []
        size = 0
        for i, t in enumerate(group):
            bucket.append(t)
            size += t.numel() * t.element_size()
            if size >= _BUCKET_BYTES or i == len(group) - 1:
                flat = torch.cat([b.reshape(-1) for b in bucket]).to(comm)
                collective(flat)
                off = 0
                for b in bucket:
                    n = b.numel()
                    b.copy_(flat[off:off + n].view(b.shape))  # copy_ keeps b's strides (channels_last)
                    off += n
                bucket, size = [], 0


@torch.no_grad()
def average_gradients(params: Iterable[nn.Parameter], extra_flag: bool = False) -> bool:
    """All-reduce (sum, then ÷ world) the gradients of ``params`` so every rank holds the global mean.

    A parameter whose gradient is None on every rank keeps None (so optimisers still skip it); one that has a
    gradient on some ranks only counts as zeros on the others. ``extra_flag`` is OR-ed across ranks and returned
    in the same collective (the trainer passes "my loss was not finite").
    """
    params = [p for p in params if p.requires_grad]
    if not active():
        return extra_flag
    flags = torch.tensor([p.grad is not None for p in params] + [extra_flag], dtype=torch.int32,
                         device=_comm_device())
    dist.all_reduce(flags)
    has = flags.tolist()
    if has[-1]:
        return True
    grads = []
    for p, h in zip(params, has):
        if not h:
            continue
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        grads.append(p.grad)
    w = dist.get_world_size()

    def reduce(flat: Tensor) -> None:
        dist.all_reduce(flat)
        flat.div_(w)

    _coalesced(grads, reduce)
    return False


@torch.no_grad()
def broadcast_buffers(module: nn.Module, src: int = 0) -> None:
    """Copy rank ``src``'s buffers (e.g. BatchNorm running statistics) to every rank."""
    if active():
        _coalesced(list(module.buffers()), lambda flat: dist.broadcast(flat, src))


@torch.no_grad()
def broadcast_params(module: nn.Module, src: int = 0) -> None:
    """Copy rank ``src``'s parameters to every rank."""
    if active():
        _coalesced([p.data for p in module.parameters()], lambda flat: dist.broadcast(flat, src))


def main_decides(flag: bool) -> bool:
    """Rank 0's ``flag`` on every rank (e.g. "the time budget is spent"), so all ranks stop at the same step."""
    if not active():
        return flag
    t = torch.tensor([int(flag)], dtype=torch.int32, device=_comm_device())
    dist.broadcast(t, 0)
    return bool(t.item())


def all_reduce_mean(values: dict[str, float]) -> dict[str, float]:
    """Mean of each scalar over ranks (every rank must pass the same keys); for logging."""
    if not active() or not values:
        return dict(values)
    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=_comm_device())
    dist.all_reduce(t)
    means = dict(zip(keys, (t / dist.get_world_size()).tolist()))
    return {k: means[k] for k in values}
