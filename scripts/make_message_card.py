"""Turn a finished message-model run (SFTN) into shipped weights + a model card, every figure measured here.

    python scripts/make_message_card.py --run runs/sftn --name sftn --train ../shared/corpus/train \
        --val ../shared/corpus/val --hardware "2-core CPU (…)" [--notes "…"]

* calibrates ``error_rate`` (which sizes the payload's Reed–Solomon code) on centre crops of the *training*
  photos: 1.25 × the worst per-image raw bit error rate after PNG rounding, so the validation figures stay honest;
* the paper's Table IV columns on the validation photos: accuracy of the JT-stage model without rounding and with
  rounding, accuracy after the SF-stage, PSNR, SSIM (``RUN/stage-jt`` and ``RUN/last``);
* ``deepsteg evaluate``'s message protocol (bit accuracy after a real PNG round trip, float accuracy, bytes that
  fit at the default error correction and whether they came back exactly);
* 2,000-byte random payloads in 256×256 crops of every validation photo, three payloads each, through PNG files;
* the installed CLI (`deepsteg hide --file`, `deepsteg reveal`) at 517×389, with and without a passphrase;
* fp16 weights only if bit accuracy after rounding holds within 0.001 of fp32.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

import numpy as np
import torch

import deepsteg
from deepsteg.data import centre_crop
from deepsteg.evaluate import evaluate_folder
from deepsteg.io import list_images, quantize, read_image, write_png
from deepsteg.metrics import psnr, ssim
from deepsteg.payload import PayloadError, hide_bytes, reveal_bytes
from deepsteg.zoo import save_pretrained

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_model_card import run_stats  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
KEYS = ["model", "n", "cover_psnr", "cover_ssim", "cover_ms_ssim", "float_cover_psnr", "bit_accuracy",
        "float_bit_accuracy", "payload_bytes", "payload_exact", "payload_bpp", "cover_changing_rate"]


def crops(folder: Path, size: int = 256) -> list[tuple[str, torch.Tensor]]:
    return [(f.name, centre_crop(read_image(f), size)[None]) for f in list_images(folder)]


@torch.inference_mode()
def accuracies(model, images: list[tuple[str, torch.Tensor]]) -> dict:  # noqa: ANN001
    """Per-image bit accuracy on float and rounded stegos (bits seeded by the image index, as evaluate does)."""
    fl, rd, ps, ss = [], [], [], []
    for i, (_, x) in enumerate(images):
        g = torch.Generator().manual_seed(i)
        bits = torch.randint(0, 2, (1, model.capacity_bits(*x.shape[-2:])), generator=g).float()
        s = model.embed(x, bits)
        q = quantize(s)
        fl.append(float(((model.extract(s) > 0.5) == (bits > 0.5)).float().mean()))
        rd.append(float(((model.extract(q) > 0.5) == (bits > 0.5)).float().mean()))
        ps.append(float(psnr(q, x)))
        ss.append(float(ssim(q, x)))
    return {"float": float(np.mean(fl)), "rounded": float(np.mean(rd)), "worst_rounded": float(min(rd)),
            "p90_ber": float(np.percentile([1 - a for a in rd], 90)),
            "psnr": float(np.mean(ps)), "ssim": float(np.mean(ss))}


@torch.inference_mode()
def payload_trials(model, images, n_bytes: int = 2000, per_image: int = 3) -> dict:  # noqa: ANN001
    ok = total = 0
    with tempfile.TemporaryDirectory() as tmp:
        for i, (_, x) in enumerate(images):
            for j in range(per_image):
                data = np.random.default_rng(1000 * i + j).integers(0, 256, n_bytes, dtype=np.uint8).tobytes()
                pw = "correct horse" if j % 2 else None
                p = write_png(hide_bytes(model, x[0], data, pw, compress=False), Path(tmp) / f"{i}-{j}.png")
                try:
                    ok += reveal_bytes(model, read_image(p), pw) == data
                except PayloadError:
                    pass
                total += 1
    return {"bytes": n_bytes, "exact": ok, "trials": total}


def cli_check(name: str, weights: Path, val: Path) -> list[dict]:
    """`deepsteg hide --file` / `deepsteg reveal` as subprocesses on a 517×389 crop, with and without passphrase."""
    f = list_images(val)[0]
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        x = read_image(f)[None]
        scale = max(389 / x.shape[-2], 517 / x.shape[-1])
        x = torch.nn.functional.interpolate(x, size=(max(389, round(x.shape[-2] * scale)),
                                                     max(517, round(x.shape[-1] * scale))), mode="area")[0]
        cover = write_png(x[:, :389, :517], t / "cover.png")
        payload = t / "payload.bin"
        payload.write_bytes(np.random.default_rng(7).integers(0, 256, 5000, dtype=np.uint8).tobytes())
        cli = [sys.executable, "-m", "deepsteg"]
        for pw in (None, "correct horse"):
            env = dict(os.environ, **({"DEEPSTEG_PASSPHRASE": pw} if pw else {}))
            stego, back = t / "stego.png", t / "back.bin"
            r1 = subprocess.run([*cli, "hide", str(cover), "--file", str(payload), "-o", str(stego), "--model", name,
                                 "--weights", str(weights)], capture_output=True, text=True, env=env)
            r2 = subprocess.run([*cli, "reveal", str(stego), "-o", str(back), "--model", name, "--weights",
                                 str(weights)], capture_output=True, text=True, env=env)
            exact = r1.returncode == 0 and r2.returncode == 0 and back.read_bytes() == payload.read_bytes()
            cp = float(psnr(read_image(stego)[None], read_image(cover)[None])) if stego.exists() else float("nan")
            out.append({"size": "517×389", "cover": f.name, "bytes": 5000, "passphrase": bool(pw), "exact": exact,
                        "cover_psnr": cp, "stderr": (r1.stderr + r2.stderr).strip()[-300:]})
            for p in (stego, back):
                p.unlink(missing_ok=True)
    return out


def weightless(name: str, args: argparse.Namespace) -> None:
    """A classical message method: no training, no weights, exact by construction — only measured figures."""
    model = deepsteg.create_model(name, pretrained=True)
    val = crops(args.val)
    acc = accuracies(model, val)
    ev = evaluate_folder(model, args.val, size=256).summary()
    trials = payload_trials(model, val)
    out = ROOT / "src" / "deepsteg" / "zoo" / "pretrained" / name
    out.mkdir(parents=True, exist_ok=True)
    e = deepsteg.zoo.get_entry(name)
    lines = [f"# {name}", "", f"{e.description}. {e.paper}.", "",
             "No parameters and no training. Figures on `shared/corpus/val` (9 photos, 256×256 centre crops, stego "
             "written as an 8-bit PNG and read back), measured " + date.today().isoformat() + ":", "",
             "| figure | value |", "|---|---|",
             f"| cover PSNR / SSIM | {ev['cover_psnr']:.2f} dB / {ev['cover_ssim']:.4f} |",
             f"| bit accuracy after PNG (float) | {ev['bit_accuracy']:.4f} ({ev['float_bit_accuracy']:.4f}) |",
             f"| exact bytes in 256×256 | {ev['payload_bytes']:.0f} ({100 * ev['payload_exact']:.0f} % recovered) |",
             f"| 2,000-byte payloads recovered exactly | {trials['exact']} / {trials['trials']} |", "",
             "Exact, but the easiest of all to detect: see the benchmark report's steganalysis tables.", ""]
    (out / "MODEL_CARD.md").write_text("\n".join(lines))
    keep = {k: ev[k] for k in KEYS}
    keep.update({"steps": 0, "train_minutes": 0.0, "weights_dtype": "none", "error_rate": 0.0,
                 "payload_2000_bytes": trials, "psnr_check": acc["psnr"]})
    (out / "metrics.json").write_text(json.dumps(keep, indent=2) + "\n")
    print("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", type=Path, default=None, help="training run (not for weightless methods)")
    ap.add_argument("--name", required=True)
    ap.add_argument("--train", type=Path, default=None, help="photos to calibrate error_rate on (not val)")
    ap.add_argument("--val", type=Path, required=True)
    ap.add_argument("--hardware", required=True)
    ap.add_argument("--notes", default="")
    args = ap.parse_args()
    torch.set_num_threads(2)
    name, run = args.name, args.run
    if deepsteg.zoo.get_entry(name).weightless:
        return weightless(name, args)
    stats = run_stats(run)
    cfg = stats["cfg"]
    val, train = crops(args.val), crops(args.train)

    last = deepsteg.create_model(name, weights=run / "last")
    cal = accuracies(last, train)
    error_rate = math.ceil(1e4 * max(1e-3, cal["p90_ber"])) / 1e4
    with tempfile.TemporaryDirectory() as tmp:
        fp32_dir, fp16_dir = Path(tmp) / "fp32", Path(tmp) / "fp16"
        model = deepsteg.create_model(name, weights=run / "last", error_rate=error_rate)
        save_pretrained(model, fp32_dir)
        save_pretrained(model, fp16_dir, dtype=torch.float16)
        a32 = accuracies(deepsteg.create_model(name, weights=fp32_dir), val)
        a16 = accuracies(deepsteg.create_model(name, weights=fp16_dir), val)
    holds = abs(a16["rounded"] - a32["rounded"]) < 1e-3 and abs(a16["psnr"] - a32["psnr"]) < 0.05
    out = ROOT / "src" / "deepsteg" / "zoo" / "pretrained" / name
    save_pretrained(model, out, dtype=torch.float16 if holds else None,
                    metadata={"step": str(stats["steps"]), "source_run": run.name})
    shipped = deepsteg.create_model(name, pretrained=True)
    jt = accuracies(deepsteg.create_model(name, weights=run / "stage-jt"), val) \
        if (run / "stage-jt").is_dir() else None
    sf = accuracies(shipped, val)
    ev = evaluate_folder(shipped, args.val, size=256).summary()
    trials = payload_trials(shipped, val)
    spots = cli_check(name, out, args.val)

    jt_steps = round(cfg["steps"] * cfg["overrides"].get("jt_fraction", shipped.config.jt_fraction))
    params = sum(p.numel() for n, p in shipped.named_parameters() if not n.startswith("critic."))
    e = deepsteg.zoo.get_entry(name)
    lines = [
        f"# {name}", "", f"{e.description}. Paper: {e.paper}.", "",
        "## Training", "",
        f"* Data: `shared/corpus/train` (41 photographs; nothing else), random {cfg['crop']}×{cfg['crop']} crops "
        "with flips and 90° rotations; messages Bernoulli(0.5), one bit per channel value.",
        f"* Steps: {stats['steps']:,} × batch {cfg['batch_size']} — JT-stage {jt_steps:,} steps, SF-stage "
        f"{stats['steps'] - jt_steps:,} steps; Adam lr {cfg['lr'] or shipped.config.lr:g} (critic "
        f"{shipped.config.critic_lr:g}), {cfg['schedule']} decay within each stage; seed {cfg['seed']}"
        + (f"; started from `{cfg['init']}`" if cfg.get("init") else "") + ".",
        f"* Time and hardware: {stats['seconds'] / 60:.0f} min of training steps on {args.hardware} "
        f"(~{stats['img_per_s']:.0f} img/s).",
        "* Reproduce: `deepsteg train " + name + " --data shared/corpus/train --val shared/corpus/val "
        f"--out runs/{name} --steps {cfg['steps']} --batch-size {cfg['batch_size']} --crop {cfg['crop']} "
        f"--val-crop {cfg['val_crop']} --seed {cfg['seed']}"
        + (f" --init {cfg['init']}" if cfg.get("init") else "")
        + "".join(f" --set {k}={json.dumps(v)}" for k, v in cfg["overrides"].items()) + "`.",
        f"* Config: `{json.dumps(shipped.config_dict())}`; {params / 1e6:.3f} M parameters (generator + extractor).",
        f"* `error_rate` {error_rate:.4f}: the 90th percentile of the per-image raw bit error rate after PNG rounding "
        f"on 256×256 centre crops of the 41 *training* photos (mean accuracy {cal['rounded']:.4f}, worst "
        f"{cal['worst_rounded']:.4f}); the payload code doubles it as a margin. Covers harder than that are caught "
        "when hiding: `hide_bytes` reads its own rounded stego back and strengthens the code, or refuses the cover.",
        f"* Weights: {'fp16' if holds else 'fp32'} safetensors (fp16 rounded accuracy {a16['rounded']:.4f} vs fp32 "
        f"{a32['rounded']:.4f}).", "",
        "## The paper's Table IV columns on `shared/corpus/val` (9 photos never trained on, 256×256 centre crops)", "",
        "Measured " + date.today().isoformat() + "; bits seeded per image; \"rounding\" = the 8-bit stego.", "",
        "| accuracy, JT-stage, no rounding | JT-stage, with rounding | after SF-stage (rounded) | PSNR (dB) | SSIM |",
        "|---|---|---|---|---|",
        (f"| {jt['float']:.4f} | {jt['rounded']:.4f} | " if jt else "| — | — | ")
        + f"{sf['rounded']:.4f} | {sf['psnr']:.2f} | {sf['ssim']:.4f} |", "",
        f"(The JT-stage model's stego has PSNR {jt['psnr']:.2f} dB; the SF-stage does not change the generator.)"
        if jt else "", "",
        "## `deepsteg evaluate --model " + name + " --data shared/corpus/val --size 256 --json out.json`", "",
        "Stego written as a real 8-bit PNG and read back; then a payload of `payload_bytes` random bytes (the most "
        "the crop holds at the default error correction) through `hide_bytes` → PNG → `reveal_bytes`.", "",
        "| figure | value |", "|---|---|",
        f"| cover PSNR after PNG (dB) | {ev['cover_psnr']:.2f} (float {ev['float_cover_psnr']:.2f}) |",
        f"| cover SSIM / MS-SSIM | {ev['cover_ssim']:.4f} / {ev['cover_ms_ssim']:.4f} |",
        f"| bit accuracy after PNG (`bit_accuracy`) | {ev['bit_accuracy']:.4f} |",
        f"| bit accuracy on the float stego (`float_bit_accuracy`) | {ev['float_bit_accuracy']:.4f} |",
        f"| raw payload | {ev['payload_bpp']:.0f} bits per pixel |",
        f"| exact bytes in 256×256 at the default error correction (`payload_bytes`) | {ev['payload_bytes']:.0f} |",
        f"| those payloads recovered exactly (`payload_exact`) | {ev['payload_exact']:.2f} |",
        f"| cover changing rate | {100 * ev['cover_changing_rate']:.1f} % |", "",
        f"**{trials['bytes']:,}-byte random payloads in 256×256 crops:** {trials['exact']} of {trials['trials']} "
        "recovered exactly (3 payloads per validation photo, every other one with a passphrase; PNG files).", "",
        "Per image:", "", "| cover | PSNR | bit accuracy | float bit accuracy |", "|---|---|---|---|",
    ]
    for r in ev["images"]:
        lines.append(f"| {r['cover']} | {r['cover_psnr']:.2f} | {r['bit_accuracy']:.4f} | "
                     f"{r['float_bit_accuracy']:.4f} |")
    lines += ["", "## CLI check (installed command, real files, 517×389)", "",
              "`deepsteg hide COVER --file payload.bin -o stego.png` then `deepsteg reveal stego.png -o back.bin` "
              "(passphrase from `DEEPSTEG_PASSPHRASE`):", "", "| bytes | passphrase | exact | cover PSNR |",
              "|---|---|---|---|"]
    lines += [f"| {s['bytes']} | {'yes' if s['passphrase'] else 'no'} | {'yes' if s['exact'] else 'NO'} | "
              f"{s['cover_psnr']:.2f} |" for s in spots]
    if args.notes:
        lines += ["", args.notes.strip()]
    lines += ["", f"Python {platform.python_version()}, torch {torch.__version__}, {platform.machine()}.", ""]
    (out / "MODEL_CARD.md").write_text("\n".join(lines))
    keep = {k: ev[k] for k in KEYS}
    keep.update({"steps": stats["steps"], "train_minutes": round(stats["seconds"] / 60, 1),
                 "weights_dtype": "float16" if holds else "float32", "error_rate": error_rate,
                 "table_iv": {"jt_float": jt and jt["float"], "jt_rounded": jt and jt["rounded"],
                              "sf_rounded": sf["rounded"], "psnr": sf["psnr"], "ssim": sf["ssim"]},
                 "payload_2000_bytes": trials, "cli_checks": [{k: v for k, v in s.items() if k != "stderr"}
                                                             for s in spots]})
    (out / "metrics.json").write_text(json.dumps(keep, indent=2) + "\n")
    print("\n".join(lines))
    for s in spots:
        if not s["exact"]:
            print("CLI CHECK FAILED:", s["stderr"], file=sys.stderr)


if __name__ == "__main__":
    main()
