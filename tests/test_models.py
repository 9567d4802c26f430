"""StegoPNet follows the paper's Table 2; the shared interface pads/crops any size and refuses bad input."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import deepsteg
import deepsteg.metrics
from deepsteg.errors import ModelError
from deepsteg.layers import PyramidPooling
from deepsteg.models.base import pad_to_multiple


def _convs(net: nn.Module) -> list[tuple[str, int, int, int, int]]:
    return [(type(m).__name__, m.in_channels, m.out_channels, m.kernel_size[0], m.stride[0])
            for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) and m.kernel_size[0] > 1]


def test_stegopnet_matches_table_2() -> None:
    m = deepsteg.create_model("stegopnet")
    assert _convs(m.hiding) == [
        ("Conv2d", 6, 32, 4, 2), ("Conv2d", 32, 64, 4, 2), ("Conv2d", 64, 128, 4, 2), ("Conv2d", 128, 256, 4, 2),
        ("ConvTranspose2d", 576, 128, 4, 2), ("ConvTranspose2d", 256, 64, 4, 2),
        ("ConvTranspose2d", 128, 32, 4, 2), ("ConvTranspose2d", 64, 16, 4, 2), ("Conv2d", 16, 3, 3, 1),
    ]
    assert _convs(m.reveal_net)[0] == ("Conv2d", 3, 32, 4, 2)
    assert m.hiding.ppm.bins == (32, 16, 8, 4, 2)
    assert isinstance(m.hiding.head[2], nn.Sigmoid) and isinstance(m.hiding.head[1], nn.BatchNorm2d)


def test_noppm_ablation_drops_only_the_module() -> None:
    m = deepsteg.create_model("stegopnet-noppm")
    assert not any(isinstance(x, PyramidPooling) for x in m.modules())
    assert _convs(m.hiding)[4] == ("ConvTranspose2d", 256, 128, 4, 2)


def test_pyramid_pooling_shapes_and_clamped_bins() -> None:
    ppm = PyramidPooling(8, (32, 16, 4, 2), 3)
    for h, w in [(16, 16), (5, 7), (1, 1)]:
        assert ppm(torch.rand(2, 8, h, w)).shape == (2, 8 + 4 * 3, h, w)


@pytest.mark.parametrize("h,w", [(16, 16), (37, 29), (48, 64)])
def test_any_size_round_trips_shapes(h: int, w: int) -> None:
    m = deepsteg.create_model("stegopnet").eval()
    cover, secret = torch.rand(1, 3, h, w), torch.rand(1, 3, h, w)
    with torch.no_grad():
        stego = m.hide(cover, secret)
        (rev,) = m.reveal(stego)
    assert stego.shape == rev.shape == (1, 3, h, w)
    assert 0 <= stego.min() and stego.max() <= 1
    with torch.no_grad():  # unbatched CHW works too
        assert m.hide(cover[0], secret[0]).shape == (3, h, w)


def test_untrained_residual_model_starts_near_the_cover() -> None:
    """Residual output initialised at "no change": a fresh model's stego is already close to the cover."""
    m = deepsteg.create_model("stegopnet").eval()
    cover = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        stego = m.hide(cover, torch.rand(1, 3, 32, 32))
    assert float(deepsteg.metrics.psnr(stego, cover)) > 30
    paper = deepsteg.create_model("stegopnet-paper").eval()
    with torch.no_grad():
        assert float(deepsteg.metrics.psnr(paper.hide(cover, cover), cover)) < 20  # sigmoid output is the stego


def test_bad_inputs_raise_model_errors() -> None:
    m = deepsteg.create_model("stegopnet").eval()
    with pytest.raises(ModelError, match="at least 16"):
        m.hide(torch.rand(1, 3, 1, 1), torch.rand(1, 3, 1, 1))
    with pytest.raises(ModelError, match="exactly 1"):
        m.hide(torch.rand(1, 3, 32, 32))
    with pytest.raises(ModelError, match="resize"):
        m.hide(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 48))
    with pytest.raises(ModelError, match="float"):
        m.hide(torch.zeros(1, 3, 32, 32, dtype=torch.uint8), torch.rand(1, 3, 32, 32))
    with pytest.raises(ModelError, match="channels"):
        m.hide(torch.rand(1, 3, 32, 32), torch.rand(1, 1, 32, 32))


def test_pad_to_multiple() -> None:
    x = torch.rand(1, 3, 17, 30)
    y, size = pad_to_multiple(x, 16)
    assert y.shape == (1, 3, 32, 32) and size == (17, 30) and torch.equal(y[..., :17, :30], x)
    tiny, _ = pad_to_multiple(torch.rand(1, 3, 2, 2), 16)
    assert tiny.shape == (1, 3, 16, 16)


def test_training_loss_is_eq_7() -> None:
    m = deepsteg.create_model("stegopnet", train_rounding="none")
    batch = {"cover": torch.rand(2, 3, 32, 32), "secrets": torch.rand(2, 1, 3, 32, 32)}
    loss, logs = m.training_losses(batch)
    assert loss.item() == pytest.approx(logs["l_hide"] + 0.6 * logs["l_reveal"], rel=1e-5)


def test_ragged_training_sees_what_hide_and_reveal_do() -> None:
    """``train_ragged``: each batch is cut to a size that is (usually) not a multiple of 16 and goes through the
    same reflect padding and cropping as hide and reveal, so the loss is exactly the inference path's."""
    from deepsteg.io import quantize

    m = deepsteg.create_model("stegopnet", train_ragged=True).eval()  # eval: BN statistics fixed, comparable
    cover, secret = torch.rand(2, 3, 48, 48), torch.rand(2, 3, 48, 48)
    torch.manual_seed(3)
    loss, logs = m.training_losses({"cover": cover, "secrets": secret[:, None]})
    torch.manual_seed(3)
    dh, dw = (int(v) for v in torch.randint(0, 16, (2,)))
    assert (dh, dw) != (0, 0)
    c, s = cover[..., :48 - dh, :48 - dw], secret[..., :48 - dh, :48 - dw]
    with torch.no_grad():
        stego = m.hide(c, s, tile=0)
        revealed = m.reveal(quantize(stego), tile=0)[0]
    assert logs["l_hide"] == pytest.approx(float(F.mse_loss(stego, c)), rel=1e-5)
    assert logs["l_reveal"] == pytest.approx(float(F.mse_loss(revealed, s)), rel=1e-5)
    loss.backward()  # the straight-through rounding and the crops pass gradients to both networks
    assert all(p.grad is not None for p in m.parameters() if p.requires_grad)
