"""``python -m engine analyze AUDIO``: tempo, beats, downbeats, sections and mood.

With ``--json`` one JSON object goes to stdout with at least ``duration``, ``tempo``
(BPM), ``beats``, ``downbeats`` (seconds), ``sections`` (``[{start, end, label}]``),
``mood`` and ``warnings``, plus ``start``, ``fps`` and ``frames``. All times are
seconds of the file timeline, also when ``--start``/``--end`` pick a range.
"""

from __future__ import annotations

import argparse
import json

HELP = "analyse a music file: tempo, beats, downbeats, sections and mood"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("audio", metavar="AUDIO", help="audio file (wav, ogg, flac, mp3)")
    parser.add_argument("--start", type=float, default=None, metavar="S", help="analyse from S seconds into the file")
    parser.add_argument("--end", type=float, default=None, metavar="S", help="analyse up to S seconds into the file")
    parser.add_argument("--fps", type=float, default=30.0, metavar="F", help="motion frame rate of the features (default 30)")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")


def run(args: argparse.Namespace) -> int:
    from engine.audio import analyze  # deferred: librosa is slow to import

    features = analyze(args.audio, fps=args.fps, start=args.start, end=args.end)
    result = features.summary()
    print(json.dumps(result) if args.json else _human(result))
    return 0


def _human(r: dict) -> str:
    lines = [
        f"duration  {r['duration']:.2f} s (from {r['start']:.2f} s, {r['frames']} frames at {r['fps']:g} fps)",
        f"tempo     {r['tempo']:.1f} BPM, {len(r['beats'])} beats, {len(r['downbeats'])} bars",
        f"mood      {r['mood']['label']} (arousal {r['mood']['arousal']:.2f}, valence {r['mood']['valence']:.2f}, "
        f"key {r['mood']['key'] or 'unknown'})",
        "sections",
    ]
    lines += [f"  {s['start']:8.2f} - {s['end']:8.2f} s  {s['label']}" for s in r["sections"]]
    lines += [f"warning: {w}" for w in r["warnings"]]
    return "\n".join(lines)
