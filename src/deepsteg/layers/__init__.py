"""Shared building blocks; each method composes these instead of copying them."""

from deepsteg.layers.conv import ConvBNAct, DeconvBNAct
from deepsteg.layers.inception import InceptionResBlock
from deepsteg.layers.ppm import PyramidPooling
from deepsteg.layers.scr import SCRBlock
from deepsteg.layers.spp import SpatialPyramidPooling

__all__ = ["ConvBNAct", "DeconvBNAct", "InceptionResBlock", "PyramidPooling", "SCRBlock", "SpatialPyramidPooling"]
