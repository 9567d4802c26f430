"""SFTN — Li et al., "Anti-Rounding Image Steganography With Separable Fine-Tuned Network" (IEEE TCSVT 2023).
A binary message of C×H×W bits (1 bit per pixel per channel) hidden in an H×W cover, robust to 8-bit rounding.

* §III-A.1, embedding generator G (Fig. 5, Table I): BasicConv (3×3 conv + BN + LeakyReLU(0.1)) to 32 on the
  cover; then BasicConvs on ``(I¹, M)``, ``(I¹, I², M)`` (32 filters each) and a 3×3 conv on ``(I¹, I², I³, M)``
  to C channels: the modification map, added to the cover (the stego matrix X).
* §III-A.2, extractor (Fig. 6, Table I): BasicConv 32 → multi-scale fusion block 64 → residual dense block 64 →
  BasicConv on ``(X³, X²)`` to 32 → BasicConv on ``(X⁴, X¹)`` to C → 3×3 conv → sigmoid.
* §III-A.3, discriminator: XuNet (:class:`~deepsteg.layers.xunet.XuNet`, one score); eq. 9 adversary loss
  ``L_d = |D(I_C) − D(X)|``, which the discriminator maximises and the generator minimises.
* Eq. 12, JT-stage: ``λ_d L_d + λ_q MSE(I_C, X) + λ_m BCE(M, E_M(X))`` with λ_d = 1, λ_q = 1, λ_m = 100, Adam
  lr 1e-3 (G, E), 1e-4 (D); no rounding.
* Eq. 13–14, SF-stage: G frozen; the stego image is ``round(clip₀²⁵⁵(I_C + clip₋₁₀¹⁰(modification)))`` and the
  extractor (E_I, initialised from E_M) is fine-tuned on it with BCE alone. The paper trains 10 JT epochs and 40
  SF epochs (``jt_fraction = 0.2``).

Readings and departures, each a config field:

* Pixel scale: the paper works on 0…255 values; our images are in [0, 1], so the modification map is produced in
  8-bit levels (the ±10 truncation of eq. 14 is ±10 levels) and ``L_q`` is the MSE in 8-bit levels², as in
  eq. 10 on 0…255 pixels (with [0, 1] pixels λ_q = 1 against λ_m = 100 would ignore image quality).
* The ±10 truncation is applied in both stages (the paper names it only for the SF-stage's stego image), so that
  the JT-stage trains the same stego matrix a user receives.
* ``out_gain = 10``: the generator's last convolution is read in units of 10 levels, so that at initialisation the
  modification is a few levels, large enough for the extractor to find; with the default initialisation (a few
  tenths of a level) the message loss gives no useful gradient and training stalls at 50 % accuracy.
* ``q_warmup``: λ_q ramps up linearly from 0 over the first 20 % of the JT-stage. With the full quality weight
  from step 0 the generator's (tiny, random) modification is squeezed to nothing before the extractor can learn
  to read it, and training stalls at 50 % accuracy (seen in our first CPU runs).
* The message enters the generator as ±1 rather than 0/1 (centred inputs; the same information).
* ``L_d`` uses batch means of the critic's scores, and the critic's weights are clipped to ±``critic_clip`` after
  each step (as in the Wasserstein critics SFTN's reference [29] builds on); the paper gives neither detail.
* Colour (C = 3, our default and shipped model): one bit per channel value. Grey (C = 1, the paper's setting): the
  network sees the cover's BT.601 luma and its modification is added equally to R, G and B, which changes the
  luma by exactly that amount and leaves Cb/Cr untouched; the extractor reads the stego's luma.
* ``error_rate`` is the raw bit error rate measured after PNG rounding on held-out photos (set in the shipped
  config); :mod:`deepsteg.payload` sizes its Reed–Solomon code from it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from deepsteg.errors import ModelError
from deepsteg.io import quantize, to_grey
from deepsteg.layers.rdb import MultiScaleFusion, ResidualDenseBlock, basic_conv
from deepsteg.layers.xunet import XuNet
from deepsteg.models.base import StepContext
from deepsteg.models.message import MessageModel
from deepsteg.tiling import run_tiled


@dataclass
class SftnConfig:
    """SFTN's settings (paper values unless noted in the module docstring)."""

    channels: int = 3  # C: 3 colour (one bit per channel value), 1 grey (the paper)
    width: int = 32  # generator filters, and the extractor's first/last BasicConvs (Table I)
    max_change: float = 10.0  # eq. 14 truncation of the modification map, in 8-bit levels
    out_gain: float = 10.0  # the generator's last conv is read in units of this many levels (not in the paper)
    lambda_d: float = 1.0
    lambda_q: float = 1.0
    lambda_m: float = 100.0
    lr: float = 1e-3
    critic_lr: float = 1e-4
    critic_clip: float = 0.1
    gan: bool = True
    jt_fraction: float = 0.2  # 10 JT epochs of 50 in the paper
    q_warmup: float = 0.2  # λ_q ramps up from 0 over this fraction of the JT-stage (not in the paper)
    jt_rounding: str = "none"  # "none" (paper) | "ste": the JT extractor sees straight-through rounded stegos
    error_rate: float = 0.05  # raw bit error rate after PNG rounding; the shipped config holds the measured one


class SftnGenerator(nn.Module):
    """Fig. 5: cover (C channels) + message (±1) → modification map in 8-bit levels (before truncation)."""

    def __init__(self, c: int, width: int) -> None:
        super().__init__()
        self.b1 = basic_conv(c, width)
        self.b2 = basic_conv(width + c, width)
        self.b3 = basic_conv(2 * width + c, width)
        self.out = nn.Conv2d(3 * width + c, c, 3, padding=1)

    def forward(self, cover: Tensor, message: Tensor) -> Tensor:
        i1 = self.b1(cover)
        i2 = self.b2(torch.cat([i1, message], 1))
        i3 = self.b3(torch.cat([i1, i2, message], 1))
        return self.out(torch.cat([i1, i2, i3, message], 1))


class SftnExtractor(nn.Module):
    """Fig. 6: stego (C channels) → message logits (C channels)."""

    def __init__(self, c: int, width: int) -> None:
        super().__init__()
        self.b1 = basic_conv(c, width)
        self.mfb = MultiScaleFusion(width, 2 * width)
        self.rdb = ResidualDenseBlock(2 * width, growth=width)
        self.b4 = basic_conv(4 * width, width)
        self.b5 = basic_conv(2 * width, c)
        self.out = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        x1 = self.b1(x)
        x2 = self.mfb(x1)
        x3 = self.rdb(x2)
        x4 = self.b4(torch.cat([x3, x2], 1))
        x5 = self.b5(torch.cat([x4, x1], 1))
        return self.out(x5)


class Sftn(MessageModel):
    """Generator + extractor, plus the XuNet critic while training with ``gan``."""

    min_size = 16
    size_multiple = 1
    num_secrets = 0
    #: Radius of the extractor's receptive field is 11 px, the generator's 4: tiles with this margin are exact.
    tile_margin = 16
    tile_size = 512
    max_whole_pixels = 1024 * 1024

    def __init__(self, config: SftnConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or SftnConfig()
        if cfg.channels not in (1, 3):
            raise ModelError("SFTN channels must be 1 (grey) or 3 (colour)")
        if cfg.jt_rounding not in ("none", "ste"):
            raise ModelError("jt_rounding must be 'none' or 'ste'")
        self.message_channels = cfg.channels
        self.error_rate = cfg.error_rate
        self.generator = SftnGenerator(cfg.channels, cfg.width)
        self.extractor = SftnExtractor(cfg.channels, cfg.width)
        self.critic = XuNet(3, outputs=1) if cfg.gan else None

    # --- the message-model interface ---------------------------------------------------------------------
    def capacity_bits(self, h: int, w: int) -> int:
        return self.config.channels * h * w

    def _view(self, x: Tensor) -> Tensor:
        """What the networks see of an RGB image: itself (C = 3) or its luma (C = 1)."""
        return x if self.config.channels == 3 else to_grey(x)

    def _stego_matrix(self, cover: Tensor, message: Tensor) -> Tensor:
        """Eq. 14 before rounding: cover + truncated modification, clipped to [0, 1] (N×3×H×W)."""
        change = self.generator(self._view(cover), message * 2 - 1) * self.config.out_gain
        change = change.clamp(-self.config.max_change, self.config.max_change) / 255.0
        return (cover + change).clamp(0.0, 1.0)  # C = 1: the same change on R, G, B moves the luma by it

    def _logits(self, stego: Tensor) -> Tensor:
        return self.extractor(self._view(stego))

    def _bits_map(self, bits: Tensor, n: int, h: int, w: int, device: torch.device) -> Tensor:
        if bits.dim() != 2 or bits.shape[0] != n or bits.shape[1] != self.capacity_bits(h, w):
            raise ModelError(f"bits must be {n}×{self.capacity_bits(h, w)} for this cover, got {tuple(bits.shape)}")
        return (bits.to(device) > 0.5).float().view(n, self.config.channels, h, w)

    def _tiled(self, fn, inputs: list[Tensor]) -> Tensor:  # noqa: ANN001 - list → list callable
        h, w = inputs[0].shape[-2:]
        if h * w <= self.max_whole_pixels:
            return fn(inputs)[0]
        return run_tiled(fn, inputs, self.tile_size, self.tile_margin)[0]

    def embed(self, cover: Tensor, bits: Tensor) -> Tensor:
        cover = self._check_cover(cover, "cover")
        n, _, h, w = cover.shape
        m = self._bits_map(bits, n, h, w, cover.device)
        return self._tiled(lambda xs: [self._stego_matrix(xs[0].float(), xs[1])], [cover, m])

    def extract(self, stego: Tensor) -> Tensor:
        stego = self._check_cover(stego, "stego")
        probs = self._tiled(lambda xs: [torch.sigmoid(self._logits(xs[0].float()))], [stego])
        return probs.reshape(stego.shape[0], -1)

    # --- training ----------------------------------------------------------------------------------------
    def stages(self) -> list[tuple[str, float]]:
        """JT-stage (joint, no rounding) then SF-stage (generator frozen, extractor on rounded stegos)."""
        return [("jt", self.config.jt_fraction), ("sf", 1.0 - self.config.jt_fraction)]

    def optimizer_groups(self, stage: str) -> dict[str, Iterator[nn.Parameter] | dict]:
        if stage == "sf":
            return {"main": self.extractor.parameters()}
        groups: dict[str, Iterator[nn.Parameter] | dict] = {
            "main": list(self.generator.parameters()) + list(self.extractor.parameters())}
        if self.critic is not None:
            groups["critic"] = {"params": list(self.critic.parameters()), "lr": self.config.critic_lr}
        return groups

    def _critic_gap(self, cover: Tensor, stego: Tensor) -> Tensor:
        """Eq. 9 on batch means: |mean D(cover) − mean D(stego)|."""
        assert self.critic is not None
        scores = self.critic(torch.cat([cover, stego], 0)).float().squeeze(1)
        n = cover.shape[0]
        return (scores[:n].mean() - scores[n:].mean()).abs()

    def training_step(self, batch: dict[str, Tensor], ctx: StepContext) -> dict[str, float]:
        cfg = self.config
        cover, bits = batch["cover"].float(), batch["bits"].float()
        if ctx.stage == "sf":  # eq. 13: only the extractor learns, from the real 8-bit stego
            self.generator.eval()
            with torch.no_grad():
                stego = quantize(self._stego_matrix(cover, bits))
            logits = self._logits(stego).float()
            loss = F.binary_cross_entropy_with_logits(logits, bits)
            ctx.optimize("main", loss)
            return {"l_m": float(loss.detach()), "acc": float(((logits > 0) == (bits > 0.5)).float().mean())}
        logs: dict[str, float] = {}
        if self.critic is not None:  # discriminator step first, on a detached stego
            with torch.no_grad():
                x_d = self._stego_matrix(cover, bits)
            gap = self._critic_gap(cover, x_d)
            ctx.optimize("critic", -gap)
            with torch.no_grad():
                for p in self.critic.parameters():
                    p.clamp_(-cfg.critic_clip, cfg.critic_clip)
            logs["critic_gap"] = float(gap.detach())
        x = self._stego_matrix(cover, bits)
        seen = quantize(x, straight_through=True) if cfg.jt_rounding == "ste" else x
        logits = self._logits(seen).float()
        l_m = F.binary_cross_entropy_with_logits(logits, bits)  # eq. 11
        l_q = ((x - cover) * 255.0).pow(2).mean()  # eq. 10, in 8-bit levels²
        ramp = min(1.0, ctx.stage_progress / cfg.q_warmup) if cfg.q_warmup > 0 else 1.0
        loss = cfg.lambda_m * l_m + ramp * cfg.lambda_q * l_q
        if self.critic is not None:
            l_d = self._critic_gap(cover, x)  # eq. 9
            loss = loss + cfg.lambda_d * l_d
            logs["l_d"] = float(l_d.detach())
        ctx.optimize("main", loss)
        logs.update({"loss": float(loss.detach()), "l_m": float(l_m.detach()), "l_q": float(l_q.detach()),
                     "acc": float(((logits > 0) == (bits > 0.5)).float().mean())})
        return logs


def register(add) -> None:  # noqa: ANN001 - deepsteg.zoo.register_model
    """Registry entries for this paper (called by :mod:`deepsteg.zoo.registry`)."""
    paper = "Li et al., Anti-Rounding Image Steganography With Separable Fine-Tuned Network (SFTN), TCSVT 2023"
    add("sftn", Sftn, SftnConfig(channels=3),
        "bits in a colour image (1 bit per channel value), robust to 8-bit rounding; exact files via the container",
        paper, tags=("message",))
    add("sftn-grey", Sftn, SftnConfig(channels=1),
        "the paper's grey setting: 1 bit per pixel in the luma", paper, pretrained=False, tags=("message",))
