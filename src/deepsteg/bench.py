"""``deepsteg bench``: quality, capacity and security of any registered models on one folder, in one report.

For each model:

1. ``evaluate``'s protocol (same pairing, real PNG round trip): PSNR / SSIM / MS-SSIM after rounding with the float
   figures beside them, payload (bpp, decoded rate, cover changing rate; bit accuracy and exact bytes for message
   models). The 8-bit stegos are kept for the detectors.
2. Classical steganalysis (StegExpose's four detectors + WS and the fusion) on every cover and stego: ROC AUC.
3. Trained feature-based steganalysis (SPAM, SRM + FLD ensemble): each 256² cover/stego pair is cut into four
   quadrants; the quadrants of the first half of the images train, those of the other half test (disjoint images).
4. Trained deep steganalysers (XuNet, ISGAN's steganalyser, SRNet), each trained by the foundation's trainer on
   ``--train-data`` against this model's stegos, then tested on this folder's covers and stegos (never seen).
5. Parameter count and hide/reveal time per image at ``--size`` on the bench's device.

``update=True`` (``deepsteg bench --update``) benches only the named models and merges them into the report already
in ``--out``: after retraining one model, its rows are re-measured without re-running the others (the whole bench
is about 100 CPU-minutes). Each row records the command and date that measured it, and the merge refuses a report
made with other settings (folder, size, detectors, steganalysers), so that rows stay comparable.

Figures (PNG, referenced from the report): residuals |cover − stego| and |secret − revealed| ×5, ×10, ×50
(StegNet eq. 4) for the first image, per-channel histograms of all covers vs all stegos, ROC curves of every
detector, and the deep detectors' training curves (plus any ``--runs`` training logs).
"""

from __future__ import annotations

import csv
import datetime
import json
import math
import platform
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deepsteg.analysis import DEFAULT_DETECTORS, as_rgb_uint8, roc_auc, score_image
from deepsteg.analysis.roc import p_e
from deepsteg.data import centre_crop
from deepsteg.errors import DeepstegError, ImageReadError
from deepsteg.evaluate import EVAL_KEY, evaluate_folder
from deepsteg.io import atomic_write_bytes, list_images, probe_image, quantize, read_image
from deepsteg.models.message import MessageModel
from deepsteg.refine import check_refinable, refine

DEEP = ("xunet", "isgan-steganalyser", "srnet")
FEATURES = ("spam", "srm")


@dataclass
class BenchConfig:
    models: list[str]
    data: Path
    out: Path
    size: int = 256
    detectors: tuple[str, ...] = DEFAULT_DETECTORS
    features: tuple[str, ...] = FEATURES
    deep: tuple[str, ...] = ("xunet",)
    train_data: Path | None = None
    deep_steps: int = 400
    deep_crop: int = 128
    limit: int | None = None
    runs: dict[str, Path] = field(default_factory=dict)
    device: str = "cpu"
    seed: int = 0
    palette_figures: bool = True  # 256-colour PNGs: about a third of matplotlib's RGBA, for reports kept in git
    update: bool = False  # bench only these models and merge them into the report already in ``out``
    refine: int = 0  # refine every stego for N steps (rows named "MODEL --refine N"; no deep detectors)

    def settings(self) -> dict[str, Any]:
        """What makes two benches' rows comparable (``--update`` refuses to merge rows measured otherwise)."""
        return {"data": str(self.data), "size": self.size, "limit": self.limit, "detectors": list(self.detectors),
                "features": list(self.features), "deep": list(self.deep),
                "train_data": None if self.train_data is None else str(self.train_data),
                "deep_steps": self.deep_steps, "deep_crop": self.deep_crop, "seed": self.seed}


def save_figure(fig: Any, path: Path, palette: bool = True, dpi: int = 90) -> None:
    """Write a matplotlib figure as a PNG atomically (a crashed or interrupted bench leaves no half-written
    figure). ``palette=True`` stores it with a 256-colour palette (median cut, no dithering) and without alpha:
    about a third of matplotlib's RGBA file, so that a report committed to git stays lean. Line plots lose
    nothing visible; the residual panels, already resampled to the figure's resolution, keep their grey levels
    to within the palette's spacing."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    buf.seek(0)
    with Image.open(buf) as im:
        img = im.convert("RGB")
    if palette:
        img = img.quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    atomic_write_bytes(path, lambda fh: img.save(fh, format="PNG", optimize=True))


def _plt():  # noqa: ANN202
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _auc_block(covers: Sequence[float], stegos: Sequence[float]) -> dict[str, Any]:
    c, s = np.asarray(covers, float), np.asarray(stegos, float)
    ok = ~(np.isnan(c) | np.isnan(s))
    if ok.sum() < 1:
        return {"auc": float("nan"), "p_e": float("nan"), "fpr": [], "tpr": []}
    fpr, tpr, auc = roc_auc(c[ok], s[ok])
    return {"auc": float(auc), "p_e": float(p_e(c[ok], s[ok])), "fpr": list(map(float, fpr)),
            "tpr": list(map(float, tpr))}


def _timing(model: Any, size: int, device: torch.device) -> dict[str, float]:
    """Median ms of hide and of reveal (or embed/extract) for one size×size image, after a warm-up."""
    x = torch.rand(1, 3, size, size, device=device)
    if isinstance(model, MessageModel):
        bits = torch.randint(0, 2, (1, model.capacity_bits(size, size)), device=device).float()
        hide, reveal = (lambda: model.embed(x, bits)), (lambda: model.extract(x))
    else:
        secrets = [model.as_secret(torch.rand(1, 3, size, size, device=device)) for _ in range(model.num_secrets)]
        key = "bench" if model.keyed else None
        hide, reveal = (lambda: model.hide(x, *secrets, key=key)), (lambda: model.reveal(x, key=key))
    out = {}
    with torch.inference_mode():
        for name, fn in (("hide_ms", hide), ("reveal_ms", reveal)):
            fn()
            ts = []
            for _ in range(5):
                t0 = time.perf_counter()
                fn()
                ts.append(time.perf_counter() - t0)
            out[name] = 1000 * float(np.median(ts))
    return out


def _quadrants(img: np.ndarray) -> list[np.ndarray]:
    h, w = img.shape[0] // 2, img.shape[1] // 2
    return [img[:h, :w], img[:h, w:], img[h:, :w], img[h:, w:]]


def _residual_figure(path: Path, title: str, pairs: list[tuple[str, np.ndarray, np.ndarray]],
                     palette: bool = True) -> None:
    """Rows of (label, a, b): a, b, |a − b| ×5, ×10, ×50 (StegNet eq. 4's magnified residuals)."""
    plt = _plt()
    fig, axes = plt.subplots(len(pairs), 5, figsize=(13, 2.8 * len(pairs)), squeeze=False)
    for r, (label, a, b) in enumerate(pairs):
        diff = np.abs(a.astype(np.int16) - b.astype(np.int16)).astype(np.float64)
        panels = [(a, f"{label}: original"), (b, f"{label}: stego / revealed")]
        panels += [(np.clip(diff * k, 0, 255).astype(np.uint8), f"|difference| ×{k}") for k in (5, 10, 50)]
        for c, (im, t) in enumerate(panels):
            ax = axes[r][c]
            ax.imshow(im if im.ndim == 3 and im.shape[2] == 3 else im.squeeze(), cmap="gray", vmin=0, vmax=255)
            ax.set_title(t, fontsize=8)
            ax.axis("off")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, path, palette)
    plt.close(fig)


def _histogram_figure(path: Path, title: str, covers: list[np.ndarray], stegos: list[np.ndarray],
                      palette: bool = True) -> None:
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3))
    for c, name in enumerate("RGB"):
        hc = np.bincount(np.concatenate([x[..., c].ravel() for x in covers]), minlength=256)
        hs = np.bincount(np.concatenate([x[..., c].ravel() for x in stegos]), minlength=256)
        axes[c].plot(hc, label="cover", lw=1)
        axes[c].plot(hs, label="stego", lw=1, alpha=0.8)
        axes[c].set_title(f"{name} channel", fontsize=9)
        axes[c].set_xlim(0, 255)
    axes[0].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, path, palette)
    plt.close(fig)


def _roc_figure(path: Path, title: str, rocs: dict[str, dict[str, Any]], palette: bool = True) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    for name, r in rocs.items():
        if r["fpr"]:
            ax.plot(r["fpr"], r["tpr"], label=f"{name} (AUC {r['auc']:.2f})", lw=1.2)
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    save_figure(fig, path, palette)
    plt.close(fig)


def _curves_figure(path: Path, title: str, logs: dict[str, Path], palette: bool = True) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, f in logs.items():
        rows = list(csv.DictReader(open(f)))
        for key in ("loss", "l_m"):  # staged runs (SFTN's SF-stage) log only some terms in some rows
            pts = [(int(r["step"]), float(r[key])) for r in rows if r.get(key)]
            if pts:
                ax.plot(*zip(*pts), label=f"{name} ({key})", lw=1)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.set_yscale("log")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path, palette)
    plt.close(fig)


def _train_deep(arch: str, target: str, cfg: BenchConfig, run: Path, progress: bool = False) -> Any:
    from deepsteg.train import TrainConfig, train
    from deepsteg.zoo import create_model

    assert cfg.train_data is not None
    tc = TrainConfig(model=arch, data=[str(cfg.train_data)], out=str(run), steps=cfg.deep_steps, batch_size=8,
                     crop=cfg.deep_crop, val_crop=cfg.size, val_every=10**9, ckpt_every=10**9, log_every=10,
                     seed=cfg.seed, device=cfg.device, overrides={"target": target})
    train(tc, progress=progress)
    return create_model(arch, weights=run / "last", target=target).eval()


def bench_model(name: str, cfg: BenchConfig, work: Path, figs: Path, progress: bool = True) -> dict[str, Any]:
    """Everything in the module docstring for one model; figures written into ``figs``."""
    from deepsteg.zoo import create_model

    device = torch.device(cfg.device)
    model = create_model(name, pretrained=True).to(device).eval()
    label, fname = row_label(name, cfg.refine), name + (f"-refine{cfg.refine}" if cfg.refine else "")
    stego_dir = work / fname
    stego_dir.mkdir(parents=True, exist_ok=True)
    result = evaluate_folder(model, cfg.data, size=cfg.size, limit=cfg.limit, progress=progress, device=device,
                             keep_dir=stego_dir, refine_steps=cfg.refine)
    ev, all_files = result.summary(), result.files  # the images evaluate paired (unreadable ones skipped)
    files = all_files[:ev["n"]]
    covers = [as_rgb_uint8(centre_crop(read_image(f), cfg.size)) for f in files]
    stegos = [as_rgb_uint8(read_image(stego_dir / f"{i}.png")) for i in range(len(files))]
    res: dict[str, Any] = {"model": label, "quality": {k: v for k, v in ev.items() if k != "images"},
                           "params": sum(p.numel() for n, p in model.named_parameters()
                                         if not n.startswith("critic."))}
    res["speed"] = _timing(model, cfg.size, device)
    if cfg.refine:  # one refinement of a random image's stego, added to the hide time (which has the hide)
        x = torch.rand(1, 3, cfg.size, cfg.size, device=device)
        secrets = [model.as_secret(torch.rand(1, 3, cfg.size, cfg.size, device=device))
                   for _ in range(model.num_secrets)]
        key = "bench" if model.keyed else None
        with torch.inference_mode():
            stego = model.hide(x, *secrets, key=key)
        t0 = time.perf_counter()
        refine(model, x, secrets, stego, steps=cfg.refine, key=key)
        res["speed"]["hide_ms"] += 1000 * (time.perf_counter() - t0)
        res["refine"] = cfg.refine

    # classical detectors
    rocs: dict[str, dict[str, Any]] = {}
    if cfg.detectors:
        sc = [score_image(x, cfg.detectors) for x in covers]
        ss = [score_image(x, cfg.detectors) for x in stegos]
        for d in [*cfg.detectors, "fusion"]:
            rocs[d] = _auc_block([s[d] for s in sc], [s[d] for s in ss])
    # feature-based (SPAM / SRM + FLD), disjoint images
    trained: dict[str, dict[str, Any]] = {}
    half = (len(files) + 1) // 2
    if cfg.features and len(files) >= 4:
        from deepsteg.analysis.trained import detect_with_features

        def pairs(idx: range) -> list[tuple[np.ndarray, np.ndarray]]:
            return [(a, b) for i in idx for a, b in zip(_quadrants(covers[i]), _quadrants(stegos[i]))]

        for kind in cfg.features:
            r = detect_with_features(kind, pairs(range(half)), pairs(range(half, len(files))), cfg.seed, progress)
            trained[f"{kind}+fld"] = {**_auc_block(r["cover_scores"], r["stego_scores"]),
                                      "accuracy": r["accuracy"]}
    # deep detectors, trained on --train-data, tested on this folder
    logs: dict[str, Path] = {}
    if cfg.deep and cfg.train_data is not None and not cfg.refine:  # they train on the network's own stegos
        for arch in cfg.deep:
            det = _train_deep(arch, name, cfg, work / f"{name}-{arch}", progress).to(device)
            logs[arch] = work / f"{name}-{arch}" / "train.csv"
            x_c = torch.stack([torch.from_numpy(c).permute(2, 0, 1) for c in covers]).float().div(255).to(device)
            x_s = torch.stack([torch.from_numpy(s).permute(2, 0, 1) for s in stegos]).float().div(255).to(device)
            pc, ps = det.score(x_c).cpu().numpy(), det.score(x_s).cpu().numpy()
            acc = (float(np.sum(pc < 0.5)) + float(np.sum(ps >= 0.5))) / (len(pc) + len(ps))
            trained[arch] = {**_auc_block(pc, ps), "accuracy": acc}
    res["classical"] = {k: {"auc": v["auc"], "p_e": v["p_e"]} for k, v in rocs.items()}
    res["trained"] = {k: {"auc": v["auc"], "p_e": v["p_e"], "accuracy": v["accuracy"]} for k, v in trained.items()}

    # figures
    f: dict[str, str] = {}
    pairs_fig = [("cover", covers[0], stegos[0])]
    if not isinstance(model, MessageModel):
        from deepsteg.data import pair_indices

        j = pair_indices(0, len(all_files), model.num_secrets)[0]
        secret = model.as_secret(centre_crop(read_image(all_files[j]), cfg.size))[None].to(device)
        key = EVAL_KEY if model.keyed else None
        with torch.inference_mode():
            rev = model.reveal(read_image(stego_dir / "0.png")[None].to(device), key=key)[0]
        pairs_fig.append(("secret 1", as_rgb_uint8(quantize(secret)), as_rgb_uint8(quantize(rev))))
    f["residuals"] = f"{fname}-residuals.png"
    _residual_figure(figs / f["residuals"], f"{label}: residuals on {files[0].name}", pairs_fig,
                     cfg.palette_figures)
    f["histograms"] = f"{fname}-histograms.png"
    _histogram_figure(figs / f["histograms"], f"{label}: pixel histograms, all covers vs all stegos", covers, stegos,
                      cfg.palette_figures)
    f["roc"] = f"{fname}-roc.png"
    _roc_figure(figs / f["roc"], f"{label}: ROC of every detector", {**rocs, **trained}, cfg.palette_figures)
    run_log = cfg.runs.get(name)
    if run_log is not None and (run_log / "train.csv").is_file():
        logs[f"{name} training"] = run_log / "train.csv"
    if logs:
        f["curves"] = f"{fname}-training.png"
        _curves_figure(figs / f["curves"], f"{name}: training curves", logs, cfg.palette_figures)
    res["figures"] = f
    res["rocs"] = {k: {"fpr": v["fpr"], "tpr": v["tpr"]} for k, v in {**rocs, **trained}.items()}
    return res


def row_label(name: str, refine: int = 0) -> str:
    """A report row's name: the model, and its refinement if any (``stegopnet --refine 50``)."""
    return f"{name} --refine {refine}" if refine else name


def _fmt(v: Any, digits: int = 2) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def write_report(results: list[dict[str, Any]], cfg: BenchConfig, command: str) -> None:
    """report.md + results.csv + results.json in ``cfg.out``."""
    out = cfg.out
    rows = []
    for r in results:
        q = r["quality"]
        row = {"model": r["model"], "params": r["params"], **{k: q.get(k) for k in (
            "cover_psnr", "cover_ssim", "cover_ms_ssim", "secret_psnr", "secret_ssim", "secret_ms_ssim",
            "float_cover_psnr", "float_secret_psnr", "payload_bpp", "decoded_rate", "cover_changing_rate",
            "bit_accuracy", "float_bit_accuracy", "payload_bytes", "payload_exact")},
            **{f"{k}_auc": v["auc"] for k, v in r["classical"].items()},
            **{f"{k}_auc": v["auc"] for k, v in r["trained"].items()},
            **{f"{k}_accuracy": v["accuracy"] for k, v in r["trained"].items()},
            **r["speed"]}
        rows.append(row)
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    lines_csv = [",".join(keys)] + [",".join("" if row.get(k) is None else str(row.get(k)) for k in keys)
                                    for row in rows]
    atomic_write_bytes(out / "results.csv", lambda fh: fh.write(("\n".join(lines_csv) + "\n").encode()))
    meta = {"command": command, "data": str(cfg.data), "size": cfg.size, "device": cfg.device,
            "python": platform.python_version(), "torch": torch.__version__, "machine": platform.machine(),
            "settings": cfg.settings()}
    atomic_write_bytes(out / "results.json", lambda fh: fh.write(
        json.dumps({"meta": meta, "models": results}, indent=2).encode() + b"\n"))

    n = results[0]["quality"]["n"] if results else 0
    made: dict[tuple[str, str], list[str]] = {}  # (command, where) → models it measured
    for r in results:
        m = r.get("measured") or {}
        where = " / ".join(x for x in (m.get("date"), m.get("platform")) if x)
        made.setdefault((m.get("command", command), where), []).append(r["model"])
    if len(made) == 1:
        (cmd, where), _ = next(iter(made.items()))
        made_by = [f"Made by: `{cmd}`" + (f" ({where})" if where else "")]
    else:  # merged with --update: say which command measured which rows
        made_by = ["Made by (rows merged with `--update`):", ""] + [
            f"* {', '.join(f'`{x}`' for x in ms)}: `{cmd}`" + (f" ({where})" if where else "")
            for (cmd, where), ms in made.items()]
    md = [f"# deepsteg bench — {cfg.data.name} ({n} images, {cfg.size}×{cfg.size} centre crops)", "",
          *made_by, "",
          f"{platform.python_version()} / torch {torch.__version__} / {platform.machine()} / device {cfg.device}.",
          "Every figure is after writing the stego as an 8-bit PNG and reading it back, except the columns marked "
          "*float*. Cover *i* hides image *(i + ⌊n/2⌋) mod n* (`deepsteg evaluate`'s pairing).", "",
          "## Quality and capacity", "",
          "| model | cover PSNR / SSIM / MS-SSIM | secret PSNR / SSIM / MS-SSIM | *float* cover / secret PSNR | "
          "payload (bpp) | decoded rate | cover changing rate | bit accuracy (*float*) | exact bytes in "
          f"{cfg.size}² |", "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        q = r["quality"]
        msg = "bit_accuracy" in q
        md.append(
            f"| `{r['model']}` | {_fmt(q['cover_psnr'])} / {_fmt(q['cover_ssim'], 4)} / "
            f"{_fmt(q['cover_ms_ssim'], 4)} | "
            + ("— | " if msg else f"{_fmt(q['secret_psnr'])} / {_fmt(q['secret_ssim'], 4)} / "
               f"{_fmt(q['secret_ms_ssim'], 4)} | ")
            + f"{_fmt(q['float_cover_psnr'])} / {'—' if msg else _fmt(q['float_secret_psnr'])} | "
            f"{_fmt(q['payload_bpp'])} | {'—' if msg else _fmt(q['decoded_rate'], 4)} | "
            f"{100 * q['cover_changing_rate']:.1f} % | "
            + (f"{q['bit_accuracy']:.4f} ({q['float_bit_accuracy']:.4f}) | {q['payload_bytes']:.0f} "
               f"({100 * q['payload_exact']:.0f} % exact) |" if msg else "— | — |"))
    det_names = list(dict.fromkeys(k for r in results for k in r["classical"]))
    md += ["", "## Classical steganalysis (StegExpose's detectors, WS, fusion): ROC AUC, cover vs stego", "",
           "0.5 is chance, 1.0 perfect detection; an AUC far *below* 0.5 is just as detectable (the stegos score "
           "systematically lower than the covers, e.g. when a method makes the low bits *less* random). Scores need "
           "no training; every image of the folder is used.", "",
           "| model | " + " | ".join(det_names) + " |", "|---|" + "---|" * len(det_names)]
    for r in results:
        md.append(f"| `{r['model']}` | " + " | ".join(_fmt(r["classical"].get(d, {}).get("auc")) for d in det_names)
                  + " |")
    tr_names = list(dict.fromkeys(k for r in results for k in r["trained"]))
    if tr_names:
        md += ["", "## Trained steganalysis: accuracy / AUC / P_E on images the detector never saw", "",
               "SPAM/SRM + FLD ensemble: trained on the quadrants of the first half of the folder's pairs, tested on "
               "the quadrants of the other half. Deep detectors: trained by `deepsteg train DETECTOR --set "
               f"target=MODEL` on `{cfg.train_data}` ({cfg.deep_steps} steps, batch 8 pairs, {cfg.deep_crop}² "
               "crops), tested on this folder.", "",
               "| model | " + " | ".join(tr_names) + " |", "|---|" + "---|" * len(tr_names)]
        for r in results:
            cells = []
            for t in tr_names:
                v = r["trained"].get(t)
                cells.append("—" if v is None else f"{v['accuracy']:.2f} / {_fmt(v['auc'])} / {_fmt(v['p_e'])}")
            md.append(f"| `{r['model']}` | " + " | ".join(cells) + " |")
    md += ["", "## Size and speed", "", f"| model | parameters | hide (ms) | reveal (ms) |", "|---|---|---|---|"]
    for r in results:
        md.append(f"| `{r['model']}` | {r['params']:,} | {r['speed']['hide_ms']:.1f} | "
                  f"{r['speed']['reveal_ms']:.1f} |")
    md += ["", f"One {cfg.size}×{cfg.size} image, batch 1, median of 5 after a warm-up, {cfg.device}; rows with "
           "`--refine N` add one refinement's time to the hide. Single "
           "timings on whatever else the machine was running: for speed figures use `scripts/benchmark_speed.py` "
           "(README, Speed and memory).", "",
           "## Figures", ""]
    for r in results:
        md.append(f"### `{r['model']}`")
        md.append("")
        for k, label in (("residuals", "Residuals ×5 / ×10 / ×50"), ("histograms", "Histograms"),
                         ("roc", "ROC curves"), ("curves", "Training curves")):
            if k in r["figures"]:
                md.append(f"![{label}](figures/{r['figures'][k]})")
        md.append("")
    atomic_write_bytes(out / "report.md", lambda fh: fh.write("\n".join(md).encode()))


def run_bench(cfg: BenchConfig, command: str = "deepsteg bench", progress: bool = True) -> list[dict[str, Any]]:
    """Bench every model of ``cfg`` and write the report; returns the per-model results."""
    from tqdm import tqdm

    from deepsteg.zoo import get_entry, has_pretrained

    for m in cfg.models:
        if "detector" in get_entry(m).tags:
            raise DeepstegError(f"{m} is a steganalyser; bench hiding models (and name detectors with --deep)")
        if not has_pretrained(m):
            raise DeepstegError(f"{m} has no shipped weights to bench")
        check_refinable(get_entry(m).builder, cfg.refine, m)
    n = _count_readable(cfg.data)
    if n < 4:
        raise DeepstegError(f"{cfg.data}: bench needs at least 4 readable images, found {n}")
    kept = _previous_results(cfg) if cfg.update else []
    figs = cfg.out / "figures"
    figs.mkdir(parents=True, exist_ok=True)
    results = []
    measured = {"command": command, "date": datetime.date.today().isoformat(),
                "platform": f"{platform.machine()} {cfg.device}"}
    with tempfile.TemporaryDirectory(prefix="deepsteg-bench-") as tmp:
        for name in tqdm(cfg.models, desc="bench", unit="model", disable=not progress):
            results.append({**bench_model(name, cfg, Path(tmp), figs, progress), "measured": measured})
        shutil.rmtree(tmp, ignore_errors=True)
    if kept:  # the old order, each re-benched row in its old place, new ones after their model's rows or at the end
        fresh = {r["model"]: r for r in results}
        merged = [fresh.pop(r["model"], r) for r in kept]

        def base(label: str) -> str:
            return label.split(" --refine ")[0]

        for label in list(fresh):
            at = [i for i, r in enumerate(merged) if base(r["model"]) == base(label)]
            merged.insert(at[-1] + 1 if at else len(merged), fresh.pop(label))
        results = merged
    write_report(results, cfg, command)
    return results


def _count_readable(folder: Path) -> int:
    """How many images in ``folder`` the evaluation will use: unreadable files are skipped there (with a notice,
    told once per model), so they must not count towards the minimum here either."""
    n = 0
    for f in list_images(folder):
        try:
            probe_image(f)
        except ImageReadError:
            continue
        n += 1
    return n


def _previous_results(cfg: BenchConfig) -> list[dict[str, Any]]:
    """The rows of the report in ``cfg.out`` for ``--update``, refused if measured with other settings."""
    path = cfg.out / "results.json"
    if not path.is_file():
        raise DeepstegError(f"--update: no earlier report in {cfg.out} (results.json) to merge into")
    try:
        old = json.loads(path.read_text())
        meta, rows = old["meta"], list(old["models"])
    except (ValueError, KeyError, TypeError) as e:
        raise DeepstegError(f"--update: {path} is not a deepsteg bench result ({e})") from None
    now = cfg.settings()
    # reports from before settings were recorded carry only the folder and the size
    then = meta.get("settings") or {"data": meta.get("data"), "size": meta.get("size")}
    deep_keys = ("deep", "train_data", "deep_steps", "deep_crop")  # refined rows train no deep detectors
    diff = [k for k in then if then[k] != now.get(k) and not (cfg.refine and k in deep_keys)]
    if diff:
        k = diff[0]
        raise DeepstegError(f"--update: the report in {cfg.out} was made with {k} = {then[k]!r}, this run has "
                            f"{now.get(k)!r}; merged rows would not be comparable (same settings, or no --update)")
    for r in rows:  # rows from before each recorded its own command carry the old report's
        r.setdefault("measured", {"command": meta.get("command", "deepsteg bench")})
    return rows

