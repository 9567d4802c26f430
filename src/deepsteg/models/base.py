"""The one interface every image-hiding method implements (cf. CompressAI's ``CompressionModel``).

Everything downstream — the CLI, ``evaluate``, the trainer — talks only to :class:`ImageHider`:

* ``hide(cover, *secrets) -> stego`` and ``reveal(stego) -> [secret, ...]`` on NCHW float tensors in [0, 1]
  of any spatial size (inputs are padded to the network's multiple and cropped back);
* ``training_step(batch, ctx)`` computes the method's losses and asks the trainer to optimise them, so a GAN
  or a staged method supplies its own update order without owning the loop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from deepsteg.errors import ModelError
from deepsteg.io import to_grey
from deepsteg.tiling import run_tiled


class StepContext(Protocol):
    """What the trainer offers a method during one training step."""

    step: int
    stage: str
    #: Fraction of the current stage already done (0 at its first step).
    stage_progress: float

    def optimize(self, name: str, loss: Tensor) -> None:
        """Back-propagate ``loss`` and step the optimiser called ``name``."""


def pad_to_multiple(x: Tensor, multiple: int) -> tuple[Tensor, tuple[int, int]]:
    """Pad the bottom/right of ``x`` to a multiple of ``multiple`` by reflection; return the original size."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x, (h, w)
    # Reflection needs the pad to be smaller than the side; replicate covers tiny images.
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode), (h, w)


class ImageHider(nn.Module):
    """Base class for networks that hide ``num_secrets`` images inside one cover image."""

    #: Registry name, set by :func:`deepsteg.create_model`.
    model_name: str = ""
    #: How many secret images one stego carries.
    num_secrets: int = 1
    #: Channels of each secret as the network sees it (3 colour, 1 grey).
    secret_channels: int = 3
    #: Spatial sizes the network needs (inputs are padded up to this multiple).
    size_multiple: int = 1
    #: Smallest side the method accepts; smaller images are rejected with a clear error.
    min_size: int = 16
    #: Images up to this many pixels run in one piece; larger ones are tiled (bounded memory, see tiling.py).
    max_whole_pixels: int = 1024 * 1024
    #: Tile core size and context margin for tiled inference (multiples of ``size_multiple``); the margin must
    #: cover the receptive-field radius for tiles to be seamless.
    tile_size: int = 512
    tile_margin: int = 64
    #: Keyed models (ISN's keyed mode) need the same passphrase to hide and to reveal.
    keyed: bool = False
    #: The reveal is differentiable in the stego, so :func:`deepsteg.refine.refine` can optimise a stego for it.
    refinable: bool = True
    #: ``hide --refine auto`` on a CPU gives an image of this many pixels 50 steps (about 25-30 s on 2 cores) and
    #: other sizes as many steps as fit in about the same time, 20 to 200 (:func:`deepsteg.refine.auto_steps`).
    #: Set from each model's measured cost per step; on a GPU the reference is ``max_whole_pixels``.
    refine_auto_pixels: int = 512 * 1024

    def __init__(self, config: Any) -> None:
        super().__init__()
        self.config = config

    # --- to implement --------------------------------------------------------------------------------
    def _hide(self, cover: Tensor, secrets: Sequence[Tensor]) -> Tensor:
        """Hide on inputs already padded to ``size_multiple``; return the float stego."""
        raise NotImplementedError

    def _reveal(self, stego: Tensor) -> list[Tensor]:
        """Reveal on a stego already padded to ``size_multiple``."""
        raise NotImplementedError

    def training_losses(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        """Return (loss to minimise, scalars to log) for one batch."""
        raise NotImplementedError

    # --- shared behaviour ----------------------------------------------------------------------------
    def config_dict(self) -> dict[str, Any]:
        """The configuration as plain JSON-able data, stored beside the weights."""
        return asdict(self.config)

    def _check(self, x: Tensor, what: str) -> Tensor:
        if not torch.is_tensor(x) or not x.is_floating_point():
            raise ModelError(f"{what} must be a float tensor in [0, 1]")
        if x.dim() == 3:
            x = x.unsqueeze(0)
        if x.dim() != 4:
            raise ModelError(f"{what} must be CHW or NCHW, got shape {tuple(x.shape)}")
        h, w = x.shape[-2:]
        if min(h, w) < self.min_size:
            raise ModelError(f"{what} is {w}×{h} pixels; {self.model_name or 'this model'} needs at least "
                             f"{self.min_size}×{self.min_size}")
        return x

    def refine_space(self, cover: Tensor, stego: Tensor) -> tuple[Tensor, Callable[[Tensor], Tensor]]:
        """(the values refinement may change, the map from them to the stego): the stego's pixels by default;
        models that keep part of the cover exactly (ISGAN's Cb/Cr) refine only what they hide in."""
        return stego, lambda p: p

    def as_secret(self, x: Tensor) -> Tensor:
        """An RGB image (…×3×H×W) as this model hides it: BT.601 luma for grey-secret models (ISGAN), else as is.

        ``hide`` itself refuses a wrong channel count; callers that accept any photo (CLI, batch, evaluate,
        validation) convert with this one function.
        """
        return to_grey(x) if self.secret_channels == 1 and x.shape[-3] == 3 else x

    def _tile_for(self, h: int, w: int, tile: int | None) -> int:
        """0 for whole-image processing, else the tile core size (rounded up to ``size_multiple``)."""
        if tile is None:
            tile = 0 if h * w <= self.max_whole_pixels else self.tile_size
        if tile < 0:
            raise ModelError("tile must be 0 (whole image), a positive size, or None (automatic)")
        m = self.size_multiple
        return -(-tile // m) * m if tile else 0

    def key_pattern(self, key: str, like: Tensor) -> Tensor:
        """Keyed models: the passphrase's pattern for an image shaped like ``like`` (N×C×H×W)."""
        raise NotImplementedError

    def _key_input(self, key: str | None, like: Tensor) -> list[Tensor]:
        if key is not None and not self.keyed:
            raise ModelError(f"{self.model_name or 'this model'} takes no passphrase (it is not a keyed model)")
        if self.keyed and not key:
            raise ModelError(f"{self.model_name or 'this model'} is keyed: give the passphrase (--passphrase)")
        return [self.key_pattern(key, like)] if key else []

    def _hide_padded(self, cover: Tensor, secrets: Sequence[Tensor], key: Sequence[Tensor] = ()) -> Tensor:
        m = self.size_multiple
        padded, (h, w) = pad_to_multiple(cover, m)
        extra = {"key": pad_to_multiple(key[0], m)[0]} if key else {}
        return self._hide(padded, [pad_to_multiple(s, m)[0] for s in secrets], **extra)[..., :h, :w]

    def _reveal_padded(self, stego: Tensor, key: Sequence[Tensor] = ()) -> list[Tensor]:
        padded, (h, w) = pad_to_multiple(stego, self.size_multiple)
        extra = {"key": pad_to_multiple(key[0], self.size_multiple)[0]} if key else {}
        return [s[..., :h, :w] for s in self._reveal(padded, **extra)]

    def hide(self, cover: Tensor, *secrets: Tensor, tile: int | None = None, key: str | None = None) -> Tensor:
        """Hide ``secrets`` (each the cover's size) in ``cover``; returns the float stego in [0, 1].

        Any size works: inputs are padded to the network's multiple and cropped back, and images over
        ``max_whole_pixels`` are processed in tiles (``tile=0`` forces one piece, ``tile=N`` tiles of N px).
        Call :func:`deepsteg.io.quantize` (or save with :func:`deepsteg.io.write_png`) to get the 8-bit stego
        that a receiver will actually see.
        """
        squeeze = cover.dim() == 3
        cover = self._check(cover, "cover")
        if len(secrets) != self.num_secrets:
            raise ModelError(f"{self.model_name or 'this model'} hides exactly {self.num_secrets} secret "
                             f"image(s); got {len(secrets)}")
        checked = []
        for i, s in enumerate(secrets):
            s = self._check(s, f"secret {i + 1}")
            if s.shape[-2:] != cover.shape[-2:]:
                raise ModelError(f"secret {i + 1} is {s.shape[-1]}×{s.shape[-2]} but the cover is "
                                 f"{cover.shape[-1]}×{cover.shape[-2]}; resize it first (deepsteg.fit_to)")
            if s.shape[1] != self.secret_channels:
                raise ModelError(f"secret {i + 1} has {s.shape[1]} channels; expected {self.secret_channels}")
            checked.append(s)
        k = self._key_input(key, cover)
        t = self._tile_for(*cover.shape[-2:], tile)
        n = len(checked)
        if t:
            stego = run_tiled(lambda xs: [self._hide_padded(xs[0], xs[1:1 + n], xs[1 + n:])], [cover, *checked, *k],
                              t, self.tile_margin, self.size_multiple)[0]
        else:
            stego = self._hide_padded(cover, checked, k)
        return stego[0] if squeeze else stego

    def reveal(self, stego: Tensor, tile: int | None = None, key: str | None = None) -> list[Tensor]:
        """Recover the hidden image(s) from a stego (ideally the 8-bit one read back from its PNG).

        ``tile`` as in :meth:`hide`; the automatic choice depends on the size only, so it matches the sender's.
        ``key``: the passphrase of a keyed model (the one it was hidden with).
        """
        squeeze = stego.dim() == 3
        stego = self._check(stego, "stego")
        k = self._key_input(key, stego)
        t = self._tile_for(*stego.shape[-2:], tile)
        out = run_tiled(lambda xs: self._reveal_padded(xs[0], xs[1:]), [stego, *k], t, self.tile_margin,
                        self.size_multiple) if t else self._reveal_padded(stego, k)
        return [s[0] for s in out] if squeeze else list(out)

    def training_step(self, batch: dict[str, Tensor], ctx: StepContext) -> dict[str, float]:
        """One optimisation step; the default suits methods with a single loss and optimiser."""
        loss, logs = self.training_losses(batch)
        ctx.optimize("main", loss)
        return logs

    def optimizer_groups(self, stage: str) -> dict[str, Iterator[nn.Parameter]]:
        """Parameters per optimiser name for ``stage``; methods with critics or stages override this."""
        return {"main": self.parameters()}

    def stages(self) -> list[tuple[str, float]]:
        """Training stages as (name, fraction of total steps); one stage unless a method says otherwise."""
        return [("main", 1.0)]
