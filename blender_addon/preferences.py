"""Add-on preferences: which Python runs the engine, on which device, with which model.

:func:`get_prefs` falls back to the defaults when the add-on is not enabled
through Blender's preferences (tests, ``python -m blender_addon.batch``).
"""

from __future__ import annotations

import os
import tempfile
from types import SimpleNamespace

import bpy

PACKAGE = __package__ or "blender_addon"

DEVICES = [
    ("auto", "Auto", "CUDA when the engine Python has it, else the CPU"),
    ("cpu", "CPU", "Always generate on the CPU"),
    ("cuda", "CUDA", "Generate on an NVIDIA GPU (needs an engine Python with CUDA torch)"),
]

DEFAULTS = dict(engine_python="", device="auto", model_path="", cache_dir="", keep_warm=True)


class ChoreoPreferences(bpy.types.AddonPreferences):
    bl_idname = PACKAGE

    engine_python: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Engine Python", subtype="FILE_PATH", default="",
        description="Python that runs the engine; empty uses the engine bundled with the extension. "
                    "Point it at a Python with CUDA torch for GPU generation")
    device: bpy.props.EnumProperty(name="Device", items=DEVICES, default="auto")  # type: ignore[valid-type]
    model_path: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Model", subtype="FILE_PATH", default="",
        description="Model file (.safetensors); empty uses the shipped model")
    cache_dir: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Cache Folder", subtype="DIR_PATH", default="",
        description="Where generated curves and reports are kept; empty uses the extension's user folder")
    keep_warm: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="Keep Engine Warm", default=True,
        description="Keep the engine process running between generations (faster after the first)")

    def draw(self, context):
        layout = self.layout
        layout.prop(self, "engine_python")
        layout.prop(self, "device")
        layout.prop(self, "model_path")
        layout.prop(self, "cache_dir")
        layout.label(text=f"Default cache: {default_cache_dir()}")
        layout.prop(self, "keep_warm")


def get_prefs(context=None):
    """The add-on's preferences, or the defaults when it is not enabled as an add-on."""
    context = context or bpy.context
    addon = context.preferences.addons.get(PACKAGE) if context and context.preferences else None
    prefs = getattr(addon, "preferences", None) if addon else None
    return prefs if prefs is not None else SimpleNamespace(**DEFAULTS)


def default_cache_dir() -> str:
    """The extension's user folder (``extension_path_user``), or a temp folder
    when the add-on is not installed as an extension."""
    try:
        return bpy.utils.extension_path_user(PACKAGE, path="cache", create=True)
    except (ValueError, OSError, AttributeError):
        return os.path.join(tempfile.gettempdir(), "choreo-cache")


def cache_dir(prefs=None) -> str:
    prefs = prefs or get_prefs()
    folder = bpy.path.abspath(prefs.cache_dir) if prefs.cache_dir else default_cache_dir()
    os.makedirs(folder, exist_ok=True)
    return folder


CLASSES = (ChoreoPreferences,)
