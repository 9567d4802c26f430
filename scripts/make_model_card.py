"""Turn a finished training run into shipped weights + a model card, with every figure measured here.

    python scripts/make_model_card.py --run runs/stegopnet --name stegopnet --val ../shared/corpus/val \
        --hardware "2-core CPU (…)" [--compare runs/stegopnet-noppm:stegopnet-noppm]

* evaluates RUN/last on the validation folder with `deepsteg evaluate`'s protocol (real 8-bit PNG round trip);
* ships fp16 weights only if the rounded figures hold within 0.05 dB of fp32, else fp32;
* spot-checks the installed CLI (`deepsteg hide` / `deepsteg reveal` as subprocesses) on two unrelated
  validation photos at 256×256 and at 517×389;
* writes src/deepsteg/zoo/pretrained/NAME/{model.safetensors, config.json, MODEL_CARD.md, metrics.json}.
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

import torch

import deepsteg
from deepsteg.data import centre_crop
from deepsteg.evaluate import evaluate_folder
from deepsteg.io import list_images, read_image, to_grey, write_png
from deepsteg.metrics import psnr, ssim
from deepsteg.zoo import save_pretrained

ROOT = Path(__file__).resolve().parent.parent
KEYS = ["cover_psnr", "cover_ssim", "cover_ms_ssim", "secret_psnr", "secret_ssim", "secret_ms_ssim",
        "float_cover_psnr", "float_secret_psnr", "cover_changing_rate", "decoded_rate", "payload_bpp"]


def run_stats(run: Path) -> dict:
    rows = list(csv.DictReader(open(run / "train.csv")))
    cfg = json.loads((run / "train_config.json").read_text())
    # Training time from the logged throughput (each row covers log_every steps); validation time excluded.
    ckpt = torch.load(run / "checkpoint.pt", weights_only=True, map_location="cpu")
    world = int(ckpt.get("world", 1))
    # img_per_s counts all processes; each row covers the steps since the previous row (not always log_every).
    seconds, prev = 0.0, 0
    for r in rows:
        step = int(r["step"])
        if step > prev:
            seconds += (step - prev) * cfg["batch_size"] * world / float(r["img_per_s"])
        prev = step
    change = run / "SCHEDULE_CHANGE.txt"
    return {"cfg": cfg, "steps": int(rows[-1]["step"]), "seconds": float(seconds), "world": world,
            "schedule_change": change.read_text().strip() if change.is_file() else "",
            "img_per_s": sum(float(r["img_per_s"]) for r in rows) / len(rows),
            "final_loss": sum(float(r.get("loss") or r.get("l_m") or "nan") for r in rows[-10:]) / min(10, len(rows))}


def evaluate(name: str, folder: Path | None, val: Path) -> dict:
    m = (deepsteg.create_model(name, weights=folder) if folder is not None
         else deepsteg.create_model(name, pretrained=True)).to(memory_format=torch.channels_last)
    return evaluate_folder(m, val, size=256).summary()


def spot_check(name: str, weights: Path | None, val: Path, refine: str = "0") -> list[dict]:
    """Hide/reveal through the real CLI on two unrelated photos, at 256×256 and at 517×389 (``refine``: the
    hide's --refine; "0", the network alone, is what a card reports)."""
    files = list_images(val)
    cover_f, secret_f = files[0], files[len(files) // 2]
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        for (h, w) in [(256, 256), (389, 517)]:
            def prep(p: Path, tag: str) -> Path:
                x = read_image(p)[None]
                scale = max(h / x.shape[-2], w / x.shape[-1])
                size = (max(h, round(x.shape[-2] * scale)), max(w, round(x.shape[-1] * scale)))
                x = torch.nn.functional.interpolate(x, size=size, mode="area")[0]
                top, left = (x.shape[-2] - h) // 2, (x.shape[-1] - w) // 2
                return write_png(x[:, top:top + h, left:left + w], t / f"{tag}_{w}x{h}.png")

            c, s = prep(cover_f, "cover"), prep(secret_f, "secret")
            stego, rev = t / f"stego_{w}x{h}.png", t / f"rev_{w}x{h}.png"
            cli = [sys.executable, "-m", "deepsteg"]
            wflag = ["--weights", str(weights)] if weights is not None else []
            subprocess.run([*cli, "hide", str(c), str(s), "-o", str(stego), "--model", name, *wflag, "--refine",
                            refine], check=True, capture_output=True)
            subprocess.run([*cli, "reveal", str(stego), "-o", str(rev), "--model", name, *wflag], check=True,
                           capture_output=True)
            C, S, E, R = (read_image(p)[None] for p in (c, s, stego, rev))
            if deepsteg.create_model(name).secret_channels == 1:  # grey-secret models: compare luma with luma
                S, R = to_grey(S), to_grey(R)
            out.append({"size": f"{w}×{h}", "cover": cover_f.name, "secret": secret_f.name,
                        "cover_psnr": float(psnr(E, C)), "cover_ssim": float(ssim(E, C)),
                        "secret_psnr": float(psnr(R, S)), "secret_ssim": float(ssim(R, S))})
    return out


def optimiser_name(model: torch.nn.Module) -> str:
    """The main optimiser's name as the papers write it (the trainer's default for a group is Adam)."""
    spec = model.optimizer_groups(model.stages()[0][0]).get("main")
    kind = spec.get("optimizer", "adam") if isinstance(spec, dict) else "adam"
    return {"adam": "Adam", "adamax": "AdaMax", "sgd": "SGD"}.get(kind, kind)


def fmt(m: dict, k: str) -> str:
    v = m[k]
    if "ssim" in k or k == "decoded_rate":
        return f"{v:.4f}"
    if k == "cover_changing_rate":
        return f"{100 * v:.2f} %"
    return f"{v:.2f}"


def weightless_card(name: str, args: argparse.Namespace) -> None:
    """A classical method: no training, no weights — only the measured figures."""
    figures = evaluate(name, None, args.val)
    spots = spot_check(name, None, args.val)
    out = ROOT / "src" / "deepsteg" / "zoo" / "pretrained" / name
    out.mkdir(parents=True, exist_ok=True)
    e = deepsteg.zoo.get_entry(name)
    lines = [f"# {name}", "", f"{e.description}. {e.paper}.", "",
             "No parameters and no training: nothing is learnt, and the figures below are exact properties of the "
             "bit operations on these photos.", "",
             "## Figures on `shared/corpus/val` (9 photos)", "",
             f"`deepsteg evaluate --model {name} --data shared/corpus/val --size 256 --json out.json` (stego written "
             "as an 8-bit PNG and read back; measured " + date.today().isoformat() + ").", "",
             "| figure | after PNG round trip |", "|---|---|"]
    for k, label in [("cover_psnr", "cover PSNR (dB)"), ("secret_psnr", "secret PSNR (dB)"),
                     ("cover_ssim", "cover SSIM"), ("secret_ssim", "secret SSIM"), ("cover_ms_ssim", "cover MS-SSIM"),
                     ("secret_ms_ssim", "secret MS-SSIM"), ("cover_changing_rate", "cover changing rate (StegNet eq. 3)"),
                     ("decoded_rate", "decoded rate (StegNet eq. 1)"), ("payload_bpp", "payload (bpp)")]:
        lines.append(f"| {label} | {fmt(figures, k)} |")
    lines += ["", "CLI spot checks (real files):", "", "| size | cover PSNR | secret PSNR |", "|---|---|---|"]
    lines += [f"| {s['size']} | {s['cover_psnr']:.2f} | {s['secret_psnr']:.2f} |" for s in spots]
    if args.notes:
        lines += ["", args.notes.strip()]
    (out / "MODEL_CARD.md").write_text("\n".join(lines) + "\n")
    keep = {k: figures[k] for k in ["model", "n", *KEYS]}
    keep.update({"steps": 0, "train_minutes": 0.0, "weights_dtype": "none", "spot_checks": spots})
    (out / "metrics.json").write_text(json.dumps(keep, indent=2) + "\n")
    print("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", type=Path, default=None, help="training run (not for weightless methods)")
    ap.add_argument("--name", required=True)
    ap.add_argument("--val", type=Path, required=True)
    ap.add_argument("--hardware", required=True)
    ap.add_argument("--compare", action="append", default=[],
                    help="RUN:NAME[:SUBDIR] of a same-budget sibling run (weights RUN/SUBDIR, default last)")
    ap.add_argument("--weights-dir", default="last",
                    help="the run's weights folder to ship, e.g. last-bn after `deepsteg recalibrate-bn`")
    ap.add_argument("--threads", type=int, default=None,
                    help="--threads of the reproduce command, for runs whose train_config.json predates the field")
    ap.add_argument("--notes", default="", help="Markdown appended to the card")
    ap.add_argument("--data-desc", default="`shared/corpus/train` (41 photographs, ≤ 2048 px; nothing else)",
                    help="Markdown for the card's Data line (the run's training folder)")
    ap.add_argument("--data-path", default="shared/corpus/train", help="--data of the card's reproduce command")
    ap.add_argument("--data-prep", default="", help="command that made --data-path, if it is derived")
    ap.add_argument("--init-desc", default="",
                    help="short Markdown name of the run's --init weights when they are a version no longer shipped "
                         "(card and README table), e.g. 'version 2 (abc1234: 21,000 steps)'")
    ap.add_argument("--init-commit", default="",
                    help="commit whose package holds those weights: the card says how to restore them")
    args = ap.parse_args()
    torch.set_num_threads(2)
    name, run = args.name, args.run
    if deepsteg.zoo.get_entry(name).weightless:
        return weightless_card(name, args)
    stats = run_stats(run)
    wdir = run / args.weights_dir
    fp32 = evaluate(name, wdir, args.val)
    with tempfile.TemporaryDirectory() as tmp:
        m = deepsteg.create_model(name, weights=wdir)
        save_pretrained(m, Path(tmp) / "fp16", dtype=torch.float16)
        fp16 = evaluate(name, Path(tmp) / "fp16", args.val)
    holds = all(abs(fp16[k] - fp32[k]) < 0.05 for k in ("cover_psnr", "secret_psnr"))
    dtype = torch.float16 if holds else None
    figures = fp16 if holds else fp32
    out = ROOT / "src" / "deepsteg" / "zoo" / "pretrained" / name
    model = deepsteg.create_model(name, weights=wdir)
    save_pretrained(model, out, dtype=dtype, metadata={"step": str(stats["steps"]), "source_run": run.name})
    spots = spot_check(name, out, args.val)
    siblings = []
    for spec in args.compare:
        r, n, *sub = spec.split(":")
        siblings.append((n, evaluate(n, Path(r) / (sub[0] if sub else "last"), args.val), run_stats(Path(r))))

    cfg = stats["cfg"]
    threads = args.threads or cfg.get("threads")
    # init_flag: the reproduce command's --init; init_md: how the card and the README table name those weights
    init = Path(cfg["init"]).resolve() if cfg.get("init") else None
    init_flag = init_md = ""
    if init is not None:
        if init.parent.name == "pretrained":  # weights shipped in the package
            init_flag, init_md = f"src/deepsteg/zoo/pretrained/{init.name}", f"the shipped {init.name} weights"
        else:  # a run's folder: named under runs/ when it is there (e.g. runs/RUN/last)
            runs_dir = (ROOT / "runs").resolve()
            init_flag = ("runs/" + init.relative_to(runs_dir).as_posix() if init.is_relative_to(runs_dir)
                         else f"runs/{init.parent.name}/{init.name}")
            init_md = f"`{init_flag}`"
        init_md = args.init_desc or init_md
    params = sum(p.numel() for n, p in model.named_parameters() if not n.startswith("critic."))
    lines = [
        f"# {name}", "",
        f"{deepsteg.zoo.get_entry(name).description}. Paper: {deepsteg.zoo.get_entry(name).paper}.", "",
        "## Training", "",
        f"* Data: {args.data_desc}, random {cfg['crop']}×{cfg['crop']} "
        "crops with flips and 90° rotations, cover and secret from different photos.",
        f"* Steps: {stats['steps']:,} × batch {cfg['batch_size'] * stats['world']} = "
        f"{stats['steps'] * cfg['batch_size'] * stats['world']:,} cover/secret pairs; {optimiser_name(model)} lr "
        f"{cfg['lr'] or model.config.lr:g}, {cfg['schedule']} decay to ×{cfg['min_lr_ratio']}; seed {cfg['seed']}.",
        *([f"* Schedule note: {stats['schedule_change']}"] if stats["schedule_change"] else []),
        *([f"* Started from: {init_md} (weights of an earlier run; the steps above are this run's only)."
           + (f" `git checkout {args.init_commit} -- src/deepsteg/zoo/pretrained/{name}` restores them; the "
              "reproduce command's `--init` means that folder." if args.init_commit else "")] if init else []),
        *([("* BatchNorm frozen (`--freeze-bn --keep-bn-stats`): every BN layer kept the starting weights' "
            "statistics (those of the frozen stage that made them)" if cfg.get("keep_bn_stats") else
            "* BatchNorm frozen (`--freeze-bn`): every BN layer's statistics were recomputed exactly over 200 "
            "training batches of the starting weights and then held fixed")
           + ", so training normalised as evaluation does; BN's affine weights still learnt."]
          if cfg.get("freeze_bn") else []),
        f"* Time and hardware: {stats['seconds'] / 60:.0f} min of training steps on {args.hardware} "
        f"(~{stats['img_per_s']:.0f} img/s).",
        *([f"* Prepare the data: `{args.data_prep}`."] if args.data_prep else []),
        "* Reproduce: `deepsteg train " + name + f" --data {args.data_path} --val shared/corpus/val "
        f"--out runs/{name} --steps {cfg['steps']} --batch-size {cfg['batch_size']} --crop {cfg['crop']} "
        f"--val-crop {cfg['val_crop']} --val-every {cfg['val_every']} --lr {cfg['lr'] or model.config.lr:g} "
        f"--schedule {cfg['schedule']} --seed {cfg['seed']}"
        + (f" --threads {threads}" if threads else "")
        + (f" --init {init_flag}" if init else "") + (" --freeze-bn" if cfg.get("freeze_bn") else "")
        + (" --keep-bn-stats" if cfg.get("keep_bn_stats") else "")
        + "".join(f" --set {k}={json.dumps(v)}" for k, v in cfg["overrides"].items()) + "` (`--max-minutes M` "
        "and `--resume` split it into chunks).",
        f"* Config: `{json.dumps(model.config_dict())}`; {params / 1e6:.2f} M parameters (hiding + reveal).",
        f"* Weights: {'fp16' if holds else 'fp32'} safetensors "
        f"({'fp16 figures within 0.05 dB of fp32' if holds else 'fp16 lost more than 0.05 dB, so fp32'}).", "",
        "## Figures on `shared/corpus/val` (9 photos never trained on)", "",
        f"`deepsteg evaluate --model {name} --data shared/corpus/val --size 256 --json out.json`: centre crops "
        "256×256, cover *i* with secret *(i + 4) mod 9*; the stego is written as an 8-bit PNG and read back before "
        "the reveal. Measured " + date.today().isoformat() + ".", "",
        "| figure | after PNG round trip | float tensors (no rounding) |", "|---|---|---|",
        f"| cover PSNR (dB) | {fmt(figures, 'cover_psnr')} | {fmt(figures, 'float_cover_psnr')} |",
        f"| secret PSNR (dB) | {fmt(figures, 'secret_psnr')} | {fmt(figures, 'float_secret_psnr')} |",
        f"| cover SSIM | {fmt(figures, 'cover_ssim')} | |",
        f"| secret SSIM | {fmt(figures, 'secret_ssim')} | |",
        f"| cover MS-SSIM | {fmt(figures, 'cover_ms_ssim')} | |",
        f"| secret MS-SSIM | {fmt(figures, 'secret_ms_ssim')} | |",
        f"| cover changing rate (StegNet eq. 3) | {fmt(figures, 'cover_changing_rate')} | |",
        f"| decoded rate (StegNet eq. 1) | {fmt(figures, 'decoded_rate')} | |",
        f"| payload (StegNet eq. 2 / StegoPNet eq. 12, bpp) | {fmt(figures, 'payload_bpp')} | |", "",
        "Per image (after PNG round trip):", "",
        "| cover | secret | cover PSNR | cover SSIM | secret PSNR | secret SSIM |", "|---|---|---|---|---|---|",
    ]
    for r in figures["images"]:
        lines.append(f"| {r['cover']} | {r['secrets'][0]} | {r['cover_psnr']:.2f} | {r['cover_ssim']:.4f} | "
                     f"{r['secret_psnr']:.2f} | {r['secret_ssim']:.4f} |")
    lines += ["", "## CLI spot checks (two unrelated validation photos, real files)", "",
              "`deepsteg hide COVER SECRET -o stego.png` then `deepsteg reveal stego.png -o rev.png`; figures from "
              "the files:", "", "| size | cover | secret | cover PSNR | secret PSNR |", "|---|---|---|---|---|"]
    for s in spots:
        lines.append(f"| {s['size']} | {s['cover']} | {s['secret']} | {s['cover_psnr']:.2f} | {s['secret_psnr']:.2f} |")
    if siblings:
        lines += ["", "## Same-budget comparison", "",
                  "| model | steps | cover PSNR | secret PSNR | cover SSIM | secret SSIM | final train loss |",
                  "|---|---|---|---|---|---|---|",
                  f"| {name} | {stats['steps']:,} | {fmt(figures, 'cover_psnr')} | {fmt(figures, 'secret_psnr')} | "
                  f"{fmt(figures, 'cover_ssim')} | {fmt(figures, 'secret_ssim')} | {stats['final_loss']:.2e} |"]
        for n, f, st in siblings:
            lines.append(f"| {n} | {st['steps']:,} | {fmt(f, 'cover_psnr')} | {fmt(f, 'secret_psnr')} | "
                         f"{fmt(f, 'cover_ssim')} | {fmt(f, 'secret_ssim')} | {st['final_loss']:.2e} |")
    if args.notes:
        lines += ["", args.notes.strip()]
    lines += ["", f"Python {platform.python_version()}, torch {torch.__version__}, {platform.machine()}.", ""]
    card = "\n".join(lines)
    (out / "MODEL_CARD.md").write_text(card)
    keep = {k: figures[k] for k in ["model", "n", *KEYS]}
    keep.update({"steps": stats["steps"], "train_minutes": round(stats["seconds"] / 60, 1), "weights_dtype":
                 "float16" if holds else "float32", "spot_checks": spots, "fp32_cover_psnr": fp32["cover_psnr"],
                 "fp32_secret_psnr": fp32["secret_psnr"],
                 **({"init": init_md + (", with BN frozen" if cfg.get("freeze_bn") else "")} if init else {})})
    (out / "metrics.json").write_text(json.dumps(keep, indent=2) + "\n")
    print(card)


if __name__ == "__main__":
    main()
