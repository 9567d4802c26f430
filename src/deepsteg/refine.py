"""Refine a stego against the fixed reveal network, per image — after FNNS (Kishore, Chen, Wang, Hopcroft &
Weinberger, "Fixed Neural Network Steganography: Train the Images, Not the Network", ICLR 2022), started from the
hiding network's stego as their FNNS-DE variant does.

A hiding network is trained for the average image; for *this* cover and secret its stego is a good start, not the
best 8-bit image for its own revealer. The sender has everything the receiver will have (the revealer) and more
(the secret), so the stego's pixels can be optimised directly: a few dozen Adam steps minimise the reveal error of
the **8-bit** stego (straight-through rounding: every step sees exactly what a PNG will hold), and after every step
the stego is projected back into the network's own distortion budget (the mean squared difference from the cover
of the network's 8-bit stego, per image). The cover PSNR therefore stays where the network put it, and the revealed
image improves. Nothing changes for the receiver: it runs the ordinary ``reveal``.

The best step per image is kept (the reveal error is measured on the rounded stego in every step's forward pass,
which is the receiver's computation), so refinement never returns a worse stego than the network's.

Costs and limits (measured figures: README, "Refinement"):

* each step is one reveal forward and backward: tens of milliseconds per 256² image on a laptop CPU for StegoPNet;
  images over ``max_whole_pixels`` are refined tile by tile on the same grid the receiver uses, each core with its
  context (already-refined neighbours included);
* the stego is optimised against this revealer's arithmetic. A receiver on other hardware computes the same network
  to float precision (about 1e-6), far below the 1/255 steps the optimisation moves pixels by;
* it changes the stego's noise structure: what the steganalysers of ``deepsteg bench`` make of refined stegos is
  measured separately (``deepsteg evaluate --refine``), not assumed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from deepsteg.errors import ModelError
from deepsteg.io import quantize
from deepsteg.tiling import tile_grid

#: Default number of refinement steps (CLI ``--refine``): most of the gain, measured on corpus/val (README).
DEFAULT_STEPS = 50
#: ``--refine auto`` spends about the time of DEFAULT_STEPS on an image of the model's ``refine_auto_pixels``
#: (half a minute on 2 CPU cores) on every size: smaller images get proportionally more steps, up to this many
#: (StegoPNet at 256²: 200 steps, ~13 s) ...
AUTO_MAX_STEPS = 200
#: ... and larger ones fewer, down to this many (StegoPNet at 1024²: 25 steps, ~28 s, +3.6 to +5.3 dB on two val
#: pairs); beyond that, none.
AUTO_MIN_STEPS = 20
#: Adam's step size in [0, 1] pixel units (≈ 0.5/255), decayed to zero by a cosine over the steps.
DEFAULT_LR = 2e-3


def check_refinable(model, steps: int, name: str | None = None) -> None:  # noqa: ANN001 - a model or its class
    """The one check behind every ``--refine``: ``steps`` must be 0 or more, and more than 0 only for a model whose
    reveal has a gradient (message models and the LSB models have none)."""
    if steps < 0:
        raise ModelError("refinement steps must be 0 or more")
    if steps and not getattr(model, "refinable", False):
        who = name or getattr(model, "model_name", "") or "this model"
        raise ModelError(f"{who} cannot be refined (its reveal has no gradient)")


def auto_steps(model, h: int, w: int, cuda: bool = False) -> tuple[int, int]:  # noqa: ANN001 - an ImageHider
    """``--refine auto`` for an h×w image: (steps, the largest image auto refines). An image of the model's
    reference size (``refine_auto_pixels`` on a CPU, ``max_whole_pixels`` on a GPU) gets DEFAULT_STEPS; others
    DEFAULT_STEPS × reference / pixels, between AUTO_MIN_STEPS and AUTO_MAX_STEPS: about the same time for every
    size. 0 steps for images that would get fewer than AUTO_MIN_STEPS."""
    if not getattr(model, "refinable", False):
        return 0, 0
    ref = model.max_whole_pixels if cuda else min(model.refine_auto_pixels, model.max_whole_pixels)
    budget = DEFAULT_STEPS * ref  # pixel-steps
    limit = budget // AUTO_MIN_STEPS
    if h * w > limit:
        return 0, limit
    return max(AUTO_MIN_STEPS, min(AUTO_MAX_STEPS, round(budget / (h * w)))), limit


def _per_image_mse(a: Tensor, b: Tensor) -> Tensor:
    return (a.float() - b.float()).pow(2).flatten(1).mean(1)


def _reveal_err(model, stego: Tensor, secrets: Sequence[Tensor],  # noqa: ANN001 - an ImageHider, a crop
                key: Sequence[Tensor], in_core) -> Tensor:
    """Per-image reveal MSE of ``stego`` (summed over the secrets) on the core."""
    return sum(_per_image_mse(in_core(r), in_core(s)) for r, s in zip(model._reveal_padded(stego, key), secrets))


def _refine_window(model, cover: Tensor, secrets: Sequence[Tensor],  # noqa: ANN001 - an ImageHider
                   stego: Tensor, key: Sequence[Tensor], steps: int, lr: float, core: tuple[int, int, int, int] | None,
                   ssim_weight: float = 0.0, budget_mse: float | None = None,
                   network: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Refine ``stego`` (N×3×h×w, one window) in the model's refinement space; only the ``core`` rectangle
    (window coordinates) may change and counts in the loss. ``budget_mse``: the cover distortion allowed (mean
    squared error in [0, 1] units; default the network's own). ``network``: the network's own stego for this window
    (default ``stego``), whose reveal error is reported as "before". Returns (8-bit stego, reveal MSE before,
    after)."""
    n = cover.shape[0]
    y0, y1, x0, x1 = core if core is not None else (0, cover.shape[-2], 0, cover.shape[-1])

    def in_core(x: Tensor) -> Tensor:
        return x[..., y0:y1, x0:x1]

    def cover_mse(x: Tensor) -> Tensor:  # in float64: the budget check must not round in the stego's favour
        return (in_core(x).double() - in_core(cover).double()).pow(2).flatten(1).mean(1)

    start = quantize(stego)
    param0, to_stego = model.refine_space(cover, start)
    anchor, _ = model.refine_space(cover, cover)  # the cover in the same space: the projection's centre
    own = _per_image_mse(in_core(start), in_core(cover)).clamp_min(1e-12)
    strict = budget_mse is not None  # a budget the caller set is a promise about the 8-bit stego: checked per step
    budget = own if not strict else torch.full_like(own, budget_mse)
    # projecting the float stego into a set budget leaves its rounding error on top: aim a little inside, then
    # steer the aim each step by how far the rounded stego landed from the budget
    target = budget if not strict else (budget - 0.2 / 255**2).clamp_min(0.25 * budget)
    mask = torch.zeros_like(param0[:, :1])
    mask[..., y0:y1, x0:x1] = 1.0
    with torch.no_grad():
        first_err = _reveal_err(model, start if network is None else quantize(network), secrets, key, in_core)
        # the stego as it is is a candidate too, wherever it meets the budget: never worse than the network's
        best_err = first_err.clone() if network is None else _reveal_err(model, start, secrets, key, in_core)
        if strict:
            best_err = torch.where(cover_mse(start) <= budget_mse, best_err, torch.full_like(best_err, math.inf))
    # channels_last, as the CLI's convolutions run (about 10 % faster per step on our CPU than a contiguous input)
    fmt = torch.channels_last if param0.dim() == 4 and param0.shape[1] > 1 else torch.contiguous_format
    param = param0.detach().clone(memory_format=fmt)
    if strict:  # the network's stego may lie outside a tighter budget: start from its projection
        _project(param, anchor, cover, to_stego, in_core, target, mask)
    param.requires_grad_(True)
    opt = torch.optim.Adam([param], lr=lr)
    best = start.detach().clone()
    for t in range(steps + 1):
        stego_q = quantize(to_stego(param), straight_through=True)
        err = _reveal_err(model, stego_q, secrets, key, in_core)
        with torch.no_grad():  # the receiver's error for this 8-bit stego: keep each image's best
            better = err.detach() < best_err
            if strict:
                landed = cover_mse(stego_q)
                better &= landed <= budget_mse
                ratio = (budget_mse / landed.clamp_min(1e-15)).sqrt().to(target.dtype)
                target = (target * ratio).clamp(0.05 * budget, budget)
            best_err = torch.where(better, err.detach(), best_err)
            best[better] = stego_q.detach()[better]
        if t == steps:
            break
        opt.zero_grad(set_to_none=True)
        loss = err.sum()
        if ssim_weight:
            from pytorch_msssim import ssim as _ssim

            loss = loss + ssim_weight * (1 - _ssim(in_core(stego_q), in_core(cover), data_range=1.0,
                                                   size_average=False)).sum()
        loss.backward()
        for g in opt.param_groups:  # cosine decay to zero
            g["lr"] = lr * 0.5 * (1 + math.cos(math.pi * t / steps))
        param.grad.mul_(mask)
        opt.step()
        with torch.no_grad():  # project back into the distortion budget, per image, on the core
            _project(param, anchor, cover, to_stego, in_core, target, mask)
    missed = [i + 1 for i, e in enumerate(best_err.tolist()) if not math.isfinite(e)]
    if missed:  # no step met a set budget after rounding
        psnr = -10 * math.log10(budget_mse)  # type: ignore[arg-type]
        raise ModelError(f"no 8-bit stego within cover PSNR {psnr:g} dB was found in {steps} steps for image "
                         f"{', '.join(map(str, missed))} of the batch; ask for a lower --cover-psnr")
    return quantize(best), first_err, best_err


@torch.no_grad()
def _project(param: Tensor, anchor: Tensor, cover: Tensor, to_stego, in_core,  # noqa: ANN001 - callables
             budget: Tensor, mask: Tensor) -> None:
    """Pull ``param`` towards ``anchor`` (the cover in refinement space) until the stego's squared error from
    ``cover`` on the core is within ``budget`` per image, in place; the context outside the core mask stays."""
    param.clamp_(0.0, 1.0)
    d = param - anchor
    e = _per_image_mse(in_core(to_stego(param)), in_core(cover))
    scale = torch.where(e > budget, (budget / e.clamp_min(1e-12)).sqrt(), torch.ones_like(e))
    projected = (anchor + d * scale.view(-1, 1, 1, 1)).clamp(0.0, 1.0)
    param.copy_(torch.where(mask.bool(), projected, param))


def refine(model, cover: Tensor, secrets: Sequence[Tensor], stego: Tensor | None = None,  # noqa: ANN001
           steps: int = DEFAULT_STEPS, lr: float = DEFAULT_LR, key: str | None = None,
           tile: int | None = None, ssim_weight: float = 0.0,
           cover_psnr: float | None = None) -> tuple[Tensor, dict[str, list[float]]]:
    """Refine ``stego`` (default: ``model.hide(cover, *secrets)``) for ``model``'s own revealer.

    ``cover`` N×3×H×W and ``secrets`` as :meth:`ImageHider.hide` takes them. Returns the refined stego, already on
    the 8-bit grid, and per-image ``secret_psnr_before`` / ``secret_psnr_after`` (dB, mean over the secrets, as
    the receiver's reveal of the 8-bit stego gives them). ``steps=0`` returns the network's stego, rounded.
    ``ssim_weight`` > 0 adds ``w · (1 − SSIM(stego, cover))`` to the loss: the same distortion budget, spent where
    it disturbs the cover's structure less, at a price in reveal quality (``isgan`` on two val images: 0.01 gave
    cover SSIM +0.0035 for −0.05 dB of secret; 0.05 gave +0.010 for −2.0 dB).
    ``cover_psnr``: the distortion budget as a cover PSNR (dB, 8-bit, per image) instead of the network's own:
    lower spends more distortion on the secret, higher buys a cleaner cover. Every returned stego meets it after
    rounding (the network's stego is first pulled into it); ``steps`` must then be more than 0.
    """
    check_refinable(model, steps or 1)  # 0 steps too: the result is returned as a refinement
    budget = check_cover_psnr(cover_psnr, steps)
    # callable from inside inference mode (evaluate, the CLI): gradients are needed here, and tensors made in
    # inference mode cannot be saved for backward, so the inputs are copied out of it
    with torch.inference_mode(False), torch.enable_grad():
        cover, secrets = cover.clone(), [s.clone() for s in secrets]
        stego = None if stego is None else stego.clone()
        return _refine(model, cover, secrets, stego, steps, lr, key, tile, ssim_weight, budget)


def check_cover_psnr(cover_psnr: float | None, steps: int) -> float | None:
    """``--cover-psnr``: None, or a PSNR in dB that refinement can keep (needs steps); returns its budget MSE."""
    if cover_psnr is None:
        return None
    if not math.isfinite(cover_psnr) or not 10.0 <= cover_psnr <= 60.0:
        raise ModelError(f"cover PSNR must be between 10 and 60 dB, not {cover_psnr}")
    if steps <= 0:
        raise ModelError("a cover PSNR is kept by refinement: it needs refinement steps (--refine N)")
    return 10 ** (-cover_psnr / 10)


def _refine(model, cover: Tensor, secrets: Sequence[Tensor], stego: Tensor | None, steps: int,  # noqa: ANN001
            lr: float, key: str | None, tile: int | None, ssim_weight: float,
            budget: float | None) -> tuple[Tensor, dict[str, list[float]]]:
    squeeze = cover.dim() == 3
    cover = model._check(cover, "cover")
    secrets = [model._check(s, f"secret {i + 1}") for i, s in enumerate(secrets)]
    with torch.no_grad():
        if stego is None:
            stego = model.hide(cover, *secrets, key=key, tile=tile)
        stego = model._check(stego, "stego")
    if budget is not None:  # a cover that is not 8-bit (upscaled, 16-bit) sets a floor on any 8-bit stego's error
        floor = _per_image_mse(quantize(cover), cover).double()
        if bool((floor > budget).any()):
            best = -10 * math.log10(max(float(floor.max()), 1e-30))
            raise ModelError(f"cover PSNR {-10 * math.log10(budget):g} dB is out of reach: rounding this cover to "
                             f"8 bits alone gives {best:.2f} dB")
    k = model._key_input(key, cover)
    h, w = cover.shape[-2:]
    t = model._tile_for(h, w, tile)
    was_training = model.training
    model.eval()
    flags = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        if not t:
            out, before, after = _refine_window(model, cover, secrets, stego, k, steps, lr, None, ssim_weight, budget)
        else:  # the receiver's grid; each core refined in its context window, neighbours as refined so far
            network = quantize(stego)  # "before" is the network's stego, without refined neighbours
            out = network.clone()
            before = torch.zeros(cover.shape[0], device=cover.device)
            after = torch.zeros_like(before)
            for (y0, y1, x0, x1), (Y0, Y1, X0, X1) in tile_grid(h, w, t, model.tile_margin, model.size_multiple):
                win = (..., slice(Y0, Y1), slice(X0, X1))
                res, b, a = _refine_window(model, cover[win], [s[win] for s in secrets], out[win],
                                           [x[win] for x in k], steps, lr, (y0 - Y0, y1 - Y0, x0 - X0, x1 - X0),
                                           ssim_weight, budget, network=network[win])
                out[..., y0:y1, x0:x1] = res[..., y0 - Y0:y1 - Y0, x0 - X0:x1 - X0]
                share = (y1 - y0) * (x1 - x0) / (h * w)  # error means over the whole image
                before += b * share
                after += a * share
    finally:
        for p, f in zip(model.parameters(), flags):
            p.requires_grad_(f)
        model.train(was_training)
    ns = len(secrets)

    def db(e: Tensor) -> list[float]:
        return [10 * math.log10(1.0 / max(v / ns, 1e-12)) for v in e.tolist()]

    info = {"secret_psnr_before": db(before), "secret_psnr_after": db(after)}
    return (out[0] if squeeze else out), info


__all__ = ["AUTO_MAX_STEPS", "AUTO_MIN_STEPS", "DEFAULT_LR", "DEFAULT_STEPS", "auto_steps", "check_cover_psnr",
           "check_refinable", "refine"]
