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
from pathlib import Path

import numpy as np
import pandas as pd

from dlc_lookagain.errors import PoseFormatError, option_text
from dlc_lookagain.io.paths import atomic_path
from dlc_lookagain.io.prediction import (  # noqa: F401  (the data model, re-exported for callers)
    BEHAVIOR_COLUMNS, BOUT_COLUMNS, NO_LABEL, PROBABILITY_PREFIX, BehaviorPrediction, behaviors_table,
    bouts_from_mask, bouts_table, probability_column, time_budget_of)
from dlc_lookagain.io.read_annotations import (  # noqa: F401  (the readers, re-exported for callers)
    _PATH_KEYS, H5_META_ATTR, prediction_from_table, read_behaviors, read_bouts, read_output_metadata)
from dlc_lookagain.io.record import PoseRecord

logger = logging.getLogger(__name__)

EVENT_SOURCE = "dlc_lookagain"

# CSV precision. Probabilities keep 4 decimals (error <= 5e-5): a classifier's
# probabilities are not calibrated anywhere near that finely, 4 decimals keep the
# file about half the size and readable in a spreadsheet, and the .h5 keeps the full
# float32 values for anyone who needs them. Times keep 6 decimals (microseconds),
# far below one frame at any camera rate.
CSV_PROBABILITY_DECIMALS = 4
CSV_TIME_DECIMALS = 6

# HDFStore.put(track_times=...) only exists in recent pandas (which warns that its
# default will change). It keeps write times out of the table datasets; PyTables still
# stamps some nodes, so only the CSV outputs are promised to be byte-identical.
_PUT_KWARGS = {"track_times": False} if "track_times" in inspect.signature(pd.HDFStore.put).parameters else {}


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
def _relative_to(path, folder: Path) -> str:
    try:
        return Path(os.path.relpath(os.path.abspath(path), os.path.abspath(folder))).as_posix()
    except ValueError:  # another drive (Windows)
        return str(path)


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

