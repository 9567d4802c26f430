"""ISN — Lu, Zhu, Xu, Li & Qian, "Large-capacity Image Steganography Based on Invertible Neural Networks"
(CVPR 2021). One invertible network hides k = 1…5 colour images in a colour image and, run backwards, reveals them.

* §3.2, eq. 4–5: N invertible blocks (:class:`~deepsteg.layers.invertible.InvBlock`) on ``host (3) ‖ hidden
  (3k)``; additive coupling on the host branch (φ), enhanced affine coupling on the hidden branch (ρ, η), each a
  5-layer dense block. Forward output: ``container (3) ‖ ẑ (3k)``; backward input: ``container ‖ y_z``.
* The constant branch ``y_z = 0.5`` (§5.3); eq. 6–8: ``α_co·l2(container, host) + α_z·l2(ẑ, y_z) +
  α_ho·l1(revealed host, host) + α_hi·l1(revealed hidden, hidden)``, α_co = 32 for one hidden image and 64 for
  several, the rest 1 (§4.4); AdaMax, lr 2e-4 (§4.1). Forward and backward are run every iteration.

Beyond the paper, each a config field:

* ``clamp``: the exponent of the affine scale is ``clamp · (2σ(ρ) − 1)``, bounded to ±2 (the paper leaves ρ free;
  an unbounded exp makes early training and the inverse fragile).
* ``round_fraction``: the last 20 % of training runs the backward pass from the container *rounded to 8 bits*
  (clamped to [0, 1], straight-through gradient), because a receiver only ever has the PNG. Float and rounded
  figures are reported side by side in the model card.
* ``keyed`` (§5.3 made practical): ``y_z`` is a texture derived from a passphrase (scrypt → seeded generator →
  multi-scale noise in [0, 1]), and every sub-network also sees that texture, so hiding and revealing both depend
  on the key while each block stays exactly invertible. During training each image gets its own random texture,
  and the reveal under *another* image's texture is pushed towards flat grey (``alpha_wrong``), so that only the
  right passphrase reveals.
* ``warmup``: for the first 5 % of the float stage only the reveal loss L_hi is trained (or, with
  ``warmup_floor`` > 0, the other terms at that fraction of their weight), then α_co, α_z, α_ho (and the keyed
  mode's α_wrong) ramp up linearly over as many steps (or over ``ramp``). From the start, L_co, L_z and L_ho are
  all minimised by a network that leaves the host alone and squashes the hidden branch (the exp(·) scale lets it),
  a saddle in which the reveal never starts learning; our CPU runs sat there at L_hi ≈ 0.25 for hundreds of steps,
  and learnt at once without them. (``warmup = 0`` is the paper's schedule.) With no constraint at all, though,
  the warm-up lets the container drift far from the host (MSE ≈ 1), and a short ramp then removes the hidden image
  again (L_hi back at 0.24); a small floor (0.03, so α_co ≈ 1) keeps the container near the host while the reveal
  forms, and a long ramp (30 % of the stage) keeps it — the settings of the CPU run in ``docs/isn-cpu-run/``.
* ``last_init``: the dense blocks' last convolutions start at 0.1 × a Kaiming initialisation rather than exactly
  zero, so gradients reach φ from the first step.
* ``fused`` dense blocks (preallocated concatenation buffer at inference) — the same arithmetic; off by default,
  because on our 2-core CPU it measured slower (see scripts/benchmark_isn.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from deepsteg.errors import ModelError
from deepsteg.io import quantize
from deepsteg.layers.invertible import InvBlock
from deepsteg.models.base import ImageHider, StepContext

KEY_SALT = b"deepsteg.isn.key.v1"


@dataclass
class IsnConfig:
    """ISN's settings (paper values unless noted in the module docstring)."""

    num_secrets: int = 1
    blocks: int = 8
    clamp: float = 2.0
    growth: int = 32
    alpha_co: float = 32.0
    alpha_z: float = 1.0
    alpha_ho: float = 1.0
    alpha_hi: float = 1.0
    y_z: float = 0.5
    keyed: bool = False
    alpha_wrong: float = 1.0
    round_fraction: float = 0.2
    lr: float = 2e-4
    fused: bool = False  # the preallocated-buffer dense blocks: not faster on our CPU (scripts/benchmark_isn.py)
    last_init: float = 0.1  # scale of the dense blocks' last-layer initialisation (0: exact identity at start)
    warmup: float = 0.05  # fraction of the float stage trained mostly on the reveal loss, then a ramp
    warmup_floor: float = 0.0  # the constraint weights' fraction during the warm-up (0: the reveal loss alone)
    ramp: float | None = None  # fraction of the float stage over which they ramp up to 1 (None: as long as warmup)


def seed_from_passphrase(passphrase: str) -> int:
    """A 63-bit seed from a passphrase by scrypt (memory-hard: guessing keys offline stays expensive)."""
    if not passphrase:
        raise ModelError("the passphrase must not be empty")
    digest = hashlib.scrypt(passphrase.encode(), salt=KEY_SALT, n=2**14, r=8, p=1, dklen=8)
    return int.from_bytes(digest, "big") >> 1


def texture(seed: int, channels: int, h: int, w: int, device: torch.device | str = "cpu") -> Tensor:
    """1×C×H×W multi-scale noise in [0, 1] from ``seed``: the sum of uniform noise on 1, 4, 16 and 64-px grids
    (nearest upsampling), so a key pattern has fine and coarse structure at any image size."""
    g = torch.Generator().manual_seed(seed)
    out = torch.zeros(1, channels, h, w)
    for cell, weight in ((1, 0.4), (4, 0.3), (16, 0.2), (64, 0.1)):
        small = torch.rand(1, channels, -(-h // cell), -(-w // cell), generator=g)
        out += weight * small.repeat_interleave(cell, -2).repeat_interleave(cell, -1)[..., :h, :w]
    return out.to(device)


class Isn(ImageHider):
    """The invertible steganography network; ``num_secrets`` hidden images of the cover's size."""

    size_multiple = 1
    min_size = 16
    # A block sees ±10 px (two 5-conv dense blocks), so N blocks see ±10N px; tiles use a 64-px margin, which
    # makes tiled results close to (not bit-equal with) whole-image ones for images over max_whole_pixels.
    tile_margin = 64
    refine_auto_pixels = 256 * 256  # 8-16 blocks of dense networks at full resolution, run backwards per step
    max_whole_pixels = 1024 * 1024

    def __init__(self, config: IsnConfig | None = None) -> None:
        super().__init__(config or IsnConfig())
        cfg = self.config
        if not 1 <= cfg.num_secrets <= 5:
            raise ModelError("ISN hides 1 to 5 images")
        self.num_secrets = cfg.num_secrets
        self.keyed = cfg.keyed
        cond = 3 if cfg.keyed else 0
        self.blocks = nn.ModuleList(InvBlock(3, 3 * cfg.num_secrets, cfg.clamp, cond, cfg.growth, cfg.fused,
                                             cfg.last_init)
                                    for _ in range(cfg.blocks))

    # --- the invertible map ----------------------------------------------------------------------------------
    def forward_map(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """host ‖ hidden → container ‖ ẑ (eq. 4 through every block)."""
        for b in self.blocks:
            x = b(x, cond)
        return x

    def inverse_map(self, y: Tensor, cond: Tensor | None = None) -> Tensor:
        """container ‖ y_z → host ‖ hidden (eq. 5 through the blocks in reverse)."""
        for b in reversed(self.blocks):
            y = b(y, cond, reverse=True)
        return y

    def _z(self, like: Tensor, key: Tensor | None) -> Tensor:
        k = self.num_secrets
        if key is None:
            return torch.full((like.shape[0], 3 * k, *like.shape[-2:]), self.config.y_z, device=like.device,
                              dtype=like.dtype)
        return key.expand(like.shape[0], -1, -1, -1).repeat(1, k, 1, 1).to(like.dtype)

    def key_pattern(self, key: str, like: Tensor) -> Tensor:
        return texture(seed_from_passphrase(key), 3, *like.shape[-2:], device=like.device)

    def _cond(self, key: Tensor | None, n: int) -> Tensor | None:
        return None if key is None else key.expand(n, -1, -1, -1)

    def _hide(self, cover: Tensor, secrets: Sequence[Tensor], key: Tensor | None = None) -> Tensor:
        x = torch.cat([cover.float(), *[s.float() for s in secrets]], 1)
        return self.forward_map(x, self._cond(key, x.shape[0]))[:, :3].clamp(0.0, 1.0)

    def _reveal(self, stego: Tensor, key: Tensor | None = None) -> list[Tensor]:
        s = stego.float()
        y = torch.cat([s, self._z(s, key)], 1)
        x = self.inverse_map(y, self._cond(key, s.shape[0]))
        return [x[:, 3 + 3 * i:6 + 3 * i].clamp(0.0, 1.0) for i in range(self.num_secrets)]

    # --- training --------------------------------------------------------------------------------------------
    def stages(self) -> list[tuple[str, float]]:
        """Float containers, then (the last ``round_fraction``) reveals from the 8-bit container."""
        r = self.config.round_fraction
        return [("float", 1.0 - r), ("round", r)] if r > 0 else [("float", 1.0)]

    def optimizer_groups(self, stage: str) -> dict:
        return {"main": {"params": list(self.parameters()), "optimizer": "adamax"}}

    def constraint_weight(self, stage: str, progress: float) -> float:
        """The factor on α_co, α_z, α_ho (and α_wrong): ``warmup_floor`` for the first ``warmup`` of the float
        stage (reveal first), then a linear ramp to 1 over ``ramp`` (default: as long again); 1 afterwards."""
        cfg = self.config
        if stage != "float" or cfg.warmup <= 0:
            return 1.0
        length = cfg.warmup if cfg.ramp is None else cfg.ramp
        up = min(1.0, max(0.0, (progress - cfg.warmup) / max(length, 1e-9)))
        return cfg.warmup_floor + (1.0 - cfg.warmup_floor) * up

    def training_step(self, batch: dict[str, Tensor], ctx: StepContext) -> dict[str, float]:
        cfg = self.config
        cover = batch["cover"].float()
        secrets = batch["secrets"].float()  # N×k×3×H×W
        n, k = secrets.shape[:2]
        hidden = secrets.reshape(n, 3 * k, *secrets.shape[-2:])
        key = None
        if cfg.keyed:  # one random texture per image, from the (checkpointed) torch RNG
            seeds = torch.randint(0, 2**62, (n,)).tolist()
            key = torch.cat([texture(s, 3, *cover.shape[-2:]) for s in seeds]).to(cover.device)
        y = self.forward_map(torch.cat([cover, hidden], 1), key)
        container, z_hat = y[:, :3], y[:, 3:]
        z = self._z(cover, None) if key is None else key.repeat(1, k, 1, 1)
        seen = quantize(container, straight_through=True) if ctx.stage == "round" else container
        x_hat = self.inverse_map(torch.cat([seen, z], 1), key)
        l_co = F.mse_loss(container, cover)  # eq. 6, l2 forward
        l_z = F.mse_loss(z_hat, z)  # eq. 7
        l_ho = F.l1_loss(x_hat[:, :3], cover)  # eq. 7, l1 backward
        l_hi = F.l1_loss(x_hat[:, 3:], hidden)  # eq. 6
        weight = self.constraint_weight(ctx.stage, ctx.stage_progress)
        loss = weight * (cfg.alpha_co * l_co + cfg.alpha_z * l_z + cfg.alpha_ho * l_ho) + cfg.alpha_hi * l_hi  # eq. 8
        logs = {"l_co": float(l_co.detach()), "l_z": float(l_z.detach()), "l_ho": float(l_ho.detach()),
                "l_hi": float(l_hi.detach())}
        if key is not None and n > 1 and cfg.alpha_wrong > 0:
            wrong = key.roll(1, 0)  # another image's key: its reveal should show nothing
            x_wrong = self.inverse_map(torch.cat([seen, wrong.repeat(1, k, 1, 1)], 1), wrong)
            l_wrong = F.l1_loss(x_wrong[:, 3:], torch.full_like(hidden, 0.5))
            loss = loss + weight * cfg.alpha_wrong * l_wrong
            logs["l_wrong"] = float(l_wrong.detach())
        ctx.optimize("main", loss)
        logs["loss"] = float(loss.detach())
        return logs


def register(add) -> None:  # noqa: ANN001 - deepsteg.zoo.register_model
    """Registry entries for this paper (called by :mod:`deepsteg.zoo.registry`)."""
    paper = "Lu et al., Large-capacity Image Steganography Based on Invertible Neural Networks (ISN), CVPR 2021"
    add("isn", Isn, IsnConfig(num_secrets=1, blocks=8, alpha_co=32.0),
        "colour image in colour image with one invertible network (8 blocks)", paper, tags=("image",))
    add("isn-4", Isn, IsnConfig(num_secrets=4, blocks=16, alpha_co=64.0),
        "four colour images in one colour image (16 invertible blocks)", paper, tags=("image",))
    add("isn-keyed", Isn, IsnConfig(num_secrets=1, blocks=8, alpha_co=32.0, keyed=True),
        "one colour image, revealed only with the passphrase it was hidden with (y_z from the key)", paper,
        tags=("image", "keyed"))
