"""Every file in ../shared/data is read by the reader meant for it.

Detailed value checks live in the per-format test modules; this one guarantees
coverage: a file added to shared/data that no reader claims makes it fail.
"""

from __future__ import annotations

from fnmatch import fnmatch
from pathlib import Path

import cv2
import numpy as np
import pytest

from dlc_lookagain import PoseFormatError
from dlc_lookagain.io import load_pose, read_dlc_config
from dlc_lookagain.io.dlc import parse_dlc_output_name
from dlc_lookagain.io.labels import read_labels
from dlc_lookagain.io.video import probe_video

DOCS = {"README.md", "PROVENANCE.md", "README_demo"}
LABEL_FILES = {
    "ethome/tests/data/boris/e3v813a-20210610T122332-122642_reencode.csv": ("interact", 5700),
    "behaviordepot/demo/demo1/hB_demo1_manual_annotations.mat.mat": ("Freezing", 6000),
}
# Caltech Behavior Annotator files: per-session (dyadic) labels, read on the frame grid of the session's
# pose file `dlc_csv/<session>DLC_*.csv` (session 8's annotations run 7 frames past its pose).
CALTECH_LABELS = "rat_aggression/annotations/*_annot.txt"
# A MATLAB `table` object (MCOS) that only MATLAB can decode; the hB file holds the same bouts.
UNREADABLE_LABELS = {"behaviordepot/demo/demo1/demo1_manual_annotations.mat"}
DLC_INTERMEDIATE = ("_full.pickle", "_assemblies.pickle", "_el.pickle")


def _category(rel: str) -> str:
    name = Path(rel).name
    if name in DOCS:
        return "doc"
    if rel in LABEL_FILES:
        return "labels"
    if fnmatch(rel, CALTECH_LABELS):
        return "caltech-labels"
    if rel in UNREADABLE_LABELS:
        return "unreadable-labels"
    if name == "Params.mat":
        return "behaviordepot-params"
    suffix = Path(rel).suffix.lower()
    if suffix in (".mp4", ".avi"):
        return "video"
    if suffix == ".png":
        return "image"
    if name.endswith("_meta.pickle"):
        return "dlc-meta"
    if name.endswith(DLC_INTERMEDIATE):
        return "dlc-intermediate"
    if suffix in (".h5", ".csv", ".slp"):
        return "pose"
    if name == "config.yaml":
        return "config"
    return "unclaimed"


def _files(shared: Path) -> list[str]:
    return sorted(str(p.relative_to(shared)) for p in shared.rglob("*") if p.is_file())


def test_every_shared_file_is_claimed(shared):
    unclaimed = [f for f in _files(shared) if _category(f) == "unclaimed"]
    assert not unclaimed, f"files in shared/data no test reads: {unclaimed}"


def test_every_shared_file_reads(shared):
    seen = set()
    for rel in _files(shared):
        path = shared / rel
        kind = _category(rel)
        seen.add(kind)
        if kind == "pose":
            rec = load_pose(path, video=False)
            assert rec.n_frames > 0 and rec.bodyparts and rec.individuals, rel
            assert np.isfinite(rec.keypoints).any(), rel
        elif kind == "labels":
            behavior, n_frames = LABEL_FILES[rel]
            labels = read_labels(path)
            assert behavior in labels.behaviors and labels.n_frames == n_frames, rel
        elif kind == "caltech-labels":
            session = path.name.split("_")[0]
            (pose,) = sorted((path.parent.parent / "dlc_csv").glob(f"{session}DLC_*.csv"))
            rec = load_pose(pose, video=False)
            labels = read_labels(path, n_frames=rec.n_frames, individuals=rec.individuals)
            assert labels.source_format == "caltech" and "aggression" in labels.behaviors, rel
            assert labels.n_frames == rec.n_frames and labels.individuals == rec.individuals, rel
            assert labels.annotated.any() and labels.frame_counts()["aggression"] > 0, rel
        elif kind == "unreadable-labels":
            with pytest.raises(PoseFormatError, match="hBehavior"):
                read_labels(path)
        elif kind == "behaviordepot-params":
            # The session's video parameters give the labels their frame rate.
            labels = read_labels(path.parent.parent / "hB_demo1_manual_annotations.mat.mat")
            assert labels.fps == 50
        elif kind == "video":
            info = probe_video(path)
            assert info.n_frames > 0 and info.width > 0, rel
        elif kind == "image":
            image = cv2.imread(str(path))
            config = read_dlc_config(path.parents[2] / "config.yaml")
            crop = next(iter(config.crops.values()), None)
            assert image is not None, rel
            if crop is not None:  # labeled frames have the size recorded in video_sets
                assert image.shape[1] == crop[1] - crop[0] and image.shape[0] == crop[3] - crop[2], rel
        elif kind == "dlc-meta":
            pose = sorted(path.parent.glob(path.name.replace("_meta.pickle", "*.h5")))[0]
            rec = load_pose(pose, video=False)
            assert rec.fps and rec.metadata["nframes"] == rec.n_frames, rel
        elif kind == "dlc-intermediate":
            # DLC's detection pickles are not pose tables: discovery must skip them.
            assert parse_dlc_output_name(path) is None, rel
            with open(path, "rb") as fh:
                assert fh.read(2)[:1] == b"\x80", rel  # a pickle stream (never unpickled: untrusted)
        elif kind == "config":
            assert read_dlc_config(path).bodyparts, rel
    assert {"pose", "labels", "caltech-labels", "video", "image", "dlc-meta", "config"} <= seen


def test_labeled_images_match_the_crop_of_their_project(shared):
    # The openfield demo keeps its crop under DLC's placeholder key; it applies to its videos/ folder.
    openfield = read_dlc_config(shared / "deeplabcut/examples/openfield-Pranav-2018-10-30/config.yaml")
    assert list(openfield.crops.values()) == [(0, 640, 0, 480)]
    multi = read_dlc_config(shared / "deeplabcut/examples/multi_mouse-dlc_team-2022-04-12/config.yaml")
    assert list(multi.crops.values()) == [(0, 640, 0, 480)]
