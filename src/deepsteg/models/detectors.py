"""Deep steganalysers, trained by the foundation's trainer on cover/stego pairs made on the fly by any registered
model: ``deepsteg train xunet --set target=stegopnet --data TRAIN --val TEST …``.

* ``xunet`` — Xu, Wu & Shi 2016 (:class:`~deepsteg.layers.xunet.XuNet`, colour front end).
* ``isgan-steganalyser`` — ISGAN's Table 3 network (XuNet-like front, spatial pyramid pooling, two FC layers).
* ``srnet`` — Boroumand, Chen & Fridrich, "Deep Residual Network for Steganalysis of Digital Images" (IEEE TIFS
  2019): two type-1 layers, five type-2 residual layers, four type-3 residual layers with 3×3/2 average-pool
  shortcuts, one type-4 layer with global average pooling, FC. ``width`` scales its channels (the paper's: 16 →
  64, 16, 16, 64, 128, 256, 512); the default halves them for CPU training.

Each training step draws a batch of covers (and secrets, or message bits) from the trainer's data, hides with the
*target* model (its shipped weights, or ``target_weights``), rounds to 8 bits as a PNG would, and trains the
detector on cover (label 0) and stego (label 1) together — pairs in one batch, as SRNet and XuNet are trained. The
target model is not part of the detector's weights.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from deepsteg.errors import ModelError
from deepsteg.io import quantize
from deepsteg.layers.xunet import XuNet
from deepsteg.models.base import StepContext
from deepsteg.models.message import MessageModel


@dataclass
class DetectorConfig:
    arch: str = "xunet"  # xunet | isgan | srnet
    target: str = "lsb3"  # registered model whose stegos the detector learns to find
    target_weights: str | None = None  # its weights folder (default: the shipped ones)
    width: float = 0.5  # SRNet channel scale (1.0 = the paper's)
    lr: float = 1e-3


def _bn_relu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class _T2(nn.Module):  # SRNet type 2: residual, no pooling
    def __init__(self, c: int) -> None:
        super().__init__()
        self.body = nn.Sequential(_bn_relu(c, c), nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class _T3(nn.Module):  # SRNet type 3: residual with 3×3/2 average pooling and a 1×1/2 shortcut
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.body = nn.Sequential(_bn_relu(cin, cout), nn.Conv2d(cout, cout, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(cout), nn.AvgPool2d(3, 2, 1))
        self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=2, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x) + self.short(x)


class SRNet(nn.Module):
    """SRNet for 3-channel input; N×2 logits."""

    def __init__(self, width: float = 1.0) -> None:
        super().__init__()
        w = [max(4, round(c * width)) for c in (64, 16, 64, 128, 256, 512)]
        layers: list[nn.Module] = [_bn_relu(3, w[0]), _bn_relu(w[0], w[1])]
        layers += [_T2(w[1]) for _ in range(5)]
        chans = [w[1], w[1], w[2], w[3], w[4]]
        layers += [_T3(a, b) for a, b in zip(chans[:-1], chans[1:])]
        layers += [_bn_relu(w[4], w[5]), nn.Conv2d(w[5], w[5], 3, padding=1, bias=False), nn.BatchNorm2d(w[5])]
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(w[5], 2)

    def forward(self, x: Tensor) -> Tensor:
        with torch.autocast(x.device.type, enabled=False):  # fp32: ±1-level changes must survive
            x = self.features[0](x.float() * 255.0 - 127.5)
        x = self.features[1:](x)
        return self.fc(x.mean((-2, -1)))


class Detector(nn.Module):
    """A steganalyser as a trainable model: ``forward(images) → N×2 logits``; ``score(images)`` = P(stego)."""

    size_multiple = 1
    min_size = 16
    model_name = ""

    def __init__(self, config: DetectorConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or DetectorConfig()
        if cfg.arch == "xunet":
            self.net: nn.Module = XuNet(3, outputs=2)
        elif cfg.arch == "srnet":
            self.net = SRNet(cfg.width)
        elif cfg.arch == "isgan":
            from deepsteg.models.isgan import IsganSteganalyser

            self.net = IsganSteganalyser(True)
        else:
            raise ModelError(f"unknown detector arch {cfg.arch!r} (xunet, srnet, isgan)")
        self._target: Any = None  # built lazily: not a submodule, so never in this model's weights

    def config_dict(self) -> dict:
        from dataclasses import asdict

        return asdict(self.config)

    def target(self) -> Any:
        """The hiding model whose stegos this detector learns to find."""
        if self._target is None:
            from deepsteg.zoo import create_model

            cfg = self.config
            t = (create_model(cfg.target, weights=cfg.target_weights) if cfg.target_weights
                 else create_model(cfg.target, pretrained=True))
            object.__setattr__(self, "_target", t.eval())
        return self._target

    @property
    def num_secrets(self) -> int:  # the trainer's data loader draws as many secrets as the target hides
        return getattr(self.target(), "num_secrets", 0)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    @torch.no_grad()
    def score(self, images: Tensor) -> Tensor:
        """P(stego) per image (N×3×H×W in [0, 1], ideally 8-bit values)."""
        return torch.softmax(self.net(images).float(), 1)[:, 1]

    @torch.no_grad()
    def make_stego(self, cover: Tensor, secrets: Tensor, seed: int | None = None) -> Tensor:
        """The target's 8-bit stego of each cover (random message bits for message models)."""
        t = self.target().to(cover.device)
        if isinstance(t, MessageModel):  # not hasattr(t, "embed"): StegNet's embedding network is called `embed`
            g = None if seed is None else torch.Generator().manual_seed(seed)
            n, _, h, w = cover.shape
            bits = torch.randint(0, 2, (n, t.capacity_bits(h, w)), generator=g).float().to(cover.device)
            return quantize(t.embed(cover.float(), bits))
        k = secrets.shape[1]
        sec = t.as_secret(secrets.float())
        from deepsteg.evaluate import EVAL_KEY

        key = EVAL_KEY if t.keyed else None
        return quantize(t.hide(cover.float(), *[sec[:, j] for j in range(k)], key=key))

    # --- training ----------------------------------------------------------------------------------------
    def stages(self) -> list[tuple[str, float]]:
        return [("main", 1.0)]

    def optimizer_groups(self, stage: str) -> dict[str, Iterator[nn.Parameter] | dict]:
        return {"main": {"params": list(self.net.parameters()), "optimizer": "adamax"}}

    def training_step(self, batch: dict[str, Tensor], ctx: StepContext) -> dict[str, float]:
        cover = quantize(batch["cover"].float())
        stego = self.make_stego(cover, batch["secrets"])
        x = torch.cat([cover, stego])
        y = torch.cat([torch.zeros(len(cover)), torch.ones(len(stego))]).long().to(x.device)
        logits = self.net(x).float()
        loss = F.cross_entropy(logits, y)
        ctx.optimize("main", loss)
        return {"loss": float(loss.detach()), "acc": float((logits.argmax(1) == y).float().mean())}

    @torch.no_grad()
    def evaluate_pairs(self, cover: Tensor, secrets: Tensor, index: int) -> dict[str, Tensor]:
        """Validation: per image, whether the cover and its stego are both classified right, and the scores."""
        cover = quantize(cover.float())
        stego = self.make_stego(cover, secrets, seed=index)
        sc, ss = self.score(cover), self.score(stego)
        return {"detector_accuracy": ((sc < 0.5).float() + (ss >= 0.5).float()) / 2,
                "cover_score": sc, "stego_score": ss}


def register(add) -> None:  # noqa: ANN001 - deepsteg.zoo.register_model
    """Steganalysers (trained per target model, so none ship)."""
    add("xunet", Detector, DetectorConfig(arch="xunet"),
        "steganalyser: XuNet (Xu, Wu & Shi 2016), trained against --set target=MODEL",
        "Xu, Wu & Shi, Structural Design of CNNs for Steganalysis, IEEE SPL 2016", pretrained=False,
        tags=("detector",))
    add("srnet", Detector, DetectorConfig(arch="srnet"),
        "steganalyser: SRNet (Boroumand, Chen & Fridrich 2019), half width, trained against --set target=MODEL",
        "Boroumand, Chen & Fridrich, Deep Residual Network for Steganalysis of Digital Images, TIFS 2019",
        pretrained=False, tags=("detector",))
    add("isgan-steganalyser", Detector, DetectorConfig(arch="isgan"),
        "steganalyser: ISGAN's Table 3 network (XuNet front + SPP), trained against --set target=MODEL",
        "Zhang, Dong & Liu, ISGAN, 2018/2019", pretrained=False, tags=("detector",))
