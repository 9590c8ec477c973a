"""Readers for SLEAP output: ``.slp`` label/prediction files and analysis HDF5 exports.

Both readers return a :class:`~dlc_lookagain.io.record.PoseRecord` on a dense
frame grid ``0..n-1``. :func:`consolidate_tracks` optionally relinks fragmented
tracks (identity switches make SLEAP start new tracks) into a fixed number of
animals.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
from pathlib import Path

import h5py
import numpy as np
import sleap_io as sio

from dlc_lookagain.errors import PoseFormatError
from dlc_lookagain.io.paths import VIDEO_EXTENSIONS, absolute_path, resolve_moved_path
from dlc_lookagain.io.record import PoseRecord
from dlc_lookagain.io.video import find_video_beside

logger = logging.getLogger(__name__)

# instance_type codes in the .slp ``instances`` table (SLEAP's InstanceType enum).
_USER = 0
_PREDICTED = 1

_SLP_TABLES = ("frames", "instances", "points", "pred_points")
_SLP_FIELDS = {
    "frames": ("video", "frame_idx", "instance_id_start", "instance_id_end"),
    "instances": ("instance_id", "instance_type", "skeleton", "track", "from_predicted", "score",
                  "point_id_start", "point_id_end"),
    "points": ("x", "y", "visible"),
    "pred_points": ("x", "y", "visible", "score"),
}
_ANALYSIS_CANONICAL_DIMS = ("frame", "track", "node", "xy")
# SLEAP's own exporter transposes (frame, node, xy, track) for MATLAB; sleap-io calls
# that the "matlab" preset. Files without a ``dims`` attribute use it.
_MATLAB_TRACKS_DIMS = ("track", "xy", "node", "frame")
# Written by old SLEAP with ``transpose=False`` (seen only in very early exports).
_UNTRANSPOSED_TRACKS_DIMS = ("frame", "node", "xy", "track")


# --------------------------------------------------------------------------- helpers


def _decode(value) -> str:
    """Text from an HDF5 string value (bytes, numpy bytes or str)."""
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value[()]
    if isinstance(value, (bytes, np.bytes_)):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _stored_name(stored: str) -> str:
    """File name of a path stored on any OS (``C:\\x\\v.mp4`` or ``/a/v.mp4``)."""
    return re.split(r"[\\/]", stored.rstrip("\\/"))[-1]


def _model_name(model_path: str) -> str:
    """Short model name from a stored model path (folder name, not its config file)."""
    parts = [p for p in re.split(r"[\\/]", str(model_path)) if p]
    if not parts:
        return str(model_path)
    # sleap-track records ``.../<model folder>/training_config.json``: the folder is the name.
    if len(parts) > 1 and parts[-1] in ("training_config.json", "best_model.h5", "initial_config.json"):
        return parts[-2]
    return parts[-1]


def _scorer_from_provenance(provenance: dict) -> str:
    """Build ``"SLEAP <version>; models: ...; tracker: ..."`` from SLEAP provenance.

    SLEAP 1.0 stores ``model.<kind>.path`` keys, newer versions ``model_paths``; both
    are read so that the scorer says which network made the predictions.
    """
    scorer = "SLEAP"
    if not isinstance(provenance, dict):
        return scorer
    version = provenance.get("sleap_version") or provenance.get("sleap.version")
    if version:
        scorer += f" {version}"
    models: list[str] = []
    paths = provenance.get("model_paths")
    if isinstance(paths, (list, tuple)):
        models += [_model_name(p) for p in paths]
    elif isinstance(paths, str):
        models.append(_model_name(paths))
    models += [_model_name(v) for k, v in sorted(provenance.items())
               if k.startswith("model.") and k.endswith(".path") and v]
    details = []
    if provenance.get("predictor"):
        details.append(f"predictor: {provenance['predictor']}")
    if models:
        details.append("models: " + ", ".join(dict.fromkeys(models)))
    tracker = provenance.get("tracking.tracker")
    if tracker is None and isinstance(provenance.get("args"), dict):
        tracker = provenance["args"].get("tracking.tracker")
    if tracker:
        details.append(f"tracker: {tracker}")
    return "; ".join([scorer, *details])


def _unique_names(names: list[str], what: str, source: Path) -> list[str]:
    """Make names unique (SLEAP allows two tracks with one name, PoseRecord does not)."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        if name in seen:
            seen[name] += 1
            new = f"{name}#{seen[name]}"
            logger.warning("%s: %s name %r occurs more than once; renamed to %r", source, what, name, new)
            out.append(new)
        else:
            seen[name] = 0
            out.append(name)
    return out


def _resolve_stored_video(stored: str, pose_path: Path) -> Path | None:
    """Find a video whose stored path is stale, without opening it.

    Anchors are the pose file's folder, then its parent, so that a video kept in a
    sibling folder (``project/videos/x.mp4`` beside ``project/predictions/x.slp``)
    is found by the tail of its stored path.
    """
    folder = pose_path.parent
    found = resolve_moved_path(stored, folder, folder.parent)
    if found is None:
        logger.info(
            "%s: video %r not found (tried it as stored, relative to %s and each parent folder, "
            "and by its trailing path parts under %s and %s); continuing without video (video_path=None)",
            pose_path, stored, folder, folder, folder.parent,
        )
    return found


def _open_hdf5(path: Path, kind: str) -> h5py.File:
    """Open an HDF5 file read-only or raise a PoseFormatError that says why not."""
    if not path.is_file():
        raise PoseFormatError(path, f"{kind} file does not exist")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        if not h5py.is_hdf5(path):
            problem = f"not an HDF5 file, so not a {kind} (is it a renamed text/CSV file?)"
        else:
            problem = f"HDF5 file cannot be opened ({exc}); it may be truncated or still being written"
        raise PoseFormatError(path, problem) from exc


def _read_dataset(h5: h5py.File, name: str, path: Path) -> np.ndarray:
    """Read a whole dataset; a truncated or corrupt file becomes a PoseFormatError."""
    if name not in h5:
        raise PoseFormatError(path, f"dataset '{name}' is missing")
    if not isinstance(h5[name], h5py.Dataset):
        raise PoseFormatError(path, f"'{name}' is a group, expected a dataset")
    try:
        return h5[name][()]
    except (OSError, RuntimeError, ValueError, KeyError) as exc:
        problem = f"dataset '{name}' cannot be read ({exc}); the file may be truncated"
        raise PoseFormatError(path, problem) from exc


# --------------------------------------------------------------------------- .slp


def _select_video(labels, selector, path: Path) -> int:
    """Index of the video chosen by ``selector`` (index, file name or stem)."""
    names = [_video_filename(v) for v in labels.videos]
    listing = ", ".join(f"{i}: {n}" for i, n in enumerate(names)) or "none"
    if not names:
        raise PoseFormatError(path, "the file lists no videos")
    if selector is None:
        if len(names) > 1:
            logger.info(
                "%s holds %d videos (%s); reading video 0. "
                "Pass video=<index, file name or stem> to choose another.",
                path, len(names), listing,
            )
        return 0
    if isinstance(selector, (int, np.integer)) and not isinstance(selector, bool):
        index = int(selector)
        if -len(names) <= index < len(names):
            return index % len(names)
        raise PoseFormatError(path, f"video index {index} is out of range; videos: {listing}")
    if isinstance(selector, (str, os.PathLike)):
        wanted = os.fspath(selector)
        wanted_name = _stored_name(wanted)
        hits = [
            i for i, n in enumerate(names)
            if wanted in (n, _stored_name(n)) or wanted_name in (_stored_name(n), Path(_stored_name(n)).stem)
        ]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise PoseFormatError(path, f"video {wanted!r} matches several videos; use an index. "
                                        f"Videos: {listing}")
        raise PoseFormatError(path, f"no video matches {wanted!r}; videos: {listing}")
    raise PoseFormatError(path, f"video must be an index or a file name, got {selector!r}; videos: {listing}")


def _video_filename(video) -> str:
    """Stored file name of a sleap-io Video (first image for image sequences)."""
    filename = video.filename
    if isinstance(filename, (list, tuple)):
        return str(filename[0]) if filename else ""
    return str(filename)


def _resolve_slp_video(video, path: Path) -> tuple[Path | None, dict]:
    """Find the video file of a sleap-io Video without opening it."""
    info: dict = {"video_stored_path": _video_filename(video)}
    if isinstance(video.filename, (list, tuple)):
        # A PoseRecord holds one video file; an image folder cannot be attached.
        logger.info("%s: video is an image sequence (%d images); video_path=None", path, len(video.filename))
        info["image_sequence"] = True
        return None, info
    stored = str(video.filename)
    meta = video.backend_metadata or {}
    embedded = meta.get("filename") == "." or bool(meta.get("has_embedded_images"))
    if not embedded:
        try:
            embedded = Path(stored).resolve() == path.resolve()
        except OSError:
            embedded = False
    if embedded:
        info["embedded_images"] = True
        source = getattr(video, "source_video", None)
        if source is None or isinstance(source.filename, (list, tuple)):
            logger.info("%s: frames are embedded in the .slp and no source video is recorded; "
                        "video_path=None", path)
            return None, info
        stored = str(source.filename)
        info["video_stored_path"] = stored
    return _resolve_stored_video(stored, path), info


def _read_slp_tables(path: Path) -> tuple[float, dict[str, np.ndarray]]:
    """Format version and the four instance/point tables of a ``.slp``, read with h5py.

    h5py rather than sleap-io's instance objects: whole-column reads let instances be
    placed with numpy indexing (predictions.slp, 6000 instances: ~0.02 s against
    ~0.2 s for sleap-io's eager load and ``Labels.numpy``).
    """
    with _open_hdf5(path, "SLEAP .slp") as h5:
        missing = [name for name in ("metadata", *_SLP_TABLES) if name not in h5]
        if missing:
            listing = ", ".join(repr(m) for m in missing)
            raise PoseFormatError(path, f"not a SLEAP .slp file: missing {listing}")
        try:
            format_id = float(h5["metadata"].attrs.get("format_id", 1.0))
        except (TypeError, ValueError) as exc:
            raise PoseFormatError(path, f"metadata attribute 'format_id' is not a number ({exc})") from exc
        tables = {name: _read_dataset(h5, name, path) for name in _SLP_TABLES}
    for table, fields in _SLP_FIELDS.items():
        absent = [f for f in fields if f not in (tables[table].dtype.names or ())]
        if absent:
            raise PoseFormatError(path, f"table '{table}' lacks field(s) {absent}")
    return format_id, tables


def _video_instances(tables: dict[str, np.ndarray], video_index: int,
                     path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the ``instances`` table that belong to one video, and their frame indices."""
    frames = tables["frames"]
    frame_rows = np.flatnonzero(frames["video"].astype(np.int64) == video_index)
    starts = frames["instance_id_start"].astype(np.int64)[frame_rows]
    ends = frames["instance_id_end"].astype(np.int64)[frame_rows]
    if len(frame_rows) and (np.any(ends < starts) or int(ends.max()) > len(tables["instances"])):
        raise PoseFormatError(path, "table 'frames' points past the end of 'instances'; file truncated?")
    per_frame = ends - starts
    # The ranges starts[i]..ends[i] concatenated, without a Python loop over frames.
    offsets = np.repeat(starts - np.cumsum(np.r_[0, per_frame[:-1]]), per_frame)
    rows = offsets + np.arange(int(per_frame.sum()), dtype=np.int64)
    frame_idx = np.repeat(frames["frame_idx"].astype(np.int64)[frame_rows], per_frame)
    return rows, frame_idx


def _choose_instances(inst: np.ndarray, frame: np.ndarray, rank: np.ndarray, prefer: str,
                      path: Path) -> tuple[np.ndarray, dict]:
    """Mask of the instances to keep: one per frame and track, ``prefer`` settling pairs.

    A user and a predicted instance are a pair when they share frame and track, or
    when the user instance was made from that prediction (``from_predicted``).
    """
    kind = inst["instance_type"].astype(np.int64)
    track = inst["track"].astype(np.int64)
    tracked = track >= 0
    frame_track = frame * (int(track.max(initial=0)) + 2) + track
    keep = np.ones(len(inst), dtype=bool)

    loser = _PREDICTED if prefer == "user" else _USER
    paired = np.intersect1d(frame_track[tracked & (kind == _USER)],
                            frame_track[tracked & (kind == _PREDICTED)])
    keep &= ~(tracked & (kind == loser) & np.isin(frame_track, paired))
    from_predicted = inst["from_predicted"].astype(np.int64)
    linked_users = np.flatnonzero((kind == _USER) & (from_predicted >= 0))
    if len(linked_users):  # rare (proofread projects): a loop over those few is fine
        row_of_id = {int(i): r for r, i in enumerate(inst["instance_id"].astype(np.int64))}
        for user in linked_users:
            pred = row_of_id.get(int(from_predicted[user]))
            if pred is not None and frame[pred] == frame[user] and kind[pred] == _PREDICTED:
                keep[pred if prefer == "user" else user] = False
    n_paired = int((~keep).sum())

    # Two instances still on one frame and track would not fit the grid: keep the best ranked.
    candidates = np.flatnonzero(keep & tracked)
    order = candidates[np.lexsort((-rank[candidates], frame_track[candidates]))]
    duplicate = np.zeros(len(order), dtype=bool)
    duplicate[1:] = frame_track[order][1:] == frame_track[order][:-1]
    keep[order[duplicate]] = False
    if duplicate.any():
        logger.warning("%s: %d extra instance(s) on an already occupied frame and track dropped "
                       "(kept the highest score)", path, int(duplicate.sum()))
    return keep, {"dropped_paired_instances": n_paired, "dropped_duplicate_instances": int(duplicate.sum())}


def _assign_slots(inst: np.ndarray, frame: np.ndarray, rank: np.ndarray, keep: np.ndarray,
                  track_names: list[str], path: Path) -> tuple[np.ndarray, list[str]]:
    """Individual index of each kept instance, and the individuals' names.

    Tracks that occur come first, in file order; then ``untracked0``, ... filled in
    each frame by decreasing rank.
    """
    track = inst["track"].astype(np.int64)
    tracked = keep & (track >= 0)
    used_tracks = np.unique(track[tracked])
    slot_of_track = np.full(len(track_names), -1, dtype=np.int64)
    slot_of_track[used_tracks] = np.arange(len(used_tracks))
    slot = np.full(len(inst), -1, dtype=np.int64)
    slot[tracked] = slot_of_track[track[tracked]]

    untracked = np.flatnonzero(keep & (track < 0))
    n_untracked = 0
    if len(untracked):
        order = untracked[np.lexsort((-rank[untracked], frame[untracked]))]
        group_starts = np.r_[0, np.flatnonzero(np.diff(frame[order])) + 1]
        group_sizes = np.diff(np.r_[group_starts, len(order)])
        rank_in_frame = np.arange(len(order)) - np.repeat(group_starts, group_sizes)
        slot[order] = len(used_tracks) + rank_in_frame
        n_untracked = int(group_sizes.max())
    names = [track_names[t] for t in used_tracks] + [f"untracked{i}" for i in range(n_untracked)]
    return slot, _unique_names(names, "track", path)


def _frame_count(video, max_labeled: int, path: Path) -> tuple[int, str]:
    """Length of the frame grid: the stored video length if the .slp has it."""
    shape = video.shape  # from the stored backend metadata; the video is not opened
    if shape is None or not shape[0]:
        return max_labeled + 1, "last labelled frame"
    n_frames = int(shape[0])
    if max_labeled >= n_frames:
        logger.warning("%s: labelled frame %d is beyond the stored video length %d; grid extended",
                       path, max_labeled, n_frames)
        n_frames = max_labeled + 1
    return n_frames, "video metadata"


def _instance_points(inst: np.ndarray, points: np.ndarray, n_nodes: int, table: str, format_id: float,
                     path: Path) -> tuple[np.ndarray, np.ndarray]:
    """xy ``(n, n_nodes, 2)`` (NaN where missing) and scores ``(n, n_nodes)`` of instances."""
    starts = inst["point_id_start"].astype(np.int64)
    counts = inst["point_id_end"].astype(np.int64) - starts
    if np.any(counts != n_nodes):
        bad = int(np.flatnonzero(counts != n_nodes)[0])
        raise PoseFormatError(path, f"instance with {counts[bad]} points in '{table}' but its skeleton has "
                                    f"{n_nodes} nodes")
    if len(starts) and int((starts + counts).max()) > len(points):
        raise PoseFormatError(path, f"instances point past the end of '{table}' ({len(points)} rows); "
                                    "file truncated?")
    pts = points[starts[:, None] + np.arange(n_nodes, dtype=np.int64)]
    xy = np.stack([pts["x"], pts["y"]], axis=-1).astype(np.float64)
    if format_id < 1.1:
        # Before format 1.1 SLEAP put (0, 0) at a pixel's corner; sleap-io shifts the same way.
        xy -= 0.5
    # SLEAP keeps the position of a point marked not visible (occluded/unlabelled): missing.
    xy[~pts["visible"].astype(bool)] = np.nan
    if "score" in (pts.dtype.names or ()):
        scores = pts["score"].astype(np.float64)
    else:  # user points: ground truth
        scores = np.ones(pts.shape, dtype=np.float64)
    return xy, scores


def read_slp(path: str | os.PathLike, *, video: int | str | os.PathLike | None = None,
             prefer: str = "user") -> PoseRecord:
    """Read one video's instances from a SLEAP ``.slp`` labels or predictions file.

    Parameters
    ----------
    path : str or path-like
        The ``.slp`` file.
    video : int or str or path-like, optional
        Which video to read when the file holds several: an index into the file's
        video list, or a stored file name / file stem. Default: the first video
        (an INFO log lists the others).
    prefer : {"user", "predicted"}
        When a user-labelled and a predicted instance describe the same animal on
        the same frame (same track, or the user instance was made from that
        prediction), keep the user one (ground truth, default) or the predicted one.

    Returns
    -------
    PoseRecord
        ``individuals`` are the file's tracks that occur in this video, in the file's
        track order, followed by ``untracked0``, ``untracked1``, ... holding the
        instances without a track in each frame ordered by instance score (highest
        first; user instances, which have no score, first). Confidence is the
        predicted point score (SLEAP scores can exceed 1), 1.0 for user points and
        NaN for missing points. Frames run ``0..n-1`` with ``n`` the video length
        recorded in the file if any, else the last labelled frame + 1. The video is
        looked for but not opened.

    Raises
    ------
    PoseFormatError
        The file is not a readable ``.slp``, a table is inconsistent, or ``video``
        matches no video.
    """
    path = Path(path)
    if prefer not in ("user", "predicted"):
        raise ValueError(f"prefer must be 'user' or 'predicted', got {prefer!r}")
    format_id, tables = _read_slp_tables(path)
    # sleap-io for the JSON metadata (videos, tracks, skeletons, provenance) and its
    # version quirks; lazy mode builds no per-instance objects.
    try:
        labels = sio.load_slp(str(path), open_videos=False, lazy=True)
    except Exception as exc:  # sleap-io raises many kinds (KeyError, ValueError, OSError) for bad files
        raise PoseFormatError(path, f"sleap-io cannot read this .slp ({type(exc).__name__}: {exc})") from exc
    video_index = _select_video(labels, video, path)
    sio_video = labels.videos[video_index]

    rows, frame = _video_instances(tables, video_index, path)
    inst = tables["instances"][rows]
    kind = inst["instance_type"].astype(np.int64)
    unknown = ~np.isin(kind, (_USER, _PREDICTED))
    if unknown.any():
        unknown_types = sorted(set(kind[unknown].tolist()))
        raise PoseFormatError(path, f"unknown instance_type {unknown_types} in 'instances'")
    track_names = [t.name for t in labels.tracks]
    if len(inst) and int(inst["track"].max()) >= len(track_names):
        raise PoseFormatError(path, f"instance refers to track {int(inst['track'].max())}, "
                                    f"file has {len(track_names)}")
    skeleton_of = inst["skeleton"].astype(np.int64)
    if len(inst) and int(skeleton_of.max()) >= len(labels.skeletons):
        raise PoseFormatError(path, f"instance refers to skeleton {int(skeleton_of.max())}, "
                                    f"file has {len(labels.skeletons)}")

    # Rank, higher is better. User instances carry no real score (NaN from SLEAP, 0 from
    # sleap-io): they rank first, as ground truth; an unscored prediction ranks last.
    score = inst["score"].astype(np.float64)
    rank = np.where(kind == _USER, np.inf, np.where(np.isnan(score), -np.inf, score))
    keep, drop_counts = _choose_instances(inst, frame, rank, prefer, path)
    slot, individuals = _assign_slots(inst, frame, rank, keep, track_names, path)

    # Bodyparts: one skeleton in practice; several are merged by node name.
    skeleton_ids = np.unique(skeleton_of[keep]).tolist()
    if not skeleton_ids and labels.skeletons:  # no instances: still name the bodyparts
        skeleton_ids = [len(labels.skeletons) - 1]
    bodyparts: list[str] = []
    edges: list[tuple[str, str]] = []
    for s in skeleton_ids:
        bodyparts += [n for n in labels.skeletons[s].node_names if n not in bodyparts]
        edges += [tuple(e) for e in labels.skeletons[s].edge_names if tuple(e) not in edges]
    if len(skeleton_ids) > 1:
        logger.info("%s: this video's instances use %d skeletons; bodyparts merged by node name",
                    path, len(skeleton_ids))

    frames_of_video = tables["frames"]["frame_idx"][tables["frames"]["video"] == video_index].astype(np.int64)
    n_frames, n_frames_source = _frame_count(sio_video, int(frames_of_video.max(initial=-1)), path)
    keypoints = np.full((n_frames, len(individuals), len(bodyparts), 2), np.nan, dtype=np.float32)
    confidence = np.full(keypoints.shape[:3], np.nan, dtype=np.float32)
    for s in skeleton_ids:
        columns = np.array([bodyparts.index(n) for n in labels.skeletons[s].node_names], dtype=np.int64)
        for instance_kind, table in ((_USER, "points"), (_PREDICTED, "pred_points")):
            chosen = np.flatnonzero(keep & (kind == instance_kind) & (skeleton_of == s))
            if len(chosen):
                xy, scores = _instance_points(inst[chosen], tables[table], len(columns), table,
                                              format_id, path)
                where = (frame[chosen][:, None], slot[chosen][:, None], columns[None, :])
                keypoints[where] = xy
                confidence[where] = scores

    video_path, video_info = _resolve_slp_video(sio_video, path)
    fps = sio_video.fps
    provenance = {k: v for k, v in dict(labels.provenance or {}).items() if k != "filename"}
    metadata = {
        "labeled_frames": int(len(np.unique(frames_of_video))),
        "n_frames_source": n_frames_source,
        "video_index": video_index,
        "n_videos": len(labels.videos),
        "format_id": format_id,
        "n_user_instances": int(np.sum(kind == _USER)),
        "n_predicted_instances": int(np.sum(kind == _PREDICTED)),
        "prefer": prefer,
        **drop_counts,
        "provenance": provenance,
        **video_info,
    }
    return PoseRecord(
        keypoints=keypoints,
        confidence=confidence,
        individuals=individuals,
        bodyparts=bodyparts,
        fps=float(fps) if fps is not None and np.isfinite(fps) and fps > 0 else None,
        source=path,
        video_path=video_path,
        scorer=_scorer_from_provenance(provenance),
        source_format="sleap-slp",
        skeleton=edges,
        metadata=metadata,
    )


# --------------------------------------------------------------------------- analysis h5


def _dims_of(h5: h5py.File, name: str, default: tuple[str, ...], path: Path) -> tuple[str, ...]:
    """Axis names of a dataset: sleap-io writes a JSON ``dims`` attribute, SLEAP does not."""
    raw = h5[name].attrs.get("dims")
    if raw is None:
        return default
    try:
        dims = tuple(json.loads(_decode(raw)))
    except (json.JSONDecodeError, TypeError) as exc:
        raise PoseFormatError(path, f"dataset '{name}' has an unreadable 'dims' attribute {raw!r}") from exc
    return dims


def _to_canonical(array: np.ndarray, dims: tuple[str, ...], want: tuple[str, ...], name: str,
                  path: Path) -> np.ndarray:
    """Transpose ``array`` whose axes are named ``dims`` into the order ``want``."""
    if array.ndim != len(want) or sorted(dims) != sorted(want):
        raise PoseFormatError(
            path, f"dataset '{name}' has shape {array.shape} (axes {list(dims)}), expected axes {list(want)}"
        )
    return np.transpose(array, [dims.index(d) for d in want])


def _strings(array: np.ndarray) -> list[str]:
    """Decoded strings of an HDF5 string array."""
    return [_decode(v) for v in np.asarray(array).reshape(-1)]


def _find_video_beside(path: Path) -> Path | None:
    """Find the video of an analysis file that does not store its path.

    First a video named like the file (see
    :func:`dlc_lookagain.io.video.find_video_beside`: SLEAP suffixes removed, or the
    ``<labels>.<NNN>_<video stem>`` part of SLEAP's export name), then the only
    video in the folder, which is how SLEAP's docs example ships
    (``predictions.analysis.h5`` beside one ``.mp4``).
    """
    found = find_video_beside(path)
    if found is not None:
        logger.info("%s: no stored video path; using %s (name matches)", path, found.name)
        return absolute_path(found)
    videos = sorted(p for p in path.parent.iterdir() if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file())
    if len(videos) == 1:
        logger.info("%s: no stored video path; using %s, the only video in its folder", path, videos[0].name)
        return absolute_path(videos[0])
    logger.info("%s: no stored video path, no video named like it and %d videos beside it; video_path=None",
                path, len(videos))
    return None


def _analysis_arrays(h5: h5py.File,
                     path: Path) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, tuple]:
    """``tracks`` as (frames, tracks, nodes, 2), ``point_scores`` as (frames, tracks,
    nodes) and ``track_occupancy`` as (frames, tracks), whatever their stored axis order."""
    if h5["tracks"].ndim != 4:
        raise PoseFormatError(path, f"dataset 'tracks' has shape {h5['tracks'].shape}, expected 4 axes")
    default_dims = _MATLAB_TRACKS_DIMS if h5.attrs.get("transpose", True) else _UNTRANSPOSED_TRACKS_DIMS
    dims = _dims_of(h5, "tracks", default_dims, path)
    xy = _to_canonical(_read_dataset(h5, "tracks", path), dims, _ANALYSIS_CANONICAL_DIMS, "tracks", path)
    if xy.shape[3] != 2:
        raise PoseFormatError(path, f"dataset 'tracks' has {xy.shape[3]} values on its xy axis, expected 2")

    scores = None
    if "point_scores" in h5:
        score_dims = _dims_of(h5, "point_scores", tuple(d for d in dims if d != "xy"), path)
        scores = _to_canonical(_read_dataset(h5, "point_scores", path), score_dims,
                               ("frame", "track", "node"), "point_scores", path)
        if scores.shape != xy.shape[:3]:
            raise PoseFormatError(path, f"dataset 'point_scores' has shape {scores.shape} as "
                                        f"(frames, tracks, nodes), 'tracks' has {xy.shape[:3]}")
    occupancy = None
    if "track_occupancy" in h5:
        # SLEAP writes occupancy as (frames, tracks) even when it transposes everything else.
        occupancy_dims = _dims_of(h5, "track_occupancy", ("frame", "track"), path)
        occupancy = _to_canonical(_read_dataset(h5, "track_occupancy", path), occupancy_dims,
                                  ("frame", "track"), "track_occupancy", path).astype(bool)
        if occupancy.shape != xy.shape[:2]:
            raise PoseFormatError(path, f"dataset 'track_occupancy' has shape {occupancy.shape} as (frames, "
                                        f"tracks), 'tracks' has {xy.shape[:2]}")
    return xy, scores, occupancy, dims


def _analysis_names(h5: h5py.File, n_tracks: int, n_nodes: int,
                    path: Path) -> tuple[list[str], list[str], list[tuple[str, str]]]:
    """Track names (``track0``, ... when the file has none), node names and skeleton edges."""
    bodyparts = _strings(_read_dataset(h5, "node_names", path))
    if len(bodyparts) != n_nodes:
        raise PoseFormatError(path, f"dataset 'node_names' has {len(bodyparts)} names but 'tracks' has "
                                    f"{n_nodes} nodes")
    individuals = _strings(_read_dataset(h5, "track_names", path)) if "track_names" in h5 else []
    if not individuals:  # untracked (single-animal) exports store an empty track_names
        individuals = [f"track{i}" for i in range(n_tracks)]
    elif len(individuals) != n_tracks:
        raise PoseFormatError(path, f"dataset 'track_names' has {len(individuals)} names but 'tracks' has "
                                    f"{n_tracks} tracks")
    edges: list[tuple[str, str]] = []
    if "edge_names" in h5 and h5["edge_names"].size:
        names = np.asarray(_read_dataset(h5, "edge_names", path)).reshape(-1, 2)
        edges = [(_decode(a), _decode(b)) for a, b in names]
    elif "edge_inds" in h5 and h5["edge_inds"].size:
        inds = np.asarray(_read_dataset(h5, "edge_inds", path)).reshape(-1, 2).astype(int)
        if inds.min() < 0 or inds.max() >= n_nodes:
            raise PoseFormatError(path, f"dataset 'edge_inds' refers to node {int(inds.max())}, "
                                        f"file has {n_nodes}")
        edges = [(bodyparts[a], bodyparts[b]) for a, b in inds]
    return _unique_names(individuals, "track", path), bodyparts, edges


def _analysis_context(h5: h5py.File, path: Path) -> dict:
    """Stored video path, labels path, video index, provenance and fps, where present."""
    def optional_text(name: str) -> str | None:
        return _decode(_read_dataset(h5, name, path)) if name in h5 else None

    provenance: dict = {}
    if "provenance" in h5:
        try:
            provenance = json.loads(optional_text("provenance") or "{}")
        except json.JSONDecodeError:
            logger.warning("%s: dataset 'provenance' is not JSON; ignored", path)
    fps = None
    backend = h5.attrs.get("video_backend_metadata")  # written by sleap-io's exporter only
    if backend is not None:
        try:
            fps = json.loads(_decode(backend)).get("fps")
        except (json.JSONDecodeError, AttributeError):
            fps = None
    return {
        "video_stored_path": optional_text("video_path"),
        "labels_path": optional_text("labels_path"),
        "video_index": int(np.asarray(_read_dataset(h5, "video_ind", path))) if "video_ind" in h5 else None,
        "provenance": provenance if isinstance(provenance, dict) else {},
        "fps": float(fps) if isinstance(fps, (int, float)) and np.isfinite(fps) and fps > 0 else None,
    }


def _missing_tracks(h5: h5py.File) -> str:
    """What a file without the ``tracks`` dataset is, for the error message."""
    present = ", ".join(sorted(h5)) or "none"
    if "instances" in h5 and "frames" in h5:
        what = " (a SLEAP .slp labels file, not an analysis export)"
    elif "node_names" in h5 or "track_occupancy" in h5:
        what = (": this is a SLEAP analysis HDF5 file without its keypoint coordinates, so it holds no "
                "poses; export it again from SLEAP (File > Export Analysis HDF5)")
    else:
        what = " (not a SLEAP analysis file)"
    return f"dataset 'tracks' is missing{what}; datasets present: {present}"


def read_analysis_h5(path: str | os.PathLike) -> PoseRecord:
    """Read a SLEAP analysis HDF5 export (``*.analysis.h5``).

    Both layouts are read: SLEAP's original four datasets (``tracks``,
    ``track_occupancy``, ``node_names``, ``track_names``) and the newer one with
    ``point_scores``, ``instance_scores``, ``edge_inds``, ``video_path`` and so on,
    including sleap-io's exports whose axis order is named by a ``dims`` attribute.

    Parameters
    ----------
    path : str or path-like
        The analysis HDF5 file.

    Returns
    -------
    PoseRecord
        One individual per stored track (``track0``, ... when the file has no track
        names). Confidence is the point score; points without a score (no
        ``point_scores`` dataset, or user-labelled instances, which SLEAP exports
        without scores) get 1.0. The video comes from ``video_path`` if stored, else
        is looked for beside the file; it is not opened.

    Raises
    ------
    PoseFormatError
        The file is not HDF5, is truncated, or a dataset is missing or has the
        wrong shape; the message names the file and the dataset.
    """
    path = Path(path)
    # h5py rather than sleap-io's analysis reader: that one needs the newer layout's
    # score datasets and builds one Python object per instance.
    with _open_hdf5(path, "SLEAP analysis HDF5") as h5:
        if "tracks" not in h5:
            raise PoseFormatError(path, _missing_tracks(h5))
        if "node_names" not in h5:
            raise PoseFormatError(path, "dataset 'node_names' is missing, so keypoints cannot be named")
        xy, scores, occupancy, dims = _analysis_arrays(h5, path)
        individuals, bodyparts, edges = _analysis_names(h5, xy.shape[1], xy.shape[2], path)
        context = _analysis_context(h5, path)

    keypoints = xy.astype(np.float32)
    missing = np.isnan(keypoints).any(axis=-1)
    if occupancy is not None:
        outside = ~occupancy[:, :, None] & ~missing
        if outside.any():
            logger.warning("%s: %d points lie in frames their track does not occupy; dropped",
                           path, int(outside.sum()))
            missing |= outside
    if scores is None:
        confidence = np.ones(missing.shape, dtype=np.float32)
        unscored = ~missing
    else:
        confidence = scores.astype(np.float32)
        # SLEAP exports user-labelled instances without scores: they are ground truth.
        unscored = np.isnan(confidence) & ~missing
        confidence[unscored] = 1.0
        if unscored.any():
            logger.info("%s: %d present points have no score (user-labelled); confidence set to 1.0",
                        path, int(unscored.sum()))
    keypoints[missing] = np.nan

    stored_video = context.pop("video_stored_path")
    video_path = _resolve_stored_video(stored_video, path) if stored_video else _find_video_beside(path)
    occupied = occupancy if occupancy is not None else ~missing.all(axis=2)
    fps = context.pop("fps")
    metadata = {
        "layout": "old" if scores is None else "new",
        "labeled_frames": int(occupied.any(axis=1).sum()),
        "unscored_points": int(unscored.sum()),
        "video_stored_path": stored_video,
        "tracks_dims": list(dims),
        **context,
    }
    return PoseRecord(
        keypoints=keypoints,
        confidence=confidence,
        individuals=individuals,
        bodyparts=bodyparts,
        fps=fps,
        source=path,
        video_path=video_path,
        scorer=_scorer_from_provenance(context["provenance"]),
        source_format="sleap-analysis-h5",
        skeleton=edges,
        metadata=metadata,
    )


# --------------------------------------------------------------------------- track relinking


def consolidate_tracks(record: PoseRecord, n_individuals: int) -> PoseRecord:
    """Relink fragmented tracks into a fixed number of animals (opt-in).

    Trackers start a new track whenever they lose an animal, so a two-fly video
    can come out with dozens of tracks. Each track is a fragment; fragments are
    taken in order of their first frame and each goes to the slot that is free
    during all of the fragment's frames and whose last position before the
    fragment starts is nearest to the fragment's first position (centroid of its
    present keypoints). An empty slot is used only when no occupied slot is free.
    A fragment that overlaps every slot is dropped.

    Parameters
    ----------
    record : PoseRecord
        Any record; its individuals are treated as fragments.
    n_individuals : int
        Number of animals (slots) to keep.

    Returns
    -------
    PoseRecord
        A new record with individuals ``animal0``, ``animal1``, ...;
        ``metadata["dropped_fragments"]`` counts dropped fragments and
        ``metadata["slot_tracks"]`` lists the source tracks of each animal.
    """
    if int(n_individuals) < 1:
        raise ValueError(f"n_individuals must be at least 1, got {n_individuals}")
    n_slots = int(n_individuals)
    kp, conf = record.keypoints, record.confidence
    present = ~np.isnan(kp[..., 0])  # (frames, individuals, bodyparts)
    occupied = present.any(axis=2)  # (frames, individuals)

    fragments = [i for i in range(record.n_individuals) if occupied[:, i].any()]
    first_frame = {i: int(np.argmax(occupied[:, i])) for i in fragments}
    fragments.sort(key=lambda i: (first_frame[i], i))

    slot_occupied = np.zeros((record.n_frames, n_slots), dtype=bool)
    slot_members: list[list[int]] = [[] for _ in range(n_slots)]
    out_kp = np.full((record.n_frames, n_slots, record.n_bodyparts, 2), np.nan, dtype=np.float32)
    out_conf = np.full((record.n_frames, n_slots, record.n_bodyparts), np.nan, dtype=np.float32)
    dropped: list[str] = []
    for frag in fragments:
        start = first_frame[frag]
        frag_frames = occupied[:, frag]
        free = [s for s in range(n_slots) if not (slot_occupied[:, s] & frag_frames).any()]
        if not free:
            dropped.append(record.individuals[frag])
            continue
        first_centroid = _centroid(kp, start, frag)
        best, best_distance = None, np.inf
        for s in free:
            before = np.flatnonzero(slot_occupied[:start, s])
            if not len(before):
                continue
            distance = float(np.hypot(*(first_centroid - _centroid(out_kp, before[-1], s))))
            if distance < best_distance:
                best, best_distance = s, distance
        if best is None:
            # No free slot has a position before this fragment starts: take an empty one,
            # else any free slot (its points all come later, so no position to compare).
            empty = [s for s in free if not slot_occupied[:, s].any()]
            best = empty[0] if empty else free[0]
        slot_occupied[:, best] |= frag_frames
        slot_members[best].append(frag)
        out_kp[frag_frames, best] = kp[frag_frames, frag]
        out_conf[frag_frames, best] = conf[frag_frames, frag]

    if dropped:
        logger.info("%s: %d of %d track fragments overlap all %d slots and were dropped",
                    record.source, len(dropped), len(fragments), n_slots)
    individuals = [f"animal{i}" for i in range(n_slots)]
    metadata = {
        **record.metadata,
        "dropped_fragments": len(dropped),
        "dropped_fragment_names": dropped,
        "slot_tracks": {name: [record.individuals[i] for i in members]
                        for name, members in zip(individuals, slot_members)},
        "consolidated_from": list(record.individuals),
    }
    return dataclasses.replace(record, keypoints=out_kp, confidence=out_conf, individuals=individuals,
                               metadata=metadata)


def _centroid(keypoints: np.ndarray, frame: int, individual: int) -> np.ndarray:
    """Centroid (x, y) of the present keypoints of one individual in one frame."""
    pts = keypoints[frame, individual]
    pts = pts[~np.isnan(pts[:, 0])]
    return pts.mean(axis=0).astype(np.float64)
