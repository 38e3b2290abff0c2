"""One generation, from the scene to the engine and back: plan, run, apply.

* :func:`plan_generation` / :func:`plan_regeneration` check the input, find the
  sound, export each armature's rest pose and build the engine request. They
  change nothing in the file.
* :class:`Run` drives the engine process: ``step()`` (non-blocking, for the
  modal timer), ``wait()`` (blocking, headless) and ``cancel()``.
* :func:`apply_result` keys the curves (a new Action and NLA strip per
  armature and variation), the report and the beat markers. If anything fails
  half way, what it made is removed again, so the scene is as it was.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import bpy

from . import compat, engine_process, keying, markers, sound

MOTION_FPS = 30.0
BLEND_FRAMES = 12  # motion frames cross-faded at each seam of Regenerate range
KEEP_RUNS = 40  # run folders kept in the cache
_TAG_RUN = "choreo_run"


class GenerationError(Exception):
    """A problem with the input or the result; the message says what to do."""


@dataclass
class Options:
    """Everything a generation depends on besides the scene."""

    style: str = "salsa_lead"
    seed: int = 0
    variations: int = 1
    energy: float = 1.0
    validate: bool = True
    repair: bool = False
    preset: str | None = None  # None: auto-detect
    strip: str = ""  # "" : the active or first sound strip
    frame_range: tuple[float, float] | None = None  # None: the strip's range
    add_markers: bool = True
    device: str = "auto"
    model: str = ""
    python: str = ""  # "" : bundled
    keep_warm: bool = True
    cache_dir: str = ""


@dataclass
class Plan:
    scene_name: str
    span: sound.SoundSpan
    targets: list[str]
    options: Options
    out_dir: str
    request: dict
    run_id: str
    previous: dict[str, str] = field(default_factory=dict)  # object -> action replaced (regenerate)


# --------------------------------------------------------------------------- checks

def check_armature(obj) -> None:
    """Raise a GenerationError unless ``obj`` is an armature we may key."""
    if obj is None:
        raise GenerationError("No armature chosen: pick one in the Choreo panel or select it")
    if obj.type != "ARMATURE":
        raise GenerationError(f"{obj.name!r} is a {obj.type.lower()}, not an armature: "
                              "pick the character's armature")
    if obj.library is not None:
        raise GenerationError(f"{obj.name!r} is linked from another file and cannot be animated: "
                              "make a library override (Object > Library Override > Make) first")
    if obj.mode == "EDIT":
        raise GenerationError(f"{obj.name!r} is in Edit Mode: switch to Object or Pose Mode and try again")
    anim = obj.animation_data
    if anim is not None and anim.use_tweak_mode:
        raise GenerationError(f"{obj.name!r} is in NLA tweak mode: leave it (Tab in the NLA editor) first")
    if len(obj.data.bones) == 0:
        raise GenerationError(f"{obj.name!r} has no bones")


def target_objects(context, armature=None, use_selected: bool = False) -> list:
    """The armatures to generate for: all selected ones, or the chosen/active one."""
    if use_selected:
        chosen = [o for o in context.selected_objects if o.type == "ARMATURE"]
        if armature is not None and armature not in chosen:
            chosen.insert(0, armature)
        if not chosen:
            raise GenerationError("No armature is selected: select the dancers in the viewport")
        return sorted(chosen, key=lambda o: o.name)
    obj = armature or context.active_object
    return [obj]


def seeds_for(seed: int, n_targets: int, variations: int) -> list[list[int]]:
    """Distinct seeds, same rule as the engine: ``seed + k * variations + v``."""
    return [[seed + k * variations + v for v in range(variations)] for k in range(n_targets)]


# --------------------------------------------------------------------------- planning

def _json_default(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "to_list"):
        return value.to_list()
    try:
        return [list(row) if hasattr(row, "__iter__") else row for row in value]
    except TypeError:
        raise TypeError(f"cannot write {type(value).__name__} to JSON") from None


def _export_rest(obj, path: Path) -> None:
    from .errors import ChoreoUserError
    from .rest_pose import export_rest

    try:
        rest = export_rest(obj)
    except ChoreoUserError as exc:
        raise GenerationError(str(exc)) from exc
    path.write_text(json.dumps(rest, default=_json_default))


def _run_dir(options: Options) -> tuple[str, Path]:
    from . import preferences

    root = Path(options.cache_dir or preferences.default_cache_dir()) / "runs"
    root.mkdir(parents=True, exist_ok=True)
    old = sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
    for stale in old[:-KEEP_RUNS] if len(old) > KEEP_RUNS else []:
        shutil.rmtree(stale, ignore_errors=True)
    run_id = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
    folder = root / run_id
    folder.mkdir()
    return run_id, folder


def _find_strip(scene, options: Options):
    strip = sound.find_sound_strip(scene, options.strip)
    if strip is None:
        if options.strip:
            raise GenerationError(f"There is no sound strip named {options.strip!r}: "
                                  "pick one of the Sequencer's sound strips in the Choreo panel")
        raise GenerationError("There is no sound strip: add the music in the Video Sequencer "
                              "(Add > Sound) and generate again")
    return strip


def _request(span: sound.SoundSpan, options: Options, out_dir: Path, objects: list, mode="generate") -> dict:
    seeds = seeds_for(options.seed, len(objects), options.variations)
    targets = []
    for k, obj in enumerate(objects):
        rest = out_dir / f"rest_{k}.json"
        _export_rest(obj, rest)
        targets.append({"name": obj.name, "rest": str(rest), "preset": options.preset, "seeds": seeds[k]})
    return {"mode": mode, "audio": span.path, "start": span.start, "end": span.end, "out_dir": str(out_dir),
            "style": options.style, "energy": options.energy, "device": options.device,
            "model": options.model or None, "validate": options.validate, "repair": options.repair,
            "targets": targets}


def plan_generation(scene, objects: list, options: Options) -> Plan:
    """Check everything and build the request; changes nothing in the file."""
    for obj in objects:
        check_armature(obj)
    return _plan(scene, objects, options, "generate")


def plan_beats(scene, options: Options) -> Plan:
    """A request for beats only (no armature needed)."""
    return _plan(scene, [], options, "beats")


def _plan(scene, objects: list, options: Options, mode: str) -> Plan:
    strip = _find_strip(scene, options)
    run_id, out_dir = _run_dir(options)
    try:
        span = sound.sound_span(scene, strip, options.frame_range, temp_dir=str(out_dir))
    except sound.SoundError as exc:
        raise GenerationError(str(exc)) from exc
    request = _request(span, options, out_dir, objects, mode=mode)
    return Plan(scene.name, span, [o.name for o in objects], options, str(out_dir), request, run_id)


def plan_detect(scene, objects: list, options: Options) -> Plan:
    """A request that only detects each armature's rig preset (no audio)."""
    for obj in objects:
        check_armature(obj)
    run_id, out_dir = _run_dir(options)
    span = sound.SoundSpan("", "", compat.scene_fps(scene), 0.0, 0.0, 0.0, 0.0)
    request = _request(span, options, out_dir, objects, mode="detect")
    request.update(audio=None, start=None, end=None)
    return Plan(scene.name, span, [o.name for o in objects], options, str(out_dir), request, run_id)


def describe_rigs(result: dict) -> str:
    """'Dancer: smpl (100%)' for each target of a detect or generate result."""
    parts = []
    for target in result.get("targets", []):
        found = target if "preset" in target else next(iter(target.get("variations") or []), {})
        if found.get("preset"):
            confidence = found.get("confidence")
            extra = f" ({confidence:.0%})" if isinstance(confidence, (int, float)) else ""
            parts.append(f"{target['name']}: {found['preset']}{extra}")
    return ", ".join(parts)


def latest_generation(obj):
    """The action of ``obj``'s topmost unmuted Choreo strip, or None."""
    anim = obj.animation_data
    if anim is None:
        return None
    for track in reversed(list(anim.nla_tracks)):
        if track.mute:
            continue
        for strip in track.strips:
            action = strip.action
            if action is not None and action.get("choreo_curves") and not strip.mute:
                return action
    return None


def plan_regeneration(scene, objects: list, options: Options, frames: tuple[float, float]) -> Plan:
    """Regenerate ``frames`` of each armature's latest generation, keeping the rest."""
    for obj in objects:
        check_armature(obj)
    previous = {}
    for obj in objects:
        action = latest_generation(obj)
        if action is None:
            raise GenerationError(f"{obj.name!r} has no Choreo dance to edit: generate one first")
        if not os.path.isfile(action["choreo_curves"]):
            raise GenerationError(f"the data of {action.name!r} is gone from the cache: generate the whole dance again")
        previous[obj.name] = action
    first = next(iter(previous.values()))
    strip_name, frame0 = first.get("choreo_strip", ""), float(first["choreo_frame_start"])
    if any(a.get("choreo_strip", "") != strip_name or float(a["choreo_frame_start"]) != frame0
           for a in previous.values()):
        raise GenerationError("the selected armatures dance to different generations: regenerate them one at a time")
    opts = Options(**{**options.__dict__, "strip": strip_name, "frame_range": None})
    strip = _find_strip(scene, opts)
    fps = compat.scene_fps(scene)
    lo, hi = sorted(frames)
    prev_len = max(keying.load_curves(a["choreo_curves"]).frames for a in previous.values())
    prev_end = frame0 + (prev_len - 1) * fps / MOTION_FPS
    lo, hi = max(lo, frame0), min(hi, prev_end + 1)
    if hi - lo < fps:
        raise GenerationError("the range to regenerate must lie inside the dance and be at least a second long")
    offset = int(round((lo - frame0) * MOTION_FPS / fps))  # in motion frames, on the previous grid
    start = float(first["choreo_start"]) + offset / MOTION_FPS
    run_id, out_dir = _run_dir(opts)
    try:
        path, packed = sound.sound_file(strip, temp_dir=str(out_dir))
    except sound.SoundError as exc:
        raise GenerationError(str(exc)) from exc
    end = start + (hi - lo) / fps
    span = sound.SoundSpan(strip.name, path, fps, frame0, hi, start, end, packed)
    request = _request(span, opts, out_dir, objects)
    request["merge"] = {"previous": {name: a["choreo_curves"] for name, a in previous.items()},
                        "offset": offset, "blend": BLEND_FRAMES}
    span = sound.SoundSpan(strip.name, path, fps, frame0, max(hi, prev_end + 1),
                           float(first["choreo_start"]), end, packed)
    plan = Plan(scene.name, span, [o.name for o in objects], opts, str(out_dir), request, run_id)
    plan.previous = {name: a.name for name, a in previous.items()}
    return plan


# --------------------------------------------------------------------------- running

class Run:
    """The engine working on one plan."""

    def __init__(self, plan: Plan):
        self.plan = plan
        env = engine_process.child_env()
        try:
            self.python = engine_process.find_python(plan.options.python, env)
            self.job = engine_process.start_job(plan.request, self.python, env, plan.options.keep_warm)
        except engine_process.EngineError as exc:
            raise GenerationError(str(exc)) from exc

    @property
    def progress(self) -> float:
        return self.job.progress

    @property
    def message(self) -> str:
        return self.job.message

    def step(self) -> str:
        """Read what the engine said (never blocks): running, done, error or cancelled."""
        self.job.poll()
        return self.state

    @property
    def state(self) -> str:
        if self.job.cancelled:
            return "cancelled"
        if self.job.error is not None:
            return "error"
        if self.job.result is not None:
            return "done"
        return "running"

    def wait(self, on_event: Callable[[dict], None] | None = None) -> dict:
        try:
            return self.job.wait(on_event=on_event)
        except engine_process.EngineError as exc:
            raise GenerationError(str(exc)) from exc
        finally:
            self.close()

    def cancel(self) -> None:
        self.job.cancel()
        self.close()

    def close(self) -> None:
        engine_process.finish(self.job, self.plan.options.keep_warm)


# --------------------------------------------------------------------------- applying

def _tag(action, plan: Plan, seed: int, variation: int, curves: str) -> None:
    action[_TAG_RUN] = plan.run_id
    action["choreo_curves"] = curves
    action["choreo_seed"] = int(seed)
    action["choreo_variation"] = int(variation)
    action["choreo_style"] = plan.options.style
    action["choreo_strip"] = plan.span.strip_name
    action["choreo_frame_start"] = float(plan.span.frame_start)
    action["choreo_start"] = float(plan.span.start)


def curves_meta(path: str) -> dict:
    """The JSON ``meta`` the engine stores beside the curves (preset, IK/FK switches...)."""
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as data:
            return json.loads(str(data["meta"])) if "meta" in data.files else {}
    except (OSError, ValueError, KeyError):
        return {}


def _mute_tracks(obj, action, mute: bool = True) -> list:
    changed = []
    for track, _strip in keying.generation_strips(obj, action):
        if track.mute != mute:
            track.mute = mute
            changed.append(track)
    return changed


def apply_result(scene, plan: Plan, result: dict) -> list:
    """Key the engine's result; returns the new actions. All or nothing."""
    made: list = []
    muted: list = []
    try:
        for target in result.get("targets", []):
            obj = bpy.data.objects.get(target["name"])
            if obj is None or obj.type != "ARMATURE":
                raise GenerationError(f"armature {target['name']!r} was removed while generating: generate again")
            for v, var in enumerate(target["variations"]):
                name = f"Choreo {obj.name} {plan.options.style} s{var['seed']}"
                switches = curves_meta(var["curves"]).get("set_properties") or None
                switches = {b: p for b, p in (switches or {}).items() if b in obj.pose.bones} or None
                try:
                    action = keying.key_curves(obj, var["curves"], plan.span.frame_start, plan.span.fps,
                                               action_name=name, set_properties=switches)
                except keying.KeyingError as exc:
                    raise GenerationError(f"cannot key {obj.name!r}: {exc}") from exc
                made.append((obj, action))
                _tag(action, plan, var["seed"], v, var["curves"])
                if v > 0:
                    muted += _mute_tracks(obj, action)
            old = bpy.data.actions.get(plan.previous.get(obj.name, ""))
            if old is not None:
                muted += _mute_tracks(obj, old)
    except Exception:
        for track in muted:
            track.mute = False
        for obj, action in reversed(made):
            keying.remove_generation(obj, action)
        raise
    settings = getattr(scene, "choreo", None)
    if settings is not None:
        store_report(settings, plan, result)
        settings.beats_file = result.get("beats", "")
    if plan.options.add_markers and not plan.previous and result.get("beats"):
        add_markers_from(scene, plan, result["beats"])
    return [action for _obj, action in made]


def add_markers_from(scene, plan: Plan, beats_path: str) -> int:
    """Replace Choreo's beat markers with those in ``beats_path``; returns how many."""
    data = json.loads(Path(beats_path).read_text())
    start = float(data.get("start", plan.span.start))
    beats = [t - start for t in data.get("beats", [])]
    downs = [t - start for t in data.get("downbeats", [])]
    markers.remove_beat_markers(scene)
    return len(markers.add_beat_markers(scene, beats, plan.span.frame_start, plan.span.fps, downbeats=downs))


def store_report(settings, plan: Plan, result: dict) -> None:
    """The first variation's validation report per armature, in scene frames."""
    settings.report.clear()
    settings.report_counts.clear()
    path = result.get("report")
    if not path or not os.path.isfile(path):
        settings.report_summary = ""
        return
    data = json.loads(Path(path).read_text())
    counts: dict[str, list[int]] = {}
    frame0 = plan.span.frame_start
    for name, entries in data.get("targets", {}).items():
        entry = entries[0] if entries else {}
        report = entry.get("report") or {}
        fps = float(report.get("fps", data.get("fps", MOTION_FPS)) or MOTION_FPS)
        offset = (plan.request.get("merge") or {}).get("offset", 0)  # a regenerated clip's first frame
        for v in report.get("violations", []) or []:
            item = settings.report.add()
            item.kind = str(v.get("kind", ""))
            item.severity = str(v.get("severity", ""))
            item.joint = str(v.get("joint") or "")
            item.armature = name
            item.message = str(v.get("message") or "")
            item.frame_start = int(round(frame0 + (float(v.get("start", 0)) + offset) / fps * plan.span.fps))
            item.frame_end = int(round(frame0 + (float(v.get("end", v.get("start", 0))) + offset) / fps * plan.span.fps))
            for key in ("value", "limit"):
                try:
                    setattr(item, key, float(v.get(key) or 0.0))
                except (TypeError, ValueError):
                    pass
            c = counts.setdefault(item.kind, [0, 0])
            c[0] += 1
            c[1] += item.severity == "error"
    for kind, (count, errors) in sorted(counts.items()):
        row = settings.report_counts.add()
        row.kind, row.count, row.errors = kind, count, errors
    total = sum(c[0] for c in counts.values())
    settings.report_summary = "no problems found" if total == 0 else f"{total} finding(s)"
