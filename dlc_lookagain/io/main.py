"""One entry point per job: ``load_pose`` for a file, ``load_project`` for a DLC project.

Readers live in one module per format (:mod:`~dlc_lookagain.io.dlc`,
:mod:`~dlc_lookagain.io.sleap`); this module sniffs the format, reads, and attaches
the recording's video (:mod:`~dlc_lookagain.io.video`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import h5py
from tqdm.auto import tqdm

from dlc_lookagain.errors import PoseFormatError, option_text
from dlc_lookagain.io.dlc import parse_dlc_output_name, read_dlc
from dlc_lookagain.io.project import AnalyzedVideo, DLCProject, find_analyzed_videos, list_videos, read_dlc_config
from dlc_lookagain.io.record import PoseRecord
from dlc_lookagain.io.sleap import read_analysis_h5, read_slp
from dlc_lookagain.io.video import attach_video, find_video_beside

logger = logging.getLogger(__name__)

POSE_FORMATS = {
    "dlc-h5": "DeepLabCut analyzed video or labels (.h5)",
    "dlc-csv": "DeepLabCut analyzed video or labels (.csv)",
    "sleap-slp": "SLEAP labels or predictions (.slp)",
    "sleap-analysis-h5": "SLEAP analysis export (.analysis.h5)",
}


def detect_pose_format(path: str | Path) -> str:
    """Name the format of a pose file by its extension and, for HDF5, its content.

    Returns one of the keys of :data:`POSE_FORMATS`.

    Raises
    ------
    PoseFormatError
        For a missing file, a folder, or a format that is none of these.
    """
    path = Path(path)
    if path.is_dir():
        raise PoseFormatError(path, "is a folder; give a pose file (.h5, .csv, .slp) or a DLC config.yaml")
    if not path.is_file():
        raise PoseFormatError(path, "pose file not found")
    suffix = path.suffix.lower()
    if suffix == ".slp":
        return "sleap-slp"
    if suffix == ".csv":
        return "dlc-csv"
    if suffix in (".h5", ".hdf5"):
        try:
            with h5py.File(path, "r") as h5:
                if _looks_like_sleap_analysis(h5):
                    return "sleap-analysis-h5"
        except OSError as exc:
            raise PoseFormatError(path, f"not a readable HDF5 file (truncated or corrupt?): {exc}") from exc
        return "dlc-h5"
    if suffix in (".yaml", ".yml"):
        raise PoseFormatError(path, "is a project config; use load_project(config_path) for DLC projects")
    raise PoseFormatError(
        path, f"unknown pose file type {suffix or '(no extension)'!r}; expected one of .h5, .csv, .slp, .analysis.h5"
    )


#: Datasets only a SLEAP analysis export has (DLC's pandas layout stores groups of tables).
_SLEAP_ANALYSIS_DATASETS = ("node_names", "track_names", "track_occupancy", "point_scores", "instance_scores")


def _looks_like_sleap_analysis(h5: h5py.File) -> bool:
    """A SLEAP analysis export, also one whose ``tracks`` dataset is missing or damaged (its reader
    then names what is missing). DLC's maDLC ``tracks`` is a pandas group, not a dataset."""
    tracks = h5.get("tracks")
    if isinstance(tracks, h5py.Dataset) and tracks.ndim == 4:
        return True
    if isinstance(tracks, h5py.Group):
        return False
    return any(isinstance(h5.get(name), h5py.Dataset) for name in _SLEAP_ANALYSIS_DATASETS)


def load_pose(path: str | Path, video: str | Path | bool | None = None, *, tolerance: int = 1) -> PoseRecord:
    """Read one pose file and attach its video.

    Parameters
    ----------
    path : str or Path
        A DeepLabCut ``.h5``/``.csv`` (analyzed video or ``CollectedData`` labels),
        a SLEAP ``.slp`` or a SLEAP analysis ``.h5``.
    video : str, Path, bool or None
        The recording's video. None looks for it: the path stored in a SLEAP file,
        else a video beside the pose file with the same stem (DLC: the part before
        ``DLC_``). False skips video lookup (keypoints only, no warning).
    tolerance : int
        Largest pose-vs-video frame count difference accepted with a warning.

    Returns
    -------
    PoseRecord
        With ``video_path`` set when a matching video was found, else None.

    Raises
    ------
    PoseFormatError
        If the file cannot be read or is inconsistent (the message names the file).
    VideoMismatchError
        If the video's frame count differs from the pose by more than ``tolerance``.
    """
    path = Path(path).expanduser()
    fmt = detect_pose_format(path)
    if fmt == "sleap-slp":
        record = read_slp(path)
    elif fmt == "sleap-analysis-h5":
        record = read_analysis_h5(path)
    else:
        record = read_dlc(path)

    if video is False or record.frame_names is not None:
        # Manual-label tables index labeled images, not a video's frames.
        return record
    if video is None or video is True:
        video = record.video_path
        if video is None:
            parsed = parse_dlc_output_name(path)
            video = find_video_beside(path, parsed.video_stem if parsed else None)
    return attach_video(record, video, tolerance=tolerance, pose_frame_size=_pose_frame_size(record))


def _pose_frame_size(record: PoseRecord) -> tuple[int, int] | None:
    """(width, height) the poses were estimated in, if the reader learned it (DLC meta pickle)."""
    dims = record.metadata.get("frame_dimensions")
    if dims is not None and len(dims) == 2:
        height, width = (int(d) for d in dims)
        return width, height
    return None


def load_project(
    config_path: str | Path,
    videos: list[str | Path] | None = None,
    *,
    videotype: str = "",
    destfolder: str | Path | None = None,
    shuffle: int | None = None,
    filtered: bool | None = None,
    track_method: str | None = None,
    tolerance: int = 1,
    on_error: str = "raise",
    progress: bool = True,
) -> list[PoseRecord]:
    """Read the pose of every analyzed video of a DeepLabCut project.

    Parameters
    ----------
    config_path : str or Path
        The project's ``config.yaml`` (or its folder). Never modified.
    videos : list of path, optional
        Only these videos (or folders of videos); default: the project's videos
        (``video_sets``, else the project's ``videos/`` folder).
    videotype : str
        Only videos with this extension, as in DeepLabCut (``"mp4"``).
    destfolder : path, optional
        Where DLC wrote the analyzed files, if not beside the videos.
    shuffle, filtered, track_method
        Pick among several outputs of one video (see
        :func:`dlc_lookagain.io.dlc.choose_dlc_output`).
    tolerance : int
        Pose-vs-video frame count difference accepted with a warning.
    on_error : {"raise", "skip"}
        What to do with a recording whose pose or video cannot be used: raise, or
        log the error and go on with the others (a night's batch should not stop on
        one bad file; if none can be read, the first error is raised anyway).
    progress : bool
        Show a progress bar while reading (when there are several videos).

    Returns
    -------
    list of PoseRecord
        One per analyzed video, each with its video attached.

    Raises
    ------
    PoseFormatError
        If the config cannot be read or no video of the project has been analyzed.
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    project, todo = find_project_recordings(
        config_path, videos, videotype=videotype, destfolder=destfolder,
        shuffle=shuffle, filtered=filtered, track_method=track_method,
    )
    records, errors = [], []
    for pair in tqdm(todo, desc="reading poses", unit="video", disable=not progress or len(todo) < 2):
        try:
            records.append(load_analyzed_video(pair, project, tolerance=tolerance))
        except PoseFormatError as exc:
            if on_error == "raise":
                raise
            logger.error("%s (skipped)", exc)
            errors.append(exc)
    if not records:
        raise errors[0]
    return records


def find_project_recordings(
    config_path: str | Path,
    videos: list[str | Path] | None = None,
    *,
    videotype: str = "",
    destfolder: str | Path | None = None,
    shuffle: int | None = None,
    filtered: bool | None = None,
    track_method: str | None = None,
) -> tuple[DLCProject, list[AnalyzedVideo]]:
    """The project and its analyzed videos (each with its chosen pose file), nothing read yet.

    Videos without a DLC output are logged; no analyzed video at all is a
    :class:`PoseFormatError`. Arguments as in :func:`load_project`.
    """
    project = read_dlc_config(config_path)
    pairs = find_analyzed_videos(
        project, videos, videotype=videotype, destfolder=destfolder,
        shuffle=shuffle, filtered=filtered, track_method=track_method,
    )
    not_analyzed = [p.name for p in pairs if p.pose_file is None]
    if not_analyzed:
        logger.warning(
            "%s: %d video(s) have no DeepLabCut output yet (run deeplabcut.analyze_videos first): %s",
            project.config_path, len(not_analyzed), ", ".join(not_analyzed),
        )
    todo = [p for p in pairs if p.pose_file is not None]
    if not todo:
        raise PoseFormatError(project.config_path, "no analyzed videos found: " + _why_no_analyzed_video(
            project, pairs, videos, videotype, destfolder))
    return project, todo


def _why_no_analyzed_video(project: DLCProject, pairs, videos, videotype: str, destfolder) -> str:
    """Which of the reasons for "no analyzed videos" it is: no video at all, none of the asked type,
    or videos that DeepLabCut has not analyzed (here)."""
    if pairs:
        where = destfolder or "beside the videos"
        return (f"{len(pairs)} video(s) checked, outputs looked for {where}; run deeplabcut.analyze_videos "
                f"first or pass {option_text('destfolder')}")
    if videotype:
        every = _videos_of_any_type(project, videos)
        if every:
            kinds = ", ".join(sorted({v.suffix.lower() or "(none)" for v in every}))
            return (f"{len(every)} video(s) found ({kinds}) but none matches "
                    f"{option_text('videotype', videotype)}")
    if videos is not None:
        return "no video among " + ", ".join(str(v) for v in ([videos] if isinstance(videos, (str, Path))
                                                                 else videos))
    folder = project.project_dir / "videos"
    listed = (f"none of the {len(project.missing_videos)} video(s) in video_sets was found"
              if project.missing_videos else "video_sets lists none")
    state = "does not exist" if not folder.is_dir() else "holds no video"
    return f"videos folder {folder} {state} and {listed} (moved or renamed?)"


def _videos_of_any_type(project: DLCProject, videos) -> list[Path]:
    """The videos ``find_analyzed_videos`` would consider without a ``videotype``."""
    if videos is None:
        return list(project.videos)
    found: list[Path] = []
    for item in ([videos] if isinstance(videos, (str, Path)) else videos):
        item = Path(item).expanduser()
        found.extend(list_videos(item) if item.is_dir() else [item] if item.is_file() else [])
    return found


def load_analyzed_video(pair: AnalyzedVideo, project: DLCProject, *, tolerance: int = 1) -> PoseRecord:
    """Read the pose file of one project video and attach the video.

    The frame size the poses were estimated in comes from the DLC meta pickle, else
    from the config's ``video_sets`` crop; it lets a rescaled copy of the video be
    matched (see :func:`dlc_lookagain.io.video.attach_video`).
    """
    record = read_dlc(pair.pose_file)
    size = _pose_frame_size(record)
    if size is None and pair.crop is not None:
        x1, x2, y1, y2 = pair.crop
        size = (x2 - x1, y2 - y1)
    record.skeleton = record.skeleton or list(project.skeleton)
    return attach_video(record, pair.video, tolerance=tolerance, pose_frame_size=size)
