"""Data augmentation for SMPL-24 motion: left/right mirroring and tempo stretching."""

from __future__ import annotations

import numpy as np

from engine import skeleton as S
from engine.errors import ChoreoError
from engine.motion import Motion
from engine.normalize import resample_at

# Contact flags are (L ankle, L toe, R ankle, R toe): mirroring swaps the feet.
CONTACT_MIRROR = np.array([2, 3, 0, 1])


def mirror_motion(motion: Motion) -> Motion:
    """The motion reflected through the x = 0 plane, left and right swapped.

    Rotations and root go through ``skeleton.mirror``; contact flags swap feet.
    Mirroring twice gives the original motion back.
    """
    rot, root = S.mirror(motion.matrices, motion.root_translation)
    contacts = None if motion.contacts is None else np.asarray(motion.contacts)[:, CONTACT_MIRROR]
    name = motion.name[:-7] if motion.name.endswith("@mirror") else f"{motion.name}@mirror"
    return Motion.from_matrices(rot, root, motion.fps, contacts=contacts, name=name)


def time_stretch(motion: Motion, factor: float) -> Motion:
    """Play the motion ``factor`` times faster at the same fps (tempo augmentation).

    Output frame k samples the input at frame ``k * factor`` (slerped rotations,
    linear root, nearest-frame contacts; engine.normalize.resample_at), so the
    clip has ``floor((T - 1) / factor) + 1`` frames: 1.25 makes it 1.25x
    faster and 1/1.25 as long, 0.8 slower and longer. Bone lengths are untouched
    (rotations only). Meant for factors of about 0.8 to 1.25.
    """
    factor = float(factor)
    if not np.isfinite(factor) or factor <= 0:
        raise ChoreoError(f"time-stretch factor must be positive, got {factor}")
    if factor == 1.0:
        return motion
    count = int(np.floor((motion.frames - 1) / factor + 1e-9)) + 1
    out = resample_at(motion, np.arange(count) * factor)
    out.name = f"{motion.name}@x{factor:g}"
    return out
