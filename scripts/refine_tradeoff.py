"""Refinement's cover-structure / secret trade-off on the first N val pairs (256² centre crops, after PNG).

For each config (``ssim_weight``, ``cover_psnr`` or null) prints the mean cover PSNR, cover SSIM and secret PSNR
of the receiver's 8-bit stego. The README's ISGAN figures came from:

    python scripts/refine_tradeoff.py isgan 4 100 '[[0,null],[0.05,null],[0.05,35.0]]'
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import torch

import deepsteg
from deepsteg import metrics
from deepsteg.evaluate import centre_crop, pair_indices
from deepsteg.io import list_images, quantize, read_image, write_png
from deepsteg.refine import refine


def main(name: str, n_img: int, steps: int, configs: list, data: str = "shared/corpus/val") -> None:
    torch.set_num_threads(1)
    m = deepsteg.create_model(name, pretrained=True).eval()
    files = list_images(data)
    n = len(files)
    for ssim_weight, cover_psnr in configs:
        rows = []
        for i in range(n_img):
            cover = centre_crop(read_image(files[i]), 256)[None]
            sec = [m.as_secret(centre_crop(read_image(files[j]), 256))[None] for j in pair_indices(i, n, 1)]
            with torch.no_grad():
                stego = m.hide(cover, *sec)
            if steps:
                stego, _ = refine(m, cover, sec, stego, steps, ssim_weight=ssim_weight, cover_psnr=cover_psnr)
            with tempfile.TemporaryDirectory() as d:
                st = read_image(write_png(stego[0], Path(d) / "s.png"))[None]
            with torch.no_grad():
                r = quantize(m.reveal(st)[0])
            rows.append((float(metrics.psnr(st, cover)), float(metrics.ssim(st, cover)),
                         float(metrics.psnr(r, sec[0]))))
        mean = [sum(x[k] for x in rows) / len(rows) for k in range(3)]
        print(name, steps, [ssim_weight, cover_psnr], "cover %.2f ssim %.4f secret %.2f" % tuple(mean), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4]))
