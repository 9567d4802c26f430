"""One family of user-facing errors, so the CLI can print one clear line instead of a traceback."""

from __future__ import annotations


class DeepstegError(Exception):
    """Base class for every error deepsteg raises on purpose (bad input, bad arguments, unsafe files)."""


class ImageReadError(DeepstegError):
    """A file could not be read as an image (missing, truncated, not an image, too small, too large)."""


class ImageWriteError(DeepstegError):
    """An output file could not be written (exists, unwritable directory, would overwrite an input)."""


class ModelError(DeepstegError):
    """Unknown model name, missing pretrained weights, or inputs the model cannot take."""


class TrainingError(DeepstegError):
    """Bad training configuration or a checkpoint that does not match."""
