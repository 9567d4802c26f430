"""Keys, authenticated encryption and the keyed bit permutation of the payload container.

* With a passphrase: ``master = scrypt(NFC(passphrase), salt="deepsteg.payload.v1/scrypt", N=2^16, r=8, p=1)``
  (64 MiB, ≈0.2 s on one core), 64 bytes. Its first half seeds the bit permutation; the AES-256-GCM key is
  ``HKDF-SHA256(master[32:], salt=<random 16-byte salt stored in the container>)``.
  The scrypt salt is fixed, not random: the permutation must be known before anything can be read from the
  image, and seeding it from a fast hash of the passphrase would give an attacker a cheap oracle (try a
  guess, look for the header) that bypasses the memory-hard KDF. Every guess therefore costs one scrypt; the
  random salt still makes each message's AES key unique. For the same reason the scrypt parameters are not read
  from the image: they are the format's defaults unless both sides pass the same :class:`KdfParams`.
* Without a passphrase the permutation key is a public constant and an integrity check replaces encryption.
* The permutation is the stable argsort of an AES-256-CTR keystream read as 32-bit integers: fully specified
  (unlike NumPy's generators, whose streams may change between releases), so a stego decodes with any version.
"""

from __future__ import annotations

import hashlib
import os
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from deepsteg.payload.errors import PayloadError

SCRYPT_SALT = b"deepsteg.payload.v1/scrypt"
PUBLIC_PERMUTATION_KEY = hashlib.sha256(b"deepsteg.payload.v1/public-permutation").digest()
SALT_LEN, NONCE_LEN, TAG_LEN = 16, 12, 16


@dataclass(frozen=True)
class KdfParams:
    """scrypt cost: N = 2^log2_n, block size r, parallelism p (memory ≈ 128 · r · N bytes)."""

    log2_n: int = 16
    r: int = 8
    p: int = 1

    def __post_init__(self) -> None:
        if not (1 <= self.log2_n <= 24 and 1 <= self.r <= 64 and 1 <= self.p <= 16):
            raise PayloadError(f"unreasonable scrypt parameters {self}")


#: The format's KDF cost (≈0.2 s here); tests pass cheaper parameters to both sides.
DEFAULT_KDF = KdfParams()


@dataclass(frozen=True)
class Keys:
    """What a passphrase (or its absence) determines: the permutation key and, if encrypted, the AEAD master."""

    permutation: bytes
    master: bytes | None  # None: no passphrase, integrity check only


def derive_keys(passphrase: str | None, kdf: KdfParams = DEFAULT_KDF) -> Keys:
    """Run the memory-hard KDF once (or nothing, without a passphrase)."""
    if passphrase is None:
        return Keys(PUBLIC_PERMUTATION_KEY, None)
    if not isinstance(passphrase, str):
        raise PayloadError("the passphrase must be text")
    if passphrase == "":
        raise PayloadError("the passphrase is empty; give a passphrase or none at all")
    # surrogateescape: a passphrase from a non-UTF-8 command line keeps the user's exact bytes (not a crash)
    secret = unicodedata.normalize("NFC", passphrase).encode("utf-8", "surrogateescape")
    master = Scrypt(salt=SCRYPT_SALT, length=64, n=1 << kdf.log2_n, r=kdf.r, p=kdf.p).derive(secret)
    return Keys(master[:32], master[32:])


def _aead(master: bytes, salt: bytes) -> AESGCM:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=b"deepsteg.payload.v1/aes-256-gcm").derive(master)
    return AESGCM(key)


def seal(master: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """salt ‖ nonce ‖ AES-256-GCM(plaintext, associated data = aad ‖ salt ‖ nonce) ‖ tag."""
    salt, nonce = os.urandom(SALT_LEN), os.urandom(NONCE_LEN)
    return salt + nonce + _aead(master, salt).encrypt(nonce, plaintext, aad + salt + nonce)


def open_sealed(master: bytes, sealed: bytes, aad: bytes) -> bytes | None:
    """The plaintext, or None if the passphrase is wrong or anything was altered."""
    if len(sealed) < SALT_LEN + NONCE_LEN + TAG_LEN:
        return None
    salt, nonce = sealed[:SALT_LEN], sealed[SALT_LEN:SALT_LEN + NONCE_LEN]
    try:
        return _aead(master, salt).decrypt(nonce, sealed[SALT_LEN + NONCE_LEN:], aad + salt + nonce)
    except InvalidTag:
        return None


def check_tag(data: bytes) -> bytes:
    """The 128-bit integrity check of an unencrypted container (truncated SHA-256, not a MAC: no secret)."""
    return hashlib.sha256(b"deepsteg.payload.v1/check" + data).digest()[:16]


@lru_cache(maxsize=8)
def _permutation(key: bytes, n: int) -> np.ndarray:
    stream = Cipher(algorithms.AES(key), modes.CTR(bytes(16))).encryptor().update(bytes(4 * n))
    perm = np.argsort(np.frombuffer(stream, dtype="<u4"), kind="stable")
    perm.setflags(write=False)
    return perm


def permutation(key: bytes, n: int) -> np.ndarray:
    """A keyed permutation of ``range(n)``: container bit ``i`` lives at image bit ``perm[i]`` (read-only array)."""
    return _permutation(bytes(key), int(n))
