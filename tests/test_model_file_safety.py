"""A model file is data: it may not name code to load (issue 14, item 2).

A model dropped into ``<project>/lookagain/models/`` whose config names
``vision_encoder = "torchscript:/abs/path.pt"`` used to make ``analyze`` ``torch.jit.load`` that file.
Now only the caller may name a file-based backbone.
"""

from __future__ import annotations

import json
import shutil

import pytest

torch = pytest.importorskip("torch")

import dlc_lookagain  # noqa: E402
from dlc_lookagain.errors import PoseFormatError  # noqa: E402
from dlc_lookagain.model.lookagain import is_builtin_vision_encoder, load_model, save_model  # noqa: E402
from dlc_lookagain.model.vision import known_vision_encoders  # noqa: E402
from dlc_lookagain.project_training import bundled_model_path  # noqa: E402


@pytest.fixture
def hostile_model(tmp_path, sample_project):
    """A copy of the sample project with a behavior model that names a TorchScript file."""
    project = tmp_path / "sample_project"
    shutil.copytree(sample_project, project)
    script = tmp_path / "attacker.pt"
    torch.jit.save(torch.jit.script(torch.nn.Identity()), str(script))
    model, manifest = load_model(bundled_model_path())
    model.config.vision_encoder = f"torchscript:{script}"
    path = save_model(model, project / "lookagain" / "models" / "behavior.pt", extra={"kind": "behavior"})
    assert json.loads(path.with_name(path.name + ".manifest.json").read_text())["kind"] == "behavior"
    return project, path, script


def test_only_registry_backbones_count_as_builtin():
    assert is_builtin_vision_encoder("efficientnet-lite0")
    assert "torchscript" in known_vision_encoders()
    for spec in ("torchscript:/tmp/x.pt", "torchscript", "timm:resnet18:/tmp/ckpt", "hf:/tmp/model", "nonsense"):
        assert not is_builtin_vision_encoder(spec), spec


def test_analyze_refuses_a_model_file_that_names_a_torchscript_file(hostile_model, monkeypatch):
    project, path, script = hostile_model
    calls = []
    monkeypatch.setattr(torch.jit, "load", lambda *a, **k: calls.append(a) or pytest.fail("torch.jit.load ran"))
    before = {p: p.read_bytes() for p in project.rglob("*") if p.is_file()}
    with pytest.raises(PoseFormatError) as err:
        dlc_lookagain.analyze(project / "config.yaml", top_k=0.1, figures=False, progress=False)
    message = str(err.value)
    assert str(path) in message and "torchscript:" in message and "vision_encoder=" in message
    assert not calls
    assert {p: p.read_bytes() for p in project.rglob("*") if p.is_file()} == before  # nothing written


def test_the_caller_may_name_the_backbone(hostile_model):
    _, path, script = hostile_model
    model, _ = load_model(path)  # loads: keypoint-only analysis needs no vision
    assert model.refused_vision_encoder is not None
    trusted, _ = load_model(path, vision_encoder=f"torchscript:{script}")
    assert trusted.refused_vision_encoder is None and trusted.config.vision_encoder == f"torchscript:{script}"
