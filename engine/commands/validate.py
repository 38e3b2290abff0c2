"""``python -m engine validate MOTION [--audio AUDIO] [--json] [--repair --out FIXED.npz]``.

Checks a motion file against physical and choreographic constraints (engine.validate)
and optionally repairs it (engine.repair). Frame numbers in the output are in the
input's own frame rate (the JSON's ``fps``).

Exit codes: 0 without error-severity violations (after the repair with --repair),
1 with errors, 2 for unusable input (a clear ``error:`` line, from ChoreoError).
"""

from __future__ import annotations

import json
from pathlib import Path

HELP = "check a motion file (.npz, .bvh, AIST++ .pkl) for physical and musical problems, and repair it"


def add_arguments(parser) -> None:
    parser.add_argument("motion", help="motion file: Choreo .npz, .bvh(.gz) or AIST++ .pkl")
    parser.add_argument("--audio", help="music file: adds beat-sync and section-structure checks")
    parser.add_argument("--fps", type=float, help="override the motion file's frame rate")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--repair", action="store_true",
                        help="fix foot skating, joint limits, pops/flips and ground penetration")
    parser.add_argument("--out", help="with --repair: write the fixed motion here (.npz)")


def _stored_positions(path: Path):
    """A Choreo .npz's stored positions, to compare with forward kinematics."""
    import numpy as np

    if path.suffix.lower() != ".npz":
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            return np.asarray(data["positions"], dtype=np.float64) if "positions" in data.files else None
    except (OSError, ValueError):
        return None  # load_motion has already reported an unreadable file


def run(args) -> int:
    from engine.errors import ChoreoError
    from engine.motion import load_motion
    from engine.validate import validate

    path = Path(args.motion)
    motion = load_motion(path, fps=args.fps)
    if motion.frames < 2:
        raise ChoreoError(f"{path}: the motion has {motion.frames} frame(s); nothing to validate")
    if args.out and not args.repair:
        raise ChoreoError("--out needs --repair")
    if args.out and Path(args.out).suffix.lower() != ".npz":
        raise ChoreoError(f"--out {args.out}: the fixed motion is written as a Choreo .npz")
    music = None
    if args.audio:
        from engine.audio import analyze

        music = analyze(args.audio, fps=30)
    stored = _stored_positions(path)
    report = validate(motion, music, positions=stored)
    result = report.to_json()
    result["motion"] = str(path)
    final = report
    if args.repair:
        from engine.repair import repair

        fixed, before, after = repair(motion, music, before=report)
        final = after
        result = after.to_json()
        result["motion"] = str(path)
        result["before"] = {"summary": before.summary,
                            "violations": [v.to_dict() for v in before.violations]}
        result["after"] = {"summary": after.summary}
        if args.out:
            out = Path(args.out)
            try:
                out.parent.mkdir(parents=True, exist_ok=True)
                fixed.save_npz(out)
            except OSError as exc:
                raise ChoreoError(f"{out}: cannot write the fixed motion ({exc})") from exc
            result["out"] = str(out)
    if args.json:
        print(json.dumps(result, indent=2, allow_nan=False, default=_plain))
    else:
        if args.repair:
            print("before repair:")
            print(report.format_text())
            print("\nafter repair:")
        print(final.format_text())
        if args.repair and args.out:
            print(f"\nwrote {args.out}")
    return 1 if final.errors else 0


def _plain(value):
    try:
        value = float(value)
    except (TypeError, ValueError):
        return str(value)
    return None if value != value else value
