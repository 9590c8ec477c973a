"""Concurrent runs, killed runs, full disks and the messages of bad inputs (issue 14, items 7-9)."""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import time
from collections import namedtuple
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import yaml

import dlc_lookagain
from dlc_lookagain.cli import EXIT_BAD_INPUT, main
from dlc_lookagain.errors import PoseFormatError
from dlc_lookagain.io.ledger import OutputLedger
from dlc_lookagain.io.lock import LockedError, RecordingLock
from dlc_lookagain.io.paths import atomic_path, stale_temporaries

from conftest import SAMPLE_STEM as STEM


def _pose(project: Path, k: int) -> Path:
    return project / "videos" / f"sample_00{k}{STEM}.h5"


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


_ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def _cmd(folder: Path) -> list[str]:
    """`dlc-lookagain analyze` of ``folder``, keypoints only, as a separate process."""
    return [sys.executable, "-m", "dlc_lookagain.cli", "-q", "analyze", str(folder / "config.yaml"),
            "--top-k", "0", "--no-figures"]


def _analyzed_copy(project: Path, dest: Path) -> Path:
    """A copy of ``project`` analyzed once, uninterrupted (the reference outputs)."""
    shutil.copytree(project, dest)
    subprocess.run(_cmd(dest), env=_ENV, check=True, capture_output=True, timeout=600)
    return dest


def _outputs(project: Path) -> dict[str, str]:
    """Hashes of every file analyze wrote beside the poses."""
    names = ("_behaviors.csv", "_behaviors.h5", "_bouts.csv")
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((project / "videos").iterdir())
            if p.name.endswith(names)}


def test_a_recording_locked_by_a_live_run_is_skipped_and_a_dead_runs_lock_taken_over(project, torch_one_thread):
    lock = OutputLedger.lock_path_for(project, _pose(project, 0))
    lock.parent.mkdir(parents=True)
    live = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
    lock.write_text(json.dumps(live))
    first, second = dlc_lookagain.analyze(project / "config.yaml", top_k=0.0, figures=False, progress=False)
    assert first.skipped and "being analyzed by pid" in first.skipped and not first.error
    assert not first.annotations_written and second.annotations_written
    assert json.loads(lock.read_text()) == live  # someone else's lock is left alone
    # The owner died without cleaning up: its lock is stale and taken over.
    lock.write_text(json.dumps({**live, "pid": _dead_pid()}))
    first, _ = dlc_lookagain.analyze(project / "config.yaml", top_k=0.0, figures=False, progress=False)
    assert first.annotations_written and not lock.exists()


def test_lock_from_another_host_is_stale_only_when_old(tmp_path):
    path = tmp_path / "x.lock"
    path.write_text(json.dumps({"pid": 1, "host": "other-node", "started": time.time() - 60}))
    with pytest.raises(LockedError, match="other-node"):
        RecordingLock(path).acquire()
    path.write_text(json.dumps({"pid": 1, "host": "other-node", "started": time.time() - 72 * 3600}))
    with RecordingLock(path) as lock:
        assert lock.held and json.loads(path.read_text())["pid"] == os.getpid()
    assert not path.exists()


def test_temporaries_of_a_killed_run_are_removed(project, torch_one_thread):
    bouts = project / "videos" / f"sample_000{STEM}_bouts.csv"
    leftover = bouts.with_name(f".{bouts.name}.k1ll3d.tmp.csv")
    leftover.touch()  # what a kill during writing leaves (0 bytes, hidden)
    assert stale_temporaries(bouts) == [leftover]
    theirs = bouts.with_name("notes.tmp.csv")
    theirs.write_text("a user's file")
    dlc_lookagain.analyze(project / "config.yaml", videos=[project / "videos" / "sample_000.mp4"], top_k=0.0,
                          figures=False, progress=False)
    assert not leftover.exists() and bouts.exists()
    assert theirs.read_text() == "a user's file"


def test_a_full_disk_is_named_as_such(tmp_path, monkeypatch):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda _: usage(10 << 30, (10 << 30) - (1 << 20), 1 << 20))
    final = tmp_path / "out" / "x_behaviors.csv"
    with pytest.raises(OSError) as err, atomic_path(final) as tmp:
        tmp.write_bytes(b"partial")
        raise OSError("57600 requested and 32704 written")  # what numpy says
    assert err.value.errno == errno.ENOSPC
    assert f"no space left on {final.parent}" in str(err.value) and "57600 requested" in str(err.value)
    assert not final.exists() and not list(final.parent.iterdir())
    # With room on the disk, other errors pass through unchanged.
    monkeypatch.setattr(shutil, "disk_usage", lambda _: usage(10 << 30, 0, 10 << 30))
    with pytest.raises(PermissionError), atomic_path(final) as tmp:
        raise PermissionError(errno.EACCES, "denied")


@pytest.mark.slow
def test_two_concurrent_runs_give_the_outputs_of_one(project, tmp_path, torch_one_thread):
    """Two `dlc-lookagain analyze` processes at once on one project: each recording is analyzed
    once (the other run skips it or finds it up to date); the outputs are those of a single run."""
    single = _analyzed_copy(project, tmp_path / "single")
    runs = [subprocess.Popen(_cmd(project), env=_ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]
    results = [p.communicate(timeout=600) for p in runs]
    assert all(p.returncode == 0 for p in runs), results
    assert _outputs(project) == _outputs(single)
    assert not (project / "lookagain" / "replaced").exists()
    assert not list((project / "lookagain" / "locks").glob("*.lock"))


@pytest.mark.slow
@pytest.mark.parametrize("kill_after_s", [2.0, 4.0, 6.0])
def test_a_killed_run_resumes_to_the_outputs_of_an_uninterrupted_one(project, tmp_path, kill_after_s):
    """SIGKILL at some point of `dlc-lookagain analyze`, then run again: the outputs are byte for
    byte those of a run that was never interrupted, with no temporary file or lock left behind."""
    single = _analyzed_copy(project, tmp_path / "single")
    victim = subprocess.Popen(_cmd(project), env=_ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(kill_after_s)
    victim.kill()
    victim.wait()
    subprocess.run(_cmd(project), env=_ENV, check=True, capture_output=True, timeout=600)
    assert _outputs(project) == _outputs(single)
    assert not [p for p in (project / "videos").iterdir() if p.name.startswith(".") and ".tmp" in p.name]
    assert not list((project / "lookagain" / "locks").glob("*.lock"))


# --------------------------------------------------------------------------- messages (items 7 and 9)

SLEAP_ANALYSIS = "sleap/docs/notebooks/analysis_example/predictions.analysis.h5"


def _rewrite_video_sets(project: Path, videos: list[Path]) -> Path:
    """Point the project's ``video_sets`` at ``videos`` (the sample config names /work/main paths)."""
    config = project / "config.yaml"
    cfg = yaml.safe_load(config.read_text())
    cfg["video_sets"] = {str(v): {"crop": "0, 480, 0, 360"} for v in videos}
    config.write_text(yaml.safe_dump(cfg))
    return config


def test_an_analysis_h5_without_tracks_says_what_it_is(shared, tmp_path, caplog):
    """It was reported as "a DLC file with no pandas DataFrame"."""
    bad = tmp_path / "predictions.analysis.h5"
    with h5py.File(shared / SLEAP_ANALYSIS, "r") as src, h5py.File(bad, "w") as dst:
        for name in src:
            if name != "tracks":
                src.copy(name, dst)
    with caplog.at_level(logging.ERROR):
        assert main(["-q", "inspect", str(bad)]) == EXIT_BAD_INPUT
    assert f"{bad}: dataset 'tracks' is missing: this is a SLEAP analysis HDF5 file without" in caplog.text
    assert "DataFrame" not in caplog.text


def test_an_all_nan_pose_is_named_and_keeps_one_row_per_frame_and_animal(project, tmp_path, caplog,
                                                                          torch_one_thread):
    """It gave an empty bout table with no word (or a confusing one about the bundled model's domain)."""
    table = pd.read_csv(_pose(project, 0).with_suffix(".csv"), header=[0, 1, 2, 3], index_col=0)
    table.iloc[:, :] = np.nan
    pose = tmp_path / "nan" / _pose(project, 0).with_suffix(".csv").name
    pose.parent.mkdir()
    table.to_csv(pose)
    with caplog.at_level(logging.WARNING, logger="dlc_lookagain"):
        (s,) = dlc_lookagain.analyze(pose, top_k=0.0, figures=False, progress=False)
    assert f"{pose.name}: no keypoint of any animal is tracked in any of its 600 frames" in caplog.text
    assert "unlike the generated mice" not in caplog.text
    rows = pd.read_csv(s.outputs["behaviors_csv"])
    assert len(rows) == 600 * 2 and (rows["label"] == "none").all()
    assert pd.read_csv(s.outputs["bouts_csv"]).empty
    # One animal never tracked: named, the other analyzed.
    from dlc_lookagain.io.main import load_pose
    from dlc_lookagain.pipeline import warn_untracked

    table = pd.read_csv(_pose(project, 0).with_suffix(".csv"), header=[0, 1, 2, 3], index_col=0)
    table.loc[:, table.columns.get_level_values(1) == "individual2"] = np.nan
    table.to_csv(pose)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="dlc_lookagain"):
        assert warn_untracked(load_pose(pose, video=False))
    assert f"{pose.name}: individual2 is never tracked" in caplog.text


def test_video_sets_outside_the_project_warn_where_the_outputs_go(project, tmp_path, caplog):
    """Only an INFO line said that the outputs would be written outside the project."""
    from dlc_lookagain.io.annotations import output_paths_for
    from dlc_lookagain.pipeline import plan_recordings

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    for p in (project / "videos").glob("sample_001*"):
        shutil.move(p, outside / p.name)
    config = _rewrite_video_sets(project, [project / "videos" / "sample_000.mp4", outside / "sample_001.mp4"])
    with caplog.at_level(logging.INFO, logger="dlc_lookagain"):
        jobs = plan_recordings(config)
    (warning,) = [r for r in caplog.records if "outside the project folder" in r.getMessage()]
    assert warning.levelno == logging.WARNING and "1 recording(s)" in warning.getMessage()
    assert f"written beside it, in {outside}" in warning.getMessage()
    (job,) = [j for j in jobs if j.pose_file.parent == outside]  # and that is where they go
    assert output_paths_for(job.pose_file)["behaviors_csv"].parent == outside


@pytest.mark.parametrize("case", ["videotype", "videos folder moved", "not analyzed"])
def test_no_analyzed_video_says_which_case_it_is(project, tmp_path, caplog, case):
    """"no analyzed videos found ... run deeplabcut.analyze_videos first" was said in all three."""
    config = _rewrite_video_sets(project, [project / "videos" / f"sample_00{k}.mp4" for k in (0, 1)])
    args = ["-q", "analyze", str(config), "--top-k", "0"]
    if case == "videotype":
        args += ["--videotype", "avi"]
        expected = "2 video(s) found (.mp4) but none matches --videotype avi"
    elif case == "videos folder moved":
        shutil.move(project / "videos", tmp_path / "moved")
        expected = (f"videos folder {project / 'videos'} does not exist and none of the 2 video(s) in "
                    "video_sets was found")
    else:
        for pose in (project / "videos").glob("*DLC_*"):
            pose.unlink()
        expected = "2 video(s) checked, outputs looked for beside the videos; run deeplabcut.analyze_videos " \
                   "first or pass --destfolder"
    with caplog.at_level(logging.ERROR):
        assert main(args) == EXIT_BAD_INPUT
    assert f"{config}: no analyzed videos found: {expected}" in caplog.text
    assert (case == "not analyzed") == ("analyze_videos" in caplog.text)


def test_advice_names_flags_on_the_command_line_and_keywords_in_python(project):
    from dlc_lookagain.errors import command_line, option_text

    assert (option_text("overwrite", True), option_text("destfolder"), option_text("videotype", "avi")) == \
        ("overwrite=True", "destfolder=", "videotype='avi'")
    with command_line():
        assert (option_text("overwrite", True), option_text("destfolder"), option_text("videotype", "avi")) == \
            ("--overwrite", "--destfolder", "--videotype avi")
    assert option_text("overwrite", True) == "overwrite=True"  # only inside the block
    for pose in (project / "videos").glob("*DLC_*"):
        pose.unlink()
    with pytest.raises(PoseFormatError, match="pass destfolder=$"):
        dlc_lookagain.analyze(project / "config.yaml", top_k=0.0)
