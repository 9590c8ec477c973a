"""What a looked-at frame shows around each animal: rotated body and head crops, described without a network.

This is the vision the decision layer reads (:mod:`dlc_lookagain.model.decision`, group
``"vision"``). For every looked-at frame and every animal:

* a **body crop**: a square centered on the body center, rotated so that the body axis
  (tail base -> neck) points up, side ``body_scale`` body lengths; it shows the head blob and the
  body outline (rearing: a larger, lighter head, a shorter body);
* a **head crop**: centered a little behind the nose, rotated so that neck -> nose points up,
  side ``head_scale`` body lengths, at the video's own resolution before it is shrunk; it shows
  paws over the face (grooming), paws in front of the nose (eating, drinking), the tongue at the
  spout.

Both crops are resampled to ``size x size`` pixels (so the same features come out at any camera
resolution or animal size), described by an unsigned-gradient HOG (:class:`_Hog`, the layout of
``cv2.HOGDescriptor``, which OpenCV 5 no longer ships; unsigned gradients do not care whether the
animal is darker or lighter than the floor), a 4x4 grid of a background-subtracted,
contrast-normalized "animal" map whose sign is flipped so the animal is always positive (dark mice
on light floors and white mice on dark floors then look alike), intensity statistics of that map,
and a chroma map (paws and tongue are pinker than fur).

Why not the frozen CNN of :mod:`dlc_lookagain.model.vision`: on the generated benchmark a linear
probe on these features reached a mean AP of 0.743 on eat/drink/groom/rear, the CNN's compressed
crop features 0.341 and its raw 1280 features 0.731, at a fraction of the cost per frame
(docs/benchmarks.md).

Which bodyparts place the crops is found by name (:func:`crop_parts`: nose/snout/head, neck,
body center, tail base), with fallbacks for skeletons without them (the mean of the visible
keypoints as the center, center -> head as the axis).

:func:`extract` decodes only the requested frames, in one forward pass of
:meth:`dlc_lookagain.io.video.VideoReader.read_frames`. :func:`propagate` carries the features of
the looked-at frames to every frame (nearest looked-at frame, plus the signed time to it), and
:func:`vision_columns` makes the decision layer's ``vision_*`` columns of one recording.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from dlc_lookagain.features.kinematics import HEAD_WORDS, interpolate_gaps
from dlc_lookagain.io.record import PoseRecord
from dlc_lookagain.io.prefetch import frames_ahead

logger = logging.getLogger(__name__)

__all__ = ["AppearanceConfig", "FEATURE_VERSION", "VISION_PREFIX", "carry_looks", "crop_parts", "crop_geometry", "extract",
           "feature_names", "frame_features", "propagate", "rotated_crop", "uniform_frames", "vision_columns",
           "vision_names"]

#: Bumped whenever the features change, so that cached feature files are recomputed.
FEATURE_VERSION = 3
#: Column-name prefix of the decision layer's vision features.
VISION_PREFIX = "vision_"


@dataclass(frozen=True)
class AppearanceConfig:
    """Crop geometry and descriptor settings.

    Attributes
    ----------
    size : int
        Side of the resampled crops in pixels (HOG window).
    body_scale, head_scale : float
        Crop sides in body lengths (nose to tail base, median over the recording).
    head_back : float
        The head crop's center lies this many body lengths behind the nose (grooming paws sit
        0.02-0.18 body lengths behind it, eating paws just in front).
    nose, neck, center, tail : str, optional
        Bodyparts that place the crops; None (default): found by name (:func:`crop_parts`).
    max_gap_s : float
        Keypoint gaps up to this long are interpolated before placing crops.
    max_hold_s : float
        Where the keypoints cannot place a crop (1-2 keypoints left, an animal in the nest or under
        another), the crops of the nearest frame that could are kept, moved with the keypoints
        still seen, for up to this long: the video shows what the pose lost. 0 (default): off;
        measured with 10 s on the generated benchmark, macro F1 did not rise (docs/model.md).
    """

    size: int = 32
    body_scale: float = 1.25
    head_scale: float = 0.5
    head_back: float = 0.06
    nose: str | None = None
    neck: str | None = None
    center: str | None = None
    tail: str | None = None
    max_gap_s: float = 0.5
    max_hold_s: float = 0.0


class _Hog:
    """Histogram of oriented gradients of a square crop (Dalal & Triggs layout, in NumPy).

    ``cv2.HOGDescriptor`` is gone from OpenCV 5 (the wheel this project uses) and scikit-image is
    not a dependency, so this is the same descriptor written out: unsigned gradient orientations
    (0-180 degrees, so a dark animal on a light floor and a light one on a dark floor give the
    same histogram) in 9 bins with linear interpolation between bins, cells of ``size/4`` pixels,
    blocks of 2x2 cells with a stride of one block, L2-Hys block normalization. 4 blocks x 4 cells
    x 9 bins = 144 values per crop; finer grids tripled the width of the feature vector for the
    forest without adding more than the paws' position relative to the head.
    """

    n_bins = 9

    def __init__(self, size: int) -> None:
        if size % 4:
            raise ValueError(f"crop size must be a multiple of 4, got {size}")
        self.size, self.cell = size, size // 4

    def getDescriptorSize(self) -> int:  # noqa: N802 - same name as cv2.HOGDescriptor's
        return 4 * 4 * self.n_bins

    def compute(self, img: np.ndarray) -> np.ndarray:
        g = img.astype(np.float32)
        gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=1)
        gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=1)
        mag = np.hypot(gx, gy)
        ang = np.mod(np.degrees(np.arctan2(gy, gx)), 180.0) / (180.0 / self.n_bins) - 0.5
        lo = np.floor(ang).astype(int)
        w_hi = ang - lo
        lo_bin, hi_bin = np.mod(lo, self.n_bins), np.mod(lo + 1, self.n_bins)
        c = self.cell
        cell_idx = (np.arange(self.size) // c)[:, None] * 4 + (np.arange(self.size) // c)[None, :]
        n = 16 * self.n_bins
        cells = cell_idx.ravel() * self.n_bins
        hist = (np.bincount(cells + lo_bin.ravel(), (mag * (1 - w_hi)).ravel().astype(np.float64), n)
                + np.bincount(cells + hi_bin.ravel(), (mag * w_hi).ravel().astype(np.float64), n))
        hist = hist.reshape(4, 4, self.n_bins)
        blocks = []
        for by in (0, 2):
            for bx in (0, 2):
                v = hist[by:by + 2, bx:bx + 2].ravel()
                v = v / math.sqrt(float(v @ v) + 1e-6)
                v = np.minimum(v, 0.2)  # L2-Hys: clip, renormalize
                blocks.append(v / math.sqrt(float(v @ v) + 1e-6))
        return np.concatenate(blocks).astype(np.float32)


def _hog(size: int) -> _Hog:
    return _Hog(size)


def feature_names(cfg: AppearanceConfig = AppearanceConfig()) -> list[str]:
    """Names of the columns :func:`extract` returns, in order."""
    n_hog = int(_hog(cfg.size).getDescriptorSize())
    names = []
    for crop in ("body", "head"):
        names += [f"app_{crop}_hog{k}" for k in range(n_hog)]
        names += [f"app_{crop}_{s}" for s in _STAT_NAMES]
        names += [f"app_{crop}_grid{k}" for k in range(16)]
        names += [f"app_{crop}_chroma{k}" for k in range(4)]
    names.append("app_missing")
    return names


_STAT_NAMES = ("area", "mean", "std", "front", "back", "left_right", "com_u", "com_v", "spread_u",
               "spread_v", "bright_frac", "contrast", "chroma_mean", "chroma_max")


#: Name fragments that identify the crop bodyparts (first match in this order wins).
NECK_WORDS = ("neck", "withers", "shoulder")
CENTER_WORDS = ("body_center", "bodycenter", "center", "centroid", "mid_body", "midbody", "spine", "back")
TAIL_WORDS = ("tail_base", "tailbase", "tail base", "tail-base", "base_of_tail", "tail1", "tail_1", "tail")


def _find(bodyparts: Sequence[str], words: Sequence[str], exclude: Sequence[str] = ()) -> str | None:
    for word in words:
        for name in bodyparts:
            low = name.lower()
            if word in low and not any(x in low for x in exclude):
                return name
    return None


def crop_parts(bodyparts: Sequence[str], cfg: AppearanceConfig = AppearanceConfig()) -> dict[str, str | None]:
    """The bodyparts that place the crops: ``{"nose", "neck", "center", "tail"}`` -> name or None.

    Names given in ``cfg`` win; otherwise the first bodypart whose name contains a known word
    (nose/snout/head; neck; body center/spine; tail base, never a tail tip or end). None: the
    geometry falls back (center: mean of the visible keypoints; axes: center -> nose).
    """
    parts = list(bodyparts)

    def given(name: str | None) -> str | None:
        if name is not None and name not in parts:
            raise ValueError(f"crop bodypart {name!r} is not one of {parts}")
        return name

    nose = given(cfg.nose) or _find(parts, HEAD_WORDS)
    neck = given(cfg.neck) or _find([p for p in parts if p != nose], NECK_WORDS)
    center = given(cfg.center) or _find([p for p in parts if p not in (nose, neck)], CENTER_WORDS,
                                         exclude=("tail",))
    tail = given(cfg.tail) or _find([p for p in parts if p not in (nose, neck, center)], TAIL_WORDS,
                                     exclude=("tip", "end", "mid", "2", "3"))
    return {"nose": nose, "neck": neck, "center": center, "tail": tail}


def _nanmedian(x: np.ndarray, axis: int) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an animal never seen: handled by the caller
        return np.nanmedian(x, axis=axis)


def body_length(record: PoseRecord, cfg: AppearanceConfig = AppearanceConfig()) -> np.ndarray:
    """Median nose-to-tail-base distance of each animal in video pixels, ``(I,)``.

    Without a tail base, twice the median nose-to-center distance; without a nose either, the
    largest distance between two keypoints (:func:`dlc_lookagain.features.kinematics.body_lengths`).
    Animals without a measurable length get the median of the others (or 45 px if no animal has
    one, so crops stay finite).
    """
    from dlc_lookagain.features.kinematics import body_lengths

    names = crop_parts(record.bodyparts, cfg)
    parts = list(record.bodyparts)
    kp = np.asarray(record.keypoints_in_video_pixels(), dtype=np.float64)
    if names["nose"] is not None and (names["tail"] is not None or len(parts) > 1):
        nose = kp[:, :, parts.index(names["nose"])]
        if names["tail"] is not None:
            d = np.hypot(*np.moveaxis(nose - kp[:, :, parts.index(names["tail"])], -1, 0))
        else:
            d = 2.0 * np.hypot(*np.moveaxis(nose - _center(kp, parts, names), -1, 0))
        bl = _nanmedian(d, axis=0)
    else:
        bl = body_lengths(kp)
    bad = ~np.isfinite(bl) | (bl <= 0)
    if bad.any():
        bl[bad] = np.median(bl[~bad]) if (~bad).any() else 45.0
    return bl


def _center(kp: np.ndarray, parts: list[str], names: dict) -> np.ndarray:
    if names["center"] is not None:
        return kp[:, :, parts.index(names["center"])]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(kp, axis=2)


def crop_geometry(
    record: PoseRecord, cfg: AppearanceConfig = AppearanceConfig()
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Centers, "up" directions and sides of both crops for every frame and animal.

    Keypoints are taken in the attached video's pixel grid (``record.video_scale``), so crops land
    on the animal even when the pose was estimated on a downscaled video. Gaps up to
    ``cfg.max_gap_s`` are interpolated first.

    Returns
    -------
    body_c, head_c : np.ndarray
        ``(T, I, 2)`` crop centers in pixels (NaN where the keypoints are missing).
    body_dir, head_dir : np.ndarray
        ``(T, I, 2)`` unit vectors that become "up" in the crop (tail base -> neck, neck -> nose;
        center -> nose for a skeleton without them).
    sides : np.ndarray
        ``(I, 2)`` body and head crop sides in pixels.
    """
    parts = list(record.bodyparts)
    names = crop_parts(parts, cfg)
    fps = record.fps or 30.0
    kp = np.asarray(record.keypoints_in_video_pixels(), dtype=np.float64)
    kp = interpolate_gaps(kp, int(round(cfg.max_gap_s * fps)))
    center = _center(kp, parts, names)
    nose = kp[:, :, parts.index(names["nose"])] if names["nose"] is not None else center
    neck = kp[:, :, parts.index(names["neck"])] if names["neck"] is not None else center
    tail = kp[:, :, parts.index(names["tail"])] if names["tail"] is not None else center

    def unit(v: np.ndarray) -> np.ndarray:
        n = np.hypot(v[..., 0], v[..., 1])[..., None]
        with np.errstate(all="ignore"):
            return v / np.where(n > 0, n, np.nan)

    body_dir = unit(neck - tail) if names["neck"] is not None and names["tail"] is not None else unit(nose - center)
    head_dir = unit(nose - neck) if names["neck"] is not None else unit(nose - center)
    bl = body_length(record, cfg)
    head_c = nose - head_dir * cfg.head_back * bl[None, :, None]
    sides = np.stack([cfg.body_scale * bl, cfg.head_scale * bl], axis=1)
    if cfg.max_hold_s > 0:
        center, head_c, body_dir, head_dir = _hold(kp, (center, head_c, body_dir, head_dir),
                                                   int(round(cfg.max_hold_s * fps)))
    return center, head_c, body_dir, head_dir, sides


def _hold(kp: np.ndarray, geometry: tuple[np.ndarray, ...], frames: int) -> tuple[np.ndarray, ...]:
    """Fill frames whose crops are undefined from the nearest defined frame (the last one before,
    else the first one after) at most ``frames`` away, shifted by the mean displacement of the
    keypoints seen in both frames (none seen: not moved).

    ``kp (T, I, B, 2)``; each geometry array ``(T, I, 2)``.
    """
    t = kp.shape[0]
    good = np.ones(geometry[0].shape[:2], bool)
    for g in geometry:
        good &= np.isfinite(g).all(-1)
    if good.all() or not good.any():
        return geometry
    frame = np.arange(t)[:, None]
    before = np.maximum.accumulate(np.where(good, frame, -1), axis=0)  # (T, I) last defined frame
    after = np.minimum.accumulate(np.where(good, frame, t)[::-1], axis=0)[::-1]  # next defined frame
    source = np.where((before >= 0) & (frame - before <= frames), before,
                      np.where((after < t) & (after - frame <= frames), after, -1))
    fill = ~good & (source >= 0)
    if not fill.any():
        return geometry
    ti, ii = np.nonzero(fill)
    src = source[ti, ii]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # no keypoint seen in both frames
        shift = np.nanmean(kp[ti, ii] - kp[src, ii], axis=1)  # (N, 2)
    shift = np.nan_to_num(shift, nan=0.0)
    out = []
    for k, g in enumerate(geometry):
        g = g.copy()
        g[ti, ii] = g[src, ii] + (shift if k < 2 else 0.0)  # centers move, directions are kept
        out.append(g)
    return tuple(out)


def rotated_crop(image: np.ndarray, center, up, side: float, size: int) -> np.ndarray:
    """Square crop of ``image`` around ``center`` with ``up`` pointing to the top, resampled.

    Parameters
    ----------
    image : np.ndarray
        ``(H, W)`` or ``(H, W, C)``.
    center : (x, y)
        Crop center in pixels.
    up : (dx, dy)
        Unit vector (image coordinates) that becomes the crop's "up" (-v direction).
    side : float
        Crop side in image pixels.
    size : int
        Output side in pixels.

    Returns
    -------
    np.ndarray
        ``(size, size[, C])``; outside the image is filled by replicating the border.
    """
    # Sample at (about) the image's own resolution first, then shrink with INTER_AREA: sampling
    # straight to ``size`` would alias paws that are only a few pixels wide.
    n = max(size, int(math.ceil(side)))
    s = side / n
    ux, uy = float(up[0]), float(up[1])
    # Output pixel (u, v) -> image point center + s*(u - c)*right - s*(v - c)*up, where "right"
    # is up rotated by +90 degrees in image coordinates (y down): right = (-uy, ux).
    c = (n - 1) / 2.0
    rx, ry = -uy, ux
    m = np.array([[s * rx, -s * ux, center[0] - s * c * rx + s * c * ux],
                  [s * ry, -s * uy, center[1] - s * c * ry + s * c * uy]])
    # WARP_INVERSE_MAP: every output pixel samples image(m @ (u, v, 1)).
    out = cv2.warpAffine(image, m, (n, n), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                         borderMode=cv2.BORDER_REPLICATE)
    return out if n == size else cv2.resize(out, (size, size), interpolation=cv2.INTER_AREA)


def _describe(gray: np.ndarray, chroma: np.ndarray, hog: _Hog) -> np.ndarray:
    """HOG + statistics of one ``(S, S)`` gray crop and its chroma crop."""
    size = gray.shape[0]
    g = gray.astype(np.float32)
    border = np.concatenate([g[0], g[-1], g[1:-1, 0], g[1:-1, -1]])
    bg = float(np.median(border))
    dev = g - bg
    mid = size // 4
    # Animal sign: the center of the crop is on the animal, so its mean deviation tells whether
    # the animal is darker or lighter than the floor; flipping makes features coat-independent.
    sign = -1.0 if dev[mid:-mid, mid:-mid].mean() < 0 else 1.0
    a = sign * dev
    contrast = float(np.percentile(np.abs(a), 95)) + 1.0
    a = a / contrast  # animal ~1, floor ~0, whatever the lighting
    norm = np.clip(a * 170.0 + 60.0, 0, 255).astype(np.uint8)
    h = hog.compute(norm).ravel()
    fg = np.clip(a, 0, None)
    total = float(fg.sum()) + 1e-6
    vv, uu = np.mgrid[0:size, 0:size].astype(np.float32) / (size - 1) - 0.5
    com_u, com_v = float((fg * uu).sum() / total), float((fg * vv).sum() / total)
    spread_u = math.sqrt(max(float((fg * (uu - com_u) ** 2).sum() / total), 0.0))
    spread_v = math.sqrt(max(float((fg * (vv - com_v) ** 2).sum() / total), 0.0))
    half = size // 2
    ch = chroma.astype(np.float32)
    ch = ch - float(np.median(np.concatenate([ch[0], ch[-1], ch[:, 0], ch[:, -1]])))
    stats = [
        float((a > 0.5).mean()), float(a.mean()), float(a.std()),
        float(a[:half].mean()), float(a[half:].mean()),
        float(np.abs(a[:, :half] - a[:, half:][:, ::-1]).mean()),
        com_u, com_v, spread_u, spread_v,
        # Lighter-than-animal pixels on the animal: a rearing head is lighter than the fur.
        float((a > 1.2).mean()),
        math.log(contrast),
        float(ch.mean()), float(np.percentile(ch, 98)),
    ]
    grid = cv2.resize(a, (4, 4), interpolation=cv2.INTER_AREA).ravel()
    cgrid = cv2.resize(ch, (2, 2), interpolation=cv2.INTER_AREA).ravel() / 20.0
    return np.concatenate([h, np.asarray(stats, np.float32), grid, cgrid]).astype(np.float32)


def frame_features(
    frame_rgb: np.ndarray,
    t: int,
    geometry,
    cfg: AppearanceConfig = AppearanceConfig(),
    hog: _Hog | None = None,
) -> np.ndarray:
    """Features ``(I, F)`` of every animal in one decoded RGB frame (row ``t`` of ``geometry``)."""
    hog = hog or _hog(cfg.size)
    body_c, head_c, body_dir, head_dir, sides = geometry
    gray = cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2GRAY)
    f32 = frame_rgb.astype(np.int16)
    # Pink (paws, tongue) vs grey/brown fur: red above the green-blue mean.
    chroma = np.clip(f32[..., 0] - (f32[..., 1] + f32[..., 2]) // 2 + 128, 0, 255).astype(np.uint8)
    n_ind = body_c.shape[1]
    n_feat = len(feature_names(cfg))
    out = np.full((n_ind, n_feat), np.nan, np.float32)
    for i in range(n_ind):
        parts = []
        for c, d, side in ((body_c, body_dir, sides[i, 0]), (head_c, head_dir, sides[i, 1])):
            if not (np.isfinite(c[t, i]).all() and np.isfinite(d[t, i]).all()):
                break
            g = rotated_crop(gray, c[t, i], d[t, i], side, cfg.size)
            ch = rotated_crop(chroma, c[t, i], d[t, i], side, cfg.size)
            parts.append(_describe(g, ch, hog))
        else:
            out[i, :-1] = np.concatenate(parts)
            out[i, -1] = 0.0
    return out


def extract(
    record: PoseRecord,
    frames: Sequence[int],
    cfg: AppearanceConfig = AppearanceConfig(),
    video=None,
    *,
    progress: bool = False,
    decoded: np.ndarray | None = None,
) -> np.ndarray:
    """Appearance features of the animals in the given frames, decoding only those frames.

    Parameters
    ----------
    record : PoseRecord
        Keypoints for the crop placement; ``record.video_path`` is read unless ``video`` is given.
    frames : sequence of int
        Frame indices to look at (sorted, unique).
    cfg : AppearanceConfig
    video : path, optional
        Video file to read instead of ``record.video_path``.
    progress : bool
        Progress bar over the frames.
    decoded : np.ndarray, optional
        bool ``(len(frames),)``, filled in: False where the video ended before the frame (its
        container frame count was wrong); those rows stay NaN. Without it such a video raises.

    Returns
    -------
    np.ndarray
        float32 ``(len(frames), I, F)``; an animal whose keypoints are missing in a frame gets NaN
        in every column except ``app_missing`` (NaN too), which the caller imputes.
    """
    frames = np.asarray(frames, dtype=int)
    if frames.size and (np.any(np.diff(frames) <= 0)):
        raise ValueError("frames must be sorted and unique")
    geometry = crop_geometry(record, cfg)
    hog = _hog(cfg.size)
    out = np.full((frames.size, record.keypoints.shape[1], len(feature_names(cfg))), np.nan, np.float32)
    if frames.size == 0:
        return out
    path = video if video is not None else record.video_path
    if path is None:
        raise ValueError(f"{record.source}: no video attached")
    pos = {int(f): k for k, f in enumerate(frames)}
    if decoded is not None:
        decoded[:] = False
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=frames.size, desc=f"looking ({Path(str(path)).name})", unit="frame", leave=False)
    # The decoder runs a few frames ahead in a thread while this one describes (io/prefetch.py).
    with frames_ahead(path, frames.tolist(), color="rgb", allow_short=decoded is not None) as ready:
        for idx, frame in ready:
            out[pos[idx]] = frame_features(frame, idx, geometry, cfg, hog)
            if decoded is not None:
                decoded[pos[idx]] = True
            if bar is not None:
                bar.update()
    if bar is not None:
        bar.close()
    logger.debug("%s: appearance features of %d frames", path, frames.size)
    return out


def propagate(
    selected_frames: Sequence[int], feats: np.ndarray, n_frames: int, fps: float | None = None
) -> np.ndarray:
    """Give every frame the features of its nearest looked-at frame, plus the signed distance.

    Parameters
    ----------
    selected_frames : sequence of int
        Sorted, unique looked-at frames, ``S`` of them (at least one).
    feats : np.ndarray
        ``(S, ...)`` features of those frames.
    n_frames : int
        Frames of the recording, ``T``.
    fps : float, optional
        When given, the distance is in seconds (comparable across frame rates), else in frames.

    Returns
    -------
    np.ndarray
        ``(T, ..., F + 1)`` float32: the nearest selected frame's features (ties go to the earlier
        one) and, last, ``t - nearest`` (negative: the looked-at frame lies in the future).
    """
    sel = np.asarray(selected_frames, dtype=int)
    feats = np.asarray(feats, dtype=np.float32)
    if sel.size == 0:
        raise ValueError("propagate needs at least one selected frame")
    if feats.shape[0] != sel.size:
        raise ValueError(f"{sel.size} selected frames but features for {feats.shape[0]}")
    if np.any(np.diff(sel) <= 0) or sel[0] < 0 or sel[-1] >= n_frames:
        raise ValueError("selected frames must be sorted, unique and inside [0, n_frames)")
    t = np.arange(n_frames)
    right = np.clip(np.searchsorted(sel, t, side="left"), 0, sel.size - 1)
    left = np.clip(right - 1, 0, sel.size - 1)
    # Strictly closer on the right wins; ties go left (the past frame).
    use_right = np.abs(sel[right] - t) < np.abs(t - sel[left])
    nearest = np.where(use_right, right, left)
    dist = (t - sel[nearest]).astype(np.float32)
    if fps:
        dist = dist / np.float32(fps)
    out = feats[nearest]
    dist = np.broadcast_to(dist.reshape((-1,) + (1,) * (feats.ndim - 1)), out.shape[:-1] + (1,))
    return np.concatenate([out, dist], axis=-1)


def uniform_frames(n_frames: int, fraction: float) -> np.ndarray:
    """Every ``round(1/fraction)``-th frame, starting half a step in (deterministic phase).

    Starting at half a step, not at 0, keeps the largest distance to a looked-at frame at half
    a step at both ends of the recording.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    step = max(1, int(round(1.0 / fraction)))
    return np.arange(step // 2, n_frames, step)


def vision_names(cfg: AppearanceConfig = AppearanceConfig()) -> list[str]:
    """Names of the decision layer's vision columns (:func:`vision_columns`), in order."""
    return [VISION_PREFIX + n.removeprefix("app_") for n in feature_names(cfg)] + [f"{VISION_PREFIX}gap_s"]


def vision_columns(
    record: PoseRecord,
    frames: Sequence[int],
    fps: float,
    cfg: AppearanceConfig = AppearanceConfig(),
    *,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """The decision layer's vision features of one recording, looking at ``frames`` only.

    Every frame gets the appearance features of its nearest looked-at frame and the signed time
    to it in seconds (negative: the look lies ahead), so that the trees can tell a look at this
    very frame from one a second away. ``vision_missing`` is 1 where that look found no keypoints
    of the animal to place the crops on; where nothing was looked at (no frame, no video) every
    column is NaN, which the trees treat as missing.

    Parameters
    ----------
    record : PoseRecord
        With ``video_path``.
    frames : sequence of int
        Sorted, unique frames to look at.
    fps : float

    Returns
    -------
    columns : np.ndarray
        float32 ``(T, I, len(vision_names()))``.
    looked : np.ndarray
        int64 frames whose pixels were used (those the video could give).
    """
    t, n_ind = record.keypoints.shape[:2]
    names = vision_names(cfg)
    frames = np.unique(np.asarray(frames, dtype=np.int64))
    frames = frames[(frames >= 0) & (frames < t)]
    out = np.full((t, n_ind, len(names)), np.nan, np.float32)
    if frames.size == 0 or record.video_path is None:
        return out, np.zeros(0, np.int64)
    decoded = np.zeros(frames.size, bool)
    feats = extract(record, frames, cfg, progress=progress, decoded=decoded)
    if not decoded.all():
        logger.warning("%s: %d of the %d frames to look at could not be decoded (the video ends early); "
                       "the others are used", Path(str(record.video_path)).name, int((~decoded).sum()),
                       frames.size)
    frames, feats = frames[decoded], feats[decoded]
    if frames.size == 0:
        return out, frames
    return carry_looks(frames, feats, t, fps), frames


def carry_looks(frames: np.ndarray, feats: np.ndarray, n_frames: int, fps: float) -> np.ndarray:
    """:func:`propagate` of looked-at frames' :func:`extract` rows, with the ``missing`` column (the
    last appearance column) set to 1 where the looked-at frame had no keypoints to crop on: the
    ``vision_*`` columns, ``(T, I, len(vision_names()))``."""
    carried = propagate(frames, feats, n_frames, fps=fps)
    carried[..., -2] = np.isnan(carried[..., :-2]).any(-1).astype(np.float32)
    return carried
