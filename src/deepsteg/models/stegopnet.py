"""StegoPNet — Duan et al., "Image Steganography With Generalization Ability Based on Pyramid Pooling
Module", IEEE Access 8 (2020). Colour image hidden in a colour image of the same size.

Architecture (§III-C, Fig. 5, Table 2), the same for the hiding network (6 input channels: cover ‖ secret) and
the reveal network (3 input channels: stego):

* four Conv-BN-ReLU down-samplings, kernel 4, stride 2, padding 1: 32, 64, 128, 256 channels;
* the pyramid pooling module, bins 32, 16, 8, 4, 2 with 64 channels each, concatenated with its input
  (256 + 5·64 = 576 channels, Table 2's first DeConv input);
* four DeConv-BN-ReLU up-samplings (kernel 4, stride 2, padding 1) to 128, 64, 32, 16 channels, each but the
  last followed by concatenation with the down-sampling feature of the same size (skip connections);
* Conv-BN-Sigmoid to 3 channels.

Loss eq. 5–7: ``l_H + α·l_R`` with MSE terms and α = 0.6; Adam, lr 1e-3; Kaiming initialisation.

Departures, each a config field so the paper's exact setting stays one flag away:

* ``kernel=4`` for the down-samplings. The text and Fig. 5 say kernel 4, Table 2 says 3×3. We follow the text:
  a 4×4, stride-2, padding-1 convolution halves every even size exactly and mirrors the 4×4 deconvolutions, so
  the encoder and decoder grids line up without the off-by-one a 3×3/stride-2 convolution gives.
* The paper says four stride-2 down-samplings of a 256×256 input give 256×32×32; they give 256×16×16. We keep the
  four down-samplings (the skip connections of Table 2 need them) and clamp pyramid bins to the map size.
* ``residual=True`` (our default for shipped weights): the hiding network's Conv-BN-Sigmoid output ``σ`` is read
  as a bounded change of the cover, ``stego = clamp(cover + 2σ − 1)``, instead of as the stego itself. Same
  layers and parameters; the network no longer has to rebuild every cover pixel through its 16× bottleneck,
  which is what limits cover PSNR on a small training budget. ``residual=False`` is the paper's formulation.
* ``train_rounding="ste"``: the reveal network is trained on the stego rounded to 8 bits (straight-through
  gradient), because a receiver only ever sees the saved PNG. ``"none"`` trains on float stegos as the paper.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from deepsteg.io import quantize
from deepsteg.layers import ConvBNAct, DeconvBNAct, PyramidPooling
from deepsteg.models.base import ImageHider


@dataclass
class StegoPNetConfig:
    """Hyper-parameters of StegoPNet (defaults: the paper's, plus the documented departures)."""

    use_ppm: bool = True
    widths: tuple[int, int, int, int] = (32, 64, 128, 256)
    ppm_bins: tuple[int, ...] = (32, 16, 8, 4, 2)
    ppm_channels: int = 64
    head_channels: int = 16
    kernel: int = 4
    alpha: float = 0.6
    residual: bool = True
    train_rounding: str = "ste"
    lr: float = 1e-3
    #: Train on sizes that are not multiples of 16, padded and cropped exactly as hide and reveal do: the receiver
    #: pads the saved stego by reflection, not with the pixels the hiding network made there, so a network trained
    #: only on multiples reveals a 1–15-px bottom/right band several dB worse (README, "Any size").
    train_ragged: bool = False


class StegoPNetUNet(nn.Module):
    """One StegoPNet network (hiding or reveal): U-Net with a pyramid pooling bottleneck."""

    def __init__(self, in_ch: int, cfg: StegoPNetConfig) -> None:
        super().__init__()
        w1, w2, w3, w4 = cfg.widths
        k = cfg.kernel
        p = (k - 1) // 2  # k=4 → padding 1 (paper); k=3 → padding 1 too (Table 2's reading)
        self.down = nn.ModuleList([
            ConvBNAct(in_ch, w1, k, 2, p), ConvBNAct(w1, w2, k, 2, p),
            ConvBNAct(w2, w3, k, 2, p), ConvBNAct(w3, w4, k, 2, p),
        ])
        self.ppm = PyramidPooling(w4, cfg.ppm_bins, cfg.ppm_channels) if cfg.use_ppm else nn.Identity()
        bottleneck = self.ppm.out_channels if cfg.use_ppm else w4
        self.up = nn.ModuleList([
            DeconvBNAct(bottleneck, w3), DeconvBNAct(2 * w3, w2), DeconvBNAct(2 * w2, w1),
            DeconvBNAct(2 * w1, cfg.head_channels),
        ])
        self.head = ConvBNAct(cfg.head_channels, 3, 3, 1, 1, act="sigmoid")
        for m in self.modules():  # Kaiming initialisation (§IV)
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")

    def forward(self, x: Tensor) -> Tensor:
        skips = []
        for layer in self.down:
            x = layer(x)
            skips.append(x)
        x = self.ppm(x)
        for i, layer in enumerate(self.up):
            x = layer(x)
            if i < 3:
                x = torch.cat([x, skips[2 - i]], dim=1)
        # The head runs in fp32 even under bf16 autocast: the stego must resolve ±1/255 changes.
        with torch.autocast(x.device.type, enabled=False):
            return self.head(x.float())


class StegoPNet(ImageHider):
    """Hiding network + reveal network trained jointly (paper §III)."""

    num_secrets = 1
    secret_channels = 3
    size_multiple = 16
    min_size = 16

    def __init__(self, config: StegoPNetConfig | None = None) -> None:
        super().__init__(config or StegoPNetConfig())
        cfg = self.config
        if cfg.train_rounding not in ("ste", "none"):
            raise ValueError("train_rounding must be 'ste' or 'none'")
        self.hiding = StegoPNetUNet(6, cfg)
        self.reveal_net = StegoPNetUNet(3, cfg)
        if cfg.residual:
            # Start from "change nothing": σ(0) = 0.5 ↦ zero residual. The reveal net still gets gradient
            # through the BN shift, and the scale grows as hiding is learnt.
            nn.init.constant_(self.hiding.head[1].weight, 0.01)

    def _hide(self, cover: Tensor, secrets: Sequence[Tensor]) -> Tensor:
        out = self.hiding(torch.cat([cover, secrets[0]], dim=1))
        if self.config.residual:
            return (cover + 2.0 * out - 1.0).clamp(0.0, 1.0)
        return out

    def _reveal(self, stego: Tensor) -> list[Tensor]:
        return [self.reveal_net(stego)]

    def training_losses(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        """Eq. 5–7: ``l_H + α·l_R``; the reveal net sees the 8-bit stego when ``train_rounding='ste'``."""
        cover, secret = batch["cover"], batch["secrets"][:, 0]
        if self.config.train_ragged:  # cut 0–15 px off the bottom and right (global RNG: seeded, checkpointed)
            dh, dw = (int(v) for v in torch.randint(0, self.size_multiple, (2,)))
            h, w = cover.shape[-2] - dh, cover.shape[-1] - dw
            cover, secret = cover[..., :h, :w], secret[..., :h, :w]
        stego = self._hide_padded(cover, [secret])  # = _hide on multiples of 16
        seen = quantize(stego, straight_through=True) if self.config.train_rounding == "ste" else stego
        revealed = self._reveal_padded(seen)[0]
        l_h = F.mse_loss(stego, cover)
        l_r = F.mse_loss(revealed, secret)
        loss = l_h + self.config.alpha * l_r
        return loss, {"loss": loss.item(), "l_hide": l_h.item(), "l_reveal": l_r.item()}


def register(add) -> None:  # noqa: ANN001 - deepsteg.zoo.register_model
    """Registry entries for this paper (called by :mod:`deepsteg.zoo.registry`)."""
    paper = "Duan et al., StegoPNet, IEEE Access 2020"
    add("stegopnet", StegoPNet, StegoPNetConfig(), "colour image in colour image; U-Net + pyramid pooling", paper,
        tags=("image",))
    add("stegopnet-noppm", StegoPNet, StegoPNetConfig(use_ppm=False),
        "StegoPNet without the pyramid pooling module (the paper's ablation)", paper, tags=("image",))
    add("stegopnet-paper", StegoPNet, StegoPNetConfig(residual=False, train_rounding="none"),
        "StegoPNet exactly as published (sigmoid stego, float training)", paper,
        pretrained=False, tags=("image",))
