"""A real take with one limb swept through the body by IK, and the checks that a
clearance step (engine.footwork.separate_shins, engine.arms.separate_arms) takes it
back out: no penetration error left, no new acceleration spikes, frames away from
the sweep untouched."""

from __future__ import annotations

import numpy as np

from engine import ik
from engine import validate as V
from engine.motion import Motion
from engine.validate import validate

SWEPT = slice(280, 340)  # frames of the sweep (a Hann window)
UNTOUCHED = np.r_[0:250, 370:600]  # well clear of it, easing included


def sweep_into(take: Motion, limb: str, end: int, goal: np.ndarray) -> Motion:
    """``take`` with ``limb``'s end joint (index ``end``) swept onto ``goal`` (T, 3)."""
    P = take.positions
    sweep = np.zeros(take.frames)
    sweep[SWEPT] = np.hanning(SWEPT.stop - SWEPT.start)
    target = P[:, end] + sweep[:, None] * (goal - P[:, end])
    q, _ = ik.solve_limb(take.rotations, take.root_translation, limb, target, (sweep > 0).astype(float))
    return Motion(q, take.root_translation, take.fps)


def assert_taken_apart(through: Motion, apart: Motion, pairs) -> None:
    assert V.capsule_ratios(through.positions, 1.0, pairs).min() < 0.03
    assert validate(through).find("self_penetration", "error")
    assert V.capsule_ratios(apart.positions, 1.0, pairs).min() > 0.3
    report = validate(apart)
    assert not report.find("self_penetration", "error")
    assert len(report.find("acceleration")) <= len(validate(through).find("acceleration"))
    assert np.allclose(apart.positions, Motion(apart.rotations, apart.root_translation, apart.fps).positions)
    still = UNTOUCHED[UNTOUCHED < through.frames]
    assert np.allclose(apart.positions[still], through.positions[still], atol=1e-3)
