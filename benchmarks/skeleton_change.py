"""What a changed skeleton costs: train on the real recordings' skeleton, predict on another one.

Usage::

    python benchmarks/skeleton_change.py [--datasets behaviordepot-demo1 ethome] [--seeds 0 1 2]
                                         [--part-dropout] [--no-doc]

Same folds and scores as ``real_labels.py`` (5 blocked folds, pooled F1). Per fold, LookAgain's
decision layer is fitted as ``dlc_lookagain.train`` fits it on the recording as it is (keeping its
training poses), then predicts the test frames from a changed copy of the pose exactly as
``analyze`` does (``model.frame_features.decide_recording``: bodyparts matched to the training
skeleton by name, synonyms, then place on the body; :mod:`dlc_lookagain.features.skeleton`):

* ``drop <part>``: one bodypart removed (each of: the head keypoint, the last bodypart);
* ``add midpoint``: an extra bodypart halfway between the first two;
* ``rename all``: every bodypart renamed ``p0, p1, ...`` in reverse order (only place can match).

A skeleton lacking a training part gets it placed, with the decision thresholds chosen again for
placed parts by cross-validation on the training poses the model keeps (:mod:`dlc_lookagain.model.refit`;
column ``analyze``). Side by side in the same run: ``training thresholds`` (the part placed, the
thresholds of the full skeleton: what a model without training poses does) and ``trees without the
part`` (the decision layer trained again on the bodyparts the project has, no placing).
``--part-dropout`` adds ``train(part_dropout=True)``. Mean +- std over the seeds; per seed, the
paired change.

Target (issue 11): at most 0.05 F1 lost against the unchanged skeleton.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import real_labels as rl  # noqa: E402

from dlc_lookagain.features import feature_bank  # noqa: E402
from dlc_lookagain.features.kinematics import head_index  # noqa: E402
from dlc_lookagain.features.skeleton import rename_to_training, training_skeleton  # noqa: E402
from dlc_lookagain.model.decision import LabeledFeatures, fit_decision_layer  # noqa: E402
from dlc_lookagain.model.frame_features import align_columns, decide_recording  # noqa: E402
from dlc_lookagain.model.refit import TrainingPoses  # noqa: E402


def _drop(rec, k):
    keep = [j for j in range(rec.n_bodyparts) if j != k]
    return dataclasses.replace(rec, keypoints=rec.keypoints[:, :, keep], confidence=rec.confidence[:, :, keep],
                               bodyparts=[rec.bodyparts[j] for j in keep], skeleton=[])


def variants(rec) -> dict:
    head = head_index(rec.bodyparts)
    mid = (rec.keypoints[:, :, :1] + rec.keypoints[:, :, 1:2]) / 2
    order = list(range(rec.n_bodyparts))[::-1]
    return {
        "unchanged": rec,
        f"drop {rec.bodyparts[head]} (head)": _drop(rec, head),
        f"drop {rec.bodyparts[-1]}": _drop(rec, rec.n_bodyparts - 1),
        "add midpoint": dataclasses.replace(
            rec, keypoints=np.concatenate([rec.keypoints, mid], 2),
            confidence=np.concatenate([rec.confidence, rec.confidence[:, :, :1]], 2),
            bodyparts=[*rec.bodyparts, "extra_mid"], skeleton=[]),
        "rename all": dataclasses.replace(
            rec, keypoints=rec.keypoints[:, :, order], confidence=rec.confidence[:, :, order],
            bodyparts=[f"p{j}" for j in range(rec.n_bodyparts)], skeleton=[]),
    }


_CACHE: dict = {}


def _trained(fold: rl.Fold, augment: bool = False):
    """The layer ``train`` fits on the fold's training frames, with its training poses."""
    key = (fold.dataset, fold.index, augment, rl.SEED)
    if key not in _CACHE:
        x, names = rl._feature_bank(fold)
        xa = rl._augmented_bank(fold)[0] if augment else None
        fps = float(fold.record.fps)
        layer = fit_decision_layer([LabeledFeatures(x, fold.train_present, fold.train_annotated, fps,
                                                    augmented=xa)],
                                   fold.behaviors, names, seed=rl.SEED)
        layer.skeleton = training_skeleton([fold.record])
        if not augment:
            layer.training_poses = TrainingPoses([rename_to_training(fold.record, layer.skeleton)],
                                                 [fold.train_present], [fold.train_annotated])
        _CACHE[key] = layer
    return _CACHE[key]


def _decide(layer, rec, fps: float) -> rl.Prediction:
    proba, present, _, _ = decide_recording(rec, SimpleNamespace(decision=layer), fps)
    return rl.Prediction(np.nan_to_num(proba, nan=0.0), present)


def _without_the_part(fold: rl.Fold, layer, rec) -> rl.Prediction:
    """The decision layer trained again on the bodyparts ``rec`` has, no placing."""
    rec = rename_to_training(rec, layer.skeleton, impute=False)
    if set(rec.bodyparts) == set(layer.skeleton):
        return _decide(layer, rec, float(fold.record.fps))
    train_rec = dataclasses.replace(fold.record, keypoints=fold.record.keypoints[:, :, [
        fold.record.bodyparts.index(b) for b in rec.bodyparts]], confidence=fold.record.confidence[:, :, [
            fold.record.bodyparts.index(b) for b in rec.bodyparts]], bodyparts=list(rec.bodyparts), skeleton=[])
    x, names = rl.per_session(feature_bank, train_rec, fold.segments)
    fps = float(fold.record.fps)
    reduced = fit_decision_layer([LabeledFeatures(x, fold.train_present, fold.train_annotated, fps)],
                                 fold.behaviors, names, seed=rl.SEED)
    xt, names_t = rl.per_session(feature_bank, rec, fold.segments)
    proba = reduced.predict_proba(align_columns(xt, names_t, names))
    return rl.Prediction(np.nan_to_num(proba, nan=0.0), reduced.decide(proba, fps))


def make_method(variant: str, column: str = "analyze"):
    def method(fold: rl.Fold) -> rl.Prediction:
        layer = _trained(fold, column == "part dropout")
        rec = variants(fold.record)[variant]
        fps = float(fold.record.fps)
        if column == "training thresholds":
            layer = dataclasses.replace(layer, training_poses=None)
        elif column == "trees without the part":
            return _without_the_part(fold, layer, rec)
        return _decide(layer, rec, fps)

    return method


COLUMNS = ["analyze", "training thresholds", "trees without the part"]


def _stat(values) -> str:
    v = np.asarray(values, dtype=float)
    return f"{v.mean():.3f} ± {v.std():.3f}" if v.size > 1 else f"{v.mean():.3f}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["behaviordepot-demo1", "ethome"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--part-dropout", action="store_true", help="also score train(part_dropout=True)")
    parser.add_argument("--no-doc", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    shared = rl.shared_data_dir()
    if shared is None:
        print("skeleton_change: shared data not found; nothing to benchmark")
        return 0
    columns = COLUMNS + (["part dropout"] if args.part_dropout else [])
    header = "| dataset | skeleton at prediction | " + " | ".join(
        f"{c} F1 | {c} change (per seed)" for c in columns) + " |"
    lines = [header, "|---|---|" + "---|---|" * len(columns)]
    for name in args.datasets:
        rec = rl.load_dataset(name, shared).record
        f1 = {}
        for seed in args.seeds:
            rl.SEED = seed
            methods = {f"{v} | {c}": make_method(v, c) for v in variants(rec) for c in columns}
            df = rl.run(methods, datasets=[name], shared=shared)
            for _, row in df.iterrows():
                f1.setdefault((row["method"], row["behavior"]), []).append(float(row["f1_pooled"]))
            _CACHE.clear()
        for behavior in dict.fromkeys(b for _, b in f1):
            cells = []
            for v in variants(rec):
                row = []
                for c in columns:
                    now = np.array(f1[(f"{v} | {c}", behavior)])
                    base = np.array(f1[(f"unchanged | {c}", behavior)])
                    change = now - base
                    row.append(f"{_stat(now)} | {change.mean():+.3f} ({', '.join(f'{d:+.3f}' for d in change)})")
                cells.append(f"| {name} ({behavior}) | {v} | " + " | ".join(row) + " |")
            lines += cells
    text = "\n".join(lines)
    print(text)
    if not args.no_doc:
        import report

        seeds = " ".join(map(str, args.seeds))
        report.update_section("skeleton-change", "## A changed skeleton (trained on one, predicting on another)"
                              f"\n\nSeeds {seeds}; `analyze` is what the product does (missing parts placed, "
                              "thresholds chosen again on the training poses); `training thresholds`: placed, "
                              "thresholds of the full skeleton; `trees without the part`: trained again on the "
                              "bodyparts the project has.\n\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
