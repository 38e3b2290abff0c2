"""Choreo: music-driven dance generation keyed onto your own rig.

An extension (blender_manifest.toml, no bl_info): ``register()`` adds the
settings, the operators, the sidebar panel and the preferences;
``unregister()`` removes all of it and ends the warm engine process.
"""

from __future__ import annotations

import bpy


def _modules():
    from . import operators, panel, preferences, properties

    return properties, operators, panel, preferences


@bpy.app.handlers.persistent
def _reset_job(*_args) -> None:
    """A file saved mid-generation must not load as 'running'."""
    for wm in bpy.data.window_managers:
        job = getattr(wm, "choreo_job", None)
        if job is not None and job.running:
            job.running, job.cancel_requested, job.progress, job.message = False, False, 0.0, ""


def register() -> None:
    properties, operators, panel, preferences = _modules()
    for cls in (*properties.CLASSES, *preferences.CLASSES, *operators.CLASSES, *panel.CLASSES):
        bpy.utils.register_class(cls)
    properties.register_properties()
    if _reset_job not in bpy.app.handlers.load_post:
        bpy.app.handlers.load_post.append(_reset_job)


def unregister() -> None:
    from . import engine_process

    properties, operators, panel, preferences = _modules()
    engine_process.shutdown()
    if _reset_job in bpy.app.handlers.load_post:
        bpy.app.handlers.load_post.remove(_reset_job)
    properties.unregister_properties()
    for cls in reversed((*properties.CLASSES, *preferences.CLASSES, *operators.CLASSES, *panel.CLASSES)):
        if getattr(cls, "is_registered", True):
            bpy.utils.unregister_class(cls)
