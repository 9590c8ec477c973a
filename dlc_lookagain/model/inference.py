"""Running a trained model over whole recordings: motion pass, gate scores, fused behavior pass.

Inference is two-phase because pixels are expensive: (1) a keypoint-only pass gives motion codes,
keypoint-only behavior probabilities and gate scores for every frame; (2) the caller decodes and
encodes only the chosen frames (:mod:`dlc_lookagain.model.vision`), and a second pass fuses them.
Both passes run on half-overlapping windows (:func:`~dlc_lookagain.model.windows.tile`) in batches,
so memory does not grow with the recording's length beyond the per-frame outputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from dlc_lookagain.model.gate import gate_components, select_frames
from dlc_lookagain.model.lookagain import LookAgainModel
from dlc_lookagain.model.windows import Sequence, collate, stitch, tile, visual_means

__all__ = ["MotionPass", "motion_pass", "fused_pass", "choose_frames", "uniform_frames", "looked_frames"]


@dataclass
class MotionPass:
    """Keypoint-only outputs for one recording."""

    z: np.ndarray  # float32 (T, I, d) motion features
    codes: np.ndarray  # int16 (T, I, L) RVQ codes
    components: np.ndarray  # float32 (T, I, 8) gate evidence
    scores: np.ndarray  # float32 (T, I) gate score per animal
    frame_scores: np.ndarray  # float32 (T,) max over visible animals, -inf where none visible
    probs: np.ndarray | None  # float32 (T, I, C) keypoint-only behavior probabilities


def _batches(items, size):
    for i in range(0, len(items), size):
        yield items[i : i + size]


@torch.no_grad()
def motion_pass(model: LookAgainModel, seqs: list[Sequence], *, batch_size: int = 32,
                progress: bool = False) -> list[MotionPass]:
    """Keypoint-only pass over every frame of every sequence."""
    model.eval()
    cfg = model.config
    windows = tile(seqs, cfg.window)
    outs = {"z": [], "codes": [], "comp": [], "score": [], "probs": []}
    it = _batches(windows, batch_size)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, total=(len(windows) + batch_size - 1) // batch_size, desc="motion", unit="batch")
    for ws in it:
        batch = collate(seqs, ws, (cfg.crop_dim, cfg.context_dim))
        fps = batch["fps"]
        z = model.motion(batch)
        _, codes, _ = model.quantizer(z)
        probs = raw = None
        if model.head is not None:
            none = torch.zeros_like(batch["visible"])
            logits = model.classify(z, batch["visual"], none, fps)
            # The gate's entropy uses the uncalibrated probabilities, the ones it was trained on
            # (temperatures are fitted after the gate); the returned probabilities are calibrated.
            raw = torch.sigmoid(logits)
            probs = torch.sigmoid(logits / model.temperature)
        _, xerr = model.predict_crossmodal(z)
        comp = gate_components(z, codes, batch["animal"], raw, xerr)
        score = model.gate(comp)
        for k, w in enumerate(ws):
            outs["z"].append(z[k, : w.length].numpy())
            outs["codes"].append(codes[k, : w.length].numpy().astype(np.int16))
            outs["comp"].append(comp[k, : w.length].numpy())
            outs["score"].append(score[k, : w.length].numpy())
            if probs is not None:
                outs["probs"].append(probs[k, : w.length].numpy())
    zs = stitch(windows, outs["z"], seqs)
    codes = stitch(windows, outs["codes"], seqs)
    comps = stitch(windows, outs["comp"], seqs)
    scores = stitch(windows, outs["score"], seqs)
    probs = stitch(windows, outs["probs"], seqs) if outs["probs"] else [None] * len(seqs)
    result = []
    for s, z, c, comp, sc, p in zip(seqs, zs, codes, comps, scores, probs):
        vis = s.pose.visible
        frame = np.where(vis, sc, -np.inf).max(1) if vis.shape[1] else np.full(s.n_frames, -np.inf)
        result.append(MotionPass(z.astype(np.float32), c, comp.astype(np.float32), sc.astype(np.float32),
                                 frame.astype(np.float32), None if p is None else p.astype(np.float32)))
    return result


def uniform_frames(n_frames: int, budget: float) -> np.ndarray:
    """Every round(1/budget)-th frame, starting in the middle of the first interval."""
    if budget <= 0:
        return np.zeros(0, np.int64)
    if budget >= 1:
        return np.arange(n_frames, dtype=np.int64)
    step = max(1, int(round(1 / budget)))
    return np.arange(step // 2, n_frames, step, dtype=np.int64)


def choose_frames(model: LookAgainModel, seq: Sequence, mp: MotionPass, budget: float | None = 0.25, *,
                  threshold: float | None = None, coverage: float = 0.5) -> np.ndarray:
    """Frames the gate chooses to look at (sorted indices)."""
    window = max(1, int(round(model.config.gate_window_s * seq.fps)))
    valid = seq.pose.visible.any(1)
    scores = np.where(np.isfinite(mp.frame_scores), mp.frame_scores, np.nanmin(mp.scores) if mp.scores.size else 0)
    return select_frames(scores, budget if threshold is None else None, window=window, threshold=threshold,
                         coverage=coverage, valid=valid)


def looked_frames(model: LookAgainModel, seqs: list[Sequence], mps: list[MotionPass], budget: float,
                  selector: str = "gate", *, coverage: float = 0.5) -> list[np.ndarray]:
    """Frame indices looked at per sequence at a budget: chosen by the gate, or uniformly."""
    if budget <= 0:
        return [np.zeros(0, np.int64) for _ in seqs]
    if selector == "gate":
        return [choose_frames(model, s, mp, budget, coverage=coverage) for s, mp in zip(seqs, mps)]
    return [uniform_frames(s.n_frames, budget) for s in seqs]


@torch.no_grad()
def fused_pass(model: LookAgainModel, seqs: list[Sequence], looked: list[np.ndarray], *,
               batch_size: int = 32, want_fused: bool = False, progress: bool = False
               ) -> tuple[list[np.ndarray], list[np.ndarray] | None]:
    """Behavior probabilities (T, I, C) per sequence with vision of the ``looked`` frames only.

    ``looked[i]`` is a bool (T,) mask or an index array; frames without computed vision features
    (``seq.visual_available`` False) are treated as not looked at. Returns ``(probs, fused)``, with
    the fused features (T, I, d) when ``want_fused``.
    """
    model.eval()
    cfg = model.config
    masks = []
    for s, lk in zip(seqs, looked):
        lk = np.asarray(lk)
        m = lk.astype(bool) if lk.dtype == bool and lk.shape == (s.n_frames,) else np.isin(np.arange(s.n_frames), lk)
        masks.append(m & s.visual_available)
    windows = tile(seqs, cfg.window)
    means = {si: visual_means(s, m) for si, (s, m) in enumerate(zip(seqs, masks))}
    probs_out, fused_out = [], []
    it = _batches(windows, batch_size)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, total=(len(windows) + batch_size - 1) // batch_size, desc="fusion", unit="batch")
    for ws in it:
        batch = collate(seqs, ws, (cfg.crop_dim, cfg.context_dim), looked=masks, means=means)
        fps = batch["fps"]
        z = model.motion(batch)
        f = model.fused(z, batch["visual"], batch["visual_available"], fps)
        p = torch.sigmoid(model.head(f) / model.temperature) if model.head is not None else None
        for k, w in enumerate(ws):
            if p is not None:
                probs_out.append(p[k, : w.length].numpy())
            if want_fused:
                fused_out.append(f[k, : w.length].numpy())
    probs = stitch(windows, probs_out, seqs) if probs_out else [None] * len(seqs)
    fused = stitch(windows, fused_out, seqs) if want_fused else None
    return probs, fused
