"""dlc_lookagain: on-demand keypoint-video fusion for behavior analysis.

An extra step after DeepLabCut or SLEAP pose estimation.
"""

from __future__ import annotations

__version__ = "0.1.0"

from dlc_lookagain.errors import PoseFormatError, VideoMismatchError

__all__ = [
    "__version__", "PoseFormatError", "VideoMismatchError", "analyze", "evaluate", "pretrain", "train",
    "export_from_labels", "load_pose", "load_project", "PoseRecord",
]


def __getattr__(name):
    # Lazy public API: `import dlc_lookagain` stays fast and light (no torch, no cv2).
    if name in ("analyze",):
        from dlc_lookagain import pipeline

        return getattr(pipeline, name)
    if name == "evaluate":
        from dlc_lookagain import evaluation

        return evaluation.evaluate
    if name == "export_from_labels":
        from dlc_lookagain import sleap_hook

        return sleap_hook.export_from_labels
    if name in ("pretrain", "train"):
        from dlc_lookagain import project_training

        return getattr(project_training, name)
    if name in ("load_pose", "load_project", "PoseRecord"):
        from dlc_lookagain import io

        return getattr(io, name)
    raise AttributeError(f"module 'dlc_lookagain' has no attribute {name!r}")
