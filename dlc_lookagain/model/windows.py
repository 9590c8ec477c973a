"""Recordings as model input: sequences, windows, batches, and stitching window outputs back.

The model works on windows of ``T`` frames of one animal (memory stays bounded for hours of
video). A :class:`Sequence` holds one recording: its pose tokens, whatever frozen vision features
exist (dense during training, the looked-at frames at inference) and, when labeled, per-frame
targets. :func:`tile` covers a whole recording with half-overlapping windows; :func:`stitch` keeps
from each window the frames nearest its centre, so every frame sees context on both sides except
at the very ends.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from dlc_lookagain.model.pose_tokens import PoseTokens

__all__ = ["Sequence", "SparseFrames", "Window", "collate", "visual_means", "tile", "stitch", "random_windows", "slice_sequence"]


class SparseFrames:
    """A (T, ...) float array stored only on the frames that were set; the others read as zeros.

    At inference only ``top_k`` of the frames are looked at, so a dense (T, I, 1280) float16 array
    would hold mostly zeros (0.8 GB per hour of a two-animal video, crops and context). This keeps
    the looked-at rows only and answers the reads the model makes: ``a[frames]`` and
    ``a[frames, animal]`` with ``frames`` a slice, a bool mask or integer indices.

    Parameters
    ----------
    n_frames : int
        T.
    row_shape : tuple of int
        Shape of one frame's row, e.g. ``(I, Dc)`` or ``(Dx,)``.
    dtype : numpy dtype
    """

    def __init__(self, n_frames: int, row_shape: tuple[int, ...], dtype=np.float16):
        self.shape = (int(n_frames), *(int(d) for d in row_shape))
        self.dtype = np.dtype(dtype)
        self._where = np.full(self.shape[0], -1, np.int64)  # frame -> row in _rows, -1 = zeros
        self._rows = np.zeros((0, *self.shape[1:]), self.dtype)

    @property
    def n_stored(self) -> int:
        """Frames that hold values."""
        return int(self._rows.shape[0])

    @property
    def nbytes(self) -> int:
        return int(self._rows.nbytes + self._where.nbytes)

    def __setitem__(self, frames, values) -> None:
        frames = np.arange(self.shape[0])[frames].reshape(-1)
        values = np.broadcast_to(np.asarray(values, self.dtype), (frames.size, *self.shape[1:]))
        new = self._where[frames] < 0
        if new.any():
            # Unique new frames get rows at the end, in the order given (the last value of a repeat wins).
            fresh = np.unique(frames[new])
            self._where[fresh] = self._rows.shape[0] + np.arange(fresh.size)
            self._rows = np.concatenate([self._rows, np.zeros((fresh.size, *self.shape[1:]), self.dtype)])
        self._rows[self._where[frames]] = values

    def __getitem__(self, key) -> np.ndarray:
        frames, rest = (key[0], key[1:]) if isinstance(key, tuple) else (key, ())
        where = self._where[frames]  # (n,) for a slice, mask or index array; () for an int
        rows = self._rows[(slice(None), *rest)] if rest else self._rows
        if np.ndim(where) == 0:
            return rows[where].copy() if where >= 0 else np.zeros(rows.shape[1:], self.dtype)
        out = np.zeros((*np.shape(where), *rows.shape[1:]), self.dtype)
        has = where >= 0
        out[has] = rows[where[has]]
        return out

    def toarray(self) -> np.ndarray:
        """The dense (T, ...) array."""
        return self[:]


@dataclass
class Sequence:
    """One recording prepared for the model.

    Attributes
    ----------
    name : str
    pose : PoseTokens
    fps : float
    crop : float16 (T, I, Dc), SparseFrames or None
        Frozen vision features of each animal's crop (zeros where not computed).
    context : float16 (T, Dx), SparseFrames or None
        Frozen vision features of the context view.
    visual_available : bool (T,)
        Frames whose vision features were computed.
    targets : float32 (T, I, C) or None
        1 / 0 per behavior, NaN where not annotated.
    """

    name: str
    pose: PoseTokens
    fps: float
    crop: np.ndarray | None = None
    context: np.ndarray | None = None
    visual_available: np.ndarray | None = None
    targets: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.visual_available is None:
            self.visual_available = np.zeros(self.n_frames, bool)

    @property
    def n_frames(self) -> int:
        return self.pose.n_frames

    @property
    def n_individuals(self) -> int:
        return self.pose.n_individuals


@dataclass(frozen=True)
class Window:
    """Frames ``start:start + length`` of animal ``animal`` in sequence ``seq``."""

    seq: int
    animal: int
    start: int
    length: int


def visual_means(seq: Sequence, looked: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Mean crop feature per animal (I, Dc) and mean context feature (Dx,) over looked-at frames.

    Subtracted from every frame's features (instance normalization): what stays is how the animal
    looks *now* compared with how it usually looks in this recording, not its coat, the camera or
    the arena, which otherwise let a classifier memorize animals instead of behaviors.
    """
    avail = seq.visual_available if looked is None else (seq.visual_available & looked)
    crop_mean = np.zeros((seq.n_individuals, 0 if seq.crop is None else seq.crop.shape[-1]), np.float32)
    if seq.crop is not None:
        for a in range(seq.n_individuals):
            rows = avail & seq.pose.visible[:, a]
            if rows.any():
                crop_mean[a] = seq.crop[rows, a].astype(np.float32).mean(0)
    ctx_mean = None
    if seq.context is not None and avail.any():
        ctx_mean = seq.context[avail].astype(np.float32).mean(0)
    return crop_mean, ctx_mean


def collate(seqs: list[Sequence], windows: list[Window], visual_dim: tuple[int, int] = (1280, 1280),
            looked: list[np.ndarray] | None = None,
            means: dict[int, tuple[np.ndarray, np.ndarray | None]] | None = None) -> dict[str, Tensor]:
    """Stack windows (padded to the longest) into a batch of tensors.

    Keys: ``tokens (N, T, B, 6)``, ``identity (N, B, 2)``, ``present (N, T, B)``, ``animal (N, T, F)``,
    ``visible (N, T)``, ``valid (N, T)`` (not padding), ``visual (N, T, Dc + Dx)``,
    ``visual_available (N, T)``, ``fps (N,)``, and when every sequence has targets ``targets (N, T, C)`` (NaN =
    unlabeled). ``looked`` gives a per-sequence bool (T,) mask of looked-at frames; visual features
    outside it are zeroed so nothing leaks. Visual features are centred per animal on their mean
    over the looked-at frames (:func:`visual_means`; pass ``means`` {sequence index: means} to
    avoid recomputing them for every batch).
    """
    means = {} if means is None else means
    for si in {w.seq for w in windows}:
        if si not in means:
            means[si] = visual_means(seqs[si], None if looked is None else looked[si])
    t_max = max(w.length for w in windows)
    b_max = max(seqs[w.seq].pose.tokens.shape[2] for w in windows)
    n = len(windows)
    dc, dx = visual_dim
    tokens = np.zeros((n, t_max, b_max, 6), np.float32)
    identity = np.zeros((n, b_max, 2), np.float32)
    present = np.zeros((n, t_max, b_max), bool)
    animal = np.zeros((n, t_max, seqs[0].pose.animal.shape[-1]), np.float32)
    visible = np.zeros((n, t_max), bool)
    valid = np.zeros((n, t_max), bool)
    visual = np.zeros((n, t_max, dc + dx), np.float32)
    avail = np.zeros((n, t_max), bool)
    with_targets = all(s.targets is not None for s in seqs)
    targets = None
    if with_targets:
        c = seqs[0].targets.shape[-1]
        targets = np.full((n, t_max, c), np.nan, np.float32)
    for k, w in enumerate(windows):
        s = seqs[w.seq]
        sl = slice(w.start, w.start + w.length)
        p = s.pose
        b = p.tokens.shape[2]
        tokens[k, : w.length, :b] = p.tokens[sl, w.animal]
        identity[k, :b] = p.identity
        present[k, : w.length, :b] = p.present[sl, w.animal]
        animal[k, : w.length] = p.animal[sl, w.animal]
        visible[k, : w.length] = p.visible[sl, w.animal]
        valid[k, : w.length] = True
        av = s.visual_available[sl].copy()
        if looked is not None:
            av &= looked[w.seq][sl]
        avail[k, : w.length] = av
        crop_mean, ctx_mean = means[w.seq]
        if s.crop is not None:
            visual[k, : w.length, :dc] = np.where(av[:, None], s.crop[sl, w.animal] - crop_mean[w.animal], 0)
        if s.context is not None and ctx_mean is not None:
            visual[k, : w.length, dc:] = np.where(av[:, None], s.context[sl] - ctx_mean, 0)
        if with_targets:
            targets[k, : w.length] = s.targets[sl, w.animal]
    out = {
        "fps": torch.tensor([seqs[w.seq].fps for w in windows], dtype=torch.float32),
        "tokens": torch.from_numpy(tokens), "identity": torch.from_numpy(identity),
        "present": torch.from_numpy(present), "animal": torch.from_numpy(animal),
        "visible": torch.from_numpy(visible), "valid": torch.from_numpy(valid),
        "visual": torch.from_numpy(visual), "visual_available": torch.from_numpy(avail),
    }
    if with_targets:
        out["targets"] = torch.from_numpy(targets)
    return out


def tile(seqs: list[Sequence], window: int) -> list[Window]:
    """Half-overlapping windows covering every frame of every animal of every sequence."""
    out = []
    stride = max(1, window // 2)
    for si, s in enumerate(seqs):
        t = s.n_frames
        starts = list(range(0, max(1, t - window) + 1, stride))
        if starts[-1] + window < t:
            starts.append(t - window)
        for a in range(s.n_individuals):
            out.extend(Window(si, a, st, min(window, t - st)) for st in starts)
    return out


def stitch(windows: list[Window], outputs: list[np.ndarray], seqs: list[Sequence]) -> list[np.ndarray]:
    """Per-window outputs ``(length, ...)`` -> per-sequence arrays ``(T, I, ...)``.

    Each frame takes the output of the window in which it lies farthest from an edge.
    """
    result: list[np.ndarray | None] = [None] * len(seqs)
    best: list[np.ndarray | None] = [None] * len(seqs)
    for w, out in zip(windows, outputs):
        s = seqs[w.seq]
        if result[w.seq] is None:
            result[w.seq] = np.zeros((s.n_frames, s.n_individuals) + out.shape[1:], out.dtype)
            best[w.seq] = np.full((s.n_frames, s.n_individuals), -1, np.int64)
        pos = np.arange(w.length)
        # Distance to the nearest window edge, except at the recording's own ends.
        left = pos if w.start > 0 else pos + 10**6
        right = (w.length - 1 - pos) if w.start + w.length < s.n_frames else pos + 10**6
        centrality = np.minimum(left, right)
        sl = slice(w.start, w.start + w.length)
        better = centrality > best[w.seq][sl, w.animal]
        frames = np.arange(w.start, w.start + w.length)[better]
        result[w.seq][frames, w.animal] = out[: w.length][better]
        best[w.seq][frames, w.animal] = centrality[better]
    return [r if r is not None else np.zeros((s.n_frames, s.n_individuals)) for r, s in zip(result, seqs)]


def random_windows(seqs: list[Sequence], n: int, window: int, rng: np.random.Generator,
                   need_labels: bool = False) -> list[Window]:
    """``n`` random windows, each around a random visible (and, if asked, labeled) animal-frame.

    A frame is drawn uniformly among all usable (sequence, animal, frame) triples and the window is
    placed at a random offset around it, so every window contains usable frames even when only a
    few bouts of a long recording are annotated.
    """
    usable = []
    options = []
    for si, s in enumerate(seqs):
        for a in range(s.n_individuals):
            ok = s.pose.visible[:, a]
            if need_labels and s.targets is not None:
                ok = ok & np.isfinite(s.targets[:, a]).all(-1)
            frames = np.flatnonzero(ok)
            if frames.size == 0:
                continue
            options.append((si, a))
            usable.append(frames)
    if not options:
        raise ValueError("no visible (labeled) animal-frames to train on")
    counts = np.array([f.size for f in usable], dtype=np.float64)
    picks = rng.choice(len(options), size=n, p=counts / counts.sum())
    out = []
    for k in picks:
        si, a = options[k]
        t = seqs[si].n_frames
        length = min(window, t)
        frame = int(usable[k][rng.integers(usable[k].size)])
        start = int(np.clip(frame - rng.integers(0, length), 0, t - length))
        out.append(Window(si, a, start, length))
    return out


def slice_sequence(seq: Sequence, start: int, stop: int) -> Sequence:
    """Frames ``start:stop`` of a sequence (keypoint identities and body sizes kept)."""
    p = seq.pose
    sl = slice(start, stop)
    pose = PoseTokens(tokens=p.tokens[sl], present=p.present[sl], identity=p.identity, animal=p.animal[sl],
                      visible=p.visible[sl], center=p.center[sl], heading=p.heading[sl], body_size=p.body_size)
    return Sequence(f"{seq.name}[{start}:{stop}]", pose, seq.fps,
                    crop=None if seq.crop is None else seq.crop[sl],
                    context=None if seq.context is None else seq.context[sl],
                    visual_available=seq.visual_available[sl],
                    targets=None if seq.targets is None else seq.targets[sl])
