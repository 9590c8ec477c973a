"""DLC project discovery and the load_pose / load_project entry points, on real projects."""

from __future__ import annotations

import hashlib
import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dlc_lookagain import PoseFormatError, VideoMismatchError
from dlc_lookagain.io import detect_pose_format, find_analyzed_videos, load_pose, load_project, read_dlc_config

EXAMPLES = "deeplabcut/examples"
OPENFIELD_CSV = "ethome/ethome/data/dlc/openfield/openfield_dlc_inference_example.csv"
MULTI = f"{EXAMPLES}/multi_mouse-dlc_team-2022-04-12"
MULTI_STEM = "m3v1mp4shortDLC_effnet_b0_multi_mouseApr12shuffle1_5"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def openfield_project(shared, tmp_path) -> Path:
    """DLC's openfield demo project, moved to a new folder, with the real DLC output of its video.

    The project ships no analyzed output; ethome's csv is DLC's prediction for this exact
    video, so it goes where DLC would have written it. Big files are symlinked.
    """
    src = shared / EXAMPLES / "openfield-Pranav-2018-10-30"
    proj = tmp_path / "openfield-Pranav-2018-10-30"
    (proj / "videos").mkdir(parents=True)
    shutil.copy(src / "config.yaml", proj / "config.yaml")
    (proj / "videos" / "m3v1mp4.mp4").symlink_to(src / "videos" / "m3v1mp4.mp4")
    (proj / "videos" / "m3v1mp4DLC_resnet50_openfieldOct30shuffle1_6000.csv").symlink_to(shared / OPENFIELD_CSV)
    return proj


def test_read_configs_of_all_example_projects(shared):
    of = read_dlc_config(shared / EXAMPLES / "openfield-Pranav-2018-10-30" / "config.yaml")
    assert (of.task, of.scorer, of.multianimal) == ("openfield", "Pranav", False)
    assert of.bodyparts == ["snout", "leftear", "rightear", "tailbase"]
    # video_sets is DLC's demo placeholder: the project's own videos/ folder is used.
    assert [v.name for v in of.videos] == ["m3v1mp4.mp4"]
    assert of.missing_videos == []

    reach = read_dlc_config(shared / EXAMPLES / "Reaching-Mackenzie-2018-08-30")  # folder works too
    assert reach.bodyparts == ["Hand", "Finger1", "Tongue", "Joystick1", "Joystick2"]
    assert reach.skeleton == [("Hand", "Finger1"), ("Joystick1", "Joystick2")]
    assert reach.videos == []

    golden = read_dlc_config(shared / EXAMPLES / "golden_mouse-shaokai-2022-10-19" / "config.yaml")
    assert len(golden.bodyparts) == 27 and golden.bodyparts[0] == "nose" and golden.bodyparts[-1] == "head_midpoint"
    assert golden.videos == [] and len(golden.missing_videos) == 1

    multi = read_dlc_config(shared / MULTI / "config.yaml")
    assert multi.multianimal
    assert multi.individuals == ["individual1", "individual2", "individual3"]
    assert multi.bodyparts == ["bodypart1", "bodypart2", "bodypart3"]
    assert multi.unique_bodyparts == ["corner1", "corner2"]
    # Stored paths are the author's Mac paths: the short video is found in the moved project,
    # the long one is not in the repository at all.
    assert [v.name for v in multi.videos] == ["m3v1mp4short.mp4"]
    assert multi.videos[0].parent.resolve() == (shared / MULTI / "videos").resolve()
    assert [Path(m).name for m in multi.missing_videos] == ["m3v1mp4.mp4"]
    assert multi.crops[multi.videos[0]] == (0, 640, 0, 480)


def test_multi_animal_project_picks_filtered_h5_and_attaches_video(shared):
    config = shared / MULTI / "config.yaml"
    before = _sha(config)
    pairs = find_analyzed_videos(read_dlc_config(config))
    short = [p for p in pairs if p.name == "m3v1mp4short.mp4"][0]
    assert sorted(p.name for p in short.candidates) == sorted(
        [f"{MULTI_STEM}_el.h5", f"{MULTI_STEM}_el_filtered.h5", f"{MULTI_STEM}_el_filtered.csv"]
    )
    assert short.pose_file.name == f"{MULTI_STEM}_el_filtered.h5"

    records = load_project(config)
    assert len(records) == 1
    rec = records[0]
    assert rec.source.name == f"{MULTI_STEM}_el_filtered.h5"
    assert rec.n_frames == 31 and rec.n_video_frames == 31
    assert rec.video_path.name == "m3v1mp4short.mp4"
    assert rec.individuals == ["individual1", "individual2", "individual3", "single"]
    assert rec.fps == pytest.approx(29.98, abs=0.05)
    assert _sha(config) == before  # the user's config is never written

    unfiltered = load_project(config, filtered=False)[0]
    assert unfiltered.source.name == f"{MULTI_STEM}_el.h5"


def test_moved_project_with_placeholder_paths(openfield_project):
    config = openfield_project / "config.yaml"
    before = _sha(config)
    (rec,) = load_project(config)
    assert rec.n_frames == 2330 and rec.n_video_frames == 2330
    assert rec.video_path.name == "m3v1mp4.mp4"
    assert rec.fps == pytest.approx(30.0, abs=0.01)  # from the video: DLC csv has no fps
    assert rec.individuals == ["individual0"] and rec.bodyparts == ["snout", "leftear", "rightear", "tailbase"]
    raw = pd.read_csv(openfield_project / "videos" / "m3v1mp4DLC_resnet50_openfieldOct30shuffle1_6000.csv",
                      header=[0, 1, 2], index_col=0)
    np.testing.assert_allclose(rec.keypoints[700, 0, 0], raw.iloc[700, :2].to_numpy(float), rtol=1e-6)
    assert _sha(config) == before


def test_destfolder_and_videos_argument(openfield_project, tmp_path):
    out = tmp_path / "dlc_out"
    out.mkdir()
    pose = openfield_project / "videos" / "m3v1mp4DLC_resnet50_openfieldOct30shuffle1_6000.csv"
    (out / pose.name).symlink_to(pose.resolve())
    pose.unlink()
    with pytest.raises(PoseFormatError, match="no analyzed videos"):
        load_project(openfield_project / "config.yaml")
    (rec,) = load_project(openfield_project / "config.yaml", destfolder=out,
                          videos=[openfield_project / "videos"], videotype="mp4")
    assert rec.source.parent == out and rec.n_frames == 2330
    with pytest.raises(PoseFormatError, match="no analyzed videos"):
        load_project(openfield_project / "config.yaml", destfolder=out, videotype="avi")


def test_analyzed_output_whose_video_is_gone_is_keypoints_only(shared, caplog):
    config = shared / EXAMPLES / "golden_mouse-shaokai-2022-10-19" / "config.yaml"
    with caplog.at_level(logging.WARNING):
        (rec,) = load_project(config)
    assert rec.video_path is None
    assert rec.n_frames == 4860 and len(rec.bodyparts) == 27
    assert "golden_mouse.mp4" in caplog.text


def test_frame_count_mismatch_is_refused_with_both_counts(openfield_project):
    pose = openfield_project / "videos" / "m3v1mp4DLC_resnet50_openfieldOct30shuffle1_6000.csv"
    lines = pose.read_text().splitlines(keepends=True)
    pose.unlink()
    pose.write_text("".join(lines[: 3 + 2300]))  # 2300 rows for a 2330-frame video
    with pytest.raises(VideoMismatchError) as err:
        load_project(openfield_project / "config.yaml")
    assert "2300" in str(err.value) and "2330" in str(err.value)


def test_load_pose_finds_video_beside_dlc_output(openfield_project):
    rec = load_pose(openfield_project / "videos" / "m3v1mp4DLC_resnet50_openfieldOct30shuffle1_6000.csv")
    assert rec.video_path.name == "m3v1mp4.mp4"
    no_video = load_pose(openfield_project / "videos" / "m3v1mp4DLC_resnet50_openfieldOct30shuffle1_6000.csv",
                         video=False)
    assert no_video.video_path is None


def test_load_pose_without_video_warns_and_goes_on(shared, caplog):
    with caplog.at_level(logging.WARNING):
        rec = load_pose(shared / "behaviordepot/demo/demo1/demo1_tracking.csv")
    assert rec.video_path is None and rec.n_frames == 6000
    assert "keypoints-only" in caplog.text


def test_load_pose_reaching_half_resolution_video(shared):
    rec = load_pose(
        shared / "dlc-label-editor/SampleData/reachingvideo1DLC_resnet50_ReachingAug30shuffle1_200000.h5",
        video=shared / "deeplabcut/tests/data/vid.avi",
    )
    assert rec.video_scale == pytest.approx(0.5)
    xy = rec.keypoints_in_video_pixels()
    assert np.nanmax(xy[..., 0]) <= 416 and np.nanmax(xy[..., 1]) <= 374


def test_detect_pose_format_on_real_files(shared):
    assert detect_pose_format(shared / "sleap/docs/notebooks/analysis_example/predictions.analysis.h5") \
        == "sleap-analysis-h5"
    assert detect_pose_format(shared / "sleap/docs/notebooks/analysis_example/predictions.slp") == "sleap-slp"
    assert detect_pose_format(shared / f"{MULTI}/videos/{MULTI_STEM}_el.h5") == "dlc-h5"
    assert detect_pose_format(shared / OPENFIELD_CSV) == "dlc-csv"


@pytest.mark.parametrize(
    "name, content, problem",
    [
        ("poses.txt", b"x", "unknown pose file type"),
        ("poses", b"x", "unknown pose file type"),
        ("broken.h5", b"\x89HDF\r\n\x1a\n" + b"\0" * 40, "HDF5"),
        ("config.yaml", b"Task: x\n", "load_project"),
    ],
)
def test_load_pose_bad_input_names_file_and_problem(tmp_path, name, content, problem):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(PoseFormatError) as err:
        load_pose(path)
    assert name in str(err.value) and problem in str(err.value)


def test_load_pose_missing_file_and_folder(tmp_path):
    with pytest.raises(PoseFormatError, match="not found"):
        load_pose(tmp_path / "nothere.h5")
    with pytest.raises(PoseFormatError, match="is a folder"):
        load_pose(tmp_path)


@pytest.mark.parametrize(
    "content, problem",
    [
        (None, "config.yaml not found"),
        ("Task: [unclosed\n", "not valid YAML"),
        ("just a string\n", "not a DeepLabCut project config"),
        ("Task: t\nbodyparts: []\n", "no bodyparts"),
        ("Task: t\nbodyparts: [a]\nvideo_sets: [x]\n", "video_sets"),
    ],
)
def test_bad_configs(tmp_path, content, problem):
    config = tmp_path / "config.yaml"
    if content is not None:
        config.write_text(content)
    with pytest.raises(PoseFormatError) as err:
        read_dlc_config(config)
    assert str(config) in str(err.value) and problem in str(err.value)


def test_project_without_any_analysis(shared):
    with pytest.raises(PoseFormatError, match="no analyzed videos"):
        load_project(shared / EXAMPLES / "openfield-Pranav-2018-10-30" / "config.yaml")


SAMPLE = Path(__file__).resolve().parents[1] / "sample_project"


def test_sample_project_reads_as_dlc_and_sleap():
    recs = load_project(SAMPLE / "config.yaml")
    assert [r.video_path.name for r in recs] == ["sample_000.mp4", "sample_001.mp4"]
    for rec in recs:
        assert rec.n_frames == rec.n_video_frames == 600 and rec.fps == pytest.approx(30.0)
        assert rec.individuals == ["individual1", "individual2"] and len(rec.bodyparts) == 7
        slp = load_pose(SAMPLE / "videos" / f"{rec.video_path.name}.predictions.slp")
        assert slp.video_path == rec.video_path  # stored absolute path is stale in a clone: found beside
        assert slp.n_frames == 600 and slp.bodyparts == rec.bodyparts


def test_unreadable_videos_folder_names_the_folder(openfield_project, monkeypatch):
    # Root ignores chmod in CI, so simulate the permission error the OS would raise.
    videos = openfield_project / "videos"
    real_iterdir = Path.iterdir

    def iterdir(self):
        if self == videos:
            raise PermissionError(13, "Permission denied", str(self))
        return real_iterdir(self)

    monkeypatch.setattr(Path, "iterdir", iterdir)
    with pytest.raises(PoseFormatError) as err:
        read_dlc_config(openfield_project / "config.yaml")
    assert str(videos) in str(err.value) and "cannot list the folder" in str(err.value)


def test_copied_project_reads_its_own_videos_not_the_originals(openfield_project, tmp_path):
    # The config of a copied project lists the original's absolute paths, which still exist.
    original = openfield_project
    copy = tmp_path / "copy-of-project"
    shutil.copytree(original, copy, symlinks=True)
    text = (copy / "config.yaml").read_text().replace(
        "WILL BE AUTOMATICALLY UPDATED BY DEMO CODE:", f"{original / 'videos' / 'm3v1mp4.mp4'}:"
    )
    (copy / "config.yaml").write_text(text)
    project = read_dlc_config(copy / "config.yaml")
    assert project.videos == [copy / "videos" / "m3v1mp4.mp4"]  # symlink kept, not followed
    (rec,) = load_project(copy / "config.yaml")
    assert rec.source.parent == copy / "videos"


def test_copied_project_reads_its_own_outputs_not_those_beside_the_original_video(tmp_path, sample_project):
    """A project copied without its videos: the videos are found at the stored paths, but the pose
    files (and so every output) must be the copy's."""
    import shutil

    from dlc_lookagain.io.project import find_analyzed_videos, read_dlc_config

    original = tmp_path / "original"
    shutil.copytree(sample_project, original)
    config = original / "config.yaml"
    import yaml

    stored = yaml.safe_load(config.read_text())["project_path"]  # where the sample was generated
    config.write_text(config.read_text().replace(stored, str(original)))
    copy = tmp_path / "copy"
    shutil.copytree(original, copy, ignore=shutil.ignore_patterns("*.mp4"))
    pairs = find_analyzed_videos(read_dlc_config(copy / "config.yaml"))
    assert len(pairs) == 2
    for pair in pairs:
        assert pair.video.parent == original / "videos"  # read-only use of the original's video
        assert pair.pose_file.parent == copy / "videos"
