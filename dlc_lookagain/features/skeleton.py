"""Matching another project's bodyparts to the ones a model was trained on.

Labs name the same point differently (``snout``/``nose``, ``tailbase``/``tail_base``) and track
different sets of points. A model's per-bodypart features are found by name, so before computing
features for a recording, its bodyparts are matched to the training skeleton:

1. the same name;
2. the same name once case, separators and common synonyms are set aside;
3. for what is left, the same place on the body: every bodypart's median position in the animal's
   own frame (centroid origin, x toward the head, in body lengths) is a *profile*; the remaining
   parts are paired by the smallest total distance between profiles (Hungarian assignment), and a
   pair further apart than :data:`MAX_PROFILE_DISTANCE` body lengths is not a match.

A training bodypart that finds no match leaves its features missing (the trees route missing values
down a learned branch); an extra bodypart is ignored.
"""

from __future__ import annotations

import logging
import re
import warnings

import numpy as np

from dlc_lookagain.features.kinematics import body_lengths, head_index
from dlc_lookagain.io.record import PoseRecord

logger = logging.getLogger(__name__)

__all__ = ["skeleton_profile", "match_bodyparts", "rename_to_training"]

#: Two bodyparts further apart than this (body lengths, in the animal's own frame) are not the same.
MAX_PROFILE_DISTANCE = 0.2
#: Words that name the same point (normalized: lower case, no separators).
SYNONYMS = {
    "snout": "nose", "nosetip": "nose", "centre": "center", "bodycenter": "center", "centroid": "center",
    "tailbase": "tailbase", "tailroot": "tailbase", "tail0": "tailbase", "leftear": "leftear", "earleft": "leftear",
    "lear": "leftear", "earl": "leftear", "rightear": "rightear", "earright": "rightear", "rear": "rightear",
    "earr": "rightear", "tailend": "tailtip", "tailtip": "tailtip", "tailend1": "tailtip",
}


def _normal(name: str) -> str:
    key = re.sub(r"[^a-z0-9]", "", name.lower())
    return SYNONYMS.get(key, key)


def skeleton_profile(record: PoseRecord) -> dict[str, list[float]]:
    """Median egocentric position ``[x, y]`` of every bodypart (body lengths; x toward the head).

    Bodyparts never seen get no entry.
    """
    kp = np.asarray(record.keypoints, dtype=np.float64)
    if kp.shape[0] == 0 or kp.shape[2] < 2:
        return {}
    head = head_index(record.bodyparts)
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        centroid = np.nanmean(kp, axis=2)
        axis = kp[:, :, head] - centroid
        norm = np.hypot(axis[..., 0], axis[..., 1])
        ux, uy = axis[..., 0] / norm, axis[..., 1] / norm
        rel = kp - centroid[:, :, None, :]
        x = rel[..., 0] * ux[..., None] + rel[..., 1] * uy[..., None]
        y = -rel[..., 0] * uy[..., None] + rel[..., 1] * ux[..., None]
        bl = body_lengths(kp)[None, :, None]
        # |y|: left and right are mirror images and cameras may flip the image.
        med_x = np.nanmedian((x / bl).reshape(-1, kp.shape[2]), axis=0)
        med_y = np.nanmedian((np.abs(y) / bl).reshape(-1, kp.shape[2]), axis=0)
    return {name: [float(a), float(b)] for name, a, b in zip(record.bodyparts, med_x, med_y)
            if np.isfinite(a) and np.isfinite(b)}


def match_bodyparts(bodyparts: list[str], profile: dict[str, list[float]] | None,
                    trained: dict[str, list[float]]) -> dict[str, str]:
    """``{recording bodypart: training bodypart}`` for every bodypart that has a counterpart."""
    from scipy.optimize import linear_sum_assignment

    mapping: dict[str, str] = {}
    left = [b for b in bodyparts]
    wanted = list(trained)
    for b in list(left):
        if b in trained:
            mapping[b] = b
            left.remove(b)
            wanted.remove(b)
    by_normal = {_normal(w): w for w in wanted}
    for b in list(left):
        w = by_normal.get(_normal(b))
        if w is not None and w in wanted:
            mapping[b] = w
            left.remove(b)
            wanted.remove(w)
    profile = profile or {}
    left = [b for b in left if b in profile]
    wanted = [w for w in wanted if w in trained]
    if left and wanted:
        a = np.array([profile[b] for b in left])
        c = np.array([trained[w] for w in wanted])
        cost = np.hypot(a[:, None, 0] - c[None, :, 0], a[:, None, 1] - c[None, :, 1])
        rows, cols = linear_sum_assignment(cost)
        for r, k in zip(rows, cols):
            if cost[r, k] <= MAX_PROFILE_DISTANCE:
                mapping[left[r]] = wanted[k]
    return mapping


def rename_to_training(record: PoseRecord, trained: dict[str, list[float]] | None) -> PoseRecord:
    """The record with its bodyparts renamed to their training counterparts (logged), and the
    bodyparts without one left out.

    A record whose bodyparts all carry training names is returned with only those.
    """
    import dataclasses

    if not trained or list(record.bodyparts) == list(trained):
        return record
    mapping = match_bodyparts(list(record.bodyparts), skeleton_profile(record), trained)
    renamed = {b: w for b, w in mapping.items() if b != w}
    unmatched_training = [w for w in trained if w not in mapping.values()]
    logger.warning("%s: bodyparts differ from the training skeleton; matched %s; not found here: %s; not used: %s",
                   record.source.name if record.source else "recording",
                   ", ".join(f"{b}->{w}" for b, w in renamed.items()) or "none renamed",
                   ", ".join(unmatched_training) or "none",
                   ", ".join(b for b in record.bodyparts if b not in mapping) or "none")
    # Extra bodyparts are left out, not just ignored: they would move the centroid and the body
    # length that every other feature is measured in.
    keep = [k for k, b in enumerate(record.bodyparts) if b in mapping]
    if len(keep) < 2:
        logger.warning("%s: fewer than 2 bodyparts match the training skeleton; using all as they are",
                       record.source.name if record.source else "recording")
        return record
    return dataclasses.replace(record, keypoints=record.keypoints[:, :, keep], confidence=record.confidence[:, :, keep],
                               bodyparts=[mapping[record.bodyparts[k]] for k in keep], skeleton=[])

def training_skeleton(records: list[PoseRecord]) -> dict[str, list[float]]:
    """Profile of the training skeleton: per bodypart, the median of its profiles over recordings
    (a recording with another skeleton than the first is matched to it first)."""
    profiles: dict[str, list[list[float]]] = {}
    first: dict[str, list[float]] | None = None
    for rec in records:
        prof = skeleton_profile(rec)
        if first is not None and set(prof) != set(first):
            mapping = match_bodyparts(list(rec.bodyparts), prof, first)
            prof = {mapping[b]: v for b, v in prof.items() if b in mapping}
        first = first or prof
        for b, v in prof.items():
            profiles.setdefault(b, []).append(v)
    return {b: np.median(np.array(v), axis=0).tolist() for b, v in profiles.items()}
