"""Classical targeted steganalysis of LSB replacement, one 8-bit channel at a time.

Every ``*_channel`` function takes one H×W uint8 channel and returns a float where higher means more likely
stego. Which come from `sealwatch <https://github.com/uibk-uncover/sealwatch>`_ and which are written here:

========================  =============================================  ==============================
name                      method                                         source of the code
========================  =============================================  ==============================
``chi2``                  Westfeld & Pfitzmann chi-square (PoV) attack   ``sealwatch.chi2.attack``
``spa``                   sample pair analysis, Dumitrescu et al.        ``sealwatch.spa.attack``
``ws``                    weighted stego-image, Fridrich & Goljan        ``sealwatch.ws.attack``
``rs``                    RS analysis, Fridrich, Goljan & Du             written here (not in sealwatch)
``primary_sets``          primary sets, Dumitrescu, Wu & Memon           written here (not in sealwatch)
========================  =============================================  ==============================

``sealwatch`` is imported lazily (it pulls in torchvision), so ``import deepsteg.analysis`` stays cheap.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["chi2_channel", "spa_channel", "ws_channel", "rs_channel", "primary_sets_channel"]


def _check_channel(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 2 or x.dtype != np.uint8:
        raise ValueError(f"expected one H×W uint8 channel, got {x.dtype} array of shape {x.shape}")
    return x


def _smaller_root(a: float, b: float, c: float) -> float:
    """The smaller real root of a·x² + b·x + c = 0 (the real part −b/2a when the roots are complex; the
    linear root when a = 0; NaN when the equation is degenerate)."""
    if a == 0:
        return -c / b if b != 0 else math.nan
    disc = b * b - 4 * a * c
    if disc < 0:  # complex pair: both have real part -b/2a (what sealwatch's spa does too)
        return -b / (2 * a)
    r = math.sqrt(disc)
    return min((-b - r) / (2 * a), (-b + r) / (2 * a))


# --------------------------------------------------------------------------- from sealwatch
def _sealwatch():  # noqa: ANN202 - the module
    """sealwatch, or a clear error: it is an optional extra because it pulls in torchvision, pandas and h5py."""
    try:
        import sealwatch
    except ImportError:
        from deepsteg.errors import DeepstegError

        raise DeepstegError("the chi2, spa and ws detectors need sealwatch: pip install 'deepsteg[analysis]'") from None
    return sealwatch




def chi2_channel(x: np.ndarray) -> float:
    """Chi-square attack on pairs of values (Westfeld & Pfitzmann, "Attacks on steganographic systems",
    Information Hiding 1999, LNCS 1768): the probability that the histogram's pairs of values (2k, 2k+1) have
    been equalised by LSB replacement — near 1 for a fully embedded image, near 0 for a cover.

    The test statistic comes from ``sealwatch.chi2.attack`` on the whole channel. sealwatch sums the
    squared deviation over *both* bins of each kept pair (twice Westfeld's statistic, since both deviations
    are equal) and always uses 255 degrees of freedom; we convert back to Westfeld's test — statistic / 2
    with (number of kept pairs − 1) degrees of freedom — before taking the p-value, which matters on small
    images where few bins are populated. StegExpose instead averages the p-values of growing prefixes of
    the RGB-interleaved pixel stream (aimed at sequential embedding); we test the whole channel (aimed at
    embedding spread over the image, as produced by random LSB replacement and by deep hiding networks).
    """
    import scipy.stats
    sw = _sealwatch()

    x = _check_channel(x)
    distance, _ = sw.chi2.attack(x)
    h = np.bincount(x.ravel(), minlength=256).astype(np.float64)
    kept = int(np.count_nonzero((h[0::2] + h[1::2]) / 2 > 4))  # sealwatch's mask, counted in pairs
    if kept < 2:
        return math.nan
    return float(scipy.stats.chi2.sf(float(distance) / 2.0, kept - 1))


def spa_channel(x: np.ndarray) -> float:
    """Sample pair analysis (Dumitrescu, Wu & Wang, "Detection of LSB steganography via sample pair
    analysis", IEEE Trans. Signal Process. 51(7), 2003; first in Dumitrescu, Wu & Memon, ICIP 2002): the
    estimated embedding rate p (fraction of samples carrying a message bit), via ``sealwatch.spa.attack``
    — horizontally adjacent pairs, smaller root of the SPA quadratic, estimates below 0.01 set to 0."""
    sw = _sealwatch()

    return float(sw.spa.attack(_check_channel(x)))


def ws_channel(x: np.ndarray) -> float:
    """Weighted stego-image analysis (Fridrich & Goljan, "On estimation of secret message length in LSB
    steganography in spatial domain", SPIE 5306, 2004; Ker & Böhme, "Revisiting weighted stego-image
    steganalysis", SPIE 6819, 2008): ``sealwatch.ws.attack`` with its defaults (KB predictor, local-variance
    weights 1/(5+σ²)) returns the change rate β = p/2; we return the embedding rate p = 2β so that every
    payload detector is on the same scale before fusion."""
    sw = _sealwatch()

    return 2.0 * float(sw.ws.attack(_check_channel(x)))


# --------------------------------------------------------------------------- written here


def _flip_pos(g: np.ndarray) -> np.ndarray:
    """F₁: 0↔1, 2↔3, …, 254↔255."""
    return g ^ 1


def _flip_neg(g: np.ndarray) -> np.ndarray:
    """F₋₁: −1↔0, 1↔2, …, 255↔256, i.e. F₋₁(x) = F₁(x + 1) − 1."""
    return ((g + 1) ^ 1) - 1


def _rs_counts(groups: np.ndarray, mask: np.ndarray) -> tuple[float, float, float, float]:
    """Relative sizes (R_M, S_M, R₋M, S₋M) of the regular and singular groups for mask M and −M."""
    def f(g: np.ndarray) -> np.ndarray:  # discrimination function: total variation along the group
        return np.abs(np.diff(g, axis=1)).sum(axis=1)

    f0 = f(groups)
    out = []
    for flip in (_flip_pos, _flip_neg):
        g = groups.copy()
        g[:, mask] = flip(g[:, mask])
        fm = f(g)
        out += [np.count_nonzero(fm > f0) / len(f0), np.count_nonzero(fm < f0) / len(f0)]
    return out[0], out[1], out[2], out[3]


def rs_channel(x: np.ndarray, mask: tuple[int, ...] = (0, 1, 1, 0)) -> float:
    """RS analysis (Fridrich, Goljan & Du, "Reliable detection of LSB steganography in color and grayscale
    images", ACM Multimedia & Security Workshop 2001, pp. 27–30): the estimated embedding rate p.

    The channel is cut into disjoint groups of ``len(mask)`` horizontally consecutive pixels (the paper's
    example mask [0 1 1 0]); the discrimination function is f(x₁…xₙ) = Σ|xᵢ₊₁ − xᵢ|. A group is regular
    (R) when flipping the masked pixels with F₁ (mask M) or F₋₁ (mask −M) increases f, singular (S) when it
    decreases f. With d₀ = R_M − S_M and d₋₀ = R₋M − S₋M measured on the image (at p/2 of LSBs flipped), and
    d₁, d₋₁ the same on the image with every LSB flipped (at 1 − p/2), the paper's quadratic
    2(d₁ + d₀)z² + (d₋₀ − d₋₁ − d₁ − 3d₀)z + d₀ − d₋₀ = 0 is solved for the root z of smaller absolute
    value, and p = z / (z − 1/2). The raw estimate is returned: it may be slightly negative on covers, and
    near p = 1 (where d₀ ≈ d₁) it is ill-conditioned; :mod:`deepsteg.analysis` folds it with min(|p|, 1).
    """
    x = _check_channel(x)
    n = len(mask)
    m = np.asarray(mask, dtype=bool)
    w = (x.shape[1] // n) * n
    if w == 0 or not m.any():
        return math.nan
    groups = x[:, :w].astype(np.int16).reshape(-1, n)
    r0, s0, rn0, sn0 = _rs_counts(groups, m)
    r1, s1, rn1, sn1 = _rs_counts(groups ^ 1, m)
    d0, d1, dn0, dn1 = r0 - s0, r1 - s1, rn0 - sn0, rn1 - sn1
    a, b, c = 2 * (d1 + d0), dn0 - dn1 - d1 - 3 * d0, d0 - dn0
    if a == 0:
        z = -c / b if b != 0 else math.nan
    else:
        disc = b * b - 4 * a * c
        if disc < 0:
            z = -b / (2 * a)
        else:
            r = math.sqrt(disc)
            z = min((-b - r) / (2 * a), (-b + r) / (2 * a), key=abs)
    if math.isnan(z) or z == 0.5:
        return math.nan
    return float(z / (z - 0.5))


def primary_sets_channel(x: np.ndarray) -> float:
    """Primary sets (Dumitrescu, Wu & Memon, "On steganalysis of random LSB embedding in continuous-tone
    images", ICIP 2002, pp. 641–644): the estimated embedding rate p.

    Over the multiset P of all horizontally *and* vertically adjacent sample pairs (u, v), the primary sets
    are X = {v even, u < v} ∪ {v odd, u > v}, Y = {v even, u > v} ∪ {v odd, u < v}, Z = {u = v}, and the
    split Y = W ∪ V with W = {⌊u/2⌋ = ⌊v/2⌋, u ≠ v} (pairs differing only in the LSB). Assuming |X| = |Y| in
    the cover, p is the smaller root of (|W| + |Z|)/2 · p² + (2|X| − |P|) p + |Y| − |X| = 0.

    StegExpose runs the same equation on the red channel's disjoint horizontal pairs only; sealwatch's
    ``spa`` (our ``spa``) on all horizontal pairs with small estimates floored to 0. Here both directions
    are used and the raw root is returned (it may be slightly negative on covers).
    """
    x = _check_channel(x).astype(np.int16)
    us = [x[:, :-1].ravel(), x[:-1, :].ravel()]
    vs = [x[:, 1:].ravel(), x[1:, :].ravel()]
    u, v = np.concatenate(us), np.concatenate(vs)
    if u.size == 0:
        return math.nan
    v_even = (v & 1) == 0
    nx = np.count_nonzero((v_even & (u < v)) | (~v_even & (u > v)))
    ny = np.count_nonzero((v_even & (u > v)) | (~v_even & (u < v)))
    nz = np.count_nonzero(u == v)
    nw = np.count_nonzero(((u >> 1) == (v >> 1)) & (u != v))
    npairs = u.size
    assert nx + ny + nz == npairs  # X, Y, Z partition P
    return float(_smaller_root((nw + nz) / 2.0, 2.0 * nx - npairs, float(ny - nx)))
