"""Keypoints only (k = 0) on generated data, over several generator seed sets: LookAgain's decision
layer against the SimBA-style forest, side by side in one run.

Usage::

    python benchmarks/keypoint_accuracy.py [--seed-sets 0 1 2] [--seconds 60] [--no-doc]

Protocol
--------
* Data: for every seed set ``s`` the three splits of ``benchmarks/accuracy.py`` (``train`` 8 videos,
  ``test`` 4, ``test_shifted`` 4, 60 s each) are generated anew with every generator seed shifted by
  ``SEED_STRIDE * s`` (``s = 0`` is the split ``accuracy.py`` uses), pose and labels only (no video:
  nothing here looks at pixels). Cached in ``benchmarks/_data/kp-<split>-<hash>/``.
* Labels are re-assigned to pose tracks through ``synth_truth`` (identity swaps), as in
  ``accuracy.py``; tracks that show no animal are not scored.
* ``simba-forest``: ``baselines.keypoint_features`` + ``baselines.SimbaForest`` exactly as
  ``accuracy.py`` runs it (100 trees, every 2nd training frame, threshold and minimum bout by inner
  blocked CV).
* ``lookagain``: what ``dlc_lookagain.train`` fits: the feature bank
  (:func:`dlc_lookagain.features.feature_bank`) and the boosted decision layer
  (:func:`dlc_lookagain.model.decision.fit_decision_layer`), thresholds and minimum bouts chosen by
  leave-recording-out CV over the training videos (never on a test video).
* ``forest-on-bank`` (``--attribution``): the forest on the feature bank, to tell the features'
  share of the gain from the decision layer's.
* Scores: per-behavior F1 pooled over a split's scored (frame, track) pairs; macro = mean over the
  eleven behaviors; ``kp macro`` = mean over the seven the generator makes decidable from keypoints
  (eat, drink, groom, rear need pixels). Mean ± sample std over seed sets.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import baselines  # noqa: E402
from accuracy import BEHAVIORS, SPLITS, VISION, _track_labels, config_hash  # noqa: E402

from dlc_lookagain.features import feature_bank  # noqa: E402
from dlc_lookagain.io import load_project  # noqa: E402
from dlc_lookagain.model.decision import LabeledFeatures, fit_decision_layer  # noqa: E402
from dlc_lookagain.synth import generate_project, preset  # noqa: E402

logger = logging.getLogger("benchmarks.keypoint_accuracy")
DATA_DIR = Path(__file__).resolve().parent / "_data"
SEED_STRIDE = 7919
TEST_SPLITS = ("test", "test_shifted")
REPO = Path(__file__).resolve().parents[1]


def split_dir(split: str, seed_set: int, seconds: float) -> tuple[Path, float]:
    name, n_videos = SPLITS[split]
    cfg = preset(name, n_videos=n_videos, seconds=seconds, write_slp=False, write_video=False)
    cfg = cfg.replace(seed=cfg.seed + SEED_STRIDE * seed_set)
    out = DATA_DIR / f"kp-{split}-{config_hash(cfg)}"
    if not (out / ".complete").exists():
        logger.info("%s (seed set %d): generating %d x %.0f s", split, seed_set, cfg.n_videos, cfg.seconds)
        generate_project(cfg, out, overwrite=True)
        (out / ".complete").write_text(repr(cfg))
    return out, float(cfg.scene.fps)


def load(folder: Path, fps: float) -> list[dict]:
    recs = []
    for rec in load_project(folder / "config.yaml", progress=False):
        if rec.fps is None:  # generated without video: the pose files store no frame rate
            rec = dataclasses.replace(rec, fps=fps)
        name = Path(rec.source).name.split("DLC")[0]
        present, annotated = _track_labels(rec, folder / "videos" / f"{name}_labels.csv",
                                           folder / "synth_truth" / f"{name}_truth.npz")
        recs.append({"name": name, "record": rec, "present": present, "annotated": annotated})
    return recs


def _stack(recs, key, stride):
    n_ind = max(r[key].shape[1] for r in recs)
    xs, ps, ans = [], [], []
    for r in recs:
        pad = n_ind - r[key].shape[1]
        ann = r["annotated"].copy()
        ann[np.arange(ann.shape[0]) % stride != 0] = False
        xs.append(np.pad(r[key], ((0, 0), (0, pad), (0, 0)), constant_values=np.nan))
        ps.append(np.pad(r["present"], ((0, 0), (0, pad), (0, 0))))
        ans.append(np.pad(ann, ((0, 0), (0, pad))))
    return np.concatenate(xs), np.concatenate(ps), np.concatenate(ans)


def f1_summary(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """Per-behavior F1 pooled over the scored (frame, track) pairs, and its macro means over every
    behavior, the keypoint ones and the vision ones (eat, drink, groom, rear)."""
    table = baselines.f1_table(y_true, y_pred, BEHAVIORS)
    f1 = {b: float(v) for b, v in zip(table["behavior"], table["f1"])}
    kp = [b for b in BEHAVIORS if b not in VISION]
    return {"macro": float(np.nanmean([f1[b] for b in BEHAVIORS])),
            "kp_macro": float(np.nanmean([f1[b] for b in kp])),
            "vision": float(np.nanmean([f1[b] for b in VISION])), "f1": f1}


def score(recs, predict) -> dict:
    y_true = np.concatenate([r["present"][r["annotated"]] for r in recs])
    y_pred = np.concatenate([predict(r)[r["annotated"]] for r in recs])
    return f1_summary(y_true, y_pred)


def forest_method(train, key, trees=100, stride=2):
    x, present, annotated = _stack(train, key, stride)
    x = np.nan_to_num(x, nan=0.0)
    forest = baselines.SimbaForest(n_estimators=trees, inner_n_estimators=max(1, trees // 2), min_bout_s="cv",
                                   fps=train[0]["record"].fps, random_state=0)
    forest.fit(x, present, annotated, BEHAVIORS)
    return lambda r: forest.predict(np.nan_to_num(r[key], nan=0.0))


def lookagain_method(train, names, seed=0):
    samples = [LabeledFeatures(r["bank"], r["present"], r["annotated"], float(r["record"].fps), r["name"])
               for r in train]
    layer = fit_decision_layer(samples, BEHAVIORS, names, seed=seed)

    def predict(r):
        return layer.decide(layer.predict_proba(r["bank"]), float(r["record"].fps))

    return predict, layer


def run_seed_set(s: int, seconds: float, attribution: bool) -> dict:
    data = {split: load(*split_dir(split, s, seconds)) for split in ("train", *TEST_SPLITS)}
    names = None
    t0 = time.perf_counter()
    for recs in data.values():
        for r in recs:
            r["kp"], _ = baselines.keypoint_features(r["record"])
            r["bank"], rec_names = feature_bank(r["record"])
            if names is None:
                names = rec_names
            elif rec_names != names:
                raise RuntimeError("feature bank names differ between generated recordings")
    logger.info("seed set %d: features in %.1f s", s, time.perf_counter() - t0)
    out = {}
    methods = {"simba-forest": lambda: forest_method(data["train"], "kp"),
               "lookagain": lambda: lookagain_method(data["train"], names, seed=s)[0]}
    if attribution:
        methods["forest-on-bank"] = lambda: forest_method(data["train"], "bank")
    for method, make in methods.items():
        t0 = time.perf_counter()
        predict = make()
        fit_s = time.perf_counter() - t0
        out[method] = {split: score(data[split], predict) for split in TEST_SPLITS}
        out[method]["fit_s"] = fit_s
        logger.info("seed set %d / %s: %s (fit %.0f s)", s, method,
                    ", ".join(f"{sp} macro {out[method][sp]['macro']:.3f}" for sp in TEST_SPLITS), fit_s)
    return out


def _pm(values) -> str:
    v = np.asarray(values, dtype=float)
    return f"{v.mean():.3f} ± {v.std(ddof=1):.3f}" if v.size > 1 else f"{v.mean():.3f}"


def table(results: dict[int, dict]) -> list[str]:
    methods = list(next(iter(results.values())))
    lines = ["| method | test macro F1 | test kp macro | shifted macro F1 | shifted kp macro | fit time |",
             "|---|---|---|---|---|---|"]
    for m in methods:
        cells = [m]
        for split in TEST_SPLITS:
            for key in ("macro", "kp_macro"):
                cells.append(_pm([results[s][m][split][key] for s in results]))
        cells.append(f"{np.mean([results[s][m]['fit_s'] for s in results]):.0f} s")
        lines.append("| " + " | ".join(cells) + " |")
    base = "simba-forest"
    for m in methods:
        if m == base:
            continue
        for split in TEST_SPLITS:
            diff = [results[s][m][split]["macro"] - results[s][base][split]["macro"] for s in results]
            lines.append(f"\n{m} - {base}, {split} macro F1 per seed set: "
                         f"{', '.join(f'{d:+.3f}' for d in diff)} (mean {np.mean(diff):+.3f})")
    return lines


def per_behavior(results: dict[int, dict]) -> list[str]:
    """Per-behavior F1, mean over seed sets, of every method (the entries with a fit time)."""
    methods = [m for m, v in next(iter(results.values())).items() if isinstance(v, dict) and "fit_s" in v]
    lines = ["| split | method | " + " | ".join(BEHAVIORS) + " |", "|---|---|" + "---|" * len(BEHAVIORS)]
    for split in TEST_SPLITS:
        for m in methods:
            vals = [np.nanmean([results[s][m][split]["f1"][b] for s in results]) for b in BEHAVIORS]
            lines.append(f"| {split} | {m} | " + " | ".join(f"{v:.2f}" for v in vals) + " |")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed-sets", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--attribution", action="store_true", help="also the forest on the feature bank")
    parser.add_argument("--no-doc", action="store_true")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    logger.setLevel(logging.INFO)
    t0 = time.perf_counter()
    results = {s: run_seed_set(s, args.seconds, args.attribution) for s in args.seed_sets}
    publish(table(results) + [""] + per_behavior(results), args.seed_sets, time.perf_counter() - t0,
            "keypoint-accuracy", "## Generated data, keypoints only, several seed sets", doc=not args.no_doc)
    return 0


def setup_logging(verbose: bool) -> None:
    """INFO with ``-v``, else warnings only, with time and logger name (every seed-set benchmark)."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(name)s: %(message)s")


def publish(lines: list[str], seed_sets, seconds: float, section: str, title: str, doc: bool = True) -> None:
    """Print a seed-set benchmark's tables and run time, and write them to ``section`` of docs/benchmarks.md."""
    text = "\n".join(lines)
    print(text)
    print(f"\nseed sets {seed_sets}, {seconds:.0f} s")
    if doc:
        import report

        report.update_section(section, title + "\n\n" + text)


if __name__ == "__main__":
    sys.exit(main())
