"""Every other shipped image model does what its card says, through a real PNG file: the shipped sample secret in
the shipped sample cover at an odd size (thresholds a margin below what the shipped weights measured on these
samples, so a regression in the weights, their loading or a model's hide/reveal path fails here), and a clean photo
revealed gives nothing like the secret (the secret really travels in the stego)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest
import torch

import deepsteg
from deepsteg.io import to_grey
from deepsteg.metrics import psnr
from deepsteg.zoo import has_pretrained

# (cover PSNR, secret PSNR) in dB at 389×517 on the shipped samples, measured with the shipped weights on
# 2026-11-24, isgan 2026-11-25 (`python tests/test_pretrained_zoo.py` prints them); the test allows 0.5 dB below.
# None: no weights ship yet (the test then asks for the figures as soon as they do).
MEASURED: dict[str, tuple[float, float] | None] = {
    "stegopnet-noppm": (37.89, 28.80),
    "stegnet": (32.26, 27.65),
    "isgan-basic": (34.01, 26.50),
    "isgan": (34.49, 28.18),
    "isn": None,  # CPU run measured 33.57 / 12.01 (clean 9.40): not shipped, docs/isn-cpu-run/
}
MARGIN = 0.5


def _samples() -> tuple[torch.Tensor, torch.Tensor]:
    folder = Path(str(resources.files("deepsteg") / "samples"))
    crop = (slice(None), slice(40, 429), slice(60, 577))  # 389×517, not a multiple of anything
    return deepsteg.read_image(folder / "cover.jpg")[crop], deepsteg.read_image(folder / "secret.jpg")[crop]


def measure(name: str, folder: Path) -> tuple[float, float, float]:
    """(cover PSNR, secret PSNR, secret PSNR revealed from the clean cover) through real PNG files."""
    cover, secret = _samples()
    model = deepsteg.create_model(name, pretrained=True)
    secret = model.as_secret(secret)
    with torch.inference_mode():
        deepsteg.write_png(model.hide(cover, secret), folder / f"{name}-stego.png")
        received = deepsteg.read_image(folder / f"{name}-stego.png")
        (revealed,) = model.reveal(received)
        (from_clean,) = model.reveal(deepsteg.quantize(cover))
    deepsteg.write_png(revealed, folder / f"{name}-revealed.png")
    revealed = deepsteg.read_image(folder / f"{name}-revealed.png")
    if model.secret_channels == 1:  # the PNG of a grey secret reads back as RGB
        revealed = to_grey(revealed)
    return float(psnr(received, cover)), float(psnr(revealed, secret)), float(psnr(from_clean, secret))


@pytest.mark.parametrize("name", sorted(MEASURED))
def test_shipped_model_on_the_samples(name: str, tmp_path: Path) -> None:
    if not has_pretrained(name):
        pytest.skip(f"no shipped weights for {name}")
    assert MEASURED[name] is not None, f"{name} ships weights: record their figures in MEASURED"
    cover_psnr, secret_psnr, clean_psnr = measure(name, tmp_path)
    want_cover, want_secret = MEASURED[name]
    assert cover_psnr >= want_cover - MARGIN, (cover_psnr, want_cover)
    assert secret_psnr >= want_secret - MARGIN, (secret_psnr, want_secret)
    assert secret_psnr > clean_psnr + 6, (secret_psnr, clean_psnr)


if __name__ == "__main__":  # print the figures to put in MEASURED
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        for n in sorted(MEASURED):
            if has_pretrained(n):
                print(n, "cover %.2f secret %.2f clean %.2f" % measure(n, Path(tmp)))
