"""Fuzz the extractor: ``python -m deepsteg.payload.fuzz --cases 100000 [--seed 0]``.

Feeds :func:`unpack` (and, below the permutation, :func:`unpack_stream`) random bits, random probabilities,
truncated and extended containers, containers with random bit flips at rates from 1e-4 to 0.5, byte bursts, and
containers whose body or head was altered and re-wrapped in valid Reed–Solomon blocks (so the parser behind the
error correction is reached). The contract checked on every case: the result is exactly the original bytes, or
one of ``NoMessageFound`` / ``WrongPassphraseOrTampered`` / ``TooDamaged`` is raised — nothing else, never other
bytes. Exits 1 and prints a reproducer (seed, case number) on the first violation. Plain NumPy randomness, so the
script needs no test dependencies; the test suite runs a short version with ``hypothesis``.
"""

from __future__ import annotations

import argparse
import sys
import time
import zlib
from collections import Counter
from dataclasses import dataclass

import numpy as np

from deepsteg.payload import crypto, ecc
from deepsteg.payload.container import HEAD, HEAD_BLOCK, HEAD_NSYM, INNER, pack, unpack, unpack_stream
from deepsteg.payload.crypto import KdfParams, Keys
from deepsteg.payload.errors import NoMessageFound, TooDamaged, WrongPassphraseOrTampered

EXPECTED = (NoMessageFound, WrongPassphraseOrTampered, TooDamaged)
#: Cheap scrypt for fuzzing: the KDF is not what is being tested.
FUZZ_KDF = KdfParams(log2_n=4, r=1, p=1)


@dataclass
class Sample:
    data: bytes
    bits: np.ndarray
    keys: Keys
    passphrase: str | None

    @property
    def stream(self) -> bytes:
        perm = crypto.permutation(self.keys.permutation, self.bits.size)
        return np.packbits(self.bits[perm[:8 * (self.bits.size // 8)]]).tobytes()


def make_pool(rng: np.random.Generator, size: int = 48) -> list[Sample]:
    """Valid containers of varied capacity, payload, compressibility, parity and encryption."""
    keys = {None: crypto.derive_keys(None), "fuzz": crypto.derive_keys("fuzz", FUZZ_KDF)}
    pool = []
    while len(pool) < size:
        capacity = int(rng.integers(8 * 70, 8 * 1200))
        passphrase = None if rng.random() < 0.5 else "fuzz"
        nsym = int(rng.choice([2, 4, 16, 40, 100]))
        room = max(0, (capacity // 8 - HEAD_BLOCK) - 60 - 2 * nsym)
        n = int(rng.integers(0, max(1, room)))
        data = bytes(rng.integers(0, 256, n, dtype=np.uint8)) if rng.random() < 0.5 else b"abc" * (n // 3)
        try:
            bits = pack(data, capacity, keys=keys[passphrase], nsym=nsym)
        except Exception as e:  # PayloadTooLarge for the smallest covers
            if type(e).__name__ != "PayloadTooLarge":
                raise
            continue
        pool.append(Sample(data, bits, keys[passphrase], passphrase))
    return pool


def _flip(rng: np.random.Generator, bits: np.ndarray) -> np.ndarray:
    out = bits.copy()
    if rng.random() < 0.5:
        rate = float(rng.choice([1e-4, 1e-3, 3e-3, 1e-2, 2e-2, 5e-2, 0.1, 0.5]))
        mask = rng.random(out.size) < rate
    else:
        mask = np.zeros(out.size, dtype=bool)
        mask[rng.integers(0, out.size, int(rng.integers(1, 64)))] = True
    out[mask] ^= 1
    return out


def _rewrap(head: bytes, body: bytes, nsym: int, total: int) -> bytes:
    """A stream whose RS blocks are all valid, around an arbitrary head and body."""
    blocks, pos = [], 0
    for size in ecc.block_sizes(max(1, len(body)), nsym):
        chunk = body[pos:pos + size] or b"\0"
        blocks.append(ecc.encode_block(chunk, nsym))
        pos += size
    stream = ecc.encode_block(head, HEAD_NSYM) + ecc.interleave(blocks)
    return (stream + bytes(max(0, total - len(stream))))[:max(total, HEAD_BLOCK)]


def _forge(rng: np.random.Generator, s: Sample) -> tuple[bytes, bytes | None]:
    """(stream, expected) with a mutated head or body re-wrapped in valid RS; expected None = must fail."""
    stream = s.stream
    raw_head = ecc.decode_block(stream[:HEAD_BLOCK], HEAD_NSYM)[0]
    magic, version, flags, nsym, reserved, body_len = HEAD.unpack(raw_head)
    sizes = ecc.block_sizes(body_len, nsym)
    lengths = [x + nsym for x in sizes]
    blocks = ecc.deinterleave(stream[HEAD_BLOCK:HEAD_BLOCK + sum(lengths)], lengths)
    body = bytearray(b"".join(ecc.decode_block(b, nsym)[0] for b in blocks))
    choice = rng.integers(0, 6)
    if choice == 0:  # flip body bytes
        for i in rng.integers(0, len(body), int(rng.integers(1, 4))):
            body[i] ^= int(rng.integers(1, 256))
    elif choice == 1:  # truncate or extend the body, with or without a matching length
        body = body[:int(rng.integers(0, len(body)))] if rng.random() < 0.5 else body + bytes(int(rng.integers(1, 9)))
        if rng.random() < 0.5:
            body_len = len(body)
    elif choice == 2:  # random header fields
        version, flags, nsym, reserved = (int(v) for v in rng.integers(0, 256, 4))
        body_len = int(rng.integers(0, 1 << 32)) if rng.random() < 0.3 else body_len
        nsym = max(2, min(nsym, ecc.MAX_NSYM)) if rng.random() < 0.7 else nsym
    elif choice == 3:  # flip the encryption flag
        flags ^= 1
    elif choice == 4 and s.keys.master is None:  # a forged plain inner with a valid check: parser limits
        method = int(rng.choice([0, 1, 2, int(rng.integers(0, 256))]))
        payload = zlib.compress(bytes(int(rng.integers(0, 200)))) if method == 1 else bytes(rng.integers(0, 256, 30, dtype=np.uint8))
        if rng.random() < 0.5:
            payload = payload[:int(rng.integers(0, len(payload) + 1))]
        size = int(rng.choice([0, 1, 30, 199, int(rng.integers(0, 1 << 32))]))
        inner = INNER.pack(method, size) + payload
        body_len = len(inner) + 16
        head = HEAD.pack(magic, version, flags, nsym, reserved, body_len)
        body = bytearray(inner + crypto.check_tag(head + inner))
    else:  # random magic
        magic = bytes(rng.integers(0, 256, 4, dtype=np.uint8))
    head = HEAD.pack(magic, version, flags, nsym, reserved, body_len & 0xFFFFFFFF)
    # The head may claim any nsym; the blocks are wrapped with a valid one so the parser is reached.
    return _rewrap(head, bytes(body), min(max(nsym, 2), ecc.MAX_NSYM), len(stream)), None


def one_case(rng: np.random.Generator, pool: list[Sample]) -> str:
    """Run one random case; return '<kind>:<outcome>' or raise AssertionError on a contract violation."""
    s = pool[int(rng.integers(0, len(pool)))]
    kind = str(rng.choice(["random", "probs", "flip", "truncate", "stream", "forge"], p=[.1, .05, .4, .15, .15, .15]))
    expected: bytes | None = s.data
    if kind == "random":
        bits, expected = rng.integers(0, 2, int(rng.integers(0, 10000)), dtype=np.uint8), None
        run = lambda: unpack(bits, keys=s.keys)  # noqa: E731
    elif kind == "probs":
        probs = s.bits + rng.normal(0, float(rng.choice([0.05, 0.2, 0.5])), s.bits.size)
        probs[rng.random(probs.size) < 0.001] = np.nan
        run = lambda: unpack(probs, keys=s.keys)  # noqa: E731
    elif kind == "flip":
        bits = _flip(rng, s.bits)
        run = lambda: unpack(bits, keys=s.keys)  # noqa: E731
    elif kind == "truncate":
        n = int(rng.integers(0, s.bits.size + 64))
        bits = s.bits[:n] if n <= s.bits.size else np.concatenate([s.bits, rng.integers(0, 2, n - s.bits.size, dtype=np.uint8)])
        run = lambda: unpack(bits, keys=s.keys)  # noqa: E731
    elif kind == "stream":  # below the permutation: truncation, byte bursts
        stream = bytearray(s.stream)
        if rng.random() < 0.5:
            stream = stream[:int(rng.integers(0, len(stream) + 1))]
        else:
            start, n = int(rng.integers(0, len(stream))), int(rng.integers(1, 80))
            stream[start:start + n] = bytes(rng.integers(0, 256, len(stream[start:start + n]), dtype=np.uint8))
        run = lambda: unpack_stream(bytes(stream), s.keys)  # noqa: E731
    else:
        stream, _ = _forge(rng, s)
        run = lambda: unpack_stream(stream, s.keys)  # noqa: E731
    try:
        out = run()
    except EXPECTED as e:
        return f"{kind}:{type(e).__name__}"
    except Exception as e:
        raise AssertionError(f"{kind}: unexpected {type(e).__name__}: {e}") from e
    if kind == "forge" and out != s.data:
        # Only a forged plain inner (valid check, no secret) may yield other bytes; they must match its claims.
        assert s.keys.master is None, "forged encrypted container accepted"
        return f"{kind}:forged-plain-accepted"
    if out != expected:
        raise AssertionError(f"{kind}: returned {len(out)} wrong bytes")
    return f"{kind}:exact"


def run_fuzz(cases: int, seed: int = 0, progress: bool = False) -> Counter:
    """Run ``cases`` cases from ``seed``; raises AssertionError (with the case number) on a violation."""
    rng = np.random.default_rng(seed)
    pool = make_pool(rng)
    counts: Counter = Counter()
    for i in range(cases):
        try:
            counts[one_case(rng, pool)] += 1
        except AssertionError as e:
            raise AssertionError(f"seed {seed}, case {i}: {e}") from e
        if progress and (i + 1) % 10000 == 0:
            print(f"  {i + 1} cases", file=sys.stderr, flush=True)
    return counts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    t = time.perf_counter()
    try:
        counts = run_fuzz(args.cases, args.seed, progress=True)
    except AssertionError as e:
        print(f"VIOLATION: {e}")
        return 1
    for key, n in sorted(counts.items()):
        print(f"{key:45s} {n}")
    print(f"{sum(counts.values())} cases, 0 violations, {time.perf_counter() - t:.1f} s (seed {args.seed})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
