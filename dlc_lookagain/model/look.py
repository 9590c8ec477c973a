"""Looking: from chosen frame indices to frozen vision features attached to a sequence.

The geometry of each animal crop (centre, heading, body length) comes from the pose tokens, in
pose pixels, and is scaled into the video's pixel grid (pose estimated on a resized copy of the
video has ``record.video_scale`` != 1). Frames are decoded in one sequential pass and encoded in
batches by :class:`~dlc_lookagain.model.visual_features.FrameFeatureExtractor`; with a
:class:`~dlc_lookagain.model.feature_cache.FeatureCache`, frames already encoded are never encoded again.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from dlc_lookagain.io.record import PoseRecord
from dlc_lookagain.model.pose_tokens import PoseTokens
from dlc_lookagain.model.feature_cache import FeatureCache
from dlc_lookagain.model.visual_features import FrameFeatureExtractor, VisualFeatures
from dlc_lookagain.model.windows import Sequence, SparseFrames

logger = logging.getLogger(__name__)

__all__ = ["crop_geometry", "look", "attach_visual"]


def crop_geometry(record: PoseRecord, pose: PoseTokens) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centres (T, I, 2) and body sizes (I,) in video pixels, headings (T, I) in radians."""
    scale = float(record.video_scale or 1.0)
    return pose.center * scale, pose.heading, pose.body_size * scale


def look(record: PoseRecord, pose: PoseTokens, frames: np.ndarray, extractor: FrameFeatureExtractor,
         cache: FeatureCache | None = None, *, progress: bool = True) -> VisualFeatures:
    """Vision features of ``frames`` of the record's video (decoded once, in order)."""
    if record.video_path is None:
        raise ValueError(f"{record.source}: no video attached; cannot look at frames")
    centers, headings, sizes = crop_geometry(record, pose)
    frames = np.unique(np.asarray(frames, np.int64))
    if cache is not None:
        return cache.get_or_compute(extractor, Path(record.video_path), frames, centers, headings, sizes,
                                    progress=progress)
    return extractor.extract(Path(record.video_path), frames, centers, headings, sizes, progress=progress)


def attach_visual(seq: Sequence, feats: VisualFeatures, *, sparse: bool = False) -> Sequence:
    """Store looked-at features on ``seq`` (float16; zeros where not looked).

    ``sparse=True`` keeps only the looked-at rows (:class:`~dlc_lookagain.model.windows.SparseFrames`),
    as inference does; training reads the features of every frame and keeps dense arrays.
    """
    t, i = seq.n_frames, seq.n_individuals
    d = feats.feature_dim
    new = SparseFrames if sparse else (lambda n, row, dtype: np.zeros((n, *row), dtype))
    if seq.crop is None or seq.crop.shape != (t, i, d):
        seq.crop = new(t, (i, d), np.float16)
    if feats.context is not None and (seq.context is None or seq.context.shape != (t, d)):
        seq.context = new(t, (d,), np.float16)
    rows = feats.frames < t
    f = feats.frames[rows]
    seq.crop[f] = np.where(np.asarray(feats.valid[rows])[..., None], feats.animal[rows], 0)
    if feats.context is not None:
        seq.context[f] = feats.context[rows]
    seen = np.zeros(t, bool)
    seen[f] = np.asarray(feats.seen[rows], bool)
    seq.visual_available = seq.visual_available | seen
    return seq
