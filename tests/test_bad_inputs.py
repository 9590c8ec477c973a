"""The bad-input suite of issue 14 as a table: each row makes an input on the fly (from copies of
``sample_project`` and of files in ``../shared/data``), runs ``dlc-lookagain analyze`` on it as a
user would (keypoints only), and checks the exact outcome: an error naming the file, a warning, or
success. Every row also checks that no file we did not write changed: the SHA-256 of every file
that existed before the run is the same after it, and every new file is one of our outputs.

Cases covered in more depth elsewhere are listed here too when they are cheap (see
docs/reliability.md for the whole table and the tests that keep each one fixed).
"""

from __future__ import annotations

import hashlib
import logging
import pickle
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import h5py
import numpy as np
import pandas as pd
import pytest

from dlc_lookagain.cli import EXIT_BAD_INPUT, EXIT_OK, main
from dlc_lookagain.io.annotations import extra_output_paths, output_paths_for

from conftest import SAMPLE_STEM as STEM
from test_hdf5_safety import _dlc_h5, _Touch
from test_reliability import _rewrite_video_sets

SAMPLE_CSV = f"videos/sample_000{STEM}.csv"
SAMPLE_H5 = f"videos/sample_000{STEM}.h5"
VAME = "vame/tests/tests_project_sample_data"
DEEPOF = "deepof/tests/test_examples"
MONTBLANC = "deeplabcut/tests/data/montblanc_tracks.h5"
SLEAP_ANALYSIS = "sleap/docs/notebooks/analysis_example/predictions.analysis.h5"
ROBOT = "sleap/tests/data/hdf5_format_v1/small_robot.000_small_robot_3_frame.analysis.h5"


@dataclass(frozen=True)
class Inputs:
    """Where a case builds its input: an empty folder, the sample project and ``../shared/data``."""

    folder: Path
    sample: Path
    shared: Path | None

    def copy(self, source: Path, name: str | None = None) -> Path:
        dest = self.folder / (name or source.name)
        shutil.copy(source, dest)
        return dest

    def project(self) -> Path:
        dest = self.folder / "project"
        shutil.copytree(self.sample, dest)
        return dest


@dataclass(frozen=True)
class Case:
    """One row: ``make`` returns the CLI arguments (the input first); ``says`` may hold ``{input}``
    (the input's path), ``{name}`` (its file name) and ``{folder}`` (its folder)."""

    name: str
    make: Callable[[Inputs], list[str]]
    outcome: str  # "error", "warning" or "ok"
    says: str = ""
    shared: bool = False
    never_created: str = ""  # a file whose appearance means code from the input ran


# --------------------------------------------------------------------------- how each input is made


def _edit_csv(inputs: Inputs, edit: Callable[[list[str]], None], suffix: str = ".csv") -> list[str]:
    """The sample DLC csv with its lines (newlines kept) edited in place."""
    path = inputs.copy(inputs.sample / SAMPLE_CSV)
    lines = path.read_text().splitlines(True)
    edit(lines)
    path.write_text("".join(lines))
    if suffix != ".csv":
        path = path.rename(path.with_suffix(suffix))
    return [str(path)]


def _set_cell(line: int, cell: int, value: str) -> Callable[[list[str]], None]:
    def edit(lines):
        cells = lines[line - 1].split(",")
        cells[cell] = value
        lines[line - 1] = ",".join(cells)
    return edit


def _cut(path: Path, fraction: float) -> list[str]:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    return [str(path)]


def _all_nan(inputs: Inputs) -> list[str]:
    table = pd.read_csv(inputs.sample / SAMPLE_CSV, header=[0, 1, 2, 3], index_col=0)
    table.iloc[:, :] = np.nan
    path = inputs.folder / Path(SAMPLE_CSV).name
    table.to_csv(path)
    return [str(path)]


def _code_in_h5(inputs: Inputs) -> list[str]:
    path = _dlc_h5(inputs.folder / "videoDLC_resnet50_demo.h5")
    payload = np.bytes_(pickle.dumps(_Touch(inputs.folder / "ran"), protocol=0))
    with h5py.File(path, "r+") as h5:
        h5["df_with_missing/table"].attrs["non_index_axes"] = payload
        h5["df_with_missing"].attrs["non_index_axes"] = payload
    return [str(path)]


def _analysis_without_tracks(inputs: Inputs) -> list[str]:
    path = inputs.folder / "predictions.analysis.h5"
    with h5py.File(inputs.shared / SLEAP_ANALYSIS, "r") as src, h5py.File(path, "w") as dst:
        for name in src:
            if name != "tracks":
                src.copy(name, dst)
    return [str(path)]


def _duplicate_bodypart(inputs: Inputs) -> list[str]:
    path = inputs.copy(inputs.shared / DEEPOF / "test_single_topview/Tables/testDLC_csv_table.csv")
    lines = path.read_text().splitlines(True)
    cells = lines[1].split(",")  # the bodyparts row: the second bodypart renamed as the first
    cells[4:7] = cells[1:4]
    lines[1] = ",".join(cells)
    path.write_text("".join(lines))
    return [str(path)]


def _video_sets_outside(inputs: Inputs) -> list[str]:
    project = inputs.project()
    outside = inputs.folder / "elsewhere"
    outside.mkdir()
    for p in (project / "videos").glob("sample_001*"):
        shutil.move(p, outside / p.name)
    config = _rewrite_video_sets(project, [project / "videos" / "sample_000.mp4", outside / "sample_001.mp4"])
    return [str(config), "--videos", str(outside / "sample_001.mp4")]


def _no_video_of_the_type(inputs: Inputs) -> list[str]:
    project = inputs.project()
    config = _rewrite_video_sets(project, [project / "videos" / f"sample_00{k}.mp4" for k in (0, 1)])
    return [str(config), "--videotype", "avi"]


def _not_yaml(inputs: Inputs) -> list[str]:
    config = inputs.project() / "config.yaml"
    config.write_text("Task: [unclosed\n")
    return [str(config)]


def _wrong_video(inputs: Inputs) -> list[str]:
    pose = inputs.copy(inputs.shared / VAME / "cropped_video.csv")
    inputs.copy(inputs.sample / "videos/sample_000.mp4", "cropped_video.mp4")  # 600 frames, not 750
    return [str(pose)]


def _vame(inputs: Inputs) -> list[str]:
    inputs.copy(inputs.shared / VAME / "cropped_video.mp4")
    return [str(inputs.copy(inputs.shared / VAME / "cropped_video.csv"))]


def _edited_bouts(inputs: Inputs) -> list[str]:
    """Issue 14 item 4: a hand-edited _bouts.csv, another output deleted (an "interrupted run")."""
    pose = inputs.copy(inputs.sample / SAMPLE_H5)
    assert main(["-q", "analyze", str(pose), "--top-k", "0", "--no-figures"]) == EXIT_OK
    outputs = output_paths_for(pose)
    outputs["bouts_csv"].write_text(outputs["bouts_csv"].read_text() + "# corrected by hand\n")
    outputs["behaviors_csv"].unlink()
    return [str(pose)]


CASES = [
    # Pose tables that cannot be used: one error line that names the file, exit 1, nothing written.
    Case("empty csv", lambda i: _edit_csv(i, lambda lines: lines.clear()), "error", "{input}: file is empty"),
    Case("wrong header", lambda i: _edit_csv(i, _set_cell(1, 0, "model")), "error",
         "{input}: not a DeepLabCut table: the first header cell should be 'scorer'"),
    Case("non-numeric cell", lambda i: _edit_csv(i, _set_cell(11, 1, "twelve")), "error",
         "{input}: non-numeric coordinate value 'twelve' in column individual1/nose/x at line 11"),
    Case("infinite likelihood", lambda i: _edit_csv(i, _set_cell(11, 3, "inf")), "error",
         "{input}: confidence (likelihood) contains infinite values"),
    Case("unknown extension", lambda i: _edit_csv(i, lambda lines: None, ".txt"), "error",
         "{input}: unknown pose file type '.txt'"),
    Case("missing pose file", lambda i: [str(i.folder / "nothere.h5")], "error", "{input}: no such pose file"),
    Case("truncated DLC h5", lambda i: _cut(i.copy(i.sample / SAMPLE_H5), 0.5), "error",
         "{input}: not a readable HDF5 file (truncated or corrupt?)"),
    Case("truncated SLEAP slp", lambda i: _cut(i.copy(i.sample / "videos/sample_000.mp4.predictions.slp"), 0.5),
         "error", "{input}: HDF5 file cannot be opened"),
    Case("DLC h5 with a code-running pickle", _code_in_h5, "error",
         "{input}: attribute 'non_index_axes' of HDF5 node", never_created="ran"),
    Case("SLEAP analysis h5 without tracks", _analysis_without_tracks, "error",
         "{input}: dataset 'tracks' is missing: this is a SLEAP analysis HDF5 file without its keypoint "
         "coordinates", shared=True),
    Case("duplicate bodypart columns", _duplicate_bodypart, "error",
         "{input}: duplicate column for individual 'individual0', bodypart 'Nose', coordinate 'x'", shared=True),
    Case("pose and video of different lengths", _wrong_video, "error",
         "{input}: 750 pose frames but video", shared=True),
    Case("hand-edited _bouts.csv of an interrupted run", _edited_bouts, "error",
         f"{{folder}}/sample_000{STEM}_bouts.csv: is at a name dlc_lookagain writes to, but it was not written "
         "by dlc_lookagain"),
    # Projects that cannot be used.
    Case("config that is not YAML", _not_yaml, "error", "{input}: not valid YAML"),
    Case("folder without config.yaml", lambda i: [str(i.folder)], "error",
         "{input}/config.yaml: DeepLabCut config.yaml not found"),
    Case("--videotype removes every video", _no_video_of_the_type, "error",
         "{input}: no analyzed videos found: 2 video(s) found (.mp4) but none matches --videotype avi"),
    # Usable with a warning that says what is wrong.
    Case("truncated csv", lambda i: _cut(i.copy(i.sample / SAMPLE_CSV), 0.6), "warning",
         "{input}: the file ends inside a row"),
    Case("rows missing from a csv", lambda i: _edit_csv(i, lambda lines: lines.__delitem__(slice(20, 30))),
         "warning", "{name}: 10 frames between 0 and 599 are absent from the file; they are NaN"),
    Case("all-NaN pose", _all_nan, "warning", "{name}: no keypoint of any animal is tracked in any of its 600 frames"),
    Case("video missing", lambda i: [str(i.copy(i.sample / SAMPLE_H5))], "warning",
         "no video for {input}: keypoints-only mode"),
    Case("video_sets outside the project", _video_sets_outside, "warning",
         "{input}: 1 recording(s) have their DeepLabCut output outside the project folder"),
    Case("video one frame shorter than the pose (VAME)", _vame, "warning",
         "{input} has 750 pose frames but video", shared=True),
    # Strange but valid.
    Case("maDLC with unique bodyparts (montblanc)", lambda i: [str(i.copy(i.shared / MONTBLANC))], "ok",
         shared=True),
    Case("old-style prefixed multi-animal csv (deepof)",
         lambda i: [str(i.copy(i.shared / DEEPOF / "test_multi_topview/Tables/testDLC_csv_table_multi.csv"))],
         "ok", shared=True),
    Case("3-frame SLEAP analysis h5", lambda i: [str(i.copy(i.shared / ROBOT))], "ok", shared=True),
]


# --------------------------------------------------------------------------- the check


def _hashes(root: Path) -> dict[Path, str]:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()}


def _ours(path: Path, pose_files: list[Path]) -> bool:
    """A file ``analyze`` writes: an output of one of the pose files, or under a ``lookagain`` folder."""
    if "lookagain" in path.parts:
        return True
    names = {p.name for pose in pose_files for p in [*output_paths_for(pose).values(),
                                                     *extra_output_paths(pose).values()]}
    return path.name in names


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input(case: Case, tmp_path, sample_project, request, caplog, torch_one_thread):
    shared = request.getfixturevalue("shared") if case.shared else None
    inputs = Inputs(tmp_path / "in", sample_project, shared)
    inputs.folder.mkdir()
    args = case.make(inputs)
    before = _hashes(tmp_path)
    with caplog.at_level(logging.WARNING):
        code = main(["-q", "analyze", *args, "--top-k", "0", "--no-figures"])
    after = _hashes(tmp_path)

    expected = case.says.format(input=args[0], name=Path(args[0]).name, folder=Path(args[0]).parent)
    levels = {"error": logging.ERROR, "warning": logging.WARNING}
    if case.outcome == "error":
        assert code == EXIT_BAD_INPUT
        errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1 and expected in errors[0], errors  # said once, naming the file
    else:
        assert code == EXIT_OK, caplog.text
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert any(p.name.endswith("_behaviors.csv") for p in set(after) - set(before))
    if case.outcome == "warning":
        assert any(r.levelno == levels["warning"] and expected in r.getMessage() for r in caplog.records), \
            caplog.text
    # Nothing that existed changed; everything new is ours.
    assert [p for p, digest in before.items() if after.get(p) != digest] == []
    poses = [p for p in before if p.suffix in (".h5", ".csv", ".slp")]
    assert [p for p in set(after) - set(before) if not _ours(p, poses)] == []
    if case.outcome == "error":
        assert set(after) == set(before)  # a refused input leaves no file behind
    if case.never_created:
        assert not (inputs.folder / case.never_created).exists()
