"""What a changed skeleton costs: train on the real recordings' skeleton, predict on another one.

Usage::

    python benchmarks/skeleton_change.py [--datasets behaviordepot-demo1 ethome] [--no-doc]

Same folds and scores as ``real_labels.py`` (5 blocked folds, pooled F1). Per fold, LookAgain's
decision layer is fitted as ``dlc_lookagain.train`` fits it on the recording as it is, then predicts
the test frames from a changed copy of the pose, read the way ``analyze`` reads another project
(bodyparts matched to the training skeleton by name, synonyms, then place on the body:
:mod:`dlc_lookagain.features.skeleton`):

* ``drop <part>``: one bodypart removed (each of: the head keypoint, the last bodypart);
* ``add midpoint``: an extra bodypart halfway between the first two;
* ``rename all``: every bodypart renamed ``p0, p1, ...`` in reverse order (only place can match).

Each change is scored twice in the same run: the decision layer as ``train`` fits it by default,
and as ``train(part_dropout=True)`` fits it (trees also trained on a copy of the pose in which, block
by block, one bodypart is replaced by its placed guess).

Target (issue 11): at most 0.05 F1 lost against the unchanged skeleton.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import real_labels as rl  # noqa: E402

from dlc_lookagain.features import feature_bank  # noqa: E402
from dlc_lookagain.features.kinematics import head_index  # noqa: E402
from dlc_lookagain.features.skeleton import rename_to_training, training_skeleton  # noqa: E402
from dlc_lookagain.model.decision import LabeledFeatures, fit_decision_layer  # noqa: E402
from dlc_lookagain.model.frame_features import align_columns  # noqa: E402


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


def make_method(variant: str, augment: bool = False):
    def method(fold: rl.Fold) -> rl.Prediction:
        key = (fold.dataset, fold.index, augment)
        if key not in _CACHE:
            x, names = rl._feature_bank(fold)
            xa = rl._augmented_bank(fold)[0] if augment else None
            fps = float(fold.record.fps)
            layer = fit_decision_layer([LabeledFeatures(x, fold.train_present, fold.train_annotated, fps,
                                                        augmented=xa)],
                                       fold.behaviors, names, seed=rl.SEED)
            layer.skeleton = training_skeleton([fold.record])
            _CACHE[key] = layer
        layer = _CACHE[key]
        rec = rename_to_training(variants(fold.record)[variant], layer.skeleton)
        x, names = feature_bank(rec)
        x = align_columns(x, names, layer.feature_names, variant)
        proba = layer.predict_proba(x)
        return rl.Prediction(np.nan_to_num(proba, nan=0.0), layer.decide(proba, float(fold.record.fps)))

    return method


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["behaviordepot-demo1", "ethome"])
    parser.add_argument("--no-doc", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    shared = rl.shared_data_dir()
    if shared is None:
        print("skeleton_change: shared data not found; nothing to benchmark")
        return 0
    lines = ["| dataset | skeleton at prediction | F1 pooled (default) | change | "
             "F1 pooled (part dropout) | change |", "|---|---|---|---|---|---|"]
    dropout = " +part dropout"
    for name in args.datasets:
        rec = rl.load_dataset(name, shared).record
        methods = {}
        for v in variants(rec):
            methods[v] = make_method(v)
            methods[v + dropout] = make_method(v, augment=True)
        df = rl.run(methods, datasets=[name], shared=shared)
        f1 = {(row["method"], row["behavior"]): float(row["f1_pooled"]) for _, row in df.iterrows()}
        for behavior in dict.fromkeys(df["behavior"]):
            base, base_d = f1[("unchanged", behavior)], f1[("unchanged" + dropout, behavior)]
            for v in variants(rec):
                a, d = f1[(v, behavior)], f1[(v + dropout, behavior)]
                lines.append(f"| {name} ({behavior}) | {v} | {a:.3f} | {a - base:+.3f} | {d:.3f} | {d - base_d:+.3f} |")
        _CACHE.clear()
    text = "\n".join(lines)
    print(text)
    if not args.no_doc:
        import report

        report.update_section("skeleton-change", "## A changed skeleton (trained on one, predicting on another)"
                              "\n\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
