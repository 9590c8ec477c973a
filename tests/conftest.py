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
