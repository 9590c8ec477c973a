"""Pose tokens: any skeleton, any number of animals, as per-keypoint tokens in the animal's own frame.

Method
------
A DeepLabCut or SLEAP project fixes its own skeleton: 4 to 30 bodyparts with free-form names. So
that one set of weights applies to every project, the motion encoder never sees a bodypart *index*
or *name*. Each frame t of animal i is a set of keypoint tokens b = 1..B, each described by

* its egocentric position  e_tib = R(-theta_ti) (k_tib - c_ti) / s_i   (2 numbers),
* its egocentric velocity  (e_tib - e_(t-1)ib) * fps                    (2, body lengths / s),
* its detection confidence and a presence flag                          (2),

where c_ti is the animal's centre (median of its present keypoints), theta_ti its heading (front
keypoints minus back keypoints) and s_i its body size (robust median over the recording). What a
token *is* (nose? tail base?) is given by a skeleton-free identity descriptor: the keypoint's
median egocentric position over the whole recording, p_b (2 numbers), i.e. where it sits on the
body. A nose is "the point that is usually far in front", whatever the project calls it.

Missing keypoints (NaN, or confidence below ``min_confidence``) are masked, not zero-filled: their
token is flagged absent and the encoder's set pooling ignores it.

Per animal and frame, whole-body features complete the tokens (all scale-free): speed and its
egocentric direction, turning rate, elongation (rearing shortens the body), fraction of keypoints
present and mean confidence, speed, turning and elongation over 0.2 s and 0.5 s (frame-to-frame
displacement is dominated by tracker jitter), a jump flag (an identity swap or a detection jump moves the centre by
more than half a body length in one frame), the distance, bearing and approach speed of the nearest
other animal, and the position in the arena (relative to the extent of all keypoints of the
recording, since the arena itself is not known).

Heading: front and back keypoints are found by name (nose/snout/head/ear/eye vs tail base/rump/
hip/spine end); a skeleton whose names say neither uses its first and last thirds, since DLC and
SLEAP skeletons are conventionally listed head first.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import numpy as np

from dlc_lookagain.io.record import PoseRecord

logger = logging.getLogger(__name__)

__all__ = ["PoseTokens", "tokenize", "TOKEN_FEATURES", "ANIMAL_FEATURES", "front_back_parts"]

#: Per-keypoint token features, in order.
TOKEN_FEATURES: tuple[str, ...] = ("ego_x", "ego_y", "ego_vx", "ego_vy", "confidence", "present")
#: Per-animal, per-frame features, in order.
ANIMAL_FEATURES: tuple[str, ...] = (
    "speed", "vel_forward", "vel_lateral", "turn_rate", "elongation", "spread",
    "present_fraction", "mean_confidence", "jump", "neighbor_distance", "neighbor_cos",
    "neighbor_sin", "neighbor_approach", "has_neighbor", "arena_x", "arena_y", "accel",
    "speed_0.2s", "speed_0.5s", "turn_0.5s", "elongation_0.5s",
)
#: Spans (seconds) of the smoothed speed features: tracker jitter dominates frame-to-frame
#: displacements, displacement over a few frames is what separates walking from resting.
SMOOTH_SPANS_S = (0.2, 0.5)

_FRONT = re.compile(r"nose|snout|head|ear|eye|mouth|muzzle|beak|chin|forehead", re.I)
_BACK = re.compile(r"tail.?base|base.?of.?tail|tail.?root|tail.?start|tail.?0|rump|hip|pelvis|"
                   r"lower.?back|sacrum|spine.?(?:3|4|5|low|end)", re.I)
_TAIL_TIP = re.compile(r"tail.?(?:tip|end|mid|middle|2|3|4|5)|tailtip|tailend", re.I)


@dataclass
class PoseTokens:
    """The tokenized pose of one recording (see the module docstring).

    Attributes
    ----------
    tokens : float32 (T, I, B, 6)
        Keypoint tokens (:data:`TOKEN_FEATURES`); zero where absent.
    present : bool (T, I, B)
        Keypoint detected with enough confidence.
    identity : float32 (B, 2)
        Skeleton-free keypoint identity: median egocentric position over the recording.
    animal : float32 (T, I, 21)
        Whole-body features (:data:`ANIMAL_FEATURES`), finite everywhere.
    visible : bool (T, I)
        The animal has at least ``min_keypoints`` present keypoints.
    center : float32 (T, I, 2)
        Centre in pose pixels; short gaps interpolated, NaN where the animal is gone.
    heading : float32 (T, I)
        Radians in image coordinates (x right, y down), NaN where unknown.
    body_size : float32 (I,)
        Body length in pose pixels (robust median over the recording).
    """

    tokens: np.ndarray
    present: np.ndarray
    identity: np.ndarray
    animal: np.ndarray
    visible: np.ndarray
    center: np.ndarray
    heading: np.ndarray
    body_size: np.ndarray

    @property
    def n_frames(self) -> int:
        return self.tokens.shape[0]

    @property
    def n_individuals(self) -> int:
        return self.tokens.shape[1]


def front_back_parts(bodyparts: list[str]) -> tuple[list[int], list[int]]:
    """Indices of the keypoints that define the heading (front minus back), by name or by order."""
    n = len(bodyparts)
    front = [b for b, name in enumerate(bodyparts) if _FRONT.search(name)]
    back = [b for b, name in enumerate(bodyparts) if _BACK.search(name) and not _TAIL_TIP.search(name)]
    if not front or not back or set(front) & set(back):
        third = max(1, n // 3)
        front, back = list(range(third)), list(range(n - third, n))
        if n == 1:
            back = []
    return front, back


def _interpolate_gaps(x: np.ndarray, max_gap: int) -> np.ndarray:
    """Linear interpolation of NaN runs no longer than ``max_gap`` along axis 0, per column."""
    out = x.copy()
    flat = out.reshape(out.shape[0], -1)
    t = np.arange(flat.shape[0])
    for j in range(flat.shape[1]):
        col = flat[:, j]
        ok = np.isfinite(col)
        if ok.all() or ok.sum() < 2:
            continue
        filled = np.interp(t, t[ok], col[ok])
        # Length of the NaN run each frame belongs to.
        bad = ~ok
        edges = np.diff(np.concatenate([[0], bad.astype(np.int8), [0]]))
        starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        for s, e in zip(starts, ends):
            if e - s <= max_gap and s > 0 and e < len(col):
                col[s:e] = filled[s:e]
        flat[:, j] = col
    return out


def _slog(x: np.ndarray) -> np.ndarray:
    """Signed log compression of heavy-tailed quantities (speeds, accelerations)."""
    return np.sign(x) * np.log1p(np.abs(x))


def tokenize(
    record: PoseRecord,
    *,
    min_confidence: float = 0.1,
    min_keypoints: int | None = None,
    max_gap_s: float = 0.5,
) -> PoseTokens:
    """Turn a :class:`~dlc_lookagain.io.record.PoseRecord` into :class:`PoseTokens`.

    Parameters
    ----------
    record : PoseRecord
        Any skeleton, any number of animals.
    min_confidence : float
        Keypoints below this confidence count as missing (records without confidence use
        finiteness only).
    min_keypoints : int, optional
        Keypoints needed for an animal to count as visible in a frame; default
        ``max(2, ceil(B / 3))``.
    max_gap_s : float
        Gaps in an animal's centre and heading up to this long are interpolated (for velocities
        and crops); longer gaps leave the animal absent.

    Returns
    -------
    PoseTokens
    """
    kp = np.asarray(record.keypoints, dtype=np.float64)  # (T, I, B, 2)
    t_n, i_n, b_n, _ = kp.shape
    fps = float(record.fps) if record.fps else 30.0
    conf = np.asarray(record.confidence, dtype=np.float64) if record.confidence is not None else None
    finite = np.isfinite(kp).all(-1)  # (T, I, B)
    if conf is None or not np.isfinite(conf).any():
        conf = np.where(finite, 1.0, np.nan)
    present = finite & (np.nan_to_num(conf, nan=0.0) >= min_confidence)
    if min_keypoints is None:
        min_keypoints = max(2, int(np.ceil(b_n / 3))) if b_n > 1 else 1
    visible = present.sum(-1) >= min(min_keypoints, b_n)  # (T, I)
    kp_p = np.where(present[..., None], kp, np.nan)

    # Centre c_ti: median of the present keypoints, then short gaps bridged.
    with np.errstate(all="ignore"), _quiet_nan():
        center = np.nanmedian(kp_p, axis=2)  # (T, I, 2)
    center[~visible] = np.nan
    max_gap = max(1, int(round(max_gap_s * fps)))
    center = _interpolate_gaps(center, max_gap)

    # Heading theta_ti: front keypoints minus back keypoints.
    front, back = front_back_parts(list(record.bodyparts))
    with np.errstate(all="ignore"), _quiet_nan():
        f = np.nanmean(kp_p[:, :, front], axis=2)
        bk = np.nanmean(kp_p[:, :, back], axis=2) if back else center
    axis = f - bk
    heading = np.arctan2(axis[..., 1], axis[..., 0])  # (T, I)
    heading[~visible] = np.nan
    # Interpolate the unit vector, not the angle (wrap-around).
    unit = _interpolate_gaps(np.stack([np.cos(heading), np.sin(heading)], -1), max_gap)
    heading = np.arctan2(unit[..., 1], unit[..., 0])

    # Body size s_i: twice the RMS distance of keypoints from the centre, median over frames.
    with np.errstate(all="ignore"), _quiet_nan():
        rms = np.sqrt(np.nanmean(((kp_p - center[:, :, None]) ** 2).sum(-1), axis=2))  # (T, I)
        rms[~visible] = np.nan
        size = 2.0 * np.nanmedian(rms, axis=0)  # (I,)
    # A size of 0 (one keypoint, or all keypoints on one spot) would divide by zero below.
    good = np.isfinite(size) & (size > 0)
    fallback = np.median(size[good]) if good.any() else _extent_fallback(kp)
    size = np.where(good, size, fallback).astype(np.float64)

    # Egocentric tokens.
    cos, sin = np.cos(heading)[:, :, None], np.sin(heading)[:, :, None]
    rel = (kp - center[:, :, None]) / size[None, :, None, None]
    ego = np.stack([rel[..., 0] * cos + rel[..., 1] * sin, -rel[..., 0] * sin + rel[..., 1] * cos], -1)
    ego = np.where(present[..., None], ego, np.nan)
    vel = np.zeros_like(ego)
    vel[1:] = (ego[1:] - ego[:-1]) * fps
    vel = np.nan_to_num(np.clip(vel, -50, 50), nan=0.0)
    with np.errstate(all="ignore"), _quiet_nan():
        identity = np.nanmedian(ego.reshape(-1, b_n, 2), axis=0)  # (B, 2)
    identity = np.nan_to_num(identity, nan=0.0)
    tokens = np.concatenate(
        [np.nan_to_num(np.clip(ego, -5, 5), nan=0.0), _slog(vel),
         np.nan_to_num(conf, nan=0.0)[..., None].clip(0, 1), present[..., None].astype(np.float64)], -1)
    tokens[~present] = 0.0

    animal = _animal_features(kp_p, center, heading, size, present, conf, visible, fps)
    return PoseTokens(
        tokens=tokens.astype(np.float32), present=present, identity=identity.astype(np.float32),
        animal=animal.astype(np.float32), visible=visible, center=center.astype(np.float32),
        heading=heading.astype(np.float32), body_size=size.astype(np.float32),
    )


class _quiet_nan:
    """Silence numpy's all-NaN-slice RuntimeWarnings inside a block (missing animals are normal)."""

    def __enter__(self):
        import warnings

        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        self._ctx.__exit__(*exc)


def _extent_fallback(kp: np.ndarray) -> float:
    ext = np.nanmax(kp, axis=(0, 1, 2)) - np.nanmin(kp, axis=(0, 1, 2)) if np.isfinite(kp).any() else None
    ok = ext is not None and np.isfinite(ext).all() and np.nanmax(ext) > 0
    return float(np.nanmax(ext) / 10) if ok else 50.0


def _animal_features(kp_p, center, heading, size, present, conf, visible, fps) -> np.ndarray:
    t_n, i_n = center.shape[:2]
    s = size[None, :]
    # Centre velocity in body lengths / s, split into forward and lateral components.
    vel = np.zeros_like(center)
    vel[1:] = (center[1:] - center[:-1]) * fps / s[..., None]
    speed = np.linalg.norm(vel, axis=-1)
    cos, sin = np.cos(heading), np.sin(heading)
    fwd = vel[..., 0] * cos + vel[..., 1] * sin
    lat = -vel[..., 0] * sin + vel[..., 1] * cos
    turn = np.zeros_like(heading)
    turn[1:] = np.angle(np.exp(1j * (heading[1:] - heading[:-1]))) * fps
    accel = np.zeros_like(speed)
    accel[1:] = (speed[1:] - speed[:-1]) * fps
    # Shape: elongation (major-axis extent vs. the animal's median) and spread (minor/major).
    rel = kp_p - center[:, :, None]
    with np.errstate(all="ignore"), _quiet_nan():
        along = rel[..., 0] * cos[..., None] + rel[..., 1] * sin[..., None]
        across = -rel[..., 0] * sin[..., None] + rel[..., 1] * cos[..., None]
        major = np.nanmax(along, -1) - np.nanmin(along, -1)
        minor = np.nanmax(across, -1) - np.nanmin(across, -1)
        elong = major / (np.nanmedian(np.where(visible, major, np.nan), axis=0)[None] + 1e-9)
        spread = minor / (major + 1e-9)
    present_frac = present.mean(-1)
    mean_conf = np.where(present, np.nan_to_num(conf, nan=0.0), 0.0).sum(-1) / max(present.shape[-1], 1)
    step = np.zeros_like(speed)
    step[1:] = np.linalg.norm(center[1:] - center[:-1], axis=-1) / s
    jump = (step > 0.5).astype(np.float64)
    # Nearest other animal.
    nd = np.full((t_n, i_n), np.nan)
    ncos = np.zeros((t_n, i_n))
    nsin = np.zeros((t_n, i_n))
    napp = np.zeros((t_n, i_n))
    if i_n > 1:
        diff = center[:, None, :, :] - center[:, :, None, :]  # (T, I, J, 2): from i to j
        dist = np.linalg.norm(diff, axis=-1) / s[:, :, None]
        dist[:, np.arange(i_n), np.arange(i_n)] = np.nan
        filled = np.where(np.isfinite(dist), dist, np.inf)
        j = filled.argmin(-1)  # (T, I)
        rows = np.arange(t_n)[:, None]
        cols = np.arange(i_n)[None]
        nd = np.where(np.isfinite(filled.min(-1)), filled.min(-1), np.nan)
        d = diff[rows, cols, j]  # (T, I, 2)
        bearing = np.arctan2(d[..., 1], d[..., 0]) - heading
        ncos, sin_b = np.cos(bearing), np.sin(bearing)
        nsin = sin_b
        napp = np.zeros_like(nd)
        napp[1:] = -(nd[1:] - nd[:-1]) * fps
    has_nb = np.isfinite(nd)
    # Arena position relative to the extent of all keypoints of the recording.
    with np.errstate(all="ignore"), _quiet_nan():
        lo = np.nanpercentile(kp_p.reshape(-1, 2), 1, axis=0) if np.isfinite(kp_p).any() else np.zeros(2)
        hi = np.nanpercentile(kp_p.reshape(-1, 2), 99, axis=0) if np.isfinite(kp_p).any() else np.ones(2)
    arena = (center - lo) / np.maximum(hi - lo, 1e-6) * 2 - 1
    smooth = []
    for span in SMOOTH_SPANS_S:
        k = max(1, int(round(span * fps / 2)))
        disp = np.full((t_n, i_n), np.nan)
        if t_n > 2 * k:
            disp[k:-k] = np.linalg.norm(center[2 * k:] - center[: -2 * k], axis=-1) / (2 * k) * fps / s
        smooth.append(_slog(disp))
    k = max(1, int(round(SMOOTH_SPANS_S[-1] * fps / 2)))
    turn_long = np.full((t_n, i_n), np.nan)
    if t_n > 2 * k:
        turn_long[k:-k] = np.abs(np.angle(np.exp(1j * (heading[2 * k:] - heading[: -2 * k])))) / (2 * k) * fps
    from scipy.ndimage import uniform_filter1d

    elong_log = np.log(np.clip(np.nan_to_num(elong, nan=1.0), 0.2, 5))
    elong_long = uniform_filter1d(elong_log, size=2 * k + 1, axis=0, mode="nearest")
    feats = np.stack([
        _slog(speed), _slog(fwd), _slog(lat), _slog(turn / np.pi), np.log(np.clip(elong, 0.2, 5)),
        np.clip(spread, 0, 3), present_frac, mean_conf, jump,
        np.log1p(np.clip(nd, 0, 50)), ncos, nsin, _slog(napp), has_nb.astype(np.float64),
        np.clip(arena[..., 0], -1.5, 1.5), np.clip(arena[..., 1], -1.5, 1.5), _slog(accel) / 3,
        smooth[0], smooth[1], _slog(turn_long / np.pi), elong_long,
    ], -1)
    feats = np.nan_to_num(feats, nan=0.0, posinf=0.0, neginf=0.0)
    # Frames without a visible animal carry no motion information; only the flags stay.
    feats[~visible] = 0.0
    feats[..., 6][~visible] = present_frac[~visible]
    return feats
