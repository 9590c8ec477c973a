"""Where the vision encoder looks: an egocentric crop per animal and a context view of the frame.

Laboratory videos are wide and the animals small: a mouse may cover 60 x 20 pixels of a
1280 x 1024 frame, and shrinking the whole frame to the encoder's input would leave it a
few pixels. Each looked-at frame is therefore seen twice:

1. **One egocentric crop per animal** (:func:`animal_crops`): a square of side
   ``crop_scale x body length`` centred on the animal, cut with a single affine warp,
   rotated so that the animal faces *up* and scaled to the encoder's input. Size and
   orientation are normalised away. A crop shrunk more than twofold is sampled from a
   Gaussian pyramid level so that fine texture (bedding, fur) does not alias.
2. **One low-resolution context view** (:func:`context_view`): the whole frame,
   letterboxed to the same square (arena, other animals, objects outside the crops).

Pixels outside the frame and the letterbox bars are gray :data:`PAD_GRAY`, which the
default normalisation maps to (almost) zero.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

__all__ = ["PAD_GRAY", "GEOMETRY_VERSION", "animal_crops", "context_view"]

#: Fill value for pixels outside the frame and for letterbox bars (zero after (x - 127) / 128).
PAD_GRAY = 127
#: Bumped whenever crop or context geometry changes, so that cached features are recomputed.
GEOMETRY_VERSION = 1
# Coarsest pyramid level used to anti-alias strongly shrunk crops (1/32 of the frame).
_MAX_PYRAMID_LEVEL = 5


def _crop_affines(
    centers: np.ndarray, headings: np.ndarray, body_sizes: np.ndarray, size: int, scale: float
) -> tuple[np.ndarray, np.ndarray]:
    """Affine maps frame -> crop, ``(I, 2, 3)``, and the crop side in frame pixels, ``(I,)``.

    A frame point ``p`` goes to ``s R (p - c) + o`` with ``s = size / side``,
    ``o`` the crop centre and ``R`` the rotation by ``-pi/2 - heading``, which
    turns the heading direction ``(cos h, sin h)`` (y down) into "up", ``(0, -1)``.
    """
    side = scale * body_sizes  # (I,)
    s = size / side  # (I,)
    alpha = np.where(np.isfinite(headings), -np.pi / 2 - headings, 0.0)  # (I,)
    cos, sin = np.cos(alpha) * s, np.sin(alpha) * s  # (I,)
    o = (size - 1) / 2.0  # pixel centres at integers: the crop centre
    m = np.empty((len(s), 2, 3), np.float64)
    m[:, 0, 0], m[:, 0, 1] = cos, -sin
    m[:, 1, 0], m[:, 1, 1] = sin, cos
    m[:, 0, 2] = o - (cos * centers[:, 0] - sin * centers[:, 1])
    m[:, 1, 2] = o - (sin * centers[:, 0] + cos * centers[:, 1])
    return m, side


def animal_crops(
    frame: np.ndarray,
    centers: np.ndarray,
    headings: np.ndarray,
    body_sizes: np.ndarray,
    *,
    size: int = 128,
    scale: float = 2.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Cut one egocentric, size-normalised square crop per animal.

    Parameters
    ----------
    frame : np.ndarray
        ``uint8`` ``(H, W, 3)`` image.
    centers : np.ndarray
        ``(I, 2)`` animal centres ``(x, y)`` in frame pixels; NaN for a missing animal.
    headings : np.ndarray
        ``(I,)`` direction the animal faces, radians, in image coordinates (x right,
        y down: 0 faces right, pi/2 faces down). NaN: no rotation.
    body_sizes : np.ndarray
        ``(I,)`` animal length in frame pixels.
    size : int
        Output side in pixels.
    scale : float
        Crop side in units of body length.

    Returns
    -------
    crops : np.ndarray
        ``uint8`` ``(I, size, size, 3)``: square of side ``scale * body_size`` centred
        on the animal, rotated so the heading points up. Outside the frame: gray
        :data:`PAD_GRAY`. Zeros for invalid animals.
    valid : np.ndarray
        ``bool`` ``(I,)``: False where the centre is not finite, the body size not
        positive, or the crop lies wholly outside the frame.
    """
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"frame must be uint8 (H, W, 3), got {frame.dtype} {frame.shape}")
    centers = np.asarray(centers, np.float64).reshape(-1, 2)  # (I, 2)
    n = len(centers)
    headings = np.broadcast_to(np.asarray(headings, np.float64), (n,))  # (I,)
    body_sizes = np.broadcast_to(np.asarray(body_sizes, np.float64), (n,))  # (I,)
    size = int(size)
    crops = np.zeros((n, size, size, 3), np.uint8)  # (I, size, size, 3)
    h, w = frame.shape[:2]

    with np.errstate(invalid="ignore", divide="ignore"):
        valid = np.isfinite(centers).all(axis=1) & np.isfinite(body_sizes) & (body_sizes > 0)
        # A crop whose circumscribed circle misses the frame rectangle shows nothing of it.
        reach = scale * body_sizes * (math.sqrt(2) / 2)
        dx = np.maximum(np.maximum(-centers[:, 0], centers[:, 0] - (w - 1)), 0)
        dy = np.maximum(np.maximum(-centers[:, 1], centers[:, 1] - (h - 1)), 0)
        valid &= np.hypot(dx, dy) <= reach
    if not valid.any():
        return crops, valid

    idx = np.flatnonzero(valid)
    mats, side = _crop_affines(centers[idx], headings[idx], body_sizes[idx], size, scale)
    pyramid = [frame]  # pyramid[L]: frame shrunk 2**L times (pyrDown: level pixel j ~ frame pixel 2**L j)
    for k, i in enumerate(idx):
        # Sample from the level at which the crop is shrunk at most twofold (anti-aliasing).
        shrink = side[k] / size
        level = int(min(_MAX_PYRAMID_LEVEL, max(0, math.floor(math.log2(shrink))))) if shrink >= 2 else 0
        while len(pyramid) <= level and min(pyramid[-1].shape[:2]) >= 2:
            pyramid.append(cv2.pyrDown(pyramid[-1]))
        level = min(level, len(pyramid) - 1)
        m = mats[k].copy()
        m[:, :2] *= 2**level  # frame point p = 2**L q for level point q
        crops[i] = cv2.warpAffine(
            pyramid[level],
            m,
            (size, size),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=(PAD_GRAY, PAD_GRAY, PAD_GRAY),
        )
    return crops, valid


def context_view(frame: np.ndarray, *, size: int = 128) -> np.ndarray:
    """Shrink the whole frame into a square, keeping its aspect ratio.

    Parameters
    ----------
    frame : np.ndarray
        ``uint8`` ``(H, W, 3)``.
    size : int
        Output side in pixels.

    Returns
    -------
    np.ndarray
        ``uint8`` ``(size, size, 3)``: the frame resized with ``INTER_AREA`` so its
        longer side is ``size``, centred, with gray :data:`PAD_GRAY` bars.
    """
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"frame must be uint8 (H, W, 3), got {frame.dtype} {frame.shape}")
    h, w = frame.shape[:2]
    f = size / max(h, w)
    nw, nh = max(1, round(w * f)), max(1, round(h * f))
    interp = cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR
    small = cv2.resize(frame, (nw, nh), interpolation=interp)  # (nh, nw, 3)
    out = np.full((size, size, 3), PAD_GRAY, np.uint8)
    y0, x0 = (size - nh) // 2, (size - nw) // 2
    out[y0 : y0 + nh, x0 : x0 + nw] = small
    return out
