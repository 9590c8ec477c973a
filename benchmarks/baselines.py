"""Keypoint-only baselines for per-frame behavior labels (SimBA- and BehaviorDEPOT-style).

These give the numbers a keypoint+video model has to beat. Nothing here looks at video.

* :func:`keypoint_features`: a hand-made per-frame feature set in the spirit of SimBA's, built so
  that it works for any skeleton (no bodypart names are assumed, except an optional
  nose/snout/head for the facing angle) and transfers across resolutions (lengths are divided by
  the animal's median body length).
* :class:`SimbaForest`: one balanced random forest per behavior on those features, with a
  decision threshold (and optionally a minimum bout length) chosen on the training fold only.
* :func:`speed_threshold_baseline` / :class:`SpeedThreshold`: BehaviorDEPOT-style immobility
  rule for freezing: smoothed, size-normalized centroid speed below a learned threshold.
* :func:`blocked_folds`: contiguous-time cross-validation folds with a gap (adjacent frames are
  near-duplicates, so random frame splits leak).
* :func:`f1_table`: per-behavior precision/recall/F1 and their macro average.

Naming contract for features: every feature whose name contains ``_px`` is in pixel units; all
others are unitless, in body lengths (``_bl``), radians, likelihoods or fractions, and therefore
do not change when all coordinates are scaled by a constant.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from dlc_lookagain.io.record import PoseRecord

logger = logging.getLogger(__name__)

#: Substrings (case-insensitive) that mark the head keypoint used for the facing angle.
HEAD_WORDS = ("nose", "snout", "head")
#: Candidate minimum bout lengths (seconds) tried when ``SimbaForest(min_bout_s="cv")``.
MIN_BOUT_CANDIDATES_S = (0.0, 0.1, 0.2, 0.4, 0.8)


# ----------------------------------------------------------------------------------------------
# Small vectorized helpers
# ----------------------------------------------------------------------------------------------


def _resolve_fps(record: PoseRecord, fps: float | None) -> float:
    fps = record.fps if fps is None else fps
    if fps is None or not np.isfinite(fps) or fps <= 0:
        raise ValueError(f"{record.source}: frames per second unknown; pass fps=")
    return float(fps)


def _odd_window(window_s: float, fps: float) -> int:
    """Window length in frames, rounded to an odd count so that a centered window is symmetric."""
    n = max(1, int(round(window_s * fps)))
    return n if n % 2 else n + 1


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Runs of True along the last axis of a 2-D mask: (row, start, stop-exclusive)."""
    m = np.asarray(mask, dtype=bool)
    padded = np.zeros((m.shape[0], m.shape[1] + 2), dtype=np.int8)
    padded[:, 1:-1] = m
    d = np.diff(padded, axis=1)
    # np.nonzero walks row-major, so the k-th start and the k-th stop belong to the same run.
    rows, starts = np.nonzero(d == 1)
    _, stops = np.nonzero(d == -1)
    return rows, starts, stops


def _runs_to_mask(shape: tuple[int, int], rows, starts, stops) -> np.ndarray:
    acc = np.zeros((shape[0], shape[1] + 1), dtype=np.int32)
    np.add.at(acc, (rows, starts), 1)
    np.add.at(acc, (rows, stops), -1)
    return np.cumsum(acc, axis=1)[:, : shape[1]] > 0


def remove_short_bouts(mask: np.ndarray, min_frames: int) -> np.ndarray:
    """Drop runs of True shorter than ``min_frames`` along axis 0 (frames).

    Parameters
    ----------
    mask : np.ndarray
        bool array ``(T, ...)``; every trailing index is an independent track.
    min_frames : int
        Runs with fewer frames become False. ``<= 1`` returns a copy unchanged.

    Returns
    -------
    np.ndarray
        bool array of the same shape.
    """
    mask = np.asarray(mask, dtype=bool)
    if min_frames <= 1 or mask.size == 0:
        return mask.copy()
    t = mask.shape[0]
    tracks = mask.reshape(t, -1).T
    rows, starts, stops = _runs(tracks)
    short = (stops - starts) < min_frames
    drop = _runs_to_mask(tracks.shape, rows[short], starts[short], stops[short])
    return (tracks & ~drop).T.reshape(mask.shape)


def interpolate_gaps(x: np.ndarray, max_gap: int) -> np.ndarray:
    """Linearly interpolate interior NaN gaps of at most ``max_gap`` frames along axis 0.

    Longer gaps and gaps touching the first or last frame stay NaN: there is nothing on one side
    to interpolate from, and a long gap filled with a straight line would invent motion.

    Parameters
    ----------
    x : np.ndarray
        float array ``(T, ...)``.
    max_gap : int
        Longest gap (in frames) that is filled.

    Returns
    -------
    np.ndarray
        float64 copy of ``x``.
    """
    x = np.asarray(x, dtype=np.float64)
    t = x.shape[0]
    tracks = x.reshape(t, -1).T.copy()
    nan = np.isnan(tracks)
    if max_gap < 1 or not nan.any():
        return tracks.T.reshape(x.shape)
    rows, starts, stops = _runs(nan)
    ok = (starts > 0) & (stops < t) & (stops - starts <= max_gap)
    rows, starts, stops = rows[ok], starts[ok], stops[ok]
    lens = stops - starts
    # One entry per frame to fill, all gaps at once: frame, its gap's ends, and the weight.
    rr, ss, ee = np.repeat(rows, lens), np.repeat(starts, lens), np.repeat(stops, lens)
    tt = ss + np.arange(lens.sum()) - np.repeat(np.cumsum(lens) - lens, lens)
    left, right = tracks[rr, ss - 1], tracks[rr, ee]
    w = (tt - ss + 1) / (ee - ss + 1)
    tracks[rr, tt] = left + w * (right - left)
    return tracks.T.reshape(x.shape)


def _ddt(x: np.ndarray, fps: float) -> np.ndarray:
    """Time derivative per second along axis 0 (central differences, one-sided at the ends)."""
    if x.shape[0] < 2:
        return np.zeros_like(x)
    return np.gradient(x, axis=0) * fps


def _angle_rate(theta: np.ndarray, fps: float) -> np.ndarray:
    """Absolute angular speed (rad/s) of an angle series along axis 0, wrap-safe."""
    if theta.shape[0] < 2:
        return np.zeros_like(theta)
    z = np.exp(1j * theta)
    rate = np.empty_like(theta)
    # Central difference of the angle through the complex plane, so that a step across +-pi is small.
    rate[1:-1] = np.angle(z[2:] * np.conj(z[:-2])) / 2
    rate[0] = np.angle(z[1] * np.conj(z[0]))
    rate[-1] = np.angle(z[-1] * np.conj(z[-2]))
    return np.abs(rate) * fps


def _angle_between(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Unsigned angle (rad, 0..pi) between 2-D vectors in the last axis; NaN for a zero vector."""
    cross = u[..., 0] * v[..., 1] - u[..., 1] * v[..., 0]
    dot = (u * v).sum(-1)
    ang = np.arctan2(np.abs(cross), dot)
    zero = (np.hypot(u[..., 0], u[..., 1]) == 0) | (np.hypot(v[..., 0], v[..., 1]) == 0)
    return np.where(zero, np.nan, ang)


def convex_hull_area(points: np.ndarray) -> np.ndarray:
    """Convex-hull area of a small point set per row, vectorized over rows (gift wrapping).

    Parameters
    ----------
    points : np.ndarray
        ``(N, B, 2)``; NaN points are ignored.

    Returns
    -------
    np.ndarray
        ``(N,)`` areas; 0 with fewer than 3 valid points, NaN with none.
    """
    p = np.asarray(points, dtype=np.float64)
    n, b, _ = p.shape
    valid = ~np.isnan(p).any(-1)
    n_valid = valid.sum(1)
    area = np.zeros(n)
    if b < 3:
        return np.where(n_valid == 0, np.nan, area)
    x = np.where(valid, p[..., 0], np.inf)
    y = np.where(valid, p[..., 1], np.inf)
    rows = np.arange(n)
    # Start at the leftmost (then lowest) point, which is always on the hull.
    minx = x.min(1, keepdims=True)
    start = np.where(x == minx, y, np.inf).argmin(1)
    cur = start.copy()
    done = n_valid < 3
    twice_area = np.zeros(n)
    idx = np.arange(b)
    for _ in range(b):
        # Any valid point other than the current one as the first candidate.
        cand = np.where(valid & (idx[None, :] != cur[:, None]), idx[None, :], b).min(1)
        cand = np.minimum(cand, b - 1)
        cx, cy = p[rows, cur, 0], p[rows, cur, 1]
        for j in range(b):
            ax, ay = p[rows, cand, 0] - cx, p[rows, cand, 1] - cy
            jx, jy = p[:, j, 0] - cx, p[:, j, 1] - cy
            cross = ax * jy - ay * jx
            farther = (jx * jx + jy * jy) > (ax * ax + ay * ay)
            better = valid[:, j] & (j != cur) & ((cross < 0) | ((cross == 0) & farther))
            cand = np.where(better, j, cand)
        step = cx * p[rows, cand, 1] - cy * p[rows, cand, 0]
        twice_area += np.where(done, 0.0, step)
        cur = np.where(done, cur, cand)
        done |= cur == start
    area = np.abs(twice_area) / 2
    area[n_valid < 3] = 0.0
    area[n_valid == 0] = np.nan
    return area


def body_lengths(keypoints: np.ndarray) -> np.ndarray:
    """Median over frames of the largest pairwise keypoint distance, per animal.

    Parameters
    ----------
    keypoints : np.ndarray
        ``(T, I, B, 2)``, NaN where missing.

    Returns
    -------
    np.ndarray
        ``(I,)`` body lengths in pixels. An animal without any measurable length gets the median
        of the other animals, or 1.0 (features then stay in pixels) if none has one.
    """
    kp = np.asarray(keypoints, dtype=np.float64)
    t, n_ind, b, _ = kp.shape
    if b < 2 or t == 0:
        logger.warning("fewer than 2 bodyparts: body length set to 1 px (normalized features are in px)")
        return np.ones(n_ind)
    iu, ju = np.triu_indices(b, 1)
    d = np.hypot(*np.moveaxis(kp[:, :, iu] - kp[:, :, ju], -1, 0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN frames/animals are handled below
        bl = np.nanmedian(np.nanmax(d, axis=2), axis=0)
    bad = ~np.isfinite(bl) | (bl <= 0)
    if bad.any():
        fallback = float(np.median(bl[~bad])) if (~bad).any() else 1.0
        logger.warning("no body length measurable for %d animal(s); using %.3g px", int(bad.sum()), fallback)
        bl[bad] = fallback
    return bl


def head_index(bodyparts: Sequence[str]) -> int:
    """Index of the first bodypart whose name contains nose/snout/head, else 0."""
    for word in HEAD_WORDS:
        for k, name in enumerate(bodyparts):
            if word in name.lower():
                return k
    return 0


# ----------------------------------------------------------------------------------------------
# Features
# ----------------------------------------------------------------------------------------------


def keypoint_features(
    record: PoseRecord,
    *,
    window_s: Sequence[float] = (0.2, 1.0),
    fps: float | None = None,
    max_gap_s: float = 0.5,
) -> tuple[np.ndarray, list[str]]:
    """SimBA-style hand-made per-frame features for any skeleton.

    Per animal: centroid speed and acceleration (px/s and body lengths/s), per-keypoint speeds,
    all pairwise intra-animal distances, turning rate of and angles between the three
    longest-baseline keypoint pairs, convex-hull area, mean/min likelihood, fraction of missing
    keypoints; centered rolling mean/std/min/max of the centroid, mean-keypoint and per-keypoint
    speeds and of the three longest distances over each window (with several animals also of the
    centroid distance, nearest keypoint distance and approach rate). With several animals, social
    features toward the nearest other animal (by centroid distance in that frame): centroid
    distance, nearest keypoint distance, relative speed, approach rate (d/dt of centroid distance;
    negative = approaching), own facing angle toward the other (head direction = centroid to head
    keypoint, see :func:`head_index`; 0 = facing it), the other's facing angle toward this
    animal, and the other's speed.

    Lengths are divided by the animal's body length (median over frames of its largest pairwise
    keypoint distance, see :func:`body_lengths`); social lengths by the mean body length of the
    two animals, so that they are symmetric. Angles are never absolute headings (those depend on
    how the camera was mounted), only turning rates and angles between body vectors.

    Parameters
    ----------
    record : PoseRecord
        Keypoints ``(T, I, B, 2)`` with NaN where missing.
    window_s : sequence of float
        Rolling windows in seconds; each becomes the nearest odd number of frames, centered.
    fps : float, optional
        Overrides ``record.fps`` (needed when the pose file does not store it).
    max_gap_s : float
        Interior keypoint gaps up to this long are linearly interpolated before computing
        features. Values still missing afterwards are filled with the feature's median over the
        recording, and the extra feature ``missing`` is 1 on frames where anything was filled.

    Returns
    -------
    features : np.ndarray
        float32 ``(T, I, F)``, no NaN.
    names : list of str
        ``F`` feature names; those containing ``_px`` are in pixels, all others scale-free.
    """
    fps = _resolve_fps(record, fps)
    raw = np.asarray(record.keypoints, dtype=np.float64)
    t, n_ind, b, _ = raw.shape
    parts = list(record.bodyparts)
    missing_kp = np.isnan(raw).any(-1)
    kp = interpolate_gaps(raw, int(round(max_gap_s * fps)))
    bl = body_lengths(kp)
    feats: dict[str, np.ndarray] = {}

    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        # All-NaN slices (an animal absent for a while) are expected here; they are imputed below.
        warnings.simplefilter("ignore", RuntimeWarning)

        centroid = np.nanmean(kp, axis=2)  # (T, I, 2)
        vel = _ddt(centroid, fps)
        speed = np.hypot(vel[..., 0], vel[..., 1])
        accel = _ddt(speed, fps)
        feats["centroid_speed_px_s"] = speed
        feats["centroid_speed_bl_s"] = speed / bl
        feats["centroid_accel_px_s2"] = accel
        feats["centroid_accel_bl_s2"] = accel / bl

        kp_vel = _ddt(kp, fps)
        kp_speed = np.hypot(kp_vel[..., 0], kp_vel[..., 1]) / bl[None, :, None]  # (T, I, B)
        for k, name in enumerate(parts):
            feats[f"kp_speed_bl_s__{name}"] = kp_speed[:, :, k]
        feats["kp_speed_mean_bl_s"] = np.nanmean(kp_speed, axis=2)

        iu, ju = np.triu_indices(b, 1)
        vec = kp[:, :, ju] - kp[:, :, iu]  # (T, I, P, 2)
        dist = np.hypot(vec[..., 0], vec[..., 1]) / bl[None, :, None]
        dist_names = [f"dist_bl__{parts[a]}__{parts[c]}" for a, c in zip(iu, ju)]
        for k, name in enumerate(dist_names):
            feats[name] = dist[:, :, k]

        # The three pairs that are farthest apart (median over frames and animals) carry the body
        # axis; same pairs for every animal so that feature columns mean the same thing.
        med = np.nanmedian(dist, axis=(0, 1)) if dist.shape[2] else np.zeros(0)
        longest = np.argsort(-np.where(np.isnan(med), -np.inf, med), kind="stable")[:3]
        pair_names = [f"{parts[iu[k]]}__{parts[ju[k]]}" for k in longest]
        for k, name in zip(longest, pair_names):
            theta = np.arctan2(vec[:, :, k, 1], vec[:, :, k, 0])
            feats[f"turn_rate_rad_s__{name}"] = _angle_rate(theta, fps)
        for a in range(len(longest)):
            for c in range(a + 1, len(longest)):
                feats[f"bend_rad__{pair_names[a]}__vs__{pair_names[c]}"] = _angle_between(
                    vec[:, :, longest[a]], vec[:, :, longest[c]]
                )

        hull = convex_hull_area(kp.reshape(t * n_ind, b, 2)).reshape(t, n_ind)
        feats["hull_area_bl2"] = hull / bl**2

        conf = np.asarray(record.confidence, dtype=np.float64)
        feats["likelihood_mean"] = np.nanmean(conf, axis=2)
        feats["likelihood_min"] = np.nanmin(conf, axis=2)
        feats["frac_missing_kp"] = missing_kp.mean(axis=2)

        # Per-keypoint speeds are rolled too (as SimBA rolls each bodypart's movement): freezing and
        # similar states are "this part has not moved for a while", which one frame cannot show.
        rolled = ["centroid_speed_bl_s", "kp_speed_mean_bl_s"] + [f"kp_speed_bl_s__{name}" for name in parts]
        rolled += [dist_names[k] for k in longest]
        if n_ind > 1:
            feats.update(_social_features(kp, centroid, vel, speed, bl, head_index(parts), fps))
            rolled += ["soc_centroid_dist_bl", "soc_nearest_kp_dist_bl", "soc_approach_rate_bl_s"]

        base = np.stack([feats[name] for name in rolled], axis=-1)  # (T, I, R)
        frame = pd.DataFrame(base.reshape(t, -1))
        for w in window_s:
            roll = frame.rolling(_odd_window(w, fps), center=True, min_periods=1)
            for stat, out in (("mean", roll.mean()), ("std", roll.std(ddof=0)), ("min", roll.min()),
                              ("max", roll.max())):
                arr = out.to_numpy().reshape(t, n_ind, len(rolled))
                for k, name in enumerate(rolled):
                    feats[f"{name}__roll{w:g}s_{stat}"] = arr[:, :, k]

    names = list(feats)
    x = np.stack([feats[name] for name in names], axis=-1)
    x[~np.isfinite(x)] = np.nan
    nan = np.isnan(x)
    if nan.any():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            medians = np.nanmedian(x.reshape(-1, x.shape[-1]), axis=0)
        medians = np.where(np.isnan(medians), 0.0, medians)
        x = np.where(nan, medians, x)
    x = np.concatenate([x, nan.any(-1, keepdims=True).astype(np.float64)], axis=-1)
    names.append("missing")
    logger.debug("%d features for %d frames x %d animals", len(names), t, n_ind)
    return x.astype(np.float32), names


def _social_features(kp, centroid, vel, speed, bl, head, fps) -> dict[str, np.ndarray]:
    """Features of each animal relative to its nearest other animal (needs I > 1)."""
    t, n_ind, b, _ = kp.shape
    rel = centroid[:, None, :, :] - centroid[:, :, None, :]  # [t, i, j] = centroid_j - centroid_i
    cdist = np.hypot(rel[..., 0], rel[..., 1])  # (T, I, I), symmetric
    search = np.where(np.isnan(cdist), np.inf, cdist)
    search[:, np.arange(n_ind), np.arange(n_ind)] = np.inf
    nn = search.argmin(axis=2)  # (T, I)
    # With no other animal visible argmin would point anywhere (even at the animal itself).
    alone = ~np.isfinite(search.min(axis=2))
    pair_bl = (bl[:, None] + bl[None, :]) / 2
    scale = pair_bl[np.arange(n_ind)[None, :], nn]

    def pick(m: np.ndarray) -> np.ndarray:
        return np.where(alone, np.nan, np.take_along_axis(m, nn[:, :, None], axis=2)[:, :, 0])

    near = np.full((t, n_ind, n_ind), np.nan)
    for i in range(n_ind):
        for j in range(i + 1, n_ind):
            d = kp[:, i, :, None, :] - kp[:, j, None, :, :]
            near[:, i, j] = near[:, j, i] = np.nanmin(np.hypot(d[..., 0], d[..., 1]).reshape(t, -1), axis=1)
    dv = vel[:, :, None, :] - vel[:, None, :, :]
    head_dir = kp[:, :, head] - centroid  # (T, I, 2)
    facing = _angle_between(np.broadcast_to(head_dir[:, :, None, :], rel.shape), rel)  # [t, i, j]
    other_speed = np.where(alone, np.nan, np.take_along_axis(speed, nn, axis=1) / bl[nn])
    return {
        "soc_centroid_dist_bl": pick(cdist) / scale,
        "soc_nearest_kp_dist_bl": pick(near) / scale,
        "soc_rel_speed_bl_s": pick(np.hypot(dv[..., 0], dv[..., 1])) / scale,
        "soc_approach_rate_bl_s": pick(_ddt(cdist, fps)) / scale,
        "soc_facing_rad": pick(facing),
        "soc_other_facing_rad": pick(np.swapaxes(facing, 1, 2)),
        "soc_other_speed_bl_s": other_speed,
    }


# ----------------------------------------------------------------------------------------------
# Thresholds, folds, scores
# ----------------------------------------------------------------------------------------------


def _f1_per_column(pred: np.ndarray, y: np.ndarray) -> np.ndarray:
    """F1 of each column of a bool ``(N, K)`` decision matrix against ``y (N,)``; NaN when 0/0."""
    tp = (pred & y[:, None]).sum(0)
    denom = pred.sum(0) + y.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, 2 * tp / np.maximum(denom, 1), np.nan)


def best_threshold(
    score: np.ndarray, y: np.ndarray, candidates: np.ndarray | None = None
) -> tuple[float, float]:
    """Threshold on ``score >= thr`` that maximizes F1 against ``y``.

    Parameters
    ----------
    score : np.ndarray
        ``(N,)`` decision scores (higher = more likely positive).
    y : np.ndarray
        ``(N,)`` bool truth.
    candidates : np.ndarray, optional
        Thresholds to try; default 201 quantiles of ``score``.

    Returns
    -------
    threshold : float
    f1 : float
        F1 at that threshold (NaN if ``y`` has no positive and nothing is predicted).
    """
    score = np.asarray(score, dtype=np.float64)
    y = np.asarray(y, dtype=bool)
    if candidates is None:
        candidates = np.unique(np.quantile(score, np.linspace(0, 1, 201)))
    f1 = _f1_per_column(score[:, None] >= candidates[None, :], y)
    if np.isnan(f1).all():
        return float(candidates[-1]), float("nan")
    k = int(np.nanargmax(f1))
    return float(candidates[k]), float(f1[k])


def blocked_folds(
    n_frames: int,
    k: int = 5,
    *,
    fps: float | None = None,
    gap_s: float = 1.0,
    gap_frames: int | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Contiguous time-block cross-validation folds with a gap around each test block.

    Parameters
    ----------
    n_frames : int
        Recording length T.
    k : int
        Number of folds; test blocks are consecutive and as equal as possible.
    fps : float, optional
        Needed to turn ``gap_s`` into frames unless ``gap_frames`` is given.
    gap_s : float
        Seconds left out on each side of the test block, so that no training frame lies within
        ``gap_s`` of a test frame (covers the half-width of the feature windows).
    gap_frames : int, optional
        Gap in frames; overrides ``gap_s``.

    Returns
    -------
    list of (train, test)
        Sorted int frame indices. Every frame is in exactly one test block.
    """
    if gap_frames is None:
        if fps is None:
            raise ValueError("blocked_folds needs fps to turn gap_s into frames (or pass gap_frames)")
        gap_frames = int(math.ceil(gap_s * fps))
    if k < 2 or n_frames < k:
        raise ValueError(f"need 2 <= k <= n_frames, got k={k}, n_frames={n_frames}")
    edges = np.linspace(0, n_frames, k + 1).round().astype(int)
    frames = np.arange(n_frames)
    folds = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        test = frames[lo:hi]
        train = frames[(frames < lo - gap_frames) | (frames >= hi + gap_frames)]
        folds.append((train, test))
    return folds


def f1_table(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    behaviors: Sequence[str],
    *,
    mask: np.ndarray | None = None,
    zero_division: float = np.nan,
) -> pd.DataFrame:
    """Per-behavior precision, recall and F1 (binary, one behavior at a time) plus the macro row.

    Parameters
    ----------
    y_true, y_pred : np.ndarray
        bool arrays ``(..., C)`` of the same shape (e.g. ``(T, I, C)`` or ``(N, C)``).
    behaviors : sequence of str
        The C behavior names.
    mask : np.ndarray, optional
        bool array of shape ``y_true.shape[:-1]``: only these frames are scored (e.g. annotated
        test frames).
    zero_division : float
        Value for a score whose denominator is 0 (no positives and no predictions for F1). NaN
        (the default) keeps such a fold out of means instead of counting it as 0 or 1.

    Returns
    -------
    pandas.DataFrame
        Columns ``behavior, precision, recall, f1, n_true, n_pred, n_frames``; one row per
        behavior, then ``macro``: the mean of the per-behavior values ignoring NaN, with summed
        counts.
    """
    yt = np.asarray(y_true, dtype=bool)
    yp = np.asarray(y_pred, dtype=bool)
    behaviors = [str(b) for b in behaviors]
    if yt.shape != yp.shape:
        raise ValueError(f"y_true {yt.shape} and y_pred {yp.shape} differ")
    if yt.ndim == 1:
        yt, yp = yt[:, None], yp[:, None]
    if yt.shape[-1] != len(behaviors):
        raise ValueError(f"{yt.shape[-1]} label columns for {len(behaviors)} behaviors")
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        yt, yp = yt[mask], yp[mask]
    yt = yt.reshape(-1, len(behaviors))
    yp = yp.reshape(-1, len(behaviors))
    tp = (yt & yp).sum(0)
    fp = (~yt & yp).sum(0)
    fn = (yt & ~yp).sum(0)

    def ratio(num, den):
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(den > 0, num / np.maximum(den, 1), zero_division)

    table = pd.DataFrame(
        {
            "behavior": behaviors,
            "precision": ratio(tp, tp + fp),
            "recall": ratio(tp, tp + fn),
            "f1": ratio(2 * tp, 2 * tp + fp + fn),
            "n_true": yt.sum(0),
            "n_pred": yp.sum(0),
            "n_frames": np.full(len(behaviors), yt.shape[0]),
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN column -> NaN macro
        macro = {c: float(np.nanmean(table[c].to_numpy(dtype=float))) if len(table) else np.nan
                 for c in ("precision", "recall", "f1")}
    macro.update(behavior="macro", n_true=int(tp.sum() + fn.sum()), n_pred=int(yp.sum()),
                 n_frames=int(yt.shape[0]))
    return pd.concat([table, pd.DataFrame([macro])], ignore_index=True)


# ----------------------------------------------------------------------------------------------
# Speed threshold (BehaviorDEPOT-style freezing)
# ----------------------------------------------------------------------------------------------


def smoothed_speed(
    record: PoseRecord,
    *,
    window_s: float = 0.5,
    point: str = "centroid",
    fps: float | None = None,
    max_gap_s: float = 0.5,
) -> np.ndarray:
    """Speed in body lengths per second, rolling median over ``window_s`` (centered).

    Parameters
    ----------
    record : PoseRecord
    window_s : float
        Rolling-median window (nearest odd number of frames).
    point : {"centroid", "head"}
        Mean of all keypoints, or the head keypoint of :func:`head_index`.
    fps : float, optional
        Overrides ``record.fps``.
    max_gap_s : float
        Interior gaps up to this long are interpolated first.

    Returns
    -------
    np.ndarray
        float64 ``(T, I)``; NaN only where the point is missing for longer than the window.
    """
    fps = _resolve_fps(record, fps)
    kp = interpolate_gaps(record.keypoints, int(round(max_gap_s * fps)))
    if point == "centroid":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            centroid = np.nanmean(kp, axis=2)
    elif point == "head":
        centroid = kp[:, :, head_index(record.bodyparts)]
    else:
        raise ValueError(f"point must be 'centroid' or 'head', got {point!r}")
    vel = _ddt(centroid, fps)
    speed = np.hypot(vel[..., 0], vel[..., 1]) / body_lengths(kp)
    roll = pd.DataFrame(speed).rolling(_odd_window(window_s, fps), center=True, min_periods=1)
    return roll.median().to_numpy()


class SpeedThreshold:
    """Immobility = smoothed normalized speed at or below a threshold learned from labels.

    Parameters
    ----------
    window_s : float
        Rolling-median window of :func:`smoothed_speed`.
    point : {"centroid", "head"}
        Whose speed: the keypoint centroid (default) or the head keypoint.
    fps : float, optional
        Overrides ``record.fps``.

    Attributes
    ----------
    threshold_ : float
        Body lengths per second; chosen to maximize F1 on the annotated frames given to :meth:`fit`.
    train_f1_ : float
        F1 at that threshold on those frames.
    """

    def __init__(self, *, window_s: float = 0.5, point: str = "centroid", fps: float | None = None) -> None:
        self.window_s = window_s
        self.point = point
        self.fps = fps
        self.threshold_: float | None = None
        self.train_f1_ = float("nan")

    def speed(self, record: PoseRecord) -> np.ndarray:
        """Smoothed normalized speed ``(T, I)``."""
        return smoothed_speed(record, window_s=self.window_s, point=self.point, fps=self.fps)

    def fit(self, record: PoseRecord, present: np.ndarray, annotated: np.ndarray) -> SpeedThreshold:
        """Choose the threshold on annotated frames.

        Parameters
        ----------
        record : PoseRecord
        present : np.ndarray
            bool ``(T, I)``: the immobility behavior (e.g. freezing).
        annotated : np.ndarray
            bool ``(T, I)``: frames that may be used (labeled training frames).
        """
        annotated = np.asarray(annotated, dtype=bool)
        speed = self.speed(record)
        use = annotated & np.isfinite(speed)
        y = np.asarray(present, dtype=bool)[use]
        if not y.any():
            logger.warning("speed threshold: no positive training frame; predicting nothing")
            self.threshold_ = -np.inf
            return self
        # Score = -speed so that "slower" is "more positive" for the generic search.
        thr, self.train_f1_ = best_threshold(-speed[use], y)
        self.threshold_ = -thr
        logger.info("%s speed threshold %.4g body lengths/s (train F1 %.3f)", self.point, self.threshold_,
                    self.train_f1_)
        return self

    def predict_proba(self, record: PoseRecord) -> np.ndarray:
        """Monotone score in [0, 1], ``thr / (thr + speed)``: >= 0.5 exactly when immobile."""
        if self.threshold_ is None:
            raise RuntimeError("call fit first")
        speed = self.speed(record)
        if not np.isfinite(self.threshold_):
            return np.zeros_like(speed)
        with np.errstate(invalid="ignore", divide="ignore"):
            score = self.threshold_ / (self.threshold_ + speed)
        return np.where(np.isfinite(score), np.clip(score, 0, 1), 0.0)

    def predict(self, record: PoseRecord) -> np.ndarray:
        """bool ``(T, I)``: smoothed speed <= threshold (missing animal = not immobile)."""
        if self.threshold_ is None:
            raise RuntimeError("call fit first")
        speed = self.speed(record)
        return np.isfinite(speed) & (speed <= self.threshold_)


def speed_threshold_baseline(
    record: PoseRecord,
    present: np.ndarray,
    annotated: np.ndarray,
    *,
    window_s: float = 0.5,
    point: str = "centroid",
    fps: float | None = None,
) -> SpeedThreshold:
    """Fit the BehaviorDEPOT-style immobility rule on the training frames (freezing only).

    Parameters
    ----------
    record : PoseRecord
        The recording (its fps, or ``fps=``, sets the window).
    present : np.ndarray
        bool ``(T, I)``: the freezing/immobility labels.
    annotated : np.ndarray
        bool ``(T, I)``: frames allowed for choosing the threshold (pass only training frames).
    window_s : float
        Rolling-median window.
    point : {"centroid", "head"}
        The brief's rule uses the centroid; ``"head"`` is a variant (see :class:`SpeedThreshold`).
    fps : float, optional
        Overrides ``record.fps``.

    Returns
    -------
    SpeedThreshold
        Fitted; use ``.predict(record)`` / ``.predict_proba(record)`` for every frame.
    """
    return SpeedThreshold(window_s=window_s, point=point, fps=fps).fit(record, present, annotated)


# ----------------------------------------------------------------------------------------------
# SimBA-style random forest
# ----------------------------------------------------------------------------------------------


class SimbaForest:
    """One balanced random forest per behavior, thresholded to maximize F1 on the training fold.

    Like SimBA: binary classifier per behavior, a "discrimination threshold" on the probability,
    and an optional minimum bout length. The threshold (and, with ``min_bout_s="cv"``, the bout
    length) is chosen on out-of-fold probabilities of an inner blocked cross-validation inside the
    training frames: in-sample forest probabilities are close to 0/1 and would pick a threshold
    that is far too permissive.

    Parameters
    ----------
    n_estimators, min_samples_leaf, max_features : see :class:`sklearn.ensemble.RandomForestClassifier`
    threshold : "cv" or float
        ``"cv"``: chosen by inner blocked CV; a float fixes it.
    inner_folds : int
        Inner folds for ``threshold="cv"``.
    inner_n_estimators : int, optional
        Trees per inner-CV forest (default ``n_estimators // 2``). The inner forests only rank
        frames to place the threshold; fewer trees halve the cost of :meth:`fit`.
    min_bout_s : float or "cv"
        Positive runs shorter than this are removed after thresholding; ``"cv"`` picks one of
        :data:`MIN_BOUT_CANDIDATES_S` together with the threshold. Needs ``fps`` when nonzero.
    fps : float, optional
        Frames per second, for ``min_bout_s`` and the inner-CV gap.
    gap_s : float
        Gap between inner train and test blocks.
    n_jobs, random_state : passed to the forests (fixed seed: results are reproducible).

    Attributes
    ----------
    behaviors_ : list of str
    models_ : list
        Fitted forest per behavior, or a float constant probability when the training frames held a
        single class.
    thresholds_ : np.ndarray
        ``(C,)`` probability thresholds.
    min_bout_frames_ : np.ndarray
        ``(C,)`` minimum bout lengths in frames (1 = no filtering).
    inner_f1_ : np.ndarray
        ``(C,)`` out-of-fold F1 of the chosen setting on the training frames (NaN if not computed).
    """

    def __init__(
        self,
        *,
        n_estimators: int = 200,
        min_samples_leaf: int = 5,
        max_features: str | float = "sqrt",
        threshold: str | float = "cv",
        inner_folds: int = 3,
        inner_n_estimators: int | None = None,
        min_bout_s: float | str = 0.0,
        fps: float | None = None,
        gap_s: float = 1.0,
        n_jobs: int = 2,
        random_state: int = 0,
    ) -> None:
        self.n_estimators = n_estimators
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.threshold = threshold
        self.inner_folds = inner_folds
        self.inner_n_estimators = inner_n_estimators
        self.min_bout_s = min_bout_s
        self.fps = fps
        self.gap_s = gap_s
        self.n_jobs = n_jobs
        self.random_state = random_state

    # -- helpers -------------------------------------------------------------------------------

    def _new_forest(self, n_estimators: int):
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(
            n_estimators=n_estimators,
            min_samples_leaf=self.min_samples_leaf,
            max_features=self.max_features,
            class_weight="balanced_subsample",
            n_jobs=self.n_jobs,
            random_state=self.random_state,
        )

    def _fit_one(self, x: np.ndarray, y: np.ndarray, n_estimators: int | None = None):
        if y.all() or not y.any():
            return float(y.mean()) if y.size else 0.0
        return self._new_forest(n_estimators or self.n_estimators).fit(x, y)

    @staticmethod
    def _proba_one(model, x: np.ndarray) -> np.ndarray:
        if isinstance(model, float):
            return np.full(x.shape[0], model)
        # Threads add tree probabilities in whatever order they finish, which changes the last bit;
        # one thread keeps predictions (and so thresholded decisions) exactly reproducible.
        n_jobs = model.n_jobs
        model.n_jobs = 1
        try:
            return model.predict_proba(x)[:, list(model.classes_).index(True)]
        finally:
            model.n_jobs = n_jobs

    def _bout_candidates(self) -> list[int]:
        if self.min_bout_s == "cv":
            if self.fps is None:
                raise ValueError("min_bout_s='cv' needs fps")
            seconds = MIN_BOUT_CANDIDATES_S
        else:
            seconds = (float(self.min_bout_s),)
            if seconds[0] > 0 and self.fps is None:
                raise ValueError("min_bout_s > 0 needs fps")
        return sorted({max(1, int(round(s * (self.fps or 1.0)))) for s in seconds})

    def _inner_oof(self, x, y, t_idx, i_idx, shape) -> np.ndarray:
        """Out-of-fold probabilities on the (T, I) grid (NaN where not predicted)."""
        frames = np.unique(t_idx)
        gap = int(math.ceil(self.gap_s * self.fps)) if self.fps else 0
        oof = np.full(shape, np.nan)
        # Blocks are contiguous in the training frames' own order, so an outer test hole is skipped.
        for block in np.array_split(frames, self.inner_folds):
            if block.size == 0:
                continue
            lo, hi = block[0], block[-1]
            test = (t_idx >= lo) & (t_idx <= hi)
            train = (t_idx < lo - gap) | (t_idx > hi + gap)
            n_trees = self.inner_n_estimators or max(1, self.n_estimators // 2)
            model = self._fit_one(x[train], y[train], n_trees)
            oof[t_idx[test], i_idx[test]] = self._proba_one(model, x[test])
        return oof

    def _choose(self, oof: np.ndarray, truth: np.ndarray) -> tuple[float, int, float]:
        """(threshold, min bout frames, F1) maximizing pooled out-of-fold F1."""
        valid = ~np.isnan(oof)
        grid = np.round(np.arange(0.02, 0.99, 0.01), 2)
        best = (0.5, 1, -1.0)
        t, n_ind = oof.shape
        for min_frames in self._bout_candidates():
            dec = np.nan_to_num(oof, nan=-1.0)[None, :, :] >= grid[:, None, None]  # (K, T, I)
            if min_frames > 1:
                # Frames as axis 0, every (threshold, animal) a separate track.
                dec = remove_short_bouts(dec.transpose(1, 0, 2), min_frames).transpose(1, 0, 2)
            f1 = _f1_per_column(dec[:, valid].T, truth[valid])
            if np.isnan(f1).all():
                continue
            k = int(np.nanargmax(f1))
            if f1[k] > best[2]:
                best = (float(grid[k]), min_frames, float(f1[k]))
        if best[2] < 0:
            return 0.5, self._bout_candidates()[0], float("nan")
        return best

    # -- API -----------------------------------------------------------------------------------

    def fit(
        self,
        features: np.ndarray,
        present: np.ndarray,
        annotated: np.ndarray,
        behaviors: Sequence[str] | None = None,
    ) -> SimbaForest:
        """Train on annotated frames only.

        Parameters
        ----------
        features : np.ndarray
            ``(T, I, F)``, e.g. from :func:`keypoint_features`.
        present : np.ndarray
            bool ``(T, I, C)``.
        annotated : np.ndarray
            bool ``(T, I)``; unannotated frames are neither positives nor negatives.
        behaviors : sequence of str, optional
            Names for logging; default ``behavior0, ...``.
        """
        if self.threshold != "cv" and self.min_bout_s == "cv":
            raise ValueError("min_bout_s='cv' needs threshold='cv' (both are chosen together)")
        features = np.asarray(features, dtype=np.float32)
        present = np.asarray(present, dtype=bool)
        annotated = np.asarray(annotated, dtype=bool)
        n_beh = present.shape[2]
        self.behaviors_ = list(behaviors) if behaviors is not None else [f"behavior{c}" for c in range(n_beh)]
        t_idx, i_idx = np.nonzero(annotated)
        x = features[t_idx, i_idx]
        self.models_, self.thresholds_ = [], np.full(n_beh, 0.5)
        self.min_bout_frames_ = np.ones(n_beh, dtype=int)
        self.inner_f1_ = np.full(n_beh, np.nan)
        for c, name in enumerate(self.behaviors_):
            y = present[t_idx, i_idx, c]
            model = self._fit_one(x, y)
            self.models_.append(model)
            if isinstance(model, float):
                logger.warning("%s: training frames hold a single class (%d positives of %d); "
                               "constant probability %.0f", name, int(y.sum()), y.size, model)
                continue
            if self.threshold == "cv":
                oof = self._inner_oof(x, y, t_idx, i_idx, annotated.shape)
                truth = np.zeros(annotated.shape, dtype=bool)
                truth[t_idx, i_idx] = y
                thr, min_frames, f1 = self._choose(oof, truth)
            else:
                thr, min_frames, f1 = float(self.threshold), self._bout_candidates()[0], float("nan")
            self.thresholds_[c], self.min_bout_frames_[c], self.inner_f1_[c] = thr, min_frames, f1
            logger.info("%s: %d/%d positive training frames, threshold %.2f, min bout %d frames, "
                        "inner-CV F1 %.3f", name, int(y.sum()), y.size, thr, min_frames, f1)
        return self

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Probability of each behavior, float ``(T, I, C)``."""
        features = np.asarray(features, dtype=np.float32)
        t, n_ind, n_feat = features.shape
        flat = features.reshape(-1, n_feat)
        out = np.stack([self._proba_one(m, flat) for m in self.models_], axis=-1)
        return out.reshape(t, n_ind, len(self.models_))

    def predict(self, features: np.ndarray, proba: np.ndarray | None = None) -> np.ndarray:
        """bool ``(T, I, C)``: probability >= threshold, then bouts shorter than the minimum removed.

        Parameters
        ----------
        features : np.ndarray
            ``(T, I, F)``.
        proba : np.ndarray, optional
            Output of :meth:`predict_proba` for these features, to avoid computing it twice.
        """
        if proba is None:
            proba = self.predict_proba(features)
        dec = proba >= self.thresholds_[None, None, :]
        for c, min_frames in enumerate(self.min_bout_frames_):
            dec[..., c] = remove_short_bouts(dec[..., c], int(min_frames))
        return dec
