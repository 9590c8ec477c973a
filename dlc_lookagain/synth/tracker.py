"""What a pose estimator would report for the simulated animals.

Errors modeled, all independent of the behavior being performed (so that they
cannot leak labels): temporally correlated jitter, a likelihood that drifts and
drops under occlusion (the nest shelter, another animal lying on top), missing
keypoints in multi-animal output, short outlier runs (a keypoint jumping away or
onto the neighbour) and identity swaps when two animals come close.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter

from dlc_lookagain.synth import anatomy
from dlc_lookagain.synth.arena import Scene
from dlc_lookagain.synth.config import TrackerConfig
from dlc_lookagain.synth.motion import Trajectory

logger = logging.getLogger(__name__)

# Per-keypoint confidence (logit) and jitter factors, BODYPARTS order:
# nose, left_ear, right_ear, neck, body_center, tail_base, tail_tip.
# Thin or featureless parts (tail tip, the middle of the back) are harder to localize.
_LOGIT_MEAN = np.array([3.4, 3.0, 3.0, 2.6, 2.8, 3.0, 1.4])
_JITTER_FACTOR = np.array([1.0, 0.9, 0.9, 1.3, 1.4, 1.0, 1.8])
_LOGIT_SD, _LOGIT_RHO = 0.9, 0.9
_JITTER_RHO = 0.6
_OCCLUDED_DROP = 7.0  # logit units lost by a fully occluded keypoint
_SWAP_NEAR, _SWAP_FAR = 0.9, 1.4  # encounter hysteresis, in body lengths between centers


@dataclass
class PosePrediction:
    """Tracker output on the frame grid, one block per track.

    Attributes
    ----------
    xy : np.ndarray
        float64 ``(T, n_tracks, K, 2)``; NaN where a multi-animal tracker reports nothing.
    likelihood : np.ndarray
        float64 ``(T, n_tracks, K)``; NaN exactly where ``xy`` is NaN.
    track_animal : np.ndarray
        int ``(T, n_tracks)``: which true animal each track shows (-1: none).
        Differs from ``arange(n_tracks)`` only after identity swaps.
    swaps : list of (int, int, int)
        ``(frame, animal_a, animal_b)`` of every swap.
    """

    xy: np.ndarray
    likelihood: np.ndarray
    track_animal: np.ndarray
    swaps: list

    @property
    def n_tracks(self) -> int:
        return int(self.xy.shape[1])


def _ar1(rng: np.random.Generator, shape: tuple, rho: float) -> np.ndarray:
    """Unit-variance AR(1) noise along axis 0."""
    white = rng.standard_normal(shape)
    out = lfilter([np.sqrt(1 - rho**2)], [1.0, -rho], white, axis=0)
    out[0] = white[0]  # start in the stationary distribution
    return out


def _segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance from points ``p (..., K, 2)`` to segments ``a->b`` ``(..., 2)``."""
    ab = (b - a)[..., None, :]
    ap = p - a[..., None, :]
    t = np.clip((ap * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-9), 0.0, 1.0)
    return np.linalg.norm(ap - t[..., None] * ab, axis=-1)


def occlusion(traj: Trajectory, scene: Scene) -> np.ndarray:
    """How hidden each true keypoint is, 0 (visible) to 1, ``(T, A, K)``.

    Under the shelter a keypoint is almost fully hidden; under another animal's
    body (animals are drawn in index order, later ones on top) mostly hidden.
    """
    kp = traj.keypoints.astype(np.float64)
    occ = 0.9 * scene.nest.contains(kp[..., 0], kp[..., 1], margin=0.03 * scene.mean_length).astype(
        np.float64
    )
    n_a = traj.n_animals
    for top in range(1, n_a):
        # Body axis of the animal on top: neck -> body_center -> tail_base.
        neck, center, base = kp[:, top, 3], kp[:, top, 4], kp[:, top, 5]
        radius = 0.85 * anatomy.body_half_width(traj.lengths[top])
        for below in range(top):
            p = kp[:, below]
            d = np.minimum(_segment_distance(p, neck, center), _segment_distance(p, center, base))
            occ[:, below] = np.maximum(occ[:, below], 0.7 * (d < radius))
    return occ


def _swap_schedule(traj: Trajectory, cfg: TrackerConfig, rng: np.random.Generator) -> tuple[np.ndarray, list]:
    """Which animal each track follows, frame by frame (swaps happen at close encounters)."""
    n_t, n_a = traj.n_frames, traj.n_animals
    track_animal = np.tile(np.arange(n_a), (n_t, 1))
    swaps: list[tuple[int, int, int]] = []
    if n_a < 2 or cfg.swap_probability <= 0:
        return track_animal, swaps
    centers = traj.keypoints[:, :, 4].astype(np.float64)
    mean_len = float(np.mean(traj.lengths))
    events = []
    for i in range(n_a):
        for j in range(i + 1, n_a):
            d = np.linalg.norm(centers[:, i] - centers[:, j], axis=1) / mean_len
            near = False
            for t in np.flatnonzero((d < _SWAP_NEAR) | (d > _SWAP_FAR)):
                # Only frames where the hysteresis state can change are visited.
                if not near and d[t] < _SWAP_NEAR:
                    near = True
                    events.append((int(t), i, j))
                elif near and d[t] > _SWAP_FAR:
                    near = False
    events.sort()
    draws = rng.random(len(events))
    current = np.arange(n_a)  # current[track] = animal
    change_frames = []
    for (t, i, j), u in zip(events, draws):
        if u < cfg.swap_probability:
            ti, tj = int(np.flatnonzero(current == i)[0]), int(np.flatnonzero(current == j)[0])
            current[ti], current[tj] = j, i
            change_frames.append((t, current.copy()))
            swaps.append((t, i, j))
    for t, assignment in change_frames:
        track_animal[t:] = assignment
    return track_animal, swaps


def simulate_tracker(
    traj: Trajectory,
    scene: Scene,
    cfg: TrackerConfig,
    rng: np.random.Generator,
    multi_animal: bool,
    n_tracks: int | None = None,
) -> PosePrediction:
    """Turn true keypoints into pose-estimator output.

    Parameters
    ----------
    traj : Trajectory
        Simulated animals.
    scene : Scene
        The scene (nest position, frame size).
    cfg : TrackerConfig
        Error model.
    rng : numpy.random.Generator
        Only source of randomness.
    multi_animal : bool
        maDLC-style output: low-confidence keypoints become NaN and identities may swap.
        Otherwise single-animal DLC output: coordinates everywhere, no swaps.
    n_tracks : int, optional
        Number of track blocks (the project's individuals); extra tracks are all NaN.
        Defaults to the number of animals.

    Returns
    -------
    PosePrediction
    """
    kp = traj.keypoints.astype(np.float64)
    n_t, n_a, n_k, _ = kp.shape
    n_tracks = n_a if n_tracks is None else int(n_tracks)
    if n_tracks < n_a:
        raise ValueError(f"{n_tracks} tracks cannot hold {n_a} animals")
    if not multi_animal and n_a != 1:
        raise ValueError("single-animal output needs exactly one animal")
    length = traj.lengths.astype(np.float64)[None, :, None]

    occ = occlusion(traj, scene)
    logit = _LOGIT_MEAN + _LOGIT_SD * _ar1(rng, (n_t, n_a, n_k), _LOGIT_RHO) - _OCCLUDED_DROP * occ
    lik = 1.0 / (1.0 + np.exp(-logit))

    sigma = cfg.jitter * length * _JITTER_FACTOR * (1.0 + 2.5 * (1.0 - lik))
    err = _ar1(rng, (n_t, n_a, n_k, 2), _JITTER_RHO) * sigma[..., None]
    # A hidden keypoint is a guess that wanders around the true spot.
    err += _ar1(rng, (n_t, n_a, n_k, 2), 0.95) * (0.25 * length * occ)[..., None]
    xy = kp + err

    # Outlier runs of 1-3 frames: far off, or on the neighbour's same keypoint.
    starts = rng.random((n_t, n_a, n_k)) < cfg.outlier_rate * (1.0 + 4.0 * occ)
    outlier = starts.copy()
    for lag in (1, 2):
        keep = starts & (rng.random(starts.shape) < 0.5**lag)
        outlier[lag:] |= keep[:-lag]
    n_out = int(outlier.sum())
    if n_out:
        idx = np.nonzero(outlier)
        angle = rng.uniform(0, 2 * np.pi, n_out)
        dist = rng.uniform(0.5, 2.5, n_out) * traj.lengths[idx[1]]
        jump = kp[idx] + np.stack([np.cos(angle), np.sin(angle)], axis=1) * dist[:, None]
        if n_a > 1:
            other = (idx[1] + rng.integers(1, n_a, n_out)) % n_a
            onto = rng.random(n_out) < 0.4
            neighbour = kp[idx[0], other, idx[2]] + rng.normal(0, 1.0, (n_out, 2))
            jump[onto] = neighbour[onto]
        xy[idx] = jump
        lik[idx] = rng.uniform(0.3, 0.95, n_out)

    xy[..., 0] = np.clip(xy[..., 0], 0, scene.width - 1)
    xy[..., 1] = np.clip(xy[..., 1], 0, scene.height - 1)
    # Networks output float32; DLC stores them in float64 tables.
    xy = xy.astype(np.float32).astype(np.float64)
    lik = lik.astype(np.float32).astype(np.float64)

    if multi_animal:
        missing = lik < cfg.detection_threshold
        xy[missing] = np.nan
        lik[missing] = np.nan
        track_animal, swaps = _swap_schedule(traj, cfg, rng)
    else:
        track_animal, swaps = np.zeros((n_t, 1), int), []

    out_xy = np.full((n_t, n_tracks, n_k, 2), np.nan)
    out_lik = np.full((n_t, n_tracks, n_k), np.nan)
    frames = np.arange(n_t)[:, None]
    out_xy[:, :n_a] = xy[frames, track_animal]
    out_lik[:, :n_a] = lik[frames, track_animal]
    full_assignment = np.full((n_t, n_tracks), -1)
    full_assignment[:, :n_a] = track_animal
    logger.debug(
        "tracker: %d outlier keypoint-frames, %d identity swaps, %.1f%% missing",
        n_out,
        len(swaps),
        100 * np.isnan(out_lik[:, :n_a]).mean(),
    )
    return PosePrediction(out_xy, out_lik, full_assignment, swaps)
