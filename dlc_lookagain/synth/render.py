"""Drawing the animals onto the precomputed background, one frame at a time.

Frames are produced on demand (:meth:`FrameRenderer.render` or iteration), so a
long recording is streamed to the encoder without ever being held in memory.
Each frame: background copy -> animals (paws under the body, tail, body, head,
ears, then paws that are over the face) -> water spout -> nest shelter ->
optical blur -> illumination gain -> sensor noise.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import cv2
import numpy as np

from dlc_lookagain.synth import anatomy
from dlc_lookagain.synth.arena import (
    Lighting,
    Scene,
    SensorNoise,
    ShelterOverlay,
    coat_colors,
    render_background,
)
from dlc_lookagain.synth.ethogram import (
    ACTION_DRINK,
    ACTION_EAT,
    ACTION_GAIT,
    ACTION_GROOM,
    ACTION_REAR,
)
from dlc_lookagain.synth.motion import Trajectory

_SHIFT = 4  # cv2 sub-pixel bits: coordinates are multiplied by 16
_ONE = 1 << _SHIFT
_TAIL_N = 9
_PINK_TONGUE = (150, 140, 235)


def _pt(p: np.ndarray) -> tuple[int, int]:
    return int(round(p[0] * _ONE)), int(round(p[1] * _ONE))


def _lighter(color, amount: float) -> tuple[float, float, float]:
    return tuple(min(255.0, c + amount) for c in color)


class FrameRenderer:
    """Renders the frames of one recording.

    Parameters
    ----------
    scene : Scene
        The video's scene.
    traj : Trajectory
        Simulated animals (poses and render-only actions).
    rng : numpy.random.Generator
        Used once, at construction (textures, noise planes, per-frame noise offsets),
        so that any frame can be rendered in any order with the same result.
    """

    def __init__(self, scene: Scene, traj: Trajectory, rng: np.random.Generator):
        self.scene, self.traj = scene, traj
        self.background = render_background(scene, rng)
        self.lighting = Lighting(scene, traj.n_frames, rng)
        self.noise = SensorNoise(scene, rng)
        self.noise_pick = np.stack(
            [
                rng.integers(0, len(self.noise.planes), traj.n_frames),
                rng.integers(0, SensorNoise.PAD, traj.n_frames),
                rng.integers(0, SensorNoise.PAD, traj.n_frames),
            ],
            axis=1,
        ).astype(np.int32)
        self.shelter = ShelterOverlay(scene)
        self.fur, self.ear, self.tail, self.paw = coat_colors(scene.coat)
        # Fur sheen along the spine: lighter on dark coats, a shade darker on white ones.
        self.sheen = _lighter(self.fur, 16) if scene.contrast < 0 else _lighter(self.fur, -14)
        self.eye = (22, 22, 26) if scene.contrast < 0 else (60, 50, 170)
        self.breath_phase = rng.uniform(0, 2 * math.pi, traj.n_animals)
        self._gain_buf = np.empty((scene.height, scene.width, 3), np.float32)

    @property
    def n_frames(self) -> int:
        return self.traj.n_frames

    def __iter__(self) -> Iterator[np.ndarray]:
        for t in range(self.n_frames):
            yield self.render(t)

    def render(self, t: int) -> np.ndarray:
        """Frame ``t`` as uint8 ``(height, width, 3)`` BGR."""
        canvas = self.background.copy()
        for i in range(self.traj.n_animals):
            self._draw_animal(canvas, t, i)
        self._draw_spout(canvas)
        self.shelter.apply(canvas)
        if self.scene.blur_sigma > 0:
            canvas = cv2.GaussianBlur(canvas, (0, 0), self.scene.blur_sigma)
        img = canvas.astype(np.float32)
        cv2.multiply(img, self.lighting.gain_map, dst=img, scale=self.lighting.gain(t))
        k, dy, dx = self.noise_pick[t]
        img += self.noise.planes[k][dy : dy + self.scene.height, dx : dx + self.scene.width]
        np.clip(img, 0, 255, out=img)
        return img.astype(np.uint8)

    # ------------------------------------------------------------------------------------------------

    def _draw_animal(self, img: np.ndarray, t: int, i: int) -> None:
        traj, fps = self.traj, self.scene.fps
        pose = traj.pose[t, i].astype(np.float64)
        L = float(traj.lengths[i])
        action = int(traj.action[t, i])
        rear = float(traj.rear[t, i])
        phase = float(traj.gait_phase[t, i])
        sec = t / fps

        axis = anatomy.spine_points(
            pose, L, np.array([0.0, 0.07, anatomy.F_EAR, anatomy.F_NECK, anatomy.F_CENTER, 0.86])
        )
        nose, eye_mid, ear_mid, neck, center, hip = axis
        hd = float(anatomy.head_direction(pose, L))
        fwd = np.array([math.cos(hd), math.sin(hd)])
        left = np.array([math.sin(hd), -math.cos(hd)])
        trunk = center - hip
        trunk /= np.linalg.norm(trunk) + 1e-9
        tleft = np.array([trunk[1], -trunk[0]])
        paw_r = max(1.0, 0.05 * L)

        if action == ACTION_GAIT:  # paws under the body, stepping
            s, c = math.sin(phase), 0.07 * L
            for p in (
                neck + tleft * 0.17 * L + trunk * c * s,
                neck - tleft * 0.17 * L - trunk * c * s,
                hip + tleft * 0.19 * L - trunk * c * s,
                hip - tleft * 0.19 * L + trunk * c * s,
            ):
                self._paw(img, p, paw_r, hd)

        # Tail: tapering polyline.
        tail = anatomy.tail_points(pose, L, _TAIL_N)
        for k in range(_TAIL_N - 1):
            thick = max(1, int(round((0.075 - 0.05 * k / (_TAIL_N - 2)) * L)))
            cv2.line(img, _pt(tail[k]), _pt(tail[k + 1]), self.tail, thick, cv2.LINE_AA, _SHIFT)

        breath = 1.0 + 0.02 * math.sin(2 * math.pi * 2.5 * sec + self.breath_phase[i])
        body = anatomy.outline(pose, L, breath)
        cv2.fillPoly(img, [np.round(body * _ONE).astype(np.int32)], self.fur, cv2.LINE_AA, _SHIFT)
        sheen = anatomy.outline(pose, L, 0.42)
        cv2.fillPoly(img, [np.round(sheen * _ONE).astype(np.int32)], self.sheen, cv2.LINE_AA, _SHIFT)

        # Head blob: grows and lightens as the animal rears towards the camera; bobs when chewing.
        bob = 0.02 * L * math.sin(2 * math.pi * 6.0 * sec) if action == ACTION_EAT else 0.0
        head_c = (nose + neck) / 2.0 + fwd * bob
        half_len = 0.5 * np.linalg.norm(nose - neck) * (1.0 + 0.25 * rear)
        half_w = 0.115 * L * (1.0 + 0.40 * rear)
        head_color = _lighter(self.fur, min(60.0, 250.0 - max(self.fur)) * rear)
        cv2.ellipse(
            img,
            _pt(head_c),
            (int(half_len * _ONE), int(half_w * _ONE)),
            math.degrees(hd),
            0,
            360,
            head_color,
            -1,
            cv2.LINE_AA,
            _SHIFT,
        )
        ear_r = 0.075 * L * (1.0 + 0.2 * rear)
        for side in (1.0, -1.0):
            ear = ear_mid + left * side * anatomy.EAR_LATERAL * L
            cv2.circle(img, _pt(ear), int(ear_r * _ONE), self.ear, -1, cv2.LINE_AA, _SHIFT)
            eye = eye_mid + fwd * bob + left * side * 0.055 * L
            cv2.circle(img, _pt(eye), int(max(0.6, 0.022 * L) * _ONE), self.eye, -1, cv2.LINE_AA, _SHIFT)

        # Paws that are seen over the head (the pixel-only cues of groom, eat, drink, rear).
        if action == ACTION_GROOM:
            for side, ph in ((1.0, 0.0), (-1.0, math.pi)):
                stroke = 0.08 * L * math.sin(2 * math.pi * 5.0 * sec + ph)
                self._paw(img, nose - fwd * (0.10 * L + stroke) + left * side * 0.06 * L, 1.15 * paw_r, hd)
        elif action == ACTION_EAT:
            jig = 0.015 * L * math.sin(2 * math.pi * 3.0 * sec)
            for side in (1.0, -1.0):
                self._paw(img, nose + fwd * (0.03 * L + jig) + left * side * 0.07 * L, 1.1 * paw_r, hd)
        elif action == ACTION_DRINK:
            self._paw(img, nose + fwd * 0.02 * L + left * 0.07 * L, 1.1 * paw_r, hd)
            if math.sin(2 * math.pi * 7.0 * sec) > 0:
                cv2.circle(
                    img,
                    _pt(nose + fwd * 0.05 * L),
                    int(max(0.7, 0.03 * L) * _ONE),
                    _PINK_TONGUE,
                    -1,
                    cv2.LINE_AA,
                    _SHIFT,
                )
        elif action == ACTION_REAR:
            for side in (1.0, -1.0):
                self._paw(
                    img, nose - fwd * 0.04 * L + left * side * (0.06 + 0.06 * rear) * L, 1.2 * paw_r, hd
                )

    def _paw(self, img: np.ndarray, p: np.ndarray, r: float, angle: float) -> None:
        cv2.ellipse(
            img,
            _pt(p),
            (int(r * 1.2 * _ONE), int(r * 0.85 * _ONE)),
            math.degrees(angle),
            0,
            360,
            self.paw,
            -1,
            cv2.LINE_AA,
            _SHIFT,
        )

    def _draw_spout(self, img: np.ndarray) -> None:
        base, tip = self.scene.spout.polygon
        L = self.scene.mean_length
        thick = max(2, int(round(0.09 * L)))
        cv2.line(img, _pt(base), _pt(tip), (95, 95, 100), thick + 2, cv2.LINE_AA, _SHIFT)
        cv2.line(img, _pt(base), _pt(tip), (185, 185, 190), thick, cv2.LINE_AA, _SHIFT)
        cv2.circle(img, _pt(tip), int(max(1.0, 0.06 * L) * _ONE), (120, 120, 125), -1, cv2.LINE_AA, _SHIFT)
