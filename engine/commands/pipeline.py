"""The engine side of the Blender add-on: one request in, curves out, progress as JSON lines.

One-shot (one request from flags or a JSON file)::

    python -m engine.commands.pipeline --audio SONG.ogg --start 12 --end 40 \\
        --rest Hero=rest.json --out-dir DIR [--style S] [--seed N] [--variations K] ...

Warm server (requests as JSON lines on stdin, one answer stream per request)::

    python -m engine.commands.pipeline --serve

Every line on stdout is one JSON object: ``{"stage", "progress" (0..1 over the
whole request), "message"}`` while working, then ``{"done": true, ...}`` or
``{"error": "..."}``. The one-shot form exits 0 after ``done`` and non-zero
after ``error``. Anything else the engine prints goes to stderr, so stdout stays
parseable. The output directory receives, per target and variation, the
retargeted curves (``<target>_v<k>.npz``, keys ``rot:<bone>``, ``loc:<bone>``,
``fps``) and the SMPL motion, plus ``report.json`` (validation) and
``beats.json`` (beats, downbeats and sections in seconds of the file).

The request (JSON)::

    {"audio": path, "start": s|null, "end": s|null, "out_dir": path,
     "mode": "generate" | "beats" | "detect", "style": str, "energy": float,
     "device": "auto"|"cpu"|"cuda", "model": path|null,
     "validate": bool, "repair": bool,
     "targets": [{"name": str, "rest": path to rest-pose JSON, "preset": str|null,
                  "seeds": [int, ...]}],
     "merge": {"previous": {target name: curves .npz}, "offset": motion frames,
               "blend": motion frames} | null}

``merge`` is Regenerate range: each new clip replaces frames ``[offset, offset
+ n)`` of the previous curves, with the seams cross-faded over ``blend`` frames
(slerp for rotations; locations are first shifted to continue the previous
motion), and the merged curves are written.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import sys
import time
import traceback
from pathlib import Path

import numpy as np

from engine.errors import ChoreoError

HELP = "the Blender add-on's engine: music to retargeted curves, with JSON progress lines"
MOTION_FPS = 30.0
DEFAULT_STYLE = "salsa_lead"
DEFAULT_BLEND_FRAMES = 12

# Stage weights: where in 0..1 each stage of one request runs.
_ANALYZE = (0.0, 0.15)
_PER_CLIP = (0.15, 0.98)
_CLIP_SPLIT = {"generate": (0.0, 0.6), "validate": (0.6, 0.75), "repair": (0.75, 0.85),
               "retarget": (0.85, 1.0)}

_model_cache: dict = {}


# --------------------------------------------------------------------------- output

class Emitter:
    """Writes protocol lines to the real stdout (never redirected)."""

    def __init__(self, stream, request_id=None):
        self.stream = stream
        self.request_id = request_id

    def line(self, payload: dict) -> None:
        if self.request_id is not None:
            payload = {"id": self.request_id, **payload}
        self.stream.write(json.dumps(payload, default=_plain) + "\n")
        self.stream.flush()

    def progress(self, stage: str, fraction: float, message: str) -> None:
        fraction = min(max(float(fraction), 0.0), 1.0)
        self.line({"stage": stage, "progress": round(fraction, 4), "message": message})


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


# --------------------------------------------------------------------------- request

def normalize_request(req: dict) -> dict:
    """Fill defaults and check types; a ChoreoError names the bad field."""
    if not isinstance(req, dict):
        raise ChoreoError("the request must be a JSON object")
    out = dict(req)
    out.setdefault("mode", "generate")
    if out["mode"] not in ("generate", "beats", "detect"):
        raise ChoreoError(f"unknown mode {out['mode']!r}: use generate, beats or detect")
    if out["mode"] != "detect" and not out.get("audio"):
        raise ChoreoError("the request has no audio file")
    out["audio"] = str(out.get("audio") or "")
    for key in ("start", "end"):
        value = out.get(key)
        out[key] = None if value is None else float(value)
        if out[key] is not None and not math.isfinite(out[key]):
            raise ChoreoError(f"{key} must be a finite time in seconds")
    if out["start"] is not None and out["start"] < 0:
        out["start"] = 0.0
    if out["start"] is not None and out["end"] is not None and out["end"] <= out["start"]:
        raise ChoreoError(f"the time range is empty ({out['start']:g} s to {out['end']:g} s)")
    if not out.get("out_dir"):
        raise ChoreoError("the request has no out_dir")
    out.setdefault("style", DEFAULT_STYLE)
    out["energy"] = float(out.get("energy", 1.0))
    out.setdefault("device", "auto")
    out.setdefault("model", None)
    out["validate"] = bool(out.get("validate", True))
    out["repair"] = bool(out.get("repair", False))
    targets = out.get("targets") or []
    if out["mode"] in ("generate", "detect") and not targets:
        raise ChoreoError("the request names no target armature")
    names = set()
    for target in targets:
        if not target.get("name"):
            raise ChoreoError("a target has no name")
        if target["name"] in names:
            raise ChoreoError(f"target {target['name']!r} appears twice")
        names.add(target["name"])
        if not target.get("rest"):
            raise ChoreoError(f"target {target['name']!r} has no rest pose file")
        target["seeds"] = [int(s) for s in target.get("seeds") or [0]]
    out["targets"] = targets
    return out


def seeds_for(seed: int, n_targets: int, variations: int) -> list[list[int]]:
    """Distinct seeds: target k, variation v gets ``seed + k * variations + v``."""
    return [[seed + k * variations + v for v in range(variations)] for k in range(n_targets)]


def safe_name(name: str) -> str:
    """A file-name-safe form of a bone or object name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "target"


# --------------------------------------------------------------------------- engine calls

def _load_model(path, device):
    from engine.checkpoint import DEFAULT_MODEL, load_model

    resolved = Path(path) if path else DEFAULT_MODEL
    try:
        stamp = resolved.stat().st_mtime_ns
    except OSError:
        stamp = None
    key = (str(resolved), device, stamp)
    if key not in _model_cache:
        _model_cache.clear()
        _model_cache[key] = load_model(str(resolved) if path else None, device)
    return _model_cache[key]


def _generate(req: dict, music, seed: int, report) -> object:
    """One clip for ``seed`` from already analysed music (model cached per process)."""
    from engine import generate as G

    if hasattr(G, "generate_from_conditioning") and hasattr(G, "pick_device"):
        if not req["energy"] > 0:
            raise ChoreoError(f"energy must be positive, got {req['energy']}")
        device = G.pick_device(req["device"])
        report(0.1, "loading the model")
        model = _load_model(req["model"], device)
        report(0.3, f"generating (seed {seed})")
        cond = G.music_conditioning(music, model, req["style"])
        return G.generate_from_conditioning(cond, req["style"], seed, model,
                                            G.amplitude_curve(music, req["energy"]), device)
    return G.generate_dance(req["audio"], style=req["style"], seed=seed, start=req["start"],
                            end=req["end"], energy=req["energy"], device=req["device"],
                            model_path=req["model"], progress=report)


def _validate(motion, music) -> dict | None:
    try:
        from engine.validate import validate
    except ImportError:
        return None
    return _report_dict(validate(motion, music))


def _repair(motion, music):
    from engine.repair import repair

    fixed, before, after = repair(motion, music_beats=music)
    return fixed, _report_dict(before), _report_dict(after)


def _report_dict(report) -> dict:
    if report is None:
        return {}
    if isinstance(report, dict):
        return report
    if hasattr(report, "to_dict"):
        return report.to_dict()
    data = report.to_json()
    return json.loads(data) if isinstance(data, str) else data


def _retarget(motion, rest: dict, preset):
    """SMPL motion -> target curves {fps, rotations, locations} through engine.retarget."""
    try:
        from engine import retarget as RT
    except ImportError as exc:
        raise ChoreoError("this engine build has no retargeting (engine.retarget is missing)") from exc
    return RT.retarget(motion, rest, preset=preset)


def _save_curves(path: Path, curves) -> None:
    try:
        from engine.retarget import save_curves
    except ImportError:
        save_curves = None
    if save_curves is not None and not isinstance(curves, dict):
        save_curves(path, curves)
        return
    write_curves(path, _curves_dict(curves))


def _curves_dict(curves) -> dict:
    if isinstance(curves, dict):
        return curves
    return {"fps": float(curves.fps), "rotations": dict(curves.rotations),
            "locations": dict(getattr(curves, "locations", None) or {})}


def read_curves(path) -> dict:
    """A curves .npz as {fps, rotations, locations} (numpy only)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            out = {"fps": float(np.asarray(data["fps"]).reshape(-1)[0]), "rotations": {}, "locations": {},
                   "meta": str(data["meta"]) if "meta" in data.files else None}
            for key in data.files:
                if key.startswith("rot:"):
                    out["rotations"][key[4:]] = np.asarray(data[key], dtype=np.float64)
                elif key.startswith("loc:"):
                    out["locations"][key[4:]] = np.asarray(data[key], dtype=np.float64)
    except (OSError, KeyError, ValueError) as exc:
        raise ChoreoError(f"cannot read the previous curves {path}: {exc}") from exc
    return out


def write_curves(path, curves: dict) -> None:
    arrays = {"fps": np.float64(curves["fps"])}
    arrays.update({f"rot:{k}": np.asarray(v, np.float64) for k, v in curves["rotations"].items()})
    arrays.update({f"loc:{k}": np.asarray(v, np.float64) for k, v in curves["locations"].items()})
    if curves.get("meta"):
        arrays["meta"] = np.array(curves["meta"])
    np.savez(path, **arrays)


# --------------------------------------------------------------------------- merging (Regenerate range)

def merge_curves(previous: dict, new: dict, offset: int, blend: int = DEFAULT_BLEND_FRAMES) -> dict:
    """Put ``new`` over ``previous`` at frame ``offset``, keeping everything outside.

    Inside the range the weight of the new clip ramps 0 -> 1 over ``blend``
    frames at each seam that has previous motion on its far side. New locations
    are shifted (linearly from the start seam's offset to the end seam's) so
    that they continue the previous trajectory instead of jumping.
    """
    from engine.rotations import quat_slerp

    n_prev = next(iter([*previous["rotations"].values(), *previous["locations"].values()]), np.zeros(0)).shape[0]
    n_new = next(iter([*new["rotations"].values(), *new["locations"].values()]), np.zeros(0)).shape[0]
    if abs(previous["fps"] - new["fps"]) > 1e-6:
        raise ChoreoError("the previous generation has another frame rate; generate the whole strip again")
    if offset < 0 or offset >= n_prev:
        raise ChoreoError("the range to regenerate lies outside the previous generation")
    stop = min(offset + n_new, n_prev)
    n = stop - offset
    if n < 2:
        raise ChoreoError("the range to regenerate is shorter than two frames")
    w = np.ones(n)
    ramp = min(blend, n // 2)
    if ramp > 0:
        up = (np.arange(1, ramp + 1) / (ramp + 1)) ** 1
        up = 0.5 - 0.5 * np.cos(np.pi * up)
        if offset > 0:
            w[:ramp] = up
        if stop < n_prev:
            w[-ramp:] = np.minimum(w[-ramp:], up[::-1])
    merged = {"fps": previous["fps"], "rotations": {}, "locations": {}, "meta": previous.get("meta")}
    for name, q_prev in previous["rotations"].items():
        q = np.array(q_prev, dtype=np.float64)
        if name in new["rotations"]:
            q[offset:stop] = quat_slerp(q_prev[offset:stop], new["rotations"][name][:n], w)
        merged["rotations"][name] = q
    for name, x_prev in previous["locations"].items():
        x = np.array(x_prev, dtype=np.float64)
        if name in new["locations"]:
            seg = np.array(new["locations"][name][:n], dtype=np.float64)
            d0 = x_prev[offset] - seg[0] if offset > 0 else np.zeros(3)
            d1 = x_prev[stop - 1] - seg[-1] if stop < n_prev else d0
            if offset == 0:
                d0 = d1
            t = np.linspace(0.0, 1.0, n)[:, None]
            seg = seg + (1 - t) * d0 + t * d1
            x[offset:stop] = (1 - w[:, None]) * x_prev[offset:stop] + w[:, None] * seg
        merged["locations"][name] = x
    return merged


# --------------------------------------------------------------------------- the request

def _counts(report: dict) -> dict:
    counts: dict[str, int] = {}
    for violation in report.get("violations", []) or []:
        kind = str(violation.get("kind", "other"))
        counts[kind] = counts.get(kind, 0) + 1
    return counts


def detect_rigs(req: dict, emit: Emitter) -> dict:
    """Which rig preset each target's bone names match (engine.rigs.detect)."""
    from engine.rigs import detect

    found = []
    for target in req["targets"]:
        rest = json.loads(Path(target["rest"]).read_text())
        emit.progress("detect", 0.5, f"detecting the rig of {target['name']}")
        d = detect(rest["names"], rest.get("parents"))
        found.append({"name": target["name"], "preset": d.preset, "confidence": round(float(d.confidence), 3),
                      "unmapped": list(d.unmapped)})
    return {"targets": found}


def run_request(req: dict, emit: Emitter) -> dict:
    """Do one request; returns the ``done`` payload (without ``done``)."""
    req = normalize_request(req)
    if req["mode"] == "detect":
        return detect_rigs(req, emit)
    out_dir = Path(req["out_dir"])
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    emit.progress("analyze", _ANALYZE[0], "analysing the music")
    from engine.audio import analyze

    music = analyze(req["audio"], fps=MOTION_FPS, start=req["start"], end=req["end"])
    beats = music.summary() if hasattr(music, "summary") else {
        "start": music.start, "duration": music.duration, "fps": music.fps, "tempo": music.tempo,
        "beats": np.asarray(music.beats).tolist(), "downbeats": np.asarray(music.downbeats).tolist(),
        "sections": music.sections}
    beats_path = out_dir / "beats.json"
    beats_path.write_text(json.dumps(beats, default=_plain, indent=1))
    emit.progress("analyze", _ANALYZE[1], f"{len(music.beats)} beats at {music.tempo:.0f} BPM")
    result = {"beats": str(beats_path), "tempo": float(music.tempo), "start": float(music.start),
              "duration": float(music.duration), "fps": MOTION_FPS,
              "warnings": list(getattr(music, "warnings", []) or []), "targets": []}
    if req["mode"] == "beats":
        result["seconds"] = round(time.perf_counter() - started, 3)
        return result

    merge = req.get("merge") or None
    clips = [(t, s) for t in req["targets"] for s in t["seeds"]]
    report_all: dict = {"fps": MOTION_FPS, "start": float(music.start), "targets": {}}
    for index, (target, seed) in enumerate(clips):
        lo, hi = _PER_CLIP
        span = (hi - lo) / len(clips)
        base = lo + index * span
        label = f"{target['name']}, seed {seed}" + (f" ({index + 1}/{len(clips)})" if len(clips) > 1 else "")

        def at(stage, fraction, message, _base=base, _span=span):
            a, b = _CLIP_SPLIT[stage]
            emit.progress(stage, _base + _span * (a + (b - a) * fraction), message)

        at("generate", 0.0, f"generating {label}")
        motion = _generate(req, music, seed, lambda f, m: at("generate", f, f"{m} — {label}"))
        entry: dict = {"seed": seed, "frames": int(motion.frames)}
        if req["validate"] or req["repair"]:
            at("validate", 0.0, f"validating {label}")
            report = _validate(motion, music)
            if report is not None:
                entry["report"] = report
                entry["counts"] = _counts(report)
        if req["repair"]:
            at("repair", 0.0, f"repairing {label}")
            try:
                motion, before, after = _repair(motion, music)
            except ImportError:
                entry["repair"] = "not available in this engine build"
            else:
                entry["report_before"], entry["report"] = before, after
                entry["counts"] = _counts(after)
        at("retarget", 0.0, f"retargeting {label}")
        rest = json.loads(Path(target["rest"]).read_text())
        curves = _retarget(motion, rest, target.get("preset") or None)
        stem = f"{safe_name(target['name'])}_v{len([c for c in clips[:index] if c[0] is target])}"
        curves_path = out_dir / f"{stem}.npz"
        if merge:
            previous = (merge.get("previous") or {}).get(target["name"])
            if not previous:
                raise ChoreoError(f"no previous generation given for {target['name']!r}")
            merged = merge_curves(read_curves(previous), _curves_dict(curves), int(merge.get("offset", 0)),
                                  int(merge.get("blend", DEFAULT_BLEND_FRAMES)))
            write_curves(curves_path, merged)
        else:
            _save_curves(curves_path, curves)
        motion_path = out_dir / f"{stem}_motion.npz"
        motion.save_npz(motion_path)
        entry.update(curves=str(curves_path), motion=str(motion_path))
        for key in ("preset", "confidence", "unmapped"):
            value = getattr(curves, key, None)
            if value is not None:
                entry[key] = value
        report_all["targets"].setdefault(target["name"], []).append(entry)
        found = [t for t in result["targets"] if t["name"] == target["name"]]
        if not found:
            found = [{"name": target["name"], "variations": []}]
            result["targets"].append(found[0])
        found[0]["variations"].append({k: v for k, v in entry.items()
                                       if k not in ("report", "report_before")})
        at("retarget", 1.0, f"finished {label}")
    report_path = out_dir / "report.json"
    report_path.write_text(json.dumps(report_all, default=_plain, indent=1))
    result["report"] = str(report_path)
    result["seconds"] = round(time.perf_counter() - started, 3)
    return result


def _answer(req: dict, stdout) -> bool:
    """Run one request, writing its lines; True on success."""
    emit = Emitter(stdout, req.get("id") if isinstance(req, dict) else None)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            result = run_request(req, emit)
    except ChoreoError as exc:
        emit.line({"error": str(exc)})
        return False
    except MemoryError:
        emit.line({"error": "the engine ran out of memory; generate a shorter range"})
        return False
    except Exception as exc:  # an engine bug: keep the traceback for the log
        traceback.print_exc(file=sys.stderr)
        emit.line({"error": f"engine failure: {type(exc).__name__}: {exc}"})
        return False
    emit.progress("done", 1.0, "done")
    emit.line({"done": True, **result})
    return True


def warm_up() -> float:
    """Import the heavy modules (torch, librosa, the model) ahead of the first request."""
    started = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):
        import engine.audio  # noqa: F401  (librosa)
        for name in ("engine.generate", "engine.retarget", "engine.validate", "engine.repair"):
            with contextlib.suppress(ImportError):
                __import__(name)
        with contextlib.suppress(Exception):
            from engine.generate import pick_device

            _load_model(None, pick_device("auto"))
    return time.perf_counter() - started


def serve(stdin, stdout) -> int:
    """Answer requests (JSON lines) until stdin closes or a ``{"shutdown": true}``."""
    seconds = warm_up()
    stdout.write(json.dumps({"ready": True, "pid": os.getpid(), "warmup_s": round(seconds, 3)}) + "\n")
    stdout.flush()
    for line in stdin:
        line = line.strip()
        if not line:
            continue
        try:
            req = json.loads(line)
        except json.JSONDecodeError as exc:
            Emitter(stdout).line({"error": f"bad request line: {exc}"})
            continue
        if isinstance(req, dict) and req.get("shutdown"):
            break
        _answer(req, stdout)
    return 0


# --------------------------------------------------------------------------- CLI

def add_arguments(parser) -> None:
    parser.add_argument("--serve", action="store_true", help="answer JSON requests on stdin until EOF")
    parser.add_argument("--request", help="a request as a JSON file (flags below override it)")
    parser.add_argument("--audio", help="the music file")
    parser.add_argument("--start", type=float, help="start of the range, seconds of the file")
    parser.add_argument("--end", type=float, help="end of the range, seconds of the file")
    parser.add_argument("--out-dir", help="where the curves, report and beats go")
    parser.add_argument("--rest", action="append", default=[], metavar="NAME=REST.json",
                        help="a target armature's exported rest pose (repeatable)")
    parser.add_argument("--preset", action="append", default=[], metavar="NAME=PRESET",
                        help="force a target's rig preset (default: auto-detect)")
    parser.add_argument("--mode", choices=["generate", "beats", "detect"])
    parser.add_argument("--style")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variations", type=int, default=1)
    parser.add_argument("--energy", type=float)
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--model", help="model file (.safetensors)")
    parser.add_argument("--no-validate", dest="validate", action="store_false", default=None)
    parser.add_argument("--repair", action="store_true", default=None)


def _pairs(items: list[str], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise ChoreoError(f"{what} must look like NAME=VALUE, got {item!r}")
        out[name] = value
    return out


def request_from_args(args) -> dict:
    req: dict = json.loads(Path(args.request).read_text()) if args.request else {}
    for key in ("audio", "start", "end", "out_dir", "mode", "style", "energy", "device", "model",
                "validate", "repair"):
        value = getattr(args, key, None)
        if value is not None:
            req[key] = value
    rests = _pairs(args.rest, "--rest")
    presets = _pairs(args.preset, "--preset")
    if rests:
        if args.variations < 1:
            raise ChoreoError("--variations must be at least 1")
        seeds = seeds_for(args.seed, len(rests), args.variations)
        req["targets"] = [{"name": name, "rest": path, "preset": presets.get(name), "seeds": seeds[k]}
                          for k, (name, path) in enumerate(rests.items())]
    return req


def run(args) -> int:
    stdout = sys.stdout
    if args.serve:
        return serve(sys.stdin, stdout)
    try:
        req = request_from_args(args)
    except (ChoreoError, OSError, json.JSONDecodeError) as exc:
        Emitter(stdout).line({"error": str(exc)})
        return 2
    return 0 if _answer(req, stdout) else 1


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m engine.commands.pipeline", description=HELP)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
