"""Windowed training dataset of SMPL-24 motion with motion-derived rhythm conditioning.

Every clip is resampled to the training fps (30 by default), then expanded into
variants: time-stretched copies (factors ``stretch_factors``) and, with
``augment=True``, the mirror image of each. Per-frame features of every variant
are computed once and cached to ``cache_dir`` as an ``.npz`` whose name is a
hash of the inputs (clip names and contents, parameters, :data:`CODE_VERSION`);
a later construction with the same inputs loads that file instead.

One item (a window of ``W`` frames) is a dict of tensors:
  ``rot6d``    (W, 24, 6) float32: local joint rotations, 6D (first two matrix
               columns, engine.rotations.matrix_to_sixd)
  ``root``     (W, 3) float32: pelvis position; x and y relative to the window's
               first frame, z absolute (height above the floor)
  ``root_vel`` (W, 3) float32: pelvis velocity in m/s, backward differences over
               the whole clip (the clip's first frame repeats the second's)
  ``contacts`` (W, 4) float32: foot-contact flags, L ankle, L toe, R ankle, R toe
               (the motion's own, else :func:`foot_contacts`)
  ``cond``     (W, C) float32: engine.rhythm.conditioning of the clip variant's
               motion-derived rhythm (computed over the whole variant, then cut)
  ``style``    int: the clip's style id
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from engine import rotations as R
from engine import skeleton as S
from engine.augment import mirror_motion, time_stretch
from engine.errors import ChoreoError
from engine.motion import Motion
from engine.normalize import resample
from engine.rhythm import COND_DIM, conditioning, motion_rhythm

CODE_VERSION = 1  # bump when the features below change: old caches are then ignored
FEATURES = ("rot6d", "root", "root_vel", "contacts", "cond")
DEFAULT_STRETCH = (0.9, 1.0, 1.1)
CONTACT_MARGIN = 0.05  # m above the joint's own rest height (ankle 8.1 cm, toe 2 cm)
CONTACT_SPEED = 0.3  # m/s horizontal (1 cm per frame at 30 fps)


def foot_contacts(positions, fps: float) -> np.ndarray:
    """(T, 4) bool planted flags for L ankle, L toe, R ankle, R toe.

    A joint is planted when it is at most 5 cm above its height in the rest pose
    on the floor (z = 0) and moves horizontally at most 0.3 m/s (central
    differences). Heights are relative to the canonical skeleton's own rest
    heights because engine.metrics' fixed 8 cm ankle threshold lies below the
    canonical ankle's 8.1 cm rest height, so it almost never fires on motion
    put on this skeleton.
    """
    feet = np.asarray(positions, dtype=np.float64)[:, S.CONTACT_JOINTS]
    rest = S.rest_positions()[S.CONTACT_JOINTS, 2]
    low = feet[:, :, 2] - rest <= CONTACT_MARGIN
    if len(feet) < 2:
        return low
    speed = np.linalg.norm(np.gradient(feet[:, :, :2], axis=0), axis=-1) * fps
    return low & (speed <= CONTACT_SPEED)


def motion_features(motion: Motion, rhythm_source: Motion | None = None) -> dict[str, np.ndarray]:
    """Per-frame training features of one motion (see the module doc), float32.

    ``root`` is absolute here. ``rhythm_source`` is the motion the rhythm is
    computed from (default ``motion``; a mirror has the same rhythm as its source).
    """
    fps = motion.fps
    root = motion.root_translation
    vel = np.zeros_like(root)
    if motion.frames > 1:
        vel[1:] = np.diff(root, axis=0) * fps
        vel[0] = vel[1]
    contacts = motion.contacts
    if contacts is None:
        contacts = foot_contacts(motion.positions, fps)
    rhythm = motion_rhythm(rhythm_source if rhythm_source is not None else motion)
    return {
        "rot6d": R.matrix_to_sixd(motion.matrices).astype(np.float32),
        "root": root.astype(np.float32),
        "root_vel": vel.astype(np.float32),
        "contacts": np.asarray(contacts, dtype=np.float32),
        "cond": conditioning(rhythm),
    }


def _digest(motions, style_ids, params) -> str:
    h = hashlib.sha1()
    h.update(json.dumps({"code": CODE_VERSION, **params}, sort_keys=True).encode())
    for motion, style in zip(motions, style_ids):
        h.update(f"{motion.name}|{motion.frames}|{motion.fps}|{style}".encode())
        h.update(np.ascontiguousarray(motion.rotations, dtype=np.float64).tobytes())
        h.update(np.ascontiguousarray(motion.root_translation, dtype=np.float64).tobytes())
        if motion.contacts is not None:
            h.update(np.ascontiguousarray(motion.contacts, dtype=bool).tobytes())
    return h.hexdigest()[:20]


class WindowDataset(Dataset):
    """Fixed-length windows over clips and their augmented variants (see module doc).

    ``motions`` and ``style_ids`` are parallel lists. Clips shorter than one
    window (after stretching) give no windows. ``stride`` defaults to a quarter
    window. ``cache_hit`` tells whether the features came from ``cache_path``.
    """

    def __init__(self, motions: list[Motion], window: int = 120, stride: int | None = None,
                 style_ids: list[int] | None = None, augment: bool = True, cache_dir=None,
                 fps: float = 30.0, stretch_factors=DEFAULT_STRETCH):
        if len(motions) == 0:
            raise ChoreoError("no motion clips to build a dataset from")
        style_ids = [0] * len(motions) if style_ids is None else [int(s) for s in style_ids]
        if len(style_ids) != len(motions):
            raise ChoreoError(f"{len(motions)} motions but {len(style_ids)} style ids")
        if window < 2:
            raise ChoreoError(f"window must be at least 2 frames, got {window}")
        self.window = int(window)
        self.stride = max(1, int(stride) if stride is not None else self.window // 4)
        self.fps = float(fps)
        self.augment = bool(augment)
        self.stretch_factors = tuple(float(f) for f in stretch_factors) if augment else (1.0,)
        self.cond_dim = COND_DIM
        params = {"fps": self.fps, "augment": self.augment, "stretch": self.stretch_factors}
        self.cache_path = None
        self.cache_hit = False
        if cache_dir is not None:
            key = _digest(motions, style_ids, params)
            self.cache_path = Path(cache_dir) / f"windows-{key}.npz"
        if self.cache_path is not None and self.cache_path.exists():
            data = self._load(self.cache_path)
            self.cache_hit = data is not None
        if not self.cache_hit:
            data = self._compute(motions, style_ids)
            if self.cache_path is not None:
                self._save(self.cache_path, data)
        self._data = {k: data[k] for k in FEATURES}
        self.clip_start = data["clip_start"]  # (V+1,) frame offsets of the variants
        self.clip_style = data["clip_style"]  # (V,)
        self.variant_names = [str(n) for n in data["variant_names"]]
        self._index = self._windows()

    # ------------------------------------------------------------------ build

    def _variants(self, motion: Motion):
        """(variant motion, rhythm source) pairs of one clip."""
        base = resample(motion, self.fps) if not np.isclose(motion.fps, self.fps) else motion
        for factor in self.stretch_factors:
            stretched = time_stretch(base, factor)
            yield stretched, stretched
            if self.augment:
                yield mirror_motion(stretched), stretched

    def _compute(self, motions, style_ids) -> dict:
        parts = {k: [] for k in FEATURES}
        starts, styles, names = [0], [], []
        for motion, style in zip(motions, style_ids):
            for variant, source in self._variants(motion):
                feats = motion_features(variant, source)
                for k in FEATURES:
                    parts[k].append(feats[k])
                starts.append(starts[-1] + variant.frames)
                styles.append(style)
                names.append(variant.name)
        data = {k: np.concatenate(v) for k, v in parts.items()}
        data["clip_start"] = np.array(starts, dtype=np.int64)
        data["clip_style"] = np.array(styles, dtype=np.int64)
        data["variant_names"] = np.array(names, dtype=str)
        return data

    @staticmethod
    def _save(path: Path, data: dict) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npz")
        np.savez(tmp, **data)
        os.replace(tmp, path)

    @staticmethod
    def _load(path: Path) -> dict | None:
        """The cached arrays, or None when the file is unreadable (it is then rebuilt)."""
        try:
            with np.load(path, allow_pickle=False) as f:
                data = {k: f[k] for k in f.files}
        except (OSError, ValueError):
            return None
        needed = set(FEATURES) | {"clip_start", "clip_style", "variant_names"}
        return data if needed <= set(data) else None

    def _windows(self) -> np.ndarray:
        """(N, 2) rows of (first frame in the concatenated arrays, variant index)."""
        rows = []
        for v in range(len(self.clip_style)):
            lo, hi = int(self.clip_start[v]), int(self.clip_start[v + 1])
            for s in range(lo, hi - self.window + 1, self.stride):
                rows.append((s, v))
        return np.array(rows, dtype=np.int64).reshape(-1, 2)

    # ---------------------------------------------------------------- access

    def __len__(self) -> int:
        return len(self._index)

    def __getitem__(self, i: int) -> dict:
        start, variant = (int(x) for x in self._index[i])
        sl = slice(start, start + self.window)
        root = self._data["root"][sl].copy()
        root[:, :2] -= root[0, :2]
        return {
            "rot6d": torch.from_numpy(self._data["rot6d"][sl].copy()),
            "root": torch.from_numpy(root),
            "root_vel": torch.from_numpy(self._data["root_vel"][sl].copy()),
            "contacts": torch.from_numpy(self._data["contacts"][sl].copy()),
            "cond": torch.from_numpy(self._data["cond"][sl].copy()),
            "style": int(self.clip_style[variant]),
        }
