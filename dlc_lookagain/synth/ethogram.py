"""What the synthetic animals do and what a tracker sees of them.

The ethogram is the single source of truth for the behaviors the generator
simulates: their names (the label-file columns, in this order), which ones the
keypoints can reveal and which only the video can, their bout-length
distributions and how often each is chosen. ``docs/synthetic_data.md`` is written
from the same table.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Keypoints written to the pose files, in file order (a top-view mouse model).
BODYPARTS: tuple[str, ...] = ("nose", "left_ear", "right_ear", "neck", "body_center", "tail_base", "tail_tip")

#: Skeleton edges (config.yaml ``skeleton`` and the SLEAP skeleton).
SKELETON: tuple[tuple[str, str], ...] = (
    ("nose", "left_ear"),
    ("nose", "right_ear"),
    ("left_ear", "neck"),
    ("right_ear", "neck"),
    ("neck", "body_center"),
    ("body_center", "tail_base"),
    ("tail_base", "tail_tip"),
)

#: Behavior kinds: visible in keypoint kinematics, decided only by pixels, or social.
KEYPOINT, VISION, SOCIAL = "keypoint", "vision", "social"

#: Places an animal can go to before a stationary bout.
PLACES: tuple[str, ...] = ("here", "free", "wall", "nest", "hopper", "spout")


@dataclass(frozen=True)
class BehaviorSpec:
    """One behavior of the ethogram.

    Attributes
    ----------
    name : str
        Label-file column name.
    kind : str
        ``"keypoint"``, ``"vision"`` or ``"social"``.
    weight : float
        Relative chance that this behavior is chosen as the next bout (before
        transition boosts). Frame shares follow from weight x bout length.
    median_s, sigma : float
        Log-normal bout length: median in seconds and log-space spread.
    min_s, max_s : float
        Bout lengths are clipped to this range (seconds).
    places : tuple of (str, float)
        Where a stationary bout happens and with which probability (see
        :data:`PLACES`); empty for moving and social behaviors.
    keypoints_show, video_shows : str
        What the keypoints reveal and what only the pixels reveal (for the docs).
    """

    name: str
    kind: str
    weight: float
    median_s: float
    sigma: float
    min_s: float
    max_s: float
    places: tuple[tuple[str, float], ...] = ()
    keypoints_show: str = ""
    video_shows: str = ""


# Rest and groom share one place distribution (and one posture model in motion.py)
# on purpose: if they differed, keypoint position alone would separate them.
_STILL_PLACES = (
    ("here", 0.30),
    ("free", 0.14),
    ("wall", 0.22),
    ("nest", 0.16),
    ("hopper", 0.10),
    ("spout", 0.08),
)

# fmt: off
BEHAVIORS: tuple[BehaviorSpec, ...] = (
    BehaviorSpec(
        "walk",
        KEYPOINT,
        weight=0.18, median_s=1.6, sigma=0.6, min_s=0.3, max_s=12.0,
        keypoints_show="body speed 0.8-2 body lengths/s, steady heading; also every approach to a goal",
        video_shows="alternating paws (redundant with keypoints)",
    ),
    BehaviorSpec(
        "run",
        KEYPOINT,
        weight=0.07, median_s=0.7, sigma=0.5, min_s=0.2, max_s=3.0,
        keypoints_show="body speed 3.5-6 body lengths/s, body slightly stretched",
        video_shows="nothing the keypoints do not show",
    ),
    BehaviorSpec(
        "rest",
        KEYPOINT,
        weight=0.16, median_s=6.0, sigma=0.8, min_s=1.0, max_s=90.0,
        places=_STILL_PLACES,
        keypoints_show="no body motion; posture (bend, head angle) drifts slowly; distributed as in groom",
        video_shows="paws tucked under the body, breathing",
    ),
    BehaviorSpec(
        "turn",
        KEYPOINT,
        weight=0.22, median_s=0.6, sigma=0.4, min_s=0.2, max_s=2.0,
        keypoints_show="heading changes 2-4 rad/s at low body speed, spine strongly bent",
        video_shows="nothing the keypoints do not show",
    ),
    BehaviorSpec(
        "eat",
        VISION,
        weight=0.08, median_s=6.0, sigma=0.7, min_s=1.0, max_s=45.0,
        places=(('hopper', 1.0),),
        keypoints_show="still, nose at the hopper -- exactly like rest or groom at the hopper",
        video_shows="fore-paws raised to the hopper grid, small chewing motion of the head",
    ),
    BehaviorSpec(
        "drink",
        VISION,
        weight=0.05, median_s=2.5, sigma=0.6, min_s=0.5, max_s=12.0,
        places=(('spout', 1.0),),
        keypoints_show="still, nose at the spout -- exactly like rest or groom at the spout",
        video_shows="one paw on the spout, licking tongue flicker at the spout tip",
    ),
    BehaviorSpec(
        "groom",
        VISION,
        weight=0.11, median_s=5.0, sigma=0.75, min_s=1.0, max_s=40.0,
        places=_STILL_PLACES,
        keypoints_show="no body motion; keypoint statistics identical to rest by construction",
        video_shows="fore-paws over the face, stroking rhythmically (~5 Hz)",
    ),
    BehaviorSpec(
        "rear",
        VISION,
        weight=0.2, median_s=1.2, sigma=0.5, min_s=0.3, max_s=5.0,
        places=(('wall', 0.55), ('free', 0.25), ('hopper', 0.12), ('spout', 0.08)),
        keypoints_show="still; nose-tail length shrinks ~8 % (overlaps the range of other postures)",
        video_shows="head seen closer to the camera: larger and lighter head blob, fore-paws spread in front",
    ),
    BehaviorSpec(
        "sniff",
        SOCIAL,
        weight=0.09, median_s=1.5, sigma=0.5, min_s=0.4, max_s=6.0,
        keypoints_show="own nose within ~0.35 body lengths of the partner's tail base, body or nose; slow",
        video_shows="head contact; close passes without sniffing exist",
    ),
    BehaviorSpec(
        "chase",
        SOCIAL,
        weight=0.035, median_s=1.6, sigma=0.4, min_s=0.5, max_s=4.0,
        keypoints_show="running (also labeled run) towards a partner that runs away",
        video_shows="nothing beyond keypoints, but identity swaps are common at its end",
    ),
    BehaviorSpec(
        "huddle",
        SOCIAL,
        weight=0.018, median_s=14.0, sigma=0.6, min_s=4.0, max_s=120.0,
        places=(('nest', 1.0),),
        keypoints_show="two animals still in the nest; keypoints mostly missing or unlikely there",
        video_shows="two dim bodies in contact under the shelter",
    ),
)
# fmt: on

BEHAVIOR_NAMES: tuple[str, ...] = tuple(b.name for b in BEHAVIORS)
BEHAVIOR_INDEX: dict[str, int] = {name: i for i, name in enumerate(BEHAVIOR_NAMES)}
SPECS: dict[str, BehaviorSpec] = {b.name: b for b in BEHAVIORS}

#: Multipliers on the next-bout weights given the previous behavior. Only a few
#: well-known sequences are encoded (e.g. post-prandial grooming); everything else
#: follows the base weights.
TRANSITION_BOOST: dict[str, dict[str, float]] = {
    "walk": {"turn": 1.5, "rear": 1.5},
    "run": {"walk": 2.0},
    "turn": {"walk": 2.0, "run": 1.5},
    "rest": {"groom": 1.5, "walk": 1.5},
    "groom": {"rest": 1.5, "walk": 1.5},
    "eat": {"groom": 2.0, "rest": 2.0, "drink": 2.0},
    "drink": {"eat": 1.5, "groom": 1.5},
    "rear": {"walk": 1.5, "turn": 1.5},
    "sniff": {"walk": 1.5, "chase": 2.0},
    "chase": {"walk": 2.0, "rest": 1.5},
    "huddle": {"groom": 1.5, "rest": 1.5, "walk": 1.5},
}

#: Render-only actions (what the paws and head do); never written to pose files.
ACTION_TUCKED, ACTION_GAIT, ACTION_GROOM, ACTION_EAT, ACTION_DRINK, ACTION_REAR = range(6)

#: Behaviors whose bouts are spent in place (share the stationary posture model).
STATIONARY: frozenset[str] = frozenset({"rest", "groom", "eat", "drink", "rear", "huddle"})


def short_rare_vision_events() -> tuple[BehaviorSpec, ...]:
    """The ethogram with the vision-only behaviors short and rare, as in real sessions: licks at the
    spout (0.3-1.5 s), brief grooming (0.5-3 s) and eating (0.5-3 s), single rears (0.3-1.2 s),
    hidden in long rests. At 30 fps, looking at 3 % of the frames evenly spaced (one every 1.1 s)
    misses many of these bouts; a gate has to find them (docs/synthetic_data.md)."""
    import dataclasses

    changes = {
        "rest": dict(weight=0.26),
        "eat": dict(weight=0.07, median_s=1.2, sigma=0.5, min_s=0.5, max_s=3.0),
        "drink": dict(weight=0.10, median_s=0.6, sigma=0.4, min_s=0.3, max_s=1.5),
        "groom": dict(weight=0.08, median_s=1.2, sigma=0.5, min_s=0.5, max_s=3.0),
        "rear": dict(weight=0.16, median_s=0.5, sigma=0.35, min_s=0.3, max_s=1.2),
    }
    return tuple(dataclasses.replace(b, **changes.get(b.name, {})) for b in BEHAVIORS)
