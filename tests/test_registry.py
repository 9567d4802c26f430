"""The registry builds models by name; weights round-trip through safetensors + config.json without pickle."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

import deepsteg
from deepsteg.errors import ModelError
from deepsteg.zoo import get_entry, has_pretrained, save_pretrained


def test_list_and_unknown_names() -> None:
    names = deepsteg.list_models()
    assert {"stegopnet", "stegopnet-noppm", "stegopnet-paper"} <= set(names)
    with pytest.raises(ModelError, match="available: .*stegopnet"):
        deepsteg.create_model("nope")
    with pytest.raises(ModelError, match="unknown option"):
        deepsteg.create_model("stegopnet", no_such_option=1)
    with pytest.raises(ModelError, match="no pretrained weights"):
        deepsteg.create_model("stegopnet-paper", pretrained=True)


def test_overrides_reach_the_config() -> None:
    m = deepsteg.create_model("stegopnet", use_ppm=False, alpha=0.3)
    assert m.config.use_ppm is False and m.config.alpha == 0.3 and m.model_name == "stegopnet"
    assert get_entry("stegopnet-noppm").make_config().use_ppm is False


@pytest.mark.parametrize("dtype", [None, torch.float16])
def test_save_and_load_pretrained(tmp_path: Path, dtype: torch.dtype | None) -> None:
    torch.manual_seed(0)
    m = deepsteg.create_model("stegopnet-noppm").eval()
    save_pretrained(m, tmp_path / "w", card="# card\n", dtype=dtype, metadata={"step": "7"})
    cfg = json.loads((tmp_path / "w" / "config.json").read_text())
    assert cfg["model"] == "stegopnet-noppm" and cfg["config"]["use_ppm"] is False
    with safe_open(str(tmp_path / "w" / "model.safetensors"), "pt") as f:
        assert f.metadata()["step"] == "7"
    m2 = deepsteg.create_model("stegopnet-noppm", weights=tmp_path / "w")
    assert not m2.training
    x, s = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        a, b = m.hide(x, s), m2.hide(x, s)
    assert torch.equal(a, b) if dtype is None else torch.allclose(a, b, atol=2e-3)
    with pytest.raises(ModelError, match="not 'stegopnet'"):
        deepsteg.create_model("stegopnet", weights=tmp_path / "w")


def test_corrupt_weights_are_refused(tmp_path: Path) -> None:
    m = deepsteg.create_model("stegopnet-noppm")
    save_pretrained(m, tmp_path / "w")
    (tmp_path / "w" / "model.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(ModelError, match="cannot read weights"):
        deepsteg.create_model("stegopnet-noppm", weights=tmp_path / "w")
    with pytest.raises(ModelError, match="no model.safetensors"):
        deepsteg.create_model("stegopnet", weights=tmp_path / "empty")


def test_shipped_weights_load_and_carry_a_card() -> None:
    for name in deepsteg.list_models(pretrained=True):
        m = deepsteg.create_model(name, pretrained=True)
        assert not m.training
        card = deepsteg.model_card(name)
        assert "after PNG" in card and "corpus" in card
    assert has_pretrained(deepsteg.DEFAULT_MODEL), "the default model must ship weights"
