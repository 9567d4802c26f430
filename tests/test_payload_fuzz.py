"""Fuzz the extractor (hypothesis): whatever it is fed, it returns the exact original or one of three errors.

The CI run is a few thousand cases on the no-passphrase path plus cheap-KDF passphrase cases; the project's
≥ 10⁵-case run is ``python -m deepsteg.payload.fuzz --cases 100000`` (same contract, NumPy randomness).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest

pytest.importorskip("hypothesis", reason="hypothesis belongs in the [test] extra")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from deepsteg.payload import NoMessageFound, TooDamaged, WrongPassphraseOrTampered, crypto, ecc, pack, unpack  # noqa: E402
from deepsteg.payload.container import HEAD_BLOCK, unpack_stream  # noqa: E402
from deepsteg.payload.fuzz import FUZZ_KDF, Sample, _forge, run_fuzz  # noqa: E402

EXPECTED = (NoMessageFound, WrongPassphraseOrTampered, TooDamaged)
FAST = settings(deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@lru_cache(maxsize=None)
def samples() -> tuple[Sample, ...]:
    """Containers: plain and cheap-KDF encrypted; random and compressible; small and large parity."""
    rng = np.random.default_rng(0)
    out = []
    for passphrase in (None, None, None, "fuzz"):
        keys = crypto.derive_keys(passphrase, FUZZ_KDF)
        for n, nsym, capacity in ((0, 16, 1000), (1, 2, 1200), (150, 16, 2400), (400, 40, 5000), (600, 16, 6200)):
            data = bytes(rng.integers(0, 256, n, dtype=np.uint8)) if n != 400 else b"xyz" * 133
            out.append(Sample(data, pack(data, capacity, keys=keys, nsym=nsym), keys, passphrase))
    return tuple(out)


def check(run, original: bytes | None) -> None:  # noqa: ANN001
    try:
        out = run()
    except EXPECTED:
        return
    assert original is not None and out == original, "returned bytes that are not the original"


sample = st.integers(0, 19).map(lambda i: samples()[i])


@settings(FAST, max_examples=600)
@given(st.binary(max_size=1500), st.booleans())
def test_random_bits_never_decode(raw, encrypted):
    bits = np.unpackbits(np.frombuffer(raw, dtype=np.uint8))
    keys = samples()[-1 if encrypted else 0].keys
    check(lambda: unpack(bits, keys=keys), None)
    check(lambda: unpack_stream(raw, keys), None)


@settings(FAST, max_examples=1500)
@given(sample, st.lists(st.integers(0, 10**6), max_size=80), st.sampled_from([0.0, 1e-3, 1e-2, 0.1]), st.integers())
def test_bit_flips(s, positions, rate, seed):
    bits = s.bits.copy()
    bits[np.asarray(positions, dtype=np.int64) % bits.size] ^= 1
    bits ^= (np.random.default_rng(seed % 2**32).random(bits.size) < rate).astype(np.uint8)
    check(lambda: unpack(bits, keys=s.keys), s.data)


@settings(FAST, max_examples=500)
@given(sample, st.integers(-64, 64), st.integers(0, 10**6))
def test_truncated_and_extended(s, delta, cut):
    bits = s.bits[:cut % (s.bits.size + 1)] if delta < 0 else np.concatenate([s.bits, np.ones(delta, np.uint8)])
    check(lambda: unpack(bits, keys=s.keys), s.data)


@settings(FAST, max_examples=500)
@given(sample, st.integers(0, 10**6), st.binary(min_size=1, max_size=120), st.booleans())
def test_stream_bursts_and_truncation(s, start, burst, truncate):
    stream = bytearray(s.stream)
    start %= len(stream)
    if truncate:
        stream = stream[:start]
    else:
        stream[start:start + len(burst)] = burst[:len(stream) - start]
    check(lambda: unpack_stream(bytes(stream), s.keys), s.data)


@settings(FAST, max_examples=500)
@given(sample, st.integers(0, 2**32 - 1))
def test_forged_containers_in_valid_ecc(s, seed):
    stream, _ = _forge(np.random.default_rng(seed), s)
    try:
        out = unpack_stream(stream, s.keys)
    except EXPECTED:
        return
    # Without a secret anyone can forge a plain container; with one, nothing but the original passes.
    assert out == s.data or s.keys.master is None


@settings(FAST, max_examples=300)
@given(st.integers(0, 20_000), st.integers(2, ecc.MAX_NSYM))
def test_block_layout_fits_what_capacity_promises(stream_len, nsym):
    d = ecc.max_data_len(stream_len, nsym)
    if d > 0:
        assert ecc.encoded_len(d, nsym) <= stream_len < ecc.encoded_len(d + 1, nsym)
        assert all(0 < x <= ecc.BLOCK - nsym for x in ecc.block_sizes(d, nsym))
    lengths = [x + nsym for x in ecc.block_sizes(max(d, 1), nsym)]
    blocks = [bytes([i]) * n for i, n in enumerate(lengths)]
    assert ecc.deinterleave(ecc.interleave(blocks), lengths) == blocks
    assert HEAD_BLOCK == 48


def test_script_engine_smoke():
    counts = run_fuzz(1500, seed=7)
    assert sum(counts.values()) == 1500
    assert counts["flip:exact"] > 0 and counts["random:NoMessageFound"] > 0
