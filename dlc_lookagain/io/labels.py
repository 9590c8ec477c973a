"""Read per-frame, per-animal behavior labels that users already have.

Every reader returns a :class:`BehaviorLabels`: a boolean ``present`` array
``(frames, individuals, behaviors)`` plus an ``annotated`` mask
``(frames, individuals)``. The mask matters for training: a frame nobody looked
at is *unlabeled*, not "no behavior", and must not be used as a negative.

Accepted files (dispatched by content, not by extension; see
``docs/label_formats.md``):

* our frame table (CSV/TSV with a ``frame`` column, 0/1 behavior columns or a
  ``label``/``behavior`` column), including our own ``<stem>_behaviors.csv``
  prediction output so that corrected predictions can be trained on;
* bout tables (``behavior`` + start/end in frames or seconds);
* BORIS exports: tabular events (START/STOP/POINT rows, with or without the
  observation preamble) and aggregated events (``Start (s)``/``Stop (s)``);
* BehaviorDEPOT ``hB_*.mat`` files (MATLAB v7.3/HDF5 or older v5);
* Caltech Behavior Annotator ``*_annot.txt`` files (:mod:`dlc_lookagain.io.caltech`).

Frame numbers are 0-based and bout ends are inclusive everywhere in this module.
Times in seconds are half-open ``[start, stop)`` and become frames with
``floor(t * fps + 0.5)`` (nearest frame, halves round up).
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import scipy.io

from dlc_lookagain.errors import PoseFormatError

logger = logging.getLogger(__name__)

#: Subject names that mean "every animal in the pose file" (BORIS writes
#: "No focal subject" or leaves the subject empty; users write "all").
ALL_INDIVIDUALS = "all"
_SPECIAL_SUBJECTS = {"", "all", "no focal subject", "nan", "none"}

#: Label-column values that mean "annotated, but no behavior in this frame".
_NO_BEHAVIOR = {"", "none", "nan"}

#: Separators for several simultaneous behaviors in one ``label`` cell.
_MULTI_LABEL_SEP = re.compile(r"[;|]")

#: Columns of a frame table that are never behaviors.
_FRAME_TABLE_META = {"frame", "time_s", "time", "looked", "motif"}
_INDIVIDUAL_COLUMNS = ("individual", "subject", "animal")
_LABEL_COLUMNS = ("label", "behavior", "behaviour")

#: (start, end, unit) column pairs of a bout table, most specific first.
_BOUT_COLUMN_PAIRS = (
    ("start_frame", "end_frame", "frames"),
    ("start_frame", "stop_frame", "frames"),
    ("start", "end", "frames"),
    ("start", "stop", "frames"),
    ("start_s", "end_s", "seconds"),
    ("start_s", "stop_s", "seconds"),
    ("start (s)", "stop (s)", "seconds"),
)

_ACCEPTED = (
    "accepted label files: a frame table (column 'frame' plus 0/1 behavior columns or a 'label' column), "
    "a bout table (columns 'behavior' and start_frame/end_frame or start_s/end_s), a BORIS events export, "
    "or a BehaviorDEPOT hB_*.mat file; see docs/label_formats.md"
)


# ----------------------------------------------------------------------------------------------------------
# Data model
# ----------------------------------------------------------------------------------------------------------


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


# ----------------------------------------------------------------------------------------------------------
# Public entry point
# ----------------------------------------------------------------------------------------------------------


def read_labels(
    path,
    *,
    n_frames: int | None = None,
    fps: float | None = None,
    individuals: Sequence[str] | None = None,
    behaviors: Sequence[str] | None = None,
) -> BehaviorLabels:
    """Read a behavior label file of any supported kind.

    The kind is recognized from the content (HDF5/MATLAB signature, BORIS
    header, column names), not only from the file extension.

    Parameters
    ----------
    path : str or Path
        The label file.
    n_frames : int, optional
        Number of frames of the recording (the pose file's length). For event
        files (bouts, BORIS, BehaviorDEPOT) every frame up to it that has no
        event counts as annotated "no behavior"; the result is then padded or
        cropped to exactly this length.
    fps : float, optional
        Frames per second, needed to turn seconds into frames. Overrides the fps
        stored in a BORIS export (a warning is logged when they disagree).
    individuals : sequence of str, optional
        The pose record's individuals; the result is aligned to them with
        :meth:`BehaviorLabels.align`.
    behaviors : sequence of str, optional
        Behaviors to keep, in this order. For event files a requested behavior
        that never occurs becomes an all-"no" column (with a warning); for a
        0/1 frame table it is an error, because a missing column was never
        labeled.

    Returns
    -------
    BehaviorLabels

    Raises
    ------
    PoseFormatError
        For anything unreadable or inconsistent; the message names the file and the problem.
    """
    path = Path(path)
    if fps is not None and not (np.isfinite(fps) and fps > 0):
        raise PoseFormatError(path, f"fps must be a positive number, got {fps!r}")
    if path.is_dir():
        candidates = sorted(p.name for p in path.glob("hB_*.mat*"))
        candidates += sorted(p.name for p in path.glob("*.csv"))
        raise PoseFormatError(path, f"is a folder; pass one label file (candidates here: {candidates[:10]})")
    if not path.is_file():
        raise PoseFormatError(path, "label file not found")
    with open(path, "rb") as fh:
        head = fh.read(4096)
    if not head.strip():
        raise PoseFormatError(path, "label file is empty")

    if head.startswith(b"MATLAB") or head.startswith(b"\x89HDF"):
        labels = _read_behaviordepot(path, head, n_frames=n_frames, fps=fps)
    elif head.startswith(b"PK"):
        raise PoseFormatError(path, "this is a zip/Excel file; export the labels as CSV or TSV. " + _ACCEPTED)
    elif b"\x00" in head:
        raise PoseFormatError(path, "binary file, not a label table. " + _ACCEPTED)
    elif _is_caltech(head):
        from dlc_lookagain.io.caltech import read_caltech_labels  # imports this module: import late

        labels = read_caltech_labels(path, n_frames=n_frames, fps=fps)
    else:
        labels = _read_table(path, n_frames=n_frames, fps=fps)

    if behaviors is not None:
        labels = _select_behaviors(labels, behaviors)
    if individuals is not None or n_frames is not None:
        labels = labels.align(individuals, n_frames)
    n_pos = labels.present.sum(axis=(0, 1))
    logger.info("%s: read %s labels, %d frames, individuals %s, %s", path, labels.source_format,
                labels.n_frames, labels.individuals, dict(zip(labels.behaviors, n_pos.tolist())))
    return labels


def _is_caltech(head: bytes) -> bool:
    """First line is the Caltech Behavior Annotator header (see :mod:`dlc_lookagain.io.caltech`)."""
    from dlc_lookagain.io.caltech import is_caltech_annotation  # imports this module: import late

    return is_caltech_annotation(head)


def _select_behaviors(labels: BehaviorLabels, behaviors: Sequence[str]) -> BehaviorLabels:
    behaviors = [str(b) for b in behaviors]
    missing = [b for b in behaviors if b not in labels.behaviors]
    dropped = [b for b in labels.behaviors if b not in behaviors]
    if dropped:
        logger.info("%s: ignoring behaviors not asked for: %s", labels.source, dropped)
    if missing:
        if labels.source_format == "frame-table":
            raise PoseFormatError(
                labels.source,
                f"no column for behavior(s) {missing}; this 0/1 table has {labels.behaviors}, "
                f"so those were never labeled",
            )
        logger.warning("%s: behavior(s) %s never occur in this file; they count as absent on every annotated "
                       "frame", labels.source, missing)
        pad = np.zeros((*labels.present.shape[:2], len(missing)), dtype=bool)
        labels = BehaviorLabels(labels.behaviors + missing, labels.individuals,
                                np.concatenate([labels.present, pad], axis=2), labels.annotated, labels.fps,
                                labels.source, labels.source_format)
    return labels.subset(behaviors)


# ----------------------------------------------------------------------------------------------------------
# Text tables: dispatch
# ----------------------------------------------------------------------------------------------------------


def _split_header(line: str) -> tuple[str, list[str]]:
    sep = "\t" if ("\t" in line and line.count("\t") >= line.count(",")) else ","
    return sep, [c.strip().strip('"').strip() for c in line.split(sep)]


def _is_boris_header(cols_lower: list[str]) -> bool:
    s = set(cols_lower)
    if not {"subject", "behavior"} <= s:
        return False
    events = "time" in s and ("status" in s or "behavior type" in s)
    aggregated = {"start (s)", "stop (s)"} <= s
    return events or aggregated


def _read_table(path: Path, *, n_frames: int | None, fps: float | None) -> BehaviorLabels:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")  # BORIS on Windows may write cp1252 subject names
    # Only whole-line '#' comments are skipped: a '#' inside a behavior name must survive.
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("#")]

    header_idx = None
    boris = False
    # BORIS puts an observation preamble of variable length before its header.
    for i, line in enumerate(lines[:300]):
        _, cols = _split_header(line)
        if _is_boris_header([c.lower() for c in cols]):
            header_idx, boris = i, True
            break
    if header_idx is None:
        for i, line in enumerate(lines):
            if line.strip():
                header_idx = i
                break
    if header_idx is None:
        raise PoseFormatError(path, "label file has no header line (only blank or # comment lines)")

    sep, cols = _split_header(lines[header_idx])
    if cols and cols[0].lower() == "scorer":
        raise PoseFormatError(path, "this is a DeepLabCut pose file, not a label file. " + _ACCEPTED)
    try:
        df = pd.read_csv(io.StringIO("\n".join(lines[header_idx:])), sep=sep, dtype=str,
                         skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        kind = "BORIS " if boris else ""
        raise PoseFormatError(path, f"cannot parse as a {kind}label table: {exc}") from exc
    df.columns = [str(c).strip() for c in df.columns]
    # Drop the index column pandas writes by default ("Unnamed: 0") and empty trailing columns
    # (BORIS ends rows with a separator).
    junk = [c for c in df.columns if c.startswith("Unnamed:") and (c == "Unnamed: 0" or df[c].isna().all())]
    df = df.drop(columns=junk)
    lower = {c.lower(): c for c in df.columns}
    if df.empty:
        raise PoseFormatError(path, f"label table has a header ({list(df.columns)}) but no rows")
    if boris:
        return _read_boris(path, df, lower, preamble=lines[:header_idx], n_frames=n_frames, fps=fps)
    behavior_col = next((lower[c] for c in _LABEL_COLUMNS if c in lower), None)
    for start_c, end_c, unit in _BOUT_COLUMN_PAIRS:
        if start_c in lower and end_c in lower:
            if behavior_col is None:
                raise PoseFormatError(path, f"bout table with {lower[start_c]!r}/{lower[end_c]!r} but no "
                                            f"'behavior' column; columns: {list(df.columns)}")
            return _read_bout_table(path, df, lower, behavior_col, lower[start_c], lower[end_c], unit,
                                    n_frames=n_frames, fps=fps)
    if "frame" in lower:
        return _read_frame_table(path, df, lower, behavior_col, fps=fps)
    raise PoseFormatError(path, f"not a recognized label table (columns: {list(df.columns)}). " + _ACCEPTED)


def _individual_column(df: pd.DataFrame, lower: dict[str, str]) -> list[str]:
    col = next((lower[c] for c in _INDIVIDUAL_COLUMNS if c in lower), None)
    if col is None:
        return [ALL_INDIVIDUALS] * len(df)
    return [_normalize_individual(v) for v in df[col].tolist()]


def _numeric(
    path: Path, series: pd.Series, what: str, *, integer: bool, allow_nan: bool = False
) -> np.ndarray:
    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float)
    bad = np.isnan(values) & series.notna().to_numpy()
    if bad.any():
        i = int(np.argmax(bad))
        raise PoseFormatError(path, f"{what} must be a number; row {i + 1} holds {series.iloc[i]!r}")
    if not allow_nan and np.isnan(values).any():
        i = int(np.argmax(np.isnan(values)))
        raise PoseFormatError(path, f"{what} is empty in row {i + 1}")
    if integer:
        finite = values[np.isfinite(values)]
        frac = finite != np.round(finite)
        if frac.any():
            raise PoseFormatError(path, f"{what} must hold whole frame numbers, found {finite[frac][0]!r}; "
                                        f"if these are seconds, name the columns start_s/end_s")
    return values


# ----------------------------------------------------------------------------------------------------------
# Frame tables (ours, and our prediction output)
# ----------------------------------------------------------------------------------------------------------


def _read_frame_table(path: Path, df: pd.DataFrame, lower: dict[str, str], label_col: str | None, *,
                      fps: float | None) -> BehaviorLabels:
    frames = _numeric(path, df[lower["frame"]], "column 'frame'", integer=True).astype(np.int64)
    if (frames < 0).any():
        raise PoseFormatError(path, f"negative frame number {frames[frames < 0][0]} (frames are 0-based)")
    codes, uniques = pd.factorize(pd.Series(_individual_column(df, lower), dtype=object))
    inds, ind_idx = [str(u) for u in uniques], codes.astype(np.int64)
    t = int(frames.max()) + 1
    annotated = np.zeros((t, len(inds)), dtype=bool)

    if label_col is not None:
        # One behavior name per row (or several joined by ';'); our prediction output adds p_<behavior>
        # columns, which name behaviors that may never be the top label.
        prob_behs = [c[2:] for c in df.columns if c.lower().startswith("p_") and len(c) > 2]
        known = set(prob_behs)
        row_idx, names = [], []
        for r, cell in enumerate(df[label_col].tolist()):
            cell = "" if pd.isna(cell) else str(cell).strip()
            # A known behavior whose name contains ';' is one name, not two.
            for name in [cell] if cell in known else _MULTI_LABEL_SEP.split(cell):
                name = name.strip()
                if name.lower() not in _NO_BEHAVIOR:
                    row_idx.append(r)
                    names.append(name)
        behs = list(dict.fromkeys([*prob_behs, *names]))
        present = np.zeros((t, len(inds), len(behs)), dtype=bool)
        annotated[frames, ind_idx] = True
        if names:
            rows = np.asarray(row_idx, dtype=np.int64)
            beh_idx = pd.Index(behs).get_indexer(names).astype(np.int64)
            present[frames[rows], ind_idx[rows], beh_idx] = True
        ignored = [c for c in df.columns if c != label_col and c.lower() not in _FRAME_TABLE_META
                   and c.lower() not in _INDIVIDUAL_COLUMNS and not c.lower().startswith("p_")]
        if ignored:
            logger.info("%s: label column %r used; other columns ignored: %s", path, label_col, ignored)
        return BehaviorLabels(behs, inds, present, annotated, fps, path, "frame-table-labels")

    behs = [c for c in df.columns
            if c.lower() not in _FRAME_TABLE_META and c.lower() not in _INDIVIDUAL_COLUMNS]
    if not behs:
        raise PoseFormatError(path, "frame table has no behavior columns (expected 0/1 columns or a 'label' "
                                    "column next to 'frame')")
    values = np.empty((len(df), len(behs)), dtype=float)
    for j, col in enumerate(behs):
        s = df[col].str.strip().str.lower().replace({"true": "1", "false": "0", "": None})
        v = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float)
        bad = (np.isnan(v) & s.notna().to_numpy()) | (~np.isnan(v) & (v != 0) & (v != 1))
        if bad.any():
            example = df[col].iloc[int(np.argmax(bad))]
            raise PoseFormatError(
                path,
                f"column {col!r} holds {example!r}; in a frame table every column other than "
                f"frame/individual/time_s must be a behavior with 0/1 values "
                f"(or a 'label' column naming the behavior)",
            )
        values[:, j] = v
    unknown_cells = np.isnan(values)
    partial = unknown_cells.any(axis=1)
    if (partial & ~unknown_cells.all(axis=1)).any():
        logger.warning("%s: %d row(s) have some behavior cells empty; those rows are treated as unlabeled",
                       path, int((partial & ~unknown_cells.all(axis=1)).sum()))
    ok = ~partial
    dup = pd.Index(list(zip(frames.tolist(), ind_idx.tolist()))).duplicated()
    if dup.any():
        logger.warning("%s: %d duplicated (frame, individual) rows; their labels are merged", path,
                       int(dup.sum()))
    present = np.zeros((t, len(inds), len(behs)), dtype=bool)
    annotated[frames[ok], ind_idx[ok]] = True
    pos_r, pos_c = np.nonzero((values == 1) & ok[:, None])
    present[frames[pos_r], ind_idx[pos_r], pos_c] = True
    return BehaviorLabels(behs, inds, present, annotated, fps, path, "frame-table")


# ----------------------------------------------------------------------------------------------------------
# Bout tables
# ----------------------------------------------------------------------------------------------------------


def _read_bout_table(path: Path, df: pd.DataFrame, lower: dict[str, str], behavior_col: str, start_col: str,
                     end_col: str, unit: str, *, n_frames: int | None, fps: float | None) -> BehaviorLabels:
    names = ["" if pd.isna(v) else str(v).strip() for v in df[behavior_col].tolist()]
    inds = _individual_column(df, lower)
    if any(not n for n in names):
        i = next(i for i, n in enumerate(names) if not n)
        raise PoseFormatError(path, f"row {i + 1} has no behavior name")
    start = _numeric(path, df[start_col], f"column {start_col!r}", integer=(unit == "frames"))
    end = _numeric(path, df[end_col], f"column {end_col!r}", integer=(unit == "frames"))
    if unit == "seconds":
        if fps is None:
            raise PoseFormatError(path, f"bout times are in seconds ({start_col!r}/{end_col!r}); pass fps to "
                                        f"convert them to frames")
        if (end < start).any():
            i = int(np.argmax(end < start))
            raise PoseFormatError(
                path, f"bout of {names[i]!r} ends ({end[i]} s) before it starts ({start[i]} s)"
            )
        start, end = _state_frames(start, end, fps)
    # "none" rows in a bout table are annotations of "nothing happens": they carry no bout but keep the
    # individual annotated.
    keep = np.array([n.lower() not in _NO_BEHAVIOR for n in names], dtype=bool)
    return _labels_from_bouts(
        path, [i for i, k in zip(inds, keep) if k], [n for n, k in zip(names, keep) if k],
        np.asarray(start)[keep].astype(np.int64), np.asarray(end)[keep].astype(np.int64),
        n_frames=n_frames, fps=fps, source_format="bout-table", individuals_extra=inds,
    )


# ----------------------------------------------------------------------------------------------------------
# BORIS
# ----------------------------------------------------------------------------------------------------------


def _boris_number(path: Path, values: pd.Series, what: str) -> float | None:
    """One number from a BORIS per-row column such as FPS or media length.

    Observations with several media files store ``"30.000;25.000"`` (and ``|``
    between players); the FPS must agree and the lengths of one player add up.
    """
    uniq = [str(v).strip() for v in values.dropna().unique()]
    uniq = [u for u in uniq if u and u.upper() != "NA"]
    if not uniq:
        return None
    if len(uniq) > 1:
        raise PoseFormatError(path, f"column {what!r} changes between rows ({uniq[:3]}); "
                                    f"export one observation per file")
    player1 = uniq[0].split("|")[0]
    try:
        parts = [float(p) for p in player1.split(";") if p.strip()]
    except ValueError as exc:
        raise PoseFormatError(path, f"column {what!r} holds {uniq[0]!r}, not a number") from exc
    if not parts:
        return None
    if what.lower().startswith("fps"):
        if len(set(parts)) > 1:
            raise PoseFormatError(path, f"media files of this observation have different FPS {parts}; "
                                        f"pass fps")
        return parts[0]
    return float(sum(parts))


def _read_boris(path: Path, df: pd.DataFrame, lower: dict[str, str], *, preamble: list[str],
                n_frames: int | None, fps: float | None) -> BehaviorLabels:
    if "observation id" in lower:
        obs = [o for o in df[lower["observation id"]].dropna().unique()]
        if len(obs) > 1:
            raise PoseFormatError(path, f"BORIS export holds {len(obs)} observations {obs[:5]}; export one "
                                        f"observation per file (one file per video)")
    fps_col = next((lower[c] for c in ("fps", "fps (frame/s)") if c in lower), None)
    file_fps = _boris_number(path, df[fps_col], fps_col) if fps_col else None
    if fps is None:
        if file_fps is None:
            raise PoseFormatError(path, "BORIS export has no FPS (live observation?); pass fps")
        fps = file_fps
    elif file_fps is not None and abs(file_fps - fps) > 1e-3 * fps:
        logger.warning("%s: BORIS says %.3f fps but fps=%.3f was given; using %.3f", path, file_fps, fps, fps)

    length_col = next((lower[c] for c in ("total length", "media duration (s)") if c in lower), None)
    length_s = _boris_number(path, df[length_col], length_col) if length_col else None
    media_frames = int(_seconds_to_frame(length_s, fps)) if length_s else None
    if n_frames is None:
        n_frames = media_frames
    elif media_frames is not None and abs(media_frames - n_frames) > 1:
        logger.warning("%s: BORIS media is %d frames (%.3f s at %.3f fps) but n_frames=%d", path,
                       media_frames, length_s, fps, n_frames)

    # Event times include the observation's time offset; video frames do not.
    offset = 0.0
    if "time offset (s)" in lower:
        offset = _boris_number(path, df[lower["time offset (s)"]], "Time offset (s)") or 0.0
    else:
        for line in preamble:
            _, cells = _split_header(line)
            if len(cells) > 1 and cells[0].lower() == "time offset (s)":
                try:
                    offset = float(cells[1])
                except ValueError:
                    pass
    if offset:
        logger.warning("%s: BORIS time offset %.3f s subtracted from event times", path, offset)

    subjects = [_normalize_individual(s) for s in df[lower["subject"]].tolist()]
    behaviors = ["" if pd.isna(v) else str(v).strip() for v in df[lower["behavior"]].tolist()]
    if not all(behaviors):
        raise PoseFormatError(path, f"BORIS row {behaviors.index('') + 1} has no behavior name")

    if {"start (s)", "stop (s)"} <= set(lower):
        source_format = "boris-aggregated"
        start_s = _numeric(path, df[lower["start (s)"]].replace("NA", None), "column 'Start (s)'",
                           integer=False)
        stop_s = _numeric(path, df[lower["stop (s)"]].replace("NA", None), "column 'Stop (s)'", integer=False,
                          allow_nan=True)
        kind = (df[lower["behavior type"]].fillna("").str.strip().str.upper().tolist()
                if "behavior type" in lower else ["STATE"] * len(df))
        point = np.array([k.startswith("POINT") for k in kind], dtype=bool) | np.isnan(stop_s)
        bad_state = np.isnan(stop_s) & ~np.array([k.startswith("POINT") for k in kind])
        if bad_state.any():
            i = int(np.argmax(bad_state))
            raise PoseFormatError(path, f"state event {behaviors[i]!r} ({subjects[i]}) starting at "
                                        f"{start_s[i]} s has no stop time")
        first, last = _state_frames(start_s - offset, np.where(point, start_s, stop_s) - offset, fps)
        pf = _seconds_to_frame(start_s[point] - offset, fps)
        first[point], last[point] = pf, pf
        starts, ends = first, last
        bout_subjects, bout_behaviors = subjects, behaviors
    else:
        source_format = "boris-events"
        status_col = lower["status"] if "status" in lower else lower["behavior type"]
        status = df[status_col].fillna("").str.strip().str.upper().tolist()
        times = _numeric(path, df[lower["time"]], "column 'Time'", integer=False) - offset
        unknown = sorted({s for s in status if s not in ("START", "STOP", "POINT")})
        if unknown:
            raise PoseFormatError(path, f"column {status_col!r} holds {unknown}; "
                                        f"expected START, STOP or POINT")
        bout_subjects, bout_behaviors, start_t, stop_t = [], [], [], []
        open_events: dict[tuple[str, str], float] = {}
        # At the same instant a STOP is applied before a START: BORIS writes back-to-back bouts of one
        # behavior (STOP t, START t) in either order.
        rank = np.array([{"STOP": 0, "POINT": 1, "START": 2}[st] for st in status])
        for r in np.lexsort((rank, times)):
            key = (subjects[r], behaviors[r])
            if status[r] == "POINT":
                bout_subjects.append(key[0])
                bout_behaviors.append(key[1])
                start_t.append(times[r])
                stop_t.append(np.nan)
            elif status[r] == "START":
                if key in open_events:
                    raise PoseFormatError(path, f"behavior {key[1]!r} (subject {key[0]!r}) STARTs again at "
                                                f"{times[r] + offset:.3f} s before its START at "
                                                f"{open_events[key] + offset:.3f} s was STOPped")
                open_events[key] = times[r]
            else:
                if key not in open_events:
                    raise PoseFormatError(path, f"behavior {key[1]!r} (subject {key[0]!r}) STOPs at "
                                                f"{times[r] + offset:.3f} s without a START")
                bout_subjects.append(key[0])
                bout_behaviors.append(key[1])
                start_t.append(open_events.pop(key))
                stop_t.append(times[r])
        if open_events:
            (subj, beh), t0 = next(iter(open_events.items()))
            raise PoseFormatError(path, f"behavior {beh!r} (subject {subj!r}) STARTs at "
                                        f"{t0 + offset:.3f} s and never STOPs "
                                        f"({len(open_events)} unpaired START(s))")
        start_t = np.asarray(start_t, dtype=float)
        stop_t = np.asarray(stop_t, dtype=float)
        point = np.isnan(stop_t)
        starts, ends = _state_frames(start_t, np.where(point, start_t, stop_t), fps)
        starts[point] = ends[point] = _seconds_to_frame(start_t[point], fps)

    starts = np.asarray(starts, dtype=np.int64)
    if (starts < 0).any():
        i = int(np.argmax(starts < 0))
        raise PoseFormatError(path, f"event {bout_behaviors[i]!r} lies before the start of the video")
    if n_frames is None:
        logger.warning("%s: BORIS export has no media length; labels end at the last event", path)
    return _labels_from_bouts(path, bout_subjects, bout_behaviors, starts, np.asarray(ends, dtype=np.int64),
                              n_frames=n_frames, fps=fps, source_format=source_format,
                              behaviors_extra=behaviors, individuals_extra=subjects)


# ----------------------------------------------------------------------------------------------------------
# BehaviorDEPOT
# ----------------------------------------------------------------------------------------------------------


def _read_behaviordepot(
    path: Path, head: bytes, *, n_frames: int | None, fps: float | None
) -> BehaviorLabels:
    """Read a BehaviorDEPOT ``hBehavior`` struct (v7.3 via h5py, older .mat via scipy)."""
    if h5py.is_hdf5(path):
        behs, meta = _hbehavior_from_hdf5(path)
    elif head.startswith(b"MATLAB"):
        behs, meta = _hbehavior_from_mat5(path)
    else:
        raise PoseFormatError(path, "looks like HDF5 but h5py cannot open it. " + _ACCEPTED)
    if not behs:
        raise PoseFormatError(path, "no behavior struct with 'Vector' or 'Bouts' found (expected a "
                                    "BehaviorDEPOT hBehavior file). " + _ACCEPTED)
    total = meta.get("TotalFrames")
    if fps is None and meta.get("FrameRate"):
        fps = float(meta["FrameRate"])
    if fps is None:
        fps = _behaviordepot_frame_rate(path)

    names, columns = [], []
    for name, parts in behs.items():
        vector, bouts = parts.get("Vector"), parts.get("Bouts")
        if bouts is not None:
            if bouts.size and (bouts.ndim != 2 or bouts.shape[1] != 2):
                raise PoseFormatError(path, f"{name}/Bouts has shape {bouts.shape}; "
                                            f"expected [start stop] pairs")
            bouts = bouts.reshape(-1, 2)
            if bouts.size and (np.any(bouts != np.round(bouts)) or bouts.min() < 1):
                raise PoseFormatError(path, f"{name}/Bouts must hold 1-based frame numbers")
        if vector is not None:
            v = vector.ravel()
            if not np.isin(v, (0, 1)).all():
                raise PoseFormatError(path, f"{name}/Vector holds values other than 0/1")
            vec = v.astype(bool)
            if bouts is not None:
                # BehaviorDEPOT bouts are 1-based and inclusive: frames s-1 .. e-1 in Python.
                t_chk = max(len(vec), int(bouts[:, 1].max()) if bouts.size else 0)
                from_bouts = _bouts_to_mask(np.zeros(len(bouts), dtype=np.int64), bouts[:, 0] - 1,
                                            bouts[:, 1] - 1, 1, t_chk)[0]
                diff = int((np.pad(vec, (0, t_chk - len(vec))) != from_bouts).sum())
                if diff:
                    logger.warning("%s: %s Vector and Bouts disagree on %d frame(s); using Vector", path,
                                   name, diff)
        elif bouts is not None:
            t_b = int(total or n_frames or (bouts[:, 1].max() if bouts.size else 0))
            b = bouts[bouts[:, 0] <= t_b].astype(np.int64)
            vec = _bouts_to_mask(np.zeros(len(b), dtype=np.int64), b[:, 0] - 1, np.minimum(b[:, 1], t_b) - 1,
                                 1, t_b)[0]
        else:
            continue
        names.append(name)
        columns.append(vec)

    if not names:
        raise PoseFormatError(path, "no behavior holds a 'Vector' or 'Bouts'")
    lengths = {len(c) for c in columns}
    t = max(lengths)
    if len(lengths) > 1:
        logger.warning("%s: behavior vectors have different lengths %s; shorter ones padded with 0", path,
                       sorted(lengths))
    if total is not None and int(total) != t:
        logger.warning("%s: TotalFrames is %d but the behavior vectors have %d frames", path, int(total), t)
    present = np.zeros((t, 1, len(names)), dtype=bool)
    for j, c in enumerate(columns):
        present[: len(c), 0, j] = c
    annotated = np.ones((t, 1), dtype=bool)
    return BehaviorLabels(names, [ALL_INDIVIDUALS], present, annotated, fps, path, "behaviordepot")


def _behaviordepot_frame_rate(path: Path) -> float | None:
    """Frame rate from BehaviorDEPOT's ``<video>_analyzed/Params.mat`` beside the label file, if any.

    The hB label file itself stores no fps; BehaviorDEPOT's analysis folder of the
    same session records the video's (``Params.Video.frameRate``).
    """
    params = sorted(path.parent.glob("*_analyzed/Params.mat"))
    if len(params) != 1:
        return None
    try:
        mat = scipy.io.loadmat(params[0], squeeze_me=True, struct_as_record=False)
        rate = float(mat["Params"].Video.frameRate)
    except Exception as exc:  # any unreadable Params.mat just means "fps unknown"
        logger.debug("%s: no frame rate read from %s: %s", path, params[0], exc)
        return None
    if not np.isfinite(rate) or rate <= 0:
        return None
    logger.info("%s: fps %.6g taken from %s", path, rate, params[0])
    return rate


def _hbehavior_from_hdf5(path: Path) -> tuple[dict, dict]:
    def read(ds) -> np.ndarray:
        if ds.attrs.get("MATLAB_empty", 0):
            return np.zeros((0, 2))
        return np.asarray(ds[()], dtype=float)

    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise PoseFormatError(path, f"cannot open as HDF5/MATLAB v7.3: {exc}") from exc
    with f:
        # hBehavior from convertHumanAnnotations; any other top-level struct of the same shape
        # (BehaviorDEPOT's own Behavior.mat) is accepted too.
        tops = ["hBehavior"] + [k for k in f.keys() if k != "hBehavior" and not k.startswith("#")]
        for top in tops:
            grp = f.get(top)
            if not isinstance(grp, h5py.Group):
                continue
            behs, meta = {}, {}
            # h5py lists members alphabetically; MATLAB keeps the struct's field order in an attribute.
            order = [k for k in _matlab_field_order(grp) if k in grp] or list(grp.keys())
            for key in order:
                obj = grp[key]
                if isinstance(obj, h5py.Group) and ("Vector" in obj or "Bouts" in obj):
                    parts = {}
                    if "Vector" in obj:
                        parts["Vector"] = read(obj["Vector"]).ravel()
                    if "Bouts" in obj:
                        b = read(obj["Bouts"])
                        # MATLAB is column-major: an n-by-2 matrix is stored as (2, n).
                        parts["Bouts"] = b.T if b.ndim == 2 and b.size else np.zeros((0, 2))
                    behs[key] = parts
                elif isinstance(obj, h5py.Dataset) and key in ("TotalFrames", "FrameRate") and obj.size == 1:
                    meta[key] = float(np.asarray(obj[()]).ravel()[0])
            if behs:
                return behs, meta
    return {}, {}


def _matlab_field_order(grp) -> list[str]:
    """Field names of a MATLAB v7.3 struct in their MATLAB order (``MATLAB_fields`` attribute), or []."""
    fields = grp.attrs.get("MATLAB_fields")
    if fields is None:
        return []
    out = []
    for f in np.atleast_1d(fields):
        chars = np.atleast_1d(f)
        raw = b"".join(c if isinstance(c, bytes) else bytes(c) for c in chars)
        out.append(raw.decode("utf-8", "replace"))
    return out


def _hbehavior_from_mat5(path: Path) -> tuple[dict, dict]:
    from scipy.io import loadmat

    try:
        mat = loadmat(path, simplify_cells=True)
    except Exception as exc:  # scipy raises several types for corrupt files
        raise PoseFormatError(path, f"cannot read MATLAB file: {exc}") from exc
    tops = ["hBehavior"] + [k for k in mat if k != "hBehavior" and not k.startswith("__")]
    for top in tops:
        st = mat.get(top)
        if not isinstance(st, dict):
            continue
        behs, meta = {}, {}
        for key, val in st.items():
            if isinstance(val, dict) and ("Vector" in val or "Bouts" in val):
                parts = {}
                if "Vector" in val:
                    parts["Vector"] = np.asarray(val["Vector"], dtype=float).ravel()
                if "Bouts" in val:
                    b = np.asarray(val["Bouts"], dtype=float)
                    parts["Bouts"] = b.reshape(-1, 2) if b.size else np.zeros((0, 2))
                behs[key] = parts
            elif key in ("TotalFrames", "FrameRate") and np.size(val) == 1:
                meta[key] = float(np.asarray(val).ravel()[0])
        if behs:
            return behs, meta
    return {}, {}


__all__ = ["ALL_INDIVIDUALS", "BehaviorLabels", "read_labels"]
