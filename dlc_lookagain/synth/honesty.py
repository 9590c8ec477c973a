"""Checks that the vision-dependent behaviors really need the video.

The generator claims that grooming and resting look the same in keypoints, and that
being at the hopper is not the same as eating. This module measures it with a
keypoint-only classifier: logistic regression on features of the *noisy tracker
output* (speeds, turning, segment lengths and bends of the keypoint chain,
likelihoods, optionally distances to hopper, spout and nest), cross-validated with
whole recordings held out, scored by ROC AUC. Two levels:

* ``"frame"``: one sample per frame, with 1-s and 3-s context (mean and sd);
* ``"bout"``: one sample per labeled bout (medians over its confident frames). Averaging
  over a bout removes keypoint noise, so this is the *stronger* test: it catches even
  small posture differences (``tests/test_synth.py`` plants one to show it).

A positive control (walk vs rest) shows that the classifier works where keypoints
suffice. ``python -m dlc_lookagain.synth check`` prints the numbers quoted in
``docs/synthetic_data.md``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import uniform_filter1d
from scipy.optimize import minimize
from scipy.special import ndtri

from dlc_lookagain.synth.config import GeneratorConfig
from dlc_lookagain.synth.ethogram import BEHAVIOR_INDEX, BODYPARTS
from dlc_lookagain.synth.generate import Recording, simulate_recording

logger = logging.getLogger(__name__)

_NOSE, _LEFT_EAR, _RIGHT_EAR, _NECK, _CENTER, _BASE, _TIP = (
    BODYPARTS.index(n)
    for n in ("nose", "left_ear", "right_ear", "neck", "body_center", "tail_base", "tail_tip")
)


def _angle(v: np.ndarray) -> np.ndarray:
    return np.arctan2(v[..., 1], v[..., 0])


def _wrap(a: np.ndarray) -> np.ndarray:
    return (a + np.pi) % (2 * np.pi) - np.pi


def _fill_gaps(xy: np.ndarray) -> np.ndarray:
    """Carry the last seen position forward over NaN (maDLC gaps), as a simple pipeline would."""
    xy = xy.copy()
    flat = xy.reshape(len(xy), -1)
    for col in flat.T:
        good = np.isfinite(col)
        if not good.any():
            col[:] = 0.0
            continue
        idx = np.where(good, np.arange(len(col)), 0)
        np.maximum.accumulate(idx, out=idx)
        col[:] = col[idx]
        col[: np.argmax(good)] = col[np.argmax(good)]
    return flat.reshape(xy.shape)


def keypoint_features(recording: Recording, track: int = 0, places: bool = True) -> np.ndarray:
    """Per-frame keypoint-only features of one pose track, ``(T, F)``.

    Uses only what a pose file holds (noisy coordinates and likelihoods): speeds,
    turning rate, segment lengths and the bends between successive segments of the
    nose-neck-center-tail base-tail tip chain, ear span, likelihoods; with ``places``
    also the nose's distance to the hopper, spout and nest (a user could mark them once
    per video). Each feature also enters as mean and sd over 1 s and 3 s.
    """
    pred, scene, fps = recording.prediction, recording.scene, recording.fps
    xy = _fill_gaps(pred.xy[:, track])
    lik = np.nan_to_num(pred.likelihood[:, track], nan=0.0)
    body = np.linalg.norm(xy[:, _NOSE] - xy[:, _BASE], axis=1)
    scale = float(np.median(body)) or 1.0

    def speed(k: int) -> np.ndarray:
        return np.r_[0.0, np.linalg.norm(np.diff(xy[:, k], axis=0), axis=1)] * fps / scale

    heading = _angle(xy[:, _NECK] - xy[:, _BASE])
    chain = [(_NOSE, _NECK), (_NECK, _CENTER), (_CENTER, _BASE), (_BASE, _TIP)]
    seg_angle = [_angle(xy[:, a] - xy[:, b]) for a, b in chain]
    columns = [
        speed(_CENTER),
        speed(_NOSE),
        speed(_TIP),
        np.abs(np.r_[0.0, _wrap(np.diff(heading))]) * fps,
        body / scale,
        np.linalg.norm(xy[:, _LEFT_EAR] - xy[:, _RIGHT_EAR], axis=1) / scale,
        *(np.linalg.norm(xy[:, a] - xy[:, b], axis=1) / scale for a, b in chain),
        *(np.abs(_wrap(seg_angle[i] - seg_angle[i + 1])) for i in range(3)),
        lik.mean(axis=1),
        lik[:, _NOSE],
        lik[:, _TIP],
    ]
    if places:
        targets = [scene.hopper.target, scene.spout.target, scene.nest.center]
        columns += [np.linalg.norm(xy[:, _NOSE] - p, axis=1) / scale for p in targets]
    base = np.column_stack(columns)
    feats = [base]
    for seconds in (1.0, 3.0):
        size = max(1, int(round(seconds * fps)))
        mean = uniform_filter1d(base, size, axis=0, mode="nearest")
        sq = uniform_filter1d(base**2, size, axis=0, mode="nearest")
        feats += [mean, np.sqrt(np.maximum(sq - mean**2, 0.0))]
    return np.column_stack(feats)


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1.0):
    """L2-regularized logistic regression (L-BFGS on the penalized log-likelihood).

    Parameters
    ----------
    x : np.ndarray
        ``(n, f)`` features.
    y : np.ndarray
        ``(n,)`` 0/1 targets.
    l2 : float
        Ridge penalty on the feature weights (features as normal scores of their training
        quantiles); the intercept is free.

    Returns
    -------
    callable
        ``predict(x) -> probability`` (features are scaled with the training statistics).
    """
    # Features go through their training quantiles to normal scores: keypoint outliers give
    # speed and angle features heavy tails that would otherwise dominate the fit.
    ref = np.sort(np.asarray(x, dtype=np.float64), axis=0)
    n = len(ref)

    def scaled(values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=np.float64)
        ranks = np.column_stack(
            [
                (
                    np.searchsorted(ref[:, j], values[:, j], "left")
                    + np.searchsorted(ref[:, j], values[:, j], "right")
                )
                / 2.0
                for j in range(ref.shape[1])
            ]
        )
        return np.column_stack([np.ones(len(values)), ndtri((ranks + 0.5) / (n + 1.0))])

    z = scaled(x)
    y = np.asarray(y, dtype=np.float64)
    penalty = np.full(z.shape[1], float(l2))
    penalty[0] = 0.0

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        m = z @ w
        # log(1 + exp(m)) - y m, computed stably
        nll = np.sum(np.logaddexp(0.0, m) - y * m) + 0.5 * np.sum(penalty * w * w)
        p = 0.5 * (1.0 + np.tanh(0.5 * m))
        return float(nll), z.T @ (p - y) + penalty * w

    w = minimize(loss, np.zeros(z.shape[1]), jac=True, method="L-BFGS-B").x

    def predict(xnew: np.ndarray) -> np.ndarray:
        return 0.5 * (1.0 + np.tanh(0.5 * (scaled(xnew) @ w)))

    return predict


def roc_auc(score: np.ndarray, y: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with tied ranks averaged)."""
    y = np.asarray(y, bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("AUC needs both classes")
    order = np.argsort(score, kind="mergesort")
    ranks = np.empty(len(score))
    sorted_scores = np.asarray(score)[order]
    # Average ranks over ties.
    _, start, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = start + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


@dataclass
class Separability:
    """Cross-validated AUC of a keypoint-only classifier for ``positive`` vs ``negative``."""

    positive: str
    negative: str
    level: str
    auc: float
    n_positive: int
    n_negative: int


def _near(rec: Recording, station: str, radius: float = 0.35) -> np.ndarray:
    """``(T, A)`` True where the true nose is within ``radius`` body lengths of the station."""
    target = getattr(rec.scene, station).target
    nose = rec.trajectory.keypoints[:, :, 0].astype(np.float64)
    return np.linalg.norm(nose - target, axis=-1) < radius * rec.trajectory.lengths[None, :]


def _bouts(mask: np.ndarray) -> list[tuple[int, int]]:
    """``[start, stop)`` runs of True."""
    change = np.diff(np.r_[0, mask.astype(np.int8), 0])
    return list(zip(np.flatnonzero(change == 1), np.flatnonzero(change == -1), strict=True))


_N_BASE_PLACES = 19  # base features with places (see keypoint_features)
_N_BASE = 16
_LIK_COLUMN = 13


def _samples(
    rec: Recording, positive: str, negative: Sequence[str], near: str | None, places: bool, level: str
) -> tuple[np.ndarray, np.ndarray]:
    """Features and 0/1 targets of one single-animal recording."""
    labels = rec.trajectory.labels[:, 0]
    pos = labels[:, BEHAVIOR_INDEX[positive]]
    neg = labels[:, [BEHAVIOR_INDEX[n] for n in negative]].any(axis=1)
    keep = pos ^ neg
    if near is not None:
        keep &= _near(rec, near)[:, 0]
    x = keypoint_features(rec, 0, places)
    if level == "frame":
        return x[keep], pos[keep].astype(np.float64)
    base = x[:, : _N_BASE_PLACES if places else _N_BASE]
    rows, ys = [], []
    for mask, y in ((pos & keep, 1.0), (neg & keep, 0.0)):
        for start, stop in _bouts(mask):
            seg = base[start:stop]
            good = seg[:, _LIK_COLUMN] > 0.6  # what a careful analyst keeps
            use = seg[good] if good.sum() >= 3 else seg
            rows.append(np.r_[np.median(use, axis=0), good.mean()])
            ys.append(y)
    width = base.shape[1] + 1
    return np.reshape(rows, (-1, width)), np.asarray(ys)


def separability(
    recordings: Sequence[Recording],
    positive: str,
    negative: str | Sequence[str],
    near: str | None = None,
    places: bool = True,
    level: str = "frame",
    folds: int = 5,
    l2: float = 1.0,
) -> Separability:
    """Cross-validated AUC of a keypoint-only classifier, whole recordings held out.

    Parameters
    ----------
    recordings : sequence of Recording
        Single-animal recordings (animal 0 of each is used).
    positive : str
        Behavior of the positive class.
    negative : str or sequence of str
        Behavior(s) of the negative class.
    near : str, optional
        Only frames with the nose at this station (``"hopper"`` or ``"spout"``).
    places : bool
        Include the distances to hopper, spout and nest among the features.
    level : str
        ``"frame"`` or ``"bout"`` (see the module docstring).
    folds : int
        Recording ``i`` is tested in fold ``i % folds``.
    l2 : float
        Ridge penalty of the logistic regression.

    Raises
    ------
    ValueError
        If a fold's training data lack one of the classes.
    """
    negative = (negative,) if isinstance(negative, str) else tuple(negative)
    if level not in ("frame", "bout"):
        raise ValueError(f"level must be 'frame' or 'bout', got {level!r}")
    data = [_samples(rec, positive, negative, near, places, level) for rec in recordings]
    scores, truth = [], []
    for fold in range(min(folds, len(data))):
        train = [d for i, d in enumerate(data) if i % folds != fold]
        test = [d for i, d in enumerate(data) if i % folds == fold]
        x_tr = np.concatenate([d[0] for d in train])
        y_tr = np.concatenate([d[1] for d in train])
        if len(y_tr) == 0 or y_tr.min() == y_tr.max():
            raise ValueError(f"the training recordings lack {positive} or {'/'.join(negative)} samples")
        model = fit_logistic(x_tr, y_tr, l2)
        for x_te, y_te in test:
            if len(y_te):
                scores.append(model(x_te))
                truth.append(y_te)
    y = np.concatenate(truth).astype(bool)
    where = f" at the {near}" if near else ""
    return Separability(
        positive,
        "/".join(negative) + where,
        level,
        roc_auc(np.concatenate(scores), y),
        int(y.sum()),
        int((~y).sum()),
    )


def near_station_share(
    recordings: Sequence[Recording], station: str = "hopper", radius: float = 0.35, behavior: str = "eat"
) -> tuple[float, int]:
    """Share of "nose near the station" frames that are *not* ``behavior``, and their number.

    Uses the true nose position (tracker noise would only blur it) and ``radius`` in body lengths.
    """
    not_b, total = 0, 0
    for rec in recordings:
        near = _near(rec, station, radius)
        doing = rec.trajectory.labels[:, :, BEHAVIOR_INDEX[behavior]]
        not_b += int((near & ~doing).sum())
        total += int(near.sum())
    return (not_b / total if total else float("nan")), total


def honesty_report(cfg: GeneratorConfig, n_recordings: int = 15, folds: int = 5) -> dict:
    """The numbers of ``docs/synthetic_data.md``: cross-validated AUCs and near-station shares.

    Parameters
    ----------
    cfg : GeneratorConfig
        Scene and length of the recordings; they are simulated with one animal and
        without video.
    n_recordings : int
        Recordings to simulate (video indices 0..n-1 of ``cfg``).
    folds : int
        Cross-validation folds (whole recordings held out).

    Returns
    -------
    dict
        ``auc_<positive>_vs_<negative>[_bouts]`` and ``near_<station>_not_<behavior>`` values.
    """
    cfg = cfg.replace(animals=(1,))
    recs = [simulate_recording(cfg, i, 1, multi_animal=False) for i in range(n_recordings)]
    out = {}
    checks = (
        ("groom", ("rest",), None),
        ("rear", ("rest",), None),
        ("eat", ("rest", "groom"), "hopper"),
        ("drink", ("rest", "groom"), "spout"),
        ("walk", ("rest",), None),
    )
    for pos, neg, near in checks:
        for level in ("frame", "bout"):
            key = (
                f"auc_{pos}_vs_{'/'.join(neg)}"
                + (f"_at_{near}" if near else "")
                + ("_bouts" if level == "bout" else "")
            )
            try:
                s = separability(recs, pos, neg, near, level=level, folds=folds)
            except ValueError as err:  # too little data for one of the classes
                logger.warning("keypoint-only AUC %s: not measurable (%s)", key, err)
                out[key] = float("nan")
                continue
            out[key] = s.auc
            logger.info(
                "keypoint-only AUC %s vs %s per %s: %.3f (%d vs %d samples)",
                pos,
                s.negative,
                level,
                s.auc,
                s.n_positive,
                s.n_negative,
            )
    for station, behavior in (("hopper", "eat"), ("spout", "drink")):
        share, n = near_station_share(recs, station, behavior=behavior)
        out[f"near_{station}_not_{behavior}"] = share
        logger.info("nose at the %s but not %s: %.1f%% of %d frames", station, behavior, 100 * share, n)
    return out
