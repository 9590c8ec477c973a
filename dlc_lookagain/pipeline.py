"""The analyze job: read -> encode -> gate -> look -> fuse -> write.

Only the *read* stage exists so far: inputs are found, read and validated against
their videos. The behavior model (encode/gate/look/fuse) is not built yet, so
``analyze`` writes no annotations and says so; it never writes placeholder labels.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from dlc_lookagain.io.main import load_pose, load_project
from dlc_lookagain.io.record import PoseRecord

logger = logging.getLogger(__name__)

MODEL_MISSING = (
    "the behavior model is not part of this version yet: inputs were read and checked, "
    "no behavior annotations were written"
)


@dataclass
class RecordingSummary:
    """What ``analyze`` learned about one recording."""

    pose_file: Path
    video: Path | None
    n_frames: int
    fps: float | None
    individuals: list[str]
    n_bodyparts: int
    missing_fraction: float
    video_scale: float
    annotations_written: bool
    outputs: dict

    @classmethod
    def from_record(cls, record: PoseRecord) -> "RecordingSummary":
        return cls(
            pose_file=record.source,
            video=record.video_path,
            n_frames=record.n_frames,
            fps=record.fps,
            individuals=list(record.individuals),
            n_bodyparts=record.n_bodyparts,
            missing_fraction=record.missing_fraction(),
            video_scale=record.video_scale,
            annotations_written=False,
            outputs={},
        )


def read_inputs(
    path: str | Path,
    videos=None,
    *,
    videotype: str = "",
    destfolder: str | Path | None = None,
    shuffle: int | None = None,
    filtered: bool | None = None,
    track_method: str | None = None,
) -> list[PoseRecord]:
    """Read every recording ``analyze`` would process.

    ``path`` is a DeepLabCut ``config.yaml`` (or project folder), a single DLC
    ``.h5``/``.csv``, a SLEAP ``.slp`` or a SLEAP analysis ``.h5``. Recordings
    whose pose or video cannot be used are reported in the log and skipped, so one
    bad file does not stop a night's batch; if none can be read, the first error is
    raised.
    """
    path = Path(path).expanduser()
    if path.is_dir() or path.suffix.lower() in (".yaml", ".yml"):
        return load_project(
            path, videos, videotype=videotype, destfolder=destfolder,
            shuffle=shuffle, filtered=filtered, track_method=track_method, on_error="skip",
        )
    video = videos[0] if isinstance(videos, (list, tuple)) and videos else videos
    return [load_pose(path, video=video)]


def analyze(
    config_path: str | Path,
    videos=None,
    videotype: str = "",
    shuffle: int | None = None,
    destfolder: str | Path | None = None,
    filtered: bool | None = None,
    track_method: str | None = None,
) -> list[RecordingSummary]:
    """Find, read and check every analyzed recording of a pose project.

    Parameters
    ----------
    config_path : str or Path
        A DeepLabCut ``config.yaml`` (or project folder), a DLC ``.h5``/``.csv``,
        a SLEAP ``.slp`` or a SLEAP analysis ``.h5``.
    videos : list of path, optional
        Only these videos (DLC projects), or the video of a single pose file.
    videotype : str
        Only videos with this extension, as in DeepLabCut.
    shuffle, filtered, track_method
        Which DLC output to use when a video has several.
    destfolder : path, optional
        Where DLC wrote its outputs, if not beside the videos.

    Returns
    -------
    list of RecordingSummary
        One per recording read. ``annotations_written`` is False in this version:
        the behavior model is not included yet.
    """
    records = read_inputs(
        config_path, videos, videotype=videotype, destfolder=destfolder,
        shuffle=shuffle, filtered=filtered, track_method=track_method,
    )
    summaries = [RecordingSummary.from_record(r) for r in records]
    for s in summaries:
        video = s.video.name if s.video else "no video (keypoints only)"
        fps = f"{s.fps:.2f} fps" if s.fps else "fps unknown"
        logger.info(
            "%s: %d frames, %s, %d individual(s) %s, %d bodyparts, %.1f%% missing, video: %s",
            s.pose_file.name, s.n_frames, fps, len(s.individuals), s.individuals, s.n_bodyparts,
            100 * s.missing_fraction, video,
        )
    logger.warning("%d recording(s) checked; %s.", len(summaries), MODEL_MISSING)
    return summaries
