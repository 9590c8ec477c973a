"""Command line: ``dlc-lookagain analyze|inspect ...``.

Exit codes: 0 success, 1 an input could not be used (the message names the file),
2 wrong command-line usage (argparse), 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from pathlib import Path

from dlc_lookagain import __version__
from dlc_lookagain.errors import PoseFormatError

logger = logging.getLogger("dlc_lookagain")

EXIT_OK, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 130


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not a fraction between 0 and 1 (0.25 = a quarter of frames)")
    return value


def _add_input_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "path",
        help="your DeepLabCut project's config.yaml (or its folder), one DLC output .h5/.csv, "
        "a SLEAP .slp, or a SLEAP analysis .h5",
    )
    p.add_argument("--videos", nargs="+", metavar="VIDEO", help="only these videos or folders of videos")
    p.add_argument("--videotype", default="", help="only videos with this extension, e.g. mp4")
    p.add_argument("--destfolder", help="folder where DeepLabCut wrote its .h5 files, if not beside the videos")
    p.add_argument("--shuffle", type=int, help="use the DeepLabCut output of this shuffle")
    p.add_argument("--track-method", choices=["el", "bx", "sk", "ctd", "tr"],
                   help="multi-animal DLC: use the tracks of this tracker")
    p.add_argument("--unfiltered", action="store_true",
                   help="use DLC's raw output even where a _filtered file exists")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dlc-lookagain",
        description="Behavior labels from your DeepLabCut or SLEAP poses, looking at only the video "
        "frames that need it. Run it after pose estimation, on the same project.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more detail (-vv for debugging)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("analyze", help="label behaviors in every analyzed video of a project",
                       description="Find every analyzed video of the project, check the poses against the "
                       "videos, look at the most informative frames, and write behavior files "
                       "(<video>..._behaviors.csv/.h5, _bouts.csv) beside the pose files. Videos already "
                       "analyzed are skipped, so an interrupted run continues where it stopped.")
    _add_input_options(p)
    p.add_argument("--top-k", type=_fraction, default=0.25, metavar="FRACTION",
                   help="fraction of frames the video is looked at (0 = keypoints only, 1 = every frame; "
                   "default 0.25)")
    p.add_argument("--model", help="a model file (.pt) trained with dlc_lookagain.train; default: the newest "
                   "one in <project>/lookagain/models, else the bundled model")
    p.add_argument("--overwrite", action="store_true", help="recompute videos whose behavior files exist")

    p = sub.add_parser("inspect", help="read pose files and print what was found (nothing is written)",
                       description="Read the project or pose file and print one line per recording: "
                       "frames, fps, animals, bodyparts, missing keypoints, and the video used.")
    _add_input_options(p)
    return parser


def _configure_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    logging.basicConfig(level=level, format="%(levelname)s: %(message)s")
    # Video warnings are logged as well as raised for library callers: show them once.
    from dlc_lookagain.io.video import VideoWarning

    warnings.simplefilter("ignore", VideoWarning)
    logging.captureWarnings(True)


def _print_summaries(summaries) -> None:
    analyzed = any(s.annotations_written or s.skipped for s in summaries)
    header = ("pose file", "frames", "fps", "animals", "parts", "missing", "video")
    rows = [header + (("looked", "behaviors file") if analyzed else ())]
    for s in summaries:
        row = (
            s.pose_file.name, str(s.n_frames), f"{s.fps:.2f}" if s.fps else "?",
            str(len(s.individuals)), str(s.n_bodyparts), f"{100 * s.missing_fraction:.1f}%",
            s.video.name if s.video else "(none: keypoints only)",
        )
        if analyzed:
            out = s.outputs.get("behaviors_csv")
            row += ("skipped" if s.skipped else f"{100 * s.looked_fraction:.0f}%", Path(out).name if out else "")
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        sys.stdout.write("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() + "\n")


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    _configure_logging(args.verbose, args.quiet)
    from dlc_lookagain.pipeline import RecordingSummary, analyze, read_inputs  # heavy imports after parsing

    kwargs = dict(
        videos=args.videos, videotype=args.videotype, destfolder=args.destfolder, shuffle=args.shuffle,
        filtered=False if args.unfiltered else None, track_method=args.track_method,
    )
    try:
        if args.command == "inspect":
            summaries = [RecordingSummary.from_record(r) for r in read_inputs(args.path, **kwargs)]
        else:
            summaries = analyze(args.path, **kwargs, top_k=args.top_k, model=args.model, overwrite=args.overwrite,
                                progress=not args.quiet)
    except (PoseFormatError, FileExistsError, FileNotFoundError) as exc:
        logger.error("%s", exc)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        logger.error("interrupted")
        return EXIT_INTERRUPTED
    _print_summaries(summaries)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
