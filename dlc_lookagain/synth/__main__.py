"""Command line: ``python -m dlc_lookagain.synth {project,sample,presets} ...``.

Examples
--------
``python -m dlc_lookagain.synth project OUTDIR --videos 2 --animals 1,2 --seconds 20 --seed 0 --preset train``
    writes a synthetic DLC project to OUTDIR.
``python -m dlc_lookagain.synth sample OUTDIR``
    writes the small project committed as ``sample_project/``.
``python -m dlc_lookagain.synth check``
    measures how well keypoints alone separate groom/rest, eat/rest at the hopper, ...
``python -m dlc_lookagain.synth presets``
    lists the presets.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
import time
from pathlib import Path

from dlc_lookagain.synth.config import PRESETS, preset
from dlc_lookagain.synth.generate import generate_project, write_readme
from dlc_lookagain.synth.honesty import honesty_report

logger = logging.getLogger("dlc_lookagain.synth")


def _animals(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated counts like 1,2, got {text!r}") from None
    if not values or any(not 1 <= v <= 3 for v in values):
        raise argparse.ArgumentTypeError(f"animal counts must be 1, 2 or 3, got {text!r}")
    return values


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m dlc_lookagain.synth",
        description="Generate synthetic DeepLabCut/SLEAP projects with behavior labels.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("project", help="write a synthetic DLC project")
    p.add_argument("outdir", type=Path, help="project folder to create")
    p.add_argument(
        "--preset", default="train", choices=sorted(PRESETS), help="starting configuration (train)"
    )
    p.add_argument("--videos", type=int, help="number of videos")
    p.add_argument("--animals", type=_animals, help="animals per video, cycled over videos, e.g. 1,2")
    p.add_argument("--seconds", type=float, help="length of each video")
    p.add_argument("--seed", type=int, help="root seed (same seed -> same pose and label files)")
    p.add_argument("--width", type=int, help="frame width (even)")
    p.add_argument("--height", type=int, help="frame height (even)")
    p.add_argument("--task", help="DLC Task name")
    p.add_argument("--encoder", choices=["auto", "opencv-h264", "ffmpeg-h264", "opencv-mp4v"])
    p.add_argument("--no-video", action="store_true", help="skip rendering (pose, labels and .slp only)")
    p.add_argument("--no-slp", action="store_true", help="skip the SLEAP files")
    p.add_argument("--overwrite", action="store_true", help="replace an existing synthetic project")

    s = sub.add_parser("sample", help="write the small sample project (sample_project/ in the repository)")
    s.add_argument("outdir", type=Path)
    s.add_argument("--overwrite", action="store_true")

    c = sub.add_parser(
        "check", help="measure how well keypoints alone separate the vision-dependent behaviors"
    )
    c.add_argument("--preset", default="train", choices=sorted(PRESETS))
    c.add_argument("--seconds", type=float, default=300.0, help="length of each simulated recording")
    c.add_argument("--recordings", type=int, default=15, help="recordings to simulate (one animal each)")
    c.add_argument("--folds", type=int, default=5, help="cross-validation folds, whole recordings held out")
    c.add_argument("--seed", type=int, default=0)

    sub.add_parser("presets", help="list the presets")
    return parser


def _config_from_args(args: argparse.Namespace):
    changes: dict = {}
    for arg, key in (
        ("videos", "n_videos"),
        ("animals", "animals"),
        ("seconds", "seconds"),
        ("seed", "seed"),
        ("task", "task"),
        ("encoder", "encoder"),
    ):
        if getattr(args, arg) is not None:
            changes[key] = getattr(args, arg)
    scene = {k: getattr(args, k) for k in ("width", "height") if getattr(args, k) is not None}
    if scene:
        changes["scene"] = scene
    if args.no_video:
        changes["write_video"] = False
    if args.no_slp:
        changes["write_slp"] = False
    return preset(args.preset, **changes)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.command == "presets":
        for name, cfg in PRESETS.items():
            sc = cfg.scene
            logger.info(
                "%-13s %dx%d, %g s x %d videos, animals %s, arenas %s, floors %s, animal length %s",
                name,
                sc.width,
                sc.height,
                cfg.seconds,
                cfg.n_videos,
                cfg.animals,
                "/".join(sc.arena_shapes),
                "/".join(sc.floor_textures),
                sc.animal_length,
            )
        return 0
    if args.command == "check":
        cfg = preset(args.preset, seconds=args.seconds, seed=args.seed)
        report = honesty_report(cfg, args.recordings, args.folds)
        logger.info("summary: %s", ", ".join(f"{k}={v:.3f}" for k, v in report.items()))
        return 0
    try:
        if args.command == "sample":
            cfg = preset("sample")
            command = "python -m dlc_lookagain.synth sample sample_project --overwrite"
        else:
            cfg = _config_from_args(args)
            command = "python -m dlc_lookagain.synth " + shlex.join(sys.argv[1:] if argv is None else argv)
        t0 = time.perf_counter()
        out = generate_project(cfg, args.outdir, overwrite=args.overwrite)
        if args.command == "sample":
            write_readme(out, cfg, command)
    except (ValueError, FileExistsError, RuntimeError) as err:
        logger.error("%s", err)
        return 1
    elapsed = time.perf_counter() - t0
    logger.info(
        "wrote %s project %s: %d video(s), %.1f MB, in %.1f s",
        "multi-animal" if out.multi_animal else "single-animal",
        out.project_dir,
        len(out.videos),
        out.total_bytes() / 1e6,
        elapsed,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
