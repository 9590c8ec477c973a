"""Export predicted bouts as a BORIS "aggregated events" table.

BORIS (Behavioral Observation Research Interactive Software) exports coded
observations with *Observations > Export events > Aggregated events*: one row per
state event with its start and stop time. :func:`write_boris` writes our bouts in
that layout (tab-separated), so that the predictions can be compared with, or
analysed like, a BORIS coding session, and read back by
:func:`dlc_lookagain.io.labels.read_labels` to the same frames.

The columns are those of BORIS 8.x/9.x, taken from BORIS's own exporter
(``boris/export_events.py::export_aggregated_events`` and
``boris/export_observation.py::export_aggregated_events``)::

    Observation id, Observation date, Description, Observation type, Source,
    Time offset (s), Coding duration, Media duration (s), FPS (frame/s), Subject,
    Observation duration by subject by observation, Behavior, Behavioral category,
    Behavior type, Start (s), Stop (s), Duration (s), Media file name,
    Image index start, Image index stop, Image file path start, Image file path stop,
    Comment start, Comment stop

Every bout is a ``STATE`` event of subject = individual. ``Start (s)`` is
``start_frame / fps`` and ``Stop (s)`` is ``(end_frame + 1) / fps``, as ``start_s``
and ``end_s`` in our bouts file: the bout covers the half-open interval
``[start, stop)``, which is how BORIS pairs a START with its STOP. Times are written
with 6 decimals (BORIS writes 3) so that frames survive at any frame rate.
"""

from __future__ import annotations

import csv
import datetime as dt
import logging
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from dlc_lookagain.errors import PoseFormatError
from dlc_lookagain.io.annotations import EXTRA_OUTPUTS
from dlc_lookagain.io.paths import atomic_path

logger = logging.getLogger(__name__)

#: Header of a BORIS 8.x/9.x aggregated-events export (no independent variables, no modifiers).
BORIS_AGGREGATED_COLUMNS = (
    "Observation id",
    "Observation date",
    "Description",
    "Observation type",
    "Source",
    "Time offset (s)",
    "Coding duration",
    "Media duration (s)",
    "FPS (frame/s)",
    "Subject",
    "Observation duration by subject by observation",
    "Behavior",
    "Behavioral category",
    "Behavior type",
    "Start (s)",
    "Stop (s)",
    "Duration (s)",
    "Media file name",
    "Image index start",
    "Image index stop",
    "Image file path start",
    "Image file path stop",
    "Comment start",
    "Comment stop",
)

#: File-name suffix of the export, after the pose file's stem.
BORIS_SUFFIX = EXTRA_OUTPUTS["boris"]

_NA = "NA"  # what BORIS writes for a missing value
_TIME_DECIMALS = 6
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
_REQUIRED = ("individual", "behavior", "start_frame", "end_frame")
# Cells pandas reads as missing by default (and BORIS's own "no subject" names): a subject written as one of
# these comes back from most readers, ours included, as "no focal subject" (= every animal).
_READ_AS_MISSING = {"", "#n/a", "#n/a n/a", "#na", "-1.#ind", "-1.#qnan", "-nan", "1.#ind", "1.#qnan", "<na>",
                    "n/a", "na", "null", "nan", "none", "all", "no focal subject"}


def boris_path(source, destfolder=None) -> Path:
    """Where the BORIS export of a pose file goes: ``<pose stem>_behaviors_boris.tsv``.

    Parameters
    ----------
    source : PoseRecord or path-like
        The record (its ``source`` is used) or the pose file itself.
    destfolder : path-like or None
        Output folder; default the pose file's folder.

    Returns
    -------
    Path
        The name is built from the pose file's stem (``<video>DLC_...``), like every
        other output, so it is never mistaken for a training label file
        (``<video>_boris.tsv``, see :data:`dlc_lookagain.project_training.LABEL_SUFFIXES`).
    """
    from dlc_lookagain.io.annotations import extra_output_paths

    return extra_output_paths(getattr(source, "source", source), destfolder)["boris"]


def _load_bouts(bouts) -> tuple[pd.DataFrame, Path | None]:
    """Bouts as a fresh DataFrame with checked columns, plus the file it came from (if any)."""
    from dlc_lookagain.io.annotations import read_bouts

    if isinstance(bouts, (str, os.PathLike)):
        df = read_bouts(bouts)
    elif isinstance(bouts, pd.DataFrame):
        df = bouts.copy()
        df.attrs = dict(bouts.attrs)
    else:
        raise TypeError(f"bouts must be a DataFrame or the path of a bouts file, got {type(bouts).__name__}")
    where = Path(df.attrs["path"]) if df.attrs.get("path") else None
    missing = [c for c in _REQUIRED if c not in df.columns]
    if missing:
        raise PoseFormatError(where, f"bouts table lacks column(s) {missing} (has {list(df.columns)})")
    for col in ("start_frame", "end_frame"):
        values = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=np.float64)
        if np.isnan(values).any() or (values != np.round(values)).any():
            raise PoseFormatError(where, f"bouts column '{col}' must hold whole frame numbers")
        df[col] = values.astype(np.int64)
    bad = (df["start_frame"] < 0) | (df["end_frame"] < df["start_frame"])
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise PoseFormatError(where, f"bout in row {row + 1} has frames {df['start_frame'].iloc[row]}.."
                                     f"{df['end_frame'].iloc[row]} (need 0 <= start_frame <= end_frame)")
    for col in ("individual", "behavior"):
        df[col] = df[col].astype(str)
        for name in pd.unique(df[col]):
            if name == "" or name != name.strip() or _CONTROL_CHARS.search(name):
                raise PoseFormatError(where, f"{col} name {name!r} is empty, has leading/trailing whitespace "
                                             f"or a control character; BORIS cannot hold it")
    if "mean_probability" in df.columns:
        df["mean_probability"] = pd.to_numeric(df["mean_probability"], errors="coerce").astype(np.float64)
    else:
        df["mean_probability"] = np.nan
    return df.reset_index(drop=True), where


def _check_times(df: pd.DataFrame, fps: float, where) -> None:
    """Refuse bouts whose seconds were computed with another frame rate than ``fps``."""
    for col, frames in (("start_s", df["start_frame"]), ("end_s", df["end_frame"] + 1)):
        if col not in df.columns:
            continue
        secs = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=np.float64)
        known = ~np.isnan(secs)
        # A hundredth of a frame: far above CSV rounding (6 decimals), far below any real fps mismatch.
        off = known & (np.abs(secs * fps - frames.to_numpy()) > 0.01)
        if off.any():
            row = int(np.flatnonzero(off)[0])
            implied = frames.iloc[row] / secs[row] if secs[row] else float("nan")
            raise PoseFormatError(
                where,
                f"bouts column '{col}' ({secs[row]} s in row {row + 1}) does not match frame "
                f"{frames.iloc[row]} at fps={fps:g} (it implies {implied:.4g} fps); pass the fps the "
                f"bouts were computed with",
            )


def _merge_overlaps(df: pd.DataFrame, where) -> pd.DataFrame:
    """Merge overlapping bouts of one behavior and individual (BORIS cannot start a running state).

    Bouts that only touch (one stops on the frame the next starts) are kept apart,
    as BORIS keeps them.
    """
    keyed = df.assign(_i=pd.factorize(df["individual"])[0], _b=pd.factorize(df["behavior"])[0])
    keyed = keyed.sort_values(["_i", "_b", "start_frame"], kind="stable").reset_index(drop=True)
    same = keyed["_i"].eq(keyed["_i"].shift()) & keyed["_b"].eq(keyed["_b"].shift())
    reach = keyed.groupby(["_i", "_b"], sort=False)["end_frame"].cummax().shift()
    overlaps = same & (keyed["start_frame"] <= reach)
    if not overlaps.any():
        return df
    logger.warning("%s: %d bout(s) overlap an earlier bout of the same behavior and individual; merged",
                   where or "bouts table", int(overlaps.sum()))
    n = (keyed["end_frame"] - keyed["start_frame"] + 1).astype(np.float64)
    merged = keyed.assign(_g=(~overlaps).cumsum(), _w=keyed["mean_probability"] * n, _n=n,
                          _nan=keyed["mean_probability"].isna())
    merged = merged.groupby("_g", sort=False).agg(
        individual=("individual", "first"), behavior=("behavior", "first"),
        start_frame=("start_frame", "min"), end_frame=("end_frame", "max"),
        _w=("_w", "sum"), _n=("_n", "sum"), _nan=("_nan", "any"),
    )
    # Frames covered twice count twice in this mean; it only goes into a comment.
    merged["mean_probability"] = np.where(merged["_nan"], np.nan, merged["_w"] / merged["_n"])
    return merged.drop(columns=["_w", "_n", "_nan"]).reset_index(drop=True)


def _covered_seconds(df: pd.DataFrame, fps: float) -> dict[str, float]:
    """Seconds of each subject inside at least one of its bouts: the union of the bouts, so that
    overlapping bouts (of different behaviors: they are multi-label) count once and the total never
    exceeds the recording."""
    out = {}
    for ind, sub in df.groupby("individual", sort=False):
        start = sub["start_frame"].to_numpy(np.int64)
        order = np.argsort(start, kind="stable")
        start, stop = start[order], sub["end_frame"].to_numpy(np.int64)[order] + 1
        reach = np.maximum.accumulate(stop)
        first = np.flatnonzero(np.r_[True, start[1:] > reach[:-1]])  # where a new covered stretch begins
        ends = np.maximum.reduceat(stop, first)
        out[ind] = float((ends - start[first]).sum()) / fps
    return out


def _seconds(value: float) -> str:
    return f"{value:.{_TIME_DECIMALS}f}"


def _fps_text(fps: float) -> str:
    """BORIS's ``30.000`` when that is exact, else every digit (29.97002997...)."""
    short = f"{fps:.3f}"
    return short if float(short) == fps else repr(float(fps))


def _check_text(name: str, value: str) -> str:
    value = str(value)
    if _CONTROL_CHARS.search(value):
        raise ValueError(f"{name} {value!r} contains a control character (tab, newline, ...)")
    return value


def write_boris(
    bouts,
    path,
    *,
    fps: float,
    media_file=None,
    observation_id: str | None = None,
    n_frames: int | None = None,
    overwrite: bool = False,
) -> Path:
    """Write bouts as a BORIS aggregated-events table (tab-separated).

    Parameters
    ----------
    bouts : pandas.DataFrame or path-like
        A bouts table (:func:`dlc_lookagain.io.annotations.read_bouts` columns; at
        least ``individual``, ``behavior``, ``start_frame``, ``end_frame``) or the
        path of a ``_bouts.csv`` / ``_behaviors.h5``. ``end_frame`` is inclusive.
        Overlapping bouts of one behavior and individual are merged (BORIS cannot
        start a state that is running), with a warning.
    path : path-like
        The ``.tsv`` to write; :func:`boris_path` gives the conventional name.
    fps : float
        Frames per second of the video; turns frames into seconds. When the bouts
        carry ``start_s``/``end_s`` they must agree with it.
    media_file : path-like or None
        The video, written into ``Source`` and ``Media file name`` (``NA`` when None).
    observation_id : str or None
        BORIS observation id. Default: the video's stem, else the bouts file's stem
        without ``_bouts``/``_behaviors``, else the output's stem.
    n_frames : int or None
        Length of the recording in frames, written as ``Media duration (s)``
        (``n_frames / fps``) so that readers count the frames after the last bout
        as "no behavior". Default: the ``n_frames`` stored in a ``_behaviors.h5``
        passed as ``bouts``; otherwise ``NA`` (and readers end the labels at the
        last bout unless told the length).
    overwrite : bool
        Replace an existing ``path``; otherwise :class:`FileExistsError`.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    PoseFormatError
        The bouts lack columns, hold impossible frames or names BORIS cannot
        store, disagree with ``fps``, or run past ``n_frames``; the message names
        the bouts file.
    FileExistsError
        ``path`` exists and ``overwrite`` is False.
    ValueError
        Invalid ``fps``, ``n_frames`` or ``observation_id``.

    Notes
    -----
    One row per bout, ``Behavior type`` = ``STATE``, ``Subject`` = individual,
    sorted by start time as BORIS sorts its export. ``Start (s)`` =
    ``start_frame / fps``, ``Stop (s)`` = ``(end_frame + 1) / fps``; ``Image index
    start``/``stop`` are the frames at those times (``start_frame`` and
    ``end_frame + 1``, the frame on screen when BORIS would record the STOP).
    ``Comment start`` holds ``mean_probability=<p>``. ``Observation duration by subject by
    observation`` is the time the subject spends in at least one bout: the union of its bouts
    (behaviors can overlap; a sum would exceed the video). ``Coding duration`` is the
    media duration when known, else the span from the first start to the last
    stop. ``Observation date`` is the video's modification time (else the bouts
    file's, else now). Without bouts, only the header is written (a warning is
    logged): BORIS writes no rows for an observation without events.
    """
    path = Path(path)
    fps = float(fps)
    if not (np.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps!r}")
    df, where, n_frames = _checked_bouts(bouts, fps, n_frames, path)
    media = str(media_file) if media_file is not None else None
    observation_id = _observation_id(observation_id, media, where, path)
    rows, media_s = _rows(df, fps, n_frames, media, where, observation_id)
    if not rows:
        logger.warning("%s: no bouts; the BORIS export holds only its header (label readers refuse such a "
                       "file)", where or path)
    if media_s is None:
        logger.info("%s: recording length unknown (pass n_frames); 'Media duration (s)' written as NA", path)

    with atomic_path(path, overwrite=overwrite) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
            writer.writerow(BORIS_AGGREGATED_COLUMNS)
            writer.writerows(rows)
    logger.info("wrote %d bouts of %d behavior(s) for %d subject(s) to %s", len(rows),
                df["behavior"].nunique(), df["individual"].nunique(), path)
    return path


def _checked_bouts(bouts, fps: float, n_frames: int | None, path: Path):
    """The bouts table, sorted, overlaps merged, checked against ``fps`` and ``n_frames``;
    returns ``(df, where, n_frames)`` (``n_frames`` from a ``_behaviors.h5`` when not given)."""
    df, where = _load_bouts(bouts)
    if n_frames is None and df.attrs.get("n_frames") is not None:
        n_frames = int(df.attrs["n_frames"])
        if df.attrs.get("fps") and abs(float(df.attrs["fps"]) - fps) > 1e-6 * fps:
            raise PoseFormatError(where, f"bouts were written at {df.attrs['fps']} fps, not fps={fps:g}")
    if n_frames is not None:
        n_frames = int(n_frames)
        if n_frames < 1:
            raise ValueError(f"n_frames must be >= 1, got {n_frames}")
        late = df["end_frame"] >= n_frames
        if late.any():
            last = int(df["end_frame"][late].max())
            raise PoseFormatError(where, f"{int(late.sum())} bout(s) end after the last frame "
                                         f"({n_frames - 1}), e.g. at frame {last}")
    _check_times(df, fps, where)
    vague = sorted(n for n in pd.unique(df["individual"]) if n.lower() in _READ_AS_MISSING)
    if vague:
        logger.warning("%s: individual(s) %s will read back from the BORIS file as 'no focal subject' "
                       "(every animal); rename them to keep them apart", where or path, vague)
    df = _merge_overlaps(df, where)
    df = df.sort_values("start_frame", kind="stable").reset_index(drop=True)
    return df, where, n_frames


def _observation_id(observation_id: str | None, media: str | None, where: Path | None, path: Path) -> str:
    """The given id, else the video's stem, the bouts file's stem or the output's; checked."""
    if observation_id is None:
        if media is not None:
            observation_id = Path(media).stem
        elif where is not None:
            observation_id = re.sub(r"(_bouts|_behaviors)$", "", where.stem)
        else:
            observation_id = path.stem.removesuffix(BORIS_SUFFIX.removesuffix(".tsv"))
    observation_id = _check_text("observation_id", observation_id)
    if not observation_id or observation_id != observation_id.strip() or observation_id.startswith("#"):
        # Label readers skip lines starting with '#' and strip cells.
        raise ValueError(f"observation_id {observation_id!r} is empty, starts with '#' or with whitespace")
    if media is not None:
        _check_text("media_file", media)
    return observation_id


def _rows(df, fps: float, n_frames: int | None, media: str | None, where: Path | None, observation_id: str):
    """One aggregated-events row per bout; returns the rows and the media duration (s, or None)."""
    from dlc_lookagain import __version__

    dated = next((p for p in (media, where) if p is not None and Path(p).is_file()), None)
    stamp = dt.datetime.fromtimestamp(Path(dated).stat().st_mtime) if dated else dt.datetime.now()
    start = df["start_frame"].to_numpy(dtype=np.int64)
    stop = df["end_frame"].to_numpy(dtype=np.int64) + 1
    start_s, stop_s = start / fps, stop / fps
    media_s = n_frames / fps if n_frames is not None else None
    if media_s is not None:
        coding = media_s
    else:
        coding = float(stop_s.max() - start_s.min()) if len(df) else 0.0
    by_subject = _covered_seconds(df, fps)

    common = [
        observation_id,
        stamp.strftime("%Y-%m-%d %H:%M:%S"),
        f"dlc_lookagain {__version__} predicted bouts" + (f" from {where.name}" if where else ""),
        "Media file",
        f"player #1:{media}" if media is not None else _NA,
        _seconds(0.0),
        _seconds(coding),
        _seconds(media_s) if media_s is not None else _NA,
        _fps_text(fps),
    ]
    rows = []
    for r, row in enumerate(df.itertuples(index=False)):
        mean = row.mean_probability
        rows.append([
            *common,
            row.individual,
            _seconds(by_subject[row.individual]),
            row.behavior,
            "Not defined",  # BORIS's value when the ethogram has no category
            "STATE",
            _seconds(start_s[r]),
            _seconds(stop_s[r]),
            _seconds(stop_s[r] - start_s[r]),
            media if media is not None else _NA,
            str(start[r]),
            str(stop[r]),
            _NA,
            _NA,
            f"mean_probability={mean:.4f}" if np.isfinite(mean) else "",
            "",
        ])
    return rows, media_s


__all__ = ["BORIS_AGGREGATED_COLUMNS", "BORIS_SUFFIX", "boris_path", "write_boris"]
