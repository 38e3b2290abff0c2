"""Data loading, motion rhythm and augmentation, on real data (the windowed, cached
training set is tested in test_model.py)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from engine import skeleton as S
from engine.aistpp import load_aistpp
from engine.augment import mirror_motion, time_stretch
from engine.errors import ChoreoError
from engine.motion import load_motion
from engine.normalize import resample
from engine.rhythm import COND_COLUMNS, COND_DIM, conditioning, half_time, motion_rhythm

SALSA_TAKE = "mocap/cmu_salsa/61_10_scaled.bvh.gz"  # the shortest salsa take, 20 s


@pytest.fixture(scope="module")
def aist_path(shared_data):
    return shared_data / "aistpp" / "sample_smpl_motion.pkl"


@pytest.fixture(scope="module")
def aist(aist_path):
    return load_aistpp(aist_path)


@pytest.fixture(scope="module")
def salsa30(shared_data):
    """A real salsa take (60 fps capture) on the canonical skeleton, at 30 fps."""
    return resample(load_motion(shared_data / SALSA_TAKE), 30)


# ------------------------------------------------------------------ AIST++


def test_aistpp_sample_is_an_upright_figure(aist):
    assert aist.frames == 127 and aist.fps == 60
    assert any("smpl_scaling" in w for w in aist.warnings)
    p = aist.positions
    assert np.all(p[:, S.JOINT["head"], 2] > p[:, 0, 2] + 0.3)
    for foot in ("L_ankle", "R_ankle", "L_foot", "R_foot"):
        assert np.all(p[:, S.JOINT[foot], 2] < p[:, 0, 2] - 0.3)


def test_aistpp_honours_smpl_scaling(aist, aist_path, tmp_path):
    with open(aist_path, "rb") as f:
        data = pickle.load(f)  # trusted fixture; the loader itself never does this
    data["smpl_trans"] = data["smpl_trans"] * 100.0
    data["smpl_scaling"] = np.array([100.0])
    path = tmp_path / "scaled.pkl"
    path.write_bytes(pickle.dumps(data))
    scaled = load_aistpp(path)
    assert scaled.warnings == []
    np.testing.assert_allclose(scaled.root_translation, aist.root_translation, atol=1e-5)
    np.testing.assert_allclose(scaled.rotations, aist.rotations, atol=1e-12)
    assert load_motion(path).frames == 127  # the dispatcher reaches the loader


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


@pytest.mark.parametrize("payload, message", [
    ({"smpl_trans": np.zeros((5, 3))}, "missing"),
    ({"smpl_poses": np.zeros((5, 69)), "smpl_trans": np.zeros((5, 3))}, "(N, 72)"),
    ({"smpl_poses": np.zeros((5, 72)), "smpl_trans": np.zeros((4, 3))}, "smpl_trans"),
    ({"smpl_poses": np.full((5, 72), np.nan), "smpl_trans": np.zeros((5, 3))}, "NaN"),
    ({"smpl_poses": np.zeros((5, 72)), "smpl_trans": np.zeros((5, 3)), "x": _Evil()}, "refusing"),
])
def test_aistpp_bad_files(tmp_path, payload, message):
    path = tmp_path / "bad.pkl"
    path.write_bytes(pickle.dumps(payload))
    with pytest.raises(ChoreoError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_aistpp(path)


# ------------------------------------------------------------------ rhythm


def test_salsa_rhythm(salsa30):
    r = motion_rhythm(salsa30)
    assert r.fps == 30 and len(r.beat_phase) == salsa30.frames
    assert 70 <= r.tempo <= 130  # the dancer's half-tempo count of salsa music
    assert r.beat_phase.min() >= 0 and r.beat_phase.max() < 1
    assert r.beat_onehot.sum() == len(r.beats) == len(r.beat_frames)
    expected = salsa30.duration * r.tempo / 60  # the pulse covers the whole take
    assert abs(len(r.beats) - expected) <= 0.15 * expected
    assert r.energy.min() >= 0 and r.energy.max() == pytest.approx(1.0)
    # the pulse sits on the dancer's kinematic beats (speed minima), within 70 ms
    near = np.abs(r.beat_frames[:, None] - r.kinematic_beats[None]).min(1) <= 2
    assert near.mean() > 0.5
    # phase restarts at each beat
    inside = r.beat_frames[(r.beat_frames > 0) & (r.beat_frames < salsa30.frames)]
    assert np.all(r.beat_phase[inside] < 0.01)


def test_half_time_keeps_every_other_beat(salsa30):
    r = motion_rhythm(salsa30)
    h = half_time(r)
    assert np.array_equal(h.beat_frames, r.beat_frames[::2]) and h.tempo == pytest.approx(r.tempo / 2)
    assert h.beat_onehot.sum() == len(h.beat_frames) and np.array_equal(h.energy, r.energy)
    assert np.all(h.beat_phase[h.beat_frames] < 0.01) and h.beat_phase.max() < 1
    dropped = r.beat_frames[1::2]
    dropped = dropped[dropped < salsa30.frames - 1]
    assert np.abs(h.beat_phase[dropped] - 0.5).max() < 0.15  # half-way between kept beats
    pulse = conditioning(h)[:, 2]
    assert pulse[h.beat_frames].min() == pytest.approx(1.0) and pulse[dropped].max() < 0.01


def test_conditioning_same_layout_from_music_and_motion(shared_data, salsa30):
    from engine.audio import analyze

    music = analyze(shared_data / "music" / "808kick120bpm.mp3", fps=30)
    from_music = conditioning(music)
    from_motion = conditioning(motion_rhythm(salsa30))
    assert from_music.dtype == from_motion.dtype == np.float32
    assert from_music.shape == (music.n_frames, COND_DIM) == (300, len(COND_COLUMNS))
    assert from_motion.shape == (salsa30.frames, COND_DIM)
    # 120 BPM at 30 fps: one phase cycle every 15 frames, the pulse column peaks on the beats
    assert music.tempo == pytest.approx(120, abs=1)
    beats = np.flatnonzero(from_music[:, 2] > 0.99)
    assert np.all(np.diff(beats) == 15)
    np.testing.assert_allclose(from_music[beats, 1], 1.0, atol=1e-3)  # cos(2 pi phase) on the beat
    np.testing.assert_allclose(from_music[beats + 15 // 2, 1], np.cos(2 * np.pi * 7 / 15), atol=0.05)
    for cond in (from_music, from_motion):
        np.testing.assert_allclose(cond[:, 0] ** 2 + cond[:, 1] ** 2, 1.0, atol=1e-5)
        assert cond[:, 2:4].min() >= 0 and cond[:, 2:4].max() <= 1
    assert from_motion[0, 4] == pytest.approx(motion_rhythm(salsa30).tempo / 200)
    # resampled to 60 fps: same beat times, twice the frames
    at60 = conditioning(music, 60)
    assert len(at60) == 600 and np.all(np.diff(np.flatnonzero(at60[:, 2] > 0.99)) == 30)


# ------------------------------------------------------------ augmentation


def test_mirror_twice_is_identity(salsa30):
    clip = salsa30.slice(0, 90)
    clip.contacts = np.random.default_rng(0).random((90, 4)) > 0.5
    once = mirror_motion(clip)
    twice = mirror_motion(once)
    np.testing.assert_allclose(twice.matrices, clip.matrices, atol=1e-9)
    np.testing.assert_allclose(twice.root_translation, clip.root_translation)
    np.testing.assert_array_equal(twice.contacts, clip.contacts)
    np.testing.assert_array_equal(once.contacts, clip.contacts[:, [2, 3, 0, 1]])
    # the mirror image is the reflection of the positions, left and right swapped
    reflected = clip.positions[:, S.MIRROR_INDEX] * [-1, 1, 1]
    np.testing.assert_allclose(once.positions, reflected, atol=1e-9)


def test_time_stretch(salsa30):
    clip = salsa30.slice(0, 201)
    fast = time_stretch(clip, 1.25)
    assert fast.frames == 161 and fast.fps == clip.fps  # 200 / 1.25 + 1
    np.testing.assert_allclose(fast.positions[4], clip.positions[5], atol=1e-9)  # 4 * 1.25 = 5
    bones = np.linalg.norm(fast.positions[:, 1:] - fast.positions[:, S.SMPL_PARENTS[1:]], axis=-1)
    np.testing.assert_allclose(bones, np.broadcast_to(np.linalg.norm(S.REST_OFFSETS[1:], axis=1),
                                                      bones.shape), atol=1e-9)
    slow = time_stretch(clip, 0.8)
    assert slow.frames == 251
    with pytest.raises(ChoreoError):
        time_stretch(clip, 0)
