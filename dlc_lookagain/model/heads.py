"""The supervised behavior head: from fused per-frame features to calibrated multi-label decisions.

Method
------
Behaviors are annotated per frame and per animal, and they are *multi-label*: an animal can groom
while it rests, or sniff while it walks. Each behavior c is therefore an independent binary
decision, scored by a small MLP on the fused motion+vision feature of the frame,

    logits_tc = W2 GELU(W1 LayerNorm(x_t)),            x_t in R^D, logits_t in R^C,

and trained with a per-class binary cross-entropy. Three properties of real annotations shape the
rest of this module:

1. **Sparse labels.** Annotators label some frames of some animals for some behaviors. Unlabeled
   entries are NaN in the target array and, together with an explicit frame/animal mask, are left
   out of the loss (``multilabel_loss``); they contribute neither to the value nor to the gradient.
2. **Heavy imbalance.** Some behaviors cover 1 % of the frames. The positive term of the BCE is
   up-weighted per class (``class_weights``) by the square root of the negative/positive ratio,
   capped, so that rare behaviors are learned without flooding the predictions with positives.
3. **Decisions, not scores.** Re-weighting shifts the scores, and an MLP is rarely calibrated.
   After training, on held-out predictions, each class gets a temperature (``temperature_scale``)
   for calibrated probabilities and a decision threshold maximising F1 (``calibrate_thresholds``).
   Behaviors are bouts, not isolated frames, so the per-frame decisions are finally cleaned of
   blips and dropouts shorter than a minimum bout length (``min_bout_filter``).

Thresholds and temperatures must be fitted on data the network weights were *not* trained on
(a validation split of recordings or animals); on training data they are optimistic and
systematically too extreme.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import minimize_scalar
from torch import Tensor, nn

logger = logging.getLogger(__name__)

__all__ = [
    "BehaviorHead",
    "apply_temperature",
    "calibrate_thresholds",
    "class_weights",
    "f1_per_class",
    "min_bout_filter",
    "multilabel_loss",
    "run_lengths",
    "temperature_scale",
]

TEMPERATURE_BOUNDS = (0.05, 20.0)


class BehaviorHead(nn.Module):
    """Per-frame multi-label behavior classifier on fused features.

    ``LayerNorm -> Linear(in_dim, hidden) -> GELU -> Dropout -> Linear(hidden, n_classes)``.
    The LayerNorm makes the head insensitive to the overall scale of the fused feature, which
    differs between motion-only frames and frames where a video look was added.

    Parameters
    ----------
    in_dim : int
        Dimension D of the per-frame input feature.
    n_classes : int
        Number C of behaviors (independent binary outputs).
    hidden : int, default 128
        Width of the hidden layer.
    dropout : float, default 0.1
        Dropout probability after the hidden activation (training only).

    Notes
    -----
    Initialisation draws from torch's global generator: seed it (``torch.manual_seed``) before
    constructing the head for reproducible weights.
    """

    def __init__(self, in_dim: int, n_classes: int, hidden: int = 128, dropout: float = 0.1) -> None:
        super().__init__()
        if in_dim < 1 or n_classes < 1 or hidden < 1:
            raise ValueError(f"in_dim, n_classes, hidden must be >= 1, got {in_dim}, {n_classes}, {hidden}")
        self.in_dim = int(in_dim)
        self.n_classes = int(n_classes)
        self.net = nn.Sequential(
            nn.LayerNorm(in_dim),
            nn.Linear(in_dim, hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, n_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        """Score every frame.

        Parameters
        ----------
        x : Tensor, shape (..., in_dim)
            Per-frame features; any leading shape (e.g. (B, T, A) batches, frames, animals).

        Returns
        -------
        Tensor, shape (..., n_classes)
            Logits (apply a sigmoid, or ``apply_temperature``, for probabilities).
        """
        return self.net(x)  # (..., D) -> (..., C)


# --------------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------------


def class_weights(targets: np.ndarray, max_weight: float = 50.0) -> np.ndarray:
    """Positive-class weights for ``BCEWithLogitsLoss(pos_weight=...)``.

    Parameters
    ----------
    targets : ndarray, shape (N, C)
        Per-frame labels in {0, 1}; NaN marks unlabeled entries, which are not counted.
    max_weight : float, default 50.0
        Upper bound on any weight.

    Returns
    -------
    ndarray, shape (C,), float32
        ``min(sqrt(n_neg / n_pos), max_weight)`` per class, floored at 1 (an over-represented
        class is not down-weighted); 1 for classes without any labeled positive.
    """
    y = np.asarray(targets, dtype=np.float64)
    if y.ndim == 1:
        y = y[:, None]
    y = y.reshape(-1, y.shape[-1])  # (N, C)
    labeled = ~np.isnan(y)
    pos = np.where(labeled, y > 0.5, False).sum(axis=0).astype(np.float64)  # (C,)
    neg = labeled.sum(axis=0) - pos  # (C,)
    # Why the square root: the full ratio n_neg/n_pos balances the two terms of the loss exactly,
    # which for a 1 %-behavior is a weight of ~99. With weights that large a handful of (often
    # noisily annotated) positive frames dominate the gradient, the network over-predicts the
    # rare class and training becomes jumpy. The square root (10 for a 1 % class, 3 for a 10 %
    # class) keeps rare classes visible to the optimiser while retaining most of the benefit; the
    # remaining bias in the scores is absorbed by the per-class threshold chosen afterwards
    # (calibrate_thresholds). The cap guards against classes with only one or two positives.
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.sqrt(neg / pos)
    w = np.where(pos > 0, np.clip(w, 1.0, max_weight), 1.0)
    for c in np.flatnonzero(pos == 0):
        logger.debug("class %d has no labeled positive; its pos_weight is 1", c)
    return w.astype(np.float32)


def multilabel_loss(
    logits: Tensor,
    targets: Tensor,
    mask: Tensor | None = None,
    pos_weight: Tensor | None = None,
) -> Tensor:
    """Masked, class-weighted binary cross-entropy over labeled entries.

    Parameters
    ----------
    logits : Tensor, shape (..., C)
        Head outputs.
    targets : Tensor, shape (..., C)
        Labels in {0, 1} (or soft labels in [0, 1]); NaN marks an unlabeled entry.
    mask : Tensor of bool, shape (..., C) or (..., 1), optional
        True where the frame/animal takes part in the loss (e.g. padding and animals that are not
        present are False). Broadcast against ``targets``; None means all True.
    pos_weight : Tensor, shape (C,), optional
        Weight of the positive term per class (``class_weights``).

    Returns
    -------
    Tensor, scalar
        Mean BCE over entries that are both masked-in and labeled. If there is none, a zero that
        still carries a (zero) gradient to ``logits``, so a batch without labels is harmless.
    """
    targets = targets.to(logits.dtype)
    valid = ~torch.isnan(targets)  # (..., C)
    if mask is not None:
        valid = valid & mask.to(torch.bool)
    valid = valid.expand_as(logits)  # (..., C); a (..., 1) mask covers all classes
    n_valid = valid.sum()
    if int(n_valid) == 0:  # zero, connected to the graph, NaN-safe even if logits are not finite
        return torch.where(torch.zeros_like(valid), logits, torch.zeros_like(logits)).sum()
    safe_targets = torch.where(valid, targets, torch.zeros_like(targets))  # no NaN reaches BCE
    if pos_weight is not None:
        pos_weight = torch.as_tensor(pos_weight, dtype=logits.dtype, device=logits.device)
    per_entry = F.binary_cross_entropy_with_logits(
        logits, safe_targets, pos_weight=pos_weight, reduction="none"
    )  # (..., C)
    per_entry = torch.where(valid, per_entry, torch.zeros_like(per_entry))
    return per_entry.sum() / n_valid.to(per_entry.dtype)


# --------------------------------------------------------------------------------------------------
# Calibration on held-out predictions
# --------------------------------------------------------------------------------------------------


def _as_2d(a: np.ndarray, dtype=np.float64) -> np.ndarray:
    a = np.asarray(a, dtype=dtype)
    return a[:, None] if a.ndim == 1 else a.reshape(-1, a.shape[-1])


def calibrate_thresholds(
    probs: np.ndarray,
    targets: np.ndarray,
    *,
    min_positives: int = 5,
    grid: np.ndarray | None = None,
) -> np.ndarray:
    """Per-class decision thresholds that maximise F1 on held-out predictions.

    A frame is predicted positive for class c when ``probs[:, c] >= threshold[c]``.

    Parameters
    ----------
    probs : ndarray, shape (N, C)
        Predicted probabilities (or any monotone score) on a validation set.
    targets : ndarray, shape (N, C)
        Labels in {0, 1}; NaN entries are ignored.
    min_positives : int, default 5
        Classes with fewer labeled positives keep the threshold 0.5: an F1-optimal threshold
        fitted to a handful of frames is noise.
    grid : ndarray, optional
        Candidate thresholds (e.g. ``np.linspace(0.05, 0.95, 19)``). None (default) is exact: all
        cut points between distinct sorted scores are evaluated, and the threshold is placed
        midway between the lowest score predicted positive and the next lower score.

    Returns
    -------
    ndarray, shape (C,), float64

    Notes
    -----
    The thresholds must be chosen on predictions for data that was *not* used to fit the network
    (or the temperatures): on training frames the scores of positives are inflated and the chosen
    thresholds are too high to transfer.
    """
    p = _as_2d(probs)
    y = _as_2d(targets)
    if p.shape != y.shape:
        raise ValueError(f"probs {p.shape} and targets {y.shape} differ in shape")
    n_classes = p.shape[1]
    thresholds = np.full(n_classes, 0.5)
    for c in range(n_classes):
        keep = ~np.isnan(y[:, c]) & np.isfinite(p[:, c])
        s, t = p[keep, c], y[keep, c] > 0.5  # (n,), (n,)
        n_pos = int(t.sum())
        if n_pos < min_positives:
            logger.debug("class %d: %d positives < %d, threshold 0.5", c, n_pos, min_positives)
            continue
        if grid is not None:
            g = np.asarray(grid, dtype=np.float64)  # (G,)
            pred = s[None, :] >= g[:, None]  # (G, n)
            tp = (pred & t[None, :]).sum(axis=1)
            f1 = 2 * tp / (pred.sum(axis=1) + n_pos)  # 2TP / (TP+FP + TP+FN)
            thresholds[c] = g[int(np.argmax(f1))]
            continue
        order = np.argsort(-s, kind="stable")
        s_sorted, t_sorted = s[order], t[order]  # descending scores
        tp = np.cumsum(t_sorted)  # (n,) TP when the top k+1 are predicted positive
        k = np.arange(1, s.size + 1)
        # Only cut after the last of a group of tied scores (a threshold cannot split ties).
        last_of_tie = np.r_[s_sorted[1:] != s_sorted[:-1], True]
        f1 = np.where(last_of_tie, 2 * tp / (k + n_pos), -1.0)
        best = int(np.argmax(f1))
        thresholds[c] = (
            0.5 * (s_sorted[best] + s_sorted[best + 1]) if best + 1 < s.size else s_sorted[best]
        )
    return thresholds


def f1_per_class(pred: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """F1 score of binary predictions per class, ignoring unlabeled entries.

    Parameters
    ----------
    pred : ndarray of bool, shape (N, C)
    targets : ndarray, shape (N, C)
        Labels in {0, 1}; NaN entries are ignored.

    Returns
    -------
    ndarray, shape (C,)
        ``2 TP / (2 TP + FP + FN)``; NaN for a class with no labeled positive and no positive
        prediction (F1 is undefined there, not 0 or 1).
    """
    y = _as_2d(targets)
    yhat = _as_2d(pred, dtype=bool)
    if yhat.shape != y.shape:
        raise ValueError(f"pred {yhat.shape} and targets {y.shape} differ in shape")
    labeled = ~np.isnan(y)
    pos = labeled & (np.nan_to_num(y) > 0.5)
    tp = (yhat & pos).sum(axis=0)
    fp = (yhat & labeled & ~pos).sum(axis=0)
    fn = (~yhat & pos).sum(axis=0)
    denom = 2 * tp + fp + fn
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denom > 0, 2 * tp / np.maximum(denom, 1), np.nan)


def _nll(z: np.ndarray, y: np.ndarray) -> float:
    """Mean binary NLL of logits z for labels y: softplus(z) - y z, computed stably."""
    return float(np.mean(np.logaddexp(0.0, z) - y * z))


def temperature_scale(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Per-class temperatures minimising the held-out binary NLL.

    Calibrated probability of class c: ``sigmoid(logit_c / T_c)``. T > 1 softens an overconfident
    class, T < 1 sharpens an underconfident one; the ranking of frames, hence F1 at a matched
    threshold, is unchanged. Each T_c is found by bounded scalar minimisation (scipy) of the NLL
    over log T in ``log 0.05 .. log 20``.

    Parameters
    ----------
    logits : ndarray, shape (N, C)
        Held-out logits (not the training frames; see the module docstring).
    targets : ndarray, shape (N, C)
        Labels in {0, 1}; NaN entries are ignored.

    Returns
    -------
    ndarray, shape (C,)
        Temperatures; 1 for a class without labeled entries.
    """
    z = _as_2d(logits)
    y = _as_2d(targets)
    if z.shape != y.shape:
        raise ValueError(f"logits {z.shape} and targets {y.shape} differ in shape")
    lo, hi = np.log(TEMPERATURE_BOUNDS[0]), np.log(TEMPERATURE_BOUNDS[1])
    temps = np.ones(z.shape[1])
    for c in range(z.shape[1]):
        keep = ~np.isnan(y[:, c]) & np.isfinite(z[:, c])
        if not keep.any():
            continue
        zc, yc = z[keep, c], y[keep, c]
        res = minimize_scalar(
            lambda log_t: _nll(zc / np.exp(log_t), yc), bounds=(lo, hi), method="bounded",
            options={"xatol": 1e-4},
        )
        temps[c] = float(np.exp(res.x))
        logger.debug("class %d: T=%.3f NLL %.4f -> %.4f", c, temps[c], _nll(zc, yc), res.fun)
    return temps


def apply_temperature(logits: np.ndarray | Tensor, T: np.ndarray | Tensor) -> np.ndarray | Tensor:
    """Calibrated probabilities ``sigmoid(logits / T)``.

    Parameters
    ----------
    logits : ndarray or Tensor, shape (..., C)
    T : ndarray or Tensor, shape (C,)
        Per-class temperatures from ``temperature_scale``.

    Returns
    -------
    ndarray or Tensor, shape (..., C)
        Probabilities, of the same kind (NumPy or torch) as ``logits``.
    """
    if isinstance(logits, Tensor):
        t = torch.as_tensor(T, dtype=logits.dtype, device=logits.device)
        return torch.sigmoid(logits / t)
    z = np.asarray(logits, dtype=np.float64) / np.asarray(T, dtype=np.float64)
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # = sigmoid(z), without overflow warnings


# --------------------------------------------------------------------------------------------------
# Temporal post-processing
# --------------------------------------------------------------------------------------------------


def run_lengths(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run-length encoding of a 1-D sequence.

    Parameters
    ----------
    x : ndarray, shape (T,)

    Returns
    -------
    starts, lengths, values : ndarray, shape (R,) each
        Run r covers ``x[starts[r] : starts[r] + lengths[r]]``, all equal to ``values[r]``.
    """
    x = np.asarray(x)
    if x.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), x[:0]
    change = np.flatnonzero(x[1:] != x[:-1]) + 1
    starts = np.r_[0, change]
    lengths = np.diff(np.r_[starts, x.size])
    return starts, lengths, x[starts]


def min_bout_filter(binary: np.ndarray, min_frames: int) -> np.ndarray:
    """Enforce a minimum bout length on per-frame decisions of one behavior.

    Two steps on the run-length encoding, in this order:

    1. *closing*: negative gaps shorter than ``min_frames`` with positives on **both** sides are
       filled (a bout interrupted by a brief dropout is one bout);
    2. *opening*: positive runs shorter than ``min_frames`` are removed (isolated blips).

    Closing first means a bout fragmented into short pieces by dropouts is reassembled before
    the length test, instead of being deleted piece by piece.

    Parameters
    ----------
    binary : ndarray of bool, shape (T,)
    min_frames : int
        Minimum bout (and gap) length in frames; ``<= 1`` leaves the input unchanged.

    Returns
    -------
    ndarray of bool, shape (T,)
    """
    out = np.asarray(binary, dtype=bool).copy()
    if min_frames <= 1 or out.size == 0:
        return out
    _, lengths, values = run_lengths(out)
    interior = np.zeros(values.size, dtype=bool)
    interior[1:-1] = True  # a gap touching the start or end is not "inside" a bout
    values = values | (interior & (lengths < min_frames))  # 1. closing (fills negative runs)
    out = np.repeat(values, lengths)  # (T,)
    _, lengths, values = run_lengths(out)
    values = values & (lengths >= min_frames)  # 2. opening (drops short positive runs)
    return np.repeat(values, lengths)
