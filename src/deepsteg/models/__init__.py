"""One module per paper; every method subclasses :class:`~deepsteg.models.base.ImageHider` and registers itself."""

from deepsteg.models.base import ImageHider
from deepsteg.models.isgan import Isgan, IsganConfig
from deepsteg.models.lsb import Lsb, LsbConfig
from deepsteg.models.message import LsbMessage, MessageModel
from deepsteg.models.stegnet import StegNet, StegNetConfig
from deepsteg.models.stegopnet import StegoPNet, StegoPNetConfig

__all__ = ["ImageHider", "Isgan", "IsganConfig", "Lsb", "LsbConfig", "LsbMessage", "MessageModel", "StegNet", "StegNetConfig", "StegoPNet", "StegoPNetConfig"]
