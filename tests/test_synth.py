"""Tests of the synthetic project generator (dlc_lookagain.synth).

Tiny videos (160x120, 2 s) keep the whole file well under a minute; statistics and
honesty checks run the simulation without rendering.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import yaml

from dlc_lookagain.synth import BEHAVIOR_NAMES, BODYPARTS, generate_project, preset, simulate_recording
from dlc_lookagain.synth.__main__ import main as cli_main
from dlc_lookagain.synth.config import GeneratorConfig, SceneConfig
from dlc_lookagain.synth.encode import VideoEncoder, backend_available
from dlc_lookagain.synth.ethogram import BEHAVIOR_INDEX
from dlc_lookagain.synth.honesty import honesty_report, near_station_share, roc_auc, separability
from dlc_lookagain.synth.project import label_bouts

TINY = preset("tiny", n_videos=2, animals=(1, 2), seed=7)
SCORER_MA = "DLC_dlcrnetms5_synthmiceMay06shuffle1_200000"
SCORER_SA = "DLC_resnet50_synthmiceMay06shuffle1_200000"
DLC_NAME = re.compile(
    r"^(?P<stem>.+?)DLC_(resnet50|dlcrnetms5)_synthmice[A-Z][a-z]{2}\d{2}shuffle1_\d+(_el)?\.(h5|csv)$"
)


@pytest.fixture(scope="module")
def ma_project(tmp_path_factory):
    """Multi-animal project: video 0 has one animal, video 1 two."""
    path = tmp_path_factory.mktemp("ma") / "project"
    out = generate_project(TINY, path)
    return out


@pytest.fixture(scope="module")
def sa_project(tmp_path_factory):
    """Single-animal project with one video."""
    path = tmp_path_factory.mktemp("sa") / "project"
    return generate_project(preset("tiny", n_videos=1, animals=(1,), seed=3), path)


def _files(out, index):
    return out.videos[index].files


def _decode(path):
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    fps = cap.get(cv2.CAP_PROP_FPS)
    cap.release()
    return np.array(frames), fps


# ------------------------------------------------------------------------------------------------------
# Determinism
# ------------------------------------------------------------------------------------------------------


def test_same_seed_gives_identical_pose_and_label_files(ma_project, tmp_path):
    again = generate_project(TINY, tmp_path / "again")
    for i in range(2):
        a, b = _files(ma_project, i), _files(again, i)
        for key in ("csv", "labels", "bouts", "meta"):
            assert a[key].read_bytes() == b[key].read_bytes(), key
        pd.testing.assert_frame_equal(pd.read_hdf(a["h5"]), pd.read_hdf(b["h5"]))
        if ma_project.videos[i].encoder == "ffmpeg-h264":
            # libx264 with +bitexact is deterministic: the videos are identical too.
            assert a["video"].read_bytes() == b["video"].read_bytes()


def test_other_seed_gives_other_data(ma_project, tmp_path):
    other = generate_project(TINY.replace(seed=8, write_video=False, write_slp=False), tmp_path / "other")
    assert _files(other, 1)["csv"].read_bytes() != _files(ma_project, 1)["csv"].read_bytes()
    assert _files(other, 1)["labels"].read_bytes() != _files(ma_project, 1)["labels"].read_bytes()


def test_labels_do_not_depend_on_rendering(ma_project, tmp_path):
    no_video = generate_project(TINY.replace(write_video=False, write_slp=False), tmp_path / "novideo")
    assert not (tmp_path / "novideo" / "videos" / "tiny_000.mp4").exists()
    assert _files(no_video, 1)["labels"].read_bytes() == _files(ma_project, 1)["labels"].read_bytes()


def test_render_order_does_not_matter():
    rec = simulate_recording(TINY, 1)
    seq = [f for _, f in zip(range(5), rec.renderer())]
    r = rec.renderer()
    assert np.array_equal(r.render(4), seq[4])
    assert np.array_equal(r.render(0), seq[0])


# ------------------------------------------------------------------------------------------------------
# DeepLabCut layout
# ------------------------------------------------------------------------------------------------------


def test_single_animal_h5_layout(sa_project):
    files = _files(sa_project, 0)
    assert files["h5"].name == f"tiny_000{SCORER_SA}.h5"
    assert DLC_NAME.match(files["h5"].name).group("stem") == "tiny_000"
    with pd.HDFStore(files["h5"], "r") as store:
        assert store.keys() == ["/df_with_missing"]
        assert store.get_storer("df_with_missing").is_table
    df = pd.read_hdf(files["h5"])
    assert df.columns.names == ["scorer", "bodyparts", "coords"]
    assert df.columns.get_level_values("scorer").unique().tolist() == [SCORER_SA]
    assert df.columns.get_level_values("bodyparts").unique().tolist() == list(BODYPARTS)
    assert df.columns.get_level_values("coords").unique().tolist() == ["x", "y", "likelihood"]
    assert df.index.tolist() == list(range(60))
    assert (df.dtypes == np.float64).all()
    # Single-animal DLC always reports a position, even for hidden keypoints.
    assert not df.isna().any().any()
    lik = df.xs("likelihood", level="coords", axis=1).to_numpy()
    assert lik.min() >= 0 and lik.max() <= 1


def test_multi_animal_h5_layout(ma_project):
    files = _files(ma_project, 1)
    assert files["h5"].name == f"tiny_001{SCORER_MA}_el.h5"
    assert files["meta"].name == f"tiny_001{SCORER_MA}_meta.pickle"
    with pd.HDFStore(files["h5"], "r") as store:
        assert store.keys() == ["/tracks"]  # the key of DLC's stitched _el.h5
    df = pd.read_hdf(files["h5"])
    assert df.columns.names == ["scorer", "individuals", "bodyparts", "coords"]
    assert df.columns.get_level_values("individuals").unique().tolist() == ["individual1", "individual2"]
    assert df.columns.get_level_values("bodyparts").unique().tolist() == list(BODYPARTS)
    assert df.shape == (60, 2 * 7 * 3)
    # The one-animal video of the project: individual2 is empty, as maDLC leaves unused tracks.
    single = pd.read_hdf(_files(ma_project, 0)["h5"])
    assert single["DLC_dlcrnetms5_synthmiceMay06shuffle1_200000", "individual2"].isna().all().all()
    assert single["DLC_dlcrnetms5_synthmiceMay06shuffle1_200000", "individual1"].notna().any().any()


@pytest.mark.parametrize("which", ["sa", "ma"])
def test_csv_header_rows_and_content(which, sa_project, ma_project):
    out = sa_project if which == "sa" else ma_project
    files = _files(out, 0)
    lines = files["csv"].read_text().splitlines()
    levels = (
        ["scorer", "bodyparts", "coords"]
        if which == "sa"
        else ["scorer", "individuals", "bodyparts", "coords"]
    )
    for line, level in zip(lines, levels):
        assert line.split(",")[0] == level
    assert lines[len(levels)].split(",")[0] == "0"
    assert len(lines) == len(levels) + 60
    csv = pd.read_csv(files["csv"], header=list(range(len(levels))), index_col=0)
    h5 = pd.read_hdf(files["h5"])
    np.testing.assert_allclose(csv.to_numpy(), h5.to_numpy(), rtol=1e-12, equal_nan=True)


def test_meta_pickle(ma_project):
    meta = pickle.loads(_files(ma_project, 1)["meta"].read_bytes())
    data = meta["data"]
    assert data["fps"] == 30.0 and data["nframes"] == 60
    assert data["frame_dimensions"] == (120, 160)
    assert data["cropping_parameters"] == [0, 160, 0, 120]
    assert data["Scorer"] == SCORER_MA
    assert data["DLC-model-config file"]["all_joints_names"] == list(BODYPARTS)


def test_meta_pickle_keys_match_real_dlc(ma_project, shared):
    data = pickle.loads(_files(ma_project, 1)["meta"].read_bytes())["data"]
    golden = shared / "deeplabcut/examples/golden_mouse-shaokai-2022-10-19/videos"
    real = pickle.loads(next(golden.glob("*_meta.pickle")).read_bytes())["data"]
    assert list(data) == list(real)
    extra = {"num_idchannel", "partaffinityfield_graph", "partaffinityfield_predict"}
    assert set(data["DLC-model-config file"]) <= set(real["DLC-model-config file"]) | extra


def test_config_yaml(ma_project, sa_project):
    cfg = yaml.safe_load(ma_project.config_path.read_text())
    assert cfg["multianimalproject"] is True and cfg["identity"] is True and cfg["bodyparts"] == "MULTI!"
    assert cfg["individuals"] == ["individual1", "individual2"]
    assert cfg["multianimalbodyparts"] == list(BODYPARTS) and cfg["uniquebodyparts"] == []
    assert cfg["date"] == "May06" and cfg["Task"] == "synthmice" and cfg["scorer"] == "synth"
    assert cfg["default_net_type"] == "dlcrnet_ms5" and cfg["default_track_method"] == "ellipse"
    assert Path(cfg["project_path"]).resolve() == ma_project.project_dir.resolve()
    videos = sorted(cfg["video_sets"])
    assert [v.rsplit("/", 1)[1] for v in videos] == ["tiny_000.mp4", "tiny_001.mp4"]
    assert all(cfg["video_sets"][v] == {"crop": "0, 160, 0, 120"} for v in videos)
    assert all(len(edge) == 2 and set(edge) <= set(BODYPARTS) for edge in cfg["skeleton"])
    sa = yaml.safe_load(sa_project.config_path.read_text())
    assert sa["multianimalproject"] is False and sa["identity"] is None and sa["bodyparts"] == list(BODYPARTS)
    assert sa["default_net_type"] == "resnet_50" and "individuals" not in sa


def test_config_yaml_keys_match_real_dlc(ma_project, sa_project, shared):
    examples = shared / "deeplabcut/examples"
    real_ma = yaml.safe_load((examples / "multi_mouse-dlc_team-2022-04-12/config.yaml").read_text())
    real_sa = yaml.safe_load((examples / "golden_mouse-shaokai-2022-10-19/config.yaml").read_text())
    assert set(yaml.safe_load(ma_project.config_path.read_text())) == set(real_ma)
    assert set(yaml.safe_load(sa_project.config_path.read_text())) == set(real_sa)


# ------------------------------------------------------------------------------------------------------
# Video, pose and labels agree
# ------------------------------------------------------------------------------------------------------


def test_frame_counts_agree(ma_project):
    for i, v in enumerate(ma_project.videos):
        files = _files(ma_project, i)
        frames, fps = _decode(files["video"])
        assert fps == pytest.approx(30.0)
        assert frames.shape == (60, 120, 160, 3)
        assert len(pd.read_hdf(files["h5"])) == 60
        labels = pd.read_csv(files["labels"])
        assert list(labels.columns) == ["frame", "individual", *BEHAVIOR_NAMES]
        assert labels.groupby("individual").size().tolist() == [60] * v.n_animals
        assert labels["frame"].tolist() == list(np.repeat(np.arange(60), v.n_animals))
        values = labels[list(BEHAVIOR_NAMES)].to_numpy()
        assert set(np.unique(values)) <= {0, 1}
        assert (values.sum(axis=1) >= 1).all()  # every frame of every animal is annotated


def test_bout_table_matches_frame_table(ma_project):
    files = _files(ma_project, 1)
    frames = pd.read_csv(files["labels"])
    bouts = pd.read_csv(files["bouts"])
    assert list(bouts.columns) == ["individual", "behavior", "start_frame", "end_frame"]
    rebuilt = pd.DataFrame(0, index=frames.index, columns=list(BEHAVIOR_NAMES))
    for b in bouts.itertuples():
        rows = (frames["individual"] == b.individual) & frames["frame"].between(b.start_frame, b.end_frame)
        assert rebuilt.loc[rows, b.behavior].sum() == 0  # bouts of one behavior do not overlap
        rebuilt.loc[rows, b.behavior] = 1
    pd.testing.assert_frame_equal(rebuilt, frames[list(BEHAVIOR_NAMES)], check_dtype=False)


def test_label_bouts_boundaries():
    labels = np.zeros((6, 1, len(BEHAVIOR_NAMES)), bool)
    labels[0:2, 0, 0] = labels[5, 0, 0] = labels[1:4, 0, 2] = True
    bouts = label_bouts(labels, ["m"])
    assert bouts.values.tolist() == [["m", "walk", 0, 1], ["m", "rest", 1, 3], ["m", "walk", 5, 5]]


def test_slp_matches_dlc(ma_project):
    import sleap_io as sio

    files = _files(ma_project, 1)
    labels = sio.load_slp(str(files["slp"]), open_videos=False)
    assert [t.name for t in labels.tracks] == ["individual1", "individual2"]
    assert labels.skeletons[0].node_names == list(BODYPARTS)
    assert Path(labels.videos[0].filename).resolve() == files["video"].resolve()
    assert tuple(labels.videos[0].shape) == (60, 120, 160, 3)
    arr = labels.numpy(return_confidence=True)  # (frames, tracks, nodes, 3)
    assert arr.shape[1:] == (2, 7, 3)
    df = pd.read_hdf(files["h5"])
    xy = df.xs("x", level="coords", axis=1).to_numpy().reshape(60, 2, 7)
    lik = df.xs("likelihood", level="coords", axis=1).to_numpy().reshape(60, 2, 7)
    frames = [lf.frame_idx for lf in labels.labeled_frames]
    shown = np.isfinite(arr[:, :, :, 0])
    np.testing.assert_allclose(arr[:, :, :, 0][shown], xy[frames][shown])
    assert (lik[frames][shown] >= 0.2).all()  # SLEAP's peak threshold
    assert not (np.nan_to_num(lik[frames]) >= 0.2)[~shown].any()


def test_single_animal_slp_is_untracked(sa_project):
    import sleap_io as sio

    labels = sio.load_slp(str(_files(sa_project, 0)["slp"]), open_videos=False)
    assert labels.tracks == []
    assert all(len(lf.instances) == 1 for lf in labels.labeled_frames)


def test_keypoints_land_on_the_drawn_animal(ma_project):
    rec = simulate_recording(TINY, 1)
    frames, _ = _decode(_files(ma_project, 1)["video"])
    truth = np.load(_files(ma_project, 1)["truth"])
    np.testing.assert_array_equal(truth["keypoints"], rec.trajectory.keypoints)
    gray = frames.mean(axis=3)
    scene = rec.scene
    yy, xx = np.mgrid[0:120, 0:160]
    floor = scene.arena.signed_distance(xx, yy) < -3
    hits, total = 0, 0
    for t in range(60):
        floor_level = np.median(gray[t][floor])
        for a in range(2):
            x, y = rec.trajectory.keypoints[t, a, BODYPARTS.index("body_center")]
            if scene.nest.contains(x, y, margin=-2):
                continue  # under the shelter everything is dark
            total += 1
            hits += (gray[t, int(round(y)), int(round(x))] - floor_level) * scene.contrast > 25
    assert total > 30
    assert hits / total > 0.95
    # The tracker's body_center, where confident, is on the animal it is said to follow.
    pred = rec.prediction
    k = BODYPARTS.index("body_center")
    for j in range(2):
        animal = pred.track_animal[:, j]
        true = rec.trajectory.keypoints[np.arange(60), animal, k]
        good = pred.likelihood[:, j, k] > 0.9
        err = np.linalg.norm(pred.xy[:, j, k] - true, axis=1)[good]
        assert good.sum() > 20 and np.median(err) < 0.15 * scene.mean_length


# ------------------------------------------------------------------------------------------------------
# Behavior statistics and honesty
# ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_minutes():
    # Seed 0 is one of the ~40 % of seeds whose 2 minutes show every behavior.
    cfg = preset("train", seconds=120, animals=(2,), seed=0, write_video=False)
    return simulate_recording(cfg, 0)


def test_every_behavior_occurs_and_rare_ones_are_rare(two_minutes):
    labels = two_minutes.trajectory.labels
    share = dict(zip(BEHAVIOR_NAMES, labels.mean(axis=(0, 1))))
    assert all(share[b] > 0 for b in BEHAVIOR_NAMES), share
    for rare in ("chase", "drink", "run", "sniff"):
        assert share[rare] < 0.06, (rare, share[rare])
    assert share["walk"] + share["rest"] > 0.3
    n_labels = labels.sum(axis=2)
    assert (n_labels >= 1).all()
    assert (n_labels > 1).mean() < 0.05  # multi-label (chase+run) exists but is rare
    chase = labels[..., BEHAVIOR_INDEX["chase"]]
    assert labels[..., BEHAVIOR_INDEX["run"]][chase].all()


def test_bout_lengths_span_frames_to_many_seconds(two_minutes):
    bouts = label_bouts(two_minutes.trajectory.labels, ["a", "b"])
    length = (bouts.end_frame - bouts.start_frame + 1) / 30.0
    by = length.groupby(bouts.behavior).median()
    assert by["turn"] < 1.5 and length.min() < 0.5
    assert by["rest"] > 2.0 and length.max() > 10.0


def test_rare_vision_preset_makes_vision_events_short_and_rare(two_minutes):
    """The gate's benchmark preset: licks, brief grooming, single rears, hidden in long rests."""
    rare = simulate_recording(preset("rare_vision_train", seconds=240, animals=(2,), seed=0, write_video=False), 0)
    for traj, limit in ((rare.trajectory, 1.6), (two_minutes.trajectory, None)):
        bouts = label_bouts(traj.labels, ["a", "b"])
        length = (bouts.end_frame - bouts.start_frame + 1) / 30.0
        by = length.groupby(bouts.behavior).median()
        share = dict(zip(BEHAVIOR_NAMES, traj.labels.mean(axis=(0, 1))))
        if limit is None:  # the default ethogram: long grooming and eating
            assert by["groom"] > 2.5 and by["eat"] > 2.5
            continue
        for b in ("eat", "drink", "groom", "rear"):
            assert by[b] < limit and share[b] < 0.05, (b, by.get(b), share[b])
        assert share["rest"] > 0.15
    with pytest.raises(ValueError, match="in that order"):
        simulate_recording(preset("train", seconds=1.0, write_video=False,
                                  ethogram=tuple(reversed(preset("rare_vision_train").ethogram))), 0)


def test_identity_swaps_follow_close_encounters():
    cfg = preset("train", seconds=120, animals=(3,), seed=2, write_video=False)
    rec = simulate_recording(cfg, 0)
    pred = rec.prediction
    assert pred.swaps, "expected identity swaps in 2 minutes of 3 animals"
    for t, i, j in pred.swaps:
        d = np.linalg.norm(rec.trajectory.keypoints[t, i, 4] - rec.trajectory.keypoints[t, j, 4])
        assert d < rec.scene.mean_length
    assignment = pred.track_animal
    assert all(sorted(row) == [0, 1, 2] for row in assignment[::30])
    assert (assignment != np.arange(3)).any()
    # The nest hides keypoints: multi-animal output has NaN there, mostly only there.
    kp = rec.trajectory.keypoints
    in_nest = rec.scene.nest.contains(kp[..., 0], kp[..., 1], margin=0.05 * rec.scene.mean_length)
    missing = np.isnan(pred.likelihood[np.arange(len(kp))[:, None], assignment.argsort(axis=1)])
    assert missing[in_nest].mean() > 0.5 > missing[~in_nest].mean() * 5


def _single_animal_recordings(n: int, seed: int) -> list:
    cfg = preset("train", seconds=120, seed=seed)
    return [simulate_recording(cfg, i, 1, multi_animal=False) for i in range(n)]


def test_groom_and_rest_not_separable_from_keypoints():
    recs = _single_animal_recordings(30, seed=11)
    groom_rest = separability(recs, "groom", "rest", level="bout")
    walk_rest = separability(recs, "walk", "rest", level="bout")
    # Positive control: the same classifier separates what keypoints do show.
    assert walk_rest.auc > 0.9, walk_rest
    assert groom_rest.auc < 0.62, groom_rest
    assert groom_rest.n_positive > 50 and groom_rest.n_negative > 50


def test_honesty_check_detects_a_keypoint_leak(monkeypatch):
    """The check above can fail: make grooming mice curl their tails and it notices."""
    from dlc_lookagain.synth import motion

    original = motion._Simulator._still_posture

    def leaky(self, bout):
        original(self, bout)
        if bout.behavior == "groom":
            bout.tail_curl = 2.0

    monkeypatch.setattr(motion._Simulator, "_still_posture", leaky)
    recs = _single_animal_recordings(30, seed=11)
    assert separability(recs, "groom", "rest", level="bout").auc > 0.72


def test_near_hopper_is_not_eating():
    cfg = preset("train", seconds=120, seed=5)
    recs = [simulate_recording(cfg, i, 1, multi_animal=False) for i in range(4)]
    share, n = near_station_share(recs, "hopper", radius=0.35, behavior="eat")
    assert n > 100
    assert share > 0.2  # rest, groom and rear at the hopper, and walking past it
    eat = np.concatenate([r.trajectory.labels[:, 0, BEHAVIOR_INDEX["eat"]] for r in recs])
    near = np.concatenate(
        [
            np.linalg.norm(r.trajectory.keypoints[:, 0, 0] - r.scene.hopper.target, axis=1)
            < 0.5 * r.scene.mean_length
            for r in recs
        ]
    )
    assert eat.sum() > 30 and near[eat].mean() > 0.95  # eating does happen at the hopper


def test_roc_auc():
    assert roc_auc(np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 0, 1, 1])) == 1.0
    assert roc_auc(np.array([0.5, 0.5, 0.5, 0.5]), np.array([0, 1, 0, 1])) == 0.5
    assert roc_auc(np.array([0.9, 0.1]), np.array([0, 1])) == 0.0


def test_honesty_report():
    out = honesty_report(preset("tiny", seconds=60), n_recordings=4, folds=2)
    assert {"auc_groom_vs_rest", "auc_groom_vs_rest_bouts", "auc_walk_vs_rest", "near_hopper_not_eat"} <= set(
        out
    )
    assert out["auc_walk_vs_rest"] > 0.8
    rec = simulate_recording(preset("tiny", seconds=1), 0, 1, multi_animal=False)
    with pytest.raises(ValueError, match="lack"):
        separability([rec, rec], "chase", "rest", folds=2)


# ------------------------------------------------------------------------------------------------------
# Configuration, presets, CLI, encoder
# ------------------------------------------------------------------------------------------------------


def test_presets_shift_the_distribution():
    train, shifted = preset("train"), preset("test_shifted")
    assert (train.scene.width, train.scene.height) != (shifted.scene.width, shifted.scene.height)
    assert set(train.scene.floor_textures).isdisjoint(shifted.scene.floor_textures)
    assert train.scene.animal_length[1] < shifted.scene.animal_length[0]
    assert train.scene.brightness[0] > shifted.scene.brightness[1]
    assert max(train.animals) < min(shifted.animals)
    a = simulate_recording(train.replace(write_video=False), 0, 1)
    b = simulate_recording(shifted.replace(seconds=1.0), 0)
    assert b.scene.n_animals == 3 and b.scene.arena.shape == "square"
    assert b.scene.mean_length / (2 * b.scene.arena.radius) > a.scene.mean_length / (2 * a.scene.arena.radius)


def test_invalid_configs_are_rejected():
    with pytest.raises(ValueError, match="even"):
        SceneConfig(width=161)
    with pytest.raises(ValueError, match="contrasts"):
        SceneConfig(floor_textures=("dark",), coats=("black",))
    with pytest.raises(ValueError, match="1, 2 or 3"):
        GeneratorConfig(animals=(4,))
    with pytest.raises(ValueError, match="unknown preset"):
        preset("nope")


def test_cli_project_and_overwrite(tmp_path, caplog):
    out = tmp_path / "cli"
    args = [
        "project",
        str(out),
        "--preset",
        "tiny",
        "--videos",
        "1",
        "--animals",
        "1",
        "--seconds",
        "1",
        "--seed",
        "4",
        "--no-slp",
    ]
    assert cli_main(args) == 0
    assert (out / "config.yaml").is_file()
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["multianimalproject"] is False
    assert (out / "videos" / f"tiny_000{SCORER_SA}.h5").is_file()
    assert not list((out / "videos").glob("*.slp"))
    assert cli_main(args) == 1  # refuses to write into a non-empty folder
    assert "not empty" in caplog.text
    assert cli_main([*args, "--overwrite"]) == 0
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "thesis.docx").write_text("x")
    assert cli_main(["project", str(tmp_path / "foreign"), "--preset", "tiny", "--overwrite"]) == 1
    assert (tmp_path / "foreign" / "thesis.docx").exists()
    assert cli_main(["presets"]) == 0


def test_mp4v_fallback_encoder(tmp_path):
    if not backend_available("opencv-mp4v"):
        pytest.skip("OpenCV cannot write mp4v here")
    path = tmp_path / "v.mp4"
    with VideoEncoder(path, 64, 48, 30.0, backend="opencv-mp4v") as enc:
        for value in range(0, 250, 25):
            enc.write(np.full((48, 64, 3), value, np.uint8))
    frames, fps = _decode(path)
    assert len(frames) == 10 and fps == pytest.approx(30.0)
    assert not (tmp_path / "v.partial.mp4").exists()
    bad = VideoEncoder(tmp_path / "bad.mp4", 64, 48, 30.0, backend="opencv-mp4v")
    with pytest.raises(ValueError, match="frame must be"), bad:
        bad.write(np.zeros((10, 10, 3), np.uint8))
    assert not (tmp_path / "bad.mp4").exists() and not (tmp_path / "bad.partial.mp4").exists()
