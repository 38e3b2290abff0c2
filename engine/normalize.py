"""Resampling in time, floor height and facing normalisation for SMPL-24 motion."""

from __future__ import annotations

import numpy as np

from engine import rotations as R
from engine import skeleton as S
from engine.errors import ChoreoError
from engine.motion import Motion


def resample_at(motion: Motion, frames: np.ndarray) -> Motion:
    """Sample ``motion`` at fractional frame indices (clamped to its range).

    Rotations are slerped between neighbouring frames, the root is
    interpolated linearly, contacts take the nearest frame. The fps is kept.
    """
    frames = np.clip(np.asarray(frames, dtype=np.float64), 0, motion.frames - 1)
    lo = np.floor(frames).astype(int)
    hi = np.minimum(lo + 1, motion.frames - 1)
    t = frames - lo
    rot = R.quat_slerp(motion.rotations[lo], motion.rotations[hi], np.broadcast_to(t[:, None], (len(t), 24)))
    root = motion.root_translation[lo] * (1 - t[:, None]) + motion.root_translation[hi] * t[:, None]
    contacts = None
    if motion.contacts is not None:
        contacts = motion.contacts[np.rint(frames).astype(int)]
    return Motion(rot, root, motion.fps, contacts, motion.name)


def resample(motion: Motion, fps: float) -> Motion:
    """The same motion at another frame rate (same duration)."""
    if fps <= 0:
        raise ChoreoError(f"fps must be positive, got {fps}")
    if np.isclose(fps, motion.fps):
        return motion
    count = max(1, int(np.floor((motion.frames - 1) * fps / motion.fps)) + 1)
    out = resample_at(motion, np.arange(count) * motion.fps / fps)
    out.fps = float(fps)
    return out


def pelvis_left(positions: np.ndarray) -> np.ndarray:
    """(T, 3) horizontal unit vector from the right hip to the left hip."""
    left = positions[:, S.JOINT["L_hip"]] - positions[:, S.JOINT["R_hip"]]
    left[:, 2] = 0.0
    return left / np.maximum(np.linalg.norm(left, axis=1, keepdims=True), 1e-9)


def facing_angle(positions: np.ndarray) -> np.ndarray:
    """(T,) heading of the body about +Z; 0 means facing -Y (the rest pose)."""
    left = positions[:, S.JOINT["L_hip"]] - positions[:, S.JOINT["R_hip"]]
    left += positions[:, S.JOINT["L_shoulder"]] - positions[:, S.JOINT["R_shoulder"]]
    # forward = left x up; the rest pose's forward is -Y
    return np.arctan2(left[:, 1], left[:, 0])


def floor_offset(positions: np.ndarray) -> float:
    """Height of the floor under a motion's feet.

    Per frame, the lowest foot joint is compared with where it sits when the
    foot is flat (toe 2 cm, ankle about 8 cm above the floor); the floor is
    the 5th percentile of that over the clip, robust to a few bad frames.
    """
    rest = S.rest_positions()
    ankle_h, toe_h = rest[S.JOINT["L_ankle"], 2], rest[S.JOINT["L_foot"], 2]
    z = positions[:, S.CONTACT_JOINTS, 2] - np.array([ankle_h, toe_h, ankle_h, toe_h])
    return float(np.percentile(z.min(axis=1), 5))


def rotate_about_z(motion: Motion, angle: float) -> Motion:
    """Rotate a whole motion about the world Z axis through the origin."""
    c, s = np.cos(angle), np.sin(angle)
    rz = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    local = motion.matrices
    local[:, 0] = rz @ local[:, 0]
    return Motion.from_matrices(local, motion.root_translation @ rz.T, motion.fps,
                                contacts=motion.contacts, name=motion.name)


def normalize_floor_and_facing(motion: Motion) -> Motion:
    """Face -Y at the first frame, start over the origin, feet on z = 0."""
    angle = float(np.median(facing_angle(motion.positions[: max(1, int(motion.fps // 2))])))
    out = rotate_about_z(motion, -angle)
    root = out.root_translation.copy()
    root[:, :2] -= root[0, :2]
    root[:, 2] -= floor_offset(out.positions)
    return Motion(out.rotations, root, out.fps, out.contacts, out.name)
