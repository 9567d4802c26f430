"""Hide and reveal one 4096×4096 photo through the real CLI; report peak RSS and PSNR against the 256² figures.

    python scripts/big_image.py --val ../shared/corpus/val [--model stegopnet] [--size 4096]

Cover and secret are mosaics of 1024×1024 native-resolution crops of the validation photos (never trained on;
the corpus holds no 4096-px photo), arranged so that every cover tile carries a secret tile from another photo.
`deepsteg hide` and `deepsteg reveal` run as subprocesses; their peak resident memory is read from the kernel.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

import deepsteg
from deepsteg.io import list_images, read_image, to_grey, write_png
from deepsteg.metrics import psnr, ssim
from deepsteg.zoo import pretrained_dir


def mosaic_tiles(val: Path, tile: int, n: int) -> list[tuple[str, torch.Tensor]]:
    out = []
    for p in list_images(val):
        img = read_image(p)
        h, w = img.shape[-2:]
        if min(h, w) < tile:
            continue
        for x0 in sorted({0, (w - tile) // 2, w - tile}):
            y0 = (h - tile) // 2
            out.append((p.name, img[:, y0:y0 + tile, x0:x0 + tile].clone()))
    if len(out) < n:
        raise SystemExit(f"need {n} crops of {tile}² from {val}, found {len(out)}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--val", type=Path, required=True)
    ap.add_argument("--model", default="stegopnet")
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    tile, g = 1024, args.size // 1024
    crops = mosaic_tiles(args.val, tile, g * g)
    names = [c[0] for c in crops]
    order_c = list(range(g * g))
    # secret tile i: the crop farthest along the list from a different photo
    order_s = []
    for i in order_c:
        j = (i + len(crops) // 2) % len(crops)
        while names[j] == names[i]:
            j = (j + 1) % len(crops)
        order_s.append(j)
    cover = torch.zeros(3, g * tile, g * tile)
    secret = torch.zeros(3, g * tile, g * tile)
    for k in range(g * g):
        y, x = (k // g) * tile, (k % g) * tile
        cover[:, y:y + tile, x:x + tile] = crops[order_c[k]][1]
        secret[:, y:y + tile, x:x + tile] = crops[order_s[k]][1]
    del crops
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        write_png(cover, t / "cover.png")
        write_png(secret, t / "secret.png")
        del cover, secret
        cli = [sys.executable, "-m", "deepsteg"]
        res = {}
        for verb, cmd in [("hide", [*cli, "hide", str(t / "cover.png"), str(t / "secret.png"), "-o",
                                    str(t / "stego.png"), "--model", args.model, "--device", "cpu"]),
                          ("reveal", [*cli, "reveal", str(t / "stego.png"), "-o", str(t / "rev.png"), "--model",
                                      args.model, "--device", "cpu"])]:
            # Each verb's own peak resident memory, from the kernel via GNU time (%M, KiB): measured on that
            # process alone, not inherited from this (large) parent and not a running maximum over children.
            t0 = time.perf_counter()
            p = subprocess.run(["/usr/bin/time", "-f", "PEAK_KB=%M", *cmd], capture_output=True, text=True)
            res[f"{verb}_seconds"] = time.perf_counter() - t0
            if p.returncode:
                raise SystemExit(p.stderr)
            peak_kb = int(p.stderr.rsplit("PEAK_KB=", 1)[1].split()[0])
            res[f"{verb}_peak_rss_mb"] = peak_kb / 1024
            print(p.stdout.strip())
        C, S, E, R = (read_image(t / f)[None] for f in ("cover.png", "secret.png", "stego.png", "rev.png"))
        if deepsteg.create_model(args.model).secret_channels == 1:  # grey-secret models reveal luma
            S, R = to_grey(S), to_grey(R)
        res.update({"size": args.size, "model": args.model, "cover_psnr": float(psnr(E, C)),
                    "secret_psnr": float(psnr(R, S)), "cover_ssim": float(ssim(E, C)),
                    "secret_ssim": float(ssim(R, S))})
    card = pretrained_dir(args.model) / "metrics.json"
    if card.is_file():
        m = json.loads(card.read_text())
        res["card_cover_psnr_256"], res["card_secret_psnr_256"] = m["cover_psnr"], m["secret_psnr"]
    print(json.dumps(res, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
