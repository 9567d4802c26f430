"""The exact-payload container over a message model: round trips through real PNG files and every error path."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from deepsteg.errors import DeepstegError, ModelError
from deepsteg.io import read_image, write_png
from deepsteg.models.message import LsbMessage
from deepsteg.payload import (
    DEFAULT_KDF,
    KdfParams,
    NoMessageFound,
    PayloadError,
    PayloadTooLarge,
    TooDamaged,
    WrongPassphraseOrTampered,
    capacity_bytes,
    hide_bytes,
    max_payload_bytes,
    nsym_for,
    pack,
    reveal_bytes,
    unpack,
)
from deepsteg.payload import crypto
from deepsteg.payload.container import unpack_stream
from deepsteg.payload.fuzz import FUZZ_KDF, Sample, _forge
from tests.conftest import natural_like

H, W = 45, 67  # odd sizes on purpose
CHEAP = KdfParams(log2_n=4, r=1, p=1)


def cover(h: int = H, w: int = W, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(natural_like(h, w, seed)).permute(2, 0, 1).float() / 255.0


def via_png(stego: torch.Tensor, tmp_path, name: str = "stego.png") -> torch.Tensor:
    path = write_png(stego, tmp_path / name)
    return read_image(path)


def flip_lsbs(img: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """Flip the LSB of ``n`` distinct channel values (seeded, so the outcome is reproducible)."""
    u8 = (img * 255).round().to(torch.uint8).flatten().clone()
    idx = torch.from_numpy(np.random.default_rng(seed).choice(u8.numel(), n, replace=False))
    u8[idx] ^= 1
    return u8.view(img.shape).float() / 255.0


# --- the message model ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("k", [1, 2, 3])
def test_lsb_message_is_exact_after_png(k, tmp_path):
    m = LsbMessage(k)
    c = cover().unsqueeze(0)
    bits = torch.randint(0, 2, (1, m.capacity_bits(H, W))).float()
    stego = m.embed(c, bits)
    assert m.capacity_bits(H, W) == 3 * H * W * k
    assert ((stego - c).abs() * 255).round().max() <= 2**k - 1
    back = via_png(stego[0], tmp_path).unsqueeze(0)
    assert torch.equal(m.extract(back), bits)


def test_lsb_message_rejects_bad_inputs():
    m = LsbMessage()
    with pytest.raises(ModelError):
        m.embed(cover().unsqueeze(0), torch.zeros(1, 10))
    with pytest.raises(ModelError):
        m.extract(torch.zeros(3, 8, 8))
    with pytest.raises(ModelError):
        LsbMessage(0)


# --- round trips ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("passphrase", [None, "correct horse battery staple"])
@pytest.mark.parametrize("size", ["empty", "one", "some", "full"])
def test_exact_round_trip_through_png(size, passphrase, tmp_path):
    m = LsbMessage()
    cap = capacity_bytes(m, H, W, passphrase)
    n = {"empty": 0, "one": 1, "some": 137, "full": cap}[size]
    data = os.urandom(n)
    stego = hide_bytes(m, cover(), data, passphrase, kdf=CHEAP)
    assert stego.shape == (3, H, W)
    assert reveal_bytes(m, via_png(stego, tmp_path), passphrase, kdf=CHEAP) == data


@pytest.mark.parametrize("passphrase", [None, "pw"])
def test_compressible_data_beyond_raw_capacity(passphrase, tmp_path):
    m = LsbMessage()
    data = b"the quick brown fox jumps over the lazy dog\n" * 80  # 3.5 kB, 4× the raw capacity
    assert len(data) > 3 * capacity_bytes(m, H, W, passphrase)
    stego = hide_bytes(m, cover(), data, passphrase, kdf=CHEAP)
    assert reveal_bytes(m, via_png(stego, tmp_path), passphrase, kdf=CHEAP) == data
    with pytest.raises(PayloadTooLarge):
        hide_bytes(m, cover(), data, passphrase, kdf=CHEAP, compress=False)


def test_default_kdf_and_batch_of_one(tmp_path):
    m = LsbMessage(2)
    data = "ünïcödé text ✓".encode()
    stego = hide_bytes(m, cover().unsqueeze(0), data, "pässword")
    assert stego.shape == (1, 3, H, W)
    # The passphrase is NFC-normalised: the decomposed spelling opens the message too.
    assert reveal_bytes(m, via_png(stego[0], tmp_path).unsqueeze(0), "pa\u0308ssword") == data
    assert DEFAULT_KDF == KdfParams(16, 8, 1)


def test_over_capacity_is_refused_before_anything_is_written(tmp_path):
    m = LsbMessage()
    cap = capacity_bytes(m, H, W)
    with pytest.raises(PayloadTooLarge) as e:
        hide_bytes(m, cover(), os.urandom(cap + 1))
    assert (e.value.needed, e.value.available) == (cap + 1, cap)
    assert f"at most {cap} bytes" in str(e.value)
    assert isinstance(e.value, DeepstegError)
    with pytest.raises(PayloadTooLarge, match="too small for any message"):
        pack(b"", 8 * 60)  # too small even for the head block (was "0 bytes, but … holds at most 0 bytes")
    with pytest.raises(PayloadError):
        pack(b"x", 10_000, "")  # an empty passphrase is a mistake, not "no passphrase"


def test_capacity_accounts_for_error_rate_and_encryption():
    plain, secret = max_payload_bytes(196_608, False), max_payload_bytes(196_608, True)
    assert plain - secret == 28  # salt + nonce + tag − check tag
    assert max_payload_bytes(196_608, False, error_rate=1e-3) < plain
    assert max_payload_bytes(100, False) == 0


# --- errors --------------------------------------------------------------------------------------------------

def test_wrong_or_missing_passphrase_finds_no_message(tmp_path):
    """The permutation is keyed by the passphrase, so any other key finds no header: NoMessageFound."""
    m = LsbMessage()
    back = via_png(hide_bytes(m, cover(), b"secret plans", "right", kdf=CHEAP), tmp_path)
    for wrong in ("wrong", "Right", "right "):
        with pytest.raises(NoMessageFound):
            reveal_bytes(m, back, wrong, kdf=CHEAP)
    with pytest.raises(NoMessageFound):
        reveal_bytes(m, back)
    with pytest.raises(NoMessageFound):  # same passphrase, other KDF cost: another key
        reveal_bytes(m, back, "right", kdf=KdfParams(5, 1, 1))
    plain = via_png(hide_bytes(m, cover(), b"open"), tmp_path, "plain.png")
    with pytest.raises(NoMessageFound):
        reveal_bytes(m, plain, "any", kdf=CHEAP)


@pytest.mark.parametrize("passphrase", [None, "pw"])
def test_clean_image_has_no_message(passphrase, tmp_path):
    clean = via_png(cover(seed=3), tmp_path)
    with pytest.raises(NoMessageFound):
        reveal_bytes(LsbMessage(), clean, passphrase, kdf=CHEAP)
    with pytest.raises(NoMessageFound):
        reveal_bytes(LsbMessage(), torch.zeros(3, 8, 8), passphrase, kdf=CHEAP)  # too small to hold one


@pytest.mark.parametrize("passphrase", [None, "pw"])
def test_a_few_tampered_pixels_are_corrected(passphrase, tmp_path):
    m = LsbMessage()
    data = os.urandom(capacity_bytes(m, H, W, passphrase))
    back = via_png(hide_bytes(m, cover(), data, passphrase, kdf=CHEAP), tmp_path)
    back[:, 10:12, 20:22] = torch.tensor([0.0, 1.0, 0.5]).view(3, 1, 1)  # 4 pixels repainted
    back = via_png(back, tmp_path, "tampered.png")
    # ≤ 12 bit errors, scattered by the permutation over the head and 5 body blocks of 8 correctable each.
    assert reveal_bytes(m, back, passphrase, kdf=CHEAP) == data


@pytest.mark.parametrize("passphrase", [None, "pw"])
def test_heavy_tampering_is_too_damaged_with_counts(passphrase, tmp_path):
    m = LsbMessage()
    data = os.urandom(capacity_bytes(m, H, W, passphrase))
    back = via_png(hide_bytes(m, cover(), data, passphrase, kdf=CHEAP), tmp_path)
    # ~10 % of bytes wrong: the head block (18 of 48 correctable) survives, the 8-per-block body does not.
    with pytest.raises(TooDamaged) as e:
        reveal_bytes(m, flip_lsbs(back, 110, seed=2), passphrase, kdf=CHEAP)
    err = e.value
    assert err.per_block == nsym_for(0) // 2 == 8
    assert 1 <= err.failed_blocks <= err.blocks and err.blocks >= 4
    assert err.correctable == 8 * err.blocks
    assert err.errors >= err.failed_blocks * 9 and err.errors > err.per_block
    assert f"{err.failed_blocks} of {err.blocks}" in str(err)
    with pytest.raises(NoMessageFound):  # beyond the head block's strength nothing is recognisable
        reveal_bytes(m, flip_lsbs(back, 3000, seed=3), passphrase, kdf=CHEAP)


@pytest.mark.parametrize("passphrase", [None, "fuzz"])
def test_altered_content_in_valid_ecc_fails_authentication(passphrase):
    """Flip body bytes and re-wrap them in valid RS blocks: the tag (or GCM) must catch it."""
    keys = crypto.derive_keys(passphrase, FUZZ_KDF)
    data = os.urandom(300)
    s = Sample(data, pack(data, 8 * 600, keys=keys), keys, passphrase)
    assert unpack_stream(s.stream, keys) == data
    for seed in range(40):
        stream, _ = _forge(np.random.default_rng(seed), s)
        try:
            out = unpack_stream(stream, keys)
        except (NoMessageFound, WrongPassphraseOrTampered, TooDamaged):
            continue
        assert passphrase is None and out != data  # only a forged plain inner can pass, never altered data


def test_model_error_rate_sizes_the_code():
    assert nsym_for(0.0) == 16 and nsym_for(1e-3) == 42 and nsym_for(1e-2) == 152
    assert all(nsym_for(a) <= nsym_for(b) for a, b in [(0, 1e-5), (1e-5, 1e-4), (1e-4, 1e-3), (1e-3, 3e-3)])
    with pytest.raises(PayloadError):
        nsym_for(0.05)  # too unreliable for exact data: a clear error, not a uselessly small capacity
    # At the rate it was sized for, random bit errors are corrected.
    rng = np.random.default_rng(0)
    data = os.urandom(2000)
    bits = pack(data, 40_000, error_rate=2e-3)
    noisy = bits ^ (rng.random(bits.size) < 2e-3).astype(np.uint8)
    assert unpack(noisy) == data
    probs = np.where(noisy == 1, 0.8, 0.3)  # bit probabilities work as well as hard bits
    assert unpack(torch.from_numpy(probs)) == data


def test_permutation_is_pinned():
    """The permutation is part of the file format: it must never change between releases."""
    perm = crypto.permutation(crypto.PUBLIC_PERMUTATION_KEY, 12)
    assert sorted(perm.tolist()) == list(range(12))
    assert perm.tolist() == PINNED
    assert not perm.flags.writeable


PINNED = [7, 6, 10, 5, 3, 1, 11, 9, 4, 2, 0, 8]  # AES-256-CTR argsort under the public key
