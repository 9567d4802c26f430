"""Rewrite the README's models table from the shipped model cards' metrics.json (figures are never typed in)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import deepsteg
from deepsteg.zoo import get_entry, pretrained_dir

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    rows = ["| model | weights | cover PSNR / SSIM | secret PSNR / SSIM | float cover / secret PSNR | "
            "517×389 spot check (cover / secret PSNR) | training |", "|---|---|---|---|---|---|---|"]
    message_rows = ["| model | weights | cover PSNR / SSIM | bit accuracy after PNG (float) | exact bytes in 256² "
                    "(recovered) | 2,000-byte payloads exact | training |", "|---|---|---|---|---|---|---|"]
    detectors = []
    for name in deepsteg.list_models():
        f = pretrained_dir(name) / "metrics.json"
        e = get_entry(name)
        if "detector" in e.tags:
            detectors.append(f"`{name}`")
            continue
        if "message" in e.tags:
            if not f.is_file():
                message_rows.append(f"| `{name}` | — | — | — | — | — | {e.description} (no shipped weights) |")
                continue
            m = json.loads(f.read_text())
            trained = "no training" if e.weightless else f"{m['steps']:,} steps, {m['train_minutes']:.0f} CPU-min"
            p2k = m.get("payload_2000_bytes")
            message_rows.append(
                f"| `{name}` | {m['weights_dtype']} | {m['cover_psnr']:.2f} dB / {m['cover_ssim']:.4f} | "
                f"{m['bit_accuracy']:.4f} ({m['float_bit_accuracy']:.4f}) | {m['payload_bytes']:.0f} "
                f"({100 * m['payload_exact']:.0f} %) | "
                + (f"{p2k['exact']} / {p2k['trials']}" if p2k else "—") + f" | {trained} |")
            continue
        if not f.is_file():
            rows.append(f"| `{name}` | — | — | — | — | — | {e.description} (no shipped weights) |")
            continue
        m = json.loads(f.read_text())
        spot = next((s for s in m.get("spot_checks", []) if s["size"] == "517×389"), None)
        spot_s = f"{spot['cover_psnr']:.2f} / {spot['secret_psnr']:.2f}" if spot else "—"
        default = " (default)" if name == deepsteg.DEFAULT_MODEL else ""
        trained = "no training" if e.weightless else f"{m['steps']:,} steps, {m['train_minutes']:.0f} CPU-min"
        if m.get("init"):
            trained += f" after {m['init']}"  # Markdown, as the model card names it
        rows.append(
            f"| `{name}`{default} | {m['weights_dtype']} | {m['cover_psnr']:.2f} dB / {m['cover_ssim']:.4f} | "
            f"{m['secret_psnr']:.2f} dB / {m['secret_ssim']:.4f} | {m['float_cover_psnr']:.2f} / "
            f"{m['float_secret_psnr']:.2f} | {spot_s} | {trained} |")
    table = "\n".join(rows) + ("\n\nMessage models (files and text, `hide --file/--text`):\n\n" + "\n".join(message_rows)
                              + "\n\nSteganalysers, trained per target model with `deepsteg train NAME --set "
                              "target=MODEL` (none ship): " + ", ".join(detectors) + ".")
    note = ("Figures: `deepsteg evaluate --model NAME --data shared/corpus/val --size 256` — 9 validation photos "
            "never trained on, 256×256 centre crops, **after writing and re-reading the 8-bit PNG** (float figures "
            "labelled). Full details, per-image rows and how each was trained: `deepsteg card --model NAME`. These "
            "are the networks alone (`--refine 0`, the papers' protocol); `deepsteg hide` refines by default — see "
            "Refinement for those figures.")
    readme = ROOT / "README.md"
    text = readme.read_text()
    new = re.sub(r"(<!-- models-table -->\n)(.*?)(\n## )", lambda m: m.group(1) + note + "\n\n" + table + "\n" + m.group(3),
                 text, flags=re.S)
    readme.write_text(new)
    print(table)


if __name__ == "__main__":
    main()
