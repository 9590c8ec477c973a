"""Pretraining and training on a lab's own project: ``dlc_lookagain.pretrain`` and ``dlc_lookagain.train``.

Both start from the bundled weights (motion encoder, quantizer, fusion and gate pretrained on
generated data, see ``docs/model_card.md``) and save the adapted model in the project folder:
``<project>/lookagain/models/<name>.pt`` with ``<name>.pt.manifest.json`` beside it (skeleton,
behaviors, the hash of the data it was trained on, package version, held-out scores). Vision
features are cached in ``<project>/lookagain/vision-cache/`` so a second run never decodes a frame
twice. Nothing the user had is modified.
"""

from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path

import numpy as np
import torch

from dlc_lookagain.errors import PoseFormatError
from dlc_lookagain.io.labels import read_labels
from dlc_lookagain.io.record import PoseRecord
from dlc_lookagain.model.look_schedule import DEFAULT_POLICY, POLICIES
from dlc_lookagain.model_store import (  # noqa: F401  (re-exported: public API of this module)
    BUNDLED_MODEL_NAME, bundled_model_path, load_default_model, project_folder)

logger = logging.getLogger(__name__)

__all__ = ["pretrain", "train", "bundled_model_path", "load_default_model", "find_label_file",
           "project_folder"]

LABEL_SUFFIXES = ("_labels.csv", "_labels.tsv", "_behaviors_labels.csv", ".boris.csv", ".boris.tsv", "_boris.csv",
                  "_boris.tsv", "_bouts.csv")


def _records(config_path, videos=None, progress: bool = True) -> list[PoseRecord]:
    from dlc_lookagain.pipeline import read_inputs

    records = read_inputs(config_path, videos, progress=progress)
    if not records:
        raise PoseFormatError(Path(config_path), "no analyzed recordings found")
    return records


def _video_stem(rec: PoseRecord) -> str:
    if rec.video_path is not None:
        return Path(rec.video_path).stem
    from dlc_lookagain.io.dlc import parse_dlc_output_name

    parsed = parse_dlc_output_name(Path(rec.source).name)
    if parsed is not None:
        return parsed.video_stem
    return Path(rec.source).stem.split(".")[0]  # SLEAP: <video>.predictions.slp, <video>.analysis.h5


def find_label_file(rec: PoseRecord, labels=None) -> Path | None:
    """The label file of a recording.

    ``labels`` may be None (look beside the video and the pose file for ``<video>_labels.csv``,
    ``<video>.boris.csv``, ...), a folder (look there), a single file (used for every recording:
    only sensible with one), or a dict ``{video stem or video path: label file}``.
    """
    stem = _video_stem(rec)
    if isinstance(labels, dict):
        for key, value in labels.items():
            if Path(str(key)).stem == stem or str(key) == stem:
                return Path(value)
        return None
    if labels is not None and Path(labels).is_file():
        return Path(labels)
    folders = [Path(labels)] if labels is not None else []
    if labels is None:
        if rec.video_path is not None:
            folders.append(Path(rec.video_path).parent)
        folders.append(Path(rec.source).parent)
    from dlc_lookagain.io.annotations import output_paths_for

    # Our own bout table is never a label file (a SLEAP file named like its video would match).
    ours = {p.resolve() for p in output_paths_for(rec.source).values()}
    for folder in folders:
        for suffix in LABEL_SUFFIXES:
            candidate = folder / f"{stem}{suffix}"
            if candidate.is_file() and candidate.resolve() not in ours:
                return candidate
    return None


def _data_hash(records: list[PoseRecord], label_files: list[Path | None]) -> str:
    h = hashlib.sha256()
    for rec, lab in zip(records, label_files):
        for p in (rec.source, lab):
            if p is not None and Path(p).is_file():
                h.update(Path(p).name.encode())
                h.update(Path(p).read_bytes())
    return h.hexdigest()[:16]


def _sequence(rec: PoseRecord, extractor, cache, frames: np.ndarray | None, targets=None, progress=True,
              fps: float | None = None):
    from dlc_lookagain.model.look import attach_visual, look
    from dlc_lookagain.model.pose_tokens import tokenize
    from dlc_lookagain.model.windows import Sequence

    pose = tokenize(rec)
    from dlc_lookagain.io.record import resolve_fps

    seq = Sequence(_video_stem(rec), pose, resolve_fps(rec, fps), targets=targets)
    if frames is not None and frames.size and rec.video_path is not None and extractor is not None:
        attach_visual(seq, look(rec, pose, frames, extractor, cache, progress=progress))
    elif rec.video_path is None:
        logger.warning("%s: no video; trained on keypoints only", rec.source)
    return seq


def _start_model(model):
    from dlc_lookagain.model.lookagain import load_model

    if model is None:
        return load_default_model()
    if isinstance(model, (str, Path)):
        return load_model(model)
    return model, {}


def _setup(config_path, videos, model, seed: int, progress: bool = True):
    """Records, starting model, and the vision extractor with the project's feature cache."""
    from dlc_lookagain.model.lookagain import vision_encoder_spec
    from dlc_lookagain.model.feature_cache import FeatureCache
    from dlc_lookagain.model.visual_features import FrameFeatureExtractor

    torch.manual_seed(seed)
    folder = project_folder(config_path)
    records = _records(config_path, videos, progress)
    start, _ = _start_model(model)
    extractor = FrameFeatureExtractor(vision_encoder_spec(start), crop_scale=start.config.crop_scale)
    cache = FeatureCache(folder / "lookagain" / "vision-cache")
    return folder, records, start, extractor, cache


def training_labels(label_files) -> dict:
    """Manifest entries naming the label files a model was trained on: their paths (absolute) and
    their SHA-256, so that ``evaluate`` recognises them also in a copied or moved project."""
    from dlc_lookagain.io.ledger import file_sha256
    from dlc_lookagain.io.paths import absolute_path

    return {"label_files": [str(absolute_path(Path(f))) for f in label_files],
            "label_sha256": [file_sha256(f) for f in label_files]}


def _save(model, folder: Path, name: str, extra: dict) -> Path:
    from dlc_lookagain.model.lookagain import save_model

    out = folder / "lookagain" / "models" / f"{name}.pt"
    if out.exists():
        stamp = time.strftime("%Y%m%d-%H%M%S")
        out = out.with_name(f"{name}-{stamp}.pt")
    save_model(model, out, extra=extra)
    logger.info("model saved to %s", out)
    return out


def pretrain(config_path, *, videos=None, model=None, name: str = "pretrained", vision_fraction: float = 0.1,
             steps: int = 600, seed: int = 0, progress: bool = True) -> Path:
    """Adapt the motion encoder to a project by self-supervised pretraining (no labels needed).

    Parameters
    ----------
    config_path : str or Path
        DeepLabCut ``config.yaml`` / project folder, or a single DLC or SLEAP pose file.
    videos : list, optional
        Only these videos.
    model : path or LookAgainModel, optional
        Start from this model instead of the bundled weights.
    name : str
        File name of the saved model (``<project>/lookagain/models/<name>.pt``; an existing file
        is never overwritten: a timestamp is appended).
    vision_fraction : float
        Fraction of frames (uniform) whose vision features train the cross-modal loss.
    steps : int
        Optimisation steps (about 0.3-0.6 s each on 2 CPU cores).

    Returns
    -------
    Path of the saved model.
    """
    from dlc_lookagain.model.inference import uniform_frames
    from dlc_lookagain.model.training import TrainConfig
    from dlc_lookagain.model.training import pretrain as pretrain_model

    folder, records, start, extractor, cache = _setup(config_path, videos, model, seed, progress)
    seqs = [_sequence(r, extractor, cache, uniform_frames(r.n_frames, vision_fraction), progress=progress)
            for r in records]
    history = pretrain_model(start, seqs, TrainConfig(seed=seed), steps=steps, progress=progress)
    extra = {"kind": "pretrained", "skeleton": list(records[0].bodyparts),
             "data_sha256": _data_hash(records, [None] * len(records)),
             "recordings": [str(r.source) for r in records], "final_losses": history[-1] if history else {}}
    return _save(start, folder, name, extra)


def train(config_path, labels=None, *, videos=None, behaviors=None, model=None, name: str = "behavior",
          fps: float | None = None, decision: str = "boosted", encoder: bool = False, folds: int = 5,
          look: float = 0.25, look_policy: str = DEFAULT_POLICY, part_dropout: bool = False, keep_poses: bool = True,
          seed: int = 0, progress: bool = True, steps: int = 1200, gate_steps: int = 400,
          finetune_steps: int = 300, holdout: float = 0.25) -> Path:
    """Train the behavior classifier on a lab's own annotations.

    The default decision layer is gradient-boosted trees over the keypoint feature bank (and, with
    ``encoder=True``, the pretrained motion embedding; with videos, what ``look`` of the frames
    show around each animal) with every decision threshold and minimum bout length chosen by
    blocked cross-validation across your labeled recordings; every labeled frame then trains the
    final model. The cross-validated F1 per behavior is logged, written to
    the model's manifest and is what to expect on a new recording (docs/training.md).

    Parameters
    ----------
    config_path : str or Path
        DeepLabCut ``config.yaml`` / project folder, or a single DLC or SLEAP pose file.
    labels : None, folder, file or dict
        Where the annotations are (see :func:`find_label_file`): frame tables
        (``<video>_labels.csv``: one 0/1 column per behavior, or a ``label`` column), bout tables
        and BORIS exports. Recordings without a label file are left out (logged).
    behaviors : list of str, optional
        Classes to learn, in order; default: every behavior found in the label files.
    model : path or LookAgainModel, optional
        Start from this model (e.g. the output of :func:`pretrain`) instead of the bundled weights;
        its motion encoder gives the embedding features.
    name : str
        Saved as ``<project>/lookagain/models/<name>.pt`` (never overwriting).
    fps : float, optional
        Frame rate of the recordings (a DLC csv stores none; default: the video's, else the label
        file's, else 30 with a warning).
    decision : {"boosted", "neural"}
        ``"boosted"`` (default, measured best: docs/benchmarks.md), or the end-to-end network head
        of earlier versions (``steps``, ``gate_steps``, ``finetune_steps``, ``holdout`` apply to it
        only).
    encoder : bool
        Also offer the motion encoder's embedding to the trees; it is used for a behavior only where
        it raises the cross-validated F1.
    folds : int
        Cross-validation folds: recordings held out whole when there are several (up to ``folds``
        groups), else contiguous time blocks of the one recording.
    look : float
        Fraction of each labeled recording's frames looked at (as ``analyze`` does at ``top_k``;
        default 0.25, its default): the rotated body and head crops of each animal
        (:mod:`dlc_lookagain.features.appearance`), carried to the nearby frames with the time to
        them. A behavior reads them only where they raise its cross-validated F1 by more than
        0.01; then ``analyze`` looks at ``top_k`` of the frames of recordings with a video (and
        decides from keypoints only, with thresholds chosen for that, without one). 0: keypoints only.
    look_policy : {"uniform", "gate"}
        Which frames (:mod:`dlc_lookagain.model.look_schedule`): ``"uniform"`` (default), evenly
        spaced; ``"gate"`` spends each recording's budget where the keypoint-only decisions are
        closest to their thresholds (chosen here from out-of-fold probabilities). ``analyze``
        chooses its frames the same way. Measured (docs/benchmarks.md, 3 seed sets): a tie with
        evenly spaced frames at 25 %; at 3 % on short, rare events +0.036 macro F1 on videos like
        the labeled ones, +0.006 under a domain shift.
    part_dropout : bool
        Also train on a copy of each recording in which, block by block, one bodypart is replaced
        by the guess a project lacking it would get
        (:func:`dlc_lookagain.features.skeleton.part_dropout_copy`). Off by default: measured over
        3 seeds, with a part missing it lost more than the default (thresholds chosen again for
        placed parts) in three of four cases (docs/benchmarks.md, "A changed skeleton").
    keep_poses : bool
        Keep the labeled poses and labels in the model file (float32; about 0.2 MB per labeled
        animal-minute at 30 fps with 10 bodyparts), so that ``analyze`` on a project lacking a training
        bodypart chooses the decision thresholds again for its placed parts
        (:mod:`dlc_lookagain.model.refit`; measured, a missing ethome tail then costs 0.014 F1
        instead of 0.111). Turn off to share a model
        without its training poses.

    Returns
    -------
    Path of the saved model.
    """
    if decision == "neural":
        return _train_neural(config_path, labels, videos=videos, behaviors=behaviors, model=model, name=name,
                             steps=steps, gate_steps=gate_steps, finetune_steps=finetune_steps,
                             holdout=holdout, seed=seed, progress=progress, fps=fps)
    if decision != "boosted":
        raise ValueError(f"decision must be 'boosted' or 'neural', got {decision!r}")
    from dlc_lookagain.io.record import resolve_fps
    from dlc_lookagain.features.skeleton import part_dropout_copy, training_skeleton
    from dlc_lookagain.model.decision import LabeledFeatures, fit_decision_layer
    from dlc_lookagain.model.frame_features import align_columns, frame_features
    from dlc_lookagain.model.look_schedule import training_frames

    if not 0.0 <= float(look) <= 1.0:
        raise ValueError(f"look must be a fraction of frames within [0, 1], got {look}")
    if look_policy not in POLICIES:
        raise ValueError(f"look_policy must be one of {', '.join(POLICIES)}, got {look_policy!r}")

    t0 = time.perf_counter()
    torch.manual_seed(seed)
    folder = project_folder(config_path)
    records = _records(config_path, videos, progress)
    start, _ = _start_model(model)
    pairs = _labeled_pairs(config_path, records, labels)
    behaviors = _behaviors_of(pairs, behaviors, fps)
    samples, names, groups, used, kept_labels = [], None, None, [], []
    offer_vision = look > 0 and any(r.video_path is not None for r, _ in pairs)
    if look > 0 and not offer_vision:
        logger.info("no labeled recording has a video: keypoint features only")
    profile = training_skeleton([r for r, _ in pairs]) if part_dropout and pairs else None
    for r, f in pairs:
        lab = read_labels(f, n_frames=r.n_frames, fps=fps or r.fps, individuals=r.individuals, behaviors=behaviors)
        rec_fps = resolve_fps(r, fps, label_fps=lab.fps)
        x, rec_names, rec_groups = frame_features(r, rec_fps, net=start, encoder=encoder, progress=progress)
        x_aug = None
        if profile is not None:
            copy = part_dropout_copy(r, profile, fps=rec_fps, seed=seed)
            if copy is not r:
                x_aug = frame_features(copy, rec_fps, net=start, encoder=encoder, progress=False)[0]
        if names is None:
            names, groups = rec_names, rec_groups
        elif rec_names != names:
            # Recordings with other skeletons: every one is read in the first one's columns.
            x = align_columns(x, rec_names, names, r.source.name)
            x_aug = None if x_aug is None else align_columns(x_aug, rec_names, names, r.source.name)
        samples.append(LabeledFeatures(x, lab.present, lab.annotated, rec_fps, r.source.name, augmented=x_aug))
        used.append((r, f, rec_fps))
        kept_labels.append((lab.present, lab.annotated))
        logger.info("%s: %d labeled animal-frames (%s)", f.name, int(lab.annotated.sum()),
                    ", ".join(f"{b} {int(lab.present[..., c][lab.annotated].sum())}" for c, b in enumerate(behaviors)))
    fit = dict(k=folds, seed=seed, progress=progress, cache={})
    n_looked = 0
    if offer_vision:
        if look_policy == "gate":
            logger.info("keypoint-only cross-validation, to choose the frames to look at (%.0f%% of each video)",
                        100 * look)
        looks = training_frames(look_policy, samples, behaviors, names, groups, look, **fit)
        names, groups, n_looked = _append_vision(samples, [r for r, _, _ in used], names, groups, looks, progress)
    layer = fit_decision_layer(samples, behaviors, names, groups=groups, **fit)
    layer.look_policy = look_policy
    layer.look_fraction = float(look) if n_looked else 0.0
    layer.skeleton = training_skeleton([r for r, _, _ in used])
    if keep_poses:
        layer.training_poses = _training_poses(used, kept_labels, layer.skeleton, folds)
    start.set_behaviors(behaviors)
    start.decision = layer
    seconds = time.perf_counter() - t0
    for b, v in zip(behaviors, layer.cv_f1):
        logger.info("%-20s cross-validated F1 %s", b, "n/a (no positive frame)" if not np.isfinite(v) else f"{v:.3f}")
        if np.isfinite(v) and v == 0:
            logger.warning("%s: no held-out %s frame was found by the models trained on the other folds (too "
                           "few examples, or all in one recording?): its threshold is the lowest tried and its "
                           "output is untested; label it in more recordings", b, b)
    logger.info("cross-validation: %s; trained in %.0f s", layer.cv, seconds)
    extra = {"kind": "behavior", "decision": "boosted-trees", "skeleton": list(records[0].bodyparts),
             "data_sha256": _data_hash([r for r, _, _ in used], [f for _, f, _ in used]),
             **training_labels([f for _, f, _ in used]), "fps": [fp for _, _, fp in used],
             "cv": layer.cv,
             "cv_f1": {b: (None if not np.isfinite(v) else float(v)) for b, v in zip(behaviors, layer.cv_f1)},
             "feature_groups": {b: g for b, g in zip(behaviors, layer.chosen_groups)},
             "thresholds": {b: float(v) for b, v in zip(behaviors, layer.thresholds)},
             "min_bout_s": {b: float(v) for b, v in zip(behaviors, layer.min_bout_s)},
             "smooth_s": {b: float(v) for b, v in zip(behaviors, layer.smooth_s)},
             "pooled_over_animals": {b: bool(v) for b, v in zip(behaviors, layer._pooled())},
             "look_fraction": layer.look_fraction, "look_policy": layer.look_policy,
             "frames_looked_at": int(n_looked),
             "part_dropout": bool(profile is not None),
             "training_poses_kept": bool(keep_poses),
             "train_seconds": round(seconds, 1)}
    return _save(start, folder, name, extra)


def _append_vision(samples, records, names, groups, looks, progress):
    """Append the vision columns of ``looks`` to every sample (NaN for recordings without a video,
    so that all share columns); returns names, groups and the number of frames looked at. Without
    a single readable video the vision group is not offered."""
    from dlc_lookagain.model.frame_features import with_vision

    n_looked = 0
    out_names, out_groups = names, groups
    for s, r, frames in zip(samples, records, looks):
        base = s.features.shape[-1]
        x, out_names, out_groups, looked = with_vision(s.features, names, groups, r, s.fps, frames,
                                                       progress=progress)
        s.features = x
        if s.augmented is not None:  # the copy changes keypoints, not pixels: the same looks
            s.augmented = np.concatenate([s.augmented, x[..., base:]], axis=-1)
        n_looked += looked.size
        if r.video_path is None:
            logger.info("%s: no video found; its frames train the keypoint features only", r.source.name)
    if n_looked == 0:  # no video could be read: the (all-NaN) columns stay, but are never offered
        return out_names, {g: v for g, v in out_groups.items() if g != "vision"}, 0
    return out_names, out_groups, n_looked


def _training_poses(used, labels, skeleton, folds):
    """The labeled recordings as the model keeps them: training bodyparts in training order,
    float32, no video, landmarks or metadata."""
    from dlc_lookagain.features.skeleton import rename_to_training
    from dlc_lookagain.io.record import PoseRecord
    from dlc_lookagain.model.decision import DEFAULT_ROUNDS
    from dlc_lookagain.model.refit import TrainingPoses

    records = []
    for r, _, fps in used:
        r = rename_to_training(r, skeleton)
        records.append(PoseRecord(keypoints=np.asarray(r.keypoints, np.float32),
                                  confidence=np.asarray(r.confidence, np.float32), individuals=list(r.individuals),
                                  bodyparts=list(r.bodyparts), fps=float(fps), source=Path(r.source.name)))
    if any(rec.bodyparts != records[0].bodyparts for rec in records):
        logger.info("the labeled recordings do not share one skeleton; the model keeps no training poses")
        return None
    return TrainingPoses(records, [p for p, _ in labels], [a for _, a in labels], folds=folds, rounds=DEFAULT_ROUNDS)


def _labeled_pairs(config_path, records, labels):
    """``(record, label file)`` of every recording that has one (the others are logged)."""
    label_files = [find_label_file(r, labels) for r in records]
    pairs = [(r, f) for r, f in zip(records, label_files) if f is not None]
    for r, f in zip(records, label_files):
        if f is None:
            logger.info("%s: no label file found; not used for training", r.source)
    if not pairs:
        raise FileNotFoundError(f"no label files found for the recordings of {config_path} (looked for "
                                f"<video>{', <video>'.join(LABEL_SUFFIXES)} beside videos and pose files)")
    return pairs


def _behaviors_of(pairs, behaviors, fps) -> list[str]:
    if behaviors is not None:
        return list(behaviors)
    found: list[str] = []
    for r, f in pairs:
        for b in read_labels(f, n_frames=r.n_frames, fps=fps or r.fps, individuals=r.individuals).behaviors:
            if b not in found:
                found.append(b)
    return found


def _train_neural(config_path, labels=None, *, videos=None, behaviors=None, model=None, name: str = "behavior",
                  steps: int = 1200, gate_steps: int = 400, finetune_steps: int = 300, holdout: float = 0.25,
                  seed: int = 0, progress: bool = True, fps: float | None = None) -> Path:
    """The end-to-end network head of earlier versions (``train(decision="neural")``).

    The last ``holdout`` of every labeled recording is kept out of training; it trains the gate and
    calibrates the decision thresholds, and its scores go into the manifest.
    """
    from dlc_lookagain.model.heads import f1_per_class
    from dlc_lookagain.model.inference import fused_pass
    from dlc_lookagain.model.training import TrainConfig, calibrate, fine_tune_with_gate, fit_behavior, fit_gate

    folder, records, start, extractor, cache = _setup(config_path, videos, model, seed, progress)
    pairs = _labeled_pairs(config_path, records, labels)
    behaviors = _behaviors_of(pairs, behaviors, fps)
    start.set_behaviors(behaviors)
    fit_part, hold_part = [], []
    for r, f in pairs:
        lab = read_labels(f, n_frames=r.n_frames, fps=r.fps, individuals=r.individuals, behaviors=behaviors)
        targets = np.where(lab.annotated[..., None], lab.present, np.nan).astype(np.float32)
        seq = _sequence(r, extractor, cache, np.arange(r.n_frames), targets, progress=progress, fps=fps)
        cut = int(round(seq.n_frames * (1 - holdout)))
        fit_part.append(_slice(seq, 0, cut))
        hold_part.append(_slice(seq, cut, seq.n_frames))
    cfg = TrainConfig(seed=seed, behavior_steps=steps, gate_steps=gate_steps, gate_finetune_steps=finetune_steps)
    fit_behavior(start, fit_part, cfg, progress=progress, val=hold_part)
    gate = fit_gate(start, hold_part, cfg, progress=progress)
    fine_tune_with_gate(start, fit_part, cfg, progress=progress, val=hold_part)
    calibrate(start, hold_part)
    # Held-out F1 at the default budget, with every frame seen, for the manifest.
    probs, _ = fused_pass(start, hold_part, [s.visual_available for s in hold_part])
    th = start.thresholds_at(1.0).numpy()
    pred = np.concatenate([(p >= th)[s.pose.visible] for p, s in zip(probs, hold_part)])
    y = np.concatenate([s.targets[s.pose.visible] for s in hold_part])
    f1 = f1_per_class(pred, y)
    extra = {"kind": "behavior", "decision": "neural", "skeleton": list(records[0].bodyparts),
             "data_sha256": _data_hash([r for r, _ in pairs], [f for _, f in pairs]),
             **training_labels([f for _, f in pairs]), "holdout_fraction": holdout,
             "holdout_f1_all_frames": {b: (None if not np.isfinite(v) else float(v)) for b, v in zip(behaviors, f1)},
             "gate": gate}
    return _save(start, folder, name, extra)


def _slice(seq, start: int, stop: int):
    from dlc_lookagain.model.windows import slice_sequence

    return slice_sequence(seq, start, stop)
