"""analyze as a batch job: up-to-date outputs skipped, stale ones recomputed (old files kept),
interrupted runs resumed, one bad recording not stopping the others, Dask = serial."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import dlc_lookagain
from dlc_lookagain.cli import EXIT_BAD_INPUT, EXIT_OK, main
from dlc_lookagain.errors import PoseFormatError
from dlc_lookagain.io.annotations import read_output_metadata

from conftest import SAMPLE_STEM as STEM


def _behaviors(project: Path) -> list[Path]:
    return sorted(project.glob("videos/*_behaviors.csv"))


def _snapshot(project: Path) -> dict:
    return {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in project.glob("videos/*")}


def test_rerun_with_nothing_changed_does_nothing_and_says_so(project, caplog, torch_one_thread):
    config = project / "config.yaml"
    first = dlc_lookagain.analyze(config, top_k=0.1, figures=False, progress=False)
    assert [s.annotations_written for s in first] == [True, True]
    meta = read_output_metadata(first[0].outputs["behaviors_h5"])
    assert set(meta["inputs"]) == {"pose_sha256", "model_sha256", "top_k", "min_bout_s"}
    assert meta["inputs"]["top_k"] == 0.1
    before = _snapshot(project)
    with caplog.at_level(logging.INFO, logger="dlc_lookagain"):
        again = dlc_lookagain.analyze(config, top_k=0.1, figures=False, progress=False)
    assert "nothing to do" in caplog.text
    assert [s.skipped for s in again] == ["up to date", "up to date"]
    assert not any(s.annotations_written for s in again)
    # The summary of a skipped recording still says what is in its files.
    assert again[0].n_frames == 600 and again[0].individuals == first[0].individuals
    assert again[0].time_budget == pytest.approx(first[0].time_budget)
    assert again[0].looked_fraction == pytest.approx(first[0].looked_fraction)
    assert _snapshot(project) == before


def test_changed_inputs_are_recomputed_and_earlier_outputs_kept(project, caplog, torch_one_thread):
    config = project / "config.yaml"
    dlc_lookagain.analyze(config, top_k=0.1, figures=False, progress=False)
    old = {p.name: p.read_bytes() for p in _behaviors(project)}
    with caplog.at_level(logging.INFO, logger="dlc_lookagain"):
        again = dlc_lookagain.analyze(config, top_k=0.0, figures=False, progress=False)
    assert all(s.annotations_written for s in again)
    assert "inputs changed (top_k)" in caplog.text
    kept = list((project / "lookagain" / "replaced").rglob("*_behaviors.csv"))
    assert {p.name: p.read_bytes() for p in kept} == old
    df = pd.read_csv(_behaviors(project)[0])
    assert df["looked"].sum() == 0  # recomputed at top_k=0

    # A changed pose file is noticed too (here: one keypoint moved in sample_001's tracks).
    pose = project / "videos" / f"sample_001{STEM}.h5"
    tracks = pd.read_hdf(pose)
    tracks.iloc[10, 0] += 5.0
    tracks.to_hdf(pose, key="tracks", mode="w")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="dlc_lookagain"):
        third = dlc_lookagain.analyze(config, top_k=0.0, figures=False, progress=False)
    assert [s.annotations_written for s in third] == [False, True]
    assert "inputs changed (pose file)" in caplog.text


def test_interrupted_run_continues_where_it_stopped(project, monkeypatch, torch_one_thread):
    """The first video finished, then the run died: the next run only does the second one."""
    config = project / "config.yaml"
    from dlc_lookagain import pipeline

    real = pipeline.predict_recording
    calls = []

    def dies_on_second(rec, *args, **kwargs):
        calls.append(rec.source.name)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(rec, *args, **kwargs)

    monkeypatch.setattr(pipeline, "predict_recording", dies_on_second)
    with pytest.raises(KeyboardInterrupt):
        dlc_lookagain.analyze(config, top_k=0.0, figures=False, progress=False)
    assert len(_behaviors(project)) == 1
    assert not list(project.glob("videos/*.tmp*"))  # nothing half-written
    monkeypatch.setattr(pipeline, "predict_recording", real)
    summaries = dlc_lookagain.analyze(config, top_k=0.0, figures=False, progress=False)
    assert [bool(s.skipped) for s in summaries] == [True, False]
    assert len(_behaviors(project)) == 2


def test_a_bad_recording_does_not_stop_the_others(project, caplog, capsys):
    pose = project / "videos" / f"sample_000{STEM}.h5"
    pose.write_bytes(b"not an HDF5 file")
    config = str(project / "config.yaml")
    with caplog.at_level(logging.ERROR):
        code = main(["-q", "analyze", config, "--top-k", "0", "--no-figures"])
    assert code == EXIT_BAD_INPUT  # a script notices that something failed
    assert f"sample_000{STEM}.h5" in caplog.text
    out = capsys.readouterr().out
    assert "FAILED" in out
    assert [p.name for p in _behaviors(project)] == [f"sample_001{STEM}_behaviors.csv"]
    # When every recording fails, analyze raises the first error (naming the file).
    other = project / "videos" / f"sample_001{STEM}.h5"
    other.write_bytes(b"broken too")
    for p in _behaviors(project):
        p.unlink()
    with pytest.raises(PoseFormatError, match="sample_00"):
        dlc_lookagain.analyze(config, top_k=0, figures=False, progress=False, overwrite=True)


def test_overwrite_recomputes_without_keeping_copies(project, torch_one_thread):
    config = project / "config.yaml"
    dlc_lookagain.analyze(config, top_k=0.0, figures=False, progress=False)
    again = dlc_lookagain.analyze(config, top_k=0.0, figures=False, progress=False, overwrite=True)
    assert all(s.annotations_written for s in again)
    assert not (project / "lookagain" / "replaced").exists()


def test_unknown_export_and_bad_workers_are_refused(project):
    with pytest.raises(ValueError, match="unknown export"):
        dlc_lookagain.analyze(project / "config.yaml", exports=["excel"])
    with pytest.raises(ValueError, match="n_workers"):
        dlc_lookagain.analyze(project / "config.yaml", n_workers=0)


def _four_video_project(project: Path) -> Path:
    """The sample project with two more videos (copies under new names: 4 recordings)."""
    videos = project / "videos"
    for src, dst in (("sample_000", "sample_002"), ("sample_001", "sample_003")):
        shutil.copy(videos / f"{src}.mp4", videos / f"{dst}.mp4")
        shutil.copy(videos / f"{src}{STEM}.h5", videos / f"{dst}{STEM}.h5")
    return videos


@pytest.mark.slow
def test_dask_local_cluster_gives_the_serial_outputs(project, tmp_path):
    pytest.importorskip("distributed")
    videos = _four_video_project(project)
    serial_project = tmp_path / "serial"
    shutil.copytree(project, serial_project)
    config = project / "config.yaml"
    kwargs = dict(top_k=0.1, figures=False, progress=False)
    serial = dlc_lookagain.analyze(serial_project / "config.yaml", videos=[serial_project / "videos"],
                                   **kwargs)
    parallel = dlc_lookagain.analyze(config, videos=[videos], n_workers=2, **kwargs)
    assert len(parallel) == 4 and all(s.annotations_written for s in parallel)
    assert [s.pose_file.name for s in parallel] == [s.pose_file.name for s in serial]
    for s, p in zip(serial, parallel):
        for key in ("behaviors_csv", "bouts_csv"):
            a, b = pd.read_csv(s.outputs[key]), pd.read_csv(p.outputs[key])
            pd.testing.assert_frame_equal(a, b, check_exact=False, atol=2e-4)
        # Decisions identical; probabilities equal to float noise (different torch thread counts).
        assert s.time_budget == pytest.approx(p.time_budget, abs=1e-3)
    # Copies of the same recording under another name get the same behaviors.
    a = pd.read_csv(parallel[0].outputs["behaviors_csv"])
    b = pd.read_csv(parallel[2].outputs["behaviors_csv"])
    assert np.array_equal(a["label"], b["label"])


def test_figures_exports_and_labeled_video_beside_the_poses(project, caplog, torch_one_thread):
    pytest.importorskip("pynwb")
    config = project / "config.yaml"
    stem = f"sample_000{STEM}"
    # DeepLabCut's own labeled video of a single-animal project is <pose stem>_labeled.mp4: not ours.
    dlc_video = project / "videos" / f"{stem}_labeled.mp4"
    shutil.copy(project / "videos" / "sample_000.mp4", dlc_video)
    dlc_bytes = dlc_video.read_bytes()
    out = dlc_lookagain.analyze(config, videos=[project / "videos" / "sample_000.mp4"], top_k=0.1,
                                exports=["boris", "nwb"], labeled_video=True, progress=False)
    (s,) = out
    expected = {"ethogram": f"{stem}_ethogram.png", "time_budget": f"{stem}_time_budget.png",
                "boris": f"{stem}_behaviors_boris.tsv", "nwb": f"{stem}_behaviors.nwb",
                "labeled_video": f"{stem}_lookagain_labeled.mp4"}
    assert dlc_video.read_bytes() == dlc_bytes
    for key, name in expected.items():
        assert s.outputs[key].name == name and s.outputs[key].stat().st_size > 0, key
    assert sorted(s.extras_written) == sorted(expected)
    # The BORIS table holds the bouts file's bouts.
    from dlc_lookagain.io.labels import read_labels

    lab = read_labels(s.outputs["boris"], n_frames=600, fps=30.0)
    bouts = pd.read_csv(s.outputs["bouts_csv"])
    assert int(lab.present.sum()) == int(bouts["n_frames"].sum())
    # A deleted figure is redrawn from the files, without recomputing the behaviors.
    h5_mtime = s.outputs["behaviors_h5"].stat().st_mtime_ns
    s.outputs["ethogram"].unlink()
    with caplog.at_level(logging.INFO, logger="dlc_lookagain"):
        (again,) = dlc_lookagain.analyze(config, videos=[project / "videos" / "sample_000.mp4"], top_k=0.1,
                                         exports=["boris", "nwb"], labeled_video=True, progress=False)
    assert again.skipped == "up to date" and again.extras_written == ["ethogram"]
    assert again.outputs["ethogram"].exists()
    assert s.outputs["behaviors_h5"].stat().st_mtime_ns == h5_mtime
    assert "up to date; wrote" in caplog.text


@pytest.mark.slow
def test_local_cluster_workers_run_without_dasks_malloc_trim_setting():
    """MALLOC_TRIM_THRESHOLD_=65536 (Dask's default for workers) made analysis about 3x slower."""
    pytest.importorskip("distributed")
    import os

    from dlc_lookagain.pipeline import _dask_client

    env_before = dict(os.environ)
    client, to_close = _dask_client(1, None)
    try:
        names = ("MALLOC_TRIM_THRESHOLD_", "OMP_NUM_THREADS")
        env = client.run(lambda: {k: os.environ.get(k) for k in names})
    finally:
        for thing in to_close:
            thing.close()
    (worker_env,) = env.values()
    assert worker_env["MALLOC_TRIM_THRESHOLD_"] is None
    assert dict(os.environ) == env_before  # the caller's environment is left as it was


def test_recompute_retires_every_earlier_extra_and_export_keeps_changed_outputs(project, torch_one_thread):
    config = project / "config.yaml"
    one = [project / "videos" / "sample_000.mp4"]
    (s,) = dlc_lookagain.analyze(config, videos=one, top_k=0.0, exports=["boris"], progress=False)
    boris = s.outputs["boris"]
    # Asked without BORIS at another top_k: the old BORIS file must not stay beside the new tables.
    (t,) = dlc_lookagain.analyze(config, videos=one, top_k=0.1, figures=False, progress=False)
    assert t.annotations_written and not boris.exists()
    assert list((project / "lookagain" / "replaced").rglob(boris.name))
    # `export` uses the existing outputs whatever top_k made them.
    code = main(["-q", "export", str(config), "--videos", str(one[0]), "--to", "boris", "--top-k", "0.5"])
    assert code == EXIT_OK
    assert boris.exists()
    assert read_output_metadata(t.outputs["behaviors_h5"])["inputs"]["top_k"] == 0.1


def test_analyze_uses_the_newest_behavior_model_whatever_its_name(project, caplog):
    import json

    from dlc_lookagain.pipeline import resolve_model, trained_models
    from dlc_lookagain.project_training import bundled_model_path

    models = project / "lookagain" / "models"
    models.mkdir(parents=True)
    for name, kind in (("pretrained", "pretrained"), ("grooming", "behavior")):
        shutil.copy(bundled_model_path(), models / f"{name}.pt")
        (models / f"{name}.pt.manifest.json").write_text(json.dumps({"kind": kind}))
    assert trained_models(project) == [models / "grooming.pt"]
    with caplog.at_level(logging.INFO, logger="dlc_lookagain"):
        _, manifest = resolve_model(project / "config.yaml")
    assert manifest["path"] == str(models / "grooming.pt")
    assert "grooming.pt" in caplog.text


def test_quiet_and_verbose_also_after_the_command(project, capsys):
    assert main(["inspect", str(project / "config.yaml"), "-q"]) == EXIT_OK
    assert "reading poses" not in capsys.readouterr().err


def test_files_we_did_not_write_are_never_replaced_or_moved(project, torch_one_thread):
    """Issue 14: a hand-edited _bouts.csv was overwritten when completing an interrupted run, and a
    stale recompute moved it away. Only files whose content is what we wrote may be replaced."""
    config = project / "config.yaml"
    one = [project / "videos" / "sample_000.mp4"]
    (s,) = dlc_lookagain.analyze(config, videos=one, top_k=0.0, figures=False, progress=False)
    bouts = s.outputs["bouts_csv"]
    edited = bouts.read_bytes() + b"# corrected by hand\n"
    bouts.write_bytes(edited)
    # 1. Completing an "interrupted" run (one output deleted) must not write over the edited table.
    s.outputs["behaviors_csv"].unlink()
    # (Every recording of the run failed, so analyze raises; with others it is a skipped one.)
    with pytest.raises(PoseFormatError) as err:
        dlc_lookagain.analyze(config, videos=one, top_k=0.0, figures=False, progress=False)
    assert str(bouts) in str(err.value) and "not written by dlc_lookagain" in str(err.value)
    assert bouts.read_bytes() == edited and not s.outputs["behaviors_csv"].exists()
    # 2. Nor any recompute (other top_k, overwrite=True) move it away.
    with pytest.raises(PoseFormatError):
        dlc_lookagain.analyze(config, videos=one, top_k=0.1, figures=False, progress=False, overwrite=True)
    assert bouts.read_bytes() == edited
    assert not list((project / "lookagain").rglob("replaced/*/" + bouts.name))
    # 3. Once the user moves their file away, analyze writes its own again.
    bouts.rename(bouts.with_name("my_corrected_bouts.csv"))
    (u,) = dlc_lookagain.analyze(config, videos=one, top_k=0.0, figures=False, progress=False)
    assert not u.error and u.annotations_written and bouts.exists()
    # 4. A file of the user's at one of our figure names, on a first run: left alone.
    (v,) = dlc_lookagain.analyze(config, videos=[project / "videos" / "sample_001.mp4"], top_k=0.0,
                                 figures=False, progress=False)
    figure = v.outputs["behaviors_h5"].with_name(v.outputs["behaviors_h5"].name.replace("_behaviors.h5",
                                                                                        "_ethogram.png"))
    figure.write_bytes(b"my own figure")
    summaries = dlc_lookagain.analyze(config, top_k=0.0, progress=False)  # both recordings
    failed = [x for x in summaries if x.error]
    assert len(failed) == 1 and str(figure) in failed[0].error
    assert figure.read_bytes() == b"my own figure"


def test_a_copied_project_keeps_knowing_its_outputs(project, tmp_path, torch_one_thread):
    config = project / "config.yaml"
    one = [project / "videos" / "sample_000.mp4"]
    dlc_lookagain.analyze(config, videos=one, top_k=0.0, figures=False, progress=False)
    copy = tmp_path / "copied"
    shutil.copytree(project, copy)
    (s,) = dlc_lookagain.analyze(copy / "config.yaml", videos=[copy / "videos" / "sample_000.mp4"], top_k=0.1,
                                 figures=False, progress=False)
    assert not s.error and s.annotations_written  # stale (top_k changed): ours, so recomputed
    assert list((copy / "lookagain" / "replaced").rglob("*_bouts.csv"))


def test_frames_the_video_cannot_give_are_not_looked_at(project, caplog, torch_one_thread):
    """Issue 14: a truncated video gave looked=1 on frames nobody could decode."""
    import cv2

    video = project / "videos" / "sample_000.mp4"
    data = video.read_bytes()
    video.write_bytes(data[: int(len(data) * 0.3)])  # the container still lists every frame
    cap = cv2.VideoCapture(str(video))
    decodable = 0
    while cap.read()[0]:
        decodable += 1
    cap.release()
    assert 0 < decodable < 300
    with caplog.at_level(logging.WARNING, logger="dlc_lookagain"):
        (s,) = dlc_lookagain.analyze(project / "config.yaml", videos=[video], top_k=0.5, figures=False,
                                     progress=False)
    df = pd.read_csv(s.outputs["behaviors_csv"])
    looked = np.sort(df.loc[df["looked"] == 1, "frame"].unique())
    assert looked.size > 0 and looked.max() < decodable
    assert s.looked_fraction <= decodable / s.n_frames
    assert "could not be decoded" in caplog.text and video.name in caplog.text


def test_frame_ranges():
    from dlc_lookagain.pipeline import frame_ranges

    assert frame_ranges([3, 4, 5, 7, 10, 11]) == "3-5, 7, 10-11"
    assert frame_ranges([]) == "none"
    assert frame_ranges(list(range(0, 40, 2)), limit=3) == "0, 2, 4, ..."


def test_the_logs_most_time_is_the_time_budget_figures_share(project, caplog, torch_one_thread):
    """Issue 14: the log's "most time" counted frames where a behavior was decided, the time-budget
    figure frames inside a written bout (bouts shorter than min_bout_s left out): one definition now."""
    from dlc_lookagain.plots import time_budget

    with caplog.at_level(logging.INFO, logger="dlc_lookagain"):
        (s,) = dlc_lookagain.analyze(project / "config.yaml", videos=[project / "videos" / "sample_000.mp4"],
                                     top_k=0.0, min_bout_s=3.0, figures=False, progress=False)
    per_animal = time_budget(s.outputs["behaviors_csv"], s.outputs["bouts_csv"])
    pooled = per_animal.groupby("behavior", sort=False)[["frames", "tracked_frames"]].sum()
    figure = (pooled["frames"] / pooled["tracked_frames"]).to_dict()
    assert s.time_budget == pytest.approx(figure, abs=1e-9)
    assert read_output_metadata(s.outputs["behaviors_h5"])["time_budget"] == pytest.approx(figure, abs=1e-9)
    top = max(figure, key=figure.get)
    assert f"most time (share of tracked time in bouts, as in the time-budget figure): {top} " in caplog.text
