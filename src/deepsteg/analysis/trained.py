"""Feature-based steganalysis: SPAM and SRM features with the FLD ensemble (Kodovský, Fridrich & Holub 2012),
all three from ``sealwatch``, trained on cover/stego pairs and tested on disjoint images.

* ``spam``: 686 second-order SPAM features (Pevný, Bas & Fridrich 2010, T = 3) per colour channel, concatenated
  (2,058 dimensions) — colour stego changes every channel, and the per-channel models see each.
* ``srm``: the spatial rich model (Fridrich & Kodovský 2012, 34,671 dimensions) of the luma rounded to integers;
  per channel it would triple an already large extraction for little gain on photos whose channels correlate.

:func:`fld_detect` trains the ensemble on the training pairs (cover and stego of the same image stay together, as
the ensemble's out-of-bag estimates require) and scores the test images: accuracy at the ensemble's vote, AUC of
its vote confidence, and P_E.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from deepsteg.analysis.roc import p_e, roc_auc

FEATURES = ("spam", "srm")


def _sealwatch():  # noqa: ANN202 - the module
    try:
        import sealwatch
    except ImportError:  # pragma: no cover - an optional extra
        from deepsteg.errors import DeepstegError

        raise DeepstegError("feature-based steganalysis needs sealwatch: pip install 'deepsteg[analysis]'") from None
    return sealwatch


def _flat(feats) -> np.ndarray:  # noqa: ANN001 - OrderedDict of arrays
    return np.concatenate([np.asarray(v, dtype=np.float64).ravel() for v in feats.values()])


def features(kind: str, img: np.ndarray) -> np.ndarray:
    """The ``kind`` feature vector of one H×W×3 uint8 image."""
    sw = _sealwatch()
    if kind == "spam":
        return np.concatenate([_flat(sw.spam.extract(np.ascontiguousarray(img[..., c]).astype(np.uint8))) for c in range(3)])
    if kind == "srm":
        luma = np.rint(img.astype(np.float64) @ np.array([0.299, 0.587, 0.114])).astype(np.int64)
        return _flat(sw.srm.extract(luma))
    raise ValueError(f"unknown feature set {kind!r}; choose from {', '.join(FEATURES)}")


def fld_detect(train_cover: np.ndarray, train_stego: np.ndarray, test_cover: np.ndarray, test_stego: np.ndarray,
               seed: int = 0) -> dict[str, float]:
    """Train the FLD ensemble on paired feature rows; report accuracy, AUC and P_E on the test rows."""
    _sealwatch()  # a clear error when the analysis extra is missing
    from sealwatch.ensemble_classifier import FldEnsembleTrainer

    logging.getLogger("fld_ensemble_trainer.py").setLevel(logging.WARNING)
    n, dims = train_cover.shape
    # With few training pairs the automatic subspace search has nothing to search over: a fixed subspace a bit
    # below the sample count keeps each Fisher discriminant well-posed.
    d_sub = int(max(2, min(dims, max(2, (2 * n) // 3))))
    kw = {"L": 51, "d_sub": d_sub} if 2 * n < 200 else {}
    trainer = FldEnsembleTrainer(np.ascontiguousarray(train_cover), np.ascontiguousarray(train_stego), seed=seed,
                                 verbose=0, **kw)
    ensemble = trainer.train()[0]
    sc, ss = ensemble.predict_confidence(test_cover), ensemble.predict_confidence(test_stego)
    _, _, auc = roc_auc(sc, ss)
    acc = (float(np.sum(sc < 0)) + float(np.sum(ss > 0)) + 0.5 * float(np.sum(sc == 0) + np.sum(ss == 0))) \
        / (len(sc) + len(ss))
    return {"accuracy": acc, "auc": float(auc), "p_e": float(p_e(sc, ss)), "cover_scores": sc.tolist(),
            "stego_scores": ss.tolist()}


def detect_with_features(kind: str, train_pairs: Sequence[tuple[np.ndarray, np.ndarray]],
                         test_pairs: Sequence[tuple[np.ndarray, np.ndarray]], seed: int = 0,
                         progress: bool = False) -> dict[str, float]:
    """Features of every (cover, stego) uint8 pair, then :func:`fld_detect`."""
    from tqdm import tqdm

    bar = tqdm(total=2 * (len(train_pairs) + len(test_pairs)), desc=f"{kind} features", unit="img",
               disable=not progress)

    def mat(pairs: Sequence[tuple[np.ndarray, np.ndarray]], j: int) -> np.ndarray:
        rows = []
        for p in pairs:
            rows.append(features(kind, p[j]))
            bar.update(1)
        return np.stack(rows)

    try:
        return fld_detect(mat(train_pairs, 0), mat(train_pairs, 1), mat(test_pairs, 0), mat(test_pairs, 1), seed)
    finally:
        bar.close()
