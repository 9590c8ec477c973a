"""Reading back the behavior files that :mod:`dlc_lookagain.io.annotations` writes.

``_behaviors.csv``/``.h5`` and ``_bouts.csv`` are ours, but they sit in a user's folder: the
``.h5`` is checked for pickles before pandas reads it (:mod:`dlc_lookagain.io.hdf5_safety`), and
every table is checked for its columns and types, with errors that name the file.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from dlc_lookagain.errors import PoseFormatError
from dlc_lookagain.io.hdf5_safety import check_hdf5_pickles
from dlc_lookagain.io.prediction import (BEHAVIOR_COLUMNS, BOUT_COLUMNS, PROBABILITY_PREFIX, _DEFAULT_THRESHOLD,
                                         BehaviorPrediction)

logger = logging.getLogger(__name__)

#: Node attribute of the ``metadata`` table of a ``_behaviors.h5`` that holds the writer's JSON.
H5_META_ATTR = "dlc_lookagain_json"
# Metadata entries that hold paths: stored relative to the output folder, read back absolute.
_PATH_KEYS = ("source", "video_path")

__all__ = ["read_output_metadata", "read_behaviors", "read_bouts", "prediction_from_table"]


def _absolute_paths(meta: dict, h5_path: Path) -> dict:
    for key in _PATH_KEYS:
        value = meta.get(key)
        if isinstance(value, str) and value and not os.path.isabs(value):
            meta[key] = os.path.normpath(os.path.join(os.path.abspath(h5_path.parent), value))
    return meta


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
