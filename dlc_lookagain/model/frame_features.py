"""What the decision layer reads for every frame and animal: the fused feature vector.

``x_{t,i} = [bank_{t,i} ; z_{t,i} ; v_{t,i}]``: the keypoint feature bank
(:mod:`dlc_lookagain.features`), the pretrained motion encoder's embedding ``z`` (``(T, I, d)``,
the self-supervised representation of the surrounding window) and the vision features ``v`` of
the nearest looked-at frame with the signed time to it
(:func:`dlc_lookagain.features.appearance.vision_columns`). Columns are addressed by name, so a
model trained on one skeleton reads another: a column it cannot compute there is NaN (missing),
which the trees handle.
"""

from __future__ import annotations

import logging
from typing import NamedTuple

import numpy as np

from dlc_lookagain.features.bank import feature_bank
from dlc_lookagain.io.record import PoseRecord

logger = logging.getLogger(__name__)

__all__ = ["ENCODER_PREFIX", "encoder_embedding", "frame_features", "with_vision", "align_columns", "decide_recording",
           "Decided"]

#: Column-name prefix of the motion-embedding features.
ENCODER_PREFIX = "encoder_"
#: Warn when a model finds less than this fraction of its columns in a recording.
MIN_MATCHED_COLUMNS = 0.9


def encoder_embedding(record: PoseRecord, net, fps: float, *, progress: bool = False) -> np.ndarray:
    """The motion encoder's per-frame embedding ``z``: float32 ``(T, I, d)``, NaN where the animal
    is not visible."""
    from dlc_lookagain.model.inference import motion_pass
    from dlc_lookagain.model.pose_tokens import tokenize
    from dlc_lookagain.model.windows import Sequence

    seq = Sequence(record.source.name if record.source else "recording", tokenize(record), float(fps))
    z = motion_pass(net, [seq], progress=progress)[0].z.astype(np.float32)
    z[~seq.pose.visible] = np.nan
    return z


def frame_features(record: PoseRecord, fps: float, *, net=None, encoder: bool = False,
                   progress: bool = False) -> tuple[np.ndarray, list[str], dict[str, list[int]]]:
    """Fused features of one recording.

    Parameters
    ----------
    record : PoseRecord
    fps : float
        Frame rate (windows are in seconds).
    net : LookAgainModel, optional
        Needed when ``encoder`` is True.
    encoder : bool
        Append the motion embedding (columns ``encoder_0 ... encoder_{d-1}``).

    Returns
    -------
    features : np.ndarray
        float32 ``(T, I, F)``.
    names : list of str
    groups : dict
        ``{"bank": [...], "encoder": [...]}`` column indices.
    """
    x, names = feature_bank(record, fps=fps)
    groups = {"bank": list(range(len(names)))}
    if encoder:
        if net is None:
            raise ValueError("encoder features need the model (net=)")
        z = encoder_embedding(record, net, fps, progress=progress)
        groups["encoder"] = list(range(len(names), len(names) + z.shape[-1]))
        names = names + [f"{ENCODER_PREFIX}{k}" for k in range(z.shape[-1])]
        x = np.concatenate([x, z], axis=-1)
    return x, names, groups


def with_vision(features: np.ndarray, names: list[str], groups: dict[str, list[int]], record: PoseRecord,
                fps: float, frames, *, progress: bool = False
                ) -> tuple[np.ndarray, list[str], dict[str, list[int]], np.ndarray]:
    """Append the vision group: appearance of ``frames`` (looked at), carried to every frame.

    Returns the features, names and groups with the ``vision_*`` columns appended (NaN where
    nothing was looked at), and the frames actually looked at (those the video could give).
    """
    from dlc_lookagain.features.appearance import vision_columns, vision_names

    v, looked = vision_columns(record, frames, fps, progress=progress)
    vnames = vision_names()
    groups = {**groups, "vision": list(range(len(names), len(names) + len(vnames)))}
    return np.concatenate([features, v], axis=-1), names + vnames, groups, looked


def align_columns(features: np.ndarray, names: list[str], wanted: list[str], source: str = "",
                  not_yet: str = "") -> np.ndarray:
    """Reorder ``features`` to the columns ``wanted``; a wanted column that is absent is NaN.

    Logs a warning naming what is missing when fewer than :data:`MIN_MATCHED_COLUMNS` of the
    wanted columns are found (a skeleton with other bodyparts than the training one). Columns
    whose names start with ``not_yet`` (a group made later) are left NaN without a word.
    """
    if list(names) == list(wanted):  # the training skeleton: nothing to move (a copy was 3 % of analyze)
        return np.asarray(features, dtype=np.float32)
    index = {n: k for k, n in enumerate(names)}
    take = np.array([index.get(n, -1) for n in wanted])
    found = take >= 0
    out = np.full(features.shape[:-1] + (len(wanted),), np.nan, dtype=np.float32)
    out[..., found] = features[..., take[found]]
    counted = np.array([not (not_yet and n.startswith(not_yet)) for n in wanted], bool)
    if counted.any() and found[counted].mean() < 1.0:
        missing = [n for n, ok, c in zip(wanted, found, counted) if c and not ok]
        level = logging.WARNING if found[counted].mean() < MIN_MATCHED_COLUMNS else logging.INFO
        logger.log(level, "%s: %d of the model's %d feature columns cannot be computed here (the skeleton "
                   "differs from the training one: %s...); they are treated as missing, which costs "
                   "accuracy: train on this project's labels for the best results", source or "recording",
                   len(missing), int(counted.sum()), ", ".join(missing[:4]))
    return out


class Decided(NamedTuple):
    """What :func:`decide_recording` returns."""

    #: float32 ``(T, I, C)`` after each behavior's moving average; NaN where the animal is not tracked.
    probabilities: np.ndarray
    #: bool ``(T, I, C)``: thresholded, bouts shorter than each behavior's minimum removed.
    present: np.ndarray
    #: int64 frames whose pixels were used.
    looked: np.ndarray
    #: The decision layer that decided (the keypoint-only setting when nothing was looked at; a
    #: recalibrated one for a skeleton lacking a part): its thresholds are the ones applied.
    layer: object


def decide_recording(record: PoseRecord, net, fps: float, *, top_k: float = 0.0, progress: bool = False
                     ) -> Decided:
    """Behavior probabilities and decisions of the model's decision layer for one recording.

    A layer that reads vision looks at ``top_k`` of the frames when the recording has a video,
    chosen as in its training (:attr:`~dlc_lookagain.model.decision.DecisionLayer.look_policy`: the
    gate of :mod:`dlc_lookagain.model.look_schedule` from the keypoint-only probabilities, or evenly
    spaced); otherwise, or with ``top_k = 0``, its keypoint-only setting decides.

    Returns
    -------
    Decided
        ``(probabilities, present, looked, layer)``.
    """
    from dlc_lookagain.features.skeleton import place_missing_parts, rename_to_training
    from dlc_lookagain.features.appearance import VISION_PREFIX
    from dlc_lookagain.model.look_schedule import frames_for_layer, look_frames
    from dlc_lookagain.model.refit import recalibrate_for_bodyparts

    layer = net.decision
    source = record.source.name if record.source else ""
    record = rename_to_training(record, layer.skeleton, impute=False)
    matched = set(record.bodyparts) <= set(layer.skeleton)  # else fewer than 2 parts matched: used as they are
    lacking = [b for b in layer.skeleton if b not in record.bodyparts] if matched else []
    poses = layer.training_poses
    if lacking and poses is not None and set(layer.skeleton) <= set(poses.bodyparts):
        # Thresholds chosen for placed parts (model/refit.py: ethome without its tail -0.111 -> -0.014 F1).
        # The refit reads keypoints only: the training poses carry no pixels.
        layer = recalibrate_for_bodyparts(layer, poses, list(record.bodyparts), source=source, progress=progress)
    if lacking:
        record = place_missing_parts(record, layer.skeleton)
    look = layer.uses_vision and top_k > 0 and record.video_path is not None
    if layer.uses_vision and not look:
        layer = layer.for_keypoints_only()
    wanted = layer.feature_names
    encoder = any("encoder" in groups for groups in layer.chosen_groups)
    x, names, groups = frame_features(record, fps, net=net, encoder=encoder, progress=progress)
    looked = np.zeros(0, np.int64)
    if "vision" in layer.groups:  # without a look the columns stay NaN (missing), as in training
        frames = []
        if look:
            if layer.look_policy == "gate":  # where the keypoint-only decisions are most in doubt
                blind = layer.for_keypoints_only()
                raw = blind.predict_proba(align_columns(x, names, wanted, source, not_yet=VISION_PREFIX))
                frames = frames_for_layer("gate", blind, raw, top_k, fps)
            else:
                frames = look_frames(layer.look_policy, record.n_frames, top_k)
        x, names, groups, looked = with_vision(x, names, groups, record, fps, frames, progress=progress)
        if looked.size == 0:
            layer = layer.for_keypoints_only()
    x = align_columns(x, names, wanted, source)
    proba = layer.smooth(layer.predict_proba(x), fps)
    present = layer.decide(proba, fps, smoothed=True)
    present &= ~np.isnan(proba)
    return Decided(proba, present, looked, layer)
