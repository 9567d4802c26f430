"""deepsteg — deep-learning image steganography: reference implementations, pretrained weights, one CLI."""

from deepsteg.errors import DeepstegError, ImageReadError, ImageWriteError, ModelError, TrainingError
from deepsteg.io import DeepstegNotice, fit_to, quantize, read_image, write_png
from deepsteg.models.base import ImageHider
from deepsteg.refine import refine as refine_stego
from deepsteg.zoo import DEFAULT_MODEL, create_model, list_models, model_card, save_pretrained

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_MODEL", "DeepstegError", "DeepstegNotice", "ImageHider", "ImageReadError", "ImageWriteError",
    "ModelError", "TrainingError", "create_model", "fit_to", "list_models", "model_card", "quantize", "read_image",
    "refine_stego", "save_pretrained", "write_png", "__version__",
]
