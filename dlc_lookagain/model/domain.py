"""Does a recording look like what the bundled model was trained on? If not, movement states.

The bundled model learned its behaviors (walk, rest, groom, ...) from generated mice. On a real
project it has never seen, its thresholds mean little: on a real single-mouse recording it called
97 % of frames "rest" (humans: 23 % freezing), and flies got 20 s "groom" bouts. Before a lab trains
its own model, ``analyze`` therefore checks every recording against the bundled model's training
data and, when it is out of domain, writes species-agnostic **movement states** instead, with a
warning that says how to train.

Domain checks (each gives a reason when it fails):

1. skeleton names: at least :data:`MIN_NAME_MATCH` of the training bodyparts are found by name or
   synonym (a fly or a rat skeleton is not a mouse skeleton);
2. body shape: the matched bodyparts sit where they sit on the training animals (median distance of
   their egocentric profiles at most :data:`MAX_SHAPE_DISTANCE` body lengths);
3. movement: the median and 90th percentile of the centroid speed (body lengths/s) lie within a factor
   :data:`SPEED_FACTOR` of the training data's.

Movement states (mutually exclusive by construction, one per tracked animal-frame): ``still``,
``moving``, ``fast`` by the centroid speed in body lengths per second, averaged over
:data:`STATE_SMOOTH_S`. The cut points are definitions, not fitted values; docs/model.md reports how
``still`` agrees with human freezing labels.
"""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dlc_lookagain.features.bank import _centered_mean
from dlc_lookagain.features.kinematics import _ddt, _odd_window, body_lengths, interpolate_gaps
from dlc_lookagain.features.skeleton import _match, skeleton_profile
from dlc_lookagain.io.record import PoseRecord

logger = logging.getLogger(__name__)

__all__ = ["DomainReport", "domain_report", "movement_states", "MOVEMENT_STATES", "bundled_reference",
           "reference_from_records"]

#: Fraction of the training bodyparts that must be found by name or synonym.
MIN_NAME_MATCH = 0.6
#: Largest median distance (body lengths) between matched bodyparts' egocentric profiles.
MAX_SHAPE_DISTANCE = 0.2
#: Speeds (median, 90th percentile) may differ from the training data's by this factor.
SPEED_FACTOR = 3.0
#: The movement states, in order.
MOVEMENT_STATES = ("still", "moving", "fast")
#: Speed cut points (body lengths per second): still below the first, fast from the second.
STATE_CUTS_BL_S = (0.1, 1.0)
#: Centroid positions and speeds are averaged over this span (seconds) before the cut points.
STATE_SMOOTH_S = 0.5
#: The bundled model's reference statistics (written by :func:`write_bundled_reference`).
REFERENCE_FILE = Path(__file__).resolve().parent / "weights" / "lookagain-generated.domain.json"


def _centroid_speed_bl_s(record: PoseRecord, fps: float, smooth_s: float) -> np.ndarray:
    """Centroid speed (body lengths/s) of smoothed positions, ``(T, I)``, NaN where not tracked."""
    kp = interpolate_gaps(np.asarray(record.keypoints, dtype=np.float64), int(round(0.5 * fps)))
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        centroid = _centered_mean(np.nanmean(kp, axis=2), _odd_window(smooth_s, fps))
        vel = _ddt(centroid, fps)
        speed = np.hypot(vel[..., 0], vel[..., 1]) / body_lengths(kp)[None, :]
    speed[np.isnan(kp).all(axis=(2, 3))] = np.nan
    return speed


def _record_stats(record: PoseRecord, fps: float) -> dict:
    speed = _centroid_speed_bl_s(record, fps, 0.1)
    finite = speed[np.isfinite(speed)]
    if not finite.size:
        return {"speed_q50": float("nan"), "speed_q90": float("nan")}
    return {"speed_q50": float(np.quantile(finite, 0.5)), "speed_q90": float(np.quantile(finite, 0.9))}


def reference_from_records(records: list[PoseRecord], fps: float) -> dict:
    """Reference statistics of a model's training recordings (skeleton profile, speed range)."""
    from dlc_lookagain.features.skeleton import training_skeleton

    stats = [_record_stats(r, fps) for r in records]
    return {
        "skeleton": training_skeleton(records),
        "speed_q50": [min(s["speed_q50"] for s in stats), max(s["speed_q50"] for s in stats)],
        "speed_q90": [min(s["speed_q90"] for s in stats), max(s["speed_q90"] for s in stats)],
        "fps": fps,
        "recordings": len(records),
    }


def bundled_reference() -> dict | None:
    """The bundled model's reference statistics, or None when the file is missing or damaged."""
    try:
        blob = json.loads(REFERENCE_FILE.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(blob, dict) or not isinstance(blob.get("skeleton"), dict):
        return None
    return blob


@dataclass
class DomainReport:
    """Outcome of :func:`domain_report`.

    Attributes
    ----------
    in_domain : bool
    reasons : list of str
        Why it is out of domain (empty when in domain).
    scores : dict
        ``name_match`` (fraction), ``shape_distance`` (body lengths), ``speed_q50``/``speed_q90``.
    """

    in_domain: bool
    reasons: list[str] = field(default_factory=list)
    scores: dict = field(default_factory=dict)


def domain_report(record: PoseRecord, fps: float, reference: dict | None = None) -> DomainReport:
    """How far a recording is from the bundled model's training data (see the module docstring)."""
    reference = reference if reference is not None else bundled_reference()
    if reference is None:
        return DomainReport(False, ["the bundled model's reference statistics are missing from this installation"])
    trained = {str(k): list(v) for k, v in reference["skeleton"].items()}
    reasons = []
    by_name, _ = _match(list(record.bodyparts), None, trained)
    name_match = len(by_name) / max(1, len(trained))
    scores = {"name_match": round(name_match, 3)}
    if name_match < MIN_NAME_MATCH:
        reasons.append(f"only {len(by_name)} of its {len(trained)} training bodyparts are found by name "
                       f"({', '.join(trained)})")
    profile = skeleton_profile(record)
    common = [b for b in by_name if b in profile]
    if len(common) >= 3:
        # Profiles are taken on the parts both skeletons share, so that the centroid is the same.
        mine = skeleton_profile(_subset(record, common))
        theirs = {w: trained[w] for w in (by_name[b] for b in common)}
        dist = [np.hypot(mine[b][0] - theirs[by_name[b]][0], mine[b][1] - theirs[by_name[b]][1])
                for b in common if b in mine]
        shape = float(np.median(dist)) if dist else float("nan")
        scores["shape_distance"] = round(shape, 3)
        if np.isfinite(shape) and shape > MAX_SHAPE_DISTANCE:
            reasons.append(f"its bodyparts sit elsewhere on the body than on the training animals "
                           f"(median {shape:.2f} body lengths apart)")
    stats = _record_stats(record, fps)
    scores.update({k: round(v, 3) for k, v in stats.items()})
    for key, label in (("speed_q50", "median"), ("speed_q90", "90th-percentile")):
        lo, hi = reference[key]
        v = stats[key]
        if not np.isfinite(v) or v < lo / SPEED_FACTOR or v > hi * SPEED_FACTOR:
            reasons.append(f"its {label} speed, {v:.2g} body lengths/s, is outside the training range "
                           f"{lo:.2g}-{hi:.2g} (x/÷{SPEED_FACTOR:g})")
    return DomainReport(not reasons, reasons, scores)


def _subset(record: PoseRecord, parts: list[str]) -> PoseRecord:
    import dataclasses

    keep = [record.bodyparts.index(b) for b in parts]
    return dataclasses.replace(record, keypoints=record.keypoints[:, :, keep],
                               confidence=record.confidence[:, :, keep], bodyparts=list(parts), skeleton=[])


def movement_states(record: PoseRecord, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """Species-agnostic movement states of every tracked animal-frame.

    Returns
    -------
    probabilities : np.ndarray
        float32 ``(T, I, 3)`` one-hot over :data:`MOVEMENT_STATES` (NaN where not tracked).
    present : np.ndarray
        bool ``(T, I, 3)``; exactly one state per tracked animal-frame.
    """
    speed = _centroid_speed_bl_s(record, fps, STATE_SMOOTH_S)
    still_below, fast_from = STATE_CUTS_BL_S
    state = np.where(speed < still_below, 0, np.where(speed < fast_from, 1, 2))
    present = state[..., None] == np.arange(len(MOVEMENT_STATES))
    # Speeds bridge short gaps; a frame where the animal has no keypoint at all still gets no state.
    seen = ~np.isnan(np.asarray(record.keypoints)[..., 0]).all(axis=2)
    tracked = np.isfinite(speed) & seen
    present &= tracked[..., None]
    proba = present.astype(np.float32)
    proba[~tracked] = np.nan
    return proba, present


def write_bundled_reference(path: Path = REFERENCE_FILE) -> dict:
    """Regenerate the bundled model's reference from its training data (the synth ``train`` preset)."""
    import tempfile

    from dlc_lookagain.io.main import load_pose
    from dlc_lookagain.synth import generate_project, preset

    cfg = preset("train", n_videos=8, seconds=60, write_video=False, write_slp=False)  # as in its manifest
    with tempfile.TemporaryDirectory() as tmp:
        generate_project(cfg, Path(tmp) / "project", overwrite=True)
        records = [load_pose(p, video=False) for p in sorted((Path(tmp) / "project" / "videos").glob("*.h5"))]
        reference = reference_from_records(records, float(cfg.scene.fps))
    reference["source"] = "dlc_lookagain.synth preset 'train' (the bundled model's training data)"
    path.write_text(json.dumps(reference, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return reference


if __name__ == "__main__":  # python -m dlc_lookagain.model.domain
    logging.basicConfig(level=logging.INFO)
    print(json.dumps(write_bundled_reference(), indent=1))  # a developer command: the JSON is its output
