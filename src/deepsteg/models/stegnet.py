"""StegNet — Wu, Yang & Li, "Image-into-Image Steganography Using Deep Convolutional Network", PCM 2018
(Shanghai University). Colour image hidden in a colour image of the same size.

Architecture (§4.1, Fig. 5), the same for the embedding network (6 input channels: cover ‖ hidden) and the
decoding network (3 input channels: the embedded image):

* a lifting layer to a uniform 32 channels: 3×3 convolution → batch norm → ELU;
* six SCR blocks (separable convolution with residual, §4.2; :class:`deepsteg.layers.scr.SCRBlock`);
* a reducing layer back to image space: 3×3 convolution to 3 channels → batch norm → ELU;
* no strides and no pooling anywhere (§4.3), so the network is fully convolutional at any size.

Loss (§4.4, eq. 5–7): ``¼ (L_CE + L_HD + Var(L_CE) + Var(L_HD))`` with L1 terms, the variances taken over the
height, width and channels of each image. Adam, lr 1e-5, batch 64, 64×64 inputs (§5.1).

Where the paper is not specific, and where we depart from it:

* The text names the layers but the widths and activations of the lifting and reducing layers are only in
  Fig. 5, which the text does not transcribe. We follow the authors' figure (published with their code):
  conv → BN → ELU for both, the reducing layer's ELU being the network's output activation. That figure draws
  the later blocks widening to 64 and 128 channels and a two-convolution reducing layer (128 → 32 → 3); we keep
  the text's "uniform of 32 channels", hence one reducing convolution (32 → 3). ``width`` and ``blocks`` are
  config fields.
* ELU is unbounded above and reaches −1 below, so the raw output is not an image. The loss uses the raw output
  (eq. 6 as written); :meth:`StegNet.hide` and :meth:`StegNet.reveal` clamp to [0, 1], which is what a PNG file
  holds anyway.
* ``Var(L_CE)``: we take the variance of the per-pixel absolute error ``|E_i − C_i|`` (the quantity that
  ``L_CE`` averages), population variance (÷ N, as ``tf.nn.moments`` in the authors' code), averaged over the
  batch. The authors' released code takes the variance of the signed difference ``C_i − E_i`` instead;
  ``variance_of="signed"`` selects that.
* Initialisation: Xavier-uniform weights, as the authors' code (the paper does not say).
* ``lr=1e-4`` instead of the paper's 1e-5: we train for minutes on a CPU, not days on a GPU, and 1e-5 barely
  moves the weights in a few thousand steps. ``--lr 1e-5`` restores the paper's rate.
* ``train_rounding="ste"``: the decoding network is trained on the embedded image rounded to 8 bits
  (straight-through gradient), because a receiver only ever sees the saved PNG. ``"none"`` trains on float
  embedded images as the paper.
* ``residual=True`` (the ``stegnet`` entry, the one that ships weights): the embedding network's output is read as a
  change of the cover, ``E = C + F_CE(C, H)``, so it need not rebuild every cover pixel through its layers and
  its capacity goes to the hidden image. ``stegnet-paper`` (``residual=False``) is the published formulation.

Why BatchNorm matters here: the reducing layer ends in BN → ELU, so in train mode the output's per-batch mean and
spread per channel are learnt constants whatever the batch's images hold. The batch-to-batch spread of image
means is what that costs: 0.06 (standard deviation per channel) for batches of 16 crops of 64² from
``shared/corpus/train`` (measured), an error floor near 24 dB on the training batches themselves. A 100-minute CPU
run of the paper's formulation stalled at 27.6 dB cover / 23.1 dB secret after PNG on ``shared/corpus/val``
(evaluated in eval mode). The fix is a fine-tuning stage with BN frozen (``deepsteg train --freeze-bn``: exact
statistics, then BN as the per-pixel affine map that evaluation uses): from the same weights, 200 frozen steps
gained 2 dB on both images where 500 more ordinary steps gained nothing (24.7 / 19.2 dB → 26.4 / 21.3 dB, against
24.4 / 18.8 dB after 500 ordinary steps; residual formulation, batch 16, 64² crops).

Why ``carrier=3`` (the ``stegnet`` entry; not in the paper): without it, the best CPU run (1,000 ordinary steps,
then 2,200 with BN frozen; ~40 one-thread minutes) reached only 27.25 dB cover / 22.58 dB secret after PNG on
``shared/corpus/val``, and the dark red sample secret came back at 12.8 dB, 3.3 dB above a reveal from a clean cover:
the reveal regressed to the mean colour. The cause is structural. A network without strides or pooling is
translation-equivariant, so over a flat cover and a flat secret its change is flat as well, and the secret's colour
can only travel as a colour offset of the cover, which the decoder cannot tell from the cover's own colour
(``tests/test_stegnet.py`` shows the flat change). Neither width nor batch noise was the limit then: the authors'
width of 64 at the paper's batch of 64 (32² crops) trained better in the ordinary stage (27.8 / 21.7 dB, against
24.7 / 19.2 dB at width 32, batch 16) but, frozen, sat at the same training L1 of the decoded image (0.098) and at
27.3 / 22.3 dB after 800 steps, with the sample secret at 12.7 dB (10.1 dB from a clean cover). Three fixed ±1
channels of period 2 px ((−1)^(x+y), (−1)^x, (−1)^y) given to both networks break that symmetry: the change can
be a modulated carrier, which the decoder demodulates with the same pattern. Same width 32, same two stages (2,000
steps × batch 64 at 32², then 1,500 with BN frozen; 9 + 10 two-thread minutes): 35.26 dB cover / 23.57 dB secret,
a training L1 of the decoded image of 0.055, and the sample secret at 17.6 dB (10.2 dB from a clean cover).
Continued with BN frozen and its statistics kept (``--keep-bn-stats``), it flattened at 36.12 / 23.93 dB, cover
changing rate 0.72 %, decoded rate 95.2 % (weights of commit 92a73a4). ``carrier=0`` is the paper's input; the
pattern's phase follows pixel parity, so such models pad to even sizes and tile at even offsets
(``size_multiple = 2``).

Why ``width=64`` (the ``stegnet`` entry; the text's width is 32): with the carrier, width became the limit.
Weighting the decoding terms more at width 32 (``secret_weight`` 2 or 4, 800 frozen steps) cost the cover 1–1.7 dB
(35.16 and 34.46 dB) for 0.2 dB of secret (24.15 and 24.19 dB, from 23.93). The authors' figure's 64 channels, same
stages (2,500 steps × batch 64 at 32², 2,400 with BN frozen, 1,200 with the statistics kept; 83 two-thread minutes),
reached 35.63 dB cover / 28.56 dB secret, cover changing rate 0.74 % and decoded rate 97.33 % after PNG rounding,
within the bounds set from the paper's figures (≤ 1 % and ≥ 97 %; the paper: 0.76 % and 98.2 % on float outputs).
0.07 M parameters, 150 KB of fp16 weights (the shipped ones; their card has the commands).

Two things that did not help (CPU, batch 16, 64² crops, one thread):

* Training longer with BN frozen. 2,936 more steps from that run (lr 3e-4 cosine over a planned 10,000) left the
  training L1 of the decoded image flat at 0.099 and validation at 26.9 dB / 22.1 dB: a plateau, not a budget
  the next hour would fix. The reveal regresses to the mean colour: the dark red sample secret's red channel
  came back 0.41 on average for 0.61, and a 256² crop of it came back at 16.7 dB from the textured sample cover
  and from a flat grey one alike, so the cover's texture is not what limits it.
* BN frozen from the first step (``--freeze-bn`` with ``--init`` a fresh, seeded model). Hiding never starts: the
  embedding's change shrinks to nothing within 500 steps (``L_CE`` ≈ 5e-5, cover 100 dB) while the decoder
  outputs the mean image (11.6 dB), with or without 8-bit rounding in training. In train mode the last BN keeps
  the change's spread at its learnt scale, which is what lets hiding get going; freeze it only after that.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from deepsteg.io import quantize
from deepsteg.layers.conv import ConvBNAct
from deepsteg.layers.scr import SCRBlock
from deepsteg.models.base import ImageHider


@dataclass
class StegNetConfig:
    """Hyper-parameters of StegNet (defaults: the paper's, plus the documented departures)."""

    width: int = 32
    blocks: int = 6
    variance_of: str = "abs"
    train_rounding: str = "ste"
    lr: float = 1e-4
    #: The embedding network's output read as a change of the cover (``E = C + F_CE(C, H)``) instead of as the
    #: embedded image itself; the paper's formulation is ``False`` (the ``stegnet-paper`` entry).
    residual: bool = False
    #: Fixed ±1 carrier patterns of period 2 px ((−1)^(x+y), (−1)^x, (−1)^y; 0–3 of them) given to both networks as
    #: extra input channels. Not in the paper: a stride-free network is translation-equivariant, so over a flat
    #: cover and a flat secret its change is flat too, and a flat colour offset of the cover cannot be told apart
    #: from the cover's own colour by the decoder. A known pattern lets the change be a modulated carrier instead.
    carrier: int = 0
    #: Weight of the decoding terms (L_HD + Var(L_HD)) against the embedding terms in eq. 7. The paper weighs them
    #: equally (1.0). Raising it spends more of the cover-changing-rate budget on the secret, like StegoPNet's β.
    #: Measured from the width-32 v2 weights (800 frozen-BN steps, val after PNG): 2 gave 35.16 / 24.15 dB and 4
    #: gave 34.46 / 24.19 dB (cover / secret) against v2's 36.13 / 23.93: the decoder, not the signal, limited
    #: width 32.
    secret_weight: float = 1.0


class StegNetNet(nn.Module):
    """One StegNet network (embedding or decoding): lifting conv, ``blocks`` SCR blocks, reducing conv."""

    def __init__(self, in_ch: int, cfg: StegNetConfig) -> None:
        super().__init__()
        self.lift = ConvBNAct(in_ch, cfg.width, 3, 1, 1, act="elu")
        self.blocks = nn.Sequential(*[SCRBlock(cfg.width) for _ in range(cfg.blocks)])
        self.reduce = ConvBNAct(cfg.width, 3, 3, 1, 1, act="elu")
        for m in self.modules():  # Xavier-uniform, as the authors' code
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight)

    def forward(self, x: Tensor) -> Tensor:
        x = self.blocks(self.lift(x))
        # The reducing layer runs in fp32 even under bf16 autocast: the stego must resolve ±1/255 changes.
        with torch.autocast(x.device.type, enabled=False):
            return self.reduce(x.float())


def receptive_radius(cfg: StegNetConfig) -> int:
    """Receptive-field radius in pixels of one StegNet network: each 3×3 convolution (lifting, the depthwise
    convolution of every SCR block, reducing) adds one pixel; 1×1 convolutions, BN and ELU add none."""
    return 1 + cfg.blocks + 1


class StegNet(ImageHider):
    """Embedding network + decoding network trained jointly (paper §4)."""

    num_secrets = 1
    secret_channels = 3
    size_multiple = 1  # no strides, no pooling: any size runs as it is
    min_size = 16  # not a network limit; the same floor as the other models, for a consistent CLI
    tile_margin = 8
    refine_auto_pixels = 320 * 320  # every layer at full resolution: 50 steps at 256² took 12.6 s on 2 cores

    def __init__(self, config: StegNetConfig | None = None) -> None:
        super().__init__(config or StegNetConfig())
        cfg = self.config
        if cfg.train_rounding not in ("ste", "none"):
            raise ValueError("train_rounding must be 'ste' or 'none'")
        if cfg.variance_of not in ("abs", "signed"):
            raise ValueError("variance_of must be 'abs' or 'signed'")
        if not 0 <= cfg.carrier <= 3:
            raise ValueError("carrier must be 0, 1, 2 or 3")
        self.embed = StegNetNet(6 + cfg.carrier, cfg)
        self.decode = StegNetNet(3 + cfg.carrier, cfg)
        if cfg.carrier:  # the pattern's phase follows pixel parity: pad to, and tile at, even offsets only
            self.size_multiple = 2
        if cfg.residual:  # start from "change nothing"; the change grows as hiding is learnt
            nn.init.constant_(self.embed.reduce[1].weight, 0.01)
        # Tiles are seamless when the margin covers the receptive-field radius (8 px for 6 blocks). Hide and
        # reveal are tiled separately, so one network's radius is what counts; round up to a multiple of 8.
        # Exact in eval mode only, where batch norm is a per-pixel affine map.
        self.tile_margin = 8 * math.ceil(receptive_radius(cfg) / 8)

    def _with_carrier(self, x: Tensor) -> Tensor:
        """``x`` with the config's carrier channels appended (phase from the tensor's own pixel coordinates)."""
        if not self.config.carrier:
            return x
        n, _, h, w = x.shape
        yy = torch.arange(h, device=x.device).view(h, 1) % 2
        xx = torch.arange(w, device=x.device).view(1, w) % 2
        pats = [1 - 2 * ((yy + xx) % 2), (1 - 2 * xx).expand(h, w), (1 - 2 * yy).expand(h, w)][: self.config.carrier]
        return torch.cat([x, torch.stack(pats).to(x.dtype).expand(n, -1, -1, -1)], dim=1)

    def _embedded(self, cover: Tensor, hidden: Tensor) -> Tensor:
        out = self.embed(self._with_carrier(torch.cat([cover, hidden], dim=1)))
        return cover + out if self.config.residual else out

    def _hide(self, cover: Tensor, secrets: Sequence[Tensor]) -> Tensor:
        return self._embedded(cover, secrets[0]).clamp(0.0, 1.0)

    def _reveal(self, stego: Tensor) -> list[Tensor]:
        return [self.decode(self._with_carrier(stego)).clamp(0.0, 1.0)]

    def _variance(self, diff: Tensor) -> Tensor:
        """Var over channels, height and width of each image (population variance), mean over the batch."""
        d = diff.abs() if self.config.variance_of == "abs" else diff
        return d.flatten(1).var(dim=1, correction=0).mean()

    def training_losses(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        """Eq. 5–7; the decoding network sees the 8-bit embedded image when ``train_rounding='ste'``."""
        cover, hidden = batch["cover"], batch["secrets"][:, 0]
        embedded = self._embedded(cover, hidden)  # eq. 5: E_i = F_CE(C_i, H_i)
        seen = quantize(embedded, straight_through=True) if self.config.train_rounding == "ste" else embedded
        decoded = self.decode(self._with_carrier(seen))  # eq. 5: D_i = F_ED(E_i)
        l_ce = (embedded - cover).abs().mean()  # eq. 6
        l_hd = (decoded - hidden).abs().mean()  # eq. 6
        var_ce = self._variance(embedded - cover)  # eq. 7, Var(L_CE)
        var_hd = self._variance(decoded - hidden)  # eq. 7, Var(L_HD)
        loss = 0.25 * (l_ce + var_ce + self.config.secret_weight * (l_hd + var_hd))  # eq. 7 (weight 1: the paper)
        return loss, {"loss": loss.item(), "l_ce": l_ce.item(), "l_hd": l_hd.item(), "var_ce": var_ce.item(),
                      "var_hd": var_hd.item()}


def register(add) -> None:  # noqa: ANN001 - deepsteg.zoo.register_model
    """Registry entries for this paper (called by :mod:`deepsteg.zoo.registry`)."""
    paper = "Wu, Yang & Li (StegNet), PCM 2018"
    # Width 64 (the paper's text says 32): with the carrier, 64 channels took the secret from 23.9 to 28.6 dB after PNG
    # on val in the same kind of CPU budget, and the decoded rate past the paper's 97 % (see the model card).
    add("stegnet", StegNet, StegNetConfig(residual=True, carrier=3, width=64),
        "colour image in colour image; separable-conv residual blocks, no strides (any size), carrier inputs, "
        "width 64", paper,
        tags=("image",))
    add("stegnet-paper", StegNet, StegNetConfig(),
        "StegNet as published (the embedding net outputs the embedded image itself)", paper,
        pretrained=False, tags=("image",))
