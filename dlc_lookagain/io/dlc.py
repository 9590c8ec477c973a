"""Read DeepLabCut pose tables (analyzed-video output and manual labels).

DeepLabCut writes one table per video: a pandas DataFrame whose columns are a
MultiIndex ``scorer / [individuals] / bodyparts / coords`` and whose rows are
video frames (analyzed output) or labeled image paths (``CollectedData_*``).
The same table is saved as HDF5 (DLC's primary format) and optionally as CSV.
:func:`read_dlc` turns any of them into a :class:`~dlc_lookagain.io.record.PoseRecord`;
:func:`parse_dlc_output_name` and :func:`choose_dlc_output` understand DLC's
output file names so that the right file can be picked when several models
analyzed the same video.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from dlc_lookagain.errors import PoseFormatError
from dlc_lookagain.io.dlc_meta import _read_meta_fps
from dlc_lookagain.io.dlc_names import (  # noqa: F401  (re-exported: the public names of this module)
    H5_SUFFIXES, TRACK_METHOD_PREFERENCE, DLCOutputName, choose_dlc_output, parse_dlc_output_name)
from dlc_lookagain.io.hdf5_safety import check_hdf5_pickles
from dlc_lookagain.io.record import PoseRecord

logger = logging.getLogger(__name__)

__all__ = [
    "DLCOutputName",
    "TRACK_METHOD_PREFERENCE",
    "choose_dlc_output",
    "parse_dlc_output_name",
    "read_dlc",
]

_LEVEL_NAMES = ("scorer", "individuals", "bodyparts", "coords")
# Preferred HDF5 keys when a file holds several DataFrames: DLC's default key,
# then the stitched-tracklet key, then the key of older test data.
_PREFERRED_H5_KEYS = ("df_with_missing", "tracks", "df")
SINGLE_ANIMAL_NAME = "individual0"
UNIQUE_BODYPARTS_INDIVIDUAL = "single"
# Words that name a body side, not an animal: "Left_ear"/"Right_ear" must stay one animal.
_SIDE_WORDS = frozenset(
    {"left", "right", "l", "r", "front", "rear", "back", "hind", "fore", "upper", "lower",
     "top", "bottom", "inner", "outer", "mid", "middle", "center", "centre"}
)

# ---------------------------------------------------------------------------
# Reading tables
# ---------------------------------------------------------------------------


def read_dlc(path: str | Path) -> PoseRecord:
    """Read one DeepLabCut pose table into a :class:`PoseRecord`.

    Handles analyzed-video output (single-animal and maDLC, ``.h5`` or ``.csv``) and
    manual labels (``CollectedData_*.csv/.h5``). The scorer level is never used to find
    columns (pandas may have mangled it to ``name.1``, ``name.2``...), only bodyparts,
    coords and, when present, individuals.

    Parameters
    ----------
    path : str or Path
        The ``.h5`` or ``.csv`` file.

    Returns
    -------
    PoseRecord
        ``source_format`` is ``"dlc-h5"`` or ``"dlc-csv"``. Integer row indices are frame
        numbers on a dense grid ``0..max`` (rows absent from the file are NaN); string
        or tuple indices (labels) become ``frame_names``. ``fps`` comes from DLC's
        ``_meta.pickle`` beside the file when there is one, else None. ``metadata``
        holds what the file name says (shuffle, snapshot, track_method, filtered, ...),
        meta-pickle ``nframes``/``frame_dimensions`` (height, width), and
        ``individuals_from_prefix`` when old-style ``B_Nose``/``W_Nose`` columns were
        split into animals.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    PoseFormatError
        The file cannot be read as a DLC table; the message names the file and the problem.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: pose file not found")
    suffix = path.suffix.lower()
    if suffix in H5_SUFFIXES:
        table = _read_h5_table(path)
        source_format = "dlc-h5"
    elif suffix == ".csv":
        table = _read_csv_table(path)
        source_format = "dlc-csv"
    else:
        raise PoseFormatError(
            path, f"not a DeepLabCut table: expected a .h5 or .csv file, got {path.suffix!r}"
        )

    layout = _column_layout(path, table.columns, table.level_names)
    keypoints, confidence, dropped = _fill_arrays(path, table, layout)
    frame_names, keypoints, confidence, grid_info = _row_grid(path, table, keypoints, confidence)

    metadata: dict = dict(table.metadata)
    metadata.update(grid_info)
    if UNIQUE_BODYPARTS_INDIVIDUAL in layout.individuals and len(layout.individuals) > 1:
        # maDLC unique bodyparts (arena corners, a feeder...): landmarks, not an animal
        # (:func:`dlc_lookagain.io.record.split_landmarks`).
        single = layout.individuals.index(UNIQUE_BODYPARTS_INDIVIDUAL)
        owners: dict[int, set[int]] = {}
        for _, i, b in layout.x_columns:
            owners.setdefault(int(b), set()).add(int(i))
        metadata["unique_bodyparts"] = [layout.bodyparts[b] for b, who in sorted(owners.items()) if who == {single}]
    if layout.split_from_prefix:
        metadata["individuals_from_prefix"] = True
    if dropped:
        metadata["points_without_likelihood"] = dropped
    if len(layout.scorers) > 1:
        metadata["scorers"] = list(layout.scorers)
    name_info = parse_dlc_output_name(path)
    if name_info is not None:
        for key, value in dataclasses.asdict(name_info).items():
            if key not in ("scorer", "suffix"):
                metadata[key] = value
        metadata["engine"] = name_info.engine
        if layout.scorers and name_info.scorer != layout.scorers[0]:
            logger.debug("%s: scorer in the name (%s) differs from the table (%s)",
                         path.name, name_info.scorer, layout.scorers[0])
    fps = None
    if frame_names is None:
        fps = _read_meta_fps(path, name_info, metadata, n_rows=keypoints.shape[0])

    record = PoseRecord(
        keypoints=keypoints,
        confidence=confidence,
        individuals=layout.individuals,
        bodyparts=layout.bodyparts,
        fps=fps,
        source=path,
        scorer=layout.scorers[0] if layout.scorers else None,
        source_format=source_format,
        frame_names=frame_names,
        metadata=metadata,
    )
    logger.debug("Read %r", record)
    return record


@dataclass
class _Table:
    """A DLC table before interpretation: header tuples, numeric values and row index."""

    columns: list[tuple[str, ...]]
    level_names: list[str | None]
    values: np.ndarray  # float64 (n_rows, n_columns)
    index: list  # row labels: ints, strings or tuples
    index_is_int: bool
    metadata: dict


@dataclass
class _Layout:
    """Where each table column goes in the record's arrays."""

    individuals: list[str]
    bodyparts: list[str]
    scorers: list[str]
    split_from_prefix: bool
    # One entry per used column: (column position, individual idx, bodypart idx).
    x_columns: np.ndarray
    y_columns: np.ndarray
    likelihood_columns: np.ndarray  # (column, ind, bp) rows; may be empty


def _read_h5_table(path: Path) -> _Table:
    """Load the single DataFrame of a DLC HDF5 file (after checking it holds no code-running pickle)."""
    check_hdf5_pickles(path)
    try:
        store = pd.HDFStore(path, mode="r")
    except Exception as exc:  # PyTables raises several unrelated types for damaged files
        raise PoseFormatError(
            path, f"cannot be opened as HDF5 (truncated or corrupt file?): {type(exc).__name__}: {exc}"
        ) from exc
    try:
        frame_keys = []
        for key in store.keys():
            storer = store.get_storer(key)
            if getattr(storer, "pandas_type", None) in ("frame", "frame_table"):
                frame_keys.append(key.lstrip("/"))
        if not frame_keys:
            raise PoseFormatError(path, f"contains no pandas DataFrame{_describe_non_pandas_h5(path)}")
        if len(frame_keys) == 1:
            key = frame_keys[0]
        else:
            preferred = [k for k in _PREFERRED_H5_KEYS if k in frame_keys]
            if not preferred:
                raise PoseFormatError(
                    path,
                    f"holds several DataFrames ({', '.join(frame_keys)}) and none of the DLC keys "
                    f"{', '.join(_PREFERRED_H5_KEYS)}; cannot tell which is the pose table",
                )
            key = preferred[0]
            logger.info("%s: several DataFrames (%s); using key %r", path.name, ", ".join(frame_keys), key)
        frame = store.select(key)
    except PoseFormatError:
        raise
    except Exception as exc:
        raise PoseFormatError(
            path, f"HDF5 table cannot be read (corrupt file?): {type(exc).__name__}: {exc}"
        ) from exc
    finally:
        store.close()

    if not isinstance(frame.columns, pd.MultiIndex):
        raise PoseFormatError(
            path, f"table under key {key!r} does not have DLC's scorer/bodyparts/coords column levels"
        )
    columns = [tuple(str(v) for v in col) for col in frame.columns]
    level_names = [str(n) if n is not None else None for n in frame.columns.names]
    values = _numeric_matrix(path, frame, columns, first_data_line=None)
    index = frame.index
    if isinstance(index, pd.MultiIndex):
        labels = [tuple(index[i]) for i in range(len(index))]
        is_int = False
    else:
        labels, is_int = _index_labels(path, index.to_numpy())
    return _Table(columns, level_names, values, labels, is_int, {"h5_key": key})


def _describe_non_pandas_h5(path: Path) -> str:
    """Short hint about what a non-pandas HDF5 file holds (e.g. a SLEAP analysis file)."""
    try:
        import h5py

        with h5py.File(path, "r") as h5:
            names = sorted(h5.keys())
    except Exception:  # only a hint for the message; the main error is raised anyway
        return ""
    hint = f" (top-level HDF5 names: {', '.join(names[:12]) or 'none'})"
    if {"tracks", "node_names"} <= set(names):
        hint += "; this looks like a SLEAP analysis file, not DeepLabCut output"
    return hint


def _read_csv_table(path: Path) -> _Table:
    """Parse a DLC CSV: detect header rows and index columns, then read the numbers with pandas."""
    header_rows: list[list[str]] = []
    lines_before_data = 0  # header rows plus any blank lines before them, for pandas' skiprows
    saw_content = False
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            for row in csv.reader(handle):
                if not any(cell.strip() for cell in row):
                    if header_rows:
                        break
                    lines_before_data += 1
                    continue
                saw_content = True
                first = row[0].strip().lower()
                if first in _LEVEL_NAMES and first not in (r[0].strip().lower() for r in header_rows):
                    header_rows.append(row)
                    lines_before_data += 1
                    if first == "coords":
                        break
                    continue
                break
    except UnicodeDecodeError as exc:
        raise PoseFormatError(path, f"is not a UTF-8 text CSV: {exc}") from exc
    except csv.Error as exc:
        raise PoseFormatError(path, f"malformed CSV header: {exc}") from exc

    if not saw_content:
        raise PoseFormatError(path, "file is empty")
    if not header_rows:
        raise PoseFormatError(
            path,
            "not a DeepLabCut table: the first header cell should be 'scorer' "
            "(header rows scorer/[individuals]/bodyparts/coords)",
        )
    level_names = [r[0].strip().lower() for r in header_rows]
    if level_names[-1] != "coords" or "bodyparts" not in level_names:
        raise PoseFormatError(
            path,
            f"incomplete DeepLabCut header: found rows {level_names}, need at least 'bodyparts' and 'coords'",
        )
    coords_row = header_rows[-1]
    # Index columns are the cells before the first coordinate name: 1 (frame number or
    # image path) or 3 (labeled-data, video, image) for newer CollectedData files.
    n_index = next((i for i, cell in enumerate(coords_row) if i > 0 and cell.strip()), len(coords_row))
    n_data = len(coords_row) - n_index
    if n_data <= 0:
        raise PoseFormatError(path, "no bodyparts: the header has no coordinate columns")
    padded = [r + [""] * (len(coords_row) - len(r)) for r in header_rows]
    columns = [tuple(r[n_index + j].strip() for r in padded) for j in range(n_data)]

    try:
        frame = pd.read_csv(
            path,
            header=None,
            skiprows=lines_before_data,
            encoding="utf-8-sig",
            low_memory=False,
            # Image-path parts must stay text ("0001" is not the number 1).
            dtype={i: str for i in range(n_index)} if n_index > 1 else None,
        )
    except pd.errors.EmptyDataError:
        raise PoseFormatError(path, "has a DeepLabCut header but no data rows") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise PoseFormatError(path, f"CSV data cannot be parsed: {exc}") from exc
    if len(frame) == 0:
        raise PoseFormatError(path, "has a DeepLabCut header but no data rows")
    if frame.shape[1] != n_index + n_data:
        raise PoseFormatError(
            path,
            f"data rows have {frame.shape[1]} cells but the header describes {n_index + n_data} "
            f"({n_index} index + {n_data} coordinate columns)",
        )
    _warn_if_cut_short(path, n_index + n_data, lines_before_data + len(frame))
    data = frame.iloc[:, n_index:]
    values = _numeric_matrix(path, data, columns, first_data_line=lines_before_data + 1)
    if n_index == 1:
        labels, is_int = _index_labels(path, frame.iloc[:, 0].to_numpy())
    else:
        parts = frame.iloc[:, :n_index].astype(object).to_numpy()
        labels = [tuple("" if _is_missing(v) else str(v) for v in row) for row in parts]
        is_int = False
    meta = {"csv_header_rows": len(header_rows), "csv_index_columns": n_index}
    return _Table(columns, level_names, values, labels, is_int, meta)


def _warn_if_cut_short(path: Path, n_cells: int, last_line: int) -> None:
    """Warn when the file ends inside a row (an incomplete copy or an interrupted write): pandas
    would read the missing cells as NaN without a word."""
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        fh.seek(max(0, fh.tell() - (1 << 16)))
        tail = fh.read()
    last = tail.rstrip(b"\r\n").rsplit(b"\n", 1)[-1].decode("utf-8", "replace")
    cells = next(csv.reader([last]), [])
    if len(cells) < n_cells:
        logger.warning("%s: the file ends inside a row (line %d has %d of %d cells): it looks cut short "
                       "(an incomplete copy?); the rows before it are used and the missing values are NaN",
                       path, last_line, len(cells), n_cells)


def _is_missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def _index_labels(path: Path, raw: np.ndarray) -> tuple[list, bool]:
    """Row labels and whether they are frame numbers (all integral numbers)."""
    if raw.dtype.kind in "iu":
        return raw.astype(np.int64).tolist(), True
    if raw.dtype.kind == "f":
        if np.isnan(raw).any():
            bad = int(np.flatnonzero(np.isnan(raw))[0])
            raise PoseFormatError(path, f"row index (frame number) is empty in data row {bad}")
        if np.all(raw == np.round(raw)):
            return raw.astype(np.int64).tolist(), True
        raise PoseFormatError(path, "row index holds non-integer frame numbers")
    labels = []
    for i, value in enumerate(raw):
        if _is_missing(value):
            raise PoseFormatError(path, f"row index (frame number or image path) is empty in data row {i}")
        labels.append(str(value))
    return labels, False


def _numeric_matrix(
    path: Path, frame: pd.DataFrame, columns: Sequence[tuple[str, ...]], first_data_line: int | None
) -> np.ndarray:
    """All table values as float64, or PoseFormatError naming the first non-numeric cell."""
    for position in range(frame.shape[1]):
        series = frame.iloc[:, position]
        if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
            continue
        coerced = pd.to_numeric(series, errors="coerce")
        bad = coerced.isna().to_numpy() & series.notna().to_numpy()
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            if first_data_line is not None:
                where = f"line {first_data_line + row}"
            else:
                where = f"row {frame.index[row]!r}"
            raise PoseFormatError(
                path,
                f"non-numeric coordinate value {series.iloc[row]!r} in column "
                f"{_column_label(columns[position])} at {where}",
            )
        if pd.api.types.is_bool_dtype(series.dtype):
            raise PoseFormatError(
                path, f"column {_column_label(columns[position])} holds booleans, not coordinates"
            )
    try:
        return frame.to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError) as exc:
        raise PoseFormatError(path, f"values cannot be converted to numbers: {exc}") from exc


def _column_label(column: Sequence[str]) -> str:
    """Human-readable column name without the (possibly mangled) scorer."""
    return "/".join(column[1:]) if len(column) > 1 else "/".join(column)


def _strip_mangle_suffix(scorers: list[str]) -> list[str]:
    """Undo pandas' duplicate-header mangling (``name.1``, ``name.2``) of the scorer row."""
    unique = list(dict.fromkeys(scorers))
    if len(unique) <= 1:
        return unique
    return list(dict.fromkeys(re.sub(r"\.[0-9]+$", "", s) for s in unique))


def _column_layout(path: Path, columns: list[tuple[str, ...]], level_names: list[str | None]) -> _Layout:
    """Map table columns to (individual, bodypart, coordinate)."""
    if not columns:
        raise PoseFormatError(path, "no bodyparts: the table has no coordinate columns")
    n_levels = len(columns[0])
    names = [n.strip().lower() if n else None for n in level_names]
    if "bodyparts" not in names or "coords" not in names:
        # Files written without level names: DLC's layouts differ only by the individuals level.
        defaults = {3: ["scorer", "bodyparts", "coords"], 4: list(_LEVEL_NAMES)}
        if n_levels not in defaults:
            raise PoseFormatError(
                path,
                f"columns have {n_levels} levels {level_names}; "
                "expected scorer/[individuals]/bodyparts/coords",
            )
        names = defaults[n_levels]
    bp_level, coord_level = names.index("bodyparts"), names.index("coords")
    ind_level = names.index("individuals") if "individuals" in names else None
    scorer_level = names.index("scorer") if "scorer" in names else None

    scorers = _strip_mangle_suffix([c[scorer_level] for c in columns]) if scorer_level is not None else []
    bodypart_of = [c[bp_level] for c in columns]
    coord_of = [c[coord_level].strip().lower() for c in columns]
    if any(not bp for bp in bodypart_of):
        bad = next(i for i, bp in enumerate(bodypart_of) if not bp)
        raise PoseFormatError(path, f"column {bad} has an empty bodypart name")

    split_from_prefix = False
    if ind_level is not None:
        individual_of = [c[ind_level] for c in columns]
    else:
        split = _split_prefixed_bodyparts(list(dict.fromkeys(bodypart_of)))
        if split is None:
            individual_of = [SINGLE_ANIMAL_NAME] * len(columns)
        else:
            split_from_prefix = True
            individual_of = [split[bp][0] for bp in bodypart_of]
            bodypart_of = [split[bp][1] for bp in bodypart_of]
            logger.info(
                "%s: single-animal layout with prefixed bodyparts; split into individuals %s",
                path.name,
                list(dict.fromkeys(individual_of)),
            )

    individuals = list(dict.fromkeys(individual_of))
    # Union of bodyparts: multi-animal parts first, then those only the unique "single" animal has.
    multi_parts = [bp for bp, ind in zip(bodypart_of, individual_of) if ind != UNIQUE_BODYPARTS_INDIVIDUAL]
    unique_parts = [bp for bp, ind in zip(bodypart_of, individual_of) if ind == UNIQUE_BODYPARTS_INDIVIDUAL]
    bodyparts = list(dict.fromkeys(multi_parts + unique_parts))
    ind_index = {name: i for i, name in enumerate(individuals)}
    bp_index = {name: i for i, name in enumerate(bodyparts)}

    slots: dict[str, dict[tuple[int, int], int]] = {"x": {}, "y": {}, "likelihood": {}}
    ignored: list[str] = []
    for position, (ind, bp, coord) in enumerate(zip(individual_of, bodypart_of, coord_of)):
        if coord not in slots:
            ignored.append(_column_label(columns[position]))
            continue
        key = (ind_index[ind], bp_index[bp])
        if key in slots[coord]:
            raise PoseFormatError(
                path, f"duplicate column for individual {ind!r}, bodypart {bp!r}, coordinate {coord!r}"
            )
        slots[coord][key] = position
    if ignored:
        logger.warning("%s: ignoring columns that are not x/y/likelihood: %s",
                       path.name, ", ".join(ignored[:10]))

    points = set(slots["x"]) | set(slots["y"]) | set(slots["likelihood"])
    if not points:
        raise PoseFormatError(path, "no bodyparts: no x/y coordinate columns found")
    for axis in ("x", "y"):
        lacking = sorted(points - set(slots[axis]))
        if lacking:
            i, b = lacking[0]
            who = "" if individuals == [SINGLE_ANIMAL_NAME] else f"individual {individuals[i]!r}, "
            raise PoseFormatError(path, f"missing {axis!r} column for {who}bodypart {bodyparts[b]!r}")

    def as_array(mapping: dict[tuple[int, int], int]) -> np.ndarray:
        rows = [(col, i, b) for (i, b), col in sorted(mapping.items())]
        return np.asarray(rows, dtype=np.int64).reshape(-1, 3)

    return _Layout(
        individuals=individuals,
        bodyparts=bodyparts,
        scorers=scorers,
        split_from_prefix=split_from_prefix,
        x_columns=as_array(slots["x"]),
        y_columns=as_array(slots["y"]),
        likelihood_columns=as_array(slots["likelihood"]),
    )


def _split_prefixed_bodyparts(bodyparts: list[str]) -> dict[str, tuple[str, str]] | None:
    """Split old-style two-animal names (``B_Nose``, ``W_Nose``) into (animal, bodypart).

    Returns a mapping name -> (prefix, suffix) only when at least two prefixes (text before
    the first ``_``) each carry exactly the same set of suffixes and every bodypart has such
    a prefix; body-side prefixes (``Left_``, ``Right_``...) never count as animals.
    """
    groups: dict[str, list[str]] = {}
    mapping: dict[str, tuple[str, str]] = {}
    for name in bodyparts:
        prefix, sep, rest = name.partition("_")
        if not sep or not prefix or not rest:
            return None
        groups.setdefault(prefix, []).append(rest)
        mapping[name] = (prefix, rest)
    if len(groups) < 2 or any(p.lower() in _SIDE_WORDS for p in groups):
        return None
    reference = set(next(iter(groups.values())))
    if any(set(s) != reference or len(s) != len(set(s)) for s in groups.values()):
        return None
    return mapping


def _fill_arrays(path: Path, table: _Table, layout: _Layout) -> tuple[np.ndarray, np.ndarray, int]:
    """Scatter the value matrix into (rows, individuals, bodyparts, 2) and confidence arrays.

    Also returns how many points were dropped for lacking a likelihood.
    """
    dropped = 0
    n_rows = table.values.shape[0]
    shape = (n_rows, len(layout.individuals), len(layout.bodyparts))
    keypoints = np.full(shape + (2,), np.nan, dtype=np.float32)
    confidence = np.full(shape, np.nan, dtype=np.float32)
    for axis, cols in ((0, layout.x_columns), (1, layout.y_columns)):
        keypoints[:, cols[:, 1], cols[:, 2], axis] = table.values[:, cols[:, 0]]
    present = ~np.isnan(keypoints).any(axis=-1)
    lik = layout.likelihood_columns
    if len(lik):
        has_likelihood = np.zeros(shape[1:], dtype=bool)
        has_likelihood[lik[:, 1], lik[:, 2]] = True
        confidence[:, lik[:, 1], lik[:, 2]] = table.values[:, lik[:, 0]]
        # Points without a likelihood column (rare mixed tables) count as certain, like labels.
        confidence[:, ~has_likelihood] = 1.0
        no_score = present & np.isnan(confidence)
        if no_score.any():
            # DLC's filterpredictions fills x/y across frames where nothing was detected but
            # leaves the likelihood empty; such positions are guesses, so they count as missing.
            logger.info(
                "%s: %d points have coordinates but no likelihood (interpolated, not detected); "
                "treating them as missing",
                path.name, int(no_score.sum()),
            )
            keypoints[no_score] = np.nan
            dropped = int(no_score.sum())
    else:
        confidence[present] = 1.0
    return keypoints, confidence, dropped


def _row_grid(
    path: Path, table: _Table, keypoints: np.ndarray, confidence: np.ndarray
) -> tuple[list[str] | None, np.ndarray, np.ndarray, dict]:
    """Frame names for label tables, or a dense 0..max frame grid for analyzed output."""
    labels = table.index
    if not labels:
        raise PoseFormatError(path, "has no data rows")
    if not table.index_is_int:
        names = [
            "/".join(part for part in label if part) if isinstance(label, tuple) else str(label)
            for label in labels
        ]
        return names, keypoints, confidence, {}
    frames = np.asarray(labels, dtype=np.int64)
    if frames.min() < 0:
        raise PoseFormatError(path, f"negative frame number {int(frames.min())} in the row index")
    if len(np.unique(frames)) != len(frames):
        values, counts = np.unique(frames, return_counts=True)
        raise PoseFormatError(
            path, f"frame {int(values[counts > 1][0])} appears more than once in the row index"
        )
    n_frames = int(frames.max()) + 1
    if n_frames == len(frames) and np.array_equal(frames, np.arange(n_frames)):
        return None, keypoints, confidence, {}
    dense_kp = np.full((n_frames,) + keypoints.shape[1:], np.nan, dtype=np.float32)
    dense_conf = np.full((n_frames,) + confidence.shape[1:], np.nan, dtype=np.float32)
    dense_kp[frames] = keypoints
    dense_conf[frames] = confidence
    absent = n_frames - len(frames)
    if absent:
        logger.warning("%s: %d frames between 0 and %d are absent from the file; they are NaN",
                       path.name, absent, n_frames - 1)
    return None, dense_kp, dense_conf, {"frames_absent_in_file": absent}
