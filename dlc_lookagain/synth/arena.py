"""The scene of one video: arena, objects, floor, colors, lighting and camera noise.

:func:`sample_scene` draws a :class:`Scene` from a :class:`~dlc_lookagain.synth.config.SceneConfig`;
:func:`render_background` paints the static part of every frame once (floor texture,
walls, food hopper), so that per-frame rendering only draws the animals.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass

import cv2
import numpy as np
from scipy.ndimage import gaussian_filter1d

from dlc_lookagain.synth.config import COATS, FLOOR_TEXTURES, SceneConfig

logger = logging.getLogger(__name__)

# BGR base colors.
_FLOOR_COLORS = {
    "bedding": (140, 182, 208),
    "paper": (208, 212, 214),
    "plastic": (188, 190, 186),
    "dark": (52, 50, 48),
}
_COAT_COLORS = {  # fur, ears, tail, paws
    "black": ((40, 38, 36), (88, 86, 112), (98, 106, 136), (140, 150, 200)),
    "agouti": ((58, 82, 108), (92, 110, 150), (110, 124, 160), (150, 160, 210)),
    "white": ((214, 218, 222), (170, 178, 232), (168, 178, 226), (160, 170, 235)),
}
_SHELTER_COLOR = (46, 32, 78)  # red-tinted plastic, dark on camera
_SHELTER_ALPHA = 0.74


@dataclass
class Arena:
    """Arena floor outline. Coordinates are pixels, y pointing down.

    Attributes
    ----------
    shape : str
        ``"round"`` or ``"square"``.
    cx, cy : float
        Center.
    radius : float
        Radius (round) or half side (square).
    angle : float
        Rotation of a square arena in radians.
    wall : float
        Width of the inner wall band seen from above (pixels).
    """

    shape: str
    cx: float
    cy: float
    radius: float
    angle: float
    wall: float

    def _local(self, x, y):
        dx, dy = np.asarray(x, dtype=np.float64) - self.cx, np.asarray(y, dtype=np.float64) - self.cy
        c, s = math.cos(self.angle), math.sin(self.angle)
        return c * dx + s * dy, -s * dx + c * dy

    def signed_distance(self, x, y) -> np.ndarray:
        """Distance to the floor edge in pixels: negative inside, positive outside."""
        u, v = self._local(x, y)
        if self.shape == "round":
            return np.hypot(u, v) - self.radius
        return np.maximum(np.abs(u), np.abs(v)) - self.radius

    def anchor(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """A point on the floor edge and the inward unit normal there.

        Parameters
        ----------
        t : float
            Position around the perimeter in [0, 1). On a square it stays off the
            corners (objects are not put into corners).
        """
        if self.shape == "round":
            a = 2 * math.pi * t
            u, v, nu, nv = self.radius * math.cos(a), self.radius * math.sin(a), -math.cos(a), -math.sin(a)
        else:
            side, frac = divmod(4.0 * t, 1.0)
            along = (2.0 * frac - 1.0) * 0.6 * self.radius
            nu, nv = [(-1.0, 0.0), (0.0, -1.0), (1.0, 0.0), (0.0, 1.0)][int(side) % 4]
            u, v = -nu * self.radius - nv * along, -nv * self.radius + nu * along
        c, s = math.cos(self.angle), math.sin(self.angle)
        point = np.array([self.cx + c * u - s * v, self.cy + s * u + c * v])
        normal = np.array([c * nu - s * nv, s * nu + c * nv])
        return point, normal


@dataclass
class Station:
    """A place an animal visits with its nose (food hopper or water spout).

    Attributes
    ----------
    anchor : np.ndarray
        Point on the floor edge where it is mounted.
    normal : np.ndarray
        Inward unit normal of the wall there.
    target : np.ndarray
        Where the nose goes.
    polygon : np.ndarray
        Outline drawn on the frame, ``(n, 2)``.
    """

    anchor: np.ndarray
    normal: np.ndarray
    target: np.ndarray
    polygon: np.ndarray

    @property
    def facing(self) -> float:
        """Heading (radians) of an animal facing the station."""
        return math.atan2(-self.normal[1], -self.normal[0])


@dataclass
class Nest:
    """A dark shelter against the wall: a rectangle ``half_width`` x ``depth``.

    Attributes
    ----------
    anchor, normal : np.ndarray
        Middle of the wall side of the shelter and the inward wall normal.
    half_width : float
        Half its extent along the wall.
    depth : float
        Its extent into the arena.
    """

    anchor: np.ndarray
    normal: np.ndarray
    half_width: float
    depth: float

    @property
    def tangent(self) -> np.ndarray:
        return np.array([-self.normal[1], self.normal[0]])

    @property
    def center(self) -> np.ndarray:
        return self.anchor + self.normal * self.depth / 2.0

    @property
    def polygon(self) -> np.ndarray:
        t, n, a = self.tangent, self.normal, self.anchor
        w, d = self.half_width, self.depth
        return np.array([a - t * w, a + t * w, a + t * w + n * d, a - t * w + n * d])

    def local(self, x, y):
        """Coordinates along the wall (u, centered) and into the arena (v)."""
        dx, dy = (
            np.asarray(x, dtype=np.float64) - self.anchor[0],
            np.asarray(y, dtype=np.float64) - self.anchor[1],
        )
        return dx * self.tangent[0] + dy * self.tangent[1], dx * self.normal[0] + dy * self.normal[1]

    def contains(self, x, y, margin: float = 0.0) -> np.ndarray:
        """True for points under the shelter (shrunk by ``margin`` pixels)."""
        u, v = self.local(x, y)
        return (np.abs(u) <= self.half_width - margin) & (v >= margin) & (v <= self.depth - margin)


@dataclass
class Scene:
    """Everything static about one video.

    Attributes
    ----------
    width, height : int
        Frame size.
    fps : float
        Frame rate.
    arena : Arena
        Floor outline.
    hopper, spout : Station
        Food hopper and water spout.
    nest : Nest
        Shelter.
    floor : str
        Floor texture name.
    coat : str
        Fur color of all animals of the video (same strain, as in most labs).
    lengths : np.ndarray
        ``(n_animals,)`` body lengths in pixels (nose to tail base).
    contrast : int
        -1 if the animals are darker than the floor, +1 if lighter.
    brightness, drift_amplitude, drift_period, drift_phase : float
        Illumination gain and its slow drift.
    vignette, light_gradient, light_angle : float
        Static uneven illumination.
    noise_sigma, blur_sigma : float
        Sensor noise (grey levels) and optical blur (pixels).
    crf : int
        H.264 constant-rate factor.
    """

    width: int
    height: int
    fps: float
    arena: Arena
    hopper: Station
    spout: Station
    nest: Nest
    floor: str
    coat: str
    lengths: np.ndarray
    contrast: int
    brightness: float
    drift_amplitude: float
    drift_period: float
    drift_phase: float
    vignette: float
    light_gradient: float
    light_angle: float
    noise_sigma: float
    blur_sigma: float
    crf: int

    @property
    def n_animals(self) -> int:
        return len(self.lengths)

    @property
    def mean_length(self) -> float:
        return float(np.mean(self.lengths))

    def to_dict(self) -> dict:
        """JSON-ready description (for ``synth_truth/<video>_scene.json``)."""

        def clean(value):
            if isinstance(value, np.ndarray):
                return np.round(value, 3).tolist()
            if isinstance(value, dict):
                return {k: clean(v) for k, v in value.items()}
            if isinstance(value, float):
                return round(value, 4)
            return value

        out = clean(asdict(self))
        out["hopper"]["facing"] = round(self.hopper.facing, 4)
        out["spout"]["facing"] = round(self.spout.facing, 4)
        out["nest"]["polygon"] = clean(self.nest.polygon)
        return out


def _uniform(rng: np.random.Generator, bounds) -> float:
    low, high = bounds
    return float(low) if low == high else float(rng.uniform(low, high))


def sample_scene(cfg: SceneConfig, n_animals: int, rng: np.random.Generator) -> Scene:
    """Draw one video's scene.

    Parameters
    ----------
    cfg : SceneConfig
        Ranges to draw from.
    n_animals : int
        Animals in the video.
    rng : numpy.random.Generator
        Source of randomness (only this one is used).

    Returns
    -------
    Scene
    """
    w, h = cfg.width, cfg.height
    shape = str(rng.choice(list(cfg.arena_shapes)))
    short = min(w, h)
    radius = _uniform(rng, cfg.arena_fill) * short / 2.0
    wall = 0.035 * short
    slack_x, slack_y = max(0.0, w / 2 - radius - wall), max(0.0, h / 2 - radius - wall)
    cx = w / 2 + rng.uniform(-0.5, 0.5) * slack_x
    cy = h / 2 + rng.uniform(-0.5, 0.5) * slack_y
    angle = float(rng.uniform(-0.12, 0.12)) if shape == "square" else 0.0
    arena = Arena(shape, float(cx), float(cy), float(radius), angle, float(wall))

    base_length = _uniform(rng, cfg.animal_length) * 2 * radius
    lengths = base_length * np.clip(rng.normal(1.0, 0.04, n_animals), 0.9, 1.1)
    mean_len = float(np.mean(lengths))

    # Hopper, spout and nest on the wall, well apart.
    for _ in range(200):
        ts = rng.uniform(0.0, 1.0, 3)
        anchors = [arena.anchor(float(t)) for t in ts]
        pts = [a[0] for a in anchors]
        gaps = [np.linalg.norm(pts[i] - pts[j]) for i, j in ((0, 1), (0, 2), (1, 2))]
        if min(gaps) > 0.95 * radius:
            break
    (hp, hn), (sp, sn), (np_, nn) = anchors
    ht = np.array([-hn[1], hn[0]])
    hw, hd = 0.5 * mean_len, 0.36 * mean_len
    hopper_poly = np.array(
        [
            hp - ht * hw - hn * 0.1 * hd,
            hp + ht * hw - hn * 0.1 * hd,
            hp + ht * hw + hn * hd,
            hp - ht * hw + hn * hd,
        ]
    )
    hopper = Station(hp, hn, hp + hn * (hd + 0.03 * mean_len), hopper_poly)
    spout_base, spout_tip = sp - sn * 0.25 * mean_len, sp + sn * 0.30 * mean_len
    spout = Station(sp, sn, spout_tip + sn * 0.04 * mean_len, np.array([spout_base, spout_tip]))
    nest = Nest(np_, nn, 1.05 * mean_len, 1.45 * mean_len)

    floor = str(rng.choice(list(cfg.floor_textures)))
    coats = [c for c in cfg.coats if COATS[c] != FLOOR_TEXTURES[floor]]
    coat = str(rng.choice(coats))
    return Scene(
        width=w,
        height=h,
        fps=float(cfg.fps),
        arena=arena,
        hopper=hopper,
        spout=spout,
        nest=nest,
        floor=floor,
        coat=coat,
        lengths=lengths,
        contrast=-1 if COATS[coat] == "dark" else 1,
        brightness=_uniform(rng, cfg.brightness),
        drift_amplitude=_uniform(rng, cfg.lighting_drift),
        drift_period=_uniform(rng, cfg.drift_period_s),
        drift_phase=float(rng.uniform(0, 2 * math.pi)),
        vignette=_uniform(rng, cfg.vignette),
        light_gradient=float(rng.uniform(0.0, 0.12)),
        light_angle=float(rng.uniform(0, 2 * math.pi)),
        noise_sigma=_uniform(rng, cfg.sensor_noise),
        blur_sigma=_uniform(rng, cfg.blur),
        crf=int(rng.integers(cfg.crf[0], cfg.crf[1] + 1)),
    )


# ----------------------------------------------------------------------------------------------------------
# Static image
# ----------------------------------------------------------------------------------------------------------


def _smooth_noise(h: int, w: int, cell: float, rng: np.random.Generator) -> np.ndarray:
    """Zero-mean, unit-ish noise with features about ``cell`` pixels wide."""
    gh, gw = int(h / cell) + 3, int(w / cell) + 3
    coarse = rng.standard_normal((gh, gw)).astype(np.float32)
    big = cv2.resize(coarse, (int(gw * cell), int(gh * cell)), interpolation=cv2.INTER_CUBIC)
    return big[:h, :w]


def floor_texture(name: str, h: int, w: int, scale: float, rng: np.random.Generator) -> np.ndarray:
    """A floor texture, float32 ``(h, w, 3)`` BGR in grey levels.

    Parameters
    ----------
    name : str
        ``"bedding"``, ``"paper"``, ``"plastic"`` or ``"dark"``.
    h, w : int
        Size.
    scale : float
        Pixels per body length, so that chips and fibres keep a physical size.
    rng : numpy.random.Generator
    """
    base = np.array(_FLOOR_COLORS[name], dtype=np.float32) + rng.normal(0, 6, 3).astype(np.float32)
    img = np.empty((h, w, 3), np.float32)
    img[:] = base
    lum = np.zeros((h, w), np.float32)
    if name == "bedding":
        lum += 10 * _smooth_noise(h, w, max(4.0, scale * 0.8), rng)
        chips = np.zeros((h, w), np.float32)
        n = int(h * w / max(8.0, (scale * 0.12) ** 2) * 0.6)
        xs, ys = rng.uniform(0, w, n), rng.uniform(0, h, n)
        ax = rng.uniform(0.05, 0.16, n) * scale
        ratio = rng.uniform(0.3, 0.8, n)
        ang = rng.uniform(0, 180, n)
        shade = rng.normal(0, 22, n)
        for i in range(n):
            cv2.ellipse(
                chips,
                (int(xs[i]), int(ys[i])),
                (max(1, int(ax[i])), max(1, int(ax[i] * ratio[i]))),
                float(ang[i]),
                0,
                360,
                float(shade[i]),
                -1,
            )
        lum += cv2.GaussianBlur(chips, (0, 0), 0.6)
    elif name == "paper":
        lum += 4 * _smooth_noise(h, w, max(8.0, scale * 1.5), rng)
        fibres = rng.standard_normal((h, w)).astype(np.float32)
        lum += 5 * cv2.GaussianBlur(fibres, (0, 0), 0.8)
    elif name == "plastic":
        lum += 3 * _smooth_noise(h, w, max(16.0, scale * 3), rng)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        hx, hy = rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.8) * h
        lum += 22 * np.exp(-((xx - hx) ** 2 + (yy - hy) ** 2) / (2 * (0.12 * max(h, w)) ** 2))
    else:  # dark acrylic / rubber mat
        lum += 4 * _smooth_noise(h, w, max(6.0, scale), rng)
        lum += 2 * rng.standard_normal((h, w)).astype(np.float32)
    img += lum[..., None]
    return img


def render_background(scene: Scene, rng: np.random.Generator) -> np.ndarray:
    """Paint the static frame: floor, wall band, surroundings and food hopper.

    Parameters
    ----------
    scene : Scene
    rng : numpy.random.Generator

    Returns
    -------
    np.ndarray
        uint8 ``(height, width, 3)`` BGR image.
    """
    h, w = scene.height, scene.width
    a = scene.arena
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    d = a.signed_distance(xx, yy).astype(np.float32)
    floor = floor_texture(scene.floor, h, w, scene.mean_length, rng)
    # Soft contact shadow where floor meets wall.
    floor *= (1.0 - 0.22 * np.exp(np.minimum(d, 0) / max(2.0, 0.15 * scene.mean_length)))[..., None]

    light_floor = FLOOR_TEXTURES[scene.floor] == "light"
    inner, outer = (205.0, 150.0) if light_floor else (70.0, 40.0)
    t = np.clip(d / a.wall, 0, 1)[..., None]
    wall = (inner * (1 - t) + outer * t) + 3 * _smooth_noise(h, w, 12, rng)[..., None]
    surround = np.full((h, w, 3), 95.0 if light_floor else 30.0, np.float32)
    surround += 4 * _smooth_noise(h, w, 20, rng)[..., None]

    # Anti-aliased blend at the two edges (1-pixel ramps).
    in_floor = np.clip(0.5 - d, 0, 1)[..., None]
    in_wall = np.clip(0.5 - (d - a.wall), 0, 1)[..., None]
    img = floor * in_floor + (wall * in_wall + surround * (1 - in_wall)) * (1 - in_floor)

    _draw_hopper(img, scene, rng)
    img += rng.normal(0, 0.8, img.shape).astype(np.float32)  # fixed-pattern noise
    return np.clip(img, 0, 255).astype(np.uint8)


def _draw_hopper(img: np.ndarray, scene: Scene, rng: np.random.Generator) -> None:
    """Wire-mesh food hopper with pellets, on the float image in place."""
    poly = scene.hopper.polygon
    s = 16  # cv2 sub-pixel shift: 4 bits
    pts = np.round(poly * s).astype(np.int32)
    metal = (150.0, 150.0, 145.0)
    cv2.fillPoly(img, [pts], metal, cv2.LINE_AA, 4)
    # Pellets visible through the grid.
    lo, hi = poly.min(axis=0), poly.max(axis=0)
    n = 14
    c0 = poly.mean(axis=0)
    for _ in range(n):
        p = c0 + (rng.uniform(-0.35, 0.35, 2) * (hi - lo))
        r = max(1.0, 0.045 * scene.mean_length)
        shade = rng.uniform(-15, 15)
        cv2.ellipse(
            img,
            (int(p[0] * s), int(p[1] * s)),
            (int(r * 1.4 * s), int(r * s)),
            float(rng.uniform(0, 180)),
            0,
            360,
            (60 + shade, 95 + shade, 130 + shade),
            -1,
            cv2.LINE_AA,
            4,
        )
    # Grid wires.
    n_wires = 6
    for k in range(1, n_wires):
        f = k / n_wires
        p0, p1 = poly[0] + (poly[1] - poly[0]) * f, poly[3] + (poly[2] - poly[3]) * f
        cv2.line(
            img,
            tuple(np.round(p0 * s).astype(int)),
            tuple(np.round(p1 * s).astype(int)),
            (185, 185, 180),
            1,
            cv2.LINE_AA,
            4,
        )
    cv2.polylines(img, [pts], True, (105, 105, 100), 1, cv2.LINE_AA, 4)


# ----------------------------------------------------------------------------------------------------------
# Per-frame effects, precomputed
# ----------------------------------------------------------------------------------------------------------


class Lighting:
    """Uneven, slowly drifting illumination.

    ``gain_map`` is static (vignette and a linear gradient); ``gain(t)`` multiplies it by the
    global brightness, a sinusoidal drift and a little smooth random drift.
    """

    def __init__(self, scene: Scene, n_frames: int, rng: np.random.Generator):
        h, w = scene.height, scene.width
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        cx, cy = w / 2.0, h / 2.0
        rmax = math.hypot(cx, cy)
        r2 = ((xx - cx) ** 2 + (yy - cy) ** 2) / rmax**2
        grad = ((xx - cx) * math.cos(scene.light_angle) + (yy - cy) * math.sin(scene.light_angle)) / rmax
        gmap = 1.0 - scene.vignette * r2 + scene.light_gradient * grad
        self.gain_map = np.repeat(gmap[..., None], 3, axis=2).astype(np.float32)
        t = np.arange(n_frames) / scene.fps
        wander = np.cumsum(rng.normal(0, 1, n_frames))
        # Remove the random walk's trend and scale it, so the drift stays bounded for any length.
        wander = gaussian_filter1d(wander, max(1.0, 2.0 * scene.fps), mode="nearest")
        wander = wander - wander.mean()
        wander /= max(1e-9, float(np.abs(wander).max()))
        self.gains = scene.brightness * (
            1.0
            + scene.drift_amplitude * np.sin(2 * math.pi * t / scene.drift_period + scene.drift_phase)
            + 0.3 * scene.drift_amplitude * wander
        )

    def gain(self, t: int) -> float:
        return float(self.gains[t])


class SensorNoise:
    """Temporal sensor noise drawn as random crops of two precomputed noise planes.

    Drawing 500 k Gaussian samples per frame would cost more than everything else;
    shifting crops of a larger plane gives fresh-looking noise at memory-copy cost.
    """

    PAD = 32

    def __init__(self, scene: Scene, rng: np.random.Generator):
        shape = (scene.height + self.PAD, scene.width + self.PAD, 3)
        self.planes = [rng.normal(0.0, scene.noise_sigma, shape).astype(np.float32) for _ in range(2)]
        self.h, self.w = scene.height, scene.width

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        k, dy, dx = rng.integers(0, 2), rng.integers(0, self.PAD), rng.integers(0, self.PAD)
        return self.planes[k][dy : dy + self.h, dx : dx + self.w]


class ShelterOverlay:
    """The nest shelter, blended over the animals: ``roi * keep + add`` on its bounding box."""

    def __init__(self, scene: Scene):
        poly = scene.nest.polygon
        h, w = scene.height, scene.width
        x0, y0 = np.floor(poly.min(axis=0)).astype(int) - 2
        x1, y1 = np.ceil(poly.max(axis=0)).astype(int) + 3
        self.x0, self.y0 = max(0, int(x0)), max(0, int(y0))
        self.x1, self.y1 = min(w, int(x1)), min(h, int(y1))
        mh, mw = self.y1 - self.y0, self.x1 - self.x0
        alpha = np.zeros((mh, mw), np.float32)
        pts = np.round((poly - [self.x0, self.y0]) * 16).astype(np.int32)
        cv2.fillPoly(alpha, [pts], _SHELTER_ALPHA, cv2.LINE_AA, 4)
        rim = np.zeros_like(alpha)
        cv2.polylines(rim, [pts], True, 1.0, max(1, int(round(0.04 * scene.mean_length))), cv2.LINE_AA, 4)
        alpha = np.maximum(alpha, 0.92 * rim)
        # Only the part over the floor and wall band: the shelter sits inside the arena.
        yy, xx = np.mgrid[self.y0 : self.y1, self.x0 : self.x1].astype(np.float32)
        alpha *= (scene.arena.signed_distance(xx, yy) < scene.arena.wall * 0.5).astype(np.float32)
        color = np.array(_SHELTER_COLOR, np.float32) * (
            1.0 if FLOOR_TEXTURES[scene.floor] == "light" else 0.8
        )
        self.keep = (1.0 - alpha)[..., None]
        self.add = alpha[..., None] * color

    def apply(self, img: np.ndarray) -> None:
        """Blend the shelter into ``img`` (uint8) in place."""
        roi = img[self.y0 : self.y1, self.x0 : self.x1]
        roi[:] = (roi * self.keep + self.add).astype(np.uint8)


def coat_colors(coat: str) -> tuple[tuple[int, int, int], ...]:
    """(fur, ears, tail, paws) BGR colors of a coat."""
    return _COAT_COLORS[coat]
