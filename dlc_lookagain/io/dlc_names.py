"""DeepLabCut output file names: what scorer, network, shuffle, iteration and tracker made a file,
and which of several outputs for one video to read (:func:`choose_dlc_output`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


from dlc_lookagain.errors import PoseFormatError

logger = logging.getLogger("dlc_lookagain.io.dlc")  # one logger for the DLC reader, as before the split

#: maDLC tracker suffixes, best first (``el`` = ellipse tracker, DLC's default;
#: ``tr`` = transformer re-ID; ``ctd`` = conditional top-down; ``bx`` = box; ``sk`` = skeleton).
TRACK_METHOD_PREFERENCE = ("el", "tr", "ctd", "bx", "sk")
#: File suffixes of DLC's HDF5 tables.
H5_SUFFIXES = (".h5", ".hdf5")

__all__ = ["DLCOutputName", "TRACK_METHOD_PREFERENCE", "choose_dlc_output", "parse_dlc_output_name"]


# TF network names in DLC scorers may contain "_" (effnet_b0, mobnet_100), so they are listed
# before the generic form, which covers resnet50, dlcrnetms5 and PyTorch names (Resnet50, HrnetW32).
_NETWORK = r"(?:effnet_b[0-9]+|mobnet_[0-9]+|resnet_[0-9]+|[A-Za-z][A-Za-z0-9]*)"
_SCORER_AND_SUFFIX_RE = re.compile(
    r"(?P<scorer>"
    r"(?P<prefix>DLC|DeepCut)_(?P<network>" + _NETWORK + r")_"
    r"(?P<task_date>.+)shuffle(?P<shuffle>[0-9]+)_"  # greedy: a task may itself contain "shuffle"
    r"(?:"
    r"(?:detector_(?:best-)?(?P<detector>[0-9]+)_)?snapshot_(?:best-)?(?P<snapshot>[0-9]+)"
    r"|(?P<iteration>[0-9]+)"
    r")"
    r")"
    r"(?:_(?P<track>" + "|".join(TRACK_METHOD_PREFERENCE) + r"))?"
    r"(?P<filtered>_filtered)?"
    r"(?P<suffix>\.(?:h5|csv))"
)
_SCORER_START_RE = re.compile(r"(?:DLC|DeepCut)_")


@dataclass(frozen=True)
class DLCOutputName:
    """What a DeepLabCut pose-output file name says about the file.

    DLC names its output ``<video stem><scorer>[_<track>][_filtered].<h5|csv>``,
    with scorer ``DLC_<network>_<task><date>shuffle<N>_<iterations>`` (TensorFlow),
    ``DLC_<Network>_<task><date>shuffle<N>[_detector_<d>]_snapshot_<s>`` (PyTorch,
    DLC 3) or ``DeepCut_...`` (DLC 1.x / early 2.x).

    Attributes
    ----------
    video_stem : str
        The analyzed video's file stem (everything before the scorer).
    scorer : str
        Network/scorer name, e.g. ``DLC_resnet50_openfieldOct30shuffle1_6000``.
    legacy : bool
        True for the old ``DeepCut_`` prefix.
    network : str
        Network as written in the scorer (``resnet50``, ``effnet_b0``, ``HrnetW32``).
    task_date : str
        Project task and date, e.g. ``openfieldOct30``.
    shuffle : int
        Training shuffle.
    iteration : int or None
        TensorFlow training iterations; None for PyTorch models.
    snapshot : int or None
        PyTorch pose-model snapshot (``snapshot_<n>``); None for TensorFlow models.
    detector_snapshot : int or None
        PyTorch detector snapshot of top-down models (``_detector_<d>_snapshot_<s>``).
    track_method : str or None
        maDLC tracker suffix (``el``, ``bx``, ``sk``, ``ctd``, ``tr``), None when absent.
    filtered : bool
        True for ``_filtered`` output (``deeplabcut.filterpredictions``).
    suffix : str
        ``.h5`` or ``.csv``.
    """

    video_stem: str
    scorer: str
    legacy: bool
    network: str
    task_date: str
    shuffle: int
    iteration: int | None
    snapshot: int | None
    detector_snapshot: int | None
    track_method: str | None
    filtered: bool
    suffix: str

    @property
    def engine(self) -> str:
        """``"pytorch"`` for DLC 3 snapshot names, else ``"tensorflow"``."""
        return "pytorch" if self.snapshot is not None else "tensorflow"

    @property
    def training_amount(self) -> int:
        """PyTorch snapshot epoch or TensorFlow iteration count (comparable within one engine only)."""
        return self.snapshot if self.snapshot is not None else int(self.iteration or 0)

    @property
    def meta_pickle_name(self) -> str:
        """Name of DLC's ``_meta.pickle`` for this output (it carries no track/filter suffix)."""
        return f"{self.video_stem}{self.scorer}_meta.pickle"


def parse_dlc_output_name(path: str | Path) -> DLCOutputName | None:
    """Parse a DeepLabCut pose-output file name.

    The scorer is searched from the LAST ``DLC_``/``DeepCut_`` backwards, and the first
    position that yields a complete, valid name wins, so a video whose own name contains
    ``DLC_`` keeps it in ``video_stem``.

    Parameters
    ----------
    path : str or Path
        File path or bare file name.

    Returns
    -------
    DLCOutputName or None
        None when the name is not a DLC pose table: DLC's pickles (``_meta``, ``_full``,
        ``_assemblies``, ``_el.pickle``), ``_skeleton.csv``, labeled videos, our own
        ``*_behaviors.csv``/``*_bouts.csv``, or any name without a DLC scorer.
    """
    name = Path(path).name
    starts = [m.start() for m in _SCORER_START_RE.finditer(name)]
    for start in reversed(starts):
        if start == 0:  # no video stem: not an analyzed-video output name
            continue
        match = _SCORER_AND_SUFFIX_RE.fullmatch(name, start)
        if match is None:
            continue
        groups = match.groupdict()
        return DLCOutputName(
            video_stem=name[:start],
            scorer=groups["scorer"],
            legacy=groups["prefix"] == "DeepCut",
            network=groups["network"],
            task_date=groups["task_date"],
            shuffle=int(groups["shuffle"]),
            iteration=int(groups["iteration"]) if groups["iteration"] is not None else None,
            snapshot=int(groups["snapshot"]) if groups["snapshot"] is not None else None,
            detector_snapshot=int(groups["detector"]) if groups["detector"] is not None else None,
            track_method=groups["track"],
            filtered=groups["filtered"] is not None,
            suffix=groups["suffix"],
        )
    return None


def _describe_candidate(path: Path, parsed: DLCOutputName) -> str:
    model = f"snapshot {parsed.snapshot}" if parsed.snapshot is not None else f"iteration {parsed.iteration}"
    return (
        f"{path.name} (shuffle={parsed.shuffle}, {model}, track_method={parsed.track_method or 'none'}, "
        f"filtered={parsed.filtered})"
    )


def choose_dlc_output(
    candidates: Iterable[str | Path],
    *,
    shuffle: int | None = None,
    filtered: bool | None = None,
    track_method: str | None = None,
) -> Path:
    """Pick the one DLC pose file to use among the outputs for ONE video.

    Rule (applied in this order; each step keeps only the best candidates):

    1. Only names that :func:`parse_dlc_output_name` recognises count (pickles, labeled
       videos, skeleton and our own outputs are ignored). If none is recognised but
       exactly one ``.h5``/``.csv`` file is given (e.g. a renamed DLC table), that file
       is returned.
    2. Explicit choices are hard filters: ``shuffle``, ``filtered`` and ``track_method``
       (``"none"`` selects outputs without a tracker suffix). If nothing is left,
       :class:`PoseFormatError` lists what exists.
    3. Filtered output beats unfiltered.
    4. Track method, in the order ``el``, ``tr``, ``ctd``, ``bx``, ``sk``, then none
       (stitched tracks beat raw detections).
    5. ``.h5`` beats ``.csv`` (same data; HDF5 is DLC's primary output).
    6. The most-trained model (highest PyTorch snapshot or TensorFlow iteration). This
       step is skipped when the remaining candidates mix engines, because epochs and
       iterations are not comparable.
    7. The lowest shuffle.
    8. If several remain (different models of equal rank, e.g. two networks trained
       under the same shuffle number in different projects), the lexicographically first
       file name is chosen and a WARNING names all of them, what differs, and how to pick.

    The choice depends only on the names, never on modification times. The chosen file
    and the passed-over ones are logged at INFO.

    Parameters
    ----------
    candidates : iterable of str or Path
        Files found for one video.
    shuffle : int, optional
        Use only this training shuffle.
    filtered : bool, optional
        Use only filtered (True) or only unfiltered (False) output.
    track_method : str, optional
        Use only this maDLC tracker (``el``, ``tr``, ``ctd``, ``bx``, ``sk``) or ``"none"``.

    Returns
    -------
    Path
        The chosen file.

    Raises
    ------
    PoseFormatError
        No candidate, or none left after the explicit filters.
    ValueError
        Unknown ``track_method``.
    """
    paths = sorted({Path(c) for c in candidates}, key=lambda p: (p.name, str(p)))
    if track_method is not None and track_method != "none" and track_method not in TRACK_METHOD_PREFERENCE:
        raise ValueError(
            f"track_method must be one of {', '.join(TRACK_METHOD_PREFERENCE)} or 'none', "
            f"got {track_method!r}"
        )
    where = paths[0].parent if paths else None
    if not paths:
        raise PoseFormatError(where, "no DeepLabCut output files to choose from")

    parsed = {p: parse_dlc_output_name(p) for p in paths}
    pool = [p for p in paths if parsed[p] is not None]
    explicit = {"shuffle": shuffle, "filtered": filtered, "track_method": track_method}
    if not pool:
        tables = [p for p in paths if p.suffix.lower() in (".csv", *H5_SUFFIXES)]
        # A renamed table cannot be checked against explicit choices, so it is only a fallback.
        if len(tables) == 1 and all(v is None for v in explicit.values()):
            logger.info("Using %s: the only pose table (its name is not a standard DLC output name)",
                        tables[0])
            return tables[0]
        raise PoseFormatError(
            where,
            "none of these files is a recognisable DeepLabCut output "
            f"(<video><scorer>[_el][_filtered].h5/.csv): {', '.join(p.name for p in paths)}",
        )

    selected = [
        p
        for p in pool
        if (shuffle is None or parsed[p].shuffle == shuffle)
        and (filtered is None or parsed[p].filtered == bool(filtered))
        and (
            track_method is None
            or (parsed[p].track_method or "none") == track_method
        )
    ]
    if not selected:
        asked = ", ".join(f"{k}={v!r}" for k, v in explicit.items() if v is not None)
        existing = "; ".join(_describe_candidate(p, parsed[p]) for p in pool)
        raise PoseFormatError(where, f"no DeepLabCut output matches {asked}. Available: {existing}")

    def keep_best(items: list[Path], rank) -> list[Path]:
        best = min(rank(parsed[p]) for p in items)
        return [p for p in items if rank(parsed[p]) == best]

    track_rank = {m: i for i, m in enumerate(TRACK_METHOD_PREFERENCE)}
    pool = keep_best(selected, lambda n: 0 if n.filtered else 1)
    pool = keep_best(pool, lambda n: track_rank.get(n.track_method, len(track_rank)))
    pool = keep_best(pool, lambda n: 0 if n.suffix == ".h5" else 1)
    if len({parsed[p].engine for p in pool}) == 1:
        pool = keep_best(pool, lambda n: -n.training_amount)
    pool = keep_best(pool, lambda n: n.shuffle)

    chosen = pool[0]  # paths were sorted by name, so this is the lexicographically first
    if len(pool) > 1:
        differing = [
            field
            for field in ("network", "task_date", "engine", "training_amount", "detector_snapshot", "legacy")
            if len({getattr(parsed[p], field) for p in pool}) > 1
        ]
        logger.warning(
            "Several DeepLabCut outputs rank equally for video %r: %s. Using %s. They differ in %s, "
            "which shuffle=, filtered= and track_method= cannot separate: pass the pose file you want "
            "explicitly, or move the other outputs out of the folder.",
            parsed[chosen].video_stem,
            "; ".join(_describe_candidate(p, parsed[p]) for p in pool),
            chosen.name,
            ", ".join(differing) or "the model name",
        )
    passed_over = [p.name for p in paths if p != chosen and parsed[p] is not None]
    logger.info("Chose DeepLabCut output %s; passed over: %s", chosen, ", ".join(passed_over) or "nothing")
    return chosen
