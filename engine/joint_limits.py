"""Anatomical joint ranges for the canonical SMPL-24 skeleton, as swing-twist angles.

Every joint frame of ``engine.skeleton`` is aligned with the world at rest (X = the
character's left, Y = back, Z = up), so a local rotation is measured from the rest
T-pose. A local quaternion is split as ``q = swing * twist``:
- the *twist* is the rotation about the joint's rest bone axis (from the joint to its
  main child, ``TWIST_AXES``), applied first;
- the *swing* is the smallest rotation taking the bone axis where the bone points; it
  is written as an exponential-map vector (axis * angle), perpendicular to the bone,
  whose x, y and z components are the rotations about the local X, Y and Z axes.

A named anatomical angle is ``sign * component`` (degrees) for the left side and the
centre joints. Right-side limits are the mirror images: a reflection through x = 0
keeps an axial vector's x component and negates its y and z components and the
twist, so the right side uses the same table with those signs flipped.

Two ranges per angle:
- ``warn``: the normal active range of motion of adults, from the American Academy
  of Orthopaedic Surgeons' tables (AAOS, *Joint Motion: Method of Measuring and
  Recording*, 1965; reprinted in Greene & Heckman, *The Clinical Measurement of Joint
  Motion*, AAOS 1994) and Kapandji (*The Physiology of the Joints*, vols. 1-3), widened
  where trained dancers exceed it (hip flexion and abduction, plantarflexion, back
  bends). Outside it a frame gets a *warning*.
- ``error``: a hard anatomical limit, past which a real body does not go (knee or
  elbow bent backwards, a joint folded through itself, a spine or head turned past
  what the vertebrae allow). Outside it a frame gets an *error*. ``None`` means the
  angle never yields an error. Twists mostly have ``None``: their zero depends on the
  bone roll of the rig the motion came from (see docs/validator.md: the converted CMU
  05 takes carry a constant ~125 degree shin twist), and a twist flip is caught by the
  validator's flip check instead.

The sign conventions were checked on the shared real mocap (docs/validator.md): the
knee flexes about +X (its flexion component is positive in every real frame), the hip
flexes about -X, the elbows of all three sources bend on the same side of their hinge.

Chains whose split between joints depends on the source rig are also checked as a
whole: the thoracolumbar spine (spine1 * spine2 * spine3) and the cervical spine
(neck * head), because AAOS states those ranges for the whole region. Each spine
segment alone only has wide error limits.

The ankle and the wrist are measured in their parent's frame with the parent's twist
removed ("de-twisted": ``twist(parent) * q``), because the knee's and the elbow's twist
is a rig convention more often than anatomy.

Leaf joints without a child bone (toes, hands) carry no joint position and their
rotations come straight from each rig's conventions; they have no limits here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.skeleton import JOINT, MAIN_CHILD, NUM_JOINTS, REST_OFFSETS, SMPL_NAMES, SMPL_PARENTS



def _twist_axes() -> np.ndarray:
    axes = np.zeros((NUM_JOINTS, 3))
    for j, name in enumerate(SMPL_NAMES):
        child = MAIN_CHILD.get(name)
        if child is not None:
            off = REST_OFFSETS[JOINT[child]]
            axes[j] = off / np.linalg.norm(off)
        elif name == "head":
            axes[j] = [0.0, 0.0, 1.0]
        else:  # toes and hands continue their parent's bone
            axes[j] = axes[SMPL_PARENTS[j]]
    return axes


TWIST_AXES = _twist_axes()
"""(24, 3) unit rest bone axis of each joint in its own (rest = world) frame."""

DETWIST_PARENT = {"L_ankle": "L_knee", "R_ankle": "R_knee", "L_wrist": "L_elbow",
                  "R_wrist": "R_elbow"}

# Composite regions: the product of the local rotations of a chain, measured about Z.
CHAINS = {"thoracolumbar": ("spine1", "spine2", "spine3"), "cervical": ("neck", "head")}
CHAIN_AXIS = np.array([0.0, 0.0, 1.0])
CHAIN_JOINT = {"thoracolumbar": "spine2", "cervical": "neck"}  # joint the report names

# The elbow's hinge: the swing direction of the flexed elbow in the upper arm's frame.
# T-pose, palms down, would be -Z (forearm forward); all three shared sources put it
# 30 degrees lower (median direction of flexed frames, docs/validator.md).
ELBOW_FLEX_AXIS_L = np.array([0.0, -np.sin(np.radians(30)), -np.cos(np.radians(30))])

AAOS = "AAOS 1965 / Greene & Heckman 1994 normal ROM"
KAPANDJI = "Kapandji, Physiology of the Joints"


@dataclass(frozen=True)
class Limit:
    """One anatomical angle of one joint (or chain): ``sign * component`` in degrees.

    ``component``: "x", "y", "z" (swing exponential-map components), "twist", or
    "flex"/"off" (elbow hinge: swing along / across ``ELBOW_FLEX_AXIS_L``), or "swing"
    (the swing's magnitude).
    "fold": the angle between the parent's bone and this joint's bone, minus its rest
    value (twist-free: used for the ankle and the elbow).
    """

    joint: str  # SMPL joint of the left side or centre, or a CHAINS key
    angle: str  # anatomical name of the positive direction
    component: str
    sign: float
    warn: tuple[float, float]
    error: tuple[float, float] | None
    source: str


LIMITS: tuple[Limit, ...] = (
    # Hip: flexion about -X; abduction of the left leg moves it to +X (about -Y);
    # twist > 0 about the downward bone turns the left knee inwards (internal rotation).
    Limit("L_hip", "flexion", "x", -1, (-40, 130), (-90, 175),
          f"{AAOS}: flexion 120, extension 30; dancers reach more (développé, arabesque)"),
    Limit("L_hip", "abduction", "y", -1, (-35, 90), (-60, 160),
          f"{AAOS}: abduction 45, adduction 30; dancers' à la seconde to 90+"),
    Limit("L_hip", "internal_rotation", "twist", 1, (-70, 50), (-120, 110),
          f"{AAOS}: internal 45, external 45; {KAPANDJI}: external 60; turnout 60-70"),
    # Knee: a hinge flexing about +X (the shin swings back).
    Limit("L_knee", "flexion", "x", 1, (-10, 150), (-20, 170),
          f"{AAOS}: flexion 135-150, hyperextension up to 10"),
    Limit("L_knee", "abduction", "y", -1, (-25, 25), (-50, 50),
          f"{KAPANDJI}: the extended knee has no side play; a few degrees flexed"),
    Limit("L_knee", "internal_rotation", "twist", 1, (-45, 45), None,
          f"{KAPANDJI}: axial rotation 30-40 with the knee flexed"),
    # Ankle (de-twisted): plantarflexion about +X (toes down), abduction turns the
    # toes outwards (left: about +Z); twist about the foot axis is eversion (left).
    Limit("L_ankle", "dorsiflexion", "fold", 1, (-90, 45), (-90, 95),
          f"{AAOS}: dorsiflexion 20, 40-45 in a deep squat/plié; plus up to ~20 because "
          "converted sources put a flat foot's toe joint higher than SMPL's rest foot "
          "(docs/validator.md). Plantarflexion is bounded by the measure itself"),
    Limit("L_ankle", "abduction", "z", 1, (-45, 45), None,
          f"{KAPANDJI}: abduction/adduction of the foot 35-45 in all; warning only, it "
          "depends on the thigh's roll in the source rig"),
    Limit("L_ankle", "eversion", "twist", 1, (-45, 35), None,
          f"{AAOS}: inversion 35, eversion 15 (subtalar + midtarsal)"),
    # Spine segments alone: only hard limits (the split between segments is the rig's).
    *(Limit(s, a, c, 1, w, e, f"{AAOS}: thoracolumbar region, wide per-segment bounds")
      for s in ("spine1", "spine2", "spine3")
      for a, c, w, e in (("flexion", "x", (-90, 100), (-100, 110)),
                         ("lateral_bend_left", "y", (-60, 60), (-75, 75)),
                         ("rotation_left", "twist", (-70, 70), (-100, 100)))),
    # Whole thoracolumbar spine (spine1*spine2*spine3, about Z): flexion about +X.
    Limit("thoracolumbar", "flexion", "x", 1, (-45, 100), (-110, 140),
          f"{AAOS}: flexion 80, extension 25; dancers' back bends 60+"),
    Limit("thoracolumbar", "lateral_bend_left", "y", 1, (-50, 50), (-85, 85),
          f"{AAOS}: lateral flexion 35 each side"),
    Limit("thoracolumbar", "rotation_left", "twist", 1, (-60, 60), (-100, 100),
          f"{AAOS}: rotation 45 each side"),
    # Neck and head alone, and the whole cervical spine (neck*head).
    *(Limit(s, a, c, 1, w, e, f"{AAOS}: cervical region, wide per-joint bounds")
      for s in ("neck", "head")
      for a, c, w, e in (("flexion", "x", (-70, 75), (-90, 100)),
                         ("lateral_bend_left", "y", (-55, 55), (-75, 75)),
                         ("rotation_left", "twist", (-80, 80), (-110, 110)))),
    Limit("cervical", "flexion", "x", 1, (-70, 70), (-100, 100),
          f"{AAOS}: flexion 45, extension 45-55 (cervical)"),
    Limit("cervical", "lateral_bend_left", "y", 1, (-55, 55), (-80, 80),
          f"{AAOS}: lateral flexion 45"),
    Limit("cervical", "rotation_left", "twist", 1, (-85, 85), (-120, 120),
          f"{AAOS}: rotation 60-80"),
    # Clavicle: elevation raises the shoulder (left: about -Y), protraction brings it
    # forward (left: about -Z).
    Limit("L_collar", "elevation", "y", -1, (-40, 50), (-60, 70),
          f"{KAPANDJI}: sternoclavicular elevation 45, depression 10"),
    Limit("L_collar", "protraction", "z", -1, (-35, 35), (-60, 60),
          f"{KAPANDJI}: protraction/retraction 15-30"),
    # Shoulder (glenohumeral, from the T-pose): elevation raises the arm above
    # shoulder level (left: about -Y), horizontal flexion brings it forward (-Z).
    Limit("L_shoulder", "elevation", "y", -1, (-115, 110), (-160, 150),
          f"{AAOS}: abduction 180 (90 above the T-pose), adduction to the side and 30-50 across"),
    Limit("L_shoulder", "horizontal_flexion", "z", -1, (-60, 135), (-100, 175),
          f"{AAOS}: horizontal flexion 130-135, horizontal extension 45"),
    Limit("L_shoulder", "internal_rotation", "twist", 1, (-110, 110), None,
          f"{AAOS}: internal rotation 70, external 90"),
    # Elbow: a hinge. Flexion along ELBOW_FLEX_AXIS_L; negative is hyperextension.
    Limit("L_elbow", "flexion", "fold", 1, (-15, 155), (-15, 172),
          f"{AAOS}: flexion 150; past ~170 the forearm would pass through the upper arm"),
    Limit("L_elbow", "hyperextension", "flex", -1, (-180, 10), (-180, 25),
          f"{AAOS}: hyperextension 0-10 (measured along the hinge axis)"),
    Limit("L_elbow", "off_axis", "off", 1, (-90, 90), None,
          "hinge plane: depends on the upper arm's roll convention, warning only"),
    Limit("L_elbow", "pronation", "twist", 1, (-100, 100), None,
          f"{AAOS}: pronation 80, supination 80"),
    # Wrist (de-twisted): flexion bends the palm-down hand down (left: about +Y),
    # radial deviation (left, thumb forward) about -Z.
    Limit("L_wrist", "flexion", "y", 1, (-80, 90), (-110, 120),
          f"{AAOS}: flexion 80, extension 70"),
    Limit("L_wrist", "radial_deviation", "z", -1, (-45, 45), (-90, 90),
          f"{AAOS}: radial 20, ulnar 30 (wider: the hand's roll follows the rig)"),
)

_SIDE_FLIP = {"x": 1.0, "y": -1.0, "z": -1.0, "twist": -1.0, "flex": 1.0, "off": -1.0,
              "swing": 1.0, "fold": 1.0}


@dataclass(frozen=True)
class Check:
    """A limit applied to one concrete joint (or chain) of one side."""

    limit: Limit
    joint: str  # the joint reported (a SMPL name)
    key: str  # the joint or chain measured
    side_sign: float  # +1 for left/centre, mirror factor for the right side
    right: bool = False

    @property
    def name(self) -> str:
        return f"{self.joint}.{self.limit.angle}" if self.key == self.joint else \
            f"{self.key}.{self.limit.angle}"


def _checks() -> tuple[Check, ...]:
    out = []
    for lim in LIMITS:
        if lim.joint in CHAINS:
            out.append(Check(lim, CHAIN_JOINT[lim.joint], lim.joint, 1.0))
        elif lim.joint.startswith("L_"):
            out.append(Check(lim, lim.joint, lim.joint, 1.0))
            right = "R_" + lim.joint[2:]
            out.append(Check(lim, right, right, _SIDE_FLIP[lim.component], True))
        else:
            out.append(Check(lim, lim.joint, lim.joint, 1.0))
    return tuple(out)


CHECKS = _checks()


# ------------------------------------------------------------------ swing-twist


def twist_quat(q: np.ndarray, axis: np.ndarray) -> np.ndarray:
    """The twist part of wxyz quaternions ``q`` (..., 4) about the unit ``axis`` (3,)."""
    axis = np.asarray(axis, dtype=np.float64)
    w = q[..., 0]
    p = q[..., 1] * axis[0] + q[..., 2] * axis[1] + q[..., 3] * axis[2]
    n = np.sqrt(w * w + p * p)
    ok = n > 1e-9
    inv = np.where(ok, 1.0 / np.where(ok, n, 1.0), 0.0)
    out = np.empty(q.shape)
    out[..., 0] = np.where(ok, w * inv, 1.0)
    out[..., 1] = p * inv * axis[0]
    out[..., 2] = p * inv * axis[1]
    out[..., 3] = p * inv * axis[2]
    return out


def qmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product of wxyz quaternions (pure numpy, broadcasting)."""
    aw, ax, ay, az = a[..., 0], a[..., 1], a[..., 2], a[..., 3]
    bw, bx, by, bz = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
    out = np.empty(np.broadcast_shapes(a.shape, b.shape))
    out[..., 0] = aw * bw - ax * bx - ay * by - az * bz
    out[..., 1] = aw * bx + ax * bw + ay * bz - az * by
    out[..., 2] = aw * by - ax * bz + ay * bw + az * bx
    out[..., 3] = aw * bz + ax * by - ay * bx + az * bw
    return out


def qconj(q: np.ndarray) -> np.ndarray:
    return q * np.array([1.0, -1.0, -1.0, -1.0])


def quat_log(q: np.ndarray) -> np.ndarray:
    """Axis-angle vectors (radians) of wxyz quaternions, angle in [0, pi] (numpy)."""
    sign = np.where(q[..., 0] < 0, -1.0, 1.0)
    w = q[..., 0] * sign
    x, y, z = q[..., 1] * sign, q[..., 2] * sign, q[..., 3] * sign
    s = np.sqrt(x * x + y * y + z * z)
    angle = 2 * np.arctan2(s, w)
    scale = np.where(s > 1e-9, angle / np.maximum(s, 1e-12), 2.0)
    out = np.empty(q.shape[:-1] + (3,))
    out[..., 0], out[..., 1], out[..., 2] = x * scale, y * scale, z * scale
    return out


def quat_exp(v: np.ndarray) -> np.ndarray:
    """wxyz quaternions of axis-angle vectors ``v`` (radians) (numpy)."""
    angle = np.sqrt(v[..., 0] ** 2 + v[..., 1] ** 2 + v[..., 2] ** 2)
    half = 0.5 * angle
    scale = np.where(angle > 1e-9, np.sin(half) / np.maximum(angle, 1e-12), 0.5)
    out = np.empty(v.shape[:-1] + (4,))
    out[..., 0] = np.cos(half)
    out[..., 1:] = v * scale[..., None]
    return out


def swing_twist(q: np.ndarray, axis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split ``q = swing * twist``: swing as an axis-angle vector (..., 3) and the signed
    twist angle about ``axis`` (...), both in radians, twist in (-pi, pi]."""
    tw = twist_quat(q, axis)
    swing = qmul(q, qconj(tw))
    p = tw[..., 1] * axis[0] + tw[..., 2] * axis[1] + tw[..., 3] * axis[2]
    angle = 2 * np.arctan2(p, tw[..., 0])
    angle = (angle + np.pi) % (2 * np.pi) - np.pi
    return quat_log(swing), angle


def measured_quats(rotations: np.ndarray) -> dict[str, np.ndarray]:
    """Per joint or chain key, the (T, 4) quaternion the limits are measured on."""
    q = np.asarray(rotations, dtype=np.float64)
    out = {}
    for j, name in enumerate(SMPL_NAMES):
        if name in DETWIST_PARENT:
            p = JOINT[DETWIST_PARENT[name]]
            out[name] = qmul(twist_quat(q[:, p], TWIST_AXES[p]), q[:, j])
        else:
            out[name] = q[:, j]
    for chain, joints in CHAINS.items():
        acc = q[:, JOINT[joints[0]]]
        for name in joints[1:]:
            acc = qmul(acc, q[:, JOINT[name]])
        out[chain] = acc
    return out


def _axis_of(key: str) -> np.ndarray:
    return CHAIN_AXIS if key in CHAINS else TWIST_AXES[JOINT[key]]


def _flex_axes(check: Check) -> tuple[np.ndarray, np.ndarray]:
    """Elbow hinge: (flexion direction f, off-axis direction g) of the swing vector."""
    f = ELBOW_FLEX_AXIS_L * (np.array([1.0, -1.0, -1.0]) if check.right else 1.0)
    g = np.cross(_axis_of(check.key), f)
    return f, g / np.linalg.norm(g)


def _parent_axis(key: str) -> np.ndarray:
    return TWIST_AXES[SMPL_PARENTS[JOINT[key]]]


def _rest_fold(key: str) -> float:
    a, b = _parent_axis(key), TWIST_AXES[JOINT[key]]
    return float(np.degrees(np.arccos(np.clip(a @ b, -1.0, 1.0))))


def _rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vector ``v`` (3,) by wxyz quaternions ``q`` (T, 4)."""
    w, u = q[:, :1], q[:, 1:]
    t = 2 * np.cross(u, v)
    return v + w * t + np.cross(u, t)


def _fold(q: np.ndarray, key: str) -> np.ndarray:
    d = _rotate(q, TWIST_AXES[JOINT[key]])
    cos = np.clip(d @ _parent_axis(key), -1.0, 1.0)
    return np.degrees(np.arccos(cos)) - _rest_fold(key)


def fold_angle(rotations: np.ndarray, joint: str) -> np.ndarray:
    """(T,) ``joint``'s fold angle in degrees (ankle dorsiflexion), as ``measure`` gives
    it, from (T, 24, 4) local rotations alone: a fold ignores the parent's twist."""
    return _fold(np.asarray(rotations, dtype=np.float64)[:, JOINT[joint]], joint)


def _component(q: np.ndarray, swing: np.ndarray, twist: np.ndarray, check: Check) -> np.ndarray:
    """The checked angle in degrees, with the limit's sign and the side's mirror sign."""
    c = check.limit.component
    if c == "fold":
        return _fold(q, check.key) * check.limit.sign
    if c in ("flex", "off"):
        f, g = _flex_axes(check)
        raw = swing @ (f if c == "flex" else g)
        return np.degrees(raw) * check.limit.sign
    if c == "twist":
        raw = twist
    elif c == "swing":
        raw = np.linalg.norm(swing, axis=-1)
    else:
        raw = swing[..., "xyz".index(c)]
    return np.degrees(raw) * check.limit.sign * check.side_sign


def measure(rotations: np.ndarray) -> dict[str, np.ndarray]:
    """Anatomical angles (degrees, (T,) each) keyed by ``Check.name``."""
    quats = measured_quats(rotations)
    cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    out = {}
    for check in CHECKS:
        if check.key not in cache:
            cache[check.key] = swing_twist(quats[check.key], _axis_of(check.key))
        swing, twist = cache[check.key]
        out[check.name] = _component(quats[check.key], swing, twist, check)
    return out


def _axis_angle_quat(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    half = 0.5 * angle[:, None]
    return np.concatenate([np.cos(half), np.sin(half) * axis], -1)


def clamp(rotations: np.ndarray, level: str = "error", margin: float = 0.5,
          frames: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Rotations with every single-joint angle pulled inside its ``level`` range
    ("error" or "warn"), ``margin`` degrees inside the bound.

    Returns (clamped (T, 24, 4), changed (T, 24) bool). Chain limits are not clamped
    (a chain is kept through its segments' own ranges). Swing components are clamped
    in the exponential map, twists about the bone, the elbow along its hinge, a "fold"
    angle by turning the bone towards or away from its parent's bone. Ankle and wrist
    are clamped in their de-twisted frame and put back in the parent's frame.
    ``frames`` (bool (T,)) restricts the clamp to those frames.
    """
    if frames is not None:  # work on those frames only
        out = np.array(rotations, dtype=np.float64, copy=True)
        changed = np.zeros(out.shape[:2], dtype=bool)
        idx = np.flatnonzero(np.asarray(frames, dtype=bool))
        if len(idx):
            out[idx], changed[idx] = clamp(out[idx], level, margin)
        return out, changed
    q = np.array(rotations, dtype=np.float64, copy=True)
    changed = np.zeros(q.shape[:2], dtype=bool)
    by_joint: dict[str, list[Check]] = {}
    for check in CHECKS:
        rng = check.limit.error if level == "error" else check.limit.warn
        if check.key in CHAINS or rng is None:
            continue
        by_joint.setdefault(check.key, []).append(check)
    for name, checks in by_joint.items():
        j = JOINT[name]
        axis = TWIST_AXES[j]
        parent_tw = None
        cur = q[:, j]
        if name in DETWIST_PARENT:
            p = JOINT[DETWIST_PARENT[name]]
            parent_tw = twist_quat(q[:, p], TWIST_AXES[p])
            cur = qmul(parent_tw, cur)
        hit = np.zeros(len(q), dtype=bool)
        for check in checks:  # one angle at a time, re-measured after each change
            lo, hi = check.limit.error if level == "error" else check.limit.warn
            swing, twist = swing_twist(cur, axis)
            value = _component(cur, swing, twist, check)
            bad = (value < lo) | (value > hi)
            if not bad.any():
                continue
            hit |= bad
            delta_deg = np.where(bad, np.clip(value, lo + margin, hi - margin) - value, 0.0)
            delta = np.radians(delta_deg) / check.limit.sign
            c = check.limit.component
            if c == "fold":
                d = _rotate(cur, axis)
                n = np.cross(_parent_axis(name), d)
                norm = np.linalg.norm(n, axis=-1, keepdims=True)
                fallback = np.cross(_parent_axis(name), np.array([1.0, 0.0, 0.0]))
                n = np.where(norm > 1e-9, n / np.maximum(norm, 1e-12), fallback / np.linalg.norm(fallback))
                cur = qmul(_axis_angle_quat(n, delta), cur)
                continue
            if c == "twist":
                twist = twist + delta * check.side_sign
            elif c in ("flex", "off"):
                f, g = _flex_axes(check)
                swing = swing + delta[:, None] * (f if c == "flex" else g)
            else:
                swing[:, "xyz".index(c)] += delta * check.side_sign
            swing -= (swing @ axis)[:, None] * axis  # keep the swing across the bone
            cur = qmul(quat_exp(swing), quat_exp(twist[:, None] * axis))
        if not hit.any():
            continue
        new = cur if parent_tw is None else qmul(qconj(parent_tw), cur)
        q[hit, j] = new[hit]
        changed[hit, j] = True
    return q, changed


def table() -> list[dict]:
    """The limits as plain rows (for docs and JSON)."""
    return [{"joint": lim.joint, "angle": lim.angle, "component": lim.component,
             "sign": lim.sign, "warn": list(lim.warn),
             "error": None if lim.error is None else list(lim.error), "source": lim.source}
            for lim in LIMITS]
