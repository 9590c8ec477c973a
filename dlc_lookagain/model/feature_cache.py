"""Visual features kept on disk, so that no frame is decoded or encoded twice.

One entry per video, encoder, crop geometry and keypoints (:class:`FeatureCache`); blocks
are written atomically, so an interrupted run keeps every block it finished.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dlc_lookagain.model.crops import GEOMETRY_VERSION
from dlc_lookagain.model.visual_features import (FrameFeatureExtractor, VisualFeatures, _as_frame_indices,
                                                 _check_geometry)

logger = logging.getLogger(__name__)

__all__ = ["FeatureCache"]


_ARRAYS = ("frames", "animal", "context", "valid", "seen")


def _hash_arrays(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a, np.float64)
        a = np.where(np.isnan(a), np.nan, a)  # one NaN bit pattern
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


class FeatureCache:
    """Visual features kept on disk, per video, encoder, crop geometry and keypoints.

    Each cache entry is a directory ``<root>/<key hash>/`` holding ``key.json`` (the
    key in plain text) and one sub-directory per computed block of frames
    (``block-*/`` with ``frames.npy``, ``animal.npy``, ``context.npy``, ``valid.npy``,
    ``seen.npy``). A block is written into a temporary directory and renamed into
    place, so readers never see half a block; an interrupted run keeps every block
    it finished. Blocks are merged into one after each computation.

    The key holds the video identity (resolved path, size, mtime in ns), the
    encoder's fingerprint and input size, crop size and scale, the context flag,
    a hash of the centres/headings/body sizes, and a geometry version. Anything
    that would change a crop therefore gives a new entry.

    Parameters
    ----------
    root : Path
        Cache folder (created on demand).
    chunk_frames : int
        Frames per block written while computing.
    """

    def __init__(self, root: str | Path, *, chunk_frames: int = 256):
        self.root = Path(root)
        self.chunk_frames = max(1, int(chunk_frames))

    def key(
        self,
        extractor: FrameFeatureExtractor,
        video_path: str | Path,
        centers: np.ndarray,
        headings: np.ndarray,
        body_sizes: np.ndarray,
    ) -> dict[str, Any]:
        """The cache key (JSON-serialisable) for a video and an extractor."""
        video = Path(video_path).resolve()
        stat = video.stat()
        centers, headings, body_sizes = _check_geometry(centers, headings, body_sizes)
        return {
            "video": str(video),
            "video_size": stat.st_size,
            "video_mtime_ns": stat.st_mtime_ns,
            "encoder": extractor.encoder.name,
            "encoder_fingerprint": extractor.encoder.fingerprint,
            "input_size": extractor.encoder.input_size,
            "crop_size": extractor.crop_size,
            "crop_scale": extractor.crop_scale,
            "context": extractor.context,
            "geometry_sha256": _hash_arrays(centers, headings, np.ascontiguousarray(body_sizes)),
            "geometry_version": GEOMETRY_VERSION,
        }

    def entry_dir(self, key: dict[str, Any]) -> Path:
        """The directory of a cache entry."""
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]
        return self.root / digest

    # -- reading -------------------------------------------------------------------------------
    @staticmethod
    def _read_block(block: Path, encoder: str) -> VisualFeatures:
        arrays = {}
        for name in _ARRAYS:
            file = block / f"{name}.npy"
            arrays[name] = np.load(file, mmap_mode="r") if file.exists() else None
        if arrays["frames"] is None or arrays["animal"] is None:
            raise FileNotFoundError(f"incomplete cache block {block}")
        return VisualFeatures(
            frames=np.asarray(arrays["frames"]),
            animal=arrays["animal"],
            context=arrays["context"],
            valid=np.asarray(arrays["valid"]),
            encoder=encoder,
            seen=np.asarray(arrays["seen"]),
        )

    def _read(self, entry: Path, encoder: str) -> list[VisualFeatures]:
        for attempt in range(3):  # another process may be merging blocks meanwhile
            try:
                blocks = sorted(p for p in entry.glob("block-*") if p.is_dir())
                return [self._read_block(b, encoder) for b in blocks]
            except (FileNotFoundError, ValueError, OSError) as exc:
                logger.debug("cache %s changed while reading (%s); retrying", entry, exc)
        logger.warning("cache %s could not be read consistently; recomputing", entry)
        return []

    # -- writing -------------------------------------------------------------------------------
    @staticmethod
    def _write_block(entry: Path, feats: VisualFeatures) -> Path:
        tmp = entry / f".tmp-{uuid.uuid4().hex}"
        tmp.mkdir(parents=True)
        try:
            for name in _ARRAYS:
                value = getattr(feats, name)
                if value is not None:
                    np.save(tmp / f"{name}.npy", np.ascontiguousarray(value))
            final = entry / f"block-{int(feats.frames[0]):09d}-{uuid.uuid4().hex[:8]}"
            os.replace(tmp, final)  # atomic: the block appears complete or not at all
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return final

    @staticmethod
    def _write_key(entry: Path, key: dict[str, Any]) -> None:
        file = entry / "key.json"
        if file.exists():
            return
        tmp = entry / f".key-{uuid.uuid4().hex}.json"
        tmp.write_text(json.dumps(key, indent=1, sort_keys=True))
        os.replace(tmp, file)

    def _compact(self, entry: Path, encoder: str) -> None:
        # Leftovers of runs killed while writing (an hour is far longer than any block write).
        for tmp in entry.glob(".tmp-*"):
            try:
                if time.time() - tmp.stat().st_mtime > 3600:
                    shutil.rmtree(tmp, ignore_errors=True)
            except OSError:
                pass
        blocks = sorted(p for p in entry.glob("block-*") if p.is_dir())
        if len(blocks) <= 1:
            return
        parts = [self._read_block(b, encoder) for b in blocks]
        merged = VisualFeatures.concatenate(parts)
        del parts
        self._write_block(entry, merged)
        for b in blocks:
            shutil.rmtree(b, ignore_errors=True)

    # -- public ---------------------------------------------------------------------------------
    def get_or_compute(
        self,
        extractor: FrameFeatureExtractor,
        video_path: str | Path,
        frames: Sequence[int] | np.ndarray,
        centers: np.ndarray,
        headings: np.ndarray,
        body_sizes: np.ndarray,
        *,
        progress: bool = True,
    ) -> VisualFeatures:
        """Features of exactly the requested frames, computing only those not cached.

        Parameters are those of :meth:`FrameFeatureExtractor.extract`.

        Returns
        -------
        VisualFeatures
            Rows for the requested frames (sorted, de-duplicated).
        """
        wanted = _as_frame_indices(frames)
        key = self.key(extractor, video_path, centers, headings, body_sizes)
        entry = self.entry_dir(key)
        name = extractor.encoder.name
        cached = self._read(entry, name) if entry.is_dir() else []
        have = np.unique(np.concatenate([c.frames for c in cached])) if cached else np.zeros(0, np.int64)
        todo = np.setdiff1d(wanted, have, assume_unique=True)
        logger.info(
            "%s: %d of %d requested frames cached, computing %d",
            Path(video_path).name,
            len(wanted) - len(todo),
            len(wanted),
            len(todo),
        )
        if len(todo):
            entry.mkdir(parents=True, exist_ok=True)
            self._write_key(entry, key)
            for block in extractor.iter_extract(
                video_path,
                todo,
                centers,
                headings,
                body_sizes,
                chunk_frames=self.chunk_frames,
                progress=progress,
            ):
                self._write_block(entry, block)
                cached.append(block)
            try:
                self._compact(entry, name)
            except OSError as exc:  # e.g. another process compacting at the same time
                logger.debug("cache %s not compacted: %s", entry, exc)
        if not len(wanted):
            n_animals = np.asarray(centers).shape[1]
            return VisualFeatures.empty(n_animals, extractor.encoder.feature_dim, extractor.context, name)
        merged = VisualFeatures.concatenate([c.select(np.intersect1d(c.frames, wanted)) for c in cached])
        return merged.select(wanted)
