"""Where models live: the weights bundled in the package and a project's own model folder.

Kept apart from :mod:`dlc_lookagain.pipeline` (which finds the model ``analyze`` uses) and
:mod:`dlc_lookagain.project_training` (which saves the models ``train`` makes), so that neither
imports the other for these.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["BUNDLED_MODEL_NAME", "bundled_model_path", "load_default_model", "project_folder"]

BUNDLED_MODEL_NAME = "lookagain-generated.pt"


def bundled_model_path() -> Path:
    """Path of the weights shipped inside the package."""
    return Path(str(resources.files("dlc_lookagain.model").joinpath("weights", BUNDLED_MODEL_NAME)))


def load_default_model():
    """The bundled model ``(model, manifest)``; a clear error if the package lacks its weights."""
    from dlc_lookagain.model.lookagain import load_model

    path = bundled_model_path()
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: the bundled LookAgain weights are missing from this installation; reinstall "
            "dlc_lookagain or pass model=<path to a .pt model>")
    return load_model(path)


def project_folder(path: str | Path) -> Path:
    """Where models and caches go: the DLC project folder, or the folder of a single pose file."""
    path = Path(path).expanduser()
    if path.is_dir():
        return path
    return path.parent
