"""Behavior accuracy on generated data: keypoints only vs. keypoints plus looked-at video frames.

Usage::

    python benchmarks/accuracy.py [--train-videos 8] [--test-videos 4] [--seconds 60]

Protocol
--------
* Data: three splits made by :mod:`dlc_lookagain.synth` and cached in
  ``benchmarks/_data/<split>-<hash of the generator config>/`` (a rerun with the same settings
  skips generation): ``train`` (preset ``train``: 480x360, 1 or 2 mice), ``test`` (same
  distribution, other seeds) and ``test_shifted`` (preset ``test_shifted``: 640x480, square
  arena, plastic or dark floor, dim drifting light, bigger animals, 3 mice). Poses are read from
  the DLC project with :func:`dlc_lookagain.io.load_project`, labels from ``<video>_labels.csv``
  with :func:`dlc_lookagain.io.labels.read_labels` (all eleven behaviors).
* Identity swaps: the label files name the true animals, the pose tracks swap at some close
  encounters. Labels are re-assigned to tracks with ``synth_truth/<video>_truth.npz
  ["track_animal"]`` (frame by frame, which animal a track shows), so every method is scored on
  what the track it sees actually did. Tracks that show no animal are not scored.
* Keypoints only (k = 0): :func:`baselines.keypoint_features` and :class:`baselines.SimbaForest`
  (one balanced forest per behavior, decision threshold and minimum bout length chosen by an inner
  blocked CV on the training frames). Trained on every ``--train-stride``-th training frame
  (adjacent frames are near-duplicates; this keeps the 5 trainings inside the time budget) with
  ``--trees`` trees, fewer than the forest's default 200, for the same reason.
* Uniform sampling at k: every ``round(1/k)``-th frame is "looked at"
  (:func:`appearance.uniform_frames`); its :mod:`appearance` features (rotated body and head crops,
  HOG + intensity/chroma statistics) are copied to every frame whose nearest looked-at frame it is,
  with the signed distance in seconds (:func:`appearance.propagate`), and appended to the keypoint
  features; same forest. k = 100 % looks at every frame. A frame's appearance features depend on
  that frame and the keypoints only, so they are computed once for all frames and cached; taking
  the selected rows equals decoding only the selected frames (:func:`appearance.extract` does
  that, in one pass).
* LookAgain rows (``benchmarks/lookagain_eval.py``): the model is pretrained (no labels) on the
  training videos, trained on the first 75 % of each, and its gate and thresholds are fitted on
  the last 25 %. Frozen EfficientNet-Lite0 features of animal crops and a context view are
  computed for every frame once and cached; a method "looks at" a frame by using its row. "gate"
  rows let the learned gate choose k of the frames per 2 s window, "uniform" rows take every
  1/k-th frame with the same model; k = 0 is LookAgain's keypoint-only path, k = 100 % sees every
  frame. Ablations: without pretraining, without the auxiliary vision-only probe (same pretrained
  encoder), and each gate component group removed (gate retrained).
  ``--save-bundle`` writes the trained model into the package (the bundled weights).
* Scores: per-behavior F1 pooled over all scored (frame, track) pairs of a split; macro F1 = mean
  over behaviors with a defined F1; vision-dependent macro F1 = mean over eat, drink, groom, rear
  (the behaviors the generator makes undecidable from keypoints alone). "looked %" = frames whose
  pixels were used / all frames of the split.
* Real data: ``benchmarks/real_labels.py`` (its own blocked CV on the public BehaviorDEPOT and
  ethome recordings, the LookAgain keypoint path beside the baselines) writes its own section of
  ``docs/benchmarks.md``; run it after ``--save-bundle``, since it warm-starts from the bundled
  weights.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import appearance  # noqa: E402
import baselines  # noqa: E402
import report  # noqa: E402

from dlc_lookagain.io import load_project  # noqa: E402
from dlc_lookagain.io.labels import read_labels  # noqa: E402
from dlc_lookagain.io.record import PoseRecord  # noqa: E402
from dlc_lookagain.synth import BEHAVIOR_NAMES, GeneratorConfig, generate_project, preset  # noqa: E402

logger = logging.getLogger("benchmarks.accuracy")
DATA_DIR = Path(__file__).resolve().parent / "_data"

#: Split name -> (preset, default number of videos).
SPLITS: dict[str, tuple[str, int]] = {
    "train": ("train", 8), "test": ("test", 4), "test_shifted": ("test_shifted", 4)
}
TEST_SPLITS = ("test", "test_shifted")
SECONDS = 60.0
BEHAVIORS: list[str] = list(BEHAVIOR_NAMES)
#: Behaviors that only pixels decide in the generator (docs/synthetic_data.md).
VISION: tuple[str, ...] = ("eat", "drink", "groom", "rear")
#: Fractions of frames looked at by uniform sampling (1.0 = every frame).
FRACTIONS: tuple[float, ...] = (0.10, 0.25, 0.50, 1.0)
SEED = 0


# ----------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------


def split_config(split: str, seconds: float = SECONDS, n_videos: int | None = None) -> GeneratorConfig:
    """Generator configuration of one split (no SLEAP file: this benchmark reads the DLC output)."""
    name, n_default = SPLITS[split]
    return preset(name, n_videos=n_videos or n_default, seconds=seconds, write_slp=False)


def config_hash(cfg: GeneratorConfig) -> str:
    """Short stable hash of a configuration (its dataclass repr is deterministic)."""
    return hashlib.sha1(repr(cfg).encode()).hexdigest()[:10]


def ensure_split(split: str, cfg: GeneratorConfig, data_dir: Path = DATA_DIR) -> Path:
    """Generate ``split`` into ``data_dir/<split>-<hash>/`` unless a finished copy is there."""
    out = data_dir / f"{split}-{config_hash(cfg)}"
    done = out / ".complete"
    if done.exists():
        logger.info("%s: cached in %s", split, out)
        return out
    logger.info("%s: generating %d x %.0f s into %s", split, cfg.n_videos, cfg.seconds, out)
    generate_project(cfg, out, overwrite=True)
    done.write_text(repr(cfg))
    return out


@dataclass
class Recording:
    """One video with its pose, track-aligned labels and features."""

    name: str
    record: PoseRecord
    present: np.ndarray  # bool (T, I, C), labels of the animal each track shows
    annotated: np.ndarray  # bool (T, I), False where a track shows no animal
    kp: np.ndarray  # float32 (T, I, Fk)
    app: np.ndarray | None = None  # float32 (T, I, Fa), every frame

    @property
    def n_frames(self) -> int:
        return self.present.shape[0]


def _track_labels(rec: PoseRecord, labels_path: Path, truth_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Labels per pose track: the labels of the animal the track shows in each frame."""
    t, n_tracks = rec.keypoints.shape[:2]
    lab = read_labels(labels_path, n_frames=t, fps=rec.fps, individuals=rec.individuals, behaviors=BEHAVIORS)
    # Aligned by name, column a of ``lab`` is animal a (individual{a+1}, or individual0 alone).
    track_animal = np.load(truth_path)["track_animal"]
    if track_animal.shape != (t, n_tracks):
        raise ValueError(f"{truth_path}: track_animal {track_animal.shape}, pose {(t, n_tracks)}")
    shown = track_animal >= 0
    a = np.where(shown, track_animal, 0)
    frames = np.arange(t)[:, None]
    present = lab.present[frames, a] & shown[..., None]
    annotated = lab.annotated[frames, a] & shown
    return present, annotated


def _app_path(split_dir: Path, name: str, cfg: appearance.AppearanceConfig) -> Path:
    tag = hashlib.sha1(f"{appearance.FEATURE_VERSION} {cfg!r}".encode()).hexdigest()[:8]
    return split_dir / "appearance" / f"{name}-{tag}.npy"


def _appearance_job(args) -> str:
    """Worker: appearance features of every frame of one video, saved to ``out``."""
    pose_path, video_path, out, cfg = args
    from dlc_lookagain.io import load_pose

    rec = load_pose(pose_path, video=video_path)
    t0 = time.perf_counter()
    feats = appearance.extract(rec, np.arange(rec.keypoints.shape[0]), cfg)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp.npy")
    np.save(tmp, feats)
    tmp.replace(out)
    return f"{Path(video_path).name}: {feats.shape[0]} frames in {time.perf_counter() - t0:.1f} s"


def load_split(split_dir: Path, cfg: appearance.AppearanceConfig, workers: int = 2) -> list[Recording]:
    """Pose, track-aligned labels, keypoint features and cached appearance features of a split."""
    recs = []
    jobs = []
    for rec in load_project(split_dir / "config.yaml"):
        name = Path(rec.video_path).stem
        present, annotated = _track_labels(
            rec, split_dir / "videos" / f"{name}_labels.csv", split_dir / "synth_truth" / f"{name}_truth.npz"
        )
        kp, _ = baselines.keypoint_features(rec)
        recs.append(Recording(name, rec, present, annotated, kp))
        out = _app_path(split_dir, name, cfg)
        if not out.exists():
            jobs.append((rec.source, rec.video_path, out, cfg))
    if jobs:
        logger.info("%s: appearance features of %d videos (every frame, cached)", split_dir.name, len(jobs))
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for msg in pool.map(_appearance_job, jobs):
                logger.info("  %s", msg)
    for r in recs:
        r.app = np.load(_app_path(split_dir, r.name, cfg))
    return recs


# ----------------------------------------------------------------------------------------------
# Features per method
# ----------------------------------------------------------------------------------------------


def looked_features(r: Recording, fraction: float) -> tuple[np.ndarray, int]:
    """Keypoint features plus propagated appearance features of uniformly sampled frames.

    Returns the ``(T, I, F)`` features and the number of frames looked at.
    """
    if fraction == 0:
        return r.kp, 0
    sel = appearance.uniform_frames(r.n_frames, fraction)
    app = appearance.propagate(sel, r.app[sel], r.n_frames, fps=r.record.fps)
    # An animal whose keypoints were missing in the looked-at frame has NaN appearance: flag it in
    # ``app_missing`` (second to last column; the last is the distance) and zero the rest, which
    # trees split off with the flag.
    nan = np.isnan(app[..., :-2]).any(-1)
    app[..., -2] = nan.astype(np.float32)
    app = np.nan_to_num(app, nan=0.0)
    return np.concatenate([r.kp, app], axis=-1), int(sel.size)


def _stack(recs: list[Recording], feats: list[np.ndarray], stride: int):
    """Concatenate recordings along time (tracks padded to the largest count, padding unscored)."""
    n_ind = max(f.shape[1] for f in feats)
    xs, ps, ans = [], [], []
    for r, f in zip(recs, feats):
        pad = n_ind - f.shape[1]
        ann = r.annotated.copy()
        ann[np.arange(r.n_frames) % stride != 0] = False
        xs.append(np.pad(f, ((0, 0), (0, pad), (0, 0))))
        ps.append(np.pad(r.present, ((0, 0), (0, pad), (0, 0))))
        ans.append(np.pad(ann, ((0, 0), (0, pad))))
    return np.concatenate(xs), np.concatenate(ps), np.concatenate(ans)


def evaluate(
    train: list[Recording], tests: dict[str, list[Recording]], fraction: float, trees: int, stride: int
) -> dict[str, dict]:
    """Train on ``train`` with features at ``fraction`` looked at, score every test split."""
    t0 = time.perf_counter()
    train_feats = [looked_features(r, fraction)[0] for r in train]
    x, present, annotated = _stack(train, train_feats, stride)
    forest = baselines.SimbaForest(n_estimators=trees, inner_n_estimators=max(1, trees // 2),
                                   min_bout_s="cv", fps=train[0].record.fps, random_state=SEED)
    forest.fit(x, present, annotated, BEHAVIORS)
    fit_s = time.perf_counter() - t0
    out = {}
    for split, recs in tests.items():
        y_true, y_pred, looked, total = [], [], 0, 0
        for r in recs:
            f, n_looked = looked_features(r, fraction)
            pred = forest.predict(f)
            y_true.append(r.present[r.annotated])
            y_pred.append(pred[r.annotated])
            looked += n_looked
            total += r.n_frames
        table = baselines.f1_table(np.concatenate(y_true), np.concatenate(y_pred), BEHAVIORS)
        f1 = dict(zip(table["behavior"], table["f1"]))
        vision = np.nanmean([f1[b] for b in VISION]) if any(np.isfinite(f1[b]) for b in VISION) else np.nan
        out[split] = {"f1": {b: float(v) for b, v in f1.items()}, "vision": float(vision), "looked": looked / total}
    logger.info("k=%g: fit %.1f s, total %.1f s", fraction, fit_s, time.perf_counter() - t0)
    return out


# ----------------------------------------------------------------------------------------------
# Tables
# ----------------------------------------------------------------------------------------------

SHORT = {"walk": "walk", "run": "run", "rest": "rest", "turn": "turn", "eat": "eat*", "drink": "drink*",
         "groom": "groom*", "rear": "rear*", "sniff": "sniff", "chase": "chase", "huddle": "huddle"}


def _fmt(v: float) -> str:
    return f"{v:.3f}" if np.isfinite(v) else "n/a"


def _row(method: str, frac: float, r: dict, base: dict) -> list[str]:
    d_macro = r["f1"]["macro"] - base["f1"]["macro"]
    d_vis = r["vision"] - base["vision"]
    return ([method, f"{frac:.0%}"] + [_fmt(r["f1"][b]) for b in BEHAVIORS]
            + [_fmt(r["f1"]["macro"]), _fmt(r["vision"]), f"{100 * r['looked']:.1f}",
               "" if frac == 0 else f"{d_macro:+.3f}", "" if frac == 0 else f"{d_vis:+.3f}",
               "" if frac == 0 or not base["vision"] > 0 else f"{r['vision'] / base['vision']:.2f}x"])


def result_rows(results: dict[float, dict], split: str,
                lookagain: dict | None = None) -> tuple[list[str], list[list[str]]]:
    """Header and rows (strings) of one test split's table.

    ``lookagain`` is ``lookagain_eval.run(...)["main"]``: ``{(selector, budget): {split: scores}}``;
    its rows compare with LookAgain's own keypoint-only row (budget 0).
    """
    header = (["method", "k"] + [SHORT[b] for b in BEHAVIORS]
              + ["macro F1", "vision F1", "looked %", "Δmacro vs k=0", "Δvision vs k=0", "vision / k=0"])
    base = results[0.0][split]
    rows = []
    for frac, res in results.items():
        method = "forest: keypoints only" if frac == 0 else "forest: uniform + appearance"
        rows.append(_row(method, frac, res[split], base))
    if lookagain is None:
        for frac in FRACTIONS:
            rows.append(["LookAgain gate", f"{frac:.0%}", "not run (--skip-lookagain)"] + [""] * (len(header) - 3))
        return header, rows
    la_base = lookagain[("gate", 0.0)][split]
    for (selector, frac), res in sorted(lookagain.items(), key=lambda kv: (kv[0][1], kv[0][0] != "gate")):
        if frac == 0:
            method = "LookAgain: keypoints only"
        elif frac >= 1:
            method = "LookAgain: every frame"
        else:
            method = f"LookAgain {selector}"
        rows.append(_row(method, frac, res[split], la_base))
    return header, rows


def ablation_rows(la: dict) -> tuple[list[str], list[list[str]]]:
    """Ablation table: macro / vision F1 on both test splits at k = 10 % and 25 %."""
    header = ["variant", "k"] + [f"{sp} {m}" for sp in TEST_SPLITS for m in ("macro", "vision")]
    rows = []
    variants = [("full model (gate)", {k: v for k, v in la["main"].items() if k[0] == "gate"})]
    variants += list(la["ablations"].items())
    for name, res in variants:
        for key in sorted(k for k in res if isinstance(k, tuple)):
            frac = key[1]
            cells = []
            for sp in TEST_SPLITS:
                cells += [_fmt(res[key][sp]["f1"]["macro"]), _fmt(res[key][sp]["vision"])]
            rows.append([name, f"{frac:.0%}"] + cells)
    return header, rows


def plain_table(header: list[str], rows: list[list[str]]) -> str:
    """Fixed-width text table."""
    widths = [len(h) for h in header]
    for row in rows:
        for j, cell in enumerate(row):
            # The "not run" note spans the behavior columns; do not widen the first one for it.
            if not cell.startswith("not run"):
                widths[j] = max(widths[j], len(cell))
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths)),
             "  ".join("-" * w for w in widths)]
    for row in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    return "\n".join(lines)


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """GitHub pipe table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def split_summary(recs: list[Recording]) -> str:
    """One line: videos, animals, frames, positive (frame, track) pairs of every behavior."""
    n_ann = int(sum(r.annotated.sum() for r in recs))
    pos = {b: int(sum(r.present[..., c][r.annotated].sum() for r in recs)) for c, b in enumerate(BEHAVIORS)}
    animals = [int(r.annotated.any(0).sum()) for r in recs]
    size = f"{recs[0].record.metadata.get('frame_dimensions', '')}"
    return (f"{len(recs)} videos, animals per video {animals}, {sum(r.n_frames for r in recs)} frames, "
            f"{n_ann} scored (frame, track) pairs; positives " + ", ".join(f"{b} {n}" for b, n in pos.items())
            + (f"; frame (h, w) {size}" if size else ""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train-videos", type=int, default=SPLITS["train"][1])
    parser.add_argument("--test-videos", type=int, default=SPLITS["test"][1])
    parser.add_argument("--seconds", type=float, default=SECONDS)
    parser.add_argument("--trees", type=int, default=100, help="trees per forest (inner CV: half)")
    parser.add_argument("--train-stride", type=int, default=2, help="train on every n-th frame")
    parser.add_argument("--no-doc", action="store_true", help="do not rewrite docs/benchmarks.md")
    parser.add_argument("--skip-lookagain", action="store_true", help="forest rows only")
    parser.add_argument("--no-ablations", action="store_true", help="LookAgain main rows only")
    parser.add_argument("--pretrain-steps", type=int, default=600)
    parser.add_argument("--behavior-steps", type=int, default=1000)
    parser.add_argument("--save-bundle", action="store_true",
                        help="write the trained model to dlc_lookagain/model/weights/ (bundled weights)")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not args.verbose:
        logging.getLogger("baselines").setLevel(logging.WARNING)
    t_start = time.perf_counter()
    app_cfg = appearance.AppearanceConfig()
    data = {}
    split_dirs = {}
    for split in SPLITS:
        n = args.train_videos if split == "train" else args.test_videos
        cfg = split_config(split, seconds=args.seconds, n_videos=n)
        split_dirs[split] = ensure_split(split, cfg)
        data[split] = load_split(split_dirs[split], app_cfg)
    t_data = time.perf_counter() - t_start

    results: dict[float, dict] = {}
    tests = {s: data[s] for s in TEST_SPLITS}
    # Forest results are deterministic for given data and settings: cached between runs.
    forest_key = hashlib.sha1(repr((sorted(split_dirs.items()), args.trees, args.train_stride, SEED,
                                    appearance.FEATURE_VERSION)).encode()).hexdigest()[:10]
    # JSON, not pickle: a file in the data folder must not be able to run code when read back.
    forest_cache = DATA_DIR / f"forest-results-{forest_key}.json"
    if forest_cache.exists():
        results = {float(frac): r for frac, r in json.loads(forest_cache.read_text()).items()}
        logger.info("forest results cached in %s", forest_cache)
    else:
        for frac in (0.0, *FRACTIONS):
            results[frac] = evaluate(data["train"], tests, frac, args.trees, args.train_stride)
        tmp = forest_cache.with_suffix(".tmp")
        tmp.write_text(json.dumps({repr(frac): r for frac, r in results.items()}))
        tmp.replace(forest_cache)
    t_eval = time.perf_counter() - t_start - t_data

    la = None
    if not args.skip_lookagain:
        import lookagain_eval
        from dlc_lookagain.model.training import TrainConfig

        bundle = None
        if args.save_bundle:
            from dlc_lookagain.project_training import bundled_model_path

            bundle = bundled_model_path()
        t0 = time.perf_counter()
        la = lookagain_eval.run(data, split_dirs, BEHAVIORS, VISION,
                                TrainConfig(pretrain_steps=args.pretrain_steps, behavior_steps=args.behavior_steps,
                                            seed=SEED),
                                test_splits=TEST_SPLITS, ablations=not args.no_ablations, bundle_out=bundle)
        la["times"]["total"] = time.perf_counter() - t0

    text, md = [], []
    intro = (f"Synthetic splits ({args.seconds:g} s videos; train {args.train_videos} videos, each test "
             f"split {args.test_videos}); SimbaForest with {args.trees} trees (inner CV "
             f"{max(1, args.trees // 2)}), trained on every n-th training frame (n = {args.train_stride}); "
             "labels aligned to tracks with the generator's truth. * = vision-dependent behavior; vision F1 "
             "= macro over eat, drink, groom, rear; Δ = difference to keypoints only (k=0) on the "
             "same split.")
    text.append(intro)
    md.append(intro)
    for split in ("train", *TEST_SPLITS):
        line = f"{split}: {split_summary(data[split])}"
        text.append(line)
        md.append(f"- {line}")
    for split in TEST_SPLITS:
        header, rows = result_rows(results, split, None if la is None else la["main"])
        text += ["", f"== {split} ==", plain_table(header, rows)]
        md += ["", f"### {split}", "", markdown_table(header, rows)]
    timing = f"data + features {t_data:.0f} s, forest training and scoring {t_eval:.0f} s"
    if la is not None:
        gate = la["gate"]
        note = (f"LookAgain gate on the held-out training frames: Spearman rho(gate score, benefit of vision) "
                f"= {gate['spearman']:.3f} over {gate['frames']} animal-frames.")
        text += ["", note]
        md += ["", note]
        if la["ablations"]:
            header, rows = ablation_rows(la)
            text += ["", "== ablations (LookAgain) ==", plain_table(header, rows)]
            md += ["", "### Ablations (LookAgain)", "", markdown_table(header, rows)]
            sp = {k: v.get("spearman") for k, v in la["ablations"].items() if "spearman" in v}
            if sp:
                line = "Gate Spearman rho without a component group: " + ", ".join(
                    f"{k.replace('gate without ', '')} {v:.3f}" for k, v in sp.items())
                text.append(line)
                md += ["", line]
        timing += "; LookAgain: " + ", ".join(f"{k} {v:.0f} s" for k, v in la["times"].items())

    total = time.perf_counter() - t_start
    text.append(f"\n{timing}; total {total:.0f} s")
    md.append(f"\n{timing}; total {total:.0f} s.")
    print("\n".join(text))
    if not args.no_doc:
        protocol = ("Protocol: train on the `train` split, score on `test` (same distribution, other seeds) "
                    "and `test_shifted` (other arena, floor, lighting, animal size, resolution, 3 animals). "
                    "Keypoints only = `baselines.keypoint_features` + `baselines.SimbaForest`; uniform + "
                    "appearance = the same plus model-free appearance features (`dlc_lookagain/features/appearance.py`: "
                    "rotated body and head crops, HOG and intensity/chroma statistics) of every 1/k-th "
                    "frame, "
                    "copied to the frames nearest to it with the signed distance. LookAgain rows: the model "
                    "of `dlc_lookagain.model` (pretrained without labels, trained on 75 % of each training "
                    "video, gate and thresholds fitted on the other 25 %), choosing frames with its gate or "
                    "uniformly; its own k=0 row is the keypoint-only path. See the docstring of "
                    "`benchmarks/accuracy.py` for details.")
        report.update_section("accuracy", "## Accuracy\n\n" + protocol + "\n\n" + "\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
