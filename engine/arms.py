"""Generation-time arm clean-up: a hand brushes past the legs, the trunk and the
other arm, never through them, an elbow stays out of the trunk, and an arm does not
snap.

A generator that moves its arms freely sometimes swings a forearm through a thigh
(hanging hands that sway inwards, a hand sweeping across the hips), through the
trunk (an arm folded across the chest) or through the other forearm, and tucks an
elbow into the belly or the sternum. Where a forearm comes within ARM_CLEAR of one
of those, or an upper arm of the torso (engine.validate's capsules, as a fraction of
their summed radii), ``separate_arms`` moves that wrist out of it by
two-bone IK on the arm, eased in and out, like engine.footwork.separate_shins does
for the shins. ``calm_arm_snaps`` then interpolates an arm across the frames where
it would break the validator's acceleration or jerk error limit.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d

from engine import joint_limits as JL
from engine import validate as V
from engine.motion import Motion
from engine.normalize import pelvis_left
from engine.repair import fade_frames, interp_frames, pop_joints, smooth_envelope, solve_legs
from engine.skeleton import JOINT, REST_HEIGHT

ARM_CLEAR = 0.35  # forearm and body axes kept this fraction of their radii apart (warning: 0.3)
ARM_MOVE_MAX = 0.12  # metres a wrist is moved at most
ARM_PASSES = 3
SIDES = (("L", "R"), ("R", "L"))  # the arm's side, the other side
TRUNK = ("torso", "chest")
ARM_JOINTS = [JOINT[f"{side}_{j}"] for side in "LR" for j in ("shoulder", "elbow", "wrist")]


def _pairs(arm: str, other: str) -> tuple[tuple[str, str], ...]:
    """(part of ``arm``, body capsule) pairs kept apart: the forearm from both thighs,
    the torso, the chest and the other forearm; the upper arm from the torso (an
    elbow tucked into the belly or the sternum)."""
    bodies = (f"{arm}_thigh", f"{other}_thigh") + TRUNK + (f"{other}_forearm",)
    return tuple((f"{arm}_forearm", body) for body in bodies) + ((f"{arm}_upperarm", "torso"),)


PAIRS = tuple(pair for arm, other in SIDES for pair in _pairs(arm, other))
SEGMENTS = {"forearm": ("elbow", "wrist"), "upperarm": ("shoulder", "elbow")}


def _wrist_push(P: np.ndarray, ratios: np.ndarray, arm: str, pairs) -> np.ndarray:
    """(T, 3) horizontal move taking each part of ``arm`` in ``pairs`` ARM_CLEAR clear
    of its body capsule where ``ratios`` (T, len(pairs)) says it is closer: away from
    the capsule's axis, and where the axes cross, forwards out of the trunk and
    outwards from a thigh or the other forearm. The wrist moves further the nearer
    the shoulder the touching point lies (an elbow moves about half as far as its
    wrist, the shoulder not at all)."""
    left = pelvis_left(P)
    outward = left * (1.0 if arm == "L" else -1.0)
    forward = np.cross(left, [0.0, 0.0, 1.0])
    push = np.zeros_like(P[:, 0])
    for k, (part, body) in enumerate(pairs):
        upper = part.endswith("upperarm")
        start, end = (JOINT[f"{arm}_{j}"] for j in SEGMENTS["upperarm" if upper else "forearm"])
        top, bottom, radius = V.CAPSULES[body]
        gap, s, _ = V.segment_gap(P[:, start], P[:, end], P[:, JOINT[top]], P[:, JOINT[bottom]])
        dist = np.linalg.norm(gap, axis=1)
        gap[:, 2] = 0.0
        if upper:  # an elbow leaves the belly forwards or to its side, never out of the back
            gap -= np.minimum(np.einsum("ti,ti->t", gap, forward), 0.0)[:, None] * forward
        side = np.linalg.norm(gap, axis=1, keepdims=True)
        crossing = forward if body in TRUNK else outward
        away = np.where(side > 0.01, gap / np.maximum(side, 1e-9), crossing)
        reach = V.CAPSULES[part][2] + radius
        need = np.where(ratios[:, k] < ARM_CLEAR, np.maximum(ARM_CLEAR * reach - dist, 0.0), 0.0)
        lever = np.maximum(s, 0.5) * (0.5 if upper else 1.0)
        push += away * (need / lever)[:, None]
    return push


def separate_arms(motion: Motion) -> Motion:
    """Where a forearm would pass through a thigh, the trunk or the other forearm, or an
    upper arm through the torso, move that wrist out of it (away from the body's axis,
    horizontally; forwards out of the trunk and outwards elsewhere where the axes
    cross) by two-bone IK on the arm, eased in and out by a smooth envelope. The arms'
    joints are then kept inside their hard limits (engine.joint_limits)."""
    if motion.frames < 3:
        return motion
    fade = fade_frames(motion.fps)
    q, root, P = motion.rotations, motion.root_translation, motion.positions
    n = len(PAIRS) // 2
    for _ in range(ARM_PASSES):
        ratios = V.capsule_ratios(P, 1.0, PAIRS)
        if not (ratios < ARM_CLEAR).any():
            break
        targets, weights = [], []
        for i, (arm, other) in enumerate(SIDES):
            push = _wrist_push(P, ratios[:, n * i:n * (i + 1)], arm, _pairs(arm, other))
            amount = np.minimum(np.linalg.norm(push, axis=1), ARM_MOVE_MAX)
            move = smooth_envelope(amount, 2 * fade + 1, fade / 2.0, mode="constant")
            way = gaussian_filter1d(push, fade / 2.0, axis=0)
            way /= np.maximum(np.linalg.norm(way, axis=1, keepdims=True), 1e-9)
            targets.append(P[:, JOINT[f"{arm}_wrist"]] + way * move[:, None])
            weights.append((move > 0).astype(float))
        q, P = solve_legs(q, root, P, targets, weights, limbs=("L_arm", "R_arm"))
    if q is motion.rotations:
        return motion
    _arms_inside_limits(q)  # a wrist moved out of the body can take its shoulder too far
    return Motion(q, root, motion.fps, motion.contacts, motion.name)


def _arms_inside_limits(q: np.ndarray) -> None:
    """The arm joints of local rotations ``q`` (in place) pulled inside their hard
    limits (engine.joint_limits); the rest of the body is left as it is."""
    clamped, _ = JL.clamp(q, "error")
    q[:, ARM_JOINTS] = clamped[:, ARM_JOINTS]


ARM_CHAINS = [[JOINT[f"{side}_{j}"] for j in ("collar", "shoulder", "elbow", "wrist", "hand")] for side in "LR"]
SNAP_MARGIN = 2  # frames interpolated beyond each side of a snap
SNAP_PASSES = 3


def calm_arm_snaps(motion: Motion) -> Motion:
    """Where a joint of an arm breaks the validator's acceleration or jerk error limit
    (a snap in the generator's output, which the amplitude scaling exaggerates), that
    arm's local rotations are interpolated across it, SNAP_MARGIN frames beyond each
    side (engine.repair's pop fix on the arm's joints only: the body and the feet stay
    as they are), then kept inside their hard limits."""
    T = motion.frames
    if T < 4 * SNAP_MARGIN:
        return motion
    q, root, P = motion.rotations.copy(), motion.root_translation, motion.positions
    changed = False
    for _ in range(SNAP_PASSES):
        bad = pop_joints(P, motion.fps, REST_HEIGHT, ("acceleration", "jerk"))
        snaps = [(joints, V.runs(bad[:, joints].any(1))) for joints in ARM_CHAINS]
        if not any(runs for _, runs in snaps):
            break
        for joints, runs in snaps:
            for s, e in runs:
                interp_frames(q, root, max(0, s - SNAP_MARGIN), min(T - 1, e + SNAP_MARGIN), joints=joints)
        changed = True
        _arms_inside_limits(q)  # the short way between two poses can bend an elbow backwards
        P = V.forward_kinematics(q, root, False)[0]
    return Motion(q, root, motion.fps, motion.contacts, motion.name) if changed else motion
