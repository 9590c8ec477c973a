"""Export poses and behavior predictions to Neurodata Without Borders (NWB).

One ``.nwb`` file per recording, written with pynwb and the ndx-pose extension
(optional dependencies: ``pip install "dlc_lookagain[nwb]"``)::

    processing/behavior/
        Skeletons/<individual>_skeleton           ndx-pose Skeleton (nodes = bodyparts)
        PoseEstimation_<individual>/<bodypart>    ndx-pose PoseEstimationSeries (T x 2, pixels)
        behavior_probabilities/<individual>       TimeSeries (T x C), only with ``behaviors=``
    intervals/behavior_bouts                      TimeIntervals, one row per bout
    acquisition/video                             ImageSeries linking the video file (path relative
                                                  to the .nwb), if the record has a video
    general/devices/camera                        Device, if the record has a video

With ndx-pose versions whose PoseEstimation has no ``source_video`` (0.2.x), the
video path goes into ``PoseEstimation.original_videos`` instead of an ImageSeries.
Tested with pynwb 4.2 + ndx-pose 0.4.0 and pynwb 2.8.3 + ndx-pose 0.2.2.

All series are regularly sampled at the record's fps from time 0 (frame ``t`` is at
``t / fps`` seconds, as ``time_s`` in our tables).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

from dlc_lookagain.errors import PoseFormatError, option_text
from dlc_lookagain.io.annotations import EXTRA_OUTPUTS
from dlc_lookagain.io.paths import atomic_path
from dlc_lookagain.io.record import PoseRecord

logger = logging.getLogger(__name__)

#: File-name suffix of the export, after the pose file's stem.
NWB_SUFFIX = EXTRA_OUTPUTS["nwb"]
PROCESSING_MODULE = "behavior"
BOUTS_TABLE = "behavior_bouts"
PROBABILITIES_CONTAINER = "behavior_probabilities"

_INSTALL_HINT = 'NWB export needs pynwb and ndx-pose: pip install "dlc_lookagain[nwb]"'
_REFERENCE_FRAME = (
    "(0, 0) is the top-left corner of the video frame; x grows to the right and y downwards, in the pixel "
    "coordinates of the pose file"
)


def nwb_path(source, destfolder=None) -> Path:
    """Where the NWB export of a pose file goes: ``<pose stem>_behaviors.nwb``.

    Parameters
    ----------
    source : PoseRecord or path-like
        The record (its ``source`` is used) or the pose file itself.
    destfolder : path-like or None
        Output folder; default the pose file's folder.

    Returns
    -------
    Path
        Never ``<pose stem>.nwb`` or ``<pose stem>_<animal>.nwb``, the names
        DeepLabCut's own NWB export uses.
    """
    from dlc_lookagain.io.annotations import extra_output_paths

    return extra_output_paths(getattr(source, "source", source), destfolder)["nwb"]


def _import_nwb():
    try:
        import ndx_pose
        import pynwb
        import pynwb.behavior
        import pynwb.epoch
        import pynwb.file
        import pynwb.image
    except ImportError as exc:
        raise ImportError(f"{_INSTALL_HINT} ({exc})") from exc
    return pynwb, ndx_pose


def _accepts(cls, argument: str) -> bool:
    """Whether a pynwb/hdmf class's constructor takes ``argument`` (ndx-pose versions differ)."""
    from hdmf.utils import get_docval

    return any(arg["name"] == argument for arg in get_docval(cls.__init__))


def _check_name(record: PoseRecord, kind: str, name: str) -> str:
    # HDF5 group names cannot hold '/'; NWB names should not hold ':' either.
    if "/" in name or ":" in name or not name.strip():
        raise PoseFormatError(record.source, f"{kind} name {name!r} cannot be an NWB object name "
                                             f"(empty, or holds '/' or ':'); rename it")
    return name


def _default_start_time(record: PoseRecord) -> dt.datetime:
    if record.source.is_file():
        return dt.datetime.fromtimestamp(record.source.stat().st_mtime).astimezone()
    logger.warning("%s: pose file not found; session_start_time set to now", record.source)
    return dt.datetime.now().astimezone()


def _subject(pynwb, subject):
    if subject is None or isinstance(subject, pynwb.file.Subject):
        return subject
    if isinstance(subject, str):
        return pynwb.file.Subject(subject_id=subject)
    if isinstance(subject, dict):
        return pynwb.file.Subject(**subject)
    raise TypeError(f"subject must be a pynwb Subject, a dict of its fields or a subject id, "
                    f"got {type(subject).__name__}")


def _software(record: PoseRecord) -> tuple[str | None, str | None]:
    """(source software, confidence definition) from the record's format."""
    fmt = record.source_format or ""
    if fmt.startswith("dlc"):
        return "DeepLabCut", "DeepLabCut likelihood of the keypoint (network output in [0, 1])"
    if fmt.startswith("sleap"):
        return "SLEAP", ("SLEAP point score (peak confidence; can exceed 1); 1.0 for user-labelled points")
    return None, "keypoint confidence as stored in the pose file"


def _confidence_required(pynwb) -> bool:
    """ndx-pose < 0.4 requires a confidence dataset in every PoseEstimationSeries."""
    try:
        spec = pynwb.get_type_map().namespace_catalog.get_spec("ndx-pose", "PoseEstimationSeries")
        return bool(spec.get_dataset("confidence").required)
    except Exception:  # noqa: BLE001 - an unexpected spec layout: write confidence, always valid
        return True


def _has_scores(record: PoseRecord) -> bool:
    """False when the pose file had no scores (our readers then give 1.0 to every present point)."""
    finite = record.confidence[np.isfinite(record.confidence)]
    return bool(finite.size) and not bool(np.all(finite == 1.0))


def _bouts_frame(bouts, record: PoseRecord) -> tuple[pd.DataFrame, Path | None]:
    from dlc_lookagain.io.annotations import read_bouts

    if isinstance(bouts, (str, os.PathLike)):
        df = read_bouts(bouts)
    elif isinstance(bouts, pd.DataFrame):
        df = bouts.copy()
    else:
        raise TypeError(f"bouts must be a DataFrame, the path of a bouts file or None, "
                        f"got {type(bouts).__name__}")
    where = Path(df.attrs["path"]) if df.attrs.get("path") else record.source
    missing = [c for c in ("individual", "behavior", "start_frame", "end_frame") if c not in df.columns]
    if missing:
        raise PoseFormatError(where, f"bouts table lacks column(s) {missing} (has {list(df.columns)})")
    for col in ("start_frame", "end_frame"):
        values = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=np.float64)
        if np.isnan(values).any() or (values != np.round(values)).any():
            raise PoseFormatError(where, f"bouts column '{col}' must hold whole frame numbers")
        df[col] = values.astype(np.int64)
    for col in ("individual", "behavior"):
        df[col] = df[col].astype(str)
    unknown = sorted(set(df["individual"]) - set(record.individuals))
    if unknown:
        raise PoseFormatError(where, f"bouts name individuals {unknown} that the pose record "
                                     f"{record.source.name} does not have ({record.individuals})")
    bad = ((df["start_frame"] < 0) | (df["end_frame"] < df["start_frame"])
           | (df["end_frame"] >= record.n_frames))
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise PoseFormatError(where, f"bout in row {row + 1} spans frames {df['start_frame'].iloc[row]}.."
                                     f"{df['end_frame'].iloc[row]}, outside 0..{record.n_frames - 1} of "
                                     f"{record.source.name}")
    fps = float(record.fps)
    for col, frames in (("start_s", df["start_frame"]), ("end_s", df["end_frame"] + 1)):
        if col in df.columns:
            secs = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=np.float64)
            off = ~np.isnan(secs) & (np.abs(secs * fps - frames.to_numpy()) > 0.01)
            if off.any():
                row = int(np.flatnonzero(off)[0])
                raise PoseFormatError(where, f"bouts column '{col}' ({secs[row]} s, row {row + 1}) does not "
                                             f"match frame {frames.iloc[row]} at the record's {fps:g} fps")
    if "mean_probability" in df.columns:
        df["mean_probability"] = pd.to_numeric(df["mean_probability"], errors="coerce").astype(np.float64)
    else:
        df["mean_probability"] = np.nan
    return df.reset_index(drop=True), where


def _probabilities(behaviors, record: PoseRecord) -> tuple[list[str], np.ndarray, list | None, Path]:
    """Per-frame probabilities ``(T, I, C)`` from a behaviors table or file, checked against the record."""
    from dlc_lookagain.io.annotations import PROBABILITY_PREFIX, read_behaviors

    if isinstance(behaviors, (str, os.PathLike)):
        df = read_behaviors(behaviors)
    elif isinstance(behaviors, pd.DataFrame):
        df = behaviors
    else:
        raise TypeError(f"behaviors must be a DataFrame or the path of a behaviors table, "
                        f"got {type(behaviors).__name__}")
    where = Path(df.attrs["path"]) if df.attrs.get("path") else record.source
    pcols = [c for c in df.columns
             if str(c).startswith(PROBABILITY_PREFIX) and len(str(c)) > len(PROBABILITY_PREFIX)]
    missing = [c for c in ("frame", "individual") if c not in df.columns]
    if missing or not pcols:
        raise PoseFormatError(where, f"not a behaviors table: needs 'frame', 'individual' and "
                                     f"'{PROBABILITY_PREFIX}<behavior>' columns (has {list(df.columns)})")
    names = [c[len(PROBABILITY_PREFIX):] for c in pcols]
    frame = pd.to_numeric(df["frame"], errors="coerce").to_numpy(dtype=np.float64)
    ind = pd.Categorical(df["individual"].astype(str), categories=record.individuals).codes.astype(np.int64)
    if (ind < 0).any():
        extra = sorted(set(df["individual"].astype(str)) - set(record.individuals))
        raise PoseFormatError(where, f"behaviors table names individuals {extra} that the pose record "
                                     f"{record.source.name} does not have ({record.individuals})")
    n_frames, n_ind = record.n_frames, record.n_individuals
    if np.isnan(frame).any() or (frame != np.round(frame)).any() or frame.min(initial=0) < 0:
        raise PoseFormatError(where, "behaviors table column 'frame' must hold whole numbers >= 0")
    if frame.max(initial=0) >= n_frames:
        raise PoseFormatError(where, f"behaviors table runs to frame {int(frame.max())} but the pose record "
                                     f"{record.source.name} has {n_frames} frames")
    flat = frame.astype(np.int64) * n_ind + ind
    if len(df) != n_frames * n_ind or np.unique(flat).size != len(df):
        raise PoseFormatError(where, f"behaviors table has {len(df)} rows; {record.source.name} needs "
                                     f"{n_frames} frames x {n_ind} individuals = {n_frames * n_ind}, each "
                                     f"(frame, individual) once")
    values = df[pcols].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float32)
    probs = np.empty((n_frames, n_ind, len(pcols)), dtype=np.float32)
    probs[frame.astype(np.int64), ind] = values
    thresholds = None
    if df.attrs.get("behaviors") == names and df.attrs.get("thresholds") is not None:
        thresholds = [float(t) for t in df.attrs["thresholds"]]
    return names, probs, thresholds, where


def write_nwb(
    record: PoseRecord,
    bouts,
    path,
    *,
    behaviors=None,
    session_description: str | None = None,
    session_start_time: dt.datetime | None = None,
    subject=None,
    overwrite: bool = False,
) -> Path:
    """Write the poses and the behavior bouts of one recording to an NWB file.

    Parameters
    ----------
    record : PoseRecord
        The recording (``dlc_lookagain.load_pose``). Its fps must be known: NWB
        series need a sampling rate.
    bouts : pandas.DataFrame or path-like or None
        The bouts (``_bouts.csv``, the ``bouts`` table of a ``_behaviors.h5``, or
        a DataFrame with at least ``individual, behavior, start_frame,
        end_frame``; ``end_frame`` inclusive). None writes the poses only.
    path : path-like
        The ``.nwb`` to write; :func:`nwb_path` gives the conventional name.
    behaviors : pandas.DataFrame or path-like or None
        The per-frame table (``_behaviors.csv``/``.h5`` or
        :func:`~dlc_lookagain.io.annotations.read_behaviors` output). When given,
        one TimeSeries of probabilities per individual is added.
    session_description : str or None
        Default: ``"dlc_lookagain behavior predictions for <pose file name>"``.
    session_start_time : datetime or None
        NWB requires one. Default: the pose file's modification time, in the
        local time zone. A naive datetime is taken as local time.
    subject : pynwb.file.Subject or dict or str or None
        The NWB subject (a dict is passed to ``Subject(**subject)``, a string is
        the ``subject_id``). It is linked to the skeleton only when the record has
        a single individual.
    overwrite : bool
        Replace an existing ``path``; otherwise :class:`FileExistsError`.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ImportError
        pynwb or ndx-pose is missing (install ``dlc_lookagain[nwb]``).
    PoseFormatError
        fps unknown, names NWB cannot hold, or bouts / behaviors that do not
        match the record; the message names the file.
    FileExistsError
        ``path`` exists and ``overwrite`` is False.

    Notes
    -----
    Layout (module docstring): one ndx-pose ``Skeleton`` and ``PoseEstimation``
    per individual in the processing module ``behavior``; in each, one
    ``PoseEstimationSeries`` per bodypart named after it, data ``(T, 2)``
    float32 x/y in pixels with NaN where the keypoint is missing, ``rate`` = fps,
    and ``confidence`` (NaN where missing) when the pose file had scores. Files
    without scores (manual labels) get no confidence, except where the installed
    ndx-pose requires one (0.2.x): there it is 1.0 for present keypoints and its
    ``confidence_definition`` says so. Bouts go to
    ``intervals/behavior_bouts`` with columns ``start_time`` (``start_frame /
    fps``), ``stop_time`` (``(end_frame + 1) / fps``), ``behavior``,
    ``individual``, ``start_frame``, ``end_frame`` (inclusive) and
    ``mean_probability``. Probabilities go to
    ``processing/behavior/behavior_probabilities/<individual>``, data ``(T, C)``
    float32 (NaN where not predicted), unit ``"probability"``; the description
    lists the C behaviors in column order as JSON. The file is written to a
    temporary name and renamed, so an error leaves no partial file.
    """
    pynwb, ndx_pose = _import_nwb()
    from dlc_lookagain import __version__

    path = Path(path)
    if not record.fps:
        raise PoseFormatError(record.source, "fps unknown (no video or metadata gave it); NWB series need a "
                                             "rate: set it, e.g. dataclasses.replace(record, fps=30.0)")
    fps = float(record.fps)
    protected = {record.source.resolve()}
    if record.video_path is not None:
        protected.add(record.video_path.resolve())
    if path.resolve() in protected:
        raise PoseFormatError(path, "output would overwrite the pose file or its video; choose another path")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path}: output exists; pass {option_text('overwrite', True)} to replace it")
    for ind in record.individuals:
        _check_name(record, "individual", ind)
    for part in record.bodyparts:
        _check_name(record, "bodypart", part)

    bout_df, bouts_where = (None, None) if bouts is None else _bouts_frame(bouts, record)
    probs = None if behaviors is None else _probabilities(behaviors, record)

    if session_start_time is None:
        session_start_time = _default_start_time(record)
    elif session_start_time.tzinfo is None:
        session_start_time = session_start_time.astimezone()
    nwbfile = pynwb.NWBFile(
        session_description=(session_description
                             or f"dlc_lookagain behavior predictions for {record.source.name}"),
        identifier=str(uuid.uuid4()),
        session_start_time=session_start_time,
        subject=_subject(pynwb, subject),
        notes=f"written by dlc_lookagain {__version__} from {record.source.name}",
    )
    module = nwbfile.create_processing_module(
        name=PROCESSING_MODULE, description=f"poses and behavior predictions (dlc_lookagain {__version__})"
    )

    video_link = _add_video(nwbfile, record, path, fps, pynwb, ndx_pose)
    _add_poses(nwbfile, module, record, fps, video_link, pynwb, ndx_pose)
    if bout_df is not None:
        _add_bouts(nwbfile, bout_df, bouts_where, fps, pynwb)
    if probs is not None:
        _add_probabilities(module, record, probs, fps, pynwb)

    with atomic_path(path, overwrite=overwrite) as tmp:
        with pynwb.NWBHDF5IO(str(tmp), mode="w") as io:
            io.write(nwbfile)
    logger.info("%s: wrote poses of %d individual(s) x %d bodyparts%s%s to %s", record.source.name,
                record.n_individuals, record.n_bodyparts,
                f", {len(bout_df)} bouts" if bout_df is not None else "",
                ", probabilities" if probs is not None else "", path)
    return path


def _add_video(nwbfile, record: PoseRecord, path: Path, fps: float, pynwb, ndx_pose) -> dict:
    """Link the analyzed video (relative to the NWB file) and its camera; returns the
    ``PoseEstimation`` arguments that point at them (empty without a video)."""
    video_link = {}
    if record.video_path is not None:
        try:
            rel = os.path.relpath(record.video_path.resolve(), path.resolve().parent)
        except ValueError:  # another drive on Windows
            rel = str(record.video_path.resolve())
        if _accepts(ndx_pose.PoseEstimation, "source_video"):
            # (height, width) of the analyzed video, as DLC stores it; not that of a rescaled copy.
            dims = record.metadata.get("frame_dimensions") if record.video_scale == 1.0 else None
            video = pynwb.image.ImageSeries(
                name="video",
                description=f"the recording the poses were estimated on ({record.video_path.name})",
                unit="n.a.",
                external_file=[rel],
                format="external",
                starting_frame=[0],
                rate=fps,
                **({"dimension": [int(dims[1]), int(dims[0])]} if dims else {}),
                # pynwb >= 4 wants the frame count of an external video timed by rate.
                **({"num_samples": int(record.n_video_frames or record.n_frames)}
                   if _accepts(pynwb.image.ImageSeries, "num_samples") else {}),
            )
            nwbfile.add_acquisition(video)
            video_link = {"source_video": video}
        else:
            video_link = {"original_videos": [rel]}
        camera = nwbfile.create_device(name="camera",
                                       description=f"camera that recorded {record.video_path.name}")
        # ndx-pose >= 0.4 links one device; older versions a list (one per original video).
        video_link.update({"device": camera} if _accepts(ndx_pose.PoseEstimation, "device")
                          else {"devices": [camera]})
    return video_link


def _add_poses(nwbfile, module, record: PoseRecord, fps: float, video_link: dict, pynwb, ndx_pose) -> None:
    """One ndx-pose ``Skeleton`` and ``PoseEstimation`` per individual, one series per bodypart."""
    software, confidence_definition = _software(record)
    with_confidence = _has_scores(record)
    if not with_confidence and _confidence_required(pynwb):
        # Older ndx-pose insists on a confidence; say plainly that these are not scores.
        with_confidence = True
        confidence_definition = ("no scores in the pose file: 1.0 for every present keypoint, "
                                 "NaN where missing")
    index = {name: k for k, name in enumerate(record.bodyparts)}
    edges = [(index[a], index[b]) for a, b in record.skeleton if a in index and b in index]
    if edges and len(record.bodyparts) > 256:
        logger.warning("%s: %d bodyparts exceed ndx-pose's uint8 edge indices; skeleton edges left out",
                       record.source, len(record.bodyparts))
        edges = []
    skeletons = []
    for i, ind in enumerate(record.individuals):
        skeleton = ndx_pose.Skeleton(
            name=f"{ind}_skeleton",
            nodes=list(record.bodyparts),
            edges=np.asarray(edges, dtype=np.uint8).reshape(-1, 2),
            **({"subject": nwbfile.subject}
               if nwbfile.subject is not None and record.n_individuals == 1 else {}),
        )
        skeletons.append(skeleton)
        series = []
        for b, part in enumerate(record.bodyparts):
            series.append(ndx_pose.PoseEstimationSeries(
                name=part,
                description=f"keypoint {part!r} of individual {ind!r}",
                data=np.ascontiguousarray(record.keypoints[:, i, b, :], dtype=np.float32),
                unit="pixels",
                reference_frame=_REFERENCE_FRAME,
                rate=fps,
                starting_time=0.0,
                **({"confidence": np.ascontiguousarray(record.confidence[:, i, b], dtype=np.float32),
                    "confidence_definition": confidence_definition} if with_confidence else {}),
            ))
        module.add(ndx_pose.PoseEstimation(
            name=f"PoseEstimation_{ind}",
            pose_estimation_series=series,
            description=f"2D keypoints of individual {ind!r} from {record.source.name}"
                        + (f" ({software})" if software else ""),
            scorer=record.scorer,
            source_software=software,
            skeleton=skeleton,
            **video_link,
        ))
    # Skeletons before the PoseEstimation objects that link to them is not required; one container holds all.
    module.add(ndx_pose.Skeletons(skeletons=skeletons))


def _add_bouts(nwbfile, bout_df, bouts_where, fps: float, pynwb) -> None:
    """The bouts as the time-interval table ``intervals/behavior_bouts``."""
    from hdmf.common import VectorData

    from dlc_lookagain import __version__

    start_frame = bout_df["start_frame"].to_numpy(dtype=np.int64)
    end_frame = bout_df["end_frame"].to_numpy(dtype=np.int64)
    # Typed arrays (not add_row) so that a table without bouts is still written, with its columns.
    columns = [
        ("start_time", "start of the bout in seconds: start_frame / fps", start_frame / fps),
        ("stop_time", "end of the bout in seconds: (end_frame + 1) / fps", (end_frame + 1) / fps),
        ("behavior", "behavior name", np.asarray(bout_df["behavior"].tolist(), dtype=str)),
        ("individual", "individual (PoseEstimation_<individual>)",
         np.asarray(bout_df["individual"].tolist(), dtype=str)),
        ("start_frame", "first frame of the bout (0-based)", start_frame),
        ("end_frame", "last frame of the bout (inclusive)", end_frame),
        ("mean_probability", "mean predicted probability over the bout (NaN if unknown)",
         bout_df["mean_probability"].to_numpy(dtype=np.float64)),
    ]
    nwbfile.add_time_intervals(pynwb.epoch.TimeIntervals(
        name=BOUTS_TABLE,
        description=f"behavior bouts predicted by dlc_lookagain {__version__}"
                    + (f" ({bouts_where.name})" if bouts_where is not None else "")
                    + "; [start_time, stop_time) covers frames start_frame..end_frame",
        columns=[VectorData(name=n, description=d, data=v) for n, d, v in columns],
    ))


def _add_probabilities(module, record: PoseRecord, probs, fps: float, pynwb) -> None:
    """Per-frame probabilities, one ``(T, C)`` TimeSeries per individual."""
    from dlc_lookagain import __version__

    names, p, thresholds, where = probs
    container = pynwb.behavior.BehavioralTimeSeries(name=PROBABILITIES_CONTAINER)
    for i, ind in enumerate(record.individuals):
        description = (f"per-frame probability of each behavior for individual {ind!r} "
                       f"(dlc_lookagain {__version__}, {where.name}); columns: {json.dumps(names)}")
        if thresholds is not None:
            description += f"; decision thresholds: {json.dumps(thresholds)}"
        container.add_timeseries(pynwb.TimeSeries(
            name=ind,
            data=np.ascontiguousarray(p[:, i, :], dtype=np.float32),
            unit="probability",
            rate=fps,
            starting_time=0.0,
            description=description,
            comments="NaN where nothing was predicted",
        ))
    module.add(container)


__all__ = ["NWB_SUFFIX", "nwb_path", "write_nwb"]
