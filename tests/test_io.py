"""Image I/O: every supported kind of file decodes to the right RGB values; writing rounds, clamps and is atomic."""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from deepsteg.errors import ImageReadError, ImageWriteError
from deepsteg.io import (DeepstegNotice, check_output_path, fit_to, probe_image, quantize, read_image, readable_images,
                         to_uint8, write_png)
from tests.conftest import natural_like


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _raw_png(width: int, height: int, bit_depth: int, colour_type: int, rows: bytes | None,
             extra: list[bytes] = ()) -> bytes:  # type: ignore[assignment]
    """A hand-made PNG (Pillow cannot write 48-bit RGB, and a bomb needs a header without pixels); ``extra``:
    whole chunks (type + data, as :func:`_png_chunks` gives them) put before the pixels."""
    out = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth,
                                                                  colour_type, 0, 0, 0))
    for c in extra:
        out += _png_chunk(c[:4], c[4:])
    if rows is not None:
        out += _png_chunk(b"IDAT", zlib.compress(rows))
    return out + _png_chunk(b"IEND", b"")


def _png_chunks(data: bytes) -> list[bytes]:
    """Every chunk of a PNG file as type + data."""
    out, i = [], 8
    while i < len(data):
        (n,) = struct.unpack(">I", data[i:i + 4])
        out.append(data[i + 4:i + 8 + n])
        i += 12 + n
    return out


def test_rgb_png_reads_exact_8bit_values(tmp_path: Path) -> None:
    arr = natural_like(9, 13)
    Image.fromarray(arr).save(tmp_path / "a.png")
    x = read_image(tmp_path / "a.png")
    assert x.shape == (3, 9, 13) and x.dtype == torch.float32
    assert torch.equal(to_uint8(x).permute(1, 2, 0), torch.from_numpy(arr))


@pytest.mark.parametrize("fmt,ext,exact", [("BMP", "bmp", True), ("TIFF", "tif", True), ("WEBP", "webp", True),
                                           ("JPEG", "jpg", False)])
def test_other_formats(tmp_path: Path, fmt: str, ext: str, exact: bool) -> None:
    arr = natural_like(16, 20)
    p = tmp_path / f"a.{ext}"
    Image.fromarray(arr).save(p, format=fmt, **({"quality": 95, "subsampling": 0} if fmt == "JPEG" else {"lossless": True} if fmt == "WEBP" else {}))
    x = to_uint8(read_image(p)).permute(1, 2, 0).numpy().astype(int)
    err = np.abs(x - arr.astype(int)).mean()
    assert err == 0 if exact else err < 6


def test_grey_and_palette_become_rgb(tmp_path: Path) -> None:
    grey = natural_like(8, 8)[..., 0]
    Image.fromarray(grey, "L").save(tmp_path / "g.png")
    x = to_uint8(read_image(tmp_path / "g.png"))
    assert x.shape == (3, 8, 8) and all(torch.equal(x[c], torch.from_numpy(grey)) for c in range(3))
    rgb = Image.fromarray(natural_like(8, 8))
    pal = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    pal.save(tmp_path / "p.png")
    want = np.asarray(pal.convert("RGB"))
    assert np.array_equal(to_uint8(read_image(tmp_path / "p.png")).permute(1, 2, 0).numpy(), want)


def test_rgba_drops_alpha_with_notice(tmp_path: Path) -> None:
    arr = natural_like(8, 8)
    rgba = np.dstack([arr, np.full((8, 8), 7, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    with pytest.warns(DeepstegNotice, match="alpha"):
        x = read_image(tmp_path / "a.png")
    assert np.array_equal(to_uint8(x).permute(1, 2, 0).numpy(), arr)


def test_16bit_grey_png(tmp_path: Path) -> None:
    vals = np.array([[0, 257, 65535], [32768, 1000, 60000]], dtype=np.uint16)
    Image.fromarray(vals).save(tmp_path / "g16.png")
    x = read_image(tmp_path / "g16.png")
    assert torch.allclose(x[0].double(), torch.from_numpy(vals / 65535.0), atol=1e-6)


def test_16bit_rgb_png(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    vals = rng.integers(0, 65536, (5, 7, 3), dtype=np.uint16)
    rows = b"".join(b"\x00" + vals[r].astype(">u2").tobytes() for r in range(5))
    (tmp_path / "rgb16.png").write_bytes(_raw_png(7, 5, 16, 2, rows))
    x = read_image(tmp_path / "rgb16.png").permute(1, 2, 0).double().numpy()
    assert np.abs(x - vals / 65535.0).max() < 1e-6  # every bit kept (Pillow alone keeps only the high byte)
    rgba = np.dstack([vals, np.full((5, 7), 65535, np.uint16)])
    rows = b"".join(b"\x00" + rgba[r].astype(">u2").tobytes() for r in range(5))
    (tmp_path / "rgba16.png").write_bytes(_raw_png(7, 5, 16, 6, rows))
    with pytest.warns(DeepstegNotice, match="alpha"):
        y = read_image(tmp_path / "rgba16.png").permute(1, 2, 0).double().numpy()
    assert np.abs(y - vals / 65535.0).max() < 1e-6


def test_16bit_pgm_keeps_its_scale_when_dark(tmp_path: Path) -> None:
    # Pillow opens 16-bit PGMs in mode "I"; a dark one (every value <= 255) was read as 8-bit, 257x too bright
    vals = np.array([[0, 100, 199], [255, 7, 64]], dtype=np.uint16)
    (tmp_path / "g.pgm").write_bytes(b"P5\n3 2\n65535\n" + vals.astype(">u2").tobytes())
    x = read_image(tmp_path / "g.pgm")
    assert torch.allclose(x[0].double(), torch.from_numpy(vals / 65535.0), atol=1e-6)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_of_16bit_colour_png_matches_pillow(tmp_path: Path, orientation: int) -> None:
    # 16-bit colour PNGs are decoded by pypng (every bit kept); their EXIF orientation must still apply, exactly as
    # Pillow's exif_transpose does for the same pixels in an 8-bit PNG
    rng = np.random.default_rng(orientation)
    vals = (rng.integers(0, 256, (5, 7, 3)) * 257).astype(np.uint16)  # 8-bit values: both files hold the same
    im8 = Image.fromarray((vals // 257).astype(np.uint8))
    exif = im8.getexif()
    exif[0x0112] = orientation
    im8.save(tmp_path / "o8.png", exif=exif.tobytes())
    chunks = _png_chunks((tmp_path / "o8.png").read_bytes())
    rows = b"".join(b"\x00" + vals[r].astype(">u2").tobytes() for r in range(5))
    raw = _raw_png(7, 5, 16, 2, rows, extra=[c for c in chunks if c[:4] == b"eXIf"])
    (tmp_path / "o16.png").write_bytes(raw)
    a, b = read_image(tmp_path / "o8.png"), read_image(tmp_path / "o16.png")
    assert a.shape == b.shape and torch.allclose(a, b, atol=1e-6)


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    arr = natural_like(10, 20)  # landscape pixels, EXIF says "rotate 90° CW" → portrait
    im = Image.fromarray(arr)
    exif = im.getexif()
    exif[0x0112] = 6
    im.save(tmp_path / "o.jpg", exif=exif.tobytes(), quality=95, subsampling=0)
    x = to_uint8(read_image(tmp_path / "o.jpg")).permute(1, 2, 0).numpy().astype(int)
    assert x.shape == (20, 10, 3)
    cw, ccw = np.rot90(arr, -1).astype(int), np.rot90(arr, 1).astype(int)
    assert np.abs(x - cw).mean() < 6 < np.abs(x - ccw).mean()  # rotated the right way


def test_quantize_is_the_png_round_trip(tmp_path: Path) -> None:
    x = torch.rand(3, 17, 23) * 1.2 - 0.1  # includes values outside [0, 1]
    write_png(x, tmp_path / "q.png")
    assert torch.equal(read_image(tmp_path / "q.png"), quantize(x))


def test_rounding_not_truncation_and_clamping(tmp_path: Path) -> None:
    vals = torch.tensor([100.6, 100.4, 100.5, 101.5, -3.0, 300.0, 254.7]) / 255
    x = vals.view(1, 1, -1).expand(3, 1, -1).clone()
    write_png(x, tmp_path / "r.png")
    got = np.asarray(Image.open(tmp_path / "r.png"))[0, :, 0].tolist()
    assert got == [101, 100, 100, 102, 0, 255, 255]  # round half to even, as torch.round


def test_straight_through_quantize_passes_gradient() -> None:
    x = torch.rand(4, requires_grad=True)
    quantize(x, straight_through=True).sum().backward()
    assert torch.equal(x.grad, torch.ones(4))


def test_write_is_atomic_and_leaves_no_temp_files(tmp_path: Path) -> None:
    write_png(torch.rand(3, 8, 8), tmp_path / "o.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.png"]
    assert oct(os.stat(tmp_path / "o.png").st_mode & 0o777) != oct(0o600)  # not mkstemp's private mode


def test_write_failure_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*a, **k):  # noqa: ANN002, ANN003
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", boom)
    with pytest.raises(ImageWriteError, match="No space"):
        write_png(torch.rand(3, 8, 8), tmp_path / "o.png")
    assert list(tmp_path.iterdir()) == []


def test_never_overwrites_an_input_unless_forced(tmp_path: Path) -> None:
    p = tmp_path / "in.png"
    Image.fromarray(natural_like(8, 8)).save(p)
    before = p.read_bytes()
    with pytest.raises(ImageWriteError, match="input"):
        write_png(torch.zeros(3, 8, 8), p, inputs=[p])
    assert p.read_bytes() == before
    write_png(torch.zeros(3, 8, 8), p, inputs=[p], force=True)
    assert p.read_bytes() != before


def test_output_path_errors(tmp_path: Path) -> None:
    with pytest.raises(ImageWriteError, match="does not exist"):
        check_output_path(tmp_path / "missing" / "o.png")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ImageWriteError):
        check_output_path(tmp_path / "file" / "o.png")
    with pytest.raises(ImageWriteError, match="PNG"):
        check_output_path(tmp_path / "o.jpg")
    with pytest.raises(ImageWriteError, match="directory"):
        check_output_path(tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write to read-only directories")
def test_unwritable_directory(tmp_path: Path) -> None:
    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(0o500)
    try:
        with pytest.raises(ImageWriteError, match="not writable"):
            write_png(torch.zeros(3, 8, 8), d / "o.png")
    finally:
        d.chmod(0o700)


def test_unwritable_filesystem_gives_clear_error() -> None:
    if not Path("/proc/self").exists():
        pytest.skip("needs /proc")
    with pytest.raises(ImageWriteError):
        write_png(torch.zeros(3, 8, 8), "/proc/deepsteg-test.png")


def test_read_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ImageReadError, match="no such file"):
        read_image(tmp_path / "nope.png")
    with pytest.raises(ImageReadError, match="directory"):
        read_image(tmp_path)
    (tmp_path / "t.txt").write_text("hello, not an image")
    with pytest.raises(ImageReadError, match="not an image"):
        read_image(tmp_path / "t.txt")
    buf = io.BytesIO()
    Image.fromarray(natural_like(64, 64)).save(buf, format="PNG")
    (tmp_path / "trunc.png").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(ImageReadError, match="truncated"):
        read_image(tmp_path / "trunc.png")


def test_probe_reads_the_header_only_and_refuses_what_read_image_refuses(tmp_path: Path) -> None:
    """probe_image is the cheap pre-check of folder commands: same errors as read_image for a non-image, a missing
    file or a bomb, the size for a good one; readable_images drops the refused with a notice naming each."""
    Image.fromarray(natural_like(24, 40)).save(tmp_path / "ok.png")
    assert probe_image(tmp_path / "ok.png") == (40, 24)
    (tmp_path / "t.jpg").write_text("hello, not an image")
    (tmp_path / "bomb.png").write_bytes(_raw_png(200_000, 200_000, 8, 2, None))
    for bad, msg in [("t.jpg", "not an image"), ("nope.png", "no such file"), ("bomb.png", "MP limit")]:
        with pytest.raises(ImageReadError, match=msg):
            probe_image(tmp_path / bad)
        with pytest.raises(ImageReadError, match=msg):
            read_image(tmp_path / bad)
    with pytest.warns(DeepstegNotice) as seen:
        kept = readable_images([tmp_path / "t.jpg", tmp_path / "ok.png", tmp_path / "bomb.png"])
    assert kept == [tmp_path / "ok.png"]
    assert [str(w.message).split(":")[0] for w in seen] == [str(tmp_path / "t.jpg"), str(tmp_path / "bomb.png")]
    assert all(str(w.message).endswith("; skipped") for w in seen)


def test_decompression_bomb_refused_before_decoding(tmp_path: Path) -> None:
    (tmp_path / "bomb.png").write_bytes(_raw_png(200_000, 200_000, 8, 2, None))
    with pytest.raises(ImageReadError, match="200000×200000 pixels .* MP limit"):
        read_image(tmp_path / "bomb.png")
    Image.fromarray(natural_like(40, 40)).save(tmp_path / "ok.png")
    with pytest.raises(ImageReadError, match="limit"):
        read_image(tmp_path / "ok.png", max_pixels=1000)


def test_max_pixels_variable_is_read_per_call_and_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """DEEPSTEG_MAX_PIXELS raises or lowers the ceiling; a malformed value is one clear error, not an import-time
    traceback in every command."""
    Image.fromarray(natural_like(40, 40)).save(tmp_path / "ok.png")
    monkeypatch.setenv("DEEPSTEG_MAX_PIXELS", "1_000")
    with pytest.raises(ImageReadError, match="limit"):
        read_image(tmp_path / "ok.png")
    monkeypatch.setenv("DEEPSTEG_MAX_PIXELS", "2000")
    assert read_image(tmp_path / "ok.png").shape == (3, 40, 40)
    for bad in ("lots", "-5", "0"):
        monkeypatch.setenv("DEEPSTEG_MAX_PIXELS", bad)
        with pytest.raises(ImageReadError, match="DEEPSTEG_MAX_PIXELS"):
            read_image(tmp_path / "ok.png")


def test_fit_to_resizes_with_notice_or_refuses() -> None:
    x = torch.rand(3, 20, 30)
    with pytest.warns(DeepstegNotice, match="resized"):
        y = fit_to(x, (16, 24))
    assert y.shape == (3, 16, 24) and 0 <= y.min() and y.max() <= 1
    with pytest.raises(ImageReadError, match="--fit"):
        fit_to(x, (16, 24), mode="error")
    assert fit_to(x, (20, 30)) is x


def test_list_images_recurses_and_sorts(tmp_path: Path) -> None:
    from deepsteg.io import list_images

    for rel in ["b.png", "a/c.png", "a/b.jpg", ".hidden/x.png", "notes.txt"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    assert [p.relative_to(tmp_path).as_posix() for p in list_images(tmp_path)] == ["a/b.jpg", "a/c.png", "b.png"]
    with pytest.raises(ImageReadError, match="no such directory"):
        list_images(tmp_path / "nope")
    # the same folder twice, or a sub-folder of one given: each file once (else evaluate pairs a file with itself)
    twice = list_images(tmp_path, Path(str(tmp_path) + "/./"), tmp_path / "a")
    assert [p.relative_to(tmp_path).as_posix() for p in twice] == ["a/b.jpg", "a/c.png", "b.png"]


def test_animation_and_out_of_range_float_images_say_what_they_lose(tmp_path: Path) -> None:
    frames = [Image.fromarray(natural_like(8, 8, seed=i)) for i in range(3)]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
    with pytest.warns(DeepstegNotice, match="3 frames or pages; only the first"):
        x = read_image(tmp_path / "a.gif")
    assert x.shape == (3, 8, 8)
    Image.fromarray(np.full((4, 4), 200.0, np.float32), mode="F").save(tmp_path / "f.tif")
    with pytest.warns(DeepstegNotice, match=r"values in \[200, 200\] clipped"):
        assert float(read_image(tmp_path / "f.tif").min()) == 1.0


def test_concurrent_reads_leave_pillows_limit_in_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """read_image lifts Pillow's global pixel limit for the header parse only; threads reading at once must not
    save each other's lifted value and leave it lifted (Pillow's bomb check then off for the whole process)."""
    import threading
    import time

    import deepsteg.io as dio

    path = tmp_path / "a.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(path)
    real_open = dio.Image.open

    def slow_open(*a, **kw):  # noqa: ANN002, ANN003, ANN202 - widen the window in which the limit is lifted
        time.sleep(0.002)
        return real_open(*a, **kw)

    monkeypatch.setattr(dio.Image, "open", slow_open)
    before = Image.MAX_IMAGE_PIXELS
    threads = [threading.Thread(target=lambda: [read_image(path) for _ in range(15)]) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert Image.MAX_IMAGE_PIXELS == before is not None
