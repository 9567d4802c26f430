"""Downscale a folder of photos so that the shorter side is SIZE px (box filter: the mean of the covered pixels; 8-bit PNG out) — the training data
of the CPU runs at small crops.

A 32×32 crop of a 2048-px photo is nearly flat; after downscaling, the same crop holds edges and texture, as a
crop of the paper's 256-px ImageNet images would. Used for the ISGAN CPU weights (see their model card)::

    python scripts/downscale_corpus.py ../shared/corpus/train runs/corpus-384 --size 384
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image

from deepsteg.io import IMAGE_SUFFIXES


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src", type=Path)
    ap.add_argument("dst", type=Path)
    ap.add_argument("--size", type=int, default=384, help="shorter side after downscaling (never upscaled)")
    args = ap.parse_args()
    args.dst.mkdir(parents=True, exist_ok=True)
    for path in sorted(p for p in args.src.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
        with Image.open(path) as im:
            im = im.convert("RGB")
            scale = args.size / min(im.size)
            if scale < 1:
                im = im.resize((round(im.width * scale), round(im.height * scale)), Image.Resampling.BOX)
            im.save(args.dst / f"{path.stem}.png")
    print(f"wrote {len(list(args.dst.glob('*.png')))} images to {args.dst}")


if __name__ == "__main__":
    main()
