"""The ``deepsteg`` command: a thin shell over the Python API, one function per verb.

User mistakes (missing or broken files, bad options, unknown models) end in one line on stderr and a non-zero
exit, never a traceback, and never leave a partial output file (outputs are written atomically, and every
output path is checked before any work starts). Set ``DEEPSTEG_DEBUG=1`` to see tracebacks.
"""

from __future__ import annotations

import json
import os
import sys
import time
import warnings
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from deepsteg.errors import DeepstegError
from deepsteg.io import DeepstegNotice

app = typer.Typer(
    help="Deep-learning image steganography: hide images in images, reveal them, train and evaluate models.",
    add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None,
)

EXIT_USER_ERROR = 1
EXIT_INTERNAL = 3
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a writer whose reader closed the pipe


def _err(msg: str) -> None:
    print(f"deepsteg: error: {msg}", file=sys.stderr)


def _show_notice(message: Any, category: type[Warning], filename: str, lineno: int, file: Any = None,
                 line: Any = None) -> None:
    if issubclass(category, DeepstegNotice):
        print(f"deepsteg: note: {message}", file=sys.stderr)
    else:
        _orig_showwarning(message, category, filename, lineno, file, line)


_orig_showwarning = warnings.showwarning


def _quiet_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's final flush cannot fail on the closed pipe again."""
    try:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


@contextmanager
def _user_errors():  # noqa: ANN202 - context manager
    """Turn deepsteg's errors (and OS errors about files) into one line and exit code 1."""
    warnings.showwarning = _show_notice
    warnings.simplefilter("always", DeepstegNotice)
    try:
        yield
    except typer.Exit:
        raise
    except DeepstegError as e:
        if os.environ.get("DEEPSTEG_DEBUG"):
            raise
        _err(str(e))
        raise typer.Exit(EXIT_USER_ERROR) from None
    except BrokenPipeError:  # `deepsteg card … | head -1`: the reader has gone; not an error worth a message
        _quiet_stdout()
        raise typer.Exit(EXIT_BROKEN_PIPE) from None
    except OSError as e:
        if os.environ.get("DEEPSTEG_DEBUG"):
            raise
        if e.filename is None and not isinstance(e, (FileNotFoundError, PermissionError)):
            _err(f"internal error: OSError: {e} (set DEEPSTEG_DEBUG=1 for the traceback)")
            raise typer.Exit(EXIT_INTERNAL) from None
        _err(f"{e.filename or ''}: {e.strerror or e}".lstrip(": "))
        raise typer.Exit(EXIT_USER_ERROR) from None
    except KeyboardInterrupt:
        _err("interrupted")
        raise typer.Exit(130) from None
    except Exception as e:  # a bug, not a user mistake: still one line, with a way to see more
        if os.environ.get("DEEPSTEG_DEBUG"):
            raise
        _err(f"internal error: {type(e).__name__}: {e} (set DEEPSTEG_DEBUG=1 for the traceback)")
        raise typer.Exit(EXIT_INTERNAL) from None


def _load_model(name: str, weights: Optional[Path], device: str):  # noqa: ANN202
    import torch

    from deepsteg.zoo import DEFAULT_MODEL, create_model

    if not name:  # --weights DIR names its model in config.json; otherwise the default model
        name = (_weights_model(weights) if weights is not None else "") or DEFAULT_MODEL
    dev = _device(device)
    model = create_model(name, pretrained=weights is None, weights=weights)
    model = model.to(dev).eval()
    if dev.type == "cpu" or dev.type == "cuda":
        model = model.to(memory_format=torch.channels_last)  # ~2× faster convolutions on CPU (oneDNN)
    return model, dev


def _device(device: str):  # noqa: ANN202
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise DeepstegError("--device cuda asked for, but PyTorch sees no CUDA GPU")
    try:
        return torch.device(device)
    except RuntimeError:
        raise DeepstegError(f"unknown device {device!r} (use cpu, cuda or auto)") from None


ModelOpt = Annotated[str, typer.Option("--model", "-m", help="Registered model name (see `deepsteg models`).")]
WeightsOpt = Annotated[Optional[Path], typer.Option(help="Folder with model.safetensors + config.json "
                                                         "(e.g. a training run's best/); default: shipped weights.")]
DeviceOpt = Annotated[str, typer.Option(help="cpu, cuda or auto.")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Allow the output to overwrite an input file.")]
TileOpt = Annotated[Optional[int], typer.Option(help="Tile size for large images (0: whole image; default: "
                                                     "automatic — whole up to the model's limit, then tiles).")]
CoverPsnrOpt = Annotated[Optional[float], typer.Option(
    "--cover-psnr", help="With refinement: keep every stego's cover PSNR (dB, 8-bit) at least this instead of the "
                         "network's own; lower spends more on the secret, higher gives a cleaner cover.")]


def _peak_mb() -> str:
    import resource

    import torch

    s = f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
    if torch.cuda.is_available() and torch.cuda.max_memory_allocated():
        s += f", GPU {torch.cuda.max_memory_allocated() / 2**20:.0f} MB"
    return s


def _default_model() -> str:
    from deepsteg.zoo import DEFAULT_MODEL

    return DEFAULT_MODEL


PASSPHRASE_ENV = "DEEPSTEG_PASSPHRASE"
PassOpt = Annotated[Optional[str], typer.Option(
    "--passphrase",
    help="Encrypt/decrypt the hidden file with this passphrase (AES-256-GCM, scrypt key; the bits are also "
         "scattered by it), or the key of a keyed image model. Safer from the environment variable "
         "DEEPSTEG_PASSPHRASE than on the command line.")]


def _env_passphrase() -> Optional[str]:
    """``DEEPSTEG_PASSPHRASE``: the passphrase of files, text and keyed models when --passphrase is not given.

    Read here rather than as the option's ``envvar``: a user who exports it for files must still be able to hide
    and reveal images with models that take no key, which an explicit --passphrase rightly refuses."""
    return os.environ.get(PASSPHRASE_ENV) or None


def _check_passphrase(passphrase: Optional[str]) -> Optional[str]:
    """An explicit ``--passphrase ""`` (an unset ``--passphrase "$P"``) is a mistake: it must not quietly mean
    "no passphrase" and store the data unencrypted."""
    if passphrase == "":
        raise DeepstegError("--passphrase is empty: give a passphrase, or leave the option out")
    return passphrase


def _message_candidates() -> list[str]:
    """Message models a plain ``reveal`` looks for a hidden file with: the default first, then every other one
    that is ready to use (a file hidden with ``--model lsb-bits`` is found without naming the model)."""
    from deepsteg.zoo import DEFAULT_MESSAGE_MODEL, get_entry, list_models

    others = [n for n in list_models(pretrained=True) if "message" in get_entry(n).tags and n != DEFAULT_MESSAGE_MODEL]
    return [DEFAULT_MESSAGE_MODEL, *others]


def _read_payload(file: Path) -> bytes:
    """The file to hide, read up to the container's limit (not a device such as /dev/zero until memory runs out)."""
    from deepsteg.payload.container import MAX_SIZE

    if file.is_dir():
        raise DeepstegError(f"{file}: is a directory; hide one file (e.g. a .zip or .tar of the folder)")
    with open(file, "rb") as f:
        data = f.read(MAX_SIZE + 1)
    if len(data) > MAX_SIZE:
        raise DeepstegError(f"{file}: over the {MAX_SIZE:,}-byte limit of a hidden file")
    return data


def _encode_text(text: str) -> bytes:
    """--text as bytes: UTF-8, and on a non-UTF-8 command line the user's exact bytes (Python hands them over as
    surrogate escapes, which plain ``encode()`` refuses)."""
    return text.encode("utf-8", "surrogateescape")


def _model_key(net: Any, passphrase: Optional[str]) -> Optional[str]:
    """The key an image model is run with: a keyed model's passphrase (--passphrase, else DEEPSTEG_PASSPHRASE);
    for any other model only an explicit --passphrase, passed on so that it is refused, never the variable."""
    return (passphrase or _env_passphrase()) if getattr(net, "keyed", False) else passphrase


def _message_model(name: str, weights: Optional[Path], device: str):  # noqa: ANN202
    """The message model for --file/--text: the library's default unless --model/--weights name another."""
    from deepsteg.models.message import MessageModel
    from deepsteg.zoo import DEFAULT_MESSAGE_MODEL, get_entry

    name = name or (_weights_model(weights) if weights is not None else "") or DEFAULT_MESSAGE_MODEL
    if "message" not in get_entry(name).tags:
        raise DeepstegError(f"{name} hides images, not files; leave out --model for --file/--text (the default "
                            f"is {DEFAULT_MESSAGE_MODEL}) or name a message model (see `deepsteg models`)")
    net, dev = _load_model(name, weights, device)
    assert isinstance(net, MessageModel)
    return net, dev


def _weights_model(weights: Path) -> str:
    cfg = (weights.parent if weights.is_file() else weights) / "config.json"
    try:
        return json.loads(cfg.read_text()).get("model", "") if cfg.is_file() else ""
    except json.JSONDecodeError:
        raise DeepstegError(f"{cfg}: not valid JSON") from None


def _hide_bytes(cover: Path, data: bytes, what: str, output: Path, passphrase: Optional[str], model: str,
                weights: Optional[Path], device: str, force: bool) -> None:
    import torch

    from deepsteg import metrics
    from deepsteg.io import quantize, read_image, write_png
    from deepsteg.payload import capacity_bytes, hide_bytes

    c = read_image(cover)
    net, dev = _message_model(model, weights, device)
    if min(c.shape[-2:]) < net.min_size:
        raise DeepstegError(f"{cover}: cover is {c.shape[-1]}×{c.shape[-2]} pixels; {net.model_name} needs at "
                            f"least {net.min_size}×{net.min_size}")
    t0 = time.perf_counter()
    with torch.inference_mode():
        stego = hide_bytes(net, c.to(dev), data, passphrase or None).cpu()
    dt = time.perf_counter() - t0
    write_png(stego, output, inputs=[cover], force=force)
    cap = capacity_bytes(net, *c.shape[-2:], passphrase)
    q = quantize(stego[None])
    print(f"{output}: {what} ({len(data)} bytes{', encrypted' if passphrase else ''}) hidden with "
          f"{net.model_name}; capacity {cap} bytes; cover PSNR {float(metrics.psnr(q, c[None])):.2f} dB after "
          f"8-bit rounding ({dt * 1000:.0f} ms)")


@app.command()
def hide(
    cover: Annotated[Path, typer.Argument(help="Cover image (PNG, JPEG, BMP, WebP, TIFF, …).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Stego image to write (.png).")],
    secrets: Annotated[Optional[list[Path]], typer.Argument(
        help="Secret image(s) to hide in the cover (or use --file / --text).")] = None,
    file: Annotated[Optional[Path], typer.Option("--file", help="Hide this file's exact bytes (any type).")] = None,
    text: Annotated[Optional[str], typer.Option("--text", help="Hide this text (UTF-8).")] = None,
    passphrase: PassOpt = None,
    model: ModelOpt = "",
    fit: Annotated[str, typer.Option(help="Secret of another size than the cover: resize (with a notice) "
                                          "or error.")] = "resize",
    weights: WeightsOpt = None,
    device: DeviceOpt = "auto",
    force: ForceOpt = False,
    tile: TileOpt = None,
    refine: Annotated[str, typer.Option(
        "--refine", help="Optimise the stego for the model's own revealer for N steps (the cover distortion kept "
                         "within the network's; README 'Refinement'). auto: steps for about half a minute on a CPU "
                         "- StegoPNet: 50 at 0.5 MP, 200 at 256x256, 20 at 1.3 MP, none above, with a notice (on a "
                         "GPU: 50 at 1 MP) - 0: the network alone.")] =
    "auto",
    cover_psnr: CoverPsnrOpt = None,
) -> None:
    """Hide SECRETS (images), or a file or text (--file, --text), inside COVER; save the stego as an 8-bit PNG."""
    with _user_errors():
        import torch

        from deepsteg import metrics
        from deepsteg.io import check_output_path, fit_to, quantize, read_image, write_png

        secrets = secrets or []
        passphrase = _check_passphrase(passphrase)
        if (file is not None) + (text is not None) + bool(secrets) != 1:
            raise DeepstegError("give exactly one thing to hide: secret image(s), --file PAYLOAD or --text TEXT")
        if file is not None or text is not None:
            if cover_psnr is not None or refine.strip().lower() not in ("auto", "0"):
                raise DeepstegError("--refine and --cover-psnr apply to secret images; files and text are hidden "
                                    "as bits by a message model, which is not refined")
            check_output_path(output, [cover] + ([file] if file is not None else []), force)
            data = _read_payload(file) if file is not None else _encode_text(text)  # type: ignore[arg-type]
            what = f"file {file.name}" if file is not None else "text"
            _hide_bytes(cover, data, what, output, passphrase or _env_passphrase(), model, weights, device, force)
            return
        if fit not in ("resize", "error"):
            raise DeepstegError(f"--fit must be resize or error, not {fit!r}")
        inputs = [cover, *secrets]
        check_output_path(output, inputs, force)
        c = read_image(cover)  # read every input before loading a model: bad files fail fast
        raw = [read_image(p) for p in secrets]
        net, dev = _load_model(model, weights, device)
        if not hasattr(net, "hide"):
            raise DeepstegError(f"{net.model_name} hides files and text, not images; use --file or --text")
        if passphrase and not net.keyed:
            raise DeepstegError(f"{net.model_name} takes no passphrase: --passphrase protects files and text "
                                "(--file/--text) and keyed image models (e.g. isn-keyed)")
        for p, x, what in [(cover, c, "cover"), *[(q, r, "secret") for q, r in zip(secrets, raw)]]:
            if min(x.shape[-2:]) < net.min_size:  # a secret too: a 1×1 "image" is a mistake, not one to upscale
                raise DeepstegError(f"{p}: {what} is {x.shape[-1]}×{x.shape[-2]} pixels; {net.model_name} needs "
                                    f"at least {net.min_size}×{net.min_size}")
        key = _model_key(net, passphrase)
        ss = []
        for p, s in zip(secrets, raw):
            if net.secret_channels == 1 and s.shape[0] == 3:
                from deepsteg.io import notice

                notice(f"{p.name}: {net.model_name} hides a grey secret; colour converted to grey (BT.601 luma)")
                s = net.as_secret(s)
            ss.append(fit_to(s, tuple(c.shape[-2:]), fit, what=f"secret {p.name}"))
        from deepsteg.refine import check_cover_psnr, check_refinable

        if cover_psnr is not None:  # its range and the model first, then whether there will be steps
            check_cover_psnr(cover_psnr, 1)
            check_refinable(net, 1)
        steps = _refine_steps(refine, net, c, dev, needed=cover_psnr is not None)
        check_cover_psnr(cover_psnr, steps)
        cover_d, secrets_d = c[None].to(dev), [s[None].to(dev) for s in ss]
        t0 = time.perf_counter()
        with torch.inference_mode():
            stego = net.hide(cover_d, *secrets_d, tile=tile, key=key)
        dt = time.perf_counter() - t0
        info = None
        if steps:
            from deepsteg.refine import refine as refine_stego

            t1 = time.perf_counter()
            stego, info = refine_stego(net, cover_d, secrets_d, stego, steps, key=key, tile=tile,
                                       cover_psnr=cover_psnr)
            dt_refine = time.perf_counter() - t1
        stego = stego.cpu()
        write_png(stego[0], output, inputs=inputs, force=force)
        q = quantize(stego)
        print(f"{output}: {c.shape[-1]}×{c.shape[-2]} stego from {net.model_name}, cover PSNR "
              f"{float(metrics.psnr(q, c[None])):.2f} dB after 8-bit rounding ({dt * 1000:.0f} ms, {_peak_mb()})")
        if info is not None:
            print(f"  refined {steps} steps ({dt_refine:.1f} s): revealed secret {info['secret_psnr_after'][0]:.2f} dB "
                  f"(the network alone: {info['secret_psnr_before'][0]:.2f} dB)")


def _refine_steps(value: str, net, cover, dev, needed: bool = False) -> int:  # noqa: ANN001 - model, tensor, device
    """--refine: 'auto' (:func:`deepsteg.refine.auto_steps`: about half a minute's steps for images up to the
    largest the model refines so on this device; 0 with a notice above it, or an error when ``needed`` by
    --cover-psnr), or a number of steps."""
    from deepsteg.refine import DEFAULT_STEPS, auto_steps, check_refinable

    v = value.strip().lower()
    if v == "auto":
        steps, limit = auto_steps(net, cover.shape[-2], cover.shape[-1], dev.type == "cuda")
        if steps or not limit:
            return steps
        if needed:
            raise DeepstegError(f"--cover-psnr is kept by refinement, and {cover.shape[-1]}×{cover.shape[-2]} is over "
                                f"the {limit / 1e6:.2f} MP that {net.model_name} refines by default on this device: "
                                "give --refine N")
        from deepsteg.io import notice

        notice(f"{cover.shape[-1]}×{cover.shape[-2]} is over the {limit / 1e6:.2f} MP that {net.model_name} refines "
               f"by default on this device: the stego is the network's alone (--refine {DEFAULT_STEPS} refines it "
               "anyway; each step costs one reveal forward and backward of the whole image)")
        return 0
    try:
        steps = int(v)
    except ValueError:
        raise DeepstegError(f"--refine must be auto or a number of steps, not {value!r}") from None
    check_refinable(net, steps)
    return steps


@app.command()
def reveal(
    stego: Annotated[Path, typer.Argument(help="Stego image (the PNG written by `deepsteg hide`).")],
    output: Annotated[str, typer.Option("--output", "-o", help="Revealed image (.png); for several hidden "
                                                              "images use {i} in the name (out_{i}.png).")],
    passphrase: PassOpt = None,
    model: ModelOpt = "",
    weights: WeightsOpt = None,
    device: DeviceOpt = "auto",
    force: ForceOpt = False,
    tile: TileOpt = None,
) -> None:
    """Reveal the hidden image(s) from STEGO, or the exact file or text hidden with --file/--text.

    Without --model, a hidden file is looked for first (with the default message model); if there is none, the
    default image model reveals an image. ``-o -`` prints a hidden file or text to standard output.
    """
    with _user_errors():
        import torch

        from deepsteg.io import check_output_path, read_image, write_png
        from deepsteg.zoo import get_entry

        passphrase = _check_passphrase(passphrase)
        s = read_image(stego)
        name = model or (_weights_model(weights) if weights is not None else "")
        if not name or "message" in get_entry(name).tags:
            if _reveal_bytes(stego, s, output, passphrase, name, weights, device, force, explicit=bool(name)):
                return
        net, dev = _load_model(model, weights, device)
        if passphrase and not net.keyed:
            raise DeepstegError(f"{net.model_name} hides images and takes no passphrase")
        key = _model_key(net, passphrase)
        k = net.num_secrets
        if k > 1 and "{i}" not in output:
            raise DeepstegError(f"{net.model_name} reveals {k} images; put {{i}} in -o (e.g. out_{{i}}.png)")
        outs = [Path(output.replace("{i}", str(i + 1))) for i in range(k)]
        for o in outs:
            check_output_path(o, [stego], force)
        with torch.inference_mode():
            revealed = [r.cpu() for r in net.reveal(s[None].to(dev), tile=tile, key=key)]
        for o, r in zip(outs, revealed):
            write_png(r[0], o, inputs=[stego], force=force)
            print(f"{o}: revealed {r.shape[-1]}×{r.shape[-2]} image ({net.model_name}, {_peak_mb()})")


def _reveal_bytes(stego: Path, s: Any, output: str, passphrase: Optional[str], model: str,
                  weights: Optional[Path], device: str, force: bool, explicit: bool) -> bool:
    """Extract a hidden file; True when done, False when none is there and an image reveal should follow.

    Without --model every ready message model is tried (the default first). A passphrase from
    DEEPSTEG_PASSPHRASE is tried and then none, so a file hidden without one stays readable; an explicit
    --passphrase is the only one tried."""
    import torch

    from deepsteg.io import IMAGE_SUFFIXES, atomic_write_bytes, check_output_path, notice
    from deepsteg.payload import NoMessageFound, reveal_bytes
    from deepsteg.zoo import DEFAULT_MODEL

    to_stdout = output == "-"
    if not to_stdout:
        check_output_path(output, [stego], force, suffixes=())
    given = passphrase  # an explicit --passphrase says "a file is hidden here"; the environment variable does not
    env = _env_passphrase()
    tries: list[Optional[str]] = [given] if given else ([env, None] if env else [None])
    names = [model] if explicit else _message_candidates()
    data, used, missed = None, None, None
    for i, name in enumerate(names):
        net, dev = _message_model(name, weights if i == 0 else None, device)
        for p in tries:
            try:
                with torch.inference_mode():
                    data = reveal_bytes(net, s.to(dev), p)
                used = p
                break
            except NoMessageFound as e:
                missed = e
        if data is not None:
            break
    if data is None:
        if explicit or given:
            raise missed  # type: ignore[misc]
        tried = " or ".join(names)
        if to_stdout or not output.lower().endswith(".png"):
            image_out = Path(output).suffix.lower() in IMAGE_SUFFIXES
            raise DeepstegError(f"{stego}: no hidden file found with {tried} (if it was hidden with a "
                                "passphrase, give --passphrase" + ("; a revealed image is written as .png, so "
                                                                 "name -o OUT.png" if image_out else "") + ")")
        # an image stego (the usual case): revealed by the default image model, but never silently, since a file
        # hidden with a passphrase that was not given looks exactly like no file at all
        notice(f"no hidden file found with {tried} (a file hidden with a passphrase needs --passphrase); "
               f"revealing an image with {DEFAULT_MODEL}")
        return False
    if to_stdout:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return True
    atomic_write_bytes(output, lambda f: f.write(data))
    print(f"{output}: {len(data)} bytes recovered exactly ({net.model_name}"
          f"{', decrypted' if used else ', integrity checked'})", file=sys.stderr)
    return True


@app.command()
def capacity(
    cover: Annotated[Path, typer.Argument(help="Cover image.")],
    model: ModelOpt = "",
    passphrase: Annotated[bool, typer.Option("--passphrase", help="Count the encryption overhead too.")] = False,
    weights: WeightsOpt = None,
) -> None:
    """The most bytes of a file or text that fit in COVER at the default error correction."""
    with _user_errors():
        from deepsteg.io import read_image
        from deepsteg.payload import capacity_bytes

        c = read_image(cover)
        net, _ = _message_model(model, weights, "cpu")
        h, w = c.shape[-2:]
        from_env = not passphrase and _env_passphrase() is not None  # hide would encrypt with the variable too
        passphrase = passphrase or from_env
        small = min(h, w) < net.min_size  # hide refuses such a cover
        n = 0 if small else capacity_bytes(net, h, w, passphrase)
        why = f"; {net.model_name} needs at least {net.min_size}×{net.min_size}" if small else ""
        print(f"{cover}: {w}×{h}, {net.model_name}: {n} bytes (incompressible data"
              f"{', with a passphrase' if passphrase else ''}{' from ' + PASSPHRASE_ENV if from_env else ''}; "
              f"raw bit error rate {net.error_rate:.2%} assumed by the error correction{why})")


def _check_batch_args(batch_size: int, workers: int) -> None:
    if batch_size < 1 or workers < 0:
        raise DeepstegError("--batch-size must be at least 1 and --workers at least 0")


def _finish_batch(res, verb: str) -> None:  # noqa: ANN001 - deepsteg.batch.BatchSummary
    """Report failed files and the summary; exit 1 if any file failed."""
    for f, why in res.failed:
        print(f"deepsteg: failed {f}: {why}", file=sys.stderr)
    print(res.line(verb))
    if res.failed:
        raise typer.Exit(EXIT_USER_ERROR)


@app.command("hide-batch")
def hide_batch(
    covers: Annotated[Path, typer.Argument(help="Folder of cover images (sub-folders too).")],
    secrets: Annotated[Path, typer.Argument(help="Folder of secret images (used in sorted order, reused "
                                                 "cyclically when fewer than the covers).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Output folder (cover names, .png).")],
    model: ModelOpt = "",
    batch_size: Annotated[int, typer.Option(help="Images per forward pass (same-size images are batched).")] = 8,
    workers: Annotated[int, typer.Option(help="DataLoader processes decoding images.")] = 0,
    fit: Annotated[str, typer.Option(help="Secret of another size than its cover: resize or error.")] = "resize",
    overwrite: Annotated[bool, typer.Option(help="Redo outputs that already exist (default: skip them).")] = False,
    weights: WeightsOpt = None,
    device: DeviceOpt = "auto",
    tile: TileOpt = None,
    passphrase: PassOpt = None,
    refine: Annotated[int, typer.Option(
        "--refine", help="Refine each stego for N steps, as `hide --refine N` (default 0 here: a folder run is "
                         "about throughput; refinement costs seconds per image on a CPU).")] = 0,
    cover_psnr: CoverPsnrOpt = None,
) -> None:
    """Hide secrets in a whole folder of covers (resumable: finished outputs are skipped)."""
    with _user_errors():
        from deepsteg.batch import hide_folder

        _check_batch_args(batch_size, workers)
        passphrase = _check_passphrase(passphrase)
        if fit not in ("resize", "error"):
            raise DeepstegError(f"--fit must be resize or error, not {fit!r}")
        net, dev = _load_model(model, weights, device)
        res = hide_folder(net, covers, secrets, output, batch_size, dev, fit, workers, overwrite,
                          sys.stderr.isatty(), tile, key=_model_key(net, passphrase), refine_steps=refine,
                          cover_psnr=cover_psnr)
        _finish_batch(res, f"hide-batch {output}")


@app.command("reveal-batch")
def reveal_batch(
    stegos: Annotated[Path, typer.Argument(help="Folder of stego PNGs.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Output folder (same names, .png).")],
    model: ModelOpt = "",
    batch_size: Annotated[int, typer.Option(help="Images per forward pass.")] = 8,
    workers: Annotated[int, typer.Option(help="DataLoader processes decoding images.")] = 0,
    overwrite: Annotated[bool, typer.Option(help="Redo outputs that already exist.")] = False,
    weights: WeightsOpt = None,
    device: DeviceOpt = "auto",
    tile: TileOpt = None,
    passphrase: PassOpt = None,
) -> None:
    """Reveal every stego in a folder (resumable: finished outputs are skipped)."""
    with _user_errors():
        from deepsteg.batch import reveal_folder

        _check_batch_args(batch_size, workers)
        passphrase = _check_passphrase(passphrase)
        net, dev = _load_model(model, weights, device)
        res = reveal_folder(net, stegos, output, batch_size, dev, workers, overwrite, sys.stderr.isatty(), tile,
                            key=_model_key(net, passphrase))
        _finish_batch(res, f"reveal-batch {output}")


def _fmt(key: str, v: float) -> str:
    return f"{v:.4f}" if "ssim" in key or "accuracy" in key else f"{v:.0f}" if key == "payload_bytes" else f"{v:.2f}"


@app.command()
def evaluate(
    data: Annotated[list[Path], typer.Option("--data", help="Folder of images (sorted by name and paired).")],
    model: ModelOpt = "",
    size: Annotated[int, typer.Option(help="Centre-crop size.")] = 256,
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Write the means (and rows) as JSON.")] = None,
    weights: WeightsOpt = None,
    limit: Annotated[Optional[int], typer.Option(help="Evaluate only the first N covers.")] = None,
    device: DeviceOpt = "auto",
    refine: Annotated[int, typer.Option(
        "--refine", help="Refine each stego for N steps before saving it, as `hide --refine N` does (default 0: "
                         "the network alone, the papers' protocol).")] = 0,
    cover_psnr: CoverPsnrOpt = None,
) -> None:
    """Hide, save the 8-bit PNG, re-read and reveal over a folder; print per-image and mean figures."""
    with _user_errors():
        from rich.console import Console
        from rich.table import Table

        from deepsteg.evaluate import evaluate_folder
        from deepsteg.io import atomic_write_bytes, check_output_path

        if size < 16:
            raise DeepstegError("--size must be at least 16")
        if limit is not None and limit < 1:
            raise DeepstegError("--limit must be at least 1")
        if json_path is not None:
            check_output_path(json_path, [], suffixes=(".json",))
        net, dev = _load_model(model, weights, device)
        res = evaluate_folder(net, data, size=size, limit=limit, progress=sys.stderr.isatty(), device=dev,
                              refine_steps=refine, cover_psnr=cover_psnr)
        how = f", refined {refine} steps" if refine else ""
        how += f" within cover PSNR {cover_psnr:g} dB" if cover_psnr is not None else ""
        table = Table(title=f"{net.model_name} on {', '.join(map(str, data))} ({size}×{size}{how}, after PNG save)")
        cols = [("cover_psnr", "cover PSNR"), ("cover_ssim", "cover SSIM"), ("secret_psnr", "secret PSNR"),
                ("secret_ssim", "secret SSIM"), ("float_cover_psnr", "float cover PSNR"),
                ("float_secret_psnr", "float secret PSNR")]
        if res.rows and "bit_accuracy" in res.rows[0]:
            cols = [("cover_psnr", "cover PSNR"), ("cover_ssim", "cover SSIM"), ("bit_accuracy", "bit accuracy"),
                    ("float_bit_accuracy", "float bit accuracy"), ("payload_bytes", "payload bytes"),
                    ("payload_exact", "payload exact")]
        table.add_column("cover image")
        for _, title in cols:
            table.add_column(title, justify="right")
        for r in res.rows:
            table.add_row(r["cover"], *[_fmt(k, r[k]) for k, _ in cols])
        m = res.means()
        table.add_section()
        table.add_row(f"mean of {len(res.rows)}", *[_fmt(k, m[k]) for k, _ in cols])
        Console(width=160).print(table)
        if json_path is not None:
            blob = json.dumps(res.summary(), indent=2).encode() + b"\n"
            atomic_write_bytes(json_path, lambda f: f.write(blob))
            print(f"wrote {json_path}")


@app.command()
def train(
    model: Annotated[str, typer.Argument(help="Registered model name to train.")],
    data: Annotated[list[Path], typer.Option("--data", help="Training image folder(s).")],
    out: Annotated[Path, typer.Option("--out", help="Run directory (checkpoints, logs, best/ and last/).")],
    val: Annotated[Optional[list[Path]], typer.Option("--val", help="Validation image folder(s).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --out exactly.")] = False,
    max_minutes: Annotated[Optional[float], typer.Option(help="Stop (with a checkpoint) after this long.")] = None,
    steps: Annotated[int, typer.Option(help="Total optimisation steps.")] = 20_000,
    batch_size: Annotated[int, typer.Option(help="Images per step.")] = 16,
    crop: Annotated[int, typer.Option(help="Training crop size.")] = 128,
    val_crop: Annotated[int, typer.Option(help="Validation centre-crop size.")] = 256,
    lr: Annotated[Optional[float], typer.Option(help="Learning rate (default: the model's).")] = None,
    schedule: Annotated[str, typer.Option(help="constant, cosine or step.")] = "cosine",
    seed: Annotated[int, typer.Option(help="Seed for weights and batches.")] = 0,
    amp: Annotated[str, typer.Option(help="auto (bf16 on CUDA, fp32 on CPU), bf16 or fp32.")] = "auto",
    channels_last: Annotated[bool, typer.Option(help="channels_last memory format.")] = True,
    val_every: Annotated[int, typer.Option(help="Validate every N steps.")] = 500,
    ckpt_every: Annotated[int, typer.Option(help="Checkpoint every N steps.")] = 500,
    log_every: Annotated[int, typer.Option(help="Log every N steps.")] = 50,
    device: DeviceOpt = "auto",
    threads: Annotated[Optional[int], typer.Option(help="CPU threads for PyTorch.")] = None,
    workers: Annotated[int, typer.Option(help="DataLoader worker processes.")] = 0,
    init: Annotated[Optional[Path], typer.Option("--init", help="Start from these weights (a folder with "
                                                        "model.safetensors + config.json, e.g. shipped weights "
                                                        "or a run's last/); 'pretrained' = the shipped ones.")] = None,
    option: Annotated[Optional[list[str]], typer.Option("--set", help="Model option KEY=VALUE (JSON value), "
                                                                       "e.g. --set use_ppm=false.")] = None,
    freeze_bn: Annotated[bool, typer.Option("--freeze-bn", help="Fine-tune with BatchNorm in eval mode (exact "
                                                                "statistics of the --init weights; no batch "
                                                                "statistics noise).")] = False,
    keep_bn_stats: Annotated[bool, typer.Option("--keep-bn-stats", help="With --freeze-bn: keep the --init "
                                                "weights' BatchNorm statistics (a second frozen stage) instead of "
                                                "recomputing them.")] = False,
) -> None:
    """Train MODEL (resumable; run in chunks with --max-minutes and --resume)."""
    with _user_errors():
        import torch

        from deepsteg.train import TrainConfig, Trainer
        from deepsteg.zoo import get_entry

        get_entry(model)
        if threads:
            torch.set_num_threads(threads)
        overrides: dict[str, Any] = {}
        for kv in option or []:
            if "=" not in kv:
                raise DeepstegError(f"--set expects KEY=VALUE, got {kv!r}")
            k, v = kv.split("=", 1)
            try:
                overrides[k] = json.loads(v)
            except json.JSONDecodeError:
                overrides[k] = v
        cfg = TrainConfig(model=model, data=[str(d.resolve()) for d in data], out=str(out.resolve()),
                          val=[str(v.resolve()) for v in val or []],
                          steps=steps, batch_size=batch_size, crop=crop, val_crop=val_crop, lr=lr, schedule=schedule,
                          seed=seed, amp=amp, channels_last=channels_last, val_every=val_every, ckpt_every=ckpt_every,
                          log_every=log_every, max_minutes=max_minutes, device=device, num_workers=workers,
                          overrides=overrides, init=_init_path(model, init), freeze_bn=freeze_bn,
                          keep_bn_stats=keep_bn_stats, threads=threads)
        result = Trainer(cfg, resume=resume, progress=sys.stderr.isatty()).run()
        if result:
            print(json.dumps(result))


@app.command("recalibrate-bn")
def recalibrate_bn_cmd(
    weights: Annotated[Path, typer.Option("--weights", help="Weights folder (model.safetensors + config.json).")],
    data: Annotated[list[Path], typer.Option("--data", help="Training image folder(s).")],
    out: Annotated[Path, typer.Option("--out", help="New weights folder (must not exist).")],
    model: ModelOpt = "",
    batches: Annotated[int, typer.Option(help="Batches to average over.")] = 200,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Images per batch.")] = 8,
    crop: Annotated[int, typer.Option(help="Training crop size.")] = 128,
    seed: Annotated[int, typer.Option(help="Seed of the crops.")] = 123,
) -> None:
    """Recompute BatchNorm statistics exactly over training crops (weights unchanged) into a new folder."""
    with _user_errors():
        import torch

        from deepsteg.data import StegoPairDataset
        from deepsteg.train import recalibrate_bn
        from deepsteg.zoo import save_pretrained

        if out.exists():
            raise DeepstegError(f"{out}: already exists (choose a new folder; inputs are never overwritten)")
        if batches < 1 or batch_size < 1 or crop < 16:
            raise DeepstegError("--batches and --batch-size must be at least 1, --crop at least 16")
        net, _ = _load_model(model, weights, "cpu")
        ds = StegoPairDataset(data, size=crop, seed=seed, length=10**9, num_secrets=net.num_secrets,
                              bits_channels=getattr(net, "message_channels", 0))
        n = recalibrate_bn(net, ds, batches=batches, batch_size=batch_size)
        if n == 0:
            raise DeepstegError(f"{net.model_name} has no BatchNorm layers to recalibrate")
        save_pretrained(net, out, dtype=torch.float32,
                        metadata={"bn_recalibrated": f"{batches}x{batch_size} crops {crop} seed {seed}"})
        print(f"recalibrated {n} BatchNorm layers over {batches}×{batch_size} crops of {crop}²; wrote {out}")


def _init_path(model: str, init: Optional[Path]) -> Optional[str]:
    if init is None:
        return None
    if str(init) == "pretrained":
        from deepsteg.zoo import has_pretrained, pretrained_dir

        if not has_pretrained(model):
            raise DeepstegError(f"--init pretrained: no shipped weights for {model!r}")
        return str(pretrained_dir(model))
    if not (init / "model.safetensors").is_file():
        raise DeepstegError(f"--init {init}: no model.safetensors there")
    return str(init.resolve())


@app.command()
def models() -> None:
    """List registered models, whether weights ship, and their measured figures."""
    with _user_errors():
        from rich.console import Console
        from rich.table import Table

        from deepsteg.zoo import DEFAULT_MODEL, get_entry, has_pretrained, list_models, pretrained_dir

        table = Table(title="deepsteg models (figures: corpus/val, 256×256, after PNG save; the networks alone, "
                            "without hide's --refine)")
        for col in ("name", "weights", "cover PSNR", "secret PSNR / bit acc.", "description"):
            table.add_column(col)
        for name in list_models():
            e = get_entry(name)
            fig = pretrained_dir(name) / "metrics.json"
            cp = sp = "—"
            if fig.is_file():
                m = json.loads(fig.read_text())
                cp = f"{m['cover_psnr']:.2f}"
                sp = f"{m['secret_psnr']:.2f}" if "secret_psnr" in m else f"{m['bit_accuracy']:.4f}"
            mark = " (default)" if name == DEFAULT_MODEL else ""
            shipped = "none needed" if e.weightless else "yes" if has_pretrained(name) else "no"
            table.add_row(name + mark, shipped, cp, sp, e.description)
        Console(width=160).print(table)


@app.command()
def sample(
    name: Annotated[str, typer.Argument(help="cover or secret.")] = "cover",
) -> None:
    """Print the path of a sample photo shipped with the package (for trying hide/reveal)."""
    with _user_errors():
        folder = Path(str(resources.files("deepsteg") / "samples"))
        files = {p.stem: p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".png")}
        if name not in files:
            raise DeepstegError(f"no sample named {name!r}; samples: {', '.join(sorted(files))}")
        print(files[name])


@app.command()
def card(model: ModelOpt = "") -> None:
    """Print a model's model card (data, steps, hardware, figures)."""
    with _user_errors():
        from deepsteg.zoo import get_entry, model_card

        name = model or _default_model()
        get_entry(name)
        text = model_card(name)
        if not text:
            raise DeepstegError(f"no model card ships for {name!r}")
        print(text)


@app.command()
def analyze(
    path: Annotated[Path, typer.Argument(help="Image, or folder of images (all of them, sorted, sub-folders too).")],
    detectors: Annotated[str, typer.Option("--detectors", help="Comma-separated detectors to run: chi2, spa, rs, "
                                                                "primary_sets, ws (default: all that are "
                                                                "installed).")] = "",
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Write {file: {detector: score, …, "
                                                                     "fusion: score}} as JSON.")] = None,
) -> None:
    """Classical LSB steganalysis (StegExpose's detectors + WS): one line of scores per image, higher = more
    likely stego; fusion is StegExpose's mean of the detectors (StegExpose flags a file above 0.2)."""
    with _user_errors():
        import math

        from deepsteg.analysis import DEFAULT_DETECTORS, score_image
        from deepsteg.io import atomic_write_bytes, check_output_path, list_images, read_image

        if not detectors:  # all five with the analysis extra; the two written here without it
            import importlib.util

            if importlib.util.find_spec("sealwatch") is None:
                from deepsteg.io import notice

                notice("sealwatch is not installed: running rs and primary_sets only "
                       "(pip install 'deepsteg[analysis]' adds chi2, spa and ws)")
                detectors = "rs,primary_sets"
            else:
                detectors = ",".join(DEFAULT_DETECTORS)
        names = [d.strip() for d in detectors.split(",") if d.strip()]
        unknown = [d for d in names if d not in DEFAULT_DETECTORS]
        if unknown or not names:
            what = f"unknown detector {unknown[0]!r}" if unknown else "give at least one detector"
            raise DeepstegError(f"--detectors: {what}; choose from {', '.join(DEFAULT_DETECTORS)}")
        if json_path is not None:
            check_output_path(json_path, [], suffixes=(".json",))
        if path.is_dir():
            files = list_images(path)
            if not files:
                raise DeepstegError(f"{path}: no images in this folder")
            keys = [f.relative_to(path).as_posix() for f in files]
        elif not path.exists():
            raise DeepstegError(f"{path}: no such file or directory")
        else:
            files, keys = [path], [path.name]
        results: dict[str, dict[str, float | None]] = {}
        failed = 0
        for f, key in zip(files, keys):
            try:
                img = read_image(f)
                if min(img.shape[-2:]) < 4:
                    raise DeepstegError(f"{f}: image is {img.shape[-1]}×{img.shape[-2]} pixels; the detectors "
                                        "need at least 4×4")
                scores = score_image(img, names)
            except (DeepstegError, OSError, ValueError) as e:  # one line for this file, then go on
                detail = e.strerror if isinstance(e, OSError) and e.strerror else e
                _err(str(e) if isinstance(e, DeepstegError) else f"{f}: {detail}")
                failed += 1
                continue
            results[key] = {k: (None if math.isnan(v) else v) for k, v in scores.items()}
            print(key + "  " + "  ".join(f"{k} {v:.4f}" for k, v in scores.items()), flush=True)
        if json_path is not None:
            blob = json.dumps(results, indent=2).encode() + b"\n"
            atomic_write_bytes(json_path, lambda fh: fh.write(blob))
            print(f"wrote {json_path}", file=sys.stderr)
        if failed:
            _err(f"{failed} of {len(files)} image(s) could not be analysed")
            raise typer.Exit(EXIT_USER_ERROR)


@app.command()
def bench(
    models: Annotated[str, typer.Option("--models", help="Comma-separated registered models with weights "
                                                         "(e.g. stegopnet,lsb3,sftn).")],
    data: Annotated[Path, typer.Option("--data", help="Folder of test images (sorted and paired as evaluate).")],
    out: Annotated[Path, typer.Option("--out", help="Report folder: report.md, results.csv, results.json, "
                                                    "figures/.")],
    size: Annotated[int, typer.Option(help="Centre-crop size.")] = 256,
    detectors: Annotated[str, typer.Option(help="Classical detectors (comma-separated; 'none' for none).")] =
    "chi2,spa,rs,primary_sets,ws",
    features: Annotated[str, typer.Option(help="Feature sets for the FLD ensemble: spam,srm or none.")] = "spam,srm",
    deep: Annotated[str, typer.Option(help="Deep steganalysers to train: xunet,isgan-steganalyser,srnet or "
                                           "none (needs --train-data).")] = "xunet",
    train_data: Annotated[Optional[Path], typer.Option(
        "--train-data", help="Images to train the deep steganalysers on (disjoint from --data).")] = None,
    deep_steps: Annotated[int, typer.Option(help="Training steps per deep steganalyser.")] = 400,
    limit: Annotated[Optional[int], typer.Option(help="Use only the first N images.")] = None,
    runs: Annotated[Optional[list[str]], typer.Option("--run", help="MODEL=RUN_DIR: add that training run's "
                                                                    "loss curve to the figures.")] = None,
    device: DeviceOpt = "auto",
    palette_figures: Annotated[bool, typer.Option(
        "--palette-figures/--full-colour-figures",
        help="Store the figures as 256-colour PNGs (about a third of the size, for reports kept in git) or in "
             "full colour.")] = True,
    update: Annotated[bool, typer.Option(
        "--update", help="Bench only MODELS and merge their rows into the report already in --out (made with the "
                         "same settings); the other models' rows are kept.")] = False,
    refine: Annotated[int, typer.Option(
        "--refine", help="Refine every stego for N steps (`hide --refine`); rows are named 'MODEL --refine N' and "
                         "get no deep detectors (those train on the network's own stegos).")] = 0,
) -> None:
    """Quality, capacity, steganalysis (classical, feature-based, deep) and speed of MODELS on DATA, as a
    Markdown report with CSV/JSON and figures."""
    with _user_errors():
        from deepsteg.analysis import DEFAULT_DETECTORS
        from deepsteg.bench import DEEP, FEATURES, BenchConfig, run_bench

        def parse(v: str, allowed: tuple[str, ...], what: str) -> tuple[str, ...]:
            names = tuple(x.strip() for x in v.split(",") if x.strip() and x.strip() != "none")
            bad = [x for x in names if x not in allowed]
            if bad:
                raise DeepstegError(f"--{what}: unknown {bad[0]!r}; choose from {', '.join(allowed)} or none")
            return names

        names = [m.strip() for m in models.split(",") if m.strip()]
        if not names:
            raise DeepstegError("--models: name at least one model")
        if not data.is_dir():
            raise DeepstegError(f"{data}: not a folder")
        deep_names = parse(deep, DEEP, "deep")
        if deep_names and train_data is None:
            from deepsteg.io import notice

            notice("no --train-data: the deep steganalysers are skipped (they must train on other images)")
        run_map = {}
        for spec in runs or []:
            k, sep, v = spec.partition("=")
            if not sep:
                raise DeepstegError(f"--run {spec!r}: use MODEL=RUN_DIR")
            run_map[k] = Path(v)
        cfg = BenchConfig(models=names, data=data, out=out, size=size,
                          detectors=parse(detectors, DEFAULT_DETECTORS, "detectors"),
                          features=parse(features, FEATURES, "features"), deep=deep_names, train_data=train_data,
                          deep_steps=deep_steps, limit=limit, runs=run_map, device=str(_device(device)),
                          palette_figures=palette_figures, update=update, refine=refine)
        out.mkdir(parents=True, exist_ok=True)
        command = "deepsteg " + " ".join(sys.argv[1:]) if sys.argv and "bench" in sys.argv else "deepsteg bench"
        run_bench(cfg, command, progress=sys.stderr.isatty())
        print(f"wrote {out / 'report.md'}, results.csv, results.json and figures/")


def main() -> None:
    """Console-script entry point: usage mistakes also end in one line (not click's multi-line box)."""
    try:
        code = app(standalone_mode=False)
    except KeyboardInterrupt:
        _err("interrupted")
        sys.exit(130)
    except BrokenPipeError:  # outside a command's own handling (help text piped into head)
        _quiet_stdout()
        sys.exit(EXIT_BROKEN_PIPE)
    except Exception as e:  # click's UsageError / BadParameter / Abort (vendored by typer)
        if type(e).__name__ == "NoArgsIsHelpError":  # bare `deepsteg`: show the help, not an error
            print(e.format_message())
            sys.exit(0)
        if hasattr(e, "format_message"):
            _err(f"{e.format_message()} (see deepsteg --help)")
            sys.exit(getattr(e, "exit_code", 2) or 2)
        if type(e).__name__ == "Abort":
            _err("aborted")
            sys.exit(1)
        raise
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
