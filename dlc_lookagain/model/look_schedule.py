"""Which frames the decision layer looks at: one budget per recording, spent where the keypoints
leave a decision open.

Method
------
Decoding and describing a frame is the expensive step (milliseconds per frame against
microseconds for keypoint features), so a recording of ``T`` frames gets a budget of
``n ~ k T`` looks (``k`` = ``top_k``, the same count as ``k`` evenly spaced frames). Two
policies spend it:

* ``"uniform"``: every ``1/k``-th frame (:func:`dlc_lookagain.features.appearance.uniform_frames`).
* ``"gate"``: the keypoint-only setting of the decision layer
  (:attr:`~dlc_lookagain.model.decision.DecisionLayer.without_vision`) gives each frame ``t`` and
  animal ``i`` a probability ``p_{t,i,c}`` for every behavior ``c`` with threshold ``theta_c``. A
  look can only change a decision whose probability lies near its threshold, so a frame's
  ambiguity is ::

      a_t = max_{i,c} exp(-|logit p_{t,i,c} - logit theta_c|)      in (0, 1], 1 at a threshold

  (one decode serves every animal of the frame). Frames are placed at evenly spaced quantiles of
  the cumulative density ::

      d_t = u + (1 - u) a_t / mean_t(a)

  so looks are dense where decisions are open and sparse where they are not. The floor ``u``
  spreads that share of the budget evenly: the features of a look are carried to the frames around
  it (``vision_gap_s``), and no stretch of the recording goes unseen for long. Unlike a quota per
  time window, the whole budget can move to the minutes that need it.

Training selects its frames the same way from *out-of-fold* keypoint-only probabilities (what the
gate sees on a recording it was not trained on), so the trees learn from the schedule they meet
(:func:`dlc_lookagain.project_training.train`).
"""

from __future__ import annotations

import numpy as np

__all__ = ["POLICIES", "DEFAULT_POLICY", "GATE_FLOOR", "ambiguity", "gated_frames", "look_frames",
           "frames_for_layer", "training_frames"]

#: Look policies.
POLICIES: tuple[str, ...] = ("uniform", "gate")
#: What ``train`` uses unless told otherwise: the gate ties with evenly spaced frames at the default
#: budget (25 %) and wins only at very small budgets on videos like the labeled ones
#: (docs/benchmarks.md, vision-accuracy sections), so evenly spaced frames stay the default.
DEFAULT_POLICY = "uniform"
#: Share of the budget spread evenly by the gate.
GATE_FLOOR = 0.25
_EPS = 1e-4


def ambiguity(proba: np.ndarray, thresholds: np.ndarray, behaviors: np.ndarray | None = None) -> np.ndarray:
    """How open each frame's decisions are: ``(T,)`` in [0, 1], 1 where a probability sits on its threshold.

    Parameters
    ----------
    proba : np.ndarray
        ``(T, I, C)`` probabilities as the thresholds see them (smoothed, pooled); NaN where an
        animal is not tracked (such entries count as 0).
    thresholds : np.ndarray
        ``(C,)``.
    behaviors : np.ndarray, optional
        bool ``(C,)``: only these behaviors count (default: all).
    """
    p = np.clip(np.asarray(proba, np.float64), _EPS, 1 - _EPS)
    theta = np.clip(np.asarray(thresholds, np.float64), _EPS, 1 - _EPS)
    # (T, I, C): distance to the threshold in log-odds
    distance = np.abs(np.log(p / (1 - p)) - np.log(theta / (1 - theta))[None, None, :])
    a = np.exp(-distance)
    a[np.isnan(a)] = 0.0
    if behaviors is not None:
        a = a[..., np.asarray(behaviors, bool)]
    if a.shape[1] == 0 or a.shape[2] == 0:
        return np.zeros(a.shape[0])
    return a.max(axis=(1, 2))


def gated_frames(score: np.ndarray, n: int, floor: float = GATE_FLOOR) -> np.ndarray:
    """``n`` frames at evenly spaced quantiles of the density ``floor + (1 - floor) score / mean(score)``.

    Parameters
    ----------
    score : np.ndarray
        ``(T,)`` non-negative (:func:`ambiguity`).
    n : int
        Budget (frames).
    floor : float
        Share of the budget spread evenly (1 = evenly spaced frames).

    Returns
    -------
    np.ndarray
        int64, sorted, unique, ``min(n, T)`` frames.
    """
    score = np.nan_to_num(np.asarray(score, np.float64), nan=0.0).clip(min=0.0)
    t = score.shape[0]
    n = int(min(max(n, 0), t))
    if n == 0:
        return np.zeros(0, np.int64)
    mean = score.mean()
    density = np.full(t, 1.0) if mean <= 0 else floor + (1.0 - floor) * score / mean
    cumulative = np.cumsum(density)
    targets = (np.arange(n) + 0.5) * cumulative[-1] / n
    frames = np.unique(np.searchsorted(cumulative, targets).clip(0, t - 1))
    if frames.size < n:
        # A frame denser than one look per frame took several quantiles: the rest of the budget
        # goes to the densest frames not yet chosen.
        free = np.ones(t, bool)
        free[frames] = False
        order = np.argsort(-density[free], kind="stable")
        frames = np.sort(np.concatenate([frames, np.flatnonzero(free)[order[: n - frames.size]]]))
    return frames.astype(np.int64)


def look_frames(policy: str, n_frames: int, fraction: float, *, proba: np.ndarray | None = None,
                thresholds: np.ndarray | None = None, behaviors: np.ndarray | None = None,
                floor: float = GATE_FLOOR) -> np.ndarray:
    """The frames to look at in a recording of ``n_frames`` frames under ``policy``.

    Both policies spend the same budget (the number of evenly spaced frames at ``fraction``). The
    gate needs ``proba`` ``(T, I, C)`` and ``thresholds`` of the keypoint-only setting; without
    them it falls back to evenly spaced frames.
    """
    from dlc_lookagain.features.appearance import uniform_frames

    if policy not in POLICIES:
        raise ValueError(f"unknown look policy {policy!r}; choose from {', '.join(POLICIES)}")
    if fraction <= 0 or n_frames <= 0:
        return np.zeros(0, np.int64)
    uniform = uniform_frames(n_frames, min(float(fraction), 1.0))
    if policy == "uniform" or proba is None or thresholds is None or uniform.size >= n_frames:
        return uniform.astype(np.int64)
    if proba.shape[0] != n_frames:
        raise ValueError(f"{proba.shape[0]} frames of probabilities for a recording of {n_frames}")
    return gated_frames(ambiguity(proba, thresholds, behaviors), uniform.size, floor)


def frames_for_layer(policy: str, keypoints_only, raw_proba: np.ndarray | None, fraction: float,
                     fps: float) -> np.ndarray:
    """The frames to look at, from the keypoint-only decision layer's raw probabilities.

    ``keypoints_only`` is a :class:`~dlc_lookagain.model.decision.DecisionLayer` that reads no
    vision; ``raw_proba`` ``(T, I, C)`` its :meth:`predict_proba` output on a recording (or, in
    training, its out-of-fold probabilities), smoothed and pooled here as its thresholds expect.
    """
    if raw_proba is None:
        raise ValueError("the gate needs the keypoint-only probabilities")
    proba = keypoints_only.smooth(raw_proba, fps) if policy == "gate" else None
    return look_frames(policy, raw_proba.shape[0], fraction, proba=proba, thresholds=keypoints_only.thresholds)


def training_frames(policy: str, samples, behaviors, names, groups, fraction: float, **fit) -> list[np.ndarray]:
    """The frames of each labeled recording to look at in training, chosen as ``analyze`` will choose them.

    ``samples`` are :class:`~dlc_lookagain.model.decision.LabeledFeatures` without the vision group.
    ``"gate"``: from the out-of-fold probabilities of the keypoint-only layer (fitted here with
    ``fit``; pass a ``cache`` there and the full fit reuses this cross-validation), i.e. what the
    gate sees on a recording its models were not trained on.
    """
    from dlc_lookagain.model.decision import fit_decision_layer

    if policy == "uniform":
        return [look_frames("uniform", s.features.shape[0], fraction) for s in samples]
    keypoints_only = fit_decision_layer(samples, behaviors, names, groups=groups, **fit)
    return [frames_for_layer(policy, keypoints_only, oof, fraction, s.fps)
            for s, oof in zip(samples, keypoints_only.oof_proba)]
