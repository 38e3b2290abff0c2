"""Motion <-> the generator's per-frame feature vector (see engine.model)."""

from __future__ import annotations

import numpy as np
import torch

from engine import rotations as R
from engine import skeleton as S
from engine.motion import Motion

ROOT_VELOCITY = slice(145, 147)  # horizontal root velocity (metres per frame)
CONTACT_SLICE = slice(147, 151)


def motion_to_features(motion: Motion) -> np.ndarray:
    """(T, 151): 6D local rotations, root height, root x/y velocity, contacts."""
    rot6d = R.matrix_to_sixd(motion.matrices).reshape(motion.frames, -1)
    root = motion.root_translation
    vel = np.diff(root[:, :2], axis=0, prepend=root[:1, :2])
    vel[0] = vel[1] if motion.frames > 1 else 0.0
    contacts = motion.contacts
    if contacts is None:
        from engine.metrics import planted

        contacts = planted(motion.positions, motion.fps)
    return np.concatenate([rot6d, root[:, 2:], vel, np.asarray(contacts, float)], 1).astype(np.float32)


def features_to_tensors(feats: torch.Tensor):
    """(…,T,151) -> local rotation matrices (…,T,24,3,3), root (…,T,3), contact logits.

    The root's x/y is the running sum of the predicted velocity.
    """
    rot = R.sixd_to_matrix(feats[..., :144].reshape(feats.shape[:-1] + (24, 6)))
    xy = torch.cumsum(feats[..., ROOT_VELOCITY], dim=-2)
    xy = xy - xy[..., :1, :]
    root = torch.cat([xy, feats[..., 144:145]], -1)
    return rot, root, feats[..., CONTACT_SLICE]


def features_to_motion(feats: np.ndarray, fps: float, name: str = "") -> Motion:
    """Decode generator features (T,151), contact logits included, to a Motion."""
    rot, root, logits = features_to_tensors(torch.from_numpy(np.asarray(feats, np.float64)))
    return Motion.from_matrices(rot.numpy(), root.numpy(), fps, contacts=logits.numpy() > 0, name=name)


def joint_positions(feats: torch.Tensor) -> torch.Tensor:
    """World joint positions (…,T,24,3) from features, differentiably."""
    rot, root, _ = features_to_tensors(feats)
    pos, _ = S.forward_kinematics(rot, root)
    return pos
