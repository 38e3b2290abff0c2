"""Headless generation for pipeline TDs.

    python -m blender_addon.batch --blend IN.blend --armature NAME [--strip NAME]
        [--style S] [--seed N] [--out OUT.blend] [--render OUT.mp4] [--json]
    blender -b --python blender_addon/batch.py -- <the same arguments>

Generates a dance for the sound strip (default: the active or first one),
keys it onto the armature as a new Action whose first key is at the strip's
first frame, saves OUT.blend and renders a Workbench preview with the
strip's audio. Deterministic for a seed. Exit codes: 0 success, 2 bad input
(missing file, armature or strip, unreadable audio), 3 engine failure, 4
render or save failure; each failure prints one ``error: ...`` line on stderr.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: blender -b --python .../batch.py -- ...
    _folder = Path(__file__).resolve().parent
    sys.path.insert(0, str(_folder.parent))
    __package__ = _folder.name  # noqa: A001  (lets the relative imports below work)
    importlib.import_module(__package__)

import bpy  # noqa: E402

from . import generation, render  # noqa: E402

BAD_INPUT, ENGINE_FAILURE, OUTPUT_FAILURE = 2, 3, 4


class BatchError(Exception):
    def __init__(self, message: str, code: int = BAD_INPUT):
        super().__init__(message)
        self.code = code


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m blender_addon.batch", description=__doc__.split("\n\n")[0])
    p.add_argument("--blend", required=True, help="the shot .blend")
    p.add_argument("--armature", required=True, help="name of the armature object to animate")
    p.add_argument("--strip", default="", help="sound strip name (default: the active or first one)")
    p.add_argument("--scene", default="", help="scene name (default: the file's active scene)")
    p.add_argument("--style", default="salsa_lead")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--variations", type=int, default=1)
    p.add_argument("--energy", type=float, default=1.0)
    p.add_argument("--frames", nargs=2, type=int, metavar=("START", "END"),
                   help="only this frame range of the strip (inclusive)")
    p.add_argument("--no-validate", dest="validate", action="store_false")
    p.add_argument("--repair", action="store_true")
    p.add_argument("--no-markers", dest="markers", action="store_false")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--model", default="", help="model file (.safetensors)")
    p.add_argument("--engine-python", default="", help="Python that runs the engine")
    p.add_argument("--cache", default="", help="cache folder for the engine's output")
    p.add_argument("--out", help="write the result here (default: nothing is saved)")
    p.add_argument("--render", help="render a Workbench preview with audio to this .mp4")
    p.add_argument("--render-frames", nargs=2, type=int, metavar=("START", "END"),
                   help="render only these frames (default: the dance's frames)")
    p.add_argument("--resolution", nargs=2, type=int, default=(480, 270), metavar=("X", "Y"))
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    return p.parse_args(argv)


def _argv() -> list[str]:
    argv = sys.argv
    if "--" in argv:
        return argv[argv.index("--") + 1:]
    return argv[1:]


def _open(path: str) -> None:
    if not os.path.isfile(path):
        raise BatchError(f"--blend {path!r} does not exist")
    try:
        bpy.ops.wm.open_mainfile(filepath=os.path.abspath(path), load_ui=False)
    except RuntimeError as exc:
        raise BatchError(f"cannot open {path!r}: {str(exc).strip().splitlines()[-1]}") from exc


def run(args: argparse.Namespace) -> dict:
    """Do the whole job; returns the JSON summary. Raises BatchError."""
    _open(args.blend)
    scene = bpy.data.scenes.get(args.scene) if args.scene else bpy.context.scene
    if scene is None:
        raise BatchError(f"no scene named {args.scene!r} in {args.blend} "
                         f"(scenes: {', '.join(s.name for s in bpy.data.scenes)})")
    obj = bpy.data.objects.get(args.armature)
    if obj is None:
        names = ", ".join(o.name for o in bpy.data.objects if o.type == "ARMATURE") or "none"
        raise BatchError(f"no object named {args.armature!r} in {args.blend} (armatures: {names})")
    if args.variations < 1:
        raise BatchError("--variations must be at least 1")
    frame_range = (args.frames[0], args.frames[1] + 1) if args.frames else None
    options = generation.Options(
        style=args.style, seed=args.seed, variations=args.variations, energy=args.energy,
        validate=args.validate, repair=args.repair, strip=args.strip, frame_range=frame_range,
        add_markers=args.markers, device=args.device, model=args.model, python=args.engine_python,
        keep_warm=False, cache_dir=args.cache)
    try:
        plan = generation.plan_generation(scene, [obj], options)
    except generation.GenerationError as exc:
        raise BatchError(str(exc)) from exc
    run_ = generation.Run(plan)

    def progress(event: dict) -> None:
        if not args.quiet and "progress" in event:
            print(f"[choreo] {event['progress'] * 100:5.1f}%  {event.get('message', '')}",
                  file=sys.stderr, flush=True)

    try:
        result = run_.wait(on_event=progress)
    except generation.GenerationError as exc:
        text = str(exc)
        code = BAD_INPUT if _is_input_error(text) else ENGINE_FAILURE
        raise BatchError(text, code) from exc
    try:
        actions = generation.apply_result(scene, plan, result)
    except generation.GenerationError as exc:
        raise BatchError(str(exc), ENGINE_FAILURE) from exc
    first_key, last_key = _key_range(actions[0])
    summary = {
        "armature": obj.name, "strip": plan.span.strip_name, "style": args.style, "seed": args.seed,
        "actions": [a.name for a in actions], "frame_start": first_key, "frame_end": last_key,
        "strip_frames": [plan.span.frame_start, plan.span.frame_end - 1],
        "fps": plan.span.fps, "audio": plan.span.path, "audio_range": [plan.span.start, plan.span.end],
        "tempo": result.get("tempo"), "report": result.get("report"), "beats": result.get("beats"),
        "findings": _findings(result), "warnings": result.get("warnings", []),
    }
    if args.out:
        out = os.path.abspath(args.out)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        try:
            bpy.ops.wm.save_as_mainfile(filepath=out, relative_remap=True)
        except RuntimeError as exc:
            raise BatchError(f"cannot save {out}: {exc}", OUTPUT_FAILURE) from exc
        summary["out"] = out
    if args.render:
        lo, hi = args.render_frames or (int(round(first_key)), int(round(last_key)))
        root = generation.curves_meta(actions[0]["choreo_curves"]).get("root_bone")
        follow = (obj, root) if root in obj.data.bones else None
        try:
            summary["render"] = render.render_movie(scene, args.render, lo, hi, resolution=tuple(args.resolution),
                                                    objects=[obj], follow=follow)
        except (RuntimeError, OSError) as exc:
            raise BatchError(f"cannot render {args.render}: {exc}", OUTPUT_FAILURE) from exc
        summary["render_frames"] = [lo, hi]
    return summary


_INPUT_WORDS = ("audio", "sound", "decode", "not found", "corrupt", "silent", "too short", "no beats", "empty")


def _is_input_error(text: str) -> bool:
    lowered = text.lower()
    return not lowered.startswith(("engine failure", "the engine stopped")) and any(
        w in lowered for w in _INPUT_WORDS)


def _key_range(action) -> tuple[float, float]:
    from . import compat

    frames = [kp.co[0] for fc in compat.iter_action_fcurves(action) for kp in (fc.keyframe_points[0], fc.keyframe_points[-1])]
    return min(frames), max(frames)


def _findings(result: dict) -> dict:
    path = result.get("report")
    if not path or not os.path.isfile(path):
        return {}
    counts: dict[str, int] = {}
    for entries in json.loads(Path(path).read_text()).get("targets", {}).values():
        for v in ((entries[0] if entries else {}).get("report") or {}).get("violations", []) or []:
            counts[v.get("kind", "other")] = counts.get(v.get("kind", "other"), 0) + 1
    return counts


class _StdoutToStderr:
    """Send everything printed (Blender's C code included) to stderr, so that with
    --json stdout holds nothing but the JSON summary."""

    def __enter__(self):
        sys.stdout.flush()
        self.saved = os.dup(1)
        os.dup2(2, 1)
        return self

    def __exit__(self, *exc):
        sys.stdout.flush()
        os.dup2(self.saved, 1)
        os.close(self.saved)
        return False


def main(argv: list[str] | None = None) -> int:
    args = parse_args(_argv() if argv is None else argv)
    try:
        with _StdoutToStderr():
            summary = run(args)
    except BatchError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return exc.code
    if args.json:
        print(json.dumps(summary, indent=1, default=str), flush=True)
    elif not args.quiet:
        print(f"[choreo] keyed {', '.join(summary['actions'])} on frames "
              f"{summary['frame_start']:g}-{summary['frame_end']:g}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code) if bpy.app.background and "--" in sys.argv else sys.exit(code)
