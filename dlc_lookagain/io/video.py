"""Video access for the look-again step: probing, sparse sequential reading, pose/video matching.

The classifier looks at a sparse subset of frames (for example 25 %) chosen by a
gate. With inter-frame codecs (H.264, MPEG-4) every frame between two keyframes
must be decoded anyway, so seeking to each chosen frame repeats that work and is
about two orders of magnitude slower than one forward pass. :class:`VideoReader`
therefore makes a single pass: it ``grab()``s (decodes) every frame and
``retrieve()``s (colour-converts and copies) only the requested ones.

Warnings meant for users are logged at WARNING and also issued as
:class:`VideoWarning`, so callers and tests can catch or filter them.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
import sys
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from dlc_lookagain.errors import PoseFormatError, VideoMismatchError
from dlc_lookagain.io.paths import VIDEO_EXTENSIONS
from dlc_lookagain.io.record import PoseRecord

logger = logging.getLogger(__name__)

__all__ = [
    "VideoInfo",
    "VideoReader",
    "VideoWarning",
    "attach_video",
    "find_video_beside",
    "probe_video",
]

# Candidate scale factors for pose estimated on a larger copy of the video, largest first.
_SIMPLE_SCALES = (Fraction(3, 4), Fraction(2, 3), Fraction(1, 2), Fraction(1, 3), Fraction(1, 4))
# Keypoints may stray slightly outside the frame (DLC extrapolates at borders).
_EXTENT_SLACK = 0.02
_EXTENT_PERCENTILE = 99.5
_FPS_REL_TOLERANCE = 0.01
_SLEAP_SUFFIXES = (".predictions", ".analysis", ".slp")
# SLEAP's default analysis export name is "<labels>.<video index>_<video stem>.analysis.h5".
_SLEAP_EXPORT_RE = re.compile(r"\.\d{3}_(?P<video>.+)$")
_DLC_SCORER_RE = re.compile(r"^(?P<video>.+?)(?:DLC_|DeepCut_)")


class VideoWarning(UserWarning):
    """A video problem that does not stop the analysis (off-by-one length, fps, scale, no video)."""


def _warn(message: str) -> None:
    logger.warning(message)
    # Attribute the warning to the first caller outside this module, however deep the helper.
    frame, level = sys._getframe(1), 2
    while frame is not None and frame.f_globals.get("__name__") == __name__:
        frame, level = frame.f_back, level + 1
    warnings.warn(message, VideoWarning, stacklevel=level)


@dataclass(frozen=True)
class VideoInfo:
    """What a video container says about itself.

    Attributes
    ----------
    path : Path
        The video file.
    n_frames : int
        Frame count. Taken from the container (``CAP_PROP_FRAME_COUNT``), which for
        some containers and codecs (AVI without index, variable frame rate, some MKV/WebM)
        is an *estimate* from duration x fps and can be off by a frame or more; when the
        container reports nothing, or with ``probe_video(..., count_frames=True)``, it is the
        exact number of frames decoded. :class:`VideoReader` detects a short video when
        reading.
    fps : float or None
        Frames per second from the container, None if it reports none.
    width, height : int
        Frame size in pixels, as decoded.
    codec : str
        FourCC of the video codec (e.g. ``"h264"``, ``"FMP4"``); empty if unknown.
    """

    path: Path
    n_frames: int
    fps: float | None
    width: int
    height: int
    codec: str


def _open_capture(path: Path) -> cv2.VideoCapture:
    # Ask for FFmpeg explicitly: CAP_ANY may treat odd file names as image sequences.
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    if not cap.isOpened():
        cap.release()
        cap = cv2.VideoCapture(str(path), cv2.CAP_ANY)
    if not cap.isOpened():
        cap.release()
        raise PoseFormatError(
            path, "cannot be opened as a video (not a video file, corrupt, or unknown codec)"
        )
    return cap


def _fourcc(code: float) -> str:
    n = int(code)
    return "".join(chr((n >> (8 * i)) & 0xFF) for i in range(4)).strip("\x00 ")


def _check_file(path: Path) -> None:
    if not path.exists():
        raise PoseFormatError(path, "video file does not exist")
    if not path.is_file():
        raise PoseFormatError(path, "is not a file (expected a video)")


def probe_video(path: str | Path, *, count_frames: bool = False) -> VideoInfo:
    """Read a video's frame count, fps, size and codec without decoding it all.

    Parameters
    ----------
    path : str or Path
        Video file.
    count_frames : bool
        Decode the whole video to count frames exactly instead of trusting the
        container (slow: about 1.5 s per 2,000 frames at 640x480). Done
        automatically when the container reports no frame count.

    Returns
    -------
    VideoInfo

    Raises
    ------
    PoseFormatError
        The file is missing, is not a video, or no frame can be decoded from it.
    """
    path = Path(path)
    _check_file(path)
    cap = _open_capture(path)
    try:
        n_frames = int(round(cap.get(cv2.CAP_PROP_FRAME_COUNT)))
        fps = float(cap.get(cv2.CAP_PROP_FPS))
        width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        codec = _fourcc(cap.get(cv2.CAP_PROP_FOURCC))
        # A container can open while its stream is unreadable: insist on one decoded frame.
        if not cap.grab():
            raise PoseFormatError(
                path, "opens as a video but not a single frame can be decoded (corrupt or empty?)"
            )
        ok, frame = cap.retrieve()
        if not ok or frame is None:
            raise PoseFormatError(path, "opens as a video but its first frame cannot be decoded")
        height, width = int(frame.shape[0]), int(frame.shape[1])
        if count_frames or n_frames <= 0:
            if n_frames <= 0:
                logger.debug("%s: container reports no frame count; counting by decoding", path)
            n_frames = 1
            while cap.grab():
                n_frames += 1
    finally:
        cap.release()
    return VideoInfo(
        path=path,
        n_frames=n_frames,
        fps=fps if math.isfinite(fps) and fps > 0 else None,
        width=width,
        height=height,
        codec=codec,
    )


class VideoReader:
    """Sequential sparse frame reader; use as a context manager.

    Parameters
    ----------
    path : str or Path
        Video file.

    Raises
    ------
    PoseFormatError
        The file is missing or cannot be decoded (see :func:`probe_video`).

    Notes
    -----
    Only one :meth:`read_frames` iteration may be active at a time; starting a new
    one invalidates the previous iterator (its next step raises ``RuntimeError``).
    A reader is not thread-safe; open one per worker.

    Examples
    --------
    >>> with VideoReader("m3v1mp4.mp4") as reader:           # doctest: +SKIP
    ...     for index, frame in reader.read_frames(range(0, 2330, 4), size=(320, 240)):
    ...         ...
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.info = probe_video(self.path)
        self._cap: cv2.VideoCapture | None = None
        self._pos = 0  # index of the frame the next grab() returns
        self._generation = 0
        self._open()

    # -- lifecycle -------------------------------------------------------------------------
    def _open(self) -> None:
        if self._cap is not None:
            self._cap.release()
        self._cap = _open_capture(self.path)
        self._pos = 0

    def close(self) -> None:
        """Release the underlying decoder. Safe to call twice."""
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        i = self.info
        return f"VideoReader({self.path.name!r}, {i.width}x{i.height}, {i.n_frames} frames, fps={i.fps})"

    @property
    def n_frames(self) -> int:
        """Container frame count (see :attr:`VideoInfo.n_frames`)."""
        return self.info.n_frames

    @property
    def position(self) -> int:
        """Index of the next frame the decoder will produce."""
        return self._pos

    # -- reading ---------------------------------------------------------------------------
    def read_frames(
        self,
        indices: Iterable[int],
        *,
        size: tuple[int, int] | None = None,
        color: str = "rgb",
        allow_short: bool = False,
    ) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(index, frame)`` for the requested frames in one forward pass.

        Parameters
        ----------
        indices : iterable of int
            Frame indices (0-based). Sorted and de-duplicated; frames come out in
            increasing order. If the first one lies behind the decoder's position
            (because of an earlier call), the video is reopened and decoded from the
            start rather than seeking, which is unreliable for many codecs.
        size : (width, height), optional
            Resize each returned frame to this size with ``cv2.INTER_AREA``.
        color : {"rgb", "bgr"}
            Channel order of the returned frames.
        allow_short : bool
            If the video ends before a requested index (its container frame count was
            wrong), stop with a warning instead of raising.

        Yields
        ------
        index : int
        frame : np.ndarray
            ``uint8`` array ``(height, width, 3)``, C-contiguous, owned by the caller.

        Raises
        ------
        PoseFormatError
            While iterating: the video ended before a requested index (names the
            index and the number of frames actually decoded), unless ``allow_short``.
        ValueError
            At call time: negative or non-integer indices, a bad ``size`` or ``color``.
        """
        wanted = _normalise_indices(indices)
        if color not in ("rgb", "bgr"):
            raise ValueError(f"color must be 'rgb' or 'bgr', got {color!r}")
        if size is not None:
            if len(size) != 2 or any(int(s) != s or s <= 0 for s in size):
                raise ValueError(f"size must be (width, height) of positive integers, got {size!r}")
            size = (int(size[0]), int(size[1]))
        if self._cap is None:
            raise ValueError(f"{self.path}: reader is closed")
        self._generation += 1
        # Validate eagerly (above) but decode lazily: the iterator holds one frame at a time.
        return self._iterate(wanted, size, color, allow_short, self._generation)

    def _iterate(
        self,
        wanted: list[int],
        size: tuple[int, int] | None,
        color: str,
        allow_short: bool,
        generation: int,
    ) -> Iterator[tuple[int, np.ndarray]]:
        if not wanted:
            return
        if generation != self._generation:  # started only after a newer call: touch nothing
            raise RuntimeError(f"{self.path}: read_frames iterator used after a newer read_frames call")
        if wanted[0] < self._pos:
            logger.debug(
                "%s: frame %d requested behind decoder position %d; reopening",
                self.path,
                wanted[0],
                self._pos,
            )
            self._open()
        for index in wanted:
            if generation != self._generation:
                raise RuntimeError(f"{self.path}: read_frames iterator used after a newer read_frames call")
            if self._cap is None:
                raise ValueError(f"{self.path}: reader was closed during iteration")
            cap = self._cap
            while self._pos <= index:
                if not cap.grab():
                    self._handle_short(index, allow_short)
                    return
                self._pos += 1
            ok, frame = cap.retrieve()
            if not ok or frame is None:
                raise PoseFormatError(self.path, f"frame {index} was decoded but could not be retrieved")
            if frame.ndim == 2:  # some backends hand out single-channel frames for gray video
                frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
            if size is not None and (frame.shape[1], frame.shape[0]) != size:
                frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
            if color == "rgb":
                frame = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            yield index, frame

    def _handle_short(self, index: int, allow_short: bool) -> None:
        problem = (
            f"video ended after {self._pos} decoded frames, before requested frame {index} "
            f"(container reports {self.info.n_frames} frames)"
        )
        # The decoder is exhausted; a later call starts over from frame 0.
        self._open()
        if not allow_short:
            raise PoseFormatError(self.path, f"{problem}; pass allow_short=True to stop there instead")
        _warn(f"{self.path}: {problem}; stopping early (allow_short=True)")


def _normalise_indices(indices: Iterable[int]) -> list[int]:
    arr = np.asarray(indices if isinstance(indices, np.ndarray) else list(indices))
    if arr.size == 0:
        return []
    # Only integer dtypes: a float or boolean array here is almost always a caller bug
    # (a mask instead of np.flatnonzero(mask), or times instead of frame numbers).
    if arr.dtype.kind not in "iu":
        raise ValueError(f"frame indices must be integers, got dtype {arr.dtype}")
    if arr.ndim != 1:
        raise ValueError(f"frame indices must be one-dimensional, got shape {arr.shape}")
    if arr.min() < 0:
        raise ValueError(f"frame indices must be >= 0, got {int(arr.min())}")
    return np.unique(arr.astype(np.int64)).tolist()


# --------------------------------------------------------------------------------------------
# Attaching a video to a pose record
# --------------------------------------------------------------------------------------------
def attach_video(
    record: PoseRecord,
    video_path: str | Path | None,
    *,
    tolerance: int = 1,
    pose_frame_size: tuple[int, int] | None = None,
) -> PoseRecord:
    """Check that a video fits a pose record and return a copy with it attached.

    Parameters
    ----------
    record : PoseRecord
        Pose read from a DLC or SLEAP file.
    video_path : str or Path or None
        The recording's video. None or a missing file gives keypoints-only mode
        (a :class:`VideoWarning`, and ``video_path=None`` in the result).
    tolerance : int
        Largest accepted difference between pose rows and video frames. Within it a
        warning is issued (the video is used; frames past its end have no image).
    pose_frame_size : (width, height), optional
        Frame size the pose was estimated on, e.g. from DLC's meta pickle
        ``frame_dimensions`` (which is stored as *(height, width)*; swap it) or the
        project config crop. Sets ``video_scale = video width / pose width``; if its
        aspect ratio does not match the video's it is ignored with a warning. Without
        it, a pose that extends well past the video frame is taken as estimated on a
        larger copy and a simple factor (3/4, 2/3, 1/2, 1/3, 1/4) is picked, with a
        warning. A pose estimated on a *smaller* copy cannot be detected this way.

    Returns
    -------
    PoseRecord
        A shallow copy (arrays are shared, not copied) with ``video_path``,
        ``n_video_frames``, ``video_scale`` and, if the record had none, ``fps`` set.

    Raises
    ------
    PoseFormatError
        The video exists but cannot be decoded.
    VideoMismatchError
        Frame counts differ by more than ``tolerance`` (for records from analyzed
        videos; manual-label tables with ``frame_names`` are not checked), or the
        keypoints do not fit the video frame at any simple scale.
    """
    if video_path is None or not Path(video_path).is_file():
        detail = "" if video_path is None else f" ({video_path} does not exist)"
        _warn(f"no video for {record.source}: keypoints-only mode{detail}")
        return dataclasses.replace(record, video_path=None, n_video_frames=None, video_scale=1.0)

    video_path = Path(video_path)
    info = probe_video(video_path)

    if record.frame_names is None:
        diff = abs(record.n_frames - info.n_frames)
        if diff > tolerance:
            raise VideoMismatchError(
                record.source,
                f"{record.n_frames} pose frames but video {video_path} has {info.n_frames} frames "
                f"(difference {diff} > tolerance {tolerance}); is this the right video?",
            )
        if diff:
            _warn(
                f"{record.source} has {record.n_frames} pose frames but video {video_path} has "
                f"{info.n_frames} frames; using the video, frames past its end have no image"
            )

    fps = record.fps
    if fps is None:
        fps = info.fps
    elif info.fps is not None and abs(fps - info.fps) > _FPS_REL_TOLERANCE * info.fps:
        _warn(
            f"{record.source} says {fps:g} fps but video {video_path} says {info.fps:g} fps; "
            f"keeping {fps:g} fps from the pose"
        )

    scale = _video_scale(record, info, pose_frame_size)
    return dataclasses.replace(
        record, video_path=video_path, n_video_frames=info.n_frames, fps=fps, video_scale=scale
    )


def _video_scale(record: PoseRecord, info: VideoInfo, pose_frame_size: tuple[int, int] | None) -> float:
    if pose_frame_size is not None:
        pose_w, pose_h = (float(v) for v in pose_frame_size)
        if pose_w <= 0 or pose_h <= 0:
            raise ValueError(f"pose_frame_size must be positive (width, height), got {pose_frame_size!r}")
        sx, sy = info.width / pose_w, info.height / pose_h
        if abs(sx - sy) <= _EXTENT_SLACK * max(sx, sy):
            return sx
        # A wrong size (swapped order, or a config crop that was never applied to the
        # analysis) must not scale silently; the keypoints' extent is the better witness.
        _warn(
            f"pose frame size {pose_w:g}x{pose_h:g} (width x height) given for {record.source} does not "
            f"have the aspect ratio of video {info.path} ({info.width}x{info.height}); ignoring it and "
            f"judging the scale from the keypoints. pose_frame_size is (width, height); "
            f"DLC's frame_dimensions is (height, width)"
        )

    xy = record.keypoints.reshape(-1, 2)
    xy = xy[~np.isnan(xy).any(axis=1)]
    if len(xy) == 0:
        return 1.0
    ext_x, ext_y = (float(v) for v in np.percentile(xy, _EXTENT_PERCENTILE, axis=0))
    limit_w, limit_h = info.width * (1 + _EXTENT_SLACK), info.height * (1 + _EXTENT_SLACK)
    if ext_x <= limit_w and ext_y <= limit_h:
        return 1.0
    for factor in _SIMPLE_SCALES:
        if ext_x * factor <= info.width and ext_y * factor <= info.height:
            _warn(
                f"keypoints of {record.source} reach x={ext_x:.0f}, y={ext_y:.0f} px "
                f"({_EXTENT_PERCENTILE}th percentile), beyond video {info.path} "
                f"({info.width}x{info.height}); assuming the pose was estimated on a larger copy and "
                f"scaling by {factor} (video_scale={float(factor):g}). Pass pose_frame_size=(width, height) "
                f"to attach_video to override"
            )
            return float(factor)
    raise VideoMismatchError(
        record.source,
        f"keypoints reach x={ext_x:.0f}, y={ext_y:.0f} px, far beyond video {info.path} "
        f"({info.width}x{info.height}) even at scale 1/4; is this the right video? "
        f"Pass pose_frame_size=(width, height) if the pose was estimated on a rescaled copy",
    )


# --------------------------------------------------------------------------------------------
# Finding the video of a pose file
# --------------------------------------------------------------------------------------------
def _candidate_stems(pose_path: Path) -> list[str]:
    stem = pose_path.stem
    stripped = True
    while stripped:
        stripped = False
        for suffix in _SLEAP_SUFFIXES:
            if stem.endswith(suffix) and len(stem) > len(suffix):
                stem = stem[: -len(suffix)]
                stripped = True
    stems = [stem]
    m = _SLEAP_EXPORT_RE.search(stem)
    if m:
        stems.append(m.group("video"))
    m = _DLC_SCORER_RE.match(pose_path.stem)
    if m:
        stems.append(m.group("video"))
    return list(dict.fromkeys(stems))


def find_video_beside(pose_path: str | Path, video_stem: str | None = None) -> Path | None:
    """Find the video of a pose file in the same folder.

    Parameters
    ----------
    pose_path : str or Path
        DLC or SLEAP output file.
    video_stem : str, optional
        The video's file name without extension (for DLC output, the part of the
        pose file name before ``DLC_``). Without it, these names are tried: the pose
        file's stem with SLEAP suffixes (``.predictions``, ``.analysis``, ``.slp``)
        removed; the video stem in SLEAP's export name ``labels.000_<video>.analysis.h5``;
        and the part before ``DLC_``/``DeepCut_`` in a DLC output name.

    Returns
    -------
    Path or None
        The one video (any of ``VIDEO_EXTENSIONS``, case-insensitive) whose stem
        matches. None when there is none, or when several match (e.g. ``x.mp4`` and
        ``x.avi``): that is logged, never guessed.
    """
    pose_path = Path(pose_path)
    folder = pose_path.parent
    if not folder.is_dir():
        return None
    stems = [video_stem] if video_stem is not None else _candidate_stems(pose_path)
    matches = sorted(
        p
        for p in folder.iterdir()
        if p.suffix.lower() in VIDEO_EXTENSIONS and p.stem in stems and p.is_file() and p != pose_path
    )
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        _warn(
            f"several videos could belong to {pose_path}: {', '.join(p.name for p in matches)}; "
            "not guessing, pass the video explicitly"
        )
    return None
