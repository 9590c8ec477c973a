"""Gate: score every frame by how much looking at it would change the outcome; pick the top-k.

Method
------
Decoding and encoding video is the expensive step, so a gate decides which frames are looked at.
It scores frame t of animal i from three groups of evidence, all computed from keypoints alone:

* **motion saliency** m_t: how much the motion representation changes, ||z_t - z_(t-1)|| (relative
  to its median in the window) and the fraction of RVQ code levels that change at t;
* **keypoint uncertainty** u_t: 1 - mean keypoint confidence, the fraction of keypoints missing, a
  jump flag (swap or detection jump) and crowding exp(-distance to the nearest animal), since
  animals in contact occlude each other;
* **model ambiguity** a_t: the mean binary entropy of the keypoint-only behavior probabilities, and
  the predicted error of the cross-modal prediction of vision features (a head learned during
  pretraining: where the motion model cannot guess what the frame looks like).

A small temporal convolutional network maps the 8 components (and their neighbourhood, +-4 frames)
to a score g_t. It is trained with dense visual features available: the target is the benefit of
vision, the drop in the behavior loss when frame t's own pixels are seen, relative to keypoints
alone, so the gate learns to choose frames where vision changes the outcome most. A frame's score
is the maximum over its animals (one decode serves all animals).

Selection: the recording is cut into windows of ``window`` frames and ceil(k * window) frames are
chosen per window (budget fraction k), greedily by score with a coverage discount (a frame next to
one already chosen is worth less, since the fusion propagates vision to neighbours), or every
frame whose score exceeds a threshold. Only the chosen frames are decoded and encoded.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["Gate", "gate_components", "select_frames", "COMPONENT_GROUPS", "COMPONENT_NAMES"]

COMPONENT_NAMES: tuple[str, ...] = (
    "z_change", "code_change", "low_confidence", "missing", "jump", "crowding", "entropy", "crossmodal_error"
)
#: Component groups, for ablations (a removed group is zeroed and the gate retrained).
COMPONENT_GROUPS: dict[str, tuple[int, ...]] = {
    "motion": (0, 1), "uncertainty": (2, 3, 4, 5), "ambiguity": (6, 7)
}
# Indices into pose_tokens.ANIMAL_FEATURES.
_PRESENT_FRACTION, _MEAN_CONFIDENCE, _JUMP, _NEIGHBOR_DISTANCE = 6, 7, 8, 9


def gate_components(z: Tensor, codes: Tensor, animal: Tensor, probs: Tensor | None,
                    crossmodal_error: Tensor | None) -> Tensor:
    """The gate's evidence per frame and animal.

    Parameters
    ----------
    z : (N, T, d) motion features.
    codes : long (N, T, L) RVQ codes.
    animal : (N, T, F) whole-body features (pose_tokens.ANIMAL_FEATURES).
    probs : (N, T, C) keypoint-only behavior probabilities, or None (no classes yet).
    crossmodal_error : (N, T) predicted log error of the cross-modal prediction, or None.

    Returns
    -------
    (N, T, 8) components in :data:`COMPONENT_NAMES` order.
    """
    n, t, _ = z.shape
    dz = torch.zeros(n, t, device=z.device)
    dz[:, 1:] = (z[:, 1:] - z[:, :-1]).norm(dim=-1)
    dz = dz / (dz.median(dim=1, keepdim=True).values + 1e-6)
    dc = torch.zeros(n, t, device=z.device)
    dc[:, 1:] = (codes[:, 1:] != codes[:, :-1]).float().mean(-1)
    low_conf = 1.0 - animal[..., _MEAN_CONFIDENCE]
    missing = 1.0 - animal[..., _PRESENT_FRACTION]
    jump = animal[..., _JUMP]
    crowd = torch.exp(-torch.expm1(animal[..., _NEIGHBOR_DISTANCE].clamp(min=0)))
    crowd = torch.where(animal[..., _NEIGHBOR_DISTANCE] > 0, crowd, torch.zeros_like(crowd))
    if probs is not None:
        p = probs.clamp(1e-6, 1 - 1e-6)
        entropy = (-(p * p.log() + (1 - p) * (1 - p).log()) / np.log(2)).mean(-1)
    else:
        entropy = torch.zeros(n, t, device=z.device)
    xerr = crossmodal_error if crossmodal_error is not None else torch.zeros(n, t, device=z.device)
    return torch.stack([torch.log1p(dz), dc, low_conf, missing, jump, crowd, entropy, xerr], -1)


class Gate(nn.Module):
    """Temporal CNN: gate components (N, T, 8) -> frame scores (N, T) (higher = look)."""

    def __init__(self, n_components: int = len(COMPONENT_NAMES), hidden: int = 32, kernel: int = 9):
        super().__init__()
        self.register_buffer("component_mask", torch.ones(n_components))
        self.norm_mean = nn.Parameter(torch.zeros(n_components), requires_grad=False)
        self.norm_std = nn.Parameter(torch.ones(n_components), requires_grad=False)
        self.net = nn.Sequential(
            nn.Conv1d(n_components, hidden, kernel, padding=kernel // 2), nn.GELU(),
            nn.Conv1d(hidden, hidden, kernel, padding=kernel // 2, dilation=1), nn.GELU(),
            nn.Conv1d(hidden, 1, 1),
        )

    def remove(self, group: str) -> None:
        """Zero one component group (ablation); retrain afterwards."""
        for c in COMPONENT_GROUPS[group]:
            self.component_mask[c] = 0.0

    def fit_normalization(self, components: Tensor) -> None:
        """Standardize components with statistics of the training frames: (M, 8)."""
        self.norm_mean.data = components.mean(0)
        self.norm_std.data = components.std(0).clamp(min=1e-3)

    def forward(self, components: Tensor) -> Tensor:
        x = (components - self.norm_mean) / self.norm_std * self.component_mask  # (N, T, 8)
        return self.net(x.transpose(1, 2))[:, 0]  # (N, T)


def gate_loss(scores: Tensor, benefit: Tensor, mask: Tensor) -> Tensor:
    """Regression of the standardized benefit of vision (scores and benefit (N, T), mask bool)."""
    if not mask.any():
        return scores.sum() * 0.0
    return F.smooth_l1_loss(scores[mask], benefit[mask])


def select_frames(scores: np.ndarray, budget: float | None = None, *, window: int = 60,
                  threshold: float | None = None, coverage: float = 0.5, radius: int | None = None,
                  valid: np.ndarray | None = None) -> np.ndarray:
    """Choose frames to look at.

    Parameters
    ----------
    scores : (T,) gate scores (higher = more informative).
    budget : float in [0, 1], optional
        Fraction k of frames per window (ceil(k * window) each; the last, shorter window gets its
        share). Exactly one of ``budget`` and ``threshold``.
    window : int
        Window length in frames.
    threshold : float, optional
        Choose every frame scoring at least this.
    coverage : float in [0, 1)
        How much a chosen frame discounts its neighbours' scores (0 = plain top-k).
    radius : int, optional
        Reach of the discount in frames; default ``window / (2 * per-window count)``.
    valid : bool (T,), optional
        Frames that may be chosen (e.g. frames with a visible animal); others never are.

    Returns
    -------
    Sorted unique frame indices (int64).
    """
    scores = np.asarray(scores, dtype=np.float64)
    t = scores.shape[0]
    if (budget is None) == (threshold is None):
        raise ValueError("give exactly one of budget and threshold")
    ok = np.ones(t, bool) if valid is None else np.asarray(valid, bool)
    if threshold is not None:
        return np.flatnonzero((scores >= threshold) & ok).astype(np.int64)
    if not 0.0 <= budget <= 1.0:
        raise ValueError(f"budget must be within [0, 1], got {budget}")
    if budget == 0 or t == 0:
        return np.zeros(0, np.int64)
    if budget >= 1.0:
        return np.flatnonzero(ok).astype(np.int64)
    chosen: list[int] = []
    # Scores shifted to be positive so a multiplicative discount lowers them; -inf / NaN scores
    # (e.g. MotionPass.frame_scores where no animal is visible) rank last instead of poisoning the shift.
    finite = np.isfinite(scores)
    lo, hi = (scores[finite].min(), scores[finite].max()) if finite.any() else (0.0, 0.0)
    base = np.where(finite, scores - lo + 1e-3, np.where(scores == np.inf, hi - lo + 1.0, 0.0))
    for start in range(0, t, window):
        stop = min(t, start + window)
        length = stop - start
        count = min(int(np.ceil(budget * length - 1e-9)), int(ok[start:stop].sum()))
        if count <= 0:
            continue
        r = radius if radius is not None else max(1, int(round(length / (2 * count))))
        s = np.where(ok[start:stop], base[start:stop], -np.inf)
        offsets = np.arange(length)
        for _ in range(count):
            j = int(np.argmax(s))
            if not np.isfinite(s[j]):
                break
            chosen.append(start + j)
            s[j] = -np.inf
            if coverage > 0:
                near = np.abs(offsets - j) <= r
                s = np.where(near & np.isfinite(s), s * (1 - coverage * (1 - np.abs(offsets - j) / (r + 1))), s)
    return np.unique(np.asarray(chosen, np.int64))
