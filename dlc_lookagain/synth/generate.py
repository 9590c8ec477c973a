"""Putting it together: recordings, and whole DLC projects on disk.

Randomness: every video ``i`` gets four independent streams derived from
``(seed, i)``: scene, motion, tracker and rendering. Pose files and labels thus
never depend on rendering (or on whether a video is written at all), and video
``i`` does not depend on how many videos are made.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dlc_lookagain.synth import project as proj
from dlc_lookagain.synth.arena import Scene, sample_scene
from dlc_lookagain.synth.config import GeneratorConfig
from dlc_lookagain.synth.encode import VideoEncoder, choose_backend
from dlc_lookagain.synth.ethogram import BEHAVIOR_NAMES, BEHAVIORS, BODYPARTS
from dlc_lookagain.synth.motion import Trajectory, simulate_motion
from dlc_lookagain.synth.render import FrameRenderer
from dlc_lookagain.synth.tracker import PosePrediction, simulate_tracker

logger = logging.getLogger(__name__)

_SCENE, _MOTION, _TRACKER, _RENDER = range(4)
_PROJECT_DIRS = ("videos", "labeled-data", "training-datasets", "dlc-models", proj.TRUTH_DIR)


def _rng(seed: int, video_index: int, stream: int) -> np.random.Generator:
    return np.random.Generator(
        np.random.PCG64(np.random.SeedSequence(int(seed), spawn_key=(video_index, stream)))
    )


@dataclass
class Recording:
    """One simulated recording, before anything is written.

    Attributes
    ----------
    name : str
        Video file stem.
    index : int
        Video index within the project (selects the random streams).
    scene : Scene
    trajectory : Trajectory
        Ground truth: poses, true keypoints and behavior labels per animal.
    prediction : PosePrediction
        Simulated pose-estimator output, one block per track.
    individuals : list of str
        Track names of the pose files (maDLC individuals), or ``[]`` for single-animal output.
    label_individuals : list of str
        Names of the animals in the label files (animal ``a`` = track ``a`` until a swap).
    multi_animal : bool
    seed : int
    """

    name: str
    index: int
    scene: Scene
    trajectory: Trajectory
    prediction: PosePrediction
    individuals: list[str]
    label_individuals: list[str]
    multi_animal: bool
    seed: int

    @property
    def n_frames(self) -> int:
        return self.trajectory.n_frames

    @property
    def fps(self) -> float:
        return self.scene.fps

    def renderer(self) -> FrameRenderer:
        """A renderer for this recording's frames (deterministic, any order)."""
        return FrameRenderer(self.scene, self.trajectory, _rng(self.seed, self.index, _RENDER))


def simulate_recording(
    cfg: GeneratorConfig,
    index: int = 0,
    n_animals: int | None = None,
    multi_animal: bool | None = None,
    n_tracks: int | None = None,
) -> Recording:
    """Simulate scene, animals and tracker output of one video (no files, no pixels).

    Parameters
    ----------
    cfg : GeneratorConfig
    index : int
        Video index; selects the random streams and the name ``<prefix>_<index:03d>``.
    n_animals : int, optional
        Defaults to ``cfg.animals_per_video()[index]`` (cycled).
    multi_animal : bool, optional
        maDLC-style output; defaults to ``cfg.multi_animal``.
    n_tracks : int, optional
        Track blocks in the pose output; defaults to the project's individual count.

    Returns
    -------
    Recording
    """
    if n_animals is None:
        n_animals = cfg.animals[index % len(cfg.animals)]
    if multi_animal is None:
        multi_animal = cfg.multi_animal or n_animals > 1
    if n_tracks is None:
        n_tracks = max(max(cfg.animals_per_video()), n_animals) if multi_animal else 1
    scene = sample_scene(cfg.scene, n_animals, _rng(cfg.seed, index, _SCENE))
    traj = simulate_motion(scene, cfg.n_frames(), _rng(cfg.seed, index, _MOTION), cfg.ethogram or BEHAVIORS)
    pred = simulate_tracker(traj, scene, cfg.tracker, _rng(cfg.seed, index, _TRACKER), multi_animal, n_tracks)
    if multi_animal:
        individuals = [f"individual{j + 1}" for j in range(n_tracks)]
        label_names = individuals[:n_animals]
    else:
        individuals, label_names = [], [proj.SINGLE_ANIMAL_NAME]
    return Recording(
        f"{cfg.name_prefix}_{index:03d}",
        index,
        scene,
        traj,
        pred,
        individuals,
        label_names,
        multi_animal,
        cfg.seed,
    )


def write_video(recording: Recording, path: Path, backend: str = "auto") -> str:
    """Render and encode a recording's video, streaming frame by frame.

    Returns
    -------
    str
        The encoder backend used.
    """
    scene = recording.scene
    with VideoEncoder(path, scene.width, scene.height, scene.fps, scene.crf, backend) as enc:
        for frame in recording.renderer():
            enc.write(frame)
    return enc.backend


@dataclass
class VideoOutput:
    """Files written for one video."""

    name: str
    n_animals: int
    n_frames: int
    files: dict[str, Path] = field(default_factory=dict)
    seconds_video: float = 0.0
    seconds_total: float = 0.0
    encoder: str | None = None
    behavior_frames: dict[str, int] = field(default_factory=dict)


@dataclass
class ProjectOutput:
    """What :func:`generate_project` wrote."""

    project_dir: Path
    config_path: Path
    multi_animal: bool
    videos: list[VideoOutput]

    def total_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.project_dir.rglob("*") if p.is_file())


def _prepare_dir(project_dir: Path, overwrite: bool) -> None:
    if project_dir.exists() and any(project_dir.iterdir()):
        ours = (project_dir / "config.yaml").is_file() and (project_dir / proj.TRUTH_DIR).is_dir()
        if not overwrite:
            raise FileExistsError(
                f"{project_dir}: folder is not empty (pass overwrite=True / --overwrite "
                "to replace a synthetic project)"
            )
        if not ours:
            raise FileExistsError(
                f"{project_dir}: refusing to overwrite a folder that is not a synthetic "
                f"project (no config.yaml + {proj.TRUTH_DIR}/)"
            )
        shutil.rmtree(project_dir)
    for sub in _PROJECT_DIRS:
        (project_dir / sub).mkdir(parents=True, exist_ok=True)


def write_recording(recording: Recording, cfg: GeneratorConfig, project_dir: Path) -> VideoOutput:
    """Write one recording into a project folder: video, DLC output, labels, .slp, truth."""
    t0 = time.perf_counter()
    project_dir = Path(project_dir)
    videos_dir = project_dir / "videos"
    scene, pred, traj = recording.scene, recording.prediction, recording.trajectory
    out = VideoOutput(recording.name, scene.n_animals, recording.n_frames)
    out.behavior_frames = dict(zip(BEHAVIOR_NAMES, traj.labels.sum(axis=(0, 1)).astype(int).tolist()))
    video_path = videos_dir / f"{recording.name}.mp4"
    (project_dir / "labeled-data" / recording.name).mkdir(parents=True, exist_ok=True)
    if cfg.write_video:
        out.encoder = write_video(recording, video_path, cfg.encoder)
        out.files["video"] = video_path
        out.seconds_video = time.perf_counter() - t0

    scorer = proj.dlc_scorer(cfg.task, cfg.date, cfg.iterations, recording.multi_animal)
    df = proj.pose_dataframe(
        pred.xy, pred.likelihood, scorer, recording.individuals if recording.multi_animal else None
    )
    # A fixed, plausible analysis time: the project date at noon UTC, one video per minute.
    start = dt.datetime.combine(cfg.date, dt.time(12), dt.UTC).timestamp() + 60.0 * recording.index
    meta = proj.dlc_metadata(
        scorer,
        scene.fps,
        recording.n_frames,
        scene.width,
        scene.height,
        recording.multi_animal,
        cfg.task,
        cfg.date,
        cfg.iterations,
        cfg.experimenter,
        start,
    )
    out.files.update(proj.write_dlc_output(videos_dir, recording.name, df, meta, recording.multi_animal))
    out.files.update(proj.write_labels(videos_dir, recording.name, traj.labels, recording.label_individuals))
    if cfg.write_slp:
        slp = videos_dir / f"{recording.name}.mp4.predictions.slp"
        proj.write_slp(
            slp,
            video_path,
            pred.xy,
            pred.likelihood,
            recording.individuals if recording.multi_animal else None,
            scene.fps,
            scene.width,
            scene.height,
            cfg.tracker.sleap_score_threshold,
        )
        out.files["slp"] = slp
    extra = {
        "video": video_path.name,
        "n_frames": recording.n_frames,
        "seed": cfg.seed,
        "video_index": recording.index,
        "encoder": out.encoder,
        "identity_swaps": [list(s) for s in pred.swaps],
        "label_individuals": recording.label_individuals,
        "pose_individuals": recording.individuals,
        "behaviors": list(BEHAVIOR_NAMES),
        "bodyparts": list(BODYPARTS),
    }
    arrays = {
        "keypoints": traj.keypoints,
        "pose": traj.pose,
        "labels": traj.labels,
        "lengths": traj.lengths,
        "track_animal": pred.track_animal.astype(np.int8),
        "action": traj.action,
    }
    out.files.update(
        proj.write_truth(
            project_dir / proj.TRUTH_DIR, recording.name, recording.scene.to_dict(), arrays, extra
        )
    )
    out.seconds_total = time.perf_counter() - t0
    return out


def generate_project(cfg: GeneratorConfig, project_dir: str | Path, overwrite: bool = False) -> ProjectOutput:
    """Generate a complete synthetic DeepLabCut project.

    Parameters
    ----------
    cfg : GeneratorConfig
        What to generate (see :func:`dlc_lookagain.synth.config.preset`).
    project_dir : str or Path
        Project folder; created, must be empty unless ``overwrite`` (which only
        replaces a folder this generator made).
    overwrite : bool

    Returns
    -------
    ProjectOutput
    """
    project_dir = Path(project_dir)
    _prepare_dir(project_dir, overwrite)
    if cfg.write_video:
        logger.info("video encoder: %s", choose_backend(cfg.encoder))
    outputs = []
    for i, n_animals in enumerate(cfg.animals_per_video()):
        rec = simulate_recording(cfg, i, n_animals)
        out = write_recording(rec, cfg, project_dir)
        logger.info(
            "%s: %d animal(s), %d frames at %dx%d, %.1f s (video %.1f s)",
            out.name,
            n_animals,
            out.n_frames,
            rec.scene.width,
            rec.scene.height,
            out.seconds_total,
            out.seconds_video,
        )
        outputs.append(out)
    videos = [(project_dir / "videos" / f"{o.name}.mp4", cfg.scene.width, cfg.scene.height) for o in outputs]
    config_path = proj.write_config(
        project_dir,
        cfg.task,
        cfg.experimenter,
        cfg.date,
        videos,
        cfg.multi_animal,
        [f"individual{j + 1}" for j in range(max(cfg.animals_per_video()))],
    )
    return ProjectOutput(project_dir, config_path, cfg.multi_animal, outputs)


def write_readme(output: ProjectOutput, cfg: GeneratorConfig, command: str) -> Path:
    """Write ``README.md`` into a generated project: what is in it and how it was made.

    Parameters
    ----------
    output : ProjectOutput
        Result of :func:`generate_project`.
    cfg : GeneratorConfig
        The configuration used.
    command : str
        The command line that regenerates the project.
    """
    scorer = proj.dlc_scorer(cfg.task, cfg.date, cfg.iterations, output.multi_animal)
    kind = "multi-animal (maDLC)" if output.multi_animal else "single-animal"
    lines = [
        "# Synthetic DeepLabCut project",
        "",
        f"Made by `dlc_lookagain.synth` (seed {cfg.seed}); regenerate with",
        "",
        "```",
        command,
        "```",
        "",
        "Everything here is synthetic: rendered top-view mice with known behavior. See",
        "`docs/synthetic_data.md` in the repository for the model behind it and, for every",
        "behavior, what the keypoints show and what only the video shows.",
        "",
        f"A {kind} DeepLabCut project (`config.yaml`, task `{cfg.task}`), analyzed as if by the network",
        f"`{scorer}`.",
        "",
        "Paths in `config.yaml` and in the `.slp` files are absolute, as DLC and SLEAP write them;",
        "they point to where the project was generated (DLC users fix `project_path` after moving a",
        "project; tools should find the videos beside the pose files).",
        "",
        "| video | animals | frames | size | fps |",
        "| --- | --- | --- | --- | --- |",
    ]
    for v in output.videos:
        lines.append(
            f"| `videos/{v.name}.mp4` | {v.n_animals} | {v.n_frames} | "
            f"{cfg.scene.width}x{cfg.scene.height} | {cfg.scene.fps:g} |"
        )
    lines += [
        "",
        "Beside each video, in `videos/`:",
        "",
    ]
    if output.multi_animal:
        lines += [
            f"* `<video>{scorer}_el.h5` / `.csv`: maDLC tracks (columns",
            "  scorer/individuals/bodyparts/coords, HDF key `tracks`; missing keypoints are NaN;",
            "  identities swap now and then, like a real tracker);",
        ]
    else:
        lines += [
            f"* `<video>{scorer}.h5` / `.csv`: DLC output (columns scorer/bodyparts/coords, HDF key",
            "  `df_with_missing`);",
        ]
    lines += [
        f"* `<video>{scorer}_meta.pickle`: DLC's analysis metadata (fps, frame size, ...);",
        "* `<video>.mp4.predictions.slp`: the same predictions as SLEAP would save them;",
        "* `<video>_labels.csv`: ground-truth behavior per frame and animal (`frame`, `individual`, one",
        "  0/1 column per behavior; every frame is annotated);",
        "* `<video>_label_bouts.csv`: the same as bouts (`individual, behavior, start_frame, end_frame`,",
        "  end inclusive).",
        "",
        "Labels name the *true* animals; pose track `individualN` shows animal N except after an",
        "identity swap (`synth_truth/<video>_scene.json` lists them; `<video>_truth.npz` holds the true",
        "keypoints and the track-to-animal assignment per frame).",
        "",
        "Behavior frames (summed over animals):",
        "",
        "| behavior | " + " | ".join(v.name for v in output.videos) + " |",
        "| --- | " + " | ".join("---" for _ in output.videos) + " |",
    ]
    for b in BEHAVIOR_NAMES:
        lines.append(f"| {b} | " + " | ".join(str(v.behavior_frames.get(b, 0)) for v in output.videos) + " |")
    if output.multi_animal:
        lines += [
            "",
            "A single-animal project (3-level DLC columns, key `df_with_missing`, untracked SLEAP",
            "instances) is made with `python -m dlc_lookagain.synth project OUTDIR --animals 1`.",
        ]
    lines += [
        "",
        "`labeled-data/`, `training-datasets/` and `dlc-models/` are empty, as in a new DLC project",
        "(git does not keep empty folders, so they may be missing from a checkout).",
        "",
    ]
    path = output.project_dir / "README.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
