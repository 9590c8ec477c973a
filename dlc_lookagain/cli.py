"""Command line: ``dlc-lookagain analyze|inspect|pretrain|train|evaluate|export ...``.

Exit codes: 0 success, 1 an input could not be used (the message names the file) or a recording
failed, 2 wrong command-line usage (argparse), 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from pathlib import Path

from dlc_lookagain import __version__
from dlc_lookagain.errors import PoseFormatError, command_line
from dlc_lookagain.model.look_schedule import DEFAULT_POLICY, POLICIES

logger = logging.getLogger("dlc_lookagain")

EXIT_OK, EXIT_BAD_INPUT, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

#: What ``export --to`` accepts, and what each one is.
EXPORT_TARGETS = {
    "figures": "ethogram and time-budget PNGs",
    "boris": "BORIS aggregated-events table (.tsv)",
    "nwb": "NWB file with poses (ndx-pose) and behavior intervals",
    "video": "the video with keypoints and behaviors drawn (.mp4)",
    "slp": "SLEAP: a copy of the labels with behaviors as events (always written for .slp input)",
}


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not a fraction between 0 and 1 (0.25 = a quarter of frames)")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be 1 or more")
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


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text} must be a positive number")
    return value


def _add_fps_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--fps", type=_positive_float, metavar="FPS",
                   help="frame rate of the recordings; needed when DLC outputs are used without their videos "
                   "(a DLC csv/h5 stores none: 30 is assumed, with a warning)")


def _add_model_options(p: argparse.ArgumentParser, top_k: bool = True) -> None:
    _add_fps_option(p)
    if top_k:
        p.add_argument("--top-k", type=_fraction, default=0.25, metavar="FRACTION",
                       help="fraction of frames the video is looked at (0 = keypoints only, 1 = every frame; "
                       "default 0.25)")
    p.add_argument("--model", help="a model file (.pt) trained with dlc-lookagain train; default: the newest "
                   "one in <project>/lookagain/models, else the bundled model")


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--vision-encoder", metavar="SPEC",
                   help="vision backbone to look with, e.g. 'torchscript:/path/model.pt' (a model file may "
                   "only name a built-in backbone itself; default: the one the model names)")
    p.add_argument("--overwrite", action="store_true",
                   help="recompute every video, even those whose behavior files are up to date")
    p.add_argument("--min-bout", type=float, default=0.2, metavar="SECONDS",
                   help="leave bouts shorter than this out of the bout table (default 0.2)")
    p.add_argument("--n-workers", type=_positive_int, default=1, metavar="N",
                   help="analyze N videos at a time on this machine (needs dask; default 1)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="run on an existing Dask cluster, e.g. tcp://10.0.0.5:8786 (see docs/cluster.md)")


def _add_labeled_inputs(p: argparse.ArgumentParser, labels: bool) -> None:
    """Inputs of train, pretrain and evaluate: the project, its labels, a subset of videos."""
    p.add_argument("path", help="config.yaml, project folder, or one pose file")
    if labels:
        p.add_argument("--labels",
                       help="a label file, or a folder of label files (default: beside the videos)")
    p.add_argument("--videos", nargs="+", metavar="VIDEO", help="only these videos")


def _add_training_options(p: argparse.ArgumentParser, *, labels: bool, name: str, steps: int) -> None:
    _add_labeled_inputs(p, labels)
    _add_model_options(p, top_k=False)
    p.add_argument("--name", default=name, help=f"file name of the saved model (default: {name})")
    what = "training" if labels else "pretraining"
    p.add_argument("--steps", type=_positive_int, default=steps, help=f"{what} steps (default {steps})")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")


def _add_verbosity(p: argparse.ArgumentParser, default) -> None:
    p.add_argument("-v", "--verbose", action="count", default=default, help="more detail (-vv for debugging)")
    p.add_argument("-q", "--quiet", action="store_true", default=default,
                   help="only warnings and errors, no progress bars")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dlc-lookagain",
        description="Behavior labels from your DeepLabCut or SLEAP poses, looking at only the video "
        "frames that need it. Run it after pose estimation, on the same project.",
        epilog="Exit codes: 0 done, 1 an input could not be used (the message names the file), "
        "2 wrong usage, 130 interrupted. 'dlc-lookagain COMMAND --help' explains each command.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _add_verbosity(parser, argparse.SUPPRESS)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # -v/-q work before and after the command; SUPPRESS keeps a subcommand from resetting them.
    verbosity = argparse.ArgumentParser(add_help=False)
    _add_verbosity(verbosity, argparse.SUPPRESS)

    def command(name: str, **kwargs) -> argparse.ArgumentParser:
        return subparsers.add_parser(name, parents=[verbosity], **kwargs)

    p = command("analyze", help="label behaviors in every analyzed video of a project",
                       description="Find every analyzed video of the project, check the poses against the "
                       "videos, look at the most informative frames, and write behavior files "
                       "(<pose file>_behaviors.csv/.h5, _bouts.csv, _ethogram.png, _time_budget.png) beside "
                       "the pose files. Videos whose outputs are up to date are skipped, so an interrupted "
                       "run continues where it stopped; outputs made with another model, top-k or pose file "
                       "are recomputed (the old files go to <project>/lookagain/replaced/).")
    _add_input_options(p)
    _add_model_options(p)
    _add_run_options(p)
    p.add_argument("--no-figures", action="store_true", help="do not draw the ethogram and time-budget PNGs")
    p.add_argument("--labeled-video", action="store_true",
                   help="also write <pose file>_lookagain_labeled.mp4 with keypoints and behaviors drawn (slow)")
    p.add_argument("--export", nargs="+", choices=["boris", "nwb"], default=[], metavar="FORMAT",
                   help="also write these formats: boris (BORIS aggregated events), nwb (needs "
                   "pip install \"dlc_lookagain[nwb]\")")

    p = command("export", help="write figures, BORIS/NWB files or a labeled video (analyzing first "
                       "if needed)",
                       description="Write other formats from the behavior files of a project or pose file, "
                       "analyzing first the videos that are not analyzed yet. Also the step after "
                       "'Export Analysis HDF5' in SLEAP: dlc-lookagain export labels.analysis.h5 --to boris. "
                       "Targets: " + "; ".join(f"{k}: {v}" for k, v in EXPORT_TARGETS.items()) + ".")
    _add_input_options(p)
    p.add_argument("--to", nargs="+", choices=list(EXPORT_TARGETS), default=["figures", "boris"],
                   metavar="TARGET", help="what to write: " + ", ".join(EXPORT_TARGETS) +
                   " (default: figures boris)")
    p.add_argument("--top-k", type=_fraction, default=0.25, metavar="FRACTION",
                   help="for videos not analyzed yet: fraction of frames looked at (default 0.25); behavior "
                   "files that exist are used as they are, whatever top-k or model made them")
    _add_model_options(p, top_k=False)
    _add_run_options(p)

    p = command("inspect", help="read pose files and print what was found (nothing is written)",
                       description="Read the project or pose file and print one line per recording: "
                       "frames, fps, animals, bodyparts, missing keypoints, and the video used.")
    _add_input_options(p)

    p = command("train", help="learn your behaviors from your own annotations",
                       description="Train the behavior classifier on the label files found "
                       "beside your videos (<video>_labels.csv, BORIS exports, bout tables; see "
                       "docs/label_formats.md). The model is saved in <project>/lookagain/models/ and used "
                       "by analyze from then on. Every decision threshold is chosen by cross-validation across your labeled videos, and the cross-validated F1 per behavior is printed: what to expect on a new video.")
    _add_training_options(p, labels=True, name="behavior", steps=1200)
    p.add_argument("--behaviors", nargs="+", metavar="NAME", help="learn only these behaviors, in this order")
    p.add_argument("--decision", choices=["boosted", "neural"], default="boosted",
                   help="decision layer: boosted trees over the feature bank, thresholds by cross-validation "
                   "(default, measured best), or the network head of earlier versions (uses --steps)")
    p.add_argument("--encoder", action="store_true",
                   help="also offer the motion encoder's embedding to the trees (used per behavior only where "
                   "it raises the cross-validated F1)")
    p.add_argument("--part-dropout", action="store_true",
                   help="also train on copies with one bodypart replaced by its guess (slower; measured worse "
                        "than the default on a project lacking a bodypart in 3 of 4 cases: docs/benchmarks.md)")
    p.add_argument("--no-training-poses", dest="keep_poses", action="store_false",
                   help="do not keep the labeled poses in the model file (kept by default: a project lacking a "
                        "training bodypart then gets decision thresholds chosen again for its placed parts)")
    p.add_argument("--folds", type=_positive_int, default=5,
                   help="cross-validation folds (recordings held out whole when there are several; default 5)")
    p.add_argument("--look", type=_fraction, default=0.25, metavar="FRACTION",
                   help="fraction of each labeled video's frames looked at (as analyze --top-k does; default "
                        "0.25): body and head crops of each animal, used per behavior only where they raise the "
                        "cross-validated F1; 0 = keypoints only")
    p.add_argument("--look-policy", choices=POLICIES, default=DEFAULT_POLICY,
                   help=f"which frames: 'uniform' evenly spaced; 'gate' spends each video's budget where "
                        f"keypoints leave a behavior most in doubt (ties with 'uniform' at 25%%; better at very "
                        f"small --look on videos like the labeled ones). analyze chooses them the same way "
                        f"(default {DEFAULT_POLICY})")

    p = command("pretrain", help="adapt the motion encoder to your videos (no labels needed)",
                       description="Self-supervised pretraining on your project's poses (and a few video "
                       "frames). Optional: train on top of it with 'train --model <saved file>'.")
    _add_training_options(p, labels=False, name="pretrained", steps=600)

    p = command("evaluate", help="score a model against your labels (per-behavior F1, confusion)",
                       description="Run the model as analyze would on every video that has a label file and "
                       "print precision, recall and F1 per behavior and a confusion matrix; they are also "
                       "written to <project>/lookagain/evaluation/. Use videos the model was not trained on.")
    _add_labeled_inputs(p, labels=True)
    _add_model_options(p)
    return parser


def _configure_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    logging.basicConfig(level=level, format="%(levelname)s: %(message)s")
    # Video warnings are logged as well as raised for library callers: show them once.
    from dlc_lookagain.io.video import VideoWarning

    warnings.simplefilter("ignore", VideoWarning)
    logging.captureWarnings(True)
    if verbose < 2:
        for noisy in ("distributed", "tornado", "bokeh", "numexpr"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


def _print_summaries(summaries) -> None:
    analyzed = any(s.annotations_written or s.skipped or s.error for s in summaries)
    header = ("pose file", "frames", "fps", "animals", "parts", "missing", "video")
    rows = [header + (("looked", "most time", "behaviors file") if analyzed else ())]
    for s in summaries:
        if s.error:
            rows.append((s.pose_file.name, "-", "-", "-", "-", "-", "-", "FAILED", s.error[:80]))
            continue
        row = (
            s.pose_file.name, str(s.n_frames), f"{s.fps:.2f}" if s.fps else "?",
            str(len(s.individuals)), str(s.n_bodyparts) if s.n_bodyparts else "?",
            f"{100 * s.missing_fraction:.1f}%" if s.missing_fraction == s.missing_fraction else "?",
            s.video.name if s.video else "(none: keypoints only)",
        )
        if analyzed:
            out = s.outputs.get("behaviors_csv")
            looked = f"{100 * s.looked_fraction:.0f}%" + (" (up to date)" if s.skipped else "")
            top = sorted(s.time_budget.items(), key=lambda kv: -kv[1])[:2]
            row += (looked, ", ".join(f"{b} {100 * v:.0f}%" for b, v in top), Path(out).name if out else "")
        rows.append(row)
    width = max(len(r) for r in rows)
    rows = [tuple(r) + ("",) * (width - len(r)) for r in rows]
    widths = [max(len(r[i]) for r in rows) for i in range(width)]
    for r in rows:
        sys.stdout.write("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() + "\n")


def _input_kwargs(args) -> dict:
    return dict(
        videos=args.videos, videotype=args.videotype, destfolder=args.destfolder, shuffle=args.shuffle,
        filtered=False if args.unfiltered else None, track_method=args.track_method,
    )


def _run(args) -> int:
    progress = not args.quiet
    if args.command == "inspect":
        from dlc_lookagain.pipeline import RecordingSummary, read_inputs

        records = read_inputs(args.path, **_input_kwargs(args), progress=progress)
        _print_summaries([RecordingSummary.from_record(r) for r in records])
        return EXIT_OK
    if args.command in ("analyze", "export"):
        from dlc_lookagain.pipeline import analyze

        if args.command == "analyze":
            outputs = dict(figures=not args.no_figures, labeled_video=args.labeled_video, exports=args.export)
        else:
            to = set(args.to)
            outputs = dict(figures="figures" in to, labeled_video="video" in to,
                           exports=[e for e in ("boris", "nwb") if e in to])
        common = dict(top_k=args.top_k, model=args.model, overwrite=args.overwrite, min_bout_s=args.min_bout,
                      fps=args.fps, vision_encoder=args.vision_encoder,
                      n_workers=args.n_workers, scheduler=args.scheduler, progress=progress,
                      recompute_changed=args.command == "analyze", **outputs)
        inputs = _input_kwargs(args)
        if args.command == "export" and Path(args.path).name.lower().endswith(".analysis.h5"):
            # The post-export step for SLEAP analysis files: checks it is one, with a clear message.
            from dlc_lookagain.sleap_hook import export_analysis_h5

            videos = inputs.pop("videos")
            summaries = export_analysis_h5(args.path, videos[0] if videos else None, **inputs, **common)
        else:
            summaries = analyze(args.path, **inputs, **common)
        _print_summaries(summaries)
        return EXIT_BAD_INPUT if any(s.error for s in summaries) else EXIT_OK
    if args.command == "train":
        from dlc_lookagain.project_training import train

        path = train(args.path, args.labels, videos=args.videos, behaviors=args.behaviors, model=args.model,
                     name=args.name, steps=args.steps, seed=args.seed, progress=progress, fps=args.fps,
                     decision=args.decision, encoder=args.encoder, folds=args.folds,
                     part_dropout=args.part_dropout, keep_poses=args.keep_poses, look=args.look,
                     look_policy=args.look_policy)
        sys.stdout.write(f"model saved: {path}\n")
        return EXIT_OK
    if args.command == "pretrain":
        from dlc_lookagain.project_training import pretrain

        path = pretrain(args.path, videos=args.videos, model=args.model, name=args.name, steps=args.steps,
                        seed=args.seed, progress=progress)
        sys.stdout.write(f"model saved: {path}\n")
        return EXIT_OK
    if args.command == "evaluate":
        from dlc_lookagain.evaluation import evaluate

        report = evaluate(args.path, args.labels, videos=args.videos, model=args.model, top_k=args.top_k,
                          progress=progress, fps=args.fps)
        sys.stdout.write(str(report) + "\n")
        for path in report.paths.values():
            sys.stdout.write(f"written: {path}\n")
        return EXIT_OK
    raise AssertionError(args.command)  # argparse only lets known commands through


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    args.verbose = getattr(args, "verbose", 0)
    args.quiet = getattr(args, "quiet", False)
    _configure_logging(args.verbose, args.quiet)
    try:
        with command_line():  # advice in messages names flags (--overwrite), not keywords
            return _run(args)
    except (PoseFormatError, FileExistsError, FileNotFoundError, ImportError) as exc:
        if not getattr(exc, "logged", False):
            logger.error("%s", exc)
        return EXIT_BAD_INPUT
    except ValueError as exc:
        # Values argparse cannot check (a model without behaviors, an unknown behavior name ...).
        logger.error("%s", exc)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        logger.error("interrupted; run the same command again to continue where it stopped")
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
