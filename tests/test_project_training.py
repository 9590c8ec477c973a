"""pretrain / train on a lab's project (the sample project, copied), and the bundled weights."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from dlc_lookagain.io import load_project  # noqa: E402
from dlc_lookagain.model.lookagain import load_model  # noqa: E402
from dlc_lookagain.project_training import (  # noqa: E402
    bundled_model_path, find_label_file, load_default_model, pretrain, train)

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "sample_project"
GENERATOR_BEHAVIORS = ["walk", "run", "rest", "turn", "eat", "drink", "groom", "rear", "sniff", "chase", "huddle"]


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and "lookagain" not in p.parts}


@pytest.fixture(scope="module")
def project(tmp_path_factory, sample_project) -> Path:
    dst = tmp_path_factory.mktemp("proj") / "sample_project"
    shutil.copytree(sample_project, dst)
    return dst


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def test_bundled_weights_ship_with_the_package():
    path = bundled_model_path()
    assert path.is_file(), f"bundled weights missing at {path}"
    assert path.stat().st_size < 20 * 1024 * 1024
    model, manifest = load_default_model()
    assert manifest["kind"] == "bundled"
    assert model.config.behaviors == GENERATOR_BEHAVIORS
    assert bool(model.visual_fitted)
    side = json.loads(path.with_name(path.name + ".manifest.json").read_text())
    assert side["weights_sha256"] == manifest["weights_sha256"]


def test_bundled_model_runs_on_another_skeleton():
    """Weights apply to a project whose skeleton differs in number and names of bodyparts."""
    from dlc_lookagain.io.record import PoseRecord
    from dlc_lookagain.model.inference import fused_pass, motion_pass
    from dlc_lookagain.model.pose_tokens import tokenize
    from dlc_lookagain.model.windows import Sequence

    model, _ = load_default_model()
    rng = np.random.default_rng(0)
    t, b = 300, 12
    kp = (np.cumsum(rng.normal(0, 1, (t, 1, 1, 2)), 0) + rng.normal(0, 5, (1, 1, b, 2)) + 200).astype(np.float32)
    rec = PoseRecord(keypoints=kp, confidence=np.full((t, 1, b), 0.9, np.float32), individuals=["m1"],
                     bodyparts=[f"p{i}" for i in range(b)], fps=25.0, source=Path("x.h5"))
    seq = Sequence("x", tokenize(rec), 25.0)
    mp = motion_pass(model, [seq])[0]
    assert mp.z.shape == (t, 1, model.config.dim) and np.isfinite(mp.frame_scores).all()
    probs, _ = fused_pass(model, [seq], [np.zeros(t, bool)])
    assert probs[0].shape == (t, 1, len(GENERATOR_BEHAVIORS)) and np.isfinite(probs[0]).all()


def test_find_label_file(project, tmp_path):
    recs = list(load_project(project / "config.yaml"))
    found = find_label_file(recs[0])
    assert found is not None and found.name == "sample_000_labels.csv"
    assert find_label_file(recs[0], {"sample_000": tmp_path / "a.csv"}) == tmp_path / "a.csv"
    assert find_label_file(recs[0], {"other": tmp_path / "a.csv"}) is None
    assert find_label_file(recs[0], tmp_path) is None  # empty folder


def test_our_own_bout_table_is_never_taken_for_labels(tmp_path):
    """A SLEAP file named like its video: its ``<stem>_bouts.csv`` output matches the label suffix."""
    from dlc_lookagain.io import load_pose

    shutil.copy(SAMPLE / "videos" / "sample_000.mp4", tmp_path / "session1.mp4")
    slp = tmp_path / "session1.slp"
    shutil.copy(SAMPLE / "videos" / "sample_000.mp4.predictions.slp", slp)
    rec = load_pose(slp, video=tmp_path / "session1.mp4")
    ours = tmp_path / "session1_bouts.csv"
    shutil.copy(SAMPLE / "videos" / "sample_000_label_bouts.csv", ours)
    assert find_label_file(rec) is None
    labels = tmp_path / "session1_labels.csv"
    shutil.copy(SAMPLE / "videos" / "sample_000_labels.csv", labels)
    assert find_label_file(rec) == labels


def test_train_on_project_saves_model_with_manifest_and_keeps_user_files(project):
    before = _digest(project)
    out = train(project / "config.yaml", progress=False, part_dropout=True)
    assert out.parent == project / "lookagain" / "models" and out.name == "behavior.pt"
    model, manifest = load_model(out)
    assert manifest["kind"] == "behavior" and manifest["decision"] == "boosted-trees"
    assert manifest["skeleton"][0] == "nose"
    assert model.config.behaviors == manifest["behaviors"] and len(model.config.behaviors) == 11
    assert model.decision is not None and model.decision.behaviors == model.config.behaviors
    assert len(manifest["data_sha256"]) == 16
    # The label files by path and content: evaluate recognises them in a copied project too.
    labels = [project / "videos" / f"sample_00{k}_labels.csv" for k in (0, 1)]
    assert manifest["label_files"] == [str(p) for p in labels]
    assert manifest["label_sha256"] == [hashlib.sha256(p.read_bytes()).hexdigest() for p in labels]
    assert manifest["part_dropout"] is True  # also trained on copies with a bodypart replaced by its guess
    # Two labeled recordings: each is held out once, and every behavior gets its out-of-fold F1.
    assert "leave-recording-out over 2 recordings" in manifest["cv"]
    assert set(manifest["cv_f1"]) == set(model.config.behaviors)
    walk = manifest["cv_f1"]["walk"]
    assert walk is not None and walk > 0.5  # walking is plain in the keypoints of the sample videos
    th = model.decision.thresholds
    assert th.shape == (11,) and ((th > 0) & (th < 1)).all()
    assert _digest(project) == before  # nothing the user had was touched
    # The sample videos are there: a quarter of their frames were looked at and offered as the vision group.
    assert manifest["look_fraction"] == 0.25 and manifest["frames_looked_at"] > 0
    assert model.decision.look_fraction == 0.25 and "vision" in model.decision.groups
    # Evenly spaced by default (the gate did not beat them: docs/benchmarks.md), as analyze will choose them.
    assert manifest["look_policy"] == "uniform" and model.decision.look_policy == "uniform"
    assert any(n.startswith("vision_") for n in model.decision.feature_names)
    # The labeled poses are kept (for a project lacking a bodypart: model/refit.py), unless asked not to.
    poses = model.decision.training_poses
    assert manifest["training_poses_kept"] is True and poses is not None and len(poses.records) == 2
    assert poses.bodyparts == list(model.decision.skeleton) and poses.records[0].keypoints.dtype == np.float32
    second = train(project / "config.yaml", progress=False, keep_poses=False, look=0)
    assert second != out and out.is_file() and second.is_file()  # never overwrites the first model
    keypoints_only = load_model(second)[0].decision
    assert keypoints_only.training_poses is None
    assert "vision" not in keypoints_only.groups and not keypoints_only.uses_vision  # look=0: no frame seen

    # analyze with it looks at top_k of the frames exactly when a behavior reads vision, else at none.
    from dlc_lookagain import analyze

    uses = model.decision.uses_vision
    assert uses == any("vision" in g for g in manifest["feature_groups"].values())
    for top_k in (0.25, 0.0):
        summaries = analyze(project / "config.yaml", model=out, top_k=top_k, progress=False, overwrite=True)
        assert summaries and not any(s.error for s in summaries)
        for s in summaries:
            expected = 0.25 if uses and top_k else 0.0
            assert s.looked_fraction == pytest.approx(expected, abs=0.01), (uses, top_k, s.looked_fraction)


def test_train_neural_decision_layer_still_available(project):
    out = train(project / "config.yaml", decision="neural", steps=15, gate_steps=10, finetune_steps=5,
                progress=False, name="neural")
    model, manifest = load_model(out)
    assert manifest["decision"] == "neural" and model.decision is None
    assert set(manifest["holdout_f1_all_frames"]) == set(model.config.behaviors)
    th = model.thresholds.numpy()
    assert th.shape == (5, 11) and ((th >= 0) & (th <= 1)).all()
    with pytest.raises(ValueError, match="boosted"):
        train(project / "config.yaml", decision="forest", progress=False)


def test_pretrain_on_project(project):
    out = pretrain(project / "config.yaml", steps=4, vision_fraction=0.05, progress=False)
    _, manifest = load_model(out)
    assert manifest["kind"] == "pretrained" and "masked" in manifest["final_losses"]


def test_train_without_labels_says_what_it_looked_for(tmp_path, sample_project):
    dst = tmp_path / "p"
    shutil.copytree(sample_project, dst)
    for f in (dst / "videos").glob("*label*"):
        f.unlink()
    with pytest.raises(FileNotFoundError, match="_labels.csv"):
        train(dst / "config.yaml", progress=False)


def test_label_file_of_a_dlc_pose_file_without_its_video(tmp_path):
    from dlc_lookagain.io import load_pose

    name = "sample_000DLC_dlcrnetms5_synthmiceMay06shuffle1_200000_el.h5"
    shutil.copy(SAMPLE / "videos" / name, tmp_path / name)
    shutil.copy(SAMPLE / "videos" / "sample_000_labels.csv", tmp_path / "sample_000_labels.csv")
    rec = load_pose(tmp_path / name, video=False)
    assert rec.video_path is None
    assert find_label_file(rec) == tmp_path / "sample_000_labels.csv"
