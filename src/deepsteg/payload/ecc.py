"""Reed–Solomon blocks over GF(256) (``reedsolo``), byte interleaving, and the rule that sizes the parity.

Sizing rule (:func:`nsym_for`): bits are scattered over the image by a keyed permutation, so bit errors reach the
decoder as independent errors. With the model's measured raw bit error rate ``p`` doubled as a safety margin
(error rates vary from image to image), a byte is wrong with probability ``q = 1 − (1 − 2p)^8``; each block of
255 bytes gets ``nsym = 2t`` parity bytes, with ``t`` the smallest number of byte errors such that
``P[Binomial(255, q) > t] ≤ 1e-9``, and never fewer than :data:`MIN_NSYM` (so an exact model still repairs a
few tampered pixels). Error rates that would need more than :data:`MAX_NSYM` parity bytes are refused.
"""

from __future__ import annotations

import math
from functools import lru_cache

from reedsolo import ReedSolomonError, RSCodec

from deepsteg.payload.errors import PayloadError

#: Bytes per Reed–Solomon block (GF(256) limit).
BLOCK = 255
#: Parity bytes per block for an exact model (t = 8 byte errors per block).
MIN_NSYM = 16
#: Parity bytes per block beyond which a model is too unreliable to carry exact data.
MAX_NSYM = 192
#: Target probability that one block fails at the model's (doubled) error rate.
BLOCK_FAILURE = 1e-9
SAFETY = 2.0


def nsym_for(error_rate: float) -> int:
    """Parity bytes per block for a model with raw bit error rate ``error_rate`` (see the module docstring)."""
    if not 0.0 <= error_rate < 0.5 or math.isnan(error_rate):
        raise PayloadError(f"error_rate must be in [0, 0.5), got {error_rate}")
    p = min(0.5, SAFETY * error_rate)
    q = 1.0 - (1.0 - p) ** 8
    t, tail = 0, 1.0
    if q > 0.0:
        pmf = [math.comb(BLOCK, k) * q**k * (1.0 - q) ** (BLOCK - k) for k in range(BLOCK + 1)]
        tail = 1.0 - pmf[0]
        while tail > BLOCK_FAILURE and t < BLOCK:
            t += 1
            tail -= pmf[t]
    nsym = max(MIN_NSYM, 2 * t)
    if nsym > MAX_NSYM:
        raise PayloadError(f"a bit error rate of {error_rate:g} needs {nsym} parity bytes per {BLOCK}-byte block "
                         f"(more than {MAX_NSYM}); this model cannot carry exact data")
    return nsym


@lru_cache(maxsize=32)
def _codec(nsym: int) -> RSCodec:
    return RSCodec(nsym, nsize=BLOCK)


def encode_block(data: bytes, nsym: int) -> bytes:
    """One systematic block: ``data`` (at most 255 − nsym bytes) followed by ``nsym`` parity bytes."""
    assert 0 < len(data) <= BLOCK - nsym
    return bytes(_codec(nsym).encode(data))


def decode_block(block: bytes, nsym: int) -> tuple[bytes, int] | None:
    """(data, byte errors corrected), or None when the block has more errors than it can correct."""
    try:
        data, full, errata = _codec(nsym).decode(block)
    except (ReedSolomonError, ValueError, IndexError, ZeroDivisionError):
        return None  # reedsolo signals some uncorrectable patterns with arithmetic errors
    if len(full) != len(block) or len(errata) > nsym // 2:
        return None
    return bytes(data), len(errata)


def block_sizes(data_len: int, nsym: int) -> list[int]:
    """Data bytes per block for ``data_len`` bytes: as few blocks as possible, sizes differing by at most one."""
    if not 0 < nsym < BLOCK:
        raise ValueError(f"nsym must be in 1…{BLOCK - 1}")
    k = BLOCK - nsym
    n = max(1, -(-data_len // k))
    return [data_len // n + (1 if i < data_len % n else 0) for i in range(n)]


def encoded_len(data_len: int, nsym: int) -> int:
    return data_len + len(block_sizes(data_len, nsym)) * nsym


def max_data_len(stream_len: int, nsym: int) -> int:
    """The most data bytes whose blocks fit in ``stream_len`` bytes."""
    full, rem = divmod(max(0, stream_len), BLOCK)
    return full * (BLOCK - nsym) + max(0, rem - nsym)


def interleave(blocks: list[bytes]) -> bytes:
    """Byte ``j`` of every block, then byte ``j + 1`` …, so a burst of stream errors spreads over the blocks."""
    longest = max(len(b) for b in blocks)
    return bytes(b[j] for j in range(longest) for b in blocks if j < len(b))


def deinterleave(stream: bytes, lengths: list[int]) -> list[bytes]:
    """Inverse of :func:`interleave` for blocks of the given lengths (``stream`` holds exactly their sum)."""
    out = [bytearray() for _ in lengths]
    pos = 0
    for j in range(max(lengths)):
        for i, n in enumerate(lengths):
            if j < n:
                out[i].append(stream[pos])
                pos += 1
    return [bytes(b) for b in out]
