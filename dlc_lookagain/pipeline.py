"""The analyze job: read -> encode -> gate -> look -> fuse -> write.

For each recording: read and check the poses against the video (:mod:`dlc_lookagain.io`), encode
the keypoints (motion encoder, keypoint-only pass), let the gate choose the top-k frames per window,
look at only those frames (one sequential decode, frozen vision encoder on animal crops and a
context view), fuse, threshold, and write the behavior files beside the pose file. A recording
whose outputs already exist is skipped (a re-run after an interruption continues where it stopped;
``overwrite=True`` recomputes).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dlc_lookagain.io.main import load_pose, load_project
from dlc_lookagain.io.record import PoseRecord

logger = logging.getLogger(__name__)

#: Default fraction of frames looked at.
DEFAULT_TOP_K = 0.25


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
    looked_fraction: float = 0.0
    time_budget: dict = field(default_factory=dict)
    skipped: str = ""

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


def _project_model_dir(path: Path) -> Path:
    path = Path(path).expanduser()
    folder = path if path.is_dir() else path.parent
    return folder / "lookagain" / "models"


def resolve_model(path: str | Path, model=None):
    """The model ``analyze`` uses: ``model`` if given, else the newest model trained for this
    project (``<project>/lookagain/models/behavior*.pt``), else the bundled weights."""
    from dlc_lookagain.model.lookagain import LookAgainModel, load_model
    from dlc_lookagain.project_training import load_default_model

    if isinstance(model, LookAgainModel):
        return model, {"kind": "given"}
    if model is not None:
        return load_model(model)
    trained = sorted(_project_model_dir(path).glob("behavior*.pt"), key=lambda p: p.stat().st_mtime)
    if trained:
        logger.info("using the model trained for this project: %s", trained[-1])
        return load_model(trained[-1])
    logger.info("using the bundled model (trained on generated mice; train on your labels with "
                "dlc_lookagain.train for your own behaviors)")
    return load_default_model()


def _outputs_exist(record: PoseRecord, destfolder) -> tuple[dict[str, Path], list[Path], bool]:
    """Behavior files of a recording: all paths, the existing ones, and whether all exist."""
    from dlc_lookagain.io.annotations import output_paths

    paths = {k: Path(p) for k, p in output_paths(record, destfolder=destfolder).items()}
    existing = [p for p in paths.values() if p.exists()]
    return paths, existing, len(existing) == len(paths)


def analyze(
    config_path: str | Path,
    videos=None,
    videotype: str = "",
    shuffle: int | None = None,
    destfolder: str | Path | None = None,
    filtered: bool | None = None,
    track_method: str | None = None,
    *,
    top_k: float = DEFAULT_TOP_K,
    model=None,
    overwrite: bool = False,
    min_bout_s: float = 0.2,
    progress: bool = True,
) -> list[RecordingSummary]:
    """Label behaviors in every analyzed recording of a pose project and write them beside the poses.

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
        Where DLC wrote its outputs, if not beside the videos (behavior files go there too).
    top_k : float
        Fraction of frames the gate lets the vision encoder look at (0 = keypoints only, 1 = all).
    model : path or LookAgainModel, optional
        Model to use; default the newest one trained for this project, else the bundled weights.
    overwrite : bool
        Recompute recordings whose behavior files exist (default: skip them, so an interrupted
        run resumes).
    min_bout_s : float
        Bouts shorter than this are left out of the bout table.
    progress : bool
        Show progress bars.

    Returns
    -------
    list of RecordingSummary
        One per recording: frames, fraction looked at, time budget per behavior (fraction of
        animal-frames), output paths, or why it was skipped.
    """
    from dlc_lookagain.io.annotations import BehaviorPrediction, write_annotations
    from dlc_lookagain.model.inference import choose_frames, fused_pass, motion_pass
    from dlc_lookagain.model.look import attach_visual, look
    from dlc_lookagain.model.pose_tokens import tokenize
    from dlc_lookagain.model.vision import FeatureCache, FrameFeatureExtractor
    from dlc_lookagain.model.windows import Sequence

    if not 0.0 <= float(top_k) <= 1.0:
        raise ValueError(f"top_k must be a fraction within [0, 1], got {top_k}")
    records = read_inputs(
        config_path, videos, videotype=videotype, destfolder=destfolder,
        shuffle=shuffle, filtered=filtered, track_method=track_method,
    )
    net, _ = resolve_model(config_path, model)
    if net.head is None:
        raise ValueError("the model has no behavior classes; train it with dlc_lookagain.train first")
    behaviors = list(net.config.behaviors)
    folder = _project_model_dir(config_path).parent
    extractor = None
    cache = FeatureCache(folder / "vision-cache")
    summaries = []
    iterator = records
    if progress and len(records) > 1:
        from tqdm.auto import tqdm

        iterator = tqdm(records, desc="recordings", unit="video")
    for rec in iterator:
        summary = RecordingSummary.from_record(rec)
        summaries.append(summary)
        paths, existing, complete = _outputs_exist(rec, destfolder)
        replace = overwrite
        if complete and not overwrite:
            summary.skipped = "behavior files exist (overwrite=True recomputes)"
            summary.outputs = paths
            logger.info("%s: already analyzed (%s); skipped", rec.source.name, existing[0].name)
            continue
        if existing and not complete:
            # Our own files from an interrupted run: complete the set.
            logger.info("%s: completing the outputs of an interrupted run", rec.source.name)
            replace = True
        t0 = time.perf_counter()
        seq = Sequence(rec.source.name, tokenize(rec), float(rec.fps or 30.0))
        mp = motion_pass(net, [seq], progress=progress and seq.n_frames > 20000)[0]
        looked = np.zeros(0, np.int64)
        if rec.video_path is not None and top_k > 0:
            looked = choose_frames(net, seq, mp, top_k)
            if extractor is None:
                extractor = FrameFeatureExtractor(net.config.vision_encoder, crop_scale=net.config.crop_scale)
            attach_visual(seq, look(rec, seq.pose, looked, extractor, cache, progress=progress))
        elif rec.video_path is None:
            logger.warning("%s: no video; behaviors from keypoints only", rec.source.name)
        probs, _ = fused_pass(net, [seq], [looked])
        frac = looked.size / max(1, seq.n_frames)
        mask = np.zeros(seq.n_frames, bool)
        mask[looked] = True
        p = probs[0].astype(np.float32)
        p[~seq.pose.visible] = np.nan  # an animal that is not there does nothing
        prediction = BehaviorPrediction(behaviors=behaviors, probabilities=p,
                                        thresholds=net.thresholds_at(frac).numpy(), looked=mask)
        min_bout = max(1, int(round(min_bout_s * (rec.fps or 30.0))))
        summary.outputs = write_annotations(rec, prediction, destfolder=destfolder, overwrite=replace,
                                            min_bout_frames=min_bout)
        summary.annotations_written = True
        summary.looked_fraction = frac
        present = prediction.present[seq.pose.visible]
        summary.time_budget = {b: float(present[:, c].mean()) if present.size else 0.0
                               for c, b in enumerate(behaviors)}
        top = sorted(summary.time_budget.items(), key=lambda kv: -kv[1])[:3]
        logger.info("%s: %d frames, looked at %.0f%%, %.1f s; most time: %s", rec.source.name, seq.n_frames,
                    100 * frac, time.perf_counter() - t0, ", ".join(f"{b} {100 * v:.0f}%" for b, v in top))
    done = sum(s.annotations_written for s in summaries)
    skipped = sum(bool(s.skipped) for s in summaries)
    if done == 0 and skipped:
        logger.info("nothing to do: all %d recording(s) already analyzed", skipped)
    else:
        logger.info("%d recording(s) analyzed, %d skipped", done, skipped)
    return summaries
