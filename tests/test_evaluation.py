"""evaluate: per-behavior scores and confusion matrix against a lab's labels."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

import dlc_lookagain
from dlc_lookagain.evaluation import score_predictions



def test_scores_of_known_predictions():
    truth = np.array([[1, 0], [1, 0], [0, 1], [0, 0], [1, 1]], bool)
    pred = np.array([[1, 0], [0, 0], [0, 1], [1, 0], [1, 0]], bool)
    probs = np.array([[0.9, 0.1], [0.2, 0.1], [0.1, 0.8], [0.7, 0.1], [0.9, 0.3]])
    per, confusion, macro = score_predictions(["groom", "rear"], pred, probs, truth)
    groom = per.set_index("behavior").loc["groom"]
    assert (groom.true_positives, groom.labeled_frames, groom.predicted_frames) == (2, 3, 3)
    assert groom.precision == pytest.approx(2 / 3) and groom.recall == pytest.approx(2 / 3)
    rear = per.set_index("behavior").loc["rear"]
    assert rear.f1 == pytest.approx(2 * 1 / (1 + 2))
    assert macro == pytest.approx((2 / 3 + 2 / 3) / 2)
    # Single-label view: row 4 has both labeled, groom predicted -> counted as groom/groom.
    assert confusion.loc["groom", "groom"] == 2 and confusion.loc["groom", "none"] == 1
    assert confusion.loc["rear", "rear"] == 1 and confusion.loc["none", "groom"] == 1
    assert confusion.to_numpy().sum() == len(truth)


def test_undefined_f1_is_nan_not_zero():
    per, _, macro = score_predictions(["a", "b"], np.zeros((3, 2), bool), np.zeros((3, 2)),
                                      np.array([[1, 0], [0, 0], [0, 0]], bool))
    assert per.f1.iloc[0] == 0.0 and np.isnan(per.f1.iloc[1])
    assert macro == 0.0


def test_evaluate_sample_project(tmp_path, sample_project, torch_one_thread):
    project = tmp_path / "p"
    shutil.copytree(sample_project, project)
    before = sorted(p.name for p in (project / "videos").iterdir())
    report = dlc_lookagain.evaluate(project / "config.yaml", top_k=0.1, progress=False)
    assert len(report.recordings) == 2
    per = report.per_behavior
    assert {"behavior", "precision", "recall", "f1"} <= set(per.columns) and len(per) > 3
    annotated = sum(r["annotated_animal_frames"] for r in report.recordings)
    assert report.confusion.to_numpy().sum() == annotated
    assert 0.0 <= report.macro_f1 <= 1.0
    # Scores written under the project's lookagain folder, nothing beside the poses.
    assert sorted(p.name for p in (project / "videos").iterdir()) == before
    saved = pd.read_csv(report.paths["per_behavior"])
    assert list(saved.behavior) == list(per.behavior)
    summary = json.loads(report.paths["summary"].read_text())
    assert summary["top_k"] == 0.1 and summary["macro_f1"] == pytest.approx(report.macro_f1)
    assert "macro F1" in str(report)


def test_evaluate_without_labels_says_where_it_looked(tmp_path, sample_project):
    project = tmp_path / "p"
    shutil.copytree(sample_project, project)
    for f in project.glob("videos/*label*"):
        f.unlink()
    with pytest.raises(FileNotFoundError, match="_labels.csv"):
        dlc_lookagain.evaluate(project / "config.yaml", progress=False)


def test_evaluate_names_what_it_scored(tmp_path, sample_project, caplog, torch_one_thread):
    """Issue 14: keypoint-only scores were filed as top25, and a recording the model was trained on
    (here: a copy of the project it was trained in) was scored without a word."""
    import logging

    from dlc_lookagain.evaluation import trained_on
    from dlc_lookagain.io.ledger import file_sha256
    from dlc_lookagain.model.lookagain import save_model
    from dlc_lookagain.project_training import load_default_model

    project = tmp_path / "copy"
    shutil.copytree(sample_project, project)
    original = sample_project / "videos" / "sample_000_labels.csv"
    net, _ = load_default_model()
    model = save_model(net, tmp_path / "mine.pt", extra={
        "kind": "behavior", "label_files": [str(original)], "label_sha256": [file_sha256(original)]})
    copied = project / "videos" / "sample_000_labels.csv"
    assert trained_on(copied, {"label_sha256": [file_sha256(original)]})
    assert not trained_on(project / "videos" / "sample_001_labels.csv", {"label_files": [str(original)]})
    with caplog.at_level(logging.WARNING, logger="dlc_lookagain"):
        report = dlc_lookagain.evaluate(project / "config.yaml", model=model, top_k=0.0, progress=False)
    warned = [r.getMessage() for r in caplog.records if "was trained on this recording" in r.getMessage()]
    assert len(warned) == 1 and warned[0].startswith("sample_000DLC") and "mine.pt" in warned[0]
    assert report.paths["summary"].name == "mine_keypoints.json"
    assert json.loads(report.paths["summary"].read_text())["keypoints_only"] is True
