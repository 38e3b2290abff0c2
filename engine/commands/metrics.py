"""``python -m engine metrics MOTION [--audio AUDIO] --json``: standard dance metrics."""

from __future__ import annotations

import json

HELP = "score a motion file (.npz, .bvh, AIST++ .pkl) with PFC, foot skate and, with audio, BAS"


def add_arguments(parser) -> None:
    parser.add_argument("motion", help="motion file: Choreo .npz, .bvh(.gz) or AIST++ .pkl")
    parser.add_argument("--audio", help="music file to score beat alignment (BAS) against")
    parser.add_argument("--fps", type=float, help="override the motion file's frame rate")
    parser.add_argument("--json", action="store_true", help="print JSON")


def run(args) -> int:
    from engine.metrics import summary
    from engine.motion import load_motion

    motion = load_motion(args.motion, fps=args.fps)
    beats = None
    if args.audio:
        from engine.audio import analyze

        beats = analyze(args.audio).beats
    result = {k: _plain(v) for k, v in summary(motion.positions, motion.fps, beats).items()}
    result["frames"] = motion.frames
    result["duration"] = motion.duration
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            print(f"{key:>22}: {value}")
    return 0


def _plain(value):
    """JSON-safe numbers: NaN becomes null."""
    value = float(value) if hasattr(value, "__float__") else value
    return None if isinstance(value, float) and value != value else value
