"""The canonical SMPL-24 skeleton, forward kinematics and mirroring.

Frame: metres, Z up, the character faces -Y and its left side is +X (Blender's
front view). At rest every joint frame is aligned with the world axes, so a
local rotation of identity everywhere is the rest T-pose, as in SMPL.

Rest offsets come from ``smpl22_rest.bvh`` (SMPL/AMASS topology with
SMPL-derived offsets, BSD, see ``rigs/LICENSES.md``): converted from Y-up to
Z-up, made left/right symmetric (mean of each pair, centre joints on x = 0)
so that mirroring is exact, with the two hand joints added 8 cm beyond the
wrists along the forearm.
"""

from __future__ import annotations

import numpy as np
import torch

SMPL_NAMES = (
    "pelvis", "L_hip", "R_hip", "spine1", "L_knee", "R_knee", "spine2", "L_ankle",
    "R_ankle", "spine3", "L_foot", "R_foot", "neck", "L_collar", "R_collar", "head",
    "L_shoulder", "R_shoulder", "L_elbow", "R_elbow", "L_wrist", "R_wrist", "L_hand", "R_hand",
)
SMPL_PARENTS = np.array(
    [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21]
)
NUM_JOINTS = 24
JOINT = {name: i for i, name in enumerate(SMPL_NAMES)}
# The child whose direction defines each joint's bone (leaves have none).
MAIN_CHILD = {
    "pelvis": "spine1", "spine1": "spine2", "spine2": "spine3", "spine3": "neck", "neck": "head",
    "L_hip": "L_knee", "L_knee": "L_ankle", "L_ankle": "L_foot",
    "R_hip": "R_knee", "R_knee": "R_ankle", "R_ankle": "R_foot",
    "L_collar": "L_shoulder", "L_shoulder": "L_elbow", "L_elbow": "L_wrist", "L_wrist": "L_hand",
    "R_collar": "R_shoulder", "R_shoulder": "R_elbow", "R_elbow": "R_wrist", "R_wrist": "R_hand",
}

# Offsets of smpl22_rest.bvh, Y-up metres, in SMPL order (hands added below).
_SMPL22_OFFSETS_YUP = np.array([
    [0.0, 0.0, 0.0],                  # pelvis   (root)
    [0.058581, -0.08228, -0.017664],  # L_hip    (lhip)
    [-0.06031, -0.090513, -0.013543],  # R_hip   (rhip)
    [0.004439, 0.124404, -0.038385],  # spine1   (lowerback)
    [0.043451, -0.386469, 0.008037],  # L_knee   (lknee)
    [-0.043257, -0.383688, -0.004843],  # R_knee (rknee)
    [0.004488, 0.137956, 0.02682],    # spine2   (upperback)
    [-0.01479, -0.426874, -0.037428],  # L_ankle (lankle)
    [0.019056, -0.420046, -0.034562],  # R_ankle (rankle)
    [-0.002265, 0.056032, 0.002855],  # spine3   (chest)
    [0.041054, -0.060286, 0.122042],  # L_foot   (ltoe)
    [-0.03484, -0.062106, 0.130323],  # R_foot   (rtoe)
    [-0.01339, 0.211636, -0.033468],  # neck     (lowerneck)
    [0.071702, 0.114, -0.018898],     # L_collar (lclavicle)
    [-0.082954, 0.112472, -0.023707],  # R_collar (rclavicle)
    [0.010113, 0.088937, 0.05041],    # head     (upperneck)
    [0.122921, 0.045205, -0.019046],  # L_shoulder
    [-0.113228, 0.046853, -0.008472],  # R_shoulder
    [0.255332, -0.015649, -0.022946],  # L_elbow
    [-0.260127, -0.014369, -0.031269],  # R_elbow
    [0.265709, 0.012698, -0.007375],  # L_wrist
    [-0.269108, 0.006794, -0.006027],  # R_wrist
])
HAND_LENGTH = 0.08
TOE_HEIGHT = 0.015  # rest height of the toe joints (ankles then sit 7.6 cm up, inside the 8 cm contact rule)

LEFT = np.array([1, 4, 7, 10, 13, 16, 18, 20, 22])
RIGHT = np.array([2, 5, 8, 11, 14, 17, 19, 21, 23])
MIRROR_INDEX = np.arange(NUM_JOINTS)
MIRROR_INDEX[LEFT], MIRROR_INDEX[RIGHT] = RIGHT, LEFT
MIRROR_MATRIX = np.diag([-1.0, 1.0, 1.0])  # reflection through the x = 0 plane

# Joints of the four foot-contact flags: left ankle, left toe, right ankle, right toe.
CONTACT_JOINTS = np.array([7, 10, 8, 11])

Y_UP_TO_Z_UP = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])


def _build_offsets() -> np.ndarray:
    zup = _SMPL22_OFFSETS_YUP @ Y_UP_TO_Z_UP.T
    mirrored = zup[MIRROR_INDEX[:22]] * [-1.0, 1.0, 1.0]
    sym = 0.5 * (zup + mirrored)
    centre = np.setdiff1d(np.arange(22), np.concatenate([LEFT, RIGHT]))
    sym[centre, 0] = 0.0
    hands = []
    for wrist in (20, 21):
        direction = sym[wrist] / np.linalg.norm(sym[wrist])
        hands.append(direction * HAND_LENGTH)
    offsets = np.concatenate([sym, np.array(hands)])
    leg = offsets[[1, 4, 7, 10], 2].sum()
    offsets[0] = [0.0, 0.0, -leg + TOE_HEIGHT]  # pelvis height at rest
    return offsets


REST_OFFSETS = _build_offsets()
"""(24, 3) offsets from each joint's parent; row 0 is the rest pelvis position."""


def rest_positions() -> np.ndarray:
    """(24, 3) world joint positions of the rest T-pose, toes TOE_HEIGHT above z = 0."""
    pos = np.zeros((NUM_JOINTS, 3))
    for j in range(NUM_JOINTS):
        parent = SMPL_PARENTS[j]
        pos[j] = REST_OFFSETS[j] + (pos[parent] if parent >= 0 else 0.0)
    return pos


REST_HEIGHT = float(rest_positions()[15, 2] + 0.1)
"""Approximate standing body height (head joint plus 10 cm), metres."""

LEG_LENGTH = float(np.linalg.norm(REST_OFFSETS[[4, 7]], axis=1).sum())
"""Hip to ankle length of the canonical skeleton, metres."""


def forward_kinematics(local_rot, root_translation, offsets=None):
    """World joint positions and rotations from local rotations.

    local_rot: (..., 24, 3, 3) torch tensor; root_translation: (..., 3), the
    pelvis position in world space. ``offsets`` defaults to REST_OFFSETS (row 0
    is ignored: the root sits at ``root_translation``). Returns
    (positions (..., 24, 3), global rotations (..., 24, 3, 3)). Differentiable.
    """
    if offsets is None:
        offsets = REST_OFFSETS
    offsets = torch.as_tensor(offsets, dtype=local_rot.dtype, device=local_rot.device)
    rots = [local_rot[..., 0, :, :]]
    pos = [root_translation]
    for j in range(1, local_rot.shape[-3]):
        parent = int(SMPL_PARENTS[j])
        rots.append(rots[parent] @ local_rot[..., j, :, :])
        pos.append(pos[parent] + (rots[parent] @ offsets[j].unsqueeze(-1)).squeeze(-1))
    return torch.stack(pos, -2), torch.stack(rots, -3)


def forward_kinematics_np(local_rot: np.ndarray, root_translation: np.ndarray) -> np.ndarray:
    """Numpy convenience wrapper: (T,24,3,3), (T,3) -> positions (T,24,3)."""
    pos, _ = forward_kinematics(torch.from_numpy(np.asarray(local_rot, dtype=np.float64)),
                                torch.from_numpy(np.asarray(root_translation, dtype=np.float64)))
    return pos.numpy()


def mirror(local_rot, root_translation):
    """Swap left and right with a reflection through the x = 0 plane.

    Works on numpy arrays or torch tensors of shape (..., 24, 3, 3) and
    (..., 3). Mirroring twice is the identity.
    """
    lib = torch if isinstance(local_rot, torch.Tensor) else np
    s = MIRROR_MATRIX if lib is np else torch.as_tensor(MIRROR_MATRIX, dtype=local_rot.dtype,
                                                          device=local_rot.device)
    rot = local_rot[..., MIRROR_INDEX, :, :]
    rot = s @ rot @ s
    trans = root_translation * s.diagonal()
    return rot, trans
