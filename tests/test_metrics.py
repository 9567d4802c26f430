"""Metrics agree with scikit-image (PSNR to 1e-3 dB, SSIM to 1e-2) and the papers' payload formulas."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from deepsteg import metrics
from deepsteg.io import quantize
from tests.conftest import natural_like


def _pairs():
    rng = np.random.default_rng(1)
    nat = natural_like(64, 80, seed=3)
    noisy = np.clip(nat.astype(int) + rng.integers(-6, 7, nat.shape), 0, 255).astype(np.uint8)
    rnd_a = rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)
    rnd_b = np.clip(rnd_a.astype(int) + rng.integers(-40, 41, rnd_a.shape), 0, 255).astype(np.uint8)
    try:  # a real photograph when scikit-image's bundled data is present
        from skimage import data

        astro = data.astronaut()[100:228, 150:278]
        blurred = np.clip(astro.astype(int) + rng.integers(-3, 4, astro.shape), 0, 255).astype(np.uint8)
        extra = [("astronaut", astro, blurred)]
    except Exception:  # pragma: no cover - depends on the scikit-image build
        extra = []
    return [("natural-like", nat, noisy), ("random", rnd_a, rnd_b), *extra]


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(a).permute(2, 0, 1).float()[None] / 255


@pytest.mark.parametrize("name,a,b", _pairs(), ids=lambda v: v if isinstance(v, str) else "")
def test_psnr_matches_skimage(name: str, a: np.ndarray, b: np.ndarray) -> None:
    ref = peak_signal_noise_ratio(a, b, data_range=255)
    assert abs(float(metrics.psnr(_t(a), _t(b))) - ref) < 1e-3


@pytest.mark.parametrize("name,a,b", _pairs(), ids=lambda v: v if isinstance(v, str) else "")
def test_ssim_matches_skimage(name: str, a: np.ndarray, b: np.ndarray) -> None:
    ref = structural_similarity(a, b, data_range=255, channel_axis=2, gaussian_weights=True, sigma=1.5,
                                use_sample_covariance=False)
    assert abs(float(metrics.ssim(_t(a), _t(b))) - ref) < 1e-2


def test_identical_images() -> None:
    x = quantize(torch.rand(2, 3, 40, 40))
    assert torch.isinf(metrics.psnr(x, x)).all()
    assert torch.allclose(metrics.ssim(x, x), torch.ones(2))
    assert torch.allclose(metrics.ms_ssim(x, x), torch.ones(2), atol=1e-6)


def test_ms_ssim_orders_distortions_and_handles_small_images() -> None:
    x = _t(natural_like(200, 200, seed=5))
    mild = (x + 0.01 * torch.randn_like(x)).clamp(0, 1)
    strong = (x + 0.1 * torch.randn_like(x)).clamp(0, 1)
    assert 1 > float(metrics.ms_ssim(x, mild)) > float(metrics.ms_ssim(x, strong)) > 0
    small = _t(natural_like(32, 32))
    assert 0 < float(metrics.ms_ssim(small, (small + 0.05).clamp(0, 1))) < 1  # fewer scales, no crash


def test_per_image_values() -> None:
    a = torch.zeros(2, 3, 8, 8)
    b = a.clone()
    b[1] += 1 / 255
    p = metrics.psnr(a, b)
    assert torch.isinf(p[0]) and float(p[1]) == pytest.approx(20 * np.log10(255), abs=1e-5)


def test_stegnet_rates_and_payload() -> None:
    h = torch.full((1, 3, 4, 4), 0.5)
    d = h.clone()
    d[..., :2, :] += 0.1  # half the pixels off by 0.1 → mean |H−D| = 0.05
    assert float(metrics.decoded_rate(h, d)) == pytest.approx(0.95, rel=1e-6)
    assert float(metrics.payload_capacity(h, d)) == pytest.approx(0.95 * 24, rel=1e-6)
    assert float(metrics.stegopnet_payload_capacity(h, d)) == pytest.approx(22.8, rel=1e-6)
    assert float(metrics.cover_changing_rate(h, d)) == pytest.approx(0.05, rel=1e-6)
    assert float(metrics.payload_capacity(h[:, :1], d[:, :1])) == pytest.approx(0.95 * 8, rel=1e-6)


def test_bit_accuracy() -> None:
    bits = torch.tensor([[1, 0, 1, 1], [0, 0, 0, 0]]).float()
    probs = torch.tensor([[0.9, 0.2, 0.4, 0.7], [0.1, 0.1, 0.6, 0.6]])
    assert metrics.bit_accuracy(bits, probs).tolist() == [0.75, 0.5]


def test_small_image_ms_ssim_uses_the_library_kernel() -> None:
    """Above 160 px our MS-SSIM is the library's; below, the same kernel over fewer scales stays close to SSIM
    for mild distortions (sanity check of the fallback)."""
    x = _t(natural_like(96, 96, seed=2))
    y = (x + 0.02 * torch.randn_like(x)).clamp(0, 1)
    ms, s = float(metrics.ms_ssim(x, y)), float(metrics.ssim(x, y))
    assert 0.5 < ms < 1 and abs(ms - s) < 0.2
    big = _t(natural_like(192, 192, seed=2))
    from pytorch_msssim import ms_ssim as ref

    yb = (big + 0.02 * torch.randn_like(big)).clamp(0, 1)
    assert float(metrics.ms_ssim(big, yb)) == pytest.approx(float(ref(big.double(), yb.double(), data_range=1.0)),
                                                            abs=1e-6)


def test_integer_images_are_refused_not_scored_against_peak_one() -> None:
    x = torch.randint(0, 256, (1, 3, 16, 16), dtype=torch.uint8)
    for f in (metrics.psnr, metrics.ssim, metrics.ms_ssim):
        with pytest.raises(TypeError, match="float images"):
            f(x, x)


def test_small_image_ms_ssim_stays_on_the_input_device() -> None:
    """The small-image path built its scale weights on the CPU, so `evaluate --device cuda --size 128` crashed;
    the meta device stands in for CUDA (any device other than the CPU shows it)."""
    a = torch.rand(2, 3, 64, 64, device="meta")
    assert metrics.ms_ssim(a, a).device.type == "meta"
