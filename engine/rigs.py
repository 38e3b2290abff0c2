"""Rig presets (``rigs/*.json``) and bone-map auto-detection.

A preset maps SMPL-24 joint names (engine.skeleton.SMPL_NAMES) to the bones of
one rig family. A joint maps to one bone, or to a list of consecutive bones of
one chain (e.g. UE5 ``spine_01``, ``spine_02``) that share its rotation.
Joints a rig lacks (collars, a third spine bone, hands) are simply absent.
See rigs/README.md for the file format.

Detection (:func:`detect`) scores every preset against an armature's bone
names and falls back to a generic, alias-based map ("custom"). Names are
compared after normalisation: the namespace before the last ``:`` or ``|`` is
dropped (``mixamorig1:Hips``), camelCase is split, case is ignored and the
separators ``: _ . - space`` are equivalent. Sides are read from L/R, Left/Right
tokens in front, at the end (``.L``, ``_l``) or in the middle (VRoid
``J_Bip_L_UpperLeg``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import ChoreoError
from engine.skeleton import SMPL_NAMES, SMPL_PARENTS

RIGS_DIR = Path(__file__).resolve().parents[1] / "rigs"
MAPPING_FORMAT = "choreo.bone_map"
CUSTOM = "custom"

# Joints without which a body cannot be retargeted (hips and both legs).
REQUIRED = ("pelvis", "L_hip", "R_hip", "L_knee", "R_knee")
# Weights of the joints in detection scores: the core of the body counts more.
_WEIGHT = {name: (2.0 if name in REQUIRED else 1.0) for name in SMPL_NAMES}
for _name in ("L_hand", "R_hand", "L_collar", "R_collar", "spine2"):
    _WEIGHT[_name] = 0.5

_SIDED = {name[2:] for name in SMPL_NAMES if name[:2] in ("L_", "R_")}  # hip, knee, ...
_FILLER = {"j", "bip", "c", "jnt", "joint", "bn", "bip01", "b", "def", "org", "mch"}
_PENALTY = {"def", "org", "mch", "ik", "twist", "roll", "pole", "target", "end", "nub", "tweak",
            "parent", "master", "helper", "socket", "vis", "wgt", "null", "top", "tip", "pivot",
            "corrective", "offset", "rot", "str", "ctrl", "prop", "spin", "heel", "ball"}


# --------------------------------------------------------------------------- names

def words(name: str) -> list[str]:
    """Lower-case tokens of a bone name, namespace dropped, camelCase split."""
    name = re.split(r"[:|]", name)[-1]
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    return [t for t in re.split(r"[^a-z0-9]+", name.lower()) if t]


def name_key(name: str) -> str:
    """Normalised identity of a name: ``mixamorig1:LeftUpLeg`` -> ``leftupleg``."""
    return "".join(words(name))


def split_side(name: str) -> tuple[str | None, str, list[str]]:
    """(side 'L'/'R'/None, side-less base, all tokens) of a bone name."""
    tokens = words(name)
    side = None
    rest = list(tokens)
    sides = {"l": "L", "left": "L", "r": "R", "right": "R"}
    if len(rest) > 1 and rest[0] in sides:
        side = sides[rest.pop(0)]
    elif len(rest) > 1 and rest[-1] in sides:
        side = sides[rest.pop()]
    else:
        middle = [i for i, t in enumerate(rest[1:-1], 1) if t in sides]
        if len(middle) == 1:
            side = sides[rest.pop(middle[0])]
        elif rest and rest[0].startswith(("left", "right")) and rest[0] not in ("left", "right"):
            word = rest.pop(0)
            side = "L" if word.startswith("left") else "R"
            rest.insert(0, word[4:] if side == "L" else word[5:])
    base = "".join(t for t in rest if t not in _FILLER)
    return side, base, tokens


# --------------------------------------------------------------------------- presets

@dataclass
class RigPreset:
    """One rig family's bone map and conventions (a ``rigs/*.json`` file)."""

    name: str
    bones: dict[str, list[str]]  # SMPL joint -> target bone(s), root-most first
    label: str = ""
    description: str = ""
    rest_pose: str = ""  # "T" / "A": informational, the math uses the real rest matrices
    root_motion_bone: str | None = None
    alternatives: dict[str, list[str]] = field(default_factory=dict)  # exact other names
    aliases: dict[str, list[str]] = field(default_factory=dict)  # regex on side-less bases
    parent_overrides: dict[str, str] = field(default_factory=dict)
    set_properties: dict[str, dict[str, float]] = field(default_factory=dict)
    required_bones: list[str] = field(default_factory=list)
    notes: str = ""

    @classmethod
    def from_dict(cls, data: dict, name: str | None = None) -> "RigPreset":
        name = str(data.get("name") or name or "")
        bones = _clean_mapping(data.get("bones") or {}, f"rig preset {name!r}")
        for key in ("alternatives", "aliases"):
            for joint, values in (data.get(key) or {}).items():
                if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                    raise ChoreoError(f"rig preset {name!r}: {key}[{joint!r}] must be a list of names")
        return cls(
            name=name, bones=bones, label=str(data.get("label") or name),
            description=str(data.get("description") or ""), rest_pose=str(data.get("rest_pose") or ""),
            root_motion_bone=data.get("root_motion_bone"),
            alternatives={k: list(v) for k, v in (data.get("alternatives") or {}).items()},
            aliases={k: list(v) for k, v in (data.get("aliases") or {}).items()},
            parent_overrides=dict(data.get("parent_overrides") or {}),
            set_properties={b: {p: float(v) for p, v in props.items()}
                            for b, props in (data.get("set_properties") or {}).items()},
            required_bones=list(data.get("required_bones") or []),
            notes=str(data.get("notes") or ""),
        )


def _clean_mapping(mapping: dict, what: str) -> dict[str, list[str]]:
    """Validate {smpl joint: bone or [bones]} and return it with lists."""
    if not isinstance(mapping, dict):
        raise ChoreoError(f"{what}: the bone map must be a JSON object {{smpl joint: bone}}")
    out: dict[str, list[str]] = {}
    for joint, value in mapping.items():
        if joint not in SMPL_NAMES:
            raise ChoreoError(f"{what}: {joint!r} is not an SMPL joint (use one of {', '.join(SMPL_NAMES)})")
        bones = [value] if isinstance(value, str) else value
        if not isinstance(bones, list) or not all(isinstance(b, str) and b for b in bones):
            raise ChoreoError(f"{what}: {joint!r} must map to a bone name or a list of bone names")
        if bones:
            out[joint] = list(bones)
    return out


def load_presets(folder: str | Path | None = None) -> dict[str, RigPreset]:
    """All presets in ``rigs/`` (or ``folder``), by name."""
    folder = Path(folder) if folder else RIGS_DIR
    presets = {}
    for path in sorted(folder.glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ChoreoError(f"{path}: cannot read rig preset ({exc})") from exc
        preset = RigPreset.from_dict(data, path.stem)
        presets[preset.name] = preset
    return presets


def load_preset(name: str, folder: str | Path | None = None) -> RigPreset:
    presets = load_presets(folder)
    if name not in presets:
        raise ChoreoError(f"no rig preset named {name!r}; the presets are: {', '.join(sorted(presets))}")
    return presets[name]


# --------------------------------------------------------------------------- matching

@dataclass
class Detection:
    """Result of :func:`detect` (also unpacks as a 4-tuple)."""

    preset: str
    mapping: dict[str, str | list[str]]
    confidence: float
    unmapped: list[str]
    scores: dict[str, float] = field(default_factory=dict)

    def __iter__(self):
        return iter((self.preset, self.mapping, self.confidence, self.unmapped))


class _Index:
    """Fast lookups over an armature's bone names."""

    def __init__(self, names, parents=None):
        self.names = list(names)
        self.exact = set(self.names)
        self.by_key: dict[str, str] = {}
        for n in self.names:
            self.by_key.setdefault(name_key(n), n)
        # Rigify-style DEF-/ORG-/MCH- copies (a rig exported with its deform bones only)
        self.by_stripped: dict[str, str] = {}
        rank = {"def": 0, "org": 1, "mch": 2}
        for n in sorted(self.names, key=lambda n: rank.get((words(n) or [""])[0], -1)):
            w = words(n)
            if w and w[0] in rank:
                self.by_stripped.setdefault("".join(w[1:]), n)
        self.parsed = {n: split_side(n) for n in self.names}
        self.parent = {}
        if parents is not None:
            for n, p in zip(self.names, parents):
                p = int(p)
                self.parent[n] = self.names[p] if p >= 0 else None

    def find(self, name: str) -> str | None:
        if name in self.exact:
            return name
        return self.by_key.get(name_key(name))

    def find_prefixed(self, name: str) -> str | None:
        """``thigh.L`` -> ``DEF-thigh.L`` (else ``ORG-``/``MCH-``) when only those exist."""
        return self.by_stripped.get(name_key(name))

    def depth(self, name: str) -> int:
        d = 0
        while self.parent.get(name):
            name = self.parent[name]
            d += 1
        return d

    def ancestors(self, name: str) -> list[str]:
        out = []
        while self.parent.get(name):
            name = self.parent[name]
            out.append(name)
        return out

    def alias_candidates(self, joint: str, patterns: list[str], used: set[str]) -> list[str]:
        side = joint[0] if joint[:2] in ("L_", "R_") else None
        regexes = [re.compile(p, re.IGNORECASE) for p in patterns]
        found = []
        for n in self.names:
            if n in used:
                continue
            b_side, base, tokens = self.parsed[n]
            if b_side != side or not base:
                continue
            if any(r.fullmatch(base) for r in regexes):
                found.append(n)
        penalty = lambda n: (sum(t in _PENALTY for t in self.parsed[n][2]),  # noqa: E731
                             self.depth(n) if self.parent else 0, len(n))
        return sorted(found, key=penalty)


def _joint_patterns(aliases: dict[str, list[str]], joint: str) -> list[str]:
    pats = list(aliases.get(joint, []))
    if joint[:2] in ("L_", "R_"):
        pats += aliases.get(joint[2:], [])
    return pats


def _score(found: dict[str, float], joints) -> float:
    total = sum(_WEIGHT[j] for j in joints)
    return sum(_WEIGHT[j] * found.get(j, 0.0) for j in joints) / total if total else 0.0


def match_preset(preset: RigPreset, bone_names, parents=None) -> Detection:
    """Map a preset onto an armature's bones (exact, normalised, alternative, alias)."""
    index = bone_names if isinstance(bone_names, _Index) else _Index(bone_names, parents)
    mapping: dict[str, str | list[str]] = {}
    quality: dict[str, float] = {}
    used: set[str] = set()
    for joint, targets in preset.bones.items():
        got = [b for b in (index.find(t) for t in targets) if b and b not in used]
        q = len(got) / len(targets)
        if not got:
            got = [b for b in (index.find(t) for t in preset.alternatives.get(joint, [])) if b and b not in used][:1]
            q = 1.0 if got else 0.0
        if not got:
            got = [b for b in (index.find_prefixed(t) for t in targets) if b and b not in used]
            q = 0.9 * len(got) / len(targets)
        if not got:
            cands = index.alias_candidates(joint, _joint_patterns(preset.aliases, joint), used)
            got, q = cands[:1], 0.75 if cands else 0.0
        if got:
            mapping[joint] = got[0] if len(got) == 1 else got
            quality[joint] = q
            used.update(got)
    confidence = _score(quality, preset.bones)
    # a preset that only matches a few joints of a full body is not that rig
    confidence *= min(1.0, _score({j: 1.0 for j in preset.bones}, SMPL_NAMES) / 0.75)
    return Detection(preset.name, _ordered(mapping), round(float(confidence), 4), _unmapped(mapping))


# Generic aliases (side-less bases for sided joints) for rigs no preset knows.
GENERIC_ALIASES = {
    "pelvis": ["hips?", "pelvis", "cog", "centerofgravity", "torso"],
    "neck": ["neck0?1?", "lowerneck", "necklower"],
    "head": ["head", "upperneck"],
    "collar": ["clavicle", "collar", "shoulder", "clav"],
    "shoulder": ["upperarm", "uparm", "arm", "shldr", "humerus", "arm0?1"],
    "elbow": ["forearm", "lowerarm", "lowarm", "elbow", "arm0?2"],
    "wrist": ["hand", "wrist"],
    "hand": ["handend", "palm"],
    "hip": ["thigh", "upleg", "upperleg", "femur", "hip", "leg0?1"],
    "knee": ["shin", "calf", "lowerleg", "lowleg", "knee", "leg", "leg0?2"],
    "ankle": ["foot", "ankle"],
    "foot": [r"toes?\d*", "toebase", "ball"],
}


def match_generic(bone_names, parents=None, presets: dict[str, RigPreset] | None = None) -> Detection:
    """An alias-based map for unknown rigs; spine bones are assigned by structure
    (the chain between the pelvis and the neck) when parents are known."""
    index = bone_names if isinstance(bone_names, _Index) else _Index(bone_names, parents)
    aliases = {k: list(v) for k, v in GENERIC_ALIASES.items()}
    for preset in (presets or {}).values():
        for joint, pats in preset.aliases.items():
            if joint.startswith(("spine", "L_", "R_")) or joint in aliases:
                continue
            aliases.setdefault(joint, []).extend(pats)
    mapping: dict[str, str | list[str]] = {}
    used: set[str] = set()
    order = ["pelvis", "head", "neck", "L_wrist", "R_wrist", "L_elbow", "R_elbow", "L_shoulder",
             "R_shoulder", "L_collar", "R_collar", "L_hip", "R_hip", "L_knee", "R_knee", "L_ankle",
             "R_ankle", "L_foot", "R_foot", "L_hand", "R_hand"]
    for joint in order:
        cands = index.alias_candidates(joint, _joint_patterns(aliases, joint), used)
        if index.parent:
            cands = [c for c in cands if _consistent(index, mapping, joint, c)]
        if cands:
            mapping[joint] = cands[0]
            used.add(cands[0])
    if index.parent and "pelvis" in mapping:
        top = mapping.get("neck") or mapping.get("head")
        if top:
            chain = index.ancestors(top)
            if mapping["pelvis"] in chain:
                spine = [b for b in reversed(chain[:chain.index(mapping["pelvis"])]) if b not in used]
                for joint, group in zip(("spine1", "spine2", "spine3"), _split3(spine)):
                    if group:
                        mapping[joint] = group[0] if len(group) == 1 else group
    quality = {j: 1.0 for j in mapping}
    confidence = 0.85 * _score(quality, SMPL_NAMES)
    return Detection(CUSTOM, _ordered(mapping), round(float(confidence), 4), _unmapped(mapping))


def _consistent(index: _Index, mapping, joint: str, bone: str) -> bool:
    """A limb bone must descend from its mapped SMPL ancestors and be above its mapped children."""
    anc = set(index.ancestors(bone))
    j = SMPL_NAMES.index(joint)
    p = SMPL_PARENTS[j]
    while p >= 0:
        other = mapping.get(SMPL_NAMES[p])
        if other is not None:
            first = other if isinstance(other, str) else other[0]
            if first not in anc:
                return False
            break
        p = SMPL_PARENTS[p]
    for child, value in mapping.items():
        c = SMPL_NAMES.index(child)
        q = SMPL_PARENTS[c]
        while q >= 0 and q != j:
            q = SMPL_PARENTS[q]
        if q == j:
            first = value if isinstance(value, str) else value[0]
            if bone not in index.ancestors(first):
                return False
    return True


def _split3(chain: list[str]) -> list[list[str]]:
    """Spread a spine chain over spine1..spine3 (UE5's five bones: 2, 1, 2)."""
    n = len(chain)
    if n == 0:
        return [[], [], []]
    if n == 1:
        return [chain, [], []]
    if n == 2:
        return [chain[:1], [], chain[1:]]
    a = (n + 1) // 3 if n % 3 != 1 else n // 3
    c = a
    b = n - a - c
    return [chain[:a], chain[a:a + b], chain[a + b:]]


def _ordered(mapping: dict) -> dict:
    return {j: mapping[j] for j in SMPL_NAMES if j in mapping}


def _unmapped(mapping: dict) -> list[str]:
    return [j for j in SMPL_NAMES if j not in mapping]


def detect(bone_names, parents=None, presets: dict[str, RigPreset] | None = None) -> Detection:
    """Best bone map for an armature: ``(preset_name, mapping, confidence, unmapped)``.

    Every preset is scored; a generic alias-based map ("custom") competes too.
    ``confidence`` is 0..1 (1: every bone of the preset found by name). Never
    raises for unknown rigs: check with :func:`require_mapping`.
    """
    presets = load_presets() if presets is None else presets
    index = _Index(bone_names, parents)
    results = [match_preset(p, index) for p in presets.values()]
    results.append(match_generic(index, presets=presets))
    best = max(results, key=lambda d: (d.confidence, d.preset != CUSTOM, len(d.mapping)))
    if best.confidence <= 0.0:
        best = results[-1]  # nothing recognised: report the generic attempt
    best.scores = {d.preset: d.confidence for d in results}
    return best


def require_mapping(mapping: dict, bone_names=None, presets=None) -> None:
    """Raise a ChoreoError unless the map can drive a body (pelvis, thighs, shins)."""
    unmapped = _unmapped(mapping)
    names = ", ".join(sorted((presets or load_presets()).keys()))
    if len(mapping) == 0:
        raise ChoreoError(
            "no bone of this armature could be recognised as part of a body; unmapped SMPL joints: "
            f"{', '.join(unmapped)}. Pick a rig preset ({names}) or assign a custom bone map")
    missing = [j for j in REQUIRED if j not in mapping]
    if missing:
        raise ChoreoError(
            f"the bone map lacks required joints {', '.join(missing)} (the hips and both thighs and "
            f"shins are needed); unmapped SMPL joints: {', '.join(unmapped)}. Pick a rig preset "
            f"({names}) or assign these bones in a custom bone map")
    if bone_names is not None:
        known = set(bone_names)
        absent = [b for v in mapping.values() for b in ([v] if isinstance(v, str) else v) if b not in known]
        if absent:
            raise ChoreoError(f"the bone map names bones this armature does not have: {', '.join(absent[:8])}")


# --------------------------------------------------------------------------- custom maps

def mapping_to_json(mapping: dict, preset: str | None = None) -> str:
    """Serialise a bone map (the Blender side stores it in a custom property)."""
    clean = _clean_mapping(mapping, "bone map")
    data = {"format": MAPPING_FORMAT, "version": 1, "preset": preset,
            "mapping": {j: (v[0] if len(v) == 1 else v) for j, v in _ordered(clean).items()}}
    return json.dumps(data, indent=1)


def mapping_from_json(text: str) -> dict[str, str | list[str]]:
    """Parse :func:`mapping_to_json` output (or a bare {joint: bone} object)."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ChoreoError(f"the bone map is not valid JSON ({exc})") from exc
    if isinstance(data, dict) and data.get("format") == MAPPING_FORMAT:
        data = data.get("mapping") or {}
    clean = _clean_mapping(data, "bone map")
    return {j: (v[0] if len(v) == 1 else v) for j, v in _ordered(clean).items()}


def save_custom_mapping(path, mapping: dict, preset: str | None = None) -> None:
    Path(path).write_text(mapping_to_json(mapping, preset), encoding="utf-8")


def load_custom_mapping(path) -> dict[str, str | list[str]]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ChoreoError(f"{path}: cannot read bone map ({exc})") from exc
    return mapping_from_json(text)
