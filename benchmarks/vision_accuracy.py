"""Looked-at frames in the decision layer, on generated data with video, over several seed sets:
LookAgain's boosted decision layer with its vision group against the SimBA-style forest with the
same appearance features, side by side in one run.

Usage::

    python benchmarks/vision_accuracy.py [--seed-sets 0 1 2] [--fractions 0.25] [--no-doc]

Protocol
--------
* Data: for every seed set ``s`` the three splits of ``benchmarks/accuracy.py`` with video
  (``train`` 8 videos, ``test`` 4, ``test_shifted`` 4, 60 s each), every generator seed shifted by
  ``SEED_STRIDE * s`` (``s = 0`` is the split ``accuracy.py`` uses). Labels re-assigned to pose
  tracks through ``synth_truth`` (identity swaps); tracks that show no animal are not scored.
* Appearance features (:mod:`dlc_lookagain.features.appearance`: rotated body and head crops,
  HOG, animal-map grid and statistics, chroma) are computed for every frame once and cached
  (``accuracy.load_split``); looking at a fraction ``k`` takes the rows of every ``1/k``-th frame
  (:func:`~dlc_lookagain.features.appearance.uniform_frames`) and carries them to the nearest
  frames with the signed time (:func:`~dlc_lookagain.features.appearance.propagate`), which is
  what :func:`~dlc_lookagain.features.appearance.vision_columns` does when it decodes only those
  frames (tests/test_features_appearance.py checks that the two agree).
* ``forest: keypoints`` and ``forest + appearance``: ``baselines.keypoint_features`` (+ the
  carried appearance) and ``baselines.SimbaForest`` exactly as ``accuracy.py`` runs them (100
  trees, every 2nd training frame, thresholds and minimum bouts by inner blocked CV).
* ``lookagain``: what ``dlc_lookagain.train(look=k)`` fits: the feature bank plus the vision group
  at the same ``k``, :func:`dlc_lookagain.model.decision.fit_decision_layer` choosing per behavior
  by leave-recording-out CV over the training videos whether the vision group is used, and the
  thresholds; ``lookagain k=0`` is the same fit's keypoint-only setting (what ``analyze`` uses with
  ``top_k=0`` or without a video).
* Scores: per-behavior F1 pooled over a split's scored (frame, track) pairs; macro = mean over the
  eleven behaviors; ``vision macro`` = mean over eat, drink, groom, rear (undecidable from
  keypoints in the generator). Mean ± sample std over seed sets; per-seed differences printed.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import baselines  # noqa: E402
from accuracy import BEHAVIORS, VISION, _stack, ensure_split, load_split, split_config  # noqa: E402
from keypoint_accuracy import _pm, per_behavior  # noqa: E402

from dlc_lookagain.features import feature_bank  # noqa: E402
from dlc_lookagain.features.appearance import (  # noqa: E402
    AppearanceConfig, carry_looks, uniform_frames, vision_columns, vision_names)
from dlc_lookagain.model.decision import LabeledFeatures, fit_decision_layer  # noqa: E402

logger = logging.getLogger("benchmarks.vision_accuracy")
SEED_STRIDE = 7919
TEST_SPLITS = ("test", "test_shifted")


def load_seed_set(s: int, seconds: float) -> dict[str, list]:
    data = {}
    for split in ("train", *TEST_SPLITS):
        cfg = split_config(split, seconds)
        cfg = cfg.replace(seed=cfg.seed + SEED_STRIDE * s)
        recs = load_split(ensure_split(split, cfg), AppearanceConfig())
        for r in recs:
            r.bank, names = feature_bank(r.record)
        data[split] = recs
    return data, names


def carried(r, fraction: float) -> np.ndarray:
    """The vision columns at ``fraction`` (NaN everywhere at 0), as ``vision_columns`` makes them."""
    if fraction == 0:
        return np.full(r.app.shape[:2] + (r.app.shape[2] + 1,), np.nan, np.float32)
    sel = uniform_frames(r.n_frames, fraction)
    return carry_looks(sel, r.app[sel], r.n_frames, r.record.fps)


def forest_features(r, fraction: float) -> np.ndarray:
    """accuracy.looked_features: keypoint features + carried appearance, NaN zero-filled with a flag."""
    if fraction == 0:
        return r.kp
    app = carried(r, fraction)
    return np.concatenate([r.kp, np.nan_to_num(app, nan=0.0)], axis=-1)


def score(recs, predict) -> dict:
    y_true = np.concatenate([r.present[r.annotated] for r in recs])
    y_pred = np.concatenate([predict(r)[r.annotated] for r in recs])
    table = baselines.f1_table(y_true, y_pred, BEHAVIORS)
    f1 = {b: float(v) for b, v in zip(table["behavior"], table["f1"])}
    return {"macro": float(np.nanmean([f1[b] for b in BEHAVIORS])),
            "vision": float(np.nanmean([f1[b] for b in VISION])), "f1": f1}


def forest(train, fraction: float, trees: int = 100, stride: int = 2):
    x, present, annotated = _stack(train, [forest_features(r, fraction) for r in train], stride)
    model = baselines.SimbaForest(n_estimators=trees, inner_n_estimators=max(1, trees // 2), min_bout_s="cv",
                                  fps=train[0].record.fps, random_state=0)
    model.fit(x, present, annotated, BEHAVIORS)
    return lambda r: model.predict(forest_features(r, fraction))


def lookagain(train, names, fraction: float, seed: int):
    vnames = vision_names()
    groups = {"bank": list(range(len(names))), "vision": list(range(len(names), len(names) + len(vnames)))}
    samples = [LabeledFeatures(np.concatenate([r.bank, carried(r, fraction)], axis=-1), r.present, r.annotated,
                               float(r.record.fps), r.name) for r in train]
    layer = fit_decision_layer(samples, BEHAVIORS, names + vnames, groups=groups, seed=seed)

    def predict(k):
        use = layer if k > 0 else layer.for_keypoints_only()
        return lambda r: use.decide(use.predict_proba(np.concatenate([r.bank, carried(r, k)], axis=-1)),
                                    float(r.record.fps))

    return predict, layer


def run_seed_set(s: int, seconds: float, fractions) -> dict:
    t0 = time.perf_counter()
    data, names = load_seed_set(s, seconds)
    logger.info("seed set %d: data and features in %.0f s", s, time.perf_counter() - t0)
    out = {}

    def add(method, predict, fit_s, looked):
        out[method] = {split: score(data[split], predict) for split in TEST_SPLITS}
        out[method]["fit_s"], out[method]["looked"] = fit_s, looked
        logger.info("seed set %d / %s: %s (fit %.0f s)", s, method,
                    ", ".join(f"{sp} macro {out[method][sp]['macro']:.3f} vision {out[method][sp]['vision']:.3f}"
                              for sp in TEST_SPLITS), fit_s)

    t0 = time.perf_counter()
    add("forest: keypoints", forest(data["train"], 0.0), time.perf_counter() - t0, 0.0)
    for k in fractions:
        t0 = time.perf_counter()
        add(f"forest + appearance, uniform {k:.0%}", forest(data["train"], k), time.perf_counter() - t0, k)
        t0 = time.perf_counter()
        predict, layer = lookagain(data["train"], names, k, seed=s)
        fit_s = time.perf_counter() - t0
        logger.info("seed set %d: vision chosen for %s", s,
                    ", ".join(b for b, g in zip(layer.behaviors, layer.chosen_groups) if "vision" in g) or "none")
        if k == fractions[0]:
            add("lookagain: keypoints (k=0)", predict(0.0), fit_s, 0.0)
        add(f"lookagain, uniform {k:.0%}", predict(k), fit_s, k)
        out[f"lookagain, uniform {k:.0%}"]["vision_for"] = [
            b for b, g in zip(layer.behaviors, layer.chosen_groups) if "vision" in g]
    out["cost"] = look_cost(data, fractions[-1])
    return out


def look_cost(data, fraction: float) -> dict:
    """Wall time of the product's path (:func:`vision_columns`: decode the chosen frames, crop, describe,
    carry) on the first video of each test split, per looked-at frame and per animal crop pair."""
    out = {}
    for split in TEST_SPLITS:
        r = data[split][0]
        frames = uniform_frames(r.n_frames, fraction)
        t0 = time.perf_counter()
        vision_columns(r.record, frames, float(r.record.fps))
        seconds = time.perf_counter() - t0
        n_ind = r.record.keypoints.shape[1]
        out[split] = {"ms_per_frame": 1000 * seconds / frames.size, "animals": n_ind,
                      "ms_per_animal": 1000 * seconds / frames.size / n_ind, "frames": int(frames.size),
                      "video_frames": r.n_frames}
    return out


def table(results: dict[int, dict], fractions) -> list[str]:
    methods = [m for m in next(iter(results.values())) if m != "cost"]
    lines = ["| method | test macro F1 | test vision macro | shifted macro F1 | shifted vision macro | fit time |",
             "|---|---|---|---|---|---|"]
    for m in methods:
        cells = [m]
        for split in TEST_SPLITS:
            for key in ("macro", "vision"):
                cells.append(_pm([results[s][m][split][key] for s in results]))
        cells.append(f"{np.mean([results[s][m]['fit_s'] for s in results]):.0f} s")
        lines.append("| " + " | ".join(cells) + " |")
    for split in TEST_SPLITS:
        diff = [results[s]["lookagain: keypoints (k=0)"][split]["macro"] - results[s]["forest: keypoints"][split]["macro"]
                for s in results]
        lines.append(f"\nlookagain: keypoints (k=0) - forest: keypoints, {split} macro F1 per seed set: "
                     f"{', '.join(f'{d:+.3f}' for d in diff)} (mean {np.mean(diff):+.3f})")
    for k in fractions:
        ours, theirs = f"lookagain, uniform {k:.0%}", f"forest + appearance, uniform {k:.0%}"
        for split in TEST_SPLITS:
            diff = [results[s][ours][split]["macro"] - results[s][theirs][split]["macro"] for s in results]
            lines.append(f"\n{ours} - {theirs}, {split} macro F1 per seed set: "
                         f"{', '.join(f'{d:+.3f}' for d in diff)} (mean {np.mean(diff):+.3f})")
        chosen = [", ".join(results[s][ours]["vision_for"]) or "none" for s in results]
        lines.append(f"\nbehaviors the decision layer reads vision for (per seed set): {' / '.join(chosen)}")
    lines.append("\nCost of looking (decode the chosen frames in one pass, crop, describe, carry; "
                 f"`vision_columns` at {fractions[-1]:.0%}, first video of each split, all seed sets):")
    for split in TEST_SPLITS:
        costs = [results[s]["cost"][split] for s in results]
        lines.append(f"- {split}: {np.mean([c['ms_per_frame'] for c in costs]):.1f} ms per looked-at frame "
                     f"({costs[0]['animals']} animals, {np.mean([c['ms_per_animal'] for c in costs]):.1f} ms per "
                     f"animal; {costs[0]['frames']} of {costs[0]['video_frames']} frames)")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed-sets", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.25])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--no-doc", action="store_true")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s: %(message)s")
    logger.setLevel(logging.INFO)
    t0 = time.perf_counter()
    results = {s: run_seed_set(s, args.seconds, args.fractions) for s in args.seed_sets}
    lines = table(results, args.fractions) + [""] + per_behavior(results)
    text = "\n".join(lines)
    print(text)
    print(f"\nseed sets {args.seed_sets}, {time.perf_counter() - t0:.0f} s")
    if not args.no_doc:
        import report

        report.update_section("vision-accuracy", "## Generated data with video: looked-at frames in the decision "
                              "layer, several seed sets\n\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
