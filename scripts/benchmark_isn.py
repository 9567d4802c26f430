"""ISN speed, naive vs optimised, measured side by side in one process (same weights, same inputs).

    python scripts/benchmark_isn.py --model isn --size 128 --batch 4 --steps 5 [--device cuda] [--compile]

* training: img/s of full training steps (forward, backward through the inverse, AdaMax) — "naive" is fp32,
  contiguous tensors, textbook dense blocks; "optimised" adds channels_last, bf16 autocast (CUDA only: bf16 is
  not faster on this CPU, see benchmark_speed.py) and, with --compile, ``torch.compile``;
* inference: ms per image for hide + reveal at --size — naive vs channels_last + the fused dense blocks
  (preallocated concatenation buffer, inference only).
"""

from __future__ import annotations

import argparse
import json
import time

import torch

import deepsteg


class _Ctx:
    step, stage, stage_progress = 0, "float", 1.0

    def __init__(self, opt: torch.optim.Optimizer) -> None:
        self.opt = opt

    def optimize(self, name: str, loss: torch.Tensor) -> None:
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def train_speed(model, batch: dict, steps: int, device: torch.device, amp: bool) -> float:  # noqa: ANN001
    opt = torch.optim.Adamax(model.parameters(), 2e-4)
    ctx = _Ctx(opt)
    step = model.training_step
    auto = torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp)
    with auto:
        step(batch, ctx)  # warm-up (and compilation)
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        with auto:
            step(batch, ctx)
    _sync(device)
    return steps * batch["cover"].shape[0] / (time.perf_counter() - t0)


@torch.inference_mode()
def infer_ms(model, cover: torch.Tensor, secrets: list, reps: int, device: torch.device) -> float:  # noqa: ANN001
    key = "bench" if model.keyed else None
    model.reveal(model.hide(cover, *secrets, key=key), key=key)
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(reps):
        model.reveal(model.hide(cover, *secrets, key=key), key=key)
    _sync(device)
    return 1000 * (time.perf_counter() - t0) / reps


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="isn")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    torch.manual_seed(0)
    naive = deepsteg.create_model(args.model, fused=False).to(dev).train()
    fast = deepsteg.create_model(args.model, fused=True).to(dev)
    fast.load_state_dict(naive.state_dict())
    fast = fast.to(memory_format=torch.channels_last).train()
    k, s, n = naive.num_secrets, args.size, args.batch
    batch = {"cover": torch.rand(n, 3, s, s, device=dev), "secrets": torch.rand(n, k, 3, s, s, device=dev)}
    batch_cl = {"cover": batch["cover"].contiguous(memory_format=torch.channels_last), "secrets": batch["secrets"]}
    res = {"model": args.model, "device": str(dev), "size": s, "batch": n, "threads": torch.get_num_threads()}
    res["train_img_s_naive"] = train_speed(naive, batch, args.steps, dev, amp=False)
    fast_step_model = fast
    if args.compile:
        fast_step_model = torch.compile(fast)
        fast_step_model.training_step = torch.compile(fast.training_step)  # type: ignore[method-assign]
    res["train_img_s_optimised"] = train_speed(fast if not args.compile else fast_step_model, batch_cl, args.steps,
                                               dev, amp=dev.type == "cuda")
    res["train_speedup"] = res["train_img_s_optimised"] / res["train_img_s_naive"]
    naive.eval()
    fast.eval()
    cover = torch.rand(1, 3, 256, 256, device=dev)
    secrets = [torch.rand(1, 3, 256, 256, device=dev) for _ in range(k)]
    res["hide_reveal_ms_naive_256"] = infer_ms(naive, cover, secrets, 3, dev)
    res["hide_reveal_ms_optimised_256"] = infer_ms(fast, cover.contiguous(memory_format=torch.channels_last),
                                                   secrets, 3, dev)
    res["inference_speedup"] = res["hide_reveal_ms_naive_256"] / res["hide_reveal_ms_optimised_256"]
    print(json.dumps(res, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
