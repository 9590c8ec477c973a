"""Keypoint-only baselines on the two public recordings that have human per-frame behavior labels.

Usage::

    python benchmarks/real_labels.py [--folds 5] [--methods speed-threshold simba-forest] [-v]

Datasets (read from ``../shared/data`` beside the repository, or ``$DLC_LOOKAGAIN_SHARED``; nothing
is copied into the repository):

* ``behaviordepot-demo1``: BehaviorDEPOT demo 1, one mouse in fear conditioning, DLC csv with 8
  bodyparts, 6000 frames at 50 fps, human ``Freezing`` vector (every frame annotated).
* ``ethome``: ethome test session, two mice (``adult``, ``juvenile``), maDLC csv with 7 bodyparts
  each, 5700 frames at 30 fps, BORIS ``interact`` bouts for subject ``adult`` only. The labels are
  aligned to the pose individuals, so only the adult's rows are annotated: methods are trained and
  scored on the adult's rows, while its social features are computed against the juvenile.

Neither pose file stores its frame rate; it is taken from the label files (BehaviorDEPOT
``Params.mat`` 50 fps, BORIS ``FPS`` 30), which match the provenance notes.

Methods (rows):

* ``speed-threshold``: BehaviorDEPOT-style immobility rule, rolling median (0.5 s) of the
  body-length-normalized keypoint-centroid speed below a threshold that maximizes F1 on the
  training frames. Freezing only (no row for ``interact``).
* ``speed-threshold-head``: the same rule on the head keypoint (first bodypart named
  nose/snout/head). Added after a whole-recording check on demo1 showed the nose separates
  freezing better than the centroid (tail and leg keypoints jitter); its threshold is still
  learned per training fold, but the choice of keypoint was made after looking at all frames.
* ``simba-forest``: :class:`baselines.SimbaForest` on :func:`baselines.keypoint_features`;
  decision threshold and minimum bout length (0 included) chosen by an inner blocked CV on the
  training frames. ``--methods simba-forest-nobouts`` runs it with the threshold only.
* ``lookagain-keypoints``: our model's keypoint-only path (look budget 0; the videos are not
  used), :mod:`lookagain_real`: per fold, the bundled weights (trained on generated data) get a
  new behavior head and are trained on the fold's training frames with early stopping on the last
  20 % of them, which also calibrate the decision threshold. No pretraining; the settings and
  their reasons are in that module's docstring. It takes most of the run's time (~1 min per fold
  on 2 shared CPU cores); ``--methods speed-threshold speed-threshold-head simba-forest`` leaves
  it out.

Protocol: ``k``-fold blocked cross-validation in time (contiguous test blocks, 1 s left out on
each side so that no training frame's feature window reaches into the test block). Per fold,
binary precision/recall/F1 on the annotated test frames; the table gives mean +- sample std over
the folds where F1 is defined (a fold with no positive frame and no predicted one has none), the
F1 of all folds' test predictions pooled, positive/annotated frames, and the summed wall time of
the method over all folds (the shared feature extraction is timed once per dataset and reported
separately).

Adding a method (as ``lookagain-keypoints`` is added in :func:`main_methods`)::

    from real_labels import Fold, Prediction, default_methods, run

    def my_method(fold: Fold) -> Prediction:
        model = train(fold.record, fold.features, fold.train_present, fold.train_annotated)
        proba = model.predict(fold.record)               # (T, I, C) for every frame
        return Prediction(proba, proba >= model.threshold)

    table = run({**default_methods(), "dlc_lookagain": my_method})
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

try:  # imported as part of a package (``benchmarks.real_labels``)
    from . import baselines
except ImportError:  # run as a script or imported with benchmarks/ on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import baselines

from dlc_lookagain.io import load_pose
from dlc_lookagain.io.labels import BehaviorLabels, read_labels
from dlc_lookagain.io.record import PoseRecord

logger = logging.getLogger("real_labels")

REPO_ROOT = Path(__file__).resolve().parents[1]
SEED = 0
#: Behavior names (lowercase substrings) that the immobility rule applies to.
IMMOBILITY_WORDS = ("freez", "immob")
#: The forest trains on every n-th frame of a several-session dataset (see :func:`forest_method`).
FOREST_STRIDE = 3


@dataclass(frozen=True)
class DatasetSpec:
    """Where one labeled recording (or several sessions: ``sessions``) lives in the shared data folder.

    A dataset of several sessions is scored leave-one-session-out instead of by blocked folds.
    ``fps`` is used when neither the pose nor the label file gives one.
    """

    pose: str
    labels: str
    note: str
    sessions: tuple[tuple[str, str], ...] = ()
    fps: float | None = None


DATASETS: dict[str, DatasetSpec] = {
    "behaviordepot-demo1": DatasetSpec(
        pose="behaviordepot/demo/demo1/demo1_tracking.csv",
        labels="behaviordepot/demo/demo1/hB_demo1_manual_annotations.mat.mat",
        note="1 mouse, human Freezing vector, all frames annotated",
    ),
    "ethome": DatasetSpec(
        pose="ethome/tests/data/dlc/e3v813a-20210610T122332-122642DLC_dlcrnetms5_pilot_studySep24shuffle1"
        "_100000_el_filtered.csv",
        labels="ethome/tests/data/boris/e3v813a-20210610T122332-122642_reencode.csv",
        note="2 mice; BORIS interact labels for subject adult only -> scored on the adult's rows, "
        "social features use the juvenile",
    ),
    "rat-aggression": DatasetSpec(
        pose="", labels="",
        sessions=tuple(
            (f"rat_aggression/dlc_csv/{n}DLC_dlcrnetms5_DLC_ratJan24shuffle1_5000_el_filtered.csv",
             f"rat_aggression/annotations/{n}_annot.txt") for n in (1, 8, 24, 40)),
        fps=30.0,
        note="2 rats, 4 sessions, leave-one-session-out; Caltech Behavior Annotator bouts (dyadic: both "
        "rats get the session's label); fps undocumented, 30 assumed as the source's code does",
    ),
}


@dataclass(frozen=True)
class Dataset:
    """A loaded recording with labels aligned to its individuals and frames."""

    name: str
    record: PoseRecord
    labels: BehaviorLabels
    note: str
    segments: tuple[int, ...] = ()  # first frame of every session after the first (several sessions)


@dataclass(frozen=True)
class Fold:
    """Everything a method may use for one cross-validation fold.

    Labels of test frames are hidden: ``train_present``/``train_annotated`` are the dataset labels
    with every frame outside ``train`` set to unannotated. Inputs (record, features) cover the
    whole recording because the method must return a prediction for every frame; only test
    frames are scored.

    Attributes
    ----------
    dataset : str
    index : int
        Fold number, 0-based.
    record : PoseRecord
        The whole recording (fps set), keypoints ``(T, I, B, 2)``; ``video_path`` is None here.
    features : np.ndarray
        ``baselines.keypoint_features(record)``, float32 ``(T, I, F)``; free to ignore.
    feature_names : list of str
    behaviors : list of str
        The C behaviors, in the order of the last axis of labels and predictions.
    individuals : list of str
    train_present : np.ndarray
        bool ``(T, I, C)``, False outside training frames.
    train_annotated : np.ndarray
        bool ``(T, I)``: labeled training frames (train with these only).
    train, test : np.ndarray
        bool ``(T,)`` frame masks; neither covers the gaps between them.
    """

    dataset: str
    index: int
    record: PoseRecord
    features: np.ndarray
    feature_names: list[str]
    behaviors: list[str]
    individuals: list[str]
    train_present: np.ndarray
    train_annotated: np.ndarray
    train: np.ndarray
    test: np.ndarray
    segments: tuple[int, ...] = ()


class Prediction(NamedTuple):
    """A method's output for every frame of the recording.

    ``proba`` float ``(T, I, C)`` in [0, 1]; a behavior the method does not handle is all NaN (it
    then gets no row). ``decision`` bool ``(T, I, C)``, or None for ``proba >= 0.5``.
    """

    proba: np.ndarray
    decision: np.ndarray | None = None


#: A method maps one fold to per-frame predictions (a Prediction, or a bare proba array).
Method = Callable[[Fold], "Prediction | np.ndarray"]


# ----------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------


def shared_data_dir() -> Path | None:
    """``$DLC_LOOKAGAIN_SHARED`` or ``<repo>/../shared/data`` if it exists, else None."""
    path = Path(os.environ.get("DLC_LOOKAGAIN_SHARED", REPO_ROOT.parent / "shared" / "data"))
    return path if path.is_dir() else None


def load_dataset(name: str, shared: Path) -> Dataset:
    """Read one of :data:`DATASETS`; the record's fps comes from the label file when missing.

    Sessions of a several-session dataset are joined along time into one record (same animals and
    bodyparts); ``Dataset.segments`` says where each session starts, and every method must compute
    its features per session (:func:`per_session`).
    """
    spec = DATASETS[name]
    pairs = spec.sessions or ((spec.pose, spec.labels),)
    records, label_sets = [], []
    for pose, labels_file in pairs:
        record = load_pose(shared / pose, video=False)
        labels = read_labels(shared / labels_file, n_frames=record.n_frames, fps=record.fps,
                             individuals=record.individuals)
        if record.fps is None:
            fps = labels.fps or spec.fps
            if fps is None:
                raise ValueError(f"{name}: neither the pose nor the label file gives the frame rate")
            logger.info("%s: pose file has no fps; using %.4g fps (%s)", name, fps,
                        "label file" if labels.fps else "dataset note")
            record = dataclasses.replace(record, fps=fps)
        records.append(record)
        label_sets.append(labels)
    if len(records) == 1:
        return Dataset(name, records[0], label_sets[0], spec.note)
    first = records[0]
    for r, lab in zip(records, label_sets):
        if r.individuals != first.individuals or r.bodyparts != first.bodyparts:
            raise ValueError(f"{name}: sessions differ in animals or bodyparts")
        if lab.behaviors != label_sets[0].behaviors:
            raise ValueError(f"{name}: sessions differ in behaviors")
    record = dataclasses.replace(
        first, keypoints=np.concatenate([r.keypoints for r in records]),
        confidence=np.concatenate([r.confidence for r in records]), n_video_frames=None, frame_names=None)
    labels = dataclasses.replace(label_sets[0], present=np.concatenate([lab.present for lab in label_sets]),
                                 annotated=np.concatenate([lab.annotated for lab in label_sets]))
    starts = tuple(int(v) for v in np.cumsum([r.n_frames for r in records])[:-1])
    return Dataset(name, record, labels, spec.note, segments=starts)


def session_bounds(n_frames: int, segments: Sequence[int]) -> list[tuple[int, int]]:
    """``(start, stop)`` frames of every session of a joined record."""
    edges = [0, *segments, n_frames]
    return list(zip(edges[:-1], edges[1:]))


def per_session(fn, record: PoseRecord, segments: Sequence[int]):
    """``fn(record)`` on every session of a joined record, outputs joined along time (axis 0).

    ``fn`` returns an array or a tuple whose first item is the array (e.g. ``(features, names)``).
    """
    if not segments:
        return fn(record)
    outs = []
    for lo, hi in session_bounds(record.n_frames, segments):
        part = dataclasses.replace(record, keypoints=record.keypoints[lo:hi], confidence=record.confidence[lo:hi])
        outs.append(fn(part))
    if isinstance(outs[0], tuple):
        return (np.concatenate([o[0] for o in outs]), *outs[0][1:])
    return np.concatenate(outs)


# ----------------------------------------------------------------------------------------------
# Baseline methods
# ----------------------------------------------------------------------------------------------


def speed_threshold_method(fold: Fold, point: str = "centroid") -> Prediction:
    """BehaviorDEPOT-style immobility rule; NaN (not applicable) for non-freezing behaviors."""
    t, n_ind = fold.train_annotated.shape
    proba = np.full((t, n_ind, len(fold.behaviors)), np.nan)
    decision = np.zeros(proba.shape, dtype=bool)
    for c, name in enumerate(fold.behaviors):
        if not any(word in name.lower() for word in IMMOBILITY_WORDS):
            continue
        if fold.segments:
            continue  # the rule is for one recording's immobility; no several-session freezing set
        rule = baselines.speed_threshold_baseline(
            fold.record, fold.train_present[..., c], fold.train_annotated, point=point
        )
        proba[..., c] = rule.predict_proba(fold.record)
        decision[..., c] = rule.predict(fold.record)
    return Prediction(proba, decision)


def head_speed_threshold_method(fold: Fold) -> Prediction:
    """The same rule on the head keypoint's speed instead of the centroid's."""
    return speed_threshold_method(fold, point="head")


def forest_method(fold: Fold, min_bout_s: float | str = "cv") -> Prediction:
    """SimBA-style forest on :func:`baselines.keypoint_features`; threshold and minimum bout
    length (one of ``baselines.MIN_BOUT_CANDIDATES_S``, 0 included) chosen by inner blocked CV.

    On a several-session dataset (72k labeled animal-frames per fold) it trains on every
    :data:`FOREST_STRIDE`-th frame with 100 trees, as ``accuracy.py`` does for the same reason:
    200 full-depth trees per behavior took 15 min per behavior and fold.
    """
    annotated = fold.train_annotated
    kwargs = {}
    if fold.segments:
        annotated = annotated & (np.arange(annotated.shape[0]) % FOREST_STRIDE == 0)[:, None]
        kwargs = {"n_estimators": 100, "inner_n_estimators": 50}
    forest = baselines.SimbaForest(fps=fold.record.fps, min_bout_s=min_bout_s, random_state=SEED, **kwargs)
    forest.fit(fold.features, fold.train_present & annotated[..., None], annotated, fold.behaviors)
    proba = forest.predict_proba(fold.features)
    bounds = session_bounds(fold.record.n_frames, fold.segments)
    decision = np.concatenate([forest.predict(fold.features[lo:hi], proba[lo:hi]) for lo, hi in bounds])
    return Prediction(proba, decision)


def forest_no_bouts_method(fold: Fold) -> Prediction:
    """The forest without bout filtering (threshold only); not in the default run."""
    return forest_method(fold, min_bout_s=0.0)


def _lookagain_module():
    try:  # imported as part of a package
        from . import lookagain_real
    except ImportError:  # benchmarks/ on sys.path
        import lookagain_real
    return lookagain_real


def lookagain_neural_method(fold: Fold) -> Prediction:
    """The end-to-end network head of earlier versions (:mod:`lookagain_real`; torch is imported
    only when it runs); ``train(decision="neural")`` in the product."""
    return _lookagain_module().lookagain_method(fold)


_BANK_CACHE: dict = {}


def _feature_bank(fold: Fold):
    from dlc_lookagain.features import feature_bank

    key = (fold.dataset, id(fold.record))
    if key not in _BANK_CACHE:
        _BANK_CACHE.clear()
        _BANK_CACHE[key] = per_session(feature_bank, fold.record, fold.segments)
    return _BANK_CACHE[key]


_AUGMENTED_CACHE: dict = {}


def _augmented_bank(fold: Fold):
    """Feature bank of the part-dropout copy (:func:`dlc_lookagain.features.skeleton.part_dropout_copy`),
    as ``train`` computes it; the skeleton profile uses no label."""
    from dlc_lookagain.features import feature_bank
    from dlc_lookagain.features.skeleton import part_dropout_copy, training_skeleton

    key = (fold.dataset, id(fold.record))
    if key not in _AUGMENTED_CACHE:
        _AUGMENTED_CACHE.clear()
        profile = training_skeleton([fold.record])
        _AUGMENTED_CACHE[key] = per_session(lambda r: feature_bank(part_dropout_copy(r, profile)), fold.record,
                                            fold.segments)
    return _AUGMENTED_CACHE[key]


def lookagain_method(fold: Fold, seed: int = SEED, augment: bool = False) -> Prediction:
    """What ``dlc_lookagain.train`` fits (its default decision layer): the feature bank and boosted
    trees, thresholds and minimum bouts by blocked out-of-fold CV inside the fold's training frames
    (leave-one-session-out over the training sessions when there are several); ``augment``: the
    trees also train on a part-dropout copy of the pose (``train(part_dropout=True)``)."""
    from dlc_lookagain.model.decision import LabeledFeatures, fit_decision_layer

    x, names = _feature_bank(fold)
    xa = _augmented_bank(fold)[0] if augment else None
    fps = float(fold.record.fps)
    bounds = session_bounds(fold.record.n_frames, fold.segments)
    samples = [LabeledFeatures(x[lo:hi], fold.train_present[lo:hi], fold.train_annotated[lo:hi], fps,
                               augmented=None if xa is None else xa[lo:hi])
               for lo, hi in bounds if fold.train_annotated[lo:hi].any()]
    layer = fit_decision_layer(samples, fold.behaviors, names, seed=seed)
    proba = layer.predict_proba(x)
    decision = np.concatenate([layer.decide(proba[lo:hi], fps) for lo, hi in bounds])
    return Prediction(np.nan_to_num(proba, nan=0.0), decision)


def default_methods() -> dict[str, Method]:
    """The keypoint-only baselines, by table name (fast; ``main`` adds ``lookagain-keypoints``)."""
    return {
        "speed-threshold": speed_threshold_method,
        "speed-threshold-head": head_speed_threshold_method,
        "simba-forest": forest_method,
    }


def main_methods() -> dict[str, Method]:
    """What ``python benchmarks/real_labels.py`` runs without ``--methods``: the baselines and
    LookAgain's decision layer as ``train`` fits it."""
    return {**default_methods(), "lookagain": lookagain_method}


def all_methods() -> dict[str, Method]:
    """Every method of this file (``--methods`` choices)."""
    return {**main_methods(), "simba-forest-nobouts": forest_no_bouts_method,
            "lookagain-part-dropout": lambda fold: lookagain_method(fold, augment=True),
            "lookagain-neural": lookagain_neural_method}


# ----------------------------------------------------------------------------------------------
# Evaluation
# ----------------------------------------------------------------------------------------------


def _as_prediction(out, shape: tuple[int, int, int], name: str) -> Prediction:
    if isinstance(out, tuple):
        proba, decision = out
    else:
        proba, decision = out, None
    proba = np.asarray(proba, dtype=np.float64)
    if proba.shape != shape:
        raise ValueError(f"method {name!r} returned proba {proba.shape}, expected {shape}")
    if decision is None:
        decision = np.nan_to_num(proba, nan=0.0) >= 0.5
    decision = np.asarray(decision, dtype=bool)
    if decision.shape != shape:
        raise ValueError(f"method {name!r} returned decision {decision.shape}, expected {shape}")
    return Prediction(proba, decision)


def _mean_std(values: list[float]) -> tuple[float, float]:
    v = np.asarray([x for x in values if np.isfinite(x)], dtype=float)
    if v.size == 0:
        return float("nan"), float("nan")
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else float("nan")


def make_folds(data: Dataset, features: np.ndarray, feature_names, *, k: int = 5,
               gap_s: float = 1.0) -> list[Fold]:
    """The :class:`Fold` of each blocked test block of a dataset (test labels hidden)."""
    record, labels = data.record, data.labels
    folds = []
    if data.segments:  # several sessions: leave one session out
        frames = np.arange(record.n_frames)
        splits = [(frames[(frames < lo) | (frames >= hi)], frames[lo:hi])
                  for lo, hi in session_bounds(record.n_frames, data.segments)]
    else:
        splits = baselines.blocked_folds(record.n_frames, k, fps=record.fps, gap_s=gap_s)
    for index, (train_idx, test_idx) in enumerate(splits):
        train = np.zeros(record.n_frames, dtype=bool)
        train[train_idx] = True
        test = np.zeros(record.n_frames, dtype=bool)
        test[test_idx] = True
        train_annotated = labels.annotated & train[:, None]
        folds.append(Fold(
            dataset=data.name, index=index, record=record, features=features,
            feature_names=list(feature_names), behaviors=list(labels.behaviors),
            individuals=list(record.individuals),
            train_present=labels.present & train_annotated[:, :, None],
            train_annotated=train_annotated, train=train, test=test, segments=data.segments,
        ))
    return folds


def run(
    methods: dict[str, Method] | None = None,
    *,
    datasets: list[str] | None = None,
    shared: Path | str | None = None,
    k: int = 5,
    gap_s: float = 1.0,
) -> pd.DataFrame:
    """Blocked cross-validation of each method on each labeled recording.

    Parameters
    ----------
    methods : dict of str to callable, optional
        Table name -> method. A method is called once per fold with a :class:`Fold` and returns a
        :class:`Prediction` (or a bare ``(T, I, C)`` probability array, thresholded at 0.5). None
        runs :func:`default_methods`. To add a model next to the baselines, pass
        ``{**default_methods(), "mine": my_method}``.
    datasets : list of str, optional
        Keys of :data:`DATASETS`; default all.
    shared : path, optional
        The shared data folder; default :func:`shared_data_dir`.
    k : int
        Number of blocked folds.
    gap_s : float
        Seconds left out between train and test blocks.

    Returns
    -------
    pandas.DataFrame
        One row per (dataset, behavior, method): ``precision, precision_std, recall, recall_std,
        f1, f1_std`` (mean and sample std over folds with a defined value), ``f1_folds`` (tuple of
        per-fold F1, NaN where undefined), ``n_folds_f1``, ``f1_pooled`` (all test predictions
        together), ``n_positive, n_annotated`` (frames over the whole recording; (frame, animal)
        pairs with several animals), ``runtime_s`` (method, all folds), ``features_s``, ``note``.

    Raises
    ------
    FileNotFoundError
        If the shared data folder is missing.
    """
    methods = default_methods() if methods is None else dict(methods)
    shared = Path(shared) if shared is not None else shared_data_dir()
    if shared is None or not Path(shared).is_dir():
        raise FileNotFoundError(
            f"shared data not found at {shared or REPO_ROOT.parent / 'shared' / 'data'} "
            "(set DLC_LOOKAGAIN_SHARED)"
        )
    rows = []
    for name in datasets or list(DATASETS):
        data = load_dataset(name, shared)
        record, labels = data.record, data.labels
        t0 = time.perf_counter()
        features, feature_names = per_session(baselines.keypoint_features, record, data.segments)
        features_s = time.perf_counter() - t0
        logger.info("%s: %d features x %d frames x %d animals in %.2f s", name, len(feature_names),
                    record.n_frames, record.n_individuals, features_s)
        shape = labels.present.shape
        folds = make_folds(data, features, feature_names, k=k, gap_s=gap_s)
        for method_name, method in methods.items():
            per_fold: list[pd.DataFrame] = []
            pooled = np.zeros(shape, dtype=bool)
            covered = np.ones(len(labels.behaviors), dtype=bool)
            elapsed = 0.0
            for fold in folds:
                index, test = fold.index, fold.test
                t0 = time.perf_counter()
                pred = _as_prediction(method(fold), shape, method_name)
                elapsed += time.perf_counter() - t0
                scored = test[:, None] & labels.annotated
                covered &= ~np.isnan(pred.proba[scored]).all(axis=0)
                if not covered.any():
                    break  # the method predicts none of this dataset's behaviors: no row
                pooled[test] = pred.decision[test]
                table = baselines.f1_table(labels.present, pred.decision, labels.behaviors, mask=scored)
                per_fold.append(table.assign(fold=index))
                logger.info("%s / %s / fold %d: F1 %s (%.1f s)", name, method_name, index,
                            np.round(table["f1"].to_numpy()[:-1], 3).tolist(), time.perf_counter() - t0)
            if not covered.any():
                logger.info("%s / %s: not applicable to %s", name, method_name, labels.behaviors)
                continue
            pooled_table = baselines.f1_table(labels.present, pooled, labels.behaviors, mask=labels.annotated)
            folds_df = pd.concat(per_fold, ignore_index=True)
            for c, behavior in enumerate(labels.behaviors):
                if not covered[c]:
                    continue  # the method does not predict this behavior
                sub = folds_df[folds_df["behavior"] == behavior]
                row = {"dataset": name, "behavior": behavior, "method": method_name}
                for metric in ("precision", "recall", "f1"):
                    row[metric], row[f"{metric}_std"] = _mean_std(sub[metric].tolist())
                row["f1_folds"] = tuple(float(v) for v in sub["f1"])
                row["n_folds_f1"] = int(np.isfinite(sub["f1"].to_numpy(dtype=float)).sum())
                row["f1_pooled"] = float(pooled_table["f1"].iloc[c])
                row["n_positive"] = int(labels.present[..., c][labels.annotated].sum())
                row["n_annotated"] = int(labels.annotated.sum())
                row["runtime_s"] = elapsed
                row["features_s"] = features_s
                row["note"] = data.note
                rows.append(row)
    return pd.DataFrame(rows)


def format_table(df: pd.DataFrame) -> str:
    """Plain-text table of :func:`run`'s output."""

    def pm(mean, std):
        if not np.isfinite(mean):
            return "n/a"
        return f"{mean:.3f} ± {std:.3f}" if np.isfinite(std) else f"{mean:.3f}"

    header = ["dataset", "behavior", "method", "precision", "recall", "F1", "folds", "F1 pooled",
              "pos / total", "runtime"]
    lines = []
    for _, r in df.iterrows():
        lines.append([
            r["dataset"], r["behavior"], r["method"],
            pm(r["precision"], r["precision_std"]),
            pm(r["recall"], r["recall_std"]),
            pm(r["f1"], r["f1_std"]),
            f"{r['n_folds_f1']}/{len(r['f1_folds'])}",
            f"{r['f1_pooled']:.3f}" if np.isfinite(r["f1_pooled"]) else "n/a",
            f"{r['n_positive']} / {r['n_annotated']}",
            f"{r['runtime_s']:.1f} s",
        ])
    widths = [max(len(str(x)) for x in col) for col in zip(header, *lines)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
    out += [fmt.format(*line) for line in lines]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--methods", nargs="+", choices=list(all_methods()), default=None,
                        help="default: all but simba-forest-nobouts")
    parser.add_argument("--datasets", nargs="+", choices=list(DATASETS), default=None)
    parser.add_argument("-v", "--verbose", action="store_true", help="log per-fold progress")
    parser.add_argument("--no-doc", action="store_true", help="do not rewrite docs/benchmarks.md")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    shared = shared_data_dir()
    if shared is None:
        where = os.environ.get("DLC_LOOKAGAIN_SHARED", str(REPO_ROOT.parent / "shared" / "data"))
        print(f"real_labels: shared data not found at {where}; nothing to benchmark "
              "(set DLC_LOOKAGAIN_SHARED to the folder holding behaviordepot/ and ethome/).")
        return 0
    methods = main_methods()
    if args.methods:
        methods = {m: all_methods()[m] for m in args.methods}
    t0 = time.perf_counter()
    df = run(methods, datasets=args.datasets, shared=shared, k=args.folds)
    total = time.perf_counter() - t0
    lines = [f"Keypoint-only methods, {args.folds}-fold blocked CV (1 s gaps), shared data {shared.name}/",
             format_table(df), ""]
    for name, sub in df.groupby("dataset", sort=False):
        lines.append(f"{name}: {sub['note'].iloc[0]}; features {sub['features_s'].iloc[0]:.2f} s")
    if lookagain_neural_method in methods.values():
        lines.append(f"lookagain-neural: {_lookagain_module().DEFAULT_SETTINGS}")
    lines.append("precision/recall/F1: mean ± sample std over folds with a defined value ('folds' = how many);"
                 " F1 pooled: all test folds' predictions together; runtime: method fit+predict over all folds.")
    lines.append(f"total wall time {total:.1f} s")
    print("\n".join(lines))
    if not args.no_doc and args.methods is None and args.datasets is None:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import report

        report.update_section("real_labels", "## Real labels (keypoints only)\n\n```\n" + "\n".join(lines)
                              + "\n```")
    return 0


if __name__ == "__main__":
    sys.exit(main())
