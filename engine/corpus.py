"""Training corpora: a folder of BVH files or AIST++ pkls, grouped into styles.

Styles come from a ``styles.json`` in the folder (``{"style": ["glob", ...]}``),
or else from each file's parent folder name. The shipped model's four styles
are described by ``engine/assets/shipped_styles.json`` over the shared CMU
mocap.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import ChoreoError
from engine.motion import Motion, load_motion
from engine.normalize import resample

MOTION_PATTERNS = ("*.bvh", "*.bvh.gz", "*.pkl")
SHIPPED_STYLES = Path(__file__).parent / "assets" / "shipped_styles.json"


@dataclass
class Corpus:
    styles: list[str]
    motions: list[Motion]
    style_ids: list[int]


def style_files(data_dir: Path, styles_file: Path | None = None) -> dict[str, list[Path]]:
    """Map each style to its files, sorted for determinism."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise ChoreoError(f"{data_dir}: not a folder of motion files")
    styles_file = styles_file or (data_dir / "styles.json")
    groups: dict[str, list[Path]] = {}
    if Path(styles_file).exists():
        spec = json.loads(Path(styles_file).read_text())
        for style, globs in spec.items():
            groups[style] = sorted({p for g in globs for p in data_dir.glob(g)})
    else:
        for pattern in MOTION_PATTERNS:
            for path in data_dir.rglob(pattern):
                groups.setdefault(path.parent.name, []).append(path)
        groups = {k: sorted(v) for k, v in sorted(groups.items())}
    groups = {k: v for k, v in groups.items() if v}
    if not groups:
        raise ChoreoError(f"{data_dir}: no .bvh, .bvh.gz or AIST++ .pkl files found")
    return groups


def clean_segments(motion: Motion, margin: int = 5, min_frames: int = 60) -> list[Motion]:
    """The parts of a take between the validator's error ranges (flips, pops,
    glitches in the capture), each at least ``min_frames`` long."""
    from engine.validate import validate

    bad = np.zeros(motion.frames + 1, dtype=bool)
    bad[-1] = True  # a sentinel that closes the last segment
    for v in validate(motion).violations:
        if v.severity == "error":
            bad[max(0, v.start - margin): v.end + margin + 1] = True
    edges = np.flatnonzero(np.diff(np.concatenate([[1], bad.astype(int)])))
    starts, stops = edges[::2], edges[1::2]
    return [motion.slice(a, b) for a, b in zip(starts, stops) if b - a >= min_frames]


def load_corpus(data_dir, fps: float = 30.0, styles_file=None, log=print, clean: bool = True) -> Corpus:
    """Load and resample every take; unreadable takes are reported and skipped.

    With ``clean``, capture defects found by the validator are cut out.
    """
    styles, motions, ids = [], [], []
    for style, paths in style_files(Path(data_dir), styles_file).items():
        styles.append(style)
        for path in paths:
            try:
                motion = resample(load_motion(path), fps)
            except ChoreoError as exc:
                log(f"skipping {path.name}: {exc}")
                continue
            parts = clean_segments(motion) if clean else [motion]
            if clean and sum(p.frames for p in parts) < motion.frames:
                log(f"{path.name}: kept {sum(p.frames for p in parts)} of {motion.frames} frames "
                    "around capture defects")
            motions += parts
            ids += [len(styles) - 1] * len(parts)
    if not motions:
        raise ChoreoError(f"{data_dir}: none of the motion files could be read")
    return Corpus(styles, motions, ids)
