"""Tiled inference is seamless: for a convolution-only model it equals the whole-image result; the automatic
policy picks the same grid for hide and reveal from the size alone."""

from __future__ import annotations

import pytest
import torch

import deepsteg
import deepsteg.zoo
from deepsteg.tiling import tile_grid


def _randomised(name: str) -> deepsteg.ImageHider:
    torch.manual_seed(0)
    m = deepsteg.create_model(name).eval()
    for mod in m.modules():  # move BN away from identity so the network mixes pixels for real
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.1, 0.1)
            mod.running_var.uniform_(0.5, 1.5)
            mod.weight.data.uniform_(0.5, 1.5)
    return m


def test_grid_covers_every_pixel_once() -> None:
    h, w = 150, 190
    count = torch.zeros(h, w)
    for (y0, y1, x0, x1), (Y0, Y1, X0, X1) in tile_grid(h, w, 32, 16, 16):
        count[y0:y1, x0:x1] += 1
        assert Y0 <= y0 and Y1 >= y1 and X0 <= x0 and X1 >= x1 and Y0 % 16 == 0 and X0 % 16 == 0
    assert torch.equal(count, torch.ones(h, w))
    with pytest.raises(ValueError):
        list(tile_grid(10, 10, 20, 8, 16))


def test_tiles_equal_whole_image_for_a_convolutional_model() -> None:
    """stegopnet-noppm has no global operation: forced into 32-px tiles with the default margin, hide and reveal
    match the whole-image path to float precision — no seams."""
    m = _randomised("stegopnet-noppm")
    c, s = torch.rand(1, 3, 150, 190), torch.rand(1, 3, 150, 190)
    with torch.no_grad():
        whole, tiled = m.hide(c, s, tile=0), m.hide(c, s, tile=32)
        assert (whole - tiled).abs().max() < 1e-5
        assert (m.reveal(whole, tile=0)[0] - m.reveal(whole, tile=32)[0]).abs().max() < 1e-5


def test_too_small_a_margin_would_show_seams() -> None:
    """The equality above is not vacuous: with a margin under the receptive field, tiles differ."""
    m = _randomised("stegopnet-noppm")
    m.tile_margin = 16
    c, s = torch.rand(1, 3, 96, 96), torch.rand(1, 3, 96, 96)
    with torch.no_grad():
        assert (m.hide(c, s, tile=0) - m.hide(c, s, tile=32)).abs().max() > 1e-2


def test_automatic_policy_tiles_large_images_only(monkeypatch: pytest.MonkeyPatch) -> None:
    m = _randomised("stegopnet")
    m.max_whole_pixels = 64 * 64
    m.tile_size = 32
    c, s = torch.rand(1, 3, 80, 96), torch.rand(1, 3, 80, 96)
    with torch.no_grad():
        assert torch.equal(m.hide(c, s), m.hide(c, s, tile=32))
        small = torch.rand(1, 3, 48, 48)
        assert torch.equal(m.hide(small, small), m.hide(small, small, tile=0))
        assert torch.equal(m.reveal(c)[0], m.reveal(c, tile=32)[0])


@pytest.mark.skipif(not deepsteg.zoo.has_pretrained("stegopnet"), reason="needs shipped weights")
def test_trained_ppm_model_tiles_without_visible_seams() -> None:
    """StegoPNet's pyramid pooling sees one tile's context, so tiles are not bit-equal to the whole image; with the
    trained weights the change along tile borders is no larger than elsewhere and quality is unchanged."""
    from deepsteg.metrics import psnr
    from tests.conftest import natural_like

    m = deepsteg.create_model("stegopnet", pretrained=True)

    def img(seed: int) -> torch.Tensor:
        return torch.from_numpy(natural_like(192, 192, seed)).permute(2, 0, 1).float()[None] / 255

    c, s = img(1), img(2)
    with torch.no_grad():
        whole = deepsteg.quantize(m.hide(c, s, tile=0))
        tiled = deepsteg.quantize(m.hide(c, s, tile=64))
        rev_t = deepsteg.quantize(m.reveal(tiled, tile=64)[0])
        rev_w = deepsteg.quantize(m.reveal(whole, tile=0)[0])
    assert abs(float(psnr(tiled, c)) - float(psnr(whole, c))) < 0.5
    assert abs(float(psnr(rev_t, s)) - float(psnr(rev_w, s))) < 0.5
    resid = (tiled - c).abs().mean(dim=(0, 1))
    border = torch.zeros(192, 192, dtype=torch.bool)
    for b in (64, 128):
        border[b - 2:b + 2, :] = True
        border[:, b - 2:b + 2] = True
    assert float(resid[border].mean()) < 1.5 * float(resid[~border].mean())
