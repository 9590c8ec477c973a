"""Behavior predictions: the in-memory arrays and the files written back beside the pose data.

Outputs for a pose file ``<stem>.<ext>`` (DeepLabCut ``.h5``/``.csv`` or SLEAP
``.slp``/``.analysis.h5``), all written beside it or into ``destfolder``:

``<stem>_behaviors.csv`` / ``<stem>_behaviors.h5``
    A tidy table, one row per frame and individual, columns ``frame``, ``time_s``,
    ``individual``, ``label``, ``looked``, ``motif`` and one ``p_<behavior>`` column
    per behavior. The behavior name is used verbatim after the ``p_`` prefix (a
    behavior ``"face groom"`` gives the column ``"p_face groom"``); names are checked
    instead of rewritten so that a column always maps back to exactly one behavior.
    The ``.h5`` (PyTables, fixed format) also holds the ``bouts`` table and a
    ``metadata`` table whose node attribute ``dlc_lookagain_json`` records behaviors,
    thresholds, source file, fps and the package version.
``<stem>_bouts.csv``
    One row per contiguous run of a behavior being present for one individual
    (``end_frame`` inclusive; runs of different behaviors may overlap).
``<name>.behaviors.slp`` (SLEAP ``.slp`` sources only)
    A copy of the user's labels with one ``sleap_io.PredictedEvent`` per bout. The
    user's own ``.slp`` is only ever read.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import logging
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from dlc_lookagain.errors import PoseFormatError, option_text
from dlc_lookagain.io.hdf5_safety import check_hdf5_pickles
from dlc_lookagain.io.labels import mask_runs
from dlc_lookagain.io.paths import atomic_path
from dlc_lookagain.io.record import PoseRecord

logger = logging.getLogger(__name__)

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
EVENT_SOURCE = "dlc_lookagain"
H5_META_ATTR = "dlc_lookagain_json"

# CSV precision. Probabilities keep 4 decimals (error <= 5e-5): a classifier's
# probabilities are not calibrated anywhere near that finely, 4 decimals keep the
# file about half the size and readable in a spreadsheet, and the .h5 keeps the full
# float32 values for anyone who needs them. Times keep 6 decimals (microseconds),
# far below one frame at any camera rate.
CSV_PROBABILITY_DECIMALS = 4
CSV_TIME_DECIMALS = 6

_DEFAULT_THRESHOLD = 0.5
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
# HDFStore.put(track_times=...) only exists in recent pandas (which warns that its
# default will change). It keeps write times out of the table datasets; PyTables still
# stamps some nodes, so only the CSV outputs are promised to be byte-identical.
_PUT_KWARGS = {"track_times": False} if "track_times" in inspect.signature(pd.HDFStore.put).parameters else {}


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


@functools.lru_cache(maxsize=8)
def _fixed_point_strings(decimals: int) -> np.ndarray:
    """``"0.0000"`` ... ``"1.0000"``: every fixed-point string of a value in [0, 1] (built once)."""
    scale = 10**decimals
    table = np.array([f"{k / scale:.{decimals}f}" for k in range(scale + 1)], dtype=object)
    table.flags.writeable = False
    return table


def _format_fixed(values, decimals: int) -> np.ndarray:
    """Fixed-point strings for a float column, empty where NaN (what the CSV shows)."""
    arr = np.asarray(values, dtype=np.float64)
    nan = np.isnan(arr)
    finite = arr[~nan]
    if decimals <= 4 and finite.size and finite.min() >= 0.0 and finite.max() <= 1.0:
        # Probabilities take at most 10**decimals + 1 values: format those once and look them up
        # (formatting every value one by one was a third of keypoint-only analyze time).
        scale = 10**decimals
        table = _fixed_point_strings(decimals)
        # "%.4f" rounds the float64 value itself; rint of the scaled value matches it but at exact
        # binary ties, which a probability never hits in practice.
        out = table[np.rint(np.where(nan, 0.0, arr) * scale).astype(np.int64)]
    else:
        out = np.char.mod(f"%.{decimals}f", arr).astype(object)
    out[nan] = ""
    return out


def _write_csv(df: pd.DataFrame, path: Path, time_columns: tuple[str, ...]) -> None:
    """Write a table as UTF-8 CSV with fixed decimals; the same table gives the same bytes."""
    out = df.copy()
    for col in time_columns:
        out[col] = _format_fixed(out[col], CSV_TIME_DECIMALS)
    for col in out.columns:
        if col not in time_columns and pd.api.types.is_float_dtype(out[col]):
            out[col] = _format_fixed(out[col], CSV_PROBABILITY_DECIMALS)
    out.to_csv(path, index=False, na_rep="", lineterminator="\n", encoding="utf-8")


#: Metadata entries holding paths: stored relative to the output's folder, so a copied or moved
#: project gives byte-identical outputs; readers get them back absolute.
_PATH_KEYS = ("source", "video_path")


def _relative_to(path, folder: Path) -> str:
    try:
        return Path(os.path.relpath(os.path.abspath(path), os.path.abspath(folder))).as_posix()
    except ValueError:  # another drive (Windows)
        return str(path)


def _absolute_paths(meta: dict, h5_path: Path) -> dict:
    for key in _PATH_KEYS:
        value = meta.get(key)
        if isinstance(value, str) and value and not os.path.isabs(value):
            meta[key] = os.path.normpath(os.path.join(os.path.abspath(h5_path.parent), value))
    return meta


def _metadata(record: PoseRecord, prediction: BehaviorPrediction, min_bout_frames: int,
              extra: dict | None = None, out_dir: Path | None = None) -> dict:
    from dlc_lookagain import __version__

    def where(path) -> str | None:
        if not path:
            return None
        return _relative_to(path, out_dir) if out_dir is not None else str(path)

    return {**(extra or {}),
        "behaviors": list(prediction.behaviors),
        "probability_columns": [probability_column(b) for b in prediction.behaviors],
        "thresholds": [float(t) for t in prediction.thresholds],
        "individuals": list(record.individuals),
        "n_frames": record.n_frames,
        "fps": float(record.fps) if record.fps else None,
        "source": where(record.source),
        "source_format": record.source_format,
        "video_path": where(record.video_path),
        "min_bout_frames": int(min_bout_frames),
        "version": __version__,
    }


def read_output_metadata(path) -> dict:
    """The writer's metadata of a ``_behaviors.h5`` (behaviors, thresholds, fps, source, inputs ...).

    Returns an empty dict when the file has no metadata (not written by us, or by an old
    version); raises :class:`PoseFormatError` when it is not a readable HDF5 file.
    """
    import h5py

    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            node = f.get("metadata")
            raw = None if node is None else node.attrs.get(H5_META_ATTR)
    except OSError as exc:
        raise PoseFormatError(path, f"cannot read HDF5 file: {exc}") from exc
    if raw is None:
        return {}
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8")
    if not isinstance(raw, str):
        # PyTables pickles non-string attributes; ours is always a JSON string.
        return {}
    try:
        meta = json.loads(raw)
    except ValueError:
        return {}
    return _absolute_paths(meta, path) if isinstance(meta, dict) else {}


def _interned(df: pd.DataFrame) -> pd.DataFrame:
    """String columns with one object per distinct value. pandas pickles them, and a pickle stores a
    repeated object once but equal copies each time: without this the bytes of the file depend on
    how the strings were made, and two runs on the same inputs wrote different files."""
    columns = [c for c in df.columns if df[c].dtype == object]
    if not columns:
        return df
    out = df.copy()
    for c in columns:
        out[c] = [sys.intern(v) if isinstance(v, str) else v for v in out[c].tolist()]
        out[c] = out[c].astype(object)
    return out


def _write_h5(path: Path, behaviors: pd.DataFrame, bouts: pd.DataFrame, meta: dict) -> None:
    meta_table = pd.DataFrame(
        {
            "behavior": np.array(meta["behaviors"], dtype=object),
            "column": np.array(meta["probability_columns"], dtype=object),
            "threshold": np.array(meta["thresholds"], dtype=np.float64),
        }
    )
    # zlib: pandas stores each string column of a fixed-format frame as one pickled
    # object in a 1 MB chunk, so an uncompressed file is megabytes of zeros; zlib
    # (unlike blosc) is built into every HDF5 reader. Level 1: 4 % larger than level 4 and
    # 0.06 s less per recording (the write was a tenth of keypoint-only analyze).
    with pd.HDFStore(path, mode="w", complevel=1, complib="zlib") as store:
        store.put("behaviors", _interned(behaviors), format="fixed", **_PUT_KWARGS)
        store.put("bouts", _interned(bouts), format="fixed", **_PUT_KWARGS)
        store.put("metadata", _interned(meta_table), format="fixed", **_PUT_KWARGS)
        # JSON rather than a pickled attribute: readable from h5py/MATLAB and safe to load.
        setattr(store.get_storer("metadata").attrs, H5_META_ATTR, json.dumps(meta, sort_keys=True))
    _clear_modification_times(path)


#: HDF5 "object modification time" message (version 1) in a version-1 object header: type 0x0012,
#: size 8, flags, 3 reserved bytes, then version 1, 3 reserved bytes and the seconds.
_MTIME_MESSAGE = re.compile(rb"\x12\x00\x08\x00[\x00\x01]\x00\x00\x00\x01\x00\x00\x00(....)", re.S)


def _clear_modification_times(path: Path) -> None:
    """Zero the creation/modification times HDF5 writes into every object header.

    pandas' fixed format passes no ``track_times`` to PyTables, so each group and array records the
    second it was written, and two runs on the same inputs gave different bytes. Version-1 headers
    (what PyTables writes) carry no checksum, so the four bytes can be zeroed in place; a file with
    version-2 headers (``OHDR``, checksummed) is left as it is.
    """
    data = bytearray(path.read_bytes())
    if b"OHDR" in data:
        return
    for match in _MTIME_MESSAGE.finditer(bytes(data)):
        data[match.start(1):match.end(1)] = b"\x00\x00\x00\x00"
    path.write_bytes(bytes(data))


def _is_slp(record: PoseRecord) -> bool:
    return record.source_format.startswith("sleap") and record.source.suffix.lower() == ".slp"


def output_paths(record: PoseRecord, destfolder=None, *, write_slp: bool = True) -> dict[str, Path]:
    """Where :func:`write_annotations` writes for ``record``.

    Parameters
    ----------
    record : PoseRecord
        Its ``source`` names the outputs.
    destfolder : path-like or None
        Output folder; default the pose file's folder.
    write_slp : bool
        Include the ``.behaviors.slp`` copy (only for SLEAP ``.slp`` sources).

    Returns
    -------
    dict of str to Path
        Keys ``behaviors_csv``, ``behaviors_h5``, ``bouts_csv`` and, for a ``.slp``
        source with ``write_slp``, ``slp``.
    """
    return output_paths_for(record.source, destfolder, write_slp=write_slp and _is_slp(record))


def output_paths_for(source, destfolder=None, *, write_slp: bool | None = None) -> dict[str, Path]:
    """:func:`output_paths` from the pose file's path alone (before the poses are read).

    ``write_slp=None`` includes the ``.behaviors.slp`` copy when ``source`` is a ``.slp``.
    """
    source = Path(source)
    folder = Path(destfolder) if destfolder is not None else source.parent
    stem = source.stem
    paths = {
        "behaviors_csv": folder / f"{stem}_behaviors.csv",
        "behaviors_h5": folder / f"{stem}_behaviors.h5",
        "bouts_csv": folder / f"{stem}_bouts.csv",
    }
    if write_slp is None:
        write_slp = source.suffix.lower() == ".slp"
    if write_slp:
        paths["slp"] = folder / f"{stem}.behaviors.slp"
    return paths


#: Optional outputs written by ``analyze`` beside the behavior files: key -> file-name suffix.
EXTRA_OUTPUTS = {
    "ethogram": "_ethogram.png",
    "time_budget": "_time_budget.png",
    "boris": "_behaviors_boris.tsv",
    "nwb": "_behaviors.nwb",
    "labeled_video": "_lookagain_labeled.mp4",  # not DLC's <pose stem>_labeled.mp4
}


def extra_output_paths(source, destfolder=None) -> dict[str, Path]:
    """Where figures, exports and the labeled video of a pose file go (see :data:`EXTRA_OUTPUTS`)."""
    source = Path(source)
    folder = Path(destfolder) if destfolder is not None else source.parent
    return {key: folder / f"{source.stem}{suffix}" for key, suffix in EXTRA_OUTPUTS.items()}


def _match_video(labels, record: PoseRecord, sio):
    """The video of ``labels`` that ``record`` was read from (by path, then by name, else the first)."""
    videos = list(labels.videos)
    if not videos:
        if record.video_path is None:
            raise PoseFormatError(
                record.source,
                "the .slp lists no video, so behavior events would have no video to refer to; "
                "attach the video to the record or pass write_slp=False",
            )
        video = sio.Video(filename=str(record.video_path), open_backend=False)
        labels.videos.append(video)
        return video
    if record.video_path is not None and len(videos) > 1:
        target = record.video_path.resolve()
        named = [v for v in videos if isinstance(v.filename, str)]
        for v in named:
            stored = Path(v.filename)
            cand = stored if stored.is_absolute() else record.source.parent / stored
            if cand.resolve() == target:
                return v
        for v in named:
            if Path(v.filename.replace("\\", "/")).name == record.video_path.name:
                return v
        logger.warning(
            "%s: none of its %d videos matches %s; attaching behavior events to the first one",
            record.source, len(videos), record.video_path,
        )
    return videos[0]


def _relink_relative_videos(labels, record: PoseRecord, out_dir: Path) -> None:
    """Make relative video paths absolute when the copy is written to another folder.

    SLEAP resolves a relative video path against the labels file's folder; a copy
    saved elsewhere would otherwise point at a video that is not there.
    """
    src_dir = record.source.parent.resolve()
    if out_dir.resolve() == src_dir:
        return
    for video in labels.videos:
        if not isinstance(video.filename, str) or Path(video.filename).is_absolute():
            continue
        cand = src_dir / video.filename
        if cand.is_file():
            logger.info("video path %s rewritten as %s for the copy in %s", video.filename, cand, out_dir)
            video.replace_filename(str(cand), open=False)


def _labels_with_events(
    record: PoseRecord, prediction: BehaviorPrediction, bouts: pd.DataFrame, out_dir: Path
):
    """Load the user's .slp (read-only) and append one PredictedEvent per bout."""
    import sleap_io as sio

    from dlc_lookagain import __version__

    if not hasattr(sio, "PredictedEvent"):
        raise PoseFormatError(
            record.source,
            f"sleap-io {getattr(sio, '__version__', '?')} has no PredictedEvent; upgrade sleap-io "
            "(0.9.5 is known to work) or pass write_slp=False",
        )
    # Eager load: sleap-io 0.9.5 writes an unreadable file when a lazily loaded
    # format-1.1 .slp is saved (instance rows keep the old width, header says 2.6).
    labels = sio.load_slp(str(record.source.resolve()), open_videos=False)
    video = _match_video(labels, record, sio)
    _relink_relative_videos(labels, record, out_dir)

    tracks: dict[str, object] = {}
    for track in labels.tracks:
        if track.name in tracks:
            logger.warning("%s: several tracks are named %r; events use the first", record.source, track.name)
            continue
        tracks[track.name] = track
    untracked = [i for i in record.individuals if i not in tracks]
    if untracked:
        logger.info(
            "%s: individuals %s are not track names of the file; their events have no subject "
            "(the name is kept in event metadata 'individual')", record.source, untracked,
        )

    stale = [ev for ev in labels.events if ev.source == EVENT_SOURCE]
    if stale:
        # Predictions from an earlier run in the copied file would mix with the new ones.
        logger.warning(
            "%s: dropping %d earlier %s events from the copy", record.source, len(stale), EVENT_SOURCE
        )
        labels.events[:] = [ev for ev in labels.events if ev.source != EVENT_SOURCE]

    # Catalog: reuse an event type of the same name if the user already has one, so
    # that predictions line up with their own annotations of that behavior.
    by_name = {et.name: et for et in labels.event_types}
    types = {}
    for beh, thr in zip(prediction.behaviors, prediction.thresholds):
        if beh not in by_name:
            meta = {"source": EVENT_SOURCE, "threshold": repr(float(thr))}
            by_name[beh] = sio.EventType(name=beh, metadata=meta)
            labels.event_types.append(by_name[beh])
        types[beh] = by_name[beh]

    ind_index = {name: i for i, name in enumerate(record.individuals)}
    beh_index = {name: c for c, name in enumerate(prediction.behaviors)}
    events = []
    for row in bouts.itertuples(index=False):
        i, c = ind_index[row.individual], beh_index[row.behavior]
        start, end = int(row.start_frame), int(row.end_frame)
        mean = float(row.mean_probability)
        events.append(
            sio.PredictedEvent(
                type=types[row.behavior],
                video=video,
                start_frame=start,
                end_frame=end,  # inclusive in sleap-io, as in our bouts
                subject=tracks.get(row.individual),
                score=None if np.isnan(mean) else mean,
                scores=prediction.probabilities[start : end + 1, i, c],
                source=EVENT_SOURCE,
                metadata={"individual": str(row.individual)},
            )
        )
    labels.events.extend(events)
    labels.provenance["dlc_lookagain.version"] = __version__
    return labels


def _save_slp(labels, path: Path) -> None:
    import sleap_io as sio

    kwargs = {"embed": False, "verbose": False}
    # Keep HDF5 groups this sleap-io does not know (written by a newer one) in the copy.
    if "preserve_unknown" in inspect.signature(sio.save_slp).parameters:
        kwargs["preserve_unknown"] = True
    sio.save_slp(labels, str(path), **kwargs)


def write_annotations(
    record: PoseRecord,
    prediction: BehaviorPrediction,
    *,
    destfolder=None,
    overwrite: bool = False,
    min_bout_frames: int = 1,
    write_slp: bool = True,
    extra_metadata: dict | None = None,
) -> dict[str, Path]:
    """Write behavior predictions beside the pose file (or into ``destfolder``).

    Parameters
    ----------
    record : PoseRecord
        The recording; ``record.source`` names the outputs.
    prediction : BehaviorPrediction
        Must cover exactly ``record``'s frames and individuals.
    destfolder : path-like or None
        Output folder; default the pose file's folder.
    overwrite : bool
        Replace existing outputs. When False and any output exists, nothing is
        written and :class:`FileExistsError` names the existing file(s).
    min_bout_frames : int
        Bouts shorter than this are left out of the bouts table and the .slp events
        (the per-frame table is not affected).
    write_slp : bool
        For a SLEAP ``.slp`` source, also write ``<name>.behaviors.slp``: a copy of
        the user's labels with one ``PredictedEvent`` per bout. The user's file is
        never written.
    extra_metadata : dict or None
        JSON-serialisable entries added to the .h5 metadata (``analyze`` records the
        fingerprint of its inputs there, to tell up-to-date outputs from stale ones).

    Returns
    -------
    dict of str to Path
        The written files, keys as in :func:`output_paths`.

    Raises
    ------
    FileExistsError
        An output exists and ``overwrite`` is False.
    PoseFormatError
        The prediction does not match the record, or the .slp cannot take events.

    Notes
    -----
    Every file is written to a temporary name beside its destination and renamed
    only after all files were written, so an error leaves no partial output and
    earlier outputs intact. Identical inputs give byte-identical CSV files.
    """
    prediction.validate_against(record)
    paths = output_paths(record, destfolder, write_slp=write_slp)
    protected = {record.source.resolve()}
    if record.video_path is not None:
        protected.add(record.video_path.resolve())
    for path in paths.values():
        if path.resolve() in protected:
            raise PoseFormatError(
                path, "output would overwrite the pose file or its video; choose another destfolder"
            )
    if not overwrite:
        existing = [str(p) for p in paths.values() if p.exists()]
        if existing:
            raise FileExistsError(
                f"behavior outputs exist (pass {option_text('overwrite', True)} to replace them): {', '.join(existing)}"
            )

    # Build everything (including loading the .slp) before the first byte is written,
    # so bad input fails without leaving anything behind.
    table = behaviors_table(record, prediction)
    bouts = bouts_table(record, prediction, min_bout_frames)
    meta = _metadata(record, prediction, min_bout_frames, extra_metadata, out_dir=paths["behaviors_h5"].parent)
    labels = _labels_with_events(record, prediction, bouts, paths["slp"].parent) if "slp" in paths else None

    with contextlib.ExitStack() as stack:
        tmp = {key: stack.enter_context(atomic_path(p, overwrite=overwrite)) for key, p in paths.items()}
        _write_h5(tmp["behaviors_h5"], table, bouts, meta)
        _write_csv(table, tmp["behaviors_csv"], ("time_s",))
        _write_csv(bouts, tmp["bouts_csv"], ("start_s", "end_s", "duration_s"))
        if labels is not None:
            _save_slp(labels, tmp["slp"])
        # Leaving the stack renames every temporary file onto its destination.
    logger.info(
        "%s: wrote %d bouts of %d behaviors to %s",
        record.source.name, len(bouts), prediction.n_behaviors, ", ".join(p.name for p in paths.values()),
    )
    return paths


# --------------------------------------------------------------------------- readers


def _read_csv(path: Path, string_columns: tuple[str, ...], int_columns: tuple[str, ...]) -> pd.DataFrame:
    """Read one of our CSVs: names stay strings, only empty cells are missing numbers."""
    try:
        header = pd.read_csv(path, nrows=0).columns
        # keep_default_na=False: an individual called "NA" or "None" stays a name.
        na = {c: [""] for c in header if c not in string_columns and c not in int_columns}
        return pd.read_csv(
            path,
            dtype={c: str for c in string_columns if c in header},
            keep_default_na=False,
            na_values=na,
            encoding="utf-8",
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        raise PoseFormatError(path, f"cannot parse as CSV: {exc}") from exc


def _read_h5(path: Path, key: str) -> tuple[pd.DataFrame, dict]:
    # Our own file, but it sits in a user's folder: check its pickles like any pose file's.
    check_hdf5_pickles(path)
    try:
        with pd.HDFStore(path, mode="r") as store:
            if f"/{key}" not in store.keys():
                raise PoseFormatError(
                    path, f"no '{key}' table (keys: {store.keys()}); not a dlc_lookagain output?"
                )
            df = store.get(key)
            meta = {}
            if "/metadata" in store.keys():
                raw = getattr(store.get_storer("metadata").attrs, H5_META_ATTR, None)
                meta = _absolute_paths(json.loads(raw), path) if raw else {}
    except PoseFormatError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise PoseFormatError(path, f"cannot read HDF5 table '{key}': {exc}") from exc
    return df, meta


def _coerce(
    df: pd.DataFrame, path: Path, ints: tuple[str, ...], floats: tuple[str, ...], strings: tuple[str, ...]
) -> pd.DataFrame:
    """Give every column its documented dtype or say which one is broken."""
    for col in ints:
        values = pd.to_numeric(df[col], errors="coerce")
        if values.isna().any() or not np.equal(np.mod(values.to_numpy(dtype=np.float64), 1), 0).all():
            raise PoseFormatError(path, f"column '{col}' must hold whole numbers")
        df[col] = values.astype(np.int64)
    for col in floats:
        values = pd.to_numeric(df[col], errors="coerce")
        if (values.isna() & df[col].notna()).any():
            raise PoseFormatError(path, f"column '{col}' must hold numbers")
        df[col] = values.astype(np.float32 if col.startswith(PROBABILITY_PREFIX) else np.float64)
    for col in strings:
        df[col] = df[col].astype(str)
    return df


def _read_table(path, key: str, required: tuple[str, ...], what: str) -> tuple[pd.DataFrame, Path]:
    path = Path(path)
    suffix = path.suffix.lower()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such {what} file")
    if suffix == ".csv":
        strings = ("individual", "label", "behavior")
        df = _read_csv(path, strings, ("frame", "looked", "motif", "start_frame", "end_frame", "n_frames"))
        meta = {}
    elif suffix in (".h5", ".hdf5"):
        df, meta = _read_h5(path, key)
    else:
        raise PoseFormatError(path, f"expected a .csv or .h5 {what} file, got '{path.suffix}'")
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise PoseFormatError(
            path, f"not a {what} table: missing column(s) {missing} (has {list(df.columns)})"
        )
    df.attrs.update(meta)
    df.attrs["path"] = str(path)
    return df, path


def read_behaviors(path) -> pd.DataFrame:
    """Read a ``_behaviors.csv`` or ``_behaviors.h5`` tidy table.

    Parameters
    ----------
    path : path-like
        The file written by :func:`write_annotations`.

    Returns
    -------
    pandas.DataFrame
        Columns ``frame`` (int64), ``time_s`` (float64), ``individual``, ``label``
        (str), ``looked`` (int8, 0/1), ``motif`` (int64) and ``p_<behavior>``
        (float32). ``df.attrs`` holds ``path`` and, for the .h5, the writer's
        metadata (``behaviors``, ``thresholds``, ``fps``, ``source``, ``version`` ...).

    Raises
    ------
    PoseFormatError
        The file is not such a table (missing columns, no probability column,
        non-numeric values, looked not 0/1).
    """
    df, path = _read_table(path, "behaviors", BEHAVIOR_COLUMNS, "behaviors")
    pcols = [c for c in df.columns if c.startswith(PROBABILITY_PREFIX)]
    if not pcols:
        raise PoseFormatError(
            path, f"no probability columns ('{PROBABILITY_PREFIX}<behavior>') in {list(df.columns)}"
        )
    df = _coerce(df, path, ("frame", "looked", "motif"), ("time_s", *pcols), ("individual", "label"))
    if not df["looked"].isin((0, 1)).all():
        raise PoseFormatError(path, "column 'looked' must be 0 or 1")
    df["looked"] = df["looked"].astype(np.int8)
    return df


def read_bouts(path) -> pd.DataFrame:
    """Read a ``_bouts.csv`` (or the ``bouts`` table of a ``_behaviors.h5``).

    Parameters
    ----------
    path : path-like
        The file written by :func:`write_annotations`.

    Returns
    -------
    pandas.DataFrame
        Columns as :data:`BOUT_COLUMNS`; ``end_frame`` is inclusive.

    Raises
    ------
    PoseFormatError
        Missing columns, non-numeric frames, or inconsistent frame counts.
    """
    df, path = _read_table(path, "bouts", BOUT_COLUMNS, "bouts")
    df = _coerce(
        df, path,
        ("start_frame", "end_frame", "n_frames"),
        ("start_s", "end_s", "duration_s", "mean_probability"),
        ("individual", "behavior"),
    )
    bad = (df["end_frame"] < df["start_frame"]) | (df["n_frames"] != df["end_frame"] - df["start_frame"] + 1)
    if bad.any():
        raise PoseFormatError(
            path, f"{int(bad.sum())} bout(s) with end_frame < start_frame or n_frames != end - start + 1 "
            f"(first at row {int(np.flatnonzero(bad.to_numpy())[0])})",
        )
    return df


def prediction_from_table(
    df: pd.DataFrame,
    individuals: list[str] | None = None,
    *,
    thresholds=None,
    bouts: pd.DataFrame | None = None,
) -> BehaviorPrediction:
    """Rebuild a :class:`BehaviorPrediction` from a tidy behaviors table.

    Parameters
    ----------
    df : pandas.DataFrame
        As returned by :func:`read_behaviors`; must hold every frame ``0..T-1``
        exactly once for every individual.
    individuals : list of str or None
        Individual order of the result; default the order of first appearance
        (which is the pose record's order for tables we wrote).
    thresholds : array-like or float or None
        Decision thresholds. Default: those stored in ``df.attrs`` (the .h5
        metadata) when they name the same behaviors, else 0.5.
    bouts : pandas.DataFrame or None
        A bouts table (:func:`read_bouts`). When given, ``present`` is rebuilt from
        the bouts, which reproduces the writer's flags exactly (except bouts
        dropped by ``min_bout_frames``). Otherwise ``present`` is recomputed as
        ``probabilities >= thresholds``; from a CSV, a probability within 5e-5 of
        its threshold can flip because the CSV keeps 4 decimals.

    Returns
    -------
    BehaviorPrediction
        ``looked`` is returned per individual, ``(T, I)``.

    Raises
    ------
    PoseFormatError
        Missing columns, an incomplete or duplicated frame grid, unknown
        individuals or behaviors.
    """
    where = df.attrs.get("path")
    missing = [c for c in BEHAVIOR_COLUMNS if c not in df.columns]
    pcols = [c for c in df.columns if str(c).startswith(PROBABILITY_PREFIX)]
    if missing or not pcols:
        raise PoseFormatError(where, f"behaviors table lacks column(s) {missing or ['p_<behavior>']}")
    behaviors = [c[len(PROBABILITY_PREFIX):] for c in pcols]

    names_in_table = list(pd.unique(df["individual"].astype(str)))
    if individuals is None:
        individuals = names_in_table
    individuals = [str(i) for i in individuals]
    extra = sorted(set(names_in_table) - set(individuals))
    absent = sorted(set(individuals) - set(names_in_table))
    if extra or absent:
        raise PoseFormatError(
            where, f"individuals differ from the table: not in the table {absent}, not requested {extra}"
        )

    frame = df["frame"].to_numpy(dtype=np.int64)
    ind = pd.Categorical(df["individual"].astype(str), categories=individuals).codes.astype(np.int64)
    n_ind = len(individuals)
    n_frames = int(frame.max()) + 1 if len(frame) else 0
    flat = frame * n_ind + ind
    if len(frame) and frame.min() < 0:
        raise PoseFormatError(where, f"negative frame index {int(frame.min())}")
    if len(df) != n_frames * n_ind or np.unique(flat).size != len(df):
        raise PoseFormatError(
            where,
            f"table has {len(df)} rows but frames 0..{n_frames - 1} x {n_ind} individuals need "
            f"{n_frames * n_ind}, each (frame, individual) once",
        )

    probs = np.empty((n_frames, n_ind, len(behaviors)), dtype=np.float32)
    probs[frame, ind] = df[pcols].to_numpy(dtype=np.float32)
    looked = np.zeros((n_frames, n_ind), dtype=bool)
    looked[frame, ind] = df["looked"].to_numpy() != 0
    motif = np.empty((n_frames, n_ind), dtype=np.int64)
    motif[frame, ind] = df["motif"].to_numpy(dtype=np.int64)

    if thresholds is None:
        if df.attrs.get("behaviors") == behaviors and df.attrs.get("thresholds") is not None:
            thresholds = np.asarray(df.attrs["thresholds"], dtype=np.float64)
        else:
            logger.info(
                "%s: decision thresholds not stored with the table; using %s", where, _DEFAULT_THRESHOLD
            )
            thresholds = _DEFAULT_THRESHOLD

    present = None
    if bouts is not None:
        present = _present_from_bouts(bouts, individuals, behaviors, n_frames, where)
    pred = BehaviorPrediction(
        behaviors=behaviors,
        probabilities=probs,
        present=present,
        thresholds=thresholds,
        looked=looked,
        motif=motif,
    )

    # The label column is redundant with present + probabilities; a disagreement
    # means the flags were not rebuilt as written (different thresholds, rounding).
    written = np.empty((n_frames, n_ind), dtype=object)
    written[frame, ind] = df["label"].astype(str).to_numpy(dtype=object)
    n_diff = int((written != pred.labels()).sum())
    if n_diff and bouts is not None:
        # Expected: the bouts table leaves out bouts shorter than the writer's min_bout_frames.
        logger.debug("%s: %d row(s) lie in bouts shorter than the bouts table's minimum", where, n_diff)
    elif n_diff:
        logger.warning(
            "%s: %d row(s) have a label that disagrees with the rebuilt present flags; pass the bouts "
            "table (bouts=) or the writer's thresholds for exact flags", where, n_diff,
        )
    return pred


def _present_from_bouts(bouts: pd.DataFrame, individuals, behaviors, n_frames: int, where) -> np.ndarray:
    missing = [c for c in ("individual", "behavior", "start_frame", "end_frame") if c not in bouts.columns]
    if missing:
        raise PoseFormatError(bouts.attrs.get("path", where), f"bouts table lacks column(s) {missing}")
    present = np.zeros((n_frames, len(individuals), len(behaviors)), dtype=bool)
    ind_index = {name: i for i, name in enumerate(individuals)}
    beh_index = {name: c for c, name in enumerate(behaviors)}
    for row in bouts.itertuples(index=False):
        i = ind_index.get(str(row.individual))
        c = beh_index.get(str(row.behavior))
        if i is None or c is None:
            raise PoseFormatError(
                bouts.attrs.get("path", where),
                f"bout of behavior {row.behavior!r} for individual {row.individual!r} does not match the "
                f"table's behaviors {behaviors} / individuals {individuals}",
            )
        start, end = int(row.start_frame), int(row.end_frame)
        if not 0 <= start <= end < n_frames:
            raise PoseFormatError(
                bouts.attrs.get("path", where), f"bout frames {start}..{end} outside 0..{n_frames - 1}"
            )
        present[start : end + 1, i, c] = True
    return present
