"""Tiled inference: any image size in bounded memory, without seams.

The image is cut into a grid of *cores* (``tile`` pixels, aligned to the model's ``size_multiple``); each core is
run with ``margin`` pixels of real image context on every side, and only the core of each output is kept. For a
translation-equivariant network (convolutions only, strides dividing ``size_multiple``) whose receptive-field
radius is at most ``margin``, the stitched result equals the whole-image result (tests/test_tiling.py checks this).
Models with global context (StegoPNet's pyramid pooling) see the context of one tile instead of the whole image —
which at their training size is also what they were trained on — and hide and reveal choose the same grid from
the image size alone, so a receiver reproduces it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import torch
from torch import Tensor


def tile_grid(h: int, w: int, tile: int, margin: int, multiple: int = 1
              ) -> Iterator[tuple[tuple[int, int, int, int], tuple[int, int, int, int]]]:
    """Yield ((core y0, y1, x0, x1), (context y0, y1, x0, x1)) covering an h×w image."""
    if tile % multiple or margin % multiple:
        raise ValueError(f"tile ({tile}) and margin ({margin}) must be multiples of {multiple}")
    for y0 in range(0, h, tile):
        for x0 in range(0, w, tile):
            y1, x1 = min(h, y0 + tile), min(w, x0 + tile)
            yield (y0, y1, x0, x1), (max(0, y0 - margin), min(h, y1 + margin), max(0, x0 - margin),
                                     min(w, x1 + margin))


def run_tiled(fn: Callable[[list[Tensor]], list[Tensor]], inputs: Sequence[Tensor], tile: int, margin: int,
              multiple: int = 1, device: torch.device | str | None = None) -> list[Tensor]:
    """Apply ``fn`` (list of N×C×h×w crops → list of N×C'×h×w outputs) tile by tile; outputs stay on the inputs'
    device, so only one tile's activations live on ``device`` at a time."""
    h, w = inputs[0].shape[-2:]
    outs: list[Tensor] | None = None
    for (y0, y1, x0, x1), (Y0, Y1, X0, X1) in tile_grid(h, w, tile, margin, multiple):
        crops = [x[..., Y0:Y1, X0:X1] for x in inputs]
        if device is not None:
            crops = [c.to(device, non_blocking=True) for c in crops]
        res = fn(crops)
        if outs is None:
            outs = [torch.empty(*r.shape[:-2], h, w, dtype=r.dtype, device=inputs[0].device) for r in res]
        for o, r in zip(outs, res):
            o[..., y0:y1, x0:x1] = r[..., y0 - Y0:y1 - Y0, x0 - X0:x1 - X0].to(o.device)
    assert outs is not None
    return outs
