"""BVH reading, forward kinematics and writing, on the real shared mocap."""

from __future__ import annotations

import functools
import gzip
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from engine.bvh import (
    KNOWN_FPS_OVERRIDES,
    euler_to_matrix,
    forward_kinematics,
    read_bvh,
    write_bvh,
)
from engine.errors import ChoreoError

FOLDERS = ("cmu_salsa", "cmu_modern_05", "cmu_pop_131")
# (folder, file, joints, fps, unit): a few representative takes of each folder.
REPRESENTATIVE = [
    ("cmu_salsa", "60_01_scaled.bvh.gz", 43, 60.0, "m"),
    ("cmu_salsa", "61_10_scaled.bvh.gz", 43, 60.0, "m"),
    ("cmu_modern_05", "005_01.bvh.gz", 100, 60.0, "cm"),
    ("cmu_modern_05", "005_06.bvh.gz", 100, 60.0, "cm"),
    ("cmu_pop_131", "131_01.bvh.gz", 31, 120.0, "m"),
    ("cmu_pop_131", "131_12.bvh.gz", 31, 120.0, "m"),
]
SALSA_NAMES = (
    "hip abdomen chest neck head leftEye rightEye "
    "rCollar rShldr rForeArm rHand rThumb1 rThumb2 rIndex1 rIndex2 rMid1 rMid2 rRing1 rRing2 rPinky1 rPinky2 "
    "lCollar lShldr lForeArm lHand lThumb1 lThumb2 lIndex1 lIndex2 lMid1 lMid2 lRing1 lRing2 lPinky1 lPinky2 "
    "rButtock rThigh rShin rFoot lButtock lThigh lShin lFoot"
).split()


@functools.lru_cache(maxsize=8)
def _load(path: Path):
    return read_bvh(path)


@pytest.fixture(scope="module")
def mocap(shared_data) -> Path:
    return shared_data / "mocap"


# ---------------------------------------------------------------- real files


@pytest.mark.parametrize("folder,name,joints,fps,unit", REPRESENTATIVE)
def test_representative_files_parse(mocap, folder, name, joints, fps, unit):
    m = _load(mocap / folder / name)
    t = m.n_frames
    assert len(m.names) == len(m.parents) == len(m.channels) == joints
    assert m.parents[0] == -1 and np.all(m.parents[1:] < np.arange(1, joints))
    assert m.offsets.shape == (joints, 3)
    assert m.local_rotations.shape == (t, joints, 3, 3) and m.local_rotations.dtype == np.float64
    assert m.positions_channels.shape == (t, joints, 3)
    assert m.root_translation.shape == (t, 3)
    assert np.allclose(m.local_rotations[::50] @ np.swapaxes(m.local_rotations[::50], -1, -2), np.eye(3))
    assert m.fps == fps and m.unit_hint == unit
    assert m.end_sites and all(j not in m.parents for j in m.end_sites)  # End Sites sit on leaves here
    assert np.all(np.isfinite(forward_kinematics(m)))


@pytest.mark.slow
def test_every_mocap_file_parses(mocap):
    """All 51 takes load (about 95 MB of text) with one skeleton per folder."""
    for folder in FOLDERS:
        files = sorted((mocap / folder).glob("*.bvh.gz"))
        assert files, folder
        skeletons = set()
        for path in files:
            m = read_bvh(path)
            assert m.n_frames > 0 and np.isfinite(m.local_rotations).all()
            skeletons.add((tuple(m.names), m.offsets.tobytes(), m.fps, m.unit_hint))
        assert len(skeletons) == 1, f"{folder} mixes skeletons, rates or units"


def test_channel_layouts_and_euler_orders(mocap):
    """Salsa joints are Z X Y, every root and the 05/131 joints Z Y X; only roots translate."""
    for folder, name, *_ in REPRESENTATIVE[::2]:
        m = _load(mocap / folder / name)
        joint_order = ("Zrotation", "Xrotation", "Yrotation") if folder == "cmu_salsa" else (
            "Zrotation", "Yrotation", "Xrotation")
        assert m.channels[0] == ("Xposition", "Yposition", "Zposition", "Zrotation", "Yrotation", "Xrotation")
        assert all(c == joint_order for c in m.channels[1:])
        assert m.has_translation.tolist() == [True] + [False] * (len(m.names) - 1)


def test_rotations_compose_in_file_order(mocap):
    """A salsa joint's matrix is Rz @ Rx @ Ry of its channels, as in the file text."""
    path = mocap / "cmu_salsa" / "60_01_scaled.bvh.gz"
    m = _load(path)
    with gzip.open(path, "rt") as fh:
        lines = fh.read().splitlines()
    first = np.array(lines[lines.index("MOTION") + 3].split(), dtype=float)
    chest = m.names.index("chest")  # channels 9..11: root has 6, abdomen 3
    z, x, y = np.radians(first[9:12])
    rz = Rotation.from_rotvec([0, 0, z]).as_matrix()
    rx = Rotation.from_rotvec([x, 0, 0]).as_matrix()
    ry = Rotation.from_rotvec([0, y, 0]).as_matrix()
    assert np.allclose(m.local_rotations[0, chest], rz @ rx @ ry)
    assert np.allclose(m.root_translation[0], first[:3])


@pytest.mark.parametrize("order", ["XYZ", "XZY", "YXZ", "YZX", "ZXY", "ZYX", "ZX", "Y"])
def test_euler_to_matrix_matches_scipy(order):
    angles = np.random.default_rng(1).uniform(-360, 360, size=(200, len(order)))
    expected = Rotation.from_euler(order, angles, degrees=True).as_matrix()
    assert np.allclose(euler_to_matrix(order, angles), expected, atol=1e-12)


@pytest.mark.parametrize("name", ["60_01_scaled.bvh.gz", "61_10_scaled.bvh.gz"])
def test_salsa_bone_lengths_constant(mocap, name):
    m = _load(mocap / "cmu_salsa" / name)
    pos = forward_kinematics(m)
    joints = np.flatnonzero((m.parents >= 0) & ~m.has_translation)
    lengths = np.linalg.norm(pos[:, joints] - pos[:, m.parents[joints]], axis=-1)  # (T, J')
    rest = np.linalg.norm(m.offsets[joints], axis=-1)
    assert np.allclose(lengths, rest, rtol=1e-6, atol=1e-9)


def test_fps_overrides(mocap, tmp_path):
    salsa = mocap / "cmu_salsa" / "60_01_scaled.bvh.gz"
    m = _load(salsa)
    assert m.fps == 60.0 and m.frame_time == pytest.approx(1 / 60)
    assert m.header_frame_time == pytest.approx(1 / 120, rel=1e-3)  # the header's wrong 120 fps
    assert read_bvh(salsa, fps=120.0).fps == 120.0  # the argument wins
    assert _load(mocap / "cmu_pop_131" / "131_01.bvh.gz").fps == 120.0
    assert _load(mocap / "cmu_modern_05" / "005_01.bvh.gz").fps == 60.0  # "0.016667" snaps to 60
    renamed = tmp_path / "salsa_take.bvh.gz"  # no pattern matches: the header's 120 fps
    renamed.write_bytes(salsa.read_bytes())
    assert read_bvh(renamed).fps == 120.0
    assert set(KNOWN_FPS_OVERRIDES.values()) == {60.0}


def test_unit_hints_match_the_data(mocap):
    """Salsa ~1.2 m figures and 131 in metres, CC_Base 05 in centimetres (hips at ~1 m)."""
    expected = {"cmu_salsa": ("m", 0.5, 0.8), "cmu_modern_05": ("cm", 80.0, 120.0), "cmu_pop_131": ("m", 0.8, 1.1)}
    for folder, name, *_ in REPRESENTATIVE[::2]:
        m = _load(mocap / folder / name)
        unit, low, high = expected[folder]
        pos = forward_kinematics(m)
        hip_height = np.median(pos[:, 0, 1] - pos[:, :, 1].min(axis=1))  # Y-up
        assert m.unit_hint == unit and low < hip_height < high, (name, hip_height)


def test_salsa_hierarchy_has_43_daz_joints(mocap):
    m = _load(mocap / "cmu_salsa" / "60_01_scaled.bvh.gz")
    print("salsa joints:", " ".join(m.names))
    assert m.names == SALSA_NAMES
    names = m.names
    assert names[m.parents[names.index("rShin")]] == "rThigh"
    assert names[m.parents[names.index("lForeArm")]] == "lShldr"
    assert m.offsets[names.index("lForeArm"), 0] > 0.2  # T-pose: the left arm rests along +X


# ---------------------------------------------------------------- errors


def _salsa_text(mocap) -> str:
    with gzip.open(mocap / "cmu_salsa" / "60_10_scaled.bvh.gz", "rt") as fh:
        return fh.read()


def _expect_error(path: Path, *fragments: str) -> str:
    with pytest.raises(ChoreoError) as info:
        read_bvh(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_truncated_motion_names_frame_and_line(mocap, tmp_path):
    text = _salsa_text(mocap)
    cut = text[: text.index("MOTION") + len(text[text.index("MOTION"):]) // 2]
    cut = cut[: cut.rindex(" ")]  # end on a whole number
    path = tmp_path / "cut.bvh"
    path.write_text(cut)
    message = _expect_error(path, "truncated", "of 1197", "line")
    line = len(cut.rstrip().splitlines())
    assert f"line {line})" in message


def test_bad_input_files(mocap, tmp_path):
    text = _salsa_text(mocap)
    head, motion = text.split("MOTION\n")
    lines = motion.splitlines()

    garbage = tmp_path / "garbage.bvh"
    lines_bad = lines.copy()
    lines_bad[10] = lines_bad[10].replace(" ", " abc ", 1)
    garbage.write_text(head + "MOTION\n" + "\n".join(lines_bad))
    number_line = head.count("\n") + 12  # MOTION, Frames: and Frame Time: lines, then 9 frames
    _expect_error(garbage, "'abc'", f"line {number_line}")

    noise = tmp_path / "noise.bvh"
    noise.write_bytes(np.random.default_rng(0).bytes(5000))
    _expect_error(noise, "HIERARCHY")

    zero = tmp_path / "zero.bvh"
    zero.write_text(head + "MOTION\nFrames: 0\nFrame Time: 0.008333\n")
    _expect_error(zero, "no motion frames")

    unbalanced = tmp_path / "unbalanced.bvh"
    unbalanced.write_text(head.replace("}", "", 1) + "MOTION\n" + motion)
    _expect_error(unbalanced, "unbalanced")
    extra = tmp_path / "extra.bvh"
    extra.write_text(head + "}\nMOTION\n" + motion)
    _expect_error(extra, "unbalanced")

    damaged = tmp_path / "damaged.bvh.gz"
    damaged.write_bytes((mocap / "cmu_pop_131" / "131_07.bvh.gz").read_bytes()[:20000])
    _expect_error(damaged, "gzip")

    _expect_error(tmp_path / "missing.bvh", "cannot read")


def test_any_channel_layout(tmp_path):
    """Position channels on a child, a permuted 6-channel order and End Sites read correctly."""
    path = tmp_path / "layout.bvh"
    path.write_text(
        "HIERARCHY\nROOT base\n{\n OFFSET 1 0 0\n CHANNELS 3 Yposition Xposition Zposition\n"
        " JOINT arm\n {\n  OFFSET 0 2 0\n"
        "  CHANNELS 6 Zrotation Xposition Yrotation Yposition Xrotation Zposition\n"
        "  End Site\n  {\n   OFFSET 0 1 0\n  }\n }\n}\n"
        "MOTION\nFrames: 2\nFrame Time: 0.04\n0 0 0 0 0 0 0 0 0\n5 1 0 90 0 0 0 0 0\n"
    )
    m = read_bvh(path)
    assert m.fps == 25.0 and m.names == ["base", "arm"] and m.end_sites[1].tolist() == [0, 1, 0]
    assert m.root_translation[1].tolist() == [1, 5, 0]
    assert np.allclose(m.local_rotations[1, 1], Rotation.from_euler("Z", 90, degrees=True).as_matrix())
    pos = forward_kinematics(m)
    assert np.allclose(pos[0], [[1, 0, 0], [1, 2, 0]])
    assert np.allclose(pos[1], [[2, 5, 0], [2, 7, 0]])  # the root's rotation is the identity


# ---------------------------------------------------------------- writing


@pytest.mark.parametrize("name,order,suffix", [
    ("cmu_salsa/60_01_scaled.bvh.gz", "ZXY", ".bvh"),
    ("cmu_modern_05/005_06.bvh.gz", "ZYX", ".bvh.gz"),
    ("cmu_pop_131/131_01.bvh.gz", "XYZ", ".bvh"),
])
def test_write_read_round_trip(mocap, tmp_path, name, order, suffix):
    m = _load(mocap / name)
    clip = slice(0, 120)
    path = tmp_path / f"out{suffix}"
    write_bvh(path, m.names, m.parents, m.offsets, m.local_rotations[clip], m.root_translation[clip],
              m.fps, euler_order=order, end_sites=m.end_sites)
    back = read_bvh(path)
    assert back.names == m.names and back.fps == m.fps and back.n_frames == 120
    assert back.channels[1] == tuple(f"{axis}rotation" for axis in order)
    assert set(back.end_sites) == set(m.end_sites)
    before = forward_kinematics(m)[clip]
    after = forward_kinematics(back)
    scale = np.abs(before).max()
    assert np.abs(after - before).max() <= 1e-4 * scale


def test_write_rejects_mismatched_arrays(tmp_path):
    with pytest.raises(ChoreoError, match="local_rotations"):
        write_bvh(tmp_path / "x.bvh", ["a", "b"], [-1, 0], np.zeros((2, 3)), np.zeros((5, 3, 3, 3)),
                  np.zeros((5, 3)), 30.0)


def test_blender_importer_agrees_with_forward_kinematics(mocap, tmp_path):
    """Blender's own BVH importer puts every written joint where forward_kinematics does."""
    bpy = pytest.importorskip("bpy")
    m = _load(mocap / "cmu_modern_05" / "005_06.bvh.gz")  # root OFFSET 105 cm: the tricky case
    path = tmp_path / "for_blender.bvh"
    write_bvh(path, m.names, m.parents, m.offsets, m.local_rotations[:10], m.root_translation[:10], m.fps,
              end_sites=m.end_sites)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.import_anim.bvh(filepath=str(path))  # default axes: file Y-up becomes Blender Z-up
    armature = bpy.context.object
    expected = forward_kinematics(m)[:10] @ np.array([[1, 0, 0], [0, 0, 1], [0, -1, 0]])  # (x, y, z) -> (x, -z, y)
    for frame in (0, 9):
        bpy.context.scene.frame_set(frame + 1)
        heads = [armature.matrix_world @ armature.pose.bones[name].head for name in m.names]
        assert np.allclose(np.array(heads), expected[frame], atol=1e-5 * np.abs(expected).max())
