"""The analyze job: read -> encode -> gate -> look -> fuse -> write.

For each recording: read and check the poses against the video (:mod:`dlc_lookagain.io`), encode
the keypoints (motion encoder, keypoint-only pass), let the gate choose the top-k frames per window,
look at only those frames (one sequential decode, frozen vision encoder on animal crops and a
context view), fuse, threshold, and write the behavior files beside the pose file, then the
figures and exports asked for.

Recordings are planned before any pose is read (:func:`plan_recordings`), so a batch of hundreds
of videos holds one recording in memory per worker, and so outputs can be checked first: each
``_behaviors.h5`` records a fingerprint of its inputs (pose file content, model, ``top_k``,
``min_bout_s``). A recording whose outputs carry the current fingerprint is skipped; one whose
inputs changed is recomputed (the previous files are moved to ``<project>/lookagain/replaced/``);
an interrupted run therefore continues where it stopped. With ``n_workers > 1`` or a
``scheduler``, recordings run in parallel on a Dask cluster.
"""

from __future__ import annotations

import hashlib
import io as _io
import logging
import os
import shutil
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from dlc_lookagain.errors import PoseFormatError, command_line, in_command_line, option_text
from dlc_lookagain.io.main import load_pose, load_project
from dlc_lookagain.io.ledger import OutputLedger, file_sha256
from dlc_lookagain.io.lock import LockedError, RecordingLock
from dlc_lookagain.io.paths import stale_temporaries
from dlc_lookagain.io.record import PoseRecord, resolve_fps, split_landmarks

logger = logging.getLogger(__name__)

#: Default fraction of frames looked at.
DEFAULT_TOP_K = 0.25
#: Exports ``analyze(exports=...)`` can write.
EXPORTS = ("boris", "nwb")


@dataclass
class RecordingSummary:
    """What ``analyze`` learned about one recording.

    Attributes
    ----------
    pose_file, video : Path
        The pose file read and the video attached (None: keypoints only).
    n_frames, fps, individuals, n_bodyparts, missing_fraction, video_scale
        As read from the pose file.
    annotations_written : bool
        True when the behavior files were (re)computed in this run.
    outputs : dict of str to Path
        Every output of the recording (behavior files, figures, exports).
    looked_fraction : float
        Fraction of frames the vision encoder looked at.
    time_budget : dict of str to float
        Share of tracked animal-frames inside a bout of each behavior (the bouts of
        ``_bouts.csv``), pooled over animals: the time-budget figure's definition
        (:func:`dlc_lookagain.io.annotations.time_budget_of`); the log's "most time" lists the largest.
    skipped : str
        Why nothing was computed (outputs up to date), else "".
    error : str
        Why the recording could not be analyzed (the others still were), else "".
    seconds : float
        Time spent on it in this run.
    extras_written : list of str
        Figures and exports written in this run (e.g. ``["ethogram", "boris"]``).
    """

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
    error: str = ""
    seconds: float = 0.0
    extras_written: list = field(default_factory=list)

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

    @classmethod
    def failed(cls, pose_file: Path, error: str, seconds: float = 0.0) -> "RecordingSummary":
        """A recording that could not be analyzed (``error`` says why)."""
        return cls(pose_file=Path(pose_file), video=None, n_frames=0, fps=None, individuals=[], n_bodyparts=0,
                   missing_fraction=float("nan"), video_scale=1.0, annotations_written=False, outputs={},
                   error=error, seconds=seconds)

    @classmethod
    def from_outputs(cls, pose_file: Path, meta: dict, outputs: dict) -> "RecordingSummary":
        """A summary of a recording whose outputs are up to date, from their metadata only."""
        video = meta.get("video_path")
        return cls(
            pose_file=Path(pose_file),
            video=Path(video) if video else None,
            n_frames=int(meta.get("n_frames", 0)),
            fps=meta.get("fps"),
            individuals=list(meta.get("individuals", [])),
            n_bodyparts=int(meta.get("n_bodyparts", 0)),
            missing_fraction=float(meta.get("missing_fraction", float("nan"))),
            video_scale=float(meta.get("video_scale", 1.0)),
            annotations_written=False,
            outputs=dict(outputs),
            looked_fraction=float(meta.get("looked_fraction", 0.0)),
            time_budget=dict(meta.get("time_budget", {})),
        )


# --------------------------------------------------------------------------- planning


@dataclass
class RecordingJob:
    """One recording to analyze, described without reading it (cheap to send to a worker)."""

    pose_file: Path
    video: object = None  # single files: the user's video (path, False, or None to look beside)
    pair: object = None  # DLC projects: the io.project.AnalyzedVideo ...
    project: object = None  # ... and its io.project.DLCProject
    tolerance: int = 1

    def load(self) -> PoseRecord:
        """Read the poses and attach the video."""
        if self.pair is not None:
            from dlc_lookagain.io.main import load_analyzed_video

            return split_landmarks(load_analyzed_video(self.pair, self.project, tolerance=self.tolerance))
        return split_landmarks(load_pose(self.pose_file, video=self.video, tolerance=self.tolerance))


def check_top_k(top_k: float) -> float:
    """``top_k`` as a float, or a ValueError when it is not a fraction of frames."""
    if not 0.0 <= float(top_k) <= 1.0:
        raise ValueError(f"top_k must be a fraction within [0, 1], got {top_k}")
    return float(top_k)


def _is_project(path: Path) -> bool:
    return path.is_dir() or path.suffix.lower() in (".yaml", ".yml")


def plan_recordings(
    path: str | Path,
    videos=None,
    *,
    videotype: str = "",
    destfolder: str | Path | None = None,
    shuffle: int | None = None,
    filtered: bool | None = None,
    track_method: str | None = None,
) -> list[RecordingJob]:
    """The recordings ``analyze`` would process, without reading any pose file.

    Raises
    ------
    PoseFormatError
        The project cannot be read or none of its videos has been analyzed.
    FileNotFoundError
        A single pose file that does not exist.
    """
    from dlc_lookagain.io.main import find_project_recordings
    from dlc_lookagain.io.paths import absolute_path

    # Absolute: workers of a Dask cluster may run in another working folder.
    path = absolute_path(Path(path).expanduser())
    if not _is_project(path):
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such pose file")
        video = videos[0] if isinstance(videos, (list, tuple)) and videos else videos
        if isinstance(video, (str, os.PathLike)):
            video = absolute_path(Path(video).expanduser())
        return [RecordingJob(path, video=video)]
    project, pairs = find_project_recordings(
        path, videos, videotype=videotype, destfolder=destfolder,
        shuffle=shuffle, filtered=filtered, track_method=track_method,
    )
    if destfolder is None:
        _warn_outputs_outside(project, pairs)
    return [RecordingJob(Path(p.pose_file), pair=p, project=project) for p in pairs]


def _warn_outputs_outside(project, pairs) -> None:
    """Say where behavior files go when ``video_sets`` leads to DLC outputs outside the project."""
    root = project.project_dir.resolve()
    outside = [p.pose_file for p in pairs if not Path(p.pose_file).resolve().is_relative_to(root)]
    if outside:
        folders = sorted({str(Path(f).parent) for f in outside})
        logger.warning(
            "%s: %d recording(s) have their DeepLabCut output outside the project folder %s (video_sets "
            "points there): their behavior files will be written beside it, in %s. To keep them in the "
            "project, copy those videos and their DLC outputs into %s", project.config_path, len(outside),
            project.project_dir, ", ".join(folders), project.project_dir / "videos")


def read_inputs(path: str | Path, videos=None, *, progress: bool = True, **where) -> list[PoseRecord]:
    """Read every recording ``analyze`` would process (animals only; DLC unique bodyparts become
    ``landmarks``: :func:`dlc_lookagain.io.record.split_landmarks`).

    ``path`` and ``where`` (``videotype``, ``destfolder``, ``shuffle``, ``filtered``,
    ``track_method``) as in :func:`plan_recordings`. Recordings of a project whose pose or video
    cannot be used are reported in the log and skipped, so one bad file does not stop a night's
    batch; if none can be read, the first error is raised.
    """
    path = Path(path).expanduser()
    if _is_project(path):
        records = load_project(path, videos, on_error="skip", progress=progress, **where)
    else:
        video = videos[0] if isinstance(videos, (list, tuple)) and videos else videos
        records = [load_pose(path, video=video)]
    return [split_landmarks(r) for r in records]


def _project_model_dir(path: Path) -> Path:
    from dlc_lookagain.model_store import project_folder

    return project_folder(path) / "lookagain" / "models"


def trained_models(path: str | Path) -> list[Path]:
    """Behavior models trained for a project (any name), oldest first.

    A model counts when its manifest (``<name>.pt.manifest.json``, written by ``train``) says
    ``"kind": "behavior"``; pretrained encoders without a behavior head are left out.
    """
    import json

    found = []
    for pt in _project_model_dir(path).glob("*.pt"):
        manifest = pt.with_name(pt.name + ".manifest.json")
        try:
            kind = json.loads(manifest.read_text()).get("kind")
        except (OSError, ValueError, AttributeError):
            continue
        if kind == "behavior":
            found.append(pt)
    return sorted(found, key=lambda p: (p.stat().st_mtime, p.name))


def resolve_model(path: str | Path, model=None):
    """The model ``analyze`` uses: ``model`` if given, else the newest behavior model trained for
    this project (``<project>/lookagain/models/*.pt``, see :func:`trained_models`), else the
    bundled weights.

    Returns ``(model, manifest)``; ``manifest["path"]`` is the model file when there is one.
    Raises ValueError when the model has no behavior classes (a pretrained encoder).
    """
    net, manifest = _find_model(path, model)
    if net.head is None and getattr(net, "decision", None) is None:
        raise ValueError("the model has no behavior classes; train it with dlc_lookagain.train first")
    return net, manifest


def _find_model(path: str | Path, model=None):
    from dlc_lookagain.model.lookagain import LookAgainModel, load_model
    from dlc_lookagain.model_store import bundled_model_path, load_default_model

    if isinstance(model, LookAgainModel):
        return model, {"kind": "given"}
    if model is not None:
        net, manifest = load_model(model)
        return net, {**(manifest or {}), "path": str(model)}
    trained = trained_models(path)
    if trained:
        logger.info("using the model trained for this project: %s", trained[-1])
        net, manifest = load_model(trained[-1])
        return net, {**(manifest or {}), "path": str(trained[-1])}
    logger.info("using the bundled model (trained on generated mice; train on your labels with "
                "dlc_lookagain.train for your own behaviors)")
    net, manifest = load_default_model()
    return net, {**(manifest or {}), "path": str(bundled_model_path())}


def model_sha256(net, manifest: dict) -> str:
    """Identity of a model: its file's hash, else the hash of its weights."""
    path = manifest.get("path")
    if path and Path(path).is_file():
        return file_sha256(path)
    import torch

    buffer = _io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in net.state_dict().items()}, buffer)
    if getattr(net, "decision", None) is not None:
        import json

        buffer.write(json.dumps(net.decision.to_dict(), sort_keys=True).encode())
    return hashlib.sha256(buffer.getvalue()).hexdigest()


# --------------------------------------------------------------------------- one recording


def predict_recording(rec: PoseRecord, net, top_k: float, *, extractor=None, cache=None,
                      progress: bool = True, fps: float | None = None,
                      movement_states_out_of_domain: bool = True):
    """Behavior probabilities of one recording, looking at ``top_k`` of its frames.

    A model with a decision layer (every model ``train`` makes) decides from the fused keypoint
    features and, where its training chose the vision group for a behavior and the recording has a
    video, from the appearance of ``top_k`` of the frames, chosen as in its training (a gate, or
    evenly spaced: :func:`dlc_lookagain.model.frame_features.decide_recording`). ``fps`` overrides the
    recording's frame rate (see :func:`dlc_lookagain.io.record.resolve_fps`).

    With the bundled model, a recording unlike its training data (other skeleton, body shape or
    speeds: :func:`dlc_lookagain.model.domain.domain_report`) gets movement states (still / moving /
    fast) instead of the bundled behaviors, with a warning that says how to train
    (``movement_states_out_of_domain=False`` forces the bundled behaviors).

    Returns
    -------
    prediction : dlc_lookagain.io.annotations.BehaviorPrediction
        Probabilities (T, I, C) (NaN where an animal is not tracked), thresholds at the
        fraction actually looked at, and the looked-at frames.
    extractor : FrameFeatureExtractor or None
        The vision extractor (created on first use; pass it back for the next recording).
    """
    from dlc_lookagain.io.annotations import BehaviorPrediction
    from dlc_lookagain.model.inference import choose_frames, fused_pass, motion_pass
    from dlc_lookagain.model.look import attach_visual, look
    from dlc_lookagain.model.pose_tokens import tokenize
    from dlc_lookagain.model.lookagain import vision_encoder_spec
    from dlc_lookagain.model.visual_features import FrameFeatureExtractor
    from dlc_lookagain.model.windows import Sequence

    if fps is None:  # analyze_recording resolves it once (and says so) before calling
        fps = resolve_fps(rec)
    if getattr(net, "decision", None) is not None:
        from dlc_lookagain.model.frame_features import decide_recording

        layer = net.decision
        if top_k > 0 and rec.video_path is not None and not layer.uses_vision:
            logger.info("%s: this model decides from keypoints%s (it was trained without video, or vision "
                        "raised no behavior's cross-validated F1): no frame is decoded", rec.source.name,
                        " and motion" if any("encoder" in g for g in layer.chosen_groups) else "")
        elif layer.uses_vision and (top_k == 0 or rec.video_path is None):
            logger.warning("%s: %s; the behaviors this model decides from looked-at frames (%s) are decided "
                           "from keypoints only, with their thresholds for that", rec.source.name,
                           "no video" if rec.video_path is None else "top_k is 0",
                           ", ".join(b for b, g in zip(layer.behaviors, layer.chosen_groups) if "vision" in g))
        elif layer.uses_vision and layer.look_fraction > 0 and abs(top_k - layer.look_fraction) > 1e-6:
            logger.warning("%s: this model was trained looking at %.0f%% of the frames and is asked to look at "
                           "%.0f%%: its vision features then lie %s from a look than in training (best: --top-k "
                           "%g, or train with --look %g)", rec.source.name, 100 * layer.look_fraction, 100 * top_k,
                           "further" if top_k < layer.look_fraction else "nearer", layer.look_fraction, top_k)
        p, present, looked, used = decide_recording(rec, net, fps, top_k=top_k,
                                                    progress=progress and (rec.n_frames > 20000 or top_k > 0))
        mask = np.zeros(rec.n_frames, bool)
        mask[looked] = True
        prediction = BehaviorPrediction(behaviors=list(layer.behaviors), probabilities=p,
                                        present=present, thresholds=used.thresholds.astype(np.float32),
                                        looked=mask)
        return prediction, extractor
    tracked = warn_untracked(rec)
    if getattr(net, "kind", "") == "bundled" and movement_states_out_of_domain and tracked:
        states = _movement_states_out_of_domain(rec, fps)
        if states is not None:
            return states, extractor
    seq = Sequence(rec.source.name, tokenize(rec), fps)
    mp = motion_pass(net, [seq], progress=progress and seq.n_frames > 20000)[0]
    looked = np.zeros(0, np.int64)
    if rec.video_path is not None and top_k > 0:
        looked = choose_frames(net, seq, mp, top_k)
        spec = vision_encoder_spec(net)  # also with a reused extractor: the refusal is the model's
        if extractor is None:
            extractor = FrameFeatureExtractor(spec, crop_scale=net.config.crop_scale)
        attach_visual(seq, look(rec, seq.pose, looked, extractor, cache, progress=progress), sparse=True)
        # "looked" means seen: frames the video could not give (truncated or damaged file) stay on the
        # keypoint path, and the summary counts only what was seen.
        decoded = np.asarray(seq.visual_available, bool)[looked]
        if not decoded.all():
            lost = looked[~decoded]
            logger.warning("%s: %d of the %d frames chosen to look at could not be decoded (frames %s); "
                           "they are decided from keypoints only", Path(rec.video_path).name, lost.size,
                           looked.size, frame_ranges(lost))
            looked = looked[decoded]
    elif rec.video_path is None:
        logger.warning("%s: no video; behaviors from keypoints only", rec.source.name)
    probs, _ = fused_pass(net, [seq], [looked])
    frac = looked.size / max(1, seq.n_frames)
    mask = np.zeros(seq.n_frames, bool)
    mask[looked] = True
    p = probs[0].astype(np.float32)
    p[~seq.pose.visible] = np.nan  # an animal that is not there does nothing
    prediction = BehaviorPrediction(behaviors=list(net.config.behaviors), probabilities=p,
                                    thresholds=net.thresholds_at(frac).numpy(), looked=mask)
    return prediction, extractor


def warn_untracked(rec: PoseRecord) -> bool:
    """Warn about animals of ``rec`` that are never tracked; False when no animal ever is.

    An all-NaN pose (every keypoint missing in every frame) still gets its outputs: one row per
    frame and animal labelled ``none`` with empty (NaN) probabilities, and an empty bout table.
    """
    seen = ~np.isnan(rec.keypoints[..., 0]).all(axis=(0, 2))  # per animal
    if not seen.any():
        logger.warning("%s: no keypoint of any animal is tracked in any of its %d frames (every x/y is missing): "
                       "the behavior table gets one row per frame and animal labelled 'none' with no "
                       "probabilities, and the bout table is empty", rec.source.name, rec.n_frames)
        return False
    if not seen.all():
        never = [name for name, s in zip(rec.individuals, seen) if not s]
        logger.warning("%s: %s never tracked (every keypoint missing in every frame): labelled 'none' "
                       "throughout", rec.source.name, ", ".join(never) + (" is" if len(never) == 1 else " are"))
    return True


def _movement_states_out_of_domain(rec: PoseRecord, fps: float):
    """Movement states instead of the bundled behaviors when ``rec`` is unlike the bundled model's
    training data (with a warning that says why and how to train), else None."""
    from dlc_lookagain.io.annotations import BehaviorPrediction
    from dlc_lookagain.model.domain import MOVEMENT_STATES, domain_report, movement_states

    report = domain_report(rec, fps)
    if report.in_domain:
        return None
    logger.warning(
        "%s: this recording is unlike the generated mice the bundled model was trained on (%s); "
        "its behaviors would be guesses, so movement states (%s, by body lengths per second) are "
        "written instead. For your own behaviors: label a few recordings and run "
        "`dlc-lookagain train <config.yaml>` (docs/training.md)",
        rec.source.name, "; ".join(report.reasons), "/".join(MOVEMENT_STATES))
    p, present = movement_states(rec, fps)
    return BehaviorPrediction(behaviors=list(MOVEMENT_STATES), probabilities=p, present=present,
                              thresholds=np.full(len(MOVEMENT_STATES), 0.5, np.float32),
                              looked=np.zeros(rec.n_frames, bool))


def frame_ranges(frames, limit: int = 8) -> str:
    """``"3-7, 12, 40-59"`` for sorted frame indices (at most ``limit`` ranges, then ``...``)."""
    frames = np.asarray(frames, np.int64)
    if frames.size == 0:
        return "none"
    breaks = np.flatnonzero(np.diff(frames) != 1)
    starts, ends = frames[np.r_[0, breaks + 1]], frames[np.r_[breaks, frames.size - 1]]
    parts = [f"{a}" if a == b else f"{a}-{b}" for a, b in zip(starts.tolist(), ends.tolist())]
    return ", ".join(parts[:limit]) + (", ..." if len(parts) > limit else "")


@dataclass
class AnalyzeOptions:
    """Everything a worker needs besides the recording and the model (picklable)."""

    top_k: float = DEFAULT_TOP_K
    destfolder: Path | None = None
    overwrite: bool = False
    min_bout_s: float = 0.2
    figures: bool = True
    labeled_video: bool = False
    exports: tuple = ()
    progress: bool = True
    fingerprint: dict = field(default_factory=dict)  # without the pose hash (added per recording)
    project_folder: Path = Path(".")
    torch_threads: int | None = None
    recompute_changed: bool = True  # False: outputs made from other inputs are kept as they are
    command_line: bool = False  # messages name --flags (Dask workers do not inherit the caller's context)
    fps: float | None = None  # overrides the recordings' frame rate (a DLC csv stores none)


def _fingerprint(pose_file: Path, options: AnalyzeOptions) -> dict:
    return {**options.fingerprint, "pose_sha256": file_sha256(pose_file)}


def _wanted_extras(job: RecordingJob, options: AnalyzeOptions) -> dict[str, Path]:
    from dlc_lookagain.io.annotations import extra_output_paths

    paths = extra_output_paths(job.pose_file, options.destfolder)
    wanted = []
    if options.figures:
        wanted += ["ethogram", "time_budget"]
    wanted += list(options.exports)
    if options.labeled_video:
        wanted.append("labeled_video")
    return {k: paths[k] for k in wanted}


def recording_status(job: RecordingJob, options: AnalyzeOptions) -> tuple[str, dict, dict, dict]:
    """``(status, outputs, metadata, fingerprint)`` of a recording's behavior files.

    ``fingerprint`` is that of the current inputs (what new outputs would record).

    status is ``"new"`` (no outputs), ``"current"`` (outputs made from the same inputs),
    ``"stale"`` (made from other inputs: pose file, model, top_k or min_bout_s changed),
    or ``"incomplete"`` (some outputs missing, e.g. deleted by hand).
    """
    from dlc_lookagain.io.annotations import output_paths_for, read_output_metadata

    paths = output_paths_for(job.pose_file, options.destfolder)
    fingerprint = _fingerprint(job.pose_file, options)
    existing = [p for p in paths.values() if p.exists()]
    if not existing:
        return "new", paths, {}, fingerprint
    if len(existing) < len(paths):
        return "incomplete", paths, {}, fingerprint
    try:
        meta = read_output_metadata(paths["behaviors_h5"])
    except PoseFormatError:
        return "stale", paths, {}, fingerprint
    if meta.get("inputs") != fingerprint:
        return "stale", paths, meta, fingerprint
    return "current", paths, meta, fingerprint


def _made_by_us(behaviors_h5: Path, meta: dict) -> bool:
    """Does ``behaviors_h5`` carry the metadata our writer puts there (outputs of a version without
    a ledger)?"""
    from dlc_lookagain.io.annotations import read_output_metadata

    if meta:
        return True
    if not Path(behaviors_h5).is_file():
        return False
    try:
        return bool(read_output_metadata(behaviors_h5))
    except PoseFormatError:
        return False


def _changed(old: dict, new: dict) -> str:
    names = {"pose_sha256": "pose file", "model_sha256": "model"}
    diff = [names.get(k, k) for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
    return ", ".join(diff) if old else "made by an older version"


def _retire(paths, project_folder: Path) -> Path | None:
    """Move earlier outputs to ``<project>/lookagain/replaced/<time>/`` instead of deleting them."""
    existing = [Path(p) for p in paths if Path(p).exists()]
    if not existing:
        return None
    base = project_folder / "lookagain" / "replaced" / time.strftime("%Y%m%d-%H%M%S")
    target, n = base, 0
    while any((target / p.name).exists() for p in existing):  # never overwrite an earlier backup
        n += 1
        target = base.with_name(f"{base.name}-{n}")
    target.mkdir(parents=True, exist_ok=True)
    for p in existing:
        shutil.move(str(p), str(target / p.name))
    return target


def _write_extras(job: RecordingJob, rec: PoseRecord | None, outputs: dict, extras: dict, meta: dict,
                  options: AnalyzeOptions, replace_all: bool, ledger: OutputLedger) -> tuple[dict, list]:
    """Figures, exports and the labeled video: the missing ones, or all of them after a recompute.

    A file in the way that we did not write (``ledger``) is never replaced: the recording is skipped.
    Returns every extra output path, and the keys written now.
    """
    from dlc_lookagain.io.annotations import extra_output_paths

    todo = {k: p for k, p in extras.items() if replace_all or not p.exists()}
    written = {k: p for k, p in extras.items() if k not in todo}
    if not todo:
        return written, []
    figures_todo = "ethogram" in todo or "time_budget" in todo
    every = extra_output_paths(job.pose_file, options.destfolder)
    targets = [*todo.values(), *((every["ethogram"], every["time_budget"]) if figures_todo else ())]
    ledger.check_replaceable(targets)  # both figures are drawn together
    if rec is None and ({"nwb", "labeled_video"} & set(todo)):
        rec = job.load()
    if figures_todo:
        from dlc_lookagain.plots import write_figures

        figures = write_figures(outputs, overwrite=True)
        ledger.record(figures.values())
        written.update({k: Path(v) for k, v in figures.items() if k in extras})
    fps = meta.get("fps") if rec is None else rec.fps
    if "boris" in todo:
        from dlc_lookagain.io.boris import write_boris

        if not fps:
            raise PoseFormatError(job.pose_file, "the BORIS export needs the frame rate, which is unknown")
        video = rec.video_path if rec is not None else meta.get("video_path")
        n_frames = rec.n_frames if rec is not None else meta.get("n_frames")
        written["boris"] = write_boris(outputs["bouts_csv"], todo["boris"], fps=fps, n_frames=n_frames,
                                       media_file=Path(video).name if video else None, overwrite=True)
    if "nwb" in todo:
        from dlc_lookagain.io.nwb import write_nwb

        written["nwb"] = write_nwb(rec, outputs["bouts_csv"], todo["nwb"], behaviors=outputs["behaviors_h5"],
                                   overwrite=True)
    if "labeled_video" in todo:
        from dlc_lookagain.io.labeled_video import write_labeled_video

        if rec.video_path is None:
            logger.warning("%s: no video; no labeled video written", job.pose_file.name)
        else:
            written["labeled_video"] = write_labeled_video(
                rec, outputs["behaviors_h5"], todo["labeled_video"], bouts=outputs["bouts_csv"],
                overwrite=True, progress=options.progress)
    ledger.record(written[k] for k in todo if k in written)
    return written, [k for k in todo if k in written]


# glibc mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def _undo_fixed_malloc_thresholds() -> bool:
    """Give glibc back large allocation thresholds in a process started with MALLOC_TRIM_THRESHOLD_.

    Dask starts its workers with MALLOC_TRIM_THRESHOLD_=65536. Setting it fixes glibc's thresholds,
    so every allocation above 128 kB becomes its own mmap/munmap, page faults and all: torch and
    OpenCV then ran 3-6x slower (benchmarks/analyze_batch.py). Raising both thresholds at run time
    restores heap reuse for the buffers of a batch. Returns whether it was done.
    """
    if "MALLOC_TRIM_THRESHOLD_" not in os.environ or not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        ok = libc.mallopt(_M_MMAP_THRESHOLD, 32 << 20) and libc.mallopt(_M_TRIM_THRESHOLD, 128 << 20)
    except (OSError, AttributeError):  # not glibc (musl, ...)
        return False
    return bool(ok)


_WORKER_MODELS: dict = {}
_WORKER_STATE: dict = {}


def _worker_model(model_ref):
    """The model inside a worker, loaded once per process and model file."""
    from dlc_lookagain.model.lookagain import LookAgainModel, load_model

    if isinstance(model_ref, LookAgainModel):
        return model_ref
    key = (str(model_ref), os.stat(model_ref).st_mtime_ns)
    if key not in _WORKER_MODELS:
        _WORKER_MODELS.clear()
        _WORKER_MODELS[key] = load_model(model_ref)[0]
    return _WORKER_MODELS[key]


def analyze_recording(job: RecordingJob, model_ref, options: AnalyzeOptions) -> RecordingSummary:
    """Analyze one recording (runs in the caller's process or on a Dask worker).

    An unusable recording gives a summary with ``error`` set instead of raising, so one bad
    file does not stop a batch.
    """
    t0 = time.perf_counter()
    _undo_fixed_malloc_thresholds()
    if options.torch_threads:
        import torch

        torch.set_num_threads(options.torch_threads)
    try:
        # One run at a time per recording (a second one skips it); the ledger is read under the lock.
        with command_line(options.command_line), \
                RecordingLock(OutputLedger.lock_path_for(options.project_folder, job.pose_file)):
            return _analyze_under_lock(job, model_ref, options, t0)
    except LockedError as exc:
        logger.warning("%s: %s", job.pose_file.name, exc)
        summary = RecordingSummary.failed(job.pose_file, "", time.perf_counter() - t0)
        summary.error, summary.skipped = None, str(exc)
        return summary
    except (PoseFormatError, FileNotFoundError, FileExistsError, OSError) as exc:
        logger.error("%s (skipped)", exc)
        return RecordingSummary.failed(job.pose_file, str(exc), time.perf_counter() - t0)


def _analyze_under_lock(job: RecordingJob, model_ref, options: AnalyzeOptions, t0: float) -> RecordingSummary:
    """:func:`analyze_recording` once the recording's lock is held."""
    from dlc_lookagain.io.annotations import extra_output_paths, time_budget_of, write_annotations
    from dlc_lookagain.model.feature_cache import FeatureCache

    ledger = OutputLedger(options.project_folder, job.pose_file)
    status, paths, meta, fingerprint = recording_status(job, options)
    extras = _wanted_extras(job, options)
    # Every earlier extra (figures, exports, labeled video), asked for or not, belongs to the
    # outputs being replaced: none may stay beside the new files.
    every_extra = list(extra_output_paths(job.pose_file, options.destfolder).values())
    # Temporary files of a killed run (ours, by name) go: nobody else writes them while we hold the lock.
    for target in [*paths.values(), *every_extra, ledger.path]:
        for leftover in stale_temporaries(target):
            logger.info("%s: removing %s left by an interrupted run", job.pose_file.name, leftover.name)
            leftover.unlink(missing_ok=True)
    if not ledger.exists and status != "new":
        ledger.adopt_legacy([*paths.values(), *every_extra], _made_by_us(paths["behaviors_h5"], meta))
    keep = status == "current" or (status == "stale" and not options.recompute_changed)
    if keep and not options.overwrite:
        summary = RecordingSummary.from_outputs(job.pose_file, meta, paths)
        written, now = _write_extras(job, None, paths, extras, meta, options, replace_all=False,
                                     ledger=ledger)
        summary.outputs.update(written)
        summary.extras_written = now
        summary.skipped = "up to date"
        if now:
            logger.info("%s: behavior files up to date; wrote %s", job.pose_file.name, ", ".join(now))
        return summary
    # Nothing is written over or moved unless we wrote it: checked before any work is done.
    ledger.check_replaceable([*paths.values(), *every_extra])
    rec = job.load()
    summary = RecordingSummary.from_record(rec)
    net = _worker_model(model_ref)
    if status == "stale" and not options.overwrite:
        moved = _retire([*paths.values(), *every_extra], options.project_folder)
        ledger.forget([*paths.values(), *every_extra])
        logger.info("%s: inputs changed (%s); recomputing, earlier outputs moved to %s",
                    job.pose_file.name, _changed(meta.get("inputs", {}), fingerprint), moved)
    else:
        if status == "incomplete":
            logger.info("%s: completing the outputs of an interrupted run", job.pose_file.name)
        stale_extras = [p for p in every_extra if p.exists() and p not in extras.values()]
        if stale_extras and status != "new":
            _retire(stale_extras, options.project_folder)
            ledger.forget(stale_extras)
    cache = FeatureCache(options.project_folder / "lookagain" / "vision-cache")
    # The vision encoder is built once per process and reused for the next recordings.
    key = (net.config.vision_encoder, net.config.crop_scale)
    fps = resolve_fps(rec, options.fps)
    prediction, extractor = predict_recording(rec, net, options.top_k, extractor=_WORKER_STATE.get(key),
                                              cache=cache, progress=options.progress, fps=fps)
    _WORKER_STATE[key] = extractor
    looked = prediction.looked if prediction.looked.ndim == 1 else prediction.looked.any(axis=1)
    summary.looked_fraction = float(looked.mean())
    min_bout = max(1, int(round(options.min_bout_s * fps)))
    # The time-budget figure's definition (share of tracked time inside a written bout), pooled over animals.
    summary.time_budget = time_budget_of(prediction, min_bout)
    extra_meta = {
        "inputs": fingerprint,
        "looked_fraction": summary.looked_fraction,
        "time_budget": summary.time_budget,
        "n_bodyparts": rec.n_bodyparts,
        "missing_fraction": summary.missing_fraction,
        "video_scale": float(rec.video_scale),
    }
    if getattr(net, "kind", "") == "bundled" and list(prediction.behaviors) != list(net.config.behaviors):
        extra_meta["behavior_source"] = "movement states: the recording is outside the bundled model's domain"
    outputs = write_annotations(rec, prediction, destfolder=options.destfolder, overwrite=True,
                                min_bout_frames=min_bout, extra_metadata=extra_meta)
    ledger.record(outputs.values())
    summary.outputs = dict(outputs)
    summary.annotations_written = True
    written, summary.extras_written = _write_extras(job, rec, outputs, extras, extra_meta, options,
                                                    replace_all=True, ledger=ledger)
    summary.outputs.update(written)
    summary.seconds = time.perf_counter() - t0
    top = sorted(summary.time_budget.items(), key=lambda kv: -kv[1])[:3]
    logger.info("%s: %d frames, looked at %.0f%%, %.1f s; most time (share of tracked time in bouts, as in "
                "the time-budget figure): %s", rec.source.name, rec.n_frames,
                100 * summary.looked_fraction, summary.seconds,
                ", ".join(f"{b} {100 * v:.0f}%" for b, v in top))
    return summary


# --------------------------------------------------------------------------- many recordings


def _run_serial(jobs, model_ref, options: AnalyzeOptions, progress: bool) -> list[RecordingSummary]:
    bar = None
    if progress and len(jobs) > 1:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(jobs), desc="recordings", unit="video")
    summaries = []
    try:
        for job in jobs:
            summaries.append(analyze_recording(job, model_ref, options))
            if bar is not None:
                _advance(bar, summaries)
    finally:
        if bar is not None:
            bar.close()
    return summaries


def _advance(bar, summaries) -> None:
    frames = sum(s.n_frames for s in summaries if s.annotations_written)
    looked = sum(int(round(s.n_frames * s.looked_fraction)) for s in summaries if s.annotations_written)
    bar.set_postfix(frames=frames, looked=looked, refresh=False)
    bar.update(1)


def _dask_client(n_workers: int, scheduler):
    """``(client, things to close)``: an existing client/scheduler, else a LocalCluster."""
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError('parallel analysis needs Dask: pip install "dlc_lookagain[dask]"') from exc
    if scheduler is None:
        # One thread per worker process: torch inside each worker gets its share of the cores.
        import dask

        # Dask spawns workers with MALLOC_TRIM_THRESHOLD_=65536, which makes glibc hand memory back
        # after every large free: torch and OpenCV then run about 3x slower (measured, see
        # docs/benchmarks.md). Unset it for our workers (also if an earlier cluster of this process
        # left it in os.environ).
        inherited = os.environ.pop("MALLOC_TRIM_THRESHOLD_", None)
        # Dask's nannies also write their worker variables into this process's os.environ.
        before = {k: os.environ.get(k) for k in dask.config.get("distributed.nanny.pre-spawn-environ")}
        try:
            with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}):
                cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=logging.WARNING)
        except RuntimeError as exc:
            # Worker processes are spawned: they re-import the caller's script, which must not start
            # analyze again on import (the same rule as for torch DataLoader workers).
            raise RuntimeError(
                "could not start the Dask worker processes. In a Python script, call analyze(..., "
                "n_workers>1) under `if __name__ == \"__main__\":` (see docs/cluster.md), or use "
                f"`dlc-lookagain analyze --n-workers {n_workers}` ({exc})") from exc
        finally:
            for key, value in before.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            if inherited is not None and inherited != "65536":
                os.environ["MALLOC_TRIM_THRESHOLD_"] = inherited  # the user's own setting
        client = Client(cluster)
        return client, [client, cluster]
    if isinstance(scheduler, str):
        client = Client(scheduler)
        return client, [client]
    return scheduler, []


def _run_dask(jobs, model_ref, options: AnalyzeOptions, n_workers: int, scheduler, progress: bool):
    from distributed import as_completed

    client, to_close = _dask_client(n_workers, scheduler)
    if scheduler is None:
        options = replace(options, torch_threads=max(1, (os.cpu_count() or 1) // n_workers))
    # Workers show no bars of their own; the overall bar below is the one the user sees.
    options = replace(options, progress=False)
    bar = None
    try:
        logger.info("analyzing %d recording(s) on %s", len(jobs), client)
        futures = {client.submit(analyze_recording, job, model_ref, options, pure=False,
                                 key=f"lookagain-{i}-{job.pose_file.name}"): i for i, job in enumerate(jobs)}
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(jobs), desc="recordings", unit="video")
        results: dict[int, RecordingSummary] = {}
        for future in as_completed(futures):
            results[futures[future]] = future.result()
            if bar is not None:
                _advance(bar, list(results.values()))
            s = results[futures[future]]
            if s.annotations_written:
                logger.info("%s: done (%.1f s, looked at %.0f%%)", s.pose_file.name, s.seconds,
                            100 * s.looked_fraction)
        return [results[i] for i in range(len(jobs))]
    finally:
        if bar is not None:
            bar.close()
        for thing in to_close:
            thing.close()


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
    figures: bool = True,
    labeled_video: bool = False,
    exports=(),
    n_workers: int = 1,
    scheduler=None,
    workspace: str | Path | None = None,
    recompute_changed: bool = True,
    fps: float | None = None,
    vision_encoder: str | None = None,
    progress: bool = True,
) -> list[RecordingSummary]:
    """Label behaviors in every analyzed recording of a pose project and write them beside the poses.

    Parameters
    ----------
    config_path : str or Path
        A DeepLabCut ``config.yaml`` (or project folder), a DLC ``.h5``/``.csv`` (its video is
        looked for beside it; none found means keypoints only, with a warning), a SLEAP
        ``.slp`` or a SLEAP analysis ``.h5``.
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
        Recompute every recording, even those whose outputs are up to date. (Outputs made from
        other inputs are recomputed anyway; the earlier files are then moved to
        ``<project>/lookagain/replaced/``.)
    recompute_changed : bool
        Recompute outputs made from other inputs (another pose file, model, ``top_k``); False
        keeps them as they are and only adds the missing figures and exports (``dlc-lookagain
        export``).
    min_bout_s : float
        Bouts shorter than this are left out of the bout table.
    figures : bool
        Write ``<stem>_ethogram.png`` and ``<stem>_time_budget.png`` per recording.
    labeled_video : bool
        Also write ``<stem>_lookagain_labeled.mp4`` (not DeepLabCut's ``_labeled.mp4``): the video with keypoints and behaviors drawn.
    exports : sequence of {"boris", "nwb"}
        Extra formats: a BORIS aggregated-events table (``<stem>_behaviors_boris.tsv``) and an
        NWB file with the poses (ndx-pose) and behavior intervals (``<stem>_behaviors.nwb``,
        needs ``pip install "dlc_lookagain[nwb]"``).
    n_workers : int
        Recordings analyzed in parallel on a local Dask cluster (needs ``dlc_lookagain[dask]``);
        1 runs them one after the other in this process.
    scheduler : str or distributed.Client, optional
        An existing Dask cluster to run on (``"tcp://host:8786"`` or a client, e.g. of a
        dask-jobqueue ``SLURMCluster``; see docs/cluster.md). Overrides ``n_workers``.
    workspace : path, optional
        The folder whose ``lookagain/`` holds the project's models, the vision cache and replaced
        outputs. Default: the DLC project folder, or the folder of the pose file (a caller
        analyzing a temporary copy, like the SLEAP export, points it at the user's project).
    fps : float, optional
        Frame rate of the recordings. Default: from the video or SLEAP file; a DLC csv/h5 without
        its video stores none, and 30 is then assumed with a warning.
    vision_encoder : str, optional
        Vision backbone spec to look with (:func:`dlc_lookagain.model.vision.load_vision_encoder`),
        e.g. the ``"torchscript:/path/model.pt"`` a model was trained with. A model file may only
        name a built-in backbone itself: a file-based one must come from you.
    progress : bool
        Show progress bars.

    Returns
    -------
    list of RecordingSummary
        One per recording: frames, fraction looked at, time budget per behavior (share of
        tracked animal-frames inside a bout, as in the time-budget figure), output paths, why it
        was skipped or the error that stopped it.

    Raises
    ------
    PoseFormatError
        The project cannot be read, or no recording could be analyzed (the first error).
    """
    top_k = check_top_k(top_k)
    exports = tuple(exports or ())
    unknown = [e for e in exports if e not in EXPORTS]
    if unknown:
        raise ValueError(f"unknown export(s) {unknown}; choose from {list(EXPORTS)}")
    if int(n_workers) < 1:
        raise ValueError(f"n_workers must be at least 1, got {n_workers}")
    jobs = plan_recordings(
        config_path, videos, videotype=videotype, destfolder=destfolder,
        shuffle=shuffle, filtered=filtered, track_method=track_method,
    )
    from dlc_lookagain.model_store import project_folder

    from dlc_lookagain.io.paths import absolute_path

    workspace = Path(workspace).expanduser() if workspace is not None else project_folder(config_path)
    workspace = absolute_path(workspace)
    destfolder = absolute_path(Path(destfolder).expanduser()) if destfolder is not None else None
    net, manifest, model_ref = _model_for_run(workspace, model, vision_encoder, top_k)
    options = AnalyzeOptions(
        top_k=float(top_k), destfolder=Path(destfolder) if destfolder is not None else None,
        overwrite=overwrite, min_bout_s=float(min_bout_s), figures=figures, labeled_video=labeled_video,
        exports=exports, progress=progress, project_folder=workspace, recompute_changed=recompute_changed,
        fingerprint={"model_sha256": model_sha256(net, manifest), "top_k": float(top_k),
                     "min_bout_s": float(min_bout_s), **({"fps": float(fps)} if fps is not None else {}),
                     **({"vision_encoder": vision_encoder} if vision_encoder is not None else {})},
        fps=None if fps is None else float(fps), command_line=in_command_line(),
    )
    if scheduler is not None or n_workers > 1:
        summaries = _run_dask(jobs, model_ref, options, int(n_workers), scheduler, progress)
    else:
        summaries = _run_serial(jobs, model_ref, options, progress)

    _report(summaries)
    return summaries


def _model_for_run(workspace: Path, model, vision_encoder: str | None, top_k: float):
    """The model of this run, its manifest, and what workers load it from (its path when it has
    one, so that a Dask worker reads the file rather than receiving a pickled model)."""
    from dlc_lookagain.model.lookagain import LookAgainModel, use_vision_encoder, vision_encoder_spec

    net, manifest = resolve_model(workspace, model)
    if vision_encoder is not None:
        use_vision_encoder(net, vision_encoder)  # the caller names it: the model file never may
    elif top_k > 0 and getattr(net, "decision", None) is None:
        vision_encoder_spec(net)  # refuse now, not once per recording
    model_ref = (manifest["path"] if manifest.get("path") and not isinstance(model, LookAgainModel)
                 and vision_encoder is None else net)
    _WORKER_MODELS.clear()
    if isinstance(model_ref, str):
        _WORKER_MODELS[(model_ref, os.stat(model_ref).st_mtime_ns)] = net
    return net, manifest, model_ref


def _report(summaries: list[RecordingSummary]) -> None:
    """Log what the run did; raise the first error when no recording could be analyzed."""
    failed = [s for s in summaries if s.error]
    done = sum(s.annotations_written for s in summaries)
    skipped = sum(bool(s.skipped) for s in summaries)
    if failed and len(failed) == len(summaries):
        first = failed[0]
        prefix = f"{first.pose_file}: "
        error = PoseFormatError(first.pose_file, first.error[len(prefix):] if first.error.startswith(prefix)
                                else first.error)
        error.logged = True  # each recording's error is in the log already: the CLI need not repeat it
        raise error
    extras = sum(len(s.extras_written) for s in summaries if s.skipped)
    if done == 0 and skipped == len(summaries) and not extras:
        logger.info("nothing to do: all %d recording(s) are up to date (%s recomputes)", skipped,
                    option_text("overwrite", True))
    elif done == 0 and skipped == len(summaries):
        logger.info("behavior files of all %d recording(s) up to date; wrote %d missing figure/export "
                    "file(s)", skipped, extras)
    else:
        logger.info("%d recording(s) analyzed, %d up to date, %d failed", done, skipped, len(failed))
