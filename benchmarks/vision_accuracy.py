"""Looked-at frames in the decision layer, on generated data with video, over several seed sets:
LookAgain's boosted decision layer with its vision group against the SimBA-style forest with the
same appearance features, side by side in one run.

Usage::

    python benchmarks/vision_accuracy.py [--seed-sets 0 1 2] [--fractions 0.25] [--policies uniform gate]
                                         [--every-frame] [--preset standard|rare] [--no-doc]

``--preset rare``: the ``rare_vision_*`` generator presets, where eat, drink, groom and rear are
short and rare (licks 0.3-1.5 s, single rears, brief grooming: ``synth.ethogram.
short_rare_vision_events``); there evenly spaced looks at a low budget miss bouts.

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
* ``lookagain, <policy> k``: what ``dlc_lookagain.train(look=k, look_policy=policy)`` fits and
  ``analyze(top_k=k)`` then does. ``uniform``: every ``1/k``-th frame; ``gate``
  (:mod:`dlc_lookagain.model.look_schedule`): the same number of frames, placed where the
  keypoint-only decisions are closest to their thresholds (training: out-of-fold probabilities of
  the keypoint-only layer; test: its predictions). The feature bank plus the vision group, :func:`dlc_lookagain.model.decision.fit_decision_layer` choosing per behavior
  by leave-recording-out CV over the training videos whether the vision group is used, and the
  thresholds; ``lookagain k=0`` is the same fit's keypoint-only setting (what ``analyze`` uses with
  ``top_k=0`` or without a video).
* Scores: per-behavior F1 pooled over a split's scored (frame, track) pairs; macro = mean over the
  eleven behaviors; ``vision macro`` = mean over eat, drink, groom, rear (undecidable from
  keypoints in the generator). Mean ± sample std over seed sets; per-seed differences printed.
* ``bouts seen``: share of the test splits' true eat/drink/groom/rear bouts (per animal) with at
  least one looked-at frame.
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
from accuracy import BEHAVIORS, SPLITS, VISION, _stack, ensure_split, load_split, split_config  # noqa: E402
from keypoint_accuracy import _pm, f1_summary, per_behavior, publish, setup_logging  # noqa: E402

from dlc_lookagain.features import feature_bank  # noqa: E402
from dlc_lookagain.features.appearance import (  # noqa: E402
    AppearanceConfig, carry_looks, uniform_frames, vision_columns, vision_names)
from dlc_lookagain.model.decision import LabeledFeatures, fit_decision_layer  # noqa: E402
from dlc_lookagain.model.look_schedule import frames_for_layer, training_frames  # noqa: E402
from dlc_lookagain.synth import preset  # noqa: E402

logger = logging.getLogger("benchmarks.vision_accuracy")
SEED_STRIDE = 7919
TEST_SPLITS = ("test", "test_shifted")


def load_seed_set(s: int, seconds: float, which: str = "standard") -> dict[str, list]:
    data = {}
    for split in ("train", *TEST_SPLITS):
        cfg = split_config(split, seconds)
        if which == "rare":
            cfg = preset(f"rare_vision_{split}", n_videos=SPLITS[split][1], seconds=seconds, write_slp=False)
        cfg = cfg.replace(seed=cfg.seed + SEED_STRIDE * s)
        recs = load_split(ensure_split(split, cfg), AppearanceConfig())
        for r in recs:
            r.bank, names = feature_bank(r.record)
        data[split] = recs
    return data, names


def carried(r, fraction: float, frames: np.ndarray | None = None) -> np.ndarray:
    """The vision columns of ``frames`` (default: evenly spaced at ``fraction``; NaN everywhere at 0),
    as ``vision_columns`` makes them."""
    if frames is None:
        if fraction == 0:
            return np.full(r.app.shape[:2] + (r.app.shape[2] + 1,), np.nan, np.float32)
        frames = uniform_frames(r.n_frames, fraction)
    return carry_looks(frames, r.app[frames], r.n_frames, r.record.fps)


def forest_features(r, fraction: float) -> np.ndarray:
    """accuracy.looked_features: keypoint features + carried appearance, NaN zero-filled with a flag."""
    if fraction == 0:
        return r.kp
    app = carried(r, fraction)
    return np.concatenate([r.kp, np.nan_to_num(app, nan=0.0)], axis=-1)


def score(recs, predictions: list[np.ndarray]) -> dict:
    """F1 of ``predictions`` (one bool ``(T, I, C)`` per recording) on the scored (frame, track) pairs."""
    y_true = np.concatenate([r.present[r.annotated] for r in recs])
    y_pred = np.concatenate([p[r.annotated] for r, p in zip(recs, predictions)])
    return f1_summary(y_true, y_pred)


def forest(train, fraction: float, trees: int = 100, stride: int = 2):
    x, present, annotated = _stack(train, [forest_features(r, fraction) for r in train], stride)
    model = baselines.SimbaForest(n_estimators=trees, inner_n_estimators=max(1, trees // 2), min_bout_s="cv",
                                  fps=train[0].record.fps, random_state=0)
    model.fit(x, present, annotated, BEHAVIORS)
    return lambda r: model.predict(forest_features(r, fraction))


def lookagain(train, names, fraction: float, seed: int, policy: str = "uniform", cache: dict | None = None,
              threads: int | None = None):
    """``train(look=fraction, look_policy=policy)`` on the benchmark's features; returns
    ``predict(k) -> (recording -> (present, looked))`` and the layer. ``cache``: shared by the fits of
    one seed set (same recordings, same bank columns), so the keypoint-only cross-validation runs once."""
    vnames = vision_names()
    fps = float(train[0].record.fps)
    groups = {"bank": list(range(len(names))), "vision": list(range(len(names), len(names) + len(vnames)))}
    cache = {} if cache is None else cache
    # As train() chooses them: the gate from out-of-fold keypoint-only probabilities.
    looks = training_frames(policy, [LabeledFeatures(r.bank, r.present, r.annotated, fps, r.name) for r in train],
                            BEHAVIORS, names, {"bank": groups["bank"]}, fraction, seed=seed, cache=cache,
                            threads=threads)
    samples = [LabeledFeatures(np.concatenate([r.bank, carried(r, fraction, f)], axis=-1), r.present, r.annotated,
                               fps, r.name) for r, f in zip(train, looks)]
    layer = fit_decision_layer(samples, BEHAVIORS, names + vnames, groups=groups, seed=seed, cache=cache,
                               threads=threads)
    layer.look_policy = policy

    def predict(k):
        use = layer if k > 0 else layer.for_keypoints_only()
        blind = layer.for_keypoints_only()

        def run(r):
            frames = np.zeros(0, np.int64)
            if k > 0 and policy == "gate":
                x = np.concatenate([r.bank, carried(r, 0.0)], axis=-1)
                frames = frames_for_layer("gate", blind, blind.predict_proba(x), k, fps)
            elif k > 0:
                frames = uniform_frames(r.n_frames, k)
            x = np.concatenate([r.bank, carried(r, k, frames if k > 0 else None)], axis=-1)
            return use.decide(use.predict_proba(x), fps), frames

        return run

    return predict, layer


def bouts_seen(recs, looks: list[np.ndarray]) -> float:
    """Share of the true vision-behavior bouts (per animal) with at least one looked-at frame."""
    seen = total = 0
    cols = [BEHAVIORS.index(b) for b in VISION]
    for r, frames in zip(recs, looks):
        mask = np.zeros(r.n_frames + 1, bool)
        mask[frames] = True
        hit = np.concatenate([[0], np.cumsum(mask)])
        for c in cols:
            for i in range(r.present.shape[1]):
                y = np.diff(np.concatenate([[0], (r.present[:, i, c] & r.annotated[:, i]).astype(np.int8), [0]]))
                starts, ends = np.flatnonzero(y == 1), np.flatnonzero(y == -1)
                seen += int(((hit[ends] - hit[starts]) > 0).sum())
                total += starts.size
    return seen / max(total, 1)


def run_seed_set(s: int, seconds: float, fractions, policies=("uniform",), every_frame: bool = False,
                 which: str = "standard", forest_appearance: bool = True, gate_at=None, keypoint_forest: bool = True,
                 threads: int | None = None) -> dict:
    t0 = time.perf_counter()
    data, names = load_seed_set(s, seconds, which)
    logger.info("seed set %d: data and features in %.0f s", s, time.perf_counter() - t0)
    out = {}

    def add(method, predict, fit_s, looked):
        looks = {}
        for split in TEST_SPLITS:
            runs = [predict(r) for r in data[split]]
            if isinstance(runs[0], tuple):
                looks[split] = [lk for _, lk in runs]
                runs = [pr for pr, _ in runs]
            out.setdefault(method, {})[split] = score(data[split], runs)
            if split in looks:
                out[method][split]["bouts_seen"] = bouts_seen(data[split], looks[split])
        out[method]["fit_s"], out[method]["looked"] = fit_s, looked
        logger.info("seed set %d / %s: %s (fit %.0f s)", s, method,
                    ", ".join(f"{sp} macro {out[method][sp]['macro']:.3f} vision {out[method][sp]['vision']:.3f}"
                              for sp in TEST_SPLITS), fit_s)

    if keypoint_forest:
        t0 = time.perf_counter()
        add("forest: keypoints", forest(data["train"], 0.0), time.perf_counter() - t0, 0.0)
    cache: dict = {}
    first = True
    for k in fractions:
        if forest_appearance:
            t0 = time.perf_counter()
            add(f"forest + appearance, uniform {k:.0%}", forest(data["train"], k), time.perf_counter() - t0, k)
        for policy in policies:
            if policy == "gate" and gate_at is not None and not any(abs(k - g) < 1e-9 for g in gate_at):
                continue
            t0 = time.perf_counter()
            predict, layer = lookagain(data["train"], names, k, seed=s, policy=policy, cache=cache, threads=threads)
            fit_s = time.perf_counter() - t0
            vision_for = [b for b, g in zip(layer.behaviors, layer.chosen_groups) if "vision" in g]
            logger.info("seed set %d: %s %.0f%%: vision chosen for %s", s, policy, 100 * k,
                        ", ".join(vision_for) or "none")
            if first:
                add("lookagain: keypoints (k=0)", predict(0.0), fit_s, 0.0)
                first = False
            add(f"lookagain, {policy} {k:.0%}", predict(k), fit_s, k)
            out[f"lookagain, {policy} {k:.0%}"]["vision_for"] = vision_for
    if every_frame:
        t0 = time.perf_counter()
        predict, layer = lookagain(data["train"], names, 1.0, seed=s, cache=cache, threads=threads)
        add("lookagain, every frame", predict(1.0), time.perf_counter() - t0, 1.0)
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


def _diff_line(results, ours: str, theirs: str, split: str) -> str:
    diff = [results[s][ours][split]["macro"] - results[s][theirs][split]["macro"] for s in results]
    return (f"\n{ours} - {theirs}, {split} macro F1 per seed set: "
            f"{', '.join(f'{d:+.3f}' for d in diff)} (mean {np.mean(diff):+.3f})")


def table(results: dict[int, dict], fractions) -> list[str]:
    first = next(iter(results.values()))
    methods = [m for m, v in first.items() if isinstance(v, dict) and "fit_s" in v]
    lines = ["| method | test macro F1 | test vision macro | test bouts seen | shifted macro F1 | shifted vision "
             "macro | shifted bouts seen | fit time |", "|---|---|---|---|---|---|---|---|"]
    for m in methods:
        cells = [m]
        for split in TEST_SPLITS:
            for key in ("macro", "vision", "bouts_seen"):
                vals = [results[s][m][split].get(key) for s in results]
                cells.append("-" if vals[0] is None else _pm(vals))
        cells.append(f"{np.mean([results[s][m]['fit_s'] for s in results]):.0f} s")
        lines.append("| " + " | ".join(cells) + " |")
    pairs = [("lookagain: keypoints (k=0)", "forest: keypoints")] if "forest: keypoints" in methods else []
    ours_all = [m for m in methods if m.startswith("lookagain, ")]
    for m in ours_all:
        k = m.rsplit(" ", 1)[-1]
        if f"forest + appearance, uniform {k}" in methods:
            pairs.append((m, f"forest + appearance, uniform {k}"))
    for m in ours_all:  # the gate against evenly spaced looks at every budget, and every frame against both
        if m.startswith("lookagain, gate"):
            pairs += [(m, o) for o in ours_all if o.startswith("lookagain, uniform")]
        if m == "lookagain, every frame":
            pairs += [(m, o) for o in ours_all if o != m]
    for ours, theirs in pairs:
        for split in TEST_SPLITS:
            lines.append(_diff_line(results, ours, theirs, split))
    for m in ours_all:
        if "vision_for" in first[m]:
            chosen = [", ".join(results[s][m]["vision_for"]) or "none" for s in results]
            lines.append(f"\n{m}: behaviors the decision layer reads vision for (per seed set): {' / '.join(chosen)}")
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
    parser.add_argument("--policies", nargs="+", choices=("uniform", "gate"), default=["uniform", "gate"])
    parser.add_argument("--every-frame", action="store_true", help="also look at every frame (k = 100%%)")
    parser.add_argument("--preset", choices=("standard", "rare"), default="standard",
                        help="'rare': short, rare vision-only behaviors (rare_vision_* generator presets)")
    parser.add_argument("--no-forest-appearance", action="store_true",
                        help="skip the forest + appearance baseline")
    parser.add_argument("--gate-at", type=float, nargs="+", help="fractions the gate runs at (default: all)")
    parser.add_argument("--no-keypoint-forest", action="store_true", help="skip the keypoint-only forest")
    parser.add_argument("--threads", type=int, help="LightGBM threads of the decision layer (default: all cores)")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--no-doc", action="store_true")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    logger.setLevel(logging.INFO)
    t0 = time.perf_counter()
    results = {s: run_seed_set(s, args.seconds, args.fractions, args.policies, args.every_frame, args.preset,
                               not args.no_forest_appearance, args.gate_at, not args.no_keypoint_forest,
                               args.threads) for s in args.seed_sets}
    standard = args.preset == "standard"
    publish(table(results, args.fractions) + [""] + per_behavior(results), args.seed_sets, time.perf_counter() - t0,
            "vision-accuracy" if standard else "vision-accuracy-rare",
            "## Generated data with video: looked-at frames in the decision layer, several seed sets" if standard
            else "## Short, rare vision-only events (preset rare_vision): the gate against evenly spaced looks",
            doc=not args.no_doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
