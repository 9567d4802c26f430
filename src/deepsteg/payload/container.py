"""Pack bytes into a fixed number of bits, and unpack them exactly or fail with one defined error.

Layers, outermost last (the package docstring gives the byte layout):
frame (length, compression) → seal (AES-GCM or integrity check) → Reed–Solomon blocks, interleaved → keyed
permutation of the bits over the whole image.
"""

from __future__ import annotations

import hmac
import lzma
import os
import struct
import zlib
from dataclasses import dataclass

import numpy as np

from deepsteg.payload import crypto, ecc
from deepsteg.payload.crypto import DEFAULT_KDF, KdfParams, Keys
from deepsteg.payload.errors import NoMessageFound, PayloadError, PayloadTooLarge, TooDamaged, WrongPassphraseOrTampered

MAGIC = b"DSTG"
VERSION = 1
FLAG_ENCRYPTED = 0x01
#: magic, version, flags, parity bytes per body block, reserved (0), body length.
HEAD = struct.Struct(">4sBBBBI")
HEAD_NSYM = 36  # the head block corrects 18 of its 48 bytes, whatever the body's parity
HEAD_BLOCK = HEAD.size + HEAD_NSYM
#: compression method (0 none, 1 zlib, 2 lzma), original length.
INNER = struct.Struct(">BI")
RAW, ZLIB, LZMA = 0, 1, 2
PLAIN_OVERHEAD = INNER.size + 16  # + check tag
SEALED_OVERHEAD = INNER.size + crypto.SALT_LEN + crypto.NONCE_LEN + crypto.TAG_LEN
#: Largest original size unpack will decompress to (a forged container could claim more).
MAX_SIZE = 1 << 30


def _overhead(encrypted: bool) -> int:
    return SEALED_OVERHEAD if encrypted else PLAIN_OVERHEAD


def max_payload_bytes(capacity_bits: int, encrypted: bool, error_rate: float = 0.0, nsym: int | None = None) -> int:
    """The most payload bytes (incompressible) that ``capacity_bits`` carry at this error correction (≥ 0)."""
    nsym = ecc.nsym_for(error_rate) if nsym is None else _check_nsym(nsym)
    body = ecc.max_data_len(capacity_bits // 8 - HEAD_BLOCK, nsym)
    return max(0, min(body - _overhead(encrypted), MAX_SIZE))


def _check_nsym(nsym: int) -> int:
    if not 2 <= nsym <= ecc.MAX_NSYM:
        raise PayloadError(f"nsym must be between 2 and {ecc.MAX_NSYM}, got {nsym}")
    return nsym


def _compress(data: bytes) -> tuple[int, bytes]:
    best = (RAW, data)
    for method, fn in ((ZLIB, lambda d: zlib.compress(d, 9)), (LZMA, lambda d: lzma.compress(d, preset=6))):
        packed = fn(data)
        if len(packed) < len(best[1]):
            best = (method, packed)
    return best


def _decompress(method: int, payload: bytes, size: int) -> bytes | None:
    if method == RAW:
        return payload if len(payload) == size else None
    d = zlib.decompressobj() if method == ZLIB else lzma.LZMADecompressor()
    try:
        out = d.decompress(payload, size + 1)  # bounded: a forged header cannot make us allocate more
    except (zlib.error, lzma.LZMAError, ValueError, EOFError):
        return None
    if len(out) != size or not d.eof or d.unused_data:
        return None
    if method == ZLIB and d.unconsumed_tail:
        return None
    return out


def pack(data: bytes, capacity_bits: int, passphrase: str | None = None, error_rate: float = 0.0, *,
         nsym: int | None = None, compress: bool = True, kdf: KdfParams = DEFAULT_KDF,
         keys: Keys | None = None) -> np.ndarray:
    """Encode ``data`` as exactly ``capacity_bits`` bits (uint8 0/1) for a message model.

    ``error_rate`` is the model's measured raw bit error rate, which sizes the Reed–Solomon parity (``nsym``
    overrides it). Raises :class:`PayloadTooLarge` before any key derivation if the data does not fit.
    ``keys`` (from :func:`crypto.derive_keys`) skips the KDF when the caller already ran it.
    """
    data = bytes(data)
    nsym = ecc.nsym_for(error_rate) if nsym is None else _check_nsym(nsym)
    encrypted = passphrase is not None if keys is None else keys.master is not None
    if len(data) > MAX_SIZE:
        raise PayloadTooLarge(f"{len(data)} bytes is over the {MAX_SIZE}-byte limit", len(data), MAX_SIZE)
    method, payload = _compress(data) if compress else (RAW, data)
    available = max_payload_bytes(capacity_bits, encrypted, nsym=nsym)
    room = ecc.max_data_len(capacity_bits // 8 - HEAD_BLOCK, nsym) - _overhead(encrypted)
    if room < 0:  # not even an empty message fits ("the data is 0 bytes, but … holds at most 0 bytes" said nothing
        raise PayloadTooLarge(f"this cover is too small for any message ({capacity_bits} bits of room; the "
                              f"container's header, error correction{' and encryption' if encrypted else ''} "
                              "alone need more); use a larger cover", len(payload), 0)
    if len(payload) > room:
        what = f"{len(payload)} bytes after compression" if method != RAW else f"{len(payload)} bytes"
        raise PayloadTooLarge(f"the data is {what}, but this cover holds at most {available} bytes "
                              f"({'with' if encrypted else 'without'} a passphrase, {nsym} parity bytes per "
                              f"{ecc.BLOCK}-byte block); use a larger cover or less data", len(payload), available)
    keys = crypto.derive_keys(passphrase, kdf) if keys is None else keys
    inner = INNER.pack(method, len(data)) + payload
    body_len = len(payload) + _overhead(encrypted)
    head = HEAD.pack(MAGIC, VERSION, FLAG_ENCRYPTED if encrypted else 0, nsym, 0, body_len)
    if keys.master is not None:
        body = crypto.seal(keys.master, inner, aad=head)
    else:
        body = inner + crypto.check_tag(head + inner)
    assert len(body) == body_len
    blocks, pos = [], 0
    for size in ecc.block_sizes(body_len, nsym):
        blocks.append(ecc.encode_block(body[pos:pos + size], nsym))
        pos += size
    stream = ecc.encode_block(head, HEAD_NSYM) + ecc.interleave(blocks)
    n_bytes = capacity_bits // 8
    stream += os.urandom(n_bytes - len(stream))  # the whole capacity looks alike, used or not
    bits = np.empty(capacity_bits, dtype=np.uint8)
    perm = crypto.permutation(keys.permutation, capacity_bits)
    bits[perm[:8 * n_bytes]] = np.unpackbits(np.frombuffer(stream, dtype=np.uint8))
    bits[perm[8 * n_bytes:]] = np.unpackbits(np.frombuffer(os.urandom(1), dtype=np.uint8))[:capacity_bits % 8]
    return bits


@dataclass(frozen=True)
class Head:
    encrypted: bool
    nsym: int
    body_len: int
    raw: bytes


def _hard_bits(bits_or_probs) -> np.ndarray:  # noqa: ANN001 - array-like or tensor
    if hasattr(bits_or_probs, "detach"):
        bits_or_probs = bits_or_probs.detach().float().cpu().numpy()
    arr = np.asarray(bits_or_probs).reshape(-1)
    return (arr > 0.5).astype(np.uint8)  # NaN reads as 0


def read_head(stream: bytes) -> Head:
    """Decode and check the head block; :class:`NoMessageFound` if there is none."""
    n_bytes = len(stream)
    if n_bytes < HEAD_BLOCK:
        raise NoMessageFound("no message found: the image is too small to hold one")
    decoded = ecc.decode_block(stream[:HEAD_BLOCK], HEAD_NSYM)
    if decoded is None or decoded[0][:4] != MAGIC:
        raise NoMessageFound("no message found (nothing hidden, a wrong or missing passphrase, "
                             "or an image damaged beyond repair)")
    raw = decoded[0]
    _, version, flags, nsym, reserved, body_len = HEAD.unpack(raw)
    if version != VERSION:
        raise NoMessageFound(f"found a container of format version {version}; this deepsteg reads version {VERSION}")
    encrypted = bool(flags & FLAG_ENCRYPTED)
    if flags & ~FLAG_ENCRYPTED or reserved or not 2 <= nsym <= ecc.MAX_NSYM:
        raise WrongPassphraseOrTampered("the message header is inconsistent (tampered image)")
    if not _overhead(encrypted) <= body_len <= ecc.max_data_len(n_bytes - HEAD_BLOCK, nsym):
        raise WrongPassphraseOrTampered("the message header gives an impossible length (tampered image)")
    return Head(encrypted, nsym, body_len, raw)


def read_body(stream: bytes, head: Head) -> tuple[bytes, int]:
    """Error-correct the body blocks; (body, byte errors corrected) or :class:`TooDamaged`."""
    sizes = ecc.block_sizes(head.body_len, head.nsym)
    lengths = [s + head.nsym for s in sizes]
    blocks = ecc.deinterleave(stream[HEAD_BLOCK:HEAD_BLOCK + sum(lengths)], lengths)
    t = head.nsym // 2
    parts, corrected, failed = [], 0, 0
    for block in blocks:
        decoded = ecc.decode_block(block, head.nsym)
        if decoded is None:
            failed += 1
            continue
        parts.append(decoded[0])
        corrected += decoded[1]
    if failed:
        raise TooDamaged(corrected + failed * (t + 1), t * len(blocks), failed, len(blocks), t)
    return b"".join(parts), corrected


def open_body(body: bytes, head: Head, keys: Keys, max_size: int = MAX_SIZE) -> bytes:
    """Authenticate, decrypt and decompress; the original bytes or :class:`WrongPassphraseOrTampered`."""
    if len(body) != head.body_len:
        raise WrongPassphraseOrTampered("the message body has the wrong length (tampered image)")
    if head.encrypted != (keys.master is not None):
        # The permutation hides a message from the wrong key, so this needs a forged or colliding header.
        raise WrongPassphraseOrTampered("the message header does not match the passphrase (tampered image)")
    if keys.master is not None:
        inner = crypto.open_sealed(keys.master, body, aad=head.raw)
        if inner is None:
            raise WrongPassphraseOrTampered("wrong passphrase, or the image was tampered with")
    else:
        inner, tag = body[:-16], body[-16:]
        if not hmac.compare_digest(tag, crypto.check_tag(head.raw + inner)):
            raise WrongPassphraseOrTampered("the message fails its integrity check (tampered image)")
    if len(inner) < INNER.size:
        raise WrongPassphraseOrTampered("the message is truncated (tampered image)")
    method, size = INNER.unpack(inner[:INNER.size])
    if method not in (RAW, ZLIB, LZMA) or size > max_size:
        raise WrongPassphraseOrTampered("the message has an unknown compression or an impossible size (tampered image)")
    data = _decompress(method, inner[INNER.size:], size)
    if data is None:
        raise WrongPassphraseOrTampered("the message does not decompress to its stated size (tampered image)")
    return data


def unpack_stream(stream: bytes, keys: Keys) -> bytes:
    """Unpack from the de-permuted byte stream (exposed for fuzzing below the permutation)."""
    head = read_head(stream)
    body, _ = read_body(stream, head)
    return open_body(body, head, keys)


def unpack(bits_or_probs, passphrase: str | None = None, *, kdf: KdfParams = DEFAULT_KDF,  # noqa: ANN001
           keys: Keys | None = None) -> bytes:
    """The exact bytes hidden by :func:`pack`, from the model's bits or bit probabilities (thresholded at 0.5).

    Raises exactly one of :class:`NoMessageFound`, :class:`WrongPassphraseOrTampered`, :class:`TooDamaged`.
    A wrong passphrase gives :class:`NoMessageFound`: the permutation it keys finds no header.
    """
    bits = _hard_bits(bits_or_probs)
    n_bytes = bits.size // 8
    if n_bytes < HEAD_BLOCK:
        raise NoMessageFound("no message found: the image is too small to hold one")
    keys = crypto.derive_keys(passphrase, kdf) if keys is None else keys
    perm = crypto.permutation(keys.permutation, bits.size)
    stream = np.packbits(bits[perm[:8 * n_bytes]]).tobytes()
    return unpack_stream(stream, keys)
