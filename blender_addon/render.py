"""Workbench preview renders with the sound strips' audio muxed in (FFMPEG, H.264 + AAC)."""

from __future__ import annotations

import math
import os
import typing

import bpy
import mathutils

from . import compat


def _set_movie_output(scene) -> None:
    settings = scene.render.image_settings
    if hasattr(settings, "media_type"):  # 5.0: images and movies are separate media types
        settings.media_type = "VIDEO"
    settings.file_format = "FFMPEG"
    ffmpeg = scene.render.ffmpeg
    ffmpeg.format = "MPEG4"
    ffmpeg.codec = "H264"
    ffmpeg.constant_rate_factor = "MEDIUM"
    ffmpeg.audio_codec = "AAC"
    ffmpeg.audio_channels = "STEREO"
    ffmpeg.audio_bitrate = 128


def frame_camera(scene, objects: list, name: str = "Choreo Preview Camera", follow: tuple | None = None):
    """A camera looking at ``objects`` from the front (-Y), linked to the scene.

    ``follow`` = (armature, bone): the camera also moves along the floor with that
    bone (a Copy Location constraint, X and Y only), so a dancer who travels stays
    in the picture.
    """
    points = []
    for obj in objects:
        points += [obj.matrix_world @ mathutils.Vector(corner) for corner in obj.bound_box]
    if not points:
        points = [mathutils.Vector((0, 0, 0)), mathutils.Vector((0, 0, 2))]
    lo = mathutils.Vector([min(p[i] for p in points) for i in range(3)])
    hi = mathutils.Vector([max(p[i] for p in points) for i in range(3)])
    centre = (lo + hi) / 2
    height = max(hi.z - lo.z, 1.0)
    data = bpy.data.cameras.new(name)
    data.lens = 35
    cam = bpy.data.objects.new(name, data)
    scene.collection.objects.link(cam)
    distance = height * 2.2
    cam.location = (centre.x, centre.y - distance, centre.z + height * 0.15)
    direction = centre - cam.location
    cam.rotation_euler = direction.to_track_quat("-Z", "Y").to_euler()
    if follow is not None:
        armature, bone = follow
        rest = armature.matrix_world @ armature.data.bones[bone].head_local
        cam.location.x -= rest.x
        cam.location.y -= rest.y
        constraint = typing.cast(bpy.types.CopyLocationConstraint, cam.constraints.new("COPY_LOCATION"))
        constraint.target, constraint.subtarget = armature, bone
        constraint.use_z, constraint.use_offset = False, True
    scene.camera = cam
    return cam


def setup_preview(scene, filepath: str, frame_start: int, frame_end: int, resolution=(480, 270),
                  objects: list | None = None, follow: tuple | None = None) -> None:
    """Workbench, small resolution, movie output with audio; adds a camera if the scene has none."""
    render = scene.render
    render.engine = "BLENDER_WORKBENCH"
    render.resolution_x, render.resolution_y = resolution
    render.resolution_percentage = 100
    # Blender mixes the audio only through the sequencer; with nothing but sound strips
    # there, the picture still comes from the 3D scene. Other strips would replace it.
    render.use_sequencer = all(getattr(strip, "type", "") == "SOUND" for strip in compat.all_strips(scene))
    render.use_compositing = False
    shading = scene.display.shading
    shading.light = "STUDIO"
    shading.color_type = "MATERIAL"
    shading.show_shadows = True
    shading.show_cavity = False
    _set_movie_output(scene)
    render.filepath = os.path.abspath(filepath)
    scene.frame_start, scene.frame_end = int(frame_start), int(frame_end)
    if scene.camera is None:
        frame_camera(scene, objects or [o for o in scene.objects if o.type in {"ARMATURE", "MESH"}],
                     follow=follow)


def render_movie(scene, filepath: str, frame_start: int, frame_end: int, **kwargs) -> str:
    """Render ``[frame_start, frame_end]`` to ``filepath`` (.mp4) and return the written path."""
    os.makedirs(os.path.dirname(os.path.abspath(filepath)) or ".", exist_ok=True)
    setup_preview(scene, filepath, frame_start, frame_end, **kwargs)
    bpy.ops.render.render(animation=True, scene=scene.name)
    if not os.path.isfile(filepath):
        raise RuntimeError(f"the render did not write {filepath}")
    return os.path.abspath(filepath)


def render_still(scene, filepath: str, frame: int) -> str:
    """One Workbench frame as PNG (for checks), with the preview settings already applied."""
    settings = scene.render.image_settings
    saved = (getattr(settings, "media_type", None), settings.file_format, scene.render.filepath)
    if saved[0] is not None:
        settings.media_type = "IMAGE"
    settings.file_format = "PNG"
    scene.frame_set(frame)
    scene.render.filepath = os.path.abspath(filepath)
    bpy.ops.render.render(write_still=True, scene=scene.name)
    if saved[0] is not None:
        settings.media_type = saved[0]
    settings.file_format, scene.render.filepath = saved[1], saved[2]
    return os.path.abspath(filepath)


def frames_for_seconds(fps: float, seconds: float) -> int:
    return int(math.ceil(seconds * fps))
