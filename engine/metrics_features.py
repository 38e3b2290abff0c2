"""AIST++ API motion features, FID and diversity with Bailando's normalisation.

Vectorised ports of the AIST++ API (``aist_plusplus/features/kinetic.py``,
``manual.py``, ``utils.py``; fairmotion, BSD) as used by Bailando's
``utils/metrics_new.py``. Input is (T, 24, 3) metres, Z up, SMPL order at
``fps``; motion is resampled to 60 fps (AIST++'s rate) and, for the geometric
features, rotated to the API's Y-up frame. See docs/metrics.md.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg
from scipy.spatial.distance import pdist

from engine.metrics import HORIZONTAL, UP, _motion, resample_positions

FEATURE_FPS = 60
KINETIC_FRAME_TIME = 1.0 / 60  # KineticFeatures default
KINETIC_WINDOW = 2  # KineticFeatures sliding_window
GEOMETRIC_FRAME_TIME = 1.0 / 120  # time_per_frame in the API's utils.py, applied to 60 fps data

# (x, y, z) Z-up, facing -Y -> (x, z, -y) Y-up, facing +Z: a proper rotation.
Z_UP_TO_Y_UP = np.array([[1.0, 0, 0], [0, 0, 1.0], [0, -1.0, 0]])

# Body scales of ManualFeatures, from the SMPL template joints (Y-up metres).
_L_SHOULDER = np.array([1.99113488e-01, 2.36807942e-01, -1.80702247e-02])
_L_ELBOW = np.array([4.54445392e-01, 2.21158922e-01, -4.10167128e-02])
_R_SHOULDER = np.array([-1.91692337e-01, 2.36928746e-01, -1.23055102e-02])
_L_HIP = np.array([5.64076714e-02, -3.23069185e-01, 1.09197125e-02])
_R_HIP = np.array([-6.24834076e-02, -3.31302464e-01, 1.50412619e-02])
HL = float(np.linalg.norm(_L_SHOULDER - _L_ELBOW))  # humerus length
SW = float(np.linalg.norm(_L_SHOULDER - _R_SHOULDER))  # shoulder width
HW = float(np.linalg.norm(_L_HIP - _R_HIP))  # hip width

_JOINT = {name: i for i, name in enumerate((
    "root", "lhip", "rhip", "belly", "lknee", "rknee", "spine", "lankle", "rankle",
    "chest", "ltoes", "rtoes", "neck", "linshoulder", "rinshoulder", "head",
    "lshoulder", "rshoulder", "lelbow", "relbow", "lwrist", "rwrist", "lhand", "rhand",
))}
_CONSTANT = {"zero": (0.0, 0.0, 0.0), "y_unit": (0.0, 1.0, 0.0), "minus_y_unit": (0.0, -1.0, 0.0)}

# extract_manual_features, in its order: (kind, four points, threshold or angle range).
GEOMETRIC_FEATURES = (
    ("nmove", ("neck", "rhip", "lhip", "rwrist"), 1.8 * HL),
    ("nmove", ("neck", "lhip", "rhip", "lwrist"), 1.8 * HL),
    ("nplane", ("chest", "neck", "neck", "rwrist"), 0.2 * HL),
    ("nplane", ("chest", "neck", "neck", "lwrist"), 0.2 * HL),
    ("move", ("belly", "chest", "chest", "rwrist"), 1.8 * HL),
    ("move", ("belly", "chest", "chest", "lwrist"), 1.8 * HL),
    ("angle", ("relbow", "rshoulder", "relbow", "rwrist"), (0, 110)),
    ("angle", ("lelbow", "lshoulder", "lelbow", "lwrist"), (0, 110)),
    ("nplane", ("lshoulder", "rshoulder", "lwrist", "rwrist"), 2.5 * SW),
    ("move", ("lwrist", "rwrist", "rwrist", "lwrist"), 1.4 * HL),
    ("move", ("rwrist", "root", "lwrist", "root"), 1.4 * HL),
    ("move", ("lwrist", "root", "rwrist", "root"), 1.4 * HL),
    ("fast", ("rwrist",), 2.5 * HL),
    ("fast", ("lwrist",), 2.5 * HL),
    ("plane", ("root", "lhip", "ltoes", "rankle"), 0.38 * HL),
    ("plane", ("root", "rhip", "rtoes", "lankle"), 0.38 * HL),
    ("nplane", ("zero", "y_unit", "y_min", "rankle"), 1.2 * HL),
    ("nplane", ("zero", "y_unit", "y_min", "lankle"), 1.2 * HL),
    ("nplane", ("lhip", "rhip", "lankle", "rankle"), 2.1 * HW),
    ("angle", ("rknee", "rhip", "rknee", "rankle"), (0, 110)),
    ("angle", ("lknee", "lhip", "lknee", "lankle"), (0, 110)),
    ("fast", ("rankle",), 2.5 * HL),
    ("fast", ("lankle",), 2.5 * HL),
    ("angle", ("neck", "root", "rshoulder", "relbow"), (25, 180)),
    ("angle", ("neck", "root", "lshoulder", "lelbow"), (25, 180)),
    ("angle", ("neck", "root", "rhip", "rknee"), (50, 180)),
    ("angle", ("neck", "root", "lhip", "lknee"), (50, 180)),
    ("plane", ("rankle", "neck", "lankle", "root"), 0.5 * HL),
    ("angle", ("neck", "root", "zero", "y_unit"), (70, 110)),
    ("nplane", ("zero", "minus_y_unit", "y_min", "rwrist"), -1.2 * HL),
    ("nplane", ("zero", "minus_y_unit", "y_min", "lwrist"), -1.2 * HL),
    ("fast", ("root",), 2.3 * HL),
)


def _at_60(positions, fps: float) -> np.ndarray:
    p = resample_positions(_motion(positions), fps, FEATURE_FPS)
    if len(p) < 3:
        raise ValueError("motion features need at least 3 frames at 60 fps")
    return p


def _window_mean(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Mean of x[lo_i .. hi_i] (inclusive) along axis 0, for each i."""
    c = np.concatenate([np.zeros_like(x[:1]), np.cumsum(x, axis=0)])
    return (c[hi + 1] - c[lo]) / (hi - lo + 1).reshape((-1,) + (1,) * (x.ndim - 1))


def kinetic_features(positions, fps: float) -> np.ndarray:
    """(3J,) AIST++ kinetic features: per joint [mean |v_h|^2, mean v_up^2, mean |a|].

    At 60 fps, for frames i = 1..T-1: v is the mean of the steps p[k+1] - p[k],
    k = i-3..i+1, over 1/60 s; a is the mean of the second differences at
    frames i-2..i+2, over (1/60 s)^2 (both windows clipped to the clip).
    Units m^2/s^2, m^2/s^2, m/s^2.
    """
    p = _at_60(positions, fps)
    n = len(p)
    i = np.arange(1, n)
    lo = np.maximum(i - 1 - KINETIC_WINDOW, 0)
    velocity = _window_mean(np.diff(p, axis=0), lo,
                            np.minimum(i - 1 + KINETIC_WINDOW, n - 2)) / KINETIC_FRAME_TIME
    accel = _window_mean(np.diff(p, n=2, axis=0), lo,
                         np.minimum(i - 1 + KINETIC_WINDOW, n - 3)) / KINETIC_FRAME_TIME**2
    horizontal = np.sum(velocity[..., HORIZONTAL] ** 2, axis=-1).mean(axis=0)
    vertical = (velocity[..., UP] ** 2).mean(axis=0)
    expenditure = np.linalg.norm(accel, axis=-1).mean(axis=0)
    return np.stack([horizontal, vertical, expenditure], axis=-1).reshape(-1)


def _points(frames: np.ndarray, name: str) -> np.ndarray:
    """(N, 3) positions of a joint or of one of the API's special points (Y-up)."""
    if name == "y_min":
        y_min = frames[..., 1].min(axis=1)
        return np.stack([np.zeros_like(y_min), y_min, np.zeros_like(y_min)], axis=-1)
    if name in _CONSTANT:
        return np.broadcast_to(np.array(_CONSTANT[name]), (len(frames), 3))
    return frames[:, _JOINT[name]]


def _dot_unit(v: np.ndarray, direction: np.ndarray) -> np.ndarray:
    return np.sum(v * direction, axis=-1) / np.linalg.norm(direction, axis=-1)


def _feature(cur: np.ndarray, prev: np.ndarray, kind: str, names, param) -> np.ndarray:
    """One relational boolean feature for every frame, as in the API's utils.py."""
    j = [_points(cur, n) for n in names]
    if kind == "fast":
        step = j[0] - _points(prev, names[0])
        return np.linalg.norm(step, axis=-1) / GEOMETRIC_FRAME_TIME > param
    if kind == "plane":  # signed distance of j4 from the plane through j1, j2, j3
        return _dot_unit(j[3] - j[0], np.cross(j[2] - j[0], j[1] - j[0])) > param
    if kind == "nplane":  # signed distance of j4 from the plane through j3, normal j2 - j1
        return _dot_unit(j[3] - j[2], j[1] - j[0]) > param
    if kind == "angle":
        cos = _dot_unit(j[3] - j[2], j[1] - j[0]) / np.linalg.norm(j[3] - j[2], axis=-1)
        angle = np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))
        return (angle > param[0]) & (angle < param[1])
    # Velocity of a point relative to j1 along a direction. In the API, f_move
    # passes j3 as the moving point and never reads j4; f_nmove moves j4 along
    # the normal of the plane (j1, j2, j3).
    moving = names[2] if kind == "move" else names[3]
    relative = (_points(cur, moving) - j[0]) - (_points(prev, moving) - _points(prev, names[0]))
    direction = j[1] - j[0] if kind == "move" else np.cross(j[2] - j[0], j[1] - j[0])
    return _dot_unit(relative, direction) / GEOMETRIC_FRAME_TIME > param


def geometric_features(positions, fps: float) -> np.ndarray:
    """(32,) AIST++ "manual" features: fraction of frames 1..T-1 where each holds.

    The 32 relational booleans of ``extract_manual_features``, evaluated at
    60 fps in the API's Y-up frame with its fixed SMPL body scales.
    """
    p = _at_60(positions, fps) @ Z_UP_TO_Y_UP.T
    cur, prev = p[1:], p[:-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        flags = [_feature(cur, prev, kind, names, param)
                 for kind, names, param in GEOMETRIC_FEATURES]
    return np.mean(flags, axis=1)


# ---------------------------------------------------------------- FID, diversity


CONSTANT_STD = 1e-8  # a feature this still over the real set is left out of FID


def _normalise(features: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Bailando: z-score by the reference set's mean and population std (+1e-10),
    leaving out the features constant over the reference set (see fid)."""
    std = reference.std(axis=0)
    varying = std > CONSTANT_STD
    return (features[:, varying] - reference.mean(axis=0)[varying]) / (std[varying] + 1e-10)


def _frechet(a: np.ndarray, b: np.ndarray) -> float:
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(cov_a @ cov_b)
    if not np.isfinite(covmean).all():
        offset = np.eye(len(cov_a)) * 1e-5
        covmean = linalg.sqrtm((cov_a + offset) @ (cov_b + offset))
    diff = mu_a - mu_b
    return float(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(covmean).real)


def fid(real_feats, gen_feats) -> float:
    """Fréchet distance between feature sets after normalising both by the real set.

    Features constant over the real set are left out: Bailando's normalisation
    divides them by 1e-10, so one generated clip that differs there would swamp
    every other feature (AIST++'s thousands of clips never hit this; a few
    held-out takes do, e.g. a geometric relation none of them shows).
    """
    real = np.asarray(real_feats, dtype=np.float64)
    gen = np.asarray(gen_feats, dtype=np.float64)
    if real.ndim != 2 or gen.ndim != 2 or real.shape[1] != gen.shape[1]:
        raise ValueError(f"need (N, D) and (M, D) features, got {real.shape} and {gen.shape}")
    if len(real) < 2 or len(gen) < 2:
        raise ValueError("FID needs at least 2 samples per set")
    return _frechet(_normalise(gen, real), _normalise(real, real))


def diversity(feats, real_feats=None) -> float:
    """Mean pairwise Euclidean distance; normalised by ``real_feats`` when given
    (features constant over ``real_feats`` left out, as in :func:`fid`)."""
    x = np.asarray(feats, dtype=np.float64)
    if real_feats is not None:
        x = _normalise(x, np.asarray(real_feats, dtype=np.float64))
    return float(pdist(x).mean()) if len(x) > 1 else float("nan")
