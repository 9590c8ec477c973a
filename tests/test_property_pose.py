"""Random valid-but-strange DeepLabCut pose tables through the reader and the keypoint-only model path.

Issue 14 ("keep it fixed"): whatever the shape (1-4 animals, 1-40 bodyparts, 1-5 frames), the NaN
pattern (none, all, whole animals, whole frames, scattered) or the columns (with or without
likelihood, single- or multi-animal header), a table DeepLabCut could have written gives one row per
frame and animal with probabilities in [0, 1] (NaN where the animal is not tracked), or a
:class:`~dlc_lookagain.errors.PoseFormatError` that names the file. Nothing else may escape.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from dlc_lookagain.errors import PoseFormatError
from dlc_lookagain.io.annotations import behaviors_table, bouts_table
from dlc_lookagain.io.main import load_pose
from dlc_lookagain.pipeline import predict_recording

#: Characters of names a lab might use (spaces, dots, commas, accents, digits).
NAME_CHARS = "abcXYZ019 _-.,é"
NAN_PATTERNS = ("none", "all", "animal", "frame", "scattered")


@pytest.fixture(scope="module")
def bundled():
    import torch

    from dlc_lookagain.project_training import load_default_model

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield load_default_model()[0]
    torch.set_num_threads(threads)


def _names(prefix: str, n: int):
    """``n`` distinct names: strange but not blank, no leading/trailing spaces."""
    name = st.text(NAME_CHARS, min_size=1, max_size=8).map(str.strip).filter(bool)
    return st.lists(name, min_size=n, max_size=n, unique=True)


@st.composite
def pose_tables(draw):
    """``(table, n_frames, animals)``: a DLC pose table as pandas would write it to csv."""
    n_animals = draw(st.integers(1, 4))
    n_parts = draw(st.integers(1, 40))
    n_frames = draw(st.integers(1, 5))
    parts = draw(_names("bp", n_parts))
    multi = n_animals > 1 or draw(st.booleans())
    animals = draw(_names("id", n_animals)) if multi else ["individual0"]
    coords = ["x", "y", "likelihood"] if draw(st.booleans()) else ["x", "y"]
    levels = [("scorer", ["DLC_resnet50_strangeJan1shuffle1_1000"])]
    levels += [("individuals", animals)] if multi else []
    levels += [("bodyparts", parts), ("coords", coords)]
    columns = pd.MultiIndex.from_product([v for _, v in levels], names=[k for k, _ in levels])
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    scale = draw(st.sampled_from([1.0, 1e-3, 1e4]))  # sub-pixel, ordinary, huge coordinates
    values = rng.uniform(-0.1, 1.0, (n_frames, len(columns))) * scale
    shape = (n_frames, n_animals, n_parts)
    missing = _nan_mask(draw(st.sampled_from(NAN_PATTERNS)), shape, rng)
    values = values.reshape(n_frames, n_animals, n_parts, len(coords))
    values[..., 2:] = rng.uniform(0, 1, values[..., 2:].shape)  # likelihood in [0, 1]
    values[missing] = np.nan
    table = pd.DataFrame(values.reshape(n_frames, -1), columns=columns)
    return table, n_frames, animals


def _nan_mask(pattern: str, shape, rng) -> np.ndarray:
    """Which (frame, animal, bodypart) keypoints are missing."""
    mask = np.zeros(shape, bool)
    if pattern == "all":
        mask[:] = True
    elif pattern == "animal":
        mask[:, rng.integers(shape[1])] = True
    elif pattern == "frame":
        mask[rng.integers(shape[0])] = True
    elif pattern == "scattered":
        mask = rng.random(shape) < 0.5
    return mask


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=pose_tables(), out_of_domain_states=st.booleans())
def test_strange_pose_tables_give_one_row_per_frame_and_animal(bundled, data, out_of_domain_states):
    table, n_frames, animals = data
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "strangeDLC_resnet50_strangeJan1shuffle1_1000.csv"
        table.to_csv(path)
        try:
            rec = load_pose(path, video=False)
        except PoseFormatError as exc:  # a documented refusal must name the file
            assert str(exc).startswith(str(path)), exc
            event(f"refused: {exc.problem[:40]}")
            return
        event(f"read: {'movement states' if out_of_domain_states else 'bundled behaviors'} allowed")
        assert rec.n_frames == n_frames and rec.individuals == animals
        prediction, _ = predict_recording(rec, bundled, 0.0, fps=30.0, progress=False,
                                          movement_states_out_of_domain=out_of_domain_states)
        rows = behaviors_table(rec, prediction)
        bouts_table(rec, prediction)
    assert len(rows) == n_frames * len(animals)
    assert (rows.groupby("frame")["individual"].apply(list) == [animals] * n_frames).all()
    probs = rows.filter(like="p_").to_numpy(np.float64)
    assert probs.shape[1] == len(prediction.behaviors) > 0
    finite = probs[~np.isnan(probs)]
    assert ((finite >= 0) & (finite <= 1)).all()
    # An animal with no keypoint in a frame does nothing there: NaN probabilities, label 'none'.
    # (The model also leaves out animals with too few keypoints: pose_tokens.tokenize's min_keypoints.)
    absent = np.isnan(rec.keypoints[..., 0]).all(axis=2).reshape(-1)
    assert np.isnan(probs[absent]).all()
    assert (rows.loc[absent, "label"] == "none").all()
    assert (rows.loc[np.isnan(probs).all(axis=1), "label"] == "none").all()
