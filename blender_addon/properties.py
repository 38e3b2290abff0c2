"""Panel settings (saved with the scene) and job state (on the window manager, never saved).

``Scene.choreo`` holds what the artist chose and the last validation report;
``WindowManager.choreo_job`` holds the running job's progress, which is not
part of the scene, so a cancelled generation leaves the scene exactly as it was.
"""

from __future__ import annotations

import json
from pathlib import Path

import bpy

from . import compat

STYLES = [
    ("salsa_lead", "Salsa (Lead)", "Salsa, the lead's part"),
    ("salsa_follow", "Salsa (Follow)", "Salsa, the follower's part"),
    ("modern", "Modern", "Modern dance with ballet vocabulary"),
    ("pop", "Pop", "Pop-style moves"),
]

_preset_items: list[tuple[str, str, str]] = []  # kept alive: Blender does not copy enum strings


def rigs_dir() -> Path | None:
    """The rigs/ folder beside the engine (None when the engine is missing)."""
    from .engine_process import EngineError, engine_root

    try:
        folder = engine_root() / "rigs"
    except EngineError:
        return None
    return folder if folder.is_dir() else None


def rig_presets() -> list[str]:
    """Names of the rig presets shipped in rigs/ (file stems)."""
    folder = rigs_dir()
    return sorted(p.stem for p in folder.glob("*.json")) if folder else []


def _preset_enum(self, context):
    items = [("AUTO", "Auto-detect", "Detect the rig from its bone names")]
    items += [(name, _preset_label(name), f"Use the {name} bone map") for name in rig_presets()]
    _preset_items[:] = items
    return _preset_items


def _preset_label(name: str) -> str:
    folder = rigs_dir()
    try:
        data = json.loads((folder / f"{name}.json").read_text()) if folder else {}
        return str(data.get("label") or name.replace("_", " ").title())
    except (OSError, ValueError, AttributeError):
        return name.replace("_", " ").title()


def _is_armature(self, obj) -> bool:
    return obj is not None and obj.type == "ARMATURE"


def _strip_search(self, context, edit_text):
    return [s.name for s in compat.sound_strips(context.scene) if edit_text.lower() in s.name.lower()]


class ChoreoViolation(bpy.types.PropertyGroup):
    """One validator finding, in scene frames."""

    kind: bpy.props.StringProperty()  # type: ignore[valid-type]
    severity: bpy.props.StringProperty()  # type: ignore[valid-type]
    joint: bpy.props.StringProperty()  # type: ignore[valid-type]
    armature: bpy.props.StringProperty()  # type: ignore[valid-type]
    frame_start: bpy.props.IntProperty()  # type: ignore[valid-type]
    frame_end: bpy.props.IntProperty()  # type: ignore[valid-type]
    value: bpy.props.FloatProperty()  # type: ignore[valid-type]
    limit: bpy.props.FloatProperty()  # type: ignore[valid-type]
    message: bpy.props.StringProperty()  # type: ignore[valid-type]


class ChoreoReportCount(bpy.types.PropertyGroup):
    kind: bpy.props.StringProperty()  # type: ignore[valid-type]
    count: bpy.props.IntProperty()  # type: ignore[valid-type]
    errors: bpy.props.IntProperty()  # type: ignore[valid-type]


class ChoreoSettings(bpy.types.PropertyGroup):
    """What the Choreo panel generates, and its last report."""

    strip: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Sound Strip", default="", search=_strip_search,
        description="Sound strip to dance to; empty uses the active or first sound strip")
    armature: bpy.props.PointerProperty(  # type: ignore[valid-type]
        name="Armature", type=bpy.types.Object, poll=_is_armature,
        description="Armature to key the dance onto; empty uses the active object")
    use_selected: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="All Selected Armatures", default=False,
        description="Generate for every selected armature: distinct seeds on the same music timing (crowd)")
    rig_preset: bpy.props.EnumProperty(name="Rig", items=_preset_enum)  # type: ignore[valid-type]
    style: bpy.props.EnumProperty(name="Style", items=STYLES, default="salsa_lead")  # type: ignore[valid-type]
    seed: bpy.props.IntProperty(name="Seed", default=0, min=0,  # type: ignore[valid-type]
                                description="Same seed, same dance")
    variations: bpy.props.IntProperty(  # type: ignore[valid-type]
        name="Variations", default=1, min=1, max=8,
        description="Dances per armature, one NLA strip each (only the first is unmuted)")
    energy: bpy.props.FloatProperty(  # type: ignore[valid-type]
        name="Energy", default=1.0, min=0.3, max=1.5, description="Movement amplitude")
    use_strip_range: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="Whole Strip", default=True, description="Dance over the whole sound strip")
    frame_start: bpy.props.IntProperty(name="Start", default=1)  # type: ignore[valid-type]
    frame_end: bpy.props.IntProperty(name="End", default=250)  # type: ignore[valid-type]
    validate: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="Validate", default=True, description="Check the dance for physical and choreographic problems")
    repair: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="Repair", default=False, description="Fix what can be fixed without losing the sync")
    add_markers: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="Beat Markers", default=True, description="Add beat markers to the timeline when generating")
    regen_start: bpy.props.IntProperty(name="From", default=1)  # type: ignore[valid-type]
    regen_end: bpy.props.IntProperty(name="To", default=100)  # type: ignore[valid-type]
    report: bpy.props.CollectionProperty(type=ChoreoViolation)  # type: ignore[valid-type]
    report_counts: bpy.props.CollectionProperty(type=ChoreoReportCount)  # type: ignore[valid-type]
    report_index: bpy.props.IntProperty()  # type: ignore[valid-type]
    report_summary: bpy.props.StringProperty()  # type: ignore[valid-type]
    beats_file: bpy.props.StringProperty()  # type: ignore[valid-type]
    detected_rig: bpy.props.StringProperty()  # type: ignore[valid-type]


class ChoreoJob(bpy.types.PropertyGroup):
    """The running job, shown by the panel (window manager: not saved, not undone)."""

    running: bpy.props.BoolProperty()  # type: ignore[valid-type]
    progress: bpy.props.FloatProperty(min=0.0, max=1.0, subtype="FACTOR")  # type: ignore[valid-type]
    message: bpy.props.StringProperty()  # type: ignore[valid-type]
    cancel_requested: bpy.props.BoolProperty()  # type: ignore[valid-type]


CLASSES = (ChoreoViolation, ChoreoReportCount, ChoreoSettings, ChoreoJob)


def register_properties() -> None:
    setattr(bpy.types.Scene, "choreo", bpy.props.PointerProperty(type=ChoreoSettings))
    setattr(bpy.types.WindowManager, "choreo_job", bpy.props.PointerProperty(type=ChoreoJob))


def unregister_properties() -> None:
    for owner, name in ((bpy.types.Scene, "choreo"), (bpy.types.WindowManager, "choreo_job")):
        if hasattr(owner, name):
            delattr(owner, name)
