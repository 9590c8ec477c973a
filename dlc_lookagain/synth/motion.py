"""Behavior-driven motion: a semi-Markov bout process per animal, plus kinematics.

Each animal runs through bouts. At the end of a bout the next behavior is drawn
from the ethogram weights (times a few transition boosts) and its length from a
log-normal distribution (:mod:`dlc_lookagain.synth.ethogram`). Bouts that happen
at a place (eating at the hopper, resting in the nest, rearing at the wall, ...)
start with an approach, which is labeled ``walk`` (or ``turn`` for a large turn
on the spot before settling), as a human annotator would.

Honesty by construction: every stationary behavior (rest, groom, eat, drink and the
waiting part of huddle) uses *one* posture model, and rest/groom share one place
distribution that includes the hopper and the spout. So the keypoints of grooming
and resting have the same distribution, and "nose at the hopper" is not "eating".
Only the render-only ``action`` (what the paws and jaw do) differs.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np

from dlc_lookagain.synth import anatomy
from dlc_lookagain.synth.arena import Scene
from dlc_lookagain.synth.ethogram import (
    ACTION_DRINK,
    ACTION_EAT,
    ACTION_GAIT,
    ACTION_GROOM,
    ACTION_REAR,
    ACTION_TUCKED,
    BEHAVIOR_INDEX,
    BEHAVIOR_NAMES,
    BEHAVIORS,
    SOCIAL,
    BehaviorSpec,
    TRANSITION_BOOST,
)

logger = logging.getLogger(__name__)

# Kinematics, in body lengths (L) and seconds.
WALK_SPEED = (0.8, 2.0)  # L/s
RUN_SPEED = (3.5, 6.0)
TURN_RATE = (2.0, 4.0)  # rad/s
APPROACH_TIMEOUT_S = 10.0
SNIFF_DISTANCE = 0.35  # L, nose to the sniffed point
_TAU_V, _TAU_W, _TAU_BEND, _TAU_LEN, _TAU_TAIL, _TAU_REAR, _TAU_YAW = 0.15, 0.08, 0.25, 0.25, 0.4, 0.12, 1.2
_LOCKED = frozenset({"chase", "flee", "huddle"})  # bouts another animal may not interrupt
_STILL_ACTIONS = {
    "rest": ACTION_TUCKED,
    "groom": ACTION_GROOM,
    "eat": ACTION_EAT,
    "drink": ACTION_DRINK,
    "rear": ACTION_REAR,
    "huddle": ACTION_TUCKED,
}


@dataclass
class Trajectory:
    """What every animal did and where its body was, frame by frame.

    Attributes
    ----------
    fps : float
        Frame rate.
    lengths : np.ndarray
        ``(A,)`` body lengths in pixels.
    pose : np.ndarray
        float32 ``(T, A, 8)``, see :data:`~dlc_lookagain.synth.anatomy.POSE_FIELDS`.
    keypoints : np.ndarray
        float32 ``(T, A, 7, 2)`` true keypoint positions.
    labels : np.ndarray
        bool ``(T, A, B)`` ground-truth behaviors (B = len(BEHAVIOR_NAMES)).
    action : np.ndarray
        int8 ``(T, A)`` render-only paw/jaw action (``ethogram.ACTION_*``).
    rear : np.ndarray
        float32 ``(T, A)`` how far reared (0-1), render only.
    gait_phase : np.ndarray
        float32 ``(T, A)`` stride phase in radians, render only.
    """

    fps: float
    lengths: np.ndarray
    pose: np.ndarray
    keypoints: np.ndarray
    labels: np.ndarray
    action: np.ndarray
    rear: np.ndarray
    gait_phase: np.ndarray

    @property
    def n_frames(self) -> int:
        return int(self.pose.shape[0])

    @property
    def n_animals(self) -> int:
        return int(self.pose.shape[1])


@dataclass
class _Bout:
    behavior: str
    frames: int  # length of the acting part, in frames
    phase: str = "act"  # "approach" -> "align" -> "act"
    place: str | None = None
    target: np.ndarray | None = None  # body-center goal
    face: float = 0.0  # heading at the goal
    partner: int | None = None
    speed: float = 0.0  # px/s
    turn_rate: float = 0.0  # rad/s
    bend: float = 0.0
    lscale: float = 1.0
    tail_angle: float = 0.0
    tail_curl: float = 0.0
    part: float = 1.0  # sniffed point on the partner's axis (0 nose, 1 tail base)
    acted: int = 0
    waited: int = 0
    align_label: str = "walk"
    shared: dict = field(default_factory=dict)
    done: bool = False


class _Animal:
    __slots__ = (
        "L",
        "bend",
        "bout",
        "gait",
        "i",
        "lscale",
        "rear",
        "settled_at",
        "tail_angle",
        "tail_curl",
        "theta",
        "v",
        "w",
        "w_noise",
        "x",
        "y",
        "yaw",
    )

    def __init__(self, i: int, length: float, x: float, y: float, theta: float):
        self.i, self.L = i, length
        self.x, self.y, self.theta = x, y, theta
        self.v = self.w = self.bend = self.yaw = self.tail_angle = self.tail_curl = 0.0
        self.lscale, self.rear, self.gait, self.w_noise = 1.0, 0.0, 0.0, 0.0
        self.bout: _Bout | None = None
        self.settled_at: str | None = None  # place name while sitting still at a place

    def pose(self) -> np.ndarray:
        return np.array(
            [self.x, self.y, self.theta, self.bend, self.yaw, self.lscale, self.tail_angle, self.tail_curl]
        )

    def axis_point(self, f: float) -> np.ndarray:
        return anatomy.spine_points(self.pose(), self.L, np.array([f]))[0]


def _wrap(a: float) -> float:
    return (a + math.pi) % (2 * math.pi) - math.pi


def _unit(a: float) -> np.ndarray:
    return np.array([math.cos(a), math.sin(a)])


class _Simulator:
    def __init__(self, scene: Scene, n_frames: int, rng: np.random.Generator,
                 ethogram: tuple[BehaviorSpec, ...] = BEHAVIORS):
        if tuple(b.name for b in ethogram) != BEHAVIOR_NAMES:
            raise ValueError(f"an ethogram must list {BEHAVIOR_NAMES} in that order")
        self.scene, self.rng, self.n_frames = scene, rng, n_frames
        self.ethogram, self.specs = ethogram, {b.name: b for b in ethogram}
        self.dt = 1.0 / scene.fps
        self.arena = scene.arena
        self.animals: list[_Animal] = []
        for i in range(scene.n_animals):
            self.animals.append(self._spawn(i))
        n_a, n_b = scene.n_animals, len(BEHAVIOR_NAMES)
        self.pose = np.zeros((n_frames, n_a, 8), np.float32)
        self.labels = np.zeros((n_frames, n_a, n_b), bool)
        self.action = np.zeros((n_frames, n_a), np.int8)
        self.rear = np.zeros((n_frames, n_a), np.float32)
        self.gait = np.zeros((n_frames, n_a), np.float32)

    # -- set-up -------------------------------------------------------------------------------------------

    def _spawn(self, i: int) -> _Animal:
        """A new animal on the open floor, well away from those already placed."""
        length = float(self.scene.lengths[i])
        for _ in range(100):
            x, y = self._free_point(length, margin=1.5)
            if all(math.hypot(x - o.x, y - o.y) > 2.0 * length for o in self.animals):
                break
        return _Animal(i, length, x, y, float(self.rng.uniform(-math.pi, math.pi)))

    def _free_point(self, length: float, margin: float) -> tuple[float, float]:
        a = self.arena
        for _ in range(1000):
            x = a.cx + self.rng.uniform(-a.radius, a.radius)
            y = a.cy + self.rng.uniform(-a.radius, a.radius)
            if a.signed_distance(x, y) < -margin * length:
                return float(x), float(y)
        return a.cx, a.cy

    # -- bout choice --------------------------------------------------------------------------------------

    def _available_partners(self, me: _Animal) -> list[_Animal]:
        return [o for o in self.animals if o is not me and (o.bout is None or o.bout.behavior not in _LOCKED)]

    def _new_bout(self, me: _Animal) -> None:
        prev = me.bout.behavior if me.bout is not None else None
        if prev == "flee":
            prev = "run"
        partners = self._available_partners(me)
        boost = TRANSITION_BOOST.get(prev, {})
        weights = np.array(
            [
                0.0
                if (b.name == prev or (b.kind == SOCIAL and not partners))
                else b.weight * boost.get(b.name, 1.0)
                for b in self.ethogram
            ]
        )
        name = BEHAVIOR_NAMES[int(self.rng.choice(len(self.ethogram), p=weights / weights.sum()))]
        spec = self.specs[name]
        seconds = float(
            np.clip(spec.median_s * math.exp(spec.sigma * self.rng.standard_normal()), spec.min_s, spec.max_s)
        )
        frames = max(1, int(round(seconds * self.scene.fps)))
        bout = _Bout(name, frames)
        rng, L = self.rng, me.L
        if name == "walk":
            bout.speed = rng.uniform(*WALK_SPEED) * L
        elif name == "run":
            bout.speed = rng.uniform(*RUN_SPEED) * L
        elif name == "turn":
            bout.turn_rate = rng.uniform(*TURN_RATE) * rng.choice([-1.0, 1.0])
        elif name in ("rest", "groom", "eat", "drink", "rear"):
            self._still_posture(bout)
            self._choose_place(me, bout)
        elif name == "sniff":
            other = partners[int(rng.integers(len(partners)))]
            bout.partner = other.i  # approaches inside _sniff, labeled walk until close
            bout.part = float(rng.choice([1.0, 0.58, 0.0], p=[0.6, 0.25, 0.15]))  # anogenital, flank, nose
            bout.speed = rng.uniform(*WALK_SPEED) * L
        elif name == "chase":
            other = partners[int(rng.integers(len(partners)))]
            bout.partner, bout.speed = other.i, rng.uniform(*RUN_SPEED) * L
            flee = _Bout("flee", frames, partner=me.i, speed=bout.speed * rng.uniform(1.0, 1.15))
            other.bout, other.settled_at = flee, None
        elif name == "huddle":
            other = partners[int(rng.integers(len(partners)))]
            shared = {"frames": frames, "elapsed": 0, "arrived": set()}
            slots = self._huddle_slots()
            for animal, slot in zip((me, other), slots):
                b = bout if animal is me else _Bout("huddle", frames)
                self._still_posture(b)
                b.partner = other.i if animal is me else me.i
                b.shared, b.place, b.phase = shared, "nest", "approach"
                b.target, b.face = slot
                b.speed = rng.uniform(*WALK_SPEED) * animal.L
                if animal is other:
                    other.bout, other.settled_at = b, None
        me.bout = bout
        if bout.phase != "act" or name not in ("rest", "groom", "eat", "drink", "rear"):
            me.settled_at = None

    def _still_posture(self, bout: _Bout) -> None:
        """Posture held during a stationary bout: one model for rest, groom, eat, drink (honesty)."""
        rng = self.rng
        if bout.behavior == "rear":
            bout.bend, bout.lscale = (
                float(np.clip(rng.normal(0, 0.12), -0.4, 0.4)),
                float(rng.normal(0.915, 0.03)),
            )
        else:
            bout.bend, bout.lscale = (
                float(np.clip(rng.normal(0, 0.35), -1.0, 1.0)),
                float(rng.normal(0.955, 0.03)),
            )
        bout.tail_angle = float(np.clip(rng.normal(0, 0.5), -1.2, 1.2))
        bout.tail_curl = float(np.clip(rng.normal(0, 1.2), -2.5, 2.5))

    def _nest_taken(self, me: _Animal) -> bool:
        nest = self.scene.nest
        for o in self.animals:
            if o is me or o.bout is None:
                continue
            if o.bout.place == "nest" or bool(nest.contains(o.x, o.y)):
                return True
        return False

    def _choose_place(self, me: _Animal, bout: _Bout) -> None:
        names, probs = zip(*self.specs[bout.behavior].places)
        probs = np.array(probs, float)
        for k, place in enumerate(names):
            if place == "here" and me.settled_at is None:
                probs[k] = 0.0
            if place == "nest" and self._nest_taken(me):
                probs[k] = 0.0
        place = names[int(self.rng.choice(len(names), p=probs / probs.sum()))]
        if place == "here" or place == me.settled_at:
            # Stay where it sits (e.g. eat -> groom at the hopper): no approach.
            bout.place, bout.phase = me.settled_at, "act"
            return
        bout.place, bout.phase = place, "approach"
        bout.speed = self.rng.uniform(*WALK_SPEED) * me.L
        bout.target, bout.face = self._place_goal(me, bout, place)

    def _place_goal(self, me: _Animal, bout: _Bout, place: str) -> tuple[np.ndarray, float]:
        rng, L = self.rng, me.L
        nose_dist = anatomy.F_CENTER * L * bout.lscale  # body center to nose, straight body
        if place in ("hopper", "spout"):
            station = self.scene.hopper if place == "hopper" else self.scene.spout
            tangent = np.array([-station.normal[1], station.normal[0]])
            nose = station.target + tangent * rng.uniform(-0.08, 0.08) * L
            face = station.facing + float(rng.normal(0, 0.12))
            return nose - nose_dist * _unit(face), face
        if place == "wall":
            point, normal = self.arena.anchor(float(rng.uniform()))
            inward = math.atan2(normal[1], normal[0])
            if bout.behavior == "rear":
                face = inward + math.pi + float(rng.normal(0, 0.2))
                return point + normal * (nose_dist + 0.06 * L), face
            kind = rng.choice(3, p=[0.6, 0.2, 0.2])  # along the wall, facing it, back to it
            if kind == 0:
                face = inward + rng.choice([-1.0, 1.0]) * math.pi / 2 + float(rng.normal(0, 0.15))
                return point + normal * 0.32 * L, face
            if kind == 1:
                face = inward + math.pi + float(rng.normal(0, 0.2))
                return point + normal * (nose_dist + 0.08 * L), face
            face = inward + float(rng.normal(0, 0.2))
            return point + normal * ((1 - anatomy.F_CENTER) * L + 0.15 * L), face
        if place == "nest":
            nest = self.scene.nest
            u = rng.uniform(-0.4, 0.4) * nest.half_width
            v = rng.uniform(0.4, 0.6) * nest.depth
            return nest.anchor + nest.tangent * u + nest.normal * v, float(rng.uniform(-math.pi, math.pi))
        x, y = self._free_point(L, margin=1.3)
        return np.array([x, y]), float(rng.uniform(-math.pi, math.pi))

    def _huddle_slots(self) -> list[tuple[np.ndarray, float]]:
        nest = self.scene.nest
        inward = math.atan2(nest.normal[1], nest.normal[0])
        base = nest.anchor + nest.normal * 0.55 * nest.depth
        off = 0.24 * self.scene.mean_length
        faces = [inward + math.pi * self.rng.integers(2) + self.rng.normal(0, 0.15) for _ in range(2)]
        return [(base + nest.tangent * off, float(faces[0])), (base - nest.tangent * off, float(faces[1]))]

    # -- control ------------------------------------------------------------------------------------------

    def _wall_steer(self, me: _Animal, lookahead: float) -> float:
        qx = me.x + math.cos(me.theta) * lookahead
        qy = me.y + math.sin(me.theta) * lookahead
        margin = 0.5 * me.L
        sd = float(self.arena.signed_distance(qx, qy))
        if sd <= -margin:
            return 0.0
        k = min(1.5, (sd + margin) / margin)
        to_center = math.atan2(self.arena.cy - me.y, self.arena.cx - me.x)
        return 5.0 * k * _wrap(to_center - me.theta)

    def _approach(self, me: _Animal, bout: _Bout) -> tuple[float, float, str]:
        """Walk to ``bout.target`` and turn to ``bout.face``; returns (v, w, label)."""
        bout.waited += 1
        timeout = bout.waited > APPROACH_TIMEOUT_S * self.scene.fps
        dx, dy = bout.target[0] - me.x, bout.target[1] - me.y
        dist = math.hypot(dx, dy)
        if bout.phase == "approach":
            if dist > 0.15 * me.L and not timeout:
                err = _wrap(math.atan2(dy, dx) - me.theta)
                w = max(-4.5, min(4.5, 5.0 * err))
                v = min(bout.speed, 2.5 * dist) * max(0.0, math.cos(err)) ** 2
                return v, w, "walk"
            bout.phase = "align"
            big_turn = abs(_wrap(bout.face - me.theta)) > math.pi / 2
            bout.align_label = "turn" if big_turn else "walk"
        err = _wrap(bout.face - me.theta)
        if abs(err) > 0.15 and not timeout:
            return 0.0, max(-4.0, min(4.0, 6.0 * err)), bout.align_label
        bout.phase = "act"
        me.settled_at = bout.place
        return 0.0, 0.0, ""

    def _control(self, me: _Animal, t: int) -> None:
        bout = me.bout
        rng, L = self.rng, me.L
        name = bout.behavior
        labels: tuple[str, ...] = ()
        action = ACTION_GAIT
        v_t = w_t = 0.0
        moving = True
        # Wander of the heading (an Ornstein-Uhlenbeck process), used by walk and run.
        me.w_noise += -me.w_noise * self.dt / 0.7 + 1.0 * math.sqrt(2 * self.dt / 0.7) * rng.standard_normal()

        if bout.phase in ("approach", "align"):
            v_t, w_t, label = self._approach(me, bout)
            if bout.phase != "act":
                labels = (label,)
                self._finish(me, v_t, w_t, labels, action, moving, t)
                return
        if name in ("walk", "run"):
            v_t = bout.speed
            w_t = me.w_noise * (1.0 if name == "walk" else 0.6) + self._wall_steer(me, 0.6 * L + 0.4 * me.v)
            labels = (name,)
            bout.acted += 1
        elif name == "turn":
            v_t, w_t, labels = 0.1 * L, bout.turn_rate, ("turn",)
            bout.acted += 1
        elif name in ("rest", "groom", "eat", "drink", "rear"):
            moving, action, labels = False, _STILL_ACTIONS[name], (name,)
            bout.acted += 1
        elif name == "huddle":
            moving, action = False, ACTION_TUCKED
            shared = bout.shared
            shared["arrived"].add(me.i)
            if len(shared["arrived"]) == 2:
                labels = ("huddle",)
                if me.i == min(me.i, bout.partner):
                    shared["elapsed"] += 1
            else:
                labels = ("rest",)  # settled in the nest, waiting for the partner
        elif name == "sniff":
            v_t, w_t, labels = self._sniff(me, bout)
        elif name == "chase":
            other = self.animals[bout.partner]
            goal = other.axis_point(1.0)
            err = _wrap(math.atan2(goal[1] - me.y, goal[0] - me.x) - me.theta)
            v_t = bout.speed * max(0.2, math.cos(err))
            w_t = max(-6.0, min(6.0, 6.0 * err)) + 0.5 * self._wall_steer(me, 0.5 * L)
            labels = ("chase", "run")
            bout.acted += 1
            if math.hypot(other.x - me.x, other.y - me.y) > 5.0 * L:
                bout.acted = bout.frames  # lost it
        elif name == "flee":
            chaser = self.animals[bout.partner]
            away = math.atan2(me.y - chaser.y, me.x - chaser.x)
            w_t = 3.0 * _wrap(away - me.theta) + self._wall_steer(me, 0.8 * L + 0.3 * me.v) + 0.5 * me.w_noise
            v_t = bout.speed
            labels = ("run",)
            bout.acted += 1
        self._finish(me, v_t, w_t, labels, action, moving, t)

    def _sniff(self, me: _Animal, bout: _Bout) -> tuple[float, float, tuple[str, ...]]:
        other = self.animals[bout.partner]
        goal = other.axis_point(bout.part)
        nose = me.axis_point(0.0)
        gap = math.hypot(goal[0] - nose[0], goal[1] - nose[1])
        bearing = math.atan2(goal[1] - me.y, goal[0] - me.x)
        err = _wrap(bearing - me.theta)
        w = max(-4.0, min(4.0, 4.0 * err))
        # Hysteresis: contact starts within SNIFF_DISTANCE and ends beyond 1.5x that,
        # so a bout is not chopped into single frames by jitter of the gap.
        limit = SNIFF_DISTANCE * me.L * (1.5 if bout.shared.get("contact") else 1.0)
        bout.shared["contact"] = gap <= limit
        if bout.shared["contact"]:
            bout.acted += 1
            # Keep the nose there: follow the partner at its speed, creeping closer.
            return min(abs(other.v) + 0.2 * me.L * gap / me.L, bout.speed), w, ("sniff",)
        bout.waited += 1
        if bout.waited > 8.0 * self.scene.fps:
            bout.done = True
        return min(bout.speed, 2.0 * gap) * max(0.0, math.cos(err)), w, ("walk",)

    def _finish(self, me: _Animal, v_t: float, w_t: float, labels, action: int, moving: bool, t: int) -> None:
        """Integrate one frame of kinematics and posture; record labels."""
        dt, rng, bout = self.dt, self.rng, me.bout
        me.v += (v_t - me.v) * (1 - math.exp(-dt / _TAU_V))
        me.w += (w_t - me.w) * (1 - math.exp(-dt / _TAU_W))
        me.theta = _wrap(me.theta + me.w * dt)
        me.x += me.v * math.cos(me.theta) * dt
        me.y += me.v * math.sin(me.theta) * dt

        if moving:
            bend_t = max(-1.2, min(1.2, 0.3 * me.w))
            len_t = {"run": 1.04, "chase": 1.04, "flee": 1.04, "turn": 0.95}.get(bout.behavior, 1.0)
            if bout.phase != "act":
                len_t = 1.0
            tail_a_t, tail_c_t = -0.8 * me.bend, -0.25 * me.w
            yaw_mean, yaw_sd = 0.08 * me.w, 0.12
        else:
            bend_t, len_t, tail_a_t, tail_c_t = bout.bend, bout.lscale, bout.tail_angle, bout.tail_curl
            yaw_mean, yaw_sd = 0.0, 0.28
        me.bend += (bend_t - me.bend) * (1 - math.exp(-dt / _TAU_BEND))
        me.lscale += (len_t - me.lscale) * (1 - math.exp(-dt / _TAU_LEN)) + 0.004 * rng.standard_normal()
        me.tail_angle += (tail_a_t - me.tail_angle) * (
            1 - math.exp(-dt / _TAU_TAIL)
        ) + 0.02 * rng.standard_normal()
        me.tail_curl += (tail_c_t - me.tail_curl) * (
            1 - math.exp(-dt / _TAU_TAIL)
        ) + 0.03 * rng.standard_normal()
        me.yaw += (yaw_mean - me.yaw) * dt / _TAU_YAW + yaw_sd * math.sqrt(
            2 * dt / _TAU_YAW
        ) * rng.standard_normal()
        me.yaw = max(-0.9, min(0.9, me.yaw))
        rear_t = 1.0 if (bout.behavior == "rear" and bout.phase == "act") else 0.0
        me.rear += (rear_t - me.rear) * (1 - math.exp(-dt / _TAU_REAR))
        if abs(me.v) > 0.05 * me.L or abs(me.w) > 0.5:
            # Stride frequency grows with speed (about 3 Hz walking, 8 Hz running).
            me.gait = (me.gait + 2 * math.pi * (1.5 + 1.2 * abs(me.v) / me.L + 0.3 * abs(me.w)) * dt) % (
                2 * math.pi
            )

        for name in labels:
            self.labels[t, me.i, BEHAVIOR_INDEX[name]] = True
        self.action[t, me.i] = action

        # Is the bout over?
        if bout.behavior == "huddle":
            bout.done = bout.shared["elapsed"] >= bout.shared["frames"]
        elif bout.phase == "act" and bout.acted >= bout.frames:
            bout.done = True
            if bout.behavior in ("chase", "flee") and bout.partner is not None:
                other = self.animals[bout.partner].bout
                if other is not None and other.behavior in ("chase", "flee") and other.partner == me.i:
                    other.done = True

    # -- constraints and bookkeeping ----------------------------------------------------------------------

    def _constrain(self) -> None:
        arena = self.arena
        for me in self.animals:
            # Keep the body inside and the nose off the wall.
            for f, limit in ((anatomy.F_CENTER, 0.3), (0.0, 0.03)):
                p = me.axis_point(f) if f != anatomy.F_CENTER else np.array([me.x, me.y])
                excess = float(arena.signed_distance(p[0], p[1])) + limit * me.L
                if excess > 0:
                    to_c = math.atan2(arena.cy - p[1], arena.cx - p[0])
                    me.x += excess * math.cos(to_c)
                    me.y += excess * math.sin(to_c)
        n = len(self.animals)
        for i in range(n):
            for j in range(i + 1, n):
                a, b = self.animals[i], self.animals[j]
                huddling = a.bout.behavior == b.bout.behavior == "huddle" and a.bout.partner == b.i
                min_d = (0.40 if huddling else 0.55) * 0.5 * (a.L + b.L)
                dx, dy = b.x - a.x, b.y - a.y
                d = math.hypot(dx, dy)
                if d < min_d:
                    if d < 1e-6:
                        dx, dy, d = 1.0, 0.0, 1.0
                    push = (min_d - d) / 2.0
                    a.x -= push * dx / d
                    a.y -= push * dy / d
                    b.x += push * dx / d
                    b.y += push * dy / d

    def run(self) -> Trajectory:
        for t in range(self.n_frames):
            for me in self.animals:
                if me.bout is None or me.bout.done:
                    self._new_bout(me)
            for me in self.animals:
                self._control(me, t)
            self._constrain()
            for me in self.animals:
                self.pose[t, me.i] = me.pose()
                self.rear[t, me.i] = me.rear
                self.gait[t, me.i] = me.gait
        lengths = np.asarray(self.scene.lengths, np.float32)
        kps = anatomy.keypoints(self.pose.astype(np.float64), lengths[None, :]).astype(np.float32)
        return Trajectory(
            self.scene.fps, lengths, self.pose, kps, self.labels, self.action, self.rear, self.gait
        )


def simulate_motion(scene: Scene, n_frames: int, rng: np.random.Generator,
                    ethogram: tuple[BehaviorSpec, ...] = BEHAVIORS) -> Trajectory:
    """Simulate the animals of a scene.

    Parameters
    ----------
    scene : Scene
        The video's scene (arena, objects, animal sizes).
    n_frames : int
        Frames to simulate.
    rng : numpy.random.Generator
        Only source of randomness.
    ethogram : tuple of BehaviorSpec
        Bout weights and lengths (default :data:`~dlc_lookagain.synth.ethogram.BEHAVIORS`).

    Returns
    -------
    Trajectory
    """
    traj = _Simulator(scene, n_frames, rng, ethogram).run()
    share = traj.labels.mean(axis=(0, 1))
    logger.debug(
        "behavior frame shares: %s", ", ".join(f"{n}={s:.3f}" for n, s in zip(BEHAVIOR_NAMES, share))
    )
    return traj
