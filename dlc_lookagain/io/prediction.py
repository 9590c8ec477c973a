"""Behavior predictions in memory: one recording's probabilities and decisions, and the tables
they become (one row per frame and individual; one row per bout).

The files these tables are written to and read from are :mod:`dlc_lookagain.io.annotations`
(writer) and :mod:`dlc_lookagain.io.read_annotations` (readers).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dlc_lookagain.errors import PoseFormatError
from dlc_lookagain.io.behavior_labels import mask_runs
from dlc_lookagain.io.record import PoseRecord

BEHAVIOR_COLUMNS = ("frame", "time_s", "individual", "label", "looked", "motif")
BOUT_COLUMNS = (
    "individual",
    "behavior",
    "start_frame",
    "end_frame",
    "n_frames",
    "start_s",
    "end_s",
    "duration_s",
    "mean_probability",
)
PROBABILITY_PREFIX = "p_"
NO_LABEL = "none"

_DEFAULT_THRESHOLD = 0.5
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")

__all__ = ["BEHAVIOR_COLUMNS", "BOUT_COLUMNS", "PROBABILITY_PREFIX", "NO_LABEL", "BehaviorPrediction",
           "probability_column", "bouts_from_mask", "behaviors_table", "bouts_table", "time_budget_of"]


def probability_column(behavior: str) -> str:
    """Name of the tidy-table column holding the probability of ``behavior``.

    The name is ``"p_" + behavior`` with the behavior kept verbatim (spaces and
    punctuation included), so the mapping is reversible by stripping the prefix.
    """
    return PROBABILITY_PREFIX + behavior


def _check_behavior_names(behaviors: list) -> list[str]:
    """Reject behavior names that cannot round-trip through the output files."""
    if len(behaviors) == 0:
        raise ValueError("behaviors is empty; a prediction needs at least one behavior")
    for name in behaviors:
        if not isinstance(name, str):
            raise ValueError(f"behavior names must be strings, got {name!r} ({type(name).__name__})")
        if name == "" or name != name.strip():
            # Whitespace at the ends is invisible in a spreadsheet and lost by many tools.
            raise ValueError(f"behavior name {name!r} is empty or has leading/trailing whitespace")
        if _CONTROL_CHARS.search(name):
            raise ValueError(f"behavior name {name!r} contains a control character (newline, tab, ...)")
        if name == NO_LABEL:
            raise ValueError(
                f"{NO_LABEL!r} cannot be a behavior name: the label column uses it for 'no behavior'"
            )
    dupes = sorted({b for b in behaviors if behaviors.count(b) > 1})
    if dupes:
        raise ValueError(f"duplicate behavior names: {dupes}")
    return list(behaviors)


def _as_flags(name: str, value, shape_desc: str) -> np.ndarray:
    """Coerce a 0/1 or bool array to bool, refusing anything else."""
    arr = np.asarray(value)
    if arr.dtype == bool:
        return arr
    if np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating):
        if arr.size and not np.isin(arr, (0, 1)).all():
            raise ValueError(f"{name} {shape_desc} must be boolean (or 0/1), got other values")
        return arr.astype(bool)
    raise ValueError(f"{name} {shape_desc} must be boolean, got dtype {arr.dtype}")


@dataclass
class BehaviorPrediction:
    """Per-frame, per-individual behavior predictions for one recording.

    Attributes
    ----------
    behaviors : list of str
        Behavior names (``C`` of them), in column order. Names must be unique,
        non-empty, free of control characters and leading/trailing whitespace, and
        not ``"none"`` (the label used for "no behavior").
    probabilities : np.ndarray
        float32 ``(T, I, C)`` in [0, 1]; NaN where nothing was predicted (e.g. the
        individual was not tracked), which then counts as not present.
    present : np.ndarray or None
        bool ``(T, I, C)`` multi-label decision. Default: ``probabilities >= thresholds``.
    thresholds : np.ndarray or float or None
        ``(C,)`` decision thresholds (a scalar is broadcast). Default 0.5.
    looked : np.ndarray or None
        bool ``(T,)`` or ``(T, I)``: whether the vision encoder looked at the video
        frame (for that individual). Default all False (keypoints only).
    motif : np.ndarray or None
        int ``(T, I)`` unsupervised segment id, -1 where there is none. Default -1.

    Raises
    ------
    ValueError
        When an array has the wrong shape or values; the message names the array
        and both shapes.
    """

    behaviors: list[str]
    probabilities: np.ndarray
    present: np.ndarray | None = None
    thresholds: np.ndarray | float | None = None
    looked: np.ndarray | None = None
    motif: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.behaviors = _check_behavior_names(list(self.behaviors))
        n_beh = len(self.behaviors)
        probs = np.asarray(self.probabilities)
        if probs.ndim != 3:
            raise ValueError(
                f"probabilities must be (frames, individuals, behaviors), got shape {probs.shape}"
            )
        if not (np.issubdtype(probs.dtype, np.floating) or np.issubdtype(probs.dtype, np.integer)):
            raise ValueError(f"probabilities must be numeric, got dtype {probs.dtype}")
        probs = probs.astype(np.float32, copy=False)
        n_frames, n_ind, n_c = probs.shape
        if n_c != n_beh:
            raise ValueError(
                f"probabilities shape {probs.shape} has {n_c} behavior columns but {n_beh} behaviors "
                f"were named: {self.behaviors}"
            )
        if n_ind == 0:
            raise ValueError(f"probabilities shape {probs.shape} has no individuals")
        finite = probs[~np.isnan(probs)]
        if finite.size and (not np.isfinite(finite).all() or finite.min() < 0 or finite.max() > 1):
            raise ValueError("probabilities must lie in [0, 1] (NaN allowed for 'not predicted')")
        self.probabilities = probs

        thr = _DEFAULT_THRESHOLD if self.thresholds is None else self.thresholds
        thr = np.asarray(thr, dtype=np.float64)
        if thr.ndim == 0:
            thr = np.full(n_beh, float(thr))
        if thr.shape != (n_beh,):
            raise ValueError(
                f"thresholds shape {thr.shape} does not match the {n_beh} behaviors (expected ({n_beh},))"
            )
        if not (np.isfinite(thr).all() and (thr >= 0).all() and (thr <= 1).all()):
            raise ValueError(f"thresholds must lie in [0, 1], got {thr.tolist()}")
        self.thresholds = thr

        if self.present is None:
            # NaN >= t is False: an unpredicted frame is never 'present'.
            self.present = probs >= thr.astype(np.float32)
        else:
            pres = _as_flags("present", self.present, f"(shape {np.shape(self.present)})")
            if pres.shape != probs.shape:
                raise ValueError(
                    f"present shape {pres.shape} does not match probabilities shape {probs.shape}"
                )
            self.present = pres

        if self.looked is None:
            self.looked = np.zeros(n_frames, dtype=bool)
        else:
            looked = _as_flags("looked", self.looked, f"(shape {np.shape(self.looked)})")
            if looked.shape not in ((n_frames,), (n_frames, n_ind)):
                raise ValueError(
                    f"looked shape {looked.shape} must be (frames,) = ({n_frames},) or "
                    f"(frames, individuals) = ({n_frames}, {n_ind}) to match probabilities "
                    f"shape {probs.shape}"
                )
            self.looked = looked

        if self.motif is None:
            self.motif = np.full((n_frames, n_ind), -1, dtype=np.int64)
        else:
            motif = np.asarray(self.motif)
            if not (np.issubdtype(motif.dtype, np.integer) or motif.dtype == bool):
                raise ValueError(f"motif must be an integer array, got dtype {motif.dtype}")
            if motif.shape != (n_frames, n_ind):
                raise ValueError(
                    f"motif shape {motif.shape} does not match (frames, individuals) = ({n_frames}, {n_ind}) "
                    f"of probabilities shape {probs.shape}"
                )
            if motif.size and motif.min() < -1:
                raise ValueError(f"motif ids must be >= -1 (-1 = no motif), got minimum {motif.min()}")
            self.motif = motif.astype(np.int64, copy=False)

    @property
    def n_frames(self) -> int:
        """Number of frames ``T``."""
        return int(self.probabilities.shape[0])

    @property
    def n_individuals(self) -> int:
        """Number of individuals ``I``."""
        return int(self.probabilities.shape[1])

    @property
    def n_behaviors(self) -> int:
        """Number of behaviors ``C``."""
        return int(self.probabilities.shape[2])

    @property
    def looked_per_individual(self) -> np.ndarray:
        """``looked`` as a bool ``(T, I)`` array (a ``(T,)`` flag is repeated per individual)."""
        if self.looked.ndim == 1:
            return np.repeat(self.looked[:, None], self.n_individuals, axis=1)
        return self.looked

    def label_index(self) -> np.ndarray:
        """Index of the most probable present behavior per frame and individual.

        Returns
        -------
        np.ndarray
            int64 ``(T, I)``; -1 where no behavior is present. Ties go to the
            behavior listed first.
        """
        # A present flag with a NaN probability (user-supplied present) still wins
        # over absent behaviors, hence -1 rather than -inf for NaN.
        score = np.where(self.present, np.nan_to_num(self.probabilities, nan=-1.0), -np.inf)
        return np.where(self.present.any(axis=2), np.argmax(score, axis=2), -1).astype(np.int64)

    def labels(self) -> np.ndarray:
        """Label strings ``(T, I)``: the top present behavior, or ``"none"``."""
        names = np.array([*self.behaviors, NO_LABEL], dtype=object)
        return names[self.label_index()]  # -1 picks the trailing "none"

    def validate_against(self, record: PoseRecord) -> None:
        """Check that the prediction covers exactly the frames and individuals of ``record``.

        Raises
        ------
        PoseFormatError
            Naming the pose file, the prediction's shape and the record's shape.
        """
        want = (record.n_frames, len(record.individuals))
        got = self.probabilities.shape[:2]
        if got != want:
            raise PoseFormatError(
                record.source,
                f"behavior prediction probabilities have shape {self.probabilities.shape} "
                f"(frames, individuals, behaviors) but the pose record has {want[0]} frames x "
                f"{want[1]} individuals {record.individuals}",
            )


def bouts_from_mask(mask, min_frames: int = 1) -> list[tuple[int, int]]:
    """Contiguous runs of True in a 1-D mask.

    Parameters
    ----------
    mask : array-like of bool, shape (T,)
        Per-frame flags.
    min_frames : int
        Runs shorter than this many frames are dropped.

    Returns
    -------
    list of (int, int)
        ``(start_frame, end_frame)`` pairs, ``end_frame`` inclusive, in frame order.
    """
    m = _as_flags("mask", mask, f"(shape {np.shape(mask)})")
    if m.ndim != 1:
        raise ValueError(f"mask must be 1-D (frames,), got shape {m.shape}")
    min_frames = int(min_frames)
    if min_frames < 1:
        raise ValueError(f"min_frames must be >= 1, got {min_frames}")
    _, starts, ends = mask_runs(m[None, :])
    keep = (ends - starts + 1) >= min_frames
    return [(int(s), int(e)) for s, e in zip(starts[keep], ends[keep])]


def behaviors_table(record: PoseRecord, prediction: BehaviorPrediction) -> pd.DataFrame:
    """Build the tidy per-frame, per-individual table (full precision).

    Parameters
    ----------
    record : PoseRecord
        Gives individual names and fps.
    prediction : BehaviorPrediction
        Must match ``record`` (see :meth:`BehaviorPrediction.validate_against`).

    Returns
    -------
    pandas.DataFrame
        Columns ``frame, time_s, individual, label, looked, motif, p_<behavior>...``,
        rows ordered by frame then by the record's individual order.
    """
    prediction.validate_against(record)
    n_frames, n_ind, n_beh = prediction.probabilities.shape
    frame = np.repeat(np.arange(n_frames, dtype=np.int64), n_ind)
    time_s = frame / float(record.fps) if record.fps else np.full(frame.shape, np.nan)
    columns = {
        "frame": frame,
        "time_s": time_s.astype(np.float64),
        "individual": np.tile(np.array(record.individuals, dtype=object), n_frames),
        "label": prediction.labels().reshape(-1),
        "looked": prediction.looked_per_individual.reshape(-1).astype(np.int8),
        "motif": prediction.motif.reshape(-1).astype(np.int64),
    }
    flat = prediction.probabilities.reshape(n_frames * n_ind, n_beh)
    for c, name in enumerate(prediction.behaviors):
        columns[probability_column(name)] = flat[:, c].copy()
    return pd.DataFrame(columns)


def time_budget_of(prediction: BehaviorPrediction, min_bout_frames: int = 1) -> dict[str, float]:
    """Share of tracked animal-frames inside a bout of each behavior, pooled over the animals.

    The definition of the time-budget figure (:func:`dlc_lookagain.plots.time_budget`, per
    animal) and of the "most time" of ``analyze``'s log and summary: frames in a bout of at
    least ``min_bout_frames`` (the bouts of the ``_bouts.csv``) among the frames where the animal
    is tracked (probabilities not all NaN). Behaviors overlap, so shares need not add up to 1.

    Parameters
    ----------
    prediction : BehaviorPrediction
        Probabilities and presence (frames, individuals, behaviors).
    min_bout_frames : int
        As for :func:`bouts_table`.

    Returns
    -------
    dict of str to float
        ``{behavior: share}``; 0.0 for every behavior when no animal is ever tracked.
    """
    probs = np.asarray(prediction.probabilities)
    tracked = ~np.isnan(probs).all(axis=-1)  # (T, I)
    n_tracked = int(tracked.sum())
    budget = {}
    for c, name in enumerate(prediction.behaviors):
        inside = 0
        for i in range(probs.shape[1]):
            for start, end in bouts_from_mask(prediction.present[:, i, c], min_bout_frames):
                inside += int(tracked[start:end + 1, i].sum())
        budget[name] = inside / n_tracked if n_tracked else 0.0
    return budget


def _empty_bouts() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "individual": pd.Series([], dtype=object).astype(str),
            "behavior": pd.Series([], dtype=object).astype(str),
            "start_frame": np.array([], dtype=np.int64),
            "end_frame": np.array([], dtype=np.int64),
            "n_frames": np.array([], dtype=np.int64),
            "start_s": np.array([], dtype=np.float64),
            "end_s": np.array([], dtype=np.float64),
            "duration_s": np.array([], dtype=np.float64),
            "mean_probability": np.array([], dtype=np.float64),
        }
    )


def bouts_table(record: PoseRecord, prediction: BehaviorPrediction, min_bout_frames: int = 1) -> pd.DataFrame:
    """One row per bout of a present behavior, per individual.

    Parameters
    ----------
    record : PoseRecord
        Gives individual names and fps.
    prediction : BehaviorPrediction
        Bouts are the runs of ``prediction.present[:, i, c]``.
    min_bout_frames : int
        Shorter runs are dropped.

    Returns
    -------
    pandas.DataFrame
        Columns as :data:`BOUT_COLUMNS`, ordered by individual, behavior, start.
        ``start_s = start_frame / fps`` (onset of the first frame) and
        ``end_s = (end_frame + 1) / fps`` (end of the last frame), so
        ``duration_s = n_frames / fps``; all three are NaN without fps.
        ``mean_probability`` ignores NaN probabilities.
    """
    prediction.validate_against(record)
    rows = []
    probs = prediction.probabilities
    for i, ind in enumerate(record.individuals):
        for c, beh in enumerate(prediction.behaviors):
            for start, end in bouts_from_mask(prediction.present[:, i, c], min_bout_frames):
                seg = probs[start : end + 1, i, c].astype(np.float64)
                seg = seg[~np.isnan(seg)]
                mean = float(seg.mean()) if seg.size else float("nan")
                rows.append((ind, beh, start, end, end - start + 1, mean))
    if not rows:
        return _empty_bouts()
    ind, beh, start, end, n, mean = (np.array(col) for col in zip(*rows))
    fps = float(record.fps) if record.fps else np.nan
    start = start.astype(np.int64)
    end = end.astype(np.int64)
    n = n.astype(np.int64)
    return pd.DataFrame(
        {
            "individual": ind.astype(object),
            "behavior": beh.astype(object),
            "start_frame": start,
            "end_frame": end,
            "n_frames": n,
            "start_s": start / fps,
            "end_s": (end + 1) / fps,
            "duration_s": n / fps,
            "mean_probability": mean.astype(np.float64),
        }
    )
