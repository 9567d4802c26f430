"""Shared building blocks; each method composes these instead of copying them."""

from deepsteg.layers.conv import ConvBNAct, DeconvBNAct
from deepsteg.layers.ppm import PyramidPooling

__all__ = ["ConvBNAct", "DeconvBNAct", "PyramidPooling"]
