"""Keypoint-only baselines for per-frame behavior labels (SimBA- and BehaviorDEPOT-style).

These give the numbers a keypoint+video model has to beat. Nothing here looks at video.

* :func:`keypoint_features`: a hand-made per-frame feature set in the spirit of SimBA's, built so
  that it works for any skeleton (no bodypart names are assumed, except an optional
  nose/snout/head for the facing angle) and transfers across resolutions (lengths are divided by
  the animal's median body length).
* :class:`SimbaForest`: one balanced random forest per behavior on those features, with a
  decision threshold (and optionally a minimum bout length) chosen on the training fold only.
* :func:`speed_threshold_baseline` / :class:`SpeedThreshold`: BehaviorDEPOT-style immobility
  rule for freezing: smoothed, size-normalized centroid speed below a learned threshold.
* :func:`blocked_folds`: contiguous-time cross-validation folds with a gap (adjacent frames are
  near-duplicates, so random frame splits leak).
* :func:`f1_table`: per-behavior precision/recall/F1 and their macro average.

Naming contract for features: every feature whose name contains ``_px`` is in pixel units; all
others are unitless, in body lengths (``_bl``), radians, likelihoods or fractions, and therefore
do not change when all coordinates are scaled by a constant.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from dlc_lookagain.features.bank import _social_features, keypoint_features  # noqa: F401 (re-exported)
from dlc_lookagain.features.kinematics import (  # noqa: F401 (re-exported for the benchmarks)
    HEAD_WORDS,
    _angle_between,
    _angle_rate,
    _ddt,
    _odd_window,
    _resolve_fps,
    _runs,
    _runs_to_mask,
    body_lengths,
    convex_hull_area,
    head_index,
    interpolate_gaps,
    remove_short_bouts,
)
from dlc_lookagain.io.record import PoseRecord
from dlc_lookagain.model.cross_validation import (  # noqa: F401 (re-exported)
    MIN_BOUT_CANDIDATES_S,
    _f1_per_column,
    best_threshold,
    blocked_folds,
    f1_table,
)

logger = logging.getLogger(__name__)


# ----------------------------------------------------------------------------------------------
# Speed threshold (BehaviorDEPOT-style freezing)
# ----------------------------------------------------------------------------------------------


def smoothed_speed(
    record: PoseRecord,
    *,
    window_s: float = 0.5,
    point: str = "centroid",
    fps: float | None = None,
    max_gap_s: float = 0.5,
) -> np.ndarray:
    """Speed in body lengths per second, rolling median over ``window_s`` (centered).

    Parameters
    ----------
    record : PoseRecord
    window_s : float
        Rolling-median window (nearest odd number of frames).
    point : {"centroid", "head"}
        Mean of all keypoints, or the head keypoint of :func:`head_index`.
    fps : float, optional
        Overrides ``record.fps``.
    max_gap_s : float
        Interior gaps up to this long are interpolated first.

    Returns
    -------
    np.ndarray
        float64 ``(T, I)``; NaN only where the point is missing for longer than the window.
    """
    fps = _resolve_fps(record, fps)
    kp = interpolate_gaps(record.keypoints, int(round(max_gap_s * fps)))
    if point == "centroid":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            centroid = np.nanmean(kp, axis=2)
    elif point == "head":
        centroid = kp[:, :, head_index(record.bodyparts)]
    else:
        raise ValueError(f"point must be 'centroid' or 'head', got {point!r}")
    vel = _ddt(centroid, fps)
    speed = np.hypot(vel[..., 0], vel[..., 1]) / body_lengths(kp)
    roll = pd.DataFrame(speed).rolling(_odd_window(window_s, fps), center=True, min_periods=1)
    return roll.median().to_numpy()


class SpeedThreshold:
    """Immobility = smoothed normalized speed at or below a threshold learned from labels.

    Parameters
    ----------
    window_s : float
        Rolling-median window of :func:`smoothed_speed`.
    point : {"centroid", "head"}
        Whose speed: the keypoint centroid (default) or the head keypoint.
    fps : float, optional
        Overrides ``record.fps``.

    Attributes
    ----------
    threshold_ : float
        Body lengths per second; chosen to maximize F1 on the annotated frames given to :meth:`fit`.
    train_f1_ : float
        F1 at that threshold on those frames.
    """

    def __init__(self, *, window_s: float = 0.5, point: str = "centroid", fps: float | None = None) -> None:
        self.window_s = window_s
        self.point = point
        self.fps = fps
        self.threshold_: float | None = None
        self.train_f1_ = float("nan")

    def speed(self, record: PoseRecord) -> np.ndarray:
        """Smoothed normalized speed ``(T, I)``."""
        return smoothed_speed(record, window_s=self.window_s, point=self.point, fps=self.fps)

    def fit(self, record: PoseRecord, present: np.ndarray, annotated: np.ndarray) -> SpeedThreshold:
        """Choose the threshold on annotated frames.

        Parameters
        ----------
        record : PoseRecord
        present : np.ndarray
            bool ``(T, I)``: the immobility behavior (e.g. freezing).
        annotated : np.ndarray
            bool ``(T, I)``: frames that may be used (labeled training frames).
        """
        annotated = np.asarray(annotated, dtype=bool)
        speed = self.speed(record)
        use = annotated & np.isfinite(speed)
        y = np.asarray(present, dtype=bool)[use]
        if not y.any():
            logger.warning("speed threshold: no positive training frame; predicting nothing")
            self.threshold_ = -np.inf
            return self
        # Score = -speed so that "slower" is "more positive" for the generic search.
        thr, self.train_f1_ = best_threshold(-speed[use], y)
        self.threshold_ = -thr
        logger.info("%s speed threshold %.4g body lengths/s (train F1 %.3f)", self.point, self.threshold_,
                    self.train_f1_)
        return self

    def predict_proba(self, record: PoseRecord) -> np.ndarray:
        """Monotone score in [0, 1], ``thr / (thr + speed)``: >= 0.5 exactly when immobile."""
        if self.threshold_ is None:
            raise RuntimeError("call fit first")
        speed = self.speed(record)
        if not np.isfinite(self.threshold_):
            return np.zeros_like(speed)
        with np.errstate(invalid="ignore", divide="ignore"):
            score = self.threshold_ / (self.threshold_ + speed)
        return np.where(np.isfinite(score), np.clip(score, 0, 1), 0.0)

    def predict(self, record: PoseRecord) -> np.ndarray:
        """bool ``(T, I)``: smoothed speed <= threshold (missing animal = not immobile)."""
        if self.threshold_ is None:
            raise RuntimeError("call fit first")
        speed = self.speed(record)
        return np.isfinite(speed) & (speed <= self.threshold_)


def speed_threshold_baseline(
    record: PoseRecord,
    present: np.ndarray,
    annotated: np.ndarray,
    *,
    window_s: float = 0.5,
    point: str = "centroid",
    fps: float | None = None,
) -> SpeedThreshold:
    """Fit the BehaviorDEPOT-style immobility rule on the training frames (freezing only).

    Parameters
    ----------
    record : PoseRecord
        The recording (its fps, or ``fps=``, sets the window).
    present : np.ndarray
        bool ``(T, I)``: the freezing/immobility labels.
    annotated : np.ndarray
        bool ``(T, I)``: frames allowed for choosing the threshold (pass only training frames).
    window_s : float
        Rolling-median window.
    point : {"centroid", "head"}
        The brief's rule uses the centroid; ``"head"`` is a variant (see :class:`SpeedThreshold`).
    fps : float, optional
        Overrides ``record.fps``.

    Returns
    -------
    SpeedThreshold
        Fitted; use ``.predict(record)`` / ``.predict_proba(record)`` for every frame.
    """
    return SpeedThreshold(window_s=window_s, point=point, fps=fps).fit(record, present, annotated)


# ----------------------------------------------------------------------------------------------
# SimBA-style random forest
# ----------------------------------------------------------------------------------------------


class SimbaForest:
    """One balanced random forest per behavior, thresholded to maximize F1 on the training fold.

    Like SimBA: binary classifier per behavior, a "discrimination threshold" on the probability,
    and an optional minimum bout length. The threshold (and, with ``min_bout_s="cv"``, the bout
    length) is chosen on out-of-fold probabilities of an inner blocked cross-validation inside the
    training frames: in-sample forest probabilities are close to 0/1 and would pick a threshold
    that is far too permissive.

    Parameters
    ----------
    n_estimators, min_samples_leaf, max_features : see :class:`sklearn.ensemble.RandomForestClassifier`
    threshold : "cv" or float
        ``"cv"``: chosen by inner blocked CV; a float fixes it.
    inner_folds : int
        Inner folds for ``threshold="cv"``.
    inner_n_estimators : int, optional
        Trees per inner-CV forest (default ``n_estimators // 2``). The inner forests only rank
        frames to place the threshold; fewer trees halve the cost of :meth:`fit`.
    min_bout_s : float or "cv"
        Positive runs shorter than this are removed after thresholding; ``"cv"`` picks one of
        :data:`MIN_BOUT_CANDIDATES_S` together with the threshold. Needs ``fps`` when nonzero.
    fps : float, optional
        Frames per second, for ``min_bout_s`` and the inner-CV gap.
    gap_s : float
        Gap between inner train and test blocks.
    n_jobs, random_state : passed to the forests (fixed seed: results are reproducible).

    Attributes
    ----------
    behaviors_ : list of str
    models_ : list
        Fitted forest per behavior, or a float constant probability when the training frames held a
        single class.
    thresholds_ : np.ndarray
        ``(C,)`` probability thresholds.
    min_bout_frames_ : np.ndarray
        ``(C,)`` minimum bout lengths in frames (1 = no filtering).
    inner_f1_ : np.ndarray
        ``(C,)`` out-of-fold F1 of the chosen setting on the training frames (NaN if not computed).
    """

    def __init__(
        self,
        *,
        n_estimators: int = 200,
        min_samples_leaf: int = 5,
        max_features: str | float = "sqrt",
        threshold: str | float = "cv",
        inner_folds: int = 3,
        inner_n_estimators: int | None = None,
        min_bout_s: float | str = 0.0,
        fps: float | None = None,
        gap_s: float = 1.0,
        n_jobs: int = 2,
        random_state: int = 0,
    ) -> None:
        self.n_estimators = n_estimators
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.threshold = threshold
        self.inner_folds = inner_folds
        self.inner_n_estimators = inner_n_estimators
        self.min_bout_s = min_bout_s
        self.fps = fps
        self.gap_s = gap_s
        self.n_jobs = n_jobs
        self.random_state = random_state

    # -- helpers -------------------------------------------------------------------------------

    def _new_forest(self, n_estimators: int):
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(
            n_estimators=n_estimators,
            min_samples_leaf=self.min_samples_leaf,
            max_features=self.max_features,
            class_weight="balanced_subsample",
            n_jobs=self.n_jobs,
            random_state=self.random_state,
        )

    def _fit_one(self, x: np.ndarray, y: np.ndarray, n_estimators: int | None = None):
        if y.all() or not y.any():
            return float(y.mean()) if y.size else 0.0
        return self._new_forest(n_estimators or self.n_estimators).fit(x, y)

    @staticmethod
    def _proba_one(model, x: np.ndarray) -> np.ndarray:
        if isinstance(model, float):
            return np.full(x.shape[0], model)
        # Threads add tree probabilities in whatever order they finish, which changes the last bit;
        # one thread keeps predictions (and so thresholded decisions) exactly reproducible.
        n_jobs = model.n_jobs
        model.n_jobs = 1
        try:
            return model.predict_proba(x)[:, list(model.classes_).index(True)]
        finally:
            model.n_jobs = n_jobs

    def _bout_candidates(self) -> list[int]:
        if self.min_bout_s == "cv":
            if self.fps is None:
                raise ValueError("min_bout_s='cv' needs fps")
            seconds = MIN_BOUT_CANDIDATES_S
        else:
            seconds = (float(self.min_bout_s),)
            if seconds[0] > 0 and self.fps is None:
                raise ValueError("min_bout_s > 0 needs fps")
        return sorted({max(1, int(round(s * (self.fps or 1.0)))) for s in seconds})

    def _inner_oof(self, x, y, t_idx, i_idx, shape) -> np.ndarray:
        """Out-of-fold probabilities on the (T, I) grid (NaN where not predicted)."""
        frames = np.unique(t_idx)
        gap = int(math.ceil(self.gap_s * self.fps)) if self.fps else 0
        oof = np.full(shape, np.nan)
        # Blocks are contiguous in the training frames' own order, so an outer test hole is skipped.
        for block in np.array_split(frames, self.inner_folds):
            if block.size == 0:
                continue
            lo, hi = block[0], block[-1]
            test = (t_idx >= lo) & (t_idx <= hi)
            train = (t_idx < lo - gap) | (t_idx > hi + gap)
            n_trees = self.inner_n_estimators or max(1, self.n_estimators // 2)
            model = self._fit_one(x[train], y[train], n_trees)
            oof[t_idx[test], i_idx[test]] = self._proba_one(model, x[test])
        return oof

    def _choose(self, oof: np.ndarray, truth: np.ndarray) -> tuple[float, int, float]:
        """(threshold, min bout frames, F1) maximizing pooled out-of-fold F1."""
        valid = ~np.isnan(oof)
        grid = np.round(np.arange(0.02, 0.99, 0.01), 2)
        best = (0.5, 1, -1.0)
        t, n_ind = oof.shape
        for min_frames in self._bout_candidates():
            dec = np.nan_to_num(oof, nan=-1.0)[None, :, :] >= grid[:, None, None]  # (K, T, I)
            if min_frames > 1:
                # Frames as axis 0, every (threshold, animal) a separate track.
                dec = remove_short_bouts(dec.transpose(1, 0, 2), min_frames).transpose(1, 0, 2)
            f1 = _f1_per_column(dec[:, valid].T, truth[valid])
            if np.isnan(f1).all():
                continue
            k = int(np.nanargmax(f1))
            if f1[k] > best[2]:
                best = (float(grid[k]), min_frames, float(f1[k]))
        if best[2] < 0:
            return 0.5, self._bout_candidates()[0], float("nan")
        return best

    # -- API -----------------------------------------------------------------------------------

    def fit(
        self,
        features: np.ndarray,
        present: np.ndarray,
        annotated: np.ndarray,
        behaviors: Sequence[str] | None = None,
    ) -> SimbaForest:
        """Train on annotated frames only.

        Parameters
        ----------
        features : np.ndarray
            ``(T, I, F)``, e.g. from :func:`keypoint_features`.
        present : np.ndarray
            bool ``(T, I, C)``.
        annotated : np.ndarray
            bool ``(T, I)``; unannotated frames are neither positives nor negatives.
        behaviors : sequence of str, optional
            Names for logging; default ``behavior0, ...``.
        """
        if self.threshold != "cv" and self.min_bout_s == "cv":
            raise ValueError("min_bout_s='cv' needs threshold='cv' (both are chosen together)")
        features = np.asarray(features, dtype=np.float32)
        present = np.asarray(present, dtype=bool)
        annotated = np.asarray(annotated, dtype=bool)
        n_beh = present.shape[2]
        self.behaviors_ = list(behaviors) if behaviors is not None else [f"behavior{c}" for c in range(n_beh)]
        t_idx, i_idx = np.nonzero(annotated)
        x = features[t_idx, i_idx]
        self.models_, self.thresholds_ = [], np.full(n_beh, 0.5)
        self.min_bout_frames_ = np.ones(n_beh, dtype=int)
        self.inner_f1_ = np.full(n_beh, np.nan)
        for c, name in enumerate(self.behaviors_):
            y = present[t_idx, i_idx, c]
            model = self._fit_one(x, y)
            self.models_.append(model)
            if isinstance(model, float):
                logger.warning("%s: training frames hold a single class (%d positives of %d); "
                               "constant probability %.0f", name, int(y.sum()), y.size, model)
                continue
            if self.threshold == "cv":
                oof = self._inner_oof(x, y, t_idx, i_idx, annotated.shape)
                truth = np.zeros(annotated.shape, dtype=bool)
                truth[t_idx, i_idx] = y
                thr, min_frames, f1 = self._choose(oof, truth)
            else:
                thr, min_frames, f1 = float(self.threshold), self._bout_candidates()[0], float("nan")
            self.thresholds_[c], self.min_bout_frames_[c], self.inner_f1_[c] = thr, min_frames, f1
            logger.info("%s: %d/%d positive training frames, threshold %.2f, min bout %d frames, "
                        "inner-CV F1 %.3f", name, int(y.sum()), y.size, thr, min_frames, f1)
        return self

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Probability of each behavior, float ``(T, I, C)``."""
        features = np.asarray(features, dtype=np.float32)
        t, n_ind, n_feat = features.shape
        flat = features.reshape(-1, n_feat)
        out = np.stack([self._proba_one(m, flat) for m in self.models_], axis=-1)
        return out.reshape(t, n_ind, len(self.models_))

    def predict(self, features: np.ndarray, proba: np.ndarray | None = None) -> np.ndarray:
        """bool ``(T, I, C)``: probability >= threshold, then bouts shorter than the minimum removed.

        Parameters
        ----------
        features : np.ndarray
            ``(T, I, F)``.
        proba : np.ndarray, optional
            Output of :meth:`predict_proba` for these features, to avoid computing it twice.
        """
        if proba is None:
            proba = self.predict_proba(features)
        dec = proba >= self.thresholds_[None, None, :]
        for c, min_frames in enumerate(self.min_bout_frames_):
            dec[..., c] = remove_short_bouts(dec[..., c], int(min_frames))
        return dec
