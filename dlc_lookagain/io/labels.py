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
from pathlib import Path

import numpy as np
import pandas as pd

from dlc_lookagain.errors import PoseFormatError
from dlc_lookagain.io.behavior_labels import (  # noqa: F401  (re-exported: the data model)
    _ACCEPTED, ALL_INDIVIDUALS, BehaviorLabels, _is_all, _labels_from_bouts, _normalize_individual, _seconds_to_frame,
    _state_frames, mask_runs)
from dlc_lookagain.io.behaviordepot import _read_behaviordepot

logger = logging.getLogger(__name__)

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


__all__ = ["ALL_INDIVIDUALS", "BehaviorLabels", "read_labels"]
