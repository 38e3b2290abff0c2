"""Put motion from any BVH skeleton onto the canonical SMPL-24 skeleton.

Each SMPL joint is tied to a source *anchor*: a source joint, or the End Site
of one (``"lFoot:end"``). Every SMPL bone is made to point exactly where the
source bone points in each frame. Its twist comes from a second direction
seen in the source positions (the hip or shoulder line for the spine, the
bend plane of the leg or arm for thighs, knees, upper arms and elbows, the
knee's axis for the foot), so it does not depend on the source's rest pose (the
CC_Base rig's rest has its legs pointing up). Where no second direction
exists (wrists), the source joint's rotation times a rest alignment gives
the twist. The result has SMPL's constant bone lengths. The root is scaled by the ratio of leg
lengths, then the motion is put on the floor and turned to face -Y.

Choreo's own SMPL-24 BVH (``engine generate --out X.bvh``) is read back as it was
written (``as_written_smpl24``): its rotations are already SMPL's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from engine import rotations as R
from engine import skeleton as S
from engine.bvh import BvhMotion, read_bvh, world_transforms
from engine.errors import ChoreoError
from engine.motion import Motion
from engine.normalize import normalize_floor_and_facing
from engine.skeleton import MAIN_CHILD

# A second direction fixes each joint's twist: (a, b) means the vector b -> a
# between anchors. Thighs, knees, ankles, upper arms and elbows use their
# limb's bend-plane normal instead (BEND): knees and elbows bend as hinges and
# the foot's left-right axis follows the knee's.
SECONDARY = {
    "pelvis": ("L_hip", "R_hip"), "spine1": ("L_hip", "R_hip"),
    "spine2": ("L_shoulder", "R_shoulder"), "spine3": ("L_shoulder", "R_shoulder"),
    "neck": ("L_shoulder", "R_shoulder"),
    "L_collar": ("neck", "spine3"), "R_collar": ("neck", "spine3"),
}
BEND = {joint: (f"{s}_{a}", f"{s}_{b}", f"{s}_{c}", normal)
        for s, sign in (("L", 1.0), ("R", -1.0))
        for (a, b, c), normal in (((("hip", "knee", "ankle")), (1.0, 0.0, 0.0)),
                                  ((("shoulder", "elbow", "wrist")), (0.0, 0.0, -sign)))
        for joint in (f"{s}_{a}", f"{s}_{b}", f"{s}_{c}") if joint[2:] != "wrist"}
MIN_BEND_DEGREES = 20.0  # straighter than this, the bend plane is not trusted

REQUIRED = ("pelvis", "L_hip", "R_hip", "L_knee", "R_knee", "L_ankle", "R_ankle", "spine3", "head",
            "L_shoulder", "R_shoulder", "L_elbow", "R_elbow", "L_wrist", "R_wrist")


def _sided(table: dict[str, str]) -> dict[str, str]:
    """Expand ``{"L_x": "l{...}"}``-style entries written once for both sides."""
    out = {}
    for smpl, src in table.items():
        if smpl.startswith("*_"):
            for side, lower, upper in (("L", "l", "L"), ("R", "r", "R")):
                out[f"{side}_{smpl[2:]}"] = src.format(s=lower, S=upper)
        else:
            out[smpl] = src
    return out


# Anchors per known source skeleton. Unlisted SMPL joints follow their parent.
SOURCE_MAPS = {
    "cmu_daz": _sided({  # CMU salsa (subjects 60/61), Daz-style names
        "pelvis": "hip", "spine1": "abdomen", "spine3": "chest", "neck": "neck", "head": "head",
        "*_hip": "{s}Thigh", "*_knee": "{s}Shin", "*_ankle": "{s}Foot", "*_foot": "{s}Foot:end",
        "*_collar": "{s}Collar", "*_shoulder": "{s}Shldr", "*_elbow": "{s}ForeArm",
        "*_wrist": "{s}Hand", "*_hand": "{s}Mid1",
    }),
    "cmu_asf": _sided({  # CMU's own ASF skeleton (subject 131)
        "pelvis": "root", "spine1": "lowerback", "spine2": "upperback", "spine3": "thorax",
        "neck": "lowerneck", "head": "head",
        "*_hip": "{s}femur", "*_knee": "{s}tibia", "*_ankle": "{s}foot", "*_foot": "{s}toes",
        "*_collar": "{s}clavicle", "*_shoulder": "{s}humerus", "*_elbow": "{s}radius",
        "*_wrist": "{s}wrist", "*_hand": "{s}hand",
    }),
    "cc_base": _sided({  # iClone Motion Dummy (CMU subject 05 retarget)
        "pelvis": "CC_Base_Hip", "spine1": "CC_Base_Waist", "spine2": "CC_Base_Spine01",
        "spine3": "CC_Base_Spine02", "neck": "CC_Base_NeckTwist01", "head": "CC_Base_Head",
        "*_hip": "CC_Base_{S}_Thigh", "*_knee": "CC_Base_{S}_Calf", "*_ankle": "CC_Base_{S}_Foot",
        "*_foot": "CC_Base_{S}_ToeBase", "*_collar": "CC_Base_{S}_Clavicle",
        "*_shoulder": "CC_Base_{S}_Upperarm", "*_elbow": "CC_Base_{S}_Forearm",
        "*_wrist": "CC_Base_{S}_Hand", "*_hand": "CC_Base_{S}_Mid1",
    }),
    "smpl24": {name: name for name in S.SMPL_NAMES},  # Choreo's own BVH (engine generate --out X.bvh)
    "smpl22": _sided({  # the shared SMPL-22 rest skeleton's names
        "pelvis": "root", "spine1": "lowerback", "spine2": "upperback", "spine3": "chest",
        "neck": "lowerneck", "head": "upperneck",
        "*_hip": "{s}hip", "*_knee": "{s}knee", "*_ankle": "{s}ankle", "*_foot": "{s}toe",
        "*_collar": "{s}clavicle", "*_shoulder": "{s}shoulder", "*_elbow": "{s}elbow",
        "*_wrist": "{s}wrist",
    }),
}


def choose_source_map(names: list[str]) -> tuple[str, dict[str, str]]:
    """The known source map that covers the most required joints of ``names``."""
    present = set(names)

    def covered(table):
        return [j for j in REQUIRED if table.get(j, "").split(":")[0] in present]

    best = max(SOURCE_MAPS, key=lambda k: len(covered(SOURCE_MAPS[k])))
    missing = [j for j in REQUIRED if j not in covered(SOURCE_MAPS[best])]
    if missing:
        raise ChoreoError(
            "cannot map this skeleton onto SMPL-24: no joint found for "
            + ", ".join(missing)
            + f" (closest known skeleton: {best}; joints in the file: {', '.join(names[:12])}...)"
        )
    return best, {j: a for j, a in SOURCE_MAPS[best].items() if a.split(":")[0] in present}


def _anchor_tracks(bvh, mapping, pos, world_rot):
    """World positions (T,3) and owning joint index of each SMPL joint's anchor.

    ``pos`` and ``world_rot`` are already Z-up; End Site offsets are converted here.
    """
    index = {n: i for i, n in enumerate(bvh.names)}
    tracks, owners = {}, {}
    for smpl, anchor in mapping.items():
        name, _, end = anchor.partition(":")
        j = index[name]
        owners[smpl] = j
        if end and j in bvh.end_sites:
            tracks[smpl] = pos[:, j] + world_rot[:, j] @ (S.Y_UP_TO_Z_UP @ bvh.end_sites[j])
        else:
            tracks[smpl] = pos[:, j]
    return tracks, owners


def _basis(primary: np.ndarray, secondary: np.ndarray) -> np.ndarray:
    """(..., 3, 3) orthonormal frames: column 0 along primary, column 1 towards secondary."""
    e1 = primary / np.linalg.norm(primary, axis=-1, keepdims=True)
    e2 = secondary - np.sum(secondary * e1, -1, keepdims=True) * e1
    e2 = e2 / np.linalg.norm(e2, axis=-1, keepdims=True)
    return np.stack([e1, e2, np.cross(e1, e2)], -1)


def _bend_normal(tracks, a: str, b: str, c: str) -> np.ndarray | None:
    """Per-frame unit normal of a limb's bend plane, filled in time where the
    limb is too straight to tell; None when it is never bent enough."""
    upper, lower = tracks[b] - tracks[a], tracks[c] - tracks[b]
    normal = np.cross(upper, lower)
    sin = np.linalg.norm(normal, axis=-1) / (np.linalg.norm(upper, axis=-1) * np.linalg.norm(lower, axis=-1))
    good = np.flatnonzero(sin > np.sin(np.radians(MIN_BEND_DEGREES)))
    if len(good) == 0:
        return None
    frames = np.arange(len(normal))
    filled = np.stack([np.interp(frames, good, normal[good, k]) for k in range(3)], -1)
    return filled / np.linalg.norm(filled, axis=-1, keepdims=True)


def _secondary(name: str, tracks, smpl_rest) -> tuple[np.ndarray, np.ndarray] | None:
    """(posed (T,3), rest (3,)) second directions for a joint, or None."""
    if name in BEND:
        a, b, c, rest_normal = BEND[name]
        if all(k in tracks for k in (a, b, c)):
            normal = _bend_normal(tracks, a, b, c)
            if normal is not None:
                return normal, np.array(rest_normal)
        return None
    if name in SECONDARY:
        a, b = SECONDARY[name]
        if a in tracks and b in tracks:
            return tracks[a] - tracks[b], smpl_rest[S.JOINT[a]] - smpl_rest[S.JOINT[b]]
    return None


def _mapped_child(joint: str, rest_tracks) -> str | None:
    """The nearest descendant along MAIN_CHILD whose anchor is mapped and not
    at the same rest position as ``joint``'s (CMU's lowerback sits on its root)."""
    child = MAIN_CHILD.get(joint)
    while child is not None and (
        child not in rest_tracks
        or np.linalg.norm(rest_tracks[child][0] - rest_tracks[joint][0]) < 1e-4
    ):
        child = MAIN_CHILD.get(child)
    return child


def retarget_to_smpl(bvh: BvhMotion, mapping: dict[str, str]) -> Motion:
    """Source BVH clip to an SMPL-24 Motion (before floor/facing normalisation)."""
    c = S.Y_UP_TO_Z_UP
    pos, world_rot = world_transforms(bvh.parents, bvh.offsets[None] + bvh.positions_channels,
                            bvh.local_rotations)
    tracks, owners = _anchor_tracks(bvh, mapping, pos @ c.T, c @ world_rot @ c.T)
    world_rot = c @ world_rot @ c.T
    identity = np.broadcast_to(np.eye(3), (1, len(bvh.names), 3, 3))
    rest_pos, rest_rot = world_transforms(bvh.parents, bvh.offsets[None], identity)
    rest_tracks, _ = _anchor_tracks(bvh, mapping, rest_pos @ c.T, c @ rest_rot @ c.T)
    smpl_rest = S.rest_positions()

    frames = bvh.n_frames
    glob = np.empty((frames, S.NUM_JOINTS, 3, 3))
    for j, name in enumerate(S.SMPL_NAMES):
        parent = S.SMPL_PARENTS[j]
        if name not in mapping:
            glob[:, j] = glob[:, parent] if parent >= 0 else np.eye(3)
            continue
        source_rot = world_rot[:, owners[name]]
        child = _mapped_child(name, rest_tracks)
        if child is None:  # leaf: take the source orientation as it is
            glob[:, j] = source_rot
            continue
        cj = S.JOINT[child]
        u = smpl_rest[cj] - smpl_rest[j]
        target = tracks[child] - tracks[name]
        second = _secondary(name, tracks, smpl_rest)
        if second is not None:  # both directions known: the frame is exact
            glob[:, j] = _basis(target, second[0]) @ _basis(u, second[1]).T
            continue
        align = R.rotation_between(u, rest_tracks[child][0] - rest_tracks[name][0])
        guess = source_rot @ align
        swing = R.rotation_between(guess @ u, target)
        glob[:, j] = swing @ guess

    local = np.empty_like(glob)
    local[:, 0] = glob[:, 0]
    local[:, 1:] = np.swapaxes(glob[:, S.SMPL_PARENTS[1:]], -1, -2) @ glob[:, 1:]

    leg = np.mean([
        np.linalg.norm(rest_tracks[f"{s}_knee"][0] - rest_tracks[f"{s}_hip"][0])
        + np.linalg.norm(rest_tracks[f"{s}_ankle"][0] - rest_tracks[f"{s}_knee"][0])
        for s in "LR"
    ])
    root = tracks["pelvis"] * (S.LEG_LENGTH / leg)
    return Motion.from_matrices(local, root, bvh.fps, name=Path(bvh.source).name)


def level_feet(motion: Motion) -> Motion:
    """Undo a constant foot pitch left by the source's foot-bone convention.

    Source feet end at the toe tip or at the ball, at various heights, so the
    SMPL foot bone can come out pitched. Per foot, the constant pitch about
    the ankle's left-right axis that makes the foot flat (toe below ankle by
    the rest-pose drop) in the median planted frame (both joints low and
    slow) is found on a 1° grid and applied to the ankle's local rotation.
    """
    pos = motion.positions
    rest = S.rest_positions()
    local = motion.matrices
    _, glob = S.forward_kinematics(torch.from_numpy(local), torch.from_numpy(motion.root_translation))
    glob = glob.numpy()
    pitch = R.axis_angle_to_matrix(np.outer(np.radians(np.arange(-40, 41)), [1.0, 0.0, 0.0]))
    for ankle, toe in ((S.JOINT["L_ankle"], S.JOINT["L_foot"]), (S.JOINT["R_ankle"], S.JOINT["R_foot"])):
        speed = np.linalg.norm(np.diff(pos[:, [ankle, toe], :2], axis=0), axis=-1).max(-1) * motion.fps
        low = pos[1:, ankle, 2] < np.percentile(pos[:, ankle, 2], 40)
        planted = np.flatnonzero((speed < 0.15) & low)
        if len(planted) < 10:
            continue
        drop = np.einsum("tk,akl,l->ta", glob[planted, ankle][:, 2], pitch, S.REST_OFFSETS[toe])
        error = np.abs(np.median(drop, axis=0) - (rest[toe, 2] - rest[ankle, 2]))
        local[:, ankle] = local[:, ankle] @ pitch[int(np.argmin(error))]
    return Motion.from_matrices(local, motion.root_translation, motion.fps, name=motion.name)


SNAP_SPEED = 8.0  # m/s: no joint of a dancer moves this fast
SNAP_WINDOW = 0.25  # s: how far into a take a start-up snap is looked for


def trim_start_snap(motion: Motion) -> Motion:
    """Drop the first frames of a take that snaps from the capture's T-pose
    into the performance (the CMU salsa takes do, in their first 5 frames)."""
    pos = motion.positions[: int(SNAP_WINDOW * motion.fps) + 1]
    speed = np.linalg.norm(np.diff(pos, axis=0), axis=-1).max(-1) * motion.fps
    fast = np.flatnonzero(speed > SNAP_SPEED)
    return motion if len(fast) == 0 else motion.slice(int(fast[-1]) + 1, motion.frames)


def bvh_to_motion(path, fps: float | None = None) -> Motion:
    """Load a BVH file of a known skeleton as a normalised SMPL-24 Motion."""
    bvh = read_bvh(path, fps=fps)
    source, mapping = choose_source_map(bvh.names)
    name = Path(path).name.split(".")[0]
    own = as_written_smpl24(bvh) if source == "smpl24" else None
    if own is not None:  # already on the floor, as generated: read back as it was written
        own.name = name
        return own
    motion = trim_start_snap(level_feet(retarget_to_smpl(bvh, mapping)))
    motion.name = name
    return normalize_floor_and_facing(motion)


def as_written_smpl24(bvh: BvhMotion) -> Motion | None:
    """Choreo's own SMPL-24 BVH (engine generate --out X.bvh) read back exactly: its
    local rotations and root, Z-up, in metres. None where its rest skeleton is not
    SMPL's up to scale (a re-export from another tool): that goes through
    retarget_to_smpl like any other source."""
    c = S.Y_UP_TO_Z_UP
    order = [bvh.names.index(n) for n in S.SMPL_NAMES]
    if not np.array_equal(np.asarray(bvh.parents)[order][1:], np.asarray(order)[S.SMPL_PARENTS[1:]]):
        return None
    offsets = np.asarray(bvh.offsets)[order] @ c.T
    scale = S.LEG_LENGTH / np.linalg.norm(offsets[[S.JOINT["L_knee"], S.JOINT["L_ankle"]]], axis=1).sum()
    if not np.allclose(offsets[1:] * scale, S.REST_OFFSETS[1:], atol=1e-4):
        return None
    local = c @ bvh.local_rotations[:, order] @ c.T
    root = (offsets[0] + bvh.positions_channels[:, order[0]] @ c.T) * scale
    return Motion.from_matrices(local, root, bvh.fps, name=Path(bvh.source).name)
