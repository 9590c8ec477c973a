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

When the recording names no head (no nose/snout/head), the body frame's x axis is unknown: every
bodypart is tried as the head and the assignment with the most matches and the smallest cost wins.

A training bodypart that finds no match is *placed* where the training skeleton has it: a similarity
transform (rotation, scale, shift) from the training profile to the matched bodyparts is fitted in
every frame, and the missing part is put at its profile position (:func:`impute_missing_parts`), so
the per-bodypart features keep values the trees have seen (a rigid guess) instead of going missing.
An extra bodypart is left out.
"""

from __future__ import annotations

import logging
import re
import warnings

import numpy as np

from dlc_lookagain.features.kinematics import HEAD_WORDS, body_lengths, head_index
from dlc_lookagain.io.record import PoseRecord

logger = logging.getLogger(__name__)

__all__ = ["skeleton_profile", "match_bodyparts", "rename_to_training", "impute_missing_parts", "training_skeleton",
           "place_missing_parts", "in_training_order",
           "part_dropout_copy"]

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


#: Frames used for a profile (evenly spaced): medians settle long before that.
PROFILE_FRAMES = 4000


def skeleton_profile(record: PoseRecord, head: int | None = None) -> dict[str, list[float]]:
    """Median egocentric position ``[x, |y|, y]`` of every bodypart (body lengths; x toward the head).

    ``|y|`` is what parts are matched by (left and right are mirror images and cameras may flip
    the image); the signed ``y`` places a missing part on the side it was trained on. ``head``:
    index of the bodypart the x axis points to (default :func:`head_index`). Bodyparts never
    seen get no entry.
    """
    kp = np.asarray(record.keypoints, dtype=np.float64)
    if kp.shape[0] == 0 or kp.shape[2] < 2:
        return {}
    if kp.shape[0] > PROFILE_FRAMES:
        kp = kp[np.linspace(0, kp.shape[0] - 1, PROFILE_FRAMES).astype(int)]
    head = head_index(record.bodyparts) if head is None else head
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
        signed_y = np.nanmedian((y / bl).reshape(-1, kp.shape[2]), axis=0)
    return {name: [float(a), float(b), float(c)] for name, a, b, c in zip(record.bodyparts, med_x, med_y, signed_y)
            if np.isfinite(a) and np.isfinite(b) and np.isfinite(c)}


def match_bodyparts(bodyparts: list[str], profile: dict[str, list[float]] | None,
                    trained: dict[str, list[float]]) -> dict[str, str]:
    """``{recording bodypart: training bodypart}`` for every bodypart that has a counterpart."""
    return _match(bodyparts, profile, trained)[0]


def _match(bodyparts: list[str], profile: dict[str, list[float]] | None,
           trained: dict[str, list[float]]) -> tuple[dict[str, str], float]:
    """:func:`match_bodyparts` and the total place distance of the pairs matched by place."""
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
    total = 0.0
    if left and wanted:
        a = np.array([profile[b][:2] for b in left])
        c = np.array([trained[w][:2] for w in wanted])
        cost = np.hypot(a[:, None, 0] - c[None, :, 0], a[:, None, 1] - c[None, :, 1])
        rows, cols = linear_sum_assignment(cost)
        for r, k in zip(rows, cols):
            if cost[r, k] <= MAX_PROFILE_DISTANCE:
                mapping[left[r]] = wanted[k]
                total += float(cost[r, k])
    return mapping, total


def _best_match(record: PoseRecord, trained: dict[str, list[float]]) -> dict[str, str]:
    """The bodypart matching, trying every bodypart as the head when none is named as one."""
    names = list(record.bodyparts)
    has_head = any(word in name.lower() for name in names for word in HEAD_WORDS)
    if has_head:
        return match_bodyparts(names, skeleton_profile(record), trained)
    best, best_key = {}, None
    for k in range(len(names)):
        mapping, cost = _match(names, skeleton_profile(record, head=k), trained)
        key = (-len(mapping), cost)
        if best_key is None or key < best_key:
            best, best_key = mapping, key
    return best


def impute_missing_parts(record: PoseRecord, trained: dict[str, list[float]]) -> tuple[PoseRecord, list[str]]:
    """Training bodyparts the record lacks, placed where the training skeleton has them.

    In every frame and animal, the similarity transform (rotation, uniform scale, shift) that best
    maps the training profile of the bodyparts that *are* tracked onto their positions is fitted by
    least squares (2-D Procrustes in complex numbers: ``w = a p + b``), and each missing part is
    put at the image of its profile position. Frames with fewer than two tracked parts stay NaN.
    Returns the record (missing parts appended, confidence NaN) and the names added.
    """
    import dataclasses

    missing = [w for w in trained if w not in record.bodyparts and len(trained[w]) >= 2]
    have = [k for k, b in enumerate(record.bodyparts) if b in trained]
    if not missing or len(have) < 2:
        return record, []

    def prof(name: str) -> complex:
        v = trained[name]
        return complex(v[0], v[2] if len(v) > 2 else v[1])

    p = np.array([prof(record.bodyparts[k]) for k in have])  # (H,) training profile of tracked parts
    q = np.array([prof(w) for w in missing])  # (M,)
    kp = np.asarray(record.keypoints, dtype=np.float64)[:, :, have]
    w = kp[..., 0] + 1j * kp[..., 1]  # (T, I, H)
    seen = ~np.isnan(w)
    n = seen.sum(-1)  # (T, I)
    with np.errstate(invalid="ignore", divide="ignore"):
        w0 = np.where(seen, w, 0)
        p_mean = (seen * p).sum(-1) / n
        w_mean = w0.sum(-1) / n
        dp = np.where(seen, p - p_mean[..., None], 0)
        dw = np.where(seen, w0 - w_mean[..., None], 0)
        a = (dw * np.conj(dp)).sum(-1) / (np.abs(dp) ** 2).sum(-1)  # (T, I) rotation and scale
        placed = a[..., None] * (q - p_mean[..., None]) + w_mean[..., None]  # (T, I, M)
    placed[n < 2] = np.nan
    new = np.stack([placed.real, placed.imag], -1).astype(record.keypoints.dtype)
    conf = np.full(new.shape[:3], np.nan, dtype=np.asarray(record.confidence).dtype)
    out = dataclasses.replace(
        record, keypoints=np.concatenate([record.keypoints, new], 2),
        confidence=np.concatenate([record.confidence, conf], 2),
        bodyparts=[*record.bodyparts, *missing], skeleton=[])
    return out, missing


def rename_to_training(record: PoseRecord, trained: dict[str, list[float]] | None, *,
                       impute: bool = True) -> PoseRecord:
    """The record with its bodyparts renamed to their training counterparts (logged), the
    bodyparts without one left out, and (``impute``) missing training bodyparts placed by
    :func:`impute_missing_parts`; bodyparts in training order.

    A record whose bodyparts all carry training names is returned with only those.
    """
    import dataclasses

    if not trained or list(record.bodyparts) == list(trained):
        return record
    mapping = _best_match(record, trained)
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
    renamed_record = dataclasses.replace(
        record, keypoints=record.keypoints[:, :, keep], confidence=record.confidence[:, :, keep],
        bodyparts=[mapping[record.bodyparts[k]] for k in keep], skeleton=[])
    return place_missing_parts(renamed_record, trained) if impute else in_training_order(renamed_record, trained)


def in_training_order(record: PoseRecord, trained: dict[str, list[float]]) -> PoseRecord:
    """The record's bodyparts (training names) in training order, so that the body frame's head and
    the rank-named pairs are the training ones."""
    import dataclasses

    order = [record.bodyparts.index(w) for w in trained if w in record.bodyparts]
    if len(order) != record.n_bodyparts or order == list(range(record.n_bodyparts)):
        return record
    return dataclasses.replace(record, keypoints=record.keypoints[:, :, order],
                               confidence=record.confidence[:, :, order],
                               bodyparts=[record.bodyparts[k] for k in order])


def place_missing_parts(record: PoseRecord, trained: dict[str, list[float]]) -> PoseRecord:
    """A renamed record (training names) with the training bodyparts it lacks placed by
    :func:`impute_missing_parts` (logged), in training order."""
    out, added = impute_missing_parts(record, trained)
    if added:
        logger.warning("%s: placed %s where the training skeleton has them, from the tracked bodyparts "
                       "(a rigid guess: their own movements are unknown)",
                       record.source.name if record.source else "recording", ", ".join(added))
    return in_training_order(out, trained)

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


#: Length of the blocks in which :func:`part_dropout_copy` replaces one bodypart by its placed guess.
DROPOUT_BLOCK_S = 5.0


def part_dropout_copy(record: PoseRecord, trained: dict[str, list[float]], *, block_s: float = DROPOUT_BLOCK_S,
                      fps: float | None = None, seed: int = 0) -> PoseRecord:
    """A copy of the record in which, block by block, one bodypart is replaced by its placed guess.

    Training augmentation for another skeleton: a project that lacks a training bodypart gets it
    placed by :func:`impute_missing_parts` (a rigid guess), whose features the trees would otherwise
    never have seen. Here the recording is cut into ``block_s`` blocks and in each block one
    bodypart (the bodyparts taken in turn, in a seeded order) is dropped and placed from the others
    exactly as at prediction, its confidence NaN. Trained on both the record and this copy, the trees
    learn what a placed part can and cannot tell.

    Returns the copy (same bodyparts, same order); the record itself when fewer than three
    bodyparts are in the training skeleton.
    """
    import dataclasses

    parts = [k for k, b in enumerate(record.bodyparts) if b in trained]
    if len(parts) < 3:
        return record
    rate = float(fps or record.fps or 30.0)
    block = max(1, int(round(block_s * rate)))
    n_blocks = -(-record.n_frames // block)
    order = np.random.default_rng(seed).permutation(parts)
    chosen = order[np.arange(n_blocks) % len(order)]  # (blocks,) bodypart index per block
    keypoints = np.array(record.keypoints, copy=True)
    confidence = np.array(record.confidence, copy=True)
    for k in parts:
        frames = np.nonzero(np.repeat(chosen == k, block)[:record.n_frames])[0]
        if not frames.size:
            continue
        others = [j for j in range(record.n_bodyparts) if j != k]
        sub = dataclasses.replace(record, keypoints=record.keypoints[frames][:, :, others],
                                  confidence=record.confidence[frames][:, :, others],
                                  bodyparts=[record.bodyparts[j] for j in others], skeleton=[])
        placed, added = impute_missing_parts(sub, {b: v for b, v in trained.items()
                                                  if b in sub.bodyparts or b == record.bodyparts[k]})
        if added:
            keypoints[frames, :, k] = placed.keypoints[:, :, placed.bodyparts.index(record.bodyparts[k])]
            confidence[frames, :, k] = np.nan
    return dataclasses.replace(record, keypoints=keypoints, confidence=confidence)

