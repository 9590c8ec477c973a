"""Decision thresholds chosen again for a project lacking a training bodypart, from the training
poses kept in the model.

A project that lacks a bodypart the model was trained with gets it placed where the training
animals had it (:func:`dlc_lookagain.features.skeleton.place_missing_parts`: a rigid guess whose own
movement is unknown). Trees trained on the real part then read the guess, whose features have other
statistics (it moves rigidly with the parts it is placed from), and thresholds chosen for the real
part no longer fit. So thresholds, minimum bouts, smoothing and pooling are chosen again
by the training run's cross-validation, with every held-out frame scored from the pose the project
will give (part removed, then placed).

So :func:`dlc_lookagain.train` keeps the labeled poses in the model (:class:`TrainingPoses`: float32
keypoints and likelihoods and the 0/1 labels; about 0.2 MB per labeled animal-minute at 30 fps with
10 bodyparts) and ``analyze`` recalibrates once per run and skeleton, reporting the cross-validated
F1 on that skeleton. Measured over 3 seeds (docs/benchmarks.md, "A changed skeleton"; mean change
of pooled F1 against the full skeleton, training thresholds -> chosen again): BehaviorDEPOT freezing
without the nose -0.032 -> +0.010, without the tail +0.007 -> +0.007; ethome interact without the
nose -0.051 -> -0.040, without the tail -0.111 -> -0.014. Trees trained again on the bodyparts the
project has (no placing) lost -0.045, -0.005, -0.025 and -0.048: better only for the ethome nose,
inside the seed spread (0.02), at the cost of a full training run, so they are not used.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field

import numpy as np

from dlc_lookagain.io.record import PoseRecord

logger = logging.getLogger(__name__)

__all__ = ["TrainingPoses", "recalibrate_for_bodyparts"]


@dataclass
class TrainingPoses:
    """The labeled poses a decision layer was trained on.

    Attributes
    ----------
    records : list of PoseRecord
        Keypoints ``(T, I, B, 2)`` and confidence ``(T, I, B)``, float32, training bodypart names.
    present : list of np.ndarray
        bool ``(T, I, C)`` per record.
    annotated : list of np.ndarray
        bool ``(T, I)`` per record.
    folds : int
        Cross-validation folds of the training run.
    rounds : int
        Boosting rounds of the training run.
    """

    records: list[PoseRecord]
    present: list[np.ndarray]
    annotated: list[np.ndarray]
    folds: int = 5
    rounds: int = 200
    _refits: dict = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict:
        """Tensors and plain types only: ``torch.load(weights_only=True)`` reads it back."""
        import torch

        return {
            "folds": int(self.folds),
            "rounds": int(self.rounds),
            "recordings": [
                {"name": r.source.name if r.source else f"recording{k}", "fps": float(r.fps),
                 "bodyparts": list(map(str, r.bodyparts)), "individuals": list(map(str, r.individuals)),
                 "keypoints": torch.from_numpy(np.ascontiguousarray(r.keypoints, dtype=np.float32)),
                 "confidence": torch.from_numpy(np.ascontiguousarray(r.confidence, dtype=np.float32)),
                 "present": torch.from_numpy(np.ascontiguousarray(p, dtype=np.uint8)),
                 "annotated": torch.from_numpy(np.ascontiguousarray(a, dtype=np.uint8))}
                for k, (r, p, a) in enumerate(zip(self.records, self.present, self.annotated))
            ],
        }

    @classmethod
    def from_dict(cls, blob: dict, n_behaviors: int) -> TrainingPoses:
        """Rebuild from :meth:`to_dict`; raises ValueError on anything inconsistent (a model file is
        untrusted input)."""
        from pathlib import Path

        records, present, annotated = [], [], []
        for item in blob["recordings"]:
            kp = np.asarray(item["keypoints"].numpy(), dtype=np.float32)
            conf = np.asarray(item["confidence"].numpy(), dtype=np.float32)
            p = np.asarray(item["present"].numpy()).astype(bool)
            a = np.asarray(item["annotated"].numpy()).astype(bool)
            parts, animals = [str(b) for b in item["bodyparts"]], [str(i) for i in item["individuals"]]
            t = kp.shape[0]
            if (kp.ndim != 4 or kp.shape[1:] != (len(animals), len(parts), 2) or conf.shape != kp.shape[:3]
                    or p.shape != (t, len(animals), n_behaviors) or a.shape != (t, len(animals))):
                raise ValueError("training poses: arrays of inconsistent shapes")
            fps = float(item["fps"])
            if not np.isfinite(fps) or fps <= 0:
                raise ValueError(f"training poses: frame rate {fps}")
            records.append(PoseRecord(keypoints=kp, confidence=conf, individuals=animals, bodyparts=parts,
                                      fps=fps, source=Path(str(item["name"]))))
            present.append(p)
            annotated.append(a)
        rounds = int(blob.get("rounds", 200))
        if not 1 <= rounds <= 100_000:
            raise ValueError(f"training poses: {rounds} boosting rounds")
        return cls(records, present, annotated, folds=int(blob.get("folds", 5)), rounds=rounds)

    @property
    def bodyparts(self) -> list[str]:
        return list(self.records[0].bodyparts) if self.records else []


def _restricted(record: PoseRecord, bodyparts: list[str]) -> PoseRecord:
    keep = [record.bodyparts.index(b) for b in bodyparts]
    return dataclasses.replace(record, keypoints=record.keypoints[:, :, keep],
                               confidence=record.confidence[:, :, keep], bodyparts=list(bodyparts), skeleton=[])


def recalibrate_for_bodyparts(layer, poses: TrainingPoses, bodyparts: list[str], *, source: str = "",
                              progress: bool = False):
    """The decision layer with thresholds, bouts and smoothing chosen again for a project that has
    only ``bodyparts``, the others placed.

    Cross-validation on the training poses as in training, but every held-out frame is scored from
    the pose the project will give: the missing parts removed, then placed from the others
    (:func:`dlc_lookagain.features.skeleton.place_missing_parts`). The trees still learn from the
    full skeleton.

    Parameters
    ----------
    layer : DecisionLayer
        The trained layer (its behaviors, LightGBM settings and skeleton profile are kept).
    poses : TrainingPoses
        Its training poses.
    bodyparts : list of str
        Training bodypart names the project has.
    source : str
        Recording name for the log.

    Returns
    -------
    DecisionLayer
        Bank features only (the motion encoder reads the training skeleton, and the training poses
        carry no pixels: a behavior that read vision decides from keypoints here); cached per bodypart
        set, so a batch fits once. Its ``cv_f1`` is what to expect on this skeleton.
    """
    from dlc_lookagain.features.bank import feature_bank
    from dlc_lookagain.features.skeleton import place_missing_parts
    from dlc_lookagain.model.decision import LabeledFeatures, fit_decision_layer
    from dlc_lookagain.model.frame_features import align_columns

    key = tuple(sorted(bodyparts))
    if key in poses._refits:
        return poses._refits[key]
    missing = [b for b in poses.bodyparts if b not in bodyparts]
    logger.warning("%s: the model was trained with %s, which this project lacks; they are placed from the other "
                   "bodyparts, and the decision thresholds chosen again for such poses by cross-validation on the "
                   "training poses kept in the model (once per run and skeleton)", source or "recording",
                   ", ".join(missing))
    t0 = time.perf_counter()
    samples = []
    for rec, present, annotated in zip(poses.records, poses.present, poses.annotated):
        x, names = feature_bank(rec, fps=rec.fps)
        guess = place_missing_parts(_restricted(rec, [b for b in rec.bodyparts if b in bodyparts]), layer.skeleton)
        placed, placed_names = feature_bank(guess, fps=rec.fps)
        samples.append(LabeledFeatures(x, present, annotated, float(rec.fps), rec.source.name,
                                       scored=align_columns(placed, placed_names, names, rec.source.name)))
    params = {k: v for k, v in layer.params.items() if k != "seed"}
    refit = fit_decision_layer(samples, layer.behaviors, names, k=poses.folds, params=params, rounds=poses.rounds,
                               seed=int(layer.params.get("seed", 0)), progress=progress)
    refit.skeleton = dict(layer.skeleton)
    logger.warning("%s: thresholds chosen again in %.0f s; cross-validated F1 on this skeleton: %s (trained "
                   "skeleton: %s)", source or "recording", time.perf_counter() - t0,
                   ", ".join(f"{b} {v:.3f}" for b, v in zip(layer.behaviors, refit.cv_f1) if np.isfinite(v)),
                   ", ".join(f"{b} {v:.3f}" for b, v in zip(layer.behaviors, layer.cv_f1) if np.isfinite(v)))
    poses._refits[key] = refit
    return refit
