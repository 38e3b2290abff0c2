"""AIST++ motion files (``.pkl``) onto the canonical SMPL-24 skeleton.

An AIST++ motion file is a pickled dict with
- ``smpl_poses`` (N, 72): axis-angle local rotations of the 24 SMPL joints,
  radians, Y-up SMPL frames;
- ``smpl_trans`` (N, 3): root translation, Y-up, in the units of ``smpl_scaling``;
- ``smpl_scaling`` (1,): the scale that turns SMPL metres into those units
  (AIST++ uses about 90-100, i.e. centimetre-like units). **It may be absent**
  (the shared format fixture has none); the loader then assumes 1 (translations
  already in metres) and says so in the returned motion's ``warnings``
  attribute (a list of strings, also copied to :data:`LAST_WARNINGS`).
The capture rate is 60 fps.

Conversion. SMPL joint frames are aligned with the world at rest, like ours
(engine.skeleton), and the topology is the same, so each local rotation only
changes basis: ``R_zup = C R_yup C^T`` with ``C = Y_UP_TO_Z_UP``; the root is
``C (smpl_trans / smpl_scaling)``. The global orient (joint 0) is converted the
same way. SMPL's pelvis sits a shape-dependent distance from the model origin
that ``smpl_trans`` moves, so the absolute height is not the floor height:
run ``engine.normalize.normalize_floor_and_facing`` on the result.

Safety: pickles can run code. The file is read with a restricted unpickler
that only rebuilds numpy arrays, dtypes and scalars (and plain containers);
any other global is refused with a ChoreoError.
"""

from __future__ import annotations

import importlib
import io
import pickle
from pathlib import Path

import numpy as np

from engine import rotations as R
from engine import skeleton as S
from engine.errors import ChoreoError
from engine.motion import Motion

AISTPP_FPS = 60.0

# (module, name) pairs the unpickler may resolve: numpy array reconstruction only.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
}

LAST_WARNINGS: list[str] = []
"""Warnings from the most recent :func:`load_aistpp` call (also on ``motion.warnings``)."""


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that refuses every global except numpy array reconstruction."""

    def find_class(self, module, name):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        try:
            mod = importlib.import_module(module)
        except ImportError:  # numpy 2 pickle on numpy 1 or the reverse
            other = module.replace("numpy._core", "numpy.core") if "_core" in module \
                else module.replace("numpy.core", "numpy._core")
            mod = importlib.import_module(other)
        return getattr(mod, name)


def safe_load_pickle(path) -> object:
    """Unpickle a data file allowing only numpy arrays, dtypes, scalars and containers."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ChoreoError(f"{path}: cannot read file ({exc})") from exc
    try:
        return _NumpyOnlyUnpickler(io.BytesIO(raw), encoding="latin1").load()
    except pickle.UnpicklingError as exc:
        raise ChoreoError(f"{path}: not a plain AIST++ data file ({exc})") from exc
    except Exception as exc:  # truncated/corrupt pickles raise many kinds
        raise ChoreoError(f"{path}: corrupt pickle ({type(exc).__name__}: {exc})") from exc


def _array(data: dict, key: str, path) -> np.ndarray:
    try:
        return np.asarray(data[key], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ChoreoError(f"{path}: '{key}' is not numeric ({exc})") from exc


def aistpp_to_motion(data: dict, name: str = "", path="AIST++ data") -> Motion:
    """Convert an AIST++ motion dict (see module doc) into a 60 fps Motion."""
    if not isinstance(data, dict):
        raise ChoreoError(f"{path}: expected a dict with smpl_poses and smpl_trans, "
                          f"got {type(data).__name__}")
    missing = [k for k in ("smpl_poses", "smpl_trans") if k not in data]
    if missing:
        raise ChoreoError(f"{path}: not an AIST++ motion file (missing {missing})")
    poses = _array(data, "smpl_poses", path)
    trans = _array(data, "smpl_trans", path)
    if poses.ndim != 2 or poses.shape[1] != 72 or len(poses) == 0:
        raise ChoreoError(f"{path}: smpl_poses must be (N, 72), got {poses.shape}")
    if trans.shape != (len(poses), 3):
        raise ChoreoError(f"{path}: smpl_trans must be ({len(poses)}, 3), got {trans.shape}")
    warnings: list[str] = []
    if "smpl_scaling" in data and data["smpl_scaling"] is not None:
        scaling = _array(data, "smpl_scaling", path).reshape(-1)
        if scaling.size != 1:
            raise ChoreoError(f"{path}: smpl_scaling must hold one value, got {scaling.shape}")
        scale = float(scaling[0])
        if not np.isfinite(scale) or scale <= 0:
            raise ChoreoError(f"{path}: smpl_scaling must be positive, got {scale}")
    else:
        scale = 1.0
        warnings.append("no smpl_scaling: translations taken as metres (scaling 1)")
    if not np.isfinite(poses).all() or not np.isfinite(trans).all():
        raise ChoreoError(f"{path}: motion contains NaN or infinite values")

    c = S.Y_UP_TO_Z_UP
    mats = R.axis_angle_to_matrix(poses.reshape(len(poses), 24, 3))
    mats = c @ mats @ c.T
    root = (trans / scale) @ c.T
    motion = Motion.from_matrices(mats, root, AISTPP_FPS, name=name)
    motion.warnings = warnings
    LAST_WARNINGS[:] = warnings
    return motion


def load_aistpp(path) -> Motion:
    """Read an AIST++ motion ``.pkl`` as a 60 fps Motion on the canonical skeleton.

    Missing ``smpl_scaling`` means scaling 1 (see ``motion.warnings``). Raises
    ChoreoError for unreadable or unsafe pickles, missing keys, wrong shapes and
    NaN. Floor and facing are not normalised here.
    """
    path = Path(path)
    if not path.exists():
        raise ChoreoError(f"{path}: file not found")
    return aistpp_to_motion(safe_load_pickle(path), name=path.stem, path=path)
