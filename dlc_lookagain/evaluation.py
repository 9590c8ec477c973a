"""``dlc_lookagain.evaluate``: how well a model's behavior decisions match a lab's own labels.

Every recording with a label file (found as for :func:`dlc_lookagain.train`) is analyzed in
memory, exactly as ``analyze`` would (same gate, same ``top_k``, same thresholds), and compared
frame by frame with the labels on the annotated frames of tracked animals. Nothing is written
beside the pose files; the scores go to ``<project>/lookagain/evaluation/``.

Behaviors are multi-label, so the main scores are per behavior (precision, recall, F1 over
animal-frames). The confusion matrix is single-label: the predicted label is the ``label``
column of the behavior table (most probable present behavior, or ``none``); the true label is
the labeled behavior, and on frames with several labeled behaviors the predicted one when it is
among them, else the first.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from dlc_lookagain.io.annotations import NO_LABEL
from dlc_lookagain.io.paths import atomic_path

logger = logging.getLogger(__name__)

__all__ = ["EvaluationReport", "evaluate", "score_predictions", "trained_on"]


@dataclass
class EvaluationReport:
    """Scores of a model against labels.

    Attributes
    ----------
    per_behavior : pandas.DataFrame
        One row per behavior: ``behavior``, ``labeled_frames`` (positives), ``predicted_frames``,
        ``true_positives``, ``precision``, ``recall``, ``f1`` (NaN where undefined: no positive
        labeled and none predicted).
    confusion : pandas.DataFrame
        Counts of animal-frames, true label (rows) by predicted label (columns), ``none`` included.
    macro_f1 : float
        Mean F1 over behaviors where it is defined.
    recordings : list of dict
        Per recording: pose file, label file, annotated animal-frames, fraction looked at.
    paths : dict of str to Path
        Files written (``per_behavior``, ``confusion``, ``summary``), empty when nothing was written.
    """

    per_behavior: pd.DataFrame
    confusion: pd.DataFrame
    macro_f1: float
    recordings: list = field(default_factory=list)
    paths: dict = field(default_factory=dict)

    def __str__(self) -> str:
        lines = [f"macro F1 {self.macro_f1:.3f} over {len(self.per_behavior)} behavior(s), "
                 f"{len(self.recordings)} recording(s)"]
        lines.append(self.per_behavior.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
        lines.append("confusion (rows: labeled, columns: predicted):")
        lines.append(self.confusion.to_string())
        return "\n".join(lines)


def _single_label(present: np.ndarray, order: np.ndarray | None, prefer: np.ndarray | None) -> np.ndarray:
    """Index per row (C = none) from multi-label flags; ``prefer`` picks among several."""
    n, c = present.shape
    out = np.full(n, c, np.int64)
    if order is not None:  # predicted: the most probable present behavior
        masked = np.where(present, order, -np.inf)
        has = present.any(1)
        out[has] = masked[has].argmax(1)
        return out
    has = present.any(1)
    out[has] = present[has].argmax(1)  # first labeled behavior
    if prefer is not None:
        ok = (prefer < c) & present[np.arange(n), np.minimum(prefer, c - 1)]
        out[ok] = prefer[ok]
    return out


def score_predictions(behaviors: list[str], pred: np.ndarray, probs: np.ndarray, truth: np.ndarray
                      ) -> tuple[pd.DataFrame, pd.DataFrame, float]:
    """Per-behavior scores and the confusion matrix of flat multi-label arrays.

    Parameters
    ----------
    behaviors : list of str
        C names.
    pred, truth : ndarray of bool, shape (N, C)
        Predicted and labeled presence on N animal-frames.
    probs : ndarray, shape (N, C)
        Probabilities (choose the predicted single label).
    """
    pred = np.asarray(pred, bool)
    truth = np.asarray(truth, bool)
    tp = (pred & truth).sum(0)
    n_pred = pred.sum(0)
    n_true = truth.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(n_pred > 0, tp / np.maximum(n_pred, 1), np.nan)
        recall = np.where(n_true > 0, tp / np.maximum(n_true, 1), np.nan)
        denom = n_pred + n_true
        f1 = np.where(denom > 0, 2 * tp / np.maximum(denom, 1), np.nan)
    per = pd.DataFrame({"behavior": behaviors, "labeled_frames": n_true, "predicted_frames": n_pred,
                        "true_positives": tp, "precision": precision, "recall": recall, "f1": f1})
    p_label = _single_label(pred, np.nan_to_num(probs, nan=-1.0), None)
    t_label = _single_label(truth, None, p_label)
    names = [*behaviors, NO_LABEL]
    c = len(names)
    counts = np.bincount(t_label * c + p_label, minlength=c * c).reshape(c, c)
    confusion = pd.DataFrame(counts, index=pd.Index(names, name="labeled"),
                             columns=pd.Index(names, name="predicted"))
    defined = f1[np.isfinite(f1)]
    return per, confusion, float(defined.mean()) if defined.size else float("nan")


def _write(report: EvaluationReport, folder: Path, name: str, summary: dict) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"per_behavior": folder / f"{name}_per_behavior.csv",
             "confusion": folder / f"{name}_confusion.csv",
             "summary": folder / f"{name}.json"}
    with atomic_path(paths["per_behavior"], overwrite=True) as tmp:
        report.per_behavior.to_csv(tmp, index=False, float_format="%.4f")
    with atomic_path(paths["confusion"], overwrite=True) as tmp:
        report.confusion.to_csv(tmp)
    with atomic_path(paths["summary"], overwrite=True) as tmp:
        Path(tmp).write_text(json.dumps(summary, indent=2, sort_keys=True, default=str) + "\n")
    return paths


def trained_on(label_file, manifest: dict) -> bool:
    """Whether a model was trained on ``label_file``: the same file (paths compared resolved) or the
    same content (``label_sha256`` of the manifest), so copies and moved projects are recognised."""
    from dlc_lookagain.io.ledger import file_sha256

    label_file = Path(label_file)
    if label_file.resolve() in {Path(p).resolve() for p in manifest.get("label_files", [])}:
        return True
    hashes = set(manifest.get("label_sha256", []))
    return bool(hashes) and label_file.is_file() and file_sha256(label_file) in hashes


def evaluate(config_path, labels=None, *, videos=None, model=None, top_k: float = 0.25, write: bool = True,
             fps: float | None = None, progress: bool = True) -> EvaluationReport:
    """Score a model against your own labels, as ``analyze`` would run it.

    Parameters
    ----------
    config_path : str or Path
        DeepLabCut ``config.yaml`` / project folder, or a single DLC or SLEAP pose file.
    labels : None, folder, file or dict
        Where the annotations are, as for :func:`dlc_lookagain.train` (default: beside the videos
        and pose files). Recordings without labels are left out (logged).
    videos : list, optional
        Only these videos.
    model : path or LookAgainModel, optional
        Default: the model ``analyze`` would use (newest trained for the project, else bundled).
    top_k : float
        Fraction of frames looked at, as in ``analyze``.
    fps : float, optional
        Frame rate of the recordings (see :func:`dlc_lookagain.train`).
    write : bool
        Write ``<project>/lookagain/evaluation/<model>_top<k>_per_behavior.csv``, ``_confusion.csv``
        and ``.json`` (``<model>_keypoints_...`` when no frame was looked at: ``top_k=0``, a model
        that decides from keypoints, or no video).

    Returns
    -------
    EvaluationReport

    Notes
    -----
    A recording whose label file the model was trained on (by path or content, see
    :func:`trained_on`) is scored with a warning naming it. Score on recordings the model was not
    trained on: ``train`` keeps the last quarter of each
    labeled recording out of training, but evaluating on a training video measures memory, not
    generalisation.
    """
    from dlc_lookagain.errors import PoseFormatError
    from dlc_lookagain.io.labels import read_labels
    from dlc_lookagain.io.record import resolve_fps
    from dlc_lookagain.model.feature_cache import FeatureCache
    from dlc_lookagain.pipeline import check_top_k, predict_recording, read_inputs, resolve_model
    from dlc_lookagain.model_store import project_folder
    from dlc_lookagain.project_training import find_label_file

    top_k = check_top_k(top_k)
    records = read_inputs(config_path, videos, progress=progress)
    net, manifest = resolve_model(config_path, model)
    model_behaviors = list(net.config.behaviors)
    folder = project_folder(config_path)
    cache = FeatureCache(folder / "lookagain" / "vision-cache")
    preds, probs, truths, recordings, extractor = [], [], [], [], None
    shared: list[str] | None = None
    for rec in records:
        label_file = find_label_file(rec, labels)
        if label_file is None:
            logger.info("%s: no label file found; not evaluated", rec.source.name)
            continue
        lab = read_labels(label_file, n_frames=rec.n_frames, fps=fps or rec.fps, individuals=rec.individuals)
        if trained_on(label_file, manifest):
            logger.warning("%s: the model %s was trained on this recording (its labels %s); the score here "
                           "measures memory, not how it does on a new recording (the manifest's cv_f1 does "
                           "that)", rec.source.name, Path(manifest.get("path") or "model").name, label_file.name)
        common = [b for b in model_behaviors if b in lab.behaviors]
        missing = [b for b in lab.behaviors if b not in model_behaviors]
        if missing:
            logger.warning("%s: behavior(s) %s are not in the model; not scored", label_file.name, missing)
        if not common:
            raise PoseFormatError(label_file, f"none of its behaviors {lab.behaviors} is one the model knows "
                                  f"({model_behaviors}); train a model on these labels first")
        shared = common if shared is None else [b for b in shared if b in common]
        prediction, extractor = predict_recording(rec, net, top_k, extractor=extractor, cache=cache,
                                                  progress=progress, fps=resolve_fps(rec, fps, label_fps=lab.fps),
                                                  movement_states_out_of_domain=False)  # score the model itself
        rows = lab.annotated & ~np.isnan(prediction.probabilities[..., 0])  # (T, I)
        idx = [model_behaviors.index(b) for b in common]
        lab_idx = [lab.behaviors.index(b) for b in common]
        preds.append((common, prediction.present[rows][:, idx]))
        probs.append(prediction.probabilities[rows][:, idx])
        truths.append(lab.present[rows][:, lab_idx])
        recordings.append({"pose_file": str(rec.source), "label_file": str(label_file),
                           "annotated_animal_frames": int(rows.sum()),
                           "looked_fraction": float(prediction.looked.mean())})
    if not recordings:
        from dlc_lookagain.project_training import LABEL_SUFFIXES

        raise FileNotFoundError(f"no label files found for the recordings of {config_path} (looked for "
                                f"<video>{', <video>'.join(LABEL_SUFFIXES)} beside videos and pose files)")
    # Score the behaviors every label file has, in the model's order.
    cols = lambda common: [common.index(b) for b in shared]  # noqa: E731
    pred = np.concatenate([p[:, cols(c)] for c, p in preds])
    prob = np.concatenate([q[:, cols(c)] for (c, _), q in zip(preds, probs)])
    truth = np.concatenate([t[:, cols(c)] for (c, _), t in zip(preds, truths)])
    per, confusion, macro = score_predictions(shared, pred, prob, truth)
    report = EvaluationReport(per, confusion, macro, recordings)
    keypoints_only = not any(r["looked_fraction"] > 0 for r in recordings)
    if keypoints_only and top_k > 0:
        logger.info("no frame was looked at (a model that decides from keypoints, or no video): the scores "
                    "are those of keypoints only, whatever top_k")
    model_name = Path(manifest.get("path") or "model").stem
    name = f"{model_name}_" + ("keypoints" if keypoints_only else f"top{int(round(100 * top_k))}")
    if write:
        clean = per.astype(object).where(per.notna(), None)  # NaN is not JSON
        summary = {"model": manifest.get("path"), "top_k": float(top_k), "keypoints_only": keypoints_only,
                   "macro_f1": macro if np.isfinite(macro) else None,
                   "recordings": recordings, "per_behavior": clean.to_dict(orient="records")}
        report.paths = _write(report, folder / "lookagain" / "evaluation", name, summary)
    logger.info("macro F1 %.3f over %d behavior(s) on %d recording(s)", macro, len(shared), len(recordings))
    return report
