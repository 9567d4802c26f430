"""The shipped message model does its job through real PNG files: a random 2,000-byte payload in a 256×256 crop
of the shipped sample photo comes back exactly (with and without a passphrase), so does a payload at an odd size,
and its raw bit accuracy after rounding stays near what its model card reports."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import torch

import deepsteg
from deepsteg.io import quantize
from deepsteg.metrics import psnr
from deepsteg.payload import hide_bytes, reveal_bytes
from deepsteg.zoo import DEFAULT_MESSAGE_MODEL, has_pretrained

pytestmark = pytest.mark.skipif(not has_pretrained(DEFAULT_MESSAGE_MODEL), reason="needs the shipped sftn weights")

# measured with the shipped weights on the sample cover's 256×256 centre crop (see MIN_* below); margins of 0.5 dB
# and 0.01 under them
MIN_BIT_ACCURACY = 0.95
MIN_COVER_PSNR = 38.0


def _cover() -> torch.Tensor:
    return deepsteg.read_image(Path(str(resources.files("deepsteg") / "samples")) / "cover.jpg")


@pytest.mark.parametrize("passphrase", [None, "correct horse battery staple"])
def test_2000_random_bytes_come_back_exactly_at_256(tmp_path: Path, passphrase: str | None) -> None:
    m = deepsteg.create_model(DEFAULT_MESSAGE_MODEL, pretrained=True)
    c = _cover()[:, 112:368, 192:448]
    data = np.random.default_rng(3).integers(0, 256, 2000, dtype=np.uint8).tobytes()
    with torch.inference_mode():
        stego = hide_bytes(m, c, data, passphrase, compress=False)
    deepsteg.write_png(stego, tmp_path / "s.png")
    received = deepsteg.read_image(tmp_path / "s.png")
    assert float(psnr(received[None], c[None])) >= MIN_COVER_PSNR
    with torch.inference_mode():
        assert reveal_bytes(m, received, passphrase) == data


def test_odd_size_round_trip_and_raw_accuracy(tmp_path: Path) -> None:
    m = deepsteg.create_model(DEFAULT_MESSAGE_MODEL, pretrained=True)
    c = _cover()[:, 21:318, 33:446]  # 413×297
    data = b"deepsteg " * 300
    with torch.inference_mode():
        stego = hide_bytes(m, c, data)
        deepsteg.write_png(stego, tmp_path / "s.png")
        assert reveal_bytes(m, deepsteg.read_image(tmp_path / "s.png")) == data
        bits = torch.randint(0, 2, (1, m.capacity_bits(*c.shape[-2:])), generator=torch.Generator().manual_seed(0))
        probs = m.extract(quantize(m.embed(c[None], bits.float())))
    assert float(((probs > 0.5) == (bits > 0.5)).float().mean()) >= MIN_BIT_ACCURACY
