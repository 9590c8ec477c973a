"""Top-view body geometry of a mouse, shared by the keypoints and the drawing.

An animal's pose is eight numbers (:data:`POSE_FIELDS`): body-center position,
heading, spine bend, head yaw, length scale (foreshortening when rearing) and
two tail angles. The spine is a circular arc through the body center; the head is
a straight segment from the neck, turned by the head yaw. Keypoints and the drawn
outline come from the same functions, so the tracked points sit on the drawn body.
All functions broadcast over leading axes (frames, animals).
"""

from __future__ import annotations

import numpy as np

POSE_FIELDS: tuple[str, ...] = ("x", "y", "theta", "bend", "head_yaw", "lscale", "tail_angle", "tail_curl")
X, Y, THETA, BEND, HEAD_YAW, LSCALE, TAIL_ANGLE, TAIL_CURL = range(len(POSE_FIELDS))

# Positions along the nose (0) -> tail base (1) axis, as fractions of the body length.
F_NECK = 0.27
F_CENTER = 0.58
F_EAR = 0.17
EAR_LATERAL = 0.12  # ears stick out a little past the head outline (x body length)
BODY_WIDTH = 0.40  # widest body width (x body length)
TAIL_LENGTH = 0.85  # (x body length)

# Outline half-width profile along the same axis (x BODY_WIDTH / 2): pointed snout,
# narrow neck, widest just behind the body center, tapering to the tail base.
_PROFILE_F = np.array([0.0, 0.03, 0.08, 0.15, 0.22, 0.30, 0.40, 0.52, 0.64, 0.76, 0.87, 0.95, 1.0])
_PROFILE_W = np.array([0.06, 0.30, 0.46, 0.56, 0.55, 0.62, 0.82, 0.97, 1.0, 0.92, 0.72, 0.48, 0.30])


def _sinc(x: np.ndarray) -> np.ndarray:
    """sin(x)/x with the removable singularity filled (numpy's sinc is sin(pi x)/(pi x))."""
    return np.sinc(np.asarray(x) / np.pi)


def _unit(angle: np.ndarray) -> np.ndarray:
    return np.stack([np.cos(angle), np.sin(angle)], axis=-1)


def spine_points(pose: np.ndarray, length: np.ndarray, fractions: np.ndarray) -> np.ndarray:
    """Points on the nose-to-tail-base axis.

    Parameters
    ----------
    pose : np.ndarray
        ``(..., 8)`` poses (see :data:`POSE_FIELDS`).
    length : np.ndarray
        Body length (nose to tail base, unforeshortened) in pixels, broadcastable to ``pose[..., 0]``.
    fractions : np.ndarray
        ``(F,)`` positions in [0, 1]; 0 is the nose, 1 the tail base.

    Returns
    -------
    np.ndarray
        ``(..., F, 2)`` pixel coordinates.
    """
    pose = np.asarray(pose, dtype=np.float64)
    f = np.asarray(fractions, dtype=np.float64)
    length = np.asarray(length, dtype=np.float64)[..., None]
    theta = pose[..., THETA, None]
    s_len = length * pose[..., LSCALE, None]  # foreshortened length
    curv = pose[..., BEND, None] / length  # constant curvature of the trunk arc
    center = pose[..., None, X : Y + 1]

    # Trunk: arc through the center, heading theta at the center.
    a = (F_CENTER - np.maximum(f, F_NECK)) * s_len  # signed arc length from the center (+ forward)
    chord = a * _sinc(curv * a / 2.0)
    trunk = center + chord[..., None] * _unit(theta + curv * a / 2.0)

    # Head: straight from the neck, turned by the head yaw.
    a_neck = (F_CENTER - F_NECK) * s_len
    neck = center + (a_neck * _sinc(curv * a_neck / 2.0))[..., None] * _unit(theta + curv * a_neck / 2.0)
    head_dir = theta + curv * a_neck + pose[..., HEAD_YAW, None]
    head = neck + ((F_NECK - f) * s_len)[..., None] * _unit(head_dir)
    return np.where((f < F_NECK)[:, None], head, trunk)


def head_direction(pose: np.ndarray, length: np.ndarray) -> np.ndarray:
    """Angle (radians) the head points to, neck to nose."""
    pose = np.asarray(pose, dtype=np.float64)
    a_neck = (F_CENTER - F_NECK) * np.asarray(length) * pose[..., LSCALE]
    return pose[..., THETA] + pose[..., BEND] / np.asarray(length) * a_neck + pose[..., HEAD_YAW]


def tail_points(pose: np.ndarray, length: np.ndarray, n: int = 9) -> np.ndarray:
    """Points along the tail, tail base first and tail tip last: ``(..., n, 2)``."""
    pose = np.asarray(pose, dtype=np.float64)
    length = np.asarray(length, dtype=np.float64)
    base = spine_points(pose, length, np.array([1.0]))[..., 0, :]
    b = (1.0 - F_CENTER) * length * pose[..., LSCALE]
    # Tangent at the tail base points forward along the trunk; the tail leaves backwards.
    start_dir = pose[..., THETA] - pose[..., BEND] / length * b + np.pi + pose[..., TAIL_ANGLE]
    # The tail is long and lies on the floor; rearing shortens it only half as much as the body.
    tail_len = TAIL_LENGTH * length * (0.5 + 0.5 * pose[..., LSCALE])
    s = np.linspace(0.0, 1.0, n) * tail_len[..., None]
    k = (pose[..., TAIL_CURL] / tail_len)[..., None]
    chord = s * _sinc(k * s / 2.0)
    return base[..., None, :] + chord[..., None] * _unit(start_dir[..., None] + k * s / 2.0)


def keypoints(pose: np.ndarray, length: np.ndarray) -> np.ndarray:
    """True keypoints in :data:`~dlc_lookagain.synth.ethogram.BODYPARTS` order.

    Parameters
    ----------
    pose : np.ndarray
        ``(..., 8)`` poses.
    length : np.ndarray
        Body lengths, broadcastable to ``pose[..., 0]``.

    Returns
    -------
    np.ndarray
        ``(..., 7, 2)`` float64: nose, left_ear, right_ear, neck, body_center, tail_base, tail_tip.
    """
    pose = np.asarray(pose, dtype=np.float64)
    length = np.broadcast_to(np.asarray(length, dtype=np.float64), pose.shape[:-1])
    axis = spine_points(pose, length, np.array([0.0, F_EAR, F_NECK, F_CENTER, 1.0]))
    nose, ear_mid, neck, center, tail_base = (axis[..., i, :] for i in range(5))
    hd = head_direction(pose, length)
    # Image y points down, so the animal's left is the heading rotated by -90 degrees on screen.
    left = np.stack([np.sin(hd), -np.cos(hd)], axis=-1)
    ear_off = (EAR_LATERAL * length)[..., None] * left
    tip = tail_points(pose, length, n=2)[..., -1, :]
    return np.stack([nose, ear_mid + ear_off, ear_mid - ear_off, neck, center, tail_base, tip], axis=-2)


def outline(pose: np.ndarray, length: float, width_scale: float = 1.0, n: int = 24) -> np.ndarray:
    """Closed body outline (snout to tail base and back) of one animal: ``(2n, 2)``.

    Parameters
    ----------
    pose : np.ndarray
        ``(8,)`` pose of one animal in one frame.
    length : float
        Body length in pixels.
    width_scale : float
        Multiplies the width profile (breathing, chewing, coat fluff).
    n : int
        Points per side.
    """
    f = np.linspace(0.0, 1.0, n)
    axis = spine_points(pose, length, f)
    tangent = np.gradient(axis, axis=0)
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True) + 1e-9
    left = np.stack([tangent[:, 1], -tangent[:, 0]], axis=1)
    half = np.interp(f, _PROFILE_F, _PROFILE_W) * (BODY_WIDTH / 2.0) * length * width_scale
    return np.concatenate([axis + left * half[:, None], (axis - left * half[:, None])[::-1]])


def body_half_width(length: np.ndarray) -> np.ndarray:
    """Widest half-width of the body in pixels (for occlusion tests)."""
    return np.asarray(length) * BODY_WIDTH / 2.0
