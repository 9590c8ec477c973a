"""DeepLabCut project discovery: the config, its videos, and their analyzed outputs.

The user's ``config.yaml`` is only ever read (with PyYAML, so ``deeplabcut`` need
not be installed). Projects get moved between machines, so every stored path is
treated as a hint: when it does not exist we look for the same file relative to
the config's own folder (see :func:`dlc_lookagain.io.paths.resolve_moved_path`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from dlc_lookagain.errors import PoseFormatError
from dlc_lookagain.io.dlc import choose_dlc_output, parse_dlc_output_name
from dlc_lookagain.io.paths import VIDEO_EXTENSIONS, absolute_path, resolve_moved_path

logger = logging.getLogger(__name__)

#: What DeepLabCut's demo configs hold until its demo code rewrites them.
_PLACEHOLDER = "WILL BE AUTOMATICALLY UPDATED"


@dataclass
class DLCProject:
    """What dlc_lookagain needs from a DeepLabCut ``config.yaml``.

    Attributes
    ----------
    config_path : Path
        The config file that was read.
    project_dir : Path
        The folder the project really lives in (the config's folder; the stored
        ``project_path`` may point to another machine).
    task, scorer : str
        DLC ``Task`` and ``scorer``.
    multianimal : bool
        ``multianimalproject``.
    individuals : list of str
        Animal names of a multi-animal project (empty for single-animal).
    bodyparts : list of str
        Single-animal bodyparts, or the multi-animal ones of a maDLC project.
    unique_bodyparts : list of str
        maDLC ``uniquebodyparts`` (written under the individual ``single``).
    skeleton : list of tuple of str
        Bodypart pairs from ``skeleton``.
    videos : list of Path
        Existing video files of the project, resolved.
    crops : dict
        ``{video path: (x1, x2, y1, y2)}`` from ``video_sets``: the frame size the
        poses were estimated in.
    missing_videos : list of str
        ``video_sets`` entries that could not be found anywhere.
    """

    config_path: Path
    project_dir: Path
    task: str
    scorer: str
    multianimal: bool
    individuals: list[str] = field(default_factory=list)
    bodyparts: list[str] = field(default_factory=list)
    unique_bodyparts: list[str] = field(default_factory=list)
    skeleton: list[tuple[str, str]] = field(default_factory=list)
    videos: list[Path] = field(default_factory=list)
    crops: dict[Path, tuple[int, int, int, int]] = field(default_factory=dict)
    missing_videos: list[str] = field(default_factory=list)


def _as_name_list(value, key: str, config_path: Path) -> list[str]:
    if value is None or value == "MULTI!":
        return []
    if not isinstance(value, list):
        raise PoseFormatError(config_path, f"'{key}' must be a list of names, got {value!r}")
    return [str(v) for v in value]


def _parse_crop(crop, video: str, config_path: Path) -> tuple[int, int, int, int] | None:
    if crop is None:
        return None
    try:
        x1, x2, y1, y2 = (int(float(v)) for v in str(crop).replace("[", "").replace("]", "").split(","))
    except ValueError:
        logger.warning("%s: video_sets crop %r of %s is not 'x1, x2, y1, y2'; ignored", config_path, crop, video)
        return None
    return x1, x2, y1, y2


def read_dlc_config(config_path: str | Path) -> DLCProject:
    """Read a DeepLabCut project's ``config.yaml`` without modifying it.

    Parameters
    ----------
    config_path : str or Path
        Path of the project's ``config.yaml``.

    Returns
    -------
    DLCProject
        Names, skeleton and resolved videos of the project.

    Raises
    ------
    PoseFormatError
        If the file is missing, is not YAML, or lacks the keys every DLC config has.
    """
    config_path = Path(config_path).expanduser()
    if config_path.is_dir():
        config_path = config_path / "config.yaml"
    if not config_path.is_file():
        raise PoseFormatError(config_path, "DeepLabCut config.yaml not found")
    try:
        with open(config_path, encoding="utf-8") as fh:
            cfg = yaml.safe_load(fh)
    except (OSError, UnicodeDecodeError) as exc:
        raise PoseFormatError(config_path, f"cannot read the config: {exc}") from exc
    except yaml.YAMLError as exc:
        raise PoseFormatError(config_path, f"not valid YAML: {exc}") from exc
    if not isinstance(cfg, dict) or "Task" not in cfg or "bodyparts" not in cfg:
        raise PoseFormatError(config_path, "not a DeepLabCut project config (needs at least 'Task' and 'bodyparts')")

    project_dir = absolute_path(config_path).parent
    stored_dir = str(cfg.get("project_path") or "")
    if stored_dir and _PLACEHOLDER not in stored_dir and Path(stored_dir) != project_dir:
        logger.info("%s: project_path %s differs from the config's folder; using %s", config_path, stored_dir, project_dir)

    multianimal = bool(cfg.get("multianimalproject") or False)
    if multianimal:
        bodyparts = _as_name_list(cfg.get("multianimalbodyparts"), "multianimalbodyparts", config_path)
        individuals = _as_name_list(cfg.get("individuals"), "individuals", config_path)
        unique = _as_name_list(cfg.get("uniquebodyparts"), "uniquebodyparts", config_path)
    else:
        bodyparts = _as_name_list(cfg.get("bodyparts"), "bodyparts", config_path)
        individuals, unique = [], []
    if not bodyparts and not unique:
        raise PoseFormatError(config_path, "the config lists no bodyparts")

    skeleton = []
    for edge in cfg.get("skeleton") or []:
        if isinstance(edge, (list, tuple)) and len(edge) == 2:
            skeleton.append((str(edge[0]), str(edge[1])))

    videos: list[Path] = []
    crops: dict[Path, tuple[int, int, int, int]] = {}
    missing: list[str] = []
    video_sets = cfg.get("video_sets") or {}
    if not isinstance(video_sets, dict):
        raise PoseFormatError(config_path, f"'video_sets' must be a mapping of video paths, got {type(video_sets).__name__}")
    placeholder_crop = None
    for stored, settings in video_sets.items():
        stored = str(stored)
        if _PLACEHOLDER in stored:
            # DLC's demo code later writes the real video path here; the crop is already right.
            placeholder_crop = _parse_crop((settings or {}).get("crop"), stored, config_path)
            continue
        # A copied project still lists the original's absolute paths, which may exist too:
        # resolve_moved_path prefers the copy in this project's own videos/ folder.
        found = resolve_moved_path(stored, project_dir / "videos", project_dir)
        if found is None:
            missing.append(stored)
            continue
        if found not in videos:
            videos.append(found)
            crop = _parse_crop((settings or {}).get("crop"), stored, config_path)
            if crop is not None:
                crops[found] = crop
    if missing:
        logger.warning(
            "%s: %d video(s) listed in video_sets were not found (also looked in %s): %s",
            config_path, len(missing), project_dir / "videos", ", ".join(missing),
        )
    # Stale or placeholder video_sets: the project's own videos/ folder is the truth.
    videos_dir = project_dir / "videos"
    if videos_dir.is_dir():
        for video in list_videos(videos_dir):
            if video not in videos:
                if video_sets and not missing:
                    logger.info("%s: %s is in videos/ but not in video_sets; including it", config_path, video.name)
                videos.append(video)
                if placeholder_crop is not None:
                    crops[video] = placeholder_crop

    return DLCProject(
        config_path=config_path,
        project_dir=project_dir,
        task=str(cfg.get("Task")),
        scorer=str(cfg.get("scorer", "")),
        multianimal=multianimal,
        individuals=individuals,
        bodyparts=bodyparts,
        unique_bodyparts=unique,
        skeleton=skeleton,
        videos=videos,
        crops=crops,
        missing_videos=missing,
    )


def list_videos(folder: Path, videotype: str = "") -> list[Path]:
    """Video files directly in ``folder``, sorted by name.

    ``videotype`` (``".mp4"`` or ``"mp4"``) restricts the extension, as in DLC;
    labeled videos DLC made (``*_labeled.mp4``) are skipped.
    """
    exts = (("." + videotype.lstrip(".")).lower(),) if videotype else VIDEO_EXTENSIONS
    try:
        entries = sorted(folder.iterdir())
    except OSError as exc:
        raise PoseFormatError(folder, f"cannot list the folder: {exc}") from exc
    return [
        p for p in entries
        if p.is_file() and p.suffix.lower() in exts and not p.stem.endswith(("_labeled", "_id_labeled"))
    ]


def find_dlc_outputs(video: str | Path, destfolder: str | Path | None = None) -> list[Path]:
    """All analyzed DLC pose files (.h5/.csv) of one video.

    Looks in ``destfolder`` if given, else beside the video, for files named
    ``<video stem>DLC_*`` or ``<video stem>DeepCut_*`` (see
    :func:`dlc_lookagain.io.dlc.parse_dlc_output_name`).
    """
    video = Path(video)
    folder = Path(destfolder) if destfolder is not None else video.parent
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.glob(f"{_glob_escape(video.stem)}*")):
        if path.suffix.lower() not in (".h5", ".csv"):
            continue
        parsed = parse_dlc_output_name(path)
        if parsed is not None and parsed.video_stem == video.stem:
            found.append(path)
    return found


def _glob_escape(text: str) -> str:
    return "".join(f"[{c}]" if c in "*?[]" else c for c in text)


@dataclass
class AnalyzedVideo:
    """One video of a project and the pose file chosen for it.

    ``pose_file`` is None for a video not analyzed yet; ``video`` is None for an
    analyzed output whose video is gone (listed in the config but not found):
    such a recording is still usable in keypoints-only mode.
    """

    name: str
    video: Path | None
    pose_file: Path | None
    candidates: list[Path]
    crop: tuple[int, int, int, int] | None = None


def find_analyzed_videos(
    project: DLCProject,
    videos: list[str | Path] | None = None,
    *,
    videotype: str = "",
    destfolder: str | Path | None = None,
    shuffle: int | None = None,
    filtered: bool | None = None,
    track_method: str | None = None,
) -> list[AnalyzedVideo]:
    """Pair each video of a project with its analyzed pose file.

    Parameters
    ----------
    project : DLCProject
        From :func:`read_dlc_config`.
    videos : list of path, optional
        Videos or folders of videos to use instead of the project's.
    videotype : str
        Only videos with this extension (``"mp4"``), as in DeepLabCut.
    destfolder : path, optional
        Where DLC wrote the analyzed outputs, if not beside the videos.
    shuffle, filtered, track_method
        Which output to take when a video has several (see
        :func:`dlc_lookagain.io.dlc.choose_dlc_output`).

    Returns
    -------
    list of AnalyzedVideo
        In project order; ``pose_file`` is None for videos not analyzed yet.
    """
    if videos is None:
        chosen = [v for v in project.videos if not videotype or v.suffix.lower() == "." + videotype.lstrip(".").lower()]
    else:
        chosen = []
        for item in ([videos] if isinstance(videos, (str, Path)) else videos):
            item = Path(item).expanduser()
            if item.is_dir():
                chosen.extend(list_videos(item, videotype))
            elif item.is_file():
                chosen.append(absolute_path(item))
            else:
                found = resolve_moved_path(str(item), project.project_dir / "videos", project.project_dir)
                if found is None:
                    raise PoseFormatError(item, "video not found")
                chosen.append(found)
    def pick(candidates):
        if not candidates:
            return None
        return choose_dlc_output(candidates, shuffle=shuffle, filtered=filtered, track_method=track_method)

    own = project.project_dir / "videos"
    result = []
    for video in chosen:
        candidates = find_dlc_outputs(video, destfolder)
        if destfolder is None and video.parent != own:
            # A video outside this project (a copy of a project whose videos stayed at the stored
            # paths, say): outputs inside the project win, so that the project the user pointed at
            # is the one read and written, never the original beside the video.
            local = find_dlc_outputs(own / video.name, own)
            if local:
                if candidates:
                    logger.info("%s: using the DLC outputs in %s, not those beside the video", video.name, own)
                candidates = local
        result.append(AnalyzedVideo(
            name=video.name, video=video, pose_file=pick(candidates), candidates=candidates,
            crop=project.crops.get(video),
        ))
    if videos is None:
        # Videos listed in the config but gone (moved to an archive, say) may still
        # have their DLC outputs in the project: analyze those from keypoints alone.
        folder = Path(destfolder) if destfolder is not None else project.project_dir / "videos"
        for stored in project.missing_videos:
            missing = Path(stored.replace("\\", "/"))
            candidates = find_dlc_outputs(folder / missing.name, folder)
            if candidates and not any(r.video and r.video.stem == missing.stem for r in result):
                logger.warning("%s: video not found; its DLC output will be used without video", missing.name)
                result.append(AnalyzedVideo(name=missing.name, video=None, pose_file=pick(candidates),
                                            candidates=candidates))
    return result
