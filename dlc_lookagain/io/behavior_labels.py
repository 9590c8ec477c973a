"""Behavior labels in memory: which behaviors each animal shows in each frame, and which frames
someone labeled at all.

:class:`BehaviorLabels` is what every label reader returns (:func:`dlc_lookagain.io.labels.read_labels`);
the helpers below turn bouts into per-frame masks and back. Frame numbers are 0-based and bout ends
inclusive; times in seconds are half-open ``[start, stop)`` and become frames with
``floor(t * fps + 0.5)``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from dlc_lookagain.errors import PoseFormatError

logger = logging.getLogger(__name__)

#: Subject names that mean "every animal in the pose file" (BORIS writes
#: "No focal subject" or leaves the subject empty; users write "all").
ALL_INDIVIDUALS = "all"
_SPECIAL_SUBJECTS = {"", "all", "no focal subject", "nan", "none"}
#: What the readers accept, for error messages.
_ACCEPTED = (
    "accepted label files: a frame table (column 'frame' plus 0/1 behavior columns or a 'label' column), "
    "a bout table (columns 'behavior' and start_frame/end_frame or start_s/end_s), a BORIS events export, "
    "or a BehaviorDEPOT hB_*.mat file; see docs/label_formats.md"
)


@dataclass
class BehaviorLabels:
    """Per-frame, per-animal behavior labels of one recording.

    Attributes
    ----------
    behaviors : list of str
        Behavior names, C of them.
    individuals : list of str
        Animal names, I of them. ``"all"`` means "every animal of the pose file"
        (labels without a subject); :meth:`align` spreads it over all animals.
    present : np.ndarray
        bool ``(T, I, C)``; True where the behavior was labeled as happening.
        Several behaviors may be True in the same frame (multi-label).
        Always False where ``annotated`` is False.
    annotated : np.ndarray
        bool ``(T, I)``; False where nobody labeled that frame for that animal.
        Such frames are unknown, not negatives.
    fps : float or None
        Frames per second used to convert times, if known.
    source : Path
        The label file.
    source_format : str
        ``"frame-table"``, ``"frame-table-labels"``, ``"bout-table"``,
        ``"boris-events"``, ``"boris-aggregated"``, ``"behaviordepot"`` or ``"caltech"``.
    """

    behaviors: list[str]
    individuals: list[str]
    present: np.ndarray
    annotated: np.ndarray
    fps: float | None
    source: Path
    source_format: str = field(default="")

    def __post_init__(self) -> None:
        self.source = Path(self.source)
        self.behaviors = [str(b) for b in self.behaviors]
        self.individuals = [str(i) for i in self.individuals]
        self.present = np.asarray(self.present, dtype=bool)
        self.annotated = np.asarray(self.annotated, dtype=bool)
        if self.fps is not None:
            self.fps = float(self.fps)
            if not (np.isfinite(self.fps) and self.fps > 0):
                raise PoseFormatError(self.source, f"invalid fps {self.fps!r}")
        t_i_c = (self.annotated.shape[0] if self.annotated.ndim == 2 else -1, len(self.individuals),
                 len(self.behaviors))
        if self.present.shape != t_i_c or self.annotated.shape != t_i_c[:2]:
            raise PoseFormatError(
                self.source,
                f"label arrays do not match the names: present {self.present.shape}, annotated "
                f"{self.annotated.shape}, {len(self.individuals)} individuals, "
                f"{len(self.behaviors)} behaviors",
            )
        for kind, names in (("behavior", self.behaviors), ("individual", self.individuals)):
            if len(set(names)) != len(names):
                raise PoseFormatError(self.source, f"duplicate {kind} names: {names}")
        # One invariant keeps every consumer simple: a positive is always an annotated frame.
        if (self.present & ~self.annotated[:, :, None]).any():
            raise PoseFormatError(self.source, "labels mark a behavior on frames that are not annotated")

    @property
    def n_frames(self) -> int:
        """Number of frames T."""
        return int(self.present.shape[0])

    @property
    def n_individuals(self) -> int:
        """Number of individuals I."""
        return int(self.present.shape[1])

    @property
    def n_behaviors(self) -> int:
        """Number of behaviors C."""
        return int(self.present.shape[2])

    def __repr__(self) -> str:
        return (
            f"BehaviorLabels(source={self.source.name!r}, format={self.source_format!r}, "
            f"frames={self.n_frames}, "
            f"individuals={self.individuals}, behaviors={self.behaviors}, "
            f"annotated={int(self.annotated.sum())}, fps={self.fps})"
        )

    def frame_counts(self) -> dict[str, int]:
        """Count labeled frames per behavior.

        Returns
        -------
        dict of str to int
            For each behavior, the number of (frame, individual) pairs where it
            is present, summed over individuals (``annotated.sum()`` gives the
            number of labeled (frame, individual) pairs).
        """
        return {b: int(n) for b, n in zip(self.behaviors, self.present.sum(axis=(0, 1)))}

    def to_bouts(self) -> pd.DataFrame:
        """List every run of consecutive frames where a behavior is present.

        Returns
        -------
        pandas.DataFrame
            Columns ``individual, behavior, start_frame, end_frame, n_frames,
            start_s, end_s``. Frames are 0-based and ``end_frame`` is inclusive.
            ``start_s = start_frame / fps`` and ``end_s = (end_frame + 1) / fps``
            (the moment the bout stops, so ``[start_s, end_s)`` reads back to the
            same frames); NaN when fps is unknown. Sorted by individual, behavior
            (in label order) and start.
        """
        t, n_ind, n_beh = self.present.shape
        # (I*C, T) so that np.nonzero walks each individual/behavior track in frame order.
        tracks = self.present.reshape(t, n_ind * n_beh).T
        track, starts, ends = mask_runs(tracks)
        fps = self.fps if self.fps else np.nan
        ind_names = np.asarray(self.individuals, dtype=object)[track // max(n_beh, 1)]
        beh_names = np.asarray(self.behaviors, dtype=object)[track % max(n_beh, 1)]
        return pd.DataFrame(
            {
                "individual": pd.Series(ind_names, dtype=object),
                "behavior": pd.Series(beh_names, dtype=object),
                "start_frame": starts.astype(np.int64),
                "end_frame": ends.astype(np.int64),
                "n_frames": (ends - starts + 1).astype(np.int64),
                "start_s": starts / fps,
                "end_s": (ends + 1) / fps,
            }
        )

    def subset(self, behaviors: Sequence[str]) -> BehaviorLabels:
        """Keep only some behaviors, in the given order.

        Parameters
        ----------
        behaviors : sequence of str
            Behavior names; each must exist in these labels.

        Returns
        -------
        BehaviorLabels
            A copy with ``len(behaviors)`` behavior columns; ``annotated`` is unchanged.

        Raises
        ------
        PoseFormatError
            If a name is not among :attr:`behaviors`.
        """
        behaviors = [str(b) for b in behaviors]
        missing = [b for b in behaviors if b not in self.behaviors]
        if missing:
            raise PoseFormatError(
                self.source, f"no behavior {missing} in these labels; available behaviors: {self.behaviors}"
            )
        idx = [self.behaviors.index(b) for b in behaviors]
        return BehaviorLabels(
            behaviors=behaviors,
            individuals=list(self.individuals),
            present=self.present[:, :, idx].copy(),
            annotated=self.annotated.copy(),
            fps=self.fps,
            source=self.source,
            source_format=self.source_format,
        )

    def align(self, individuals: Sequence[str] | None = None, n_frames: int | None = None) -> BehaviorLabels:
        """Put the labels on a pose record's individuals and frame grid.

        Parameters
        ----------
        individuals : sequence of str, optional
            The pose record's individual names, in its order. Label individuals
            named ``"all"`` (or ``""`` / ``"No focal subject"``) are applied to
            every one of them. Pose individuals without labels get
            ``annotated=False``. When both sides have exactly one individual the
            names need not match (a single-animal pose file called
            ``individual0`` and a BORIS subject called ``mouse``). Several label
            individuals mapping to one animal are merged (logical or).
            None keeps the current individuals.
        n_frames : int, optional
            Length of the pose record. Shorter labels are padded with unannotated
            frames; longer labels are cropped, with a warning when labeled frames
            are dropped. None keeps the current length.

        Returns
        -------
        BehaviorLabels
            A new object; this one is not changed.

        Raises
        ------
        PoseFormatError
            If a label individual is not among ``individuals``; the message lists both.
        """
        target = list(self.individuals) if individuals is None else [str(i) for i in individuals]
        t_old = self.n_frames
        t_new = t_old if n_frames is None else int(n_frames)
        if t_new < 0:
            raise PoseFormatError(self.source, f"n_frames must be >= 0, got {n_frames}")

        # Where each label individual goes (a list of target positions).
        mapping: list[list[int]] = []
        unknown = []
        for name in self.individuals if individuals is not None else ():
            if _is_all(name):
                mapping.append(list(range(len(target))))
            elif name in target:
                mapping.append([target.index(name)])
            else:
                unknown.append(name)
                mapping.append([])
        if individuals is None:
            mapping = [[i] for i in range(len(target))]
        if unknown:
            if len(self.individuals) == 1 and len(target) == 1:
                logger.info("%s: label individual %r taken as pose individual %r (one animal on each side)",
                            self.source, self.individuals[0], target[0])
                mapping = [[0]]
            else:
                raise PoseFormatError(
                    self.source,
                    f"label individuals {unknown} are not in the pose individuals {target} "
                    f"(label individuals: {self.individuals}); rename them in the label file, or use "
                    f"'{ALL_INDIVIDUALS}' for labels that apply to every animal",
                )
        if individuals is not None and any(_is_all(n) for n in self.individuals) and len(target) > 1:
            logger.info("%s: labels without a subject applied to all %d individuals %s",
                        self.source, len(target), target)

        keep = min(t_old, t_new)
        if t_new < t_old:
            dropped = int(self.present[t_new:].sum())
            if dropped:
                logger.warning("%s: labels run %d frames past the pose (%d frames); "
                               "%d labeled frame(s) dropped", self.source, t_old - t_new, t_new, dropped)
        present = np.zeros((t_new, len(target), self.n_behaviors), dtype=bool)
        annotated = np.zeros((t_new, len(target)), dtype=bool)
        for src, dests in enumerate(mapping):
            for dst in dests:
                present[:keep, dst] |= self.present[:keep, src]
                annotated[:keep, dst] |= self.annotated[:keep, src]
        return BehaviorLabels(
            behaviors=list(self.behaviors),
            individuals=target,
            present=present,
            annotated=annotated,
            fps=self.fps,
            source=self.source,
            source_format=self.source_format,
        )


# ----------------------------------------------------------------------------------------------------------
# Small vectorized helpers
# ----------------------------------------------------------------------------------------------------------


def _is_all(name: str) -> bool:
    return str(name).strip().lower() in _SPECIAL_SUBJECTS


def _normalize_individual(name) -> str:
    """Map BORIS/empty subject names to ``"all"``; keep real names as they are (stripped)."""
    if name is None or pd.isna(name):
        return ALL_INDIVIDUALS
    name = str(name).strip()
    return ALL_INDIVIDUALS if _is_all(name) else name


def mask_runs(tracks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Runs of True in each row of a bool ``(K, T)`` array.

    Returns
    -------
    track, start, end : np.ndarray
        Row index, first frame and last frame (inclusive) of each run, ordered by
        row then start.
    """
    k, t = tracks.shape
    padded = np.zeros((k, t + 2), dtype=np.int8)
    padded[:, 1:-1] = tracks
    d = np.diff(padded, axis=1)
    track, start = np.nonzero(d == 1)
    _, stop = np.nonzero(d == -1)  # row-major order pairs each stop with its start
    return track, start, stop - 1


def _bouts_to_mask(
    track: np.ndarray, start: np.ndarray, end: np.ndarray, n_tracks: int, n_frames: int
) -> np.ndarray:
    """Bool ``(n_tracks, n_frames)`` array from inclusive bouts (already inside ``[0, n_frames)``)."""
    edges = np.zeros(n_tracks * (n_frames + 1), dtype=np.int32)
    base = np.asarray(track, dtype=np.int64) * (n_frames + 1)
    np.add.at(edges, base + np.asarray(start, dtype=np.int64), 1)
    np.add.at(edges, base + np.asarray(end, dtype=np.int64) + 1, -1)
    return (np.cumsum(edges.reshape(n_tracks, n_frames + 1), axis=1)[:, :n_frames] > 0)


def _seconds_to_frame(t, fps: float) -> np.ndarray:
    """Nearest frame of a time in seconds; halves round up (the tiny epsilon absorbs float error in t*fps)."""
    return np.floor(np.asarray(t, dtype=float) * fps + 0.5 + 1e-6).astype(np.int64)


def _state_frames(start_s, stop_s, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """Inclusive frame range of half-open time intervals ``[start_s, stop_s)``; at least one frame each."""
    first = _seconds_to_frame(start_s, fps)
    last = np.maximum(first, _seconds_to_frame(stop_s, fps) - 1)
    return first, last


def _labels_from_bouts(
    path: Path,
    individual: Sequence[str],
    behavior: Sequence[str],
    start: np.ndarray,
    end: np.ndarray,
    *,
    n_frames: int | None,
    fps: float | None,
    source_format: str,
    behaviors_extra: Sequence[str] = (),
    individuals_extra: Sequence[str] = (),
) -> BehaviorLabels:
    """Build labels from inclusive frame bouts; every frame of every listed individual counts as annotated.

    ``n_frames`` is the observed extent (video length); without it the labels
    end at the last bout, and :meth:`BehaviorLabels.align` later pads the rest as
    unlabeled rather than negative.
    """
    start = np.asarray(start, dtype=np.int64)
    end = np.asarray(end, dtype=np.int64)
    if (start < 0).any():
        i = int(np.argmax(start < 0))
        raise PoseFormatError(path, f"bout of {behavior[i]!r} starts before frame 0 (frame {start[i]})")
    if (end < start).any():
        i = int(np.argmax(end < start))
        raise PoseFormatError(
            path, f"bout of {behavior[i]!r} ends (frame {end[i]}) before it starts (frame {start[i]})"
        )
    # Names in the order the file first mentions them (the extras are the file's rows in order).
    inds = list(dict.fromkeys([*individuals_extra, *individual]))
    behs = list(dict.fromkeys([*behaviors_extra, *behavior]))
    if n_frames is None:
        n_frames = int(end.max()) + 1 if end.size else 0
        logger.info("%s: no video length known; labels end at the last bout (frame %d); "
                    "give n_frames to count "
                    "the frames after it as 'no behavior'", path, n_frames - 1)
    beyond = end >= n_frames
    if beyond.any():
        logger.warning("%s: %d bout(s) run past the last frame (%d); cropped", path, int(beyond.sum()),
                       n_frames - 1)
        keep = start < n_frames
        end = np.minimum(end, n_frames - 1)
        start, end = start[keep], end[keep]
        individual = np.asarray(individual, dtype=object)[keep]
        behavior = np.asarray(behavior, dtype=object)[keep]
    ind_idx = pd.Index(inds).get_indexer(list(individual)).astype(np.int64)
    beh_idx = pd.Index(behs).get_indexer(list(behavior)).astype(np.int64)
    mask = _bouts_to_mask(ind_idx * len(behs) + beh_idx, start, end, len(inds) * len(behs), n_frames)
    present = mask.reshape(len(inds), len(behs), n_frames).transpose(2, 0, 1)
    annotated = np.ones((n_frames, len(inds)), dtype=bool)
    return BehaviorLabels(behs, inds, present, annotated, fps, path, source_format)


__all__ = ["ALL_INDIVIDUALS", "BehaviorLabels", "mask_runs"]
