"""Writing a recording in the tools' own formats.

* DeepLabCut project: ``config.yaml`` in DLC 2.3's layout, analyzed output beside each
  video (``.h5`` + ``.csv`` + ``_meta.pickle``) named and laid out as DLC names them;
* SLEAP predictions: ``<video file>.predictions.slp`` (sleap-io);
* ground-truth behavior labels: a frame table ``<stem>_labels.csv`` and a bout table
  ``<stem>_label_bouts.csv``;
* simulator truth (true keypoints, identity swaps, scene) in ``synth_truth/``.

Nothing here imports :mod:`dlc_lookagain.io`: the files are written the way the
tools write them, so the readers are tested against independent writers.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import pickle
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from dlc_lookagain.synth.ethogram import BEHAVIOR_NAMES, BODYPARTS, SKELETON

logger = logging.getLogger(__name__)

#: Name of the one animal in single-animal label files (the name
#: ``dlc_lookagain.io`` gives the animal of a single-animal DLC file).
SINGLE_ANIMAL_NAME = "individual0"
COORDS = ("x", "y", "likelihood")
TRUTH_DIR = "synth_truth"
_TRAIN_FRACTION = 0.95


def dlc_date(date: dt.date) -> str:
    """DLC's project date string, ``%b%d`` (e.g. ``May06``)."""
    return date.strftime("%b%d")


def dlc_scorer(task: str, date: dt.date, iterations: int, multi_animal: bool) -> str:
    """Scorer (network) name as DLC 2.x TensorFlow writes it.

    ``DLC_resnet50_<Task><Mon><day>shuffle1_<iters>`` for single-animal projects,
    ``DLC_dlcrnetms5_<Task><Mon><day>shuffle1_<iters>`` for multi-animal projects.
    """
    net = "dlcrnetms5" if multi_animal else "resnet50"
    return f"DLC_{net}_{task}{dlc_date(date)}shuffle1_{int(iterations)}"


def pose_file_stem(video_stem: str, scorer: str, multi_animal: bool) -> str:
    """File stem of DLC's analyzed output (``_el`` = maDLC ellipse-tracker output)."""
    return f"{video_stem}{scorer}" + ("_el" if multi_animal else "")


# ----------------------------------------------------------------------------------------------------------
# config.yaml
# ----------------------------------------------------------------------------------------------------------


def _yaml_block(data) -> str:
    return yaml.safe_dump(data, default_flow_style=False, sort_keys=False, allow_unicode=True)


def write_config(
    project_dir: Path,
    task: str,
    experimenter: str,
    date: dt.date,
    videos: Sequence[tuple[Path, int, int]],
    multi_animal: bool,
    individuals: Sequence[str],
) -> Path:
    """Write ``config.yaml`` the way DeepLabCut 2.3 lays it out.

    Parameters
    ----------
    project_dir : Path
        Project folder.
    task, experimenter : str
        DLC ``Task`` and ``scorer``.
    date : datetime.date
        Project date.
    videos : sequence of (Path, int, int)
        Video path, width and height, for ``video_sets``.
    multi_animal : bool
        maDLC project (``bodyparts: MULTI!`` plus individuals and multi-animal bodyparts).
    individuals : sequence of str
        Individual names (multi-animal projects).

    Returns
    -------
    Path
        The written file.
    """
    video_sets = {str(Path(p).resolve()): {"crop": f"0, {w}, 0, {h}"} for p, w, h in videos}
    lines = [
        "    # Project definitions (do not edit)",
        f"Task: {task}",
        f"scorer: {experimenter}",
        f"date: {dlc_date(date)}",
        f"multianimalproject: {'true' if multi_animal else 'false'}",
        "identity: true" if multi_animal else "identity:",
        "",
        "    # Project path (change when moving around)",
        f"project_path: {Path(project_dir).resolve()}",
        "",
        "    # Annotation data set configuration (and individual video cropping parameters)",
        "video_sets:",
    ]
    lines += ["  " + line for line in _yaml_block(video_sets).splitlines()]
    if multi_animal:
        lines += _yaml_block({"individuals": list(individuals)}).splitlines()
        lines.append("uniquebodyparts: []")
        lines += _yaml_block({"multianimalbodyparts": list(BODYPARTS)}).splitlines()
        lines.append("bodyparts: MULTI!")
    else:
        lines += _yaml_block({"bodyparts": list(BODYPARTS)}).splitlines()
    lines += [
        "",
        "    # Fraction of video to start/stop when extracting frames for labeling/refinement",
        "start: 0",
        "stop: 1",
        "numframes2pick: 20",
        "",
        "    # Plotting configuration",
    ]
    lines += _yaml_block({"skeleton": [list(edge) for edge in SKELETON]}).splitlines()
    lines += [
        "skeleton_color: black",
        "pcutoff: 0.6",
        "dotsize: 12",
        "alphavalue: 0.7",
        "colormap: rainbow",
        "",
        "    # Training,Evaluation and Analysis configuration",
        "TrainingFraction:",
        f"- {_TRAIN_FRACTION}",
        "iteration: 0",
        f"default_net_type: {'dlcrnet_ms5' if multi_animal else 'resnet_50'}",
        f"default_augmenter: {'multi-animal-imgaug' if multi_animal else 'default'}",
    ]
    if multi_animal:
        lines.append("default_track_method: ellipse")
    lines += [
        "snapshotindex: -1",
        "batch_size: 8",
        "",
        "    # Cropping Parameters (for analysis and outlier frame detection)",
        "cropping: false",
        "    #if cropping is true for analysis, then set the values here:",
        "x1: 0",
        "x2: 640",
        "y1: 277",
        "y2: 624",
        "",
        (
            "    # Refinement configuration (parameters from annotation dataset configuration also relevant"
            " in this stage)"
        ),
        "corner2move2:",
        "- 50",
        "- 50",
        "move2corner: true",
    ]
    path = Path(project_dir) / "config.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# ----------------------------------------------------------------------------------------------------------
# Analyzed-video output
# ----------------------------------------------------------------------------------------------------------


def pose_dataframe(
    xy: np.ndarray, likelihood: np.ndarray, scorer: str, individuals: Sequence[str] | None
) -> pd.DataFrame:
    """DLC's analyzed-output table.

    Parameters
    ----------
    xy : np.ndarray
        ``(T, n_tracks, K, 2)``.
    likelihood : np.ndarray
        ``(T, n_tracks, K)``.
    scorer : str
        Top column level.
    individuals : sequence of str or None
        Track names for a 4-level multi-animal table; None for the 3-level
        single-animal table (then ``n_tracks`` must be 1).

    Returns
    -------
    pandas.DataFrame
        Columns ``scorer/[individuals]/bodyparts/coords``, rows ``range(T)``.
    """
    n_t, n_tracks = xy.shape[:2]
    values = np.concatenate([xy, likelihood[..., None]], axis=-1).reshape(n_t, -1)
    if individuals is None:
        if n_tracks != 1:
            raise ValueError("a single-animal table holds exactly one track")
        columns = pd.MultiIndex.from_product(
            [[scorer], list(BODYPARTS), list(COORDS)], names=["scorer", "bodyparts", "coords"]
        )
    else:
        columns = pd.MultiIndex.from_product(
            [[scorer], list(individuals), list(BODYPARTS), list(COORDS)],
            names=["scorer", "individuals", "bodyparts", "coords"],
        )
    return pd.DataFrame(values, columns=columns, index=range(n_t))


def dlc_metadata(
    scorer: str,
    fps: float,
    n_frames: int,
    width: int,
    height: int,
    multi_animal: bool,
    task: str,
    date: dt.date,
    iterations: int,
    experimenter: str,
    start: float,
) -> dict:
    """The ``_meta.pickle`` content, keys in the order DLC's analyze_videos writes them."""
    stem = f"{task}{dlc_date(date)}"
    model_dir = f"dlc-models/iteration-0/{stem}-trainset{int(_TRAIN_FRACTION * 100)}shuffle1"
    model_cfg = {
        "all_joints": [[i] for i in range(len(BODYPARTS))],
        "all_joints_names": list(BODYPARTS),
        "batch_size": 8,
        "crop_pad": 0,
        "dataset": f"training-datasets/iteration-0/UnaugmentedDataSet_{stem}/"
        f"{task}_{experimenter}{int(_TRAIN_FRACTION * 100)}shuffle1." + ("pickle" if multi_animal else "mat"),
        "dataset_type": "multi-animal-imgaug" if multi_animal else "imgaug",
        "deterministic": False,
        "global_scale": 0.8,
        "init_weights": f"{model_dir}/train/snapshot-{iterations}",
        "location_refinement": True,
        "locref_stdev": 7.2801,
        "mean_pixel": [123.68, 116.779, 103.939],
        "net_type": "dlcrnet_ms5" if multi_animal else "resnet_50",
        "num_joints": len(BODYPARTS),
        "optimizer": "sgd",
        "snapshot_prefix": f"{model_dir}/test/snapshot",
        "stride": 8.0,
        "weight_decay": 0.0001,
    }
    if multi_animal:
        model_cfg.update(
            {
                "num_idchannel": 0,
                "partaffinityfield_predict": True,
                "partaffinityfield_graph": [[BODYPARTS.index(a), BODYPARTS.index(b)] for a, b in SKELETON],
            }
        )
    run = n_frames / 45.0  # a plausible GPU inference speed
    return {
        "data": {
            "start": start,
            "stop": start + run,
            "run_duration": run,
            "Scorer": scorer,
            "DLC-model-config file": model_cfg,
            "fps": float(fps),
            "batch_size": 8,
            "frame_dimensions": (int(height), int(width)),
            "nframes": int(n_frames),
            "iteration (active-learning)": 0,
            "training set fraction": _TRAIN_FRACTION,
            "cropping": False,
            "cropping_parameters": [0, int(width), 0, int(height)],
        }
    }


def write_dlc_output(
    videos_dir: Path, video_stem: str, df: pd.DataFrame, metadata: dict, multi_animal: bool
) -> dict[str, Path]:
    """Write ``.h5``, ``.csv`` and ``_meta.pickle`` beside the video, as DLC does.

    Single-animal output goes under HDF key ``df_with_missing``; maDLC's stitched
    ``_el.h5`` under ``tracks`` (DLC's ``stitch_tracklets`` key, as in DLC's own
    example project). The meta pickle is named without ``_el`` (it is written by
    ``analyze_videos``, before tracking).

    Returns
    -------
    dict
        ``{"h5": ..., "csv": ..., "meta": ...}``.
    """
    scorer = metadata["data"]["Scorer"]
    stem = pose_file_stem(video_stem, scorer, multi_animal)
    h5 = Path(videos_dir) / f"{stem}.h5"
    csv = Path(videos_dir) / f"{stem}.csv"
    meta = Path(videos_dir) / f"{video_stem}{scorer}_meta.pickle"
    df.to_hdf(h5, key="tracks" if multi_animal else "df_with_missing", format="table", mode="w")
    df.to_csv(csv)
    with open(meta, "wb") as fh:
        pickle.dump(metadata, fh, pickle.HIGHEST_PROTOCOL)
    return {"h5": h5, "csv": csv, "meta": meta}


# ----------------------------------------------------------------------------------------------------------
# SLEAP
# ----------------------------------------------------------------------------------------------------------


def write_slp(
    path: Path,
    video_path: Path,
    xy: np.ndarray,
    likelihood: np.ndarray,
    track_names: Sequence[str] | None,
    fps: float,
    width: int,
    height: int,
    score_threshold: float,
) -> Path:
    """Write SLEAP predictions with sleap-io.

    Points scoring below ``score_threshold`` are missing (SLEAP's peak threshold);
    instances without any point are left out. ``track_names=None`` writes untracked
    instances, as a SLEAP single-instance model does.

    Parameters
    ----------
    path : Path
        Output ``.slp``.
    video_path : Path
        The video, stored by file name (not embedded).
    xy, likelihood : np.ndarray
        ``(T, n_tracks, K, 2)`` and ``(T, n_tracks, K)``.
    track_names : sequence of str or None
        One name per track.
    fps : float
    width, height : int
    score_threshold : float
    """
    import sleap_io as sio

    n_t, n_tracks = xy.shape[:2]
    skeleton = sio.Skeleton(nodes=list(BODYPARTS), edges=[tuple(e) for e in SKELETON], name="mouse")
    tracks = [sio.Track(name=n) for n in track_names] if track_names is not None else []
    video = sio.Video(
        filename=str(Path(video_path).resolve()),
        backend_metadata={"shape": (n_t, height, width, 3), "fps": float(fps)},
        open_backend=False,
    )
    visible = np.isfinite(likelihood) & (np.nan_to_num(likelihood) >= score_threshold)
    points = np.where(visible[..., None], xy, np.nan)
    scores = np.where(visible, likelihood, 0.0)
    frames = []
    for t in range(n_t):
        instances = []
        for j in range(n_tracks):
            if not visible[t, j].any():
                continue
            instances.append(
                sio.PredictedInstance.from_numpy(
                    points[t, j],
                    skeleton=skeleton,
                    point_scores=scores[t, j],
                    score=float(scores[t, j][visible[t, j]].mean()),
                    track=tracks[j] if tracks else None,
                    tracking_score=1.0 if tracks else None,
                )
            )
        if instances:
            frames.append(sio.LabeledFrame(video=video, frame_idx=t, instances=instances))
    labels = sio.Labels(labeled_frames=frames, videos=[video], skeletons=[skeleton], tracks=tracks)
    sio.save_slp(labels, str(path), verbose=False)
    return Path(path)


# ----------------------------------------------------------------------------------------------------------
# Behavior labels
# ----------------------------------------------------------------------------------------------------------


def label_frame_table(labels: np.ndarray, individuals: Sequence[str]) -> pd.DataFrame:
    """Frame table: ``frame``, ``individual``, then one 0/1 column per behavior.

    Parameters
    ----------
    labels : np.ndarray
        bool ``(T, A, B)`` in :data:`~dlc_lookagain.synth.ethogram.BEHAVIOR_NAMES` order.
    individuals : sequence of str
        Name of each of the A animals.
    """
    n_t, n_a, n_b = labels.shape
    table = pd.DataFrame(labels.reshape(n_t * n_a, n_b).astype(np.int8), columns=list(BEHAVIOR_NAMES))
    table.insert(0, "individual", np.tile(np.asarray(individuals, dtype=object), n_t))
    table.insert(0, "frame", np.repeat(np.arange(n_t), n_a))
    return table


def label_bouts(labels: np.ndarray, individuals: Sequence[str]) -> pd.DataFrame:
    """Bout table (BORIS-like states): ``individual, behavior, start_frame, end_frame`` (inclusive)."""
    rows = []
    for a, name in enumerate(individuals):
        for b, behavior in enumerate(BEHAVIOR_NAMES):
            on = np.concatenate([[0], labels[:, a, b].astype(np.int8), [0]])
            change = np.diff(on)
            for s, e in zip(np.flatnonzero(change == 1), np.flatnonzero(change == -1)):
                rows.append((name, behavior, int(s), int(e - 1)))
    order = {name: i for i, name in enumerate(individuals)}
    rows.sort(key=lambda r: (order[r[0]], r[2], BEHAVIOR_NAMES.index(r[1])))
    return pd.DataFrame(rows, columns=["individual", "behavior", "start_frame", "end_frame"])


def write_labels(
    videos_dir: Path, video_stem: str, labels: np.ndarray, individuals: Sequence[str]
) -> dict[str, Path]:
    """Write ``<stem>_labels.csv`` (frame table) and ``<stem>_label_bouts.csv`` (bouts)."""
    frames = Path(videos_dir) / f"{video_stem}_labels.csv"
    bouts = Path(videos_dir) / f"{video_stem}_label_bouts.csv"
    label_frame_table(labels, individuals).to_csv(frames, index=False, lineterminator="\n")
    label_bouts(labels, individuals).to_csv(bouts, index=False, lineterminator="\n")
    return {"labels": frames, "bouts": bouts}


# ----------------------------------------------------------------------------------------------------------
# Simulator truth
# ----------------------------------------------------------------------------------------------------------


def write_truth(
    truth_dir: Path, video_stem: str, scene_dict: dict, arrays: dict[str, np.ndarray], extra: dict
) -> dict[str, Path]:
    """Write ``<stem>_scene.json`` and ``<stem>_truth.npz`` (true keypoints, track assignment, ...)."""
    truth_dir = Path(truth_dir)
    truth_dir.mkdir(parents=True, exist_ok=True)
    scene_path = truth_dir / f"{video_stem}_scene.json"
    npz_path = truth_dir / f"{video_stem}_truth.npz"
    scene_path.write_text(
        json.dumps({**scene_dict, **extra}, indent=1, sort_keys=True) + "\n", encoding="utf-8"
    )
    np.savez_compressed(npz_path, **arrays)
    return {"scene": scene_path, "truth": npz_path}
