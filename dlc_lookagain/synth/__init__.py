"""Synthetic pose-estimation projects with known behavior, for testing and benchmarking.

No public data set has video, keypoints and per-frame behavior labels together, so
this subpackage renders them: top-view mice in an arena with a food hopper, a water
spout and a nest, moving by a behavior-driven semi-Markov model, "tracked" by a
pose-estimator error model, and written as a real DeepLabCut project (plus SLEAP
predictions and label files). Vision-dependent behaviors (eat, drink, groom, rear)
are made so that the keypoints alone cannot decide them; see ``docs/synthetic_data.md``.

Typical use::

    from dlc_lookagain.synth import generate_project, preset
    generate_project(preset("train", n_videos=4, seconds=60), "out/train_project")

or ``python -m dlc_lookagain.synth project OUTDIR --videos 2 --animals 1,2 --seconds 20``.
"""

from dlc_lookagain.synth.config import PRESETS, GeneratorConfig, SceneConfig, TrackerConfig, preset
from dlc_lookagain.synth.ethogram import BEHAVIOR_NAMES, BEHAVIORS, BODYPARTS, SKELETON
from dlc_lookagain.synth.generate import (
    ProjectOutput,
    Recording,
    VideoOutput,
    generate_project,
    simulate_recording,
    write_readme,
    write_recording,
    write_video,
)

__all__ = [
    "BEHAVIORS",
    "BEHAVIOR_NAMES",
    "BODYPARTS",
    "PRESETS",
    "SKELETON",
    "GeneratorConfig",
    "ProjectOutput",
    "Recording",
    "SceneConfig",
    "TrackerConfig",
    "VideoOutput",
    "generate_project",
    "preset",
    "simulate_recording",
    "write_readme",
    "write_recording",
    "write_video",
]
