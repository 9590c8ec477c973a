"""Decoding overlapped with describing: per-stage times of looking at a video, side by side in one run.

Usage::

    python benchmarks/look_overlap.py [--fractions 0.03 0.10 0.25 1.0] [--repeats 3] [--no-doc]

What ``analyze`` does for the frames it looks at (:func:`dlc_lookagain.features.appearance.extract`:
decode the chosen frames in one forward pass, crop every animal, describe the crops), on the first
video of the generated ``test`` split (480x360, 2 animals) and of ``test_shifted`` (640x480, 3
animals) of ``benchmarks/accuracy.py`` (60 s, 30 fps, H.264; made on first use). For each fraction
``k`` of evenly spaced frames:

* ``decode``: the reader alone (every frame decoded, the chosen ones converted to RGB).
* ``describe``: the crops and descriptors alone, timed inside the inline loop.
* ``inline``: both in one thread, one after the other (before 2026-12-04).
* ``overlapped``: the product: the reader a few frames ahead in its own thread
  (:class:`dlc_lookagain.io.prefetch.Prefetched`), describing in the caller's.

Best of ``--repeats`` runs per cell (the machine's other load only adds). ``floor`` = the slower
of decode and describe: what a perfect overlap reaches.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from accuracy import ensure_split, split_config  # noqa: E402
from keypoint_accuracy import publish, setup_logging  # noqa: E402

from dlc_lookagain.features import appearance  # noqa: E402
from dlc_lookagain.io import load_project  # noqa: E402
from dlc_lookagain.io.video import VideoReader  # noqa: E402

logger = logging.getLogger("benchmarks.look_overlap")


def first_recording(split: str):
    project = ensure_split(split, split_config(split, 60.0))
    records = list(load_project(project / "config.yaml"))
    return sorted(records, key=lambda r: r.source.name)[0]


def stages(rec, frames: np.ndarray) -> dict:
    """Seconds of decode alone, describe alone (inside the inline loop), inline, overlapped."""
    cfg = appearance.AppearanceConfig()
    geometry, hog = appearance.crop_geometry(rec, cfg), appearance._hog(cfg.size)
    t0 = time.perf_counter()
    with VideoReader(rec.video_path) as reader:
        for _ in reader.read_frames(frames.tolist(), color="rgb"):
            pass
    decode = time.perf_counter() - t0
    describe = 0.0
    t0 = time.perf_counter()
    with VideoReader(rec.video_path) as reader:
        for i, frame in reader.read_frames(frames.tolist(), color="rgb"):
            t1 = time.perf_counter()
            appearance.frame_features(frame, i, geometry, cfg, hog)
            describe += time.perf_counter() - t1
    inline = time.perf_counter() - t0
    t0 = time.perf_counter()
    appearance.extract(rec, frames, cfg)
    overlapped = time.perf_counter() - t0
    return {"decode": decode, "describe": describe, "inline": inline, "overlapped": overlapped}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.03, 0.10, 0.25, 1.0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-doc", action="store_true")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    t_all = time.perf_counter()
    lines = ["| video | animals | k | looked frames | decode | describe | inline | overlapped | floor | "
             "inline / overlapped | overlapped ms per looked frame |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for split in ("test", "test_shifted"):
        rec = first_recording(split)
        with VideoReader(rec.video_path) as reader:
            size = f"{reader.info.width}x{reader.info.height}"
        for k in args.fractions:
            frames = appearance.uniform_frames(rec.n_frames, k)
            runs = [stages(rec, frames) for _ in range(args.repeats)]
            best = {key: min(r[key] for r in runs) for key in runs[0]}
            floor = max(best["decode"], best["describe"])
            logger.info("%s k=%g: %s", split, k, best)
            lines.append(f"| {split} {size} ({rec.n_frames} frames) | {rec.keypoints.shape[1]} | {k:.0%} | "
                         f"{frames.size} | {best['decode']:.2f} s | {best['describe']:.2f} s | {best['inline']:.2f} s | "
                         f"{best['overlapped']:.2f} s | {floor:.2f} s | {best['inline'] / best['overlapped']:.2f}x | "
                         f"{1000 * best['overlapped'] / frames.size:.1f} |")
    lines.append(f"\nBest of {args.repeats} runs per cell. `inline / overlapped` > 1: the reader thread pays; "
                 "`floor`: the slower stage, what a perfect overlap would reach.")
    publish(lines, [], time.perf_counter() - t_all, "look-overlap",
            "## Looking at frames: decoding overlapped with describing", doc=not args.no_doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
