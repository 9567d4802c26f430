"""Names → models (timm-style registry), pretrained weights and model cards shipped inside the package."""

from deepsteg.zoo.registry import (
    DEFAULT_MESSAGE_MODEL,
    DEFAULT_MODEL,
    ModelEntry,
    create_model,
    get_entry,
    has_pretrained,
    list_models,
    load_weights,
    model_card,
    pretrained_dir,
    register_model,
    save_pretrained,
)

__all__ = [
    "DEFAULT_MESSAGE_MODEL", "DEFAULT_MODEL", "ModelEntry", "create_model", "get_entry", "has_pretrained", "list_models", "load_weights", "model_card",
    "pretrained_dir", "register_model", "save_pretrained",
]
