"""Parameters of the generator and named presets for train/test splits.

A :class:`SceneConfig` holds *ranges*; every video draws its own arena, lighting,
animal size, etc. from them (see :func:`dlc_lookagain.synth.arena.sample_scene`).
Presets differ in those ranges so that a model trained on ``train`` videos can be
tested on ``test_shifted`` videos it has never seen the like of.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field

# Floor textures and whether they are light (for dark coats) or dark (for white coats).
FLOOR_TEXTURES: dict[str, str] = {"bedding": "light", "paper": "light", "plastic": "light", "dark": "dark"}
COATS: dict[str, str] = {"black": "dark", "agouti": "dark", "white": "light"}
ARENA_SHAPES: tuple[str, ...] = ("round", "square")


@dataclass(frozen=True)
class SceneConfig:
    """Ranges a video's scene is drawn from (each ``(low, high)`` is uniform).

    Attributes
    ----------
    width, height : int
        Frame size in pixels (even numbers: H.264 with 4:2:0 chroma needs them).
    fps : float
        Frame rate.
    arena_shapes : tuple of str
        ``"round"`` and/or ``"square"``.
    arena_fill : (float, float)
        Arena diameter (or side) as a fraction of the shorter frame side.
    floor_textures : tuple of str
        Names from :data:`FLOOR_TEXTURES`.
    coats : tuple of str
        Fur colors from :data:`COATS`; a video only uses coats that contrast with its floor.
    animal_length : (float, float)
        Nose-to-tail-base length as a fraction of the arena diameter.
    brightness : (float, float)
        Overall illumination gain.
    lighting_drift : (float, float)
        Relative amplitude of the slow illumination drift.
    drift_period_s : (float, float)
        Period of the drift in seconds.
    vignette : (float, float)
        Darkening at the frame corners (0 = none).
    sensor_noise : (float, float)
        Standard deviation of per-frame sensor noise in grey levels.
    blur : (float, float)
        Optical blur (Gaussian sigma in pixels).
    crf : (int, int)
        H.264 constant-rate factor range (higher = stronger compression; above ~23
        x264 smooths the sensor noise away entirely).
    """

    width: int = 480
    height: int = 360
    fps: float = 30.0
    arena_shapes: tuple[str, ...] = ARENA_SHAPES
    arena_fill: tuple[float, float] = (0.80, 0.92)
    floor_textures: tuple[str, ...] = ("bedding", "paper")
    coats: tuple[str, ...] = ("black", "agouti")
    animal_length: tuple[float, float] = (0.15, 0.18)
    brightness: tuple[float, float] = (0.92, 1.08)
    lighting_drift: tuple[float, float] = (0.03, 0.08)
    drift_period_s: tuple[float, float] = (20.0, 90.0)
    vignette: tuple[float, float] = (0.05, 0.25)
    sensor_noise: tuple[float, float] = (1.5, 3.0)
    blur: tuple[float, float] = (0.5, 0.9)
    crf: tuple[int, int] = (18, 23)

    def __post_init__(self) -> None:
        if self.width % 2 or self.height % 2 or self.width < 64 or self.height < 48:
            raise ValueError(f"frame size must be even and at least 64x48, got {self.width}x{self.height}")
        if self.fps <= 0:
            raise ValueError(f"fps must be positive, got {self.fps}")
        bad = [s for s in self.arena_shapes if s not in ARENA_SHAPES]
        if bad or not self.arena_shapes:
            raise ValueError(f"arena_shapes must be taken from {ARENA_SHAPES}, got {self.arena_shapes}")
        bad = [t for t in self.floor_textures if t not in FLOOR_TEXTURES]
        if bad or not self.floor_textures:
            raise ValueError(
                f"floor_textures must be taken from {sorted(FLOOR_TEXTURES)}, got {self.floor_textures}"
            )
        bad = [c for c in self.coats if c not in COATS]
        if bad or not self.coats:
            raise ValueError(f"coats must be taken from {sorted(COATS)}, got {self.coats}")
        for floor in self.floor_textures:
            if not any(COATS[c] != FLOOR_TEXTURES[floor] for c in self.coats):
                raise ValueError(f"no coat in {self.coats} contrasts with the {floor!r} floor")
        for name in (
            "arena_fill",
            "animal_length",
            "brightness",
            "lighting_drift",
            "drift_period_s",
            "vignette",
            "sensor_noise",
            "blur",
            "crf",
        ):
            low, high = getattr(self, name)
            if low > high:
                raise ValueError(f"{name}: low {low} > high {high}")
        if not (0.3 <= self.arena_fill[0] and self.arena_fill[1] <= 0.98):
            raise ValueError(f"arena_fill must lie in [0.3, 0.98], got {self.arena_fill}")


@dataclass(frozen=True)
class TrackerConfig:
    """How the simulated pose estimator errs.

    Attributes
    ----------
    jitter : float
        Keypoint position noise, as a fraction of the animal's body length.
    outlier_rate : float
        Chance per keypoint and frame that an outlier run (1-3 frames) starts.
    swap_probability : float
        Chance that the tracks of two animals swap when they come close.
    detection_threshold : float
        Multi-animal files: keypoints whose likelihood falls below this are
        written as NaN (DLC's assembler drops them). Single-animal DLC files
        always hold coordinates, like DLC.
    sleap_score_threshold : float
        SLEAP drops peaks below this score (``peak_threshold``); such points are NaN in the ``.slp``.
    """

    jitter: float = 0.025
    outlier_rate: float = 0.0015
    swap_probability: float = 0.2
    detection_threshold: float = 0.1
    sleap_score_threshold: float = 0.2


@dataclass(frozen=True)
class GeneratorConfig:
    """Everything one call of :func:`dlc_lookagain.synth.generate_project` needs.

    Attributes
    ----------
    scene : SceneConfig
        Per-video scene ranges.
    tracker : TrackerConfig
        Pose-estimator error model.
    seconds : float
        Length of every video.
    n_videos : int
        Number of videos.
    animals : tuple of int
        Animals per video, cycled over the videos (``(1, 2)``: 1, 2, 1, ...).
        A project with any video of more than one animal is a multi-animal (maDLC) project.
    seed : int
        Root seed; the same seed gives byte-identical pose and label files.
    task, experimenter : str
        DLC project ``Task`` and ``scorer`` (the experimenter's name in DLC).
    date : datetime.date
        Project date (fixed so that output does not depend on the day it was made).
    iterations : int
        Training iterations written into the DLC scorer name.
    name_prefix : str
        Video names are ``<name_prefix>_<index:03d>``.
    write_video, write_slp : bool
        Skip the (slow) video or the SLEAP file, e.g. for statistics-only runs.
    encoder : str
        ``"auto"`` (OpenCV H.264, else ffmpeg from imageio-ffmpeg, else mp4v),
        ``"opencv-h264"``, ``"ffmpeg-h264"`` or ``"opencv-mp4v"``.
    ethogram : tuple of BehaviorSpec, optional
        Bout weights and lengths; default :data:`~dlc_lookagain.synth.ethogram.BEHAVIORS`
        (``short_rare_vision_events()``: the ``rare_vision`` presets).
    """

    scene: SceneConfig = field(default_factory=SceneConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    seconds: float = 20.0
    n_videos: int = 2
    animals: tuple[int, ...] = (1, 2)
    seed: int = 0
    task: str = "synthmice"
    experimenter: str = "synth"
    date: dt.date = dt.date(2024, 5, 6)
    iterations: int = 200000
    name_prefix: str = "synth"
    write_video: bool = True
    write_slp: bool = True
    encoder: str = "auto"
    ethogram: tuple | None = None

    def __post_init__(self) -> None:
        if self.seconds <= 0:
            raise ValueError(f"seconds must be positive, got {self.seconds}")
        if self.n_videos < 1:
            raise ValueError(f"n_videos must be at least 1, got {self.n_videos}")
        if not self.animals or any(not 1 <= n <= 3 for n in self.animals):
            raise ValueError(f"animals per video must be 1, 2 or 3, got {self.animals}")
        if not self.task.replace("_", "").isalnum():
            raise ValueError(
                f"task must be letters, digits and underscores (DLC puts it in file names), got {self.task!r}"
            )
        if self.encoder not in ("auto", "opencv-h264", "ffmpeg-h264", "opencv-mp4v"):
            raise ValueError(f"unknown encoder {self.encoder!r}")

    @property
    def multi_animal(self) -> bool:
        """True when the project is a multi-animal (maDLC) project."""
        return max(self.animals_per_video()) > 1

    def animals_per_video(self) -> list[int]:
        """Number of animals in each video, in video order."""
        return [self.animals[i % len(self.animals)] for i in range(self.n_videos)]

    def n_frames(self) -> int:
        """Frames per video."""
        return max(1, int(round(self.seconds * self.scene.fps)))

    def replace(self, **changes) -> GeneratorConfig:
        """Copy with some fields changed; ``scene=`` and ``tracker=`` also accept dicts of changes."""
        for key in ("scene", "tracker"):
            if isinstance(changes.get(key), dict):
                changes[key] = dataclasses.replace(getattr(self, key), **changes[key])
        return dataclasses.replace(self, **changes)


def _presets() -> dict[str, GeneratorConfig]:
    train = GeneratorConfig(name_prefix="train")
    # Everything a lab changes between cohorts at once: a new room (square arena,
    # plastic or dark floor, dimmer and less stable light), bigger animals (a smaller
    # arena at the same zoom), another camera resolution and a third cage mate.
    shifted_scene = SceneConfig(
        width=640,
        height=480,
        arena_shapes=("square",),
        arena_fill=(0.70, 0.80),
        floor_textures=("plastic", "dark"),
        coats=("black", "white"),
        animal_length=(0.19, 0.23),
        brightness=(0.62, 0.80),
        lighting_drift=(0.08, 0.15),
        drift_period_s=(10.0, 40.0),
        vignette=(0.25, 0.40),
        sensor_noise=(3.0, 4.5),
        blur=(0.8, 1.2),
        crf=(22, 26),
    )
    test_shifted = GeneratorConfig(scene=shifted_scene, animals=(3,), name_prefix="shifted")
    # Same distribution as train, other videos: the in-distribution test split.
    test = train.replace(seed=10_000, name_prefix="test")
    tiny = GeneratorConfig(scene=SceneConfig(width=160, height=120), seconds=2.0, name_prefix="tiny")
    # Seed 154 was chosen because its 2 x 20 s show all eleven behaviors (one in 25 seeds or so do).
    sample = GeneratorConfig(seconds=20.0, n_videos=2, animals=(2,), seed=154, name_prefix="sample")
    # Vision-only behaviors short and rare (licks, brief grooming, single rears), as in real
    # sessions: where evenly spaced looks at a low budget miss bouts and a gate must find them.
    from dlc_lookagain.synth.ethogram import short_rare_vision_events

    rare = short_rare_vision_events()
    return {"train": train, "test": test, "test_shifted": test_shifted, "tiny": tiny, "sample": sample,
            "rare_vision_train": train.replace(ethogram=rare, seed=20_000, name_prefix="rtrain"),
            "rare_vision_test": train.replace(ethogram=rare, seed=30_000, name_prefix="rtest"),
            "rare_vision_test_shifted": test_shifted.replace(ethogram=rare, seed=40_000, name_prefix="rshifted")}


#: Named configurations. ``train``/``test`` share a distribution; ``test_shifted``
#: differs in arena, floor, lighting, animal size, resolution and animal count;
#: ``tiny`` is for tests; ``sample`` makes the committed ``sample_project``; ``rare_vision_*``: the
#: three splits again with short, rare vision-only behaviors (``short_rare_vision_events``).
PRESETS: dict[str, GeneratorConfig] = _presets()


def preset(name: str, **changes) -> GeneratorConfig:
    """A named configuration, optionally with changes.

    Parameters
    ----------
    name : str
        One of :data:`PRESETS`.
    **changes
        Passed to :meth:`GeneratorConfig.replace` (``scene={"width": 320}`` works).

    Returns
    -------
    GeneratorConfig
    """
    try:
        base = PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}") from None
    return base.replace(**changes) if changes else base
