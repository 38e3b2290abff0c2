"""BVH motion capture: reading, writing and forward kinematics (numpy + scipy, no bpy).

Conventions:
- Rotation channels are Euler angles in degrees, composed as intrinsic rotations
  in the order the file lists them: ``Zrotation Xrotation Yrotation`` gives
  ``Rz @ Rx @ Ry`` (scipy order string ``"ZXY"``). Matrices act on column vectors.
- Position channels add to the joint's OFFSET: a joint sits at
  ``parent + R_parent @ (offset + translation)``. The root therefore sits at
  ``offset[0] + root_translation``, which is what the CC_Base files need (their
  hips' height is in the root OFFSET, the channels hold small displacements).
  Blender's importer instead puts the root at its channels alone, so
  :func:`write_bvh` writes a zero root OFFSET and both readings agree.
- Positions are in file units; ``unit_hint`` guesses which ("m" or "cm").
"""

from __future__ import annotations

import fnmatch
import gzip
import io
import re
import warnings
import zlib
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from engine.errors import ChoreoError

# Filename patterns (matched against the name without .bvh/.bvh.gz) whose header
# Frame Time is wrong, mapped to the true capture rate. The CMU salsa takes of
# subjects 60 and 61 (cgspeed conversion, scaled) say 120 fps but were captured
# at 60 fps. read_bvh applies these unless its ``fps`` argument is given.
KNOWN_FPS_OVERRIDES: dict[str, float] = {
    "60_*_scaled*": 60.0,
    "61_*_scaled*": 60.0,
}

_AXES = "XYZ"
_CHANNEL_RE = re.compile(r"^([XYZ])(position|rotation)$", re.IGNORECASE)
_METRE_LIMIT = 10.0  # a figure taller than this (leg + spine) is not in metres


@dataclass
class BvhMotion:
    """A BVH clip: skeleton, per-frame channels as rotations/translations, frame rate."""

    names: list[str]
    parents: np.ndarray  # (J,) int, -1 for the root, parents[j] < j
    offsets: np.ndarray  # (J, 3) rest offsets from the parent, file units
    end_sites: dict[int, np.ndarray]  # joint index -> (3,) End Site offset
    channels: list[tuple[str, ...]]  # per joint, as listed in the file
    local_rotations: np.ndarray  # (T, J, 3, 3) float64
    positions_channels: np.ndarray  # (T, J, 3) translation channels, zeros where none
    fps: float  # effective rate (override, known fix or header)
    header_frame_time: float  # seconds per frame as the file states it
    unit_hint: str  # "m" or "cm"
    source: str = ""

    @property
    def n_frames(self) -> int:
        return self.local_rotations.shape[0]

    @property
    def frame_time(self) -> float:
        """Effective seconds per frame (1 / fps)."""
        return 1.0 / self.fps

    @property
    def root_translation(self) -> np.ndarray:
        """(T, 3) root position channels."""
        return self.positions_channels[:, 0]

    @property
    def has_translation(self) -> np.ndarray:
        """(J,) bool: joints with position channels."""
        return np.array([any(c.endswith("position") for c in chans) for chans in self.channels])


@dataclass
class _Hierarchy:
    names: list[str]
    parents: list[int]
    offsets: list[list[float]]
    end_sites: dict[int, np.ndarray]
    channels: list[tuple[str, ...]]

    @property
    def n_channels(self) -> int:
        return sum(len(c) for c in self.channels)


class _ParseError(Exception):
    """A format problem at a known line; read_bvh adds the file name."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message if line is None else f"{message} (line {line})")


# ---------------------------------------------------------------- reading


def read_bvh(path: str | Path, fps: float | None = None) -> BvhMotion:
    """Read a plain or gzip'd BVH file.

    ``fps`` overrides the header's Frame Time. Without it, a filename matching
    :data:`KNOWN_FPS_OVERRIDES` gets the rate listed there, otherwise the
    header's. Any unreadable or malformed file raises :class:`ChoreoError`.
    """
    path = Path(path)
    raw = _read_bytes(path)
    try:
        header, frames, frame_time_text, body, time_line = _split_sections(raw)
        frame_time = float(frame_time_text)
        hier = _HierarchyParser(header).parse()
        data = _parse_motion(body, frames, hier.n_channels, time_line)
    except _ParseError as exc:
        raise ChoreoError(f"BVH file {path} is malformed: {exc}.") from None
    rate = fps if fps is not None else _known_fps(path)
    if rate is None:
        if not 0 < frame_time < np.inf:
            raise ChoreoError(f"BVH file {path} has an unusable Frame Time ({frame_time_text}).")
        rate = _header_rate(frame_time_text)
    if not np.isfinite(rate) or rate <= 0:
        raise ChoreoError(f"invalid fps {rate} for BVH file {path}.")
    offsets = np.array(hier.offsets, dtype=np.float64).reshape(-1, 3)
    parents = np.array(hier.parents, dtype=np.int64)
    return BvhMotion(
        names=hier.names,
        parents=parents,
        offsets=offsets,
        end_sites=hier.end_sites,
        channels=hier.channels,
        local_rotations=_rotations(data, hier.channels),
        positions_channels=_translations(data, hier.channels),
        fps=float(rate),
        header_frame_time=frame_time,
        unit_hint=guess_unit(parents, offsets, hier.end_sites),
        source=str(path),
    )


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when it is gzip'd."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ChoreoError(f"cannot read BVH file {path}: {exc.strerror or exc}.") from None
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise ChoreoError(f"BVH file {path} is a damaged gzip file: {exc}.") from None


def _header_rate(frame_time_text: str) -> float:
    """1 / Frame Time, snapped to a whole rate when the printed digits allow it.

    "0.016667" gives 59.9988 literally but 60 within its rounding, so 60.
    """
    rate = 1.0 / float(frame_time_text)
    last_digit = 10.0 ** Decimal(frame_time_text).as_tuple().exponent
    slack = rate * rate * 0.5 * last_digit  # how far rounding the text can move the rate
    return float(round(rate)) if abs(rate - round(rate)) <= slack else rate


def _known_fps(path: Path) -> float | None:
    """The rate KNOWN_FPS_OVERRIDES gives this file name, if any."""
    stem = re.sub(r"\.bvh(\.gz)?$", "", path.name, flags=re.IGNORECASE)
    for pattern, rate in KNOWN_FPS_OVERRIDES.items():
        if fnmatch.fnmatchcase(stem, pattern):
            return rate
    return None


_MOTION_RE = re.compile(
    rb"^[ \t]*MOTION[ \t]*\r?\n\s*Frames:[ \t]*(\S+)[ \t]*\r?\n\s*Frame[ \t]+Time:[ \t]*(\S+)[ \t]*\r?$",
    re.MULTILINE | re.IGNORECASE,
)


def _split_sections(raw: bytes) -> tuple[str, int, str, bytes, int]:
    """(hierarchy text, frame count, Frame Time as written, motion text, its line).

    The motion text starts with the rest of the Frame Time line, so its
    k-th line is line ``time_line + k`` of the file.
    """
    if raw[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")[:9].upper() != b"HIERARCHY":  # a UTF-8 BOM is fine
        raise _ParseError("it does not start with HIERARCHY")
    match = _MOTION_RE.search(raw)
    if match is None:
        raise _ParseError("no 'MOTION / Frames: / Frame Time:' section was found")
    line = raw.count(b"\n", 0, match.start()) + 1
    frame_time = match.group(2).decode("ascii", errors="replace")
    try:
        frames = int(match.group(1))
        float(frame_time)
    except ValueError:
        raise _ParseError("the Frames or Frame Time value is not a number", line) from None
    if frames <= 0:
        raise _ParseError(f"it has no motion frames (Frames: {frames})", line + 1)
    time_line = raw.count(b"\n", 0, match.end()) + 1
    header = raw[: match.start()].decode("utf-8-sig", errors="replace")
    return header, frames, frame_time, raw[match.end():], time_line


class _HierarchyParser:
    """Recursive-descent parser of the HIERARCHY section (any channels, End Sites)."""

    def __init__(self, text: str):
        self.tokens: list[tuple[str, int]] = []
        for number, line in enumerate(text.splitlines(), 1):
            words = line.replace("{", " { ").replace("}", " } ").split()
            self.tokens.extend((w, number) for w in words)
        self.pos = 0
        self.hier = _Hierarchy([], [], [], {}, [])

    def parse(self) -> _Hierarchy:
        self._expect("HIERARCHY")
        self._expect("ROOT")
        self._joint(parent=-1)
        if self.pos < len(self.tokens):
            word, line = self.tokens[self.pos]
            raise _ParseError(f"unexpected '{word}' after the root joint closed (unbalanced braces?)", line)
        if self.hier.n_channels == 0:
            raise _ParseError("the hierarchy has no channels")
        return self.hier

    def _next(self, what: str) -> tuple[str, int]:
        if self.pos >= len(self.tokens):
            last = self.tokens[-1][1] if self.tokens else 1
            raise _ParseError(f"the hierarchy ends while expecting {what} (unbalanced braces?)", last)
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def _expect(self, keyword: str) -> None:
        word, line = self._next(f"'{keyword}'")
        if word.upper() != keyword.upper():
            raise _ParseError(f"expected '{keyword}' but found '{word}'", line)

    def _floats(self, count: int, what: str) -> list[float]:
        values = []
        for _ in range(count):
            word, line = self._next(what)
            try:
                values.append(float(word))
            except ValueError:
                raise _ParseError(f"'{word}' in {what} is not a number", line) from None
        return values

    def _name(self) -> str:
        """The joint name: the rest of the ROOT/JOINT line up to a brace."""
        _, line = self.tokens[self.pos - 1]
        words = []
        while self.pos < len(self.tokens) and self.tokens[self.pos][1] == line:
            if self.tokens[self.pos][0] in ("{", "}"):
                break
            words.append(self.tokens[self.pos][0])
            self.pos += 1
        if not words:
            raise _ParseError("a joint has no name", line)
        return " ".join(words)

    def _joint(self, parent: int) -> None:
        hier = self.hier
        index = len(hier.names)
        hier.names.append(self._name())
        hier.parents.append(parent)
        hier.offsets.append([0.0, 0.0, 0.0])
        hier.channels.append(())
        self._expect("{")
        while True:
            word, line = self._next(f"'}}' closing joint '{hier.names[index]}'")
            key = word.upper()
            if key == "}":
                return
            if key == "OFFSET":
                hier.offsets[index] = self._floats(3, "an OFFSET")
            elif key == "CHANNELS":
                hier.channels[index] = self._channels(line)
            elif key == "JOINT":
                self._joint(parent=index)
            elif key == "END":
                self._end_site(index)
            elif key == "ROOT":
                raise _ParseError("more than one ROOT is not supported", line)
            else:
                raise _ParseError(f"unexpected '{word}' in joint '{hier.names[index]}'", line)

    def _channels(self, line: int) -> tuple[str, ...]:
        count_word, _ = self._next("a channel count")
        if not count_word.isdigit() or not 0 <= int(count_word) <= 6:
            raise _ParseError(f"bad channel count '{count_word}'", line)
        names = []
        for _ in range(int(count_word)):
            word, where = self._next("a channel name")
            match = _CHANNEL_RE.match(word)
            if match is None:
                raise _ParseError(f"unknown channel '{word}'", where)
            names.append(match.group(1).upper() + match.group(2).lower())
        if len(set(names)) != len(names):
            raise _ParseError("a joint lists the same channel twice", line)
        return tuple(names)

    def _end_site(self, joint: int) -> None:
        while self.pos < len(self.tokens) and self.tokens[self.pos][0] not in ("{", "}"):
            self.pos += 1  # "Site", sometimes followed by a name
        self._expect("{")
        self._expect("OFFSET")
        self.hier.end_sites[joint] = np.array(self._floats(3, "an End Site OFFSET"))
        self._expect("}")


def _parse_motion(body: bytes, frames: int, n_channels: int, time_line: int) -> np.ndarray:
    """(frames, n_channels) channel values, parsed by numpy in one go.

    Numbers beyond ``frames`` whole frames are ignored, as the header says.
    """
    data = _one_frame_per_line(body, frames, n_channels)
    if data is None:
        data = _flat_frames(body, frames, n_channels, time_line)
    if not np.isfinite(data).all():
        frame = int(np.flatnonzero(~np.isfinite(data).all(axis=1))[0])
        raise _ParseError(f"frame {frame + 1} holds a NaN or infinite value")
    return data


def _one_frame_per_line(body: bytes, frames: int, n_channels: int) -> np.ndarray | None:
    """The frames via np.loadtxt's C parser (fastest), or None unless every line is one frame."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # blank lines, no data
        try:
            rows = np.loadtxt(io.BytesIO(body), comments=None, ndmin=2, max_rows=frames)
        except ValueError:
            return None
    return rows if rows.shape == (frames, n_channels) else None


def _flat_frames(body: bytes, frames: int, n_channels: int, time_line: int) -> np.ndarray:
    """The frames from all numbers in order (any line layout); names the line of a defect."""
    try:
        values = np.array(body.split(), dtype=np.float64)
    except ValueError:
        word, line = _first_bad_number(body, time_line)
        raise _ParseError(f"'{word}' in the motion data is not a number", line) from None
    expected = frames * n_channels
    if values.size < expected:
        last_line = time_line + body.rstrip().count(b"\n")
        raise _ParseError(
            f"the motion data is truncated: it stops in frame {values.size // n_channels + 1} "
            f"of {frames}, with {values.size} of {expected} numbers",
            last_line,
        )
    return values[:expected].reshape(frames, n_channels)


def _first_bad_number(body: bytes, time_line: int) -> tuple[str, int]:
    """The first token of the motion data that is not a number, and its line."""
    for offset, line in enumerate(body.splitlines()):
        for word in line.split():
            try:
                float(word)
            except ValueError:
                return word.decode("utf-8", errors="replace")[:40], time_line + offset
    return "?", time_line


def _channel_columns(channels: list[tuple[str, ...]], kind: str):
    """Yield (joint, [(axis letter, column)]) for the channels of one kind."""
    column = 0
    for joint, names in enumerate(channels):
        picked = [(name[0], column + i) for i, name in enumerate(names) if name.endswith(kind)]
        column += len(names)
        if picked:
            yield joint, picked


def _rotations(data: np.ndarray, channels: list[tuple[str, ...]]) -> np.ndarray:
    """(T, J, 3, 3) local rotations; one euler_to_matrix call per distinct Euler order."""
    frames = data.shape[0]
    out = np.broadcast_to(np.eye(3), (frames, len(channels), 3, 3)).copy()
    groups: dict[str, tuple[list[int], list[list[int]]]] = {}
    for joint, picked in _channel_columns(channels, "rotation"):
        order = "".join(axis for axis, _ in picked)
        joints, columns = groups.setdefault(order, ([], []))
        joints.append(joint)
        columns.append([col for _, col in picked])
    for order, (joints, columns) in groups.items():
        angles = data[:, np.array(columns)].reshape(-1, len(order))
        out[:, joints] = euler_to_matrix(order, angles).reshape(frames, len(joints), 3, 3)
    return out


def euler_to_matrix(order: str, degrees: np.ndarray) -> np.ndarray:
    """(N, 3, 3) matrices of intrinsic Euler angles (N, len(order)) in degrees.

    Same result as ``Rotation.from_euler(order.upper(), degrees, degrees=True)``
    about 4x faster: each elementary rotation mixes two columns in place.
    """
    rad = np.radians(degrees)
    m = np.zeros((len(rad), 3, 3))
    m[:, 0, 0] = m[:, 1, 1] = m[:, 2, 2] = 1.0
    for col, axis in enumerate(order.upper()):
        i = _AXES.index(axis)
        j, k = (i + 1) % 3, (i + 2) % 3
        c, s = np.cos(rad[:, col, None]), np.sin(rad[:, col, None])
        mj, mk = m[:, :, j], m[:, :, k]
        m[:, :, j], m[:, :, k] = mj * c + mk * s, mk * c - mj * s
    return m


def _translations(data: np.ndarray, channels: list[tuple[str, ...]]) -> np.ndarray:
    """(T, J, 3) translation channel values, zeros where a joint has none."""
    out = np.zeros((data.shape[0], len(channels), 3))
    for joint, picked in _channel_columns(channels, "position"):
        for axis, column in picked:
            out[:, joint, _AXES.index(axis)] = data[:, column]
    return out


def guess_unit(parents: np.ndarray, offsets: np.ndarray, end_sites: dict[int, np.ndarray]) -> str:
    """Guess "m" or "cm" from the figure's size: its two longest chains out of the root.

    The chains (leg and spine-to-head, typically) are summed bone lengths, so
    this works whatever the rest pose. A figure over 10 units is taken as cm.
    """
    lengths = np.linalg.norm(offsets, axis=1)
    depth = np.zeros(len(parents))
    branch = np.arange(len(parents))  # which child of the root each joint descends from
    for j, p in enumerate(parents):
        if p >= 0:
            depth[j] = depth[p] + lengths[j]
            branch[j] = j if parents[p] < 0 else branch[p]
    for j, site in end_sites.items():
        depth[j] += np.linalg.norm(site)
    reach: dict[int, float] = {}
    for j in np.flatnonzero(parents >= 0):
        reach[branch[j]] = max(reach.get(branch[j], 0.0), depth[j])
    extent = sum(sorted(reach.values())[-2:])
    return "cm" if extent > _METRE_LIMIT else "m"


# ---------------------------------------------------------------- kinematics


def forward_kinematics(motion: BvhMotion) -> np.ndarray:
    """(T, J, 3) world joint positions in file units, vectorised over frames."""
    local = motion.offsets[None] + motion.positions_channels  # (T, J, 3)
    return world_transforms(motion.parents, local, motion.local_rotations)[0]


def world_transforms(parents, local: np.ndarray, rot: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World positions (T,J,3) and rotations (T,J,3,3) from local translations
    (T,J,3) and local rotations (T,J,3,3); a joint sits at
    ``parent + R_parent @ local``. Loops over joints only."""
    world_rot = np.empty(np.broadcast_shapes(rot.shape, local.shape[:2] + (3, 3)))
    pos = np.empty(np.broadcast_shapes(local.shape, rot.shape[:2] + (3,)))
    for j, p in enumerate(parents):
        if p < 0:
            world_rot[:, j] = rot[:, j]
            pos[:, j] = local[:, j]
        else:
            world_rot[:, j] = world_rot[:, p] @ rot[:, j]
            pos[:, j] = pos[:, p] + np.einsum("tab,tb->ta", world_rot[:, p], local[:, j])
    return pos, world_rot


# ---------------------------------------------------------------- writing


def write_bvh(
    path: str | Path,
    names: list[str],
    parents: np.ndarray,
    offsets: np.ndarray,
    local_rotations: np.ndarray,
    root_translation: np.ndarray,
    fps: float,
    euler_order: str = "ZXY",
    end_sites: dict[int, np.ndarray] | None = None,
) -> None:
    """Write a BVH that Blender's importer loads (gzip'd when ``path`` ends in .gz).

    The root gets 6 channels (position, then rotation in ``euler_order``), every
    other joint 3 rotation channels. The root is written at OFFSET 0 with
    ``offsets[0] + root_translation`` in its position channels, so Blender and
    :func:`read_bvh` place it alike. Leaf joints get an End Site: ``end_sites[j]``
    when given, else half the leaf's own offset. Joints are written depth-first
    in index order; :func:`read_bvh` returns them in that order.
    """
    parents = np.asarray(parents)
    offsets = np.asarray(offsets, dtype=np.float64)
    rots = np.asarray(local_rotations, dtype=np.float64)
    root = np.asarray(root_translation, dtype=np.float64)
    _check_write_args(names, parents, offsets, rots, root, fps, euler_order)
    order = _depth_first(parents)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Gimbal lock detected")
        eulers = Rotation.from_matrix(rots[:, order].reshape(-1, 3, 3)).as_euler(euler_order, degrees=True)
    columns = [(root + offsets[0])[:, None, :], eulers.reshape(len(rots), len(order), 3)]
    data = np.concatenate(columns, axis=1).reshape(len(rots), -1)

    text = io.StringIO()
    _write_hierarchy(text, names, parents, offsets, order, euler_order, end_sites or {})
    text.write(f"MOTION\nFrames: {len(rots)}\nFrame Time: {1.0 / fps:.8f}\n")
    np.savetxt(text, data, fmt="%.6f")
    payload = text.getvalue().encode("utf-8")
    path = Path(path)
    try:
        path.write_bytes(gzip.compress(payload, 6) if path.suffix == ".gz" else payload)
    except OSError as exc:
        raise ChoreoError(f"cannot write BVH file {path}: {exc.strerror or exc}.") from None


def _check_write_args(names, parents, offsets, rots, root, fps, euler_order) -> None:
    """Raise ChoreoError when write_bvh's arrays do not fit together."""
    n = len(names)
    problems = []
    if n == 0:
        raise ChoreoError("cannot write BVH: there are no joints.")
    if parents.shape != (n,) or offsets.shape != (n, 3):
        problems.append(f"parents must be ({n},) and offsets ({n}, 3)")
    elif (parents[0] != -1) or np.any(parents[1:] < 0) or np.any(parents[1:] >= np.arange(1, n)):
        problems.append("parents must have one root at index 0 and list parents before children")
    if rots.ndim != 4 or rots.shape[1:] != (n, 3, 3) or len(rots) == 0:
        problems.append(f"local_rotations must be (T, {n}, 3, 3) with T > 0")
    elif root.shape != (len(rots), 3):
        problems.append("root_translation must be (T, 3) with the same T as local_rotations")
    if not fps > 0:
        problems.append("fps must be positive")
    if sorted(euler_order) != list(_AXES):
        problems.append(f"euler_order must be a permutation of XYZ, not {euler_order!r}")
    if problems:
        raise ChoreoError("cannot write BVH: " + "; ".join(problems) + ".")


def _depth_first(parents: np.ndarray) -> list[int]:
    """Joint indices in depth-first order, children in index order."""
    children: dict[int, list[int]] = {}
    for j, p in enumerate(parents):
        children.setdefault(int(p), []).append(j)
    order, stack = [], [0]
    while stack:
        j = stack.pop()
        order.append(j)
        stack.extend(reversed(children.get(j, [])))
    return order


def _write_hierarchy(out, names, parents, offsets, order, euler_order, end_sites) -> None:
    """Write the HIERARCHY section for joints in ``order``."""
    rot_channels = " ".join(f"{axis}rotation" for axis in euler_order)
    has_child = np.zeros(len(names), dtype=bool)
    has_child[parents[parents >= 0]] = True
    depth = np.zeros(len(names), dtype=int)
    out.write("HIERARCHY\n")
    open_joints: list[int] = []
    for j in order:
        while open_joints and open_joints[-1] != parents[j]:
            out.write("\t" * depth[open_joints.pop()] + "}\n")
        if parents[j] >= 0:
            depth[j] = depth[parents[j]] + 1
        pad = "\t" * depth[j]
        offset = np.zeros(3) if parents[j] < 0 else offsets[j]
        channels = f"6 Xposition Yposition Zposition {rot_channels}" if parents[j] < 0 else f"3 {rot_channels}"
        out.write(f"{pad}{'ROOT' if parents[j] < 0 else 'JOINT'} {names[j]}\n{pad}{{\n")
        out.write(f"{pad}\tOFFSET {_vec(offset)}\n{pad}\tCHANNELS {channels}\n")
        if not has_child[j]:
            site = end_sites.get(j, 0.5 * offsets[j])
            out.write(f"{pad}\tEnd Site\n{pad}\t{{\n{pad}\t\tOFFSET {_vec(site)}\n{pad}\t}}\n")
        open_joints.append(j)
    while open_joints:
        out.write("\t" * depth[open_joints.pop()] + "}\n")


def _vec(v) -> str:
    return " ".join(f"{x:.6f}" for x in v)
