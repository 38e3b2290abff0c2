"""Analytic two-bone IK (hip-knee-ankle, shoulder-elbow-wrist), vectorised over frames.

``two_bone_ik`` solves positions: given the root ``a``, the middle joint ``b`` and the
end ``c`` of a chain and a target for ``c``, it returns the new middle and end
positions. The bone lengths are kept, the end lands on the target when it is within
reach (otherwise as close as the straightened chain gets, along the same line), and
the chain bends in the plane it bent in before: the plane through ``a`` that contains
the old bend direction, turned minimally towards the new target. A hinge only bends
one way: given its front (``pole``), a bend that pointed behind it (a hyperextended
knee) is turned to the front as the leg is shortened (``solve_limb``: fully at
TURN_SHORTENING), so a stretched leg never folds backwards and a leg the IK hardly
moves stays as it was.

``solve_limb`` turns that into local rotations of the canonical SMPL-24 skeleton:
the root joint and the middle joint are each turned by the smallest rotation that
points their bone at its new direction (so the thigh keeps its twist and the knee
stays a hinge), and the end joint's local rotation is recomputed so that its world
orientation is unchanged (a pinned foot keeps its heading and pitch).
"""

from __future__ import annotations

import numpy as np

from engine.skeleton import JOINT, SMPL_PARENTS

LIMBS = {
    "L_leg": ("L_hip", "L_knee", "L_ankle"),
    "R_leg": ("R_hip", "R_knee", "R_ankle"),
    "L_arm": ("L_shoulder", "L_elbow", "L_wrist"),
    "R_arm": ("R_shoulder", "R_elbow", "R_wrist"),
}
KNEE_FRONT = np.array([0.0, -1.0, 0.0])  # in the thigh's frame: the way a flexing knee moves
POLE_LEAN = 0.05  # pole weight, per unit of upper-bone length, added to the old bend
TURN_SHORTENING = 0.01  # a backward knee is fully turned forwards once the leg is this much shorter
EPS = 1e-9


def _unit(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(n, EPS), n[..., 0]


def two_bone_ik(a, b, c, target, pole=None, reach: float = 0.999):
    """New (b, c) positions, (..., 3) each, putting ``c`` on ``target``.

    ``a``, ``b``, ``c``, ``target``: (..., 3) world positions. ``pole``: optional
    (..., 3) side the middle joint bends to (a knee's front), its length (up to 1)
    how firmly: a bend pointing away from it is mirrored onto its side (at length 1;
    half-way, sideways, at 0.5), and the bend leans on it by POLE_LEAN (so a
    straight chain bends towards it). Without one the current bend is kept, or -Y
    (forward) is used where there is none. ``reach``: the largest fraction of the
    full chain length used (a fully straight chain has no defined bend and pops;
    0.999 keeps a sliver of bend).
    Returns (b_new, c_new, reached) where ``reached`` is bool (...,).
    """
    a, b, c, target = (np.asarray(x, dtype=np.float64) for x in (a, b, c, target))
    l1 = np.linalg.norm(b - a, axis=-1)
    l2 = np.linalg.norm(c - b, axis=-1)
    # old bend direction: the middle joint's offset from the a-c line
    u, _ = _unit(c - a)
    k = (b - a) - np.sum((b - a) * u, -1, keepdims=True) * u
    k_unit, k_len = _unit(k)
    if pole is None:
        pole = np.broadcast_to(np.array([0.0, -1.0, 0.0]), k.shape)
    else:  # turn a backward bend to the front; a nearly straight one leans on the pole
        pole, firm = _unit(np.asarray(pole, dtype=np.float64))
        firm = np.minimum(firm, 1.0)[..., None]
        k = k - 2.0 * firm * np.minimum(np.sum(k * pole, -1, keepdims=True), 0.0) * pole
        k_unit, k_len = _unit(k + POLE_LEAN * firm * l1[..., None] * pole)
    straight = (k_len < 1e-4 * np.maximum(l1, EPS))[..., None]
    bend = np.where(straight, pole, k_unit)
    # new direction and distance
    d, dist = _unit(target - a)
    lo = np.abs(l1 - l2) + 1e-6
    hi = (l1 + l2) * reach
    dist_c = np.clip(dist, lo, hi)
    reached = (dist >= lo) & (dist <= hi)
    # bend direction perpendicular to the new line, on the old side
    m = bend - np.sum(bend * d, -1, keepdims=True) * d
    m, m_len = _unit(m)
    fallback = np.cross(d, np.array([1.0, 0.0, 0.0]))
    fallback, _ = _unit(np.where(np.linalg.norm(fallback, axis=-1, keepdims=True) < 1e-6,
                                 np.cross(d, np.array([0.0, 1.0, 0.0])), fallback))
    m = np.where((m_len < 1e-9)[..., None], fallback, m)
    cos_a = np.clip((l1**2 + dist_c**2 - l2**2) / (2 * l1 * dist_c + EPS), -1.0, 1.0)
    sin_a = np.sqrt(1.0 - cos_a**2)
    b_new = a + l1[..., None] * (cos_a[..., None] * d + sin_a[..., None] * m)
    c_new = a + dist_c[..., None] * d
    return b_new, c_new, reached


def rotation_between(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(..., 3, 3) smallest rotations taking directions ``u`` to ``v`` (numpy)."""
    u, _ = _unit(np.asarray(u, dtype=np.float64))
    v, _ = _unit(np.asarray(v, dtype=np.float64))
    axis = np.cross(u, v)
    sin = np.linalg.norm(axis, axis=-1)
    cos = np.sum(u * v, -1)
    perp = np.cross(u, np.where(np.abs(u[..., :1]) < 0.9, [1.0, 0, 0], [0, 1.0, 0]))
    axis = np.where((sin < 1e-9)[..., None], perp, axis)
    axis, _ = _unit(axis)
    return axis_angle_matrix(axis, np.arctan2(sin, cos))


def axis_angle_matrix(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotations by ``angle`` (radians) about unit ``axis`` (Rodrigues)."""
    x, y, z = np.moveaxis(axis, -1, 0)
    c, s = np.cos(angle), np.sin(angle)
    C = 1 - c
    return np.stack([np.stack([c + x * x * C, x * y * C - z * s, x * z * C + y * s], -1),
                     np.stack([y * x * C + z * s, c + y * y * C, y * z * C - x * s], -1),
                     np.stack([z * x * C - y * s, z * y * C + x * s, c + z * z * C], -1)], -2)


def matrix_to_quat(m: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotation matrices to (..., 4) wxyz quaternions with w >= 0 (numpy)."""
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    cand = np.stack([
        np.stack([1 + m00 + m11 + m22, m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0],
                  m[..., 1, 0] - m[..., 0, 1]], -1),
        np.stack([m[..., 2, 1] - m[..., 1, 2], 1 + m00 - m11 - m22, m[..., 1, 0] + m[..., 0, 1],
                  m[..., 0, 2] + m[..., 2, 0]], -1),
        np.stack([m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] + m[..., 0, 1], 1 - m00 + m11 - m22,
                  m[..., 2, 1] + m[..., 1, 2]], -1),
        np.stack([m[..., 1, 0] - m[..., 0, 1], m[..., 0, 2] + m[..., 2, 0], m[..., 2, 1] + m[..., 1, 2],
                  1 - m00 - m11 + m22], -1),
    ], -2)
    best = np.stack([m00 + m11 + m22, m00, m11, m22], -1).argmax(-1)
    q = np.take_along_axis(cand, best[..., None, None], -2)[..., 0, :]
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    return np.where(q[..., :1] < 0, -q, q)


def _bend_twist(a, b, c, g) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Angle (about the thigh) from a leg's bend normal to the thigh's local X axis, how
    firmly the knee bends (0: straight; 1: 17 degrees or more) and whether it bends to
    the thigh's front (1) rather than behind or to the side (0)."""
    u, _ = _unit(b - a)
    n, sin = _unit(np.cross(u, _unit(c - b)[0]))
    x = g[..., :, 0] - np.sum(g[..., :, 0] * u, -1, keepdims=True) * u
    angle = np.arctan2(np.sum(np.cross(n, x) * u, -1), np.sum(n * x, -1))
    bent = np.clip((sin - 0.1) / 0.2, 0.0, 1.0)
    line, _ = _unit(c - a)
    knee, _ = _unit((b - a) - np.sum((b - a) * line, -1, keepdims=True) * line)  # the knee's side of the line
    forwards = np.clip(2.0 * np.sum(knee * (g @ KNEE_FRONT), -1), 0.0, 1.0)
    return angle, bent, forwards


def _hinge_twist(a, b, c, ga, b_new, c_new, ga_turned) -> np.ndarray:
    """(..., 3, 3) twist about the new thigh that gives a knee bent to the front the same
    bend angle to the thigh's X axis as before: a minimal turn of the thigh alone lets
    the bend drift off the knee's hinge (a knee bent sideways) when the leg swings far."""
    before, bent_before, forwards = _bend_twist(a, b, c, ga)
    after, bent_after, _ = _bend_twist(a, b_new, c_new, ga_turned)
    turn = np.angle(np.exp(1j * (before - after))) * np.minimum(bent_before, bent_after) * forwards
    return axis_angle_matrix(_unit(b_new - a)[0], turn)


def _world(local_q: np.ndarray, root: np.ndarray):
    """(T,24,3) positions and (T,24,3,3) global rotations by forward kinematics."""
    from engine.validate import forward_kinematics

    return forward_kinematics(local_q, root)


def solve_limb(local_q: np.ndarray, root: np.ndarray, limb: str, targets: np.ndarray,
               weight: np.ndarray | None = None, positions=None, global_rot=None):
    """Local rotations (T, 24, 4) with ``limb``'s end joint moved towards ``targets``.

    ``local_q``: (T, 24, 4) local wxyz quaternions; ``root``: (T, 3);
    ``limb``: a key of LIMBS; ``targets``: (T, 3) world targets for the end joint;
    ``weight``: (T,) in [0, 1] blending the end joint from where it is (0) to the
    target (1); frames with weight 0 are left exactly as they are.
    ``positions``/``global_rot``: FK of ``local_q`` if already computed.
    Returns (new local quaternions, reached (T,) bool).
    """
    ja, jb, jc = (JOINT[n] for n in LIMBS[limb])
    q = np.array(local_q, dtype=np.float64, copy=True)
    if positions is None or global_rot is None:
        positions, global_rot = _world(q, root)
    T = len(q)
    w = np.ones(T) if weight is None else np.clip(np.asarray(weight, dtype=np.float64), 0, 1)
    active = w > 0
    reached = np.ones(T, dtype=bool)
    if not active.any():
        return q, reached
    idx = np.flatnonzero(active)
    a, b, c = positions[idx, ja], positions[idx, jb], positions[idx, jc]
    tgt = c + w[idx, None] * (np.asarray(targets, dtype=np.float64)[idx] - c)
    ga, gb, gc = global_rot[idx, ja], global_rot[idx, jb], global_rot[idx, jc]
    pole = None
    if limb.endswith("_leg"):  # a knee bends forwards, turned there as the leg is shortened
        full = np.linalg.norm(b - a, axis=-1) + np.linalg.norm(c - b, axis=-1)
        shorter = np.linalg.norm(c - a, axis=-1) - np.linalg.norm(tgt - a, axis=-1)
        pole = (ga @ KNEE_FRONT) * np.clip(shorter / (TURN_SHORTENING * full), 0.0, 1.0)[:, None]
    b_new, c_new, ok = two_bone_ik(a, b, c, tgt, pole)
    reached[idx] = ok
    gp = global_rot[idx, SMPL_PARENTS[ja]]
    # root joint: turn its bone minimally onto the new direction (a thigh then twists
    # about it so that the knee keeps its bend about its hinge)
    turn_a = rotation_between(b - a, b_new - a)
    if limb.endswith("_leg"):
        turn_a = _hinge_twist(a, b, c, ga, b_new, c_new, turn_a @ ga) @ turn_a
    ga_new = turn_a @ ga
    # middle joint: its bone after the root's turn, then minimally onto the new one
    gb_moved = turn_a @ gb
    turn_b = rotation_between(np.einsum("tij,tj->ti", turn_a, c - b), c_new - b_new)
    gb_new = turn_b @ gb_moved
    tr = lambda m: np.swapaxes(m, -1, -2)  # noqa: E731
    q[idx, ja] = matrix_to_quat(tr(gp) @ ga_new)
    q[idx, jb] = matrix_to_quat(tr(ga_new) @ gb_new)
    q[idx, jc] = matrix_to_quat(tr(gb_new) @ gc)  # the end keeps its world orientation
    return q, reached
