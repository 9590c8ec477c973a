"""Blocked cross-validation, decision thresholds and per-behavior F1.

Adjacent frames are near-duplicates, so every score here comes from contiguous time blocks (with a
gap) or whole recordings held out, never from random frames.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

#: Candidate minimum bout lengths (seconds) tried with a threshold chosen by cross-validation.
MIN_BOUT_CANDIDATES_S = (0.0, 0.1, 0.2, 0.4, 0.8)

def _f1_per_column(pred: np.ndarray, y: np.ndarray) -> np.ndarray:
    """F1 of each column of a bool ``(N, K)`` decision matrix against ``y (N,)``; NaN when 0/0."""
    tp = (pred & y[:, None]).sum(0)
    denom = pred.sum(0) + y.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, 2 * tp / np.maximum(denom, 1), np.nan)


def best_threshold(
    score: np.ndarray, y: np.ndarray, candidates: np.ndarray | None = None
) -> tuple[float, float]:
    """Threshold on ``score >= thr`` that maximizes F1 against ``y``.

    Parameters
    ----------
    score : np.ndarray
        ``(N,)`` decision scores (higher = more likely positive).
    y : np.ndarray
        ``(N,)`` bool truth.
    candidates : np.ndarray, optional
        Thresholds to try; default 201 quantiles of ``score``.

    Returns
    -------
    threshold : float
    f1 : float
        F1 at that threshold (NaN if ``y`` has no positive and nothing is predicted).
    """
    score = np.asarray(score, dtype=np.float64)
    y = np.asarray(y, dtype=bool)
    if candidates is None:
        candidates = np.unique(np.quantile(score, np.linspace(0, 1, 201)))
    f1 = _f1_per_column(score[:, None] >= candidates[None, :], y)
    if np.isnan(f1).all():
        return float(candidates[-1]), float("nan")
    k = int(np.nanargmax(f1))
    return float(candidates[k]), float(f1[k])


def blocked_folds(
    n_frames: int,
    k: int = 5,
    *,
    fps: float | None = None,
    gap_s: float = 1.0,
    gap_frames: int | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Contiguous time-block cross-validation folds with a gap around each test block.

    Parameters
    ----------
    n_frames : int
        Recording length T.
    k : int
        Number of folds; test blocks are consecutive and as equal as possible.
    fps : float, optional
        Needed to turn ``gap_s`` into frames unless ``gap_frames`` is given.
    gap_s : float
        Seconds left out on each side of the test block, so that no training frame lies within
        ``gap_s`` of a test frame (covers the half-width of the feature windows).
    gap_frames : int, optional
        Gap in frames; overrides ``gap_s``.

    Returns
    -------
    list of (train, test)
        Sorted int frame indices. Every frame is in exactly one test block.
    """
    if gap_frames is None:
        if fps is None:
            raise ValueError("blocked_folds needs fps to turn gap_s into frames (or pass gap_frames)")
        gap_frames = int(math.ceil(gap_s * fps))
    if k < 2 or n_frames < k:
        raise ValueError(f"need 2 <= k <= n_frames, got k={k}, n_frames={n_frames}")
    edges = np.linspace(0, n_frames, k + 1).round().astype(int)
    frames = np.arange(n_frames)
    folds = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        test = frames[lo:hi]
        train = frames[(frames < lo - gap_frames) | (frames >= hi + gap_frames)]
        folds.append((train, test))
    return folds


def f1_table(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    behaviors: Sequence[str],
    *,
    mask: np.ndarray | None = None,
    zero_division: float = np.nan,
) -> pd.DataFrame:
    """Per-behavior precision, recall and F1 (binary, one behavior at a time) plus the macro row.

    Parameters
    ----------
    y_true, y_pred : np.ndarray
        bool arrays ``(..., C)`` of the same shape (e.g. ``(T, I, C)`` or ``(N, C)``).
    behaviors : sequence of str
        The C behavior names.
    mask : np.ndarray, optional
        bool array of shape ``y_true.shape[:-1]``: only these frames are scored (e.g. annotated
        test frames).
    zero_division : float
        Value for a score whose denominator is 0 (no positives and no predictions for F1). NaN
        (the default) keeps such a fold out of means instead of counting it as 0 or 1.

    Returns
    -------
    pandas.DataFrame
        Columns ``behavior, precision, recall, f1, n_true, n_pred, n_frames``; one row per
        behavior, then ``macro``: the mean of the per-behavior values ignoring NaN, with summed
        counts.
    """
    yt = np.asarray(y_true, dtype=bool)
    yp = np.asarray(y_pred, dtype=bool)
    behaviors = [str(b) for b in behaviors]
    if yt.shape != yp.shape:
        raise ValueError(f"y_true {yt.shape} and y_pred {yp.shape} differ")
    if yt.ndim == 1:
        yt, yp = yt[:, None], yp[:, None]
    if yt.shape[-1] != len(behaviors):
        raise ValueError(f"{yt.shape[-1]} label columns for {len(behaviors)} behaviors")
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        yt, yp = yt[mask], yp[mask]
    yt = yt.reshape(-1, len(behaviors))
    yp = yp.reshape(-1, len(behaviors))
    tp = (yt & yp).sum(0)
    fp = (~yt & yp).sum(0)
    fn = (yt & ~yp).sum(0)

    def ratio(num, den):
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(den > 0, num / np.maximum(den, 1), zero_division)

    table = pd.DataFrame(
        {
            "behavior": behaviors,
            "precision": ratio(tp, tp + fp),
            "recall": ratio(tp, tp + fn),
            "f1": ratio(2 * tp, 2 * tp + fp + fn),
            "n_true": yt.sum(0),
            "n_pred": yp.sum(0),
            "n_frames": np.full(len(behaviors), yt.shape[0]),
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN column -> NaN macro
        macro = {c: float(np.nanmean(table[c].to_numpy(dtype=float))) if len(table) else np.nan
                 for c in ("precision", "recall", "f1")}
    macro.update(behavior="macro", n_true=int(tp.sum() + fn.sum()), n_pred=int(yp.sum()),
                 n_frames=int(yt.shape[0]))
    return pd.concat([table, pd.DataFrame([macro])], ignore_index=True)
