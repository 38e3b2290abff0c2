"""SMPL-24 motion: the engine's one motion type, and the Choreo ``.npz`` contract.

A Choreo ``.npz`` holds ``positions`` (T,24,3) float32 world joint positions
in metres, Z-up, SMPL order; ``rotations`` (T,24,4) local quaternions, w
first; ``root_translation`` (T,3); ``contacts`` (T,4) for left ankle, left
toe, right ankle, right toe; and ``fps``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine import rotations as R
from engine import skeleton as S
from engine.errors import ChoreoError


@dataclass
class Motion:
    """SMPL-24 motion on the canonical skeleton (see engine.skeleton)."""

    rotations: np.ndarray  # (T, 24, 4) local quaternions, wxyz
    root_translation: np.ndarray  # (T, 3) pelvis position, metres, Z-up
    fps: float
    contacts: np.ndarray | None = None  # (T, 4) bool
    name: str = ""
    _positions: np.ndarray | None = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        self.rotations = np.asarray(self.rotations, dtype=np.float64)
        self.root_translation = np.asarray(self.root_translation, dtype=np.float64)
        if self.rotations.ndim != 3 or self.rotations.shape[1:] != (24, 4):
            raise ChoreoError(f"rotations must be (T, 24, 4), got {self.rotations.shape}")
        if self.root_translation.shape != (len(self.rotations), 3):
            raise ChoreoError("root_translation must be (T, 3) with the same T as rotations")
        if not np.isfinite(self.rotations).all() or not np.isfinite(self.root_translation).all():
            raise ChoreoError("motion contains NaN or infinite values")

    @property
    def frames(self) -> int:
        return len(self.rotations)

    @property
    def duration(self) -> float:
        return self.frames / self.fps

    @property
    def matrices(self) -> np.ndarray:
        """(T, 24, 3, 3) local rotation matrices."""
        return R.quat_to_matrix(self.rotations)

    @property
    def positions(self) -> np.ndarray:
        """(T, 24, 3) world joint positions from forward kinematics (cached)."""
        if self._positions is None:
            self._positions = S.forward_kinematics_np(self.matrices, self.root_translation)
        return self._positions

    @classmethod
    def from_matrices(cls, local_rot, root_translation, fps, **kwargs) -> "Motion":
        return cls(R.matrix_to_quat(np.asarray(local_rot, dtype=np.float64)),
                   root_translation, fps, **kwargs)

    def slice(self, start: int, stop: int) -> "Motion":
        contacts = None if self.contacts is None else self.contacts[start:stop]
        return Motion(self.rotations[start:stop], self.root_translation[start:stop],
                      self.fps, contacts, self.name)

    def save_npz(self, path) -> None:
        """Write the Choreo .npz contract."""
        contacts = self.contacts
        if contacts is None:
            from engine.metrics import planted

            contacts = planted(self.positions, self.fps)
        np.savez_compressed(
            path,
            positions=self.positions.astype(np.float32),
            rotations=self.rotations.astype(np.float32),
            root_translation=self.root_translation.astype(np.float32),
            contacts=np.asarray(contacts, dtype=bool),
            fps=np.float32(self.fps),
        )


def load_npz(path) -> Motion:
    """Read a Choreo .npz (positions are recomputed by FK, not trusted)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = {"rotations", "root_translation", "fps"} - set(data.files)
            if missing:
                raise ChoreoError(f"{path}: not a Choreo motion file (missing {sorted(missing)})")
            contacts = data["contacts"] if "contacts" in data.files else None
            return Motion(data["rotations"], data["root_translation"], float(data["fps"]),
                          contacts, Path(path).stem)
    except (OSError, ValueError) as exc:
        raise ChoreoError(f"{path}: cannot read motion file ({exc})") from exc


def load_motion(path, fps: float | None = None) -> Motion:
    """Load any supported motion file onto the canonical SMPL-24 skeleton.

    ``.npz`` (Choreo contract), ``.bvh``/``.bvh.gz`` (any hierarchy whose joints
    can be mapped, see engine.convert) and AIST++ ``.pkl``.
    """
    path = Path(path)
    if not path.exists():
        raise ChoreoError(f"{path}: file not found")
    suffixes = "".join(path.suffixes[-2:]).lower()
    if path.suffix.lower() == ".npz":
        return load_npz(path)
    if suffixes.endswith((".bvh", ".bvh.gz")):
        from engine.convert import bvh_to_motion

        return bvh_to_motion(path, fps=fps)
    if path.suffix.lower() == ".pkl":
        from engine.aistpp import load_aistpp

        return load_aistpp(path)
    raise ChoreoError(f"{path}: unsupported motion file (use .npz, .bvh or an AIST++ .pkl)")
