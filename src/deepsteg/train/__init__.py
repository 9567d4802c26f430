"""The one training loop every method uses; methods supply losses, stages and optimiser groups."""

from deepsteg.train.bn import recalibrate_bn
from deepsteg.train.trainer import TrainConfig, Trainer, train

__all__ = ["TrainConfig", "Trainer", "recalibrate_bn", "train"]
