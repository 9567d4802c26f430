"""ROC curve, AUC and P_E for a detector's scores on covers vs stegos (higher score = more likely stego).

scikit-learn is not a deepsteg dependency, so when it is missing the curve is computed here with numpy
(the same points as ``sklearn.metrics.roc_curve(drop_intermediate=False)``; ties between a cover and a
stego score count one half towards the AUC, as in the Mann–Whitney statistic).
"""

from __future__ import annotations

import numpy as np

__all__ = ["roc_auc", "p_e"]


def _scores(scores_cover, scores_stego) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN001
    c = np.asarray(scores_cover, dtype=np.float64).ravel()
    s = np.asarray(scores_stego, dtype=np.float64).ravel()
    if c.size == 0 or s.size == 0:
        raise ValueError("need at least one cover score and one stego score")
    if np.isnan(c).any() or np.isnan(s).any():
        raise ValueError("scores contain NaN")
    return c, s


def _roc_numpy(c: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # One ROC point per distinct score used as threshold ("stego" when score >= t), from the strictest down.
    y = np.concatenate([np.zeros(c.size), np.ones(s.size)])
    x = np.concatenate([c, s])
    order = np.argsort(-x, kind="mergesort")
    x, y = x[order], y[order]
    last = np.r_[np.nonzero(np.diff(x))[0], x.size - 1]  # last index of each run of equal scores
    tp = np.cumsum(y)[last]
    fp = (last + 1) - tp
    return np.r_[0.0, fp / c.size], np.r_[0.0, tp / s.size]


def roc_auc(scores_cover, scores_stego) -> tuple[np.ndarray, np.ndarray, float]:  # noqa: ANN001
    """``(fpr, tpr, auc)``: the ROC curve from (0, 0) to (1, 1) and the area under it (trapezoids)."""
    c, s = _scores(scores_cover, scores_stego)
    try:
        from sklearn.metrics import roc_curve
    except ImportError:
        fpr, tpr = _roc_numpy(c, s)
    else:
        y = np.r_[np.zeros(c.size), np.ones(s.size)]
        fpr, tpr, _ = roc_curve(y, np.r_[c, s], drop_intermediate=False)
    return fpr, tpr, float(np.trapezoid(tpr, fpr))


def p_e(scores_cover, scores_stego) -> float:  # noqa: ANN001
    """Minimum total error under equal priors: min over thresholds of (P_FA + P_MD) / 2 (0 = perfect
    separation, 0.5 = chance)."""
    fpr, tpr, _ = roc_auc(scores_cover, scores_stego)
    return float(np.min((fpr + (1.0 - tpr)) / 2.0))
