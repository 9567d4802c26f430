"""Hide and reveal bytes with any :class:`~deepsteg.models.message.MessageModel`."""

from __future__ import annotations

import torch
from torch import Tensor

from deepsteg.errors import ModelError
from deepsteg.models.message import MessageModel
from deepsteg.payload.container import max_payload_bytes, pack, unpack
from deepsteg.payload.crypto import DEFAULT_KDF, KdfParams


def _one_image(x: Tensor, what: str) -> tuple[Tensor, bool]:
    squeeze = torch.is_tensor(x) and x.dim() == 3
    x = x.unsqueeze(0) if squeeze else x
    if not torch.is_tensor(x) or x.dim() != 4 or x.shape[0] != 1:
        raise ModelError(f"{what} must be one image (3×H×W or 1×3×H×W); a container goes in one image")
    return x, squeeze


def capacity_bytes(model: MessageModel, h: int, w: int, passphrase: str | bool | None = None,
                   nsym: int | None = None) -> int:
    """The most payload bytes (incompressible data) an H×W cover holds at the model's default error correction."""
    return max_payload_bytes(model.capacity_bits(h, w), bool(passphrase), model.error_rate, nsym)


@torch.no_grad()
def hide_bytes(model: MessageModel, cover: Tensor, data: bytes, passphrase: str | None = None, *,
               compress: bool = True, nsym: int | None = None, kdf: KdfParams = DEFAULT_KDF) -> Tensor:
    """Hide ``data`` in ``cover`` (3×H×W or 1×3×H×W float); returns the float stego, same shape.

    Save it with :func:`deepsteg.io.write_png`. Raises :class:`~deepsteg.payload.PayloadTooLarge` before any
    work if the data does not fit.
    """
    x, squeeze = _one_image(cover, "cover")
    n_bits = model.capacity_bits(*x.shape[-2:])
    bits = pack(data, n_bits, passphrase, model.error_rate, nsym=nsym, compress=compress, kdf=kdf)
    stego = model.embed(x, torch.from_numpy(bits).to(x.device, torch.float32).unsqueeze(0))
    return stego[0] if squeeze else stego


@torch.no_grad()
def reveal_bytes(model: MessageModel, stego: Tensor, passphrase: str | None = None, *,
                 kdf: KdfParams = DEFAULT_KDF) -> bytes:
    """The exact bytes hidden by :func:`hide_bytes`, or one of the three extraction errors."""
    x, _ = _one_image(stego, "stego")
    return unpack(model.extract(x)[0], passphrase, kdf=kdf)
