"""Exceptions raised by dlc_lookagain."""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
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


_COMMAND_LINE: ContextVar[bool] = ContextVar("dlc_lookagain_command_line", default=False)


def in_command_line() -> bool:
    """True inside :func:`command_line` (a ``dlc-lookagain`` command is running)."""
    return _COMMAND_LINE.get()


@contextmanager
def command_line(on: bool = True):
    """Within this block, messages give options as command-line flags (see :func:`option_text`).

    ``on=False`` leaves them as Python keywords (a worker told how its caller was started).
    """
    token = _COMMAND_LINE.set(bool(on))
    try:
        yield
    finally:
        _COMMAND_LINE.reset(token)


def option_text(name: str, value=None) -> str:
    """An option as the user gives it: ``--name value`` on the command line, ``name=value`` in Python.

    Parameters
    ----------
    name : str
        The Python keyword (``"overwrite"``, ``"destfolder"``); its flag has dashes for underscores.
    value : object, optional
        The value to show: ``True`` for a switch (``--overwrite`` / ``overwrite=True``); None shows
        none (``--destfolder`` / ``destfolder=``).

    Returns
    -------
    str
        The command-line form inside :func:`command_line` (set by ``dlc-lookagain``), else the
        Python form.
    """
    if _COMMAND_LINE.get():
        flag = "--" + name.replace("_", "-")
        return flag if value is None or value is True else f"{flag} {value}"
    return f"{name}=" + ("" if value is None else repr(value))
