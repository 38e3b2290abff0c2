"""Physical and choreographic validation of SMPL-24 motion (numpy/scipy, no bpy).

``validate(motion, music=None) -> Report``. Every check returns ``Violation`` records
with a ``kind``, a ``severity`` (info / warning / error), the SMPL ``joint`` (or None),
the inclusive frame range ``start``..``end`` in the INPUT's own frame rate, the
measured ``value``, the ``limit`` it broke, and a ``message``. Consecutive bad frames
are merged into one range.

Checks (thresholds, sources and calibration: docs/validator.md):
- ``joint_limit``: anatomical ranges, engine.joint_limits;
- ``flip``: a local rotation that jumps (typically ~180 degrees) in one frame;
- ``bone_length`` / ``positions_mismatch``: for raw positions (or stored ones that
  disagree with forward kinematics);
- ``ground``: a joint below the floor (z = 0) by more than its radius and a tolerance;
- ``foot_skate``: a foot sliding while it is on the floor;
- ``velocity`` / ``acceleration`` / ``jerk``: per-joint limits, in body heights,
  calibrated on the shared real mocap;
- ``jitter``: high-frequency tremble;
- ``self_penetration``: deep overlaps between limb and torso capsules;
- ``balance``: the centre of mass far outside the feet in contact while static;
- ``frozen_joint``: a joint that does not move at all for seconds (dropped data);
- with music: ``beat_sync`` (per-beat offsets, BAS), ``section_structure`` (motion
  energy per music section) and ``composition`` (a composed start and end).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
from scipy.ndimage import gaussian_filter1d, uniform_filter1d

from engine import metrics as M
from engine.skeleton import JOINT, REST_HEIGHT, REST_OFFSETS, SMPL_NAMES, SMPL_PARENTS

SEVERITIES = ("info", "warning", "error")

# --------------------------------------------------------------------- dynamics
# Reference per-joint peaks, in body heights per second^n, of derivatives taken at an
# effective 30 Hz (stride round(fps / 30) on the native frames). Each value is the
# median over the 51 shared real takes (CMU salsa, modern, pop; converted to SMPL-24;
# the salsa T-pose lead-in of 5 frames dropped) of that take's maximum, averaged over
# left and right. Thresholds are multiples of these (docs/validator.md).
REF_SPEED = np.array([0.9, 1.1, 1.1, 0.9, 1.9, 1.9, 0.9, 2.4, 2.4, 0.9, 2.8, 2.8, 1.0, 1.0,
                      1.0, 1.0, 1.3, 1.3, 1.9, 1.9, 2.2, 2.2, 2.6, 2.6])
REF_ACC = np.array([11.7, 15.4, 15.4, 11.2, 31.4, 31.4, 12.6, 46.0, 46.0, 12.5, 67.3, 67.3,
                    18.3, 15.2, 15.2, 21.5, 20.2, 20.2, 29.2, 29.2, 33.3, 33.3, 38.8, 38.8])
REF_JERK = np.array([440, 640, 640, 440, 1280, 1280, 500, 1710, 1710, 570, 2830, 2830, 810,
                     720, 720, 860, 870, 870, 1020, 1020, 1220, 1220, 1420, 1420], dtype=float)
DYNAMIC_FACTORS = {  # kind: (reference, warning factor, error factor)
    "velocity": (REF_SPEED, 2.0, 3.0),
    "acceleration": (REF_ACC, 2.0, 3.0),
    "jerk": (REF_JERK, 2.5, 4.0),
}
DYNAMICS_HZ = 30.0

# Rotational discontinuity: a local rotation changing by more than this in one frame.
FLIP_DEG_PER_S = 4500.0  # 75 degrees per frame at 60 fps
FLIP_MIN_DEG, FLIP_MAX_DEG = 60.0, 120.0
FLIP_MAX_SECONDS = 0.5  # a jump that comes back within this is one flip segment

# Jitter: mean |p - gaussian(p, sigma = 1/30 s)| over 0.5 s windows, body heights.
JITTER_WINDOW_S = 0.5
JITTER_WARN = 0.035  # body heights (6 cm); clean real takes peak at 0.029

# Ground: per-joint radius (m, at REST_HEIGHT) below which a joint centre is in the floor.
JOINT_RADIUS = np.full(24, 0.05)
JOINT_RADIUS[[JOINT["L_foot"], JOINT["R_foot"], JOINT["L_hand"], JOINT["R_hand"]]] = 0.015
JOINT_RADIUS[[JOINT["L_ankle"], JOINT["R_ankle"]]] = 0.045
JOINT_RADIUS[[JOINT["L_wrist"], JOINT["R_wrist"]]] = 0.025
JOINT_RADIUS[[JOINT["head"]]] = 0.09
JOINT_RADIUS[[0, 1, 2, 3]] = 0.07
GROUND_WARN, GROUND_ERROR = 0.025, 0.06  # metres of penetration at REST_HEIGHT

# Foot skating: distance slid while on the floor (metres at REST_HEIGHT).
SKATE_WARN, SKATE_ERROR = 0.10, 0.25
SKATE_TRIM_S, SKATE_MIN_S = 0.1, 0.3
SKATE_SPEED = M.SKATE_SPEED * M.SKATE_FPS  # 0.3 m/s at 1.7 m

# Bone lengths and stored positions.
BONE_WARN, BONE_ERROR = 0.05, 0.10  # relative change of a bone's length
MISMATCH_WARN, MISMATCH_ERROR = 0.01, 0.05  # metres between stored and FK positions

# Self-penetration capsules: (name, joint a, joint b, radius m at REST_HEIGHT).
CAPSULES = {
    "torso": ("spine1", "spine3", 0.11),
    "chest": ("spine3", "neck", 0.10),
    "head": ("neck", "head", 0.09),
    "L_upperarm": ("L_shoulder", "L_elbow", 0.05),
    "R_upperarm": ("R_shoulder", "R_elbow", 0.05),
    "L_forearm": ("L_elbow", "L_wrist", 0.045),
    "R_forearm": ("R_elbow", "R_wrist", 0.045),
    "L_thigh": ("L_hip", "L_knee", 0.07),
    "R_thigh": ("R_hip", "R_knee", 0.07),
    "L_shin": ("L_knee", "L_ankle", 0.05),
    "R_shin": ("R_knee", "R_ankle", 0.05),
}
CAPSULE_PAIRS = (
    ("L_forearm", "torso"), ("R_forearm", "torso"), ("L_forearm", "chest"), ("R_forearm", "chest"),
    ("L_upperarm", "torso"), ("R_upperarm", "torso"),
    ("L_forearm", "head"), ("R_forearm", "head"),
    ("L_forearm", "R_forearm"), ("L_forearm", "R_upperarm"),
    ("R_forearm", "L_upperarm"),
    ("L_forearm", "L_thigh"), ("R_forearm", "R_thigh"), ("L_forearm", "R_thigh"), ("R_forearm", "L_thigh"),
    ("L_thigh", "R_thigh"), ("L_shin", "R_shin"), ("L_shin", "R_thigh"), ("R_shin", "L_thigh"),
    ("L_thigh", "torso"), ("R_thigh", "torso"),
)
# Axis distance as a fraction of the summed radii: touching is 1.0 and allowed.
PENETRATION_WARN, PENETRATION_ERROR = 0.3, 0.03
# Hands wrap around the neck and head in partner dancing: never an error.
PENETRATION_WARN_ONLY = {("L_forearm", "head"), ("R_forearm", "head")}

# Balance: Winter (2009) / Dempster segment mass fractions and COM positions along
# each segment (fraction from the proximal joint).
SEGMENT_MASS = (  # (proximal, distal, mass fraction, COM fraction from proximal)
    ("L_shoulder", "L_elbow", 0.028, 0.436), ("R_shoulder", "R_elbow", 0.028, 0.436),
    ("L_elbow", "L_wrist", 0.016, 0.430), ("R_elbow", "R_wrist", 0.016, 0.430),
    ("L_wrist", "L_hand", 0.006, 0.506), ("R_wrist", "R_hand", 0.006, 0.506),
    ("L_hip", "L_knee", 0.100, 0.433), ("R_hip", "R_knee", 0.100, 0.433),
    ("L_knee", "L_ankle", 0.0465, 0.433), ("R_knee", "R_ankle", 0.0465, 0.433),
    ("L_ankle", "L_foot", 0.0145, 0.500), ("R_ankle", "R_foot", 0.0145, 0.500),
    ("neck", "head", 0.081, 1.000),
)
TRUNK_MASS = 0.497  # hips' midpoint to shoulders' midpoint, COM at 0.5
BALANCE_MARGIN = 0.07  # metres outside the feet's hull (half a foot's width and more)
BALANCE_WARN = 0.15
BALANCE_SPEED = 0.15  # COM speed (m/s at REST_HEIGHT) under which a pose is static
BALANCE_MIN_S = 0.3
HEEL_BACK = 0.05  # the heel lies this far behind the ankle along the foot

FROZEN_JOINTS = ("head", "neck", "L_hip", "R_hip", "L_knee", "R_knee", "L_shoulder",
                 "R_shoulder", "L_elbow", "R_elbow", "spine1", "spine3")
FROZEN_STEP_DEG = 0.01  # per frame: no real captured joint is this still for seconds
FROZEN_MIN_S = 2.0

BEAT_TOLERANCE = 0.1  # seconds between a music beat and the nearest kinetic beat
HALF_TIME_GAIN = 1.5  # a half-time grid is the count where its share on time is this much higher
COMPOSED_WINDOW = 0.5  # seconds at the start and end that should be calm

# Score: 100 - sum over kinds and severities of min(cap, weight * (events + seconds)).
SEVERITY_WEIGHT = {"info": 0.1, "warning": 1.0, "error": 5.0}
SEVERITY_CAP = {"info": 2.0, "warning": 8.0, "error": 25.0}


@dataclass
class Violation:
    kind: str
    severity: str
    joint: str | None
    start: int
    end: int
    value: float
    limit: float
    message: str

    def to_dict(self) -> dict:
        d = asdict(self)
        d["value"] = _num(self.value)
        d["limit"] = _num(self.limit)
        return d


@dataclass
class Report:
    fps: float
    frames: int
    violations: list[Violation]
    summary: dict
    metrics: dict = field(default_factory=dict)

    @property
    def errors(self) -> list[Violation]:
        return [v for v in self.violations if v.severity == "error"]

    def kinds(self, severity: str | None = "error") -> set[str]:
        return {v.kind for v in self.violations if severity is None or v.severity == severity}

    def find(self, kind: str | None = None, severity: str | None = None,
             joint: str | None = None) -> list[Violation]:
        return [v for v in self.violations
                if (kind is None or v.kind == kind) and (severity is None or v.severity == severity)
                and (joint is None or v.joint == joint)]

    def to_json(self) -> dict:
        return {
            "fps": float(self.fps),
            "frames": int(self.frames),
            "duration": float(self.frames / self.fps) if self.fps else 0.0,
            "violations": [v.to_dict() for v in self.violations],
            "summary": _clean(self.summary),
            "metrics": {k: _num(v) for k, v in self.metrics.items()},
        }

    def format_text(self, limit: int = 40) -> str:
        s = self.summary
        lines = [f"{self.frames} frames at {self.fps:g} fps ({self.frames / self.fps:.1f} s): "
                 f"score {s['score']:.1f}/100, {s['errors']} errors, {s['warnings']} warnings, "
                 f"{s['infos']} notes"]
        for kind, counts in s["by_kind"].items():
            parts = ", ".join(f"{n} {sev}" for sev, n in counts.items() if n)
            lines.append(f"  {kind:18s} {parts}")
        shown = sorted(self.violations, key=lambda v: (-SEVERITIES.index(v.severity), v.start))
        if shown:
            lines.append("")
        for v in shown[:limit]:
            where = f"frames {v.start}-{v.end}" if v.end != v.start else f"frame {v.start}"
            lines.append(f"  [{v.severity:7s}] {where:>17s} {v.kind}: {v.message}")
        if len(shown) > limit:
            lines.append(f"  ... and {len(shown) - limit} more")
        for key, value in self.metrics.items():
            lines.append(f"  {key}: {_num(value)}")
        return "\n".join(lines)


def _clean(obj):
    """JSON-safe copy: numpy scalars to Python, NaN/inf to None."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return _num(obj)
    return obj


def _num(x):
    if x is None:
        return None
    x = float(x)
    return None if not np.isfinite(x) else round(x, 6)


# ------------------------------------------------------------------ utilities


def runs(mask: np.ndarray, gap: int = 0) -> list[tuple[int, int]]:
    """Inclusive (start, end) of the True runs of a 1-D mask; runs separated by at
    most ``gap`` False frames are merged."""
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return []
    edges = np.flatnonzero(np.diff(np.concatenate([[False], mask, [False]]).astype(np.int8)))
    starts, ends = edges[0::2], edges[1::2] - 1
    if gap > 0 and len(starts) > 1:
        new_run = starts[1:] - ends[:-1] - 1 > gap
        starts = starts[np.concatenate([[True], new_run])]
        ends = ends[np.concatenate([new_run, [True]])]
    return list(zip(starts.tolist(), ends.tolist()))


def body_height(positions: np.ndarray) -> float:
    """Standing height (m) of the skeleton of ``positions``: REST_HEIGHT scaled by the
    median lengths of the pelvis-to-head and pelvis-to-ankle chains against the rest
    skeleton's."""
    from engine.skeleton import rest_positions

    up_chain, legs = [0, 3, 6, 9, 12, 15], ([0, 1, 4, 7], [0, 2, 5, 8])

    def length(p, chain):
        seg = [np.linalg.norm(p[..., a, :] - p[..., b, :], axis=-1) for a, b in zip(chain[:-1], chain[1:])]
        return sum(float(np.median(x)) for x in seg)

    p = np.asarray(positions, dtype=np.float64)
    rp = rest_positions()
    now = length(p, up_chain) + 0.5 * (length(p, legs[0]) + length(p, legs[1]))
    rest = length(rp, up_chain) + 0.5 * (length(rp, legs[0]) + length(rp, legs[1]))
    return float(REST_HEIGHT * now / rest)


def norm3(v: np.ndarray) -> np.ndarray:
    """Euclidean norm over a last axis of length 3 (much faster than np.linalg.norm)."""
    return np.sqrt(v[..., 0] * v[..., 0] + v[..., 1] * v[..., 1] + v[..., 2] * v[..., 2])


def _matrices_t_last(q: np.ndarray) -> np.ndarray:
    """(T, J, 4) wxyz quaternions to (J, 3, 3, T) rotation matrices."""
    qt = np.ascontiguousarray(np.transpose(q, (2, 1, 0)))  # (4, J, T): one copy
    w, x, y, z = qt
    n = 1.0 / np.sqrt(w * w + x * x + y * y + z * z)
    w, x, y, z = w * n, x * n, y * n, z * n
    m = np.empty((q.shape[1], 3, 3, q.shape[0]))
    xx, yy, zz, xy, xz, yz, wx, wy, wz = x * x, y * y, z * z, x * y, x * z, y * z, w * x, w * y, w * z
    m[:, 0, 0] = 1 - 2 * (yy + zz)
    m[:, 0, 1] = 2 * (xy - wz)
    m[:, 0, 2] = 2 * (xz + wy)
    m[:, 1, 0] = 2 * (xy + wz)
    m[:, 1, 1] = 1 - 2 * (xx + zz)
    m[:, 1, 2] = 2 * (yz - wx)
    m[:, 2, 0] = 2 * (xz - wy)
    m[:, 2, 1] = 2 * (yz + wx)
    m[:, 2, 2] = 1 - 2 * (xx + yy)
    return m


def quat_to_matrix_np(q: np.ndarray) -> np.ndarray:
    """(T, J, 4) wxyz quaternions to (T, J, 3, 3) matrices (numpy; torch is slow here)."""
    return np.moveaxis(_matrices_t_last(np.asarray(q, dtype=np.float64)), -1, 0)


def forward_kinematics(rotations: np.ndarray, root: np.ndarray, need_global: bool = True):
    """(T,24,3) world positions and (T,24,3,3) global rotations (None unless
    ``need_global``) of the canonical skeleton from (T,24,4) local quaternions and
    (T,3) root positions, in numpy: the same result as
    engine.skeleton.forward_kinematics, several times faster on the CPU (time last)."""
    q = np.asarray(rotations, dtype=np.float64)
    local = _matrices_t_last(q)  # (J, 3, 3, T)
    J, T = local.shape[0], local.shape[-1]
    glob = np.empty_like(local)
    pos = np.empty((J, 3, T))
    glob[0] = local[0]
    pos[0] = np.asarray(root, dtype=np.float64).T
    has_child = np.zeros(J, dtype=bool)
    has_child[SMPL_PARENTS[1:]] = True
    for j in range(1, J):
        p = SMPL_PARENTS[j]
        g, off = glob[p], REST_OFFSETS[j]
        pos[j] = pos[p] + g[:, 0] * off[0] + g[:, 1] * off[1] + g[:, 2] * off[2]
        if has_child[j] or need_global:
            l = local[j]
            for i in range(3):
                gi0, gi1, gi2 = g[i, 0], g[i, 1], g[i, 2]
                glob[j, i] = gi0 * l[0] + gi1 * l[1] + gi2 * l[2]
    positions = np.ascontiguousarray(np.transpose(pos, (2, 0, 1)))
    if not need_global:
        return positions, None
    return positions, np.ascontiguousarray(np.transpose(glob, (3, 0, 1, 2)))


def _stride(fps: float) -> int:
    return max(1, int(round(fps / DYNAMICS_HZ)))


def dynamics(positions: np.ndarray, fps: float, height: float):
    """Speed, acceleration and jerk magnitudes (T, 24) in body heights per s^n, by
    central differences with stride k = round(fps / 30), stamped at the centre frame
    (edges padded with the nearest valid value)."""
    p = positions / height
    k = _stride(fps)
    h = k / fps
    T = len(p)
    out = []
    for order in (1, 2, 3):
        val = np.zeros((T, p.shape[1]))
        if order == 1 and T > 2 * k:
            d = (p[2 * k:] - p[:-2 * k]) / (2 * h)
            val[k:T - k] = norm3(d)
        elif order == 2 and T > 2 * k:
            d = (p[2 * k:] - 2 * p[k:-k] + p[:-2 * k]) / h**2
            val[k:T - k] = norm3(d)
        elif order == 3 and T > 3 * k:
            d = (p[3 * k:] - 3 * p[2 * k:-k] + 3 * p[k:-2 * k] - p[:-3 * k]) / h**3
            lo = (3 * k) // 2
            val[lo:lo + len(d)] = norm3(d)
        out.append(val)
    return out


def angular_steps(rotations: np.ndarray) -> np.ndarray:
    """(T-1, 24) geodesic angle (degrees) between consecutive local rotations."""
    dot = np.abs(np.sum(rotations[1:] * rotations[:-1], -1))
    return np.degrees(2 * np.arccos(np.clip(dot, 0.0, 1.0)))


def flip_threshold(fps: float) -> float:
    return float(np.clip(FLIP_DEG_PER_S / fps, FLIP_MIN_DEG, FLIP_MAX_DEG))


def find_flips(rotations: np.ndarray, fps: float, threshold: float | None = None
               ) -> list[tuple[int, int, int, float, bool]]:
    """Rotational jumps: (joint, first bad frame, last bad frame, peak step degrees,
    returned), steps over ``threshold`` degrees a frame (by default flip_threshold).
    A jump that comes back within FLIP_MAX_SECONDS near its starting
    rotation is one segment of bad frames (a flip); a jump that does not is reported
    as the two frames around it."""
    q = np.asarray(rotations, dtype=np.float64)
    T = len(q)
    if T < 2:
        return []
    thr = flip_threshold(fps) if threshold is None else threshold
    steps = angular_steps(q)
    max_len = max(1, int(round(FLIP_MAX_SECONDS * fps)))
    out = []
    for j in np.flatnonzero((steps > thr).any(0)):
        big = np.flatnonzero(steps[:, j] > thr)  # step i goes from frame i to i + 1
        used = np.zeros(len(big), dtype=bool)
        for n, i in enumerate(big):
            if used[n]:
                continue
            used[n] = True
            before = q[i, j]
            end = None
            for m in range(n + 1, len(big)):
                k = big[m]
                if k - i > max_len:
                    break
                back = np.degrees(2 * np.arccos(min(1.0, abs(float(np.dot(before, q[k + 1, j]))))))
                if back < thr * 0.5:
                    end = k
                    used[n:m + 1] = True
                    break
            if end is not None:
                out.append((int(j), int(i + 1), int(end), float(steps[i:end + 1, j].max()), True))
            else:
                out.append((int(j), int(i), int(i + 1), float(steps[i, j]), False))
    return out


def dot3(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a[..., 0] * b[..., 0] + a[..., 1] * b[..., 1] + a[..., 2] * b[..., 2]


def _segment_distance(p1, q1, p2, q2):
    """Closest distance between segments p1-q1 and p2-q2, all (..., 3)."""
    return norm3(segment_gap(p1, q1, p2, q2)[0])


def segment_gap(p1, q1, p2, q2):
    """(gap, s, t): the (..., 3) vector from the closest point on p2-q2 to the closest
    point on p1-q1, and where those points lie as fractions along each segment."""
    s, t = segment_closest(p1, q1, p2, q2)
    return p1 + (q1 - p1) * s[..., None] - p2 - (q2 - p2) * t[..., None], s, t


def segment_closest(p1, q1, p2, q2):
    """(s, t) in [0, 1]: where segments p1-q1 and p2-q2 (all (..., 3)) come closest,
    as fractions along each (Ericson 5.1.9)."""
    d1, d2, r = q1 - p1, q2 - p2, p1 - p2
    a, e, f, c, b = dot3(d1, d1), dot3(d2, d2), dot3(d2, r), dot3(d1, r), dot3(d1, d2)
    a_safe, e_safe = np.maximum(a, 1e-12), np.maximum(e, 1e-12)
    denom = a * e - b * b
    ok = denom > 1e-12
    s = np.where(ok, np.clip((b * f - c * e) / np.where(ok, denom, 1.0), 0, 1), 0.0)
    t = (b * s + f) / e_safe
    s = np.where(t < 0, np.clip(-c / a_safe, 0, 1), np.where(t > 1, np.clip((b - c) / a_safe, 0, 1), s))
    return s, np.clip(t, 0, 1)


def center_of_mass(positions: np.ndarray) -> np.ndarray:
    """(T, 3) whole-body centre of mass from Winter's segment table."""
    p = positions
    com = np.zeros((len(p), 3))
    for a, b, mass, frac in SEGMENT_MASS:
        pa, pb = p[:, JOINT[a]], p[:, JOINT[b]]
        com += mass * (pa + frac * (pb - pa))
    hips = 0.5 * (p[:, JOINT["L_hip"]] + p[:, JOINT["R_hip"]])
    shoulders = 0.5 * (p[:, JOINT["L_shoulder"]] + p[:, JOINT["R_shoulder"]])
    com += TRUNK_MASS * 0.5 * (hips + shoulders)
    total = TRUNK_MASS + sum(m for _, _, m, _ in SEGMENT_MASS)
    return com / total


def _point_segment_distance(p, a, b):
    ab = b - a
    t = np.clip(np.sum((p - a) * ab, -1) / np.maximum(np.sum(ab * ab, -1), 1e-12), 0, 1)
    return np.linalg.norm(p - (a + ab * t[..., None]), axis=-1)


def _hull_distance(point: np.ndarray, pts: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Distance (T,) from 2-D ``point`` (T,2) to the convex hull of up to K points
    ``pts`` (T,K,2) with ``valid`` (T,K); 0 inside; inf with no valid point.

    The hull is the union of the triangles of all point triples, and an outside
    point's distance to it is the least distance to the segments of all pairs.
    """
    T, K, _ = pts.shape
    dist = np.full(T, np.inf)
    for i in range(K):
        d = np.linalg.norm(point - pts[:, i], axis=-1)
        dist = np.where(valid[:, i], np.minimum(dist, d), dist)
        for j in range(i + 1, K):
            ok = valid[:, i] & valid[:, j]
            d = _point_segment_distance(point, pts[:, i], pts[:, j])
            dist = np.where(ok, np.minimum(dist, d), dist)
    inside = np.zeros(T, dtype=bool)
    for i in range(K):
        for j in range(i + 1, K):
            for k in range(j + 1, K):
                ok = valid[:, i] & valid[:, j] & valid[:, k]
                a, b, c = pts[:, i], pts[:, j], pts[:, k]
                def cross(u, v):
                    return u[:, 0] * v[:, 1] - u[:, 1] * v[:, 0]
                s1 = cross(b - a, point - a)
                s2 = cross(c - b, point - b)
                s3 = cross(a - c, point - c)
                inn = ((s1 >= 0) & (s2 >= 0) & (s3 >= 0)) | ((s1 <= 0) & (s2 <= 0) & (s3 <= 0))
                inside |= ok & inn
    return np.where(inside, 0.0, dist)


# ------------------------------------------------------------------ the checks


class _Ctx:
    def __init__(self, motion, positions, fps, height):
        self.motion = motion
        self.rotations = None if motion is None else motion.rotations
        self.P = positions
        self.fps = float(fps)
        self.T = len(positions)
        self.height = float(height)
        self.scale = self.height / REST_HEIGHT
        self.out: list[Violation] = []
        self._contacts = None
        self._low = None
        self._ground = None

    def add(self, kind, severity, joint, start, end, value, limit, message):
        self.out.append(Violation(kind, severity, joint, int(start), int(end), float(value),
                                  float(limit), message))

    def seconds(self, frames) -> float:
        return frames / self.fps

    @property
    def ground(self) -> float:
        """Floor height handed to the metrics' contact thresholds (see contact_ground)."""
        if self._ground is None:
            self._ground = M.contact_ground(self.P, self.height)
        return self._ground

    @property
    def contacts(self):
        """(T, 4) planted flags (metrics.contacts_from_positions: low and slow)."""
        if self._contacts is None:
            self._contacts = M.contacts_from_positions(self.P, self.fps, height=self.height,
                                                       ground=self.ground)
        return self._contacts

    @property
    def low(self):
        """(T, 2) left/right foot on the floor: ankle and toe within contact heights."""
        if self._low is None:
            self._low = feet_low(self.P, self.height, self.ground)
        return self._low


def feet_low(positions: np.ndarray, height: float, ground: float) -> np.ndarray:
    """(T, 2) left/right foot on the floor: its ankle and its toe both within the
    metrics' contact heights (scaled to ``height``) above ``ground``."""
    low = M.low_joints(positions, height / M.REFERENCE_HEIGHT, ground)
    return low[:, 0::2] & low[:, 1::2]


def _check_joint_limits(ctx: _Ctx):
    from engine import joint_limits as JL

    angles = JL.measure(ctx.rotations)
    for check in JL.CHECKS:
        v = angles[check.name]
        lim = check.limit
        w_lo, w_hi = lim.warn
        bad_w = (v < w_lo) | (v > w_hi)
        if not bad_w.any():
            continue
        bad_e = np.zeros_like(bad_w) if lim.error is None else (v < lim.error[0]) | (v > lim.error[1])
        region = check.key if check.key in JL.CHAINS else None
        label = f"{region} spine" if region else check.joint
        for sev, mask, (lo, hi) in (("error", bad_e, lim.error or lim.warn),
                                    ("warning", bad_w & ~bad_e, lim.warn)):
            for s, e in runs(mask, gap=1):
                seg = v[s:e + 1]
                over_hi = seg.max() - hi
                under_lo = lo - seg.min()
                value, limit = (seg.max(), hi) if over_hi >= under_lo else (seg.min(), lo)
                ctx.add("joint_limit", sev, check.joint, s, e, value, limit,
                        f"{label} {lim.angle.replace('_', ' ')} {value:.0f}° outside "
                        f"[{lo:g}, {hi:g}]° ({'hard limit' if sev == 'error' else 'normal range'})")


def _check_flips(ctx: _Ctx):
    thr = flip_threshold(ctx.fps)
    for j, s, e, peak, returned in find_flips(ctx.rotations, ctx.fps):
        n = e - s + 1
        msg = (f"{SMPL_NAMES[j]} rotation flips by {peak:.0f}° and back ({n} frame{'s' * (n > 1)})"
               if returned else f"{SMPL_NAMES[j]} rotation jumps {peak:.0f}° in one frame")
        ctx.add("flip", "error", SMPL_NAMES[j], s, e, peak, thr, msg)


def _check_dynamics(ctx: _Ctx):
    values = dynamics(ctx.P, ctx.fps, ctx.height)
    units = {"velocity": "body heights/s", "acceleration": "body heights/s²", "jerk": "body heights/s³"}
    k = _stride(ctx.fps)
    for (kind, (ref, fw, fe)), val in zip(DYNAMIC_FACTORS.items(), values):
        ratio = val / ref
        bad = ratio > fw
        if not bad.any():
            continue
        for j in np.flatnonzero(bad.any(0)):
            for s, e in runs(bad[:, j], gap=k):
                peak = float(ratio[s:e + 1, j].max())
                sev = "error" if peak > fe else "warning"
                limit = (fe if sev == "error" else fw) * ref[j]
                value = peak * ref[j]
                ctx.add(kind, sev, SMPL_NAMES[j], s, e, value, limit,
                        f"{SMPL_NAMES[j]} {kind} {value:.3g} {units[kind]} is {peak:.1f}x the real-mocap "
                        f"reference ({ref[j]:.3g})")


def _check_jitter(ctx: _Ctx):
    if ctx.T < 8:
        return
    sigma = max(1.0, ctx.fps / 30.0)
    resid = norm3(ctx.P - gaussian_filter1d(ctx.P, sigma, axis=0, mode="nearest"))
    win = max(3, int(round(JITTER_WINDOW_S * ctx.fps)))
    level = uniform_filter1d(resid, win, axis=0, mode="nearest") / ctx.height  # (T, 24)
    worst = level.max(1)
    bad = worst > JITTER_WARN
    for s, e in runs(bad, gap=win // 2):
        j = int(level[s:e + 1].max(0).argmax())
        peak = float(worst[s:e + 1].max())
        ctx.add("jitter", "warning", SMPL_NAMES[j], s, e, peak, JITTER_WARN,
                f"high-frequency tremble: {peak * ctx.height * 100:.1f} cm mean deviation from the "
                f"smoothed path (worst joint {SMPL_NAMES[j]})")


def _check_ground(ctx: _Ctx):
    depth = (JOINT_RADIUS * ctx.scale)[None] - ctx.P[:, :, 2]  # (T, 24) > 0: in the floor
    worst = depth.max(1)
    warn, err = GROUND_WARN * ctx.scale, GROUND_ERROR * ctx.scale
    for s, e in runs(worst > warn, gap=1):
        seg = depth[s:e + 1]
        peak = float(seg.max())
        j = int(seg.max(0).argmax())
        sev = "error" if peak > err else "warning"
        ctx.add("ground", sev, SMPL_NAMES[j], s, e, peak, err if sev == "error" else warn,
                f"{SMPL_NAMES[j]} {peak * 100:.1f} cm into the floor")


def foot_skating(P: np.ndarray, fps: float, height: float, low: np.ndarray | None = None):
    """Per foot (0 = left, 1 = right): list of (start, end, slid metres) of the runs
    of frames where the foot is on the floor, with the distance it slid there.

    On the floor: ``feet_low`` (ankle and toe within metrics' contact heights above
    ``contact_ground``).
    Sliding: the foot's horizontal speed, min(ankle, toe), above metrics' skating speed
    (1 cm per 30 fps frame at 1.7 m); the slid distance sums those steps, leaving out
    the first and last SKATE_TRIM_S of the contact (touch-down and lift-off of a low,
    gliding step) and contacts shorter than SKATE_MIN_S.
    """
    scale = height / M.REFERENCE_HEIGHT
    if low is None:
        low = feet_low(P, height, M.contact_ground(P, height))
    feet = P[:, M.FOOT_JOINTS][:, :, :2]
    step = np.zeros((len(P), 4))
    if len(P) > 1:
        step[1:] = np.linalg.norm(np.diff(feet, axis=0), axis=-1)
    foot_step = np.minimum(step[:, 0::2], step[:, 1::2])  # (T, 2), step into frame t
    sliding = foot_step > SKATE_SPEED * scale / fps
    trim = int(round(SKATE_TRIM_S * fps))
    min_len = int(round(SKATE_MIN_S * fps))
    out = []
    for f in range(2):
        res = []
        for s, e in runs(low[:, f]):
            if e - s + 1 < min_len:
                continue  # a foot passing low over the floor, not a contact
            inner = np.arange(s + trim + 1, e - trim + 1)
            slid = float(np.sum(foot_step[inner, f] * sliding[inner, f])) if len(inner) else 0.0
            res.append((s, e, slid))
        out.append(res)
    return out


def _check_foot_skate(ctx: _Ctx):
    warn, err = SKATE_WARN * ctx.scale, SKATE_ERROR * ctx.scale
    for f, intervals in enumerate(foot_skating(ctx.P, ctx.fps, ctx.height, ctx.low)):
        joint = ("L_ankle", "R_ankle")[f]
        for s, e, slid in intervals:
            if slid <= warn:
                continue
            sev = "error" if slid > err else "warning"
            ctx.add("foot_skate", sev, joint, s, e, slid, err if sev == "error" else warn,
                    f"{'left' if f == 0 else 'right'} foot slides {slid * 100:.0f} cm while on the floor")


def _check_bones(ctx: _Ctx, reference: np.ndarray | None):
    child = np.arange(1, 24)
    length = norm3(ctx.P[:, child] - ctx.P[:, SMPL_PARENTS[child]])
    ref = np.median(length, 0) if reference is None else reference
    rel = np.abs(length - ref) / np.maximum(ref, 1e-9)
    bad = rel > BONE_WARN
    for b in np.flatnonzero(bad.any(0)):
        j = int(child[b])
        for s, e in runs(bad[:, b], gap=1):
            peak = float(rel[s:e + 1, b].max())
            sev = "error" if peak > BONE_ERROR else "warning"
            limit = BONE_ERROR if sev == "error" else BONE_WARN
            ctx.add("bone_length", sev, SMPL_NAMES[j], s, e, peak, limit,
                    f"bone {SMPL_NAMES[SMPL_PARENTS[j]]}-{SMPL_NAMES[j]} length off by {peak * 100:.0f}%")


def _check_mismatch(ctx: _Ctx, stored: np.ndarray):
    fk = ctx.motion.positions
    if stored.shape != fk.shape:
        ctx.add("positions_mismatch", "error", None, 0, ctx.T - 1, np.nan, 0,
                f"stored positions have shape {stored.shape}, FK gives {fk.shape}")
        return
    err = norm3(stored - fk)  # (T, 24)
    worst = err.max(1)
    warn, error = MISMATCH_WARN * ctx.scale, MISMATCH_ERROR * ctx.scale
    for s, e in runs(worst > warn, gap=1):
        peak = float(worst[s:e + 1].max())
        j = int(err[s:e + 1].max(0).argmax())
        sev = "error" if peak > error else "warning"
        ctx.add("positions_mismatch", sev, SMPL_NAMES[j], s, e, peak, error if sev == "error" else warn,
                f"stored {SMPL_NAMES[j]} position is {peak * 100:.1f} cm from forward kinematics")


def capsule_ratios(P: np.ndarray, scale: float, pairs=CAPSULE_PAIRS) -> np.ndarray:
    """(T, len(pairs)) axis distance of each capsule pair as a fraction of their summed
    radii (1 = touching; inf where the bounding spheres are clear of the warning)."""
    names = list(CAPSULES)
    a_idx = np.array([JOINT[CAPSULES[n][0]] for n in names])
    b_idx = np.array([JOINT[CAPSULES[n][1]] for n in names])
    radius = np.array([CAPSULES[n][2] for n in names]) * scale
    i1 = np.array([names.index(p) for p, _ in pairs])
    i2 = np.array([names.index(q) for _, q in pairs])
    A, B = P[:, a_idx], P[:, b_idx]  # (T, capsules, 3)
    mid, half = 0.5 * (A + B), 0.5 * norm3(B - A)
    reach = radius[i1] + radius[i2]
    # bounding spheres first: most frames have every pair far apart
    near = norm3(mid[:, i1] - mid[:, i2]) < half[:, i1] + half[:, i2] + reach * PENETRATION_WARN
    ratio = np.full(near.shape, np.inf)
    t_idx, k_idx = np.nonzero(near)
    if len(t_idx):
        dist = _segment_distance(A[t_idx, i1[k_idx]], B[t_idx, i1[k_idx]],
                                 A[t_idx, i2[k_idx]], B[t_idx, i2[k_idx]])
        ratio[t_idx, k_idx] = dist / reach[k_idx]
    return ratio


def _check_self_penetration(ctx: _Ctx):
    ratio = capsule_ratios(ctx.P, ctx.scale)
    bad = ratio < PENETRATION_WARN
    for k in np.flatnonzero(bad.any(0)):
        n1, n2 = CAPSULE_PAIRS[k]
        joint = CAPSULES[n1][1]
        for s, e in runs(bad[:, k], gap=2):
            low = float(ratio[s:e + 1, k].min())
            sev = "error" if low < PENETRATION_ERROR and (n1, n2) not in PENETRATION_WARN_ONLY else "warning"
            depth = (1 - low) * (CAPSULES[n1][2] + CAPSULES[n2][2]) * ctx.scale
            ctx.add("self_penetration", sev, joint, s, e, low,
                    PENETRATION_ERROR if sev == "error" else PENETRATION_WARN,
                    f"{n1} sinks {depth * 100:.0f} cm into {n2} (axes {low * 100:.0f}% of the radii apart)")


def _check_balance(ctx: _Ctx):
    if ctx.T < 3:
        return
    com = center_of_mass(ctx.P)
    speed = np.linalg.norm(np.gradient(gaussian_filter1d(com[:, :2], max(1.0, ctx.fps / 15), axis=0),
                                       axis=0), axis=-1) * ctx.fps
    low = ctx.low
    P = ctx.P
    pts, valid = [], []
    for f, (ankle, toe) in enumerate(((7, 10), (8, 11))):
        a, t = P[:, ankle, :2], P[:, toe, :2]
        d = t - a
        d = d / np.maximum(np.linalg.norm(d, axis=-1, keepdims=True), 1e-9)
        pts += [a - HEEL_BACK * ctx.scale * d, t]
        valid += [low[:, f], low[:, f]]
    pts = np.stack(pts, 1)
    valid = np.stack(valid, 1)
    support = valid.any(1)
    static = speed < BALANCE_SPEED * ctx.scale
    dist = np.zeros(ctx.T)
    idx = np.flatnonzero(support & static)
    if len(idx) == 0:
        return
    dist[idx] = _hull_distance(com[idx, :2], pts[idx], valid[idx])
    margin = BALANCE_MARGIN * ctx.scale
    bad = support & static & (dist > margin)
    min_len = int(round(BALANCE_MIN_S * ctx.fps))
    for s, e in runs(bad, gap=2):
        if e - s + 1 < min_len:
            continue
        peak = float(dist[s:e + 1].max())
        sev = "warning" if peak > BALANCE_WARN * ctx.scale else "info"
        ctx.add("balance", sev, None, s, e, peak, margin,
                f"static pose with the centre of mass {peak * 100:.0f} cm outside the feet on the floor")


def _check_frozen(ctx: _Ctx):
    if ctx.T < 3:
        return
    steps = angular_steps(ctx.rotations)  # (T-1, 24)
    moving = float(np.mean(norm3(np.diff(ctx.P, axis=0))) * ctx.fps / ctx.height)
    if moving < 0.05:
        return  # the whole body is still
    min_len = int(round(FROZEN_MIN_S * ctx.fps))
    for name in FROZEN_JOINTS:
        j = JOINT[name]
        for s, e in runs(steps[:, j] < FROZEN_STEP_DEG):
            if e - s + 1 >= min_len:
                ctx.add("frozen_joint", "info", name, s, e + 1, (e + 2 - s) / ctx.fps, FROZEN_MIN_S,
                        f"{name} does not move at all for {(e + 2 - s) / ctx.fps:.1f} s "
                        "(dropped or missing capture data?)")


# ------------------------------------------------------------------ music checks


def _music_parts(music):
    """(beats s, sections list, start s) from MusicFeatures, a dict or a beat list."""
    if music is None:
        return None, None, 0.0
    if isinstance(music, dict):
        return (np.asarray(music.get("beats", []), dtype=float), music.get("sections"),
                float(music.get("start", 0.0)))
    if hasattr(music, "beats"):
        return (np.asarray(music.beats, dtype=float), getattr(music, "sections", None),
                float(getattr(music, "start", 0.0)))
    return np.asarray(music, dtype=float).reshape(-1), None, 0.0


def _on_time(ctx: _Ctx, beats: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(offsets s, inside mask, fraction on time) of ``beats`` against the kinetic beats."""
    offsets = M.beat_offsets(ctx.P, ctx.fps, beats)
    inside = np.isfinite(offsets)
    share = float(np.mean(np.abs(offsets[inside]) <= BEAT_TOLERANCE)) if inside.any() else 0.0
    return offsets, inside, share


def _counted_beats(ctx: _Ctx, beats: np.ndarray) -> tuple[np.ndarray, int, tuple[np.ndarray, np.ndarray, float]]:
    """(the beats the dance is counted on, music beats per count, their _on_time): the
    better of the two half-time grids where half or more of its beats are on time and
    the share is over HALF_TIME_GAIN times every beat's, else every beat. Dancers take
    fast music at half time (engine.generate.fold_tempo does too); a dance on every
    beat is as much on time on either half grid, so it stays counted on every beat."""
    every = _on_time(ctx, beats)
    if len(beats) < 4:
        return beats, 1, every
    half, timing = max(((b, _on_time(ctx, b)) for b in (beats[0::2], beats[1::2])), key=lambda h: h[1][2])
    if timing[2] >= 0.5 and timing[2] > HALF_TIME_GAIN * every[2]:
        return half, 2, timing
    return beats, 1, every


def _check_beats(ctx: _Ctx, beats: np.ndarray, metrics: dict):
    if beats is None or len(beats) == 0:
        return
    metrics["bas"] = M.bas(ctx.P, ctx.fps, beats)  # the Bailando protocol: every music beat
    beats, per_count, (offsets, inside, share) = _counted_beats(ctx, beats)
    if not inside.any():
        return
    metrics["beats_per_count"] = per_count
    metrics["beats_on_time"] = share
    metrics["beat_offset_median_ms"] = float(np.median(np.abs(offsets[inside])) * 1000)
    counted, time = ("", "") if per_count == 1 else ("counted ", " (half time)")
    frames = np.rint(beats * ctx.fps).astype(int)
    off = inside & (np.abs(np.nan_to_num(offsets)) > BEAT_TOLERANCE)
    # merge consecutive off beats (in beat order) into one range
    for s, e in runs(off[inside]):
        idx = np.flatnonzero(inside)[s:e + 1]
        peak = float(np.max(np.abs(offsets[idx])))
        n = len(idx)
        ctx.add("beat_sync", "info", None, int(np.clip(frames[idx[0]], 0, ctx.T - 1)),
                int(np.clip(frames[idx[-1]], 0, ctx.T - 1)), peak, BEAT_TOLERANCE,
                f"{n} {counted}beat{'s' * (n > 1)}{time} with no kinetic beat within {BEAT_TOLERANCE * 1000:.0f} ms "
                f"(worst {peak * 1000:.0f} ms)")
    if share < 0.5:
        ctx.add("beat_sync", "warning", None, 0, ctx.T - 1, 1 - share, 0.5,
                f"only {share * 100:.0f}% of the music beats, and under half of every other beat, have a "
                f"kinetic beat within {BEAT_TOLERANCE * 1000:.0f} ms (BAS {metrics['bas']:.3f})")


def _speed_curve(ctx: _Ctx) -> np.ndarray:
    """(T,) mean joint speed in body heights per second."""
    v = np.zeros(ctx.T)
    if ctx.T > 1:
        v[1:] = norm3(np.diff(ctx.P, axis=0)).mean(1) * ctx.fps / ctx.height
        v[0] = v[1]
    return v


def _check_sections(ctx: _Ctx, sections, metrics: dict):
    speed = _speed_curve(ctx)
    if sections:
        energy = {}
        spans = {}
        for sec in sections:
            s = int(np.clip(round(float(sec["start"]) * ctx.fps), 0, ctx.T))
            e = int(np.clip(round(float(sec["end"]) * ctx.fps), 0, ctx.T))
            if e - s < 2:
                continue
            label = str(sec.get("label", "")).lower()
            energy.setdefault(label, []).append(float(speed[s:e].mean()))
            spans.setdefault(label, []).append((s, e - 1))
        metrics.update({f"energy_{k}": float(np.mean(v)) for k, v in energy.items()})
        calm = [np.mean(energy[k]) for k in ("intro", "outro") if k in energy]
        if "climax" in energy and calm:
            climax = float(np.mean(energy["climax"]))
            ref = float(max(calm))
            if climax <= ref:
                s, e = spans["climax"][0][0], spans["climax"][-1][1]
                ctx.add("section_structure", "warning", None, s, e, climax, ref,
                        f"climax motion energy {climax:.2f} body heights/s is not above the "
                        f"intro/outro's {ref:.2f}")
    # composed start and end
    n = max(2, int(round(COMPOSED_WINDOW * ctx.fps)))
    if ctx.T < 4 * n:
        return
    typical = float(np.median(speed))
    for where, seg, s, e in (("start", speed[:n], 0, n - 1), ("end", speed[-n:], ctx.T - n, ctx.T - 1)):
        mean = float(seg.mean())
        metrics[f"speed_{where}"] = mean
        if mean > typical:
            ctx.add("composition", "warning", None, s, e, mean, typical,
                    f"the dance {'starts' if where == 'start' else 'ends'} in motion: mean speed "
                    f"{mean:.2f} body heights/s in the {'first' if where == 'start' else 'last'} "
                    f"{COMPOSED_WINDOW:g} s, above the dance's median {typical:.2f}")


# ------------------------------------------------------------------ entry point


def summarize(violations: list[Violation], fps: float, frames: int) -> dict:
    """Counts by kind and severity, and the score (docs/validator.md).

    Per kind and severity, the violations' frame ranges are united; ``events`` is the
    number of separate ranges and ``seconds`` the frames they cover over ``fps``.
    penalty = SEVERITY_WEIGHT * (events + seconds), capped at SEVERITY_CAP per kind and
    severity; score = max(0, 100 - the sum of all penalties).
    """
    by_kind: dict[str, dict[str, int]] = {}
    masks: dict[tuple[str, str], np.ndarray] = {}
    for v in violations:
        counts = by_kind.setdefault(v.kind, {s: 0 for s in SEVERITIES})
        counts[v.severity] += 1
        mask = masks.setdefault((v.kind, v.severity), np.zeros(max(frames, 1), dtype=bool))
        mask[max(0, v.start):min(frames, v.end + 1)] = True
    penalties: dict[str, float] = {}
    for (kind, sev), mask in masks.items():
        events = len(runs(mask))
        seconds = mask.sum() / fps
        p = min(SEVERITY_CAP[sev], SEVERITY_WEIGHT[sev] * (events + seconds))
        penalties[kind] = penalties.get(kind, 0.0) + p
    counts = {s: sum(1 for v in violations if v.severity == s) for s in SEVERITIES}
    return {
        "errors": counts["error"],
        "warnings": counts["warning"],
        "infos": counts["info"],
        "by_kind": dict(sorted(by_kind.items())),
        "penalties": {k: round(p, 2) for k, p in sorted(penalties.items())},
        "score": round(max(0.0, 100.0 - sum(penalties.values())), 1),
    }


ALL_CHECKS = ("joint_limit", "flip", "bone_length", "positions_mismatch", "ground", "foot_skate",
              "dynamics", "jitter", "self_penetration", "balance", "frozen_joint", "beat_sync",
              "section_structure")


def validate(motion=None, music=None, *, positions=None, fps: float | None = None,
             height: float | None = None, checks=None) -> Report:
    """Validate a Motion (or raw positions) and return a Report.

    ``motion``: an engine.motion.Motion, or None with ``positions`` (T, 24, 3) and ``fps``.
    ``positions``: raw world positions; with a Motion, stored positions to compare with
    its forward kinematics (``positions_mismatch``) and to check bone lengths on.
    ``music``: MusicFeatures (``beats``, ``sections``, ``start``), a dict with those keys,
    or an array of beat times (seconds; frame 0 of the motion is ``start``).
    ``height``: body height (m); by default REST_HEIGHT for a Motion (canonical
    skeleton) and estimated from bone lengths for raw positions.
    ``checks``: an iterable of names from ALL_CHECKS to run (default: all).
    """
    from engine.errors import ChoreoError

    wanted = set(ALL_CHECKS if checks is None else checks)
    stored = None
    if motion is not None:
        fps = motion.fps
        if motion._positions is None:
            motion._positions = forward_kinematics(motion.rotations, motion.root_translation, False)[0]
        P = motion.positions
        if positions is not None:
            stored = np.asarray(positions, dtype=np.float64)
    else:
        if positions is None or fps is None:
            raise ChoreoError("validate needs a Motion, or positions and fps")
        P = np.asarray(positions, dtype=np.float64)
        if P.ndim != 3 or P.shape[1:] != (24, 3):
            raise ChoreoError(f"positions must be (T, 24, 3), got {P.shape}")
        if not np.isfinite(P).all():
            raise ChoreoError("positions contain NaN or infinite values")
    if len(P) == 0:
        raise ChoreoError("the motion has no frames")
    if height is None:
        height = REST_HEIGHT if motion is not None else body_height(P)
    ctx = _Ctx(motion, P, fps, height)
    metrics: dict = {}
    if motion is not None:
        if "joint_limit" in wanted:
            _check_joint_limits(ctx)
        if "flip" in wanted:
            _check_flips(ctx)
        if "frozen_joint" in wanted:
            _check_frozen(ctx)
    if "bone_length" in wanted:
        if motion is None:
            _check_bones(ctx, None)
        elif stored is not None and stored.shape == P.shape:
            sub = _Ctx(motion, stored, fps, height)
            rest = np.linalg.norm(REST_OFFSETS[1:], axis=-1)
            _check_bones(sub, rest)
            ctx.out += sub.out
    if stored is not None and "positions_mismatch" in wanted:
        _check_mismatch(ctx, stored)
    if "dynamics" in wanted:
        _check_dynamics(ctx)
    if "jitter" in wanted:
        _check_jitter(ctx)
    if "ground" in wanted:
        _check_ground(ctx)
    if "foot_skate" in wanted:
        _check_foot_skate(ctx)
        metrics["foot_skate_ratio"] = M.foot_skate_ratio(P, fps, height=height)
    if "self_penetration" in wanted:
        _check_self_penetration(ctx)
    if "balance" in wanted:
        _check_balance(ctx)
    beats, sections, start = _music_parts(music)
    if beats is not None:
        beats = beats - start
        if sections:
            sections = [dict(s, start=float(s["start"]) - start, end=float(s["end"]) - start)
                        for s in sections]
        if "beat_sync" in wanted:
            _check_beats(ctx, beats, metrics)
        if "section_structure" in wanted:
            _check_sections(ctx, sections, metrics)
    metrics["jitter"] = M.jitter(P, fps) if len(P) >= 8 else float("nan")
    violations = sorted(ctx.out, key=lambda v: (v.start, v.kind, v.joint or ""))
    return Report(float(fps), int(len(P)), violations, summarize(violations, fps, len(P)), metrics)
