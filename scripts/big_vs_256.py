"""Is a 4096² stego as good as 256² ones *on the same content*? Hide/reveal the 4096² mosaic of big_image.py
(a) the way the CLI does (automatic tiling: 512-px tiles with 64 px of context) and (b) as 256 independent
256×256 images (tile 256, no context: exactly the model's 256×256 behaviour), and compare PSNR after rounding.

    python scripts/big_vs_256.py --val ../shared/corpus/val
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import deepsteg  # noqa: E402
from big_image import mosaic_tiles  # noqa: E402
from deepsteg.metrics import psnr  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--val", type=Path, required=True)
    ap.add_argument("--model", default="stegopnet")
    args = ap.parse_args()
    torch.set_num_threads(2)
    tile, g = 1024, 4
    crops = mosaic_tiles(args.val, tile, g * g)
    names = [c[0] for c in crops]
    cover, secret = torch.zeros(1, 3, 4096, 4096), torch.zeros(1, 3, 4096, 4096)
    for k in range(g * g):  # the same arrangement as big_image.py
        j = (k + len(crops) // 2) % len(crops)
        while names[j] == names[k]:
            j = (j + 1) % len(crops)
        y, x = (k // g) * tile, (k % g) * tile
        cover[0, :, y:y + tile, x:x + tile] = crops[k][1]
        secret[0, :, y:y + tile, x:x + tile] = crops[j][1]
    m = deepsteg.create_model(args.model, pretrained=True).to(memory_format=torch.channels_last)
    out = {}
    for label, tile_size, margin in [("auto_tiled_4096", None, m.tile_margin), ("independent_256", 256, 0)]:
        m.tile_margin = margin
        with torch.inference_mode():
            stego = deepsteg.quantize(m.hide(cover, secret, tile=tile_size))
            rev = deepsteg.quantize(m.reveal(stego, tile=tile_size)[0])
        out[label] = {"cover_psnr": float(psnr(stego, cover)), "secret_psnr": float(psnr(rev, secret))}
        print(label, out[label], flush=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
