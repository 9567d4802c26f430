"""Exact payloads: hide a file in an image with a message model and get back exactly the same bytes.

``hide_bytes(model, cover, data, passphrase=None)`` / ``reveal_bytes(model, stego, passphrase=None)`` over any
:class:`~deepsteg.models.message.MessageModel`; ``pack`` / ``unpack`` are the same container on a bit array.
Extraction returns the original bytes or raises exactly one of :class:`NoMessageFound`,
:class:`WrongPassphraseOrTampered`, :class:`TooDamaged` (never wrong bytes: every path is authenticated).

Byte layout (format version 1; integers big-endian)::

    head   (12 B)  magic "DSTG" | version u8 = 1 | flags u8 (bit 0: encrypted) | nsym u8 | reserved u8 = 0
                   | body_len u32
    inner          method u8 (0 raw, 1 zlib, 2 lzma; the smallest is used) | original_len u32 | payload
    body, plain    inner | SHA-256("deepsteg.payload.v1/check" | head | inner)[:16]
    body, secret   salt (16 B) | nonce (12 B) | AES-256-GCM(inner; AAD = head | salt | nonce) | tag (16 B)
    stream         RS(head, 36 parity)  (48 B, fixed: corrects 18 byte errors)
                   | body split into k balanced RS blocks of ≤ 255 B with nsym parity each, byte-interleaved
                     (byte 0 of every block, then byte 1, …) | random filler up to capacity_bits // 8 bytes
    bits           stream bits (MSB first) at image bit positions perm[0 … 8·len − 1]; the last
                   capacity_bits mod 8 positions hold random bits. perm is keyed (see :mod:`.crypto`).

Overheads: 48 B head block + nsym per block + 21 B (plain) or 49 B (passphrase).
Keys and permutation: :mod:`deepsteg.payload.crypto` (scrypt N=2^16, r=8, p=1 → permutation key + HKDF → AES
key with a random per-message salt). Parity sizing: :func:`deepsteg.payload.ecc.nsym_for`.

Which error when: no valid head block under this key (nothing hidden, a wrong or missing passphrase — the
keyed permutation hides the message from any other key — or a head damaged beyond 18 byte errors) →
``NoMessageFound``; head found but some body block uncorrectable → ``TooDamaged`` (with counts); everything
corrected but authentication, lengths or decompression fail → ``WrongPassphraseOrTampered``.
"""

from deepsteg.payload.api import capacity_bytes, hide_bytes, reveal_bytes
from deepsteg.payload.container import max_payload_bytes, pack, unpack
from deepsteg.payload.crypto import DEFAULT_KDF, KdfParams
from deepsteg.payload.ecc import nsym_for
from deepsteg.payload.errors import (
    NoMessageFound,
    PayloadError,
    PayloadTooLarge,
    TooDamaged,
    WrongPassphraseOrTampered,
)

__all__ = [
    "DEFAULT_KDF", "KdfParams", "NoMessageFound", "PayloadError", "PayloadTooLarge", "TooDamaged",
    "WrongPassphraseOrTampered", "capacity_bytes", "hide_bytes", "max_payload_bytes", "nsym_for", "pack",
    "reveal_bytes", "unpack",
]
