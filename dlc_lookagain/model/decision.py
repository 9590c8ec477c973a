"""The decision layer: gradient-boosted trees over fused per-frame features.

Why trees and not the network head: on the same inputs a tree ensemble beat the neural behavior
head on every benchmark we ran (docs/benchmarks.md): ~20k labeled animal-frames are too few to
train a deep head end to end, while boosted trees read hand-made kinematics, the pretrained motion
embedding and sparse visual evidence side by side, handle missing values (an animal not tracked, a
keypoint a skeleton lacks) natively, and need no feature scaling.

Method
------
For each behavior ``c`` a binary LightGBM model maps the feature vector of one animal in one frame,
``x_{t,i} in R^F`` (feature bank, optionally + motion embedding), to a score ``p_{t,i,c}``.
Everything a user would otherwise tune is chosen by *blocked out-of-fold* cross-validation over the
labeled recordings:

1. folds hold out whole recordings (several recordings) or contiguous time blocks with a gap (one
   recording), never random frames: adjacent frames are near-duplicates and would leak;
2. each candidate feature set is fitted on the training part of every fold and predicts the held-out
   part, giving out-of-fold scores for every labeled frame;
3. per behavior, the threshold and the minimum bout length that maximize the pooled out-of-fold F1
   are kept, and a feature group beyond the bank (the motion embedding, the vision of looked-at
   frames) is used only if it raises that F1 by more than ``min_gain``; a behavior that reads vision
   also keeps its best setting without it, for recordings nothing is looked at in;
4. the final models are refitted on every labeled frame.

The out-of-fold F1 is what a lab can expect on a new recording of its own, and it is reported.

Models are stored as LightGBM's text format (no pickle): loading one never runs code.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from dlc_lookagain.features.bank import _centered_mean
from dlc_lookagain.features.kinematics import _odd_window, remove_short_bouts
from dlc_lookagain.model.refit import TrainingPoses
from dlc_lookagain.model.cross_validation import MIN_BOUT_CANDIDATES_S, _f1_per_column, blocked_folds

logger = logging.getLogger(__name__)

__all__ = ["LabeledFeatures", "DecisionLayer", "fit_decision_layer", "cv_folds", "DEFAULT_PARAMS"]

#: LightGBM settings (chosen on held-out recordings of the real-label sets; docs/model.md).
#: Extremely randomized split points (``extra_trees``): pooled F1 over 3 seeds 0.867 vs 0.837 on
#: BehaviorDEPOT freezing, 0.602/0.601 vs 0.585/0.595 on rat aggression, 0.816 vs 0.827 on ethome
#: interact (inside its seed spread), with the same features.
DEFAULT_PARAMS = {
    "objective": "binary",
    "extra_trees": True,
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_data_in_leaf": 40,
    "feature_fraction": 0.5,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "max_bin": 63,
    "verbose": -1,
    "deterministic": True,
    "force_row_wise": True,
}
#: Name of the feature group of looked-at frames (:func:`dlc_lookagain.features.appearance.vision_columns`).
VISION_GROUP = "vision"
#: Boosting rounds of every model.
DEFAULT_ROUNDS = 200
#: Spans (seconds) of the moving average of probabilities tried before thresholding.
SMOOTH_CANDIDATES_S = (0.0, 0.5, 1.0)
#: Threshold grid on the predicted probability; down to 0.001 because a behavior on 1 % of the frames
#: gets probabilities below 0.02 almost everywhere (without the low end, drink and chase on the
#: generated data had no threshold that predicted anything).
THRESHOLD_GRID = np.unique(np.concatenate([np.round(np.geomspace(0.001, 0.02, 10)[:-1], 4),
                                           np.round(np.arange(0.02, 0.99, 0.01), 2)]))


@dataclass
class LabeledFeatures:
    """Features and labels of one recording, as the decision layer trains on them.

    Attributes
    ----------
    features : np.ndarray
        float32 ``(T, I, F)``, NaN where missing.
    present : np.ndarray
        bool ``(T, I, C)``.
    annotated : np.ndarray
        bool ``(T, I)``: frames whose labels may be used.
    fps : float
    name : str
        For messages.
    augmented : np.ndarray, optional
        float32 ``(T, I, F)``: the same frames' features from a copy of the pose with bodyparts
        replaced by their placed guesses (:func:`dlc_lookagain.features.skeleton.part_dropout_copy`).
        Its rows join the training rows (never the scored ones), with the same labels and folds.
    scored : np.ndarray, optional
        float32 ``(T, I, F)``: what held-out frames are scored from instead of ``features`` (the
        inputs the layer will meet: e.g. a skeleton lacking a part, placed; :mod:`.refit`), so that
        thresholds and the out-of-fold F1 are those of such inputs.
    """

    features: np.ndarray
    present: np.ndarray
    annotated: np.ndarray
    fps: float
    name: str = ""
    augmented: np.ndarray | None = None
    scored: np.ndarray | None = None


def cv_folds(recordings: Sequence[LabeledFeatures], k: int = 5, gap_s: float = 1.0
             ) -> list[list[tuple[np.ndarray, np.ndarray]]]:
    """Blocked folds over labeled recordings.

    With two or more recordings, each fold holds out whole recordings (leave-one-recording-out up
    to ``k`` recordings; beyond that recordings are dealt into ``k`` groups). With one recording,
    ``k`` contiguous time blocks, with ``gap_s`` left out on each side of the test block.

    Returns
    -------
    list of folds; a fold is one ``(train_mask, test_mask)`` pair of bool ``(T,)`` frame masks per
    recording.
    """
    n = len(recordings)
    folds: list[list[tuple[np.ndarray, np.ndarray]]] = []
    if n >= 2:
        groups = np.arange(n) % min(k, n)
        for g in range(min(k, n)):
            fold = []
            for r, rec in enumerate(recordings):
                t = rec.features.shape[0]
                held = groups[r] == g
                fold.append((np.full(t, not held), np.full(t, held)))
            folds.append(fold)
        return folds
    rec = recordings[0]
    t = rec.features.shape[0]
    for train_idx, test_idx in blocked_folds(t, max(2, min(k, t)), fps=rec.fps, gap_s=gap_s):
        train, test = np.zeros(t, bool), np.zeros(t, bool)
        train[train_idx] = True
        test[test_idx] = True
        folds.append([(train, test)])
    return folds


def _rows(rec: LabeledFeatures, frames: np.ndarray, columns: np.ndarray | None, stride: int = 1,
          augmented: bool = False, scored: bool = False):
    """Feature rows ``(N, F')``, labels ``(N, C)`` of the annotated animal-frames in ``frames``
    (every ``stride``-th frame); ``scored``: from ``rec.scored`` when it has one.

    ``augmented``: training rows, which also take the augmented copy's rows (if the recording has
    one) from the frames in between (``stride`` 2: even frames as tracked, odd frames augmented, so
    the cost stays that of one copy; ``stride`` 1: every frame of both).
    """
    keep = frames
    if stride > 1:
        keep = frames & (np.arange(frames.shape[0]) % stride == 0)
    t_idx, i_idx = np.nonzero(rec.annotated & keep[:, None])
    x = (rec.scored if scored and rec.scored is not None else rec.features)[t_idx, i_idx]
    if columns is not None:
        x = x[:, columns]
    y = rec.present[t_idx, i_idx]
    if augmented and rec.augmented is not None:
        other = frames & (np.arange(frames.shape[0]) % stride == (1 % stride))
        ta, ia = np.nonzero(rec.annotated & other[:, None])
        xa = rec.augmented[ta, ia]
        if columns is not None:
            xa = xa[:, columns]
        x, y = np.concatenate([x, xa]), np.concatenate([y, rec.present[ta, ia]])
        t_idx, i_idx = np.concatenate([t_idx, ta]), np.concatenate([i_idx, ia])
    return x, y, t_idx, i_idx


def _train(dataset, y: np.ndarray, params: dict, rounds: int):
    """A LightGBM booster on ``dataset`` with labels ``y``, or the constant probability when ``y``
    holds one class."""
    import lightgbm as lgb

    if y.all() or not y.any():
        return float(y.mean()) if y.size else 0.0
    dataset.set_label(y.astype(np.float32))
    return lgb.train(params, dataset, num_boost_round=rounds)


def _binned(x: np.ndarray, params: dict):
    """LightGBM's binned copy of ``x``, built once and reused for every behavior's labels."""
    import lightgbm as lgb

    return lgb.Dataset(x, label=np.zeros(x.shape[0], np.float32), params=_dataset_params(params),
                       free_raw_data=False).construct()


def _dataset_params(params: dict) -> dict:
    return {"max_bin": params.get("max_bin", 255), "verbose": -1, "seed": params.get("seed", 0)}


def _predict(model, x: np.ndarray, threads: int = 1) -> np.ndarray:
    if isinstance(model, float):
        return np.full(x.shape[0], model, dtype=np.float64)
    # Rows are scored independently: the result does not depend on the thread count.
    return model.predict(x, num_threads=threads)


def _prediction_threads() -> int:
    """Threads for scoring: torch's budget, which analyze sets per worker (cores / workers)."""
    import torch

    return max(1, int(torch.get_num_threads()))


def _smooth(p: np.ndarray, frames: int) -> np.ndarray:
    """Centered NaN-aware moving average over ``frames`` frames; unscored (NaN) frames stay NaN."""
    return np.where(np.isnan(p), np.nan, _centered_mean(p, frames))


def _pool_animals(p: np.ndarray) -> np.ndarray:
    """Each frame's probability averaged over the animals scored in it, given to every one of them.

    For labels given to a pair or a group (a fight, a huddle; the Caltech annotator's dyadic bouts):
    both animals carry the same truth, and their two noisy estimates of it agree better averaged.
    ``p (T, I)``; NaN rows stay NaN.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # frames no animal was scored in
        mean = np.nanmean(p, axis=1, keepdims=True)
    return np.where(np.isnan(p), np.nan, mean)


def _choose_threshold(oof: list[np.ndarray], truth: list[np.ndarray], fps: float,
                      bout_candidates_s: Sequence[float],
                      smooth_candidates_s: Sequence[float] = (0.0,),
                      pool_candidates: Sequence[bool] = (False,)) -> tuple[float, float, float, bool, float]:
    """(threshold, min bout seconds, smoothing seconds, pooled, F1) maximizing the pooled out-of-fold F1.

    ``oof`` and ``truth`` are lists of ``(T, I)`` arrays (NaN / False where not scored); animals and
    recordings are separate tracks for smoothing and bout filtering. ``pooled``: the probabilities
    are first averaged over the animals of each frame (:func:`_pool_animals`).
    """
    best = (0.5, 0.0, 0.0, False, -1.0)
    for pool in pool_candidates:
        for smooth_s in sorted(set(smooth_candidates_s)):
            frames = _odd_window(smooth_s, fps) if smooth_s > 0 else 1
            tracks_p, tracks_y = [], []
            for p, y in zip(oof, truth):
                # Smoothed within a recording's own scored frames only: a held-out block's edges
                # are NaN, so nothing leaks across them.
                ps = _smooth(_pool_animals(p) if pool else p, frames)
                for i in range(p.shape[1]):
                    # One NaN frame between tracks so that a bout never runs from one track into the next.
                    tracks_p.append(np.append(ps[:, i], np.nan))
                    tracks_y.append(np.append(y[:, i], False))
            p = np.concatenate(tracks_p)
            y = np.concatenate(tracks_y)
            valid = ~np.isnan(p)
            if not y[valid].any():
                return 0.5, 0.0, 0.0, False, float("nan")
            dec = np.nan_to_num(p, nan=-1.0)[:, None] >= THRESHOLD_GRID[None, :]  # (N, K)
            for seconds in sorted(set(bout_candidates_s)):
                n = max(1, int(round(seconds * fps)))
                d = remove_short_bouts(dec, n) if n > 1 else dec
                f1 = _f1_per_column(d[valid], y[valid])
                if np.isnan(f1).all():
                    continue
                j = int(np.nanargmax(f1))
                if f1[j] > best[4] + 1e-9:
                    best = (float(THRESHOLD_GRID[j]), float(seconds), float(smooth_s), bool(pool), float(f1[j]))
    if best[4] < 0:
        return 0.5, 0.0, 0.0, False, float("nan")
    # F1 0 at every setting (no held-out positive found: e.g. the behavior is in one recording only)
    # leaves the lowest threshold: the final model, which does see the behavior, then marks where it
    # is most likely. Generated seed set 0, chase in 1 of 8 training videos: test chase F1 0.76 this
    # way; with a neutral 0.5 the keypoint-only test macro F1 fell from about 0.59 to 0.519.
    return best


@dataclass
class DecisionLayer:
    """Per-behavior boosted trees with thresholds and minimum bouts chosen out of fold.

    Attributes
    ----------
    behaviors : list of str
    feature_names : list of str
        Every input column, in order (the feature bank's names, then ``encoder_*``...).
    groups : dict of str to list of int
        Column indices of each feature group (``"bank"`` always).
    columns : list of list of int
        Per behavior, the columns its model reads (the groups chosen for it).
    chosen_groups : list of list of str
    models : list
        Per behavior, a LightGBM model text, or a float (constant probability).
    thresholds : np.ndarray
        ``(C,)`` decision thresholds on the probability.
    min_bout_s : np.ndarray
        ``(C,)`` minimum bout lengths in seconds (shorter positive runs are dropped).
    pooled : np.ndarray
        ``(C,)`` bool: each frame's probabilities are averaged over its animals before smoothing
        (behaviors labeled for a pair or group), chosen out of fold.
    smooth_s : np.ndarray
        ``(C,)`` span (seconds) of the centered moving average applied to the probabilities before
        the threshold (0 = none), chosen out of fold with the threshold.
    cv_f1 : np.ndarray
        ``(C,)`` pooled out-of-fold F1 of the chosen setting.
    cv_f1_by_group : dict of str to list of float
        The same for every candidate feature set, for the manifest.
    cv : str
        How the folds were made (for messages).
    skeleton : dict
        ``{bodypart: [x, y]}`` of the training recordings (:func:`dlc_lookagain.features.skeleton.
        skeleton_profile`): another project's bodyparts are matched to these before features are made.
    training_poses : TrainingPoses or None
        The labeled poses it was trained on (:mod:`dlc_lookagain.model.refit`): a project lacking a
        training bodypart gets it placed and the thresholds chosen again for such poses.
    without_vision : DecisionLayer or None
        When some behavior reads the ``"vision"`` group: the best setting without it, chosen by the
        same cross-validation, for recordings nothing is looked at in (no video, ``top_k = 0``).
    look_fraction : float
        Fraction of frames looked at when the vision group was made in training.
    look_policy : str
        How those frames were chosen (:mod:`dlc_lookagain.model.look_schedule`): ``"uniform"`` or
        ``"gate"``; ``analyze`` chooses its frames the same way.
    oof_proba : list of np.ndarray or None
        After :func:`fit_decision_layer` only (not saved): per training recording, the out-of-fold
        probabilities ``(T, I, C)`` of each behavior's chosen setting (NaN where not scored).
    """

    behaviors: list[str]
    feature_names: list[str]
    groups: dict[str, list[int]]
    columns: list[list[int]]
    chosen_groups: list[list[str]]
    models: list
    thresholds: np.ndarray
    min_bout_s: np.ndarray
    cv_f1: np.ndarray
    cv_f1_by_group: dict[str, list[float]] = field(default_factory=dict)
    cv: str = ""
    params: dict = field(default_factory=dict)
    skeleton: dict = field(default_factory=dict)  # training bodyparts' egocentric profile (features.skeleton)
    smooth_s: np.ndarray | None = None  # (C,) seconds of probability smoothing before the threshold
    pooled: np.ndarray | None = None  # (C,) bool: probabilities averaged over each frame's animals first
    training_poses: TrainingPoses | None = None  # what it was trained on, for a skeleton lacking a part
    without_vision: "DecisionLayer | None" = None  # decides where nothing is looked at (see uses_vision)
    look_fraction: float = 0.0  # fraction of frames looked at in training
    look_policy: str = "uniform"  # how they were chosen (model/look_schedule.py)
    oof_proba: list | None = field(default=None, repr=False)  # per recording (T, I, C), fit only, not stored
    _boosters: list = field(default_factory=list, repr=False)

    @property
    def uses_vision(self) -> bool:
        """True when some behavior reads the vision group (looked-at frames)."""
        return any(VISION_GROUP in g for g in self.chosen_groups)

    def for_keypoints_only(self) -> "DecisionLayer":
        """The layer that decides a recording nothing was looked at in (itself if it reads no vision)."""
        return self.without_vision if self.uses_vision and self.without_vision is not None else self

    # -- inference ---------------------------------------------------------------------------

    def _booster(self, c: int):
        if not self._boosters:
            import lightgbm as lgb

            self._boosters = [m if isinstance(m, float) else lgb.Booster(model_str=m) for m in self.models]
        return self._boosters[c]

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Probability of each behavior.

        Parameters
        ----------
        features : np.ndarray
            float32 ``(T, I, F)`` in the order of :attr:`feature_names`.

        Returns
        -------
        np.ndarray
            float32 ``(T, I, C)``; NaN where the animal has no feature at all (not tracked).
        """
        t, n_ind, n_feat = features.shape
        if n_feat != len(self.feature_names):
            raise ValueError(f"{n_feat} feature columns for a decision layer of {len(self.feature_names)}")
        flat = features.reshape(-1, n_feat)
        out = np.empty((flat.shape[0], len(self.behaviors)), dtype=np.float32)
        threads = _prediction_threads()
        for c in range(len(self.behaviors)):
            cols = self.columns[c]
            x = flat if np.array_equal(cols, np.arange(n_feat)) else flat[:, cols]
            out[:, c] = _predict(self._booster(c), x, threads)
        absent = np.isnan(flat).all(axis=1)
        out[absent] = np.nan
        return out.reshape(t, n_ind, len(self.behaviors))

    def smooth(self, proba: np.ndarray, fps: float) -> np.ndarray:
        """Probabilities as the thresholds see them: averaged over each frame's animals where pooled,
        then each behavior's moving average."""
        out = np.array(proba, dtype=np.float32, copy=True)
        for c in np.flatnonzero(self._pooled()):
            out[..., c] = _pool_animals(out[..., c])
        for c, seconds in enumerate(self._smooth_s()):
            if seconds > 0:
                out[..., c] = _smooth(out[..., c], _odd_window(float(seconds), fps))
        return out

    def _pooled(self) -> np.ndarray:
        return np.zeros(len(self.behaviors), bool) if self.pooled is None else np.asarray(self.pooled, bool)

    def _smooth_s(self) -> np.ndarray:
        return np.zeros(len(self.behaviors)) if self.smooth_s is None else np.asarray(self.smooth_s, float)

    def decide(self, proba: np.ndarray, fps: float, *, smoothed: bool = False) -> np.ndarray:
        """bool ``(T, I, C)``: smoothed probability >= threshold, then bouts shorter than the minimum
        dropped. ``smoothed=True``: ``proba`` already went through :meth:`smooth`."""
        if not smoothed:
            proba = self.smooth(proba, fps)
        dec = np.nan_to_num(proba, nan=0.0) >= self.thresholds[None, None, :]
        for c, seconds in enumerate(self.min_bout_s):
            frames = int(round(float(seconds) * fps))
            if frames > 1:
                dec[..., c] = remove_short_bouts(dec[..., c], frames)
        return dec

    # -- storage (plain JSON types and LightGBM text: nothing is unpickled) --------------------

    def to_dict(self) -> dict:
        return {
            "kind": "boosted-trees",
            "behaviors": list(self.behaviors),
            "feature_names": list(self.feature_names),
            "groups": {k: [int(i) for i in v] for k, v in self.groups.items()},
            "columns": [[int(i) for i in cols] for cols in self.columns],
            "chosen_groups": [list(g) for g in self.chosen_groups],
            "models": [m if isinstance(m, (str, float)) else m.model_to_string() for m in self.models],
            "thresholds": [float(v) for v in self.thresholds],
            "min_bout_s": [float(v) for v in self.min_bout_s],
            "cv_f1": [None if not np.isfinite(v) else float(v) for v in self.cv_f1],
            "cv_f1_by_group": {k: [None if v is None or not np.isfinite(v) else float(v) for v in vals]
                               for k, vals in self.cv_f1_by_group.items()},
            "cv": self.cv,
            "params": dict(self.params),
            "skeleton": {str(k): [float(a) for a in v] for k, v in self.skeleton.items()},
            "smooth_s": [float(v) for v in self._smooth_s()],
            "pooled": [bool(v) for v in self._pooled()],
            **({"training_poses": self.training_poses.to_dict()} if self.training_poses is not None else {}),
            **({"without_vision": self.without_vision.to_dict()} if self.without_vision is not None else {}),
            "look_fraction": float(self.look_fraction),
            "look_policy": str(self.look_policy),
        }

    @classmethod
    def from_dict(cls, blob: dict) -> "DecisionLayer":
        """Rebuild from :meth:`to_dict`; raises ValueError on anything inconsistent."""
        if not isinstance(blob, dict) or blob.get("kind") != "boosted-trees":
            raise ValueError("not a boosted-trees decision layer")
        behaviors = [str(b) for b in blob["behaviors"]]
        names = [str(n) for n in blob["feature_names"]]
        models = blob["models"]
        columns = [[int(i) for i in cols] for cols in blob["columns"]]
        n = len(behaviors)
        if not (len(models) == len(columns) == len(blob["thresholds"]) == len(blob["min_bout_s"]) == n):
            raise ValueError("decision layer: per-behavior lists of different lengths")
        if any(i < 0 or i >= len(names) for cols in columns for i in cols):
            raise ValueError("decision layer: a column index outside the feature list")
        if any(not isinstance(m, (str, float, int)) for m in models):
            raise ValueError("decision layer: a model that is neither LightGBM text nor a constant")
        models = [float(m) if isinstance(m, (float, int)) else m for m in models]
        return cls(
            behaviors=behaviors, feature_names=names,
            groups={str(k): [int(i) for i in v] for k, v in blob.get("groups", {}).items()},
            columns=columns, chosen_groups=[list(map(str, g)) for g in blob.get("chosen_groups", [[]] * n)],
            models=models, thresholds=np.asarray(blob["thresholds"], dtype=np.float64),
            min_bout_s=np.asarray(blob["min_bout_s"], dtype=np.float64),
            cv_f1=np.asarray([np.nan if v is None else v for v in blob.get("cv_f1", [None] * n)], dtype=np.float64),
            cv_f1_by_group=dict(blob.get("cv_f1_by_group", {})), cv=str(blob.get("cv", "")),
            params=dict(blob.get("params", {})),
            skeleton={str(k): [float(a) for a in v][:3] for k, v in dict(blob.get("skeleton", {})).items()},
            smooth_s=np.asarray(blob.get("smooth_s", [0.0] * n), dtype=np.float64),
            pooled=np.asarray([bool(v) for v in blob.get("pooled", [False] * n)], dtype=bool),
            training_poses=(TrainingPoses.from_dict(blob["training_poses"], n)
                            if blob.get("training_poses") is not None else None),
            without_vision=(cls.from_dict(blob["without_vision"]) if blob.get("without_vision") is not None
                            else None),
            look_fraction=float(blob.get("look_fraction", 0.0)),
            look_policy=_policy(blob.get("look_policy", "uniform")),
        )


def _policy(name) -> str:
    from dlc_lookagain.model.look_schedule import POLICIES

    if name not in POLICIES:
        raise ValueError(f"decision layer: unknown look policy {name!r}")
    return str(name)


def fit_decision_layer(
    recordings: Sequence[LabeledFeatures],
    behaviors: Sequence[str],
    feature_names: Sequence[str],
    *,
    groups: dict[str, Sequence[int]] | None = None,
    k: int = 5,
    gap_s: float = 1.0,
    min_gain: float = 0.01,
    bout_candidates_s: Sequence[float] = MIN_BOUT_CANDIDATES_S,
    smooth_candidates_s: Sequence[float] = SMOOTH_CANDIDATES_S,
    params: dict | None = None,
    rounds: int = DEFAULT_ROUNDS,
    cv_stride: int = 2,
    pool_animals: bool = True,
    seed: int = 0,
    threads: int | None = None,
    progress: bool = False,
    cache: dict | None = None,
) -> DecisionLayer:
    """Fit the decision layer with everything chosen by blocked out-of-fold cross-validation.

    Parameters
    ----------
    recordings : sequence of LabeledFeatures
        Every labeled recording, features in the column order of ``feature_names``.
    behaviors : sequence of str
        The C behaviors (last axis of ``present``).
    feature_names : sequence of str
    groups : dict of str to column indices, optional
        Feature groups. ``"bank"`` is always used; any other group (e.g. ``"encoder"``) is tried as
        ``bank + group`` and kept for a behavior only if it raises that behavior's out-of-fold F1 by
        more than ``min_gain``. Default: every column is the bank.
    k : int
        Number of folds (see :func:`cv_folds`).
    gap_s : float
        Gap around test blocks of a single recording.
    min_gain : float
        F1 a non-bank group must add to be used for a behavior.
    bout_candidates_s : sequence of float
        Minimum bout lengths tried together with the threshold.
    smooth_candidates_s : sequence of float
        Spans of the probability moving average tried together with them (0 = none).
    params : dict, optional
        LightGBM parameters (default :data:`DEFAULT_PARAMS`).
    rounds : int
        Boosting rounds.
    pool_animals : bool
        Also try, per behavior, averaging each frame's probabilities over its animals before the
        threshold (kept where out-of-fold F1 is higher: labels given to a pair or group).
    cv_stride : int
        Cross-validation models train on every ``cv_stride``-th frame (adjacent frames are
        near-duplicates; this halves the cost) and predict every held-out frame; the final models
        train on every labeled frame.
    seed : int
    threads : int, optional
        LightGBM threads (default: all cores).
    progress : bool
        Progress bar over folds and candidates.
    cache : dict, optional
        Shared between calls on the *same* recordings whose features differ only in added columns
        (training fits the keypoint-only layer, picks the frames to look at from its out-of-fold
        probabilities, then fits again with the vision group): out-of-fold probabilities and final
        models of a candidate with the same columns are reused instead of refitted.

    Returns
    -------
    DecisionLayer
        With :attr:`DecisionLayer.oof_proba` set.
    """
    import os

    behaviors = list(behaviors)
    names = list(feature_names)
    n_beh = len(behaviors)
    groups = {k_: list(v) for k_, v in (groups or {"bank": list(range(len(names)))}).items()}
    if "bank" not in groups:
        raise ValueError("groups must contain 'bank'")
    params = {**DEFAULT_PARAMS, **(params or {}), "seed": seed,
              "num_threads": threads or max(1, os.cpu_count() or 1)}
    candidates = _candidates(groups)
    folds = cv_folds(recordings, k, gap_s)
    cv_desc = (f"leave-recording-out over {len(recordings)} recordings ({len(folds)} folds)"
               if len(recordings) > 1 else f"{len(folds)} blocked time folds, {gap_s:g} s gaps")
    fps = float(np.median([r.fps for r in recordings]))

    # Without a caller's cache, this call's own candidates need no hashing: their names are the keys.
    shared = cache is not None
    cache = cache if shared else {}
    settings_key = (k, float(gap_s), cv_stride, rounds, repr(sorted(params.items())))
    fingerprints = {name: _fingerprint(recordings, cols) if shared else name for name, cols in candidates.items()}
    oof = _out_of_fold(recordings, candidates, folds, n_beh, params, rounds, cv_stride, progress,
                       cache, [("oof", settings_key, fingerprints[name]) for name in candidates])

    truth = [[r.present[..., c] & r.annotated for r in recordings] for c in range(n_beh)]
    # Pooling over animals is a candidate only where some frame has several scored animals.
    pools = (False, True) if pool_animals and any((r.annotated.sum(axis=1) > 1).any() for r in recordings) \
        else (False,)
    results = [{name: _choose_threshold(oof[name][c], truth[c], fps, bout_candidates_s, smooth_candidates_s, pools)
                for name in candidates} for c in range(n_beh)]
    by_group: dict[str, list[float]] = {name: [res[name][-1] for res in results] for name in candidates}
    choice = [_best_candidate(res, min_gain) for res in results]
    for c, behavior in enumerate(behaviors):
        res, best = results[c], choice[c][0]
        logger.info("%s: out-of-fold F1 %s -> %s (threshold %.2f, min bout %.2g s, smoothing %.2g s%s)", behavior,
                    ", ".join(f"{n} {r[-1]:.3f}" for n, r in res.items()), best, res[best][0],
                    res[best][1], res[best][2], ", pooled over animals" if res[best][3] else "")
    # Where the vision group was chosen, the best setting without it decides recordings that are
    # not looked at (no video, top_k = 0): trees trained with vision everywhere would read its
    # absence as a signal they never saw.
    blind = None
    if any(VISION_GROUP in ch[0].split("+") for ch in choice):
        blind = [ch if VISION_GROUP not in ch[0].split("+") else
                 _best_candidate({n: r for n, r in res.items() if VISION_GROUP not in n.split("+")}, min_gain)
                 for ch, res in zip(choice, results)]

    # Final models on every labeled frame, one booster per behavior on its chosen columns.
    all_parts: dict = {}

    def final_model(c: int, name: str):
        key = ("final", settings_key, c, fingerprints[name])
        if key in cache:
            return cache[key]
        if name not in all_parts:
            parts = [_rows(rec, np.ones(rec.annotated.shape[0], bool), candidates[name], augmented=True)
                     for rec in recordings]
            x = np.concatenate([p[0] for p in parts])
            all_parts[name] = (_binned(x, params), np.concatenate([p[1] for p in parts]))
        dataset, y = all_parts[name]
        model = _train(dataset, y[:, c], params, rounds)
        if isinstance(model, float):
            logger.warning("%s: the labeled frames hold a single class (%d positives of %d); constant "
                           "probability %.0f", behaviors[c], int(y[:, c].sum()), y.shape[0], model)
        cache[key] = model if isinstance(model, float) else model.model_to_string()
        return cache[key]

    def layer(chosen) -> DecisionLayer:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return DecisionLayer(
                behaviors=behaviors, feature_names=names,
                groups={g: [int(i) for i in v] for g, v in groups.items()},
                columns=[[int(i) for i in candidates[ch[0]]] for ch in chosen],
                chosen_groups=[ch[0].split("+") for ch in chosen],
                models=[final_model(c, ch[0]) for c, ch in enumerate(chosen)],
                thresholds=np.array([ch[1] for ch in chosen]), min_bout_s=np.array([ch[2] for ch in chosen]),
                smooth_s=np.array([ch[3] for ch in chosen]), pooled=np.array([ch[4] for ch in chosen], dtype=bool),
                cv_f1=np.array([ch[5] for ch in chosen]), cv_f1_by_group=by_group, cv=cv_desc,
                params={k_: v for k_, v in params.items() if k_ != "num_threads"},
            )

    out = layer(choice)
    out.oof_proba = [np.stack([oof[ch[0]][c][r] for c, ch in enumerate(choice)], axis=-1).astype(np.float32)
                     for r in range(len(recordings))]
    if blind is not None:
        out.without_vision = layer(blind)
        out.without_vision.cv_f1_by_group = {}
    return out


def _candidates(groups: dict[str, list[int]]) -> dict[str, np.ndarray]:
    """The feature sets each behavior may choose from: the bank, the bank with each other group, and
    (with several other groups) all together; name -> sorted column indices."""
    candidates = {"bank": np.asarray(groups["bank"])}
    extra = [g for g, cols in groups.items() if g != "bank" and len(cols)]
    for g in extra:
        candidates[f"bank+{g}"] = np.asarray(sorted(set(groups["bank"]) | set(groups[g])))
    if len(extra) > 1:  # every group together too (encoder + vision)
        candidates["+".join(["bank", *extra])] = np.asarray(sorted(set().union(*(groups[g] for g in groups))))
    return candidates


def _out_of_fold(recordings, candidates, folds, n_beh, params, rounds, cv_stride, progress, cache, keys) -> dict:
    """Out-of-fold probabilities: ``oof[candidate][c][r]`` is ``(T_r, I_r)``, NaN where not scored.
    A candidate whose key (one per candidate, in order) is in ``cache`` is served from it; the
    others are trained fold by fold and stored there."""
    oof = {name: [[np.full(r.annotated.shape, np.nan) for r in recordings] for _ in range(n_beh)]
           for name in candidates}
    todo = []
    for name, key in zip(candidates, keys):
        if key in cache:
            oof[name] = cache[key]
        else:
            todo.append(name)
            cache[key] = oof[name]
    steps = [(name, f) for name in todo for f in range(len(folds))]
    it = steps
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(steps, desc="cross-validation", unit="fit")
    for name, f in it:
        cols = candidates[name]
        parts = [_rows(rec, tr, cols, cv_stride, augmented=True) for rec, (tr, _) in zip(recordings, folds[f])]
        x = np.concatenate([p[0] for p in parts])
        y = np.concatenate([p[1] for p in parts])
        if not x.shape[0]:
            continue
        dataset = _binned(x, params)
        tests = [_rows(rec, te, cols, scored=True) for rec, (_, te) in zip(recordings, folds[f])]
        for c in range(n_beh):
            model = _train(dataset, y[:, c], params, rounds)
            for r, (xt, _, t_idx, i_idx) in enumerate(tests):
                if xt.shape[0]:
                    oof[name][c][r][t_idx, i_idx] = _predict(model, xt)
    return oof


def _fingerprint(recordings: Sequence[LabeledFeatures], columns: np.ndarray) -> str:
    """Hash of everything a candidate's fits read (its columns of every recording, labels, frames
    used), so that a cache never hands one fit's results to another on other data."""
    import hashlib

    h = hashlib.blake2b(digest_size=16)
    cols = np.asarray(columns, dtype=np.int64)
    h.update(cols.tobytes())
    for r in recordings:
        for a in (r.features, r.augmented, r.scored):
            h.update(b"-" if a is None else np.ascontiguousarray(a[..., cols]).tobytes())
        h.update(np.ascontiguousarray(r.present).tobytes())
        h.update(np.ascontiguousarray(r.annotated).tobytes())
        h.update(repr(float(r.fps)).encode())
    return h.hexdigest()


def _best_candidate(results: dict, min_gain: float) -> tuple:
    """``(name, *setting)`` of the best candidate: ``bank`` unless another beats it by more than ``min_gain``."""
    base = "bank" if "bank" in results else next(iter(results))
    best = base
    base_f1 = results[base][-1]
    for name, res in results.items():
        if name != base and np.isfinite(res[-1]) and (not np.isfinite(base_f1) or res[-1] > base_f1 + min_gain) \
                and res[-1] > results[best][-1]:
            best = name
    return (best, *results[best])
