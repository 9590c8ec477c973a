"""Reading pose projects and their videos; writing behavior annotations back.

Data model: :class:`~dlc_lookagain.io.record.PoseRecord` (one per recording).
Formats: one module each (``dlc``, ``sleap``, ``video``, ``annotations``, ``labels``);
``main`` dispatches.
"""

from dlc_lookagain.io.annotations import BehaviorPrediction, read_behaviors, read_bouts, write_annotations
from dlc_lookagain.io.labels import BehaviorLabels, read_labels
from dlc_lookagain.io.main import POSE_FORMATS, detect_pose_format, load_pose, load_project
from dlc_lookagain.io.project import DLCProject, find_analyzed_videos, read_dlc_config
from dlc_lookagain.io.record import PoseRecord
from dlc_lookagain.io.video import VideoReader, attach_video, probe_video

__all__ = [
    "BehaviorLabels",
    "BehaviorPrediction",
    "VideoReader",
    "attach_video",
    "probe_video",
    "read_behaviors",
    "read_bouts",
    "read_labels",
    "write_annotations",
    "POSE_FORMATS",
    "DLCProject",
    "PoseRecord",
    "detect_pose_format",
    "find_analyzed_videos",
    "load_pose",
    "load_project",
    "read_dlc_config",
]
