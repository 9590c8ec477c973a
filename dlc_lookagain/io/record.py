"""One in-memory record per recording, whatever tool produced the keypoints.

Every reader in :mod:`dlc_lookagain.io` returns a :class:`PoseRecord`; nothing
downstream knows whether DeepLabCut or SLEAP made the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dlc_lookagain.errors import PoseFormatError, option_text


@dataclass
class PoseRecord:
    """Keypoints of one recording on a dense frame grid.

    Attributes
    ----------
    keypoints : np.ndarray
        float32 array ``(n_frames, n_individuals, n_bodyparts, 2)`` of x/y in the
        pixel coordinates stored in the pose file; NaN where a keypoint is missing.
    confidence : np.ndarray
        float32 array ``(n_frames, n_individuals, n_bodyparts)``: DLC likelihood or
        SLEAP point score; NaN exactly where ``keypoints`` is NaN. Files without
        scores (manual labels) get 1.0 for every present point.
    individuals : list of str
        Animal names (DLC ``individuals`` plus ``single`` for unique bodyparts;
        SLEAP track names; ``["individual0"]`` for single-animal DLC output).
    bodyparts : list of str
        Keypoint names, in file order. With DLC unique bodyparts the list is the
        union (multi-animal parts first); an individual lacking a part has NaN.
    fps : float or None
        Frames per second if known (video, DLC meta pickle, SLEAP file), else None.
    source : Path
        The pose file that was read.
    video_path : Path or None
        The recording's video if it was found, else None (keypoints-only mode).
    scorer : str or None
        DLC scorer / network name, or SLEAP model / "SLEAP" provenance string.
    source_format : str
        One of ``"dlc-h5"``, ``"dlc-csv"``, ``"sleap-slp"``, ``"sleap-analysis-h5"``.
    frame_names : list of str or None
        For manual-label tables (DLC ``CollectedData``), the image path of each row;
        None for analyzed videos, whose row ``t`` is video frame ``t``.
    video_scale : float
        Factor that maps pose coordinates to video pixels (1.0 unless the video is a
        rescaled copy of the one the pose was estimated on, see
        :func:`dlc_lookagain.io.video.attach_video`).
    n_video_frames : int or None
        Frames the video decodes to, when a video is attached.
    skeleton : list of tuple of str
        Edges between bodyparts, if the source defines them.
    metadata : dict
        Anything else a reader learned (DLC shuffle, track method, filtered, ...).
    landmarks : dict of str to np.ndarray
        Tracked points that are not part of any animal (DLC unique bodyparts: arena corners, a
        feeder, an object), ``name -> (n_frames, 2)`` float32, NaN where missing. Filled by
        :func:`split_landmarks`; empty for the readers' own output.
    """

    keypoints: np.ndarray
    confidence: np.ndarray
    individuals: list[str]
    bodyparts: list[str]
    fps: float | None
    source: Path
    video_path: Path | None = None
    scorer: str | None = None
    source_format: str = ""
    frame_names: list[str] | None = None
    video_scale: float = 1.0
    n_video_frames: int | None = None
    skeleton: list[tuple[str, str]] = field(default_factory=list)
    metadata: dict = field(default_factory=dict)
    landmarks: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.source = Path(self.source)
        if self.video_path is not None:
            self.video_path = Path(self.video_path)
        self.keypoints = _writable_float32(self.keypoints)
        self.confidence = _writable_float32(self.confidence)
        self.individuals = [str(i) for i in self.individuals]
        self.bodyparts = [str(b) for b in self.bodyparts]
        validate_record(self)

    @property
    def n_frames(self) -> int:
        """Number of pose frames (rows)."""
        return int(self.keypoints.shape[0])

    @property
    def n_individuals(self) -> int:
        return int(self.keypoints.shape[1])

    @property
    def n_bodyparts(self) -> int:
        return int(self.keypoints.shape[2])

    @property
    def duration_s(self) -> float | None:
        """Recording length in seconds, or None without fps."""
        return self.n_frames / self.fps if self.fps else None

    def keypoints_in_video_pixels(self) -> np.ndarray:
        """Keypoints scaled into the attached video's pixel grid."""
        if self.video_scale == 1.0:
            return self.keypoints
        return self.keypoints * np.float32(self.video_scale)

    def missing_fraction(self) -> float:
        """Fraction of (frame, individual, bodypart) entries that are NaN."""
        if self.keypoints.size == 0:
            return 1.0
        return float(np.isnan(self.keypoints[..., 0]).mean())

    def __repr__(self) -> str:
        video = self.video_path.name if self.video_path else None
        return (
            f"PoseRecord(source={self.source.name!r}, format={self.source_format!r}, "
            f"frames={self.n_frames}, individuals={self.individuals}, "
            f"bodyparts={len(self.bodyparts)}, fps={self.fps}, video={video!r})"
        )


#: Frame rate assumed when nothing gives one (a DLC csv/h5 without its video stores none).
DEFAULT_FPS = 30.0


def resolve_fps(rec: PoseRecord, fps: float | None = None, *, label_fps: float | None = None) -> float:
    """The frame rate to use for a recording, loudly when it is a guess.

    Order: ``fps`` given by the user, the record's own (from its video or SLEAP file), the label
    file's (BORIS ``FPS``, BehaviorDEPOT ``Params.mat``), else :data:`DEFAULT_FPS` with a warning:
    every window and minimum bout is in seconds, so a wrong frame rate scales all of them.

    Raises
    ------
    ValueError
        If ``fps`` is given and not a positive finite number.
    """
    import logging

    log = logging.getLogger(__name__)
    if fps is not None:
        if not np.isfinite(fps) or fps <= 0:
            raise ValueError(f"fps must be a positive number, got {fps!r}")
        if rec.fps and abs(float(rec.fps) - float(fps)) > 1e-3 * float(fps):
            log.warning("%s: using fps=%g as asked; the recording itself says %g", rec.source.name, fps, rec.fps)
        return float(fps)
    if rec.fps and np.isfinite(rec.fps) and rec.fps > 0:
        return float(rec.fps)
    if label_fps and np.isfinite(label_fps) and label_fps > 0:
        log.info("%s: frame rate %g fps taken from its label file", rec.source.name, label_fps)
        return float(label_fps)
    log.warning("%s: the frame rate is unknown (no video, and the pose file stores none); ASSUMING %g fps. "
                "If that is wrong every window and bout length is wrong: pass %s",
                rec.source.name, DEFAULT_FPS, option_text("fps"))
    return DEFAULT_FPS


def _writable_float32(array) -> np.ndarray:
    """float32 array we may mask in place (pandas copy-on-write can hand out read-only views)."""
    out = np.asarray(array, dtype=np.float32)
    return out if out.flags.writeable else out.copy()


def validate_record(rec: PoseRecord) -> None:
    """Check shapes and names of a record; raise :class:`PoseFormatError` if inconsistent."""
    kp, conf = rec.keypoints, rec.confidence
    if kp.ndim != 4 or kp.shape[-1] != 2:
        raise PoseFormatError(rec.source, f"keypoints must be (frames, individuals, bodyparts, 2), got {kp.shape}")
    if conf.shape != kp.shape[:3]:
        raise PoseFormatError(rec.source, f"confidence shape {conf.shape} does not match keypoints {kp.shape[:3]}")
    if len(rec.individuals) != kp.shape[1]:
        raise PoseFormatError(rec.source, f"{len(rec.individuals)} individual names for {kp.shape[1]} individuals")
    if len(rec.bodyparts) != kp.shape[2]:
        raise PoseFormatError(rec.source, f"{len(rec.bodyparts)} bodypart names for {kp.shape[2]} bodyparts")
    if len(set(rec.individuals)) != len(rec.individuals):
        raise PoseFormatError(rec.source, f"duplicate individual names: {rec.individuals}")
    if len(set(rec.bodyparts)) != len(rec.bodyparts):
        raise PoseFormatError(rec.source, f"duplicate bodypart names: {rec.bodyparts}")
    if rec.frame_names is not None and len(rec.frame_names) != kp.shape[0]:
        raise PoseFormatError(rec.source, f"{len(rec.frame_names)} frame names for {kp.shape[0]} rows")
    if rec.fps is not None and not (np.isfinite(rec.fps) and rec.fps > 0):
        raise PoseFormatError(rec.source, f"invalid fps {rec.fps!r}")
    if np.isinf(kp).any():
        raise PoseFormatError(rec.source, "keypoints contain infinite values")
    if np.isinf(conf).any():
        raise PoseFormatError(rec.source, "confidence (likelihood) contains infinite values")
    # Confidence is NaN exactly where the keypoint is missing: one mask for everyone.
    missing = np.isnan(kp).any(axis=-1)
    kp[missing] = np.nan
    conf[missing] = np.nan


def split_landmarks(record: PoseRecord) -> PoseRecord:
    """The record's animals only, with DLC unique bodyparts moved to ``record.landmarks``.

    maDLC writes points that belong to no animal (``unique_bodyparts``: arena corners, an object)
    under the individual ``single``. They are context for the animals (landmark features of the
    feature bank), not an animal whose behavior is classified, so they get no behavior rows. A
    record without them is returned as it is.
    """
    import dataclasses

    unique = list(record.metadata.get("unique_bodyparts") or [])
    if "single" not in record.individuals or len(record.individuals) < 2:
        return record
    single = record.individuals.index("single")
    animals = [i for i in range(record.n_individuals) if i != single]
    parts = [k for k, b in enumerate(record.bodyparts) if b not in unique]
    if not parts:
        return record
    landmarks = {record.bodyparts[k]: np.array(record.keypoints[:, single, k], dtype=np.float32)
                 for k, b in enumerate(record.bodyparts) if b in unique}
    kept = {record.bodyparts[k] for k in parts}
    return dataclasses.replace(
        record,
        keypoints=record.keypoints[:, animals][:, :, parts],
        confidence=record.confidence[:, animals][:, :, parts],
        individuals=[record.individuals[i] for i in animals],
        bodyparts=[record.bodyparts[k] for k in parts],
        skeleton=[e for e in record.skeleton if e[0] in kept and e[1] in kept],
        landmarks={**record.landmarks, **landmarks},
    )
