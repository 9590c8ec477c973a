"""Encoder features of the looked-at frames of a video: one decoding pass, crops in batches.

:class:`FrameFeatureExtractor` decodes the chosen frames of a video in one sequential pass,
cuts the animal crops and the context view (:mod:`dlc_lookagain.model.crops`) and encodes
them with the frozen encoder (:mod:`dlc_lookagain.model.vision`); :class:`VisualFeatures`
holds the result for the looked-at frames only, :class:`DenseFeatures` lays it out over all
frames.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
from tqdm.auto import tqdm

from dlc_lookagain.model.crops import animal_crops, context_view
from dlc_lookagain.model.vision import VisionEncoder, load_vision_encoder

__all__ = ["DenseFeatures", "VisualFeatures", "FrameFeatureExtractor"]


class DenseFeatures(NamedTuple):
    """Features laid out over all frames of a recording; zeros where not looked at."""

    animal: np.ndarray  #: float32 (T, I, D)
    context: np.ndarray | None  #: float32 (T, D), or None without context view
    valid: np.ndarray  #: bool (T, I): an animal crop was seen
    looked: np.ndarray  #: bool (T,): the frame was decoded and encoded


@dataclass
class VisualFeatures:
    """Encoder features of the looked-at frames of one video.

    Attributes
    ----------
    frames : np.ndarray
        ``int64`` ``(n,)`` sorted frame indices.
    animal : np.ndarray
        ``float16`` ``(n, I, D)`` one vector per animal crop; zeros where not valid.
    context : np.ndarray or None
        ``float16`` ``(n, D)`` whole-frame view; None if not extracted.
    valid : np.ndarray
        ``bool`` ``(n, I)`` the animal was present and cropped.
    encoder : str
        Name of the vision encoder.
    seen : np.ndarray
        ``bool`` ``(n,)`` the frame could be decoded (False past the end of a video
        shorter than its pose; such rows are all zeros).
    """

    frames: np.ndarray
    animal: np.ndarray
    context: np.ndarray | None
    valid: np.ndarray
    encoder: str
    seen: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.frames = np.asarray(self.frames, np.int64)
        if self.seen is None:
            self.seen = np.ones(len(self.frames), bool)
        n = len(self.frames)
        if self.animal.shape[0] != n or self.valid.shape[0] != n or len(self.seen) != n:
            raise ValueError("frames, animal, valid and seen must have the same length")
        if self.context is not None and self.context.shape[0] != n:
            raise ValueError("context must have one row per frame")

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def n_animals(self) -> int:
        return int(self.animal.shape[1])

    @property
    def feature_dim(self) -> int:
        return int(self.animal.shape[2])

    @classmethod
    def empty(cls, n_animals: int, feature_dim: int, context: bool, encoder: str) -> VisualFeatures:
        """A feature set with no frames."""
        return cls(
            frames=np.zeros(0, np.int64),
            animal=np.zeros((0, n_animals, feature_dim), np.float16),
            context=np.zeros((0, feature_dim), np.float16) if context else None,
            valid=np.zeros((0, n_animals), bool),
            encoder=encoder,
            seen=np.zeros(0, bool),
        )

    def select(self, frames: Sequence[int] | np.ndarray) -> VisualFeatures:
        """The rows of the given frames (all must be present), in sorted order."""
        frames = np.unique(np.asarray(frames, np.int64))
        pos = np.searchsorted(self.frames, frames)  # (m,)
        ok = pos < len(self.frames)
        ok[ok] = self.frames[pos[ok]] == frames[ok]
        if not ok.all():
            raise KeyError(f"frames not in these features: {frames[~ok][:10].tolist()}")
        return VisualFeatures(
            frames=self.frames[pos],
            animal=np.asarray(self.animal[pos]),
            context=None if self.context is None else np.asarray(self.context[pos]),
            valid=np.asarray(self.valid[pos]),
            encoder=self.encoder,
            seen=np.asarray(self.seen[pos]),
        )

    @staticmethod
    def concatenate(parts: Sequence[VisualFeatures]) -> VisualFeatures:
        """Merge feature sets of the same encoder; frames sorted, duplicates kept once."""
        if not parts:
            raise ValueError("nothing to concatenate")
        frames = np.concatenate([p.frames for p in parts])
        order = np.argsort(frames, kind="stable")
        _, first = np.unique(frames[order], return_index=True)
        keep = order[first]

        def cat(arrays: list[np.ndarray]) -> np.ndarray:
            return np.concatenate(arrays)[keep]

        has_context = parts[0].context is not None
        return VisualFeatures(
            frames=frames[keep],
            animal=cat([np.asarray(p.animal) for p in parts]),
            context=cat([np.asarray(p.context) for p in parts]) if has_context else None,
            valid=cat([np.asarray(p.valid) for p in parts]),
            encoder=parts[0].encoder,
            seen=cat([np.asarray(p.seen) for p in parts]),
        )

    def dense(self, n_frames: int) -> DenseFeatures:
        """Spread the features over all ``n_frames`` frames of the recording.

        Returns
        -------
        DenseFeatures
            ``animal`` float32 ``(T, I, D)``, ``context`` float32 ``(T, D)`` or None,
            ``valid`` bool ``(T, I)``, ``looked`` bool ``(T,)``; zeros/False at frames
            that were not looked at.
        """
        rows = self.frames < n_frames
        f = self.frames[rows]
        animal = np.zeros((n_frames, self.n_animals, self.feature_dim), np.float32)
        animal[f] = self.animal[rows]
        valid = np.zeros((n_frames, self.n_animals), bool)
        valid[f] = self.valid[rows]
        looked = np.zeros(n_frames, bool)
        looked[f] = self.seen[rows]
        context = None
        if self.context is not None:
            context = np.zeros((n_frames, self.feature_dim), np.float32)
            context[f] = self.context[rows]
        return DenseFeatures(animal=animal, context=context, valid=valid, looked=looked)


def _as_frame_indices(frames: Sequence[int] | np.ndarray) -> np.ndarray:
    arr = np.asarray(frames)
    if arr.size == 0:
        return np.zeros(0, np.int64)
    if arr.dtype.kind not in "iu" or arr.ndim != 1:
        raise ValueError(f"frames must be a 1-D array of integer indices, got {arr.dtype} {arr.shape}")
    if arr.min() < 0:
        raise ValueError(f"frame indices must be >= 0, got {int(arr.min())}")
    return np.unique(arr.astype(np.int64))


def _check_geometry(
    centers: np.ndarray, headings: np.ndarray, body_sizes: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    centers = np.asarray(centers, np.float64)
    if centers.ndim != 3 or centers.shape[2] != 2:
        raise ValueError(f"centers must be (T, I, 2), got {centers.shape}")
    t, i = centers.shape[:2]
    headings = np.asarray(headings, np.float64)
    if headings.shape != (t, i):
        raise ValueError(f"headings must be (T, I) = {(t, i)}, got {headings.shape}")
    body_sizes = np.asarray(body_sizes, np.float64)
    if body_sizes.shape == (i,):
        body_sizes = np.broadcast_to(body_sizes, (t, i))
    elif body_sizes.shape != (t, i):
        raise ValueError(f"body_sizes must be (T, I) = {(t, i)} or (I,), got {body_sizes.shape}")
    return centers, headings, body_sizes


class FrameFeatureExtractor:
    """Encode animal crops and a context view for chosen frames of a video.

    Parameters
    ----------
    encoder : VisionEncoder or str or None
        Encoder, or a spec for :func:`load_vision_encoder` (None: the default).
    crop_size : int, optional
        Crop side in pixels; defaults to ``encoder.input_size``.
    crop_scale : float
        Crop side in body lengths.
    context : bool
        Also encode the whole frame, letterboxed.
    batch_size : int
        Images per encoder call; crops of consecutive frames share batches.
    """

    def __init__(
        self,
        encoder: VisionEncoder | str | None = None,
        *,
        crop_size: int | None = None,
        crop_scale: float = 2.0,
        context: bool = True,
        batch_size: int = 16,
    ):
        self.encoder = encoder if isinstance(encoder, VisionEncoder) else load_vision_encoder(encoder)
        self.crop_size = int(crop_size or self.encoder.input_size)
        if not crop_scale > 0:
            raise ValueError(f"crop_scale must be positive, got {crop_scale}")
        self.crop_scale = float(crop_scale)
        self.context = bool(context)
        self.batch_size = max(1, int(batch_size))

    def __repr__(self) -> str:
        return (
            f"FrameFeatureExtractor({self.encoder.name!r}, crop_size={self.crop_size}, "
            f"crop_scale={self.crop_scale:g}, context={self.context})"
        )

    def images(
        self, frame: np.ndarray, centers: np.ndarray, headings: np.ndarray, body_sizes: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """The encoder inputs of one frame: crops ``(I, S, S, 3)``, valid ``(I,)``, context ``(S, S, 3)``."""
        crops, valid = animal_crops(
            frame, centers, headings, body_sizes, size=self.crop_size, scale=self.crop_scale
        )
        ctx = context_view(frame, size=self.crop_size) if self.context else None
        return crops, valid, ctx

    def iter_extract(
        self,
        video_path: str | Path,
        frames: Sequence[int] | np.ndarray,
        centers: np.ndarray,
        headings: np.ndarray,
        body_sizes: np.ndarray,
        *,
        chunk_frames: int = 256,
        progress: bool = True,
    ) -> Iterator[VisualFeatures]:
        """Like :meth:`extract`, but yield the result in consecutive blocks of frames.

        One sequential decoding pass serves all blocks; each block is complete when
        yielded, so a caller can save it before the next is computed.

        Parameters
        ----------
        chunk_frames : int
            Frames per yielded block.
        """
        from dlc_lookagain.io.prefetch import frames_ahead

        wanted = _as_frame_indices(frames)
        centers, headings, body_sizes = _check_geometry(centers, headings, body_sizes)
        t, n_animals = centers.shape[:2]
        if len(wanted) and wanted[-1] >= t:
            raise ValueError(f"frame {int(wanted[-1])} requested but the geometry covers only {t} frames")
        d = self.encoder.feature_dim
        chunk_frames = max(1, int(chunk_frames))
        name = self.encoder.name
        if len(wanted) == 0:
            return

        # The block being filled: rows are frames wanted[b0 : b0 + len(block)].
        def new_block(start: int) -> VisualFeatures:
            m = min(chunk_frames, len(wanted) - start)
            return VisualFeatures(
                frames=wanted[start : start + m],
                animal=np.zeros((m, n_animals, d), np.float16),
                context=np.zeros((m, d), np.float16) if self.context else None,
                valid=np.zeros((m, n_animals), bool),
                encoder=name,
                seen=np.zeros(m, bool),
            )

        blocks: dict[int, VisualFeatures] = {}  # block start -> block (at most two alive)
        pending: list[np.ndarray] = []  # images waiting for the encoder, each (S, S, 3)
        targets: list[tuple[int, int, int]] = []  # (block start, row, animal or -1 for context)
        outstanding: dict[int, int] = {}  # block start -> images not yet encoded

        def flush(all_: bool) -> None:
            while len(pending) >= self.batch_size or (all_ and pending):
                k = min(self.batch_size, len(pending))
                feats = self.encoder.encode(np.stack(pending[:k]), batch_size=k)  # (k, D)
                feats16 = feats.astype(np.float16)
                for (b, row, a), f in zip(targets[:k], feats16):
                    block = blocks[b]
                    if a < 0:
                        block.context[row] = f
                    else:
                        block.animal[row, a] = f
                    outstanding[b] -= 1
                del pending[:k], targets[:k]

        def finished_blocks(final: bool) -> Iterator[VisualFeatures]:
            for b in sorted(blocks):
                block = blocks[b]
                decoded_all = final or (b + len(block) <= pos)
                if decoded_all and outstanding[b] == 0:
                    del blocks[b], outstanding[b]
                    yield block
                else:
                    break

        pos = 0  # number of wanted frames handled so far
        bar = tqdm(
            total=len(wanted),
            desc=f"looking at {Path(video_path).name}",
            unit="frame",
            disable=None if progress else True,
            leave=False,
        )
        try:
            # decoding overlaps cropping and encoding (io/prefetch.py)
            with frames_ahead(video_path, wanted, allow_short=True) as ready:
                for index, rgb in ready:
                    # rgb: uint8 (H, W, 3); decoded frames arrive in increasing order
                    pos = int(np.searchsorted(wanted, index))
                    b = (pos // chunk_frames) * chunk_frames
                    if b not in blocks:
                        blocks[b], outstanding[b] = new_block(b), 0
                    row = pos - b
                    crops, valid, ctx = self.images(rgb, centers[index], headings[index], body_sizes[index])
                    block = blocks[b]
                    block.seen[row] = True
                    block.valid[row] = valid
                    for a in np.flatnonzero(valid):  # invalid animals stay zero, never encoded
                        pending.append(crops[a])
                        targets.append((b, row, int(a)))
                    if ctx is not None:
                        pending.append(ctx)
                        targets.append((b, row, -1))
                    outstanding[b] += int(valid.sum()) + (ctx is not None)
                    pos += 1
                    bar.update(1)
                    flush(all_=False)
                    yield from finished_blocks(final=False)
            flush(all_=True)
            n_seen = pos
            # Blocks past the end of a short video: never decoded, returned all-unseen.
            for start in range(0, len(wanted), chunk_frames):
                if start >= n_seen and start not in blocks:
                    blocks[start], outstanding[start] = new_block(start), 0
            yield from finished_blocks(final=True)
        finally:
            bar.close()

    def extract(
        self,
        video_path: str | Path,
        frames: Sequence[int] | np.ndarray,
        centers: np.ndarray,
        headings: np.ndarray,
        body_sizes: np.ndarray,
        *,
        progress: bool = True,
    ) -> VisualFeatures:
        """Decode the chosen frames in one pass and encode their crops and context.

        Parameters
        ----------
        video_path : str or Path
            The recording's video.
        frames : sequence of int
            Frame indices to look at (sorted and de-duplicated here).
        centers : np.ndarray
            ``(T, I, 2)`` animal centres ``(x, y)`` for *all* frames of the recording,
            in video pixel coordinates; NaN where an animal is missing.
        headings : np.ndarray
            ``(T, I)`` heading angles, radians, image coordinates (y down).
        body_sizes : np.ndarray
            ``(T, I)`` or ``(I,)`` body lengths in video pixels.
        progress : bool
            Show a progress bar (only on a terminal).

        Returns
        -------
        VisualFeatures
            One row per requested frame. Frames past the end of a short video have
            ``seen`` False (the reader warns).
        """
        parts = list(
            self.iter_extract(
                video_path,
                frames,
                centers,
                headings,
                body_sizes,
                chunk_frames=max(1, len(_as_frame_indices(frames))),
                progress=progress,
            )
        )
        if not parts:
            n_animals = np.asarray(centers).shape[1]
            return VisualFeatures.empty(n_animals, self.encoder.feature_dim, self.context, self.encoder.name)
        return VisualFeatures.concatenate(parts)
