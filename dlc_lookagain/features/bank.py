"""The keypoint feature bank: per-frame, per-animal features for any skeleton.

JAABA/SimBA-style hand-made kinematics that a tree decision layer reads directly: speeds and
accelerations of smoothed positions, distances and angles inside the body, window statistics over
windows set in seconds (so 30 and 50 fps projects get the same windows), and features toward the
nearest other animal. Lengths are in body lengths; angles are never absolute headings.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from dlc_lookagain.features.kinematics import (
    _angle_between,
    _angle_rate,
    _ddt,
    _odd_window,
    _resolve_fps,
    body_lengths,
    convex_hull_area,
    head_index,
    interpolate_gaps,
)
from dlc_lookagain.io.record import PoseRecord

logger = logging.getLogger(__name__)

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


def _nearest_other(centroid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each animal's nearest other animal by centroid, frame by frame.

    Returns ``rel (T, I, I, 2)`` (``[t, i, j] = centroid_j - centroid_i``), ``cdist (T, I, I)``,
    ``nn (T, I)`` and ``alone (T, I)``: no other animal visible (``nn`` then points anywhere, even at
    the animal itself).
    """
    n_ind = centroid.shape[1]
    rel = centroid[:, None, :, :] - centroid[:, :, None, :]
    cdist = np.hypot(rel[..., 0], rel[..., 1])  # symmetric
    search = np.where(np.isnan(cdist), np.inf, cdist)
    search[:, np.arange(n_ind), np.arange(n_ind)] = np.inf
    return rel, cdist, search.argmin(axis=2), ~np.isfinite(search.min(axis=2))


def _unit_axis(heads: np.ndarray, centroid: np.ndarray) -> np.ndarray:
    """Unit body axis (centroid toward the head keypoint), ``(T, I, 2)``; NaN where undefined."""
    axis = heads - centroid
    norm = np.hypot(axis[..., 0], axis[..., 1])
    with np.errstate(invalid="ignore", divide="ignore"):
        return axis / norm[..., None]


def _in_body_frame(rel: np.ndarray, unit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``rel (..., 2)`` (a point minus the origin) in the frame with x along ``unit (..., 2)``."""
    x = rel[..., 0] * unit[..., 0] + rel[..., 1] * unit[..., 1]
    y = -rel[..., 0] * unit[..., 1] + rel[..., 1] * unit[..., 0]
    return x, y


def _social_features(kp, centroid, vel, speed, bl, head, fps) -> dict[str, np.ndarray]:
    """Features of each animal relative to its nearest other animal (needs I > 1)."""
    t, n_ind, b, _ = kp.shape
    rel, cdist, nn, alone = _nearest_other(centroid)
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


def _relational_features(kp: np.ndarray, centroid: np.ndarray, head: int, bl: np.ndarray) -> dict[str, np.ndarray]:
    """Where the nearest other animal is and how it lies, in each animal's own body frame (MARS-style).

    Social behaviors are told apart by relative posture more than by distance: a lateral threat is
    side by side, a keep-down is one body over the other, anogenital sniffing is a nose at the
    partner's rear. Per animal ``i`` and its nearest other animal ``j`` (by centroid):

    * ``rel_partner_centroid_x/y``, ``rel_partner_head_x/y``: the partner's centroid and head in
      ``i``'s body frame (x toward ``i``'s head; y unsigned, so mirror images agree), pair body lengths;
    * ``rel_my_head_in_partner_x/y``: ``i``'s head in ``j``'s body frame (front or rear of the partner);
    * ``rel_axis_cos``: cosine of the angle between the two body axes (1 parallel, -1 head to tail);
    * ``rel_head_head_dist_bl``, ``rel_head_to_partner_dist_bl`` (``i``'s head to ``j``'s nearest
      keypoint), ``rel_partner_head_to_me_dist_bl``.

    ``kp (T, I, B, 2)`` smoothed positions; returns ``(T, I)`` arrays, NaN when alone.
    """
    t, n_ind = kp.shape[:2]
    _, _, nn, alone = _nearest_other(centroid)
    scale = ((bl[:, None] + bl[None, :]) / 2)[np.arange(n_ind)[None, :], nn]  # (T, I)

    heads = kp[:, :, head]  # (T, I, 2)
    unit = _unit_axis(heads, centroid)  # (T, I, 2)

    def partner(a: np.ndarray) -> np.ndarray:  # (T, I, ...) -> the nearest other animal's value
        idx = nn.reshape(t, n_ind, *([1] * (a.ndim - 2)))
        return np.take_along_axis(a, np.broadcast_to(idx, (t, n_ind, *a.shape[2:])), axis=1)

    def in_frame(point: np.ndarray, origin: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x, y = _in_body_frame(point - origin, u)
        return x, np.abs(y)

    p_centroid, p_head, p_unit, p_kp = partner(centroid), partner(heads), partner(unit), partner(kp)
    out = {}
    x, y = in_frame(p_centroid, centroid, unit)
    out["rel_partner_centroid_x"], out["rel_partner_centroid_y"] = x / scale, y / scale
    x, y = in_frame(p_head, centroid, unit)
    out["rel_partner_head_x"], out["rel_partner_head_y"] = x / scale, y / scale
    x, y = in_frame(heads, p_centroid, p_unit)
    out["rel_my_head_in_partner_x"], out["rel_my_head_in_partner_y"] = x / scale, y / scale
    out["rel_axis_cos"] = (unit * p_unit).sum(-1)
    out["rel_head_head_dist_bl"] = np.hypot(*(p_head - heads).transpose(2, 0, 1)) / scale
    to_partner = np.hypot(*(p_kp - heads[:, :, None]).transpose(3, 0, 1, 2))  # (T, I, B)
    out["rel_head_to_partner_dist_bl"] = np.nanmin(to_partner, axis=2) / scale
    to_me = np.hypot(*(kp - p_head[:, :, None]).transpose(3, 0, 1, 2))
    out["rel_partner_head_to_me_dist_bl"] = np.nanmin(to_me, axis=2) / scale
    return {k: np.where(alone, np.nan, v) for k, v in out.items()}


# ----------------------------------------------------------------------------------------------
# The product's feature bank
# ----------------------------------------------------------------------------------------------

#: Window statistics are taken over these spans (seconds): a few frames, a movement, a bout.
BANK_WINDOWS_S = (0.2, 1.0, 3.0)
#: Positions are averaged over this span before differentiating: frame-to-frame velocities of a
#: tracker are mostly jitter, which drowns slow movements (freezing vs. resting is 1-2 px/frame).
BANK_SMOOTH_S = 0.1
#: Version of the bank's definition; a model records it and refuses a different one.
BANK_VERSION = 1


#: The nearest other animal's own features copied into each animal's row (``partner__<name>``).
PARTNER_FEATURES = (
    "centroid_speed_bl_s__w1s_mean", "centroid_speed_bl_s__w3s_mean", "head_speed_bl_s__w1s_mean",
    "kp_speed_max_bl_s__w1s_max", "axis_turn_rate_rad_s__w1s_mean", "hull_area_bl2__w1s_mean",
    "long_pair1_dist_bl__w1s_mean", "kp_speed_mean_bl_s__w0.2s_std",
)


def _partner_block(feats: dict[str, np.ndarray], centroid: np.ndarray) -> dict[str, np.ndarray]:
    """``partner__<name>``: feature ``name`` of each animal's nearest other animal, frame by frame."""
    _, _, nn, alone = _nearest_other(centroid)
    out = {}
    for name in PARTNER_FEATURES:
        if name in feats:
            value = np.take_along_axis(feats[name], nn, axis=1)
            out[f"partner__{name}"] = np.where(alone, np.nan, value)
    return out


def _centered_mean(x: np.ndarray, n: int) -> np.ndarray:
    """NaN-aware centered rolling mean over ``n`` frames along axis 0 (any trailing shape)."""
    if n <= 1:
        return x
    t = x.shape[0]
    frame = pd.DataFrame(x.reshape(t, -1))
    return frame.rolling(n, center=True, min_periods=1).mean().to_numpy().reshape(x.shape)


def _egocentric(kp: np.ndarray, centroid: np.ndarray, head: int, bl: np.ndarray) -> np.ndarray:
    """Keypoints in each animal's body frame: origin at the centroid, x toward the head keypoint,
    in body lengths. ``kp (T, I, B, 2) -> (T, I, B, 2)``; NaN where the axis is undefined."""
    unit = _unit_axis(kp[:, :, head], centroid)  # (T, I, 2)
    x, y = _in_body_frame(kp - centroid[:, :, None, :], unit[:, :, None, :])
    return np.stack([x, y], -1) / bl[None, :, None, None]


def _landmark_features(kp: np.ndarray, centroid: np.ndarray, head: int, bl: np.ndarray,
                       landmarks: dict[str, np.ndarray], max_gap: int) -> dict[str, np.ndarray]:
    """Where each landmark (DLC unique bodypart: arena corner, feeder, object) is for each animal.

    Per landmark ``name``: distance from the centroid and from the head keypoint, and the landmark
    in the animal's body frame (x toward the head), all in body lengths. A landmark is mostly
    still: gaps longer than ``max_gap`` frames take its median position. ``kp (T, I, B, 2)``.
    """
    out: dict[str, np.ndarray] = {}
    heads = kp[:, :, head]  # (T, I, 2)
    unit = _unit_axis(heads, centroid)
    for name, track in landmarks.items():
        xy = interpolate_gaps(np.asarray(track, np.float64)[:, None, None, :], max_gap)[:, 0, 0]  # (T, 2)
        if np.isnan(xy).all():
            continue
        xy = np.where(np.isnan(xy), np.nanmedian(xy, axis=0), xy)
        rel = xy[:, None, :] - centroid  # (T, I, 2)
        out[f"landmark_dist_bl__{name}"] = np.hypot(rel[..., 0], rel[..., 1]) / bl
        to_head = xy[:, None, :] - heads
        out[f"landmark_head_dist_bl__{name}"] = np.hypot(to_head[..., 0], to_head[..., 1]) / bl
        x, y = _in_body_frame(rel, unit)
        out[f"landmark_ego_x_bl__{name}"], out[f"landmark_ego_y_bl__{name}"] = x / bl, y / bl
    return out


def feature_bank(
    record: PoseRecord,
    *,
    fps: float | None = None,
    windows_s: Sequence[float] = BANK_WINDOWS_S,
    smooth_s: float = BANK_SMOOTH_S,
    max_gap_s: float = 0.5,
    partner: bool = False,
    relational: bool = True,
) -> tuple[np.ndarray, list[str]]:
    """Per-frame, per-animal keypoint features for the decision layer.

    Groups (names are stable; a model stores the names it was trained on and gets NaN for any it
    cannot compute on another skeleton):

    * body: centroid, head and per-keypoint speeds of smoothed positions (body lengths/s),
      centroid acceleration, turning rate of the body axis, all pairwise keypoint distances, bend
      angles between the three longest keypoint pairs, convex-hull area, egocentric keypoint
      coordinates (centroid origin, x toward the head keypoint), tracking quality (mean/min
      likelihood, fraction of missing keypoints);
    * partner (two or more animals), toward the nearest other animal: centroid and nearest
      keypoint distance, relative speed, approach rate, own and partner facing angle, partner
      speed;
    * relational (two or more animals, ``relational=True``): where the nearest other animal is and
      how it lies in each animal's own body frame (:func:`_relational_features`);
    * landmarks (``record.landmarks``: DLC unique bodyparts): distance and body-frame position of
      each (:func:`_landmark_features`);
    * windows: centered mean, std, min, max and change (mean of the next half window minus the
      previous) of the speed, distance, axis and partner features over each of ``windows_s``;
    * partner's own movement (``partner=True``, two or more animals): a few of the nearest other
      animal's window features (:data:`PARTNER_FEATURES`), so that a social behavior, often
      labeled for the pair, is seen from both sides.

    Parameters
    ----------
    record : PoseRecord
        Keypoints ``(T, I, B, 2)``, NaN where missing.
    fps : float, optional
        Overrides ``record.fps``; windows are in seconds, so the frame rate must be known.
    windows_s : sequence of float
        Window spans in seconds.
    smooth_s : float
        Positions are averaged over this span before any derivative.
    max_gap_s : float
        Interior gaps up to this long are linearly interpolated first.
    relational : bool
        Add the partner's position and posture in each animal's body frame
        (:func:`_relational_features`).
    partner : bool
        Add the partner's movement block (off: on the real-label sets it changed the cross-validated F1
        by less than 0.01, see docs/model.md).

    Returns
    -------
    features : np.ndarray
        float32 ``(T, I, F)``; NaN where a feature is undefined (an animal not tracked, a partner
        absent). Tree models read NaN as "missing" directly.
    names : list of str
    """
    fps = _resolve_fps(record, fps)
    raw = np.asarray(record.keypoints, dtype=np.float64)
    t, n_ind, b, _ = raw.shape
    parts = list(record.bodyparts)
    head = head_index(parts)
    kp = interpolate_gaps(raw, int(round(max_gap_s * fps)))
    bl = body_lengths(kp)
    feats: dict[str, np.ndarray] = {}
    rolled: list[str] = []

    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices of absent animals
        smooth = _centered_mean(kp, _odd_window(smooth_s, fps))  # (T, I, B, 2)
        centroid = np.nanmean(smooth, axis=2)  # (T, I, 2)
        vel = _ddt(centroid, fps)
        speed = np.hypot(vel[..., 0], vel[..., 1])
        feats["centroid_speed_bl_s"] = speed / bl
        feats["centroid_accel_bl_s2"] = _ddt(speed, fps) / bl
        kp_vel = _ddt(smooth, fps)
        kp_speed = np.hypot(kp_vel[..., 0], kp_vel[..., 1]) / bl[None, :, None]  # (T, I, B)
        feats["head_speed_bl_s"] = kp_speed[:, :, head]
        feats["kp_speed_mean_bl_s"] = np.nanmean(kp_speed, axis=2)
        feats["kp_speed_max_bl_s"] = np.nanmax(kp_speed, axis=2)
        rolled += ["centroid_speed_bl_s", "head_speed_bl_s", "kp_speed_mean_bl_s", "kp_speed_max_bl_s"]
        for k, name in enumerate(parts):
            feats[f"kp_speed_bl_s__{name}"] = kp_speed[:, :, k]
            rolled.append(f"kp_speed_bl_s__{name}")

        axis = smooth[:, :, head] - centroid
        feats["axis_turn_rate_rad_s"] = _angle_rate(np.arctan2(axis[..., 1], axis[..., 0]), fps)
        rolled.append("axis_turn_rate_rad_s")

        iu, ju = np.triu_indices(b, 1)
        vec = kp[:, :, ju] - kp[:, :, iu]  # (T, I, P, 2)
        dist = np.hypot(vec[..., 0], vec[..., 1]) / bl[None, :, None]
        for k, (a, c) in enumerate(zip(iu, ju)):
            feats[f"dist_bl__{parts[a]}__{parts[c]}"] = dist[:, :, k]
        med = np.nanmedian(dist, axis=(0, 1)) if dist.shape[2] else np.zeros(0)
        longest = np.argsort(-np.where(np.isnan(med), -np.inf, med), kind="stable")[:3]
        # The longest keypoint pairs carry the body axis. They are named by rank, not by bodypart,
        # so the columns mean the same thing in every recording and for every skeleton.
        for r, k in enumerate(longest, 1):
            feats[f"long_pair{r}_dist_bl"] = dist[:, :, k]
            rolled.append(f"long_pair{r}_dist_bl")
        for a in range(len(longest)):
            for c in range(a + 1, len(longest)):
                feats[f"long_pair{a + 1}_vs_{c + 1}_bend_rad"] = _angle_between(
                    vec[:, :, longest[a]], vec[:, :, longest[c]])

        hull = convex_hull_area(kp.reshape(t * n_ind, b, 2)).reshape(t, n_ind)
        feats["hull_area_bl2"] = hull / bl**2
        rolled.append("hull_area_bl2")
        ego = _egocentric(kp, np.nanmean(kp, axis=2), head, bl)
        for k, name in enumerate(parts):
            if k != head:  # the head lies on the x axis by construction
                feats[f"ego_x_bl__{name}"] = ego[:, :, k, 0]
                feats[f"ego_y_bl__{name}"] = ego[:, :, k, 1]

        conf = np.asarray(record.confidence, dtype=np.float64)
        feats["likelihood_mean"] = np.nanmean(conf, axis=2)
        feats["likelihood_min"] = np.nanmin(conf, axis=2)
        feats["frac_missing_kp"] = np.isnan(raw).any(-1).mean(axis=2)

        if n_ind > 1:
            social = _social_features(smooth, centroid, vel, speed, bl, head, fps)
            feats.update(social)
            rolled += list(social)
            if relational:
                relation = _relational_features(smooth, centroid, head, bl)
                feats.update(relation)
                rolled += list(relation)

        if record.landmarks:
            near = _landmark_features(smooth, centroid, head, bl, record.landmarks,
                                      int(round(max_gap_s * fps)))
            feats.update(near)
            rolled += [name for name in near if "_dist_bl__" in name]

        base = np.stack([feats[name] for name in rolled], axis=-1)  # (T, I, R)
        base[~np.isfinite(base)] = np.nan
        frame = pd.DataFrame(base.reshape(t, -1))
        for w in windows_s:
            n = _odd_window(w, fps)
            roll = frame.rolling(n, center=True, min_periods=1)
            mean = roll.mean()
            half = max(1, n // 2)
            # Change over the window: what comes after minus what came before (JAABA's "change").
            change = mean.shift(-half) - mean.shift(half)
            for stat, out in (("mean", mean), ("std", roll.std(ddof=0)), ("min", roll.min()),
                              ("max", roll.max()), ("change", change)):
                arr = out.to_numpy().reshape(t, n_ind, len(rolled))
                for k, name in enumerate(rolled):
                    feats[f"{name}__w{w:g}s_{stat}"] = arr[:, :, k]

        if n_ind > 1 and partner:
            feats.update(_partner_block(feats, centroid))

    names = list(feats)
    x = np.empty((t, n_ind, len(names)), dtype=np.float32)
    for k, name in enumerate(names):
        x[..., k] = feats[name]
    x[~np.isfinite(x)] = np.nan
    # An animal with no keypoint in a frame (after filling short gaps) has no feature there,
    # whatever a window carried over.
    x[np.isnan(kp).all(axis=(2, 3))] = np.nan
    logger.debug("feature bank: %d features for %d frames x %d animals", len(names), t, n_ind)
    return x, names
