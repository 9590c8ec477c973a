"""Exceptions raised by dlc_lookagain."""

from __future__ import annotations

from pathlib import Path


class PoseFormatError(ValueError):
    """A pose, project, label or video file cannot be read or is inconsistent.

    The message always names the offending file first, then the problem, so that
    a biologist reading a log line knows which file to look at.

    Parameters
    ----------
    path : str or Path or None
        The file (or folder) that could not be used.
    problem : str
        What is wrong with it, in plain words (and, where possible, what to do).
    """

    def __init__(self, path: str | Path | None, problem: str):
        self.path = Path(path) if path is not None else None
        self.problem = problem
        where = f"{self.path}: " if self.path is not None else ""
        super().__init__(f"{where}{problem}")

    def __reduce__(self):  # keep picklable (dask workers send errors back)
        return (type(self), (self.path, self.problem))


class VideoMismatchError(PoseFormatError):
    """Pose and video disagree (frame count beyond tolerance, fps, or frame size)."""
