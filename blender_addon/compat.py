"""What differs between the supported Blender versions (4.2 LTS to 5.0).

Everything version-dependent that the add-on touches goes through here, so the
rest of the add-on is written once. Feature checks are by version number where
the difference is a data-model change (slotted actions) and by attribute where
it is a rename (sequences -> strips), so that a point release that back-ports a
rename still works.

Differences handled:

* Sequencer strips: ``SequenceEditor.strips_all``/``strips`` exist from 4.4;
  ``sequences_all``/``sequences`` before 4.4 (both gone in 5.0). The bpy 4.2
  wheel has no audaspace, so it cannot make sound strips (real Blender can).
* Action F-Curves:
    - 4.2/4.3: a flat list, ``action.fcurves.new(data_path, index=,
      action_group=)``; ``action.id_root`` says which ID type it animates.
    - 4.4/4.5: slotted, layered actions. The F-Curves live in a channelbag:
      ``action.layers[0].strips[0].channelbag(slot, ensure=True)``, with the
      slot made by ``action.slots.new(id_type, name)``. ``channelbag.fcurves.new``
      has no group argument: groups are made with ``channelbag.groups.new`` and
      assigned through ``fcurve.group``. (``action.fcurves`` still exists as a
      legacy proxy for the first slot; it is not used.)
    - 5.0: ``Action.fcurves``/``groups``/``id_root`` are gone;
      ``bpy_extras.anim_utils.action_ensure_channelbag_for_slot(action, slot)``
      makes the layer, strip and channelbag, and
      ``channelbag.fcurves.new(data_path, index=, group_name=)`` takes the group.
* NLA strips and AnimData carry an ``action_slot`` from 4.4.
"""

from __future__ import annotations

from typing import Iterator

import bpy

BLENDER_VERSION: tuple[int, int, int] = tuple(bpy.app.version)  # type: ignore[assignment]

#: Slotted (layered) actions: 4.4 and later.
SLOTTED_ACTIONS = BLENDER_VERSION >= (4, 4, 0)
#: The legacy flat ``Action.fcurves`` list: gone in 5.0.
LEGACY_ACTION_FCURVES = "fcurves" in bpy.types.Action.bl_rna.properties


def scene_fps(scene: bpy.types.Scene) -> float:
    """The scene's frame rate exactly as Blender computes it: ``fps / fps_base``.

    23.976 is stored as fps=24, fps_base=1.001; fps_base is a float32, so this is
    24 / 1.00100004673 = 23.9760229 rather than 24 / 1.001 = 23.9760240. It is
    deliberately not snapped to 24/1.001: Blender maps sound time to frames with
    this same value, so keys computed with it stay in sync with the audio (the
    difference is 2e-4 frames over three minutes either way).
    """
    return scene.render.fps / scene.render.fps_base


# --------------------------------------------------------------------------- strips

def all_strips(scene: bpy.types.Scene) -> Iterator[bpy.types.bpy_struct]:
    """Every strip in the scene's sequencer, including those inside meta strips."""
    editor = scene.sequence_editor
    if editor is None:
        return iter(())
    strips = getattr(editor, "strips_all", None)  # 4.4+
    if strips is None:
        strips = editor.sequences_all  # 4.2/4.3
    return iter(strips)


def editor_strips(editor: bpy.types.SequenceEditor):
    """The editor's top-level strip collection (the one with ``new_sound``):
    ``strips`` from 4.4, ``sequences`` before. (Test for the attribute, not the
    collection's truth: an empty collection is falsy.)"""
    if hasattr(editor, "strips"):
        return editor.strips
    return editor.sequences


def sound_strips(scene: bpy.types.Scene) -> list:
    """The scene's SOUND strips (meta strips' contents included)."""
    return [strip for strip in all_strips(scene) if strip.type == "SOUND"]


# --------------------------------------------------------------------------- actions

def new_action_slot(action: bpy.types.Action, obj: bpy.types.ID):
    """Make the action animate ``obj``'s ID type; returns the slot (None before 4.4).

    4.2/4.3 have no slots: the action's ``id_root`` is set instead.
    """
    if not SLOTTED_ACTIONS:
        action.id_root = obj.id_type
        return None
    return action.slots.new(id_type=obj.id_type, name=obj.name)


class ActionChannels:
    """The F-Curve container of one action (and slot), created on demand.

    ``new(data_path, index, group)`` makes an F-Curve in the named group on every
    supported version; ``fcurves`` is the underlying collection.
    """

    def __init__(self, action: bpy.types.Action, slot=None):
        self.action = action
        self.slot = slot
        self._groups: dict[str, object] = {}
        if not SLOTTED_ACTIONS:
            self.channelbag = None
            self.fcurves = action.fcurves
        elif slot is None:
            raise ValueError("Blender 4.4+ actions need a slot: use new_action_slot() first")
        else:
            self.channelbag = _ensure_channelbag(action, slot)
            self.fcurves = self.channelbag.fcurves

    def new(self, data_path: str, index: int = 0, group: str | None = None) -> bpy.types.FCurve:
        if self.channelbag is None:  # 4.2/4.3
            return self.fcurves.new(data_path, index=index, action_group=group or "")
        if group and "group_name" in _CHANNELBAG_FCURVES_NEW_PARAMS:  # 5.0
            return self.fcurves.new(data_path, index=index, group_name=group)
        fcurve = self.fcurves.new(data_path, index=index)  # 4.4/4.5
        if group:
            fcurve.group = self._group(group)
        return fcurve

    def _group(self, name: str):
        group = self._groups.get(name)
        if group is None:
            group = self.channelbag.groups.get(name) or self.channelbag.groups.new(name)
            self._groups[name] = group
        return group


_CHANNELBAG_FCURVES_NEW_PARAMS: frozenset[str] = frozenset(
    p.identifier for p in bpy.types.ActionChannelbagFCurves.bl_rna.functions["new"].parameters
) if hasattr(bpy.types, "ActionChannelbagFCurves") else frozenset()


def _ensure_channelbag(action: bpy.types.Action, slot):
    try:  # 5.0
        from bpy_extras.anim_utils import action_ensure_channelbag_for_slot
    except ImportError:  # 4.4/4.5: one layer, one keyframe strip
        layer = action.layers[0] if action.layers else action.layers.new("Layer")
        strip = layer.strips[0] if layer.strips else layer.strips.new(type="KEYFRAME")
        return strip.channelbag(slot, ensure=True)
    return action_ensure_channelbag_for_slot(action, slot)


def action_fcurves(action: bpy.types.Action, slot=None) -> ActionChannels:
    """Get or create the F-Curve container of ``action`` for ``slot`` (None before 4.4)."""
    return ActionChannels(action, slot)


def iter_action_fcurves(action: bpy.types.Action) -> list:
    """All F-Curves of an action, over all slots, layers and strips."""
    if LEGACY_ACTION_FCURVES and not SLOTTED_ACTIONS:
        return list(action.fcurves)
    fcurves = []
    for layer in action.layers:
        for strip in layer.strips:
            for bag in strip.channelbags:
                fcurves.extend(bag.fcurves)
    if not fcurves and LEGACY_ACTION_FCURVES:  # a legacy (unlayered) action on 4.4/4.5
        fcurves = list(action.fcurves)
    return fcurves


def set_strip_slot(nla_strip: bpy.types.NlaStrip, slot) -> None:
    """Point an NLA strip at the action slot that animates its owner (4.4+)."""
    if slot is not None and hasattr(nla_strip, "action_slot"):
        nla_strip.action_slot = slot
