"""One module per paper; every method subclasses :class:`~deepsteg.models.base.ImageHider`."""

from deepsteg.models.base import ImageHider
from deepsteg.models.stegopnet import StegoPNet, StegoPNetConfig

__all__ = ["ImageHider", "StegoPNet", "StegoPNetConfig"]
