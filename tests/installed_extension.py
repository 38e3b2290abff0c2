"""Install an extension zip into real bpy and generate through the installed copy.

    BLENDER_USER_RESOURCES=DIR python tests/installed_extension.py ZIP --report OUT.json
        [--generate --song SONG --work DIR [--model M.safetensors] [--strip-blend F.blend]]
        [--other-python PYTHON]

Run by tests/test_package.py in a fresh process per Blender version (the
variable must be set before bpy is imported), with the interpreter of a
Blender-only environment: no torch, no librosa, no repository on the path.
It installs ZIP with ``extensions.package_install_files`` into the
``user_default`` repository under DIR, enables it, and with ``--generate``
keys a dance for SONG onto a Rigify rig through the installed extension's
headless entry point (``batch``). It also asks the installed add-on which
Python and PYTHONPATH it gives the engine process, and where that finds torch
and librosa. It writes what it saw to OUT.json; the test makes the assertions. ``--strip-blend``: a .blend holding the sound strip,
for bpy wheels built without Audaspace (4.2), which cannot make one.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import bpy

RIG_BUILDERS = Path(__file__).resolve().parent / "rig_builders.py"
PACKAGE = "bl_ext.user_default.choreo"
STRIP_FRAMES = (1, 240)  # 8 s of the song at 30 fps
_WHERE = ("import json, torch, librosa, numpy, scipy, numba; "
          "print(json.dumps({m.__name__: m.__file__ for m in (torch, librosa, numpy, scipy, numba)}))")


def install(archive: str) -> dict:
    started = time.perf_counter()
    result = bpy.ops.extensions.package_install_files(filepath=archive, repo="user_default",
                                                     enable_on_install=True)
    seconds = time.perf_counter() - started
    folder = Path(bpy.utils.user_resource("EXTENSIONS", path="user_default")) / "choreo"
    return {"result": sorted(result), "seconds": round(seconds, 1), "folder": str(folder),
            "enabled": PACKAGE in bpy.context.preferences.addons,
            "registered": hasattr(bpy.types.Scene, "choreo") and hasattr(bpy.ops.choreo, "generate"),
            "listing": sorted(p.name for p in folder.iterdir()) if folder.is_dir() else [],
            "vendor_on_blender_path": [p for p in sys.path if "vendor" in Path(p).parts],
            "blender_imported": sorted(m for m in ("torch", "librosa", "numba", "scipy") if m in sys.modules)}


def _rig_builders():
    spec = importlib.util.spec_from_file_location("rig_builders", RIG_BUILDERS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_scene(song: str, strip_blend: str, path: Path) -> None:
    """Sound strip (the song from frame 1) + a Rigify rig, saved to ``path``."""
    demo = importlib.import_module(PACKAGE + ".demo")
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 30, 1.0
    try:
        demo.add_sound_strip(scene, Path(song))
    except RuntimeError:  # no Audaspace in this bpy: the strip comes from a newer Blender's file
        if not strip_blend:
            raise
        bpy.ops.wm.open_mainfile(filepath=strip_blend)
        scene = bpy.context.scene
    _rig_builders().build_rigify_rig("rig")
    bpy.ops.wm.save_as_mainfile(filepath=str(path))


def generate(args, folder: Path) -> dict:
    batch = importlib.import_module(PACKAGE + ".batch")
    work = Path(args.work).resolve()
    scene_file = work / "scene.blend"
    build_scene(args.song, args.strip_blend, scene_file)
    argv = ["--blend", str(scene_file), "--armature", "rig", "--strip", "Music", "--seed", "3",
            "--frames", *map(str, STRIP_FRAMES), "--cache", str(work / "cache"), "--out", str(work / "out.blend"),
            "--device", "cpu"]
    if args.model:
        argv += ["--model", args.model]
    started = time.perf_counter()
    summary = batch.run(batch.parse_args(argv))
    seconds = time.perf_counter() - started
    rig = bpy.data.objects["rig"]
    action = bpy.data.actions[summary["actions"][0]]
    compat = importlib.import_module(PACKAGE + ".compat")
    paths = {fc.data_path.split('"')[1] for fc in compat.iter_action_fcurves(action) if '"' in fc.data_path}
    vendor = folder / "vendor"
    return {"seconds": round(seconds, 1), "summary": summary,
            "action_on_rig": bool(rig.animation_data and (rig.animation_data.action == action or any(
                s.action == action for t in rig.animation_data.nla_tracks for s in t.strips))),
            "keyed_bones": sorted(paths & set(rig.pose.bones.keys())),
            # The engine process compiled what it imported from vendor/ (the zip has no bytecode):
            "compiled_in_vendor": sorted(p.parent.parent.name for p in vendor.glob("*/__pycache__/__init__.*.pyc")),
            "blender_imported": sorted(m for m in ("torch", "librosa", "numba", "scipy") if m in sys.modules)}


def _modules(python: str, env: dict[str, str]) -> dict | str:
    child = subprocess.run([python, "-c", _WHERE], env=env, capture_output=True, text=True, timeout=600)
    return json.loads(child.stdout) if child.returncode == 0 else child.stderr[-2000:]


def engine_child(other_python: str) -> dict:
    """The interpreter and environment the installed add-on gives the engine process,
    where that process finds its modules, and the same for ``other_python`` set as
    the preferences' Engine Python (as a CUDA environment would be)."""
    engine_process = importlib.import_module(PACKAGE + ".engine_process")
    env = engine_process.child_env()
    bare = subprocess.run([sys.executable, "-c", "import torch"], capture_output=True, text=True, timeout=600,
                          env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    report = {"engine_python": engine_process.find_python("", env), "blender_python": sys.executable,
              "pythonpath": env["PYTHONPATH"].split(os.pathsep), "modules": _modules(sys.executable, env),
              "bare_python_has_torch": bare.returncode == 0}
    if other_python:
        other_env = engine_process.env_for(other_python, env)
        report["other"] = {"found": engine_process.find_python(other_python, env),
                           "pythonpath": other_env["PYTHONPATH"].split(os.pathsep),
                           "modules": _modules(other_python, other_env)}
    return report


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("zip")
    p.add_argument("--report", required=True)
    p.add_argument("--generate", action="store_true")
    p.add_argument("--song", default="")
    p.add_argument("--work", default="")
    p.add_argument("--model", default="")
    p.add_argument("--strip-blend", default="")
    p.add_argument("--other-python", default="", help="a Python with its own torch, set as the Engine Python")
    args = p.parse_args()
    report: dict = {"blender": bpy.app.version_string,
                    "user_extensions": bpy.utils.user_resource("EXTENSIONS")}
    report["install"] = install(os.path.abspath(args.zip))
    if report["install"]["enabled"]:
        if args.generate:  # first: what the engine process compiles in vendor/ is its own doing
            report["generate"] = generate(args, Path(report["install"]["folder"]))
        report["engine_child"] = engine_child(args.other_python)
    Path(args.report).write_text(json.dumps(report, indent=1, default=str))
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # bpy can hang on interpreter shutdown (tests/rig_builders.py)
