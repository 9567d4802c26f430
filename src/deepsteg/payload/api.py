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
               compress: bool = True, nsym: int | None = None, kdf: KdfParams = DEFAULT_KDF,
               verify: bool = True) -> Tensor:
    """Hide ``data`` in ``cover`` (3×H×W or 1×3×H×W float); returns the float stego, same shape.

    Save it with :func:`deepsteg.io.write_png`. Raises :class:`~deepsteg.payload.PayloadTooLarge` before any
    work if the data does not fit.

    ``verify`` (learned models): the sender has everything the receiver will have, so the stego is rounded to
    8 bits and read back before it is returned; if this cover is harder than the model's usual error rate and the
    bytes would not come back, the parity is doubled (up to its maximum) and the data hidden again. A cover too
    hard even then is refused with :class:`~deepsteg.payload.PayloadError` instead of producing a stego that
    cannot be read.
    """
    from deepsteg.io import quantize
    from deepsteg.payload.ecc import MAX_NSYM, nsym_for
    from deepsteg.payload.errors import PayloadError, PayloadTooLarge

    x, squeeze = _one_image(cover, "cover")
    n_bits = model.capacity_bits(*x.shape[-2:])
    check = verify and model.error_rate > 0
    tries = [nsym if nsym is not None else nsym_for(model.error_rate)]
    while check and nsym is None and tries[-1] < MAX_NSYM:
        tries.append(min(MAX_NSYM, 2 * tries[-1]))
    stego = None
    for i, n in enumerate(tries):
        try:
            bits = pack(data, n_bits, passphrase, model.error_rate, nsym=n, compress=compress, kdf=kdf)
        except PayloadTooLarge:
            if i == 0:
                raise
            break  # stronger parity no longer fits: the cover is too hard for this much data
        stego = model.embed(x, torch.from_numpy(bits).to(x.device, torch.float32).unsqueeze(0))
        if not check:
            break
        try:
            if unpack(model.extract(quantize(stego))[0], passphrase, kdf=kdf) == data:
                break
        except PayloadError:
            pass
        stego = None
    if stego is None:
        raise PayloadError(f"this cover is too hard for {model.model_name or 'the model'}: the hidden bytes would "
                           "not survive 8-bit saving even with the strongest error correction that fits; use a "
                           "larger or more textured cover, less data, or the exact lsb-bits model")
    return stego[0] if squeeze else stego


@torch.no_grad()
def reveal_bytes(model: MessageModel, stego: Tensor, passphrase: str | None = None, *,
                 kdf: KdfParams = DEFAULT_KDF) -> bytes:
    """The exact bytes hidden by :func:`hide_bytes`, or one of the three extraction errors."""
    x, _ = _one_image(stego, "stego")
    return unpack(model.extract(x)[0], passphrase, kdf=kdf)
