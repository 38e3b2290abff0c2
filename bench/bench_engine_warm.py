"""Warm vs cold engine process: what reusing the add-on's engine process saves.

    PYTHONPATH=. .venv/bin/python bench/bench_engine_warm.py [--seconds 20] [--generate]

Cold: start ``python -m engine.commands.pipeline --serve``, send one request,
wait for the answer (the process pays torch's and librosa's imports, numba's
first compilations and the model load). Warm: the same request again on the
process that is already running. Both are measured here, side by side, through
the add-on's own runner (blender_addon/engine_process.py, which needs no bpy).
``--generate`` also times a full generation (music analysis, generator,
validation, retargeting onto the demo rig), which needs the shipped model and
engine.retarget.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from blender_addon import engine_process as ep  # noqa: E402

SONG = ROOT / "blender_addon" / "assets" / "Kevin_MacLeod_-_Vibe_Ace.hq.ogg"


def _timed(request: dict, python: str, env: dict, process=None) -> tuple[float, object]:
    started = time.perf_counter()
    if process is None:
        process = ep.EngineProcess(python, env)
    job = process.submit(request)
    job.wait()
    return time.perf_counter() - started, process


def measure(request: dict, repeats: int) -> tuple[float, list[float]]:
    env = ep.child_env()
    python = ep.find_python("", env)
    cold, process = _timed(request, python, env)
    warm = [_timed(request, python, env, process)[0] for _ in range(repeats)]
    process.close()
    return cold, warm


def _rest_of_demo_rig(folder: Path) -> Path:
    """The demo rig's rest pose, exported by a Blender subprocess (bpy is not imported here)."""
    import subprocess

    path = folder / "rest.json"
    code = ("import json, bpy; from blender_addon import demo, rest_pose; "
            "scene, arm = demo.build_scene(); "
            f"open({str(path)!r}, 'w').write(json.dumps(rest_pose.export_rest(arm), default=lambda v: v.tolist() if hasattr(v, 'tolist') else list(v)))")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, env=ep.child_env(), capture_output=True)
    return path


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=20.0, help="length of audio per request")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--generate", action="store_true", help="also time a whole generation")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        requests = {"beats (analysis only)": {"mode": "beats", "audio": str(SONG), "start": 0.0,
                                              "end": args.seconds, "out_dir": str(folder / "beats")}}
        if args.generate:
            rest = _rest_of_demo_rig(folder)
            requests["generate (analysis, generator, validation, retarget)"] = {
                "audio": str(SONG), "start": 0.0, "end": args.seconds, "out_dir": str(folder / "gen"),
                "targets": [{"name": "Dancer", "rest": str(rest), "seeds": [0]}]}
        results = {}
        for name, request in requests.items():
            cold, warm = measure(request, args.repeats)
            best = min(warm)
            results[name] = {"cold_s": round(cold, 3), "warm_s": [round(w, 3) for w in warm],
                             "saving_s": round(cold - statistics.median(warm), 3),
                             "cold_over_warm": round(cold / best, 1)}
            print(f"{name}: cold {cold:.2f} s, warm {statistics.median(warm):.2f} s "
                  f"(median of {len(warm)}), saving {cold - statistics.median(warm):.2f} s per request, "
                  f"cold/warm = {cold / best:.1f}x  [{args.seconds:g} s of audio]")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
