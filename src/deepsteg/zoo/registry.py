"""The model registry.

Each entry names a model class, its default configuration (plain data) and, optionally, a folder of
pretrained files under ``deepsteg/zoo/pretrained/<name>/``:

* ``model.safetensors`` — the weights (fp16 or fp32; loaded without pickle, cast to fp32);
* ``config.json`` — ``{"model": name, "config": {...}}``, the configuration the weights were trained with;
* ``MODEL_CARD.md`` — data, steps, hardware and the figures measured after PNG rounding.

A new method is one module in ``deepsteg.models`` plus one :func:`register_model` call below.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from deepsteg.errors import ModelError
from deepsteg.io import atomic_write_bytes
from deepsteg.models.base import ImageHider

FORMAT_VERSION = 1
DEFAULT_MODEL = "stegopnet"
#: The model that carries files and text (``hide --file``): chosen by the library, not the user.
DEFAULT_MESSAGE_MODEL = "sftn"


@dataclass(frozen=True)
class ModelEntry:
    """What the registry knows about one named model."""

    name: str
    builder: Callable[[Any], ImageHider]
    config_cls: type
    config: dict[str, Any]
    description: str
    paper: str = ""
    pretrained: bool = True
    tags: tuple[str, ...] = field(default_factory=tuple)
    #: Classical methods (e.g. LSB) have no weights: "pretrained" means ready to use as built.
    weightless: bool = False

    def make_config(self, overrides: dict[str, Any] | None = None) -> Any:
        """The entry's configuration with ``overrides`` applied (unknown keys are refused)."""
        data = dict(self.config)
        for k, v in (overrides or {}).items():
            if k not in {f.name for f in dataclasses.fields(self.config_cls)}:
                raise ModelError(f"{self.name}: unknown option {k!r}")
            data[k] = v
        fields = {f.name: f for f in dataclasses.fields(self.config_cls)}
        for k, v in data.items():  # JSON gives lists where the dataclass has tuples
            if isinstance(v, list) and "tuple" in str(fields[k].type):
                data[k] = tuple(v)
        return self.config_cls(**data)


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(
    name: str, builder: Callable[[Any], ImageHider], config: Any, description: str, paper: str = "",
    pretrained: bool = True, tags: tuple[str, ...] = (), weightless: bool = False,
) -> None:
    """Add a named model. ``config`` is an instance of the model's config dataclass (its defaults for ``name``)."""
    if name in _REGISTRY:
        raise ModelError(f"model {name!r} is registered twice")
    _REGISTRY[name] = ModelEntry(name, builder, type(config), dataclasses.asdict(config), description, paper,
                                 pretrained, tags, weightless)


def list_models(pretrained: bool | None = None) -> list[str]:
    """Registered model names (only those with shipped weights if ``pretrained=True``)."""
    names = sorted(_REGISTRY)
    if pretrained is None:
        return names
    return [n for n in names if has_pretrained(n) == pretrained]


def get_entry(name: str) -> ModelEntry:
    """The registry entry for ``name``, or a clear error listing the known names."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ModelError(f"unknown model {name!r}; available: {', '.join(list_models())}") from None


def pretrained_dir(name: str) -> Path:
    """Folder of the shipped files for ``name`` (may not exist)."""
    return Path(str(resources.files("deepsteg.zoo") / "pretrained" / name))


def has_pretrained(name: str) -> bool:
    """Whether ``name`` is ready to use: its weights ship with this install, or it needs none."""
    e = get_entry(name)
    return e.weightless or (e.pretrained and (pretrained_dir(name) / "model.safetensors").is_file())


def model_card(name: str) -> str:
    """The shipped model card (Markdown) for ``name``, or an empty string."""
    p = pretrained_dir(name) / "MODEL_CARD.md"
    return p.read_text(encoding="utf-8") if p.is_file() else ""


def _read_config(folder: Path) -> dict[str, Any]:
    p = folder / "config.json"
    if not p.is_file():
        raise ModelError(f"{folder}: no config.json beside the weights")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ModelError(f"{p}: not valid JSON ({e})") from None
    if data.get("format") != FORMAT_VERSION:
        raise ModelError(f"{p}: unsupported weights format {data.get('format')!r}")
    return data


def load_weights(model: ImageHider, path: str | os.PathLike[str], strict: bool = True,
                 missing_ok: bool = False) -> ImageHider:
    """Load a safetensors file into ``model`` (cast to the model's dtype); never unpickles anything.
    ``missing_ok`` tolerates parameters the file lacks (they keep their initialisation), never extra ones."""
    tensors: dict[str, torch.Tensor] = {}
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            for k in f.keys():
                tensors[k] = f.get_tensor(k)
    except Exception as e:  # safetensors raises its own SafetensorError for corrupt headers
        raise ModelError(f"{path}: cannot read weights ({e})") from None
    own = model.state_dict()
    cast = {k: v.to(own[k].dtype) if k in own else v for k, v in tensors.items()}
    missing, unexpected = model.load_state_dict(cast, strict=False)
    if missing_ok and not unexpected:
        missing = []
    if strict and (missing or unexpected):
        raise ModelError(f"{path}: weights do not match {model.model_name} "
                         f"(missing {missing[:3]}…, unexpected {unexpected[:3]}…)")
    return model


def create_model(
    name: str = DEFAULT_MODEL, pretrained: bool = False, weights: str | os.PathLike[str] | None = None,
    device: str | torch.device | None = None, sibling_ok: bool = False, **overrides: Any,
) -> ImageHider:
    """Build a registered model by name.

    ``pretrained=True`` loads the shipped weights with the configuration they were trained with;
    ``weights=FOLDER`` loads a folder written by :func:`save_pretrained` (e.g. a training run's ``best/``).
    ``sibling_ok=True`` also accepts weights of another entry built by the same class (e.g. ``isgan-basic`` to
    start ``isgan``): the fields in which the two entries differ come from ``name``, and parameters the weights do
    not hold (the GAN's critic) keep their fresh initialisation. Training uses it for ``--init``.
    Other keyword arguments override configuration fields. Pretrained models are returned in eval mode.
    """
    entry = get_entry(name)
    folder: Path | None = None
    if weights is not None:
        folder = Path(weights)
        if folder.is_file():
            folder = folder.parent
        if not (folder / "model.safetensors").is_file():
            raise ModelError(f"{weights}: no model.safetensors there")
    elif pretrained and not entry.weightless:
        if not has_pretrained(name):
            raise ModelError(f"no pretrained weights ship for {name!r}; models with weights: "
                             f"{', '.join(list_models(pretrained=True)) or 'none'}")
        folder = pretrained_dir(name)
    base = dict(entry.config)
    sibling = False
    if folder is not None:
        data = _read_config(folder)
        saved = data.get("model")
        sibling = saved != name and sibling_ok and saved in _REGISTRY and _REGISTRY[saved].builder is entry.builder
        if saved != name and not sibling:
            raise ModelError(f"{folder}: weights are for {saved!r}, not {name!r}")
        base.update(data.get("config", {}))
        if sibling:  # the saved architecture, with the fields that tell the two entries apart taken from `name`
            other = _REGISTRY[saved].config
            base.update({k: v for k, v in entry.config.items() if other.get(k) != v})
    cfg = dataclasses.replace(entry, config=base).make_config(overrides)
    model = entry.builder(cfg)
    model.model_name = name
    if folder is not None:
        load_weights(model, folder / "model.safetensors", missing_ok=sibling)
    if folder is not None or (pretrained and entry.weightless):
        model.eval()
    if device is not None:
        model.to(device)
    return model


def save_pretrained(
    model: ImageHider, folder: str | os.PathLike[str], card: str | None = None,
    dtype: torch.dtype | None = None, metadata: dict[str, str] | None = None,
) -> Path:
    """Write ``model.safetensors`` + ``config.json`` (+ ``MODEL_CARD.md``) into ``folder``, each atomically."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    if dtype is not None:
        state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
    meta = {"model": model.model_name, "format": str(FORMAT_VERSION), **(metadata or {})}
    tmp = out / ".model.safetensors.tmp"
    save_file(state, str(tmp), metadata=meta)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # safetensors writes 0600; weights are ordinary files
    os.replace(tmp, out / "model.safetensors")
    config = {"format": FORMAT_VERSION, "model": model.model_name, "config": model.config_dict()}
    atomic_write_bytes(out / "config.json", lambda f: f.write(json.dumps(config, indent=2).encode() + b"\n"))
    if card is not None:
        atomic_write_bytes(out / "MODEL_CARD.md", lambda f: f.write(card.encode()))
    return out


# --- the registered models --------------------------------------------------------------------------------
def _register_builtin() -> None:
    """Each module of :mod:`deepsteg.models` registers its own entries (timm-style: the registration lives beside
    the architecture), so a new method is one new module with a ``register(register_model)`` function."""
    import importlib
    import pkgutil

    import deepsteg.models as pkg

    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"deepsteg.models.{info.name}")
        register = getattr(module, "register", None)
        if callable(register):
            register(register_model)


_register_builtin()
