"""Secret quality at sizes that are not multiples of the network's size multiple, over the real path.

    python scripts/edge_band.py --model stegopnet [--weights RUN/last] [--data shared/corpus/val]

For each cut d in (0, 1, 6, 10, 15): every validation photo's 256² centre crop, cut to (256 − d)², hides the
secret that `deepsteg evaluate` pairs with it (i + ⌊n/2⌋), is rounded to 8 bits as a PNG holds it, and is
revealed. Printed: mean secret PSNR of the whole image, of its interior and of its last 16 rows and columns —
where the receiver's reflection padding differs from what the hiding network made there.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

import deepsteg
from deepsteg import metrics
from deepsteg.data import centre_crop
from deepsteg.io import list_images, quantize, read_image


def _band(r: torch.Tensor, s: torch.Tensor, rows: slice, cols: slice) -> tuple[torch.Tensor, torch.Tensor]:
    return r[..., rows, cols].flatten(), s[..., rows, cols].flatten()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="stegopnet")
    ap.add_argument("--weights", default=None, help="a weights folder (default: the shipped weights)")
    ap.add_argument("--data", default="shared/corpus/val")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--band", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    m = (deepsteg.create_model(args.model, weights=args.weights) if args.weights
         else deepsteg.create_model(args.model, pretrained=True)).eval()
    files = list_images(args.data)
    n, b = len(files), args.band
    crops = [centre_crop(read_image(f), args.size) for f in files]
    for d in (0, 1, 6, 10, 15):
        h = args.size - d
        whole, inner, band = [], [], []
        for i in range(n):
            c, s = crops[i][None, :, :h, :h], crops[(i + n // 2) % n][None, :, :h, :h]
            s = m.as_secret(s)
            with torch.inference_mode():
                r = quantize(m.reveal(quantize(m.hide(c, s, tile=0)), tile=0)[0])
            whole.append(float(metrics.psnr(r, s)))
            inner.append(float(metrics.psnr(r[..., :h - b, :h - b], s[..., :h - b, :h - b])))
            bottom = _band(r, s, slice(h - b, h), slice(0, h))
            right = _band(r, s, slice(0, h - b), slice(h - b, h))
            rb, sb = torch.cat([bottom[0], right[0]])[None], torch.cat([bottom[1], right[1]])[None]
            band.append(float(metrics.psnr(rb, sb)))
        print(f"{args.weights or args.model} {h}×{h}: secret PSNR whole {np.mean(whole):.2f} dB, interior "
              f"{np.mean(inner):.2f}, last {b} px {np.mean(band):.2f}", flush=True)


if __name__ == "__main__":
    main()
