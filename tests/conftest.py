"""Shared test fixtures.

Tests that read the public data in ``../shared/data`` (beside the repository root)
use the ``shared`` fixture, which skips them with a clear reason when the folder is
absent; set ``DLC_LOOKAGAIN_SHARED`` to point elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE_PROJECT = REPO_ROOT / "sample_project"
SHARED_DATA = Path(os.environ.get("DLC_LOOKAGAIN_SHARED", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared() -> Path:
    """Path of ``../shared/data``; skips the test when it is not there."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"public test data not found at {SHARED_DATA} (set DLC_LOOKAGAIN_SHARED)")
    return SHARED_DATA


@pytest.fixture
def torch_one_thread():
    """One torch thread: keeps a shared 2-core machine usable and model numbers reproducible."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _analyze_outputs(folder: str, names: list[str]) -> set[str]:
    """``shutil.copytree`` ignore: what ``analyze`` wrote beside the pose files of ``folder``."""
    from dlc_lookagain.io.annotations import extra_output_paths, output_paths_for

    written = {"lookagain"}
    for name in names:
        if Path(name).suffix.lower() in (".h5", ".csv", ".slp"):
            pose = Path(folder) / name
            written |= {p.name for p in output_paths_for(pose).values()}
            written |= {p.name for p in extra_output_paths(pose).values()}
    return written & set(names)


@pytest.fixture(scope="session")
def sample_project(tmp_path_factory) -> Path:
    """The repository's sample project as committed, without what running the README's
    ``dlc-lookagain analyze sample_project/config.yaml`` wrote into it (outputs, models, caches).

    Tests copy this, never the working-tree folder itself, so they pass before and after a user
    ran the main job in the same clone.
    """
    import shutil

    dest = tmp_path_factory.mktemp("sample") / "sample_project"
    shutil.copytree(SAMPLE_PROJECT, dest, ignore=_analyze_outputs)
    return dest


#: The DLC output name of the sample project's videos (``sample_00<k><STEM>.h5``).
SAMPLE_STEM = "DLC_dlcrnetms5_synthmiceMay06shuffle1_200000_el"


@pytest.fixture
def project(tmp_path, sample_project) -> Path:
    """A fresh copy of the sample project for one test (``tmp_path/project``)."""
    import shutil

    dest = tmp_path / "project"
    shutil.copytree(sample_project, dest)
    return dest
