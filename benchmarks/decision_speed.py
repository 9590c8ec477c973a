"""Time of ``train()`` and of keypoint-only ``analyze`` with the boosted decision layer, end to end.

Usage::

    python benchmarks/decision_speed.py [--minutes 10] [--videos 2] [--no-doc]

A generated DLC project (``dlc_lookagain.synth``, pose and labels only, no video, 2 mice per
recording) of ``--minutes`` minutes in ``--videos`` recordings is trained on with
``dlc_lookagain.train`` exactly as a user calls it (reading, features, cross-validation, final fit,
saving), then analyzed with ``dlc_lookagain.analyze(top_k=0)`` (reading, features, decision layer,
writing every output but figures). Targets (issue 11): train on 10 min of labeled 2-animal video
<= 5 min on 2 cores; prediction >= 300x real time per animal.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import dlc_lookagain  # noqa: E402
from dlc_lookagain.synth import generate_project, preset  # noqa: E402

logger = logging.getLogger("benchmarks.decision_speed")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="total labeled minutes")
    parser.add_argument("--videos", type=int, default=2)
    parser.add_argument("--no-doc", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    seconds = 60.0 * args.minutes / args.videos
    cfg = preset("train", n_videos=args.videos, seconds=seconds, animals=(2,), write_video=False, write_slp=False)
    fps = float(cfg.scene.fps)
    tmp = Path(tempfile.mkdtemp(prefix="lookagain-speed-"))
    try:
        t0 = time.perf_counter()
        generate_project(cfg, tmp / "project", overwrite=True)
        gen_s = time.perf_counter() - t0
        config = tmp / "project" / "config.yaml"
        t0 = time.perf_counter()
        model = dlc_lookagain.train(config, fps=fps, progress=False)
        train_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        summaries = dlc_lookagain.analyze(config, top_k=0, fps=fps, figures=False, progress=False)
        analyze_s = time.perf_counter() - t0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    frames = sum(s.n_frames for s in summaries)
    animal_seconds = sum(s.n_frames * len(s.individuals) for s in summaries) / fps
    lines = [
        "| step | data | wall time | ratio |",
        "|---|---|---|---|",
        f"| train (features, {model.name}: CV + final fit) | {args.minutes:g} min, {args.videos} recordings x 2 "
        f"mice | {train_s:.0f} s | target <= 300 s: {'met' if train_s <= 300 else 'NOT met'} |",
        f"| analyze top_k=0 (read, features, decide, write) | {frames} frames, {animal_seconds / 60:.1f} "
        f"animal-min | {analyze_s:.1f} s | {animal_seconds / analyze_s:.0f}x real time per animal (target >= 300x) |",
    ]
    text = "\n".join(lines)
    print(text)
    print(f"(generation {gen_s:.0f} s, not counted)")
    if not args.no_doc:
        import report

        report.update_section("decision-speed", "## Training and keypoint-only prediction time\n\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
