"""Precise BatchNorm statistics: recompute every BN layer's running mean/variance as exact averages over many
training batches with the weights frozen.

Why: the running statistics a run ends with are an exponential average (momentum 0.1) over its last few dozen
small batches, so they carry those batches' noise, and evaluation in ``eval()`` mode uses them. For the hiding
models here that noise is worth more than a dB: the revealed secret of a StegoPNet checkpoint moved by ±0.8 dB
between validations at a learning rate of 1e-5, and recomputing the statistics over 200 batches raised it by
0.5–1.6 dB (model cards). Only buffers change; no weight does.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import Dataset

_BN = nn.modules.batchnorm._BatchNorm


@torch.no_grad()
def recalibrate_bn(model: nn.Module, dataset: Dataset, batches: int = 200, batch_size: int = 8,
                   device: torch.device | str = "cpu") -> int:
    """Reset every BN layer's running statistics and re-estimate them as the plain (cumulative) average over
    ``batches`` batches of ``dataset`` items (``{"cover", "secrets"[, "bits"]}``), run through the model's own
    ``training_losses`` forward in train mode. Returns the number of BN layers; the model is left in eval mode."""
    layers = [m for m in model.modules() if isinstance(m, _BN) and m.track_running_stats]
    if not layers:
        return 0
    if batches < 1 or batch_size < 1:
        raise ValueError("batches and batch_size must be at least 1")
    momenta = [m.momentum for m in layers]
    for m in layers:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average: every batch counts equally
    model.train()
    try:
        for k in range(batches):
            items = [dataset[k * batch_size + j] for j in range(batch_size)]
            batch = {key: torch.stack([it[key] for it in items]).to(device) for key in items[0]}
            model.training_losses(batch)
    finally:
        for m, mom in zip(layers, momenta):
            m.momentum = mom
        model.eval()
    return len(layers)


def set_train_mode(model: nn.Module, freeze_bn: bool = False) -> None:
    """``model.train()``, with every BN layer then put back in eval mode when ``freeze_bn`` (it normalises with
    its running statistics and leaves them alone; its affine weight and bias still get gradients)."""
    model.train()
    if freeze_bn:
        for m in model.modules():
            if isinstance(m, _BN):
                m.eval()
