"""Kinematic building blocks shared by the feature bank and the baselines.

Vectorized over frames and animals: gap interpolation, run-length helpers, time derivatives that
are safe for angles, convex-hull areas, body lengths, and the head keypoint of any skeleton.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence

import numpy as np

from dlc_lookagain.errors import option_text
from dlc_lookagain.io.record import PoseRecord

logger = logging.getLogger(__name__)

#: Substrings (case-insensitive) that mark the head keypoint used for the facing angle.
HEAD_WORDS = ("nose", "snout", "head")

def _resolve_fps(record: PoseRecord, fps: float | None) -> float:
    fps = record.fps if fps is None else fps
    if fps is None or not np.isfinite(fps) or fps <= 0:
        raise ValueError(f"{record.source}: frames per second unknown; pass {option_text('fps')}")
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
