"""Generation-time arm clearance (engine.arms) on a real take."""

from __future__ import annotations

import numpy as np

from engine import validate as V
from engine.arms import PAIRS, separate_arms
from engine.motion import load_motion
from engine.normalize import pelvis_left, resample
from engine.skeleton import JOINT
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


def test_arms_already_clear_are_left_alone(shared_data):
    take = resample(load_motion(shared_data / "mocap/cmu_salsa/60_01_scaled.bvh.gz"), 30.0).slice(0, 300)
    assert (V.capsule_ratios(take.positions, 1.0, PAIRS) >= 0.35).all()  # the hands stay clear here
    assert np.array_equal(separate_arms(take).positions, take.positions)
