"""Generation-time arm clearance: a hand brushes past the legs, never through them.

A generator that moves its arms freely sometimes swings a forearm through a thigh
(hanging hands that sway inwards, a hand sweeping across the hips). Where a forearm
comes within ARM_CLEAR of a thigh (engine.validate's capsules, as a fraction of
their summed radii), ``separate_arms`` moves that wrist out of the leg by two-bone
IK on the arm, eased in and out, like engine.footwork.separate_shins does for the
shins.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d

from engine import validate as V
from engine.motion import Motion
from engine.normalize import pelvis_left
from engine.repair import fade_frames, smooth_envelope, solve_legs
from engine.skeleton import JOINT

ARM_CLEAR = 0.35  # forearm and thigh axes kept this fraction of their radii apart (warning: 0.3)
ARM_MOVE_MAX = 0.12  # metres a wrist is moved at most
ARM_PASSES = 3
SIDES = (("L", "R"), ("R", "L"))  # the arm's side, the other side
PAIRS = tuple((f"{arm}_forearm", f"{leg}_thigh") for arm, other in SIDES for leg in (arm, other))


def _wrist_push(P: np.ndarray, ratios: np.ndarray, arm: str, legs, reach: float) -> np.ndarray:
    """(T, 3) horizontal move taking ``arm``'s forearm ARM_CLEAR clear of each thigh in
    ``legs`` where ``ratios`` (T, len(legs)) says it is closer."""
    elbow, wrist = P[:, JOINT[f"{arm}_elbow"]], P[:, JOINT[f"{arm}_wrist"]]
    outward = pelvis_left(P) * (1.0 if arm == "L" else -1.0)
    push = np.zeros_like(wrist)
    for k, leg in enumerate(legs):
        gap, s, _ = V.segment_gap(elbow, wrist, P[:, JOINT[f"{leg}_hip"]], P[:, JOINT[f"{leg}_knee"]])
        dist = np.linalg.norm(gap, axis=1)
        gap[:, 2] = 0.0
        side = np.linalg.norm(gap, axis=1, keepdims=True)
        away = np.where(side > 0.01, gap / np.maximum(side, 1e-9), outward)  # axes crossing: outwards
        # the wrist moves further when the forearm touches the leg near its elbow
        need = np.where(ratios[:, k] < ARM_CLEAR, np.maximum(ARM_CLEAR * reach - dist, 0.0), 0.0)
        push += away * (need / np.maximum(s, 0.5))[:, None]
    return push


def separate_arms(motion: Motion) -> Motion:
    """Where a forearm would pass through a thigh, move that wrist out of the leg (away
    from the thigh's axis, sideways; outwards where the axes cross) by two-bone IK on
    the arm, eased in and out by a smooth envelope."""
    if motion.frames < 3:
        return motion
    fade = fade_frames(motion.fps)
    reach = V.CAPSULES["L_forearm"][2] + V.CAPSULES["L_thigh"][2]
    q, root, P = motion.rotations, motion.root_translation, motion.positions
    for _ in range(ARM_PASSES):
        ratios = V.capsule_ratios(P, 1.0, PAIRS)
        if not (ratios < ARM_CLEAR).any():
            break
        targets, weights = [], []
        for i, (arm, other) in enumerate(SIDES):
            push = _wrist_push(P, ratios[:, 2 * i:2 * i + 2], arm, (arm, other), reach)
            amount = np.minimum(np.linalg.norm(push, axis=1), ARM_MOVE_MAX)
            move = smooth_envelope(amount, 2 * fade + 1, fade / 2.0, mode="constant")
            way = gaussian_filter1d(push, fade / 2.0, axis=0)
            way /= np.maximum(np.linalg.norm(way, axis=1, keepdims=True), 1e-9)
            targets.append(P[:, JOINT[f"{arm}_wrist"]] + way * move[:, None])
            weights.append((move > 0).astype(float))
        q, P = solve_legs(q, root, P, targets, weights, limbs=("L_arm", "R_arm"))
    out = Motion(q, root, motion.fps, motion.contacts, motion.name)
    out._positions = P
    return out
