"""Convolution + batch-norm + activation blocks shared by the U-Net-style hiders."""

from __future__ import annotations

from torch import Tensor, nn


def _act(name: str) -> nn.Module:
    if name == "relu":
        return nn.ReLU(inplace=True)
    if name == "leaky_relu":
        return nn.LeakyReLU(0.2, inplace=True)
    if name == "elu":
        return nn.ELU(inplace=True)
    if name == "sigmoid":
        return nn.Sigmoid()
    if name == "none":
        return nn.Identity()
    raise ValueError(f"unknown activation {name!r}")


class ConvBNAct(nn.Sequential):
    """Conv2d → BatchNorm2d → activation (the paper's "Conv-BN-ReLU")."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel: int = 3,
        stride: int = 1,
        padding: int | None = None,
        act: str = "relu",
        bn: bool = True,
    ) -> None:
        padding = kernel // 2 if padding is None else padding
        super().__init__(
            nn.Conv2d(in_ch, out_ch, kernel, stride, padding, bias=not bn),
            nn.BatchNorm2d(out_ch) if bn else nn.Identity(),
            _act(act),
        )


class DeconvBNAct(nn.Sequential):
    """ConvTranspose2d → BatchNorm2d → activation (the paper's "DeConv-BN-ReLU")."""

    def __init__(
        self, in_ch: int, out_ch: int, kernel: int = 4, stride: int = 2, padding: int = 1, act: str = "relu"
    ) -> None:
        super().__init__(
            nn.ConvTranspose2d(in_ch, out_ch, kernel, stride, padding, bias=False),
            nn.BatchNorm2d(out_ch),
            _act(act),
        )

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102 - same as Sequential
        return super().forward(x)
