"""ISGAN — Zhang, Dong & Liu, "Invisible Steganography via Generative Adversarial Networks" (Beijing University
of Posts and Telecommunications; arXiv 2018, Multimedia Tools and Applications 2019). A *grey* secret image hidden
in the luma of a colour cover of the same size.

* §3.1: cover → YCbCr; the encoder sees ``Y_cover ‖ secret`` and outputs a new Y; Cb and Cr pass through
  unchanged, so the stego keeps the cover's colour exactly (up to clamping and 8-bit rounding). The decoder reads
  only the Y of the stego.
* Table 1 (encoder): 3×3 Conv-BN-LeakyReLU to 16, seven inception blocks with residual shortcut (Fig. 3,
  :class:`~deepsteg.layers.inception.InceptionResBlock`) 32, 64, 128, 256, 128, 64, 32, 3×3 Conv-BN-LeakyReLU to
  16, 1×1 Conv + Tanh to 1 channel. No strides anywhere.
* Table 2 (decoder): five 3×3 Conv-BN-LeakyReLU (32, 64, 128, 64, 32), 1×1 Conv + Sigmoid to 1 channel.
* Table 3 (steganalyser, the GAN's discriminator): XuNet-like; 3×3 Conv-BN-LeakyReLU-AvgPool to 8 and 16,
  1×1 Conv-BN(-AvgPool) to 32 and 64, 1×1 Conv-BN-LeakyReLU(-AvgPool) to 128, spatial pyramid pooling with
  levels 1, 2, 4 (128 · 21 = 2688 features, the table's width), FC 128, FC 2 (logits: cover / stego).
* Eq. 10–12, the mixed loss: ``L(x, x') = α(1 − SSIM) + (1 − α)(1 − MS-SSIM) + β·MSE`` for the cover (eq. 10,
  on the RGB images c, c' as written) and the secret (eq. 11, grey), total ``L(c, c') + γ·L(s, s')`` (eq. 12);
  α = 0.5, β = 0.3, γ = 0.85 (§4). With ``gan=True`` the generator also minimises a non-saturating adversarial
  term (eq. 4), weighted by ``adv_weight``.
* §4: Xavier initialisation, Adam lr 1e-4 for the generator (encoder + decoder), SGD for the steganalyser,
  label flipping, LeakyReLU everywhere.

Departures and readings of what the paper leaves open, each a config field where it changes behaviour:

* ``residual=True`` (our default): Table 1 ends in a Tanh but does not say how a value in [−1, 1] becomes a Y in
  [0, 1]. The paper's formulation reads the encoder output *as* the new Y, i.e. ``Y' = (tanh + 1) / 2``
  (``residual=False``; a public Keras re-implementation works on [−1, 1] images, which is the same thing). We
  default to ``Y' = Y + tanh`` — a bounded change of the cover's luma, initialised near zero — because the
  network then starts at "stego = cover" instead of having to rebuild every cover pixel, as with StegoPNet.
* ``critic_xunet_front=True``: §3.3 says the steganalyser is "based on XuNet" but Table 3 lists no XuNet
  front-end. We add XuNet's fixed KV high-pass filter (per RGB channel, before Layer 1) and its ABS after
  Layer 1's convolution; the activations stay those of Table 3 (LeakyReLU, not XuNet's TanH). Table 3 halves the
  size at Layers 3–5 although only ConvBlock1 names an AvgPool; we pool after every layer (XuNet's 5×5, stride 2).
  A LeakyReLU separates the two FC layers (two stacked linear maps would collapse into one).
* The adversarial weight, the SGD learning rate and the label-flip rate are not given in the paper: ours are
  ``adv_weight=0.01``, ``critic_lr=1e-3`` (momentum 0.9, the trainer's), ``label_flip_prob=0.05`` — each
  steganalyser label is swapped with that probability (the "flip labels" trick of Salimans et al. [29]); the
  generator uses the usual flipped target (its stegos labelled "cover"). §4's "L2 normalization" (weight decay)
  is off by default because the paper gives no coefficient (``weight_decay``, passed to both optimisers).
* MS-SSIM on small crops: 5 scales need a side over 160 px (11-px window, 4 halvings). For smaller images we use
  the largest number of scales L ≤ 5 with ``side > 10 · 2^(L−1)`` and the first L standard weights renormalised
  to sum to 1 (L = 1 is SSIM); see :func:`ms_ssim_levels`.
* ``cover_warmup`` (0 = off, the paper): the weight of the cover loss ramps linearly from 0 to 1 over this
  fraction of training. From a start where the stego is the cover (``residual=True``) the decoder sees nothing of
  the secret and the secret loss gives the encoder no direction: on a CPU budget (32² crops, lr 3e-4) the basic
  model sat at 73 dB cover / 13 dB secret on validation after 2,000 steps, i.e. it hid nothing. With the cover
  loss at first off the encoder embeds freely and the decoder learns to read it (22–25 dB secret within 300–1,600
  steps) — the same remedy as SFTN's ``q_warmup``. But the encoder first hides with large, SSIM-cheap changes
  (10–15 dB cover PSNR at 256²), and as the cover weight returns to 1 it gives the secret up instead of refining
  the embedding: with a ramp over 10 % of 9,000 steps (32² crops) and over 30 % of 6,000 steps (64² crops, batch
  4) validation went back to ~46–58 dB cover / 13 dB secret, i.e. nothing hidden; a 50 % ramp at 32² had
  reached 12 dB / 21 dB, secret falling, when stopped. What got past this is ``loss="mse"`` below.
* ``loss="mse"`` (``"mixed"`` = eq. 10–12, the paper): plain MSE for both terms of eq. 12, as a pre-training
  stage. Under the mixed loss even a tiny change of a flat region costs a lot of SSIM (1 − SSIM ≈ σ²/C₂ there, C₂ =
  0.03²), so the encoder never starts to hide; under MSE it does at once. On the CPU (one thread, 32² crops of the
  training photos downscaled to a 384-px short side, batch 8, lr 3e-4) validation went from 18 dB secret at step 500
  to 32.5 dB cover / 27.6 dB secret at 8,000 (128² crops, after rounding). The paper's loss then continues from
  those weights: ``deepsteg train isgan-basic --init RUN_MSE/last --set loss=mixed`` (``--set`` is needed: ``--init``
  keeps the saved configuration). It keeps hiding and moves the changes out of flat regions: 2,500 steps (lr 3e-4)
  took validation to 35.0 dB cover, SSIM 0.91 (from 0.82) / 25.3 dB secret — ``isgan-basic`` version 1. The
  shipped version 2 adds 3,000 steps with BatchNorm frozen (``--freeze-bn``; at 32² crops and batch 8 train-mode
  BN normalises with very noisy statistics): 35.7 / 26.4 dB at 128² (see its model card; 256² figures there).
* ``train_rounding="ste"``: the decoder (and the steganalyser) see the stego rounded to 8 bits, with a
  straight-through gradient, since a receiver only ever has the PNG. ``"none"`` trains on float stegos (paper).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import pytorch_msssim
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from deepsteg.colour import rgb_to_ycbcr, ycbcr_to_rgb
from deepsteg.io import quantize
from deepsteg.layers import ConvBNAct
from deepsteg.layers.inception import InceptionResBlock
from deepsteg.layers.spp import SpatialPyramidPooling
from deepsteg.layers.xunet import KV
from deepsteg.models.base import ImageHider, StepContext


@dataclass
class IsganConfig:
    """Hyper-parameters of ISGAN (defaults: the paper's §4 values plus the documented departures)."""

    gan: bool = False
    alpha: float = 0.5  # eq. 10–11: SSIM vs MS-SSIM
    beta: float = 0.3  # eq. 10–11: MSE weight
    gamma: float = 0.85  # eq. 12: secret vs cover
    adv_weight: float = 0.01  # not in the paper
    lr: float = 1e-4  # Adam, generator (§4)
    critic_lr: float = 1e-3  # SGD, steganalyser (not in the paper)
    label_flip_prob: float = 0.05
    weight_decay: float = 0.0  # §4's "L2 normalization"; the paper gives no coefficient
    residual: bool = True
    critic_xunet_front: bool = True
    train_rounding: str = "ste"
    cover_warmup: float = 0.0  # cover-loss weight ramps 0 → 1 over this fraction of training (not in the paper)
    loss: str = "mixed"  # "mixed": eq. 10–12 (paper); "mse": plain MSE in eq. 12, a pre-training stage (not in it)


# --- the mixed loss (eq. 10–12) ---------------------------------------------------------------------------------
_MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)  # Wang et al. 2003, as pytorch_msssim
_WIN_SIZE = 11


def ms_ssim_levels(side: int, win_size: int = _WIN_SIZE) -> int:
    """MS-SSIM scales (≤ 5) usable on images whose smaller side is ``side``: each of the L − 1 halvings must
    leave more than one window, i.e. ``side > (win_size − 1) · 2^(L−1)`` (pytorch_msssim's rule for L = 5)."""
    levels = 5
    while levels > 1 and side <= (win_size - 1) * 2 ** (levels - 1):
        levels -= 1
    return levels


def _gauss_window(channels: int, like: Tensor, size: int = _WIN_SIZE, sigma: float = 1.5) -> Tensor:
    coords = torch.arange(size, dtype=like.dtype, device=like.device) - size // 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    return (g / g.sum()).repeat(channels, 1, 1, 1)  # C×1×1×size


def _ssim_cs(x: Tensor, y: Tensor, win: Tensor, data_range: float = 1.0) -> tuple[Tensor, Tensor]:
    """Per-image, per-channel SSIM and contrast-structure terms (valid Gaussian filtering, as pytorch_msssim)."""
    c = x.shape[1]

    def blur(t: Tensor) -> Tensor:
        if t.shape[-1] >= win.shape[-1]:
            t = F.conv2d(t, win, groups=c)
        if t.shape[-2] >= win.shape[-1]:
            t = F.conv2d(t, win.transpose(2, 3), groups=c)
        return t

    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_x, mu_y = blur(x), blur(y)
    var_x, var_y = blur(x * x) - mu_x**2, blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    cs = (2 * cov + c2) / (var_x + var_y + c2)
    ssim = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1) * cs
    return ssim.flatten(2).mean(-1), cs.flatten(2).mean(-1)


def ms_ssim_scales(x: Tensor, y: Tensor, levels: int) -> Tensor:
    """Mean MS-SSIM with ``levels`` scales and the first ``levels`` standard weights renormalised to sum to 1.

    The same algorithm as ``pytorch_msssim.ms_ssim`` (which it equals at 5 scales), without its 161-px minimum.
    """
    w = x.new_tensor(_MS_SSIM_WEIGHTS[:levels])
    w = w / w.sum()
    win = _gauss_window(x.shape[1], x)
    terms = []
    for i in range(levels):
        ssim, cs = _ssim_cs(x, y, win)
        if i < levels - 1:
            # Floor at a tiny positive value (pytorch_msssim uses relu): cs^w has an infinite slope at 0.
            terms.append(cs.clamp_min(1e-6))
            pad = [s % 2 for s in x.shape[2:]]
            x, y = F.avg_pool2d(x, 2, padding=pad), F.avg_pool2d(y, 2, padding=pad)
    terms.append(ssim.clamp_min(1e-6))
    return torch.prod(torch.stack(terms) ** w.view(-1, 1, 1), dim=0).mean()


def ms_ssim(x: Tensor, y: Tensor) -> Tensor:
    """Mean MS-SSIM of two N×C×H×W batches in [0, 1] with as many scales as their size allows
    (:func:`ms_ssim_levels`): ``pytorch_msssim.ms_ssim`` from 161 px, :func:`ms_ssim_scales` below."""
    levels = ms_ssim_levels(min(x.shape[-2:]))
    if levels == 5:
        return pytorch_msssim.ms_ssim(x, y, data_range=1.0, size_average=True)
    return ms_ssim_scales(x, y, levels)


def mixed_loss(x: Tensor, ref: Tensor, alpha: float = 0.5, beta: float = 0.3) -> Tensor:
    """Eq. 10/11: ``α(1 − SSIM) + (1 − α)(1 − MS-SSIM) + β·MSE`` on [0, 1] images, computed in fp32."""
    with torch.autocast(x.device.type, enabled=False):
        x, ref = x.float(), ref.float()
        s = pytorch_msssim.ssim(x, ref, data_range=1.0, size_average=True)
        return alpha * (1 - s) + (1 - alpha) * (1 - ms_ssim(x, ref)) + beta * F.mse_loss(x, ref)


# --- networks ---------------------------------------------------------------------------------------------------
def _xavier(module: nn.Module) -> None:
    """Xavier initialisation of every convolution and linear layer (§4); biases zero."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class IsganEncoder(nn.Module):
    """Table 1: ``Y ‖ secret`` (2 channels) → new Y (1 channel), same size."""

    widths = (32, 64, 128, 256, 128, 64, 32)
    #: Receptive-field radius: 3×3 (1) + seven inception blocks (2 each) + 3×3 (1) + 1×1 (0).
    radius = 1 + len(widths) * InceptionResBlock.radius + 1

    def __init__(self, residual: bool = True) -> None:
        super().__init__()
        self.residual = residual
        blocks: list[nn.Module] = [ConvBNAct(2, 16, 3, act="leaky_relu")]
        prev = 16
        for w in self.widths:
            blocks.append(InceptionResBlock(prev, w))
            prev = w
        blocks.append(ConvBNAct(prev, 16, 3, act="leaky_relu"))
        self.body = nn.Sequential(*blocks)
        self.head = nn.Conv2d(16, 1, 1)  # ConvBlock2: 1×1 Conv + Tanh
        _xavier(self)
        if residual:
            # Start near "change nothing" (|ΔY| of a few 8-bit levels); the head still receives gradient.
            nn.init.normal_(self.head.weight, std=0.005)

    def forward(self, y: Tensor, secret: Tensor) -> Tensor:
        feats = self.body(torch.cat([y, secret.to(y.dtype)], dim=1))
        # The head runs in fp32 even under bf16 autocast: the new Y must resolve ±1/255 changes.
        with torch.autocast(feats.device.type, enabled=False):
            t = torch.tanh(self.head(feats.float()))
            return y.float() + t if self.residual else (t + 1.0) / 2.0


class IsganDecoder(nn.Module):
    """Table 2: Y of the stego (1 channel) → grey secret (1 channel), same size."""

    widths = (32, 64, 128, 64, 32)
    #: Receptive-field radius: five 3×3 convolutions.
    radius = len(widths)

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        prev = 1
        for w in self.widths:
            layers.append(ConvBNAct(prev, w, 3, act="leaky_relu"))
            prev = w
        self.body = nn.Sequential(*layers)
        self.head = nn.Conv2d(prev, 1, 1)  # ConvBlock2: 1×1 Conv + Sigmoid (no BN on the last layer)
        _xavier(self)

    def forward(self, y: Tensor) -> Tensor:
        feats = self.body(y)
        with torch.autocast(feats.device.type, enabled=False):
            return torch.sigmoid(self.head(feats.float()))


class IsganSteganalyser(nn.Module):
    """Table 3: N×3×H×W RGB → N×2 logits (index 0 cover, 1 stego), for any H, W (spatial pyramid pooling)."""

    def __init__(self, xunet_front: bool = True, negative_slope: float = 0.2) -> None:
        super().__init__()
        self.xunet_front = xunet_front
        # A constant, not a parameter (and not saved: it is defined by the config flag).
        self.register_buffer("kv", KV.repeat(3, 1, 1, 1), persistent=False)
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.act = nn.LeakyReLU(negative_slope, inplace=True)
        self.layers = nn.ModuleList([
            ConvBNAct(8, 16, 3, act="leaky_relu"),  # Layer 2, ConvBlock1
            ConvBNAct(16, 32, 1, act="none"),  # Layer 3, ConvBlock2
            ConvBNAct(32, 64, 1, act="none"),  # Layer 4, ConvBlock2
            ConvBNAct(64, 128, 1, act="leaky_relu"),  # Layer 5, ConvBlock3
        ])
        self.pool = nn.AvgPool2d(5, stride=2, padding=2, count_include_pad=False)
        self.spp = SpatialPyramidPooling((1, 2, 4))
        self.fc = nn.Sequential(nn.Linear(self.spp.out_features(128), 128), nn.LeakyReLU(negative_slope, inplace=True),
                                nn.Linear(128, 2))
        _xavier(self)

    def forward(self, x: Tensor) -> Tensor:
        # The front end runs in fp32 even under bf16 autocast: bf16's spacing (1/256 near 1) would erase the
        # ±1/255 changes this network exists to detect.
        with torch.autocast(x.device.type, enabled=False):
            x = x.float()
            if self.xunet_front:
                x = F.conv2d(x, self.kv.to(x.dtype), padding=2, groups=3)
            x = self.conv1(x)
            if self.xunet_front:
                x = x.abs()
        x = self.pool(self.act(self.bn1(x)))  # Layer 1, ConvBlock1
        for layer in self.layers:
            x = self.pool(layer(x))
        return self.fc(self.spp(x))


# --- the method -------------------------------------------------------------------------------------------------
class Isgan(ImageHider):
    """Encoder + decoder (the "basic model"), plus the steganalyser as ``critic`` when ``config.gan``."""

    num_secrets = 1
    secret_channels = 1
    size_multiple = 1  # no strides in the encoder or decoder
    min_size = 16
    # The encoder's receptive-field radius is 16 px (IsganEncoder.radius), the decoder's 5: a 16-px margin makes
    # tiled hiding and revealing equal to whole-image processing (the critic never runs at inference).
    tile_margin = 16
    refine_auto_pixels = 256 * 256  # a full-resolution decoder: 50 steps at 256² took 17.8 s on 2 cores

    def __init__(self, config: IsganConfig | None = None) -> None:
        super().__init__(config or IsganConfig())
        cfg = self.config
        if cfg.train_rounding not in ("ste", "none"):
            raise ValueError("train_rounding must be 'ste' or 'none'")
        if cfg.loss not in ("mixed", "mse"):
            raise ValueError("loss must be 'mixed' or 'mse'")
        self.encoder = IsganEncoder(cfg.residual)
        self.decoder = IsganDecoder()
        self.critic = IsganSteganalyser(cfg.critic_xunet_front) if cfg.gan else None

    # hiding and revealing ----------------------------------------------------------------------------------
    def _hide(self, cover: Tensor, secrets: Sequence[Tensor]) -> Tensor:
        ycc = rgb_to_ycbcr(cover.float())
        y_new = self.encoder(ycc[:, :1], secrets[0])
        return ycbcr_to_rgb(torch.cat([y_new, ycc[:, 1:]], dim=1)).clamp(0.0, 1.0)

    def _reveal(self, stego: Tensor) -> list[Tensor]:
        return [self.decoder(rgb_to_ycbcr(stego.float())[:, :1])]

    def refine_space(self, cover: Tensor, stego: Tensor) -> tuple[Tensor, Callable[[Tensor], Tensor]]:
        """Refinement changes the luma only: Cb/Cr stay the cover's, as in :meth:`_hide`."""
        cbcr = rgb_to_ycbcr(cover.float())[:, 1:]
        return rgb_to_ycbcr(stego.float())[:, :1], lambda y: ycbcr_to_rgb(torch.cat([y, cbcr], 1)).clamp(0.0, 1.0)

    # training ----------------------------------------------------------------------------------------------
    def _generator_pass(self, batch: dict[str, Tensor], cover_weight: float = 1.0,
                        ) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        """(cover, stego as seen by decoder and critic, eq. 10–12 terms) for one batch."""
        cfg = self.config
        cover, secret = batch["cover"], self.as_secret(batch["secrets"][:, 0])
        stego = self._hide(cover, [secret])
        seen = quantize(stego, straight_through=True) if cfg.train_rounding == "ste" else stego
        revealed = self._reveal(seen)[0]
        if cfg.loss == "mse":
            l_cover, l_secret = F.mse_loss(stego, cover.float()), F.mse_loss(revealed, secret.float())
        else:
            l_cover = mixed_loss(stego, cover, cfg.alpha, cfg.beta)  # eq. 10 (RGB c, c')
            l_secret = mixed_loss(revealed, secret, cfg.alpha, cfg.beta)  # eq. 11
        hide = cover_weight * l_cover + cfg.gamma * l_secret  # eq. 12 (cover_weight < 1 only in cover_warmup)
        return cover, seen, {"hide": hide, "l_cover": l_cover, "l_secret": l_secret}

    def _critic_logits(self, cover: Tensor, stego: Tensor) -> Tensor:
        """Critic logits for ``cover ‖ stego`` in one batch (one set of BN statistics over both classes)."""
        assert self.critic is not None
        return self.critic(torch.cat([cover.float(), stego], dim=0)).float()

    def _adversarial(self, cover: Tensor, seen: Tensor) -> Tensor:
        """Generator side of eq. 4, non-saturating: the critic should call the stegos covers (label 0)."""
        logits = self._critic_logits(cover, seen)[cover.shape[0]:]
        return F.cross_entropy(logits, torch.zeros(len(logits), dtype=torch.long, device=logits.device))

    def training_losses(self, batch: dict[str, Tensor], cover_weight: float = 1.0) -> tuple[Tensor, dict[str, float]]:
        """The generator's loss: eq. 12, plus ``adv_weight`` × the adversarial term when ``gan``."""
        cover, seen, t = self._generator_pass(batch, cover_weight)
        loss = t["hide"]
        logs = {k: float(v.detach()) for k, v in t.items()}
        if self.critic is not None:
            adv = self._adversarial(cover, seen)
            loss = loss + self.config.adv_weight * adv
            logs["l_adv"] = float(adv.detach())
        return loss, {"loss": float(loss.detach()), **logs}

    def training_step(self, batch: dict[str, Tensor], ctx: StepContext) -> dict[str, float]:
        """Basic model: one Adam step on eq. 12. GAN (§4): a steganalyser SGD step on eq. 4 with randomly
        flipped labels, then a generator Adam step against the updated steganalyser."""
        w = self.config.cover_warmup
        cover_weight = min(1.0, ctx.stage_progress / w) if w > 0 else 1.0
        if self.critic is None:
            loss, logs = self.training_losses(batch, cover_weight)
            ctx.optimize("main", loss)
            return logs
        cover, seen, t = self._generator_pass(batch, cover_weight)
        n = cover.shape[0]
        logits = self._critic_logits(cover, seen.detach())
        labels = torch.cat([torch.zeros(n), torch.ones(n)]).long().to(logits.device)
        flip = torch.rand(2 * n, device=logits.device) < self.config.label_flip_prob
        labels = torch.where(flip, 1 - labels, labels)
        d_loss = F.cross_entropy(logits, labels)
        ctx.optimize("critic", d_loss)
        accuracy = float((logits.detach().argmax(1) == torch.cat([torch.zeros(n), torch.ones(n)]).to(
            logits.device)).float().mean())
        adv = self._adversarial(cover, seen)
        loss = t["hide"] + self.config.adv_weight * adv
        ctx.optimize("main", loss)
        return {"loss": float(loss.detach()), **{k: float(v.detach()) for k, v in t.items()},
                "l_adv": float(adv.detach()), "l_critic": float(d_loss.detach()), "critic_acc": accuracy}

    def optimizer_groups(self, stage: str) -> dict[str, Iterator[nn.Parameter] | dict]:
        """Generator (encoder + decoder): Adam at the run's lr; steganalyser: SGD at ``critic_lr`` (§4)."""
        generator = [*self.encoder.parameters(), *self.decoder.parameters()]
        if self.critic is None:
            return {"main": {"params": generator, "optimizer": "adam", "weight_decay": self.config.weight_decay}}
        # "main" names no lr so that TrainConfig.lr (--lr) applies to it; the critic keeps its own.
        wd = self.config.weight_decay
        return {"main": {"params": generator, "optimizer": "adam", "weight_decay": wd},
                "critic": {"params": list(self.critic.parameters()), "optimizer": "sgd", "lr": self.config.critic_lr,
                           "weight_decay": wd}}


def register(add) -> None:  # noqa: ANN001 - deepsteg.zoo.register_model
    """Registry entries for this paper (called by :mod:`deepsteg.zoo.registry`)."""
    paper = "Zhang, Dong & Liu, Invisible Steganography via Generative Adversarial Networks (ISGAN), 2018/2019"
    add("isgan-basic", Isgan, IsganConfig(gan=False),
        "grey image in the luma (Y) of a colour image; inception encoder, no steganalyser (the basic model)", paper,
        tags=("image",))
    add("isgan", Isgan, IsganConfig(gan=True),
        "grey image in the luma (Y) of a colour image, trained against an SPP steganalyser (GAN)", paper,
        tags=("image",))
