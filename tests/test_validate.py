"""Validator and repair on real mocap: calibration, real defects, injected faults, CLI.

Everything runs on the shared real takes converted to SMPL-24 (engine.motion.load_motion).
Faults are injected into a real clean take (CMU modern 005_02) at known frames.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine import ik
from engine import joint_limits as JL
from engine import metrics as M
from engine import validate as V
from engine.errors import ChoreoError
from engine.motion import Motion, load_motion
from engine.repair import beat_shift, repair
from engine.skeleton import JOINT

REPO = Path(__file__).resolve().parents[1]
PHYSICAL = {"velocity", "acceleration", "jerk", "flip", "joint_limit", "ground", "foot_skate",
            "self_penetration", "bone_length"}

_CACHE: dict[str, Motion] = {}


def _take(shared_data, rel: str) -> Motion:
    if rel not in _CACHE:
        _CACHE[rel] = load_motion(shared_data / "mocap" / rel)
    m = _CACHE[rel]
    return Motion(m.rotations.copy(), m.root_translation.copy(), m.fps, None, m.name)


@pytest.fixture(scope="module")
def modern(shared_data) -> Motion:
    """CMU 005_02: 562 frames at 60 fps, a clean modern take (no error-severity finding)."""
    return _take(shared_data, "cmu_modern_05/005_02.bvh.gz")


def _errors_at(report, kinds, frame, joint=None, slack=3):
    return [v for v in report.errors if v.kind in kinds and v.start - slack <= frame <= v.end + slack
            and (joint is None or v.joint == joint)]


# ------------------------------------------------------------------ calibration


@pytest.mark.parametrize("rel", ["cmu_salsa/60_01_scaled.bvh.gz", "cmu_salsa/61_02_scaled.bvh.gz",
                                 "cmu_pop_131/131_03.bvh.gz", "cmu_modern_05/005_02.bvh.gz"])
def test_clean_real_takes_have_no_errors(shared_data, rel):
    """Clean takes: no error anywhere. (The salsa takes' T-pose snap in their first
    5 frames is trimmed by the loader, engine.convert.trim_start_snap.)"""
    motion = _take(shared_data, rel)
    report = V.validate(motion)
    assert not report.errors, [(v.kind, v.joint, v.start, v.end, v.message) for v in report.errors]
    assert report.fps == motion.fps and report.frames == motion.frames


def test_joint_angle_signs_on_real_mocap(shared_data, modern):
    """Knees flex about +X (positive in every real frame) and never hyperextend past the
    hard limit; elbows bend on the same side of their hinge in all three sources."""
    for motion in (modern, _take(shared_data, "cmu_pop_131/131_03.bvh.gz")):
        angles = JL.measure(motion.rotations)
        for side in "LR":
            knee = angles[f"{side}_knee.flexion"]
            assert knee.min() > -10 and np.median(knee) > 5
            # the SMPL rest elbow is bent 7 degrees, so locked straight arms read
            # a few degrees past the 10-degree warning; never past the error limit
            assert angles[f"{side}_elbow.hyperextension"].max() < 25
    # a knee bent backwards by 30 degrees is an error at that joint
    q = modern.rotations.copy()
    q[200:205, JOINT["L_knee"]] = JL.quat_exp(np.array([np.radians(-30), 0, 0]))
    report = V.validate(Motion(q, modern.root_translation, modern.fps), checks=["joint_limit"])
    hits = [v for v in report.errors if v.joint == "L_knee" and v.start == 200 and v.end == 204]
    assert hits and hits[0].value < -15


def test_clamp_brings_angles_inside(modern):
    q = modern.rotations.copy()
    q[300, JOINT["R_knee"]] = JL.quat_exp(np.array([np.radians(-40), 0, 0]))
    q[300, JOINT["L_ankle"]] = JL.quat_exp(np.array([np.radians(-110), 0, 0]))  # toes onto the shin
    assert JL.measure(q[300:301])["L_ankle.dorsiflexion"][0] > 95
    clamped, changed = JL.clamp(q, "error")
    assert changed[300, JOINT["R_knee"]] and changed[300, JOINT["L_ankle"]]
    angles = JL.measure(clamped[299:302])
    assert angles["R_knee.flexion"][1] >= -20.0 and angles["L_ankle.dorsiflexion"][1] <= 95.0
    assert changed.sum() == 2  # nothing else touched


# ------------------------------------------------------------------ real defects


def test_real_flips_in_modern_takes(shared_data):
    """005_05 and 005_14 have single-frame ~180 degree flips (upstream notes)."""
    r05 = V.validate(_take(shared_data, "cmu_modern_05/005_05.bvh.gz"))
    flips = r05.find("flip", "error")
    assert {v.joint for v in flips} >= {"R_hip", "R_ankle"}
    assert any(v.joint == "R_hip" and 160 <= v.start <= 200 and v.value > 150 for v in flips)
    r14 = V.validate(_take(shared_data, "cmu_modern_05/005_14.bvh.gz"))
    starts = sorted(v.start for v in r14.find("flip", "error", "R_wrist"))
    assert starts == [147, 153, 223, 234]
    assert all(v.value > 150 for v in r14.find("flip", "error", "R_wrist"))


def test_real_salsa_defects(shared_data):
    """60_10 'tremble at begin': whole-body glitches 5-6 s in; 60_06 'bad head at
    the end': a whole-body glitch at 16.7 s; 60_11 'a dip': a glitch at 3.5 s."""
    r10 = V.validate(_take(shared_data, "cmu_salsa/60_10_scaled.bvh.gz"))
    glitch = [v for v in r10.errors if v.kind in ("acceleration", "jerk", "velocity") and v.start > 250]
    assert glitch and all(250 <= v.start <= 380 for v in glitch)  # 4.2-6.3 s in
    r06 = V.validate(_take(shared_data, "cmu_salsa/60_06_scaled.bvh.gz"))
    assert r06.errors and all(980 <= v.start <= 1020 for v in r06.errors)
    r11 = V.validate(_take(shared_data, "cmu_salsa/60_11_scaled.bvh.gz"))
    assert r11.errors and all(200 <= v.start <= 225 for v in r11.errors)


# ------------------------------------------------------------------ injected faults


def _check_repair(before_motion, fixed, before, after):
    assert after.kinds("error") <= before.kinds("error")
    assert after.summary["repairs"]["kinetic_beat_shift_frames"] <= 1.0
    assert fixed.frames == before_motion.frames and fixed.fps == before_motion.fps


def test_injected_flip_is_found_and_smoothed(modern):
    f = 120
    q = modern.rotations.copy()
    axis = JL.TWIST_AXES[JOINT["L_hip"]]
    q[f, JOINT["L_hip"]] = JL.qmul(q[f, JOINT["L_hip"]], np.concatenate([[0.0], axis]))  # 180 deg twist
    faulty = Motion(q, modern.root_translation, modern.fps)
    report = V.validate(faulty)
    hits = [v for v in report.find("flip", "error", "L_hip") if v.start == f and v.end == f]
    assert hits and hits[0].value > 170
    fixed, before, after = repair(faulty)
    assert not after.find("flip")
    _check_repair(faulty, fixed, before, after)
    dot = abs(np.sum(fixed.rotations[f, JOINT["L_hip"]] * modern.rotations[f, JOINT["L_hip"]]))
    assert np.degrees(2 * np.arccos(min(1.0, dot))) < 5.0


@pytest.mark.parametrize("joint,frame", [("pelvis", 450), ("L_wrist", 500)])
def test_injected_one_frame_pop(modern, joint, frame):
    root = modern.root_translation.copy()
    q = modern.rotations.copy()
    if joint == "pelvis":
        root[frame] += [0.15, 0.0, 0.05]  # the whole body jumps 16 cm for one frame
    else:  # the forearm swings 70 degrees for one frame: the wrist jumps ~30 cm
        q[frame, JOINT["L_elbow"]] = JL.qmul(q[frame, JOINT["L_elbow"]],
                                             JL.quat_exp(np.radians(70) * JL.ELBOW_FLEX_AXIS_L))
    faulty = Motion(q, root, modern.fps)
    report = V.validate(faulty)
    assert _errors_at(report, ("acceleration", "jerk"), frame, joint)
    assert all(abs(v.start - frame) <= 6 for v in report.errors if v.kind in ("acceleration", "jerk"))
    fixed, before, after = repair(faulty)
    assert not after.errors
    _check_repair(faulty, fixed, before, after)
    err = np.linalg.norm(fixed.positions[frame] - modern.positions[frame], axis=-1).max()
    assert err < 0.03


def test_injected_foot_slide_is_found_and_locked(modern):
    """The right foot slides 30 cm across a real 0.9 s contact (frames 155-208)."""
    s, e = 155, 208
    P = modern.positions
    ramp = np.zeros(modern.frames)
    ramp[s:e + 1] = np.linspace(0, 1, e - s + 1)
    ramp[e + 1:e + 13] = np.linspace(1, 0, 14)[1:-1]  # back in the air afterwards
    target = P[:, JOINT["R_ankle"]] + ramp[:, None] * np.array([-0.30, 0.0, 0.0])  # outwards
    q, reached = ik.solve_limb(modern.rotations, modern.root_translation, "R_leg", target,
                               (ramp > 0).astype(float))
    assert reached[s:e + 1].all()
    faulty = Motion(q, modern.root_translation, modern.fps)
    report = V.validate(faulty)
    skate = [v for v in report.find("foot_skate", "error", "R_ankle") if v.start <= e and v.end >= s]
    assert skate and skate[0].value > 0.25
    fixed, before, after = repair(faulty)
    assert not after.find("foot_skate", "error")
    assert after.summary["repairs"]["locked_contacts"] >= 1
    _check_repair(faulty, fixed, before, after)
    ankle = fixed.positions[s + 6:e - 5, JOINT["R_ankle"], :2]
    assert np.linalg.norm(ankle - ankle.mean(0), axis=-1).max() < 0.03  # pinned


def test_ik_bends_a_knee_forward_even_from_hyperextension(shared_data):
    """A leg bent backwards (5 cm behind the hip-ankle line) and pulled shorter bends
    to the front its pole gives; without a pole the old bend is kept."""
    a, b, c = np.array([0, 0, 1.0]), np.array([0, 0.05, 0.55]), np.array([0, 0, 0.1])
    target = np.array([0, 0, 0.4])
    assert ik.two_bone_ik(a, b, c, target)[0][1] > 0.1  # old side: behind
    b_new, c_new, reached = ik.two_bone_ik(a, b, c, target, pole=np.array([0, -1.0, 0]))
    assert reached and b_new[1] < -0.1 and np.allclose(c_new, target)
    assert np.isclose(np.linalg.norm(b_new - a), np.linalg.norm(b - a))
    # CMU 005_13 hyperextends its right knee (-19 deg): pull the ankle 4% towards the hip there
    modern = _take(shared_data, "cmu_modern_05/005_13.bvh.gz")
    flexion = JL.measure(modern.rotations)["R_knee.flexion"]
    f = int(np.argmin(flexion[20:-20])) + 20
    P = modern.positions
    pull = np.zeros(modern.frames)
    pull[f - 20:f + 21] = np.hanning(41)
    target = P[:, JOINT["R_ankle"]] + 0.04 * pull[:, None] * (P[:, JOINT["R_hip"]] - P[:, JOINT["R_ankle"]])
    q, _ = ik.solve_limb(modern.rotations, modern.root_translation, "R_leg", target, (pull > 0).astype(float))
    after = JL.measure(q)["R_knee.flexion"][f - 22:f + 23]
    assert flexion[f] < -15 and after[22] > 20  # was pushed to -40 when the old bend was kept
    assert (after > np.minimum(flexion[f - 22:f + 23], 0) - 1).all()
    assert np.abs(np.diff(after)).max() < 5  # degrees per frame at 60 fps: no snap


def test_ik_keeps_a_bent_knee_on_its_hinge(modern):
    """A bent knee whose ankle is moved far (thigh swung forwards and out) bends the way
    it did about its hinge: the thigh twists with the swing. Turning the thigh minimally
    alone bent the knee sideways by up to 36 degrees here."""
    before = JL.measure(modern.rotations)
    bent = before["R_knee.flexion"] > 45
    assert bent.sum() >= 20
    for offset in ([0.0, -0.3, 0.1], [0.2, -0.2, 0.15]):
        target = modern.positions[:, JOINT["R_ankle"]] + np.array(offset)
        q, reached = ik.solve_limb(modern.rotations, modern.root_translation, "R_leg", target,
                                   np.ones(modern.frames))
        after = JL.measure(q)
        assert np.abs(after["R_knee.abduction"] - before["R_knee.abduction"])[bent].max() < 8, offset
        ankle = Motion(q, modern.root_translation, modern.fps).positions[:, JOINT["R_ankle"]]
        assert reached[bent].all() and np.abs(ankle - target)[bent].max() < 1e-6


def test_injected_floor_penetration_is_lifted(modern):
    """The root sinks 10 cm over frames 350-420 (with smooth 0.15 s ramps)."""
    root = modern.root_translation.copy()
    dip = np.zeros(modern.frames)
    ramp = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, 10))
    dip[340:350], dip[350:421], dip[421:431] = ramp, 1.0, ramp[::-1]
    root[:, 2] -= 0.10 * dip
    faulty = Motion(modern.rotations, root, modern.fps)
    report = V.validate(faulty)
    ground = report.find("ground", "error")
    assert ground and all(335 <= v.start and v.end <= 435 for v in ground)
    assert max(v.value for v in ground) > 0.07
    assert not [v for v in report.errors if v.kind != "ground"]
    fixed, before, after = repair(faulty)
    assert not after.errors
    _check_repair(faulty, fixed, before, after)
    low = fixed.positions[:, :, 2] - V.JOINT_RADIUS[None]
    assert low.min() > -V.GROUND_WARN - 1e-6


def test_repair_of_a_real_take_keeps_its_beats(shared_data):
    """60_11 (real salsa lead): its glitch at frames 209-217 is fixed, every kinetic
    beat farther than BEAT_GUARD_S from it stays within one frame, no new error kind."""
    motion = _take(shared_data, "cmu_salsa/60_11_scaled.bvh.gz")
    fixed, before, after = repair(motion)
    assert before.errors and not after.errors
    frames = np.arange(motion.frames)
    shift, near = beat_shift(motion.positions, fixed.positions, motion.fps,
                             (frames >= 200) & (frames <= 225))
    assert shift <= 1.0 and near <= 2
    n_before = len(M.kinetic_beats(motion.positions, motion.fps))
    assert len(M.kinetic_beats(fixed.positions, motion.fps)) >= 0.95 * n_before


# ------------------------------------------------------------------ other checks


def test_bone_lengths_and_stored_positions(modern):
    P = modern.positions.copy()
    stretched = P.copy()
    shin = stretched[100:110, JOINT["L_ankle"]] - stretched[100:110, JOINT["L_knee"]]
    stretched[100:110, JOINT["L_ankle"]] += 0.15 * shin  # the shin grows 15%
    raw = V.validate(positions=stretched, fps=modern.fps)
    bones = raw.find("bone_length", "error", "L_ankle")
    assert bones and bones[0].start == 100 and bones[0].end == 109
    assert abs(V.body_height(P) - V.REST_HEIGHT) < 0.01
    stored = V.validate(modern, positions=stretched, checks=["positions_mismatch", "bone_length"])
    assert stored.find("positions_mismatch", "error", "L_ankle")
    with pytest.raises(ChoreoError):
        V.validate(positions=np.zeros((10, 23, 3)), fps=30)


def test_half_time_dancing_is_counted_at_half_time(modern):
    """A dance whose kinetic beats fall on every other music beat is on the beat at
    half time (no warning, infos only for missed counts); off the grid it is warned."""
    kb = M.kinetic_beats(modern.positions, modern.fps)
    kb = kb[(kb > 1.0) & (kb < modern.duration - 1.0)]
    on_every_beat = V.validate(modern, {"beats": kb}, checks=["beat_sync"])
    assert on_every_beat.metrics["beats_per_count"] == 1 and on_every_beat.metrics["beats_on_time"] > 0.9
    between = np.sort(np.concatenate([kb, 0.5 * (kb[1:] + kb[:-1])]))  # a beat between each two
    half = V.validate(modern, {"beats": between}, checks=["beat_sync"])
    assert half.metrics["beats_per_count"] == 2 and half.metrics["beats_on_time"] > 0.9
    assert not half.find("beat_sync", "warning")
    assert all("counted" in v.message for v in half.find("beat_sync", "info"))
    off_grid = V.validate(modern, {"beats": between + 0.2}, checks=["beat_sync"])
    assert off_grid.metrics["beats_per_count"] == 1 and off_grid.find("beat_sync", "warning")


def test_music_checks(shared_data, modern):
    """Beat sync against real music beats, and section energy/composition rules."""
    from engine.audio import analyze

    music = analyze(shared_data / "music" / "808kick120bpm.mp3", fps=30)
    report = V.validate(modern, music)
    assert 0.0 <= report.metrics["bas"] <= 1.0
    halves = report.metrics["beats_per_count"] == 2
    grids = [music.beats[0::2], music.beats[1::2]] if halves else [music.beats]
    misses = []
    for grid in grids:
        offsets = M.beat_offsets(modern.positions, modern.fps, grid)
        misses.append(int(np.sum(np.abs(offsets[np.isfinite(offsets)]) > V.BEAT_TOLERANCE)))
    infos = report.find("beat_sync", "info")
    assert sum(int(v.message.split()[0]) for v in infos) == min(misses)
    # a "climax" over the calmest stretch is flagged; over the busiest, it is not
    speed = np.linalg.norm(np.diff(modern.positions, axis=0), axis=-1).mean(1)
    w = 120
    energy = np.convolve(speed, np.ones(w) / w, mode="valid")
    calm, busy = int(energy.argmin()), int(energy.argmax())
    def sections(climax_start):
        c0, c1 = climax_start / modern.fps, (climax_start + w) / modern.fps
        return {"beats": [], "sections": [
            {"start": 0.0, "end": c0, "label": "intro"}, {"start": c0, "end": c1, "label": "climax"},
            {"start": c1, "end": modern.duration, "label": "outro"}]}
    flagged = V.validate(modern, {"beats": [1.0], **sections(calm)}).find("section_structure")
    fine = V.validate(modern, {"beats": [1.0], **sections(busy)}).find("section_structure")
    assert len(flagged) == 1 and not fine


def test_report_json_text_and_score(modern):
    q = modern.rotations.copy()
    q[50, JOINT["R_knee"]] = JL.qmul(q[50, JOINT["R_knee"]], np.array([0.0, 1.0, 0.0, 0.0]))
    report = V.validate(Motion(q, modern.root_translation, modern.fps))
    data = json.loads(json.dumps(report.to_json(), allow_nan=False))
    assert {"fps", "frames", "violations", "summary"} <= set(data)
    v = data["violations"][0]
    assert {"kind", "severity", "joint", "start", "end", "value", "limit", "message"} <= set(v)
    assert data["summary"]["errors"] == len(report.errors) > 0
    assert 0 <= data["summary"]["score"] < V.validate(modern).summary["score"] <= 100
    text = report.format_text()
    assert "score" in text and "flip" in text
    assert V.runs(np.array([1, 1, 0, 1, 0, 0, 1], bool), gap=1) == [(0, 3), (6, 6)]


# ------------------------------------------------------------------ CLI


def _cli(*args):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "engine", "validate", *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=300)


def test_cli_exit_codes_and_json(tmp_path, modern):
    """Exit 1 with errors, 0 once repaired (the fixed file is written), 2 for a broken file."""
    q = modern.rotations[:300].copy()
    q[150, JOINT["L_knee"]] = JL.qmul(q[150, JOINT["L_knee"]], np.array([0.0, 0.0, 0.0, 1.0]))
    faulty = tmp_path / "faulty.npz"
    Motion(q, modern.root_translation[:300], modern.fps).save_npz(faulty)
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"not a zip file")

    bad = _cli(faulty, "--json")
    assert bad.returncode == 1, bad.stderr
    data = json.loads(bad.stdout)
    assert data["fps"] == pytest.approx(60.0) and data["summary"]["errors"] > 0
    assert {"kind", "severity", "joint", "start", "end", "value", "limit"} <= set(data["violations"][0])
    flips = [v for v in data["violations"] if v["kind"] == "flip" and v["severity"] == "error"]
    assert flips and flips[0]["joint"] in ("L_knee", "L_ankle") and flips[0]["start"] == 150

    out = tmp_path / "fixed.npz"
    fixed = _cli(faulty, "--json", "--repair", "--out", out)
    assert fixed.returncode == 0, fixed.stderr
    data = json.loads(fixed.stdout)
    assert data["before"]["summary"]["errors"] > 0 and data["after"]["summary"]["errors"] == 0
    assert data["summary"]["errors"] == 0 and data["fps"] == pytest.approx(60.0)
    assert out.exists() and load_motion(out).frames == 300

    unusable = _cli(broken)
    assert unusable.returncode == 2 and unusable.stderr.startswith("error:")
    assert "Traceback" not in unusable.stderr


def test_repair_never_hands_back_more_errors_than_it_got(modern):
    """A motion whose foot contacts flicker every few frames (the hard case for foot
    locking): whatever repair does, the result has no new error kind and no more
    erroneous joint-frames than the input."""
    root = modern.root_translation.copy()
    root[::3, 2] -= 0.06  # feet dip into contact on every third frame
    root[:, 0] += 0.02 * np.sin(np.arange(len(root)))  # and slide
    shaky = Motion(modern.rotations, root, modern.fps)
    fixed, before, after = repair(shaky)
    frames = lambda r: {(v.kind, v.joint, f) for v in r.errors for f in range(v.start, v.end + 1)}  # noqa: E731
    assert {v.kind for v in after.errors} <= {v.kind for v in before.errors}
    assert len(frames(after)) <= len(frames(before))
