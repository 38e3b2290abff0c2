"""Generation-time arm clean-up (engine.arms) on a real take."""

from __future__ import annotations

import numpy as np

from engine import joint_limits as JL
from engine import validate as V
from engine.arms import PAIRS, calm_arm_snaps, separate_arms
from engine.motion import Motion, load_motion
from engine.normalize import pelvis_left, resample
from engine.skeleton import JOINT
from engine.validate import validate
from limb_sweeps import assert_taken_apart, sweep_into


def test_a_hand_sweeps_past_the_thigh_not_through_it(shared_data):
    """The left wrist of a real salsa take is swept onto the top of the left thigh (about all an arm reaches)
    for two seconds (two-bone IK on the arm): the forearm goes through the leg, until
    separate_arms moves the wrist out of it."""
    take = resample(load_motion(shared_data / "mocap/cmu_salsa/60_01_scaled.bvh.gz"), 30.0).slice(0, 600)
    P = take.positions
    thigh = P[:, JOINT["L_hip"]] + 0.02 * (P[:, JOINT["L_knee"]] - P[:, JOINT["L_hip"]])  # within reach
    through = sweep_into(take, "L_arm", JOINT["L_wrist"], thigh)
    clear = separate_arms(through)
    assert_taken_apart(through, clear, PAIRS)
    legs = [JOINT[n] for n in ("pelvis", "L_hip", "L_knee", "L_ankle", "R_hip", "R_knee", "R_ankle")]
    assert np.allclose(clear.positions[:, legs], through.positions[:, legs])  # only the arm moves


def test_a_hand_folded_into_the_chest_comes_out_in_front(shared_data):
    """The left wrist of a real salsa take is swept onto the chest's axis (between
    spine2 and spine3) for two seconds: the forearm goes through the trunk, until
    separate_arms moves the wrist out of it, in front of the body."""
    take = resample(load_motion(shared_data / "mocap/cmu_salsa/60_01_scaled.bvh.gz"), 30.0).slice(0, 600)
    P = take.positions
    chest = 0.5 * (P[:, JOINT["spine2"]] + P[:, JOINT["spine3"]])
    through = sweep_into(take, "L_arm", JOINT["L_wrist"], chest)
    clear = separate_arms(through)
    assert_taken_apart(through, clear, PAIRS)
    front = np.cross(pelvis_left(clear.positions), [0.0, 0.0, 1.0])
    out = clear.positions[:, JOINT["L_wrist"]] - chest
    assert (np.einsum("ti,ti->t", out, front)[300:320] > 0.05).all()  # in front of the chest
    legs = [JOINT[n] for n in ("pelvis", "L_hip", "L_knee", "L_ankle", "R_hip", "R_knee", "R_ankle")]
    assert np.allclose(clear.positions[:, legs], through.positions[:, legs])


def test_an_elbow_tucked_into_the_belly_comes_out(shared_data):
    """The left wrist of a real salsa take is swept across the body, to the right of
    the belly, for two seconds: the forearm and the upper arm (the elbow) go through
    the torso, until separate_arms takes both out; the forearm alone cleared leaves
    the upper arm 22% of the radii from the torso's axis, a warning."""
    take = resample(load_motion(shared_data / "mocap/cmu_salsa/60_01_scaled.bvh.gz"), 30.0).slice(0, 600)
    P = take.positions
    left, up = pelvis_left(P), np.array([0.0, 0.0, 1.0])
    across = P[:, JOINT["spine2"]] - 0.25 * left + 0.1 * np.cross(left, up)
    through = sweep_into(take, "L_arm", JOINT["L_wrist"], across)
    elbow = [("L_upperarm", "torso")]
    assert V.capsule_ratios(through.positions, 1.0, elbow).min() < 0.03
    clear = separate_arms(through)
    assert_taken_apart(through, clear, PAIRS)
    assert V.capsule_ratios(clear.positions, 1.0, elbow).min() > V.PENETRATION_WARN
    assert not validate(clear).find("self_penetration")


def test_arms_already_clear_are_left_alone(shared_data):
    take = resample(load_motion(shared_data / "mocap/cmu_salsa/60_01_scaled.bvh.gz"), 30.0).slice(0, 300)
    assert (V.capsule_ratios(take.positions, 1.0, PAIRS) >= 0.35).all()  # the hands stay clear here
    assert np.array_equal(separate_arms(take).positions, take.positions)


def test_an_arm_snap_is_interpolated_and_the_legs_are_left_alone(shared_data):
    """A real take's right shoulder jumps 50 deg for two frames (a snap such as the
    generator's output has, exaggerated): the validator's acceleration and jerk
    errors go, only that arm's joints change, near the snap."""
    take = resample(load_motion(shared_data / "mocap/cmu_salsa/60_01_scaled.bvh.gz"), 30.0).slice(0, 300)
    q = take.rotations.copy()
    kick = np.array([np.cos(np.radians(25)), 0.0, np.sin(np.radians(25)), 0.0])  # 50 deg about Y
    q[150:152, JOINT["R_shoulder"]] = JL.qmul(np.broadcast_to(kick, (2, 4)), q[150:152, JOINT["R_shoulder"]])
    snapped = Motion(q, take.root_translation, 30.0)
    arm_errors = lambda m: [v for v in validate(m).errors  # noqa: E731
                            if v.kind in ("acceleration", "jerk") and v.joint.startswith("R_")]
    assert arm_errors(snapped)
    calm = calm_arm_snaps(snapped)
    assert not arm_errors(calm)
    arm = [JOINT[f"R_{j}"] for j in ("collar", "shoulder", "elbow", "wrist", "hand")]
    rest = [j for j in range(24) if j not in arm]
    assert np.array_equal(calm.rotations[:, rest], snapped.rotations[:, rest])
    assert np.array_equal(calm.root_translation, snapped.root_translation)
    assert np.array_equal(calm.rotations[:140], snapped.rotations[:140])
    assert np.array_equal(calm.rotations[162:], snapped.rotations[162:])
