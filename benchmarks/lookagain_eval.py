"""LookAgain on the generated splits: train once, score gate and uniform choices at every budget.

Used by ``benchmarks/accuracy.py`` (rows "LookAgain gate" / "LookAgain uniform" and the ablation
table); also runnable alone to prepare the frozen vision features::

    python benchmarks/lookagain_eval.py --prepare      # dense vision features of every split (cached)

Protocol
--------
* Vision features of every frame of every split are computed once with the frozen encoder
  (EfficientNet-Lite0, animal crops + context view at 128 px) and cached in
  ``<split>/vision-cache/``. Taking the rows of the chosen frames equals decoding only those
  frames (crops depend on the frame and the keypoints only).
* Training (``train`` split only): self-supervised pretraining on all 8 training videos (poses and
  vision features, no labels), then behavior training on the first 75 % of each training video;
  the last 25 % (blocked, never trained on) trains the gate (benefit of vision) and calibrates the
  thresholds per budget.
* Scoring: identical to the forest rows (labels moved onto pose tracks with the generator's truth;
  pooled per-behavior F1 over all scored (frame, track) pairs of a split).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from dlc_lookagain.io import load_project  # noqa: E402
from dlc_lookagain.io.record import PoseRecord  # noqa: E402
from dlc_lookagain.model.inference import fused_pass, looked_frames, motion_pass  # noqa: E402
from dlc_lookagain.model.look import attach_visual, look  # noqa: E402
from dlc_lookagain.model.lookagain import LookAgainModel, ModelConfig  # noqa: E402
from dlc_lookagain.model.pose_tokens import tokenize  # noqa: E402
from dlc_lookagain.model.training import (  # noqa: E402
    TrainConfig, calibrate, fine_tune_with_gate, fit_behavior, fit_gate, pretrain)
from dlc_lookagain.model.feature_cache import FeatureCache  # noqa: E402
from dlc_lookagain.model.visual_features import FrameFeatureExtractor  # noqa: E402
from dlc_lookagain.model.windows import Sequence, slice_sequence  # noqa: E402

logger = logging.getLogger("benchmarks.lookagain")

BUDGETS = (0.0, 0.10, 0.25, 0.50, 1.0)


def split_records(split_dir: Path) -> list[PoseRecord]:
    return list(load_project(split_dir / "config.yaml"))


def dense_sequence(rec: PoseRecord, split_dir: Path, extractor: FrameFeatureExtractor, name: str,
                   targets: np.ndarray | None = None) -> Sequence:
    """Pose tokens plus the vision features of every frame (cached in ``split_dir/vision-cache``)."""
    pose = tokenize(rec)
    seq = Sequence(name, pose, float(rec.fps or 30.0), targets=targets)
    cache = FeatureCache(split_dir / "vision-cache")
    t0 = time.perf_counter()
    feats = look(rec, pose, np.arange(rec.n_frames), extractor, cache, progress=True)
    attach_visual(seq, feats)
    logger.info("%s: vision features of %d frames ready in %.0f s", name, rec.n_frames, time.perf_counter() - t0)
    return seq


@dataclass
class TrainedModels:
    model: LookAgainModel
    seconds: float
    gate_summary: dict
    holdout: list[Sequence]
    pretrained: LookAgainModel | None = None  # the model right after pretraining (no labels yet)


def train_lookagain(train: list[Sequence], behaviors: list[str], cfg: TrainConfig, *, pretrained: bool = True,
                    holdout: float = 0.25, start: LookAgainModel | None = None) -> TrainedModels:
    """Pretrain (optional), train on the first part of each video, gate + thresholds on the rest.

    ``start``: an already pretrained model to start from (copied; pretraining is skipped).
    """
    t0 = time.perf_counter()
    torch.manual_seed(cfg.seed)
    snapshot = None
    if start is not None:
        model = copy.deepcopy(start)
    else:
        model = LookAgainModel(ModelConfig(behaviors=list(behaviors)))
        if pretrained:
            pretrain(model, train, cfg)
            snapshot = copy.deepcopy(model)
    fit_part, hold_part = [], []
    for s in train:
        cut = int(round(s.n_frames * (1 - holdout)))
        fit_part.append(slice_sequence(s, 0, cut))
        hold_part.append(slice_sequence(s, cut, s.n_frames))
    fit_behavior(model, fit_part, cfg, val=hold_part)
    summary = fit_gate(model, hold_part, cfg)
    fine_tune_with_gate(model, fit_part, cfg, val=hold_part)
    calibrate(model, hold_part)
    return TrainedModels(model, time.perf_counter() - t0, summary, hold_part, snapshot)


def predict_split(model: LookAgainModel, seqs: list[Sequence], budget: float, selector: str,
                  coverage: float = 0.5) -> tuple[list[np.ndarray], int, int]:
    """Binary predictions (T, I, C) per sequence, frames looked at, total frames."""
    looked = looked_frames(model, seqs, motion_pass(model, seqs), budget, selector, coverage=coverage)
    probs, _ = fused_pass(model, seqs, looked)
    th = model.thresholds_at(budget).numpy()
    preds = [p >= th for p in probs]
    return preds, int(sum(len(lk) for lk in looked)), int(sum(s.n_frames for s in seqs))


def score(model: LookAgainModel, seqs: list[Sequence], recs, budget: float, selector: str,
          behaviors: list[str], vision: tuple[str, ...]) -> dict:
    """Pooled per-behavior F1 on a split, scored like the forest rows (``recs``: accuracy.Recording)."""
    import baselines

    preds, n_looked, total = predict_split(model, seqs, budget, selector)
    y_true = np.concatenate([r.present[r.annotated] for r in recs])
    y_pred = np.concatenate([p[r.annotated] for p, r in zip(preds, recs)])
    table = baselines.f1_table(y_true, y_pred, behaviors)
    f1 = dict(zip(table["behavior"], table["f1"]))
    vis = [f1[b] for b in vision if np.isfinite(f1[b])]
    return {"f1": f1, "vision": float(np.mean(vis)) if vis else float("nan"), "looked": n_looked / total,
            "table": table}


def run(data: dict, split_dirs: dict[str, Path], behaviors: list[str], vision: tuple[str, ...],
        cfg: TrainConfig, *, test_splits=("test", "test_shifted"), ablations: bool = True,
        bundle_out: Path | None = None) -> dict:
    """Train LookAgain on ``data["train"]`` and score every budget and selector on the test splits.

    ``data[split]`` is a list of ``accuracy.Recording``. Returns ``{"main": {(selector, budget):
    {split: scores}}, "ablations": {name: {(selector, budget): {split: scores}}}, "times": {...},
    "gate": {...}}``.
    """
    extractor = FrameFeatureExtractor(crop_scale=ModelConfig().crop_scale)
    seqs: dict[str, list[Sequence]] = {}
    t0 = time.perf_counter()
    for split, recs in data.items():
        seqs[split] = []
        for r in recs:
            targets = np.where(r.annotated[..., None], r.present, np.nan).astype(np.float32)
            seqs[split].append(dense_sequence(r.record, split_dirs[split], extractor, r.name, targets))
    times = {"vision features (cached)": time.perf_counter() - t0}

    def evaluate(model, selectors=("gate", "uniform"), budgets=BUDGETS) -> dict:
        out = {}
        for sel in selectors:
            for b in budgets:
                if b in (0.0, 1.0) and sel != selectors[0]:
                    continue  # k=0 and k=100% do not depend on the selector
                out[(sel, b)] = {sp: score(model, seqs[sp], data[sp], b, sel, behaviors, vision)
                                 for sp in test_splits}
        return out

    main = train_lookagain(seqs["train"], behaviors, cfg, pretrained=True)
    times["train (pretrain + behavior + gate + calibration)"] = main.seconds
    t1 = time.perf_counter()
    result = {"main": evaluate(main.model), "gate": main.gate_summary, "ablations": {}}
    times["score all budgets"] = time.perf_counter() - t1
    if bundle_out is not None:
        from dlc_lookagain.model.lookagain import save_model

        summary = {sp: {f"{sel} {b:.0%}": {"macro_f1": v[sp]["f1"]["macro"], "vision_f1": v[sp]["vision"]}
                        for (sel, b), v in result["main"].items()} for sp in test_splits}
        save_model(main.model, bundle_out, extra={
            "kind": "bundled", "training_data": "dlc_lookagain.synth preset 'train' (8 x 60 s, 1-2 mice)",
            "skeleton": ["nose", "left_ear", "right_ear", "neck", "body_center", "tail_base", "tail_tip"],
            "held_out_scores": summary, "gate": main.gate_summary})
    if ablations:
        from dlc_lookagain.model.gate import COMPONENT_GROUPS

        t2 = time.perf_counter()
        for group in COMPONENT_GROUPS:
            m = copy.deepcopy(main.model)
            m.gate.remove(group)
            gs = fit_gate(m, main.holdout, cfg, progress=False)
            calibrate(m, main.holdout)
            result["ablations"][f"gate without {group}"] = evaluate(m, ("gate",), (0.10, 0.25))
            result["ablations"][f"gate without {group}"]["spearman"] = gs["spearman"]
        times["gate ablations"] = time.perf_counter() - t2
        t3 = time.perf_counter()
        # Without pretraining the encoder must learn from the labels (a frozen random one would
        # not be a fair comparison).
        scratch = train_lookagain(seqs["train"], behaviors, dataclasses.replace(cfg, train_encoder=True),
                                  pretrained=False)
        result["ablations"]["no pretraining"] = evaluate(scratch.model, ("gate",), (0.0, 0.10, 0.25, 1.0))
        times["ablation: train without pretraining"] = time.perf_counter() - t3
        t4 = time.perf_counter()
        # Same pretrained encoder, behavior training without the auxiliary vision-only probe.
        no_probe = train_lookagain(seqs["train"], behaviors, dataclasses.replace(cfg, visual_aux_weight=0.0),
                                   start=main.pretrained)
        result["ablations"]["no vision probe"] = evaluate(no_probe.model, ("gate",), (0.0, 0.10, 0.25, 1.0))
        times["ablation: train without the vision probe"] = time.perf_counter() - t4
    result["times"] = times
    return result


def prepare(splits: list[Path]) -> None:
    """Dense vision features for every recording of the given split folders."""
    extractor = FrameFeatureExtractor(crop_scale=ModelConfig().crop_scale)
    for split_dir in splits:
        for rec in split_records(split_dir):
            dense_sequence(rec, split_dir, extractor, Path(rec.video_path).stem)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prepare", action="store_true", help="compute dense vision features of every split")
    parser.add_argument("splits", nargs="*", type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(2)
    if args.prepare:
        import accuracy

        dirs = args.splits or [accuracy.ensure_split(s, accuracy.split_config(s)) for s in accuracy.SPLITS]
        prepare(dirs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
