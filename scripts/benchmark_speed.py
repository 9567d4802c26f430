"""Hide+reveal speed of shipped models — a benchmark script, not a timed test.

    python scripts/benchmark_speed.py [--models stegopnet,stegopnet-noppm] [--threads 2] [--refine 50] [--json out.json]

Reports, per model: latency of hide → 8-bit rounding → reveal (message models: embed a full load of bits →
rounding → extract) for one 256×256 image on the CPU (median and p90 of
repeated runs after warm-up), batched CPU throughput, and GPU throughput (fp32 and bf16) when CUDA is available.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from datetime import date

import torch

import deepsteg
from deepsteg.io import quantize
from deepsteg.models.message import MessageModel


def _cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _time(fn, repeats: int, warmup: int = 3) -> list[float]:  # noqa: ANN001
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def bench(name: str, device: str, batch: int, size: int, repeats: int, dtype: torch.dtype | None) -> dict:
    model = deepsteg.create_model(name, pretrained=True).to(device).to(memory_format=torch.channels_last)
    cover = torch.rand(batch, 3, size, size, device=device).contiguous(memory_format=torch.channels_last)
    if isinstance(model, MessageModel):  # files and text: embed a full load of bits, round, extract them
        payload = torch.randint(0, 2, (batch, model.capacity_bits(size, size)), device=device).float()

        def run() -> None:
            model.extract(quantize(model.embed(cover, payload).float()))
    else:
        secret = torch.rand(batch, model.secret_channels, size, size, device=device).contiguous(
            memory_format=torch.channels_last)

        def run() -> None:
            model.reveal(quantize(model.hide(cover, secret).float()))

    @torch.inference_mode()
    def step() -> None:
        with torch.autocast(device.split(":")[0], dtype=dtype or torch.float32, enabled=dtype is not None):
            run()
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    ts = _time(step, repeats)
    med = statistics.median(ts)
    return {"model": name, "device": device, "batch": batch, "size": size, "dtype": str(dtype or torch.float32),
            "median_ms": med * 1000, "p90_ms": sorted(ts)[int(0.9 * (len(ts) - 1))] * 1000,
            "img_per_s": batch / med}


def bench_refine(name: str, device: str, batch: int, size: int, steps: int, repeats: int) -> dict:
    """hide → ``steps`` of refinement (deepsteg.refine) → reveal: what `deepsteg hide` (--refine auto) costs."""
    from deepsteg.refine import refine

    model = deepsteg.create_model(name, pretrained=True).to(device).to(memory_format=torch.channels_last).eval()
    cover = torch.rand(batch, 3, size, size, device=device).contiguous(memory_format=torch.channels_last)
    secret = torch.rand(batch, model.secret_channels, size, size, device=device).contiguous(
        memory_format=torch.channels_last)

    def step() -> None:
        stego, _ = refine(model, cover, [secret], steps=steps)
        with torch.inference_mode():
            model.reveal(stego)
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    ts = _time(step, repeats, warmup=1)
    med = statistics.median(ts)
    return {"model": name, "device": device, "batch": batch, "size": size, "dtype": f"float32, refine {steps}",
            "median_ms": med * 1000, "p90_ms": sorted(ts)[int(0.9 * (len(ts) - 1))] * 1000,
            "img_per_s": batch / med}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default=",".join(deepsteg.list_models(pretrained=True)))
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--json", default=None)
    ap.add_argument("--cpu-bf16", action="store_true", help="also time bf16 autocast on the CPU")
    ap.add_argument("--refine", type=int, default=0,
                    help="also time hide with N refinement steps (`deepsteg hide --refine N`) for image models")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for name in args.models.split(","):
        rows.append(bench(name, "cpu", 1, args.size, args.repeats, None))
        rows.append(bench(name, "cpu", 8, args.size, max(3, args.repeats // 4), None))
        if args.cpu_bf16:
            rows.append(bench(name, "cpu", 1, args.size, args.repeats, torch.bfloat16))
        if torch.cuda.is_available():
            for dt in (None, torch.bfloat16):
                rows.append(bench(name, "cuda", 64, args.size, args.repeats, dt))
        if args.refine and getattr(deepsteg.create_model(name), "refinable", False):
            rows.append(bench_refine(name, "cpu", 1, args.size, args.refine, 2))  # seconds each: few repeats
            if torch.cuda.is_available():
                rows.append(bench_refine(name, "cuda", 64, args.size, args.refine, 3))
    hw = f"{_cpu_name()}, {args.threads} threads"
    if torch.cuda.is_available():
        hw += f"; {torch.cuda.get_device_name()}"
    print(f"deepsteg speed, {date.today()}, {hw}, torch {torch.__version__}")
    print(f"`python scripts/benchmark_speed.py --threads {args.threads}` — hide → 8-bit rounding → reveal, "
          f"{args.size}×{args.size}\n")
    print("| model | device | batch | dtype | median ms / batch | p90 ms | images/s |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['device']} | {r['batch']} | {r['dtype'].replace('torch.', '')} | "
              f"{r['median_ms']:.1f} | {r['p90_ms']:.1f} | {r['img_per_s']:.1f} |")
    if not torch.cuda.is_available():
        print("\nNo CUDA GPU on this machine: GPU rows not measured.")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"hardware": hw, "date": str(date.today()), "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
