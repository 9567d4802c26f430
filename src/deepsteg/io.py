"""Files ↔ tensors. The only place where images are decoded, rounded to 8 bits and written.

Inside the library an image is an NCHW (or CHW) float tensor in [0, 1]. :func:`quantize` is *the* definition of
"after saving an 8-bit PNG": every evaluation uses it, and :func:`write_png` writes exactly its values, so a
figure computed on ``quantize(stego)`` is the figure a receiver of the PNG file gets.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor

from deepsteg.errors import ImageReadError, ImageWriteError

#: Formats deepsteg decodes; anything else is refused before a decoder runs.
READ_FORMATS = ("PNG", "JPEG", "BMP", "WEBP", "TIFF", "GIF", "PPM")
#: Default ceiling on decoded pixels, to refuse decompression bombs before allocating them (≈ 16k × 16k);
#: ``DEEPSTEG_MAX_PIXELS`` overrides it (read when an image is read, so a bad value is one clear error).
MAX_PIXELS = 268_435_456


def _max_pixels() -> int:
    v = os.environ.get("DEEPSTEG_MAX_PIXELS", "").strip()
    if not v:
        return MAX_PIXELS
    try:
        n = int(v.replace("_", ""))
    except ValueError:
        n = 0
    if n <= 0:
        raise ImageReadError(f"DEEPSTEG_MAX_PIXELS={v!r}: give a positive whole number of pixels")
    return n


_UMASK = os.umask(0)
os.umask(_UMASK)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".ppm", ".pgm")


class DeepstegNotice(UserWarning):
    """Something was changed on the user's behalf (alpha dropped, secret resized, colour made grey)."""


def notice(message: str) -> None:
    """Tell the user about an automatic conversion (printed as one line by the CLI)."""
    warnings.warn(message, DeepstegNotice, stacklevel=3)


def quantize(x: Tensor, straight_through: bool = False) -> Tensor:
    """Round to the 8-bit grid exactly as :func:`write_png` will (round half to even, clamp to [0, 1]).

    With ``straight_through=True`` the forward pass is rounded and the gradient passes unchanged, so a
    network can be trained on the stego that a PNG file will really hold.
    """
    x = x.float().clamp(0.0, 1.0)  # fp32: bf16 cannot hold the 8-bit grid
    q = torch.round(x * 255.0) / 255.0
    return x + (q - x).detach() if straight_through else q


def to_uint8(x: Tensor) -> Tensor:
    """Float [0, 1] → uint8, rounding (never truncating) as :func:`quantize` does (one float temporary)."""
    return x.detach().float().clamp(0.0, 1.0).mul_(255.0).round_().to(torch.uint8)


def _to_rgb_array(im: Image.Image, name: str, fmt: str | None = None) -> np.ndarray:
    """Decode any PIL mode to an H×W×3 float32 array in [0, 1] (``fmt``: the file's format, which decides the
    peak of Pillow's ambiguous 32-bit mode "I")."""
    mode = im.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in im.info):
        notice(f"{name}: alpha channel dropped (deepsteg hides in RGB only)")
        im = im.convert("RGBA").convert("RGB") if mode != "LA" else im.convert("L")
        mode = im.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        arr = np.asarray(im, dtype=np.float64)
        if mode != "I" or fmt in ("PNG", "PPM"):  # Pillow scales 16-bit PGMs (any maxval > 255) to 0-65535
            peak = 65535.0
        else:  # a 32-bit integer TIFF says nothing of its range: guess from the data, and say so
            peak = 65535.0 if arr.max(initial=0) > 255 else 255.0
            notice(f"{name}: 32-bit integer image read as {'16' if peak > 255 else '8'}-bit (from its largest "
                   "value)")
        grey = np.clip(arr / peak, 0.0, 1.0).astype(np.float32)
        return np.repeat(grey[..., None], 3, axis=2)
    if mode == "F":
        arr = np.asarray(im, dtype=np.float32)
        if arr.size and (arr.min() < 0.0 or arr.max() > 1.0):  # e.g. a float TIFF holding 0–255
            notice(f"{name}: float image with values in [{arr.min():g}, {arr.max():g}] clipped to [0, 1]")
        grey = np.clip(arr, 0.0, 1.0)
        return np.repeat(grey[..., None], 3, axis=2)
    if mode != "RGB":
        im = im.convert("RGB")  # 1, L, P, CMYK, YCbCr, LAB, HSV
    arr = np.asarray(im, dtype=np.uint8).astype(np.float32)
    arr /= 255.0  # in place: one float copy of a 12-MP photo is already 150 MB
    return arr


def _png_16bit_colour(p: Path) -> bool:
    """True for 16-bit RGB/RGBA/grey+alpha PNGs, which Pillow truncates to their high byte."""
    with open(p, "rb") as f:
        head = f.read(26)
    return head[:8] == b"\x89PNG\r\n\x1a\n" and head[24] == 16 and head[25] in (2, 4, 6)


def _read_png16(p: Path, name: str) -> np.ndarray:
    import png  # pypng: reads every bit of 16-bit colour PNGs

    w, h, rows, info = png.Reader(filename=str(p)).asDirect()
    planes = info["planes"]
    arr = np.vstack([np.asarray(r, dtype=np.uint16) for r in rows]).reshape(h, w, planes).astype(np.float32) / 65535
    if info["alpha"]:
        notice(f"{name}: alpha channel dropped (deepsteg hides in RGB only)")
        arr = arr[..., :-1]
    return np.repeat(arr, 3, axis=2) if arr.shape[2] == 1 else arr


def _exif_orient(arr: np.ndarray, im: Image.Image, name: str) -> np.ndarray:
    """EXIF orientation on an array (the 16-bit colour path decodes with pypng, past ImageOps.exif_transpose)."""
    try:
        o = im.getexif().get(0x0112, 1)
    except Exception:
        notice(f"{name}: unreadable EXIF orientation ignored")
        return arr
    # the same operations as PIL.ImageOps.exif_transpose, on an H×W×C array
    ops = {2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
           5: lambda a: a.transpose(1, 0, 2), 6: lambda a: np.rot90(a, -1), 7: lambda a: np.rot90(a, -1)[::-1],
           8: lambda a: np.rot90(a, 1)}
    return np.ascontiguousarray(ops[o](arr)) if o in ops else arr


_PIL_LIMIT_LOCK = threading.Lock()


def _open_unlimited(p: Path) -> Image.Image:
    """``Image.open`` with Pillow's own pixel limit lifted for the header parse only, so that our limit decides
    (with its hint). Pillow keeps the limit in a module global: the lock keeps concurrent reads from saving each
    other's ``None`` and leaving it lifted for good, and the global is back before any pixel is decoded."""
    with _PIL_LIMIT_LOCK:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            return Image.open(p, formats=READ_FORMATS)
        finally:
            Image.MAX_IMAGE_PIXELS = saved


@contextlib.contextmanager
def _read_errors(p: Path) -> Iterator[None]:
    """Turn every way a file can fail to decode (Pillow raises a dozen types) into one clear ImageReadError."""
    if not p.exists():
        raise ImageReadError(f"{p}: no such file")
    if p.is_dir():
        raise ImageReadError(f"{p}: is a directory, not an image")
    try:
        yield
    except ImageReadError:
        raise
    except Image.DecompressionBombError as e:
        raise ImageReadError(f"{p}: refused as a decompression bomb ({e})") from None
    except UnidentifiedImageError:
        raise ImageReadError(f"{p}: not an image deepsteg can read ({', '.join(READ_FORMATS)})") from None
    except PermissionError:
        raise ImageReadError(f"{p}: permission denied") from None
    except Exception as e:  # OSError, SyntaxError, ValueError, zlib/png errors from broken files
        raise ImageReadError(f"{p}: truncated or corrupt image ({e})") from None


@contextlib.contextmanager
def _open_checked(p: Path, max_pixels: int | None) -> Iterator[Image.Image]:
    """The opened image, its header checked against the pixel limit; any failure inside is an ImageReadError."""
    limit = _max_pixels() if max_pixels is None else max_pixels
    with _read_errors(p), _open_unlimited(p) as im:
        w, h = im.size
        if w * h > limit:
            raise ImageReadError(
                f"{p}: declares {w}×{h} pixels ({w * h / 1e6:.0f} MP), over the {limit / 1e6:.0f} MP limit "
                "(a decompression bomb or a mistake; raise DEEPSTEG_MAX_PIXELS if it is real)"
            )
        yield im


def probe_image(path: str | os.PathLike[str], max_pixels: int | None = None) -> tuple[int, int]:
    """``(width, height)`` from the file's header alone, or :class:`ImageReadError` as :func:`read_image` would
    raise it. Folder commands call it first, so that a stray non-image is skipped before pairing, not met (and
    fatal) halfway through a long run; a file whose header is fine but whose pixels are truncated still fails
    in :func:`read_image`."""
    p = Path(path)
    with _open_checked(p, max_pixels) as im:
        w, h = im.size
    if w == 0 or h == 0:
        raise ImageReadError(f"{p}: image has no pixels")
    return w, h


def readable_images(files: Iterable[Path]) -> list[Path]:
    """``files`` less those :func:`probe_image` refuses, each refusal told as a notice ("…; skipped")."""
    ok: list[Path] = []
    for f in files:
        try:
            probe_image(f)
        except ImageReadError as e:
            notice(f"{e}; skipped")
            continue
        ok.append(f)
    return ok


def read_image(path: str | os.PathLike[str], max_pixels: int | None = None) -> Tensor:
    """Read an image file as a 3×H×W float32 RGB tensor in [0, 1].

    Grey, palette and 16-bit images become RGB; alpha is dropped with a notice; EXIF orientation is applied.
    Raises :class:`ImageReadError` (one clear sentence) for a missing, truncated, unknown or oversized file.
    """
    p = Path(path)
    with _open_checked(p, max_pixels) as im:
        fmt = im.format
        if getattr(im, "n_frames", 1) > 1:  # animated GIF/WebP/PNG, multi-page TIFF
            notice(f"{p.name}: {im.n_frames} frames or pages; only the first is used")
        if fmt == "PNG" and _png_16bit_colour(p):
            arr = _exif_orient(_read_png16(p, p.name), im, p.name)
        else:
            im.load()
            try:
                im = ImageOps.exif_transpose(im)
            except Exception:  # malformed EXIF must not make a readable image unreadable
                notice(f"{p.name}: unreadable EXIF orientation ignored")
            arr = _to_rgb_array(im, p.name, fmt)
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ImageReadError(f"{p}: image has no pixels")
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_output_path(
    path: str | os.PathLike[str], inputs: Iterable[str | os.PathLike[str]] = (), force: bool = False,
    suffixes: tuple[str, ...] = (".png",),
) -> Path:
    """Validate an output path before any work is done, so a bad ``-o`` fails fast and writes nothing."""
    out = Path(path)
    if out.is_dir():
        raise ImageWriteError(f"{out}: is a directory; give a file name")
    if suffixes and out.suffix.lower() not in suffixes:
        if suffixes == (".png",):
            raise ImageWriteError(f"{out}: stego and revealed images are saved as lossless PNG; use a .png name "
                                  "(JPEG and other lossy formats destroy hidden data)")
        raise ImageWriteError(f"{out}: use a file name ending in {' or '.join(suffixes)}")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise ImageWriteError(f"{out}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise ImageWriteError(f"{out}: directory {parent} is not writable")
    if not force:
        for inp in inputs:
            if _same_file(out, Path(inp)):
                raise ImageWriteError(f"{out}: is one of the inputs; refusing to overwrite it (use --force)")
    return out


def atomic_write_bytes(path: str | os.PathLike[str], write) -> None:  # noqa: ANN001 - callable(file)
    """Write through a temporary file in the same directory, fsync, then rename over ``path``.

    Readers never see a half-written file, and an error leaves nothing behind.
    """
    out = Path(path)
    name = out.name
    if len(os.fsencode(name)) > 200:  # ".NAME.XXXXXXXX.tmp" must fit NAME_MAX (255 bytes) whenever NAME does
        name = os.fsencode(out.stem)[:180].decode("utf-8", "ignore") + out.suffix[:16]  # keeps batch's pattern
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=out.parent if str(out.parent) else ".")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; outputs get the usual permissions
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, out)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_png(
    image: Tensor, path: str | os.PathLike[str], *, inputs: Iterable[str | os.PathLike[str]] = (),
    force: bool = False, compress_level: int = 6,
) -> Path:
    """Save a [0, 1] float (or uint8) CHW/1CHW tensor as an 8-bit RGB (or grey) PNG, atomically.

    Values are rounded and clamped exactly as :func:`quantize`; ``inputs`` are never overwritten unless
    ``force``.
    """
    out = check_output_path(path, inputs, force)
    if image.dim() == 4:
        if image.shape[0] != 1:
            raise ImageWriteError(f"{out}: expected one image, got a batch of {image.shape[0]}")
        image = image[0]
    if image.dim() != 3 or image.shape[0] not in (1, 3):
        raise ImageWriteError(f"{out}: expected a 1×H×W or 3×H×W tensor, got {tuple(image.shape)}")
    u8 = image if image.dtype == torch.uint8 else to_uint8(image)
    arr = u8.cpu().permute(1, 2, 0).numpy()
    im = Image.fromarray(arr[..., 0], "L") if arr.shape[2] == 1 else Image.fromarray(np.ascontiguousarray(arr), "RGB")
    try:
        atomic_write_bytes(out, lambda f: im.save(f, format="PNG", compress_level=compress_level))
    except OSError as e:
        raise ImageWriteError(f"{out}: cannot write ({e.strerror or e})") from None
    return out


def fit_to(image: Tensor, size: tuple[int, int], mode: str = "resize", what: str = "secret") -> Tensor:
    """Make ``image`` (CHW/NCHW) ``size`` = (H, W): resize with antialiasing and a notice, or refuse.

    Used for a secret whose size differs from the cover's (``--fit resize|error``).
    """
    h, w = image.shape[-2:]
    if (h, w) == tuple(size):
        return image
    if mode == "error":
        raise ImageReadError(f"{what} is {w}×{h} but the cover is {size[1]}×{size[0]} (use --fit resize to resize it)")
    if mode != "resize":
        raise ValueError(f"fit mode must be 'resize' or 'error', not {mode!r}")
    notice(f"{what} resized from {w}×{h} to the cover's {size[1]}×{size[0]}")
    x = image.unsqueeze(0) if image.dim() == 3 else image
    y = F.interpolate(x, size=tuple(size), mode="bicubic", align_corners=False, antialias=True).clamp(0.0, 1.0)
    return y[0] if image.dim() == 3 else y


def to_grey(x: Tensor) -> Tensor:
    """RGB → luma (ITU-R BT.601, the Y of YCbCr) as a 1-channel image."""
    r, g, b = x.unbind(-3)
    return (0.299 * r + 0.587 * g + 0.114 * b).unsqueeze(-3)


def list_images(*folders: str | os.PathLike[str]) -> list[Path]:
    """All image files in ``folders`` and their sub-folders (hidden ones skipped), sorted by path relative to
    their folder — for a flat folder, by file name (the order ``evaluate`` pairs by)."""
    files: list[Path] = []
    seen: set[Path] = set()  # a folder given twice (`--data d --data ./d`) or nested: each file once
    for folder in folders:
        d = Path(folder)
        if not d.is_dir():
            raise ImageReadError(f"{d}: no such directory")
        found = [p for p in d.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                 and not any(part.startswith(".") for part in p.relative_to(d).parts)]
        for p in sorted(found, key=lambda p: p.relative_to(d).as_posix()):
            real = p.resolve()
            if real not in seen:
                seen.add(real)
                files.append(p)
    return files
