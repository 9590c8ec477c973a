"""The bundled model knows its domain: out of it, movement states instead of guessed behaviors."""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pytest

from dlc_lookagain.io.main import load_pose
from dlc_lookagain.model.domain import MOVEMENT_STATES, bundled_reference, domain_report, movement_states
from dlc_lookagain.pipeline import predict_recording
from dlc_lookagain.project_training import load_default_model

FLY = ["head", "thorax", "abdomen", "wingL", "wingR", "legL", "legR"]


@pytest.fixture(scope="module")
def sample_record(sample_project):
    pose = sorted((sample_project / "videos").glob("*.h5"))[0]
    return load_pose(pose, video=False)


def test_the_bundled_reference_ships():
    ref = bundled_reference()
    assert ref is not None and ref["recordings"] == 8
    assert set(ref["skeleton"]) >= {"nose", "tail_base"} and ref["speed_q50"][0] < ref["speed_q50"][1]


def test_generated_mice_are_in_domain_other_skeletons_are_not(sample_record):
    rec = sample_record
    assert domain_report(rec, 30.0).in_domain
    fly = dataclasses.replace(rec, bodyparts=FLY, skeleton=[])
    report = domain_report(fly, 30.0)
    assert not report.in_domain and "found by name" in report.reasons[0] and report.scores["name_match"] == 0
    # The same skeleton moving 20x faster (body lengths/s) is not the training data either.
    fast = dataclasses.replace(rec, fps=600.0)
    report = domain_report(fast, 600.0)
    assert not report.in_domain and any("speed" in r for r in report.reasons)


def test_movement_states_are_exclusive_and_cover_tracked_frames(sample_record):
    rec = sample_record
    kp = np.array(rec.keypoints, copy=True)
    kp[100:130, 0] = np.nan  # animal 0 not tracked for a second
    kp[50:55, 1] = np.nan  # and animal 1 for 5 frames: bridged for its speed, but no state there either
    kp[200:300, 0] = kp[200, 0]  # and perfectly still for 3 s
    rec = dataclasses.replace(rec, keypoints=kp)
    proba, present = movement_states(rec, 30.0)
    tracked = ~np.isnan(kp).all(axis=(2, 3))
    assert present.shape == proba.shape == (rec.n_frames, rec.n_individuals, 3)
    assert (present.sum(-1) == tracked).all()  # exactly one state per tracked animal-frame, none elsewhere
    assert np.isnan(proba[100:130, 0]).all() and np.isnan(proba[50:55, 1]).all()
    assert present[215:285, 0, MOVEMENT_STATES.index("still")].all()
    assert present[..., MOVEMENT_STATES.index("moving")].any()


def test_analyze_with_the_bundled_model_writes_movement_states_out_of_domain(sample_record, caplog):
    net, _ = load_default_model()
    assert net.kind == "bundled"
    fly = dataclasses.replace(sample_record, bodyparts=FLY, skeleton=[], video_path=None)
    with caplog.at_level(logging.WARNING):
        prediction, _ = predict_recording(fly, net, 0.0, progress=False, fps=30.0)
    assert prediction.behaviors == list(MOVEMENT_STATES)
    assert "unlike the generated mice" in caplog.text and "dlc-lookagain train" in caplog.text
    # In domain (the generated mice themselves), the bundled behaviors; forced, too.
    mouse = dataclasses.replace(sample_record, video_path=None)
    assert predict_recording(mouse, net, 0.0, progress=False, fps=30.0)[0].behaviors == list(net.config.behaviors)
    forced, _ = predict_recording(fly, net, 0.0, progress=False, fps=30.0, movement_states_out_of_domain=False)
    assert forced.behaviors == list(net.config.behaviors)


def test_real_recordings_are_out_of_domain(shared):
    """Every real project in ../shared differs from the generated mice; the bundled behaviors on
    them were measured to be meaningless (rest on 97 % of a real mouse's frames)."""
    for rel in ("behaviordepot/demo/demo1/demo1_tracking.csv",
                "rat_aggression/dlc_csv/1DLC_dlcrnetms5_DLC_ratJan24shuffle1_5000_el_filtered.csv"):
        rec = load_pose(shared / rel, video=False)
        assert not domain_report(rec, rec.fps or 30.0).in_domain, rel
