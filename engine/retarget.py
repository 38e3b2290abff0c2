"""Retarget canonical SMPL-24 motion onto an artist's armature (bpy-free, numpy).

Input: a :class:`~engine.motion.Motion` and the armature's rest pose as plain
arrays (:class:`TargetRest`, exported by ``blender_addon.rest_pose``). Output: a
:class:`RetargetResult` of per-bone local quaternions (exactly what
``pose_bone.rotation_quaternion`` takes) and a location curve for the root
bone (what ``pose_bone.location`` takes), vectorised over frames.

The method (derivation in docs/retarget.md):

* Everything happens in armature space. ``M`` (3x3) maps SMPL's frame (x =
  the character's left, y = its back, z = up) to the armature's: up is world
  +Z brought into armature space by the object's rotation, left is the rest
  pose's left-minus-right hip direction. A rotated, scaled or Y-up armature
  object is therefore handled, and the character dances facing its own front.
* A world-space delta from rest in SMPL (``G_j``, the joint's global rotation;
  SMPL's rest frames are world-aligned) becomes the armature-space delta
  ``D_j = M G_j M^T``. For limbs (collars, arms, legs, feet) a rest alignment
  ``A_j`` first turns the target bone's rest chord (its head to the head of the
  next mapped bone) onto SMPL's T-pose chord, so an A-pose rig is brought to
  SMPL's rest before the delta is applied; the torso keeps the rig's own rest
  posture (``A_j = I``). When the rig skips SMPL joints (no spine2, no neck), a
  swing ``F`` puts the chord on SMPL's actual joint-to-joint direction, so the
  mapped joints still land where SMPL's are. The bone's posed armature
  orientation is ``O_b = Q_b R_b`` with ``Q_b = F D_j A_j``.
* The pose-space rotation is ``B_b = R_b^T Q_p^T Q_b R_b`` where ``R_b`` is the
  bone's rest (``bone.matrix_local``) rotation and ``Q_p`` the delta of its
  (effective) mapped parent: the bones in between are unmapped, so they stay
  at rest relative to it and carry no keys.
* Root: the mid-point of the hip joints follows SMPL's, scaled by the ratio of
  leg lengths (hip to ankle), about the rig's own rest hips, so the rest hip
  height is kept and the feet reach the floor; ``ground`` lifts the root on
  frames where proportion differences would push a foot below the rig's rest
  floor. Optional ``foot_lock`` pins planted ankles with two-bone IK.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine import rotations as R
from engine import skeleton as S
from engine.errors import ChoreoError
from engine.motion import Motion
from engine import rigs as rigs_mod

REST_FORMAT = "choreo.rest_pose"
CURVES_META_KEY = "meta"

# For each SMPL joint, the joints further along its chain, nearest first: the
# chord of a mapped bone runs to the first of them that is mapped.
CHAIN_NEXT = {
    "pelvis": ["spine1", "spine2", "spine3", "neck", "head"],
    "spine1": ["spine2", "spine3", "neck", "head"],
    "spine2": ["spine3", "neck", "head"],
    "spine3": ["neck", "head"],
    "neck": ["head"],
    "head": [],
}
for _s in "LR":
    CHAIN_NEXT.update({
        f"{_s}_collar": [f"{_s}_shoulder", f"{_s}_elbow", f"{_s}_wrist"],
        f"{_s}_shoulder": [f"{_s}_elbow", f"{_s}_wrist"],
        f"{_s}_elbow": [f"{_s}_wrist", f"{_s}_hand"],
        f"{_s}_wrist": [f"{_s}_hand"],
        f"{_s}_hand": [],
        f"{_s}_hip": [f"{_s}_knee", f"{_s}_ankle"],
        f"{_s}_knee": [f"{_s}_ankle", f"{_s}_foot"],
        f"{_s}_ankle": [f"{_s}_foot"],
        f"{_s}_foot": [],
    })
TORSO = ("pelvis", "spine1", "spine2", "spine3", "neck", "head")
FOOT_JOINTS = ("L_ankle", "R_ankle", "L_foot", "R_foot")
J = S.JOINT


# --------------------------------------------------------------------------- data

@dataclass
class TargetRest:
    """An armature's rest pose as plain arrays (see blender_addon.rest_pose).

    ``rest_matrices``: (B, 4, 4) ``bone.matrix_local`` (armature space; the
    bone points along its local +Y). ``object_matrix``: the armature object's
    ``matrix_world``. ``parents``: index of each bone's parent, -1 for roots.
    """

    names: list[str]
    parents: np.ndarray
    rest_matrices: np.ndarray
    object_matrix: np.ndarray = field(default_factory=lambda: np.eye(4))
    rotation_modes: list[str] | None = None
    lengths: np.ndarray | None = None
    inherit_rotation: np.ndarray | None = None
    name: str = ""
    mapping: dict | None = None  # a custom bone map stored on the armature
    preset: str | None = None  # a preset chosen for the armature
    custom_properties: dict | None = None  # pose bone -> names of its custom properties

    def __post_init__(self):
        self.names = [str(n) for n in self.names]
        b = len(self.names)
        self.parents = np.asarray(self.parents, dtype=np.int64).reshape(-1)
        self.rest_matrices = np.asarray(self.rest_matrices, dtype=np.float64).reshape(b, 4, 4)
        self.object_matrix = np.asarray(self.object_matrix, dtype=np.float64).reshape(4, 4)
        if len(self.parents) != b:
            raise ChoreoError(f"rest pose: {b} bone names but {len(self.parents)} parents")
        if b == 0:
            raise ChoreoError("the armature has no bones")
        if np.any(self.parents >= b) or np.any(self.parents < -1):
            raise ChoreoError("rest pose: a parent index is out of range")
        if not np.isfinite(self.rest_matrices).all() or not np.isfinite(self.object_matrix).all():
            raise ChoreoError("rest pose contains NaN or infinite values")
        if self.lengths is None:
            self.lengths = self._guess_lengths()
        self.lengths = np.asarray(self.lengths, dtype=np.float64).reshape(b)
        if self.inherit_rotation is None:
            self.inherit_rotation = np.ones(b, dtype=bool)
        self.inherit_rotation = np.asarray(self.inherit_rotation, dtype=bool).reshape(b)
        if self.rotation_modes is None:
            self.rotation_modes = ["QUATERNION"] * b
        if isinstance(self.mapping, str):
            self.mapping = rigs_mod.mapping_from_json(self.mapping)

    def _guess_lengths(self):
        heads = self.rest_matrices[:, :3, 3]
        out = np.full(len(self.names), 0.1)
        for i, p in enumerate(self.parents):
            if p >= 0:
                out[p] = max(np.linalg.norm(heads[i] - heads[p]), 1e-3)
        return out

    @property
    def index(self) -> dict[str, int]:
        return {n: i for i, n in enumerate(self.names)}

    @property
    def rotations(self) -> np.ndarray:
        """(B, 3, 3) rest rotations, orthonormalised."""
        return _orthonormal(self.rest_matrices[:, :3, :3])

    @property
    def heads(self) -> np.ndarray:
        return self.rest_matrices[:, :3, 3].copy()

    @property
    def tails(self) -> np.ndarray:
        return self.heads + self.rotations[:, :, 1] * self.lengths[:, None]

    @classmethod
    def from_dict(cls, data: dict) -> "TargetRest":
        """From ``blender_addon.rest_pose.export_rest`` output (or its JSON)."""
        if not isinstance(data, dict):
            raise ChoreoError("rest pose must be a JSON object from the add-on's rest-pose export")
        missing = [k for k in ("names", "parents", "rest_matrices") if k not in data]
        if missing:
            raise ChoreoError(f"rest pose is missing {', '.join(missing)}")
        parents = data["parents"]
        names = list(data["names"])
        if parents and isinstance(parents[0], str) or any(isinstance(p, str) for p in parents):
            lookup = {n: i for i, n in enumerate(names)}
            parents = [lookup.get(p, -1) if p else -1 for p in parents]
        parents = [-1 if p is None else p for p in parents]
        return cls(names=names, parents=parents, rest_matrices=data["rest_matrices"],
                   object_matrix=data.get("object_matrix", np.eye(4)),
                   rotation_modes=data.get("rotation_modes"), lengths=data.get("lengths"),
                   inherit_rotation=data.get("inherit_rotation"), name=str(data.get("armature") or ""),
                   mapping=data.get("mapping") or None, preset=data.get("preset") or None,
                   custom_properties=data.get("custom_properties"))

    def to_dict(self) -> dict:
        return {"format": REST_FORMAT, "version": 1, "armature": self.name, "names": self.names,
                "parents": self.parents.tolist(), "rest_matrices": self.rest_matrices.tolist(),
                "lengths": self.lengths.tolist(), "object_matrix": self.object_matrix.tolist(),
                "rotation_modes": list(self.rotation_modes),
                "inherit_rotation": self.inherit_rotation.tolist(), "mapping": self.mapping,
                "preset": self.preset, "custom_properties": self.custom_properties}

    @classmethod
    def coerce(cls, rest) -> "TargetRest":
        if isinstance(rest, TargetRest):
            return rest
        if isinstance(rest, (str, Path)):
            try:
                rest = json.loads(Path(rest).read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise ChoreoError(f"cannot read rest pose {rest}: {exc}") from exc
        return cls.from_dict(rest)


@dataclass
class RetargetResult:
    """Curves for the target armature, sampled at the motion's frames and fps.

    ``rotations[bone]``: (T, 4) wxyz, ``pose_bone.rotation_quaternion`` values
    (hemisphere-continuous). ``locations[bone]``: (T, 3) ``pose_bone.location``
    (the root bone only). ``set_properties``: {pose bone: {property: value}} to
    set once (e.g. Rigify's IK/FK switches to FK), for the keying step.
    """

    fps: float
    frames: int
    rotations: dict[str, np.ndarray] = field(default_factory=dict)
    locations: dict[str, np.ndarray] = field(default_factory=dict)
    preset: str | None = None
    confidence: float | None = None
    unmapped: list[str] = field(default_factory=list)
    mapping: dict = field(default_factory=dict)
    set_properties: dict[str, dict[str, float]] = field(default_factory=dict)
    root_bone: str | None = None
    scale: float = 1.0  # target leg length / SMPL leg length (armature units per metre of SMPL)


def save_curves(path, result: RetargetResult) -> None:
    """Write ``rot:<bone>``, ``loc:<bone>``, ``fps`` (+ a JSON ``meta`` string) to .npz."""
    arrays = {"fps": np.float64(result.fps)}
    for name, q in result.rotations.items():
        arrays[f"rot:{name}"] = np.asarray(q, dtype=np.float32)
    for name, x in result.locations.items():
        arrays[f"loc:{name}"] = np.asarray(x, dtype=np.float32)
    meta = {"preset": result.preset, "confidence": result.confidence, "unmapped": result.unmapped,
            "mapping": result.mapping, "set_properties": result.set_properties,
            "root_bone": result.root_bone, "scale": result.scale, "frames": result.frames}
    arrays[CURVES_META_KEY] = np.array(json.dumps(meta))
    with open(path, "wb") as fh:
        np.savez_compressed(fh, **arrays)


def load_curves(path) -> RetargetResult:
    """Read :func:`save_curves` output."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if "fps" not in data.files:
                raise ChoreoError(f"{path}: not a Choreo curves file (no 'fps')")
            rot = {k[4:]: data[k].astype(np.float64) for k in data.files if k.startswith("rot:")}
            loc = {k[4:]: data[k].astype(np.float64) for k in data.files if k.startswith("loc:")}
            meta = json.loads(str(data[CURVES_META_KEY])) if CURVES_META_KEY in data.files else {}
            fps = float(np.asarray(data["fps"]).reshape(-1)[0])
    except (OSError, ValueError) as exc:
        raise ChoreoError(f"{path}: cannot read curves ({exc})") from exc
    frames = next((len(a) for a in (*rot.values(), *loc.values())), int(meta.get("frames") or 0))
    return RetargetResult(fps=fps, frames=frames, rotations=rot, locations=loc,
                          preset=meta.get("preset"), confidence=meta.get("confidence"),
                          unmapped=list(meta.get("unmapped") or []), mapping=meta.get("mapping") or {},
                          set_properties=meta.get("set_properties") or {}, root_bone=meta.get("root_bone"),
                          scale=float(meta.get("scale") or 1.0))


# --------------------------------------------------------------------------- math helpers

def _orthonormal(m: np.ndarray) -> np.ndarray:
    """Nearest rotations (polar decomposition) of (..., 3, 3) matrices."""
    u, _, vt = np.linalg.svd(m)
    r = u @ vt
    det = np.linalg.det(r)
    if np.any(det < 0):
        u = u.copy()
        u[det < 0, :, -1] *= -1
        r = u @ vt
    return r


def _unit(v):
    v = np.asarray(v, dtype=np.float64)
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def _rot_between(u, v):
    return R.rotation_between(u, v)


def _fractional(m: np.ndarray, t: float) -> np.ndarray:
    """m^t for rotation matrices (..., 3, 3), by scaling the axis-angle."""
    return R.axis_angle_to_matrix(R.matrix_to_axis_angle(m) * t)


def quat_continuous(q: np.ndarray) -> np.ndarray:
    """Flip signs so consecutive quaternions are on the same hemisphere."""
    q = np.array(q, dtype=np.float64)
    if len(q) < 2:
        return q
    dots = np.sum(q[1:] * q[:-1], -1)
    flips = np.cumprod(np.where(dots < 0, -1.0, 1.0))
    q[1:] *= flips[:, None]
    return q


def smpl_globals(motion: Motion) -> np.ndarray:
    """(T, 24, 3, 3) world rotations of the SMPL joints."""
    local = motion.matrices
    g = np.empty_like(local)
    for j in range(S.NUM_JOINTS):
        p = S.SMPL_PARENTS[j]
        g[:, j] = local[:, j] if p < 0 else g[:, p] @ local[:, j]
    return g


# --------------------------------------------------------------------------- plan

@dataclass
class RetargetPlan:
    """Everything that depends only on the rest pose and the bone map."""

    rest: TargetRest
    mapping: dict[str, list[str]]
    groups: dict[str, list[int]]  # joint -> bone indices, root-most first
    eff_parent: dict[int, int]  # mapped bone -> mapped bone it follows (-1: none)
    chord: dict[str, tuple[str | None, int | None, np.ndarray]]  # joint -> (smpl end, bone, target chord)
    align: dict[str, np.ndarray]  # joint -> A_j (3, 3)
    M: np.ndarray  # SMPL frame -> armature frame
    up: np.ndarray
    scale: float
    root: int  # top mapped bone above the hips (usually the pelvis bone): its head is solved for
    root_motion: int  # bone whose location is keyed
    floor: float  # rest floor height along `up` (armature units)
    preset: str | None = None
    confidence: float | None = None
    unmapped: list[str] = field(default_factory=list)
    set_properties: dict = field(default_factory=dict)

    @property
    def order(self) -> list[str]:
        depth = self._depth
        return sorted(self.groups, key=lambda j: (depth(self.groups[j][0]), J[j]))

    def _depth(self, b: int) -> int:
        d = 0
        while b >= 0:
            b = self.eff_parent.get(b, -1) if b in self.eff_parent else -1
            d += 1
        return d


def _ancestors(parents: np.ndarray, b: int) -> list[int]:
    out = []
    p = parents[b]
    while p >= 0:
        out.append(int(p))
        p = parents[p]
    return out


def _eff_ancestors(eff_parent: dict[int, int], b: int) -> list[int]:
    out = []
    b = eff_parent.get(b, -1)
    while b >= 0:
        out.append(b)
        b = eff_parent.get(b, -1)
    return out


def resolve_mapping(rest: TargetRest, mapping=None, preset=None, presets=None):
    """(mapping as lists, preset object or None, confidence, unmapped) for a rest pose."""
    presets = rigs_mod.load_presets() if presets is None else presets
    chosen = None
    confidence = None
    if mapping is None and preset is None and rest.mapping:
        mapping = rest.mapping
        preset = rest.preset
    if isinstance(preset, str):
        if preset not in presets:
            raise ChoreoError(f"no rig preset named {preset!r}; the presets are: {', '.join(sorted(presets))}")
        chosen = presets[preset]
    elif isinstance(preset, rigs_mod.RigPreset):
        chosen = preset
    if mapping is None:
        if chosen is not None:
            det = rigs_mod.match_preset(chosen, rest.names, rest.parents)
        else:
            det = rigs_mod.detect(rest.names, rest.parents, presets)
            chosen = presets.get(det.preset)
        mapping, confidence = det.mapping, det.confidence
    clean = rigs_mod._clean_mapping(dict(mapping), "bone map")
    rigs_mod.require_mapping(clean, rest.names, presets)
    unmapped = [j for j in S.SMPL_NAMES if j not in clean]
    return clean, chosen, confidence, unmapped


def plan_retarget(rest, mapping=None, preset=None, presets=None) -> RetargetPlan:
    """Resolve the bone map and compute the rest-only parts of the retarget."""
    rest = TargetRest.coerce(rest)
    mapping, chosen, confidence, unmapped = resolve_mapping(rest, mapping, preset, presets)
    idx = rest.index
    parents = rest.parents
    H = rest.heads

    # groups, root-most first, and checks
    groups: dict[str, list[int]] = {}
    owner: dict[int, str] = {}
    for joint, bones in mapping.items():
        ids = [idx[b] for b in bones]
        ids.sort(key=lambda b: len(_ancestors(parents, b)))
        for a, b in zip(ids, ids[1:]):
            if a not in _ancestors(parents, b):
                raise ChoreoError(f"bone map: the bones of {joint!r} ({', '.join(bones)}) must form one chain "
                                  f"({rest.names[b]!r} does not descend from {rest.names[a]!r})")
        for b in ids:
            if b in owner:
                raise ChoreoError(f"bone map: bone {rest.names[b]!r} is mapped to both {owner[b]!r} and {joint!r}")
            owner[b] = joint
        groups[joint] = ids

    overrides = dict(chosen.parent_overrides) if chosen is not None else {}
    eff_parent: dict[int, int] = {}
    for b in owner:
        name = rest.names[b]
        if name in overrides and overrides[name] in idx and idx[overrides[name]] in owner:
            eff_parent[b] = idx[overrides[name]]
            continue
        eff_parent[b] = next((a for a in _ancestors(parents, b) if a in owner), -1)

    # character frame: up from the object's rotation, left from the hips
    W = _orthonormal(rest.object_matrix[:3, :3])
    up = W.T @ np.array([0.0, 0.0, 1.0])
    left = H[groups["L_hip"][0]] - H[groups["R_hip"][0]]
    for a, b in (("L_shoulder", "R_shoulder"), ("L_collar", "R_collar")):
        if np.linalg.norm(left - np.dot(left, up) * up) > 1e-6:
            break
        if a in groups and b in groups:
            left = H[groups[a][0]] - H[groups[b][0]]
    left = left - np.dot(left, up) * up
    if np.linalg.norm(left) < 1e-9:
        raise ChoreoError("cannot tell the rig's left from its right: its hip bones sit on the vertical axis")
    left = _unit(left)
    M = np.stack([left, np.cross(up, left), up], -1)

    p0 = S.rest_positions()
    chord: dict[str, tuple] = {}
    align: dict[str, np.ndarray] = {}
    for joint, ids in groups.items():
        first, last = ids[0], ids[-1]
        end_joint, end_bone = None, None
        for k in CHAIN_NEXT[joint]:
            if k in groups and groups[k][0] not in ids and first in _eff_ancestors(eff_parent, groups[k][0]):
                end_joint, end_bone = k, groups[k][0]
                break
        if end_bone is not None:
            d_t = H[end_bone] - H[first]
            smpl_end = end_joint
        else:
            d_t = rest.tails[last] - H[first]
            natural = CHAIN_NEXT[joint][:1]
            smpl_end = natural[0] if natural else None
        if smpl_end is None or np.linalg.norm(d_t) < 1e-9:
            chord[joint] = (None, None, d_t)
            align[joint] = np.eye(3)
            continue
        d_s = M @ (p0[J[smpl_end]] - p0[J[joint]])
        chord[joint] = (smpl_end, end_bone, d_t)
        # The torso keeps the rig's own rest posture (both stand upright; a chord
        # match would lean the rig by its anatomical differences to SMPL); limbs
        # are turned onto SMPL's T-pose directions (A-pose arms, splayed legs).
        align[joint] = np.eye(3) if joint in TORSO else _rot_between(d_t, d_s)

    # scale: leg length (hip -> knee -> ankle) against SMPL's
    legs = []
    for s in "LR":
        hip, knee = H[groups[f"{s}_hip"][0]], H[groups[f"{s}_knee"][0]]
        if f"{s}_ankle" in groups:
            ankle = H[groups[f"{s}_ankle"][0]]
        else:
            kb = groups[f"{s}_knee"][-1]
            ankle = rest.tails[kb]
        legs.append(np.linalg.norm(knee - hip) + np.linalg.norm(ankle - knee))
    scale = float(np.mean(legs) / S.LEG_LENGTH)
    if not np.isfinite(scale) or scale <= 1e-6:
        raise ChoreoError("the rig's legs have no length: check the thigh and shin bones")

    # the top of the mapped tree above the hips: its head is solved for each frame
    root = groups["L_hip"][0]
    while eff_parent[root] >= 0:
        root = eff_parent[root]
    # the bone keyed with the location: the root itself, or an unmapped bone above
    # every top-level mapped bone (rigs whose legs or spine are not under the hips)
    tops = [b for b in owner if eff_parent[b] < 0]
    root_motion = root
    if len(tops) > 1:
        common = set(_ancestors(parents, tops[0]) + [tops[0]])
        for b in tops[1:]:
            common &= set(_ancestors(parents, b) + [b])
        common -= set(owner)
        if not common:
            names = ", ".join(rest.names[b] for b in tops)
            raise ChoreoError(f"the mapped bones ({names}) have no common parent bone to carry the root motion")
        root_motion = max(common, key=lambda b: len(_ancestors(parents, b)))
    wanted = chosen.root_motion_bone if chosen is not None else None
    if wanted and wanted in idx:
        w = idx[wanted]
        if w == root_motion or (w in _ancestors(parents, root_motion) and w not in owner):
            root_motion = w
    pts = np.concatenate([H, rest.tails]) @ up
    floor = float(pts.min())
    set_properties = {}
    for bone, props in (chosen.set_properties if chosen is not None else {}).items():
        if bone not in idx:
            continue
        known = None if rest.custom_properties is None else set(rest.custom_properties.get(bone, ()))
        kept = {k: v for k, v in props.items() if known is None or k in known}
        if kept:
            set_properties[bone] = kept
    return RetargetPlan(rest=rest, mapping=mapping, groups=groups, eff_parent=eff_parent, chord=chord,
                        align=align, M=M, up=up, scale=scale, root=root, root_motion=root_motion, floor=floor,
                        preset=chosen.name if chosen is not None else rigs_mod.CUSTOM,
                        confidence=confidence, unmapped=unmapped,
                        set_properties=set_properties)


# --------------------------------------------------------------------------- solve

def _joint_deltas(plan: RetargetPlan, G: np.ndarray, P: np.ndarray) -> dict[str, np.ndarray]:
    """Q_j = F D_j A_j per mapped joint, (T, 3, 3)."""
    M = plan.M
    p0 = S.rest_positions()
    out = {}
    for joint in plan.groups:
        j = J[joint]
        D = M @ G[:, j] @ M.T
        Q = D @ plan.align[joint]
        end, _, _ = plan.chord[joint]
        if end is not None and S.SMPL_PARENTS[J[end]] != j and joint != "pelvis":
            rest_c = M @ (p0[J[end]] - p0[j])
            now_c = (P[:, J[end]] - P[:, j]) @ M.T
            Q = _rot_between(D @ rest_c, now_c) @ Q
        out[joint] = Q
    return out


def _bone_deltas(plan: RetargetPlan, Qj: dict[str, np.ndarray], distribute: bool) -> dict[int, np.ndarray]:
    """Per mapped bone Q_b; chains of several bones share their joint's rotation."""
    H = plan.rest.heads
    T = next(iter(Qj.values())).shape[0]
    eye = np.broadcast_to(np.eye(3), (T, 3, 3))
    Qb: dict[int, np.ndarray] = {}
    for joint in plan.order:
        ids = plan.groups[joint]
        Q = Qj[joint]
        if len(ids) == 1 or not distribute:
            for b in ids:
                Qb[b] = Q
            continue
        pe = plan.eff_parent[ids[0]]
        Qp = Qb.get(pe, eye) if pe >= 0 else eye
        L = np.swapaxes(Qp, -1, -2) @ Q
        n = len(ids)
        for i, b in enumerate(ids, 1):
            Qb[b] = Qp @ _fractional(L, i / n) if i < n else Q
        # aim the last bone so the next mapped joint lands where the whole-chain rotation puts it
        _, end_bone, _ = plan.chord[joint]
        if end_bone is not None:
            head = np.zeros((T, 3))
            for a, b in zip(ids, ids[1:]):
                head = head + Qb[a] @ (H[b] - H[a])
            last = ids[-1]
            want = Q @ (H[end_bone] - H[ids[0]]) - head
            have = Qb[last] @ (H[end_bone] - H[last])
            Qb[last] = _rot_between(have, want) @ Qb[last]
    return Qb


def _posed_heads(plan: RetargetPlan, Qb: dict[int, np.ndarray], root_head: np.ndarray) -> dict[int, np.ndarray]:
    """Armature-space heads (T, 3) of the mapped bones, given the root bone's head."""
    H = plan.rest.heads
    parents = plan.rest.parents
    out: dict[int, np.ndarray] = {}

    def head(b):
        if b in out:
            return out[b]
        pe = plan.eff_parent[b]
        if b == plan.root:
            h = root_head
        elif pe >= 0:
            h = head(pe) + (Qb[pe] @ (H[b] - H[pe]))
        elif plan.root_motion in _ancestors(parents, b):
            h = H[b] + (root_head - H[plan.root])
        else:
            h = np.broadcast_to(H[b], root_head.shape).copy()
        out[b] = h
        return h

    for b in plan.eff_parent:
        head(b)
    return out


def _foot_points(plan: RetargetPlan, Qb, heads) -> np.ndarray:
    """(T, K, 3) armature-space points of the feet: heads and tails of the foot bones."""
    rest = plan.rest
    pts = []
    for joint in FOOT_JOINTS:
        for b in plan.groups.get(joint, []):
            pts.append(heads[b])
            pts.append(heads[b] + Qb[b] @ (rest.tails[b] - rest.heads[b]))
    if not pts:
        for s in "LR":
            b = plan.groups[f"{s}_knee"][-1]
            pts.append(heads[b] + Qb[b] @ (rest.tails[b] - rest.heads[b]))
    return np.stack(pts, 1)


def _hip_mid(plan, heads):
    return 0.5 * (heads[plan.groups["L_hip"][0]] + heads[plan.groups["R_hip"][0]])


def retarget(motion: Motion, rest, mapping=None, preset=None, *, ground: bool = True,
             foot_lock: bool = False, distribute: bool = True, presets=None) -> RetargetResult:
    """Retarget ``motion`` onto the armature described by ``rest``.

    ``rest``: a :class:`TargetRest`, the dict from ``export_rest`` or a path to its
    JSON. ``mapping``: {SMPL joint: bone or [bones]}; default: the armature's stored
    custom map, else the ``preset`` (name), else auto-detection. ``ground``: lift
    the root where a foot would go below the rig's rest floor. ``foot_lock``: pin
    the ankles while the motion's contact flags are set (two-bone IK on thigh and
    shin). ``distribute``: spread a joint's rotation over the bones of a chain
    mapped to it (UE5's spine_01/spine_02); otherwise the chain turns rigidly.
    """
    if not isinstance(motion, Motion):
        raise ChoreoError("retarget needs a Motion")
    plan = rest if isinstance(rest, RetargetPlan) else plan_retarget(rest, mapping, preset, presets)
    rest = plan.rest
    T = motion.frames
    G = smpl_globals(motion)
    P = motion.positions
    Qj = _joint_deltas(plan, G, P)
    Qb = _bone_deltas(plan, Qj, distribute)

    # root: the hips' mid-point follows SMPL's, scaled, about the rig's rest hips
    H = rest.heads
    zero = np.zeros((T, 3))
    rel = _hip_mid(plan, _posed_heads(plan, Qb, zero))  # hip mid-point with the root head at 0
    rest_mid = 0.5 * (H[plan.groups["L_hip"][0]] + H[plan.groups["R_hip"][0]])
    smpl_mid = 0.5 * (P[:, J["L_hip"]] + P[:, J["R_hip"]])
    smpl_rest_mid = 0.5 * (S.rest_positions()[J["L_hip"]] + S.rest_positions()[J["R_hip"]])
    want_mid = rest_mid + plan.scale * ((smpl_mid - smpl_rest_mid) @ plan.M.T)
    root_head = want_mid - rel

    if foot_lock:
        Qb, root_head = _lock_feet(plan, motion, Qb, root_head)
    if ground:
        heads = _posed_heads(plan, Qb, root_head)
        low = (_foot_points(plan, Qb, heads) @ plan.up).min(1)
        lift = np.maximum(plan.floor - low, 0.0)
        root_head = root_head + lift[:, None] * plan.up

    # pose-space values
    Rr = rest.rotations
    rotations = {}
    eye = np.eye(3)
    for b, Q in Qb.items():
        pe = plan.eff_parent[b]
        Qp = Qb[pe] if pe >= 0 and rest.inherit_rotation[b] else eye
        basis = Rr[b].T @ np.swapaxes(Qp, -1, -2) @ Q @ Rr[b]
        rotations[rest.names[b]] = quat_continuous(R.matrix_to_quat(np.ascontiguousarray(basis)))
    rm = plan.root_motion
    loc = (root_head - H[plan.root]) @ Rr[rm]  # R_rm^T (head - rest head), row-wise
    locations = {rest.names[rm]: loc}
    return RetargetResult(fps=float(motion.fps), frames=T, rotations=rotations, locations=locations,
                          preset=plan.preset, confidence=plan.confidence, unmapped=list(plan.unmapped),
                          mapping={j: (v[0] if len(v) == 1 else v) for j, v in plan.mapping.items()},
                          set_properties=plan.set_properties, root_bone=rest.names[rm], scale=plan.scale)


def posed_heads(rest, result: RetargetResult, bones=None, mapping=None) -> dict[str, np.ndarray]:
    """Armature-space heads (T, 3) of ``bones`` (default: the keyed ones) with the
    result's curves applied, by Blender's pose rule
    ``P_b = P_parent @ inv(Rest_parent) @ Rest_b @ Basis_b`` (no constraints; a
    preset's parent overrides are followed). For checks and foot analysis."""
    if isinstance(rest, RetargetPlan):
        plan = rest
    else:
        known = result.preset if result.preset in rigs_mod.load_presets() else None
        plan = plan_retarget(rest, mapping or result.mapping, None if mapping else known)
    rest = plan.rest
    idx = rest.index
    wanted = [idx[b] for b in (bones or list(result.rotations))]
    parent = {b: int(rest.parents[b]) for b in range(len(rest.names))}
    for b, pe in plan.eff_parent.items():
        if pe >= 0 and pe not in _ancestors(rest.parents, b):
            parent[b] = pe
    T = result.frames
    rest4 = rest.rest_matrices.copy()
    rest4[:, :3, :3] = rest.rotations
    cache: dict[int, np.ndarray] = {}

    def pose(b):
        if b in cache:
            return cache[b]
        basis = np.broadcast_to(np.eye(4), (T, 4, 4)).copy()
        name = rest.names[b]
        if name in result.rotations:
            basis[:, :3, :3] = R.quat_to_matrix(np.asarray(result.rotations[name], dtype=np.float64))
        if name in result.locations:
            basis[:, :3, 3] = result.locations[name]
        p = parent[b]
        if p < 0:
            m = rest4[b] @ basis
        else:
            m = pose(p) @ (np.linalg.inv(rest4[p]) @ rest4[b]) @ basis
        cache[b] = m
        return m

    return {rest.names[b]: pose(b)[:, :3, 3] for b in wanted}


# --------------------------------------------------------------------------- foot locking

def _contacts(motion: Motion) -> np.ndarray:
    """(T, 2) bool: left / right foot planted (ankle or toe flag)."""
    c = motion.contacts
    if c is None:
        from engine.metrics import planted

        c = planted(motion.positions, motion.fps)
    c = np.asarray(c, dtype=bool)
    return np.stack([c[:, 0] | c[:, 1], c[:, 2] | c[:, 3]], 1)


def _segments(flags: np.ndarray):
    padded = np.concatenate([[False], flags, [False]])
    d = np.diff(padded.astype(np.int8))
    return list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1)))


def _lock_feet(plan: RetargetPlan, motion: Motion, Qb, root_head, blend: int = 4):
    """Pin each planted ankle (horizontally) where the contact began: two-bone IK on
    thigh and shin, blended in and out over ``blend`` frames. The foot keeps its
    orientation; the root is not moved."""
    from engine.ik import two_bone_ik

    up = plan.up
    contacts = _contacts(motion)
    Qb = dict(Qb)
    for side, s in enumerate("LR"):
        joints = (f"{s}_hip", f"{s}_knee", f"{s}_ankle")
        if not all(j in plan.groups for j in joints):
            continue
        if len(plan.groups[joints[0]]) > 1 or len(plan.groups[joints[1]]) > 1:
            continue  # multi-bone legs: left alone
        thigh, shin, foot = (plan.groups[j][0] for j in joints)
        if plan.eff_parent[shin] != thigh or plan.eff_parent[foot] != shin:
            continue
        heads = _posed_heads(plan, Qb, root_head)
        a, b, c = heads[thigh], heads[shin], heads[foot]
        goal = c.copy()
        for s0, s1 in _segments(contacts[:, side]):
            pin = c[s0] - np.dot(c[s0], up) * up
            seg = c[s0:s1]
            pinned = pin + np.outer(seg @ up, up)
            w = np.ones(s1 - s0)
            k = min(blend, (s1 - s0) // 2)
            if k > 0:
                ramp = np.arange(1, k + 1) / (k + 1)
                w[-k:] = ramp[::-1]  # release towards the next step
            goal[s0:s1] = seg + w[:, None] * (pinned - seg)
        b_new, c_new, _ = two_bone_ik(a, b, c, goal)
        turn1 = _rot_between(b - a, b_new - a)
        shin_dir = np.einsum("tij,tj->ti", turn1, c - b)
        turn2 = _rot_between(shin_dir, c_new - b_new)
        Qb[thigh] = turn1 @ Qb[thigh]
        Qb[shin] = turn2 @ turn1 @ Qb[shin]
    return Qb, root_head
